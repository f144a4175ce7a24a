/* test_campaign_report.c — the campaign report's figures
 * (src/campaign_report.c): the uplift and its 95% interval against a
 * hand-computed example; an empty group; the daily table (participants,
 * check-ins, rewards, points, the budget left by day, draws 0 without a
 * lottery table) from check-ins on several Shanghai business days; a coupon
 * drop's claims by day, in the JSON and in the CSV; the audience split by
 * the holdout hash and the goal's conversions from the index, inside the
 * window only; and the CSV encoding. */
#include "unit/store_fixture.h"

#include "campaign.h"
#include "campaign_report.h"
#include "coupon.h"
#include "index.h"
#include "ledger.h"
#include "tenant.h"
#include "util.h"

#include <math.h>

#define DAY 86400000LL
#define HOUR 3600000LL

/* t1 (Shanghai) with C1..C10 and sun. */
static int setup(void **state)
{
    *state = tu_fx_open(10, "sun");
    return 0;
}

static void test_uplift_hand_computed(void **state)
{
    (void)state;
    /* audience 120 of 1000 bought, holdout 8 of 100:
     * p1 = 0.12, p0 = 0.08, d = 0.04,
     * se = sqrt(0.12 * 0.88 / 1000 + 0.08 * 0.92 / 100) = sqrt(0.0001056 + 0.000736)
     *    = sqrt(0.0008416) = 0.0290103...,
     * 95% CI = 0.04 -/+ 1.959964 * 0.0290103 = [-0.0168592, 0.0968592] */
    sy_uplift u;
    sy_uplift_compute(120, 1000, 8, 100, &u);
    assert_true(u.defined);
    assert_true(fabs(u.p1 - 0.12) < 1e-12);
    assert_true(fabs(u.p0 - 0.08) < 1e-12);
    assert_true(fabs(u.diff - 0.04) < 1e-12);
    assert_true(fabs(u.se - 0.0290103430) < 1e-9);
    assert_true(fabs(u.ci_low - -0.0168592279) < 1e-9);
    assert_true(fabs(u.ci_high - 0.0968592279) < 1e-9);
    /* no holdout: nothing to compare */
    sy_uplift_compute(5, 10, 0, 0, &u);
    assert_false(u.defined);
    assert_true(fabs(u.p1 - 0.5) < 1e-12);
    /* all or nothing converted: se 0, the interval is the point */
    sy_uplift_compute(10, 10, 0, 10, &u);
    assert_true(fabs(u.diff - 1.0) < 1e-12 && u.se == 0 && u.ci_low == u.ci_high);
}

/* A check-in campaign (5 points on day 1, 7 on day 2) with a holdout and a points budget. */
static void launch(tu_fx *f, const char *id, int holdout, int64_t budget)
{
    sy_campaign *cp = tu_campaign_def(id, SY_CAMPAIGN_CHECKIN,
                                      "{\"checkin\": {\"rewards\": [{\"day\": 1, \"points\": 5},"
                                      " {\"day\": 2, \"points\": 7}]}}");
    cp->budget_points = budget;
    cp->holdout_percent = holdout;
    tu_campaign_launch(f, "t1", cp);
}

/* The CSV's daily table: its header line. */
static const char k_csv_days[] = "day,participants,checkins,draws,rewards,points,cost,claims,"
                                 "budget_points_left,budget_cost_left\r\n";

static int checkin(tu_fx *f, const char *no, int64_t now)
{
    sy_campaign_who w = tu_who("t1", no, now);
    sy_campaign_outcome o;
    return sy_campaign_checkin(f->c, &w, "ck", SY_CAMPAIGN_UNSET, &o);
}

static void test_daily_table(void **state)
{
    tu_fx *f = *state;
    launch(f, "ck", 0, 100);
    /* Dec 1 (Shanghai): C1, C2; Dec 2: C1 (streak 2: 7 points), C3; 23:30 Shanghai on Dec 2
     * is still Dec 2 although it is Dec 2 15:30 UTC */
    assert_int_equal(checkin(f, "C1", tu_at("2026-12-01T09:00:00+08:00")), SY_OK);
    assert_int_equal(checkin(f, "C2", tu_at("2026-12-01T10:00:00+08:00")), SY_OK);
    assert_int_equal(checkin(f, "C1", tu_at("2026-12-02T09:00:00+08:00")), SY_OK);
    assert_int_equal(checkin(f, "C3", tu_at("2026-12-02T23:30:00+08:00")), SY_OK);
    sy_campaign *cp;
    assert_int_equal(sy_campaign_load(f->c, "t1", "ck", &cp), SY_OK);
    sy_campaign_report rep;
    assert_int_equal(
        sy_campaign_report_days(f->c, "t1", cp, tu_at("2026-12-04T12:00:00+08:00"), &rep), SY_OK);
    assert_string_equal(rep.zone, "Asia/Shanghai");
    assert_int_equal(rep.ndays, 4); /* Dec 1 .. Dec 4 */
    /* draws are counted once the lottery's table exists (0011 on main) */
    assert_int_equal(rep.draws_recorded,
                     sy_conn_prepare(f->c, "SELECT 1 FROM lottery_draws") != NULL);
    assert_int_equal(rep.days[0].participants, 2);
    assert_int_equal(rep.days[0].checkins, 2);
    assert_int_equal(rep.days[0].rewards, 2);
    assert_int_equal(rep.days[0].points, 10);
    assert_int_equal(rep.days[0].points_left, 90);
    assert_int_equal(rep.days[1].participants, 2);
    assert_int_equal(rep.days[1].points, 12);
    assert_int_equal(rep.days[1].points_left, 78);
    assert_int_equal(rep.days[2].participants, 0);
    assert_int_equal(rep.days[2].points_left, 78);
    assert_int_equal(rep.days[3].draws, 0);
    assert_int_equal(rep.days[1].cost_left, SY_CAMPAIGN_UNSET);
    assert_int_equal(rep.totals.checkins, 4);
    assert_int_equal(rep.totals.points, 22);
    assert_int_equal(rep.totals.points_left, 78); /* the campaign row agrees */
    json_t *j = sy_campaign_report_json(cp, &rep, NULL, NULL);
    assert_int_equal(json_array_size(json_object_get(j, "days")), 4);
    assert_true(json_is_null(json_object_get(j, "uplift")));
    assert_int_equal(json_is_string(json_object_get(j, "draws_note")), !rep.draws_recorded);
    json_decref(j);
    char *csv = sy_campaign_report_csv(cp, &rep, NULL, NULL);
    assert_non_null(strstr(csv, k_csv_days));
    assert_non_null(strstr(csv, "2026-12-01,2,2,0,2,10,0,0,90,\r\n"));
    assert_non_null(strstr(csv, "2026-12-02,2,2,0,2,12,0,0,78,\r\n"));
    free(csv);
    sy_campaign_report_free(&rep);
    /* before the start: no days */
    assert_int_equal(
        sy_campaign_report_days(f->c, "t1", cp, tu_at("2026-11-25T12:00:00+08:00"), &rep), SY_OK);
    assert_int_equal(rep.ndays, 0);
    sy_campaign_report_free(&rep);
    sy_campaign_free(cp);
}

static int claim(tu_fx *f, const char *no, int64_t now)
{
    sy_campaign_who w = tu_who("t1", no, now);
    sy_coupon_outcome o;
    return TU_TX(f, sy_coupon_claim(f->c, &w, "drop", "dev", "10.0.0.1", &o));
}

static void test_claims_by_day(void **state)
{
    tu_fx *f = *state;
    tu_acme_coupon(f->c, "t1", "cp5", 10);
    sy_campaign *cp =
        tu_campaign_def("drop", SY_CAMPAIGN_COUPON_DROP,
                        "{\"coupon_drop\": {\"item\": \"cp5\", \"quantity_per_wave\": 5,"
                        " \"waves\": [{\"at\": \"10:00\"}]}}");
    cp->point_type[0] = '\0'; /* a coupon drop pays no points */
    cp->budget_cost = 5000;
    tu_campaign_launch(f, "t1", cp);
    /* Dec 2 (Shanghai): C1, C2; Dec 3: C3; each coupon costs 300 fen */
    assert_int_equal(claim(f, "C1", tu_at("2026-12-02T10:05:00+08:00")), SY_OK);
    assert_int_equal(claim(f, "C2", tu_at("2026-12-02T10:06:00+08:00")), SY_OK);
    assert_int_equal(claim(f, "C3", tu_at("2026-12-03T10:05:00+08:00")), SY_OK);
    assert_int_equal(sy_campaign_load(f->c, "t1", "drop", &cp), SY_OK);
    sy_campaign_report rep;
    assert_int_equal(
        sy_campaign_report_days(f->c, "t1", cp, tu_at("2026-12-03T12:00:00+08:00"), &rep), SY_OK);
    assert_int_equal(rep.ndays, 3);
    assert_int_equal(rep.days[0].claims, 0);
    assert_int_equal(rep.days[1].claims, 2);
    assert_int_equal(rep.days[1].cost, 600);
    assert_int_equal(rep.days[2].claims, 1);
    assert_int_equal(rep.totals.claims, 3);
    json_t *j = sy_campaign_report_json(cp, &rep, NULL, NULL);
    json_t *d2 = json_array_get(json_object_get(j, "days"), 1);
    assert_int_equal(json_integer_value(json_object_get(d2, "claims")), 2);
    json_decref(j);
    /* the CSV carries them where the JSON has them: after cost, before the budget left */
    char *csv = sy_campaign_report_csv(cp, &rep, NULL, NULL);
    assert_non_null(strstr(csv, k_csv_days));
    assert_non_null(strstr(csv, "2026-12-01,0,0,0,0,0,0,0,,5000\r\n"));
    assert_non_null(strstr(csv, "2026-12-02,2,0,0,2,0,600,2,,4400\r\n"));
    assert_non_null(strstr(csv, "2026-12-03,1,0,0,1,0,300,1,,4100\r\n"));
    free(csv);
    sy_campaign_report_free(&rep);
    sy_campaign_free(cp);
}

static void test_groups_from_index(void **state)
{
    tu_fx *f = *state;
    launch(f, "ck", 30, SY_CAMPAIGN_UNSET);
    sy_campaign *cp;
    assert_int_equal(sy_campaign_load(f->c, "t1", "ck", &cp), SY_OK);
    sy_index *ix = sy_index_new(8 * HOUR);
    int64_t e1 = 0, n1 = 0, e0 = 0, n0 = 0;
    for (uint32_t i = 0; i < 300; i++) {
        char no[16];
        snprintf(no, sizeof no, "X%u", i);
        sy_index_add_customer(ix, no, i);
        bool hold = sy_campaign_in_holdout("t1", "ck", no, 30);
        bool buys = i % 3 == 0;
        /* every 3rd buys inside the window; every 5th only before it */
        if (buys)
            sy_index_add_event(ix, i, "buy_fund", tu_at("2026-12-03T10:00:00+08:00"), -1);
        if (i % 5 == 0)
            sy_index_add_event(ix, i, "buy_fund", tu_at("2026-11-28T10:00:00+08:00"), -1);
        if (hold) {
            n0++;
            e0 += buys;
        } else {
            n1++;
            e1 += buys;
        }
    }
    assert_true(n0 > 50 && n0 < 130); /* about 30% */
    sy_uplift u;
    int64_t first = sy_campaign_day("Asia/Shanghai", cp->starts_at);
    int64_t last = sy_campaign_day("Asia/Shanghai", tu_at("2026-12-05T00:00:00+08:00"));
    sy_index_rdlock(ix);
    assert_true(sy_campaign_report_groups(ix, NULL, "t1", cp, "buy_fund", first, last,
                                          tu_at("2026-12-05T00:00:00+08:00"), &u));
    sy_index_unlock(ix);
    assert_int_equal(u.n1, n1);
    assert_int_equal(u.x1, e1);
    assert_int_equal(u.n0, n0);
    assert_int_equal(u.x0, e0);
    assert_true(u.defined);
    sy_uplift want;
    sy_uplift_compute(e1, n1, e0, n0, &want);
    assert_true(fabs(u.ci_low - want.ci_low) < 1e-12);
    /* the report carries it */
    sy_campaign_report rep;
    assert_int_equal(
        sy_campaign_report_days(f->c, "t1", cp, tu_at("2026-12-05T00:00:00+08:00"), &rep), SY_OK);
    json_t *j = sy_campaign_report_json(cp, &rep, "buy_fund", &u);
    json_t *up = json_object_get(j, "uplift");
    assert_string_equal(json_string_value(json_object_get(up, "goal")), "buy_fund");
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(up, "holdout"), "customers")), n0);
    assert_int_equal(json_array_size(json_object_get(up, "ci95")), 2);
    json_decref(j);
    char *csv = sy_campaign_report_csv(cp, &rep, "buy_fund", &u);
    assert_non_null(strstr(csv, "goal,group,customers,converted,rate\r\n"));
    assert_non_null(strstr(csv, "goal,difference,ci95_low,ci95_high\r\n"));
    free(csv);
    sy_campaign_report_free(&rep);
    /* a goal nobody did */
    sy_index_rdlock(ix);
    assert_true(sy_campaign_report_groups(ix, NULL, "t1", cp, "nothing", first, last, 0, &u));
    sy_index_unlock(ix);
    assert_int_equal(u.x1 + u.x0, 0);
    sy_index_free(ix);
    sy_campaign_free(cp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uplift_hand_computed),
        cmocka_unit_test_setup_teardown(test_daily_table, setup, tu_fx_teardown),
        cmocka_unit_test_setup_teardown(test_claims_by_day, setup, tu_fx_teardown),
        cmocka_unit_test_setup_teardown(test_groups_from_index, setup, tu_fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

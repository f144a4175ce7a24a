/* test_campaign.c — the campaign engine's rules (src/campaign.c) on a
 * temporary store with an injected clock: the lifecycle and its recorded
 * steps, maker-checker, the effective status from the schedule, open
 * hours, the holdout (stable, about its share, recorded, nothing else
 * written), suitability (risk level and assessment age), the budget running
 * out in the middle of a burst (never overspent, exactly what was issued),
 * per-customer limits by business day, week and campaign, check-in streaks
 * across the tenant's day boundaries (Asia/Shanghai against UTC), the
 * streak reward table with an item reward, make-up check-ins (cost, reach,
 * insufficient points, streak renumbering), tasks (dwell, once per period,
 * the event's time inside the window), and the rules' validation naming
 * fields. */
#include "unit/store_fixture.h"

#include "benefits.h"
#include "campaign.h"
#include "ledger.h"
#include "tenant.h"
#include "util.h"

#define DAY 86400000LL

/* t1 (Shanghai) and t2 (UTC), each with C1..C40 and sun; t1 has 2 coupons. */
static int setup(void **state)
{
    tu_fx *f = tu_fx_open(40, "sun");
    assert_int_equal(sy_tenant_create(f->c, "t2", "T2", "UTC", 0), SY_OK);
    tu_customers_add(f->c, "t2", 40);
    tu_point_type(f->c, "t2", "sun");
    tu_acme_coupon(f->c, "t1", "coupon5", 2);
    *state = f;
    return 0;
}

static int step(tu_fx *f, const char *tenant, const char *id, sy_campaign_action a, const char *who,
                int64_t now)
{
    sy_campaign_result res;
    return TU_TX(f, sy_campaign_transition(f->c, tenant, id, a, who, "", now, &res));
}

static const char k_daily5[] = "{\"checkin\": {\"rewards\": [{\"day\": 1, \"points\": 5}],"
                               " \"cycle\": true}}";

static int checkin_in(tu_fx *f, const char *tenant, const char *id, const char *no, int64_t now,
                      int64_t makeup, sy_campaign_outcome *o)
{
    sy_campaign_who w = tu_who(tenant, no, now);
    sy_campaign_outcome tmp;
    return TU_TX(f, sy_campaign_checkin(f->c, &w, id, makeup, o ? o : &tmp));
}

static int checkin(tu_fx *f, const char *id, const char *no, int64_t now, sy_campaign_outcome *o)
{
    return checkin_in(f, "t1", id, no, now, SY_CAMPAIGN_UNSET, o);
}

static sy_campaign_status status_of(tu_fx *f, const char *tenant, const char *id, int64_t now)
{
    sy_campaign *cp;
    assert_int_equal(sy_campaign_load(f->c, tenant, id, &cp), SY_OK);
    sy_campaign_status s = sy_campaign_effective(cp, now);
    sy_campaign_free(cp);
    return s;
}

/* ---- lifecycle ---- */

static void test_lifecycle_and_maker_checker(void **state)
{
    tu_fx *f = *state;
    sy_campaign_result res;
    int64_t t = tu_at("2026-11-20T00:00:00Z"), before = tu_at("2026-11-30T00:00:00Z"),
            during = tu_at("2026-12-10T12:00:00+08:00"), after = tu_at("2027-01-02T00:00:00+08:00");
    sy_campaign *cp = tu_campaign_def("ck", SY_CAMPAIGN_CHECKIN, k_daily5);
    assert_int_equal(TU_TX(f, sy_campaign_create(f->c, "t1", cp, "key_maker", t, &res)), SY_OK);
    assert_int_equal(TU_TX(f, sy_campaign_create(f->c, "t1", cp, "key_maker", t, &res)),
                     SY_CAMPAIGN_EXISTS);
    /* a draft changes; any key may change it */
    cp->holdout_percent = 5;
    assert_int_equal(TU_TX(f, sy_campaign_update(f->c, "t1", cp, "key_maker", t, &res)), SY_OK);
    assert_int_equal(status_of(f, "t1", "ck", during), SY_CST_DRAFT);
    /* a draft does not run, even inside its window */
    assert_int_equal(checkin(f, "ck", "C1", during, NULL), SY_CAMPAIGN_NOT_RUNNING);
    /* approve and pause start elsewhere */
    assert_int_equal(step(f, "t1", "ck", SY_CACT_APPROVE, "key_checker", t),
                     SY_CAMPAIGN_BAD_TRANSITION);
    assert_int_equal(step(f, "t1", "ck", SY_CACT_PAUSE, "key_maker", t),
                     SY_CAMPAIGN_BAD_TRANSITION);
    assert_int_equal(step(f, "t1", "ck", SY_CACT_SUBMIT, "key_maker", t), SY_OK);
    assert_int_equal(TU_TX(f, sy_campaign_update(f->c, "t1", cp, "key_maker", t, &res)),
                     SY_CAMPAIGN_NOT_DRAFT);
    assert_string_equal(res.other, "pending_approval");
    /* reject goes back to draft; resubmitted by another key, neither the
     * author nor the submitter may approve */
    assert_int_equal(step(f, "t1", "ck", SY_CACT_REJECT, "key_checker", t), SY_OK);
    assert_int_equal(status_of(f, "t1", "ck", t), SY_CST_DRAFT);
    assert_int_equal(step(f, "t1", "ck", SY_CACT_SUBMIT, "key_other", t), SY_OK);
    assert_int_equal(step(f, "t1", "ck", SY_CACT_APPROVE, "key_maker", t),
                     SY_CAMPAIGN_MAKER_CHECKER);
    assert_int_equal(step(f, "t1", "ck", SY_CACT_APPROVE, "key_other", t),
                     SY_CAMPAIGN_MAKER_CHECKER);
    assert_int_equal(status_of(f, "t1", "ck", t), SY_CST_PENDING);
    assert_int_equal(step(f, "t1", "ck", SY_CACT_APPROVE, "key_checker", t), SY_OK);
    /* both keys are recorded */
    sy_campaign *got;
    assert_int_equal(sy_campaign_load(f->c, "t1", "ck", &got), SY_OK);
    assert_string_equal(got->created_by, "key_maker");
    assert_string_equal(got->approved_by, "key_checker");
    assert_string_equal(got->submitted_by, "key_other");
    assert_int_equal(got->holdout_percent, 5);
    sy_campaign_free(got);
    /* running is derived from the schedule */
    assert_int_equal(status_of(f, "t1", "ck", before), SY_CST_SCHEDULED);
    assert_int_equal(status_of(f, "t1", "ck", during), SY_CST_RUNNING);
    assert_int_equal(status_of(f, "t1", "ck", after), SY_CST_ENDED);
    assert_int_equal(checkin(f, "ck", "C1", before, NULL), SY_CAMPAIGN_NOT_RUNNING);
    /* pause and resume */
    assert_int_equal(step(f, "t1", "ck", SY_CACT_PAUSE, "key_maker", during), SY_OK);
    sy_campaign_outcome o;
    assert_int_equal(checkin(f, "ck", "C2", during, &o), SY_CAMPAIGN_NOT_RUNNING);
    assert_string_equal(o.why.other, "paused");
    assert_int_equal(step(f, "t1", "ck", SY_CACT_PAUSE, "key_maker", during),
                     SY_CAMPAIGN_BAD_TRANSITION);
    assert_int_equal(step(f, "t1", "ck", SY_CACT_RESUME, "key_maker", during), SY_OK);
    assert_int_equal(status_of(f, "t1", "ck", during), SY_CST_RUNNING);
    int rc = checkin(f, "ck", "C2", during, NULL);
    assert_true(rc == SY_OK || rc == SY_CAMPAIGN_HOLDOUT);
    assert_int_equal(step(f, "t1", "ck", SY_CACT_END, "key_maker", during), SY_OK);
    assert_int_equal(status_of(f, "t1", "ck", during), SY_CST_ENDED);
    assert_int_equal(step(f, "t1", "ck", SY_CACT_RESUME, "key_maker", during),
                     SY_CAMPAIGN_BAD_TRANSITION);
    assert_int_equal(checkin(f, "ck", "C3", during, NULL), SY_CAMPAIGN_NOT_RUNNING);
    /* every step is recorded with its actor */
    assert_int_equal(
        tu_q1(f, "SELECT COUNT(*) FROM campaign_transitions WHERE campaign_id = $1", "ck"), 7);
    assert_int_equal(
        tu_q1(f,
              "SELECT COUNT(*) FROM campaign_transitions WHERE campaign_id = $1 AND"
              " action = 'approve' AND actor = 'key_checker' AND to_status = 'scheduled'",
              "ck"),
        1);
    /* the schema refuses an approval by the author whatever the code says */
    assert_int_not_equal(sy_conn_exec(f->c, "UPDATE campaigns SET approved_by = created_by"),
                         SY_OK);
    sy_campaign_free(cp);
}

static void test_open_hours_and_window(void **state)
{
    tu_fx *f = *state;
    sy_campaign *cp = tu_campaign_def("oh", SY_CAMPAIGN_CHECKIN, k_daily5);
    cp->open_from = 8 * 60;
    cp->open_until = 22 * 60;
    tu_campaign_launch(f, "t1", cp);
    sy_campaign_outcome o;
    assert_int_equal(checkin(f, "oh", "C1", tu_at("2026-12-05T07:59:00+08:00"), &o),
                     SY_CAMPAIGN_NOT_RUNNING);
    assert_string_equal(o.why.other, "closed");
    assert_int_equal(checkin(f, "oh", "C1", tu_at("2026-12-05T22:00:00+08:00"), &o),
                     SY_CAMPAIGN_NOT_RUNNING);
    /* 08:00 local is 00:00 UTC: open hours are the tenant's */
    assert_int_equal(checkin(f, "oh", "C1", tu_at("2026-12-05T00:00:00Z"), &o), SY_OK);
    assert_int_equal(o.streak, 1);
    assert_int_equal(tu_balance(f, "t1", "C1"), 5);
}

/* ---- holdout ---- */

static void test_holdout_stable_and_recorded(void **state)
{
    tu_fx *f = *state;
    /* stable: the same answer every time, and a function of its inputs */
    unsigned b = sy_campaign_bucket("t1", "spring", "C1");
    for (int i = 0; i < 100; i++)
        assert_int_equal(sy_campaign_bucket("t1", "spring", "C1"), b);
    assert_true(b < 10000);
    /* about 5% of 20,000 customers; another campaign holds out others */
    int n = 0, both = 0;
    for (int i = 0; i < 20000; i++) {
        char no[16];
        snprintf(no, sizeof no, "N%d", i);
        bool h = sy_campaign_in_holdout("t1", "spring", no, 5);
        n += h;
        both += h && sy_campaign_in_holdout("t1", "autumn", no, 5);
        assert_false(sy_campaign_in_holdout("t1", "spring", no, 0));
    }
    assert_in_range(n, 800, 1200);
    assert_in_range(both, 0, 120); /* independent: about 5% of 5% */
    /* a holdout customer is refused, recorded once, and given nothing */
    sy_campaign *cp = tu_campaign_def("hc", SY_CAMPAIGN_CHECKIN, k_daily5);
    cp->holdout_percent = 20;
    tu_campaign_launch(f, "t1", cp);
    int held = 0, in = 0;
    for (int i = 1; i <= 40; i++) {
        char no[16];
        snprintf(no, sizeof no, "C%d", i);
        bool h = sy_campaign_in_holdout("t1", "hc", no, 20);
        int64_t now = tu_at("2026-12-05T10:00:00+08:00");
        int rc = checkin(f, "hc", no, now, NULL);
        assert_int_equal(rc, h ? SY_CAMPAIGN_HOLDOUT : SY_OK);
        /* again the next day: the same answer */
        assert_int_equal(checkin(f, "hc", no, now + DAY, NULL), h ? SY_CAMPAIGN_HOLDOUT : SY_OK);
        assert_int_equal(tu_balance(f, "t1", no), h ? 0 : 10);
        held += h;
        in += !h;
    }
    assert_true(held > 0 && in > 0);
    assert_int_equal(
        tu_q1(f, "SELECT COUNT(*) FROM campaign_holdouts WHERE campaign_id = $1", "hc"), held);
    assert_int_equal(tu_q1(f,
                           "SELECT COUNT(*) FROM campaign_actions a JOIN campaign_holdouts h ON"
                           " h.customer_no = a.customer_no AND h.campaign_id = a.campaign_id"
                           " WHERE a.campaign_id = $1",
                           "hc"),
                     0);
}

/* ---- suitability and audience ---- */

static void test_suitability_and_audience(void **state)
{
    tu_fx *f = *state;
    assert_int_equal(
        sy_conn_exec(f->c,
                     "UPDATE customers SET attrs = CASE customer_no"
                     " WHEN 'C1' THEN '{\"risk_level\":\"R4\",\"risk_assessed_at\":\"2026-06-01\"}'"
                     " WHEN 'C2' THEN '{\"risk_level\":\"R2\",\"risk_assessed_at\":\"2026-06-01\"}'"
                     " WHEN 'C3' THEN '{\"risk_level\":\"R5\",\"risk_assessed_at\":\"2025-11-01\"}'"
                     " WHEN 'C4' THEN '{\"risk_level\":\"R3\"}'"
                     " WHEN 'C5' THEN '{\"risk_level\":\"R3\",\"risk_assessed_at\":\"2025-12-06\"}'"
                     " ELSE attrs END WHERE tenant_id = 't1'"),
        SY_OK);
    sy_campaign *cp = tu_campaign_def("wealth", SY_CAMPAIGN_CHECKIN, k_daily5);
    cp->product_risk = 3;
    cp->risk_validity_days = 365;
    tu_campaign_launch(f, "t1", cp);
    int64_t now = tu_at("2026-12-06T10:00:00+08:00"); /* 2025-12-06 is 365 days before */
    sy_campaign_outcome o;
    assert_int_equal(checkin(f, "wealth", "C1", now, &o), SY_OK);
    assert_int_equal(checkin(f, "wealth", "C2", now, &o), SY_CAMPAIGN_UNSUITABLE);
    assert_non_null(strstr(o.why.other, "R2"));
    assert_int_equal(checkin(f, "wealth", "C3", now, &o), SY_CAMPAIGN_UNSUITABLE);
    assert_non_null(strstr(o.why.other, "older"));
    assert_int_equal(checkin(f, "wealth", "C4", now, &o), SY_CAMPAIGN_UNSUITABLE);
    assert_int_equal(checkin(f, "wealth", "C5", now, &o), SY_OK); /* exactly at the edge */
    assert_int_equal(checkin(f, "wealth", "C6", now, &o), SY_CAMPAIGN_UNSUITABLE);
    assert_int_equal(checkin(f, "wealth", "C404", now, &o), SY_CAMPAIGN_NO_CUSTOMER);
    /* the audience is the caller's answer */
    sy_campaign_who w = tu_who("t1", "C1", now + DAY);
    w.in_audience = false;
    assert_int_equal(TU_TX(f, sy_campaign_checkin(f->c, &w, "wealth", SY_CAMPAIGN_UNSET, &o)),
                     SY_CAMPAIGN_NOT_IN_AUDIENCE);
    assert_int_equal(
        tu_balance(f, "t1", "C2") + tu_balance(f, "t1", "C3") + tu_balance(f, "t1", "C4"), 0);
    assert_int_equal(
        tu_q1(f, "SELECT COUNT(*) FROM campaign_actions WHERE campaign_id = $1", "wealth"), 2);
}

/* ---- budget ---- */

static void test_budget_runs_out_mid_burst(void **state)
{
    tu_fx *f = *state;
    sy_campaign *cp = tu_campaign_def("bud", SY_CAMPAIGN_CHECKIN, k_daily5);
    cp->budget_points = 100;
    tu_campaign_launch(f, "t1", cp);
    /* 40 customers check in at once, in one transaction as the writer
     * batches them: 20 are paid, then the budget is spent */
    int64_t now = tu_at("2026-12-05T10:00:00+08:00");
    assert_int_equal(sy_conn_begin(f->c), SY_OK);
    int ok = 0, out = 0;
    for (int i = 1; i <= 40; i++) {
        char no[16];
        snprintf(no, sizeof no, "C%d", i);
        sy_campaign_who w = tu_who("t1", no, now);
        sy_campaign_outcome o;
        assert_int_equal(sy_conn_savepoint(f->c), SY_OK);
        int rc = sy_campaign_checkin(f->c, &w, "bud", SY_CAMPAIGN_UNSET, &o);
        if (rc == SY_OK) {
            ok++;
            assert_int_equal(sy_conn_release(f->c), SY_OK);
        } else {
            assert_int_equal(rc, SY_CAMPAIGN_BUDGET_EXHAUSTED);
            assert_string_equal(o.why.other, "points");
            out++;
            assert_int_equal(sy_conn_rollback_to(f->c), SY_OK);
        }
    }
    assert_int_equal(sy_conn_commit(f->c), SY_OK);
    assert_int_equal(ok, 20);
    assert_int_equal(out, 20);
    assert_int_equal(tu_q1(f, "SELECT spent_points FROM campaigns WHERE id = $1", "bud"), 100);
    assert_int_equal(tu_q1(f,
                           "SELECT COALESCE(SUM(amount), 0) FROM ledger_entries WHERE"
                           " debit_account = $1",
                           "source:campaign:bud"),
                     100);
    /* the schema itself refuses an overspend */
    assert_int_not_equal(
        sy_conn_exec(f->c, "UPDATE campaigns SET spent_points = 101 WHERE id = 'bud'"), SY_OK);
    /* a cost budget in fen stops an item reward: 300 fen each, 500 fen */
    sy_campaign *cc =
        tu_campaign_def("costly", SY_CAMPAIGN_CHECKIN,
                        "{\"checkin\": {\"rewards\": [{\"day\": 1, \"item\": \"coupon5\"}],"
                        " \"cycle\": true}}");
    cc->budget_cost = 500;
    tu_campaign_launch(f, "t1", cc);
    sy_campaign_outcome o;
    assert_int_equal(checkin(f, "costly", "C1", now, &o), SY_OK);
    assert_string_equal(o.reward.item, "coupon5");
    assert_true(o.grant_code[0] != '\0');
    assert_int_equal(o.cost, 300);
    assert_int_equal(checkin(f, "costly", "C2", now, &o), SY_CAMPAIGN_BUDGET_EXHAUSTED);
    assert_string_equal(o.why.other, "cost");
    assert_int_equal(tu_q1(f, "SELECT spent_cost FROM campaigns WHERE id = $1", "costly"), 300);
    assert_int_equal(tu_q1(f, "SELECT remaining FROM benefit_items WHERE code = $1", "coupon5"), 1);
}

/* ---- limits ---- */

static void test_limits_by_day_week_campaign(void **state)
{
    tu_fx *f = *state;
    sy_campaign *cp = tu_campaign_def("lim", SY_CAMPAIGN_CHECKIN, k_daily5);
    cp->limit_week = 2;
    cp->limit_total = 3;
    tu_campaign_launch(f, "t1", cp);
    /* Mon 7, Tue 8 December 2026; Wed 9 is the third in the week */
    sy_campaign_outcome o;
    assert_int_equal(checkin(f, "lim", "C1", tu_at("2026-12-07T10:00:00+08:00"), NULL), SY_OK);
    assert_int_equal(checkin(f, "lim", "C1", tu_at("2026-12-08T10:00:00+08:00"), NULL), SY_OK);
    assert_int_equal(checkin(f, "lim", "C1", tu_at("2026-12-09T10:00:00+08:00"), &o),
                     SY_CAMPAIGN_LIMIT_REACHED);
    assert_string_equal(o.why.other, "week");
    assert_int_equal(o.why.limit, 2);
    /* Sunday 13 is still that week; Monday 14 a new one */
    assert_int_equal(checkin(f, "lim", "C1", tu_at("2026-12-13T23:00:00+08:00"), NULL),
                     SY_CAMPAIGN_LIMIT_REACHED);
    assert_int_equal(checkin(f, "lim", "C1", tu_at("2026-12-14T00:30:00+08:00"), NULL), SY_OK);
    assert_int_equal(checkin(f, "lim", "C1", tu_at("2026-12-15T10:00:00+08:00"), &o),
                     SY_CAMPAIGN_LIMIT_REACHED);
    assert_string_equal(o.why.other, "campaign");
    assert_int_equal(tu_balance(f, "t1", "C1"), 15);
    /* tasks: two daily tasks, at most one reward a day */
    sy_campaign *tk =
        tu_campaign_def("tlim", SY_CAMPAIGN_TASK,
                        "{\"tasks\": [{\"code\": \"a\", \"event\": \"pay_bill\", \"period\":"
                        " \"day\", \"reward\": {\"points\": 1}}, {\"code\": \"b\", \"event\":"
                        " \"bind_card\", \"period\": \"day\", \"reward\": {\"points\": 2}}]}");
    tk->limit_day = 1;
    tu_campaign_launch(f, "t1", tk);
    sy_campaign *loaded;
    assert_int_equal(sy_campaign_load(f->c, "t1", "tlim", &loaded), SY_OK);
    int64_t now = tu_at("2026-12-07T10:00:00+08:00");
    sy_campaign_who w = tu_who("t1", "C2", now);
    assert_int_equal(
        TU_TX(f, sy_campaign_task_event(f->c, loaded, 0, &w, "pay_bill", "e1", now, -1, NULL, &o)),
        SY_OK);
    assert_int_equal(
        TU_TX(f, sy_campaign_task_event(f->c, loaded, 1, &w, "bind_card", "e2", now, -1, NULL, &o)),
        SY_CAMPAIGN_LIMIT_REACHED);
    assert_string_equal(o.why.other, "day");
    w.now_ms = now + DAY;
    assert_int_equal(TU_TX(f, sy_campaign_task_event(f->c, loaded, 1, &w, "bind_card", "e3",
                                                     now + DAY, -1, NULL, &o)),
                     SY_OK);
    assert_int_equal(tu_balance(f, "t1", "C2"), 3);
    sy_campaign_free(loaded);
}

/* ---- streaks and time zones ---- */

static void test_streaks_across_day_boundaries(void **state)
{
    tu_fx *f = *state;
    sy_campaign *cp =
        tu_campaign_def("st", SY_CAMPAIGN_CHECKIN,
                        "{\"checkin\": {\"rewards\": [{\"day\": 1, \"points\": 1}, {\"day\": 2,"
                        " \"points\": 2}, {\"day\": 3, \"item\": \"coupon5\"}]}}");
    tu_campaign_launch(f, "t1", cp);
    sy_campaign *cu = tu_campaign_def("st", SY_CAMPAIGN_CHECKIN, k_daily5);
    tu_campaign_launch(f, "t2", cu);
    sy_campaign_outcome o;
    /* 23:59 and 00:01 in Shanghai: two business days, a streak of 2 —
     * though both are 5 December in UTC */
    assert_int_equal(checkin(f, "st", "C1", tu_at("2026-12-05T23:59:00+08:00"), &o), SY_OK);
    assert_int_equal(o.streak, 1);
    assert_int_equal(o.reward.points, 1);
    assert_int_equal(checkin(f, "st", "C1", tu_at("2026-12-06T00:01:00+08:00"), &o), SY_OK);
    assert_int_equal(o.streak, 2);
    assert_int_equal(o.reward.points, 2);
    /* the same two moments for a UTC tenant: one day */
    assert_int_equal(
        checkin_in(f, "t2", "st", "C1", tu_at("2026-12-05T23:59:00+08:00"), SY_CAMPAIGN_UNSET, &o),
        SY_OK);
    assert_int_equal(
        checkin_in(f, "t2", "st", "C1", tu_at("2026-12-06T00:01:00+08:00"), SY_CAMPAIGN_UNSET, &o),
        SY_CAMPAIGN_ALREADY_CHECKED_IN);
    /* 00:30 and 23:30 of one Shanghai day (two UTC dates): once */
    assert_int_equal(checkin(f, "st", "C2", tu_at("2026-12-06T00:30:00+08:00"), &o), SY_OK);
    assert_int_equal(checkin(f, "st", "C2", tu_at("2026-12-06T23:30:00+08:00"), &o),
                     SY_CAMPAIGN_ALREADY_CHECKED_IN);
    /* day 3 of the streak gives the coupon; day 4 is past the table
     * (no cycle): the last day's reward again, and the stock is out */
    assert_int_equal(checkin(f, "st", "C1", tu_at("2026-12-07T08:00:00+08:00"), &o), SY_OK);
    assert_int_equal(o.streak, 3);
    assert_string_equal(o.reward.item, "coupon5");
    assert_int_equal(tu_q1(f, "SELECT COUNT(*) FROM benefit_grants WHERE customer_no = $1", "C1"),
                     1);
    assert_int_equal(checkin(f, "st", "C2", tu_at("2026-12-07T08:00:00+08:00"), &o), SY_OK);
    assert_int_equal(checkin(f, "st", "C2", tu_at("2026-12-08T08:00:00+08:00"), &o), SY_OK);
    assert_int_equal(o.streak, 3); /* the second and last coupon */
    assert_int_equal(checkin(f, "st", "C1", tu_at("2026-12-08T08:00:00+08:00"), &o),
                     SY_CAMPAIGN_REWARD_REFUSED);
    assert_string_equal(o.why.other, "out-of-stock");
    /* a missed day breaks the streak */
    assert_int_equal(checkin(f, "st", "C1", tu_at("2026-12-10T08:00:00+08:00"), &o), SY_OK);
    assert_int_equal(o.streak, 1);
    int streak;
    bool today;
    int64_t d10 = sy_campaign_day("Asia/Shanghai", tu_at("2026-12-10T08:00:00+08:00"));
    assert_int_equal(sy_campaign_streak(f->c, "t1", "st", "C1", d10, &streak, &today), SY_OK);
    assert_int_equal(streak, 1);
    assert_true(today);
    assert_int_equal(sy_campaign_streak(f->c, "t1", "st", "C1", d10 + 1, &streak, &today), SY_OK);
    assert_int_equal(streak, 1);
    assert_false(today);
    assert_int_equal(sy_campaign_streak(f->c, "t1", "st", "C1", d10 + 2, &streak, &today), SY_OK);
    assert_int_equal(streak, 0);
    /* the week is Monday-based: 2026-12-07 is a Monday */
    int64_t mon = sy_campaign_day("UTC", tu_at("2026-12-07T00:00:00Z"));
    assert_int_equal(sy_campaign_week(mon), sy_campaign_week(mon + 6));
    assert_int_equal(sy_campaign_week(mon) - 1, sy_campaign_week(mon - 1));
}

/* ---- make-up check-in ---- */

static void test_makeup_checkin(void **state)
{
    tu_fx *f = *state;
    sy_campaign *cp =
        tu_campaign_def("mk", SY_CAMPAIGN_CHECKIN,
                        "{\"checkin\": {\"rewards\": [{\"day\": 1, \"points\": 1}], \"cycle\":"
                        " true, \"makeup\": {\"cost\": 20, \"max_days_back\": 3}}}");
    tu_campaign_launch(f, "t1", cp);
    sy_campaign *none = tu_campaign_def("nomk", SY_CAMPAIGN_CHECKIN, k_daily5);
    tu_campaign_launch(f, "t1", none);
    sy_campaign_outcome o;
    int64_t d = sy_campaign_day("Asia/Shanghai", tu_at("2026-12-05T12:00:00+08:00"));
    /* checked in on the 4th and the 6th, missed the 5th */
    assert_int_equal(checkin(f, "mk", "C1", tu_at("2026-12-04T12:00:00+08:00"), NULL), SY_OK);
    assert_int_equal(checkin(f, "mk", "C1", tu_at("2026-12-06T12:00:00+08:00"), &o), SY_OK);
    assert_int_equal(o.streak, 1);
    assert_int_equal(checkin(f, "mk", "C1", tu_at("2026-12-07T12:00:00+08:00"), &o), SY_OK);
    assert_int_equal(o.streak, 2);
    int64_t now = tu_at("2026-12-07T13:00:00+08:00");
    /* not enough points: refused, nothing written */
    assert_int_equal(tu_balance(f, "t1", "C1"), 3);
    assert_int_equal(checkin_in(f, "t1", "mk", "C1", now, d, &o), SY_CAMPAIGN_INSUFFICIENT);
    assert_int_equal(o.why.balance, 3);
    assert_int_equal(tu_balance(f, "t1", "C1"), 3);
    tu_earn(f, "C1", 30, tu_at("2026-12-01T00:00:00Z"));
    /* today, a day checked in, too far back, before the start: refused */
    assert_int_equal(checkin_in(f, "t1", "mk", "C1", now, d + 2, &o), SY_CAMPAIGN_BAD_MAKEUP_DAY);
    assert_int_equal(checkin_in(f, "t1", "mk", "C1", now, d + 1, &o),
                     SY_CAMPAIGN_ALREADY_CHECKED_IN);
    assert_int_equal(checkin_in(f, "t1", "mk", "C1", now, d - 4, &o), SY_CAMPAIGN_BAD_MAKEUP_DAY);
    assert_int_equal(checkin_in(f, "t1", "nomk", "C1", now, d, &o), SY_CAMPAIGN_NO_MAKEUP);
    assert_int_equal(tu_balance(f, "t1", "C1"), 33);
    /* the make-up: 20 points, the streak joins up (4th=1, 5th=2, 6th=3,
     * 7th=4) and tomorrow continues it */
    assert_int_equal(checkin_in(f, "t1", "mk", "C1", now, d, &o), SY_OK);
    assert_true(o.makeup);
    assert_int_equal(o.streak, 2);
    assert_int_equal(o.paid_points, 20);
    assert_int_equal(o.reward.points, 0);
    assert_int_equal(tu_balance(f, "t1", "C1"), 13);
    int streak;
    bool today;
    assert_int_equal(sy_campaign_streak(f->c, "t1", "mk", "C1", d + 2, &streak, &today), SY_OK);
    assert_int_equal(streak, 4);
    assert_int_equal(checkin(f, "mk", "C1", tu_at("2026-12-08T12:00:00+08:00"), &o), SY_OK);
    assert_int_equal(o.streak, 5);
    assert_int_equal(checkin_in(f, "t1", "mk", "C1", now, d, &o), SY_CAMPAIGN_ALREADY_CHECKED_IN);
    /* the spend went into the campaign's sink */
    assert_int_equal(tu_q1(f,
                           "SELECT COALESCE(SUM(amount), 0) FROM ledger_entries WHERE"
                           " credit_account = $1",
                           "sink:campaign:mk"),
                     20);
}

/* ---- tasks ---- */

static void test_tasks_once_per_period(void **state)
{
    tu_fx *f = *state;
    sy_campaign *cp = tu_campaign_def(
        "tk", SY_CAMPAIGN_TASK,
        "{\"tasks\": [{\"code\": \"view\", \"event\": \"view_wealth\","
        " \"min_dwell_ms\": 30000, \"period\": \"day\", \"reward\": {\"points\":"
        " 3}}, {\"code\": \"bill\", \"event\": \"pay_bill\", \"period\": \"week\","
        " \"reward\": {\"points\": 10}}, {\"code\": \"card\", \"event\":"
        " \"bind_card\", \"period\": \"campaign\", \"reward\": {\"points\": 50}}]}");
    tu_campaign_launch(f, "t1", cp);
    sy_campaign *k;
    assert_int_equal(sy_campaign_load(f->c, "t1", "tk", &k), SY_OK);
    assert_int_equal(k->ntasks, 3);
    sy_campaign_outcome o;
#define EV(task, name, ts, dwell)                                                                  \
    ({                                                                                             \
        sy_campaign_who w_ = tu_who("t1", "C1", (ts));                                             \
        TU_TX(f,                                                                                   \
              sy_campaign_task_event(f->c, k, (task), &w_, (name), "e", (ts), (dwell), NULL, &o)); \
    })
    int64_t mon = tu_at("2026-12-07T10:00:00+08:00");
    assert_int_equal(EV(0, "view_wealth", mon, 29999), SY_CAMPAIGN_NOT_MET); /* too short */
    assert_string_equal(o.why.other, "dwell_ms 29999 is below the task's 30000");
    assert_int_equal(EV(0, "view_wealth", mon, -1), SY_CAMPAIGN_NOT_MET);
    assert_string_equal(o.why.other, "dwell_ms is missing");
    assert_int_equal(EV(0, "pay_bill", mon, 60000), SY_CAMPAIGN_WRONG_TYPE); /* another event */
    assert_int_equal(EV(0, "view_wealth", mon, 30000), SY_OK);
    assert_int_equal(EV(0, "view_wealth", mon + 3600000, 60000), SY_CAMPAIGN_ALREADY_DONE);
    assert_int_equal(EV(0, "view_wealth", mon + DAY, 60000), SY_OK);
    assert_int_equal(EV(1, "pay_bill", mon, -1), SY_OK);
    assert_int_equal(EV(1, "pay_bill", mon + 6 * DAY, -1), SY_CAMPAIGN_ALREADY_DONE); /* Sunday */
    assert_int_equal(EV(1, "pay_bill", mon + 7 * DAY, -1), SY_OK);
    assert_int_equal(EV(2, "bind_card", mon, -1), SY_OK);
    assert_int_equal(EV(2, "bind_card", mon + 10 * DAY, -1), SY_CAMPAIGN_ALREADY_DONE);
    /* an event from before the campaign earns nothing */
    assert_int_equal(EV(0, "view_wealth", tu_at("2026-11-30T10:00:00+08:00"), 60000),
                     SY_CAMPAIGN_NOT_RUNNING);
    assert_int_equal(tu_balance(f, "t1", "C1"), 3 + 3 + 10 + 10 + 50);
    assert_int_equal(tu_q1(f, "SELECT COUNT(*) FROM campaign_actions WHERE campaign_id = $1", "tk"),
                     5);
#undef EV
    sy_campaign_free(k);
}

/* A task's conditions on the event's props: equality, lists and bounds,
 * numbers compared as numbers; a miss names the property. */
static void test_tasks_props(void **state)
{
    tu_fx *f = *state;
    sy_campaign *cp = tu_campaign_def(
        "tp", SY_CAMPAIGN_TASK,
        "{\"tasks\": [{\"code\": \"card\", \"event\": \"bind_card\", \"period\": \"campaign\","
        " \"reward\": {\"points\": 50}}, {\"code\": \"bill\", \"event\": \"pay_bill\","
        " \"period\": \"day\", \"props\": {\"amount\": {\"gte\": 10000, \"lt\": 1e7},"
        " \"channel\": {\"in\": [\"app\", \"wechat\"]}, \"autopay\": false},"
        " \"reward\": {\"points\": 8}}]}");
    tu_campaign_launch(f, "t1", cp);
    sy_campaign *k;
    assert_int_equal(sy_campaign_load(f->c, "t1", "tp", &k), SY_OK);
    assert_null(k->tasks[0].props);
    assert_non_null(k->tasks[1].props);
    /* the stored rules give the conditions back */
    json_t *rules = sy_campaign_rules_json(k);
    json_t *props = json_object_get(json_array_get(json_object_get(rules, "tasks"), 1), "props");
    assert_int_equal(json_object_size(props), 3);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(props, "amount"), "gte")),
                     10000);
    json_decref(rules);
    sy_campaign_outcome o;
    int64_t mon = tu_at("2026-12-07T10:00:00+08:00");
#define EVP(props, ts)                                                                             \
    ({                                                                                             \
        sy_campaign_who w_ = tu_who("t1", "C1", (ts));                                             \
        TU_TX(f, sy_campaign_task_event(f->c, k, 1, &w_, "pay_bill", "e", (ts), -1, (props), &o)); \
    })
    assert_int_equal(EVP(NULL, mon), SY_CAMPAIGN_NOT_MET);
    assert_string_equal(o.why.other, "props.amount is missing");
    assert_int_equal(EVP("{\"amount\":9999,\"channel\":\"app\",\"autopay\":false}", mon),
                     SY_CAMPAIGN_NOT_MET);
    assert_string_equal(o.why.other, "props.amount is below the task's bound");
    assert_int_equal(EVP("{\"amount\":\"10000\",\"channel\":\"app\",\"autopay\":false}", mon),
                     SY_CAMPAIGN_NOT_MET);
    assert_string_equal(o.why.other, "props.amount is not a number");
    assert_int_equal(EVP("{\"amount\":1e7,\"channel\":\"app\",\"autopay\":false}", mon),
                     SY_CAMPAIGN_NOT_MET);
    assert_string_equal(o.why.other, "props.amount is not below the task's bound");
    assert_int_equal(EVP("{\"amount\":10000,\"channel\":\"counter\",\"autopay\":false}", mon),
                     SY_CAMPAIGN_NOT_MET);
    assert_string_equal(o.why.other, "props.channel is none of the task's values");
    assert_int_equal(EVP("{\"amount\":10000,\"channel\":\"app\",\"autopay\":true}", mon),
                     SY_CAMPAIGN_NOT_MET);
    assert_string_equal(o.why.other, "props.autopay is not the task's value");
    assert_int_equal(EVP("{\"amount\":10000,\"channel\":\"app\",\"autopay\":null}", mon),
                     SY_CAMPAIGN_NOT_MET);
    assert_string_equal(o.why.other, "props.autopay is missing");
    assert_int_equal(tu_balance(f, "t1", "C1"), 0); /* nothing paid for a miss */
    /* a real number meets an integer bound; other props do not matter */
    assert_int_equal(EVP("{\"amount\":10000.0,\"channel\":\"wechat\",\"autopay\":false,"
                         "\"biller\":\"water\"}",
                         mon),
                     SY_OK);
    assert_int_equal(EVP("{\"amount\":50000,\"channel\":\"app\",\"autopay\":false}", mon + 3600000),
                     SY_CAMPAIGN_ALREADY_DONE);
    assert_int_equal(tu_balance(f, "t1", "C1"), 8);
#undef EVP
    sy_campaign_free(k);

    /* the matcher on its own: numbers by value, strings and booleans exactly */
    json_t *c = json_loads("{\"n\": 3, \"s\": \"3\", \"r\": {\"gt\": 0.5, \"lte\": 1},"
                           " \"l\": {\"in\": [1, \"one\", true]}}",
                           0, NULL);
    char why[96];
    json_t *ok = json_loads("{\"n\": 3.0, \"s\": \"3\", \"r\": 1, \"l\": \"one\"}", 0, NULL);
    assert_true(sy_campaign_props_meet(c, ok, why, sizeof why));
    json_object_set_new(ok, "l", json_real(1.0));
    assert_true(sy_campaign_props_meet(c, ok, why, sizeof why));
    json_object_set_new(ok, "l", json_string("1"));
    assert_false(sy_campaign_props_meet(c, ok, why, sizeof why));
    assert_string_equal(why, "props.l is none of the task's values");
    json_object_set_new(ok, "l", json_true());
    json_object_set_new(ok, "s", json_integer(3));
    assert_false(sy_campaign_props_meet(c, ok, why, sizeof why));
    assert_string_equal(why, "props.s is not the task's value");
    json_object_set_new(ok, "s", json_string("3"));
    json_object_set_new(ok, "r", json_real(0.5));
    assert_false(sy_campaign_props_meet(c, ok, why, sizeof why));
    assert_string_equal(why, "props.r is not above the task's bound");
    json_object_set_new(ok, "r", json_real(1.0001));
    assert_false(sy_campaign_props_meet(c, ok, why, sizeof why));
    assert_string_equal(why, "props.r is above the task's bound");
    assert_true(sy_campaign_props_meet(NULL, NULL, why, sizeof why));
    assert_false(sy_campaign_props_meet(c, NULL, why, sizeof why));
    json_decref(ok);
    json_decref(c);
}

/* ---- validation ---- */

static void expect_bad(sy_campaign_type t, const char *rules, const char *field)
{
    sy_campaign cp;
    memset(&cp, 0, sizeof cp);
    cp.type = t;
    json_t *j = json_loads(rules, 0, NULL);
    assert_non_null(j);
    char f[96] = "", msg[256] = "";
    bool ok = sy_campaign_rules_parse(&cp, j, f, sizeof f, msg, sizeof msg);
    json_decref(j);
    json_decref(cp.extra);
    tu_refused(rules, ok, f, msg, field);
}

static void test_rules_validation(void **state)
{
    tu_fx *f = *state;
    expect_bad(SY_CAMPAIGN_CHECKIN, "{}", "/checkin");
    expect_bad(SY_CAMPAIGN_CHECKIN, "{\"checkin\": {\"rewards\": []}}", "/checkin/rewards");
    expect_bad(SY_CAMPAIGN_CHECKIN, "{\"checkin\": {\"rewards\": [{\"day\": 0, \"points\": 1}]}}",
               "/checkin/rewards/0/day");
    expect_bad(SY_CAMPAIGN_CHECKIN, "{\"checkin\": {\"rewards\": [{\"day\": 1}]}}",
               "/checkin/rewards/0/points");
    expect_bad(SY_CAMPAIGN_CHECKIN, "{\"checkin\": {\"rewards\": [{\"day\": 1, \"points\": 1}]}}",
               "/checkin/rewards/0/point_type"); /* no default type */
    expect_bad(SY_CAMPAIGN_CHECKIN,
               "{\"checkin\": {\"rewards\": [{\"day\": 1, \"item\": \"x\", \"points\": 1}]}}",
               "/checkin/rewards/0/points");
    expect_bad(SY_CAMPAIGN_CHECKIN,
               "{\"checkin\": {\"rewards\": [{\"day\": 1, \"item\": \"x\"}], \"bogus\": 1}}",
               "/checkin/bogus");
    expect_bad(SY_CAMPAIGN_CHECKIN,
               "{\"checkin\": {\"rewards\": [{\"day\": 1, \"item\": \"x\"}], \"makeup\": {}}}",
               "/checkin/makeup/cost");
    expect_bad(SY_CAMPAIGN_CHECKIN,
               "{\"checkin\": {\"rewards\": [{\"day\": 1, \"item\": \"x\"},"
               " {\"day\": 1, \"item\": \"y\"}]}}",
               "/checkin/rewards/1/day");
    expect_bad(SY_CAMPAIGN_TASK, "{\"tasks\": []}", "/tasks");
    expect_bad(SY_CAMPAIGN_TASK,
               "{\"tasks\": [{\"code\": \"a\", \"event\": \"Bad\", \"period\":"
               " \"day\", \"reward\": {\"item\": \"x\"}}]}",
               "/tasks/0/event");
    expect_bad(SY_CAMPAIGN_TASK,
               "{\"tasks\": [{\"code\": \"a\", \"event\": \"e\", \"period\":"
               " \"month\", \"reward\": {\"item\": \"x\"}}]}",
               "/tasks/0/period");
    expect_bad(SY_CAMPAIGN_TASK,
               "{\"tasks\": [{\"code\": \"a\", \"event\": \"e\", \"period\":"
               " \"day\"}]}",
               "/tasks/0/reward");
    expect_bad(SY_CAMPAIGN_TASK,
               "{\"tasks\": [{\"code\": \"a\", \"event\": \"e\", \"period\":"
               " \"day\", \"reward\": {\"item\": \"x\"}}], \"checkin\": {}}",
               "/checkin");
    /* a task's conditions on props: the offending condition is named */
    static const struct {
        const char *props, *field;
    } bad_props[] = {
        {"{}", "/tasks/1/props"},
        {"[]", "/tasks/1/props"},
        {"{\"a\":1,\"b\":1,\"c\":1,\"d\":1,\"e\":1,\"f\":1,\"g\":1,\"h\":1,\"i\":1}",
         "/tasks/1/props"},
        {"{\"a-b\": 1}", "/tasks/1/props"},
        {"{\"amount\": null}", "/tasks/1/props/amount"},
        {"{\"amount\": []}", "/tasks/1/props/amount"},
        {"{\"amount\": {}}", "/tasks/1/props/amount"},
        {"{\"amount\": {\"ge\": 1}}", "/tasks/1/props/amount/ge"},
        {"{\"amount\": {\"gte\": \"1\"}}", "/tasks/1/props/amount"},
        {"{\"amount\": {\"gt\": 1, \"gte\": 2}}", "/tasks/1/props/amount"},
        {"{\"amount\": {\"gte\": 5, \"lte\": 4}}", "/tasks/1/props/amount"},
        {"{\"amount\": {\"gte\": 5, \"lt\": 5}}", "/tasks/1/props/amount"},
        {"{\"amount\": {\"in\": []}}", "/tasks/1/props/amount"},
        {"{\"amount\": {\"in\": [{}]}}", "/tasks/1/props/amount"},
        {"{\"amount\": {\"in\": 3}}", "/tasks/1/props/amount"},
    };
    for (size_t i = 0; i < sizeof bad_props / sizeof *bad_props; i++) {
        char rules[512];
        snprintf(rules, sizeof rules,
                 "{\"tasks\": [{\"code\": \"a\", \"event\": \"e\", \"period\": \"day\","
                 " \"reward\": {\"item\": \"x\"}}, {\"code\": \"b\", \"event\": \"e\","
                 " \"period\": \"day\", \"props\": %s, \"reward\": {\"item\": \"x\"}}]}",
                 bad_props[i].props);
        expect_bad(SY_CAMPAIGN_TASK, rules, bad_props[i].field);
    }
    {
        /* the largest definition is accepted: 8 conditions of 32 values */
        json_t *props = json_object();
        for (int k = 0; k < SY_TASK_PROPS_MAX; k++) {
            json_t *in = json_array();
            for (int v = 0; v < SY_TASK_PROP_VALUES_MAX; v++)
                json_array_append_new(in, json_integer(v));
            char name[16];
            snprintf(name, sizeof name, "p%d", k);
            json_object_set_new(props, name, json_pack("{s:o}", "in", in));
        }
        json_t *j = json_pack("{s:[{s:s, s:s, s:s, s:o, s:{s:s}}]}", "tasks", "code", "a", "event",
                              "e", "period", "day", "props", props, "reward", "item", "x");
        sy_campaign cp;
        memset(&cp, 0, sizeof cp);
        cp.type = SY_CAMPAIGN_TASK;
        char fl[96] = "", msg[256] = "";
        assert_true(sy_campaign_rules_parse(&cp, j, fl, sizeof fl, msg, sizeof msg));
        assert_non_null(cp.tasks[0].props);
        json_decref(j);
        json_decref(cp.extra);
    }
    expect_bad(SY_CAMPAIGN_LOTTERY, "{\"lottery\": 5}", "/lottery");
    /* the store-side checks: unknown point types and items name their field */
    sy_campaign_result res;
    sy_campaign *cp =
        tu_campaign_def("refs", SY_CAMPAIGN_CHECKIN,
                        "{\"checkin\": {\"rewards\": [{\"day\": 1, \"points\": 1}, {\"day\": 2,"
                        " \"item\": \"nope\"}]}}");
    assert_int_equal(TU_TX(f, sy_campaign_create(f->c, "t1", cp, "key_maker", 0, &res)),
                     SY_CAMPAIGN_UNKNOWN_ITEM);
    assert_string_equal(res.other, "/checkin/rewards/1/item");
    snprintf(cp->point_type, sizeof cp->point_type, "moon");
    assert_int_equal(TU_TX(f, sy_campaign_create(f->c, "t1", cp, "key_maker", 0, &res)),
                     SY_CAMPAIGN_UNKNOWN_TYPE);
    assert_string_equal(res.other, "/point_type");
    assert_int_equal(tu_q1(f, "SELECT COUNT(*) FROM campaigns WHERE tenant_id = $1", "t1"), 0);
    sy_campaign_free(cp);
    /* a lottery validates and is kept, though nothing takes part in it yet */
    sy_campaign *lo =
        tu_campaign_def("lot", SY_CAMPAIGN_LOTTERY, "{\"lottery\": {\"prizes\": []}}");
    tu_campaign_launch(f, "t1", lo);
    sy_campaign_outcome o;
    assert_int_equal(checkin(f, "lot", "C1", tu_at("2026-12-05T10:00:00+08:00"), &o),
                     SY_CAMPAIGN_WRONG_TYPE);
    assert_int_equal(checkin(f, "nosuch", "C1", tu_at("2026-12-05T10:00:00+08:00"), &o),
                     SY_CAMPAIGN_NOT_FOUND);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_lifecycle_and_maker_checker, setup, tu_fx_teardown),
        cmocka_unit_test_setup_teardown(test_open_hours_and_window, setup, tu_fx_teardown),
        cmocka_unit_test_setup_teardown(test_holdout_stable_and_recorded, setup, tu_fx_teardown),
        cmocka_unit_test_setup_teardown(test_suitability_and_audience, setup, tu_fx_teardown),
        cmocka_unit_test_setup_teardown(test_budget_runs_out_mid_burst, setup, tu_fx_teardown),
        cmocka_unit_test_setup_teardown(test_limits_by_day_week_campaign, setup, tu_fx_teardown),
        cmocka_unit_test_setup_teardown(test_streaks_across_day_boundaries, setup, tu_fx_teardown),
        cmocka_unit_test_setup_teardown(test_makeup_checkin, setup, tu_fx_teardown),
        cmocka_unit_test_setup_teardown(test_tasks_once_per_period, setup, tu_fx_teardown),
        cmocka_unit_test_setup_teardown(test_tasks_props, setup, tu_fx_teardown),
        cmocka_unit_test_setup_teardown(test_rules_validation, setup, tu_fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

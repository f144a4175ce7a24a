/* test_coupon.c — coupon drops' rules (src/coupon.c) on a temporary store
 * with an injected clock: the section's validation naming fields; where a
 * moment falls among the daily waves (before the first, in a wave, after
 * the last, before the campaign's start, at its end); claims (one per
 * customer and wave, a sold-out wave refusing and writing nothing, the
 * next wave releasing afresh, the campaign's limits counted over claims,
 * the item's cost against the budget, the catalogue's own stock); and the
 * `siyu check` parts finding a wave whose count was tampered with. */
#include "unit/store_fixture.h"

#include "campaign.h"
#include "coupon.h"
#include "lottery.h"
#include "tenant.h"
#include "util.h"

#define MIN 60000LL
#define DAY 86400000LL

/* t1 (Shanghai) with C1..C20 and 6 coupons cp5. */
static int setup(void **state)
{
    tu_fx *f = tu_fx_open(20, NULL);
    tu_acme_coupon(f->c, "t1", "cp5", 6);
    *state = f;
    return 0;
}

/* A coupon drop in December 2026 (Shanghai), approved. */
static void launch(tu_fx *f, const char *id, const char *section, int64_t limit_day,
                   int64_t budget_cost)
{
    char body[2048];
    snprintf(body, sizeof body, "{\"coupon_drop\": %s}", section);
    sy_campaign *cp = tu_campaign_def(id, SY_CAMPAIGN_COUPON_DROP, body);
    cp->point_type[0] = '\0'; /* a coupon drop pays no points */
    cp->budget_cost = budget_cost;
    cp->limit_day = limit_day;
    tu_campaign_launch(f, "t1", cp);
}

static int claim(tu_fx *f, const char *id, const char *no, int64_t now, sy_coupon_outcome *o)
{
    sy_campaign_who w = tu_who("t1", no, now);
    return TU_TX(f, sy_coupon_claim(f->c, &w, id, "dev", "10.0.0.1", o));
}

/* ---- the section ---- */

static void expect_bad(const char *section, const char *want_field)
{
    sy_coupon_rules r;
    char field[96] = "", msg[256] = "";
    json_t *j = section ? json_loads(section, 0, NULL) : NULL;
    if (section)
        assert_non_null(j);
    bool ok = sy_coupon_rules_parse(j, &r, field, sizeof field, msg, sizeof msg);
    json_decref(j);
    tu_refused(section, ok, field, msg, want_field);
}

static void test_rules_validation(void **state)
{
    (void)state;
    expect_bad(NULL, "/coupon_drop");
    expect_bad("{\"quantity_per_wave\": 1, \"waves\": [{\"at\": \"10:00\"}]}", "/coupon_drop/item");
    expect_bad("{\"item\": 5, \"quantity_per_wave\": 1, \"waves\": [{\"at\": \"10:00\"}]}",
               "/coupon_drop/item");
    expect_bad("{\"item\": \"cp5\", \"waves\": []}", "/coupon_drop/waves");
    expect_bad("{\"item\": \"cp5\", \"quantity_per_wave\": -1, \"waves\": [{\"at\": \"10:00\"}]}",
               "/coupon_drop/quantity_per_wave");
    expect_bad("{\"item\": \"cp5\", \"quantity_per_wave\": 1, \"waves\": [{\"at\": \"1000\"}]}",
               "/coupon_drop/waves/0/at");
    expect_bad("{\"item\": \"cp5\", \"quantity_per_wave\": 1, \"waves\": [{\"at\": \"10:60\"}]}",
               "/coupon_drop/waves/0/at");
    expect_bad("{\"item\": \"cp5\", \"quantity_per_wave\": 1,"
               " \"waves\": [{\"at\": \"10:00\"}, {\"at\": \"10:00\"}]}",
               "/coupon_drop/waves/1/at");
    expect_bad("{\"item\": \"cp5\", \"waves\": [{\"at\": \"10:00\", \"quantity\": 0}]}",
               "/coupon_drop/waves/0/quantity");
    expect_bad("{\"item\": \"cp5\", \"waves\": [{\"at\": \"10:00\"}]}",
               "/coupon_drop/waves/0/quantity");
    expect_bad("{\"item\": \"cp5\", \"quantity_per_wave\": 1, \"per_wave\": 101,"
               " \"waves\": [{\"at\": \"10:00\"}]}",
               "/coupon_drop/per_wave");
    expect_bad("{\"item\": \"cp5\", \"quantity_per_wave\": 1, \"waves\": [\"10:00\"]}",
               "/coupon_drop/waves/0");
    sy_coupon_rules r;
    char field[96], msg[256];
    json_t *j = json_loads("{\"item\": \"cp5\", \"quantity_per_wave\": 3, \"waves\": [{\"at\":"
                           " \"00:00\"}, {\"at\": \"23:59\", \"quantity\": 7}]}",
                           0, NULL);
    assert_true(sy_coupon_rules_parse(j, &r, field, sizeof field, msg, sizeof msg));
    json_decref(j);
    assert_int_equal(r.nwaves, 2);
    assert_int_equal(r.waves[0].at, 0);
    assert_int_equal(r.waves[0].quantity, 3);
    assert_int_equal(r.waves[1].at, 23 * 60 + 59);
    assert_int_equal(r.waves[1].quantity, 7);
    assert_int_equal(r.per_wave, 1);
}

/* ---- the waves in time ---- */

static void test_locate(void **state)
{
    (void)state;
    sy_coupon_rules r;
    char field[96], msg[256];
    json_t *j = json_loads("{\"item\": \"cp5\", \"quantity_per_wave\": 3, \"waves\": [{\"at\":"
                           " \"10:00\"}, {\"at\": \"20:00\"}]}",
                           0, NULL);
    assert_true(sy_coupon_rules_parse(j, &r, field, sizeof field, msg, sizeof msg));
    json_decref(j);
    sy_campaign cp = {.starts_at = tu_at("2026-12-01T12:00:00+08:00"),
                      .ends_at = tu_at("2026-12-03T15:00:00+08:00")};
    sy_coupon_when w;
    /* Shanghai 09:59: none yet, the next at 10:00 (02:00Z) */
    sy_coupon_locate(&r, &cp, "Asia/Shanghai", tu_at("2026-12-02T09:59:00+08:00"), &w);
    assert_int_equal(w.wave, -1);
    assert_int_equal(w.next_at, tu_at("2026-12-02T10:00:00+08:00"));
    /* 00:30 Shanghai is the previous UTC date but the same business day */
    sy_coupon_locate(&r, &cp, "Asia/Shanghai", tu_at("2026-12-02T00:30:00+08:00"), &w);
    assert_int_equal(w.day, sy_campaign_day("Asia/Shanghai", tu_at("2026-12-02T12:00:00+08:00")));
    assert_int_equal(w.wave, -1);
    sy_coupon_locate(&r, &cp, "Asia/Shanghai", tu_at("2026-12-02T10:00:00+08:00"), &w);
    assert_int_equal(w.wave, 0);
    assert_int_equal(w.wave_at, tu_at("2026-12-02T10:00:00+08:00"));
    assert_int_equal(w.next_at, tu_at("2026-12-02T20:00:00+08:00"));
    /* after the last wave of the day: it stays open, the next is tomorrow's first */
    sy_coupon_locate(&r, &cp, "Asia/Shanghai", tu_at("2026-12-02T23:59:00+08:00"), &w);
    assert_int_equal(w.wave, 1);
    assert_int_equal(w.next_at, tu_at("2026-12-03T10:00:00+08:00"));
    /* on the last day the 20:00 wave is past the end: no next */
    sy_coupon_locate(&r, &cp, "Asia/Shanghai", tu_at("2026-12-03T11:00:00+08:00"), &w);
    assert_int_equal(w.next_at, SY_CAMPAIGN_UNSET);
    /* before the start (12:00 on the 1st, inside the 10:00 wave): the start itself */
    sy_coupon_locate(&r, &cp, "Asia/Shanghai", tu_at("2026-11-30T12:00:00+08:00"), &w);
    assert_int_equal(w.wave, -1);
    assert_int_equal(w.next_at, cp.starts_at);
}

/* ---- claims ---- */

static void test_claims(void **state)
{
    tu_fx *f = *state;
    launch(f, "drop",
           "{\"item\": \"cp5\", \"quantity_per_wave\": 2,"
           " \"waves\": [{\"at\": \"10:00\"}, {\"at\": \"20:00\"}]}",
           1, 1500);
    sy_coupon_outcome o;
    int64_t d5 = tu_at("2026-12-05T00:00:00+08:00");
    assert_int_equal(claim(f, "drop", "C1", d5 + 9 * 60 * MIN, &o), SY_COUPON_NOT_STARTED);
    assert_int_equal(o.when.next_at, d5 + 10 * 60 * MIN);
    assert_int_equal(claim(f, "drop", "C1", d5 + 10 * 60 * MIN, &o), SY_OK);
    assert_int_equal(o.when.wave, 0);
    assert_int_equal(o.cost, 300);
    assert_int_equal(o.claimed, 1);
    assert_true(o.grant_code[0]);
    /* one per customer and wave (per_wave 1) */
    assert_int_equal(claim(f, "drop", "C1", d5 + 11 * 60 * MIN, &o), SY_CAMPAIGN_LIMIT_REACHED);
    assert_string_equal(o.why.other, "wave");
    assert_int_equal(claim(f, "drop", "C2", d5 + 11 * 60 * MIN, &o), SY_OK);
    assert_int_equal(claim(f, "drop", "C3", d5 + 11 * 60 * MIN, &o), SY_COUPON_SOLD_OUT);
    assert_int_equal(o.when.next_at, d5 + 20 * 60 * MIN);
    assert_int_equal(tu_q1(f, "SELECT COUNT(*) FROM coupon_claims", NULL), 2);
    /* the 20:00 wave releases afresh; C1's daily limit (1) counts claims */
    assert_int_equal(claim(f, "drop", "C1", d5 + 20 * 60 * MIN, &o), SY_CAMPAIGN_LIMIT_REACHED);
    assert_string_equal(o.why.other, "day");
    assert_int_equal(claim(f, "drop", "C3", d5 + 20 * 60 * MIN, &o), SY_OK);
    assert_int_equal(o.when.wave, 1);
    /* the budget (1500 fen) pays five coupons of 300: C4's and C5's spend it */
    assert_int_equal(claim(f, "drop", "C4", d5 + 20 * 60 * MIN, &o), SY_OK);
    assert_int_equal(claim(f, "drop", "C5", d5 + DAY + 10 * 60 * MIN, &o), SY_OK);
    assert_int_equal(claim(f, "drop", "C6", d5 + DAY + 10 * 60 * MIN, &o),
                     SY_CAMPAIGN_BUDGET_EXHAUSTED);
    assert_int_equal(tu_q1(f, "SELECT spent_cost FROM campaigns WHERE id = 'drop'", NULL), 1500);
    /* the item's own stock (6) runs out before a second drop's wave does */
    launch(f, "big",
           "{\"item\": \"cp5\", \"quantity_per_wave\": 100, \"waves\": [{\"at\": \"10:00\"}]}",
           SY_CAMPAIGN_UNSET, SY_CAMPAIGN_UNSET);
    assert_int_equal(claim(f, "big", "C7", d5 + DAY + 10 * 60 * MIN, &o), SY_OK);
    assert_int_equal(claim(f, "big", "C8", d5 + DAY + 10 * 60 * MIN, &o),
                     SY_CAMPAIGN_REWARD_REFUSED);
    assert_string_equal(o.why.other, "out-of-stock");
    assert_int_equal(tu_q1(f, "SELECT COUNT(*) FROM coupon_claims WHERE campaign_id = 'big'", NULL),
                     1);
    /* a claim at a campaign that does not exist */
    assert_int_equal(claim(f, "nope", "C1", d5 + 10 * 60 * MIN, &o), SY_CAMPAIGN_NOT_FOUND);
    assert_int_equal(tu_q1(f, "SELECT COUNT(*) FROM coupon_claims", NULL), 6);
    assert_int_equal(tu_q1(f, "SELECT SUM(claimed) FROM coupon_waves", NULL), 6);
}

static int g_lines;
static void count_line(void *ud, const char *line)
{
    (void)ud;
    (void)line;
    g_lines++;
}

static void test_check_finds_tampering(void **state)
{
    tu_fx *f = *state;
    launch(f, "drop",
           "{\"item\": \"cp5\", \"quantity_per_wave\": 3, \"waves\": [{\"at\": \"10:00\"}]}",
           SY_CAMPAIGN_UNSET, SY_CAMPAIGN_UNSET);
    sy_coupon_outcome o;
    int64_t t = tu_at("2026-12-05T10:30:00+08:00");
    assert_int_equal(claim(f, "drop", "C1", t, &o), SY_OK);
    assert_int_equal(claim(f, "drop", "C2", t, &o), SY_OK);
    int64_t v, n;
    g_lines = 0;
    assert_int_equal(sy_coupon_check(f->c, "t1", count_line, NULL, &v, &n), SY_OK);
    assert_int_equal(v, 0);
    assert_int_equal(n, 3); /* one wave, two claims */
    assert_int_equal(sy_lottery_check(f->c, "t1", count_line, NULL, &v, &n), SY_OK);
    assert_int_equal(v, 0); /* the budget counts the claims' cost */
    /* a wave that counts one claim too few, and a claim without its grant */
    tu_exec(f->c, "UPDATE coupon_waves SET claimed = 1");
    tu_exec(f->c, "UPDATE coupon_claims SET grant_code = 'g_gone' WHERE customer_no = 'C2'");
    assert_int_equal(sy_coupon_check(f->c, "t1", count_line, NULL, &v, &n), SY_OK);
    assert_int_equal(v, 2);
    assert_int_equal(g_lines, 2);
    /* the schema refuses a wave claimed past its release */
    sy_stmt *st = sy_conn_prepare(f->c, "UPDATE coupon_waves SET claimed = released + 1");
    assert_non_null(st);
    assert_int_not_equal(sy_stmt_exec(st), SY_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rules_validation),
        cmocka_unit_test(test_locate),
        cmocka_unit_test_setup_teardown(test_claims, setup, tu_fx_teardown),
        cmocka_unit_test_setup_teardown(test_check_finds_tampering, setup, tu_fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

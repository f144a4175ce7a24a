/* test_lottery.c — the lottery's rules (src/lottery.c) on a real store:
 * the weights (a chi-square test over 10,000 draws with a seeded random
 * source), pacing across business days, the guaranteed prize, stock and
 * budget running out, catalogue refusals turning into thanks, versions,
 * refusals writing nothing, and the invariant checks of `siyu check`. */
#include "unit/store_fixture.h"

#include "benefits.h"
#include "campaign.h"
#include "ledger.h"
#include "lottery.h"
#include "tenant.h"
#include "util.h"

/* a seeded random source: xorshift64* */
static uint64_t g_seed;
static uint32_t seeded(uint32_t upper, void *ud)
{
    g_seed ^= g_seed >> 12;
    g_seed ^= g_seed << 25;
    g_seed ^= g_seed >> 27;
    return (uint32_t)((g_seed * 2685821657736338717ULL) >> 32) % upper;
}
/* always the last value: the thanks range when thanks comes last */
static uint32_t last_value(uint32_t upper, void *ud)
{
    return upper - 1;
}

/* t1 (Shanghai) with C1..C20, sun and 2 coupons coupon5; the real random source. */
static int setup(void **state)
{
    tu_fx *f = tu_fx_open(20, "sun");
    tu_acme_coupon(f->c, "t1", "coupon5", 2);
    sy_lottery_set_rng(NULL, NULL);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    sy_lottery_set_rng(NULL, NULL);
    return tu_fx_teardown(state);
}

static void earn(tu_fx *f, const char *no, int64_t amount)
{
    tu_earn(f, no, amount, tu_at("2026-11-01T00:00:00Z"));
}

/* A lottery campaign (December 1-10, 2026, Shanghai), with budget and
 * limits as given, its prize table defined while a draft, approved. */
static void lottery(tu_fx *f, const char *id, int64_t budget_points, const char *table)
{
    sy_campaign *cp = tu_campaign_def(id, SY_CAMPAIGN_LOTTERY, NULL);
    cp->ends_at = tu_at("2026-12-11T00:00:00+08:00");
    cp->budget_points = budget_points;
    tu_campaign_create(f, "t1", cp);
    sy_campaign_free(cp);
    json_t *j = json_loads(table, 0, NULL);
    assert_non_null(j);
    sy_lottery_table lt;
    char field[96], msg[256];
    if (!sy_lottery_parse(j, "sun", &lt, field, sizeof field, msg, sizeof msg))
        fail_msg("table: %s %s", field, msg);
    json_decref(j);
    sy_campaign_result res;
    int64_t t = tu_at("2026-11-20T00:00:00Z");
    assert_int_equal(TU_TX(f, sy_lottery_define(f->c, "t1", id, &lt, "key_maker", t, &res)), SY_OK);
    assert_int_equal(lt.version, 1);
    tu_campaign_approve(f, "t1", id);
}

static int draw_at(tu_fx *f, const char *id, const char *no, int64_t now, sy_lottery_outcome *o)
{
    sy_campaign_who w = tu_who("t1", no, now);
    return TU_TX(f, sy_lottery_draw(f->c, &w, id, "dev-1", "10.0.0.1", o));
}

static void print_line(void *ud, const char *line)
{
    printf("violation: %s\n", line);
}

static void check_clean(tu_fx *f)
{
    int64_t v = -1, n = 0;
    assert_int_equal(sy_conn_begin(f->c), SY_OK);
    assert_int_equal(sy_lottery_check(f->c, "t1", print_line, NULL, &v, &n), SY_OK);
    assert_int_equal(sy_conn_rollback(f->c), SY_OK);
    assert_int_equal(v, 0);
}

/* ---- weights ---- */

static void test_weights_chi_square(void **state)
{
    tu_fx *f = *state;
    /* weights 1:2:3:4 for three prizes and thanks, more stock than draws */
    lottery(f, "w", SY_CAMPAIGN_UNSET,
            "{\"cost\": {\"points\": 1}, \"thanks\": {\"weight\": 4000}, \"prizes\": ["
            "{\"code\": \"a\", \"name\": \"A\", \"weight\": 1000, \"stock\": 100000,"
            " \"reward\": {\"points\": 1}},"
            "{\"code\": \"b\", \"name\": \"B\", \"weight\": 2000, \"stock\": 100000,"
            " \"reward\": {\"points\": 1}},"
            "{\"code\": \"c\", \"name\": \"C\", \"weight\": 3000, \"stock\": 100000,"
            " \"reward\": {\"points\": 1}}]}");
    for (int i = 1; i <= 20; i++) {
        char no[16];
        snprintf(no, sizeof no, "C%d", i);
        earn(f, no, 100000);
    }
    g_seed = 0x9e3779b97f4a7c15ULL;
    sy_lottery_set_rng(seeded, NULL);
    const int N = 10000;
    int64_t now = tu_at("2026-12-10T12:00:00+08:00"); /* the last paced day: all stock out */
    assert_int_equal(sy_conn_begin(f->c), SY_OK);
    for (int i = 0; i < N; i++) {
        char no[16];
        snprintf(no, sizeof no, "C%d", 1 + i % 20);
        sy_campaign_who w = tu_who("t1", no, now);
        sy_lottery_outcome o;
        assert_int_equal(sy_lottery_draw(f->c, &w, "w", NULL, NULL, &o), SY_OK);
        assert_true(o.random < o.total);
        assert_int_equal(o.total, 10000);
    }
    assert_int_equal(sy_conn_commit(f->c), SY_OK);
    double expect[4] = {0.1, 0.2, 0.3, 0.4}, chi = 0;
    int64_t got[4] = {
        tu_q1(f, "SELECT COUNT(*) FROM lottery_draws WHERE campaign_id = 'w' AND prize = 'a'",
              NULL),
        tu_q1(f, "SELECT COUNT(*) FROM lottery_draws WHERE campaign_id = 'w' AND prize = 'b'",
              NULL),
        tu_q1(f, "SELECT COUNT(*) FROM lottery_draws WHERE campaign_id = 'w' AND prize = 'c'",
              NULL),
        tu_q1(f,
              "SELECT COUNT(*) FROM lottery_draws WHERE campaign_id = 'w' AND outcome = 'thanks'",
              NULL),
    };
    for (int k = 0; k < 4; k++) {
        double e = expect[k] * N, d = (double)got[k] - e;
        chi += d * d / e;
    }
    /* 3 degrees of freedom: 16.27 is the 0.1% critical value */
    if (chi > 16.27)
        fail_msg("chi-square %.2f: %lld %lld %lld %lld", chi, (long long)got[0], (long long)got[1],
                 (long long)got[2], (long long)got[3]);
    /* the picks are the ranges: every draw's outcome follows from its value */
    assert_int_equal(tu_q1(f,
                           "SELECT COUNT(*) FROM lottery_draws WHERE campaign_id = 'w' AND NOT"
                           " ((random < 1000 AND prize = 'a') OR (random >= 1000 AND random < 3000"
                           " AND prize = 'b') OR (random >= 3000 AND random < 6000 AND prize ="
                           " 'c') OR (random >= 6000 AND outcome = 'thanks'))",
                           NULL),
                     0);
    /* every paid draw spent its point; stock used = draws won */
    assert_int_equal(tu_q1(f, "SELECT SUM(used) FROM lottery_prizes WHERE campaign_id = 'w'", NULL),
                     got[0] + got[1] + got[2]);
    check_clean(f);
}

/* ---- pacing ---- */

static void test_pacing_across_days(void **state)
{
    tu_fx *f = *state;
    /* 10 units over the 10 days of December 1-10; every draw picks it */
    lottery(f, "p", SY_CAMPAIGN_UNSET,
            "{\"free_per_day\": 20, \"pacing\": true, \"prizes\": [{\"code\": \"x\", \"name\":"
            " \"X\", \"weight\": 1, \"stock\": 10, \"reward\": {\"points\": 5}}]}");
    sy_lottery_outcome o;
    int won = 0;
    /* day 1 releases 1 */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(draw_at(f, "p", "C1", tu_at("2026-12-01T09:00:00+08:00"), &o), SY_OK);
        won += o.won;
        if (!o.won)
            assert_string_equal(o.reason, "paced");
    }
    assert_int_equal(won, 1);
    /* 23:59 on day 1 is still day 1; 00:01 is day 2 (Shanghai, not UTC) */
    assert_int_equal(draw_at(f, "p", "C2", tu_at("2026-12-01T23:59:00+08:00"), &o), SY_OK);
    assert_false(o.won);
    assert_int_equal(draw_at(f, "p", "C2", tu_at("2026-12-02T00:01:00+08:00"), &o), SY_OK);
    assert_true(o.won);
    /* nothing on days 3-4; day 5 has released 5: three carried over */
    won = 0;
    for (int i = 0; i < 6; i++) {
        assert_int_equal(draw_at(f, "p", "C3", tu_at("2026-12-05T10:00:00+08:00"), &o), SY_OK);
        won += o.won;
    }
    assert_int_equal(won, 3);
    /* the last day releases the rest, and then the stock is out */
    won = 0;
    for (int i = 0; i < 8; i++) {
        assert_int_equal(draw_at(f, "p", "C4", tu_at("2026-12-10T10:00:00+08:00"), &o), SY_OK);
        won += o.won;
        if (!o.won)
            assert_string_equal(o.reason, "out-of-stock");
    }
    assert_int_equal(won, 5);
    assert_int_equal(tu_q1(f, "SELECT used FROM lottery_prizes WHERE campaign_id = 'p'", NULL), 10);
    /* the released figures as the API shows them */
    sy_lottery_table t;
    assert_int_equal(sy_lottery_load(f->c, "t1", "p", 0, &t), SY_OK);
    assert_int_equal(sy_lottery_released(&t, &t.prizes[0], t.pace_from), 1);
    assert_int_equal(sy_lottery_released(&t, &t.prizes[0], t.pace_from + 4), 5);
    assert_int_equal(sy_lottery_released(&t, &t.prizes[0], t.pace_until), 10);
    check_clean(f);
}

/* ---- the guarantee ---- */

static void test_guaranteed_prize(void **state)
{
    tu_fx *f = *state;
    lottery(f, "g", SY_CAMPAIGN_UNSET,
            "{\"free_per_day\": 50, \"thanks\": {\"weight\": 99}, \"guarantee\": {\"after\":"
            " 3, \"prize\": \"big\"}, \"prizes\": [{\"code\": \"big\", \"name\": \"Big\","
            " \"weight\": 1, \"stock\": 2, \"reward\": {\"points\": 100}}]}");
    sy_lottery_set_rng(last_value, NULL); /* every value falls in thanks */
    int64_t now = tu_at("2026-12-03T10:00:00+08:00");
    sy_lottery_outcome o;
    for (int round = 0; round < 2; round++) {
        for (int i = 1; i <= 3; i++) {
            assert_int_equal(draw_at(f, "g", "C1", now, &o), SY_OK);
            assert_false(o.won);
            assert_int_equal(o.losing_streak, i);
        }
        /* the fourth wins by the guarantee, and the streak starts again */
        assert_int_equal(draw_at(f, "g", "C1", now, &o), SY_OK);
        assert_true(o.won);
        assert_string_equal(o.prize, "big");
        assert_string_equal(o.reason, "guarantee");
        assert_string_equal(o.picked, "");
        assert_int_equal(o.losing_streak, 0);
    }
    /* no stock left: the guarantee cannot pay, the draw stays thanks */
    for (int i = 0; i < 4; i++)
        assert_int_equal(draw_at(f, "g", "C1", now, &o), SY_OK);
    assert_false(o.won);
    assert_int_equal(o.losing_streak, 4);
    /* another customer's streak is their own */
    assert_int_equal(draw_at(f, "g", "C2", now, &o), SY_OK);
    assert_int_equal(o.losing_streak, 1);
    assert_int_equal(tu_q1(f,
                           "SELECT COUNT(*) FROM lottery_draws WHERE campaign_id = 'g' AND reason"
                           " = 'guarantee'",
                           NULL),
                     2);
    check_clean(f);
}

/* ---- cost, chances, limits, budget, refusals write nothing ---- */

static void test_cost_chances_budget(void **state)
{
    tu_fx *f = *state;
    lottery(f, "c", 70,
            "{\"cost\": {\"points\": 10}, \"free_per_day\": 1, \"draws_per_day\": 4,"
            " \"prizes\": [{\"code\": \"p\", \"name\": \"P\", \"weight\": 1, \"stock\": 100,"
            " \"reward\": {\"points\": 30}}]}");
    int64_t now = tu_at("2026-12-04T10:00:00+08:00");
    sy_lottery_outcome o;
    earn(f, "C1", 25);
    /* the first draw of the day is free */
    assert_int_equal(draw_at(f, "c", "C1", now, &o), SY_OK);
    assert_true(o.free && o.won);
    assert_int_equal(o.cost_points, 0);
    /* then 10 points each: 25 + 30 = 55 covers five, but the budget (70) two
     * prizes of 30 in all */
    assert_int_equal(draw_at(f, "c", "C1", now, &o), SY_OK);
    assert_false(o.free);
    assert_int_equal(o.cost_points, 10);
    assert_true(o.spend_entry[0] != '\0');
    int64_t before =
        tu_q1(f,
              "SELECT (SELECT COUNT(*) FROM lottery_draws) * 1000 + (SELECT COUNT(*) FROM"
              " ledger_entries)",
              NULL);
    assert_int_equal(draw_at(f, "c", "C1", now, &o), SY_CAMPAIGN_BUDGET_EXHAUSTED);
    assert_string_equal(o.why.other, "points");
    assert_int_equal(tu_q1(f, "SELECT spent_points FROM campaigns WHERE id = 'c'", NULL), 60);
    /* refusals write nothing: no draw, no spend */
    assert_int_equal(tu_q1(f,
                           "SELECT (SELECT COUNT(*) FROM lottery_draws) * 1000 + (SELECT COUNT(*)"
                           " FROM ledger_entries)",
                           NULL),
                     before);
    /* insufficient points: C2 has none, and its free chance is used up (on
     * thanks: the prize's stock is made to be out) */
    assert_int_equal(
        TU_TX(f, sy_conn_exec(f->c, "UPDATE campaigns SET budget_points = NULL WHERE id = 'c'")),
        SY_OK);
    tu_exec(f->c, "UPDATE lottery_prizes SET stock = used WHERE campaign_id = 'c'");
    assert_int_equal(draw_at(f, "c", "C2", now, &o), SY_OK);
    assert_false(o.won);
    assert_int_equal(draw_at(f, "c", "C2", now, &o), SY_CAMPAIGN_INSUFFICIENT);
    assert_int_equal(o.why.balance, 0);
    earn(f, "C2", 1000);
    assert_int_equal(draw_at(f, "c", "C2", now, &o), SY_OK);
    assert_int_equal(draw_at(f, "c", "C2", now, &o), SY_OK);
    assert_int_equal(draw_at(f, "c", "C2", now, &o), SY_OK);
    assert_int_equal(o.chances_left, 0);
    assert_int_equal(draw_at(f, "c", "C2", now, &o), SY_CAMPAIGN_LIMIT_REACHED);
    assert_string_equal(o.why.other, "day");
    assert_int_equal(o.why.limit, 4);
    /* the next business day starts again, with a free draw */
    assert_int_equal(draw_at(f, "c", "C2", tu_at("2026-12-05T00:00:01+08:00"), &o), SY_OK);
    assert_true(o.free);
    /* a draw outside the schedule, of a customer who does not exist */
    assert_int_equal(draw_at(f, "c", "C2", tu_at("2026-12-12T10:00:00+08:00"), &o),
                     SY_CAMPAIGN_NOT_RUNNING);
    assert_int_equal(draw_at(f, "c", "C99", now, &o), SY_CAMPAIGN_NO_CUSTOMER);
    check_clean(f);
}

/* ---- catalogue prizes, versions ---- */

static void test_items_and_versions(void **state)
{
    tu_fx *f = *state;
    /* the lottery holds 5 coupons, the catalogue only 2 */
    lottery(f, "i", SY_CAMPAIGN_UNSET,
            "{\"free_per_day\": 10, \"prizes\": [{\"code\": \"cp\", \"name\": \"5 off\","
            " \"weight\": 1, \"stock\": 5, \"reward\": {\"item\": \"coupon5\"}}]}");
    int64_t now = tu_at("2026-12-06T10:00:00+08:00");
    sy_lottery_outcome o;
    for (int i = 0; i < 2; i++) {
        assert_int_equal(draw_at(f, "i", "C1", now, &o), SY_OK);
        assert_true(o.won);
        assert_true(o.grant_code[0] != '\0');
        assert_int_equal(o.budget_cost, 300);
    }
    assert_int_equal(draw_at(f, "i", "C1", now, &o), SY_OK);
    assert_false(o.won);
    assert_string_equal(o.reason, "out-of-stock");
    assert_int_equal(tu_q1(f, "SELECT used FROM lottery_prizes WHERE campaign_id = 'i'", NULL), 2);
    assert_int_equal(tu_q1(f, "SELECT spent_cost FROM campaigns WHERE id = 'i'", NULL), 600);
    /* the table changes only while a draft or paused; each change is a version */
    json_t *j = json_loads("{\"free_per_day\": 10, \"prizes\": [{\"code\": \"pts\", \"name\":"
                           " \"Points\", \"weight\": 1, \"stock\": 3, \"reward\": {\"points\":"
                           " 2}}]}",
                           0, NULL);
    sy_lottery_table t;
    char field[96], msg[256];
    assert_true(sy_lottery_parse(j, "sun", &t, field, sizeof field, msg, sizeof msg));
    json_decref(j);
    sy_campaign_result res;
    assert_int_equal(TU_TX(f, sy_lottery_define(f->c, "t1", "i", &t, "key_maker", now, &res)),
                     SY_LOTTERY_NOT_EDITABLE);
    assert_string_equal(res.other, "running");
    assert_int_equal(TU_TX(f, sy_campaign_transition(f->c, "t1", "i", SY_CACT_PAUSE, "key_maker",
                                                     "", now, &res)),
                     SY_OK);
    assert_int_equal(TU_TX(f, sy_lottery_define(f->c, "t1", "i", &t, "key_maker", now, &res)),
                     SY_OK);
    assert_int_equal(t.version, 2);
    /* a paused campaign's new table goes back for approval by another key */
    assert_string_equal(res.other, "pending_approval");
    assert_int_equal(draw_at(f, "i", "C1", now, &o), SY_CAMPAIGN_NOT_RUNNING);
    assert_int_equal(TU_TX(f, sy_campaign_transition(f->c, "t1", "i", SY_CACT_RESUME, "key_maker",
                                                     "", now, &res)),
                     SY_CAMPAIGN_BAD_TRANSITION);
    assert_int_equal(TU_TX(f, sy_campaign_transition(f->c, "t1", "i", SY_CACT_APPROVE, "key_maker",
                                                     "", now, &res)),
                     SY_CAMPAIGN_MAKER_CHECKER);
    assert_int_equal(TU_TX(f, sy_campaign_transition(f->c, "t1", "i", SY_CACT_APPROVE,
                                                     "key_checker", "", now, &res)),
                     SY_OK);
    assert_int_equal(tu_q1(f,
                           "SELECT COUNT(*) FROM campaign_transitions WHERE campaign_id = 'i'"
                           " AND note = 'new prize table' AND actor = 'key_maker'",
                           NULL),
                     1);
    assert_int_equal(draw_at(f, "i", "C1", now, &o), SY_OK);
    assert_int_equal(o.version, 2);
    assert_string_equal(o.prize, "pts");
    /* the explanation reads the draw's own version */
    json_t *d;
    assert_int_equal(sy_lottery_draw_get(f->c, "t1", "i", o.draw_id, &d), SY_OK);
    assert_int_equal(json_integer_value(json_object_get(d, "version")), 2);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(d, "explain"), "fell_in")), "pts");
    json_decref(d);
    assert_int_equal(sy_lottery_draw_get(f->c, "t1", "i", "ld_nope", &d), SY_LOTTERY_NO_DRAW);
    /* a check-in campaign cannot be drawn, a lottery without prizes neither */
    assert_int_equal(TU_TX(f, sy_lottery_define(f->c, "t1", "nosuch", &t, "key_maker", now, &res)),
                     SY_CAMPAIGN_NOT_FOUND);
    check_clean(f);
}

/* ---- the invariant checks see a broken store ---- */

static void test_check_finds_violations(void **state)
{
    tu_fx *f = *state;
    lottery(f, "k", 1000,
            "{\"free_per_day\": 5, \"prizes\": [{\"code\": \"x\", \"name\": \"X\", \"weight\":"
            " 1, \"stock\": 10, \"reward\": {\"points\": 5}}]}");
    sy_lottery_outcome o;
    assert_int_equal(draw_at(f, "k", "C1", tu_at("2026-12-06T10:00:00+08:00"), &o), SY_OK);
    check_clean(f);
    /* the prize's earn reversed on its own, as the API refuses to */
    assert_true(o.won && o.ledger_entry[0]);
    sy_ledger_reversal rv = {.tenant = "t1",
                             .entry_id = o.ledger_entry,
                             .reason = "x",
                             .operator_id = "k",
                             .now_ms = tu_at("2026-12-06T10:01:00+08:00")};
    sy_ledger_result lr;
    assert_int_equal(TU_TX(f, sy_ledger_reverse(f->c, &rv, &lr)), SY_OK);
    tu_exec(f->c, "UPDATE lottery_prizes SET used = 3 WHERE campaign_id = 'k'");
    tu_exec(f->c, "UPDATE campaigns SET spent_points = 7 WHERE id = 'k'");
    tu_exec(f->c, "UPDATE lottery_draws SET ledger_entry = 'le_gone' WHERE campaign_id = 'k'");
    int64_t v = 0, n = 0;
    assert_int_equal(sy_conn_begin(f->c), SY_OK);
    assert_int_equal(sy_lottery_check(f->c, "t1", print_line, NULL, &v, &n), SY_OK);
    assert_int_equal(sy_conn_rollback(f->c), SY_OK);
    assert_int_equal(v, 4);
    /* a reversal made before they were refused is waived (migration 0021) */
    char sql[256];
    snprintf(sql, sizeof sql,
             "INSERT INTO ledger_reversal_waivers (tenant_id, entry_id, reason) VALUES ('t1', '%s',"
             " 'before')",
             o.ledger_entry);
    tu_exec(f->c, sql);
    assert_int_equal(sy_conn_begin(f->c), SY_OK);
    assert_int_equal(sy_lottery_check(f->c, "t1", print_line, NULL, &v, &n), SY_OK);
    assert_int_equal(sy_conn_rollback(f->c), SY_OK);
    assert_int_equal(v, 3);
}

/* ---- parsing names the field ---- */

static void expect_bad(const char *table, const char *field)
{
    json_t *j = json_loads(table, 0, NULL);
    assert_non_null(j);
    sy_lottery_table t;
    char f[96], msg[256];
    bool ok = sy_lottery_parse(j, "sun", &t, f, sizeof f, msg, sizeof msg);
    json_decref(j);
    tu_refused(table, ok, f, msg, field);
}

static void test_parse_errors(void **state)
{
#define PZ                                                                                         \
    "\"prizes\": [{\"code\": \"a\", \"name\": \"A\", \"weight\": 1, \"stock\": 1, \"reward\": "    \
    "{\"points\": 1}}]"
    expect_bad("{\"free_per_day\": 1}", "/prizes");
    expect_bad("{\"free_per_day\": 1, \"prizes\": []}", "/prizes");
    expect_bad("{" PZ "}", "/cost");
    expect_bad("{\"free_per_day\": 1, \"bogus\": 1, " PZ "}", "/bogus");
    expect_bad("{\"free_per_day\": -1, " PZ "}", "/free_per_day");
    expect_bad("{\"free_per_day\": 1, \"draws_per_day\": 0, " PZ "}", "/draws_per_day");
    expect_bad("{\"cost\": {\"points\": 0}, " PZ "}", "/cost/points");
    expect_bad("{\"free_per_day\": 1, \"pacing\": 1, " PZ "}", "/pacing");
    expect_bad("{\"free_per_day\": 1, \"thanks\": {\"weight\": -5}, " PZ "}", "/thanks/weight");
    expect_bad("{\"free_per_day\": 1, \"guarantee\": {\"after\": 3, \"prize\": \"zz\"}, " PZ "}",
               "/guarantee/prize");
    expect_bad("{\"free_per_day\": 1, \"guarantee\": {\"after\": 0, \"prize\": \"a\"}, " PZ "}",
               "/guarantee/after");
    expect_bad("{\"free_per_day\": 1, \"prizes\": [{\"code\": \"A B\", \"name\": \"A\","
               " \"weight\": 1, \"stock\": 1, \"reward\": {\"points\": 1}}]}",
               "/prizes/0/code");
    expect_bad("{\"free_per_day\": 1, \"prizes\": [{\"code\": \"a\", \"name\": \"A\","
               " \"weight\": 0, \"stock\": 1, \"reward\": {\"points\": 1}}]}",
               "/prizes/0/weight");
    expect_bad("{\"free_per_day\": 1, \"prizes\": [{\"code\": \"a\", \"name\": \"A\","
               " \"weight\": 1, \"stock\": -1, \"reward\": {\"points\": 1}}]}",
               "/prizes/0/stock");
    expect_bad("{\"free_per_day\": 1, \"prizes\": [{\"code\": \"a\", \"name\": \"A\","
               " \"weight\": 1, \"stock\": 1, \"reward\": {\"points\": 1, \"item\": \"x\"}}]}",
               "/prizes/0/reward/points");
    expect_bad("{\"free_per_day\": 1, \"prizes\": [{\"code\": \"a\", \"name\": \"A\","
               " \"weight\": 1, \"stock\": 1, \"reward\": {\"points\": 1}}, {\"code\": \"a\","
               " \"name\": \"A\", \"weight\": 1, \"stock\": 1, \"reward\": {\"points\": 1}}]}",
               "/prizes/1/code");
#undef PZ
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_weights_chi_square, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pacing_across_days, setup, teardown),
        cmocka_unit_test_setup_teardown(test_guaranteed_prize, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cost_chances_budget, setup, teardown),
        cmocka_unit_test_setup_teardown(test_items_and_versions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_finds_violations, setup, teardown),
        cmocka_unit_test(test_parse_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

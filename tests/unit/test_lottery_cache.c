/* test_lottery_cache.c — the draw's remembered definitions (lottery.c,
 * "the draw's definitions, remembered"): every change to a campaign — its
 * lifecycle, its limits, its budget, a new prize table version, a prize's
 * stock, the tenant's zone — takes effect on the very next draw, also when
 * made in the same millisecond, by plain SQL, or undone by a rollback.
 * Each test first shows that the draw before the change found its
 * definitions remembered (a cache hit), so the change is seen through the
 * cache and not by a cold read. */
#include "unit/store_fixture.h"

#include "benefits.h"
#include "campaign.h"
#include "ledger.h"
#include "lottery.h"
#include "tenant.h"
#include "util.h"

#include <sodium.h>

/* the random value 0: the first prize's range */
static uint32_t first_value(uint32_t upper, void *ud)
{
    return 0;
}

static int setup(void **state)
{
    tu_fx *f = tu_fx_open(5, "sun");
    sy_lottery_set_rng(first_value, NULL);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    sy_lottery_set_rng(NULL, NULL);
    sy_lottery_cache_clear();
    return tu_fx_teardown(state);
}

/* the prize table: "a" (10 points, the first range) and thanks, a draw
 * costs 1 point */
#define TABLE_A                                                                                    \
    "{\"cost\": {\"points\": 1}, \"thanks\": {\"weight\": 1}, \"prizes\": [{\"code\": \"a\","      \
    " \"name\": \"A\", \"weight\": 1, \"stock\": 100, \"reward\": {\"points\": 10}}]}"
#define TABLE_B                                                                                    \
    "{\"cost\": {\"points\": 2}, \"thanks\": {\"weight\": 1}, \"prizes\": [{\"code\": \"b\","      \
    " \"name\": \"B\", \"weight\": 1, \"stock\": 100, \"reward\": {\"points\": 20}}]}"

static const char *const k_maker = "key_maker", *const k_checker = "key_checker";

static int define(tu_fx *f, const char *id, const char *table, int64_t now, sy_lottery_table *lt)
{
    json_t *j = json_loads(table, 0, NULL);
    assert_non_null(j);
    char field[96], msg[256];
    if (!sy_lottery_parse(j, "sun", lt, field, sizeof field, msg, sizeof msg))
        fail_msg("table: %s %s", field, msg);
    json_decref(j);
    sy_campaign_result res;
    return sy_lottery_define(f->c, "t1", id, lt, k_maker, now, &res);
}

static int move(tu_fx *f, const char *id, sy_campaign_action a, int64_t now)
{
    sy_campaign_result res;
    return sy_campaign_transition(f->c, "t1", id, a, a == SY_CACT_APPROVE ? k_checker : k_maker, "",
                                  now, &res);
}

/* A running lottery campaign (December 1-10, 2026, Shanghai), no budget
 * or limits, prize table TABLE_A (version 1). */
static void lottery(tu_fx *f, const char *id)
{
    sy_campaign cp;
    memset(&cp, 0, sizeof cp);
    snprintf(cp.id, sizeof cp.id, "%s", id);
    snprintf(cp.name, sizeof cp.name, "%s", id);
    cp.type = SY_CAMPAIGN_LOTTERY;
    cp.starts_at = tu_at("2026-12-01T00:00:00+08:00");
    cp.ends_at = tu_at("2026-12-11T00:00:00+08:00");
    cp.open_from = cp.open_until = SY_CAMPAIGN_UNSET;
    cp.budget_points = cp.budget_cost = SY_CAMPAIGN_UNSET;
    cp.limit_day = cp.limit_week = cp.limit_total = SY_CAMPAIGN_UNSET;
    cp.makeup_cost = SY_CAMPAIGN_UNSET;
    snprintf(cp.point_type, sizeof cp.point_type, "sun");
    sy_campaign_result res;
    int64_t t = tu_at("2026-11-20T00:00:00Z");
    assert_int_equal(TU_TX(f, sy_campaign_create(f->c, "t1", &cp, k_maker, t, &res)), SY_OK);
    sy_lottery_table lt;
    assert_int_equal(TU_TX(f, define(f, id, TABLE_A, t, &lt)), SY_OK);
    assert_int_equal(lt.version, 1);
    assert_int_equal(TU_TX(f, move(f, id, SY_CACT_SUBMIT, t)), SY_OK);
    assert_int_equal(TU_TX(f, move(f, id, SY_CACT_APPROVE, t)), SY_OK);
    for (int i = 1; i <= 5; i++) {
        char no[16];
        snprintf(no, sizeof no, "C%d", i);
        tu_earn(f, no, 1000, tu_at("2026-11-01T00:00:00Z"));
    }
}

/* the moment of every draw and change: one millisecond, so that no
 * updated_at tells the versions of a row apart */
#define NOW tu_at("2026-12-05T10:00:00+08:00")

static int draw_raw(tu_fx *f, const char *id, const char *no, sy_lottery_outcome *o)
{
    sy_campaign_who w = {.tenant = "t1",
                         .customer_no = no,
                         .in_audience = true,
                         .operator_id = "key_app",
                         .now_ms = NOW};
    return sy_lottery_draw(f->c, &w, id, NULL, NULL, o);
}

static int draw(tu_fx *f, const char *id, const char *no, sy_lottery_outcome *o)
{
    return TU_TX(f, draw_raw(f, id, no, o));
}

static uint64_t hits(void)
{
    uint64_t h, m;
    sy_lottery_cache_stats(&h, &m);
    return h;
}

/* Two draws, the second of them through the remembered definitions. */
static void warm(tu_fx *f, const char *id)
{
    sy_lottery_outcome o;
    assert_int_equal(draw(f, id, "C1", &o), SY_OK);
    uint64_t h = hits();
    assert_int_equal(draw(f, id, "C1", &o), SY_OK);
    assert_int_equal(hits(), h + 1);
    assert_true(o.won);
    assert_string_equal(o.prize, "a");
}

static void test_unchanged_is_remembered(void **state)
{
    tu_fx *f = *state;
    lottery(f, "c");
    warm(f, "c");
    uint64_t h = hits();
    sy_lottery_outcome o;
    for (int i = 0; i < 5; i++)
        assert_int_equal(draw(f, "c", "C2", &o), SY_OK);
    assert_int_equal(hits(), h + 5);
    /* the spent budget moves with every draw without a parse */
    assert_int_equal(o.n, 5);
}

static void test_pause_resume_end(void **state)
{
    tu_fx *f = *state;
    lottery(f, "c");
    warm(f, "c");
    sy_lottery_outcome o;
    assert_int_equal(TU_TX(f, move(f, "c", SY_CACT_PAUSE, NOW)), SY_OK);
    assert_int_equal(draw(f, "c", "C1", &o), SY_CAMPAIGN_NOT_RUNNING);
    assert_string_equal(o.why.other, "paused");
    assert_int_equal(TU_TX(f, move(f, "c", SY_CACT_RESUME, NOW)), SY_OK);
    assert_int_equal(draw(f, "c", "C1", &o), SY_OK);
    assert_int_equal(TU_TX(f, move(f, "c", SY_CACT_END, NOW)), SY_OK);
    assert_int_equal(draw(f, "c", "C1", &o), SY_CAMPAIGN_NOT_RUNNING);
    assert_string_equal(o.why.other, "ended");
}

static void test_new_version(void **state)
{
    tu_fx *f = *state;
    lottery(f, "c");
    warm(f, "c");
    sy_lottery_outcome o;
    sy_lottery_table lt;
    assert_int_equal(TU_TX(f, move(f, "c", SY_CACT_PAUSE, NOW)), SY_OK);
    assert_int_equal(TU_TX(f, define(f, "c", TABLE_B, NOW, &lt)), SY_OK);
    assert_int_equal(lt.version, 2);
    /* a new table of a paused campaign is approved again, not resumed */
    assert_int_equal(TU_TX(f, move(f, "c", SY_CACT_APPROVE, NOW)), SY_OK);
    assert_int_equal(draw(f, "c", "C1", &o), SY_OK);
    assert_int_equal(o.version, 2);
    assert_string_equal(o.prize, "b");
    assert_int_equal(o.cost_points, 2);
    assert_int_equal(o.reward.points, 20);
}

/* Limits and budget changed by SQL while the campaign runs: no lifecycle
 * step, no updated_at, the same millisecond. */
static void test_limits_and_budget_by_sql(void **state)
{
    tu_fx *f = *state;
    lottery(f, "c");
    warm(f, "c"); /* C1: two draws today */
    sy_lottery_outcome o;
    tu_exec(f->c, "UPDATE campaigns SET limit_day = 2 WHERE id = 'c'");
    assert_int_equal(draw(f, "c", "C1", &o), SY_CAMPAIGN_LIMIT_REACHED);
    assert_string_equal(o.why.other, "day");
    assert_int_equal(o.why.limit, 2);
    assert_int_equal(draw(f, "c", "C2", &o), SY_OK);
    tu_exec(f->c, "UPDATE campaigns SET limit_day = NULL, limit_total = 3 WHERE id = 'c'");
    assert_int_equal(draw(f, "c", "C1", &o), SY_OK);
    assert_int_equal(draw(f, "c", "C1", &o), SY_CAMPAIGN_LIMIT_REACHED);
    assert_string_equal(o.why.other, "campaign");
    /* four prizes of 10 points so far: a budget of 50 holds one more */
    tu_exec(f->c, "UPDATE campaigns SET limit_total = NULL, budget_points = 50 WHERE id = 'c'");
    assert_int_equal(draw(f, "c", "C3", &o), SY_OK);
    assert_true(o.won);
    assert_int_equal(draw(f, "c", "C3", &o), SY_CAMPAIGN_BUDGET_EXHAUSTED);
    assert_string_equal(o.why.other, "points");
    tu_exec(f->c, "UPDATE campaigns SET budget_points = 60 WHERE id = 'c'");
    assert_int_equal(draw(f, "c", "C3", &o), SY_OK);
    assert_true(o.won);
}

/* Limits changed through the lifecycle: rejected back to a draft, edited,
 * approved again, all in one millisecond. */
static void test_limits_by_update(void **state)
{
    tu_fx *f = *state;
    sy_campaign cp;
    memset(&cp, 0, sizeof cp);
    snprintf(cp.id, sizeof cp.id, "d");
    snprintf(cp.name, sizeof cp.name, "d");
    cp.type = SY_CAMPAIGN_LOTTERY;
    cp.starts_at = tu_at("2026-12-01T00:00:00+08:00");
    cp.ends_at = tu_at("2026-12-11T00:00:00+08:00");
    cp.open_from = cp.open_until = SY_CAMPAIGN_UNSET;
    cp.budget_points = cp.budget_cost = SY_CAMPAIGN_UNSET;
    cp.limit_day = cp.limit_week = cp.limit_total = SY_CAMPAIGN_UNSET;
    cp.makeup_cost = SY_CAMPAIGN_UNSET;
    snprintf(cp.point_type, sizeof cp.point_type, "sun");
    sy_campaign_result res;
    sy_lottery_table lt;
    sy_lottery_outcome o;
    assert_int_equal(TU_TX(f, sy_campaign_create(f->c, "t1", &cp, k_maker, NOW, &res)), SY_OK);
    assert_int_equal(TU_TX(f, define(f, "d", TABLE_A, NOW, &lt)), SY_OK);
    tu_earn(f, "C1", 100, tu_at("2026-11-01T00:00:00Z"));
    uint64_t h = hits();
    assert_int_equal(draw(f, "d", "C1", &o), SY_CAMPAIGN_NOT_RUNNING);
    assert_int_equal(draw(f, "d", "C1", &o), SY_CAMPAIGN_NOT_RUNNING);
    assert_string_equal(o.why.other, "draft");
    assert_int_equal(hits(), h + 1);
    cp.limit_week = 1;
    assert_int_equal(TU_TX(f, sy_campaign_update(f->c, "t1", &cp, k_maker, NOW, &res)), SY_OK);
    assert_int_equal(TU_TX(f, move(f, "d", SY_CACT_SUBMIT, NOW)), SY_OK);
    assert_int_equal(TU_TX(f, move(f, "d", SY_CACT_APPROVE, NOW)), SY_OK);
    assert_int_equal(draw(f, "d", "C1", &o), SY_OK);
    assert_int_equal(draw(f, "d", "C1", &o), SY_CAMPAIGN_LIMIT_REACHED);
    assert_string_equal(o.why.other, "week");
}

/* A prize's stock, and the tenant's zone (the business day), by SQL. */
static void test_stock_and_zone(void **state)
{
    tu_fx *f = *state;
    lottery(f, "c");
    warm(f, "c");
    sy_lottery_outcome o;
    tu_exec(f->c, "UPDATE lottery_prizes SET stock = used WHERE campaign_id = 'c'");
    assert_int_equal(draw(f, "c", "C2", &o), SY_OK);
    assert_false(o.won);
    assert_string_equal(o.picked, "a");
    assert_string_equal(o.reason, "out-of-stock");
    /* 10:00 in Shanghai is 18:00 the day before in Los Angeles */
    int64_t shanghai = o.day;
    tu_exec(f->c, "UPDATE tenants SET timezone = 'America/Los_Angeles' WHERE id = 't1'");
    assert_int_equal(draw(f, "c", "C2", &o), SY_OK);
    assert_int_equal(o.day, shanghai - 1);
}

/* Definitions read inside a transaction that rolls back are not the
 * ones of the next draw. */
static void test_rollback(void **state)
{
    tu_fx *f = *state;
    lottery(f, "c");
    warm(f, "c");
    sy_lottery_outcome o;
    assert_int_equal(TU_TX(f, move(f, "c", SY_CACT_PAUSE, NOW)), SY_OK);
    /* resumed, drawn, and undone */
    assert_int_equal(sy_conn_begin(f->c), SY_OK);
    assert_int_equal(move(f, "c", SY_CACT_RESUME, NOW), SY_OK);
    assert_int_equal(draw_raw(f, "c", "C1", &o), SY_OK);
    assert_int_equal(sy_conn_rollback(f->c), SY_OK);
    assert_int_equal(draw(f, "c", "C1", &o), SY_CAMPAIGN_NOT_RUNNING);
    assert_string_equal(o.why.other, "paused");
    /* a version 2 drawn from and undone; then another version 2 */
    sy_lottery_table lt;
    assert_int_equal(sy_conn_begin(f->c), SY_OK);
    assert_int_equal(define(f, "c", TABLE_B, NOW, &lt), SY_OK);
    assert_int_equal(lt.version, 2);
    assert_int_equal(move(f, "c", SY_CACT_APPROVE, NOW), SY_OK);
    assert_int_equal(draw_raw(f, "c", "C1", &o), SY_OK);
    assert_string_equal(o.prize, "b");
    assert_int_equal(sy_conn_rollback(f->c), SY_OK);
    assert_int_equal(
        TU_TX(f, define(f, "c",
                        "{\"cost\": {\"points\": 2}, \"thanks\": {\"weight\": 1}, \"prizes\":"
                        " [{\"code\": \"z\", \"name\": \"B\", \"weight\": 1, \"stock\": 100,"
                        " \"reward\": {\"points\": 20}}]}",
                        NOW, &lt)),
        SY_OK);
    assert_int_equal(lt.version, 2);
    assert_int_equal(TU_TX(f, move(f, "c", SY_CACT_APPROVE, NOW)), SY_OK);
    assert_int_equal(draw(f, "c", "C1", &o), SY_OK);
    assert_int_equal(o.version, 2);
    assert_string_equal(o.prize, "z");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_unchanged_is_remembered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pause_resume_end, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_version, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limits_and_budget_by_sql, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limits_by_update, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stock_and_zone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollback, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

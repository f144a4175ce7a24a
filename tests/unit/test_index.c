/* test_index.c — the in-memory indexes: updates, business days, rebuild. */
#include "testutil.h"
#include "unit/store_fixture.h"

#include "index.h"
#include "store.h"
#include "tenant.h"
#include "util.h"

static sy_attr_set *schema(void)
{
    sy_attr_set *s = calloc(1, sizeof *s);
    atomic_init(&s->refs, 1);
    s->n = 4;
    s->defs = calloc(4, sizeof *s->defs);
    const char *defs[] = {
        "{\"name\":\"risk_level\",\"type\":\"enum\",\"values\":[\"R1\",\"R2\",\"R3\"]}",
        "{\"name\":\"aum\",\"type\":\"integer\",\"unit\":\"fen\"}",
        "{\"name\":\"payroll\",\"type\":\"bool\"}",
        "{\"name\":\"registered_at\",\"type\":\"date\"}",
    };
    for (int i = 0; i < 4; i++) {
        json_t *b = json_loads(defs[i], 0, NULL);
        const char *f;
        char err[128];
        assert_true(sy_attr_def_parse(b, &s->defs[i], &f, err, sizeof err));
        json_decref(b);
    }
    return s;
}

static uint64_t card(const roaring_bitmap_t *b)
{
    return b ? roaring_bitmap_get_cardinality(b) : 0;
}

static void test_attribute_updates_move_between_bitmaps(void **state)
{
    sy_attr_set *s = schema();
    sy_index *ix = sy_index_new(8 * 3600 * 1000);
    sy_index_add_customer(ix, "C0", 0);
    sy_index_add_customer(ix, "C1", 1);
    json_t *a0 = json_loads("{\"risk_level\":\"R2\",\"aum\":500,\"payroll\":true,"
                            "\"registered_at\":\"2026-01-02\"}",
                            0, NULL);
    json_t *a1 = json_loads("{\"risk_level\":\"R2\",\"aum\":7}", 0, NULL);
    sy_index_update_attrs(ix, 0, s, NULL, a0);
    sy_index_update_attrs(ix, 1, s, NULL, a1);
    sy_index_rdlock(ix);
    assert_int_equal(sy_index_size(ix), 2);
    assert_int_equal(card(sy_index_value(ix, "risk_level", "R2")), 2);
    assert_int_equal(card(sy_index_value(ix, "payroll", "true")), 1);
    const roaring_bitmap_t *present;
    const int64_t *aum = sy_index_column(ix, "aum", &present);
    assert_int_equal(aum[0], 500);
    assert_int_equal(aum[1], 7);
    assert_int_equal(card(present), 2);
    const int64_t *reg = sy_index_column(ix, "registered_at", &present);
    int64_t days;
    sy_parse_date("2026-01-02", &days);
    assert_int_equal(reg[0], days);
    assert_int_equal(card(present), 1);
    uint32_t d;
    assert_true(sy_index_dense(ix, "C1", &d));
    assert_int_equal(d, 1);
    assert_string_equal(sy_index_customer_no(ix, 1), "C1");
    assert_false(sy_index_dense(ix, "C9", &d));
    sy_index_unlock(ix);

    /* C1 moves to R3 and loses aum. */
    json_t *a1b = json_loads("{\"risk_level\":\"R3\"}", 0, NULL);
    sy_index_update_attrs(ix, 1, s, a1, a1b);
    sy_index_rdlock(ix);
    assert_int_equal(card(sy_index_value(ix, "risk_level", "R2")), 1);
    assert_int_equal(card(sy_index_value(ix, "risk_level", "R3")), 1);
    sy_index_column(ix, "aum", &present);
    assert_false(roaring_bitmap_contains(present, 1));
    assert_true(roaring_bitmap_contains(present, 0));
    sy_index_unlock(ix);
    json_decref(a0);
    json_decref(a1);
    json_decref(a1b);
    sy_index_free(ix);
    sy_attr_set_release(s);
}

typedef struct day_acc {
    int days;
    uint32_t count0;
    uint64_t dwell0;
} day_acc;

static void acc(int64_t day, const sy_day_events *d, void *ud)
{
    day_acc *a = ud;
    a->days++;
    uint32_t c;
    uint64_t w;
    sy_day_stats(d, 0, &c, &w);
    a->count0 += c;
    a->dwell0 += w;
}

static void test_events_by_business_day(void **state)
{
    sy_index *ix = sy_index_new(8 * 3600 * 1000); /* Asia/Shanghai */
    sy_index_add_customer(ix, "C0", 0);
    int64_t t0;
    assert_true(sy_parse_time("2026-11-22T15:59:59Z", &t0)); /* 23:59:59 on the 22nd in +08 */
    sy_index_add_event(ix, 0, "view_wealth", t0, 1000);
    sy_index_add_event(ix, 0, "view_wealth", t0 + 2000, 30000); /* 00:00:01 on the 23rd */
    sy_index_add_event(ix, 0, "view_wealth", t0 + 3000, -1);
    sy_index_rdlock(ix);
    int64_t d22, d23;
    sy_parse_date("2026-11-22", &d22);
    sy_parse_date("2026-11-23", &d23);
    assert_int_equal(sy_index_day(ix, t0), d22);
    assert_int_equal(sy_index_day(ix, t0 + 2000), d23);
    day_acc a = {0};
    sy_index_days(ix, "view_wealth", d23, d23, acc, &a);
    assert_int_equal(a.days, 1);
    assert_int_equal(a.count0, 2);
    assert_int_equal(a.dwell0, 30000);
    memset(&a, 0, sizeof a);
    sy_index_days(ix, "view_wealth", d22, d23, acc, &a);
    assert_int_equal(a.days, 2);
    assert_int_equal(a.count0, 3);
    memset(&a, 0, sizeof a);
    sy_index_days(ix, "buy_fund", d22, d23, acc, &a);
    assert_int_equal(a.days, 0);
    sy_index_unlock(ix);
    sy_index_free(ix);
}

static void test_rebuild_from_store(void **state)
{
    char *dir = tu_tempdir();
    sy_store *st = tu_store_open(dir, true);
    sy_conn *w = sy_store_write_conn(st);
    assert_int_equal(sy_conn_begin(w), SY_OK);
    assert_int_equal(sy_tenant_create(w, "t", "T", "Asia/Shanghai", 0), SY_OK);
    assert_int_equal(sy_conn_exec(w, "INSERT INTO customers (tenant_id, customer_no, dense_id,"
                                     " attrs, created_at, updated_at) VALUES"
                                     " ('t', 'A', 0, '{\"risk_level\":\"R3\",\"aum\":100}', 0, 0),"
                                     " ('t', 'B', 1, '{\"risk_level\":\"R1\"}', 0, 0)"),
                     SY_OK);
    assert_int_equal(sy_conn_exec(w, "INSERT INTO events (tenant_id, event_id, customer_no, name,"
                                     " ts, dwell_ms, received_at) VALUES"
                                     " ('t', 'e1', 'B', 'login', 1795400000000, NULL, 0),"
                                     " ('t', 'e2', 'B', 'login', 1795400001000, 5, 0),"
                                     " ('t', 'e3', 'ghost', 'login', 1795400001000, 5, 0)"),
                     SY_OK);
    assert_int_equal(sy_conn_commit(w), SY_OK);
    sy_attr_set *s;
    assert_int_equal(sy_attr_load(w, "t", &s), SY_OK);
    sy_index *ix = sy_index_new(8 * 3600 * 1000);
    assert_int_equal(sy_index_rebuild(ix, w, "t", s), SY_OK);
    sy_index_rdlock(ix);
    assert_int_equal(sy_index_size(ix), 2);
    assert_int_equal(card(sy_index_value(ix, "risk_level", "R3")), 1);
    assert_true(roaring_bitmap_contains(sy_index_value(ix, "risk_level", "R1"), 1));
    const roaring_bitmap_t *present;
    assert_int_equal(sy_index_column(ix, "aum", &present)[0], 100);
    day_acc a = {0};
    int64_t day = sy_index_day(ix, 1795400000000);
    sy_index_days(ix, "login", day, day, acc, &a);
    assert_int_equal(a.days, 1);
    assert_int_equal(a.count0, 0); /* the events are B's, dense 1 */
    assert_true(sy_index_memory(ix) > 0);
    sy_index_unlock(ix);
    sy_index_free(ix);
    sy_attr_set_release(s);
    sy_store_close(st);
    tu_rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_attribute_updates_move_between_bitmaps),
        cmocka_unit_test(test_events_by_business_day),
        cmocka_unit_test(test_rebuild_from_store),
    };
    return cmocka_run_group_tests_name("index_bitmaps_columns_days", tests, NULL, NULL);
}

/* test_index.c — the in-memory indexes: updates, business days, rebuild. */
#include "testutil.h"
#include "unit/store_fixture.h"

#include "customer.h"
#include "index.h"
#include "store.h"
#include "tenant.h"
#include "util.h"

static sy_attr_set *schema(void)
{
    sy_attr_set *s = calloc(1, sizeof *s);
    atomic_init(&s->refs, 1);
    s->n = 6;
    s->defs = calloc(6, sizeof *s->defs);
    const char *defs[] = {
        "{\"name\":\"risk_level\",\"type\":\"enum\",\"values\":[\"R1\",\"R2\",\"R3\"]}",
        "{\"name\":\"aum\",\"type\":\"integer\",\"unit\":\"fen\"}",
        "{\"name\":\"payroll\",\"type\":\"bool\"}",
        "{\"name\":\"registered_at\",\"type\":\"date\"}",
        "{\"name\":\"rate\",\"type\":\"number\",\"scale\":2}",
        "{\"name\":\"city\",\"type\":\"string\"}",
    };
    for (int i = 0; i < 6; i++) {
        json_t *b = json_loads(defs[i], 0, NULL);
        const char *f;
        char err[128];
        assert_true(sy_attr_def_parse(b, &s->defs[i], &f, err, sizeof err));
        s->defs[i].ordinal = i;
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
    int64_t v;
    assert_true(sy_index_numeric(ix, "aum", 0, &v));
    assert_int_equal(v, 500);
    assert_true(sy_index_numeric(ix, "aum", 1, &v));
    assert_int_equal(v, 7);
    assert_int_equal(card(sy_index_present(ix, "aum")), 2);
    int64_t days;
    sy_parse_date("2026-01-02", &days);
    assert_true(sy_index_numeric(ix, "registered_at", 0, &v));
    assert_int_equal(v, days);
    assert_false(sy_index_numeric(ix, "registered_at", 1, &v));
    assert_int_equal(card(sy_index_present(ix, "registered_at")), 1);
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
    const roaring_bitmap_t *present = sy_index_present(ix, "aum");
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

typedef struct grab {
    uint64_t *c, *d; /* sums read by sy_day_add_sums */
    uint32_t *cnt;   /* what they should be */
    uint64_t *dw;
    uint64_t actors;
    uint32_t n; /* customers to check point lookups for (0: 20000) */
} grab;

/* Copies a day's sums into plain arrays and checks point lookups. */
static void grab_day(int64_t day, const sy_day_events *d, void *ud)
{
    grab *g = ud;
    (void)day;
    sy_day_add_sums(d, g->c, false);
    sy_day_add_sums(d, g->d, true);
    g->actors = roaring_bitmap_get_cardinality(sy_day_actors(d));
    /* point lookups agree with the sums */
    for (uint32_t i = 0; i < (g->n ? g->n : 20000); i += 7) {
        uint32_t c;
        uint64_t w;
        sy_day_stats(d, i, &c, &w);
        assert_int_equal(c, g->cnt[i]);
        assert_int_equal(w, g->dw[i]);
    }
}

/* Values that force a column through every width, customers in a scattered
 * order, then range scans against the values kept here. */
static void test_column_widens_and_keeps_values(void **state)
{
    sy_attr_set *s = schema();
    sy_index *ix = sy_index_new(0);
    enum { N = 5000 };
    static int64_t want[N];
    /* widths 1, 1, 4, 5 (zigzag below 2^40), 5, 8 */
    static const int64_t steps[] = {3,         -100,      40000, -3000000000LL, 500000000000LL,
                                    INT64_MAX, INT64_MIN, 0};
    uint64_t x = 12345;
    for (int k = 0; k < N; k++) {
        int i = (int)((k * 7919L) % N); /* every id once, out of order */
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        int64_t step = steps[(k * (int)(sizeof steps / sizeof *steps)) / N];
        int64_t v = step == INT64_MAX ? step - (int64_t)(x >> 60) : step + (int64_t)(x >> 60);
        want[i] = v;
        char no[16], js[64];
        snprintf(no, sizeof no, "C%d", i);
        snprintf(js, sizeof js, "{\"aum\":%lld}", (long long)v);
        json_t *a = json_loads(js, 0, NULL);
        sy_index_add_customer(ix, no, (uint32_t)i);
        sy_index_update_attrs(ix, (uint32_t)i, s, NULL, a);
        json_decref(a);
    }
    sy_index_rdlock(ix);
    for (int i = 0; i < N; i++) {
        int64_t v;
        assert_true(sy_index_numeric(ix, "aum", (uint32_t)i, &v));
        assert_int_equal(v, want[i]);
        char no[16];
        snprintf(no, sizeof no, "C%d", i);
        uint32_t d;
        assert_true(sy_index_dense(ix, no, &d));
        assert_int_equal(d, i);
        assert_string_equal(sy_index_customer_no(ix, (uint32_t)i), no);
    }
    static const int64_t bounds[][2] = {
        {0, 20}, {-200, 0}, {INT64_MIN, -1}, {40000, INT64_MAX}, {INT64_MIN, INT64_MAX}, {5, 4}};
    for (size_t b = 0; b < sizeof bounds / sizeof *bounds; b++) {
        roaring_bitmap_t *got = sy_index_range(ix, "aum", NULL, bounds[b][0], bounds[b][1]);
        uint64_t n = 0;
        for (int i = 0; i < N; i++)
            if (want[i] >= bounds[b][0] && want[i] <= bounds[b][1]) {
                n++;
                assert_true(roaring_bitmap_contains(got, (uint32_t)i));
            }
        assert_int_equal(card(got), n);
        roaring_bitmap_free(got);
    }
    /* among: only the even ids are tested */
    roaring_bitmap_t *even = roaring_bitmap_create();
    for (uint32_t i = 0; i < N; i += 2)
        roaring_bitmap_add(even, i);
    roaring_bitmap_t *got = sy_index_range(ix, "aum", even, INT64_MIN, INT64_MAX);
    assert_int_equal(card(got), N / 2);
    roaring_bitmap_free(got);
    roaring_bitmap_free(even);
    sy_index_unlock(ix);
    sy_index_free(ix);
    sy_attr_set_release(s);
}

/* A column of millions of entries has a mapping of its own (huge pages
 * where the kernel grants them); values survive growing into it and
 * widening within it. */
static void test_large_column(void **state)
{
    sy_attr_set *s = schema();
    sy_index *ix = sy_index_new(0);
    enum { FAR = 1200000 };
    static const uint32_t ids[] = {0, 1, 2, 2999, FAR, FAR + 1};
    int64_t want[6];
    for (size_t k = 0; k < 6; k++) {
        /* values 5 * 10^11 apart (5-byte entries), then one that needs 8 */
        want[k] = k == 5 ? INT64_MIN + 7 : (k % 2 ? 450000000000LL : -50000000000LL) + (int64_t)k;
        char no[16], js[64];
        snprintf(no, sizeof no, "C%u", ids[k]);
        snprintf(js, sizeof js, "{\"aum\":%lld}", (long long)want[k]);
        json_t *a = json_loads(js, 0, NULL);
        sy_index_add_customer(ix, no, ids[k]);
        sy_index_update_attrs(ix, ids[k], s, NULL, a);
        json_decref(a);
        sy_index_rdlock(ix);
        for (size_t j = 0; j <= k; j++) {
            int64_t v;
            assert_true(sy_index_numeric(ix, "aum", ids[j], &v));
            assert_true(v == want[j]);
        }
        roaring_bitmap_t *got = sy_index_range(ix, "aum", NULL, INT64_MIN + 8, INT64_MAX);
        assert_int_equal(card(got), k == 5 ? 5 : k + 1);
        assert_false(roaring_bitmap_contains(got, FAR + 1));
        roaring_bitmap_free(got);
        sy_index_unlock(ix);
    }
    sy_index_free(ix);
    sy_attr_set_release(s);
}

/* Counts and dwell sums of one day, against a plain array, while the day
 * grows through several compactions and customers are merged into others
 * (before and after their entries were compacted). */
static void test_day_entries_match_plain_sums(void **state)
{
    enum { N = 20000, EVENTS = 120000 };
    sy_attr_set *s = schema();
    sy_index *ix = sy_index_new(0);
    static uint32_t cnt[N];
    static uint64_t dw[N];
    static bool gone[N];
    memset(cnt, 0, sizeof cnt);
    memset(dw, 0, sizeof dw);
    memset(gone, 0, sizeof gone);
    for (int i = 0; i < N; i++) {
        char no[16];
        snprintf(no, sizeof no, "C%d", i);
        sy_index_add_customer(ix, no, (uint32_t)i);
    }
    uint64_t x = 99;
    for (int k = 0; k < EVENTS; k++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        /* the first half: a third of the customers; then everyone */
        uint32_t c = (uint32_t)((x >> 33) % (k < EVENTS / 2 ? N / 3 : N));
        int64_t dwell = (x >> 20) % 4 ? (int64_t)((x >> 40) % 60000) : -1;
        if (gone[c])
            continue;
        sy_index_add_event(ix, c, "view", 1000, dwell);
        cnt[c]++;
        dw[c] += dwell > 0 ? (uint64_t)dwell : 0;
        if (k % 9973 == 0 && k) { /* merge c into its neighbour */
            uint32_t into = (c + 1) % N;
            if (gone[into])
                continue;
            sy_index_merge(ix, s, c, NULL, into);
            cnt[into] += cnt[c];
            dw[into] += dw[c];
            cnt[c] = 0;
            dw[c] = 0;
            gone[c] = true;
        }
    }
    sy_index_rdlock(ix);
    day_acc a = {0};
    sy_index_days(ix, "view", 0, 0, acc, &a);
    assert_int_equal(a.days, 1);
    uint64_t *csum = calloc(N, sizeof *csum), *dsum = calloc(N, sizeof *dsum);
    grab g = {csum, dsum, cnt, dw, 0, N};
    sy_index_days(ix, "view", 0, 0, grab_day, &g);
    uint64_t actors = 0;
    for (int i = 0; i < N; i++) {
        assert_int_equal(csum[i], cnt[i]);
        assert_int_equal(dsum[i], dw[i]);
        actors += cnt[i] > 0;
    }
    assert_int_equal(g.actors, actors);
    free(csum);
    free(dsum);
    sy_index_unlock(ix);
    sy_index_free(ix);
    sy_attr_set_release(s);
}

/* A merge right after a day was compacted (its sealed ids shared with its
 * actors), then a new actor: every entry stays with its customer. */
static void test_day_merge_after_compaction(void **state)
{
    enum { N = 1025 }; /* one more than the delta holds before compacting */
    sy_attr_set *s = schema();
    sy_index *ix = sy_index_new(0);
    for (int i = 0; i < N + 10; i++) {
        char no[16];
        snprintf(no, sizeof no, "C%d", i);
        sy_index_add_customer(ix, no, (uint32_t)i);
    }
    for (int i = 0; i < N; i++)
        sy_index_add_event(ix, (uint32_t)i, "view", 1000, i);
    sy_index_merge(ix, s, 10, NULL, 11);
    sy_index_add_event(ix, N + 5, "view", 1000, 7);
    sy_index_add_event(ix, 12, "view", 1000, 1);
    static uint32_t cnt[N + 10];
    static uint64_t dw[N + 10];
    for (int i = 0; i < N; i++)
        cnt[i] = 1, dw[i] = (uint64_t)i;
    cnt[11] += cnt[10], dw[11] += dw[10], cnt[10] = 0, dw[10] = 0;
    cnt[N + 5] = 1, dw[N + 5] = 7;
    cnt[12]++, dw[12] += 1;
    sy_index_rdlock(ix);
    uint64_t *csum = calloc(N + 10, sizeof *csum), *dsum = calloc(N + 10, sizeof *dsum);
    grab g = {csum, dsum, cnt, dw, 0, N + 10};
    sy_index_days(ix, "view", 0, 0, grab_day, &g);
    for (int i = 0; i < N + 10; i++) {
        assert_int_equal(csum[i], cnt[i]);
        assert_int_equal(dsum[i], dw[i]);
    }
    assert_int_equal(g.actors, N); /* 10 left, N + 5 came */
    free(csum);
    free(dsum);
    sy_index_unlock(ix);
    sy_index_free(ix);
    sy_attr_set_release(s);
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
    /* the index reads the packed copy of the attributes (schema: the store's) */
    json_t *ja = json_pack("{s:s, s:i}", "risk_level", "R3", "aum", 100);
    json_t *jb = json_pack("{s:s}", "risk_level", "R1");
    assert_int_equal(sy_customer_packed_put(w, NULL, "t", "A", 0, ja), SY_OK);
    assert_int_equal(sy_customer_packed_put(w, NULL, "t", "B", 1, jb), SY_OK);
    json_decref(ja);
    json_decref(jb);
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
    sy_index_load load;
    assert_int_equal(sy_index_rebuild(ix, w, NULL, "t", s, &load), SY_OK);
    assert_int_equal(load.customers, 2);
    assert_int_equal(load.events, 2); /* the ghost's event has no customer */
    sy_index_rdlock(ix);
    assert_int_equal(sy_index_size(ix), 2);
    assert_int_equal(card(sy_index_value(ix, "risk_level", "R3")), 1);
    assert_true(roaring_bitmap_contains(sy_index_value(ix, "risk_level", "R1"), 1));
    int64_t aum;
    assert_true(sy_index_numeric(ix, "aum", 0, &aum));
    assert_int_equal(aum, 100);
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

/* Only the sums and the number of actors. */
static void sum_day(int64_t day, const sy_day_events *d, void *ud)
{
    grab *g = ud;
    (void)day;
    sy_day_add_sums(d, g->c, false);
    sy_day_add_sums(d, g->d, true);
    g->actors = roaring_bitmap_get_cardinality(sy_day_actors(d));
}

/* An index rebuilt from stored events (buffered, sorted, summed per day)
 * holds the same entries as one fed the same events one by one. */
static void test_rebuild_matches_live_updates(void **state)
{
    enum { CUSTOMERS = 300, EVENTS = 6000 };
    char *dir = tu_tempdir();
    sy_store *st = tu_store_open(dir, true);
    sy_conn *w = sy_store_write_conn(st);
    assert_int_equal(sy_conn_begin(w), SY_OK);
    assert_int_equal(sy_tenant_create(w, "t", "T", "Asia/Shanghai", 0), SY_OK);
    sy_index *live = sy_index_new(8 * 3600 * 1000);
    char sql[512]; /* the INSERT below quotes attrs (up to 255 bytes) */
    sy_attr_set *s = schema();
    static const char *const risks[] = {"R1", "R2", "R3"}, *const cities[] = {"上海", "北京"};
    for (int i = 0; i < CUSTOMERS; i++) {
        /* every type, some values missing, in the canonical form the API
         * stores (numbers as text with the scale's decimals, dates as text) */
        char attrs[256];
        snprintf(attrs, sizeof attrs,
                 "{\"aum\":%d,\"city\":\"%s\",%s\"rate\":\"%d.%02d\",\"registered_at\":"
                 "\"2026-0%d-1%d\",\"risk_level\":\"%s\"}",
                 i * 997 - 5000, cities[i % 2], i % 3 ? "\"payroll\":true," : "", i % 7, i % 100,
                 1 + i % 9, i % 10, risks[i % 3]);
        if (i % 5 == 0)
            strcpy(attrs, "{}");
        snprintf(sql, sizeof sql,
                 "INSERT INTO customers (tenant_id, customer_no, dense_id, attrs, created_at,"
                 " updated_at) VALUES ('t', 'C%d', %d, '%s', 0, 0)",
                 i, i, attrs);
        assert_int_equal(sy_conn_exec(w, sql), SY_OK);
        snprintf(sql, sizeof sql, "C%d", i);
        sy_index_add_customer(live, sql, (uint32_t)i);
        json_t *a = json_loads(attrs, 0, NULL);
        assert_non_null(a);
        assert_int_equal(sy_customer_packed_put(w, s, "t", sql, i, a), SY_OK);
        sy_index_update_attrs(live, (uint32_t)i, s, NULL, a);
        json_decref(a);
    }
    uint64_t x = 7;
    const int64_t t0 = 1795400000000;
    for (int k = 0; k < EVENTS; k++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        int c = (int)((x >> 33) % CUSTOMERS);
        const char *name = (x >> 20) % 3 ? "view" : "buy";
        int64_t ts = t0 + (int64_t)((x >> 24) % (3 * 86400000ULL));
        int64_t dwell = (x >> 50) % 2 ? (int64_t)((x >> 40) % 86400000) : -1;
        char dw[24] = "NULL";
        if (dwell >= 0)
            snprintf(dw, sizeof dw, "%lld", (long long)dwell);
        snprintf(sql, sizeof sql,
                 "INSERT INTO events (tenant_id, event_id, customer_no, name, ts, dwell_ms,"
                 " received_at) VALUES ('t', 'e%d', 'C%d', '%s', %lld, %s, 0)",
                 k, c, name, (long long)ts, dw);
        assert_int_equal(sy_conn_exec(w, sql), SY_OK);
        sy_index_add_event(live, (uint32_t)c, name, ts, dwell);
    }
    assert_int_equal(sy_conn_commit(w), SY_OK);
    /* once on one connection, once with the events read beside the
     * customers on a second one */
    sy_conn *r1 = sy_store_acquire(st), *r2 = sy_store_try_acquire(st);
    assert_non_null(r2);
    assert_null(sy_store_try_acquire(st)); /* the fixture has two readers */
    for (int twice = 0; twice < 2; twice++) {
        sy_index *built = sy_index_new(8 * 3600 * 1000);
        sy_index_load load;
        assert_int_equal(sy_index_rebuild(built, twice ? r1 : w, twice ? r2 : NULL, "t", s, &load),
                         SY_OK);
        assert_int_equal(load.customers, CUSTOMERS);
        assert_int_equal(load.events, EVENTS);
        /* the same attribute indexes */
        for (int i = 0; i < 3; i++)
            assert_true(roaring_bitmap_equals(sy_index_value(live, "risk_level", risks[i]),
                                              sy_index_value(built, "risk_level", risks[i])));
        for (int i = 0; i < 2; i++)
            assert_true(roaring_bitmap_equals(sy_index_value(live, "city", cities[i]),
                                              sy_index_value(built, "city", cities[i])));
        assert_true(roaring_bitmap_equals(sy_index_value(live, "payroll", "true"),
                                          sy_index_value(built, "payroll", "true")));
        static const char *const numeric[] = {"aum", "registered_at", "rate"};
        for (int k = 0; k < 3; k++) {
            assert_true(roaring_bitmap_equals(sy_index_present(live, numeric[k]),
                                              sy_index_present(built, numeric[k])));
            assert_int_equal(card(sy_index_present(built, numeric[k])), CUSTOMERS - CUSTOMERS / 5);
            for (uint32_t i = 0; i < CUSTOMERS; i++) {
                int64_t a = 0, b = 0;
                assert_int_equal(sy_index_numeric(live, numeric[k], i, &a),
                                 sy_index_numeric(built, numeric[k], i, &b));
                assert_int_equal(a, b);
            }
        }
        static const char *const names[] = {"view", "buy"};
        int64_t first = sy_index_day(live, t0);
        for (int n = 0; n < 2; n++)
            for (int64_t day = first; day <= first + 3; day++) {
                uint64_t lc[CUSTOMERS] = {0}, ld[CUSTOMERS] = {0}, bc[CUSTOMERS] = {0},
                         bd[CUSTOMERS] = {0};
                grab gl = {lc, ld, NULL, NULL, 0, 0}, gb = {bc, bd, NULL, NULL, 0, 0};
                sy_index_days(live, names[n], day, day, sum_day, &gl);
                sy_index_days(built, names[n], day, day, sum_day, &gb);
                assert_int_equal(gl.actors, gb.actors);
                for (int i = 0; i < CUSTOMERS; i++) {
                    assert_int_equal(lc[i], bc[i]);
                    assert_int_equal(ld[i], bd[i]);
                }
            }
        sy_index_free(built);
    }
    sy_store_release(st, r1);
    sy_store_release(st, r2);
    sy_index_free(live);
    sy_attr_set_release(s);
    sy_store_close(st);
    tu_rmtree(dir);
    free(dir);
}

static json_t *aum_json(const int64_t *v)
{
    char js[64];
    if (v)
        snprintf(js, sizeof js, "{\"aum\":%lld}", (long long)*v);
    else
        snprintf(js, sizeof js, "{}");
    return json_loads(js, 0, NULL);
}

/* Customer i's aum goes from ov to nv (NULL: none). */
static void set_aum(sy_index *ix, const sy_attr_set *s, int i, const int64_t *ov, const int64_t *nv)
{
    json_t *o = aum_json(ov), *a = aum_json(nv);
    sy_index_update_attrs(ix, (uint32_t)i, s, o, a);
    json_decref(o);
    json_decref(a);
}

/* Checks the cover of every range over [-2, 62] against the values: each
 * customer in in \ in_not is in the range, each customer in the range is in
 * may \ may_not. */
static void check_covers(sy_index *ix, const int64_t *val, const bool *has, int n)
{
    int64_t ends[67];
    size_t nends = 0;
    ends[nends++] = INT64_MIN;
    for (int64_t v = -2; v <= 62; v++)
        ends[nends++] = v;
    ends[nends++] = INT64_MAX;
    for (size_t a = 0; a < nends; a++)
        for (size_t b = a; b < nends; b++) {
            int64_t lo = ends[a], hi = ends[b];
            sy_range_cover c;
            assert_true(sy_index_range_cover(ix, "aum", lo, hi, &c));
            assert_non_null(c.may);
            for (int i = 0; i < n; i++) {
                bool in_range = has[i] && val[i] >= lo && val[i] <= hi;
                bool sure = c.in && roaring_bitmap_contains(c.in, (uint32_t)i) &&
                            !(c.in_not && roaring_bitmap_contains(c.in_not, (uint32_t)i));
                bool may = roaring_bitmap_contains(c.may, (uint32_t)i) &&
                           !(c.may_not && roaring_bitmap_contains(c.may_not, (uint32_t)i));
                if ((sure && !in_range) || (in_range && !may))
                    fail_msg("[%lld, %lld]: customer %d (value %lld, %s): sure %d, may %d",
                             (long long)lo, (long long)hi, i, (long long)val[i],
                             has[i] ? "set" : "none", sure, may);
            }
        }
}

/* Range buckets: their covers hold for every range, the certain part is not
 * empty where the buckets allow it, and they follow changes made after they
 * were built (new customers, new values, removed values). */
static void test_range_buckets(void **state)
{
    (void)state;
    sy_attr_set *s = schema();
    sy_index *ix = sy_index_new(0);
    enum { N = 400 };
    static int64_t val[N];
    static bool has[N];
    uint32_t saved = sy_index_bucket_min;
    sy_index_bucket_min = 0;
    for (int i = 0; i < N / 2; i++) {
        char no[16];
        snprintf(no, sizeof no, "C%d", i);
        sy_index_add_customer(ix, no, (uint32_t)i);
        has[i] = i % 7 != 0;
        val[i] = (i * 37) % 61; /* 0 .. 60, ties */
        set_aum(ix, s, i, NULL, has[i] ? &val[i] : NULL);
    }
    sy_index_rdlock(ix);
    check_covers(ix, val, has, N / 2); /* builds the buckets */
    sy_range_cover c;
    assert_true(sy_index_range_cover(ix, "aum", 20, INT64_MAX, &c));
    assert_non_null(c.in); /* the bounds (about 15, 30, 45) leave >= 30 certain */
    assert_true(c.may != c.in);
    sy_index_unlock(ix);
    /* changes after the build: new customers, values moved across the
     * bounds, values removed and set again */
    for (int i = N / 2; i < N; i++) {
        char no[16];
        snprintf(no, sizeof no, "C%d", i);
        sy_index_add_customer(ix, no, (uint32_t)i);
        has[i] = i % 5 != 0;
        val[i] = (i * 13) % 63 - 1;
        set_aum(ix, s, i, NULL, has[i] ? &val[i] : NULL);
    }
    for (int i = 0; i < N; i += 3) {
        int64_t old = val[i];
        bool had = has[i];
        has[i] = !has[i] || i % 2;
        val[i] = 60 - val[i];
        set_aum(ix, s, i, had ? &old : NULL, has[i] ? &val[i] : NULL);
    }
    sy_index_rdlock(ix);
    check_covers(ix, val, has, N);
    assert_false(sy_index_range_cover(ix, "risk_level", 0, 1, &c)); /* not numeric */
    sy_index_unlock(ix);
    sy_index_bucket_min = saved;
    sy_index_rdlock(ix);
    assert_false(sy_index_range_cover(ix, "aum", 0, 1, &c)); /* a small tenant: none */
    sy_index_unlock(ix);
    sy_index_free(ix);
    sy_attr_set_release(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_attribute_updates_move_between_bitmaps),
        cmocka_unit_test(test_events_by_business_day),
        cmocka_unit_test(test_rebuild_from_store),
        cmocka_unit_test(test_column_widens_and_keeps_values),
        cmocka_unit_test(test_large_column),
        cmocka_unit_test(test_day_entries_match_plain_sums),
        cmocka_unit_test(test_day_merge_after_compaction),
        cmocka_unit_test(test_rebuild_matches_live_updates),
        cmocka_unit_test(test_range_buckets),
    };
    return cmocka_run_group_tests_name("index_bitmaps_columns_days", tests, NULL, NULL);
}

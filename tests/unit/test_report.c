/* test_report.c — activity and retention against a brute-force count over
 * the same random events: per customer and business day, was there an
 * event (of the names that count)?  Day boundaries in two time zones, empty
 * ranges, an empty population. */
#include "testutil.h"

#include "index.h"
#include "report.h"
#include "util.h"

#define NCUST 300
#define NDAYS 70
#define DAY_MS 86400000LL

static const char *const k_names[] = {"login", "view_fund", "buy_fund"};

typedef struct fixture {
    sy_index *ix;
    int64_t offset_ms;
    int64_t day0;                 /* business day of the first event */
    bool did[3][NCUST][NDAYS];    /* per name, customer, day - day0 */
    int count[3][NCUST][NDAYS];   /* how many such events */
    roaring_bitmap_t *population; /* every third customer */
} fixture;

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Events at random times; a third of the customers are active rarely, the
 * rest often, so cohorts and returns both happen. */
static fixture *make(int64_t offset_ms, uint64_t seed)
{
    fixture *f = calloc(1, sizeof *f);
    f->offset_ms = offset_ms;
    f->ix = sy_index_new(offset_ms);
    char no[16];
    for (int c = 0; c < NCUST; c++) {
        snprintf(no, sizeof no, "C%04d", c);
        sy_index_add_customer(f->ix, no, (uint32_t)c);
    }
    int64_t t0 = 1767225600000LL; /* 2026-01-01T00:00:00Z */
    f->day0 = sy_index_day(f->ix, t0);
    uint64_t s = seed;
    for (int c = 0; c < NCUST; c++) {
        int per = c % 3 == 0 ? 3 : 40;
        for (int k = 0; k < per; k++) {
            /* times spread over NDAYS - 1 days, any time of day */
            int64_t ts = t0 + (int64_t)(rnd(&s) % (uint64_t)((NDAYS - 1) * DAY_MS));
            int n = (int)(rnd(&s) % 3);
            sy_index_add_event(f->ix, (uint32_t)c, k_names[n], ts, -1);
            int64_t day = sy_index_day(f->ix, ts) - f->day0;
            assert_true(day >= 0 && day < NDAYS);
            f->did[n][c][day] = true;
            f->count[n][c][day]++;
        }
    }
    f->population = roaring_bitmap_create();
    for (uint32_t c = 0; c < NCUST; c += 3)
        roaring_bitmap_add(f->population, c);
    return f;
}

static void drop(fixture *f)
{
    sy_index_free(f->ix);
    roaring_bitmap_free(f->population);
    free(f);
}

/* Brute force: active on relative day d (which names count: mask). */
static bool active(const fixture *f, int c, int64_t d, unsigned mask)
{
    if (d < 0 || d >= NDAYS)
        return false;
    for (int n = 0; n < 3; n++)
        if ((mask >> n & 1) && f->did[n][c][d])
            return true;
    return false;
}

static bool in_pop(const fixture *f, int c, bool pop)
{
    return !pop || roaring_bitmap_contains(f->population, (uint32_t)c);
}

static void check_activity(const fixture *f, int64_t from, int64_t to, unsigned mask, bool pop)
{
    const char *names[3];
    size_t nn = 0;
    for (int n = 0; n < 3; n++)
        if (mask >> n & 1)
            names[nn++] = k_names[n];
    sy_report_days d;
    sy_index_rdlock(f->ix);
    sy_report_days_collect(f->ix, mask == 7 ? NULL : names, mask == 7 ? 0 : nn, f->day0 + from - 29,
                           f->day0 + to, pop ? f->population : NULL, &d);
    sy_index_unlock(f->ix);
    size_t nrows = to >= from ? (size_t)(to - from + 1) : 0;
    sy_activity_row *rows = calloc(nrows + 1, sizeof *rows);
    sy_report_activity(&d, f->day0 + from, f->day0 + to, rows);
    for (int64_t day = from; day <= to; day++) {
        uint64_t dau = 0, wau = 0, mau = 0, fresh = 0;
        for (int c = 0; c < NCUST; c++) {
            if (!in_pop(f, c, pop))
                continue;
            bool a = active(f, c, day, mask), w = false, m = false, before = false;
            for (int64_t k = 0; k < 30; k++) {
                bool x = active(f, c, day - k, mask);
                m |= x;
                if (k < 7)
                    w |= x;
            }
            for (int64_t k = 0; k < day; k++)
                before |= active(f, c, k, mask);
            dau += a;
            wau += w;
            mau += m;
            fresh += a && !before;
        }
        const sy_activity_row *r = &rows[day - from];
        assert_int_equal(r->day, f->day0 + day);
        assert_int_equal(r->dau, dau);
        assert_int_equal(r->wau, wau);
        assert_int_equal(r->mau, mau);
        assert_int_equal(r->new_, fresh);
        assert_int_equal(r->returning, dau - fresh);
        assert_true(r->stickiness == (mau ? (double)dau / (double)mau : 0.0));
    }
    free(rows);
    sy_report_days_free(&d);
}

static void check_retention(const fixture *f, int64_t from, int64_t to, int64_t until,
                            size_t periods, unsigned cmask, unsigned rmask, bool pop)
{
    const char *cn[3], *rn[3];
    size_t ncn = 0, nrn = 0;
    for (int n = 0; n < 3; n++) {
        if (cmask >> n & 1)
            cn[ncn++] = k_names[n];
        if (rmask >> n & 1)
            rn[nrn++] = k_names[n];
    }
    sy_report_days cd, rd;
    const roaring_bitmap_t *among = pop ? f->population : NULL;
    sy_index_rdlock(f->ix);
    sy_report_days_collect(f->ix, cn, ncn, f->day0 + from, f->day0 + to, among, &cd);
    sy_report_days_collect(f->ix, rn, nrn, f->day0 + from, f->day0 + until, among, &rd);
    sy_index_unlock(f->ix);
    sy_retention r;
    sy_report_retention(&cd, &rd, f->day0 + from, f->day0 + to, periods, &r);
    if (cmask == rmask) { /* the returns' days, which go further, serve as cohorts too */
        sy_retention same;
        sy_report_retention(&rd, &rd, f->day0 + from, f->day0 + to, periods, &same);
        assert_int_equal(same.ncohorts, r.ncohorts);
        assert_memory_equal(same.size, r.size, r.ncohorts * sizeof *r.size);
        assert_memory_equal(same.exact, r.exact, r.ncohorts * periods * sizeof *r.exact);
        assert_memory_equal(same.on_or_after, r.on_or_after,
                            r.ncohorts * periods * sizeof *r.on_or_after);
        sy_retention_free(&same);
    }
    assert_int_equal(r.ncohorts, to >= from ? (size_t)(to - from + 1) : 0);
    for (int64_t day = from; day <= to; day++) {
        size_t ci = (size_t)(day - from);
        assert_int_equal(r.day[ci], f->day0 + day);
        size_t known = until - day + 1 < (int64_t)periods ? (size_t)(until - day + 1) : periods;
        assert_int_equal(r.known[ci], known);
        uint64_t size = 0;
        uint64_t *exact = calloc(periods, sizeof *exact), *later = calloc(periods, sizeof *later);
        for (int c = 0; c < NCUST; c++) {
            if (!in_pop(f, c, pop) || !active(f, c, day, cmask))
                continue;
            bool before = false;
            for (int64_t k = 0; k < day; k++)
                before |= active(f, c, k, cmask);
            if (before)
                continue;
            size++;
            for (size_t p = 0; p < known; p++) {
                exact[p] += active(f, c, day + (int64_t)p, rmask);
                bool any = false;
                for (int64_t k = day + (int64_t)p; k <= until; k++)
                    any |= active(f, c, k, rmask);
                later[p] += any;
            }
        }
        assert_int_equal(r.size[ci], size);
        for (size_t p = 0; p < periods; p++) {
            assert_int_equal(r.exact[ci * periods + p], exact[p]);
            assert_int_equal(r.on_or_after[ci * periods + p], later[p]);
        }
        free(exact);
        free(later);
    }
    sy_retention_free(&r);
    sy_report_days_free(&cd);
    sy_report_days_free(&rd);
}

static void test_activity_matches_brute_force(void **state)
{
    (void)state;
    for (int z = 0; z < 2; z++) {
        fixture *f = make(z ? 8 * 3600 * 1000 : 0, 0x9e3779b97f4a7c15ull + (uint64_t)z);
        check_activity(f, 0, NDAYS - 1, 7, false); /* the first days: no history */
        check_activity(f, 35, 60, 7, false);
        check_activity(f, 35, 60, 7, true);                /* a segment */
        check_activity(f, 10, 40, 1 | 4, false);           /* only login and buy_fund */
        check_activity(f, 40, 39, 7, false);               /* empty range */
        check_activity(f, NDAYS + 5, NDAYS + 9, 7, false); /* past the data */
        drop(f);
    }
}

static void test_retention_matches_brute_force(void **state)
{
    (void)state;
    for (int z = 0; z < 2; z++) {
        fixture *f = make(z ? 8 * 3600 * 1000 : 0, 0x2545f4914f6cdd1dull + (uint64_t)z);
        check_retention(f, 0, 20, 40, 14, 7, 7, false);
        check_retention(f, 0, 20, 40, 14, 7, 7, true);
        check_retention(f, 5, 30, 35, 10, 1, 4, false);  /* login cohorts, buy_fund returns */
        check_retention(f, 30, 45, 45, 30, 2, 7, false); /* periods beyond the data */
        check_retention(f, 50, 49, 60, 7, 7, 7, false);  /* no cohorts */
        drop(f);
    }
}

static void check_kpis(const fixture *f, int64_t from, int64_t to, int purchase_name, bool pop)
{
    const char *names[1] = {k_names[purchase_name]};
    sy_kpis k;
    sy_index_rdlock(f->ix);
    /* purchase_name 2 (buy_fund) is also what the default ("buy_*") finds */
    sy_report_kpis(f->ix, purchase_name == 2 ? NULL : names, purchase_name == 2 ? 0 : 1,
                   f->day0 + from, f->day0 + to, pop ? f->population : NULL, &k, NULL, NULL);
    sy_index_unlock(f->ix);
    int64_t len = to - from + 1;
    uint64_t customers = 0, act = 0, prev = 0, churned = 0, buyers = 0, again = 0;
    for (int c = 0; c < NCUST; c++) {
        if (!in_pop(f, c, pop))
            continue;
        customers++;
        bool a = false, b = false;
        int bought = 0;
        for (int64_t d = from; d <= to; d++) {
            a |= active(f, c, d, 7);
            if (d >= 0 && d < NDAYS)
                bought += f->count[purchase_name][c][d];
        }
        for (int64_t d = from - len; d < from; d++)
            b |= active(f, c, d, 7);
        act += a;
        prev += b;
        churned += b && !a;
        buyers += bought >= 1;
        again += bought >= 2;
    }
    assert_int_equal(k.customers, customers);
    assert_int_equal(k.active, act);
    assert_int_equal(k.active_prev, prev);
    assert_int_equal(k.churned, churned);
    assert_int_equal(k.purchasers, buyers);
    assert_int_equal(k.repurchasers, again);
    assert_true(again > 0); /* the fixture has repeat buyers */
}

static void test_kpis_match_brute_force(void **state)
{
    (void)state;
    for (int z = 0; z < 2; z++) {
        fixture *f = make(z ? 8 * 3600 * 1000 : 0, 0x51afd7ed558ccd00ull + (uint64_t)z);
        check_kpis(f, 30, 59, 2, false);
        check_kpis(f, 30, 59, 2, true);
        check_kpis(f, 40, 46, 0, false); /* a week; login as the purchase */
        check_kpis(f, 0, 13, 2, false);  /* the previous period before the data */
        drop(f);
    }
}

/* An empty population gives zeros, not errors. */
static void test_empty_population(void **state)
{
    (void)state;
    fixture *f = make(0, 77);
    roaring_bitmap_t *none = roaring_bitmap_create();
    sy_report_days d;
    sy_index_rdlock(f->ix);
    sy_report_days_collect(f->ix, NULL, 0, f->day0, f->day0 + 40, none, &d);
    sy_index_unlock(f->ix);
    sy_activity_row rows[12];
    sy_report_activity(&d, f->day0 + 29, f->day0 + 40, rows);
    for (int i = 0; i < 12; i++)
        assert_true(rows[i].dau == 0 && rows[i].mau == 0 && rows[i].stickiness == 0.0);
    sy_retention r;
    sy_report_retention(&d, &d, f->day0, f->day0 + 40, 5, &r);
    for (size_t c = 0; c < r.ncohorts; c++)
        assert_int_equal(r.size[c], 0);
    sy_retention_free(&r);
    sy_report_days_free(&d);
    roaring_bitmap_free(none);
    drop(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_activity_matches_brute_force),
        cmocka_unit_test(test_retention_matches_brute_force),
        cmocka_unit_test(test_kpis_match_brute_force),
        cmocka_unit_test(test_empty_population),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

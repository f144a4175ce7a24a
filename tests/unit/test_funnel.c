/* test_funnel.c — timed events, funnels and dwell percentiles against a
 * brute-force computation over the same random events: in two time zones,
 * with windows from an hour to days, repeated steps, a population, a
 * breakdown; after a merge; and the times read back from the store by a
 * rebuild and by a change of the timed names. */
#include "testutil.h"
#include "unit/store_fixture.h"

#include "customer.h"
#include "index.h"
#include "report.h"
#include "store.h"
#include "tenant.h"
#include "util.h"

#define NCUST 5000 /* past FUNNEL_SPLIT (report.c): two threads share each funnel */
#define NDAYS 20
#define HOUR_MS 3600000LL

static const char *const k_names[] = {"open", "view", "click", "buy"};
#define NNAMES 4

typedef struct ev {
    int c, name;
    int64_t ts, dwell; /* dwell < 0: none */
} ev;

typedef struct fixture {
    sy_index *ix;
    sy_attr_set *schema;
    int64_t t0;
    ev *evs;
    size_t nev;
    int ncust;
    size_t *first; /* customer c's events: evs[first[c] .. first[c + 1]) */
    int *risk;     /* 0: no value, 1..3: R1..R3 */
    roaring_bitmap_t *population;
} fixture;

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static sy_attr_set *schema(void)
{
    sy_attr_set *s = calloc(1, sizeof *s);
    atomic_init(&s->refs, 1);
    s->n = 2;
    s->defs = calloc(2, sizeof *s->defs);
    const char *defs[] = {
        "{\"name\":\"risk_level\",\"type\":\"enum\",\"values\":[\"R1\",\"R2\",\"R3\"]}",
        "{\"name\":\"aum\",\"type\":\"integer\",\"unit\":\"fen\"}",
    };
    for (int i = 0; i < 2; i++) {
        json_t *b = json_loads(defs[i], 0, NULL);
        const char *f;
        char err[128];
        assert_true(sy_attr_def_parse(b, &s->defs[i], &f, err, sizeof err));
        s->defs[i].ordinal = i;
        json_decref(b);
    }
    return s;
}

/* Random sessions: each a few events in order minutes apart, at any time
 * of day, so steps fall on both sides of midnight and of the windows. */
static void push_event(fixture *f, size_t *cap, ev e)
{
    if (f->nev == *cap) {
        *cap = *cap ? 2 * *cap : 64;
        f->evs = realloc(f->evs, *cap * sizeof *f->evs);
    }
    f->evs[f->nev++] = e;
}

static void make_events(fixture *f, uint64_t seed)
{
    uint64_t s = seed;
    size_t cap = 0;
    for (int c = 0; c < f->ncust; c++) {
        f->first[c] = f->nev;
        int sessions = (int)(rnd(&s) % 12);
        for (int k = 0; k < sessions; k++) {
            int64_t ts = f->t0 + (int64_t)(rnd(&s) % (uint64_t)((NDAYS - 2) * SY_DAY_MS));
            int len = 1 + (int)(rnd(&s) % 6);
            for (int e = 0; e < len; e++) {
                int name = (int)(rnd(&s) % NNAMES);
                /* dwell on view always, on click sometimes (0 included) */
                int64_t dwell = name == 1   ? (int64_t)(rnd(&s) % 600000)
                                : name == 2 ? (rnd(&s) % 3 ? -1 : (int64_t)(rnd(&s) % 5))
                                            : -1;
                push_event(f, &cap, (ev){c, name, ts, dwell});
                /* the same millisecond now and then */
                ts += rnd(&s) % 5 ? (int64_t)(rnd(&s) % (3 * HOUR_MS)) : 0;
            }
        }
    }
    f->first[f->ncust] = f->nev;
}

/* Many customers (three chunks of dense ids) whose days of each event
 * make every kind of container: everyone in a range opening the app on
 * day 1 (runs), a third of them viewing each day (bitsets), a few clicking
 * and buying (arrays), times at random.  Views dwell up to a day, so their
 * dwell times rarely repeat and a percentile one place off shows. */
static void make_wide_events(fixture *f, uint64_t seed)
{
    uint64_t s = seed;
    size_t cap = 0;
    for (int c = 0; c < f->ncust; c++) {
        f->first[c] = f->nev;
        for (int64_t day = 0; day < 6; day++) {
            int64_t t = f->t0 + day * SY_DAY_MS;
            if ((day == 1 && c < 70000 && c % 1000 != 999) || rnd(&s) % 5 == 0)
                push_event(f, &cap, (ev){c, 0, t + (int64_t)(rnd(&s) % SY_DAY_MS), -1});
            int views = c < 131072 ? (rnd(&s) % 3 == 0) + (rnd(&s) % 9 == 0) : rnd(&s) % 40 == 0;
            for (int k = 0; k < views; k++)
                push_event(
                    f, &cap,
                    (ev){c, 1, t + (int64_t)(rnd(&s) % SY_DAY_MS), (int64_t)(rnd(&s) % SY_DAY_MS)});
            if (rnd(&s) % 50 == 0)
                push_event(f, &cap, (ev){c, 2, t + (int64_t)(rnd(&s) % SY_DAY_MS), -1});
            if (rnd(&s) % 60 == 0)
                push_event(f, &cap, (ev){c, 3, t + (int64_t)(rnd(&s) % SY_DAY_MS), -1});
        }
    }
    f->first[f->ncust] = f->nev;
}

static fixture *make_n(int64_t offset_ms, uint64_t seed, int ncust,
                       void (*gen)(fixture *f, uint64_t seed))
{
    fixture *f = calloc(1, sizeof *f);
    f->ncust = ncust;
    f->first = calloc((size_t)ncust + 1, sizeof *f->first);
    f->risk = calloc((size_t)ncust, sizeof *f->risk);
    f->t0 = 1767225600000LL; /* 2026-01-01T00:00:00Z */
    f->ix = sy_index_new(offset_ms);
    f->schema = schema();
    char no[16];
    uint64_t s = seed * 7 + 1;
    for (int c = 0; c < ncust; c++) {
        snprintf(no, sizeof no, "C%04d", c);
        sy_index_add_customer(f->ix, no, (uint32_t)c);
        f->risk[c] = (int)(rnd(&s) % 4);
        if (f->risk[c]) {
            char v[4] = {'R', (char)('0' + f->risk[c]), 0};
            json_t *a = json_pack("{s:s}", "risk_level", v);
            sy_index_update_attrs(f->ix, (uint32_t)c, f->schema, NULL, a);
            json_decref(a);
        }
    }
    gen(f, seed);
    for (size_t i = 0; i < f->nev; i++)
        sy_index_add_event(f->ix, (uint32_t)f->evs[i].c, k_names[f->evs[i].name], f->evs[i].ts,
                           f->evs[i].dwell);
    f->population = roaring_bitmap_create();
    for (uint32_t c = 0; c < (uint32_t)ncust; c += 3)
        roaring_bitmap_add(f->population, c);
    return f;
}

static fixture *make(int64_t offset_ms, uint64_t seed)
{
    return make_n(offset_ms, seed, NCUST, make_events);
}

static void drop(fixture *f)
{
    sy_index_free(f->ix);
    sy_attr_set_release(f->schema);
    roaring_bitmap_free(f->population);
    free(f->evs);
    free(f->first);
    free(f->risk);
    free(f);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* The nearest-rank percentile of v[0 .. n-1] (sorted here). */
static int64_t brute_pct(int64_t *v, size_t n, unsigned p)
{
    if (!n)
        return -1;
    qsort(v, n, sizeof *v, cmp_i64);
    size_t rank = ((size_t)p * n + 99) / 100;
    return v[rank ? rank - 1 : 0];
}

typedef struct brute_funnel {
    uint64_t customers[SY_FUNNEL_MAX_STEPS];
    int64_t median[SY_FUNNEL_MAX_STEPS];
} brute_funnel;

/* The definition, by brute force: per customer, the first entry in the
 * range, then the earliest qualifying event of each step.  group: -1 for
 * everyone, else only customers whose risk value is group. */
static void brute(const fixture *f, const int *steps, size_t nsteps, int64_t from, int64_t to,
                  int64_t window, bool pop, int group, brute_funnel *out)
{
    memset(out, 0, sizeof *out);
    int64_t *delta[SY_FUNNEL_MAX_STEPS];
    for (size_t k = 0; k < nsteps; k++)
        delta[k] = malloc((size_t)f->ncust * sizeof **delta);
    for (int c = 0; c < f->ncust; c++) {
        if (pop && !roaring_bitmap_contains(f->population, (uint32_t)c))
            continue;
        if (group >= 0 && f->risk[c] != group)
            continue;
        int64_t start = INT64_MAX;
        for (size_t i = f->first[c]; i < f->first[c + 1]; i++) {
            const ev *e = &f->evs[i];
            int64_t day = sy_index_day(f->ix, e->ts);
            if (e->c == c && e->name == steps[0] && day >= from && day <= to && e->ts < start)
                start = e->ts;
        }
        if (start == INT64_MAX)
            continue;
        out->customers[0]++;
        int64_t prev = start;
        for (size_t k = 1; k < nsteps; k++) {
            bool strict = steps[k] == steps[k - 1];
            int64_t best = INT64_MAX;
            for (size_t i = f->first[c]; i < f->first[c + 1]; i++) {
                const ev *e = &f->evs[i];
                if (e->c != c || e->name != steps[k] || e->ts > start + window)
                    continue;
                if (strict ? e->ts <= prev : e->ts < prev)
                    continue;
                if (e->ts < best)
                    best = e->ts;
            }
            if (best == INT64_MAX)
                break;
            delta[k][out->customers[k]++] = best - prev;
            prev = best;
        }
    }
    out->median[0] = -1;
    for (size_t k = 1; k < nsteps; k++)
        out->median[k] = brute_pct(delta[k], out->customers[k], 50);
    for (size_t k = 0; k < nsteps; k++)
        free(delta[k]);
}

static void check_funnel(const fixture *f, const int *steps, size_t nsteps, int64_t from,
                         int64_t to, int64_t window, bool pop, bool breakdown)
{
    const char *names[SY_FUNNEL_MAX_STEPS];
    for (size_t k = 0; k < nsteps; k++)
        names[k] = k_names[steps[k]];
    sy_funnel_query q = {.steps = names,
                         .nsteps = nsteps,
                         .from = from,
                         .to = to,
                         .window_ms = window,
                         .among = pop ? f->population : NULL,
                         .breakdown = breakdown ? "risk_level" : NULL};
    sy_funnel got;
    sy_index_rdlock(f->ix);
    assert_true(sy_report_funnel(f->ix, &q, &got));
    sy_index_unlock(f->ix);
    brute_funnel want;
    brute(f, steps, nsteps, from, to, window, pop, -1, &want);
    assert_int_equal(got.nsteps, nsteps);
    for (size_t k = 0; k < nsteps; k++) {
        assert_int_equal(got.all.customers[k], want.customers[k]);
        assert_int_equal(got.all.median_ms[k], want.median[k]);
    }
    if (breakdown) {
        /* R1, R2, R3 in order, then the customers with no value */
        assert_int_equal(got.ngroups, 4);
        for (int g = 0; g < 4; g++) {
            const sy_funnel_group *fg = &got.groups[g];
            int risk = g < 3 ? g + 1 : 0;
            if (risk) {
                char v[4] = {'R', (char)('0' + risk), 0};
                assert_string_equal(fg->value, v);
            } else {
                assert_null(fg->value);
            }
            brute(f, steps, nsteps, from, to, window, pop, risk, &want);
            for (size_t k = 0; k < nsteps; k++) {
                assert_int_equal(fg->customers[k], want.customers[k]);
                assert_int_equal(fg->median_ms[k], want.median[k]);
            }
        }
    } else {
        assert_int_equal(got.ngroups, 0);
    }
    sy_funnel_free(&got);
}

static void check_dwell(const fixture *f, int name, int64_t from, int64_t to, bool pop)
{
    size_t nd = (size_t)(to - from + 1);
    sy_dwell_row *rows = calloc(nd, sizeof *rows), total;
    sy_index_rdlock(f->ix);
    sy_report_dwell(f->ix, k_names[name], from, to, pop ? f->population : NULL, rows, &total);
    sy_index_unlock(f->ix);
    int64_t *all = malloc((f->nev + 1) * sizeof *all), *day = malloc((f->nev + 1) * sizeof *day);
    size_t nall = 0;
    for (int64_t d = from; d <= to; d++) {
        size_t n = 0;
        int64_t sum = 0, max = -1;
        for (size_t i = 0; i < f->nev; i++) {
            const ev *e = &f->evs[i];
            if (e->name != name || e->dwell < 0 || sy_index_day(f->ix, e->ts) != d)
                continue;
            if (pop && !roaring_bitmap_contains(f->population, (uint32_t)e->c))
                continue;
            day[n++] = e->dwell;
            all[nall++] = e->dwell;
            sum += e->dwell;
            max = e->dwell > max ? e->dwell : max;
        }
        const sy_dwell_row *r = &rows[d - from];
        assert_int_equal(r->day, d);
        assert_int_equal(r->events, n);
        assert_int_equal(r->max, max);
        assert_true(r->mean == (n ? (double)sum / (double)n : 0.0));
        assert_int_equal(r->p99, brute_pct(day, n, 99));
        assert_int_equal(r->p90, brute_pct(day, n, 90));
        assert_int_equal(r->p50, brute_pct(day, n, 50));
    }
    assert_int_equal(total.events, nall);
    assert_int_equal(total.p50, brute_pct(all, nall, 50));
    assert_int_equal(total.p90, brute_pct(all, nall, 90));
    assert_int_equal(total.p99, brute_pct(all, nall, 99));
    free(all);
    free(day);
    free(rows);
}

/* Funnels of every shape over the fixture of one time zone. */
static void funnels_of(fixture *f)
{
    int64_t d0 = sy_index_day(f->ix, f->t0);
    static const int s_plain[] = {0, 1, 2, 3}, s_repeat[] = {1, 1, 1}, s_back[] = {1, 2, 1},
                     s_two[] = {2, 3};
    const int64_t windows[] = {HOUR_MS, 6 * HOUR_MS, SY_DAY_MS, 3 * SY_DAY_MS, 30 * SY_DAY_MS};
    for (size_t w = 0; w < sizeof windows / sizeof *windows; w++) {
        check_funnel(f, s_plain, 4, d0, d0 + NDAYS - 1, windows[w], false, w == 2);
        check_funnel(f, s_plain, 3, d0 + 3, d0 + 9, windows[w], true, w == 3);
        check_funnel(f, s_repeat, 3, d0, d0 + 12, windows[w], false, false);
        check_funnel(f, s_back, 3, d0 + 1, d0 + 1, windows[w], false, w == 1);
        check_funnel(f, s_two, 2, d0 + 5, d0 + 15, windows[w], true, false);
    }
    /* an empty range and a range without events */
    check_funnel(f, s_plain, 4, d0 + NDAYS + 5, d0 + NDAYS + 9, SY_DAY_MS, false, true);
    check_funnel(f, s_plain, 4, d0 - 40, d0 - 30, SY_DAY_MS, false, false);
}

static void test_funnel_matches_brute_force(void **state)
{
    (void)state;
    const int64_t offsets[] = {8 * HOUR_MS, -5 * HOUR_MS};
    for (int z = 0; z < 2; z++) {
        fixture *f = make(offsets[z], 11 + (uint64_t)z);
        funnels_of(f);
        /* many blocks per thread, the last one short, each with its share
         * of the tail */
        sy_report_funnel_block(192);
        funnels_of(f);
        sy_report_funnel_block(64);
        funnels_of(f);
        sy_report_funnel_block(0);
        drop(f);
    }
}

/* Dense ids across three chunks, days whose ids are runs, bitsets and
 * arrays, the threads' halves and the blocks not aligned to chunks. */
static void test_funnel_wide(void **state)
{
    (void)state;
    fixture *f = make_n(8 * HOUR_MS, 3, 140000, make_wide_events);
    int64_t d0 = sy_index_day(f->ix, f->t0);
    static const int s_plain[] = {0, 1, 2, 3}, s_views[] = {1, 1}, s_back[] = {1, 0, 1};
    const size_t blocks[] = {0, 4096, 192};
    for (size_t b = 0; b < sizeof blocks / sizeof *blocks; b++) {
        sy_report_funnel_block(blocks[b]);
        check_funnel(f, s_plain, 4, d0, d0 + 5, SY_DAY_MS, false, b == 0);
        check_funnel(f, s_plain, 3, d0 + 1, d0 + 1, 3 * HOUR_MS, true, false);
        check_funnel(f, s_views, 2, d0, d0 + 5, 2 * SY_DAY_MS, false, false);
        check_funnel(f, s_back, 3, d0 + 1, d0 + 3, SY_DAY_MS, true, false);
    }
    sy_report_funnel_block(0);
    /* past 262,144 dwell times over the range: their percentiles come from
     * a histogram (report.c, kth_smallest) */
    check_dwell(f, 1, d0, d0 + 5, false);
    check_dwell(f, 1, d0, d0 + 5, true);
    drop(f);
}

static void test_dwell_matches_brute_force(void **state)
{
    (void)state;
    const int64_t offsets[] = {8 * HOUR_MS, -5 * HOUR_MS};
    for (int z = 0; z < 2; z++) {
        fixture *f = make(offsets[z], 21 + (uint64_t)z);
        int64_t d0 = sy_index_day(f->ix, f->t0);
        check_dwell(f, 1, d0 - 1, d0 + NDAYS, false);
        check_dwell(f, 1, d0 + 2, d0 + 6, true);
        check_dwell(f, 2, d0, d0 + NDAYS - 1, false); /* few values, zeros among them */
        check_dwell(f, 0, d0, d0 + 3, false);         /* none with a dwell time */
        drop(f);
    }
}

/* A breakdown by an attribute with too many values is refused. */
static void test_breakdown_limit(void **state)
{
    (void)state;
    sy_attr_set *s = calloc(1, sizeof *s);
    atomic_init(&s->refs, 1);
    s->n = 1;
    s->defs = calloc(1, sizeof *s->defs);
    json_t *b = json_loads("{\"name\":\"city\",\"type\":\"string\"}", 0, NULL);
    const char *fld;
    char err[128];
    assert_true(sy_attr_def_parse(b, &s->defs[0], &fld, err, sizeof err));
    json_decref(b);
    sy_index *ix = sy_index_new(0);
    for (uint32_t c = 0; c <= SY_FUNNEL_MAX_GROUPS; c++) {
        char no[16], city[16];
        snprintf(no, sizeof no, "C%u", c);
        snprintf(city, sizeof city, "city%u", c);
        sy_index_add_customer(ix, no, c);
        json_t *a = json_pack("{s:s}", "city", city);
        sy_index_update_attrs(ix, c, s, NULL, a);
        json_decref(a);
        sy_index_add_event(ix, c, "open", 1767225600000LL, -1);
    }
    const char *steps[] = {"open", "open"};
    sy_funnel_query q = {.steps = steps,
                         .nsteps = 2,
                         .from = 0,
                         .to = 30000,
                         .window_ms = SY_DAY_MS,
                         .breakdown = "city"};
    sy_funnel out;
    sy_index_rdlock(ix);
    assert_false(sy_report_funnel(ix, &q, &out));
    q.breakdown = NULL;
    assert_true(sy_report_funnel(ix, &q, &out));
    assert_int_equal(out.all.customers[0], SY_FUNNEL_MAX_GROUPS + 1);
    assert_int_equal(out.all.customers[1], 0); /* one event each: no second one */
    sy_index_unlock(ix);
    sy_funnel_free(&out);
    sy_index_free(ix);
    sy_attr_set_release(s);
}

/* A merged customer's times become the survivor's: a funnel whose steps
 * were done under two customer numbers converts once they are merged;
 * with the times still in the tail, and sealed (many more events that day
 * seal the tail into runs). */
static void test_merge_moves_times(void **state)
{
    (void)state;
    for (int sealed = 0; sealed < 2; sealed++) {
        sy_attr_set *s = schema();
        sy_index *ix = sy_index_new(0);
        sy_index_add_customer(ix, "A", 0);
        sy_index_add_customer(ix, "B", 1);
        int64_t t = 1767225600000LL;
        sy_index_add_event(ix, 0, "open", t, -1);
        sy_index_add_event(ix, 1, "buy", t + 1000, -1);
        for (uint32_t c = 2; sealed && c < 3002; c++) {
            char no[16];
            snprintf(no, sizeof no, "F%u", c);
            sy_index_add_customer(ix, no, c);
            sy_index_add_event(ix, c, "open", t + 5000, -1);
            sy_index_add_event(ix, c, "buy", t + 5000, -1);
        }
        const char *steps[] = {"open", "buy"};
        int64_t day = t / SY_DAY_MS;
        sy_funnel_query q = {
            .steps = steps, .nsteps = 2, .from = day, .to = day, .window_ms = SY_DAY_MS};
        sy_funnel out;
        sy_index_rdlock(ix);
        assert_true(sy_report_funnel(ix, &q, &out));
        sy_index_unlock(ix);
        assert_int_equal(out.all.customers[0], sealed ? 3001 : 1);
        assert_int_equal(out.all.customers[1], sealed ? 3000 : 0);
        sy_funnel_free(&out);
        sy_index_merge(ix, s, 0, NULL, 1);
        sy_index_rdlock(ix);
        assert_true(sy_report_funnel(ix, &q, &out));
        sy_index_unlock(ix);
        assert_int_equal(out.all.customers[0], sealed ? 3001 : 1);
        assert_int_equal(out.all.customers[1], sealed ? 3001 : 1);
        if (!sealed)
            assert_int_equal(out.all.median_ms[1], 1000);
        sy_funnel_free(&out);
        sy_index_free(ix);
        sy_attr_set_release(s);
    }
}

/* The edges of the definition, by hand: the window's last millisecond is
 * in it; the same millisecond counts for the next step but not for a
 * repeat of the same event; entries are counted by the business day of
 * the tenant's zone (UTC+8 here). */
static void test_funnel_edges(void **state)
{
    (void)state;
    sy_index *ix = sy_index_new(8 * HOUR_MS);
    int64_t mid = 1767196800000LL; /* 2026-01-01T00:00+08:00 */
    int64_t day = sy_index_day(ix, mid);
    const char *nos[] = {"A", "B", "C", "D", "E"};
    for (uint32_t c = 0; c < 5; c++)
        sy_index_add_customer(ix, nos[c], c);
    /* A: buys at the window's last ms; B: 1 ms too late */
    sy_index_add_event(ix, 0, "open", mid + 1000, -1);
    sy_index_add_event(ix, 0, "buy", mid + 1000 + HOUR_MS, -1);
    sy_index_add_event(ix, 1, "open", mid + 1000, -1);
    sy_index_add_event(ix, 1, "buy", mid + 1001 + HOUR_MS, -1);
    /* C: open and buy in the same ms, and open once more then */
    sy_index_add_event(ix, 2, "open", mid + 5000, -1);
    sy_index_add_event(ix, 2, "buy", mid + 5000, -1);
    /* D: entered the day before (23:59:59.999 local): outside [day, day] */
    sy_index_add_event(ix, 3, "open", mid - 1, -1);
    sy_index_add_event(ix, 3, "buy", mid + 10, -1);
    /* E: opens twice in the same ms, then twice a minute apart */
    sy_index_add_event(ix, 4, "open", mid + 7000, -1);
    sy_index_add_event(ix, 4, "open", mid + 7000, -1);
    const char *s1[] = {"open", "buy"}, *s2[] = {"open", "open"};
    sy_funnel_query q = {.steps = s1, .nsteps = 2, .from = day, .to = day, .window_ms = HOUR_MS};
    sy_funnel out;
    sy_index_rdlock(ix);
    assert_true(sy_report_funnel(ix, &q, &out));
    assert_int_equal(out.all.customers[0], 4); /* A, B, C, E */
    assert_int_equal(out.all.customers[1], 2); /* A, C */
    assert_int_equal(out.all.median_ms[1], 0); /* nearest rank of {0, 3600000} */
    sy_funnel_free(&out);
    q.steps = s2;
    assert_true(sy_report_funnel(ix, &q, &out));
    assert_int_equal(out.all.customers[1], 0); /* a repeat needs a later event */
    sy_funnel_free(&out);
    sy_index_unlock(ix);
    sy_index_add_event(ix, 4, "open", mid + 67000, -1);
    sy_index_rdlock(ix);
    assert_true(sy_report_funnel(ix, &q, &out));
    assert_int_equal(out.all.customers[1], 1);
    assert_int_equal(out.all.median_ms[1], 60000);
    sy_funnel_free(&out);
    q.from = q.to = day - 1;
    q.steps = s1;
    assert_true(sy_report_funnel(ix, &q, &out));
    assert_int_equal(out.all.customers[0], 1); /* D */
    assert_int_equal(out.all.customers[1], 1); /* its buy falls after `to`, in the window */
    sy_funnel_free(&out);
    sy_index_unlock(ix);
    sy_index_free(ix);
}

/* ---- times read from the store ---- */

/* The same funnels and dwell figures from two indexes. */
static void assert_same_reports(sy_index *a, sy_index *b, int64_t d0)
{
    static const char *const steps[] = {"open", "view", "click", "buy"};
    sy_funnel_query q = {
        .steps = steps, .nsteps = 4, .from = d0, .to = d0 + NDAYS, .window_ms = SY_DAY_MS};
    sy_funnel fa, fb;
    sy_index_rdlock(a);
    sy_index_rdlock(b);
    assert_true(sy_report_funnel(a, &q, &fa));
    assert_true(sy_report_funnel(b, &q, &fb));
    assert_true(fa.all.customers[0] > 0);
    for (size_t k = 0; k < 4; k++) {
        assert_int_equal(fa.all.customers[k], fb.all.customers[k]);
        assert_int_equal(fa.all.median_ms[k], fb.all.median_ms[k]);
    }
    sy_dwell_row ra[NDAYS + 1], rb[NDAYS + 1], ta, tb;
    sy_report_dwell(a, "view", d0, d0 + NDAYS, NULL, ra, &ta);
    sy_report_dwell(b, "view", d0, d0 + NDAYS, NULL, rb, &tb);
    assert_true(ta.events > 0);
    assert_int_equal(ta.events, tb.events);
    assert_int_equal(ta.p50, tb.p50);
    assert_int_equal(ta.p99, tb.p99);
    for (int d = 0; d <= NDAYS; d++)
        assert_int_equal(ra[d].p90, rb[d].p90);
    sy_index_unlock(b);
    sy_index_unlock(a);
    sy_funnel_free(&fa);
    sy_funnel_free(&fb);
}

static int64_t max_rowid(sy_conn *c)
{
    sy_stmt *st = sy_conn_prepare(c, "SELECT max(rowid) FROM events");
    assert_int_equal(sy_stmt_step(st), SY_ROW);
    int64_t r = sy_stmt_i64(st, 0);
    sy_stmt_reset(st);
    return r;
}

/* A store with the fixture's customers and events; a rebuild of it times
 * what the tenant's setting says, and a change of the setting reads the
 * times of the names it adds (up to the rowid given) and drops the others. */
static void test_times_from_store(void **state)
{
    (void)state;
    fixture *f = make(8 * HOUR_MS, 5);
    int64_t d0 = sy_index_day(f->ix, f->t0);
    char *dir = tu_tempdir();
    sy_store *st = tu_store_open(dir, true);
    sy_conn *w = sy_store_write_conn(st);
    assert_int_equal(sy_conn_begin(w), SY_OK);
    assert_int_equal(sy_tenant_create(w, "t", "T", "Asia/Shanghai", 0), SY_OK);
    for (int c = 0; c < f->ncust; c++) {
        char sql[256];
        snprintf(sql, sizeof sql,
                 "INSERT INTO customers (tenant_id, customer_no, dense_id, attrs, created_at,"
                 " updated_at) VALUES ('t', 'C%04d', %d, '{}', 0, 0)",
                 c, c);
        assert_int_equal(sy_conn_exec(w, sql), SY_OK);
        char no[16];
        snprintf(no, sizeof no, "C%04d", c);
        json_t *none = json_object();
        assert_int_equal(sy_customer_packed_put(w, NULL, "t", no, (int64_t)c, none), SY_OK);
        json_decref(none);
    }
    sy_stmt *ins = sy_conn_prepare(w, "INSERT INTO events (tenant_id, event_id, customer_no, name,"
                                      " ts, dwell_ms, received_at) VALUES ('t', $1, $2, $3, $4,"
                                      " $5, 0)");
    for (size_t i = 0; i < f->nev; i++) {
        char id[32], no[16];
        snprintf(id, sizeof id, "e%zu", i);
        snprintf(no, sizeof no, "C%04d", f->evs[i].c);
        sy_stmt_bind_text(ins, 1, id);
        sy_stmt_bind_text(ins, 2, no);
        sy_stmt_bind_text(ins, 3, k_names[f->evs[i].name]);
        sy_stmt_bind_i64(ins, 4, f->evs[i].ts);
        if (f->evs[i].dwell >= 0)
            sy_stmt_bind_i64(ins, 5, f->evs[i].dwell);
        else
            sy_stmt_bind_null(ins, 5);
        assert_int_equal(sy_stmt_exec(ins), SY_OK);
    }
    assert_int_equal(sy_conn_exec(w, "UPDATE tenants SET timed_events = '[\"view\"]'"), SY_OK);
    assert_int_equal(sy_conn_commit(w), SY_OK);
    sy_attr_set *s;
    assert_int_equal(sy_attr_load(w, "t", &s), SY_OK);

    /* rebuilt with only "view" timed */
    sy_index *ix = sy_index_new(8 * HOUR_MS);
    assert_int_equal(sy_index_rebuild(ix, w, NULL, "t", s, NULL), SY_OK);
    sy_index_rdlock(ix);
    assert_true(sy_index_timed(ix, "view"));
    assert_false(sy_index_timed(ix, "open"));
    assert_false(sy_index_timed(ix, "never_seen"));
    sy_index_unlock(ix);

    /* every name, read from the store: the same as the live index */
    json_t *all = json_pack("[s]", "*");
    assert_int_equal(sy_index_retime(ix, w, "t", all, max_rowid(w)), SY_OK);
    sy_index_rdlock(ix);
    assert_true(sy_index_timed(ix, "open"));
    assert_true(sy_index_timed(ix, "never_seen"));
    sy_index_unlock(ix);
    assert_same_reports(ix, f->ix, d0);

    /* a rebuild with every name timed (the default), on two connections */
    sy_index *ix2 = sy_index_new(8 * HOUR_MS);
    assert_int_equal(sy_conn_exec(w, "UPDATE tenants SET timed_events = '[\"*\"]'"), SY_OK);
    sy_conn *r2 = sy_store_acquire(st);
    assert_int_equal(sy_index_rebuild(ix2, w, r2, "t", s, NULL), SY_OK);
    sy_store_release(st, r2);
    assert_same_reports(ix2, f->ix, d0);
    sy_index_free(ix2);

    /* dropping names, then adding one back up to a rowid: the events past
     * it are not read (they reach the index through their own commits) */
    json_t *two = json_pack("[s, s]", "view", "click");
    assert_int_equal(sy_index_retime(ix, w, "t", two, max_rowid(w)), SY_OK);
    sy_index_rdlock(ix);
    assert_false(sy_index_timed(ix, "open"));
    assert_true(sy_index_timed(ix, "click"));
    sy_index_mem m2;
    sy_index_memory_parts(ix, &m2);
    sy_index_unlock(ix);
    assert_int_equal(sy_index_retime(ix, w, "t", all, 0), SY_OK);
    sy_index_rdlock(ix);
    sy_index_mem m3;
    sy_index_memory_parts(ix, &m3);
    const char *steps[] = {"open", "view"};
    sy_funnel_query q = {
        .steps = steps, .nsteps = 2, .from = d0, .to = d0 + NDAYS, .window_ms = SY_DAY_MS};
    sy_funnel out;
    assert_true(sy_report_funnel(ix, &q, &out));
    sy_index_unlock(ix);
    assert_int_equal(out.all.customers[0], 0); /* "open" re-timed from no rows */
    assert_true(m3.times >= m2.times);
    sy_funnel_free(&out);

    json_decref(all);
    json_decref(two);
    sy_index_free(ix);
    sy_attr_set_release(s);
    sy_store_close(st);
    tu_rmtree(dir);
    free(dir);
    drop(f);
}

static void test_timed_spec_validation(void **state)
{
    (void)state;
    const char *ok[] = {"[]", "[\"*\"]", "[\"login\", \"view_wealth\"]"};
    const char *bad[] = {
        "{}",  "\"*\"", "[\"*\", \"login\"]", "[\"login\", \"login\"]", "[\"Login\"]",
        "[1]", "[\"\"]"};
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        json_t *j = json_loads(ok[i], JSON_DECODE_ANY, NULL);
        assert_true(sy_timed_spec_valid(j));
        json_decref(j);
    }
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        json_t *j = json_loads(bad[i], JSON_DECODE_ANY, NULL);
        assert_non_null(j);
        assert_false(sy_timed_spec_valid(j));
        json_decref(j);
    }
    json_t *many = json_array();
    for (int i = 0; i <= SY_TIMED_MAX; i++) {
        char n[16];
        snprintf(n, sizeof n, "e%d", i);
        json_array_append_new(many, json_string(n));
    }
    assert_false(sy_timed_spec_valid(many));
    json_array_remove(many, 0);
    assert_true(sy_timed_spec_valid(many));
    json_decref(many);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_funnel_matches_brute_force),
        cmocka_unit_test(test_funnel_wide),
        cmocka_unit_test(test_dwell_matches_brute_force),
        cmocka_unit_test(test_breakdown_limit),
        cmocka_unit_test(test_merge_moves_times),
        cmocka_unit_test(test_funnel_edges),
        cmocka_unit_test(test_times_from_store),
        cmocka_unit_test(test_timed_spec_validation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

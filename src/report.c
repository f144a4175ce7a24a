/* report.c — activity and retention from the index's day bitmaps. */
#include "report.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

typedef struct collect {
    sy_report_days *d;
    int64_t to;
} collect;

static void collect_day(int64_t day, const sy_day_events *e, void *ud)
{
    collect *c = ud;
    const roaring_bitmap_t *actors = sy_day_actors(e);
    if (day < c->d->first)
        roaring_bitmap_or_inplace(c->d->before, actors);
    else if (day <= c->to)
        roaring_bitmap_or_inplace(c->d->active[day - c->d->first], actors);
}

typedef struct name_visit {
    const sy_index *ix;
    collect *c;
} name_visit;

static void collect_name(const char *name, void *ud)
{
    name_visit *v = ud;
    sy_index_days(v->ix, name, INT64_MIN, v->c->to, collect_day, v->c);
}

void sy_report_days_collect(const sy_index *ix, const char *const *names, size_t nnames,
                            int64_t from, int64_t to, const roaring_bitmap_t *among,
                            sy_report_days *out)
{
    memset(out, 0, sizeof *out);
    out->first = from;
    out->n = to >= from ? (size_t)(to - from + 1) : 0;
    out->active = sy_xcalloc(out->n ? out->n : 1, sizeof *out->active);
    for (size_t i = 0; i < out->n; i++)
        out->active[i] = roaring_bitmap_create();
    out->before = roaring_bitmap_create();
    collect c = {.d = out, .to = to};
    if (names && nnames) {
        for (size_t i = 0; i < nnames; i++)
            sy_index_days(ix, names[i], INT64_MIN, to, collect_day, &c);
    } else {
        name_visit v = {.ix = ix, .c = &c};
        sy_index_event_names(ix, collect_name, &v);
    }
    if (among) {
        for (size_t i = 0; i < out->n; i++)
            roaring_bitmap_and_inplace(out->active[i], among);
        roaring_bitmap_and_inplace(out->before, among);
    }
}

void sy_report_days_free(sy_report_days *d)
{
    if (!d->active)
        return;
    for (size_t i = 0; i < d->n; i++)
        roaring_bitmap_free(d->active[i]);
    free(d->active);
    roaring_bitmap_free(d->before);
    memset(d, 0, sizeof *d);
}

/* Customers active on at least one of the days [i - len + 1, i] (indices
 * into d->active, clipped at 0). */
static uint64_t window_count(const sy_report_days *d, size_t i, size_t len)
{
    size_t lo = i + 1 >= len ? i + 1 - len : 0;
    roaring_bitmap_t *u =
        roaring_bitmap_or_many(i - lo + 1, (const roaring_bitmap_t **)(d->active + lo));
    uint64_t n = roaring_bitmap_get_cardinality(u);
    roaring_bitmap_free(u);
    return n;
}

void sy_report_activity(const sy_report_days *d, int64_t from, int64_t to, sy_activity_row *rows)
{
    roaring_bitmap_t *seen = roaring_bitmap_copy(d->before);
    for (size_t i = 0; i < d->n && d->first + (int64_t)i <= to; i++) {
        int64_t day = d->first + (int64_t)i;
        const roaring_bitmap_t *a = d->active[i];
        if (day >= from) {
            sy_activity_row *r = &rows[day - from];
            r->day = day;
            r->dau = roaring_bitmap_get_cardinality(a);
            r->wau = window_count(d, i, 7);
            r->mau = window_count(d, i, 30);
            r->returning = roaring_bitmap_and_cardinality(a, seen);
            r->new_ = r->dau - r->returning;
            r->stickiness = r->mau ? (double)r->dau / (double)r->mau : 0.0;
        }
        roaring_bitmap_or_inplace(seen, a);
    }
    roaring_bitmap_free(seen);
}

void sy_report_retention(const sy_report_days *cohort, const sy_report_days *ret, int64_t from,
                         int64_t to, size_t nperiods, sy_retention *out)
{
    memset(out, 0, sizeof *out);
    size_t nc = to >= from ? (size_t)(to - from + 1) : 0;
    out->ncohorts = nc;
    out->nperiods = nperiods;
    out->day = sy_xcalloc(nc ? nc : 1, sizeof *out->day);
    out->size = sy_xcalloc(nc ? nc : 1, sizeof *out->size);
    out->known = sy_xcalloc(nc ? nc : 1, sizeof *out->known);
    size_t cells = nc * nperiods;
    out->exact = sy_xcalloc(cells > 0 ? cells : 1, sizeof *out->exact);
    out->on_or_after = sy_xcalloc(cells > 0 ? cells : 1, sizeof *out->on_or_after);
    /* suffix[j]: active on ret's day j or any later one of its days */
    size_t rn = ret->n;
    roaring_bitmap_t **suffix = sy_xcalloc(rn ? rn : 1, sizeof *suffix);
    for (size_t j = rn; j-- > 0;) {
        suffix[j] = roaring_bitmap_copy(ret->active[j]);
        if (j + 1 < rn)
            roaring_bitmap_or_inplace(suffix[j], suffix[j + 1]);
    }
    roaring_bitmap_t *seen = roaring_bitmap_copy(cohort->before);
    for (size_t i = 0; i < cohort->n; i++) {
        int64_t day = cohort->first + (int64_t)i;
        if (day > to)
            break;
        const roaring_bitmap_t *a = cohort->active[i];
        if (day >= from) {
            size_t c = (size_t)(day - from);
            roaring_bitmap_t *members = roaring_bitmap_andnot(a, seen);
            out->day[c] = day;
            out->size[c] = roaring_bitmap_get_cardinality(members);
            size_t j0 = (size_t)(day - ret->first);
            out->known[c] = j0 < rn ? (rn - j0 < nperiods ? rn - j0 : nperiods) : 0;
            for (size_t k = 0; k < out->known[c]; k++) {
                out->exact[c * nperiods + k] =
                    roaring_bitmap_and_cardinality(members, ret->active[j0 + k]);
                out->on_or_after[c * nperiods + k] =
                    roaring_bitmap_and_cardinality(members, suffix[j0 + k]);
            }
            roaring_bitmap_free(members);
        }
        roaring_bitmap_or_inplace(seen, a);
    }
    roaring_bitmap_free(seen);
    for (size_t j = 0; j < rn; j++)
        roaring_bitmap_free(suffix[j]);
    free(suffix);
}

typedef struct purchase_sums {
    uint64_t *sums;
    int64_t from, to;
    const sy_index *ix;
} purchase_sums;

static void add_day_counts(int64_t day, const sy_day_events *e, void *ud)
{
    (void)day;
    purchase_sums *p = ud;
    sy_day_add_sums(e, p->sums, false);
}

static void add_buy_name(const char *name, void *ud)
{
    purchase_sums *p = ud;
    if (!strncmp(name, "buy_", 4))
        sy_index_days(p->ix, name, p->from, p->to, add_day_counts, p);
}

/* The union of d's days [lo, hi] (indices). */
static roaring_bitmap_t *union_of(const sy_report_days *d, size_t lo, size_t hi)
{
    return roaring_bitmap_or_many(hi - lo + 1, (const roaring_bitmap_t **)(d->active + lo));
}

void sy_report_kpis(const sy_index *ix, const char *const *purchase, size_t npurchase, int64_t from,
                    int64_t to, const roaring_bitmap_t *among, sy_kpis *out,
                    roaring_bitmap_t **population, roaring_bitmap_t **active)
{
    memset(out, 0, sizeof *out);
    roaring_bitmap_t *pop = roaring_bitmap_copy(sy_index_all(ix));
    if (among)
        roaring_bitmap_and_inplace(pop, among);
    out->customers = roaring_bitmap_get_cardinality(pop);
    int64_t len = to - from + 1;
    sy_report_days d;
    sy_report_days_collect(ix, NULL, 0, from - len, to, pop, &d);
    roaring_bitmap_t *prev = union_of(&d, 0, (size_t)len - 1),
                     *now = union_of(&d, (size_t)len, d.n - 1);
    out->active = roaring_bitmap_get_cardinality(now);
    out->active_prev = roaring_bitmap_get_cardinality(prev);
    out->churned = out->active_prev - roaring_bitmap_and_cardinality(prev, now);
    roaring_bitmap_free(prev);
    if (active)
        *active = now;
    else
        roaring_bitmap_free(now);
    sy_report_days_free(&d);
    /* purchases: every customer's count of purchase events in the period */
    purchase_sums p = {.sums = sy_xcalloc((size_t)sy_index_size(ix) + 1, sizeof *p.sums),
                       .from = from,
                       .to = to,
                       .ix = ix};
    if (npurchase)
        for (size_t i = 0; i < npurchase; i++)
            sy_index_days(ix, purchase[i], from, to, add_day_counts, &p);
    else
        sy_index_event_names(ix, add_buy_name, &p);
    roaring_uint32_iterator_t *it = roaring_create_iterator(pop);
    uint32_t buf[1024], got;
    while ((got = roaring_read_uint32_iterator(it, buf, 1024)) > 0)
        for (uint32_t i = 0; i < got; i++) {
            out->purchasers += p.sums[buf[i]] >= 1;
            out->repurchasers += p.sums[buf[i]] >= 2;
        }
    roaring_free_uint32_iterator(it);
    free(p.sums);
    if (population)
        *population = pop;
    else
        roaring_bitmap_free(pop);
}

void sy_retention_free(sy_retention *r)
{
    free(r->day);
    free(r->size);
    free(r->known);
    free(r->exact);
    free(r->on_or_after);
    memset(r, 0, sizeof *r);
}

/* ---- helpers: a population as a plain bitset; selection ---- */

typedef struct bitset {
    uint64_t *w;
    size_t n; /* bits */
} bitset;

/* The customers of the index among `among` (NULL: all of them). */
static bitset population_bits(const sy_index *ix, const roaring_bitmap_t *among)
{
    bitset b = {.n = (size_t)sy_index_size(ix) + 1};
    b.w = sy_xcalloc((b.n + 63) / 64, sizeof *b.w);
    roaring_bitmap_t *pop = roaring_bitmap_copy(sy_index_all(ix));
    if (among)
        roaring_bitmap_and_inplace(pop, among);
    roaring_uint32_iterator_t *it = roaring_create_iterator(pop);
    uint32_t buf[1024], got;
    while ((got = roaring_read_uint32_iterator(it, buf, 1024)) > 0)
        for (uint32_t i = 0; i < got; i++)
            b.w[buf[i] / 64] |= 1ull << (buf[i] % 64);
    roaring_free_uint32_iterator(it);
    roaring_bitmap_free(pop);
    return b;
}

static bool bit_on(const bitset *b, uint32_t i)
{
    return i < b->n && (b->w[i / 64] >> (i % 64)) & 1;
}

/* Moves the k-th smallest of a[0 .. n-1] to a[k], smaller ones before it
 * and larger ones after (Hoare's selection, median-of-three pivots). */
static int64_t select_kth(int64_t *a, size_t n, size_t k)
{
    size_t lo = 0, hi = n - 1;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (a[mid] < a[lo]) {
            int64_t t = a[mid];
            a[mid] = a[lo];
            a[lo] = t;
        }
        if (a[hi] < a[lo]) {
            int64_t t = a[hi];
            a[hi] = a[lo];
            a[lo] = t;
        }
        if (a[hi] < a[mid]) {
            int64_t t = a[hi];
            a[hi] = a[mid];
            a[mid] = t;
        }
        int64_t pivot = a[mid];
        size_t i = lo, j = hi;
        while (i <= j) {
            while (a[i] < pivot)
                i++;
            while (a[j] > pivot)
                j--;
            if (i <= j) {
                int64_t t = a[i];
                a[i] = a[j];
                a[j] = t;
                i++;
                if (j == 0)
                    break;
                j--;
            }
        }
        if (k <= j)
            hi = j;
        else if (k >= i)
            lo = i;
        else
            break;
    }
    return a[k];
}

/* The nearest-rank p-th percentile of a[0 .. n-1] (n > 0), partially
 * reordering a; successive calls must come with rising p (the part below
 * the previous rank is left alone). */
static int64_t percentile(int64_t *a, size_t n, unsigned p, size_t *done)
{
    size_t rank = ((size_t)p * n + 99) / 100; /* 1-based */
    size_t k = rank ? rank - 1 : 0;
    int64_t v = select_kth(a + *done, n - *done, k - *done);
    *done = k;
    return v;
}

static int64_t median_of(int64_t *a, size_t n)
{
    size_t done = 0;
    return n ? percentile(a, n, 50, &done) : -1;
}

/* ---- funnels ---- */

typedef struct funnel_pass {
    const bitset *pop;
    uint8_t *level;        /* steps reached */
    int64_t *start, *prev; /* entry time; time of the last step reached */
    int64_t *cand;         /* the step's earliest qualifying time so far */
    uint8_t step;          /* the step looked for (0-based) */
    bool strict;           /* the same event as the step before */
    int64_t window_ms;
    uint32_t *entered; /* step 0: who entered, in order of entry */
    size_t nentered;
} funnel_pass;

static void funnel_day(const sy_timed_day *td, void *ud)
{
    funnel_pass *f = ud;
    int64_t base = td->day * SY_DAY_MS;
    if (f->step == 0) {
        for (size_t i = 0; i < td->n; i++) {
            uint32_t d = td->dense[i];
            if (!bit_on(f->pop, d))
                continue;
            int64_t t = base + td->ms[i];
            if (!f->level[d]) {
                f->level[d] = 1;
                f->start[d] = t;
                f->entered[f->nentered++] = d;
            } else if (t < f->start[d]) {
                f->start[d] = t;
            }
        }
        return;
    }
    for (size_t i = 0; i < td->n; i++) {
        uint32_t d = td->dense[i];
        if (d >= f->pop->n || f->level[d] != f->step)
            continue;
        int64_t t = base + td->ms[i];
        if ((f->strict ? t <= f->prev[d] : t < f->prev[d]) || t > f->start[d] + f->window_ms)
            continue;
        if (t < f->cand[d])
            f->cand[d] = t;
    }
}

/* The value groups of the breakdown attribute: group_of[dense] (the
 * no-value group for the rest). */
typedef struct group_fill {
    uint16_t *group_of;
    size_t n;
    sy_funnel *out;
    bool too_many;
} group_fill;

static void fill_group(const char *value, const roaring_bitmap_t *b, void *ud)
{
    group_fill *g = ud;
    if (g->out->ngroups >= SY_FUNNEL_MAX_GROUPS) {
        g->too_many = true;
        return;
    }
    size_t k = g->out->ngroups++;
    g->out->groups = sy_xrealloc(g->out->groups, g->out->ngroups * sizeof *g->out->groups);
    memset(&g->out->groups[k], 0, sizeof g->out->groups[k]);
    g->out->groups[k].value = sy_xstrdup(value);
    roaring_uint32_iterator_t *it = roaring_create_iterator(b);
    uint32_t buf[1024], got;
    while ((got = roaring_read_uint32_iterator(it, buf, 1024)) > 0)
        for (uint32_t i = 0; i < got; i++)
            if (buf[i] < g->n)
                g->group_of[buf[i]] = (uint16_t)k;
    roaring_free_uint32_iterator(it);
}

static int cmp_group(const void *x, const void *y)
{
    return strcmp(((const sy_funnel_group *)x)->value, ((const sy_funnel_group *)y)->value);
}

/* Sorts out's groups by value; order[old position] = new position. */
static void sort_groups(sy_funnel *out, uint16_t *order)
{
    for (size_t g = 0; g < out->ngroups; g++)
        out->groups[g].median_ms[0] = (int64_t)g; /* the old position, for a moment */
    qsort(out->groups, out->ngroups, sizeof *out->groups, cmp_group);
    for (size_t g = 0; g < out->ngroups; g++)
        order[out->groups[g].median_ms[0]] = (uint16_t)g;
}

bool sy_report_funnel(const sy_index *ix, const sy_funnel_query *q, sy_funnel *out)
{
    memset(out, 0, sizeof *out);
    out->nsteps = q->nsteps;
    bitset pop = population_bits(ix, q->among);
    size_t n = pop.n;
    uint16_t *group_of = NULL;
    if (q->breakdown) {
        group_of = sy_xmalloc(n * sizeof *group_of);
        for (size_t i = 0; i < n; i++)
            group_of[i] = UINT16_MAX;
        group_fill g = {.group_of = group_of, .n = n, .out = out};
        sy_index_values(ix, q->breakdown, fill_group, &g);
        if (g.too_many) {
            free(group_of);
            free(pop.w);
            sy_funnel_free(out);
            return false;
        }
        /* by value; the no-value group last */
        uint16_t *order = sy_xmalloc((out->ngroups ? out->ngroups : 1) * sizeof *order);
        sort_groups(out, order);
        for (size_t i = 0; i < n; i++)
            if (group_of[i] != UINT16_MAX)
                group_of[i] = order[group_of[i]];
        free(order);
        size_t none = out->ngroups++;
        out->groups = sy_xrealloc(out->groups, out->ngroups * sizeof *out->groups);
        memset(&out->groups[none], 0, sizeof out->groups[none]);
        for (size_t i = 0; i < n; i++)
            if (group_of[i] == UINT16_MAX)
                group_of[i] = (uint16_t)none;
    }
    funnel_pass f = {.pop = &pop, .window_ms = q->window_ms};
    f.level = sy_xcalloc(n, sizeof *f.level);
    f.start = sy_xmalloc(n * sizeof *f.start);
    f.prev = sy_xmalloc(n * sizeof *f.prev);
    f.cand = sy_xmalloc(n * sizeof *f.cand);
    f.entered = sy_xmalloc(n * sizeof *f.entered);
    /* step 1: the first entry of each customer */
    sy_index_timed_days(ix, q->steps[0], q->from, q->to, funnel_day, &f);
    /* the customers still in the funnel, and the times between steps */
    uint32_t *alive = f.entered;
    size_t nalive = f.nentered;
    int64_t *delta = sy_xmalloc((nalive ? nalive : 1) * sizeof *delta);
    size_t *gcount = group_of ? sy_xcalloc(out->ngroups + 1, sizeof *gcount) : NULL;
    int64_t *gdelta = group_of ? sy_xmalloc((nalive ? nalive : 1) * sizeof *gdelta) : NULL;
    out->all.customers[0] = nalive;
    out->all.median_ms[0] = -1;
    for (size_t i = 0; i < nalive; i++) {
        f.prev[alive[i]] = f.start[alive[i]];
        if (group_of)
            out->groups[group_of[alive[i]]].customers[0]++;
    }
    for (size_t g = 0; g < out->ngroups; g++)
        out->groups[g].median_ms[0] = -1;
    /* later steps may happen after `to`, within the window */
    int64_t last_day = q->to + q->window_ms / SY_DAY_MS + 1;
    for (size_t k = 1; k < q->nsteps; k++) {
        for (size_t i = 0; i < nalive; i++)
            f.cand[alive[i]] = INT64_MAX;
        f.step = (uint8_t)k;
        f.strict = !strcmp(q->steps[k], q->steps[k - 1]);
        sy_index_timed_days(ix, q->steps[k], q->from, last_day, funnel_day, &f);
        size_t kept = 0;
        for (size_t i = 0; i < nalive; i++) {
            uint32_t d = alive[i];
            if (f.cand[d] == INT64_MAX)
                continue;
            f.level[d] = (uint8_t)(k + 1);
            delta[kept] = f.cand[d] - f.prev[d];
            f.prev[d] = f.cand[d];
            alive[kept++] = d;
        }
        nalive = kept;
        out->all.customers[k] = nalive;
        if (group_of) {
            /* the deltas by group: counted, placed, then each group's median */
            memset(gcount, 0, (out->ngroups + 1) * sizeof *gcount);
            for (size_t i = 0; i < nalive; i++)
                gcount[group_of[alive[i]] + 1]++;
            for (size_t g = 0; g < out->ngroups; g++)
                gcount[g + 1] += gcount[g];
            for (size_t i = 0; i < nalive; i++)
                gdelta[gcount[group_of[alive[i]]]++] = delta[i];
            /* gcount[g] now ends group g */
            for (size_t g = 0; g < out->ngroups; g++) {
                size_t lo = g ? gcount[g - 1] : 0;
                out->groups[g].customers[k] = gcount[g] - lo;
                out->groups[g].median_ms[k] = median_of(gdelta + lo, gcount[g] - lo);
            }
        }
        out->all.median_ms[k] = median_of(delta, nalive);
    }
    free(gcount);
    free(gdelta);
    free(delta);
    free(f.level);
    free(f.start);
    free(f.prev);
    free(f.cand);
    free(f.entered);
    free(group_of);
    free(pop.w);
    return true;
}

void sy_funnel_free(sy_funnel *f)
{
    for (size_t g = 0; g < f->ngroups; g++)
        free(f->groups[g].value);
    free(f->groups);
    memset(f, 0, sizeof *f);
}

/* ---- dwell ---- */

typedef struct dwell_collect {
    const bitset *pop;
    int64_t from;
    int64_t **vals; /* per day */
    size_t *n, *cap;
} dwell_collect;

static void dwell_day(const sy_timed_day *td, void *ud)
{
    dwell_collect *c = ud;
    if (!td->dwell)
        return;
    size_t i = (size_t)(td->day - c->from);
    for (size_t e = 0; e < td->n; e++) {
        if (td->dwell[e] == SY_NO_DWELL || !bit_on(c->pop, td->dense[e]))
            continue;
        if (c->n[i] == c->cap[i]) {
            c->cap[i] = c->cap[i] ? c->cap[i] * 2 : 256;
            c->vals[i] = sy_xrealloc(c->vals[i], c->cap[i] * sizeof *c->vals[i]);
        }
        c->vals[i][c->n[i]++] = td->dwell[e];
    }
}

static void dwell_stats(int64_t *a, size_t n, sy_dwell_row *r)
{
    r->events = n;
    r->p50 = r->p90 = r->p99 = r->max = -1;
    r->mean = 0;
    if (!n)
        return;
    int64_t sum = 0, max = a[0];
    for (size_t i = 0; i < n; i++) {
        sum += a[i];
        if (a[i] > max)
            max = a[i];
    }
    r->mean = (double)sum / (double)n;
    r->max = max;
    size_t done = 0;
    r->p50 = percentile(a, n, 50, &done);
    r->p90 = percentile(a, n, 90, &done);
    r->p99 = percentile(a, n, 99, &done);
}

void sy_report_dwell(const sy_index *ix, const char *name, int64_t from, int64_t to,
                     const roaring_bitmap_t *among, sy_dwell_row *rows, sy_dwell_row *total)
{
    size_t nd = (size_t)(to - from + 1);
    bitset pop = population_bits(ix, among);
    dwell_collect c = {.pop = &pop, .from = from};
    c.vals = sy_xcalloc(nd, sizeof *c.vals);
    c.n = sy_xcalloc(nd, sizeof *c.n);
    c.cap = sy_xcalloc(nd, sizeof *c.cap);
    sy_index_timed_days(ix, name, from, to, dwell_day, &c);
    size_t all = 0;
    for (size_t i = 0; i < nd; i++)
        all += c.n[i];
    int64_t *every = sy_xmalloc((all ? all : 1) * sizeof *every);
    size_t at = 0;
    for (size_t i = 0; i < nd; i++) {
        memcpy(every + at, c.vals[i], c.n[i] * sizeof *every);
        at += c.n[i];
        rows[i].day = from + (int64_t)i;
        dwell_stats(c.vals[i], c.n[i], &rows[i]);
        free(c.vals[i]);
    }
    total->day = from;
    dwell_stats(every, all, total);
    free(every);
    free(c.vals);
    free(c.n);
    free(c.cap);
    free(pop.w);
}

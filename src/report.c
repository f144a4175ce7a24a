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

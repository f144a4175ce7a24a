/* report.c — activity and retention from the index's day bitmaps. */
#include "report.h"
#include "chunk.h"
#include "util.h"

#include <pthread.h>
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

/* The k-th smallest (0-based) of a[0 .. n-1].  a may be reordered.  Past
 * a few thousand values >= 0, a histogram of the values' top 16
 * significant bits finds the bucket that holds it, and only that bucket's
 * values are selected from: three sequential passes instead of the
 * selection's scattered swaps. */
#define KTH_BUCKETS 65536
static int64_t kth_smallest(int64_t *a, size_t n, size_t k)
{
    if (n < 4 * KTH_BUCKETS)
        return select_kth(a, n, k);
    int64_t min = a[0], max = a[0];
    for (size_t i = 1; i < n; i++) {
        min = a[i] < min ? a[i] : min;
        max = a[i] > max ? a[i] : max;
    }
    if (min < 0)
        return select_kth(a, n, k);
    int bits = 64 - __builtin_clzll((uint64_t)max | 1);
    int shift = bits > 16 ? bits - 16 : 0;
    uint32_t *h = sy_xcalloc(KTH_BUCKETS, sizeof *h);
    for (size_t i = 0; i < n; i++)
        h[a[i] >> shift]++;
    size_t below = 0, b = 0;
    while (below + h[b] <= k)
        below += h[b++];
    size_t m = 0;
    int64_t *in = sy_xmalloc(h[b] * sizeof *in);
    for (size_t i = 0; i < n; i++)
        if ((size_t)(a[i] >> shift) == b)
            in[m++] = a[i];
    int64_t v = select_kth(in, m, k - below);
    free(in);
    free(h);
    return v;
}

/* The nearest-rank p-th percentile of a[0 .. n-1] (n > 0), reordering a. */
static int64_t percentile(int64_t *a, size_t n, unsigned p)
{
    size_t rank = ((size_t)p * n + 99) / 100; /* 1-based */
    return kth_smallest(a, n, rank ? rank - 1 : 0);
}

static int64_t median_of(int64_t *a, size_t n)
{
    return n ? percentile(a, n, 50) : -1;
}

/* ---- funnels ---- */

/* One customer's way through the funnel: when they reached the last step
 * they reached, and the end of their window (entry time + window). */
typedef struct funnel_state {
    int64_t prev, deadline;
} funnel_state;

/* Customers are independent, so a funnel goes block by block of dense ids
 * (each through every step, day by day) rather than step by step over all
 * of them: a block's state (20 bytes a customer) stays in the core's cache
 * while its days' records stream by.  16,384 was faster than 4,096 and
 * 65,536 on the benchmark bank (docs/benchmarks.md).  A multiple of 64;
 * tests lower it. */
#define FUNNEL_BLOCK 16384
static size_t funnel_block = FUNNEL_BLOCK;

void sy_report_funnel_block(size_t ids)
{
    funnel_block = ids ? (ids + 63) / 64 * 64 : FUNNEL_BLOCK;
}

/* One day of a step's event, with the tail's records of one thread's
 * customers grouped by block: block b's are tdense/tms[tstart[b] ..
 * tstart[b + 1] - 1]. */
typedef struct funnel_day_recs {
    sy_timed_day td;
    uint32_t *tdense, *tms, *tstart;
    int32_t cur;   /* the sealed ids' chunk reached (blocks come in order) */
    size_t before; /* sealed entries in the chunks before cur */
} funnel_day_recs;

/* The days of one step's event in a range. */
typedef struct funnel_days {
    funnel_day_recs *d;
    size_t n, cap;
} funnel_days;

static void collect_timed_day(const sy_timed_day *td, void *ud)
{
    funnel_days *fd = ud;
    if (fd->n == fd->cap) {
        fd->cap = fd->cap ? 2 * fd->cap : 32;
        fd->d = sy_xrealloc(fd->d, fd->cap * sizeof *fd->d);
    }
    memset(&fd->d[fd->n], 0, sizeof fd->d[fd->n]);
    fd->d[fd->n++].td = *td;
}

/* Groups each day's tail records of the customers lo .. hi - 1 by block
 * (a counting sort on the block number). */
static void bucket_tails(funnel_days *fd, size_t lo, size_t hi, size_t nblocks)
{
    for (size_t i = 0; i < fd->n; i++) {
        funnel_day_recs *r = &fd->d[i];
        r->tstart = sy_xcalloc(nblocks + 1, sizeof *r->tstart);
        size_t m = 0;
        for (size_t k = 0; k < r->td.n; k++) {
            uint32_t d = r->td.dense[k];
            if (d >= lo && d < hi) {
                r->tstart[(d - lo) / funnel_block + 1]++;
                m++;
            }
        }
        if (!m)
            continue;
        for (size_t b = 0; b < nblocks; b++)
            r->tstart[b + 1] += r->tstart[b];
        uint32_t *at = sy_xmalloc(nblocks * sizeof *at);
        memcpy(at, r->tstart, nblocks * sizeof *at);
        r->tdense = sy_xmalloc(m * sizeof *r->tdense);
        r->tms = sy_xmalloc(m * sizeof *r->tms);
        for (size_t k = 0; k < r->td.n; k++) {
            uint32_t d = r->td.dense[k];
            if (d >= lo && d < hi) {
                uint32_t to = at[(d - lo) / funnel_block]++;
                r->tdense[to] = d;
                r->tms[to] = r->td.ms[k];
            }
        }
        free(at);
    }
}

static void funnel_days_free(funnel_days *fd)
{
    for (size_t i = 0; i < fd->n; i++) {
        free(fd->d[i].tdense);
        free(fd->d[i].tms);
        free(fd->d[i].tstart);
    }
    free(fd->d);
}

/* A pass over one step's records in one block, day by day.  Only the
 * customers whose bit is on in `look` are looked at: for the first step,
 * the population not entered yet; for a later one, those who reached the
 * step before and have no qualifying event of this one on an earlier day
 * (an event of a later day cannot be earlier).  A customer found on a day
 * stays looked at until the day ends (a later record of that day may be
 * earlier), then leaves `look`.  The records are unordered: each pass is a
 * minimum. */
typedef struct funnel_pass {
    bitset look;      /* who is looked at */
    bitset today;     /* who has a time on the current day */
    size_t nlook;     /* bits on in look */
    funnel_state *st; /* by dense id */
    uint32_t
        *cand;    /* by dense id: the earliest qualifying time yet on the current day (ms of it) */
    uint8_t step; /* the step looked for (0-based) */
    bool strict;  /* the same event as the step before */
    int64_t window_ms;
    uint32_t *found; /* found on the current day */
    size_t nfound;
    uint32_t *reached; /* found on any day, in order: who reached the step */
    size_t nreached;
    int64_t *delta;  /* later steps: for each of reached, the time from the step before */
    uint32_t lo, hi; /* the customers of the block: ids lo .. hi - 1 */
} funnel_pass;

static void bit_set(bitset *b, uint32_t i)
{
    b->w[i / 64] |= 1ull << (i % 64);
}

static void bit_clear(bitset *b, uint32_t i)
{
    b->w[i / 64] &= ~(1ull << (i % 64));
}

/* ms (of the current day) qualifies customer d for the step looked for:
 * the earliest wins. */
static void funnel_candidate(funnel_pass *f, uint32_t d, uint32_t ms)
{
    if (!bit_on(&f->today, d)) {
        bit_set(&f->today, d);
        f->cand[d] = ms;
        f->found[f->nfound++] = d;
    } else if (ms < f->cand[d]) {
        f->cand[d] = ms;
    }
}

/* Customer d's sealed run on the day (the day's entry i), ascending in
 * time: its first qualifying time is a candidate. */
static inline void funnel_sealed(funnel_pass *f, const sy_timed_day *td, int64_t base, uint32_t d,
                                 size_t i)
{
    if (i >= td->nsealed)
        return;
    uint32_t j = td->off[i], end = td->off[i + 1];
    if (j == end)
        return;
    if (!f->step) {
        funnel_candidate(f, d, td->sealed_ms[j]);
        return;
    }
    const funnel_state *s = &f->st[d];
    for (; j < end; j++) {
        int64_t t = base + td->sealed_ms[j];
        if (f->strict ? t <= s->prev : t < s->prev)
            continue;
        if (t <= s->deadline)
            funnel_candidate(f, d, td->sealed_ms[j]);
        return;
    }
}

/* The sealed entries of the block's looked-at customers in chunk `key`
 * (values lo16 .. hi16 of it), read from the day's container without
 * decoding the others: a bitset container's words are ANDed with look's,
 * and an entry's position (its rank) is counted from the words (with the
 * CPU's popcnt instruction where it has one). */
SY_POPCNT_CLONES
static void funnel_chunk(funnel_pass *f, funnel_day_recs *r, int64_t base, uint32_t key,
                         uint32_t lo16, uint32_t hi16)
{
    const sy_timed_day *td = &r->td;
    const roaring_array_t *ra = &td->sealed_ids->high_low_container;
    uint8_t type;
    while (r->cur < ra->size && ra->keys[r->cur] < key) {
        const void *c = sy_chunk_at(td->sealed_ids, r->cur++, &type);
        r->before += (size_t)container_get_cardinality(c, type);
    }
    if (r->cur >= ra->size || ra->keys[r->cur] != key)
        return;
    const void *c = sy_chunk_at(td->sealed_ids, r->cur, &type);
    uint32_t high = key << 16;
    size_t rank = r->before;
    if (type == BITSET_CONTAINER_TYPE_CODE) {
        const uint64_t *cw = ((const bitset_container_t *)c)->array;
        const uint64_t *lw = f->look.w + (size_t)key * SY_CHUNK_WORDS;
        uint32_t wa = lo16 / 64, wz = hi16 / 64;
        for (uint32_t w = 0; w < wa; w++)
            rank += (size_t)__builtin_popcountll(cw[w]);
        for (uint32_t w = wa; w <= wz; w++) {
            uint64_t m = cw[w] & lw[w];
            if (w == wa)
                m &= ~0ull << (lo16 % 64);
            if (w == wz)
                m &= ~0ull >> (63 - hi16 % 64);
            while (m) {
                unsigned b = (unsigned)__builtin_ctzll(m);
                m &= m - 1;
                size_t i = rank + (size_t)__builtin_popcountll(cw[w] & ((1ull << b) - 1));
                funnel_sealed(f, td, base, high | w << 6 | b, i);
            }
            rank += (size_t)__builtin_popcountll(cw[w]);
        }
    } else if (type == ARRAY_CONTAINER_TYPE_CODE) {
        const array_container_t *ac = c;
        int32_t a = 0, z = ac->cardinality; /* the first value >= lo16 */
        while (a < z) {
            int32_t m = a + (z - a) / 2;
            if (ac->array[m] < lo16)
                a = m + 1;
            else
                z = m;
        }
        for (; a < ac->cardinality && ac->array[a] <= hi16; a++)
            if (bit_on(&f->look, high | ac->array[a]))
                funnel_sealed(f, td, base, high | ac->array[a], rank + (size_t)a);
    } else {
        const run_container_t *rc = c;
        for (int32_t k = 0; k < rc->n_runs; k++) {
            uint32_t v = rc->runs[k].value, e = v + rc->runs[k].length;
            if (v > hi16)
                break;
            if (v < lo16) {
                uint32_t skip = (e < lo16 ? e + 1 : lo16) - v;
                rank += skip;
                v += skip;
            }
            for (; v <= e && v <= hi16; v++, rank++)
                if (bit_on(&f->look, high | v))
                    funnel_sealed(f, td, base, high | v, rank);
        }
    }
}

/* Block b's records of day r. */
static void funnel_day(funnel_pass *f, funnel_day_recs *r, size_t b)
{
    const sy_timed_day *td = &r->td;
    int64_t base = td->day * SY_DAY_MS;
    if (td->sealed_ids)
        for (uint32_t key = f->lo >> 16; key <= (f->hi - 1) >> 16; key++)
            funnel_chunk(f, r, base, key, key == f->lo >> 16 ? f->lo & 0xffff : 0,
                         key == (f->hi - 1) >> 16 ? (f->hi - 1) & 0xffff : 0xffff);
    /* the block's tail records, unordered */
    for (size_t i = r->tstart[b]; i < r->tstart[b + 1]; i++) {
        uint32_t d = r->tdense[i];
        if (!bit_on(&f->look, d))
            continue;
        int64_t t = base + r->tms[i];
        if (f->step) {
            const funnel_state *s = &f->st[d];
            if ((f->strict ? t <= s->prev : t < s->prev) || t > s->deadline)
                continue;
        }
        funnel_candidate(f, d, r->tms[i]);
    }
    /* the day's finds are final: their state moves on to this step */
    for (size_t i = 0; i < f->nfound; i++) {
        uint32_t d = f->found[i];
        int64_t t = base + f->cand[d];
        bit_clear(&f->look, d);
        bit_clear(&f->today, d);
        if (!f->step) {
            f->st[d].deadline = t + f->window_ms;
        } else {
            f->delta[f->nreached] = t - f->st[d].prev;
        }
        f->st[d].prev = t;
        f->reached[f->nreached++] = d;
    }
    f->nlook -= f->nfound;
    f->nfound = 0;
}

/* Dense ids from which a funnel is computed by two threads. */
#define FUNNEL_SPLIT 4096

/* One thread's share of a funnel: the customers lo .. hi - 1.  ids[k]:
 * who reached step k, block by block in the order found; delta[k]
 * (k > 0): the time each took from the step before. */
typedef struct funnel_part {
    const sy_index *ix;
    const sy_funnel_query *q;
    const uint64_t *pop; /* the population's bits */
    funnel_pass f;
    size_t lo, hi;
    uint32_t *ids[SY_FUNNEL_MAX_STEPS];
    size_t nids[SY_FUNNEL_MAX_STEPS];
    int64_t *delta[SY_FUNNEL_MAX_STEPS];
} funnel_part;

static void *funnel_run(void *arg)
{
    funnel_part *p = arg;
    funnel_pass *f = &p->f;
    const sy_funnel_query *q = p->q;
    size_t range = p->hi - p->lo, cap = range ? range : 1;
    size_t nblocks = (range + funnel_block - 1) / funnel_block;
    /* entries on days from .. to; later steps may happen after `to`,
     * within the window */
    int64_t last_day = q->to + q->window_ms / SY_DAY_MS + 1;
    funnel_days days[SY_FUNNEL_MAX_STEPS];
    bool strict[SY_FUNNEL_MAX_STEPS];
    for (size_t k = 0; k < q->nsteps; k++) {
        memset(&days[k], 0, sizeof days[k]);
        sy_index_timed_days(p->ix, q->steps[k], q->from, k ? last_day : q->to, collect_timed_day,
                            &days[k]);
        bucket_tails(&days[k], p->lo, p->hi, nblocks);
        strict[k] = k && !strcmp(q->steps[k], q->steps[k - 1]);
        p->ids[k] = sy_xmalloc(cap * sizeof *p->ids[k]);
        if (k)
            p->delta[k] = sy_xmalloc(cap * sizeof *p->delta[k]);
    }
    f->found = sy_xmalloc((range < funnel_block ? cap : funnel_block) * sizeof *f->found);
    for (size_t b = 0; b < nblocks; b++) {
        size_t blo = p->lo + b * funnel_block,
               bhi = blo + funnel_block < p->hi ? blo + funnel_block : p->hi;
        size_t w0 = blo / 64, nw = (bhi + 63) / 64 - w0;
        f->lo = (uint32_t)blo;
        f->hi = (uint32_t)bhi;
        /* step 1: the block's population */
        memcpy(f->look.w + w0, p->pop + w0, nw * sizeof(uint64_t));
        f->nlook = 0;
        for (size_t w = w0; w < w0 + nw; w++)
            f->nlook += (size_t)__builtin_popcountll(f->look.w[w]);
        size_t prev_start = 0;
        for (size_t k = 0; k < q->nsteps; k++) {
            size_t start = p->nids[k];
            if (k) {
                if (p->nids[k - 1] == prev_start)
                    break;
                /* the block's customers who reached the step before */
                memset(f->look.w + w0, 0, nw * sizeof(uint64_t));
                for (size_t i = prev_start; i < p->nids[k - 1]; i++)
                    bit_set(&f->look, p->ids[k - 1][i]);
                f->nlook = p->nids[k - 1] - prev_start;
            }
            f->reached = p->ids[k];
            f->nreached = p->nids[k];
            f->delta = p->delta[k];
            f->step = (uint8_t)k;
            f->strict = strict[k];
            if (!f->nlook)
                break;
            for (size_t i = 0; i < days[k].n && f->nlook; i++)
                funnel_day(f, &days[k].d[i], b);
            p->nids[k] = f->nreached;
            prev_start = start;
        }
    }
    free(f->found);
    for (size_t k = 0; k < q->nsteps; k++)
        funnel_days_free(&days[k]);
    return NULL;
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
    if (out->ngroups > 1)
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
    /* Customers are independent: two threads take a half of the dense ids
     * each (at a word boundary), block by block, each looking at its own
     * customers' records only and at its own words of the bitsets. */
    size_t words = (n + 63) / 64;
    funnel_state *st = sy_xmalloc(n * sizeof *st);
    uint32_t *cand = sy_xmalloc(n * sizeof *cand);
    bitset today = {sy_xcalloc(words, sizeof(uint64_t)), n};
    bitset look = {sy_xcalloc(words, sizeof(uint64_t)), n};
    size_t nparts = n >= FUNNEL_SPLIT ? 2 : 1, mid = (words / 2) * 64;
    funnel_part parts[2];
    for (size_t p = 0; p < nparts; p++) {
        funnel_part *fp = &parts[p];
        memset(fp, 0, sizeof *fp);
        fp->ix = ix;
        fp->q = q;
        fp->lo = nparts == 1 || p == 0 ? 0 : mid;
        fp->hi = nparts == 1 || p == 1 ? n : mid;
        fp->f.st = st;
        fp->f.cand = cand;
        fp->f.today = today;
        fp->f.window_ms = q->window_ms;
        fp->f.look = look;
        fp->pop = pop.w;
    }
    pthread_t th;
    bool threaded = nparts == 2 && pthread_create(&th, NULL, funnel_run, &parts[1]) == 0;
    funnel_run(&parts[0]);
    if (threaded)
        pthread_join(th, NULL);
    else if (nparts == 2)
        funnel_run(&parts[1]);
    /* the parts' figures together */
    size_t most = 0;
    for (size_t p = 0; p < nparts; p++)
        most += parts[p].nids[0];
    uint32_t *ids = sy_xmalloc((most ? most : 1) * sizeof *ids);
    int64_t *delta = sy_xmalloc((most ? most : 1) * sizeof *delta);
    size_t *gcount = group_of ? sy_xcalloc(out->ngroups + 1, sizeof *gcount) : NULL;
    int64_t *gdelta = group_of ? sy_xmalloc((most ? most : 1) * sizeof *gdelta) : NULL;
    for (size_t g = 0; g < out->ngroups; g++)
        out->groups[g].median_ms[0] = -1;
    for (size_t k = 0; k < q->nsteps; k++) {
        size_t m = 0;
        for (size_t p = 0; p < nparts; p++) {
            if (group_of)
                memcpy(ids + m, parts[p].ids[k], parts[p].nids[k] * sizeof *ids);
            if (k)
                memcpy(delta + m, parts[p].delta[k], parts[p].nids[k] * sizeof *delta);
            m += parts[p].nids[k];
        }
        out->all.customers[k] = m;
        if (group_of) {
            /* by group: counted, the deltas placed, then each group's median */
            memset(gcount, 0, (out->ngroups + 1) * sizeof *gcount);
            for (size_t i = 0; i < m; i++)
                gcount[group_of[ids[i]] + 1]++;
            for (size_t g = 0; g < out->ngroups; g++)
                gcount[g + 1] += gcount[g];
            for (size_t i = 0; i < m; i++)
                gdelta[gcount[group_of[ids[i]]]++] = k ? delta[i] : 0;
            /* gcount[g] now ends group g */
            for (size_t g = 0; g < out->ngroups; g++) {
                size_t lo = g ? gcount[g - 1] : 0;
                out->groups[g].customers[k] = gcount[g] - lo;
                if (k)
                    out->groups[g].median_ms[k] = median_of(gdelta + lo, gcount[g] - lo);
            }
        }
        out->all.median_ms[k] = k ? median_of(delta, m) : -1;
    }
    for (size_t p = 0; p < nparts; p++) {
        for (size_t k = 0; k < q->nsteps; k++) {
            free(parts[p].ids[k]);
            free(parts[p].delta[k]);
        }
    }
    free(ids);
    free(delta);
    free(gcount);
    free(gdelta);
    free(today.w);
    free(look.w);
    free(st);
    free(cand);
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

static void dwell_add(dwell_collect *c, size_t i, uint32_t v)
{
    if (v == SY_NO_DWELL)
        return;
    if (c->n[i] == c->cap[i]) {
        c->cap[i] = c->cap[i] ? c->cap[i] * 2 : 256;
        c->vals[i] = sy_xrealloc(c->vals[i], c->cap[i] * sizeof *c->vals[i]);
    }
    c->vals[i][c->n[i]++] = v;
}

static void dwell_day(const sy_timed_day *td, void *ud)
{
    dwell_collect *c = ud;
    size_t i = (size_t)(td->day - c->from);
    if (td->sealed_ids && td->sealed_dwell) {
        roaring_uint32_iterator_t *it = roaring_create_iterator(td->sealed_ids);
        uint32_t buf[1024], got;
        size_t e = 0;
        while (e < td->nsealed && (got = roaring_read_uint32_iterator(it, buf, 1024)) > 0)
            for (uint32_t k = 0; k < got && e < td->nsealed; k++, e++)
                if (bit_on(c->pop, buf[k]))
                    for (uint32_t j = td->off[e]; j < td->off[e + 1]; j++)
                        dwell_add(c, i, td->sealed_dwell[j]);
        roaring_free_uint32_iterator(it);
    }
    for (size_t e = 0; td->dwell && e < td->n; e++)
        if (bit_on(c->pop, td->dense[e]))
            dwell_add(c, i, td->dwell[e]);
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
    r->p50 = percentile(a, n, 50);
    r->p90 = percentile(a, n, 90);
    r->p99 = percentile(a, n, 99);
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
        if (c.n[i])
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

/* segment_eval.c — segment expressions over Roaring bitmaps.
 *
 * Each node yields a bitmap; and/or/not are bitmap intersections, unions
 * and complements against the tenant's customers.  Categorical attributes
 * are unions of value bitmaps; numeric attributes scan their column over
 * the customers that have a value; behaviour predicates union the day
 * bitmaps of the window, or, for counts and dwell sums, accumulate per
 * customer over the window's days.
 *
 * Every node is evaluated among candidates: an and-chain evaluates its
 * cheap terms (single bitmaps) first and hands what is left to the
 * expensive ones (column scans, behaviour sums), which then read only those
 * customers' rows.  So `payroll = true and aum >= 50000000` scans the aum
 * of payroll customers only. */
#include "segment_eval.h"
#include "chunk.h"
#include "util.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DAY_MS 86400000LL

static roaring_bitmap_t *fail(sy_seg_error *err, int pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static roaring_bitmap_t *fail(sy_seg_error *err, int pos, const char *fmt, ...)
{
    err->pos = pos;
    err->line = err->col = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return NULL;
}

static bool op_holds(sy_seg_op op, int c) /* c = sign of (value - literal) */
{
    switch (op) {
    case SY_OP_EQ:
        return c == 0;
    case SY_OP_NE:
        return c != 0;
    case SY_OP_LT:
        return c < 0;
    case SY_OP_LE:
        return c <= 0;
    case SY_OP_GT:
        return c > 0;
    case SY_OP_GE:
        return c >= 0;
    }
    return false;
}

static int cmp64(int64_t a, int64_t b)
{
    return (a > b) - (a < b);
}

/* ---- categorical ---- */

typedef struct cat_scan {
    const sy_attr_def *d;
    sy_seg_op op;
    const char *lit;
    int lit_index; /* enum order of lit */
    /* the bitmaps of the values that hold */
    const roaring_bitmap_t **match;
    size_t n, cap;
} cat_scan;

static void cat_visit(const char *value, const roaring_bitmap_t *b, void *ud)
{
    cat_scan *s = ud;
    int c;
    if (s->d->type == SY_ATTR_ENUM) {
        int vi = sy_attr_enum_index(s->d, value);
        if (vi < 0)
            return;
        c = (vi > s->lit_index) - (vi < s->lit_index);
    } else {
        int r = strcmp(value, s->lit);
        c = (r > 0) - (r < 0);
    }
    if (!op_holds(s->op, c))
        return;
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 8;
        s->match = sy_xrealloc(s->match, s->cap * sizeof *s->match);
    }
    s->match[s->n++] = b;
}

/* The customers among cand (NULL: everyone) whose value is one of the
 * matching values' bitmaps.  Few candidates: each value among them, work in
 * proportion to the candidates.  Many (a sixty-fourth of the tenant or
 * more): one union of the values' whole bitmaps, then one intersection,
 * where a value at a time would intersect the candidates once per value and
 * then merge the pieces. */
static roaring_bitmap_t *cat_members(const sy_seg_ctx *cx, const cat_scan *s,
                                     const roaring_bitmap_t *cand)
{
    if (s->n == 0)
        return roaring_bitmap_create();
    if (!cand)
        return roaring_bitmap_or_many(s->n, s->match);
    if (s->n == 1)
        return roaring_bitmap_and(s->match[0], cand);
    uint32_t size = sy_index_size(cx->ix);
    if (roaring_bitmap_get_cardinality(cand) >= size / 64) {
        /* Candidates within a part of the ids (one half of an evaluation
         * in halves): the union of that part only. */
        uint32_t lo = roaring_bitmap_minimum(cand), hi = roaring_bitmap_maximum(cand);
        roaring_bitmap_t *u;
        if ((uint64_t)hi - lo + 1 < (uint64_t)size / 4 * 3) {
            roaring_bitmap_t *range = roaring_bitmap_from_range(lo, (uint64_t)hi + 1, 1);
            roaring_bitmap_run_optimize(range);
            roaring_bitmap_t **part = sy_xmalloc(s->n * sizeof *part);
            for (size_t i = 0; i < s->n; i++)
                part[i] = roaring_bitmap_and(s->match[i], range);
            u = roaring_bitmap_or_many(s->n, (const roaring_bitmap_t **)part);
            for (size_t i = 0; i < s->n; i++)
                roaring_bitmap_free(part[i]);
            free(part);
            roaring_bitmap_free(range);
        } else {
            u = roaring_bitmap_or_many(s->n, s->match);
        }
        roaring_bitmap_and_inplace(u, cand);
        return u;
    }
    roaring_bitmap_t *out = roaring_bitmap_create();
    for (size_t i = 0; i < s->n; i++) {
        roaring_bitmap_t *t = roaring_bitmap_and(s->match[i], cand);
        roaring_bitmap_or_inplace(out, t);
        roaring_bitmap_free(t);
    }
    return out;
}

static void union_visit(const char *value, const roaring_bitmap_t *b, void *ud)
{
    roaring_bitmap_or_inplace(ud, b);
}

/* Everyone with a value of attribute d. */
static roaring_bitmap_t *present_of(const sy_seg_ctx *cx, const sy_attr_def *d)
{
    if (d->type == SY_ATTR_INTEGER || d->type == SY_ATTR_NUMBER || d->type == SY_ATTR_DATE) {
        const roaring_bitmap_t *p = sy_index_present(cx->ix, d->name);
        return p ? roaring_bitmap_copy(p) : roaring_bitmap_create();
    }
    roaring_bitmap_t *out = roaring_bitmap_create();
    sy_index_values(cx->ix, d->name, union_visit, out);
    return out;
}

/* The literal as the integer a numeric attribute stores, or false. */
static bool numeric_literal(const sy_attr_def *d, const sy_seg_lit *l, int64_t *out,
                            sy_seg_error *err)
{
    if (d->type == SY_ATTR_DATE) {
        if (l->kind != SY_LIT_DATE) {
            fail(err, l->pos, "'%s' is a date: compare it with a date such as 2024-01-31", d->name);
            return false;
        }
        *out = l->i;
        return true;
    }
    if (d->type == SY_ATTR_INTEGER) {
        if (l->kind != SY_LIT_INT) {
            fail(err, l->pos, "'%s' is an integer%s%s: compare it with an integer", d->name,
                 d->unit[0] ? " in " : "", d->unit);
            return false;
        }
        *out = l->i;
        return true;
    }
    /* number: scale the literal exactly */
    int64_t scaled;
    if (l->kind == SY_LIT_INT) {
        int64_t p = 1;
        for (int i = 0; i < d->scale; i++)
            p *= 10;
        if (l->i > INT64_MAX / p || l->i < INT64_MIN / p) {
            fail(err, l->pos, "the number is too large for '%s'", d->name);
            return false;
        }
        *out = l->i * p;
        return true;
    }
    if (l->kind != SY_LIT_DECIMAL) {
        fail(err, l->pos, "'%s' is a number: compare it with a number", d->name);
        return false;
    }
    const char *dot = strchr(l->s, '.');
    int decimals = dot ? (int)strlen(dot + 1) : 0;
    if (decimals > d->scale) {
        fail(err, l->pos, "'%s' has %d decimals; %s has more", d->name, d->scale, l->s);
        return false;
    }
    char digits[64];
    size_t o = 0;
    for (const char *p = l->s; *p && o < sizeof digits - 8; p++)
        if (*p != '.')
            digits[o++] = *p;
    for (int i = decimals; i < d->scale; i++)
        digits[o++] = '0';
    digits[o] = '\0';
    if (!sy_parse_i64(digits, INT64_MIN, INT64_MAX, &scaled)) {
        fail(err, l->pos, "the number is too large for '%s'", d->name);
        return false;
    }
    *out = scaled;
    return true;
}

/* Customers (among the candidates) whose value lies in [lo, hi]: one pass
 * over the column, reading only the rows of those tested. */
static roaring_bitmap_t *numeric_range(const sy_seg_ctx *cx, const sy_attr_def *d,
                                       const roaring_bitmap_t *cand, int64_t lo, int64_t hi)
{
    return sy_index_range(cx->ix, d->name, cand, lo, hi);
}

/* attr op lit on a numeric column, as one range (or its complement for
 * !=) among those with a value. */
static roaring_bitmap_t *numeric_where(const sy_seg_ctx *cx, const sy_attr_def *d,
                                       const roaring_bitmap_t *cand, sy_seg_op op, int64_t lit)
{
    int64_t lo = INT64_MIN, hi = INT64_MAX;
    switch (op) {
    case SY_OP_EQ:
    case SY_OP_NE:
        lo = hi = lit;
        break;
    case SY_OP_LT:
        if (lit == INT64_MIN)
            return roaring_bitmap_create();
        hi = lit - 1;
        break;
    case SY_OP_LE:
        hi = lit;
        break;
    case SY_OP_GT:
        if (lit == INT64_MAX)
            return roaring_bitmap_create();
        lo = lit + 1;
        break;
    case SY_OP_GE:
        lo = lit;
        break;
    }
    roaring_bitmap_t *in = numeric_range(cx, d, cand, lo, hi);
    if (op != SY_OP_NE)
        return in;
    const roaring_bitmap_t *present = sy_index_present(cx->ix, d->name);
    roaring_bitmap_t *out = present ? roaring_bitmap_copy(present) : roaring_bitmap_create();
    if (cand)
        roaring_bitmap_and_inplace(out, cand);
    roaring_bitmap_andnot_inplace(out, in);
    roaring_bitmap_free(in);
    return out;
}

/* b narrowed to the candidates (b is consumed). */
static roaring_bitmap_t *narrow(roaring_bitmap_t *b, const roaring_bitmap_t *cand)
{
    if (b && cand)
        roaring_bitmap_and_inplace(b, cand);
    return b;
}

/* attr op literal, for any attribute type. */
static roaring_bitmap_t *compare(const sy_seg_ctx *cx, const sy_attr_def *d,
                                 const roaring_bitmap_t *cand, sy_seg_op op, const sy_seg_lit *l,
                                 sy_seg_error *err)
{
    switch (d->type) {
    case SY_ATTR_INTEGER:
    case SY_ATTR_NUMBER:
    case SY_ATTR_DATE: {
        int64_t v;
        if (!numeric_literal(d, l, &v, err))
            return NULL;
        return numeric_where(cx, d, cand, op, v);
    }
    case SY_ATTR_BOOL: {
        if (l->kind != SY_LIT_BOOL)
            return fail(err, l->pos, "'%s' is true or false", d->name);
        if (op != SY_OP_EQ && op != SY_OP_NE)
            return fail(err, l->pos, "'%s' is a bool: use = or !=", d->name);
        bool want = (l->i != 0) == (op == SY_OP_EQ);
        const roaring_bitmap_t *b = sy_index_value(cx->ix, d->name, want ? "true" : "false");
        if (!b)
            return roaring_bitmap_create();
        return cand ? roaring_bitmap_and(b, cand) : roaring_bitmap_copy(b);
    }
    case SY_ATTR_ENUM:
    case SY_ATTR_STRING: {
        if (l->kind != SY_LIT_STRING)
            return fail(err, l->pos, "'%s' takes %s value", d->name,
                        d->type == SY_ATTR_ENUM ? "an enum" : "a string");
        cat_scan s = {.d = d, .op = op, .lit = l->s};
        if (d->type == SY_ATTR_ENUM) {
            s.lit_index = sy_attr_enum_index(d, l->s);
            if (s.lit_index < 0) {
                char vals[160] = "";
                for (int i = 0; i < d->nenum && strlen(vals) < 120; i++)
                    snprintf(vals + strlen(vals), sizeof vals - strlen(vals), "%s%s", i ? ", " : "",
                             d->enum_values[i]);
                return fail(err, l->pos, "'%s' is not a value of %s (%s)", l->s, d->name, vals);
            }
        }
        sy_index_values(cx->ix, d->name, cat_visit, &s);
        roaring_bitmap_t *out = cat_members(cx, &s, cand);
        free(s.match);
        return out;
    }
    }
    return fail(err, l->pos, "unsupported attribute type");
}

/* ---- behaviour ---- */

typedef struct window_days {
    const sy_day_events **day;
    const roaring_bitmap_t **actors;
    size_t n, cap, slots; /* days, and (customer, day) entries over them */
} window_days;

static void window_visit(int64_t day, const sy_day_events *d, void *ud)
{
    (void)day;
    window_days *w = ud;
    if (w->n == w->cap) {
        w->cap = w->cap ? 2 * w->cap : 32;
        w->day = sy_xrealloc(w->day, w->cap * sizeof *w->day);
        w->actors = sy_xrealloc(w->actors, w->cap * sizeof *w->actors);
    }
    w->day[w->n] = d;
    w->actors[w->n++] = sy_day_actors(d);
    w->slots += sy_day_size(d);
}

static bool whole_days(int64_t window_ms, int pos, const char *what, sy_seg_error *err)
{
    if (window_ms % DAY_MS != 0) {
        fail(err, pos, "%s counts whole business days: write the window in d or w", what);
        return false;
    }
    return true;
}

/* did()/dwell() among the candidates.  The window's actors are the union
 * of its day bitmaps.  Counts and dwell sums are needed only for actors
 * among the candidates: when those are few, each is looked up day by day;
 * otherwise every day's entries are added into a dense array of sums. */
static roaring_bitmap_t *behaviour(const sy_seg_ctx *cx, const sy_seg_node *n,
                                   const roaring_bitmap_t *cand, sy_seg_error *err)
{
    bool dwell = n->kind == SY_SEG_DWELL;
    if (!whole_days(n->window_ms, n->pos, dwell ? "dwell()" : "did()", err))
        return NULL;
    if (cand && roaring_bitmap_is_empty(cand))
        return roaring_bitmap_create();
    int64_t today = sy_index_day(cx->ix, cx->now_ms);
    int64_t from = today - n->window_ms / DAY_MS + 1;
    uint64_t threshold = dwell ? (uint64_t)n->dwell_ms : (uint64_t)n->count;
    /* Does a customer with no such event (sum 0) match? */
    bool zero_matches = op_holds(n->op, cmp64(0, (int64_t)threshold));
    bool simple = !dwell && n->op == SY_OP_GE && n->count == 1; /* did at least once */
    window_days w = {0};
    sy_index_days(cx->ix, n->name, from, today, window_visit, &w);
    roaring_bitmap_t *actors =
        w.n ? roaring_bitmap_or_many(w.n, w.actors) : roaring_bitmap_create();
    narrow(actors, cand);
    if (simple) {
        free(w.day);
        free(w.actors);
        return actors;
    }
    roaring_bitmap_t *passing = roaring_bitmap_create();
    uint32_t buf[1024], keep[1024], got;
    roaring_uint32_iterator_t *it = roaring_create_iterator(actors);
    if (roaring_bitmap_get_cardinality(actors) * w.n < w.slots) {
        /* few: look each one up in each day */
        while ((got = roaring_read_uint32_iterator(it, buf, 1024)) > 0) {
            uint32_t k = 0;
            for (uint32_t i = 0; i < got; i++) {
                uint64_t sum = 0;
                for (size_t j = 0; j < w.n; j++) {
                    uint32_t c;
                    uint64_t dw;
                    sy_day_stats(w.day[j], buf[i], &c, &dw);
                    sum += dwell ? dw : c;
                }
                keep[k] = buf[i];
                k += op_holds(n->op, cmp64((int64_t)sum, (int64_t)threshold));
            }
            roaring_bitmap_add_many(passing, k, keep);
        }
    } else {
        /* many: calloc'd memory is zero pages until touched, so only the
         * customers who acted cost anything */
        uint64_t *sums = sy_xcalloc((size_t)sy_index_size(cx->ix) + 1, sizeof *sums);
        for (size_t j = 0; j < w.n; j++)
            sy_day_add_sums(w.day[j], sums, dwell);
        while ((got = roaring_read_uint32_iterator(it, buf, 1024)) > 0) {
            uint32_t k = 0;
            for (uint32_t i = 0; i < got; i++) {
                keep[k] = buf[i];
                k += op_holds(n->op, cmp64((int64_t)sums[buf[i]], (int64_t)threshold));
            }
            roaring_bitmap_add_many(passing, k, keep);
        }
        free(sums);
    }
    roaring_free_uint32_iterator(it);
    free(w.day);
    free(w.actors);
    roaring_bitmap_t *out;
    if (zero_matches) {
        /* the candidates (or everyone) minus the actors whose sum fails */
        out = roaring_bitmap_copy(cand ? cand : sy_index_all(cx->ix));
        roaring_bitmap_andnot_inplace(out, actors);
        roaring_bitmap_or_inplace(out, passing);
        roaring_bitmap_free(passing);
    } else {
        out = passing;
    }
    roaring_bitmap_free(actors);
    return out;
}

/* ---- conjunctions in one pass over the containers ----
 *
 * An and-chain of terms that are each a union of bitmaps (categorical
 * values, tags and segments, `is not null`, `did(e, W)`) and of numeric
 * ranges is evaluated chunk by chunk of 65,536 ids: per chunk, the words of
 * every term are ANDed into one bitset (a union of several values ORs their
 * containers first), its ids are read out, the numeric ranges keep those
 * whose column entry lies in range, and the survivors are appended to the
 * answer.  Nothing in between is made into a bitmap: no union of values, no
 * intersection that the next one replaces, no candidate set for the column
 * scan.  The terms go smallest first, so a chunk is done as soon as nothing
 * is left in it.
 *
 * This reads the containers of CRoaring 0.2 (roaring_array_t, the bitset,
 * array and run containers of its installed headers); the assertion below
 * stops a build against another layout. */
_Static_assert(ROARING_VERSION_MAJOR == 0 && ROARING_VERSION_MINOR == 2,
               "segment_eval.c reads CRoaring 0.2's containers: check fused_* against the new "
               "layout");

/* Use the one-pass evaluation (tests compare both ways). */
bool sy_seg_fuse = true;

#define CHUNK_WORDS SY_CHUNK_WORDS
#define MAX_FUSED 64

typedef struct fused_term {
    const roaring_bitmap_t **b; /* the union of these (n may be 0: nobody) */
    size_t n;
    bool negate;   /* the customers in none of b instead (b: the other values of an
                    * attribute every customer has a value of) */
    uint64_t size; /* the members: the sum of b's cardinalities, or the rest */
    bool sized;    /* size is known (fused_add counted it) */
    int32_t *cur;  /* per bitmap: its container index, as chunks advance */
    bool own_b;    /* b was allocated here */
} fused_term;

typedef struct fused_range {
    const char *attr;
    int64_t lo, hi;
} fused_range;

typedef struct fused {
    fused_term t[MAX_FUSED];
    int nt;
    fused_range r[MAX_FUSED];
    int nr;
} fused;

/* The container of b for chunk key (and its type), or NULL; *cur only moves
 * forward, as keys are asked in ascending order. */
static const void *fused_chunk(const roaring_bitmap_t *b, int32_t *cur, uint16_t key, uint8_t *type)
{
    const roaring_array_t *ra = &b->high_low_container;
    while (*cur < ra->size && ra->keys[*cur] < key)
        (*cur)++;
    if (*cur >= ra->size || ra->keys[*cur] != key)
        return NULL;
    return sy_chunk_at(b, *cur, type);
}

static void words_set_range(uint64_t *w, uint32_t start, uint32_t end) /* end inclusive */
{
    uint32_t a = start >> 6, z = end >> 6;
    uint64_t first = ~0ULL << (start & 63), last = ~0ULL >> (63 - (end & 63));
    if (a == z) {
        w[a] |= first & last;
        return;
    }
    w[a] |= first;
    for (uint32_t i = a + 1; i < z; i++)
        w[i] = ~0ULL;
    w[z] |= last;
}

/* w |= the container's bits. */
static void words_or(uint64_t *w, const void *c, uint8_t type)
{
    if (type == BITSET_CONTAINER_TYPE_CODE) {
        const uint64_t *a = ((const bitset_container_t *)c)->array;
        for (int i = 0; i < CHUNK_WORDS; i++)
            w[i] |= a[i];
    } else if (type == ARRAY_CONTAINER_TYPE_CODE) {
        const array_container_t *ac = c;
        for (int32_t i = 0; i < ac->cardinality; i++)
            w[ac->array[i] >> 6] |= 1ULL << (ac->array[i] & 63);
    } else {
        const run_container_t *rc = c;
        for (int32_t i = 0; i < rc->n_runs; i++)
            words_set_range(w, rc->runs[i].value, (uint32_t)rc->runs[i].value + rc->runs[i].length);
    }
}

/* w &= the container's bits; false when nothing is left. */
static bool words_and(uint64_t *w, const void *c, uint8_t type, uint64_t *tmp)
{
    uint64_t any = 0;
    if (type == RUN_CONTAINER_TYPE_CODE && ((const run_container_t *)c)->n_runs == 1 &&
        ((const run_container_t *)c)->runs[0].value == 0 &&
        ((const run_container_t *)c)->runs[0].length == 0xffff)
        return true; /* the whole chunk (everyone has a value, a half's range) */
    if (type == BITSET_CONTAINER_TYPE_CODE) {
        const uint64_t *a = ((const bitset_container_t *)c)->array;
        for (int i = 0; i < CHUNK_WORDS; i++)
            any |= (w[i] &= a[i]);
        return any != 0;
    }
    memset(tmp, 0, CHUNK_WORDS * sizeof *tmp);
    if (type == ARRAY_CONTAINER_TYPE_CODE) {
        const array_container_t *ac = c;
        for (int32_t i = 0; i < ac->cardinality; i++) {
            uint16_t v = ac->array[i];
            uint64_t bit = w[v >> 6] & (1ULL << (v & 63));
            tmp[v >> 6] |= bit;
            any |= bit;
        }
    } else {
        words_or(tmp, c, type);
        for (int i = 0; i < CHUNK_WORDS; i++)
            any |= (tmp[i] &= w[i]);
    }
    memcpy(w, tmp, CHUNK_WORDS * sizeof *w);
    return any != 0;
}

/* acc &= the term's bits in chunk key; false when nothing is left. */
static bool fused_and_term(fused_term *t, uint16_t key, uint64_t *acc, uint64_t *tmp, uint64_t *un)
{
    uint8_t type;
    if (t->n == 1 && !t->negate) {
        const void *c = fused_chunk(t->b[0], &t->cur[0], key, &type);
        return c && words_and(acc, c, type, tmp);
    }
    /* Up to three bitset containers are read in the loop that ANDs; other
     * containers, or more of them, are ORed into un first. */
    const uint64_t *w[3];
    int nw = 0;
    bool found = false, other = false;
    for (size_t i = 0; i < t->n; i++) {
        const void *c = fused_chunk(t->b[i], &t->cur[i], key, &type);
        if (!c)
            continue;
        if (!found)
            memset(un, 0, CHUNK_WORDS * sizeof *un);
        found = true;
        if (type == BITSET_CONTAINER_TYPE_CODE && nw < 3) {
            w[nw++] = ((const bitset_container_t *)c)->array;
        } else {
            words_or(un, c, type);
            other = true;
        }
    }
    if (!found)
        return t->negate; /* none of them here: all (negate) or nothing is left */
    uint64_t flip = t->negate ? ~0ULL : 0, any = 0;
    if (other)
        for (int j = 0; j < nw; j++)
            for (int i = 0; i < CHUNK_WORDS; i++)
                un[i] |= w[j][i];
    if (other || nw == 0)
        for (int i = 0; i < CHUNK_WORDS; i++)
            any |= (acc[i] &= un[i] ^ flip);
    else if (nw == 1)
        for (int i = 0; i < CHUNK_WORDS; i++)
            any |= (acc[i] &= w[0][i] ^ flip);
    else if (nw == 2)
        for (int i = 0; i < CHUNK_WORDS; i++)
            any |= (acc[i] &= (w[0][i] | w[1][i]) ^ flip);
    else
        for (int i = 0; i < CHUNK_WORDS; i++)
            any |= (acc[i] &= (w[0][i] | w[1][i] | w[2][i]) ^ flip);
    return any != 0;
}

/* Appends chunk key's n ids (ascending; their words too, or NULL) to out,
 * as the container roaring_bitmap_add_many would end with: an array up to
 * 4,096 ids, a bitset above; built whole rather than one id at a time. */
static void fused_append(roaring_bitmap_t *out, uint16_t key, const uint32_t *ids, size_t n,
                         const uint64_t *words)
{
    if (n <= DEFAULT_MAX_SIZE) {
        array_container_t *a = array_container_create_given_capacity((int32_t)n);
        if (!a) {
            roaring_bitmap_add_many(out, n, ids);
            return;
        }
        for (size_t i = 0; i < n; i++)
            a->array[i] = (uint16_t)ids[i];
        a->cardinality = (int32_t)n;
        ra_append(&out->high_low_container, key, a, ARRAY_CONTAINER_TYPE_CODE);
        return;
    }
    bitset_container_t *b = bitset_container_create();
    if (!b) {
        roaring_bitmap_add_many(out, n, ids);
        return;
    }
    if (words)
        memcpy(b->array, words, CHUNK_WORDS * sizeof *words);
    else
        for (size_t i = 0; i < n; i++)
            b->array[(ids[i] & 0xffff) >> 6] |= 1ULL << (ids[i] & 63);
    b->cardinality = (int32_t)n;
    ra_append(&out->high_low_container, key, b, BITSET_CONTAINER_TYPE_CODE);
}

/* Room words_ids may write past the last id. */
#define IDS_SLACK 4

/* The positions of the bits set in a chunk's words, as ids (base | position),
 * ascending; returns how many.  A word's first four positions are written
 * whatever its count (those past it are overwritten by the next word's), so
 * the sparse words a selective AND leaves cost no mispredicted branch: the
 * count comes from popcnt, and bit 63 ORed in keeps ctz defined on an
 * emptied word.  Only words of more than four bits loop.  ids has room for
 * 65,536 + IDS_SLACK. */
SY_POPCNT_CLONES static size_t words_ids(const uint64_t *w, uint32_t base, uint32_t *ids)
{
    const uint64_t top = 1ULL << 63;
    size_t n = 0;
    for (uint32_t i = 0; i < CHUNK_WORDS; i++) {
        uint64_t word = w[i];
        uint32_t at = base | (i << 6);
        size_t cnt = (size_t)__builtin_popcountll(word);
        uint32_t *o = ids + n;
        o[0] = at | (uint32_t)__builtin_ctzll(word | top);
        word &= word - 1;
        o[1] = at | (uint32_t)__builtin_ctzll(word | top);
        word &= word - 1;
        o[2] = at | (uint32_t)__builtin_ctzll(word | top);
        word &= word - 1;
        o[3] = at | (uint32_t)__builtin_ctzll(word | top);
        word &= word - 1;
        if (cnt > 4)
            for (size_t k = 4; word; k++, word &= word - 1)
                o[k] = at | (uint32_t)__builtin_ctzll(word);
        n += cnt;
    }
    return n;
}

static const uint64_t k_zero_words[CHUNK_WORDS];

/* The words of b's chunk key: a bitset container's own, another container's
 * written into scratch, or zeros when b has none there. */
static const uint64_t *chunk_words(const roaring_bitmap_t *b, int32_t *cur, uint16_t key,
                                   uint64_t *scratch)
{
    uint8_t type;
    const void *c = fused_chunk(b, cur, key, &type);
    if (!c)
        return k_zero_words;
    if (type == BITSET_CONTAINER_TYPE_CODE)
        return ((const bitset_container_t *)c)->array;
    memset(scratch, 0, CHUNK_WORDS * sizeof *scratch);
    words_or(scratch, c, type);
    return scratch;
}

/* acc &= the customers of chunk key whose value lies in r's range, by the
 * attribute's range buckets (c): those the buckets place in the range by
 * words, only those between two bounds by their column entries.  sc has room
 * for 6 chunks of words; false when nothing is left. */
static bool cover_chunk(const sy_seg_ctx *cx, const fused_range *r, const sy_range_cover *c,
                        int32_t *cur, uint16_t key, uint64_t *acc, uint64_t *sc, uint32_t *ids)
{
    uint64_t *sure = sc, *maybe = sc + CHUNK_WORDS;
    const uint64_t *in =
        c->in ? chunk_words(c->in, &cur[0], key, sc + 2 * CHUNK_WORDS) : k_zero_words;
    const uint64_t *in_not =
        c->in_not ? chunk_words(c->in_not, &cur[1], key, sc + 3 * CHUNK_WORDS) : k_zero_words;
    const uint64_t *may = chunk_words(c->may, &cur[2], key, sc + 4 * CHUNK_WORDS);
    const uint64_t *may_not =
        c->may_not ? chunk_words(c->may_not, &cur[3], key, sc + 5 * CHUNK_WORDS) : k_zero_words;
    uint64_t any_maybe = 0;
    for (int i = 0; i < CHUNK_WORDS; i++) {
        uint64_t s = acc[i] & in[i] & ~in_not[i];
        uint64_t m = acc[i] & ~s & may[i] & ~may_not[i];
        sure[i] = s;
        maybe[i] = m;
        any_maybe |= m;
    }
    if (any_maybe) {
        size_t n = words_ids(maybe, (uint32_t)key << 16, ids);
        n = sy_index_keep_range(cx->ix, r->attr, ids, n, r->lo, r->hi);
        for (size_t k = 0; k < n; k++)
            sure[(ids[k] & 0xffff) >> 6] |= 1ULL << (ids[k] & 63);
    }
    uint64_t any = 0;
    for (int i = 0; i < CHUNK_WORDS; i++)
        any |= (acc[i] = sure[i]);
    return any != 0;
}

static int fused_term_cmp(const void *x, const void *y)
{
    const fused_term *a = x, *b = y;
    return (a->size > b->size) - (a->size < b->size);
}

/* The customers among cand (NULL: everyone in the terms) in every term and
 * every range.  f has at least one term. */
static roaring_bitmap_t *fused_eval(const sy_seg_ctx *cx, fused *f, const roaring_bitmap_t *cand)
{
    roaring_bitmap_t *out = roaring_bitmap_create();
    for (int i = 0; i < f->nt; i++) {
        if (!f->t[i].sized) {
            f->t[i].size = 0;
            for (size_t j = 0; j < f->t[i].n; j++)
                f->t[i].size += roaring_bitmap_get_cardinality(f->t[i].b[j]);
        }
        if (f->t[i].size == 0)
            return out;
    }
    qsort(f->t, (size_t)f->nt, sizeof f->t[0], fused_term_cmp);
    size_t ncur = 0;
    for (int i = 0; i < f->nt; i++)
        ncur += f->t[i].n;
    int32_t *cur = sy_xcalloc(ncur, sizeof *cur);
    for (int i = 0, o = 0; i < f->nt; o += (int)f->t[i].n, i++)
        f->t[i].cur = cur + o;
    uint64_t *acc = sy_xmalloc(3 * CHUNK_WORDS * sizeof *acc);
    uint64_t *tmp = acc + CHUNK_WORDS, *un = tmp + CHUNK_WORDS;
    uint32_t *ids = sy_xmalloc((65536 + IDS_SLACK) * sizeof *ids);
    /* Ranges the attribute's buckets cover are applied word by word, with
     * the terms; the others at the end, over the ids left. */
    sy_range_cover cover[MAX_FUSED];
    bool covered[MAX_FUSED];
    int32_t cover_cur[MAX_FUSED][4];
    int nplain = 0;
    for (int i = 0; i < f->nr; i++) {
        covered[i] = sy_index_range_cover(cx->ix, f->r[i].attr, f->r[i].lo, f->r[i].hi, &cover[i]);
        nplain += !covered[i];
        memset(cover_cur[i], 0, sizeof cover_cur[i]);
    }
    uint64_t *sc = nplain < f->nr ? sy_xmalloc(6 * CHUNK_WORDS * sizeof *sc) : NULL;
    /* the chunks of the candidates (everyone: the tenant's customers) */
    const roaring_array_t *drive = &(cand ? cand : sy_index_all(cx->ix))->high_low_container;
    for (int32_t ki = 0; ki < drive->size; ki++) {
        uint16_t key = drive->keys[ki];
        const void *c = drive->containers[ki];
        uint8_t type = drive->typecodes[ki];
        if (type == SHARED_CONTAINER_TYPE_CODE) {
            type = ((const shared_container_t *)c)->typecode;
            c = ((const shared_container_t *)c)->container;
        }
        if (type == BITSET_CONTAINER_TYPE_CODE) {
            memcpy(acc, ((const bitset_container_t *)c)->array, CHUNK_WORDS * sizeof *acc);
        } else {
            memset(acc, 0, CHUNK_WORDS * sizeof *acc);
            words_or(acc, c, type);
        }
        bool left = true;
        for (int i = 0; i < f->nt && left; i++)
            left = fused_and_term(&f->t[i], key, acc, tmp, un);
        for (int i = 0; i < f->nr && left; i++)
            if (covered[i])
                left = cover_chunk(cx, &f->r[i], &cover[i], cover_cur[i], key, acc, sc, ids);
        if (!left)
            continue;
        size_t n = words_ids(acc, (uint32_t)key << 16, ids);
        for (int i = 0; i < f->nr && n; i++)
            if (!covered[i])
                n = sy_index_keep_range(cx->ix, f->r[i].attr, ids, n, f->r[i].lo, f->r[i].hi);
        if (n)
            fused_append(out, key, ids, n, nplain ? NULL : acc);
    }
    free(sc);
    free(ids);
    free(acc);
    free(cur);
    return out;
}

static void all_visit(const char *value, const roaring_bitmap_t *b, void *ud)
{
    cat_scan *s = ud;
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 8;
        s->match = sy_xrealloc(s->match, s->cap * sizeof *s->match);
    }
    s->match[s->n++] = b;
}

static fused_term *fused_new_term(fused *f)
{
    fused_term *t = &f->t[f->nt++];
    memset(t, 0, sizeof *t);
    return t;
}

static void fused_free(fused *f)
{
    for (int i = 0; i < f->nt; i++)
        if (f->t[i].own_b)
            free(f->t[i].b);
}

/* Adds node n to f when it is a term the one-pass evaluation takes and
 * checks (its literals fit the schema, its tag exists...); false, with f
 * unchanged, otherwise: then it is evaluated the usual way, which reports
 * its error. */
static bool fused_add(const sy_seg_ctx *cx, fused *f, const sy_seg_node *n)
{
    if (f->nt >= MAX_FUSED || f->nr >= MAX_FUSED)
        return false;
    sy_seg_error e;
    if (n->kind == SY_SEG_TAG || n->kind == SY_SEG_SEGMENT) {
        bool tag = n->kind == SY_SEG_TAG;
        const roaring_bitmap_t *b = NULL;
        if (tag ? cx->tag != NULL : cx->segment != NULL)
            b = (tag ? cx->tag : cx->segment)(cx->ud, n->name);
        if (!b)
            return false;
        fused_term *t = fused_new_term(f);
        t->b = sy_xmalloc(sizeof *t->b);
        t->b[0] = b;
        t->n = 1;
        t->own_b = true;
        return true;
    }
    if (n->kind == SY_SEG_DID) {
        if (n->op != SY_OP_GE || n->count != 1 || n->window_ms % DAY_MS != 0)
            return false;
        int64_t today = sy_index_day(cx->ix, cx->now_ms);
        window_days w = {0};
        sy_index_days(cx->ix, n->name, today - n->window_ms / DAY_MS + 1, today, window_visit, &w);
        free(w.day);
        fused_term *t = fused_new_term(f);
        t->b = w.actors;
        t->n = w.n;
        t->own_b = true;
        return true;
    }
    if (n->kind != SY_SEG_CMP && n->kind != SY_SEG_IN && n->kind != SY_SEG_BETWEEN &&
        n->kind != SY_SEG_IS_NULL && n->kind != SY_SEG_WITHIN)
        return false;
    const sy_attr_def *d = sy_attr_find(cx->schema, n->name);
    if (!d)
        return false;
    bool numeric =
        d->type == SY_ATTR_INTEGER || d->type == SY_ATTR_NUMBER || d->type == SY_ATTR_DATE;
    if (n->kind == SY_SEG_IS_NULL) {
        if (!n->negated)
            return false;
        fused_term *t = fused_new_term(f);
        if (numeric) {
            const roaring_bitmap_t *p = sy_index_present(cx->ix, d->name);
            t->b = sy_xmalloc(sizeof *t->b);
            t->own_b = true;
            t->n = p ? 1 : 0;
            if (p)
                t->b[0] = p;
        } else {
            cat_scan s = {.d = d};
            sy_index_values(cx->ix, d->name, all_visit, &s);
            t->b = s.match;
            t->n = s.n;
            t->own_b = true;
        }
        return true;
    }
    if (numeric) {
        int64_t lo = INT64_MIN, hi = INT64_MAX;
        if (n->kind == SY_SEG_CMP) {
            int64_t v;
            if (n->op == SY_OP_NE || !numeric_literal(d, &n->lits[0], &v, &e))
                return false;
            switch (n->op) {
            case SY_OP_EQ:
                lo = hi = v;
                break;
            case SY_OP_LT:
                if (v == INT64_MIN)
                    lo = 1, hi = 0;
                else
                    hi = v - 1;
                break;
            case SY_OP_LE:
                hi = v;
                break;
            case SY_OP_GT:
                if (v == INT64_MAX)
                    lo = 1, hi = 0;
                else
                    lo = v + 1;
                break;
            case SY_OP_GE:
                lo = v;
                break;
            default:
                return false;
            }
        } else if (n->kind == SY_SEG_BETWEEN) {
            if (!numeric_literal(d, &n->lits[0], &lo, &e) ||
                !numeric_literal(d, &n->lits[1], &hi, &e))
                return false;
        } else if (n->kind == SY_SEG_WITHIN) {
            if (d->type != SY_ATTR_DATE || n->window_ms % DAY_MS != 0)
                return false;
            hi = sy_index_day(cx->ix, cx->now_ms);
            lo = hi - n->window_ms / DAY_MS + 1;
        } else {
            return false;
        }
        const roaring_bitmap_t *p = sy_index_present(cx->ix, d->name);
        fused_term *t = fused_new_term(f);
        t->b = sy_xmalloc(sizeof *t->b);
        t->own_b = true;
        t->n = p && lo <= hi ? 1 : 0; /* an empty range: nobody */
        if (t->n)
            t->b[0] = p;
        f->r[f->nr++] = (fused_range){d->name, lo, hi};
        return true;
    }
    /* categorical: =, !=, <, ... or in (...) */
    if (n->kind == SY_SEG_BETWEEN || n->kind == SY_SEG_WITHIN ||
        (n->kind == SY_SEG_IN && n->negated))
        return false;
    const roaring_bitmap_t **b = NULL;
    size_t nb = 0, cap = 0;
    int nlits = n->kind == SY_SEG_IN ? n->nlits : 1;
    for (int i = 0; i < nlits; i++) {
        const sy_seg_lit *l = &n->lits[i];
        sy_seg_op op = n->kind == SY_SEG_IN ? SY_OP_EQ : n->op;
        if (d->type == SY_ATTR_BOOL) {
            if (l->kind != SY_LIT_BOOL || (op != SY_OP_EQ && op != SY_OP_NE)) {
                free(b);
                return false;
            }
            bool want = (l->i != 0) == (op == SY_OP_EQ);
            const roaring_bitmap_t *v = sy_index_value(cx->ix, d->name, want ? "true" : "false");
            if (v) {
                b = sy_xrealloc(b, (nb + 1) * sizeof *b);
                b[nb++] = v;
            }
            continue;
        }
        if (l->kind != SY_LIT_STRING) {
            free(b);
            return false;
        }
        cat_scan s = {.d = d, .op = op, .lit = l->s};
        if (d->type == SY_ATTR_ENUM && (s.lit_index = sy_attr_enum_index(d, l->s)) < 0) {
            free(b);
            return false;
        }
        sy_index_values(cx->ix, d->name, cat_visit, &s);
        if (nb + s.n > cap) {
            cap = nb + s.n;
            b = sy_xrealloc(b, cap * sizeof *b);
        }
        for (size_t j = 0; j < s.n; j++)
            b[nb++] = s.match[j];
        free(s.match);
    }
    fused_term *t = fused_new_term(f);
    t->b = b;
    t->n = nb;
    t->own_b = true;
    if (d->type != SY_ATTR_BOOL && nb > 1) {
        /* When every customer has a value, fewer values not taken are read
         * instead: risk_level >= R2 is "not R1". */
        cat_scan every = {.d = d};
        sy_index_values(cx->ix, d->name, all_visit, &every);
        uint64_t sum = 0, taken_sum = 0;
        size_t nother = 0;
        for (size_t i = 0; i < every.n; i++) {
            uint64_t card = roaring_bitmap_get_cardinality(every.match[i]);
            sum += card;
            bool taken = false;
            for (size_t j = 0; j < nb && !taken; j++)
                taken = every.match[i] == b[j];
            if (!taken)
                every.match[nother++] = every.match[i];
            else
                taken_sum += card;
        }
        if (nother > 0 && nother < every.n - nother &&
            sum == roaring_bitmap_get_cardinality(sy_index_all(cx->ix))) {
            free(b);
            t->b = every.match;
            t->n = nother;
            t->negate = true;
        } else {
            free(every.match);
        }
        t->size = taken_sum; /* the members either way (values are distinct) */
        t->sized = true;
    }
    return true;
}

/* ---- the tree ---- */

/* How expensive a node is to evaluate, in classes: bitmap lookups first,
 * then unions of several bitmaps, then column scans, then behaviour sums.
 * An and-chain evaluates its cheap terms first and passes what is left as
 * the candidates of the expensive ones. */
static int cost(const sy_seg_ctx *cx, const sy_seg_node *n)
{
    switch (n->kind) {
    case SY_SEG_AND:
    case SY_SEG_OR: {
        int a = cost(cx, n->a), b = cost(cx, n->b);
        return a > b ? a : b;
    }
    case SY_SEG_NOT:
        return cost(cx, n->a);
    case SY_SEG_TAG:
        return 0;
    case SY_SEG_SEGMENT:
        return 1;
    case SY_SEG_DID:
    case SY_SEG_DWELL:
        return n->kind == SY_SEG_DID && n->op == SY_OP_GE && n->count == 1 ? 1 : 3;
    default:
        break;
    }
    const sy_attr_def *d = sy_attr_find(cx->schema, n->name);
    if (!d)
        return 0;
    bool numeric =
        d->type == SY_ATTR_INTEGER || d->type == SY_ATTR_NUMBER || d->type == SY_ATTR_DATE;
    if (n->kind == SY_SEG_IS_NULL)
        return numeric ? 0 : 1;
    if (numeric)
        return 2;
    return n->kind == SY_SEG_CMP && n->op == SY_OP_EQ ? 0 : 1;
}

#define MAX_AND_TERMS 64

typedef struct term {
    const sy_seg_node *n;
    int cost;
    uint64_t size; /* members, when the term is one value bitmap; else max */
    uint64_t rank; /* the order among terms of the same cost (eval_and) */
} term;

/* The size of a term that is one value's bitmap (`city = '上海'`,
 * `payroll = true`): the smallest of those goes first, so every later
 * intersection works on as few candidates as possible. */
static uint64_t single_size(const sy_seg_ctx *cx, const sy_seg_node *n)
{
    if (n->kind != SY_SEG_CMP || n->op != SY_OP_EQ)
        return UINT64_MAX;
    const sy_attr_def *d = sy_attr_find(cx->schema, n->name);
    const sy_seg_lit *l = &n->lits[0];
    const char *value = NULL;
    if (d && d->type == SY_ATTR_BOOL && l->kind == SY_LIT_BOOL)
        value = l->i ? "true" : "false";
    else if (d && (d->type == SY_ATTR_ENUM || d->type == SY_ATTR_STRING) &&
             l->kind == SY_LIT_STRING)
        value = l->s;
    if (!value)
        return UINT64_MAX;
    const roaring_bitmap_t *b = sy_index_value(cx->ix, d->name, value);
    return b ? roaring_bitmap_get_cardinality(b) : 0;
}

/* The size of a comparison that selects several values of an enum or a
 * string (`risk_level >= R3`): the sum of their bitmaps' sizes (a customer
 * has one value), or max when it is not such a term or does not check. */
static uint64_t values_size(const sy_seg_ctx *cx, const sy_seg_node *n)
{
    if (n->kind != SY_SEG_CMP || n->op == SY_OP_EQ || n->lits[0].kind != SY_LIT_STRING)
        return UINT64_MAX;
    const sy_attr_def *d = sy_attr_find(cx->schema, n->name);
    if (!d || (d->type != SY_ATTR_ENUM && d->type != SY_ATTR_STRING))
        return UINT64_MAX;
    cat_scan s = {.d = d, .op = n->op, .lit = n->lits[0].s};
    if (d->type == SY_ATTR_ENUM && (s.lit_index = sy_attr_enum_index(d, s.lit)) < 0)
        return UINT64_MAX;
    sy_index_values(cx->ix, d->name, cat_visit, &s);
    uint64_t size = 0;
    for (size_t i = 0; i < s.n; i++)
        size += roaring_bitmap_get_cardinality(s.match[i]);
    free(s.match);
    return size;
}

static void and_terms(const sy_seg_ctx *cx, const sy_seg_node *n, term *t, int *nt)
{
    if (n->kind == SY_SEG_AND && *nt < MAX_AND_TERMS - 1) {
        and_terms(cx, n->a, t, nt);
        and_terms(cx, n->b, t, nt);
        return;
    }
    t[(*nt)++] = (term){n, 0, UINT64_MAX, 0};
}

/* A term's cost class and size, for the order of evaluation. */
static void term_size(const sy_seg_ctx *cx, term *t)
{
    int c = cost(cx, t->n);
    uint64_t size = c == 0 ? single_size(cx, t->n) : UINT64_MAX;
    if (c == 1 && (size = values_size(cx, t->n)) != UINT64_MAX && size < sy_index_size(cx->ix) / 16)
        size = UINT64_MAX; /* a sparse union: among the others of its class */
    else if (c == 1 && size != UINT64_MAX)
        c = 0; /* a dense union: with the dense bitmaps, before any gets sparse */
    t->cost = c;
    t->size = size;
}

static roaring_bitmap_t *eval(const sy_seg_ctx *cx, const sy_seg_node *n,
                              const roaring_bitmap_t *cand, sy_seg_error *err);

/* An and-chain: its terms cheapest first, each among the customers the
 * previous ones left.  Every term is evaluated, even once nothing is left
 * (cheaply then), so that an error in any of them is reported: the
 * leftmost, as evaluating from left to right would. */
static roaring_bitmap_t *eval_and(const sy_seg_ctx *cx, const sy_seg_node *n,
                                  const roaring_bitmap_t *cand, sy_seg_error *err)
{
    term t[MAX_AND_TERMS];
    int nt = 0;
    and_terms(cx, n, t, &nt);
    uint64_t all = sy_index_size(cx->ix), dense = all / 16;
    roaring_bitmap_t *r = NULL;
    bool failed = false;
    /* The terms one pass takes (fused_add), when they are worth it: a
     * numeric range among bitmaps, or three bitmaps or more, among many
     * candidates.  The others are then evaluated among its answer. */
    bool in_pass[MAX_AND_TERMS] = {false};
    if (sy_seg_fuse && (!cand || roaring_bitmap_get_cardinality(cand) >= all / 64)) {
        fused f;
        f.nt = f.nr = 0;
        for (int i = 0; i < nt; i++)
            in_pass[i] = fused_add(cx, &f, t[i].n);
        if ((f.nr >= 1 && f.nt >= 1) || f.nt >= 3)
            r = fused_eval(cx, &f, cand);
        else
            memset(in_pass, 0, sizeof in_pass);
        fused_free(&f);
    }
    for (int i = 0; i < nt; i++)
        if (!in_pass[i])
            term_size(cx, &t[i]);
    /* Single value bitmaps: the dense ones (a sixteenth of the tenant or
     * more, whose containers are mostly bitsets) first, largest first, so
     * their intersections stay word-by-word ANDs of bitsets until the last
     * of them; then the sparse ones, smallest first, so every later step
     * works on as few candidates as possible.  The result is the same in
     * any order; only its cost differs. */
    for (int i = 0; i < nt; i++)
        if (t[i].size == UINT64_MAX)
            t[i].rank = UINT64_MAX;
        else if (t[i].size >= dense && t[i].size <= all)
            t[i].rank = all - t[i].size; /* dense: 0 .. all, largest first */
        else
            t[i].rank = all + 1 + t[i].size; /* sparse: after, smallest first */
    for (int i = 1; i < nt; i++)             /* stable insertion sort by cost, then rank */
        for (int j = i; j > 0 && (t[j - 1].cost > t[j].cost ||
                                  (t[j - 1].cost == t[j].cost && t[j - 1].rank > t[j].rank));
             j--) {
            term x = t[j];
            t[j] = t[j - 1];
            t[j - 1] = x;
            bool p = in_pass[j];
            in_pass[j] = in_pass[j - 1];
            in_pass[j - 1] = p;
        }
    for (int i = 0; i < nt; i++) {
        if (in_pass[i])
            continue;
        sy_seg_error e;
        roaring_bitmap_t *b = eval(cx, t[i].n, r ? r : cand, &e);
        if (!b) {
            if (!failed || e.pos < err->pos)
                *err = e;
            failed = true;
            continue;
        }
        if (r)
            roaring_bitmap_free(r);
        r = b;
    }
    if (failed) {
        if (r)
            roaring_bitmap_free(r);
        return NULL;
    }
    return r;
}

static roaring_bitmap_t *eval(const sy_seg_ctx *cx, const sy_seg_node *n,
                              const roaring_bitmap_t *cand, sy_seg_error *err)
{
    switch (n->kind) {
    case SY_SEG_AND:
        return eval_and(cx, n, cand, err);
    case SY_SEG_OR: {
        roaring_bitmap_t *a = eval(cx, n->a, cand, err);
        if (!a)
            return NULL;
        roaring_bitmap_t *b = eval(cx, n->b, cand, err);
        if (!b) {
            roaring_bitmap_free(a);
            return NULL;
        }
        roaring_bitmap_or_inplace(a, b);
        roaring_bitmap_free(b);
        return a;
    }
    case SY_SEG_NOT: {
        roaring_bitmap_t *a = eval(cx, n->a, cand, err);
        if (!a)
            return NULL;
        roaring_bitmap_t *out = roaring_bitmap_copy(cand ? cand : sy_index_all(cx->ix));
        roaring_bitmap_andnot_inplace(out, a);
        roaring_bitmap_free(a);
        return out;
    }
    case SY_SEG_TAG:
    case SY_SEG_SEGMENT: {
        bool tag = n->kind == SY_SEG_TAG;
        const roaring_bitmap_t *b = NULL;
        if (tag ? cx->tag != NULL : cx->segment != NULL)
            b = (tag ? cx->tag : cx->segment)(cx->ud, n->name);
        if (!b)
            return fail(err, n->pos, "no %s named '%s'", tag ? "tag" : "segment", n->name);
        return roaring_bitmap_and(b, cand ? cand : sy_index_all(cx->ix));
    }
    case SY_SEG_DID:
    case SY_SEG_DWELL:
        return behaviour(cx, n, cand, err);
    default:
        break;
    }
    /* attribute predicates */
    const sy_attr_def *d = sy_attr_find(cx->schema, n->name);
    if (!d)
        return fail(err, n->pos, "no attribute named '%s' (see GET /v1/attributes)", n->name);
    switch (n->kind) {
    case SY_SEG_CMP:
        return compare(cx, d, cand, n->op, &n->lits[0], err);
    case SY_SEG_IN: {
        roaring_bitmap_t *u = roaring_bitmap_create();
        for (int i = 0; i < n->nlits; i++) {
            roaring_bitmap_t *b = compare(cx, d, cand, SY_OP_EQ, &n->lits[i], err);
            if (!b) {
                roaring_bitmap_free(u);
                return NULL;
            }
            roaring_bitmap_or_inplace(u, b);
            roaring_bitmap_free(b);
        }
        if (!n->negated)
            return u;
        roaring_bitmap_t *p = narrow(present_of(cx, d), cand);
        roaring_bitmap_andnot_inplace(p, u);
        roaring_bitmap_free(u);
        return p;
    }
    case SY_SEG_BETWEEN: {
        if (d->type == SY_ATTR_INTEGER || d->type == SY_ATTR_NUMBER || d->type == SY_ATTR_DATE) {
            int64_t a, b;
            if (!numeric_literal(d, &n->lits[0], &a, err) ||
                !numeric_literal(d, &n->lits[1], &b, err))
                return NULL;
            return numeric_range(cx, d, cand, a, b);
        }
        roaring_bitmap_t *lo = compare(cx, d, cand, SY_OP_GE, &n->lits[0], err);
        if (!lo)
            return NULL;
        roaring_bitmap_t *hi = compare(cx, d, cand, SY_OP_LE, &n->lits[1], err);
        if (!hi) {
            roaring_bitmap_free(lo);
            return NULL;
        }
        roaring_bitmap_and_inplace(lo, hi);
        roaring_bitmap_free(hi);
        return lo;
    }
    case SY_SEG_IS_NULL: {
        roaring_bitmap_t *p = narrow(present_of(cx, d), cand);
        if (n->negated)
            return p;
        roaring_bitmap_t *out = roaring_bitmap_copy(cand ? cand : sy_index_all(cx->ix));
        roaring_bitmap_andnot_inplace(out, p);
        roaring_bitmap_free(p);
        return out;
    }
    case SY_SEG_WITHIN: {
        if (d->type != SY_ATTR_DATE)
            return fail(err, n->pos, "'within' needs a date attribute; '%s' is %s", d->name,
                        sy_attr_type_name(d->type));
        if (!whole_days(n->window_ms, n->pos, "'within' on a date", err))
            return NULL;
        int64_t today = sy_index_day(cx->ix, cx->now_ms);
        return numeric_range(cx, d, cand, today - n->window_ms / DAY_MS + 1, today);
    }
    default:
        return fail(err, n->pos, "unsupported expression");
    }
}

roaring_bitmap_t *sy_seg_eval(const sy_seg_ctx *cx, const sy_seg_node *n, sy_seg_error *err)
{
    return eval(cx, n, NULL, err);
}

/* ---- references to tags and saved segments ---- */

#define MAX_REF_DEPTH 16

typedef struct memo {
    char kind;
    const char *name;
    roaring_bitmap_t *b;
} memo;

typedef struct resolver {
    const sy_index *ix;
    const sy_attr_set *schema;
    int64_t now_ms;
    const roaring_bitmap_t *among; /* NULL: everyone; references are evaluated among these */
    memo *memo;
    size_t nmemo;
    char stack_kind[MAX_REF_DEPTH];
    const char *stack[MAX_REF_DEPTH];
    int depth;
    bool failed;
    sy_seg_error fail_err;
} resolver;

static const roaring_bitmap_t *resolve_ref(resolver *rs, char kind, const char *name);

static const roaring_bitmap_t *resolve_tag(void *ud, const char *name)
{
    return resolve_ref(ud, 't', name);
}

static const roaring_bitmap_t *resolve_segment(void *ud, const char *name)
{
    return resolve_ref(ud, 's', name);
}

static const roaring_bitmap_t *resolve_ref(resolver *rs, char kind, const char *name)
{
    for (size_t i = 0; i < rs->nmemo; i++)
        if (rs->memo[i].kind == kind && !strcmp(rs->memo[i].name, name))
            return rs->memo[i].b;
    const sy_seg_node *ast = NULL;
    if (kind == 't') {
        sy_index_tag t;
        if (!sy_index_tag_get(rs->ix, name, &t))
            return NULL;
        if (!t.rule)
            return t.members;
        ast = t.ast;
    } else {
        ast = sy_index_segment(rs->ix, name);
    }
    if (!ast)
        return NULL;
    bool cycle = rs->depth >= MAX_REF_DEPTH;
    for (int i = 0; i < rs->depth && !cycle; i++)
        cycle = rs->stack_kind[i] == kind && !strcmp(rs->stack[i], name);
    if (cycle || rs->failed) {
        if (!rs->failed) {
            rs->failed = true;
            fail(&rs->fail_err, 0, "the references of %s '%s' form a cycle",
                 kind == 't' ? "tag" : "segment", name);
        }
        /* Evaluation is abandoned; an empty set, freed with the memo, lets it
         * unwind. */
        roaring_bitmap_t *empty = roaring_bitmap_create();
        rs->memo = sy_xrealloc(rs->memo, (rs->nmemo + 1) * sizeof *rs->memo);
        rs->memo[rs->nmemo++] = (memo){kind, name, empty};
        return empty;
    }
    rs->stack_kind[rs->depth] = kind;
    rs->stack[rs->depth++] = name;
    sy_seg_ctx cx = {.ix = rs->ix,
                     .schema = rs->schema,
                     .now_ms = rs->now_ms,
                     .tag = resolve_tag,
                     .segment = resolve_segment,
                     .ud = rs};
    sy_seg_error e;
    roaring_bitmap_t *b = eval(&cx, ast, rs->among, &e);
    rs->depth--;
    if (!b) {
        if (!rs->failed) {
            rs->failed = true;
            fail(&rs->fail_err, 0, "in %s '%s': %s", kind == 't' ? "tag" : "segment", name, e.msg);
        }
        b = roaring_bitmap_create();
    }
    rs->memo = sy_xrealloc(rs->memo, (rs->nmemo + 1) * sizeof *rs->memo);
    rs->memo[rs->nmemo++] = (memo){kind, name, b};
    return b;
}

/* One evaluation among `among` (NULL: everyone), references included. */
static roaring_bitmap_t *eval_among(const sy_index *ix, const sy_attr_set *schema, int64_t now_ms,
                                    const sy_seg_node *n, const roaring_bitmap_t *among,
                                    sy_seg_error *err)
{
    /* the candidates are customers: dense ids of nobody never answer */
    roaring_bitmap_t *root = among ? roaring_bitmap_and(among, sy_index_all(ix)) : NULL;
    resolver rs = {.ix = ix, .schema = schema, .now_ms = now_ms, .among = root};
    sy_seg_ctx cx = {.ix = ix,
                     .schema = schema,
                     .now_ms = now_ms,
                     .tag = resolve_tag,
                     .segment = resolve_segment,
                     .ud = &rs};
    roaring_bitmap_t *out = eval(&cx, n, root, err);
    if (out && rs.failed) {
        roaring_bitmap_free(out);
        out = NULL;
        *err = rs.fail_err;
        err->pos = n->pos;
    }
    if (out && root)
        roaring_bitmap_and_inplace(out, root);
    for (size_t i = 0; i < rs.nmemo; i++)
        roaring_bitmap_free(rs.memo[i].b);
    free(rs.memo);
    if (root)
        roaring_bitmap_free(root);
    return out;
}

roaring_bitmap_t *sy_seg_eval_index_among(const sy_index *ix, const sy_attr_set *schema,
                                          int64_t now_ms, const sy_seg_node *n,
                                          const roaring_bitmap_t *among, sy_seg_error *err)
{
    return eval_among(ix, schema, now_ms, n, among, err);
}

uint32_t sy_seg_parallel_min = 1u << 21;

/* An evaluation among some customers; ud is shared by both halves. */
typedef roaring_bitmap_t *(*among_fn)(const void *ud, const roaring_bitmap_t *among,
                                      sy_seg_error *err);

typedef struct half {
    among_fn fn;
    const void *ud;
    roaring_bitmap_t *among, *out;
    sy_seg_error err;
    atomic_bool taken; /* by the thread that evaluates it */
} half;

/* The upper half, shared with the evaluation thread.  When that thread
 * comes to it after the calling thread has taken the half, it finds the
 * half taken and only drops its reference, so the calling thread never waits
 * for a thread that has not run yet. */
typedef struct upper {
    half h;
    atomic_int refs;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done; /* under mu: the other thread has evaluated h */
} upper;

static bool take_half(half *h)
{
    if (atomic_exchange(&h->taken, true))
        return false;
    h->out = h->fn(h->ud, h->among, &h->err);
    return true;
}

static void upper_release(upper *u)
{
    if (atomic_fetch_sub(&u->refs, 1) != 1)
        return;
    pthread_mutex_destroy(&u->mu);
    pthread_cond_destroy(&u->cv);
    free(u);
}

static void eval_upper(upper *u)
{
    if (take_half(&u->h)) {
        pthread_mutex_lock(&u->mu);
        u->done = true;
        pthread_cond_signal(&u->cv);
        pthread_mutex_unlock(&u->mu);
    }
    upper_release(u);
}

/* The evaluation thread: one for the process, started on first use, asleep
 * until an upper half is handed to it.  A thread kept waiting is woken on a
 * free core in tens of microseconds; one started per query was often placed
 * on the caller's busy core, which then evaluated both halves. */
#define HALVES_QUEUED 8

static struct {
    pthread_once_t once;
    bool running;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    upper *q[HALVES_QUEUED];
    int n;
} g_halves = {
    .once = PTHREAD_ONCE_INIT, .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void *halves_main(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "siyu-eval");
    pthread_mutex_lock(&g_halves.mu);
    for (;;) {
        while (!g_halves.n)
            pthread_cond_wait(&g_halves.cv, &g_halves.mu);
        upper *u = g_halves.q[0];
        memmove(g_halves.q, g_halves.q + 1, (size_t)--g_halves.n * sizeof g_halves.q[0]);
        pthread_mutex_unlock(&g_halves.mu);
        eval_upper(u);
        pthread_mutex_lock(&g_halves.mu);
    }
    return NULL;
}

static void halves_start(void)
{
    pthread_t th;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    g_halves.running = pthread_create(&th, &attr, halves_main, NULL) == 0;
    pthread_attr_destroy(&attr);
}

/* Hands u to the evaluation thread; false when it cannot take it (not
 * running, or its queue is full): then the caller evaluates u itself. */
static bool halves_hand(upper *u)
{
    pthread_once(&g_halves.once, halves_start);
    if (!g_halves.running)
        return false;
    pthread_mutex_lock(&g_halves.mu);
    bool queued = g_halves.n < HALVES_QUEUED;
    if (queued) {
        g_halves.q[g_halves.n++] = u;
        pthread_cond_signal(&g_halves.cv);
    }
    pthread_mutex_unlock(&g_halves.mu);
    return queued;
}

/* A large tenant: the lower and the upper half of the dense ids are
 * evaluated at once, on this thread and the evaluation thread, and the two
 * answers put side by side.  Every operation works on one half's
 * containers, so each half costs about half.  The halves meet at a
 * container boundary (a multiple of 65,536) when the tenant is big enough.
 * The upper half goes to whichever thread takes it first: when the machine
 * is busy and the evaluation thread has not come to it by the time the
 * lower half is done, this thread evaluates it too rather than wait for a
 * core. */
static roaring_bitmap_t *in_halves(uint32_t size, among_fn fn, const void *ud, sy_seg_error *err)
{
    if (size < 2 || size < sy_seg_parallel_min)
        return fn(ud, NULL, err);
    uint32_t mid = size / 2;
    if (size >= (1u << 20))
        mid = (mid + 0xffffu) & ~0xffffu;
    half lower = {.fn = fn, .ud = ud};
    atomic_init(&lower.taken, false);
    lower.among = roaring_bitmap_from_range(0, mid, 1);
    roaring_bitmap_run_optimize(lower.among);
    upper *u = sy_xcalloc(1, sizeof *u);
    u->h.fn = fn;
    u->h.ud = ud;
    atomic_init(&u->h.taken, false);
    u->h.among = roaring_bitmap_from_range(mid, size, 1);
    roaring_bitmap_run_optimize(u->h.among);
    pthread_mutex_init(&u->mu, NULL);
    pthread_cond_init(&u->cv, NULL);
    atomic_init(&u->refs, 2);
    if (!halves_hand(u))
        atomic_store(&u->refs, 1); /* no other thread: this one does both */
    take_half(&lower);
    if (!take_half(&u->h)) { /* the other thread has it: wait for its answer */
        pthread_mutex_lock(&u->mu);
        while (!u->done)
            pthread_cond_wait(&u->cv, &u->mu);
        pthread_mutex_unlock(&u->mu);
    }
    roaring_bitmap_t *out = lower.out, *up = u->h.out;
    if (!lower.out || !up) {
        *err = lower.out ? u->h.err : lower.err; /* an error is the same in both */
        if (out)
            roaring_bitmap_free(out);
        out = NULL;
    } else {
        roaring_bitmap_or_inplace(out, up);
    }
    if (up)
        roaring_bitmap_free(up);
    roaring_bitmap_free(lower.among);
    roaring_bitmap_free(u->h.among);
    upper_release(u);
    return out;
}

roaring_bitmap_t *sy_seg_eval_among(const sy_seg_ctx *cx, const sy_seg_node *n,
                                    const roaring_bitmap_t *among, sy_seg_error *err)
{
    roaring_bitmap_t *root = among ? roaring_bitmap_and(among, sy_index_all(cx->ix)) : NULL;
    roaring_bitmap_t *out = eval(cx, n, root, err);
    if (out && root)
        roaring_bitmap_and_inplace(out, root);
    if (root)
        roaring_bitmap_free(root);
    return out;
}

typedef struct ctx_eval {
    const sy_seg_ctx *cx;
    const sy_seg_node *n;
} ctx_eval;

static roaring_bitmap_t *ctx_among(const void *ud, const roaring_bitmap_t *among, sy_seg_error *err)
{
    const ctx_eval *e = ud;
    return sy_seg_eval_among(e->cx, e->n, among, err);
}

roaring_bitmap_t *sy_seg_eval_parallel(const sy_seg_ctx *cx, const sy_seg_node *n,
                                       sy_seg_error *err)
{
    ctx_eval e = {cx, n};
    return in_halves(sy_index_size(cx->ix), ctx_among, &e, err);
}

typedef struct index_eval {
    const sy_index *ix;
    const sy_attr_set *schema;
    int64_t now_ms;
    const sy_seg_node *n;
} index_eval;

static roaring_bitmap_t *index_among(const void *ud, const roaring_bitmap_t *among,
                                     sy_seg_error *err)
{
    const index_eval *e = ud;
    return eval_among(e->ix, e->schema, e->now_ms, e->n, among, err);
}

roaring_bitmap_t *sy_seg_eval_index(const sy_index *ix, const sy_attr_set *schema, int64_t now_ms,
                                    const sy_seg_node *n, sy_seg_error *err)
{
    index_eval e = {ix, schema, now_ms, n};
    return in_halves(sy_index_size(ix), index_among, &e, err);
}

typedef struct cycle_walk {
    const sy_index *ix;
    char kind;
    const char *name;
    int depth;
    bool found;
    const char *via; /* the expression's own reference that leads back */
} cycle_walk;

static void cycle_visit(const sy_seg_node *n, void *ud)
{
    cycle_walk *w = ud;
    if (w->found || (n->kind != SY_SEG_TAG && n->kind != SY_SEG_SEGMENT))
        return;
    char k = n->kind == SY_SEG_TAG ? 't' : 's';
    if (w->depth == 0)
        w->via = n->name;
    if (k == w->kind && !strcmp(n->name, w->name)) {
        w->found = true;
        return;
    }
    if (w->depth >= 64)
        return;
    const sy_seg_node *next = NULL;
    if (k == 't') {
        sy_index_tag t;
        if (sy_index_tag_get(w->ix, n->name, &t) && t.rule)
            next = t.ast;
    } else {
        next = sy_index_segment(w->ix, n->name);
    }
    if (next) {
        w->depth++;
        const char *top = w->via;
        sy_seg_walk(next, cycle_visit, w);
        w->depth--;
        w->via = top;
    }
}

bool sy_seg_would_cycle(const sy_index *ix, char kind, const char *name, const sy_seg_node *ast,
                        const char **via)
{
    cycle_walk w = {.ix = ix, .kind = kind, .name = name};
    sy_seg_walk(ast, cycle_visit, &w);
    if (via)
        *via = w.found ? w.via : NULL;
    return w.found;
}

/* index.c — the per-tenant in-memory indexes (see index.h). */
#include "index.h"
#include "util.h"

#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* ---- a string -> uint32 open-addressing map ---- */

typedef struct strmap {
    char **keys;
    uint32_t *vals;
    size_t cap, n;
} strmap;

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static bool strmap_get(const strmap *m, const char *k, uint32_t *v)
{
    if (!m->cap)
        return false;
    for (size_t i = hash_str(k) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (!m->keys[i])
            return false;
        if (!strcmp(m->keys[i], k)) {
            *v = m->vals[i];
            return true;
        }
    }
}

static void strmap_put(strmap *m, const char *k, uint32_t v)
{
    if ((m->n + 1) * 4 > m->cap * 3) {
        strmap old = *m;
        m->cap = old.cap ? old.cap * 2 : 64;
        m->keys = sy_xcalloc(m->cap, sizeof *m->keys);
        m->vals = sy_xcalloc(m->cap, sizeof *m->vals);
        m->n = 0;
        for (size_t i = 0; i < old.cap; i++)
            if (old.keys[i]) {
                size_t j = hash_str(old.keys[i]) & (m->cap - 1);
                while (m->keys[j])
                    j = (j + 1) & (m->cap - 1);
                m->keys[j] = old.keys[i];
                m->vals[j] = old.vals[i];
                m->n++;
            }
        free(old.keys);
        free(old.vals);
    }
    size_t i = hash_str(k) & (m->cap - 1);
    for (; m->keys[i]; i = (i + 1) & (m->cap - 1))
        if (!strcmp(m->keys[i], k)) {
            m->vals[i] = v;
            return;
        }
    m->keys[i] = sy_xstrdup(k);
    m->vals[i] = v;
    m->n++;
}

static void strmap_free(strmap *m)
{
    for (size_t i = 0; i < m->cap; i++)
        free(m->keys[i]);
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

/* ---- customer numbers <-> dense ids ----
 *
 * Every customer number is kept once, in one arena; off[dense] is its
 * offset plus one (0: the dense id is unused), and the hash table holds
 * dense ids only (dense + 1; 0 = empty slot), comparing keys through the
 * arena.  About 25 bytes a customer, where a table of separately allocated
 * keys plus a second copy for the reverse direction took some 100. */

typedef struct custdict {
    char *arena;
    size_t len, cap;
    uint32_t *off; /* by dense id: offset + 1 into arena, 0 = none */
    uint32_t capoff;
    uint32_t *slots; /* dense + 1, 0 = empty */
    size_t nslots, n;
} custdict;

static const char *dict_no(const custdict *m, uint32_t dense)
{
    return dense < m->capoff && m->off[dense] ? m->arena + m->off[dense] - 1 : NULL;
}

static bool dict_get(const custdict *m, const char *k, uint32_t *dense)
{
    if (!m->nslots)
        return false;
    for (size_t i = hash_str(k) & (m->nslots - 1);; i = (i + 1) & (m->nslots - 1)) {
        uint32_t s = m->slots[i];
        if (!s)
            return false;
        if (!strcmp(m->arena + m->off[s - 1] - 1, k)) {
            *dense = s - 1;
            return true;
        }
    }
}

static void dict_slot_insert(custdict *m, uint32_t dense)
{
    size_t i = hash_str(m->arena + m->off[dense] - 1) & (m->nslots - 1);
    while (m->slots[i])
        i = (i + 1) & (m->nslots - 1);
    m->slots[i] = dense + 1;
}

/* Registers no as dense (a customer number keeps its dense id for good). */
static void dict_put(custdict *m, const char *no, uint32_t dense)
{
    uint32_t have;
    if (dict_get(m, no, &have) || dict_no(m, dense))
        return;
    size_t len = strlen(no) + 1;
    if (m->len + len > UINT32_MAX - 1) {
        sy_error("index: customer numbers exceed 4 GiB");
        abort();
    }
    if (m->len + len > m->cap) {
        m->cap = m->cap ? m->cap * 2 : 65536;
        while (m->cap < m->len + len)
            m->cap *= 2;
        m->arena = sy_xrealloc(m->arena, m->cap);
    }
    memcpy(m->arena + m->len, no, len);
    if (dense >= m->capoff) {
        uint32_t cap = m->capoff ? m->capoff : 1024;
        while (cap <= dense)
            cap *= 2;
        m->off = sy_xrealloc(m->off, (size_t)cap * sizeof *m->off);
        memset(m->off + m->capoff, 0, (size_t)(cap - m->capoff) * sizeof *m->off);
        m->capoff = cap;
    }
    m->off[dense] = (uint32_t)m->len + 1;
    m->len += len;
    if ((m->n + 1) * 4 > m->nslots * 3) {
        free(m->slots);
        m->nslots = m->nslots ? m->nslots * 2 : 1024;
        m->slots = sy_xcalloc(m->nslots, sizeof *m->slots);
        for (uint32_t d = 0; d < m->capoff; d++)
            if (m->off[d] && d != dense)
                dict_slot_insert(m, d);
    }
    dict_slot_insert(m, dense);
    m->n++;
}

static void dict_free(custdict *m)
{
    free(m->arena);
    free(m->off);
    free(m->slots);
    memset(m, 0, sizeof *m);
}

static size_t dict_memory(const custdict *m)
{
    return m->len + (size_t)m->capoff * sizeof *m->off + m->nslots * sizeof *m->slots;
}

/* ---- numeric columns ----
 *
 * By dense id: zigzag(value - anchor) in 1, 2 or 4 bytes, or the value
 * itself in 8, the anchor being the first value stored.  A value that does
 * not fit widens the column (at most three rewrites in its life), so birth
 * years take a byte a customer, dates two, and money in fen usually eight.
 * Entries of customers without a value are never read (see present). */

typedef struct column {
    uint8_t *data;
    size_t cap;  /* entries allocated */
    size_t used; /* entries 0 .. used-1 may have been written */
    int width;   /* 0 until the first value */
    int64_t anchor;
} column;

static uint64_t zigzag(int64_t x)
{
    return ((uint64_t)x << 1) ^ (uint64_t)(x >> 63);
}

static int64_t unzigzag(uint64_t u)
{
    return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}

/* 5-byte entries: money in fen up to 5.5 * 10^11 yuan from the anchor.
 * Reads take 8 bytes, so a 5-byte column has COL_PAD bytes after its last
 * entry. */
#define COL_PAD 8

static uint64_t load40(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v & 0xffffffffffULL;
}

static int64_t col_get(const column *c, size_t i)
{
    switch (c->width) {
    case 1:
        return c->anchor + unzigzag(c->data[i]);
    case 2:
        return c->anchor + unzigzag(((const uint16_t *)(const void *)c->data)[i]);
    case 4:
        return c->anchor + unzigzag(((const uint32_t *)(const void *)c->data)[i]);
    case 5:
        return c->anchor + unzigzag(load40(c->data + i * 5));
    default:
        return ((const int64_t *)(const void *)c->data)[i];
    }
}

static void col_put(uint8_t *data, int width, int64_t anchor, size_t i, int64_t v)
{
    switch (width) {
    case 1:
        data[i] = (uint8_t)zigzag(v - anchor);
        break;
    case 2:
        ((uint16_t *)(void *)data)[i] = (uint16_t)zigzag(v - anchor);
        break;
    case 4:
        ((uint32_t *)(void *)data)[i] = (uint32_t)zigzag(v - anchor);
        break;
    case 5: {
        uint64_t u = zigzag(v - anchor);
        memcpy(data + i * 5, &u, 5); /* little-endian: the low five bytes */
        break;
    }
    default:
        ((int64_t *)(void *)data)[i] = v;
    }
}

static int col_width_for(const column *c, int64_t v)
{
    int64_t diff;
    if (__builtin_sub_overflow(v, c->anchor, &diff))
        return 8;
    uint64_t u = zigzag(diff);
    return u <= UINT8_MAX     ? 1
           : u <= UINT16_MAX  ? 2
           : u <= UINT32_MAX  ? 4
           : u < (1ULL << 40) ? 5
                              : 8;
}

/* Column buffers of COL_MAP_MIN bytes and more are mapped on their own and
 * asked to live on transparent huge pages: a range scan reads a few entries
 * in each of many pages, and with 4 KiB pages at ten million customers
 * every read is a TLB miss as well as a cache miss.  Zeroed either way, and
 * pages never written stay unallocated. */
#define COL_MAP_MIN (4u << 20)

static size_t col_bytes(size_t cap, int width)
{
    return cap * (size_t)width + COL_PAD;
}

static uint8_t *col_alloc(size_t bytes)
{
    if (bytes >= COL_MAP_MIN) {
        void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p != MAP_FAILED) {
            madvise(p, bytes, MADV_HUGEPAGE); /* a hint: fine if refused */
            return p;
        }
    }
    return sy_xcalloc(1, bytes);
}

static void col_free(uint8_t *data, size_t bytes)
{
    if (!data)
        return;
    if (bytes >= COL_MAP_MIN)
        munmap(data, bytes);
    else
        free(data);
}

/* A new buffer of cap entries of width w holding the first `used` values. */
static void col_realloc(column *c, size_t cap, int width)
{
    size_t bytes = col_bytes(cap, width);
    uint8_t *data = col_alloc(bytes);
    if (width == c->width && c->used)
        memcpy(data, c->data, c->used * (size_t)width);
    else
        for (size_t i = 0; i < c->used; i++)
            col_put(data, width, c->anchor, i, col_get(c, i));
    col_free(c->data, c->width ? col_bytes(c->cap, c->width) : 0);
    c->data = data;
    c->cap = cap;
    c->width = width;
}

static void col_set(column *c, uint32_t i, int64_t v)
{
    if (!c->width) {
        c->anchor = v;
        c->width = 1;
    }
    int w = col_width_for(c, v);
    if (w < c->width)
        w = c->width;
    if (i >= c->cap || w != c->width) {
        size_t cap = c->cap ? c->cap : 1024;
        while (cap <= i)
            cap *= 2;
        col_realloc(c, cap, w);
    }
    col_put(c->data, c->width, c->anchor, i, v);
    if (i >= c->used)
        c->used = (size_t)i + 1;
}

/* ---- per (event, day): actors with counts and dwell sums ----
 *
 * A day keeps its entries in two parts.  The sealed part is compact:
 * count[i] and dwell[i] belong to the i-th smallest id of `sealed` (NULL:
 * the same set as actors), 4 bytes an entry, 12 with dwell times.  Newer
 * actors go to a small open-addressing table (the delta); an entry in the
 * sealed part is updated in place.  When the delta grows past half the
 * sealed part, both are merged into a new sealed part, so each entry is
 * copied a bounded number of times while a day fills, and a day that is no
 * longer written costs its arrays and its actors bitmap only. */

typedef struct stat_slot {
    uint32_t dense_plus1; /* 0 = empty */
    uint32_t count;
    uint64_t dwell_ms;
} stat_slot;

#define LOAD_THREADS 2 /* threads reading events during a rebuild */

/* ---- per (event, day) of a timed event: each event's time and dwell ----
 *
 * For the event names the tenant times, a day also
 * keeps each event's time (ms since the business day's start) and dwell
 * time (SY_NO_DWELL: none; that array is allocated at the first dwell
 * time), what funnels and dwell percentiles are computed from.  Like the
 * counts, in two parts: the sealed part is aligned with the day's sealed
 * entries — the times of the i-th sealed customer are ms[off[i] ..
 * off[i + 1]), ascending — 4 bytes an event (8 with dwell) and 4 an entry;
 * newer events go to the tail, unordered records of (customer, time,
 * dwell).  Both are merged into a new sealed part when the counts' are,
 * and when the tail grows past half the sealed part. */
typedef struct timed_log {
    uint32_t *dense, *ms, *dwell;
    size_t n, cap;
} timed_log;

static void tlog_push(timed_log *t, uint32_t dense, uint32_t ms, uint32_t dwell)
{
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 64;
        t->dense = sy_xrealloc(t->dense, t->cap * sizeof *t->dense);
        t->ms = sy_xrealloc(t->ms, t->cap * sizeof *t->ms);
        if (t->dwell)
            t->dwell = sy_xrealloc(t->dwell, t->cap * sizeof *t->dwell);
    }
    if (dwell != SY_NO_DWELL && !t->dwell) {
        t->dwell = sy_xmalloc(t->cap * sizeof *t->dwell);
        for (size_t i = 0; i < t->n; i++)
            t->dwell[i] = SY_NO_DWELL;
    }
    t->dense[t->n] = dense;
    t->ms[t->n] = ms;
    if (t->dwell)
        t->dwell[t->n] = dwell;
    t->n++;
}

/* Appends b's records to a and empties b. */
static void tlog_append(timed_log *a, timed_log *b)
{
    if (!a->cap) {
        *a = *b;
        memset(b, 0, sizeof *b);
        return;
    }
    for (size_t i = 0; i < b->n; i++)
        tlog_push(a, b->dense[i], b->ms[i], b->dwell ? b->dwell[i] : SY_NO_DWELL);
    free(b->dense);
    free(b->ms);
    free(b->dwell);
    memset(b, 0, sizeof *b);
}

/* Gives back the growth slack. */
static void tlog_shrink(timed_log *t)
{
    if (t->n == t->cap || !t->n)
        return;
    t->cap = t->n;
    t->dense = sy_xrealloc(t->dense, t->cap * sizeof *t->dense);
    t->ms = sy_xrealloc(t->ms, t->cap * sizeof *t->ms);
    if (t->dwell)
        t->dwell = sy_xrealloc(t->dwell, t->cap * sizeof *t->dwell);
}

static void tlog_clear(timed_log *t)
{
    free(t->dense);
    free(t->ms);
    free(t->dwell);
    memset(t, 0, sizeof *t);
}

typedef struct day_times {
    uint32_t *off;        /* nsealed + 1; NULL: nothing sealed */
    uint32_t *ms, *dwell; /* the sealed records; dwell NULL: none has one */
    size_t nsealed, nms;  /* entries that off covers; records */
    timed_log tail;
} day_times;

static void times_free(day_times *t)
{
    if (!t)
        return;
    free(t->off);
    free(t->ms);
    free(t->dwell);
    tlog_clear(&t->tail);
    free(t);
}

static size_t times_memory(const day_times *t)
{
    if (!t)
        return 0;
    return sizeof *t + (t->off ? (t->nsealed + 1) * sizeof *t->off : 0) +
           t->nms * (t->dwell ? 2 : 1) * sizeof(uint32_t) +
           t->tail.cap * (2 + (t->tail.dwell ? 1 : 0)) * sizeof(uint32_t);
}

struct sy_day_events {
    int64_t day;
    roaring_bitmap_t *actors; /* everyone with a count (merged customers leave) */
    roaring_bitmap_t *sealed; /* ids of the sealed part; NULL = actors */
    uint32_t *count;
    uint64_t *dwell; /* NULL until an entry has a dwell time */
    size_t nsealed;
    stat_slot *slots; /* the delta */
    size_t cap, n;
    day_times *times; /* a timed event's times; NULL: not timed */
    /* While the index is rebuilt: one (dense << 32 | dwell) per event, in
     * the order read, sorted and summed into the sealed part at the end;
     * one buffer for each of the threads that read events. */
    struct {
        uint64_t *a;
        size_t n, cap;
    } load[LOAD_THREADS];
    timed_log tload[LOAD_THREADS]; /* the same for the records of a timed event */
};

#define DELTA_MIN 1024

static const roaring_bitmap_t *day_sealed(const struct sy_day_events *d)
{
    return d->sealed ? d->sealed : d->actors;
}

/* The sealed times back into the tail, as records (before the sealed
 * entries change). */
static void times_unseal(struct sy_day_events *d)
{
    day_times *t = d->times;
    if (!t->off)
        return;
    roaring_uint32_iterator_t *it = roaring_create_iterator(day_sealed(d));
    uint32_t buf[256], got;
    size_t i = 0;
    while (i < t->nsealed && (got = roaring_read_uint32_iterator(it, buf, 256)) > 0)
        for (uint32_t k = 0; k < got && i < t->nsealed; k++, i++)
            for (uint32_t j = t->off[i]; j < t->off[i + 1]; j++)
                tlog_push(&t->tail, buf[k], t->ms[j], t->dwell ? t->dwell[j] : SY_NO_DWELL);
    roaring_free_uint32_iterator(it);
    free(t->off);
    free(t->ms);
    free(t->dwell);
    t->off = t->ms = t->dwell = NULL;
    t->nsealed = t->nms = 0;
}

/* The tail's records sorted by customer, then time (LSD radix, 16 bits a
 * pass, over the bits in use): idx[] gives their order. */
static uint32_t *tail_order(const timed_log *l)
{
    size_t n = l->n;
    uint32_t *idx = sy_xmalloc((n ? n : 1) * sizeof *idx),
             *tmp = sy_xmalloc((n ? n : 1) * sizeof *tmp);
    size_t *count = sy_xmalloc(65537 * sizeof *count);
    uint32_t maxd = 0, maxm = 0;
    for (size_t i = 0; i < n; i++) {
        idx[i] = (uint32_t)i;
        maxd |= l->dense[i];
        maxm |= l->ms[i];
    }
    for (int pass = 0; pass < 4; pass++) {
        const uint32_t *key = pass < 2 ? l->ms : l->dense;
        int shift = (pass % 2) * 16;
        if (((pass < 2 ? maxm : maxd) >> shift) == 0)
            continue; /* all zero: already in order */
        memset(count, 0, 65537 * sizeof *count);
        for (size_t i = 0; i < n; i++)
            count[((key[idx[i]] >> shift) & 0xffff) + 1]++;
        for (size_t k = 0; k < 65536; k++)
            count[k + 1] += count[k];
        for (size_t i = 0; i < n; i++)
            tmp[count[(key[idx[i]] >> shift) & 0xffff]++] = idx[i];
        uint32_t *x = idx;
        idx = tmp;
        tmp = x;
    }
    free(count);
    free(tmp);
    return idx;
}

/* Seals the tail (the sealed part is empty): the records of the day's
 * sealed entries become their aligned runs; records of other actors (in
 * the delta) stay in the tail; records of customers no longer among the
 * actors (merged away: their records were copied to the survivor) go. */
static void times_seal_into(const struct sy_day_events *d, day_times *t)
{
    timed_log old = t->tail;
    memset(&t->tail, 0, sizeof t->tail);
    if (!d->nsealed) {
        t->tail = old;
        return;
    }
    uint32_t *idx = tail_order(&old);
    t->nsealed = d->nsealed;
    t->off = sy_xmalloc((t->nsealed + 1) * sizeof *t->off);
    t->ms = sy_xmalloc((old.n ? old.n : 1) * sizeof *t->ms);
    t->dwell = old.dwell ? sy_xmalloc((old.n ? old.n : 1) * sizeof *t->dwell) : NULL;
    roaring_uint32_iterator_t *it = roaring_create_iterator(day_sealed(d));
    size_t r = 0, i = 0;
    for (; it->has_value && i < t->nsealed; i++, roaring_advance_uint32_iterator(it)) {
        uint32_t id = it->current_value;
        for (; r < old.n && old.dense[idx[r]] < id; r++)
            if (roaring_bitmap_contains(d->actors, old.dense[idx[r]]))
                tlog_push(&t->tail, old.dense[idx[r]], old.ms[idx[r]],
                          old.dwell ? old.dwell[idx[r]] : SY_NO_DWELL);
        t->off[i] = (uint32_t)t->nms;
        for (; r < old.n && old.dense[idx[r]] == id; r++) {
            t->ms[t->nms] = old.ms[idx[r]];
            if (t->dwell)
                t->dwell[t->nms] = old.dwell[idx[r]];
            t->nms++;
        }
    }
    for (; i <= t->nsealed; i++)
        t->off[i] = (uint32_t)t->nms;
    for (; r < old.n; r++)
        if (roaring_bitmap_contains(d->actors, old.dense[idx[r]]))
            tlog_push(&t->tail, old.dense[idx[r]], old.ms[idx[r]],
                      old.dwell ? old.dwell[idx[r]] : SY_NO_DWELL);
    roaring_free_uint32_iterator(it);
    free(idx);
    tlog_clear(&old);
    if (t->nms) {
        t->ms = sy_xrealloc(t->ms, t->nms * sizeof *t->ms);
        if (t->dwell)
            t->dwell = sy_xrealloc(t->dwell, t->nms * sizeof *t->dwell);
    }
    tlog_shrink(&t->tail);
}

static void times_seal(struct sy_day_events *d)
{
    times_seal_into(d, d->times);
}

/* The sealed index of dense, or -1. */
static int64_t sealed_index(const struct sy_day_events *d, uint32_t dense)
{
    const roaring_bitmap_t *s = day_sealed(d);
    if (!d->nsealed || !roaring_bitmap_contains(s, dense))
        return -1;
    return (int64_t)roaring_bitmap_rank(s, dense) - 1;
}

static stat_slot *delta_slot(struct sy_day_events *d, uint32_t dense, bool create)
{
    if (create && (d->n + 1) * 4 > d->cap * 3) {
        stat_slot *old = d->slots;
        size_t oldcap = d->cap;
        d->cap = oldcap ? oldcap * 2 : 64;
        d->slots = sy_xcalloc(d->cap, sizeof *d->slots);
        for (size_t i = 0; i < oldcap; i++)
            if (old[i].dense_plus1) {
                size_t j = (old[i].dense_plus1 * 2654435761u) & (d->cap - 1);
                while (d->slots[j].dense_plus1)
                    j = (j + 1) & (d->cap - 1);
                d->slots[j] = old[i];
            }
        free(old);
    }
    if (!d->cap)
        return NULL;
    uint32_t key = dense + 1;
    for (size_t i = (key * 2654435761u) & (d->cap - 1);; i = (i + 1) & (d->cap - 1)) {
        if (d->slots[i].dense_plus1 == key)
            return &d->slots[i];
        if (!d->slots[i].dense_plus1) {
            if (!create)
                return NULL;
            d->slots[i].dense_plus1 = key;
            d->n++;
            return &d->slots[i];
        }
    }
}

/* Before actors changes membership, the sealed part needs its own set. */
static void day_own_sealed(struct sy_day_events *d)
{
    if (!d->sealed)
        d->sealed = roaring_bitmap_copy(d->actors);
}

/* Merges the delta into a new sealed part over the current actors
 * (entries of customers merged away are dropped). */
static void day_compact(struct sy_day_events *d)
{
    if (d->times)
        times_unseal(d);
    if (!d->n && !d->sealed) {
        if (d->times)
            times_seal(d);
        return;
    }
    size_t n = roaring_bitmap_get_cardinality(d->actors);
    uint32_t *count = sy_xmalloc((n ? n : 1) * sizeof *count);
    bool any_dwell = d->dwell != NULL;
    for (size_t i = 0; i < d->cap && !any_dwell; i++)
        any_dwell = d->slots[i].dense_plus1 && d->slots[i].dwell_ms;
    uint64_t *dwell = any_dwell ? sy_xcalloc(n ? n : 1, sizeof *dwell) : NULL;
    roaring_uint32_iterator_t *a = roaring_create_iterator(d->actors);
    roaring_uint32_iterator_t *s = roaring_create_iterator(day_sealed(d));
    size_t si = 0; /* index of s's current value in the old arrays */
    for (size_t i = 0; a->has_value; i++, roaring_advance_uint32_iterator(a)) {
        uint32_t id = a->current_value;
        while (s->has_value && s->current_value < id) {
            roaring_advance_uint32_iterator(s);
            si++;
        }
        if (s->has_value && s->current_value == id && si < d->nsealed) {
            count[i] = d->count[si];
            if (dwell)
                dwell[i] = d->dwell ? d->dwell[si] : 0;
        } else {
            stat_slot *x = delta_slot(d, id, false);
            count[i] = x ? x->count : 0;
            if (dwell)
                dwell[i] = x ? x->dwell_ms : 0;
        }
    }
    roaring_free_uint32_iterator(a);
    roaring_free_uint32_iterator(s);
    free(d->count);
    free(d->dwell);
    free(d->slots);
    if (d->sealed)
        roaring_bitmap_free(d->sealed);
    d->count = count;
    d->dwell = dwell;
    d->nsealed = n;
    d->sealed = NULL;
    d->slots = NULL;
    d->cap = d->n = 0;
    roaring_bitmap_run_optimize(d->actors);
    roaring_bitmap_shrink_to_fit(d->actors);
    if (d->times)
        times_seal(d);
}

/* Adds to dense's entry on that day, creating it. */
static void day_add(struct sy_day_events *d, uint32_t dense, uint32_t count, uint64_t dwell_ms)
{
    int64_t i = sealed_index(d, dense);
    if (i >= 0) {
        if (!roaring_bitmap_contains(d->actors, dense)) {
            day_own_sealed(d);
            roaring_bitmap_add(d->actors, dense);
        }
        d->count[i] += count;
        if (dwell_ms) {
            if (!d->dwell)
                d->dwell = sy_xcalloc(d->nsealed, sizeof *d->dwell);
            d->dwell[i] += dwell_ms;
        }
        return;
    }
    if (!roaring_bitmap_contains(d->actors, dense)) {
        day_own_sealed(d);
        roaring_bitmap_add(d->actors, dense);
    }
    stat_slot *x = delta_slot(d, dense, true);
    x->count += count;
    x->dwell_ms += dwell_ms;
    if (d->n > DELTA_MIN && d->n * 2 > d->nsealed)
        day_compact(d);
}

/* Takes dense's entry off that day, returning what it held. */
static void day_take(struct sy_day_events *d, uint32_t dense, uint32_t *count, uint64_t *dwell_ms)
{
    *count = 0;
    *dwell_ms = 0;
    if (!roaring_bitmap_contains(d->actors, dense))
        return;
    int64_t i = sealed_index(d, dense);
    if (i >= 0) {
        *count = d->count[i];
        *dwell_ms = d->dwell ? d->dwell[i] : 0;
        d->count[i] = 0;
        if (d->dwell)
            d->dwell[i] = 0;
    } else {
        stat_slot *x = delta_slot(d, dense, false);
        if (x) {
            *count = x->count;
            *dwell_ms = x->dwell_ms;
            x->count = 0;
            x->dwell_ms = 0;
        }
    }
    day_own_sealed(d);
    roaring_bitmap_remove(d->actors, dense);
}

/* Buffers one event of dense for the loading thread `slot`. */
static void day_load(struct sy_day_events *d, int slot, uint32_t dense, uint64_t dwell_ms)
{
    __typeof__(d->load[0]) *l = &d->load[slot];
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 256;
        l->a = sy_xrealloc(l->a, l->cap * sizeof *l->a);
    }
    /* a dwell time is at most a day (86,400,000 ms), validated at ingest */
    l->a[l->n++] = (uint64_t)dense << 32 | (dwell_ms > UINT32_MAX ? UINT32_MAX : dwell_ms);
}

/* Buffers one record of a timed event for the loading thread `slot`. */
static void day_load_time(struct sy_day_events *d, int slot, uint32_t dense, uint32_t ms,
                          uint32_t dwell)
{
    tlog_push(&d->tload[slot], dense, ms, dwell);
}

static void day_finish_counts(struct sy_day_events *d);

/* The end of a rebuild for one day: the counts' sealed part, then the
 * times of a timed event sealed along. */
static void day_finish_load(struct sy_day_events *d)
{
    for (int t = 0; t < LOAD_THREADS; t++)
        if (d->tload[t].n) {
            if (!d->times)
                d->times = sy_xcalloc(1, sizeof *d->times);
            tlog_append(&d->times->tail, &d->tload[t]);
        }
    day_finish_counts(d);
    if (d->times) {
        times_unseal(d);
        times_seal(d);
    }
}

/* Sorts the loaded events by customer (LSD radix, 11 bits a pass) and
 * turns each run into one entry: the sealed part, built in one pass. */
static void day_finish_counts(struct sy_day_events *d)
{
    /* the threads' buffers, end to end in the first */
    for (int t = 1; t < LOAD_THREADS; t++) {
        if (!d->load[t].n)
            continue;
        if (d->load[0].cap < d->load[0].n + d->load[t].n) {
            d->load[0].cap = d->load[0].n + d->load[t].n;
            d->load[0].a = sy_xrealloc(d->load[0].a, d->load[0].cap * sizeof *d->load[0].a);
        }
        memcpy(d->load[0].a + d->load[0].n, d->load[t].a, d->load[t].n * sizeof *d->load[t].a);
        d->load[0].n += d->load[t].n;
        free(d->load[t].a);
        memset(&d->load[t], 0, sizeof d->load[t]);
    }
    if (!d->load[0].n)
        return;
    size_t n = d->load[0].n;
    uint64_t *a = d->load[0].a, *b = sy_xmalloc(n * sizeof *b);
    for (int shift = 32; shift < 64; shift += 11) {
        size_t count[2048] = {0};
        for (size_t i = 0; i < n; i++)
            count[(a[i] >> shift) & 2047]++;
        size_t pos = 0;
        for (size_t k = 0; k < 2048; k++) {
            size_t c = count[k];
            count[k] = pos;
            pos += c;
        }
        for (size_t i = 0; i < n; i++)
            b[count[(a[i] >> shift) & 2047]++] = a[i];
        uint64_t *t = a;
        a = b;
        b = t;
    }
    free(b);
    memset(&d->load[0], 0, sizeof d->load[0]);
    if (d->nsealed || d->n || !roaring_bitmap_is_empty(d->actors)) {
        /* not a fresh day: add entry by entry */
        for (size_t i = 0; i < n; i++)
            day_add(d, (uint32_t)(a[i] >> 32), 1, a[i] & UINT32_MAX);
        free(a);
        return;
    }
    size_t runs = 0;
    bool any_dwell = false;
    for (size_t i = 0; i < n; i++) {
        runs += i == 0 || (a[i] >> 32) != (a[i - 1] >> 32);
        any_dwell |= (a[i] & UINT32_MAX) != 0;
    }
    uint32_t *ids = sy_xmalloc(runs * sizeof *ids);
    d->count = sy_xcalloc(runs, sizeof *d->count);
    d->dwell = any_dwell ? sy_xcalloc(runs, sizeof *d->dwell) : NULL;
    size_t r = 0;
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && (a[i] >> 32) != (a[i - 1] >> 32))
            r++;
        ids[r] = (uint32_t)(a[i] >> 32);
        d->count[r]++;
        if (d->dwell)
            d->dwell[r] += a[i] & UINT32_MAX;
    }
    free(a);
    roaring_bitmap_add_many(d->actors, runs, ids);
    free(ids);
    d->nsealed = runs;
    roaring_bitmap_run_optimize(d->actors);
    roaring_bitmap_shrink_to_fit(d->actors);
}

static void day_free(struct sy_day_events *d)
{
    for (int t = 0; t < LOAD_THREADS; t++) {
        free(d->load[t].a);
        free(d->tload[t].dense);
        free(d->tload[t].ms);
        free(d->tload[t].dwell);
    }
    times_free(d->times);
    roaring_bitmap_free(d->actors);
    if (d->sealed)
        roaring_bitmap_free(d->sealed);
    free(d->count);
    free(d->dwell);
    free(d->slots);
    free(d);
}

static size_t day_memory(const struct sy_day_events *d)
{
    return roaring_bitmap_size_in_bytes(d->actors) +
           (d->sealed ? roaring_bitmap_size_in_bytes(d->sealed) : 0) +
           d->nsealed * (sizeof *d->count + (d->dwell ? sizeof *d->dwell : 0)) +
           d->cap * sizeof *d->slots;
}

const roaring_bitmap_t *sy_day_actors(const sy_day_events *d)
{
    return d->actors;
}

void sy_day_stats(const sy_day_events *d, uint32_t dense, uint32_t *count, uint64_t *dwell_ms)
{
    *count = 0;
    *dwell_ms = 0;
    if (!roaring_bitmap_contains(d->actors, dense))
        return;
    int64_t i = sealed_index(d, dense);
    if (i >= 0) {
        *count = d->count[i];
        *dwell_ms = d->dwell ? d->dwell[i] : 0;
        return;
    }
    stat_slot *x = delta_slot((struct sy_day_events *)d, dense, false);
    if (x) {
        *count = x->count;
        *dwell_ms = x->dwell_ms;
    }
}

void sy_day_add_sums(const sy_day_events *d, uint64_t *sums, bool dwell)
{
    if (d->nsealed && (!dwell || d->dwell)) {
        roaring_uint32_iterator_t *it = roaring_create_iterator(day_sealed(d));
        uint32_t buf[1024], got;
        size_t base = 0;
        while ((got = roaring_read_uint32_iterator(it, buf, 1024)) > 0) {
            if (dwell)
                for (uint32_t i = 0; i < got; i++)
                    sums[buf[i]] += d->dwell[base + i];
            else
                for (uint32_t i = 0; i < got; i++)
                    sums[buf[i]] += d->count[base + i];
            base += got;
        }
        roaring_free_uint32_iterator(it);
    }
    for (size_t i = 0; i < d->cap; i++)
        if (d->slots[i].dense_plus1)
            sums[d->slots[i].dense_plus1 - 1] += dwell ? d->slots[i].dwell_ms : d->slots[i].count;
}

size_t sy_day_size(const sy_day_events *d)
{
    return d->nsealed + d->n;
}

typedef struct event_ix {
    sy_day_events **days; /* sorted by day */
    size_t n, cap;
    bool timed; /* its days keep every event's time */
} event_ix;

/* The position of the first day >= day. */
static size_t event_day_pos(const event_ix *e, int64_t day)
{
    size_t lo = 0, hi = e->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (e->days[mid]->day < day)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The event's day, created when it has none. */
static sy_day_events *event_day(event_ix *e, int64_t day)
{
    size_t lo = event_day_pos(e, day);
    if (lo < e->n && e->days[lo]->day == day)
        return e->days[lo];
    if (e->n == e->cap) {
        e->cap = e->cap ? e->cap * 2 : 32;
        e->days = sy_xrealloc(e->days, e->cap * sizeof *e->days);
    }
    memmove(&e->days[lo + 1], &e->days[lo], (e->n - lo) * sizeof *e->days);
    sy_day_events *d = sy_xcalloc(1, sizeof *d);
    d->day = day;
    d->actors = roaring_bitmap_create();
    e->days[lo] = d;
    e->n++;
    return d;
}

/* ---- attributes ---- */

/* Range buckets (sy_index_range_cover): ge[i] holds the customers whose
 * value is >= bound[i]; bounds ascend and differ. */
#define BUCKET_BOUNDS 3

typedef struct col_buckets {
    int n;
    int64_t bound[BUCKET_BOUNDS];
    roaring_bitmap_t *ge[BUCKET_BOUNDS];
} col_buckets;

static void buckets_free(col_buckets *b)
{
    if (!b)
        return;
    for (int i = 0; i < b->n; i++)
        roaring_bitmap_free(b->ge[i]);
    free(b);
}

typedef struct attr_ix {
    sy_attr_type type;
    int scale;
    /* categorical */
    strmap values;
    char **value_names;
    roaring_bitmap_t **bitmaps;
    uint32_t nvalues, capvalues;
    /* numeric */
    column col;
    roaring_bitmap_t *present;
    _Atomic(struct col_buckets *) buckets; /* range buckets, once built */
} attr_ix;

typedef struct tag_def {
    char *name, *category, *expression;
    bool rule;
    sy_seg_node *ast;
    roaring_bitmap_t *members;
} tag_def;

typedef struct segment_def {
    char *id, *expression;
    sy_seg_node *ast;
} segment_def;

struct sy_index {
    pthread_rwlock_t lock;
    tag_def *tags;
    size_t ntags;
    segment_def *segments;
    size_t nsegments;
    int64_t tz_offset_ms;
    custdict customers;
    uint32_t size;
    roaring_bitmap_t *all;
    strmap attr_names;
    attr_ix **attrs;
    uint32_t nattrs;
    strmap event_names;
    event_ix **events;
    uint32_t nevents;
    /* the timed event names: all, or these */
    bool timed_all;
    char **timed;
    size_t ntimed;
    pthread_mutex_t bucket_mu; /* serialises range-bucket builds (under the read lock) */
};

sy_index *sy_index_new(int64_t tz_offset_ms)
{
    sy_index *ix = sy_xcalloc(1, sizeof *ix);
    pthread_rwlock_init(&ix->lock, NULL);
    pthread_mutex_init(&ix->bucket_mu, NULL);
    ix->tz_offset_ms = tz_offset_ms;
    ix->all = roaring_bitmap_create();
    ix->timed_all = true; /* as the setting's default */
    return ix;
}

void sy_index_free(sy_index *ix)
{
    if (!ix)
        return;
    dict_free(&ix->customers);
    roaring_bitmap_free(ix->all);
    for (uint32_t a = 0; a < ix->nattrs; a++) {
        attr_ix *x = ix->attrs[a];
        for (uint32_t v = 0; v < x->nvalues; v++) {
            free(x->value_names[v]);
            roaring_bitmap_free(x->bitmaps[v]);
        }
        free(x->value_names);
        free(x->bitmaps);
        strmap_free(&x->values);
        col_free(x->col.data, x->col.width ? col_bytes(x->col.cap, x->col.width) : 0);
        if (x->present)
            roaring_bitmap_free(x->present);
        buckets_free(atomic_load(&x->buckets));
        free(x);
    }
    free(ix->attrs);
    strmap_free(&ix->attr_names);
    for (uint32_t e = 0; e < ix->nevents; e++) {
        for (size_t d = 0; d < ix->events[e]->n; d++) {
            day_free(ix->events[e]->days[d]);
        }
        free(ix->events[e]->days);
        free(ix->events[e]);
    }
    free(ix->events);
    strmap_free(&ix->event_names);
    for (size_t i = 0; i < ix->ntimed; i++)
        free(ix->timed[i]);
    free(ix->timed);
    for (size_t i = 0; i < ix->ntags; i++) {
        free(ix->tags[i].name);
        free(ix->tags[i].category);
        free(ix->tags[i].expression);
        sy_seg_free(ix->tags[i].ast);
        if (ix->tags[i].members)
            roaring_bitmap_free(ix->tags[i].members);
    }
    free(ix->tags);
    for (size_t i = 0; i < ix->nsegments; i++) {
        free(ix->segments[i].id);
        free(ix->segments[i].expression);
        sy_seg_free(ix->segments[i].ast);
    }
    free(ix->segments);
    pthread_rwlock_destroy(&ix->lock);
    free(ix);
}

static bool is_numeric(sy_attr_type t)
{
    return t == SY_ATTR_INTEGER || t == SY_ATTR_NUMBER || t == SY_ATTR_DATE;
}

static attr_ix *attr_of(sy_index *ix, const sy_attr_def *d)
{
    uint32_t i;
    if (strmap_get(&ix->attr_names, d->name, &i))
        return ix->attrs[i];
    attr_ix *x = sy_xcalloc(1, sizeof *x);
    x->type = d->type;
    x->scale = d->scale;
    if (is_numeric(d->type))
        x->present = roaring_bitmap_create();
    ix->attrs = sy_xrealloc(ix->attrs, (ix->nattrs + 1) * sizeof *ix->attrs);
    ix->attrs[ix->nattrs] = x;
    strmap_put(&ix->attr_names, d->name, ix->nattrs++);
    return x;
}

static const attr_ix *attr_find(const sy_index *ix, const char *name)
{
    uint32_t i;
    return strmap_get(&ix->attr_names, name, &i) ? ix->attrs[i] : NULL;
}

/* A stored attribute value, as it comes from a parsed JSON object or from
 * SQLite's json_each (canonical values are strings, integers and bools). */
typedef struct prim {
    enum { P_STR, P_INT, P_BOOL, P_NUM } kind; /* P_NUM: a numeric attribute's integer */
    const char *s;
    int64_t i; /* P_INT; P_BOOL: 0 or 1 */
} prim;

static bool prim_of_json(const json_t *v, prim *p)
{
    if (json_is_string(v))
        *p = (prim){P_STR, json_string_value(v), 0};
    else if (json_is_integer(v))
        *p = (prim){P_INT, NULL, json_integer_value(v)};
    else if (json_is_boolean(v))
        *p = (prim){P_BOOL, NULL, json_is_true(v)};
    else
        return false;
    return true;
}

/* The categorical key of a canonical value ("R3", "true", "上海"). */
static const char *category_of(const prim *v, char *buf, size_t n)
{
    if (v->kind == P_BOOL)
        return v->i ? "true" : "false";
    if (v->kind == P_STR)
        return v->s;
    snprintf(buf, n, "%lld", (long long)v->i);
    return buf;
}

/* The integer of a canonical numeric value: integer as is, number scaled,
 * date as days. */
static bool numeric_of(const attr_ix *x, const prim *v, int64_t *out)
{
    if (v->kind == P_NUM || (x->type == SY_ATTR_INTEGER && v->kind == P_INT)) {
        *out = v->i;
        return true;
    }
    return v->kind == P_STR && sy_attr_numeric_text(x->type, v->s, out);
}

static void cat_set(attr_ix *x, const char *value, uint32_t dense, bool add)
{
    uint32_t i;
    if (!strmap_get(&x->values, value, &i)) {
        if (!add)
            return;
        if (x->nvalues == x->capvalues) {
            x->capvalues = x->capvalues ? x->capvalues * 2 : 8;
            x->value_names = sy_xrealloc(x->value_names, x->capvalues * sizeof *x->value_names);
            x->bitmaps = sy_xrealloc(x->bitmaps, x->capvalues * sizeof *x->bitmaps);
        }
        i = x->nvalues++;
        x->value_names[i] = sy_xstrdup(value);
        x->bitmaps[i] = roaring_bitmap_create();
        strmap_put(&x->values, value, i);
    }
    if (add)
        roaring_bitmap_add(x->bitmaps[i], dense);
    else
        roaring_bitmap_remove(x->bitmaps[i], dense);
}

static void num_set(attr_ix *x, uint32_t dense, int64_t v)
{
    col_set(&x->col, dense, v);
    roaring_bitmap_add(x->present, dense);
}

/* A customer's value goes from *ov to *nv (NULL: none) in x's buckets. */
static void buckets_move(attr_ix *x, uint32_t dense, const int64_t *ov, const int64_t *nv)
{
    col_buckets *b = atomic_load_explicit(&x->buckets, memory_order_relaxed);
    if (!b)
        return;
    for (int i = 0; i < b->n; i++) {
        bool was = ov && *ov >= b->bound[i], now = nv && *nv >= b->bound[i];
        if (was != now) {
            if (now)
                roaring_bitmap_add(b->ge[i], dense);
            else
                roaring_bitmap_remove(b->ge[i], dense);
        }
    }
}

/* One attribute of one customer goes from ov to nv (either may be NULL);
 * the caller holds the write lock. */
static void set_value_locked(attr_ix *x, uint32_t dense, const prim *ov, const prim *nv)
{
    char b1[32], b2[32];
    if (is_numeric(x->type)) {
        int64_t v, old = 0;
        bool had = atomic_load_explicit(&x->buckets, memory_order_relaxed) &&
                   roaring_bitmap_contains(x->present, dense);
        if (had)
            old = col_get(&x->col, dense);
        bool has = nv && numeric_of(x, nv, &v);
        if (has)
            num_set(x, dense, v);
        else
            roaring_bitmap_remove(x->present, dense);
        buckets_move(x, dense, had ? &old : NULL, has ? &v : NULL);
    } else {
        if (ov)
            cat_set(x, category_of(ov, b1, sizeof b1), dense, false);
        if (nv)
            cat_set(x, category_of(nv, b2, sizeof b2), dense, true);
    }
}

/* Applies one customer's attribute change; caller holds the write lock. */
static void update_attrs_locked(sy_index *ix, uint32_t dense, const sy_attr_set *schema,
                                const json_t *old_attrs, const json_t *new_attrs)
{
    for (int a = 0; a < schema->n; a++) {
        const sy_attr_def *d = &schema->defs[a];
        const json_t *ov = old_attrs ? json_object_get(old_attrs, d->name) : NULL;
        const json_t *nv = new_attrs ? json_object_get(new_attrs, d->name) : NULL;
        if (!ov && !nv)
            continue;
        if (ov && nv && json_equal((json_t *)ov, (json_t *)nv))
            continue;
        prim o, n;
        bool has_o = ov && prim_of_json(ov, &o), has_n = nv && prim_of_json(nv, &n);
        set_value_locked(attr_of(ix, d), dense, has_o ? &o : NULL, has_n ? &n : NULL);
    }
}

static void add_customer_locked(sy_index *ix, const char *no, uint32_t dense)
{
    dict_put(&ix->customers, no, dense);
    if (dense >= ix->size)
        ix->size = dense + 1;
    roaring_bitmap_add(ix->all, dense);
}

static bool name_timed(const sy_index *ix, const char *name)
{
    for (size_t i = 0; i < ix->ntimed && !ix->timed_all; i++)
        if (!strcmp(ix->timed[i], name))
            return true;
    return ix->timed_all;
}

/* The event's index, created on first sight. */
static event_ix *event_of(sy_index *ix, const char *name)
{
    uint32_t e;
    if (!strmap_get(&ix->event_names, name, &e)) {
        ix->events = sy_xrealloc(ix->events, (ix->nevents + 1) * sizeof *ix->events);
        ix->events[ix->nevents] = sy_xcalloc(1, sizeof **ix->events);
        ix->events[ix->nevents]->timed = name_timed(ix, name);
        e = ix->nevents++;
        strmap_put(&ix->event_names, name, e);
    }
    return ix->events[e];
}

/* The time of ts in its business day, in ms. */
static uint32_t ms_of_day(const sy_index *ix, int64_t ts, int64_t day)
{
    return (uint32_t)(ts + ix->tz_offset_ms - day * SY_DAY_MS);
}

static uint32_t dwell_of(int64_t dwell_ms)
{
    return dwell_ms < 0              ? SY_NO_DWELL
           : dwell_ms >= SY_NO_DWELL ? SY_NO_DWELL - 1
                                     : (uint32_t)dwell_ms;
}

static void add_event_locked(sy_index *ix, uint32_t dense, const char *name, int64_t ts,
                             int64_t dwell_ms)
{
    event_ix *ev = event_of(ix, name);
    int64_t day = sy_index_day(ix, ts);
    sy_day_events *d = event_day(ev, day);
    day_add(d, dense, 1, dwell_ms > 0 ? (uint64_t)dwell_ms : 0);
    if (ev->timed) {
        if (!d->times)
            d->times = sy_xcalloc(1, sizeof *d->times);
        day_times *t = d->times;
        tlog_push(&t->tail, dense, ms_of_day(ix, ts, day), dwell_of(dwell_ms));
        if (t->tail.n > DELTA_MIN && t->tail.n * 2 > t->nms)
            day_compact(d); /* seals the tail along */
    }
}

void sy_index_add_customer(sy_index *ix, const char *customer_no, uint32_t dense)
{
    pthread_rwlock_wrlock(&ix->lock);
    add_customer_locked(ix, customer_no, dense);
    pthread_rwlock_unlock(&ix->lock);
}

void sy_index_update_attrs(sy_index *ix, uint32_t dense, const sy_attr_set *schema,
                           const json_t *old_attrs, const json_t *new_attrs)
{
    pthread_rwlock_wrlock(&ix->lock);
    update_attrs_locked(ix, dense, schema, old_attrs, new_attrs);
    pthread_rwlock_unlock(&ix->lock);
}

void sy_index_add_events(sy_index *ix, size_t n, const char *const *customer_no,
                         const char *const *name, const int64_t *ts_ms, const int64_t *dwell_ms)
{
    pthread_rwlock_wrlock(&ix->lock);
    for (size_t i = 0; i < n; i++) {
        uint32_t dense;
        if (dict_get(&ix->customers, customer_no[i], &dense) &&
            roaring_bitmap_contains(ix->all, dense))
            add_event_locked(ix, dense, name[i], ts_ms[i], dwell_ms[i]);
    }
    pthread_rwlock_unlock(&ix->lock);
}

void sy_index_merge(sy_index *ix, const sy_attr_set *schema, uint32_t from,
                    const json_t *from_attrs, uint32_t into)
{
    pthread_rwlock_wrlock(&ix->lock);
    update_attrs_locked(ix, from, schema, from_attrs, NULL);
    roaring_bitmap_remove(ix->all, from);
    for (uint32_t e = 0; e < ix->nevents; e++)
        for (size_t d = 0; d < ix->events[e]->n; d++) {
            sy_day_events *de = ix->events[e]->days[d];
            if (!roaring_bitmap_contains(de->actors, from))
                continue;
            if (de->times) {
                /* from's times become into's: its sealed run is copied to
                 * the tail (the run stays, under an id no longer counted) */
                day_times *t = de->times;
                int64_t k = t->off && t->nsealed == de->nsealed ? sealed_index(de, from) : -1;
                for (uint32_t j = k >= 0 ? t->off[k] : 0; k >= 0 && j < t->off[k + 1]; j++)
                    tlog_push(&t->tail, into, t->ms[j], t->dwell ? t->dwell[j] : SY_NO_DWELL);
                for (size_t i = 0; i < t->tail.n; i++)
                    if (t->tail.dense[i] == from)
                        t->tail.dense[i] = into;
            }
            uint32_t count;
            uint64_t dwell;
            day_take(de, from, &count, &dwell);
            day_add(de, into, count, dwell);
        }
    for (size_t t = 0; t < ix->ntags; t++)
        if (ix->tags[t].members && roaring_bitmap_contains(ix->tags[t].members, from)) {
            roaring_bitmap_remove(ix->tags[t].members, from);
            roaring_bitmap_add(ix->tags[t].members, into);
        }
    pthread_rwlock_unlock(&ix->lock);
}

void sy_index_add_event(sy_index *ix, uint32_t dense, const char *name, int64_t ts_ms,
                        int64_t dwell_ms)
{
    pthread_rwlock_wrlock(&ix->lock);
    add_event_locked(ix, dense, name, ts_ms, dwell_ms);
    pthread_rwlock_unlock(&ix->lock);
}

/* ---- tags and segments (callers hold the write lock) ---- */

static tag_def *tag_find(const sy_index *ix, const char *name)
{
    for (size_t i = 0; i < ix->ntags; i++)
        if (!strcmp(ix->tags[i].name, name))
            return &ix->tags[i];
    return NULL;
}

static void tag_define_locked(sy_index *ix, const char *name, const char *category, bool rule,
                              const char *expression, sy_seg_node *ast)
{
    tag_def *t = tag_find(ix, name);
    if (!t) {
        ix->tags = sy_xrealloc(ix->tags, (ix->ntags + 1) * sizeof *ix->tags);
        t = &ix->tags[ix->ntags++];
        memset(t, 0, sizeof *t);
        t->name = sy_xstrdup(name);
    }
    free(t->category);
    free(t->expression);
    sy_seg_free(t->ast);
    t->category = sy_xstrdup(category);
    t->rule = rule;
    t->expression = expression ? sy_xstrdup(expression) : NULL;
    t->ast = ast;
    if (!rule && !t->members)
        t->members = roaring_bitmap_create();
}

static void segment_define_locked(sy_index *ix, const char *id, const char *expression,
                                  sy_seg_node *ast)
{
    segment_def *d = NULL;
    for (size_t i = 0; i < ix->nsegments && !d; i++)
        if (!strcmp(ix->segments[i].id, id))
            d = &ix->segments[i];
    if (!d) {
        ix->segments = sy_xrealloc(ix->segments, (ix->nsegments + 1) * sizeof *ix->segments);
        d = &ix->segments[ix->nsegments++];
        memset(d, 0, sizeof *d);
        d->id = sy_xstrdup(id);
    }
    free(d->expression);
    sy_seg_free(d->ast);
    d->expression = sy_xstrdup(expression);
    d->ast = ast;
}

void sy_index_tag_define(sy_index *ix, const char *name, const char *category, bool rule,
                         const char *expression, sy_seg_node *ast)
{
    pthread_rwlock_wrlock(&ix->lock);
    tag_define_locked(ix, name, category, rule, expression, ast);
    pthread_rwlock_unlock(&ix->lock);
}

void sy_index_tag_drop(sy_index *ix, const char *name)
{
    pthread_rwlock_wrlock(&ix->lock);
    tag_def *t = tag_find(ix, name);
    if (t) {
        free(t->name);
        free(t->category);
        free(t->expression);
        sy_seg_free(t->ast);
        if (t->members)
            roaring_bitmap_free(t->members);
        *t = ix->tags[--ix->ntags];
    }
    pthread_rwlock_unlock(&ix->lock);
}

void sy_index_tag_member(sy_index *ix, const char *tag, uint32_t dense, bool add)
{
    pthread_rwlock_wrlock(&ix->lock);
    tag_def *t = tag_find(ix, tag);
    if (t && t->members) {
        if (add)
            roaring_bitmap_add(t->members, dense);
        else
            roaring_bitmap_remove(t->members, dense);
    }
    pthread_rwlock_unlock(&ix->lock);
}

void sy_index_segment_define(sy_index *ix, const char *id, const char *expression, sy_seg_node *ast)
{
    pthread_rwlock_wrlock(&ix->lock);
    segment_define_locked(ix, id, expression, ast);
    pthread_rwlock_unlock(&ix->lock);
}

void sy_index_segment_drop(sy_index *ix, const char *id)
{
    pthread_rwlock_wrlock(&ix->lock);
    for (size_t i = 0; i < ix->nsegments; i++)
        if (!strcmp(ix->segments[i].id, id)) {
            free(ix->segments[i].id);
            free(ix->segments[i].expression);
            sy_seg_free(ix->segments[i].ast);
            ix->segments[i] = ix->segments[--ix->nsegments];
            break;
        }
    pthread_rwlock_unlock(&ix->lock);
}

bool sy_index_tag_get(const sy_index *ix, const char *name, sy_index_tag *out)
{
    const tag_def *t = tag_find(ix, name);
    if (!t)
        return false;
    *out = (sy_index_tag){.name = t->name,
                          .category = t->category,
                          .rule = t->rule,
                          .expression = t->expression,
                          .ast = t->ast,
                          .members = t->members};
    return true;
}

void sy_index_tags(const sy_index *ix, void (*fn)(const sy_index_tag *t, void *ud), void *ud)
{
    for (size_t i = 0; i < ix->ntags; i++) {
        sy_index_tag t;
        sy_index_tag_get(ix, ix->tags[i].name, &t);
        fn(&t, ud);
    }
}

const sy_seg_node *sy_index_segment(const sy_index *ix, const char *id)
{
    for (size_t i = 0; i < ix->nsegments; i++)
        if (!strcmp(ix->segments[i].id, id))
            return ix->segments[i].ast;
    return NULL;
}

static void read_timed_setting(sy_index *ix, sy_conn *c, const char *tenant);

/* Loads tag definitions, manual members and saved segments. */
static int load_catalog_locked(sy_index *ix, sy_conn *c, const char *tenant)
{
    static const char sql_t[] = "SELECT name, category, kind, expression FROM tags"
                                " WHERE tenant_id = $1";
    static const char sql_m[] = "SELECT tag, customer_no FROM tag_members WHERE tenant_id = $1";
    static const char sql_s[] = "SELECT id, expression FROM segments WHERE tenant_id = $1";
    int rc;
    sy_stmt *st = sy_conn_prepare(c, sql_t);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    while ((rc = sy_stmt_step(st)) == SY_ROW) {
        bool rule = !strcmp(sy_stmt_text(st, 2), "rule");
        sy_seg_node *ast = NULL;
        if (rule) {
            sy_seg_error e;
            const char *x = sy_stmt_text(st, 3);
            ast = sy_seg_parse(x, strlen(x), &e);
        }
        tag_define_locked(ix, sy_stmt_text(st, 0), sy_stmt_text(st, 1), rule,
                          rule ? sy_stmt_text(st, 3) : NULL, ast);
    }
    sy_stmt_reset(st);
    if (rc != SY_DONE || !(st = sy_conn_prepare(c, sql_m)))
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    while ((rc = sy_stmt_step(st)) == SY_ROW) {
        tag_def *t = tag_find(ix, sy_stmt_text(st, 0));
        uint32_t dense;
        if (t && t->members && dict_get(&ix->customers, sy_stmt_text(st, 1), &dense))
            roaring_bitmap_add(t->members, dense);
    }
    sy_stmt_reset(st);
    if (rc != SY_DONE || !(st = sy_conn_prepare(c, sql_s)))
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    while ((rc = sy_stmt_step(st)) == SY_ROW) {
        sy_seg_error e;
        const char *x = sy_stmt_text(st, 1);
        segment_define_locked(ix, sy_stmt_text(st, 0), x, sy_seg_parse(x, strlen(x), &e));
    }
    sy_stmt_reset(st);
    return rc == SY_DONE ? SY_OK : SY_ERR;
}

/* `tenant_id || ''` keeps SQLite from answering through an index: that
 * would fetch every row by rowid, in random order, where a scan of the
 * table in storage order is several times faster.  The attributes come
 * packed (migration 0007, attr.h): no JSON is parsed at start. */
static const char sql_load_customers[] = "SELECT customer_no, dense_id, attrs FROM customer_packed"
                                         " WHERE tenant_id || '' = $1";
static const char sql_load_numbers[] = "SELECT customer_no, dense_id FROM customer_packed"
                                       " WHERE tenant_id || '' = $1";
/* The events are read in ranges of rowids, which both threads take from a
 * shared counter until none is left.  SQLite only (scripts/pg-compat.sh
 * skips names ending in _sqlite); PostgreSQL would range over ctid or a
 * BIGINT identity column. */
static const char sql_event_rowids_sqlite[] = "SELECT min(rowid), max(rowid) FROM events";
static const char sql_load_events_sqlite[] =
    "SELECT customer_no, name, ts, dwell_ms FROM events WHERE rowid >= $2 AND rowid < $3"
    " AND tenant_id || '' = $1";

/* What the threads reading events share. */
typedef struct events_load {
    sy_index *ix;
    const char *tenant;
    pthread_mutex_t mu;   /* creating an event's index or a day of it */
    _Atomic int64_t next; /* the first rowid not taken yet */
    int64_t last, chunk;  /* the last rowid; rowids per range */
} events_load;

/* One thread's part: it reads ranges until none is left. */
typedef struct events_job {
    events_load *L;
    sy_conn *c;
    int slot;             /* its buffers in the days (day_load) */
    const custdict *dict; /* NULL: build one (beside the customers part) */
    int rc;
    int64_t events;
    double ms;
} events_job;

/* A thread's view of one event name: the day it last added to. */
typedef struct seen_event {
    event_ix *ev;
    int64_t day;
    sy_day_events *d;
} seen_event;

static int load_event_range(events_job *j, sy_stmt *st, const custdict *dict, strmap *names,
                            seen_event **seen, uint32_t *nseen, int64_t lo, int64_t hi)
{
    events_load *L = j->L;
    int rc;
    sy_stmt_bind_text(st, 1, L->tenant);
    sy_stmt_bind_i64(st, 2, lo);
    sy_stmt_bind_i64(st, 3, hi);
    while ((rc = sy_stmt_step(st)) == SY_ROW) {
        uint32_t dense, e;
        if (!dict_get(dict, sy_stmt_text(st, 0), &dense))
            continue; /* a customer merged away, or never created */
        const char *name = sy_stmt_text(st, 1);
        if (!strmap_get(names, name, &e)) {
            e = (*nseen)++;
            *seen = sy_xrealloc(*seen, *nseen * sizeof **seen);
            pthread_mutex_lock(&L->mu);
            (*seen)[e] = (seen_event){event_of(L->ix, name), INT64_MIN, NULL};
            pthread_mutex_unlock(&L->mu);
            strmap_put(names, name, e);
        }
        seen_event *x = &(*seen)[e];
        int64_t day = sy_index_day(L->ix, sy_stmt_i64(st, 2));
        if (day != x->day || !x->d) {
            /* days are created under the lock; a day, once made, stays where
             * it is, so its buffers are this thread's to fill */
            pthread_mutex_lock(&L->mu);
            x->d = event_day(x->ev, day);
            pthread_mutex_unlock(&L->mu);
            x->day = day;
        }
        int64_t dwell = sy_stmt_is_null(st, 3) ? -1 : sy_stmt_i64(st, 3);
        day_load(x->d, j->slot, dense, dwell > 0 ? (uint64_t)dwell : 0);
        if (x->ev->timed)
            day_load_time(x->d, j->slot, dense, ms_of_day(L->ix, sy_stmt_i64(st, 2), day),
                          dwell_of(dwell));
        j->events++;
    }
    sy_stmt_reset(st);
    return rc;
}

static void *load_events(void *arg)
{
    events_job *j = arg;
    events_load *L = j->L;
    uint64_t t0 = sy_mono_ns();
    custdict own = {0};
    const custdict *dict = j->dict;
    strmap names = {0};
    seen_event *seen = NULL;
    uint32_t nseen = 0;
    sy_stmt *st;
    j->rc = SY_ERR;
    if (!dict) {
        if (!(st = sy_conn_prepare(j->c, sql_load_numbers)))
            return NULL;
        sy_stmt_bind_text(st, 1, L->tenant);
        while ((j->rc = sy_stmt_step(st)) == SY_ROW)
            dict_put(&own, sy_stmt_text(st, 0), (uint32_t)sy_stmt_i64(st, 1));
        sy_stmt_reset(st);
        dict = &own;
        if (j->rc != SY_DONE)
            goto out;
    }
    if (!(st = sy_conn_prepare(j->c, sql_load_events_sqlite))) {
        j->rc = SY_ERR;
        goto out;
    }
    j->rc = SY_DONE;
    for (;;) {
        int64_t lo = atomic_fetch_add(&L->next, L->chunk);
        if (lo > L->last)
            break;
        int64_t hi = lo + L->chunk;
        if ((j->rc = load_event_range(j, st, dict, &names, &seen, &nseen, lo, hi)) != SY_DONE)
            break;
    }
out:
    free(seen);
    strmap_free(&names);
    dict_free(&own);
    j->ms = (double)(sy_mono_ns() - t0) / 1e6;
    return NULL;
}

static void compact_bitmap(roaring_bitmap_t *b)
{
    roaring_bitmap_run_optimize(b);
    roaring_bitmap_shrink_to_fit(b);
}

/* Bitmaps built one id at a time keep the slack of their growth (array
 * containers double); give it back, and use runs where they are smaller.
 * The caller holds the write lock. */
static void compact_locked(sy_index *ix)
{
    for (uint32_t a = 0; a < ix->nattrs; a++) {
        attr_ix *x = ix->attrs[a];
        for (uint32_t v = 0; v < x->nvalues; v++)
            compact_bitmap(x->bitmaps[v]);
        if (x->present)
            compact_bitmap(x->present);
    }
    for (size_t t = 0; t < ix->ntags; t++)
        if (ix->tags[t].members)
            compact_bitmap(ix->tags[t].members);
    compact_bitmap(ix->all);
    malloc_trim(0);
}

void sy_index_compact(sy_index *ix)
{
    pthread_rwlock_wrlock(&ix->lock);
    compact_locked(ix);
    pthread_rwlock_unlock(&ix->lock);
}

int sy_index_rebuild(sy_index *ix, sy_conn *c, sy_conn *c2, const char *tenant,
                     const sy_attr_set *schema, sy_index_load *load)
{
    sy_index_load l = {0};
    uint64_t t0 = sy_mono_ns();
    pthread_rwlock_wrlock(&ix->lock);
    /* The events: the second connection's thread starts on them at once
     * (with a dictionary of its own), this one joins it after the customers. */
    read_timed_setting(ix, c, tenant);
    events_load L = {.ix = ix, .tenant = tenant, .next = 1, .last = 0};
    pthread_mutex_init(&L.mu, NULL);
    int rc = SY_ERR;
    sy_stmt *st = sy_conn_prepare(c, sql_event_rowids_sqlite);
    if (st && (rc = sy_stmt_step(st)) == SY_ROW && !sy_stmt_is_null(st, 0)) {
        atomic_store(&L.next, sy_stmt_i64(st, 0));
        L.last = sy_stmt_i64(st, 1);
    }
    if (st)
        sy_stmt_reset(st);
    /* about 64 ranges, so that both threads finish at about the same time */
    L.chunk = (L.last - atomic_load(&L.next) + 1) / 64;
    L.chunk = L.chunk < 1024 ? 1024 : L.chunk > (1 << 20) ? (1 << 20) : L.chunk;
    events_job job = {.L = &L, .c = c, .slot = 0, .dict = &ix->customers};
    events_job job2 = {.L = &L, .c = c2, .slot = 1, .dict = NULL};
    pthread_t th;
    bool beside = rc == SY_ROW && c2 && pthread_create(&th, NULL, load_events, &job2) == 0;
    if (rc != SY_ROW)
        goto events_done;
    /* the schema's attributes by ordinal, and their indexes once resolved */
    int nord = 0;
    for (int a = 0; a < schema->n; a++)
        if (schema->defs[a].ordinal >= nord)
            nord = schema->defs[a].ordinal + 1;
    const sy_attr_def **defs = sy_xcalloc((size_t)nord + 1, sizeof *defs);
    for (int a = 0; a < schema->n; a++)
        if (schema->defs[a].ordinal >= 0)
            defs[schema->defs[a].ordinal] = &schema->defs[a];
    attr_ix **xs = sy_xcalloc((size_t)nord + 1, sizeof *xs);
    st = sy_conn_prepare(c, sql_load_customers);
    rc = SY_ERR;
    if (st) {
        sy_stmt_bind_text(st, 1, tenant);
        while ((rc = sy_stmt_step(st)) == SY_ROW) {
            uint32_t dense = (uint32_t)sy_stmt_i64(st, 1);
            add_customer_locked(ix, sy_stmt_text(st, 0), dense);
            l.customers++;
            const uint8_t *p = sy_stmt_blob(st, 2), *end = p + sy_stmt_len(st, 2);
            sy_attr_packed v;
            int more;
            while ((more = sy_attr_unpack(&p, end, &v)) > 0) {
                if (v.ordinal >= nord || !defs[v.ordinal])
                    continue; /* an attribute this schema does not know */
                if (!xs[v.ordinal])
                    xs[v.ordinal] = attr_of(ix, defs[v.ordinal]);
                prim pv = v.kind == SY_PACKED_STR    ? (prim){P_STR, v.s, 0}
                          : v.kind == SY_PACKED_BOOL ? (prim){P_BOOL, NULL, v.i}
                                                     : (prim){P_NUM, NULL, v.i};
                set_value_locked(xs[v.ordinal], dense, NULL, &pv);
            }
            if (more < 0)
                sy_error("index: the packed attributes of customer %s are damaged; skipped the"
                         " rest of them",
                         sy_stmt_text(st, 0));
        }
        sy_stmt_reset(st);
    }
    free(xs);
    free(defs);
    l.customers_ms = (double)(sy_mono_ns() - t0) / 1e6;
    if (rc == SY_DONE) {
        load_events(&job);
        if (job.rc != SY_DONE)
            rc = job.rc == SY_OK ? SY_ERR : job.rc;
    }
    if (beside) {
        pthread_join(th, NULL);
        if (rc == SY_DONE && job2.rc != SY_DONE)
            rc = job2.rc == SY_OK ? SY_ERR : job2.rc;
    }
events_done:
    pthread_mutex_destroy(&L.mu);
    l.events = job.events + job2.events;
    l.events_ms = (double)(sy_mono_ns() - t0) / 1e6;
    if (rc == SY_DONE)
        rc = load_catalog_locked(ix, c, tenant) == SY_OK ? SY_DONE : SY_ERR;
    /* Every day into its compact form; the buffers it was loaded through
     * go back to the system. */
    for (uint32_t e = 0; e < ix->nevents; e++)
        for (size_t d = 0; d < ix->events[e]->n; d++)
            day_finish_load(ix->events[e]->days[d]);
    /* The scans filled the connections' page caches with pages no request
     * is about to read: give them back before the heap is trimmed. */
    sy_conn_shed(c);
    if (c2)
        sy_conn_shed(c2);
    compact_locked(ix);
    pthread_rwlock_unlock(&ix->lock);
    if (load)
        *load = l;
    return rc == SY_DONE ? SY_OK : (rc == SY_OK ? SY_ERR : rc);
}

/* ---- reads ---- */

void sy_index_rdlock(sy_index *ix)
{
    pthread_rwlock_rdlock(&ix->lock);
}

void sy_index_unlock(sy_index *ix)
{
    pthread_rwlock_unlock(&ix->lock);
}

uint32_t sy_index_size(const sy_index *ix)
{
    return ix->size;
}

const roaring_bitmap_t *sy_index_all(const sy_index *ix)
{
    return ix->all;
}

bool sy_index_dense(const sy_index *ix, const char *customer_no, uint32_t *dense)
{
    return dict_get(&ix->customers, customer_no, dense);
}

const char *sy_index_customer_no(const sy_index *ix, uint32_t dense)
{
    return dense < ix->size ? dict_no(&ix->customers, dense) : NULL;
}

int64_t sy_index_day(const sy_index *ix, int64_t ts_ms)
{
    int64_t local = ts_ms + ix->tz_offset_ms;
    return local >= 0 ? local / SY_DAY_MS : -((-local + SY_DAY_MS - 1) / SY_DAY_MS);
}

const roaring_bitmap_t *sy_index_value(const sy_index *ix, const char *attr, const char *value)
{
    const attr_ix *x = attr_find(ix, attr);
    uint32_t i;
    if (!x || is_numeric(x->type) || !strmap_get(&x->values, value, &i))
        return NULL;
    return x->bitmaps[i];
}

void sy_index_values(const sy_index *ix, const char *attr, sy_index_value_fn fn, void *ud)
{
    const attr_ix *x = attr_find(ix, attr);
    if (!x || is_numeric(x->type))
        return;
    for (uint32_t i = 0; i < x->nvalues; i++)
        fn(x->value_names[i], x->bitmaps[i], ud);
}

const roaring_bitmap_t *sy_index_present(const sy_index *ix, const char *attr)
{
    const attr_ix *x = attr_find(ix, attr);
    return x && is_numeric(x->type) ? x->present : NULL;
}

bool sy_index_numeric(const sy_index *ix, const char *attr, uint32_t dense, int64_t *v)
{
    const attr_ix *x = attr_find(ix, attr);
    if (!x || !is_numeric(x->type) || !roaring_bitmap_contains(x->present, dense))
        return false;
    *v = col_get(&x->col, dense);
    return true;
}

/* A packed column's i-th value by width (1, 2, 4 and 5 bytes: zigzag
 * offsets from the column's anchor, which the caller has in `anchor`; 8:
 * raw), and a scan expanded once per width: SCAN(stride, load, decode).
 * Width 0 (no value yet) scans nothing. */
#define COL_ANCHORED(u) (anchor + unzigzag(u))
#define COL_RAW(u) (u)
#define COL_L1(d, i) ((d)[i])
#define COL_L2(d, i) (((const uint16_t *)(const void *)(d))[i])
#define COL_L4(d, i) (((const uint32_t *)(const void *)(d))[i])
#define COL_L5(d, i) load40((d) + (size_t)(i)*5)
#define COL_L8(d, i) (((const int64_t *)(const void *)(d))[i])
#define COL_BY_WIDTH(width, SCAN)                                                                  \
    do {                                                                                           \
        switch (width) {                                                                           \
        case 1:                                                                                    \
            SCAN(1, COL_L1, COL_ANCHORED);                                                         \
            break;                                                                                 \
        case 2:                                                                                    \
            SCAN(2, COL_L2, COL_ANCHORED);                                                         \
            break;                                                                                 \
        case 4:                                                                                    \
            SCAN(4, COL_L4, COL_ANCHORED);                                                         \
            break;                                                                                 \
        case 5:                                                                                    \
            SCAN(5, COL_L5, COL_ANCHORED);                                                         \
            break;                                                                                 \
        case 8:                                                                                    \
            SCAN(8, COL_L8, COL_RAW);                                                              \
            break;                                                                                 \
        default:                                                                                   \
            break;                                                                                 \
        }                                                                                          \
    } while (0)

/* One pass over the tested customers, a loop per column width.  The
 * candidates come in order, a few per page of the column: each read is a
 * cache miss, so the reads PREFETCH_AHEAD entries on are started early to
 * overlap them. */
#define PREFETCH_AHEAD 16
#define RANGE_SCAN(STRIDE, LOAD, DECODE)                                                           \
    do {                                                                                           \
        const uint8_t *data = c->data;                                                             \
        while ((n = roaring_read_uint32_iterator(it, buf, 1024)) > 0) {                            \
            uint32_t k = 0;                                                                        \
            for (uint32_t i = 0; i < n; i++) {                                                     \
                if (i + PREFETCH_AHEAD < n)                                                        \
                    __builtin_prefetch(data + (size_t)buf[i + PREFETCH_AHEAD] * (STRIDE));         \
                int64_t v = DECODE(LOAD(data, buf[i]));                                            \
                keep[k] = buf[i];                                                                  \
                k += v >= lo && v <= hi;                                                           \
            }                                                                                      \
            roaring_bitmap_add_many(out, k, keep);                                                 \
        }                                                                                          \
    } while (0)

roaring_bitmap_t *sy_index_range(const sy_index *ix, const char *attr,
                                 const roaring_bitmap_t *among, int64_t lo, int64_t hi)
{
    const attr_ix *x = attr_find(ix, attr);
    roaring_bitmap_t *out = roaring_bitmap_create();
    if (!x || !is_numeric(x->type) || lo > hi)
        return out;
    roaring_bitmap_t *owned = among ? roaring_bitmap_and(x->present, among) : NULL;
    roaring_uint32_iterator_t *it = roaring_create_iterator(owned ? owned : x->present);
    const column *c = &x->col;
    int64_t anchor = c->anchor;
    uint32_t buf[1024], keep[1024], n;
    COL_BY_WIDTH(c->width, RANGE_SCAN);
    roaring_free_uint32_iterator(it);
    if (owned)
        roaring_bitmap_free(owned);
    return out;
}

/* One pass over an array of ids, a loop per column width: the kept ids move
 * to the front, in order. */
#define KEEP_SCAN(STRIDE, LOAD, DECODE)                                                            \
    do {                                                                                           \
        for (size_t i = 0; i < n; i++) {                                                           \
            if (i + PREFETCH_AHEAD < n)                                                            \
                __builtin_prefetch(data + (size_t)ids[i + PREFETCH_AHEAD] * (STRIDE));             \
            uint32_t id = ids[i];                                                                  \
            int64_t v = DECODE(LOAD(data, id));                                                    \
            ids[k] = id;                                                                           \
            k += v >= lo && v <= hi;                                                               \
        }                                                                                          \
    } while (0)

size_t sy_index_keep_range(const sy_index *ix, const char *attr, uint32_t *ids, size_t n,
                           int64_t lo, int64_t hi)
{
    const attr_ix *x = attr_find(ix, attr);
    if (!x || !is_numeric(x->type) || lo > hi || !x->col.width)
        return 0;
    const column *c = &x->col;
    const uint8_t *data = c->data;
    int64_t anchor = c->anchor;
    size_t k = 0;
    COL_BY_WIDTH(c->width, KEEP_SCAN);
    return k;
}

/* ---- range buckets ---- */

uint32_t sy_index_bucket_min = 1u << 20;

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Builds x's buckets: the quartiles of a sample of its values (up to 4,096
 * customers at even ranks), then one pass over the customers with a value. */
static col_buckets *buckets_build(const attr_ix *x)
{
    uint64_t n = roaring_bitmap_get_cardinality(x->present);
    col_buckets *b = sy_xcalloc(1, sizeof *b);
    if (n == 0)
        return b;
    size_t ns = n < 4096 ? (size_t)n : 4096;
    int64_t *sample = sy_xmalloc(ns * sizeof *sample);
    for (size_t i = 0; i < ns; i++) {
        uint32_t id = 0;
        roaring_bitmap_select(x->present, (uint32_t)(i * n / ns), &id);
        sample[i] = col_get(&x->col, id);
    }
    qsort(sample, ns, sizeof *sample, cmp_i64);
    for (int q = 1; q <= BUCKET_BOUNDS; q++) {
        int64_t v = sample[ns * (size_t)q / (BUCKET_BOUNDS + 1)];
        if (v > sample[0] && (b->n == 0 || v > b->bound[b->n - 1]))
            b->bound[b->n++] = v; /* the smallest value would bound everyone */
    }
    free(sample);
    for (int i = 0; i < b->n; i++)
        b->ge[i] = roaring_bitmap_create();
    enum { CHUNK = 4096 };
    uint32_t *ids = sy_xmalloc(CHUNK * sizeof *ids), *keep = sy_xmalloc(CHUNK * sizeof *keep);
    roaring_uint32_iterator_t *it = roaring_create_iterator(x->present);
    uint32_t got;
    while ((got = roaring_read_uint32_iterator(it, ids, CHUNK)) > 0)
        for (int i = 0; i < b->n; i++) {
            size_t k = 0;
            for (uint32_t j = 0; j < got; j++) {
                keep[k] = ids[j];
                k += col_get(&x->col, ids[j]) >= b->bound[i];
            }
            roaring_bitmap_add_many(b->ge[i], k, keep);
        }
    roaring_free_uint32_iterator(it);
    free(ids);
    free(keep);
    for (int i = 0; i < b->n; i++) {
        roaring_bitmap_run_optimize(b->ge[i]);
        roaring_bitmap_shrink_to_fit(b->ge[i]);
    }
    return b;
}

/* x's buckets, built now if need be (the caller holds the read lock, so no
 * change runs meanwhile; other readers may be building too). */
static const col_buckets *buckets_of(const sy_index *ix, const attr_ix *x)
{
    col_buckets *b = atomic_load_explicit(&((attr_ix *)x)->buckets, memory_order_acquire);
    if (b)
        return b;
    pthread_mutex_lock(&((sy_index *)ix)->bucket_mu);
    b = atomic_load_explicit(&((attr_ix *)x)->buckets, memory_order_acquire);
    if (!b) {
        b = buckets_build(x);
        atomic_store_explicit(&((attr_ix *)x)->buckets, b, memory_order_release);
    }
    pthread_mutex_unlock(&((sy_index *)ix)->bucket_mu);
    return b;
}

bool sy_index_range_cover(const sy_index *ix, const char *attr, int64_t lo, int64_t hi,
                          sy_range_cover *out)
{
    const attr_ix *x = attr_find(ix, attr);
    if (!x || !is_numeric(x->type) || ix->size < sy_index_bucket_min || lo > hi)
        return false;
    const col_buckets *b = buckets_of(ix, x);
    const roaring_bitmap_t *const *ge = (const roaring_bitmap_t *const *)b->ge;
    memset(out, 0, sizeof *out);
    int in = -1, in_not = -1, may = -1, may_not = -1; /* -1: the present, or none */
    for (int i = 0; i < b->n; i++) {
        if (in < 0 && b->bound[i] >= lo)
            in = i; /* the smallest bound >= lo: all of ge[in] are >= lo */
        if (hi < INT64_MAX && b->bound[i] <= hi + 1)
            in_not = i; /* the largest bound <= hi + 1: ge[in_not] holds all > hi */
        if (b->bound[i] <= lo)
            may = i; /* the largest bound <= lo: ge[may] holds all >= lo */
        if (may_not < 0 && b->bound[i] > hi)
            may_not = i; /* the smallest bound > hi: none of ge[may_not] is <= hi */
    }
    if (in >= 0)
        out->in = ge[in];
    else if (lo == INT64_MIN)
        out->in = x->present;
    if (hi < INT64_MAX) {
        if (in_not >= 0)
            out->in_not = ge[in_not];
        else
            out->in = NULL; /* only the present hold all > hi: nobody is certain */
    }
    if (!out->in || (in >= 0 && in_not >= 0 && in >= in_not))
        out->in = out->in_not = NULL; /* nobody known, or in lies within in_not */
    out->may = may >= 0 ? ge[may] : x->present;
    out->may_not = may_not >= 0 ? ge[may_not] : NULL;
    return true;
}

void sy_index_days(const sy_index *ix, const char *name, int64_t from_day, int64_t to_day,
                   sy_index_day_fn fn, void *ud)
{
    uint32_t e;
    if (!strmap_get(&ix->event_names, name, &e))
        return;
    const event_ix *ev = ix->events[e];
    for (size_t i = 0; i < ev->n; i++)
        if (ev->days[i]->day >= from_day && ev->days[i]->day <= to_day)
            fn(ev->days[i]->day, ev->days[i], ud);
}

/* ---- timed events ---- */

bool sy_timed_spec_valid(const json_t *spec)
{
    if (!json_is_array(spec) || json_array_size(spec) > SY_TIMED_MAX)
        return false;
    size_t n = json_array_size(spec);
    for (size_t i = 0; i < n; i++) {
        const char *s = json_string_value(json_array_get(spec, i));
        if (!s)
            return false;
        if (!strcmp(s, "*")) {
            if (n != 1)
                return false;
            continue;
        }
        if (!sy_ident_valid(s, 64))
            return false;
        for (size_t j = 0; j < i; j++)
            if (!strcmp(s, json_string_value(json_array_get(spec, j))))
                return false;
    }
    return true;
}

/* Replaces the timed names (the caller holds the write lock or owns ix). */
static void set_timed_names(sy_index *ix, const json_t *spec)
{
    for (size_t i = 0; i < ix->ntimed; i++)
        free(ix->timed[i]);
    free(ix->timed);
    ix->timed = NULL;
    ix->ntimed = 0;
    ix->timed_all = false;
    size_t n = json_array_size(spec);
    if (n == 1 && !strcmp(json_string_value(json_array_get(spec, 0)), "*")) {
        ix->timed_all = true;
        return;
    }
    ix->timed = sy_xcalloc(n ? n : 1, sizeof *ix->timed);
    for (size_t i = 0; i < n; i++)
        ix->timed[ix->ntimed++] = sy_xstrdup(json_string_value(json_array_get(spec, i)));
}

int sy_timed_spec_read(sy_conn *c, const char *tenant, json_t **spec)
{
    static const char sql[] = "SELECT timed_events FROM tenants WHERE id = $1";
    *spec = NULL;
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    int rc = sy_stmt_step(st);
    if (rc == SY_ROW) {
        *spec = json_loads(sy_stmt_text(st, 0), 0, NULL);
        if (*spec && !sy_timed_spec_valid(*spec)) {
            json_decref(*spec);
            *spec = NULL;
        }
        if (!*spec)
            *spec = json_pack("[s]", "*");
    }
    sy_stmt_reset(st);
    return rc == SY_ROW || rc == SY_DONE ? SY_OK : rc;
}

/* The stored setting; every name when the tenant's row is missing or
 * cannot be read. */
static void read_timed_setting(sy_index *ix, sy_conn *c, const char *tenant)
{
    json_t *spec = NULL;
    if (sy_timed_spec_read(c, tenant, &spec) != SY_OK || !spec) {
        json_decref(spec);
        spec = json_pack("[s]", "*");
    }
    set_timed_names(ix, spec);
    json_decref(spec);
}

static const char sql_retime_sqlite[] = "SELECT customer_no, name, ts, dwell_ms FROM events"
                                        " WHERE rowid <= $2 AND tenant_id || '' = $1";

int sy_index_retime(sy_index *ix, sy_conn *c, const char *tenant, const json_t *spec,
                    int64_t max_rowid)
{
    /* What each known event becomes, judged by the new setting. */
    sy_index probe = {.timed_all = false};
    set_timed_names(&probe, spec);
    pthread_rwlock_rdlock(&ix->lock);
    uint32_t ne = ix->nevents;
    bool *want = sy_xcalloc(ne ? ne : 1, sizeof *want), scan = false;
    for (size_t i = 0; i < ix->event_names.cap; i++)
        if (ix->event_names.keys[i]) {
            uint32_t e = ix->event_names.vals[i];
            want[e] = name_timed(&probe, ix->event_names.keys[i]);
            scan |= want[e] && !ix->events[e]->timed;
        }
    /* The newly timed events' times, by event and position of the day. */
    day_times ***pending = sy_xcalloc(ne ? ne : 1, sizeof *pending);
    for (uint32_t e = 0; e < ne; e++)
        if (want[e] && !ix->events[e]->timed)
            pending[e] = sy_xcalloc(ix->events[e]->n ? ix->events[e]->n : 1, sizeof **pending);
    int rc = SY_DONE;
    sy_stmt *st = scan ? sy_conn_prepare(c, sql_retime_sqlite) : NULL;
    if (scan && !st)
        rc = SY_ERR;
    if (st) {
        sy_stmt_bind_text(st, 1, tenant);
        sy_stmt_bind_i64(st, 2, max_rowid);
        while ((rc = sy_stmt_step(st)) == SY_ROW) {
            uint32_t e, dense;
            if (!strmap_get(&ix->event_names, sy_stmt_text(st, 1), &e) || !pending[e] ||
                !dict_get(&ix->customers, sy_stmt_text(st, 0), &dense) ||
                !roaring_bitmap_contains(ix->all, dense))
                continue;
            int64_t ts = sy_stmt_i64(st, 2), day = sy_index_day(ix, ts);
            const event_ix *ev = ix->events[e];
            size_t at = event_day_pos(ev, day);
            if (at == ev->n || ev->days[at]->day != day)
                continue; /* the index skipped it (a customer merged away then) */
            if (!pending[e][at])
                pending[e][at] = sy_xcalloc(1, sizeof ***pending);
            tlog_push(&pending[e][at]->tail, dense, ms_of_day(ix, ts, day),
                      dwell_of(sy_stmt_is_null(st, 3) ? -1 : sy_stmt_i64(st, 3)));
        }
        sy_stmt_reset(st);
    }
    /* sealed against the days' entries, before anyone waits for it */
    for (uint32_t e = 0; rc == SY_DONE && e < ne; e++)
        for (size_t d = 0; pending[e] && d < ix->events[e]->n; d++)
            if (pending[e][d])
                times_seal_into(ix->events[e]->days[d], pending[e][d]);
    pthread_rwlock_unlock(&ix->lock);
    if (rc == SY_DONE) {
        pthread_rwlock_wrlock(&ix->lock);
        set_timed_names(ix, spec);
        for (uint32_t e = 0; e < ne; e++) {
            event_ix *ev = ix->events[e];
            if (want[e] == ev->timed)
                continue;
            for (size_t d = 0; d < ev->n; d++) {
                times_free(ev->days[d]->times);
                ev->days[d]->times = want[e] ? pending[e][d] : NULL;
                if (want[e])
                    pending[e][d] = NULL;
            }
            ev->timed = want[e];
        }
        pthread_rwlock_unlock(&ix->lock);
    }
    for (uint32_t e = 0; e < ne; e++) {
        for (size_t d = 0; pending[e] && d < ix->events[e]->n; d++)
            times_free(pending[e][d]);
        free(pending[e]);
    }
    free(pending);
    free(want);
    for (size_t i = 0; i < probe.ntimed; i++)
        free(probe.timed[i]);
    free(probe.timed);
    return rc == SY_DONE ? SY_OK : rc;
}

bool sy_index_timed(const sy_index *ix, const char *name)
{
    uint32_t e;
    if (strmap_get(&ix->event_names, name, &e))
        return ix->events[e]->timed;
    return name_timed(ix, name);
}

void sy_index_timed_days(const sy_index *ix, const char *name, int64_t from_day, int64_t to_day,
                         sy_timed_fn fn, void *ud)
{
    uint32_t e;
    if (!strmap_get(&ix->event_names, name, &e))
        return;
    const event_ix *ev = ix->events[e];
    for (size_t i = event_day_pos(ev, from_day); i < ev->n && ev->days[i]->day <= to_day; i++) {
        const struct sy_day_events *d = ev->days[i];
        const day_times *t = d->times;
        if (!t || (!t->nms && !t->tail.n))
            continue;
        sy_timed_day td = {.day = d->day,
                           .sealed_ids = t->off ? day_sealed(d) : NULL,
                           .nsealed = t->off ? t->nsealed : 0,
                           .off = t->off,
                           .sealed_ms = t->ms,
                           .sealed_dwell = t->dwell,
                           .n = t->tail.n,
                           .dense = t->tail.dense,
                           .ms = t->tail.ms,
                           .dwell = t->tail.dwell};
        fn(&td, ud);
    }
}

bool sy_index_event_known(const sy_index *ix, const char *name)
{
    uint32_t e;
    return strmap_get(&ix->event_names, name, &e);
}

void sy_index_event_names(const sy_index *ix, void (*fn)(const char *name, void *ud), void *ud)
{
    for (size_t i = 0; i < ix->event_names.cap; i++)
        if (ix->event_names.keys[i])
            fn(ix->event_names.keys[i], ud);
}

void sy_index_memory_parts(const sy_index *ix, sy_index_mem *m)
{
    memset(m, 0, sizeof *m);
    m->customers = roaring_bitmap_size_in_bytes(ix->all) + dict_memory(&ix->customers);
    for (uint32_t a = 0; a < ix->nattrs; a++) {
        const attr_ix *x = ix->attrs[a];
        for (uint32_t v = 0; v < x->nvalues; v++)
            m->values += roaring_bitmap_size_in_bytes(x->bitmaps[v]);
        m->columns += x->col.used * (size_t)x->col.width;
        if (x->present)
            m->columns += roaring_bitmap_size_in_bytes(x->present);
        const col_buckets *b = atomic_load(&((attr_ix *)x)->buckets);
        for (int i = 0; b && i < b->n; i++)
            m->columns += roaring_bitmap_size_in_bytes(b->ge[i]);
    }
    for (uint32_t e = 0; e < ix->nevents; e++)
        for (size_t d = 0; d < ix->events[e]->n; d++) {
            const struct sy_day_events *day = ix->events[e]->days[d];
            size_t all = day_memory(day), actors = roaring_bitmap_size_in_bytes(day->actors);
            m->actors += actors;
            m->entries += all - actors;
            m->times += times_memory(day->times);
        }
    for (size_t t = 0; t < ix->ntags; t++)
        if (ix->tags[t].members)
            m->tags += roaring_bitmap_size_in_bytes(ix->tags[t].members);
}

size_t sy_index_memory(const sy_index *ix)
{
    sy_index_mem m;
    sy_index_memory_parts(ix, &m);
    return m.customers + m.values + m.columns + m.actors + m.entries + m.times + m.tags;
}

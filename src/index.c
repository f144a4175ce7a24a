/* index.c — the per-tenant in-memory indexes (see index.h). */
#include "index.h"
#include "util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* ---- per (event, day): actors with counts and dwell sums ---- */

typedef struct stat_slot {
    uint32_t dense_plus1; /* 0 = empty */
    uint32_t count;
    uint64_t dwell_ms;
} stat_slot;

struct sy_day_events {
    int64_t day;
    roaring_bitmap_t *actors;
    stat_slot *slots;
    size_t cap, n;
};

static stat_slot *day_slot(struct sy_day_events *d, uint32_t dense, bool create)
{
    if (create && (d->n + 1) * 4 > d->cap * 3) {
        stat_slot *old = d->slots;
        size_t oldcap = d->cap;
        d->cap = oldcap ? oldcap * 2 : 16;
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

const roaring_bitmap_t *sy_day_actors(const sy_day_events *d)
{
    return d->actors;
}

void sy_day_stats(const sy_day_events *d, uint32_t dense, uint32_t *count, uint64_t *dwell_ms)
{
    stat_slot *s = day_slot((struct sy_day_events *)d, dense, false);
    *count = s ? s->count : 0;
    *dwell_ms = s ? s->dwell_ms : 0;
}

void sy_day_add_sums(const sy_day_events *d, uint64_t *sums, bool dwell)
{
    for (size_t i = 0; i < d->cap; i++)
        if (d->slots[i].dense_plus1)
            sums[d->slots[i].dense_plus1 - 1] += dwell ? d->slots[i].dwell_ms : d->slots[i].count;
}

size_t sy_day_size(const sy_day_events *d)
{
    return d->n;
}

typedef struct event_ix {
    sy_day_events **days; /* sorted by day */
    size_t n, cap;
} event_ix;

static sy_day_events *event_day(event_ix *e, int64_t day)
{
    size_t lo = 0, hi = e->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (e->days[mid]->day < day)
            lo = mid + 1;
        else
            hi = mid;
    }
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

typedef struct attr_ix {
    sy_attr_type type;
    int scale;
    /* categorical */
    strmap values;
    char **value_names;
    roaring_bitmap_t **bitmaps;
    uint32_t nvalues, capvalues;
    /* numeric */
    int64_t *col;
    size_t colcap;
    roaring_bitmap_t *present;
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
    strmap customers;
    char **no_of;
    uint32_t size, capno;
    roaring_bitmap_t *all;
    strmap attr_names;
    attr_ix **attrs;
    uint32_t nattrs;
    strmap event_names;
    event_ix **events;
    uint32_t nevents;
};

sy_index *sy_index_new(int64_t tz_offset_ms)
{
    sy_index *ix = sy_xcalloc(1, sizeof *ix);
    pthread_rwlock_init(&ix->lock, NULL);
    ix->tz_offset_ms = tz_offset_ms;
    ix->all = roaring_bitmap_create();
    return ix;
}

void sy_index_free(sy_index *ix)
{
    if (!ix)
        return;
    for (uint32_t i = 0; i < ix->size; i++)
        free(ix->no_of[i]);
    free(ix->no_of);
    strmap_free(&ix->customers);
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
        free(x->col);
        if (x->present)
            roaring_bitmap_free(x->present);
        free(x);
    }
    free(ix->attrs);
    strmap_free(&ix->attr_names);
    for (uint32_t e = 0; e < ix->nevents; e++) {
        for (size_t d = 0; d < ix->events[e]->n; d++) {
            sy_day_events *de = ix->events[e]->days[d];
            roaring_bitmap_free(de->actors);
            free(de->slots);
            free(de);
        }
        free(ix->events[e]->days);
        free(ix->events[e]);
    }
    free(ix->events);
    strmap_free(&ix->event_names);
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

/* The categorical key of a canonical value ("R3", "true", "上海"). */
static const char *category_of(const json_t *v, char *buf, size_t n)
{
    if (json_is_boolean(v))
        return json_is_true(v) ? "true" : "false";
    if (json_is_string(v))
        return json_string_value(v);
    snprintf(buf, n, "%lld", (long long)json_integer_value(v));
    return buf;
}

/* The integer of a canonical numeric value: integer as is, number scaled,
 * date as days. */
static bool numeric_of(const attr_ix *x, const json_t *v, int64_t *out)
{
    if (x->type == SY_ATTR_INTEGER && json_is_integer(v)) {
        *out = json_integer_value(v);
        return true;
    }
    if (x->type == SY_ATTR_DATE && json_is_string(v))
        return sy_parse_date(json_string_value(v), out);
    if (x->type == SY_ATTR_NUMBER && json_is_string(v)) {
        /* canonical text has exactly `scale` decimals */
        const char *s = json_string_value(v);
        char digits[40];
        size_t o = 0;
        for (; *s && o < sizeof digits - 1; s++)
            if (*s != '.')
                digits[o++] = *s;
        digits[o] = '\0';
        return sy_parse_i64(digits, INT64_MIN, INT64_MAX, out);
    }
    return false;
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
    if (dense >= x->colcap) {
        size_t cap = x->colcap ? x->colcap : 1024;
        while (cap <= dense)
            cap *= 2;
        x->col = sy_xrealloc(x->col, cap * sizeof *x->col);
        memset(x->col + x->colcap, 0, (cap - x->colcap) * sizeof *x->col);
        x->colcap = cap;
    }
    x->col[dense] = v;
    roaring_bitmap_add(x->present, dense);
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
        attr_ix *x = attr_of(ix, d);
        char b1[32], b2[32];
        if (is_numeric(x->type)) {
            int64_t v;
            if (nv && numeric_of(x, nv, &v))
                num_set(x, dense, v);
            else
                roaring_bitmap_remove(x->present, dense);
        } else {
            if (ov)
                cat_set(x, category_of(ov, b1, sizeof b1), dense, false);
            if (nv)
                cat_set(x, category_of(nv, b2, sizeof b2), dense, true);
        }
    }
}

static void add_customer_locked(sy_index *ix, const char *no, uint32_t dense)
{
    if (dense >= ix->capno) {
        uint32_t cap = ix->capno ? ix->capno : 1024;
        while (cap <= dense)
            cap *= 2;
        ix->no_of = sy_xrealloc(ix->no_of, cap * sizeof *ix->no_of);
        memset(ix->no_of + ix->capno, 0, (cap - ix->capno) * sizeof *ix->no_of);
        ix->capno = cap;
    }
    if (!ix->no_of[dense])
        ix->no_of[dense] = sy_xstrdup(no);
    if (dense >= ix->size)
        ix->size = dense + 1;
    strmap_put(&ix->customers, no, dense);
    roaring_bitmap_add(ix->all, dense);
}

static void add_event_locked(sy_index *ix, uint32_t dense, const char *name, int64_t ts,
                             int64_t dwell_ms)
{
    uint32_t e;
    if (!strmap_get(&ix->event_names, name, &e)) {
        ix->events = sy_xrealloc(ix->events, (ix->nevents + 1) * sizeof *ix->events);
        ix->events[ix->nevents] = sy_xcalloc(1, sizeof **ix->events);
        e = ix->nevents++;
        strmap_put(&ix->event_names, name, e);
    }
    sy_day_events *d = event_day(ix->events[e], sy_index_day(ix, ts));
    roaring_bitmap_add(d->actors, dense);
    stat_slot *s = day_slot(d, dense, true);
    s->count++;
    if (dwell_ms > 0)
        s->dwell_ms += (uint64_t)dwell_ms;
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
        if (strmap_get(&ix->customers, customer_no[i], &dense) &&
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
            stat_slot *src = day_slot(de, from, false);
            uint32_t count = src ? src->count : 0;
            uint64_t dwell = src ? src->dwell_ms : 0;
            if (src)
                src->count = 0, src->dwell_ms = 0;
            stat_slot *dst = day_slot(de, into, true);
            dst->count += count;
            dst->dwell_ms += dwell;
            roaring_bitmap_remove(de->actors, from);
            roaring_bitmap_add(de->actors, into);
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
        if (t && t->members && strmap_get(&ix->customers, sy_stmt_text(st, 1), &dense))
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

int sy_index_rebuild(sy_index *ix, sy_conn *c, const char *tenant, const sy_attr_set *schema)
{
    /* `tenant_id || ''` keeps SQLite from answering through an index:
     * that would fetch every row by rowid, in random order, where a scan
     * of the table in storage order is several times faster. */
    static const char sql_c[] = "SELECT customer_no, dense_id, attrs FROM customers"
                                " WHERE tenant_id || '' = $1 AND merged_into IS NULL";
    static const char sql_e[] = "SELECT customer_no, name, ts, dwell_ms FROM events"
                                " WHERE tenant_id || '' = $1";
    pthread_rwlock_wrlock(&ix->lock);
    int rc = SY_ERR;
    sy_stmt *st = sy_conn_prepare(c, sql_c);
    if (st) {
        sy_stmt_bind_text(st, 1, tenant);
        while ((rc = sy_stmt_step(st)) == SY_ROW) {
            uint32_t dense = (uint32_t)sy_stmt_i64(st, 1);
            add_customer_locked(ix, sy_stmt_text(st, 0), dense);
            json_t *attrs = json_loads(sy_stmt_text(st, 2), 0, NULL);
            if (attrs)
                update_attrs_locked(ix, dense, schema, NULL, attrs);
            json_decref(attrs);
        }
        sy_stmt_reset(st);
    }
    if (rc == SY_DONE && (st = sy_conn_prepare(c, sql_e)) != NULL) {
        sy_stmt_bind_text(st, 1, tenant);
        while ((rc = sy_stmt_step(st)) == SY_ROW) {
            uint32_t dense;
            if (strmap_get(&ix->customers, sy_stmt_text(st, 0), &dense))
                add_event_locked(ix, dense, sy_stmt_text(st, 1), sy_stmt_i64(st, 2),
                                 sy_stmt_is_null(st, 3) ? -1 : sy_stmt_i64(st, 3));
        }
        sy_stmt_reset(st);
    }
    if (rc == SY_DONE)
        rc = load_catalog_locked(ix, c, tenant) == SY_OK ? SY_DONE : SY_ERR;
    roaring_bitmap_run_optimize(ix->all);
    pthread_rwlock_unlock(&ix->lock);
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
    return strmap_get(&ix->customers, customer_no, dense);
}

const char *sy_index_customer_no(const sy_index *ix, uint32_t dense)
{
    return dense < ix->size ? ix->no_of[dense] : NULL;
}

int64_t sy_index_day(const sy_index *ix, int64_t ts_ms)
{
    int64_t local = ts_ms + ix->tz_offset_ms;
    return local >= 0 ? local / 86400000 : -((-local + 86399999) / 86400000);
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

const int64_t *sy_index_column(const sy_index *ix, const char *attr,
                               const roaring_bitmap_t **present)
{
    const attr_ix *x = attr_find(ix, attr);
    if (!x || !is_numeric(x->type)) {
        *present = NULL;
        return NULL;
    }
    *present = x->present;
    return x->col;
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

size_t sy_index_memory(const sy_index *ix)
{
    size_t n = roaring_bitmap_size_in_bytes(ix->all) + ix->capno * sizeof(char *) +
               ix->customers.cap * (sizeof(char *) + 4) + (size_t)ix->size * 16;
    for (uint32_t a = 0; a < ix->nattrs; a++) {
        const attr_ix *x = ix->attrs[a];
        for (uint32_t v = 0; v < x->nvalues; v++)
            n += roaring_bitmap_size_in_bytes(x->bitmaps[v]);
        n += x->colcap * sizeof(int64_t);
        if (x->present)
            n += roaring_bitmap_size_in_bytes(x->present);
    }
    for (uint32_t e = 0; e < ix->nevents; e++)
        for (size_t d = 0; d < ix->events[e]->n; d++)
            n += roaring_bitmap_size_in_bytes(ix->events[e]->days[d]->actors) +
                 ix->events[e]->days[d]->cap * sizeof(stat_slot);
    return n;
}

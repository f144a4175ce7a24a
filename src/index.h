/* index.h — a tenant's in-memory indexes over its customers and events.
 *
 * Everything here is derived: rebuilt from the store at start
 * (sy_index_rebuild) and kept current by the writer after each commit.
 *
 *   dense ids     customer number <-> uint32 0, 1, 2 ... (the store's
 *                 dense_id), the index of every bitmap and column;
 *   categorical   enum, bool and string attributes: one Roaring bitmap per
 *                 distinct value;
 *   numeric       integer, number and date attributes: a column by dense id
 *                 (packed to 1, 2, 4 or 8 bytes a value), with a bitmap of
 *                 the customers that have a value;
 *   behaviour     per (event name, business day): a bitmap of the customers
 *                 who did it, and per customer the count and the dwell sum
 *                 (compact arrays in the bitmap's order, plus a small table
 *                 of the day's newest actors).
 *   times         for the event names the tenant times (its timed_events
 *                 setting, all by default): per (event name, business day)
 *                 each event's time of day and dwell time, runs aligned
 *                 with the sealed entries plus a tail of newer events, for
 *                 funnels and dwell percentiles (about 4 bytes an event, 8
 *                 with a dwell time, and 4 an entry).
 *
 * Business days are in the tenant's time zone (its UTC offset, taken when
 * the index is built).  Each index has one reader-writer lock: queries take
 * it shared, updates exclusive. */
#ifndef SY_INDEX_H
#define SY_INDEX_H

#include "attr.h"
#include "segment_parse.h"
#include "store.h"

#include <jansson.h>
#include <roaring/roaring.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct sy_index sy_index;

#define SY_DAY_MS 86400000LL
/* A timed event's dwell time when it has none. */
#define SY_NO_DWELL UINT32_MAX

/* An empty index, timing every event name (a rebuild reads the tenant's
 * timed_events setting).
 * tz_offset_ms: the tenant's offset from UTC. */
sy_index *sy_index_new(int64_t tz_offset_ms);
void sy_index_free(sy_index *ix);

/* What a rebuild read, and when each part was done (ms from the start). */
typedef struct sy_index_load {
    int64_t customers, events;
    double customers_ms, events_ms;
} sy_index_load;

/* Rebuilds from the store: customers and their packed attributes
 * (customer_packed), then their events.  With a second connection c2 (may
 * be NULL) a thread reads events on it from the start, and c's thread
 * joins it when the customers are done: both take ranges of the events
 * table until none is left.  Returns SY_OK or a store error; fills *load
 * when it is not NULL. */
int sy_index_rebuild(sy_index *ix, sy_conn *c, sy_conn *c2, const char *tenant,
                     const sy_attr_set *schema, sy_index_load *load);

/* Gives back the growth slack of the bitmaps and run-encodes them where
 * that is smaller, as the end of a rebuild does: for an index built through
 * the update calls below (tests, benchmarks).  Takes the exclusive lock. */
void sy_index_compact(sy_index *ix);

/* ---- updates (exclusive lock taken inside) ---- */
/* Registers a customer's dense id (new customers). */
void sy_index_add_customer(sy_index *ix, const char *customer_no, uint32_t dense);
/* Replaces a customer's attribute values: old and new are the canonical
 * attribute objects before and after the change (old may be NULL). */
void sy_index_update_attrs(sy_index *ix, uint32_t dense, const sy_attr_set *schema,
                           const json_t *old_attrs, const json_t *new_attrs);
/* Customer from was merged into customer into: from leaves the index (its
 * attributes, given as they were, are removed) and its behaviour and manual
 * tag memberships become into's. */
void sy_index_merge(sy_index *ix, const sy_attr_set *schema, uint32_t from,
                    const json_t *from_attrs, uint32_t into);
/* Records a batch of events under one lock; customers not in the index (or
 * merged into another) are skipped.  dwell_ms[i] < 0: none. */
void sy_index_add_events(sy_index *ix, size_t n, const char *const *customer_no,
                         const char *const *name, const int64_t *ts_ms, const int64_t *dwell_ms);
/* Records one event (dwell_ms < 0: none). */
void sy_index_add_event(sy_index *ix, uint32_t dense, const char *name, int64_t ts_ms,
                        int64_t dwell_ms);

/* ---- reads ---- */
void sy_index_rdlock(sy_index *ix);
void sy_index_unlock(sy_index *ix);
/* Under the read lock: */
uint32_t sy_index_size(const sy_index *ix); /* dense ids in use: 0 .. size-1 */
const roaring_bitmap_t *sy_index_all(const sy_index *ix);
/* The dense id of a customer number; also for a customer that was merged
 * into another (no longer in sy_index_all). */
bool sy_index_dense(const sy_index *ix, const char *customer_no, uint32_t *dense);
const char *sy_index_customer_no(const sy_index *ix, uint32_t dense);
/* The business day (days since 1970-01-01 in the tenant's zone) of a time. */
int64_t sy_index_day(const sy_index *ix, int64_t ts_ms);

/* Categorical attributes: the bitmap of customers whose value is value, or
 * NULL; and iteration over the distinct values. */
const roaring_bitmap_t *sy_index_value(const sy_index *ix, const char *attr, const char *value);
typedef void (*sy_index_value_fn)(const char *value, const roaring_bitmap_t *b, void *ud);
void sy_index_values(const sy_index *ix, const char *attr, sy_index_value_fn fn, void *ud);
/* Numeric attributes: who has a value (NULL: no such attribute); one
 * customer's value; and the customers among `among` (NULL: everyone with a
 * value) whose value lies in [lo, hi], by one pass over those rows. */
const roaring_bitmap_t *sy_index_present(const sy_index *ix, const char *attr);
bool sy_index_numeric(const sy_index *ix, const char *attr, uint32_t dense, int64_t *v);
roaring_bitmap_t *sy_index_range(const sy_index *ix, const char *attr,
                                 const roaring_bitmap_t *among, int64_t lo, int64_t hi);
/* Keeps, of the n dense ids in ids (ascending, each with a value of attr:
 * the caller has intersected them with sy_index_present), those whose value
 * lies in [lo, hi]; they move to the front, in order, and their number is
 * returned.  One pass over the column's entries of those ids, prefetched. */
size_t sy_index_keep_range(const sy_index *ix, const char *attr, uint32_t *ids, size_t n,
                           int64_t lo, int64_t hi);
/* Range buckets of a numeric attribute: bitmaps of the customers whose
 * value is at least each of a few bounds (the quartiles of its values when
 * first asked for), so that a range predicate over a large tenant reads a
 * bitmap for most customers and gathers column entries only for those whose
 * value lies between two bounds.  Built on first use for a tenant of
 * sy_index_bucket_min customers or more (the caller holds the read lock;
 * the build is serialised inside), kept up to date by every change.
 * sy_index_range_cover describes [lo, hi] by them: every customer in
 * `in` and not in `in_not` has a value in the range (in NULL: none known;
 * in_not NULL: none to take out); every customer with a value in the range
 * is in `may` and not in `may_not` (may_not NULL: none to take out).
 * False when attr has no buckets (not numeric, or the tenant is smaller). */
typedef struct sy_range_cover {
    const roaring_bitmap_t *in, *in_not, *may, *may_not;
} sy_range_cover;
extern uint32_t sy_index_bucket_min;
bool sy_index_range_cover(const sy_index *ix, const char *attr, int64_t lo, int64_t hi,
                          sy_range_cover *out);
/* Behaviour: for each day in [from_day, to_day] with events named name,
 * fn is called with the day's actors and per-actor counts and dwell sums. */
typedef struct sy_day_events sy_day_events;
const roaring_bitmap_t *sy_day_actors(const sy_day_events *d);
/* Count and dwell sum (ms) of customer dense on that day (0 if none). */
void sy_day_stats(const sy_day_events *d, uint32_t dense, uint32_t *count, uint64_t *dwell_ms);
/* Adds every customer's count (or dwell sum) on that day to sums[dense]:
 * one sequential pass over the day's table, for window sums. */
void sy_day_add_sums(const sy_day_events *d, uint64_t *sums, bool dwell);
/* How many customers have an entry on that day. */
size_t sy_day_size(const sy_day_events *d);
typedef void (*sy_index_day_fn)(int64_t day, const sy_day_events *d, void *ud);
void sy_index_days(const sy_index *ix, const char *name, int64_t from_day, int64_t to_day,
                   sy_index_day_fn fn, void *ud);

/* ---- timed events: each event's time, for funnels and dwell ---- */
/* Whether spec, the tenant's timed_events setting, is valid: a JSON array
 * of distinct event names (at most SY_TIMED_MAX), or ["*"] for all. */
#define SY_TIMED_MAX 200
bool sy_timed_spec_valid(const json_t *spec);
/* Reads the tenant's setting as stored (migration 0015) into *spec, a new
 * reference: NULL when there is no such tenant, ["*"] when the stored value
 * is not valid.  Returns SY_OK or a store error. */
int sy_timed_spec_read(sy_conn *c, const char *tenant, json_t **spec);
/* Changes the timed names of a filled index: the names no longer timed
 * drop their records; the names newly timed get theirs from the tenant's
 * events in the store with rowid <= max_rowid, read on c (one scan of the
 * events table).  Call it from the thread that updates the index (the
 * writer), with max_rowid the events' largest rowid when the change was
 * made in that thread's order of changes, so that no event is recorded
 * twice or missed.  Returns SY_OK or a store error (the index is then
 * unchanged). */
int sy_index_retime(sy_index *ix, sy_conn *c, const char *tenant, const json_t *spec,
                    int64_t max_rowid);
/* Under the read lock: whether name's events are timed. */
bool sy_index_timed(const sy_index *ix, const char *name);
/* One day's times of a timed event, in two parts.  Sealed: the i-th
 * customer of sealed_ids (i < nsealed, in ascending id order) did it at
 * sealed_ms[off[i] .. off[i + 1]) after the business day's start,
 * ascending, with sealed_dwell[] alongside (SY_NO_DWELL: none; NULL: no
 * event has one).  A sealed customer no longer in sy_index_all (merged
 * away) has a run that is also in the survivor's.  Tail: n newer events,
 * unordered, by dense[k] at ms[k] with dwell[k] (dwell NULL: none has
 * one); a customer may have events in both parts. */
typedef struct sy_timed_day {
    int64_t day;
    const roaring_bitmap_t *sealed_ids; /* NULL: nothing sealed */
    size_t nsealed;
    const uint32_t *off, *sealed_ms, *sealed_dwell;
    size_t n;
    const uint32_t *dense, *ms, *dwell;
} sy_timed_day;
typedef void (*sy_timed_fn)(const sy_timed_day *td, void *ud);
/* For each day in [from_day, to_day] with records of name, in day order. */
void sy_index_timed_days(const sy_index *ix, const char *name, int64_t from_day, int64_t to_day,
                         sy_timed_fn fn, void *ud);

/* Under the read lock: whether any event of that name was recorded. */
bool sy_index_event_known(const sy_index *ix, const char *name);
/* Every event name the index has seen, in no particular order. */
void sy_index_event_names(const sy_index *ix, void (*fn)(const char *name, void *ud), void *ud);

/* ---- tags and saved segments, held with the index ---- */
typedef struct sy_index_tag {
    const char *name;
    const char *category; /* basic, behaviour, preference, value */
    bool rule;
    const char *expression;          /* rule tags */
    const sy_seg_node *ast;          /* rule tags */
    const roaring_bitmap_t *members; /* manual tags */
} sy_index_tag;

/* Defines or redefines a tag; ast (rule tags) is taken over. */
void sy_index_tag_define(sy_index *ix, const char *name, const char *category, bool rule,
                         const char *expression, sy_seg_node *ast);
void sy_index_tag_drop(sy_index *ix, const char *name);
void sy_index_tag_member(sy_index *ix, const char *tag, uint32_t dense, bool add);
/* Defines or redefines a saved segment; ast is taken over. */
void sy_index_segment_define(sy_index *ix, const char *id, const char *expression,
                             sy_seg_node *ast);
void sy_index_segment_drop(sy_index *ix, const char *id);
/* Under the read lock: */
bool sy_index_tag_get(const sy_index *ix, const char *name, sy_index_tag *out);
void sy_index_tags(const sy_index *ix, void (*fn)(const sy_index_tag *t, void *ud), void *ud);
const sy_seg_node *sy_index_segment(const sy_index *ix, const char *id);

/* Resident size of the index's structures, in bytes (approximate). */
size_t sy_index_memory(const sy_index *ix);
/* The same, by part. */
typedef struct sy_index_mem {
    size_t customers; /* the dictionary and the bitmap of everyone */
    size_t values;    /* categorical attributes' value bitmaps */
    size_t columns;   /* numeric attributes' columns and presence bitmaps */
    size_t actors;    /* behaviour: who did what on which day */
    size_t entries;   /* behaviour: their counts and dwell sums */
    size_t times;     /* timed events: each event's time and dwell */
    size_t tags;
} sy_index_mem;
void sy_index_memory_parts(const sy_index *ix, sy_index_mem *m);

/* ---- the registry: one index per tenant, for the server ---- */
typedef struct sy_indexes sy_indexes;
typedef struct sy_tenants sy_tenants;
typedef struct sy_schemas sy_schemas;
sy_indexes *sy_indexes_new(sy_store *s, sy_tenants *t, sy_schemas *sc);
void sy_indexes_free(sy_indexes *r);
/* Builds the index of every tenant (at start).  Returns SY_OK or an error. */
int sy_indexes_build_all(sy_indexes *r);
/* The tenant's index, built on first use (a tenant created meanwhile by
 * the command line).  NULL on a store error.  Valid until the registry is
 * freed. */
sy_index *sy_indexes_get(sy_indexes *r, const char *tenant);

#endif

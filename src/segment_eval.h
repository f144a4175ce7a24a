/* segment_eval.h — evaluates a parsed segment expression over a tenant's
 * index into the bitmap of matching customers (dense ids).
 *
 * Semantics (docs/segments.md): a predicate on an attribute a customer does
 * not have is false (select those with `is null`); `not` is the complement
 * within the tenant's customers; enum values compare by their order in the
 * definition; number literals must have at most the attribute's scale of
 * decimals and compare exactly; did()/dwell() and `within` count whole
 * business days in the tenant's time zone, the current one and the W-1
 * before it. */
#ifndef SY_SEGMENT_EVAL_H
#define SY_SEGMENT_EVAL_H

#include "attr.h"
#include "index.h"
#include "segment_parse.h"

#include <roaring/roaring.h>

typedef struct sy_seg_ctx {
    const sy_index *ix; /* read-locked by the caller */
    const sy_attr_set *schema;
    int64_t now_ms;
    /* Members of a tag or a saved segment; NULL when there is none of that
     * name.  The bitmap stays owned by the resolver. */
    const roaring_bitmap_t *(*tag)(void *ud, const char *name);
    const roaring_bitmap_t *(*segment)(void *ud, const char *name);
    void *ud;
} sy_seg_ctx;

/* A new bitmap of the matching dense ids (free with roaring_bitmap_free),
 * or NULL with err set (position and message) for an expression that does
 * not fit the schema: unknown attribute, tag or segment, a literal of the
 * wrong type, an unknown enum value, too many decimals. */
roaring_bitmap_t *sy_seg_eval(const sy_seg_ctx *cx, const sy_seg_node *n, sy_seg_error *err);

/* Evaluates with tag() and segment() resolved from the index's catalogue:
 * manual tags by their members, rule tags and saved segments by evaluating
 * their own expressions (each once per evaluation).  The caller holds the
 * index's read lock. */
roaring_bitmap_t *sy_seg_eval_index(const sy_index *ix, const sy_attr_set *schema, int64_t now_ms,
                                    const sy_seg_node *n, sy_seg_error *err);
/* The same, among the customers of `among` only (the answer is a subset of
 * it): one customer's membership costs a lookup per term, not a scan.
 * References to tags and segments are evaluated among them too. */
roaring_bitmap_t *sy_seg_eval_index_among(const sy_index *ix, const sy_attr_set *schema,
                                          int64_t now_ms, const sy_seg_node *n,
                                          const roaring_bitmap_t *among, sy_seg_error *err);
/* Tenants of at least this many customers are evaluated in two halves at
 * once, on two threads (sy_seg_eval_index, sy_seg_eval_parallel).  Tests
 * lower it. */
extern uint32_t sy_seg_parallel_min;

/* Evaluate an and-chain of bitmaps and numeric ranges in one pass over the
 * bitmaps' containers (default true; tests compare both ways). */
extern bool sy_seg_fuse;

/* sy_seg_eval among the customers of `among` (NULL: everyone); the answer
 * is a subset of it. */
roaring_bitmap_t *sy_seg_eval_among(const sy_seg_ctx *cx, const sy_seg_node *n,
                                    const roaring_bitmap_t *among, sy_seg_error *err);
/* sy_seg_eval in two halves on two threads when the index holds at least
 * sy_seg_parallel_min dense ids; cx's callbacks must bear being called from
 * both at once. */
roaring_bitmap_t *sy_seg_eval_parallel(const sy_seg_ctx *cx, const sy_seg_node *n,
                                       sy_seg_error *err);

/* Would saving ast as the tag ('t') or segment ('s') named name make a
 * reference cycle?  When it would, *via names the reference that closes
 * it. */
bool sy_seg_would_cycle(const sy_index *ix, char kind, const char *name, const sy_seg_node *ast,
                        const char **via);

#endif

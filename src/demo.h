/* demo.h — a synthetic bank for demos and benchmarks (`siyu demo`). */
#ifndef SY_DEMO_H
#define SY_DEMO_H

#include "pii.h"
#include "store.h"

#include <stdint.h>

typedef struct sy_demo_opts {
    const char *tenant;
    int64_t customers;
    int64_t days;
    int64_t sessions; /* app sessions of an active customer per day (0: 1) */
    uint64_t seed;
    int64_t now_ms; /* the last day generated is the one containing now */
    bool progress;  /* print progress to stderr */
} sy_demo_opts;

typedef struct sy_demo_stats {
    int64_t customers, events, identities;
    int64_t attributes;    /* defined beyond the template (0 for those defined already) */
    int64_t tags;          /* rule and manual tags defined */
    int64_t tag_members;   /* customers put on the manual tags */
    int64_t point_types;   /* point types defined (0 for those defined already) */
    int64_t benefit_items; /* benefit items defined (0 when the tenant had a catalogue) */
} sy_demo_stats;

/* Writes the demo bank into the tenant: its attributes beyond the bank
 * template, its tag catalogue, its point types (as the API defines
 * them; a point type the tenant has already is kept), a benefits catalogue
 * with a points mall (unless the tenant has suppliers already), the customers
 * (attributes, sealed personal data, identities, manual tag memberships)
 * and their events, in large transactions on the write connection.  The
 * tenant must exist and have no customers; attributes it defines already
 * must be defined as the demo's, and it must have none of the demo's tags.
 * Deterministic for a given seed.  Returns SY_OK or a store error (with
 * the reason in err). */
int sy_demo_generate(sy_store *s, const sy_pii_keys *k, const sy_demo_opts *o, sy_demo_stats *out,
                     char *err, size_t errlen);

#endif

/* report.h — activity and retention, counted exactly from the index's
 * per-day bitmaps (docs/reports.md).
 *
 * A customer is *active* on a business day when the index holds at least
 * one of their events that day: any event, or only the events named in the
 * report's filter.  Every figure is the cardinality of an intersection or a
 * union of such day bitmaps, restricted to a population (everyone, or the
 * members of a segment): exact, never sampled or estimated.
 *
 * The functions below work on a sy_report_days, the day bitmaps of one
 * range, collected under the index's read lock; computing from it needs no
 * lock.  Days are business days of the tenant (days since 1970-01-01 in its
 * time zone, sy_index_day). */
#ifndef SY_REPORT_H
#define SY_REPORT_H

#include "index.h"

#include <roaring/roaring.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The longest range a report covers, in days. */
#define SY_REPORT_MAX_DAYS 400

typedef struct sy_report_days {
    int64_t first;             /* the business day of active[0] */
    size_t n;                  /* days first .. first + n - 1 */
    roaring_bitmap_t **active; /* active[i]: active on day first + i */
    roaring_bitmap_t *before;  /* active on some day before first */
} sy_report_days;

/* Collects the customers active on each day in [from, to], and on any day
 * before from, among `among` (NULL: every customer).  names: the event
 * names that count (NULL or nnames 0: any).  The caller holds the index's
 * read lock. */
void sy_report_days_collect(const sy_index *ix, const char *const *names, size_t nnames,
                            int64_t from, int64_t to, const roaring_bitmap_t *among,
                            sy_report_days *out);
void sy_report_days_free(sy_report_days *d);

/* One day of the activity report.  wau and mau count the customers active
 * on at least one of the 7 (30) days ending that day; new_ those active
 * that day for the first time ever, returning the others; stickiness is
 * dau / mau (0 when mau is 0). */
typedef struct sy_activity_row {
    int64_t day;
    uint64_t dau, wau, mau, new_, returning;
    double stickiness;
} sy_activity_row;

/* Fills rows[0 .. to - from] for the days from .. to.  d must cover
 * [from - 29, to] (sy_report_days_collect with from - 29). */
void sy_report_activity(const sy_report_days *d, int64_t from, int64_t to, sy_activity_row *rows);

/* Retention of daily cohorts.  A cohort is the customers whose first
 * cohort-event day (first ever, from `cohort`) is day c, for c in [from,
 * to].  For each period k = 0 .. nperiods - 1:
 *   exact[k]       those of them active (per `ret`) on day c + k;
 *   on_or_after[k] those active on day c + k or any later day up to `ret`'s
 *                  last day.
 * Periods past `ret`'s last day are not yet known: known[c] says how many
 * periods of cohort c are (the rest are 0). */
typedef struct sy_retention {
    size_t ncohorts, nperiods;
    int64_t *day;          /* [ncohorts] */
    uint64_t *size;        /* [ncohorts] */
    size_t *known;         /* [ncohorts] */
    uint64_t *exact;       /* [ncohorts * nperiods] */
    uint64_t *on_or_after; /* [ncohorts * nperiods] */
} sy_retention;

/* cohort must start at from and cover to (it may cover more: the same days
 * as ret when the cohort and return events are the same); ret must start
 * at from.  Returns a filled
 * sy_retention (free with sy_retention_free). */
void sy_report_retention(const sy_report_days *cohort, const sy_report_days *ret, int64_t from,
                         int64_t to, size_t nperiods, sy_retention *out);
void sy_retention_free(sy_retention *r);

/* Lifecycle KPIs of a period [from, to] (docs/reports.md, "KPIs"). */
typedef struct sy_kpis {
    uint64_t customers;    /* the population */
    uint64_t active;       /* active on some day of the period */
    uint64_t active_prev;  /* ... of the period of the same length just before */
    uint64_t churned;      /* active in the previous period, not in this one */
    uint64_t purchasers;   /* at least one purchase event in the period */
    uint64_t repurchasers; /* at least two */
} sy_kpis;

/* Under the index's read lock.  purchase: the event names that are
 * purchases (npurchase 0: every name beginning with "buy_").  With
 * population and active not NULL they receive new bitmaps of the
 * population and of its customers active in the period. */
void sy_report_kpis(const sy_index *ix, const char *const *purchase, size_t npurchase, int64_t from,
                    int64_t to, const roaring_bitmap_t *among, sy_kpis *out,
                    roaring_bitmap_t **population, roaring_bitmap_t **active);

/* ---- funnels (docs/reports.md, "Funnels") ----
 *
 * A customer enters at their first step-1 event on a day in [from, to]
 * (only the first counts).  They reach step k + 1 with the earliest event
 * of that step at or after the time they reached step k (strictly after
 * when both steps name the same event) and at most window_ms after they
 * entered.  Every step must be a timed event (sy_index_timed). */
#define SY_FUNNEL_MAX_STEPS 10
#define SY_FUNNEL_MAX_GROUPS 1000

typedef struct sy_funnel_query {
    const char *const *steps;
    size_t nsteps;                 /* 1 .. SY_FUNNEL_MAX_STEPS */
    int64_t from, to;              /* business days of the entries */
    int64_t window_ms;             /* > 0 */
    const roaring_bitmap_t *among; /* NULL: every customer */
    const char *breakdown;         /* a categorical attribute, or NULL */
} sy_funnel_query;

typedef struct sy_funnel_group {
    char *value;                             /* NULL: customers with no value */
    uint64_t customers[SY_FUNNEL_MAX_STEPS]; /* who reached each step */
    int64_t median_ms[SY_FUNNEL_MAX_STEPS];  /* from the step before; -1: none */
} sy_funnel_group;

typedef struct sy_funnel {
    size_t nsteps;
    sy_funnel_group all;
    sy_funnel_group *groups; /* by breakdown value, in the index's order; the no-value group last */
    size_t ngroups;
} sy_funnel;

/* Under the index's read lock.  Returns false (and fills nothing) when the
 * breakdown attribute has more than SY_FUNNEL_MAX_GROUPS values. */
bool sy_report_funnel(const sy_index *ix, const sy_funnel_query *q, sy_funnel *out);
/* The customers a funnel goes through at a time (rounded up to a multiple
 * of 64; 0: the default of 16,384).  For tests, which lower it to cross
 * many blocks with few customers. */
void sy_report_funnel_block(size_t ids);
void sy_funnel_free(sy_funnel *f);

/* ---- dwell percentiles (docs/reports.md, "Dwell") ----
 * Over the events of a timed event name that carry a dwell time: their
 * number, and nearest-rank percentiles (the smallest value with at least p%
 * of the values at or below it), mean and maximum, in ms. */
typedef struct sy_dwell_row {
    int64_t day;
    uint64_t events;
    int64_t p50, p90, p99, max; /* -1 when there are no events */
    double mean;
} sy_dwell_row;

/* Under the index's read lock.  rows[0 .. to - from] for each day, and
 * *total for the whole range. */
void sy_report_dwell(const sy_index *ix, const char *name, int64_t from, int64_t to,
                     const roaring_bitmap_t *among, sy_dwell_row *rows, sy_dwell_row *total);

#endif

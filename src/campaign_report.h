/* campaign_report.h — the campaign report: by business day (the tenant's
 * time zone) participants, check-ins, draws, rewards issued and their
 * cost, the budget left; and the uplift of a goal event in the audience
 * against the holdout, with a 95% confidence interval.
 *
 * Each figure is computed in one place here, so other reports (issue 6)
 * reuse them:
 *   sy_campaign_report_days     the daily table, from the store;
 *   sy_campaign_report_groups   audience and holdout sizes and conversions, from the
 *                      index (the caller holds its read lock);
 *   sy_uplift_compute   the difference of two proportions and its interval.
 *
 * The uplift (normal approximation for a difference of proportions):
 *   p1 = x1 / n1 (audience outside the holdout), p0 = x0 / n0 (holdout),
 *   d  = p1 - p0,
 *   se = sqrt(p1 (1 - p1) / n1 + p0 (1 - p0) / n0),
 *   95% CI = d ± 1.959964 · se.
 * Rates are the only floating point in the report; money and points stay
 * integers. */
#ifndef SY_CAMPAIGN_REPORT_H
#define SY_CAMPAIGN_REPORT_H

#include "attr.h"
#include "campaign.h"
#include "index.h"
#include "store.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define SY_CAMPAIGN_REPORT_DAYS_MAX 400
#define SY_UPLIFT_Z95 1.959964

typedef struct sy_uplift {
    int64_t n1, x1; /* audience outside the holdout: customers, converted */
    int64_t n0, x0; /* the holdout */
    double p1, p0, diff, se, ci_low, ci_high;
    bool defined; /* both groups have customers */
} sy_uplift;

/* Fills u from the counts. */
void sy_uplift_compute(int64_t x1, int64_t n1, int64_t x0, int64_t n0, sy_uplift *u);

typedef struct sy_campaign_day_figures {
    int64_t day; /* business day (days since 1970-01-01) */
    int64_t participants, checkins, draws, rewards, points, cost;
    int64_t claims;                 /* coupon drop claims */
    int64_t points_left, cost_left; /* SY_CAMPAIGN_UNSET: no budget of that kind */
} sy_campaign_day_figures;

typedef struct sy_campaign_report {
    char zone[65];
    int64_t from_day, to_day;
    sy_campaign_day_figures *days; /* to_day - from_day + 1 of them */
    size_t ndays;
    bool draws_recorded; /* a lottery draws table was found */
    int64_t holdout_recorded;
    sy_campaign_day_figures totals;
    /* referral campaigns: bindings held for review now, held ones that
     * expired unreviewed (refusal review-expired), and rejected ones */
    bool referral;
    int64_t held, review_expired, rejected;
} sy_campaign_report;

/* The daily table from the campaign's start to today (or its end). */
int sy_campaign_report_days(sy_conn *c, const char *tenant, const sy_campaign *cp, int64_t now_ms,
                            sy_campaign_report *out);
void sy_campaign_report_free(sy_campaign_report *rep);

/* The audience (the campaign's segment, or every customer) split by the
 * holdout hash, and who of each did `goal` on a business day from the
 * campaign's first to last_day.  The caller holds ix's read lock.  False
 * when the segment does not evaluate. */
bool sy_campaign_report_groups(const sy_index *ix, const sy_attr_set *schema, const char *tenant,
                               const sy_campaign *cp, const char *goal, int64_t first_day,
                               int64_t last_day, int64_t now_ms, sy_uplift *u);

/* The report as JSON (new reference); uplift may be NULL (no goal). */
json_t *sy_campaign_report_json(const sy_campaign *cp, const sy_campaign_report *rep,
                                const char *goal, const sy_uplift *u);
/* The same as CSV: the daily table, then the uplift lines (malloc'd). */
char *sy_campaign_report_csv(const sy_campaign *cp, const sy_campaign_report *rep, const char *goal,
                             const sy_uplift *u);

#endif

/* campaign_report.c — the campaign report's figures (campaign_report.h). */
#include "campaign_report.h"

#include "segment_eval.h"
#include "util.h"
#include "validate.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sy_uplift_compute(int64_t x1, int64_t n1, int64_t x0, int64_t n0, sy_uplift *u)
{
    memset(u, 0, sizeof *u);
    u->n1 = n1;
    u->x1 = x1;
    u->n0 = n0;
    u->x0 = x0;
    u->p1 = n1 > 0 ? (double)x1 / (double)n1 : 0;
    u->p0 = n0 > 0 ? (double)x0 / (double)n0 : 0;
    u->defined = n1 > 0 && n0 > 0;
    if (!u->defined)
        return;
    u->diff = u->p1 - u->p0;
    u->se = sqrt(u->p1 * (1 - u->p1) / (double)n1 + u->p0 * (1 - u->p0) / (double)n0);
    u->ci_low = u->diff - SY_UPLIFT_Z95 * u->se;
    u->ci_high = u->diff + SY_UPLIFT_Z95 * u->se;
}

/* ------------------------------------------------------------------ */
/* the daily table                                                     */

/* Every participation of the campaign as (day, customer, kind, points,
 * cost, rewarded) — check-ins and tasks, referral bindings and the rewards
 * they paid, and (the second statement) lottery draws when the lottery's
 * table exists (migration 0011 on main: a prize's points and budget_cost,
 * a 'prize' outcome counting as a reward) — aggregated by business day.  Written out in full (no
 * macros) so that scripts/pg-compat.sh prepares them on PostgreSQL. */
static const char k_days_sql[] =
    "SELECT day, COUNT(DISTINCT customer_no),"
    " SUM(CASE WHEN kind IN ('checkin', 'makeup') THEN 1 ELSE 0 END),"
    " SUM(CASE WHEN kind = 'draw' THEN 1 ELSE 0 END), SUM(rewarded), SUM(points), SUM(cost),"
    " SUM(CASE WHEN kind = 'claim' THEN 1 ELSE 0 END)"
    " FROM ("
    "SELECT day, customer_no, kind, points, cost, CASE WHEN points > 0 OR item IS NOT NULL THEN"
    " 1 ELSE 0 END AS rewarded FROM campaign_actions WHERE tenant_id = $1 AND campaign_id = $2"
    " UNION ALL SELECT day, customer_no, 'referral', points, cost, 1 FROM referral_rewards"
    " WHERE tenant_id = $1 AND campaign_id = $2"
    " UNION ALL SELECT bound_day, invitee, 'binding', 0, 0, 0 FROM referral_bindings"
    " WHERE tenant_id = $1 AND campaign_id = $2"
    " UNION ALL SELECT day, customer_no, 'claim', 0, cost, 1 FROM coupon_claims"
    " WHERE tenant_id = $1 AND campaign_id = $2"
    ") u WHERE day >= $3 AND day <= $4 GROUP BY day ORDER BY day";
static const char k_days_draws_sql[] =
    "SELECT day, COUNT(DISTINCT customer_no),"
    " SUM(CASE WHEN kind IN ('checkin', 'makeup') THEN 1 ELSE 0 END),"
    " SUM(CASE WHEN kind = 'draw' THEN 1 ELSE 0 END), SUM(rewarded), SUM(points), SUM(cost),"
    " SUM(CASE WHEN kind = 'claim' THEN 1 ELSE 0 END)"
    " FROM ("
    "SELECT day, customer_no, kind, points, cost, CASE WHEN points > 0 OR item IS NOT NULL THEN"
    " 1 ELSE 0 END AS rewarded FROM campaign_actions WHERE tenant_id = $1 AND campaign_id = $2"
    " UNION ALL SELECT day, customer_no, 'referral', points, cost, 1 FROM referral_rewards"
    " WHERE tenant_id = $1 AND campaign_id = $2"
    " UNION ALL SELECT bound_day, invitee, 'binding', 0, 0, 0 FROM referral_bindings"
    " WHERE tenant_id = $1 AND campaign_id = $2"
    " UNION ALL SELECT day, customer_no, 'claim', 0, cost, 1 FROM coupon_claims"
    " WHERE tenant_id = $1 AND campaign_id = $2"
    " UNION ALL SELECT day, customer_no, 'draw', points, budget_cost, CASE WHEN outcome ="
    " 'prize' THEN 1 ELSE 0 END FROM lottery_draws"
    " WHERE tenant_id = $1 AND campaign_id = $2"
    ") u WHERE day >= $3 AND day <= $4 GROUP BY day ORDER BY day";

int sy_campaign_report_days(sy_conn *c, const char *tenant, const sy_campaign *cp, int64_t now_ms,
                            sy_campaign_report *out)
{
    static const char sql_holdouts[] =
        "SELECT COUNT(*) FROM campaign_holdouts WHERE tenant_id = $1 AND campaign_id = $2";
    static const char sql_review[] =
        "SELECT COALESCE(SUM(CASE WHEN status = 'held' THEN 1 ELSE 0 END), 0),"
        " COALESCE(SUM(CASE WHEN status = 'expired' AND refusal = 'review-expired' THEN 1 ELSE 0"
        " END), 0), COALESCE(SUM(CASE WHEN status = 'rejected' THEN 1 ELSE 0 END), 0)"
        " FROM referral_bindings WHERE tenant_id = $1 AND campaign_id = $2";
    memset(out, 0, sizeof *out);
    int rc = sy_campaign_zone(c, tenant, out->zone);
    if (rc != SY_OK)
        return rc;
    out->from_day = sy_campaign_day(out->zone, cp->starts_at);
    int64_t last = now_ms < cp->ends_at ? now_ms : cp->ends_at - 1;
    out->to_day = sy_campaign_day(out->zone, last);
    if (out->to_day < out->from_day)
        out->to_day = out->from_day - 1; /* not started: no days */
    if (out->to_day - out->from_day + 1 > SY_CAMPAIGN_REPORT_DAYS_MAX)
        out->from_day = out->to_day - SY_CAMPAIGN_REPORT_DAYS_MAX + 1;
    out->ndays = (size_t)(out->to_day - out->from_day + 1);
    out->days = sy_xcalloc(out->ndays ? out->ndays : 1, sizeof *out->days);
    for (size_t i = 0; i < out->ndays; i++)
        out->days[i].day = out->from_day + (int64_t)i;
    sy_stmt *st = sy_conn_prepare(c, k_days_draws_sql);
    out->draws_recorded = st != NULL;
    if (!st && !(st = sy_conn_prepare(c, k_days_sql)))
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, cp->id);
    sy_stmt_bind_i64(st, 3, out->from_day);
    sy_stmt_bind_i64(st, 4, out->to_day);
    while ((rc = sy_stmt_step(st)) == SY_ROW) {
        int64_t d = sy_stmt_i64(st, 0);
        if (d < out->from_day || d > out->to_day)
            continue;
        sy_campaign_day_figures *x = &out->days[d - out->from_day];
        x->participants = sy_stmt_i64(st, 1);
        x->checkins = sy_stmt_i64(st, 2);
        x->draws = sy_stmt_i64(st, 3);
        x->rewards = sy_stmt_i64(st, 4);
        x->points = sy_stmt_i64(st, 5);
        x->cost = sy_stmt_i64(st, 6);
        x->claims = sy_stmt_i64(st, 7);
    }
    sy_stmt_reset(st);
    if (rc != SY_DONE)
        return rc;
    /* the budget left at the end of each day: the budget less what the
     * report's rows issued up to then */
    int64_t points = 0, cost = 0;
    for (size_t i = 0; i < out->ndays; i++) {
        sy_campaign_day_figures *x = &out->days[i];
        points += x->points;
        cost += x->cost;
        x->points_left =
            cp->budget_points == SY_CAMPAIGN_UNSET ? SY_CAMPAIGN_UNSET : cp->budget_points - points;
        x->cost_left =
            cp->budget_cost == SY_CAMPAIGN_UNSET ? SY_CAMPAIGN_UNSET : cp->budget_cost - cost;
        out->totals.participants += x->participants;
        out->totals.checkins += x->checkins;
        out->totals.draws += x->draws;
        out->totals.rewards += x->rewards;
        out->totals.claims += x->claims;
    }
    out->totals.points = points;
    out->totals.cost = cost;
    /* the authoritative budget left: the campaign row's */
    out->totals.points_left = cp->budget_points == SY_CAMPAIGN_UNSET
                                  ? SY_CAMPAIGN_UNSET
                                  : cp->budget_points - cp->spent_points;
    out->totals.cost_left =
        cp->budget_cost == SY_CAMPAIGN_UNSET ? SY_CAMPAIGN_UNSET : cp->budget_cost - cp->spent_cost;
    if (!(st = sy_conn_prepare(c, sql_holdouts)))
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, cp->id);
    rc = sy_stmt_step(st);
    out->holdout_recorded = rc == SY_ROW ? sy_stmt_i64(st, 0) : 0;
    sy_stmt_reset(st);
    if (rc != SY_ROW)
        return rc;
    if (cp->type != SY_CAMPAIGN_REFERRAL)
        return SY_OK;
    /* referral reviews: held now, and held rewards that expired unreviewed */
    if (!(st = sy_conn_prepare(c, sql_review)))
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, cp->id);
    rc = sy_stmt_step(st);
    out->referral = rc == SY_ROW;
    if (rc == SY_ROW) {
        out->held = sy_stmt_i64(st, 0);
        out->review_expired = sy_stmt_i64(st, 1);
        out->rejected = sy_stmt_i64(st, 2);
    }
    sy_stmt_reset(st);
    return rc == SY_ROW ? SY_OK : rc;
}

void sy_campaign_report_free(sy_campaign_report *rep)
{
    free(rep->days);
    rep->days = NULL;
}

/* ------------------------------------------------------------------ */
/* audience against holdout                                            */

static void or_actors(int64_t day, const sy_day_events *d, void *ud)
{
    (void)day;
    roaring_bitmap_or_inplace(ud, sy_day_actors(d));
}

bool sy_campaign_report_groups(const sy_index *ix, const sy_attr_set *schema, const char *tenant,
                               const sy_campaign *cp, const char *goal, int64_t first_day,
                               int64_t last_day, int64_t now_ms, sy_uplift *u)
{
    roaring_bitmap_t *aud;
    if (cp->segment_id[0]) {
        const sy_seg_node *node = sy_index_segment(ix, cp->segment_id);
        sy_seg_error e;
        memset(&e, 0, sizeof e);
        aud = node ? sy_seg_eval_index(ix, schema, now_ms, node, &e) : NULL;
        if (!aud)
            return false;
    } else {
        aud = roaring_bitmap_copy(sy_index_all(ix));
    }
    roaring_bitmap_t *did = roaring_bitmap_create();
    if (last_day >= first_day)
        sy_index_days(ix, goal, first_day, last_day, or_actors, did);
    int64_t n1 = 0, x1 = 0, n0 = 0, x0 = 0;
    roaring_uint32_iterator_t *it = roaring_create_iterator(aud);
    for (; it->has_value; roaring_advance_uint32_iterator(it)) {
        uint32_t d = it->current_value;
        const char *no = sy_index_customer_no(ix, d);
        if (!no)
            continue;
        bool conv = roaring_bitmap_contains(did, d);
        if (sy_campaign_in_holdout(tenant, cp->id, no, cp->holdout_percent)) {
            n0++;
            x0 += conv;
        } else {
            n1++;
            x1 += conv;
        }
    }
    roaring_free_uint32_iterator(it);
    roaring_bitmap_free(did);
    roaring_bitmap_free(aud);
    sy_uplift_compute(x1, n1, x0, n0, u);
    return true;
}

/* ------------------------------------------------------------------ */
/* encodings                                                           */

static json_t *int_or_null(int64_t v)
{
    return v == SY_CAMPAIGN_UNSET ? json_null() : json_integer(v);
}

static json_t *uplift_json(const char *goal, const sy_campaign_report *rep, const sy_uplift *u)
{
    char from[11], to[11];
    sy_format_date(rep->from_day, from);
    sy_format_date(rep->to_day, to);
    json_t *o =
        json_pack("{s:s, s:{s:s, s:s}, s:{s:I, s:I, s:f}, s:{s:I, s:I, s:f}}", "goal", goal,
                  "window", "from", from, "to", to, "audience", "customers", (json_int_t)u->n1,
                  "converted", (json_int_t)u->x1, "rate", u->p1, "holdout", "customers",
                  (json_int_t)u->n0, "converted", (json_int_t)u->x0, "rate", u->p0);
    if (u->defined) {
        json_object_set_new(o, "difference", json_real(u->diff));
        json_object_set_new(o, "standard_error", json_real(u->se));
        json_object_set_new(o, "ci95", json_pack("[f, f]", u->ci_low, u->ci_high));
    } else {
        json_object_set_new(o, "difference", json_null());
        json_object_set_new(o, "standard_error", json_null());
        json_object_set_new(o, "ci95", json_null());
        json_object_set_new(o, "note", json_string("a group is empty: no difference to measure"));
    }
    json_object_set_new(
        o, "method",
        json_string("difference of proportions, normal approximation: d = p1 - p0, se = sqrt(p1"
                    "(1-p1)/n1 + p0(1-p0)/n0), 95% CI = d +/- 1.959964 se; groups split by the"
                    " holdout hash over the whole audience; a conversion is the goal event on a"
                    " business day of the window"));
    return o;
}

json_t *sy_campaign_report_json(const sy_campaign *cp, const sy_campaign_report *rep,
                                const char *goal, const sy_uplift *u)
{
    json_t *days = json_array();
    for (size_t i = 0; i < rep->ndays; i++) {
        const sy_campaign_day_figures *x = &rep->days[i];
        char d[11];
        sy_format_date(x->day, d);
        json_t *o = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I}", "day", d, "participants",
                              (json_int_t)x->participants, "checkins", (json_int_t)x->checkins,
                              "draws", (json_int_t)x->draws, "rewards", (json_int_t)x->rewards,
                              "points", (json_int_t)x->points, "cost", (json_int_t)x->cost);
        json_object_set_new(o, "claims", json_integer(x->claims));
        json_object_set_new(o, "budget_points_left", int_or_null(x->points_left));
        json_object_set_new(o, "budget_cost_left", int_or_null(x->cost_left));
        json_array_append_new(days, o);
    }
    const sy_campaign_day_figures *t = &rep->totals;
    json_t *totals = json_pack("{s:I, s:I, s:I, s:I, s:I}", "checkins", (json_int_t)t->checkins,
                               "draws", (json_int_t)t->draws, "rewards", (json_int_t)t->rewards,
                               "points", (json_int_t)t->points, "cost", (json_int_t)t->cost);
    json_object_set_new(totals, "claims", json_integer(t->claims));
    json_t *budget = json_pack("{s:o, s:o, s:I, s:I, s:o, s:o}", "points",
                               int_or_null(cp->budget_points), "cost", int_or_null(cp->budget_cost),
                               "spent_points", (json_int_t)cp->spent_points, "spent_cost",
                               (json_int_t)cp->spent_cost, "points_left",
                               int_or_null(t->points_left), "cost_left", int_or_null(t->cost_left));
    json_t *o =
        json_pack("{s:s, s:s, s:s, s:o, s:o, s:o, s:I}", "campaign", cp->id, "type",
                  sy_campaign_type_name(cp->type), "time_zone", rep->zone, "days", days, "totals",
                  totals, "budget", budget, "holdout_recorded", (json_int_t)rep->holdout_recorded);
    json_object_set_new(
        o, "draws_note",
        rep->draws_recorded ? json_null() : json_string("no lottery draws table yet: draws are 0"));
    json_object_set_new(o, "uplift", u ? uplift_json(goal, rep, u) : json_null());
    if (rep->referral)
        json_object_set_new(o, "referral_review",
                            json_pack("{s:I, s:I, s:I}", "held", (json_int_t)rep->held,
                                      "expired_in_review", (json_int_t)rep->review_expired,
                                      "rejected", (json_int_t)rep->rejected));
    return o;
}

char *sy_campaign_report_csv(const sy_campaign *cp, const sy_campaign_report *rep, const char *goal,
                             const sy_uplift *u)
{
    sy_buf b = {0};
    sy_buf_printf(&b, "day,participants,checkins,draws,rewards,points,cost,claims,"
                      "budget_points_left,budget_cost_left\r\n");
    for (size_t i = 0; i < rep->ndays; i++) {
        const sy_campaign_day_figures *x = &rep->days[i];
        char d[11], pl[24] = "", cl[24] = "";
        sy_format_date(x->day, d);
        if (x->points_left != SY_CAMPAIGN_UNSET)
            snprintf(pl, sizeof pl, "%lld", (long long)x->points_left);
        if (x->cost_left != SY_CAMPAIGN_UNSET)
            snprintf(cl, sizeof cl, "%lld", (long long)x->cost_left);
        sy_buf_printf(&b, "%s,%lld,%lld,%lld,%lld,%lld,%lld,%lld,%s,%s\r\n", d,
                      (long long)x->participants, (long long)x->checkins, (long long)x->draws,
                      (long long)x->rewards, (long long)x->points, (long long)x->cost,
                      (long long)x->claims, pl, cl);
    }
    if (u) {
        sy_buf_printf(&b, "\r\ngoal,group,customers,converted,rate\r\n");
        sy_buf_printf(&b, "%s,audience,%lld,%lld,%.6f\r\n", goal, (long long)u->n1,
                      (long long)u->x1, u->p1);
        sy_buf_printf(&b, "%s,holdout,%lld,%lld,%.6f\r\n", goal, (long long)u->n0, (long long)u->x0,
                      u->p0);
        if (u->defined)
            sy_buf_printf(&b, "\r\ngoal,difference,ci95_low,ci95_high\r\n%s,%.6f,%.6f,%.6f\r\n",
                          goal, u->diff, u->ci_low, u->ci_high);
    }
    (void)cp;
    return sy_buf_steal(&b);
}

/* offers.c — the offers catalogue, one customer's standing in it, and the
 * ranked answer (offers.h). */
#include "offers.h"
#include "coupon.h"

#include "ledger.h"
#include "lottery.h"
#include "util.h"
#include "validate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DAY_MS 86400000LL

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* year * 12 + month - 1 of a moment in the zone (as benefits.c counts). */
static int64_t local_month(const char *zone, int64_t ms)
{
    int64_t local = ms + sy_ledger_tz_offset(zone, ms);
    time_t secs = (time_t)floor_div(local, 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    return (int64_t)(tm.tm_year + 1900) * 12 + tm.tm_mon;
}

/* ------------------------------------------------------------------ */
/* the catalogue                                                       */

static int audience_of(sy_offers_catalog *cat, const char *id, const char *expr)
{
    if ((!id || !id[0]) && (!expr || !expr[0]))
        return SY_OFFER_NO_AUDIENCE;
    for (size_t i = 0; i < cat->naudiences; i++) {
        sy_offer_audience *a = &cat->audiences[i];
        if ((id && id[0] && a->id && !strcmp(a->id, id)) ||
            (expr && expr[0] && a->expression && !strcmp(a->expression, expr)))
            return (int)i;
    }
    cat->audiences = sy_xrealloc(cat->audiences, (cat->naudiences + 1) * sizeof *cat->audiences);
    sy_offer_audience *a = &cat->audiences[cat->naudiences];
    memset(a, 0, sizeof *a);
    if (id && id[0]) {
        a->id = sy_xstrdup(id);
    } else {
        a->expression = sy_xstrdup(expr);
        sy_seg_error e;
        memset(&e, 0, sizeof e);
        a->ast = sy_seg_parse(expr, strlen(expr), &e);
    }
    return (int)cat->naudiences++;
}

static sy_offer *add_offer(sy_offers_catalog *cat, size_t *cap)
{
    if (cat->n == *cap)
        cat->offers = sy_xrealloc(cat->offers, (*cap = *cap ? *cap * 2 : 64) * sizeof *cat->offers);
    sy_offer *o = &cat->offers[cat->n++];
    memset(o, 0, sizeof *o);
    o->audience[0] = o->audience[1] = SY_OFFER_NO_AUDIENCE;
    o->ends_at = SY_OFFER_NO_END;
    o->draws_per_day = -1;
    o->max_per_inviter = -1;
    o->available_from = o->available_until = SY_BENEFIT_UNSET;
    o->lim_day = o->lim_month = o->lim_total = SY_BENEFIT_UNSET;
    o->item_day = o->item_month = o->item_total = SY_BENEFIT_UNSET;
    return o;
}

static int64_t col_or_unset(sy_stmt *st, int col)
{
    return sy_stmt_is_null(st, col) ? SY_BENEFIT_UNSET : sy_stmt_i64(st, col);
}

/* o->item's per-customer limits (a coupon drop's item). */
static int item_limits(sy_conn *c, const char *tenant, sy_offer *o)
{
    static const char sql[] = "SELECT limit_day, limit_month, limit_total FROM benefit_items"
                              " WHERE tenant_id = $1 AND code = $2";
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, o->item);
    int rc = sy_stmt_step(st);
    if (rc == SY_ROW) {
        o->item_day = col_or_unset(st, 0);
        o->item_month = col_or_unset(st, 1);
        o->item_total = col_or_unset(st, 2);
    }
    sy_stmt_reset(st);
    return rc == SY_ROW || rc == SY_DONE ? SY_OK : rc;
}

/* o's JSON as text without its closing brace (malloc'd); steals j. */
static char *open_object(json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (!s) /* only when out of memory */
        abort();
    s[strlen(s) - 1] = '\0';
    return s;
}

static void render_head(sy_offer *o)
{
    if (o->kind == SY_OFFER_CAMPAIGN) {
        const sy_campaign *cp = o->cp;
        o->head =
            open_object(json_pack("{s:s, s:s, s:s, s:s, s:i, s:o}", "kind", "campaign", "id",
                                  cp->id, "name", cp->name, "type", sy_campaign_type_name(cp->type),
                                  "priority", cp->priority, "ends_at", sy_json_time(cp->ends_at)));
        if (cp->type == SY_CAMPAIGN_TASK && cp->ntasks > 0) {
            o->task_heads = sy_xcalloc((size_t)cp->ntasks, sizeof *o->task_heads);
            for (int t = 0; t < cp->ntasks; t++) {
                const sy_campaign_task *tk = &cp->tasks[t];
                /* what the app may show of the task: its event and its
                 * conditions on that event */
                json_t *th = json_pack("{s:s, s:s, s:s, s:o}", "code", tk->code, "event", tk->event,
                                       "period", sy_campaign_period_name(tk->period), "reward",
                                       sy_campaign_reward_json(&tk->reward));
                if (tk->min_dwell_ms != SY_CAMPAIGN_UNSET)
                    json_object_set_new(th, "min_dwell_ms", json_integer(tk->min_dwell_ms));
                if (tk->props)
                    json_object_set_new(th, "props", json_deep_copy(tk->props));
                o->task_heads[t] = open_object(th);
            }
        }
    } else if (o->kind == SY_OFFER_PACKAGE) {
        o->head =
            open_object(json_pack("{s:s, s:s, s:s, s:i, s:O}", "kind", "package", "code", o->code,
                                  "name", o->name, "priority", o->priority, "items", o->lines));
    } else {
        json_t *j =
            json_pack("{s:s, s:s, s:s, s:i, s:s, s:I, s:s, s:I}", "kind", "listing", "code",
                      o->code, "title", o->name, "priority", o->priority, "item", o->item, "price",
                      (json_int_t)o->price, "point_type", o->point_type, "face_value",
                      (json_int_t)o->face_value); /* the live stock is appended per request */
        json_object_set_new(j, "ends_at",
                            o->ends_at == SY_OFFER_NO_END ? json_null() : sy_json_time(o->ends_at));
        o->head = open_object(j);
    }
}

/* A coupon drop's current wave: units claimed, and this customer's claims. */
static const char k_wave_sql[] =
    "SELECT COALESCE((SELECT claimed FROM coupon_waves WHERE tenant_id = $1 AND campaign_id = $2"
    " AND day = $4 AND wave = $5), 0), (SELECT COUNT(*) FROM coupon_claims WHERE tenant_id = $1"
    " AND campaign_id = $2 AND customer_no = $3 AND day = $4 AND wave = $5)";

/* A customer's draws in a lottery: all, today's and this week's (they
 * count towards the campaign's limits like other participations). */
static const char k_draws_sql[] =
    "SELECT COUNT(*), COALESCE(SUM(CASE WHEN day = $4 THEN 1 ELSE 0 END), 0),"
    " COALESCE(SUM(CASE WHEN week = $5 THEN 1 ELSE 0 END), 0) FROM lottery_draws"
    " WHERE tenant_id = $1 AND campaign_id = $2 AND customer_no = $3";

int sy_offers_catalog_load(sy_conn *c, const char *tenant, int64_t now_ms, sy_offers_catalog **out)
{
    static const char sql_campaigns[] =
        "SELECT id FROM campaigns WHERE tenant_id = $1 AND status = 'scheduled' AND ends_at > $2"
        " ORDER BY id";
    static const char sql_packages[] =
        "SELECT code, name, segment_id, segment_expression FROM benefit_packages"
        " WHERE tenant_id = $1 ORDER BY code";
    static const char sql_lines[] = "SELECT package, item, quantity FROM benefit_package_items"
                                    " WHERE tenant_id = $1 ORDER BY package, item";
    static const char sql_listings[] =
        "SELECT l.code, l.title, l.item, l.point_type, l.price, l.limit_day, l.limit_month,"
        " l.limit_total, l.segment_id, l.segment_expression, i.remaining, i.available_from,"
        " i.available_until, i.limit_day, i.limit_month, i.limit_total, i.segment_id,"
        " i.segment_expression, i.face_value FROM mall_listings l JOIN benefit_items i"
        " ON i.tenant_id = l.tenant_id AND i.code = l.item WHERE l.tenant_id = $1"
        " AND l.active = 1 ORDER BY l.code";
    *out = NULL;
    sy_offers_catalog *cat = sy_xcalloc(1, sizeof *cat);
    snprintf(cat->tenant, sizeof cat->tenant, "%s", tenant);
    cat->loaded_for = now_ms;
    cat->loaded_real = sy_now_ms();
    atomic_store(&cat->synced, cat->loaded_real);
    size_t cap = 0;
    int rc = sy_campaign_zone(c, tenant, cat->zone);
    /* campaigns */
    size_t nids = 0;
    char(*ids)[SY_CAMPAIGN_ID_MAX + 1] = NULL;
    sy_stmt *st = rc == SY_OK ? sy_conn_prepare(c, sql_campaigns) : NULL;
    if (rc == SY_OK && !st)
        rc = SY_ERR;
    if (st) {
        sy_stmt_bind_text(st, 1, tenant);
        sy_stmt_bind_i64(st, 2, now_ms);
        size_t idcap = 0;
        while ((rc = sy_stmt_step(st)) == SY_ROW) {
            if (nids == idcap)
                ids = sy_xrealloc(ids, (idcap = idcap ? idcap * 2 : 64) * sizeof *ids);
            snprintf(ids[nids++], sizeof ids[0], "%s", sy_stmt_text(st, 0));
        }
        sy_stmt_reset(st);
        rc = rc == SY_DONE ? SY_OK : rc;
    }
    for (size_t i = 0; i < nids && rc == SY_OK; i++) {
        sy_campaign *cp;
        rc = sy_campaign_load(c, tenant, ids[i], &cp);
        if (rc == SY_CAMPAIGN_NOT_FOUND) {
            rc = SY_OK;
            continue;
        }
        if (rc != SY_OK)
            break;
        sy_offer *o = add_offer(cat, &cap);
        o->kind = SY_OFFER_CAMPAIGN;
        o->cp = cp;
        snprintf(o->code, sizeof o->code, "%s", cp->id);
        snprintf(o->name, sizeof o->name, "%s", cp->name);
        o->priority = cp->priority;
        o->ends_at = cp->ends_at;
        o->audience[0] = audience_of(cat, cp->segment_id, NULL);
        if (cp->type == SY_CAMPAIGN_LOTTERY) {
            sy_lottery_table *t = sy_xmalloc(sizeof *t);
            rc = sy_lottery_load(c, tenant, cp->id, 0, t);
            if (rc == SY_OK) {
                o->has_table = true;
                o->draws_per_day = t->draws_per_day == SY_CAMPAIGN_UNSET ? -1 : t->draws_per_day;
                o->free_per_day = t->free_per_day;
                o->draw_cost = t->cost_points;
                snprintf(o->cost_type, sizeof o->cost_type, "%s", t->cost_type);
            }
            free(t);
            if (rc == SY_LOTTERY_NO_TABLE)
                rc = SY_OK;
            if (rc != SY_OK)
                break;
        }
        atomic_store(&o->spent_points, cp->spent_points);
        atomic_store(&o->spent_cost, cp->spent_cost);
        json_t *mpi = cp->type == SY_CAMPAIGN_REFERRAL && cp->extra
                          ? json_object_get(cp->extra, "max_per_inviter")
                          : NULL;
        if (json_is_integer(mpi))
            o->max_per_inviter = json_integer_value(mpi);
        if (cp->type == SY_CAMPAIGN_COUPON_DROP) {
            char field[96], msg[200];
            sy_coupon_rules *cr = sy_xmalloc(sizeof *cr);
            if (sy_coupon_rules_parse(cp->extra, cr, field, sizeof field, msg, sizeof msg))
                o->coupon = cr;
            else
                free(cr);
            /* the item's own per-customer limits cap the claims too */
            if (o->coupon) {
                snprintf(o->item, sizeof o->item, "%s", cr->item);
                rc = item_limits(c, tenant, o);
            }
        }
    }
    free(ids);
    /* packages and their lines */
    if (rc == SY_OK && !(st = sy_conn_prepare(c, sql_packages)))
        rc = SY_ERR;
    if (rc == SY_OK) {
        sy_stmt_bind_text(st, 1, tenant);
        while ((rc = sy_stmt_step(st)) == SY_ROW) {
            sy_offer *o = add_offer(cat, &cap);
            o->kind = SY_OFFER_PACKAGE;
            snprintf(o->code, sizeof o->code, "%s", sy_stmt_text(st, 0));
            snprintf(o->name, sizeof o->name, "%s", sy_stmt_text(st, 1));
            o->audience[0] = audience_of(cat, sy_stmt_is_null(st, 2) ? NULL : sy_stmt_text(st, 2),
                                         sy_stmt_is_null(st, 3) ? NULL : sy_stmt_text(st, 3));
            o->lines = json_array();
        }
        sy_stmt_reset(st);
        rc = rc == SY_DONE ? SY_OK : rc;
    }
    if (rc == SY_OK && !(st = sy_conn_prepare(c, sql_lines)))
        rc = SY_ERR;
    if (rc == SY_OK) {
        sy_stmt_bind_text(st, 1, tenant);
        while ((rc = sy_stmt_step(st)) == SY_ROW) {
            for (size_t i = 0; i < cat->n; i++)
                if (cat->offers[i].kind == SY_OFFER_PACKAGE &&
                    !strcmp(cat->offers[i].code, sy_stmt_text(st, 0)))
                    json_array_append_new(cat->offers[i].lines,
                                          json_pack("{s:s, s:I}", "item", sy_stmt_text(st, 1),
                                                    "quantity", (json_int_t)sy_stmt_i64(st, 2)));
        }
        sy_stmt_reset(st);
        rc = rc == SY_DONE ? SY_OK : rc;
    }
    /* listings with their items */
    if (rc == SY_OK && !(st = sy_conn_prepare(c, sql_listings)))
        rc = SY_ERR;
    if (rc == SY_OK) {
        sy_stmt_bind_text(st, 1, tenant);
        while ((rc = sy_stmt_step(st)) == SY_ROW) {
            sy_offer *o = add_offer(cat, &cap);
            o->kind = SY_OFFER_LISTING;
            snprintf(o->code, sizeof o->code, "%s", sy_stmt_text(st, 0));
            snprintf(o->name, sizeof o->name, "%s", sy_stmt_text(st, 1));
            snprintf(o->item, sizeof o->item, "%s", sy_stmt_text(st, 2));
            snprintf(o->point_type, sizeof o->point_type, "%s", sy_stmt_text(st, 3));
            o->price = sy_stmt_i64(st, 4);
            o->lim_day = col_or_unset(st, 5);
            o->lim_month = col_or_unset(st, 6);
            o->lim_total = col_or_unset(st, 7);
            o->audience[0] = audience_of(cat, sy_stmt_is_null(st, 8) ? NULL : sy_stmt_text(st, 8),
                                         sy_stmt_is_null(st, 9) ? NULL : sy_stmt_text(st, 9));
            atomic_store(&o->remaining, sy_stmt_i64(st, 10));
            o->available_from = col_or_unset(st, 11);
            o->available_until = col_or_unset(st, 12);
            o->item_day = col_or_unset(st, 13);
            o->item_month = col_or_unset(st, 14);
            o->item_total = col_or_unset(st, 15);
            o->audience[1] = audience_of(cat, sy_stmt_is_null(st, 16) ? NULL : sy_stmt_text(st, 16),
                                         sy_stmt_is_null(st, 17) ? NULL : sy_stmt_text(st, 17));
            o->face_value = sy_stmt_i64(st, 18);
            if (o->available_until != SY_BENEFIT_UNSET)
                o->ends_at = o->available_until;
        }
        sy_stmt_reset(st);
        rc = rc == SY_DONE ? SY_OK : rc;
    }
    for (size_t i = 0; i < cat->n; i++) {
        render_head(&cat->offers[i]);
        cat->offers[i].head_len = strlen(cat->offers[i].head);
    }
    if (rc != SY_OK) {
        sy_offers_catalog_free(cat);
        return rc;
    }
    *out = cat;
    return SY_OK;
}

int sy_offers_catalog_refresh(sy_conn *c, sy_offers_catalog *cat)
{
    static const char sql_spent[] =
        "SELECT id, spent_points, spent_cost FROM campaigns WHERE tenant_id = $1"
        " AND status = 'scheduled' AND ends_at > $2 ORDER BY id";
    static const char sql_stock[] =
        "SELECT code, remaining FROM benefit_items WHERE tenant_id = $1";
    sy_stmt *st = sy_conn_prepare(c, sql_spent);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, cat->tenant);
    sy_stmt_bind_i64(st, 2, cat->loaded_for);
    int rc;
    size_t k = 0; /* both in id order: a merge, not a search per row */
    while ((rc = sy_stmt_step(st)) == SY_ROW) {
        const char *id = sy_stmt_text(st, 0);
        for (size_t tries = 0; tries < cat->n; tries++, k = (k + 1) % cat->n) {
            sy_offer *o = &cat->offers[k];
            if (o->kind == SY_OFFER_CAMPAIGN && !strcmp(o->code, id)) {
                atomic_store(&o->spent_points, sy_stmt_i64(st, 1));
                atomic_store(&o->spent_cost, sy_stmt_i64(st, 2));
                break;
            }
        }
    }
    sy_stmt_reset(st);
    if (rc != SY_DONE)
        return rc;
    if (!(st = sy_conn_prepare(c, sql_stock)))
        return SY_ERR;
    sy_stmt_bind_text(st, 1, cat->tenant);
    while ((rc = sy_stmt_step(st)) == SY_ROW) {
        const char *code = sy_stmt_text(st, 0);
        for (size_t i = 0; i < cat->n; i++)
            if (cat->offers[i].kind == SY_OFFER_LISTING && !strcmp(cat->offers[i].item, code))
                atomic_store(&cat->offers[i].remaining, sy_stmt_i64(st, 1));
    }
    sy_stmt_reset(st);
    return rc == SY_DONE ? SY_OK : rc;
}

void sy_offers_catalog_free(sy_offers_catalog *cat)
{
    if (!cat)
        return;
    for (size_t i = 0; i < cat->n; i++) {
        sy_offer *o = &cat->offers[i];
        if (o->task_heads)
            for (int t = 0; t < o->cp->ntasks; t++)
                free(o->task_heads[t]);
        free(o->task_heads);
        free(o->head);
        sy_campaign_free(o->cp);
        free(o->coupon);
        json_decref(o->lines);
    }
    for (size_t i = 0; i < cat->naudiences; i++) {
        free(cat->audiences[i].id);
        free(cat->audiences[i].expression);
        sy_seg_free(cat->audiences[i].ast);
    }
    free(cat->audiences);
    free(cat->offers);
    free(cat);
}

/* ------------------------------------------------------------------ */
/* one customer's standing                                             */

static int offer_index(const sy_offers_catalog *cat, sy_offer_kind kind, const char *code)
{
    for (size_t i = 0; i < cat->n; i++)
        if (cat->offers[i].kind == kind && !strcmp(cat->offers[i].code, code))
            return (int)i;
    return -1;
}

/* Whether a campaign offer can be shown to the customer at now_ms, as far
 * as the audiences (in: by the catalogue's audience index; NULL: all),
 * the schedule, the open hours and the holdout tell: its per-campaign
 * queries are worth running only then. */
static bool campaign_candidate(const sy_offers_catalog *cat, const sy_offer *o, const bool *in,
                               const char *no, int64_t now_ms)
{
    for (int k = 0; in && k < 2; k++)
        if (o->audience[k] != SY_OFFER_NO_AUDIENCE && !in[o->audience[k]])
            return false;
    const sy_campaign *cp = o->cp;
    return sy_campaign_effective(cp, now_ms) == SY_CST_RUNNING &&
           sy_campaign_open_at(cp, cat->zone, now_ms) &&
           !sy_campaign_in_holdout(cat->tenant, cp->id, no, cp->holdout_percent);
}

int sy_offers_state_load(sy_conn *c, const sy_offers_catalog *cat, const char *no, int64_t now_ms,
                         const bool *in_audience, sy_offers_state *st)
{
    static const char sql_actions[] =
        "SELECT campaign_id, kind, COALESCE(task, ''), COUNT(*),"
        " COALESCE(SUM(CASE WHEN day = $3 THEN 1 ELSE 0 END), 0),"
        " COALESCE(SUM(CASE WHEN week = $4 THEN 1 ELSE 0 END), 0),"
        " COALESCE(MAX(CASE WHEN target_day = $3 THEN 1 ELSE 0 END), 0)"
        " FROM campaign_actions WHERE tenant_id = $1 AND customer_no = $2"
        " GROUP BY campaign_id, kind, task"
        " UNION ALL SELECT campaign_id, 'referral', '', COUNT(*), 0, 0, 0 FROM referral_rewards"
        " WHERE tenant_id = $1 AND customer_no = $2 AND role = 'inviter' GROUP BY campaign_id"
        " UNION ALL SELECT campaign_id, 'claim', '', COUNT(*),"
        " COALESCE(SUM(CASE WHEN day = $3 THEN 1 ELSE 0 END), 0),"
        " COALESCE(SUM(CASE WHEN week = $4 THEN 1 ELSE 0 END), 0), 0 FROM coupon_claims"
        " WHERE tenant_id = $1 AND customer_no = $2 GROUP BY campaign_id";
    static const char sql_grants[] =
        "SELECT item, COALESCE(listing, ''), COUNT(*),"
        " COALESCE(SUM(CASE WHEN month = $3 THEN 1 ELSE 0 END), 0),"
        " COALESCE(SUM(CASE WHEN day = $4 THEN 1 ELSE 0 END), 0) FROM benefit_grants"
        " WHERE tenant_id = $1 AND customer_no = $2 AND status <> 'revoked'"
        " GROUP BY item, listing";
    memset(st, 0, sizeof *st);
    size_t n = cat->n ? cat->n : 1;
    st->today = sy_campaign_day(cat->zone, now_ms);
    st->week = sy_campaign_week(st->today);
    st->month = local_month(cat->zone, now_ms);
    st->use = sy_xcalloc(n, sizeof *st->use);
    int64_t *counts = sy_xcalloc(6 * n, sizeof *counts);
    st->grants_day = counts;
    st->grants_month = counts + n;
    st->grants_total = counts + 2 * n;
    st->item_day = counts + 3 * n;
    st->item_month = counts + 4 * n;
    st->item_total = counts + 5 * n;
    for (size_t i = 0; i < cat->n; i++) {
        const sy_offer *o = &cat->offers[i];
        st->use[i].shown =
            o->kind == SY_OFFER_CAMPAIGN && campaign_candidate(cat, o, in_audience, no, now_ms);
        st->use[i].wave = -1;
        st->use[i].next_wave_at = SY_CAMPAIGN_UNSET;
    }
    bool any_campaign = false, any_listing = false;
    for (size_t i = 0; i < cat->n; i++) {
        any_campaign |= cat->offers[i].kind == SY_OFFER_CAMPAIGN;
        /* listings, and coupon drops whose item's limits count grants */
        any_listing |=
            cat->offers[i].kind == SY_OFFER_LISTING || (st->use[i].shown && cat->offers[i].coupon);
    }
    int rc = SY_OK;
    sy_stmt *q;
    if (any_campaign) {
        if (!(q = sy_conn_prepare(c, sql_actions)))
            return SY_ERR;
        sy_stmt_bind_text(q, 1, cat->tenant);
        sy_stmt_bind_text(q, 2, no);
        sy_stmt_bind_i64(q, 3, st->today);
        sy_stmt_bind_i64(q, 4, st->week);
        while ((rc = sy_stmt_step(q)) == SY_ROW) {
            int k = offer_index(cat, SY_OFFER_CAMPAIGN, sy_stmt_text(q, 0));
            if (k < 0)
                continue;
            sy_offer_use *u = &st->use[k];
            const char *kind = sy_stmt_text(q, 1), *task = sy_stmt_text(q, 2);
            int64_t total = sy_stmt_i64(q, 3), today = sy_stmt_i64(q, 4), week = sy_stmt_i64(q, 5);
            if (!strcmp(kind, "referral")) {
                u->invites_rewarded = total;
                continue;
            }
            if (!strcmp(kind, "checkin") && sy_stmt_i64(q, 6))
                u->checked_in_today = true;
            if (strcmp(kind, "makeup") != 0) {
                u->total += total;
                u->today += today;
                u->week += week;
            }
            if (!strcmp(kind, "task") && task[0]) {
                const sy_campaign *cp = cat->offers[k].cp;
                for (int t = 0; t < cp->ntasks; t++) {
                    if (strcmp(cp->tasks[t].code, task) != 0)
                        continue;
                    sy_campaign_period p = cp->tasks[t].period;
                    bool done = p == SY_PERIOD_DAY    ? today > 0
                                : p == SY_PERIOD_WEEK ? week > 0
                                                      : total > 0;
                    if (done) {
                        if (!u->tasks_done)
                            u->tasks_done = json_object();
                        json_object_set_new(u->tasks_done, task, json_true());
                    }
                }
            }
        }
        sy_stmt_reset(q);
        if (rc != SY_DONE)
            return rc;
        rc = SY_OK;
    }
    if (any_listing) {
        if (!(q = sy_conn_prepare(c, sql_grants)))
            return SY_ERR;
        sy_stmt_bind_text(q, 1, cat->tenant);
        sy_stmt_bind_text(q, 2, no);
        sy_stmt_bind_i64(q, 3, st->month);
        sy_stmt_bind_i64(q, 4, st->today);
        while ((rc = sy_stmt_step(q)) == SY_ROW) {
            const char *item = sy_stmt_text(q, 0), *listing = sy_stmt_text(q, 1);
            int64_t total = sy_stmt_i64(q, 2), month = sy_stmt_i64(q, 3), day = sy_stmt_i64(q, 4);
            for (size_t i = 0; i < cat->n; i++) {
                const sy_offer *o = &cat->offers[i];
                bool counted = o->kind == SY_OFFER_LISTING || (st->use[i].shown && o->coupon);
                if (!counted || strcmp(o->item, item) != 0)
                    continue;
                st->item_total[i] += total;
                st->item_month[i] += month;
                st->item_day[i] += day;
                if (!strcmp(o->code, listing)) {
                    st->grants_total[i] += total;
                    st->grants_month[i] += month;
                    st->grants_day[i] += day;
                }
            }
        }
        sy_stmt_reset(q);
        if (rc != SY_DONE)
            return rc;
        rc = SY_OK;
    }
    for (size_t i = 0; i < cat->n && rc == SY_OK; i++) {
        const sy_offer *o = &cat->offers[i];
        if (!st->use[i].shown || o->cp->type != SY_CAMPAIGN_LOTTERY)
            continue;
        if (!(q = sy_conn_prepare(c, k_draws_sql)))
            return SY_ERR;
        sy_stmt_bind_text(q, 1, cat->tenant);
        sy_stmt_bind_text(q, 2, o->code);
        sy_stmt_bind_text(q, 3, no);
        sy_stmt_bind_i64(q, 4, st->today);
        sy_stmt_bind_i64(q, 5, st->week);
        rc = sy_stmt_step(q);
        if (rc == SY_ROW) {
            sy_offer_use *u = &st->use[i];
            u->total += sy_stmt_i64(q, 0);
            u->today += u->draws_today = sy_stmt_i64(q, 1);
            u->week += sy_stmt_i64(q, 2);
            rc = SY_OK;
        }
        sy_stmt_reset(q);
    }
    if (rc != SY_OK)
        return rc;
    for (size_t i = 0; i < cat->n && rc == SY_OK; i++) {
        const sy_offer *o = &cat->offers[i];
        if (!st->use[i].shown || !o->coupon)
            continue;
        sy_offer_use *u = &st->use[i];
        sy_coupon_when when;
        sy_coupon_locate(o->coupon, o->cp, cat->zone, now_ms, &when);
        u->next_wave_at = when.next_at;
        if (when.wave < 0)
            continue;
        u->wave = when.wave;
        u->wave_at = when.wave_at;
        if (!(q = sy_conn_prepare(c, k_wave_sql)))
            return SY_ERR;
        sy_stmt_bind_text(q, 1, cat->tenant);
        sy_stmt_bind_text(q, 2, o->code);
        sy_stmt_bind_text(q, 3, no);
        sy_stmt_bind_i64(q, 4, when.day);
        sy_stmt_bind_i64(q, 5, when.wave);
        int qrc = sy_stmt_step(q);
        if (qrc == SY_ROW) {
            int64_t released = o->coupon->waves[when.wave].quantity;
            u->wave_left = released - sy_stmt_i64(q, 0);
            u->wave_mine = sy_stmt_i64(q, 1);
        }
        sy_stmt_reset(q);
        if (qrc != SY_ROW)
            return qrc;
    }
    return rc;
}

void sy_offers_state_free(const sy_offers_catalog *cat, sy_offers_state *st)
{
    if (st->use)
        for (size_t i = 0; i < cat->n; i++)
            json_decref(st->use[i].tasks_done);
    free(st->use);
    free(st->grants_day);
    memset(st, 0, sizeof *st);
}

/* ------------------------------------------------------------------ */
/* the answer                                                          */

int sy_offers_compare(const void *a, const void *b)
{
    const sy_offer *x = *(const sy_offer *const *)a, *y = *(const sy_offer *const *)b;
    if (x->priority != y->priority)
        return x->priority > y->priority ? -1 : 1;
    if (x->ends_at != y->ends_at)
        return x->ends_at < y->ends_at ? -1 : 1;
    if (x->kind != y->kind)
        return x->kind < y->kind ? -1 : 1;
    return strcmp(x->code, y->code);
}

static int64_t left_min(int64_t acc, int64_t limit, int64_t used)
{
    if (limit == SY_CAMPAIGN_UNSET)
        return acc;
    int64_t l = limit > used ? limit - used : 0;
    return acc < 0 || l < acc ? l : acc;
}

static bool in_audiences(const sy_offer *o, const bool *in)
{
    for (int k = 0; k < 2; k++)
        if (o->audience[k] != SY_OFFER_NO_AUDIENCE && !in[o->audience[k]])
            return false;
    return true;
}

static bool suits(const sy_campaign *cp, const sy_offers_profile *p, int64_t today)
{
    if (!cp->product_risk)
        return true;
    return p->risk_level >= cp->product_risk && p->risk_assessed_day != SY_CAMPAIGN_UNSET &&
           p->risk_assessed_day >= today - cp->risk_validity_days;
}

/* Appends a decimal integer (printf's machinery was a fifth of a request). */
static void put_i64(sy_buf *b, int64_t v)
{
    char tmp[24];
    int n = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        tmp[n++] = '-';
    char out[24];
    for (int i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    sy_buf_append(b, out, (size_t)n);
}

static void put_left(sy_buf *b, const char *member, int64_t limit, int64_t used)
{
    sy_buf_puts(b, member);
    if (limit == SY_CAMPAIGN_UNSET)
        sy_buf_puts(b, "null");
    else
        put_i64(b, limit > used ? limit - used : 0);
}

static void put_time(sy_buf *b, const char *member, int64_t ms)
{
    sy_buf_puts(b, member);
    if (ms == SY_CAMPAIGN_UNSET) {
        sy_buf_puts(b, "null");
        return;
    }
    char t[40];
    sy_format_time(ms, t, sizeof t);
    sy_buf_printf(b, "\"%s\"", t);
}

/* What is left of `limit` after `used` (never below 0). */
static int64_t left_of(int64_t limit, int64_t used)
{
    return limit > used ? limit - used : 0;
}

/* left (-1: no cap yet) capped by a campaign limit (SY_CAMPAIGN_UNSET: none). */
static int64_t left_cap(int64_t left, int64_t limit, int64_t used)
{
    if (limit == SY_CAMPAIGN_UNSET)
        return left;
    int64_t l = left_of(limit, used);
    return left < 0 || l < left ? l : left;
}

/* name, then n, or null when n < 0. */
static void put_count(sy_buf *b, const char *name, int64_t n)
{
    sy_buf_puts(b, name);
    if (n < 0)
        sy_buf_puts(b, "null");
    else
        sy_buf_printf(b, "%lld", (long long)n);
}

/* A coupon drop: the wave open now and what is left of it, this customer's
 * claims left (the wave's, within the campaign's limits) and the next
 * wave. */
static void render_coupon(sy_buf *b, const sy_offer *o, const sy_offers_state *st, size_t i)
{
    const sy_offer_use *u = &st->use[i];
    const sy_campaign *cp = o->cp;
    const struct sy_coupon_rules *cr = o->coupon;
    int64_t left = 0;
    if (u->wave >= 0 && u->wave_left > 0) {
        left = cr->per_wave > u->wave_mine ? cr->per_wave - u->wave_mine : 0;
        left = left_min(left, cp->limit_day, u->today);
        left = left_min(left, cp->limit_week, u->week);
        left = left_min(left, cp->limit_total, u->total);
        /* a claim the item's own limits would refuse is no claim left */
        left = left_min(left, o->item_day, st->item_day[i]);
        left = left_min(left, o->item_month, st->item_month[i]);
        left = left_min(left, o->item_total, st->item_total[i]);
    }
    sy_buf_puts(b, ",\"coupon_drop\":{\"item\":\"");
    sy_buf_puts(b, cr->item); /* a benefit code: nothing to escape */
    sy_buf_printf(b, "\",\"per_wave\":%lld", (long long)cr->per_wave);
    if (u->wave >= 0) {
        sy_buf_printf(b, ",\"wave\":%d", u->wave);
        put_time(b, ",\"wave_opened_at\":", u->wave_at);
        sy_buf_printf(b, ",\"wave_remaining\":%lld",
                      (long long)(u->wave_left > 0 ? u->wave_left : 0));
    } else {
        sy_buf_puts(b, ",\"wave\":null,\"wave_opened_at\":null,\"wave_remaining\":null");
    }
    sy_buf_printf(b, ",\"claims_left\":%lld", (long long)left);
    put_time(b, ",\"next_wave_at\":", u->next_wave_at);
    sy_buf_puts(b, "}");
}

static void render_campaign(sy_buf *b, const sy_offers_catalog *cat, const sy_offer *o,
                            const sy_offers_state *st, size_t i)
{
    const sy_offer_use *u = &st->use[i];
    const sy_campaign *cp = o->cp;
    sy_buf_append(b, o->head, o->head_len);
    put_left(b, ",\"limits_left\":{\"per_day\":", cp->limit_day, u->today);
    put_left(b, ",\"per_week\":", cp->limit_week, u->week);
    put_left(b, ",\"per_campaign\":", cp->limit_total, u->total);
    sy_buf_puts(b, "}");
    if (cp->type == SY_CAMPAIGN_CHECKIN) {
        sy_buf_puts(b, u->checked_in_today ? ",\"checkin\":{\"checked_in_today\":true"
                                           : ",\"checkin\":{\"checked_in_today\":false");
        sy_buf_puts(b, cp->makeup_cost != SY_CAMPAIGN_UNSET ? ",\"makeup\":true}"
                                                            : ",\"makeup\":false}");
    } else if (cp->type == SY_CAMPAIGN_TASK) {
        sy_buf_puts(b, ",\"tasks\":[");
        for (int t = 0; t < cp->ntasks; t++) {
            bool done = u->tasks_done && json_object_get(u->tasks_done, cp->tasks[t].code);
            if (t)
                sy_buf_puts(b, ",");
            sy_buf_puts(b, o->task_heads[t]);
            sy_buf_puts(b, done ? ",\"done\":true}" : ",\"done\":false}");
        }
        sy_buf_puts(b, "]");
    } else if (cp->type == SY_CAMPAIGN_LOTTERY) {
        /* draws left today: the table's daily cap and the campaign's
         * limits (null: neither caps them); free ones first */
        int64_t left = o->draws_per_day < 0 ? -1 : left_of(o->draws_per_day, u->draws_today);
        if (!o->has_table)
            left = 0;               /* no prizes yet: no draw */
        else if (o->draw_cost == 0) /* free draws only: they end with the free ones */
            left = left_cap(left, o->free_per_day, u->draws_today);
        left = left_cap(left, cp->limit_day, u->today);
        left = left_cap(left, cp->limit_week, u->week);
        left = left_cap(left, cp->limit_total, u->total);
        sy_buf_puts(b, ",\"lottery\":{\"prizes\":");
        sy_buf_puts(b, o->has_table ? "true" : "false");
        put_count(b, ",\"draws_per_day\":", o->draws_per_day);
        sy_buf_printf(b, ",\"draws_today\":%lld", (long long)u->draws_today);
        put_count(b, ",\"draws_left_today\":", left);
        int64_t free_left = left_of(o->free_per_day, u->draws_today);
        sy_buf_printf(b, ",\"free_left_today\":%lld",
                      (long long)(left >= 0 && left < free_left ? left : free_left));
        if (o->draw_cost > 0) {
            sy_buf_printf(b, ",\"cost\":{\"points\":%lld,\"point_type\":\"",
                          (long long)o->draw_cost);
            sy_buf_puts(b, o->cost_type); /* a point type code: nothing to escape */
            sy_buf_puts(b, "\"}");
        } else {
            sy_buf_puts(b, ",\"cost\":null");
        }
        sy_buf_puts(b, "}");
    } else if (cp->type == SY_CAMPAIGN_REFERRAL) {
        sy_buf_printf(b, ",\"referral\":{\"invites_rewarded\":%lld",
                      (long long)u->invites_rewarded);
        if (o->max_per_inviter >= 0)
            sy_buf_printf(b, ",\"max_per_inviter\":%lld,\"invites_left\":%lld",
                          (long long)o->max_per_inviter,
                          (long long)(o->max_per_inviter > u->invites_rewarded
                                          ? o->max_per_inviter - u->invites_rewarded
                                          : 0));
        sy_buf_puts(b, "}");
    } else if (cp->type == SY_CAMPAIGN_COUPON_DROP && o->coupon) {
        render_coupon(b, o, st, i);
    }
    sy_buf_puts(b, "}");
}

/* What is left of a listing's limits and its item's (-1: no limit). */
static int64_t listing_left(const sy_offer *o, const sy_offers_state *st, size_t i)
{
    int64_t l = -1;
    l = left_min(l, o->lim_day, st->grants_day[i]);
    l = left_min(l, o->lim_month, st->grants_month[i]);
    l = left_min(l, o->lim_total, st->grants_total[i]);
    l = left_min(l, o->item_day, st->item_day[i]);
    l = left_min(l, o->item_month, st->item_month[i]);
    l = left_min(l, o->item_total, st->item_total[i]);
    return l;
}

size_t sy_offers_render(const sy_offers_catalog *cat, const sy_offers_state *st,
                        const bool *in_audience, const sy_offers_profile *prof, int64_t now_ms,
                        sy_buf *out)
{
    const sy_offer **pick = sy_xmalloc((cat->n ? cat->n : 1) * sizeof *pick);
    size_t np = 0;
    for (size_t i = 0; i < cat->n; i++) {
        const sy_offer *o = &cat->offers[i];
        if (!in_audiences(o, in_audience))
            continue;
        if (o->kind == SY_OFFER_CAMPAIGN) {
            const sy_campaign *cp = o->cp;
            if (!st->use[i].shown || !suits(cp, prof, st->today) ||
                (cp->budget_points != SY_CAMPAIGN_UNSET &&
                 atomic_load(&o->spent_points) >= cp->budget_points) ||
                (cp->budget_cost != SY_CAMPAIGN_UNSET &&
                 atomic_load(&o->spent_cost) >= cp->budget_cost))
                continue;
        } else if (o->kind == SY_OFFER_LISTING) {
            if (atomic_load(&o->remaining) <= 0 || listing_left(o, st, i) == 0 ||
                (o->available_from != SY_BENEFIT_UNSET && now_ms < o->available_from) ||
                (o->available_until != SY_BENEFIT_UNSET && now_ms >= o->available_until))
                continue;
        }
        pick[np++] = o;
    }
    qsort(pick, np, sizeof *pick, sy_offers_compare);
    sy_buf_puts(out, "[");
    for (size_t k = 0; k < np; k++) {
        const sy_offer *o = pick[k];
        size_t i = (size_t)(o - cat->offers);
        if (k)
            sy_buf_puts(out, ",");
        if (o->kind == SY_OFFER_CAMPAIGN) {
            render_campaign(out, cat, o, st, i);
        } else if (o->kind == SY_OFFER_PACKAGE) {
            sy_buf_append(out, o->head, o->head_len);
            sy_buf_puts(out, "}");
        } else {
            int64_t l = listing_left(o, st, i);
            sy_buf_append(out, o->head, o->head_len);
            sy_buf_puts(out, ",\"stock\":");
            put_i64(out, atomic_load(&o->remaining));
            if (l < 0) {
                sy_buf_puts(out, ",\"exchanges_left\":null}");
            } else {
                sy_buf_puts(out, ",\"exchanges_left\":");
                put_i64(out, l);
                sy_buf_puts(out, "}");
            }
        }
    }
    sy_buf_puts(out, "]");
    free(pick);
    return np;
}

json_t *sy_offers_build(const sy_offers_catalog *cat, const sy_offers_state *st,
                        const bool *in_audience, const sy_offers_profile *prof, int64_t now_ms)
{
    sy_buf b = {0};
    sy_offers_render(cat, st, in_audience, prof, now_ms, &b);
    char *text = sy_buf_steal(&b);
    json_error_t e;
    json_t *items = json_loads(text, 0, &e);
    if (!items)
        sy_error("offers: rendered invalid JSON: %s", e.text);
    free(text);
    return json_pack("{s:o}", "items", items ? items : json_array());
}

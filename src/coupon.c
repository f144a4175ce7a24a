/* coupon.c — the rules of coupon drops (coupon.h, docs/campaigns.md): the
 * `coupon_drop` section, where a moment falls among the waves, the claim
 * in the writer's transaction, today's waves, and the invariant checks of
 * `siyu check`.
 *
 * A claim reuses the campaign engine's checks (campaign.h: admission,
 * limits, budget, issuing) and the benefits catalogue through
 * sy_campaign_issue, in the same transaction: the grant (and the item's
 * stock), the wave's count, the budget and the claim's row commit together
 * or not at all.  The wave's count is taken with an UPDATE that repeats
 * the condition (claimed < released) and the schema's CHECK backs it. */
#include "coupon.h"
#include "check.h"
#include "ledger.h"
#include "util.h"
#include "validate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DAY_MS 86400000LL

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* ------------------------------------------------------------------ */
/* the rules                                                           */

/* "HH:MM" (00:00 to 23:59) as minutes; -1 when it is not one. */
static int parse_hhmm(const char *s)
{
    if (!s || strlen(s) != 5 || s[2] != ':')
        return -1;
    for (int i = 0; i < 5; i++)
        if (i != 2 && (s[i] < '0' || s[i] > '9'))
            return -1;
    int h = (s[0] - '0') * 10 + (s[1] - '0'), m = (s[3] - '0') * 10 + (s[4] - '0');
    return h < 24 && m < 60 ? h * 60 + m : -1;
}

bool sy_coupon_rules_parse(json_t *sec, sy_coupon_rules *out, char *field, size_t fieldlen,
                           char *msg, size_t msglen)
{
    static const char *const fields[] = {"item", "quantity_per_wave", "waves", "per_wave", NULL};
    static const char *const wave_f[] = {"at", "quantity", NULL};
    sy_perr e = {field, msg, fieldlen, msglen};
    memset(out, 0, sizeof *out);
    out->per_wave = 1;
    if (!sec || !json_is_object(sec))
        return sy_perr_fail(&e, "/coupon_drop",
                            "a coupon_drop campaign needs a 'coupon_drop' object (item,"
                            " quantity_per_wave, waves)");
    if (!sy_perr_only(&e, sec, "/coupon_drop", fields))
        return false;
    json_t *it = json_object_get(sec, "item");
    const char *item = json_string_value(it);
    if (!it || json_is_null(it))
        return sy_perr_fail(&e, "/coupon_drop/item", "'item' is required: the coupon released");
    if (!item || !sy_benefit_code_valid(item) || strlen(item) >= sizeof out->item)
        return sy_perr_fail(&e, "/coupon_drop/item",
                            "'item' must be a benefit item code (see GET /v1/benefits/items)");
    snprintf(out->item, sizeof out->item, "%s", item);
    int64_t qpw = SY_CAMPAIGN_UNSET;
    if (!sy_perr_int(&e, sec, "/coupon_drop", "quantity_per_wave", false, 1, SY_COUPON_QUANTITY_MAX,
                     &qpw) ||
        !sy_perr_int(&e, sec, "/coupon_drop", "per_wave", false, 1, SY_COUPON_PER_WAVE_MAX,
                     &out->per_wave))
        return false;
    json_t *ws = json_object_get(sec, "waves");
    if (!json_is_array(ws) || json_array_size(ws) < 1 || json_array_size(ws) > SY_COUPON_WAVES_MAX)
        return sy_perr_fail(&e, "/coupon_drop/waves",
                            "'waves' must be an array of 1 to %d waves, e.g. [{\"at\": \"10:00\"}]",
                            SY_COUPON_WAVES_MAX);
    size_t i;
    json_t *v;
    json_array_foreach (ws, i, v) {
        char p[64], pm[80];
        snprintf(p, sizeof p, "/coupon_drop/waves/%zu", i);
        if (!json_is_object(v))
            return sy_perr_fail(&e, p, "a wave must be an object with 'at' (and 'quantity')");
        if (!sy_perr_only(&e, v, p, wave_f))
            return false;
        sy_coupon_wave *w = &out->waves[out->nwaves];
        w->at = parse_hhmm(json_string_value(json_object_get(v, "at")));
        snprintf(pm, sizeof pm, "%s/at", p);
        if (w->at < 0)
            return sy_perr_fail(&e, pm,
                                "'at' must be a local time HH:MM (00:00 to 23:59) in the"
                                " tenant's time zone");
        if (out->nwaves > 0 && w->at <= out->waves[out->nwaves - 1].at)
            return sy_perr_fail(&e, pm,
                                "waves must be in time order, each later than the one"
                                " before");
        w->quantity = qpw;
        if (!sy_perr_int(&e, v, p, "quantity", false, 1, SY_COUPON_QUANTITY_MAX, &w->quantity))
            return false;
        if (w->quantity == SY_CAMPAIGN_UNSET) {
            snprintf(pm, sizeof pm, "%s/quantity", p);
            return sy_perr_fail(&e, pm,
                                "a wave's 'quantity' is required without 'quantity_per_wave'");
        }
        out->nwaves++;
    }
    return true;
}

int sy_coupon_check_refs(sy_conn *c, const char *tenant, const sy_coupon_rules *rules,
                         sy_campaign_result *res)
{
    sy_campaign_reward r;
    memset(&r, 0, sizeof r);
    snprintf(r.item, sizeof r.item, "%s", rules->item);
    return sy_campaign_reward_check(c, tenant, &r, "/coupon_drop", res);
}

/* ------------------------------------------------------------------ */
/* time                                                                */

int64_t sy_coupon_local_ms(const char *zone, int64_t day, int minute)
{
    int64_t local = day * DAY_MS + (int64_t)minute * 60000;
    int64_t guess = local - sy_ledger_tz_offset(zone, local);
    return local - sy_ledger_tz_offset(zone, guess);
}

static int local_minute(const char *zone, int64_t at_ms)
{
    int64_t local = at_ms + sy_ledger_tz_offset(zone, at_ms);
    return (int)((local - floor_div(local, DAY_MS) * DAY_MS) / 60000);
}

/* The wave open at t (day, index, opening) — index -1 when none yet. */
static void wave_at(const sy_coupon_rules *r, const char *zone, int64_t t, int64_t *day, int *wave,
                    int64_t *opened)
{
    *day = sy_campaign_day(zone, t);
    int m = local_minute(zone, t);
    *wave = -1;
    for (int i = 0; i < r->nwaves; i++)
        if (r->waves[i].at <= m)
            *wave = i;
    *opened = *wave >= 0 ? sy_coupon_local_ms(zone, *day, r->waves[*wave].at) : SY_CAMPAIGN_UNSET;
}

/* The first wave opening after t. */
static int64_t next_after(const sy_coupon_rules *r, const char *zone, int64_t t)
{
    int64_t day = sy_campaign_day(zone, t);
    for (int64_t d = day; d <= day + 2; d++)
        for (int i = 0; i < r->nwaves; i++) {
            int64_t at = sy_coupon_local_ms(zone, d, r->waves[i].at);
            if (at > t)
                return at;
        }
    return SY_CAMPAIGN_UNSET; /* not reached: every day has its waves */
}

void sy_coupon_locate(const sy_coupon_rules *rules, const sy_campaign *cp, const char *zone,
                      int64_t now_ms, sy_coupon_when *out)
{
    wave_at(rules, zone, now_ms, &out->day, &out->wave, &out->wave_at);
    if (now_ms < cp->starts_at) {
        int64_t d, opened;
        int w;
        out->wave = -1;
        out->wave_at = SY_CAMPAIGN_UNSET;
        wave_at(rules, zone, cp->starts_at, &d, &w, &opened);
        out->next_at = w >= 0 ? cp->starts_at : next_after(rules, zone, cp->starts_at);
    } else {
        out->next_at = next_after(rules, zone, now_ms);
    }
    if (out->next_at != SY_CAMPAIGN_UNSET && out->next_at >= cp->ends_at)
        out->next_at = SY_CAMPAIGN_UNSET;
}

/* ------------------------------------------------------------------ */
/* loading                                                             */

static int load(sy_conn *c, const char *tenant, const char *id, sy_campaign **cpp,
                sy_coupon_rules *rules, sy_campaign_result *why)
{
    int rc = sy_campaign_load(c, tenant, id, cpp);
    if (rc != SY_OK)
        return rc;
    if ((*cpp)->type != SY_CAMPAIGN_COUPON_DROP) {
        snprintf(why->other, sizeof why->other, "%s", sy_campaign_type_name((*cpp)->type));
        return SY_CAMPAIGN_WRONG_TYPE;
    }
    char field[96], msg[200];
    if (!sy_coupon_rules_parse((*cpp)->extra, rules, field, sizeof field, msg, sizeof msg)) {
        sy_error("campaign %s/%s: its coupon_drop rules do not parse (%s: %s)", tenant, id, field,
                 msg);
        return SY_ERR;
    }
    return SY_OK;
}

/* ------------------------------------------------------------------ */
/* the claim                                                           */

static int count_claims(sy_conn *c, const sy_campaign *cp, const char *tenant, const char *no,
                        int64_t from_day, int64_t to_day, int64_t *n)
{
    static const char sql[] =
        "SELECT COUNT(*) FROM coupon_claims WHERE tenant_id = $1 AND campaign_id = $2"
        " AND customer_no = $3 AND day >= $4 AND day <= $5";
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, cp->id);
    sy_stmt_bind_text(st, 3, no);
    sy_stmt_bind_i64(st, 4, from_day);
    sy_stmt_bind_i64(st, 5, to_day);
    int rc = sy_stmt_step(st);
    *n = rc == SY_ROW ? sy_stmt_i64(st, 0) : 0;
    sy_stmt_reset(st);
    return rc == SY_ROW ? SY_OK : rc;
}

/* The wave's row: released and claimed (absent: its quantity, 0). */
static int wave_get(sy_conn *c, const char *tenant, const char *id, int64_t day, int wave,
                    int64_t quantity, int64_t *released, int64_t *claimed)
{
    static const char sql[] = "SELECT released, claimed FROM coupon_waves WHERE tenant_id = $1"
                              " AND campaign_id = $2 AND day = $3 AND wave = $4";
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, id);
    sy_stmt_bind_i64(st, 3, day);
    sy_stmt_bind_i64(st, 4, wave);
    int rc = sy_stmt_step(st);
    *released = rc == SY_ROW ? sy_stmt_i64(st, 0) : quantity;
    *claimed = rc == SY_ROW ? sy_stmt_i64(st, 1) : 0;
    sy_stmt_reset(st);
    return rc == SY_ROW || rc == SY_DONE ? SY_OK : rc;
}

/* Takes one unit of the wave (its row written by the first claim). */
static int wave_take(sy_conn *c, const char *tenant, const char *id, int64_t day, int wave,
                     int64_t opens_at, int64_t quantity)
{
    static const char sql_put[] =
        "INSERT INTO coupon_waves (tenant_id, campaign_id, day, wave, opens_at, released,"
        " claimed) VALUES ($1, $2, $3, $4, $5, $6, 0)"
        " ON CONFLICT (tenant_id, campaign_id, day, wave) DO NOTHING";
    static const char sql_take[] =
        "UPDATE coupon_waves SET claimed = claimed + 1 WHERE tenant_id = $1 AND campaign_id = $2"
        " AND day = $3 AND wave = $4 AND claimed < released";
    sy_stmt *st = sy_conn_prepare(c, sql_put);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, id);
    sy_stmt_bind_i64(st, 3, day);
    sy_stmt_bind_i64(st, 4, wave);
    sy_stmt_bind_i64(st, 5, opens_at);
    sy_stmt_bind_i64(st, 6, quantity);
    int rc = sy_stmt_exec(st);
    if (rc != SY_OK)
        return rc;
    if (!(st = sy_conn_prepare(c, sql_take)))
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, id);
    sy_stmt_bind_i64(st, 3, day);
    sy_stmt_bind_i64(st, 4, wave);
    rc = sy_stmt_exec(st);
    if (rc == SY_OK && sy_conn_changes(c) != 1) {
        sy_error("coupon drop %s/%s: wave %lld/%d taken past its release", tenant, id,
                 (long long)day, wave);
        return SY_ERR;
    }
    return rc;
}

/* The customer's claims in the wave and the highest wave_n. */
static int wave_claims(sy_conn *c, const char *tenant, const char *id, const char *no, int64_t day,
                       int wave, int64_t *n, int64_t *max_n)
{
    static const char sql[] =
        "SELECT COUNT(*), COALESCE(MAX(wave_n), 0) FROM coupon_claims WHERE tenant_id = $1"
        " AND campaign_id = $2 AND customer_no = $3 AND day = $4 AND wave = $5";
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, id);
    sy_stmt_bind_text(st, 3, no);
    sy_stmt_bind_i64(st, 4, day);
    sy_stmt_bind_i64(st, 5, wave);
    int rc = sy_stmt_step(st);
    *n = rc == SY_ROW ? sy_stmt_i64(st, 0) : 0;
    *max_n = rc == SY_ROW ? sy_stmt_i64(st, 1) : 0;
    sy_stmt_reset(st);
    return rc == SY_ROW ? SY_OK : rc;
}

int sy_coupon_claim(sy_conn *c, const sy_campaign_who *w, const char *campaign, const char *device,
                    const char *ip, sy_coupon_outcome *out)
{
    static const char sql_claim[] =
        "INSERT INTO coupon_claims (tenant_id, campaign_id, id, customer_no, day, week, wave,"
        " wave_n, item, grant_code, cost, device_id, ip, created_at) VALUES ($1, $2, $3, $4, $5,"
        " $6, $7, $8, $9, $10, $11, $12, $13, $14)";
    memset(out, 0, sizeof *out);
    out->when.wave = -1;
    out->when.wave_at = out->when.next_at = SY_CAMPAIGN_UNSET;
    sy_campaign *cp = NULL;
    sy_coupon_rules rules;
    char zone[65];
    int rc = load(c, w->tenant, campaign, &cp, &rules, &out->why);
    if (rc != SY_OK || (rc = sy_campaign_zone(c, w->tenant, zone)) != SY_OK)
        goto done;
    snprintf(out->item, sizeof out->item, "%s", rules.item);
    sy_coupon_locate(&rules, cp, zone, w->now_ms, &out->when);
    /* a scheduled drop before its start: its first wave is still to come */
    if (cp->status == SY_CST_SCHEDULED && w->now_ms < cp->starts_at) {
        rc = SY_COUPON_NOT_STARTED;
        goto done;
    }
    if ((rc = sy_campaign_admit(c, cp, w, zone, w->now_ms, &out->why)) != SY_OK)
        goto done;
    if (out->when.wave < 0) {
        rc = SY_COUPON_NOT_STARTED;
        goto done;
    }
    const sy_coupon_when *at = &out->when;
    if ((rc = wave_get(c, w->tenant, cp->id, at->day, at->wave, rules.waves[at->wave].quantity,
                       &out->released, &out->claimed)) != SY_OK)
        goto done;
    if (out->claimed >= out->released) {
        rc = SY_COUPON_SOLD_OUT;
        goto done;
    }
    int64_t mine, max_n;
    if ((rc = wave_claims(c, w->tenant, cp->id, w->customer_no, at->day, at->wave, &mine,
                          &max_n)) != SY_OK)
        goto done;
    if (mine >= rules.per_wave) {
        snprintf(out->why.other, sizeof out->why.other, "wave");
        out->why.limit = rules.per_wave;
        rc = SY_CAMPAIGN_LIMIT_REACHED;
        goto done;
    }
    if ((rc = sy_campaign_check_limits(c, cp, w->tenant, w->customer_no, at->day, count_claims,
                                       &out->why)) != SY_OK)
        goto done;
    sy_campaign_reward reward;
    memset(&reward, 0, sizeof reward);
    snprintf(reward.item, sizeof reward.item, "%s", rules.item);
    int64_t points = 0;
    if ((rc = sy_campaign_reward_cost(c, w->tenant, &reward, &points, &out->cost)) != SY_OK ||
        (rc = sy_campaign_check_budget(c, w->tenant, cp->id, 0, out->cost, &out->why)) != SY_OK)
        goto done;
    sy_ordered_id("cc_", w->now_ms, out->claim_id, sizeof out->claim_id);
    char reason[160];
    snprintf(reason, sizeof reason, "coupon drop, campaign %s", cp->id);
    sy_campaign_outcome io;
    memset(&io, 0, sizeof io);
    rc = sy_campaign_issue(c, cp, w, &reward, out->claim_id, reason, &io);
    if (rc > 0) {
        out->why = io.why;
        goto done;
    }
    if (rc != SY_OK)
        goto done;
    snprintf(out->grant_code, sizeof out->grant_code, "%s", io.grant_code);
    if ((rc = wave_take(c, w->tenant, cp->id, at->day, at->wave, at->wave_at, out->released)) !=
            SY_OK ||
        (rc = sy_campaign_spend_budget(c, w->tenant, cp->id, 0, out->cost)) != SY_OK)
        goto done;
    sy_stmt *st = sy_conn_prepare(c, sql_claim);
    if (!st) {
        rc = SY_ERR;
        goto done;
    }
    sy_stmt_bind_text(st, 1, w->tenant);
    sy_stmt_bind_text(st, 2, cp->id);
    sy_stmt_bind_text(st, 3, out->claim_id);
    sy_stmt_bind_text(st, 4, w->customer_no);
    sy_stmt_bind_i64(st, 5, at->day);
    sy_stmt_bind_i64(st, 6, sy_campaign_week(at->day));
    sy_stmt_bind_i64(st, 7, at->wave);
    sy_stmt_bind_i64(st, 8, max_n + 1);
    sy_stmt_bind_text(st, 9, rules.item);
    sy_stmt_bind_text(st, 10, out->grant_code);
    sy_stmt_bind_i64(st, 11, out->cost);
    sy_stmt_bind_text(st, 12, device);
    sy_stmt_bind_text(st, 13, ip);
    sy_stmt_bind_i64(st, 14, w->now_ms);
    if ((rc = sy_stmt_exec(st)) != SY_OK)
        goto done;
    out->claimed++;
    out->claims_left = rules.per_wave - mine - 1;
done:
    sy_campaign_free(cp);
    return rc;
}

/* ------------------------------------------------------------------ */
/* today's waves                                                       */

int sy_coupon_waves_json(sy_conn *c, const char *tenant, const char *campaign, int64_t now_ms,
                         json_t **out)
{
    *out = NULL;
    sy_campaign *cp = NULL;
    sy_coupon_rules rules;
    sy_campaign_result why;
    char zone[65];
    int rc = load(c, tenant, campaign, &cp, &rules, &why);
    if (rc != SY_OK || (rc = sy_campaign_zone(c, tenant, zone)) != SY_OK)
        goto done;
    sy_coupon_when when;
    sy_coupon_locate(&rules, cp, zone, now_ms, &when);
    json_t *ws = json_array();
    for (int i = 0; i < rules.nwaves && rc == SY_OK; i++) {
        int64_t released, claimed;
        rc = wave_get(c, tenant, cp->id, when.day, i, rules.waves[i].quantity, &released, &claimed);
        char hhmm[24];
        snprintf(hhmm, sizeof hhmm, "%02d:%02d", rules.waves[i].at / 60, rules.waves[i].at % 60);
        int64_t opens = sy_coupon_local_ms(zone, when.day, rules.waves[i].at);
        const char *state = i == when.wave ? "open" : i < when.wave ? "closed" : "upcoming";
        json_array_append_new(ws, json_pack("{s:i, s:s, s:o, s:I, s:I, s:I, s:s}", "wave", i, "at",
                                            hhmm, "opens_at", sy_json_time(opens), "released",
                                            (json_int_t)released, "claimed", (json_int_t)claimed,
                                            "remaining", (json_int_t)(released - claimed), "state",
                                            state));
    }
    char day[11];
    sy_format_date(when.day, day);
    *out = json_pack("{s:s, s:s, s:s, s:s, s:I, s:o, s:o, s:o}", "campaign", cp->id, "item",
                     rules.item, "day", day, "status",
                     sy_campaign_status_name(sy_campaign_effective(cp, now_ms)), "per_wave",
                     (json_int_t)rules.per_wave, "waves", ws, "current_wave",
                     when.wave >= 0 ? json_integer(when.wave) : json_null(), "next_wave_at",
                     when.next_at != SY_CAMPAIGN_UNSET ? sy_json_time(when.next_at) : json_null());
    if (rc != SY_OK) {
        json_decref(*out);
        *out = NULL;
    }
done:
    sy_campaign_free(cp);
    return rc;
}

/* ------------------------------------------------------------------ */
/* siyu check                                                          */

int sy_coupon_check(sy_conn *c, const char *tenant, void (*report)(void *ud, const char *line),
                    void *ud, int64_t *violations, int64_t *checked)
{
    /* per wave: claimed = its claims, and claimed <= released */
    static const char sql_waves[] =
        "SELECT w.campaign_id, w.day, w.wave, w.released, w.claimed, (SELECT COUNT(*) FROM"
        " coupon_claims c WHERE c.tenant_id = w.tenant_id AND c.campaign_id = w.campaign_id AND"
        " c.day = w.day AND c.wave = w.wave) FROM coupon_waves w WHERE w.tenant_id = $1"
        " ORDER BY w.campaign_id, w.day, w.wave";
    /* every claim belongs to a wave and has its grant */
    static const char sql_claims[] =
        "SELECT c.campaign_id, c.id, c.customer_no || ':' || c.item, (SELECT g.customer_no || ':'"
        " || g.item FROM benefit_grants g WHERE g.tenant_id = c.tenant_id AND g.code ="
        " c.grant_code), (SELECT COUNT(*) FROM coupon_waves w WHERE w.tenant_id = c.tenant_id AND"
        " w.campaign_id = c.campaign_id AND w.day = c.day AND w.wave = c.wave), c.grant_code"
        " FROM coupon_claims c WHERE c.tenant_id = $1 ORDER BY c.campaign_id, c.id";
    *violations = 0;
    *checked = 0;
    sy_stmt *st = sy_conn_prepare(c, sql_waves);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    int rc;
    while ((rc = sy_stmt_step(st)) == SY_ROW) {
        (*checked)++;
        int64_t released = sy_stmt_i64(st, 3), claimed = sy_stmt_i64(st, 4),
                claims = sy_stmt_i64(st, 5);
        if (claimed != claims || claimed > released) {
            char day[11];
            sy_format_date(sy_stmt_i64(st, 1), day);
            sy_check_violation(
                report, ud, violations,
                "coupon drop %s %s wave %lld: released %lld, claimed %lld, claims %lld",
                sy_stmt_text(st, 0), day, (long long)sy_stmt_i64(st, 2), (long long)released,
                (long long)claimed, (long long)claims);
        }
    }
    sy_stmt_reset(st);
    if (rc != SY_DONE)
        return rc;
    if (!(st = sy_conn_prepare(c, sql_claims)))
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    while ((rc = sy_stmt_step(st)) == SY_ROW) {
        (*checked)++;
        const char *want = sy_stmt_text(st, 2);
        if (sy_stmt_is_null(st, 3) || strcmp(sy_stmt_text(st, 3), want) != 0)
            sy_check_violation(report, ud, violations,
                               "coupon claim %s (campaign %s): no matching grant (%s) for %s",
                               sy_stmt_text(st, 1), sy_stmt_text(st, 0), sy_stmt_text(st, 5), want);
        if (sy_stmt_i64(st, 4) != 1)
            sy_check_violation(report, ud, violations,
                               "coupon claim %s (campaign %s): no such wave", sy_stmt_text(st, 1),
                               sy_stmt_text(st, 0));
    }
    sy_stmt_reset(st);
    return rc == SY_DONE ? SY_OK : rc;
}

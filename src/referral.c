/* referral.c — referral fission: invite codes, bindings, the qualifying
 * event, rewards for inviter and invitee, caps, fraud holds and their
 * review.  The rules run inside the writer's transaction (see
 * referral.h); budget, rewards and admission are campaign.c's. */
#include "referral.h"

#include "pii.h"
#include "util.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MINUTE_MS 60000LL
#define DAY_MS 86400000LL

/* ------------------------------------------------------------------ */
/* the rules                                                           */

static bool event_name_valid(const char *s)
{
    return sy_ident_valid(s, 64);
}

static bool int_in(sy_perr *e, json_t *o, const char *ptr, const char *name, int64_t min,
                   int64_t max, int64_t *out)
{
    json_t *v = json_object_get(o, name);
    if (!v || json_is_null(v))
        return true;
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
        char p[96];
        snprintf(p, sizeof p, "%s/%s", ptr, name);
        return sy_perr_fail(e, p, "'%s' must be an integer from %lld to %lld", name, (long long)min,
                            (long long)max);
    }
    *out = json_integer_value(v);
    return true;
}

static bool bool_in(sy_perr *e, json_t *o, const char *ptr, const char *name, bool *out)
{
    json_t *v = json_object_get(o, name);
    if (!v || json_is_null(v))
        return true;
    if (!json_is_boolean(v)) {
        char p[96];
        snprintf(p, sizeof p, "%s/%s", ptr, name);
        return sy_perr_fail(e, p, "'%s' must be true or false", name);
    }
    *out = json_is_true(v);
    return true;
}

bool sy_referral_rules_parse(json_t *sec, const char *default_type, sy_referral_rules *out,
                             char *field, size_t fieldlen, char *msg, size_t msglen)
{
    static const char *const fields[] = {"qualifying_events",
                                         "window_days",
                                         "inviter_reward",
                                         "invitee_reward",
                                         "max_per_inviter",
                                         "new_customers_only",
                                         "fraud",
                                         "hold_days",
                                         NULL};
    static const char *const fraud_f[] = {"same_device",         "window_minutes",
                                          "max_per_ip",          "max_per_phone_prefix",
                                          "phone_prefix_digits", NULL};
    sy_perr e = {field, msg, fieldlen, msglen};
    memset(out, 0, sizeof *out);
    out->window_days = SY_REFERRAL_DEFAULT_WINDOW_DAYS;
    out->max_per_inviter = SY_CAMPAIGN_UNSET;
    out->same_device = true;
    out->fraud_window_minutes = 60;
    out->max_per_ip = SY_CAMPAIGN_UNSET;
    out->max_per_phone_prefix = SY_CAMPAIGN_UNSET;
    out->phone_prefix_digits = 7;
    out->hold_days = SY_REFERRAL_DEFAULT_HOLD_DAYS;
    if (!sec || !json_is_object(sec))
        return sy_perr_fail(
            &e, "/referral",
            "a referral campaign needs a 'referral' object (qualifying_events, rewards)");
    if (!sy_perr_only(&e, sec, "/referral", fields))
        return false;
    json_t *evs = json_object_get(sec, "qualifying_events");
    if (!json_is_array(evs) || json_array_size(evs) < 1 ||
        json_array_size(evs) > SY_REFERRAL_EVENTS_MAX)
        return sy_perr_fail(&e, "/referral/qualifying_events",
                            "'qualifying_events' must be an array of 1 to %d event names",
                            SY_REFERRAL_EVENTS_MAX);
    size_t i;
    json_t *v;
    json_array_foreach (evs, i, v) {
        const char *s = json_string_value(v);
        if (!s || !event_name_valid(s)) {
            char p[64];
            snprintf(p, sizeof p, "/referral/qualifying_events/%zu", i);
            return sy_perr_fail(&e, p, "an event name: a-z, then a-z 0-9 _, at most 64");
        }
        snprintf(out->events[out->nevents++], sizeof out->events[0], "%s", s);
    }
    if (!int_in(&e, sec, "/referral", "window_days", 1, SY_REFERRAL_WINDOW_DAYS_MAX,
                &out->window_days) ||
        !int_in(&e, sec, "/referral", "max_per_inviter", 1, SY_CAMPAIGN_LIMIT_MAX,
                &out->max_per_inviter) ||
        !int_in(&e, sec, "/referral", "hold_days", 1, SY_REFERRAL_HOLD_DAYS_MAX, &out->hold_days) ||
        !bool_in(&e, sec, "/referral", "new_customers_only", &out->new_customers_only))
        return false;
    json_t *ir = json_object_get(sec, "inviter_reward"),
           *ee = json_object_get(sec, "invitee_reward");
    if ((!ir || json_is_null(ir)) && (!ee || json_is_null(ee)))
        return sy_perr_fail(&e, "/referral/inviter_reward",
                            "a referral campaign rewards the inviter, the invitee or both");
    if (ir && !json_is_null(ir) &&
        !sy_campaign_reward_parse(ir, "/referral/inviter_reward", default_type, &out->inviter,
                                  field, fieldlen, msg, msglen))
        return false;
    if (ee && !json_is_null(ee) &&
        !sy_campaign_reward_parse(ee, "/referral/invitee_reward", default_type, &out->invitee,
                                  field, fieldlen, msg, msglen))
        return false;
    json_t *fr = json_object_get(sec, "fraud");
    if (fr && !json_is_null(fr)) {
        if (!json_is_object(fr))
            return sy_perr_fail(&e, "/referral/fraud", "'fraud' must be an object");
        int64_t digits = out->phone_prefix_digits;
        if (!sy_perr_only(&e, fr, "/referral/fraud", fraud_f) ||
            !bool_in(&e, fr, "/referral/fraud", "same_device", &out->same_device) ||
            !int_in(&e, fr, "/referral/fraud", "window_minutes", 1, 7 * 24 * 60,
                    &out->fraud_window_minutes) ||
            !int_in(&e, fr, "/referral/fraud", "max_per_ip", 1, SY_CAMPAIGN_LIMIT_MAX,
                    &out->max_per_ip) ||
            !int_in(&e, fr, "/referral/fraud", "max_per_phone_prefix", 1, SY_CAMPAIGN_LIMIT_MAX,
                    &out->max_per_phone_prefix) ||
            !int_in(&e, fr, "/referral/fraud", "phone_prefix_digits", 3, 11, &digits))
            return false;
        out->phone_prefix_digits = (int)digits;
    }
    return true;
}

static bool has_reward(const sy_campaign_reward *r)
{
    return r->points || r->item[0];
}

int sy_referral_check_refs(sy_conn *c, const char *tenant, const sy_referral_rules *rules,
                           sy_campaign_result *res)
{
    int rc = SY_OK;
    if (has_reward(&rules->inviter))
        rc = sy_campaign_reward_check(c, tenant, &rules->inviter, "/referral/inviter_reward", res);
    if (rc == SY_OK && has_reward(&rules->invitee))
        rc = sy_campaign_reward_check(c, tenant, &rules->invitee, "/referral/invitee_reward", res);
    return rc;
}

bool sy_referral_phone_prefix(const char *phone, int digits, char *out, size_t outlen)
{
    char norm[32];
    size_t n = 0;
    if (sy_phone_normalize(phone, norm, sizeof norm))
        for (const char *p = norm; *p && (int)n < digits && n + 1 < outlen; p++)
            out[n++] = *p;
    out[n] = '\0';
    return (int)n == digits;
}

/* ------------------------------------------------------------------ */
/* loading                                                             */

/* Loads a referral campaign and parses its rules.  WRONG_TYPE for another
 * type (out->why.other: its type). */
static int load(sy_conn *c, const char *tenant, const char *id, sy_campaign **cpp,
                sy_referral_rules *rules, sy_referral_out *out)
{
    int rc = sy_campaign_load(c, tenant, id, cpp);
    if (rc != SY_OK)
        return rc;
    if ((*cpp)->type != SY_CAMPAIGN_REFERRAL) {
        snprintf(out->why.other, sizeof out->why.other, "%s", sy_campaign_type_name((*cpp)->type));
        return SY_CAMPAIGN_WRONG_TYPE;
    }
    char field[96], msg[200];
    if (!sy_referral_rules_parse((*cpp)->extra, (*cpp)->point_type, rules, field, sizeof field, msg,
                                 sizeof msg)) {
        sy_error("campaign %s/%s: its referral rules do not parse (%s: %s)", tenant, id, field,
                 msg);
        return SY_ERR;
    }
    return SY_OK;
}

/* ------------------------------------------------------------------ */
/* invite codes                                                        */

/* 10 characters of Crockford's base32 (no I, L, O, U) from 50 random bits. */
static void new_code(char out[SY_REFERRAL_CODE_LEN + 1])
{
    static const char alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    unsigned char b[8];
    randombytes_buf(b, sizeof b);
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | b[i];
    for (int i = 0; i < SY_REFERRAL_CODE_LEN; i++, v >>= 5)
        out[i] = alphabet[v & 31];
    out[SY_REFERRAL_CODE_LEN] = '\0';
}

int sy_referral_invite(sy_conn *c, const sy_campaign_who *w, const char *campaign,
                       const char *device_id, sy_referral_out *out)
{
    static const char sql_get[] = "SELECT code, device_id FROM referral_codes WHERE tenant_id = $1"
                                  " AND campaign_id = $2 AND customer_no = $3";
    static const char sql_device[] = "UPDATE referral_codes SET device_id = $4 WHERE tenant_id = $1"
                                     " AND campaign_id = $2 AND customer_no = $3";
    static const char sql_put[] =
        "INSERT INTO referral_codes (tenant_id, campaign_id, customer_no, code, device_id,"
        " created_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING";
    memset(out, 0, sizeof *out);
    sy_campaign *cp = NULL;
    sy_referral_rules rules;
    char zone[65];
    int rc = load(c, w->tenant, campaign, &cp, &rules, out);
    if (rc == SY_OK)
        rc = sy_campaign_zone(c, w->tenant, zone);
    if (rc == SY_OK)
        rc = sy_campaign_admit(c, cp, w, zone, w->now_ms, &out->why);
    if (rc != SY_OK)
        goto done;
    sy_stmt *st = sy_conn_prepare(c, sql_get);
    if (!st) {
        rc = SY_ERR;
        goto done;
    }
    sy_stmt_bind_text(st, 1, w->tenant);
    sy_stmt_bind_text(st, 2, campaign);
    sy_stmt_bind_text(st, 3, w->customer_no);
    rc = sy_stmt_step(st);
    if (rc == SY_ROW) {
        snprintf(out->code, sizeof out->code, "%s", sy_stmt_text(st, 0));
        bool same = device_id && !strcmp(device_id, sy_stmt_text(st, 1));
        sy_stmt_reset(st);
        rc = SY_OK;
        if (device_id && !same && (st = sy_conn_prepare(c, sql_device))) {
            sy_stmt_bind_text(st, 1, w->tenant);
            sy_stmt_bind_text(st, 2, campaign);
            sy_stmt_bind_text(st, 3, w->customer_no);
            sy_stmt_bind_text(st, 4, device_id);
            rc = sy_stmt_exec(st);
        } else if (device_id && !same) {
            rc = SY_ERR;
        }
        goto done;
    }
    sy_stmt_reset(st);
    if (rc != SY_DONE)
        goto done;
    /* a new code; a clash with another customer's (1 in 2^50 per pair) draws again */
    for (int attempt = 0; attempt < 8; attempt++) {
        new_code(out->code);
        if (!(st = sy_conn_prepare(c, sql_put))) {
            rc = SY_ERR;
            goto done;
        }
        sy_stmt_bind_text(st, 1, w->tenant);
        sy_stmt_bind_text(st, 2, campaign);
        sy_stmt_bind_text(st, 3, w->customer_no);
        sy_stmt_bind_text(st, 4, out->code);
        sy_stmt_bind_text(st, 5, device_id);
        sy_stmt_bind_i64(st, 6, w->now_ms);
        if ((rc = sy_stmt_exec(st)) != SY_OK)
            goto done;
        if (sy_conn_changes(c) == 1) {
            out->created = true;
            goto done;
        }
    }
    rc = SY_ERR;
done:
    sy_campaign_free(cp);
    return rc;
}

/* ------------------------------------------------------------------ */
/* binding                                                             */

static int count_recent(sy_conn *c, const char *sql, const char *tenant, const char *campaign,
                        const char *value, int64_t since, int64_t *n)
{
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, campaign);
    sy_stmt_bind_text(st, 3, value);
    sy_stmt_bind_i64(st, 4, since);
    int rc = sy_stmt_step(st);
    *n = rc == SY_ROW ? sy_stmt_i64(st, 0) : 0;
    sy_stmt_reset(st);
    return rc == SY_ROW ? SY_OK : rc;
}

static void add_flag(char *flags, size_t len, const char *flag)
{
    size_t n = strlen(flags);
    snprintf(flags + n, len - n, "%s%s", n ? "," : "", flag);
}

int sy_referral_bind_invitee(sy_conn *c, const sy_campaign_who *w, const char *campaign,
                             const sy_referral_bind *b, sy_referral_out *out)
{
    static const char sql_code[] = "SELECT customer_no, device_id FROM referral_codes"
                                   " WHERE tenant_id = $1 AND campaign_id = $2 AND code = $3";
    static const char sql_customer[] = "SELECT created_at, merged_into FROM customers"
                                       " WHERE tenant_id = $1 AND customer_no = $2";
    static const char sql_bound[] = "SELECT inviter FROM referral_bindings WHERE tenant_id = $1"
                                    " AND campaign_id = $2 AND invitee = $3";
    static const char sql_ip[] = "SELECT COUNT(*) FROM referral_bindings WHERE tenant_id = $1"
                                 " AND campaign_id = $2 AND ip = $3 AND bound_at > $4";
    static const char sql_prefix[] =
        "SELECT COUNT(*) FROM referral_bindings WHERE tenant_id = $1 AND campaign_id = $2"
        " AND phone_prefix = $3 AND bound_at > $4";
    static const char sql_device[] =
        "SELECT COUNT(*) FROM referral_bindings WHERE tenant_id = $1 AND campaign_id = $2"
        " AND device_id = $3 AND bound_at > $4";
    static const char sql_put[] =
        "INSERT INTO referral_bindings (tenant_id, campaign_id, invitee, inviter, code, status,"
        " device_id, ip, phone_prefix, flags, bound_at, bound_day, qualify_by) VALUES ($1, $2,"
        " $3, $4, $5, 'bound', $6, $7, $8, $9, $10, $11, $12)";
    memset(out, 0, sizeof *out);
    sy_campaign *cp = NULL;
    sy_referral_rules rules;
    char zone[65], inviter_device[SY_REFERRAL_DEVICE_MAX + 1] = "", prefix[16] = "";
    int rc = load(c, w->tenant, campaign, &cp, &rules, out);
    if (rc != SY_OK)
        goto done;
    if ((rc = sy_campaign_zone(c, w->tenant, zone)) != SY_OK)
        goto done;
    sy_campaign_status eff = sy_campaign_effective(cp, w->now_ms);
    if (eff != SY_CST_RUNNING || !sy_campaign_open_at(cp, zone, w->now_ms)) {
        snprintf(out->why.other, sizeof out->why.other, "%s",
                 eff != SY_CST_RUNNING ? sy_campaign_status_name(eff) : "closed");
        rc = SY_CAMPAIGN_NOT_RUNNING;
        goto done;
    }
    sy_stmt *st = sy_conn_prepare(c, sql_code);
    if (!st) {
        rc = SY_ERR;
        goto done;
    }
    sy_stmt_bind_text(st, 1, w->tenant);
    sy_stmt_bind_text(st, 2, campaign);
    sy_stmt_bind_text(st, 3, b->code);
    rc = sy_stmt_step(st);
    if (rc == SY_ROW) {
        snprintf(out->inviter, sizeof out->inviter, "%s", sy_stmt_text(st, 0));
        snprintf(inviter_device, sizeof inviter_device, "%s", sy_stmt_text(st, 1));
    }
    sy_stmt_reset(st);
    if (rc != SY_ROW) {
        rc = rc == SY_DONE ? SY_REFERRAL_UNKNOWN_CODE : rc;
        goto done;
    }
    if (!(st = sy_conn_prepare(c, sql_customer))) {
        rc = SY_ERR;
        goto done;
    }
    sy_stmt_bind_text(st, 1, w->tenant);
    sy_stmt_bind_text(st, 2, w->customer_no);
    rc = sy_stmt_step(st);
    int64_t created_at = rc == SY_ROW ? sy_stmt_i64(st, 0) : 0;
    bool merged = rc == SY_ROW && !sy_stmt_is_null(st, 1);
    if (merged)
        snprintf(out->why.other, sizeof out->why.other, "%s", sy_stmt_text(st, 1));
    sy_stmt_reset(st);
    if (rc != SY_ROW) {
        rc = rc == SY_DONE ? SY_CAMPAIGN_NO_CUSTOMER : rc;
        goto done;
    }
    if (merged) {
        rc = SY_CAMPAIGN_MERGED;
        goto done;
    }
    if (!strcmp(out->inviter, w->customer_no)) {
        rc = SY_REFERRAL_SELF;
        goto done;
    }
    if (!(st = sy_conn_prepare(c, sql_bound))) {
        rc = SY_ERR;
        goto done;
    }
    sy_stmt_bind_text(st, 1, w->tenant);
    sy_stmt_bind_text(st, 2, campaign);
    sy_stmt_bind_text(st, 3, w->customer_no);
    rc = sy_stmt_step(st);
    if (rc == SY_ROW)
        snprintf(out->inviter, sizeof out->inviter, "%s", sy_stmt_text(st, 0));
    sy_stmt_reset(st);
    if (rc != SY_DONE) {
        rc = rc == SY_ROW ? SY_REFERRAL_ALREADY_BOUND : rc;
        goto done;
    }
    if (rules.new_customers_only && created_at < cp->starts_at) {
        rc = SY_REFERRAL_EXISTING_CUSTOMER;
        goto done;
    }
    /* fraud rules: they do not refuse the binding; they hold its rewards */
    int64_t since = w->now_ms - rules.fraud_window_minutes * MINUTE_MS, n;
    if (rules.same_device && b->device_id) {
        /* the inviter's device, or one another invitee of the campaign
         * was bound from (at any time: an account farm) */
        bool same = inviter_device[0] && !strcmp(b->device_id, inviter_device);
        if (!same) {
            if ((rc = count_recent(c, sql_device, w->tenant, campaign, b->device_id, INT64_MIN,
                                   &n)) != SY_OK)
                goto done;
            same = n > 0;
        }
        if (same)
            add_flag(out->flags, sizeof out->flags, "same-device");
    }
    if (rules.max_per_ip != SY_CAMPAIGN_UNSET && b->ip) {
        if ((rc = count_recent(c, sql_ip, w->tenant, campaign, b->ip, since, &n)) != SY_OK)
            goto done;
        if (n + 1 > rules.max_per_ip)
            add_flag(out->flags, sizeof out->flags, "ip-burst");
    }
    bool has_prefix = b->phone && sy_referral_phone_prefix(b->phone, rules.phone_prefix_digits,
                                                           prefix, sizeof prefix);
    if (rules.max_per_phone_prefix != SY_CAMPAIGN_UNSET && has_prefix) {
        if ((rc = count_recent(c, sql_prefix, w->tenant, campaign, prefix, since, &n)) != SY_OK)
            goto done;
        if (n + 1 > rules.max_per_phone_prefix)
            add_flag(out->flags, sizeof out->flags, "phone-prefix-burst");
    }
    /* the window, but not past the campaign's end (events after it do not count) */
    out->qualify_by = w->now_ms + rules.window_days * DAY_MS;
    if (out->qualify_by > cp->ends_at)
        out->qualify_by = cp->ends_at;
    if (!(st = sy_conn_prepare(c, sql_put))) {
        rc = SY_ERR;
        goto done;
    }
    sy_stmt_bind_text(st, 1, w->tenant);
    sy_stmt_bind_text(st, 2, campaign);
    sy_stmt_bind_text(st, 3, w->customer_no);
    sy_stmt_bind_text(st, 4, out->inviter);
    sy_stmt_bind_text(st, 5, b->code);
    sy_stmt_bind_text(st, 6, b->device_id);
    sy_stmt_bind_text(st, 7, b->ip);
    sy_stmt_bind_text(st, 8, has_prefix ? prefix : NULL);
    sy_stmt_bind_text(st, 9, out->flags);
    sy_stmt_bind_i64(st, 10, w->now_ms);
    sy_stmt_bind_i64(st, 11, sy_campaign_day(zone, w->now_ms));
    sy_stmt_bind_i64(st, 12, out->qualify_by);
    rc = sy_stmt_exec(st);
    snprintf(out->status, sizeof out->status, "bound");
done:
    sy_campaign_free(cp);
    return rc;
}

/* ------------------------------------------------------------------ */
/* paying                                                              */

typedef struct binding {
    char inviter[65], status[16], flags[64];
    int64_t bound_at, qualify_by;
    int64_t review_by; /* held: the review deadline (UNSET: from qualified_at) */
    int64_t qualified_at;
} binding;

static int binding_get(sy_conn *c, const char *tenant, const char *campaign, const char *invitee,
                       binding *bd)
{
    static const char sql[] =
        "SELECT inviter, status, flags, bound_at, qualify_by, review_by, qualified_at"
        " FROM referral_bindings WHERE tenant_id = $1 AND campaign_id = $2 AND invitee = $3";
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, campaign);
    sy_stmt_bind_text(st, 3, invitee);
    int rc = sy_stmt_step(st);
    if (rc == SY_ROW) {
        snprintf(bd->inviter, sizeof bd->inviter, "%s", sy_stmt_text(st, 0));
        snprintf(bd->status, sizeof bd->status, "%s", sy_stmt_text(st, 1));
        snprintf(bd->flags, sizeof bd->flags, "%s", sy_stmt_text(st, 2));
        bd->bound_at = sy_stmt_i64(st, 3);
        bd->qualify_by = sy_stmt_i64(st, 4);
        bd->review_by = sy_stmt_is_null(st, 5) ? SY_CAMPAIGN_UNSET : sy_stmt_i64(st, 5);
        bd->qualified_at = sy_stmt_is_null(st, 6) ? SY_CAMPAIGN_UNSET : sy_stmt_i64(st, 6);
    }
    sy_stmt_reset(st);
    return rc == SY_ROW ? SY_OK : rc == SY_DONE ? SY_REFERRAL_NO_BINDING : rc;
}

/* Moves a binding to status; event_id and refusal may be NULL; qualified
 * sets qualified_at when it is not set yet. */
static int binding_set(sy_conn *c, const char *tenant, const char *campaign, const char *invitee,
                       const char *status, const char *event_id, const char *refusal,
                       int64_t now_ms)
{
    static const char sql[] =
        "UPDATE referral_bindings SET status = $4, event_id = COALESCE($5, event_id),"
        " refusal = $6, qualified_at = COALESCE(qualified_at, $7) WHERE tenant_id = $1"
        " AND campaign_id = $2 AND invitee = $3";
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, campaign);
    sy_stmt_bind_text(st, 3, invitee);
    sy_stmt_bind_text(st, 4, status);
    sy_stmt_bind_text(st, 5, event_id);
    sy_stmt_bind_text(st, 6, refusal && refusal[0] ? refusal : NULL);
    sy_stmt_bind_i64(st, 7, now_ms);
    return sy_stmt_exec(st);
}

/* The inviter's qualified bindings so far (held or rewarded), for the cap. */
static int inviter_count(sy_conn *c, const char *tenant, const char *campaign, const char *inviter,
                         int64_t *n)
{
    static const char sql[] =
        "SELECT COUNT(*) FROM referral_rewards WHERE tenant_id = $1 AND campaign_id = $2"
        " AND customer_no = $3 AND role = 'inviter'";
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, campaign);
    sy_stmt_bind_text(st, 3, inviter);
    int rc = sy_stmt_step(st);
    *n = rc == SY_ROW ? sy_stmt_i64(st, 0) : 0;
    sy_stmt_reset(st);
    return rc == SY_ROW ? SY_OK : rc;
}

static void add_refusal(char *buf, size_t len, const char *role, const char *reason)
{
    size_t n = strlen(buf);
    snprintf(buf + n, len - n, "%s%s:%s", n ? "," : "", role, reason);
}

/* Pays one recipient's reward within the budget: SY_OK when paid (o filled),
 * a refusal (its reason appended to out->refusal) when not. */
static int pay_one(sy_conn *c, const sy_campaign *cp, const sy_campaign_who *w,
                   const char *recipient, const char *invitee, const char *role,
                   const sy_campaign_reward *r, sy_campaign_outcome *o, sy_referral_out *out)
{
    static const char sql[] =
        "INSERT INTO referral_rewards (tenant_id, campaign_id, id, invitee, role, customer_no,"
        " points, point_type, item, grant_code, ledger_entry, cost, day, created_at) VALUES ($1,"
        " $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)";
    memset(o, 0, sizeof *o);
    int64_t points, cost;
    int rc = sy_campaign_reward_cost(c, w->tenant, r, &points, &cost);
    if (rc == SY_OK)
        rc = sy_campaign_check_budget(c, w->tenant, cp->id, points, cost, &o->why);
    if (rc == SY_CAMPAIGN_BUDGET_EXHAUSTED) {
        add_refusal(out->refusal, sizeof out->refusal, role, "budget-exhausted");
        return rc;
    }
    if (rc != SY_OK)
        return rc;
    sy_campaign_who rw = *w;
    rw.customer_no = recipient;
    char reason[160], zone[65];
    unsigned char rnd[8];
    char hex[17];
    randombytes_buf(rnd, sizeof rnd);
    sy_hex(rnd, sizeof rnd, hex);
    snprintf(o->action_id, sizeof o->action_id, "rr_%s", hex);
    snprintf(reason, sizeof reason, "referral (%s of %s), campaign %s", role, invitee, cp->id);
    rc = sy_campaign_issue(c, cp, &rw, r, o->action_id, reason, o);
    if (rc > 0) {
        char why[120];
        snprintf(why, sizeof why, "reward-refused(%s)", o->why.other);
        add_refusal(out->refusal, sizeof out->refusal, role, why);
        return rc;
    }
    if (rc != SY_OK || (rc = sy_campaign_zone(c, w->tenant, zone)) != SY_OK)
        return rc;
    o->reward = *r;
    o->cost = cost;
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, w->tenant);
    sy_stmt_bind_text(st, 2, cp->id);
    sy_stmt_bind_text(st, 3, o->action_id);
    sy_stmt_bind_text(st, 4, invitee);
    sy_stmt_bind_text(st, 5, role);
    sy_stmt_bind_text(st, 6, recipient);
    sy_stmt_bind_i64(st, 7, r->points);
    sy_stmt_bind_text(st, 8, r->points ? r->point_type : NULL);
    sy_stmt_bind_text(st, 9, r->item[0] ? r->item : NULL);
    sy_stmt_bind_text(st, 10, o->grant_code[0] ? o->grant_code : NULL);
    sy_stmt_bind_text(st, 11, o->ledger_entry[0] ? o->ledger_entry : NULL);
    sy_stmt_bind_i64(st, 12, cost);
    sy_stmt_bind_i64(st, 13, sy_campaign_day(zone, w->now_ms));
    sy_stmt_bind_i64(st, 14, w->now_ms);
    if ((rc = sy_stmt_exec(st)) != SY_OK)
        return rc;
    return sy_campaign_spend_budget(c, w->tenant, cp->id, points, cost);
}

/* Pays a qualified binding: the inviter's reward within the cap, each
 * within the budget.  Each reward is paid or refused on its own (a refused
 * one writes nothing); the binding is rewarded when either was paid,
 * refused otherwise, with the reasons in refusal. */
static int pay(sy_conn *c, const sy_campaign *cp, const sy_referral_rules *rules,
               const sy_campaign_who *w, const char *invitee, const binding *bd,
               const char *event_id, sy_referral_out *out)
{
    int paid = 0, rc;
    if (has_reward(&rules->inviter)) {
        int64_t n = 0;
        if (rules->max_per_inviter != SY_CAMPAIGN_UNSET &&
            (rc = inviter_count(c, w->tenant, cp->id, bd->inviter, &n)) != SY_OK)
            return rc;
        if (rules->max_per_inviter != SY_CAMPAIGN_UNSET && n >= rules->max_per_inviter) {
            add_refusal(out->refusal, sizeof out->refusal, "inviter", "inviter-cap-reached");
        } else {
            rc = pay_one(c, cp, w, bd->inviter, invitee, "inviter", &rules->inviter,
                         &out->inviter_paid, out);
            if (rc < 0)
                return rc;
            paid += rc == SY_OK;
        }
    }
    if (has_reward(&rules->invitee)) {
        rc = pay_one(c, cp, w, invitee, invitee, "invitee", &rules->invitee, &out->invitee_paid,
                     out);
        if (rc < 0)
            return rc;
        paid += rc == SY_OK;
    }
    snprintf(out->status, sizeof out->status, "%s", paid ? "rewarded" : "refused");
    return binding_set(c, w->tenant, cp->id, invitee, out->status, event_id, out->refusal,
                       w->now_ms);
}

/* A held binding's review deadline. */
static int set_review_by(sy_conn *c, const char *tenant, const char *campaign, const char *invitee,
                         int64_t review_by)
{
    static const char sql[] = "UPDATE referral_bindings SET review_by = $4 WHERE tenant_id = $1"
                              " AND campaign_id = $2 AND invitee = $3";
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, campaign);
    sy_stmt_bind_text(st, 3, invitee);
    sy_stmt_bind_i64(st, 4, review_by);
    return sy_stmt_exec(st);
}

/* Expires held bindings of one campaign whose deadline is at or before
 * now_ms (invitee: only that one; NULL: any, at most max). */
static int expire_held(sy_conn *c, const char *tenant, const char *campaign, const char *invitee,
                       int64_t hold_ms, int64_t now_ms, const char *actor, int max, int64_t *n)
{
    static const char sql[] =
        "UPDATE referral_bindings SET status = 'expired', refusal = 'review-expired',"
        " reviewed_by = $5, reviewed_at = $4, review_note = 'review deadline passed'"
        " WHERE tenant_id = $1 AND campaign_id = $2 AND status = 'held'"
        " AND COALESCE(review_by, qualified_at + $3) <= $4 AND invitee IN (SELECT invitee FROM"
        " referral_bindings WHERE tenant_id = $1 AND campaign_id = $2 AND status = 'held'"
        " AND COALESCE(review_by, qualified_at + $3) <= $4 AND ($6 = '' OR invitee = $6)"
        " ORDER BY invitee LIMIT $7)";
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, campaign);
    sy_stmt_bind_i64(st, 3, hold_ms);
    sy_stmt_bind_i64(st, 4, now_ms);
    sy_stmt_bind_text(st, 5, actor);
    sy_stmt_bind_text(st, 6, invitee ? invitee : "");
    sy_stmt_bind_i64(st, 7, max);
    int rc = sy_stmt_exec(st);
    *n = rc == SY_OK ? sy_conn_changes(c) : 0;
    return rc;
}

int sy_referral_event(sy_conn *c, const sy_campaign *cp, const sy_referral_rules *rules,
                      const sy_campaign_who *w, const char *event_name, const char *event_id,
                      int64_t ts_ms, sy_referral_out *out)
{
    memset(out, 0, sizeof *out);
    bool match = false;
    for (int i = 0; i < rules->nevents && !match; i++)
        match = !strcmp(rules->events[i], event_name);
    if (!match)
        return SY_REFERRAL_NO_BINDING;
    binding bd;
    int rc = binding_get(c, w->tenant, cp->id, w->customer_no, &bd);
    if (rc != SY_OK)
        return rc;
    /* only a waiting binding qualifies, and only by what happened after it */
    if (strcmp(bd.status, "bound") != 0 || ts_ms < bd.bound_at - SY_REFERRAL_SKEW_MS)
        return SY_REFERRAL_NO_BINDING;
    snprintf(out->inviter, sizeof out->inviter, "%s", bd.inviter);
    snprintf(out->flags, sizeof out->flags, "%s", bd.flags);
    if (ts_ms > bd.qualify_by) {
        snprintf(out->status, sizeof out->status, "expired");
        snprintf(out->refusal, sizeof out->refusal, "window-passed");
        return binding_set(c, w->tenant, cp->id, w->customer_no, "expired", event_id, out->refusal,
                           w->now_ms);
    }
    if (sy_campaign_effective(cp, w->now_ms) != SY_CST_RUNNING || ts_ms < cp->starts_at ||
        ts_ms >= cp->ends_at)
        return SY_REFERRAL_NO_BINDING; /* the binding waits (its window still holds) */
    if (bd.flags[0]) {
        snprintf(out->status, sizeof out->status, "held");
        rc = binding_set(c, w->tenant, cp->id, w->customer_no, "held", event_id, NULL, w->now_ms);
        return rc == SY_OK ? set_review_by(c, w->tenant, cp->id, w->customer_no,
                                           w->now_ms + rules->hold_days * DAY_MS)
                           : rc;
    }
    return pay(c, cp, rules, w, w->customer_no, &bd, event_id, out);
}

int sy_referral_review(sy_conn *c, const sy_campaign_who *w, const char *campaign,
                       const char *invitee, bool approve, const char *note, sy_referral_out *out)
{
    static const char sql[] = "UPDATE referral_bindings SET reviewed_by = $4, reviewed_at = $5,"
                              " review_note = $6 WHERE tenant_id = $1 AND campaign_id = $2"
                              " AND invitee = $3";
    memset(out, 0, sizeof *out);
    sy_campaign *cp = NULL;
    sy_referral_rules rules;
    binding bd;
    int rc = load(c, w->tenant, campaign, &cp, &rules, out);
    if (rc == SY_OK)
        rc = binding_get(c, w->tenant, campaign, invitee, &bd);
    if (rc != SY_OK)
        goto done;
    snprintf(out->inviter, sizeof out->inviter, "%s", bd.inviter);
    snprintf(out->flags, sizeof out->flags, "%s", bd.flags);
    if (strcmp(bd.status, "held") != 0) {
        snprintf(out->status, sizeof out->status, "%s", bd.status);
        rc = SY_REFERRAL_NOT_HELD;
        goto done;
    }
    if (!strcmp(w->operator_id, cp->created_by) || !strcmp(w->operator_id, cp->updated_by)) {
        rc = SY_CAMPAIGN_MAKER_CHECKER;
        goto done;
    }
    int64_t deadline =
        bd.review_by != SY_CAMPAIGN_UNSET
            ? bd.review_by
            : (bd.qualified_at != SY_CAMPAIGN_UNSET ? bd.qualified_at : bd.bound_at) +
                  rules.hold_days * DAY_MS;
    if (w->now_ms >= deadline) {
        /* too late to review: the rewards expire, unpaid */
        int64_t n;
        snprintf(out->status, sizeof out->status, "expired");
        snprintf(out->refusal, sizeof out->refusal, "review-expired");
        rc = expire_held(c, w->tenant, campaign, invitee, rules.hold_days * DAY_MS, w->now_ms,
                         w->operator_id, 1, &n);
        goto done;
    }
    if (approve) {
        rc = pay(c, cp, &rules, w, invitee, &bd, NULL, out);
    } else {
        snprintf(out->status, sizeof out->status, "rejected");
        snprintf(out->refusal, sizeof out->refusal, "rejected-in-review");
        rc =
            binding_set(c, w->tenant, campaign, invitee, "rejected", NULL, out->refusal, w->now_ms);
    }
    sy_stmt *st = rc == SY_OK ? sy_conn_prepare(c, sql) : NULL;
    if (rc == SY_OK && !st)
        rc = SY_ERR;
    if (st) {
        sy_stmt_bind_text(st, 1, w->tenant);
        sy_stmt_bind_text(st, 2, campaign);
        sy_stmt_bind_text(st, 3, invitee);
        sy_stmt_bind_text(st, 4, w->operator_id);
        sy_stmt_bind_i64(st, 5, w->now_ms);
        sy_stmt_bind_text(st, 6, note);
        rc = sy_stmt_exec(st);
    }
done:
    sy_campaign_free(cp);
    return rc;
}

int sy_referral_expire_held(sy_conn *c, const char *tenant, const char *campaign, int64_t now_ms,
                            const char *actor, int max, int64_t *n, bool *more)
{
    static const char sql[] =
        "SELECT id FROM campaigns WHERE tenant_id = $1 AND type = 'referral' AND ($2 = '' OR"
        " id = $2) ORDER BY id";
    *n = 0;
    *more = false;
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, campaign ? campaign : "");
    char(*ids)[SY_CAMPAIGN_ID_MAX + 1] = NULL;
    size_t nids = 0, cap = 0;
    int rc;
    while ((rc = sy_stmt_step(st)) == SY_ROW) {
        if (nids == cap)
            ids = sy_xrealloc(ids, (cap = cap ? cap * 2 : 16) * sizeof *ids);
        snprintf(ids[nids++], sizeof ids[0], "%s", sy_stmt_text(st, 0));
    }
    sy_stmt_reset(st);
    rc = rc == SY_DONE ? SY_OK : rc;
    for (size_t i = 0; i < nids && rc == SY_OK && *n < max; i++) {
        sy_campaign *cp = NULL;
        sy_referral_rules rules;
        sy_referral_out o;
        memset(&o, 0, sizeof o);
        rc = load(c, tenant, ids[i], &cp, &rules, &o);
        if (rc == SY_OK) {
            int64_t k;
            rc = expire_held(c, tenant, ids[i], NULL, rules.hold_days * DAY_MS, now_ms, actor,
                             (int)(max - *n), &k);
            *n += k;
        }
        sy_campaign_free(cp);
    }
    *more = rc == SY_OK && *n >= max;
    free(ids);
    return rc;
}

int sy_referral_running(sy_conn *c, const char *tenant, int64_t now_ms,
                        char (*ids)[SY_CAMPAIGN_ID_MAX + 1], int max, int *n)
{
    static const char sql[] =
        "SELECT id FROM campaigns WHERE tenant_id = $1 AND type = 'referral'"
        " AND status = 'scheduled' AND ends_at > $2 AND starts_at <= $2 ORDER BY id";
    *n = 0;
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_i64(st, 2, now_ms);
    int rc;
    while ((rc = sy_stmt_step(st)) == SY_ROW && *n < max)
        snprintf(ids[(*n)++], SY_CAMPAIGN_ID_MAX + 1, "%s", sy_stmt_text(st, 0));
    sy_stmt_reset(st);
    return rc == SY_DONE || rc == SY_ROW ? SY_OK : rc;
}

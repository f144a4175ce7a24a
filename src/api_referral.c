/* api_referral.c — referral fission (裂变) over HTTP: invite codes made on
 * demand, binding an invitee by a code, the held rewards' review
 * (approve pays, reject refuses; by another key than the campaign's
 * author), the list of bindings, and the events hook that pays a binding
 * when its invitee's qualifying event is ingested — in the same writer
 * transaction as the event, like tasks.
 *
 * The rules are referral.c's.  Refusals answer a problem whose type is the
 * reason code: the campaign ones (not-running, not-in-audience, unsuitable,
 * holdout, wrong-type, maker-checker) and unknown-code, self-invite,
 * already-bound, existing-customer, not-held. */
#include "abuse.h"
#include "api.h"
#include "app.h"
#include "campaign.h"
#include "customer.h"
#include "pii.h"
#include "referral.h"
#include "util.h"
#include "validate.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_REFERRAL_CAMPAIGNS 64

static void reply_refusal(sy_req *r, int rc, const sy_referral_out *o, const char *id,
                          const char *no)
{
    switch (rc) {
    case SY_REFERRAL_UNKNOWN_CODE:
        sy_reply_problem(r, 404, "unknown-code", "/code", "no invite code of campaign '%s' is that",
                         id);
        break;
    case SY_REFERRAL_SELF:
        sy_reply_problem(r, 409, "self-invite", "/invitee",
                         "customer '%s' cannot accept their own invite code", no);
        break;
    case SY_REFERRAL_ALREADY_BOUND:
        sy_reply_problem(r, 409, "already-bound", "/invitee",
                         "customer '%s' was invited by '%s' already (the first code wins)", no,
                         o->inviter);
        sy_reply_extend(r, "inviter", json_string(o->inviter));
        break;
    case SY_REFERRAL_EXISTING_CUSTOMER:
        sy_reply_problem(r, 409, "existing-customer", "/invitee",
                         "customer '%s' was a customer before campaign '%s' started; it invites"
                         " new customers only",
                         no, id);
        break;
    case SY_REFERRAL_NO_BINDING:
        sy_reply_problem(r, 404, "not-found", NULL, "customer '%s' has no binding in campaign '%s'",
                         no, id);
        break;
    case SY_REFERRAL_NOT_HELD:
        sy_reply_problem(r, 409, "not-held", NULL,
                         "the referral of '%s' is %s: only held rewards are reviewed", no,
                         o->status);
        sy_reply_extend(r, "referral_status", json_string(o->status));
        break;
    case SY_CAMPAIGN_MAKER_CHECKER:
        sy_reply_problem(r, 403, "maker-checker", NULL,
                         "held rewards of campaign '%s' must be reviewed by another key than the"
                         " one that wrote the campaign",
                         id);
        break;
    case SY_CAMPAIGN_NO_CUSTOMER:
        sy_reply_problem(r, 404, "not-found", "/invitee", "no customer '%s'", no);
        break;
    default:
        sy_api_campaign_refusal(r, rc, &o->why, id, no);
        break;
    }
}

static json_t *paid_json(const sy_campaign_outcome *o)
{
    if (o->reward.item[0])
        return json_pack("{s:s, s:s}", "item", o->reward.item, "grant", o->grant_code);
    if (o->reward.points)
        return json_pack("{s:I, s:s, s:s}", "points", (json_int_t)o->reward.points, "point_type",
                         o->reward.point_type, "ledger_entry", o->ledger_entry);
    return json_null();
}

static json_t *flags_json(const char *flags)
{
    json_t *a = json_array();
    char buf[64];
    snprintf(buf, sizeof buf, "%s", flags);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
        json_array_append_new(a, json_string(t));
    return a;
}

static bool valid_id(sy_req *r, const char *id)
{
    if (!sy_campaign_id_valid(id)) {
        sy_reply_problem(r, 404, "not-found", NULL, "no campaign '%s'", id);
        return false;
    }
    return true;
}

static bool valid_no(sy_req *r, const char *no, const char *field)
{
    if (!sy_customer_no_valid(no)) {
        sy_reply_problem(r, 400, "validation", field,
                         "a customer number: 1-64 characters of A-Z a-z 0-9 _ . : -");
        return false;
    }
    return true;
}

/* ------------------------------------------------------------------ */
/* invite codes                                                        */

typedef struct invite_req {
    const char *id, *no, *device;
    bool in_audience;
} invite_req;

static int apply_invite(sy_conn *c, sy_req *r, void *ctx)
{
    invite_req *q = ctx;
    const sy_principal *who = sy_req_principal(r);
    sy_campaign_who w = {.tenant = who->tenant,
                         .eligible = sy_api_reward_eligible,
                         .eligible_ud = r,
                         .customer_no = q->no,
                         .in_audience = q->in_audience,
                         .operator_id = who->key_id,
                         .now_ms = sy_req_now_ms(r)};
    sy_referral_out o;
    int rc = sy_referral_invite(c, &w, q->id, q->device, &o);
    if (rc == SY_CAMPAIGN_HOLDOUT) {
        sy_req_no_audit(r);
        reply_refusal(r, rc, &o, q->id, q->no);
        return 0; /* the holdout is recorded: this refusal commits */
    }
    if (rc > 0) {
        reply_refusal(r, rc, &o, q->id, q->no);
        return 1;
    }
    if (rc != SY_OK)
        return rc;
    sy_req_audit_target(r, q->id);
    sy_reply_json(r, o.created ? 201 : 200,
                  json_pack("{s:s, s:s, s:s, s:b}", "campaign", q->id, "customer_no", q->no, "code",
                            o.code, "created", o.created));
    return 0;
}

void sy_api_invites_create(sy_req *r)
{
    static const char *const fields[] = {"device_id", NULL};
    invite_req *q = sy_req_alloc(r, sizeof *q);
    memset(q, 0, sizeof *q);
    q->id = sy_req_param(r, "id");
    q->no = sy_req_param(r, "customer_no");
    size_t len;
    sy_req_body(r, &len);
    if (len) {
        json_t *body = sy_req_json_object(r);
        if (!body || !sy_v_only(r, body, fields) ||
            !sy_v_string(r, body, "device_id", false, SY_REFERRAL_DEVICE_MAX, &q->device))
            return;
        if (q->device && !sy_token_valid(q->device, SY_REFERRAL_DEVICE_MAX)) {
            sy_reply_problem(r, 400, "validation", "/device_id",
                             "'device_id' must be 1-128 visible ASCII characters");
            return;
        }
    }
    if (!valid_no(r, q->no, "customer_no") || !valid_id(r, q->id))
        return;
    sy_campaign *cp = sy_api_campaign_read(r, q->id);
    if (!cp)
        return;
    q->in_audience = true;
    bool ok =
        !cp->segment_id[0] || sy_api_campaign_audience(r, cp->segment_id, q->no, &q->in_audience);
    sy_campaign_free(cp);
    if (ok)
        sy_req_write(r, apply_invite, NULL, q);
}

void sy_api_invites_get(sy_req *r)
{
    static const char sql[] = "SELECT code, created_at FROM referral_codes WHERE tenant_id = $1"
                              " AND campaign_id = $2 AND customer_no = $3";
    const char *id = sy_req_param(r, "id"), *no = sy_req_param(r, "customer_no");
    if (!valid_no(r, no, "customer_no") || !valid_id(r, id))
        return;
    sy_app *app = sy_req_app(r);
    sy_conn *c = sy_store_acquire(app->store);
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st) {
        sy_api_store_error(r, c);
    } else {
        sy_stmt_bind_text(st, 1, sy_req_principal(r)->tenant);
        sy_stmt_bind_text(st, 2, id);
        sy_stmt_bind_text(st, 3, no);
        int rc = sy_stmt_step(st);
        if (rc == SY_ROW)
            sy_reply_json(r, 200,
                          json_pack("{s:s, s:s, s:s, s:o}", "campaign", id, "customer_no", no,
                                    "code", sy_stmt_text(st, 0), "created_at",
                                    sy_json_time(sy_stmt_i64(st, 1))));
        else if (rc == SY_DONE)
            sy_reply_problem(r, 404, "not-found", NULL,
                             "customer '%s' has no invite code in campaign '%s' (POST makes one)",
                             no, id);
        sy_stmt_reset(st);
        if (rc != SY_ROW && rc != SY_DONE)
            sy_api_store_error(r, c);
    }
    sy_store_release(app->store, c);
}

/* ------------------------------------------------------------------ */
/* binding                                                             */

typedef struct bind_req {
    const char *id, *invitee;
    sy_referral_bind b;
    char ip[INET6_ADDRSTRLEN]; /* b.ip's canonical text (sy_abuse_ip_key) */
} bind_req;

static int apply_bind(sy_conn *c, sy_req *r, void *ctx)
{
    bind_req *q = ctx;
    const sy_principal *who = sy_req_principal(r);
    sy_campaign_who w = {.tenant = who->tenant,
                         .eligible = sy_api_reward_eligible,
                         .eligible_ud = r,
                         .customer_no = q->invitee,
                         .in_audience = true,
                         .operator_id = who->key_id,
                         .now_ms = sy_req_now_ms(r)};
    sy_referral_out o;
    int rc = sy_referral_bind_invitee(c, &w, q->id, &q->b, &o);
    if (rc > 0) {
        reply_refusal(r, rc, &o, q->id, q->invitee);
        return 1;
    }
    if (rc != SY_OK)
        return rc;
    sy_req_audit_target(r, q->id);
    sy_reply_json(r, 201,
                  json_pack("{s:s, s:s, s:s, s:s, s:o, s:o}", "campaign", q->id, "invitee",
                            q->invitee, "inviter", o.inviter, "status", o.status, "flags",
                            flags_json(o.flags), "qualify_by", sy_json_time(o.qualify_by)));
    return 0;
}

void sy_api_referrals_bind(sy_req *r)
{
    static const char *const fields[] = {"code", "invitee", "device_id", "ip", "phone", NULL};
    json_t *body = sy_req_json_object(r);
    bind_req *q = sy_req_alloc(r, sizeof *q);
    memset(q, 0, sizeof *q);
    q->id = sy_req_param(r, "id");
    if (!body || !sy_v_only(r, body, fields) ||
        !sy_v_string(r, body, "code", true, 32, &q->b.code) ||
        !sy_v_string(r, body, "invitee", true, SY_CUSTOMER_NO_MAX, &q->invitee) ||
        !sy_v_string(r, body, "device_id", false, SY_REFERRAL_DEVICE_MAX, &q->b.device_id) ||
        !sy_v_string(r, body, "ip", false, SY_REFERRAL_IP_MAX, &q->b.ip) ||
        !sy_v_string(r, body, "phone", false, 32, &q->b.phone))
        return;
    if (!sy_token_valid(q->b.code, 32)) {
        sy_reply_problem(r, 400, "validation", "/code", "'code' must be an invite code");
        return;
    }
    if (!valid_no(r, q->invitee, "/invitee"))
        return;
    if (q->b.device_id && !sy_token_valid(q->b.device_id, SY_REFERRAL_DEVICE_MAX)) {
        sy_reply_problem(r, 400, "validation", "/device_id",
                         "'device_id' must be 1-128 visible ASCII characters");
        return;
    }
    /* one text per address, so that the burst rule counts "::ffff:198.51.100.9"
     * and "198.51.100.9" (or "2001:DB8::1" and "2001:db8:0::1") together */
    if (q->b.ip) {
        if (!sy_abuse_ip_key(q->b.ip, q->ip, sizeof q->ip)) {
            sy_reply_problem(r, 400, "validation", "/ip", "'ip' must be an IPv4 or IPv6 address");
            return;
        }
        q->b.ip = q->ip;
    }
    /* as customers' phones are read (sy_phone_normalize), so that "+86 139…",
     * "0086 139…" and "139…" share their prefix */
    char phone[32];
    if (q->b.phone && !sy_phone_normalize(q->b.phone, phone, sizeof phone)) {
        sy_reply_problem(r, 400, "validation", "/phone",
                         "'phone' must be a phone number: 6-20 digits after an optional +86 or"
                         " 0086, with spaces, - ( ) and a leading +");
        return;
    }
    if (!sy_req_header(r, "Idempotency-Key")) {
        sy_reply_problem(r, 400, "validation", "Idempotency-Key",
                         "a binding needs an Idempotency-Key, so that a retry binds once");
        return;
    }
    if (!valid_id(r, q->id))
        return;
    sy_req_write(r, apply_bind, NULL, q);
}

/* ------------------------------------------------------------------ */
/* review                                                              */

typedef struct review_req {
    const char *id, *invitee, *note;
    bool approve;
} review_req;

static int apply_review(sy_conn *c, sy_req *r, void *ctx)
{
    review_req *q = ctx;
    const sy_principal *who = sy_req_principal(r);
    sy_campaign_who w = {.tenant = who->tenant,
                         .eligible = sy_api_reward_eligible,
                         .eligible_ud = r,
                         .customer_no = q->invitee,
                         .in_audience = true,
                         .operator_id = who->key_id,
                         .now_ms = sy_req_now_ms(r)};
    sy_referral_out o;
    int rc = sy_referral_review(c, &w, q->id, q->invitee, q->approve, q->note, &o);
    if (rc > 0) {
        reply_refusal(r, rc, &o, q->id, q->invitee);
        return 1;
    }
    if (rc != SY_OK)
        return rc;
    sy_req_audit_target(r, q->id);
    if (!strcmp(o.status, "expired")) {
        /* past the review deadline: the expiry commits, the review is refused */
        sy_reply_problem(r, 409, "review-expired", NULL,
                         "the held rewards of '%s' passed their review deadline (hold_days) and"
                         " expired unpaid",
                         q->invitee);
        sy_reply_extend(r, "referral_status", json_string("expired"));
        return 0;
    }
    json_t *body = json_pack("{s:s, s:s, s:s, s:s, s:o, s:o, s:o}", "campaign", q->id, "invitee",
                             q->invitee, "inviter", o.inviter, "status", o.status, "flags",
                             flags_json(o.flags), "inviter_reward", paid_json(&o.inviter_paid),
                             "invitee_reward", paid_json(&o.invitee_paid));
    json_object_set_new(body, "refusal", o.refusal[0] ? json_string(o.refusal) : json_null());
    sy_reply_json(r, 200, body);
    return 0;
}

static void review(sy_req *r, bool approve)
{
    static const char *const fields[] = {"note", NULL};
    review_req *q = sy_req_alloc(r, sizeof *q);
    memset(q, 0, sizeof *q);
    q->id = sy_req_param(r, "id");
    q->invitee = sy_req_param(r, "invitee");
    q->approve = approve;
    size_t len;
    sy_req_body(r, &len);
    if (len) {
        json_t *body = sy_req_json_object(r);
        if (!body || !sy_v_only(r, body, fields) ||
            !sy_v_string(r, body, "note", false, SY_CAMPAIGN_NOTE_MAX, &q->note))
            return;
    }
    if (!valid_no(r, q->invitee, "invitee") || !valid_id(r, q->id))
        return;
    sy_req_write(r, apply_review, NULL, q);
}

void sy_api_referrals_approve(sy_req *r)
{
    review(r, true);
}

void sy_api_referrals_reject(sy_req *r)
{
    review(r, false);
}

/* ------------------------------------------------------------------ */
/* expiry of held rewards                                              */

#define EXPIRY_BATCH 5000

typedef struct expire_req {
    const char *tenant, *id, *actor;
    int64_t now, n;
    bool more;
} expire_req;

static int apply_expire(sy_conn *c, sy_req *r, void *ctx)
{
    expire_req *q = ctx;
    int rc = sy_referral_expire_held(c, q->tenant, q->id, q->now, q->actor, EXPIRY_BATCH, &q->n,
                                     &q->more);
    if (rc != SY_OK)
        return rc;
    sy_req_audit_target(r, q->id);
    sy_reply_json(r, 200,
                  json_pack("{s:s, s:I, s:b, s:o}", "campaign", q->id, "expired", (json_int_t)q->n,
                            "more", q->more, "as_of", sy_json_time(q->now)));
    return 0;
}

/* POST /v1/campaigns/{id}/referrals:expire: expires the campaign's held
 * rewards past their review deadline now (the maintenance loop does the
 * same every ten minutes). */
void sy_api_referrals_expire(sy_req *r)
{
    static const char *const fields[] = {NULL};
    size_t len;
    sy_req_body(r, &len);
    json_t *body = len ? sy_req_json_object(r) : NULL;
    if (len && (!body || !sy_v_only(r, body, fields)))
        return;
    expire_req *q = sy_req_alloc(r, sizeof *q);
    memset(q, 0, sizeof *q);
    q->id = sy_req_param(r, "id");
    if (!valid_id(r, q->id))
        return;
    sy_campaign *cp = sy_api_campaign_read(r, q->id);
    if (!cp)
        return;
    bool referral = cp->type == SY_CAMPAIGN_REFERRAL;
    sy_campaign_free(cp);
    if (!referral) {
        sy_reply_problem(r, 409, "wrong-type", NULL, "campaign '%s' is not a referral campaign",
                         q->id);
        return;
    }
    q->tenant = sy_req_principal(r)->tenant;
    q->actor = sy_req_principal(r)->key_id;
    q->now = sy_req_now_ms(r);
    sy_req_write(r, apply_expire, NULL, q);
}

static int apply_expire_job(sy_conn *c, void *ctx)
{
    expire_req *q = ctx;
    return sy_referral_expire_held(c, q->tenant, NULL, q->now, "system:expiry", EXPIRY_BATCH, &q->n,
                                   &q->more);
}

void sy_api_referral_expire_job(sy_app *app)
{
    static const char sql[] = "SELECT id FROM tenants ORDER BY id";
    char **tenants = NULL;
    size_t n = 0;
    sy_conn *c = sy_store_acquire(app->store);
    sy_stmt *st = sy_conn_prepare(c, sql);
    while (st && sy_stmt_step(st) == SY_ROW) {
        tenants = sy_xrealloc(tenants, (n + 1) * sizeof *tenants);
        tenants[n++] = sy_xstrdup(sy_stmt_text(st, 0));
    }
    if (st)
        sy_stmt_reset(st);
    sy_store_release(app->store, c);
    for (size_t i = 0; i < n; i++) {
        expire_req q = {.tenant = tenants[i], .now = sy_now_ms()};
        int64_t total = 0;
        do {
            sy_mutation m = {.apply = apply_expire_job, .ctx = &q};
            if (sy_writer_run(app->writer, &m) != 0) {
                sy_warn("referral hold expiry for tenant %s failed", tenants[i]);
                break;
            }
            total += q.n;
        } while (q.more);
        if (total)
            sy_info("referral hold expiry: tenant %s: %lld held referrals expired", tenants[i],
                    (long long)total);
        free(tenants[i]);
    }
    free(tenants);
}

/* ------------------------------------------------------------------ */
/* the list                                                            */

void sy_api_referrals_list(sy_req *r)
{
    static const char sql[] =
        "SELECT invitee, inviter, code, status, flags, bound_at, qualify_by, qualified_at,"
        " event_id, refusal, reviewed_by, reviewed_at, review_by FROM referral_bindings"
        " WHERE tenant_id = $1"
        " AND campaign_id = $2 AND ($3 = '' OR status = $3) AND ($4 = '' OR inviter = $4)"
        " ORDER BY bound_at, invitee LIMIT $5";
    static const char *const statuses[] = {"bound",   "held",     "rewarded",
                                           "refused", "rejected", "expired"};
    const char *id = sy_req_param(r, "id"), *status = sy_req_query(r, "status");
    const char *inviter = sy_req_query(r, "inviter"), *lim = sy_req_query(r, "limit");
    if (status) {
        bool known = false;
        for (size_t i = 0; i < SY_ARRAY_LEN(statuses) && !known; i++)
            known = !strcmp(status, statuses[i]);
        if (!known) {
            sy_reply_problem(r, 400, "validation", "status",
                             "'status' must be bound, held, rewarded, refused, rejected or"
                             " expired");
            return;
        }
    }
    if (inviter && !valid_no(r, inviter, "inviter"))
        return;
    int64_t limit = 100;
    if (lim && !sy_parse_i64(lim, 1, 1000, &limit)) {
        sy_reply_problem(r, 400, "validation", "limit", "'limit' must be an integer 1 to 1000");
        return;
    }
    if (!valid_id(r, id))
        return;
    sy_campaign *cp = sy_api_campaign_read(r, id);
    if (!cp)
        return;
    sy_campaign_free(cp);
    sy_app *app = sy_req_app(r);
    sy_conn *c = sy_store_acquire(app->store);
    sy_stmt *st = sy_conn_prepare(c, sql);
    int rc = SY_ERR;
    json_t *items = json_array();
    if (st) {
        sy_stmt_bind_text(st, 1, sy_req_principal(r)->tenant);
        sy_stmt_bind_text(st, 2, id);
        sy_stmt_bind_text(st, 3, status ? status : "");
        sy_stmt_bind_text(st, 4, inviter ? inviter : "");
        sy_stmt_bind_i64(st, 5, limit);
        while ((rc = sy_stmt_step(st)) == SY_ROW) {
            json_t *o = json_pack(
                "{s:s, s:s, s:s, s:s, s:o, s:o, s:o}", "invitee", sy_stmt_text(st, 0), "inviter",
                sy_stmt_text(st, 1), "code", sy_stmt_text(st, 2), "status", sy_stmt_text(st, 3),
                "flags", flags_json(sy_stmt_text(st, 4)), "bound_at",
                sy_json_time(sy_stmt_i64(st, 5)), "qualify_by", sy_json_time(sy_stmt_i64(st, 6)));
            json_object_set_new(o, "qualified_at",
                                sy_stmt_is_null(st, 7) ? json_null()
                                                       : sy_json_time(sy_stmt_i64(st, 7)));
            json_object_set_new(o, "event_id",
                                sy_stmt_is_null(st, 8) ? json_null()
                                                       : json_string(sy_stmt_text(st, 8)));
            json_object_set_new(o, "refusal",
                                sy_stmt_is_null(st, 9) ? json_null()
                                                       : json_string(sy_stmt_text(st, 9)));
            json_object_set_new(o, "reviewed_by",
                                sy_stmt_is_null(st, 10) ? json_null()
                                                        : json_string(sy_stmt_text(st, 10)));
            json_object_set_new(o, "review_by",
                                sy_stmt_is_null(st, 12) ? json_null()
                                                        : sy_json_time(sy_stmt_i64(st, 12)));
            json_array_append_new(items, o);
        }
        sy_stmt_reset(st);
    }
    if (rc != SY_DONE) {
        json_decref(items);
        sy_api_store_error(r, c);
    } else {
        sy_reply_json(r, 200, json_pack("{s:o}", "items", items));
    }
    sy_store_release(app->store, c);
}

/* ------------------------------------------------------------------ */
/* the events hook                                                     */

struct sy_referral_plan {
    int ncamp;
    char ids[MAX_REFERRAL_CAMPAIGNS][SY_CAMPAIGN_ID_MAX + 1];
    sy_campaign *cp[MAX_REFERRAL_CAMPAIGNS]; /* loaded by the writer */
    sy_referral_rules rules[MAX_REFERRAL_CAMPAIGNS];
    bool ok[MAX_REFERRAL_CAMPAIGNS];
    bool loaded;
    int64_t now_ms;
};

void sy_api_referral_plan_free(sy_referral_plan *p)
{
    if (!p)
        return;
    for (int k = 0; k < p->ncamp; k++)
        sy_campaign_free(p->cp[k]);
    free(p);
}

void sy_api_referral_plan_reset(sy_referral_plan *p)
{
    if (!p)
        return;
    for (int k = 0; k < p->ncamp; k++) {
        sy_campaign_free(p->cp[k]);
        p->cp[k] = NULL;
        p->ok[k] = false;
    }
    p->loaded = false;
}

sy_referral_plan *sy_api_referral_plan(sy_req *r, bool *failed)
{
    sy_app *app = sy_req_app(r);
    *failed = false;
    sy_referral_plan *p = sy_xcalloc(1, sizeof *p);
    p->now_ms = sy_req_now_ms(r);
    sy_conn *c = sy_store_acquire(app->store);
    int rc = sy_referral_running(c, sy_req_principal(r)->tenant, p->now_ms, p->ids,
                                 MAX_REFERRAL_CAMPAIGNS, &p->ncamp);
    if (rc != SY_OK) {
        *failed = true;
        sy_api_store_error(r, c);
    }
    sy_store_release(app->store, c);
    if (rc != SY_OK || p->ncamp == 0) {
        free(p);
        return NULL;
    }
    return p;
}

int sy_api_referral_apply(sy_conn *c, sy_req *r, sy_referral_plan *p, const char *no,
                          const char *name, const char *event_id, int64_t ts, json_t *out)
{
    const sy_principal *who = sy_req_principal(r);
    if (!p->loaded) {
        for (int k = 0; k < p->ncamp; k++) {
            int rc = sy_campaign_load(c, who->tenant, p->ids[k], &p->cp[k]);
            if (rc < 0)
                return rc;
            char field[96], msg[200];
            p->ok[k] = rc == SY_OK && p->cp[k]->type == SY_CAMPAIGN_REFERRAL &&
                       sy_referral_rules_parse(p->cp[k]->extra, p->cp[k]->point_type, &p->rules[k],
                                               field, sizeof field, msg, sizeof msg);
        }
        p->loaded = true;
    }
    for (int k = 0; k < p->ncamp; k++) {
        if (!p->ok[k])
            continue;
        sy_campaign_who w = {.tenant = who->tenant,
                             .eligible = sy_api_reward_eligible,
                             .eligible_ud = r,
                             .customer_no = no,
                             .in_audience = true,
                             .operator_id = who->key_id,
                             .now_ms = p->now_ms};
        sy_referral_out o;
        int rc = sy_referral_event(c, p->cp[k], &p->rules[k], &w, name, event_id, ts, &o);
        if (rc < 0)
            return rc;
        if (rc != SY_OK)
            continue;
        json_t *x = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:o}", "event_id", event_id,
                              "campaign", p->cp[k]->id, "invitee", no, "inviter", o.inviter,
                              "status", o.status, "inviter_reward", paid_json(&o.inviter_paid),
                              "invitee_reward", paid_json(&o.invitee_paid));
        json_object_set_new(x, "flags", flags_json(o.flags));
        json_object_set_new(x, "refusal", o.refusal[0] ? json_string(o.refusal) : json_null());
        json_array_append_new(out, x);
    }
    return SY_OK;
}

/* api_coupon.c — coupon drops (限时抢券) over HTTP: claims (POST,
 * idempotent, one writer mutation each) and today's waves.
 *
 * The rules are in coupon.c; the campaign's own checks (audience,
 * suitability, holdout, limits, budget) are campaign.c's, and their
 * refusals answer with the same problem types as check-in and draws
 * (sy_api_campaign_refusal).  A claim passes the anti-abuse gate (action
 * `claim`) in the request thread first, as draws do.  docs/campaigns.md
 * has the model. */
#include "api.h"
#include "app.h"
#include "campaign.h"
#include "coupon.h"
#include "customer.h"
#include "util.h"
#include "validate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct claim_req {
    const char *id, *no;
    bool in_audience, accepted;
    void *gate;
    sy_coupon_outcome out;
} claim_req;

static void next_wave_member(sy_req *r, int64_t next_at)
{
    sy_reply_extend(r, "next_wave_at",
                    next_at == SY_CAMPAIGN_UNSET ? json_null() : sy_json_time(next_at));
}

static void reply_refusal(sy_req *r, int rc, const sy_coupon_outcome *o, const char *id,
                          const char *no)
{
    switch (rc) {
    case SY_COUPON_NOT_STARTED:
        sy_reply_problem(
            r, 409, "not-started", NULL, "no wave of coupon drop '%s' has opened yet%s", id,
            o->when.next_at == SY_CAMPAIGN_UNSET ? ", and none will" : "; see next_wave_at");
        next_wave_member(r, o->when.next_at);
        break;
    case SY_COUPON_SOLD_OUT:
        sy_reply_problem(r, 409, "wave-sold-out", NULL,
                         "all %lld coupons of the current wave of '%s' are claimed",
                         (long long)o->released, id);
        sy_reply_extend(r, "wave", json_integer(o->when.wave));
        sy_reply_extend(r, "released", json_integer(o->released));
        next_wave_member(r, o->when.next_at);
        break;
    case SY_CAMPAIGN_LIMIT_REACHED:
        sy_api_campaign_refusal(r, rc, &o->why, id, no);
        if (!strcmp(o->why.other, "wave"))
            next_wave_member(r, o->when.next_at);
        break;
    default:
        sy_api_campaign_refusal(r, rc, &o->why, id, no);
        break;
    }
}

static json_t *claim_json(const claim_req *q)
{
    const sy_coupon_outcome *o = &q->out;
    char day[11];
    sy_format_date(o->when.day, day);
    json_t *b = json_pack(
        "{s:s, s:s, s:s, s:s, s:i, s:o, s:s, s:s, s:I, s:I, s:I, s:I}", "claim", o->claim_id,
        "campaign", q->id, "customer_no", q->no, "day", day, "wave", o->when.wave, "wave_opened_at",
        sy_json_time(o->when.wave_at), "item", o->item, "grant", o->grant_code, "cost",
        (json_int_t)o->cost, "wave_released", (json_int_t)o->released, "wave_remaining",
        (json_int_t)(o->released - o->claimed), "claims_left_in_wave", (json_int_t)o->claims_left);
    json_object_set_new(b, "next_wave_at",
                        o->when.next_at == SY_CAMPAIGN_UNSET ? json_null()
                                                             : sy_json_time(o->when.next_at));
    return b;
}

static int apply_claim(sy_conn *c, sy_req *r, void *ctx)
{
    claim_req *q = ctx;
    const sy_principal *who = sy_req_principal(r);
    sy_campaign_who w = {.tenant = who->tenant,
                         .eligible = sy_api_reward_eligible,
                         .eligible_ud = r,
                         .customer_no = q->no,
                         .in_audience = q->in_audience,
                         .operator_id = who->key_id,
                         .key = sy_req_header(r, "Idempotency-Key"),
                         .now_ms = sy_req_now_ms(r)};
    const char *device, *ip;
    sy_api_abuse_subject(q->gate, &device, &ip);
    int rc = sy_coupon_claim(c, &w, q->id, device, ip, &q->out);
    if (rc == SY_CAMPAIGN_HOLDOUT) {
        /* the holdout is recorded: this refusal commits */
        sy_req_no_audit(r);
        reply_refusal(r, rc, &q->out, q->id, q->no);
        return 0;
    }
    if (rc > 0) {
        reply_refusal(r, rc, &q->out, q->id, q->no);
        return 1;
    }
    if (rc != SY_OK)
        return rc;
    q->accepted = true;
    sy_req_audit_target(r, q->out.claim_id);
    sy_reply_json(r, 201, claim_json(q));
    return 0;
}

static void claim_committed(sy_req *r, void *ctx)
{
    claim_req *q = ctx;
    if (q->accepted)
        sy_api_abuse_accepted(r, q->gate);
}

/* POST /v1/campaigns/{id}/claim {"customer_no": "…"} with an Idempotency-Key. */
void sy_api_coupon_claim(sy_req *r)
{
    static const char *const fields[] = {"customer_no", NULL};
    json_t *body = sy_req_json_object(r);
    claim_req *q = sy_req_alloc(r, sizeof *q);
    memset(q, 0, sizeof *q);
    q->id = sy_req_param(r, "id");
    if (!body || !sy_v_only(r, body, fields) ||
        !sy_v_string(r, body, "customer_no", true, SY_CUSTOMER_NO_MAX, &q->no))
        return;
    if (!sy_customer_no_valid(q->no)) {
        sy_reply_problem(r, 400, "validation", "/customer_no",
                         "'customer_no' must be 1-64 characters of A-Z a-z 0-9 _ . : -");
        return;
    }
    if (!sy_req_header(r, "Idempotency-Key")) {
        sy_reply_problem(r, 400, "validation", "Idempotency-Key",
                         "a claim needs an Idempotency-Key, so that a retry claims once");
        return;
    }
    if (!sy_api_abuse_gate(r, 2, q->no, &q->gate))
        return;
    sy_campaign *cp = sy_api_campaign_read(r, q->id);
    if (!cp)
        return;
    q->in_audience = true;
    bool ok =
        !cp->segment_id[0] || sy_api_campaign_audience(r, cp->segment_id, q->no, &q->in_audience);
    sy_campaign_free(cp);
    if (ok)
        sy_req_write(r, apply_claim, claim_committed, q);
}

/* GET /v1/campaigns/{id}/waves: today's waves, with what is left of each. */
void sy_api_coupon_waves(sy_req *r)
{
    const char *id = sy_req_param(r, "id");
    if (!sy_campaign_id_valid(id)) {
        sy_reply_problem(r, 404, "not-found", NULL, "no such campaign");
        return;
    }
    sy_app *app = sy_req_app(r);
    sy_conn *c = sy_store_acquire(app->store);
    json_t *o;
    int rc = sy_coupon_waves_json(c, sy_req_principal(r)->tenant, id, sy_req_now_ms(r), &o);
    if (rc == SY_CAMPAIGN_NOT_FOUND)
        sy_reply_problem(r, 404, "not-found", NULL, "no campaign '%s'", id);
    else if (rc == SY_CAMPAIGN_WRONG_TYPE)
        sy_reply_problem(r, 409, "wrong-type", NULL, "campaign '%s' is not a coupon drop", id);
    else if (rc != SY_OK)
        sy_api_store_error(r, c);
    else
        sy_reply_json(r, 200, o);
    sy_store_release(app->store, c);
}

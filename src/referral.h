/* referral.h — referral fission (裂变) for campaigns of type `referral`:
 * invite codes per customer, binding an invitee to an inviter, the
 * qualifying event that pays both, caps per inviter, and the fraud rules
 * that hold rewards for review instead of paying them.
 *
 * Like campaign.h, these are rules over a connection inside the caller's
 * write transaction.  A refusal (positive: the SY_CAMPAIGN_* codes of
 * campaign.h or the SY_REFERRAL_* below) is decided before anything is
 * written, except SY_CAMPAIGN_HOLDOUT (the holdout is recorded).
 *
 * The campaign's `referral` section (docs/campaigns.md):
 *   {"qualifying_events": ["account_opened"], "window_days": 30,
 *    "inviter_reward": {"points": 100}, "invitee_reward": {"item": "cp5"},
 *    "max_per_inviter": 10, "new_customers_only": true, "hold_days": 14,
 *    "fraud": {"same_device": true, "window_minutes": 60, "max_per_ip": 5,
 *              "max_per_phone_prefix": 5, "phone_prefix_digits": 7}}
 */
#ifndef SY_REFERRAL_H
#define SY_REFERRAL_H

#include "campaign.h"
#include "store.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define SY_REFERRAL_EVENTS_MAX 8
#define SY_REFERRAL_CODE_LEN 10
#define SY_REFERRAL_DEVICE_MAX 128
#define SY_REFERRAL_IP_MAX 45
#define SY_REFERRAL_WINDOW_DAYS_MAX 365
#define SY_REFERRAL_DEFAULT_WINDOW_DAYS 30
/* Held rewards wait this many days for review (hold_days), then expire. */
#define SY_REFERRAL_DEFAULT_HOLD_DAYS 14
#define SY_REFERRAL_HOLD_DAYS_MAX 365
/* A qualifying event may carry a time up to this much before the binding
 * (the clocks of the bank's systems differ; the event that opened the
 * account may be stamped just before the binding request arrived). */
#define SY_REFERRAL_SKEW_MS (5 * 60000LL)

/* Refusals of their own (numbered after campaign.h's). */
enum {
    SY_REFERRAL_UNKNOWN_CODE = 100, /* no such invite code in this campaign */
    SY_REFERRAL_SELF,               /* the invitee is the code's owner */
    SY_REFERRAL_ALREADY_BOUND,      /* the invitee has a binding (out->inviter) */
    SY_REFERRAL_EXISTING_CUSTOMER,  /* a customer before the campaign started */
    SY_REFERRAL_NO_BINDING,         /* no (such) binding for the customer */
    SY_REFERRAL_NOT_HELD,           /* review of a binding that is not held (out->status) */
};

typedef struct sy_referral_rules {
    char events[SY_REFERRAL_EVENTS_MAX][65];
    int nevents;
    int64_t window_days;
    sy_campaign_reward inviter, invitee; /* points 0 and item "": none */
    int64_t max_per_inviter;             /* SY_CAMPAIGN_UNSET: no cap */
    bool new_customers_only;
    bool same_device;             /* the same-device rule (default on): the inviter's
                                     device, or one another invitee used */
    int64_t fraud_window_minutes; /* bursts are counted over this (default 60) */
    int64_t max_per_ip;           /* bindings per IP in the window (UNSET: no rule) */
    int64_t max_per_phone_prefix; /* likewise per phone prefix */
    int phone_prefix_digits;      /* default 7 (e.g. 1380013) */
    int64_t hold_days;            /* a held binding's review deadline (default 14) */
} sy_referral_rules;

/* Parses a campaign's `referral` section (sec may be NULL: it is required)
 * with the campaign's default point type.  On failure: false with field (a
 * JSON pointer under /referral) and msg. */
bool sy_referral_rules_parse(json_t *sec, const char *default_type, sy_referral_rules *out,
                             char *field, size_t fieldlen, char *msg, size_t msglen);
/* The rewards' point types and items exist (UNKNOWN_TYPE / UNKNOWN_ITEM
 * with res->other naming the field). */
int sy_referral_check_refs(sy_conn *c, const char *tenant, const sy_referral_rules *rules,
                           sy_campaign_result *res);

/* The binding's fraud rules, from what the binding request says. */
typedef struct sy_referral_bind {
    const char *code;
    const char *device_id; /* the invitee's device, or NULL */
    const char *ip;        /* the invitee's IP address in its canonical text
                            * (sy_abuse_ip_key), or NULL: stored and counted as given */
    const char *phone;     /* the invitee's phone number, or NULL: only its prefix is kept */
} sy_referral_bind;

typedef struct sy_referral_out {
    char code[SY_REFERRAL_CODE_LEN + 1];
    bool created;       /* invite: a new code */
    char inviter[65];   /* bind: the code's owner; ALREADY_BOUND: the existing inviter */
    char status[16];    /* the binding's status after the call */
    char flags[64];     /* fraud rules tripped: "same-device,ip-burst" */
    char refusal[160];  /* what was not paid, and why */
    int64_t qualify_by; /* bind */
    sy_campaign_outcome inviter_paid, invitee_paid; /* rewards paid (points 0, item "": none) */
    sy_campaign_result why;
} sy_referral_out;

/* The invite code of w->customer_no in a referral campaign: made on demand
 * (out->created), the same afterwards.  The inviter must be admitted now
 * (running, audience, suitability, holdout).  device_id (or NULL) is
 * remembered for the same-device rule. */
int sy_referral_invite(sy_conn *c, const sy_campaign_who *w, const char *campaign,
                       const char *device_id, sy_referral_out *out);

/* Binds invitee w->customer_no by a code.  Checks in order: the campaign
 * (type, running now), the code, the invitee (exists, not merged), a self
 * invite, an earlier binding (the first valid code wins), a customer from
 * before the start (when new_customers_only); then notes the fraud rules
 * the binding trips (out->flags) and records it, waiting for the
 * qualifying event until out->qualify_by. */
int sy_referral_bind_invitee(sy_conn *c, const sy_campaign_who *w, const char *campaign,
                             const sy_referral_bind *b, sy_referral_out *out);

/* An event of w->customer_no at ts_ms for a running referral campaign cp
 * (loaded in this transaction, rules parsed).  When it is a qualifying
 * event of a waiting binding: past the window it expires the binding; with
 * fraud flags it holds the rewards; otherwise it pays them (each reward
 * within the budget, the inviter's within its cap) and returns SY_OK with
 * out->status.  SY_REFERRAL_NO_BINDING when the event changes nothing. */
int sy_referral_event(sy_conn *c, const sy_campaign *cp, const sy_referral_rules *rules,
                      const sy_campaign_who *w, const char *event_name, const char *event_id,
                      int64_t ts_ms, sy_referral_out *out);

/* Reviews a held binding: approve pays its rewards (as the event would
 * have), reject refuses them.  Maker-checker: the reviewer (actor) must be
 * another key than the one that created or last changed the campaign
 * (SY_CAMPAIGN_MAKER_CHECKER).  Refusals: NOT_FOUND, WRONG_TYPE,
 * NO_BINDING, NOT_HELD (out->status).  A held binding past its review
 * deadline (review_by) is not reviewed: it expires (SY_OK with out->status
 * "expired" and out->refusal "review-expired"; the caller commits that and
 * answers the review as refused). */
int sy_referral_review(sy_conn *c, const sy_campaign_who *w, const char *campaign,
                       const char *invitee, bool approve, const char *note, sy_referral_out *out);

/* Expires the held bindings past their review deadline at now_ms — of one
 * campaign, or (campaign NULL) of every referral campaign of the tenant —
 * at most `max` of them: status expired, refusal review-expired, nothing
 * paid, reviewed_by actor.  *n counts them; *more: there may be more. */
int sy_referral_expire_held(sy_conn *c, const char *tenant, const char *campaign, int64_t now_ms,
                            const char *actor, int max, int64_t *n, bool *more);

/* The ids of the tenant's referral campaigns that run at now_ms. */
int sy_referral_running(sy_conn *c, const char *tenant, int64_t now_ms,
                        char (*ids)[SY_CAMPAIGN_ID_MAX + 1], int max, int *n);

/* The phone prefix kept for the burst rule: the first `digits` digits of
 * phone as sy_phone_normalize reads it (a +86 or 0086 before a mainland
 * number dropped, spaces, - ( ) skipped) into out; false when there are
 * fewer, or phone is not a phone number. */
bool sy_referral_phone_prefix(const char *phone, int digits, char *out, size_t outlen);

#endif

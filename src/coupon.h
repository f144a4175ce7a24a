/* coupon.h — coupon drops (限时抢券) for campaigns of type `coupon_drop`:
 * a catalogue item (a 立减金 coupon) released in waves at fixed local
 * times of every business day, claimed first come, first served.
 *
 * The campaign's `coupon_drop` section (docs/campaigns.md):
 *   {"item": "cp_10", "quantity_per_wave": 100,
 *    "waves": [{"at": "10:00"}, {"at": "20:00", "quantity": 50}],
 *    "per_wave": 1}
 *
 * A wave opens at its time and lasts until the next wave (or the end of
 * the business day); its unclaimed units do not carry over.  Like
 * campaign.h, these are rules over a connection inside the caller's write
 * transaction: a claim passes the campaign's own checks (admission,
 * limits, budget), every refusal is decided before anything is written
 * (except SY_CAMPAIGN_HOLDOUT, which records the customer), and the grant,
 * the wave's count, the budget and the claim's row commit together. */
#ifndef SY_COUPON_H
#define SY_COUPON_H

#include "campaign.h"
#include "store.h"
#include "util.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define SY_COUPON_WAVES_MAX 24
#define SY_COUPON_QUANTITY_MAX 10000000LL
#define SY_COUPON_PER_WAVE_MAX 100
#define SY_COUPON_ID_LEN (3 + SY_ORDERED_ID_LEN) /* "cc_" + 28 hex */

/* Refusals of their own (numbered after referral.h's). */
enum {
    SY_COUPON_NOT_STARTED = 120, /* no wave has opened yet today (out->next_at) */
    SY_COUPON_SOLD_OUT,          /* the current wave is all claimed (out->next_at) */
};

typedef struct sy_coupon_wave {
    int at;           /* minutes after local midnight */
    int64_t quantity; /* units it releases */
} sy_coupon_wave;

typedef struct sy_coupon_rules {
    char item[SY_BENEFIT_CODE_MAX + 1];
    sy_coupon_wave waves[SY_COUPON_WAVES_MAX]; /* in time order */
    int nwaves;
    int64_t per_wave; /* claims per customer and wave (default 1) */
} sy_coupon_rules;

/* Parses a campaign's `coupon_drop` section (sec may be NULL: it is
 * required).  On failure: false with field (a JSON pointer under
 * /coupon_drop) and msg. */
bool sy_coupon_rules_parse(json_t *sec, sy_coupon_rules *out, char *field, size_t fieldlen,
                           char *msg, size_t msglen);
/* The item exists and may be issued (UNKNOWN_ITEM with res->other naming
 * the field). */
int sy_coupon_check_refs(sy_conn *c, const char *tenant, const sy_coupon_rules *rules,
                         sy_campaign_result *res);

/* Where now_ms falls: its business day, the wave open then (-1: none yet
 * today) and the moment the next wave opens within the campaign's window
 * (SY_CAMPAIGN_UNSET: none).  Before the campaign starts, the next wave is
 * its first. */
typedef struct sy_coupon_when {
    int64_t day;
    int wave;
    int64_t wave_at; /* when the open wave opened (UTC ms) */
    int64_t next_at;
} sy_coupon_when;
void sy_coupon_locate(const sy_coupon_rules *rules, const sy_campaign *cp, const char *zone,
                      int64_t now_ms, sy_coupon_when *out);
/* The UTC moment of minute `minute` of business day `day` in zone. */
int64_t sy_coupon_local_ms(const char *zone, int64_t day, int minute);

typedef struct sy_coupon_outcome {
    char claim_id[SY_COUPON_ID_LEN + 1];
    sy_coupon_when when;
    char item[SY_BENEFIT_CODE_MAX + 1];
    char grant_code[SY_BENEFIT_GRANT_CODE_MAX + 1];
    int64_t cost;           /* the item's cost price, counted in the budget */
    int64_t released;       /* the wave's units */
    int64_t claimed;        /* taken from the wave, this claim included */
    int64_t claims_left;    /* this customer's claims left in the wave */
    sy_campaign_result why; /* refusals */
} sy_coupon_outcome;

/* One claim for w->customer_no at w->now_ms.  Checks in order: the
 * campaign and its type, a wave open now (NOT_STARTED), admission
 * (schedule, open hours, customer, audience, suitability, holdout), the
 * wave's units (SOLD_OUT), the customer's claims in the wave (LIMIT_REACHED
 * with why.other "wave"), the campaign's limits, the budget for the item's
 * cost; then issues one unit of the item through the catalogue
 * (REWARD_REFUSED when the catalogue refuses: its own stock, limits,
 * window), takes the unit from the wave, moves the budget and records the
 * claim.  device and ip (may be NULL) are recorded with it. */
int sy_coupon_claim(sy_conn *c, const sy_campaign_who *w, const char *campaign, const char *device,
                    const char *ip, sy_coupon_outcome *out);

/* Today's waves of a coupon drop as the API shows them: each wave's time,
 * units released, claimed and left (a wave not yet claimed from shows its
 * quantity).  SY_OK, SY_CAMPAIGN_NOT_FOUND, WRONG_TYPE or a store error. */
int sy_coupon_waves_json(sy_conn *c, const char *tenant, const char *campaign, int64_t now_ms,
                         json_t **out);

/* `siyu check`: per wave, claimed = its claims <= released; every claim
 * has its grant (same customer and item). */
int sy_coupon_check(sy_conn *c, const char *tenant, void (*report)(void *ud, const char *line),
                    void *ud, int64_t *violations, int64_t *checked);

#endif

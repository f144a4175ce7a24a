/* offers.h — what one customer can use right now (千人千面): the running
 * campaigns that admit them, the benefit packages and the points-mall
 * listings meant for them, with their remaining limits and chances,
 * ranked by priority and then the soonest end.
 *
 * Built for the read path (GET /v1/customers/{no}/offers, api_offers.c):
 *
 *   the catalogue   every campaign that may run (stored 'scheduled', not
 *                   past its end), every package and every active listing
 *                   with its item, loaded once and shared (immutable,
 *                   reference counted) until a campaign changes or it is a
 *                   second old; with the distinct audiences they name
 *                   (saved segment ids and parsed expressions);
 *   per request     the audiences are evaluated among the one customer
 *                   through the segment index (by the caller), the risk
 *                   profile read from the index, the holdout hashed, and
 *                   the customer's participations and grants read in two
 *                   indexed queries (sy_offers_state_load).
 *
 * Nothing here writes. */
#ifndef SY_OFFERS_H
#define SY_OFFERS_H

#include "campaign.h"
#include "segment_parse.h"
#include "store.h"
#include "util.h"

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

typedef enum sy_offer_kind {
    SY_OFFER_CAMPAIGN,
    SY_OFFER_PACKAGE,
    SY_OFFER_LISTING,
} sy_offer_kind;

/* An audience: a saved segment (id) or an expression (ast). */
typedef struct sy_offer_audience {
    char *id;
    char *expression;
    sy_seg_node *ast; /* parsed expression; NULL for an id or one that does not parse */
} sy_offer_audience;

#define SY_OFFER_NO_AUDIENCE (-1)
#define SY_OFFER_NO_END INT64_MAX

typedef struct sy_offer {
    sy_offer_kind kind;
    char code[SY_BENEFIT_CODE_MAX + 1]; /* campaign id, package or listing code */
    char name[401];
    int priority;
    int64_t ends_at; /* SY_OFFER_NO_END: none */
    int audience[2]; /* indexes into the catalogue's audiences; NO_AUDIENCE: none */
    sy_campaign *cp; /* campaigns */
    /* lottery campaigns, from the newest prize table (has_table false: none
     * yet): the table's daily cap (-1: none), free draws a day, and what a
     * draw beyond them costs (0: nothing, free chances only) */
    bool has_table;
    int64_t draws_per_day, free_per_day, draw_cost;
    char cost_type[33];
    /* listings: the item and its price */
    char item[SY_BENEFIT_CODE_MAX + 1], point_type[33];
    int64_t price, face_value;
    /* what changes without a campaign write, refreshed in place every
     * second (sy_offers_catalog_refresh): a campaign's spent budget, a
     * listing's item stock */
    _Atomic int64_t spent_points, spent_cost, remaining;
    int64_t available_from, available_until;  /* SY_BENEFIT_UNSET: open */
    int64_t lim_day, lim_month, lim_total;    /* the listing's (UNSET: none) */
    int64_t item_day, item_month, item_total; /* the item's */
    json_t *lines;                            /* packages: [{"item", "quantity"}] */
    int64_t max_per_inviter;                  /* referral campaigns: -1: no cap */
    struct sy_coupon_rules *coupon;           /* coupon drops: the parsed section */
    /* the offer's JSON members that do not depend on the customer, rendered
     * once with the catalogue (an object without its closing brace), and
     * each task's likewise: answers are assembled from them as text */
    char *head;
    size_t head_len;
    char **task_heads;
} sy_offer;

typedef struct sy_offers_catalog sy_offers_catalog;
struct sy_offers_catalog {
    char tenant[65];
    char zone[65];
    int64_t loaded_for;     /* the request time it was loaded at */
    int64_t loaded_real;    /* the real clock then (for the full reload) */
    _Atomic int64_t synced; /* the real clock at the last refresh of the volatile numbers */
    uint64_t generation;
    sy_offer *offers;
    size_t n;
    sy_offer_audience *audiences;
    size_t naudiences;
    int refs; /* owned by the cache: see api_offers.c */
};

/* Loads a tenant's catalogue as of now_ms (campaigns not ended by then).
 * Returns SY_OK or a store error. */
int sy_offers_catalog_load(sy_conn *c, const char *tenant, int64_t now_ms, sy_offers_catalog **out);
void sy_offers_catalog_free(sy_offers_catalog *cat);
/* Reads the volatile numbers again — campaigns' spent budgets and items'
 * stock, two short queries — into the shared catalogue (atomics). */
int sy_offers_catalog_refresh(sy_conn *c, sy_offers_catalog *cat);

/* One customer's standing, from the store and the index. */
typedef struct sy_offer_use {
    int64_t total, today, week; /* participations (make-ups excepted) */
    bool checked_in_today;
    json_t *tasks_done; /* {"task code": true} done in their period */
    int64_t invites_rewarded;
    int64_t draws_today; /* lotteries: the customer's draws today */
    /* campaigns: running and open now, in the audiences the load was given,
     * not holding the customer out (the rest is decided when rendered) */
    bool shown;
    /* coupon drops: the wave open now (-1: none), when it opened, how many
     * of its units are left and how many this customer claimed from it,
     * and when the next wave opens (SY_CAMPAIGN_UNSET: none) */
    int wave;
    int64_t wave_at, wave_left, wave_mine, next_wave_at;
} sy_offer_use;

typedef struct sy_offers_state {
    int64_t today, week, month;                        /* business day, week and month now */
    sy_offer_use *use;                                 /* by offer index (campaigns) */
    int64_t *grants_day, *grants_month, *grants_total; /* by offer: the listing's */
    int64_t *item_day, *item_month, *item_total;       /* by offer: its item's */
} sy_offers_state;

/* Reads the customer's participations in the catalogue's campaigns and
 * their grants: two indexed queries, and one per running lottery (the
 * customer's draws) and per running coupon drop (its current wave) that
 * the customer could be shown — in its audiences (in_audience, by the
 * catalogue's audience index as for sy_offers_render; NULL: every
 * campaign), open now and not holding the customer out. */
int sy_offers_state_load(sy_conn *c, const sy_offers_catalog *cat, const char *customer_no,
                         int64_t now_ms, const bool *in_audience, sy_offers_state *st);
void sy_offers_state_free(const sy_offers_catalog *cat, sy_offers_state *st);

/* The customer's risk profile (for suitability): level 1..5 (0: none), and
 * the day of their assessment (SY_CAMPAIGN_UNSET: none). */
typedef struct sy_offers_profile {
    const char *customer_no;
    int risk_level;
    int64_t risk_assessed_day;
} sy_offers_profile;

/* The offers, ranked, as a JSON array appended to out (text assembled
 * from the pre-rendered members: encoding a large answer through jansson
 * cost most of a request).  in_audience[a] says whether the customer is in
 * audience a of the catalogue.  Returns how many offers. */
size_t sy_offers_render(const sy_offers_catalog *cat, const sy_offers_state *st,
                        const bool *in_audience, const sy_offers_profile *prof, int64_t now_ms,
                        sy_buf *out);
/* The same as {"items": [...]} (new reference), for tests. */
json_t *sy_offers_build(const sy_offers_catalog *cat, const sy_offers_state *st,
                        const bool *in_audience, const sy_offers_profile *prof, int64_t now_ms);

/* The ranking: higher priority first, then the sooner end, then kind and
 * code (for a stable order).  A qsort comparator over sy_offer pointers. */
int sy_offers_compare(const void *a, const void *b);

#endif

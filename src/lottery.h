/* lottery.h — lotteries (抽奖) for campaigns of type `lottery`: a versioned
 * prize table (weights, per-prize stock, points or catalogue items), a cost
 * per draw in points or free daily chances, draws per customer per day, a
 * "thanks for taking part" outcome, pacing of the stock over the campaign's
 * days, and a guaranteed prize after N losing draws in a row.
 *
 * Like campaign.h, these are the rules as plain functions over a connection
 * inside the caller's write transaction.  A draw passes the campaign's own
 * checks (sy_campaign_admit, sy_campaign_check_limits, the budget), and
 * every refusal is decided before anything is written — except
 * SY_CAMPAIGN_HOLDOUT, which records the customer (the caller commits it).
 * A store error (negative) may leave partial changes the caller rolls
 * back.
 *
 * Every draw records its random value (libsodium randombytes_uniform over
 * the version's total weight), the version and the outcome, so any draw
 * can be explained from its row (sy_lottery_draw_get).  docs/campaigns.md
 * has the model. */
#ifndef SY_LOTTERY_H
#define SY_LOTTERY_H

#include "campaign.h"
#include "util.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define SY_LOTTERY_PRIZES_MAX 20
#define SY_LOTTERY_WEIGHT_MAX 1000000
#define SY_LOTTERY_STOCK_MAX 1000000000LL
#define SY_LOTTERY_DAY_MAX 1000 /* free_per_day, draws_per_day */
#define SY_LOTTERY_GUARANTEE_MAX 1000
#define SY_LOTTERY_ID_LEN (3 + SY_ORDERED_ID_LEN) /* "ld_" + 28 hex */

/* Refusals of the lottery's own (the campaign's are SY_CAMPAIGN_*). */
enum {
    SY_LOTTERY_NO_TABLE = 64, /* the campaign has no prize table yet */
    SY_LOTTERY_NO_CHANCES,    /* no free chance left today and draws cost nothing */
    SY_LOTTERY_NOT_EDITABLE,  /* prizes change only while draft or paused (out->other) */
    SY_LOTTERY_NO_DRAW,       /* no such draw */
    SY_LOTTERY_REPLAY,        /* the key drew before, for this customer: out->draw_id */
    SY_LOTTERY_KEY_USED,      /* the key drew before for another customer (out->draw_id) */
};

typedef struct sy_lottery_prize {
    char code[65];
    char name[SY_CAMPAIGN_NAME_MAX * 4 + 1];
    int64_t weight, stock, used;
    sy_campaign_reward reward;
} sy_lottery_prize;

/* One version of a campaign's prize table. */
typedef struct sy_lottery_table {
    int version;
    int64_t cost_points; /* 0: draws cost nothing (free chances only) */
    char cost_type[33];
    int64_t free_per_day;
    int64_t draws_per_day; /* SY_CAMPAIGN_UNSET: no daily cap of its own */
    int64_t thanks_weight;
    char thanks_name[SY_CAMPAIGN_NAME_MAX * 4 + 1];
    bool pacing;
    int64_t pace_from, pace_until; /* business days (set by sy_lottery_define) */
    int64_t guarantee_after;       /* SY_CAMPAIGN_UNSET: none */
    char guarantee_prize[65];
    sy_lottery_prize prizes[SY_LOTTERY_PRIZES_MAX];
    int nprizes;
    char created_by[40];
    int64_t created_at;
} sy_lottery_table;

/* Parses a prize table from a PUT body into t (version 0).  default_type:
 * the campaign's point_type ("" if none).  On failure returns false with
 * field (a JSON pointer) and msg set. */
bool sy_lottery_parse(json_t *in, const char *default_type, sy_lottery_table *t, char *field,
                      size_t fieldlen, char *msg, size_t msglen);
/* The table as the API shows it; day (not SY_CAMPAIGN_UNSET): with each
 * prize's stock released by then and left now. */
json_t *sy_lottery_table_json(const sy_lottery_table *t, int64_t day);
/* Units of p's stock released by business day `day` (all of it without
 * pacing): each of the days pace_from..pace_until releases its share. */
int64_t sy_lottery_released(const sy_lottery_table *t, const sy_lottery_prize *p, int64_t day);

/* Writes t as the campaign's next version (t->version, pace_from and
 * pace_until are set).  Its author becomes the campaign's updated_by (so
 * another key must approve); a paused campaign goes back to
 * pending_approval (res->other: the campaign's status afterwards).
 * Refusals: SY_CAMPAIGN_NOT_FOUND,
 * SY_CAMPAIGN_WRONG_TYPE, SY_LOTTERY_NOT_EDITABLE (res->other: the
 * effective status), SY_CAMPAIGN_UNKNOWN_TYPE / UNKNOWN_ITEM (res->other:
 * the field). */
int sy_lottery_define(sy_conn *c, const char *tenant, const char *campaign, sy_lottery_table *t,
                      const char *actor, int64_t now_ms, sy_campaign_result *res);
/* Reads version `version` (0: the newest).  SY_OK, SY_LOTTERY_NO_TABLE or
 * a store error. */
int sy_lottery_load(sy_conn *c, const char *tenant, const char *campaign, int version,
                    sy_lottery_table *t);

typedef struct sy_lottery_outcome {
    char draw_id[SY_LOTTERY_ID_LEN + 1];
    int version;
    int64_t day, n;
    uint32_t random, total;
    char picked[65]; /* the prize whose range the random value fell in; "": thanks */
    bool won;
    char prize[65], prize_name[SY_CAMPAIGN_NAME_MAX * 4 + 1];
    char reason[96]; /* guarantee, paced, out-of-stock, or the catalogue's refusal */
    bool free;
    int64_t cost_points;
    char cost_type[33], spend_entry[SY_LEDGER_ID_MAX + 1];
    sy_campaign_reward reward;
    char ledger_entry[SY_LEDGER_ID_MAX + 1], grant_code[SY_BENEFIT_GRANT_CODE_MAX + 1];
    int64_t budget_cost;
    int losing_streak;
    int64_t draws_today;    /* including this one */
    int64_t chances_left;   /* draws left today; SY_CAMPAIGN_UNSET: no cap */
    sy_campaign_result why; /* refusals */
} sy_lottery_outcome;

/* One draw for w->customer_no at w->now_ms.  Checks in order: the campaign
 * and its type, admission (schedule, open hours, customer, audience,
 * suitability, holdout), a prize table, the table's draws_per_day, the
 * campaign's limits, a free chance or a cost; then draws (the guarantee,
 * the paced stock), checks the budget for the prize, spends the cost
 * (SY_CAMPAIGN_INSUFFICIENT: out->why.balance), issues the prize (a
 * catalogue refusal turns the draw into thanks, with the reason), takes
 * the stock, moves the budget and records the draw.  device and ip (may
 * be NULL) are recorded with it. */
int sy_lottery_draw(sy_conn *c, const sy_campaign_who *w, const char *campaign, const char *device,
                    const char *ip, sy_lottery_outcome *out);
/* Counts a committed draw in the metrics (won, thanks, guaranteed); the
 * caller calls it once the draw's transaction has committed. */
void sy_lottery_count(const sy_lottery_outcome *out);

/* The draw remembers, per campaign, its parsed definition, the tenant's
 * zone and the newest prize table, and reads them again only when the
 * campaign's row, the zone or the newest version row differ from what they
 * were parsed from (lottery.c, "the draw's definitions, remembered").
 * clear forgets everything (tests; memory); stats: draws that found their
 * definitions unchanged (hits) and that parsed them (misses). */
void sy_lottery_cache_clear(void);
void sy_lottery_cache_stats(uint64_t *hits, uint64_t *misses);

/* A draw as the API shows it, with "explain": the version's ranges and
 * where the random value fell.  SY_OK, SY_LOTTERY_NO_DRAW or a store
 * error. */
/* A recorded draw as the outcome sy_lottery_draw gave (chances_left
 * unknown: SY_CAMPAIGN_UNSET), for a late replay of its answer.  SY_OK,
 * SY_LOTTERY_NO_DRAW or a store error. */
int sy_lottery_draw_outcome(sy_conn *c, const char *tenant, const char *campaign, const char *id,
                            sy_lottery_outcome *out);
int sy_lottery_draw_get(sy_conn *c, const char *tenant, const char *campaign, const char *id,
                        json_t **out);

/* Replaces the random source (tests): rng(upper, ud) returns a value in
 * [0, upper).  NULL restores libsodium's randombytes_uniform. */
void sy_lottery_set_rng(uint32_t (*rng)(uint32_t upper, void *ud), void *ud);

/* `siyu check`: per campaign, spent budget = what check-ins, tasks and
 * draws issued; per version and prize, used = draws that won it <= stock;
 * every draw's cost has its spend entry (kind, customer, amount), every
 * prize its ledger entry or grant; no entry of a campaign (into
 * sink:campaign:ID or from source:campaign:ID) was reversed.  See
 * sy_ledger_check for the reporting. */
int sy_lottery_check(sy_conn *c, const char *tenant, void (*report)(void *ud, const char *line),
                     void *ud, int64_t *violations, int64_t *checked);

/* Counters for /metrics: draws by outcome. */
void sy_lottery_metrics_render(sy_buf *out);

#endif

/* campaign.h — the campaign engine (活动): campaigns of five types, their
 * lifecycle with maker-checker approval, and taking part in them — daily
 * check-in with streaks and make-up days, and tasks rewarded for events.
 *
 * These are the rules, as plain functions over a connection inside the
 * caller's write transaction, like ledger.h and benefits.h: a refusal (a
 * positive SY_CAMPAIGN_* code) is decided before anything is written —
 * except SY_CAMPAIGN_HOLDOUT, which records the customer in
 * campaign_holdouts and expects the caller to commit that — and a store
 * error (negative) may leave partial changes that the caller rolls back.
 *
 * Budget and per-customer limits are decided here, in the writer's
 * transaction: the writer runs one mutation at a time, so a check and the
 * change it allows cannot be separated, and the budget UPDATE carries the
 * condition again (with CHECKs in the schema), so a broken rule shows as a
 * store error, never as an overspent budget.
 *
 * Audience membership is not decided here: segments live in the in-memory
 * index, which the HTTP layer consults before it submits the write, and
 * passes in as `in_audience`.  Suitability (risk level, assessment age)
 * and the holdout are decided here from the customer's stored attributes
 * and a hash.
 *
 * Times are milliseconds since the epoch, UTC, passed in (now_ms), so tests
 * control the clock; business days and weeks are the tenant's (its time
 * zone is read from the tenants row).  docs/campaigns.md has the model. */
#ifndef SY_CAMPAIGN_H
#define SY_CAMPAIGN_H

#include "benefits.h"
#include "ledger.h"
#include "store.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define SY_CAMPAIGN_ID_MAX 48 /* "campaign:<id>" must fit a ledger account name */
#define SY_CAMPAIGN_NAME_MAX 100
#define SY_CAMPAIGN_NOTE_MAX 500
#define SY_CAMPAIGN_UNSET (-1)
#define SY_CAMPAIGN_STREAK_DAYS_MAX 31 /* rows of a streak reward table */
#define SY_CAMPAIGN_TASKS_MAX 20
#define SY_CAMPAIGN_MAKEUP_DAYS_MAX 31
#define SY_CAMPAIGN_POINTS_MAX 1000000000LL
#define SY_CAMPAIGN_MONEY_MAX 100000000000LL /* fen */
#define SY_CAMPAIGN_LIMIT_MAX 1000000
#define SY_CAMPAIGN_RULES_MAX 16384 /* bytes of the rules as JSON */

/* Refusals.  Store errors are the negative SY_* codes of store.h. */
enum {
    SY_CAMPAIGN_EXISTS = 1,         /* create: the id is taken */
    SY_CAMPAIGN_NOT_FOUND,          /* no such campaign */
    SY_CAMPAIGN_NOT_DRAFT,          /* update: only drafts change (out->other: status) */
    SY_CAMPAIGN_BAD_TRANSITION,     /* out->other: the current (effective) status */
    SY_CAMPAIGN_MAKER_CHECKER,      /* approval by the campaign's author */
    SY_CAMPAIGN_UNKNOWN_TYPE,       /* out->other: the field naming a missing point type */
    SY_CAMPAIGN_UNKNOWN_ITEM,       /* out->other: the field naming a missing item */
    SY_CAMPAIGN_WRONG_TYPE,         /* e.g. a check-in at a task campaign (out->other: type) */
    SY_CAMPAIGN_NOT_RUNNING,        /* out->other: the status, "closed" or "outside" */
    SY_CAMPAIGN_NO_CUSTOMER,        /* no such customer */
    SY_CAMPAIGN_MERGED,             /* merged into out->other */
    SY_CAMPAIGN_NOT_IN_AUDIENCE,    /* not in the campaign's segment */
    SY_CAMPAIGN_UNSUITABLE,         /* out->other: why (risk level, assessment) */
    SY_CAMPAIGN_HOLDOUT,            /* in the holdout; recorded (the one write) */
    SY_CAMPAIGN_ALREADY_CHECKED_IN, /* that business day has its check-in */
    SY_CAMPAIGN_ALREADY_DONE,       /* a task already rewarded in its period */
    SY_CAMPAIGN_LIMIT_REACHED,      /* out->other: "day", "week", "campaign"; out->limit */
    SY_CAMPAIGN_BUDGET_EXHAUSTED,   /* out->other: "points" or "cost" */
    SY_CAMPAIGN_BAD_MAKEUP_DAY,     /* not a missed day within reach (out->other: why) */
    SY_CAMPAIGN_NO_MAKEUP,          /* the campaign offers no make-up check-in */
    SY_CAMPAIGN_INSUFFICIENT,       /* make-up: out->balance points available */
    SY_CAMPAIGN_REWARD_REFUSED,     /* the catalogue refused the item (out->other) */
    SY_CAMPAIGN_NOT_MET,            /* a task's dwell or props condition (out->other: which) */
};

typedef enum sy_campaign_type {
    SY_CAMPAIGN_CHECKIN,
    SY_CAMPAIGN_TASK,
    SY_CAMPAIGN_LOTTERY,     /* draws: lottery.h */
    SY_CAMPAIGN_REFERRAL,    /* likewise */
    SY_CAMPAIGN_COUPON_DROP, /* likewise */
} sy_campaign_type;

typedef enum sy_campaign_status {
    SY_CST_DRAFT,
    SY_CST_PENDING,
    SY_CST_SCHEDULED,
    SY_CST_RUNNING, /* derived: scheduled and inside its window */
    SY_CST_PAUSED,
    SY_CST_ENDED,
} sy_campaign_status;

typedef enum sy_campaign_action {
    SY_CACT_SUBMIT,  /* draft -> pending_approval */
    SY_CACT_APPROVE, /* pending_approval -> scheduled (by another key) */
    SY_CACT_REJECT,  /* pending_approval -> draft */
    SY_CACT_PAUSE,   /* running or scheduled -> paused */
    SY_CACT_RESUME,  /* paused -> scheduled (running when inside its window) */
    SY_CACT_END,     /* scheduled, running or paused -> ended */
} sy_campaign_action;

typedef enum sy_campaign_period {
    SY_PERIOD_DAY,
    SY_PERIOD_WEEK,
    SY_PERIOD_CAMPAIGN,
} sy_campaign_period;

const char *sy_campaign_type_name(sy_campaign_type t);
bool sy_campaign_type_parse(const char *s, sy_campaign_type *out);
const char *sy_campaign_status_name(sy_campaign_status s);
bool sy_campaign_status_parse(const char *s, sy_campaign_status *out);
const char *sy_campaign_action_name(sy_campaign_action a);
bool sy_campaign_action_parse(const char *s, sy_campaign_action *out);
const char *sy_campaign_period_name(sy_campaign_period p);
/* A campaign id: 1 to 48 characters of a-z 0-9 _ -, starting with a letter
 * or digit. */
bool sy_campaign_id_valid(const char *s);

/* A reward: points of a type, or one unit of a catalogue item. */
typedef struct sy_campaign_reward {
    int64_t points; /* 0: no points */
    char point_type[33];
    char item[65]; /* "": no item */
} sy_campaign_reward;

/* A task's conditions on its event's props: at most this many
 * properties, each equal to a value or within bounds, or one of at most
 * SY_TASK_PROP_VALUES_MAX values (docs/campaigns.md, "Tasks"). */
#define SY_TASK_PROPS_MAX 8
#define SY_TASK_PROP_VALUES_MAX 32

typedef struct sy_campaign_task {
    char code[65];
    char event[65];
    int64_t min_dwell_ms; /* SY_CAMPAIGN_UNSET: any */
    /* the conditions on the event's props, as validated JSON; borrowed
     * from the campaign's extra, which owns it.  NULL: none */
    const json_t *props;
    sy_campaign_period period;
    sy_campaign_reward reward;
} sy_campaign_task;

/* A campaign: the row, and its rules parsed. */
typedef struct sy_campaign {
    char id[SY_CAMPAIGN_ID_MAX + 1];
    char name[SY_CAMPAIGN_NAME_MAX * 4 + 1];
    sy_campaign_type type;
    sy_campaign_status status; /* as stored (never RUNNING) */
    int64_t starts_at, ends_at;
    int open_from, open_until; /* minutes after local midnight; UNSET: all day */
    char segment_id[65];       /* "": everyone */
    int product_risk;          /* 1..5 (R1..R5); 0: no suitability rule */
    int risk_validity_days;
    int holdout_percent;                /* 0..50 */
    int64_t budget_points, budget_cost; /* UNSET: unlimited */
    int64_t spent_points, spent_cost;
    int64_t limit_day, limit_week, limit_total; /* UNSET: none */
    char point_type[33];                        /* the rewards' default type */
    /* check-in: reward by streak day 1..streak_days; cycle: after the last
     * day start again at day 1 (else the last day's reward repeats) */
    sy_campaign_reward streak[SY_CAMPAIGN_STREAK_DAYS_MAX];
    int streak_days;
    bool cycle;
    int64_t makeup_cost; /* points; UNSET: no make-up check-in */
    char makeup_type[33];
    int makeup_days; /* how many days back a make-up may reach */
    /* tasks */
    sy_campaign_task tasks[SY_CAMPAIGN_TASKS_MAX];
    int ntasks;
    /* other types: their section, kept as given */
    json_t *extra;
    char created_by[40], updated_by[40], submitted_by[40], approved_by[40];
    int64_t created_at, updated_at, submitted_at, approved_at; /* UNSET: not yet */
    int priority; /* offers rank higher priorities first (0 by default) */
} sy_campaign;

/* Parses and checks a campaign's type section from `in` (the request body
 * or the stored rules object: "checkin" for check-in, "tasks" for tasks,
 * the type's name for the others) into cp (whose type and point_type are
 * set).  On failure returns false with field (a JSON pointer) and msg set.
 * The checks that need the store (point types and items exist) are
 * sy_campaign_create's. */
bool sy_campaign_rules_parse(sy_campaign *cp, json_t *in, char *field, size_t fieldlen, char *msg,
                             size_t msglen);
/* The rules as the stored JSON object (new reference). */
json_t *sy_campaign_rules_json(const sy_campaign *cp);

/* The status a campaign is in at now: RUNNING for a scheduled one inside
 * its window, ENDED for a scheduled or paused one past its end. */
sy_campaign_status sy_campaign_effective(const sy_campaign *cp, int64_t now_ms);

/* The holdout: customer_no's bucket 0..9999 for this campaign, from a
 * BLAKE2b hash of tenant, campaign id and customer number, so it never
 * changes; the customer is held out when bucket < percent * 100. */
unsigned sy_campaign_bucket(const char *tenant, const char *campaign, const char *customer_no);
bool sy_campaign_in_holdout(const char *tenant, const char *campaign, const char *customer_no,
                            int percent);

/* The Monday-based week of a business day (days since 1970-01-01, a
 * Thursday). */
int64_t sy_campaign_week(int64_t day);
/* The business day of a moment in the tenant's zone. */
int64_t sy_campaign_day(const char *zone, int64_t at_ms);

/* The campaigns columns a campaign is read from, in the order
 * sy_campaign_from_row expects; p prefixes each name (a table alias with
 * its dot, or ""). */
#define SY_CAMPAIGN_COLUMNS(p)                                                                     \
    p "id, " p "name, " p "type, " p "status, " p "starts_at, " p "ends_at, " p "open_from, " p    \
      "open_until, " p "segment_id, " p "product_risk, " p "risk_validity_days, " p                \
      "holdout_percent, " p "budget_points, " p "budget_cost, " p "spent_points, " p               \
      "spent_cost, " p "limit_day, " p "limit_week, " p "limit_total, " p "point_type, " p         \
      "rules, " p "created_by, " p "updated_by, " p "submitted_by, " p "approved_by, " p           \
      "created_at, " p "updated_at, " p "submitted_at, " p "approved_at, " p "priority"
#define SY_CAMPAIGN_NCOLUMNS 30
/* The two columns that move with every participation (the rest is the
 * definition and the lifecycle). */
#define SY_CAMPAIGN_COL_SPENT_POINTS 14
#define SY_CAMPAIGN_COL_SPENT_COST 15
/* Parses a campaign from the current row of st, whose columns col ..
 * col + SY_CAMPAIGN_NCOLUMNS - 1 are SY_CAMPAIGN_COLUMNS (tenant and id:
 * for the error log).  SY_OK or SY_ERR (stored rules that do not parse).
 * Free with sy_campaign_free. */
int sy_campaign_from_row(sy_stmt *st, int col, const char *tenant, const char *id,
                         sy_campaign **out);
/* Reads a campaign (SY_OK, SY_CAMPAIGN_NOT_FOUND or a store error).
 * Free with sy_campaign_free. */
int sy_campaign_load(sy_conn *c, const char *tenant, const char *id, sy_campaign **out);
void sy_campaign_free(sy_campaign *cp);
/* The campaign as the API shows it, with its effective status at now. */
json_t *sy_campaign_json(const sy_campaign *cp, int64_t now_ms);

typedef struct sy_campaign_result {
    char other[96];
    int64_t limit;   /* LIMIT_REACHED */
    int64_t balance; /* INSUFFICIENT */
} sy_campaign_result;

/* Creates a draft from cp (checked by the caller, rules parsed) by actor.
 * Refusals: EXISTS, UNKNOWN_TYPE and UNKNOWN_ITEM (res->other: the field). */
int sy_campaign_create(sy_conn *c, const char *tenant, const sy_campaign *cp, const char *actor,
                       int64_t now_ms, sy_campaign_result *res);
/* Replaces a draft's definition.  Refusals: NOT_FOUND, NOT_DRAFT, and
 * those of create. */
int sy_campaign_update(sy_conn *c, const char *tenant, const sy_campaign *cp, const char *actor,
                       int64_t now_ms, sy_campaign_result *res);
/* Moves a campaign through its lifecycle and records the step.  Refusals:
 * NOT_FOUND, BAD_TRANSITION (res->other: the effective status),
 * MAKER_CHECKER (approve by the key that created, last changed or
 * submitted it). */
int sy_campaign_transition(sy_conn *c, const char *tenant, const char *id, sy_campaign_action a,
                           const char *actor, const char *note, int64_t now_ms,
                           sy_campaign_result *res);

/* Who takes part, and when. */
typedef struct sy_campaign_who {
    const char *tenant, *customer_no;
    bool in_audience; /* decided by the caller (true when there is no segment) */
    const char *operator_id;
    const char *key; /* the request's Idempotency-Key or NULL (kept with a draw, for good) */
    int64_t now_ms;
    /* Whether customer_no is in a benefit item's eligibility segment (its
     * saved segment's id or its expression; the other is NULL): > 0 yes,
     * 0 no, < 0 an error.  The API layer sets it (the index is there);
     * without it an item with a segment is never given as a reward. */
    int (*eligible)(void *ud, const char *segment_id, const char *expression,
                    const char *customer_no);
    void *eligible_ud;
} sy_campaign_who;

typedef struct sy_campaign_outcome {
    char action_id[24];
    int64_t day; /* the business day checked in (or the event's) */
    int streak;
    bool makeup;
    sy_campaign_reward reward; /* what was issued (points 0 and item "": nothing) */
    char ledger_entry[SY_LEDGER_ID_MAX + 1], grant_code[SY_BENEFIT_GRANT_CODE_MAX + 1];
    int64_t cost, paid_points;
    const sy_campaign_task *task; /* task: the task rewarded */
    sy_campaign_result why;       /* refusals */
} sy_campaign_outcome;

/* Checks the customer in to a check-in campaign for the business day of
 * w->now_ms, or — makeup_day not UNSET — for that missed earlier day, at
 * the campaign's make-up cost.  Checks in order: the campaign and its type,
 * running now and inside its open hours, the customer, the audience,
 * suitability, the holdout, the day (taken already; a make-up day must be
 * missed, in the past, within reach and not before the start), the limits
 * (check-ins, not make-ups), the budget (the streak day's reward), the
 * make-up's points; then spends or issues, records the check-in and moves
 * the budget.  A make-up renumbers the streaks of the days after it. */
int sy_campaign_checkin(sy_conn *c, const sy_campaign_who *w, const char *campaign,
                        int64_t makeup_day, sy_campaign_outcome *out);

/* The customer's current streak at day `today`: the streak of today's
 * check-in, else of yesterday's, else 0.  *today_done says whether today
 * has its check-in. */
int sy_campaign_streak(sy_conn *c, const char *tenant, const char *campaign,
                       const char *customer_no, int64_t today, int *streak, bool *today_done);

/* An event for a task campaign cp (loaded in this transaction): rewards
 * task cp->tasks[t] when the event matches it (its name; else WRONG_TYPE
 * with out->why.other "no-match"), meets its conditions (dwell_ms, -1 when
 * the event has none; props, the event's props as compact JSON or NULL;
 * else NOT_MET with out->why.other saying which failed), the campaign
 * runs at w->now_ms and the event's time ts_ms is inside its window and
 * open hours, the customer is admitted (audience, suitability, holdout),
 * the task was not rewarded in the period of ts_ms, and limits and budget
 * allow.  Returns SY_OK when rewarded, a refusal when not. */
int sy_campaign_task_event(sy_conn *c, const sy_campaign *cp, int t, const sy_campaign_who *w,
                           const char *event_name, const char *event_id, int64_t ts_ms,
                           int64_t dwell_ms, const char *props, sy_campaign_outcome *out);
/* Whether props (an event's props object, or NULL) meet a task's
 * conditions (tasks[t].props; NULL: none); when not, why (n bytes) names
 * the first that fails. */
bool sy_campaign_props_meet(const json_t *conditions, const json_t *props, char *why, size_t n);

/* The ids of the tenant's task campaigns that run at now_ms (stored
 * 'scheduled', inside their window), at most max; *n counts them. */
int sy_campaign_running_tasks(sy_conn *c, const char *tenant, int64_t now_ms,
                              char (*ids)[SY_CAMPAIGN_ID_MAX + 1], int max, int *n);

/* ---- the shared rules, for the engines of other campaign types ----
 * (lottery.c): the same checks check-in and tasks pass, in the caller's
 * write transaction. */

/* The tenant's time zone (UTC when unset). */
int sy_campaign_zone(sy_conn *c, const char *tenant, char zone[65]);
/* Running at now and `when` inside the schedule and open hours; the
 * customer exists and is not merged; audience (w->in_audience),
 * suitability, holdout (recorded: the one refusal that writes). */
int sy_campaign_admit(sy_conn *c, const sy_campaign *cp, const sy_campaign_who *w, const char *zone,
                      int64_t when, sy_campaign_result *why);
/* Counts a customer's participations on business days from_day..to_day. */
typedef int (*sy_campaign_counter)(sy_conn *c, const sy_campaign *cp, const char *tenant,
                                   const char *customer_no, int64_t from_day, int64_t to_day,
                                   int64_t *n);
/* The campaign's per-day/week/campaign limits for one more participation
 * on day, counted by count (NULL: the campaign_actions rows).
 * LIMIT_REACHED (why->other: day, week or campaign; why->limit). */
int sy_campaign_check_limits(sy_conn *c, const sy_campaign *cp, const char *tenant,
                             const char *customer_no, int64_t day, sy_campaign_counter count,
                             sy_campaign_result *why);
/* Whether `when` lies inside the campaign's schedule and open hours. */
bool sy_campaign_open_at(const sy_campaign *cp, const char *zone, int64_t when);
/* BUDGET_EXHAUSTED (why->other: points or cost) unless the budget holds
 * points and cost more; spend_budget moves it (the UPDATE repeats the
 * condition). */
int sy_campaign_check_budget(sy_conn *c, const char *tenant, const char *id, int64_t points,
                             int64_t cost, sy_campaign_result *why);
int sy_campaign_spend_budget(sy_conn *c, const char *tenant, const char *id, int64_t points,
                             int64_t cost);
/* The same decision from cp's budget and spent columns, which the caller
 * read in this transaction after the last change to them (the draw reads
 * its campaign row first, and nothing before the check moves the budget). */
int sy_campaign_budget_allows(const sy_campaign *cp, int64_t points, int64_t cost,
                              sy_campaign_result *why);
/* The ledger account name of campaign ID's entries: points come from
 * source:campaign:ID, costs go to sink:campaign:ID. */
#define SY_CAMPAIGN_ACCOUNT_PREFIX "campaign:"
/* Whether a ledger entry (its accounts and reference) is one the campaign
 * engine wrote for a record of its campaign — a check-in's or task's
 * reward, a make-up's cost, a draw's cost or prize, a referral reward —
 * rather than a points move the API was asked for under a campaign's
 * name: campaign gets the campaign's ID (72 bytes), or "" when not. */
int sy_campaign_entry_owner(sy_conn *c, const char *tenant, const char *debit, const char *credit,
                            const char *reference, char campaign[72]);
/* What a reward costs the budget: its points, an item's cost price (fen). */
int sy_campaign_reward_cost(sy_conn *c, const char *tenant, const sy_campaign_reward *r,
                            int64_t *points, int64_t *cost);
/* Issues a reward: points earned from source:campaign:<id> (reference ref)
 * or one unit of an item (idempotency key campaign:<id>:<ref>); sets
 * out->ledger_entry or out->grant_code.  REWARD_REFUSED (out->why.other:
 * out-of-stock, not-available, item-limit-reached ...) writes nothing. */
int sy_campaign_issue(sy_conn *c, const sy_campaign *cp, const sy_campaign_who *w,
                      const sy_campaign_reward *r, const char *ref, const char *reason,
                      sy_campaign_outcome *out);
/* The reward's point type or item exists (UNKNOWN_TYPE / UNKNOWN_ITEM with
 * res->other: ptr + "/point_type" or "/item"). */
int sy_campaign_reward_check(sy_conn *c, const char *tenant, const sy_campaign_reward *r,
                             const char *ptr, sy_campaign_result *res);
/* Parses a reward object at JSON pointer ptr. */
bool sy_campaign_reward_parse(json_t *o, const char *ptr, const char *default_type,
                              sy_campaign_reward *out, char *field, size_t fieldlen, char *msg,
                              size_t msglen);
json_t *sy_campaign_reward_json(const sy_campaign_reward *r);

/* Errors found while parsing a JSON definition (a campaign, a prize table,
 * a referral section): the member (a JSON pointer) and a message, written
 * into the caller's buffers.  Each returns false on an error, so checks
 * chain with &&. */
typedef struct sy_perr {
    char *field, *msg;
    size_t fieldlen, msglen;
} sy_perr;
bool sy_perr_fail(sy_perr *e, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* o may hold only the listed members (fields: NULL-terminated). */
bool sy_perr_only(sy_perr *e, json_t *o, const char *ptr, const char *const *fields);
/* An integer member in [min, max]; absent or null leaves *out (and fails
 * when required). */
bool sy_perr_int(sy_perr *e, json_t *o, const char *ptr, const char *name, bool required,
                 int64_t min, int64_t max, int64_t *out);

#endif

/* ledger.h — the points ledger (积分): point types, and earning, spending,
 * reversing and expiring points as double entries over lots.
 *
 * These are the rules, as plain functions over a connection inside the
 * caller's write transaction (the HTTP handlers call them from a writer
 * mutation; the points mall and campaigns will call them inside theirs).
 * A refusal (a positive SY_LEDGER_* code) is decided before anything is
 * written, so the caller may carry on with its transaction; a store error
 * (negative) may leave partial changes and the caller must roll back.
 *
 * The model (migration 0006, docs/rewards.md):
 *  - an entry moves `amount` points from its debit account to its credit
 *    account: earn  source:<name> -> customer:<no>
 *               spend customer:<no> -> sink:<name>
 *               expire customer:<no> -> expired
 *               reverse: the accounts of the entry it undoes, swapped;
 *  - an earn makes one lot; a spend draws from the customer's open lots of
 *    the type, soonest expiry first (never-expiring last, then oldest lot
 *    first); every entry records the lots it drew from or put into;
 *  - a balance never goes negative, and for each customer and type
 *    balance = sum of the lots' remaining = journal credits - debits.
 *
 * Times are milliseconds since the epoch, UTC, passed in (now_ms) so that
 * tests control the clock. */
#ifndef SY_LEDGER_H
#define SY_LEDGER_H

#include "store.h"

#include <stdbool.h>
#include <stdint.h>

#define SY_LEDGER_MAX_AMOUNT 1000000000LL /* most points one entry moves */
#define SY_LEDGER_ID_MAX 32               /* "le_" + 28 hex (sy_ordered_id); older ids "le_" + 16 */
#define SY_POINT_TYPE_CODE_MAX 32
#define SY_POINT_TYPE_NAME_MAX 50     /* characters */
#define SY_LEDGER_ACCOUNT_NAME_MAX 64 /* a source or sink name */
#define SY_LEDGER_REASON_MAX 200      /* characters */
#define SY_LEDGER_REFERENCE_MAX 128   /* characters */
#define SY_POINT_EXPIRY_DAYS_MAX 3660
#define SY_POINT_EXPIRY_YEARS_MAX 10
#define SY_LEDGER_EXPIRY_OPERATOR "system:expiry"

/* Refusals: the rules said no and nothing was written.  Store errors are
 * the negative SY_* codes of store.h. */
enum {
    SY_LEDGER_UNKNOWN_TYPE = 1, /* no such point type */
    SY_LEDGER_TYPE_EXISTS,      /* a point type with this code exists */
    SY_LEDGER_NO_CUSTOMER,      /* no such customer */
    SY_LEDGER_MERGED,           /* the customer was merged into another (res->other) */
    SY_LEDGER_BAD_AMOUNT,       /* not in 1..SY_LEDGER_MAX_AMOUNT */
    SY_LEDGER_INSUFFICIENT,     /* spend beyond the balance (res->balance: available) */
    SY_LEDGER_DUPLICATE_KEY,    /* idempotency key in the journal already (res->other) */
    SY_LEDGER_NO_ENTRY,         /* reverse: no such entry */
    SY_LEDGER_NOT_REVERSIBLE,   /* reverse: a reversal or an expiry */
    SY_LEDGER_ALREADY_REVERSED, /* reverse: reversed before (res->other: by which entry) */
    SY_LEDGER_POINTS_USED,      /* reverse of an earn whose lot was partly spent or
                                   expired (res->balance: what the lot still holds) */
};

typedef enum sy_point_expiry {
    SY_EXPIRY_NEVER,
    SY_EXPIRY_DAYS,     /* valid through the n-th day after the day of earning */
    SY_EXPIRY_YEAR_END, /* until the end of the year of earning + n */
} sy_point_expiry;

typedef struct sy_point_type {
    char code[SY_POINT_TYPE_CODE_MAX + 1];
    char name[SY_POINT_TYPE_NAME_MAX * 4 + 1];
    sy_point_expiry expiry;
    int n; /* days (SY_EXPIRY_DAYS) or years (SY_EXPIRY_YEAR_END); 0 for never */
    int64_t created_at;
} sy_point_type;

/* A point type code: [a-z][a-z0-9_]* of at most 32 characters. */
bool sy_point_type_code_valid(const char *code);
/* A source or sink name: 1 to 64 characters of A-Z a-z 0-9 _ . : - */
bool sy_ledger_account_name_valid(const char *name);
/* "never", "days", "year_end"; parse returns false for anything else. */
const char *sy_point_expiry_name(sy_point_expiry e);
bool sy_point_expiry_parse(const char *s, sy_point_expiry *out);

/* Creates a point type.  Returns SY_OK, SY_LEDGER_TYPE_EXISTS or a store
 * error.  The caller has checked the fields. */
int sy_ledger_type_create(sy_conn *c, const char *tenant, const sy_point_type *t);
/* Reads a point type: SY_OK, SY_DONE when there is none, or a store error. */
int sy_ledger_type_get(sy_conn *c, const char *tenant, const char *code, sy_point_type *out);

/* The UTC offset of the IANA time zone `zone` at a moment, in ms; cached
 * per thread by zone and minute (sy_tz_offset_ms is too slow for every
 * write).  Business days and months of the rewards are local to it. */
int64_t sy_ledger_tz_offset(const char *zone, int64_t at_ms);
/* The UTC milliseconds at which business day `day` (days since 1970-01-01
 * in the zone) begins. */
int64_t sy_local_midnight(const char *zone, int64_t day);

/* When a lot of type t earned at earned_ms expires, for a tenant in the
 * IANA time zone `zone`: false for a type that never expires.  Day and
 * year boundaries are the tenant's local midnights. */
bool sy_ledger_expires_at(const sy_point_type *t, const char *zone, int64_t earned_ms,
                          int64_t *at_ms);

/* An earn or a spend. */
typedef struct sy_ledger_move {
    const char *tenant, *customer_no, *point_type;
    int64_t amount;
    /* earn: the source the points come from ("mall", "campaign:spring");
     * spend: the sink they go to (NULL: "spend").  The account is
     * "source:<name>" or "sink:<name>". */
    const char *account;
    const char *reason, *reference; /* NULL: "" */
    const char *operator_id;        /* who: an API key id, "cli:<user>", "system:..." */
    const char *idempotency_key;    /* NULL: none */
    int64_t now_ms;
    /* The caller has checked, in this transaction, that the customer exists
     * and is not merged (a mall exchange does, before it spends). */
    bool customer_checked;
    /* The caller has read the point type, in this transaction (a mall
     * exchange reads it with the listing). */
    bool type_checked;
} sy_ledger_move;

typedef struct sy_ledger_result {
    char entry_id[SY_LEDGER_ID_MAX + 1]; /* the entry written */
    int64_t balance;                     /* the account's balance after it (see the codes) */
    char other[72];                      /* see the codes */
} sy_ledger_result;

/* Earns m->amount points into a new lot.  Returns SY_OK, a refusal
 * (UNKNOWN_TYPE, NO_CUSTOMER, MERGED, BAD_AMOUNT, DUPLICATE_KEY) or a store
 * error. */
int sy_ledger_earn(sy_conn *c, const sy_ledger_move *m, sy_ledger_result *res);

/* Spends m->amount points, drawing from the soonest-expiring open lots.
 * Lots past their expiry that the expiry job has not reached yet do not
 * count: if the spend goes ahead they are expired first (an expire entry
 * by SY_LEDGER_EXPIRY_OPERATOR).  Returns SY_OK, a refusal (UNKNOWN_TYPE,
 * NO_CUSTOMER, MERGED, BAD_AMOUNT, INSUFFICIENT, DUPLICATE_KEY) or a store
 * error. */
int sy_ledger_spend(sy_conn *c, const sy_ledger_move *m, sy_ledger_result *res);

/* Reverses entry entry_id with a 'reverse' entry moving the same amount the
 * other way.  An earn: only while its lot still holds the whole amount
 * (else POINTS_USED), which empties the lot.  A spend: puts back exactly
 * what it drew into exactly those lots, even lots that have expired since
 * (the next expiry run expires those again).  Reversals and expiries are
 * NOT_REVERSIBLE; an entry is reversed at most once (ALREADY_REVERSED).
 * res->balance is the customer's balance afterwards. */
typedef struct sy_ledger_reversal {
    const char *tenant, *entry_id;
    const char *reason, *operator_id, *idempotency_key;
    int64_t now_ms;
} sy_ledger_reversal;
int sy_ledger_reverse(sy_conn *c, const sy_ledger_reversal *rv, sy_ledger_result *res);

/* The expiry job: every lot of the tenant whose expiry is at or before
 * now_ms and that still holds points is emptied, with one expire entry per
 * customer and point type (its allocations name the lots).  Handles at most
 * max_lots lots, soonest expiry first; *more says whether more are due.
 * on_entry, if given, is called for each entry written. */
typedef struct sy_ledger_expiry {
    int64_t entries, lots, points;
    bool more;
} sy_ledger_expiry;
int sy_ledger_expire(sy_conn *c, const char *tenant, int64_t now_ms, int max_lots,
                     void (*on_entry)(void *ud, const char *entry_id, const char *customer_no,
                                      const char *point_type, int64_t amount),
                     void *ud, sy_ledger_expiry *out);

/* Verifies the ledger's invariants for a tenant on c (call it inside one
 * read transaction, so every query sees the same state): each account's
 * balance = the sum of its lots' remaining = its journal credits - debits;
 * no negative balance or remaining, no remaining above a lot's amount;
 * each lot's remaining = what its allocations put in minus what they drew;
 * each entry's allocations sum to its amount and touch only the customer's
 * lots of the entry's type; each entry's accounts fit its kind; a reversed
 * entry has exactly one reversal, which mirrors it.  report() is called
 * once per violation with a line of text.  Returns SY_OK (whatever was
 * found; *violations counts it) or a store error.  *checked counts the
 * accounts, lots and entries looked at. */
int sy_ledger_check(sy_conn *c, const char *tenant, void (*report)(void *ud, const char *line),
                    void *ud, int64_t *violations, int64_t *checked);

#endif

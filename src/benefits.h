/* benefits.h — the benefits catalogue (权益库), grants and the points mall
 * (积分商城): suppliers, items and their stock, voucher code pools,
 * packages, mall listings; issuing an item to a customer, redeeming,
 * revoking, fulfilling and expiring what was issued; exchanging points for
 * an item.
 *
 * These are the rules, as plain functions over a connection inside the
 * caller's write transaction, like ledger.h: a refusal (a positive
 * SY_BENEFIT_* code) is decided before anything is written, except where a
 * function says otherwise, and the caller rolls its mutation back on any
 * refusal; a store error (negative) may leave partial changes and the
 * caller must roll back.
 *
 * Eligibility (an item's, a listing's or a package's segment) is not
 * decided here: membership comes from the in-memory index, which the HTTP
 * layer consults before it submits the write (api_benefits.c).
 *
 * The model (migration 0008, docs/rewards.md): every item has total_stock
 * and remaining; a grant takes one unit (a voucher grant also one unused
 * code of the pool); a revoke gives the unit back only when the item says
 * revoke_returns_stock (never for vouchers: the code was shown).  For every
 * item total_stock = the sum of its stock moves = remaining + the grants
 * that took a unit and did not give it back.
 *
 * Times are milliseconds since the epoch, UTC, passed in (now_ms). */
#ifndef SY_BENEFITS_H
#define SY_BENEFITS_H

#include "ledger.h"
#include "store.h"

#include <stdbool.h>
#include <stdint.h>

#define SY_BENEFIT_CODE_MAX 64       /* supplier, item, package, listing codes */
#define SY_BENEFIT_NAME_MAX 100      /* characters */
#define SY_BENEFIT_GRANT_CODE_MAX 32 /* "g_" + 28 hex (sy_ordered_id); older codes "g_" + 16 */
#define SY_BENEFIT_VOUCHER_MAX 128   /* one voucher code */
#define SY_BENEFIT_MONEY_MAX 100000000000LL /* fen: one billion yuan */
#define SY_BENEFIT_STOCK_MAX 1000000000LL
#define SY_BENEFIT_LIMIT_MAX 1000000
#define SY_BENEFIT_VALIDITY_DAYS_MAX 3660
#define SY_BENEFIT_EXPIRY_OPERATOR "system:expiry"
#define SY_BENEFIT_MALL_SINK "mall" /* exchanges spend into sink:mall */

/* Refusals: the rules said no.  Store errors are the negative SY_* codes. */
enum {
    SY_BENEFIT_EXISTS = 1,       /* a supplier/item/package/listing with this code */
    SY_BENEFIT_UNKNOWN_SUPPLIER, /* no such supplier */
    SY_BENEFIT_UNKNOWN_ITEM,     /* no such item */
    SY_BENEFIT_UNKNOWN_PACKAGE,  /* no such package */
    SY_BENEFIT_UNKNOWN_LISTING,  /* no such listing */
    SY_BENEFIT_UNKNOWN_TYPE,     /* no such point type */
    SY_BENEFIT_NOT_VOUCHER,      /* codes uploaded to an item that is no voucher */
    SY_BENEFIT_IS_VOUCHER,       /* stock added to a voucher item (upload codes) */
    SY_BENEFIT_NO_CUSTOMER,      /* no such customer */
    SY_BENEFIT_MERGED,           /* customer merged into another (res->other) */
    SY_BENEFIT_NOT_AVAILABLE,    /* outside the item's window or listing inactive */
    SY_BENEFIT_OUT_OF_STOCK,     /* nothing left (res->other: the item) */
    SY_BENEFIT_LIMIT_REACHED,    /* res->other: "item:day" ... "listing:total";
                                    res->limit: the limit */
    SY_BENEFIT_NEEDS_DELIVERY,   /* goods without a delivery address */
    SY_BENEFIT_INSUFFICIENT,     /* mall: res->balance points available */
    SY_BENEFIT_KEY_USED,         /* idempotency key used by another request
                                    (res->other: the grant or ledger entry) */
    SY_BENEFIT_REPLAY,           /* the key issued this before: res->code */
    SY_BENEFIT_NO_GRANT,         /* no such grant */
    SY_BENEFIT_NOT_OWNER,        /* redeem: the grant is another customer's */
    SY_BENEFIT_NOT_REDEEMABLE,   /* res->other: the grant's status or "expired" */
    SY_BENEFIT_NOT_REVOCABLE,    /* res->other: the grant's status */
    SY_BENEFIT_BAD_FULFILMENT,   /* not goods, or not a forward step (res->other) */
    SY_BENEFIT_ALREADY_REDEEMED, /* redeemed before under another reference */
};

typedef enum sy_benefit_kind {
    SY_BENEFIT_COUPON,    /* 立减金: face_value off a payment of at least params.threshold */
    SY_BENEFIT_VOUCHER,   /* 卡券: one code of the supplier's pool */
    SY_BENEFIT_GOODS,     /* physical: a delivery address, fulfilment */
    SY_BENEFIT_FINANCIAL, /* a rate discount, a fee waiver: params */
} sy_benefit_kind;

const char *sy_benefit_kind_name(sy_benefit_kind k);
bool sy_benefit_kind_parse(const char *s, sy_benefit_kind *out);
/* A catalogue code: 1 to 64 characters of a-z 0-9 _ -, starting with a
 * letter or digit. */
bool sy_benefit_code_valid(const char *s);
/* A voucher code: 1 to 128 visible ASCII characters. */
bool sy_benefit_voucher_valid(const char *s, size_t len);

/* A limit or window value that is not set. */
#define SY_BENEFIT_UNSET (-1)

typedef struct sy_benefit_limits {
    int64_t day, month, total; /* SY_BENEFIT_UNSET: no limit */
} sy_benefit_limits;

typedef struct sy_benefit_item {
    const char *code, *name, *supplier;
    sy_benefit_kind kind;
    int64_t face_value, cost_price; /* fen */
    const char *params;             /* a JSON object's text */
    int64_t stock;                  /* initial total stock (vouchers: 0) */
    sy_benefit_limits limits;
    int64_t available_from, available_until; /* SY_BENEFIT_UNSET: open */
    int64_t validity_days;                   /* SY_BENEFIT_UNSET: no expiry */
    const char *segment_id, *segment_expression;
    bool revoke_returns_stock;
    const char *operator_id;
    int64_t now_ms;
} sy_benefit_item;

int sy_benefit_supplier_create(sy_conn *c, const char *tenant, const char *code, const char *name,
                               const char *contact, int64_t now_ms);
/* Creates an item and journals its initial stock.  Returns SY_OK, EXISTS,
 * UNKNOWN_SUPPLIER or a store error.  The caller has checked the fields. */
int sy_benefit_item_create(sy_conn *c, const char *tenant, const sy_benefit_item *it);
/* Adds n units to an item's stock (not a voucher's), journaled with the
 * reason.  *total and *remaining: the stock afterwards. */
int sy_benefit_stock_add(sy_conn *c, const char *tenant, const char *item, int64_t n,
                         const char *reason, const char *operator_id, int64_t now_ms,
                         int64_t *total, int64_t *remaining);
/* Adds voucher codes to an item's pool: each code new to the pool becomes
 * one unit of stock (one journaled move for the upload); a code already in
 * the pool is skipped and dup[i] set.  *added counts the new codes. */
int sy_benefit_codes_add(sy_conn *c, const char *tenant, const char *item, const char *const *codes,
                         size_t n, const char *operator_id, int64_t now_ms, bool *dup,
                         int64_t *added);

typedef struct sy_benefit_package_line {
    const char *item;
    int64_t quantity;
} sy_benefit_package_line;
int sy_benefit_package_create(sy_conn *c, const char *tenant, const char *code, const char *name,
                              const char *description, const char *segment_id,
                              const char *segment_expression, const sy_benefit_package_line *lines,
                              size_t n, int64_t now_ms, const char **missing_item);

typedef struct sy_benefit_listing {
    const char *code, *item, *title, *point_type;
    int64_t price;
    sy_benefit_limits limits;
    const char *segment_id, *segment_expression;
    bool active;
    int64_t now_ms;
} sy_benefit_listing;
int sy_benefit_listing_create(sy_conn *c, const char *tenant, const sy_benefit_listing *l);

/* ---- grants ---- */

/* What sy_benefit_issue_one wrote into a new grant beside what the caller
 * asked for (customer, package, listing, delivery, operator, key), so that
 * the caller can describe the grant without reading it back.  complete is
 * false when a value did not fit (then read the grant back). */
typedef struct sy_benefit_issued {
    bool complete;
    char item[SY_BENEFIT_CODE_MAX + 1];
    char item_name[4 * SY_BENEFIT_NAME_MAX + 1]; /* UTF-8 */
    sy_benefit_kind kind;
    const char *source;                          /* "api", "package" or "mall" */
    char point_type[SY_POINT_TYPE_CODE_MAX + 1]; /* mall: the listing's; else "" */
    int64_t points;                              /* mall: the price; else SY_BENEFIT_UNSET */
    char spend_entry[SY_LEDGER_ID_MAX + 1];      /* mall; else "" */
    char voucher[SY_BENEFIT_VOUCHER_MAX + 1];    /* a voucher's code; else "" */
    int64_t face_value, cost_price, issued_at;
    int64_t expires_at; /* SY_BENEFIT_UNSET: none */
} sy_benefit_issued;

typedef struct sy_benefit_result {
    char code[SY_BENEFIT_GRANT_CODE_MAX + 1]; /* the grant written (or replayed) */
    sy_benefit_issued issued;                 /* SY_OK: the grant written */
    char other[80];                           /* see the codes */
    int64_t limit;                            /* LIMIT_REACHED */
    int64_t balance;                          /* INSUFFICIENT */
    bool already;                             /* redeem: it was redeemed before */
} sy_benefit_result;

/* Issues one unit of an item to a customer (source "api", or "package"
 * with package set), or exchanges points for a mall listing (listing set:
 * item is taken from the listing).  Checks, in this order: the item or
 * listing, the customer, the key (a key that issued before: REPLAY with
 * res->code, when customer and item or listing match; else KEY_USED), the
 * availability window (and the listing's active flag), a goods item's
 * delivery address, the per-customer limits (item, then listing), the
 * stock, the points (mall); then spends the points (mall: into sink:mall,
 * the grant code as the entry's reference), takes a unit (and a voucher
 * code) and writes the grant.  Revoked grants do not count toward limits. */
typedef struct sy_benefit_issue {
    const char *tenant, *customer_no;
    const char *item;            /* or NULL with listing */
    const char *listing;         /* a mall exchange */
    const char *package;         /* issued as part of this package */
    const char *delivery;        /* goods: the address, sealed (pii.h); NULL otherwise */
    const char *delivery_masked; /* goods: its masked form as JSON text */
    const char *operator_id, *idempotency_key;
    int64_t now_ms;
} sy_benefit_issue;
int sy_benefit_issue_one(sy_conn *c, const sy_benefit_issue *q, sy_benefit_result *res);

/* Redeems an issued grant for its customer.  A grant redeemed before by the
 * same customer with the same reference (NULL and "" are the same) is SY_OK
 * with res->already (the payment system's retry).  Refusals: NO_GRANT,
 * NOT_OWNER, ALREADY_REDEEMED (redeemed under another reference: a second
 * payment must not use the coupon again), NOT_REDEEMABLE (revoked, expired
 * or past its expiry, or goods, which are redeemed by delivery). */
int sy_benefit_redeem(sy_conn *c, const char *tenant, const char *code, const char *customer_no,
                      const char *reference, int64_t now_ms, sy_benefit_result *res);

/* Revokes an issued grant: gives its unit back when the item says so, and
 * for a mall exchange reverses the spend (the points go back).  Refusals:
 * NO_GRANT, NOT_REVOCABLE (not issued, or goods already shipped), and the
 * ledger's refusal of the reversal as NOT_REVOCABLE. */
int sy_benefit_revoke(sy_conn *c, const char *tenant, const char *code, const char *reason,
                      const char *operator_id, int64_t now_ms, sy_benefit_result *res);

/* Moves a goods grant's fulfilment forward (pending -> shipped ->
 * delivered; delivered redeems it).  tracking may be NULL. */
int sy_benefit_fulfil(sy_conn *c, const char *tenant, const char *code, const char *status,
                      const char *tracking, int64_t now_ms, sy_benefit_result *res);

/* Expires up to max issued grants past their expiry, soonest first; *n
 * counts them, *more says whether more are due.  Never gives stock back. */
int sy_benefit_expire(sy_conn *c, const char *tenant, int64_t now_ms, int max, int64_t *n,
                      bool *more);

/* What happened to grants in a period — the figures of reconciliation and
 * of the benefits report, defined here only: a grant counts as *issued* in
 * the period when its issued_at falls in [from_ms, to_ms), *redeemed* when
 * its redeemed_at does, and so on for expired_at and revoked_at; each
 * counts its item's cost price (fen) at issue.  fn is called once per such
 * moment with the grant's item, the item's supplier, the kind and the
 * moment, in no particular order.  supplier: one supplier's items only
 * (NULL: all). */
enum { SY_BF_ISSUED, SY_BF_REDEEMED, SY_BF_EXPIRED, SY_BF_REVOKED, SY_BF_KINDS };
extern const char *const sy_benefit_figure_names[SY_BF_KINDS];
typedef void (*sy_benefit_moment_fn)(void *ud, const char *item, const char *supplier, int kind,
                                     int64_t at_ms, int64_t cost);
int sy_benefit_moments(sy_conn *c, const char *tenant, const char *supplier, int64_t from_ms,
                       int64_t to_ms, sy_benefit_moment_fn fn, void *ud);

/* The catalogue's invariants for a tenant (see ledger.h's check for the
 * contract): stock = remaining + units out = the stock journal; voucher
 * pools (each code once, each voucher grant exactly one code of its item);
 * grant statuses consistent with their times and fulfilment; each mall
 * grant has exactly one spend of its price into sink:mall, reversed exactly
 * when the grant was revoked, and every such spend belongs to a grant. */
int sy_benefit_check(sy_conn *c, const char *tenant, void (*report)(void *ud, const char *line),
                     void *ud, int64_t *violations, int64_t *checked);

#endif

/* benefits.c — the rules of the benefits catalogue, grants and the points
 * mall (benefits.h, docs/rewards.md).
 *
 * As in ledger.c, each operation reads first — the item or listing, the
 * customer, the key, the window, the limits, the stock, the points — and
 * writes only once they all hold.  The writes re-check what the reads
 * promised (stock never below zero nor above the total, a code taken only
 * while free, a status moved only from the one it was read as: the UPDATEs
 * carry those conditions, the schema the same CHECKs), so a broken rule
 * shows as a store error that rolls the change back, never as oversold
 * stock or a code issued twice.
 *
 * The mall's exchange is the hot path: every statement is cached by the
 * connection (static SQL text), every lookup goes through a primary key or
 * an index, and nothing is read twice. */
#include "benefits.h"
#include "check.h"
#include "util.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DAY_MS 86400000LL

/* ------------------------------------------------------------------ */
/* names                                                               */

static const char *const k_kinds[] = {"coupon", "voucher", "goods", "financial"};

const char *sy_benefit_kind_name(sy_benefit_kind k)
{
    return (unsigned)k < SY_ARRAY_LEN(k_kinds) ? k_kinds[k] : "coupon";
}

bool sy_benefit_kind_parse(const char *s, sy_benefit_kind *out)
{
    for (size_t i = 0; i < SY_ARRAY_LEN(k_kinds); i++)
        if (!strcmp(s, k_kinds[i])) {
            *out = (sy_benefit_kind)i;
            return true;
        }
    return false;
}

bool sy_benefit_code_valid(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > SY_BENEFIT_CODE_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        bool alnum = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
        if (!alnum && (i == 0 || (ch != '_' && ch != '-')))
            return false;
    }
    return true;
}

bool sy_benefit_voucher_valid(const char *s, size_t len)
{
    if (len < 1 || len > SY_BENEFIT_VOUCHER_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (s[i] <= 0x20 || s[i] >= 0x7f)
            return false;
    return true;
}

/* ------------------------------------------------------------------ */
/* small helpers                                                       */

static void bind_opt(sy_stmt *st, int idx, int64_t v)
{
    if (v == SY_BENEFIT_UNSET)
        sy_stmt_bind_null(st, idx);
    else
        sy_stmt_bind_i64(st, idx, v);
}

static int64_t col_opt(sy_stmt *st, int col)
{
    return sy_stmt_is_null(st, col) ? SY_BENEFIT_UNSET : sy_stmt_i64(st, col);
}

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* The business day (days since 1970-01-01) and month (year * 12 + month -
 * 1) of a moment in the zone. */
static void local_day_month(const char *zone, int64_t ms, int64_t *day, int64_t *month)
{
    int64_t local = ms + sy_ledger_tz_offset(zone, ms);
    *day = floor_div(local, DAY_MS);
    time_t secs = (time_t)floor_div(local, 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    *month = (int64_t)(tm.tm_year + 1900) * 12 + tm.tm_mon;
}

/* Runs a prepared, bound statement that changes rows; SY_OK when it
 * changed exactly one, else a refusal code or a store error. */
static int exec_one(sy_conn *c, sy_stmt *st, int refusal)
{
    int rc = sy_stmt_exec(st);
    if (rc != SY_OK)
        return rc;
    return sy_conn_changes(c) == 1 ? SY_OK : refusal;
}

/* ------------------------------------------------------------------ */
/* the catalogue                                                       */

int sy_benefit_supplier_create(sy_conn *c, const char *tenant, const char *code, const char *name,
                               const char *contact, int64_t now_ms)
{
    /* DO NOTHING rather than a constraint error: PostgreSQL would abort the
     * caller's whole transaction on the error. */
    static const char sql[] =
        "INSERT INTO benefit_suppliers (tenant_id, code, name, contact, created_at)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id, code) DO NOTHING";
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, code);
    sy_stmt_bind_text(st, 3, name);
    sy_stmt_bind_text(st, 4, contact ? contact : "");
    sy_stmt_bind_i64(st, 5, now_ms);
    return exec_one(c, st, SY_BENEFIT_EXISTS);
}

/* SY_OK when the row exists, `missing` when not, or a store error. */
static int exists(sy_conn *c, const char *sql, const char *tenant, const char *code, int missing)
{
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, code);
    int rc = sy_stmt_step(st);
    sy_stmt_reset(st);
    return rc == SY_ROW ? SY_OK : rc == SY_DONE ? missing : rc;
}

static const char sql_supplier_exists[] =
    "SELECT 1 FROM benefit_suppliers WHERE tenant_id = $1 AND code = $2";
static const char sql_item_exists[] =
    "SELECT 1 FROM benefit_items WHERE tenant_id = $1 AND code = $2";
static const char sql_type_exists[] =
    "SELECT 1 FROM point_types WHERE tenant_id = $1 AND code = $2";

static int stock_move(sy_conn *c, const char *tenant, const char *item, int64_t delta,
                      const char *reason, const char *operator_id, int64_t now)
{
    static const char sql[] = "INSERT INTO benefit_stock_moves (tenant_id, item, delta, reason,"
                              " operator, created_at) VALUES ($1, $2, $3, $4, $5, $6)";
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, item);
    sy_stmt_bind_i64(st, 3, delta);
    sy_stmt_bind_text(st, 4, reason);
    sy_stmt_bind_text(st, 5, operator_id);
    sy_stmt_bind_i64(st, 6, now);
    return sy_stmt_exec(st);
}

int sy_benefit_item_create(sy_conn *c, const char *tenant, const sy_benefit_item *it)
{
    static const char sql[] =
        "INSERT INTO benefit_items (tenant_id, code, name, kind, supplier, face_value,"
        " cost_price, params, total_stock, remaining, limit_day, limit_month, limit_total,"
        " available_from, available_until, validity_days, segment_id, segment_expression,"
        " revoke_returns_stock, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8,"
        " $9, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $19)"
        " ON CONFLICT (tenant_id, code) DO NOTHING";
    int rc = exists(c, sql_supplier_exists, tenant, it->supplier, SY_BENEFIT_UNKNOWN_SUPPLIER);
    if (rc != SY_OK)
        return rc;
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, it->code);
    sy_stmt_bind_text(st, 3, it->name);
    sy_stmt_bind_text(st, 4, sy_benefit_kind_name(it->kind));
    sy_stmt_bind_text(st, 5, it->supplier);
    sy_stmt_bind_i64(st, 6, it->face_value);
    sy_stmt_bind_i64(st, 7, it->cost_price);
    sy_stmt_bind_text(st, 8, it->params ? it->params : "{}");
    sy_stmt_bind_i64(st, 9, it->stock);
    bind_opt(st, 10, it->limits.day);
    bind_opt(st, 11, it->limits.month);
    bind_opt(st, 12, it->limits.total);
    bind_opt(st, 13, it->available_from);
    bind_opt(st, 14, it->available_until);
    bind_opt(st, 15, it->validity_days);
    sy_stmt_bind_text(st, 16, it->segment_id);
    sy_stmt_bind_text(st, 17, it->segment_expression);
    sy_stmt_bind_i64(st, 18, it->revoke_returns_stock ? 1 : 0);
    sy_stmt_bind_i64(st, 19, it->now_ms);
    if ((rc = exec_one(c, st, SY_BENEFIT_EXISTS)) != SY_OK || it->stock == 0)
        return rc;
    return stock_move(c, tenant, it->code, it->stock, "initial stock", it->operator_id, it->now_ms);
}

/* The item's kind: SY_OK, UNKNOWN_ITEM or a store error. */
static int item_kind(sy_conn *c, const char *tenant, const char *item, sy_benefit_kind *kind)
{
    static const char sql[] = "SELECT kind FROM benefit_items WHERE tenant_id = $1 AND code = $2";
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, item);
    int rc = sy_stmt_step(st);
    if (rc == SY_ROW)
        sy_benefit_kind_parse(sy_stmt_text(st, 0), kind);
    sy_stmt_reset(st);
    return rc == SY_ROW ? SY_OK : rc == SY_DONE ? SY_BENEFIT_UNKNOWN_ITEM : rc;
}

/* Adds delta to an item's total and remaining stock; fills the new values. */
static int stock_grow(sy_conn *c, const char *tenant, const char *item, int64_t delta, int64_t now,
                      int64_t *total, int64_t *remaining)
{
    static const char sql[] =
        "UPDATE benefit_items SET total_stock = total_stock + $3, remaining = remaining + $3,"
        " updated_at = $4 WHERE tenant_id = $1 AND code = $2 RETURNING total_stock, remaining";
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, item);
    sy_stmt_bind_i64(st, 3, delta);
    sy_stmt_bind_i64(st, 4, now);
    int rc = sy_stmt_step(st);
    if (rc == SY_ROW) {
        if (total)
            *total = sy_stmt_i64(st, 0);
        if (remaining)
            *remaining = sy_stmt_i64(st, 1);
    }
    sy_stmt_reset(st);
    return rc == SY_ROW ? SY_OK : rc == SY_DONE ? SY_ERR : rc;
}

int sy_benefit_stock_add(sy_conn *c, const char *tenant, const char *item, int64_t n,
                         const char *reason, const char *operator_id, int64_t now_ms,
                         int64_t *total, int64_t *remaining)
{
    sy_benefit_kind kind;
    int rc = item_kind(c, tenant, item, &kind);
    if (rc != SY_OK)
        return rc;
    if (kind == SY_BENEFIT_VOUCHER)
        return SY_BENEFIT_IS_VOUCHER;
    if ((rc = stock_grow(c, tenant, item, n, now_ms, total, remaining)) != SY_OK)
        return rc;
    return stock_move(c, tenant, item, n, reason, operator_id, now_ms);
}

int sy_benefit_codes_add(sy_conn *c, const char *tenant, const char *item, const char *const *codes,
                         size_t n, const char *operator_id, int64_t now_ms, bool *dup,
                         int64_t *added)
{
    static const char sql[] =
        "INSERT INTO benefit_codes (tenant_id, item, code, created_at) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (tenant_id, item, code) DO NOTHING";
    *added = 0;
    sy_benefit_kind kind;
    int rc = item_kind(c, tenant, item, &kind);
    if (rc != SY_OK)
        return rc;
    if (kind != SY_BENEFIT_VOUCHER)
        return SY_BENEFIT_NOT_VOUCHER;
    for (size_t i = 0; i < n; i++) {
        sy_stmt *st = sy_conn_prepare(c, sql);
        if (!st)
            return SY_ERR;
        sy_stmt_bind_text(st, 1, tenant);
        sy_stmt_bind_text(st, 2, item);
        sy_stmt_bind_text(st, 3, codes[i]);
        sy_stmt_bind_i64(st, 4, now_ms);
        if ((rc = sy_stmt_exec(st)) != SY_OK)
            return rc;
        dup[i] = sy_conn_changes(c) != 1;
        *added += !dup[i];
    }
    if (*added == 0)
        return SY_OK;
    if ((rc = stock_grow(c, tenant, item, *added, now_ms, NULL, NULL)) != SY_OK)
        return rc;
    return stock_move(c, tenant, item, *added, "voucher codes uploaded", operator_id, now_ms);
}

int sy_benefit_package_create(sy_conn *c, const char *tenant, const char *code, const char *name,
                              const char *description, const char *segment_id,
                              const char *segment_expression, const sy_benefit_package_line *lines,
                              size_t n, int64_t now_ms, const char **missing_item)
{
    static const char sql[] =
        "INSERT INTO benefit_packages (tenant_id, code, name, description, segment_id,"
        " segment_expression, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        " ON CONFLICT (tenant_id, code) DO NOTHING";
    static const char sql_line[] = "INSERT INTO benefit_package_items (tenant_id, package, item,"
                                   " quantity) VALUES ($1, $2, $3, $4)";
    *missing_item = NULL;
    int rc;
    for (size_t i = 0; i < n; i++)
        if ((rc = exists(c, sql_item_exists, tenant, lines[i].item, SY_BENEFIT_UNKNOWN_ITEM)) !=
            SY_OK) {
            if (rc == SY_BENEFIT_UNKNOWN_ITEM)
                *missing_item = lines[i].item;
            return rc;
        }
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, code);
    sy_stmt_bind_text(st, 3, name);
    sy_stmt_bind_text(st, 4, description ? description : "");
    sy_stmt_bind_text(st, 5, segment_id);
    sy_stmt_bind_text(st, 6, segment_expression);
    sy_stmt_bind_i64(st, 7, now_ms);
    if ((rc = exec_one(c, st, SY_BENEFIT_EXISTS)) != SY_OK)
        return rc;
    for (size_t i = 0; i < n && rc == SY_OK; i++) {
        if (!(st = sy_conn_prepare(c, sql_line)))
            return SY_ERR;
        sy_stmt_bind_text(st, 1, tenant);
        sy_stmt_bind_text(st, 2, code);
        sy_stmt_bind_text(st, 3, lines[i].item);
        sy_stmt_bind_i64(st, 4, lines[i].quantity);
        rc = sy_stmt_exec(st);
    }
    return rc;
}

int sy_benefit_listing_create(sy_conn *c, const char *tenant, const sy_benefit_listing *l)
{
    static const char sql[] =
        "INSERT INTO mall_listings (tenant_id, code, item, title, point_type, price, limit_day,"
        " limit_month, limit_total, segment_id, segment_expression, active, created_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        " ON CONFLICT (tenant_id, code) DO NOTHING";
    int rc = exists(c, sql_item_exists, tenant, l->item, SY_BENEFIT_UNKNOWN_ITEM);
    if (rc == SY_OK)
        rc = exists(c, sql_type_exists, tenant, l->point_type, SY_BENEFIT_UNKNOWN_TYPE);
    if (rc != SY_OK)
        return rc;
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, l->code);
    sy_stmt_bind_text(st, 3, l->item);
    sy_stmt_bind_text(st, 4, l->title);
    sy_stmt_bind_text(st, 5, l->point_type);
    sy_stmt_bind_i64(st, 6, l->price);
    bind_opt(st, 7, l->limits.day);
    bind_opt(st, 8, l->limits.month);
    bind_opt(st, 9, l->limits.total);
    sy_stmt_bind_text(st, 10, l->segment_id);
    sy_stmt_bind_text(st, 11, l->segment_expression);
    sy_stmt_bind_i64(st, 12, l->active ? 1 : 0);
    sy_stmt_bind_i64(st, 13, l->now_ms);
    return exec_one(c, st, SY_BENEFIT_EXISTS);
}

/* ------------------------------------------------------------------ */
/* issuing                                                             */

typedef struct item_row {
    char code[SY_BENEFIT_CODE_MAX + 1];
    char name[4 * SY_BENEFIT_NAME_MAX + 1];
    bool name_fits;
    sy_benefit_kind kind;
    int64_t face_value, cost_price, remaining;
    sy_benefit_limits limits;
    int64_t from, until, validity_days;
    char zone[65];
} item_row;

typedef struct listing_row {
    char item[SY_BENEFIT_CODE_MAX + 1], point_type[SY_POINT_TYPE_CODE_MAX + 1];
    int64_t price;
    sy_benefit_limits limits;
    bool active, type_exists;
} listing_row;

/* Columns col.. of st into it: i.kind, i.face_value, i.cost_price,
 * i.remaining, i.limit_day, i.limit_month, i.limit_total, i.available_from,
 * i.available_until, i.validity_days, t.timezone, i.name (spelled out in
 * each statement, so that scripts/pg-compat.sh prepares them). */
static void item_from_row(sy_stmt *st, int col, const char *code, item_row *it)
{
    snprintf(it->code, sizeof it->code, "%s", code);
    sy_benefit_kind_parse(sy_stmt_text(st, col), &it->kind);
    it->face_value = sy_stmt_i64(st, col + 1);
    it->cost_price = sy_stmt_i64(st, col + 2);
    it->remaining = sy_stmt_i64(st, col + 3);
    it->limits =
        (sy_benefit_limits){col_opt(st, col + 4), col_opt(st, col + 5), col_opt(st, col + 6)};
    it->from = col_opt(st, col + 7);
    it->until = col_opt(st, col + 8);
    it->validity_days = col_opt(st, col + 9);
    snprintf(it->zone, sizeof it->zone, "%s", sy_stmt_text(st, col + 10));
    it->name_fits = (size_t)sy_stmt_len(st, col + 11) < sizeof it->name;
    snprintf(it->name, sizeof it->name, "%s", sy_stmt_text(st, col + 11));
}

static int load_item(sy_conn *c, const char *tenant, const char *code, item_row *it)
{
    static const char sql[] =
        "SELECT i.kind, i.face_value, i.cost_price, i.remaining, i.limit_day, i.limit_month,"
        " i.limit_total, i.available_from, i.available_until, i.validity_days, t.timezone, i.name"
        " FROM benefit_items i JOIN tenants t ON t.id = i.tenant_id"
        " WHERE i.tenant_id = $1 AND i.code = $2";
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, code);
    int rc = sy_stmt_step(st);
    if (rc == SY_ROW)
        item_from_row(st, 0, code, it);
    sy_stmt_reset(st);
    return rc == SY_ROW ? SY_OK : rc == SY_DONE ? SY_BENEFIT_UNKNOWN_ITEM : rc;
}

/* A listing, its item (as load_item reads it) and whether its point type
 * exists, in one statement: UNKNOWN_LISTING, then UNKNOWN_ITEM, as the two
 * reads would refuse. */
static int load_listing(sy_conn *c, const char *tenant, const char *code, listing_row *l,
                        item_row *it)
{
    static const char sql[] =
        "SELECT l.item, l.point_type, l.price, l.limit_day, l.limit_month, l.limit_total, l.active,"
        " p.code, i.code, i.kind, i.face_value, i.cost_price, i.remaining, i.limit_day,"
        " i.limit_month, i.limit_total, i.available_from, i.available_until, i.validity_days,"
        " t.timezone, i.name FROM mall_listings l"
        " LEFT JOIN point_types p ON p.tenant_id = l.tenant_id AND p.code = l.point_type"
        " LEFT JOIN benefit_items i ON i.tenant_id = l.tenant_id AND i.code = l.item"
        " LEFT JOIN tenants t ON t.id = i.tenant_id"
        " WHERE l.tenant_id = $1 AND l.code = $2";
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, code);
    int rc = sy_stmt_step(st);
    if (rc == SY_ROW) {
        snprintf(l->item, sizeof l->item, "%s", sy_stmt_text(st, 0));
        snprintf(l->point_type, sizeof l->point_type, "%s", sy_stmt_text(st, 1));
        l->price = sy_stmt_i64(st, 2);
        l->limits = (sy_benefit_limits){col_opt(st, 3), col_opt(st, 4), col_opt(st, 5)};
        l->active = sy_stmt_i64(st, 6) != 0;
        l->type_exists = !sy_stmt_is_null(st, 7);
        if (sy_stmt_is_null(st, 8) || sy_stmt_is_null(st, 19))
            rc = SY_BENEFIT_UNKNOWN_ITEM; /* no item, or (as load_item's join) no tenant */
        else
            item_from_row(st, 9, l->item, it);
    }
    sy_stmt_reset(st);
    return rc == SY_ROW ? SY_OK : rc == SY_DONE ? SY_BENEFIT_UNKNOWN_LISTING : rc;
}

static int check_customer(sy_conn *c, const char *tenant, const char *no, sy_benefit_result *res)
{
    static const char sql[] =
        "SELECT merged_into FROM customers WHERE tenant_id = $1 AND customer_no = $2";
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, no);
    int rc = sy_stmt_step(st);
    if (rc == SY_ROW && !sy_stmt_is_null(st, 0)) {
        snprintf(res->other, sizeof res->other, "%s", sy_stmt_text(st, 0));
        rc = SY_BENEFIT_MERGED;
    }
    sy_stmt_reset(st);
    return rc == SY_ROW ? SY_OK : rc == SY_DONE ? SY_BENEFIT_NO_CUSTOMER : rc;
}

static bool same(const char *a, const char *b)
{
    return !strcmp(a ? a : "", b ? b : "");
}

/* A key that issued before: REPLAY (the same request: customer, item or
 * listing, package) or KEY_USED. */
static int check_key(sy_conn *c, const sy_benefit_issue *q, sy_benefit_result *res)
{
    static const char sql[] = "SELECT code, customer_no, item, listing, package FROM benefit_grants"
                              " WHERE tenant_id = $1 AND idempotency_key = $2 ORDER BY seq LIMIT 1";
    if (!q->idempotency_key)
        return SY_OK;
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, q->tenant);
    sy_stmt_bind_text(st, 2, q->idempotency_key);
    int rc = sy_stmt_step(st);
    if (rc == SY_ROW) {
        bool match = same(sy_stmt_text(st, 1), q->customer_no) &&
                     same(sy_stmt_text(st, 4), q->package) &&
                     (q->listing ? same(sy_stmt_text(st, 3), q->listing)
                                 : sy_stmt_is_null(st, 3) && same(sy_stmt_text(st, 2), q->item));
        snprintf(match ? res->code : res->other, match ? sizeof res->code : sizeof res->other, "%s",
                 sy_stmt_text(st, 0));
        rc = match ? SY_BENEFIT_REPLAY : SY_BENEFIT_KEY_USED;
    }
    sy_stmt_reset(st);
    return rc == SY_DONE ? SY_OK : rc;
}

/* Whether one more grant stays within the limits: grants of the item (and
 * of the listing when given) the customer holds, revoked ones excepted. */
static int check_limits(sy_conn *c, const char *tenant, const char *no, const char *item,
                        const char *listing, const sy_benefit_limits *lim, int64_t day,
                        int64_t month, sy_benefit_result *res)
{
    static const char sql[] =
        "SELECT COUNT(*), COALESCE(SUM(CASE WHEN month = $4 THEN 1 ELSE 0 END), 0),"
        " COALESCE(SUM(CASE WHEN day = $5 THEN 1 ELSE 0 END), 0) FROM benefit_grants"
        " WHERE tenant_id = $1 AND customer_no = $2 AND item = $3 AND status <> 'revoked'"
        " AND (CAST($6 AS TEXT) IS NULL OR listing = $6)";
    if (lim->day == SY_BENEFIT_UNSET && lim->month == SY_BENEFIT_UNSET &&
        lim->total == SY_BENEFIT_UNSET)
        return SY_OK;
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, no);
    sy_stmt_bind_text(st, 3, item);
    sy_stmt_bind_i64(st, 4, month);
    sy_stmt_bind_i64(st, 5, day);
    sy_stmt_bind_text(st, 6, listing);
    int rc = sy_stmt_step(st);
    int64_t total = 0, in_month = 0, in_day = 0;
    if (rc == SY_ROW) {
        total = sy_stmt_i64(st, 0);
        in_month = sy_stmt_i64(st, 1);
        in_day = sy_stmt_i64(st, 2);
    }
    sy_stmt_reset(st);
    if (rc != SY_ROW)
        return rc == SY_DONE ? SY_ERR : rc;
    const char *who = listing ? "listing" : "item", *which = NULL;
    if (lim->day != SY_BENEFIT_UNSET && in_day >= lim->day) {
        which = "day";
        res->limit = lim->day;
    } else if (lim->month != SY_BENEFIT_UNSET && in_month >= lim->month) {
        which = "month";
        res->limit = lim->month;
    } else if (lim->total != SY_BENEFIT_UNSET && total >= lim->total) {
        which = "total";
        res->limit = lim->total;
    }
    if (!which)
        return SY_OK;
    snprintf(res->other, sizeof res->other, "%s:%s", who, which);
    return SY_BENEFIT_LIMIT_REACHED;
}

static void new_grant_code(int64_t now_ms, char out[SY_BENEFIT_GRANT_CODE_MAX + 1])
{
    sy_ordered_id("g_", now_ms, out, SY_BENEFIT_GRANT_CODE_MAX + 1);
}

/* Takes the item's oldest free voucher code for the grant. */
static int take_code(sy_conn *c, const char *tenant, const char *item, const char *grant,
                     char out[SY_BENEFIT_VOUCHER_MAX + 1])
{
    static const char sql_pick[] =
        "SELECT id, code FROM benefit_codes WHERE tenant_id = $1 AND item = $2"
        " AND grant_code IS NULL ORDER BY id LIMIT 1";
    static const char sql_take[] = "UPDATE benefit_codes SET grant_code = $3 WHERE tenant_id = $1"
                                   " AND id = $2 AND grant_code IS NULL";
    sy_stmt *st = sy_conn_prepare(c, sql_pick);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, item);
    int rc = sy_stmt_step(st);
    int64_t id = 0;
    if (rc == SY_ROW) {
        id = sy_stmt_i64(st, 0);
        snprintf(out, SY_BENEFIT_VOUCHER_MAX + 1, "%s", sy_stmt_text(st, 1));
    }
    sy_stmt_reset(st);
    if (rc != SY_ROW) {
        /* The stock said a unit was left: the pool disagrees. */
        sy_error("benefits %s: voucher item %s has stock but no free code", tenant, item);
        return rc == SY_DONE ? SY_ERR : rc;
    }
    if (!(st = sy_conn_prepare(c, sql_take)))
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_i64(st, 2, id);
    sy_stmt_bind_text(st, 3, grant);
    return exec_one(c, st, SY_ERR);
}

/* Maps a refusal of the ledger's spend. */
static int spend_refusal(int rc, const sy_ledger_result *lr, sy_benefit_result *res)
{
    switch (rc) {
    case SY_LEDGER_INSUFFICIENT:
        res->balance = lr->balance;
        return SY_BENEFIT_INSUFFICIENT;
    case SY_LEDGER_DUPLICATE_KEY:
        snprintf(res->other, sizeof res->other, "%s", lr->other);
        return SY_BENEFIT_KEY_USED;
    case SY_LEDGER_UNKNOWN_TYPE:
        return SY_BENEFIT_UNKNOWN_TYPE;
    case SY_LEDGER_NO_CUSTOMER:
        return SY_BENEFIT_NO_CUSTOMER;
    case SY_LEDGER_MERGED:
        snprintf(res->other, sizeof res->other, "%s", lr->other);
        return SY_BENEFIT_MERGED;
    default:
        return rc > 0 ? SY_ERR : rc;
    }
}

static int insert_grant(sy_conn *c, const sy_benefit_issue *q, const item_row *it,
                        const listing_row *ls, const char *code, const char *spend_entry,
                        const char *voucher, int64_t day, int64_t month, int64_t *expires_out)
{
    static const char sql[] =
        "INSERT INTO benefit_grants (tenant_id, code, item, customer_no, status, source, package,"
        " listing, point_type, points, spend_entry, voucher_code, face_value, cost_price,"
        " delivery, fulfilment, day, month, issued_at, expires_at, operator, idempotency_key,"
        " updated_at, delivery_masked) VALUES ($1, $2, $3, $4, 'issued', $5, $6, $7, $8, $9,"
        " $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $18, $22)";
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    int64_t expires = SY_BENEFIT_UNSET;
    if (it->validity_days != SY_BENEFIT_UNSET) {
        sy_point_type t = {.expiry = SY_EXPIRY_DAYS, .n = (int)it->validity_days};
        sy_ledger_expires_at(&t, it->zone, q->now_ms, &expires);
    }
    *expires_out = expires;
    sy_stmt_bind_text(st, 1, q->tenant);
    sy_stmt_bind_text(st, 2, code);
    sy_stmt_bind_text(st, 3, it->code);
    sy_stmt_bind_text(st, 4, q->customer_no);
    sy_stmt_bind_text(st, 5, ls ? "mall" : q->package ? "package" : "api");
    sy_stmt_bind_text(st, 6, q->package);
    sy_stmt_bind_text(st, 7, ls ? q->listing : NULL);
    sy_stmt_bind_text(st, 8, ls ? ls->point_type : NULL);
    bind_opt(st, 9, ls ? ls->price : SY_BENEFIT_UNSET);
    sy_stmt_bind_text(st, 10, spend_entry);
    sy_stmt_bind_text(st, 11, voucher);
    sy_stmt_bind_i64(st, 12, it->face_value);
    sy_stmt_bind_i64(st, 13, it->cost_price);
    sy_stmt_bind_text(st, 14, it->kind == SY_BENEFIT_GOODS ? q->delivery : NULL);
    sy_stmt_bind_text(st, 15, it->kind == SY_BENEFIT_GOODS ? "pending" : NULL);
    sy_stmt_bind_i64(st, 16, day);
    sy_stmt_bind_i64(st, 17, month);
    sy_stmt_bind_i64(st, 18, q->now_ms);
    bind_opt(st, 19, expires);
    sy_stmt_bind_text(st, 20, q->operator_id);
    sy_stmt_bind_text(st, 21, q->idempotency_key);
    sy_stmt_bind_text(st, 22, it->kind == SY_BENEFIT_GOODS ? q->delivery_masked : NULL);
    return sy_stmt_exec(st);
}

int sy_benefit_issue_one(sy_conn *c, const sy_benefit_issue *q, sy_benefit_result *res)
{
    static const char sql_take[] =
        "UPDATE benefit_items SET remaining = remaining - 1 WHERE tenant_id = $1 AND code = $2"
        " AND remaining > 0";
    memset(res, 0, sizeof *res);
    listing_row ls;
    item_row it;
    int rc = SY_OK;
    if (q->listing)
        rc = load_listing(c, q->tenant, q->listing, &ls, &it);
    else
        rc = load_item(c, q->tenant, q->item, &it);
    if (rc == SY_OK)
        rc = check_customer(c, q->tenant, q->customer_no, res);
    /* A package's units share their request's key: the caller checks it. */
    if (rc == SY_OK && !q->package)
        rc = check_key(c, q, res);
    if (rc != SY_OK)
        return rc;
    if ((q->listing && !ls.active) || (it.from != SY_BENEFIT_UNSET && q->now_ms < it.from) ||
        (it.until != SY_BENEFIT_UNSET && q->now_ms >= it.until))
        return SY_BENEFIT_NOT_AVAILABLE;
    if (it.kind == SY_BENEFIT_GOODS && !q->delivery)
        return SY_BENEFIT_NEEDS_DELIVERY;
    int64_t day, month;
    local_day_month(it.zone, q->now_ms, &day, &month);
    if ((rc = check_limits(c, q->tenant, q->customer_no, it.code, NULL, &it.limits, day, month,
                           res)) != SY_OK ||
        (q->listing && (rc = check_limits(c, q->tenant, q->customer_no, it.code, q->listing,
                                          &ls.limits, day, month, res)) != SY_OK))
        return rc;
    if (it.remaining <= 0) {
        snprintf(res->other, sizeof res->other, "%s", it.code);
        return SY_BENEFIT_OUT_OF_STOCK;
    }
    char code[SY_BENEFIT_GRANT_CODE_MAX + 1];
    new_grant_code(q->now_ms, code);
    sy_ledger_result lr;
    memset(&lr, 0, sizeof lr);
    if (q->listing) {
        /* The spend decides the points and writes first; its refusal
         * writes nothing, and everything after it can no longer refuse. */
        char reason[SY_BENEFIT_CODE_MAX + 32];
        snprintf(reason, sizeof reason, "mall exchange: %s", q->listing);
        sy_ledger_move m = {.tenant = q->tenant,
                            .customer_no = q->customer_no,
                            .point_type = ls.point_type,
                            .amount = ls.price,
                            .account = SY_BENEFIT_MALL_SINK,
                            .reason = reason,
                            .reference = code,
                            .operator_id = q->operator_id,
                            .idempotency_key = q->idempotency_key,
                            .now_ms = q->now_ms,
                            .customer_checked = true,
                            .type_checked = ls.type_exists};
        if ((rc = sy_ledger_spend(c, &m, &lr)) != SY_OK)
            return spend_refusal(rc, &lr, res);
    }
    sy_stmt *st = sy_conn_prepare(c, sql_take);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, q->tenant);
    sy_stmt_bind_text(st, 2, it.code);
    if ((rc = exec_one(c, st, SY_ERR)) != SY_OK)
        return rc;
    char voucher[SY_BENEFIT_VOUCHER_MAX + 1];
    if (it.kind == SY_BENEFIT_VOUCHER && (rc = take_code(c, q->tenant, it.code, code, voucher)))
        return rc;
    int64_t expires;
    rc = insert_grant(c, q, &it, q->listing ? &ls : NULL, code, q->listing ? lr.entry_id : NULL,
                      it.kind == SY_BENEFIT_VOUCHER ? voucher : NULL, day, month, &expires);
    if (rc != SY_OK)
        return rc;
    snprintf(res->code, sizeof res->code, "%s", code);
    sy_benefit_issued *g = &res->issued;
    g->complete = it.name_fits;
    snprintf(g->item, sizeof g->item, "%s", it.code);
    snprintf(g->item_name, sizeof g->item_name, "%s", it.name);
    g->kind = it.kind;
    g->source = q->listing ? "mall" : q->package ? "package" : "api";
    snprintf(g->point_type, sizeof g->point_type, "%s", q->listing ? ls.point_type : "");
    g->points = q->listing ? ls.price : SY_BENEFIT_UNSET;
    snprintf(g->spend_entry, sizeof g->spend_entry, "%s", q->listing ? lr.entry_id : "");
    snprintf(g->voucher, sizeof g->voucher, "%s", it.kind == SY_BENEFIT_VOUCHER ? voucher : "");
    g->face_value = it.face_value;
    g->cost_price = it.cost_price;
    g->issued_at = q->now_ms;
    g->expires_at = expires;
    return SY_OK;
}

/* ------------------------------------------------------------------ */
/* redeem, revoke, fulfil, expire                                      */

typedef struct grant_row {
    char customer_no[72], status[16], item[SY_BENEFIT_CODE_MAX + 1], source[16];
    char spend_entry[SY_LEDGER_ID_MAX + 1], fulfilment[16];
    char redeem_reference[4 * SY_LEDGER_REFERENCE_MAX + 1]; /* UTF-8 */
    int64_t expires_at;
    sy_benefit_kind kind;
    bool returns_stock;
} grant_row;

static int load_grant(sy_conn *c, const char *tenant, const char *code, grant_row *g)
{
    static const char sql[] =
        "SELECT g.customer_no, g.status, g.item, g.source, g.spend_entry, g.fulfilment,"
        " g.expires_at, i.kind, i.revoke_returns_stock, g.redeem_reference FROM benefit_grants g"
        " JOIN benefit_items i ON i.tenant_id = g.tenant_id AND i.code = g.item"
        " WHERE g.tenant_id = $1 AND g.code = $2";
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, code);
    int rc = sy_stmt_step(st);
    if (rc == SY_ROW) {
        snprintf(g->customer_no, sizeof g->customer_no, "%s", sy_stmt_text(st, 0));
        snprintf(g->status, sizeof g->status, "%s", sy_stmt_text(st, 1));
        snprintf(g->item, sizeof g->item, "%s", sy_stmt_text(st, 2));
        snprintf(g->source, sizeof g->source, "%s", sy_stmt_text(st, 3));
        snprintf(g->spend_entry, sizeof g->spend_entry, "%s", sy_stmt_text(st, 4));
        snprintf(g->fulfilment, sizeof g->fulfilment, "%s", sy_stmt_text(st, 5));
        g->expires_at = col_opt(st, 6);
        sy_benefit_kind_parse(sy_stmt_text(st, 7), &g->kind);
        g->returns_stock = sy_stmt_i64(st, 8) != 0;
        snprintf(g->redeem_reference, sizeof g->redeem_reference, "%s",
                 sy_stmt_is_null(st, 9) ? "" : sy_stmt_text(st, 9));
    }
    sy_stmt_reset(st);
    return rc == SY_ROW ? SY_OK : rc == SY_DONE ? SY_BENEFIT_NO_GRANT : rc;
}

int sy_benefit_redeem(sy_conn *c, const char *tenant, const char *code, const char *customer_no,
                      const char *reference, int64_t now_ms, sy_benefit_result *res)
{
    static const char sql[] =
        "UPDATE benefit_grants SET status = 'redeemed', redeemed_at = $3, redeem_reference = $4,"
        " updated_at = $3 WHERE tenant_id = $1 AND code = $2 AND status = 'issued'";
    memset(res, 0, sizeof *res);
    grant_row g;
    int rc = load_grant(c, tenant, code, &g);
    if (rc != SY_OK)
        return rc;
    snprintf(res->code, sizeof res->code, "%s", code);
    if (strcmp(g.customer_no, customer_no) != 0)
        return SY_BENEFIT_NOT_OWNER;
    if (!strcmp(g.status, "redeemed") && g.kind != SY_BENEFIT_GOODS) {
        if (strcmp(g.redeem_reference, reference ? reference : "") != 0)
            return SY_BENEFIT_ALREADY_REDEEMED;
        res->already = true;
        return SY_OK;
    }
    bool past = g.expires_at != SY_BENEFIT_UNSET && now_ms >= g.expires_at;
    if (strcmp(g.status, "issued") != 0 || past || g.kind == SY_BENEFIT_GOODS) {
        snprintf(res->other, sizeof res->other, "%s",
                 g.kind == SY_BENEFIT_GOODS && !strcmp(g.status, "issued") ? "goods"
                 : past && !strcmp(g.status, "issued")                     ? "expired"
                                                                           : g.status);
        return SY_BENEFIT_NOT_REDEEMABLE;
    }
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, code);
    sy_stmt_bind_i64(st, 3, now_ms);
    sy_stmt_bind_text(st, 4, reference ? reference : "");
    return exec_one(c, st, SY_ERR);
}

int sy_benefit_revoke(sy_conn *c, const char *tenant, const char *code, const char *reason,
                      const char *operator_id, int64_t now_ms, sy_benefit_result *res)
{
    static const char sql_stock[] =
        "UPDATE benefit_items SET remaining = remaining + 1, updated_at = $3"
        " WHERE tenant_id = $1 AND code = $2 AND remaining < total_stock";
    static const char sql[] =
        "UPDATE benefit_grants SET status = 'revoked', revoked_at = $3, revoke_reason = $4,"
        " stock_returned = $5, updated_at = $3 WHERE tenant_id = $1 AND code = $2"
        " AND status = 'issued'";
    memset(res, 0, sizeof *res);
    grant_row g;
    int rc = load_grant(c, tenant, code, &g);
    if (rc != SY_OK)
        return rc;
    snprintf(res->code, sizeof res->code, "%s", code);
    if (strcmp(g.status, "issued") != 0 ||
        (g.kind == SY_BENEFIT_GOODS && strcmp(g.fulfilment, "pending") != 0)) {
        snprintf(res->other, sizeof res->other, "%s",
                 strcmp(g.status, "issued") ? g.status : g.fulfilment);
        return SY_BENEFIT_NOT_REVOCABLE;
    }
    if (!strcmp(g.source, "mall")) {
        /* The points go back: the exchange's spend is reversed. */
        char why[SY_LEDGER_REASON_MAX + 1];
        snprintf(why, sizeof why, "mall exchange %s revoked: %.150s", code, reason);
        sy_ledger_reversal rv = {.tenant = tenant,
                                 .entry_id = g.spend_entry,
                                 .reason = why,
                                 .operator_id = operator_id,
                                 .now_ms = now_ms};
        sy_ledger_result lr;
        if ((rc = sy_ledger_reverse(c, &rv, &lr)) > 0) {
            snprintf(res->other, sizeof res->other, "%s",
                     rc == SY_LEDGER_MERGED ? "its customer was merged: the points cannot move"
                     : rc == SY_LEDGER_ALREADY_REVERSED ? "its spend was reversed already"
                                                        : "its spend cannot be reversed");
            return SY_BENEFIT_NOT_REVOCABLE;
        }
        if (rc != SY_OK)
            return rc;
    }
    sy_stmt *st;
    if (g.returns_stock) {
        if (!(st = sy_conn_prepare(c, sql_stock)))
            return SY_ERR;
        sy_stmt_bind_text(st, 1, tenant);
        sy_stmt_bind_text(st, 2, g.item);
        sy_stmt_bind_i64(st, 3, now_ms);
        if ((rc = exec_one(c, st, SY_ERR)) != SY_OK)
            return rc;
    }
    if (!(st = sy_conn_prepare(c, sql)))
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, code);
    sy_stmt_bind_i64(st, 3, now_ms);
    sy_stmt_bind_text(st, 4, reason);
    sy_stmt_bind_i64(st, 5, g.returns_stock ? 1 : 0);
    return exec_one(c, st, SY_ERR);
}

static int fulfilment_rank(const char *s)
{
    return !strcmp(s, "pending") ? 0 : !strcmp(s, "shipped") ? 1 : !strcmp(s, "delivered") ? 2 : -1;
}

int sy_benefit_fulfil(sy_conn *c, const char *tenant, const char *code, const char *status,
                      const char *tracking, int64_t now_ms, sy_benefit_result *res)
{
    static const char sql_shipped[] =
        "UPDATE benefit_grants SET fulfilment = 'shipped', tracking = COALESCE(CAST($3 AS TEXT),"
        " tracking), updated_at = $4 WHERE tenant_id = $1 AND code = $2 AND status = 'issued'";
    static const char sql_delivered[] =
        "UPDATE benefit_grants SET fulfilment = 'delivered', status = 'redeemed',"
        " redeemed_at = $4, tracking = COALESCE(CAST($3 AS TEXT), tracking), updated_at = $4"
        " WHERE tenant_id = $1 AND code = $2 AND status = 'issued'";
    memset(res, 0, sizeof *res);
    grant_row g;
    int rc = load_grant(c, tenant, code, &g);
    if (rc != SY_OK)
        return rc;
    snprintf(res->code, sizeof res->code, "%s", code);
    int to = fulfilment_rank(status);
    if (g.kind != SY_BENEFIT_GOODS || strcmp(g.status, "issued") != 0 || to < 1 ||
        to <= fulfilment_rank(g.fulfilment)) {
        snprintf(res->other, sizeof res->other, "%s",
                 g.kind != SY_BENEFIT_GOODS        ? "not goods"
                 : strcmp(g.status, "issued") != 0 ? g.status
                                                   : g.fulfilment);
        return SY_BENEFIT_BAD_FULFILMENT;
    }
    sy_stmt *st = sy_conn_prepare(c, to == 1 ? sql_shipped : sql_delivered);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, code);
    sy_stmt_bind_text(st, 3, tracking);
    sy_stmt_bind_i64(st, 4, now_ms);
    return exec_one(c, st, SY_ERR);
}

int sy_benefit_expire(sy_conn *c, const char *tenant, int64_t now_ms, int max, int64_t *n,
                      bool *more)
{
    static const char sql[] =
        "UPDATE benefit_grants SET status = 'expired', expired_at = $2, updated_at = $2"
        " WHERE tenant_id = $1 AND seq IN (SELECT seq FROM benefit_grants WHERE tenant_id = $1"
        " AND status = 'issued' AND expires_at IS NOT NULL AND expires_at <= $2"
        " ORDER BY expires_at LIMIT $3)";
    *n = 0;
    *more = false;
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_i64(st, 2, now_ms);
    sy_stmt_bind_i64(st, 3, max);
    int rc = sy_stmt_exec(st);
    if (rc != SY_OK)
        return rc;
    *n = sy_conn_changes(c);
    *more = *n == max;
    return SY_OK;
}

/* ------------------------------------------------------------------ */
/* invariants                                                          */

static const char chk_stock[] =
    "SELECT code, total, remaining, units_out, journal FROM (SELECT i.code AS code,"
    " i.total_stock AS total, i.remaining AS remaining, (SELECT COUNT(*) FROM benefit_grants g"
    " WHERE g.tenant_id = i.tenant_id AND g.item = i.code AND g.stock_returned = 0) AS units_out,"
    " (SELECT COALESCE(SUM(m.delta), 0) FROM benefit_stock_moves m WHERE m.tenant_id ="
    " i.tenant_id AND m.item = i.code) AS journal FROM benefit_items i WHERE i.tenant_id = $1) x"
    " WHERE total <> remaining + units_out OR total <> journal ORDER BY code";

const char *const sy_benefit_figure_names[SY_BF_KINDS] = {"issued", "redeemed", "expired",
                                                          "revoked"};

int sy_benefit_moments(sy_conn *c, const char *tenant, const char *supplier, int64_t from_ms,
                       int64_t to_ms, sy_benefit_moment_fn fn, void *ud)
{
    /* one literal, so that scripts/pg-compat.sh prepares it on PostgreSQL */
    static const char sql[] =
        "SELECT g.item, i.supplier, 0, g.issued_at, g.cost_price FROM benefit_grants g"
        " JOIN benefit_items i ON i.tenant_id = g.tenant_id AND i.code = g.item"
        " WHERE g.tenant_id = $1 AND g.issued_at >= $2 AND g.issued_at < $3"
        " AND (CAST($4 AS TEXT) IS NULL OR i.supplier = $4)"
        " UNION ALL SELECT g.item, i.supplier, 1, g.redeemed_at, g.cost_price FROM benefit_grants g"
        " JOIN benefit_items i ON i.tenant_id = g.tenant_id AND i.code = g.item"
        " WHERE g.tenant_id = $1 AND g.redeemed_at >= $2 AND g.redeemed_at < $3"
        " AND (CAST($4 AS TEXT) IS NULL OR i.supplier = $4)"
        " UNION ALL SELECT g.item, i.supplier, 2, g.expired_at, g.cost_price FROM benefit_grants g"
        " JOIN benefit_items i ON i.tenant_id = g.tenant_id AND i.code = g.item"
        " WHERE g.tenant_id = $1 AND g.expired_at >= $2 AND g.expired_at < $3"
        " AND (CAST($4 AS TEXT) IS NULL OR i.supplier = $4)"
        " UNION ALL SELECT g.item, i.supplier, 3, g.revoked_at, g.cost_price FROM benefit_grants g"
        " JOIN benefit_items i ON i.tenant_id = g.tenant_id AND i.code = g.item"
        " WHERE g.tenant_id = $1 AND g.revoked_at >= $2 AND g.revoked_at < $3"
        " AND (CAST($4 AS TEXT) IS NULL OR i.supplier = $4)";
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_i64(st, 2, from_ms);
    sy_stmt_bind_i64(st, 3, to_ms);
    sy_stmt_bind_text(st, 4, supplier);
    int rc;
    while ((rc = sy_stmt_step(st)) == SY_ROW)
        fn(ud, sy_stmt_text(st, 0), sy_stmt_text(st, 1), (int)sy_stmt_i64(st, 2),
           sy_stmt_i64(st, 3), sy_stmt_i64(st, 4));
    sy_stmt_reset(st);
    return rc == SY_DONE ? SY_OK : rc;
}

static void say_stock(sy_stmt *st, char *line, size_t n)
{
    snprintf(line, n,
             "item %s: total stock %lld, expected %lld (remaining %lld + %lld units issued and"
             " not returned) and %lld (its stock journal)",
             sy_stmt_text(st, 0), (long long)sy_stmt_i64(st, 1),
             (long long)(sy_stmt_i64(st, 2) + sy_stmt_i64(st, 3)), (long long)sy_stmt_i64(st, 2),
             (long long)sy_stmt_i64(st, 3), (long long)sy_stmt_i64(st, 4));
}

static const char chk_pool[] =
    "SELECT code, total, remaining, codes, free FROM (SELECT i.code AS code, i.total_stock AS"
    " total, i.remaining AS remaining, (SELECT COUNT(*) FROM benefit_codes k WHERE k.tenant_id ="
    " i.tenant_id AND k.item = i.code) AS codes, (SELECT COUNT(*) FROM benefit_codes k WHERE"
    " k.tenant_id = i.tenant_id AND k.item = i.code AND k.grant_code IS NULL) AS free"
    " FROM benefit_items i WHERE i.tenant_id = $1 AND i.kind = 'voucher') x"
    " WHERE total <> codes OR remaining <> free ORDER BY code";

static void say_pool(sy_stmt *st, char *line, size_t n)
{
    snprintf(line, n,
             "voucher item %s: stock %lld with %lld remaining, but its pool holds %lld codes with"
             " %lld free",
             sy_stmt_text(st, 0), (long long)sy_stmt_i64(st, 1), (long long)sy_stmt_i64(st, 2),
             (long long)sy_stmt_i64(st, 3), (long long)sy_stmt_i64(st, 4));
}

static const char chk_code_twice[] =
    "SELECT grant_code, COUNT(*) FROM benefit_codes WHERE tenant_id = $1"
    " AND grant_code IS NOT NULL GROUP BY grant_code HAVING COUNT(*) > 1 ORDER BY grant_code";

static void say_code_twice(sy_stmt *st, char *line, size_t n)
{
    snprintf(line, n, "grant %s holds %lld voucher codes, expected one", sy_stmt_text(st, 0),
             (long long)sy_stmt_i64(st, 1));
}

static const char chk_code_owner[] =
    "SELECT k.item, k.code, k.grant_code FROM benefit_codes k LEFT JOIN benefit_grants g"
    " ON g.tenant_id = k.tenant_id AND g.code = k.grant_code WHERE k.tenant_id = $1"
    " AND k.grant_code IS NOT NULL AND (g.code IS NULL OR g.item <> k.item"
    " OR g.voucher_code IS NULL OR g.voucher_code <> k.code) ORDER BY k.item, k.code";

static void say_code_owner(sy_stmt *st, char *line, size_t n)
{
    snprintf(line, n,
             "voucher item %s: code %s is marked issued to grant %s, which does not hold it",
             sy_stmt_text(st, 0), sy_stmt_text(st, 1), sy_stmt_text(st, 2));
}

static const char chk_voucher_grants[] =
    "SELECT g.code, g.item, COALESCE(g.voucher_code, '-') FROM benefit_grants g"
    " LEFT JOIN benefit_items i ON i.tenant_id = g.tenant_id AND i.code = g.item"
    " LEFT JOIN benefit_codes k ON k.tenant_id = g.tenant_id AND k.grant_code = g.code"
    " WHERE g.tenant_id = $1 AND (i.code IS NULL OR (i.kind = 'voucher' AND (k.id IS NULL"
    " OR k.item <> g.item OR g.voucher_code IS NULL OR k.code <> g.voucher_code))"
    " OR (i.kind <> 'voucher' AND (g.voucher_code IS NOT NULL OR k.id IS NOT NULL)))"
    " ORDER BY g.code";

static void say_voucher_grants(sy_stmt *st, char *line, size_t n)
{
    snprintf(line, n,
             "grant %s of item %s names voucher code %s, which is not the one code of its"
             " item's pool issued to it (or the item is no voucher, or does not exist)",
             sy_stmt_text(st, 0), sy_stmt_text(st, 1), sy_stmt_text(st, 2));
}

static const char chk_status[] =
    "SELECT g.code, g.item, g.status, COALESCE(g.fulfilment, '-'), g.stock_returned"
    " FROM benefit_grants g JOIN benefit_items i ON i.tenant_id = g.tenant_id"
    " AND i.code = g.item WHERE g.tenant_id = $1 AND (NOT ("
    " (g.status = 'issued' AND g.redeemed_at IS NULL AND g.expired_at IS NULL"
    " AND g.revoked_at IS NULL)"
    " OR (g.status = 'redeemed' AND g.redeemed_at IS NOT NULL AND g.expired_at IS NULL"
    " AND g.revoked_at IS NULL)"
    " OR (g.status = 'expired' AND g.expired_at IS NOT NULL AND g.expires_at IS NOT NULL"
    " AND g.expires_at <= g.expired_at AND g.redeemed_at IS NULL AND g.revoked_at IS NULL)"
    " OR (g.status = 'revoked' AND g.revoked_at IS NOT NULL AND g.redeemed_at IS NULL"
    " AND g.expired_at IS NULL))"
    " OR (g.stock_returned = 1) <> (g.status = 'revoked' AND i.revoke_returns_stock = 1)"
    " OR (i.kind = 'goods') <> (g.fulfilment IS NOT NULL)"
    " OR (i.kind = 'goods' AND (g.fulfilment = 'delivered') <> (g.status = 'redeemed'))"
    " OR (g.source = 'mall') <> (g.listing IS NOT NULL AND g.spend_entry IS NOT NULL"
    " AND g.points IS NOT NULL AND g.point_type IS NOT NULL))"
    " ORDER BY g.code";

static void say_status(sy_stmt *st, char *line, size_t n)
{
    snprintf(line, n,
             "grant %s of item %s: status %s, fulfilment %s, stock returned %lld do not fit"
             " together (times, kind, source or the item's revoke rule)",
             sy_stmt_text(st, 0), sy_stmt_text(st, 1), sy_stmt_text(st, 2), sy_stmt_text(st, 3),
             (long long)sy_stmt_i64(st, 4));
}

static const char chk_mall_spend[] =
    "SELECT g.code, g.customer_no, COALESCE(g.spend_entry, '-'), g.points FROM benefit_grants g"
    " LEFT JOIN ledger_entries e ON e.tenant_id = g.tenant_id AND e.id = g.spend_entry"
    " WHERE g.tenant_id = $1 AND g.source = 'mall' AND (e.id IS NULL OR e.kind <> 'spend'"
    " OR e.credit_account <> 'sink:mall' OR e.reference <> g.code OR e.amount <> g.points"
    " OR e.point_type <> g.point_type OR e.customer_no <> g.customer_no"
    " OR (e.reversed_by IS NOT NULL) <> (g.status = 'revoked')) ORDER BY g.code";

static void say_mall_spend(sy_stmt *st, char *line, size_t n)
{
    snprintf(line, n,
             "mall grant %s of customer %s: its spend %s is not one spend of its price %lld into"
             " sink:mall (reversed exactly when the grant was revoked)",
             sy_stmt_text(st, 0), sy_stmt_text(st, 1), sy_stmt_text(st, 2),
             (long long)sy_stmt_i64(st, 3));
}

static const char chk_mall_orphans[] =
    "SELECT e.id, e.customer_no, e.reference, e.amount FROM ledger_entries e"
    " LEFT JOIN benefit_grants g ON g.tenant_id = e.tenant_id AND g.code = e.reference"
    " WHERE e.tenant_id = $1 AND e.kind = 'spend' AND e.credit_account = 'sink:mall'"
    " AND (g.code IS NULL OR g.spend_entry IS NULL OR g.spend_entry <> e.id) ORDER BY e.seq";

static void say_mall_orphans(sy_stmt *st, char *line, size_t n)
{
    snprintf(line, n,
             "spend %s of %lld points by customer %s into sink:mall names grant '%s', which was"
             " not paid by it",
             sy_stmt_text(st, 0), (long long)sy_stmt_i64(st, 3), sy_stmt_text(st, 1),
             sy_stmt_text(st, 2));
}

static const sy_check_query k_checks[] = {
    {chk_stock, say_stock},
    {chk_pool, say_pool},
    {chk_code_twice, say_code_twice},
    {chk_code_owner, say_code_owner},
    {chk_voucher_grants, say_voucher_grants},
    {chk_status, say_status},
    {chk_mall_spend, say_mall_spend},
    {chk_mall_orphans, say_mall_orphans},
};

int sy_benefit_check(sy_conn *c, const char *tenant, void (*report)(void *ud, const char *line),
                     void *ud, int64_t *violations, int64_t *checked)
{
    static const char sql_count[] =
        "SELECT (SELECT COUNT(*) FROM benefit_items WHERE tenant_id = $1)"
        " + (SELECT COUNT(*) FROM benefit_codes WHERE tenant_id = $1)"
        " + (SELECT COUNT(*) FROM benefit_grants WHERE tenant_id = $1)";
    return sy_check_queries(c, tenant, sql_count, k_checks, SY_ARRAY_LEN(k_checks), report, ud,
                            violations, checked);
}

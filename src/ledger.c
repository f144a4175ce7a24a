/* ledger.c — the points ledger's rules (ledger.h, docs/rewards.md).
 *
 * Each operation reads first — the rules: amount, point type, customer,
 * idempotency key, balance, the entry to reverse — and writes only once
 * they all hold (entry, allocations, lots, account), so a refusal writes
 * nothing.  Rows a query returns are collected before the lots they name
 * are updated: no statement is stepped while the rows it reads change.
 *
 * Every write re-checks what the rules promised (a lot never below zero
 * nor above its amount, a balance never below zero: the UPDATEs carry those
 * conditions and the schema has the same CHECKs), so a broken rule shows as
 * a store error that rolls the change back, never as a wrong balance. */
#include "ledger.h"
#include "check.h"
#include "tenant.h"
#include "util.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DAY_MS 86400000LL
#define ACCOUNT_MAX 96 /* "customer:" + a customer number, "source:" + a name */

/* ------------------------------------------------------------------ */
/* names                                                               */

static const char *const k_expiry[] = {"never", "days", "year_end"};

const char *sy_point_expiry_name(sy_point_expiry e)
{
    return (unsigned)e < SY_ARRAY_LEN(k_expiry) ? k_expiry[e] : "never";
}

bool sy_point_expiry_parse(const char *s, sy_point_expiry *out)
{
    for (size_t i = 0; i < SY_ARRAY_LEN(k_expiry); i++)
        if (!strcmp(s, k_expiry[i])) {
            *out = (sy_point_expiry)i;
            return true;
        }
    return false;
}

bool sy_point_type_code_valid(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > SY_POINT_TYPE_CODE_MAX || s[0] < 'a' || s[0] > 'z')
        return false;
    for (size_t i = 1; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return false;
    return true;
}

bool sy_ledger_account_name_valid(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > SY_LEDGER_ACCOUNT_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '.' || ch == ':' || ch == '-'))
            return false;
    }
    return true;
}

static void customer_account(const char *no, char out[ACCOUNT_MAX])
{
    snprintf(out, ACCOUNT_MAX, "customer:%s", no);
}

/* ------------------------------------------------------------------ */
/* expiry moments                                                      */

/* The zone's UTC offset at a moment.  sy_tz_offset_ms switches the
 * process's TZ under a lock, too slow for every earn: answers are kept per
 * thread by zone and minute. */
int64_t sy_local_midnight(const char *zone, int64_t day)
{
    int64_t wall = day * 86400000LL;
    int64_t guess = wall - sy_ledger_tz_offset(zone, wall);
    return wall - sy_ledger_tz_offset(zone, guess);
}

int64_t sy_ledger_tz_offset(const char *zone, int64_t at_ms)
{
    static __thread struct {
        char zone[65];
        int64_t minute, offset;
    } cache[8];
    static __thread unsigned next;
    int64_t minute = at_ms / 60000;
    for (size_t i = 0; i < SY_ARRAY_LEN(cache); i++)
        if (cache[i].zone[0] && cache[i].minute == minute && !strcmp(cache[i].zone, zone))
            return cache[i].offset;
    int64_t off = sy_tz_offset_ms(zone, at_ms);
    unsigned i = next++ % SY_ARRAY_LEN(cache);
    snprintf(cache[i].zone, sizeof cache[i].zone, "%s", zone);
    cache[i].minute = minute;
    cache[i].offset = off;
    return off;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* The UTC moment of local midnight starting `day` (days since 1970-01-01)
 * in zone.  The offset is taken at the first guess and then at the result,
 * which settles it for zones whose offset changes near that midnight. */
static int64_t local_midnight(const char *zone, int64_t day)
{
    int64_t wall = day * DAY_MS;
    int64_t guess = wall - sy_ledger_tz_offset(zone, wall);
    return wall - sy_ledger_tz_offset(zone, guess);
}

bool sy_ledger_expires_at(const sy_point_type *t, const char *zone, int64_t earned_ms,
                          int64_t *at_ms)
{
    if (t->expiry == SY_EXPIRY_NEVER)
        return false;
    int64_t local_ms = earned_ms + sy_ledger_tz_offset(zone, earned_ms);
    int64_t day = floor_div(local_ms, DAY_MS);
    if (t->expiry == SY_EXPIRY_DAYS) {
        /* valid through the n-th day after the day of earning */
        *at_ms = local_midnight(zone, day + t->n + 1);
        return true;
    }
    time_t secs = (time_t)floor_div(local_ms, 1000);
    struct tm tm;
    gmtime_r(&secs, &tm); /* the local calendar date: local_ms read as UTC */
    int64_t year = tm.tm_year + 1900;
    *at_ms = local_midnight(zone, sy_days_from_civil(year + t->n + 1, 1, 1));
    return true;
}

/* ------------------------------------------------------------------ */
/* point types                                                         */

int sy_ledger_type_create(sy_conn *c, const char *tenant, const sy_point_type *t)
{
    /* DO NOTHING rather than a constraint error: PostgreSQL would abort the
     * caller's whole transaction on the error. */
    static const char sql[] =
        "INSERT INTO point_types (tenant_id, code, name, expiry, expiry_days, expiry_years,"
        " created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (tenant_id, code) DO NOTHING";
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, t->code);
    sy_stmt_bind_text(st, 3, t->name);
    sy_stmt_bind_text(st, 4, sy_point_expiry_name(t->expiry));
    if (t->expiry == SY_EXPIRY_DAYS)
        sy_stmt_bind_i64(st, 5, t->n);
    else
        sy_stmt_bind_null(st, 5);
    if (t->expiry == SY_EXPIRY_YEAR_END)
        sy_stmt_bind_i64(st, 6, t->n);
    else
        sy_stmt_bind_null(st, 6);
    sy_stmt_bind_i64(st, 7, t->created_at);
    int rc = sy_stmt_exec(st);
    if (rc != SY_OK)
        return rc;
    return sy_conn_changes(c) == 1 ? SY_OK : SY_LEDGER_TYPE_EXISTS;
}

/* Reads columns code, name, expiry, expiry_days, expiry_years, created_at
 * starting at column 0. */
static void type_from_row(sy_stmt *st, sy_point_type *t)
{
    memset(t, 0, sizeof *t);
    snprintf(t->code, sizeof t->code, "%s", sy_stmt_text(st, 0));
    snprintf(t->name, sizeof t->name, "%s", sy_stmt_text(st, 1));
    sy_point_expiry_parse(sy_stmt_text(st, 2), &t->expiry);
    if (t->expiry == SY_EXPIRY_DAYS)
        t->n = (int)sy_stmt_i64(st, 3);
    else if (t->expiry == SY_EXPIRY_YEAR_END)
        t->n = (int)sy_stmt_i64(st, 4);
    t->created_at = sy_stmt_i64(st, 5);
}

int sy_ledger_type_get(sy_conn *c, const char *tenant, const char *code, sy_point_type *out)
{
    static const char sql[] =
        "SELECT code, name, expiry, expiry_days, expiry_years, created_at FROM point_types"
        " WHERE tenant_id = $1 AND code = $2";
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, code);
    int rc = sy_stmt_step(st);
    if (rc == SY_ROW)
        type_from_row(st, out);
    sy_stmt_reset(st);
    return rc == SY_ROW ? SY_OK : rc;
}

/* The point type and the tenant's time zone, for an earn. */
static int type_and_zone(sy_conn *c, const char *tenant, const char *code, sy_point_type *t,
                         char zone[65])
{
    static const char sql[] =
        "SELECT p.code, p.name, p.expiry, p.expiry_days, p.expiry_years, p.created_at, t.timezone"
        " FROM point_types p JOIN tenants t ON t.id = p.tenant_id"
        " WHERE p.tenant_id = $1 AND p.code = $2";
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, code);
    int rc = sy_stmt_step(st);
    if (rc == SY_ROW) {
        type_from_row(st, t);
        snprintf(zone, 65, "%s", sy_stmt_text(st, 6));
    }
    sy_stmt_reset(st);
    return rc == SY_ROW ? SY_OK : rc == SY_DONE ? SY_LEDGER_UNKNOWN_TYPE : rc;
}

static int check_type(sy_conn *c, const char *tenant, const char *code)
{
    sy_point_type t;
    int rc = sy_ledger_type_get(c, tenant, code, &t);
    return rc == SY_DONE ? SY_LEDGER_UNKNOWN_TYPE : rc;
}

/* ------------------------------------------------------------------ */
/* shared checks                                                       */

static int check_customer(sy_conn *c, const char *tenant, const char *no, sy_ledger_result *res)
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
        rc = SY_LEDGER_MERGED;
    }
    sy_stmt_reset(st);
    return rc == SY_ROW ? SY_OK : rc == SY_DONE ? SY_LEDGER_NO_CUSTOMER : rc;
}

static int check_key(sy_conn *c, const char *tenant, const char *key, sy_ledger_result *res)
{
    static const char sql[] =
        "SELECT id FROM ledger_entries WHERE tenant_id = $1 AND idempotency_key = $2";
    if (!key)
        return SY_OK;
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, key);
    int rc = sy_stmt_step(st);
    if (rc == SY_ROW)
        snprintf(res->other, sizeof res->other, "%s", sy_stmt_text(st, 0));
    sy_stmt_reset(st);
    return rc == SY_ROW ? SY_LEDGER_DUPLICATE_KEY : rc == SY_DONE ? SY_OK : rc;
}

/* ------------------------------------------------------------------ */
/* writing                                                             */

typedef struct entry {
    const char *tenant, *kind, *point_type, *customer_no;
    int64_t amount;
    const char *debit, *credit;
    const char *reason, *reference, *operator_id, *idempotency_key, *reverses;
    int64_t now;
    char id[SY_LEDGER_ID_MAX + 1]; /* OUT */
} entry;

/* A lot and the points an entry moves out of it or into it; empties: a
 * draw that takes all the lot holds (the lot closes). */
typedef struct lot_move {
    int64_t lot, amount;
    bool empties;
} lot_move;

/* The journal entry of an earn or a spend: points move from debit to
 * credit, one of which is the customer's account. */
static entry move_entry(const sy_ledger_move *m, const char *kind, const char *debit,
                        const char *credit)
{
    return (entry){.tenant = m->tenant,
                   .kind = kind,
                   .point_type = m->point_type,
                   .customer_no = m->customer_no,
                   .amount = m->amount,
                   .debit = debit,
                   .credit = credit,
                   .reason = m->reason,
                   .reference = m->reference,
                   .operator_id = m->operator_id,
                   .idempotency_key = m->idempotency_key,
                   .now = m->now_ms};
}

static int insert_entry(sy_conn *c, entry *e)
{
    static const char sql[] =
        "INSERT INTO ledger_entries (tenant_id, id, kind, point_type, customer_no, amount,"
        " debit_account, credit_account, reason, reference, operator, idempotency_key, reverses,"
        " created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)";
    sy_ordered_id("le_", e->now, e->id, sizeof e->id);
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, e->tenant);
    sy_stmt_bind_text(st, 2, e->id);
    sy_stmt_bind_text(st, 3, e->kind);
    sy_stmt_bind_text(st, 4, e->point_type);
    sy_stmt_bind_text(st, 5, e->customer_no);
    sy_stmt_bind_i64(st, 6, e->amount);
    sy_stmt_bind_text(st, 7, e->debit);
    sy_stmt_bind_text(st, 8, e->credit);
    sy_stmt_bind_text(st, 9, e->reason ? e->reason : "");
    sy_stmt_bind_text(st, 10, e->reference ? e->reference : "");
    sy_stmt_bind_text(st, 11, e->operator_id);
    sy_stmt_bind_text(st, 12, e->idempotency_key);
    sy_stmt_bind_text(st, 13, e->reverses);
    sy_stmt_bind_i64(st, 14, e->now);
    return sy_stmt_exec(st);
}

/* Records the move in lot_allocations. */
static int record_allocation(sy_conn *c, const char *tenant, const char *entry_id,
                             const lot_move *m)
{
    static const char sql[] = "INSERT INTO lot_allocations (tenant_id, entry_id, lot_id, amount)"
                              " VALUES ($1, $2, $3, $4)";
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, entry_id);
    sy_stmt_bind_i64(st, 3, m->lot);
    sy_stmt_bind_i64(st, 4, m->amount);
    return sy_stmt_exec(st);
}

/* Records the move in lot_allocations and applies it to the lot:
 * sign -1 draws from the lot, +1 puts points into it.  Only a draw that
 * empties the lot, or points put into it, set its closed flag (migration
 * 0018): a draw that leaves points in the lot does not touch the open-lot
 * indexes, and its UPDATE fails unless points are left. */
static int move_lot(sy_conn *c, const char *tenant, const char *entry_id, const lot_move *m,
                    int sign)
{
    static const char sql_draw[] =
        "UPDATE point_lots SET remaining = remaining + $3 WHERE tenant_id = $1 AND id = $2"
        " AND remaining + $3 > 0 AND closed = 0";
    static const char sql_empty[] =
        "UPDATE point_lots SET remaining = 0, closed = 1 WHERE tenant_id = $1 AND id = $2"
        " AND remaining + $3 = 0";
    static const char sql_fill[] =
        "UPDATE point_lots SET remaining = remaining + $3, closed = 0 WHERE tenant_id = $1"
        " AND id = $2 AND remaining + $3 > 0 AND remaining + $3 <= amount";
    const char *sql_lot = sign > 0 ? sql_fill : m->empties ? sql_empty : sql_draw;
    int rc = record_allocation(c, tenant, entry_id, m);
    if (rc != SY_OK)
        return rc;
    sy_stmt *st = sy_conn_prepare(c, sql_lot);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_i64(st, 2, m->lot);
    sy_stmt_bind_i64(st, 3, sign * m->amount);
    if ((rc = sy_stmt_exec(st)) != SY_OK)
        return rc;
    if (sy_conn_changes(c) != 1) {
        sy_error("ledger %s: lot %lld cannot move %lld points for entry %s", tenant,
                 (long long)m->lot, (long long)(sign * m->amount), entry_id);
        return SY_ERR;
    }
    return SY_OK;
}

/* Adds delta (signed) to the customer's balance of the type, creating the
 * account on the first credit; *balance receives the new balance.  known:
 * the balance the caller read in this transaction, or -1 (then it is read
 * here).  The UPDATE carries AND balance = known and fails the mutation
 * unless it changed one row; a debit that would take the balance below zero
 * fails the balance >= 0 CHECK: a store error, never a negative balance.
 * (No RETURNING: SQLite builds a temporary table for it on every run.) */
static int account_add(sy_conn *c, const char *tenant, const char *no, const char *type,
                       int64_t delta, int64_t now, int64_t known, int64_t *balance)
{
    static const char sql_read[] = "SELECT balance FROM point_accounts WHERE tenant_id = $1"
                                   " AND customer_no = $2 AND point_type = $3";
    static const char sql_open[] =
        "INSERT INTO point_accounts (tenant_id, customer_no, point_type, balance, updated_at)"
        " VALUES ($1, $2, $3, $4, $5)";
    static const char sql_move[] =
        "UPDATE point_accounts SET balance = balance + $4, updated_at = $5"
        " WHERE tenant_id = $1 AND customer_no = $2 AND point_type = $3 AND balance = $6";
    sy_stmt *st;
    int rc;
    bool open = false;
    if (known < 0) {
        if (!(st = sy_conn_prepare(c, sql_read)))
            return SY_ERR;
        sy_stmt_bind_text(st, 1, tenant);
        sy_stmt_bind_text(st, 2, no);
        sy_stmt_bind_text(st, 3, type);
        rc = sy_stmt_step(st);
        if (rc == SY_ROW)
            known = sy_stmt_i64(st, 0);
        sy_stmt_reset(st);
        if (rc != SY_ROW && rc != SY_DONE)
            return rc;
        open = rc == SY_DONE;
        if (open && delta < 0) {
            sy_error("ledger %s: customer %s type %s: a debit without an account", tenant, no,
                     type);
            return SY_ERR;
        }
    }
    if (!(st = sy_conn_prepare(c, open ? sql_open : sql_move)))
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, no);
    sy_stmt_bind_text(st, 3, type);
    sy_stmt_bind_i64(st, 4, delta);
    sy_stmt_bind_i64(st, 5, now);
    if (!open)
        sy_stmt_bind_i64(st, 6, known);
    if ((rc = sy_stmt_exec(st)) != SY_OK)
        return rc;
    if (!open && sy_conn_changes(c) != 1) {
        sy_error("ledger %s: customer %s type %s: the balance is not the %lld read", tenant, no,
                 type, (long long)known);
        return SY_ERR;
    }
    *balance = open ? delta : known + delta;
    return SY_OK;
}

/* Applies an entry already inserted to the customer's lots — drawing from
 * them (sign -1) or putting points into them (+1) — and moves the balance
 * by sign * e->amount (known: account_add's). */
static int apply_moves(sy_conn *c, const entry *e, const lot_move *moves, size_t n, int sign,
                       int64_t known, int64_t *balance)
{
    int rc = SY_OK;
    for (size_t i = 0; i < n && rc == SY_OK; i++)
        rc = move_lot(c, e->tenant, e->id, &moves[i], sign);
    if (rc == SY_OK)
        rc = account_add(c, e->tenant, e->customer_no, e->point_type, sign * e->amount, e->now,
                         known, balance);
    return rc;
}

static bool amount_ok(int64_t amount)
{
    return amount >= 1 && amount <= SY_LEDGER_MAX_AMOUNT;
}

/* ------------------------------------------------------------------ */
/* earn                                                                */

/* Makes the earn's lot, holding its amount; the earn records the
 * allocation that put it there, so a lot's remaining is always what its
 * allocations put in minus what they drew.  *lot: its id, found through
 * point_lots_entry (RETURNING would build a temporary table each time). */
static int insert_lot(sy_conn *c, const entry *e, const sy_point_type *t, const char *zone,
                      int64_t *lot)
{
    static const char sql[] =
        "INSERT INTO point_lots (tenant_id, customer_no, point_type, entry_id, amount, remaining,"
        " expires_at, created_at, closed) VALUES ($1, $2, $3, $4, $5, $5, $6, $7, 0)";
    static const char sql_id[] = "SELECT id FROM point_lots WHERE tenant_id = $1 AND entry_id = $2";
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    int64_t expires;
    sy_stmt_bind_text(st, 1, e->tenant);
    sy_stmt_bind_text(st, 2, e->customer_no);
    sy_stmt_bind_text(st, 3, e->point_type);
    sy_stmt_bind_text(st, 4, e->id);
    sy_stmt_bind_i64(st, 5, e->amount);
    if (sy_ledger_expires_at(t, zone, e->now, &expires))
        sy_stmt_bind_i64(st, 6, expires);
    else
        sy_stmt_bind_null(st, 6);
    sy_stmt_bind_i64(st, 7, e->now);
    int rc = sy_stmt_exec(st);
    if (rc != SY_OK)
        return rc;
    if (!(st = sy_conn_prepare(c, sql_id)))
        return SY_ERR;
    sy_stmt_bind_text(st, 1, e->tenant);
    sy_stmt_bind_text(st, 2, e->id);
    rc = sy_stmt_step(st);
    if (rc == SY_ROW)
        *lot = sy_stmt_i64(st, 0);
    sy_stmt_reset(st);
    return rc == SY_ROW ? SY_OK : rc == SY_DONE ? SY_ERR : rc;
}

int sy_ledger_earn(sy_conn *c, const sy_ledger_move *m, sy_ledger_result *res)
{
    memset(res, 0, sizeof *res);
    if (!amount_ok(m->amount))
        return SY_LEDGER_BAD_AMOUNT;
    sy_point_type t;
    char zone[65];
    int rc = type_and_zone(c, m->tenant, m->point_type, &t, zone);
    if (rc == SY_OK)
        rc = check_customer(c, m->tenant, m->customer_no, res);
    if (rc == SY_OK)
        rc = check_key(c, m->tenant, m->idempotency_key, res);
    if (rc != SY_OK)
        return rc;

    char source[ACCOUNT_MAX], customer[ACCOUNT_MAX];
    snprintf(source, sizeof source, "source:%s", m->account ? m->account : "adjustment");
    customer_account(m->customer_no, customer);
    entry e = move_entry(m, "earn", source, customer);
    lot_move fill = {.amount = m->amount};
    if ((rc = insert_entry(c, &e)) == SY_OK &&
        (rc = insert_lot(c, &e, &t, zone, &fill.lot)) == SY_OK &&
        (rc = record_allocation(c, e.tenant, e.id, &fill)) == SY_OK)
        rc = account_add(c, e.tenant, e.customer_no, e.point_type, e.amount, e.now, -1,
                         &res->balance);
    if (rc == SY_OK)
        snprintf(res->entry_id, sizeof res->entry_id, "%s", e.id);
    return rc;
}

/* ------------------------------------------------------------------ */
/* expiry                                                              */

/* Writes one expire entry for a customer's lots of one type: moves holds
 * each lot and what it still holds. */
static int expire_lots(sy_conn *c, const char *tenant, const char *no, const char *type,
                       const lot_move *moves, size_t n, int64_t now, char id_out[])
{
    char customer[ACCOUNT_MAX];
    customer_account(no, customer);
    int64_t sum = 0, balance;
    for (size_t i = 0; i < n; i++)
        sum += moves[i].amount;
    entry e = {.tenant = tenant,
               .kind = "expire",
               .point_type = type,
               .customer_no = no,
               .amount = sum,
               .debit = customer,
               .credit = "expired",
               .reason = "points past their expiry",
               .operator_id = SY_LEDGER_EXPIRY_OPERATOR,
               .now = now};
    int rc = insert_entry(c, &e);
    if (rc == SY_OK)
        rc = apply_moves(c, &e, moves, n, -1, -1, &balance);
    if (rc == SY_OK && id_out)
        snprintf(id_out, SY_LEDGER_ID_MAX + 1, "%s", e.id);
    return rc;
}

/* Collects (first column: lot id, second: points) rows of a prepared and
 * bound statement into *out, stopping once `enough` points are collected
 * (enough <= 0: all rows); with enough > 0 the last lot is trimmed to what
 * is needed.  Resets the statement. */
static int collect_moves(sy_stmt *st, int64_t enough, lot_move **out, size_t *n, int64_t *total)
{
    size_t cap = 0;
    int rc = SY_DONE;
    *out = NULL;
    *n = 0;
    *total = 0;
    while ((enough <= 0 || *total < enough) && (rc = sy_stmt_step(st)) == SY_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 8;
            *out = sy_xrealloc(*out, cap * sizeof **out);
        }
        int64_t take = sy_stmt_i64(st, 1);
        if (enough > 0 && take > enough - *total)
            take = enough - *total;
        (*out)[(*n)++] = (lot_move){sy_stmt_i64(st, 0), take, take == sy_stmt_i64(st, 1)};
        *total += take;
    }
    sy_stmt_reset(st);
    if (enough > 0 && *total >= enough)
        return SY_OK;
    return rc == SY_DONE ? SY_OK : rc;
}

/* Expires the customer's lots of the type that are past their expiry. */
static int expire_customer(sy_conn *c, const char *tenant, const char *no, const char *type,
                           int64_t now)
{
    static const char sql[] =
        "SELECT id, remaining FROM point_lots WHERE tenant_id = $1 AND customer_no = $2"
        " AND point_type = $3 AND closed = 0 AND remaining > 0 AND expires_at <= $4 ORDER BY id";
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, no);
    sy_stmt_bind_text(st, 3, type);
    sy_stmt_bind_i64(st, 4, now);
    lot_move *moves;
    size_t n;
    int64_t total;
    int rc = collect_moves(st, 0, &moves, &n, &total);
    if (rc == SY_OK && n > 0)
        rc = expire_lots(c, tenant, no, type, moves, n, now, NULL);
    free(moves);
    return rc;
}

typedef struct due_lot {
    int64_t id, remaining;
    char *customer_no, *point_type;
} due_lot;

static int due_cmp(const void *a, const void *b)
{
    const due_lot *x = a, *y = b;
    int d = strcmp(x->customer_no, y->customer_no);
    if (!d)
        d = strcmp(x->point_type, y->point_type);
    return d ? d : (x->id > y->id) - (x->id < y->id);
}

int sy_ledger_expire(sy_conn *c, const char *tenant, int64_t now_ms, int max_lots,
                     void (*on_entry)(void *ud, const char *entry_id, const char *customer_no,
                                      const char *point_type, int64_t amount),
                     void *ud, sy_ledger_expiry *out)
{
    static const char sql[] =
        "SELECT id, remaining, customer_no, point_type FROM point_lots WHERE tenant_id = $1"
        " AND closed = 0 AND remaining > 0 AND expires_at IS NOT NULL AND expires_at <= $2"
        " ORDER BY expires_at, id LIMIT $3";
    memset(out, 0, sizeof *out);
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_i64(st, 2, now_ms);
    sy_stmt_bind_i64(st, 3, max_lots);
    due_lot *due = NULL;
    size_t n = 0, cap = 0;
    int rc;
    while ((rc = sy_stmt_step(st)) == SY_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            due = sy_xrealloc(due, cap * sizeof *due);
        }
        due[n++] = (due_lot){sy_stmt_i64(st, 0), sy_stmt_i64(st, 1),
                             sy_xstrdup(sy_stmt_text(st, 2)), sy_xstrdup(sy_stmt_text(st, 3))};
    }
    sy_stmt_reset(st);
    rc = rc == SY_DONE ? SY_OK : rc;
    /* One entry per customer and type: group the lots.  (qsort wants an
     * array even for no elements, and due is NULL then.) */
    if (n > 1)
        qsort(due, n, sizeof *due, due_cmp);
    lot_move *moves = sy_xmalloc((n ? n : 1) * sizeof *moves);
    for (size_t i = 0, j; i < n && rc == SY_OK; i = j) {
        int64_t sum = 0;
        for (j = i; j < n && !strcmp(due[j].customer_no, due[i].customer_no) &&
                    !strcmp(due[j].point_type, due[i].point_type);
             j++) {
            moves[j - i] = (lot_move){due[j].id, due[j].remaining, true};
            sum += due[j].remaining;
        }
        char id[SY_LEDGER_ID_MAX + 1];
        rc =
            expire_lots(c, tenant, due[i].customer_no, due[i].point_type, moves, j - i, now_ms, id);
        if (rc == SY_OK) {
            out->entries++;
            out->lots += (int64_t)(j - i);
            out->points += sum;
            if (on_entry)
                on_entry(ud, id, due[i].customer_no, due[i].point_type, sum);
        }
    }
    out->more = rc == SY_OK && n == (size_t)max_lots;
    for (size_t i = 0; i < n; i++) {
        free(due[i].customer_no);
        free(due[i].point_type);
    }
    free(due);
    free(moves);
    return rc;
}

/* ------------------------------------------------------------------ */
/* spend                                                               */

/* A customer's open lots of a type, in the order a spend draws from them,
 * read once: what they hold, how much of it is past its expiry (the
 * expiry job has not emptied those lots yet), and the draws that take
 * `amount` from the lots that are not. */
typedef struct open_lots {
    int64_t due; /* held by lots past their expiry (which come first) */
    lot_move *draws;
    size_t n;
    int64_t drawn;
} open_lots;

/* Reads the customer's open lots as far as the spend needs them: every lot
 * past its expiry (they come first), then unexpired ones until m->amount
 * is drawn.  A customer collects a lot per earn (a check-in a day, a prize
 * a draw), so reading them all would make each spend cost as many rows as
 * the customer has open lots; `siyu check` verifies that the lots hold the
 * balance. */
static int read_open_lots(sy_conn *c, const sy_ledger_move *m, open_lots *o)
{
    /* Soonest expiry first; lots that never expire last; then the oldest. */
    static const char sql[] =
        "SELECT id, remaining, expires_at FROM point_lots WHERE tenant_id = $1"
        " AND customer_no = $2 AND point_type = $3 AND closed = 0 AND remaining > 0"
        " ORDER BY expires_at NULLS LAST, id";
    memset(o, 0, sizeof *o);
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, m->tenant);
    sy_stmt_bind_text(st, 2, m->customer_no);
    sy_stmt_bind_text(st, 3, m->point_type);
    size_t cap = 0;
    int rc;
    while ((rc = sy_stmt_step(st)) == SY_ROW) {
        int64_t remaining = sy_stmt_i64(st, 1);
        if (!sy_stmt_is_null(st, 2) && sy_stmt_i64(st, 2) <= m->now_ms) {
            o->due += remaining;
            continue;
        }
        if (o->drawn >= m->amount) {
            rc = SY_DONE; /* enough drawn, and no expired lot follows */
            break;
        }
        if (o->n == cap) {
            cap = cap ? cap * 2 : 4;
            o->draws = sy_xrealloc(o->draws, cap * sizeof *o->draws);
        }
        int64_t take = remaining < m->amount - o->drawn ? remaining : m->amount - o->drawn;
        o->draws[o->n++] = (lot_move){sy_stmt_i64(st, 0), take, take == remaining};
        o->drawn += take;
    }
    sy_stmt_reset(st);
    return rc == SY_DONE ? SY_OK : rc;
}

static int account_balance(sy_conn *c, const sy_ledger_move *m, int64_t *balance)
{
    static const char sql[] = "SELECT balance FROM point_accounts WHERE tenant_id = $1"
                              " AND customer_no = $2 AND point_type = $3";
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, m->tenant);
    sy_stmt_bind_text(st, 2, m->customer_no);
    sy_stmt_bind_text(st, 3, m->point_type);
    int rc = sy_stmt_step(st);
    *balance = rc == SY_ROW ? sy_stmt_i64(st, 0) : 0;
    sy_stmt_reset(st);
    return rc == SY_ROW || rc == SY_DONE ? SY_OK : rc;
}

int sy_ledger_spend(sy_conn *c, const sy_ledger_move *m, sy_ledger_result *res)
{
    memset(res, 0, sizeof *res);
    if (!amount_ok(m->amount))
        return SY_LEDGER_BAD_AMOUNT;
    int rc = m->type_checked ? SY_OK : check_type(c, m->tenant, m->point_type);
    if (rc == SY_OK && !m->customer_checked)
        rc = check_customer(c, m->tenant, m->customer_no, res);
    if (rc == SY_OK)
        rc = check_key(c, m->tenant, m->idempotency_key, res);
    if (rc != SY_OK)
        return rc;
    int64_t balance;
    if ((rc = account_balance(c, m, &balance)) != SY_OK)
        return rc;
    open_lots lots = {0};
    if (balance > 0 && (rc = read_open_lots(c, m, &lots)) != SY_OK)
        goto out;
    if (balance - lots.due < m->amount) {
        res->balance = balance - lots.due;
        rc = SY_LEDGER_INSUFFICIENT;
        goto out;
    }
    if (lots.drawn != m->amount) { /* the unexpired lots hold balance - due */
        sy_error("ledger %s: customer %s type %s: lots hold %lld, not the %lld needed", m->tenant,
                 m->customer_no, m->point_type, (long long)lots.drawn, (long long)m->amount);
        rc = SY_ERR;
        goto out;
    }
    /* The rules hold: from here on, write. */
    if (lots.due > 0 &&
        (rc = expire_customer(c, m->tenant, m->customer_no, m->point_type, m->now_ms)) != SY_OK)
        goto out;
    char sink[ACCOUNT_MAX], customer[ACCOUNT_MAX];
    snprintf(sink, sizeof sink, "sink:%s", m->account ? m->account : "spend");
    customer_account(m->customer_no, customer);
    entry e = move_entry(m, "spend", customer, sink);
    if ((rc = insert_entry(c, &e)) == SY_OK)
        /* the balance read above, unless expired points were just taken */
        rc = apply_moves(c, &e, lots.draws, lots.n, -1, lots.due > 0 ? -1 : balance, &res->balance);
    if (rc == SY_OK)
        snprintf(res->entry_id, sizeof res->entry_id, "%s", e.id);
out:
    free(lots.draws);
    return rc;
}

/* ------------------------------------------------------------------ */
/* reverse                                                             */

typedef struct original {
    char kind[16], point_type[SY_POINT_TYPE_CODE_MAX + 1], customer_no[72];
    char debit[ACCOUNT_MAX], credit[ACCOUNT_MAX], reversed_by[SY_LEDGER_ID_MAX + 1];
    int64_t amount;
} original;

static int load_original(sy_conn *c, const char *tenant, const char *id, original *o)
{
    static const char sql[] =
        "SELECT kind, point_type, customer_no, amount, debit_account, credit_account, reversed_by"
        " FROM ledger_entries WHERE tenant_id = $1 AND id = $2";
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, id);
    int rc = sy_stmt_step(st);
    if (rc == SY_ROW) {
        snprintf(o->kind, sizeof o->kind, "%s", sy_stmt_text(st, 0));
        snprintf(o->point_type, sizeof o->point_type, "%s", sy_stmt_text(st, 1));
        snprintf(o->customer_no, sizeof o->customer_no, "%s", sy_stmt_text(st, 2));
        o->amount = sy_stmt_i64(st, 3);
        snprintf(o->debit, sizeof o->debit, "%s", sy_stmt_text(st, 4));
        snprintf(o->credit, sizeof o->credit, "%s", sy_stmt_text(st, 5));
        snprintf(o->reversed_by, sizeof o->reversed_by, "%s", sy_stmt_text(st, 6));
    }
    sy_stmt_reset(st);
    return rc == SY_ROW ? SY_OK : rc == SY_DONE ? SY_LEDGER_NO_ENTRY : rc;
}

/* What reversing the original moves: an earn's whole lot (which must
 * still hold all of it), or exactly the lots and amounts a spend drew. */
static int reversal_moves(sy_conn *c, const char *tenant, const char *id, const original *o,
                          lot_move **moves, size_t *n, sy_ledger_result *res)
{
    static const char sql_lot[] =
        "SELECT id, remaining FROM point_lots WHERE tenant_id = $1 AND entry_id = $2";
    static const char sql_alloc[] = "SELECT lot_id, amount FROM lot_allocations"
                                    " WHERE tenant_id = $1 AND entry_id = $2 ORDER BY lot_id";
    bool earn = !strcmp(o->kind, "earn");
    sy_stmt *st = sy_conn_prepare(c, earn ? sql_lot : sql_alloc);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, id);
    int64_t total;
    int rc = collect_moves(st, 0, moves, n, &total);
    if (rc != SY_OK)
        return rc;
    if (earn && *n == 1 && total < o->amount) {
        res->balance = total; /* what the lot still holds */
        return SY_LEDGER_POINTS_USED;
    }
    if (earn ? *n != 1 : total != o->amount) {
        sy_error("ledger %s: entry %s: its lots do not match its amount", tenant, id);
        return SY_ERR;
    }
    return SY_OK;
}

int sy_ledger_reverse(sy_conn *c, const sy_ledger_reversal *rv, sy_ledger_result *res)
{
    static const char sql_mark[] = "UPDATE ledger_entries SET reversed_by = $3"
                                   " WHERE tenant_id = $1 AND id = $2 AND reversed_by IS NULL";
    memset(res, 0, sizeof *res);
    original o;
    int rc = load_original(c, rv->tenant, rv->entry_id, &o);
    if (rc != SY_OK)
        return rc;
    if (strcmp(o.kind, "earn") != 0 && strcmp(o.kind, "spend") != 0)
        return SY_LEDGER_NOT_REVERSIBLE;
    if (o.reversed_by[0]) {
        snprintf(res->other, sizeof res->other, "%s", o.reversed_by);
        return SY_LEDGER_ALREADY_REVERSED;
    }
    if ((rc = check_customer(c, rv->tenant, o.customer_no, res)) != SY_OK ||
        (rc = check_key(c, rv->tenant, rv->idempotency_key, res)) != SY_OK)
        return rc;
    lot_move *moves = NULL;
    size_t n = 0;
    if ((rc = reversal_moves(c, rv->tenant, rv->entry_id, &o, &moves, &n, res)) != SY_OK) {
        free(moves);
        return rc;
    }
    /* The reversal moves the same points the other way: out of the
     * customer's account for an earn, back into it for a spend. */
    int sign = !strcmp(o.kind, "earn") ? -1 : +1;
    entry e = {.tenant = rv->tenant,
               .kind = "reverse",
               .point_type = o.point_type,
               .customer_no = o.customer_no,
               .amount = o.amount,
               .debit = o.credit,
               .credit = o.debit,
               .reason = rv->reason,
               .operator_id = rv->operator_id,
               .idempotency_key = rv->idempotency_key,
               .reverses = rv->entry_id,
               .now = rv->now_ms};
    if ((rc = insert_entry(c, &e)) == SY_OK)
        rc = apply_moves(c, &e, moves, n, sign, -1, &res->balance);
    free(moves);
    sy_stmt *st = rc == SY_OK ? sy_conn_prepare(c, sql_mark) : NULL;
    if (rc == SY_OK && !st)
        rc = SY_ERR;
    if (st) {
        sy_stmt_bind_text(st, 1, rv->tenant);
        sy_stmt_bind_text(st, 2, rv->entry_id);
        sy_stmt_bind_text(st, 3, e.id);
        if ((rc = sy_stmt_exec(st)) == SY_OK && sy_conn_changes(c) != 1)
            rc = SY_ERR;
    }
    if (rc == SY_OK)
        snprintf(res->entry_id, sizeof res->entry_id, "%s", e.id);
    return rc;
}

/* ------------------------------------------------------------------ */
/* invariants                                                          */

static const char chk_accounts[] =
    "SELECT customer_no, point_type, SUM(b), SUM(l), SUM(j) FROM ("
    " SELECT customer_no, point_type, balance AS b, 0 AS l, 0 AS j FROM point_accounts"
    " WHERE tenant_id = $1"
    " UNION ALL SELECT customer_no, point_type, 0, remaining, 0 FROM point_lots"
    " WHERE tenant_id = $1"
    " UNION ALL SELECT customer_no, point_type, 0, 0,"
    " CASE WHEN credit_account = 'customer:' || customer_no THEN amount ELSE -amount END"
    " FROM ledger_entries WHERE tenant_id = $1) x"
    " GROUP BY customer_no, point_type HAVING SUM(b) <> SUM(l) OR SUM(b) <> SUM(j)"
    " ORDER BY customer_no, point_type";

static void say_accounts(sy_stmt *st, char *line, size_t n)
{
    snprintf(line, n,
             "customer %s, type %s: balance %lld, expected %lld (the sum of its lots' remaining)"
             " and %lld (its journal credits - debits)",
             sy_stmt_text(st, 0), sy_stmt_text(st, 1), (long long)sy_stmt_i64(st, 2),
             (long long)sy_stmt_i64(st, 3), (long long)sy_stmt_i64(st, 4));
}

static const char chk_negative[] =
    "SELECT customer_no, point_type, balance FROM point_accounts"
    " WHERE tenant_id = $1 AND balance < 0 ORDER BY customer_no, point_type";

static void say_negative(sy_stmt *st, char *line, size_t n)
{
    snprintf(line, n, "customer %s, type %s: balance %lld, expected >= 0", sy_stmt_text(st, 0),
             sy_stmt_text(st, 1), (long long)sy_stmt_i64(st, 2));
}

static const char chk_lot_range[] =
    "SELECT id, customer_no, point_type, amount, remaining FROM point_lots"
    " WHERE tenant_id = $1 AND (remaining < 0 OR remaining > amount) ORDER BY id";

static void say_lot_range(sy_stmt *st, char *line, size_t n)
{
    snprintf(line, n, "customer %s, type %s: lot %lld holds %lld, expected 0 to %lld",
             sy_stmt_text(st, 1), sy_stmt_text(st, 2), (long long)sy_stmt_i64(st, 0),
             (long long)sy_stmt_i64(st, 4), (long long)sy_stmt_i64(st, 3));
}

static const char chk_lot_closed[] =
    "SELECT id, customer_no, point_type, remaining, closed FROM point_lots"
    " WHERE tenant_id = $1 AND (closed = 1) <> (remaining = 0) ORDER BY id";

static void say_lot_closed(sy_stmt *st, char *line, size_t n)
{
    snprintf(line, n, "customer %s, type %s: lot %lld holds %lld but is %s", sy_stmt_text(st, 1),
             sy_stmt_text(st, 2), (long long)sy_stmt_i64(st, 0), (long long)sy_stmt_i64(st, 3),
             sy_stmt_i64(st, 4) ? "closed" : "open");
}

/* Allocations are summed per lot first (one pass over them, grouped), then
 * joined to the lots: a join from each lot to its allocations would scan
 * every allocation per lot, as no index leads with the lot (0009). */
static const char chk_lot_allocations[] =
    "SELECT l.id, l.customer_no, l.point_type, l.remaining, COALESCE(x.net, 0)"
    " FROM point_lots l LEFT JOIN ("
    " SELECT a.lot_id AS lot_id, SUM(CASE WHEN e.credit_account = 'customer:' || al.customer_no"
    " THEN a.amount ELSE -a.amount END) AS net"
    " FROM lot_allocations a"
    " JOIN point_lots al ON al.tenant_id = a.tenant_id AND al.id = a.lot_id"
    " LEFT JOIN ledger_entries e ON e.tenant_id = a.tenant_id AND e.id = a.entry_id"
    " WHERE a.tenant_id = $1 GROUP BY a.lot_id) x ON x.lot_id = l.id"
    " WHERE l.tenant_id = $1 AND COALESCE(x.net, 0) <> l.remaining ORDER BY l.id";

static void say_lot_allocations(sy_stmt *st, char *line, size_t n)
{
    snprintf(line, n,
             "customer %s, type %s: lot %lld holds %lld, expected %lld (what its allocations put"
             " in minus what they drew)",
             sy_stmt_text(st, 1), sy_stmt_text(st, 2), (long long)sy_stmt_i64(st, 0),
             (long long)sy_stmt_i64(st, 3), (long long)sy_stmt_i64(st, 4));
}

static const char chk_entry_allocations[] =
    "SELECT e.id, e.kind, e.customer_no, e.point_type, e.amount, COALESCE(SUM(a.amount), 0),"
    " SUM(CASE WHEN a.lot_id IS NOT NULL AND (l.id IS NULL OR l.customer_no <> e.customer_no"
    " OR l.point_type <> e.point_type) THEN 1 ELSE 0 END)"
    " FROM ledger_entries e"
    " LEFT JOIN lot_allocations a ON a.tenant_id = e.tenant_id AND a.entry_id = e.id"
    " LEFT JOIN point_lots l ON l.tenant_id = a.tenant_id AND l.id = a.lot_id"
    " WHERE e.tenant_id = $1 GROUP BY e.id, e.kind, e.customer_no, e.point_type, e.amount"
    " HAVING COALESCE(SUM(a.amount), 0) <> e.amount OR SUM(CASE WHEN a.lot_id IS NOT NULL AND"
    " (l.id IS NULL OR l.customer_no <> e.customer_no OR l.point_type <> e.point_type)"
    " THEN 1 ELSE 0 END) > 0 ORDER BY e.id";

static void say_entry_allocations(sy_stmt *st, char *line, size_t n)
{
    snprintf(line, n, "customer %s, type %s: %s entry %s moves %lld, its allocations %lld%s",
             sy_stmt_text(st, 2), sy_stmt_text(st, 3), sy_stmt_text(st, 1), sy_stmt_text(st, 0),
             (long long)sy_stmt_i64(st, 4), (long long)sy_stmt_i64(st, 5),
             sy_stmt_i64(st, 6) ? " (some name another customer's, another type's or no lot)" : "");
}

static const char chk_orphans[] =
    "SELECT a.entry_id, a.lot_id FROM lot_allocations a LEFT JOIN ledger_entries e"
    " ON e.tenant_id = a.tenant_id AND e.id = a.entry_id"
    " WHERE a.tenant_id = $1 AND e.id IS NULL ORDER BY a.entry_id, a.lot_id";

static void say_orphans(sy_stmt *st, char *line, size_t n)
{
    snprintf(line, n, "allocation of lot %lld names entry %s, which does not exist",
             (long long)sy_stmt_i64(st, 1), sy_stmt_text(st, 0));
}

static const char chk_kinds[] =
    "SELECT id, kind, customer_no, point_type, debit_account, credit_account FROM ledger_entries"
    " WHERE tenant_id = $1 AND NOT ("
    " (kind = 'earn' AND credit_account = 'customer:' || customer_no"
    " AND debit_account LIKE 'source:%' AND reverses IS NULL)"
    " OR (kind = 'spend' AND debit_account = 'customer:' || customer_no"
    " AND credit_account LIKE 'sink:%' AND reverses IS NULL)"
    " OR (kind = 'expire' AND debit_account = 'customer:' || customer_no"
    " AND credit_account = 'expired' AND reverses IS NULL AND reversed_by IS NULL)"
    " OR (kind = 'reverse' AND reverses IS NOT NULL AND reversed_by IS NULL"
    " AND (credit_account = 'customer:' || customer_no"
    " OR debit_account = 'customer:' || customer_no))) ORDER BY seq";

static void say_kinds(sy_stmt *st, char *line, size_t n)
{
    snprintf(line, n, "customer %s, type %s: %s entry %s moves %s -> %s, which does not fit",
             sy_stmt_text(st, 2), sy_stmt_text(st, 3), sy_stmt_text(st, 1), sy_stmt_text(st, 0),
             sy_stmt_text(st, 4), sy_stmt_text(st, 5));
}

static const char chk_earn_lots[] =
    "SELECT e.id, e.customer_no, e.point_type, e.amount, COUNT(l.id), COALESCE(MAX(l.amount), 0)"
    " FROM ledger_entries e LEFT JOIN point_lots l ON l.tenant_id = e.tenant_id"
    " AND l.entry_id = e.id AND l.customer_no = e.customer_no AND l.point_type = e.point_type"
    " WHERE e.tenant_id = $1 AND e.kind = 'earn' GROUP BY e.id, e.customer_no, e.point_type,"
    " e.amount HAVING COUNT(l.id) <> 1 OR MAX(l.amount) <> e.amount ORDER BY e.id";

static void say_earn_lots(sy_stmt *st, char *line, size_t n)
{
    snprintf(line, n,
             "customer %s, type %s: earn %s of %lld has %lld lots of %lld, expected one lot of"
             " that amount",
             sy_stmt_text(st, 1), sy_stmt_text(st, 2), sy_stmt_text(st, 0),
             (long long)sy_stmt_i64(st, 3), (long long)sy_stmt_i64(st, 4),
             (long long)sy_stmt_i64(st, 5));
}

static const char chk_lot_earns[] =
    "SELECT l.id, l.customer_no, l.point_type, l.entry_id FROM point_lots l"
    " LEFT JOIN ledger_entries e ON e.tenant_id = l.tenant_id AND e.id = l.entry_id"
    " WHERE l.tenant_id = $1 AND (e.id IS NULL OR e.kind <> 'earn') ORDER BY l.id";

static void say_lot_earns(sy_stmt *st, char *line, size_t n)
{
    snprintf(line, n, "customer %s, type %s: lot %lld was made by %s, which is not an earn",
             sy_stmt_text(st, 1), sy_stmt_text(st, 2), (long long)sy_stmt_i64(st, 0),
             sy_stmt_text(st, 3));
}

static const char chk_reversed_once[] =
    "SELECT o.id, o.customer_no, o.point_type, COALESCE(o.reversed_by, '-'), COUNT(r.id)"
    " FROM ledger_entries o LEFT JOIN ledger_entries r ON r.tenant_id = o.tenant_id"
    " AND r.reverses = o.id WHERE o.tenant_id = $1"
    " AND (o.reversed_by IS NOT NULL OR r.id IS NOT NULL)"
    " GROUP BY o.id, o.customer_no, o.point_type, o.reversed_by"
    " HAVING COUNT(r.id) <> 1 OR o.reversed_by IS NULL OR MIN(r.id) <> o.reversed_by"
    " ORDER BY o.id";

static void say_reversed_once(sy_stmt *st, char *line, size_t n)
{
    snprintf(line, n,
             "customer %s, type %s: entry %s is marked reversed by %s and has %lld reversals,"
             " expected exactly one, the one it names",
             sy_stmt_text(st, 1), sy_stmt_text(st, 2), sy_stmt_text(st, 0), sy_stmt_text(st, 3),
             (long long)sy_stmt_i64(st, 4));
}

static const char chk_mirrors[] =
    "SELECT r.id, r.customer_no, r.point_type, r.reverses FROM ledger_entries r"
    " LEFT JOIN ledger_entries o ON o.tenant_id = r.tenant_id AND o.id = r.reverses"
    " WHERE r.tenant_id = $1 AND r.kind = 'reverse' AND (o.id IS NULL"
    " OR o.kind NOT IN ('earn', 'spend') OR r.amount <> o.amount"
    " OR r.point_type <> o.point_type OR r.customer_no <> o.customer_no"
    " OR r.debit_account <> o.credit_account OR r.credit_account <> o.debit_account)"
    " ORDER BY r.id";

static void say_mirrors(sy_stmt *st, char *line, size_t n)
{
    snprintf(line, n,
             "customer %s, type %s: reversal %s does not mirror %s (an earn or spend of the same"
             " customer, type and amount, accounts swapped)",
             sy_stmt_text(st, 1), sy_stmt_text(st, 2), sy_stmt_text(st, 0), sy_stmt_text(st, 3));
}

/* A spend's reversal puts back exactly what the spend drew, lot by lot
 * (both sum to the amount, so one-way inclusion suffices). */
static const char chk_restored[] =
    "SELECT r.id, r.customer_no, r.point_type, r.reverses, ra.lot_id FROM ledger_entries r"
    " JOIN ledger_entries o ON o.tenant_id = r.tenant_id AND o.id = r.reverses"
    " AND o.kind = 'spend'"
    " JOIN lot_allocations ra ON ra.tenant_id = r.tenant_id AND ra.entry_id = r.id"
    " LEFT JOIN lot_allocations oa ON oa.tenant_id = o.tenant_id AND oa.entry_id = o.id"
    " AND oa.lot_id = ra.lot_id"
    " WHERE r.tenant_id = $1 AND r.kind = 'reverse' AND (oa.lot_id IS NULL"
    " OR oa.amount <> ra.amount) ORDER BY r.id, ra.lot_id";

static void say_restored(sy_stmt *st, char *line, size_t n)
{
    snprintf(line, n,
             "customer %s, type %s: reversal %s puts points into lot %lld otherwise than spend"
             " %s drew from it",
             sy_stmt_text(st, 1), sy_stmt_text(st, 2), sy_stmt_text(st, 0),
             (long long)sy_stmt_i64(st, 4), sy_stmt_text(st, 3));
}

static const sy_check_query k_checks[] = {
    {chk_accounts, say_accounts},
    {chk_negative, say_negative},
    {chk_lot_range, say_lot_range},
    {chk_lot_closed, say_lot_closed},
    {chk_lot_allocations, say_lot_allocations},
    {chk_entry_allocations, say_entry_allocations},
    {chk_orphans, say_orphans},
    {chk_kinds, say_kinds},
    {chk_earn_lots, say_earn_lots},
    {chk_lot_earns, say_lot_earns},
    {chk_reversed_once, say_reversed_once},
    {chk_mirrors, say_mirrors},
    {chk_restored, say_restored},
};

int sy_ledger_check(sy_conn *c, const char *tenant, void (*report)(void *ud, const char *line),
                    void *ud, int64_t *violations, int64_t *checked)
{
    static const char sql_count[] =
        "SELECT (SELECT COUNT(*) FROM point_accounts WHERE tenant_id = $1)"
        " + (SELECT COUNT(*) FROM point_lots WHERE tenant_id = $1)"
        " + (SELECT COUNT(*) FROM ledger_entries WHERE tenant_id = $1)";
    return sy_check_queries(c, tenant, sql_count, k_checks, SY_ARRAY_LEN(k_checks), report, ud,
                            violations, checked);
}

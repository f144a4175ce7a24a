/* test_ledger.c — the points ledger's rules (src/ledger.c) on a temporary
 * store: spending order (soonest expiry first, never-expiring last, then
 * the oldest lot), exact allocations, reversals, the expiry job with an
 * injected clock, expiry moments across time zones, the never-negative
 * rule, the invariant check (and that it catches broken data), and a
 * random sequence of operations against a simple model. */
#include "unit/store_fixture.h"

#include "ledger.h"
#include "tenant.h"
#include "util.h"

#include <sodium.h>

#define DAY 86400000LL
#define T0 1767225600000LL /* 2026-01-01T00:00:00Z */

typedef struct fx {
    char *dir;
    sy_store *s;
    sy_conn *c;
} fx;

static void exec_sql(sy_conn *c, const char *sql)
{
    if (sy_conn_exec(c, sql) != SY_OK)
        fail_msg("%s: %s", sql, sy_conn_errmsg(c));
}

static void add_customer(sy_conn *c, const char *tenant, const char *no, int64_t dense)
{
    static const char sql[] = "INSERT INTO customers (tenant_id, customer_no, dense_id,"
                              " created_at, updated_at) VALUES ($1, $2, $3, 0, 0)";
    sy_stmt *st = sy_conn_prepare(c, sql);
    assert_non_null(st);
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, no);
    sy_stmt_bind_i64(st, 3, dense);
    assert_int_equal(sy_stmt_exec(st), SY_OK);
}

static void add_type(sy_conn *c, const char *tenant, const char *code, sy_point_expiry e, int n)
{
    sy_point_type t = {.expiry = e, .n = n, .created_at = T0};
    snprintf(t.code, sizeof t.code, "%s", code);
    snprintf(t.name, sizeof t.name, "type %s", code);
    assert_int_equal(sy_ledger_type_create(c, tenant, &t), SY_OK);
}

static int setup(void **state)
{
    assert_true(sodium_init() >= 0);
    sy_log_set_level(SY_LOG_ERROR);
    fx *f = calloc(1, sizeof *f);
    f->dir = tu_tempdir();
    f->s = tu_store_open(f->dir, true);
    f->c = sy_store_write_conn(f->s);
    assert_int_equal(sy_tenant_create(f->c, "t1", "T1", "Asia/Shanghai", T0), SY_OK);
    assert_int_equal(sy_tenant_create(f->c, "ny", "NY", "America/New_York", T0), SY_OK);
    for (int i = 0; i < 4; i++) {
        char no[16];
        snprintf(no, sizeof no, "C%d", i + 1);
        add_customer(f->c, "t1", no, i);
        add_customer(f->c, "ny", no, i);
    }
    add_type(f->c, "t1", "points", SY_EXPIRY_NEVER, 0);
    add_type(f->c, "t1", "sun", SY_EXPIRY_DAYS, 30);
    add_type(f->c, "t1", "yearly", SY_EXPIRY_YEAR_END, 1);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    sy_store_close(f->s);
    tu_rmtree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

/* ---- helpers ---- */

static int do_earn(fx *f, const char *no, const char *type, int64_t amount, int64_t now,
                   sy_ledger_result *res)
{
    sy_ledger_move m = {.tenant = "t1",
                        .customer_no = no,
                        .point_type = type,
                        .amount = amount,
                        .account = "campaign:test",
                        .reason = "test",
                        .operator_id = "key_test",
                        .now_ms = now};
    return sy_ledger_earn(f->c, &m, res);
}

/* Earns and returns the new entry's id (static storage, 8 slots). */
static const char *earn(fx *f, const char *no, const char *type, int64_t amount, int64_t now)
{
    static char ids[8][SY_LEDGER_ID_MAX + 1];
    static int next;
    sy_ledger_result res;
    int rc = do_earn(f, no, type, amount, now, &res);
    if (rc != SY_OK)
        fail_msg("earn %lld %s for %s: %d %s", (long long)amount, type, no, rc,
                 sy_conn_errmsg(f->c));
    char *id = ids[next++ % 8];
    snprintf(id, SY_LEDGER_ID_MAX + 1, "%s", res.entry_id);
    return id;
}

static int do_spend(fx *f, const char *no, const char *type, int64_t amount, int64_t now,
                    sy_ledger_result *res)
{
    sy_ledger_move m = {.tenant = "t1",
                        .customer_no = no,
                        .point_type = type,
                        .amount = amount,
                        .reason = "test",
                        .operator_id = "key_test",
                        .now_ms = now};
    return sy_ledger_spend(f->c, &m, res);
}

static int do_reverse(fx *f, const char *id, int64_t now, sy_ledger_result *res)
{
    sy_ledger_reversal rv = {
        .tenant = "t1", .entry_id = id, .reason = "test", .operator_id = "key_test", .now_ms = now};
    return sy_ledger_reverse(f->c, &rv, res);
}

static int64_t query_i64(fx *f, const char *sql, const char *a, const char *b, const char *c3)
{
    sy_stmt *st = sy_conn_prepare(f->c, sql);
    assert_non_null(st);
    sy_stmt_bind_text(st, 1, a);
    if (b)
        sy_stmt_bind_text(st, 2, b);
    if (c3)
        sy_stmt_bind_text(st, 3, c3);
    int rc = sy_stmt_step(st);
    int64_t v = rc == SY_ROW ? sy_stmt_i64(st, 0) : -1;
    sy_stmt_reset(st);
    return v;
}

static int64_t balance(fx *f, const char *no, const char *type)
{
    static const char sql[] = "SELECT COALESCE(MAX(balance), 0) FROM point_accounts"
                              " WHERE tenant_id = 't1' AND customer_no = $1 AND point_type = $2";
    return query_i64(f, sql, no, type, NULL);
}

/* What the lot made by earn entry id still holds. */
static int64_t lot_left(fx *f, const char *earn_id)
{
    static const char sql[] = "SELECT remaining FROM point_lots WHERE entry_id = $1";
    return query_i64(f, sql, earn_id, NULL, NULL);
}

/* What entry id moved out of (or into) the lot of earn entry lot_of. */
static int64_t allocated(fx *f, const char *id, const char *lot_of)
{
    static const char sql[] =
        "SELECT COALESCE(SUM(a.amount), 0) FROM lot_allocations a JOIN point_lots l"
        " ON l.id = a.lot_id WHERE a.entry_id = $1 AND l.entry_id = $2";
    return query_i64(f, sql, id, lot_of, NULL);
}

static int64_t entries(fx *f)
{
    static const char sql[] = "SELECT COUNT(*) FROM ledger_entries WHERE tenant_id = $1";
    return query_i64(f, sql, "t1", NULL, NULL);
}

static void collect_line(void *ud, const char *line)
{
    sy_buf *b = ud;
    sy_buf_printf(b, "%s\n", line);
}

/* Runs the invariant check; returns the number of violations, with their
 * text in *text (malloc'd) when text is given. */
static int64_t check(fx *f, const char *tenant, char **text)
{
    sy_buf b = {0};
    int64_t violations, checked;
    assert_int_equal(sy_ledger_check(f->c, tenant, collect_line, &b, &violations, &checked), SY_OK);
    if (text)
        *text = sy_buf_steal(&b);
    else if (violations)
        fail_msg("ledger invariants broken:\n%s", b.data);
    sy_buf_free(&b);
    return violations;
}

/* ---- spending order ---- */

static void test_spend_draws_soonest_expiry_first(void **state)
{
    fx *f = *state;
    /* Earned out of clock order, so expiry order differs from lot order:
     * b (earned day 1) expires before a (day 10) and c (day 20). */
    const char *a = earn(f, "C1", "sun", 100, T0 + 10 * DAY);
    const char *b = earn(f, "C1", "sun", 50, T0 + 1 * DAY);
    const char *c = earn(f, "C1", "sun", 70, T0 + 20 * DAY);
    sy_ledger_result res;
    assert_int_equal(do_spend(f, "C1", "sun", 80, T0 + 21 * DAY, &res), SY_OK);
    assert_int_equal(res.balance, 140);
    assert_int_equal(allocated(f, res.entry_id, b), 50);
    assert_int_equal(allocated(f, res.entry_id, a), 30);
    assert_int_equal(allocated(f, res.entry_id, c), 0);
    assert_int_equal(lot_left(f, b), 0);
    assert_int_equal(lot_left(f, a), 70);
    assert_int_equal(lot_left(f, c), 70);
    /* The next spend goes on with a, then c. */
    assert_int_equal(do_spend(f, "C1", "sun", 100, T0 + 21 * DAY, &res), SY_OK);
    assert_int_equal(allocated(f, res.entry_id, a), 70);
    assert_int_equal(allocated(f, res.entry_id, c), 30);
    assert_int_equal(balance(f, "C1", "sun"), 40);
    check(f, "t1", NULL);
}

static void test_same_expiry_oldest_lot_first(void **state)
{
    fx *f = *state;
    /* Same day of earning: the same expiry; the older lot goes first. */
    const char *a = earn(f, "C1", "sun", 10, T0 + 1000);
    const char *b = earn(f, "C1", "sun", 10, T0 + 2000);
    sy_ledger_result res;
    assert_int_equal(do_spend(f, "C1", "sun", 15, T0 + 3000, &res), SY_OK);
    assert_int_equal(allocated(f, res.entry_id, a), 10);
    assert_int_equal(allocated(f, res.entry_id, b), 5);
    check(f, "t1", NULL);
}

static void test_never_expiring_lots_last(void **state)
{
    fx *f = *state;
    /* A type's lots all follow its policy; lots of mixed expiry within a
     * type come from a policy change (made here by hand).  Lots that never
     * expire go last, whatever their age. */
    const char *old = earn(f, "C2", "sun", 40, T0);
    const char *mid = earn(f, "C2", "sun", 40, T0 + DAY);
    const char *late = earn(f, "C2", "sun", 40, T0 + 2 * DAY);
    static const char sql[] = "UPDATE point_lots SET expires_at = NULL WHERE entry_id = $1";
    sy_stmt *st = sy_conn_prepare(f->c, sql);
    sy_stmt_bind_text(st, 1, old);
    assert_int_equal(sy_stmt_exec(st), SY_OK);
    sy_ledger_result res;
    assert_int_equal(do_spend(f, "C2", "sun", 60, T0 + 3 * DAY, &res), SY_OK);
    assert_int_equal(allocated(f, res.entry_id, mid), 40);
    assert_int_equal(allocated(f, res.entry_id, late), 20);
    assert_int_equal(allocated(f, res.entry_id, old), 0);
    assert_int_equal(do_spend(f, "C2", "sun", 50, T0 + 3 * DAY, &res), SY_OK);
    assert_int_equal(allocated(f, res.entry_id, late), 20);
    assert_int_equal(allocated(f, res.entry_id, old), 30);
    assert_int_equal(lot_left(f, old), 10);
    check(f, "t1", NULL);
}

static void test_exact_allocations_and_entry(void **state)
{
    fx *f = *state;
    const char *a = earn(f, "C1", "points", 100, T0);
    const char *b = earn(f, "C1", "points", 50, T0 + 1);
    sy_ledger_result res;
    assert_int_equal(do_spend(f, "C1", "points", 120, T0 + 2, &res), SY_OK);
    assert_int_equal(allocated(f, res.entry_id, a), 100);
    assert_int_equal(allocated(f, res.entry_id, b), 20);
    static const char sql[] =
        "SELECT COUNT(*) FROM ledger_entries WHERE id = $1 AND kind = 'spend' AND amount = 120"
        " AND debit_account = 'customer:C1' AND credit_account = 'sink:spend'"
        " AND operator = 'key_test' AND reason = 'test' AND point_type = $2";
    assert_int_equal(query_i64(f, sql, res.entry_id, "points", NULL), 1);
    static const char sql_earn[] =
        "SELECT COUNT(*) FROM ledger_entries WHERE id = $1 AND kind = 'earn'"
        " AND debit_account = 'source:campaign:test' AND credit_account = 'customer:C1'";
    assert_int_equal(query_i64(f, sql_earn, a, NULL, NULL), 1);
    /* every entry's allocations sum to its amount, an earn's included */
    assert_int_equal(allocated(f, a, a), 100);
    check(f, "t1", NULL);
}

/* ---- the never-negative rule ---- */

static void test_balance_never_negative(void **state)
{
    fx *f = *state;
    sy_ledger_result res;
    assert_int_equal(do_spend(f, "C3", "points", 1, T0, &res), SY_LEDGER_INSUFFICIENT);
    assert_int_equal(res.balance, 0);
    earn(f, "C3", "points", 30, T0);
    int64_t n = entries(f);
    assert_int_equal(do_spend(f, "C3", "points", 31, T0, &res), SY_LEDGER_INSUFFICIENT);
    assert_int_equal(res.balance, 30);
    assert_int_equal(entries(f), n); /* a refusal writes nothing */
    assert_int_equal(balance(f, "C3", "points"), 30);
    assert_int_equal(do_spend(f, "C3", "points", 30, T0, &res), SY_OK);
    assert_int_equal(res.balance, 0);
    assert_int_equal(do_spend(f, "C3", "points", 1, T0, &res), SY_LEDGER_INSUFFICIENT);
    assert_int_equal(balance(f, "C3", "points"), 0);
    /* and the store refuses a negative balance even if a rule were skipped */
    assert_int_not_equal(sy_conn_exec(f->c, "UPDATE point_accounts SET balance = -1"
                                            " WHERE customer_no = 'C3'"),
                         SY_OK);
    check(f, "t1", NULL);
}

static void test_points_past_expiry_do_not_count(void **state)
{
    fx *f = *state;
    const char *a = earn(f, "C1", "sun", 60, T0);            /* expires T0 + 31 days */
    const char *b = earn(f, "C1", "sun", 40, T0 + 10 * DAY); /* expires T0 + 41 days */
    int64_t later = T0 + 35 * DAY;                           /* a is due, the job has not run */
    int64_t n = entries(f);
    sy_ledger_result res;
    assert_int_equal(do_spend(f, "C1", "sun", 50, later, &res), SY_LEDGER_INSUFFICIENT);
    assert_int_equal(res.balance, 40);
    assert_int_equal(entries(f), n); /* nothing written, not even the expiry */
    assert_int_equal(do_spend(f, "C1", "sun", 30, later, &res), SY_OK);
    assert_int_equal(res.balance, 10);
    assert_int_equal(lot_left(f, a), 0); /* expired on the way */
    assert_int_equal(allocated(f, res.entry_id, b), 30);
    static const char sql[] = "SELECT COUNT(*) FROM ledger_entries WHERE kind = 'expire'"
                              " AND amount = 60 AND customer_no = $1 AND operator = $2";
    assert_int_equal(query_i64(f, sql, "C1", SY_LEDGER_EXPIRY_OPERATOR, NULL), 1);
    check(f, "t1", NULL);
}

/* ---- reversals ---- */

static void test_reverse_spend_restores_the_same_lots(void **state)
{
    fx *f = *state;
    const char *a = earn(f, "C1", "sun", 100, T0);
    const char *b = earn(f, "C1", "sun", 50, T0 + DAY);
    sy_ledger_result sp, rv;
    assert_int_equal(do_spend(f, "C1", "sun", 120, T0 + 2 * DAY, &sp), SY_OK);
    /* another spend in between takes b's last 30 */
    sy_ledger_result sp2;
    assert_int_equal(do_spend(f, "C1", "sun", 30, T0 + 2 * DAY, &sp2), SY_OK);
    assert_int_equal(lot_left(f, b), 0);
    assert_int_equal(do_reverse(f, sp.entry_id, T0 + 3 * DAY, &rv), SY_OK);
    assert_int_equal(rv.balance, 120);
    assert_int_equal(lot_left(f, a), 100);
    assert_int_equal(lot_left(f, b), 20);
    assert_int_equal(allocated(f, rv.entry_id, a), 100);
    assert_int_equal(allocated(f, rv.entry_id, b), 20);
    static const char sql[] =
        "SELECT COUNT(*) FROM ledger_entries r JOIN ledger_entries o ON o.id = r.reverses"
        " WHERE r.id = $1 AND o.id = $2 AND o.reversed_by = r.id AND r.kind = 'reverse'"
        " AND r.debit_account = o.credit_account AND r.credit_account = o.debit_account"
        " AND r.amount = o.amount";
    assert_int_equal(query_i64(f, sql, rv.entry_id, sp.entry_id, NULL), 1);
    check(f, "t1", NULL);
    /* b was emptied (closed) and the reversal opened it again: a spend
     * draws from it */
    sy_ledger_result sp3;
    assert_int_equal(do_spend(f, "C1", "sun", 120, T0 + 3 * DAY, &sp3), SY_OK);
    assert_int_equal(lot_left(f, a), 0);
    assert_int_equal(lot_left(f, b), 0);
    assert_int_equal(balance(f, "C1", "sun"), 0);
    check(f, "t1", NULL);
}

static void test_reverse_spend_into_expired_lot_expires_again(void **state)
{
    fx *f = *state;
    const char *a = earn(f, "C1", "sun", 100, T0); /* expires T0 + 31 days */
    sy_ledger_result sp, rv;
    assert_int_equal(do_spend(f, "C1", "sun", 100, T0 + DAY, &sp), SY_OK);
    int64_t later = T0 + 40 * DAY;
    sy_ledger_expiry ex;
    assert_int_equal(sy_ledger_expire(f->c, "t1", later, 100, NULL, NULL, &ex), SY_OK);
    assert_int_equal(ex.entries, 0); /* nothing left in it to expire */
    assert_int_equal(do_reverse(f, sp.entry_id, later, &rv), SY_OK);
    assert_int_equal(lot_left(f, a), 100); /* back in its lot, past its expiry */
    assert_int_equal(balance(f, "C1", "sun"), 100);
    /* and not spendable: */
    sy_ledger_result res;
    assert_int_equal(do_spend(f, "C1", "sun", 1, later, &res), SY_LEDGER_INSUFFICIENT);
    assert_int_equal(sy_ledger_expire(f->c, "t1", later, 100, NULL, NULL, &ex), SY_OK);
    assert_int_equal(ex.entries, 1);
    assert_int_equal(ex.points, 100);
    assert_int_equal(balance(f, "C1", "sun"), 0);
    check(f, "t1", NULL);
}

static void test_reverse_earn(void **state)
{
    fx *f = *state;
    const char *a = earn(f, "C1", "points", 100, T0);
    earn(f, "C1", "points", 10, T0 + 1);
    sy_ledger_result res;
    assert_int_equal(do_reverse(f, a, T0 + 2, &res), SY_OK);
    assert_int_equal(res.balance, 10);
    assert_int_equal(lot_left(f, a), 0);
    static const char sql[] =
        "SELECT COUNT(*) FROM ledger_entries WHERE id = $1 AND kind = 'reverse'"
        " AND debit_account = 'customer:C1' AND credit_account = 'source:campaign:test'";
    assert_int_equal(query_i64(f, sql, res.entry_id, NULL, NULL), 1);
    /* its points are gone: a spend of them is refused */
    assert_int_equal(do_spend(f, "C1", "points", 11, T0 + 3, &res), SY_LEDGER_INSUFFICIENT);
    check(f, "t1", NULL);
}

static void test_reverse_earn_refused_when_partly_spent(void **state)
{
    fx *f = *state;
    const char *a = earn(f, "C1", "points", 100, T0);
    sy_ledger_result sp, res;
    assert_int_equal(do_spend(f, "C1", "points", 30, T0 + 1, &sp), SY_OK);
    int64_t n = entries(f);
    assert_int_equal(do_reverse(f, a, T0 + 2, &res), SY_LEDGER_POINTS_USED);
    assert_int_equal(res.balance, 70); /* what the lot still holds */
    assert_int_equal(entries(f), n);
    assert_int_equal(lot_left(f, a), 100 - 30);
    /* after the spend is reversed, the earn can be */
    assert_int_equal(do_reverse(f, sp.entry_id, T0 + 3, &res), SY_OK);
    assert_int_equal(do_reverse(f, a, T0 + 4, &res), SY_OK);
    assert_int_equal(balance(f, "C1", "points"), 0);
    check(f, "t1", NULL);
}

static void test_reverse_earn_refused_when_expired(void **state)
{
    fx *f = *state;
    const char *a = earn(f, "C1", "sun", 100, T0);
    sy_ledger_expiry ex;
    assert_int_equal(sy_ledger_expire(f->c, "t1", T0 + 40 * DAY, 100, NULL, NULL, &ex), SY_OK);
    sy_ledger_result res;
    assert_int_equal(do_reverse(f, a, T0 + 40 * DAY, &res), SY_LEDGER_POINTS_USED);
    assert_int_equal(res.balance, 0);
    check(f, "t1", NULL);
}

static void test_double_reversal_refused(void **state)
{
    fx *f = *state;
    earn(f, "C1", "points", 100, T0);
    sy_ledger_result sp, r1, r2;
    assert_int_equal(do_spend(f, "C1", "points", 40, T0, &sp), SY_OK);
    assert_int_equal(do_reverse(f, sp.entry_id, T0, &r1), SY_OK);
    int64_t n = entries(f);
    assert_int_equal(do_reverse(f, sp.entry_id, T0, &r2), SY_LEDGER_ALREADY_REVERSED);
    assert_string_equal(r2.other, r1.entry_id);
    /* a reversal cannot be reversed (reverse the original's effect anew
     * with an earn or a spend) */
    assert_int_equal(do_reverse(f, r1.entry_id, T0, &r2), SY_LEDGER_NOT_REVERSIBLE);
    assert_int_equal(do_reverse(f, "le_0000000000000000", T0, &r2), SY_LEDGER_NO_ENTRY);
    assert_int_equal(entries(f), n);
    assert_int_equal(balance(f, "C1", "points"), 100);
    /* the store itself refuses a second reversal of an entry */
    static const char sql[] =
        "INSERT INTO ledger_entries (tenant_id, id, kind, point_type, customer_no, amount,"
        " debit_account, credit_account, operator, reverses, created_at) VALUES ('t1', 'le_x',"
        " 'reverse', 'points', 'C1', 40, 'sink:spend', 'customer:C1', 'x', $1, 0)";
    sy_stmt *st = sy_conn_prepare(f->c, sql);
    sy_stmt_bind_text(st, 1, sp.entry_id);
    assert_int_equal(sy_stmt_exec(st), SY_ECONSTRAINT);
    check(f, "t1", NULL);
}

static void test_expiry_entries_not_reversible(void **state)
{
    fx *f = *state;
    earn(f, "C1", "sun", 100, T0);
    static char id[SY_LEDGER_ID_MAX + 1];
    assert_int_equal(
        sy_ledger_expire(f->c, "t1", T0 + 40 * DAY, 100, NULL, NULL, &(sy_ledger_expiry){0}),
        SY_OK);
    static const char sql[] = "SELECT id FROM ledger_entries WHERE kind = 'expire'";
    sy_stmt *st = sy_conn_prepare(f->c, sql);
    assert_int_equal(sy_stmt_step(st), SY_ROW);
    snprintf(id, sizeof id, "%s", sy_stmt_text(st, 0));
    sy_stmt_reset(st);
    sy_ledger_result res;
    assert_int_equal(do_reverse(f, id, T0 + 40 * DAY, &res), SY_LEDGER_NOT_REVERSIBLE);
}

/* ---- refusals of input ---- */

static void test_refusals(void **state)
{
    fx *f = *state;
    sy_ledger_result res;
    int64_t n = entries(f);
    assert_int_equal(do_earn(f, "C1", "nope", 10, T0, &res), SY_LEDGER_UNKNOWN_TYPE);
    assert_int_equal(do_spend(f, "C1", "nope", 10, T0, &res), SY_LEDGER_UNKNOWN_TYPE);
    assert_int_equal(do_earn(f, "C9", "points", 10, T0, &res), SY_LEDGER_NO_CUSTOMER);
    assert_int_equal(do_earn(f, "C1", "points", 0, T0, &res), SY_LEDGER_BAD_AMOUNT);
    assert_int_equal(do_earn(f, "C1", "points", -5, T0, &res), SY_LEDGER_BAD_AMOUNT);
    assert_int_equal(do_earn(f, "C1", "points", SY_LEDGER_MAX_AMOUNT + 1, T0, &res),
                     SY_LEDGER_BAD_AMOUNT);
    assert_int_equal(do_spend(f, "C1", "points", 0, T0, &res), SY_LEDGER_BAD_AMOUNT);
    /* a merged customer takes no more points */
    exec_sql(f->c, "UPDATE customers SET merged_into = 'C2' WHERE tenant_id = 't1'"
                   " AND customer_no = 'C4'");
    assert_int_equal(do_earn(f, "C4", "points", 10, T0, &res), SY_LEDGER_MERGED);
    assert_string_equal(res.other, "C2");
    assert_int_equal(entries(f), n);
    /* a point type exists once */
    sy_point_type t = {.code = "points", .name = "again"};
    assert_int_equal(sy_ledger_type_create(f->c, "t1", &t), SY_LEDGER_TYPE_EXISTS);
    /* the tenant is part of every lookup */
    sy_ledger_move m = {.tenant = "ny",
                        .customer_no = "C1",
                        .point_type = "points",
                        .amount = 1,
                        .operator_id = "x",
                        .now_ms = T0};
    assert_int_equal(sy_ledger_earn(f->c, &m, &res), SY_LEDGER_UNKNOWN_TYPE);
}

static void test_idempotency_key_in_the_journal(void **state)
{
    fx *f = *state;
    sy_ledger_move m = {.tenant = "t1",
                        .customer_no = "C1",
                        .point_type = "points",
                        .amount = 10,
                        .account = "mall",
                        .operator_id = "key_test",
                        .idempotency_key = "order-1",
                        .now_ms = T0};
    sy_ledger_result a, b;
    assert_int_equal(sy_ledger_earn(f->c, &m, &a), SY_OK);
    assert_int_equal(sy_ledger_earn(f->c, &m, &b), SY_LEDGER_DUPLICATE_KEY);
    assert_string_equal(b.other, a.entry_id);
    m.amount = 5;
    assert_int_equal(sy_ledger_spend(f->c, &m, &b), SY_LEDGER_DUPLICATE_KEY);
    m.idempotency_key = "order-2";
    assert_int_equal(sy_ledger_spend(f->c, &m, &b), SY_OK);
    assert_int_equal(balance(f, "C1", "points"), 5);
}

/* ---- the expiry job ---- */

typedef struct seen {
    int n;
    int64_t points;
} seen;

static void on_expired(void *ud, const char *id, const char *no, const char *type, int64_t amount)
{
    seen *s = ud;
    assert_true(!strncmp(id, "le_", 3));
    s->n++;
    s->points += amount;
}

static void test_expiry_job(void **state)
{
    fx *f = *state;
    /* sun: valid through the 30th day after the day of earning (Shanghai) */
    const char *a1 = earn(f, "C1", "sun", 10, T0);
    const char *a2 = earn(f, "C1", "sun", 20, T0 + 3600000);
    const char *a3 = earn(f, "C1", "sun", 40, T0 + 5 * DAY);
    const char *b1 = earn(f, "C2", "sun", 5, T0);
    earn(f, "C2", "points", 7, T0);
    sy_ledger_result sp;
    assert_int_equal(do_spend(f, "C1", "sun", 15, T0 + DAY, &sp), SY_OK); /* a1 10, a2 5 */
    /* T0 is 08:00 in Shanghai: day D; expires at D+31 00:00 local */
    int64_t due1 = T0 - 8 * 3600000LL + 31 * DAY;
    seen s = {0};
    sy_ledger_expiry ex;
    assert_int_equal(sy_ledger_expire(f->c, "t1", due1 - 1, 100, on_expired, &s, &ex), SY_OK);
    assert_int_equal(ex.entries, 0);
    assert_int_equal(sy_ledger_expire(f->c, "t1", due1, 100, on_expired, &s, &ex), SY_OK);
    /* one entry per customer and type: C1 (a2's 15), C2 (b1's 5) */
    assert_int_equal(ex.entries, 2);
    assert_int_equal(ex.lots, 2);
    assert_int_equal(ex.points, 20);
    assert_false(ex.more);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.points, 20);
    assert_int_equal(lot_left(f, a1), 0);
    assert_int_equal(lot_left(f, a2), 0);
    assert_int_equal(lot_left(f, b1), 0);
    assert_int_equal(lot_left(f, a3), 40);
    assert_int_equal(balance(f, "C1", "sun"), 40);
    assert_int_equal(balance(f, "C2", "sun"), 0);
    assert_int_equal(balance(f, "C2", "points"), 7); /* never expires */
    /* again: nothing more */
    assert_int_equal(sy_ledger_expire(f->c, "t1", due1, 100, NULL, NULL, &ex), SY_OK);
    assert_int_equal(ex.entries, 0);
    /* far later, in batches of one lot */
    assert_int_equal(sy_ledger_expire(f->c, "t1", T0 + 400 * DAY, 1, NULL, NULL, &ex), SY_OK);
    assert_int_equal(ex.lots, 1);
    assert_true(ex.more);
    assert_int_equal(sy_ledger_expire(f->c, "t1", T0 + 400 * DAY, 1, NULL, NULL, &ex), SY_OK);
    assert_int_equal(ex.lots, 0);
    assert_false(ex.more);
    assert_int_equal(balance(f, "C1", "sun"), 0);
    static const char sql[] = "SELECT COUNT(*) FROM ledger_entries WHERE kind = 'expire'"
                              " AND debit_account = 'customer:' || customer_no"
                              " AND credit_account = $1";
    assert_int_equal(query_i64(f, sql, "expired", NULL, NULL), 3);
    check(f, "t1", NULL);
}

/* ---- expiry moments ---- */

static int64_t at(const char *rfc3339)
{
    int64_t ms;
    if (!sy_parse_time(rfc3339, &ms))
        fail_msg("bad time %s", rfc3339);
    return ms;
}

static void test_expiry_moments_across_time_zones(void **state)
{
    (void)state;
    sy_point_type y0 = {.expiry = SY_EXPIRY_YEAR_END, .n = 0};
    sy_point_type y1 = {.expiry = SY_EXPIRY_YEAR_END, .n = 1};
    sy_point_type d30 = {.expiry = SY_EXPIRY_DAYS, .n = 30};
    sy_point_type never = {.expiry = SY_EXPIRY_NEVER};
    int64_t e;
    /* 2026-12-31T20:00Z is New Year's morning in Shanghai, still the 31st
     * in New York. */
    int64_t t = at("2026-12-31T20:00:00Z");
    assert_true(sy_ledger_expires_at(&y0, "Asia/Shanghai", t, &e));
    assert_int_equal(e, at("2028-01-01T00:00:00+08:00"));
    assert_true(sy_ledger_expires_at(&y0, "America/New_York", t, &e));
    assert_int_equal(e, at("2027-01-01T00:00:00-05:00"));
    assert_true(sy_ledger_expires_at(&y1, "America/New_York", t, &e));
    assert_int_equal(e, at("2028-01-01T00:00:00-05:00"));
    assert_true(sy_ledger_expires_at(&y0, "UTC", t, &e));
    assert_int_equal(e, at("2027-01-01T00:00:00Z"));
    /* days: through the 30th day after the local day of earning */
    assert_true(sy_ledger_expires_at(&d30, "Asia/Shanghai", at("2026-03-01T15:59:00Z"), &e));
    assert_int_equal(e, at("2026-04-01T00:00:00+08:00"));
    assert_true(sy_ledger_expires_at(&d30, "Asia/Shanghai", at("2026-03-01T16:00:00Z"), &e));
    assert_int_equal(e, at("2026-04-02T00:00:00+08:00"));
    /* across a daylight-saving change: earned in New York winter time,
     * expiring in summer time (EDT from 2026-03-08) */
    assert_true(
        sy_ledger_expires_at(&d30, "America/New_York", at("2026-03-01T12:00:00-05:00"), &e));
    assert_int_equal(e, at("2026-04-01T00:00:00-04:00"));
    assert_false(sy_ledger_expires_at(&never, "Asia/Shanghai", t, &e));
}

static void test_earn_uses_the_tenants_time_zone(void **state)
{
    fx *f = *state;
    add_type(f->c, "ny", "yearly", SY_EXPIRY_YEAR_END, 0);
    int64_t t = at("2026-12-31T20:00:00Z");
    earn(f, "C1", "yearly", 10, t); /* tenant t1: Shanghai, n = 1 */
    sy_ledger_move m = {.tenant = "ny",
                        .customer_no = "C1",
                        .point_type = "yearly",
                        .amount = 10,
                        .operator_id = "x",
                        .now_ms = t};
    sy_ledger_result res;
    assert_int_equal(sy_ledger_earn(f->c, &m, &res), SY_OK);
    static const char sql[] =
        "SELECT expires_at FROM point_lots WHERE tenant_id = $1 AND point_type = 'yearly'";
    assert_int_equal(query_i64(f, sql, "t1", NULL, NULL), at("2029-01-01T00:00:00+08:00"));
    assert_int_equal(query_i64(f, sql, "ny", NULL, NULL), at("2027-01-01T00:00:00-05:00"));
    check(f, "ny", NULL);
}

/* ---- the invariant check ---- */

static void test_check_catches_broken_data(void **state)
{
    fx *f = *state;
    const char *a = earn(f, "C1", "points", 100, T0);
    sy_ledger_result sp;
    assert_int_equal(do_spend(f, "C1", "points", 30, T0, &sp), SY_OK);
    assert_int_equal(check(f, "t1", NULL), 0);
    struct {
        const char *breaks, *repairs, *says;
    } cases[] = {
        {"UPDATE point_accounts SET balance = balance + 5",
         "UPDATE point_accounts SET balance = balance - 5",
         "customer C1, type points: balance 75, expected 70"},
        {"UPDATE point_lots SET remaining = remaining - 1",
         "UPDATE point_lots SET remaining = remaining + 1",
         "holds 69, expected 70 (what its allocations put in minus what they drew)"},
        {"UPDATE lot_allocations SET amount = amount + 1 WHERE amount = 30",
         "UPDATE lot_allocations SET amount = amount - 1 WHERE amount = 31", "allocations 31"},
        {"UPDATE ledger_entries SET credit_account = 'sink:x', kind = 'earn' WHERE kind = 'spend'",
         "UPDATE ledger_entries SET credit_account = 'sink:spend', kind = 'spend'"
         " WHERE credit_account = 'sink:x'",
         "does not fit"},
        {"UPDATE ledger_entries SET reversed_by = 'le_nothing' WHERE kind = 'spend'",
         "UPDATE ledger_entries SET reversed_by = NULL", "has 0 reversals"},
        {"UPDATE point_lots SET closed = 1", "UPDATE point_lots SET closed = 0", "but is closed"},
    };
    for (size_t i = 0; i < SY_TEST_LEN(cases); i++) {
        exec_sql(f->c, cases[i].breaks);
        char *text = NULL;
        int64_t v = check(f, "t1", &text);
        if (v == 0 || !strstr(text, cases[i].says))
            fail_msg("after '%s' the check said (%lld):\n%s", cases[i].breaks, (long long)v, text);
        free(text);
        exec_sql(f->c, cases[i].repairs);
        assert_int_equal(check(f, "t1", NULL), 0);
    }
    (void)a;
}

/* ---- random operations against a model ---- */

#define M_CUST 3
#define M_TYPES 2
#define M_MAX 4000

typedef struct m_lot {
    int cust, type;
    int64_t expires; /* INT64_MAX: never */
    int64_t remaining, amount;
    char earn_id[SY_LEDGER_ID_MAX + 1];
} m_lot;

typedef struct m_entry {
    char id[SY_LEDGER_ID_MAX + 1];
    char kind;           /* 'e' earn, 's' spend */
    int cust, type, lot; /* earn: its lot */
    int64_t amount;
    int nalloc;
    int alloc_lot[64];
    int64_t alloc_amount[64];
    bool reversed;
} m_entry;

typedef struct model {
    m_lot lots[M_MAX];
    int nlots;
    m_entry entries[M_MAX];
    int nentries;
} model;

static const char *const k_mtypes[M_TYPES] = {"points", "sun"};
static const char *const k_mcust[M_CUST] = {"C1", "C2", "C3"};

static int64_t m_balance(const model *md, int cust, int type)
{
    int64_t b = 0;
    for (int i = 0; i < md->nlots; i++)
        if (md->lots[i].cust == cust && md->lots[i].type == type)
            b += md->lots[i].remaining;
    return b;
}

static void m_expire(model *md, int cust, int type, int64_t now)
{
    for (int i = 0; i < md->nlots; i++) {
        m_lot *l = &md->lots[i];
        if ((cust < 0 || (l->cust == cust && l->type == type)) && l->expires <= now)
            l->remaining = 0;
    }
}

static int64_t m_available(const model *md, int cust, int type, int64_t now)
{
    int64_t b = 0;
    for (int i = 0; i < md->nlots; i++) {
        const m_lot *l = &md->lots[i];
        if (l->cust == cust && l->type == type && l->expires > now)
            b += l->remaining;
    }
    return b;
}

static int64_t lot_expiry(fx *f, const char *earn_id)
{
    static const char sql[] =
        "SELECT COALESCE(expires_at, 9223372036854775807) FROM point_lots WHERE entry_id = $1";
    return query_i64(f, sql, earn_id, NULL, NULL);
}

static void test_random_operations_against_a_model(void **state)
{
    fx *f = *state;
    model *md = calloc(1, sizeof *md);
    uint64_t seed = 0x5157u;
    int64_t now = T0;
    for (int step = 0; step < 1500; step++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        unsigned r = (unsigned)(seed >> 33);
        int cust = (int)(r % M_CUST), type = (int)((r >> 4) % M_TYPES);
        int64_t amount = 1 + (int64_t)((r >> 8) % 60);
        now += (int64_t)((r >> 16) % 4) * DAY / 2; /* time moves on, now and then */
        sy_ledger_result res;
        switch ((r >> 20) % 8) {
        case 0:
        case 1:
        case 2: { /* earn */
            assert_int_equal(do_earn(f, k_mcust[cust], k_mtypes[type], amount, now, &res), SY_OK);
            m_lot *l = &md->lots[md->nlots];
            *l = (m_lot){.cust = cust, .type = type, .remaining = amount, .amount = amount};
            snprintf(l->earn_id, sizeof l->earn_id, "%s", res.entry_id);
            l->expires = lot_expiry(f, res.entry_id);
            m_entry *e = &md->entries[md->nentries++];
            *e = (m_entry){
                .kind = 'e', .cust = cust, .type = type, .lot = md->nlots++, .amount = amount};
            snprintf(e->id, sizeof e->id, "%s", res.entry_id);
            break;
        }
        case 3:
        case 4:
        case 5: { /* spend: soonest expiry, then oldest lot, first */
            int64_t avail = m_available(md, cust, type, now);
            int rc = do_spend(f, k_mcust[cust], k_mtypes[type], amount, now, &res);
            if (avail < amount) {
                assert_int_equal(rc, SY_LEDGER_INSUFFICIENT);
                assert_int_equal(res.balance, avail);
                break;
            }
            assert_int_equal(rc, SY_OK);
            m_expire(md, cust, type, now);
            m_entry *e = &md->entries[md->nentries++];
            *e = (m_entry){.kind = 's', .cust = cust, .type = type, .amount = amount};
            snprintf(e->id, sizeof e->id, "%s", res.entry_id);
            for (int64_t need = amount; need > 0;) {
                int best = -1;
                for (int i = 0; i < md->nlots; i++) {
                    m_lot *l = &md->lots[i];
                    if (l->cust == cust && l->type == type && l->remaining > 0 &&
                        (best < 0 || l->expires < md->lots[best].expires))
                        best = i; /* ties keep the older lot */
                }
                assert_true(best >= 0);
                int64_t take = md->lots[best].remaining < need ? md->lots[best].remaining : need;
                md->lots[best].remaining -= take;
                need -= take;
                assert_true(e->nalloc < 64);
                e->alloc_lot[e->nalloc] = best;
                e->alloc_amount[e->nalloc++] = take;
                assert_int_equal(allocated(f, e->id, md->lots[best].earn_id), take);
            }
            assert_int_equal(res.balance, m_balance(md, cust, type));
            break;
        }
        case 6: { /* reverse an earlier earn or spend */
            if (!md->nentries)
                break;
            m_entry *e = &md->entries[(r >> 3) % (unsigned)md->nentries];
            int rc = do_reverse(f, e->id, now, &res);
            if (e->reversed) {
                assert_int_equal(rc, SY_LEDGER_ALREADY_REVERSED);
            } else if (e->kind == 'e') {
                m_lot *l = &md->lots[e->lot];
                if (l->remaining < l->amount) {
                    assert_int_equal(rc, SY_LEDGER_POINTS_USED);
                    assert_int_equal(res.balance, l->remaining);
                } else {
                    assert_int_equal(rc, SY_OK);
                    l->remaining = 0;
                    e->reversed = true;
                }
            } else {
                assert_int_equal(rc, SY_OK);
                for (int i = 0; i < e->nalloc; i++)
                    md->lots[e->alloc_lot[i]].remaining += e->alloc_amount[i];
                e->reversed = true;
            }
            if (rc == SY_OK)
                assert_int_equal(res.balance, m_balance(md, e->cust, e->type));
            break;
        }
        default: { /* the expiry job, in small batches */
            sy_ledger_expiry ex;
            do
                assert_int_equal(sy_ledger_expire(f->c, "t1", now, 3, NULL, NULL, &ex), SY_OK);
            while (ex.more);
            m_expire(md, -1, 0, now);
            break;
        }
        }
        assert_true(md->nentries < M_MAX && md->nlots < M_MAX);
        /* every balance and every lot as the model says */
        for (int c = 0; c < M_CUST; c++)
            for (int t = 0; t < M_TYPES; t++)
                if (balance(f, k_mcust[c], k_mtypes[t]) != m_balance(md, c, t))
                    fail_msg("step %d: %s %s balance %lld, model %lld", step, k_mcust[c],
                             k_mtypes[t], (long long)balance(f, k_mcust[c], k_mtypes[t]),
                             (long long)m_balance(md, c, t));
        if (step % 100 == 0) {
            for (int i = 0; i < md->nlots; i++)
                assert_int_equal(lot_left(f, md->lots[i].earn_id), md->lots[i].remaining);
            check(f, "t1", NULL);
        }
    }
    check(f, "t1", NULL);
    free(md);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_spend_draws_soonest_expiry_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_same_expiry_oldest_lot_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_never_expiring_lots_last, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exact_allocations_and_entry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_balance_never_negative, setup, teardown),
        cmocka_unit_test_setup_teardown(test_points_past_expiry_do_not_count, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reverse_spend_restores_the_same_lots, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reverse_spend_into_expired_lot_expires_again, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_reverse_earn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reverse_earn_refused_when_partly_spent, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_reverse_earn_refused_when_expired, setup, teardown),
        cmocka_unit_test_setup_teardown(test_double_reversal_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expiry_entries_not_reversible, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idempotency_key_in_the_journal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expiry_job, setup, teardown),
        cmocka_unit_test(test_expiry_moments_across_time_zones),
        cmocka_unit_test_setup_teardown(test_earn_uses_the_tenants_time_zone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_catches_broken_data, setup, teardown),
        cmocka_unit_test_setup_teardown(test_random_operations_against_a_model, setup, teardown),
    };
    return cmocka_run_group_tests_name("ledger", tests, NULL, NULL);
}

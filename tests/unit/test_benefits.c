/* test_benefits.c — the benefits catalogue's rules (src/benefits.c) on a
 * temporary store: stock and its journal, voucher code pools (each code
 * once, duplicates skipped), issuing with the availability window, the
 * per-customer limits by the tenant's business day and month (an injected
 * clock), stock running out, goods needing an address, idempotency keys,
 * redeeming (ownership, idempotent, expiry), revoking (stock back only by
 * the item's rule, a mall exchange's points back), fulfilment, the expiry
 * sweep, mall exchanges (points debited once, refusals spend nothing), the
 * invariant check (and that it names what broken data breaks), and a
 * random sequence of operations against a simple model. */
#include "unit/store_fixture.h"

#include "benefits.h"
#include "ledger.h"
#include "tenant.h"
#include "util.h"

#include <sodium.h>

#define DAY 86400000LL
#define T0 1767225600000LL /* 2026-01-01T00:00:00Z = 08:00 in Shanghai */

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

static void add_customer(sy_conn *c, const char *no, int64_t dense)
{
    static const char sql[] = "INSERT INTO customers (tenant_id, customer_no, dense_id,"
                              " created_at, updated_at) VALUES ('t1', $1, $2, 0, 0)";
    sy_stmt *st = sy_conn_prepare(c, sql);
    assert_non_null(st);
    sy_stmt_bind_text(st, 1, no);
    sy_stmt_bind_i64(st, 2, dense);
    assert_int_equal(sy_stmt_exec(st), SY_OK);
}

/* An item with no limits, window or expiry unless the caller sets them. */
static sy_benefit_item item_def(const char *code, sy_benefit_kind kind, int64_t stock)
{
    return (sy_benefit_item){.code = code,
                             .name = code,
                             .supplier = "acme",
                             .kind = kind,
                             .face_value = 1000,
                             .cost_price = 800,
                             .params = "{}",
                             .stock = stock,
                             .limits = {SY_BENEFIT_UNSET, SY_BENEFIT_UNSET, SY_BENEFIT_UNSET},
                             .available_from = SY_BENEFIT_UNSET,
                             .available_until = SY_BENEFIT_UNSET,
                             .validity_days = SY_BENEFIT_UNSET,
                             .operator_id = "key_test",
                             .now_ms = T0};
}

static void make_item(fx *f, sy_benefit_item it)
{
    int rc = sy_benefit_item_create(f->c, "t1", &it);
    if (rc != SY_OK)
        fail_msg("item %s: %d %s", it.code, rc, sy_conn_errmsg(f->c));
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
    for (int i = 0; i < 4; i++) {
        char no[16];
        snprintf(no, sizeof no, "C%d", i + 1);
        add_customer(f->c, no, i);
    }
    sy_point_type t = {.expiry = SY_EXPIRY_NEVER, .created_at = T0};
    snprintf(t.code, sizeof t.code, "pts");
    snprintf(t.name, sizeof t.name, "points");
    assert_int_equal(sy_ledger_type_create(f->c, "t1", &t), SY_OK);
    assert_int_equal(sy_benefit_supplier_create(f->c, "t1", "acme", "Acme", "", T0), SY_OK);
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

/* Runs an operation's result through a transaction as the writer would:
 * anything but SY_OK rolls back. */
#define TX(f, expr)                                                                                \
    ({                                                                                             \
        assert_int_equal(sy_conn_begin((f)->c), SY_OK);                                            \
        int rc_ = (expr);                                                                          \
        if (rc_ == SY_OK)                                                                          \
            assert_int_equal(sy_conn_commit((f)->c), SY_OK);                                       \
        else                                                                                       \
            assert_int_equal(sy_conn_rollback((f)->c), SY_OK);                                     \
        rc_;                                                                                       \
    })

static int issue(fx *f, const char *no, const char *item, int64_t now, const char *key,
                 sy_benefit_result *res)
{
    sy_benefit_issue q = {.tenant = "t1",
                          .customer_no = no,
                          .item = item,
                          .delivery = "{\"name\":\"Li\",\"phone\":\"1\",\"address\":\"x\"}",
                          .operator_id = "key_test",
                          .idempotency_key = key,
                          .now_ms = now};
    return TX(f, sy_benefit_issue_one(f->c, &q, res));
}

static int exchange(fx *f, const char *no, const char *listing, int64_t now, const char *key,
                    sy_benefit_result *res)
{
    sy_benefit_issue q = {.tenant = "t1",
                          .customer_no = no,
                          .listing = listing,
                          .operator_id = "key_test",
                          .idempotency_key = key,
                          .now_ms = now};
    return TX(f, sy_benefit_issue_one(f->c, &q, res));
}

static void earn(fx *f, const char *no, int64_t amount)
{
    sy_ledger_move m = {.tenant = "t1",
                        .customer_no = no,
                        .point_type = "pts",
                        .amount = amount,
                        .account = "test",
                        .operator_id = "key_test",
                        .now_ms = T0};
    sy_ledger_result res;
    assert_int_equal(TX(f, sy_ledger_earn(f->c, &m, &res)), SY_OK);
}

static int64_t q1(fx *f, const char *sql, const char *a)
{
    sy_stmt *st = sy_conn_prepare(f->c, sql);
    assert_non_null(st);
    sy_stmt_bind_text(st, 1, a);
    int rc = sy_stmt_step(st);
    int64_t v = rc == SY_ROW ? sy_stmt_i64(st, 0) : -1;
    sy_stmt_reset(st);
    return v;
}

static int64_t remaining(fx *f, const char *item)
{
    static const char sql[] = "SELECT remaining FROM benefit_items WHERE code = $1";
    return q1(f, sql, item);
}

static int64_t total_stock(fx *f, const char *item)
{
    static const char sql[] = "SELECT total_stock FROM benefit_items WHERE code = $1";
    return q1(f, sql, item);
}

static int64_t grants_of(fx *f, const char *no)
{
    static const char sql[] = "SELECT COUNT(*) FROM benefit_grants WHERE customer_no = $1";
    return q1(f, sql, no);
}

static int64_t points(fx *f, const char *no)
{
    static const char sql[] = "SELECT COALESCE(MAX(balance), 0) FROM point_accounts"
                              " WHERE customer_no = $1 AND point_type = 'pts'";
    return q1(f, sql, no);
}

static void grant_text(fx *f, const char *code, const char *col_sql, char *out, size_t n)
{
    sy_stmt *st = sy_conn_prepare(f->c, col_sql);
    assert_non_null(st);
    sy_stmt_bind_text(st, 1, code);
    assert_int_equal(sy_stmt_step(st), SY_ROW);
    snprintf(out, n, "%s", sy_stmt_text(st, 0));
    sy_stmt_reset(st);
}

static const char sql_status[] = "SELECT status FROM benefit_grants WHERE code = $1";
static const char sql_voucher[] = "SELECT voucher_code FROM benefit_grants WHERE code = $1";

static void assert_status(fx *f, const char *code, const char *want)
{
    char got[16];
    grant_text(f, code, sql_status, got, sizeof got);
    assert_string_equal(got, want);
}

static void collect_line(void *ud, const char *line)
{
    sy_buf *b = ud;
    sy_buf_printf(b, "%s\n", line);
}

/* Runs both checks (ledger and benefits); returns the violations, their
 * text in *text when given, else fails on any. */
static int64_t check(fx *f, char **text)
{
    sy_buf b = {0};
    int64_t v1, v2, checked;
    assert_int_equal(sy_ledger_check(f->c, "t1", collect_line, &b, &v1, &checked), SY_OK);
    assert_int_equal(sy_benefit_check(f->c, "t1", collect_line, &b, &v2, &checked), SY_OK);
    if (text)
        *text = sy_buf_steal(&b);
    else if (v1 + v2)
        fail_msg("invariants broken:\n%s", b.data);
    sy_buf_free(&b);
    return v1 + v2;
}

/* ---- the catalogue ---- */

static void test_catalogue_and_stock_journal(void **state)
{
    fx *f = *state;
    sy_benefit_item it = item_def("cp", SY_BENEFIT_COUPON, 5);
    assert_int_equal(sy_benefit_item_create(f->c, "t1", &it), SY_OK);
    assert_int_equal(sy_benefit_item_create(f->c, "t1", &it), SY_BENEFIT_EXISTS);
    it = item_def("nosup", SY_BENEFIT_COUPON, 5);
    it.supplier = "nobody";
    assert_int_equal(sy_benefit_item_create(f->c, "t1", &it), SY_BENEFIT_UNKNOWN_SUPPLIER);
    assert_int_equal(sy_benefit_supplier_create(f->c, "t1", "acme", "again", "", T0),
                     SY_BENEFIT_EXISTS);
    int64_t total, left;
    assert_int_equal(
        sy_benefit_stock_add(f->c, "t1", "cp", 7, "batch 2", "key_test", T0, &total, &left), SY_OK);
    assert_int_equal(total, 12);
    assert_int_equal(left, 12);
    assert_int_equal(sy_benefit_stock_add(f->c, "t1", "zz", 7, "x", "key_test", T0, &total, &left),
                     SY_BENEFIT_UNKNOWN_ITEM);
    static const char sql_moves[] =
        "SELECT COUNT(*) FROM benefit_stock_moves WHERE item = $1 AND operator = 'key_test'";
    assert_int_equal(q1(f, sql_moves, "cp"), 2);

    /* a voucher: stock only through its pool; codes once */
    make_item(f, item_def("jd", SY_BENEFIT_VOUCHER, 0));
    assert_int_equal(sy_benefit_stock_add(f->c, "t1", "jd", 1, "x", "key_test", T0, &total, &left),
                     SY_BENEFIT_IS_VOUCHER);
    const char *codes[] = {"A1", "A2", "A3"};
    bool dup[3];
    int64_t added;
    assert_int_equal(sy_benefit_codes_add(f->c, "t1", "jd", codes, 3, "key_test", T0, dup, &added),
                     SY_OK);
    assert_int_equal(added, 3);
    const char *more[] = {"A3", "A4"};
    assert_int_equal(sy_benefit_codes_add(f->c, "t1", "jd", more, 2, "key_test", T0, dup, &added),
                     SY_OK);
    assert_int_equal(added, 1);
    assert_true(dup[0]);
    assert_false(dup[1]);
    assert_int_equal(total_stock(f, "jd"), 4);
    assert_int_equal(remaining(f, "jd"), 4);
    assert_int_equal(sy_benefit_codes_add(f->c, "t1", "cp", more, 2, "key_test", T0, dup, &added),
                     SY_BENEFIT_NOT_VOUCHER);
    assert_true(sy_benefit_code_valid("coupon_10-a"));
    assert_false(sy_benefit_code_valid("_x"));
    assert_false(sy_benefit_code_valid("Cap"));
    assert_true(sy_benefit_voucher_valid("AB-12", 5));
    assert_false(sy_benefit_voucher_valid("AB 12", 5));
    check(f, NULL);
}

/* ---- issuing ---- */

static void test_vouchers_issue_each_code_once(void **state)
{
    fx *f = *state;
    make_item(f, item_def("jd", SY_BENEFIT_VOUCHER, 0));
    const char *codes[] = {"V1", "V2", "V3"};
    bool dup[3];
    int64_t added;
    assert_int_equal(sy_benefit_codes_add(f->c, "t1", "jd", codes, 3, "key_test", T0, dup, &added),
                     SY_OK);
    sy_benefit_result res;
    char seen[3][SY_BENEFIT_VOUCHER_MAX + 1];
    for (int i = 0; i < 3; i++) {
        assert_int_equal(issue(f, i % 2 ? "C1" : "C2", "jd", T0, NULL, &res), SY_OK);
        grant_text(f, res.code, sql_voucher, seen[i], sizeof seen[i]);
        for (int j = 0; j < i; j++)
            assert_string_not_equal(seen[i], seen[j]);
    }
    assert_int_equal(issue(f, "C1", "jd", T0, NULL, &res), SY_BENEFIT_OUT_OF_STOCK);
    assert_int_equal(remaining(f, "jd"), 0);
    /* revoking a voucher never puts its code back */
    assert_int_equal(
        TX(f, sy_benefit_revoke(f->c, "t1", res.code[0] ? res.code : "", "x", "k", T0, &res)),
        SY_BENEFIT_NO_GRANT);
    static const char sql_first[] = "SELECT code FROM benefit_grants WHERE customer_no = $1";
    char g[SY_BENEFIT_GRANT_CODE_MAX + 1];
    grant_text(f, "C2", sql_first, g, sizeof g);
    assert_int_equal(TX(f, sy_benefit_revoke(f->c, "t1", g, "x", "k", T0, &res)), SY_OK);
    assert_int_equal(remaining(f, "jd"), 0);
    assert_int_equal(issue(f, "C1", "jd", T0, NULL, &res), SY_BENEFIT_OUT_OF_STOCK);
    check(f, NULL);
}

static void test_limits_by_business_day_and_month(void **state)
{
    fx *f = *state;
    sy_benefit_item it = item_def("cp", SY_BENEFIT_COUPON, 100);
    it.limits = (sy_benefit_limits){2, 3, 4};
    make_item(f, it);
    sy_benefit_result res;
    /* 2026-01-31T15:00Z is 23:00 on the 31st in Shanghai; 16:30Z is
     * already 1 February there. */
    int64_t jan31 = T0 + 30 * DAY + 15 * 3600000LL, feb1 = jan31 + 90 * 60000LL;
    assert_int_equal(issue(f, "C1", "cp", jan31, NULL, &res), SY_OK);
    assert_int_equal(issue(f, "C1", "cp", jan31, NULL, &res), SY_OK);
    assert_int_equal(issue(f, "C1", "cp", jan31, NULL, &res), SY_BENEFIT_LIMIT_REACHED);
    assert_string_equal(res.other, "item:day");
    assert_int_equal(res.limit, 2);
    /* another customer has its own limits */
    assert_int_equal(issue(f, "C2", "cp", jan31, NULL, &res), SY_OK);
    /* the next business day in Shanghai (same UTC day) */
    assert_int_equal(issue(f, "C1", "cp", feb1, NULL, &res), SY_OK);
    assert_int_equal(issue(f, "C1", "cp", feb1, NULL, &res), SY_OK);
    assert_int_equal(issue(f, "C1", "cp", feb1 + DAY, NULL, &res), SY_BENEFIT_LIMIT_REACHED);
    assert_string_equal(res.other, "item:total");
    /* a revoked grant does not count */
    char last[SY_BENEFIT_GRANT_CODE_MAX + 1];
    snprintf(last, sizeof last, "%s", res.code);
    static const char sql_one[] =
        "SELECT code FROM benefit_grants WHERE customer_no = $1 ORDER BY seq DESC LIMIT 1";
    grant_text(f, "C1", sql_one, last, sizeof last);
    assert_int_equal(TX(f, sy_benefit_revoke(f->c, "t1", last, "x", "k", feb1, &res)), SY_OK);
    assert_int_equal(issue(f, "C1", "cp", feb1 + DAY, NULL, &res), SY_OK);
    assert_int_equal(grants_of(f, "C1"), 5);
    /* the monthly limit, in a fresh item */
    it = item_def("cp2", SY_BENEFIT_COUPON, 100);
    it.limits = (sy_benefit_limits){SY_BENEFIT_UNSET, 2, SY_BENEFIT_UNSET};
    make_item(f, it);
    assert_int_equal(issue(f, "C3", "cp2", jan31, NULL, &res), SY_OK);
    assert_int_equal(issue(f, "C3", "cp2", jan31 - DAY, NULL, &res), SY_OK);
    assert_int_equal(issue(f, "C3", "cp2", jan31, NULL, &res), SY_BENEFIT_LIMIT_REACHED);
    assert_string_equal(res.other, "item:month");
    assert_int_equal(issue(f, "C3", "cp2", feb1, NULL, &res), SY_OK);
    check(f, NULL);
}

static void test_window_stock_delivery_customer_key(void **state)
{
    fx *f = *state;
    sy_benefit_item it = item_def("cp", SY_BENEFIT_COUPON, 2);
    it.available_from = T0 + DAY;
    it.available_until = T0 + 2 * DAY;
    make_item(f, it);
    sy_benefit_result res;
    assert_int_equal(issue(f, "C1", "cp", T0, NULL, &res), SY_BENEFIT_NOT_AVAILABLE);
    assert_int_equal(issue(f, "C1", "cp", T0 + 2 * DAY, NULL, &res), SY_BENEFIT_NOT_AVAILABLE);
    assert_int_equal(issue(f, "C9", "cp", T0 + DAY, NULL, &res), SY_BENEFIT_NO_CUSTOMER);
    assert_int_equal(issue(f, "C1", "nope", T0 + DAY, NULL, &res), SY_BENEFIT_UNKNOWN_ITEM);
    assert_int_equal(issue(f, "C1", "cp", T0 + DAY, "k1", &res), SY_OK);
    char first[SY_BENEFIT_GRANT_CODE_MAX + 1];
    snprintf(first, sizeof first, "%s", res.code);
    /* the same key: the same grant, no second unit */
    assert_int_equal(issue(f, "C1", "cp", T0 + DAY, "k1", &res), SY_BENEFIT_REPLAY);
    assert_string_equal(res.code, first);
    assert_int_equal(remaining(f, "cp"), 1);
    /* the key with another customer: refused */
    assert_int_equal(issue(f, "C2", "cp", T0 + DAY, "k1", &res), SY_BENEFIT_KEY_USED);
    assert_int_equal(issue(f, "C2", "cp", T0 + DAY, NULL, &res), SY_OK);
    assert_int_equal(issue(f, "C3", "cp", T0 + DAY, NULL, &res), SY_BENEFIT_OUT_OF_STOCK);
    assert_int_equal(grants_of(f, "C3"), 0);
    /* goods need an address */
    make_item(f, item_def("mug", SY_BENEFIT_GOODS, 2));
    sy_benefit_issue q = {
        .tenant = "t1", .customer_no = "C1", .item = "mug", .operator_id = "k", .now_ms = T0};
    assert_int_equal(TX(f, sy_benefit_issue_one(f->c, &q, &res)), SY_BENEFIT_NEEDS_DELIVERY);
    assert_int_equal(remaining(f, "mug"), 2);
    check(f, NULL);
}

/* ---- redeem, revoke, fulfil, expire ---- */

static void test_redeem_revoke_fulfil_expire(void **state)
{
    fx *f = *state;
    sy_benefit_item it = item_def("cp", SY_BENEFIT_COUPON, 10);
    it.validity_days = 0; /* valid through the day of issue */
    it.revoke_returns_stock = true;
    make_item(f, it);
    sy_benefit_result res;
    char a[SY_BENEFIT_GRANT_CODE_MAX + 1], b[SY_BENEFIT_GRANT_CODE_MAX + 1],
        c[SY_BENEFIT_GRANT_CODE_MAX + 1];
    assert_int_equal(issue(f, "C1", "cp", T0, NULL, &res), SY_OK);
    snprintf(a, sizeof a, "%s", res.code);
    assert_int_equal(issue(f, "C1", "cp", T0, NULL, &res), SY_OK);
    snprintf(b, sizeof b, "%s", res.code);
    assert_int_equal(issue(f, "C1", "cp", T0, NULL, &res), SY_OK);
    snprintf(c, sizeof c, "%s", res.code);
    /* ownership */
    assert_int_equal(TX(f, sy_benefit_redeem(f->c, "t1", a, "C2", "p", T0, &res)),
                     SY_BENEFIT_NOT_OWNER);
    assert_int_equal(TX(f, sy_benefit_redeem(f->c, "t1", a, "C1", "p", T0, &res)), SY_OK);
    assert_false(res.already);
    assert_int_equal(TX(f, sy_benefit_redeem(f->c, "t1", a, "C1", "p", T0, &res)), SY_OK);
    assert_true(res.already);
    /* another reference is another payment: refused */
    assert_int_equal(TX(f, sy_benefit_redeem(f->c, "t1", a, "C1", "q", T0, &res)),
                     SY_BENEFIT_ALREADY_REDEEMED);
    assert_int_equal(TX(f, sy_benefit_redeem(f->c, "t1", a, "C1", NULL, T0, &res)),
                     SY_BENEFIT_ALREADY_REDEEMED);
    assert_int_equal(TX(f, sy_benefit_revoke(f->c, "t1", a, "x", "k", T0, &res)),
                     SY_BENEFIT_NOT_REVOCABLE);
    /* revoke returns the unit (the item says so) */
    assert_int_equal(remaining(f, "cp"), 7);
    assert_int_equal(TX(f, sy_benefit_revoke(f->c, "t1", b, "x", "k", T0, &res)), SY_OK);
    assert_int_equal(remaining(f, "cp"), 8);
    assert_int_equal(TX(f, sy_benefit_redeem(f->c, "t1", b, "C1", "p", T0, &res)),
                     SY_BENEFIT_NOT_REDEEMABLE);
    assert_string_equal(res.other, "revoked");
    /* past its expiry (midnight ending the day of issue in Shanghai):
     * not redeemable even before the sweep */
    int64_t midnight = T0 + 16 * 3600000LL;
    assert_int_equal(TX(f, sy_benefit_redeem(f->c, "t1", c, "C1", "p", midnight, &res)),
                     SY_BENEFIT_NOT_REDEEMABLE);
    assert_string_equal(res.other, "expired");
    int64_t n;
    bool more;
    assert_int_equal(TX(f, sy_benefit_expire(f->c, "t1", midnight - 1, 10, &n, &more)), SY_OK);
    assert_int_equal(n, 0);
    assert_int_equal(TX(f, sy_benefit_expire(f->c, "t1", midnight, 10, &n, &more)), SY_OK);
    assert_int_equal(n, 1);
    assert_false(more);
    assert_status(f, c, "expired");
    assert_status(f, a, "redeemed");
    assert_status(f, b, "revoked");
    assert_int_equal(remaining(f, "cp"), 8); /* expiry gives nothing back */
    /* goods: fulfilment forward only; delivered redeems */
    make_item(f, item_def("mug", SY_BENEFIT_GOODS, 3));
    assert_int_equal(issue(f, "C2", "mug", T0, NULL, &res), SY_OK);
    char g[SY_BENEFIT_GRANT_CODE_MAX + 1];
    snprintf(g, sizeof g, "%s", res.code);
    assert_int_equal(TX(f, sy_benefit_redeem(f->c, "t1", g, "C2", "p", T0, &res)),
                     SY_BENEFIT_NOT_REDEEMABLE);
    assert_int_equal(TX(f, sy_benefit_fulfil(f->c, "t1", g, "shipped", "SF1", T0, &res)), SY_OK);
    assert_int_equal(TX(f, sy_benefit_fulfil(f->c, "t1", g, "shipped", NULL, T0, &res)),
                     SY_BENEFIT_BAD_FULFILMENT);
    assert_int_equal(TX(f, sy_benefit_revoke(f->c, "t1", g, "x", "k", T0, &res)),
                     SY_BENEFIT_NOT_REVOCABLE);
    assert_int_equal(TX(f, sy_benefit_fulfil(f->c, "t1", g, "delivered", NULL, T0, &res)), SY_OK);
    assert_status(f, g, "redeemed");
    assert_int_equal(TX(f, sy_benefit_fulfil(f->c, "t1", a, "shipped", NULL, T0, &res)),
                     SY_BENEFIT_BAD_FULFILMENT);
    /* a redemption without a reference is retried without one (NULL and ""
     * are the same), and refused with one */
    assert_int_equal(issue(f, "C1", "cp", T0, NULL, &res), SY_OK);
    snprintf(c, sizeof c, "%s", res.code);
    assert_int_equal(TX(f, sy_benefit_redeem(f->c, "t1", c, "C1", NULL, T0, &res)), SY_OK);
    assert_false(res.already);
    assert_int_equal(TX(f, sy_benefit_redeem(f->c, "t1", c, "C1", "", T0, &res)), SY_OK);
    assert_true(res.already);
    assert_int_equal(TX(f, sy_benefit_redeem(f->c, "t1", c, "C1", "pay", T0, &res)),
                     SY_BENEFIT_ALREADY_REDEEMED);
    check(f, NULL);
}

/* ---- the mall ---- */

static void make_listing(fx *f, const char *code, const char *item, int64_t price,
                         sy_benefit_limits lim)
{
    sy_benefit_listing l = {.code = code,
                            .item = item,
                            .title = code,
                            .point_type = "pts",
                            .price = price,
                            .limits = lim,
                            .active = true,
                            .now_ms = T0};
    assert_int_equal(sy_benefit_listing_create(f->c, "t1", &l), SY_OK);
}

static void test_mall_exchange(void **state)
{
    fx *f = *state;
    sy_benefit_item it = item_def("cp", SY_BENEFIT_COUPON, 3);
    make_item(f, it);
    make_listing(f, "l1", "cp", 300, (sy_benefit_limits){SY_BENEFIT_UNSET, SY_BENEFIT_UNSET, 2});
    sy_benefit_listing bad = {.code = "l2",
                              .item = "cp",
                              .title = "t",
                              .point_type = "nope",
                              .price = 1,
                              .active = true,
                              .now_ms = T0};
    assert_int_equal(sy_benefit_listing_create(f->c, "t1", &bad), SY_BENEFIT_UNKNOWN_TYPE);
    bad.point_type = "pts";
    bad.item = "nope";
    assert_int_equal(sy_benefit_listing_create(f->c, "t1", &bad), SY_BENEFIT_UNKNOWN_ITEM);
    sy_benefit_result res;
    /* not enough points: nothing spent, nothing taken */
    earn(f, "C1", 500);
    assert_int_equal(exchange(f, "C1", "l1", T0, "x1", &res), SY_OK);
    char first[SY_BENEFIT_GRANT_CODE_MAX + 1];
    snprintf(first, sizeof first, "%s", res.code);
    assert_int_equal(points(f, "C1"), 200);
    assert_int_equal(exchange(f, "C1", "l1", T0, "x2", &res), SY_BENEFIT_INSUFFICIENT);
    assert_int_equal(res.balance, 200);
    assert_int_equal(points(f, "C1"), 200);
    assert_int_equal(remaining(f, "cp"), 2);
    /* the same key: the same grant, no second debit */
    assert_int_equal(exchange(f, "C1", "l1", T0, "x1", &res), SY_BENEFIT_REPLAY);
    assert_string_equal(res.code, first);
    assert_int_equal(points(f, "C1"), 200);
    /* the listing's own limit */
    earn(f, "C1", 1000);
    assert_int_equal(exchange(f, "C1", "l1", T0, NULL, &res), SY_OK);
    assert_int_equal(exchange(f, "C1", "l1", T0, NULL, &res), SY_BENEFIT_LIMIT_REACHED);
    assert_string_equal(res.other, "listing:total");
    assert_int_equal(points(f, "C1"), 900);
    /* out of stock: nothing spent */
    earn(f, "C2", 1000);
    assert_int_equal(exchange(f, "C2", "l1", T0, NULL, &res), SY_OK);
    assert_int_equal(exchange(f, "C2", "l1", T0, NULL, &res), SY_BENEFIT_OUT_OF_STOCK);
    assert_int_equal(points(f, "C2"), 700);
    /* revoking an exchange gives the points back */
    assert_int_equal(TX(f, sy_benefit_revoke(f->c, "t1", first, "x", "k", T0, &res)), SY_OK);
    assert_int_equal(points(f, "C1"), 1200);
    assert_int_equal(exchange(f, "C1", "nope", T0, NULL, &res), SY_BENEFIT_UNKNOWN_LISTING);
    exec_sql(f->c, "UPDATE mall_listings SET active = 0 WHERE code = 'l1'");
    assert_int_equal(exchange(f, "C3", "l1", T0, NULL, &res), SY_BENEFIT_NOT_AVAILABLE);
    check(f, NULL);
}

/* An exchange reads the listing, its item and its point type in one
 * statement (benefits.c: load_listing); what is missing is refused as the
 * separate reads refused it: the item, then (at the spend) the type. */
static void test_exchange_of_a_damaged_listing(void **state)
{
    fx *f = *state;
    make_item(f, item_def("cp", SY_BENEFIT_COUPON, 5));
    make_listing(f, "l1", "cp", 100, (sy_benefit_limits){-1, -1, -1});
    earn(f, "C1", 1000);
    sy_benefit_result res;
    exec_sql(f->c, "UPDATE mall_listings SET point_type = 'gone' WHERE code = 'l1'");
    assert_int_equal(exchange(f, "C1", "l1", T0, NULL, &res), SY_BENEFIT_UNKNOWN_TYPE);
    exec_sql(f->c, "UPDATE mall_listings SET item = 'gone' WHERE code = 'l1'");
    assert_int_equal(exchange(f, "C1", "l1", T0, NULL, &res), SY_BENEFIT_UNKNOWN_ITEM);
    exec_sql(f->c, "UPDATE mall_listings SET item = 'cp', point_type = 'pts' WHERE code = 'l1'");
    assert_int_equal(exchange(f, "C1", "l1", T0, NULL, &res), SY_OK);
    assert_string_equal(res.issued.item, "cp");
    assert_string_equal(res.issued.item_name, "cp");
    assert_string_equal(res.issued.source, "mall");
    assert_string_equal(res.issued.point_type, "pts");
    assert_int_equal(res.issued.points, 100);
    assert_int_equal(remaining(f, "cp"), 4);
    assert_int_equal(points(f, "C1"), 900);
    check(f, NULL);
}

/* The CHECKs of ledger_entries and benefit_grants (migration 0017 spells
 * them without IN lists) refuse what they always refused and let a NULL
 * fulfilment through. */
static void refused(fx *f, const char *sql)
{
    if (sy_conn_exec(f->c, sql) == SY_OK)
        fail_msg("the store accepted %s", sql);
}

static void test_checks_refuse_bad_values(void **state)
{
    fx *f = *state;
    make_item(f, item_def("cp", SY_BENEFIT_COUPON, 5));
    make_listing(f, "l1", "cp", 100, (sy_benefit_limits){-1, -1, -1});
    earn(f, "C1", 1000);
    sy_benefit_result res;
    assert_int_equal(exchange(f, "C1", "l1", T0, NULL, &res), SY_OK);
    refused(f, "UPDATE ledger_entries SET kind = 'gift'");
    refused(f, "UPDATE ledger_entries SET kind = 'Earn'");
    refused(f, "UPDATE benefit_grants SET status = 'lost'");
    refused(f, "UPDATE benefit_grants SET source = 'gift'");
    refused(f, "UPDATE benefit_grants SET fulfilment = 'lost'");
    exec_sql(f->c, "UPDATE benefit_grants SET fulfilment = 'shipped'");
    exec_sql(f->c, "UPDATE benefit_grants SET fulfilment = NULL");
    exec_sql(f->c, "UPDATE benefit_grants SET status = 'redeemed', redeemed_at = 1");
    exec_sql(f->c, "UPDATE benefit_grants SET status = 'issued', redeemed_at = NULL");
    exec_sql(f->c, "UPDATE ledger_entries SET kind = kind");
    check(f, NULL);
}

/* ---- the check names what broken data breaks ---- */

static void expect_violation(fx *f, const char *damage, const char *repair, const char *needle)
{
    exec_sql(f->c, damage);
    char *text = NULL;
    int64_t v = check(f, &text);
    if (v == 0 || !strstr(text, needle))
        fail_msg("after `%s`: expected a violation naming '%s', got:\n%s", damage, needle, text);
    free(text);
    exec_sql(f->c, repair);
    check(f, NULL);
}

static void test_check_catches_broken_data(void **state)
{
    fx *f = *state;
    make_item(f, item_def("cp", SY_BENEFIT_COUPON, 5));
    make_item(f, item_def("jd", SY_BENEFIT_VOUCHER, 0));
    const char *codes[] = {"V1", "V2"};
    bool dup[2];
    int64_t added;
    assert_int_equal(sy_benefit_codes_add(f->c, "t1", "jd", codes, 2, "k", T0, dup, &added), SY_OK);
    make_listing(f, "l1", "cp", 100, (sy_benefit_limits){-1, -1, -1});
    earn(f, "C1", 1000);
    sy_benefit_result res;
    assert_int_equal(issue(f, "C1", "jd", T0, NULL, &res), SY_OK);
    char vg[SY_BENEFIT_GRANT_CODE_MAX + 1];
    snprintf(vg, sizeof vg, "%s", res.code);
    assert_int_equal(exchange(f, "C1", "l1", T0, NULL, &res), SY_OK);
    char mg[SY_BENEFIT_GRANT_CODE_MAX + 1];
    snprintf(mg, sizeof mg, "%s", res.code);
    check(f, NULL);

    expect_violation(f, "UPDATE benefit_items SET remaining = remaining - 1 WHERE code = 'cp'",
                     "UPDATE benefit_items SET remaining = remaining + 1 WHERE code = 'cp'",
                     "item cp: total stock");
    expect_violation(f, "UPDATE benefit_stock_moves SET delta = delta + 1 WHERE item = 'cp'",
                     "UPDATE benefit_stock_moves SET delta = delta - 1 WHERE item = 'cp'",
                     "its stock journal");
    char sql[256], fix[256];
    expect_violation(f, "UPDATE benefit_codes SET grant_code = 'g_ghost' WHERE code = 'V2'",
                     "UPDATE benefit_codes SET grant_code = NULL WHERE code = 'V2'",
                     "code V2 is marked issued to grant g_ghost");
    snprintf(sql, sizeof sql, "UPDATE benefit_grants SET voucher_code = 'V2' WHERE code = '%s'",
             vg);
    snprintf(fix, sizeof fix, "UPDATE benefit_grants SET voucher_code = 'V1' WHERE code = '%s'",
             vg);
    expect_violation(f, sql, fix, "code V1 is marked issued");
    snprintf(sql, sizeof sql, "UPDATE benefit_grants SET status = 'redeemed' WHERE code = '%s'",
             vg);
    snprintf(fix, sizeof fix, "UPDATE benefit_grants SET status = 'issued' WHERE code = '%s'", vg);
    expect_violation(f, sql, fix, "do not fit");
    snprintf(sql, sizeof sql, "UPDATE benefit_grants SET points = 99 WHERE code = '%s'", mg);
    snprintf(fix, sizeof fix, "UPDATE benefit_grants SET points = 100 WHERE code = '%s'", mg);
    expect_violation(f, sql, fix, "is not one spend of its price");
    exec_sql(f->c, "UPDATE ledger_entries SET reference = 'g_other' WHERE kind = 'spend'");
    char *text = NULL;
    assert_true(check(f, &text) >= 2);
    assert_non_null(strstr(text, "names grant 'g_other'"));
    free(text);
}

/* ---- random operations against a model ---- */

#define M_CUST 3
#define M_ITEMS 3
static const char *const k_mcust[M_CUST] = {"C1", "C2", "C3"};
static const char *const k_mitem[M_ITEMS] = {"ra", "rb", "rv"}; /* rv: a voucher */

typedef struct m_grant {
    char code[SY_BENEFIT_GRANT_CODE_MAX + 1];
    int cust, item;
    int status; /* 0 issued, 1 redeemed, 2 expired, 3 revoked */
    bool mall;
    int64_t expires;
} m_grant;

typedef struct model {
    int64_t total[M_ITEMS], left[M_ITEMS];
    int64_t points[M_CUST];
    m_grant g[4000];
    int n;
} model;

static int m_held(const model *md, int cust, int item)
{
    int n = 0;
    for (int i = 0; i < md->n; i++)
        n += md->g[i].cust == cust && md->g[i].item == item && md->g[i].status != 3;
    return n;
}

static void test_random_operations_against_a_model(void **state)
{
    fx *f = *state;
    model *md = calloc(1, sizeof *md);
    unsigned seed = 20261124;
    /* ra: returns stock on revoke, limit 6 ever, 2-day validity;
     * rb: does not return; rv: voucher with a pool */
    sy_benefit_item it = item_def("ra", SY_BENEFIT_COUPON, 20);
    it.revoke_returns_stock = true;
    it.limits.total = 6;
    it.validity_days = 2;
    make_item(f, it);
    make_item(f, item_def("rb", SY_BENEFIT_FINANCIAL, 15));
    make_item(f, item_def("rv", SY_BENEFIT_VOUCHER, 0));
    md->total[0] = md->left[0] = 20;
    md->total[1] = md->left[1] = 15;
    make_listing(f, "mra", "ra", 70, (sy_benefit_limits){-1, -1, -1});
    make_listing(f, "mrb", "rb", 40, (sy_benefit_limits){-1, -1, -1});
    int64_t now = T0, pool = 0;
    for (int step = 0; step < 1500; step++) {
        int op = rand_r(&seed) % 10, cust = rand_r(&seed) % M_CUST, item = rand_r(&seed) % M_ITEMS;
        sy_benefit_result res;
        now += (rand_r(&seed) % 4) * 3600000LL;
        if (op <= 2) { /* issue */
            int rc = issue(f, k_mcust[cust], k_mitem[item], now, NULL, &res);
            int want = md->left[item] == 0 ? SY_BENEFIT_OUT_OF_STOCK : SY_OK;
            if (item == 0 && m_held(md, cust, 0) >= 6)
                want = SY_BENEFIT_LIMIT_REACHED;
            if (rc != want)
                fail_msg("step %d: issue %s to %s: %d, model %d", step, k_mitem[item],
                         k_mcust[cust], rc, want);
            if (rc == SY_OK) {
                m_grant *g = &md->g[md->n++];
                snprintf(g->code, sizeof g->code, "%s", res.code);
                g->cust = cust;
                g->item = item;
                md->left[item]--;
                /* valid through the 2nd Shanghai day after the day of issue */
                int64_t local_day = (now + 8 * 3600000LL) / DAY;
                g->expires = item == 0 ? (local_day + 3) * DAY - 8 * 3600000LL : 0;
            }
        } else if (op == 3 && item < 2) { /* exchange */
            int64_t price = item == 0 ? 70 : 40;
            int rc = exchange(f, k_mcust[cust], item == 0 ? "mra" : "mrb", now, NULL, &res);
            int want = SY_OK;
            if (item == 0 && m_held(md, cust, 0) >= 6)
                want = SY_BENEFIT_LIMIT_REACHED;
            else if (md->left[item] == 0)
                want = SY_BENEFIT_OUT_OF_STOCK;
            else if (md->points[cust] < price)
                want = SY_BENEFIT_INSUFFICIENT;
            if (rc != want)
                fail_msg("step %d: exchange %s by %s: %d, model %d", step, k_mitem[item],
                         k_mcust[cust], rc, want);
            if (rc == SY_OK) {
                m_grant *g = &md->g[md->n++];
                snprintf(g->code, sizeof g->code, "%s", res.code);
                g->cust = cust;
                g->item = item;
                g->mall = true;
                md->left[item]--;
                md->points[cust] -= price;
                int64_t local_day = (now + 8 * 3600000LL) / DAY;
                g->expires = item == 0 ? (local_day + 3) * DAY - 8 * 3600000LL : 0;
            }
        } else if (op == 4) { /* earn */
            earn(f, k_mcust[cust], 50);
            md->points[cust] += 50;
        } else if ((op == 5 || op == 6) && md->n) { /* redeem */
            m_grant *g = &md->g[rand_r(&seed) % md->n];
            int rc =
                TX(f, sy_benefit_redeem(f->c, "t1", g->code, k_mcust[g->cust], "r", now, &res));
            bool past = g->expires && now >= g->expires;
            int want =
                g->status == 1 || (g->status == 0 && !past) ? SY_OK : SY_BENEFIT_NOT_REDEEMABLE;
            if (rc != want)
                fail_msg("step %d: redeem %s: %d, model %d", step, g->code, rc, want);
            if (rc == SY_OK)
                g->status = 1;
        } else if (op == 7 && md->n) { /* revoke */
            m_grant *g = &md->g[rand_r(&seed) % md->n];
            int rc = TX(f, sy_benefit_revoke(f->c, "t1", g->code, "r", "k", now, &res));
            int want = g->status == 0 ? SY_OK : SY_BENEFIT_NOT_REVOCABLE;
            if (rc != want)
                fail_msg("step %d: revoke %s (status %d): %d, model %d", step, g->code, g->status,
                         rc, want);
            if (rc == SY_OK) {
                g->status = 3;
                if (g->item == 0)
                    md->left[0]++;
                if (g->mall)
                    md->points[g->cust] += g->item == 0 ? 70 : 40;
            }
        } else if (op == 8) { /* expiry sweep */
            int64_t n;
            bool more;
            assert_int_equal(TX(f, sy_benefit_expire(f->c, "t1", now, 1000, &n, &more)), SY_OK);
            int64_t want = 0;
            for (int i = 0; i < md->n; i++)
                if (md->g[i].status == 0 && md->g[i].expires && now >= md->g[i].expires) {
                    md->g[i].status = 2;
                    want++;
                }
            assert_int_equal(n, want);
        } else if (op == 9) { /* more codes or stock */
            if (item == 2) {
                char code[SY_BENEFIT_GRANT_CODE_MAX + 1];
                snprintf(code, sizeof code, "P%lld", (long long)pool++);
                const char *codes[] = {code};
                bool dup;
                int64_t added;
                assert_int_equal(
                    TX(f, sy_benefit_codes_add(f->c, "t1", "rv", codes, 1, "k", now, &dup, &added)),
                    SY_OK);
                assert_int_equal(added, 1);
            } else {
                int64_t t, l;
                assert_int_equal(TX(f, sy_benefit_stock_add(f->c, "t1", k_mitem[item], 1, "r", "k",
                                                            now, &t, &l)),
                                 SY_OK);
            }
            md->total[item]++;
            md->left[item]++;
        }
        for (int i = 0; i < M_ITEMS; i++) {
            if (remaining(f, k_mitem[i]) != md->left[i] ||
                total_stock(f, k_mitem[i]) != md->total[i])
                fail_msg("step %d: item %s stock %lld/%lld, model %lld/%lld", step, k_mitem[i],
                         (long long)remaining(f, k_mitem[i]), (long long)total_stock(f, k_mitem[i]),
                         (long long)md->left[i], (long long)md->total[i]);
        }
        for (int i = 0; i < M_CUST; i++)
            if (points(f, k_mcust[i]) != md->points[i])
                fail_msg("step %d: %s has %lld points, model %lld", step, k_mcust[i],
                         (long long)points(f, k_mcust[i]), (long long)md->points[i]);
        if (step % 100 == 99) {
            for (int i = 0; i < md->n; i++) {
                static const char *const names[] = {"issued", "redeemed", "expired", "revoked"};
                assert_status(f, md->g[i].code, names[md->g[i].status]);
            }
            check(f, NULL);
        }
    }
    assert_true(md->n > 100);
    check(f, NULL);
    free(md);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_catalogue_and_stock_journal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vouchers_issue_each_code_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limits_by_business_day_and_month, setup, teardown),
        cmocka_unit_test_setup_teardown(test_window_stock_delivery_customer_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redeem_revoke_fulfil_expire, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mall_exchange, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exchange_of_a_damaged_listing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checks_refuse_bad_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_catches_broken_data, setup, teardown),
        cmocka_unit_test_setup_teardown(test_random_operations_against_a_model, setup, teardown),
    };
    return cmocka_run_group_tests_name("benefits", tests, NULL, NULL);
}

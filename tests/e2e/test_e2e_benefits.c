/* test_e2e_benefits.c — the benefits catalogue, grants, the points mall and
 * reconciliation end to end: suppliers, items of every kind, stock added
 * and journaled, a voucher code pool uploaded as CSV (bad lines named,
 * duplicates skipped), packages, grants issued, redeemed, revoked,
 * fulfilled and expired, eligibility by segment, the customer's grants page
 * by page, reconciliation as JSON and CSV, `siyu check`; bad input for
 * every endpoint answered with the field and nothing written; 64
 * concurrent clients exchanging a 100-unit item (exactly 100 grants, the
 * points debited match); one Idempotency-Key exchanging once, also when
 * requests race; and kill -9 in the middle of a run of exchanges. */
#include "e2e/harness.h"

static h_server *S;
static char APP_KEY[128], ANALYST_KEY[128];

/* ---- helpers ---- */

static void make_key(h_server *s, const char *role, char *out)
{
    char *txt = NULL;
    assert_int_equal(h_cli(s, &txt, "key create --tenant demo --role %s", role), 0);
    sscanf(txt, "%127s", out);
    free(txt);
}

/* POSTs (or PUTs) as admin and fails unless the status is want. */
static void must(h_server *s, const char *method, const char *path, const char *body, long want)
{
    h_resp r = h_req(s, method, path, s->admin_key, body);
    if (r.status != want)
        fail_msg("%s %s %s: %ld %s", method, path, body ? body : "", r.status, r.body);
    h_resp_free(&r);
}

static void customer_on(h_server *s, const char *no, const char *body)
{
    char path[128];
    snprintf(path, sizeof path, "/v1/customers/%s", no);
    h_resp r = h_req(s, "PUT", path, s->admin_key, body ? body : "{}");
    if (r.status != 201 && r.status != 200)
        fail_msg("PUT %s: %ld %s", path, r.status, r.body);
    h_resp_free(&r);
}

static void earn_on(h_server *s, const char *no, long amount)
{
    char path[128], body[128];
    snprintf(path, sizeof path, "/v1/customers/%s/points:earn", no);
    snprintf(body, sizeof body, "{\"point_type\":\"pts\",\"amount\":%ld,\"source\":\"test\"}",
             amount);
    must(s, "POST", path, body, 201);
}

static json_int_t balance_on(h_server *s, const char *no)
{
    char path[128];
    snprintf(path, sizeof path, "/v1/customers/%s/points", no);
    h_resp r = h_req(s, "GET", path, s->admin_key, NULL);
    assert_int_equal(r.status, 200);
    json_int_t b = json_integer_value(
        json_object_get(json_array_get(json_object_get(r.json, "items"), 0), "balance"));
    h_resp_free(&r);
    return b;
}

/* The item's remaining stock (GET /v1/benefits/items/{code}). */
static json_int_t stock_of(h_server *s, const char *item, json_int_t *total)
{
    char path[128];
    snprintf(path, sizeof path, "/v1/benefits/items/%s", item);
    h_resp r = h_req(s, "GET", path, s->admin_key, NULL);
    assert_int_equal(r.status, 200);
    json_int_t left = json_integer_value(json_object_get(r.json, "remaining"));
    if (total)
        *total = json_integer_value(json_object_get(r.json, "total_stock"));
    h_resp_free(&r);
    return left;
}

static h_resp issue_on(h_server *s, const char *key, const char *no, const char *body)
{
    char path[128];
    snprintf(path, sizeof path, "/v1/customers/%s/grants", no);
    return h_req(s, "POST", path, key, body);
}

/* Issues and copies the grant code into code. */
static void issue_ok(const char *no, const char *body, char *code)
{
    h_resp r = issue_on(S, APP_KEY, no, body);
    if (r.status != 201)
        fail_msg("issue %s to %s: %ld %s", body, no, r.status, r.body);
    snprintf(code, 32, "%s", h_str(r.json, "code"));
    h_resp_free(&r);
}

static h_resp grant_op(const char *code, const char *op, const char *key, const char *body)
{
    char path[128];
    snprintf(path, sizeof path, "/v1/grants/%s:%s", code, op);
    return h_req(S, "POST", path, key, body);
}

static json_t *grant_get(h_server *s, const char *code)
{
    char path[128];
    snprintf(path, sizeof path, "/v1/grants/%s", code);
    h_resp r = h_req(s, "GET", path, s->admin_key, NULL);
    if (r.status != 200) {
        h_resp_free(&r);
        return NULL;
    }
    json_t *g = json_incref(r.json);
    h_resp_free(&r);
    return g;
}

static int check_on(h_server *s, char **out)
{
    char *txt = NULL;
    int rc = h_cli(s, &txt, "check --tenant demo");
    if (out)
        *out = txt;
    else
        free(txt);
    return rc;
}

static void assert_check_passes(h_server *s)
{
    char *out = NULL;
    int rc = check_on(s, &out);
    if (rc != 0 || !strstr(out, "every invariant holds") || !strstr(out, "benefits:"))
        fail_msg("siyu check exited %d:\n%s", rc, out);
    free(out);
}

/* The rows of the catalogue and grants, to show a refusal wrote nothing. */
static long rows_on(h_server *s)
{
    return h_sql_long(
        s, "SELECT (SELECT COUNT(*) FROM benefit_suppliers)"
           " + (SELECT COUNT(*) FROM benefit_items) + (SELECT SUM(remaining + total_stock)"
           " FROM benefit_items) + (SELECT COUNT(*) FROM benefit_codes)"
           " + (SELECT COUNT(*) FROM benefit_stock_moves)"
           " + (SELECT COUNT(*) FROM benefit_packages)"
           " + (SELECT COUNT(*) FROM mall_listings) + (SELECT COUNT(*) FROM"
           " benefit_grants) + (SELECT COUNT(*) FROM benefit_grants WHERE status"
           " <> 'issued') + (SELECT COUNT(*) FROM ledger_entries)");
}

static void catalogue_on(h_server *s)
{
    must(s, "POST", "/v1/point-types", "{\"code\":\"pts\",\"name\":\"积分\",\"expiry\":\"never\"}",
         201);
    must(s, "POST", "/v1/benefits/suppliers", "{\"code\":\"acme\",\"name\":\"某权益供应商\"}", 201);
}

static int group_setup(void **state)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    S = h_start(NULL);
    make_key(S, "app", APP_KEY);
    make_key(S, "analyst", ANALYST_KEY);
    catalogue_on(S);
    must(S, "POST", "/v1/benefits/suppliers", "{\"code\":\"other\",\"name\":\"Other\"}", 201);
    must(S, "POST", "/v1/benefits/items",
         "{\"code\":\"cp10\",\"name\":\"10元立减金\",\"kind\":\"coupon\",\"supplier\":\"acme\","
         "\"face_value\":1000,\"cost_price\":800,\"params\":{\"threshold\":5000},\"stock\":5,"
         "\"validity_days\":30,\"limits\":{\"per_day\":3},\"revoke_returns_stock\":true}",
         201);
    must(S, "POST", "/v1/benefits/items",
         "{\"code\":\"jd50\",\"name\":\"JD card\",\"kind\":\"voucher\",\"supplier\":\"acme\","
         "\"face_value\":5000,\"cost_price\":4800}",
         201);
    must(S, "POST", "/v1/benefits/items",
         "{\"code\":\"mug\",\"name\":\"Mug\",\"kind\":\"goods\",\"supplier\":\"other\","
         "\"face_value\":3000,\"cost_price\":1500,\"stock\":3}",
         201);
    must(S, "POST", "/v1/benefits/items",
         "{\"code\":\"rate\",\"name\":\"Loan rate -0.2%\",\"kind\":\"financial\","
         "\"supplier\":\"acme\",\"face_value\":0,\"cost_price\":0,\"stock\":100,"
         "\"params\":{\"right\":\"rate_discount\",\"basis_points\":20},"
         "\"segment_expression\":\"aum >= 1000000\"}",
         201);
    customer_on(S, "C1", "{\"attributes\":{\"aum\":5000000}}");
    customer_on(S, "C2", "{\"attributes\":{\"aum\":100}}");
    return 0;
}

static int group_teardown(void **state)
{
    h_stop(S);
    curl_global_cleanup();
    return 0;
}

/* ---- the catalogue ---- */

static void test_catalogue(void **state)
{
    h_resp r = h_req(S, "GET", "/v1/benefits/items", APP_KEY, NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "items")), 4);
    h_resp_free(&r);
    r = h_req(S, "GET", "/v1/benefits/items/cp10", ANALYST_KEY, NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(r.json, "limits"), "per_day")), 3);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(r.json, "params"), "threshold")), 5000);
    h_resp_free(&r);
    /* stock added, journaled */
    r = h_req(S, "POST", "/v1/benefits/items/rate/stock", S->admin_key,
              "{\"add\":20,\"reason\":\"second batch\"}");
    assert_int_equal(r.status, 200);
    assert_int_equal(json_integer_value(json_object_get(r.json, "total_stock")), 120);
    h_resp_free(&r);
    assert_int_equal(h_sql_long(S, "SELECT COUNT(*) FROM benefit_stock_moves WHERE item = 'rate'"),
                     2);
    r = h_req(S, "GET", "/v1/benefits/items/rate/stock?limit=1", ANALYST_KEY, NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_integer_value(json_object_get(r.json, "total_stock")), 120);
    json_t *mv = json_array_get(json_object_get(r.json, "moves"), 0);
    assert_int_equal(json_integer_value(json_object_get(mv, "delta")), 20);
    assert_string_equal(h_str(mv, "reason"), "second batch");
    char next[160];
    snprintf(next, sizeof next, "/v1/benefits/items/rate/stock?limit=1&cursor=%s",
             h_str(r.json, "next_cursor"));
    h_resp_free(&r);
    r = h_req(S, "GET", next, ANALYST_KEY, NULL);
    assert_int_equal(r.status, 200);
    mv = json_array_get(json_object_get(r.json, "moves"), 0);
    assert_int_equal(json_integer_value(json_object_get(mv, "delta")), 100);
    assert_string_equal(h_str(mv, "reason"), "initial stock");
    h_resp_free(&r);
    r = h_req(S, "GET", "/v1/benefits/items/rate/stock", APP_KEY, NULL);
    h_assert_problem(r, 403, "forbidden", NULL);
    h_resp_free(&r);
    /* the voucher pool, as CSV: duplicates skipped and named */
    const char *csv[] = {"Content-Type: text/csv", NULL};
    const char *pool = "code\r\nJD-0001\r\nJD-0002\r\n\"JD-0003\"\r\nJD-0001\r\nJD-0004\r\n";
    r = h_req_h(S, "POST", "/v1/benefits/items/jd50/codes", S->admin_key, pool, csv);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_integer_value(json_object_get(r.json, "added")), 4);
    json_t *d = json_array_get(json_object_get(r.json, "duplicates"), 0);
    assert_int_equal(json_integer_value(json_object_get(d, "line")), 5);
    assert_string_equal(h_str(d, "code"), "JD-0001");
    h_resp_free(&r);
    r = h_req_h(S, "POST", "/v1/benefits/items/jd50/codes", S->admin_key, "JD-0004\nJD-0005\n",
                csv);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_integer_value(json_object_get(r.json, "added")), 1);
    assert_string_equal(h_str(json_array_get(json_object_get(r.json, "duplicates"), 0), "reason"),
                        "already in the pool");
    h_resp_free(&r);
    json_int_t total;
    assert_int_equal(stock_of(S, "jd50", &total), 5);
    assert_int_equal(total, 5);
    /* CSV as RFC 4180 reads it: a quoted code's doubled quote is one quote;
     * a lone or unclosed quote, and a JSON body, are refused, nothing added */
    must(S, "POST", "/v1/benefits/items",
         "{\"code\":\"jdq\",\"name\":\"JD card Q\",\"kind\":\"voucher\",\"supplier\":\"acme\","
         "\"face_value\":5000,\"cost_price\":4800}",
         201);
    r = h_req_h(S, "POST", "/v1/benefits/items/jdq/codes", S->admin_key,
                "\"JD-\"\"Q\"\"\"\n\"JD,6\"\n", csv);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_integer_value(json_object_get(r.json, "added")), 2);
    h_resp_free(&r);
    assert_int_equal(h_sql_long(S, "SELECT COUNT(*) FROM benefit_codes WHERE code IN"
                                   " ('JD-' || char(34) || 'Q' || char(34), 'JD,6')"),
                     2);
    static const char *const refused[] = {"\"JD-0007\n", "JD-\"8\"\n", "\"JD-9\"x\n",
                                          "\"JD-9\",\"JD-10\"\n"};
    for (size_t i = 0; i < SY_TEST_LEN(refused); i++) {
        r = h_req_h(S, "POST", "/v1/benefits/items/jdq/codes", S->admin_key, refused[i], csv);
        h_assert_problem(r, 400, "validation", "body");
        assert_int_equal(json_integer_value(json_object_get(
                             json_array_get(json_object_get(r.json, "errors"), 0), "line")),
                         1);
        h_resp_free(&r);
    }
    r = h_req(S, "POST", "/v1/benefits/items/jdq/codes", S->admin_key, "{\"codes\":[\"a\"]}");
    h_assert_problem(r, 400, "validation", "Content-Type");
    h_resp_free(&r);
    assert_int_equal(stock_of(S, "jdq", &total), 2);
    /* a package; listings */
    must(S, "POST", "/v1/benefits/packages",
         "{\"code\":\"welcome\",\"name\":\"新客礼包\",\"items\":[{\"item\":\"cp10\"},"
         "{\"item\":\"jd50\",\"quantity\":2}]}",
         201);
    r = h_req(S, "GET", "/v1/benefits/packages/welcome", APP_KEY, NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "items")), 2);
    h_resp_free(&r);
    r = h_req(S, "GET", "/v1/benefits/suppliers/acme", APP_KEY, NULL);
    assert_int_equal(r.status, 200);
    h_resp_free(&r);
    /* roles: app keys read, only admins change the catalogue */
    r = h_req(S, "POST", "/v1/benefits/suppliers", APP_KEY, "{\"code\":\"x\",\"name\":\"x\"}");
    h_assert_problem(r, 403, "forbidden", NULL);
    h_resp_free(&r);
    assert_check_passes(S);
}

/* ---- grants ---- */

static void test_grant_lifecycle(void **state)
{
    char cp[48], v1[48], mug[48], one[96];
    issue_ok("C1", "{\"item\":\"cp10\"}", cp);
    json_t *g = grant_get(S, cp);
    assert_string_equal(h_str(g, "status"), "issued");
    assert_non_null(h_str(g, "expires_at"));
    json_decref(g);
    issue_ok("C1", "{\"item\":\"jd50\"}", v1);
    g = grant_get(S, v1);
    assert_string_equal(h_str(g, "voucher_code"), "JD-0001");
    json_decref(g);
    /* goods need an address */
    h_resp r = issue_on(S, APP_KEY, "C1", "{\"item\":\"mug\"}");
    h_assert_problem(r, 400, "validation", "/delivery");
    h_resp_free(&r);
    issue_ok("C1",
             "{\"item\":\"mug\",\"delivery\":{\"name\":\"李四\",\"phone\":\"13812345678\","
             "\"address\":\"北京市朝阳区建国路1号\"}}",
             mug);
    /* The address is personal data: sealed in the store, masked in every
     * answer, in clear only for an admin or compliance key that asks
     * (audited) */
    assert_int_equal(h_sql_long(S, "SELECT COUNT(*) FROM benefit_grants WHERE delivery LIKE"
                                   " '%13812345678%' OR delivery LIKE '%建国路%'"
                                   " OR delivery_masked LIKE '%13812345678%'"),
                     0);
    assert_int_equal(
        h_sql_long(S, "SELECT COUNT(*) FROM idempotency WHERE body LIKE '%13812345678%'"), 0);
    g = grant_get(S, mug);
    json_t *d = json_object_get(g, "delivery");
    assert_string_equal(h_str(d, "name"), "李*");
    assert_string_equal(h_str(d, "phone"), "138****5678");
    assert_string_equal(h_str(d, "address"), "北京市朝阳****");
    json_decref(g);
    char unmask[128];
    snprintf(unmask, sizeof unmask, "/v1/grants/%s?unmask=true", mug);
    r = h_req(S, "GET", unmask, APP_KEY, NULL);
    h_assert_problem(r, 403, "forbidden", "unmask");
    h_resp_free(&r);
    r = h_req(S, "GET", unmask, ANALYST_KEY, NULL);
    h_assert_problem(r, 403, "forbidden", "unmask");
    h_resp_free(&r);
    long audits = h_sql_long(S, "SELECT COUNT(*) FROM audit_log WHERE action ="
                                " 'read unmasked personal data'");
    r = h_req(S, "GET", unmask, S->admin_key, NULL);
    assert_int_equal(r.status, 200);
    d = json_object_get(r.json, "delivery");
    assert_string_equal(h_str(d, "phone"), "13812345678");
    assert_string_equal(h_str(d, "address"), "北京市朝阳区建国路1号");
    assert_true(json_is_true(json_object_get(r.json, "unmasked")));
    h_resp_free(&r);
    assert_int_equal(h_sql_long(S, "SELECT COUNT(*) FROM audit_log WHERE action ="
                                   " 'read unmasked personal data'"),
                     audits + 1);
    /* a grant written before migration 0023 holds clear text: shown masked */
    char legacy[512];
    snprintf(legacy, sizeof legacy,
             "UPDATE benefit_grants SET delivery = json_object('address', '上海市浦东新区世纪大道',"
             " 'name', '王五', 'phone', '13900001111'), delivery_masked = NULL WHERE code = '%s'",
             mug);
    h_sql(S, legacy);
    g = grant_get(S, mug);
    assert_string_equal(h_str(json_object_get(g, "delivery"), "phone"), "139****1111");
    json_decref(g);
    r = h_req(S, "GET", unmask, S->admin_key, NULL);
    assert_string_equal(h_str(json_object_get(r.json, "delivery"), "name"), "王五");
    h_resp_free(&r);
    /* a voucher's code: in clear for the app that shows it to the customer,
     * its last four characters for an analyst */
    snprintf(one, sizeof one, "/v1/grants/%s", v1);
    r = h_req(S, "GET", one, ANALYST_KEY, NULL);
    assert_string_equal(h_str(r.json, "voucher_code"), "****0001");
    h_resp_free(&r);
    r = h_req(S, "GET", "/v1/customers/C1/grants", ANALYST_KEY, NULL);
    json_t *it = json_object_get(r.json, "items");
    for (size_t i = 0; i < json_array_size(it); i++)
        if (h_str(json_array_get(it, i), "voucher_code"))
            assert_string_equal(h_str(json_array_get(it, i), "voucher_code"), "****0001");
    h_resp_free(&r);
    /* redeem: ownership, idempotent */
    r = grant_op(cp, "redeem", APP_KEY, "{\"customer_no\":\"C2\"}");
    h_assert_problem(r, 404, "not-found", "/customer_no");
    h_resp_free(&r);
    r = grant_op(cp, "redeem", APP_KEY, "{\"customer_no\":\"C1\",\"reference\":\"pay-1\"}");
    assert_int_equal(r.status, 200);
    assert_string_equal(h_str(r.json, "status"), "redeemed");
    h_resp_free(&r);
    r = grant_op(cp, "redeem", APP_KEY, "{\"customer_no\":\"C1\",\"reference\":\"pay-1\"}");
    assert_int_equal(r.status, 200);
    assert_string_equal(h_str(r.json, "redeem_reference"), "pay-1");
    h_resp_free(&r);
    /* a second payment may not use the coupon again: another reference
     * (or none) is refused, and the grant keeps its first redemption */
    r = grant_op(cp, "redeem", APP_KEY, "{\"customer_no\":\"C1\",\"reference\":\"pay-2\"}");
    h_assert_problem(r, 409, "already-redeemed", "/reference");
    assert_string_equal(h_str(r.json, "grant_status"), "redeemed");
    h_resp_free(&r);
    r = grant_op(cp, "redeem", APP_KEY, "{\"customer_no\":\"C1\"}");
    h_assert_problem(r, 409, "already-redeemed", "/reference");
    h_resp_free(&r);
    snprintf(one, sizeof one, "/v1/grants/%s", cp);
    r = h_req(S, "GET", one, APP_KEY, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(h_str(r.json, "redeem_reference"), "pay-1");
    h_resp_free(&r);
    r = grant_op(cp, "revoke", S->admin_key, "{\"reason\":\"x\"}");
    h_assert_problem(r, 409, "not-revocable", NULL);
    h_resp_free(&r);
    /* goods: redeemed by delivery */
    r = grant_op(mug, "redeem", APP_KEY, "{\"customer_no\":\"C1\"}");
    h_assert_problem(r, 409, "not-redeemable", NULL);
    h_resp_free(&r);
    r = grant_op(mug, "fulfil", APP_KEY, "{\"status\":\"shipped\",\"tracking\":\"SF1\"}");
    assert_int_equal(r.status, 200);
    h_resp_free(&r);
    r = grant_op(mug, "fulfil", APP_KEY, "{\"status\":\"shipped\"}");
    h_assert_problem(r, 409, "conflict", "/status");
    h_resp_free(&r);
    r = grant_op(mug, "fulfil", APP_KEY, "{\"status\":\"delivered\"}");
    assert_int_equal(r.status, 200);
    assert_string_equal(h_str(r.json, "status"), "redeemed");
    assert_string_equal(h_str(r.json, "tracking"), "SF1");
    h_resp_free(&r);
    /* revoke: a coupon returns its unit (the item says so), a voucher not */
    char cp2[32];
    issue_ok("C1", "{\"item\":\"cp10\"}", cp2);
    json_int_t before = stock_of(S, "cp10", NULL);
    r = grant_op(cp2, "revoke", APP_KEY, "{\"reason\":\"mistake\"}");
    h_assert_problem(r, 403, "forbidden", NULL);
    h_resp_free(&r);
    r = grant_op(cp2, "revoke", S->admin_key, "{\"reason\":\"mistake\"}");
    assert_int_equal(r.status, 200);
    assert_true(json_is_true(json_object_get(r.json, "stock_returned")));
    h_resp_free(&r);
    assert_int_equal(stock_of(S, "cp10", NULL), before + 1);
    before = stock_of(S, "jd50", NULL);
    r = grant_op(v1, "revoke", S->admin_key, "{\"reason\":\"mistake\"}");
    assert_int_equal(r.status, 200);
    h_resp_free(&r);
    assert_int_equal(stock_of(S, "jd50", NULL), before);
    /* a package: all or nothing, one key one issue */
    const char *hdr[] = {"Idempotency-Key: welcome-C2", NULL};
    r = h_req_h(S, "POST", "/v1/customers/C2/grants", APP_KEY, "{\"package\":\"welcome\"}", hdr);
    assert_int_equal(r.status, 201);
    assert_int_equal(json_array_size(json_object_get(r.json, "grants")), 3);
    h_resp_free(&r);
    h_sql(S, "UPDATE idempotency SET created_at = created_at - 90000000"
             " WHERE idem_key = 'welcome-C2'");
    r = h_req_h(S, "POST", "/v1/customers/C2/grants", APP_KEY, "{\"package\":\"welcome\"}", hdr);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "grants")), 3);
    h_resp_free(&r);
    long rows = rows_on(S);
    /* jd50 has 2 codes left: a package needing 2 more after this fails whole */
    r = issue_on(S, APP_KEY, "C2", "{\"package\":\"welcome\"}");
    assert_int_equal(r.status, 201);
    h_resp_free(&r);
    rows = rows_on(S);
    r = issue_on(S, APP_KEY, "C2", "{\"package\":\"welcome\"}");
    h_assert_problem(r, 409, "out-of-stock", NULL);
    h_resp_free(&r);
    assert_int_equal(rows_on(S), rows);
    /* the customer's grants, page by page */
    int seen = 0;
    char path[160], cursor[32] = "";
    for (;;) {
        snprintf(path, sizeof path, "/v1/customers/C1/grants?limit=2%s%s",
                 cursor[0] ? "&cursor=" : "", cursor);
        r = h_req(S, "GET", path, APP_KEY, NULL);
        assert_int_equal(r.status, 200);
        seen += (int)json_array_size(json_object_get(r.json, "items"));
        const char *next = h_str(r.json, "next_cursor");
        if (next)
            snprintf(cursor, sizeof cursor, "%s", next);
        h_resp_free(&r);
        if (!next)
            break;
    }
    assert_int_equal(seen, 4);
    r = h_req(S, "GET", "/v1/customers/C1/grants?status=revoked", APP_KEY, NULL);
    assert_int_equal(json_array_size(json_object_get(r.json, "items")), 2);
    h_resp_free(&r);
    /* expiry: called, marks what is past */
    h_sql(S, "UPDATE benefit_grants SET expires_at = 1000 WHERE customer_no = 'C2'"
             " AND item = 'cp10'");
    r = h_req(S, "POST", "/v1/grants:expire", S->admin_key, NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_integer_value(json_object_get(r.json, "expired")), 2);
    h_resp_free(&r);
    assert_check_passes(S);
}

/* The server's maintenance sweeps expired grants by itself, about a second
 * after it starts (then every ten minutes). */
static void test_expiry_scheduled(void **state)
{
    char code[48];
    issue_ok("C1", "{\"item\":\"cp10\"}", code);
    /* a clean exit (under the sanitizers: no leak) */
    assert_int_equal(h_signal_wait(S, SIGTERM), 0);
    char sql[200];
    snprintf(sql, sizeof sql, "UPDATE benefit_grants SET expires_at = 2000 WHERE code = '%s'",
             code);
    h_sql(S, sql);
    h_launch(S);
    bool expired = false;
    for (int i = 0; i < 300 && !expired; i++) {
        json_t *g = grant_get(S, code);
        expired = g && !strcmp(h_str(g, "status"), "expired");
        json_decref(g);
        if (!expired)
            h_sleep_ms(50);
    }
    if (!expired)
        fail_msg("the maintenance did not expire grant %s within 15 s", code);
    assert_check_passes(S);
}

static void test_eligibility(void **state)
{
    h_resp r = issue_on(S, APP_KEY, "C2", "{\"item\":\"rate\"}");
    h_assert_problem(r, 403, "not-eligible", NULL);
    h_resp_free(&r);
    char code[48];
    issue_ok("C1", "{\"item\":\"rate\"}", code);
    /* a saved segment, and it follows the customer's data */
    must(S, "POST", "/v1/segments",
         "{\"id\":\"rich\",\"name\":\"rich\",\"expression\":\"aum >= 3000000\"}", 201);
    must(S, "POST", "/v1/benefits/items",
         "{\"code\":\"lounge\",\"name\":\"Airport lounge\",\"kind\":\"financial\","
         "\"supplier\":\"acme\",\"face_value\":20000,\"cost_price\":9000,\"stock\":10,"
         "\"params\":{\"right\":\"fee_waiver\"},\"segment_id\":\"rich\"}",
         201);
    r = issue_on(S, APP_KEY, "C2", "{\"item\":\"lounge\"}");
    h_assert_problem(r, 403, "not-eligible", NULL);
    h_resp_free(&r);
    customer_on(S, "C2", "{\"attributes\":{\"aum\":9000000}}");
    issue_ok("C2", "{\"item\":\"lounge\"}", code);
    r = issue_on(S, APP_KEY, "C9", "{\"item\":\"lounge\"}");
    h_assert_problem(r, 404, "not-found", NULL);
    h_resp_free(&r);
}

static void test_reconciliation(void **state)
{
    char today[16];
    time_t now = time(NULL) + 8 * 3600; /* the demo tenant's days are Shanghai's */
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(today, sizeof today, "%Y-%m-%d", &tm);
    char path[200];
    snprintf(path, sizeof path, "/v1/reconciliation?supplier=acme&from=%s&to=%s", today, today);
    h_resp r = h_req(S, "GET", path, ANALYST_KEY, NULL);
    assert_int_equal(r.status, 200);
    json_t *items = json_object_get(r.json, "items"), *cp = NULL;
    size_t i;
    json_t *it;
    json_array_foreach (items, i, it) {
        assert_string_equal(h_str(it, "supplier"), "acme");
        if (!strcmp(h_str(it, "item"), "cp10"))
            cp = it;
    }
    assert_non_null(cp);
    long issued = h_sql_long(S, "SELECT COUNT(*) FROM benefit_grants WHERE item = 'cp10'");
    assert_int_equal(json_integer_value(json_object_get(cp, "issued")), issued);
    assert_int_equal(json_integer_value(json_object_get(cp, "issued_cost")), issued * 800);
    assert_int_equal(json_integer_value(json_object_get(cp, "redeemed")), 1);
    assert_int_equal(json_integer_value(json_object_get(cp, "revoked")), 1);
    assert_int_equal(json_integer_value(json_object_get(cp, "expired")), 3); /* 2 + the sweep's */
    h_resp_free(&r);
    snprintf(path, sizeof path, "/v1/reconciliation?from=%s&to=%s&format=csv", today, today);
    r = h_req(S, "GET", path, S->admin_key, NULL);
    assert_int_equal(r.status, 200);
    char ct[64];
    assert_true(h_header(&r, "Content-Type", ct, sizeof ct));
    assert_non_null(strstr(ct, "text/csv"));
    assert_non_null(strstr(r.body, "supplier,item,name,kind,issued,issued_cost"));
    assert_non_null(strstr(r.body, "other,mug,\"Mug\",goods,1,1500,1,1500,0,0,0,0"));
    h_resp_free(&r);
    /* a day written otherwise is named as such, not as missing */
    r = h_req(S, "GET", "/v1/reconciliation?from=2026/01/01&to=2026-01-31", S->admin_key, NULL);
    h_assert_problem(r, 400, "validation", "from");
    assert_non_null(strstr(h_str(r.json, "detail"), "must be a day"));
    h_resp_free(&r);
    r = h_req(S, "GET", "/v1/reconciliation?from=2026-01-01&to=2026-01-31", APP_KEY, NULL);
    h_assert_problem(r, 403, "forbidden", NULL);
    h_resp_free(&r);

    /* The benefits report: the same figures by day, supplier and item (one definition, in
     * benefits.c).  Everything here happened today: today's rows add up to reconciliation. */
    snprintf(path, sizeof path, "/v1/reconciliation?from=%s&to=%s", today, today);
    r = h_req(S, "GET", path, ANALYST_KEY, NULL);
    json_t *recon_totals = json_incref(json_object_get(r.json, "totals"));
    h_resp_free(&r);
    snprintf(path, sizeof path, "/v1/reports/benefits?from=2026-01-01&to=%s", today);
    r = h_req(S, "GET", path, ANALYST_KEY, NULL);
    assert_int_equal(r.status, 200);
    assert_true(json_equal(json_object_get(r.json, "totals"), recon_totals));
    json_t *rows = json_object_get(r.json, "rows"), *cprow = NULL;
    json_array_foreach (rows, i, it) {
        assert_string_equal(h_str(it, "day"), today);
        if (!strcmp(h_str(it, "item"), "cp10"))
            cprow = it;
    }
    assert_non_null(cprow);
    assert_string_equal(h_str(cprow, "supplier"), "acme");
    assert_int_equal(json_integer_value(json_object_get(cprow, "issued")), issued);
    assert_int_equal(json_integer_value(json_object_get(cprow, "expired")), 3);
    json_t *acme = json_object_get(json_object_get(r.json, "by_supplier"), "acme");
    assert_true(json_integer_value(json_object_get(acme, "issued")) >= issued);
    h_resp_free(&r);
    json_decref(recon_totals);
    snprintf(path, sizeof path, "/v1/reports/benefits?from=%s&to=%s&supplier=other&format=csv",
             today, today);
    r = h_req(S, "GET", path, ANALYST_KEY, NULL);
    assert_int_equal(r.status, 200);
    char line[160];
    snprintf(line, sizeof line, "\r\n%s,other,mug,1,1500,1,1500,0,0,0,0\r\n", today);
    assert_non_null(strstr(r.body, "day,supplier,item,issued,issued_cost,redeemed"));
    assert_non_null(strstr(r.body, line));
    h_resp_free(&r);
    /* no activity: no rows; bad parameters name themselves */
    r = h_req(S, "GET", "/v1/reports/benefits?from=2020-01-01&to=2020-01-31", ANALYST_KEY, NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "rows")), 0);
    h_resp_free(&r);
    static const struct {
        const char *q, *field;
    } bad[] = {{"from=2026-01-32&to=2026-02-01", "from"},
               {"from=2026-01-01", "to"},
               {"from=2026-02-01&to=2026-01-01", "to"},
               {"from=2024-01-01&to=2026-01-01", "to"},
               {"from=2026-01-01&to=2026-01-02&format=pdf", "format"},
               {"from=2026-01-01&to=2026-01-02&supplier=Not%20A%20Code", "supplier"}};
    for (size_t k = 0; k < SY_TEST_LEN(bad); k++) {
        snprintf(path, sizeof path, "/v1/reports/benefits?%s", bad[k].q);
        r = h_req(S, "GET", path, ANALYST_KEY, NULL);
        h_assert_problem(r, 400, "validation", bad[k].field);
        h_resp_free(&r);
    }
}

/* ---- bad input: a 4xx naming the field, nothing written ---- */

typedef struct bad_case {
    const char *method, *path, *body;
    long status;
    const char *type, *field;
} bad_case;

static void test_bad_input_writes_nothing(void **state)
{
    static const bad_case cases[] = {
        {"POST", "/v1/benefits/suppliers", "{\"code\":\"Bad Code\",\"name\":\"x\"}", 400,
         "validation", "/code"},
        {"POST", "/v1/benefits/suppliers", "{\"code\":\"ok\"}", 400, "validation", "/name"},
        {"POST", "/v1/benefits/suppliers", "{\"code\":\"acme\",\"name\":\"dup\"}", 409, "conflict",
         "/code"},
        {"POST", "/v1/benefits/suppliers", "[1]", 400, "validation", NULL},
        {"POST", "/v1/benefits/items", "{\"code\":\"i1\",\"name\":\"x\",\"kind\":\"gift\"}", 400,
         "validation", "/kind"},
        {"POST", "/v1/benefits/items",
         "{\"code\":\"i1\",\"name\":\"x\",\"kind\":\"goods\",\"supplier\":\"nobody\","
         "\"face_value\":1,\"cost_price\":1,\"stock\":1}",
         400, "validation", "/supplier"},
        {"POST", "/v1/benefits/items",
         "{\"code\":\"i1\",\"name\":\"x\",\"kind\":\"goods\",\"supplier\":\"acme\","
         "\"face_value\":-1,\"cost_price\":1,\"stock\":1}",
         400, "validation", "/face_value"},
        {"POST", "/v1/benefits/items",
         "{\"code\":\"i1\",\"name\":\"x\",\"kind\":\"goods\",\"supplier\":\"acme\","
         "\"face_value\":1,\"cost_price\":1.5,\"stock\":1}",
         400, "validation", "/cost_price"},
        {"POST", "/v1/benefits/items",
         "{\"code\":\"i1\",\"name\":\"x\",\"kind\":\"goods\",\"supplier\":\"acme\","
         "\"face_value\":1,\"cost_price\":1}",
         400, "validation", "/stock"},
        {"POST", "/v1/benefits/items",
         "{\"code\":\"i1\",\"name\":\"x\",\"kind\":\"coupon\",\"supplier\":\"acme\","
         "\"face_value\":1,\"cost_price\":1,\"stock\":1,\"validity_days\":3}",
         400, "validation", "/params/threshold"},
        {"POST", "/v1/benefits/items",
         "{\"code\":\"i1\",\"name\":\"x\",\"kind\":\"coupon\",\"supplier\":\"acme\","
         "\"face_value\":1,\"cost_price\":1,\"stock\":1,\"params\":{\"threshold\":0}}",
         400, "validation", "/validity_days"},
        {"POST", "/v1/benefits/items",
         "{\"code\":\"i1\",\"name\":\"x\",\"kind\":\"financial\",\"supplier\":\"acme\","
         "\"face_value\":1,\"cost_price\":1,\"stock\":1,\"params\":{\"right\":\"free lunch\"}}",
         400, "validation", "/params/right"},
        {"POST", "/v1/benefits/items",
         "{\"code\":\"i1\",\"name\":\"x\",\"kind\":\"voucher\",\"supplier\":\"acme\","
         "\"face_value\":1,\"cost_price\":1,\"stock\":5}",
         400, "validation", "/stock"},
        {"POST", "/v1/benefits/items",
         "{\"code\":\"i1\",\"name\":\"x\",\"kind\":\"voucher\",\"supplier\":\"acme\","
         "\"face_value\":1,\"cost_price\":1,\"revoke_returns_stock\":true}",
         400, "validation", "/revoke_returns_stock"},
        {"POST", "/v1/benefits/items",
         "{\"code\":\"i1\",\"name\":\"x\",\"kind\":\"goods\",\"supplier\":\"acme\","
         "\"face_value\":1,\"cost_price\":1,\"stock\":1,\"limits\":{\"per_week\":1}}",
         400, "validation", "/limits/per_week"},
        {"POST", "/v1/benefits/items",
         "{\"code\":\"i1\",\"name\":\"x\",\"kind\":\"goods\",\"supplier\":\"acme\","
         "\"face_value\":1,\"cost_price\":1,\"stock\":1,\"limits\":{\"per_day\":0}}",
         400, "validation", "/limits/per_day"},
        {"POST", "/v1/benefits/items",
         "{\"code\":\"i1\",\"name\":\"x\",\"kind\":\"goods\",\"supplier\":\"acme\","
         "\"face_value\":1,\"cost_price\":1,\"stock\":1,\"available_from\":\"tomorrow\"}",
         400, "validation", "/available_from"},
        {"POST", "/v1/benefits/items",
         "{\"code\":\"i1\",\"name\":\"x\",\"kind\":\"goods\",\"supplier\":\"acme\","
         "\"face_value\":1,\"cost_price\":1,\"stock\":1,"
         "\"available_from\":\"2026-12-01T00:00:00Z\",\"available_until\":\"2026-11-01T00:00:"
         "00Z\"}",
         400, "validation", "/available_until"},
        {"POST", "/v1/benefits/items",
         "{\"code\":\"i1\",\"name\":\"x\",\"kind\":\"goods\",\"supplier\":\"acme\","
         "\"face_value\":1,\"cost_price\":1,\"stock\":1,\"segment_id\":\"nope\"}",
         400, "validation", "/segment_id"},
        {"POST", "/v1/benefits/items",
         "{\"code\":\"i1\",\"name\":\"x\",\"kind\":\"goods\",\"supplier\":\"acme\","
         "\"face_value\":1,\"cost_price\":1,\"stock\":1,\"segment_expression\":\"wealth > \"}",
         400, "validation", "/segment_expression"},
        {"POST", "/v1/benefits/items",
         "{\"code\":\"i1\",\"name\":\"x\",\"kind\":\"goods\",\"supplier\":\"acme\","
         "\"face_value\":1,\"cost_price\":1,\"stock\":1,\"colour\":\"red\"}",
         400, "validation", "/colour"},
        {"POST", "/v1/benefits/items",
         "{\"code\":\"cp10\",\"name\":\"x\",\"kind\":\"goods\",\"supplier\":\"acme\","
         "\"face_value\":1,\"cost_price\":1,\"stock\":1}",
         409, "conflict", "/code"},
        {"POST", "/v1/benefits/items/cp10/stock", "{\"add\":0,\"reason\":\"x\"}", 400, "validation",
         "/add"},
        {"POST", "/v1/benefits/items/cp10/stock", "{\"add\":5}", 400, "validation", "/reason"},
        {"POST", "/v1/benefits/items/nope/stock", "{\"add\":5,\"reason\":\"x\"}", 404, "not-found",
         NULL},
        {"POST", "/v1/benefits/items/jd50/stock", "{\"add\":5,\"reason\":\"x\"}", 409, "conflict",
         "/add"},
        {"POST", "/v1/benefits/items/jd50/codes", "GOOD-1\nbad code\nGOOD-2\n,\n", 400,
         "validation", "body"},
        {"POST", "/v1/benefits/items/jd50/codes", "", 400, "validation", "body"},
        {"POST", "/v1/benefits/items/cp10/codes", "C-1\n", 409, "conflict", NULL},
        {"POST", "/v1/benefits/packages", "{\"code\":\"p1\",\"name\":\"x\",\"items\":[]}", 400,
         "validation", "/items"},
        {"POST", "/v1/benefits/packages",
         "{\"code\":\"p1\",\"name\":\"x\",\"items\":[{\"item\":\"cp10\",\"quantity\":0}]}", 400,
         "validation", "/items/0/quantity"},
        {"POST", "/v1/benefits/packages",
         "{\"code\":\"p1\",\"name\":\"x\",\"items\":[{\"item\":\"cp10\"},{\"item\":\"cp10\"}]}",
         400, "validation", "/items/1/item"},
        {"POST", "/v1/benefits/packages",
         "{\"code\":\"p1\",\"name\":\"x\",\"items\":[{\"item\":\"nope\"}]}", 400, "validation",
         "/items"},
        {"POST", "/v1/customers/C1/grants", "{}", 400, "validation", "/item"},
        {"POST", "/v1/customers/C1/grants", "{\"item\":\"cp10\",\"package\":\"welcome\"}", 400,
         "validation", "/item"},
        {"POST", "/v1/customers/C1/grants", "{\"item\":\"nope\"}", 404, "not-found", "/item"},
        {"POST", "/v1/customers/C1/grants", "{\"package\":\"nope\"}", 404, "not-found", "/package"},
        {"POST", "/v1/customers/C1/grants",
         "{\"item\":\"mug\",\"delivery\":{\"name\":\"x\",\"phone\":\"1\"}}", 400, "validation",
         "/delivery/address"},
        {"POST", "/v1/customers/C1/grants", "{\"item\":\"cp10\",\"extra\":1}", 400, "validation",
         "/extra"},
        {"POST", "/v1/grants/g_0000000000000000:redeem", "{\"customer_no\":\"C1\"}", 404,
         "not-found", NULL},
        {"POST", "/v1/grants/g_0000000000000000:redeem", "{}", 400, "validation", "/customer_no"},
        {"POST", "/v1/grants/g_0000000000000000:revoke", "{}", 400, "validation", "/reason"},
        {"POST", "/v1/grants/g_0000000000000000:fulfil", "{\"status\":\"lost\"}", 400, "validation",
         "/status"},
        {"POST", "/v1/grants:expire", "{\"now\":1}", 400, "validation", "/now"},
        {"POST", "/v1/mall/listings",
         "{\"code\":\"l1\",\"item\":\"cp10\",\"title\":\"x\",\"point_type\":\"pts\",\"price\":0}",
         400, "validation", "/price"},
        {"POST", "/v1/mall/listings",
         "{\"code\":\"l1\",\"item\":\"cp10\",\"title\":\"x\",\"point_type\":\"gold\","
         "\"price\":5}",
         400, "validation", "/point_type"},
        {"POST", "/v1/mall/listings",
         "{\"code\":\"l1\",\"item\":\"nope\",\"title\":\"x\",\"point_type\":\"pts\",\"price\":5}",
         400, "validation", "/item"},
        {"POST", "/v1/mall/listings",
         "{\"code\":\"l1\",\"item\":\"cp10\",\"title\":\"x\",\"point_type\":\"pts\",\"price\":5,"
         "\"active\":\"yes\"}",
         400, "validation", "/active"},
        {"POST", "/v1/mall/exchange", "{\"listing\":\"nope\",\"customer_no\":\"C1\"}", 404,
         "not-found", "/listing"},
        {"POST", "/v1/mall/exchange", "{\"listing\":\"x\"}", 400, "validation", "/customer_no"},
        {"POST", "/v1/mall/exchange", "{\"listing\":\"x\",\"customer_no\":\"bad no\"}", 400,
         "validation", "/customer_no"},
        {"POST", "/v1/customers/C1/points:spend",
         "{\"point_type\":\"pts\",\"amount\":1,\"sink\":\"mall\"}", 400, "validation", "/sink"},
        {"GET", "/v1/reconciliation?to=2026-01-01", NULL, 400, "validation", "from"},
        {"GET", "/v1/reconciliation?from=2026-01-31&to=2026-01-01", NULL, 400, "validation", "to"},
        {"GET", "/v1/reconciliation?from=2026-01-01&to=2026-01-31&format=xml", NULL, 400,
         "validation", "format"},
        {"GET", "/v1/reconciliation?from=2026-01-01&to=2026-01-31&supplier=nobody", NULL, 404,
         "not-found", "supplier"},
        {"GET", "/v1/customers/C1/grants?cursor=x", NULL, 400, "validation", "cursor"},
        {"GET", "/v1/customers/C1/grants?status=lost", NULL, 400, "validation", "status"},
        {"GET", "/v1/customers/C9/grants", NULL, 404, "not-found", NULL},
        {"GET", "/v1/grants/g_nope", NULL, 404, "not-found", NULL},
        {"GET", "/v1/benefits/items/nope", NULL, 404, "not-found", NULL},
        {"GET", "/v1/benefits/items/nope/stock", NULL, 404, "not-found", NULL},
        {"GET", "/v1/benefits/suppliers/nope", NULL, 404, "not-found", NULL},
        {"GET", "/v1/benefits/packages/nope", NULL, 404, "not-found", NULL},
        {"GET", "/v1/mall/listings/nope", NULL, 404, "not-found", NULL},
        {"GET", "/v1/benefits/items/cp10/stock?cursor=x", NULL, 400, "validation", "cursor"},
    };
    long rows = rows_on(S);
    for (size_t i = 0; i < SY_TEST_LEN(cases); i++) {
        const bad_case *c = &cases[i];
        const char *csvh[] = {"Content-Type: text/csv", NULL};
        h_resp r = strstr(c->path, "/codes")
                       ? h_req_h(S, c->method, c->path, S->admin_key, c->body, csvh)
                       : h_req(S, c->method, c->path, S->admin_key, c->body);
        if (r.status != c->status || !r.json || strcmp(h_str(r.json, "type"), c->type) ||
            (c->field && (!h_str(r.json, "field") || strcmp(h_str(r.json, "field"), c->field))))
            fail_msg("case %zu: %s %s %s: expected %ld %s %s, got %ld %s", i, c->method, c->path,
                     c->body ? c->body : "", c->status, c->type, c->field ? c->field : "-",
                     r.status, r.body ? r.body : "");
        h_assert_problem(r, (int)c->status, c->type, c->field);
        if (!strcmp(c->path, "/v1/benefits/items/jd50/codes") && c->body[0]) {
            /* every bad line by its number */
            json_t *errs = json_object_get(r.json, "errors");
            assert_int_equal(json_array_size(errs), 2);
            assert_int_equal(json_integer_value(json_object_get(json_array_get(errs, 0), "line")),
                             2);
            assert_int_equal(json_integer_value(json_object_get(json_array_get(errs, 1), "line")),
                             4);
        }
        h_resp_free(&r);
        if (rows_on(S) != rows)
            fail_msg("case %zu (%s %s) wrote something", i, c->method, c->path);
    }
}

/* ---- the mall ---- */

#define CLIENTS 64
#define TRIES_EACH 4

typedef struct race {
    volatile int go;
    int ok, out, other;
    char last_other[256];
    pthread_mutex_t mu;
} race;

typedef struct client {
    race *rc;
    int id;
} client;

static void *exchanger(void *p)
{
    client *cl = p;
    race *rc = cl->rc;
    CURL *c = curl_easy_init();
    char body[128];
    snprintf(body, sizeof body, "{\"listing\":\"flash\",\"customer_no\":\"M%d\"}", cl->id);
    while (!rc->go)
        h_sleep_ms(1);
    for (int i = 0; i < TRIES_EACH; i++) {
        h_resp r = h_req_on(c, S, "POST", "/v1/mall/exchange", APP_KEY, body, strlen(body), NULL);
        pthread_mutex_lock(&rc->mu);
        if (r.status == 201) {
            rc->ok++;
        } else if (r.status == 409 && r.json && !strcmp(h_str(r.json, "type"), "out-of-stock")) {
            rc->out++;
        } else {
            rc->other++;
            snprintf(rc->last_other, sizeof rc->last_other, "%ld %s", r.status,
                     r.body ? r.body : "");
        }
        pthread_mutex_unlock(&rc->mu);
        h_resp_free(&r);
    }
    curl_easy_cleanup(c);
    return NULL;
}

static void test_concurrent_exchanges(void **state)
{
    must(S, "POST", "/v1/benefits/items",
         "{\"code\":\"flash\",\"name\":\"Flash sale\",\"kind\":\"coupon\",\"supplier\":\"acme\","
         "\"face_value\":2000,\"cost_price\":1500,\"params\":{\"threshold\":0},\"stock\":100,"
         "\"validity_days\":7}",
         201);
    must(S, "POST", "/v1/mall/listings",
         "{\"code\":\"flash\",\"item\":\"flash\",\"title\":\"Flash\",\"point_type\":\"pts\","
         "\"price\":10}",
         201);
    for (int i = 0; i < CLIENTS; i++) {
        char no[16];
        snprintf(no, sizeof no, "M%d", i);
        customer_on(S, no, NULL);
        earn_on(S, no, 100);
    }
    race rc = {0};
    pthread_mutex_init(&rc.mu, NULL);
    pthread_t t[CLIENTS];
    client cl[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        cl[i] = (client){&rc, i};
        pthread_create(&t[i], NULL, exchanger, &cl[i]);
    }
    rc.go = 1;
    for (int i = 0; i < CLIENTS; i++)
        pthread_join(t[i], NULL);
    if (rc.other)
        fail_msg("%d unexpected answers, e.g. %s", rc.other, rc.last_other);
    assert_int_equal(rc.ok, 100);
    assert_int_equal(rc.out, CLIENTS * TRIES_EACH - 100);
    assert_int_equal(stock_of(S, "flash", NULL), 0);
    assert_int_equal(h_sql_long(S, "SELECT COUNT(*) FROM benefit_grants WHERE listing = 'flash'"),
                     100);
    /* the points debited match: 100 exchanges of 10 */
    json_int_t left = 0;
    for (int i = 0; i < CLIENTS; i++) {
        char no[16];
        snprintf(no, sizeof no, "M%d", i);
        left += balance_on(S, no);
    }
    assert_int_equal(left, CLIENTS * 100 - 100 * 10);
    assert_int_equal(h_sql_long(S, "SELECT COALESCE(SUM(amount), 0) FROM ledger_entries"
                                   " WHERE credit_account = 'sink:mall' AND customer_no LIKE 'M%'"),
                     1000);
    assert_check_passes(S);
}

/* What an item, a listing or a package is for is remembered per tenant and
 * code (remember.h): another tenant's item of the same code has its own
 * rule, and a code not found is not remembered as "everyone". */
static void test_eligibility_per_tenant(void **state)
{
    char *out = NULL;
    assert_int_equal(h_cli(S, NULL, "tenant create bank-elig --name 'Bank E'"), 0);
    assert_int_equal(h_cli(S, &out, "key create --tenant bank-elig --role admin"), 0);
    char key[128];
    assert_int_equal(sscanf(out, "%127s", key), 1);
    free(out);
    h_server other = *S;
    snprintf(other.admin_key, sizeof other.admin_key, "%s", key);
    /* bank-elig's "rate" is for everyone; the demo bank's for aum >= 1,000,000 */
    must(&other, "POST", "/v1/benefits/suppliers", "{\"code\":\"acme\",\"name\":\"acme\"}", 201);
    must(&other, "POST", "/v1/benefits/items",
         "{\"code\":\"rate\",\"name\":\"Rate\",\"kind\":\"financial\",\"supplier\":\"acme\","
         "\"face_value\":0,\"cost_price\":0,\"stock\":10,\"params\":{\"right\":\"fee_waiver\"}}",
         201);
    customer_on(&other, "E1", "{\"attributes\":{\"aum\":5}}");
    customer_on(S, "E1", "{\"attributes\":{\"aum\":5}}");
    h_resp r = issue_on(&other, key, "E1", "{\"item\":\"rate\"}");
    assert_int_equal(r.status, 201);
    h_resp_free(&r);
    r = issue_on(S, APP_KEY, "E1", "{\"item\":\"rate\"}");
    h_assert_problem(r, 403, "not-eligible", NULL);
    h_resp_free(&r);
    r = issue_on(&other, key, "E1", "{\"item\":\"rate\"}");
    assert_int_equal(r.status, 201);
    h_resp_free(&r);
    /* asked for before it exists, then created for a segment */
    r = issue_on(S, APP_KEY, "E1", "{\"item\":\"later\"}");
    h_assert_problem(r, 404, "not-found", "/item");
    h_resp_free(&r);
    must(S, "POST", "/v1/benefits/items",
         "{\"code\":\"later\",\"name\":\"Later\",\"kind\":\"financial\",\"supplier\":\"acme\","
         "\"face_value\":0,\"cost_price\":0,\"stock\":10,\"params\":{\"right\":\"fee_waiver\"},"
         "\"segment_expression\":\"aum >= 1000000\"}",
         201);
    r = issue_on(S, APP_KEY, "E1", "{\"item\":\"later\"}");
    h_assert_problem(r, 403, "not-eligible", NULL);
    h_resp_free(&r);
}

static void test_mall_refusals(void **state)
{
    must(S, "POST", "/v1/mall/listings",
         "{\"code\":\"cheap\",\"item\":\"rate\",\"title\":\"Rate\",\"point_type\":\"pts\","
         "\"price\":60,\"limits\":{\"total\":1}}",
         201);
    customer_on(S, "X1", "{\"attributes\":{\"aum\":5000000}}");
    customer_on(S, "X2", "{\"attributes\":{\"aum\":5}}");
    earn_on(S, "X1", 100);
    earn_on(S, "X2", 100);
    h_resp r = h_req(S, "POST", "/v1/mall/exchange", APP_KEY,
                     "{\"listing\":\"cheap\",\"customer_no\":\"X2\"}");
    h_assert_problem(r, 403, "not-eligible", NULL);
    h_resp_free(&r);
    r = h_req(S, "POST", "/v1/mall/exchange", APP_KEY,
              "{\"listing\":\"cheap\",\"customer_no\":\"X1\"}");
    assert_int_equal(r.status, 201);
    assert_string_equal(h_str(r.json, "source"), "mall");
    assert_int_equal(json_integer_value(json_object_get(r.json, "points")), 60);
    char code[48], spend[64];
    snprintf(code, sizeof code, "%s", h_str(r.json, "code"));
    snprintf(spend, sizeof spend, "/v1/ledger/%s:reverse", h_str(r.json, "spend_entry"));
    h_resp_free(&r);
    /* the spend is undone only with its grant */
    r = h_req(S, "POST", spend, S->admin_key, "{\"reason\":\"x\"}");
    h_assert_problem(r, 409, "conflict", NULL);
    assert_string_equal(h_str(r.json, "grant"), code);
    h_resp_free(&r);
    r = h_req(S, "POST", "/v1/mall/exchange", APP_KEY,
              "{\"listing\":\"cheap\",\"customer_no\":\"X1\"}");
    h_assert_problem(r, 409, "limit-reached", NULL);
    assert_string_equal(h_str(r.json, "limit"), "listing:total");
    h_resp_free(&r);
    /* revoked: the points come back, the limit frees */
    r = grant_op(code, "revoke", S->admin_key, "{\"reason\":\"complaint\"}");
    assert_int_equal(r.status, 200);
    h_resp_free(&r);
    assert_int_equal(balance_on(S, "X1"), 100);
    must(S, "POST", "/v1/customers/X1/points:spend", "{\"point_type\":\"pts\",\"amount\":50}", 201);
    r = h_req(S, "POST", "/v1/mall/exchange", APP_KEY,
              "{\"listing\":\"cheap\",\"customer_no\":\"X1\"}");
    h_assert_problem(r, 409, "insufficient-points", NULL);
    assert_int_equal(json_integer_value(json_object_get(r.json, "available")), 50);
    h_resp_free(&r);
    assert_int_equal(balance_on(S, "X1"), 50);
    assert_check_passes(S);
}

typedef struct key_race {
    long status;
    char code[48];
} key_race;

/* The 201 of an issue or an exchange describes the grant from what the
 * writer wrote (api_benefits.c: reply_issue), not by reading it back: it
 * must be byte for byte what GET /v1/grants/{code} answers. */
static void reply_is_stored_grant(h_resp *r, const char *what)
{
    if (r->status != 201)
        fail_msg("%s: %ld %s", what, r->status, r->body);
    char path[128], loc[128];
    snprintf(path, sizeof path, "/v1/grants/%s", h_str(r->json, "code"));
    assert_true(h_header(r, "Location", loc, sizeof loc));
    assert_string_equal(loc, path);
    h_resp g = h_req(S, "GET", path, S->admin_key, NULL);
    assert_int_equal(g.status, 200);
    if (strcmp(r->body, g.body) != 0)
        fail_msg("%s: the reply\n%s\nis not the stored grant\n%s", what, r->body, g.body);
    h_resp_free(&g);
    h_resp_free(r);
}

static void test_issue_reply_is_the_stored_grant(void **state)
{
    must(S, "POST", "/v1/benefits/items",
         "{\"code\":\"rp-cp\",\"name\":\"满减 \\\"券\\\" \\\\ é\",\"kind\":\"coupon\","
         "\"supplier\":\"acme\",\"face_value\":700,\"cost_price\":650,\"stock\":50,"
         "\"validity_days\":7,\"params\":{\"threshold\":100}}",
         201);
    must(S, "POST", "/v1/benefits/items",
         "{\"code\":\"rp-v\",\"name\":\"Voucher\",\"kind\":\"voucher\",\"supplier\":\"acme\","
         "\"face_value\":100,\"cost_price\":90}",
         201);
    const char *csv[] = {"Content-Type: text/csv", NULL};
    h_resp r =
        h_req_h(S, "POST", "/v1/benefits/items/rp-v/codes", S->admin_key, "RP-1\nRP-2\n", csv);
    assert_int_equal(r.status, 200);
    h_resp_free(&r);
    must(S, "POST", "/v1/benefits/items",
         "{\"code\":\"rp-g\",\"name\":\"Goods\",\"kind\":\"goods\",\"supplier\":\"other\","
         "\"face_value\":300,\"cost_price\":200,\"stock\":5}",
         201);
    const char *listings[] = {"rp-cp", "rp-v", "rp-g"};
    for (size_t i = 0; i < 3; i++) {
        char body[256];
        snprintf(body, sizeof body,
                 "{\"code\":\"l-%s\",\"item\":\"%s\",\"title\":\"t\",\"point_type\":\"pts\","
                 "\"price\":%zu}",
                 listings[i], listings[i], i + 1);
        must(S, "POST", "/v1/mall/listings", body, 201);
    }
    customer_on(S, "RP1", "{}");
    earn_on(S, "RP1", 100);
    /* issued directly: a coupon that expires, a voucher, goods with an address */
    r = issue_on(S, APP_KEY, "RP1", "{\"item\":\"rp-cp\"}");
    reply_is_stored_grant(&r, "issue a coupon");
    r = issue_on(S, S->admin_key, "RP1", "{\"item\":\"rp-v\"}");
    reply_is_stored_grant(&r, "issue a voucher as admin");
    r = issue_on(S, APP_KEY, "RP1",
                 "{\"item\":\"rp-g\",\"delivery\":{\"phone\":\"13800000000\","
                 "\"name\":\"王\\\"五\",\"address\":\"上海 / 1号\"}}");
    reply_is_stored_grant(&r, "issue goods");
    /* exchanged in the mall, with and without a key */
    r = h_req(S, "POST", "/v1/mall/exchange", APP_KEY,
              "{\"listing\":\"l-rp-cp\",\"customer_no\":\"RP1\"}");
    reply_is_stored_grant(&r, "exchange a coupon");
    const char *key[] = {"Idempotency-Key: rp-key-1", NULL};
    r = h_req_h(S, "POST", "/v1/mall/exchange", APP_KEY,
                "{\"listing\":\"l-rp-v\",\"customer_no\":\"RP1\"}", key);
    reply_is_stored_grant(&r, "exchange a voucher with a key");
    r = h_req(S, "POST", "/v1/mall/exchange", APP_KEY,
              "{\"listing\":\"l-rp-g\",\"customer_no\":\"RP1\",\"delivery\":"
              "{\"name\":\"Zhao\",\"phone\":\"139\",\"address\":\"Road 1\"}}");
    reply_is_stored_grant(&r, "exchange goods");
    assert_check_passes(S);
}

static void *exchange_with_shared_key(void *p)
{
    key_race *k = p;
    const char *hdr[] = {"Idempotency-Key: once-K1", NULL};
    h_resp r = h_req_h(S, "POST", "/v1/mall/exchange", APP_KEY,
                       "{\"listing\":\"once\",\"customer_no\":\"K1\"}", hdr);
    k->status = r.status;
    const char *code = r.status == 201 || r.status == 200 ? h_str(r.json, "code") : NULL;
    snprintf(k->code, sizeof k->code, "%s", code ? code : "");
    h_resp_free(&r);
    return NULL;
}

static void test_idempotent_exchange(void **state)
{
    must(S, "POST", "/v1/benefits/items",
         "{\"code\":\"once\",\"name\":\"Once\",\"kind\":\"financial\",\"supplier\":\"acme\","
         "\"face_value\":0,\"cost_price\":0,\"stock\":50,\"params\":{\"right\":\"fee_waiver\"}}",
         201);
    must(S, "POST", "/v1/mall/listings",
         "{\"code\":\"once\",\"item\":\"once\",\"title\":\"Once\",\"point_type\":\"pts\","
         "\"price\":7}",
         201);
    customer_on(S, "K1", NULL);
    earn_on(S, "K1", 1000);
    enum { N = 16 };
    pthread_t t[N];
    key_race k[N];
    memset(k, 0, sizeof k);
    for (int i = 0; i < N; i++)
        pthread_create(&t[i], NULL, exchange_with_shared_key, &k[i]);
    for (int i = 0; i < N; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(balance_on(S, "K1"), 993);
    assert_int_equal(h_sql_long(S, "SELECT COUNT(*) FROM benefit_grants WHERE customer_no = 'K1'"),
                     1);
    const char *first = NULL;
    for (int i = 0; i < N; i++) {
        if (k[i].status != 201 && k[i].status != 409)
            fail_msg("request %d: %ld", i, k[i].status);
        if (k[i].code[0]) {
            if (!first)
                first = k[i].code;
            assert_string_equal(k[i].code, first);
        }
    }
    assert_non_null(first);
    /* after the server forgot the key, the grant still knows it */
    h_sql(S, "UPDATE idempotency SET created_at = created_at - 90000000"
             " WHERE idem_key = 'once-K1'");
    key_race again = {0};
    exchange_with_shared_key(&again);
    assert_int_equal(again.status, 200);
    assert_string_equal(again.code, first);
    assert_int_equal(balance_on(S, "K1"), 993);
    /* the key with another listing (once the server forgot it): refused,
     * nothing spent */
    h_sql(S, "UPDATE idempotency SET created_at = created_at - 90000000"
             " WHERE idem_key = 'once-K1'");
    const char *hdr[] = {"Idempotency-Key: once-K1", NULL};
    h_resp r = h_req_h(S, "POST", "/v1/mall/exchange", APP_KEY,
                       "{\"listing\":\"flash\",\"customer_no\":\"K1\"}", hdr);
    h_assert_problem(r, 409, "conflict", "Idempotency-Key");
    h_resp_free(&r);
    assert_int_equal(balance_on(S, "K1"), 993);
    assert_check_passes(S);
}

static void test_check_names_violations(void **state)
{
    h_sql(S, "UPDATE benefit_items SET remaining = remaining + 1, total_stock = total_stock + 1"
             " WHERE code = 'mug'");
    char *out = NULL;
    assert_int_equal(check_on(S, &out), 1);
    assert_non_null(strstr(out, "benefits: item mug: total stock"));
    free(out);
    h_sql(S, "UPDATE benefit_items SET remaining = remaining - 1, total_stock = total_stock - 1"
             " WHERE code = 'mug'");
    assert_check_passes(S);
}

/* ---- kill -9 during exchanges (64 clients) ---- */

#define KILL_WRITERS 64
#define MAX_ACKED 20000

typedef struct kill_run {
    h_server *s;
    volatile int stop;
    pthread_mutex_t mu;
    char (*acked)[32];
    int nacked, bad;
    char last_bad[256];
} kill_run;

static void *kill_writer(void *p)
{
    kill_run *k = p;
    CURL *c = curl_easy_init();
    unsigned seed = (unsigned)(uintptr_t)pthread_self();
    for (int i = 0; !k->stop; i++) {
        char body[128];
        snprintf(body, sizeof body, "{\"listing\":\"bulk\",\"customer_no\":\"K%u\"}",
                 (unsigned)(rand_r(&seed) % 8));
        h_resp r = h_req_on(c, k->s, "POST", "/v1/mall/exchange", k->s->admin_key, body,
                            strlen(body), NULL);
        pthread_mutex_lock(&k->mu);
        if (r.status == 201 && k->nacked < MAX_ACKED) {
            snprintf(k->acked[k->nacked++], 32, "%s", h_str(r.json, "code"));
        } else if (r.status > 0 && r.status != 201 &&
                   !(r.status == 409 && !strcmp(h_str(r.json, "type"), "insufficient-points"))) {
            k->bad++;
            snprintf(k->last_bad, sizeof k->last_bad, "%ld %s", r.status, r.body ? r.body : "");
        }
        pthread_mutex_unlock(&k->mu);
        bool gone = r.status < 0;
        h_resp_free(&r);
        while (gone && !k->stop)
            h_sleep_ms(5);
    }
    curl_easy_cleanup(c);
    return NULL;
}

static void test_kill9_during_exchanges(void **state)
{
    kill_run k = {.s = h_start(NULL)};
    pthread_mutex_init(&k.mu, NULL);
    k.acked = calloc(MAX_ACKED, sizeof *k.acked);
    catalogue_on(k.s);
    must(k.s, "POST", "/v1/benefits/items",
         "{\"code\":\"bulk\",\"name\":\"Bulk\",\"kind\":\"coupon\",\"supplier\":\"acme\","
         "\"face_value\":500,\"cost_price\":400,\"params\":{\"threshold\":0},\"stock\":100000,"
         "\"validity_days\":7}",
         201);
    must(k.s, "POST", "/v1/mall/listings",
         "{\"code\":\"bulk\",\"item\":\"bulk\",\"title\":\"Bulk\",\"point_type\":\"pts\","
         "\"price\":3}",
         201);
    for (int i = 0; i < 8; i++) {
        char no[16];
        snprintf(no, sizeof no, "K%d", i);
        customer_on(k.s, no, NULL);
        earn_on(k.s, no, 1000000);
    }
    pthread_t t[KILL_WRITERS];
    for (int i = 0; i < KILL_WRITERS; i++)
        pthread_create(&t[i], NULL, kill_writer, &k);
    for (int waited = 0; waited < 60000; waited += 5) {
        pthread_mutex_lock(&k.mu);
        int n = k.nacked;
        pthread_mutex_unlock(&k.mu);
        if (n >= 300)
            break;
        h_sleep_ms(5);
    }
    assert_int_equal(h_signal_wait(k.s, SIGKILL), 128 + SIGKILL);
    k.stop = 1;
    for (int i = 0; i < KILL_WRITERS; i++)
        pthread_join(t[i], NULL);
    if (k.bad)
        fail_msg("%d requests got an unexpected answer, e.g. %s", k.bad, k.last_bad);
    assert_true(k.nacked >= 300);

    h_launch(k.s);
    /* every acknowledged exchange is there, paid */
    for (int i = 0; i < k.nacked; i++) {
        json_t *g = grant_get(k.s, k.acked[i]);
        if (!g)
            fail_msg("acknowledged grant %s is missing after kill -9", k.acked[i]);
        assert_non_null(h_str(g, "spend_entry"));
        json_decref(g);
    }
    /* and the stock, the pool, the grants and the ledger add up */
    assert_check_passes(k.s);
    h_stop(k.s);
    free(k.acked);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_catalogue),
        cmocka_unit_test(test_grant_lifecycle),
        cmocka_unit_test(test_expiry_scheduled),
        cmocka_unit_test(test_eligibility),
        cmocka_unit_test(test_eligibility_per_tenant),
        cmocka_unit_test(test_reconciliation),
        cmocka_unit_test(test_bad_input_writes_nothing),
        cmocka_unit_test(test_concurrent_exchanges),
        cmocka_unit_test(test_mall_refusals),
        cmocka_unit_test(test_idempotent_exchange),
        cmocka_unit_test(test_issue_reply_is_the_stored_grant),
        cmocka_unit_test(test_check_names_violations),
        cmocka_unit_test(test_kill9_during_exchanges),
    };
    return cmocka_run_group_tests_name("e2e-benefits", tests, group_setup, group_teardown);
}

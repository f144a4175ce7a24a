/* test_e2e_points.c — points (积分) end to end: point types, earn, spend,
 * reverse, balances, history, the expiry job (called, and run by the
 * server's maintenance), bad input answered with the field and nothing
 * written, idempotent replays, roles, merged customers, `siyu check`
 * (passing, and naming what a damaged store breaks), 64 concurrent spends
 * against a balance that allows only some, and kill -9 during a run of
 * earns and spends. */
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

static void put_customer_on(h_server *s, const char *no, const char *body)
{
    char path[128];
    snprintf(path, sizeof path, "/v1/customers/%s", no);
    h_resp r = h_req(s, "PUT", path, s->admin_key, body ? body : "{}");
    if (r.status != 201 && r.status != 200)
        fail_msg("PUT %s: %ld %s", path, r.status, r.body);
    h_resp_free(&r);
}

static void make_type_on(h_server *s, const char *body)
{
    h_resp r = h_req(s, "POST", "/v1/point-types", s->admin_key, body);
    if (r.status != 201)
        fail_msg("POST /v1/point-types %s: %ld %s", body, r.status, r.body);
    h_resp_free(&r);
}

static h_resp move(h_server *s, const char *key, const char *no, const char *what, const char *body)
{
    char path[160];
    snprintf(path, sizeof path, "/v1/customers/%s/points:%s", no, what);
    return h_req(s, "POST", path, key, body);
}

/* Earns and copies the entry id into id (when given). */
static void earn_on(h_server *s, const char *no, const char *type, long amount, char *id)
{
    char body[256];
    snprintf(body, sizeof body,
             "{\"point_type\":\"%s\",\"amount\":%ld,\"source\":\"campaign:test\","
             "\"reason\":\"e2e\"}",
             type, amount);
    h_resp r = move(s, s->admin_key, no, "earn", body);
    if (r.status != 201)
        fail_msg("earn %ld %s for %s: %ld %s", amount, type, no, r.status, r.body);
    if (id)
        snprintf(id, 32, "%s", h_str(r.json, "id"));
    h_resp_free(&r);
}

static h_resp spend_on(h_server *s, const char *key, const char *no, const char *type, long amount)
{
    char body[160];
    snprintf(body, sizeof body, "{\"point_type\":\"%s\",\"amount\":%ld}", type, amount);
    return move(s, key, no, "spend", body);
}

/* The customer's balance of a type from GET /v1/customers/{no}/points;
 * *soon gets expiring_30d when given. */
static json_int_t balance_on(h_server *s, const char *no, const char *type, json_int_t *soon)
{
    char path[128];
    snprintf(path, sizeof path, "/v1/customers/%s/points", no);
    h_resp r = h_req(s, "GET", path, s->admin_key, NULL);
    assert_int_equal(r.status, 200);
    json_int_t b = -1;
    size_t i;
    json_t *it;
    json_array_foreach (json_object_get(r.json, "items"), i, it) {
        if (!strcmp(h_str(it, "point_type"), type)) {
            b = json_integer_value(json_object_get(it, "balance"));
            if (soon)
                *soon = json_integer_value(json_object_get(it, "expiring_30d"));
        }
    }
    h_resp_free(&r);
    if (b < 0)
        fail_msg("no %s in the balances of %s", type, no);
    return b;
}

/* Every history entry of the customer, newest first, following the
 * cursor page by page (pages of `limit`). */
static json_t *history_on(h_server *s, const char *no, int limit)
{
    json_t *all = json_array();
    char path[256], cursor[32] = "";
    for (;;) {
        snprintf(path, sizeof path, "/v1/customers/%s/points/history?limit=%d%s%s", no, limit,
                 cursor[0] ? "&cursor=" : "", cursor);
        h_resp r = h_req(s, "GET", path, s->admin_key, NULL);
        assert_int_equal(r.status, 200);
        json_array_extend(all, json_object_get(r.json, "items"));
        const char *next = h_str(r.json, "next_cursor");
        if (next)
            snprintf(cursor, sizeof cursor, "%s", next);
        h_resp_free(&r);
        if (!next)
            return all;
    }
}

/* Runs `siyu check --tenant demo` on s's data; returns its exit status and
 * its output in *out (malloc'd) when out is given. */
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
    if (rc != 0 || !strstr(out, "every invariant holds"))
        fail_msg("siyu check exited %d:\n%s", rc, out);
    free(out);
}

static int group_setup(void **state)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    S = h_start(NULL);
    make_key(S, "app", APP_KEY);
    make_key(S, "analyst", ANALYST_KEY);
    make_type_on(S, "{\"code\":\"pts\",\"name\":\"积分\",\"expiry\":\"never\"}");
    make_type_on(S,
                 "{\"code\":\"sun\",\"name\":\"阳光值\",\"expiry\":\"days\",\"expiry_days\":10}");
    return 0;
}

static int group_teardown(void **state)
{
    h_stop(S);
    curl_global_cleanup();
    return 0;
}

/* ---- point types ---- */

static void test_point_types(void **state)
{
    h_resp r = h_req(S, "POST", "/v1/point-types", S->admin_key,
                     "{\"code\":\"yearly\",\"name\":\"年度积分\",\"expiry\":\"year_end\","
                     "\"expiry_years\":1}");
    assert_int_equal(r.status, 201);
    char loc[128];
    assert_true(h_header(&r, "Location", loc, sizeof loc));
    assert_string_equal(loc, "/v1/point-types/yearly");
    assert_int_equal(json_integer_value(json_object_get(r.json, "expiry_years")), 1);
    assert_true(json_is_null(json_object_get(r.json, "expiry_days")));
    h_resp_free(&r);
    r = h_req(S, "GET", "/v1/point-types/yearly", ANALYST_KEY, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(h_str(r.json, "name"), "年度积分");
    assert_string_equal(h_str(r.json, "expiry"), "year_end");
    h_resp_free(&r);
    r = h_req(S, "GET", "/v1/point-types/nope", S->admin_key, NULL);
    h_assert_problem(r, 404, "not-found", NULL);
    h_resp_free(&r);
    r = h_req(S, "POST", "/v1/point-types", S->admin_key,
              "{\"code\":\"yearly\",\"name\":\"again\",\"expiry\":\"never\"}");
    h_assert_problem(r, 409, "conflict", "/code");
    h_resp_free(&r);
    r = h_req(S, "POST", "/v1/point-types", APP_KEY,
              "{\"code\":\"apps\",\"name\":\"x\",\"expiry\":\"never\"}");
    h_assert_problem(r, 403, "forbidden", NULL);
    h_resp_free(&r);

    struct {
        const char *body, *field;
    } bad[] = {
        {"{}", "/code"},
        {"{\"code\":\"Bad\",\"name\":\"x\",\"expiry\":\"never\"}", "/code"},
        {"{\"code\":\"1x\",\"name\":\"x\",\"expiry\":\"never\"}", "/code"},
        {"{\"code\":\"ok\",\"expiry\":\"never\"}", "/name"},
        {"{\"code\":\"ok\",\"name\":\"x\",\"expiry\":\"weekly\"}", "/expiry"},
        {"{\"code\":\"ok\",\"name\":\"x\",\"expiry\":\"days\"}", "/expiry_days"},
        {"{\"code\":\"ok\",\"name\":\"x\",\"expiry\":\"days\",\"expiry_days\":0}", "/expiry_days"},
        {"{\"code\":\"ok\",\"name\":\"x\",\"expiry\":\"days\",\"expiry_days\":1.5}",
         "/expiry_days"},
        {"{\"code\":\"ok\",\"name\":\"x\",\"expiry\":\"never\",\"expiry_days\":3}", "/expiry_days"},
        {"{\"code\":\"ok\",\"name\":\"x\",\"expiry\":\"year_end\"}", "/expiry_years"},
        {"{\"code\":\"ok\",\"name\":\"x\",\"expiry\":\"year_end\",\"expiry_years\":11}",
         "/expiry_years"},
        {"{\"code\":\"ok\",\"name\":\"x\",\"expiry\":\"year_end\",\"expiry_years\":1,"
         "\"expiry_days\":3}",
         "/expiry_days"},
        {"{\"code\":\"ok\",\"name\":\"x\",\"expiry\":\"never\",\"colour\":1}", "/colour"},
    };
    for (size_t i = 0; i < SY_TEST_LEN(bad); i++) {
        r = h_req(S, "POST", "/v1/point-types", S->admin_key, bad[i].body);
        if (r.status != 400 || !r.json || !h_str(r.json, "field") ||
            strcmp(h_str(r.json, "field"), bad[i].field) != 0)
            fail_msg("case %zu %s: %ld %s", i, bad[i].body, r.status, r.body);
        h_resp_free(&r);
    }
    r = h_req(S, "GET", "/v1/point-types", APP_KEY, NULL);
    assert_int_equal(r.status, 200);
    json_t *items = json_object_get(r.json, "items");
    assert_int_equal(json_array_size(items), 3); /* pts, sun, yearly: nothing else written */
    assert_string_equal(h_str(json_array_get(items, 0), "code"), "pts");
    h_resp_free(&r);
}

/* ---- earn, spend, balances, history ---- */

static void test_earn_spend_balance_history(void **state)
{
    put_customer_on(S, "E1", NULL);
    char a[48], b[48];
    earn_on(S, "E1", "sun", 100, a);
    earn_on(S, "E1", "pts", 500, b);
    h_resp r = h_req(S, "GET", "/v1/ledger/nope", S->admin_key, NULL);
    h_assert_problem(r, 404, "not-found", NULL);
    h_resp_free(&r);
    char path[128];
    snprintf(path, sizeof path, "/v1/ledger/%s", a);
    r = h_req(S, "GET", path, ANALYST_KEY, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(h_str(r.json, "kind"), "earn");
    assert_string_equal(h_str(r.json, "debit_account"), "source:campaign:test");
    assert_string_equal(h_str(r.json, "credit_account"), "customer:E1");
    assert_string_equal(h_str(r.json, "reason"), "e2e");
    assert_true(!strncmp(h_str(r.json, "operator"), "key_", 4));
    json_t *alloc = json_object_get(r.json, "allocations");
    assert_int_equal(json_array_size(alloc), 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(alloc, 0), "amount")), 100);
    assert_non_null(h_str(json_array_get(alloc, 0), "lot_expires_at")); /* sun: 10 days */
    h_resp_free(&r);

    r = h_req(S, "POST", "/v1/customers/E1/points:spend", APP_KEY,
              "{\"point_type\":\"sun\",\"amount\":30,\"sink\":\"lottery\",\"reason\":\"draw\","
              "\"reference\":\"draw-1\"}");
    assert_int_equal(r.status, 201);
    assert_string_equal(h_str(r.json, "kind"), "spend");
    assert_string_equal(h_str(r.json, "credit_account"), "sink:lottery");
    assert_string_equal(h_str(r.json, "reference"), "draw-1");
    assert_int_equal(json_integer_value(json_object_get(r.json, "balance")), 70);
    h_resp_free(&r);
    r = spend_on(S, APP_KEY, "E1", "sun", 71);
    h_assert_problem(r, 409, "insufficient-points", "/amount");
    assert_int_equal(json_integer_value(json_object_get(r.json, "available")), 70);
    h_resp_free(&r);

    json_int_t soon = -1;
    assert_int_equal(balance_on(S, "E1", "sun", &soon), 70);
    assert_int_equal(soon, 70); /* valid 10 days: all of it expires within 30 */
    assert_int_equal(balance_on(S, "E1", "pts", &soon), 500);
    assert_int_equal(soon, 0);
    r = h_req(S, "GET", "/v1/customers/E1/points", ANALYST_KEY, NULL);
    assert_int_equal(r.status, 200);
    json_t *items = json_object_get(r.json, "items");
    assert_int_equal(json_array_size(items), 3); /* every type of the tenant */
    for (size_t i = 0; i < 3; i++) {
        json_t *it = json_array_get(items, i), *nx = json_object_get(it, "next_expiry");
        if (!strcmp(h_str(it, "point_type"), "sun"))
            assert_int_equal(json_integer_value(json_object_get(nx, "amount")), 70);
        else
            assert_true(json_is_null(nx));
    }
    h_resp_free(&r);

    /* history: newest first, across pages of 2, each with its allocations */
    for (int i = 0; i < 3; i++)
        earn_on(S, "E1", "pts", 10 + i, NULL);
    json_t *all = history_on(S, "E1", 2);
    assert_int_equal(json_array_size(all), 6);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(all, 0), "amount")), 12);
    assert_string_equal(h_str(json_array_get(all, 5), "id"), a);
    size_t i;
    json_t *e;
    json_array_foreach (all, i, e)
        assert_true(json_array_size(json_object_get(e, "allocations")) >= 1);
    json_decref(all);
    r = h_req(S, "GET", "/v1/customers/E1/points/history?point_type=sun", S->admin_key, NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "items")), 2);
    assert_true(json_is_null(json_object_get(r.json, "next_cursor")));
    h_resp_free(&r);
    const char *bad_queries[][2] = {
        {"/v1/customers/E1/points/history?point_type=nope", "point_type"},
        {"/v1/customers/E1/points/history?limit=0", "limit"},
        {"/v1/customers/E1/points/history?limit=201", "limit"},
        {"/v1/customers/E1/points/history?cursor=abc", "cursor"},
    };
    for (size_t k = 0; k < SY_TEST_LEN(bad_queries); k++) {
        r = h_req(S, "GET", bad_queries[k][0], S->admin_key, NULL);
        h_assert_problem(r, 400, "validation", bad_queries[k][1]);
        h_resp_free(&r);
    }
    r = h_req(S, "GET", "/v1/customers/NOPE/points", S->admin_key, NULL);
    h_assert_problem(r, 404, "not-found", NULL);
    h_resp_free(&r);
    r = h_req(S, "GET", "/v1/customers/NOPE/points/history", S->admin_key, NULL);
    h_assert_problem(r, 404, "not-found", NULL);
    h_resp_free(&r);
    assert_check_passes(S);
}

/* The lot expiring soonest goes first, whatever the order of earning (a
 * later lot expiring sooner is made by hand here, as a change of the
 * type's validity would make it). */
static void test_spend_order(void **state)
{
    put_customer_on(S, "F1", NULL);
    char a[48], b[48], sql[256];
    earn_on(S, "F1", "sun", 50, a);
    earn_on(S, "F1", "sun", 50, b);
    snprintf(sql, sizeof sql,
             "UPDATE point_lots SET expires_at = expires_at - 86400000 WHERE entry_id = '%s'", b);
    h_sql(S, sql);
    h_resp r = spend_on(S, APP_KEY, "F1", "sun", 60);
    assert_int_equal(r.status, 201);
    json_t *al = json_object_get(r.json, "allocations");
    assert_int_equal(json_array_size(al), 2);
    json_int_t first = json_integer_value(json_object_get(json_array_get(al, 0), "amount"));
    json_int_t second = json_integer_value(json_object_get(json_array_get(al, 1), "amount"));
    h_resp_free(&r);
    assert_int_equal(first, 50);  /* all of b, the sooner */
    assert_int_equal(second, 10); /* then a */
    char path[96];
    snprintf(path, sizeof path, "/v1/ledger/%s", a);
    r = h_req(S, "GET", path, S->admin_key, NULL);
    json_int_t lot_a = json_integer_value(
        json_object_get(json_array_get(json_object_get(r.json, "allocations"), 0), "lot_id"));
    h_resp_free(&r);
    json_t *h = history_on(S, "F1", 10);
    json_t *spend_allocs = json_object_get(json_array_get(h, 0), "allocations");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(spend_allocs, 1), "lot_id")),
                     lot_a);
    json_decref(h);
    assert_check_passes(S);
}

/* ---- bad input: 400 naming the field, nothing written ---- */

static void test_bad_input_writes_nothing(void **state)
{
    put_customer_on(S, "B1", NULL);
    earn_on(S, "B1", "pts", 50, NULL);
    char long_reason[260], long_ref[140];
    memset(long_reason, 'r', 201);
    long_reason[201] = '\0';
    memset(long_ref, 'x', 129);
    long_ref[129] = '\0';
    char reason_case[400], ref_case[300];
    snprintf(reason_case, sizeof reason_case,
             "{\"point_type\":\"pts\",\"amount\":1,\"source\":\"s\",\"reason\":\"%s\"}",
             long_reason);
    snprintf(ref_case, sizeof ref_case,
             "{\"point_type\":\"pts\",\"amount\":1,\"source\":\"s\",\"reference\":\"%s\"}",
             long_ref);
    struct {
        const char *what, *body, *field;
    } bad[] = {
        {"earn", "{}", "/point_type"},
        {"earn", "{\"point_type\":5,\"amount\":1,\"source\":\"s\"}", "/point_type"},
        {"earn", "{\"point_type\":\"nope\",\"amount\":1,\"source\":\"s\"}", "/point_type"},
        {"earn", "{\"point_type\":\"Not A Code\",\"amount\":1,\"source\":\"s\"}", "/point_type"},
        {"earn", "{\"point_type\":\"pts\",\"source\":\"s\"}", "/amount"},
        {"earn", "{\"point_type\":\"pts\",\"amount\":0,\"source\":\"s\"}", "/amount"},
        {"earn", "{\"point_type\":\"pts\",\"amount\":-5,\"source\":\"s\"}", "/amount"},
        {"earn", "{\"point_type\":\"pts\",\"amount\":1.5,\"source\":\"s\"}", "/amount"},
        {"earn", "{\"point_type\":\"pts\",\"amount\":\"10\",\"source\":\"s\"}", "/amount"},
        {"earn", "{\"point_type\":\"pts\",\"amount\":true,\"source\":\"s\"}", "/amount"},
        {"earn", "{\"point_type\":\"pts\",\"amount\":1000000001,\"source\":\"s\"}", "/amount"},
        {"earn", "{\"point_type\":\"pts\",\"amount\":1}", "/source"},
        {"earn", "{\"point_type\":\"pts\",\"amount\":1,\"source\":\"\"}", "/source"},
        {"earn", "{\"point_type\":\"pts\",\"amount\":1,\"source\":\"a b\"}", "/source"},
        {"earn", "{\"point_type\":\"pts\",\"amount\":1,\"source\":\"s\",\"sink\":\"x\"}", "/sink"},
        {"earn", "{\"point_type\":\"pts\",\"amount\":1,\"source\":\"s\",\"reason\":\"\"}",
         "/reason"},
        {"earn", "{\"point_type\":\"pts\",\"amount\":1,\"source\":\"s\",\"reason\":\"a\\u0001\"}",
         "/reason"},
        {"earn", reason_case, "/reason"},
        {"earn", ref_case, "/reference"},
        {"earn", "{\"point_type\":\"pts\",\"amount\":1,\"source\":\"s\",\"colour\":1}", "/colour"},
        {"spend", "{\"point_type\":\"pts\"}", "/amount"},
        {"spend", "{\"point_type\":\"nope\",\"amount\":1}", "/point_type"},
        {"spend", "{\"point_type\":\"pts\",\"amount\":1,\"sink\":\"a/b\"}", "/sink"},
        {"spend", "{\"point_type\":\"pts\",\"amount\":1,\"source\":\"s\"}", "/source"},
        {"spend", "{\"point_type\":\"pts\",\"amount\":1e3}", "/amount"},
    };
    json_t *before = history_on(S, "B1", 200);
    for (size_t i = 0; i < SY_TEST_LEN(bad); i++) {
        h_resp r = move(S, S->admin_key, "B1", bad[i].what, bad[i].body);
        if (r.status != 400 || !r.json || !h_str(r.json, "field") ||
            strcmp(h_str(r.json, "field"), bad[i].field) != 0)
            fail_msg("%s case %zu %s: %ld %s", bad[i].what, i, bad[i].body, r.status, r.body);
        h_assert_problem(r, 400, "validation", bad[i].field);
        h_resp_free(&r);
    }
    const char *bodies[] = {"{", "[]", "\"text\"", "\xff\xfe", ""};
    for (size_t i = 0; i < SY_TEST_LEN(bodies); i++) {
        h_resp r = move(S, S->admin_key, "B1", i % 2 ? "spend" : "earn", bodies[i]);
        if (r.status != 400)
            fail_msg("body %s: %ld %s", bodies[i], r.status, r.body);
        h_resp_free(&r);
    }
    /* unknown customers */
    h_resp r = move(S, S->admin_key, "NOPE", "earn",
                    "{\"point_type\":\"pts\",\"amount\":1,\"source\":\"s\"}");
    h_assert_problem(r, 404, "not-found", NULL);
    h_resp_free(&r);
    r = move(S, S->admin_key, "a%20b", "spend", "{\"point_type\":\"pts\",\"amount\":1}");
    h_assert_problem(r, 404, "not-found", NULL);
    h_resp_free(&r);
    /* reversal bodies */
    char id[48];
    earn_on(S, "B1", "pts", 5, id);
    json_decref(before);
    before = history_on(S, "B1", 200);
    char path[96];
    snprintf(path, sizeof path, "/v1/ledger/%s:reverse", id);
    struct {
        const char *body, *field;
    } rbad[] = {{"{}", "/reason"},
                {"{\"reason\":\"\"}", "/reason"},
                {"{\"reason\":7}", "/reason"},
                {"{\"reason\":\"x\",\"amount\":5}", "/amount"}};
    for (size_t i = 0; i < SY_TEST_LEN(rbad); i++) {
        r = h_req(S, "POST", path, S->admin_key, rbad[i].body);
        h_assert_problem(r, 400, "validation", rbad[i].field);
        h_resp_free(&r);
    }
    json_t *after = history_on(S, "B1", 200);
    assert_int_equal(json_array_size(after), json_array_size(before));
    assert_true(json_equal(after, before));
    json_decref(after);
    json_decref(before);
    assert_int_equal(balance_on(S, "B1", "pts", NULL), 55);
}

/* ---- idempotency ---- */

static void test_idempotent_earn(void **state)
{
    put_customer_on(S, "I1", NULL);
    const char *hdr[] = {"Idempotency-Key: earn-I1-checkin-1", NULL};
    const char *body = "{\"point_type\":\"pts\",\"amount\":20,\"source\":\"checkin\"}";
    h_resp a = h_req_h(S, "POST", "/v1/customers/I1/points:earn", APP_KEY, body, hdr);
    assert_int_equal(a.status, 201);
    assert_string_equal(h_str(a.json, "idempotency_key"), "earn-I1-checkin-1");
    h_resp b = h_req_h(S, "POST", "/v1/customers/I1/points:earn", APP_KEY, body, hdr);
    assert_int_equal(b.status, 201);
    char replayed[16];
    assert_true(h_header(&b, "Idempotent-Replayed", replayed, sizeof replayed));
    assert_string_equal(h_str(a.json, "id"), h_str(b.json, "id"));
    h_resp_free(&b);
    h_resp c = h_req_h(S, "POST", "/v1/customers/I1/points:earn", APP_KEY,
                       "{\"point_type\":\"pts\",\"amount\":21,\"source\":\"checkin\"}", hdr);
    h_assert_problem(c, 409, "idempotency-mismatch", "Idempotency-Key");
    h_resp_free(&c);
    json_t *h = history_on(S, "I1", 50);
    assert_int_equal(json_array_size(h), 1); /* one entry */
    json_decref(h);
    assert_int_equal(balance_on(S, "I1", "pts", NULL), 20);

    /* After the server forgets the key (24 h), the ledger still knows it:
     * the points do not move twice. */
    h_sql(S, "UPDATE idempotency SET created_at = created_at - 90000000"
             " WHERE idem_key = 'earn-I1-checkin-1'");
    h_resp d = h_req_h(S, "POST", "/v1/customers/I1/points:earn", APP_KEY, body, hdr);
    h_assert_problem(d, 409, "conflict", "Idempotency-Key");
    assert_string_equal(h_str(d.json, "entry_id"), h_str(a.json, "id"));
    h_resp_free(&d);
    h_resp_free(&a);
    assert_int_equal(balance_on(S, "I1", "pts", NULL), 20);
    /* a spend with a key that an earn used */
    const char *hdr2[] = {"Idempotency-Key: earn-I1-checkin-1", NULL};
    h_resp e = h_req_h(S, "POST", "/v1/customers/I1/points:spend", APP_KEY,
                       "{\"point_type\":\"pts\",\"amount\":1}", hdr2);
    h_assert_problem(e, 409, "conflict", "Idempotency-Key");
    h_resp_free(&e);
}

typedef struct key_race {
    long status;
    char id[48];
} key_race;

static int race_round;

static void *earn_with_shared_key(void *p)
{
    key_race *k = p;
    char key[64];
    snprintf(key, sizeof key, "Idempotency-Key: race-earn-I2-%d", race_round);
    const char *hdr[] = {key, NULL};
    h_resp r = h_req_h(S, "POST", "/v1/customers/I2/points:earn", APP_KEY,
                       "{\"point_type\":\"pts\",\"amount\":7,\"source\":\"race\"}", hdr);
    k->status = r.status;
    const char *id = r.status == 201 ? h_str(r.json, "id") : h_str(r.json, "entry_id");
    snprintf(k->id, sizeof k->id, "%s", id ? id : "");
    h_resp_free(&r);
    return NULL;
}

/* Requests racing with one key move the points once, and every one of
 * them gets the entry: the first its 201, the others its replay — also
 * those whose write found the key in the ledger before the first one's
 * answer was stored (not a 409).  Several rounds, since which request
 * meets which check depends on how the writer batches them. */
static void test_idempotent_earn_race(void **state)
{
    put_customer_on(S, "I2", NULL);
    enum { N = 12, ROUNDS = 6 };
    for (race_round = 0; race_round < ROUNDS; race_round++) {
        pthread_t t[N];
        key_race k[N];
        memset(k, 0, sizeof k);
        for (int i = 0; i < N; i++)
            pthread_create(&t[i], NULL, earn_with_shared_key, &k[i]);
        for (int i = 0; i < N; i++)
            pthread_join(t[i], NULL);
        json_t *h = history_on(S, "I2", 50);
        assert_int_equal(json_array_size(h), (size_t)race_round + 1);
        const char *newest = h_str(json_array_get(h, 0), "id");
        for (int i = 0; i < N; i++) {
            if (k[i].status != 201)
                fail_msg("round %d, request %d: %ld", race_round, i, k[i].status);
            assert_string_equal(k[i].id, newest);
        }
        json_decref(h);
    }
    assert_int_equal(balance_on(S, "I2", "pts", NULL), 7 * ROUNDS);
}

/* ---- reversals ---- */

static void test_reversals(void **state)
{
    put_customer_on(S, "R1", NULL);
    char e1[32], e2[32], path[96];
    earn_on(S, "R1", "pts", 100, e1);
    earn_on(S, "R1", "pts", 40, e2);
    h_resp r = spend_on(S, S->admin_key, "R1", "pts", 120); /* e1 100, e2 20 */
    assert_int_equal(r.status, 201);
    char sp[48];
    snprintf(sp, sizeof sp, "%s", h_str(r.json, "id"));
    h_resp_free(&r);

    /* an earn partly spent */
    snprintf(path, sizeof path, "/v1/ledger/%s:reverse", e2);
    r = h_req(S, "POST", path, S->admin_key, "{\"reason\":\"given twice\"}");
    h_assert_problem(r, 409, "points-used", NULL);
    assert_int_equal(json_integer_value(json_object_get(r.json, "lot_remaining")), 20);
    h_resp_free(&r);
    /* only admins reverse */
    snprintf(path, sizeof path, "/v1/ledger/%s:reverse", sp);
    r = h_req(S, "POST", path, APP_KEY, "{\"reason\":\"x\"}");
    h_assert_problem(r, 403, "forbidden", NULL);
    h_resp_free(&r);
    /* the spend: back into the same lots */
    r = h_req(S, "POST", path, S->admin_key, "{\"reason\":\"order cancelled\"}");
    assert_int_equal(r.status, 201);
    assert_string_equal(h_str(r.json, "kind"), "reverse");
    assert_string_equal(h_str(r.json, "reverses"), sp);
    assert_string_equal(h_str(r.json, "debit_account"), "sink:spend");
    assert_string_equal(h_str(r.json, "credit_account"), "customer:R1");
    assert_int_equal(json_integer_value(json_object_get(r.json, "balance")), 140);
    assert_int_equal(json_array_size(json_object_get(r.json, "allocations")), 2);
    char rv[32];
    snprintf(rv, sizeof rv, "%s", h_str(r.json, "id"));
    h_resp_free(&r);
    r = h_req(S, "POST", path, S->admin_key, "{\"reason\":\"again\"}");
    h_assert_problem(r, 409, "already-reversed", NULL);
    assert_string_equal(h_str(r.json, "reversed_by"), rv);
    h_resp_free(&r);
    snprintf(path, sizeof path, "/v1/ledger/%s:reverse", rv);
    r = h_req(S, "POST", path, S->admin_key, "{\"reason\":\"undo the undo\"}");
    h_assert_problem(r, 409, "not-reversible", NULL);
    h_resp_free(&r);
    r = h_req(S, "POST", "/v1/ledger/le_0000000000000000:reverse", S->admin_key,
              "{\"reason\":\"x\"}");
    h_assert_problem(r, 404, "not-found", NULL);
    h_resp_free(&r);
    /* now e2 is whole again and can be reversed */
    snprintf(path, sizeof path, "/v1/ledger/%s:reverse", e2);
    r = h_req(S, "POST", path, S->admin_key, "{\"reason\":\"given twice\"}");
    assert_int_equal(r.status, 201);
    assert_int_equal(json_integer_value(json_object_get(r.json, "balance")), 100);
    h_resp_free(&r);
    snprintf(path, sizeof path, "/v1/ledger/%s", sp);
    r = h_req(S, "GET", path, S->admin_key, NULL);
    assert_string_equal(h_str(r.json, "reversed_by"), rv);
    h_resp_free(&r);
    assert_int_equal(balance_on(S, "R1", "pts", NULL), 100);
    assert_check_passes(S);
}

/* ---- roles and merged customers ---- */

static void test_roles(void **state)
{
    put_customer_on(S, "O1", NULL);
    earn_on(S, "O1", "pts", 10, NULL);
    h_resp r = move(S, ANALYST_KEY, "O1", "earn",
                    "{\"point_type\":\"pts\",\"amount\":1,"
                    "\"source\":\"s\"}");
    h_assert_problem(r, 403, "forbidden", NULL);
    h_resp_free(&r);
    r = spend_on(S, ANALYST_KEY, "O1", "pts", 1);
    h_assert_problem(r, 403, "forbidden", NULL);
    h_resp_free(&r);
    r = h_req(S, "POST", "/v1/points:expire", APP_KEY, NULL);
    h_assert_problem(r, 403, "forbidden", NULL);
    h_resp_free(&r);
    r = h_req(S, "GET", "/v1/customers/O1/points/history", ANALYST_KEY, NULL);
    assert_int_equal(r.status, 200);
    h_resp_free(&r);
    r = spend_on(S, APP_KEY, "O1", "pts", 4);
    assert_int_equal(r.status, 201);
    /* the operator is the calling key: key_ and its 12-hex-digit prefix */
    char app_id[32];
    snprintf(app_id, sizeof app_id, "key_%.12s", APP_KEY + 3);
    assert_string_equal(h_str(r.json, "operator"), app_id);
    h_resp_free(&r);
}

static void test_merged_customer(void **state)
{
    put_customer_on(S, "M1", "{\"identities\":[{\"type\":\"app_user_id\",\"value\":\"u-merge\"}]}");
    earn_on(S, "M1", "pts", 30, NULL);
    /* M2 takes M1's identity: M1 is merged into M2 */
    put_customer_on(S, "M2", "{\"identities\":[{\"type\":\"app_user_id\",\"value\":\"u-merge\"}]}");
    h_resp r = move(S, S->admin_key, "M1", "earn",
                    "{\"point_type\":\"pts\",\"amount\":1,\"source\":\"s\"}");
    h_assert_problem(r, 409, "conflict", NULL);
    assert_non_null(strstr(h_str(r.json, "detail"), "M2"));
    h_resp_free(&r);
    r = spend_on(S, S->admin_key, "M1", "pts", 1);
    h_assert_problem(r, 409, "conflict", NULL);
    h_resp_free(&r);
    r = h_req(S, "GET", "/v1/customers/M1/points", S->admin_key, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(h_str(r.json, "merged_into"), "M2");
    h_resp_free(&r);
    earn_on(S, "M2", "pts", 5, NULL);
    assert_check_passes(S);
}

/* ---- expiry ---- */

static void test_expiry_called_and_scheduled(void **state)
{
    put_customer_on(S, "X1", NULL);
    put_customer_on(S, "X2", NULL);
    char a[32];
    earn_on(S, "X1", "sun", 60, a);
    earn_on(S, "X1", "sun", 15, NULL);
    earn_on(S, "X1", "pts", 9, NULL);
    earn_on(S, "X2", "sun", 25, NULL);
    h_resp r = h_req(S, "POST", "/v1/points:expire", S->admin_key, NULL);
    assert_int_equal(r.status, 200);
    h_resp_free(&r);
    /* X1's first lot reaches its expiry (set in the past by hand) */
    char sql[256];
    snprintf(sql, sizeof sql,
             "UPDATE point_lots SET expires_at = 1000 WHERE tenant_id = 'demo'"
             " AND entry_id = '%s'",
             a);
    h_sql(S, sql);
    /* gone from the balance at once, before the job writes it off */
    assert_int_equal(balance_on(S, "X1", "sun", NULL), 15);
    r = h_req(S, "POST", "/v1/points:expire", S->admin_key, "{\"colour\":1}");
    h_assert_problem(r, 400, "validation", "/colour");
    h_resp_free(&r);
    r = h_req(S, "POST", "/v1/points:expire", S->admin_key, "{}");
    assert_int_equal(r.status, 200);
    assert_int_equal(json_integer_value(json_object_get(r.json, "entries")), 1);
    assert_int_equal(json_integer_value(json_object_get(r.json, "points")), 60);
    assert_false(json_is_true(json_object_get(r.json, "more")));
    json_t *it = json_array_get(json_object_get(r.json, "items"), 0);
    assert_string_equal(h_str(it, "customer_no"), "X1");
    assert_string_equal(h_str(it, "point_type"), "sun");
    char path[96];
    snprintf(path, sizeof path, "/v1/ledger/%s", h_str(it, "entry_id"));
    h_resp_free(&r);
    r = h_req(S, "GET", path, S->admin_key, NULL);
    assert_string_equal(h_str(r.json, "kind"), "expire");
    assert_string_equal(h_str(r.json, "credit_account"), "expired");
    assert_string_equal(h_str(r.json, "operator"), "system:expiry");
    h_resp_free(&r);
    assert_int_equal(balance_on(S, "X1", "sun", NULL), 15);
    assert_check_passes(S);

    /* The server's maintenance runs the job by itself, about a second
     * after it starts (then every ten minutes). */
    assert_int_equal(h_signal_wait(S, SIGTERM), 0);
    h_sql(S, "UPDATE point_lots SET expires_at = 2000 WHERE tenant_id = 'demo'"
             " AND customer_no = 'X2' AND point_type = 'sun'");
    h_launch(S);
    json_int_t left = -1;
    for (int i = 0; i < 300 && left != 0; i++) {
        json_t *h = history_on(S, "X2", 50);
        left = strcmp(h_str(json_array_get(h, 0), "kind"), "expire") ? -1 : 0;
        json_decref(h);
        if (left)
            h_sleep_ms(50);
    }
    if (left != 0)
        fail_msg("the maintenance did not expire X2's points within 15 s");
    assert_int_equal(balance_on(S, "X2", "sun", NULL), 0);
    assert_check_passes(S);
}

/* ---- siyu check ---- */

static void test_check_command(void **state)
{
    char *out = NULL;
    assert_int_equal(h_cli(S, &out, "check --help"), 0);
    assert_non_null(strstr(out, "usage: siyu check"));
    assert_non_null(strstr(out, "--tenant"));
    free(out);
    assert_int_equal(h_cli(S, NULL, "check --tenant no-such-tenant"), 3);
    assert_int_equal(h_cli(S, NULL, "check --no-such-flag 1"), 2);

    put_customer_on(S, "K1", NULL);
    earn_on(S, "K1", "pts", 70, NULL);
    assert_check_passes(S);
    /* A damaged store: the check names the customer, the type, and what it
     * expected against what it found. */
    h_sql(S, "UPDATE point_accounts SET balance = balance + 5 WHERE tenant_id = 'demo'"
             " AND customer_no = 'K1' AND point_type = 'pts'");
    assert_int_equal(check_on(S, &out), 1);
    if (!strstr(out, "ledger: customer K1, type pts: balance 75, expected 70"))
        fail_msg("siyu check said:\n%s", out);
    assert_non_null(strstr(out, "violation"));
    free(out);
    h_sql(S, "UPDATE point_accounts SET balance = balance - 5 WHERE tenant_id = 'demo'"
             " AND customer_no = 'K1' AND point_type = 'pts'");
    assert_check_passes(S);
}

/* ---- concurrent spends ---- */

#define SPENDERS 8
#define SPENDS_EACH 8

typedef struct spend_race {
    volatile int go;
    int ok, insufficient, other;
    pthread_mutex_t mu;
} spend_race;

static void *spender(void *p)
{
    spend_race *sr = p;
    CURL *c = curl_easy_init();
    const char *body = "{\"point_type\":\"pts\",\"amount\":30,\"reason\":\"race\"}";
    while (!sr->go)
        h_sleep_ms(1);
    for (int i = 0; i < SPENDS_EACH; i++) {
        h_resp r = h_req_on(c, S, "POST", "/v1/customers/Q1/points:spend", APP_KEY, body,
                            strlen(body), NULL);
        pthread_mutex_lock(&sr->mu);
        if (r.status == 201)
            sr->ok++;
        else if (r.status == 409 && r.json && !strcmp(h_str(r.json, "type"), "insufficient-points"))
            sr->insufficient++;
        else
            sr->other++;
        pthread_mutex_unlock(&sr->mu);
        h_resp_free(&r);
    }
    curl_easy_cleanup(c);
    return NULL;
}

static void test_concurrent_spends(void **state)
{
    put_customer_on(S, "Q1", NULL);
    earn_on(S, "Q1", "pts", 600, NULL);
    earn_on(S, "Q1", "pts", 400, NULL);
    /* 1000 points, 64 spends of 30: exactly 33 fit */
    spend_race sr = {0};
    pthread_mutex_init(&sr.mu, NULL);
    pthread_t t[SPENDERS];
    for (int i = 0; i < SPENDERS; i++)
        pthread_create(&t[i], NULL, spender, &sr);
    sr.go = 1;
    for (int i = 0; i < SPENDERS; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(sr.other, 0);
    assert_int_equal(sr.ok, 33);
    assert_int_equal(sr.insufficient, SPENDERS * SPENDS_EACH - 33);
    assert_int_equal(balance_on(S, "Q1", "pts", NULL), 10);
    json_t *h = history_on(S, "Q1", 200);
    assert_int_equal(json_array_size(h), 2 + 33);
    json_decref(h);
    assert_check_passes(S);
}

/* ---- kill -9 during earns and spends ---- */

#define KILL_WRITERS 8
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
        char no[16], body[160], path[96];
        snprintf(no, sizeof no, "K%u", (unsigned)(rand_r(&seed) % 4));
        bool earn = i % 2 == 0;
        if (earn)
            snprintf(body, sizeof body,
                     "{\"point_type\":\"pts\",\"amount\":%u,\"source\":\"burst\"}",
                     1 + rand_r(&seed) % 50);
        else
            snprintf(body, sizeof body, "{\"point_type\":\"pts\",\"amount\":%u}",
                     1 + rand_r(&seed) % 60);
        snprintf(path, sizeof path, "/v1/customers/%s/points:%s", no, earn ? "earn" : "spend");
        h_resp r = h_req_on(c, k->s, "POST", path, k->s->admin_key, body, strlen(body), NULL);
        pthread_mutex_lock(&k->mu);
        if (r.status == 201 && k->nacked < MAX_ACKED) {
            snprintf(k->acked[k->nacked++], 32, "%s", h_str(r.json, "id"));
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

static void test_kill9_during_earns_and_spends(void **state)
{
    kill_run k = {.s = h_start(NULL)};
    pthread_mutex_init(&k.mu, NULL);
    k.acked = calloc(MAX_ACKED, sizeof *k.acked);
    make_type_on(k.s, "{\"code\":\"pts\",\"name\":\"积分\",\"expiry\":\"never\"}");
    for (int i = 0; i < 4; i++) {
        char no[16];
        snprintf(no, sizeof no, "K%d", i);
        put_customer_on(k.s, no, NULL);
    }
    pthread_t t[KILL_WRITERS];
    for (int i = 0; i < KILL_WRITERS; i++)
        pthread_create(&t[i], NULL, kill_writer, &k);
    for (int waited = 0; waited < 60000; waited += 5) {
        pthread_mutex_lock(&k.mu);
        int n = k.nacked;
        pthread_mutex_unlock(&k.mu);
        if (n >= 400)
            break;
        h_sleep_ms(5);
    }
    assert_int_equal(h_signal_wait(k.s, SIGKILL), 128 + SIGKILL);
    k.stop = 1;
    for (int i = 0; i < KILL_WRITERS; i++)
        pthread_join(t[i], NULL);
    if (k.bad)
        fail_msg("%d requests got an unexpected answer, e.g. %s", k.bad, k.last_bad);
    assert_true(k.nacked >= 400);

    h_launch(k.s);
    /* Every acknowledged earn and spend is there. */
    CURL *c = curl_easy_init();
    for (int i = 0; i < k.nacked; i++) {
        char path[96];
        snprintf(path, sizeof path, "/v1/ledger/%s", k.acked[i]);
        h_resp r = h_req_on(c, k.s, "GET", path, k.s->admin_key, NULL, 0, NULL);
        if (r.status != 200)
            fail_msg("acknowledged entry %s is missing after kill -9: %ld", k.acked[i], r.status);
        h_resp_free(&r);
    }
    curl_easy_cleanup(c);
    /* and the ledger adds up: balances, lots, journal, allocations */
    assert_check_passes(k.s);
    h_stop(k.s);
    free(k.acked);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_point_types),
        cmocka_unit_test(test_earn_spend_balance_history),
        cmocka_unit_test(test_spend_order),
        cmocka_unit_test(test_bad_input_writes_nothing),
        cmocka_unit_test(test_idempotent_earn),
        cmocka_unit_test(test_idempotent_earn_race),
        cmocka_unit_test(test_reversals),
        cmocka_unit_test(test_roles),
        cmocka_unit_test(test_merged_customer),
        cmocka_unit_test(test_check_command),
        cmocka_unit_test(test_concurrent_spends),
        cmocka_unit_test(test_expiry_called_and_scheduled),
        cmocka_unit_test(test_kill9_during_earns_and_spends),
    };
    return cmocka_run_group_tests_name("e2e-points", tests, group_setup, group_teardown);
}

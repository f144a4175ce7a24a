/* test_e2e_api.c — the HTTP API end to end: authentication and roles,
 * tenant isolation, bad input, idempotency, keep-alive, request ids and the
 * access log, operations endpoints. */
#include "e2e/harness.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>

static h_server *S; /* one server for the whole group, on a 1 MiB body limit */

static int group_setup(void **state)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    S = h_start("--max-body", "1MiB", NULL);
    return 0;
}

static int group_teardown(void **state)
{
    h_stop(S);
    curl_global_cleanup();
    return 0;
}

/* Creates a key through the API; returns its secret (malloc'd) and id. */
static char *make_key(const char *role, char *id_out)
{
    char body[128];
    snprintf(body, sizeof body, "{\"role\":\"%s\",\"name\":\"test %s\"}", role, role);
    h_resp r = h_req(S, "POST", "/v1/keys", S->admin_key, body);
    if (r.status != 201)
        fail_msg("create %s key: %ld %s", role, r.status, r.body);
    json_t *k = json_object_get(r.json, "key");
    if (id_out)
        strcpy(id_out, h_str(k, "id"));
    char *secret = strdup(h_str(r.json, "secret"));
    h_resp_free(&r);
    return secret;
}

static size_t count_items(const char *path, const char *key)
{
    h_resp r = h_req(S, "GET", path, key, NULL);
    assert_int_equal(r.status, 200);
    size_t n = json_array_size(json_object_get(r.json, "items"));
    h_resp_free(&r);
    return n;
}

/* ---- authentication and roles ---- */

static void test_auth_missing_and_bad_keys(void **state)
{
    h_resp r = h_req(S, "GET", "/v1/tenant", NULL, NULL);
    h_assert_problem(r, 401, "unauthorized", "Authorization");
    char www[128];
    assert_true(h_header(&r, "WWW-Authenticate", www, sizeof www));
    assert_non_null(strstr(www, "Bearer"));
    h_resp_free(&r);

    const char *bad[] = {
        "nonsense",
        "sy_000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", /* well formed, unknown */
    };
    for (size_t i = 0; i < 2; i++) {
        r = h_req(S, "GET", "/v1/tenant", bad[i], NULL);
        h_assert_problem(r, 401, "unauthorized", "Authorization");
        h_resp_free(&r);
    }
    /* The right prefix with a wrong secret. */
    char forged[80];
    strcpy(forged, S->admin_key);
    forged[20] = forged[20] == 'A' ? 'B' : 'A';
    r = h_req(S, "GET", "/v1/tenant", forged, NULL);
    h_assert_problem(r, 401, "unauthorized", "Authorization");
    h_resp_free(&r);
    /* A non-Bearer scheme. */
    const char *hdr[] = {"Authorization: Basic YWRtaW46YWRtaW4=", NULL};
    r = h_req_h(S, "GET", "/v1/tenant", NULL, NULL, hdr);
    h_assert_problem(r, 401, "unauthorized", "Authorization");
    h_resp_free(&r);
}

static void test_roles_forbidden(void **state)
{
    char *app = make_key("app", NULL);
    char *analyst = make_key("analyst", NULL);
    char *compliance = make_key("compliance", NULL);

    h_resp r = h_req(S, "GET", "/v1/tenant", app, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(h_str(json_object_get(r.json, "key"), "role"), "app");
    h_resp_free(&r);

    r = h_req(S, "POST", "/v1/keys", app, "{\"role\":\"admin\"}");
    h_assert_problem(r, 403, "forbidden", NULL);
    h_resp_free(&r);
    r = h_req(S, "GET", "/v1/keys", analyst, NULL);
    h_assert_problem(r, 403, "forbidden", NULL);
    h_resp_free(&r);
    r = h_req(S, "GET", "/v1/audit", analyst, NULL);
    h_assert_problem(r, 403, "forbidden", NULL);
    h_resp_free(&r);
    r = h_req(S, "PATCH", "/v1/tenant", compliance, "{\"name\":\"x\"}");
    h_assert_problem(r, 403, "forbidden", NULL);
    h_resp_free(&r);

    r = h_req(S, "GET", "/v1/audit", compliance, NULL);
    assert_int_equal(r.status, 200);
    h_resp_free(&r);
    free(app);
    free(analyst);
    free(compliance);
}

static void test_revoked_key_stops_working(void **state)
{
    char id[64], path[128];
    char *k = make_key("app", id);
    h_resp r = h_req(S, "GET", "/v1/tenant", k, NULL);
    assert_int_equal(r.status, 200);
    h_resp_free(&r);
    snprintf(path, sizeof path, "/v1/keys/%s", id);
    r = h_req(S, "DELETE", path, S->admin_key, NULL);
    assert_int_equal(r.status, 200);
    assert_true(json_is_string(json_object_get(r.json, "revoked_at")));
    h_resp_free(&r);
    /* Revocation through the API takes effect at once, not after the cache TTL. */
    r = h_req(S, "GET", "/v1/tenant", k, NULL);
    h_assert_problem(r, 401, "unauthorized", "Authorization");
    h_resp_free(&r);
    /* Revoking again is harmless and changes nothing, not even the audit log. */
    size_t audit0 = count_items("/v1/audit?limit=500", S->admin_key);
    r = h_req(S, "DELETE", path, S->admin_key, NULL);
    assert_int_equal(r.status, 200);
    assert_true(json_is_string(json_object_get(r.json, "revoked_at")));
    h_resp_free(&r);
    assert_int_equal(count_items("/v1/audit?limit=500", S->admin_key), audit0);
    r = h_req(S, "DELETE", "/v1/keys/key_000000000000", S->admin_key, NULL);
    h_assert_problem(r, 404, "not-found", NULL);
    h_resp_free(&r);
    free(k);
}

static void test_last_admin_key_cannot_be_revoked(void **state)
{
    h_resp r = h_req(S, "GET", "/v1/tenant", S->admin_key, NULL);
    char path[128];
    snprintf(path, sizeof path, "/v1/keys/%s", h_str(json_object_get(r.json, "key"), "id"));
    h_resp_free(&r);
    r = h_req(S, "DELETE", path, S->admin_key, NULL);
    h_assert_problem(r, 409, "conflict", NULL);
    h_resp_free(&r);
    r = h_req(S, "GET", "/v1/tenant", S->admin_key, NULL);
    assert_int_equal(r.status, 200);
    h_resp_free(&r);
}

static void test_cli_key_lifecycle(void **state)
{
    char *out = NULL;
    assert_int_equal(h_cli(S, &out, "key create --tenant demo --role analyst --name cli"), 0);
    char key[80] = "";
    sscanf(out, "%79s", key);
    free(out);
    h_resp r = h_req(S, "GET", "/v1/tenant", key, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(h_str(json_object_get(r.json, "key"), "role"), "analyst");
    char id[64];
    strcpy(id, h_str(json_object_get(r.json, "key"), "id"));
    h_resp_free(&r);
    assert_int_equal(h_cli(S, NULL, "key revoke --tenant demo %s", id), 0);
    /* Another process revoked it: the server's cache re-reads within a second. */
    h_sleep_ms(1100);
    r = h_req(S, "GET", "/v1/tenant", key, NULL);
    h_assert_problem(r, 401, "unauthorized", "Authorization");
    h_resp_free(&r);
    /* The CLI refuses a bad role and an unknown tenant. */
    assert_int_not_equal(h_cli(S, NULL, "key create --tenant demo --role root"), 0);
    assert_int_not_equal(h_cli(S, NULL, "key create --tenant nobody --role app"), 0);
}

static void test_cli_help_version_and_errors(void **state)
{
    char *out = NULL;
    assert_int_equal(h_cli(S, &out, "version"), 0);
    assert_non_null(strstr(out, "siyu "));
    free(out);
    /* --help on each command lists its settings and exits 0. */
    const char *cmds[] = {"serve",      "migrate",       "key create", "key list",
                          "key revoke", "tenant create", "tenant list"};
    for (size_t i = 0; i < SY_TEST_LEN(cmds); i++) {
        assert_int_equal(h_cli(S, &out, "%s --help", cmds[i]), 0);
        if (!strstr(out, "usage: siyu") || !strstr(out, "--data"))
            fail_msg("'%s --help' printed: %s", cmds[i], out);
        free(out);
    }
    assert_int_equal(h_cli(S, &out, "serve --help"), 0);
    assert_non_null(strstr(out, "--listen"));
    assert_non_null(strstr(out, "SIYU_MAX_BODY"));
    free(out);
    assert_int_equal(h_cli(S, NULL, "frobnicate"), 2);
    assert_int_equal(h_cli(S, NULL, "serve --no-such-flag 1"), 2);
    assert_int_equal(h_cli(S, NULL, "tenant create 'Bad Id'"), 1);
    assert_int_equal(h_cli(S, NULL, "tenant create bank-c --timezone Mars/Base"), 1);
    assert_int_equal(h_cli(S, &out, "tenant list"), 0);
    assert_non_null(strstr(out, "demo"));
    assert_null(strstr(out, "bank-c"));
    free(out);
}

/* ---- tenant isolation ---- */

static void test_tenant_isolation(void **state)
{
    char *out = NULL;
    assert_int_equal(h_cli(S, NULL, "tenant create bank-b --name 'Bank B'"), 0);
    assert_int_equal(h_cli(S, &out, "key create --tenant bank-b --role admin"), 0);
    char bkey[80] = "";
    sscanf(out, "%79s", bkey);
    free(out);

    h_resp r = h_req(S, "GET", "/v1/tenant", bkey, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(h_str(r.json, "id"), "bank-b");
    h_resp_free(&r);
    char bid[64];
    r = h_req(S, "POST", "/v1/keys", bkey, "{\"role\":\"app\",\"name\":\"b app\"}");
    assert_int_equal(r.status, 201);
    strcpy(bid, h_str(json_object_get(r.json, "key"), "id"));
    h_resp_free(&r);

    /* Tenant demo sees none of bank-b's keys, audit rows or records. */
    r = h_req(S, "GET", "/v1/keys?include_revoked=true", S->admin_key, NULL);
    assert_int_equal(r.status, 200);
    json_t *items = json_object_get(r.json, "items");
    for (size_t i = 0; i < json_array_size(items); i++)
        assert_string_not_equal(h_str(json_array_get(items, i), "id"), bid);
    h_resp_free(&r);
    char path[128];
    snprintf(path, sizeof path, "/v1/keys/%s", bid);
    r = h_req(S, "GET", path, S->admin_key, NULL);
    h_assert_problem(r, 404, "not-found", NULL);
    h_resp_free(&r);
    r = h_req(S, "DELETE", path, S->admin_key, NULL);
    h_assert_problem(r, 404, "not-found", NULL);
    h_resp_free(&r);
    r = h_req(S, "GET", path, bkey, NULL);
    assert_int_equal(r.status, 200);
    h_resp_free(&r);
    r = h_req(S, "GET", "/v1/audit?limit=500", S->admin_key, NULL);
    items = json_object_get(r.json, "items");
    for (size_t i = 0; i < json_array_size(items); i++) {
        const char *target = h_str(json_array_get(items, i), "target");
        assert_false(target && !strcmp(target, bid));
    }
    h_resp_free(&r);
    r = h_req(S, "GET", "/v1/tenant", S->admin_key, NULL);
    assert_string_equal(h_str(r.json, "id"), "demo");
    h_resp_free(&r);
}

/* ---- bad input writes nothing ---- */

static void test_bad_input(void **state)
{
    size_t keys0 = count_items("/v1/keys?include_revoked=true", S->admin_key);
    size_t audit0 = count_items("/v1/audit?limit=500", S->admin_key);
    struct {
        const char *body;
        int status;
        const char *type, *field;
    } cases[] = {
        {"{\"role\":", 400, "invalid-json", NULL},
        {"", 400, "invalid-json", NULL},
        {"[1,2]", 400, "validation", NULL},
        {"{\"role\":5}", 400, "validation", "/role"},
        {"{\"role\":\"app\",\"name\":7}", 400, "validation", "/name"},
        {"{\"role\":\"root\"}", 400, "validation", "/role"},
        {"{\"name\":\"no role\"}", 400, "validation", "/role"},
        {"{\"role\":\"app\",\"colour\":\"red\"}", 400, "validation", "/colour"},
        {"{\"role\":\"app\",\"role\":\"admin\"}", 400, "invalid-json", NULL},
        {"{\"role\":\"app\",\"name\":\"\xff\xfe\"}", 400, "invalid-json", NULL},
        {"{\"role\":\"app\",\"name\":\"a\\u0000b\"}", 400, "invalid-json", NULL},
        {"{\"role\":\"app\",\"name\":\"tab\\there\"}", 400, "validation", "/name"},
    };
    CURL *c = curl_easy_init();
    for (size_t i = 0; i < SY_TEST_LEN(cases); i++) {
        h_resp r = h_req_on(c, S, "POST", "/v1/keys", S->admin_key, cases[i].body,
                            strlen(cases[i].body), NULL);
        if (r.status != cases[i].status || !r.json ||
            strcmp(h_str(r.json, "type"), cases[i].type) != 0)
            fail_msg("case %zu (%s): got %ld %s", i, cases[i].body, r.status, r.body);
        h_assert_problem(r, cases[i].status, cases[i].type, cases[i].field);
        h_resp_free(&r);
    }
    /* Bad query parameters and tenant fields. */
    h_resp r = h_req(S, "GET", "/v1/audit?limit=0", S->admin_key, NULL);
    h_assert_problem(r, 400, "validation", "limit");
    h_resp_free(&r);
    r = h_req(S, "GET", "/v1/audit?limit=abc", S->admin_key, NULL);
    h_assert_problem(r, 400, "validation", "limit");
    h_resp_free(&r);
    r = h_req(S, "GET", "/v1/keys?include_revoked=yes", S->admin_key, NULL);
    h_assert_problem(r, 400, "validation", "include_revoked");
    h_resp_free(&r);
    /* a parameter the endpoint does not read (misspelt) is named, not ignored */
    r = h_req(S, "GET", "/v1/audit?limit=5&form=2026-01-01", S->admin_key, NULL);
    h_assert_problem(r, 400, "validation", "form");
    assert_non_null(strstr(h_str(r.json, "detail"), "limit"));
    h_resp_free(&r);
    r = h_req(S, "GET", "/v1/tenant?x=1", S->admin_key, NULL);
    h_assert_problem(r, 400, "validation", "x");
    h_resp_free(&r);
    /* also on a write, which then writes nothing */
    r = h_req(S, "POST", "/v1/keys?dry_run=true", S->admin_key, "{\"role\":\"app\"}");
    h_assert_problem(r, 400, "validation", "dry_run");
    h_resp_free(&r);
    r = h_req(S, "PATCH", "/v1/tenant", S->admin_key, "{\"timezone\":\"Mars/Olympus\"}");
    h_assert_problem(r, 400, "validation", "/timezone");
    h_resp_free(&r);
    r = h_req(S, "PATCH", "/v1/tenant", S->admin_key, "{}");
    h_assert_problem(r, 400, "validation", "");
    h_resp_free(&r);
    r = h_req(S, "PATCH", "/v1/tenant", S->admin_key, "{\"timezone\":\"../../etc/passwd\"}");
    h_assert_problem(r, 400, "validation", "/timezone");
    h_resp_free(&r);
    const char *bad_idem[] = {"Idempotency-Key: has space", NULL};
    r = h_req_on(c, S, "POST", "/v1/keys", S->admin_key, "{\"role\":\"app\"}", 14, bad_idem);
    h_assert_problem(r, 400, "validation", "Idempotency-Key");
    h_resp_free(&r);

    /* An encoded NUL does not cut the path or a query value short: the
     * key's own id followed by %00 and more is not that key */
    h_resp keys = h_req(S, "GET", "/v1/keys", S->admin_key, NULL);
    char nul_path[160];
    snprintf(nul_path, sizeof nul_path, "/v1/keys/%s%%00junk",
             h_str(json_array_get(json_object_get(keys.json, "items"), 0), "id"));
    h_resp_free(&keys);
    r = h_req(S, "GET", nul_path, S->admin_key, NULL);
    h_assert_problem(r, 400, "validation", "path");
    h_resp_free(&r);
    r = h_req(S, "DELETE", nul_path, S->admin_key, NULL);
    h_assert_problem(r, 400, "validation", "path");
    h_resp_free(&r);
    r = h_req(S, "GET", "/v1/audit?limit=5%00", S->admin_key, NULL);
    h_assert_problem(r, 400, "validation", "limit");
    h_resp_free(&r);

    /* An action written with a slash instead of its colon is pointed out */
    r = h_req(S, "POST", "/v1/segments/preview", S->admin_key, "{\"expression\":\"aum >= 1\"}");
    h_assert_problem(r, 405, "method-not-allowed", NULL);
    assert_non_null(strstr(h_str(r.json, "detail"), "did you mean POST /v1/segments:preview?"));
    h_resp_free(&r);
    /* A key's id sent for the key */
    r = h_req(S, "GET", "/v1/tenant", "key_0123456789ab", NULL);
    h_assert_problem(r, 401, "unauthorized", "Authorization");
    assert_non_null(strstr(h_str(r.json, "detail"), "key's id"));
    h_resp_free(&r);

    /* Unknown route, wrong method. */
    r = h_req(S, "GET", "/v1/nothing-here", S->admin_key, NULL);
    h_assert_problem(r, 404, "not-found", NULL);
    h_resp_free(&r);
    r = h_req(S, "PUT", "/v1/keys", S->admin_key, "{}");
    h_assert_problem(r, 405, "method-not-allowed", NULL);
    char allow[64];
    assert_true(h_header(&r, "Allow", allow, sizeof allow));
    assert_non_null(strstr(allow, "POST"));
    assert_non_null(strstr(allow, "GET"));
    assert_non_null(strstr(allow, "HEAD"));
    h_resp_free(&r);

    /* A body over the limit (1 MiB here): refused with 413, before the
     * body is sent when the client asks first (a client that sends it all
     * regardless may find the connection closed: docs/openapi.yaml). */
    size_t big = 2 * 1024 * 1024;
    char *blob = malloc(big);
    memset(blob, 'x', big);
    memcpy(blob, "{\"role\":\"app\",\"name\":\"", 22);
    const char *expect[] = {"Expect: 100-continue", NULL};
    r = h_req_on(c, S, "POST", "/v1/keys", S->admin_key, blob, big, expect);
    h_assert_problem(r, 413, "payload-too-large", NULL);
    h_resp_free(&r);
    /* Also when it arrives chunked, without a Content-Length. */
    const char *chunked[] = {"Transfer-Encoding: chunked", NULL};
    r = h_req_on(c, S, "POST", "/v1/keys", S->admin_key, blob, big, chunked);
    h_assert_problem(r, 413, "payload-too-large", NULL);
    h_resp_free(&r);
    free(blob);
    curl_easy_cleanup(c);

    assert_int_equal(count_items("/v1/keys?include_revoked=true", S->admin_key), keys0);
    assert_int_equal(count_items("/v1/audit?limit=500", S->admin_key), audit0);
}

/* ---- idempotency ---- */

/* Every endpoint that takes a body answers malformed input with a 4xx
 * problem and writes nothing. */
static void test_bad_bodies_on_every_write_endpoint(void **state)
{
    size_t audit0 = count_items("/v1/audit?limit=500", S->admin_key);
    struct {
        const char *method, *path;
    } eps[] = {
        {"POST", "/v1/keys"},
        {"PATCH", "/v1/tenant"},
        {"POST", "/v1/attributes"},
        {"PATCH", "/v1/attributes/risk_level"},
        {"PUT", "/v1/customers/Z1"},
        {"POST", "/v1/customers:import"},
        {"POST", "/v1/events"},
        {"POST", "/v1/segments:preview"},
        {"POST", "/v1/segments"},
        {"PUT", "/v1/segments/nope"},
        {"POST", "/v1/tags"},
        {"POST", "/v1/tags/nope/members"},
        {"POST", "/v1/point-types"},
        {"POST", "/v1/customers/Z1/points:earn"},
        {"POST", "/v1/customers/Z1/points:spend"},
        {"POST", "/v1/ledger/le_0:reverse"},
        {"POST", "/v1/points:expire"},
    };
    const char *bodies[] = {"{", "[]", "\"text\"", "{\"unexpected\": 1}", "\xff\xfe"};
    for (size_t e = 0; e < SY_TEST_LEN(eps); e++)
        for (size_t b = 0; b < SY_TEST_LEN(bodies); b++) {
            h_resp r = h_req(S, eps[e].method, eps[e].path, S->admin_key, bodies[b]);
            char ct[128] = "";
            h_header(&r, "Content-Type", ct, sizeof ct);
            if (r.status < 400 || r.status >= 500 || strcmp(ct, "application/problem+json") != 0 ||
                !r.json || !h_str(r.json, "type") || !h_str(r.json, "detail"))
                fail_msg("%s %s with body %s: %ld %s", eps[e].method, eps[e].path, bodies[b],
                         r.status, r.body ? r.body : "");
            h_resp_free(&r);
        }
    /* nothing was written: no audited change happened */
    assert_int_equal(count_items("/v1/audit?limit=500", S->admin_key), audit0);
    h_resp r = h_req(S, "GET", "/v1/customers/Z1", S->admin_key, NULL);
    h_assert_problem(r, 404, "not-found", NULL);
    h_resp_free(&r);
}

/* The writer's count of mutations it committed (siyu_store_commit_batch_size_sum). */
static long long mutations_committed(void)
{
    h_resp r = h_req(S, "GET", "/metrics", NULL, NULL);
    assert_int_equal(r.status, 200);
    const char *m = strstr(r.body, "\nsiyu_store_commit_batch_size_sum ");
    assert_non_null(m);
    long long n = atoll(m + strlen("\nsiyu_store_commit_batch_size_sum "));
    h_resp_free(&r);
    return n;
}

static void test_idempotency_replay_and_mismatch(void **state)
{
    size_t keys0 = count_items("/v1/keys?include_revoked=true", S->admin_key);
    const char *hdr[] = {"Idempotency-Key: create-app-key-1", NULL};
    const char *body = "{\"role\":\"app\",\"name\":\"idempotent\"}";
    h_resp a = h_req_h(S, "POST", "/v1/keys", S->admin_key, body, hdr);
    assert_int_equal(a.status, 201);
    assert_true(json_is_string(json_object_get(a.json, "secret")));
    char replayed[16];
    assert_false(h_header(&a, "Idempotent-Replayed", replayed, sizeof replayed));
    char location[128], again[128];
    assert_true(h_header(&a, "Location", location, sizeof location));
    /* The replay passes through the writer, so that it is sent only once
     * what it answers is durable (a read may see a commit before its
     * fsync): it is one more mutation committed. */
    long long m0 = mutations_committed();
    h_resp b = h_req_h(S, "POST", "/v1/keys", S->admin_key, body, hdr);
    assert_true(mutations_committed() >= m0 + 1);
    assert_int_equal(b.status, 201);
    assert_true(h_header(&b, "Idempotent-Replayed", replayed, sizeof replayed));
    assert_string_equal(replayed, "true");
    /* the answer as first sent: its type and Location too */
    assert_true(h_header(&b, "Location", again, sizeof again));
    assert_string_equal(again, location);
    assert_true(h_header(&b, "Content-Type", again, sizeof again));
    assert_string_equal(again, "application/json");
    /* Same key as the original; the secret is never stored, so not replayed. */
    assert_string_equal(h_str(json_object_get(a.json, "key"), "id"),
                        h_str(json_object_get(b.json, "key"), "id"));
    assert_true(json_is_null(json_object_get(b.json, "secret")));
    h_resp_free(&a);
    h_resp_free(&b);
    assert_int_equal(count_items("/v1/keys?include_revoked=true", S->admin_key), keys0 + 1);

    h_resp c = h_req_h(S, "POST", "/v1/keys", S->admin_key,
                       "{\"role\":\"analyst\",\"name\":\"idempotent\"}", hdr);
    h_assert_problem(c, 409, "idempotency-mismatch", "Idempotency-Key");
    h_resp_free(&c);
    assert_int_equal(count_items("/v1/keys?include_revoked=true", S->admin_key), keys0 + 1);
}

static void test_idempotency_expires_after_24h(void **state)
{
    const char *hdr[] = {"Idempotency-Key: expiring-key", NULL};
    const char *body = "{\"role\":\"app\",\"name\":\"expiring\"}";
    h_resp a = h_req_h(S, "POST", "/v1/keys", S->admin_key, body, hdr);
    assert_int_equal(a.status, 201);
    char first[64];
    strcpy(first, h_str(json_object_get(a.json, "key"), "id"));
    h_resp_free(&a);
    /* Age the stored outcome past the 24 h retention (another process may
     * write the database beside the server). */
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "sqlite3 '%s/siyu.db' \"UPDATE idempotency SET created_at = created_at - 90000000"
             " WHERE idem_key = 'expiring-key'\"",
             S->data);
    assert_int_equal(system(cmd), 0);
    h_resp b = h_req_h(S, "POST", "/v1/keys", S->admin_key, body, hdr);
    assert_int_equal(b.status, 201);
    char replayed[16];
    assert_false(h_header(&b, "Idempotent-Replayed", replayed, sizeof replayed));
    assert_string_not_equal(h_str(json_object_get(b.json, "key"), "id"), first);
    h_resp_free(&b);
    /* The new outcome is stored in place of the expired one. */
    h_resp c = h_req_h(S, "POST", "/v1/keys", S->admin_key, body, hdr);
    assert_true(h_header(&c, "Idempotent-Replayed", replayed, sizeof replayed));
    h_resp_free(&c);
}

typedef struct race_arg {
    char id[64];
    long status;
} race_arg;

static void *race_one(void *p)
{
    race_arg *a = p;
    const char *hdr[] = {"Idempotency-Key: race-key-7", NULL};
    h_resp r =
        h_req_h(S, "POST", "/v1/keys", S->admin_key, "{\"role\":\"app\",\"name\":\"race\"}", hdr);
    a->status = r.status;
    if (r.json && json_object_get(r.json, "key"))
        snprintf(a->id, sizeof a->id, "%s", h_str(json_object_get(r.json, "key"), "id"));
    h_resp_free(&r);
    return NULL;
}

static void test_idempotency_concurrent(void **state)
{
    size_t keys0 = count_items("/v1/keys?include_revoked=true", S->admin_key);
    enum { N = 16 };
    pthread_t t[N];
    race_arg a[N];
    memset(a, 0, sizeof a);
    for (int i = 0; i < N; i++)
        pthread_create(&t[i], NULL, race_one, &a[i]);
    for (int i = 0; i < N; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < N; i++) {
        assert_int_equal(a[i].status, 201);
        assert_string_equal(a[i].id, a[0].id);
    }
    assert_int_equal(count_items("/v1/keys?include_revoked=true", S->admin_key), keys0 + 1);
}

/* ---- connection handling, request ids, logs, operations ---- */

/* ---- connections spread over the HTTP threads; the port is not shared ---- */

/* CPU time (ns) of each of the server's HTTP threads (siyu-http; named at
 * their first request, so the caller has made one on each, or counts
 * threads that have). */
static size_t worker_cpu(pid_t pid, uint64_t *ns, size_t max)
{
    char path[128];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    assert_non_null(d);
    size_t n = 0;
    for (struct dirent *e; (e = readdir(d)) && n < max;) {
        if (e->d_name[0] == '.')
            continue;
        char f[512], comm[32] = "";
        snprintf(f, sizeof f, "%s/%s/comm", path, e->d_name);
        FILE *fp = fopen(f, "r");
        if (!fp || !fgets(comm, sizeof comm, fp)) {
            if (fp)
                fclose(fp);
            continue;
        }
        fclose(fp);
        if (strncmp(comm, "siyu-http", 9) != 0 && strncmp(comm, "MHD-", 4) != 0)
            continue;
        snprintf(f, sizeof f, "%s/%s/schedstat", path, e->d_name);
        unsigned long long on_cpu = 0;
        if ((fp = fopen(f, "r"))) {
            if (fscanf(fp, "%llu", &on_cpu) != 1)
                on_cpu = 0;
            fclose(fp);
        }
        ns[n++] = on_cpu;
    }
    closedir(d);
    return n;
}

/* Reads one HTTP response from fd (headers and a Content-Length body);
 * returns its status, or -1. */
static int read_response(int fd)
{
    char buf[8192];
    size_t have = 0;
    for (;;) {
        ssize_t n = read(fd, buf + have, sizeof buf - 1 - have);
        if (n <= 0)
            return -1;
        have += (size_t)n;
        buf[have] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        if (!end)
            continue;
        const char *cl = strcasestr(buf, "Content-Length:");
        size_t body = cl && cl < end ? (size_t)strtoul(cl + 15, NULL, 10) : 0;
        if (have >= (size_t)(end + 4 - buf) + body)
            return atoi(buf + 9); /* "HTTP/1.1 200" */
    }
}

/* Eight keep-alive clients opened at once are served by more than one of
 * the server's four HTTP threads (the kernel spreads the connections over
 * one listener per thread; a single listener shared by a pool often gave
 * them all to one thread).  And a second server cannot start on a port
 * this one serves, SO_REUSEPORT notwithstanding. */
static void test_connections_spread_port_not_shared(void **state)
{
    (void)state;
    uint64_t before[16], after[16];
    size_t n = worker_cpu(S->pid, before, 16);
    assert_int_equal(n, 4); /* --threads 4 (harness.h) */
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)S->port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    char req[256];
    int len = snprintf(req, sizeof req,
                       "GET /v1/tenant HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer"
                       " %s\r\n\r\n",
                       S->admin_key);
    /* Twelve times, eight connections opened back to back before the
     * server accepts any (as a load generator or a client's pool opens
     * them), then 100 requests on each: more than one thread must have
     * served them.  With one listener shared by a pool, a burst went to a
     * single thread about one time in four (and every time with wrk).  With
     * a listener per thread the kernel hashes each connection to one of the
     * four: all eight on one has odds of 4^-7 per burst, so about one run
     * in 1,400 fails by chance. */
    for (int burst = 0; burst < 12; burst++) {
        worker_cpu(S->pid, before, 16);
        int fds[8];
        for (int i = 0; i < 8; i++) {
            fds[i] = socket(AF_INET, SOCK_STREAM, 0);
            assert_true(fds[i] >= 0);
            assert_int_equal(connect(fds[i], (struct sockaddr *)&sa, sizeof sa), 0);
        }
        for (int round = 0; round < 100; round++) {
            for (int i = 0; i < 8; i++)
                assert_int_equal(write(fds[i], req, (size_t)len), len);
            for (int i = 0; i < 8; i++)
                assert_int_equal(read_response(fds[i]), 200);
        }
        for (int i = 0; i < 8; i++)
            close(fds[i]);
        assert_int_equal(worker_cpu(S->pid, after, 16), n);
        uint64_t total = 0, most = 0;
        for (size_t i = 0; i < n; i++) {
            uint64_t d = after[i] - before[i];
            total += d;
            most = d > most ? d : most;
        }
        assert_true(total > 0); /* schedstat is there, and counted the work */
        /* one thread did (nearly) everything: the burst was not spread */
        if (most * 100 > total * 97)
            fail_msg("burst %d: one of the 4 HTTP threads served all 8 connections", burst);
    }

    char *dir = tu_tempdir(), cmd[1024];
    snprintf(cmd, sizeof cmd,
             "SIYU_DATA_KEY=%s '%s' serve --data '%s/data' --listen 127.0.0.1:%d >'%s/out' 2>&1",
             H_DATA_KEY, h_bin(), dir, S->port, dir);
    int rc = system(cmd);
    snprintf(cmd, sizeof cmd, "%s/out", dir);
    char *out = h_read_file(cmd);
    if (rc == 0 || !out || !strstr(out, "address in use"))
        fail_msg("a second server on port %d: exit %d, %s", S->port, rc, out ? out : "");
    free(out);
    tu_rmtree(dir);
    free(dir);
}

static void test_keep_alive(void **state)
{
    CURL *c = curl_easy_init();
    for (int i = 0; i < 5; i++) {
        h_resp r = h_req_on(c, S, "GET", "/v1/tenant", S->admin_key, NULL, 0, NULL);
        assert_int_equal(r.status, 200);
        assert_int_equal(r.connects, i == 0 ? 1 : 0);
        char conn[32];
        if (h_header(&r, "Connection", conn, sizeof conn))
            assert_string_not_equal(conn, "close");
        h_resp_free(&r);
    }
    /* Keep-alive holds across writes (suspended and resumed connections). */
    h_resp r =
        h_req_on(c, S, "PATCH", "/v1/tenant", S->admin_key, "{\"name\":\"Demo Bank\"}", 20, NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.connects, 0);
    h_resp_free(&r);
    r = h_req_on(c, S, "GET", "/healthz", NULL, NULL, 0, NULL);
    assert_int_equal(r.connects, 0);
    h_resp_free(&r);
    curl_easy_cleanup(c);
}

static void test_request_id_and_access_log(void **state)
{
    const char *hdr[] = {"X-Request-Id: trace-abc-123", NULL};
    h_resp r = h_req_h(S, "GET", "/v1/tenant", S->admin_key, NULL, hdr);
    char rid[80];
    assert_true(h_header(&r, "X-Request-Id", rid, sizeof rid));
    assert_string_equal(rid, "trace-abc-123");
    h_resp_free(&r);
    r = h_req(S, "GET", "/v1/nope", NULL, NULL);
    char gen[80];
    assert_true(h_header(&r, "X-Request-Id", gen, sizeof gen));
    assert_true(strlen(gen) >= 16);
    assert_string_equal(h_str(r.json, "request_id"), gen);
    h_resp_free(&r);
    /* An unusable id (here: with spaces) is replaced by a generated one. */
    const char *bad[] = {"X-Request-Id: has spaces in it", NULL};
    r = h_req_h(S, "GET", "/healthz", NULL, NULL, bad);
    assert_true(h_header(&r, "X-Request-Id", gen, sizeof gen));
    assert_string_not_equal(gen, "has spaces in it");
    h_resp_free(&r);

    /* One JSON line per request, with the fields operations need. */
    char path[600];
    snprintf(path, sizeof path, "%s/access.log", S->dir);
    json_t *line = NULL;
    for (int tries = 0; tries < 50 && !line; tries++) {
        char *log = h_read_file(path);
        assert_non_null(log);
        for (char *l = strtok(log, "\n"); l; l = strtok(NULL, "\n")) {
            json_t *j = json_loads(l, 0, NULL);
            assert_non_null(j); /* every line is JSON */
            if (!line && !strcmp(h_str(j, "request_id"), "trace-abc-123"))
                line = j;
            else
                json_decref(j);
        }
        free(log);
        if (!line)
            h_sleep_ms(20);
    }
    assert_non_null(line);
    assert_string_equal(h_str(line, "method"), "GET");
    assert_string_equal(h_str(line, "path"), "/v1/tenant");
    assert_string_equal(h_str(line, "route"), "GET /v1/tenant");
    assert_int_equal(json_integer_value(json_object_get(line, "status")), 200);
    assert_string_equal(h_str(line, "tenant"), "demo");
    assert_true(json_is_number(json_object_get(line, "latency_ms")));
    assert_non_null(h_str(line, "ts"));
    json_decref(line);
}

static void test_operations_endpoints(void **state)
{
    h_resp r = h_req(S, "GET", "/healthz", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(h_str(r.json, "status"), "ok");
    h_resp_free(&r);
    r = h_req(S, "GET", "/readyz", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(h_str(r.json, "status"), "ready");
    assert_true(json_integer_value(json_object_get(r.json, "schema_version")) >= 1);
    h_resp_free(&r);
    r = h_req(S, "HEAD", "/healthz", NULL, NULL);
    assert_int_equal(r.status, 200);
    h_resp_free(&r);
    r = h_req(S, "GET", "/metrics", NULL, NULL);
    assert_int_equal(r.status, 200);
    const char *want[] = {
        "siyu_http_requests_total{route=\"GET /healthz\",status=\"200\"}",
        "siyu_http_request_duration_seconds_bucket{route=\"GET /healthz\",le=\"+Inf\"}",
        "siyu_store_commit_batch_size_count",
        "siyu_store_commit_duration_seconds_count",
        "siyu_http_open_connections",
        "siyu_http_requests_total{route=\"unmatched\",status=\"404\"}",
    };
    for (size_t i = 0; i < SY_TEST_LEN(want); i++)
        if (!strstr(r.body, want[i]))
            fail_msg("/metrics lacks %s", want[i]);
    h_resp_free(&r);
}

static void test_tenant_patch_and_audit(void **state)
{
    h_resp r = h_req(S, "PATCH", "/v1/tenant", S->admin_key,
                     "{\"name\":\"光大示范银行\",\"timezone\":\"Asia/Hong_Kong\"}");
    assert_int_equal(r.status, 200);
    assert_string_equal(h_str(r.json, "name"), "光大示范银行");
    h_resp_free(&r);
    /* Served from the tenant registry, which the commit refreshed. */
    r = h_req(S, "GET", "/v1/tenant", S->admin_key, NULL);
    assert_string_equal(h_str(r.json, "timezone"), "Asia/Hong_Kong");
    h_resp_free(&r);
    r = h_req(S, "GET", "/v1/audit?action=PATCH%20/v1/tenant&limit=1", S->admin_key, NULL);
    assert_int_equal(r.status, 200);
    json_t *e = json_array_get(json_object_get(r.json, "items"), 0);
    assert_non_null(e);
    assert_string_equal(h_str(e, "action"), "PATCH /v1/tenant");
    assert_string_equal(h_str(e, "target"), "demo");
    assert_string_equal(h_str(e, "role"), "admin");
    assert_non_null(h_str(e, "request_id"));
    h_resp_free(&r);
    r = h_req(S, "PATCH", "/v1/tenant", S->admin_key, "{\"timezone\":\"Asia/Shanghai\"}");
    assert_int_equal(r.status, 200);
    h_resp_free(&r);
    /* Once behaviour is stored, its business days were cut in this zone
     * (the index too): the zone stays; the same zone, or the name, may be
     * set again. */
    r = h_req(S, "PUT", "/v1/customers/TZ1", S->admin_key, "{}");
    assert_true(r.status == 200 || r.status == 201);
    h_resp_free(&r);
    r = h_req(S, "POST", "/v1/events", S->admin_key,
              "[{\"event_id\":\"tz-1\",\"customer_no\":\"TZ1\",\"name\":\"login\","
              "\"ts\":\"2026-12-06T10:00:00Z\"}]");
    assert_int_equal(r.status, 200);
    h_resp_free(&r);
    r = h_req(S, "PATCH", "/v1/tenant", S->admin_key, "{\"timezone\":\"Europe/Paris\"}");
    h_assert_problem(r, 409, "conflict", "/timezone");
    h_resp_free(&r);
    r = h_req(S, "GET", "/v1/tenant", S->admin_key, NULL);
    assert_string_equal(h_str(r.json, "timezone"), "Asia/Shanghai");
    h_resp_free(&r);
    r = h_req(S, "PATCH", "/v1/tenant", S->admin_key,
              "{\"timezone\":\"Asia/Shanghai\",\"name\":\"Demo Bank\"}");
    assert_int_equal(r.status, 200);
    h_resp_free(&r);
}

static void test_audit_pagination(void **state)
{
    for (int i = 0; i < 3; i++)
        free(make_key("app", NULL));
    h_resp r = h_req(S, "GET", "/v1/audit?limit=2", S->admin_key, NULL);
    assert_int_equal(r.status, 200);
    json_t *items = json_object_get(r.json, "items");
    assert_int_equal(json_array_size(items), 2);
    json_int_t first = json_integer_value(json_object_get(json_array_get(items, 0), "id"));
    json_int_t second = json_integer_value(json_object_get(json_array_get(items, 1), "id"));
    assert_true(first > second);
    char path[128];
    snprintf(path, sizeof path, "/v1/audit?limit=2&cursor=%s", h_str(r.json, "next_cursor"));
    h_resp_free(&r);
    r = h_req(S, "GET", path, S->admin_key, NULL);
    json_int_t third = json_integer_value(
        json_object_get(json_array_get(json_object_get(r.json, "items"), 0), "id"));
    assert_true(third < second);
    h_resp_free(&r);
    /* app keys make no audit rows of their own; admin writes all do. */
    r = h_req(S, "GET", "/v1/audit?action=POST%20/v1/keys&limit=500", S->admin_key, NULL);
    items = json_object_get(r.json, "items");
    for (size_t i = 0; i < json_array_size(items); i++)
        assert_string_equal(h_str(json_array_get(items, i), "role"), "admin");
    h_resp_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_auth_missing_and_bad_keys),
        cmocka_unit_test(test_roles_forbidden),
        cmocka_unit_test(test_revoked_key_stops_working),
        cmocka_unit_test(test_last_admin_key_cannot_be_revoked),
        cmocka_unit_test(test_cli_key_lifecycle),
        cmocka_unit_test(test_cli_help_version_and_errors),
        cmocka_unit_test(test_tenant_isolation),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_bad_bodies_on_every_write_endpoint),
        cmocka_unit_test(test_idempotency_replay_and_mismatch),
        cmocka_unit_test(test_idempotency_concurrent),
        cmocka_unit_test(test_idempotency_expires_after_24h),
        cmocka_unit_test(test_keep_alive),
        cmocka_unit_test(test_connections_spread_port_not_shared),
        cmocka_unit_test(test_request_id_and_access_log),
        cmocka_unit_test(test_operations_endpoints),
        cmocka_unit_test(test_tenant_patch_and_audit),
        cmocka_unit_test(test_audit_pagination),
    };
    return cmocka_run_group_tests_name("e2e-api", tests, group_setup, group_teardown);
}

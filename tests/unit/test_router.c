/* test_router.c — sy_route_match over a test route table: literals,
 * {param} capture, "{code}:redeem" suffix patterns, 404 vs 405 with the
 * Allow list, HEAD served by GET; and a few lookups in the real table. */
#include "testutil.h"

#include "api.h"
#include "metrics.h"
#include "server.h"

enum {
    R_HEALTHZ,
    R_KEYS_POST,
    R_KEYS_GET,
    R_KEY_GET,
    R_KEY_DELETE,
    R_GRANT_REDEEM,
    R_CUSTOMERS_IMPORT,
    R_CUSTOMER_GET,
    R_CUSTOMER_PATCH,
    R_TENANT_KEY,
    R_COUNT
};

static const sy_route k_routes[] = {
    [R_HEALTHZ] = {"GET", "/healthz", NULL, 0, 0, NULL},
    [R_KEYS_POST] = {"POST", "/v1/keys", NULL, 0, 0, NULL},
    [R_KEYS_GET] = {"GET", "/v1/keys", NULL, 0, 0, NULL},
    [R_KEY_GET] = {"GET", "/v1/keys/{id}", NULL, 0, 0, NULL},
    [R_KEY_DELETE] = {"DELETE", "/v1/keys/{id}", NULL, 0, 0, NULL},
    [R_GRANT_REDEEM] = {"POST", "/v1/grants/{code}:redeem", NULL, 0, 0, NULL},
    [R_CUSTOMERS_IMPORT] = {"POST", "/v1/customers:import", NULL, 0, 0, NULL},
    [R_CUSTOMER_GET] = {"GET", "/v1/customers/{id}", NULL, 0, 0, NULL},
    [R_CUSTOMER_PATCH] = {"PATCH", "/v1/customers/{id}", NULL, 0, 0, NULL},
    [R_TENANT_KEY] = {"GET", "/v1/tenants/{tenant}/keys/{id}", NULL, 0, 0, NULL},
};

/* One lookup; scratch is exactly strlen(path)+1 bytes so ASan catches any
 * write beyond what the contract allows. */
typedef struct lookup {
    int route;
    sy_match m;
    char allowed[128];
    char *scratch;
} lookup;

static void do_match(lookup *l, const sy_route *routes, int n, const char *method, const char *path)
{
    free(l->scratch);
    memset(l, 0, sizeof *l);
    memset(l->allowed, 'Z', sizeof l->allowed - 1);
    l->scratch = malloc(strlen(path) + 1);
    assert_non_null(l->scratch);
    l->route =
        sy_route_match(routes, n, method, path, l->scratch, &l->m, l->allowed, sizeof l->allowed);
}

static void match(lookup *l, const char *method, const char *path)
{
    do_match(l, k_routes, R_COUNT, method, path);
}

static const char *param(const lookup *l, const char *name)
{
    size_t n = strlen(name);
    for (int i = 0; i < l->m.n; i++)
        if (l->m.name_lens[i] == n && !memcmp(l->m.names[i], name, n))
            return l->m.values[i];
    return NULL;
}

static void expect_route(const char *method, const char *path, int want)
{
    lookup l = {0};
    match(&l, method, path);
    if (l.route != want)
        fail_msg("%s %s matched route %d, want %d", method, path, l.route, want);
    free(l.scratch);
}

static void expect_404(const char *method, const char *path)
{
    lookup l = {0};
    match(&l, method, path);
    if (l.route != -1)
        fail_msg("%s %s matched route %d, want no match", method, path, l.route);
    if (l.allowed[0] != '\0')
        fail_msg("%s %s: allowed = \"%s\", want empty (404)", method, path, l.allowed);
    free(l.scratch);
}

/* A 405: no match, and the Allow list names exactly the listed methods in
 * table order (a GET may be followed by HEAD, which GET routes serve). */
static void expect_405(const char *method, const char *path, const char *const *methods)
{
    lookup l = {0};
    match(&l, method, path);
    if (l.route != -1)
        fail_msg("%s %s matched route %d, want 405", method, path, l.route);
    const char *p = l.allowed;
    for (int i = 0; methods[i]; i++) {
        if (i) {
            if (strncmp(p, ", ", 2) != 0)
                fail_msg("%s %s: allowed = \"%s\"", method, path, l.allowed);
            p += 2;
        }
        size_t n = strlen(methods[i]);
        if (strncmp(p, methods[i], n) != 0 || (p[n] != '\0' && p[n] != ','))
            fail_msg("%s %s: allowed = \"%s\", want %s at \"%s\"", method, path, l.allowed,
                     methods[i], p);
        p += n;
        if (!strcmp(methods[i], "GET") && !strncmp(p, ", HEAD", 6))
            p += 6;
    }
    if (*p != '\0')
        fail_msg("%s %s: allowed = \"%s\" has extra methods \"%s\"", method, path, l.allowed, p);
    free(l.scratch);
}

/* ---- tests ---- */

static void test_literal_paths(void **state)
{
    (void)state;
    lookup l = {0};
    match(&l, "GET", "/healthz");
    assert_int_equal(l.route, R_HEALTHZ);
    assert_int_equal(l.m.n, 0);
    match(&l, "POST", "/v1/keys");
    assert_int_equal(l.route, R_KEYS_POST);
    assert_int_equal(l.m.n, 0);
    match(&l, "GET", "/v1/keys");
    assert_int_equal(l.route, R_KEYS_GET);
    free(l.scratch);

    /* Literal segments must match exactly. */
    expect_404("GET", "/healthzz");
    expect_404("GET", "/health");
    expect_404("GET", "/Healthz");
    expect_404("GET", "/v1/key");
    expect_404("GET", "/v2/keys");
    expect_404("GET", "/v1/keys/a/b");
    expect_404("GET", "/v1");
    expect_404("GET", "/");
    expect_404("GET", "");
    expect_404("GET", "healthz");
}

static void test_param_capture(void **state)
{
    (void)state;
    lookup l = {0};
    match(&l, "GET", "/v1/keys/key_0123456789ab");
    assert_int_equal(l.route, R_KEY_GET);
    assert_int_equal(l.m.n, 1);
    assert_int_equal(l.m.name_lens[0], 2);
    assert_memory_equal(l.m.names[0], "id", 2);
    assert_string_equal(l.m.values[0], "key_0123456789ab");
    assert_string_equal(param(&l, "id"), "key_0123456789ab");

    /* The same path with another method picks the other route, and the
     * captured value is still right. */
    match(&l, "DELETE", "/v1/keys/k1");
    assert_int_equal(l.route, R_KEY_DELETE);
    assert_int_equal(l.m.n, 1);
    assert_string_equal(param(&l, "id"), "k1");

    /* Two parameters; values stop at the slash. */
    match(&l, "GET", "/v1/tenants/acme/keys/key_42");
    assert_int_equal(l.route, R_TENANT_KEY);
    assert_int_equal(l.m.n, 2);
    assert_string_equal(param(&l, "tenant"), "acme");
    assert_string_equal(param(&l, "id"), "key_42");
    assert_null(param(&l, "code"));

    /* A one-character value, and a value with characters other routes use. */
    match(&l, "GET", "/v1/keys/x");
    assert_int_equal(l.route, R_KEY_GET);
    assert_string_equal(param(&l, "id"), "x");
    match(&l, "GET", "/v1/keys/a:b.c-d");
    assert_int_equal(l.route, R_KEY_GET);
    assert_string_equal(param(&l, "id"), "a:b.c-d");
    free(l.scratch);
}

static void test_suffix_patterns(void **state)
{
    (void)state;
    lookup l = {0};
    match(&l, "POST", "/v1/grants/G-123:redeem");
    assert_int_equal(l.route, R_GRANT_REDEEM);
    assert_int_equal(l.m.n, 1);
    assert_string_equal(param(&l, "code"), "G-123");

    /* Only the final suffix is stripped. */
    match(&l, "POST", "/v1/grants/a:redeem:redeem");
    assert_int_equal(l.route, R_GRANT_REDEEM);
    assert_string_equal(param(&l, "code"), "a:redeem");
    free(l.scratch);

    expect_404("POST", "/v1/grants/:redeem"); /* empty code */
    expect_404("POST", "/v1/grants/G-123");   /* no suffix */
    expect_404("POST", "/v1/grants/G-123:redeemx");
    expect_404("POST", "/v1/grants/G-123:cancel");
    expect_404("POST", "/v1/grants/G-123:redee");
    expect_404("POST", "/v1/grants/G-123:redeem/");
}

static void test_colon_literal_vs_param_route(void **state)
{
    (void)state;
    /* "/v1/customers:import" is one literal segment: not the {id} route. */
    lookup l = {0};
    match(&l, "POST", "/v1/customers:import");
    assert_int_equal(l.route, R_CUSTOMERS_IMPORT);
    assert_int_equal(l.m.n, 0);

    match(&l, "GET", "/v1/customers/c-1");
    assert_int_equal(l.route, R_CUSTOMER_GET);
    assert_string_equal(param(&l, "id"), "c-1");

    /* A customer whose id is "import" is a customer, not the import. */
    match(&l, "GET", "/v1/customers/import");
    assert_int_equal(l.route, R_CUSTOMER_GET);
    assert_string_equal(param(&l, "id"), "import");
    free(l.scratch);

    expect_404("POST", "/v1/customers:export");
    expect_404("POST", "/v1/customers:");
    expect_404("POST", "/v1/customers");
    static const char *const post[] = {"POST", NULL};
    expect_405("GET", "/v1/customers:import", post);
    static const char *const get_patch[] = {"GET", "PATCH", NULL};
    expect_405("POST", "/v1/customers/import", get_patch);
}

static void test_trailing_slash_and_empty_segments(void **state)
{
    (void)state;
    expect_404("GET", "/healthz/");
    expect_404("GET", "/v1/keys/"); /* empty {id} */
    expect_404("POST", "/v1/keys/");
    expect_404("GET", "/v1//keys");
    expect_404("GET", "//v1/keys");
    expect_404("GET", "//healthz");
    expect_404("GET", "/v1/keys//");
    expect_404("GET", "/v1/keys/k1/");
    expect_404("GET", "/v1/tenants//keys/k1");
    expect_404("GET", "/v1/tenants/acme/keys/");
    expect_404("DELETE", "/v1/keys//k1");
}

static void test_unknown_path_is_404(void **state)
{
    (void)state;
    expect_404("GET", "/nope");
    expect_404("POST", "/v1/nothing/here");
    expect_404("DELETE", "/v1/grants/x:redeem/extra");
    /* allowed is cleared even when nothing matches */
    lookup l = {0};
    match(&l, "GET", "/nope");
    assert_int_equal(l.route, -1);
    assert_string_equal(l.allowed, "");
    free(l.scratch);
}

static void test_wrong_method_lists_allowed(void **state)
{
    (void)state;
    static const char *const post_get[] = {"POST", "GET", NULL};
    expect_405("PUT", "/v1/keys", post_get);
    expect_405("DELETE", "/v1/keys", post_get);
    expect_405("get", "/v1/keys", post_get); /* methods are case-sensitive */

    static const char *const get_delete[] = {"GET", "DELETE", NULL};
    expect_405("POST", "/v1/keys/k1", get_delete);
    expect_405("PATCH", "/v1/keys/k1", get_delete);

    static const char *const post[] = {"POST", NULL};
    expect_405("GET", "/v1/grants/G1:redeem", post);
    expect_405("HEAD", "/v1/grants/G1:redeem", post);

    static const char *const get[] = {"GET", NULL};
    expect_405("POST", "/healthz", get);

    /* The exact text for the common case. */
    lookup l = {0};
    match(&l, "PUT", "/v1/keys");
    assert_int_equal(l.route, -1);
    assert_true(strncmp(l.allowed, "POST, GET", 9) == 0);
    free(l.scratch);
}

static void test_head_matches_get_route(void **state)
{
    (void)state;
    expect_route("HEAD", "/healthz", R_HEALTHZ);
    expect_route("HEAD", "/v1/keys", R_KEYS_GET);
    lookup l = {0};
    match(&l, "HEAD", "/v1/keys/k9");
    assert_int_equal(l.route, R_KEY_GET);
    assert_string_equal(param(&l, "id"), "k9");
    match(&l, "HEAD", "/v1/tenants/t/keys/k");
    assert_int_equal(l.route, R_TENANT_KEY);
    assert_string_equal(param(&l, "tenant"), "t");
    assert_string_equal(param(&l, "id"), "k");
    free(l.scratch);
    expect_404("HEAD", "/nope");
}

static void test_first_matching_route_wins(void **state)
{
    (void)state;
    /* A literal listed before a parameter route with the same shape. */
    static const sy_route table[] = {
        {"GET", "/v1/keys/mine", NULL, 0, 0, NULL},
        {"GET", "/v1/keys/{id}", NULL, 0, 0, NULL},
    };
    lookup l = {0};
    do_match(&l, table, 2, "GET", "/v1/keys/mine");
    assert_int_equal(l.route, 0);
    assert_int_equal(l.m.n, 0);
    do_match(&l, table, 2, "GET", "/v1/keys/other");
    assert_int_equal(l.route, 1);
    assert_string_equal(param(&l, "id"), "other");
    /* An empty table matches nothing. */
    do_match(&l, table, 0, "GET", "/v1/keys/mine");
    assert_int_equal(l.route, -1);
    assert_string_equal(l.allowed, "");
    free(l.scratch);
}

static void test_real_route_table(void **state)
{
    (void)state;
    sy_routes_init();
    static const struct {
        const char *method, *path;
        sy_handler_fn handler;
    } cases[] = {
        {"GET", "/healthz", sy_api_healthz},
        {"GET", "/metrics", sy_api_metrics},
        {"GET", "/v1/tenant", sy_api_tenant_get},
        {"PATCH", "/v1/tenant", sy_api_tenant_patch},
        {"POST", "/v1/keys", sy_api_keys_create},
        {"GET", "/v1/keys", sy_api_keys_list},
        {"GET", "/v1/keys/key_0123456789ab", sy_api_keys_get},
        {"DELETE", "/v1/keys/key_0123456789ab", sy_api_keys_revoke},
        {"GET", "/v1/audit", sy_api_audit_list},
    };
    for (size_t i = 0; i < SY_ARRAY_LEN(cases); i++) {
        lookup l = {0};
        do_match(&l, sy_routes, sy_routes_count, cases[i].method, cases[i].path);
        if (l.route < 0)
            fail_msg("%s %s: no route", cases[i].method, cases[i].path);
        if (sy_routes[l.route].handler != cases[i].handler)
            fail_msg("%s %s: wrong handler (route %d)", cases[i].method, cases[i].path, l.route);
        /* sy_routes_init labels every route "METHOD PATTERN". */
        char label[128];
        snprintf(label, sizeof label, "%s %s", sy_routes[l.route].method,
                 sy_routes[l.route].pattern);
        assert_non_null(sy_routes[l.route].label);
        assert_string_equal(sy_routes[l.route].label, label);
        free(l.scratch);
    }
    lookup l = {0};
    do_match(&l, sy_routes, sy_routes_count, "GET", "/v1/keys/key_x");
    assert_string_equal(param(&l, "id"), "key_x");
    /* Key management needs the admin role; health checks need no key. */
    assert_int_equal(sy_routes[l.route].roles, SY_ROLE_ADMIN);
    do_match(&l, sy_routes, sy_routes_count, "GET", "/healthz");
    assert_int_equal(sy_routes[l.route].roles, 0);
    free(l.scratch);
    sy_metrics_free();
}

int main(void)
{
    const struct CMUnitTest router_route_matching[] = {
        cmocka_unit_test(test_literal_paths),
        cmocka_unit_test(test_param_capture),
        cmocka_unit_test(test_suffix_patterns),
        cmocka_unit_test(test_colon_literal_vs_param_route),
        cmocka_unit_test(test_trailing_slash_and_empty_segments),
        cmocka_unit_test(test_unknown_path_is_404),
        cmocka_unit_test(test_wrong_method_lists_allowed),
        cmocka_unit_test(test_head_matches_get_route),
        cmocka_unit_test(test_first_matching_route_wins),
        cmocka_unit_test(test_real_route_table),
    };
    return cmocka_run_group_tests(router_route_matching, NULL, NULL);
}

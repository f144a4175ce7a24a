/* test_e2e_customers.c — the customer data API end to end: the attribute
 * schema (bank template, definitions, validation, append-only enums). */
#include "e2e/harness.h"

static h_server *S;

static int group_setup(void **state)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    S = h_start(NULL);
    return 0;
}

static int group_teardown(void **state)
{
    h_stop(S);
    curl_global_cleanup();
    return 0;
}

static json_t *find_named(json_t *items, const char *name)
{
    for (size_t i = 0; i < json_array_size(items); i++)
        if (!strcmp(h_str(json_array_get(items, i), "name"), name))
            return json_array_get(items, i);
    return NULL;
}

static void test_bank_template(void **state)
{
    h_resp r = h_req(S, "GET", "/v1/attributes", S->admin_key, NULL);
    assert_int_equal(r.status, 200);
    json_t *items = json_object_get(r.json, "items");
    const char *names[] = {"risk_level",  "risk_assessed_at", "aum",       "branch",
                           "city",        "birth_year",       "gender",    "payroll",
                           "credit_card", "registered_at",    "manager_id"};
    for (size_t i = 0; i < SY_TEST_LEN(names); i++)
        if (!find_named(items, names[i]))
            fail_msg("template attribute %s missing", names[i]);
    json_t *risk = find_named(items, "risk_level");
    assert_string_equal(h_str(risk, "type"), "enum");
    json_t *vals = json_object_get(risk, "values");
    assert_int_equal(json_array_size(vals), 5);
    assert_string_equal(json_string_value(json_array_get(vals, 0)), "R1");
    assert_string_equal(json_string_value(json_array_get(vals, 4)), "R5");
    assert_string_equal(h_str(find_named(items, "aum"), "unit"), "fen");
    h_resp_free(&r);
}

static void test_attribute_create_and_read(void **state)
{
    h_resp r = h_req(S, "POST", "/v1/attributes", S->admin_key,
                     "{\"name\":\"deposit_rate\",\"type\":\"number\",\"scale\":4,"
                     "\"description\":\"存款利率\"}");
    assert_int_equal(r.status, 201);
    char loc[128];
    assert_true(h_header(&r, "Location", loc, sizeof loc));
    assert_string_equal(loc, "/v1/attributes/deposit_rate");
    h_resp_free(&r);
    r = h_req(S, "GET", "/v1/attributes/deposit_rate", S->admin_key, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(h_str(r.json, "type"), "number");
    assert_int_equal(json_integer_value(json_object_get(r.json, "scale")), 4);
    assert_string_equal(h_str(r.json, "description"), "存款利率");
    h_resp_free(&r);
    r = h_req(S, "POST", "/v1/attributes", S->admin_key,
              "{\"name\":\"deposit_rate\",\"type\":\"integer\"}");
    h_assert_problem(r, 409, "conflict", "/name");
    h_resp_free(&r);
    r = h_req(S, "GET", "/v1/attributes/nope", S->admin_key, NULL);
    h_assert_problem(r, 404, "not-found", NULL);
    h_resp_free(&r);
}

static void test_attribute_bad_definitions(void **state)
{
    struct {
        const char *body, *field;
    } cases[] = {
        {"{\"type\":\"bool\"}", "/name"},
        {"{\"name\":\"Upper\",\"type\":\"bool\"}", "/name"},
        {"{\"name\":\"1x\",\"type\":\"bool\"}", "/name"},
        {"{\"name\":\"ok\",\"type\":\"float\"}", "/type"},
        {"{\"name\":\"ok\",\"type\":\"enum\"}", "/values"},
        {"{\"name\":\"ok\",\"type\":\"enum\",\"values\":[]}", "/values"},
        {"{\"name\":\"ok\",\"type\":\"enum\",\"values\":[\"a\",\"a\"]}", "/values"},
        {"{\"name\":\"ok\",\"type\":\"enum\",\"values\":[1]}", "/values"},
        {"{\"name\":\"ok\",\"type\":\"bool\",\"values\":[\"a\"]}", "/values"},
        {"{\"name\":\"ok\",\"type\":\"number\",\"scale\":7}", "/scale"},
        {"{\"name\":\"ok\",\"type\":\"integer\",\"scale\":2}", "/scale"},
        {"{\"name\":\"ok\",\"type\":\"integer\",\"unit\":\"\"}", "/unit"},
        {"{\"name\":\"ok\",\"type\":\"integer\",\"colour\":1}", "/colour"},
    };
    size_t before;
    h_resp r = h_req(S, "GET", "/v1/attributes", S->admin_key, NULL);
    before = json_array_size(json_object_get(r.json, "items"));
    h_resp_free(&r);
    for (size_t i = 0; i < SY_TEST_LEN(cases); i++) {
        r = h_req(S, "POST", "/v1/attributes", S->admin_key, cases[i].body);
        if (r.status != 400 || !r.json || strcmp(h_str(r.json, "field"), cases[i].field) != 0)
            fail_msg("case %zu %s: %ld %s", i, cases[i].body, r.status, r.body);
        h_assert_problem(r, 400, "validation", cases[i].field);
        h_resp_free(&r);
    }
    r = h_req(S, "GET", "/v1/attributes", S->admin_key, NULL);
    assert_int_equal(json_array_size(json_object_get(r.json, "items")), before);
    h_resp_free(&r);
}

static void test_enum_values_append_only(void **state)
{
    h_resp r = h_req(S, "POST", "/v1/attributes", S->admin_key,
                     "{\"name\":\"tier\",\"type\":\"enum\",\"values\":[\"mass\",\"affluent\"]}");
    assert_int_equal(r.status, 201);
    h_resp_free(&r);
    r = h_req(S, "PATCH", "/v1/attributes/tier", S->admin_key,
              "{\"values\":[\"affluent\",\"mass\",\"private\"]}");
    h_assert_problem(r, 400, "validation", "/values");
    h_resp_free(&r);
    r = h_req(S, "PATCH", "/v1/attributes/tier", S->admin_key, "{\"values\":[\"mass\"]}");
    h_assert_problem(r, 400, "validation", "/values");
    h_resp_free(&r);
    r = h_req(S, "PATCH", "/v1/attributes/tier", S->admin_key,
              "{\"values\":[\"mass\",\"affluent\",\"private\"],\"description\":\"客群\"}");
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "values")), 3);
    assert_string_equal(h_str(r.json, "description"), "客群");
    h_resp_free(&r);
    /* The cached schema was refreshed by the commit. */
    r = h_req(S, "GET", "/v1/attributes/tier", S->admin_key, NULL);
    assert_int_equal(json_array_size(json_object_get(r.json, "values")), 3);
    h_resp_free(&r);
    r = h_req(S, "PATCH", "/v1/attributes/aum", S->admin_key, "{\"values\":[\"x\"]}");
    h_assert_problem(r, 400, "validation", "/values");
    h_resp_free(&r);
    r = h_req(S, "PATCH", "/v1/attributes/tier", S->admin_key, "{}");
    h_assert_problem(r, 400, "validation", "");
    h_resp_free(&r);
}

static void test_attribute_roles_and_isolation(void **state)
{
    char *out = NULL;
    assert_int_equal(h_cli(S, &out, "key create --tenant demo --role app"), 0);
    char app[80] = "";
    sscanf(out, "%79s", app);
    free(out);
    h_resp r = h_req(S, "GET", "/v1/attributes", app, NULL);
    assert_int_equal(r.status, 200);
    h_resp_free(&r);
    r = h_req(S, "POST", "/v1/attributes", app, "{\"name\":\"x\",\"type\":\"bool\"}");
    h_assert_problem(r, 403, "forbidden", NULL);
    h_resp_free(&r);

    assert_int_equal(h_cli(S, NULL, "tenant create bank-b"), 0);
    assert_int_equal(h_cli(S, &out, "key create --tenant bank-b --role admin"), 0);
    char bkey[80] = "";
    sscanf(out, "%79s", bkey);
    free(out);
    r = h_req(S, "POST", "/v1/attributes", bkey, "{\"name\":\"b_only\",\"type\":\"bool\"}");
    assert_int_equal(r.status, 201);
    h_resp_free(&r);
    r = h_req(S, "GET", "/v1/attributes/b_only", S->admin_key, NULL);
    h_assert_problem(r, 404, "not-found", NULL);
    h_resp_free(&r);
    /* bank-b got its own copy of the template. */
    r = h_req(S, "GET", "/v1/attributes/risk_level", bkey, NULL);
    assert_int_equal(r.status, 200);
    h_resp_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bank_template),
        cmocka_unit_test(test_attribute_create_and_read),
        cmocka_unit_test(test_attribute_bad_definitions),
        cmocka_unit_test(test_enum_values_append_only),
        cmocka_unit_test(test_attribute_roles_and_isolation),
    };
    return cmocka_run_group_tests_name("e2e-customers", tests, group_setup, group_teardown);
}

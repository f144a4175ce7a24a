/* test_e2e_customers.c — the customer data API end to end: the attribute
 * schema (bank template, definitions, validation, append-only enums) and
 * customers (upsert, personal data protection, identities). */
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

/* ---- customers ---- */

static const char *C1 = "{\"attributes\":{\"risk_level\":\"R4\",\"aum\":52000000,\"payroll\":true,"
                        "\"city\":\"上海\",\"registered_at\":\"2026-10-01\"},"
                        "\"pii\":{\"name\":\"张三丰\",\"phone\":\"+86 139-8765-4321\","
                        "\"id_number\":\"11010519491231002X\"},"
                        "\"identities\":[{\"type\":\"app_user_id\",\"value\":\"u-778\"},"
                        "{\"type\":\"wechat_openid\",\"value\":\"oAbC123\"}]}";

static void test_customer_upsert_merges(void **state)
{
    h_resp r = h_req(S, "PUT", "/v1/customers/C001", S->admin_key, C1);
    assert_int_equal(r.status, 201);
    char loc[128];
    assert_true(h_header(&r, "Location", loc, sizeof loc));
    assert_string_equal(loc, "/v1/customers/C001");
    json_t *a = json_object_get(r.json, "attributes");
    assert_string_equal(h_str(a, "risk_level"), "R4");
    assert_int_equal(json_integer_value(json_object_get(a, "aum")), 52000000);
    h_resp_free(&r);
    /* Given attributes are set, null unsets, the rest is kept. */
    r = h_req(S, "PUT", "/v1/customers/C001", S->admin_key,
              "{\"attributes\":{\"aum\":null,\"city\":\"杭州\"}}");
    assert_int_equal(r.status, 200);
    a = json_object_get(r.json, "attributes");
    assert_null(json_object_get(a, "aum"));
    assert_string_equal(h_str(a, "city"), "杭州");
    assert_string_equal(h_str(a, "risk_level"), "R4");
    assert_true(json_is_true(json_object_get(a, "payroll")));
    h_resp_free(&r);
    r = h_req(S, "GET", "/v1/customers/C001", S->admin_key, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(h_str(json_object_get(r.json, "attributes"), "city"), "杭州");
    assert_int_equal(json_array_size(json_object_get(r.json, "identities")), 3);
    h_resp_free(&r);
    r = h_req(S, "GET", "/v1/customers/nobody", S->admin_key, NULL);
    h_assert_problem(r, 404, "not-found", NULL);
    h_resp_free(&r);
}

static void test_customer_bad_input_writes_nothing(void **state)
{
    struct {
        const char *path, *body, *type, *field;
    } cases[] = {
        {"/v1/customers/C900", "{\"attributes\":{\"risk_level\":\"R9\"}}", "validation",
         "/attributes/risk_level"},
        {"/v1/customers/C900", "{\"attributes\":{\"aum\":\"lots\"}}", "validation",
         "/attributes/aum"},
        {"/v1/customers/C900", "{\"attributes\":{\"shoe_size\":42}}", "validation",
         "/attributes/shoe_size"},
        {"/v1/customers/C900", "{\"attributes\":{\"registered_at\":\"2026-02-30\"}}", "validation",
         "/attributes/registered_at"},
        {"/v1/customers/C900", "{\"attributes\":[]}", "validation", "/attributes"},
        {"/v1/customers/C900", "{\"pii\":{\"phone\":\"call me\"}}", "validation", "/pii/phone"},
        {"/v1/customers/C900", "{\"pii\":{\"id_number\":\"110105194912310021\"}}", "validation",
         "/pii/id_number"},
        {"/v1/customers/C900", "{\"pii\":{\"email\":\"a@b.c\"}}", "validation", "/pii/email"},
        {"/v1/customers/C900", "{\"identities\":[{\"type\":\"qq\",\"value\":\"1\"}]}", "validation",
         "/identities/0"},
        {"/v1/customers/C900", "{\"identities\":[{\"type\":\"app_user_id\",\"value\":\"a b\"}]}",
         "validation", "/identities/0"},
        {"/v1/customers/C900", "{\"nickname\":\"x\"}", "validation", "/nickname"},
        {"/v1/customers/C900", "{\"name\":\"张三\"}", "validation", "/name"},
        {"/v1/customers/bad%20no", "{}", "validation", "customer_no"},
    };
    for (size_t i = 0; i < SY_TEST_LEN(cases); i++) {
        h_resp r = h_req(S, "PUT", cases[i].path, S->admin_key, cases[i].body);
        if (!r.json || strcmp(h_str(r.json, "type"), cases[i].type) != 0 ||
            strcmp(h_str(r.json, "field"), cases[i].field) != 0)
            fail_msg("case %zu %s: %ld %s", i, cases[i].body, r.status, r.body);
        h_assert_problem(r, !strcmp(cases[i].type, "conflict") ? 409 : 400, cases[i].type,
                         cases[i].field);
        h_resp_free(&r);
    }
    /* the messages point the way: personal data's own object, every enum value */
    h_resp r = h_req(S, "PUT", "/v1/customers/C900", S->admin_key, "{\"name\":\"张三\"}");
    assert_non_null(strstr(h_str(r.json, "detail"), "\"pii\""));
    h_resp_free(&r);
    r = h_req(S, "PUT", "/v1/customers/C900", S->admin_key,
              "{\"attributes\":{\"risk_level\":\"R9\"}}");
    assert_non_null(strstr(h_str(r.json, "detail"), "'R1', 'R2', 'R3', 'R4', 'R5'"));
    h_resp_free(&r);
    r = h_req(S, "GET", "/v1/customers/C900", S->admin_key, NULL);
    h_assert_problem(r, 404, "not-found", NULL);
    h_resp_free(&r);
}

static void test_personal_data_masked_and_audited(void **state)
{
    h_resp r = h_req(S, "PUT", "/v1/customers/C002", S->admin_key,
                     "{\"pii\":{\"name\":\"李四\",\"phone\":\"13700001111\"}}");
    assert_int_equal(r.status, 201);
    h_resp_free(&r);
    r = h_req(S, "GET", "/v1/customers/C001", S->admin_key, NULL);
    json_t *pii = json_object_get(r.json, "pii");
    assert_string_equal(h_str(pii, "phone"), "139****4321");
    assert_string_equal(h_str(pii, "name"), "张**");
    assert_string_equal(h_str(pii, "id_number"), "1101**********002X");
    assert_true(json_is_false(json_object_get(r.json, "pii_unmasked")));
    assert_null(strstr(r.body, "13987654321"));
    h_resp_free(&r);

    char *out = NULL;
    assert_int_equal(h_cli(S, &out, "key create --tenant demo --role app"), 0);
    char app[80] = "";
    sscanf(out, "%79s", app);
    free(out);
    r = h_req(S, "GET", "/v1/customers/C001?unmask=true", app, NULL);
    h_assert_problem(r, 403, "forbidden", "unmask");
    h_resp_free(&r);
    r = h_req(S, "GET", "/v1/customers/C001", app, NULL);
    assert_int_equal(r.status, 200);
    assert_null(strstr(r.body, "13987654321"));
    h_resp_free(&r);

    /* An admin may see the clear text; the read is audited first. */
    r = h_req(S, "GET", "/v1/customers/C001?unmask=true", S->admin_key, NULL);
    assert_int_equal(r.status, 200);
    pii = json_object_get(r.json, "pii");
    assert_string_equal(h_str(pii, "phone"), "13987654321");
    assert_string_equal(h_str(pii, "name"), "张三丰");
    char rid[80];
    assert_true(h_header(&r, "X-Request-Id", rid, sizeof rid));
    h_resp_free(&r);
    r = h_req(S, "GET", "/v1/audit?action=read%20unmasked%20personal%20data", S->admin_key, NULL);
    json_t *e = json_array_get(json_object_get(r.json, "items"), 0);
    assert_non_null(e);
    assert_string_equal(h_str(e, "target"), "C001");
    assert_string_equal(h_str(e, "request_id"), rid);
    h_resp_free(&r);
}

/* Searches a file for a byte string. */
static bool file_contains(const char *path, const char *needle)
{
    char *data = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    data = malloc((size_t)n + 1);
    size_t got = fread(data, 1, (size_t)n, f);
    fclose(f);
    bool found = memmem(data, got, needle, strlen(needle)) != NULL;
    free(data);
    return found;
}

static void test_no_personal_data_in_clear_on_disk(void **state)
{
    /* Written earlier in this group: C001 (张三丰, 13987654321,
     * 11010519491231002X) and C002 (李四, 13700001111). */
    const char *secrets[] = {"13987654321", "张三丰", "11010519491231002X",
                             "13700001111", "李四",   "98765"};
    const char *files[] = {"siyu.db", "siyu.db-wal"};
    for (size_t f = 0; f < SY_TEST_LEN(files); f++) {
        char path[600];
        snprintf(path, sizeof path, "%s/%s", S->data, files[f]);
        for (size_t i = 0; i < SY_TEST_LEN(secrets); i++)
            if (file_contains(path, secrets[i]))
                fail_msg("%s contains '%s' in clear text", files[f], secrets[i]);
    }
    /* The guard itself works: an attribute value written in clear is found. */
    char path[600];
    snprintf(path, sizeof path, "%s/siyu.db-wal", S->data);
    bool found = file_contains(path, "杭州");
    snprintf(path, sizeof path, "%s/siyu.db", S->data);
    assert_true(found || file_contains(path, "杭州"));
}

static void test_identity_lookup(void **state)
{
    const char *forms[] = {"13987654321", "%2B8613987654321", "139-8765-4321"};
    for (size_t i = 0; i < SY_TEST_LEN(forms); i++) {
        char path[128];
        snprintf(path, sizeof path, "/v1/identities/phone/%s", forms[i]);
        h_resp r = h_req(S, "GET", path, S->admin_key, NULL);
        if (r.status != 200)
            fail_msg("%s: %ld %s", forms[i], r.status, r.body);
        assert_string_equal(h_str(r.json, "customer_no"), "C001");
        h_resp_free(&r);
    }
    h_resp r = h_req(S, "GET", "/v1/identities/wechat_openid/oAbC123", S->admin_key, NULL);
    assert_string_equal(h_str(r.json, "customer_no"), "C001");
    h_resp_free(&r);
    r = h_req(S, "GET", "/v1/identities/wechat_openid/unknown", S->admin_key, NULL);
    h_assert_problem(r, 404, "not-found", NULL);
    h_resp_free(&r);
    r = h_req(S, "GET", "/v1/identities/phone/abc", S->admin_key, NULL);
    h_assert_problem(r, 400, "validation", "value");
    h_resp_free(&r);
    /* A new phone replaces the old one's link. */
    r = h_req(S, "PUT", "/v1/customers/C002", S->admin_key,
              "{\"pii\":{\"phone\":\"13600002222\"}}");
    assert_int_equal(r.status, 200);
    h_resp_free(&r);
    r = h_req(S, "GET", "/v1/identities/phone/13700001111", S->admin_key, NULL);
    h_assert_problem(r, 404, "not-found", NULL);
    h_resp_free(&r);
    r = h_req(S, "GET", "/v1/identities/phone/13600002222", S->admin_key, NULL);
    assert_string_equal(h_str(r.json, "customer_no"), "C002");
    h_resp_free(&r);
    /* The number looked up is personal data: a problem's instance and the
     * access log show the path without it. */
    r = h_req(S, "GET", "/v1/identities/phone/13511112222", S->admin_key, NULL);
    h_assert_problem(r, 404, "not-found", NULL);
    assert_string_equal(h_str(r.json, "instance"), "/v1/identities/phone/***");
    h_resp_free(&r);
    /* also when the method does not fit */
    r = h_req(S, "POST", "/v1/identities/phone/13511112222", S->admin_key, "{}");
    h_assert_problem(r, 405, "method-not-allowed", NULL);
    assert_string_equal(h_str(r.json, "instance"), "/v1/identities/phone/***");
    assert_null(strstr(r.body, "13511112222"));
    h_resp_free(&r);
    char log[600];
    snprintf(log, sizeof log, "%s/access.log", S->dir);
    for (int i = 0; i < 100 && !file_contains(log, "/v1/identities/phone/***"); i++)
        h_sleep_ms(20); /* written when the request completes */
    assert_true(file_contains(log, "\"path\":\"/v1/identities/phone/***\""));
    for (size_t i = 0; i < SY_TEST_LEN(forms); i++)
        assert_false(file_contains(log, forms[i]));
    assert_false(file_contains(log, "13511112222"));
    assert_false(file_contains(log, "13600002222"));
}

/* ---- events ---- */

static size_t timeline_size(const char *no)
{
    char path[128];
    snprintf(path, sizeof path, "/v1/customers/%s/events?limit=1000", no);
    h_resp r = h_req(S, "GET", path, S->admin_key, NULL);
    assert_int_equal(r.status, 200);
    size_t n = json_array_size(json_object_get(r.json, "items"));
    h_resp_free(&r);
    return n;
}

static void test_events_ingest_and_duplicates(void **state)
{
    h_resp r = h_req(S, "POST", "/v1/events", S->admin_key,
                     "[{\"event_id\":\"e1\",\"customer_no\":\"C001\",\"name\":\"view_wealth\","
                     "\"ts\":\"2026-11-23T09:00:00+08:00\",\"dwell_ms\":45000,"
                     "\"props\":{\"product\":\"WM001\"}},"
                     "{\"event_id\":\"e2\",\"identity\":{\"type\":\"wechat_openid\","
                     "\"value\":\"oAbC123\"},\"name\":\"buy_fund\",\"ts\":1795400000000}]");
    if (r.status != 200)
        fail_msg("%ld %s", r.status, r.body);
    assert_int_equal(json_integer_value(json_object_get(r.json, "accepted")), 2);
    h_resp_free(&r);
    /* A repeated event_id is a duplicate: counted and named, stored once. */
    r = h_req(S, "POST", "/v1/events", S->admin_key,
              "[{\"event_id\":\"e1\",\"customer_no\":\"C001\",\"name\":\"view_wealth\","
              "\"ts\":\"2026-11-23T01:00:00Z\"},"
              "{\"event_id\":\"e3\",\"customer_no\":\"C001\",\"name\":\"login\","
              "\"ts\":\"2026-11-23T01:00:00Z\"}]");
    assert_int_equal(r.status, 200);
    assert_int_equal(json_integer_value(json_object_get(r.json, "accepted")), 1);
    assert_int_equal(json_integer_value(json_object_get(r.json, "duplicates")), 1);
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(r.json, "duplicate_ids"), 0)), "e1");
    h_resp_free(&r);
    /* NDJSON, blank lines ignored. */
    const char *nd = "{\"event_id\":\"n1\",\"customer_no\":\"C001\",\"name\":\"pay_bill\","
                     "\"ts\":\"2026-11-23T02:00:00Z\"}\n\n"
                     "{\"event_id\":\"n2\",\"customer_no\":\"C002\",\"name\":\"bind_card\","
                     "\"ts\":\"2026-11-23T03:00:00Z\"}\n";
    const char *hdr[] = {"Content-Type: application/x-ndjson", NULL};
    CURL *c = curl_easy_init();
    r = h_req_on(c, S, "POST", "/v1/events", S->admin_key, nd, strlen(nd), hdr);
    curl_easy_cleanup(c);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_integer_value(json_object_get(r.json, "accepted")), 2);
    h_resp_free(&r);
    assert_int_equal(timeline_size("C001"), 4);
    assert_int_equal(timeline_size("C002"), 1);
}

static void test_events_mixed_batch_refused_whole(void **state)
{
    size_t before = timeline_size("C001");
    h_resp r = h_req(S, "POST", "/v1/events", S->admin_key,
                     "[{\"event_id\":\"ok1\",\"customer_no\":\"C001\",\"name\":\"login\","
                     "\"ts\":\"2026-11-23T01:00:00Z\"},"
                     "{\"event_id\":\"bad1\",\"customer_no\":\"C001\",\"name\":\"Bad Name\","
                     "\"ts\":\"yesterday\"},"
                     "{\"event_id\":\"bad2\",\"customer_no\":\"NOBODY\",\"name\":\"login\","
                     "\"ts\":\"2026-11-23T01:00:00Z\"},"
                     "{\"event_id\":\"bad3\",\"customer_no\":\"C001\",\"name\":\"login\","
                     "\"ts\":\"2026-11-23T01:00:00Z\",\"dwell_ms\":-5}]");
    /* the problem names the first bad member by its place in the batch */
    h_assert_problem(r, 400, "validation", "/1/name");
    json_t *errors = json_object_get(r.json, "errors");
    /* Every bad event is named by its index, with the field. */
    bool seen[4] = {false};
    for (size_t i = 0; i < json_array_size(errors); i++) {
        json_t *e = json_array_get(errors, i);
        json_int_t idx = json_integer_value(json_object_get(e, "index"));
        assert_true(idx >= 1 && idx <= 3);
        seen[idx] = true;
        if (idx == 2)
            assert_string_equal(h_str(e, "field"), "/customer_no");
        if (idx == 3)
            assert_string_equal(h_str(e, "field"), "/dwell_ms");
    }
    assert_false(seen[0]);
    assert_true(seen[1] && seen[2] && seen[3]);
    h_resp_free(&r);
    /* Nothing was written, not even the valid event. */
    assert_int_equal(timeline_size("C001"), before);

    const char *bodies[] = {"", "{}", "[]", "[1,2", "[{\"event_id\":\"x\"}]"};
    for (size_t i = 0; i < SY_TEST_LEN(bodies); i++) {
        r = h_req(S, "POST", "/v1/events", S->admin_key, bodies[i]);
        assert_int_equal(r.status, 400);
        h_resp_free(&r);
    }
}

static void test_timeline_pages(void **state)
{
    h_resp r = h_req(S, "GET", "/v1/customers/C001/events?limit=2", S->admin_key, NULL);
    assert_int_equal(r.status, 200);
    json_t *items = json_object_get(r.json, "items");
    assert_int_equal(json_array_size(items), 2);
    /* newest first */
    assert_string_equal(h_str(json_array_get(items, 0), "event_id"), "e2");
    char path[256];
    snprintf(path, sizeof path, "/v1/customers/C001/events?limit=2&cursor=%s",
             h_str(r.json, "next_cursor"));
    h_resp_free(&r);
    r = h_req(S, "GET", path, S->admin_key, NULL);
    items = json_object_get(r.json, "items");
    assert_int_equal(json_array_size(items), 2);
    assert_string_equal(h_str(json_array_get(items, 1), "event_id"), "e1");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(items, 1), "dwell_ms")),
                     45000);
    assert_string_equal(h_str(json_object_get(json_array_get(items, 1), "props"), "product"),
                        "WM001");
    h_resp_free(&r);
    r = h_req(S, "GET", "/v1/customers/C001/events?cursor=garbage", S->admin_key, NULL);
    h_assert_problem(r, 400, "validation", "cursor");
    h_resp_free(&r);
    /* a time without the event id after it, or an id no event could have */
    r = h_req(S, "GET", "/v1/customers/C001/events?cursor=1796270345029:", S->admin_key, NULL);
    h_assert_problem(r, 400, "validation", "cursor");
    h_resp_free(&r);
    r = h_req(S, "GET", "/v1/customers/C001/events?cursor=1796270345029:a%20b", S->admin_key, NULL);
    h_assert_problem(r, 400, "validation", "cursor");
    h_resp_free(&r);
    r = h_req(S, "GET", "/v1/customers/NOBODY/events", S->admin_key, NULL);
    h_assert_problem(r, 404, "not-found", NULL);
    h_resp_free(&r);
}

/* ---- segments ---- */

static json_int_t preview_count_on(h_server *s, const char *expr)
{
    json_t *b = json_pack("{s:s}", "expression", expr);
    char *body = json_dumps(b, 0);
    json_decref(b);
    h_resp r = h_req(s, "POST", "/v1/segments:preview", s->admin_key, body);
    free(body);
    if (r.status != 200)
        fail_msg("preview of %s: %ld %s", expr, r.status, r.body);
    json_int_t n = json_integer_value(json_object_get(r.json, "count"));
    h_resp_free(&r);
    return n;
}

static json_int_t preview_count(const char *expr)
{
    return preview_count_on(S, expr);
}

static void put_customer(const char *no, const char *body)
{
    char path[128];
    snprintf(path, sizeof path, "/v1/customers/%s", no);
    h_resp r = h_req(S, "PUT", path, S->admin_key, body);
    if (r.status != 200 && r.status != 201)
        fail_msg("PUT %s: %ld %s", no, r.status, r.body);
    h_resp_free(&r);
}

static void test_segment_preview(void **state)
{
    put_customer("S1", "{\"attributes\":{\"risk_level\":\"R3\",\"aum\":60000000,\"payroll\":true,"
                       "\"city\":\"上海\"}}");
    put_customer("S2", "{\"attributes\":{\"risk_level\":\"R5\",\"aum\":90000000,\"payroll\":true,"
                       "\"city\":\"杭州\"}}");
    put_customer("S3",
                 "{\"attributes\":{\"risk_level\":\"R2\",\"aum\":70000000,\"payroll\":true}}");
    put_customer("S4", "{\"attributes\":{\"risk_level\":\"R4\",\"payroll\":false}}");
    const char *q = "payroll = true and aum >= 50000000 and risk_level >= R3";
    assert_int_equal(preview_count(q), 2);
    h_resp r =
        h_req(S, "POST", "/v1/segments:preview", S->admin_key,
              "{\"expression\":\"payroll = true and aum >= 50000000\",\"breakdown\":\"city\"}");
    assert_int_equal(r.status, 200);
    json_t *rows = json_object_get(json_object_get(r.json, "breakdown"), "rows");
    assert_int_equal(json_array_size(rows), 3); /* 上海, 杭州, and no city */
    json_int_t total = 0;
    for (size_t i = 0; i < json_array_size(rows); i++)
        total += json_integer_value(json_object_get(json_array_get(rows, i), "count"));
    assert_int_equal(total, json_integer_value(json_object_get(r.json, "count")));
    h_resp_free(&r);
    /* An event never recorded is worth a warning: it counts no one */
    r = h_req(S, "POST", "/v1/segments:preview", S->admin_key,
              "{\"expression\":\"did(veiw_wealth, 7d) >= 3 or did(login, 7d)\"}");
    assert_int_equal(r.status, 200);
    json_t *w = json_object_get(r.json, "warnings");
    assert_int_equal(json_array_size(w), 1);
    assert_non_null(strstr(json_string_value(json_array_get(w, 0)), "'veiw_wealth'"));
    h_resp_free(&r);
    r = h_req(S, "POST", "/v1/segments:preview", S->admin_key,
              "{\"expression\":\"did(login, 7d)\"}");
    assert_null(json_object_get(r.json, "warnings"));
    h_resp_free(&r);
    /* Missing values never match; not is the complement. */
    json_int_t all = preview_count("aum >= 0 or aum is null");
    assert_int_equal(preview_count("not aum >= 50000000") + preview_count("aum >= 50000000"), all);
    assert_true(preview_count("aum is null") >= 1);
}

static void test_segment_expression_errors(void **state)
{
    struct {
        const char *body, *detail;
        int column;
    } cases[] = {
        {"{\"expression\":\"risk_level >= R9\"}", "not a value of risk_level", 15},
        {"{\"expression\":\"shoe_size > 40\"}", "no attribute", 1},
        {"{\"expression\":\"aum > 1.5\"}", "integer", 7},
        {"{\"expression\":\"payroll = true and (\"}", "expected", 21},
        {"{\"expression\":\"did(login, 36h)\"}", "whole", 1},
        {"{\"expression\":\"tag(vip)\"}", "no tag", 1},
    };
    for (size_t i = 0; i < SY_TEST_LEN(cases); i++) {
        h_resp r = h_req(S, "POST", "/v1/segments:preview", S->admin_key, cases[i].body);
        h_assert_problem(r, 400, "validation", "/expression");
        if (!strstr(h_str(r.json, "detail"), cases[i].detail))
            fail_msg("case %zu: %s", i, r.body);
        json_t *pos = json_object_get(r.json, "position");
        assert_int_equal(json_integer_value(json_object_get(pos, "line")), 1);
        if (json_integer_value(json_object_get(pos, "column")) != cases[i].column)
            fail_msg("case %zu: column %lld, expected %d: %s", i,
                     (long long)json_integer_value(json_object_get(pos, "column")), cases[i].column,
                     r.body);
        h_resp_free(&r);
    }
    h_resp r = h_req(S, "POST", "/v1/segments:preview", S->admin_key,
                     "{\"expression\":\"aum > 1\",\"breakdown\":\"aum\"}");
    h_assert_problem(r, 400, "validation", "/breakdown");
    h_resp_free(&r);
    r = h_req(S, "POST", "/v1/segments:preview", S->admin_key, "{}");
    h_assert_problem(r, 400, "validation", "/expression");
    h_resp_free(&r);
}

/* Polls the count of expr until it equals want; returns the ms it took,
 * or -1 after 1 s. */
static int fresh_within_1s(const char *expr, json_int_t want)
{
    uint64_t t0 = 0;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    t0 = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    for (;;) {
        if (preview_count(expr) == want) {
            clock_gettime(CLOCK_MONOTONIC, &ts);
            return (int)((uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000 - t0);
        }
        clock_gettime(CLOCK_MONOTONIC, &ts);
        if ((uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000 - t0 > 1000)
            return -1;
        h_sleep_ms(20);
    }
}

static void test_segment_freshness(void **state)
{
    const char *q = "risk_level = R1 and city = '深圳'";
    json_int_t before = preview_count(q);
    put_customer("F1", "{\"attributes\":{\"risk_level\":\"R1\",\"city\":\"深圳\"}}");
    assert_true(fresh_within_1s(q, before + 1) >= 0);
    put_customer("F1", "{\"attributes\":{\"city\":\"广州\"}}");
    assert_true(fresh_within_1s(q, before) >= 0);

    const char *qe = "did(open_app, 1d) >= 2";
    json_int_t e0 = preview_count(qe);
    char body[512];
    time_t now = time(NULL);
    char ts[32];
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    snprintf(body, sizeof body,
             "[{\"event_id\":\"fr1\",\"customer_no\":\"F1\",\"name\":\"open_app\",\"ts\":\"%s\"},"
             "{\"event_id\":\"fr2\",\"customer_no\":\"F1\",\"name\":\"open_app\",\"ts\":\"%s\"}]",
             ts, ts);
    h_resp r = h_req(S, "POST", "/v1/events", S->admin_key, body);
    assert_int_equal(r.status, 200);
    h_resp_free(&r);
    assert_true(fresh_within_1s(qe, e0 + 1) >= 0);
    /* A duplicate delivery changes nothing. */
    r = h_req(S, "POST", "/v1/events", S->admin_key, body);
    assert_int_equal(json_integer_value(json_object_get(r.json, "duplicates")), 2);
    h_resp_free(&r);
    assert_int_equal(preview_count("did(open_app, 1d) >= 3"), 0);
}

/* ---- tags and saved segments ---- */

static void test_tags(void **state)
{
    h_resp r = h_req(S, "POST", "/v1/tags", S->admin_key,
                     "{\"name\":\"高净值\",\"category\":\"value\",\"kind\":\"rule\","
                     "\"expression\":\"aum >= 60000000\"}");
    assert_int_equal(r.status, 201);
    h_resp_free(&r);
    r = h_req(S, "POST", "/v1/tags", S->admin_key,
              "{\"name\":\"vip\",\"category\":\"basic\",\"kind\":\"manual\"}");
    assert_int_equal(r.status, 201);
    h_resp_free(&r);
    json_int_t rich = preview_count("aum >= 60000000");
    assert_int_equal(preview_count("tag('高净值')"), rich);
    /* manual members by list and by CSV */
    r = h_req(S, "POST", "/v1/tags/vip/members", S->admin_key, "{\"customers\":[\"S1\",\"S2\"]}");
    assert_int_equal(r.status, 200);
    assert_int_equal(json_integer_value(json_object_get(r.json, "added")), 2);
    h_resp_free(&r);
    const char *csv = "customer_no\nS3\nS2\n";
    const char *hdr[] = {"Content-Type: text/csv", NULL};
    CURL *c = curl_easy_init();
    r = h_req_on(c, S, "POST", "/v1/tags/vip/members", S->admin_key, csv, strlen(csv), hdr);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_integer_value(json_object_get(r.json, "added")), 1);
    assert_int_equal(json_integer_value(json_object_get(r.json, "unchanged")), 1);
    h_resp_free(&r);
    curl_easy_cleanup(c);
    assert_int_equal(preview_count("tag(vip)"), 3);
    r = h_req(S, "POST", "/v1/tags/vip/members?remove=true", S->admin_key,
              "{\"customers\":[\"S3\"]}");
    assert_int_equal(r.status, 200);
    h_resp_free(&r);
    assert_int_equal(preview_count("tag(vip)"), 2);
    /* unknown customers refuse the whole call */
    r = h_req(S, "POST", "/v1/tags/vip/members", S->admin_key,
              "{\"customers\":[\"S4\",\"NOBODY\"]}");
    h_assert_problem(r, 400, "validation", "/customers/1");
    json_t *e0 = json_array_get(json_object_get(r.json, "errors"), 0);
    assert_string_equal(h_str(e0, "where"), "/customers/1");
    assert_string_equal(h_str(e0, "customer_no"), "NOBODY");
    h_resp_free(&r);
    const char *csvh[] = {"Content-Type: text/csv", NULL};
    const char *nobody_csv = "customer_no\nS4\nNOBODY\n";
    CURL *c2 = curl_easy_init();
    r = h_req_on(c2, S, "POST", "/v1/tags/vip/members", S->admin_key, nobody_csv,
                 strlen(nobody_csv), csvh);
    curl_easy_cleanup(c2);
    h_assert_problem(r, 400, "validation", "");
    assert_string_equal(h_str(json_array_get(json_object_get(r.json, "errors"), 0), "where"),
                        "line 3");
    h_resp_free(&r);
    assert_int_equal(preview_count("tag(vip)"), 2);
    r = h_req(S, "POST", "/v1/tags/%E9%AB%98%E5%87%80%E5%80%BC/members", S->admin_key,
              "{\"customers\":[\"S4\"]}");
    h_assert_problem(r, 409, "conflict", NULL); /* a rule tag's members follow its rule */
    h_resp_free(&r);
    /* the catalogue */
    r = h_req(S, "GET", "/v1/tags?category=basic", S->admin_key, NULL);
    assert_int_equal(r.status, 200);
    json_t *items = json_object_get(r.json, "items");
    assert_int_equal(json_array_size(items), 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(items, 0), "members")), 2);
    h_resp_free(&r);
    r = h_req(S, "POST", "/v1/tags", S->admin_key,
              "{\"name\":\"x\",\"category\":\"fun\",\"kind\":\"manual\"}");
    h_assert_problem(r, 400, "validation", "/category");
    h_resp_free(&r);
    r = h_req(S, "POST", "/v1/tags", S->admin_key,
              "{\"name\":\"x\",\"category\":\"value\",\"kind\":\"rule\",\"expression\":\"aum >\"}");
    h_assert_problem(r, 400, "validation", "/expression");
    h_resp_free(&r);
}

static void test_saved_segments(void **state)
{
    h_resp r = h_req(S, "POST", "/v1/segments", S->admin_key,
                     "{\"id\":\"rich_payroll\",\"name\":\"代发高净值\","
                     "\"expression\":\"payroll = true and tag('高净值')\"}");
    assert_int_equal(r.status, 201);
    json_int_t size = json_integer_value(json_object_get(r.json, "size"));
    assert_int_equal(size, preview_count("payroll = true and aum >= 60000000"));
    h_resp_free(&r);
    r = h_req(S, "POST", "/v1/segments", S->admin_key,
              "{\"id\":\"rich_payroll_sh\",\"name\":\"上海\","
              "\"expression\":\"segment(rich_payroll) and city = '上海'\"}");
    assert_int_equal(r.status, 201);
    h_resp_free(&r);
    /* cycles refused; deleting what is referenced refused */
    r = h_req(S, "PUT", "/v1/segments/rich_payroll", S->admin_key,
              "{\"expression\":\"segment(rich_payroll_sh)\"}");
    h_assert_problem(r, 400, "validation", "/expression");
    assert_non_null(strstr(h_str(r.json, "detail"), "cycle"));
    h_resp_free(&r);
    r = h_req(S, "DELETE", "/v1/segments/rich_payroll", S->admin_key, NULL);
    h_assert_problem(r, 409, "conflict", NULL);
    h_resp_free(&r);
    r = h_req(S, "DELETE", "/v1/tags/%E9%AB%98%E5%87%80%E5%80%BC", S->admin_key, NULL);
    h_assert_problem(r, 409, "conflict", NULL);
    h_resp_free(&r);
    /* members: pages, CSV, one customer */
    put_customer("S5", "{\"attributes\":{\"payroll\":true,\"aum\":80000000}}");
    r = h_req(S, "GET", "/v1/segments/rich_payroll/members?limit=1", S->admin_key, NULL);
    assert_int_equal(r.status, 200);
    json_int_t total = json_integer_value(json_object_get(r.json, "size"));
    assert_int_equal(total, size + 1); /* S5 joined: saved segments are always current */
    assert_int_equal(json_array_size(json_object_get(r.json, "items")), 1);
    char path[256];
    snprintf(path, sizeof path, "/v1/segments/rich_payroll/members?limit=100&cursor=%s",
             h_str(r.json, "next_cursor"));
    h_resp_free(&r);
    r = h_req(S, "GET", path, S->admin_key, NULL);
    assert_int_equal(json_array_size(json_object_get(r.json, "items")), (size_t)total - 1);
    assert_true(json_is_null(json_object_get(r.json, "next_cursor")));
    h_resp_free(&r);
    r = h_req(S, "GET", "/v1/segments/rich_payroll/members?format=csv", S->admin_key, NULL);
    assert_int_equal(r.status, 200);
    assert_true(!strncmp(r.body, "customer_no\n", 12));
    size_t lines = 0;
    for (const char *p = r.body; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, (size_t)total + 1);
    assert_non_null(strstr(r.body, "\nS5\n"));
    h_resp_free(&r);
    r = h_req(S, "GET", "/v1/segments/rich_payroll/members/S5", S->admin_key, NULL);
    assert_true(json_is_true(json_object_get(r.json, "member")));
    h_resp_free(&r);
    r = h_req(S, "GET", "/v1/segments/rich_payroll/members/S4", S->admin_key, NULL);
    assert_true(json_is_false(json_object_get(r.json, "member")));
    h_resp_free(&r);
    /* the 360° view names the segments and tags the customer is in */
    r = h_req(S, "GET", "/v1/customers/S5", S->admin_key, NULL);
    assert_int_equal(r.status, 200);
    json_t *segs = json_object_get(r.json, "segments"), *tags = json_object_get(r.json, "tags");
    assert_int_equal(json_array_size(segs), 1); /* not rich_payroll_sh: S5 has no city */
    assert_string_equal(h_str(json_array_get(segs, 0), "id"), "rich_payroll");
    assert_string_equal(h_str(json_array_get(segs, 0), "name"), "代发高净值");
    bool rich = false;
    for (size_t i = 0; i < json_array_size(tags); i++)
        rich |= !strcmp(h_str(json_array_get(tags, i), "name"), "高净值") &&
                !strcmp(h_str(json_array_get(tags, i), "kind"), "rule");
    assert_true(rich);
    assert_true(json_is_array(json_object_get(r.json, "last_events")));
    h_resp_free(&r);
    r = h_req(S, "GET", "/v1/customers/S4", S->admin_key, NULL);
    assert_int_equal(r.status, 200);
    segs = json_object_get(r.json, "segments");
    for (size_t i = 0; i < json_array_size(segs); i++)
        assert_string_not_equal(h_str(json_array_get(segs, i), "id"), "rich_payroll");
    h_resp_free(&r);
    /* size history: today's size was recorded when it was saved */
    r = h_req(S, "GET", "/v1/segments/rich_payroll/sizes", S->admin_key, NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "items")), 1);
    h_resp_free(&r);
    /* delete in the right order */
    r = h_req(S, "DELETE", "/v1/segments/rich_payroll_sh", S->admin_key, NULL);
    assert_int_equal(r.status, 204);
    h_resp_free(&r);
    r = h_req(S, "GET", "/v1/segments/rich_payroll_sh", S->admin_key, NULL);
    h_assert_problem(r, 404, "not-found", NULL);
    h_resp_free(&r);
    r = h_req(S, "POST", "/v1/segments", S->admin_key,
              "{\"id\":\"Bad Id\",\"name\":\"x\",\"expression\":\"aum > 1\"}");
    h_assert_problem(r, 400, "validation", "/id");
    h_resp_free(&r);
}

static void must_status(const char *key, const char *method, const char *path, const char *body,
                        long want)
{
    h_resp r = h_req(S, method, path, key, body);
    if (r.status != want)
        fail_msg("%s %s %s: %ld %s", method, path, body ? body : "", r.status, r.body);
    h_resp_free(&r);
}

/* DELETE /v1/segments/{id} answers 409 naming who still uses the segment,
 * and deletes nothing, while a benefit item, package or mall listing is
 * for it (by segment_id or a segment_expression that refers to it) or a
 * campaign that has not ended is: otherwise the item would be eligible to
 * nobody, the campaign would run with no audience, and a segment saved
 * later under the same id would silently become theirs.  An ended campaign
 * does not hold a segment. */
static void test_segment_delete_refused_while_in_use(void **state)
{
    static const char *const segs[] = {"seg_item", "seg_camp", "seg_pkg", "seg_free"};
    for (size_t i = 0; i < SY_TEST_LEN(segs); i++) {
        char body[256];
        snprintf(body, sizeof body,
                 "{\"id\":\"%s\",\"name\":\"%s\",\"expression\":\"city = '无此城'\"}", segs[i],
                 segs[i]);
        must_status(S->admin_key, "POST", "/v1/segments", body, 201);
    }
    must_status(S->admin_key, "POST", "/v1/point-types",
                "{\"code\":\"segpt\",\"name\":\"积分\",\"expiry\":\"never\"}", 201);
    must_status(S->admin_key, "POST", "/v1/benefits/suppliers",
                "{\"code\":\"segsup\",\"name\":\"本行\"}", 201);
    must_status(S->admin_key, "POST", "/v1/benefits/items",
                "{\"code\":\"segitem\",\"name\":\"立减金\",\"kind\":\"coupon\",\"supplier\":"
                "\"segsup\",\"face_value\":500,\"cost_price\":300,\"params\":{\"threshold\":0},"
                "\"stock\":10,\"validity_days\":30,\"segment_id\":\"seg_item\"}",
                201);
    must_status(S->admin_key, "POST", "/v1/benefits/packages",
                "{\"code\":\"segpkg\",\"name\":\"礼包\",\"items\":[{\"item\":\"segitem\"}],"
                "\"segment_expression\":\"payroll = true or segment(seg_pkg)\"}",
                201);
    must_status(
        S->admin_key, "POST", "/v1/campaigns",
        "{\"id\":\"segc\",\"name\":\"签到\",\"type\":\"checkin\","
        "\"starts_at\":\"2020-01-01T00:00:00+08:00\",\"ends_at\":\"2099-01-01T00:00:00+08:00\","
        "\"point_type\":\"segpt\",\"segment_id\":\"seg_camp\","
        "\"checkin\":{\"rewards\":[{\"day\":1,\"points\":1}]}}",
        201);
    struct {
        const char *seg, *user;
    } used[] = {{"seg_item", "item 'segitem'"},
                {"seg_camp", "campaign 'segc'"},
                {"seg_pkg", "package 'segpkg'"}};
    for (size_t i = 0; i < SY_TEST_LEN(used); i++) {
        char path[128];
        snprintf(path, sizeof path, "/v1/segments/%s", used[i].seg);
        h_resp r = h_req(S, "DELETE", path, S->admin_key, NULL);
        if (r.status != 409)
            fail_msg("DELETE %s: %ld %s", path, r.status, r.body);
        h_assert_problem(r, 409, "conflict", NULL);
        if (!strstr(h_str(r.json, "detail"), used[i].user))
            fail_msg("DELETE %s does not name %s: %s", path, used[i].user, r.body);
        h_resp_free(&r);
        must_status(S->admin_key, "GET", path, NULL, 200);
        assert_int_equal(h_sql_long(S, "SELECT COUNT(*) FROM segments WHERE id IN ('seg_item',"
                                       " 'seg_camp', 'seg_pkg', 'seg_free')"),
                         4);
    }
    /* a draft holds it, and so does the campaign once approved ... */
    char *out = NULL, admin2[128] = "";
    assert_int_equal(h_cli(S, &out, "key create --tenant demo --role admin"), 0);
    sscanf(out, "%127s", admin2);
    free(out);
    must_status(S->admin_key, "POST", "/v1/campaigns/segc:submit", NULL, 200);
    must_status(admin2, "POST", "/v1/campaigns/segc:approve", NULL, 200);
    h_resp r = h_req(S, "DELETE", "/v1/segments/seg_camp", S->admin_key, NULL);
    h_assert_problem(r, 409, "conflict", NULL);
    assert_non_null(strstr(h_str(r.json, "detail"), "campaign 'segc'"));
    h_resp_free(&r);
    /* ... but not once it has ended */
    must_status(S->admin_key, "POST", "/v1/campaigns/segc:end", NULL, 200);
    must_status(S->admin_key, "DELETE", "/v1/segments/seg_camp", NULL, 204);
    must_status(S->admin_key, "GET", "/v1/segments/seg_camp", NULL, 404);
    /* an item cannot drop its segment: seg_item stays; an unused one goes */
    must_status(S->admin_key, "DELETE", "/v1/segments/seg_item", NULL, 409);
    must_status(S->admin_key, "GET", "/v1/segments/seg_item", NULL, 200);
    must_status(S->admin_key, "DELETE", "/v1/segments/seg_free", NULL, 204);
    must_status(S->admin_key, "DELETE", "/v1/segments/seg_free", NULL, 404);
}

static void test_segments_after_restart(void **state)
{
    const char *qs[] = {"payroll = true and aum >= 50000000 and risk_level >= R3",
                        "tag(vip) or segment(rich_payroll)", "did(open_app, 1d) >= 2",
                        "city in ('上海', '杭州') or aum is null",
                        "not risk_level between R2 and R4"};
    json_int_t before[SY_TEST_LEN(qs)];
    for (size_t i = 0; i < SY_TEST_LEN(qs); i++)
        before[i] = preview_count(qs[i]);
    /* The index is derived: a restart rebuilds it from the store. */
    assert_int_equal(h_signal_wait(S, SIGTERM), 0);
    h_launch(S);
    for (size_t i = 0; i < SY_TEST_LEN(qs); i++)
        if (preview_count(qs[i]) != before[i])
            fail_msg("%s: %lld before the restart, %lld after", qs[i], (long long)before[i],
                     (long long)preview_count(qs[i]));
}

static char *sh(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t cap = 1 << 20, len = 0, n;
    char *out = malloc(cap);
    while ((n = fread(out + len, 1, cap - len - 1, p)) > 0) {
        len += n;
        if (cap - len < 2)
            out = realloc(out, cap *= 2);
    }
    out[len] = '\0';
    assert_int_equal(pclose(p), 0);
    return out;
}

/* Serves a demo bank as `make run` does (--demo: its own data key) and
 * checks that it is the wide profile the segment benchmark needs: at least
 * 50 attributes, a catalogue of 50 tags whose rule tags all evaluate and
 * whose manual lists were loaded, and attributes that agree with each
 * other and with the behaviour. */
static void test_demo_bank_served(const char *data)
{
    h_server *d = calloc(1, sizeof *d);
    d->dir = tu_tempdir();
    snprintf(d->data, sizeof d->data, "%s", data);
    snprintf(d->extra[d->nextra++], sizeof d->extra[0], "--demo");
    char *out = NULL;
    assert_int_equal(h_cli(d, &out, "key create --tenant demo --role admin"), 0);
    sscanf(out, "%127s", d->admin_key);
    free(out);
    setenv("H_NO_DATA_KEY", "1", 1);
    h_launch(d);
    unsetenv("H_NO_DATA_KEY");

    h_resp r = h_req(d, "GET", "/v1/attributes", d->admin_key, NULL);
    assert_int_equal(r.status, 200);
    assert_true(json_array_size(json_object_get(r.json, "items")) >= 50);
    h_resp_free(&r);
    r = h_req(d, "GET", "/v1/tags", d->admin_key, NULL);
    assert_int_equal(r.status, 200);
    json_t *items = json_object_get(r.json, "items");
    assert_true(json_array_size(items) >= 50);
    size_t i, rules = 0;
    json_int_t manual_members = 0;
    json_t *t;
    json_array_foreach (items, i, t) {
        /* a rule tag that does not evaluate is listed with members null */
        if (!json_is_integer(json_object_get(t, "members")))
            fail_msg("tag %s (%s) does not evaluate", h_str(t, "name"), h_str(t, "expression"));
        if (!strcmp(h_str(t, "kind"), "rule"))
            rules++;
        else
            manual_members += json_integer_value(json_object_get(t, "members"));
    }
    assert_true(rules >= 30 && rules < json_array_size(items));
    char *n = sh("sqlite3 '%s/siyu.db' \"SELECT COUNT(*) FROM tag_members\"", data);
    assert_int_equal(manual_members, atoll(n));
    assert_true(manual_members > 0);
    free(n);
    h_resp_free(&r);
    /* tag() resolves rule tags (over attributes, behaviour and other tags)
     * and manual lists */
    assert_int_equal(preview_count_on(d, "tag('财富客户')"),
                     preview_count_on(d, "aum >= 50000000"));
    preview_count_on(d, "tag('营销可触达') or tag('理财浏览未购买') or tag('活动黑名单')");
    /* attributes agree with each other and with behaviour */
    const char *never[] = {
        "fund_balance > 0 and has_fund = false",
        "did(buy_fund, 7d) and has_fund = false",
        "did(login, 7d) and mobile_banking = false",
        "customer_tier = '私行' and aum < 600000000",
        "products_held < 1",
    };
    for (size_t k = 0; k < SY_TEST_LEN(never); k++)
        if (preview_count_on(d, never[k]) != 0)
            fail_msg("demo customers with %s", never[k]);
    assert_true(preview_count_on(d, "has_fund = true") > 0);
    assert_true(preview_count_on(d, "occupation is null") > 0); /* not everyone has everything */
    /* the point types docs/rewards.md's worked example uses */
    r = h_req(d, "GET", "/v1/point-types", d->admin_key, NULL);
    assert_int_equal(r.status, 200);
    items = json_object_get(r.json, "items");
    assert_int_equal(json_array_size(items), 2);
    assert_string_equal(h_str(json_array_get(items, 0), "code"), "points");
    assert_string_equal(h_str(json_array_get(items, 0), "name"), "积分");
    assert_string_equal(h_str(json_array_get(items, 0), "expiry"), "year_end");
    assert_string_equal(h_str(json_array_get(items, 1), "code"), "sunshine");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(items, 1), "expiry_days")),
                     30);
    h_resp_free(&r);
    r = h_req(d, "POST", "/v1/customers/C00000001/points:earn", d->admin_key,
              "{\"point_type\":\"sunshine\",\"amount\":100,\"source\":\"campaign:demo\"}");
    assert_int_equal(r.status, 201);
    h_resp_free(&r);
    h_stop(d);
}

static void test_demo_generator(void **state)
{
    char a[400], b[400];
    snprintf(a, sizeof a, "%s/demo-a", S->dir);
    snprintf(b, sizeof b, "%s/demo-b", S->dir);
    const char *args = "--customers 300 --days 7 --seed 7";
    free(sh("env -u SIYU_DATA_KEY '%s' demo --data '%s' %s 2>/dev/null", h_bin(), a, args));
    free(sh("env -u SIYU_DATA_KEY '%s' demo --data '%s' %s 2>/dev/null", h_bin(), b, args));
    /* The same seed gives the same bank (personal data aside: each demo
     * seals it under its own new key, with random nonces; and today's
     * events, which stop at the moment the demo ran). */
    const char *q = "SELECT customer_no, dense_id, attrs FROM customers ORDER BY customer_no;"
                    " SELECT customer_no, name, ts, dwell_ms FROM events"
                    " WHERE ts < CAST(strftime('%s', 'now') AS INTEGER) / 86400 * 86400000"
                    " ORDER BY event_id;";
    char *da = sh("sqlite3 '%s/siyu.db' \"%s\"", a, q);
    char *db = sh("sqlite3 '%s/siyu.db' \"%s\"", b, q);
    assert_string_equal(da, db);
    free(da);
    free(db);
    char *n = sh("sqlite3 '%s/siyu.db' \"SELECT COUNT(*), COUNT(pii) FROM customers\"", a);
    assert_string_equal(n, "300|300\n");
    free(n);
    char *ev = sh("sqlite3 '%s/siyu.db' \"SELECT COUNT(DISTINCT name) > 4, COUNT(*) > 100,"
                  " SUM(name = 'buy_fund') <= SUM(name = 'click_wealth'),"
                  " SUM(name = 'click_wealth') <= SUM(name = 'view_wealth') FROM events\"",
                  a);
    assert_string_equal(ev, "1|1|1|1\n");
    free(ev);
    /* a tenant that has customers is not overwritten */
    char cmd[1600];
    snprintf(cmd, sizeof cmd, "env -u SIYU_DATA_KEY '%s' demo --data '%s' %s 2>/dev/null", h_bin(),
             a, args);
    assert_int_not_equal(system(cmd), 0);
    test_demo_bank_served(a);
}

/* ---- bulk import ---- */

static void test_import_endpoint(void **state)
{
    const char *nd =
        "{\"customer_no\":\"I1\",\"attributes\":{\"risk_level\":\"R3\",\"city\":\"宁波\"}}\n"
        "{\"customer_no\":\"I2\",\"attributes\":{\"risk_level\":\"R9\"}}\n"
        "not json\n"
        "\n"
        "{\"customer_no\":\"I3\",\"identities\":[{\"type\":\"app_user_id\",\"value\":\"imp-1\"}]}\n"
        "{\"customer_no\":\"I4\",\"identities\":[{\"type\":\"app_user_id\",\"value\":\"imp-1\"}]}\n"
        "{\"customer_no\":\"I1\",\"attributes\":{\"payroll\":true}}\n";
    const char *hdr[] = {"Content-Type: application/x-ndjson", NULL};
    CURL *c = curl_easy_init();
    h_resp r = h_req_on(c, S, "POST", "/v1/customers:import", S->admin_key, nd, strlen(nd), hdr);
    curl_easy_cleanup(c);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_integer_value(json_object_get(r.json, "created")), 3); /* I1, I3, I4 */
    assert_int_equal(json_integer_value(json_object_get(r.json, "updated")), 1); /* I1 again */
    assert_int_equal(json_integer_value(json_object_get(r.json, "failed")), 2);
    json_t *errors = json_object_get(r.json, "errors");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(errors, 0), "line")), 2);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(errors, 1), "line")), 3);
    h_resp_free(&r);
    /* I4 took the identity I3 had: the two records were merged into I4. */
    r = h_req(S, "GET", "/v1/customers/I3", S->admin_key, NULL);
    assert_string_equal(h_str(r.json, "merged_into"), "I4");
    h_resp_free(&r);
    /* imported customers reach the index */
    assert_int_equal(preview_count("city = '宁波' and payroll = true and risk_level = R3"), 1);
}

static void test_import_cli(void **state)
{
    char csv[700], out[700], cmd[2400];
    snprintf(csv, sizeof csv, "%s/import.csv", S->dir);
    snprintf(out, sizeof out, "%s/import.err", S->dir);
    FILE *f = fopen(csv, "w");
    fputs("customer_no,risk_level,aum,payroll,city,name,phone,app_user_id\n"
          "K1,R3,5000000,true,\"上海, 浦东\",张伟,13800000001,ua1\n"
          "K2,R9,100,false,杭州,李娜,13800000002,ua2\n"
          "K3,R5,,1,北京,,,ua3\n",
          f);
    fclose(f);
    snprintf(cmd, sizeof cmd,
             "'%s' import customers '%s' --tenant demo --key '%s' --url http://127.0.0.1:%d "
             "2>'%s'",
             h_bin(), csv, S->admin_key, S->port, out);
    int st = system(cmd);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 1); /* a row failed; the others imported */
    char *log = h_read_file(out);
    assert_non_null(strstr(log, "import.csv:3: /attributes/risk_level"));
    assert_non_null(strstr(log, "2 created, 0 updated, 1 failed"));
    free(log);
    h_resp r = h_req(S, "GET", "/v1/customers/K1", S->admin_key, NULL);
    assert_int_equal(r.status, 200);
    json_t *a = json_object_get(r.json, "attributes");
    assert_string_equal(h_str(a, "city"), "上海, 浦东");
    assert_int_equal(json_integer_value(json_object_get(a, "aum")), 5000000);
    assert_true(json_is_true(json_object_get(a, "payroll")));
    assert_string_equal(h_str(json_object_get(r.json, "pii"), "phone"), "138****0001");
    h_resp_free(&r);
    r = h_req(S, "GET", "/v1/identities/app_user_id/ua3", S->admin_key, NULL);
    assert_string_equal(h_str(r.json, "customer_no"), "K3");
    h_resp_free(&r);
    /* the key must belong to the tenant named */
    snprintf(cmd, sizeof cmd,
             "'%s' import customers '%s' --tenant bank-b --key '%s' --url http://127.0.0.1:%d "
             "2>'%s'",
             h_bin(), csv, S->admin_key, S->port, out);
    st = system(cmd);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 1);
    log = h_read_file(out);
    assert_non_null(strstr(log, "belongs to tenant 'demo'"));
    free(log);
}

/* ---- identity merge ---- */

static void test_identity_merge(void **state)
{
    /* A prospect known by WeChat only, with behaviour and a tag. */
    put_customer("P1", "{\"attributes\":{\"city\":\"温州\",\"risk_level\":\"R2\"},"
                       "\"pii\":{\"name\":\"访客\"},"
                       "\"identities\":[{\"type\":\"wechat_openid\",\"value\":\"oMERGE\"}]}");
    time_t now = time(NULL);
    char ts[32], body[512];
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    snprintf(
        body, sizeof body,
        "[{\"event_id\":\"mg1\",\"customer_no\":\"P1\",\"name\":\"view_merge\",\"ts\":\"%s\"}]",
        ts);
    h_resp r = h_req(S, "POST", "/v1/events", S->admin_key, body);
    assert_int_equal(r.status, 200);
    h_resp_free(&r);
    r = h_req(S, "POST", "/v1/tags/vip/members", S->admin_key, "{\"customers\":[\"P1\"]}");
    assert_int_equal(r.status, 200);
    h_resp_free(&r);
    json_int_t before = preview_count("risk_level >= R1 or risk_level is null");

    /* The real customer opens an account with the same WeChat identity. */
    r = h_req(S, "PUT", "/v1/customers/R1000", S->admin_key,
              "{\"attributes\":{\"risk_level\":\"R4\"},"
              "\"identities\":[{\"type\":\"wechat_openid\",\"value\":\"oMERGE\"}]}");
    assert_int_equal(r.status, 201);
    json_t *a = json_object_get(r.json, "attributes");
    assert_string_equal(h_str(a, "risk_level"), "R4"); /* the survivor's value wins */
    assert_string_equal(h_str(a, "city"), "温州");     /* the merged one fills the gap */
    assert_string_equal(h_str(json_object_get(r.json, "pii"), "name"), "访*");
    h_resp_free(&r);
    r = h_req(S, "GET", "/v1/customers/P1", S->admin_key, NULL);
    assert_string_equal(h_str(r.json, "merged_into"), "R1000");
    h_resp_free(&r);
    r = h_req(S, "GET", "/v1/identities/wechat_openid/oMERGE", S->admin_key, NULL);
    assert_string_equal(h_str(r.json, "customer_no"), "R1000");
    h_resp_free(&r);
    r = h_req(S, "PUT", "/v1/customers/P1", S->admin_key, "{\"attributes\":{\"city\":\"x\"}}");
    h_assert_problem(r, 409, "conflict", NULL);
    h_resp_free(&r);
    /* behaviour, tags and counts follow the survivor */
    assert_int_equal(preview_count("did(view_merge, 1d) and tag(vip) and city = '温州' and "
                                   "risk_level = R4"),
                     1);
    assert_int_equal(preview_count("risk_level >= R1 or risk_level is null"), before);
    assert_int_equal(timeline_size("R1000"), 1);
    /* events still sent for the merged number reach the survivor */
    snprintf(
        body, sizeof body,
        "[{\"event_id\":\"mg2\",\"customer_no\":\"P1\",\"name\":\"view_merge\",\"ts\":\"%s\"}]",
        ts);
    r = h_req(S, "POST", "/v1/events", S->admin_key, body);
    assert_int_equal(r.status, 200);
    h_resp_free(&r);
    assert_int_equal(timeline_size("R1000"), 2);
    assert_int_equal(preview_count("did(view_merge, 1d) >= 2"), 1);
    /* the 360° view: the manual tag, the newest events first */
    r = h_req(S, "GET", "/v1/customers/R1000", S->admin_key, NULL);
    json_t *tags = json_object_get(r.json, "tags"), *evs = json_object_get(r.json, "last_events");
    assert_int_equal(json_array_size(tags), 1);
    assert_string_equal(h_str(json_array_get(tags, 0), "name"), "vip");
    assert_string_equal(h_str(json_array_get(tags, 0), "kind"), "manual");
    assert_int_equal(json_array_size(evs), 2);
    assert_string_equal(h_str(json_array_get(evs, 0), "event_id"), "mg2");
    assert_string_equal(h_str(json_array_get(evs, 1), "event_id"), "mg1");
    h_resp_free(&r);
    /* and the same holds after a restart, from the store alone */
    assert_int_equal(h_signal_wait(S, SIGTERM), 0);
    h_launch(S);
    assert_int_equal(preview_count("did(view_merge, 1d) >= 2 and tag(vip) and city = '温州'"), 1);
    assert_int_equal(preview_count("risk_level >= R1 or risk_level is null"), before);
    /* the packed copy the index starts from: the survivor's merged values,
     * and none for the merged customer */
    char *out = NULL;
    int rc = h_cli(S, &out, "check --tenant demo");
    if (rc != 0 || !strstr(out, "every invariant holds") || !strstr(out, "customers: "))
        fail_msg("siyu check exited %d:\n%s", rc, out);
    free(out);
}

static void test_refuses_to_start_without_data_key(void **state)
{
    char dir[600], cmd[1400];
    snprintf(dir, sizeof dir, "%s/nokey", S->dir);
    snprintf(cmd, sizeof cmd,
             "env -u SIYU_DATA_KEY '%s' serve --data '%s' --listen 127.0.0.1:0 2>'%s.err'", h_bin(),
             dir, dir);
    int st = system(cmd);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 1);
    char errpath[700];
    snprintf(errpath, sizeof errpath, "%s.err", dir);
    char *log = h_read_file(errpath);
    assert_non_null(strstr(log, "no data key"));
    free(log);
}

/* The store remembers which data key sealed its personal data: another key
 * is refused at start, before anything is read or written. */
static void test_refuses_another_data_key(void **state)
{
    (void)state;
    char cmd[1600], errpath[700];
    snprintf(errpath, sizeof errpath, "%s/otherkey.err", S->dir);
    /* S (running) holds customers sealed with H_DATA_KEY; another server on
     * the same directory would be refused by the lock, so use a copy. */
    snprintf(cmd, sizeof cmd,
             "rm -rf '%s/copy' && mkdir '%s/copy' && env -u SIYU_DATA_KEY '%s' demo --data "
             "'%s/copy' --customers 20"
             " --days 1 >/dev/null 2>&1 && SIYU_DATA_KEY=%s timeout 20 '%s' serve --data '%s/copy'"
             " --listen 127.0.0.1:0 2>'%s'",
             S->dir, S->dir, h_bin(), S->dir,
             "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100", h_bin(), S->dir,
             errpath);
    int st = system(cmd);
    if (!(WIFEXITED(st) && WEXITSTATUS(st) == 1)) {
        char *log = h_read_file(errpath);
        fail_msg("expected exit 1, got %d: %s", WIFEXITED(st) ? WEXITSTATUS(st) : -1, log);
    }
    char *log = h_read_file(errpath);
    assert_non_null(strstr(log, "not the one this store's personal data is sealed with"));
    free(log);
    /* the demo's own key (data/data.key, made by siyu demo) still opens it */
    snprintf(cmd, sizeof cmd,
             "env -u SIYU_DATA_KEY timeout 3 '%s' serve --data '%s/copy' --demo"
             " --listen 127.0.0.1:0 >/dev/null 2>'%s'",
             h_bin(), S->dir, errpath);
    st = system(cmd);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 124); /* ran until timeout stopped it */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bank_template),
        cmocka_unit_test(test_refuses_another_data_key),
        cmocka_unit_test(test_attribute_create_and_read),
        cmocka_unit_test(test_attribute_bad_definitions),
        cmocka_unit_test(test_enum_values_append_only),
        cmocka_unit_test(test_attribute_roles_and_isolation),
        cmocka_unit_test(test_customer_upsert_merges),
        cmocka_unit_test(test_customer_bad_input_writes_nothing),
        cmocka_unit_test(test_personal_data_masked_and_audited),
        cmocka_unit_test(test_no_personal_data_in_clear_on_disk),
        cmocka_unit_test(test_identity_lookup),
        cmocka_unit_test(test_events_ingest_and_duplicates),
        cmocka_unit_test(test_events_mixed_batch_refused_whole),
        cmocka_unit_test(test_timeline_pages),
        cmocka_unit_test(test_segment_preview),
        cmocka_unit_test(test_segment_expression_errors),
        cmocka_unit_test(test_segment_freshness),
        cmocka_unit_test(test_tags),
        cmocka_unit_test(test_saved_segments),
        cmocka_unit_test(test_segments_after_restart),
        cmocka_unit_test(test_segment_delete_refused_while_in_use),
        cmocka_unit_test(test_identity_merge),
        cmocka_unit_test(test_import_endpoint),
        cmocka_unit_test(test_import_cli),
        cmocka_unit_test(test_demo_generator),
        cmocka_unit_test(test_refuses_to_start_without_data_key),
    };
    return cmocka_run_group_tests_name("e2e-customers", tests, group_setup, group_teardown);
}

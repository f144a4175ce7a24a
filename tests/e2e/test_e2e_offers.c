/* test_e2e_offers.c — GET /v1/customers/{no}/offers end to end on the real
 * binary: customers in and out of a campaign's audience (a saved segment)
 * and of a listing's; suitability; the ranking by priority and then the
 * soonest end; limits left and today's check-in after checking in; a
 * campaign paused, resumed and newly approved showing at once (the cached
 * catalogue is reloaded after campaign writes); the schedule and open
 * hours at the request's time (X-Siyu-Now); a listing's per-customer limit
 * used up; unknown and malformed customers; every role may read. */
#include "e2e/harness.h"

static h_server *S;
static char APP_KEY[128], ADMIN2[128], ANALYST[128];
static char WIN[256], WIN_SHORT[256];

static void make_key(h_server *s, const char *role, char *out)
{
    char *txt = NULL;
    assert_int_equal(h_cli(s, &txt, "key create --tenant demo --role %s", role), 0);
    sscanf(txt, "%127s", out);
    free(txt);
}

static void must_as(const char *key, const char *method, const char *path, const char *body,
                    long want)
{
    h_resp r = h_req(S, method, path, key, body);
    if (r.status != want)
        fail_msg("%s %s %s: %ld %s", method, path, body ? body : "", r.status, r.body);
    h_resp_free(&r);
}

static void rfc3339(long long ms, char *out, size_t n)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void launch(const char *id, const char *fields)
{
    char body[4096], path[128];
    snprintf(body, sizeof body, "{\"id\":\"%s\",%s}", id, fields);
    must_as(S->admin_key, "POST", "/v1/campaigns", body, 201);
    snprintf(path, sizeof path, "/v1/campaigns/%s:submit", id);
    must_as(S->admin_key, "POST", path, NULL, 200);
    snprintf(path, sizeof path, "/v1/campaigns/%s:approve", id);
    must_as(ADMIN2, "POST", path, NULL, 200);
}

static int group_setup(void **state)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    S = h_start("--test-clock", NULL);
    make_key(S, "app", APP_KEY);
    make_key(S, "admin", ADMIN2);
    make_key(S, "analyst", ANALYST);
    long long now = (long long)time(NULL) * 1000;
    char a[40], b[40], c[40];
    rfc3339(now - 86400000LL, a, sizeof a);
    rfc3339(now + 20 * 86400000LL, b, sizeof b);
    rfc3339(now + 5 * 86400000LL, c, sizeof c);
    snprintf(WIN, sizeof WIN, "\"starts_at\":\"%s\",\"ends_at\":\"%s\",\"point_type\":\"sun\"", a,
             b);
    snprintf(WIN_SHORT, sizeof WIN_SHORT,
             "\"starts_at\":\"%s\",\"ends_at\":\"%s\",\"point_type\":\"sun\"", a, c);
    must_as(S->admin_key, "POST", "/v1/point-types",
            "{\"code\":\"sun\",\"name\":\"阳光值\",\"expiry\":\"never\"}", 201);
    for (int i = 1; i <= 10; i++) {
        char path[64], body[200];
        snprintf(path, sizeof path, "/v1/customers/C%d", i);
        snprintf(body, sizeof body,
                 "{\"attributes\":{\"risk_level\":\"R%d\",\"risk_assessed_at\":\"2026-10-01\"}}",
                 1 + (i - 1) % 5);
        h_resp r = h_req(S, "PUT", path, S->admin_key, body);
        if (r.status != 201 && r.status != 200)
            fail_msg("PUT %s: %ld %s", path, r.status, r.body);
        h_resp_free(&r);
    }
    must_as(S->admin_key, "POST", "/v1/segments",
            "{\"id\":\"bold\",\"name\":\"bold\",\"expression\":\"risk_level >= R3\"}", 201);
    must_as(S->admin_key, "POST", "/v1/benefits/suppliers", "{\"code\":\"acme\",\"name\":\"A\"}",
            201);
    must_as(S->admin_key, "POST", "/v1/benefits/items",
            "{\"code\":\"cp5\",\"name\":\"5元立减金\",\"kind\":\"coupon\",\"supplier\":\"acme\","
            "\"face_value\":500,\"cost_price\":300,\"params\":{\"threshold\":0},\"stock\":100,"
            "\"validity_days\":30}",
            201);
    must_as(S->admin_key, "POST", "/v1/mall/listings",
            "{\"code\":\"l_all\",\"item\":\"cp5\",\"title\":\"cp5 for 10\",\"point_type\":\"sun\","
            "\"price\":10,\"limits\":{\"total\":1}}",
            201);
    must_as(S->admin_key, "POST", "/v1/mall/listings",
            "{\"code\":\"l_bold\",\"item\":\"cp5\",\"title\":\"bold only\",\"point_type\":\"sun\","
            "\"price\":20,\"segment_id\":\"bold\"}",
            201);
    char f[1024];
    snprintf(f, sizeof f,
             "\"name\":\"签到\",\"type\":\"checkin\",\"priority\":1,%s,\"limits\":{\"per_day\":1,"
             "\"per_campaign\":10},\"checkin\":{\"rewards\":[{\"day\":1,\"points\":20}]}",
             WIN);
    launch("ck", f);
    snprintf(
        f, sizeof f,
        "\"name\":\"稳健理财任务\",\"type\":\"task\",\"priority\":5,%s,\"segment_id\":\"bold\","
        "\"tasks\":[{\"code\":\"card\",\"event\":\"bind_card\",\"period\":\"campaign\","
        "\"props\":{\"card_type\":\"credit\"},\"reward\":{\"points\":9}}]",
        WIN);
    launch("bold-tasks", f);
    snprintf(f, sizeof f,
             "\"name\":\"R5产品\",\"type\":\"task\",\"priority\":5,%s,\"suitability\":"
             "{\"product_risk\":\"R5\",\"validity_days\":3650},\"tasks\":[{\"code\":\"v\","
             "\"event\":\"view\",\"period\":\"day\",\"reward\":{\"points\":1}}]",
             WIN_SHORT);
    launch("r5", f);
    return 0;
}

static int group_teardown(void **state)
{
    h_stop(S);
    curl_global_cleanup();
    return 0;
}

static json_t *offers_h(const char *key, const char *no, const char *now)
{
    char path[128];
    snprintf(path, sizeof path, "/v1/customers/%s/offers", no);
    const char *hs[] = {now, NULL};
    h_resp r = h_req_h(S, "GET", path, key, NULL, hs);
    if (r.status != 200)
        fail_msg("GET %s: %ld %s", path, r.status, r.body);
    json_t *items = json_incref(json_object_get(r.json, "items"));
    assert_int_equal(json_integer_value(json_object_get(r.json, "count")),
                     (json_int_t)json_array_size(items));
    h_resp_free(&r);
    return items;
}

static json_t *offers(const char *no)
{
    return offers_h(APP_KEY, no, NULL);
}

static const char *code_of(json_t *o)
{
    const char *c = h_str(o, "id");
    return c ? c : h_str(o, "code");
}

static json_t *find(json_t *items, const char *code)
{
    size_t i;
    json_t *v;
    json_array_foreach (items, i, v)
        if (!strcmp(code_of(v), code))
            return v;
    return NULL;
}

static void order_is(json_t *items, const char *want)
{
    char got[512] = "";
    size_t i;
    json_t *v;
    json_array_foreach (items, i, v)
        snprintf(got + strlen(got), sizeof got - strlen(got), "%s%s", i ? " " : "", code_of(v));
    if (strcmp(got, want) != 0)
        fail_msg("offers: got [%s], wanted [%s]", got, want);
}

static void test_audience_suitability_ranking(void **state)
{
    /* C1 is R1: not bold, not suitable for R5 */
    json_t *it = offers("C1");
    order_is(it, "ck l_all");
    json_decref(it);
    /* C3 is R3: bold */
    it = offers("C3");
    order_is(it, "bold-tasks ck l_all l_bold");
    json_t *t = json_object_get(find(it, "bold-tasks"), "tasks");
    assert_true(json_is_false(json_object_get(json_array_get(t, 0), "done")));
    /* the task says what it asks for: its event and the conditions on it */
    assert_string_equal(h_str(json_array_get(t, 0), "event"), "bind_card");
    assert_string_equal(h_str(json_object_get(json_array_get(t, 0), "props"), "card_type"),
                        "credit");
    json_decref(it);
    /* C5 is R5: also the R5 product, which ends sooner than the bold tasks (same priority) */
    it = offers("C5");
    order_is(it, "r5 bold-tasks ck l_all l_bold");
    json_t *l = find(it, "l_all");
    assert_int_equal(json_integer_value(json_object_get(l, "price")), 10);
    assert_int_equal(json_integer_value(json_object_get(l, "exchanges_left")), 1);
    assert_true(json_is_null(json_object_get(find(it, "l_bold"), "exchanges_left")));
    json_decref(it);
    /* every role reads */
    json_decref(offers_h(ANALYST, "C5", NULL));
    json_decref(offers_h(S->admin_key, "C5", NULL));
}

static void test_limits_after_checkin_and_exchange(void **state)
{
    json_t *it = offers("C2");
    json_t *ck = find(it, "ck");
    assert_true(json_is_false(json_object_get(json_object_get(ck, "checkin"), "checked_in_today")));
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(ck, "limits_left"), "per_day")), 1);
    json_decref(it);
    const char *hs[] = {"Idempotency-Key: off-ck-1", NULL};
    h_resp r =
        h_req_h(S, "POST", "/v1/campaigns/ck/checkin", APP_KEY, "{\"customer_no\":\"C2\"}", hs);
    assert_int_equal(r.status, 201);
    h_resp_free(&r);
    it = offers("C2");
    ck = find(it, "ck");
    assert_true(json_is_true(json_object_get(json_object_get(ck, "checkin"), "checked_in_today")));
    json_t *left = json_object_get(ck, "limits_left");
    assert_int_equal(json_integer_value(json_object_get(left, "per_day")), 0);
    assert_int_equal(json_integer_value(json_object_get(left, "per_campaign")), 9);
    assert_true(json_is_null(json_object_get(left, "per_week")));
    json_decref(it);
    /* an exchange uses up the listing's per-customer limit: it is no longer offered */
    const char *hx[] = {"Idempotency-Key: off-x-1", NULL};
    r = h_req_h(S, "POST", "/v1/mall/exchange", APP_KEY,
                "{\"customer_no\":\"C2\",\"listing\":\"l_all\"}", hx);
    assert_int_equal(r.status, 201);
    h_resp_free(&r);
    it = offers("C2");
    assert_null(find(it, "l_all"));
    assert_non_null(find(it, "ck"));
    json_decref(it);
}

static void test_campaign_changes_show_at_once(void **state)
{
    must_as(S->admin_key, "POST", "/v1/campaigns/ck:pause", NULL, 200);
    json_t *it = offers("C1");
    assert_null(find(it, "ck"));
    json_decref(it);
    must_as(S->admin_key, "POST", "/v1/campaigns/ck:resume", NULL, 200);
    it = offers("C1");
    assert_non_null(find(it, "ck"));
    json_decref(it);
    char f[1024];
    snprintf(f, sizeof f,
             "\"name\":\"新活动\",\"type\":\"checkin\",\"priority\":9,%s,"
             "\"open_hours\":{\"from\":\"09:00\",\"until\":\"10:00\"},"
             "\"checkin\":{\"rewards\":[{\"day\":1,\"points\":1}]}",
             WIN);
    launch("top", f);
    /* open hours and the schedule are judged at the request's time */
    long long now = (long long)time(NULL) * 1000;
    char day[40], hdr[96];
    time_t t = (time_t)(now / 1000 + 8 * 3600); /* Shanghai's date today */
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(day, sizeof day, "%Y-%m-%d", &tm);
    snprintf(hdr, sizeof hdr, "X-Siyu-Now: %sT09:30:00+08:00", day);
    it = offers_h(APP_KEY, "C1", hdr);
    assert_string_equal(code_of(json_array_get(it, 0)), "top");
    json_decref(it);
    snprintf(hdr, sizeof hdr, "X-Siyu-Now: %sT11:30:00+08:00", day);
    it = offers_h(APP_KEY, "C1", hdr);
    assert_null(find(it, "top"));
    json_decref(it);
    char later[40];
    rfc3339(now + 30 * 86400000LL, later, sizeof later);
    snprintf(hdr, sizeof hdr, "X-Siyu-Now: %s", later);
    it = offers_h(APP_KEY, "C1", hdr);
    assert_null(find(it, "ck")); /* ended */
    assert_non_null(find(it, "l_all"));
    json_decref(it);
    /* so do a new mall listing and a new package: at once, not at the
     * catalogue's next reload */
    it = offers("C1");
    assert_null(find(it, "l_late"));
    json_decref(it);
    must_as(S->admin_key, "POST", "/v1/mall/listings",
            "{\"code\":\"l_late\",\"item\":\"cp5\",\"title\":\"late\",\"point_type\":\"sun\","
            "\"price\":5}",
            201);
    it = offers("C1");
    assert_non_null(find(it, "l_late"));
    json_decref(it);
    must_as(S->admin_key, "POST", "/v1/benefits/packages",
            "{\"code\":\"p_late\",\"name\":\"late package\",\"items\":[{\"item\":\"cp5\"}]}", 201);
    it = offers("C1");
    assert_non_null(find(it, "l_late"));
    assert_non_null(find(it, "p_late"));
    json_decref(it);
}

static void test_unknown_and_bad_customers(void **state)
{
    h_resp r = h_req(S, "GET", "/v1/customers/NOPE/offers", APP_KEY, NULL);
    h_assert_problem(r, 404, "not-found", NULL);
    h_resp_free(&r);
    r = h_req(S, "GET", "/v1/customers/bad!/offers", APP_KEY, NULL);
    h_assert_problem(r, 400, "validation", "customer_no");
    h_resp_free(&r);
    r = h_req(S, "GET", "/v1/customers/C1/offers", NULL, NULL);
    assert_int_equal(r.status, 401);
    h_resp_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_audience_suitability_ranking),
        cmocka_unit_test(test_limits_after_checkin_and_exchange),
        cmocka_unit_test(test_campaign_changes_show_at_once),
        cmocka_unit_test(test_unknown_and_bad_customers),
    };
    return cmocka_run_group_tests_name("e2e-offers", tests, group_setup, group_teardown);
}

/* test_e2e_reports.c — the reports on the real binary: figures against
 * counts worked out by hand from the events posted, day boundaries in two
 * time zones (the same instants fall on other days in Asia/Shanghai and in
 * UTC), a segment filter, a segment with no members, CSV, every bad
 * parameter; funnels (window, breakdown), dwell percentiles, and the timed
 * events setting across a kill -9. */
#include "e2e/harness.h"

static h_server *S;
static char UTC_KEY[80];

/* Customers A..D.  Times are chosen near midnight so that the two zones
 * disagree: 2026-10-01T17:00:00Z is 10-02 01:00 in Shanghai, 10-01 in UTC. */
static const char *const EVENTS =
    "["
    /* A: 10-01 (both zones), then 10-02 01:00 Shanghai = 10-01 17:00 UTC */
    "{\"event_id\":\"a1\",\"customer_no\":\"A\",\"name\":\"login\",\"ts\":\"2026-10-01T03:00:00Z\"}"
    ","
    "{\"event_id\":\"a2\",\"customer_no\":\"A\",\"name\":\"login\",\"ts\":\"2026-10-01T17:00:00Z\"}"
    ","
    /* B: 10-02 (both zones) and 10-04 (both) */
    "{\"event_id\":\"b1\",\"customer_no\":\"B\",\"name\":\"buy_fund\",\"ts\":\"2026-10-02T05:00:"
    "00Z\"},"
    "{\"event_id\":\"b2\",\"customer_no\":\"B\",\"name\":\"login\",\"ts\":\"2026-10-04T05:00:00Z\"}"
    ","
    /* C: 10-03 23:30 UTC = 10-04 07:30 Shanghai */
    "{\"event_id\":\"c1\",\"customer_no\":\"C\",\"name\":\"login\",\"ts\":\"2026-10-03T23:30:00Z\"}"
    ","
    /* D: 09-20 (history before the range) and 10-02 */
    "{\"event_id\":\"d1\",\"customer_no\":\"D\",\"name\":\"login\",\"ts\":\"2026-09-20T05:00:00Z\"}"
    ","
    "{\"event_id\":\"d2\",\"customer_no\":\"D\",\"name\":\"login\",\"ts\":\"2026-10-02T05:00:00Z\"}"
    "]";

static void load(const char *key)
{
    const char *nos[] = {"A", "B", "C", "D"};
    for (int i = 0; i < 4; i++) {
        char path[64];
        snprintf(path, sizeof path, "/v1/customers/%s", nos[i]);
        h_resp r = h_req(S, "PUT", path, key,
                         i < 2 ? "{\"attributes\":{\"payroll\":true}}"
                               : "{\"attributes\":{\"payroll\":false}}");
        assert_true(r.status == 201 || r.status == 200);
        h_resp_free(&r);
    }
    h_resp r = h_req(S, "POST", "/v1/events", key, EVENTS);
    if (r.status != 200)
        fail_msg("events: %ld %s", r.status, r.body);
    h_resp_free(&r);
}

static int group_setup(void **state)
{
    (void)state;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    S = h_start("--test-clock", NULL); /* AUM history written at chosen times */
    assert_int_equal(h_cli(S, NULL, "tenant create utcbank --timezone UTC"), 0);
    char *out = NULL;
    assert_int_equal(h_cli(S, &out, "key create --tenant utcbank --role admin"), 0);
    sscanf(out, "%79s", UTC_KEY);
    free(out);
    load(S->admin_key); /* demo: Asia/Shanghai */
    load(UTC_KEY);
    h_resp r = h_req(S, "POST", "/v1/segments", S->admin_key,
                     "{\"id\":\"payroll\",\"name\":\"代发\",\"expression\":\"payroll = true\"}");
    assert_int_equal(r.status, 201);
    h_resp_free(&r);
    r = h_req(S, "POST", "/v1/segments", S->admin_key,
              "{\"id\":\"nobody\",\"name\":\"无\",\"expression\":\"payroll = true and payroll = "
              "false\"}");
    assert_int_equal(r.status, 201);
    h_resp_free(&r);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    h_stop(S);
    curl_global_cleanup();
    return 0;
}

static json_int_t field(json_t *row, const char *k)
{
    return json_integer_value(json_object_get(row, k));
}

/* days[i] of an activity reply must be dau/wau/mau/new as given. */
static void expect_day(json_t *days, size_t i, const char *day, int dau, int wau, int mau,
                       int fresh)
{
    json_t *d = json_array_get(days, i);
    assert_non_null(d);
    assert_string_equal(h_str(d, "day"), day);
    if (field(d, "dau") != dau || field(d, "wau") != wau || field(d, "mau") != mau ||
        field(d, "new") != fresh)
        fail_msg("%s: dau %lld wau %lld mau %lld new %lld, expected %d %d %d %d", day,
                 (long long)field(d, "dau"), (long long)field(d, "wau"), (long long)field(d, "mau"),
                 (long long)field(d, "new"), dau, wau, mau, fresh);
    assert_int_equal(field(d, "returning"), dau - fresh);
}

static void test_activity_in_two_time_zones(void **state)
{
    (void)state;
    /* Shanghai: A 10-01, 10-02; B 10-02, 10-04; C 10-04; D 09-20, 10-02 */
    h_resp r =
        h_req(S, "GET", "/v1/reports/activity?from=2026-10-01&to=2026-10-04", S->admin_key, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(h_str(r.json, "timezone"), "Asia/Shanghai");
    json_t *days = json_object_get(r.json, "days");
    assert_int_equal(json_array_size(days), 4);
    expect_day(days, 0, "2026-10-01", 1, 1, 2, 1); /* mau counts D's 09-20 */
    expect_day(days, 1, "2026-10-02", 3, 3, 3, 1); /* B new; A, D return */
    expect_day(days, 2, "2026-10-03", 0, 3, 3, 0);
    expect_day(days, 3, "2026-10-04", 2, 4, 4, 1); /* C new, B returns */
    assert_true(json_real_value(json_object_get(json_array_get(days, 1), "stickiness")) == 1.0);
    h_resp_free(&r);

    /* UTC: A 10-01 (twice); B 10-02, 10-04; C 10-03; D 09-20, 10-02 */
    r = h_req(S, "GET", "/v1/reports/activity?from=2026-10-01&to=2026-10-04", UTC_KEY, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(h_str(r.json, "timezone"), "UTC");
    days = json_object_get(r.json, "days");
    expect_day(days, 0, "2026-10-01", 1, 1, 2, 1);
    expect_day(days, 1, "2026-10-02", 2, 3, 3, 1);
    expect_day(days, 2, "2026-10-03", 1, 4, 4, 1);
    expect_day(days, 3, "2026-10-04", 1, 4, 4, 0);
    h_resp_free(&r);

    /* only buy_fund counts */
    r = h_req(S, "GET", "/v1/reports/activity?from=2026-10-02&to=2026-10-02&events=buy_fund",
              S->admin_key, NULL);
    assert_int_equal(r.status, 200);
    expect_day(json_object_get(r.json, "days"), 0, "2026-10-02", 1, 1, 1, 1);
    assert_string_equal(json_string_value(json_array_get(json_object_get(r.json, "events"), 0)),
                        "buy_fund");
    h_resp_free(&r);
}

static void test_activity_of_segments(void **state)
{
    (void)state;
    /* payroll = A and B */
    h_resp r = h_req(S, "GET", "/v1/reports/activity?from=2026-10-02&to=2026-10-04&segment=payroll",
                     S->admin_key, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(h_str(r.json, "segment"), "payroll");
    json_t *days = json_object_get(r.json, "days");
    expect_day(days, 0, "2026-10-02", 2, 2, 2, 1);
    expect_day(days, 2, "2026-10-04", 1, 2, 2, 0);
    h_resp_free(&r);
    r = h_req(S, "GET", "/v1/reports/activity?from=2026-10-01&to=2026-10-04&segment=nobody",
              S->admin_key, NULL);
    assert_int_equal(r.status, 200);
    days = json_object_get(r.json, "days");
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(field(json_array_get(days, i), "mau"), 0);
    h_resp_free(&r);
    /* an empty stretch long before any event */
    r = h_req(S, "GET", "/v1/reports/activity?from=2020-01-01&to=2020-01-03", S->admin_key, NULL);
    assert_int_equal(r.status, 200);
    expect_day(json_object_get(r.json, "days"), 2, "2020-01-03", 0, 0, 0, 0);
    h_resp_free(&r);
}

static void test_retention(void **state)
{
    (void)state;
    /* Shanghai cohorts: 10-01 {A}, 10-02 {B} (D seen on 09-20), 10-04 {C} */
    h_resp r = h_req(S, "GET", "/v1/reports/retention?from=2026-10-01&to=2026-10-04&periods=4",
                     S->admin_key, NULL);
    assert_int_equal(r.status, 200);
    json_t *cs = json_object_get(r.json, "cohorts");
    assert_int_equal(json_array_size(cs), 4);
    json_t *c0 = json_array_get(cs, 0), *c1 = json_array_get(cs, 1);
    assert_string_equal(h_str(c0, "day"), "2026-10-01");
    assert_int_equal(field(c0, "size"), 1);
    json_t *ret = json_object_get(c0, "retained"), *later = json_object_get(c0, "on_or_after");
    assert_int_equal(json_array_size(ret), 4);
    assert_int_equal(json_integer_value(json_array_get(ret, 0)), 1);
    assert_int_equal(json_integer_value(json_array_get(ret, 1)), 1); /* A on 10-02 */
    assert_int_equal(json_integer_value(json_array_get(ret, 2)), 0);
    assert_int_equal(json_integer_value(json_array_get(later, 2)), 0);
    assert_int_equal(field(c1, "size"), 1); /* B */
    ret = json_object_get(c1, "retained");
    later = json_object_get(c1, "on_or_after");
    assert_int_equal(json_integer_value(json_array_get(ret, 1)), 0);
    assert_int_equal(json_integer_value(json_array_get(later, 1)), 1); /* B back on 10-04 */
    assert_int_equal(json_integer_value(json_array_get(ret, 2)), 1);
    assert_true(json_real_value(json_array_get(json_object_get(c1, "retained_rate"), 2)) == 1.0);
    assert_int_equal(field(json_array_get(cs, 2), "size"), 0);
    h_resp_free(&r);

    /* cohorts by first buy_fund, returns by login: B bought 10-02, logged in 10-04 */
    r = h_req(S, "GET",
              "/v1/reports/retention?from=2026-10-02&to=2026-10-02&periods=3"
              "&cohort_event=buy_fund&return_event=login",
              S->admin_key, NULL);
    assert_int_equal(r.status, 200);
    c0 = json_array_get(json_object_get(r.json, "cohorts"), 0);
    assert_int_equal(field(c0, "size"), 1);
    ret = json_object_get(c0, "retained");
    assert_int_equal(json_integer_value(json_array_get(ret, 0)), 0);
    assert_int_equal(json_integer_value(json_array_get(ret, 2)), 1);
    h_resp_free(&r);
}

static void test_csv(void **state)
{
    (void)state;
    h_resp r = h_req(S, "GET", "/v1/reports/activity?from=2026-10-01&to=2026-10-02&format=csv",
                     S->admin_key, NULL);
    assert_int_equal(r.status, 200);
    char ct[128] = "";
    assert_true(h_header(&r, "Content-Type", ct, sizeof ct));
    assert_string_equal(ct, "text/csv; charset=utf-8");
    assert_string_equal(r.body, "day,dau,wau,mau,new,returning,stickiness\r\n"
                                "2026-10-01,1,1,2,1,0,0.500000\r\n"
                                "2026-10-02,3,3,3,1,2,1.000000\r\n");
    h_resp_free(&r);
    r = h_req(S, "GET", "/v1/reports/retention?from=2026-10-01&to=2026-10-01&periods=2&format=csv",
              S->admin_key, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body,
                        "cohort,size,period,retained,retained_rate,on_or_after,on_or_after_rate\r\n"
                        "2026-10-01,1,0,1,1.000000,1,1.000000\r\n"
                        "2026-10-01,1,1,1,1.000000,1,1.000000\r\n");
    h_resp_free(&r);
}

static double real_of(json_t *o, const char *k)
{
    return json_real_value(json_object_get(o, k));
}

static void test_kpis(void **state)
{
    (void)state;
    h_resp r = h_req(S, "PUT", "/v1/customers/A", S->admin_key,
                     "{\"identities\":[{\"type\":\"app_user_id\",\"value\":\"ua\"}]}");
    assert_int_equal(r.status, 200);
    h_resp_free(&r);
    r = h_req(S, "PUT", "/v1/customers/B", S->admin_key,
              "{\"identities\":[{\"type\":\"wechat_openid\",\"value\":\"ob\"},"
              "{\"type\":\"phone\",\"value\":\"13800138000\"}]}");
    assert_int_equal(r.status, 200);
    h_resp_free(&r);
    /* 10-03..10-04 against 10-01..10-02: active {B, C}, before {A, B, D}: A and D churned */
    r = h_req(S, "GET", "/v1/reports/kpis?from=2026-10-03&to=2026-10-04", S->admin_key, NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(field(r.json, "customers"), 4);
    assert_int_equal(field(r.json, "active"), 2);
    assert_int_equal(field(r.json, "active_previous"), 3);
    assert_int_equal(field(r.json, "churned"), 2);
    assert_true(real_of(r.json, "churn_rate") == 2.0 / 3.0);
    assert_true(real_of(r.json, "active_rate") == 0.5);
    assert_string_equal(h_str(json_object_get(r.json, "previous"), "from"), "2026-10-01");
    /* reachable: A (app) and B (WeChat); a phone number alone does not count */
    assert_int_equal(field(r.json, "reachable"), 2);
    assert_int_equal(field(r.json, "reachable_app"), 1);
    assert_int_equal(field(r.json, "reachable_wechat"), 1);
    assert_int_equal(field(r.json, "reachable_wecom"), 0);
    assert_true(real_of(r.json, "coverage_rate") == 0.5);
    assert_int_equal(field(r.json, "purchasers"), 0);
    h_resp_free(&r);
    /* 10-01..10-04: purchases are buy_* (B once); with logins as purchases A twice */
    r = h_req(S, "GET", "/v1/reports/kpis?from=2026-10-01&to=2026-10-04", S->admin_key, NULL);
    assert_int_equal(field(r.json, "active"), 4);
    assert_int_equal(field(r.json, "purchasers"), 1);
    assert_int_equal(field(r.json, "repurchasers"), 0);
    h_resp_free(&r);
    r = h_req(S, "GET", "/v1/reports/kpis?from=2026-10-01&to=2026-10-04&purchase_events=login",
              S->admin_key, NULL);
    assert_int_equal(field(r.json, "purchasers"), 4);
    assert_int_equal(field(r.json, "repurchasers"), 1);
    assert_true(real_of(r.json, "repurchase_rate") == 0.25);
    h_resp_free(&r);
    /* a segment: payroll = A, B */
    r = h_req(S, "GET", "/v1/reports/kpis?from=2026-10-03&to=2026-10-04&segment=payroll&format=csv",
              S->admin_key, NULL);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "metric,value\r\ncustomers,2\r\nreachable,2\r\n"));
    assert_non_null(strstr(r.body, "\r\nactive,1\r\n"));
    assert_non_null(strstr(r.body, "\r\nchurned,1\r\nchurn_rate,0.500000\r\n"));
    h_resp_free(&r);
    r = h_req(S, "GET", "/v1/reports/kpis?purchase_events=Buy", S->admin_key, NULL);
    h_assert_problem(r, 400, "validation", "purchase_events");
    h_resp_free(&r);

    /* AUM movement from the history of aum: A 1000 on 09-25 then 3000 on 10-03; B 500 on
     * 09-01; C 700 on 10-04; D none.  In 10-03..10-04 B and C are active, A and D not. */
    static const struct {
        const char *no, *at, *body;
    } aum[] = {{"A", "2026-09-25T10:00:00+08:00", "{\"attributes\":{\"aum\":1000}}"},
               {"A", "2026-10-03T12:00:00+08:00", "{\"attributes\":{\"aum\":3000}}"},
               {"B", "2026-09-01T10:00:00+08:00", "{\"attributes\":{\"aum\":500}}"},
               {"B", "2026-09-02T10:00:00+08:00", "{\"attributes\":{\"aum\":500}}"},
               {"C", "2026-10-04T23:00:00+08:00", "{\"attributes\":{\"aum\":700}}"}};
    for (size_t i = 0; i < SY_TEST_LEN(aum); i++) {
        char path[64], now[80];
        snprintf(path, sizeof path, "/v1/customers/%s", aum[i].no);
        snprintf(now, sizeof now, "X-Siyu-Now: %s", aum[i].at);
        const char *hdr[] = {now, NULL};
        r = h_req_h(S, "PUT", path, S->admin_key, aum[i].body, hdr);
        assert_int_equal(r.status, 200);
        h_resp_free(&r);
    }
    r = h_req(S, "GET", "/v1/reports/kpis?from=2026-10-03&to=2026-10-04", S->admin_key, NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(field(r.json, "aum_active_start"), 500);
    assert_int_equal(field(r.json, "aum_active_end"), 1200);
    assert_int_equal(field(r.json, "aum_active_change"), 700);
    assert_int_equal(field(r.json, "aum_inactive_start"), 1000);
    assert_int_equal(field(r.json, "aum_inactive_end"), 3000);
    assert_int_equal(field(r.json, "aum_inactive_change"), 2000);
    h_resp_free(&r);
    /* the same value again writes no history row */
    char sql[800];
    snprintf(sql, sizeof sql,
             "sqlite3 '%s/siyu.db' \"SELECT count(*) FROM attr_history WHERE customer_no = 'B'\"",
             S->data);
    FILE *p = popen(sql, "r");
    char buf[32] = "";
    assert_non_null(fgets(buf, sizeof buf, p));
    pclose(p);
    assert_string_equal(buf, "1\n");
}

static void test_bad_parameters(void **state)
{
    (void)state;
    static const struct {
        const char *path, *field;
    } bad[] = {
        {"/v1/reports/activity?from=2026-13-01", "from"},
        {"/v1/reports/activity?to=yesterday", "to"},
        {"/v1/reports/activity?from=2026-10-05&to=2026-10-01", "to"},
        {"/v1/reports/activity?from=2024-01-01&to=2026-01-01", "to"},
        {"/v1/reports/activity?format=xml", "format"},
        {"/v1/reports/activity?events=Login", "events"},
        {"/v1/reports/activity?events=login,,buy", "events"},
        {"/v1/reports/activity?segment=no_such", "segment"},
        {"/v1/reports/activity?segment=../x", "segment"},
        {"/v1/reports/retention?periods=0", "periods"},
        {"/v1/reports/retention?periods=91", "periods"},
        {"/v1/reports/retention?periods=3x", "periods"},
        {"/v1/reports/retention?cohort_event=a-b", "cohort_event"},
        {"/v1/reports/retention?return_event=", "return_event"},
        {"/v1/reports/retention?from=2026-02-30", "from"},
        {"/v1/reports/funnel", "steps"},
        {"/v1/reports/funnel?steps=login", "steps"},
        {"/v1/reports/funnel?steps=a,b,c,d,e,f,g,h,i,j,k", "steps"},
        {"/v1/reports/funnel?steps=login,Buy", "steps"},
        {"/v1/reports/funnel?steps=login,buy_fund&window=0d", "window"},
        {"/v1/reports/funnel?steps=login,buy_fund&window=91d", "window"},
        {"/v1/reports/funnel?steps=login,buy_fund&window=7w", "window"},
        {"/v1/reports/funnel?steps=login,buy_fund&window=d", "window"},
        {"/v1/reports/funnel?steps=login,buy_fund&breakdown=aum", "breakdown"},
        {"/v1/reports/funnel?steps=login,buy_fund&breakdown=no_such", "breakdown"},
        {"/v1/reports/funnel?steps=login,buy_fund&segment=no_such", "segment"},
        {"/v1/reports/funnel?steps=login,buy_fund&from=2026-10-02&to=2026-10-01", "to"},
        {"/v1/reports/dwell", "event"},
        {"/v1/reports/dwell?event=a,b", "event"},
        {"/v1/reports/dwell?event=view_wealth&format=pdf", "format"},
    };
    for (size_t i = 0; i < SY_TEST_LEN(bad); i++) {
        h_resp r = h_req(S, "GET", bad[i].path, S->admin_key, NULL);
        h_assert_problem(r, 400, "validation", bad[i].field);
        h_resp_free(&r);
    }
    /* an app key may not read reports */
    char *out = NULL;
    assert_int_equal(h_cli(S, &out, "key create --tenant demo --role app"), 0);
    char app[80] = "";
    sscanf(out, "%79s", app);
    free(out);
    h_resp r = h_req(S, "GET", "/v1/reports/activity", app, NULL);
    h_assert_problem(r, 403, "forbidden", NULL);
    h_resp_free(&r);
}

/* ---- funnels, dwell and the timed events, on a tenant of their own ----
 *
 * 2026-10-10 in Shanghai (UTC+8).  F1: login 10:00, view_wealth 10:05
 * (dwell 30 s), buy_fund 10:20.  F2: login 10:00, view_wealth 11:30 (90 s).
 * F3: login 10:00, buy_fund 10:10.  F4: view_wealth 09:00 (10 s) only. */
static char FB_KEY[80];

static void funnel_bank(void)
{
    if (FB_KEY[0])
        return;
    assert_int_equal(h_cli(S, NULL, "tenant create funnelbank --timezone Asia/Shanghai"), 0);
    char *out = NULL;
    assert_int_equal(h_cli(S, &out, "key create --tenant funnelbank --role admin"), 0);
    sscanf(out, "%79s", FB_KEY);
    free(out);
    const char *cust[][2] = {{"F1", "{\"attributes\":{\"risk_level\":\"R3\"}}"},
                             {"F2", "{\"attributes\":{\"risk_level\":\"R2\"}}"},
                             {"F3", "{\"attributes\":{}}"},
                             {"F4", "{\"attributes\":{\"risk_level\":\"R2\"}}"}};
    for (int i = 0; i < 4; i++) {
        char path[64];
        snprintf(path, sizeof path, "/v1/customers/%s", cust[i][0]);
        h_resp r = h_req(S, "PUT", path, FB_KEY, cust[i][1]);
        assert_int_equal(r.status, 201);
        h_resp_free(&r);
    }
    static const char *const evs[] = {
        "\"event_id\":\"1\",\"customer_no\":\"F1\",\"name\":\"login\",\"ts\":\"2026-10-10T10:00:00+"
        "08:00\"",
        "\"event_id\":\"2\",\"customer_no\":\"F1\",\"name\":\"view_wealth\",\"ts\":\"2026-10-10T10:"
        "05:00+08:00\","
        "\"dwell_ms\":30000",
        "\"event_id\":\"3\",\"customer_no\":\"F1\",\"name\":\"buy_fund\",\"ts\":\"2026-10-10T10:20:"
        "00+08:00\"",
        "\"event_id\":\"4\",\"customer_no\":\"F2\",\"name\":\"login\",\"ts\":\"2026-10-10T10:00:00+"
        "08:00\"",
        "\"event_id\":\"5\",\"customer_no\":\"F2\",\"name\":\"view_wealth\",\"ts\":\"2026-10-10T11:"
        "30:00+08:00\","
        "\"dwell_ms\":90000",
        "\"event_id\":\"6\",\"customer_no\":\"F3\",\"name\":\"login\",\"ts\":\"2026-10-10T10:00:00+"
        "08:00\"",
        "\"event_id\":\"7\",\"customer_no\":\"F3\",\"name\":\"buy_fund\",\"ts\":\"2026-10-10T10:10:"
        "00+08:00\"",
        "\"event_id\":\"8\",\"customer_no\":\"F4\",\"name\":\"view_wealth\",\"ts\":\"2026-10-10T09:"
        "00:00+08:00\","
        "\"dwell_ms\":10000",
    };
    char body[2048] = "[";
    for (size_t i = 0; i < SY_TEST_LEN(evs); i++) {
        strcat(body, i ? ",{" : "{");
        strcat(body, evs[i]);
        strcat(body, "}");
    }
    strcat(body, "]");
    h_resp r = h_req(S, "POST", "/v1/events", FB_KEY, body);
    if (r.status != 200)
        fail_msg("events: %ld %s", r.status, r.body);
    h_resp_free(&r);
}

/* steps[k] of a funnel reply: customers and median as given (-1: null). */
static void expect_step(json_t *steps, size_t k, const char *name, int customers, int median)
{
    json_t *st = json_array_get(steps, k);
    assert_non_null(st);
    assert_string_equal(h_str(st, "name"), name);
    assert_int_equal(field(st, "customers"), customers);
    json_t *m = json_object_get(st, "median_ms_from_previous");
    if (median < 0)
        assert_true(json_is_null(m));
    else
        assert_int_equal(json_integer_value(m), median);
}

static void test_funnel(void **state)
{
    (void)state;
    funnel_bank();
    const char *base = "/v1/reports/funnel?steps=login,view_wealth,buy_fund&from=2026-10-10"
                       "&to=2026-10-10";
    char path[256];
    /* within an hour: F2's view (90 min) is too late */
    snprintf(path, sizeof path, "%s&window=1h", base);
    h_resp r = h_req(S, "GET", path, FB_KEY, NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(field(r.json, "window_ms"), 3600000);
    json_t *steps = json_object_get(r.json, "steps");
    expect_step(steps, 0, "login", 3, -1);
    expect_step(steps, 1, "view_wealth", 1, 300000);
    expect_step(steps, 2, "buy_fund", 1, 900000);
    assert_true(json_is_null(json_object_get(r.json, "breakdown")));
    h_resp_free(&r);
    /* within a day (the default is 7 days: the same here), by risk level */
    snprintf(path, sizeof path, "%s&window=1d&breakdown=risk_level", base);
    r = h_req(S, "GET", path, FB_KEY, NULL);
    assert_int_equal(r.status, 200);
    steps = json_object_get(r.json, "steps");
    expect_step(steps, 0, "login", 3, -1);
    expect_step(steps, 1, "view_wealth", 2, 300000); /* nearest rank of 5 and 90 minutes */
    expect_step(steps, 2, "buy_fund", 1, 900000);
    assert_true(json_real_value(json_object_get(json_array_get(steps, 1),
                                                "conversion_from_previous")) == 2.0 / 3.0);
    json_t *groups = json_object_get(json_object_get(r.json, "breakdown"), "groups");
    assert_int_equal(json_array_size(groups), 3); /* R2, R3, no value */
    assert_string_equal(h_str(json_array_get(groups, 0), "value"), "R2");
    expect_step(json_object_get(json_array_get(groups, 0), "steps"), 1, "view_wealth", 1, 5400000);
    assert_string_equal(h_str(json_array_get(groups, 1), "value"), "R3");
    expect_step(json_object_get(json_array_get(groups, 1), "steps"), 2, "buy_fund", 1, 900000);
    assert_true(json_is_null(json_object_get(json_array_get(groups, 2), "value")));
    expect_step(json_object_get(json_array_get(groups, 2), "steps"), 0, "login", 1, -1);
    expect_step(json_object_get(json_array_get(groups, 2), "steps"), 1, "view_wealth", 0, -1);
    h_resp_free(&r);
    /* CSV */
    snprintf(path, sizeof path, "%s&window=1h&format=csv", base);
    r = h_req(S, "GET", path, FB_KEY, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "group,step,event,customers,conversion_from_previous,"
                                "conversion_from_first,median_ms_from_previous\r\n"
                                "all,1,login,3,1.000000,1.000000,\r\n"
                                "all,2,view_wealth,1,0.333333,0.333333,300000\r\n"
                                "all,3,buy_fund,1,1.000000,0.333333,900000\r\n");
    h_resp_free(&r);
    /* the day before: no entries */
    r = h_req(S, "GET", "/v1/reports/funnel?steps=login,buy_fund&from=2026-10-09&to=2026-10-09",
              FB_KEY, NULL);
    assert_int_equal(r.status, 200);
    expect_step(json_object_get(r.json, "steps"), 0, "login", 0, -1);
    assert_true(json_real_value(json_object_get(json_array_get(json_object_get(r.json, "steps"), 1),
                                                "conversion_from_first")) == 0.0);
    assert_null(json_object_get(r.json, "warnings")); /* both names were recorded */
    h_resp_free(&r);
    /* a misspelt step counts no one, and the answer says why */
    r = h_req(S, "GET", "/v1/reports/funnel?steps=login,veiw_wealth&from=2026-10-10&to=2026-10-10",
              FB_KEY, NULL);
    assert_int_equal(r.status, 200);
    json_t *w = json_object_get(r.json, "warnings");
    assert_int_equal(json_array_size(w), 1);
    assert_non_null(strstr(json_string_value(json_array_get(w, 0)), "'veiw_wealth'"));
    h_resp_free(&r);
}

static void test_dwell(void **state)
{
    (void)state;
    funnel_bank();
    h_resp r = h_req(S, "GET", "/v1/reports/dwell?event=view_wealth&from=2026-10-09&to=2026-10-10",
                     FB_KEY, NULL);
    assert_int_equal(r.status, 200);
    json_t *days = json_object_get(r.json, "days");
    assert_int_equal(json_array_size(days), 2);
    json_t *d0 = json_array_get(days, 0), *d1 = json_array_get(days, 1);
    assert_int_equal(field(d0, "events"), 0);
    assert_true(json_is_null(json_object_get(d0, "p50_ms")));
    assert_string_equal(h_str(d1, "day"), "2026-10-10");
    assert_int_equal(field(d1, "events"), 3);
    assert_int_equal(field(d1, "p50_ms"), 30000); /* of 10, 30 and 90 s */
    assert_int_equal(field(d1, "p90_ms"), 90000);
    assert_int_equal(field(d1, "p99_ms"), 90000);
    assert_int_equal(field(d1, "max_ms"), 90000);
    assert_int_equal(field(json_object_get(r.json, "total"), "events"), 3);
    h_resp_free(&r);
    r = h_req(S, "GET",
              "/v1/reports/dwell?event=view_wealth&from=2026-10-10&to=2026-10-10&format=csv",
              FB_KEY, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "day,events,p50_ms,p90_ms,p99_ms,max_ms,mean_ms\r\n"
                                "2026-10-10,3,30000,90000,90000,90000,43333.333\r\n"
                                "total,3,30000,90000,90000,90000,43333.333\r\n");
    h_resp_free(&r);
}

/* Timing fewer names takes effect at once and survives kill -9; timing
 * them again reads their times back from the store. */
static void test_timed_events_setting(void **state)
{
    (void)state;
    funnel_bank();
    const char *f = "/v1/reports/funnel?steps=login,view_wealth,buy_fund&from=2026-10-10"
                    "&to=2026-10-10&window=1d";
    h_resp r = h_req(S, "GET", "/v1/reports/settings", FB_KEY, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(r.json, "timed_events"), 0)), "*");
    assert_true(field(r.json, "times_memory_bytes") > 0);
    h_resp_free(&r);
    r = h_req(S, "PUT", "/v1/reports/settings", FB_KEY, "{\"timed_events\":[\"view_wealth\"]}");
    assert_int_equal(r.status, 200);
    json_t *events = json_object_get(r.json, "events");
    assert_int_equal(json_array_size(events), 3); /* buy_fund, login, view_wealth */
    assert_string_equal(h_str(json_array_get(events, 1), "name"), "login");
    assert_false(json_is_true(json_object_get(json_array_get(events, 1), "timed")));
    assert_true(json_is_true(json_object_get(json_array_get(events, 2), "timed")));
    h_resp_free(&r);
    r = h_req(S, "GET", f, FB_KEY, NULL);
    h_assert_problem(r, 400, "validation", "steps");
    h_resp_free(&r);
    /* kill -9 and start again: the setting holds */
    assert_int_equal(h_signal_wait(S, SIGKILL), 128 + SIGKILL);
    h_launch(S);
    r = h_req(S, "GET", f, FB_KEY, NULL);
    h_assert_problem(r, 400, "validation", "steps");
    h_resp_free(&r);
    r = h_req(S, "GET", "/v1/reports/dwell?event=view_wealth&from=2026-10-10&to=2026-10-10", FB_KEY,
              NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(field(json_object_get(r.json, "total"), "events"), 3);
    h_resp_free(&r);
    r = h_req(S, "PUT", "/v1/reports/settings", FB_KEY, "{\"timed_events\":[\"*\"]}");
    assert_int_equal(r.status, 200);
    h_resp_free(&r);
    r = h_req(S, "GET", f, FB_KEY, NULL);
    assert_int_equal(r.status, 200);
    expect_step(json_object_get(r.json, "steps"), 0, "login", 3, -1);
    expect_step(json_object_get(r.json, "steps"), 2, "buy_fund", 1, 900000);
    h_resp_free(&r);
    /* bad settings write nothing */
    static const char *const bad[] = {"{}",
                                      "{\"timed_events\":\"*\"}",
                                      "{\"timed_events\":[\"*\",\"login\"]}",
                                      "{\"timed_events\":[\"Login\"]}",
                                      "{\"timed_events\":[\"a\",\"a\"]}",
                                      "{\"timed_events\":[],\"x\":1}"};
    for (size_t i = 0; i < SY_TEST_LEN(bad); i++) {
        r = h_req(S, "PUT", "/v1/reports/settings", FB_KEY, bad[i]);
        assert_int_equal(r.status, 400);
        h_resp_free(&r);
    }
    r = h_req(S, "GET", "/v1/reports/settings", FB_KEY, NULL);
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(r.json, "timed_events"), 0)), "*");
    h_resp_free(&r);
    /* an analyst reads the setting but may not change it */
    char *out = NULL;
    assert_int_equal(h_cli(S, &out, "key create --tenant funnelbank --role analyst"), 0);
    char analyst[80] = "";
    sscanf(out, "%79s", analyst);
    free(out);
    r = h_req(S, "GET", "/v1/reports/settings", analyst, NULL);
    assert_int_equal(r.status, 200);
    h_resp_free(&r);
    r = h_req(S, "PUT", "/v1/reports/settings", analyst, "{\"timed_events\":[]}");
    h_assert_problem(r, 403, "forbidden", NULL);
    h_resp_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_activity_in_two_time_zones),
        cmocka_unit_test(test_activity_of_segments),
        cmocka_unit_test(test_retention),
        cmocka_unit_test(test_csv),
        cmocka_unit_test(test_kpis),
        cmocka_unit_test(test_bad_parameters),
        cmocka_unit_test(test_funnel),
        cmocka_unit_test(test_dwell),
        cmocka_unit_test(test_timed_events_setting),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

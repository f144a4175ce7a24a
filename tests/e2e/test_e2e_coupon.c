/* test_e2e_coupon.c — coupon drops (限时抢券) end to end on the real binary
 * (--test-clock): a drop in two daily waves (not started before the first
 * wave, a claim and its idempotent replay, the per-wave and per-campaign
 * limits, a sold-out wave and the next one, the blocklist), the customer's
 * offers, today's waves, the campaign report and `siyu check`; the
 * not-eligible cases, a wrong type and the rate limit of claims; 64
 * concurrent clients against a 100-unit wave (exactly 100 grants) and
 * against a budget running out mid-burst; bad definitions and claims (400
 * naming the field, nothing written); and kill -9 during a run of claims
 * (every acknowledged claim there after the restart, `siyu check`
 * passing). */
#include "e2e/harness.h"

static h_server *S;
static char APP_KEY[128], ADMIN2[128];

#define CUSTOMERS 300

static void make_key(h_server *s, const char *role, char *out)
{
    char *txt = NULL;
    assert_int_equal(h_cli(s, &txt, "key create --tenant demo --role %s", role), 0);
    sscanf(txt, "%127s", out);
    free(txt);
}

static h_resp at(const char *now, const char *key, const char *method, const char *path,
                 const char *body, const char *idem, const char *extra)
{
    char hnow[96], hkey[160];
    snprintf(hnow, sizeof hnow, "X-Siyu-Now: %s", now);
    snprintf(hkey, sizeof hkey, "Idempotency-Key: %s", idem ? idem : "");
    const char *hs[] = {hnow, idem ? hkey : extra, idem ? extra : NULL, NULL};
    return h_req_h(S, method, path, key, body, hs);
}

static void must_at(const char *now, const char *key, const char *method, const char *path,
                    const char *body, long want)
{
    h_resp r = at(now, key, method, path, body, NULL, NULL);
    if (r.status != want)
        fail_msg("%s %s %s: %ld %s", method, path, body ? body : "", r.status, r.body);
    h_resp_free(&r);
}

#define DEC5 "2026-12-05T12:00:00+08:00"

static void assert_check_passes(void)
{
    char *out = NULL;
    int rc = h_cli(S, &out, "check --tenant demo");
    if (rc != 0 || !strstr(out, "coupons:") || !strstr(out, "every invariant holds"))
        fail_msg("siyu check exited %d:\n%s", rc, out ? out : "");
    free(out);
}

/* A coupon drop with the given extra members and section, approved. */
static void launch(const char *id, const char *fields, const char *section)
{
    char body[4096], path[160];
    snprintf(body, sizeof body,
             "{\"id\":\"%s\",\"name\":\"限时抢券\",\"type\":\"coupon_drop\",\"starts_at\":"
             "\"2026-12-01T00:00:00+08:00\",\"ends_at\":\"2027-01-01T00:00:00+08:00\"%s%s,"
             "\"coupon_drop\":%s}",
             id, fields[0] ? "," : "", fields, section);
    must_at(DEC5, S->admin_key, "POST", "/v1/campaigns", body, 201);
    snprintf(path, sizeof path, "/v1/campaigns/%s:submit", id);
    must_at(DEC5, S->admin_key, "POST", path, NULL, 200);
    snprintf(path, sizeof path, "/v1/campaigns/%s:approve", id);
    must_at(DEC5, ADMIN2, "POST", path, NULL, 200);
}

static h_resp claim_on(CURL *c, const char *now, const char *id, const char *no, const char *idem,
                       const char *extra)
{
    char path[128], body[160], hnow[96], hkey[160];
    snprintf(path, sizeof path, "/v1/campaigns/%s/claim", id);
    snprintf(body, sizeof body, "{\"customer_no\":\"%s\"}", no);
    snprintf(hnow, sizeof hnow, "X-Siyu-Now: %s", now);
    snprintf(hkey, sizeof hkey, "Idempotency-Key: %s", idem);
    const char *hs[] = {hnow, hkey, extra, NULL};
    return h_req_on(c, S, "POST", path, APP_KEY, body, strlen(body), hs);
}

static h_resp claim(const char *now, const char *id, const char *no, const char *extra)
{
    static int seq;
    char idem[64];
    snprintf(idem, sizeof idem, "c-%d-%ld", ++seq, (long)getpid());
    CURL *c = curl_easy_init();
    h_resp r = claim_on(c, now, id, no, idem, extra);
    curl_easy_cleanup(c);
    return r;
}

static void expect(h_resp r, long status, const char *type)
{
    if (r.status != status || (type && (!r.json || strcmp(h_str(r.json, "type"), type) != 0)))
        fail_msg("want %ld %s, got %ld %s", status, type ? type : "", r.status, r.body);
}

static int group_setup(void **state)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    S = h_start("--test-clock", NULL);
    make_key(S, "app", APP_KEY);
    make_key(S, "admin", ADMIN2);
    must_at(DEC5, S->admin_key, "POST", "/v1/benefits/suppliers",
            "{\"code\":\"wx\",\"name\":\"微信支付\"}", 201);
    must_at(DEC5, S->admin_key, "POST", "/v1/benefits/items",
            "{\"code\":\"cp5\",\"name\":\"5元立减金\",\"kind\":\"coupon\",\"supplier\":\"wx\","
            "\"face_value\":500,\"cost_price\":500,\"params\":{\"threshold\":0},"
            "\"stock\":100000,\"validity_days\":7}",
            201);
    for (int i = 1; i <= CUSTOMERS; i++) {
        char path[64];
        snprintf(path, sizeof path, "/v1/customers/C%d", i);
        must_at(DEC5, S->admin_key, "PUT", path, "{}", 201);
    }
    return 0;
}

static int group_teardown(void **state)
{
    h_stop(S);
    curl_global_cleanup();
    return 0;
}

/* ---- the flow ---- */

static void test_claim_flow(void **state)
{
    launch("drop", "\"limits\":{\"per_campaign\":2},\"budget\":{\"cost\":1000000}",
           "{\"item\":\"cp5\",\"quantity_per_wave\":3,\"waves\":[{\"at\":\"10:00\"},"
           "{\"at\":\"20:00\",\"quantity\":2}]}");
    /* before the first wave of the day */
    h_resp r = claim("2026-12-05T09:59:00+08:00", "drop", "C1", NULL);
    expect(r, 409, "not-started");
    assert_string_equal(h_str(r.json, "next_wave_at"), "2026-12-05T02:00:00.000Z");
    h_resp_free(&r);
    /* the first claim of the 10:00 wave, and its replay */
    CURL *c = curl_easy_init();
    r = claim_on(c, "2026-12-05T10:00:00+08:00", "drop", "C1", "flow-1", NULL);
    expect(r, 201, NULL);
    char id[64];
    snprintf(id, sizeof id, "%s", h_str(r.json, "claim"));
    assert_string_equal(h_str(r.json, "item"), "cp5");
    assert_int_equal(json_integer_value(json_object_get(r.json, "wave")), 0);
    assert_int_equal(json_integer_value(json_object_get(r.json, "wave_remaining")), 2);
    assert_int_equal(json_integer_value(json_object_get(r.json, "claims_left_in_wave")), 0);
    assert_string_equal(h_str(r.json, "next_wave_at"), "2026-12-05T12:00:00.000Z");
    assert_true(strlen(h_str(r.json, "grant")) > 0);
    h_resp_free(&r);
    r = claim_on(c, "2026-12-05T10:00:00+08:00", "drop", "C1", "flow-1", NULL);
    expect(r, 201, NULL);
    char replayed[16];
    assert_true(h_header(&r, "Idempotent-Replayed", replayed, sizeof replayed));
    assert_string_equal(h_str(r.json, "claim"), id);
    h_resp_free(&r);
    curl_easy_cleanup(c);
    /* one per customer and wave */
    r = claim("2026-12-05T10:01:00+08:00", "drop", "C1", NULL);
    expect(r, 409, "limit-reached");
    assert_string_equal(h_str(r.json, "limit"), "wave");
    h_resp_free(&r);
    /* the wave's three units go, then it is sold out until 20:00 */
    r = claim("2026-12-05T10:02:00+08:00", "drop", "C2", NULL);
    expect(r, 201, NULL);
    h_resp_free(&r);
    r = claim("2026-12-05T10:03:00+08:00", "drop", "C3", NULL);
    expect(r, 201, NULL);
    assert_int_equal(json_integer_value(json_object_get(r.json, "wave_remaining")), 0);
    h_resp_free(&r);
    r = claim("2026-12-05T19:59:00+08:00", "drop", "C4", NULL);
    expect(r, 409, "wave-sold-out");
    assert_string_equal(h_str(r.json, "next_wave_at"), "2026-12-05T12:00:00.000Z");
    h_resp_free(&r);
    /* the 20:00 wave: C1's second claim in the campaign is its last */
    r = claim("2026-12-05T20:00:00+08:00", "drop", "C1", NULL);
    expect(r, 201, NULL);
    assert_int_equal(json_integer_value(json_object_get(r.json, "wave")), 1);
    assert_string_equal(h_str(r.json, "next_wave_at"), "2026-12-06T02:00:00.000Z");
    h_resp_free(&r);
    r = claim("2026-12-06T10:00:00+08:00", "drop", "C1", NULL);
    expect(r, 409, "limit-reached");
    assert_string_equal(h_str(r.json, "limit"), "campaign");
    h_resp_free(&r);
    /* a blocked device is refused before anything else */
    must_at(DEC5, S->admin_key, "POST", "/v1/abuse/blocklist",
            "{\"kind\":\"device\",\"value\":\"farm-1\",\"reason\":\"t\"}", 201);
    r = claim("2026-12-05T20:01:00+08:00", "drop", "C5", "X-Device-Id: farm-1");
    expect(r, 403, "blocked");
    h_resp_free(&r);
    /* C2's offers at 20:30: the drop with one claim left in the 20:00 wave */
    r = at("2026-12-05T20:30:00+08:00", APP_KEY, "GET", "/v1/customers/C2/offers", NULL, NULL,
           NULL);
    expect(r, 200, NULL);
    json_t *items = json_object_get(r.json, "items"), *v, *drop = NULL;
    size_t i;
    json_array_foreach (items, i, v)
        if (!strcmp(h_str(v, "id"), "drop"))
            drop = json_object_get(v, "coupon_drop");
    if (!drop)
        fail_msg("no coupon drop among the offers: %s", r.body);
    assert_int_equal(json_integer_value(json_object_get(drop, "wave")), 1);
    assert_int_equal(json_integer_value(json_object_get(drop, "wave_remaining")), 1);
    assert_int_equal(json_integer_value(json_object_get(drop, "claims_left")), 1);
    assert_string_equal(h_str(drop, "next_wave_at"), "2026-12-06T02:00:00.000Z");
    h_resp_free(&r);
    /* C1 has used its campaign limit: nothing left */
    r = at("2026-12-05T20:30:00+08:00", APP_KEY, "GET", "/v1/customers/C1/offers", NULL, NULL,
           NULL);
    drop = NULL;
    json_array_foreach (json_object_get(r.json, "items"), i, v)
        if (!strcmp(h_str(v, "id"), "drop"))
            drop = json_object_get(v, "coupon_drop");
    assert_non_null(drop);
    assert_int_equal(json_integer_value(json_object_get(drop, "claims_left")), 0);
    h_resp_free(&r);
    /* today's waves */
    r = at("2026-12-05T20:30:00+08:00", APP_KEY, "GET", "/v1/campaigns/drop/waves", NULL, NULL,
           NULL);
    expect(r, 200, NULL);
    json_t *w0 = json_array_get(json_object_get(r.json, "waves"), 0),
           *w1 = json_array_get(json_object_get(r.json, "waves"), 1);
    assert_int_equal(json_integer_value(json_object_get(w0, "claimed")), 3);
    assert_string_equal(h_str(w0, "state"), "closed");
    assert_int_equal(json_integer_value(json_object_get(w1, "remaining")), 1);
    assert_string_equal(h_str(w1, "state"), "open");
    h_resp_free(&r);
    /* the report: four claims on the 5th at 500 fen each */
    r = at("2026-12-06T12:00:00+08:00", S->admin_key, "GET", "/v1/campaigns/drop/report", NULL,
           NULL, NULL);
    expect(r, 200, NULL);
    json_t *totals = json_object_get(r.json, "totals");
    assert_int_equal(json_integer_value(json_object_get(totals, "claims")), 4);
    assert_int_equal(json_integer_value(json_object_get(totals, "rewards")), 4);
    assert_int_equal(json_integer_value(json_object_get(totals, "cost")), 2000);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(r.json, "budget"), "spent_cost")), 2000);
    h_resp_free(&r);
    /* the CSV has the claims too, after cost as in the JSON: C1 twice, C2 and C3 on the 5th */
    r = at("2026-12-06T12:00:00+08:00", S->admin_key, "GET", "/v1/campaigns/drop/report?format=csv",
           NULL, NULL, NULL);
    expect(r, 200, NULL);
    assert_non_null(strstr(r.body, "day,participants,checkins,draws,rewards,points,cost,claims,"
                                   "budget_points_left,budget_cost_left\r\n"));
    assert_non_null(strstr(r.body, "\r\n2026-12-05,3,0,0,4,0,2000,4,,998000\r\n"));
    h_resp_free(&r);
    assert_int_equal(h_sql_long(S, "SELECT COUNT(*) FROM benefit_grants g JOIN coupon_claims c ON"
                                   " c.grant_code = g.code WHERE c.campaign_id = 'drop'"),
                     4);
    assert_check_passes();
}

/* The not-eligible cases and the rate limit of claims. */
static json_t *drop_offer(const char *now, const char *no, const char *id)
{
    char path[96];
    snprintf(path, sizeof path, "/v1/customers/%s/offers", no);
    h_resp r = at(now, APP_KEY, "GET", path, NULL, NULL, NULL);
    expect(r, 200, NULL);
    json_t *v, *drop = NULL;
    size_t i;
    json_array_foreach (json_object_get(r.json, "items"), i, v)
        if (!strcmp(h_str(v, "id"), id))
            drop = json_incref(json_object_get(v, "coupon_drop"));
    h_resp_free(&r);
    if (!drop)
        fail_msg("no coupon drop %s among %s's offers", id, no);
    return drop;
}

/* The offers count the item's own limits: a customer who has the item's
 * one a day from elsewhere has no claim left, rather than a claim the
 * catalogue would refuse. */
static void test_offers_count_item_limits(void **state)
{
    (void)state;
    must_at(DEC5, S->admin_key, "POST", "/v1/benefits/items",
            "{\"code\":\"cp1\",\"name\":\"1元立减金\",\"kind\":\"coupon\",\"supplier\":\"wx\","
            "\"face_value\":100,\"cost_price\":100,\"params\":{\"threshold\":0},"
            "\"stock\":1000,\"validity_days\":7,\"limits\":{\"per_day\":1}}",
            201);
    launch("drop1", "",
           "{\"item\":\"cp1\",\"quantity_per_wave\":50,\"waves\":[{\"at\":\"10:00\"}]}");
    h_resp r = at("2026-12-05T11:00:00+08:00", APP_KEY, "POST", "/v1/customers/C201/grants",
                  "{\"item\":\"cp1\"}", "g-c201", NULL);
    expect(r, 201, NULL);
    h_resp_free(&r);
    json_t *d = drop_offer("2026-12-05T11:30:00+08:00", "C201", "drop1");
    assert_int_equal(json_integer_value(json_object_get(d, "claims_left")), 0);
    json_decref(d);
    d = drop_offer("2026-12-05T11:30:00+08:00", "C202", "drop1");
    assert_int_equal(json_integer_value(json_object_get(d, "claims_left")), 1);
    json_decref(d);
    /* as the claim itself says */
    r = claim("2026-12-05T11:31:00+08:00", "drop1", "C201", NULL);
    expect(r, 409, "reward-refused");
    h_resp_free(&r);
    /* the next business day the item's day limit has room again */
    d = drop_offer("2026-12-06T10:30:00+08:00", "C201", "drop1");
    assert_int_equal(json_integer_value(json_object_get(d, "claims_left")), 1);
    json_decref(d);
    must_at(DEC5, S->admin_key, "POST", "/v1/campaigns/drop1:end", NULL, 200);
}

static void test_refusals(void **state)
{
    /* suitability: an R3 product reaches only assessed customers of R3 and up */
    launch("suit", "\"suitability\":{\"product_risk\":\"R3\",\"validity_days\":365}",
           "{\"item\":\"cp5\",\"quantity_per_wave\":10,\"waves\":[{\"at\":\"10:00\"}]}");
    h_resp r = claim("2026-12-05T10:00:00+08:00", "suit", "C6", NULL);
    expect(r, 403, "unsuitable");
    h_resp_free(&r);
    /* a claim at a lottery is the wrong type */
    must_at(DEC5, S->admin_key, "POST", "/v1/campaigns",
            "{\"id\":\"lot\",\"name\":\"l\",\"type\":\"lottery\",\"starts_at\":"
            "\"2026-12-01T00:00:00+08:00\",\"ends_at\":\"2027-01-01T00:00:00+08:00\"}",
            201);
    r = claim("2026-12-05T10:00:00+08:00", "lot", "C6", NULL);
    expect(r, 409, "wrong-type");
    h_resp_free(&r);
    /* one claim a minute per device */
    h_resp p = at(DEC5, S->admin_key, "PUT", "/v1/abuse/rules",
                  "{\"rate_limits\":[{\"scope\":\"device\",\"action\":\"claim\",\"max\":1,"
                  "\"per_seconds\":60}]}",
                  NULL, NULL);
    expect(p, 200, NULL);
    h_resp_free(&p);
    launch("fast", "",
           "{\"item\":\"cp5\",\"quantity_per_wave\":10,\"waves\":[{\"at\":\"10:00\"}]}");
    r = claim("2026-12-05T10:00:00+08:00", "fast", "C6", "X-Device-Id: phone-6");
    expect(r, 201, NULL);
    h_resp_free(&r);
    r = claim("2026-12-05T10:00:01+08:00", "fast", "C7", "X-Device-Id: phone-6");
    expect(r, 429, "rate-limited");
    char retry[16];
    assert_true(h_header(&r, "Retry-After", retry, sizeof retry));
    h_resp_free(&r);
    p = at(DEC5, S->admin_key, "PUT", "/v1/abuse/rules", "{}", NULL, NULL);
    expect(p, 200, NULL);
    h_resp_free(&p);
}

/* ---- 64 concurrent clients ---- */

/* Claim k of a burst on campaign ud: customers C1 .. C256, one key a claim. */
static h_resp burst_claim(CURL *c, int k, const void *ud)
{
    char no[16], key[64];
    snprintf(no, sizeof no, "C%d", 1 + k % 256);
    snprintf(key, sizeof key, "%s-%d", (const char *)ud, k);
    return claim_on(c, "2026-12-05T10:00:00+08:00", ud, no, key, NULL);
}

static void test_concurrent_wave_and_budget(void **state)
{
    /* a 100-unit wave: 256 claims by 256 customers at once, exactly 100 win */
    launch("rush", "",
           "{\"item\":\"cp5\",\"quantity_per_wave\":100,\"waves\":[{\"at\":\"10:00\"}]}");
    h_burst a = {.send = burst_claim, .ud = "rush", .refusal = "wave-sold-out"};
    h_burst_run(&a);
    assert_int_equal(a.ok, 100);
    assert_int_equal(a.refused, 156);
    assert_int_equal(h_sql_long(S, "SELECT claimed FROM coupon_waves WHERE campaign_id = 'rush'"),
                     100);
    assert_int_equal(h_sql_long(S, "SELECT COUNT(*) FROM coupon_claims WHERE campaign_id = 'rush'"),
                     100);
    assert_int_equal(h_sql_long(S, "SELECT COUNT(DISTINCT customer_no) FROM coupon_claims"
                                   " WHERE campaign_id = 'rush'"),
                     100);
    assert_int_equal(h_sql_long(S, "SELECT COUNT(*) FROM benefit_grants g JOIN coupon_claims c ON"
                                   " c.grant_code = g.code WHERE c.campaign_id = 'rush'"),
                     100);
    /* a budget for 10 coupons runs out in the middle of a burst */
    launch("thin", "\"budget\":{\"cost\":5000}",
           "{\"item\":\"cp5\",\"quantity_per_wave\":1000,\"waves\":[{\"at\":\"10:00\"}]}");
    h_burst b = {.send = burst_claim, .ud = "thin", .refusal = "budget-exhausted"};
    h_burst_run(&b);
    assert_int_equal(b.ok, 10);
    assert_int_equal(h_sql_long(S, "SELECT spent_cost FROM campaigns WHERE id = 'thin'"), 5000);
    assert_int_equal(h_sql_long(S, "SELECT claimed FROM coupon_waves WHERE campaign_id = 'thin'"),
                     10);
    assert_check_passes();
}

/* ---- bad input ---- */

typedef struct bad_case {
    const char *path, *body, *field;
    long status;
} bad_case;

static void test_bad_input_writes_nothing(void **state)
{
#define DEF(sec)                                                                                   \
    "{\"id\":\"bad\",\"name\":\"b\",\"type\":\"coupon_drop\",\"starts_at\":"                       \
    "\"2026-12-01T00:00:00+08:00\",\"ends_at\":\"2027-01-01T00:00:00+08:00\"" sec "}"
    static const bad_case cases[] = {
        {"/v1/campaigns", DEF(""), "/coupon_drop", 400},
        {"/v1/campaigns", DEF(",\"coupon_drop\":[]"), "/coupon_drop", 400},
        {"/v1/campaigns",
         DEF(",\"coupon_drop\":{\"quantity_per_wave\":1,\"waves\":[{\"at\":"
             "\"10:00\"}]}"),
         "/coupon_drop/item", 400},
        {"/v1/campaigns",
         DEF(",\"coupon_drop\":{\"item\":\"a b\",\"quantity_per_wave\":1,"
             "\"waves\":[{\"at\":\"10:00\"}]}"),
         "/coupon_drop/item", 400},
        {"/v1/campaigns",
         DEF(",\"coupon_drop\":{\"item\":\"cp5\",\"quantity_per_wave\":0,"
             "\"waves\":[{\"at\":\"10:00\"}]}"),
         "/coupon_drop/quantity_per_wave", 400},
        {"/v1/campaigns", DEF(",\"coupon_drop\":{\"item\":\"cp5\",\"quantity_per_wave\":1}"),
         "/coupon_drop/waves", 400},
        {"/v1/campaigns",
         DEF(",\"coupon_drop\":{\"item\":\"cp5\",\"quantity_per_wave\":1,"
             "\"waves\":[{\"at\":\"24:00\"}]}"),
         "/coupon_drop/waves/0/at", 400},
        {"/v1/campaigns",
         DEF(",\"coupon_drop\":{\"item\":\"cp5\",\"quantity_per_wave\":1,"
             "\"waves\":[{\"at\":\"10:00\"},{\"at\":\"09:00\"}]}"),
         "/coupon_drop/waves/1/at", 400},
        {"/v1/campaigns",
         DEF(",\"coupon_drop\":{\"item\":\"cp5\","
             "\"waves\":[{\"at\":\"10:00\"}]}"),
         "/coupon_drop/waves/0/quantity", 400},
        {"/v1/campaigns",
         DEF(",\"coupon_drop\":{\"item\":\"cp5\",\"quantity_per_wave\":1,"
             "\"waves\":[{\"at\":\"10:00\",\"size\":1}]}"),
         "/coupon_drop/waves/0/size", 400},
        {"/v1/campaigns",
         DEF(",\"coupon_drop\":{\"item\":\"cp5\",\"quantity_per_wave\":1,"
             "\"per_wave\":0,\"waves\":[{\"at\":\"10:00\"}]}"),
         "/coupon_drop/per_wave", 400},
        {"/v1/campaigns",
         DEF(",\"coupon_drop\":{\"item\":\"cp5\",\"quantity_per_wave\":1,"
             "\"waves\":[{\"at\":\"10:00\"}],\"x\":1}"),
         "/coupon_drop/x", 400},
        {"/v1/campaigns",
         DEF(",\"coupon_drop\":{\"item\":\"nope\",\"quantity_per_wave\":1,"
             "\"waves\":[{\"at\":\"10:00\"}]}"),
         "/coupon_drop/item", 400},
        {"/v1/campaigns/drop/claim", "{}", "/customer_no", 400},
        {"/v1/campaigns/drop/claim", "{\"customer_no\":\"a b\"}", "/customer_no", 400},
        {"/v1/campaigns/drop/claim", "{\"customer_no\":\"C1\",\"x\":1}", "/x", 400},
    };
#undef DEF
    const char *snapshot = "SELECT (SELECT COUNT(*) FROM campaigns) * 1000000 + (SELECT COUNT(*)"
                           " FROM coupon_claims) * 1000 + (SELECT COUNT(*) FROM coupon_waves)";
    long before = h_sql_long(S, snapshot);
    for (size_t i = 0; i < SY_TEST_LEN(cases); i++) {
        const bad_case *c = &cases[i];
        bool is_claim = strstr(c->path, "/claim") != NULL;
        h_resp r = at("2026-12-05T10:00:00+08:00", is_claim ? APP_KEY : S->admin_key, "POST",
                      c->path, c->body, is_claim ? "bad-1" : NULL, NULL);
        if (r.status != c->status || !r.json || strcmp(h_str(r.json, "type"), "validation") ||
            strcmp(h_str(r.json, "field"), c->field))
            fail_msg("case %zu (%s): want %ld at %s, got %ld %s", i, c->body, c->status, c->field,
                     r.status, r.body);
        h_resp_free(&r);
    }
    /* a claim without an Idempotency-Key */
    h_resp r = at("2026-12-05T10:00:00+08:00", APP_KEY, "POST", "/v1/campaigns/drop/claim",
                  "{\"customer_no\":\"C9\"}", NULL, NULL);
    expect(r, 400, "validation");
    assert_string_equal(h_str(r.json, "field"), "Idempotency-Key");
    h_resp_free(&r);
    /* a claim at a campaign of another type */
    r = claim("2026-12-05T10:00:00+08:00", "nothing-here", "C9", NULL);
    expect(r, 404, NULL);
    h_resp_free(&r);
    assert_int_equal(h_sql_long(S, snapshot), before);
}

/* ---- kill -9 during claims ---- */

#define KILL_CUSTOMERS 64

static h_resp kill_claim(CURL *c, const h_kill9 *k, const char *no, const char *idem)
{
    char body[64], hkey[96];
    snprintf(body, sizeof body, "{\"customer_no\":\"%s\"}", no);
    snprintf(hkey, sizeof hkey, "Idempotency-Key: %s", idem);
    const char *hs[] = {"X-Siyu-Now: 2026-12-05T10:00:00+08:00", hkey, NULL};
    return h_req_on(c, k->s, "POST", "/v1/campaigns/kill/claim", k->key, body, strlen(body), hs);
}

/* kill -9 in the middle of a run of claims: after the restart every
 * acknowledged claim is there, the wave's count equals its claims and
 * `siyu check` passes. */
static void test_kill9_during_claims(void **state)
{
    h_kill9 k = {.s = h_start("--test-clock", NULL),
                 .send = kill_claim,
                 .customers = KILL_CUSTOMERS,
                 .id_field = "claim"};
    char admin2[128];
    make_key(k.s, "app", k.key);
    make_key(k.s, "admin", admin2);
    const char *hs[] = {"X-Siyu-Now: " DEC5, NULL};
    struct {
        const char *key, *method, *path, *body;
    } steps[] = {
        {k.s->admin_key, "POST", "/v1/benefits/suppliers", "{\"code\":\"wx\",\"name\":\"wx\"}"},
        {k.s->admin_key, "POST", "/v1/benefits/items",
         "{\"code\":\"cp5\",\"name\":\"5元立减金\",\"kind\":\"coupon\",\"supplier\":\"wx\","
         "\"face_value\":500,\"cost_price\":500,\"params\":{\"threshold\":0},\"stock\":100000,"
         "\"validity_days\":7}"},
        {k.s->admin_key, "POST", "/v1/campaigns",
         "{\"id\":\"kill\",\"name\":\"k\",\"type\":\"coupon_drop\",\"starts_at\":"
         "\"2026-12-01T00:00:00+08:00\",\"ends_at\":\"2027-01-01T00:00:00+08:00\","
         "\"coupon_drop\":{\"item\":\"cp5\",\"quantity_per_wave\":100000,\"per_wave\":100,"
         "\"waves\":[{\"at\":\"10:00\"}]}}"},
        {k.s->admin_key, "POST", "/v1/campaigns/kill:submit", NULL},
        {admin2, "POST", "/v1/campaigns/kill:approve", NULL},
    };
    for (size_t i = 0; i < SY_TEST_LEN(steps); i++) {
        h_resp r = h_req_h(k.s, steps[i].method, steps[i].path, steps[i].key, steps[i].body, hs);
        if (r.status != 200 && r.status != 201)
            fail_msg("%s %s: %ld %s", steps[i].method, steps[i].path, r.status, r.body);
        h_resp_free(&r);
    }
    for (int i = 0; i < KILL_CUSTOMERS; i++) {
        char path[64];
        snprintf(path, sizeof path, "/v1/customers/K%d", i);
        h_resp r = h_req_h(k.s, "PUT", path, k.s->admin_key, "{}", hs);
        assert_int_equal(r.status, 201);
        h_resp_free(&r);
    }
    h_kill9_run(&k, 300);
    /* every acknowledged claim is there (checked in chunks of 50) */
    for (int i = 0; i < k.nacked; i += 50) {
        char sql[4096] = "SELECT COUNT(*) FROM coupon_claims WHERE id IN (";
        int m = 0;
        for (int j = i; j < k.nacked && j < i + 50; j++, m++) {
            strcat(sql, j > i ? ",'" : "'");
            strcat(sql, k.acked[j]);
            strcat(sql, "'");
        }
        strcat(sql, ")");
        assert_int_equal(h_sql_long(k.s, sql), m);
    }
    assert_int_equal(h_sql_long(k.s, "SELECT claimed - (SELECT COUNT(*) FROM coupon_claims) FROM"
                                     " coupon_waves WHERE campaign_id = 'kill'"),
                     0);
    char *out = NULL;
    int rc = h_cli(k.s, &out, "check --tenant demo");
    if (rc != 0 || !strstr(out, "coupons:") || !strstr(out, "every invariant holds"))
        fail_msg("siyu check exited %d:\n%s", rc, out ? out : "");
    free(out);
    h_stop(k.s);
    free(k.acked);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_claim_flow),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_offers_count_item_limits),
        cmocka_unit_test(test_concurrent_wave_and_budget),
        cmocka_unit_test(test_bad_input_writes_nothing),
        cmocka_unit_test(test_kill9_during_claims),
    };
    return cmocka_run_group_tests_name("e2e-coupon", tests, group_setup, group_teardown);
}

/* test_e2e_referral.c — referral fission and the campaign report end to
 * end on the real binary (--test-clock): invite codes made on demand and
 * stable; binding (the first code wins, self-invites and unknown codes
 * refused, customers from before the start refused when the campaign says
 * so); qualifying events ingested through POST /v1/events paying inviter
 * and invitee in the events transaction, once; fraud cases (same device,
 * an IP burst) held for review, approved by another key than the author
 * and rejected; the inviter's cap; the report as JSON and CSV with the
 * uplift of a goal event split by the holdout hash (recomputed here); and
 * bad input for every new endpoint answered 400 naming the field, writing
 * nothing. */
#include "e2e/harness.h"

#include <math.h>
#include <sodium.h>

static h_server *S;
static char APP_KEY[128], ADMIN2[128];

/* Events are stamped with the real clock (ingestion refuses times more
 * than a day ahead), so the campaign runs from three days ago; requests
 * use the real clock too (no X-Siyu-Now) except where a test moves it. */
#define NOW_BIND NULL
#define NOW_EVENT NULL
static char TS_EVENT_S[32], SCHEDULE[256], FUTURE[256], LATER_NOW[96];

static void make_key(h_server *s, const char *role, char *out)
{
    char *txt = NULL;
    assert_int_equal(h_cli(s, &txt, "key create --tenant demo --role %s", role), 0);
    sscanf(txt, "%127s", out);
    free(txt);
}

static h_resp call(const char *key, const char *method, const char *path, const char *body,
                   const char *now, const char *idem)
{
    char hk[128];
    const char *hs[3] = {NULL, NULL, NULL};
    int n = 0;
    if (now)
        hs[n++] = now;
    if (idem) {
        snprintf(hk, sizeof hk, "Idempotency-Key: %s", idem);
        hs[n++] = hk;
    }
    return h_req_h(S, method, path, key, body, hs);
}

static void must(const char *key, const char *method, const char *path, const char *body,
                 const char *now, long want)
{
    h_resp r = call(key, method, path, body, now, NULL);
    if (r.status != want)
        fail_msg("%s %s %s: %ld %s", method, path, body ? body : "", r.status, r.body);
    h_resp_free(&r);
}

static json_int_t balance_of(const char *no)
{
    char path[128];
    snprintf(path, sizeof path, "/v1/customers/%s/points", no);
    h_resp r = h_req(S, "GET", path, S->admin_key, NULL);
    assert_int_equal(r.status, 200);
    json_int_t b = json_integer_value(
        json_object_get(json_array_get(json_object_get(r.json, "items"), 0), "balance"));
    h_resp_free(&r);
    return b;
}

static void launch(const char *id, const char *fields)
{
    char body[4096], path[128];
    snprintf(body, sizeof body, "{\"id\":\"%s\",%s}", id, fields);
    must(S->admin_key, "POST", "/v1/campaigns", body, NULL, 201);
    snprintf(path, sizeof path, "/v1/campaigns/%s:submit", id);
    must(S->admin_key, "POST", path, NULL, NULL, 200);
    snprintf(path, sizeof path, "/v1/campaigns/%s:approve", id);
    must(ADMIN2, "POST", path, NULL, NULL, 200);
}

static void rfc3339(long long ms, char *out, size_t n)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void schedule_init(void)
{
    long long now = (long long)time(NULL) * 1000;
    char a[40], b[40], c[40], d[40], e[40];
    rfc3339(now - 3 * 86400000LL, a, sizeof a);
    rfc3339(now + 30 * 86400000LL, b, sizeof b);
    rfc3339(now + 3600000LL, c, sizeof c);
    rfc3339(now + 7200000LL, d, sizeof d);
    rfc3339(now + 60 * 86400000LL, e, sizeof e);
    snprintf(TS_EVENT_S, sizeof TS_EVENT_S, "%lld", now);
    snprintf(SCHEDULE, sizeof SCHEDULE,
             "\"starts_at\":\"%s\",\"ends_at\":\"%s\",\"point_type\":\"sun\"", a, b);
    snprintf(FUTURE, sizeof FUTURE,
             "\"starts_at\":\"%s\",\"ends_at\":\"%s\",\"point_type\":\"sun\"", c, e);
    snprintf(LATER_NOW, sizeof LATER_NOW, "X-Siyu-Now: %s", d);
}

static int group_setup(void **state)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    schedule_init();
    S = h_start("--test-clock", NULL);
    make_key(S, "app", APP_KEY);
    make_key(S, "admin", ADMIN2);
    must(S->admin_key, "POST", "/v1/point-types",
         "{\"code\":\"sun\",\"name\":\"阳光值\",\"expiry\":\"never\"}", NULL, 201);
    for (int i = 1; i <= 30; i++) {
        char path[64];
        snprintf(path, sizeof path, "/v1/customers/C%d", i);
        h_resp r = h_req(S, "PUT", path, S->admin_key, "{\"attributes\":{}}");
        if (r.status != 201 && r.status != 200)
            fail_msg("PUT %s: %ld %s", path, r.status, r.body);
        h_resp_free(&r);
    }
    char f[2048];
    snprintf(f, sizeof f,
             "\"name\":\"邀请有礼\",\"type\":\"referral\",\"priority\":3,%s,"
             "\"holdout_percent\":20,\"budget\":{\"points\":10000},"
             "\"referral\":{\"qualifying_events\":[\"account_opened\"],\"window_days\":7,"
             "\"inviter_reward\":{\"points\":100},\"invitee_reward\":{\"points\":50},"
             "\"max_per_inviter\":2,\"fraud\":{\"max_per_ip\":2,\"window_minutes\":60}}",
             SCHEDULE);
    launch("ref", f);
    return 0;
}

static int group_teardown(void **state)
{
    h_stop(S);
    curl_global_cleanup();
    return 0;
}

static char CODE1[32], CODE5[32];

/* The holdout's bucket, as campaign.c computes it (BLAKE2b-64 of tenant,
 * campaign and customer number, mod 10,000). */
static bool held_out(const char *campaign, const char *no, int percent)
{
    crypto_generichash_state st;
    unsigned char out[8];
    static const unsigned char sep = 0x1f;
    crypto_generichash_init(&st, NULL, 0, sizeof out);
    crypto_generichash_update(&st, (const unsigned char *)"demo", 4);
    crypto_generichash_update(&st, &sep, 1);
    crypto_generichash_update(&st, (const unsigned char *)campaign, strlen(campaign));
    crypto_generichash_update(&st, &sep, 1);
    crypto_generichash_update(&st, (const unsigned char *)no, strlen(no));
    crypto_generichash_final(&st, out, sizeof out);
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | out[i];
    return v % 10000 < (uint64_t)percent * 100;
}

/* A customer of C1..C30 outside the holdout, from start on. */
static const char *inviter_from(int start, char *buf)
{
    for (int i = start; i <= 30; i++) {
        sprintf(buf, "C%d", i);
        if (!held_out("ref", buf, 20))
            return buf;
    }
    fail_msg("no customer outside the holdout");
    return NULL;
}

static void test_invite_codes(void **state)
{
    char a[16], path[128];
    inviter_from(1, a);
    snprintf(path, sizeof path, "/v1/campaigns/ref/invites/%s", a);
    h_resp r = call(APP_KEY, "POST", path, "{\"device_id\":\"dev-inviter\"}", NOW_BIND, "inv-1");
    assert_int_equal(r.status, 201);
    assert_true(json_is_true(json_object_get(r.json, "created")));
    snprintf(CODE1, sizeof CODE1, "%s", h_str(r.json, "code"));
    assert_int_equal(strlen(CODE1), 10);
    h_resp_free(&r);
    r = call(APP_KEY, "POST", path, NULL, NOW_BIND, "inv-2");
    assert_int_equal(r.status, 200);
    assert_string_equal(h_str(r.json, "code"), CODE1);
    h_resp_free(&r);
    r = call(APP_KEY, "GET", path, NULL, NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(h_str(r.json, "code"), CODE1);
    h_resp_free(&r);
    /* a held-out inviter is refused (and recorded) */
    for (int i = 1; i <= 30; i++) {
        char no[16];
        sprintf(no, "C%d", i);
        if (!held_out("ref", no, 20))
            continue;
        snprintf(path, sizeof path, "/v1/campaigns/ref/invites/%s", no);
        r = call(APP_KEY, "POST", path, NULL, NOW_BIND, NULL);
        h_assert_problem(r, 403, "holdout", NULL);
        h_resp_free(&r);
        break;
    }
    /* before the start: not running */
    snprintf(path, sizeof path, "/v1/campaigns/ref/invites/%s", a);
    char early[96], t[40];
    rfc3339((long long)time(NULL) * 1000 - 10 * 86400000LL, t, sizeof t);
    snprintf(early, sizeof early, "X-Siyu-Now: %s", t);
    r = call(APP_KEY, "POST", path, NULL, early, NULL);
    h_assert_problem(r, 409, "not-running", NULL);
    h_resp_free(&r);
    r = call(APP_KEY, "GET", "/v1/campaigns/ref/invites/C29", NULL, NULL, NULL);
    h_assert_problem(r, 404, "not-found", NULL);
    h_resp_free(&r);
}

static h_resp bind_as(const char *code, const char *invitee, const char *device, const char *ip,
                      const char *now)
{
    static int seq;
    char body[512], key[32];
    snprintf(body, sizeof body, "{\"code\":\"%s\",\"invitee\":\"%s\"%s%s%s%s%s%s}", code, invitee,
             device ? ",\"device_id\":\"" : "", device ? device : "", device ? "\"" : "",
             ip ? ",\"ip\":\"" : "", ip ? ip : "", ip ? "\"" : "");
    snprintf(key, sizeof key, "bind-%d", ++seq);
    return call(APP_KEY, "POST", "/v1/campaigns/ref/referrals", body, now, key);
}

/* One event as JSON, stamped now. */
static char *ev(char *out, size_t n, const char *id, const char *no, const char *name)
{
    snprintf(out, n, "{\"event_id\":\"%s\",\"customer_no\":\"%s\",\"name\":\"%s\",\"ts\":%s}", id,
             no, name, TS_EVENT_S);
    return out;
}

static h_resp events1(const char *id, const char *no)
{
    char e[256], body[300];
    snprintf(body, sizeof body, "[%s]", ev(e, sizeof e, id, no, "account_opened"));
    return call(APP_KEY, "POST", "/v1/events", body, NULL, NULL);
}

static h_resp events2(const char *id1, const char *no1, const char *id2, const char *no2)
{
    char e1[256], e2[256], body[600];
    snprintf(body, sizeof body, "[%s,%s]", ev(e1, sizeof e1, id1, no1, "account_opened"),
             ev(e2, sizeof e2, id2, no2, "account_opened"));
    return call(APP_KEY, "POST", "/v1/events", body, NULL, NULL);
}

static h_resp events(const char *body, const char *now)
{
    return call(APP_KEY, "POST", "/v1/events", body, now, NULL);
}

static json_t *referral_of(json_t *reply, const char *invitee)
{
    size_t i;
    json_t *v;
    json_array_foreach (json_object_get(reply, "referrals"), i, v)
        if (!strcmp(h_str(v, "invitee"), invitee))
            return v;
    return NULL;
}

static void test_referral_end_to_end(void **state)
{
    char a[16];
    inviter_from(1, a);
    /* C20 binds; then it cannot bind again with another code; self and unknown codes */
    h_resp r = bind_as(CODE1, "C20", "dev-20", "10.1.1.1", NOW_BIND);
    assert_int_equal(r.status, 201);
    assert_string_equal(h_str(r.json, "inviter"), a);
    assert_string_equal(h_str(r.json, "status"), "bound");
    assert_int_equal(json_array_size(json_object_get(r.json, "flags")), 0);
    h_resp_free(&r);
    char b[16], path[128];
    inviter_from(atoi(a + 1) + 1, b);
    snprintf(path, sizeof path, "/v1/campaigns/ref/invites/%s", b);
    r = call(APP_KEY, "POST", path, NULL, NOW_BIND, NULL);
    assert_int_equal(r.status, 201);
    snprintf(CODE5, sizeof CODE5, "%s", h_str(r.json, "code"));
    h_resp_free(&r);
    r = bind_as(CODE5, "C20", NULL, NULL, NOW_BIND);
    h_assert_problem(r, 409, "already-bound", "/invitee");
    assert_string_equal(h_str(r.json, "inviter"), a);
    h_resp_free(&r);
    r = bind_as(CODE1, a, NULL, NULL, NOW_BIND);
    h_assert_problem(r, 409, "self-invite", "/invitee");
    h_resp_free(&r);
    r = bind_as("NOSUCHCODE", "C21", NULL, NULL, NOW_BIND);
    h_assert_problem(r, 404, "unknown-code", "/code");
    h_resp_free(&r);
    r = bind_as(CODE1, "C404", NULL, NULL, NOW_BIND);
    h_assert_problem(r, 404, "not-found", "/invitee");
    h_resp_free(&r);
    /* the qualifying event pays both, in the events' transaction */
    r = events1("q-20", "C20");
    assert_int_equal(r.status, 200);
    json_t *x = referral_of(r.json, "C20");
    assert_non_null(x);
    assert_string_equal(h_str(x, "status"), "rewarded");
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(x, "inviter_reward"), "points")), 100);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(x, "invitee_reward"), "points")), 50);
    h_resp_free(&r);
    assert_int_equal(balance_of(a), 100);
    assert_int_equal(balance_of("C20"), 50);
    /* the same event again (a duplicate) and a second qualifying event earn nothing */
    r = events2("q-20", "C20", "q-20b", "C20");
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "referrals")), 0);
    h_resp_free(&r);
    assert_int_equal(balance_of("C20"), 50);
    assert_int_equal(h_sql_long(S, "SELECT COUNT(*) FROM referral_rewards"), 2);
}

static void test_fraud_holds_and_review(void **state)
{
    char a[16];
    inviter_from(1, a);
    /* the inviter's own device */
    h_resp r = bind_as(CODE1, "C21", "dev-inviter", NULL, NOW_BIND);
    assert_int_equal(r.status, 201);
    assert_string_equal(json_string_value(json_array_get(json_object_get(r.json, "flags"), 0)),
                        "same-device");
    h_resp_free(&r);
    /* three from one IP within the hour (code 5's inviter): the third is flagged */
    r = bind_as(CODE5, "C22", "d22", "10.9.9.9", NOW_BIND);
    assert_int_equal(json_array_size(json_object_get(r.json, "flags")), 0);
    h_resp_free(&r);
    r = bind_as(CODE5, "C23", "d23", "10.9.9.9", NOW_BIND);
    assert_int_equal(json_array_size(json_object_get(r.json, "flags")), 0);
    h_resp_free(&r);
    r = bind_as(CODE5, "C24", "d24", "10.9.9.9", NOW_BIND);
    assert_string_equal(json_string_value(json_array_get(json_object_get(r.json, "flags"), 0)),
                        "ip-burst");
    h_resp_free(&r);
    r = events2("q-21", "C21", "q-24", "C24");
    assert_int_equal(r.status, 200);
    assert_string_equal(h_str(referral_of(r.json, "C21"), "status"), "held");
    assert_string_equal(h_str(referral_of(r.json, "C24"), "status"), "held");
    h_resp_free(&r);
    assert_int_equal(balance_of("C21"), 0);
    r = call(S->admin_key, "GET", "/v1/campaigns/ref/referrals?status=held", NULL, NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "items")), 2);
    h_resp_free(&r);
    /* the author may not approve; another admin may; an app key may not at all */
    r = call(S->admin_key, "POST", "/v1/campaigns/ref/referrals/C21:approve", NULL, NOW_EVENT,
             NULL);
    h_assert_problem(r, 403, "maker-checker", NULL);
    h_resp_free(&r);
    r = call(APP_KEY, "POST", "/v1/campaigns/ref/referrals/C21:approve", NULL, NOW_EVENT, NULL);
    h_assert_problem(r, 403, "forbidden", NULL);
    h_resp_free(&r);
    r = call(ADMIN2, "POST", "/v1/campaigns/ref/referrals/C21:approve", "{\"note\":\"checked\"}",
             NOW_EVENT, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(h_str(r.json, "status"), "rewarded");
    h_resp_free(&r);
    assert_int_equal(balance_of("C21"), 50);
    assert_int_equal(balance_of(a), 200);
    r = call(ADMIN2, "POST", "/v1/campaigns/ref/referrals/C24:reject", "{\"note\":\"farm\"}",
             NOW_EVENT, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(h_str(r.json, "status"), "rejected");
    h_resp_free(&r);
    r = call(ADMIN2, "POST", "/v1/campaigns/ref/referrals/C24:approve", NULL, NOW_EVENT, NULL);
    h_assert_problem(r, 409, "not-held", NULL);
    h_resp_free(&r);
    assert_int_equal(balance_of("C24"), 0);
    /* the cap (2 per inviter): a third invitee is paid, its inviter not */
    r = bind_as(CODE1, "C25", "d25", NULL, NOW_BIND);
    assert_int_equal(r.status, 201);
    h_resp_free(&r);
    r = events1("q-25", "C25");
    json_t *x = referral_of(r.json, "C25");
    assert_string_equal(h_str(x, "status"), "rewarded");
    assert_true(json_is_null(json_object_get(x, "inviter_reward")));
    assert_non_null(strstr(h_str(x, "refusal"), "inviter-cap-reached"));
    h_resp_free(&r);
    assert_int_equal(balance_of(a), 200);
    assert_int_equal(balance_of("C25"), 50);
    /* every invariant holds with referral rewards paid: the campaigns'
     * budgets count them */
    char *out = NULL;
    int rc = h_cli(S, &out, "check --tenant demo");
    if (rc != 0 || !strstr(out, "every invariant holds"))
        fail_msg("siyu check exited %d:\n%s", rc, out);
    free(out);
}

static void test_existing_customers_refused(void **state)
{
    char f[1024];
    snprintf(f, sizeof f,
             "\"name\":\"新客\",\"type\":\"referral\",%s,\"referral\":{\"qualifying_events\":"
             "[\"bind_card\"],\"invitee_reward\":{\"points\":5},\"new_customers_only\":true}",
             FUTURE);
    launch("newonly", f);
    /* the campaign starts in an hour; at two hours from now */
    h_resp r = call(APP_KEY, "POST", "/v1/campaigns/newonly/invites/C2", NULL, LATER_NOW, NULL);
    assert_int_equal(r.status, 201);
    char code[32], body[128];
    snprintf(code, sizeof code, "%s", h_str(r.json, "code"));
    h_resp_free(&r);
    /* every customer here was made before the campaign started */
    snprintf(body, sizeof body, "{\"code\":\"%s\",\"invitee\":\"C3\"}", code);
    r = call(APP_KEY, "POST", "/v1/campaigns/newonly/referrals", body, LATER_NOW, "nb-1");
    h_assert_problem(r, 409, "existing-customer", "/invitee");
    h_resp_free(&r);
    assert_int_equal(h_sql_long(S, "SELECT COUNT(*) FROM referral_bindings WHERE campaign_id ="
                                   " 'newonly'"),
                     0);
}

static void test_report_json_and_csv(void **state)
{
    /* buyers: every third customer, today */
    char body[8192] = "[";
    int buyers = 0;
    for (int i = 1; i <= 30; i += 3) {
        char id[24], no[16], e[256];
        snprintf(id, sizeof id, "buy-%d", i);
        snprintf(no, sizeof no, "C%d", i);
        snprintf(body + strlen(body), sizeof body - strlen(body), "%s%s", buyers ? "," : "",
                 ev(e, sizeof e, id, no, "buy_fund"));
        buyers++;
    }
    strcat(body, "]");
    h_resp r = events(body, NOW_EVENT);
    assert_int_equal(r.status, 200);
    h_resp_free(&r);
    r = call(ADMIN2, "GET", "/v1/campaigns/ref/report?goal=buy_fund", NULL, NOW_EVENT, NULL);
    assert_int_equal(r.status, 200);
    json_t *days = json_object_get(r.json, "days");
    assert_int_equal(json_array_size(days), 4); /* three days ago .. today */
    json_t *d5 = json_array_get(days, 2), *d6 = json_array_get(days, 3);
    assert_int_equal(json_integer_value(json_object_get(d5, "participants")), 0);
    /* today: the bindings (C20 .. C25) and the inviter; paid C20 + inviter, C21 + inviter
     * (approved), C25 */
    assert_int_equal(json_integer_value(json_object_get(d6, "participants")), 7);
    assert_int_equal(json_integer_value(json_object_get(d6, "rewards")), 5);
    assert_int_equal(json_integer_value(json_object_get(d6, "points")), 350);
    assert_int_equal(json_integer_value(json_object_get(d6, "budget_points_left")), 9650);
    assert_int_equal(json_integer_value(json_object_get(d6, "draws")), 0);
    char day5[16], day6[16];
    snprintf(day5, sizeof day5, "%s", h_str(d5, "day"));
    snprintf(day6, sizeof day6, "%s", h_str(d6, "day"));
    /* draws: none here; the note says whether the lottery's table exists yet */
    bool draws_table =
        h_sql_long(S, "SELECT COUNT(*) FROM sqlite_master WHERE name = 'lottery_draws'") == 1;
    assert_int_equal(json_is_string(json_object_get(r.json, "draws_note")), !draws_table);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(r.json, "budget"), "points_left")),
        9650);
    /* the uplift: the audience (every customer) split by the holdout hash */
    long n0 = 0, x0 = 0, n1 = 0, x1 = 0;
    for (int i = 1; i <= 30; i++) {
        char no[16];
        sprintf(no, "C%d", i);
        bool h = held_out("ref", no, 20), buy = (i - 1) % 3 == 0;
        n0 += h;
        x0 += h && buy;
        n1 += !h;
        x1 += !h && buy;
    }
    json_t *up = json_object_get(r.json, "uplift");
    assert_string_equal(h_str(up, "goal"), "buy_fund");
    json_t *aud = json_object_get(up, "audience"), *hold = json_object_get(up, "holdout");
    assert_int_equal(json_integer_value(json_object_get(aud, "customers")), n1);
    assert_int_equal(json_integer_value(json_object_get(aud, "converted")), x1);
    assert_int_equal(json_integer_value(json_object_get(hold, "customers")), n0);
    assert_int_equal(json_integer_value(json_object_get(hold, "converted")), x0);
    if (n0 > 0) {
        double p1 = (double)x1 / n1, p0 = (double)x0 / n0;
        double d = json_real_value(json_object_get(up, "difference"));
        assert_true(fabs(d - (p1 - p0)) < 1e-9);
        assert_int_equal(json_array_size(json_object_get(up, "ci95")), 2);
    }
    h_resp_free(&r);
    r = call(ADMIN2, "GET", "/v1/campaigns/ref/report?goal=buy_fund&format=csv", NULL, NOW_EVENT,
             NULL);
    assert_int_equal(r.status, 200);
    char ct[128];
    assert_true(h_header(&r, "Content-Type", ct, sizeof ct));
    assert_non_null(strstr(ct, "text/csv"));
    assert_non_null(strstr(r.body, "day,participants,checkins,draws,rewards,points,cost,claims,"
                                   "budget_points_left,budget_cost_left\r\n"));
    char line[128];
    snprintf(line, sizeof line, "%s,0,0,0,0,0,0,0,10000,\r\n", day5);
    assert_non_null(strstr(r.body, line));
    snprintf(line, sizeof line, "%s,7,0,0,5,350,0,0,9650,\r\n", day6);
    assert_non_null(strstr(r.body, line));
    assert_non_null(strstr(r.body, "buy_fund,audience,"));
    h_resp_free(&r);
    /* an app key may not read reports */
    r = call(APP_KEY, "GET", "/v1/campaigns/ref/report", NULL, NOW_EVENT, NULL);
    h_assert_problem(r, 403, "forbidden", NULL);
    h_resp_free(&r);
}

typedef struct bad_case {
    const char *key; /* "app" or NULL: admin */
    const char *method, *path, *body;
    long status;
    const char *type, *field;
    const char *hdr;
} bad_case;

static void test_bad_input_writes_nothing(void **state)
{
#define RF                                                                                         \
    "\"name\":\"x\",\"type\":\"referral\",\"starts_at\":\"2030-01-01T00:00:00+08:00\","            \
    "\"ends_at\":\"2030-02-01T00:00:00+08:00\",\"point_type\":\"sun\""
    static const bad_case cases[] = {
        {"app", "POST", "/v1/campaigns/ref/invites/bad!", NULL, 400, "validation", "customer_no",
         NULL},
        {"app", "POST", "/v1/campaigns/ref/invites/C1", "{\"device_id\":5}", 400, "validation",
         "/device_id", NULL},
        {"app", "POST", "/v1/campaigns/ref/invites/C1", "{\"x\":1}", 400, "validation", "/x", NULL},
        {"app", "POST", "/v1/campaigns/ref/invites/C1", "{", 400, "invalid-json", NULL, NULL},
        {"app", "GET", "/v1/campaigns/ref/invites/bad!", NULL, 400, "validation", "customer_no",
         NULL},
        {"app", "POST", "/v1/campaigns/ref/referrals", "{}", 400, "validation", "/code",
         "Idempotency-Key: x1"},
        {"app", "POST", "/v1/campaigns/ref/referrals", "{\"code\":\"AB\"}", 400, "validation",
         "/invitee", "Idempotency-Key: x2"},
        {"app", "POST", "/v1/campaigns/ref/referrals", "{\"code\":\"AB\",\"invitee\":\"bad!\"}",
         400, "validation", "/invitee", "Idempotency-Key: x3"},
        {"app", "POST", "/v1/campaigns/ref/referrals",
         "{\"code\":\"AB\",\"invitee\":\"C2\",\"phone\":\"call me\"}", 400, "validation", "/phone",
         "Idempotency-Key: x4"},
        {"app", "POST", "/v1/campaigns/ref/referrals",
         "{\"code\":\"AB\",\"invitee\":\"C2\",\"ip\":\"1111:2222:3333:4444:5555:6666:7777:8888:"
         "9999:0000\"}",
         400, "validation", "/ip", "Idempotency-Key: x5"},
        {"app", "POST", "/v1/campaigns/ref/referrals",
         "{\"code\":\"AB\",\"invitee\":\"C2\",\"more\":1}", 400, "validation", "/more",
         "Idempotency-Key: x6"},
        {"app", "POST", "/v1/campaigns/ref/referrals", "{\"code\":\"AB\",\"invitee\":\"C2\"}", 400,
         "validation", "Idempotency-Key", NULL},
        {NULL, "GET", "/v1/campaigns/ref/referrals?status=odd", NULL, 400, "validation", "status",
         NULL},
        {NULL, "GET", "/v1/campaigns/ref/referrals?limit=0", NULL, 400, "validation", "limit",
         NULL},
        {NULL, "GET", "/v1/campaigns/ref/referrals?inviter=bad!", NULL, 400, "validation",
         "inviter", NULL},
        {NULL, "POST", "/v1/campaigns/ref/referrals/C22:approve", "{\"note\":5}", 400, "validation",
         "/note", NULL},
        {NULL, "POST", "/v1/campaigns/ref/referrals/C22:reject", "{\"y\":1}", 400, "validation",
         "/y", NULL},
        {NULL, "POST", "/v1/campaigns/ref/referrals/bad!:reject", NULL, 400, "validation",
         "invitee", NULL},
        {NULL, "POST", "/v1/campaigns/ref/referrals/C29:approve", NULL, 404, "not-found", NULL,
         NULL},
        {NULL, "GET", "/v1/campaigns/ref/report?format=xml", NULL, 400, "validation", "format",
         NULL},
        {NULL, "GET", "/v1/campaigns/ref/report?goal=Buy%20Fund", NULL, 400, "validation", "goal",
         NULL},
        {NULL, "GET", "/v1/campaigns/none/report", NULL, 404, "not-found", NULL, NULL},
        {NULL, "POST", "/v1/campaigns", "{" RF "}", 400, "validation", "/referral", NULL},
        {NULL, "POST", "/v1/campaigns", "{" RF ",\"referral\":{\"inviter_reward\":{\"points\":1}}}",
         400, "validation", "/referral/qualifying_events", NULL},
        {NULL, "POST", "/v1/campaigns",
         "{" RF ",\"referral\":{\"qualifying_events\":[\"x\"],\"inviter_reward\":{\"item\":"
         "\"nope\"}}}",
         400, "validation", "/referral/inviter_reward/item", NULL},
        {NULL, "POST", "/v1/campaigns",
         "{" RF ",\"referral\":{\"qualifying_events\":[\"x\"],\"invitee_reward\":{\"points\":1},"
         "\"fraud\":{\"max_per_ip\":-1}}}",
         400, "validation", "/referral/fraud/max_per_ip", NULL},
        {NULL, "POST", "/v1/campaigns",
         "{" RF ",\"priority\":5000,\"referral\":{\"qualifying_events\":[\"x\"],"
         "\"invitee_reward\":{\"points\":1}}}",
         400, "validation", "/priority", NULL},
        {"app", "GET", "/v1/customers/bad!/offers", NULL, 400, "validation", "customer_no", NULL},
    };
#undef RF
    const char *snapshot =
        "SELECT (SELECT COUNT(*) FROM referral_codes) * 1000000 + (SELECT COUNT(*) FROM"
        " referral_bindings) * 10000 + (SELECT COUNT(*) FROM referral_rewards) * 100 +"
        " (SELECT COUNT(*) FROM campaigns) + (SELECT COUNT(*) FROM ledger_entries) * 7 +"
        " (SELECT COUNT(*) FROM referral_bindings WHERE reviewed_by IS NOT NULL) * 3";
    long before = h_sql_long(S, snapshot);
    for (size_t i = 0; i < SY_TEST_LEN(cases); i++) {
        const bad_case *c = &cases[i];
        const char *hs[] = {c->hdr, NULL};
        h_resp r = h_req_h(S, c->method, c->path, c->key ? APP_KEY : ADMIN2, c->body, hs);
        if (r.status != c->status || !r.json || strcmp(h_str(r.json, "type"), c->type) != 0 ||
            (c->field && (!h_str(r.json, "field") || strcmp(h_str(r.json, "field"), c->field))))
            fail_msg("case %zu (%s %s %s): %ld %s", i, c->method, c->path, c->body ? c->body : "",
                     r.status, r.body ? r.body : "");
        h_assert_problem(r, c->status, c->type, c->field);
        h_resp_free(&r);
        if (h_sql_long(S, snapshot) != before)
            fail_msg("case %zu (%s %s) wrote something", i, c->method, c->path);
    }
}

/* Held rewards wait hold_days for review, then expire unpaid: through the
 * review itself (409 review-expired, the expiry committed) and through
 * POST …/referrals:expire (what the maintenance loop runs), with the clock
 * moved by X-Siyu-Now; the report counts them and nothing was paid. */
static void test_held_rewards_expire(void **state)
{
    char f[2048];
    snprintf(f, sizeof f,
             "\"name\":\"待审过期\",\"type\":\"referral\",%s,\"budget\":{\"points\":10000},"
             "\"referral\":{\"qualifying_events\":[\"account_opened\"],\"hold_days\":2,"
             "\"inviter_reward\":{\"points\":100},\"invitee_reward\":{\"points\":50}}",
             SCHEDULE);
    launch("hold", f);
    h_resp r = call(APP_KEY, "POST", "/v1/campaigns/hold/invites/C27", "{\"device_id\":\"d27\"}",
                    NULL, NULL);
    assert_int_equal(r.status, 201);
    char code[32], body[256];
    snprintf(code, sizeof code, "%s", h_str(r.json, "code"));
    h_resp_free(&r);
    /* two invitees on the inviter's device: held when they qualify */
    for (int i = 0; i < 2; i++) {
        char key[32];
        snprintf(body, sizeof body, "{\"code\":\"%s\",\"invitee\":\"C%d\",\"device_id\":\"d27\"}",
                 code, 28 + i);
        snprintf(key, sizeof key, "hold-bind-%d", i);
        r = call(APP_KEY, "POST", "/v1/campaigns/hold/referrals", body, NULL, key);
        assert_int_equal(r.status, 201);
        h_resp_free(&r);
    }
    r = events2("h-28", "C28", "h-29", "C29");
    assert_int_equal(r.status, 200);
    json_t *x = NULL;
    size_t i;
    json_t *v;
    json_array_foreach (json_object_get(r.json, "referrals"), i, v)
        if (!strcmp(h_str(v, "campaign"), "hold"))
            assert_string_equal(h_str(v, "status"), "held");
    h_resp_free(&r);
    long long now = atoll(TS_EVENT_S);
    char day1[64], day3[64];
    snprintf(day1, sizeof day1, "X-Siyu-Now: %lld", now + 86400000LL);
    snprintf(day3, sizeof day3, "X-Siyu-Now: %lld", now + 3 * 86400000LL);
    /* the deadline is shown, and a day later nothing has expired */
    r = call(S->admin_key, "GET", "/v1/campaigns/hold/referrals?status=held", NULL, NULL, NULL);
    x = json_array_get(json_object_get(r.json, "items"), 0);
    assert_non_null(x);
    assert_true(json_is_string(json_object_get(x, "review_by")));
    h_resp_free(&r);
    r = call(S->admin_key, "POST", "/v1/campaigns/hold/referrals:expire", NULL, day1, NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_integer_value(json_object_get(r.json, "expired")), 0);
    h_resp_free(&r);
    /* three days later: a review comes too late, and expires the binding */
    r = call(ADMIN2, "POST", "/v1/campaigns/hold/referrals/C29:approve", NULL, day3, NULL);
    h_assert_problem(r, 409, "review-expired", NULL);
    h_resp_free(&r);
    assert_int_equal(h_sql_long(S,
                                "SELECT COUNT(*) FROM referral_bindings WHERE campaign_id = 'hold'"
                                " AND invitee = 'C29' AND status = 'expired' AND refusal ="
                                " 'review-expired'"),
                     1);
    /* the other one expires through the endpoint (the maintenance loop's job) */
    r = call(S->admin_key, "POST", "/v1/campaigns/hold/referrals:expire", NULL, day3, NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_integer_value(json_object_get(r.json, "expired")), 1);
    h_resp_free(&r);
    r = call(S->admin_key, "POST", "/v1/campaigns/hold/referrals:expire", NULL, day3, NULL);
    assert_int_equal(json_integer_value(json_object_get(r.json, "expired")), 0);
    h_resp_free(&r);
    r = call(S->admin_key, "GET", "/v1/campaigns/hold/referrals?status=expired", NULL, NULL, NULL);
    assert_int_equal(json_array_size(json_object_get(r.json, "items")), 2);
    json_array_foreach (json_object_get(r.json, "items"), i, v)
        assert_string_equal(h_str(v, "refusal"), "review-expired");
    h_resp_free(&r);
    /* nothing was paid; the report counts them */
    assert_int_equal(
        h_sql_long(S, "SELECT COUNT(*) FROM referral_rewards WHERE campaign_id = 'hold'"), 0);
    assert_int_equal(balance_of("C28"), 0);
    assert_int_equal(balance_of("C27"), 0);
    r = call(S->admin_key, "GET", "/v1/campaigns/hold/report", NULL, day3, NULL);
    assert_int_equal(r.status, 200);
    json_t *rv = json_object_get(r.json, "referral_review");
    assert_int_equal(json_integer_value(json_object_get(rv, "expired_in_review")), 2);
    assert_int_equal(json_integer_value(json_object_get(rv, "held")), 0);
    h_resp_free(&r);
    /* an unknown campaign */
    r = call(S->admin_key, "POST", "/v1/campaigns/nope/referrals:expire", NULL, NULL, NULL);
    assert_int_equal(r.status, 404);
    h_resp_free(&r);
    char *out = NULL;
    int rc = h_cli(S, &out, "check --tenant demo");
    if (rc != 0 || !strstr(out, "every invariant holds"))
        fail_msg("siyu check exited %d:\n%s", rc, out);
    free(out);
}

/* Binds invitee on campaign with code, an optional ip and phone (a fresh
 * Idempotency-Key each time). */
static h_resp bind_ip_phone(const char *campaign, const char *code, const char *invitee,
                            const char *ip, const char *phone)
{
    static int seq;
    json_t *o = json_pack("{s:s, s:s}", "code", code, "invitee", invitee);
    if (ip)
        json_object_set_new(o, "ip", json_string(ip));
    if (phone)
        json_object_set_new(o, "phone", json_string(phone));
    char *body = json_dumps(o, JSON_COMPACT), path[128], key[32];
    json_decref(o);
    snprintf(path, sizeof path, "/v1/campaigns/%s/referrals", campaign);
    snprintf(key, sizeof key, "canon-%d", ++seq);
    h_resp r = call(APP_KEY, "POST", path, body, NULL, key);
    free(body);
    return r;
}

static void assert_flags(h_resp *r, const char *want)
{
    if (r->status != 201)
        fail_msg("expected 201, got %ld: %s", r->status, r->body);
    json_t *flags = json_object_get(r->json, "flags");
    if (!want) {
        if (json_array_size(flags) != 0)
            fail_msg("expected no flags: %s", r->body);
    } else if (json_array_size(flags) != 1 ||
               strcmp(json_string_value(json_array_get(flags, 0)), want) != 0) {
        fail_msg("expected the flag %s: %s", want, r->body);
    }
}

/* The burst rules count an address and a phone number however they were
 * written: an IPv4 address and its IPv4-mapped IPv6 form, IPv6 addresses
 * with and without leading zeros or in capitals, a phone with and without
 * +86 or 0086.  What is not an address or a phone number is refused with
 * 400 naming the field, and nothing is written. */
static void test_bursts_count_one_address_and_number(void **state)
{
    char f[2048];
    snprintf(f, sizeof f,
             "\"name\":\"同址同号\",\"type\":\"referral\",%s,"
             "\"referral\":{\"qualifying_events\":[\"account_opened\"],"
             "\"inviter_reward\":{\"points\":100},\"fraud\":{\"same_device\":false,"
             "\"window_minutes\":60,\"max_per_ip\":2,\"max_per_phone_prefix\":2}}",
             SCHEDULE);
    launch("canon", f);
    h_resp r = call(APP_KEY, "POST", "/v1/campaigns/canon/invites/C26", NULL, NULL, NULL);
    assert_int_equal(r.status, 201);
    char code[32];
    snprintf(code, sizeof code, "%s", h_str(r.json, "code"));
    h_resp_free(&r);
    const char *count = "SELECT COUNT(*) FROM referral_bindings WHERE campaign_id = 'canon'";

    /* not addresses (leading zeros are refused by inet_pton: octal or decimal?) */
    static const char *const bad_ips[] = {
        "not-an-ip", "999.1.1.1",        "198.051.100.009", "1.2.3",          "1.2.3.4.5",
        "",          "::ffff:999.1.1.1", "fe80::1%eth0",    "2001:db8::1::2", " 198.51.100.9",
    };
    for (size_t i = 0; i < SY_TEST_LEN(bad_ips); i++) {
        r = bind_ip_phone("canon", code, "C1", bad_ips[i], NULL);
        if (r.status != 400)
            fail_msg("ip '%s': %ld %s", bad_ips[i], r.status, r.body);
        h_assert_problem(r, 400, "validation", "/ip");
        h_resp_free(&r);
    }
    static const char *const bad_phones[] = {"call me", "12345", "139+1234+0000", "+",
                                             "+86 139 1234 0000 1234 5678 9"};
    for (size_t i = 0; i < SY_TEST_LEN(bad_phones); i++) {
        r = bind_ip_phone("canon", code, "C1", "198.51.100.9", bad_phones[i]);
        if (r.status != 400)
            fail_msg("phone '%s': %ld %s", bad_phones[i], r.status, r.body);
        h_assert_problem(r, 400, "validation", "/phone");
        h_resp_free(&r);
    }
    assert_int_equal(h_sql_long(S, count), 0);

    /* one IPv4 address written three ways: the third is a burst */
    r = bind_ip_phone("canon", code, "C1", "198.51.100.9", NULL);
    assert_flags(&r, NULL);
    h_resp_free(&r);
    r = bind_ip_phone("canon", code, "C2", "::ffff:198.51.100.9", NULL);
    assert_flags(&r, NULL);
    h_resp_free(&r);
    r = bind_ip_phone("canon", code, "C3", "0:0:0:0:0:FFFF:C633:6409", NULL);
    assert_flags(&r, "ip-burst");
    h_resp_free(&r);
    assert_int_equal(h_sql_long(S, "SELECT COUNT(*) FROM referral_bindings WHERE campaign_id ="
                                   " 'canon' AND ip = '198.51.100.9'"),
                     3);
    /* likewise an IPv6 address */
    r = bind_ip_phone("canon", code, "C4", "2001:DB8::A", NULL);
    assert_flags(&r, NULL);
    h_resp_free(&r);
    r = bind_ip_phone("canon", code, "C5", "2001:db8:0:0::a", NULL);
    assert_flags(&r, NULL);
    h_resp_free(&r);
    r = bind_ip_phone("canon", code, "C6", "2001:0db8:0000:0000:0000:0000:0000:000a", NULL);
    assert_flags(&r, "ip-burst");
    h_resp_free(&r);
    assert_int_equal(h_sql_long(S, "SELECT COUNT(*) FROM referral_bindings WHERE campaign_id ="
                                   " 'canon' AND ip = '2001:db8::a'"),
                     3);

    /* one phone prefix written with +86, with 0086 and without: the third is a burst */
    r = bind_ip_phone("canon", code, "C7", NULL, "13912340000");
    assert_flags(&r, NULL);
    h_resp_free(&r);
    r = bind_ip_phone("canon", code, "C8", NULL, "+86 139-1234-0001");
    assert_flags(&r, NULL);
    h_resp_free(&r);
    r = bind_ip_phone("canon", code, "C9", NULL, "0086 (139) 1234 0002");
    assert_flags(&r, "phone-prefix-burst");
    h_resp_free(&r);
    assert_int_equal(h_sql_long(S, "SELECT COUNT(*) FROM referral_bindings WHERE campaign_id ="
                                   " 'canon' AND phone_prefix = '1391234'"),
                     3);
    assert_int_equal(h_sql_long(S, count), 9);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_invite_codes),
        cmocka_unit_test(test_referral_end_to_end),
        cmocka_unit_test(test_fraud_holds_and_review),
        cmocka_unit_test(test_existing_customers_refused),
        cmocka_unit_test(test_report_json_and_csv),
        cmocka_unit_test(test_bad_input_writes_nothing),
        cmocka_unit_test(test_held_rewards_expire),
        cmocka_unit_test(test_bursts_count_one_address_and_number),
    };
    return cmocka_run_group_tests_name("e2e-referral", tests, group_setup, group_teardown);
}

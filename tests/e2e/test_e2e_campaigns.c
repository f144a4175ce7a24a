/* test_e2e_campaigns.c — campaigns end to end on the real binary, started
 * with --test-clock so that requests set "now" (X-Siyu-Now): the lifecycle
 * with maker-checker between two admin keys, check-in streaks across
 * Shanghai business days, a make-up day, audience by saved segment,
 * suitability, the holdout; tasks rewarded as events are ingested (once per
 * period, not again for duplicate events); 64 concurrent clients against a
 * budget and against a per-customer limit (never exceeded, exactly what was
 * acknowledged was paid); bad input for every new endpoint answered with
 * the field and nothing written; and X-Siyu-Now refused by a server
 * without --test-clock. */
#include "e2e/harness.h"

static h_server *S;
static char APP_KEY[128], ADMIN2[128];

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

static void must(const char *method, const char *path, const char *body, long want)
{
    must_as(S->admin_key, method, path, body, want);
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

/* Creates a campaign (body without braces' id) and has it approved by the
 * second admin key. */
static void launch(const char *id, const char *fields)
{
    char body[4096], path[128];
    snprintf(body, sizeof body, "{\"id\":\"%s\",%s}", id, fields);
    must("POST", "/v1/campaigns", body, 201);
    snprintf(path, sizeof path, "/v1/campaigns/%s:submit", id);
    must("POST", path, NULL, 200);
    snprintf(path, sizeof path, "/v1/campaigns/%s:approve", id);
    must_as(ADMIN2, "POST", path, NULL, 200);
}

static h_resp checkin_on(CURL *c, const char *id, const char *no, const char *now, const char *day,
                         const char *key)
{
    char path[128], body[256], hnow[96], hkey[160];
    snprintf(path, sizeof path, "/v1/campaigns/%s/checkin", id);
    if (day)
        snprintf(body, sizeof body, "{\"customer_no\":\"%s\",\"day\":\"%s\"}", no, day);
    else
        snprintf(body, sizeof body, "{\"customer_no\":\"%s\"}", no);
    snprintf(hnow, sizeof hnow, "X-Siyu-Now: %s", now);
    snprintf(hkey, sizeof hkey, "Idempotency-Key: %s", key);
    const char *hs[] = {hnow, hkey, NULL};
    return h_req_on(c, S, "POST", path, APP_KEY, body, strlen(body), hs);
}

static h_resp checkin(const char *id, const char *no, const char *now, const char *day)
{
    static int seq;
    char key[64];
    snprintf(key, sizeof key, "ck-%d-%ld", ++seq, (long)getpid());
    CURL *c = curl_easy_init();
    h_resp r = checkin_on(c, id, no, now, day, key);
    curl_easy_cleanup(c);
    return r;
}

static const char k_ckfields[] =
    "\"name\":\"签到\",\"type\":\"checkin\",\"starts_at\":\"2026-12-01T00:00:00+08:00\","
    "\"ends_at\":\"2027-01-01T00:00:00+08:00\",\"point_type\":\"sun\"";

static int group_setup(void **state)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    S = h_start("--test-clock", NULL);
    make_key(S, "app", APP_KEY);
    make_key(S, "admin", ADMIN2);
    must("POST", "/v1/point-types", "{\"code\":\"sun\",\"name\":\"阳光值\",\"expiry\":\"never\"}",
         201);
    for (int i = 1; i <= 40; i++) {
        char path[64], body[160];
        snprintf(path, sizeof path, "/v1/customers/C%d", i);
        snprintf(body, sizeof body,
                 "{\"attributes\":{\"risk_level\":\"R%d\",\"risk_assessed_at\":\"%s\"}}", 1 + i % 5,
                 i % 7 == 0 ? "2024-01-01" : "2026-10-01");
        h_resp r = h_req(S, "PUT", path, S->admin_key, body);
        if (r.status != 201 && r.status != 200)
            fail_msg("PUT %s: %ld %s", path, r.status, r.body);
        h_resp_free(&r);
    }
    return 0;
}

static int group_teardown(void **state)
{
    h_stop(S);
    curl_global_cleanup();
    return 0;
}

/* ---- lifecycle ---- */

static void test_lifecycle_maker_checker(void **state)
{
    char body[2048];
    snprintf(body, sizeof body,
             "{\"id\":\"life\",%s,\"checkin\":{\"rewards\":[{\"day\":1,\"points\":5}]}}",
             k_ckfields);
    h_resp r = h_req(S, "POST", "/v1/campaigns", S->admin_key, body);
    assert_int_equal(r.status, 201);
    assert_string_equal(h_str(r.json, "status"), "draft");
    h_resp_free(&r);
    /* changes while a draft */
    snprintf(body, sizeof body,
             "{%s,\"holdout_percent\":5,\"checkin\":{\"rewards\":[{\"day\":1,\"points\":6}]}}",
             k_ckfields);
    r = h_req(S, "PUT", "/v1/campaigns/life", S->admin_key, body);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_integer_value(json_object_get(r.json, "holdout_percent")), 5);
    h_resp_free(&r);
    r = h_req(S, "POST", "/v1/campaigns/life:approve", ADMIN2, NULL);
    h_assert_problem(r, 409, "bad-transition", NULL);
    h_resp_free(&r);
    must("POST", "/v1/campaigns/life:submit", "{\"note\":\"please\"}", 200);
    r = h_req(S, "PUT", "/v1/campaigns/life", S->admin_key, body);
    h_assert_problem(r, 409, "not-draft", NULL);
    h_resp_free(&r);
    /* the author may not approve; an app key may not at all */
    r = h_req(S, "POST", "/v1/campaigns/life:approve", S->admin_key, NULL);
    h_assert_problem(r, 403, "maker-checker", NULL);
    h_resp_free(&r);
    r = h_req(S, "POST", "/v1/campaigns/life:approve", APP_KEY, NULL);
    h_assert_problem(r, 403, "forbidden", NULL);
    h_resp_free(&r);
    const char *hs[] = {"X-Siyu-Now: 2026-11-30T12:00:00+08:00", NULL};
    r = h_req_h(S, "POST", "/v1/campaigns/life:approve", ADMIN2, NULL, hs);
    assert_int_equal(r.status, 200);
    assert_string_equal(h_str(r.json, "status"), "scheduled");
    assert_non_null(h_str(r.json, "approved_by"));
    assert_string_not_equal(h_str(r.json, "approved_by"), h_str(r.json, "created_by"));
    h_resp_free(&r);
    /* running is derived from the time */
    const char *during[] = {"X-Siyu-Now: 2026-12-02T12:00:00+08:00", NULL};
    r = h_req_h(S, "GET", "/v1/campaigns/life", APP_KEY, NULL, during);
    assert_string_equal(h_str(r.json, "status"), "running");
    h_resp_free(&r);
    /* and a refusal names the status as the API shows it */
    r = h_req_h(S, "PUT", "/v1/campaigns/life", S->admin_key, body, during);
    h_assert_problem(r, 409, "not-draft", NULL);
    assert_non_null(strstr(h_str(r.json, "detail"), "is running"));
    h_resp_free(&r);
    r = h_req_h(S, "GET", "/v1/campaigns?status=running&type=checkin", APP_KEY, NULL, during);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "items")), 1);
    h_resp_free(&r);
    must("POST", "/v1/campaigns/life:pause", NULL, 200);
    r = checkin("life", "C1", "2026-12-02T12:00:00+08:00", NULL);
    h_assert_problem(r, 409, "not-running", NULL);
    h_resp_free(&r);
    must("POST", "/v1/campaigns/life:resume", NULL, 200);
    must("POST", "/v1/campaigns/life:end", NULL, 200);
    r = h_req(S, "POST", "/v1/campaigns/life:resume", S->admin_key, NULL);
    h_assert_problem(r, 409, "bad-transition", NULL);
    h_resp_free(&r);
    assert_int_equal(h_sql_long(S, "SELECT COUNT(*) FROM campaign_transitions WHERE campaign_id ="
                                   " 'life'"),
                     5);
    assert_int_equal(h_sql_long(S, "SELECT COUNT(*) FROM audit_log WHERE action LIKE"
                                   " 'POST /v1/campaigns/{id}:%'"),
                     5);
}

/* ---- check-in ---- */

static void test_checkin_streaks_and_makeup(void **state)
{
    char fields[1024];
    snprintf(fields, sizeof fields,
             "%s,\"checkin\":{\"rewards\":[{\"day\":1,\"points\":1},{\"day\":2,\"points\":2},"
             "{\"day\":3,\"points\":3}],\"cycle\":true,\"makeup\":{\"cost\":2,"
             "\"max_days_back\":3}}",
             k_ckfields);
    launch("daily", fields);
    /* 23:59 and 00:01 in Shanghai are two business days */
    h_resp r = checkin("daily", "C1", "2026-12-05T23:59:00+08:00", NULL);
    assert_int_equal(r.status, 201);
    assert_int_equal(json_integer_value(json_object_get(r.json, "streak")), 1);
    h_resp_free(&r);
    r = checkin("daily", "C1", "2026-12-06T00:01:00+08:00", NULL);
    assert_int_equal(r.status, 201);
    assert_int_equal(json_integer_value(json_object_get(r.json, "streak")), 2);
    assert_string_equal(h_str(r.json, "day"), "2026-12-06");
    h_resp_free(&r);
    r = checkin("daily", "C1", "2026-12-06T23:00:00+08:00", NULL);
    h_assert_problem(r, 409, "already-checked-in", NULL);
    h_resp_free(&r);
    /* an Idempotency-Key replays the first answer */
    CURL *c = curl_easy_init();
    h_resp a = checkin_on(c, "daily", "C2", "2026-12-06T10:00:00+08:00", NULL, "same-key");
    h_resp b = checkin_on(c, "daily", "C2", "2026-12-06T10:00:00+08:00", NULL, "same-key");
    curl_easy_cleanup(c);
    assert_int_equal(a.status, 201);
    assert_int_equal(b.status, 201);
    assert_string_equal(h_str(a.json, "action"), h_str(b.json, "action"));
    h_resp_free(&a);
    h_resp_free(&b);
    /* miss the 7th, check in on the 8th (streak 1), make the 7th up */
    r = checkin("daily", "C1", "2026-12-08T09:00:00+08:00", NULL);
    assert_int_equal(json_integer_value(json_object_get(r.json, "streak")), 1);
    h_resp_free(&r);
    assert_int_equal(balance_of("C1"), 1 + 2 + 1);
    r = checkin("daily", "C1", "2026-12-08T09:05:00+08:00", "2026-12-01");
    h_assert_problem(r, 409, "makeup-not-allowed", "/day");
    h_resp_free(&r);
    r = checkin("daily", "C1", "2026-12-08T09:05:00+08:00", "2026-12-07");
    assert_int_equal(r.status, 201);
    assert_true(json_is_true(json_object_get(r.json, "makeup")));
    assert_int_equal(json_integer_value(json_object_get(r.json, "streak")), 3);
    assert_int_equal(json_integer_value(json_object_get(r.json, "paid_points")), 2);
    h_resp_free(&r);
    assert_int_equal(balance_of("C1"), 4 - 2);
    const char *hs[] = {"X-Siyu-Now: 2026-12-08T20:00:00+08:00", NULL};
    r = h_req_h(S, "GET", "/v1/campaigns/daily/customers/C1", APP_KEY, NULL, hs);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_integer_value(json_object_get(r.json, "streak")), 4);
    assert_true(json_is_true(json_object_get(r.json, "checked_in_today")));
    assert_int_equal(json_array_size(json_object_get(r.json, "actions")), 4);
    h_resp_free(&r);
    /* not enough points for another make-up */
    r = checkin("daily", "C3", "2026-12-08T09:05:00+08:00", "2026-12-07");
    h_assert_problem(r, 409, "insufficient-points", NULL);
    h_resp_free(&r);
}

static void test_audience_suitability_holdout(void **state)
{
    must("POST", "/v1/segments",
         "{\"id\":\"bold\",\"name\":\"bold\",\"expression\":\"risk_level >= R3\"}", 201);
    char fields[1024];
    snprintf(fields, sizeof fields,
             "%s,\"segment_id\":\"bold\",\"suitability\":{\"product_risk\":\"R4\","
             "\"validity_days\":365},\"holdout_percent\":30,"
             "\"checkin\":{\"rewards\":[{\"day\":1,\"points\":1}],\"cycle\":true}",
             k_ckfields);
    launch("fund", fields);
    int seen[5] = {0};
    for (int i = 1; i <= 40; i++) {
        char no[16];
        snprintf(no, sizeof no, "C%d", i);
        h_resp r = checkin("fund", no, "2026-12-10T10:00:00+08:00", NULL);
        int risk = 1 + i % 5;
        bool fresh = i % 7 != 0;
        const char *want = risk < 3 ? "not-in-audience" : risk < 4 || !fresh ? "unsuitable" : NULL;
        if (want) {
            h_assert_problem(r, 403, want, NULL);
            seen[want[0] == 'n' ? 0 : 1]++;
        } else if (r.status == 403) {
            h_assert_problem(r, 403, "holdout", NULL);
            if (!seen[2]++) {
                /* the holdout was recorded, so the refusal was stored for
                 * the key: its replay is the same problem, as a problem */
                char key[64];
                snprintf(key, sizeof key, "hold-%ld", (long)getpid());
                CURL *c = curl_easy_init();
                h_resp a = checkin_on(c, "fund", no, "2026-12-10T10:00:00+08:00", NULL, key);
                h_resp b = checkin_on(c, "fund", no, "2026-12-10T10:00:00+08:00", NULL, key);
                curl_easy_cleanup(c);
                h_assert_problem(a, 403, "holdout", NULL);
                h_assert_problem(b, 403, "holdout", NULL); /* checks the content type */
                char replayed[16];
                assert_true(h_header(&b, "Idempotent-Replayed", replayed, sizeof replayed));
                h_resp_free(&a);
                h_resp_free(&b);
            }
        } else {
            assert_int_equal(r.status, 201);
            seen[3]++;
        }
        h_resp_free(&r);
    }
    assert_true(seen[0] > 0 && seen[1] > 0 && seen[3] > 0);
    /* the holdout is recorded, and the customer view says so */
    assert_int_equal(h_sql_long(S, "SELECT COUNT(*) FROM campaign_holdouts WHERE campaign_id ="
                                   " 'fund'"),
                     seen[2]);
    assert_int_equal(h_sql_long(S, "SELECT COUNT(*) FROM campaign_actions WHERE campaign_id ="
                                   " 'fund'"),
                     seen[3]);
}

/* ---- a reward item for a segment goes only to its members ---- */

static void test_reward_item_eligibility(void **state)
{
    (void)state;
    must("POST", "/v1/segments",
         "{\"id\":\"careful\",\"name\":\"careful\",\"expression\":\"risk_level <= R2\"}", 201);
    /* a rate discount only for the careful customers */
    must("POST", "/v1/benefits/suppliers", "{\"code\":\"bank\",\"name\":\"本行\"}", 201);
    must("POST", "/v1/benefits/items",
         "{\"code\":\"rate\",\"name\":\"利率优惠\",\"kind\":\"financial\",\"supplier\":"
         "\"bank\",\"face_value\":0,\"cost_price\":0,\"stock\":100,\"params\":{\"right\":\"rate_"
         "discount\",\"bp\":10},"
         "\"segment_id\":\"careful\"}",
         201);
    char fields[1024];
    snprintf(fields, sizeof fields,
             "%s,\"checkin\":{\"rewards\":[{\"day\":1,\"item\":\"rate\"}],\"cycle\":true}",
             k_ckfields);
    launch("vip", fields);
    /* C1 is R2 (careful), C2 is R3 */
    h_resp r = checkin("vip", "C1", "2026-12-10T10:00:00+08:00", NULL);
    if (r.status != 201)
        fail_msg("C1 (careful): %ld %s", r.status, r.body);
    h_resp_free(&r);
    r = checkin("vip", "C2", "2026-12-10T10:00:00+08:00", NULL);
    h_assert_problem(r, 409, "reward-refused", NULL);
    assert_non_null(strstr(r.body, "not-eligible"));
    h_resp_free(&r);
    /* nothing was written for C2: no grant, no check-in */
    assert_int_equal(h_sql_long(S, "SELECT COUNT(*) FROM benefit_grants WHERE item = 'rate'"), 1);
    assert_int_equal(h_sql_long(S, "SELECT COUNT(*) FROM benefit_grants WHERE item = 'rate' AND"
                                   " customer_no = 'C1'"),
                     1);
    assert_int_equal(h_sql_long(S, "SELECT COUNT(*) FROM campaign_actions WHERE campaign_id = 'vip'"
                                   " AND customer_no = 'C2'"),
                     0);
}

/* ---- tasks ---- */

static void test_tasks_from_events(void **state)
{
    launch("tasks", "\"name\":\"Tasks\",\"type\":\"task\",\"starts_at\":\"2026-01-01T00:00:00Z\","
                    "\"ends_at\":\"2099-01-01T00:00:00Z\",\"point_type\":\"sun\","
                    "\"tasks\":[{\"code\":\"view\",\"event\":\"view_wealth\",\"min_dwell_ms\":"
                    "30000,\"period\":\"day\",\"reward\":{\"points\":7}},{\"code\":\"card\","
                    "\"event\":\"bind_card\",\"period\":\"campaign\",\"reward\":{\"points\":50}},"
                    "{\"code\":\"bill\",\"event\":\"pay_bill\",\"period\":\"day\",\"props\":"
                    "{\"amount\":{\"gte\":10000},\"channel\":{\"in\":[\"app\",\"wechat\"]}},"
                    "\"reward\":{\"points\":12}}]");
    json_int_t before = balance_of("C5");
    long long now = (long long)time(NULL) * 1000;
    char body[1024];
    snprintf(body, sizeof body,
             "[{\"event_id\":\"t1\",\"customer_no\":\"C5\",\"name\":\"view_wealth\",\"ts\":%lld,"
             "\"dwell_ms\":40000},{\"event_id\":\"t2\",\"customer_no\":\"C5\",\"name\":"
             "\"view_wealth\",\"ts\":%lld,\"dwell_ms\":45000},{\"event_id\":\"t3\","
             "\"customer_no\":\"C5\",\"name\":\"view_wealth\",\"ts\":%lld,\"dwell_ms\":1000},"
             "{\"event_id\":\"t4\",\"customer_no\":\"C5\",\"name\":\"bind_card\",\"ts\":%lld}]",
             now, now, now, now);
    h_resp r = h_req(S, "POST", "/v1/events", APP_KEY, body);
    assert_int_equal(r.status, 200);
    json_t *tr = json_object_get(r.json, "task_rewards");
    assert_int_equal(json_array_size(tr), 2);
    assert_string_equal(h_str(json_array_get(tr, 0), "event_id"), "t1");
    assert_string_equal(h_str(json_array_get(tr, 1), "task"), "card");
    /* the other two matched the task and say why they earned nothing: the
     * second view the same day, the third too short */
    json_t *tf = json_object_get(r.json, "task_refusals");
    assert_int_equal(json_array_size(tf), 2);
    assert_string_equal(h_str(json_array_get(tf, 0), "event_id"), "t2");
    assert_string_equal(h_str(json_array_get(tf, 0), "reason"), "already-done");
    assert_string_equal(h_str(json_array_get(tf, 1), "event_id"), "t3");
    assert_string_equal(h_str(json_array_get(tf, 1), "reason"), "condition-not-met");
    h_resp_free(&r);
    assert_int_equal(balance_of("C5"), before + 57);
    /* the same events again are duplicates and earn nothing */
    r = h_req(S, "POST", "/v1/events", APP_KEY, body);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_integer_value(json_object_get(r.json, "duplicates")), 4);
    assert_int_equal(json_array_size(json_object_get(r.json, "task_rewards")), 0);
    h_resp_free(&r);
    /* new events in the same period: the task is done already */
    snprintf(body, sizeof body,
             "[{\"event_id\":\"t5\",\"customer_no\":\"C5\",\"name\":\"bind_card\",\"ts\":%lld}]",
             now);
    r = h_req(S, "POST", "/v1/events", APP_KEY, body);
    assert_int_equal(json_array_size(json_object_get(r.json, "task_rewards")), 0);
    tf = json_object_get(r.json, "task_refusals");
    assert_int_equal(json_array_size(tf), 1);
    assert_string_equal(h_str(json_array_get(tf, 0), "task"), "card");
    assert_string_equal(h_str(json_array_get(tf, 0), "reason"), "already-done");
    h_resp_free(&r);
    assert_int_equal(balance_of("C5"), before + 57);
    /* a task with conditions on the event's props: a bill of 50 yuan, or
     * one paid at the counter, earns nothing and says which condition
     * failed; one of 200 yuan in the app earns the reward */
    snprintf(body, sizeof body,
             "[{\"event_id\":\"t6\",\"customer_no\":\"C5\",\"name\":\"pay_bill\",\"ts\":%lld,"
             "\"props\":{\"amount\":5000,\"channel\":\"app\"}},{\"event_id\":\"t7\","
             "\"customer_no\":\"C5\",\"name\":\"pay_bill\",\"ts\":%lld,\"props\":{\"amount\":"
             "20000,\"channel\":\"counter\"}},{\"event_id\":\"t8\",\"customer_no\":\"C5\","
             "\"name\":\"pay_bill\",\"ts\":%lld,\"props\":{\"amount\":20000,\"channel\":"
             "\"app\",\"biller\":\"water\"}}]",
             now, now, now);
    r = h_req(S, "POST", "/v1/events", APP_KEY, body);
    assert_int_equal(r.status, 200);
    tr = json_object_get(r.json, "task_rewards");
    assert_int_equal(json_array_size(tr), 1);
    assert_string_equal(h_str(json_array_get(tr, 0), "event_id"), "t8");
    assert_string_equal(h_str(json_array_get(tr, 0), "task"), "bill");
    tf = json_object_get(r.json, "task_refusals");
    assert_int_equal(json_array_size(tf), 2);
    assert_string_equal(h_str(json_array_get(tf, 0), "reason"), "condition-not-met");
    assert_string_equal(h_str(json_array_get(tf, 0), "detail"),
                        "props.amount is below the task's bound");
    assert_string_equal(h_str(json_array_get(tf, 1), "detail"),
                        "props.channel is none of the task's values");
    h_resp_free(&r);
    assert_int_equal(balance_of("C5"), before + 57 + 12);
    /* the campaign gives its conditions back as they were set */
    r = h_req(S, "GET", "/v1/campaigns/tasks", S->admin_key, NULL);
    assert_int_equal(r.status, 200);
    json_t *props = json_object_get(json_array_get(json_object_get(r.json, "tasks"), 2), "props");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(props, "amount"), "gte")),
                     10000);
    assert_int_equal(json_array_size(json_object_get(json_object_get(props, "channel"), "in")), 2);
    h_resp_free(&r);
    must("POST", "/v1/campaigns/tasks:pause", NULL, 200);
}

/* ---- 64 concurrent clients ---- */

#define CLIENTS 64

typedef struct race {
    volatile int go;
    int ok, refused, other;
    const char *campaign, *refusal;
    bool by_day; /* one customer, a different day per request */
    char last_other[256];
    pthread_mutex_t mu;
} race;

typedef struct client {
    race *rc;
    int id;
} client;

static void *racer(void *p)
{
    client *cl = p;
    race *rc = cl->rc;
    CURL *c = curl_easy_init();
    while (!rc->go)
        h_sleep_ms(1);
    for (int i = 0; i < 4; i++) {
        char no[16], now[64], key[64];
        int k = cl->id * 4 + i;
        if (rc->by_day) {
            snprintf(no, sizeof no, "C40");
            snprintf(now, sizeof now, "2026-12-%02dT12:00:00+08:00", 1 + k % 28);
        } else {
            snprintf(no, sizeof no, "C%d", 1 + k % 40);
            snprintf(now, sizeof now, "2026-12-20T12:00:00+08:00");
        }
        snprintf(key, sizeof key, "%s-%d", rc->campaign, k);
        h_resp r = checkin_on(c, rc->campaign, no, now, NULL, key);
        pthread_mutex_lock(&rc->mu);
        if (r.status == 201) {
            rc->ok++;
        } else if (r.status == 409 && r.json &&
                   (!strcmp(h_str(r.json, "type"), rc->refusal) ||
                    !strcmp(h_str(r.json, "type"), "already-checked-in"))) {
            rc->refused++;
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

static void run_race(race *rc)
{
    pthread_mutex_init(&rc->mu, NULL);
    pthread_t t[CLIENTS];
    client cl[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        cl[i] = (client){rc, i};
        pthread_create(&t[i], NULL, racer, &cl[i]);
    }
    rc->go = 1;
    for (int i = 0; i < CLIENTS; i++)
        pthread_join(t[i], NULL);
    if (rc->other)
        fail_msg("%d unexpected answers, e.g. %s", rc->other, rc->last_other);
    assert_int_equal(rc->ok + rc->refused, CLIENTS * 4);
}

static void test_concurrent_budget_and_limits(void **state)
{
    char fields[1024];
    snprintf(fields, sizeof fields,
             "%s,\"budget\":{\"points\":100},\"checkin\":{\"rewards\":[{\"day\":1,"
             "\"points\":5}],\"cycle\":true}",
             k_ckfields);
    launch("burst", fields);
    long paid_before = h_sql_long(S, "SELECT COALESCE(SUM(balance), 0) FROM point_accounts");
    /* 256 check-ins of 40 customers on one day: 20 are paid (100 / 5) */
    race rc = {.campaign = "burst", .refusal = "budget-exhausted"};
    run_race(&rc);
    assert_int_equal(rc.ok, 20);
    h_resp r = h_req(S, "GET", "/v1/campaigns/burst", S->admin_key, NULL);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(r.json, "budget"), "spent_points")),
        100);
    h_resp_free(&r);
    assert_int_equal(
        h_sql_long(S, "SELECT COALESCE(SUM(balance), 0) FROM point_accounts") - paid_before, 100);
    assert_int_equal(h_sql_long(S, "SELECT COUNT(*) FROM campaign_actions WHERE campaign_id ="
                                   " 'burst'"),
                     20);
    /* one customer, 256 check-ins on 28 different days, at most 3 in all */
    snprintf(fields, sizeof fields,
             "%s,\"limits\":{\"per_campaign\":3},\"checkin\":{\"rewards\":[{\"day\":1,"
             "\"points\":1}],\"cycle\":true}",
             k_ckfields);
    launch("capped", fields);
    race rl = {.campaign = "capped", .refusal = "limit-reached", .by_day = true};
    run_race(&rl);
    assert_int_equal(rl.ok, 3);
    assert_int_equal(h_sql_long(S, "SELECT COUNT(*) FROM campaign_actions WHERE campaign_id ="
                                   " 'capped' AND customer_no = 'C40'"),
                     3);
}

/* ---- a check-in that fails after writing (X-Siyu-Test-Fail) ---- */

/* Twenty customers check in at once, every other one failing after its SQL
 * ran: the writer runs their batches again (writer.h), and only the
 * successful check-ins are there, each once; the failed ones check in
 * afterwards as if for the first time. */
typedef struct undo_ck {
    int n;
    volatile int *go;
    long status;
    char type[32];
} undo_ck;

static void *undo_ck_run(void *p)
{
    undo_ck *u = p;
    CURL *c = curl_easy_init();
    while (!*u->go)
        ;
    char path[96], body[64], key[64];
    snprintf(path, sizeof path, "/v1/campaigns/undock/checkin");
    snprintf(body, sizeof body, "{\"customer_no\":\"C%d\"}", 1 + u->n);
    snprintf(key, sizeof key, "Idempotency-Key: undock-%d", u->n);
    const char *hs[] = {"X-Siyu-Now: 2026-12-21T12:00:00+08:00", key,
                        u->n % 2 ? "X-Siyu-Test-Fail: after-write" : NULL, NULL};
    h_resp r = h_req_on(c, S, "POST", path, APP_KEY, body, strlen(body), hs);
    u->status = r.status;
    snprintf(u->type, sizeof u->type, "%s", r.json ? h_str(r.json, "type") : "");
    h_resp_free(&r);
    curl_easy_cleanup(c);
    return NULL;
}

static void test_checkin_failure_after_write_undone(void **state)
{
    char fields[1024];
    snprintf(fields, sizeof fields,
             "%s,\"checkin\":{\"rewards\":[{\"day\":1,\"points\":5}],\"cycle\":true}", k_ckfields);
    launch("undock", fields);
    long paid0 = h_sql_long(S, "SELECT COALESCE(SUM(amount), 0) FROM ledger_entries"
                               " WHERE debit_account LIKE 'source:%undock%'");
    volatile int go = 0;
    undo_ck u[20];
    pthread_t t[20];
    for (int i = 0; i < 20; i++) {
        u[i] = (undo_ck){.n = i, .go = &go};
        pthread_create(&t[i], NULL, undo_ck_run, &u[i]);
    }
    go = 1;
    for (int i = 0; i < 20; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < 20; i++) {
        if (u[i].status != (i % 2 ? 500 : 201))
            fail_msg("C%d: %ld %s", 1 + i, u[i].status, u[i].type);
    }
    assert_int_equal(h_sql_long(S, "SELECT COUNT(*) FROM campaign_actions WHERE campaign_id ="
                                   " 'undock'"),
                     10);
    assert_int_equal(h_sql_long(S, "SELECT COALESCE(SUM(amount), 0) FROM ledger_entries"
                                   " WHERE debit_account LIKE 'source:%undock%'") -
                         paid0,
                     50);
    /* the failed ones were never checked in: their first check-in now */
    for (int i = 1; i < 20; i += 2) {
        char no[16];
        snprintf(no, sizeof no, "C%d", 1 + i);
        h_resp r = checkin("undock", no, "2026-12-21T13:00:00+08:00", NULL);
        if (r.status != 201)
            fail_msg("%s again: %ld %s", no, r.status, r.body);
        assert_int_equal(json_integer_value(json_object_get(r.json, "streak")), 1);
        h_resp_free(&r);
    }
    assert_int_equal(h_sql_long(S, "SELECT COUNT(*) FROM campaign_actions WHERE campaign_id ="
                                   " 'undock'"),
                     20);
}

/* ---- bad input ---- */

typedef struct bad_case {
    const char *method, *path, *body;
    long status;
    const char *type, *field;
    const char *hdr;
} bad_case;

static void test_bad_input_writes_nothing(void **state)
{
    launch("okcamp", "\"name\":\"ok\",\"type\":\"checkin\",\"starts_at\":"
                     "\"2026-12-01T00:00:00+08:00\",\"ends_at\":\"2027-01-01T00:00:00+08:00\","
                     "\"point_type\":\"sun\",\"checkin\":{\"rewards\":[{\"day\":1,\"points\":1}]}");
    must("POST", "/v1/campaigns",
         "{\"id\":\"adraft\",\"name\":\"d\",\"type\":\"lottery\",\"starts_at\":"
         "\"2026-12-01T00:00:00+08:00\",\"ends_at\":\"2027-01-01T00:00:00+08:00\"}",
         201);
#define CK                                                                                         \
    "\"name\":\"x\",\"type\":\"checkin\",\"starts_at\":\"2026-12-01T00:00:00+08:00\","             \
    "\"ends_at\":\"2027-01-01T00:00:00+08:00\",\"point_type\":\"sun\""
#define RW "\"checkin\":{\"rewards\":[{\"day\":1,\"points\":1}]}"
    static const bad_case cases[] = {
        {"POST", "/v1/campaigns", "{", 400, "invalid-json", NULL, NULL},
        {"POST", "/v1/campaigns", "{\"id\":\"b1\"," RW "}", 400, "validation", "/name", NULL},
        {"POST", "/v1/campaigns", "{\"id\":\"B 1\"," CK "," RW "}", 400, "validation", "/id", NULL},
        {"POST", "/v1/campaigns", "{\"id\":\"b1\",\"bogus\":1," CK "," RW "}", 400, "validation",
         "/bogus", NULL},
        {"POST", "/v1/campaigns",
         "{\"name\":\"x\",\"type\":\"raffle\",\"starts_at\":\"2026-12-01T00:00:00Z\","
         "\"ends_at\":\"2027-01-01T00:00:00Z\"}",
         400, "validation", "/type", NULL},
        {"POST", "/v1/campaigns",
         "{\"name\":\"x\",\"type\":\"checkin\",\"starts_at\":\"tomorrow\",\"ends_at\":"
         "\"2027-01-01T00:00:00Z\"," RW "}",
         400, "validation", "/starts_at", NULL},
        {"POST", "/v1/campaigns",
         "{\"name\":\"x\",\"type\":\"checkin\",\"starts_at\":\"2027-01-01T00:00:00Z\","
         "\"ends_at\":\"2026-01-01T00:00:00Z\"," RW "}",
         400, "validation", "/ends_at", NULL},
        {"POST", "/v1/campaigns",
         "{" CK ",\"open_hours\":{\"from\":\"25:00\",\"until\":\"22:00\"}," RW "}", 400,
         "validation", "/open_hours/from", NULL},
        {"POST", "/v1/campaigns",
         "{" CK ",\"open_hours\":{\"from\":\"10:00\",\"until\":\"09:00\"}," RW "}", 400,
         "validation", "/open_hours/until", NULL},
        {"POST", "/v1/campaigns", "{" CK ",\"segment_id\":\"nope\"," RW "}", 400, "validation",
         "/segment_id", NULL},
        {"POST", "/v1/campaigns", "{" CK ",\"suitability\":{\"product_risk\":\"R9\"}," RW "}", 400,
         "validation", "/suitability/product_risk", NULL},
        {"POST", "/v1/campaigns", "{" CK ",\"holdout_percent\":60," RW "}", 400, "validation",
         "/holdout_percent", NULL},
        {"POST", "/v1/campaigns", "{" CK ",\"budget\":{\"points\":-1}," RW "}", 400, "validation",
         "/budget/points", NULL},
        {"POST", "/v1/campaigns", "{" CK ",\"limits\":{\"per_day\":0}," RW "}", 400, "validation",
         "/limits/per_day", NULL},
        {"POST", "/v1/campaigns", "{" CK "}", 400, "validation", "/checkin", NULL},
        {"POST", "/v1/campaigns",
         "{\"name\":\"t\",\"type\":\"task\",\"starts_at\":\"2026-12-01T00:00:00Z\","
         "\"ends_at\":\"2027-01-01T00:00:00Z\",\"point_type\":\"sun\",\"tasks\":[{\"code\":"
         "\"b\",\"event\":\"pay_bill\",\"period\":\"day\",\"props\":{\"amount\":{\"gte\":"
         "\"100\"}},\"reward\":{\"points\":1}}]}",
         400, "validation", "/tasks/0/props/amount", NULL},
        {"POST", "/v1/campaigns",
         "{" CK ",\"checkin\":{\"rewards\":[{\"day\":1,\"item\":"
         "\"nope\"}]}}",
         400, "validation", "/checkin/rewards/0/item", NULL},
        {"POST", "/v1/campaigns",
         "{\"name\":\"x\",\"type\":\"checkin\",\"starts_at\":\"2026-12-01T00:00:00Z\","
         "\"ends_at\":\"2027-01-01T00:00:00Z\",\"point_type\":\"moon\"," RW "}",
         400, "validation", "/point_type", NULL},
        {"POST", "/v1/campaigns", "{\"id\":\"okcamp\"," CK "," RW "}", 409, "conflict", "/id",
         NULL},
        {"PUT", "/v1/campaigns/adraft", "{\"id\":\"other\"," CK "," RW "}", 400, "validation",
         "/id", NULL},
        {"PUT", "/v1/campaigns/adraft", "{\"name\":\"\"}", 400, "validation", "/name", NULL},
        {"PUT", "/v1/campaigns/okcamp", "{" CK "," RW "}", 409, "not-draft", NULL, NULL},
        {"PUT", "/v1/campaigns/none", "{" CK "," RW "}", 404, "not-found", NULL, NULL},
        {"POST", "/v1/campaigns/adraft:submit", "{\"nope\":1}", 400, "validation", "/nope", NULL},
        {"POST", "/v1/campaigns/adraft:approve", "[1]", 400, "validation", NULL, NULL},
        {"POST", "/v1/campaigns/adraft:reject", "{\"note\":5}", 400, "validation", "/note", NULL},
        {"POST", "/v1/campaigns/adraft:pause", NULL, 409, "bad-transition", NULL, NULL},
        {"POST", "/v1/campaigns/adraft:resume", NULL, 409, "bad-transition", NULL, NULL},
        {"POST", "/v1/campaigns/none:end", NULL, 404, "not-found", NULL, NULL},
        {"POST", "/v1/campaigns/okcamp/checkin", "{}", 400, "validation", "/customer_no",
         "Idempotency-Key: b1"},
        {"POST", "/v1/campaigns/okcamp/checkin", "{\"customer_no\":\"C1\",\"day\":\"12/07\"}", 400,
         "validation", "/day", "Idempotency-Key: b2"},
        {"POST", "/v1/campaigns/okcamp/checkin", "{\"customer_no\":\"C1\",\"x\":1}", 400,
         "validation", "/x", "Idempotency-Key: b3"},
        {"POST", "/v1/campaigns/okcamp/checkin", "{\"customer_no\":\"C1\"}", 400, "validation",
         "Idempotency-Key", NULL},
        {"POST", "/v1/campaigns/okcamp/checkin", "{\"customer_no\":\"C1\"}", 400, "validation",
         "X-Siyu-Now", "X-Siyu-Now: yesterday"},
        {"POST", "/v1/campaigns/okcamp/checkin", "{\"customer_no\":\"C999\"}", 404, "not-found",
         "/customer_no", "Idempotency-Key: b4"},
        {"POST", "/v1/campaigns/adraft/checkin", "{\"customer_no\":\"C1\"}", 409, "wrong-type",
         NULL, "Idempotency-Key: b5"},
        {"POST", "/v1/campaigns/none/checkin", "{\"customer_no\":\"C1\"}", 404, "not-found", NULL,
         "Idempotency-Key: b6"},
        {"GET", "/v1/campaigns?type=raffle", NULL, 400, "validation", "type", NULL},
        {"GET", "/v1/campaigns?status=live", NULL, 400, "validation", "status", NULL},
        {"GET", "/v1/campaigns/none", NULL, 404, "not-found", NULL, NULL},
        {"GET", "/v1/campaigns/none/customers/C1", NULL, 404, "not-found", NULL, NULL},
    };
#undef CK
#undef RW
    const char *snapshot =
        "SELECT (SELECT COUNT(*) FROM campaigns) * 1000000 + (SELECT COUNT(*) FROM"
        " campaign_actions) * 1000 + (SELECT COUNT(*) FROM campaign_transitions) +"
        " (SELECT COUNT(*) FROM ledger_entries) * 7 + (SELECT COALESCE(SUM(LENGTH(rules)), 0)"
        " FROM campaigns)";
    long before = h_sql_long(S, snapshot);
    for (size_t i = 0; i < SY_TEST_LEN(cases); i++) {
        const bad_case *c = &cases[i];
        const char *hs[] = {c->hdr, NULL};
        h_resp r = h_req_h(S, c->method, c->path,
                           strstr(c->path, "checkin") ? APP_KEY : S->admin_key, c->body, hs);
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

/* The test clock reaches the catalogue and the ledger too: a grant's day
 * limit counts the business day of the request's X-Siyu-Now, and a points
 * entry carries that moment. */
static void test_clock_in_catalogue_and_ledger(void **state)
{
    (void)state;
    must("POST", "/v1/benefits/suppliers", "{\"code\":\"clk\",\"name\":\"clk\"}", 201);
    must("POST", "/v1/benefits/items",
         "{\"code\":\"daily\",\"name\":\"每日券\",\"kind\":\"coupon\",\"supplier\":\"clk\","
         "\"face_value\":100,\"cost_price\":90,\"params\":{\"threshold\":0},\"stock\":10,"
         "\"validity_days\":3,\"limits\":{\"per_day\":1}}",
         201);
    const char *d1[] = {"X-Siyu-Now: 2026-12-20T23:30:00+08:00", NULL};
    const char *d2[] = {"X-Siyu-Now: 2026-12-21T00:30:00+08:00", NULL};
    const char *body = "{\"item\":\"daily\"}";
    h_resp r = h_req_h(S, "POST", "/v1/customers/C9/grants", APP_KEY, body, d1);
    if (r.status != 201)
        fail_msg("first grant: %ld %s", r.status, r.body);
    assert_non_null(strstr(h_str(r.json, "issued_at"), "2026-12-20T15:30:00"));
    h_resp_free(&r);
    r = h_req_h(S, "POST", "/v1/customers/C9/grants", APP_KEY, body, d1);
    h_assert_problem(r, 409, "limit-reached", NULL);
    h_resp_free(&r);
    /* an hour later it is the next business day in Shanghai */
    r = h_req_h(S, "POST", "/v1/customers/C9/grants", APP_KEY, body, d2);
    assert_int_equal(r.status, 201);
    h_resp_free(&r);
    r = h_req_h(S, "POST", "/v1/customers/C9/points:earn", S->admin_key,
                "{\"point_type\":\"sun\",\"amount\":3,\"source\":\"clk\"}", d1);
    assert_int_equal(r.status, 201);
    assert_non_null(strstr(h_str(r.json, "created_at"), "2026-12-20T15:30:00"));
    h_resp_free(&r);
}

/* A server without --test-clock refuses X-Siyu-Now and X-Siyu-Test-Fail. */
static void test_clock_only_in_tests(void **state)
{
    h_server *p = h_start(NULL);
    const char *hs[] = {"X-Siyu-Now: 2030-01-01T00:00:00Z", NULL};
    h_resp r = h_req_h(p, "GET", "/v1/campaigns", p->admin_key, NULL, hs);
    h_assert_problem(r, 400, "validation", "X-Siyu-Now");
    h_resp_free(&r);
    const char *hf[] = {"X-Siyu-Test-Fail: after-write", NULL};
    r = h_req_h(p, "POST", "/v1/point-types", p->admin_key,
                "{\"code\":\"tf\",\"name\":\"tf\",\"expiry\":\"never\"}", hf);
    h_assert_problem(r, 400, "validation", "X-Siyu-Test-Fail");
    h_resp_free(&r);
    r = h_req(p, "GET", "/v1/point-types/tf", p->admin_key, NULL);
    assert_int_equal(r.status, 404);
    h_resp_free(&r);
    r = h_req(p, "GET", "/v1/campaigns", p->admin_key, NULL);
    assert_int_equal(r.status, 200);
    h_resp_free(&r);
    h_stop(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lifecycle_maker_checker),
        cmocka_unit_test(test_checkin_streaks_and_makeup),
        cmocka_unit_test(test_audience_suitability_holdout),
        cmocka_unit_test(test_reward_item_eligibility),
        cmocka_unit_test(test_clock_in_catalogue_and_ledger),
        cmocka_unit_test(test_tasks_from_events),
        cmocka_unit_test(test_concurrent_budget_and_limits),
        cmocka_unit_test(test_checkin_failure_after_write_undone),
        cmocka_unit_test(test_bad_input_writes_nothing),
        cmocka_unit_test(test_clock_only_in_tests),
    };
    return cmocka_run_group_tests_name("e2e-campaigns", tests, group_setup, group_teardown);
}

/* test_e2e_lottery.c — lotteries and anti-abuse end to end on the real
 * binary (--test-clock): the festival flow (prize table while a draft,
 * maker-checker, a draw, its idempotent replay and its explanation); 64
 * concurrent clients against a prize's stock, against a budget running
 * out mid-burst and against a per-customer daily cap (never exceeded, and
 * `siyu check` agrees); the anti-abuse gate (blocklist, rate limits with
 * Retry-After, velocity, X-Forwarded-For only from trusted proxies, the
 * refusals in /metrics); bad input for every new endpoint (400 naming the
 * field, nothing written); and kill -9 during a run of draws: after the
 * restart every acknowledged draw is there and `siyu check` passes. */
#include "e2e/harness.h"

static h_server *S;
static char APP_KEY[128], ADMIN2[128];

#define NOW "2026-12-05T12:00:00+08:00"

static void make_key(h_server *s, const char *role, char *out)
{
    char *txt = NULL;
    assert_int_equal(h_cli(s, &txt, "key create --tenant demo --role %s", role), 0);
    sscanf(txt, "%127s", out);
    free(txt);
}

static void must_on(h_server *s, const char *key, const char *method, const char *path,
                    const char *body, long want)
{
    const char *hs[] = {"X-Siyu-Now: " NOW, NULL};
    h_resp r = h_req_h(s, method, path, key, body, hs);
    if (r.status != want)
        fail_msg("%s %s %s: %ld %s", method, path, body ? body : "", r.status, r.body);
    h_resp_free(&r);
}

static void must(const char *method, const char *path, const char *body, long want)
{
    must_on(S, S->admin_key, method, path, body, want);
}

static void assert_check_passes(h_server *s)
{
    char *out = NULL;
    int rc = h_cli(s, &out, "check --tenant demo");
    if (rc != 0 || !strstr(out, "campaigns:") || !strstr(out, "every invariant holds"))
        fail_msg("siyu check exited %d:\n%s", rc, out ? out : "");
    free(out);
}

/* A lottery campaign, its prize table, approved by the second key. */
static void launch_on(h_server *s, const char *admin2, const char *id, const char *fields,
                      const char *table)
{
    char body[4096], path[160];
    snprintf(body, sizeof body,
             "{\"id\":\"%s\",\"name\":\"抽奖\",\"type\":\"lottery\",\"starts_at\":"
             "\"2026-12-01T00:00:00+08:00\",\"ends_at\":\"2027-01-01T00:00:00+08:00\","
             "\"point_type\":\"sun\"%s%s}",
             id, fields[0] ? "," : "", fields);
    must_on(s, s->admin_key, "POST", "/v1/campaigns", body, 201);
    snprintf(path, sizeof path, "/v1/campaigns/%s/prizes", id);
    must_on(s, s->admin_key, "PUT", path, table, 201);
    snprintf(path, sizeof path, "/v1/campaigns/%s:submit", id);
    must_on(s, s->admin_key, "POST", path, NULL, 200);
    snprintf(path, sizeof path, "/v1/campaigns/%s:approve", id);
    must_on(s, admin2, "POST", path, NULL, 200);
}

static h_resp draw_on(CURL *c, h_server *s, const char *key, const char *id, const char *no,
                      const char *idem, const char *const *extra)
{
    char path[128], body[160], hkey[160];
    snprintf(path, sizeof path, "/v1/campaigns/%s/draw", id);
    snprintf(body, sizeof body, "{\"customer_no\":\"%s\"}", no);
    snprintf(hkey, sizeof hkey, "Idempotency-Key: %s", idem);
    const char *hs[8] = {"X-Siyu-Now: " NOW, hkey};
    int n = 2;
    for (const char *const *e = extra; e && *e && n < 7; e++)
        hs[n++] = *e;
    hs[n] = NULL;
    return h_req_on(c, s, "POST", path, key, body, strlen(body), hs);
}

static h_resp draw(const char *id, const char *no, const char *const *extra)
{
    static int seq;
    char idem[64];
    snprintf(idem, sizeof idem, "d-%d-%ld", ++seq, (long)getpid());
    CURL *c = curl_easy_init();
    h_resp r = draw_on(c, S, APP_KEY, id, no, idem, extra);
    curl_easy_cleanup(c);
    return r;
}

static int group_setup(void **state)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    S = h_start("--test-clock", NULL);
    make_key(S, "app", APP_KEY);
    make_key(S, "admin", ADMIN2);
    must("POST", "/v1/point-types", "{\"code\":\"sun\",\"name\":\"阳光值\",\"expiry\":\"never\"}",
         201);
    must("POST", "/v1/benefits/suppliers", "{\"code\":\"wx\",\"name\":\"微信支付\"}", 201);
    must("POST", "/v1/benefits/items",
         "{\"code\":\"cp5\",\"name\":\"5元立减金\",\"kind\":\"coupon\",\"supplier\":\"wx\","
         "\"face_value\":500,\"cost_price\":500,\"params\":{\"threshold\":0},\"stock\":100000,"
         "\"validity_days\":7}",
         201);
    for (int i = 1; i <= 40; i++) {
        char path[64], body[160];
        snprintf(path, sizeof path, "/v1/customers/C%d", i);
        must("PUT", path, "{}", 201);
        snprintf(path, sizeof path, "/v1/customers/C%d/points:earn", i);
        snprintf(body, sizeof body, "{\"point_type\":\"sun\",\"amount\":100000,\"source\":\"t\"}");
        must("POST", path, body, 201);
    }
    return 0;
}

static int group_teardown(void **state)
{
    h_stop(S);
    curl_global_cleanup();
    return 0;
}

/* ---- the festival flow ---- */

static void test_draw_flow(void **state)
{
    launch_on(S, ADMIN2, "fest", "\"budget\":{\"points\":100000,\"cost\":1000000}",
              "{\"cost\":{\"points\":20},\"free_per_day\":1,\"draws_per_day\":5,"
              "\"thanks\":{\"weight\":500},\"guarantee\":{\"after\":5,\"prize\":\"sun50\"},"
              "\"prizes\":[{\"code\":\"cp5\",\"name\":\"5元立减金\",\"weight\":200,\"stock\":100,"
              "\"reward\":{\"item\":\"cp5\"}},{\"code\":\"sun50\",\"name\":\"50 阳光值\","
              "\"weight\":300,\"stock\":1000,\"reward\":{\"points\":50}}]}");
    /* the table cannot change while running */
    h_resp r = h_req(S, "PUT", "/v1/campaigns/fest/prizes", S->admin_key,
                     "{\"free_per_day\":1,\"prizes\":[{\"code\":\"a\",\"name\":\"A\",\"weight\":1,"
                     "\"stock\":1,\"reward\":{\"points\":1}}]}");
    h_assert_problem(r, 409, "not-editable", NULL);
    h_resp_free(&r);
    /* a draw, and its replay */
    CURL *c = curl_easy_init();
    r = draw_on(c, S, APP_KEY, "fest", "C1", "flow-1", NULL);
    if (r.status != 201)
        fail_msg("draw: %ld %s", r.status, r.body);
    char id[64];
    snprintf(id, sizeof id, "%s", h_str(r.json, "draw"));
    assert_int_equal(json_integer_value(json_object_get(r.json, "version")), 1);
    assert_true(json_is_true(json_object_get(r.json, "free")));
    assert_int_equal(json_integer_value(json_object_get(r.json, "total_weight")), 1000);
    json_t *first = json_deep_copy(r.json);
    h_resp_free(&r);
    r = draw_on(c, S, APP_KEY, "fest", "C1", "flow-1", NULL);
    assert_int_equal(r.status, 201);
    assert_string_equal(h_str(r.json, "draw"), id);
    char replayed[16];
    assert_true(h_header(&r, "Idempotent-Replayed", replayed, sizeof replayed));
    h_resp_free(&r);
    assert_int_equal(h_sql_long(S, "SELECT COUNT(*) FROM lottery_draws WHERE customer_no = 'C1'"),
                     1);
    /* past the server's 24-hour record of the answer, the draw keeps the
     * key: the same draw, not a second one; another customer's draw with
     * that key is refused */
    assert_int_equal(
        h_sql_long(S, "DELETE FROM idempotency WHERE idem_key = 'flow-1'; SELECT changes()"), 1);
    r = draw_on(c, S, APP_KEY, "fest", "C1", "flow-1", NULL);
    if (r.status != 200)
        fail_msg("draw replayed after 24 hours: %ld %s", r.status, r.body);
    assert_string_equal(h_str(r.json, "draw"), id);
    /* the same answer as the draw's, but for chances_left (null now) */
    assert_true(json_is_null(json_object_get(r.json, "chances_left")));
    json_object_del(r.json, "chances_left");
    json_object_del(first, "chances_left");
    if (!json_equal(r.json, first)) {
        char *a = json_dumps(first, JSON_SORT_KEYS), *b = json_dumps(r.json, JSON_SORT_KEYS);
        fail_msg("late replay differs:\n%s\n%s", a, b);
    }
    json_decref(first);
    assert_true(h_header(&r, "Idempotent-Replayed", replayed, sizeof replayed));
    h_resp_free(&r);
    r = draw_on(c, S, APP_KEY, "fest", "C2", "flow-1", NULL); /* the server's record */
    h_assert_problem(r, 409, "idempotency-mismatch", "Idempotency-Key");
    h_resp_free(&r);
    assert_int_equal(
        h_sql_long(S, "DELETE FROM idempotency WHERE idem_key = 'flow-1'; SELECT changes()"), 1);
    r = draw_on(c, S, APP_KEY, "fest", "C2", "flow-1", NULL); /* the draw's own key */
    h_assert_problem(r, 409, "conflict", "Idempotency-Key");
    h_resp_free(&r);
    assert_int_equal(h_sql_long(S, "SELECT COUNT(*) FROM lottery_draws WHERE idempotency_key ="
                                   " 'flow-1'"),
                     1);
    /* the second draw costs 20 points */
    r = draw_on(c, S, APP_KEY, "fest", "C1", "flow-2", NULL);
    assert_int_equal(r.status, 201);
    assert_false(json_is_true(json_object_get(r.json, "free")));
    assert_int_equal(json_integer_value(json_object_get(json_object_get(r.json, "cost"), "points")),
                     20);
    /* the draw's cost is not reversed on its own: the draw would stand
     * without its payment */
    char rev[160];
    snprintf(rev, sizeof rev, "/v1/ledger/%s:reverse",
             h_str(json_object_get(r.json, "cost"), "ledger_entry"));
    h_resp_free(&r);
    r = h_req(S, "POST", rev, S->admin_key, "{\"reason\":\"refund\"}");
    h_assert_problem(r, 409, "conflict", NULL);
    assert_string_equal(h_str(r.json, "campaign"), "fest");
    h_resp_free(&r);
    curl_easy_cleanup(c);
    /* the explanation */
    char path[160];
    snprintf(path, sizeof path, "/v1/campaigns/fest/draws/%s", id);
    r = h_req(S, "GET", path, APP_KEY, NULL);
    assert_int_equal(r.status, 200);
    json_t *ex = json_object_get(r.json, "explain");
    assert_int_equal(json_array_size(json_object_get(ex, "ranges")), 3);
    assert_non_null(strstr(h_str(ex, "text"), "version 1"));
    h_resp_free(&r);
    r = h_req(S, "GET", "/v1/campaigns/fest/draws?customer_no=C1", APP_KEY, NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "items")), 2);
    h_resp_free(&r);
    const char *hs[] = {"X-Siyu-Now: " NOW, NULL};
    r = h_req_h(S, "GET", "/v1/campaigns/fest/prizes", APP_KEY, NULL, hs);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_integer_value(json_object_get(r.json, "version")), 1);
    h_resp_free(&r);
    /* a new version while paused goes back for approval: its author can
     * neither resume nor approve it, the draws wait for a second key */
    must("POST", "/v1/campaigns/fest:pause", NULL, 200);
    r = h_req_h(S, "PUT", "/v1/campaigns/fest/prizes", S->admin_key,
                "{\"cost\":{\"points\":20},\"free_per_day\":1,\"prizes\":[{\"code\":\"sun50\","
                "\"name\":\"50 阳光值\",\"weight\":1,\"stock\":10,\"reward\":{\"points\":50}}]}",
                hs);
    assert_int_equal(r.status, 201);
    assert_string_equal(h_str(r.json, "campaign_status"), "pending_approval");
    h_resp_free(&r);
    r = h_req_h(S, "POST", "/v1/campaigns/fest:resume", S->admin_key, NULL, hs);
    h_assert_problem(r, 409, "bad-transition", NULL);
    h_resp_free(&r);
    r = draw("fest", "C2", NULL);
    h_assert_problem(r, 409, "not-running", NULL);
    h_resp_free(&r);
    r = h_req_h(S, "POST", "/v1/campaigns/fest:approve", S->admin_key, NULL, hs);
    h_assert_problem(r, 403, "maker-checker", NULL);
    h_resp_free(&r);
    must_on(S, ADMIN2, "POST", "/v1/campaigns/fest:approve", NULL, 200);
    r = draw("fest", "C2", NULL);
    assert_int_equal(r.status, 201);
    assert_int_equal(json_integer_value(json_object_get(r.json, "version")), 2);
    assert_string_equal(h_str(r.json, "outcome"), "prize");
    h_resp_free(&r);
    assert_check_passes(S);
}

/* ---- chances left count the campaign's own limits too ---- */

static void test_chances_left(void **state)
{
    (void)state;
    launch_on(S, ADMIN2, "few", "\"limits\":{\"per_day\":2,\"per_campaign\":3}",
              "{\"free_per_day\":10,\"draws_per_day\":5,\"thanks\":{\"weight\":1},"
              "\"prizes\":[{\"code\":\"p\",\"name\":\"P\",\"weight\":1,\"stock\":100,"
              "\"reward\":{\"points\":1}}]}");
    /* the campaign's 2 a day are fewer than the table's 5 */
    long want[] = {1, 0};
    for (int i = 0; i < 2; i++) {
        h_resp r = draw("few", "C7", NULL);
        if (r.status != 201)
            fail_msg("draw %d: %ld %s", i, r.status, r.body);
        assert_int_equal(json_integer_value(json_object_get(r.json, "chances_left")), want[i]);
        h_resp_free(&r);
    }
    h_resp r = draw("few", "C7", NULL);
    h_assert_problem(r, 409, "limit-reached", NULL);
    h_resp_free(&r);
    /* the offers agree: no draws left today */
    const char *hs[] = {"X-Siyu-Now: " NOW, NULL};
    r = h_req_h(S, "GET", "/v1/customers/C7/offers", APP_KEY, NULL, hs);
    assert_int_equal(r.status, 200);
    json_t *items = json_object_get(r.json, "items"), *few = NULL;
    for (size_t i = 0; i < json_array_size(items); i++) {
        const char *id = h_str(json_array_get(items, i), "id");
        if (id && !strcmp(id, "few"))
            few = json_array_get(items, i);
    }
    if (!few)
        fail_msg("no offer 'few': %s", r.body);
    json_t *lot = json_object_get(few, "lottery");
    assert_int_equal(json_integer_value(json_object_get(lot, "draws_per_day")), 5);
    assert_int_equal(json_integer_value(json_object_get(lot, "draws_today")), 2);
    assert_int_equal(json_integer_value(json_object_get(lot, "draws_left_today")), 0);
    json_t *lim = json_object_get(few, "limits_left");
    assert_int_equal(json_integer_value(json_object_get(lim, "per_day")), 0);
    assert_int_equal(json_integer_value(json_object_get(lim, "per_campaign")), 1);
    h_resp_free(&r);
    /* draws that cost nothing end with the free ones, though no cap says so */
    launch_on(S, ADMIN2, "freeonly", "",
              "{\"free_per_day\":2,\"thanks\":{\"weight\":1},\"prizes\":[{\"code\":\"p\","
              "\"name\":\"P\",\"weight\":1,\"stock\":100,\"reward\":{\"points\":1}}]}");
    for (int i = 0; i < 2; i++) {
        r = draw("freeonly", "C7", NULL);
        assert_int_equal(r.status, 201);
        assert_int_equal(json_integer_value(json_object_get(r.json, "chances_left")), 1 - i);
        h_resp_free(&r);
    }
    r = draw("freeonly", "C7", NULL);
    h_assert_problem(r, 409, "no-chances", NULL);
    h_resp_free(&r);
    r = h_req_h(S, "GET", "/v1/customers/C7/offers", APP_KEY, NULL, hs);
    items = json_object_get(r.json, "items");
    json_t *fo = NULL;
    for (size_t i = 0; i < json_array_size(items); i++) {
        const char *id = h_str(json_array_get(items, i), "id");
        if (id && !strcmp(id, "freeonly"))
            fo = json_array_get(items, i);
    }
    assert_non_null(fo);
    lot = json_object_get(fo, "lottery");
    assert_true(json_is_null(json_object_get(lot, "draws_per_day")));
    assert_int_equal(json_integer_value(json_object_get(lot, "draws_left_today")), 0);
    assert_int_equal(json_integer_value(json_object_get(lot, "free_left_today")), 0);
    h_resp_free(&r);
}

/* ---- the prize table is part of what the checker approves ---- */

static void test_prize_table_author_cannot_approve(void **state)
{
    (void)state;
    must("POST", "/v1/campaigns",
         "{\"id\":\"mc\",\"name\":\"抽奖\",\"type\":\"lottery\",\"starts_at\":"
         "\"2026-12-01T00:00:00+08:00\",\"ends_at\":\"2027-01-01T00:00:00+08:00\","
         "\"point_type\":\"sun\"}",
         201);
    /* the second key writes the prizes of the first key's draft ... */
    must_on(S, ADMIN2, "PUT", "/v1/campaigns/mc/prizes",
            "{\"free_per_day\":1,\"prizes\":[{\"code\":\"big\",\"name\":\"大奖\","
            "\"weight\":1,\"stock\":5,\"reward\":{\"points\":99999}}]}",
            201);
    must("POST", "/v1/campaigns/mc:submit", NULL, 200);
    /* ... so it cannot approve them itself */
    const char *hs[] = {"X-Siyu-Now: " NOW, NULL};
    h_resp r = h_req_h(S, "POST", "/v1/campaigns/mc:approve", ADMIN2, NULL, hs);
    h_assert_problem(r, 403, "maker-checker", NULL);
    h_resp_free(&r);
    r = h_req_h(S, "GET", "/v1/campaigns/mc", S->admin_key, NULL, hs);
    assert_int_equal(r.status, 200);
    assert_string_equal(h_str(r.json, "status"), "pending_approval");
    h_resp_free(&r);
}

/* ---- one Idempotency-Key sent by 16 clients at once: one draw ---- */

typedef struct same_key {
    volatile int go;
    pthread_mutex_t mu;
    char ids[16][64];
    long status[16];
    int n;
} same_key;

static void *same_key_racer(void *p)
{
    same_key *k = p;
    CURL *c = curl_easy_init();
    while (!k->go)
        ;
    h_resp r = draw_on(c, S, APP_KEY, "fest", "C9", "same-key-1", NULL);
    pthread_mutex_lock(&k->mu);
    k->status[k->n] = r.status;
    snprintf(k->ids[k->n++], 64, "%s",
             r.json && h_str(r.json, "draw") ? h_str(r.json, "draw") : "");
    pthread_mutex_unlock(&k->mu);
    h_resp_free(&r);
    curl_easy_cleanup(c);
    return NULL;
}

static void test_same_key_concurrently(void **state)
{
    same_key k = {0};
    pthread_mutex_init(&k.mu, NULL);
    pthread_t t[16];
    for (int i = 0; i < 16; i++)
        pthread_create(&t[i], NULL, same_key_racer, &k);
    k.go = 1;
    for (int i = 0; i < 16; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < 16; i++) {
        assert_int_equal(k.status[i], 201);
        assert_string_equal(k.ids[i], k.ids[0]);
    }
    assert_int_equal(h_sql_long(S, "SELECT COUNT(*) FROM lottery_draws WHERE campaign_id = 'fest'"
                                   " AND customer_no = 'C9'"),
                     1);
}

/* ---- 64 concurrent clients ---- */

/* Draw k of a burst on campaign ud: customers C1 .. C40, one key a draw. */
static h_resp burst_draw(CURL *c, int k, const void *ud)
{
    char no[16], key[64];
    snprintf(no, sizeof no, "C%d", 1 + k % 40);
    snprintf(key, sizeof key, "%s-%d", (const char *)ud, k);
    return draw_on(c, S, APP_KEY, ud, no, key, NULL);
}

/* The same, all by customer C40. */
static h_resp burst_draw_c40(CURL *c, int k, const void *ud)
{
    char key[64];
    snprintf(key, sizeof key, "%s-%d", (const char *)ud, k);
    return draw_on(c, S, APP_KEY, ud, "C40", key, NULL);
}

static bool won(const h_resp *r)
{
    return !strcmp(h_str(r->json, "outcome"), "prize");
}

static void test_concurrent_stock_budget_limits(void **state)
{
    /* stock: 20 prizes, every draw picks one; 256 draws win exactly 20 */
    launch_on(S, ADMIN2, "stock", "",
              "{\"cost\":{\"points\":1},\"prizes\":[{\"code\":\"p\",\"name\":\"P\","
              "\"weight\":1,\"stock\":20,\"reward\":{\"item\":\"cp5\"}}]}");
    h_burst a = {.send = burst_draw, .ud = "stock", .refusal = "none", .mark = won};
    h_burst_run(&a);
    assert_int_equal(a.ok, 256);
    assert_int_equal(a.marked, 20);
    assert_int_equal(h_sql_long(S, "SELECT used FROM lottery_prizes WHERE campaign_id = 'stock'"),
                     20);
    assert_int_equal(h_sql_long(S, "SELECT COUNT(*) FROM benefit_grants g JOIN lottery_draws d ON"
                                   " d.grant_code = g.code WHERE d.campaign_id = 'stock'"),
                     20);
    /* budget: 10 prizes of 10 points fit; it runs out in the middle */
    launch_on(S, ADMIN2, "budget", "\"budget\":{\"points\":100}",
              "{\"cost\":{\"points\":1},\"prizes\":[{\"code\":\"p\",\"name\":\"P\","
              "\"weight\":1,\"stock\":1000,\"reward\":{\"points\":10}}]}");
    h_burst b = {.send = burst_draw, .ud = "budget", .refusal = "budget-exhausted"};
    h_burst_run(&b);
    assert_int_equal(b.ok, 10);
    assert_int_equal(b.refused, 246);
    assert_int_equal(h_sql_long(S, "SELECT spent_points FROM campaigns WHERE id = 'budget'"), 100);
    /* a refused draw spent nothing: one spend entry per accepted draw */
    assert_int_equal(h_sql_long(S, "SELECT COUNT(*) FROM ledger_entries WHERE kind = 'spend' AND"
                                   " credit_account = 'sink:campaign:budget'"),
                     10);
    /* one customer, 256 draws, at most 3 a day */
    launch_on(S, ADMIN2, "capped", "",
              "{\"cost\":{\"points\":1},\"draws_per_day\":3,\"thanks\":{\"weight\":1},"
              "\"prizes\":[{\"code\":\"p\",\"name\":\"P\",\"weight\":1,\"stock\":1000,"
              "\"reward\":{\"points\":1}}]}");
    h_burst c = {.send = burst_draw_c40, .ud = "capped", .refusal = "limit-reached"};
    h_burst_run(&c);
    assert_int_equal(c.ok, 3);
    assert_int_equal(h_sql_long(S, "SELECT COUNT(*) FROM lottery_draws WHERE campaign_id ="
                                   " 'capped'"),
                     3);
    assert_check_passes(S);
}

/* ---- anti-abuse ---- */

static long metric(const char *line)
{
    h_resp r = h_req(S, "GET", "/metrics", NULL, NULL);
    const char *p = r.body ? strstr(r.body, line) : NULL;
    long v = p ? atol(p + strlen(line)) : -1;
    h_resp_free(&r);
    return v;
}

static void test_abuse_gate(void **state)
{
    launch_on(S, ADMIN2, "guarded", "",
              "{\"free_per_day\":100,\"thanks\":{\"weight\":1},\"prizes\":[{\"code\":\"p\","
              "\"name\":\"P\",\"weight\":1,\"stock\":1000,\"reward\":{\"points\":1}}]}");
    /* a blocked device */
    must("POST", "/v1/abuse/blocklist",
         "{\"kind\":\"device\",\"value\":\"emu-1\",\"reason\":\"farm\"}", 201);
    const char *emu[] = {"X-Device-Id: emu-1", NULL};
    h_resp r = draw("guarded", "C3", emu);
    h_assert_problem(r, 403, "blocked", NULL);
    assert_string_equal(h_str(r.json, "blocked"), "device");
    h_resp_free(&r);
    assert_true(metric("siyu_abuse_refusals_total{reason=\"blocked\",action=\"draw\",scope="
                       "\"device\"} ") >= 1);
    r = h_req(S, "GET", "/v1/abuse/blocklist?kind=device", S->admin_key, NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "items")), 1);
    h_resp_free(&r);
    must("DELETE", "/v1/abuse/blocklist/device/emu-1", NULL, 200);
    r = draw("guarded", "C3", emu);
    assert_int_equal(r.status, 201);
    h_resp_free(&r);
    /* a blocked customer also cannot check in */
    must("POST", "/v1/abuse/blocklist", "{\"kind\":\"customer\",\"value\":\"C4\"}", 201);
    r = draw("guarded", "C4", NULL);
    h_assert_problem(r, 403, "blocked", NULL);
    h_resp_free(&r);
    must("POST", "/v1/campaigns",
         "{\"id\":\"ck\",\"name\":\"签到\",\"type\":\"checkin\",\"starts_at\":"
         "\"2026-12-01T00:00:00+08:00\",\"ends_at\":\"2027-01-01T00:00:00+08:00\","
         "\"point_type\":\"sun\",\"checkin\":{\"rewards\":[{\"day\":1,\"points\":5}]}}",
         201);
    must("POST", "/v1/campaigns/ck:submit", NULL, 200);
    must_on(S, ADMIN2, "POST", "/v1/campaigns/ck:approve", NULL, 200);
    const char *hs[] = {"X-Siyu-Now: " NOW, "Idempotency-Key: ck-c4", NULL};
    r = h_req_h(S, "POST", "/v1/campaigns/ck/checkin", APP_KEY, "{\"customer_no\":\"C4\"}", hs);
    h_assert_problem(r, 403, "blocked", NULL);
    h_resp_free(&r);
    must("DELETE", "/v1/abuse/blocklist/customer/C4", NULL, 200);
    r = h_req_h(S, "POST", "/v1/campaigns/ck/checkin", APP_KEY, "{\"customer_no\":\"C4\"}", hs);
    assert_int_equal(r.status, 201);
    h_resp_free(&r);
    /* rate limits per device; velocity per device for draws */
    must("PUT", "/v1/abuse/rules",
         "{\"rate_limits\":[{\"scope\":\"device\",\"max\":3,\"per_seconds\":60}],"
         "\"velocity\":[{\"scope\":\"customer\",\"action\":\"draw\",\"max\":2,\"minutes\":10}]}",
         200);
    const char *ph[] = {"X-Device-Id: phone-9", NULL};
    long ok = 0, limited = 0;
    for (int i = 0; i < 5; i++) {
        r = draw("guarded", i < 2 ? "C5" : "C6", ph);
        if (r.status == 201)
            ok++;
        else if (r.status == 429) {
            h_assert_problem(r, 429, "rate-limited", NULL);
            char ra[16];
            assert_true(h_header(&r, "Retry-After", ra, sizeof ra));
            assert_true(atoi(ra) >= 1);
            limited++;
        } else
            fail_msg("draw %d: %ld %s", i, r.status, r.body);
        h_resp_free(&r);
    }
    assert_int_equal(ok, 3);
    assert_int_equal(limited, 2);
    /* C5 drew twice: the velocity rule refuses a third (another device) */
    const char *ph2[] = {"X-Device-Id: phone-10", NULL};
    r = draw("guarded", "C5", ph2);
    h_assert_problem(r, 403, "velocity", NULL);
    h_resp_free(&r);
    assert_true(metric("siyu_abuse_refusals_total{reason=\"rate-limited\",action=\"draw\",scope="
                       "\"device\"} ") >= 2);
    assert_true(metric("siyu_abuse_refusals_total{reason=\"velocity\",action=\"draw\",scope="
                       "\"customer\"} ") >= 1);
    /* X-Forwarded-For counts only from a trusted proxy */
    must("PUT", "/v1/abuse/rules", "{}", 200);
    must("POST", "/v1/abuse/blocklist", "{\"kind\":\"ip\",\"value\":\"203.0.113.7\"}", 201);
    const char *xff[] = {"X-Forwarded-For: 203.0.113.7", NULL};
    r = draw("guarded", "C7", xff);
    assert_int_equal(r.status, 201); /* 127.0.0.1 is not trusted: the header is ignored */
    h_resp_free(&r);
    must("PUT", "/v1/abuse/rules", "{\"trusted_proxies\":[\"127.0.0.1/32\"]}", 200);
    r = draw("guarded", "C7", xff);
    h_assert_problem(r, 403, "blocked", NULL);
    assert_string_equal(h_str(r.json, "blocked"), "ip");
    h_resp_free(&r);
    /* the address is recorded with the draw */
    must("PUT", "/v1/abuse/rules", "{}", 200);
    assert_int_equal(h_sql_long(S, "SELECT COUNT(*) FROM lottery_draws WHERE customer_no = 'C7'"
                                   " AND ip = '127.0.0.1' AND campaign_id = 'guarded'"),
                     1);
    must("DELETE", "/v1/abuse/blocklist/ip/203.0.113.7", NULL, 200);
    r = h_req(S, "GET", "/v1/abuse/rules", S->admin_key, NULL);
    assert_int_equal(r.status, 200);
    h_resp_free(&r);
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
    launch_on(S, ADMIN2, "okl", "",
              "{\"free_per_day\":1,\"prizes\":[{\"code\":\"p\",\"name\":\"P\",\"weight\":1,"
              "\"stock\":5,\"reward\":{\"points\":1}}]}");
    must("POST", "/v1/campaigns",
         "{\"id\":\"ldraft\",\"name\":\"d\",\"type\":\"lottery\",\"starts_at\":"
         "\"2026-12-01T00:00:00+08:00\",\"ends_at\":\"2027-01-01T00:00:00+08:00\"}",
         201);
    must("POST", "/v1/campaigns",
         "{\"id\":\"ldraft2\",\"name\":\"d\",\"type\":\"lottery\",\"starts_at\":"
         "\"2026-12-01T00:00:00+08:00\",\"ends_at\":\"2027-01-01T00:00:00+08:00\","
         "\"point_type\":\"sun\"}",
         201);
    must("POST", "/v1/campaigns",
         "{\"id\":\"ckd\",\"name\":\"d\",\"type\":\"checkin\",\"starts_at\":"
         "\"2026-12-01T00:00:00+08:00\",\"ends_at\":\"2027-01-01T00:00:00+08:00\","
         "\"point_type\":\"sun\",\"checkin\":{\"rewards\":[{\"day\":1,\"points\":5}]}}",
         201);
#define PZ                                                                                         \
    "\"prizes\":[{\"code\":\"p\",\"name\":\"P\",\"weight\":1,\"stock\":5,\"reward\":{\"points\":"  \
    "1}}]"
    static const bad_case cases[] = {
        {"PUT", "/v1/campaigns/ldraft/prizes", "{", 400, "invalid-json", NULL, NULL},
        {"PUT", "/v1/campaigns/ldraft/prizes", "{\"free_per_day\":1}", 400, "validation", "/prizes",
         NULL},
        {"PUT", "/v1/campaigns/okl/prizes", "{" PZ "}", 400, "validation", "/cost", NULL},
        {"PUT", "/v1/campaigns/ldraft/prizes", "{\"free_per_day\":1,\"x\":1," PZ "}", 400,
         "validation", "/x", NULL},
        {"PUT", "/v1/campaigns/ldraft/prizes",
         "{\"free_per_day\":1,\"prizes\":[{\"code\":\"p\",\"name\":\"P\",\"weight\":0,"
         "\"stock\":5,\"reward\":{\"points\":1}}]}",
         400, "validation", "/prizes/0/weight", NULL},
        {"PUT", "/v1/campaigns/ldraft/prizes",
         "{\"free_per_day\":1,\"prizes\":[{\"code\":\"p\",\"name\":\"P\",\"weight\":1,"
         "\"stock\":5,\"reward\":{\"points\":1}}]}",
         400, "validation", "/prizes/0/reward/point_type", NULL},
        {"PUT", "/v1/campaigns/ldraft2/prizes",
         "{\"free_per_day\":1,\"prizes\":[{\"code\":\"p\",\"name\":\"P\",\"weight\":1,"
         "\"stock\":5,\"reward\":{\"item\":\"nope\"}}]}",
         400, "validation", "/prizes/0/reward/item", NULL},
        {"PUT", "/v1/campaigns/ldraft2/prizes",
         "{\"cost\":{\"points\":1,\"point_type\":\"moon\"}," PZ "}", 400, "validation",
         "/cost/point_type", NULL},
        {"PUT", "/v1/campaigns/okl/prizes", "{\"free_per_day\":1," PZ "}", 409, "not-editable",
         NULL, NULL},
        {"PUT", "/v1/campaigns/ckd/prizes", "{\"free_per_day\":1," PZ "}", 409, "wrong-type", NULL,
         NULL},
        {"PUT", "/v1/campaigns/none/prizes", "{\"free_per_day\":1," PZ "}", 404, "not-found", NULL,
         NULL},
        {"GET", "/v1/campaigns/okl/prizes?version=0", NULL, 400, "validation", "version", NULL},
        {"GET", "/v1/campaigns/okl/prizes?version=9", NULL, 404, "not-found", "version", NULL},
        {"GET", "/v1/campaigns/ldraft/prizes", NULL, 404, "not-found", NULL, NULL},
        {"POST", "/v1/campaigns/okl/draw", "{}", 400, "validation", "/customer_no",
         "Idempotency-Key: b1"},
        {"POST", "/v1/campaigns/okl/draw", "{\"customer_no\":\"C 1\"}", 400, "validation",
         "/customer_no", "Idempotency-Key: b2"},
        {"POST", "/v1/campaigns/okl/draw", "{\"customer_no\":\"C1\",\"x\":1}", 400, "validation",
         "/x", "Idempotency-Key: b3"},
        {"POST", "/v1/campaigns/okl/draw", "{\"customer_no\":\"C1\"}", 400, "validation",
         "Idempotency-Key", NULL},
        {"POST", "/v1/campaigns/okl/draw", "[1]", 400, "validation", NULL, "Idempotency-Key: b4"},
        {"POST", "/v1/campaigns/okl/draw", "{\"customer_no\":\"C1\"}", 400, "validation",
         "X-Device-Id", "X-Device-Id: has space"},
        {"POST", "/v1/campaigns/okl/draw", "{\"customer_no\":\"C999\"}", 404, "not-found",
         "/customer_no", "Idempotency-Key: b5"},
        {"POST", "/v1/campaigns/ldraft/draw", "{\"customer_no\":\"C1\"}", 409, "not-running", NULL,
         "Idempotency-Key: b6"},
        {"POST", "/v1/campaigns/ckd/draw", "{\"customer_no\":\"C1\"}", 409, "wrong-type", NULL,
         "Idempotency-Key: b7"},
        {"POST", "/v1/campaigns/none/draw", "{\"customer_no\":\"C1\"}", 404, "not-found", NULL,
         "Idempotency-Key: b8"},
        {"GET", "/v1/campaigns/okl/draws?limit=0", NULL, 400, "validation", "limit", NULL},
        {"GET", "/v1/campaigns/okl/draws?customer_no=a%20b", NULL, 400, "validation", "customer_no",
         NULL},
        {"GET", "/v1/campaigns/okl/draws/ld_nope", NULL, 404, "not-found", NULL, NULL},
        {"PUT", "/v1/abuse/rules",
         "{\"rate_limits\":[{\"scope\":\"x\",\"max\":1,"
         "\"per_seconds\":1}]}",
         400, "validation", "/rate_limits/0/scope", NULL},
        {"PUT", "/v1/abuse/rules", "{\"velocity\":[{\"scope\":\"ip\",\"max\":1}]}", 400,
         "validation", "/velocity/0/minutes", NULL},
        {"PUT", "/v1/abuse/rules", "{\"trusted_proxies\":[\"nope\"]}", 400, "validation",
         "/trusted_proxies/0", NULL},
        {"PUT", "/v1/abuse/rules", "{\"other\":1}", 400, "validation", "/other", NULL},
        {"POST", "/v1/abuse/blocklist", "{\"kind\":\"phone\",\"value\":\"1\"}", 400, "validation",
         "/kind", NULL},
        {"POST", "/v1/abuse/blocklist", "{\"kind\":\"ip\",\"value\":\"1.2.3\"}", 400, "validation",
         "/value", NULL},
        {"POST", "/v1/abuse/blocklist", "{\"kind\":\"customer\",\"value\":\"a b\"}", 400,
         "validation", "/value", NULL},
        {"POST", "/v1/abuse/blocklist", "{\"kind\":\"device\"}", 400, "validation", "/value", NULL},
        {"POST", "/v1/abuse/blocklist",
         "{\"kind\":\"device\",\"value\":\"d\",\"expires_at\":\"soon\"}", 400, "validation",
         "/expires_at", NULL},
        {"POST", "/v1/abuse/blocklist", "{\"kind\":\"device\",\"value\":\"d\",\"y\":1}", 400,
         "validation", "/y", NULL},
        {"GET", "/v1/abuse/blocklist?kind=phone", NULL, 400, "validation", "kind", NULL},
        {"DELETE", "/v1/abuse/blocklist/phone/1", NULL, 400, "validation", "kind", NULL},
        {"DELETE", "/v1/abuse/blocklist/ip/nope", NULL, 400, "validation", "value", NULL},
        {"DELETE", "/v1/abuse/blocklist/device/not-there", NULL, 404, "not-found", NULL, NULL},
    };
#undef PZ
    const char *snapshot =
        "SELECT (SELECT COUNT(*) FROM lottery_versions) * 1000000 + (SELECT COUNT(*) FROM"
        " lottery_draws) * 1000 + (SELECT COUNT(*) FROM abuse_blocklist) * 100 + (SELECT"
        " COUNT(*) FROM abuse_rules) * 10 + (SELECT COUNT(*) FROM ledger_entries) * 7";
    long before = h_sql_long(S, snapshot);
    for (size_t i = 0; i < SY_TEST_LEN(cases); i++) {
        const bad_case *c = &cases[i];
        /* a bad device id is refused even with a key */
        const char *key2 =
            c->hdr && !strncmp(c->hdr, "X-Device-Id", 11) ? "Idempotency-Key: b9" : NULL;
        const char *hs[] = {"X-Siyu-Now: " NOW, c->hdr, key2, NULL};
        h_resp r = h_req_h(S, c->method, c->path, strstr(c->path, "/draw") ? APP_KEY : S->admin_key,
                           c->body, hs);
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

/* ---- a draft's audience is read again; an approved one's remembered ---- */

/* The draw's audience is remembered once the campaign is approved
 * (remember.h), never while it is a draft: a draft may still change it. */
static void test_audience_of_a_draft_not_remembered(void **state)
{
    must("PUT", "/v1/customers/C30", "{\"attributes\":{\"aum\":5}}", 200);
    must("PUT", "/v1/customers/C31", "{\"attributes\":{\"aum\":10000000}}", 200);
    must("POST", "/v1/segments",
         "{\"id\":\"poor\",\"name\":\"poor\",\"expression\":\"aum < 1000\"}", 201);
    must("POST", "/v1/segments",
         "{\"id\":\"rich\",\"name\":\"rich\",\"expression\":\"aum >= 1000000\"}", 201);
    const char *def = "{\"id\":\"aud\",\"name\":\"抽奖\",\"type\":\"lottery\",\"starts_at\":"
                      "\"2026-12-01T00:00:00+08:00\",\"ends_at\":\"2027-01-01T00:00:00+08:00\","
                      "\"point_type\":\"sun\",\"segment_id\":\"%s\"}";
    char body[512];
    snprintf(body, sizeof body, def, "poor");
    must("POST", "/v1/campaigns", body, 201);
    h_resp r = draw("aud", "C30", NULL);
    h_assert_problem(r, 409, "not-running", NULL);
    h_resp_free(&r);
    snprintf(body, sizeof body, def, "rich");
    must("PUT", "/v1/campaigns/aud", body, 200);
    must("PUT", "/v1/campaigns/aud/prizes",
         "{\"cost\":{\"points\":1},\"thanks\":{\"weight\":1},\"prizes\":[{\"code\":\"p\","
         "\"name\":\"P\",\"weight\":1,\"stock\":10,\"reward\":{\"points\":1}}]}",
         201);
    must("POST", "/v1/campaigns/aud:submit", NULL, 200);
    must_on(S, ADMIN2, "POST", "/v1/campaigns/aud:approve", NULL, 200);
    for (int i = 0; i < 2; i++) { /* the second time from what was remembered */
        r = draw("aud", "C31", NULL);
        if (r.status != 201)
            fail_msg("C31, rich, draw %d: %ld %s", i, r.status, r.body);
        h_resp_free(&r);
        r = draw("aud", "C30", NULL);
        h_assert_problem(r, 403, "not-in-audience", NULL);
        h_resp_free(&r);
    }
    /* paused, a new prize table, rejected: the table is dropped and the
     * campaign is paused again with the one that was approved; it never
     * becomes a draft again, so its audience cannot change */
    must("POST", "/v1/campaigns/aud:pause", NULL, 200);
    must("PUT", "/v1/campaigns/aud/prizes",
         "{\"cost\":{\"points\":1},\"thanks\":{\"weight\":1},\"prizes\":[{\"code\":\"p\","
         "\"name\":\"P\",\"weight\":1,\"stock\":20,\"reward\":{\"points\":1}}]}",
         201);
    must_on(S, ADMIN2, "POST", "/v1/campaigns/aud:reject", NULL, 200);
    const char *hs[] = {"X-Siyu-Now: " NOW, NULL};
    r = h_req_h(S, "GET", "/v1/campaigns/aud", S->admin_key, NULL, hs);
    assert_int_equal(r.status, 200);
    assert_string_equal(h_str(r.json, "status"), "paused");
    h_resp_free(&r);
    snprintf(body, sizeof body, def, "poor");
    r = h_req_h(S, "PUT", "/v1/campaigns/aud", S->admin_key, body, hs);
    h_assert_problem(r, 409, "not-draft", NULL);
    h_resp_free(&r);
    r = h_req_h(S, "GET", "/v1/campaigns/aud/prizes", APP_KEY, NULL, hs);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_integer_value(json_object_get(r.json, "version")), 1);
    h_resp_free(&r);
    must("POST", "/v1/campaigns/aud:resume", NULL, 200);
    r = draw("aud", "C31", NULL);
    assert_int_equal(r.status, 201);
    assert_int_equal(json_integer_value(json_object_get(r.json, "version")), 1);
    h_resp_free(&r);
    r = draw("aud", "C30", NULL);
    h_assert_problem(r, 403, "not-in-audience", NULL);
    h_resp_free(&r);
    assert_check_passes(S);
}

/* ---- a write that fails after writing (X-Siyu-Test-Fail) ---- */

/* Draws run without a savepoint of their own (writer.h): when one fails
 * after its SQL ran, the writer rolls the batch back and runs it again.
 * 16 clients, 16 draws each, every fourth failing after its writes: the
 * failed ones leave nothing, every other one is there once. */
typedef struct undo_racer {
    int n;
    volatile int *go;
    long status[16];
    char type[16][32];
} undo_racer;

static void *undo_race(void *p)
{
    undo_racer *u = p;
    CURL *c = curl_easy_init();
    while (!*u->go)
        ;
    char no[16];
    snprintf(no, sizeof no, "C%d", 21 + u->n);
    for (int i = 0; i < 16; i++) {
        char key[64];
        snprintf(key, sizeof key, "undo-%d-%d", u->n, i);
        const char *fail[] = {"X-Siyu-Test-Fail: after-write", NULL};
        h_resp r = draw_on(c, S, APP_KEY, "undo", no, key, i % 4 == 3 ? fail : NULL);
        u->status[i] = r.status;
        snprintf(u->type[i], sizeof u->type[i], "%s", r.json ? h_str(r.json, "type") : "");
        h_resp_free(&r);
    }
    curl_easy_cleanup(c);
    return NULL;
}

static void test_failure_after_write_undone(void **state)
{
    launch_on(S, ADMIN2, "undo", "",
              "{\"cost\":{\"points\":3},\"thanks\":{\"weight\":2},\"prizes\":["
              "{\"code\":\"c\",\"name\":\"C\",\"weight\":1,\"stock\":40,"
              "\"reward\":{\"item\":\"cp5\"}},{\"code\":\"p\",\"name\":\"P\","
              "\"weight\":1,\"stock\":1000,\"reward\":{\"points\":7}}]}");
    long reruns0 = metric("\nsiyu_store_batch_reruns_total ");
    assert_true(reruns0 >= 0);
    long drawn0 = metric("siyu_lottery_draws_total{outcome=\"prize\"} ") +
                  metric("siyu_lottery_draws_total{outcome=\"thanks\"} ");
    volatile int go = 0;
    undo_racer u[16];
    pthread_t t[16];
    for (int i = 0; i < 16; i++) {
        u[i] = (undo_racer){.n = i, .go = &go};
        pthread_create(&t[i], NULL, undo_race, &u[i]);
    }
    go = 1;
    for (int i = 0; i < 16; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < 16; i++) {
        for (int k = 0; k < 16; k++) {
            long want = k % 4 == 3 ? 500 : 201;
            if (u[i].status[k] != want)
                fail_msg("client %d draw %d: %ld, not %ld", i, k, u[i].status[k], want);
            if (want == 500)
                assert_string_equal(u[i].type[k], "internal");
        }
    }
    /* every failed draw made its batch run again; only committed draws count */
    assert_true(metric("\nsiyu_store_batch_reruns_total ") >= reruns0 + 1);
    assert_int_equal(metric("siyu_lottery_draws_total{outcome=\"prize\"} ") +
                         metric("siyu_lottery_draws_total{outcome=\"thanks\"} "),
                     drawn0 + 192);
    /* 12 draws a customer, each once, each paid once; prizes and stock agree */
    assert_int_equal(h_sql_long(S, "SELECT COUNT(*) FROM lottery_draws WHERE campaign_id = 'undo'"),
                     192);
    assert_int_equal(h_sql_long(S, "SELECT COUNT(*) FROM (SELECT customer_no FROM lottery_draws"
                                   " WHERE campaign_id = 'undo' GROUP BY customer_no"
                                   " HAVING COUNT(*) = 12)"),
                     16);
    assert_int_equal(h_sql_long(S, "SELECT COUNT(*) FROM ledger_entries WHERE kind = 'spend' AND"
                                   " credit_account = 'sink:campaign:undo'"),
                     192);
    assert_int_equal(h_sql_long(S, "SELECT COUNT(*) FROM benefit_grants g JOIN lottery_draws d ON"
                                   " d.grant_code = g.code WHERE d.campaign_id = 'undo'"),
                     h_sql_long(S, "SELECT used FROM lottery_prizes WHERE campaign_id = 'undo'"
                                   " AND code = 'c'"));
    assert_int_equal(h_sql_long(S, "SELECT COUNT(*) FROM lottery_draws WHERE campaign_id = 'undo'"
                                   " AND prize = 'p'"),
                     h_sql_long(S, "SELECT used FROM lottery_prizes WHERE campaign_id = 'undo'"
                                   " AND code = 'p'"));
    assert_check_passes(S);

    /* events likewise: a batch that failed after writing is not there, and
     * the same events sent again are new, not duplicates */
    const char *evs = "[{\"event_id\":\"undo-e1\",\"customer_no\":\"C21\",\"name\":"
                      "\"view_fund\",\"ts\":\"" NOW "\"},{\"event_id\":\"undo-e2\","
                      "\"customer_no\":\"C22\",\"name\":\"view_fund\",\"ts\":\"" NOW "\"}]";
    const char *hf[] = {"X-Siyu-Now: " NOW, "X-Siyu-Test-Fail: after-write", NULL};
    h_resp r = h_req_h(S, "POST", "/v1/events", APP_KEY, evs, hf);
    h_assert_problem(r, 500, "internal", NULL);
    h_resp_free(&r);
    assert_int_equal(h_sql_long(S, "SELECT COUNT(*) FROM events WHERE event_id LIKE 'undo-e%'"), 0);
    const char *hn[] = {"X-Siyu-Now: " NOW, NULL};
    r = h_req_h(S, "POST", "/v1/events", APP_KEY, evs, hn);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_integer_value(json_object_get(r.json, "accepted")), 2);
    assert_int_equal(json_integer_value(json_object_get(r.json, "duplicates")), 0);
    h_resp_free(&r);
    assert_int_equal(h_sql_long(S, "SELECT COUNT(*) FROM events WHERE event_id LIKE 'undo-e%'"), 2);
    /* a value other than after-write is refused */
    const char *bad[] = {"X-Siyu-Test-Fail: sometimes", NULL};
    r = h_req_h(S, "POST", "/v1/events", APP_KEY, evs, bad);
    h_assert_problem(r, 400, "validation", "X-Siyu-Test-Fail");
    h_resp_free(&r);
}

/* ---- kill -9 during draws (64 clients) ---- */

static h_resp kill_draw(CURL *c, const h_kill9 *k, const char *no, const char *idem)
{
    return draw_on(c, k->s, k->key, "kill", no, idem, NULL);
}

static void test_kill9_during_draws(void **state)
{
    h_kill9 k = {
        .s = h_start("--test-clock", NULL), .send = kill_draw, .customers = 16, .id_field = "draw"};
    char admin2[128];
    make_key(k.s, "app", k.key);
    make_key(k.s, "admin", admin2);
    must_on(k.s, k.s->admin_key, "POST", "/v1/point-types",
            "{\"code\":\"sun\",\"name\":\"阳光值\",\"expiry\":\"never\"}", 201);
    must_on(k.s, k.s->admin_key, "POST", "/v1/benefits/suppliers",
            "{\"code\":\"wx\",\"name\":\"微信支付\"}", 201);
    must_on(k.s, k.s->admin_key, "POST", "/v1/benefits/items",
            "{\"code\":\"cp5\",\"name\":\"5元立减金\",\"kind\":\"coupon\",\"supplier\":\"wx\","
            "\"face_value\":500,\"cost_price\":500,\"params\":{\"threshold\":0},\"stock\":100000,"
            "\"validity_days\":7}",
            201);
    for (int i = 0; i < 16; i++) {
        char path[64];
        snprintf(path, sizeof path, "/v1/customers/K%d", i);
        must_on(k.s, k.s->admin_key, "PUT", path, "{}", 201);
        snprintf(path, sizeof path, "/v1/customers/K%d/points:earn", i);
        must_on(k.s, k.s->admin_key, "POST", path,
                "{\"point_type\":\"sun\",\"amount\":1000000,\"source\":\"t\"}", 201);
    }
    launch_on(k.s, admin2, "kill", "\"budget\":{\"points\":100000000,\"cost\":100000000}",
              "{\"cost\":{\"points\":3},\"thanks\":{\"weight\":2},\"prizes\":[{\"code\":\"cp\","
              "\"name\":\"5元立减金\",\"weight\":1,\"stock\":100000,\"reward\":{\"item\":"
              "\"cp5\"}},{\"code\":\"pt\",\"name\":\"10\",\"weight\":1,\"stock\":100000,"
              "\"reward\":{\"points\":10}}]}");
    h_kill9_run(&k, 300);
    /* every acknowledged draw is there, explained */
    for (int i = 0; i < k.nacked; i++) {
        char path[160];
        snprintf(path, sizeof path, "/v1/campaigns/kill/draws/%s", k.acked[i]);
        h_resp r = h_req(k.s, "GET", path, k.key, NULL);
        if (r.status != 200)
            fail_msg("acknowledged draw %s is missing after kill -9: %ld", k.acked[i], r.status);
        assert_non_null(json_object_get(r.json, "explain"));
        h_resp_free(&r);
    }
    /* the cost, the prizes, the stock and the budget add up */
    assert_check_passes(k.s);
    h_stop(k.s);
    free(k.acked);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_draw_flow),
        cmocka_unit_test(test_prize_table_author_cannot_approve),
        cmocka_unit_test(test_chances_left),
        cmocka_unit_test(test_same_key_concurrently),
        cmocka_unit_test(test_concurrent_stock_budget_limits),
        cmocka_unit_test(test_abuse_gate),
        cmocka_unit_test(test_bad_input_writes_nothing),
        cmocka_unit_test(test_failure_after_write_undone),
        cmocka_unit_test(test_audience_of_a_draft_not_remembered),
        cmocka_unit_test(test_kill9_during_draws),
    };
    return cmocka_run_group_tests_name("e2e-lottery", tests, group_setup, group_teardown);
}

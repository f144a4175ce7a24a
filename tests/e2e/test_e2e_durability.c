/* test_e2e_durability.c — acknowledged writes survive: a graceful shutdown
 * (SIGTERM) in the middle of a write burst finishes the requests in flight
 * and exits cleanly; kill -9 in the middle of a burst loses nothing that was
 * acknowledged.  Each acknowledged write is a key created through the API;
 * after a restart every acknowledged key id must be there, with its audit
 * row (written in the same transaction). */
#include "e2e/harness.h"

#define WRITERS 16
#define MAX_ACKS 20000

typedef struct burst {
    h_server *s;
    volatile int stop;
    pthread_mutex_t mu;
    char (*acked)[32]; /* ids of keys whose creation was acknowledged (201) */
    int nacked;
    int transport_errors; /* connection refused / reset while stopping */
    int unavailable;      /* 503: refused because the server is stopping */
    int bad_status;       /* any other non-201 answer */
    char last_bad[256];
} burst;

static void *writer_thread(void *p)
{
    burst *b = p;
    CURL *c = curl_easy_init();
    char body[96];
    for (int i = 0; !b->stop; i++) {
        snprintf(body, sizeof body, "{\"role\":\"app\",\"name\":\"burst %d\"}", i);
        h_resp r = h_req_on(c, b->s, "POST", "/v1/keys", b->s->admin_key, body, strlen(body), NULL);
        pthread_mutex_lock(&b->mu);
        if (r.status == 201 && b->nacked < MAX_ACKS) {
            snprintf(b->acked[b->nacked++], 32, "%s", h_str(json_object_get(r.json, "key"), "id"));
        } else if (r.status < 0) {
            b->transport_errors++;
        } else if (r.status == 503 && r.json && !strcmp(h_str(r.json, "type"), "unavailable")) {
            b->unavailable++;
        } else if (r.status != 201) {
            b->bad_status++;
            snprintf(b->last_bad, sizeof b->last_bad, "%ld %s", r.status, r.body ? r.body : "");
        }
        pthread_mutex_unlock(&b->mu);
        bool failed = r.status < 0 || r.status == 503;
        h_resp_free(&r);
        if (failed) {
            /* The server is going away: wait for the test to notice. */
            while (!b->stop)
                h_sleep_ms(5);
        }
    }
    curl_easy_cleanup(c);
    return NULL;
}

/* Runs WRITERS clients until at least min_acks writes were acknowledged,
 * then delivers sig to the server while they are still writing. */
static void burst_then_signal(burst *b, int min_acks, int sig, int *exit_status)
{
    pthread_t t[WRITERS];
    for (int i = 0; i < WRITERS; i++)
        pthread_create(&t[i], NULL, writer_thread, b);
    for (int waited = 0; waited < 30000; waited += 5) {
        pthread_mutex_lock(&b->mu);
        int n = b->nacked;
        pthread_mutex_unlock(&b->mu);
        if (n >= min_acks)
            break;
        h_sleep_ms(5);
    }
    *exit_status = h_signal_wait(b->s, sig);
    b->stop = 1;
    for (int i = 0; i < WRITERS; i++)
        pthread_join(t[i], NULL);
}

/* After a restart: every acknowledged key exists, and has its audit row. */
static void check_all_acked_present(burst *b)
{
    h_launch(b->s);
    h_resp r = h_req(b->s, "GET", "/v1/keys?include_revoked=true", b->s->admin_key, NULL);
    assert_int_equal(r.status, 200);
    json_t *items = json_object_get(r.json, "items");
    int found = 0;
    for (int i = 0; i < b->nacked; i++) {
        bool present = false;
        for (size_t j = 0; j < json_array_size(items) && !present; j++)
            present = !strcmp(h_str(json_array_get(items, j), "id"), b->acked[i]);
        if (!present)
            fail_msg("acknowledged key %s is missing after restart", b->acked[i]);
        found++;
    }
    assert_int_equal(found, b->nacked);
    /* Keys and audit rows were written in the same transactions. */
    size_t keys = json_array_size(items);
    h_resp_free(&r);
    size_t audit = 0;
    char path[128] = "/v1/audit?limit=500&action=POST%20/v1/keys";
    for (;;) {
        r = h_req(b->s, "GET", path, b->s->admin_key, NULL);
        assert_int_equal(r.status, 200);
        audit += json_array_size(json_object_get(r.json, "items"));
        const char *next = h_str(r.json, "next_cursor");
        if (!next) {
            h_resp_free(&r);
            break;
        }
        snprintf(path, sizeof path, "/v1/audit?limit=500&action=POST%%20/v1/keys&cursor=%s", next);
        h_resp_free(&r);
    }
    assert_int_equal(audit, keys - 1); /* all but the bootstrap key came through the API */
}

static void test_graceful_shutdown_under_load(void **state)
{
    burst b = {.s = h_start(NULL)};
    pthread_mutex_init(&b.mu, NULL);
    b.acked = calloc(MAX_ACKS, sizeof *b.acked);
    int status;
    burst_then_signal(&b, 200, SIGTERM, &status);
    assert_int_equal(status, 0); /* a clean exit */
    if (b.bad_status)
        fail_msg("%d requests got an error answer, e.g. %s", b.bad_status, b.last_bad);
    char path[600];
    snprintf(path, sizeof path, "%s/stderr.log", b.s->dir);
    char *log = h_read_file(path);
    assert_non_null(strstr(log, "shutting down"));
    assert_non_null(strstr(log, "store closed cleanly"));
    free(log);
    check_all_acked_present(&b);
    h_stop(b.s);
    free(b.acked);
}

static void test_kill9_loses_no_acknowledged_write(void **state)
{
    burst b = {.s = h_start(NULL)};
    pthread_mutex_init(&b.mu, NULL);
    b.acked = calloc(MAX_ACKS, sizeof *b.acked);
    int status;
    burst_then_signal(&b, 300, SIGKILL, &status);
    assert_int_equal(status, 128 + SIGKILL);
    if (b.bad_status)
        fail_msg("%d requests got an error answer, e.g. %s", b.bad_status, b.last_bad);
    assert_true(b.nacked >= 300);
    check_all_acked_present(&b);
    h_stop(b.s);
    free(b.acked);
}

static void test_kill9_with_sync_normal(void **state)
{
    /* synchronous=NORMAL skips the fsync at commit; a process crash still
     * loses nothing, because the WAL pages are in the OS page cache. */
    burst b = {.s = h_start("--sync", "normal", NULL)};
    pthread_mutex_init(&b.mu, NULL);
    b.acked = calloc(MAX_ACKS, sizeof *b.acked);
    int status;
    burst_then_signal(&b, 300, SIGKILL, &status);
    assert_int_equal(status, 128 + SIGKILL);
    check_all_acked_present(&b);
    h_stop(b.s);
    free(b.acked);
}

static void test_shutdown_after_clients_vanish_mid_write(void **state)
{
    /* Clients that give up while their write is being committed leave
     * connections that libmicrohttpd completes without calling the handler
     * again; shutdown must still finish. */
    h_server *s = h_start(NULL);
    /* Background writers keep commits busy, so the impatient requests below
     * wait for the writer long enough to give up. */
    burst b = {.s = s};
    pthread_mutex_init(&b.mu, NULL);
    b.acked = calloc(MAX_ACKS, sizeof *b.acked);
    pthread_t t[WRITERS];
    for (int i = 0; i < WRITERS; i++)
        pthread_create(&t[i], NULL, writer_thread, &b);
    CURL *c = curl_easy_init();
    const char *body = "{\"role\":\"app\",\"name\":\"impatient\"}";
    for (int i = 0; i < 300; i++) {
        char url[128], auth[256];
        snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/keys", s->port);
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", s->admin_key);
        struct curl_slist *hl = curl_slist_append(NULL, auth);
        curl_easy_reset(c);
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 1L + i % 3);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_FORBID_REUSE, 1L);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, h_write_cb);
        h_resp sink = {0};
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
        curl_easy_perform(c);
        free(sink.body);
        curl_slist_free_all(hl);
    }
    curl_easy_cleanup(c);
    b.stop = 1;
    for (int i = 0; i < WRITERS; i++)
        pthread_join(t[i], NULL);
    h_sleep_ms(200);
    h_resp r = h_req(s, "GET", "/metrics", NULL, NULL);
    assert_non_null(strstr(r.body, "siyu_http_requests_in_flight 1\n")); /* only this one */
    assert_non_null(strstr(r.body, "siyu_http_requests_awaiting_commit 0\n"));
    h_resp_free(&r);
    assert_int_equal(h_signal_wait(s, SIGTERM), 0);
    h_stop(s);
    free(b.acked);
}

static void test_second_server_on_same_data_refused(void **state)
{
    h_server *s = h_start(NULL);
    char *out = NULL;
    char cmd[700];
    snprintf(cmd, sizeof cmd, "serve --listen 127.0.0.1:0");
    /* h_cli appends --data; serve must refuse at once since the lock is held. */
    int rc = h_cli(s, &out, "%s", cmd);
    free(out);
    assert_int_not_equal(rc, 0);
    char path[600];
    snprintf(path, sizeof path, "%s/cli.log", s->dir);
    char *log = h_read_file(path);
    assert_non_null(strstr(log, "another siyu serve"));
    free(log);
    h_stop(s);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_graceful_shutdown_under_load),
        cmocka_unit_test(test_kill9_loses_no_acknowledged_write),
        cmocka_unit_test(test_kill9_with_sync_normal),
        cmocka_unit_test(test_shutdown_after_clients_vanish_mid_write),
        cmocka_unit_test(test_second_server_on_same_data_refused),
    };
    int rc = cmocka_run_group_tests_name("e2e-durability", tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}

/* test_metrics.c — counters, gauges and histograms as rendered in the
 * Prometheus text format by sy_metrics_render. */
#include "testutil.h"

#include "metrics.h"
#include "util.h"
#include "version.h"

#include <pthread.h>

static const char *const k_labels[] = {"GET /x", "POST /y"};

static int setup(void **state)
{
    (void)state;
    sy_metrics_init(k_labels, 2);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    sy_metrics_free();
    return 0;
}

static char *render(void)
{
    sy_buf b = {0};
    sy_metrics_render(&b);
    assert_non_null(b.data);
    return sy_buf_steal(&b);
}

/* True when text holds line as a whole line. */
static bool has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)) != NULL; p++) {
        bool starts = p == text || p[-1] == '\n';
        bool ends = p[n] == '\n' || p[n] == '\0';
        if (starts && ends)
            return true;
    }
    return false;
}

static void expect_line(const char *text, const char *line)
{
    if (!has_line(text, line))
        fail_msg("missing line: %s\n--- rendered ---\n%s", line, text);
}

/* Does any line start with prefix? */
static bool has_prefix(const char *text, const char *prefix)
{
    size_t n = strlen(prefix);
    for (const char *p = text; p && *p;) {
        if (!strncmp(p, prefix, n))
            return true;
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    return false;
}

/* The value of the sample "name" (name includes labels), or -1. */
static double sample(const char *text, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = text; p && *p;) {
        if (!strncmp(p, name, n) && p[n] == ' ')
            return strtod(p + n + 1, NULL);
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    return -1;
}

/* Checks a histogram's buckets are cumulative and +Inf equals _count.
 * labels is "" or 'route="..."'. */
static void check_histogram(const char *text, const char *name, const char *labels)
{
    char prefix[256], key[256];
    snprintf(prefix, sizeof prefix, "%s_bucket{%s%s", name, labels, labels[0] ? "," : "");
    size_t n = strlen(prefix);
    double prev = 0;
    int buckets = 0;
    double inf = -1;
    for (const char *p = text; p && *p;) {
        if (!strncmp(p, prefix, n) && !strncmp(p + n, "le=\"", 4)) {
            const char *close = strchr(p, '}');
            assert_non_null(close);
            double v = strtod(close + 2, NULL);
            if (v < prev)
                fail_msg("%s: bucket values decrease (%g after %g)", prefix, v, prev);
            prev = v;
            buckets++;
            if (!strncmp(p + n + 4, "+Inf\"", 5))
                inf = v;
        }
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    assert_true(buckets >= 2);
    snprintf(key, sizeof key, "%s_count{%s}", name, labels);
    double count = sample(text, key);
    if (count < 0 && !labels[0]) {
        snprintf(key, sizeof key, "%s_count", name);
        count = sample(text, key);
    }
    if (inf < 0 || inf != count)
        fail_msg("%s: +Inf bucket %g != _count %g", name, inf, count);
}

static void test_request_counters(void **state)
{
    (void)state;
    sy_metrics_request(0, 200, 1000);
    sy_metrics_request(0, 200, 1000);
    sy_metrics_request(0, 404, 1000);
    sy_metrics_request(1, 201, 1000);
    sy_metrics_request(0, 418, 1000);  /* no own counter: "other" */
    sy_metrics_request(-1, 404, 1000); /* matched no route */
    sy_metrics_request(2, 405, 1000);  /* index nroutes: unmatched too */
    sy_metrics_request(99, 404, 1000); /* out of range: unmatched */
    char *t = render();
    expect_line(t, "# TYPE siyu_http_requests_total counter");
    expect_line(t, "siyu_http_requests_total{route=\"GET /x\",status=\"200\"} 2");
    expect_line(t, "siyu_http_requests_total{route=\"GET /x\",status=\"404\"} 1");
    expect_line(t, "siyu_http_requests_total{route=\"GET /x\",status=\"other\"} 1");
    expect_line(t, "siyu_http_requests_total{route=\"POST /y\",status=\"201\"} 1");
    expect_line(t, "siyu_http_requests_total{route=\"unmatched\",status=\"404\"} 2");
    expect_line(t, "siyu_http_requests_total{route=\"unmatched\",status=\"405\"} 1");
    /* Nothing was counted for these. */
    assert_false(has_prefix(t, "siyu_http_requests_total{route=\"POST /y\",status=\"200\"} 1"));
    assert_false(has_prefix(t, "siyu_http_requests_total{route=\"GET /x\",status=\"201\"} 1"));
    free(t);

    sy_metrics_request(0, 200, 1000);
    t = render();
    expect_line(t, "siyu_http_requests_total{route=\"GET /x\",status=\"200\"} 3");
    free(t);
}

static void test_every_tracked_status_has_its_own_label(void **state)
{
    (void)state;
    static const int codes[] = {200, 201, 204, 304, 400, 401, 403, 404,
                                405, 409, 413, 415, 422, 429, 500, 503};
    for (size_t i = 0; i < SY_ARRAY_LEN(codes); i++)
        for (size_t k = 0; k <= i; k++)
            sy_metrics_request(1, codes[i], 5000);
    char *t = render();
    for (size_t i = 0; i < SY_ARRAY_LEN(codes); i++) {
        char line[160];
        snprintf(line, sizeof line, "siyu_http_requests_total{route=\"POST /y\",status=\"%d\"} %zu",
                 codes[i], i + 1);
        expect_line(t, line);
    }
    assert_false(has_prefix(t, "siyu_http_requests_total{route=\"POST /y\",status=\"other\"}"));
    free(t);
}

static void test_latency_histogram(void **state)
{
    (void)state;
    sy_metrics_request(0, 200, 50000);        /* 50 us */
    sy_metrics_request(0, 200, 100000);       /* exactly 100 us: le="0.0001" is inclusive */
    sy_metrics_request(0, 200, 300000);       /* 300 us */
    sy_metrics_request(0, 500, 2000000);      /* 2 ms */
    sy_metrics_request(0, 200, 10000000000u); /* 10 s: beyond the last bucket */
    char *t = render();
    expect_line(t, "# TYPE siyu_http_request_duration_seconds histogram");
    const char *b = "siyu_http_request_duration_seconds_bucket{route=\"GET /x\",le=";
    char line[200];
    static const struct {
        const char *le;
        int count;
    } want[] = {
        {"0.0001", 2}, {"0.00025", 2}, {"0.0005", 3}, {"0.001", 3}, {"0.0025", 4}, {"0.005", 4},
        {"0.01", 4},   {"0.025", 4},   {"0.05", 4},   {"0.1", 4},   {"0.25", 4},   {"0.5", 4},
        {"1", 4},      {"2.5", 4},     {"5", 4},      {"+Inf", 5},
    };
    for (size_t i = 0; i < SY_ARRAY_LEN(want); i++) {
        snprintf(line, sizeof line, "%s\"%s\"} %d", b, want[i].le, want[i].count);
        expect_line(t, line);
    }
    expect_line(t, "siyu_http_request_duration_seconds_count{route=\"GET /x\"} 5");
    expect_line(t, "siyu_http_request_duration_seconds_sum{route=\"GET /x\"} 10.002450000");
    check_histogram(t, "siyu_http_request_duration_seconds", "route=\"GET /x\"");
    /* No observations for POST /y: no series for it. */
    assert_false(has_prefix(t, "siyu_http_request_duration_seconds_count{route=\"POST /y\"}"));
    free(t);
}

static void test_commit_metrics(void **state)
{
    (void)state;
    /* These counters are process-wide and survive sy_metrics_init: compare
     * against what they were before. */
    char *t0 = render();
    double ok0 = sample(t0, "siyu_store_commits_total{result=\"ok\"}");
    double err0 = sample(t0, "siyu_store_commits_total{result=\"error\"}");
    double cnt0 = sample(t0, "siyu_store_commit_batch_size_count");
    double sum0 = sample(t0, "siyu_store_commit_batch_size_sum");
    double le1 = sample(t0, "siyu_store_commit_batch_size_bucket{le=\"1\"}");
    double le4 = sample(t0, "siyu_store_commit_batch_size_bucket{le=\"4\"}");
    double le1024 = sample(t0, "siyu_store_commit_batch_size_bucket{le=\"1024\"}");
    double inf0 = sample(t0, "siyu_store_commit_batch_size_bucket{le=\"+Inf\"}");
    assert_true(ok0 >= 0 && err0 >= 0 && cnt0 >= 0 && sum0 >= 0);
    free(t0);

    sy_metrics_commit(1, 1000, 500, true);
    sy_metrics_commit(3, 1000, 500, true);
    sy_metrics_commit(4, 1000, 500, true);
    sy_metrics_commit(1024, 1000, 500, false);
    sy_metrics_commit(5000, 1000, 500, true);

    char *t = render();
    expect_line(t, "# TYPE siyu_store_commits_total counter");
    assert_true(sample(t, "siyu_store_commits_total{result=\"ok\"}") == ok0 + 4);
    assert_true(sample(t, "siyu_store_commits_total{result=\"error\"}") == err0 + 1);
    assert_true(sample(t, "siyu_store_commit_batch_size_count") == cnt0 + 5);
    assert_true(sample(t, "siyu_store_commit_batch_size_sum") == sum0 + 1 + 3 + 4 + 1024 + 5000);
    assert_true(sample(t, "siyu_store_commit_batch_size_bucket{le=\"1\"}") == le1 + 1);
    assert_true(sample(t, "siyu_store_commit_batch_size_bucket{le=\"4\"}") == le4 + 3);
    assert_true(sample(t, "siyu_store_commit_batch_size_bucket{le=\"1024\"}") == le1024 + 4);
    assert_true(sample(t, "siyu_store_commit_batch_size_bucket{le=\"+Inf\"}") == inf0 + 5);
    check_histogram(t, "siyu_store_commit_batch_size", "");
    check_histogram(t, "siyu_store_commit_duration_seconds", "");
    check_histogram(t, "siyu_store_commit_statement_duration_seconds", "");
    assert_true(sample(t, "siyu_store_commit_statement_duration_seconds_count") ==
                sample(t, "siyu_store_commit_duration_seconds_count"));
    check_histogram(t, "siyu_store_fsync_duration_seconds", "");
    /* This test is the only one that records commits, so exact values hold. */
    expect_line(t, "siyu_store_commits_total{result=\"ok\"} 4");
    expect_line(t, "siyu_store_commits_total{result=\"error\"} 1");
    expect_line(t, "siyu_store_commit_batch_size_bucket{le=\"2\"} 1");
    expect_line(t, "siyu_store_commit_batch_size_bucket{le=\"+Inf\"} 5");
    expect_line(t, "siyu_store_commit_batch_size_sum 6032");
    expect_line(t, "siyu_store_commit_batch_size_count 5");
    free(t);
}

static void test_gauges(void **state)
{
    (void)state;
    char *t = render();
    double conn0 = sample(t, "siyu_http_open_connections");
    free(t);
    sy_metrics_connections(3);
    sy_metrics_connections(-1);
    sy_metrics_in_flight(2);
    sy_metrics_in_flight(-2);
    sy_metrics_in_flight(1);
    sy_metrics_awaiting_commit(2);
    sy_metrics_awaiting_commit(-1);
    assert_int_equal(sy_metrics_in_flight_now(), 1);
    t = render();
    expect_line(t, "# TYPE siyu_http_open_connections gauge");
    assert_true(sample(t, "siyu_http_open_connections") == conn0 + 2);
    expect_line(t, "siyu_http_open_connections 2");
    expect_line(t, "siyu_http_requests_in_flight 1");
    expect_line(t, "siyu_http_requests_awaiting_commit 1");
    free(t);
    sy_metrics_awaiting_commit(-1);
    sy_metrics_connections(-2);
    sy_metrics_in_flight(-1);
    assert_int_equal(sy_metrics_in_flight_now(), 0);
    t = render();
    expect_line(t, "siyu_http_open_connections 0");
    expect_line(t, "siyu_http_requests_in_flight 0");
    expect_line(t, "siyu_http_requests_awaiting_commit 0");
    free(t);
}

static void test_build_info_and_families(void **state)
{
    (void)state;
    char *t = render();
    expect_line(t, "siyu_build_info{version=\"" SY_VERSION "\"} 1");
    expect_line(t, "# TYPE siyu_build_info gauge");
    expect_line(t, "# TYPE siyu_process_start_time_seconds gauge");
    double start = sample(t, "siyu_process_start_time_seconds");
    double now = (double)sy_now_ms() / 1000.0;
    assert_true(start > now - 60 && start <= now + 1);
    expect_line(t, "# TYPE siyu_store_commit_batch_size histogram");
    expect_line(t, "# TYPE siyu_store_commit_duration_seconds histogram");
    expect_line(t, "# TYPE siyu_store_commit_statement_duration_seconds histogram");
    expect_line(t, "# TYPE siyu_store_fsync_duration_seconds histogram");
    /* Every line is a comment or "name[{labels}] value". */
    for (const char *p = t; *p;) {
        const char *eol = strchr(p, '\n');
        assert_non_null(eol); /* the text ends with a newline */
        if (*p != '#') {
            /* label values may hold spaces: the value follows the '}' */
            const char *brace = memchr(p, '{', (size_t)(eol - p));
            const char *from = brace ? memchr(brace, '}', (size_t)(eol - brace)) : p;
            assert_non_null(from);
            const char *sp = memchr(from, ' ', (size_t)(eol - from));
            assert_non_null(sp);
            char *end;
            strtod(sp + 1, &end);
            if (end != eol)
                fail_msg("bad sample line: %.*s", (int)(eol - p), p);
        }
        p = eol + 1;
    }
    free(t);
}

static void test_init_resets_route_counters(void **state)
{
    (void)state;
    sy_metrics_request(0, 200, 1000);
    char *t = render();
    expect_line(t, "siyu_http_requests_total{route=\"GET /x\",status=\"200\"} 1");
    free(t);

    static const char *const other[] = {"GET /a", "GET /b", "GET /c"};
    sy_metrics_init(other, 3);
    t = render();
    assert_false(has_prefix(t, "siyu_http_requests_total{"));
    free(t);
    sy_metrics_request(2, 204, 1000);
    sy_metrics_request(3, 404, 1000);
    t = render();
    expect_line(t, "siyu_http_requests_total{route=\"GET /c\",status=\"204\"} 1");
    expect_line(t, "siyu_http_requests_total{route=\"unmatched\",status=\"404\"} 1");
    free(t);

    /* After sy_metrics_free, request recording is a no-op. */
    sy_metrics_free();
    sy_metrics_request(0, 200, 1000);
    t = render();
    assert_false(has_prefix(t, "siyu_http_requests_total{"));
    free(t);
}

#define THREADS 4
#define PER_THREAD 20000

static void *hammer(void *arg)
{
    (void)arg;
    for (int i = 0; i < PER_THREAD; i++) {
        sy_metrics_request(1, 201, 1000);
        sy_metrics_connections(1);
        sy_metrics_connections(-1);
    }
    return NULL;
}

static void test_concurrent_updates_are_not_lost(void **state)
{
    (void)state;
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, hammer, NULL), 0);
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    char *t = render();
    char line[160];
    snprintf(line, sizeof line, "siyu_http_requests_total{route=\"POST /y\",status=\"201\"} %d",
             THREADS * PER_THREAD);
    expect_line(t, line);
    snprintf(line, sizeof line, "siyu_http_request_duration_seconds_count{route=\"POST /y\"} %d",
             THREADS * PER_THREAD);
    expect_line(t, line);
    expect_line(t, "siyu_http_open_connections 0");
    free(t);
}

int main(void)
{
    const struct CMUnitTest metrics_prometheus_rendering[] = {
        cmocka_unit_test_setup_teardown(test_request_counters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_tracked_status_has_its_own_label, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_latency_histogram, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_metrics, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gauges, setup, teardown),
        cmocka_unit_test_setup_teardown(test_build_info_and_families, setup, teardown),
        cmocka_unit_test_setup_teardown(test_init_resets_route_counters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_updates_are_not_lost, setup, teardown),
    };
    return cmocka_run_group_tests(metrics_prometheus_rendering, NULL, NULL);
}

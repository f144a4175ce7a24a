/* metrics.c — counters and fixed-bucket histograms behind GET /metrics. */
#include "metrics.h"
#include "version.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Latency buckets in seconds, shared by requests and commits. */
static const double k_lat_le[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                  0.05,   0.1,     0.25,   0.5,   1,      2.5,   5};
#define N_LAT (sizeof k_lat_le / sizeof k_lat_le[0])
/* Commit batch sizes: 1, 2, 4 ... 1024. */
#define N_BATCH 11

/* Status codes with their own counter; anything else counts under "other". */
static const int k_codes[] = {200, 201, 204, 304, 400, 401, 403, 404,
                              405, 409, 413, 415, 422, 429, 500, 503};
#define N_CODES (sizeof k_codes / sizeof k_codes[0])

typedef struct hist {
    atomic_uint_fast64_t bucket[N_LAT + 1]; /* last is +Inf */
    atomic_uint_fast64_t sum_ns;
} hist;

typedef struct route_stats {
    atomic_uint_fast64_t status[N_CODES + 1];
    hist latency;
} route_stats;

static const char *const *g_labels;
static int g_nroutes;
static route_stats *g_routes;
static hist g_commit_latency, g_commit_statement, g_fsync_latency;
static atomic_uint_fast64_t g_batch_bucket[N_BATCH + 1];
static atomic_uint_fast64_t g_batch_sum;
static atomic_uint_fast64_t g_commits_ok, g_commits_failed, g_reruns;
static atomic_int_fast64_t g_connections, g_in_flight, g_awaiting_commit;
static int64_t g_start_ms;

void sy_metrics_init(const char *const *route_labels, int nroutes)
{
    free(g_routes);
    g_labels = route_labels;
    g_nroutes = nroutes;
    g_routes = sy_xcalloc((size_t)nroutes + 1, sizeof *g_routes);
    g_start_ms = sy_now_ms();
}

void sy_metrics_free(void)
{
    free(g_routes);
    g_routes = NULL;
    g_nroutes = 0;
}

static void hist_observe(hist *h, uint64_t ns)
{
    double secs = (double)ns / 1e9;
    size_t i = 0;
    while (i < N_LAT && secs > k_lat_le[i])
        i++;
    atomic_fetch_add_explicit(&h->bucket[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_ns, ns, memory_order_relaxed);
}

void sy_metrics_request(int route, int status, uint64_t latency_ns)
{
    if (!g_routes)
        return;
    if (route < 0 || route > g_nroutes)
        route = g_nroutes;
    size_t c = 0;
    while (c < N_CODES && k_codes[c] != status)
        c++;
    atomic_fetch_add_explicit(&g_routes[route].status[c], 1, memory_order_relaxed);
    hist_observe(&g_routes[route].latency, latency_ns);
}

void sy_metrics_fsync(uint64_t latency_ns)
{
    hist_observe(&g_fsync_latency, latency_ns);
}

void sy_metrics_writer_rerun(void)
{
    atomic_fetch_add_explicit(&g_reruns, 1, memory_order_relaxed);
}

void sy_metrics_commit(size_t batch, uint64_t latency_ns, uint64_t commit_ns, bool ok)
{
    atomic_fetch_add_explicit(ok ? &g_commits_ok : &g_commits_failed, 1, memory_order_relaxed);
    hist_observe(&g_commit_latency, latency_ns);
    hist_observe(&g_commit_statement, commit_ns);
    size_t i = 0;
    while (i < N_BATCH && batch > ((size_t)1 << i))
        i++;
    atomic_fetch_add_explicit(&g_batch_bucket[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&g_batch_sum, batch, memory_order_relaxed);
}

void sy_metrics_connections(int delta)
{
    atomic_fetch_add_explicit(&g_connections, delta, memory_order_relaxed);
}

void sy_metrics_in_flight(int delta)
{
    atomic_fetch_add_explicit(&g_in_flight, delta, memory_order_relaxed);
}

void sy_metrics_awaiting_commit(int delta)
{
    atomic_fetch_add_explicit(&g_awaiting_commit, delta, memory_order_relaxed);
}

int64_t sy_metrics_in_flight_now(void)
{
    return atomic_load(&g_in_flight);
}

static uint64_t ld(atomic_uint_fast64_t *v)
{
    return atomic_load_explicit(v, memory_order_relaxed);
}

static void render_hist(sy_buf *o, const char *name, const char *labels, hist *h)
{
    uint64_t cum = 0;
    const char *sep = labels[0] ? "," : "";
    for (size_t i = 0; i < N_LAT; i++) {
        cum += ld(&h->bucket[i]);
        sy_buf_printf(o, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep, k_lat_le[i],
                      (unsigned long long)cum);
    }
    cum += ld(&h->bucket[N_LAT]);
    sy_buf_printf(o, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep,
                  (unsigned long long)cum);
    const char *lb = labels[0] ? "{" : "", *rb = labels[0] ? "}" : "";
    sy_buf_printf(o, "%s_sum%s%s%s %.9f\n", name, lb, labels, rb, (double)ld(&h->sum_ns) / 1e9);
    sy_buf_printf(o, "%s_count%s%s%s %llu\n", name, lb, labels, rb, (unsigned long long)cum);
}

static const char *route_label(int r)
{
    return r < g_nroutes ? g_labels[r] : "unmatched";
}

void sy_metrics_render(sy_buf *o)
{
    sy_buf_printf(o,
                  "# HELP siyu_build_info Build information.\n"
                  "# TYPE siyu_build_info gauge\n"
                  "siyu_build_info{version=\"%s\"} 1\n",
                  SY_VERSION);
    sy_buf_printf(o,
                  "# HELP siyu_process_start_time_seconds Start time of the process.\n"
                  "# TYPE siyu_process_start_time_seconds gauge\n"
                  "siyu_process_start_time_seconds %.3f\n",
                  (double)g_start_ms / 1000.0);

    sy_buf_puts(o, "# HELP siyu_http_requests_total HTTP requests by route and status.\n"
                   "# TYPE siyu_http_requests_total counter\n");
    for (int r = 0; g_routes && r <= g_nroutes; r++) {
        for (size_t c = 0; c <= N_CODES; c++) {
            uint64_t v = ld(&g_routes[r].status[c]);
            if (!v)
                continue;
            char code[8];
            if (c < N_CODES)
                snprintf(code, sizeof code, "%d", k_codes[c]);
            else
                snprintf(code, sizeof code, "other");
            sy_buf_printf(o, "siyu_http_requests_total{route=\"%s\",status=\"%s\"} %llu\n",
                          route_label(r), code, (unsigned long long)v);
        }
    }
    sy_buf_puts(o, "# HELP siyu_http_request_duration_seconds Request latency by route.\n"
                   "# TYPE siyu_http_request_duration_seconds histogram\n");
    for (int r = 0; g_routes && r <= g_nroutes; r++) {
        uint64_t any = 0;
        for (size_t i = 0; i <= N_LAT; i++)
            any += ld(&g_routes[r].latency.bucket[i]);
        if (!any)
            continue;
        char labels[160];
        snprintf(labels, sizeof labels, "route=\"%s\"", route_label(r));
        render_hist(o, "siyu_http_request_duration_seconds", labels, &g_routes[r].latency);
    }
    sy_buf_printf(
        o,
        "# HELP siyu_http_open_connections Open client connections.\n"
        "# TYPE siyu_http_open_connections gauge\n"
        "siyu_http_open_connections %lld\n"
        "# HELP siyu_http_requests_in_flight Requests being processed.\n"
        "# TYPE siyu_http_requests_in_flight gauge\n"
        "siyu_http_requests_in_flight %lld\n"
        "# HELP siyu_http_requests_awaiting_commit Requests suspended until their write commits.\n"
        "# TYPE siyu_http_requests_awaiting_commit gauge\n"
        "siyu_http_requests_awaiting_commit %lld\n",
        (long long)atomic_load(&g_connections), (long long)atomic_load(&g_in_flight),
        (long long)atomic_load(&g_awaiting_commit));

    sy_buf_printf(o,
                  "# HELP siyu_store_commits_total Group-commit transactions by result.\n"
                  "# TYPE siyu_store_commits_total counter\n"
                  "siyu_store_commits_total{result=\"ok\"} %llu\n"
                  "siyu_store_commits_total{result=\"error\"} %llu\n",
                  (unsigned long long)ld(&g_commits_ok), (unsigned long long)ld(&g_commits_failed));
    sy_buf_printf(o,
                  "# HELP siyu_store_batch_reruns_total Batches run a second time, each mutation"
                  " in a savepoint, because one without a savepoint failed after writing.\n"
                  "# TYPE siyu_store_batch_reruns_total counter\n"
                  "siyu_store_batch_reruns_total %llu\n",
                  (unsigned long long)ld(&g_reruns));
    sy_buf_puts(o, "# HELP siyu_store_commit_batch_size Mutations per committed transaction.\n"
                   "# TYPE siyu_store_commit_batch_size histogram\n");
    uint64_t cum = 0;
    for (size_t i = 0; i < N_BATCH; i++) {
        cum += ld(&g_batch_bucket[i]);
        sy_buf_printf(o, "siyu_store_commit_batch_size_bucket{le=\"%zu\"} %llu\n", (size_t)1 << i,
                      (unsigned long long)cum);
    }
    cum += ld(&g_batch_bucket[N_BATCH]);
    sy_buf_printf(o,
                  "siyu_store_commit_batch_size_bucket{le=\"+Inf\"} %llu\n"
                  "siyu_store_commit_batch_size_sum %llu\n"
                  "siyu_store_commit_batch_size_count %llu\n",
                  (unsigned long long)cum, (unsigned long long)ld(&g_batch_sum),
                  (unsigned long long)cum);
    sy_buf_puts(o, "# HELP siyu_store_commit_duration_seconds Time to run and commit a batch.\n"
                   "# TYPE siyu_store_commit_duration_seconds histogram\n");
    render_hist(o, "siyu_store_commit_duration_seconds", "", &g_commit_latency);
    sy_buf_puts(o, "# HELP siyu_store_commit_statement_duration_seconds Time of a batch's COMMIT"
                   " statement (its pages written to the WAL).\n"
                   "# TYPE siyu_store_commit_statement_duration_seconds histogram\n");
    render_hist(o, "siyu_store_commit_statement_duration_seconds", "", &g_commit_statement);
    sy_buf_puts(o, "# HELP siyu_store_fsync_duration_seconds Time of one fdatasync of the WAL,"
                   " which makes every batch committed before it durable.\n"
                   "# TYPE siyu_store_fsync_duration_seconds histogram\n");
    render_hist(o, "siyu_store_fsync_duration_seconds", "", &g_fsync_latency);
}

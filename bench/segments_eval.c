/* segments_eval.c — segment counts timed in process, over a synthetic index
 * shaped like the demo bank's bank-template attributes (independent
 * attributes with the weights of src/demo.c: risk_level R1..R5 15/30/30/18/7 %,
 * payroll 35.4 %, gender F 50 %, city 上海 18 % of 12 cities, aum log-normal
 * around 50,000 yuan ...), built through the index API in tens of seconds
 * where a 10M-customer `siyu demo` store takes most of an hour.
 *
 * Each query is evaluated with sy_seg_eval_index (the server's call: in two
 * halves on two threads from 2M customers on) and in one thread, with
 * and-chains in one pass over the containers (sy_seg_fuse, the default) and
 * term by term; the four ways are interleaved run by run, so drift on a
 * shared machine hits them alike.  Every way must give the same count.
 *
 *   make && cc -std=c11 -D_GNU_SOURCE -O2 -Isrc -o /tmp/segments_eval bench/segments_eval.c \
 *       $(find build/release/obj -name '*.o' ! -name main.o) -lmicrohttpd -ljansson \
 *       -lsqlite3 -lsodium -lcurl -lroaring -lcsv -pthread -lm
 *   /tmp/segments_eval [customers (10000000)] [runs (21)] [expression]
 *
 * STORE=DIR evaluates over the index of a store's tenant demo instead (as
 * the server builds it at start: DIR is a --data directory), to compare the
 * real index with the synthetic one.
 *
 * COLD=1 evicts the caches before each run (by writing 64 MiB), as the
 * processes a shell starts between two HTTP requests do.
 *
 * WAY=0..3 runs one of the four ways only (for perf).  With STEPS=1 it times instead the steps of
 * q3's term-by-term plan with plain CRoaring calls on the index's bitmaps (the union of R3..R5,
 * each intersection, the aum scan over what is left). */
#include "attr.h"
#include "chunk.h"
#include "index.h"
#include "segment_eval.h"
#include "segment_parse.h"
#include "store.h"
#include "tenant.h"
#include "util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct rng {
    uint64_t s;
} rng;

static uint64_t rnext(rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double unif(rng *r)
{
    return (double)(rnext(r) >> 11) / 9007199254740992.0;
}

static double normal(rng *r)
{
    double u = unif(r), v = unif(r);
    return sqrt(-2 * log(u + 1e-300)) * cos(2 * M_PI * v);
}

static int weighted(rng *r, const double *w, int n)
{
    double x = unif(r), acc = 0;
    for (int i = 0; i < n; i++)
        if ((acc += w[i]) >= x)
            return i;
    return n - 1;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int dcmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static const char *const k_defs[] = {
    "{\"name\":\"risk_level\",\"type\":\"enum\",\"values\":[\"R1\",\"R2\",\"R3\",\"R4\",\"R5\"]}",
    "{\"name\":\"aum\",\"type\":\"integer\",\"unit\":\"fen\"}",
    "{\"name\":\"payroll\",\"type\":\"bool\"}",
    "{\"name\":\"city\",\"type\":\"string\"}",
    "{\"name\":\"gender\",\"type\":\"enum\",\"values\":[\"M\",\"F\"]}",
    "{\"name\":\"customer_tier\",\"type\":\"enum\",\"values\":[\"普通\",\"金卡\",\"白金\",\"钻石\","
    "\"私行\"]}",
    "{\"name\":\"mobile_banking\",\"type\":\"bool\"}",
    "{\"name\":\"credit_card\",\"type\":\"bool\"}",
    "{\"name\":\"birth_year\",\"type\":\"integer\"}",
    "{\"name\":\"monthly_income\",\"type\":\"integer\",\"unit\":\"fen\"}",
};
static const char *const k_cities[] = {"上海", "杭州", "南京", "苏州", "北京", "深圳",
                                       "广州", "成都", "武汉", "宁波", "无锡", "合肥"};
static const double k_city_w[] = {0.18, 0.12, 0.10, 0.09, 0.09, 0.08,
                                  0.08, 0.07, 0.06, 0.05, 0.04, 0.04};
static const double k_risk_w[] = {0.15, 0.30, 0.30, 0.18, 0.07};
static const char *const k_risk[] = {"R1", "R2", "R3", "R4", "R5"};
static const double k_tier_w[] = {0.6, 0.25, 0.1, 0.04, 0.01};
static const char *const k_tier[] = {"普通", "金卡", "白金", "钻石", "私行"};

static const char *const k_queries[] = {
    "risk_level >= R3",
    "payroll = true and aum >= 50000000",
    "risk_level >= R3 and payroll = true and gender = 'F' and city = '上海' and aum >= 10000000",
    "customer_tier >= '白金' and mobile_banking = true and credit_card = true",
    "risk_level <= R2 and credit_card = true and gender = 'M' and city = '北京' and birth_year "
    "between 1970 and 1985",
    "risk_level in (R4, R5) and mobile_banking = true and city != '上海' and payroll = false and "
    "monthly_income >= 1500000",
    "customer_tier >= '金卡' and payroll = true and gender = 'F' and city in ('杭州', '南京') and "
    "aum >= 5000000",
    "risk_level >= R3 and payroll = true and gender = 'F' and city = '上海' and mobile_banking = "
    "true",
};

static sy_attr_set *schema_new(void)
{
    sy_attr_set *schema = sy_xcalloc(1, sizeof *schema);
    atomic_init(&schema->refs, 1);
    int nd = (int)(sizeof k_defs / sizeof k_defs[0]);
    schema->defs = sy_xcalloc((size_t)nd, sizeof *schema->defs);
    for (int i = 0; i < nd; i++) {
        json_t *b = json_loads(k_defs[i], 0, NULL);
        const char *field;
        char err[256];
        if (!b || !sy_attr_def_parse(b, &schema->defs[schema->n], &field, err, sizeof err)) {
            fprintf(stderr, "attribute %d: %s\n", i, b ? err : "bad JSON");
            exit(1);
        }
        schema->defs[schema->n].ordinal = schema->n;
        schema->n++;
        json_decref(b);
    }
    return schema;
}

static sy_index *index_new(const sy_attr_set *schema, uint32_t n)
{
    sy_index *ix = sy_index_new(8 * 3600000LL);
    rng r = {1};
    char no[32];
    for (uint32_t i = 0; i < n; i++) {
        snprintf(no, sizeof no, "C%09u", i);
        sy_index_add_customer(ix, no, i);
        json_t *o = json_object();
        int64_t aum = (int64_t)(exp(log(50000.0) + normal(&r) * 1.6) * 100.0);
        json_object_set_new(o, "risk_level", json_string(k_risk[weighted(&r, k_risk_w, 5)]));
        json_object_set_new(o, "aum", json_integer(aum));
        json_object_set_new(o, "payroll", json_boolean(unif(&r) < 0.354));
        json_object_set_new(o, "city", json_string(k_cities[weighted(&r, k_city_w, 12)]));
        json_object_set_new(o, "gender", json_string(unif(&r) < 0.5 ? "M" : "F"));
        json_object_set_new(o, "customer_tier", json_string(k_tier[weighted(&r, k_tier_w, 5)]));
        json_object_set_new(o, "mobile_banking", json_boolean(unif(&r) < 0.7));
        json_object_set_new(o, "credit_card", json_boolean(unif(&r) < 0.4));
        json_object_set_new(o, "birth_year", json_integer(1946 + (int)(unif(&r) * 62)));
        json_object_set_new(o, "monthly_income",
                            json_integer((int64_t)(exp(log(8000.0) + normal(&r) * 0.5) * 100)));
        sy_index_update_attrs(ix, i, schema, NULL, o);
        json_decref(o);
    }
    sy_index_compact(ix); /* as the end of a rebuild */
    return ix;
}

/* The container types of q3's bitmaps (CONTAINERS=1). */
static void containers(const sy_index *ix)
{
    static const char *const bm[][2] = {{"risk_level", "R3"}, {"risk_level", "R4"},
                                        {"risk_level", "R5"}, {"payroll", "true"},
                                        {"gender", "F"},      {"city", "上海"}};
    for (size_t i = 0; i <= sizeof bm / sizeof bm[0]; i++) {
        const roaring_bitmap_t *b = i < sizeof bm / sizeof bm[0]
                                        ? sy_index_value(ix, bm[i][0], bm[i][1])
                                        : sy_index_all(ix);
        if (!b)
            continue;
        const roaring_array_t *ra = &b->high_low_container;
        int n[5] = {0};
        for (int32_t k = 0; k < ra->size; k++)
            n[ra->typecodes[k]]++;
        printf("  %-10s %-6s %9llu members, %d chunks: %d bitset, %d array, %d run, %d shared\n",
               i < sizeof bm / sizeof bm[0] ? bm[i][0] : "all",
               i < sizeof bm / sizeof bm[0] ? bm[i][1] : "",
               (unsigned long long)roaring_bitmap_get_cardinality(b), ra->size,
               n[BITSET_CONTAINER_TYPE_CODE], n[ARRAY_CONTAINER_TYPE_CODE],
               n[RUN_CONTAINER_TYPE_CODE], n[SHARED_CONTAINER_TYPE_CODE]);
    }
}

/* q3's term-by-term plan, step by step, with CRoaring calls. */
static void steps(sy_index *ix, int runs)
{
    const roaring_bitmap_t *R[5];
    for (int i = 0; i < 5; i++)
        R[i] = sy_index_value(ix, "risk_level", k_risk[i]);
    const roaring_bitmap_t *F = sy_index_value(ix, "gender", "F");
    const roaring_bitmap_t *P = sy_index_value(ix, "payroll", "true");
    const roaring_bitmap_t *SH = sy_index_value(ix, "city", "上海");
    const char *name[] = {"union of R3, R4, R5", "and gender = 'F' (in place)",
                          "and payroll = true (in place)", "and city = '上海' (in place)",
                          "aum >= 10000000 over those left (sy_index_range)"};
    double t[5] = {0};
    uint64_t count = 0;
    for (int r = 0; r < runs; r++) {
        double a = now_ms(), b;
        roaring_bitmap_t *u = roaring_bitmap_or_many(3, &R[2]);
        t[0] += (b = now_ms()) - a;
        roaring_bitmap_and_inplace(u, F);
        t[1] += (a = now_ms()) - b;
        roaring_bitmap_and_inplace(u, P);
        t[2] += (b = now_ms()) - a;
        roaring_bitmap_and_inplace(u, SH);
        t[3] += (a = now_ms()) - b;
        roaring_bitmap_t *out = sy_index_range(ix, "aum", u, 10000000, INT64_MAX);
        t[4] += now_ms() - a;
        count = roaring_bitmap_get_cardinality(out);
        roaring_bitmap_free(out);
        roaring_bitmap_free(u);
    }
    double sum = 0;
    for (int i = 0; i < 5; i++) {
        printf("  %-50s %7.3f ms (mean of %d)\n", name[i], t[i] / runs, runs);
        sum += t[i] / runs;
    }
    printf("  %-50s %7.3f ms, count %llu\n", "total", sum, (unsigned long long)count);
}

int main(int argc, char **argv)
{
    uint32_t n = argc > 1 ? (uint32_t)atol(argv[1]) : 10000000;
    int runs = argc > 2 ? atoi(argv[2]) : 21;
    if (runs < 1)
        runs = 1;
    sy_attr_set *schema;
    sy_index *ix;
    double t0 = now_ms();
    int64_t now = 1764979200000LL;
    const char *dir = getenv("STORE");
    if (dir) {
        char path[4096], err[512];
        snprintf(path, sizeof path, "%s/siyu.db", dir);
        sy_store_opts so = {.path = path, .readers = 2, .sync = SY_SYNC_NORMAL};
        sy_store *st;
        if (sy_store_open(&so, &st, err, sizeof err) != SY_OK) {
            fprintf(stderr, "%s: %s\n", path, err);
            return 1;
        }
        sy_schemas *sc = sy_schemas_new(st);
        sy_indexes *r = sy_indexes_new(st, sy_tenants_new(st), sc);
        schema = sy_schemas_get(sc, "demo");
        ix = schema ? sy_indexes_get(r, "demo") : NULL;
        if (!ix) {
            fprintf(stderr, "%s: no index of tenant demo\n", dir);
            return 1;
        }
        n = sy_index_size(ix);
        now = sy_now_ms();
    } else {
        schema = schema_new();
        ix = index_new(schema, n);
    }
    printf("# %u customers indexed in %.1f s, index %.1f MiB\n", n, (now_ms() - t0) / 1e3,
           (double)sy_index_memory(ix) / 1048576.0);
    sy_index_rdlock(ix);
    if (getenv("CONTAINERS"))
        containers(ix);
    if (getenv("STEPS")) {
        steps(ix, runs);
        return 0;
    }
    const char *const *qs = argc > 3 ? (const char *const *)&argv[3] : k_queries;
    int nq = argc > 3 ? argc - 3 : (int)(sizeof k_queries / sizeof k_queries[0]);
    double *t = sy_xmalloc(4 * (size_t)runs * sizeof *t);
    static const char *const way[4] = {"one pass, halves", "one pass, 1 thread",
                                       "term by term, halves", "term by term, 1 thread"};
    int only = getenv("WAY") ? atoi(getenv("WAY")) : -1; /* 0..3: that way only */
    size_t cold = getenv("COLD") ? (size_t)64 << 20 : 0;
    char *evict = cold ? sy_xmalloc(cold) : NULL;
    bool fuse0 = sy_seg_fuse;
    uint32_t min0 = sy_seg_parallel_min;
    for (int q = 0; q < nq; q++) {
        sy_seg_error e;
        sy_seg_node *ast = sy_seg_parse(qs[q], strlen(qs[q]), &e);
        if (!ast) {
            fprintf(stderr, "%s: %s\n", qs[q], e.msg);
            return 1;
        }
        uint64_t count[4] = {0};
        for (int r = -1; r < runs; r++) /* run -1: warm-up */
            for (int w = 0; w < 4; w++) {
                if (only >= 0 && w != only)
                    continue;
                sy_seg_fuse = w < 2;
                sy_seg_parallel_min = w & 1 ? UINT32_MAX : min0;
                if (evict)
                    memset(evict, r + w, cold);
                double a = now_ms();
                roaring_bitmap_t *b = sy_seg_eval_index(ix, schema, now, ast, &e);
                if (!b) {
                    fprintf(stderr, "%s: %s\n", qs[q], e.msg);
                    return 1;
                }
                count[w] = roaring_bitmap_get_cardinality(b);
                double ms = now_ms() - a;
                roaring_bitmap_free(b);
                if (r >= 0)
                    t[w * runs + r] = ms;
            }
        sy_seg_fuse = fuse0;
        sy_seg_parallel_min = min0;
        printf("%s\n", qs[q]);
        for (int w = 0; w < 4; w++) {
            if (only >= 0 && w != only)
                continue;
            double *tw = t + w * runs;
            qsort(tw, (size_t)runs, sizeof *tw, dcmp);
            printf("  %-24s count %8llu  p50 %7.3f  min %7.3f  max %7.3f ms%s\n", way[w],
                   (unsigned long long)count[w], tw[(runs - 1) / 2], tw[0], tw[runs - 1],
                   count[w] != count[only >= 0 ? only : 0] ? "  COUNTS DIFFER" : "");
        }
        sy_seg_free(ast);
    }
    sy_index_unlock(ix);
    free(evict);
    free(t);
    return 0;
}

/* demo.c — generates a realistic synthetic bank tenant.
 *
 * Customers: ages 18-80 peaking in the 30s-40s, a weighted list of cities
 * with branches in each, log-normal AUM (median about 50,000 yuan), risk
 * levels R1-R5 weighted to the middle with assessments that sometimes
 * expired, payroll and credit-card holders, registration over three years,
 * a customer manager for the wealthier ones, channel identities and
 * personal data (sealed like any other).
 *
 * Behaviour: each customer has an activity level; on each day an active
 * customer opens the app, may check in, view wealth products (with dwell
 * times), click through, and sometimes buy — a view -> click -> buy funnel —
 * and pay bills.  Everything derives from one seeded generator, so the same
 * seed gives the same bank. */
#include "demo.h"
#include "util.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DAY_MS 86400000LL
#define BATCH 20000 /* rows per transaction */

/* xoshiro256** seeded by splitmix64 */
typedef struct rng {
    uint64_t s[4];
} rng;

static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void rng_seed(rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix(&seed);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t next(rng *r)
{
    uint64_t *s = r->s, result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

static double uniform(rng *r)
{
    return (double)(next(r) >> 11) * 0x1.0p-53;
}

static int64_t below(rng *r, int64_t n)
{
    return (int64_t)(uniform(r) * (double)n);
}

static double normal(rng *r)
{
    double u = uniform(r), v = uniform(r);
    return sqrt(-2.0 * log(u + 1e-300)) * cos(6.283185307179586 * v);
}

static int weighted(rng *r, const double *w, int n)
{
    double x = uniform(r), acc = 0;
    for (int i = 0; i < n; i++)
        if ((acc += w[i]) >= x)
            return i;
    return n - 1;
}

static const char *const k_cities[] = {"上海", "杭州", "南京", "苏州", "北京", "深圳",
                                       "广州", "成都", "武汉", "宁波", "无锡", "合肥"};
static const double k_city_w[] = {0.18, 0.12, 0.10, 0.09, 0.09, 0.08,
                                  0.08, 0.07, 0.06, 0.05, 0.04, 0.04};
static const double k_risk_w[] = {0.15, 0.30, 0.30, 0.18, 0.07};
static const char *const k_surnames[] = {"王", "李", "张", "刘", "陈", "杨", "黄", "赵",
                                         "吴", "周", "徐", "孙", "马", "朱", "胡", "郭"};
static const char *const k_given[] = {"伟", "芳",   "娜", "敏", "静",   "丽",   "强",   "磊",
                                      "军", "洋",   "勇", "艳", "杰",   "娟",   "涛",   "明",
                                      "超", "秀英", "华", "慧", "建国", "晓东", "子涵", "一鸣"};

typedef struct demo_event {
    const char *name;
    int64_t dwell; /* -1: none */
} demo_event;

typedef struct writer {
    sy_conn *c;
    int64_t rows;
} writer;

static int begin_if_needed(writer *w)
{
    if (w->rows % BATCH == 0)
        return sy_conn_begin(w->c);
    return SY_OK;
}

static int commit_if_full(writer *w)
{
    w->rows++;
    if (w->rows % BATCH == 0)
        return sy_conn_commit(w->c);
    return SY_OK;
}

static int row_done(writer *w, int rc)
{
    return rc == SY_OK ? commit_if_full(w) : rc;
}

int sy_demo_generate(sy_store *s, const sy_pii_keys *k, const sy_demo_opts *o, sy_demo_stats *out,
                     char *err, size_t errlen)
{
    static const char sql_c[] =
        "INSERT INTO customers (tenant_id, customer_no, dense_id, attrs, pii, created_at,"
        " updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6)";
    static const char sql_i[] = "INSERT INTO identities (tenant_id, type, value_key, customer_no,"
                                " created_at) VALUES ($1, $2, $3, $4, $5)";
    static const char sql_e[] =
        "INSERT INTO events (tenant_id, event_id, customer_no, name, ts, dwell_ms, props,"
        " received_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
    memset(out, 0, sizeof *out);
    writer w = {.c = sy_store_write_conn(s)};
    rng r;
    rng_seed(&r, o->seed);
    int64_t now_day = o->now_ms / DAY_MS;
    int64_t first_day = now_day - o->days + 1;
    int rc = SY_OK;
    uint64_t t0 = sy_mono_ns();
    double *activity = sy_xmalloc((size_t)o->customers * sizeof *activity);

    for (int64_t i = 0; i < o->customers && rc == SY_OK; i++) {
        if ((rc = begin_if_needed(&w)) != SY_OK)
            break;
        char no[24];
        snprintf(no, sizeof no, "C%08lld", (long long)(i + 1));
        int age = 18 + (int)fmin(62, fabs(38 + normal(&r) * 12 - 18));
        int city = weighted(&r, k_city_w, (int)SY_ARRAY_LEN(k_city_w));
        int risk = weighted(&r, k_risk_w, 5);
        /* log-normal AUM in fen: median 50,000 yuan, a long tail */
        double aum_yuan = exp(log(50000.0) + normal(&r) * 1.6);
        int64_t aum = (int64_t)(aum_yuan * 100.0);
        int64_t reg_day = now_day - below(&r, 3 * 365);
        int64_t assessed = reg_day + below(&r, now_day - reg_day + 1);
        char reg[11], ass[11], branch[48];
        sy_format_date(reg_day, reg);
        sy_format_date(assessed, ass);
        snprintf(branch, sizeof branch, "B%02d%02lld", city + 1, (long long)below(&r, 12) + 1);
        json_t *a =
            json_pack("{s:s, s:s, s:I, s:s, s:s, s:i, s:s, s:b, s:b, s:s}", "risk_level",
                      (const char *[]){"R1", "R2", "R3", "R4", "R5"}[risk], "risk_assessed_at", ass,
                      "aum", (json_int_t)aum, "branch", branch, "city", k_cities[city],
                      "birth_year", 2026 - age, "gender", uniform(&r) < 0.5 ? "M" : "F", "payroll",
                      uniform(&r) < 0.35, "credit_card", uniform(&r) < 0.4, "registered_at", reg);
        if (aum >= 50000000) { /* 500,000 yuan and more: a customer manager */
            char mgr[32];
            snprintf(mgr, sizeof mgr, "M%04lld", (long long)below(&r, 400) + 1);
            json_object_set_new(a, "manager_id", json_string(mgr));
        }
        char *attrs = json_dumps(a, JSON_COMPACT | JSON_SORT_KEYS);
        json_decref(a);
        char name[32], phone[40];
        snprintf(name, sizeof name, "%s%s", k_surnames[below(&r, 16)], k_given[below(&r, 24)]);
        /* Unique per customer: i times an odd number coprime with 10^9 is a
         * bijection on the 9-digit suffix. */
        snprintf(phone, sizeof phone, "1%d%09lld", 3 + (int)below(&r, 7),
                 (long long)(((uint64_t)i * 387420489u + 123456789u) % 1000000000u));
        json_t *p = json_pack("{s:s, s:s}", "name", name, "phone", phone);
        char *sealed = sy_pii_seal(k, o->tenant, no, p);
        json_decref(p);
        int64_t created = reg_day * DAY_MS + below(&r, DAY_MS);
        sy_stmt *st = sy_conn_prepare(w.c, sql_c);
        if (!st) {
            rc = SY_ERR;
        } else {
            sy_stmt_bind_text(st, 1, o->tenant);
            sy_stmt_bind_text(st, 2, no);
            sy_stmt_bind_i64(st, 3, i);
            sy_stmt_bind_text(st, 4, attrs);
            sy_stmt_bind_text(st, 5, sealed);
            sy_stmt_bind_i64(st, 6, created);
            rc = row_done(&w, sy_stmt_exec(st));
        }
        free(attrs);
        free(sealed);
        /* identities: the phone (hashed), the app for most, WeChat for many */
        struct {
            const char *type;
            double p;
        } ids[] = {{"phone", 1.0}, {"app_user_id", 0.72}, {"wechat_openid", 0.55}};
        for (size_t j = 0; j < SY_ARRAY_LEN(ids) && rc == SY_OK; j++) {
            if (uniform(&r) >= ids[j].p)
                continue;
            char key[80];
            if (!strcmp(ids[j].type, "phone"))
                sy_phone_key(k, o->tenant, phone, key);
            else
                snprintf(key, sizeof key, "%s-%08lld", j == 1 ? "u" : "o", (long long)(i + 1));
            if ((rc = begin_if_needed(&w)) != SY_OK)
                break;
            st = sy_conn_prepare(w.c, sql_i);
            if (!st) {
                rc = SY_ERR;
                break;
            }
            sy_stmt_bind_text(st, 1, o->tenant);
            sy_stmt_bind_text(st, 2, ids[j].type);
            sy_stmt_bind_text(st, 3, key);
            sy_stmt_bind_text(st, 4, no);
            sy_stmt_bind_i64(st, 5, created);
            rc = row_done(&w, sy_stmt_exec(st));
            out->identities++;
        }
        /* how often this customer opens the app: most rarely, a few daily */
        activity[i] = fmin(0.9, exp(log(0.08) + normal(&r) * 1.1));
        out->customers++;
        if (o->progress && (i + 1) % 50000 == 0)
            fprintf(stderr, "\rdemo: %lld customers", (long long)(i + 1));
    }

    int64_t seq = 0;
    for (int64_t day = first_day; day <= now_day && rc == SY_OK; day++) {
        for (int64_t i = 0; i < o->customers && rc == SY_OK; i++) {
            if (uniform(&r) >= activity[i])
                continue;
            demo_event ev[8];
            int n = 0;
            ev[n++] = (demo_event){"login", -1};
            if (uniform(&r) < 0.45)
                ev[n++] = (demo_event){"sign_in", -1};
            if (uniform(&r) < 0.30) {
                int64_t dwell = (int64_t)(exp(log(35000.0) + normal(&r) * 0.8));
                ev[n++] = (demo_event){"view_wealth", dwell};
                if (uniform(&r) < 0.35) {
                    ev[n++] = (demo_event){"click_wealth", -1};
                    if (uniform(&r) < 0.20)
                        ev[n++] = (demo_event){"buy_fund", -1};
                }
            }
            if (uniform(&r) < 0.10)
                ev[n++] = (demo_event){"pay_bill", -1};
            char no[24];
            snprintf(no, sizeof no, "C%08lld", (long long)(i + 1));
            int64_t t = day * DAY_MS + below(&r, DAY_MS - 600000);
            for (int e = 0; e < n && rc == SY_OK; e++) {
                if ((rc = begin_if_needed(&w)) != SY_OK)
                    break;
                char id[32];
                snprintf(id, sizeof id, "demo-%lld", (long long)++seq);
                t += 1000 + below(&r, 60000);
                if (t > o->now_ms)
                    t = o->now_ms;
                sy_stmt *st = sy_conn_prepare(w.c, sql_e);
                if (!st) {
                    rc = SY_ERR;
                    break;
                }
                sy_stmt_bind_text(st, 1, o->tenant);
                sy_stmt_bind_text(st, 2, id);
                sy_stmt_bind_text(st, 3, no);
                sy_stmt_bind_text(st, 4, ev[e].name);
                sy_stmt_bind_i64(st, 5, t);
                if (ev[e].dwell >= 0)
                    sy_stmt_bind_i64(st, 6, ev[e].dwell);
                else
                    sy_stmt_bind_null(st, 6);
                sy_stmt_bind_null(st, 7);
                sy_stmt_bind_i64(st, 8, t);
                rc = row_done(&w, sy_stmt_exec(st));
                out->events++;
            }
        }
        if (o->progress) {
            double secs = (double)(sy_mono_ns() - t0) / 1e9;
            fprintf(stderr, "\rdemo: %lld customers, day %lld/%lld, %lld events (%.0f rows/s)   ",
                    (long long)out->customers, (long long)(day - first_day + 1), (long long)o->days,
                    (long long)out->events, (double)w.rows / (secs > 0 ? secs : 1));
        }
    }
    if (o->progress)
        fprintf(stderr, "\n");
    free(activity);
    if (rc == SY_OK && w.rows % BATCH != 0)
        rc = sy_conn_commit(w.c);
    if (rc != SY_OK) {
        snprintf(err, errlen, "%s", sy_conn_errmsg(w.c));
        sy_conn_rollback(w.c);
    }
    return rc;
}

/* api_reports.c — GET /v1/reports/activity and /v1/reports/retention
 * (report.h computes them; docs/reports.md defines every figure). */
#include "api.h"
#include "app.h"
#include "customer.h"
#include "ledger.h"
#include "report.h"
#include "tenant.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

#define MAX_EVENT_NAMES 16
#define MAX_PERIODS 90

/* The parameters every report shares. */
typedef struct report_args {
    int64_t from, to, today; /* business days */
    const char *segment;
    const char *names[MAX_EVENT_NAMES];
    size_t nnames;
    char names_buf[MAX_EVENT_NAMES * 65];
    bool csv;
    sy_index *ix;
    roaring_bitmap_t *among; /* the segment's members, or NULL */
    sy_tenant_info tenant;
} report_args;

static void report_args_free(report_args *a)
{
    if (a->among)
        roaring_bitmap_free(a->among);
}

/* A comma-separated list of event names into a->names. */
static bool parse_names(sy_req *r, const char *param, const char *s, report_args *a)
{
    if (strlen(s) >= sizeof a->names_buf) {
        sy_reply_problem(r, 400, "validation", param, "'%s' is too long", param);
        return false;
    }
    strcpy(a->names_buf, s);
    for (char *p = a->names_buf, *end; p; p = end) {
        end = strchr(p, ',');
        if (end)
            *end++ = '\0';
        if (!sy_ident_valid(p, 64)) {
            sy_reply_problem(r, 400, "validation", param,
                             "'%s' must be event names matching [a-z][a-z0-9_]* (at most 64),"
                             " separated by commas",
                             param);
            return false;
        }
        if (a->nnames == MAX_EVENT_NAMES) {
            sy_reply_problem(r, 400, "validation", param, "'%s' names at most %d events", param,
                             MAX_EVENT_NAMES);
            return false;
        }
        a->names[a->nnames++] = p;
    }
    return true;
}

/* Reads from, to, segment, format (and, with events_param, that list of
 * event names); resolves the index and the segment.  On a bad parameter it
 * records the 400 and returns false. */
static bool report_args_read(sy_req *r, report_args *a, const char *events_param)
{
    memset(a, 0, sizeof *a);
    sy_app *app = sy_req_app(r);
    const char *tenant = sy_req_principal(r)->tenant;
    const char *from_s = sy_req_query(r, "from"), *to_s = sy_req_query(r, "to"),
               *format = sy_req_query(r, "format");
    a->segment = sy_req_query(r, "segment");
    if (format && strcmp(format, "json") != 0 && strcmp(format, "csv") != 0) {
        sy_reply_problem(r, 400, "validation", "format", "'format' must be json or csv");
        return false;
    }
    a->csv = format && !strcmp(format, "csv");
    if (from_s && !sy_parse_date(from_s, &a->from)) {
        sy_reply_problem(r, 400, "validation", "from",
                         "'from' must be a day, YYYY-MM-DD (the tenant's business days)");
        return false;
    }
    if (to_s && !sy_parse_date(to_s, &a->to)) {
        sy_reply_problem(r, 400, "validation", "to",
                         "'to' must be a day, YYYY-MM-DD (the last day, included)");
        return false;
    }
    const char *names = events_param ? sy_req_query(r, events_param) : NULL;
    if (names && !parse_names(r, events_param, names, a))
        return false;
    if (sy_tenants_get(app->tenants, tenant, &a->tenant) != SY_OK ||
        !(a->ix = sy_indexes_get(app->indexes, tenant))) {
        sy_reply_problem(r, 500, "internal", NULL, "the tenant's index is not available");
        return false;
    }
    sy_index_rdlock(a->ix);
    a->today = sy_index_day(a->ix, sy_now_ms());
    sy_index_unlock(a->ix);
    if (!to_s)
        a->to = a->today;
    if (!from_s)
        a->from = a->to - 29;
    if (a->to < a->from) {
        sy_reply_problem(r, 400, "validation", "to", "'to' must be on or after 'from'");
        return false;
    }
    if (a->to - a->from >= SY_REPORT_MAX_DAYS) {
        sy_reply_problem(r, 400, "validation", "to", "a report covers at most %d days",
                         SY_REPORT_MAX_DAYS);
        return false;
    }
    if (a->segment && !(a->among = sy_api_saved_segment_members(r, a->segment))) {
        sy_reply_problem(r, 400, "validation", "segment", "no saved segment '%s'", a->segment);
        return false;
    }
    return true;
}

static json_t *day_json(int64_t day)
{
    char s[11];
    sy_format_date(day, s);
    return json_string(s);
}

static json_t *names_json(const report_args *a)
{
    if (!a->nnames)
        return json_null();
    json_t *l = json_array();
    for (size_t i = 0; i < a->nnames; i++)
        json_array_append_new(l, json_string(a->names[i]));
    return l;
}

static json_t *common_json(const report_args *a, double took_ms)
{
    return json_pack("{s:o, s:o, s:s, s:o, s:f}", "from", day_json(a->from), "to", day_json(a->to),
                     "timezone", a->tenant.timezone, "segment",
                     a->segment ? json_string(a->segment) : json_null(), "took_ms", took_ms);
}

static void reply_csv(sy_req *r, sy_buf *b)
{
    size_t len = b->len;
    sy_reply_raw(r, 200, "text/csv; charset=utf-8", sy_buf_steal(b), len);
}

void sy_api_reports_activity(sy_req *r)
{
    report_args a;
    if (!report_args_read(r, &a, "events")) {
        report_args_free(&a);
        return;
    }
    uint64_t t0 = sy_mono_ns();
    sy_report_days d;
    sy_index_rdlock(a.ix);
    sy_report_days_collect(a.ix, a.names, a.nnames, a.from - 29, a.to, a.among, &d);
    sy_index_unlock(a.ix);
    size_t n = (size_t)(a.to - a.from + 1);
    sy_activity_row *rows = sy_xcalloc(n, sizeof *rows);
    sy_report_activity(&d, a.from, a.to, rows);
    sy_report_days_free(&d);
    double ms = (double)(sy_mono_ns() - t0) / 1e6;
    if (a.csv) {
        sy_buf b = {0};
        sy_buf_puts(&b, "day,dau,wau,mau,new,returning,stickiness\r\n");
        for (size_t i = 0; i < n; i++) {
            char day[11];
            sy_format_date(rows[i].day, day);
            sy_buf_printf(&b, "%s,%llu,%llu,%llu,%llu,%llu,%.6f\r\n", day,
                          (unsigned long long)rows[i].dau, (unsigned long long)rows[i].wau,
                          (unsigned long long)rows[i].mau, (unsigned long long)rows[i].new_,
                          (unsigned long long)rows[i].returning, rows[i].stickiness);
        }
        reply_csv(r, &b);
    } else {
        json_t *days = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(
                days,
                json_pack("{s:o, s:I, s:I, s:I, s:I, s:I, s:f}", "day", day_json(rows[i].day),
                          "dau", (json_int_t)rows[i].dau, "wau", (json_int_t)rows[i].wau, "mau",
                          (json_int_t)rows[i].mau, "new", (json_int_t)rows[i].new_, "returning",
                          (json_int_t)rows[i].returning, "stickiness", rows[i].stickiness));
        json_t *o = common_json(&a, ms);
        json_object_set_new(o, "events", names_json(&a));
        json_object_set_new(o, "days", days);
        sy_reply_json(r, 200, o);
    }
    free(rows);
    report_args_free(&a);
}

static double rate(uint64_t part, uint64_t whole)
{
    return whole ? (double)part / (double)whole : 0.0;
}

void sy_api_reports_retention(sy_req *r)
{
    report_args a;
    if (!report_args_read(r, &a, NULL)) {
        report_args_free(&a);
        return;
    }
    const char *cohort_event = sy_req_query(r, "cohort_event"),
               *return_event = sy_req_query(r, "return_event"),
               *periods_s = sy_req_query(r, "periods");
    int64_t periods = 30;
    if (periods_s && !sy_parse_i64(periods_s, 1, MAX_PERIODS, &periods)) {
        sy_reply_problem(r, 400, "validation", "periods", "'periods' must be 1 to %d (days)",
                         MAX_PERIODS);
        report_args_free(&a);
        return;
    }
    if (cohort_event && !sy_ident_valid(cohort_event, 64)) {
        sy_reply_problem(r, 400, "validation", "cohort_event",
                         "'cohort_event' must be an event name, [a-z][a-z0-9_]*");
        report_args_free(&a);
        return;
    }
    if (return_event && !sy_ident_valid(return_event, 64)) {
        sy_reply_problem(r, 400, "validation", "return_event",
                         "'return_event' must be an event name, [a-z][a-z0-9_]*");
        report_args_free(&a);
        return;
    }
    /* Returns are known up to today, and counted up to the last period. */
    int64_t until = a.to + periods - 1 < a.today ? a.to + periods - 1 : a.today;
    if (until < a.to)
        until = a.to;
    uint64_t t0 = sy_mono_ns();
    sy_report_days cd, rd;
    /* The same events make cohorts and returns (the usual case): one
     * collection over [from, until] serves both. */
    bool same = (!cohort_event && !return_event) ||
                (cohort_event && return_event && !strcmp(cohort_event, return_event));
    sy_index_rdlock(a.ix);
    if (!same)
        sy_report_days_collect(a.ix, cohort_event ? &cohort_event : NULL, cohort_event ? 1 : 0,
                               a.from, a.to, a.among, &cd);
    sy_report_days_collect(a.ix, return_event ? &return_event : NULL, return_event ? 1 : 0, a.from,
                           until, a.among, &rd);
    sy_index_unlock(a.ix);
    sy_retention ret;
    sy_report_retention(same ? &rd : &cd, &rd, a.from, a.to, (size_t)periods, &ret);
    if (!same)
        sy_report_days_free(&cd);
    sy_report_days_free(&rd);
    double ms = (double)(sy_mono_ns() - t0) / 1e6;
    size_t np = ret.nperiods;
    if (a.csv) {
        sy_buf b = {0};
        sy_buf_puts(&b,
                    "cohort,size,period,retained,retained_rate,on_or_after,on_or_after_rate\r\n");
        for (size_t c = 0; c < ret.ncohorts; c++) {
            char day[11];
            sy_format_date(ret.day[c], day);
            for (size_t k = 0; k < ret.known[c]; k++) {
                uint64_t x = ret.exact[c * np + k], y = ret.on_or_after[c * np + k];
                sy_buf_printf(&b, "%s,%llu,%zu,%llu,%.6f,%llu,%.6f\r\n", day,
                              (unsigned long long)ret.size[c], k, (unsigned long long)x,
                              rate(x, ret.size[c]), (unsigned long long)y, rate(y, ret.size[c]));
            }
        }
        reply_csv(r, &b);
    } else {
        json_t *cohorts = json_array();
        for (size_t c = 0; c < ret.ncohorts; c++) {
            json_t *exact = json_array(), *later = json_array(), *re = json_array(),
                   *rl = json_array();
            for (size_t k = 0; k < ret.known[c]; k++) {
                uint64_t x = ret.exact[c * np + k], y = ret.on_or_after[c * np + k];
                json_array_append_new(exact, json_integer((json_int_t)x));
                json_array_append_new(later, json_integer((json_int_t)y));
                json_array_append_new(re, json_real(rate(x, ret.size[c])));
                json_array_append_new(rl, json_real(rate(y, ret.size[c])));
            }
            json_array_append_new(cohorts,
                                  json_pack("{s:o, s:I, s:o, s:o, s:o, s:o}", "day",
                                            day_json(ret.day[c]), "size", (json_int_t)ret.size[c],
                                            "retained", exact, "retained_rate", re, "on_or_after",
                                            later, "on_or_after_rate", rl));
        }
        json_t *o = common_json(&a, ms);
        json_object_set_new(o, "periods", json_integer(periods));
        json_object_set_new(o, "cohort_event",
                            cohort_event ? json_string(cohort_event) : json_null());
        json_object_set_new(o, "return_event",
                            return_event ? json_string(return_event) : json_null());
        json_object_set_new(o, "returns_until", day_json(until));
        json_object_set_new(o, "cohorts", cohorts);
        sy_reply_json(r, 200, o);
    }
    sy_retention_free(&ret);
    report_args_free(&a);
}

/* ---- KPIs ---- */

/* Customers reachable in the private domain, by channel: the dense ids of
 * customers with an app, WeChat or WeCom identity, among pop. */
typedef struct coverage {
    uint64_t reachable, app, wechat, wecom;
} coverage;

static int read_coverage(sy_req *r, report_args *a, const roaring_bitmap_t *pop, coverage *out)
{
    static const char sql[] =
        "SELECT customer_no, type FROM identities WHERE tenant_id = $1"
        " AND type IN ('app_user_id', 'wechat_openid', 'wechat_unionid', 'wecom_external_userid')";
    memset(out, 0, sizeof *out);
    sy_app *app = sy_req_app(r);
    sy_conn *c = sy_store_acquire(app->store);
    sy_stmt *st = sy_conn_prepare(c, sql);
    int rc = st ? SY_OK : SY_ERR;
    roaring_bitmap_t *any = roaring_bitmap_create(), *ch[3];
    for (int i = 0; i < 3; i++)
        ch[i] = roaring_bitmap_create();
    if (st) {
        sy_stmt_bind_text(st, 1, sy_req_principal(r)->tenant);
        sy_index_rdlock(a->ix);
        while ((rc = sy_stmt_step(st)) == SY_ROW) {
            uint32_t dense;
            if (!sy_index_dense(a->ix, sy_stmt_text(st, 0), &dense))
                continue;
            const char *type = sy_stmt_text(st, 1);
            int k = !strcmp(type, "app_user_id") ? 0 : !strncmp(type, "wechat_", 7) ? 1 : 2;
            roaring_bitmap_add(any, dense);
            roaring_bitmap_add(ch[k], dense);
        }
        sy_index_unlock(a->ix);
        sy_stmt_reset(st);
        rc = rc == SY_DONE ? SY_OK : rc;
    }
    if (rc == SY_OK) {
        out->reachable = roaring_bitmap_and_cardinality(any, pop);
        out->app = roaring_bitmap_and_cardinality(ch[0], pop);
        out->wechat = roaring_bitmap_and_cardinality(ch[1], pop);
        out->wecom = roaring_bitmap_and_cardinality(ch[2], pop);
    } else {
        sy_api_store_error(r, c);
    }
    sy_store_release(app->store, c);
    roaring_bitmap_free(any);
    for (int i = 0; i < 3; i++)
        roaring_bitmap_free(ch[i]);
    return rc;
}

/* The AUM of active and inactive customers at the start and at the end of
 * the period, from attr_history (each customer's last value before each
 * moment; none counts 0).  i 0: active, 1: inactive. */
typedef struct aum_move {
    int64_t start[2], end[2];
} aum_move;

static int read_aum(sy_req *r, report_args *a, const roaring_bitmap_t *pop,
                    const roaring_bitmap_t *active, aum_move *out)
{
    static const char sql[] = "SELECT customer_no, value, at FROM attr_history"
                              " WHERE tenant_id = $1 AND attr = 'aum' AND at < $2"
                              " ORDER BY customer_no, at";
    memset(out, 0, sizeof *out);
    sy_app *app = sy_req_app(r);
    int64_t start = sy_local_midnight(a->tenant.timezone, a->from),
            end = sy_local_midnight(a->tenant.timezone, a->to + 1);
    sy_conn *c = sy_store_acquire(app->store);
    sy_stmt *st = sy_conn_prepare(c, sql);
    int rc = st ? SY_OK : SY_ERR;
    if (st) {
        sy_stmt_bind_text(st, 1, sy_req_principal(r)->tenant);
        sy_stmt_bind_i64(st, 2, end);
        char cur[SY_CUSTOMER_NO_MAX + 1] = "";
        int64_t at_start = 0, at_end = 0;
        sy_index_rdlock(a->ix);
        for (;;) {
            rc = sy_stmt_step(st);
            const char *no = rc == SY_ROW ? sy_stmt_text(st, 0) : "";
            if (rc != SY_ROW || strcmp(no, cur) != 0) {
                /* the previous customer is complete */
                uint32_t dense;
                if (cur[0] && sy_index_dense(a->ix, cur, &dense) &&
                    roaring_bitmap_contains(pop, dense)) {
                    int g = roaring_bitmap_contains(active, dense) ? 0 : 1;
                    out->start[g] += at_start;
                    out->end[g] += at_end;
                }
                if (rc != SY_ROW)
                    break;
                snprintf(cur, sizeof cur, "%s", no);
                at_start = at_end = 0;
            }
            int64_t v = sy_stmt_is_null(st, 1) ? 0 : strtoll(sy_stmt_text(st, 1), NULL, 10);
            if (sy_stmt_i64(st, 2) < start)
                at_start = v;
            at_end = v;
        }
        sy_index_unlock(a->ix);
        sy_stmt_reset(st);
        rc = rc == SY_DONE ? SY_OK : rc;
    }
    if (rc != SY_OK)
        sy_api_store_error(r, c);
    sy_store_release(app->store, c);
    return rc;
}

void sy_api_reports_kpis(sy_req *r)
{
    report_args a;
    if (!report_args_read(r, &a, "purchase_events")) {
        report_args_free(&a);
        return;
    }
    uint64_t t0 = sy_mono_ns();
    sy_kpis k;
    roaring_bitmap_t *pop, *active;
    sy_index_rdlock(a.ix);
    sy_report_kpis(a.ix, a.names, a.nnames, a.from, a.to, a.among, &k, &pop, &active);
    sy_index_unlock(a.ix);
    coverage cov;
    aum_move aum;
    int rc = read_coverage(r, &a, pop, &cov);
    if (rc == SY_OK)
        rc = read_aum(r, &a, pop, active, &aum);
    roaring_bitmap_free(pop);
    roaring_bitmap_free(active);
    if (rc != SY_OK) {
        report_args_free(&a);
        return;
    }
    double ms = (double)(sy_mono_ns() - t0) / 1e6;
    int64_t len = a.to - a.from + 1;
    struct {
        const char *name;
        int64_t i; /* integers stay exact */
        double v;
        bool real;
    } m[] = {
        {"customers", (int64_t)(k.customers), 0, false},
        {"reachable", (int64_t)(cov.reachable), 0, false},
        {"reachable_app", (int64_t)(cov.app), 0, false},
        {"reachable_wechat", (int64_t)(cov.wechat), 0, false},
        {"reachable_wecom", (int64_t)(cov.wecom), 0, false},
        {"coverage_rate", 0, rate(cov.reachable, k.customers), true},
        {"active", (int64_t)(k.active), 0, false},
        {"active_rate", 0, rate(k.active, k.customers), true},
        {"active_previous", (int64_t)(k.active_prev), 0, false},
        {"churned", (int64_t)(k.churned), 0, false},
        {"churn_rate", 0, rate(k.churned, k.active_prev), true},
        {"purchasers", (int64_t)(k.purchasers), 0, false},
        {"repurchasers", (int64_t)(k.repurchasers), 0, false},
        {"repurchase_rate", 0, rate(k.repurchasers, k.purchasers), true},
        {"aum_active_start", (int64_t)(aum.start[0]), 0, false},
        {"aum_active_end", (int64_t)(aum.end[0]), 0, false},
        {"aum_active_change", (int64_t)((aum.end[0] - aum.start[0])), 0, false},
        {"aum_inactive_start", (int64_t)(aum.start[1]), 0, false},
        {"aum_inactive_end", (int64_t)(aum.end[1]), 0, false},
        {"aum_inactive_change", (int64_t)((aum.end[1] - aum.start[1])), 0, false},
    };
    if (a.csv) {
        sy_buf b = {0};
        sy_buf_puts(&b, "metric,value\r\n");
        for (size_t i = 0; i < sizeof m / sizeof *m; i++)
            if (m[i].real)
                sy_buf_printf(&b, "%s,%.6f\r\n", m[i].name, m[i].v);
            else
                sy_buf_printf(&b, "%s,%lld\r\n", m[i].name, (long long)m[i].i);
        reply_csv(r, &b);
    } else {
        json_t *o = common_json(&a, ms);
        json_object_set_new(
            o, "previous",
            json_pack("{s:o, s:o}", "from", day_json(a.from - len), "to", day_json(a.from - 1)));
        json_object_set_new(o, "purchase_events", names_json(&a));
        for (size_t i = 0; i < sizeof m / sizeof *m; i++)
            json_object_set_new(o, m[i].name,
                                m[i].real ? json_real(m[i].v) : json_integer((json_int_t)m[i].i));
        sy_reply_json(r, 200, o);
    }
    report_args_free(&a);
}

/* api_reports.c — GET /v1/reports/activity, /retention, /funnel, /dwell and
 * /kpis, and GET|PUT /v1/reports/settings (the timed event names).  report.h
 * computes the figures; docs/reports.md defines every one. */
#include "api.h"
#include "app.h"
#include "customer.h"
#include "ledger.h"
#include "report.h"
#include "tenant.h"
#include "util.h"
#include "validate.h"

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
    json_t *warnings; /* NULL, or the events named that were never recorded */
} report_args;

static void report_args_free(report_args *a)
{
    if (a->among)
        roaring_bitmap_free(a->among);
    json_decref(a->warnings);
}

/* Under the index's read lock: a warning for each of the n events named
 * that the tenant has never recorded — a misspelt name would otherwise
 * only count no one. */
static void note_unseen(report_args *a, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!names[i] || sy_index_event_known(a->ix, names[i]))
            continue;
        if (!a->warnings)
            a->warnings = json_array();
        char msg[160];
        snprintf(msg, sizeof msg,
                 "no '%.64s' event has been recorded: it counts no one; check the name", names[i]);
        json_array_append_new(a->warnings, json_string(msg));
    }
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
    json_t *o = json_pack("{s:o, s:o, s:s, s:o, s:f}", "from", day_json(a->from), "to",
                          day_json(a->to), "timezone", a->tenant.timezone, "segment",
                          a->segment ? json_string(a->segment) : json_null(), "took_ms", took_ms);
    if (a->warnings)
        json_object_set(o, "warnings", a->warnings);
    return o;
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
    note_unseen(&a, a.names, a.nnames);
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
    const char *named[2] = {cohort_event, return_event};
    note_unseen(&a, named, 2);
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
    note_unseen(&a, a.names, a.nnames);
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

/* ---- funnels and dwell ---- */

/* A duration: a positive integer with a unit s, m, h or d; in ms. */
static bool parse_duration(const char *s, int64_t max_ms, int64_t *ms)
{
    size_t n = strlen(s);
    if (n < 2 || n > 12)
        return false;
    int64_t unit = s[n - 1] == 's'   ? 1000
                   : s[n - 1] == 'm' ? 60000
                   : s[n - 1] == 'h' ? 3600000
                   : s[n - 1] == 'd' ? SY_DAY_MS
                                     : 0;
    char num[16];
    memcpy(num, s, n - 1);
    num[n - 1] = '\0';
    int64_t v;
    if (!unit || !sy_parse_i64(num, 1, max_ms / unit, &v))
        return false;
    *ms = v * unit;
    return true;
}

/* Every name of a->names must be timed; otherwise a 400 naming param. */
static bool names_timed(sy_req *r, report_args *a, const char *param)
{
    sy_index_rdlock(a->ix);
    const char *untimed = NULL;
    for (size_t i = 0; i < a->nnames && !untimed; i++)
        if (!sy_index_timed(a->ix, a->names[i]))
            untimed = a->names[i];
    sy_index_unlock(a->ix);
    if (untimed)
        sy_reply_problem(r, 400, "validation", param,
                         "the index keeps no event times of '%s': add it to the tenant's"
                         " timed_events (PUT /v1/reports/settings)",
                         untimed);
    return !untimed;
}

/* A figure in ms, null when there is none (-1). */
static json_t *ms_or_null(int64_t ms)
{
    return ms < 0 ? json_null() : json_integer(ms);
}

static json_t *funnel_steps_json(const report_args *a, const sy_funnel_group *g)
{
    json_t *l = json_array();
    for (size_t k = 0; k < a->nnames; k++)
        json_array_append_new(
            l, json_pack("{s:s, s:I, s:f, s:f, s:o}", "name", a->names[k], "customers",
                         (json_int_t)g->customers[k], "conversion_from_previous",
                         k ? rate(g->customers[k], g->customers[k - 1]) : 1.0,
                         "conversion_from_first", rate(g->customers[k], g->customers[0]),
                         "median_ms_from_previous", ms_or_null(g->median_ms[k])));
    return l;
}

static void funnel_csv_rows(sy_buf *b, const report_args *a, const char *group,
                            const sy_funnel_group *g)
{
    for (size_t k = 0; k < a->nnames; k++) {
        sy_buf_printf(b, "%s,%zu,%s,%llu,%.6f,%.6f,", group, k + 1, a->names[k],
                      (unsigned long long)g->customers[k],
                      k ? rate(g->customers[k], g->customers[k - 1]) : 1.0,
                      rate(g->customers[k], g->customers[0]));
        if (g->median_ms[k] >= 0)
            sy_buf_printf(b, "%lld", (long long)g->median_ms[k]);
        sy_buf_puts(b, "\r\n");
    }
}

/* A CSV field: quoted, with quotes doubled, when it needs to be. */
static void csv_field(sy_buf *b, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        sy_buf_puts(b, s);
        return;
    }
    sy_buf_puts(b, "\"");
    for (; *s; s++)
        sy_buf_append(b, *s == '"' ? "\"\"" : s, *s == '"' ? 2 : 1);
    sy_buf_puts(b, "\"");
}

void sy_api_reports_funnel(sy_req *r)
{
    report_args a;
    if (!report_args_read(r, &a, "steps")) {
        report_args_free(&a);
        return;
    }
    const char *window_s = sy_req_query(r, "window"), *breakdown = sy_req_query(r, "breakdown");
    int64_t window_ms = 7 * SY_DAY_MS;
    if (a.nnames < 2 || a.nnames > SY_FUNNEL_MAX_STEPS) {
        sy_reply_problem(r, 400, "validation", "steps",
                         "'steps' must name 2 to %d events, separated by commas",
                         SY_FUNNEL_MAX_STEPS);
        goto out;
    }
    if (window_s && !parse_duration(window_s, 90 * SY_DAY_MS, &window_ms)) {
        sy_reply_problem(r, 400, "validation", "window",
                         "'window' must be a duration such as 30m, 12h or 7d, at most 90d");
        goto out;
    }
    if (breakdown) {
        sy_attr_set *schema = sy_schemas_get(sy_req_app(r)->schemas, sy_req_principal(r)->tenant);
        const sy_attr_def *d = schema ? sy_attr_find(schema, breakdown) : NULL;
        bool ok =
            d && (d->type == SY_ATTR_ENUM || d->type == SY_ATTR_BOOL || d->type == SY_ATTR_STRING);
        sy_attr_set_release(schema);
        if (!ok) {
            sy_reply_problem(r, 400, "validation", "breakdown",
                             "'breakdown' must name an enum, bool or string attribute");
            goto out;
        }
    }
    if (!names_timed(r, &a, "steps"))
        goto out;
    uint64_t t0 = sy_mono_ns();
    sy_funnel_query q = {.steps = a.names,
                         .nsteps = a.nnames,
                         .from = a.from,
                         .to = a.to,
                         .window_ms = window_ms,
                         .among = a.among,
                         .breakdown = breakdown};
    sy_funnel f;
    sy_index_rdlock(a.ix);
    bool ok = sy_report_funnel(a.ix, &q, &f);
    note_unseen(&a, a.names, a.nnames);
    sy_index_unlock(a.ix);
    if (!ok) {
        sy_reply_problem(r, 400, "validation", "breakdown",
                         "'%s' has more than %d values: too many to break a funnel down by",
                         breakdown, SY_FUNNEL_MAX_GROUPS);
        goto out;
    }
    double ms = (double)(sy_mono_ns() - t0) / 1e6;
    if (a.csv) {
        sy_buf b = {0};
        sy_buf_puts(&b, "group,step,event,customers,conversion_from_previous,"
                        "conversion_from_first,median_ms_from_previous\r\n");
        funnel_csv_rows(&b, &a, "all", &f.all);
        for (size_t g = 0; g < f.ngroups; g++) {
            /* the group as breakdown=value, or breakdown is null */
            sy_buf v = {0}, field = {0};
            sy_buf_printf(&v, "%s%s%s", breakdown, f.groups[g].value ? "=" : " is null",
                          f.groups[g].value ? f.groups[g].value : "");
            csv_field(&field, v.data);
            funnel_csv_rows(&b, &a, field.data, &f.groups[g]);
            free(v.data);
            free(field.data);
        }
        reply_csv(r, &b);
    } else {
        json_t *o = common_json(&a, ms);
        json_object_set_new(o, "window_ms", json_integer(window_ms));
        json_object_set_new(o, "steps", funnel_steps_json(&a, &f.all));
        if (breakdown) {
            json_t *groups = json_array();
            for (size_t g = 0; g < f.ngroups; g++)
                json_array_append_new(
                    groups,
                    json_pack("{s:o, s:o}", "value",
                              f.groups[g].value ? json_string(f.groups[g].value) : json_null(),
                              "steps", funnel_steps_json(&a, &f.groups[g])));
            json_object_set_new(o, "breakdown",
                                json_pack("{s:s, s:o}", "attribute", breakdown, "groups", groups));
        } else {
            json_object_set_new(o, "breakdown", json_null());
        }
        sy_reply_json(r, 200, o);
    }
    sy_funnel_free(&f);
out:
    report_args_free(&a);
}

static json_t *dwell_json(const sy_dwell_row *d, bool with_day)
{
    json_t *o = json_object();
    if (with_day)
        json_object_set_new(o, "day", day_json(d->day));
    json_t *figures = json_pack("{s:I, s:o, s:o, s:o, s:o, s:o}", "events", (json_int_t)d->events,
                                "p50_ms", ms_or_null(d->p50), "p90_ms", ms_or_null(d->p90),
                                "p99_ms", ms_or_null(d->p99), "max_ms", ms_or_null(d->max),
                                "mean_ms", d->events ? json_real(d->mean) : json_null());
    json_object_update(o, figures);
    json_decref(figures);
    return o;
}

static void dwell_csv_row(sy_buf *b, const char *day, const sy_dwell_row *d)
{
    sy_buf_printf(b, "%s,%llu", day, (unsigned long long)d->events);
    if (d->events)
        sy_buf_printf(b, ",%lld,%lld,%lld,%lld,%.3f\r\n", (long long)d->p50, (long long)d->p90,
                      (long long)d->p99, (long long)d->max, d->mean);
    else
        sy_buf_puts(b, ",,,,,\r\n");
}

void sy_api_reports_dwell(sy_req *r)
{
    report_args a;
    if (!report_args_read(r, &a, "event")) {
        report_args_free(&a);
        return;
    }
    if (a.nnames != 1) {
        sy_reply_problem(r, 400, "validation", "event",
                         "'event' must name one event (the dwell times of its events)");
        report_args_free(&a);
        return;
    }
    if (!names_timed(r, &a, "event")) {
        report_args_free(&a);
        return;
    }
    uint64_t t0 = sy_mono_ns();
    size_t n = (size_t)(a.to - a.from + 1);
    sy_dwell_row *rows = sy_xcalloc(n, sizeof *rows), total;
    sy_index_rdlock(a.ix);
    sy_report_dwell(a.ix, a.names[0], a.from, a.to, a.among, rows, &total);
    note_unseen(&a, a.names, 1);
    sy_index_unlock(a.ix);
    double ms = (double)(sy_mono_ns() - t0) / 1e6;
    if (a.csv) {
        sy_buf b = {0};
        sy_buf_puts(&b, "day,events,p50_ms,p90_ms,p99_ms,max_ms,mean_ms\r\n");
        for (size_t i = 0; i < n; i++) {
            char day[11];
            sy_format_date(rows[i].day, day);
            dwell_csv_row(&b, day, &rows[i]);
        }
        dwell_csv_row(&b, "total", &total);
        reply_csv(r, &b);
    } else {
        json_t *days = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(days, dwell_json(&rows[i], true));
        json_t *o = common_json(&a, ms);
        json_object_set_new(o, "event", json_string(a.names[0]));
        json_object_set_new(o, "days", days);
        json_object_set_new(o, "total", dwell_json(&total, false));
        sy_reply_json(r, 200, o);
    }
    free(rows);
    report_args_free(&a);
}

/* ---- settings: the timed event names ---- */

static void add_event_state(const char *name, void *ud)
{
    json_t **pair = ud;
    json_array_append_new(pair[0], json_pack("{s:s, s:b}", "name", name, "timed",
                                             sy_index_timed((const sy_index *)pair[1], name)));
}

static int cmp_event_name(const void *x, const void *y)
{
    return strcmp(json_string_value(json_object_get(*(json_t *const *)x, "name")),
                  json_string_value(json_object_get(*(json_t *const *)y, "name")));
}

/* The reply of GET and PUT: the setting and what the index holds. */
static json_t *settings_json(sy_index *ix, json_t *spec)
{
    json_t *events = json_array();
    json_t *pair[2] = {events, (json_t *)ix};
    sy_index_mem m;
    sy_index_rdlock(ix);
    sy_index_event_names(ix, add_event_state, pair);
    sy_index_memory_parts(ix, &m);
    sy_index_unlock(ix);
    /* by name, for a stable answer */
    size_t n = json_array_size(events);
    json_t **v = sy_xmalloc((n ? n : 1) * sizeof *v);
    for (size_t i = 0; i < n; i++)
        v[i] = json_incref(json_array_get(events, i));
    qsort(v, n, sizeof *v, cmp_event_name);
    json_array_clear(events);
    for (size_t i = 0; i < n; i++)
        json_array_append_new(events, v[i]);
    free(v);
    return json_pack("{s:o, s:o, s:I}", "timed_events", spec, "events", events,
                     "times_memory_bytes", (json_int_t)m.times);
}

void sy_api_reports_settings_get(sy_req *r)
{
    sy_app *app = sy_req_app(r);
    const char *tenant = sy_req_principal(r)->tenant;
    sy_index *ix = sy_indexes_get(app->indexes, tenant);
    if (!ix) {
        sy_reply_problem(r, 500, "internal", NULL, "the tenant's index is not available");
        return;
    }
    sy_conn *c = sy_store_acquire(app->store);
    json_t *spec = NULL;
    int rc = sy_timed_spec_read(c, tenant, &spec);
    if (rc != SY_OK)
        sy_api_store_error(r, c);
    sy_store_release(app->store, c);
    if (rc != SY_OK)
        return;
    if (!spec) {
        sy_reply_problem(r, 404, "not-found", NULL, "the tenant no longer exists");
        return;
    }
    sy_reply_json(r, 200, settings_json(ix, spec));
}

typedef struct settings_put {
    json_t *spec;
    char *text;
    int64_t max_rowid;
} settings_put;

/* SQLite's rowids (scripts/pg-compat.sh skips names ending in _sqlite). */
static const char sql_events_max_rowid_sqlite[] = "SELECT max(rowid) FROM events";

static int apply_settings(sy_conn *c, sy_req *r, void *ctx)
{
    static const char sql[] = "UPDATE tenants SET timed_events = $2, updated_at = $3 WHERE id = $1";
    settings_put *w = ctx;
    const char *tenant = sy_req_principal(r)->tenant;
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, w->text);
    sy_stmt_bind_i64(st, 3, sy_now_ms());
    int rc = sy_stmt_exec(st);
    if (rc != SY_OK)
        return rc;
    /* The events up to here are read by the change after the commit; the
     * later ones reach the index through their own commits. */
    if (!(st = sy_conn_prepare(c, sql_events_max_rowid_sqlite)))
        return SY_ERR;
    rc = sy_stmt_step(st);
    w->max_rowid = rc == SY_ROW && !sy_stmt_is_null(st, 0) ? sy_stmt_i64(st, 0) : 0;
    sy_stmt_reset(st);
    if (rc != SY_ROW)
        return SY_ERR;
    sy_req_audit_target(r, tenant);
    return 0;
}

static void settings_committed(sy_req *r, void *ctx)
{
    settings_put *w = ctx;
    sy_app *app = sy_req_app(r);
    const char *tenant = sy_req_principal(r)->tenant;
    sy_index *ix = sy_indexes_get(app->indexes, tenant);
    if (!ix)
        return;
    uint64_t t0 = sy_mono_ns();
    sy_conn *c = sy_store_acquire(app->store);
    int rc = sy_index_retime(ix, c, tenant, w->spec, w->max_rowid);
    sy_store_release(app->store, c);
    if (rc != SY_OK)
        sy_error("index of tenant %s: the timed events could not be read; the index keeps its"
                 " previous ones until the next start",
                 tenant);
    else
        sy_info("index of tenant %s: timed events now %s (%.0f ms)", tenant, w->text,
                (double)(sy_mono_ns() - t0) / 1e6);
}

/* The reply, once the change is durable (and, but for a request with an
 * Idempotency-Key, once the index has it). */
static int settings_reply(sy_conn *c, sy_req *r, void *ctx)
{
    (void)c;
    settings_put *w = ctx;
    sy_index *ix = sy_indexes_get(sy_req_app(r)->indexes, sy_req_principal(r)->tenant);
    if (!ix)
        return SY_ERR;
    sy_reply_json(r, 200, settings_json(ix, json_incref(w->spec)));
    return SY_OK;
}

static void settings_put_free(void *p)
{
    settings_put *w = p;
    json_decref(w->spec);
    free(w->text);
}

void sy_api_reports_settings_put(sy_req *r)
{
    json_t *body = sy_req_json_object(r);
    static const char *const fields[] = {"timed_events", NULL};
    if (!body || !sy_v_only(r, body, fields))
        return;
    json_t *spec = json_object_get(body, "timed_events");
    if (!spec) {
        sy_reply_problem(r, 400, "validation", "/timed_events", "'timed_events' is required");
        return;
    }
    if (!sy_timed_spec_valid(spec)) {
        sy_reply_problem(r, 400, "validation", "/timed_events",
                         "'timed_events' must be [\"*\"] (every event) or an array of at most %d"
                         " distinct event names matching [a-z][a-z0-9_]*",
                         SY_TIMED_MAX);
        return;
    }
    settings_put *w = sy_req_alloc(r, sizeof *w);
    w->spec = json_incref(spec);
    w->text = json_dumps(spec, JSON_COMPACT);
    w->max_rowid = 0;
    sy_req_on_free(r, settings_put_free, w);
    sy_req_write(r, apply_settings, settings_committed, w);
    sy_req_write_reply(r, settings_reply);
}

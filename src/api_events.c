/* api_events.c — POST /v1/events and the customer timeline.
 *
 * A batch is a JSON array of events, or NDJSON (one event per line) when
 * the Content-Type is application/x-ndjson.  Up to 10,000 events.
 *
 * Mixed batches: a batch is accepted whole or refused whole.  Every event
 * is validated and its customer resolved first; if any event is invalid the
 * answer is 400 with one error per bad event (its index, the field, the
 * reason) and nothing is written.  Otherwise all events are committed in
 * one transaction before the 2xx.  An event whose event_id the tenant
 * already has is a duplicate: not stored again, counted, and its id listed
 * in the answer — never silently dropped. */
#include "api.h"
#include "app.h"
#include "customer.h"
#include "ingest.h"
#include "util.h"
#include "validate.h"

#include <stdlib.h>
#include <string.h>

typedef struct event_in {
    sy_event_in in; /* the event as checked (ingest.c) */
    size_t index;   /* position in the batch */
    bool stored;    /* inserted, not a duplicate */
    bool resolved;  /* in.customer_no known to be a live customer */
} event_in;

typedef struct event_batch {
    event_in *ev;
    size_t n;
    json_t *errors; /* per-event errors found while applying (unknown customers) */
    size_t accepted;
    json_t *duplicates;
    sy_task_plan *tasks;         /* running task campaigns to reward (NULL: none) */
    json_t *task_rewards;        /* what they rewarded, for the reply */
    json_t *task_refusals;       /* what they matched and refused, and why */
    sy_referral_plan *referrals; /* running referral campaigns (NULL: none) */
    json_t *referral_rewards;    /* the referrals the events qualified */
} event_batch;

static void batch_free(void *p)
{
    event_batch *b = p;
    for (size_t i = 0; i < b->n; i++)
        sy_event_in_clear(&b->ev[i].in);
    free(b->ev);
    json_decref(b->errors);
    json_decref(b->duplicates);
    json_decref(b->task_rewards);
    json_decref(b->task_refusals);
    sy_api_task_plan_free(b->tasks);
    json_decref(b->referral_rewards);
    sy_api_referral_plan_free(b->referrals);
}

static int resolve_customer(sy_conn *c, const char *tenant, sy_event_in *e, bool *found)
{
    static const char sql_no[] = "SELECT COALESCE(merged_into, customer_no) FROM customers"
                                 " WHERE tenant_id = $1 AND customer_no = $2";
    static const char sql_id[] = "SELECT customer_no FROM identities"
                                 " WHERE tenant_id = $1 AND type = $2 AND value_key = $3";
    sy_stmt *st = sy_conn_prepare(c, e->customer_no ? sql_no : sql_id);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    if (e->customer_no) {
        sy_stmt_bind_text(st, 2, e->customer_no);
    } else {
        sy_stmt_bind_text(st, 2, e->id_type);
        sy_stmt_bind_text(st, 3, e->id_key);
    }
    int rc = sy_stmt_step(st);
    *found = rc == SY_ROW;
    /* The customer as it is now: a merged one's events go to the survivor. */
    if (rc == SY_ROW) {
        free(e->customer_no);
        e->customer_no = sy_xstrdup(sy_stmt_text(st, 0));
    }
    sy_stmt_reset(st);
    return rc == SY_ROW || rc == SY_DONE ? SY_OK : rc;
}

static int apply_events(sy_conn *c, sy_req *r, void *ctx)
{
    static const char sql[] =
        "INSERT INTO events (tenant_id, event_id, customer_no, name, ts, dwell_ms, props,"
        " received_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        " ON CONFLICT (tenant_id, event_id) DO NOTHING";
    event_batch *b = ctx;
    const char *tenant = sy_req_principal(r)->tenant;
    int rc;
    int64_t now = sy_now_ms();
    for (size_t i = 0; i < b->n; i++) {
        event_in *x = &b->ev[i];
        sy_event_in *e = &x->in;
        sy_stmt *st = sy_conn_prepare(c, sql);
        if (!st)
            return SY_ERR;
        sy_stmt_bind_text(st, 1, tenant);
        sy_stmt_bind_text(st, 2, e->event_id);
        sy_stmt_bind_text(st, 3, e->customer_no);
        sy_stmt_bind_text(st, 4, e->name);
        sy_stmt_bind_i64(st, 5, e->ts);
        if (e->dwell_ms >= 0)
            sy_stmt_bind_i64(st, 6, e->dwell_ms);
        else
            sy_stmt_bind_null(st, 6);
        sy_stmt_bind_text(st, 7, e->props);
        sy_stmt_bind_i64(st, 8, now);
        if ((rc = sy_stmt_exec(st)) != SY_OK)
            return rc;
        x->stored = sy_conn_changes(c) == 1;
        if (x->stored)
            b->accepted++;
        else
            json_array_append_new(b->duplicates, json_string(e->event_id));
        /* Tasks are rewarded in the same transaction as the event: an
         * event and the reward it earned commit together, and a repeated
         * event (a duplicate) earns nothing again. */
        if (x->stored && b->tasks &&
            (rc = sy_api_task_apply(c, r, b->tasks, i, e->customer_no, e->name, e->event_id, e->ts,
                                    e->dwell_ms, e->props, b->task_rewards, b->task_refusals)) !=
                SY_OK)
            return rc;
        /* Likewise a referral's qualifying event (api_referral.c). */
        if (x->stored && b->referrals &&
            (rc = sy_api_referral_apply(c, r, b->referrals, e->customer_no, e->name, e->event_id,
                                        e->ts, b->referral_rewards)) != SY_OK)
            return rc;
    }
    sy_req_no_audit(r); /* behaviour data, not an administrative change */
    json_t *reply =
        json_pack("{s:I, s:I, s:O}", "accepted", (json_int_t)b->accepted, "duplicates",
                  (json_int_t)json_array_size(b->duplicates), "duplicate_ids", b->duplicates);
    if (b->tasks) {
        json_object_set(reply, "task_rewards", b->task_rewards);
        json_object_set(reply, "task_refusals", b->task_refusals);
    }
    if (b->referrals)
        json_object_set(reply, "referrals", b->referral_rewards);
    sy_reply_json(r, 200, reply);
    return 0;
}

/* Before apply_events runs again in a new transaction (writer.h). */
static void events_reset(sy_req *r, void *ctx)
{
    (void)r;
    event_batch *b = ctx;
    b->accepted = 0;
    json_array_clear(b->duplicates);
    if (b->task_rewards)
        json_array_clear(b->task_rewards);
    if (b->task_refusals)
        json_array_clear(b->task_refusals);
    if (b->referral_rewards)
        json_array_clear(b->referral_rewards);
    sy_api_task_plan_reset(b->tasks);
    sy_api_referral_plan_reset(b->referrals);
    for (size_t i = 0; i < b->n; i++)
        b->ev[i].stored = false;
}

/* After the commit, the stored events reach the segment index. */
static void events_committed(sy_req *r, void *ctx)
{
    event_batch *b = ctx;
    sy_index *ix = sy_indexes_get(sy_req_app(r)->indexes, sy_req_principal(r)->tenant);
    if (!ix)
        return;
    const char **nos = sy_xmalloc(b->n * sizeof *nos), **names = sy_xmalloc(b->n * sizeof *names);
    int64_t *ts = sy_xmalloc(b->n * sizeof *ts), *dwell = sy_xmalloc(b->n * sizeof *dwell);
    size_t k = 0;
    for (size_t i = 0; i < b->n; i++) {
        if (!b->ev[i].stored)
            continue;
        nos[k] = b->ev[i].in.customer_no;
        names[k] = b->ev[i].in.name;
        ts[k] = b->ev[i].in.ts;
        dwell[k++] = b->ev[i].in.dwell_ms;
    }
    sy_index_add_events(ix, k, nos, names, ts, dwell);
    free(nos);
    free(names);
    free(ts);
    free(dwell);
}

/* Attaches the per-event errors to the problem reply recorded in r. */
static void reply_event_errors(sy_req *r, json_t *errors, size_t nbad)
{
    /* `field` names the first bad member in the batch (/3/event_id); each
     * of `errors` has its event's index and the member within it */
    /* parse errors come before unknown customers: the lowest index first */
    json_t *first = NULL, *e;
    size_t k;
    json_array_foreach (errors, k, e)
        if (!first || json_integer_value(json_object_get(e, "index")) <
                          json_integer_value(json_object_get(first, "index")))
            first = e;
    char field[160] = "";
    if (first)
        snprintf(field, sizeof field, "/%lld%.128s",
                 (long long)json_integer_value(json_object_get(first, "index")),
                 json_string_value(json_object_get(first, "field")));
    sy_reply_problem(r, 400, "validation", field,
                     "%zu of the batch's events %s invalid; nothing was written", nbad,
                     nbad == 1 ? "is" : "are");
    sy_reply_extend(r, "errors", json_incref(errors));
}

void sy_api_events_post(sy_req *r)
{
    size_t len;
    const char *body = sy_req_body(r, &len);
    const char *ctype = sy_req_header(r, "Content-Type");
    bool ndjson = ctype && !strncmp(ctype, "application/x-ndjson", 20);
    json_t *items;
    const char *type;
    char detail[512];
    if (!sy_events_load(body, len, ndjson, &items, &type, detail, sizeof detail)) {
        sy_reply_problem(r, 400, type, "", "%s", detail);
        return;
    }
    size_t n = json_array_size(items);
    event_batch *b = sy_req_alloc(r, sizeof *b);
    memset(b, 0, sizeof *b);
    b->ev = sy_xcalloc(n, sizeof *b->ev);
    b->errors = json_array();
    b->duplicates = json_array();
    sy_req_on_free(r, batch_free, b);
    size_t nbad = 0;
    for (size_t i = 0; i < n; i++) {
        if (sy_event_parse(sy_req_app(r)->pii, sy_req_principal(r)->tenant, sy_now_ms(),
                           json_array_get(items, i), i, &b->ev[b->n].in, b->errors))
            b->ev[b->n++].index = i;
        else
            nbad++;
    }
    json_decref(items);
    /* Resolve the customers here, so one answer lists every problem.
     * Customers are never deleted, so what resolves now still does when
     * the batch commits. */
    sy_app *app = sy_req_app(r);
    /* Live customers are in the index's dictionary; identities and merged
     * customer numbers are resolved through the store. */
    sy_index *ix = sy_indexes_get(app->indexes, sy_req_principal(r)->tenant);
    if (ix) {
        sy_index_rdlock(ix);
        for (size_t i = 0; i < b->n; i++) {
            uint32_t dense;
            /* a merged customer keeps its dense id but left `all` */
            b->ev[i].resolved = b->ev[i].in.customer_no &&
                                sy_index_dense(ix, b->ev[i].in.customer_no, &dense) &&
                                roaring_bitmap_contains(sy_index_all(ix), dense);
        }
        sy_index_unlock(ix);
    }
    sy_conn *c = sy_store_acquire(app->store);
    for (size_t i = 0; i < b->n; i++) {
        bool found;
        if (b->ev[i].resolved)
            continue;
        if (resolve_customer(c, sy_req_principal(r)->tenant, &b->ev[i].in, &found) != SY_OK) {
            sy_api_store_error(r, c);
            sy_store_release(app->store, c);
            return;
        }
        if (!found) {
            sy_event_error_add(b->errors, b->ev[i].index,
                               b->ev[i].in.customer_no ? "/customer_no" : "/identity",
                               "no such customer");
            nbad++;
        }
    }
    sy_store_release(app->store, c);
    if (nbad) {
        reply_event_errors(r, b->errors, nbad);
        return;
    }
    /* Task campaigns (api_campaigns.c): which run, and who is in their
     * audience, is decided here, where the segment index is read. */
    const char **nos = sy_xmalloc(b->n * sizeof *nos);
    for (size_t i = 0; i < b->n; i++)
        nos[i] = b->ev[i].in.customer_no;
    bool failed;
    b->tasks = sy_api_task_plan(r, b->n, nos, &failed);
    free(nos);
    if (failed)
        return;
    if (b->tasks) {
        b->task_rewards = json_array();
        b->task_refusals = json_array();
    }
    b->referrals = sy_api_referral_plan(r, &failed);
    if (failed)
        return;
    if (b->referrals)
        b->referral_rewards = json_array();
    sy_req_write(r, apply_events, events_committed, b);
    sy_req_write_rerun(r, events_reset);
}

/* ---- timeline ---- */

void sy_api_customer_events(sy_req *r)
{
    static const char sql[] =
        "SELECT event_id, name, ts, dwell_ms, props FROM events"
        " WHERE tenant_id = $1 AND customer_no = $2 AND (ts < $3 OR (ts = $3 AND event_id < $4))"
        " ORDER BY ts DESC, event_id DESC LIMIT $5";
    int64_t limit;
    if (!sy_v_query_int(r, "limit", 1, 1000, 50, &limit))
        return;
    int64_t cur_ts = INT64_MAX;
    const char *cur_id = "\x7f";
    const char *cursor = sy_req_query(r, "cursor");
    char idbuf[160];
    if (cursor) {
        const char *colon = strchr(cursor, ':');
        char tsbuf[24];
        size_t tl = colon ? (size_t)(colon - cursor) : 0;
        /* the time, then the last event's id (a token, as ingestion checks) */
        if (!colon || tl == 0 || tl >= sizeof tsbuf || strlen(colon + 1) >= sizeof idbuf ||
            !sy_token_valid(colon + 1, SY_EVENT_ID_MAX)) {
            sy_reply_problem(r, 400, "validation", "cursor", "not a cursor from this endpoint");
            return;
        }
        memcpy(tsbuf, cursor, tl);
        tsbuf[tl] = '\0';
        snprintf(idbuf, sizeof idbuf, "%s", colon + 1);
        if (!sy_parse_i64(tsbuf, 0, INT64_MAX, &cur_ts)) {
            sy_reply_problem(r, 400, "validation", "cursor", "not a cursor from this endpoint");
            return;
        }
        cur_id = idbuf;
    }
    const char *tenant = sy_req_principal(r)->tenant, *no = sy_req_param(r, "customer_no");
    sy_app *app = sy_req_app(r);
    sy_conn *c = sy_store_acquire(app->store);
    static const char sql_exists[] =
        "SELECT 1 FROM customers WHERE tenant_id = $1 AND customer_no = $2";
    sy_stmt *ex = sy_conn_prepare(c, sql_exists);
    int rc = ex ? SY_OK : SY_ERR;
    if (ex) {
        sy_stmt_bind_text(ex, 1, tenant);
        sy_stmt_bind_text(ex, 2, no);
        rc = sy_stmt_step(ex);
        sy_stmt_reset(ex);
    }
    if (rc == SY_DONE) {
        sy_reply_problem(r, 404, "not-found", NULL, "no customer '%s'", no);
        sy_store_release(app->store, c);
        return;
    }
    sy_stmt *st = rc == SY_ROW ? sy_conn_prepare(c, sql) : NULL;
    json_t *items = json_array();
    char next[200] = "";
    if (st) {
        sy_stmt_bind_text(st, 1, tenant);
        sy_stmt_bind_text(st, 2, no);
        sy_stmt_bind_i64(st, 3, cur_ts);
        sy_stmt_bind_text(st, 4, cur_id);
        sy_stmt_bind_i64(st, 5, limit);
        while ((rc = sy_stmt_step(st)) == SY_ROW) {
            int64_t ts = sy_stmt_i64(st, 2);
            json_t *e = json_pack("{s:s, s:s, s:o}", "event_id", sy_stmt_text(st, 0), "name",
                                  sy_stmt_text(st, 1), "ts", sy_json_time(ts));
            json_object_set_new(e, "dwell_ms",
                                sy_stmt_is_null(st, 3) ? json_null()
                                                       : json_integer(sy_stmt_i64(st, 3)));
            json_t *props =
                sy_stmt_is_null(st, 4) ? NULL : json_loads(sy_stmt_text(st, 4), 0, NULL);
            json_object_set_new(e, "props", props ? props : json_null());
            json_array_append_new(items, e);
            snprintf(next, sizeof next, "%lld:%s", (long long)ts, sy_stmt_text(st, 0));
        }
        sy_stmt_reset(st);
    }
    if (rc != SY_DONE) {
        json_decref(items);
        sy_api_store_error(r, c);
    } else {
        bool more = json_array_size(items) == (size_t)limit;
        sy_reply_json(r, 200,
                      json_pack("{s:o, s:o}", "items", items, "next_cursor",
                                more ? json_string(next) : json_null()));
    }
    sy_store_release(app->store, c);
}

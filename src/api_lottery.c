/* api_lottery.c — lotteries (抽奖) and anti-abuse (薅羊毛) over HTTP: a
 * lottery campaign's versioned prize table, draws (POST, idempotent, one
 * writer mutation each) and their explanation, the tenant's anti-abuse
 * rules and blocklist, and the gate that check-in and draws pass first.
 *
 * The rules are in lottery.c and abuse.c; the campaign's own checks
 * (audience, suitability, holdout, limits, budget) are campaign.c's, and
 * refusals answer with the same problem types as check-in (through
 * sy_api_campaign_refusal).  The gate runs in the request thread before
 * the write: the blocklist (a read of the store), then the rate limits and
 * velocity rules (in memory); each refusal is a problem whose type is its
 * reason code (blocked, rate-limited, velocity) and is counted in
 * /metrics.  docs/campaigns.md has the model. */
#include "abuse.h"
#include "api.h"
#include "app.h"
#include "campaign.h"
#include "customer.h"
#include "lottery.h"
#include "remember.h"
#include "util.h"
#include "validate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* the gate                                                            */

typedef struct abuse_gate {
    sy_abuse_rules rules;
    sy_abuse_subject subj;
    sy_abuse_action action;
    char ip[64];
} abuse_gate;

static bool device_valid(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > SY_ABUSE_DEVICE_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] <= ' ' || s[i] > '~')
            return false;
    return true;
}

static sy_abuse_scope scope_of_kind(const char *kind)
{
    sy_abuse_scope s = SY_ABUSE_CUSTOMER;
    sy_abuse_scope_parse(kind, &s);
    return s;
}

bool sy_api_abuse_gate(sy_req *r, int action, const char *customer_no, void **state)
{
    abuse_gate *g = sy_req_alloc(r, sizeof *g);
    memset(g, 0, sizeof *g);
    *state = g;
    g->action = action == 2 ? SY_ABUSE_CLAIM : action == 1 ? SY_ABUSE_DRAW : SY_ABUSE_CHECKIN;
    const char *dev = sy_req_header(r, "X-Device-Id");
    if (dev && !device_valid(dev)) {
        sy_reply_problem(r, 400, "validation", "X-Device-Id",
                         "X-Device-Id must be 1 to %d printable ASCII characters without spaces",
                         SY_ABUSE_DEVICE_MAX);
        return false;
    }
    const char *tenant = sy_req_principal(r)->tenant;
    int64_t now = sy_req_now_ms(r), mono = (int64_t)(sy_mono_ns() / 1000000);
    sy_app *app = sy_req_app(r);
    sy_conn *c = sy_store_acquire(app->store);
    int rc = SY_OK;
    uint64_t epoch;
    if (!sy_abuse_rules_cached(tenant, mono, &g->rules, &epoch)) {
        rc = sy_abuse_rules_load(c, tenant, &g->rules);
        if (rc == SY_OK)
            sy_abuse_rules_cache_put(tenant, mono, &g->rules, epoch);
    }
    sy_abuse_client_ip(&g->rules, sy_req_peer(r), sy_req_header(r, "X-Forwarded-For"), g->ip);
    g->subj = (sy_abuse_subject){tenant, customer_no, dev, g->ip[0] ? g->ip : NULL};
    bool blocked = false;
    char kind[16];
    if (rc == SY_OK)
        rc = sy_abuse_blocked(c, &g->subj, now, &blocked, kind);
    if (rc != SY_OK)
        sy_api_store_error(r, c);
    sy_store_release(app->store, c);
    if (rc != SY_OK)
        return false;
    if (blocked) {
        sy_abuse_count(SY_ABUSE_BLOCKED, g->action, scope_of_kind(kind));
        sy_reply_problem(r, 403, "blocked", NULL, "this %s is on the tenant's blocklist", kind);
        sy_reply_extend(r, "blocked", json_string(kind));
        return false;
    }
    const sy_abuse_rule *hit;
    int64_t retry_ms;
    sy_abuse_reason why = sy_abuse_limit(&g->rules, g->action, &g->subj, now, &hit, &retry_ms);
    if (why == SY_ABUSE_OK)
        return true;
    sy_abuse_count(why, g->action, hit->scope);
    char retry[24];
    snprintf(retry, sizeof retry, "%lld", (long long)((retry_ms + 999) / 1000));
    sy_reply_header(r, "Retry-After", retry);
    if (why == SY_ABUSE_RATE_LIMITED)
        sy_reply_problem(r, 429, "rate-limited", NULL,
                         "more than %lld attempts per %lld s from this %s; try again later",
                         (long long)hit->max, (long long)(hit->window_ms / 1000),
                         sy_abuse_scope_name(hit->scope));
    else
        sy_reply_problem(r, 403, "velocity", NULL,
                         "this %s took part %lld times within %lld minutes, the most the"
                         " tenant's velocity rule allows",
                         sy_abuse_scope_name(hit->scope), (long long)hit->max,
                         (long long)(hit->window_ms / 60000));
    sy_reply_extend(r, "scope", json_string(sy_abuse_scope_name(hit->scope)));
    sy_reply_extend(r, "max", json_integer(hit->max));
    sy_reply_extend(r, "window_seconds", json_integer(hit->window_ms / 1000));
    return false;
}

void sy_api_abuse_accepted(sy_req *r, void *state)
{
    abuse_gate *g = state;
    if (g)
        sy_abuse_note(&g->rules, g->action, &g->subj, sy_req_now_ms(r));
}

void sy_api_abuse_subject(void *state, const char **device, const char **ip)
{
    abuse_gate *g = state;
    *device = g ? g->subj.device : NULL;
    *ip = g ? g->subj.ip : NULL;
}

/* ------------------------------------------------------------------ */
/* refusals                                                            */

static void reply_refusal(sy_req *r, int rc, const sy_campaign_result *why, const char *id,
                          const char *no)
{
    switch (rc) {
    case SY_LOTTERY_NO_TABLE:
        sy_reply_problem(r, 409, "no-prizes", NULL,
                         "campaign '%s' has no prize table yet (PUT /v1/campaigns/%s/prizes)", id,
                         id);
        break;
    case SY_LOTTERY_NO_CHANCES:
        sy_reply_problem(r, 409, "no-chances", NULL,
                         "customer '%s' has used today's free draws, and draws of campaign '%s'"
                         " cannot be paid for",
                         no, id);
        break;
    case SY_LOTTERY_NOT_EDITABLE:
        sy_reply_problem(r, 409, "not-editable", NULL,
                         "campaign '%s' is %s: its prizes change only while it is a draft or"
                         " paused",
                         id, why->other);
        break;
    case SY_CAMPAIGN_INSUFFICIENT:
        sy_reply_problem(r, 409, "insufficient-points", NULL,
                         "the customer has %lld points of the draw's type available, fewer than"
                         " its cost; nothing was spent",
                         (long long)why->balance);
        sy_reply_extend(r, "available", json_integer(why->balance));
        break;
    default:
        sy_api_campaign_refusal(r, rc, why, id, no);
        break;
    }
}

/* ------------------------------------------------------------------ */
/* the prize table                                                     */

static sy_campaign *load_campaign(sy_req *r, const char *id)
{
    if (!sy_campaign_id_valid(id)) {
        sy_reply_problem(r, 404, "not-found", NULL, "no campaign '%s'", id);
        return NULL;
    }
    sy_app *app = sy_req_app(r);
    sy_conn *c = sy_store_acquire(app->store);
    sy_campaign *cp = NULL;
    int rc = sy_campaign_load(c, sy_req_principal(r)->tenant, id, &cp);
    if (rc == SY_CAMPAIGN_NOT_FOUND)
        sy_reply_problem(r, 404, "not-found", NULL, "no campaign '%s'", id);
    else if (rc != SY_OK)
        sy_api_store_error(r, c);
    sy_store_release(app->store, c);
    return cp;
}

typedef struct prizes_req {
    const char *id;
    sy_lottery_table t;
} prizes_req;

static int apply_prizes(sy_conn *c, sy_req *r, void *ctx)
{
    prizes_req *q = ctx;
    sy_campaign_result res;
    int rc = sy_lottery_define(c, sy_req_principal(r)->tenant, q->id, &q->t,
                               sy_req_principal(r)->key_id, sy_req_now_ms(r), &res);
    if (rc == SY_CAMPAIGN_UNKNOWN_TYPE || rc == SY_CAMPAIGN_UNKNOWN_ITEM) {
        sy_api_campaign_refusal(r, rc, &res, q->id, NULL);
        return 1;
    }
    if (rc > 0) {
        reply_refusal(r, rc, &res, q->id, NULL);
        return 1;
    }
    if (rc != SY_OK)
        return rc;
    sy_req_audit_target(r, q->id);
    json_t *o = sy_lottery_table_json(&q->t, SY_CAMPAIGN_UNSET);
    json_object_set_new(o, "campaign", json_string(q->id));
    json_object_set_new(o, "campaign_status", json_string(res.other));
    sy_reply_json(r, 201, o);
    return 0;
}

/* The campaign's status may have moved (paused -> pending_approval) and
 * its chances changed: the offers API loads its catalogue again. */
static void prizes_committed(sy_req *r, void *ctx)
{
    (void)ctx;
    sy_api_offers_invalidate(sy_req_principal(r)->tenant);
}

/* PUT /v1/campaigns/{id}/prizes: a new version of the prize table. */
void sy_api_lottery_prizes_put(sy_req *r)
{
    json_t *body = sy_req_json_object(r);
    if (!body)
        return;
    prizes_req *q = sy_req_alloc(r, sizeof *q);
    q->id = sy_req_param(r, "id");
    sy_campaign *cp = load_campaign(r, q->id);
    if (!cp)
        return;
    char field[96], msg[240];
    bool ok = sy_lottery_parse(body, cp->point_type, &q->t, field, sizeof field, msg, sizeof msg);
    sy_campaign_free(cp);
    if (!ok) {
        sy_reply_problem(r, 400, "validation", field[0] ? field : NULL, "%s", msg);
        return;
    }
    sy_req_write(r, apply_prizes, prizes_committed, q);
}

/* GET /v1/campaigns/{id}/prizes[?version=N]: a version (the newest by
 * default), with each prize's stock released by today and left. */
void sy_api_lottery_prizes_get(sy_req *r)
{
    int64_t version = 0;
    if (!sy_v_query_int(r, "version", 1, 1000000000, 0, &version))
        return;
    const char *id = sy_req_param(r, "id");
    sy_campaign *cp = load_campaign(r, id);
    if (!cp)
        return;
    sy_campaign_free(cp);
    const char *tenant = sy_req_principal(r)->tenant;
    sy_app *app = sy_req_app(r);
    sy_conn *c = sy_store_acquire(app->store);
    sy_lottery_table *t = sy_xmalloc(sizeof *t);
    char zone[65];
    int rc = sy_campaign_zone(c, tenant, zone);
    if (rc == SY_OK)
        rc = sy_lottery_load(c, tenant, id, (int)version, t);
    if (rc == SY_LOTTERY_NO_TABLE) {
        sy_reply_problem(r, 404, "not-found", version ? "version" : NULL,
                         version ? "campaign '%s' has no prize table version %lld"
                                 : "campaign '%s' has no prize table yet",
                         id, (long long)version);
    } else if (rc != SY_OK) {
        sy_api_store_error(r, c);
    } else {
        json_t *o = sy_lottery_table_json(t, sy_campaign_day(zone, sy_req_now_ms(r)));
        json_object_set_new(o, "campaign", json_string(id));
        sy_reply_json(r, 200, o);
    }
    free(t);
    sy_store_release(app->store, c);
}

/* ------------------------------------------------------------------ */
/* draws                                                               */

typedef struct draw_req {
    const char *id, *no;
    bool in_audience, accepted;
    abuse_gate *gate;
    sy_lottery_outcome out;
} draw_req;

static json_t *draw_json(const draw_req *q)
{
    const sy_lottery_outcome *o = &q->out;
    char day[11];
    sy_format_date(o->day, day);
    json_t *prize = json_null();
    if (o->won) {
        prize = json_pack("{s:s, s:s}", "code", o->prize, "name", o->prize_name);
        if (o->reward.item[0]) {
            json_object_set_new(prize, "item", json_string(o->reward.item));
            json_object_set_new(prize, "grant", json_string(o->grant_code));
        } else {
            json_object_set_new(prize, "points", json_integer(o->reward.points));
            json_object_set_new(prize, "point_type", json_string(o->reward.point_type));
            json_object_set_new(prize, "ledger_entry", json_string(o->ledger_entry));
        }
    }
    json_t *b = json_pack(
        "{s:s, s:s, s:s, s:i, s:s, s:s, s:o, s:s, s:b, s:I, s:I, s:i, s:I}", "draw", o->draw_id,
        "campaign", q->id, "customer_no", q->no, "version", o->version, "day", day, "outcome",
        o->won ? "prize" : "thanks", "prize", prize, "name", o->prize_name, "free", o->free,
        "random", (json_int_t)o->random, "total_weight", (json_int_t)o->total, "losing_streak",
        o->losing_streak, "draws_today", (json_int_t)o->draws_today);
    json_object_set_new(b, "reason", o->reason[0] ? json_string(o->reason) : json_null());
    json_object_set_new(b, "cost",
                        o->cost_points
                            ? json_pack("{s:I, s:s, s:s}", "points", (json_int_t)o->cost_points,
                                        "point_type", o->cost_type, "ledger_entry", o->spend_entry)
                            : json_null());
    json_object_set_new(b, "chances_left",
                        o->chances_left == SY_CAMPAIGN_UNSET ? json_null()
                                                             : json_integer(o->chances_left));
    return b;
}

static int apply_draw(sy_conn *c, sy_req *r, void *ctx)
{
    draw_req *q = ctx;
    const sy_principal *who = sy_req_principal(r);
    sy_campaign_who w = {.tenant = who->tenant,
                         .eligible = sy_api_reward_eligible,
                         .eligible_ud = r,
                         .customer_no = q->no,
                         .in_audience = q->in_audience,
                         .operator_id = who->key_id,
                         .key = sy_req_header(r, "Idempotency-Key"),
                         .now_ms = sy_req_now_ms(r)};
    int rc = sy_lottery_draw(c, &w, q->id, q->gate->subj.device, q->gate->subj.ip, &q->out);
    if (rc == SY_LOTTERY_REPLAY) {
        /* the key drew before the server's own record of the answer (24
         * hours) was purged: the same answer, rebuilt from the draw's row
         * (chances_left, which depended on that moment, is null), not a
         * second draw */
        char id[SY_LOTTERY_ID_LEN + 1];
        snprintf(id, sizeof id, "%s", q->out.draw_id);
        if ((rc = sy_lottery_draw_outcome(c, who->tenant, q->id, id, &q->out)) != SY_OK)
            return rc > 0 ? SY_ERR : rc;
        sy_req_no_audit(r);
        sy_reply_header(r, "Idempotent-Replayed", "true");
        sy_reply_json(r, 200, draw_json(q));
        return 0;
    }
    if (rc == SY_LOTTERY_KEY_USED) {
        sy_reply_problem(r, 409, "conflict", "Idempotency-Key",
                         "this Idempotency-Key drew before for another customer (draw %s)",
                         q->out.draw_id);
        return 1;
    }
    if (rc == SY_CAMPAIGN_HOLDOUT) {
        /* the holdout is recorded: this refusal commits */
        sy_req_no_audit(r);
        reply_refusal(r, rc, &q->out.why, q->id, q->no);
        return 0;
    }
    if (rc > 0) {
        reply_refusal(r, rc, &q->out.why, q->id, q->no);
        return 1;
    }
    if (rc != SY_OK)
        return rc;
    q->accepted = true;
    sy_req_audit_target(r, q->out.draw_id);
    sy_reply_json(r, 201, draw_json(q));
    return 0;
}

/* Before apply_draw runs again in a new transaction (writer.h): a new
 * random value, as if the first run had never been. */
static void draw_reset(sy_req *r, void *ctx)
{
    (void)r;
    draw_req *q = ctx;
    q->accepted = false;
    memset(&q->out, 0, sizeof q->out);
}

static void draw_committed(sy_req *r, void *ctx)
{
    draw_req *q = ctx;
    if (q->accepted) {
        sy_lottery_count(&q->out);
        sy_api_abuse_accepted(r, q->gate);
    }
}

/* What the request thread needs of a campaign before its draw: that it
 * exists, and its audience segment ("" for everyone) — one column, not
 * the whole campaign with its rules parsed; the writer reads the rest.
 * False when answered (404, or a store error). */
static const char k_segment_sql[] =
    "SELECT segment_id, status FROM campaigns WHERE tenant_id = $1 AND id = $2";

void sy_api_lottery_forget_audience(const char *tenant, const char *id)
{
    sy_remember_forget(k_segment_sql, tenant, id);
}

static bool campaign_segment(sy_req *r, const char *id, char segment[65])
{
    const char *sql = k_segment_sql;
    if (!sy_campaign_id_valid(id)) {
        sy_reply_problem(r, 404, "not-found", NULL, "no campaign '%s'", id);
        return false;
    }
    /* A campaign's definition changes only while it is a draft: once it is
     * approved its audience is remembered (remember.h) instead of read per
     * draw, until a reject sends it back to draft
     * (sy_api_lottery_forget_audience; the epoch covers a read made before
     * the reject and remembered after it). */
    const char *tenant = sy_req_principal(r)->tenant;
    const sy_remembered *rm = sy_remember_get(sql, tenant, id);
    if (rm) {
        snprintf(segment, 65, "%s", rm->v[0]);
        return true;
    }
    uint64_t epoch = sy_remember_epoch();
    sy_app *app = sy_req_app(r);
    sy_conn *c = sy_store_acquire(app->store);
    sy_stmt *st = sy_conn_prepare(c, sql);
    int rc = SY_ERR;
    if (st) {
        sy_stmt_bind_text(st, 1, tenant);
        sy_stmt_bind_text(st, 2, id);
        rc = sy_stmt_step(st);
        if (rc == SY_ROW) {
            snprintf(segment, 65, "%s", sy_stmt_text(st, 0));
            const char *status = sy_stmt_text(st, 1);
            if (strcmp(status, "draft") != 0 && strcmp(status, "pending_approval") != 0) {
                const char *v[] = {segment};
                sy_remember_put(sql, tenant, id, 1, v, epoch);
            }
        }
        sy_stmt_reset(st);
    }
    if (rc == SY_DONE)
        sy_reply_problem(r, 404, "not-found", NULL, "no campaign '%s'", id);
    else if (rc != SY_ROW)
        sy_api_store_error(r, c);
    sy_store_release(app->store, c);
    return rc == SY_ROW;
}

/* POST /v1/campaigns/{id}/draw {"customer_no": "…"} with an Idempotency-Key. */
void sy_api_lottery_draw(sy_req *r)
{
    static const char *const fields[] = {"customer_no", NULL};
    json_t *body = sy_req_json_object(r);
    draw_req *q = sy_req_alloc(r, sizeof *q);
    memset(q, 0, sizeof *q);
    q->id = sy_req_param(r, "id");
    if (!body || !sy_v_only(r, body, fields) ||
        !sy_v_string(r, body, "customer_no", true, SY_CUSTOMER_NO_MAX, &q->no))
        return;
    if (!sy_customer_no_valid(q->no)) {
        sy_reply_problem(r, 400, "validation", "/customer_no",
                         "'customer_no' must be 1-64 characters of A-Z a-z 0-9 _ . : -");
        return;
    }
    if (!sy_req_header(r, "Idempotency-Key")) {
        sy_reply_problem(r, 400, "validation", "Idempotency-Key",
                         "a draw needs an Idempotency-Key, so that a retry draws once");
        return;
    }
    void *gate;
    if (!sy_api_abuse_gate(r, 1, q->no, &gate))
        return;
    q->gate = gate;
    char segment[65];
    if (!campaign_segment(r, q->id, segment))
        return;
    q->in_audience = true;
    if (!segment[0] || sy_api_campaign_audience(r, segment, q->no, &q->in_audience)) {
        sy_req_write(r, apply_draw, draw_committed, q);
        sy_req_write_rerun(r, draw_reset);
    }
}

/* GET /v1/campaigns/{id}/draws/{draw_id}: a draw and its explanation. */
void sy_api_lottery_draw_get(sy_req *r)
{
    const char *id = sy_req_param(r, "id"), *draw = sy_req_param(r, "draw_id");
    if (!sy_campaign_id_valid(id) || strlen(draw) > 64) {
        sy_reply_problem(r, 404, "not-found", NULL, "no such draw");
        return;
    }
    sy_app *app = sy_req_app(r);
    sy_conn *c = sy_store_acquire(app->store);
    json_t *o;
    int rc = sy_lottery_draw_get(c, sy_req_principal(r)->tenant, id, draw, &o);
    if (rc == SY_LOTTERY_NO_DRAW)
        sy_reply_problem(r, 404, "not-found", NULL, "no draw '%s' in campaign '%s'", draw, id);
    else if (rc != SY_OK)
        sy_api_store_error(r, c);
    else
        sy_reply_json(r, 200, o);
    sy_store_release(app->store, c);
}

/* GET /v1/campaigns/{id}/draws?customer_no=…&limit=…: the newest draws. */
void sy_api_lottery_draws_list(sy_req *r)
{
    static const char sql[] =
        "SELECT id, customer_no, n, version, day, outcome, prize, free, cost_points, created_at"
        " FROM lottery_draws WHERE tenant_id = $1 AND campaign_id = $2 AND ($3 = '' OR"
        " customer_no = $3) ORDER BY created_at DESC, id DESC LIMIT $4";
    const char *id = sy_req_param(r, "id"), *no = sy_req_query(r, "customer_no");
    int64_t limit;
    if (!sy_v_query_int(r, "limit", 1, 1000, 100, &limit))
        return;
    if (no && !sy_customer_no_valid(no)) {
        sy_reply_problem(r, 400, "validation", "customer_no",
                         "'customer_no' must be 1-64 characters of A-Z a-z 0-9 _ . : -");
        return;
    }
    sy_campaign *cp = load_campaign(r, id);
    if (!cp)
        return;
    sy_campaign_free(cp);
    sy_app *app = sy_req_app(r);
    sy_conn *c = sy_store_acquire(app->store);
    sy_stmt *st = sy_conn_prepare(c, sql);
    json_t *items = json_array();
    int rc = st ? SY_OK : SY_ERR;
    if (st) {
        sy_stmt_bind_text(st, 1, sy_req_principal(r)->tenant);
        sy_stmt_bind_text(st, 2, id);
        sy_stmt_bind_text(st, 3, no ? no : "");
        sy_stmt_bind_i64(st, 4, limit);
        while ((rc = sy_stmt_step(st)) == SY_ROW) {
            char d[11];
            sy_format_date(sy_stmt_i64(st, 4), d);
            json_t *x = json_pack(
                "{s:s, s:s, s:I, s:I, s:s, s:s, s:o, s:b, s:I, s:o}", "id", sy_stmt_text(st, 0),
                "customer_no", sy_stmt_text(st, 1), "n", (json_int_t)sy_stmt_i64(st, 2), "version",
                (json_int_t)sy_stmt_i64(st, 3), "day", d, "outcome", sy_stmt_text(st, 5), "prize",
                sy_stmt_is_null(st, 6) ? json_null() : json_string(sy_stmt_text(st, 6)), "free",
                sy_stmt_i64(st, 7) != 0, "cost_points", (json_int_t)sy_stmt_i64(st, 8),
                "created_at", sy_json_time(sy_stmt_i64(st, 9)));
            json_array_append_new(items, x);
        }
        sy_stmt_reset(st);
        rc = rc == SY_DONE ? SY_OK : rc;
    }
    if (rc != SY_OK) {
        json_decref(items);
        sy_api_store_error(r, c);
    } else {
        sy_reply_json(r, 200, json_pack("{s:o}", "items", items));
    }
    sy_store_release(app->store, c);
}

/* ------------------------------------------------------------------ */
/* anti-abuse rules                                                    */

void sy_api_abuse_rules_get(sy_req *r)
{
    sy_app *app = sy_req_app(r);
    sy_conn *c = sy_store_acquire(app->store);
    sy_abuse_rules *ru = sy_xmalloc(sizeof *ru);
    int rc = sy_abuse_rules_load(c, sy_req_principal(r)->tenant, ru);
    if (rc != SY_OK)
        sy_api_store_error(r, c);
    else
        sy_reply_json(r, 200, sy_abuse_rules_json(ru));
    free(ru);
    sy_store_release(app->store, c);
}

static int apply_rules(sy_conn *c, sy_req *r, void *ctx)
{
    sy_abuse_rules *ru = ctx;
    int rc = sy_abuse_rules_store(c, sy_req_principal(r)->tenant, ru, sy_req_principal(r)->key_id,
                                  sy_req_now_ms(r));
    if (rc != SY_OK)
        return rc;
    sy_reply_json(r, 200, sy_abuse_rules_json(ru));
    return 0;
}

static void rules_committed(sy_req *r, void *ctx)
{
    sy_abuse_rules_invalidate(sy_req_principal(r)->tenant);
}

void sy_api_abuse_rules_put(sy_req *r)
{
    json_t *body = sy_req_json_object(r);
    if (!body)
        return;
    sy_abuse_rules *ru = sy_req_alloc(r, sizeof *ru);
    char field[96], msg[240];
    if (!sy_abuse_rules_parse(body, ru, field, sizeof field, msg, sizeof msg)) {
        sy_reply_problem(r, 400, "validation", field[0] ? field : NULL, "%s", msg);
        return;
    }
    sy_req_write(r, apply_rules, rules_committed, ru);
}

/* ------------------------------------------------------------------ */
/* the blocklist                                                       */

typedef struct block_req {
    const char *kind, *value, *reason;
    int64_t expires_at; /* SY_CAMPAIGN_UNSET: none */
    char canon[64];
} block_req;

static json_t *block_row(sy_stmt *st)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:o}", "kind", sy_stmt_text(st, 0), "value",
                          sy_stmt_text(st, 1), "reason", sy_stmt_text(st, 2), "created_by",
                          sy_stmt_text(st, 4), "created_at", sy_json_time(sy_stmt_i64(st, 5)));
    json_object_set_new(o, "expires_at",
                        sy_stmt_is_null(st, 3) ? json_null() : sy_json_time(sy_stmt_i64(st, 3)));
    return o;
}

/* Checks kind and value (ptr: where they came from, for the 400). */
static bool block_target(sy_req *r, block_req *q, const char *kptr, const char *vptr)
{
    sy_abuse_scope s;
    if (!sy_abuse_scope_parse(q->kind, &s)) {
        sy_reply_problem(r, 400, "validation", kptr, "'kind' must be customer, device or ip");
        return false;
    }
    bool ok = s == SY_ABUSE_CUSTOMER ? sy_customer_no_valid(q->value)
              : s == SY_ABUSE_DEVICE ? device_valid(q->value)
                                     : sy_abuse_ip_canonical(q->value, q->canon, sizeof q->canon);
    if (!ok) {
        sy_reply_problem(r, 400, "validation", vptr, "'value' is not a valid %s%s", q->kind,
                         s == SY_ABUSE_IP       ? " address (IPv4 or IPv6)"
                         : s == SY_ABUSE_DEVICE ? " id (1-128 printable characters, no spaces)"
                                                : " number");
        return false;
    }
    if (s == SY_ABUSE_IP)
        q->value = q->canon;
    return true;
}

static int apply_block(sy_conn *c, sy_req *r, void *ctx)
{
    static const char sql[] =
        "INSERT INTO abuse_blocklist (tenant_id, kind, value, reason, expires_at, created_by,"
        " created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (tenant_id, kind, value)"
        " DO UPDATE SET reason = excluded.reason, expires_at = excluded.expires_at, created_by ="
        " excluded.created_by, created_at = excluded.created_at"
        " RETURNING kind, value, reason, expires_at, created_by, created_at";
    block_req *q = ctx;
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, sy_req_principal(r)->tenant);
    sy_stmt_bind_text(st, 2, q->kind);
    sy_stmt_bind_text(st, 3, q->value);
    sy_stmt_bind_text(st, 4, q->reason ? q->reason : "");
    if (q->expires_at == SY_CAMPAIGN_UNSET)
        sy_stmt_bind_null(st, 5);
    else
        sy_stmt_bind_i64(st, 5, q->expires_at);
    sy_stmt_bind_text(st, 6, sy_req_principal(r)->key_id);
    sy_stmt_bind_i64(st, 7, sy_req_now_ms(r));
    int rc = sy_stmt_step(st);
    json_t *o = rc == SY_ROW ? block_row(st) : NULL;
    sy_stmt_reset(st);
    if (!o)
        return rc < 0 ? rc : SY_ERR;
    sy_req_audit_target(r, q->value);
    sy_reply_json(r, 201, o);
    return 0;
}

/* POST /v1/abuse/blocklist {"kind", "value", "reason", "expires_at"} */
void sy_api_abuse_block(sy_req *r)
{
    static const char *const fields[] = {"kind", "value", "reason", "expires_at", NULL};
    json_t *body = sy_req_json_object(r);
    block_req *q = sy_req_alloc(r, sizeof *q);
    memset(q, 0, sizeof *q);
    q->expires_at = SY_CAMPAIGN_UNSET;
    const char *exp = NULL;
    if (!body || !sy_v_only(r, body, fields) || !sy_v_string(r, body, "kind", true, 16, &q->kind) ||
        !sy_v_string(r, body, "value", true, SY_ABUSE_VALUE_MAX, &q->value) ||
        !sy_v_string(r, body, "reason", false, SY_ABUSE_REASON_MAX, &q->reason) ||
        !sy_v_string(r, body, "expires_at", false, 40, &exp) ||
        !block_target(r, q, "/kind", "/value"))
        return;
    if (exp && !sy_parse_time(exp, &q->expires_at)) {
        sy_reply_problem(r, 400, "validation", "/expires_at",
                         "'expires_at' must be an RFC 3339 time with a zone");
        return;
    }
    sy_req_write(r, apply_block, NULL, q);
}

static int apply_unblock(sy_conn *c, sy_req *r, void *ctx)
{
    static const char sql[] =
        "DELETE FROM abuse_blocklist WHERE tenant_id = $1 AND kind = $2 AND value = $3";
    block_req *q = ctx;
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, sy_req_principal(r)->tenant);
    sy_stmt_bind_text(st, 2, q->kind);
    sy_stmt_bind_text(st, 3, q->value);
    int rc = sy_stmt_exec(st);
    if (rc != SY_OK)
        return rc;
    if (sy_conn_changes(c) != 1) {
        sy_reply_problem(r, 404, "not-found", NULL, "%s '%s' is not on the blocklist", q->kind,
                         q->value);
        return 1;
    }
    sy_req_audit_target(r, q->value);
    sy_reply_json(r, 200,
                  json_pack("{s:s, s:s, s:b}", "kind", q->kind, "value", q->value, "removed", 1));
    return 0;
}

/* DELETE /v1/abuse/blocklist/{kind}/{value} */
void sy_api_abuse_unblock(sy_req *r)
{
    block_req *q = sy_req_alloc(r, sizeof *q);
    memset(q, 0, sizeof *q);
    q->kind = sy_req_param(r, "kind");
    q->value = sy_req_param(r, "value");
    if (!block_target(r, q, "kind", "value"))
        return;
    sy_req_write(r, apply_unblock, NULL, q);
}

/* GET /v1/abuse/blocklist[?kind=…] */
void sy_api_abuse_blocklist(sy_req *r)
{
    static const char sql_all[] =
        "SELECT kind, value, reason, expires_at, created_by, created_at FROM abuse_blocklist"
        " WHERE tenant_id = $1 ORDER BY kind, value";
    static const char sql_customer[] =
        "SELECT kind, value, reason, expires_at, created_by, created_at FROM abuse_blocklist"
        " WHERE tenant_id = $1 AND kind = 'customer' ORDER BY value";
    static const char sql_device[] =
        "SELECT kind, value, reason, expires_at, created_by, created_at FROM abuse_blocklist"
        " WHERE tenant_id = $1 AND kind = 'device' ORDER BY value";
    static const char sql_ip[] =
        "SELECT kind, value, reason, expires_at, created_by, created_at FROM abuse_blocklist"
        " WHERE tenant_id = $1 AND kind = 'ip' ORDER BY value";
    const char *kind = sy_req_query(r, "kind");
    sy_abuse_scope s = SY_ABUSE_CUSTOMER;
    if (kind && !sy_abuse_scope_parse(kind, &s)) {
        sy_reply_problem(r, 400, "validation", "kind", "'kind' must be customer, device or ip");
        return;
    }
    const char *sql = !kind                    ? sql_all
                      : s == SY_ABUSE_CUSTOMER ? sql_customer
                      : s == SY_ABUSE_DEVICE   ? sql_device
                                               : sql_ip;
    json_t *items = sy_api_tenant_rows(r, sql, block_row);
    if (items)
        sy_reply_json(r, 200, json_pack("{s:o}", "items", items));
}

/* api_points.c — points (积分) over HTTP: point types, earning, spending and
 * reversing points, a customer's balances and history, and the expiry job.
 *
 * The rules live in ledger.c; every movement runs them inside the writer's
 * group-commit transaction (sy_req_write), where the balance check and the
 * change it allows cannot be separated by another write.  A refusal rolls
 * the mutation back and answers a problem whose type says which rule
 * refused: insufficient-points, points-used, already-reversed,
 * not-reversible.  docs/rewards.md has the model. */
#include "api.h"
#include "app.h"
#include "benefits.h"
#include "campaign.h"
#include "customer.h"
#include "ledger.h"
#include "util.h"
#include "validate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXPIRY_BATCH 5000       /* lots per expiry transaction */
#define EXPIRY_ITEMS_SHOWN 1000 /* entries listed in a POST /v1/points:expire reply */
#define EXPIRING_SOON_MS (30LL * 86400000)

/* ------------------------------------------------------------------ */
/* JSON                                                                */

static json_t *type_json(const sy_point_type *t)
{
    json_t *o = json_pack("{s:s, s:s, s:s}", "code", t->code, "name", t->name, "expiry",
                          sy_point_expiry_name(t->expiry));
    json_object_set_new(o, "expiry_days",
                        t->expiry == SY_EXPIRY_DAYS ? json_integer(t->n) : json_null());
    json_object_set_new(o, "expiry_years",
                        t->expiry == SY_EXPIRY_YEAR_END ? json_integer(t->n) : json_null());
    json_object_set_new(o, "created_at", sy_json_time(t->created_at));
    return o;
}

static json_t *text_or_null(sy_stmt *st, int col)
{
    return sy_stmt_is_null(st, col) ? json_null() : json_string(sy_stmt_text(st, col));
}

/* Reads a row of the columns id, kind, point_type, customer_no, amount,
 * debit_account, credit_account, reason, reference, operator,
 * idempotency_key, reverses, reversed_by, created_at, seq — in this order
 * (the statements spell them out: scripts/pg-compat.sh checks only plain
 * string literals). */
static json_t *entry_from_row(sy_stmt *st)
{
    json_t *e = json_pack("{s:s, s:s, s:s, s:s, s:I, s:s, s:s, s:s, s:s, s:s}", "id",
                          sy_stmt_text(st, 0), "kind", sy_stmt_text(st, 1), "point_type",
                          sy_stmt_text(st, 2), "customer_no", sy_stmt_text(st, 3), "amount",
                          (json_int_t)sy_stmt_i64(st, 4), "debit_account", sy_stmt_text(st, 5),
                          "credit_account", sy_stmt_text(st, 6), "reason", sy_stmt_text(st, 7),
                          "reference", sy_stmt_text(st, 8), "operator", sy_stmt_text(st, 9));
    json_object_set_new(e, "idempotency_key", text_or_null(st, 10));
    json_object_set_new(e, "reverses", text_or_null(st, 11));
    json_object_set_new(e, "reversed_by", text_or_null(st, 12));
    json_object_set_new(e, "created_at", sy_json_time(sy_stmt_i64(st, 13)));
    return e;
}

/* Adds the entry's allocations: the lots it drew from or put points into,
 * in the order a spend draws them. */
static int add_allocations(sy_conn *c, const char *tenant, json_t *e)
{
    static const char sql[] =
        "SELECT a.lot_id, a.amount, l.expires_at FROM lot_allocations a JOIN point_lots l"
        " ON l.tenant_id = a.tenant_id AND l.id = a.lot_id WHERE a.tenant_id = $1"
        " AND a.entry_id = $2 ORDER BY l.expires_at NULLS LAST, a.lot_id";
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, json_string_value(json_object_get(e, "id")));
    json_t *list = json_array();
    int rc;
    while ((rc = sy_stmt_step(st)) == SY_ROW) {
        json_t *a = json_pack("{s:I, s:I}", "lot_id", (json_int_t)sy_stmt_i64(st, 0), "amount",
                              (json_int_t)sy_stmt_i64(st, 1));
        json_object_set_new(a, "lot_expires_at",
                            sy_stmt_is_null(st, 2) ? json_null()
                                                   : sy_json_time(sy_stmt_i64(st, 2)));
        json_array_append_new(list, a);
    }
    sy_stmt_reset(st);
    json_object_set_new(e, "allocations", list);
    return rc == SY_DONE ? SY_OK : rc;
}

/* Reads one entry with its allocations; *out is NULL when there is none. */
static int entry_json(sy_conn *c, const char *tenant, const char *id, json_t **out)
{
    static const char sql[] =
        "SELECT id, kind, point_type, customer_no, amount, debit_account, credit_account, reason,"
        " reference, operator, idempotency_key, reverses, reversed_by, created_at, seq"
        " FROM ledger_entries WHERE tenant_id = $1 AND id = $2";
    *out = NULL;
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, id);
    int rc = sy_stmt_step(st);
    json_t *e = rc == SY_ROW ? entry_from_row(st) : NULL;
    sy_stmt_reset(st);
    if (rc != SY_ROW)
        return rc == SY_DONE ? SY_OK : rc;
    if ((rc = add_allocations(c, tenant, e)) != SY_OK) {
        json_decref(e);
        return rc;
    }
    *out = e;
    return SY_OK;
}

/* ------------------------------------------------------------------ */
/* refusals                                                            */

/* Answers a ledger refusal (a positive SY_LEDGER_* code). */
static void reply_refusal(sy_req *r, int code, const sy_ledger_result *res, const char *customer,
                          const char *type, int64_t amount)
{
    const char *entry = sy_req_param(r, "entry_id");
    switch (code) {
    case SY_LEDGER_UNKNOWN_TYPE:
        sy_reply_problem(r, 400, "validation", "/point_type",
                         "no point type '%s' (see GET /v1/point-types)", type);
        break;
    case SY_LEDGER_NO_CUSTOMER:
        sy_reply_problem(r, 404, "not-found", NULL, "no customer '%s'", customer);
        break;
    case SY_LEDGER_MERGED:
        if (entry)
            sy_reply_problem(r, 409, "conflict", NULL,
                             "the customer of entry '%s' was merged into '%s'; its points can"
                             " no longer move",
                             entry, res->other);
        else
            sy_reply_problem(r, 409, "conflict", NULL,
                             "customer '%s' was merged into '%s'; write to that one", customer,
                             res->other);
        break;
    case SY_LEDGER_BAD_AMOUNT:
        sy_reply_problem(r, 400, "validation", "/amount", "'amount' must be 1 to %lld",
                         (long long)SY_LEDGER_MAX_AMOUNT);
        break;
    case SY_LEDGER_INSUFFICIENT:
        sy_reply_problem(r, 409, "insufficient-points", "/amount",
                         "customer '%s' has %lld %s points available, fewer than the %lld asked"
                         " for; nothing was spent",
                         customer, (long long)res->balance, type, (long long)amount);
        sy_reply_extend(r, "available", json_integer(res->balance));
        break;
    case SY_LEDGER_DUPLICATE_KEY:
        sy_reply_problem(r, 409, "conflict", "Idempotency-Key",
                         "this Idempotency-Key was used by ledger entry %s", res->other);
        sy_reply_extend(r, "entry_id", json_string(res->other));
        sy_req_idem_used(r); /* replayed instead, when that request's answer is stored */
        break;
    case SY_LEDGER_NO_ENTRY:
        sy_reply_problem(r, 404, "not-found", NULL, "no ledger entry '%s'", entry);
        break;
    case SY_LEDGER_NOT_REVERSIBLE:
        sy_reply_problem(r, 409, "not-reversible", NULL,
                         "entry '%s' is a reversal or an expiry; only earns and spends can be"
                         " reversed (earn or spend again instead)",
                         entry);
        break;
    case SY_LEDGER_ALREADY_REVERSED:
        sy_reply_problem(r, 409, "already-reversed", NULL, "entry '%s' was reversed by %s", entry,
                         res->other);
        sy_reply_extend(r, "reversed_by", json_string(res->other));
        break;
    case SY_LEDGER_POINTS_USED:
        sy_reply_problem(r, 409, "points-used", NULL,
                         "the points earned by '%s' were partly spent or have expired (its lot"
                         " holds %lld of them): it can no longer be reversed as a whole; reverse"
                         " the spends that drew from it first",
                         entry, (long long)res->balance);
        sy_reply_extend(r, "lot_remaining", json_integer(res->balance));
        break;
    default:
        sy_reply_problem(r, 500, "internal", NULL, "unexpected ledger answer %d", code);
        break;
    }
}

/* ------------------------------------------------------------------ */
/* point types                                                         */

static json_t *type_row(sy_stmt *st)
{
    sy_point_type t;
    memset(&t, 0, sizeof t);
    snprintf(t.code, sizeof t.code, "%s", sy_stmt_text(st, 0));
    snprintf(t.name, sizeof t.name, "%s", sy_stmt_text(st, 1));
    sy_point_expiry_parse(sy_stmt_text(st, 2), &t.expiry);
    t.n = (int)(t.expiry == SY_EXPIRY_DAYS ? sy_stmt_i64(st, 3) : sy_stmt_i64(st, 4));
    t.created_at = sy_stmt_i64(st, 5);
    return type_json(&t);
}

void sy_api_point_types_list(sy_req *r)
{
    static const char sql[] =
        "SELECT code, name, expiry, expiry_days, expiry_years, created_at FROM point_types"
        " WHERE tenant_id = $1 ORDER BY code";
    json_t *items = sy_api_tenant_rows(r, sql, type_row);
    if (items)
        sy_reply_json(r, 200, json_pack("{s:o}", "items", items));
}

void sy_api_point_types_get(sy_req *r)
{
    sy_app *app = sy_req_app(r);
    const char *code = sy_req_param(r, "code");
    sy_conn *c = sy_store_acquire(app->store);
    sy_point_type t;
    int rc = sy_ledger_type_get(c, sy_req_principal(r)->tenant, code, &t);
    if (rc == SY_OK)
        sy_reply_json(r, 200, type_json(&t));
    else if (rc == SY_DONE)
        sy_reply_problem(r, 404, "not-found", NULL, "no point type '%s'", code);
    else
        sy_api_store_error(r, c);
    sy_store_release(app->store, c);
}

static int apply_type_create(sy_conn *c, sy_req *r, void *ctx)
{
    sy_point_type *t = ctx;
    t->created_at = sy_req_now_ms(r);
    int rc = sy_ledger_type_create(c, sy_req_principal(r)->tenant, t);
    if (rc == SY_LEDGER_TYPE_EXISTS) {
        sy_reply_problem(r, 409, "conflict", "/code", "point type '%s' exists already", t->code);
        return 1;
    }
    if (rc != SY_OK)
        return rc;
    char loc[96];
    snprintf(loc, sizeof loc, "/v1/point-types/%s", t->code);
    sy_reply_header(r, "Location", loc);
    sy_req_audit_target(r, t->code);
    sy_reply_json(r, 201, type_json(t));
    return 0;
}

/* An integer member in [min, max]; absent leaves *out. */
static bool v_int(sy_req *r, json_t *body, const char *field, bool required, int64_t min,
                  int64_t max, int64_t *out)
{
    json_t *v = json_object_get(body, field);
    char ptr[64];
    snprintf(ptr, sizeof ptr, "/%s", field);
    if (!v || json_is_null(v)) {
        if (required)
            sy_reply_problem(r, 400, "validation", ptr, "'%s' is required", field);
        return !required;
    }
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
        sy_reply_problem(r, 400, "validation", ptr, "'%s' must be an integer from %lld to %lld",
                         field, (long long)min, (long long)max);
        return false;
    }
    *out = json_integer_value(v);
    return true;
}

void sy_api_point_types_create(sy_req *r)
{
    static const char *const fields[] = {"code",        "name",         "expiry",
                                         "expiry_days", "expiry_years", NULL};
    json_t *body = sy_req_json_object(r);
    const char *code = NULL, *name = NULL, *expiry = NULL;
    if (!body || !sy_v_only(r, body, fields) ||
        !sy_v_string(r, body, "code", true, SY_POINT_TYPE_CODE_MAX, &code) ||
        !sy_v_string(r, body, "name", true, SY_POINT_TYPE_NAME_MAX, &name) ||
        !sy_v_string(r, body, "expiry", true, 16, &expiry))
        return;
    sy_point_type *t = sy_req_alloc(r, sizeof *t);
    memset(t, 0, sizeof *t);
    if (!sy_point_type_code_valid(code)) {
        sy_reply_problem(r, 400, "validation", "/code",
                         "'code' must be 1 to %d characters of a-z 0-9 _, starting with a letter",
                         SY_POINT_TYPE_CODE_MAX);
        return;
    }
    if (!sy_point_expiry_parse(expiry, &t->expiry)) {
        sy_reply_problem(r, 400, "validation", "/expiry",
                         "'expiry' must be never, days or year_end");
        return;
    }
    /* Each policy takes its own number, and only that one. */
    bool days = t->expiry == SY_EXPIRY_DAYS, years = t->expiry == SY_EXPIRY_YEAR_END;
    if (!days && json_object_get(body, "expiry_days")) {
        sy_reply_problem(r, 400, "validation", "/expiry_days",
                         "'expiry_days' goes only with expiry 'days'");
        return;
    }
    if (!years && json_object_get(body, "expiry_years")) {
        sy_reply_problem(r, 400, "validation", "/expiry_years",
                         "'expiry_years' goes only with expiry 'year_end'");
        return;
    }
    int64_t n = 0;
    if ((days && !v_int(r, body, "expiry_days", true, 1, SY_POINT_EXPIRY_DAYS_MAX, &n)) ||
        (years && !v_int(r, body, "expiry_years", true, 0, SY_POINT_EXPIRY_YEARS_MAX, &n)))
        return;
    snprintf(t->code, sizeof t->code, "%s", code);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->n = (int)n;
    sy_req_write(r, apply_type_create, NULL, t);
}

/* ------------------------------------------------------------------ */
/* earn and spend                                                      */

typedef struct move_req {
    sy_ledger_move m;
    bool spend;
} move_req;

static int apply_move(sy_conn *c, sy_req *r, void *ctx)
{
    move_req *mv = ctx;
    mv->m.now_ms = sy_req_now_ms(r);
    sy_ledger_result res;
    int rc = mv->spend ? sy_ledger_spend(c, &mv->m, &res) : sy_ledger_earn(c, &mv->m, &res);
    if (rc > 0) {
        reply_refusal(r, rc, &res, mv->m.customer_no, mv->m.point_type, mv->m.amount);
        return 1;
    }
    json_t *e = NULL;
    if (rc != SY_OK || (rc = entry_json(c, mv->m.tenant, res.entry_id, &e)) != SY_OK || !e)
        return rc ? rc : SY_ERR;
    json_object_set_new(e, "balance", json_integer(res.balance));
    char loc[64];
    snprintf(loc, sizeof loc, "/v1/ledger/%s", res.entry_id);
    sy_reply_header(r, "Location", loc);
    sy_req_audit_target(r, res.entry_id);
    sy_reply_json(r, 201, e);
    return 0;
}

static void points_move(sy_req *r, bool spend)
{
    static const char *const earn_fields[] = {"point_type", "amount",    "source",
                                              "reason",     "reference", NULL};
    static const char *const spend_fields[] = {"point_type", "amount",    "sink",
                                               "reason",     "reference", NULL};
    const char *account_field = spend ? "sink" : "source";
    json_t *body = sy_req_json_object(r);
    move_req *mv = sy_req_alloc(r, sizeof *mv);
    memset(mv, 0, sizeof *mv);
    sy_ledger_move *m = &mv->m;
    if (!body || !sy_v_only(r, body, spend ? spend_fields : earn_fields) ||
        !sy_v_string(r, body, "point_type", true, SY_POINT_TYPE_CODE_MAX, &m->point_type) ||
        !v_int(r, body, "amount", true, 1, SY_LEDGER_MAX_AMOUNT, &m->amount) ||
        !sy_v_string(r, body, account_field, !spend, SY_LEDGER_ACCOUNT_NAME_MAX, &m->account) ||
        !sy_v_string(r, body, "reason", false, SY_LEDGER_REASON_MAX, &m->reason) ||
        !sy_v_string(r, body, "reference", false, SY_LEDGER_REFERENCE_MAX, &m->reference))
        return;
    if (!sy_point_type_code_valid(m->point_type)) {
        sy_reply_problem(r, 400, "validation", "/point_type",
                         "no point type '%s' (see GET /v1/point-types)", m->point_type);
        return;
    }
    if (m->account && !sy_ledger_account_name_valid(m->account)) {
        char ptr[16];
        snprintf(ptr, sizeof ptr, "/%s", account_field);
        sy_reply_problem(r, 400, "validation", ptr,
                         "'%s' must be 1 to %d characters of A-Z a-z 0-9 _ . : -", account_field,
                         SY_LEDGER_ACCOUNT_NAME_MAX);
        return;
    }
    /* sink:mall holds exactly the mall's exchanges, each paying for one
     * grant (siyu check verifies it): spend there through the mall. */
    if (spend && m->account && !strcmp(m->account, SY_BENEFIT_MALL_SINK)) {
        sy_reply_problem(
            r, 400, "validation", "/sink",
            "sink 'mall' is the points mall's: exchange through POST /v1/mall/exchange");
        return;
    }
    const char *no = sy_req_param(r, "customer_no");
    if (!sy_customer_no_valid(no)) {
        sy_reply_problem(r, 404, "not-found", NULL, "no customer '%s'", no);
        return;
    }
    const sy_principal *who = sy_req_principal(r);
    const char *key = sy_req_header(r, "Idempotency-Key");
    mv->spend = spend;
    m->tenant = who->tenant;
    m->customer_no = no;
    m->operator_id = who->key_id;
    /* The same key the server keeps for 24 hours stays in the journal for
     * good: one key never moves points twice. */
    m->idempotency_key = key ? sy_req_strdup(r, key) : NULL;
    sy_req_write(r, apply_move, NULL, mv);
    sy_req_write_rerun(r, NULL); /* apply_move keeps nothing in mv */
}

void sy_api_points_earn(sy_req *r)
{
    points_move(r, false);
}

void sy_api_points_spend(sy_req *r)
{
    points_move(r, true);
}

/* ------------------------------------------------------------------ */
/* reverse and read one entry                                          */

/* Who owns the entry besides its customer: a points-mall grant (a spend
 * into sink:mall; *grant gets the grant's code, its reference), or a
 * campaign record (sy_campaign_entry_owner; *campaign gets its ID).  Both
 * stay empty for an entry nothing else refers to. */
static int entry_owner(sy_conn *c, const char *tenant, const char *id, char grant[72],
                       char campaign[72])
{
    static const char sql[] = "SELECT reference, credit_account, debit_account FROM ledger_entries"
                              " WHERE tenant_id = $1 AND id = $2";
    grant[0] = campaign[0] = '\0';
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, id);
    int rc = sy_stmt_step(st);
    char ref[4 * SY_LEDGER_REFERENCE_MAX + 1] = "", debit[96] = "", credit[96] = "";
    if (rc == SY_ROW) {
        snprintf(ref, sizeof ref, "%s", sy_stmt_is_null(st, 0) ? "" : sy_stmt_text(st, 0));
        snprintf(credit, sizeof credit, "%s", sy_stmt_text(st, 1));
        snprintf(debit, sizeof debit, "%s", sy_stmt_text(st, 2));
    }
    sy_stmt_reset(st);
    if (rc != SY_ROW)
        return rc == SY_DONE ? SY_OK : rc;
    if (!strcmp(credit, "sink:" SY_BENEFIT_MALL_SINK)) {
        snprintf(grant, 72, "%.71s", ref); /* a grant code (at most 32) */
        return SY_OK;
    }
    return sy_campaign_entry_owner(c, tenant, debit, credit, ref, campaign);
}

static int apply_reverse(sy_conn *c, sy_req *r, void *ctx)
{
    sy_ledger_reversal *rv = ctx;
    rv->now_ms = sy_req_now_ms(r);
    sy_ledger_result res;
    /* A mall exchange's spend is undone with its grant (siyu check holds
     * them together): revoking the grant reverses the spend. */
    char grant[72], campaign[72];
    int rc = entry_owner(c, rv->tenant, rv->entry_id, grant, campaign);
    if (rc != SY_OK)
        return rc;
    if (grant[0]) {
        sy_reply_problem(r, 409, "conflict", NULL,
                         "entry '%s' paid for points-mall grant '%s': revoke the grant (POST"
                         " /v1/grants/%s:revoke), which gives the points back",
                         rv->entry_id, grant, grant);
        sy_reply_extend(r, "grant", json_string(grant));
        return 1;
    }
    /* A campaign's entries stand with its own records (the draw, the
     * check-in, the budget spent; siyu check holds them together), and no
     * campaign step undoes them. */
    if (campaign[0]) {
        sy_reply_problem(r, 409, "conflict", NULL,
                         "entry '%s' belongs to campaign '%s' (a draw's cost, a make-up check-in"
                         " or a reward) and is not reversed on its own; to take points back,"
                         " spend them with a reason",
                         rv->entry_id, campaign);
        sy_reply_extend(r, "campaign", json_string(campaign));
        return 1;
    }
    rc = sy_ledger_reverse(c, rv, &res);
    if (rc > 0) {
        reply_refusal(r, rc, &res, "", "", 0);
        return 1;
    }
    json_t *e = NULL;
    if (rc != SY_OK || (rc = entry_json(c, rv->tenant, res.entry_id, &e)) != SY_OK || !e)
        return rc ? rc : SY_ERR;
    json_object_set_new(e, "balance", json_integer(res.balance));
    char loc[64];
    snprintf(loc, sizeof loc, "/v1/ledger/%s", res.entry_id);
    sy_reply_header(r, "Location", loc);
    sy_req_audit_target(r, rv->entry_id);
    sy_reply_json(r, 201, e);
    return 0;
}

void sy_api_ledger_reverse(sy_req *r)
{
    static const char *const fields[] = {"reason", NULL};
    json_t *body = sy_req_json_object(r);
    sy_ledger_reversal *rv = sy_req_alloc(r, sizeof *rv);
    memset(rv, 0, sizeof *rv);
    if (!body || !sy_v_only(r, body, fields) ||
        !sy_v_string(r, body, "reason", true, SY_LEDGER_REASON_MAX, &rv->reason))
        return;
    const char *id = sy_req_param(r, "entry_id");
    if (strlen(id) > SY_LEDGER_ID_MAX) {
        sy_reply_problem(r, 404, "not-found", NULL, "no ledger entry '%s'", id);
        return;
    }
    const sy_principal *who = sy_req_principal(r);
    const char *key = sy_req_header(r, "Idempotency-Key");
    rv->tenant = who->tenant;
    rv->entry_id = id;
    rv->operator_id = who->key_id;
    rv->idempotency_key = key ? sy_req_strdup(r, key) : NULL;
    sy_req_write(r, apply_reverse, NULL, rv);
}

void sy_api_ledger_get(sy_req *r)
{
    sy_app *app = sy_req_app(r);
    const char *id = sy_req_param(r, "entry_id");
    sy_conn *c = sy_store_acquire(app->store);
    json_t *e = NULL;
    int rc = entry_json(c, sy_req_principal(r)->tenant, id, &e);
    if (rc != SY_OK)
        sy_api_store_error(r, c);
    else if (!e)
        sy_reply_problem(r, 404, "not-found", NULL, "no ledger entry '%s'", id);
    else
        sy_reply_json(r, 200, e);
    sy_store_release(app->store, c);
}

/* ------------------------------------------------------------------ */
/* a customer's balances and history                                   */

/* Whether the customer exists; *merged_into gets the survivor's number
 * ("" if none; SY_CUSTOMER_NO_MAX + 1 bytes). */
static int customer_state(sy_conn *c, const char *tenant, const char *no, bool *exists,
                          char *merged_into)
{
    static const char sql[] =
        "SELECT merged_into FROM customers WHERE tenant_id = $1 AND customer_no = $2";
    merged_into[0] = '\0';
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, no);
    int rc = sy_stmt_step(st);
    *exists = rc == SY_ROW;
    if (rc == SY_ROW && !sy_stmt_is_null(st, 0))
        snprintf(merged_into, SY_CUSTOMER_NO_MAX + 1, "%s", sy_stmt_text(st, 0));
    sy_stmt_reset(st);
    return rc == SY_ROW || rc == SY_DONE ? SY_OK : rc;
}

/* One type's figures from its open, expiring lots (read in expiry order). */
typedef struct type_figures {
    int64_t due;     /* past expiry, not yet taken by the expiry job */
    int64_t soon;    /* expiring within 30 days */
    int64_t next_at; /* 0: none */
    int64_t next_amount;
} type_figures;

static int lot_figures(sy_conn *c, const char *tenant, const char *no, const char *type,
                       int64_t now, type_figures *f)
{
    static const char sql[] =
        "SELECT remaining, expires_at FROM point_lots WHERE tenant_id = $1 AND customer_no = $2"
        " AND point_type = $3 AND closed = 0 AND remaining > 0 AND expires_at IS NOT NULL"
        " ORDER BY expires_at";
    memset(f, 0, sizeof *f);
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, no);
    sy_stmt_bind_text(st, 3, type);
    int rc;
    while ((rc = sy_stmt_step(st)) == SY_ROW) {
        int64_t left = sy_stmt_i64(st, 0), at = sy_stmt_i64(st, 1);
        if (at <= now) {
            f->due += left;
            continue;
        }
        if (at <= now + EXPIRING_SOON_MS)
            f->soon += left;
        if (!f->next_at)
            f->next_at = at;
        if (at == f->next_at)
            f->next_amount += left;
    }
    sy_stmt_reset(st);
    return rc == SY_DONE ? SY_OK : rc;
}

static int balances(sy_conn *c, const char *tenant, const char *no, int64_t now, json_t *items)
{
    static const char sql[] =
        "SELECT p.code, p.name, COALESCE(a.balance, 0) FROM point_types p"
        " LEFT JOIN point_accounts a ON a.tenant_id = p.tenant_id AND a.point_type = p.code"
        " AND a.customer_no = $2 WHERE p.tenant_id = $1 ORDER BY p.code";
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, no);
    int rc;
    while ((rc = sy_stmt_step(st)) == SY_ROW)
        json_array_append_new(items, json_pack("{s:s, s:s, s:I}", "point_type", sy_stmt_text(st, 0),
                                               "name", sy_stmt_text(st, 1), "balance",
                                               (json_int_t)sy_stmt_i64(st, 2)));
    sy_stmt_reset(st);
    if (rc != SY_DONE)
        return rc;
    size_t i;
    json_t *it;
    json_array_foreach (items, i, it) {
        type_figures f;
        if ((rc = lot_figures(c, tenant, no, json_string_value(json_object_get(it, "point_type")),
                              now, &f)) != SY_OK)
            return rc;
        /* Points past their expiry are gone for the customer even before
         * the expiry job writes it down. */
        json_int_t bal = json_integer_value(json_object_get(it, "balance"));
        json_object_set_new(it, "balance", json_integer(bal - f.due));
        json_object_set_new(it, "expiring_30d", json_integer(f.soon));
        json_object_set_new(it, "next_expiry",
                            f.next_at ? json_pack("{s:o, s:I}", "at", sy_json_time(f.next_at),
                                                  "amount", (json_int_t)f.next_amount)
                                      : json_null());
    }
    return SY_OK;
}

void sy_api_points_balances(sy_req *r)
{
    sy_app *app = sy_req_app(r);
    const char *tenant = sy_req_principal(r)->tenant, *no = sy_req_param(r, "customer_no");
    int64_t now = sy_req_now_ms(r);
    sy_conn *c = sy_store_acquire(app->store);
    /* One read transaction: the balances and the lots are one state. */
    int rc = sy_conn_exec(c, "BEGIN");
    bool exists = false;
    char merged[SY_CUSTOMER_NO_MAX + 1];
    json_t *items = json_array();
    if (rc == SY_OK)
        rc = customer_state(c, tenant, no, &exists, merged);
    if (rc == SY_OK && exists)
        rc = balances(c, tenant, no, now, items);
    if (rc != SY_OK) {
        sy_api_store_error(r, c);
        json_decref(items);
    } else if (!exists) {
        sy_reply_problem(r, 404, "not-found", NULL, "no customer '%s'", no);
        json_decref(items);
    } else {
        json_t *o = json_pack("{s:s, s:o, s:o}", "customer_no", no, "items", items, "as_of",
                              sy_json_time(now));
        if (merged[0])
            json_object_set_new(o, "merged_into", json_string(merged));
        sy_reply_json(r, 200, o);
    }
    sy_conn_exec(c, "COMMIT");
    sy_store_release(app->store, c);
}

void sy_api_points_history(sy_req *r)
{
    /* CAST types the optional filter for PostgreSQL. */
    static const char sql[] =
        "SELECT id, kind, point_type, customer_no, amount, debit_account, credit_account, reason,"
        " reference, operator, idempotency_key, reverses, reversed_by, created_at, seq"
        " FROM ledger_entries WHERE tenant_id = $1 AND customer_no = $2"
        " AND (CAST($3 AS TEXT) IS NULL OR point_type = $3) AND seq < $4"
        " ORDER BY seq DESC LIMIT $5";
    int64_t limit, cursor = INT64_MAX;
    if (!sy_v_query_int(r, "limit", 1, 200, 50, &limit))
        return;
    const char *cur = sy_req_query(r, "cursor");
    if (cur && !sy_parse_i64(cur, 1, INT64_MAX, &cursor)) {
        sy_reply_problem(r, 400, "validation", "cursor", "not a cursor from this endpoint");
        return;
    }
    const char *type = sy_req_query(r, "point_type");
    sy_app *app = sy_req_app(r);
    const char *tenant = sy_req_principal(r)->tenant, *no = sy_req_param(r, "customer_no");
    sy_conn *c = sy_store_acquire(app->store);
    int rc = sy_conn_exec(c, "BEGIN");
    bool exists = false;
    char merged[SY_CUSTOMER_NO_MAX + 1];
    sy_point_type t;
    if (rc == SY_OK)
        rc = customer_state(c, tenant, no, &exists, merged);
    int trc = SY_OK;
    if (rc == SY_OK && exists && type)
        rc = (trc = sy_ledger_type_get(c, tenant, type, &t)) == SY_DONE ? SY_OK : trc;
    json_t *items = json_array();
    int64_t last = 0;
    sy_stmt *st = rc == SY_OK && exists && trc == SY_OK ? sy_conn_prepare(c, sql) : NULL;
    if (st) {
        sy_stmt_bind_text(st, 1, tenant);
        sy_stmt_bind_text(st, 2, no);
        sy_stmt_bind_text(st, 3, type);
        sy_stmt_bind_i64(st, 4, cursor);
        sy_stmt_bind_i64(st, 5, limit);
        while ((rc = sy_stmt_step(st)) == SY_ROW) {
            json_array_append_new(items, entry_from_row(st));
            last = sy_stmt_i64(st, 14);
        }
        sy_stmt_reset(st);
        rc = rc == SY_DONE ? SY_OK : rc;
        size_t i;
        json_t *e;
        json_array_foreach (items, i, e)
            if (rc == SY_OK)
                rc = add_allocations(c, tenant, e);
    }
    if (rc != SY_OK) {
        sy_api_store_error(r, c);
        json_decref(items);
    } else if (!exists) {
        sy_reply_problem(r, 404, "not-found", NULL, "no customer '%s'", no);
        json_decref(items);
    } else if (trc == SY_DONE) {
        sy_reply_problem(r, 400, "validation", "point_type",
                         "no point type '%s' (see GET /v1/point-types)", type);
        json_decref(items);
    } else {
        json_t *next = json_null();
        if (json_array_size(items) == (size_t)limit) {
            char buf[24];
            snprintf(buf, sizeof buf, "%lld", (long long)last);
            json_decref(next);
            next = json_string(buf);
        }
        sy_reply_json(
            r, 200,
            json_pack("{s:s, s:o, s:o}", "customer_no", no, "items", items, "next_cursor", next));
    }
    sy_conn_exec(c, "COMMIT");
    sy_store_release(app->store, c);
}

/* ------------------------------------------------------------------ */
/* the expiry job                                                      */

typedef struct expire_run {
    const char *tenant;
    int64_t now;
    sy_ledger_expiry out;
    json_t *items; /* NULL: not listed */
} expire_run;

static void list_expired(void *ud, const char *id, const char *no, const char *type, int64_t amount)
{
    expire_run *x = ud;
    if (x->items && json_array_size(x->items) < EXPIRY_ITEMS_SHOWN)
        json_array_append_new(x->items,
                              json_pack("{s:s, s:s, s:s, s:I}", "entry_id", id, "customer_no", no,
                                        "point_type", type, "amount", (json_int_t)amount));
}

static int run_expiry(sy_conn *c, expire_run *x)
{
    return sy_ledger_expire(c, x->tenant, x->now, EXPIRY_BATCH, list_expired, x, &x->out);
}

static void expire_run_free(void *p)
{
    expire_run *x = p;
    json_decref(x->items);
}

static int apply_expire(sy_conn *c, sy_req *r, void *ctx)
{
    expire_run *x = ctx;
    x->now = sy_req_now_ms(r);
    int rc = run_expiry(c, x);
    if (rc != SY_OK)
        return rc;
    sy_reply_json(r, 200,
                  json_pack("{s:I, s:I, s:I, s:b, s:O, s:o}", "entries", (json_int_t)x->out.entries,
                            "lots", (json_int_t)x->out.lots, "points", (json_int_t)x->out.points,
                            "more", x->out.more, "items", x->items, "as_of", sy_json_time(x->now)));
    return 0;
}

void sy_api_points_expire(sy_req *r)
{
    size_t len;
    sy_req_body(r, &len);
    static const char *const fields[] = {NULL};
    json_t *body = len ? sy_req_json_object(r) : NULL;
    if (len && (!body || !sy_v_only(r, body, fields)))
        return;
    expire_run *x = sy_req_alloc(r, sizeof *x);
    memset(x, 0, sizeof *x);
    x->tenant = sy_req_principal(r)->tenant;
    x->items = json_array();
    sy_req_on_free(r, expire_run_free, x);
    sy_req_write(r, apply_expire, NULL, x);
}

static int apply_expire_job(sy_conn *c, void *ctx)
{
    return run_expiry(c, ctx);
}

void sy_api_points_expire_job(sy_app *app)
{
    static const char sql[] = "SELECT id FROM tenants ORDER BY id";
    char **tenants = NULL;
    size_t n = 0;
    sy_conn *c = sy_store_acquire(app->store);
    sy_stmt *st = sy_conn_prepare(c, sql);
    while (st && sy_stmt_step(st) == SY_ROW) {
        tenants = sy_xrealloc(tenants, (n + 1) * sizeof *tenants);
        tenants[n++] = sy_xstrdup(sy_stmt_text(st, 0));
    }
    if (st)
        sy_stmt_reset(st);
    sy_store_release(app->store, c);
    for (size_t i = 0; i < n; i++) {
        /* Batches through the writer like any write, so requests keep
         * their turn between them. */
        expire_run x = {.tenant = tenants[i], .now = sy_now_ms()};
        sy_ledger_expiry total = {0};
        do {
            sy_mutation m = {.apply = apply_expire_job, .ctx = &x};
            if (sy_writer_run(app->writer, &m) != 0) {
                sy_warn("points expiry for tenant %s failed", tenants[i]);
                break;
            }
            total.entries += x.out.entries;
            total.lots += x.out.lots;
            total.points += x.out.points;
        } while (x.out.more);
        if (total.entries)
            sy_info("points expiry: tenant %s: %lld points in %lld lots, %lld entries", tenants[i],
                    (long long)total.points, (long long)total.lots, (long long)total.entries);
        free(tenants[i]);
    }
    free(tenants);
}

/* api_benefits.c — the benefits catalogue (权益库), grants, the points mall
 * (积分商城) and supplier reconciliation (对账) over HTTP.
 *
 * The rules live in benefits.c and run inside the writer's group-commit
 * transaction (sy_req_write), where the stock, limit and points checks and
 * the changes they allow cannot be separated by another write.  What the
 * writer cannot decide is eligibility: segment membership lives in the
 * in-memory index, so the handler evaluates the segments of the item, the
 * listing or the package for the one customer (the same evaluation as
 * GET /v1/segments/{id}/members/{customer_no}) before it submits the write.
 * A refusal rolls the mutation back and answers a problem whose type names
 * the rule: not-available, out-of-stock, limit-reached, not-eligible,
 * insufficient-points, not-redeemable, already-redeemed, not-revocable.
 * docs/rewards.md has the model. */
#include "api.h"
#include "app.h"
#include "benefits.h"
#include "customer.h"
#include "remember.h"
#include "segment_eval.h"
#include "util.h"
#include "validate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DAY_MS 86400000LL
#define EXPIRY_BATCH 5000 /* grants per expiry transaction */
#define MAX_CODES_PER_UPLOAD 100000
#define MAX_PACKAGE_LINES 50
#define MAX_REPORTED 1000 /* bad lines or duplicates listed in a reply */
#define PARAMS_MAX 4096   /* bytes of an item's params as JSON */
#define DELIVERY_MAX 2048 /* bytes of a delivery address as JSON */

/* ------------------------------------------------------------------ */
/* input                                                               */

/* An integer member in [min, max]; absent (or null) leaves *out. */
static bool v_int(sy_req *r, json_t *body, const char *ptr, const char *field, bool required,
                  int64_t min, int64_t max, int64_t *out)
{
    json_t *v = json_object_get(body, field);
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

static bool v_bool(sy_req *r, json_t *body, const char *field, bool *out)
{
    json_t *v = json_object_get(body, field);
    if (!v || json_is_null(v))
        return true;
    if (!json_is_boolean(v)) {
        char ptr[64];
        snprintf(ptr, sizeof ptr, "/%s", field);
        sy_reply_problem(r, 400, "validation", ptr, "'%s' must be true or false", field);
        return false;
    }
    *out = json_is_true(v);
    return true;
}

static bool v_code(sy_req *r, json_t *body, const char *field, const char **out)
{
    char ptr[64];
    snprintf(ptr, sizeof ptr, "/%s", field);
    if (!sy_v_string(r, body, field, true, SY_BENEFIT_CODE_MAX, out))
        return false;
    if (!sy_benefit_code_valid(*out)) {
        sy_reply_problem(r, 400, "validation", ptr,
                         "'%s' must be 1 to %d characters of a-z 0-9 _ -, starting with a letter"
                         " or digit",
                         field, SY_BENEFIT_CODE_MAX);
        return false;
    }
    return true;
}

/* An RFC 3339 time; absent leaves *out. */
static bool v_time(sy_req *r, json_t *body, const char *field, int64_t *out)
{
    const char *s = NULL;
    if (!sy_v_string(r, body, field, false, 40, &s))
        return false;
    if (s && !sy_parse_time(s, out)) {
        char ptr[64];
        snprintf(ptr, sizeof ptr, "/%s", field);
        sy_reply_problem(
            r, 400, "validation", ptr,
            "'%s' must be an RFC 3339 time with a zone, e.g. 2026-12-01T00:00:00+08:00", field);
        return false;
    }
    return true;
}

/* "limits": {"per_day", "per_month", "total"}, each optional. */
static bool v_limits(sy_req *r, json_t *body, sy_benefit_limits *out)
{
    static const char *const fields[] = {"per_day", "per_month", "total", NULL};
    *out = (sy_benefit_limits){SY_BENEFIT_UNSET, SY_BENEFIT_UNSET, SY_BENEFIT_UNSET};
    json_t *l = json_object_get(body, "limits");
    if (!l || json_is_null(l))
        return true;
    if (!json_is_object(l)) {
        sy_reply_problem(r, 400, "validation", "/limits",
                         "'limits' must be an object with per_day, per_month and total");
        return false;
    }
    const char *key;
    json_t *v;
    json_object_foreach (l, key, v) {
        bool known = false;
        for (const char *const *f = fields; *f; f++)
            known |= !strcmp(*f, key);
        if (!known) {
            char ptr[96];
            snprintf(ptr, sizeof ptr, "/limits/%.60s", key);
            sy_reply_problem(r, 400, "validation", ptr, "unknown field '%.60s' in 'limits'", key);
            return false;
        }
    }
    return v_int(r, l, "/limits/per_day", "per_day", false, 1, SY_BENEFIT_LIMIT_MAX, &out->day) &&
           v_int(r, l, "/limits/per_month", "per_month", false, 1, SY_BENEFIT_LIMIT_MAX,
                 &out->month) &&
           v_int(r, l, "/limits/total", "total", false, 1, SY_BENEFIT_LIMIT_MAX, &out->total);
}

static json_t *limits_json(sy_stmt *st, int col)
{
    json_t *o = json_object();
    static const char *const names[] = {"per_day", "per_month", "total"};
    for (int i = 0; i < 3; i++)
        json_object_set_new(o, names[i],
                            sy_stmt_is_null(st, col + i) ? json_null()
                                                         : json_integer(sy_stmt_i64(st, col + i)));
    return o;
}

/* The tenant's index and schema, for a segment check; NULL (with a 500
 * recorded) when they are not available.  Release the schema. */
static sy_index *tenant_index(sy_req *r, sy_attr_set **schema)
{
    sy_app *app = sy_req_app(r);
    const char *tenant = sy_req_principal(r)->tenant;
    *schema = sy_schemas_get(app->schemas, tenant);
    sy_index *ix = *schema ? sy_indexes_get(app->indexes, tenant) : NULL;
    if (!ix) {
        sy_attr_set_release(*schema);
        *schema = NULL;
        sy_reply_problem(r, 500, "internal", NULL, "the tenant's index is not available");
    }
    return ix;
}

/* Whether customer `no` is in the saved segment `id` or the segment
 * `expr` (one of them NULL), evaluated among that one customer in ix: 1
 * yes, 0 no (also a segment that no longer evaluates, which admits no one),
 * -1 no such customer in the index. */
static int segment_holds(sy_index *ix, sy_attr_set *schema, const char *tenant, const char *id,
                         const char *expr, const char *no, int64_t now_ms)
{
    sy_seg_error e;
    memset(&e, 0, sizeof e);
    sy_seg_node *ast = expr ? sy_seg_parse(expr, strlen(expr), &e) : NULL;
    int in = 0;
    sy_index_rdlock(ix);
    uint32_t dense;
    if (!sy_index_dense(ix, no, &dense)) {
        in = -1;
    } else {
        /* a lookup per term */
        const sy_seg_node *node = expr ? ast : sy_index_segment(ix, id);
        roaring_bitmap_t *one = roaring_bitmap_from_range(dense, (uint64_t)dense + 1, 1);
        roaring_bitmap_t *b =
            node ? sy_seg_eval_index_among(ix, schema, now_ms, node, one, &e) : NULL;
        roaring_bitmap_free(one);
        if (!b)
            sy_warn("benefits %s: segment %s no longer evaluates; it admits no one", tenant,
                    id ? id : expr);
        in = b && roaring_bitmap_contains(b, dense);
        if (b)
            roaring_bitmap_free(b);
    }
    sy_index_unlock(ix);
    sy_seg_free(ast);
    return in;
}

int sy_api_reward_eligible(void *req, const char *segment_id, const char *expression,
                           const char *customer_no)
{
    sy_req *r = req;
    sy_app *app = sy_req_app(r);
    const char *tenant = sy_req_principal(r)->tenant;
    sy_attr_set *schema = sy_schemas_get(app->schemas, tenant);
    sy_index *ix = schema ? sy_indexes_get(app->indexes, tenant) : NULL;
    if (!ix) {
        sy_attr_set_release(schema);
        sy_error("benefits %s: no index to decide a reward's eligibility", tenant);
        return -1;
    }
    int in =
        segment_holds(ix, schema, tenant, segment_id, expression, customer_no, sy_req_now_ms(r));
    sy_attr_set_release(schema);
    return in > 0;
}

/* "segment_id" (a saved segment) or "segment_expression", at most one:
 * the id must name a saved segment; the expression must parse and fit the
 * tenant's schema and catalogue. */
static bool v_segment(sy_req *r, json_t *body, const char **id, const char **expr)
{
    *id = *expr = NULL;
    if (!sy_v_string(r, body, "segment_id", false, 64, id) ||
        !sy_v_string(r, body, "segment_expression", false, 4000, expr))
        return false;
    if (*id && *expr) {
        sy_reply_problem(r, 400, "validation", "/segment_expression",
                         "give 'segment_id' or 'segment_expression', not both");
        return false;
    }
    if (!*id && !*expr)
        return true;
    sy_attr_set *schema;
    sy_index *ix = tenant_index(r, &schema);
    if (!ix)
        return false;
    sy_seg_error e;
    memset(&e, 0, sizeof e);
    sy_seg_node *ast = *expr ? sy_seg_parse(*expr, strlen(*expr), &e) : NULL;
    bool ok = !*expr || ast;
    if (ok) {
        sy_index_rdlock(ix);
        if (*id) {
            ok = sy_index_segment(ix, *id) != NULL;
        } else {
            /* checked, not computed: evaluated among no one */
            roaring_bitmap_t *none = roaring_bitmap_create();
            roaring_bitmap_t *b = sy_seg_eval_index_among(ix, schema, sy_now_ms(), ast, none, &e);
            roaring_bitmap_free(none);
            ok = b != NULL;
            if (b)
                roaring_bitmap_free(b);
        }
        sy_index_unlock(ix);
    }
    sy_seg_free(ast);
    sy_attr_set_release(schema);
    if (!ok && *id)
        sy_reply_problem(r, 400, "validation", "/segment_id",
                         "no saved segment '%s' (see GET /v1/segments)", *id);
    else if (!ok)
        sy_reply_problem(r, 400, "validation", "/segment_expression", "at offset %d: %s", e.pos,
                         e.msg);
    return ok;
}

/* ------------------------------------------------------------------ */
/* eligibility                                                         */

enum { ADMIT_YES, ADMIT_NO, ADMIT_NO_CUSTOMER, ADMIT_ERROR };

/* The (segment_id, segment_expression) pairs of sql's rows for code, as
 * n * 2 strings (either of a pair may be NULL; a pair of two NULLs, which
 * admits everyone, is left out).  *rows: the rows read (0: no such code).
 * SY_OK or a store error. */
static int read_rules(sy_conn *c, const char *sql, const char *tenant, const char *code,
                      char ***out, size_t *n, size_t *rows)
{
    *out = NULL;
    *n = *rows = 0;
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, code);
    size_t cap = 0;
    int rc;
    while ((rc = sy_stmt_step(st)) == SY_ROW) {
        (*rows)++;
        if (sy_stmt_is_null(st, 0) && sy_stmt_is_null(st, 1))
            continue;
        if (*n + 2 > cap) {
            cap = cap ? cap * 2 : 8;
            *out = sy_xrealloc(*out, cap * sizeof **out);
        }
        for (int col = 0; col < 2; col++)
            (*out)[(*n)++] = sy_stmt_is_null(st, col) ? NULL : sy_xstrdup(sy_stmt_text(st, col));
    }
    sy_stmt_reset(st);
    return rc == SY_DONE ? SY_OK : rc;
}

static void free_strings(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* Whether the customer is in every segment the rows of sql name: sql takes
 * the tenant as $1 and code as $2 and returns (segment_id,
 * segment_expression) rows; a row with both NULL admits everyone.  A
 * segment that no longer exists or evaluates admits no one (and is
 * logged).  *which gets the first segment that refused.
 *
 * The rows are remembered (remember.h): listings, items, packages and
 * their lines are only ever inserted — no statement changes their segment
 * columns or deletes them — so an exchange need not open a read
 * transaction to learn them again.  A code not found is read each time. */
static int admit(sy_req *r, const char *sql, const char *code, const char *no, char *which,
                 size_t which_len)
{
    sy_app *app = sy_req_app(r);
    const char *tenant = sy_req_principal(r)->tenant;
    const sy_remembered *rm = sy_remember_get(sql, tenant, code);
    char **local = NULL;
    size_t nlocal = 0;
    if (!rm) {
        size_t rows;
        uint64_t epoch = sy_remember_epoch();
        sy_conn *c = sy_store_acquire(app->store);
        if (read_rules(c, sql, tenant, code, &local, &nlocal, &rows) != SY_OK) {
            free_strings(local, nlocal);
            sy_api_store_error(r, c);
            sy_store_release(app->store, c);
            return ADMIT_ERROR;
        }
        sy_store_release(app->store, c);
        if (rows &&
            (rm = sy_remember_put(sql, tenant, code, nlocal, (const char *const *)local, epoch))) {
            free_strings(local, nlocal);
            local = NULL;
            nlocal = 0;
        }
    }
    char *const *pairs = rm ? rm->v : local;
    size_t n = (rm ? rm->n : nlocal) / 2;
    int out = ADMIT_YES;
    if (n == 0) {
        free_strings(local, nlocal);
        return out; /* no segment: everyone (the hot path of most exchanges) */
    }
    sy_attr_set *schema = NULL;
    sy_index *ix = tenant_index(r, &schema);
    if (!ix)
        out = ADMIT_ERROR;
    for (size_t i = 0; i < n && out == ADMIT_YES; i++) {
        const char *id = pairs[2 * i], *expr = pairs[2 * i + 1];
        int in = segment_holds(ix, schema, tenant, id, expr, no, sy_req_now_ms(r));
        if (in < 0) {
            out = ADMIT_NO_CUSTOMER;
        } else if (!in) {
            out = ADMIT_NO;
            snprintf(which, which_len, "%s", id ? id : expr);
        }
    }
    sy_attr_set_release(schema);
    free_strings(local, nlocal);
    if (out == ADMIT_NO_CUSTOMER)
        sy_reply_problem(r, 404, "not-found", NULL, "no customer '%s'", no);
    else if (out == ADMIT_NO)
        sy_reply_problem(r, 403, "not-eligible", NULL,
                         "customer '%s' is not in the segment %s that this benefit is for", no,
                         which);
    return out;
}

/* ------------------------------------------------------------------ */
/* refusals                                                            */

static void reply_refusal(sy_req *r, int code, const sy_benefit_result *res, const char *what)
{
    switch (code) {
    case SY_BENEFIT_EXISTS:
        sy_reply_problem(r, 409, "conflict", "/code", "%s exists already", what);
        break;
    case SY_BENEFIT_UNKNOWN_SUPPLIER:
        sy_reply_problem(r, 400, "validation", "/supplier",
                         "no supplier '%s' (see GET /v1/benefits/suppliers)", what);
        break;
    case SY_BENEFIT_UNKNOWN_ITEM:
        sy_reply_problem(r, 404, "not-found", "/item", "no benefit item '%s'", what);
        break;
    case SY_BENEFIT_UNKNOWN_PACKAGE:
        sy_reply_problem(r, 404, "not-found", "/package", "no benefit package '%s'", what);
        break;
    case SY_BENEFIT_UNKNOWN_LISTING:
        sy_reply_problem(r, 404, "not-found", "/listing", "no mall listing '%s'", what);
        break;
    case SY_BENEFIT_UNKNOWN_TYPE:
        sy_reply_problem(r, 400, "validation", "/point_type",
                         "no point type '%s' (see GET /v1/point-types)", what);
        break;
    case SY_BENEFIT_NOT_VOUCHER:
        sy_reply_problem(r, 409, "conflict", NULL,
                         "item '%s' is not a voucher: it has no code pool (add stock instead)",
                         what);
        break;
    case SY_BENEFIT_IS_VOUCHER:
        sy_reply_problem(r, 409, "conflict", "/add",
                         "item '%s' is a voucher: its stock is its code pool (upload codes)", what);
        break;
    case SY_BENEFIT_NO_CUSTOMER:
        sy_reply_problem(r, 404, "not-found", "/customer_no", "no customer '%s'", what);
        break;
    case SY_BENEFIT_MERGED:
        sy_reply_problem(r, 409, "conflict", "/customer_no",
                         "customer '%s' was merged into '%s'; issue to that one", what, res->other);
        break;
    case SY_BENEFIT_NOT_AVAILABLE:
        sy_reply_problem(r, 409, "not-available", NULL,
                         "'%s' is not available now (outside its availability window, or the"
                         " listing is inactive); nothing was issued",
                         what);
        break;
    case SY_BENEFIT_OUT_OF_STOCK:
        sy_reply_problem(r, 409, "out-of-stock", NULL,
                         "item '%s' has no stock left; nothing was issued", res->other);
        break;
    case SY_BENEFIT_LIMIT_REACHED:
        sy_reply_problem(r, 409, "limit-reached", NULL,
                         "the customer holds the most grants the %s limit allows (%lld); nothing"
                         " was issued",
                         res->other, (long long)res->limit);
        sy_reply_extend(r, "limit", json_string(res->other));
        sy_reply_extend(r, "max", json_integer(res->limit));
        break;
    case SY_BENEFIT_NEEDS_DELIVERY:
        sy_reply_problem(r, 400, "validation", "/delivery",
                         "'%s' is physical goods: 'delivery' (the address) is required", what);
        break;
    case SY_BENEFIT_INSUFFICIENT:
        sy_reply_problem(r, 409, "insufficient-points", NULL,
                         "the customer has %lld points of the listing's type available, fewer than"
                         " its price; nothing was spent",
                         (long long)res->balance);
        sy_reply_extend(r, "available", json_integer(res->balance));
        break;
    case SY_BENEFIT_KEY_USED:
        sy_reply_problem(r, 409, "conflict", "Idempotency-Key",
                         "this Idempotency-Key was used by another request (%s)", res->other);
        break;
    case SY_BENEFIT_NO_GRANT:
        sy_reply_problem(r, 404, "not-found", NULL, "no grant '%s'", what);
        break;
    case SY_BENEFIT_NOT_OWNER:
        /* Not 403: the caller learns nothing about other customers' codes. */
        sy_reply_problem(r, 404, "not-found", "/customer_no", "no grant '%s' for this customer",
                         what);
        break;
    case SY_BENEFIT_NOT_REDEEMABLE:
        sy_reply_problem(r, 409, "not-redeemable", NULL, "grant '%s' cannot be redeemed: %s", what,
                         !strcmp(res->other, "goods")
                             ? "goods are redeemed by their delivery (POST …:fulfil)"
                             : res->other);
        sy_reply_extend(r, "grant_status", json_string(res->other));
        break;
    case SY_BENEFIT_ALREADY_REDEEMED:
        sy_reply_problem(r, 409, "already-redeemed", "/reference",
                         "grant '%s' was redeemed before under another reference; a retry of"
                         " that redemption must send the same reference",
                         what);
        sy_reply_extend(r, "grant_status", json_string("redeemed"));
        break;
    case SY_BENEFIT_NOT_REVOCABLE:
        sy_reply_problem(r, 409, "not-revocable", NULL,
                         "grant '%s' cannot be revoked (%s): only issued grants, and goods"
                         " before they ship",
                         what, res->other);
        break;
    case SY_BENEFIT_BAD_FULFILMENT:
        sy_reply_problem(r, 409, "conflict", "/status",
                         "grant '%s' (%s) cannot move to that fulfilment status: goods move"
                         " pending -> shipped -> delivered while issued",
                         what, res->other);
        break;
    default:
        sy_reply_problem(r, 500, "internal", NULL, "unexpected benefits answer %d", code);
        break;
    }
}

/* ------------------------------------------------------------------ */
/* suppliers                                                           */

static json_t *supplier_row(sy_stmt *st)
{
    return json_pack("{s:s, s:s, s:s, s:o}", "code", sy_stmt_text(st, 0), "name",
                     sy_stmt_text(st, 1), "contact", sy_stmt_text(st, 2), "created_at",
                     sy_json_time(sy_stmt_i64(st, 3)));
}

void sy_api_suppliers_list(sy_req *r)
{
    static const char sql[] = "SELECT code, name, contact, created_at FROM benefit_suppliers"
                              " WHERE tenant_id = $1 ORDER BY code";
    json_t *items = sy_api_tenant_rows(r, sql, supplier_row);
    if (items)
        sy_reply_json(r, 200, json_pack("{s:o}", "items", items));
}

/* Reads one row by (tenant, code) through row(); replies 404 naming what. */
/* shown (may be NULL) trims the row for the caller's role before it goes out. */
static void get_one(sy_req *r, const char *sql, const char *param, const char *what,
                    json_t *(*row)(sy_stmt *st), void (*shown)(sy_req *r, json_t *o))
{
    sy_app *app = sy_req_app(r);
    const char *code = sy_req_param(r, param);
    sy_conn *c = sy_store_acquire(app->store);
    sy_stmt *st = sy_conn_prepare(c, sql);
    int rc = SY_ERR;
    json_t *o = NULL;
    if (st) {
        sy_stmt_bind_text(st, 1, sy_req_principal(r)->tenant);
        sy_stmt_bind_text(st, 2, code);
        rc = sy_stmt_step(st);
        if (rc == SY_ROW)
            o = row(st);
        sy_stmt_reset(st);
    }
    if (o && shown)
        shown(r, o);
    if (o)
        sy_reply_json(r, 200, o);
    else if (rc == SY_DONE)
        sy_reply_problem(r, 404, "not-found", NULL, "no %s '%s'", what, code);
    else
        sy_api_store_error(r, c);
    sy_store_release(app->store, c);
}

void sy_api_suppliers_get(sy_req *r)
{
    static const char sql[] = "SELECT code, name, contact, created_at FROM benefit_suppliers"
                              " WHERE tenant_id = $1 AND code = $2";
    get_one(r, sql, "code", "supplier", supplier_row, NULL);
}

typedef struct supplier_req {
    const char *code, *name, *contact;
} supplier_req;

static int apply_supplier_create(sy_conn *c, sy_req *r, void *ctx)
{
    supplier_req *s = ctx;
    int64_t now = sy_req_now_ms(r);
    int rc = sy_benefit_supplier_create(c, sy_req_principal(r)->tenant, s->code, s->name,
                                        s->contact, now);
    if (rc > 0) {
        char what[96];
        snprintf(what, sizeof what, "supplier '%s'", s->code);
        reply_refusal(r, rc, NULL, what);
        return 1;
    }
    if (rc != SY_OK)
        return rc;
    char loc[128];
    snprintf(loc, sizeof loc, "/v1/benefits/suppliers/%s", s->code);
    sy_reply_header(r, "Location", loc);
    sy_req_audit_target(r, s->code);
    sy_reply_json(r, 201,
                  json_pack("{s:s, s:s, s:s, s:o}", "code", s->code, "name", s->name, "contact",
                            s->contact ? s->contact : "", "created_at", sy_json_time(now)));
    return 0;
}

void sy_api_suppliers_create(sy_req *r)
{
    static const char *const fields[] = {"code", "name", "contact", NULL};
    json_t *body = sy_req_json_object(r);
    supplier_req *s = sy_req_alloc(r, sizeof *s);
    memset(s, 0, sizeof *s);
    if (!body || !sy_v_only(r, body, fields) || !v_code(r, body, "code", &s->code) ||
        !sy_v_string(r, body, "name", true, SY_BENEFIT_NAME_MAX, &s->name) ||
        !sy_v_string(r, body, "contact", false, 200, &s->contact))
        return;
    sy_req_write(r, apply_supplier_create, NULL, s);
}

/* ------------------------------------------------------------------ */
/* items                                                               */

#define ITEM_COLUMNS                                                                               \
    "code, name, kind, supplier, face_value, cost_price, params, total_stock, remaining,"          \
    " limit_day, limit_month, limit_total, available_from, available_until, validity_days,"        \
    " segment_id, segment_expression, revoke_returns_stock, created_at, updated_at"

static json_t *time_or_null(sy_stmt *st, int col)
{
    return sy_stmt_is_null(st, col) ? json_null() : sy_json_time(sy_stmt_i64(st, col));
}

static json_t *text_or_null(sy_stmt *st, int col)
{
    return sy_stmt_is_null(st, col) ? json_null() : json_string(sy_stmt_text(st, col));
}

static json_t *int_or_null(sy_stmt *st, int col)
{
    return sy_stmt_is_null(st, col) ? json_null() : json_integer(sy_stmt_i64(st, col));
}

static json_t *item_row(sy_stmt *st)
{
    json_t *params = json_loads(sy_stmt_text(st, 6), 0, NULL);
    json_t *o = json_pack(
        "{s:s, s:s, s:s, s:s, s:I, s:I, s:o, s:I, s:I, s:o}", "code", sy_stmt_text(st, 0), "name",
        sy_stmt_text(st, 1), "kind", sy_stmt_text(st, 2), "supplier", sy_stmt_text(st, 3),
        "face_value", (json_int_t)sy_stmt_i64(st, 4), "cost_price", (json_int_t)sy_stmt_i64(st, 5),
        "params", params ? params : json_object(), "total_stock", (json_int_t)sy_stmt_i64(st, 7),
        "remaining", (json_int_t)sy_stmt_i64(st, 8), "limits", limits_json(st, 9));
    json_object_set_new(o, "available_from", time_or_null(st, 12));
    json_object_set_new(o, "available_until", time_or_null(st, 13));
    json_object_set_new(o, "validity_days", int_or_null(st, 14));
    json_object_set_new(o, "segment_id", text_or_null(st, 15));
    json_object_set_new(o, "segment_expression", text_or_null(st, 16));
    json_object_set_new(o, "revoke_returns_stock", json_boolean(sy_stmt_i64(st, 17)));
    json_object_set_new(o, "created_at", sy_json_time(sy_stmt_i64(st, 18)));
    json_object_set_new(o, "updated_at", sy_json_time(sy_stmt_i64(st, 19)));
    return o;
}

void sy_api_items_list(sy_req *r)
{
    static const char sql[] =
        "SELECT " ITEM_COLUMNS " FROM benefit_items WHERE tenant_id = $1 ORDER BY code";
    json_t *items = sy_api_tenant_rows(r, sql, item_row);
    if (items)
        sy_reply_json(r, 200, json_pack("{s:o}", "items", items));
}

static const char sql_item_one[] =
    "SELECT " ITEM_COLUMNS " FROM benefit_items WHERE tenant_id = $1 AND code = $2";

void sy_api_items_get(sy_req *r)
{
    get_one(r, sql_item_one, "code", "benefit item", item_row, NULL);
}

/* Replies 201 with the row sql reads for code (tenant $1, code $2). */
static int reply_created(sy_conn *c, sy_req *r, const char *sql, const char *code,
                         json_t *(*row)(sy_stmt *st), const char *loc_prefix, int status)
{
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, sy_req_principal(r)->tenant);
    sy_stmt_bind_text(st, 2, code);
    int rc = sy_stmt_step(st);
    json_t *o = rc == SY_ROW ? row(st) : NULL;
    sy_stmt_reset(st);
    if (!o)
        return rc == SY_DONE ? SY_ERR : rc;
    if (loc_prefix) {
        char loc[160];
        snprintf(loc, sizeof loc, "%s%s", loc_prefix, code);
        sy_reply_header(r, "Location", loc);
    }
    sy_req_audit_target(r, code);
    sy_reply_json(r, status, o);
    return SY_OK;
}

static int apply_item_create(sy_conn *c, sy_req *r, void *ctx)
{
    sy_benefit_item *it = ctx;
    it->now_ms = sy_req_now_ms(r);
    int rc = sy_benefit_item_create(c, sy_req_principal(r)->tenant, it);
    if (rc > 0) {
        char what[96];
        if (rc == SY_BENEFIT_EXISTS)
            snprintf(what, sizeof what, "item '%s'", it->code);
        else
            snprintf(what, sizeof what, "%s", it->supplier);
        reply_refusal(r, rc, NULL, what);
        return 1;
    }
    if (rc != SY_OK)
        return rc;
    return reply_created(c, r, sql_item_one, it->code, item_row, "/v1/benefits/items/", 201);
}

/* The kind's parameters: a coupon's threshold (fen, required), a financial
 * right's "right" (rate_discount or fee_waiver, required); anything else
 * is the bank's own. */
static bool v_params(sy_req *r, json_t *body, sy_benefit_kind kind, const char **out)
{
    json_t *p = json_object_get(body, "params");
    if (p && !json_is_null(p) && !json_is_object(p)) {
        sy_reply_problem(r, 400, "validation", "/params", "'params' must be an object");
        return false;
    }
    if (kind == SY_BENEFIT_COUPON) {
        json_t *t = p ? json_object_get(p, "threshold") : NULL;
        if (!t || !json_is_integer(t) || json_integer_value(t) < 0 ||
            json_integer_value(t) > SY_BENEFIT_MONEY_MAX) {
            sy_reply_problem(r, 400, "validation", "/params/threshold",
                             "a coupon needs 'params.threshold': the smallest payment it applies"
                             " to, in fen (0: any)");
            return false;
        }
    }
    if (kind == SY_BENEFIT_FINANCIAL) {
        const char *right = p ? json_string_value(json_object_get(p, "right")) : NULL;
        if (!right || (strcmp(right, "rate_discount") != 0 && strcmp(right, "fee_waiver") != 0)) {
            sy_reply_problem(r, 400, "validation", "/params/right",
                             "a financial right needs 'params.right': rate_discount or"
                             " fee_waiver");
            return false;
        }
    }
    if (!p || json_is_null(p)) {
        *out = "{}";
        return true;
    }
    char *s = json_dumps(p, JSON_COMPACT | JSON_SORT_KEYS);
    if (strlen(s) > PARAMS_MAX) {
        free(s);
        sy_reply_problem(r, 400, "validation", "/params", "'params' must be at most %d bytes",
                         PARAMS_MAX);
        return false;
    }
    *out = sy_req_strdup(r, s);
    free(s);
    return true;
}

void sy_api_items_create(sy_req *r)
{
    static const char *const fields[] = {"code",
                                         "name",
                                         "kind",
                                         "supplier",
                                         "face_value",
                                         "cost_price",
                                         "params",
                                         "stock",
                                         "limits",
                                         "available_from",
                                         "available_until",
                                         "validity_days",
                                         "segment_id",
                                         "segment_expression",
                                         "revoke_returns_stock",
                                         NULL};
    json_t *body = sy_req_json_object(r);
    sy_benefit_item *it = sy_req_alloc(r, sizeof *it);
    memset(it, 0, sizeof *it);
    const char *kind = NULL;
    it->stock = 0;
    it->available_from = it->available_until = it->validity_days = SY_BENEFIT_UNSET;
    if (!body || !sy_v_only(r, body, fields) || !v_code(r, body, "code", &it->code) ||
        !sy_v_string(r, body, "name", true, SY_BENEFIT_NAME_MAX, &it->name) ||
        !sy_v_string(r, body, "kind", true, 16, &kind))
        return;
    if (!sy_benefit_kind_parse(kind, &it->kind)) {
        sy_reply_problem(r, 400, "validation", "/kind",
                         "'kind' must be coupon, voucher, goods or financial");
        return;
    }
    bool voucher = it->kind == SY_BENEFIT_VOUCHER;
    if (!v_code(r, body, "supplier", &it->supplier) ||
        !v_int(r, body, "/face_value", "face_value", true, 0, SY_BENEFIT_MONEY_MAX,
               &it->face_value) ||
        !v_int(r, body, "/cost_price", "cost_price", true, 0, SY_BENEFIT_MONEY_MAX,
               &it->cost_price) ||
        !v_params(r, body, it->kind, &it->params))
        return;
    if (voucher && json_object_get(body, "stock")) {
        sy_reply_problem(r, 400, "validation", "/stock",
                         "a voucher's stock is its code pool: upload codes to"
                         " /v1/benefits/items/{code}/codes instead");
        return;
    }
    if (!v_int(r, body, "/stock", "stock", !voucher, 0, SY_BENEFIT_STOCK_MAX, &it->stock) ||
        !v_limits(r, body, &it->limits) ||
        !v_time(r, body, "available_from", &it->available_from) ||
        !v_time(r, body, "available_until", &it->available_until) ||
        !v_int(r, body, "/validity_days", "validity_days", it->kind == SY_BENEFIT_COUPON, 0,
               SY_BENEFIT_VALIDITY_DAYS_MAX, &it->validity_days) ||
        !v_bool(r, body, "revoke_returns_stock", &it->revoke_returns_stock))
        return;
    if (it->available_from != SY_BENEFIT_UNSET && it->available_until != SY_BENEFIT_UNSET &&
        it->available_until <= it->available_from) {
        sy_reply_problem(r, 400, "validation", "/available_until",
                         "'available_until' must be after 'available_from'");
        return;
    }
    if (voucher && it->revoke_returns_stock) {
        sy_reply_problem(r, 400, "validation", "/revoke_returns_stock",
                         "a voucher's code was shown to the customer: revoking it cannot return"
                         " it to the pool");
        return;
    }
    if (!v_segment(r, body, &it->segment_id, &it->segment_expression))
        return;
    it->operator_id = sy_req_principal(r)->key_id;
    sy_req_write(r, apply_item_create, NULL, it);
}

typedef struct stock_req {
    const char *item, *reason;
    int64_t add;
} stock_req;

static int apply_stock_add(sy_conn *c, sy_req *r, void *ctx)
{
    stock_req *s = ctx;
    int64_t total, remaining;
    int rc =
        sy_benefit_stock_add(c, sy_req_principal(r)->tenant, s->item, s->add, s->reason,
                             sy_req_principal(r)->key_id, sy_req_now_ms(r), &total, &remaining);
    if (rc > 0) {
        reply_refusal(r, rc, NULL, s->item);
        return 1;
    }
    if (rc != SY_OK)
        return rc;
    sy_req_audit_target(r, s->item);
    sy_reply_json(r, 200,
                  json_pack("{s:s, s:I, s:I, s:I}", "item", s->item, "added", (json_int_t)s->add,
                            "total_stock", (json_int_t)total, "remaining", (json_int_t)remaining));
    return 0;
}

void sy_api_items_stock(sy_req *r)
{
    static const char *const fields[] = {"add", "reason", NULL};
    json_t *body = sy_req_json_object(r);
    stock_req *s = sy_req_alloc(r, sizeof *s);
    memset(s, 0, sizeof *s);
    if (!body || !sy_v_only(r, body, fields) ||
        !v_int(r, body, "/add", "add", true, 1, SY_BENEFIT_STOCK_MAX, &s->add) ||
        !sy_v_string(r, body, "reason", true, SY_LEDGER_REASON_MAX, &s->reason))
        return;
    s->item = sy_req_param(r, "code");
    sy_req_write(r, apply_stock_add, NULL, s);
}

/* GET /v1/benefits/items/{code}/stock: the item's stock and its journal,
 * newest move first, by keyset cursor. */
void sy_api_items_stock_moves(sy_req *r)
{
    static const char sql[] =
        "SELECT id, delta, reason, operator, created_at FROM benefit_stock_moves"
        " WHERE tenant_id = $1 AND item = $2 AND id < $3 ORDER BY id DESC LIMIT $4";
    int64_t limit, cursor = INT64_MAX;
    if (!sy_v_query_int(r, "limit", 1, 500, 100, &limit))
        return;
    const char *cur = sy_req_query(r, "cursor");
    if (cur && !sy_parse_i64(cur, 1, INT64_MAX, &cursor)) {
        sy_reply_problem(r, 400, "validation", "cursor", "not a cursor from this endpoint");
        return;
    }
    sy_app *app = sy_req_app(r);
    const char *tenant = sy_req_principal(r)->tenant, *code = sy_req_param(r, "code");
    sy_conn *c = sy_store_acquire(app->store);
    int rc = sy_conn_exec(c, "BEGIN");
    json_t *item = NULL, *moves = json_array();
    int64_t last = 0;
    sy_stmt *st = rc == SY_OK ? sy_conn_prepare(c, sql_item_one) : NULL;
    if (rc == SY_OK && !st)
        rc = SY_ERR;
    if (st) {
        sy_stmt_bind_text(st, 1, tenant);
        sy_stmt_bind_text(st, 2, code);
        if ((rc = sy_stmt_step(st)) == SY_ROW)
            item = json_pack("{s:s, s:I, s:I}", "item", code, "total_stock",
                             (json_int_t)sy_stmt_i64(st, 7), "remaining",
                             (json_int_t)sy_stmt_i64(st, 8));
        sy_stmt_reset(st);
        rc = rc == SY_ROW || rc == SY_DONE ? SY_OK : rc;
    }
    if (rc == SY_OK && item) {
        if (!(st = sy_conn_prepare(c, sql))) {
            rc = SY_ERR;
        } else {
            sy_stmt_bind_text(st, 1, tenant);
            sy_stmt_bind_text(st, 2, code);
            sy_stmt_bind_i64(st, 3, cursor);
            sy_stmt_bind_i64(st, 4, limit);
            while ((rc = sy_stmt_step(st)) == SY_ROW) {
                last = sy_stmt_i64(st, 0);
                json_array_append_new(
                    moves, json_pack("{s:I, s:I, s:s, s:s, s:o}", "id", (json_int_t)last, "delta",
                                     (json_int_t)sy_stmt_i64(st, 1), "reason", sy_stmt_text(st, 2),
                                     "operator", sy_stmt_text(st, 3), "created_at",
                                     sy_json_time(sy_stmt_i64(st, 4))));
            }
            sy_stmt_reset(st);
            rc = rc == SY_DONE ? SY_OK : rc;
        }
    }
    sy_conn_exec(c, "COMMIT");
    if (rc != SY_OK) {
        sy_api_store_error(r, c);
        json_decref(item);
        json_decref(moves);
    } else if (!item) {
        sy_reply_problem(r, 404, "not-found", NULL, "no benefit item '%s'", code);
        json_decref(moves);
    } else {
        json_t *next = json_null();
        if (json_array_size(moves) == (size_t)limit) {
            char buf[24];
            snprintf(buf, sizeof buf, "%lld", (long long)last);
            json_decref(next);
            next = json_string(buf);
        }
        json_object_set_new(item, "moves", moves);
        json_object_set_new(item, "next_cursor", next);
        sy_reply_json(r, 200, item);
    }
    sy_store_release(app->store, c);
}

/* ---- voucher codes ---- */

typedef struct code_line {
    const char *code;
    int64_t line;
} code_line;

typedef struct codes_req {
    const char *item;
    code_line *lines; /* in file order */
    size_t n;
    const char **codes;
    bool *dup;
    json_t *dups;     /* duplicates within the file, found before the write */
    size_t file_dups; /* how many */
} codes_req;

static void codes_req_free(void *p)
{
    codes_req *q = p;
    free(q->lines);
    free(q->codes);
    free(q->dup);
    json_decref(q->dups);
}

static int cmp_code_line(const void *a, const void *b)
{
    const code_line *x = a, *y = b;
    int d = strcmp(x->code, y->code);
    return d ? d : (x->line > y->line) - (x->line < y->line);
}

static int cmp_line(const void *a, const void *b)
{
    const code_line *x = a, *y = b;
    return (x->line > y->line) - (x->line < y->line);
}

static int apply_codes_add(sy_conn *c, sy_req *r, void *ctx)
{
    codes_req *q = ctx;
    int64_t added;
    int rc = sy_benefit_codes_add(c, sy_req_principal(r)->tenant, q->item, q->codes, q->n,
                                  sy_req_principal(r)->key_id, sy_req_now_ms(r), q->dup, &added);
    if (rc > 0) {
        reply_refusal(r, rc, NULL, q->item);
        return 1;
    }
    if (rc != SY_OK)
        return rc;
    json_t *dups = json_deep_copy(q->dups);
    size_t ndup = q->file_dups;
    for (size_t i = 0; i < q->n; i++)
        if (q->dup[i]) {
            ndup++;
            if (json_array_size(dups) < MAX_REPORTED)
                json_array_append_new(
                    dups, json_pack("{s:I, s:s, s:s}", "line", (json_int_t)q->lines[i].line, "code",
                                    q->lines[i].code, "reason", "already in the pool"));
        }
    sy_stmt *st = sy_conn_prepare(c, sql_item_one);
    if (!st) {
        json_decref(dups);
        return SY_ERR;
    }
    sy_stmt_bind_text(st, 1, sy_req_principal(r)->tenant);
    sy_stmt_bind_text(st, 2, q->item);
    rc = sy_stmt_step(st);
    json_int_t total = rc == SY_ROW ? sy_stmt_i64(st, 7) : 0,
               left = rc == SY_ROW ? sy_stmt_i64(st, 8) : 0;
    sy_stmt_reset(st);
    if (rc != SY_ROW) {
        json_decref(dups);
        return rc == SY_DONE ? SY_ERR : rc;
    }
    sy_req_audit_target(r, q->item);
    sy_reply_json(r, 200,
                  json_pack("{s:s, s:I, s:I, s:o, s:I, s:I}", "item", q->item, "added",
                            (json_int_t)added, "duplicates_count", (json_int_t)ndup, "duplicates",
                            dups, "total_stock", total, "remaining", left));
    return 0;
}

/* POST /v1/benefits/items/{code}/codes: the body is the supplier's CSV
 * (Content-Type text/csv or text/plain), one code a line (a first line
 * "code" is a header; a code may be quoted, its quotes doubled).  Any bad
 * line refuses the whole upload, naming every bad line; codes seen twice
 * (in the file, or in the pool already) are skipped and listed. */
void sy_api_items_codes(sy_req *r)
{
    size_t len;
    const char *body = sy_req_body(r, &len);
    codes_req *q = sy_req_alloc(r, sizeof *q);
    memset(q, 0, sizeof *q);
    q->item = sy_req_param(r, "code");
    q->dups = json_array();
    sy_req_on_free(r, codes_req_free, q);
    const char *ctype = sy_req_header(r, "Content-Type");
    if (ctype && strncasecmp(ctype, "text/csv", 8) != 0 &&
        strncasecmp(ctype, "text/plain", 10) != 0) {
        /* a JSON body's text would otherwise be taken for a code */
        sy_reply_problem(r, 400, "validation", "Content-Type",
                         "the body is the supplier's CSV, one code a line: send it as"
                         " Content-Type: text/csv");
        return;
    }
    if (len && memchr(body, '\0', len)) {
        sy_reply_problem(r, 400, "validation", "body", "the CSV must not contain NUL bytes");
        return;
    }
    char *text = sy_req_alloc(r, len + 1);
    memcpy(text, body ? body : "", len);
    text[len] = '\0';
    json_t *bad = json_array();
    size_t nbad = 0, cap = 0;
    int64_t lineno = 0;
    for (char *p = text, *next; p && *p; p = next) {
        lineno++;
        char *nl = strchr(p, '\n');
        next = nl ? nl + 1 : NULL;
        if (nl)
            *nl = '\0';
        size_t n = strlen(p);
        if (n && p[n - 1] == '\r')
            p[--n] = '\0';
        if (n == 0)
            continue; /* blank lines */
        const char *why = NULL;
        char *field = sy_csv_one_field(p, &why);
        if (field) {
            p = field;
            n = strlen(p);
            if (lineno == 1 && !strcasecmp(p, "code"))
                continue; /* the header */
            if (!sy_benefit_voucher_valid(p, n))
                why = "a code is 1 to 128 visible ASCII characters, no spaces";
        }
        if (why) {
            if (nbad++ < MAX_REPORTED)
                json_array_append_new(
                    bad, json_pack("{s:I, s:s}", "line", (json_int_t)lineno, "error", why));
            continue;
        }
        if (q->n == cap) {
            cap = cap ? cap * 2 : 256;
            q->lines = sy_xrealloc(q->lines, cap * sizeof *q->lines);
        }
        q->lines[q->n++] = (code_line){p, lineno};
        if (q->n > MAX_CODES_PER_UPLOAD)
            break;
    }
    if (q->n > MAX_CODES_PER_UPLOAD) {
        json_decref(bad);
        sy_reply_problem(r, 400, "validation", "body", "at most %d codes per upload",
                         MAX_CODES_PER_UPLOAD);
        return;
    }
    if (nbad || q->n == 0) {
        if (!nbad)
            sy_reply_problem(r, 400, "validation", "body", "no codes: one code a line");
        else
            sy_reply_problem(r, 400, "validation", "body", "%zu bad line%s; nothing was uploaded",
                             nbad, nbad == 1 ? "" : "s");
        sy_reply_extend(r, "errors", bad);
        return;
    }
    json_decref(bad);
    /* Duplicates within the file: keep each code's first line. */
    code_line *sorted = sy_xmalloc(q->n * sizeof *sorted);
    memcpy(sorted, q->lines, q->n * sizeof *sorted);
    qsort(sorted, q->n, sizeof *sorted, cmp_code_line);
    bool *drop = sy_xcalloc(q->n, sizeof *drop);
    for (size_t i = 1; i < q->n; i++)
        if (!strcmp(sorted[i].code, sorted[i - 1].code)) {
            drop[i] = true;
            q->file_dups++;
            if (json_array_size(q->dups) < MAX_REPORTED) {
                size_t first = i - 1;
                while (drop[first])
                    first--;
                char why[64];
                snprintf(why, sizeof why, "repeats line %lld", (long long)sorted[first].line);
                json_array_append_new(q->dups, json_pack("{s:I, s:s, s:s}", "line",
                                                         (json_int_t)sorted[i].line, "code",
                                                         sorted[i].code, "reason", why));
            }
        }
    /* The unique codes. */
    size_t keep = 0;
    code_line *uniq = sy_xmalloc(q->n * sizeof *uniq);
    for (size_t i = 0; i < q->n; i++)
        if (!drop[i])
            uniq[keep++] = sorted[i];
    free(drop);
    free(sorted);
    /* back in file order: the pool issues the supplier's codes as listed */
    qsort(uniq, keep, sizeof *uniq, cmp_line);
    free(q->lines);
    q->lines = uniq;
    q->n = keep;
    q->codes = sy_xmalloc(keep * sizeof *q->codes);
    q->dup = sy_xcalloc(keep, sizeof *q->dup);
    for (size_t i = 0; i < keep; i++)
        q->codes[i] = q->lines[i].code;
    sy_req_write(r, apply_codes_add, NULL, q);
}

/* ------------------------------------------------------------------ */
/* packages                                                            */

static int package_lines(sy_conn *c, const char *tenant, const char *code, json_t *o)
{
    static const char sql[] = "SELECT item, quantity FROM benefit_package_items"
                              " WHERE tenant_id = $1 AND package = $2 ORDER BY item";
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, code);
    json_t *items = json_array();
    int rc;
    while ((rc = sy_stmt_step(st)) == SY_ROW)
        json_array_append_new(items, json_pack("{s:s, s:I}", "item", sy_stmt_text(st, 0),
                                               "quantity", (json_int_t)sy_stmt_i64(st, 1)));
    sy_stmt_reset(st);
    json_object_set_new(o, "items", items);
    return rc == SY_DONE ? SY_OK : rc;
}

static json_t *package_row(sy_stmt *st)
{
    json_t *o = json_pack("{s:s, s:s, s:s}", "code", sy_stmt_text(st, 0), "name",
                          sy_stmt_text(st, 1), "description", sy_stmt_text(st, 2));
    json_object_set_new(o, "segment_id", text_or_null(st, 3));
    json_object_set_new(o, "segment_expression", text_or_null(st, 4));
    json_object_set_new(o, "created_at", sy_json_time(sy_stmt_i64(st, 5)));
    return o;
}

#define PACKAGE_COLUMNS "code, name, description, segment_id, segment_expression, created_at"

static void packages_reply(sy_req *r, json_t *items, bool one)
{
    sy_app *app = sy_req_app(r);
    sy_conn *c = sy_store_acquire(app->store);
    size_t i;
    json_t *p;
    int rc = SY_OK;
    json_array_foreach (items, i, p)
        if (rc == SY_OK)
            rc = package_lines(c, sy_req_principal(r)->tenant,
                               json_string_value(json_object_get(p, "code")), p);
    if (rc != SY_OK) {
        sy_api_store_error(r, c);
        json_decref(items);
    } else if (one && json_array_size(items) == 0) {
        sy_reply_problem(r, 404, "not-found", NULL, "no benefit package '%s'",
                         sy_req_param(r, "code"));
        json_decref(items);
    } else if (one) {
        sy_reply_json(r, 200, json_incref(json_array_get(items, 0)));
        json_decref(items);
    } else {
        sy_reply_json(r, 200, json_pack("{s:o}", "items", items));
    }
    sy_store_release(app->store, c);
}

void sy_api_packages_list(sy_req *r)
{
    static const char sql[] =
        "SELECT " PACKAGE_COLUMNS " FROM benefit_packages WHERE tenant_id = $1 ORDER BY code";
    json_t *items = sy_api_tenant_rows(r, sql, package_row);
    if (items)
        packages_reply(r, items, false);
}

void sy_api_packages_get(sy_req *r)
{
    static const char sql[] =
        "SELECT " PACKAGE_COLUMNS " FROM benefit_packages WHERE tenant_id = $1 AND code = $2";
    sy_app *app = sy_req_app(r);
    sy_conn *c = sy_store_acquire(app->store);
    sy_stmt *st = sy_conn_prepare(c, sql);
    json_t *items = json_array();
    int rc = SY_ERR;
    if (st) {
        sy_stmt_bind_text(st, 1, sy_req_principal(r)->tenant);
        sy_stmt_bind_text(st, 2, sy_req_param(r, "code"));
        if ((rc = sy_stmt_step(st)) == SY_ROW)
            json_array_append_new(items, package_row(st));
        sy_stmt_reset(st);
    }
    if (rc != SY_ROW && rc != SY_DONE) {
        sy_api_store_error(r, c);
        sy_store_release(app->store, c);
        json_decref(items);
        return;
    }
    sy_store_release(app->store, c);
    packages_reply(r, items, true);
}

typedef struct package_req {
    const char *code, *name, *description, *segment_id, *segment_expression;
    sy_benefit_package_line lines[MAX_PACKAGE_LINES];
    size_t n;
} package_req;

static int apply_package_create(sy_conn *c, sy_req *r, void *ctx)
{
    static const char sql[] =
        "SELECT " PACKAGE_COLUMNS " FROM benefit_packages WHERE tenant_id = $1 AND code = $2";
    package_req *p = ctx;
    const char *tenant = sy_req_principal(r)->tenant, *missing;
    int rc = sy_benefit_package_create(c, tenant, p->code, p->name, p->description, p->segment_id,
                                       p->segment_expression, p->lines, p->n, sy_req_now_ms(r),
                                       &missing);
    if (rc == SY_BENEFIT_UNKNOWN_ITEM) {
        sy_reply_problem(r, 400, "validation", "/items", "no benefit item '%s'", missing);
        return 1;
    }
    if (rc > 0) {
        char what[96];
        snprintf(what, sizeof what, "package '%s'", p->code);
        reply_refusal(r, rc, NULL, what);
        return 1;
    }
    if (rc != SY_OK)
        return rc;
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, p->code);
    rc = sy_stmt_step(st);
    json_t *o = rc == SY_ROW ? package_row(st) : NULL;
    sy_stmt_reset(st);
    if (!o || (rc = package_lines(c, tenant, p->code, o)) != SY_OK) {
        json_decref(o);
        return rc == SY_OK || rc == SY_DONE || rc == SY_ROW ? SY_ERR : rc;
    }
    char loc[128];
    snprintf(loc, sizeof loc, "/v1/benefits/packages/%s", p->code);
    sy_reply_header(r, "Location", loc);
    sy_req_audit_target(r, p->code);
    sy_reply_json(r, 201, o);
    return 0;
}

/* After a package or listing is committed: the offers catalogue reloads, so
 * that the app shows it at once (not at the catalogue's next reload). */
static void offers_changed(sy_req *r, void *ctx)
{
    (void)ctx;
    sy_api_offers_invalidate(sy_req_principal(r)->tenant);
}

void sy_api_packages_create(sy_req *r)
{
    static const char *const fields[] = {
        "code", "name", "description", "items", "segment_id", "segment_expression", NULL};
    static const char *const line_fields[] = {"item", "quantity", NULL};
    json_t *body = sy_req_json_object(r);
    package_req *p = sy_req_alloc(r, sizeof *p);
    memset(p, 0, sizeof *p);
    if (!body || !sy_v_only(r, body, fields) || !v_code(r, body, "code", &p->code) ||
        !sy_v_string(r, body, "name", true, SY_BENEFIT_NAME_MAX, &p->name) ||
        !sy_v_string(r, body, "description", false, 500, &p->description))
        return;
    json_t *items = json_object_get(body, "items");
    if (!json_is_array(items) || json_array_size(items) < 1 ||
        json_array_size(items) > MAX_PACKAGE_LINES) {
        sy_reply_problem(r, 400, "validation", "/items",
                         "'items' must be an array of 1 to %d {item, quantity}", MAX_PACKAGE_LINES);
        return;
    }
    size_t i;
    json_t *l;
    json_array_foreach (items, i, l) {
        char ptr[64];
        snprintf(ptr, sizeof ptr, "/items/%zu", i);
        if (!json_is_object(l)) {
            sy_reply_problem(r, 400, "validation", ptr, "each item must be {item, quantity}");
            return;
        }
        p->lines[i].quantity = 1;
        if (!sy_v_only(r, l, line_fields) || !v_code(r, l, "item", &p->lines[i].item))
            return;
        snprintf(ptr, sizeof ptr, "/items/%zu/quantity", i);
        if (!v_int(r, l, ptr, "quantity", false, 1, 100, &p->lines[i].quantity))
            return;
        for (size_t j = 0; j < i; j++)
            if (!strcmp(p->lines[j].item, p->lines[i].item)) {
                snprintf(ptr, sizeof ptr, "/items/%zu/item", i);
                sy_reply_problem(r, 400, "validation", ptr,
                                 "item '%s' is listed twice: give it a quantity instead",
                                 p->lines[i].item);
                return;
            }
        p->n = i + 1;
    }
    if (!v_segment(r, body, &p->segment_id, &p->segment_expression))
        return;
    sy_req_write(r, apply_package_create, offers_changed, p);
}

/* ------------------------------------------------------------------ */
/* grants                                                              */

#define GRANT_COLUMNS                                                                              \
    "g.code, g.item, i.name, i.kind, g.customer_no, g.status, g.source, g.package, g.listing,"     \
    " g.point_type, g.points, g.spend_entry, g.voucher_code, g.face_value, g.cost_price,"          \
    " g.delivery, g.fulfilment, g.tracking, g.stock_returned, g.issued_at, g.expires_at,"          \
    " g.redeemed_at, g.redeem_reference, g.expired_at, g.revoked_at, g.revoke_reason,"             \
    " g.operator, g.idempotency_key, g.seq, g.delivery_masked"

/* A grant as the API shows it (docs/openapi.yaml, Grant): NULL strings and
 * unset numbers (SY_BENEFIT_UNSET) are null.  Built either from a row of
 * GRANT_COLUMNS or, for a grant just issued, from what the issue wrote. */
typedef struct grant_view {
    const char *code, *item, *item_name, *kind, *customer_no, *status, *source;
    const char *package, *listing, *point_type;
    int64_t points;
    const char *spend_entry, *voucher_code;
    int64_t face_value, cost_price;
    const char *delivery;        /* the masked address, JSON text */
    const char *delivery_legacy; /* or a clear one from before migration 0023, masked here */
    const char *fulfilment, *tracking;
    bool stock_returned;
    int64_t issued_at, expires_at, redeemed_at;
    const char *redeem_reference;
    int64_t expired_at, revoked_at;
    const char *revoke_reason, *operator_id, *idempotency_key;
} grant_view;

static json_t *text_or_null_s(const char *s)
{
    return s ? json_string(s) : json_null();
}

static json_t *int_or_null_v(int64_t v)
{
    return v == SY_BENEFIT_UNSET ? json_null() : json_integer(v);
}

static json_t *time_or_null_v(int64_t v)
{
    return v == SY_BENEFIT_UNSET ? json_null() : sy_json_time(v);
}

static json_t *grant_json_of(const grant_view *g)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "code", g->code, "item", g->item,
                          "item_name", g->item_name, "kind", g->kind, "customer_no", g->customer_no,
                          "status", g->status, "source", g->source);
    json_object_set_new(o, "package", text_or_null_s(g->package));
    json_object_set_new(o, "listing", text_or_null_s(g->listing));
    json_object_set_new(o, "point_type", text_or_null_s(g->point_type));
    json_object_set_new(o, "points", int_or_null_v(g->points));
    json_object_set_new(o, "spend_entry", text_or_null_s(g->spend_entry));
    json_object_set_new(o, "voucher_code", text_or_null_s(g->voucher_code));
    json_object_set_new(o, "face_value", json_integer(g->face_value));
    json_object_set_new(o, "cost_price", json_integer(g->cost_price));
    json_t *d = g->delivery ? json_loads(g->delivery, 0, NULL) : NULL;
    if (!d && g->delivery_legacy) {
        json_t *clear = json_loads(g->delivery_legacy, 0, NULL);
        d = json_is_object(clear) ? sy_pii_masked(clear) : NULL;
        json_decref(clear);
    }
    json_object_set_new(o, "delivery", d ? d : json_null());
    json_object_set_new(o, "fulfilment", text_or_null_s(g->fulfilment));
    json_object_set_new(o, "tracking", text_or_null_s(g->tracking));
    json_object_set_new(o, "stock_returned", json_boolean(g->stock_returned));
    json_object_set_new(o, "issued_at", sy_json_time(g->issued_at));
    json_object_set_new(o, "expires_at", time_or_null_v(g->expires_at));
    json_object_set_new(o, "redeemed_at", time_or_null_v(g->redeemed_at));
    json_object_set_new(o, "redeem_reference", text_or_null_s(g->redeem_reference));
    json_object_set_new(o, "expired_at", time_or_null_v(g->expired_at));
    json_object_set_new(o, "revoked_at", time_or_null_v(g->revoked_at));
    json_object_set_new(o, "revoke_reason", text_or_null_s(g->revoke_reason));
    json_object_set_new(o, "operator", json_string(g->operator_id));
    json_object_set_new(o, "idempotency_key", text_or_null_s(g->idempotency_key));
    json_object_set_new(o, "unmasked", json_false()); /* see apply_grant_unmasked */
    return o;
}

static const char *col_text(sy_stmt *st, int col)
{
    return sy_stmt_is_null(st, col) ? NULL : sy_stmt_text(st, col);
}

static int64_t col_int(sy_stmt *st, int col)
{
    return sy_stmt_is_null(st, col) ? SY_BENEFIT_UNSET : sy_stmt_i64(st, col);
}

static json_t *grant_row(sy_stmt *st)
{
    grant_view g = {.code = sy_stmt_text(st, 0),
                    .item = sy_stmt_text(st, 1),
                    .item_name = sy_stmt_text(st, 2),
                    .kind = sy_stmt_text(st, 3),
                    .customer_no = sy_stmt_text(st, 4),
                    .status = sy_stmt_text(st, 5),
                    .source = sy_stmt_text(st, 6),
                    .package = col_text(st, 7),
                    .listing = col_text(st, 8),
                    .point_type = col_text(st, 9),
                    .points = col_int(st, 10),
                    .spend_entry = col_text(st, 11),
                    .voucher_code = col_text(st, 12),
                    .face_value = sy_stmt_i64(st, 13),
                    .cost_price = sy_stmt_i64(st, 14),
                    .delivery = col_text(st, 29),
                    /* before migration 0023: clear JSON; since, sealed text */
                    .delivery_legacy = sy_stmt_is_null(st, 29) && !sy_stmt_is_null(st, 15) &&
                                               sy_stmt_text(st, 15)[0] == '{'
                                           ? sy_stmt_text(st, 15)
                                           : NULL,
                    .fulfilment = col_text(st, 16),
                    .tracking = col_text(st, 17),
                    .stock_returned = sy_stmt_i64(st, 18) != 0,
                    .issued_at = sy_stmt_i64(st, 19),
                    .expires_at = col_int(st, 20),
                    .redeemed_at = col_int(st, 21),
                    .redeem_reference = col_text(st, 22),
                    .expired_at = col_int(st, 23),
                    .revoked_at = col_int(st, 24),
                    .revoke_reason = col_text(st, 25),
                    .operator_id = sy_stmt_text(st, 26),
                    .idempotency_key = col_text(st, 27)};
    return grant_json_of(&g);
}

static const char sql_grant_one[] =
    "SELECT " GRANT_COLUMNS " FROM benefit_grants g JOIN benefit_items i"
    " ON i.tenant_id = g.tenant_id AND i.code = g.item WHERE g.tenant_id = $1 AND g.code = $2";

/* What a role sees of a grant: analyst and compliance keys see a voucher's
 * code (worth its face value to whoever holds it) as its last four
 * characters only. */
static void grant_for_role(sy_req *r, json_t *g)
{
    sy_role role = sy_req_principal(r)->role;
    const char *v = json_string_value(json_object_get(g, "voucher_code"));
    if (!v || (role != SY_ROLE_ANALYST && role != SY_ROLE_COMPLIANCE))
        return;
    size_t n = strlen(v);
    char buf[SY_BENEFIT_VOUCHER_MAX + 8];
    snprintf(buf, sizeof buf, "****%s", n > 4 ? v + n - 4 : "");
    json_object_set_new(g, "voucher_code", json_string(buf));
}

/* GET /v1/grants/{code}?unmask=true: the delivery address and voucher code
 * in clear, for an admin or compliance key; a write only for its audit row
 * ("read unmasked personal data"), as for customers. */
static int apply_grant_unmasked(sy_conn *c, sy_req *r, void *ctx)
{
    (void)ctx;
    const char *tenant = sy_req_principal(r)->tenant, *code = sy_req_param(r, "code");
    sy_stmt *st = sy_conn_prepare(c, sql_grant_one);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, code);
    int rc = sy_stmt_step(st);
    if (rc != SY_ROW) {
        sy_stmt_reset(st);
        if (rc != SY_DONE)
            return rc;
        sy_reply_problem(r, 404, "not-found", NULL, "no grant '%s'", code);
        return 1;
    }
    json_t *o = grant_row(st);
    json_t *clear = NULL;
    if (!sy_stmt_is_null(st, 15)) {
        const char *stored = sy_stmt_text(st, 15);
        clear = stored[0] == '{'
                    ? json_loads(stored, 0, NULL)
                    : sy_pii_open(sy_req_app(r)->pii, tenant, sy_stmt_text(st, 4), stored);
        if (!clear) {
            sy_stmt_reset(st);
            json_decref(o);
            sy_error("grant %s: its delivery address cannot be opened with this data key", code);
            sy_reply_problem(r, 500, "internal", NULL,
                             "the delivery address cannot be read with this data key");
            return 1;
        }
    }
    sy_stmt_reset(st);
    if (clear)
        json_object_set_new(o, "delivery", clear);
    json_object_set_new(o, "unmasked", json_true());
    sy_req_audit_target(r, code);
    sy_req_audit_action(r, "read unmasked personal data");
    sy_reply_json(r, 200, o);
    return 0;
}

void sy_api_grants_get(sy_req *r)
{
    bool unmask;
    if (!sy_v_query_bool(r, "unmask", false, &unmask))
        return;
    if (unmask) {
        if (sy_api_unmask_allowed(r))
            sy_req_write(r, apply_grant_unmasked, NULL, NULL);
        return;
    }
    get_one(r, sql_grant_one, "code", "grant", grant_row, grant_for_role);
}

static int grant_json(sy_conn *c, const char *tenant, const char *code, json_t **out)
{
    sy_stmt *st = sy_conn_prepare(c, sql_grant_one);
    *out = NULL;
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, code);
    int rc = sy_stmt_step(st);
    if (rc == SY_ROW)
        *out = grant_row(st);
    sy_stmt_reset(st);
    return rc == SY_ROW ? SY_OK : rc == SY_DONE ? SY_ERR : rc;
}

void sy_api_grants_list(sy_req *r)
{
    static const char sql[] =
        "SELECT " GRANT_COLUMNS " FROM benefit_grants g JOIN benefit_items i"
        " ON i.tenant_id = g.tenant_id AND i.code = g.item WHERE g.tenant_id = $1"
        " AND g.customer_no = $2 AND (CAST($3 AS TEXT) IS NULL OR g.status = $3)"
        " AND g.seq < $4 ORDER BY g.seq DESC LIMIT $5";
    static const char sql_customer[] =
        "SELECT 1 FROM customers WHERE tenant_id = $1 AND customer_no = $2";
    int64_t limit, cursor = INT64_MAX;
    if (!sy_v_query_int(r, "limit", 1, 200, 50, &limit))
        return;
    const char *cur = sy_req_query(r, "cursor"), *status = sy_req_query(r, "status");
    if (cur && !sy_parse_i64(cur, 1, INT64_MAX, &cursor)) {
        sy_reply_problem(r, 400, "validation", "cursor", "not a cursor from this endpoint");
        return;
    }
    if (status && strcmp(status, "issued") && strcmp(status, "redeemed") &&
        strcmp(status, "expired") && strcmp(status, "revoked")) {
        sy_reply_problem(r, 400, "validation", "status",
                         "'status' must be issued, redeemed, expired or revoked");
        return;
    }
    sy_app *app = sy_req_app(r);
    const char *tenant = sy_req_principal(r)->tenant, *no = sy_req_param(r, "customer_no");
    sy_conn *c = sy_store_acquire(app->store);
    int rc = sy_conn_exec(c, "BEGIN");
    sy_stmt *st = rc == SY_OK ? sy_conn_prepare(c, sql_customer) : NULL;
    bool exists = false;
    if (st) {
        sy_stmt_bind_text(st, 1, tenant);
        sy_stmt_bind_text(st, 2, no);
        rc = sy_stmt_step(st);
        exists = rc == SY_ROW;
        sy_stmt_reset(st);
        rc = rc == SY_ROW || rc == SY_DONE ? SY_OK : rc;
    } else {
        rc = SY_ERR;
    }
    json_t *items = json_array();
    int64_t last = 0;
    if (rc == SY_OK && exists) {
        if (!(st = sy_conn_prepare(c, sql)))
            rc = SY_ERR;
        if (st) {
            sy_stmt_bind_text(st, 1, tenant);
            sy_stmt_bind_text(st, 2, no);
            sy_stmt_bind_text(st, 3, status);
            sy_stmt_bind_i64(st, 4, cursor);
            sy_stmt_bind_i64(st, 5, limit);
            while ((rc = sy_stmt_step(st)) == SY_ROW) {
                json_t *g = grant_row(st);
                grant_for_role(r, g);
                json_array_append_new(items, g);
                last = sy_stmt_i64(st, 28);
            }
            sy_stmt_reset(st);
            rc = rc == SY_DONE ? SY_OK : rc;
        }
    }
    if (rc != SY_OK) {
        sy_api_store_error(r, c);
        json_decref(items);
    } else if (!exists) {
        sy_reply_problem(r, 404, "not-found", NULL, "no customer '%s'", no);
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

/* ---- issuing: an item or a package to a customer, a mall exchange ---- */

typedef struct issue_req {
    sy_benefit_issue q;
    const char *package;
    /* one grant issued (201) or replayed (200): its reply is built outside
     * the writer (reply_issue); issued: what the issue wrote (201) */
    int status;
    char code[SY_BENEFIT_GRANT_CODE_MAX + 1];
    sy_benefit_issued issued;
} issue_req;

/* Replies with the grants issued (or replayed) under the request: one
 * grant object, or for a package {"package", "grants": [...]}. */
static int reply_grants(sy_conn *c, sy_req *r, const char *tenant,
                        char (*codes)[SY_BENEFIT_GRANT_CODE_MAX + 1], size_t n, const char *package,
                        int status)
{
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *g;
        int rc = grant_json(c, tenant, codes[i], &g);
        if (rc != SY_OK) {
            json_decref(list);
            return rc;
        }
        json_array_append_new(list, g);
    }
    if (!package) {
        char loc[64];
        snprintf(loc, sizeof loc, "/v1/grants/%s", codes[0]);
        sy_reply_header(r, "Location", loc);
        sy_req_audit_target(r, codes[0]);
        sy_reply_json(r, status, json_incref(json_array_get(list, 0)));
        json_decref(list);
    } else {
        sy_req_audit_target(r, package);
        sy_reply_json(r, status, json_pack("{s:s, s:o}", "package", package, "grants", list));
    }
    return SY_OK;
}

/* The reply of a single grant issued or replayed (apply_issue).  A grant
 * just issued is described from what the issue wrote, as GET
 * /v1/grants/{code} would read it back (test_e2e_benefits compares the
 * two); a replayed one is read back. */
static int reply_issue(sy_conn *c, sy_req *r, void *ctx)
{
    issue_req *iq = ctx;
    const sy_benefit_issued *is = &iq->issued;
    if (iq->status != 201 || !is->complete)
        return reply_grants(c, r, iq->q.tenant, &iq->code, 1, NULL, iq->status);
    const sy_benefit_issue *q = &iq->q;
    bool goods = is->kind == SY_BENEFIT_GOODS;
    grant_view g = {.code = iq->code,
                    .item = is->item,
                    .item_name = is->item_name,
                    .kind = sy_benefit_kind_name(is->kind),
                    .customer_no = q->customer_no,
                    .status = "issued",
                    .source = is->source,
                    .package = q->package,
                    .listing = q->listing,
                    .point_type = is->point_type[0] ? is->point_type : NULL,
                    .points = is->points,
                    .spend_entry = is->spend_entry[0] ? is->spend_entry : NULL,
                    .voucher_code = is->voucher[0] ? is->voucher : NULL,
                    .face_value = is->face_value,
                    .cost_price = is->cost_price,
                    .delivery = goods ? q->delivery_masked : NULL,
                    .fulfilment = goods ? "pending" : NULL,
                    .stock_returned = false,
                    .issued_at = is->issued_at,
                    .expires_at = is->expires_at,
                    .redeemed_at = SY_BENEFIT_UNSET,
                    .expired_at = SY_BENEFIT_UNSET,
                    .revoked_at = SY_BENEFIT_UNSET,
                    .operator_id = q->operator_id,
                    .idempotency_key = q->idempotency_key};
    char loc[64];
    snprintf(loc, sizeof loc, "/v1/grants/%s", iq->code);
    sy_reply_header(r, "Location", loc);
    sy_req_audit_target(r, iq->code);
    sy_reply_json(r, 201, grant_json_of(&g));
    return SY_OK;
}

/* A package's grants issued under a key before: their codes, in order. */
static int package_replay(sy_conn *c, const sy_benefit_issue *q, const char *package,
                          char (**codes)[SY_BENEFIT_GRANT_CODE_MAX + 1], size_t *n, bool *other)
{
    static const char sql[] =
        "SELECT code, customer_no, package FROM benefit_grants WHERE tenant_id = $1"
        " AND idempotency_key = $2 ORDER BY seq";
    *n = 0;
    *other = false;
    if (!q->idempotency_key)
        return SY_OK;
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, q->tenant);
    sy_stmt_bind_text(st, 2, q->idempotency_key);
    int rc;
    while ((rc = sy_stmt_step(st)) == SY_ROW) {
        if (strcmp(sy_stmt_text(st, 1), q->customer_no) != 0 ||
            strcmp(sy_stmt_text(st, 2), package) != 0)
            *other = true;
        *codes = sy_xrealloc(*codes, (*n + 1) * sizeof **codes);
        snprintf((*codes)[(*n)++], SY_BENEFIT_GRANT_CODE_MAX + 1, "%s", sy_stmt_text(st, 0));
    }
    sy_stmt_reset(st);
    return rc == SY_DONE ? SY_OK : rc;
}

static int apply_issue(sy_conn *c, sy_req *r, void *ctx)
{
    static const char sql_lines[] = "SELECT item, quantity FROM benefit_package_items"
                                    " WHERE tenant_id = $1 AND package = $2 ORDER BY item";
    issue_req *iq = ctx;
    sy_benefit_issue q = iq->q;
    q.now_ms = sy_req_now_ms(r);
    sy_benefit_result res;
    memset(&res, 0, sizeof res);
    if (!iq->package) {
        int rc = sy_benefit_issue_one(c, &q, &res);
        if (rc == SY_OK || rc == SY_BENEFIT_REPLAY) {
            iq->status = rc == SY_OK ? 201 : 200;
            snprintf(iq->code, sizeof iq->code, "%s", res.code);
            if (rc == SY_OK)
                iq->issued = res.issued;
            sy_req_audit_target(r, iq->code);
            return 0; /* reply_issue answers */
        }
        if (rc == SY_BENEFIT_NO_CUSTOMER && !q.listing) {
            /* the customer is the path's, not a body field */
            sy_reply_problem(r, 404, "not-found", NULL, "no customer '%s'", q.customer_no);
            return 1;
        }
        if (rc > 0) {
            reply_refusal(r, rc, &res,
                          rc == SY_BENEFIT_NO_CUSTOMER || rc == SY_BENEFIT_MERGED ? q.customer_no
                          : q.listing                                             ? q.listing
                                                                                  : q.item);
            return 1;
        }
        return rc;
    }
    /* A package: every unit of every item, all or nothing. */
    char(*codes)[SY_BENEFIT_GRANT_CODE_MAX + 1] = NULL;
    size_t n = 0;
    bool other;
    int rc = package_replay(c, &q, iq->package, &codes, &n, &other);
    if (rc == SY_OK && n && other) {
        snprintf(res.other, sizeof res.other, "grant %s", codes[0]);
        reply_refusal(r, SY_BENEFIT_KEY_USED, &res, NULL);
        free(codes);
        return 1;
    }
    if (rc == SY_OK && n) {
        rc = reply_grants(c, r, q.tenant, codes, n, iq->package, 200);
        free(codes);
        return rc;
    }
    sy_benefit_package_line lines[MAX_PACKAGE_LINES];
    char names[MAX_PACKAGE_LINES][SY_BENEFIT_CODE_MAX + 1];
    size_t nl = 0;
    sy_stmt *st = rc == SY_OK ? sy_conn_prepare(c, sql_lines) : NULL;
    if (rc == SY_OK && !st)
        rc = SY_ERR;
    if (st) {
        sy_stmt_bind_text(st, 1, q.tenant);
        sy_stmt_bind_text(st, 2, iq->package);
        while ((rc = sy_stmt_step(st)) == SY_ROW && nl < MAX_PACKAGE_LINES) {
            snprintf(names[nl], sizeof names[nl], "%s", sy_stmt_text(st, 0));
            lines[nl] = (sy_benefit_package_line){names[nl], sy_stmt_i64(st, 1)};
            nl++;
        }
        sy_stmt_reset(st);
        rc = rc == SY_DONE || rc == SY_ROW ? SY_OK : rc;
    }
    if (rc == SY_OK && nl == 0) {
        reply_refusal(r, SY_BENEFIT_UNKNOWN_PACKAGE, &res, iq->package);
        free(codes);
        return 1;
    }
    for (size_t i = 0; i < nl && rc == SY_OK; i++)
        for (int64_t k = 0; k < lines[i].quantity && rc == SY_OK; k++) {
            q.item = lines[i].item;
            rc = sy_benefit_issue_one(c, &q, &res);
            if (rc == SY_OK) {
                codes = sy_xrealloc(codes, (n + 1) * sizeof *codes);
                snprintf(codes[n++], SY_BENEFIT_GRANT_CODE_MAX + 1, "%s", res.code);
            } else if (rc > 0) {
                reply_refusal(r, rc, &res,
                              rc == SY_BENEFIT_NO_CUSTOMER || rc == SY_BENEFIT_MERGED
                                  ? q.customer_no
                                  : q.item);
            }
        }
    if (rc == SY_OK)
        rc = reply_grants(c, r, q.tenant, codes, n, iq->package, 201);
    free(codes);
    return rc > 0 ? 1 : rc;
}

static const char sql_item_segments[] =
    "SELECT segment_id, segment_expression FROM benefit_items WHERE tenant_id = $1 AND code = $2";
static const char sql_package_segments[] =
    "SELECT segment_id, segment_expression FROM benefit_packages WHERE tenant_id = $1"
    " AND code = $2 UNION ALL SELECT i.segment_id, i.segment_expression"
    " FROM benefit_package_items p JOIN benefit_items i ON i.tenant_id = p.tenant_id"
    " AND i.code = p.item WHERE p.tenant_id = $1 AND p.package = $2";
static const char sql_listing_segments[] =
    "SELECT segment_id, segment_expression FROM mall_listings WHERE tenant_id = $1"
    " AND code = $2 UNION ALL SELECT i.segment_id, i.segment_expression"
    " FROM mall_listings l JOIN benefit_items i ON i.tenant_id = l.tenant_id AND i.code = l.item"
    " WHERE l.tenant_id = $1 AND l.code = $2";

/* "delivery": a goods grant's address, an object with at least
 * name, phone and address strings. */
static bool v_delivery(sy_req *r, json_t *body, const char **out)
{
    static const char *const need[] = {"name", "phone", "address"};
    json_t *d = json_object_get(body, "delivery");
    if (!d || json_is_null(d))
        return true;
    if (!json_is_object(d)) {
        sy_reply_problem(r, 400, "validation", "/delivery",
                         "'delivery' must be an object with name, phone and address");
        return false;
    }
    for (size_t i = 0; i < SY_ARRAY_LEN(need); i++) {
        char ptr[64];
        snprintf(ptr, sizeof ptr, "/delivery/%s", need[i]);
        const char *s;
        json_t *v = json_object_get(d, need[i]);
        if (!v || !json_is_string(v)) {
            sy_reply_problem(r, 400, "validation", ptr, "'delivery.%s' is required", need[i]);
            return false;
        }
        if (!sy_v_string(r, d, need[i], true, 200, &s)) {
            /* sy_v_string named the field without its parent */
            sy_reply_problem(r, 400, "validation", ptr,
                             "'delivery.%s' must be 1 to 200 characters, no control characters",
                             need[i]);
            return false;
        }
    }
    char *s = json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS);
    if (strlen(s) > DELIVERY_MAX) {
        free(s);
        sy_reply_problem(r, 400, "validation", "/delivery", "'delivery' must be at most %d bytes",
                         DELIVERY_MAX);
        return false;
    }
    *out = sy_req_strdup(r, s);
    free(s);
    return true;
}

static void issue_common(sy_req *r, issue_req *iq, const char *no)
{
    const sy_principal *who = sy_req_principal(r);
    const char *key = sy_req_header(r, "Idempotency-Key");
    iq->q.tenant = who->tenant;
    iq->q.customer_no = no;
    iq->q.operator_id = who->key_id;
    iq->q.idempotency_key = key ? sy_req_strdup(r, key) : NULL;
    if (iq->q.delivery) {
        /* The address is personal data: stored sealed for the customer,
         * shown masked (GET /v1/grants/{code}?unmask=true for the clear
         * text, audited). */
        json_t *d = json_loads(iq->q.delivery, 0, NULL);
        json_t *m = sy_pii_masked(d);
        char *sealed = sy_pii_seal(sy_req_app(r)->pii, who->tenant, no, d);
        char *masked = json_dumps(m, JSON_COMPACT | JSON_SORT_KEYS);
        iq->q.delivery = sy_req_strdup(r, sealed);
        iq->q.delivery_masked = sy_req_strdup(r, masked);
        free(sealed);
        free(masked);
        json_decref(m);
        json_decref(d);
    }
}

/* Before apply_issue runs again in a new transaction (writer.h). */
static void issue_reset(sy_req *r, void *ctx)
{
    (void)r;
    issue_req *iq = ctx;
    iq->status = 0;
    iq->code[0] = '\0';
    memset(&iq->issued, 0, sizeof iq->issued);
}

void sy_api_grants_create(sy_req *r)
{
    static const char *const fields[] = {"item", "package", "delivery", NULL};
    json_t *body = sy_req_json_object(r);
    issue_req *iq = sy_req_alloc(r, sizeof *iq);
    memset(iq, 0, sizeof *iq);
    const char *item = NULL, *package = NULL;
    if (!body || !sy_v_only(r, body, fields) ||
        !sy_v_string(r, body, "item", false, SY_BENEFIT_CODE_MAX, &item) ||
        !sy_v_string(r, body, "package", false, SY_BENEFIT_CODE_MAX, &package) ||
        !v_delivery(r, body, &iq->q.delivery))
        return;
    if (!item == !package) {
        sy_reply_problem(r, 400, "validation", "/item", "give 'item' or 'package' (one of them)");
        return;
    }
    const char *no = sy_req_param(r, "customer_no");
    if (!sy_customer_no_valid(no)) {
        sy_reply_problem(r, 404, "not-found", NULL, "no customer '%s'", no);
        return;
    }
    char which[256];
    if (admit(r, item ? sql_item_segments : sql_package_segments, item ? item : package, no, which,
              sizeof which) != ADMIT_YES)
        return;
    iq->q.item = item;
    iq->q.package = iq->package = package;
    issue_common(r, iq, no);
    sy_req_write(r, apply_issue, NULL, iq);
    sy_req_write_reply(r, reply_issue);
    sy_req_write_rerun(r, issue_reset);
}

void sy_api_mall_exchange(sy_req *r)
{
    static const char *const fields[] = {"listing", "customer_no", "delivery", NULL};
    json_t *body = sy_req_json_object(r);
    issue_req *iq = sy_req_alloc(r, sizeof *iq);
    memset(iq, 0, sizeof *iq);
    const char *listing = NULL, *no = NULL;
    if (!body || !sy_v_only(r, body, fields) ||
        !sy_v_string(r, body, "listing", true, SY_BENEFIT_CODE_MAX, &listing) ||
        !sy_v_string(r, body, "customer_no", true, SY_CUSTOMER_NO_MAX, &no) ||
        !v_delivery(r, body, &iq->q.delivery))
        return;
    if (!sy_customer_no_valid(no)) {
        sy_reply_problem(r, 400, "validation", "/customer_no",
                         "'customer_no' must be 1-64 characters of A-Z a-z 0-9 _ . : -");
        return;
    }
    char which[256];
    if (admit(r, sql_listing_segments, listing, no, which, sizeof which) != ADMIT_YES)
        return;
    iq->q.listing = listing;
    issue_common(r, iq, no);
    sy_req_write(r, apply_issue, NULL, iq);
    sy_req_write_reply(r, reply_issue);
    sy_req_write_rerun(r, issue_reset);
}

/* ---- redeem, revoke, fulfil ---- */

typedef struct grant_op {
    const char *code, *customer_no, *reference, *reason, *status, *tracking;
    int op; /* 'd' redeem, 'v' revoke, 'f' fulfil */
} grant_op;

static int apply_grant_op(sy_conn *c, sy_req *r, void *ctx)
{
    grant_op *g = ctx;
    const char *tenant = sy_req_principal(r)->tenant;
    int64_t now = sy_req_now_ms(r);
    sy_benefit_result res;
    int rc = g->op == 'd'
                 ? sy_benefit_redeem(c, tenant, g->code, g->customer_no, g->reference, now, &res)
             : g->op == 'v'
                 ? sy_benefit_revoke(c, tenant, g->code, g->reason, sy_req_principal(r)->key_id,
                                     now, &res)
                 : sy_benefit_fulfil(c, tenant, g->code, g->status, g->tracking, now, &res);
    if (rc > 0) {
        reply_refusal(r, rc, &res, g->code);
        return 1;
    }
    json_t *o;
    if (rc != SY_OK || (rc = grant_json(c, tenant, g->code, &o)) != SY_OK)
        return rc;
    sy_req_audit_target(r, g->code);
    if (res.already)
        sy_req_no_audit(r);
    sy_reply_json(r, 200, o);
    return 0;
}

static grant_op *grant_op_new(sy_req *r, int op)
{
    grant_op *g = sy_req_alloc(r, sizeof *g);
    memset(g, 0, sizeof *g);
    g->op = op;
    g->code = sy_req_param(r, "code");
    return g;
}

void sy_api_grants_redeem(sy_req *r)
{
    static const char *const fields[] = {"customer_no", "reference", NULL};
    json_t *body = sy_req_json_object(r);
    grant_op *g = grant_op_new(r, 'd');
    if (!body || !sy_v_only(r, body, fields) ||
        !sy_v_string(r, body, "customer_no", true, SY_CUSTOMER_NO_MAX, &g->customer_no) ||
        !sy_v_string(r, body, "reference", false, SY_LEDGER_REFERENCE_MAX, &g->reference))
        return;
    sy_req_write(r, apply_grant_op, NULL, g);
}

void sy_api_grants_revoke(sy_req *r)
{
    static const char *const fields[] = {"reason", NULL};
    json_t *body = sy_req_json_object(r);
    grant_op *g = grant_op_new(r, 'v');
    if (!body || !sy_v_only(r, body, fields) ||
        !sy_v_string(r, body, "reason", true, SY_LEDGER_REASON_MAX, &g->reason))
        return;
    sy_req_write(r, apply_grant_op, NULL, g);
}

void sy_api_grants_fulfil(sy_req *r)
{
    static const char *const fields[] = {"status", "tracking", NULL};
    json_t *body = sy_req_json_object(r);
    grant_op *g = grant_op_new(r, 'f');
    if (!body || !sy_v_only(r, body, fields) ||
        !sy_v_string(r, body, "status", true, 16, &g->status) ||
        !sy_v_string(r, body, "tracking", false, 128, &g->tracking))
        return;
    if (strcmp(g->status, "shipped") != 0 && strcmp(g->status, "delivered") != 0) {
        sy_reply_problem(r, 400, "validation", "/status", "'status' must be shipped or delivered");
        return;
    }
    sy_req_write(r, apply_grant_op, NULL, g);
}

/* ---- expiry ---- */

typedef struct expire_run {
    const char *tenant;
    int64_t now, n;
    bool more;
} expire_run;

static int run_expiry(sy_conn *c, expire_run *x)
{
    return sy_benefit_expire(c, x->tenant, x->now, EXPIRY_BATCH, &x->n, &x->more);
}

static int apply_expire(sy_conn *c, sy_req *r, void *ctx)
{
    expire_run *x = ctx;
    x->now = sy_req_now_ms(r);
    int rc = run_expiry(c, x);
    if (rc != SY_OK)
        return rc;
    sy_reply_json(r, 200,
                  json_pack("{s:I, s:b, s:o}", "expired", (json_int_t)x->n, "more", x->more,
                            "as_of", sy_json_time(x->now)));
    return 0;
}

void sy_api_grants_expire(sy_req *r)
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
    sy_req_write(r, apply_expire, NULL, x);
}

static int apply_expire_job(sy_conn *c, void *ctx)
{
    return run_expiry(c, ctx);
}

void sy_api_grants_expire_job(sy_app *app)
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
        expire_run x = {.tenant = tenants[i], .now = sy_now_ms()};
        int64_t total = 0;
        do {
            sy_mutation m = {.apply = apply_expire_job, .ctx = &x};
            if (sy_writer_run(app->writer, &m) != 0) {
                sy_warn("grant expiry for tenant %s failed", tenants[i]);
                break;
            }
            total += x.n;
        } while (x.more);
        if (total)
            sy_info("grant expiry: tenant %s: %lld grants expired", tenants[i], (long long)total);
        free(tenants[i]);
    }
    free(tenants);
}

/* ------------------------------------------------------------------ */
/* mall listings                                                       */

#define LISTING_COLUMNS                                                                            \
    "l.code, l.item, l.title, l.point_type, l.price, l.limit_day, l.limit_month, l.limit_total,"   \
    " l.segment_id, l.segment_expression, l.active, l.created_at, i.name, i.kind, i.remaining"

static json_t *listing_row(sy_stmt *st)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:I, s:o}", "code", sy_stmt_text(st, 0), "item",
                          sy_stmt_text(st, 1), "title", sy_stmt_text(st, 2), "point_type",
                          sy_stmt_text(st, 3), "price", (json_int_t)sy_stmt_i64(st, 4), "limits",
                          limits_json(st, 5));
    json_object_set_new(o, "segment_id", text_or_null(st, 8));
    json_object_set_new(o, "segment_expression", text_or_null(st, 9));
    json_object_set_new(o, "active", json_boolean(sy_stmt_i64(st, 10)));
    json_object_set_new(o, "created_at", sy_json_time(sy_stmt_i64(st, 11)));
    json_object_set_new(o, "item_name", json_string(sy_stmt_text(st, 12)));
    json_object_set_new(o, "kind", json_string(sy_stmt_text(st, 13)));
    json_object_set_new(o, "remaining", json_integer(sy_stmt_i64(st, 14)));
    return o;
}

void sy_api_listings_list(sy_req *r)
{
    static const char sql[] =
        "SELECT " LISTING_COLUMNS " FROM mall_listings l JOIN benefit_items i"
        " ON i.tenant_id = l.tenant_id AND i.code = l.item WHERE l.tenant_id = $1 ORDER BY l.code";
    json_t *items = sy_api_tenant_rows(r, sql, listing_row);
    if (items)
        sy_reply_json(r, 200, json_pack("{s:o}", "items", items));
}

static const char sql_listing_one[] =
    "SELECT " LISTING_COLUMNS " FROM mall_listings l JOIN benefit_items i"
    " ON i.tenant_id = l.tenant_id AND i.code = l.item WHERE l.tenant_id = $1 AND l.code = $2";

void sy_api_listings_get(sy_req *r)
{
    get_one(r, sql_listing_one, "code", "mall listing", listing_row, NULL);
}

static int apply_listing_create(sy_conn *c, sy_req *r, void *ctx)
{
    sy_benefit_listing *l = ctx;
    l->now_ms = sy_req_now_ms(r);
    int rc = sy_benefit_listing_create(c, sy_req_principal(r)->tenant, l);
    if (rc > 0) {
        char what[96];
        snprintf(what, sizeof what, "%s%s%s", rc == SY_BENEFIT_EXISTS ? "listing '" : "",
                 rc == SY_BENEFIT_EXISTS         ? l->code
                 : rc == SY_BENEFIT_UNKNOWN_TYPE ? l->point_type
                                                 : l->item,
                 rc == SY_BENEFIT_EXISTS ? "'" : "");
        if (rc == SY_BENEFIT_UNKNOWN_ITEM)
            sy_reply_problem(r, 400, "validation", "/item", "no benefit item '%s'", l->item);
        else
            reply_refusal(r, rc, NULL, what);
        return 1;
    }
    if (rc != SY_OK)
        return rc;
    return reply_created(c, r, sql_listing_one, l->code, listing_row, "/v1/mall/listings/", 201);
}

void sy_api_listings_create(sy_req *r)
{
    static const char *const fields[] = {"code",   "item",   "title",      "point_type",
                                         "price",  "limits", "segment_id", "segment_expression",
                                         "active", NULL};
    json_t *body = sy_req_json_object(r);
    sy_benefit_listing *l = sy_req_alloc(r, sizeof *l);
    memset(l, 0, sizeof *l);
    l->active = true;
    if (!body || !sy_v_only(r, body, fields) || !v_code(r, body, "code", &l->code) ||
        !v_code(r, body, "item", &l->item) ||
        !sy_v_string(r, body, "title", true, SY_BENEFIT_NAME_MAX, &l->title) ||
        !sy_v_string(r, body, "point_type", true, SY_POINT_TYPE_CODE_MAX, &l->point_type) ||
        !v_int(r, body, "/price", "price", true, 1, SY_LEDGER_MAX_AMOUNT, &l->price) ||
        !v_limits(r, body, &l->limits) || !v_bool(r, body, "active", &l->active) ||
        !v_segment(r, body, &l->segment_id, &l->segment_expression))
        return;
    sy_req_write(r, apply_listing_create, offers_changed, l);
}

/* ------------------------------------------------------------------ */
/* reconciliation                                                      */

/* The UTC moment of local midnight starting `day` in zone. */
static int64_t local_midnight(const char *zone, int64_t day)
{
    return sy_local_midnight(zone, day);
}

static const char *str_of(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

static const char *const k_recon_names[] = {"issued",  "issued_cost",  "redeemed", "redeemed_cost",
                                            "expired", "expired_cost", "revoked",  "revoked_cost"};

/* Figures per item, from sy_benefit_moments (the one definition of them):
 * items[] sorted by code, with their 8 figures (count, cost per kind). */
typedef struct recon_item {
    char code[SY_BENEFIT_CODE_MAX + 1];
    int64_t f[8];
} recon_item;

typedef struct recon {
    recon_item *items;
    size_t n;
} recon;

static int recon_cmp(const void *a, const void *b)
{
    return strcmp(((const recon_item *)a)->code, ((const recon_item *)b)->code);
}

static void recon_moment(void *ud, const char *item, const char *supplier, int kind, int64_t at,
                         int64_t cost)
{
    (void)supplier;
    (void)at;
    recon *rc = ud;
    recon_item key;
    snprintf(key.code, sizeof key.code, "%s", item);
    recon_item *it = rc->n ? bsearch(&key, rc->items, rc->n, sizeof *rc->items, recon_cmp) : NULL;
    if (it) {
        it->f[2 * kind]++;
        it->f[2 * kind + 1] += cost;
    }
}

/* The parameters of the two benefit reports: from and to (the tenant's
 * days, the span at most max_days), format (json or csv), supplier; and the
 * tenant, whose time zone makes the days.  On a bad one, replies (400, or
 * 500 when the tenant cannot be read) and returns false. */
typedef struct benefit_period {
    const char *supplier, *from_s, *to_s, *format;
    int64_t from_day, to_day;
    sy_tenant_info ti;
} benefit_period;

static bool benefit_period_parse(sy_req *r, int64_t max_days, const char *max_text,
                                 benefit_period *q)
{
    q->supplier = sy_req_query(r, "supplier");
    q->from_s = sy_req_query(r, "from");
    q->to_s = sy_req_query(r, "to");
    q->format = sy_req_query(r, "format");
    if (!q->from_s || !sy_parse_date(q->from_s, &q->from_day)) {
        sy_reply_problem(r, 400, "validation", "from",
                         q->from_s ? "'from' must be a day, YYYY-MM-DD (the first, in the"
                                     " tenant's days)"
                                   : "'from' is required: the first day, YYYY-MM-DD (the"
                                     " tenant's days)");
        return false;
    }
    if (!q->to_s || !sy_parse_date(q->to_s, &q->to_day)) {
        sy_reply_problem(r, 400, "validation", "to",
                         q->to_s ? "'to' must be a day, YYYY-MM-DD (the last, included)"
                                 : "'to' is required: the last day (included), YYYY-MM-DD");
        return false;
    }
    if (q->to_day < q->from_day || q->to_day - q->from_day >= max_days) {
        sy_reply_problem(r, 400, "validation", "to",
                         "'to' must be on or after 'from', at most %s later", max_text);
        return false;
    }
    if (q->format && strcmp(q->format, "json") != 0 && strcmp(q->format, "csv") != 0) {
        sy_reply_problem(r, 400, "validation", "format", "'format' must be json or csv");
        return false;
    }
    if (q->supplier && !sy_benefit_code_valid(q->supplier)) {
        sy_reply_problem(r, 400, "validation", "supplier", "not a supplier code");
        return false;
    }
    if (sy_tenants_get(sy_req_app(r)->tenants, sy_req_principal(r)->tenant, &q->ti) != SY_OK) {
        sy_reply_problem(r, 500, "internal", NULL, "the tenant could not be read");
        return false;
    }
    return true;
}

void sy_api_reconciliation(sy_req *r)
{
    static const char sql[] =
        "SELECT code, name, supplier, kind FROM benefit_items"
        " WHERE tenant_id = $1 AND (CAST($2 AS TEXT) IS NULL OR supplier = $2)"
        " ORDER BY supplier, code";
    benefit_period q;
    if (!benefit_period_parse(r, 3661, "ten years", &q))
        return;
    sy_app *app = sy_req_app(r);
    const char *tenant = sy_req_principal(r)->tenant;
    int64_t from = local_midnight(q.ti.timezone, q.from_day),
            to = local_midnight(q.ti.timezone, q.to_day + 1);
    static const char sql_supplier[] =
        "SELECT name FROM benefit_suppliers WHERE tenant_id = $1 AND code = $2";
    sy_conn *c = sy_store_acquire(app->store);
    int rc = sy_conn_exec(c, "BEGIN");
    bool known = true;
    sy_stmt *st = NULL;
    if (rc == SY_OK && q.supplier) {
        if (!(st = sy_conn_prepare(c, sql_supplier))) {
            rc = SY_ERR;
        } else {
            sy_stmt_bind_text(st, 1, tenant);
            sy_stmt_bind_text(st, 2, q.supplier);
            rc = sy_stmt_step(st);
            known = rc == SY_ROW;
            sy_stmt_reset(st);
            rc = rc == SY_ROW || rc == SY_DONE ? SY_OK : rc;
        }
    }
    json_t *items = json_array();
    int64_t totals[8] = {0};
    recon rec = {0};
    if (rc == SY_OK && known) {
        if (!(st = sy_conn_prepare(c, sql))) {
            rc = SY_ERR;
        } else {
            sy_stmt_bind_text(st, 1, tenant);
            sy_stmt_bind_text(st, 2, q.supplier);
            while ((rc = sy_stmt_step(st)) == SY_ROW) {
                json_array_append_new(items,
                                      json_pack("{s:s, s:s, s:s, s:s}", "item", sy_stmt_text(st, 0),
                                                "name", sy_stmt_text(st, 1), "supplier",
                                                sy_stmt_text(st, 2), "kind", sy_stmt_text(st, 3)));
                rec.items = sy_xrealloc(rec.items, (rec.n + 1) * sizeof *rec.items);
                memset(&rec.items[rec.n], 0, sizeof *rec.items);
                snprintf(rec.items[rec.n++].code, sizeof rec.items->code, "%s",
                         sy_stmt_text(st, 0));
            }
            sy_stmt_reset(st);
            rc = rc == SY_DONE ? SY_OK : rc;
        }
        if (rc == SY_OK) {
            if (rec.n)
                qsort(rec.items, rec.n, sizeof *rec.items, recon_cmp);
            rc = sy_benefit_moments(c, tenant, q.supplier, from, to, recon_moment, &rec);
        }
        size_t i;
        json_t *o;
        json_array_foreach (items, i, o) {
            recon_item key;
            snprintf(key.code, sizeof key.code, "%s", str_of(o, "item"));
            const recon_item *it =
                rec.n ? bsearch(&key, rec.items, rec.n, sizeof *rec.items, recon_cmp) : NULL;
            for (int k = 0; k < 8; k++) {
                int64_t v = it ? it->f[k] : 0;
                totals[k] += v;
                json_object_set_new(o, k_recon_names[k], json_integer(v));
            }
        }
    }
    free(rec.items);
    sy_conn_exec(c, "COMMIT");
    if (rc != SY_OK) {
        sy_api_store_error(r, c);
        json_decref(items);
    } else if (!known) {
        sy_reply_problem(r, 404, "not-found", "supplier", "no supplier '%s'", q.supplier);
        json_decref(items);
    } else if (q.format && !strcmp(q.format, "csv")) {
        sy_buf b = {0};
        sy_buf_puts(&b, "supplier,item,name,kind");
        for (int k = 0; k < 8; k++)
            sy_buf_printf(&b, ",%s", k_recon_names[k]);
        sy_buf_puts(&b, "\r\n");
        size_t i;
        json_t *o;
        json_array_foreach (items, i, o) {
            /* Names are the bank's text: quote them, doubling quotes. */
            sy_buf_printf(&b, "%s,%s,\"", str_of(o, "supplier"), str_of(o, "item"));
            for (const char *p = str_of(o, "name"); *p; p++) {
                if (*p == '"')
                    sy_buf_puts(&b, "\"");
                sy_buf_append(&b, p, 1);
            }
            sy_buf_printf(&b, "\",%s", str_of(o, "kind"));
            for (int k = 0; k < 8; k++)
                sy_buf_printf(&b, ",%lld",
                              (long long)json_integer_value(json_object_get(o, k_recon_names[k])));
            sy_buf_puts(&b, "\r\n");
        }
        json_decref(items);
        size_t len = b.len;
        sy_reply_raw(r, 200, "text/csv; charset=utf-8", sy_buf_steal(&b), len);
    } else {
        json_t *tot = json_object();
        for (int k = 0; k < 8; k++)
            json_object_set_new(tot, k_recon_names[k], json_integer(totals[k]));
        json_t *o =
            json_pack("{s:o, s:s, s:s, s:s, s:o, s:o, s:o}", "supplier",
                      q.supplier ? json_string(q.supplier) : json_null(), "from", q.from_s, "to",
                      q.to_s, "timezone", q.ti.timezone, "period",
                      json_pack("{s:o, s:o}", "start", sy_json_time(from), "end", sy_json_time(to)),
                      "items", items, "totals", tot);
        sy_reply_json(r, 200, o);
    }
    sy_store_release(app->store, c);
}

/* ---- GET /v1/reports/benefits: the same figures by day, supplier, item ---- */

typedef struct bmoment {
    int64_t day; /* index into the report's days */
    size_t item; /* index into the sorted items */
    int kind;
    int64_t cost;
} bmoment;

typedef struct bcollect {
    recon rec;
    const char **suppliers; /* of rec.items[i] */
    const int64_t *bounds;  /* local midnights, ndays + 1 */
    size_t ndays;
    bmoment *m;
    size_t n, cap;
} bcollect;

static void bcollect_moment(void *ud, const char *item, const char *supplier, int kind, int64_t at,
                            int64_t cost)
{
    (void)supplier;
    bcollect *b = ud;
    recon_item key;
    snprintf(key.code, sizeof key.code, "%s", item);
    const recon_item *it =
        b->rec.n ? bsearch(&key, b->rec.items, b->rec.n, sizeof *b->rec.items, recon_cmp) : NULL;
    if (!it)
        return;
    size_t lo = 0, hi = b->ndays; /* the last day whose midnight is <= at */
    while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        if (b->bounds[mid] <= at)
            lo = mid;
        else
            hi = mid;
    }
    if (b->n == b->cap) {
        b->cap = b->cap ? 2 * b->cap : 256;
        b->m = sy_xrealloc(b->m, b->cap * sizeof *b->m);
    }
    b->m[b->n++] = (bmoment){(int64_t)lo, (size_t)(it - b->rec.items), kind, cost};
}

static int bmoment_cmp(const void *a, const void *b)
{
    const bmoment *x = a, *y = b;
    if (x->day != y->day)
        return x->day < y->day ? -1 : 1;
    return x->item < y->item ? -1 : x->item > y->item;
}

void sy_api_reports_benefits(sy_req *r)
{
    static const char sql[] = "SELECT code, supplier FROM benefit_items WHERE tenant_id = $1"
                              " AND (CAST($2 AS TEXT) IS NULL OR supplier = $2)";
    benefit_period q;
    if (!benefit_period_parse(r, 400, "400 days", &q))
        return;
    sy_app *app = sy_req_app(r);
    const char *tenant = sy_req_principal(r)->tenant;
    uint64_t t0 = sy_mono_ns();
    size_t ndays = (size_t)(q.to_day - q.from_day + 1);
    int64_t *bounds = sy_xmalloc((ndays + 1) * sizeof *bounds);
    for (size_t i = 0; i <= ndays; i++)
        bounds[i] = local_midnight(q.ti.timezone, q.from_day + (int64_t)i);
    bcollect b = {.bounds = bounds, .ndays = ndays};
    sy_conn *c = sy_store_acquire(app->store);
    int rc = sy_conn_exec(c, "BEGIN");
    sy_stmt *st = rc == SY_OK ? sy_conn_prepare(c, sql) : NULL;
    if (rc == SY_OK && !st)
        rc = SY_ERR;
    if (st) {
        sy_stmt_bind_text(st, 1, tenant);
        sy_stmt_bind_text(st, 2, q.supplier);
        while ((rc = sy_stmt_step(st)) == SY_ROW) {
            b.rec.items = sy_xrealloc(b.rec.items, (b.rec.n + 1) * sizeof *b.rec.items);
            memset(&b.rec.items[b.rec.n], 0, sizeof *b.rec.items);
            snprintf(b.rec.items[b.rec.n].code, sizeof b.rec.items->code, "%s",
                     sy_stmt_text(st, 0));
            b.rec.n++;
        }
        sy_stmt_reset(st);
        rc = rc == SY_DONE ? SY_OK : rc;
    }
    if (rc == SY_OK) {
        if (b.rec.n)
            qsort(b.rec.items, b.rec.n, sizeof *b.rec.items, recon_cmp);
        rc = sy_benefit_moments(c, tenant, q.supplier, bounds[0], bounds[ndays], bcollect_moment,
                                &b);
    }
    /* each item's supplier, in the sorted order */
    b.suppliers = sy_xcalloc(b.rec.n + 1, sizeof *b.suppliers);
    json_t *sup = json_object();
    if (rc == SY_OK && st) {
        sy_stmt_bind_text(st, 1, tenant);
        sy_stmt_bind_text(st, 2, q.supplier);
        while ((rc = sy_stmt_step(st)) == SY_ROW)
            json_object_set_new(sup, sy_stmt_text(st, 0), json_string(sy_stmt_text(st, 1)));
        sy_stmt_reset(st);
        rc = rc == SY_DONE ? SY_OK : rc;
    }
    for (size_t i = 0; i < b.rec.n; i++)
        b.suppliers[i] = json_string_value(json_object_get(sup, b.rec.items[i].code));
    sy_conn_exec(c, "COMMIT");
    if (rc != SY_OK) {
        sy_api_store_error(r, c);
        sy_store_release(app->store, c);
        goto out;
    }
    sy_store_release(app->store, c);
    if (b.n) /* qsort's array may not be NULL, even for 0 elements */
        qsort(b.m, b.n, sizeof *b.m, bmoment_cmp);
    json_t *rows = json_array(), *by_supplier = json_object();
    int64_t totals[8] = {0};
    sy_buf csv = {0};
    bool want_csv = q.format && !strcmp(q.format, "csv");
    if (want_csv) {
        sy_buf_puts(&csv, "day,supplier,item");
        for (int k = 0; k < 8; k++)
            sy_buf_printf(&csv, ",%s", k_recon_names[k]);
        sy_buf_puts(&csv, "\r\n");
    }
    for (size_t i = 0; i < b.n;) {
        int64_t f[8] = {0};
        size_t j = i;
        for (; j < b.n && b.m[j].day == b.m[i].day && b.m[j].item == b.m[i].item; j++) {
            f[2 * b.m[j].kind]++;
            f[2 * b.m[j].kind + 1] += b.m[j].cost;
        }
        char day[11];
        sy_format_date(q.from_day + b.m[i].day, day);
        const char *item = b.rec.items[b.m[i].item].code, *s = b.suppliers[b.m[i].item];
        json_t *row =
            json_pack("{s:s, s:s, s:s}", "day", day, "supplier", s ? s : "", "item", item);
        json_t *ps = json_object_get(by_supplier, s ? s : "");
        if (!ps) {
            ps = json_object();
            for (int k = 0; k < 8; k++)
                json_object_set_new(ps, k_recon_names[k], json_integer(0));
            json_object_set_new(by_supplier, s ? s : "", ps);
        }
        if (want_csv)
            sy_buf_printf(&csv, "%s,%s,%s", day, s ? s : "", item);
        for (int k = 0; k < 8; k++) {
            totals[k] += f[k];
            json_object_set_new(row, k_recon_names[k], json_integer(f[k]));
            json_object_set_new(
                ps, k_recon_names[k],
                json_integer(json_integer_value(json_object_get(ps, k_recon_names[k])) + f[k]));
            if (want_csv)
                sy_buf_printf(&csv, ",%lld", (long long)f[k]);
        }
        if (want_csv)
            sy_buf_puts(&csv, "\r\n");
        json_array_append_new(rows, row);
        i = j;
    }
    double ms = (double)(sy_mono_ns() - t0) / 1e6;
    if (want_csv) {
        json_decref(rows);
        json_decref(by_supplier);
        size_t len = csv.len;
        sy_reply_raw(r, 200, "text/csv; charset=utf-8", sy_buf_steal(&csv), len);
    } else {
        json_t *tot = json_object();
        for (int k = 0; k < 8; k++)
            json_object_set_new(tot, k_recon_names[k], json_integer(totals[k]));
        sy_reply_json(r, 200,
                      json_pack("{s:o, s:s, s:s, s:s, s:o, s:o, s:o, s:f}", "supplier",
                                q.supplier ? json_string(q.supplier) : json_null(), "from",
                                q.from_s, "to", q.to_s, "timezone", q.ti.timezone, "rows", rows,
                                "by_supplier", by_supplier, "totals", tot, "took_ms", ms));
    }
out:
    json_decref(sup);
    free(b.suppliers);
    free(b.rec.items);
    free(b.m);
    free(bounds);
}

/* api_segments.c — segment expressions over the tenant's index.
 *
 * POST /v1/segments:preview evaluates an expression without saving it:
 * the number of matching customers and, optionally, their breakdown by one
 * enum, bool or string attribute.  Errors in the expression are 400
 * validation answers with the position (offset, line, column) and what was
 * expected. */
#include "api.h"
#include "app.h"
#include "segment_eval.h"
#include "segment_parse.h"
#include "util.h"
#include "validate.h"

#include <stdlib.h>
#include <string.h>

static void reply_expression_error(sy_req *r, const sy_seg_error *e, const char *src)
{
    int line = e->line, col = e->col;
    if (line == 0) {
        /* Semantic errors carry the offset only: count lines and characters. */
        line = 1;
        col = 1;
        for (int i = 0; i < e->pos && src[i]; i++) {
            if (src[i] == '\n') {
                line++;
                col = 1;
            } else if (((unsigned char)src[i] & 0xc0) != 0x80) {
                col++;
            }
        }
    }
    sy_reply_problem(r, 400, "validation", "/expression", "at %d:%d: %s", line, col, e->msg);
    sy_reply_extend(r, "position",
                    json_pack("{s:i, s:i, s:i}", "offset", e->pos, "line", line, "column", col));
}

typedef struct breakdown {
    const roaring_bitmap_t *members;
    json_t *rows;
    uint64_t counted;
} breakdown;

static void breakdown_visit(const char *value, const roaring_bitmap_t *b, void *ud)
{
    breakdown *bd = ud;
    uint64_t n = roaring_bitmap_and_cardinality(bd->members, b);
    if (!n)
        return;
    bd->counted += n;
    json_array_append_new(bd->rows,
                          json_pack("{s:s, s:I}", "value", value, "count", (json_int_t)n));
}

static int by_count_desc(const void *a, const void *b)
{
    json_int_t x = json_integer_value(json_object_get(*(json_t *const *)a, "count"));
    json_int_t y = json_integer_value(json_object_get(*(json_t *const *)b, "count"));
    return (y > x) - (y < x);
}

/* The warnings of an expression that parsed: every event it names that
 * the tenant has never recorded (a misspelt name would otherwise just
 * count no one).  Under the index's read lock. */
typedef struct unseen {
    const sy_index *ix;
    json_t *warnings;
} unseen;

static void warn_unseen(const sy_seg_node *n, void *ud)
{
    unseen *u = ud;
    if ((n->kind != SY_SEG_DID && n->kind != SY_SEG_DWELL) || sy_index_event_known(u->ix, n->name))
        return;
    char msg[256];
    snprintf(msg, sizeof msg,
             "no '%.64s' event has been recorded: %s(%.64s, ...) matches no one;"
             " check the name",
             n->name, n->kind == SY_SEG_DID ? "did" : "dwell", n->name);
    size_t i;
    json_t *w;
    json_array_foreach (u->warnings, i, w)
        if (!strcmp(json_string_value(w), msg))
            return; /* each name once */
    json_array_append_new(u->warnings, json_string(msg));
}

void sy_api_segments_preview(sy_req *r)
{
    json_t *body = sy_req_json_object(r);
    static const char *const fields[] = {"expression", "breakdown", NULL};
    const char *expr = NULL, *by = NULL;
    if (!body || !sy_v_only(r, body, fields) ||
        !sy_v_string(r, body, "expression", true, SY_SEG_MAX_INPUT, &expr) ||
        !sy_v_string(r, body, "breakdown", false, SY_ATTR_NAME_MAX, &by))
        return;
    sy_seg_error e;
    memset(&e, 0, sizeof e);
    sy_seg_node *ast = sy_seg_parse(expr, strlen(expr), &e);
    if (!ast) {
        reply_expression_error(r, &e, expr);
        return;
    }
    sy_app *app = sy_req_app(r);
    const char *tenant = sy_req_principal(r)->tenant;
    sy_attr_set *schema = sy_schemas_get(app->schemas, tenant);
    sy_index *ix = schema ? sy_indexes_get(app->indexes, tenant) : NULL;
    if (!ix) {
        sy_seg_free(ast);
        sy_attr_set_release(schema);
        sy_reply_problem(r, 500, "internal", NULL, "the tenant's index is not available");
        return;
    }
    const sy_attr_def *bdef = by ? sy_attr_find(schema, by) : NULL;
    if (by && (!bdef || bdef->type == SY_ATTR_INTEGER || bdef->type == SY_ATTR_NUMBER ||
               bdef->type == SY_ATTR_DATE)) {
        sy_reply_problem(r, 400, "validation", "/breakdown",
                         "'breakdown' must name an enum, bool or string attribute");
        sy_seg_free(ast);
        sy_attr_set_release(schema);
        return;
    }
    uint64_t t0 = sy_mono_ns();
    int64_t now = sy_now_ms();
    sy_index_rdlock(ix);
    roaring_bitmap_t *members = sy_seg_eval_index(ix, schema, now, ast, &e);
    unseen u = {ix, json_array()};
    if (members)
        sy_seg_walk(ast, warn_unseen, &u);
    json_t *rows = NULL;
    uint64_t count = members ? roaring_bitmap_get_cardinality(members) : 0;
    if (members && bdef) {
        breakdown bd = {.members = members, .rows = json_array()};
        sy_index_values(ix, bdef->name, breakdown_visit, &bd);
        rows = bd.rows;
        if (count > bd.counted)
            json_array_append_new(
                rows, json_pack("{s:n, s:I}", "value", "count", (json_int_t)(count - bd.counted)));
    }
    sy_index_unlock(ix);
    double ms = (double)(sy_mono_ns() - t0) / 1e6;
    if (!members) {
        reply_expression_error(r, &e, expr);
    } else {
        char *canon = sy_seg_format(ast);
        json_t *out =
            json_pack("{s:s, s:I, s:o, s:f}", "expression", canon, "count", (json_int_t)count,
                      "evaluated_at", sy_json_time(now), "took_ms", ms);
        free(canon);
        if (rows) {
            size_t n = json_array_size(rows);
            json_t **v = sy_xmalloc(n * sizeof *v);
            for (size_t i = 0; i < n; i++)
                v[i] = json_incref(json_array_get(rows, i));
            qsort(v, n, sizeof *v, by_count_desc);
            json_t *sorted = json_array();
            for (size_t i = 0; i < n; i++)
                json_array_append_new(sorted, v[i]);
            free(v);
            json_decref(rows);
            json_object_set_new(out, "breakdown",
                                json_pack("{s:s, s:o}", "attribute", bdef->name, "rows", sorted));
        }
        if (json_array_size(u.warnings))
            json_object_set(out, "warnings", u.warnings);
        sy_reply_json(r, 200, out);
        roaring_bitmap_free(members);
    }
    json_decref(u.warnings);
    sy_seg_free(ast);
    sy_attr_set_release(schema);
}

/* ---- checks shared with rule tags ---- */

bool sy_api_check_expression(sy_req *r, const char *expr, char kind, const char *name)
{
    sy_seg_error e;
    memset(&e, 0, sizeof e);
    sy_seg_node *ast = sy_seg_parse(expr, strlen(expr), &e);
    if (!ast) {
        reply_expression_error(r, &e, expr);
        return false;
    }
    sy_app *app = sy_req_app(r);
    const char *tenant = sy_req_principal(r)->tenant;
    sy_attr_set *schema = sy_schemas_get(app->schemas, tenant);
    sy_index *ix = schema ? sy_indexes_get(app->indexes, tenant) : NULL;
    bool ok = ix != NULL;
    if (!ok) {
        sy_reply_problem(r, 500, "internal", NULL, "the tenant's index is not available");
    } else {
        sy_index_rdlock(ix);
        const char *via = NULL;
        if (kind && sy_seg_would_cycle(ix, kind, name, ast, &via)) {
            sy_reply_problem(r, 400, "validation", "/expression",
                             "the expression refers back to %s '%s' (through '%s'): references "
                             "must not form a cycle",
                             kind == 't' ? "tag" : "segment", name, via ? via : name);
            ok = false;
        } else {
            /* Evaluating checks it against the schema and the catalogue;
             * among no one, it costs nothing but the checks. */
            roaring_bitmap_t *none = roaring_bitmap_create();
            roaring_bitmap_t *b = sy_seg_eval_index_among(ix, schema, sy_now_ms(), ast, none, &e);
            roaring_bitmap_free(none);
            if (!b) {
                sy_index_unlock(ix);
                reply_expression_error(r, &e, expr);
                sy_seg_free(ast);
                sy_attr_set_release(schema);
                return false;
            }
            roaring_bitmap_free(b);
        }
        sy_index_unlock(ix);
    }
    sy_seg_free(ast);
    sy_attr_set_release(schema);
    return ok;
}

/* ---- saved segments ---- */

#define SEGMENT_COLUMNS "id, name, expression, description, created_at, updated_at"

static bool segment_id_valid(const char *s)
{
    return sy_ident_valid(s, 63);
}

/* Evaluates saved segment id (read lock taken here); NULL when unknown. */
/* The members of saved segment id, or NULL when there is no such segment;
 * with `one`, only whether that customer (a dense id) is one of them, for
 * a lookup per term instead of a scan of the tenant. */
static roaring_bitmap_t *segment_members_among(sy_req *r, const char *id, const uint32_t *one,
                                               sy_index **ixp)
{
    sy_app *app = sy_req_app(r);
    const char *tenant = sy_req_principal(r)->tenant;
    sy_attr_set *schema = sy_schemas_get(app->schemas, tenant);
    sy_index *ix = schema ? sy_indexes_get(app->indexes, tenant) : NULL;
    roaring_bitmap_t *b = NULL;
    if (ix) {
        sy_index_rdlock(ix);
        const sy_seg_node *ast = sy_index_segment(ix, id);
        sy_seg_error e;
        roaring_bitmap_t *among =
            one ? roaring_bitmap_from_range(*one, (uint64_t)*one + 1, 1) : NULL;
        if (ast)
            b = sy_seg_eval_index_among(ix, schema, sy_now_ms(), ast, among, &e);
        if (among)
            roaring_bitmap_free(among);
        if (ast && !b)
            sy_warn("segment %s/%s no longer evaluates: %s", tenant, id, e.msg);
        sy_index_unlock(ix);
    }
    sy_attr_set_release(schema);
    if (ixp)
        *ixp = ix;
    return b;
}

static roaring_bitmap_t *segment_members(sy_req *r, const char *id, sy_index **ixp)
{
    return segment_members_among(r, id, NULL, ixp);
}

roaring_bitmap_t *sy_api_saved_segment_members(sy_req *r, const char *id)
{
    return segment_id_valid(id) ? segment_members(r, id, NULL) : NULL;
}

static json_t *segment_row_json(sy_stmt *st)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:o, s:o}", "id", sy_stmt_text(st, 0), "name",
                     sy_stmt_text(st, 1), "expression", sy_stmt_text(st, 2), "description",
                     sy_stmt_text(st, 3), "created_at", sy_json_time(sy_stmt_i64(st, 4)),
                     "updated_at", sy_json_time(sy_stmt_i64(st, 5)));
}

static void add_size(sy_req *r, json_t *seg)
{
    roaring_bitmap_t *b = segment_members(r, json_string_value(json_object_get(seg, "id")), NULL);
    json_object_set_new(
        seg, "size", b ? json_integer((json_int_t)roaring_bitmap_get_cardinality(b)) : json_null());
    if (b)
        roaring_bitmap_free(b);
}

void sy_api_segments_list(sy_req *r)
{
    static const char sql[] =
        "SELECT " SEGMENT_COLUMNS " FROM segments WHERE tenant_id = $1 ORDER BY id";
    json_t *items = sy_api_tenant_rows(r, sql, segment_row_json);
    if (!items)
        return;
    size_t i;
    json_t *seg;
    json_array_foreach (items, i, seg)
        add_size(r, seg);
    sy_reply_json(r, 200, json_pack("{s:o}", "items", items));
}

static int read_segment(sy_conn *c, const char *tenant, const char *id, json_t **out)
{
    static const char sql[] =
        "SELECT " SEGMENT_COLUMNS " FROM segments WHERE tenant_id = $1 AND id = $2";
    *out = NULL;
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, id);
    int rc = sy_stmt_step(st);
    if (rc == SY_ROW)
        *out = segment_row_json(st);
    sy_stmt_reset(st);
    return rc == SY_ROW || rc == SY_DONE ? SY_OK : rc;
}

void sy_api_segments_get(sy_req *r)
{
    sy_app *app = sy_req_app(r);
    sy_conn *c = sy_store_acquire(app->store);
    json_t *seg = NULL;
    int rc = read_segment(c, sy_req_principal(r)->tenant, sy_req_param(r, "id"), &seg);
    if (rc != SY_OK)
        sy_api_store_error(r, c);
    sy_store_release(app->store, c);
    if (rc != SY_OK)
        return;
    if (!seg) {
        sy_reply_problem(r, 404, "not-found", NULL, "no segment '%s'", sy_req_param(r, "id"));
        return;
    }
    add_size(r, seg);
    sy_reply_json(r, 200, seg);
}

typedef struct seg_write {
    const char *id, *name, *expression, *description;
    bool create;
} seg_write;

static int record_size(sy_conn *c, const char *tenant, const char *id, const char *day,
                       int64_t size, int64_t now);

/* Evaluates expr for the tenant now: its size and the business day. */
static int measure(sy_app *app, const char *tenant, const char *expr, int64_t *size, char day[11])
{
    *size = -1;
    sy_attr_set *schema = sy_schemas_get(app->schemas, tenant);
    sy_index *ix = schema ? sy_indexes_get(app->indexes, tenant) : NULL;
    if (!ix) {
        sy_attr_set_release(schema);
        return SY_ERR;
    }
    sy_seg_error e;
    sy_seg_node *ast = sy_seg_parse(expr, strlen(expr), &e);
    int64_t now = sy_now_ms();
    sy_index_rdlock(ix);
    roaring_bitmap_t *b = ast ? sy_seg_eval_index(ix, schema, now, ast, &e) : NULL;
    sy_format_date(sy_index_day(ix, now), day);
    sy_index_unlock(ix);
    if (b) {
        *size = (int64_t)roaring_bitmap_get_cardinality(b);
        roaring_bitmap_free(b);
    }
    sy_seg_free(ast);
    sy_attr_set_release(schema);
    return SY_OK;
}

static int apply_segment_write(sy_conn *c, sy_req *r, void *ctx)
{
    static const char sql_ins[] =
        "INSERT INTO segments (tenant_id, id, name, expression, description, created_at,"
        " updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6)";
    static const char sql_upd[] =
        "UPDATE segments SET name = COALESCE($3, name), expression = COALESCE($4, expression),"
        " description = COALESCE($5, description), updated_at = $6"
        " WHERE tenant_id = $1 AND id = $2";
    seg_write *w = ctx;
    const char *tenant = sy_req_principal(r)->tenant;
    sy_stmt *st = sy_conn_prepare(c, w->create ? sql_ins : sql_upd);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, w->id);
    sy_stmt_bind_text(st, 3, w->name);
    sy_stmt_bind_text(st, 4, w->expression);
    sy_stmt_bind_text(st, 5, w->create && !w->description ? "" : w->description);
    sy_stmt_bind_i64(st, 6, sy_now_ms());
    int rc = sy_stmt_exec(st);
    if (rc == SY_ECONSTRAINT) {
        sy_reply_problem(r, 409, "conflict", "/id", "segment '%s' exists already", w->id);
        return 1;
    }
    if (rc != SY_OK)
        return rc;
    if (!w->create && sy_conn_changes(c) == 0) {
        sy_reply_problem(r, 404, "not-found", NULL, "no segment '%s'", w->id);
        return 1;
    }
    json_t *seg = NULL;
    if ((rc = read_segment(c, tenant, w->id, &seg)) != SY_OK || !seg)
        return rc ? rc : SY_ERR;
    /* Today's size, in the same transaction (the daily job keeps it up). */
    const char *expr = json_string_value(json_object_get(seg, "expression"));
    int64_t size = -1;
    char day[11];
    if ((rc = measure(sy_req_app(r), tenant, expr, &size, day)) == SY_OK && size >= 0)
        rc = record_size(c, tenant, w->id, day, size, sy_now_ms());
    if (rc != SY_OK) {
        json_decref(seg);
        return rc;
    }
    json_object_set_new(seg, "size", json_integer(size));
    sy_req_audit_target(r, w->id);
    if (w->create) {
        char loc[128];
        snprintf(loc, sizeof loc, "/v1/segments/%s", w->id);
        sy_reply_header(r, "Location", loc);
    }
    sy_reply_json(r, w->create ? 201 : 200, seg);
    return 0;
}

static void segment_written(sy_req *r, void *ctx)
{
    seg_write *w = ctx;
    sy_index *ix = sy_indexes_get(sy_req_app(r)->indexes, sy_req_principal(r)->tenant);
    if (!ix || !w->expression)
        return;
    sy_seg_error e;
    sy_index_segment_define(ix, w->id, w->expression,
                            sy_seg_parse(w->expression, strlen(w->expression), &e));
}

static void segment_write(sy_req *r, bool create)
{
    json_t *body = sy_req_json_object(r);
    static const char *const create_fields[] = {"id", "name", "expression", "description", NULL};
    static const char *const put_fields[] = {"name", "expression", "description", NULL};
    seg_write *w = sy_req_alloc(r, sizeof *w);
    memset(w, 0, sizeof *w);
    w->create = create;
    if (!body || !sy_v_only(r, body, create ? create_fields : put_fields) ||
        (create && !sy_v_string(r, body, "id", true, 63, &w->id)) ||
        !sy_v_string(r, body, "name", create, 100, &w->name) ||
        !sy_v_string(r, body, "expression", create, SY_SEG_MAX_INPUT, &w->expression) ||
        !sy_v_string(r, body, "description", false, 500, &w->description))
        return;
    if (!create)
        w->id = sy_req_param(r, "id");
    if (create && !segment_id_valid(w->id)) {
        sy_reply_problem(r, 400, "validation", "/id",
                         "'id' must match [a-z][a-z0-9_]* (at most 63 characters)");
        return;
    }
    if (!create && !w->name && !w->expression && !w->description) {
        sy_reply_problem(r, 400, "validation", "", "nothing to change");
        return;
    }
    if (w->expression && !sy_api_check_expression(r, w->expression, 's', w->id))
        return;
    sy_req_write(r, apply_segment_write, segment_written, w);
}

void sy_api_segments_create(sy_req *r)
{
    segment_write(r, true);
}

void sy_api_segments_put(sy_req *r)
{
    segment_write(r, false);
}

/* The users of a segment outside the segment language, named into a list
 * ("item 'a', campaign 'b'"): at most four, then "and N more". */
typedef struct users_list {
    char text[320];
    int n;
} users_list;

static void users_add(users_list *u, const char *kind, const char *code)
{
    size_t len = strlen(u->text);
    if (u->n < 4)
        snprintf(u->text + len, sizeof u->text - len, "%s%s '%s'", u->n ? ", " : "", kind, code);
    u->n++;
}

static void walk_segment_ref(const sy_seg_node *n, void *ud)
{
    const char **id = ud;
    if (*id && n->kind == SY_SEG_SEGMENT && !strcmp(n->name, *id))
        *id = NULL; /* found */
}

/* Lists in u what still uses segment id: the benefit items, packages and
 * mall listings for it (by segment_id, or by a segment_expression that
 * refers to it), and the campaigns for it that have not ended (ended as
 * sy_campaign_effective says at now_ms: a draft or a pending campaign may
 * still run).  Deleting the segment would leave them eligible to nobody,
 * and a segment saved later under the same id would silently become their
 * audience. */
static int segment_users(sy_conn *c, const char *tenant, const char *id, int64_t now_ms,
                         users_list *u)
{
    static const char sql_ids[] =
        "SELECT 'item', code FROM benefit_items WHERE tenant_id = $1 AND segment_id = $2"
        " UNION ALL SELECT 'package', code FROM benefit_packages WHERE tenant_id = $1"
        " AND segment_id = $2"
        " UNION ALL SELECT 'listing', code FROM mall_listings WHERE tenant_id = $1"
        " AND segment_id = $2"
        " UNION ALL SELECT 'campaign', id FROM campaigns WHERE tenant_id = $1 AND segment_id = $2"
        " AND status <> 'ended' AND (status NOT IN ('scheduled', 'paused') OR ends_at > $3)"
        " ORDER BY 1, 2";
    /* ids are [a-z][a-z0-9_]*: '_' matching any character only widens the
     * filter, and every candidate is parsed */
    static const char sql_exprs[] =
        "SELECT 'item', code, segment_expression FROM benefit_items WHERE tenant_id = $1"
        " AND segment_expression LIKE $2"
        " UNION ALL SELECT 'package', code, segment_expression FROM benefit_packages"
        " WHERE tenant_id = $1 AND segment_expression LIKE $2"
        " UNION ALL SELECT 'listing', code, segment_expression FROM mall_listings"
        " WHERE tenant_id = $1 AND segment_expression LIKE $2"
        " ORDER BY 1, 2";
    memset(u, 0, sizeof *u);
    sy_stmt *st = sy_conn_prepare(c, sql_ids);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, id);
    sy_stmt_bind_i64(st, 3, now_ms);
    int rc;
    while ((rc = sy_stmt_step(st)) == SY_ROW)
        users_add(u, sy_stmt_text(st, 0), sy_stmt_text(st, 1));
    sy_stmt_reset(st);
    if (rc != SY_DONE)
        return rc;
    if (!(st = sy_conn_prepare(c, sql_exprs)))
        return SY_ERR;
    char like[80];
    snprintf(like, sizeof like, "%%%s%%", id);
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, like);
    while ((rc = sy_stmt_step(st)) == SY_ROW) {
        const char *expr = sy_stmt_text(st, 2), *want = id;
        sy_seg_error e;
        sy_seg_node *ast = sy_seg_parse(expr, strlen(expr), &e);
        if (ast)
            sy_seg_walk(ast, walk_segment_ref, &want);
        sy_seg_free(ast);
        if (!want)
            users_add(u, sy_stmt_text(st, 0), sy_stmt_text(st, 1));
    }
    sy_stmt_reset(st);
    if (rc != SY_DONE)
        return rc;
    if (u->n > 4) {
        size_t len = strlen(u->text);
        snprintf(u->text + len, sizeof u->text - len, " and %d more", u->n - 4);
    }
    return SY_OK;
}

static int apply_segment_delete(sy_conn *c, sy_req *r, void *ctx)
{
    static const char sql_exists[] = "SELECT 1 FROM segments WHERE tenant_id = $1 AND id = $2";
    static const char sql[] = "DELETE FROM segments WHERE tenant_id = $1 AND id = $2";
    static const char sql_sizes[] =
        "DELETE FROM segment_sizes WHERE tenant_id = $1 AND segment_id = $2";
    const char *tenant = sy_req_principal(r)->tenant, *id = sy_req_param(r, "id");
    sy_index *ix = sy_indexes_get(sy_req_app(r)->indexes, tenant);
    if (!ix)
        return SY_ERR;
    sy_stmt *st = sy_conn_prepare(c, sql_exists);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, id);
    int rc = sy_stmt_step(st);
    sy_stmt_reset(st);
    if (rc == SY_DONE) {
        sy_reply_problem(r, 404, "not-found", NULL, "no segment '%s'", id);
        return 1;
    }
    if (rc != SY_ROW)
        return rc;
    const char *by = sy_api_referrer(ix, 's', id, c, tenant);
    if (by) {
        sy_reply_problem(r, 409, "conflict", NULL, "segment '%s' is used by %s", id, by);
        return 1;
    }
    users_list u;
    if ((rc = segment_users(c, tenant, id, sy_req_now_ms(r), &u)) != SY_OK)
        return rc;
    if (u.n) {
        sy_reply_problem(r, 409, "conflict", NULL, "segment '%s' is used by %s", id, u.text);
        return 1;
    }
    if (!(st = sy_conn_prepare(c, sql)))
        return SY_ERR;
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, id);
    if ((rc = sy_stmt_exec(st)) != SY_OK)
        return rc;
    if (!(st = sy_conn_prepare(c, sql_sizes)))
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, id);
    if ((rc = sy_stmt_exec(st)) != SY_OK)
        return rc;
    sy_req_audit_target(r, id);
    sy_reply_raw(r, 204, "application/json", sy_xstrdup(""), 0);
    return 0;
}

static void segment_deleted(sy_req *r, void *ctx)
{
    sy_index *ix = sy_indexes_get(sy_req_app(r)->indexes, sy_req_principal(r)->tenant);
    if (ix)
        sy_index_segment_drop(ix, sy_req_param(r, "id"));
}

void sy_api_segments_delete(sy_req *r)
{
    sy_req_write(r, apply_segment_delete, segment_deleted, NULL);
}

/* ---- members ---- */

typedef struct csv_stream {
    sy_index *ix;
    roaring_bitmap_t *members;
    roaring_uint32_iterator_t *it;
    bool header_done;
} csv_stream;

static size_t csv_fill(void *ctx, char *buf, size_t max)
{
    csv_stream *cs = ctx;
    size_t n = 0;
    if (!cs->header_done) {
        n = (size_t)snprintf(buf, max, "customer_no\n");
        cs->header_done = true;
    }
    sy_index_rdlock(cs->ix);
    while (cs->it->has_value) {
        const char *no = sy_index_customer_no(cs->ix, cs->it->current_value);
        size_t len = no ? strlen(no) : 0;
        if (n + len + 1 > max)
            break;
        memcpy(buf + n, no, len);
        n += len;
        buf[n++] = '\n';
        roaring_advance_uint32_iterator(cs->it);
    }
    sy_index_unlock(cs->ix);
    return n;
}

static void csv_free(void *ctx)
{
    csv_stream *cs = ctx;
    roaring_free_uint32_iterator(cs->it);
    roaring_bitmap_free(cs->members);
    free(cs);
}

void sy_api_segment_members(sy_req *r)
{
    int64_t limit, cursor;
    const char *format = sy_req_query(r, "format");
    if (format && strcmp(format, "csv") != 0 && strcmp(format, "json") != 0) {
        sy_reply_problem(r, 400, "validation", "format", "format must be json or csv");
        return;
    }
    if (!sy_v_query_int(r, "limit", 1, 10000, 100, &limit) ||
        !sy_v_query_int(r, "cursor", 0, UINT32_MAX, 0, &cursor))
        return;
    sy_index *ix;
    roaring_bitmap_t *b = segment_members(r, sy_req_param(r, "id"), &ix);
    if (!b) {
        sy_reply_problem(r, 404, "not-found", NULL, "no segment '%s'", sy_req_param(r, "id"));
        return;
    }
    if (format && !strcmp(format, "csv")) {
        /* The whole membership, streamed: nothing of size N is built. */
        csv_stream *cs = sy_xcalloc(1, sizeof *cs);
        cs->ix = ix;
        cs->members = b;
        cs->it = roaring_create_iterator(b);
        sy_reply_stream(r, 200, "text/csv; charset=utf-8", csv_fill, cs, csv_free);
        char disp[160];
        snprintf(disp, sizeof disp, "attachment; filename=\"segment-%s.csv\"",
                 sy_req_param(r, "id"));
        sy_reply_header(r, "Content-Disposition", disp);
        return;
    }
    /* A page: members with dense id >= cursor, in dense-id order. */
    roaring_uint32_iterator_t *it = roaring_create_iterator(b);
    roaring_move_uint32_iterator_equalorlarger(it, (uint32_t)cursor);
    json_t *items = json_array();
    int64_t next = -1;
    sy_index_rdlock(ix);
    for (int64_t i = 0; it->has_value; i++) {
        if (i == limit) {
            next = it->current_value;
            break;
        }
        const char *no = sy_index_customer_no(ix, it->current_value);
        json_array_append_new(items, json_string(no ? no : ""));
        roaring_advance_uint32_iterator(it);
    }
    sy_index_unlock(ix);
    roaring_free_uint32_iterator(it);
    json_t *out = json_pack("{s:I, s:o}", "size", (json_int_t)roaring_bitmap_get_cardinality(b),
                            "items", items);
    char buf[24];
    snprintf(buf, sizeof buf, "%lld", (long long)next);
    json_object_set_new(out, "next_cursor", next >= 0 ? json_string(buf) : json_null());
    roaring_bitmap_free(b);
    sy_reply_json(r, 200, out);
}

void sy_api_segment_member(sy_req *r)
{
    sy_app *app = sy_req_app(r);
    sy_index *ix = sy_indexes_get(app->indexes, sy_req_principal(r)->tenant);
    uint32_t dense = 0;
    bool known = false;
    if (ix) {
        sy_index_rdlock(ix);
        known = sy_index_dense(ix, sy_req_param(r, "customer_no"), &dense);
        sy_index_unlock(ix);
    }
    roaring_bitmap_t *b = segment_members_among(r, sy_req_param(r, "id"), &dense, NULL);
    if (!b) {
        sy_reply_problem(r, 404, "not-found", NULL, "no segment '%s'", sy_req_param(r, "id"));
        return;
    }
    if (!known) {
        roaring_bitmap_free(b);
        sy_reply_problem(r, 404, "not-found", NULL, "no customer '%s'",
                         sy_req_param(r, "customer_no"));
        return;
    }
    bool member = roaring_bitmap_contains(b, dense);
    roaring_bitmap_free(b);
    sy_reply_json(r, 200,
                  json_pack("{s:s, s:s, s:b}", "segment", sy_req_param(r, "id"), "customer_no",
                            sy_req_param(r, "customer_no"), "member", member));
}

/* ---- size history ---- */

static int record_size(sy_conn *c, const char *tenant, const char *id, const char *day,
                       int64_t size, int64_t now)
{
    static const char sql[] =
        "INSERT INTO segment_sizes (tenant_id, segment_id, day, size, measured_at)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id, segment_id, day)"
        " DO UPDATE SET size = excluded.size, measured_at = excluded.measured_at";
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, id);
    sy_stmt_bind_text(st, 3, day);
    sy_stmt_bind_i64(st, 4, size);
    sy_stmt_bind_i64(st, 5, now);
    return sy_stmt_exec(st);
}

void sy_api_segment_sizes(sy_req *r)
{
    static const char sql[] = "SELECT day, size FROM segment_sizes WHERE tenant_id = $1"
                              " AND segment_id = $2 ORDER BY day DESC LIMIT $3";
    int64_t days;
    if (!sy_v_query_int(r, "days", 1, 3660, 30, &days))
        return;
    sy_app *app = sy_req_app(r);
    const char *tenant = sy_req_principal(r)->tenant, *id = sy_req_param(r, "id");
    sy_conn *c = sy_store_acquire(app->store);
    json_t *seg = NULL;
    int rc = read_segment(c, tenant, id, &seg);
    json_t *items = json_array();
    sy_stmt *st = rc == SY_OK && seg ? sy_conn_prepare(c, sql) : NULL;
    if (st) {
        sy_stmt_bind_text(st, 1, tenant);
        sy_stmt_bind_text(st, 2, id);
        sy_stmt_bind_i64(st, 3, days);
        while ((rc = sy_stmt_step(st)) == SY_ROW)
            json_array_insert_new(items, 0,
                                  json_pack("{s:s, s:I}", "day", sy_stmt_text(st, 0), "size",
                                            (json_int_t)sy_stmt_i64(st, 1)));
        sy_stmt_reset(st);
        rc = rc == SY_DONE ? SY_OK : rc;
    }
    if (rc != SY_OK)
        sy_api_store_error(r, c);
    else if (!seg)
        sy_reply_problem(r, 404, "not-found", NULL, "no segment '%s'", id);
    else
        sy_reply_json(r, 200, json_pack("{s:s, s:o}", "segment", id, "items", items));
    if (rc != SY_OK || !seg)
        json_decref(items);
    json_decref(seg);
    sy_store_release(app->store, c);
}

/* The periodic size history: every saved segment is evaluated outside the
 * writer (a read connection and the indexes), and only the sizes are
 * written, in one short transaction. */
typedef struct size_row {
    char *tenant, *id;
    char day[11];
    int64_t size;
} size_row;

typedef struct sizes_job {
    size_row *rows;
    size_t n;
    int64_t now;
} sizes_job;

static int apply_sizes_job(sy_conn *c, void *ctx)
{
    sizes_job *j = ctx;
    for (size_t i = 0; i < j->n; i++)
        if (j->rows[i].size >= 0 && record_size(c, j->rows[i].tenant, j->rows[i].id, j->rows[i].day,
                                                j->rows[i].size, j->now) != SY_OK)
            return SY_ERR;
    return 0;
}

void sy_api_segment_sizes_job(sy_app *app)
{
    static const char sql[] = "SELECT tenant_id, id, expression FROM segments";
    sizes_job j = {.now = sy_now_ms()};
    char **exprs = NULL;
    sy_conn *c = sy_store_acquire(app->store);
    sy_stmt *st = sy_conn_prepare(c, sql);
    while (st && sy_stmt_step(st) == SY_ROW) {
        j.rows = sy_xrealloc(j.rows, (j.n + 1) * sizeof *j.rows);
        exprs = sy_xrealloc(exprs, (j.n + 1) * sizeof *exprs);
        j.rows[j.n] = (size_row){.tenant = sy_xstrdup(sy_stmt_text(st, 0)),
                                 .id = sy_xstrdup(sy_stmt_text(st, 1)),
                                 .size = -1};
        exprs[j.n++] = sy_xstrdup(sy_stmt_text(st, 2));
    }
    if (st)
        sy_stmt_reset(st);
    sy_store_release(app->store, c);
    for (size_t i = 0; i < j.n; i++)
        measure(app, j.rows[i].tenant, exprs[i], &j.rows[i].size, j.rows[i].day);
    sy_mutation m = {.apply = apply_sizes_job, .ctx = &j};
    if (j.n && sy_writer_run(app->writer, &m) != 0)
        sy_warn("recording segment sizes failed");
    for (size_t i = 0; i < j.n; i++) {
        free(j.rows[i].tenant);
        free(j.rows[i].id);
        free(exprs[i]);
    }
    free(j.rows);
    free(exprs);
}

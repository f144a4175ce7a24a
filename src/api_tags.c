/* api_tags.c — /v1/tags: the tag catalogue (标签体系).
 *
 * A tag has a category (basic, behaviour, preference, value) and is manual
 * — members added and removed by list or CSV upload — or a rule, whose
 * members are the customers matching a segment expression at the moment of
 * asking, so it is always current.  The catalogue shows each tag's member
 * count. */
#include "api.h"
#include "app.h"
#include "customer.h"
#include "segment_eval.h"
#include "util.h"
#include "validate.h"

#include <stdlib.h>
#include <string.h>

#define MAX_MEMBERS_PER_CALL 100000

static const char *const k_categories[] = {"basic", "behaviour", "preference", "value"};

static bool tag_name_valid(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 100)
        return false;
    /* '/' would make the tag unreachable as a path segment */
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f || *p == '/')
            return false;
    return true;
}

/* Context for evaluating against the tenant's index. */
typedef struct tenant_ix {
    sy_index *ix;
    sy_attr_set *schema;
} tenant_ix;

static bool open_ix(sy_req *r, tenant_ix *t)
{
    sy_app *app = sy_req_app(r);
    const char *tenant = sy_req_principal(r)->tenant;
    t->schema = sy_schemas_get(app->schemas, tenant);
    t->ix = t->schema ? sy_indexes_get(app->indexes, tenant) : NULL;
    if (!t->ix) {
        sy_attr_set_release(t->schema);
        sy_reply_problem(r, 500, "internal", NULL, "the tenant's index is not available");
        return false;
    }
    return true;
}

static json_t *tag_json(const sy_index_tag *t, const char *description, int64_t count)
{
    json_t *o =
        json_pack("{s:s, s:s, s:s, s:s}", "name", t->name, "category", t->category, "kind",
                  t->rule ? "rule" : "manual", "description", description ? description : "");
    json_object_set_new(o, "expression", t->rule ? json_string(t->expression) : json_null());
    json_object_set_new(o, "members", count >= 0 ? json_integer(count) : json_null());
    return o;
}

static int64_t tag_count(const tenant_ix *t, const sy_index_tag *tag)
{
    if (!tag->rule)
        return (int64_t)roaring_bitmap_get_cardinality(tag->members);
    sy_seg_error e;
    roaring_bitmap_t *b =
        tag->ast ? sy_seg_eval_index(t->ix, t->schema, sy_now_ms(), tag->ast, &e) : NULL;
    int64_t n = b ? (int64_t)roaring_bitmap_get_cardinality(b) : -1;
    if (b)
        roaring_bitmap_free(b);
    return n;
}

/* Descriptions live in the store only. */
static json_t *descriptions(sy_req *r)
{
    static const char sql[] = "SELECT name, description FROM tags WHERE tenant_id = $1";
    sy_app *app = sy_req_app(r);
    sy_conn *c = sy_store_acquire(app->store);
    sy_stmt *st = sy_conn_prepare(c, sql);
    json_t *d = json_object();
    if (st) {
        sy_stmt_bind_text(st, 1, sy_req_principal(r)->tenant);
        while (sy_stmt_step(st) == SY_ROW)
            json_object_set_new(d, sy_stmt_text(st, 0), json_string(sy_stmt_text(st, 1)));
        sy_stmt_reset(st);
    }
    sy_store_release(app->store, c);
    return d;
}

typedef struct list_ctx {
    const tenant_ix *t;
    const char *category;
    json_t *items, *desc;
} list_ctx;

static void list_visit(const sy_index_tag *tag, void *ud)
{
    list_ctx *l = ud;
    if (l->category && strcmp(l->category, tag->category) != 0)
        return;
    json_array_append_new(l->items,
                          tag_json(tag, json_string_value(json_object_get(l->desc, tag->name)),
                                   tag_count(l->t, tag)));
}

void sy_api_tags_list(sy_req *r)
{
    const char *category = sy_req_query(r, "category");
    bool known = !category;
    for (size_t i = 0; i < SY_ARRAY_LEN(k_categories) && !known; i++)
        known = !strcmp(category, k_categories[i]);
    if (!known) {
        sy_reply_problem(r, 400, "validation", "category",
                         "category must be basic, behaviour, preference or value");
        return;
    }
    tenant_ix t;
    if (!open_ix(r, &t))
        return;
    list_ctx l = {.t = &t, .category = category, .items = json_array(), .desc = descriptions(r)};
    sy_index_rdlock(t.ix);
    sy_index_tags(t.ix, list_visit, &l);
    sy_index_unlock(t.ix);
    json_decref(l.desc);
    sy_attr_set_release(t.schema);
    sy_reply_json(r, 200, json_pack("{s:o}", "items", l.items));
}

void sy_api_tags_get(sy_req *r)
{
    tenant_ix t;
    if (!open_ix(r, &t))
        return;
    json_t *desc = descriptions(r);
    const char *name = sy_req_param(r, "name");
    sy_index_rdlock(t.ix);
    sy_index_tag tag;
    if (sy_index_tag_get(t.ix, name, &tag))
        sy_reply_json(
            r, 200,
            tag_json(&tag, json_string_value(json_object_get(desc, name)), tag_count(&t, &tag)));
    else
        sy_reply_problem(r, 404, "not-found", NULL, "no tag '%s'", name);
    sy_index_unlock(t.ix);
    json_decref(desc);
    sy_attr_set_release(t.schema);
}

/* ---- create ---- */

typedef struct tag_create {
    const char *name, *category, *expression, *description;
    bool rule;
} tag_create;

static int apply_tag_create(sy_conn *c, sy_req *r, void *ctx)
{
    static const char sql[] =
        "INSERT INTO tags (tenant_id, name, category, kind, expression, description, created_at,"
        " updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)";
    tag_create *tc = ctx;
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, sy_req_principal(r)->tenant);
    sy_stmt_bind_text(st, 2, tc->name);
    sy_stmt_bind_text(st, 3, tc->category);
    sy_stmt_bind_text(st, 4, tc->rule ? "rule" : "manual");
    sy_stmt_bind_text(st, 5, tc->expression);
    sy_stmt_bind_text(st, 6, tc->description ? tc->description : "");
    sy_stmt_bind_i64(st, 7, sy_now_ms());
    int rc = sy_stmt_exec(st);
    if (rc == SY_ECONSTRAINT) {
        sy_reply_problem(r, 409, "conflict", "/name", "tag '%s' exists already", tc->name);
        return 1;
    }
    if (rc != SY_OK)
        return rc;
    sy_req_audit_target(r, tc->name);
    json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "name", tc->name, "category", tc->category,
                          "kind", tc->rule ? "rule" : "manual", "description",
                          tc->description ? tc->description : "");
    json_object_set_new(o, "expression",
                        tc->expression ? json_string(tc->expression) : json_null());
    sy_reply_json(r, 201, o);
    return 0;
}

static void tag_created(sy_req *r, void *ctx)
{
    tag_create *tc = ctx;
    sy_index *ix = sy_indexes_get(sy_req_app(r)->indexes, sy_req_principal(r)->tenant);
    if (!ix)
        return;
    sy_seg_node *ast = NULL;
    if (tc->rule) {
        sy_seg_error e;
        ast = sy_seg_parse(tc->expression, strlen(tc->expression), &e);
    }
    sy_index_tag_define(ix, tc->name, tc->category, tc->rule, tc->expression, ast);
}

void sy_api_tags_create(sy_req *r)
{
    json_t *body = sy_req_json_object(r);
    static const char *const fields[] = {"name",       "category",    "kind",
                                         "expression", "description", NULL};
    tag_create *tc = sy_req_alloc(r, sizeof *tc);
    memset(tc, 0, sizeof *tc);
    const char *kind = NULL;
    if (!body || !sy_v_only(r, body, fields) ||
        !sy_v_string(r, body, "name", true, 100, &tc->name) ||
        !sy_v_string(r, body, "category", true, 20, &tc->category) ||
        !sy_v_string(r, body, "kind", true, 10, &kind) ||
        !sy_v_string(r, body, "expression", false, SY_SEG_MAX_INPUT, &tc->expression) ||
        !sy_v_string(r, body, "description", false, 500, &tc->description))
        return;
    if (!tag_name_valid(tc->name)) {
        sy_reply_problem(r, 400, "validation", "/name",
                         "'name' must be 1 to 100 bytes of text without '/' or control characters");
        return;
    }
    bool cat = false;
    for (size_t i = 0; i < SY_ARRAY_LEN(k_categories) && !cat; i++)
        cat = !strcmp(tc->category, k_categories[i]);
    if (!cat) {
        sy_reply_problem(r, 400, "validation", "/category",
                         "'category' must be basic, behaviour, preference or value");
        return;
    }
    tc->rule = !strcmp(kind, "rule");
    if (!tc->rule && strcmp(kind, "manual") != 0) {
        sy_reply_problem(r, 400, "validation", "/kind", "'kind' must be manual or rule");
        return;
    }
    if (tc->rule != (tc->expression != NULL)) {
        sy_reply_problem(r, 400, "validation", "/expression",
                         tc->rule ? "a rule tag needs an 'expression'"
                                  : "a manual tag has no 'expression'");
        return;
    }
    if (tc->rule && !sy_api_check_expression(r, tc->expression, 't', tc->name))
        return;
    sy_req_write(r, apply_tag_create, tag_created, tc);
}

/* ---- delete ---- */

typedef struct refs_ctx {
    const char *kind_name; /* what is referenced */
    char kind;
    bool found;
} refs_ctx;

static void refs_visit(const sy_seg_node *n, void *ud)
{
    refs_ctx *rc = ud;
    if ((rc->kind == 't' && n->kind == SY_SEG_TAG) ||
        (rc->kind == 's' && n->kind == SY_SEG_SEGMENT))
        rc->found |= !strcmp(n->name, rc->kind_name);
}

typedef struct referrer_scan {
    refs_ctx refs;
    const char *referrer;
} referrer_scan;

static void tag_ref_visit(const sy_index_tag *t, void *ud)
{
    referrer_scan *s = ud;
    if (t->rule && t->ast && !s->referrer) {
        s->refs.found = false;
        sy_seg_walk(t->ast, refs_visit, &s->refs);
        if (s->refs.found)
            s->referrer = t->name;
    }
}

const char *sy_api_referrer(sy_index *ix, char kind, const char *name, sy_conn *c,
                            const char *tenant)
{
    static const char sql[] = "SELECT id FROM segments WHERE tenant_id = $1";
    referrer_scan s = {.refs = {.kind_name = name, .kind = kind}};
    sy_index_rdlock(ix);
    sy_index_tags(ix, tag_ref_visit, &s);
    static __thread char who[128];
    if (s.referrer) {
        snprintf(who, sizeof who, "tag '%s'", s.referrer);
        sy_index_unlock(ix);
        return who;
    }
    sy_stmt *st = sy_conn_prepare(c, sql);
    const char *found = NULL;
    if (st) {
        sy_stmt_bind_text(st, 1, tenant);
        while (!found && sy_stmt_step(st) == SY_ROW) {
            const sy_seg_node *ast = sy_index_segment(ix, sy_stmt_text(st, 0));
            s.refs.found = false;
            if (ast)
                sy_seg_walk(ast, refs_visit, &s.refs);
            if (s.refs.found) {
                snprintf(who, sizeof who, "segment '%s'", sy_stmt_text(st, 0));
                found = who;
            }
        }
        sy_stmt_reset(st);
    }
    sy_index_unlock(ix);
    return found;
}

static int apply_tag_delete(sy_conn *c, sy_req *r, void *ctx)
{
    static const char sql_t[] = "DELETE FROM tags WHERE tenant_id = $1 AND name = $2";
    static const char sql_m[] = "DELETE FROM tag_members WHERE tenant_id = $1 AND tag = $2";
    const char *tenant = sy_req_principal(r)->tenant, *name = sy_req_param(r, "name");
    sy_index *ix = sy_indexes_get(sy_req_app(r)->indexes, tenant);
    if (!ix)
        return SY_ERR;
    const char *by = sy_api_referrer(ix, 't', name, c, tenant);
    if (by) {
        sy_reply_problem(r, 409, "conflict", NULL, "tag '%s' is used by %s", name, by);
        return 1;
    }
    sy_stmt *st = sy_conn_prepare(c, sql_t);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, name);
    int rc = sy_stmt_exec(st);
    if (rc != SY_OK)
        return rc;
    if (sy_conn_changes(c) == 0) {
        sy_reply_problem(r, 404, "not-found", NULL, "no tag '%s'", name);
        return 1;
    }
    if (!(st = sy_conn_prepare(c, sql_m)))
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, name);
    if ((rc = sy_stmt_exec(st)) != SY_OK)
        return rc;
    sy_req_audit_target(r, name);
    sy_reply_raw(r, 204, "application/json", sy_xstrdup(""), 0);
    return 0;
}

static void tag_deleted(sy_req *r, void *ctx)
{
    sy_index *ix = sy_indexes_get(sy_req_app(r)->indexes, sy_req_principal(r)->tenant);
    if (ix)
        sy_index_tag_drop(ix, sy_req_param(r, "name"));
}

void sy_api_tags_delete(sy_req *r)
{
    sy_req_write(r, apply_tag_delete, tag_deleted, NULL);
}

/* ---- members ---- */

typedef struct member_change {
    bool remove;
    char **nos;
    size_t *where; /* each number's line (CSV, from 1) or index in "customers" */
    bool csv;
    uint32_t *dense;
    size_t n;
} member_change;

static void member_change_free(void *p)
{
    member_change *m = p;
    for (size_t i = 0; i < m->n; i++)
        free(m->nos[i]);
    free(m->nos);
    free(m->where);
    free(m->dense);
}

static int apply_members(sy_conn *c, sy_req *r, void *ctx)
{
    static const char sql_add[] = "INSERT INTO tag_members (tenant_id, tag, customer_no, added_at)"
                                  " VALUES ($1, $2, $3, $4)"
                                  " ON CONFLICT (tenant_id, tag, customer_no) DO NOTHING";
    static const char sql_del[] = "DELETE FROM tag_members WHERE tenant_id = $1 AND tag = $2"
                                  " AND customer_no = $3";
    member_change *m = ctx;
    const char *tenant = sy_req_principal(r)->tenant, *tag = sy_req_param(r, "name");
    int64_t now = sy_now_ms(), changed = 0;
    for (size_t i = 0; i < m->n; i++) {
        sy_stmt *st = sy_conn_prepare(c, m->remove ? sql_del : sql_add);
        if (!st)
            return SY_ERR;
        sy_stmt_bind_text(st, 1, tenant);
        sy_stmt_bind_text(st, 2, tag);
        sy_stmt_bind_text(st, 3, m->nos[i]);
        if (!m->remove)
            sy_stmt_bind_i64(st, 4, now);
        int rc = sy_stmt_exec(st);
        if (rc != SY_OK)
            return rc;
        changed += sy_conn_changes(c);
    }
    sy_req_audit_target(r, tag);
    sy_reply_json(r, 200,
                  json_pack("{s:s, s:I, s:I}", "tag", tag, m->remove ? "removed" : "added",
                            (json_int_t)changed, "unchanged",
                            (json_int_t)(m->n - (size_t)changed)));
    return 0;
}

static void members_changed(sy_req *r, void *ctx)
{
    member_change *m = ctx;
    sy_index *ix = sy_indexes_get(sy_req_app(r)->indexes, sy_req_principal(r)->tenant);
    for (size_t i = 0; ix && i < m->n; i++)
        sy_index_tag_member(ix, sy_req_param(r, "name"), m->dense[i], !m->remove);
}

/* Collects customer numbers from a JSON {"customers": [...]} body or a CSV
 * body (first column; an optional header line "customer_no"). */
static bool collect_members(sy_req *r, member_change *m, json_t *errors)
{
    size_t len;
    const char *body = sy_req_body(r, &len);
    const char *ctype = sy_req_header(r, "Content-Type");
    size_t cap = 0;
    if (ctype && !strncmp(ctype, "text/csv", 8)) {
        m->csv = true;
        size_t line = 0;
        for (const char *p = body, *end = body + len; p < end; line++) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
            size_t f = 0;
            while (f < n && p[f] != ',' && p[f] != '\r')
                f++;
            char no[SY_CUSTOMER_NO_MAX + 2];
            size_t k = f < sizeof no - 1 ? f : sizeof no - 1;
            memcpy(no, p, k);
            no[k] = '\0';
            p += n + (nl ? 1 : 0);
            if (k == 0 || (line == 0 && !strcmp(no, "customer_no")))
                continue;
            if (m->n == cap) {
                cap = cap ? cap * 2 : 256;
                m->nos = sy_xrealloc(m->nos, cap * sizeof *m->nos);
                m->where = sy_xrealloc(m->where, cap * sizeof *m->where);
            }
            m->where[m->n] = line + 1;
            if (!sy_customer_no_valid(no) && json_array_size(errors) < 100) {
                char where[32];
                snprintf(where, sizeof where, "line %zu", line + 1);
                json_array_append_new(errors, json_pack("{s:s, s:s}", "where", where, "detail",
                                                        "not a customer number"));
            }
            m->nos[m->n++] = sy_xstrdup(no);
        }
    } else {
        json_t *o = sy_req_json_object(r);
        static const char *const fields[] = {"customers", NULL};
        if (!o || !sy_v_only(r, o, fields))
            return false;
        json_t *arr = json_object_get(o, "customers");
        if (!json_is_array(arr)) {
            sy_reply_problem(r, 400, "validation", "/customers",
                             "'customers' must be an array of customer numbers (or send text/csv)");
            return false;
        }
        m->nos = sy_xcalloc(json_array_size(arr) + 1, sizeof *m->nos);
        m->where = sy_xcalloc(json_array_size(arr) + 1, sizeof *m->where);
        size_t i;
        json_t *v;
        json_array_foreach (arr, i, v) {
            m->where[m->n] = i;
            const char *no = json_string_value(v);
            if ((!no || !sy_customer_no_valid(no)) && json_array_size(errors) < 100) {
                char where[32];
                snprintf(where, sizeof where, "/customers/%zu", i);
                json_array_append_new(errors, json_pack("{s:s, s:s}", "where", where, "detail",
                                                        "not a customer number"));
            }
            m->nos[m->n++] = sy_xstrdup(no ? no : "");
        }
    }
    if (m->n == 0 || m->n > MAX_MEMBERS_PER_CALL) {
        sy_reply_problem(r, 400, "validation", "", "send 1 to %d customer numbers",
                         MAX_MEMBERS_PER_CALL);
        return false;
    }
    return true;
}

void sy_api_tag_members(sy_req *r)
{
    bool remove;
    if (!sy_v_query_bool(r, "remove", false, &remove))
        return;
    member_change *m = sy_req_alloc(r, sizeof *m);
    memset(m, 0, sizeof *m);
    m->remove = remove;
    sy_req_on_free(r, member_change_free, m);
    json_t *errors = json_array();
    if (!collect_members(r, m, errors)) {
        json_decref(errors);
        return;
    }
    sy_index *ix = sy_indexes_get(sy_req_app(r)->indexes, sy_req_principal(r)->tenant);
    if (!ix) {
        json_decref(errors);
        sy_reply_problem(r, 500, "internal", NULL, "the tenant's index is not available");
        return;
    }
    m->dense = sy_xcalloc(m->n, sizeof *m->dense);
    sy_index_rdlock(ix);
    sy_index_tag tag;
    bool exists = sy_index_tag_get(ix, sy_req_param(r, "name"), &tag);
    bool manual = exists && !tag.rule;
    for (size_t i = 0; i < m->n && manual; i++)
        if (!(sy_index_dense(ix, m->nos[i], &m->dense[i]) &&
              roaring_bitmap_contains(sy_index_all(ix), m->dense[i])) &&
            json_array_size(errors) < 100 && sy_customer_no_valid(m->nos[i])) {
            /* where, as for a malformed number: the line, or the pointer */
            char where[48];
            if (m->csv)
                snprintf(where, sizeof where, "line %zu", m->where[i]);
            else
                snprintf(where, sizeof where, "/customers/%zu", m->where[i]);
            json_array_append_new(errors,
                                  json_pack("{s:s, s:s, s:s}", "where", where, "customer_no",
                                            m->nos[i], "detail", "no such customer"));
        }
    sy_index_unlock(ix);
    if (!exists) {
        json_decref(errors);
        sy_reply_problem(r, 404, "not-found", NULL, "no tag '%s'", sy_req_param(r, "name"));
        return;
    }
    if (!manual) {
        json_decref(errors);
        sy_reply_problem(r, 409, "conflict", NULL,
                         "'%s' is a rule tag: its members follow its expression",
                         sy_req_param(r, "name"));
        return;
    }
    if (json_array_size(errors)) {
        /* field: the first one's pointer (a JSON body); a CSV line is no
         * pointer, so the whole body */
        const char *first = json_string_value(json_object_get(json_array_get(errors, 0), "where"));
        sy_reply_problem(r, 400, "validation", first && first[0] == '/' ? first : "",
                         "some customer numbers are invalid or unknown; nothing was changed");
        sy_reply_extend(r, "errors", errors);
        return;
    }
    json_decref(errors);
    sy_req_write(r, apply_members, members_changed, m);
}

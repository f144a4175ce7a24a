/* api_attributes.c — /v1/attributes: the tenant's customer attribute schema.
 *
 * Attributes are created, read and listed; a PATCH may change the
 * description and append enum values.  Types never change, and enum values
 * are never removed or reordered: stored values and comparisons such as
 * risk_level >= R3 depend on them. */
#include "api.h"
#include "app.h"
#include "attr.h"
#include "util.h"
#include "validate.h"

#include <stdlib.h>
#include <string.h>

static sy_attr_set *schema_or_reply(sy_req *r)
{
    sy_attr_set *s = sy_schemas_get(sy_req_app(r)->schemas, sy_req_principal(r)->tenant);
    if (!s)
        sy_reply_problem(r, 500, "internal", NULL, "the attribute schema could not be read");
    return s;
}

void sy_api_attributes_list(sy_req *r)
{
    sy_attr_set *s = schema_or_reply(r);
    if (!s)
        return;
    json_t *items = json_array();
    for (int i = 0; i < s->n; i++)
        json_array_append_new(items, sy_attr_def_json(&s->defs[i]));
    sy_attr_set_release(s);
    sy_reply_json(r, 200, json_pack("{s:o}", "items", items));
}

void sy_api_attributes_get(sy_req *r)
{
    sy_attr_set *s = schema_or_reply(r);
    if (!s)
        return;
    const sy_attr_def *d = sy_attr_find(s, sy_req_param(r, "name"));
    if (d)
        sy_reply_json(r, 200, sy_attr_def_json(d));
    else
        sy_reply_problem(r, 404, "not-found", NULL, "no attribute '%s'", sy_req_param(r, "name"));
    sy_attr_set_release(s);
}

typedef struct attr_write {
    sy_attr_def def;
} attr_write;

static void attr_committed(sy_req *r, void *ctx)
{
    sy_schemas_forget(sy_req_app(r)->schemas, sy_req_principal(r)->tenant);
}

static int count_attributes(sy_conn *c, const char *tenant, int64_t *n)
{
    static const char sql[] = "SELECT COUNT(*) FROM attributes WHERE tenant_id = $1";
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    int rc = sy_stmt_step(st);
    *n = rc == SY_ROW ? sy_stmt_i64(st, 0) : 0;
    sy_stmt_reset(st);
    return rc == SY_ROW ? SY_OK : rc;
}

static int apply_attr_create(sy_conn *c, sy_req *r, void *ctx)
{
    attr_write *w = ctx;
    const char *tenant = sy_req_principal(r)->tenant;
    int64_t n;
    int rc = count_attributes(c, tenant, &n);
    if (rc != SY_OK)
        return rc;
    if (n >= SY_ATTRS_PER_TENANT) {
        sy_reply_problem(r, 409, "conflict", NULL, "a tenant may define at most %d attributes",
                         SY_ATTRS_PER_TENANT);
        return 1;
    }
    rc = sy_attr_insert(c, tenant, &w->def, sy_now_ms());
    if (rc == SY_ECONSTRAINT) {
        sy_reply_problem(r, 409, "conflict", "/name", "attribute '%s' exists already", w->def.name);
        return 1;
    }
    if (rc != SY_OK)
        return rc;
    sy_req_audit_target(r, w->def.name);
    char loc[128];
    snprintf(loc, sizeof loc, "/v1/attributes/%s", w->def.name);
    sy_reply_header(r, "Location", loc);
    sy_reply_json(r, 201, sy_attr_def_json(&w->def));
    return 0;
}

static void attr_write_free(void *p)
{
    sy_attr_def_clear(&((attr_write *)p)->def);
}

void sy_api_attributes_create(sy_req *r)
{
    json_t *body = sy_req_json_object(r);
    if (!body)
        return;
    attr_write *w = sy_req_alloc(r, sizeof *w);
    const char *field;
    char err[256];
    if (!sy_attr_def_parse(body, &w->def, &field, err, sizeof err)) {
        sy_reply_problem(r, 400, "validation", field, "%s", err);
        return;
    }
    sy_req_on_free(r, attr_write_free, w);
    sy_req_write(r, apply_attr_create, attr_committed, w);
}

typedef struct attr_patch {
    const char *description;
    json_t *values; /* new full list of enum values, or NULL */
} attr_patch;

static int apply_attr_patch(sy_conn *c, sy_req *r, void *ctx)
{
    static const char sql[] = "UPDATE attributes SET description = COALESCE($3, description),"
                              " enum_values = COALESCE($4, enum_values), updated_at = $5"
                              " WHERE tenant_id = $1 AND name = $2";
    attr_patch *p = ctx;
    const char *tenant = sy_req_principal(r)->tenant, *name = sy_req_param(r, "name");
    sy_attr_set *s = NULL;
    int rc = sy_attr_load(c, tenant, &s);
    if (rc != SY_OK)
        return rc;
    const sy_attr_def *d = sy_attr_find(s, name);
    char *vals = NULL;
    if (!d) {
        sy_reply_problem(r, 404, "not-found", NULL, "no attribute '%s'", name);
        rc = 1;
        goto out;
    }
    if (p->values) {
        if (d->type != SY_ATTR_ENUM) {
            sy_reply_problem(r, 400, "validation", "/values", "'%s' is not an enum", name);
            rc = 1;
            goto out;
        }
        size_t n = json_array_size(p->values);
        bool prefix = n >= (size_t)d->nenum;
        for (int i = 0; prefix && i < d->nenum; i++)
            prefix =
                !strcmp(json_string_value(json_array_get(p->values, (size_t)i)), d->enum_values[i]);
        if (!prefix) {
            sy_reply_problem(r, 400, "validation", "/values",
                             "enum values can only be appended: the list must start with the "
                             "current %d values in their order",
                             d->nenum);
            rc = 1;
            goto out;
        }
        vals = json_dumps(p->values, JSON_COMPACT);
    }
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st) {
        rc = SY_ERR;
        goto out;
    }
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, name);
    sy_stmt_bind_text(st, 3, p->description);
    sy_stmt_bind_text(st, 4, vals);
    sy_stmt_bind_i64(st, 5, sy_now_ms());
    if ((rc = sy_stmt_exec(st)) != SY_OK)
        goto out;
    sy_attr_set_release(s);
    s = NULL;
    if ((rc = sy_attr_load(c, tenant, &s)) != SY_OK)
        goto out;
    sy_req_audit_target(r, name);
    sy_reply_json(r, 200, sy_attr_def_json(sy_attr_find(s, name)));
out:
    free(vals);
    sy_attr_set_release(s);
    return rc;
}

void sy_api_attributes_patch(sy_req *r)
{
    json_t *body = sy_req_json_object(r);
    static const char *const fields[] = {"description", "values", NULL};
    if (!body || !sy_v_only(r, body, fields))
        return;
    attr_patch *p = sy_req_alloc(r, sizeof *p);
    memset(p, 0, sizeof *p);
    json_t *desc = json_object_get(body, "description");
    if (desc && !(json_is_string(desc) && json_string_length(desc) <= 1000 &&
                  strlen(json_string_value(desc)) == json_string_length(desc))) {
        sy_reply_problem(r, 400, "validation", "/description",
                         "'description' must be a string of at most 1000 bytes");
        return;
    }
    p->description = desc ? json_string_value(desc) : NULL;
    json_t *vals = json_object_get(body, "values");
    if (vals) {
        /* Reuse the definition parser for the checks on enum values. */
        json_t *probe =
            json_pack("{s:s, s:s, s:O}", "name", "probe", "type", "enum", "values", vals);
        sy_attr_def tmp;
        const char *field;
        char err[256];
        bool ok = sy_attr_def_parse(probe, &tmp, &field, err, sizeof err);
        json_decref(probe);
        if (!ok) {
            sy_reply_problem(r, 400, "validation", "/values", "%s", err);
            return;
        }
        sy_attr_def_clear(&tmp);
        p->values = vals;
    }
    if (!p->description && !p->values) {
        sy_reply_problem(r, 400, "validation", "",
                         "nothing to change: give 'description' and/or 'values'");
        return;
    }
    sy_req_write(r, apply_attr_patch, attr_committed, p);
}

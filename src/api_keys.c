/* api_keys.c — /v1/keys: create, list, read and revoke the tenant's keys.
 *
 * The secret is in the creation response only.  A replay of that POST with
 * the same Idempotency-Key returns the key without its secret, since the
 * secret is never stored. */
#include "api.h"
#include "app.h"
#include "util.h"
#include "validate.h"

#include <stdlib.h>
#include <string.h>

#define KEY_COLUMNS "id, prefix, role, name, created_at, created_by, revoked_at"

static json_t *key_json(sy_stmt *st)
{
    json_t *k = json_pack("{s:s, s:s, s:s, s:s, s:o, s:s}", "id", sy_stmt_text(st, 0), "prefix",
                          sy_stmt_text(st, 1), "role", sy_stmt_text(st, 2), "name",
                          sy_stmt_text(st, 3), "created_at", sy_json_time(sy_stmt_i64(st, 4)),
                          "created_by", sy_stmt_text(st, 5));
    json_object_set_new(k, "revoked_at",
                        sy_stmt_is_null(st, 6) ? json_null() : sy_json_time(sy_stmt_i64(st, 6)));
    return k;
}

/* Reads one key of the tenant; *out is NULL when there is none. */
static int key_read(sy_conn *c, const char *tenant, const char *id, json_t **out)
{
    static const char sql[] = "SELECT " KEY_COLUMNS " FROM api_keys"
                              " WHERE tenant_id = $1 AND id = $2";
    *out = NULL;
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, id);
    int rc = sy_stmt_step(st);
    if (rc == SY_ROW)
        *out = key_json(st);
    sy_stmt_reset(st);
    return rc == SY_ROW || rc == SY_DONE ? SY_OK : rc;
}

typedef struct key_create {
    sy_role role;
    const char *name;
    sy_new_key key;
} key_create;

static int apply_key_create(sy_conn *c, sy_req *r, void *ctx)
{
    key_create *kc = ctx;
    const sy_principal *p = sy_req_principal(r);
    sy_app *app = sy_req_app(r);
    int64_t now = sy_now_ms();
    int rc;
    /* A prefix collision (48 random bits) is retried with a fresh key. */
    for (int attempt = 0; attempt < 3; attempt++) {
        rc = sy_key_insert(c, p->tenant, kc->role, kc->name, p->key_id, &kc->key, now);
        if (rc != SY_ECONSTRAINT)
            break;
        sy_key_generate(sy_keys_hash_key(app->keys), &kc->key);
    }
    if (rc != SY_OK)
        return rc;
    json_t *k = NULL;
    if ((rc = key_read(c, p->tenant, kc->key.id, &k)) != SY_OK || !k)
        return rc ? rc : SY_ERR;
    sy_req_idem_body(r, json_pack("{s:O, s:n}", "key", k, "secret"));
    json_t *body = json_pack("{s:o, s:s}", "key", k, "secret", kc->key.token);
    sy_req_audit_target(r, kc->key.id);
    char loc[64];
    snprintf(loc, sizeof loc, "/v1/keys/%s", kc->key.id);
    sy_reply_header(r, "Location", loc);
    sy_reply_json(r, 201, body);
    return 0;
}

void sy_api_keys_create(sy_req *r)
{
    json_t *body = sy_req_json_object(r);
    static const char *const fields[] = {"role", "name", NULL};
    const char *role = NULL, *name = NULL;
    if (!body || !sy_v_only(r, body, fields) || !sy_v_string(r, body, "role", true, 20, &role) ||
        !sy_v_string(r, body, "name", false, 100, &name))
        return;
    key_create *kc = sy_req_alloc(r, sizeof *kc);
    memset(kc, 0, sizeof *kc);
    if (!sy_role_parse(role, &kc->role)) {
        sy_reply_problem(r, 400, "validation", "/role",
                         "'role' must be one of admin, app, analyst, compliance");
        return;
    }
    kc->name = name;
    sy_key_generate(sy_keys_hash_key(sy_req_app(r)->keys), &kc->key);
    sy_req_write(r, apply_key_create, NULL, kc);
}

void sy_api_keys_list(sy_req *r)
{
    static const char sql_live[] = "SELECT " KEY_COLUMNS " FROM api_keys"
                                   " WHERE tenant_id = $1 AND revoked_at IS NULL"
                                   " ORDER BY created_at, id";
    static const char sql_all[] = "SELECT " KEY_COLUMNS " FROM api_keys WHERE tenant_id = $1"
                                  " ORDER BY created_at, id";
    bool all;
    if (!sy_v_query_bool(r, "include_revoked", false, &all))
        return;
    json_t *items = sy_api_tenant_rows(r, all ? sql_all : sql_live, key_json);
    if (items)
        sy_reply_json(r, 200, json_pack("{s:o}", "items", items));
}

void sy_api_keys_get(sy_req *r)
{
    sy_app *app = sy_req_app(r);
    sy_conn *c = sy_store_acquire(app->store);
    json_t *k = NULL;
    int rc = key_read(c, sy_req_principal(r)->tenant, sy_req_param(r, "id"), &k);
    if (rc != SY_OK)
        sy_api_store_error(r, c);
    else if (!k)
        sy_reply_problem(r, 404, "not-found", NULL, "no key '%s'", sy_req_param(r, "id"));
    else
        sy_reply_json(r, 200, k);
    sy_store_release(app->store, c);
}

typedef struct key_revoke {
    char prefix[SY_KEY_PREFIX_LEN + 1];
} key_revoke;

static int apply_key_revoke(sy_conn *c, sy_req *r, void *ctx)
{
    static const char sql_admins[] =
        "SELECT COUNT(*) FROM api_keys WHERE tenant_id = $1 AND role = 'admin'"
        " AND revoked_at IS NULL AND id <> $2";
    static const char sql_revoke[] =
        "UPDATE api_keys SET revoked_at = $3 WHERE tenant_id = $1 AND id = $2"
        " AND revoked_at IS NULL";
    key_revoke *kr = ctx;
    const char *tenant = sy_req_principal(r)->tenant, *id = sy_req_param(r, "id");
    json_t *k = NULL;
    int rc = key_read(c, tenant, id, &k);
    if (rc != SY_OK)
        return rc;
    if (!k) {
        sy_reply_problem(r, 404, "not-found", NULL, "no key '%s'", id);
        return 1;
    }
    snprintf(kr->prefix, sizeof kr->prefix, "%s", json_string_value(json_object_get(k, "prefix")));
    bool live = json_is_null(json_object_get(k, "revoked_at"));
    bool admin = !strcmp(json_string_value(json_object_get(k, "role")), "admin");
    json_decref(k);
    if (live && admin) {
        sy_stmt *st = sy_conn_prepare(c, sql_admins);
        if (!st)
            return SY_ERR;
        sy_stmt_bind_text(st, 1, tenant);
        sy_stmt_bind_text(st, 2, id);
        rc = sy_stmt_step(st);
        int64_t others = rc == SY_ROW ? sy_stmt_i64(st, 0) : -1;
        sy_stmt_reset(st);
        if (others < 0)
            return SY_ERR;
        if (others == 0) {
            sy_reply_problem(r, 409, "conflict", NULL,
                             "'%s' is the tenant's last admin key; create another admin key first",
                             id);
            return 1;
        }
    }
    if (!live) {
        /* Revoked already: answer with the key as it is, change nothing. */
        if ((rc = key_read(c, tenant, id, &k)) != SY_OK || !k)
            return rc ? rc : SY_ERR;
        sy_req_no_audit(r);
        sy_reply_json(r, 200, k);
        return 0;
    }
    sy_stmt *st = sy_conn_prepare(c, sql_revoke);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, id);
    sy_stmt_bind_i64(st, 3, sy_now_ms());
    if ((rc = sy_stmt_exec(st)) != SY_OK)
        return rc;
    if ((rc = key_read(c, tenant, id, &k)) != SY_OK || !k)
        return rc ? rc : SY_ERR;
    sy_req_audit_target(r, id);
    sy_reply_json(r, 200, k);
    return 0;
}

static void key_revoked(sy_req *r, void *ctx)
{
    key_revoke *kr = ctx;
    sy_keys_forget(sy_req_app(r)->keys, kr->prefix);
}

void sy_api_keys_revoke(sy_req *r)
{
    key_revoke *kr = sy_req_alloc(r, sizeof *kr);
    memset(kr, 0, sizeof *kr);
    sy_req_write(r, apply_key_revoke, key_revoked, kr);
}

/* api_tenant.c — GET and PATCH /v1/tenant: the caller's own tenant.
 * Tenants are created by the operator of the installation with
 * `siyu tenant create`, never through the API. */
#include "api.h"
#include "app.h"
#include "tenant.h"
#include "util.h"
#include "validate.h"

#include <string.h>

void sy_api_tenant_get(sy_req *r)
{
    const sy_principal *p = sy_req_principal(r);
    sy_tenant_info ti;
    int rc = sy_tenants_get(sy_req_app(r)->tenants, p->tenant, &ti);
    if (rc == SY_DONE) {
        sy_reply_problem(r, 404, "not-found", NULL, "the tenant no longer exists");
        return;
    }
    if (rc != SY_OK) {
        sy_reply_problem(r, 500, "internal", NULL, "the store could not be read");
        return;
    }
    /* The tenant's cached encoding, extended with the caller's key.  Key
     * ids and role names are server-made tokens ([a-z0-9_]) that need no
     * escaping. */
    sy_buf b = {0};
    sy_buf_append(&b, ti.json, ti.json_len);
    sy_buf_printf(&b, ",\"key\":{\"id\":\"%s\",\"role\":\"%s\"}}", p->key_id,
                  sy_role_name(p->role));
    size_t len = b.len;
    sy_reply_raw(r, 200, "application/json", sy_buf_steal(&b), len);
}

typedef struct tenant_patch {
    const char *name;
    const char *timezone;
} tenant_patch;

/* Whether the tenant has stored anything whose business day its time zone
 * decided: behaviour (the index buckets it by day, with the zone's offset
 * fixed when it is built), ledger entries, grants or campaign actions. */
static int has_days(sy_conn *c, const char *tenant, bool *yes)
{
    static const char sql[] = "SELECT EXISTS (SELECT 1 FROM events WHERE tenant_id = $1)"
                              " OR EXISTS (SELECT 1 FROM ledger_entries WHERE tenant_id = $1)"
                              " OR EXISTS (SELECT 1 FROM benefit_grants WHERE tenant_id = $1)"
                              " OR EXISTS (SELECT 1 FROM campaign_actions WHERE tenant_id = $1)"
                              " OR EXISTS (SELECT 1 FROM lottery_draws WHERE tenant_id = $1)"
                              " OR EXISTS (SELECT 1 FROM coupon_claims WHERE tenant_id = $1)";
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    int rc = sy_stmt_step(st);
    *yes = rc == SY_ROW && sy_stmt_i64(st, 0) != 0;
    sy_stmt_reset(st);
    return rc == SY_ROW ? SY_OK : rc;
}

static int apply_tenant_patch(sy_conn *c, sy_req *r, void *ctx)
{
    static const char sql[] = "UPDATE tenants SET name = COALESCE($2, name),"
                              " timezone = COALESCE($3, timezone), updated_at = $4"
                              " WHERE id = $1";
    tenant_patch *tp = ctx;
    const char *tenant = sy_req_principal(r)->tenant;
    int rc;
    if (tp->timezone) {
        json_t *now = NULL;
        if ((rc = sy_tenant_get(c, tenant, &now)) != SY_OK)
            return rc;
        const char *was = json_string_value(json_object_get(now, "timezone"));
        bool changes = was && strcmp(was, tp->timezone) != 0, used = false;
        char was_copy[72];
        snprintf(was_copy, sizeof was_copy, "%s", was ? was : "");
        json_decref(now);
        if (changes && (rc = has_days(c, tenant, &used)) != SY_OK)
            return rc;
        if (used) {
            /* The days already written (events in the index, the ledger's
             * and grants' business days, check-in streaks) were cut in
             * the old zone; moving them is not something a PATCH can do. */
            sy_reply_problem(r, 409, "conflict", "/timezone",
                             "the tenant's stored behaviour, ledger, grants and campaign"
                             " actions have business days in %s: the time zone can change only"
                             " before the first of them",
                             was_copy);
            return 1;
        }
    }
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, tp->name);
    sy_stmt_bind_text(st, 3, tp->timezone);
    sy_stmt_bind_i64(st, 4, sy_now_ms());
    rc = sy_stmt_exec(st);
    if (rc != SY_OK)
        return rc;
    json_t *t = NULL;
    if ((rc = sy_tenant_get(c, tenant, &t)) != SY_OK)
        return rc;
    if (!t) {
        sy_reply_problem(r, 404, "not-found", NULL, "the tenant no longer exists");
        return 1;
    }
    sy_req_audit_target(r, tenant);
    sy_reply_json(r, 200, t);
    return 0;
}

static void tenant_patched(sy_req *r, void *ctx)
{
    (void)ctx;
    sy_tenants_forget(sy_req_app(r)->tenants, sy_req_principal(r)->tenant);
    sy_api_offers_invalidate(sy_req_principal(r)->tenant); /* it holds the zone */
}

void sy_api_tenant_patch(sy_req *r)
{
    json_t *body = sy_req_json_object(r);
    static const char *const fields[] = {"name", "timezone", NULL};
    tenant_patch *tp = sy_req_alloc(r, sizeof *tp);
    memset(tp, 0, sizeof *tp);
    if (!body || !sy_v_only(r, body, fields) ||
        !sy_v_string(r, body, "name", false, SY_TENANT_NAME_MAX, &tp->name) ||
        !sy_v_string(r, body, "timezone", false, 64, &tp->timezone))
        return;
    if (!tp->name && !tp->timezone) {
        sy_reply_problem(r, 400, "validation", "",
                         "nothing to change: give 'name' and/or 'timezone'");
        return;
    }
    if (tp->timezone && !sy_timezone_valid(tp->timezone)) {
        sy_reply_problem(r, 400, "validation", "/timezone",
                         "'%s' is not a known IANA time zone (e.g. Asia/Shanghai)", tp->timezone);
        return;
    }
    sy_req_write(r, apply_tenant_patch, tenant_patched, tp);
}

/* api_ops.c — /healthz, /readyz and /metrics.
 *
 * These need no API key so that load balancers and Prometheus can call
 * them; /metrics carries no tenant data.  Keep them on a network only the
 * operators reach. */
#include "abuse.h"
#include "api.h"
#include "app.h"
#include "lottery.h"
#include "metrics.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

void sy_api_healthz(sy_req *r)
{
    sy_reply_json(r, 200, json_pack("{s:s}", "status", "ok"));
}

void sy_api_readyz(sy_req *r)
{
    sy_app *app = sy_req_app(r);
    sy_conn *c = sy_store_acquire(app->store);
    int current = 0;
    int rc = sy_store_schema_version(c, &current);
    sy_store_release(app->store, c);
    int latest = sy_store_latest_version();
    if (rc != SY_OK || current < latest) {
        json_t *b = json_pack("{s:s, s:i, s:i, s:b}", "status", "unavailable", "schema_version",
                              current, "schema_latest", latest, "store", rc == SY_OK);
        sy_reply_json(r, 503, b);
        return;
    }
    sy_reply_json(
        r, 200,
        json_pack("{s:s, s:i, s:b}", "status", "ready", "schema_version", current, "store", 1));
}

void sy_api_metrics(sy_req *r)
{
    sy_buf b = {0};
    sy_metrics_render(&b);
    sy_abuse_metrics_render(&b);
    sy_lottery_metrics_render(&b);
    size_t len = b.len;
    sy_reply_raw(r, 200, "text/plain; version=0.0.4; charset=utf-8", sy_buf_steal(&b), len);
}

void sy_api_store_error(sy_req *r, sy_conn *c)
{
    sy_error("store read failed on %s: %s", sy_req_path(r), sy_conn_errmsg(c));
    sy_reply_problem(r, 500, "internal", NULL, "the store could not be read");
}

bool sy_api_unmask_allowed(sy_req *r)
{
    sy_role role = sy_req_principal(r)->role;
    if (role == SY_ROLE_ADMIN || role == SY_ROLE_COMPLIANCE)
        return true;
    sy_reply_problem(r, 403, "forbidden", "unmask",
                     "only admin and compliance keys may read unmasked personal data");
    return false;
}

json_t *sy_api_tenant_rows(sy_req *r, const char *sql, json_t *(*row)(sy_stmt *st))
{
    sy_app *app = sy_req_app(r);
    sy_conn *c = sy_store_acquire(app->store);
    sy_stmt *st = sy_conn_prepare(c, sql);
    json_t *items = json_array();
    int rc = st ? SY_OK : SY_ERR;
    if (st) {
        sy_stmt_bind_text(st, 1, sy_req_principal(r)->tenant);
        while ((rc = sy_stmt_step(st)) == SY_ROW)
            json_array_append_new(items, row(st));
        sy_stmt_reset(st);
    }
    if (rc != SY_DONE) {
        sy_api_store_error(r, c);
        json_decref(items);
        items = NULL;
    }
    sy_store_release(app->store, c);
    return items;
}

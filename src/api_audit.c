/* api_audit.c — GET /v1/audit: the tenant's audit log, newest first.
 *
 * Rows are written in the same transaction as the change they record
 * (server.c), so the log never shows a change that did not happen nor
 * misses one that did.  Pagination: next_cursor is the id to pass as
 * ?cursor= for the following page. */
#include "api.h"
#include "app.h"
#include "util.h"
#include "validate.h"

#include <stdio.h>
#include <string.h>

void sy_api_audit_list(sy_req *r)
{
    /* CAST(... AS TEXT) types the optional filters for PostgreSQL too. */
    static const char sql[] =
        "SELECT id, at, actor, role, action, target, request_id, detail FROM audit_log"
        " WHERE tenant_id = $1 AND id < $2"
        " AND (CAST($3 AS TEXT) IS NULL OR actor = $3)"
        " AND (CAST($4 AS TEXT) IS NULL OR action = $4)"
        " ORDER BY id DESC LIMIT $5";
    int64_t limit, cursor;
    if (!sy_v_query_int(r, "limit", 1, 500, 50, &limit) ||
        !sy_v_query_int(r, "cursor", 1, INT64_MAX, INT64_MAX, &cursor))
        return;
    sy_app *app = sy_req_app(r);
    sy_conn *c = sy_store_acquire(app->store);
    sy_stmt *st = sy_conn_prepare(c, sql);
    json_t *items = json_array();
    int rc = st ? SY_OK : SY_ERR;
    int64_t last = 0;
    if (st) {
        sy_stmt_bind_text(st, 1, sy_req_principal(r)->tenant);
        sy_stmt_bind_i64(st, 2, cursor);
        sy_stmt_bind_text(st, 3, sy_req_query(r, "actor"));
        sy_stmt_bind_text(st, 4, sy_req_query(r, "action"));
        sy_stmt_bind_i64(st, 5, limit);
        while ((rc = sy_stmt_step(st)) == SY_ROW) {
            last = sy_stmt_i64(st, 0);
            json_t *e = json_pack("{s:I, s:o, s:s, s:s, s:s}", "id", (json_int_t)last, "at",
                                  sy_json_time(sy_stmt_i64(st, 1)), "actor", sy_stmt_text(st, 2),
                                  "role", sy_stmt_text(st, 3), "action", sy_stmt_text(st, 4));
            json_object_set_new(e, "target",
                                sy_stmt_is_null(st, 5) ? json_null()
                                                       : json_string(sy_stmt_text(st, 5)));
            json_object_set_new(e, "request_id",
                                sy_stmt_is_null(st, 6) ? json_null()
                                                       : json_string(sy_stmt_text(st, 6)));
            json_t *detail = NULL;
            if (!sy_stmt_is_null(st, 7))
                detail = json_loads(sy_stmt_text(st, 7), 0, NULL);
            json_object_set_new(e, "detail", detail ? detail : json_null());
            json_array_append_new(items, e);
        }
        sy_stmt_reset(st);
    }
    if (rc != SY_DONE) {
        sy_api_store_error(r, c);
        json_decref(items);
    } else {
        json_t *next = json_null();
        if (json_array_size(items) == (size_t)limit) {
            char buf[24];
            snprintf(buf, sizeof buf, "%lld", (long long)last);
            json_decref(next);
            next = json_string(buf);
        }
        sy_reply_json(r, 200, json_pack("{s:o, s:o}", "items", items, "next_cursor", next));
    }
    sy_store_release(app->store, c);
}

/* api_report.c — GET /v1/campaigns/{id}/report: the campaign report as JSON
 * or (?format=csv) CSV, with the uplift of ?goal=<event> in the audience
 * against the holdout.  The figures are campaign_report.c's. */
#include "api.h"
#include "app.h"
#include "campaign_report.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool event_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 64 || s[0] < 'a' || s[0] > 'z')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return false;
    return true;
}

void sy_api_campaign_report(sy_req *r)
{
    const char *id = sy_req_param(r, "id"), *goal = sy_req_query(r, "goal");
    const char *format = sy_req_query(r, "format");
    if (format && strcmp(format, "json") != 0 && strcmp(format, "csv") != 0) {
        sy_reply_problem(r, 400, "validation", "format", "'format' must be json or csv");
        return;
    }
    if (goal && !event_name_ok(goal)) {
        sy_reply_problem(r, 400, "validation", "goal",
                         "'goal' must be an event name: a-z, then a-z 0-9 _, at most 64");
        return;
    }
    if (!sy_campaign_id_valid(id)) {
        sy_reply_problem(r, 404, "not-found", NULL, "no campaign '%s'", id);
        return;
    }
    sy_campaign *cp = sy_api_campaign_read(r, id);
    if (!cp)
        return;
    sy_app *app = sy_req_app(r);
    const char *tenant = sy_req_principal(r)->tenant;
    int64_t now = sy_req_now_ms(r);
    sy_campaign_report rep;
    sy_conn *c = sy_store_acquire(app->store);
    int rc = sy_campaign_report_days(c, tenant, cp, now, &rep);
    if (rc != SY_OK)
        sy_api_store_error(r, c);
    sy_store_release(app->store, c);
    sy_uplift u, *up = NULL;
    if (rc == SY_OK && goal) {
        sy_attr_set *schema = sy_schemas_get(app->schemas, tenant);
        sy_index *ix = schema ? sy_indexes_get(app->indexes, tenant) : NULL;
        if (!ix) {
            sy_reply_problem(r, 500, "internal", NULL, "the tenant's index is not available");
            rc = SY_ERR;
        } else {
            sy_index_rdlock(ix);
            bool ok = sy_campaign_report_groups(ix, schema, tenant, cp, goal, rep.from_day,
                                                rep.to_day, now, &u);
            sy_index_unlock(ix);
            if (!ok) {
                sy_reply_problem(r, 409, "conflict", NULL,
                                 "the audience segment '%s' of campaign '%s' no longer evaluates",
                                 cp->segment_id, id);
                rc = SY_ERR;
            }
            up = &u;
        }
        sy_attr_set_release(schema);
    }
    if (rc == SY_OK) {
        if (format && !strcmp(format, "csv")) {
            char *csv = sy_campaign_report_csv(cp, &rep, goal, up);
            char disp[128];
            snprintf(disp, sizeof disp, "attachment; filename=\"campaign-%s-report.csv\"", id);
            sy_reply_header(r, "Content-Disposition", disp);
            sy_reply_raw(r, 200, "text/csv; charset=utf-8", csv, strlen(csv));
        } else {
            sy_reply_json(r, 200, sy_campaign_report_json(cp, &rep, goal, up));
        }
    }
    sy_campaign_report_free(&rep);
    sy_campaign_free(cp);
}

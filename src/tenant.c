/* tenant.c — tenant rows and the validation of their fields. */
#include "tenant.h"
#include "util.h"
#include "validate.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

bool sy_tenant_id_valid(const char *id)
{
    size_t n = strlen(id);
    if (n < 1 || n > 32 || id[0] == '-')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
            return false;
    }
    return true;
}

bool sy_timezone_valid(const char *tz)
{
    /* Area/Location names only: no "..", no leading '/', sane characters. */
    size_t n = strlen(tz);
    if (n < 1 || n > 64 || tz[0] == '/' || strstr(tz, ".."))
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = tz[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '/' || c == '_' || c == '-' || c == '+'))
            return false;
    }
    char path[128];
    snprintf(path, sizeof path, "/usr/share/zoneinfo/%s", tz);
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int sy_tenant_create(sy_conn *c, const char *id, const char *name, const char *tz,
                     int64_t now_ms)
{
    static const char sql[] = "INSERT INTO tenants (id, name, timezone, created_at, updated_at)"
                              " VALUES ($1, $2, $3, $4, $4)";
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, id);
    sy_stmt_bind_text(st, 2, name);
    sy_stmt_bind_text(st, 3, tz ? tz : SY_DEFAULT_TIMEZONE);
    sy_stmt_bind_i64(st, 4, now_ms);
    return sy_stmt_exec(st);
}

int sy_tenant_get(sy_conn *c, const char *id, json_t **out)
{
    static const char sql[] =
        "SELECT id, name, timezone, created_at, updated_at FROM tenants WHERE id = $1";
    *out = NULL;
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, id);
    int rc = sy_stmt_step(st);
    if (rc == SY_ROW) {
        *out = json_pack("{s:s, s:s, s:s, s:o, s:o}", "id", sy_stmt_text(st, 0), "name",
                         sy_stmt_text(st, 1), "timezone", sy_stmt_text(st, 2), "created_at",
                         sy_json_time(sy_stmt_i64(st, 3)), "updated_at",
                         sy_json_time(sy_stmt_i64(st, 4)));
    }
    sy_stmt_reset(st);
    return rc == SY_ROW || rc == SY_DONE ? SY_OK : rc;
}

int sy_tenant_count(sy_conn *c, int64_t *n)
{
    static const char sql[] = "SELECT COUNT(*) FROM tenants";
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    int rc = sy_stmt_step(st);
    *n = rc == SY_ROW ? sy_stmt_i64(st, 0) : 0;
    sy_stmt_reset(st);
    return rc == SY_ROW ? SY_OK : rc;
}

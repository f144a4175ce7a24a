/* store.c — backend-independent parts of the store: the migration runner.
 *
 * Migrations are the numbered files src/migrations/NNNN_name.sql, embedded
 * into the binary at build time.  Each one runs in its own transaction
 * together with the row that records it in schema_version, so a migration is
 * either applied and recorded or not applied at all. */
#include "store.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *sy_store_dialect_autoid(void);

static char *expand_dialect(const char *sql)
{
    sy_buf b = {0};
    const char *tok = "{{AUTOID}}";
    size_t toklen = strlen(tok);
    const char *p = sql;
    for (const char *q; (q = strstr(p, tok)) != NULL; p = q + toklen) {
        sy_buf_append(&b, p, (size_t)(q - p));
        sy_buf_puts(&b, sy_store_dialect_autoid());
    }
    sy_buf_puts(&b, p);
    return sy_buf_steal(&b);
}

int sy_store_latest_version(void)
{
    return sy_migrations_count ? sy_migrations[sy_migrations_count - 1].version : 0;
}

int sy_store_schema_version(sy_conn *c, int *current)
{
    static const char sql[] = "SELECT COALESCE(MAX(version), 0) FROM schema_version";
    *current = 0;
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR; /* no schema_version table: nothing applied */
    int rc = sy_stmt_step(st);
    if (rc == SY_ROW)
        *current = (int)sy_stmt_i64(st, 0);
    sy_stmt_reset(st);
    return rc == SY_ROW ? SY_OK : rc;
}

int sy_store_migrate(sy_store *s, int *applied, char *err, size_t errlen)
{
    sy_conn *c = sy_store_write_conn(s);
    *applied = 0;
    int rc = sy_conn_exec(c, "CREATE TABLE IF NOT EXISTS schema_version ("
                             " version INTEGER PRIMARY KEY,"
                             " name TEXT NOT NULL,"
                             " applied_at BIGINT NOT NULL)");
    if (rc != SY_OK) {
        snprintf(err, errlen, "schema_version: %s", sy_conn_errmsg(c));
        return rc;
    }
    for (int i = 0; i < sy_migrations_count; i++) {
        const sy_migration *m = &sy_migrations[i];
        if ((rc = sy_conn_begin(c)) != SY_OK) {
            snprintf(err, errlen, "begin: %s", sy_conn_errmsg(c));
            return rc;
        }
        /* Checked inside the transaction so two processes cannot both apply.
         * Every migration not recorded is applied, in order — also one
         * numbered below others already applied (work merged from a branch
         * after a later migration landed). */
        static const char sql_done[] = "SELECT 1 FROM schema_version WHERE version = $1";
        sy_stmt *q = sy_conn_prepare(c, sql_done);
        if (q)
            sy_stmt_bind_i64(q, 1, m->version);
        int done = q ? sy_stmt_step(q) : SY_ERR;
        if (q)
            sy_stmt_reset(q);
        if (done != SY_ROW && done != SY_DONE) {
            snprintf(err, errlen, "read schema_version: %s", sy_conn_errmsg(c));
            sy_conn_rollback(c);
            return done;
        }
        if (done == SY_ROW) {
            sy_conn_rollback(c);
            continue;
        }
        char *sql = expand_dialect(m->sql);
        rc = sy_conn_exec(c, sql);
        free(sql);
        if (rc == SY_OK) {
            static const char ins[] =
                "INSERT INTO schema_version (version, name, applied_at) VALUES ($1, $2, $3)";
            sy_stmt *st = sy_conn_prepare(c, ins);
            if (!st) {
                rc = SY_ERR;
            } else {
                sy_stmt_bind_i64(st, 1, m->version);
                sy_stmt_bind_text(st, 2, m->name);
                sy_stmt_bind_i64(st, 3, sy_now_ms());
                rc = sy_stmt_exec(st);
            }
        }
        if (rc == SY_OK)
            rc = sy_conn_commit(c);
        if (rc != SY_OK) {
            snprintf(err, errlen, "migration %s: %s", m->name, sy_conn_errmsg(c));
            sy_conn_rollback(c);
            return rc;
        }
        sy_info("applied migration %s", m->name);
        (*applied)++;
    }
    return SY_OK;
}

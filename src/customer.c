/* customer.c — validation helpers for customer records and identities. */
#include "customer.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool sy_customer_no_valid(const char *no)
{
    size_t n = strlen(no);
    if (n < 1 || n > SY_CUSTOMER_NO_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = no[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == ':' || c == '-'))
            return false;
    }
    return true;
}

static const char *const k_identity_types[] = {"app_user_id", "wechat_openid", "wechat_unionid",
                                               "wecom_external_userid", "phone"};

bool sy_identity_type_valid(const char *type)
{
    for (size_t i = 0; i < SY_ARRAY_LEN(k_identity_types); i++)
        if (!strcmp(type, k_identity_types[i]))
            return true;
    return false;
}

bool sy_id_number_valid(const char *id)
{
    size_t n = strlen(id);
    if (n == 15) {
        for (size_t i = 0; i < 15; i++)
            if (id[i] < '0' || id[i] > '9')
                return false;
        return true;
    }
    if (n != 18)
        return false;
    static const int weight[17] = {7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2};
    static const char check[11] = {'1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'};
    int sum = 0;
    for (int i = 0; i < 17; i++) {
        if (id[i] < '0' || id[i] > '9')
            return false;
        sum += (id[i] - '0') * weight[i];
    }
    char last = id[17] == 'x' ? 'X' : id[17];
    return last == check[sum % 11];
}

bool sy_identity_key(const sy_pii_keys *k, const char *tenant, const char *type, const char *value,
                     char *out, size_t n)
{
    if (!strcmp(type, "phone")) {
        char phone[32];
        if (n < 65 || !sy_phone_normalize(value, phone, sizeof phone))
            return false;
        sy_phone_key(k, tenant, phone, out);
        return true;
    }
    size_t len = strlen(value);
    if (len < 1 || len > SY_IDENTITY_VALUE_MAX || len >= n)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)value[i] <= 0x20 || value[i] == 0x7f)
            return false;
    memcpy(out, value, len + 1);
    return true;
}

/* ---- packed attributes ---- */

/* Every attribute of attrs is in schema. */
static bool schema_knows(const sy_attr_set *schema, const json_t *attrs)
{
    const char *name;
    json_t *v;
    json_object_foreach ((json_t *)attrs, name, v)
        if (!sy_attr_find(schema, name))
            return false;
    return true;
}

int sy_customer_history_put(sy_conn *c, const char *tenant, const char *no, const json_t *old_attrs,
                            const json_t *new_attrs, int64_t at)
{
    static const char sql[] = "INSERT INTO attr_history (tenant_id, customer_no, attr, value, at)"
                              " VALUES ($1, $2, $3, $4, $5)";
    static const char *const attrs[] = SY_HISTORY_ATTRS;
    for (size_t i = 0; i < sizeof attrs / sizeof *attrs; i++) {
        json_t *was = old_attrs ? json_object_get(old_attrs, attrs[i]) : NULL,
               *now = new_attrs ? json_object_get(new_attrs, attrs[i]) : NULL;
        if ((!was && !now) || (was && now && json_equal(was, now)))
            continue;
        sy_stmt *st = sy_conn_prepare(c, sql);
        if (!st)
            return SY_ERR;
        char *text = now ? json_dumps(now, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
        sy_stmt_bind_text(st, 1, tenant);
        sy_stmt_bind_text(st, 2, no);
        sy_stmt_bind_text(st, 3, attrs[i]);
        sy_stmt_bind_text(st, 4, text);
        sy_stmt_bind_i64(st, 5, at);
        int rc = sy_stmt_exec(st);
        free(text);
        if (rc != SY_OK)
            return rc;
    }
    return SY_OK;
}

int sy_customer_packed_put(sy_conn *c, const sy_attr_set *schema, const char *tenant,
                           const char *no, int64_t dense, const json_t *attrs)
{
    static const char sql[] =
        "INSERT INTO customer_packed (tenant_id, dense_id, customer_no, attrs)"
        " VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id, dense_id)"
        " DO UPDATE SET customer_no = excluded.customer_no, attrs = excluded.attrs";
    sy_attr_set *fresh = NULL;
    int rc;
    if (!schema || !schema_knows(schema, attrs)) {
        if ((rc = sy_attr_load(c, tenant, &fresh)) != SY_OK)
            return rc;
        schema = fresh;
    }
    sy_buf b = {0};
    sy_attr_pack(schema, attrs, &b);
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (st) {
        sy_stmt_bind_text(st, 1, tenant);
        sy_stmt_bind_i64(st, 2, dense);
        sy_stmt_bind_text(st, 3, no);
        sy_stmt_bind_blob(st, 4, b.data, b.len);
        rc = sy_stmt_exec(st);
    } else {
        rc = SY_ERR;
    }
    sy_buf_free(&b);
    sy_attr_set_release(fresh);
    return rc;
}

int sy_customer_packed_drop(sy_conn *c, const char *tenant, int64_t dense)
{
    static const char sql[] = "DELETE FROM customer_packed WHERE tenant_id = $1 AND dense_id = $2";
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_i64(st, 2, dense);
    return sy_stmt_exec(st);
}

#define PACK_BATCH 5000 /* customers per transaction */

/* Packs one tenant's customers with dense ids above *after, at most
 * PACK_BATCH of them, in one transaction.  *after moves to the last one;
 * *n counts them (0: the tenant is done). */
static int pack_batch(sy_conn *c, const sy_attr_set *schema, const char *tenant, int64_t *after,
                      int64_t *n)
{
    static const char sql[] =
        "SELECT customer_no, dense_id, attrs FROM customers WHERE tenant_id = $1"
        " AND dense_id > $2 AND merged_into IS NULL ORDER BY dense_id LIMIT 5000";
    int rc = sy_conn_begin(c);
    if (rc != SY_OK)
        return rc;
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st) {
        sy_conn_rollback(c);
        return SY_ERR;
    }
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_i64(st, 2, *after);
    /* the rows are read whole before any is written: one statement reads
     * the customers while another writes customer_packed */
    typedef struct row {
        char *no;
        int64_t dense;
        json_t *attrs;
    } row;
    row *rows = sy_xcalloc(PACK_BATCH, sizeof *rows);
    int64_t k = 0;
    while (k < PACK_BATCH && (rc = sy_stmt_step(st)) == SY_ROW) {
        rows[k].no = sy_xstrdup(sy_stmt_text(st, 0));
        rows[k].dense = sy_stmt_i64(st, 1);
        rows[k].attrs = json_loads(sy_stmt_text(st, 2), 0, NULL);
        k++;
    }
    sy_stmt_reset(st);
    if (rc == SY_ROW || rc == SY_DONE)
        rc = SY_OK;
    for (int64_t i = 0; i < k && rc == SY_OK; i++)
        rc = sy_customer_packed_put(c, schema, tenant, rows[i].no, rows[i].dense,
                                    rows[i].attrs ? rows[i].attrs : json_object());
    for (int64_t i = 0; i < k; i++) {
        free(rows[i].no);
        json_decref(rows[i].attrs);
    }
    if (k)
        *after = rows[k - 1].dense;
    free(rows);
    *n = k;
    if (rc == SY_OK)
        return sy_conn_commit(c);
    sy_conn_rollback(c);
    return rc;
}

int sy_customers_pack_backlog(sy_store *s, int64_t *packed)
{
    static const char sql_next[] = "SELECT tenant_id FROM packing_backlog ORDER BY tenant_id";
    static const char sql_done[] = "DELETE FROM packing_backlog WHERE tenant_id = $1";
    sy_conn *c = sy_store_write_conn(s);
    *packed = 0;
    for (;;) {
        char tenant[128];
        sy_stmt *st = sy_conn_prepare(c, sql_next);
        if (!st)
            return SY_ERR;
        int rc = sy_stmt_step(st);
        if (rc == SY_ROW)
            snprintf(tenant, sizeof tenant, "%s", sy_stmt_text(st, 0));
        sy_stmt_reset(st);
        if (rc == SY_DONE)
            return SY_OK;
        if (rc != SY_ROW)
            return rc;
        sy_attr_set *schema = NULL;
        if ((rc = sy_attr_load(c, tenant, &schema)) != SY_OK)
            return rc;
        uint64_t t0 = sy_mono_ns();
        int64_t after = -1, n = 0, total = 0;
        sy_info("packing the attributes of tenant %s's customers (once, after an upgrade)", tenant);
        do {
            rc = pack_batch(c, schema, tenant, &after, &n);
            total += n;
        } while (rc == SY_OK && n > 0);
        sy_attr_set_release(schema);
        if (rc == SY_OK && (st = sy_conn_prepare(c, sql_done))) {
            sy_stmt_bind_text(st, 1, tenant);
            rc = sy_stmt_exec(st); /* autocommit */
        } else if (rc == SY_OK) {
            rc = SY_ERR;
        }
        if (rc != SY_OK)
            return rc;
        *packed += total;
        sy_info("packed the attributes of %lld customers of tenant %s in %.0f ms", (long long)total,
                tenant, (double)(sy_mono_ns() - t0) / 1e6);
    }
}

int sy_customers_check_packed(sy_conn *c, const char *tenant,
                              void (*report)(void *ud, const char *line), void *ud,
                              int64_t *violations, int64_t *checked)
{
    static const char sql_live[] =
        "SELECT c.customer_no, c.dense_id, c.attrs, p.customer_no, p.attrs FROM customers c"
        " LEFT JOIN customer_packed p ON p.tenant_id = c.tenant_id AND p.dense_id = c.dense_id"
        " WHERE c.tenant_id = $1 AND c.merged_into IS NULL";
    static const char sql_extra[] =
        "SELECT p.customer_no, p.dense_id FROM customer_packed p LEFT JOIN customers c"
        " ON c.tenant_id = p.tenant_id AND c.dense_id = p.dense_id AND c.merged_into IS NULL"
        " WHERE p.tenant_id = $1 AND c.customer_no IS NULL";
    static const char sql_backlog[] = "SELECT 1 FROM packing_backlog WHERE tenant_id = $1";
    char line[300];
    sy_attr_set *schema = NULL;
    int rc = sy_attr_load(c, tenant, &schema);
    if (rc != SY_OK)
        return rc;
    sy_stmt *st = sy_conn_prepare(c, sql_backlog);
    if (!st) {
        sy_attr_set_release(schema);
        return SY_ERR;
    }
    sy_stmt_bind_text(st, 1, tenant);
    rc = sy_stmt_step(st);
    sy_stmt_reset(st);
    if (rc == SY_ROW) { /* not packed yet: the next start does it */
        report(ud, "the attributes are not packed yet; the server packs them when it starts");
        ++*violations;
        sy_attr_set_release(schema);
        return SY_OK;
    }
    if (rc != SY_DONE || !(st = sy_conn_prepare(c, sql_live))) {
        sy_attr_set_release(schema);
        return rc == SY_DONE ? SY_ERR : rc;
    }
    sy_stmt_bind_text(st, 1, tenant);
    sy_buf b = {0};
    while ((rc = sy_stmt_step(st)) == SY_ROW) {
        ++*checked;
        const char *no = sy_stmt_text(st, 0);
        if (sy_stmt_is_null(st, 4)) {
            snprintf(line, sizeof line, "customer %s has no packed attributes", no);
            report(ud, line);
            ++*violations;
            continue;
        }
        if (strcmp(no, sy_stmt_text(st, 3)) != 0) {
            snprintf(line, sizeof line, "the packed row of customer %s (dense id %lld) names %s",
                     no, (long long)sy_stmt_i64(st, 1), sy_stmt_text(st, 3));
            report(ud, line);
            ++*violations;
        }
        json_t *attrs = json_loads(sy_stmt_text(st, 2), 0, NULL);
        sy_buf_reset(&b);
        if (attrs)
            sy_attr_pack(schema, attrs, &b);
        json_decref(attrs);
        if (!attrs || b.len != sy_stmt_len(st, 4) ||
            (b.len && memcmp(b.data, sy_stmt_blob(st, 4), b.len) != 0)) {
            snprintf(line, sizeof line,
                     "the packed attributes of customer %s differ from its"
                     " attributes",
                     no);
            report(ud, line);
            ++*violations;
        }
    }
    sy_stmt_reset(st);
    sy_buf_free(&b);
    sy_attr_set_release(schema);
    if (rc != SY_DONE)
        return rc;
    if (!(st = sy_conn_prepare(c, sql_extra)))
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    while ((rc = sy_stmt_step(st)) == SY_ROW) {
        snprintf(line, sizeof line,
                 "packed row for %s (dense id %lld), which is not a customer of its own",
                 sy_stmt_text(st, 0), (long long)sy_stmt_i64(st, 1));
        report(ud, line);
        ++*violations;
    }
    sy_stmt_reset(st);
    return rc == SY_DONE ? SY_OK : rc;
}

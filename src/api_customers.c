/* api_customers.c — /v1/customers and /v1/identities.
 *
 * PUT /v1/customers/{customer_no} creates or updates a customer: the
 * attributes given are set (null unsets one), those not given are kept;
 * the same holds for the personal data (name, phone, id_number), which is
 * sealed before it is stored; identities given are linked.  A phone number
 * in the personal data is linked as a 'phone' identity too, under its keyed
 * hash.
 *
 * GET returns the 360° view with personal data masked.  ?unmask=true, for
 * admin and compliance keys only, returns it in clear text; that read goes
 * through the writer so its audit row is committed before the data leaves. */
#include "api.h"
#include "app.h"
#include "customer.h"
#include "index.h"
#include "ingest.h"
#include "segment_eval.h"
#include "util.h"
#include "validate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef sy_identity_in ident;
typedef sy_customer_err cust_err;

typedef struct cust_put {
    sy_customer_in in; /* the record as checked (ingest.c) */
    /* for the index, filled by apply */
    json_t *old_attrs, *new_attrs;
    int64_t dense;
    bool created;
    struct merged {
        char no[SY_CUSTOMER_NO_MAX + 1];
        int64_t dense;
        json_t *attrs; /* its attributes before the merge */
    } merged[SY_CUSTOMER_IDENTITIES_MAX + 1];
    int nmerged;
} cust_put;

static void reply_cerr(sy_req *r, const cust_err *e)
{
    sy_reply_problem(r, e->status, e->type, e->field[0] ? e->field : NULL, "%s", e->detail);
}

static void cust_put_free(void *p)
{
    cust_put *w = p;
    sy_customer_in_clear(&w->in);
    json_decref(w->old_attrs);
    json_decref(w->new_attrs);
    for (int i = 0; i < w->nmerged; i++)
        json_decref(w->merged[i].attrs);
}

/* ---- the view ---- */

static int load_identities(sy_conn *c, const char *tenant, const char *no, json_t *pii_clear,
                           bool unmask, const sy_pii_keys *k, json_t **out)
{
    static const char sql[] = "SELECT type, value_key FROM identities"
                              " WHERE tenant_id = $1 AND customer_no = $2 ORDER BY type, value_key";
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    char phone_key[65] = "";
    const char *phone = json_string_value(json_object_get(pii_clear, "phone"));
    if (phone)
        sy_phone_key(k, tenant, phone, phone_key);
    json_t *ids = json_array();
    int rc;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, no);
    while ((rc = sy_stmt_step(st)) == SY_ROW) {
        const char *type = sy_stmt_text(st, 0), *key = sy_stmt_text(st, 1);
        json_t *v;
        if (!strcmp(type, "phone")) {
            /* Only the hash is stored: show the customer's own phone. */
            if (phone && !strcmp(key, phone_key)) {
                char masked[32];
                sy_mask_phone(phone, masked, sizeof masked);
                v = json_string(unmask ? phone : masked);
            } else {
                v = json_string("(a former phone number)");
            }
        } else {
            v = json_string(key);
        }
        json_array_append_new(ids, json_pack("{s:s, s:o}", "type", type, "value", v));
    }
    sy_stmt_reset(st);
    if (rc != SY_DONE) {
        json_decref(ids);
        return rc;
    }
    *out = ids;
    return SY_OK;
}

/* Builds the customer's view; *out is NULL when there is no such customer. */
static int customer_view(sy_conn *c, const sy_pii_keys *k, const char *tenant, const char *no,
                         bool unmask, json_t **out)
{
    static const char sql[] = "SELECT attrs, pii, created_at, updated_at, merged_into"
                              " FROM customers WHERE tenant_id = $1 AND customer_no = $2";
    *out = NULL;
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, no);
    int rc = sy_stmt_step(st);
    if (rc != SY_ROW) {
        sy_stmt_reset(st);
        return rc == SY_DONE ? SY_OK : rc;
    }
    json_t *attrs = json_loads(sy_stmt_text(st, 0), 0, NULL);
    json_t *pii = NULL;
    if (!sy_stmt_is_null(st, 1)) {
        pii = sy_pii_open(k, tenant, no, sy_stmt_text(st, 1));
        if (!pii) {
            sy_error("customer %s/%s: personal data does not open with this data key", tenant, no);
            sy_stmt_reset(st);
            json_decref(attrs);
            return SY_ERR;
        }
    }
    int64_t created = sy_stmt_i64(st, 2), updated = sy_stmt_i64(st, 3);
    char merged_into[SY_CUSTOMER_NO_MAX + 1] = "";
    if (!sy_stmt_is_null(st, 4))
        snprintf(merged_into, sizeof merged_into, "%s", sy_stmt_text(st, 4));
    sy_stmt_reset(st);
    if (merged_into[0]) {
        /* A merged customer is only a pointer to the one it became. */
        json_decref(attrs);
        json_decref(pii);
        *out = json_pack("{s:s, s:s}", "customer_no", no, "merged_into", merged_into);
        return SY_OK;
    }
    json_t *ids = NULL;
    if ((rc = load_identities(c, tenant, no, pii, unmask, k, &ids)) != SY_OK) {
        json_decref(attrs);
        json_decref(pii);
        return rc;
    }
    json_t *shown = pii ? (unmask ? json_incref(pii) : sy_pii_masked(pii)) : json_object();
    *out =
        json_pack("{s:s, s:o, s:o, s:o, s:b, s:o, s:o}", "customer_no", no, "attributes",
                  attrs ? attrs : json_object(), "pii", shown, "identities", ids, "pii_unmasked",
                  unmask, "created_at", sy_json_time(created), "updated_at", sy_json_time(updated));
    json_decref(pii);
    return SY_OK;
}

/* ---- PUT ---- */

static int find_identity_owner(sy_conn *c, const char *tenant, const ident *id, char *owner,
                               size_t n)
{
    static const char sql[] = "SELECT customer_no FROM identities"
                              " WHERE tenant_id = $1 AND type = $2 AND value_key = $3";
    owner[0] = '\0';
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, id->type);
    sy_stmt_bind_text(st, 3, id->key);
    int rc = sy_stmt_step(st);
    if (rc == SY_ROW)
        snprintf(owner, n, "%s", sy_stmt_text(st, 0));
    sy_stmt_reset(st);
    return rc == SY_ROW || rc == SY_DONE ? SY_OK : rc;
}

/* Links an identity to customer no.  Returns SY_OK, or 2 with the other
 * customer holding it in owner (the caller merges). */
static int link_identity(sy_conn *c, const char *tenant, const char *no, const ident *id,
                         int64_t now, char *owner, size_t owner_len)
{
    static const char sql[] = "INSERT INTO identities (tenant_id, type, value_key, customer_no,"
                              " created_at) VALUES ($1, $2, $3, $4, $5)";
    int rc = find_identity_owner(c, tenant, id, owner, owner_len);
    if (rc != SY_OK)
        return rc;
    if (!strcmp(owner, no))
        return SY_OK;
    if (owner[0])
        return 2;
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, id->type);
    sy_stmt_bind_text(st, 3, id->key);
    sy_stmt_bind_text(st, 4, no);
    sy_stmt_bind_i64(st, 5, now);
    return sy_stmt_exec(st);
}

static int unlink_phone(sy_conn *c, const char *tenant, const char *no, const char *key)
{
    static const char sql[] = "DELETE FROM identities WHERE tenant_id = $1 AND type = 'phone'"
                              " AND value_key = $2 AND customer_no = $3";
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, key);
    sy_stmt_bind_text(st, 3, no);
    return sy_stmt_exec(st);
}

/* Merges customer from into customer into (both of tenant), inside the
 * caller's transaction: from's attributes and personal data fill what
 * into lacks (into_attrs and into_pii are updated in memory; the caller
 * writes them), its identities, events and manual tag memberships move to
 * into, and its row is marked merged.  *m records from for the index. */
static int merge_customer(sy_conn *c, const sy_pii_keys *k, const char *tenant, const char *into,
                          const char *from, const char *why, json_t *into_attrs, json_t *into_pii,
                          struct merged *m, int64_t now)
{
    static const char sql_get[] = "SELECT attrs, pii, dense_id FROM customers"
                                  " WHERE tenant_id = $1 AND customer_no = $2";
    static const char move_ids[] =
        "UPDATE identities SET customer_no = $3 WHERE tenant_id = $1 AND customer_no = $2";
    static const char move_events[] =
        "UPDATE events SET customer_no = $3 WHERE tenant_id = $1 AND customer_no = $2";
    static const char move_tags[] =
        "UPDATE tag_members SET customer_no = $3 WHERE tenant_id = $1 AND customer_no = $2"
        " AND tag NOT IN (SELECT tag FROM tag_members WHERE tenant_id = $1 AND customer_no = $3)";
    static const char drop_tags[] =
        "DELETE FROM tag_members WHERE tenant_id = $1 AND customer_no = $2";
    static const char mark[] =
        "UPDATE customers SET merged_into = $3 WHERE tenant_id = $1 AND customer_no = $2";
    static const char *const moves[] = {move_ids, move_events, move_tags, drop_tags, mark};
    static const char sql_rec[] = "INSERT INTO customer_merges (tenant_id, from_no, into_no,"
                                  " identity_type, at) VALUES ($1, $2, $3, $4, $5)";
    sy_stmt *st = sy_conn_prepare(c, sql_get);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, from);
    int rc = sy_stmt_step(st);
    if (rc != SY_ROW) {
        sy_stmt_reset(st);
        return rc == SY_DONE ? SY_ERR : rc; /* an identity's owner always exists */
    }
    json_t *attrs = json_loads(sy_stmt_text(st, 0), 0, NULL);
    json_t *pii = sy_stmt_is_null(st, 1) ? NULL : sy_pii_open(k, tenant, from, sy_stmt_text(st, 1));
    snprintf(m->no, sizeof m->no, "%s", from);
    m->dense = sy_stmt_i64(st, 2);
    m->attrs = attrs ? json_deep_copy(attrs) : json_object();
    sy_stmt_reset(st);
    /* The survivor's values win; the merged customer's fill the gaps. */
    const char *key;
    json_t *v;
    json_object_foreach (attrs, key, v)
        if (!json_object_get(into_attrs, key))
            json_object_set(into_attrs, key, v);
    json_object_foreach (pii, key, v)
        if (!json_object_get(into_pii, key))
            json_object_set(into_pii, key, v);
    json_decref(attrs);
    json_decref(pii);
    if ((rc = sy_customer_packed_drop(c, tenant, m->dense)) != SY_OK)
        return rc;
    for (size_t i = 0; i < SY_ARRAY_LEN(moves); i++) {
        /* static arrays: the statement cache keys on their addresses */
        if (!(st = sy_conn_prepare(c, moves[i])))
            return SY_ERR;
        sy_stmt_bind_text(st, 1, tenant);
        sy_stmt_bind_text(st, 2, from);
        sy_stmt_bind_text(st, 3, into);
        if ((rc = sy_stmt_exec(st)) != SY_OK)
            return rc;
    }
    if (!(st = sy_conn_prepare(c, sql_rec)))
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, from);
    sy_stmt_bind_text(st, 3, into);
    sy_stmt_bind_text(st, 4, why);
    sy_stmt_bind_i64(st, 5, now);
    return sy_stmt_exec(st);
}

/* Creates or updates one customer inside the caller's transaction.
 * Returns 0, 1 with *e set when the record is refused, or a store error. */
static int upsert_customer(sy_conn *c, const sy_pii_keys *k, const sy_attr_set *schema,
                           const char *tenant, cust_put *w, cust_err *e, int64_t now)
{
    static const char sql_get[] = "SELECT attrs, pii, dense_id, merged_into FROM customers"
                                  " WHERE tenant_id = $1 AND customer_no = $2";
    static const char sql_next[] =
        "SELECT COALESCE(MAX(dense_id), -1) + 1 FROM customers WHERE tenant_id = $1";
    static const char sql_ins[] =
        "INSERT INTO customers (tenant_id, customer_no, dense_id, attrs, pii, created_at,"
        " updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6)";
    static const char sql_upd[] = "UPDATE customers SET attrs = $3, pii = $4, updated_at = $5"
                                  " WHERE tenant_id = $1 AND customer_no = $2";
    const char *no = w->in.customer_no;
    int rc;
    json_t *attrs = NULL, *pii = NULL;
    char *attrs_text = NULL, *sealed = NULL;
    bool exists = false;

    sy_stmt *st = sy_conn_prepare(c, sql_get);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, no);
    rc = sy_stmt_step(st);
    if (rc == SY_ROW) {
        exists = true;
        w->dense = sy_stmt_i64(st, 2);
        if (!sy_stmt_is_null(st, 3)) {
            sy_customer_err_set(e, 409, "conflict", NULL,
                                "customer '%s' was merged into '%s'; write to that one", no,
                                sy_stmt_text(st, 3));
            sy_stmt_reset(st);
            return 1;
        }
        attrs = json_loads(sy_stmt_text(st, 0), 0, NULL);
        if (!sy_stmt_is_null(st, 1))
            pii = sy_pii_open(k, tenant, no, sy_stmt_text(st, 1));
        if (!sy_stmt_is_null(st, 1) && !pii)
            rc = SY_ERR;
    }
    sy_stmt_reset(st);
    if (rc != SY_ROW && rc != SY_DONE)
        goto out;
    if (!attrs)
        attrs = json_object();
    if (!pii)
        pii = json_object();
    json_decref(w->old_attrs);
    w->old_attrs = exists ? json_deep_copy(attrs) : NULL;

    /* Merge: given attributes are set, nulls unset, the rest kept. */
    json_object_update(attrs, w->in.set);
    size_t i;
    json_t *v;
    json_array_foreach (w->in.unset, i, v)
        json_object_del(attrs, json_string_value(v));
    char old_phone_key[65] = "";
    const char *old_phone = json_string_value(json_object_get(pii, "phone"));
    if (old_phone)
        sy_phone_key(k, tenant, old_phone, old_phone_key);
    const char *key;
    json_object_foreach (w->in.pii, key, v) {
        if (json_is_null(v))
            json_object_del(pii, key);
        else
            json_object_set(pii, key, v);
    }
    /* Identities — those given, and the phone of the personal data — before
     * the row is written: a merge fills gaps in attrs and pii, so the row is
     * written once, with its final values. */
    const char *new_phone = json_string_value(json_object_get(pii, "phone"));
    char new_phone_key[65] = "";
    if (new_phone)
        sy_phone_key(k, tenant, new_phone, new_phone_key);
    if (old_phone_key[0] && strcmp(old_phone_key, new_phone_key) != 0 &&
        (rc = unlink_phone(c, tenant, no, old_phone_key)) != SY_OK)
        goto out;
    ident all[SY_CUSTOMER_IDENTITIES_MAX + 1];
    int nall = 0;
    if (new_phone) {
        memset(&all[nall], 0, sizeof all[nall]);
        snprintf(all[nall].type, sizeof all[nall].type, "phone");
        snprintf(all[nall++].key, sizeof all[0].key, "%s", new_phone_key);
    }
    for (int j = 0; j < w->in.nids; j++)
        all[nall++] = w->in.ids[j];
    for (int j = 0; j < nall; j++) {
        char owner[SY_CUSTOMER_NO_MAX + 1];
        rc = link_identity(c, tenant, no, &all[j], now, owner, sizeof owner);
        if (rc == 2) {
            /* The identity says both records are one customer: merge the
             * other into this one, then the identity is ours already. */
            if (w->nmerged >= (int)SY_ARRAY_LEN(w->merged)) {
                sy_customer_err_set(e, 409, "conflict", "/identities",
                                    "too many merges in one change");
                rc = 1;
                goto out;
            }
            rc = merge_customer(c, k, tenant, no, owner, all[j].type, attrs, pii,
                                &w->merged[w->nmerged], now);
            if (rc != SY_OK)
                goto out;
            w->nmerged++;
            rc = link_identity(c, tenant, no, &all[j], now, owner, sizeof owner);
        }
        if (rc != SY_OK)
            goto out;
    }

    attrs_text = json_dumps(attrs, JSON_COMPACT | JSON_SORT_KEYS);
    sealed = json_object_size(pii) ? sy_pii_seal(k, tenant, no, pii) : NULL;

    if (!exists) {
        st = sy_conn_prepare(c, sql_next);
        if (st)
            sy_stmt_bind_text(st, 1, tenant);
        if (!st || (rc = sy_stmt_step(st)) != SY_ROW) {
            rc = SY_ERR;
            goto out;
        }
        int64_t dense = sy_stmt_i64(st, 0);
        sy_stmt_reset(st);
        w->dense = dense;
        if (dense > UINT32_MAX) {
            sy_customer_err_set(e, 409, "conflict", NULL, "the tenant has 2^32 customers already");
            rc = 1;
            goto out;
        }
        if (!(st = sy_conn_prepare(c, sql_ins))) {
            rc = SY_ERR;
            goto out;
        }
        sy_stmt_bind_text(st, 1, tenant);
        sy_stmt_bind_text(st, 2, no);
        sy_stmt_bind_i64(st, 3, dense);
        sy_stmt_bind_text(st, 4, attrs_text);
        sy_stmt_bind_text(st, 5, sealed);
        sy_stmt_bind_i64(st, 6, now);
    } else {
        if (!(st = sy_conn_prepare(c, sql_upd))) {
            rc = SY_ERR;
            goto out;
        }
        sy_stmt_bind_text(st, 1, tenant);
        sy_stmt_bind_text(st, 2, no);
        sy_stmt_bind_text(st, 3, attrs_text);
        sy_stmt_bind_text(st, 4, sealed);
        sy_stmt_bind_i64(st, 5, now);
    }
    if ((rc = sy_stmt_exec(st)) != SY_OK ||
        (rc = sy_customer_packed_put(c, schema, tenant, no, w->dense, attrs)) != SY_OK ||
        (rc = sy_customer_history_put(c, tenant, no, w->old_attrs, attrs, now)) != SY_OK)
        goto out;
    w->created = !exists;
    json_decref(w->new_attrs);
    w->new_attrs = json_deep_copy(attrs);

out:
    json_decref(attrs);
    json_decref(pii);
    free(attrs_text);
    free(sealed);
    return rc;
}

static int apply_customer_put(sy_conn *c, sy_req *r, void *ctx)
{
    cust_put *w = ctx;
    const sy_pii_keys *k = sy_req_app(r)->pii;
    const char *tenant = sy_req_principal(r)->tenant;
    cust_err e;
    sy_attr_set *schema = sy_schemas_get(sy_req_app(r)->schemas, tenant);
    int rc = upsert_customer(c, k, schema, tenant, w, &e, sy_req_now_ms(r));
    sy_attr_set_release(schema);
    if (rc == 1)
        reply_cerr(r, &e);
    if (rc != 0)
        return rc;
    json_t *view = NULL;
    if ((rc = customer_view(c, k, tenant, w->in.customer_no, false, &view)) != SY_OK || !view)
        return rc ? rc : SY_ERR;
    if (w->created) {
        char loc[128];
        snprintf(loc, sizeof loc, "/v1/customers/%s", w->in.customer_no);
        sy_reply_header(r, "Location", loc);
    }
    sy_req_audit_target(r, w->in.customer_no);
    sy_reply_json(r, w->created ? 201 : 200, view);
    return 0;
}

/* After the commit: the change reaches the segment index before the reply,
 * so an answer given after this 2xx already reflects it. */
static void customer_committed(sy_req *r, void *ctx)
{
    cust_put *w = ctx;
    sy_app *app = sy_req_app(r);
    const char *tenant = sy_req_principal(r)->tenant;
    sy_index *ix = sy_indexes_get(app->indexes, tenant);
    sy_attr_set *schema = sy_schemas_get(app->schemas, tenant);
    if (ix && schema) {
        if (w->created)
            sy_index_add_customer(ix, w->in.customer_no, (uint32_t)w->dense);
        for (int i = 0; i < w->nmerged; i++)
            sy_index_merge(ix, schema, (uint32_t)w->merged[i].dense, w->merged[i].attrs,
                           (uint32_t)w->dense);
        sy_index_update_attrs(ix, (uint32_t)w->dense, schema, w->old_attrs, w->new_attrs);
    } else {
        sy_error("index of tenant %s not updated for customer %s", tenant, w->in.customer_no);
    }
    sy_attr_set_release(schema);
}

void sy_api_customers_put(sy_req *r)
{
    json_t *body = sy_req_json_object(r);
    if (!body)
        return;
    sy_app *app = sy_req_app(r);
    const char *tenant = sy_req_principal(r)->tenant;
    sy_attr_set *schema = sy_schemas_get(app->schemas, tenant);
    if (!schema) {
        sy_reply_problem(r, 500, "internal", NULL, "the attribute schema could not be read");
        return;
    }
    cust_put *w = sy_req_alloc(r, sizeof *w);
    memset(w, 0, sizeof *w);
    cust_err e;
    bool ok = sy_customer_parse(app->pii, schema, tenant, sy_req_param(r, "customer_no"), body,
                                NULL, &w->in, &e);
    sy_req_on_free(r, cust_put_free, w);
    sy_attr_set_release(schema);
    if (!ok) {
        reply_cerr(r, &e);
        return;
    }
    sy_req_write(r, apply_customer_put, customer_committed, w);
}

/* ---- import ---- */

#define MAX_IMPORT_LINES 50000
#define MAX_IMPORT_ERRORS 1000

typedef struct import_batch {
    cust_put *rows;
    size_t *lines; /* line number of each row */
    size_t n;
    json_t *errors;
    size_t created, updated, failed;
} import_batch;

static void import_free(void *p)
{
    import_batch *b = p;
    for (size_t i = 0; i < b->n; i++)
        cust_put_free(&b->rows[i]);
    free(b->rows);
    free(b->lines);
    json_decref(b->errors);
}

static void import_error(import_batch *b, size_t line, const cust_err *e)
{
    b->failed++;
    if (json_array_size(b->errors) < MAX_IMPORT_ERRORS)
        json_array_append_new(b->errors, json_pack("{s:I, s:s, s:s}", "line", (json_int_t)line,
                                                   "field", e->field, "detail", e->detail));
}

/* One row of an import, in its own savepoint: a refused row leaves the
 * others. */
static int import_row(sy_conn *c, const sy_pii_keys *k, const sy_attr_set *schema,
                      const char *tenant, import_batch *b, size_t i, int64_t now)
{
    int rc = sy_conn_exec(c, "SAVEPOINT import_row");
    if (rc != SY_OK)
        return rc;
    cust_err e;
    rc = upsert_customer(c, k, schema, tenant, &b->rows[i], &e, now);
    if (rc < 0)
        return rc;
    if (rc == 1) {
        if ((rc = sy_conn_exec(c, "ROLLBACK TO import_row")) != SY_OK)
            return rc;
        import_error(b, b->lines[i], &e);
        b->rows[i].in.customer_no = NULL; /* nothing for the index */
    } else if (b->rows[i].created) {
        b->created++;
    } else {
        b->updated++;
    }
    return sy_conn_exec(c, "RELEASE import_row");
}

static int apply_import(sy_conn *c, sy_req *r, void *ctx)
{
    import_batch *b = ctx;
    const sy_pii_keys *k = sy_req_app(r)->pii;
    const char *tenant = sy_req_principal(r)->tenant;
    sy_attr_set *schema = sy_schemas_get(sy_req_app(r)->schemas, tenant);
    int rc = SY_OK;
    for (size_t i = 0; i < b->n && rc == SY_OK; i++)
        rc = import_row(c, k, schema, tenant, b, i, sy_req_now_ms(r));
    sy_attr_set_release(schema);
    if (rc != SY_OK)
        return rc;
    sy_req_audit_target(r, "customers");
    sy_reply_json(r, 200,
                  json_pack("{s:I, s:I, s:I, s:O}", "created", (json_int_t)b->created, "updated",
                            (json_int_t)b->updated, "failed", (json_int_t)b->failed, "errors",
                            b->errors));
    return 0;
}

static void import_committed(sy_req *r, void *ctx)
{
    import_batch *b = ctx;
    for (size_t i = 0; i < b->n; i++)
        if (b->rows[i].in.customer_no)
            customer_committed(r, &b->rows[i]);
}

void sy_api_customers_import(sy_req *r)
{
    size_t len;
    const char *body = sy_req_body(r, &len);
    sy_app *app = sy_req_app(r);
    const char *tenant = sy_req_principal(r)->tenant;
    sy_attr_set *schema = sy_schemas_get(app->schemas, tenant);
    if (!schema) {
        sy_reply_problem(r, 500, "internal", NULL, "the attribute schema could not be read");
        return;
    }
    import_batch *b = sy_req_alloc(r, sizeof *b);
    memset(b, 0, sizeof *b);
    b->errors = json_array();
    sy_req_on_free(r, import_free, b);
    size_t cap = 0, line, n;
    const char *text;
    sy_ndjson it;
    sy_ndjson_init(&it, body, len);
    while (sy_ndjson_next(&it, &text, &n, &line)) {
        if (b->n + b->failed >= MAX_IMPORT_LINES) {
            sy_attr_set_release(schema);
            sy_reply_problem(r, 413, "payload-too-large", NULL,
                             "an import request holds at most %d lines; split the file",
                             MAX_IMPORT_LINES);
            return;
        }
        cust_err e;
        json_t *o = sy_customer_line_load(text, n, &e);
        if (!o) {
            import_error(b, line, &e);
            continue;
        }
        if (b->n == cap) {
            cap = cap ? cap * 2 : 256;
            b->rows = sy_xrealloc(b->rows, cap * sizeof *b->rows);
            b->lines = sy_xrealloc(b->lines, cap * sizeof *b->lines);
        }
        const char *no = json_string_value(json_object_get(o, "customer_no"));
        cust_put *w = &b->rows[b->n];
        char *no_copy = no ? sy_req_strdup(r, no) : NULL;
        memset(w, 0, sizeof *w);
        if (sy_customer_parse(app->pii, schema, tenant, no_copy ? no_copy : "", o, "customer_no",
                              &w->in, &e)) {
            b->lines[b->n++] = line;
        } else {
            cust_put_free(w);
            import_error(b, line, &e);
        }
        json_decref(o);
    }
    sy_attr_set_release(schema);
    if (b->n == 0 && b->failed == 0) {
        sy_reply_problem(r, 400, "validation", "",
                         "the body holds no customers (NDJSON: one JSON object per line)");
        return;
    }
    if (b->n == 0) {
        /* Nothing usable at all: bad input, not a partial import. */
        sy_reply_problem(r, 400, "validation", "", "none of the %zu lines is a valid customer",
                         b->failed);
        sy_reply_extend(r, "errors", json_incref(b->errors));
        return;
    }
    sy_req_write(r, apply_import, import_committed, b);
}

/* ---- GET ---- */

typedef struct view_tags {
    const sy_index *ix;
    const sy_attr_set *schema;
    const roaring_bitmap_t *one; /* the customer's dense id */
    uint32_t dense;
    json_t *out;
} view_tags;

/* Is the customer of vt->one in the set ast selects?  Evaluated among that
 * one customer: a lookup per term. */
static bool view_member(const view_tags *vt, const sy_seg_node *ast)
{
    sy_seg_error e;
    roaring_bitmap_t *b =
        ast ? sy_seg_eval_index_among(vt->ix, vt->schema, sy_now_ms(), ast, vt->one, &e) : NULL;
    bool in = b && roaring_bitmap_contains(b, vt->dense);
    if (b)
        roaring_bitmap_free(b);
    return in;
}

static void view_tag(const sy_index_tag *t, void *ud)
{
    view_tags *vt = ud;
    bool in = t->rule ? view_member(vt, t->ast)
                      : t->members && roaring_bitmap_contains(t->members, vt->dense);
    if (in)
        json_array_append_new(vt->out, json_pack("{s:s, s:s, s:s}", "name", t->name, "category",
                                                 t->category, "kind", t->rule ? "rule" : "manual"));
}

/* The parts of the 360° view beyond the customer's row: the tags and saved
 * segments the customer is in now, from the segment index, and the ten
 * newest events from the timeline (GET /v1/customers/{no}/events pages
 * through all of them). */
static int add_view_extras(sy_app *app, sy_conn *c, const char *tenant, const char *no,
                           json_t *view)
{
    static const char sql_segments[] =
        "SELECT id, name FROM segments WHERE tenant_id = $1 ORDER BY id";
    static const char sql_events[] =
        "SELECT event_id, name, ts, dwell_ms FROM events WHERE tenant_id = $1"
        " AND customer_no = $2 ORDER BY ts DESC, event_id DESC LIMIT 10";
    json_t *tags = json_array(), *segments = json_array(), *events = json_array();
    json_object_set_new(view, "tags", tags);
    json_object_set_new(view, "segments", segments);
    json_object_set_new(view, "last_events", events);
    /* the saved segments, read before the index is locked */
    json_t *all = json_array();
    sy_stmt *st = sy_conn_prepare(c, sql_segments);
    int rc = st ? SY_OK : SY_ERR;
    if (st) {
        sy_stmt_bind_text(st, 1, tenant);
        while ((rc = sy_stmt_step(st)) == SY_ROW)
            json_array_append_new(all, json_pack("{s:s, s:s}", "id", sy_stmt_text(st, 0), "name",
                                                 sy_stmt_text(st, 1)));
        sy_stmt_reset(st);
        rc = rc == SY_DONE ? SY_OK : rc;
    }
    sy_attr_set *schema = rc == SY_OK ? sy_schemas_get(app->schemas, tenant) : NULL;
    sy_index *ix = schema ? sy_indexes_get(app->indexes, tenant) : NULL;
    if (ix) {
        sy_index_rdlock(ix);
        uint32_t dense;
        if (sy_index_dense(ix, no, &dense)) {
            roaring_bitmap_t *one = roaring_bitmap_from_range(dense, (uint64_t)dense + 1, 1);
            view_tags vt = {ix, schema, one, dense, tags};
            sy_index_tags(ix, view_tag, &vt);
            size_t i;
            json_t *sg;
            json_array_foreach (all, i, sg)
                if (view_member(&vt,
                                sy_index_segment(ix, json_string_value(json_object_get(sg, "id")))))
                    json_array_append(segments, sg);
            roaring_bitmap_free(one);
        }
        sy_index_unlock(ix);
    }
    sy_attr_set_release(schema);
    json_decref(all);
    if (rc == SY_OK && !(st = sy_conn_prepare(c, sql_events)))
        rc = SY_ERR;
    if (rc == SY_OK) {
        sy_stmt_bind_text(st, 1, tenant);
        sy_stmt_bind_text(st, 2, no);
        while ((rc = sy_stmt_step(st)) == SY_ROW) {
            json_t *e = json_pack("{s:s, s:s, s:o}", "event_id", sy_stmt_text(st, 0), "name",
                                  sy_stmt_text(st, 1), "ts", sy_json_time(sy_stmt_i64(st, 2)));
            json_object_set_new(e, "dwell_ms",
                                sy_stmt_is_null(st, 3) ? json_null()
                                                       : json_integer(sy_stmt_i64(st, 3)));
            json_array_append_new(events, e);
        }
        sy_stmt_reset(st);
        rc = rc == SY_DONE ? SY_OK : rc;
    }
    return rc;
}

static int apply_unmasked_read(sy_conn *c, sy_req *r, void *ctx)
{
    json_t *view = NULL;
    const char *no = sy_req_param(r, "customer_no");
    const char *tenant = sy_req_principal(r)->tenant;
    int rc = customer_view(c, sy_req_app(r)->pii, tenant, no, true, &view);
    if (rc == SY_OK && view && !json_object_get(view, "merged_into"))
        rc = add_view_extras(sy_req_app(r), c, tenant, no, view);
    if (rc != SY_OK) {
        json_decref(view);
        return rc;
    }
    if (!view) {
        sy_reply_problem(r, 404, "not-found", NULL, "no customer '%s'", no);
        return 1;
    }
    /* The audit row (written by the server in this transaction) names the
     * read of unmasked personal data. */
    sy_req_audit_target(r, no);
    sy_req_audit_action(r, "read unmasked personal data");
    sy_reply_json(r, 200, view);
    return 0;
}

void sy_api_customers_get(sy_req *r)
{
    bool unmask;
    if (!sy_v_query_bool(r, "unmask", false, &unmask))
        return;
    const char *no = sy_req_param(r, "customer_no");
    if (unmask) {
        if (sy_api_unmask_allowed(r))
            sy_req_write(r, apply_unmasked_read, NULL, NULL);
        return;
    }
    sy_app *app = sy_req_app(r);
    sy_conn *c = sy_store_acquire(app->store);
    json_t *view = NULL;
    int rc = customer_view(c, app->pii, sy_req_principal(r)->tenant, no, false, &view);
    if (rc == SY_OK && view && !json_object_get(view, "merged_into"))
        rc = add_view_extras(app, c, sy_req_principal(r)->tenant, no, view);
    if (rc != SY_OK) {
        json_decref(view);
        sy_api_store_error(r, c);
    } else if (!view)
        sy_reply_problem(r, 404, "not-found", NULL, "no customer '%s'", no);
    else
        sy_reply_json(r, 200, view);
    sy_store_release(app->store, c);
}

void sy_api_identities_get(sy_req *r)
{
    static const char sql[] = "SELECT customer_no FROM identities"
                              " WHERE tenant_id = $1 AND type = $2 AND value_key = $3";
    const char *type = sy_req_param(r, "type"), *value = sy_req_param(r, "value");
    const char *tenant = sy_req_principal(r)->tenant;
    sy_app *app = sy_req_app(r);
    char key[SY_IDENTITY_VALUE_MAX + 1];
    if (!sy_identity_type_valid(type)) {
        sy_reply_problem(r, 404, "not-found", "type", "no identity type '%s'", type);
        return;
    }
    if (!sy_identity_key(app->pii, tenant, type, value, key, sizeof key)) {
        sy_reply_problem(r, 400, "validation", "value", "not a valid %s value", type);
        return;
    }
    sy_conn *c = sy_store_acquire(app->store);
    sy_stmt *st = sy_conn_prepare(c, sql);
    int rc = SY_ERR;
    if (st) {
        sy_stmt_bind_text(st, 1, tenant);
        sy_stmt_bind_text(st, 2, type);
        sy_stmt_bind_text(st, 3, key);
        rc = sy_stmt_step(st);
        if (rc == SY_ROW)
            sy_reply_json(
                r, 200, json_pack("{s:s, s:s}", "type", type, "customer_no", sy_stmt_text(st, 0)));
        else if (rc == SY_DONE)
            sy_reply_problem(r, 404, "not-found", NULL, "no customer has this %s", type);
        sy_stmt_reset(st);
    }
    if (rc != SY_ROW && rc != SY_DONE)
        sy_api_store_error(r, c);
    sy_store_release(app->store, c);
}

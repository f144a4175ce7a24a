/* index_registry.c — one index per tenant for the server: all built at
 * start, a new tenant's on first use, kept until shutdown. */
#include "auth.h"
#include "index.h"
#include "tenant.h"
#include "util.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct entry {
    char tenant[SY_TENANT_ID_MAX + 1];
    sy_index *ix;
} entry;

struct sy_indexes {
    sy_store *store;
    sy_tenants *tenants;
    sy_schemas *schemas;
    pthread_mutex_t mu; /* guards the table and serialises builds */
    entry *e;
    size_t n, cap;
};

sy_indexes *sy_indexes_new(sy_store *s, sy_tenants *t, sy_schemas *sc)
{
    sy_indexes *r = sy_xcalloc(1, sizeof *r);
    r->store = s;
    r->tenants = t;
    r->schemas = sc;
    pthread_mutex_init(&r->mu, NULL);
    return r;
}

void sy_indexes_free(sy_indexes *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++)
        sy_index_free(r->e[i].ix);
    free(r->e);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

/* Builds one tenant's index; the caller holds r->mu. */
static sy_index *build(sy_indexes *r, const char *tenant)
{
    sy_tenant_info ti;
    if (sy_tenants_get(r->tenants, tenant, &ti) != SY_OK)
        return NULL;
    sy_attr_set *schema = sy_schemas_get(r->schemas, tenant);
    if (!schema)
        return NULL;
    uint64_t t0 = sy_mono_ns();
    sy_index *ix = sy_index_new(sy_tz_offset_ms(ti.timezone, sy_now_ms()));
    sy_conn *c = sy_store_acquire(r->store);
    sy_conn *c2 = sy_store_try_acquire(r->store); /* events beside customers */
    sy_index_load load;
    int rc = sy_index_rebuild(ix, c, c2, tenant, schema, &load);
    sy_store_release(r->store, c);
    if (c2)
        sy_store_release(r->store, c2);
    sy_attr_set_release(schema);
    if (rc != SY_OK) {
        sy_error("index of tenant %s: rebuild failed", tenant);
        sy_index_free(ix);
        return NULL;
    }
    sy_index_rdlock(ix);
    sy_index_mem m;
    sy_index_memory_parts(ix, &m);
    sy_info("indexed tenant %s: %u customers, %.1f MiB (customers %.1f, values %.1f, columns %.1f,"
            " behaviour %.1f + %.1f, times %.1f, tags %.1f), in %.0f ms (customers %lld done at "
            "%.0f ms,"
            " events %lld at %.0f ms)",
            tenant, sy_index_size(ix), (double)sy_index_memory(ix) / 1048576.0,
            (double)m.customers / 1048576.0, (double)m.values / 1048576.0,
            (double)m.columns / 1048576.0, (double)m.actors / 1048576.0,
            (double)m.entries / 1048576.0, (double)m.times / 1048576.0, (double)m.tags / 1048576.0,
            (double)(sy_mono_ns() - t0) / 1e6, (long long)load.customers, load.customers_ms,
            (long long)load.events, load.events_ms);
    sy_index_unlock(ix);
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 8;
        r->e = sy_xrealloc(r->e, r->cap * sizeof *r->e);
    }
    snprintf(r->e[r->n].tenant, sizeof r->e[r->n].tenant, "%s", tenant);
    r->e[r->n++].ix = ix;
    return ix;
}

sy_index *sy_indexes_get(sy_indexes *r, const char *tenant)
{
    pthread_mutex_lock(&r->mu);
    sy_index *ix = NULL;
    for (size_t i = 0; i < r->n && !ix; i++)
        if (!strcmp(r->e[i].tenant, tenant))
            ix = r->e[i].ix;
    if (!ix)
        ix = build(r, tenant);
    pthread_mutex_unlock(&r->mu);
    return ix;
}

int sy_indexes_build_all(sy_indexes *r)
{
    static const char sql[] = "SELECT id FROM tenants ORDER BY id";
    sy_conn *c = sy_store_acquire(r->store);
    sy_stmt *st = sy_conn_prepare(c, sql);
    char **ids = NULL;
    size_t n = 0;
    int rc = st ? SY_OK : SY_ERR;
    while (st && (rc = sy_stmt_step(st)) == SY_ROW) {
        ids = sy_xrealloc(ids, (n + 1) * sizeof *ids);
        ids[n++] = sy_xstrdup(sy_stmt_text(st, 0));
    }
    if (st)
        sy_stmt_reset(st);
    sy_store_release(r->store, c);
    bool ok = rc == SY_DONE;
    for (size_t i = 0; i < n; i++) {
        if (ok && !sy_indexes_get(r, ids[i]))
            ok = false;
        free(ids[i]);
    }
    free(ids);
    return ok ? SY_OK : SY_ERR;
}

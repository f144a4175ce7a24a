/* api_offers.c — GET /v1/customers/{customer_no}/offers (千人千面): the
 * campaigns, packages and mall listings one customer can use now, with
 * what is left of their limits and chances, ranked (offers.h).
 *
 * The read path is built for p99 in milliseconds with hundreds of running
 * campaigns and millions of customers:
 *
 *   - the catalogue (campaigns, packages, listings, their audiences parsed)
 *     is cached per tenant and shared between requests.  A campaign write
 *     (api_campaigns.c) bumps a generation, and the next request loads it
 *     again before it answers; otherwise a catalogue a second old is
 *     refreshed by one request while the others keep using the old one
 *     (packages, listings, stock and budgets may lag by that second);
 *   - audiences are evaluated among the one customer through the segment
 *     index (a lookup per term), only for offers running now;
 *   - the risk profile comes from the index's columns, the holdout from a
 *     hash; the customer's participations and grants from two indexed
 *     queries on a read connection. */
#include "api.h"
#include "app.h"
#include "customer.h"
#include "offers.h"
#include "segment_eval.h"
#include "util.h"
#include "validate.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CATALOG_SYNC_MS 1000    /* budgets spent and stock */
#define CATALOG_RELOAD_MS 60000 /* everything (packages and listings defined meanwhile) */
#define MAX_TENANTS 256

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_uint_fast64_t g_generation = 1;

static struct cache_slot {
    char tenant[65];
    sy_offers_catalog *cat;
    bool refreshing; /* a request is refreshing the volatile numbers */
} g_cache[MAX_TENANTS];
static int g_ncache;

void sy_api_offers_invalidate(const char *tenant)
{
    (void)tenant; /* one generation for all tenants: campaign writes are rare */
    atomic_fetch_add(&g_generation, 1);
}

static void release(sy_offers_catalog *cat)
{
    if (!cat)
        return;
    pthread_mutex_lock(&g_lock);
    bool last = --cat->refs == 0;
    pthread_mutex_unlock(&g_lock);
    if (last)
        sy_offers_catalog_free(cat);
}

static struct cache_slot *slot_of(const char *tenant)
{
    for (int i = 0; i < g_ncache; i++)
        if (!strcmp(g_cache[i].tenant, tenant))
            return &g_cache[i];
    if (g_ncache == MAX_TENANTS)
        return NULL;
    struct cache_slot *s = &g_cache[g_ncache++];
    snprintf(s->tenant, sizeof s->tenant, "%s", tenant);
    return s;
}

/* Puts a freshly loaded catalogue in the cache (when it is newer). */
static void install(const char *tenant, sy_offers_catalog *cat)
{
    sy_offers_catalog *old = NULL;
    pthread_mutex_lock(&g_lock);
    struct cache_slot *s = slot_of(tenant);
    if (s) {
        s->refreshing = false;
        if (!s->cat || s->cat->generation <= cat->generation) {
            old = s->cat;
            s->cat = cat;
            cat->refs++;
        }
    }
    pthread_mutex_unlock(&g_lock);
    release(old);
}

/* The tenant's catalogue for a request at now (a reference: release it).
 * Loaded again when a campaign changed (the generation), when the request's
 * time is before the one it was loaded for (test clocks), or a minute
 * after it was loaded (packages and listings defined meanwhile); otherwise
 * one request a second refreshes its volatile numbers in place (budgets
 * spent, stock: two short queries) while the others go on. */
static sy_offers_catalog *catalog_get(sy_req *r, int64_t now)
{
    const char *tenant = sy_req_principal(r)->tenant;
    uint64_t gen = atomic_load(&g_generation);
    int64_t real = sy_now_ms();
    sy_offers_catalog *cat = NULL;
    bool sync = false;
    pthread_mutex_lock(&g_lock);
    struct cache_slot *s = slot_of(tenant);
    if (s && s->cat && s->cat->generation == gen && now >= s->cat->loaded_for &&
        real - s->cat->loaded_real < CATALOG_RELOAD_MS) {
        cat = s->cat;
        cat->refs++;
        if (real - atomic_load(&cat->synced) >= CATALOG_SYNC_MS && !s->refreshing)
            sync = s->refreshing = true;
    }
    pthread_mutex_unlock(&g_lock);
    sy_app *app = sy_req_app(r);
    if (cat) {
        if (sync) {
            sy_conn *c = sy_store_acquire(app->store);
            if (sy_offers_catalog_refresh(c, cat) == SY_OK)
                atomic_store(&cat->synced, real);
            sy_store_release(app->store, c);
            pthread_mutex_lock(&g_lock);
            s->refreshing = false;
            pthread_mutex_unlock(&g_lock);
        }
        return cat;
    }
    sy_conn *c = sy_store_acquire(app->store);
    sy_offers_catalog *fresh = NULL;
    int rc = sy_offers_catalog_load(c, tenant, now, &fresh);
    if (rc != SY_OK)
        sy_api_store_error(r, c);
    sy_store_release(app->store, c);
    if (rc != SY_OK)
        return NULL;
    fresh->generation = gen;
    fresh->refs = 1; /* this request's */
    install(tenant, fresh);
    return fresh;
}

/* The customer's risk level (1..5, 0: none) and assessment day. */
static void profile_of(const sy_index *ix, uint32_t dense, sy_offers_profile *p)
{
    p->risk_level = 0;
    p->risk_assessed_day = SY_CAMPAIGN_UNSET;
    for (int k = 1; k <= 5; k++) {
        char v[3] = {'R', (char)('0' + k), '\0'};
        const roaring_bitmap_t *b = sy_index_value(ix, "risk_level", v);
        if (b && roaring_bitmap_contains(b, dense)) {
            p->risk_level = k;
            break;
        }
    }
    int64_t day;
    if (sy_index_numeric(ix, "risk_assessed_at", dense, &day))
        p->risk_assessed_day = day;
}

void sy_api_offers_get(sy_req *r)
{
    const char *no = sy_req_param(r, "customer_no");
    if (!sy_customer_no_valid(no)) {
        sy_reply_problem(r, 400, "validation", "customer_no",
                         "a customer number: 1-64 characters of A-Z a-z 0-9 _ . : -");
        return;
    }
    sy_app *app = sy_req_app(r);
    const char *tenant = sy_req_principal(r)->tenant;
    int64_t now = sy_req_now_ms(r);
    sy_attr_set *schema = sy_schemas_get(app->schemas, tenant);
    sy_index *ix = schema ? sy_indexes_get(app->indexes, tenant) : NULL;
    if (!ix) {
        sy_attr_set_release(schema);
        sy_reply_problem(r, 500, "internal", NULL, "the tenant's index is not available");
        return;
    }
    sy_offers_catalog *cat = catalog_get(r, now);
    if (!cat) {
        sy_attr_set_release(schema);
        return;
    }
    bool *in = sy_xcalloc(cat->naudiences ? cat->naudiences : 1, sizeof *in);
    bool *needed = sy_xcalloc(cat->naudiences ? cat->naudiences : 1, sizeof *needed);
    for (size_t i = 0; i < cat->n; i++) {
        const sy_offer *o = &cat->offers[i];
        if (o->kind == SY_OFFER_CAMPAIGN && (sy_campaign_effective(o->cp, now) != SY_CST_RUNNING ||
                                             !sy_campaign_open_at(o->cp, cat->zone, now)))
            continue; /* not running now: its audience does not matter */
        for (int k = 0; k < 2; k++)
            if (o->audience[k] != SY_OFFER_NO_AUDIENCE)
                needed[o->audience[k]] = true;
    }
    sy_offers_profile prof = {.customer_no = no};
    uint32_t dense;
    int status = 0;
    sy_index_rdlock(ix);
    if (!sy_index_dense(ix, no, &dense)) {
        status = 404;
    } else if (!roaring_bitmap_contains(sy_index_all(ix), dense)) {
        status = 409;
    } else {
        profile_of(ix, dense, &prof);
        roaring_bitmap_t *one = NULL;
        for (size_t a = 0; a < cat->naudiences; a++) {
            if (!needed[a])
                continue;
            const sy_offer_audience *au = &cat->audiences[a];
            const sy_seg_node *node = au->id ? sy_index_segment(ix, au->id) : au->ast;
            if (!node)
                continue; /* a segment gone or an expression that does not parse: no one */
            if (!one)
                one = roaring_bitmap_from_range(dense, (uint64_t)dense + 1, 1);
            sy_seg_error e;
            memset(&e, 0, sizeof e);
            roaring_bitmap_t *b = sy_seg_eval_index_among(ix, schema, now, node, one, &e);
            in[a] = b && roaring_bitmap_contains(b, dense);
            if (b)
                roaring_bitmap_free(b);
        }
        if (one)
            roaring_bitmap_free(one);
    }
    sy_index_unlock(ix);
    sy_attr_set_release(schema);
    if (status == 404) {
        sy_reply_problem(r, 404, "not-found", NULL, "no customer '%s'", no);
    } else if (status == 409) {
        sy_reply_problem(r, 409, "conflict", "customer_no",
                         "customer '%s' was merged into another; ask for that one", no);
    } else {
        sy_offers_state st;
        sy_conn *c = sy_store_acquire(app->store);
        /* One read transaction for all the queries: one snapshot, and the
         * WAL's read lock taken once instead of once per statement (a
         * system call each, contended between the threads). */
        int rc = sy_conn_exec(c, "BEGIN");
        if (rc == SY_OK) {
            rc = sy_offers_state_load(c, cat, no, now, in, &st);
            sy_conn_exec(c, "COMMIT");
        } else {
            memset(&st, 0, sizeof st);
        }
        if (rc != SY_OK) {
            sy_api_store_error(r, c);
        } else {
            char at[40];
            sy_format_time(now, at, sizeof at);
            sy_buf b = {0};
            sy_buf_printf(&b, "{\"customer_no\":\"%s\",\"at\":\"%s\",\"items\":", no, at);
            size_t n = sy_offers_render(cat, &st, in, &prof, now, &b);
            sy_buf_printf(&b, ",\"count\":%zu}", n);
            size_t len = b.len;
            sy_reply_raw(r, 200, "application/json", sy_buf_steal(&b), len);
        }
        sy_offers_state_free(cat, &st);
        sy_store_release(app->store, c);
    }
    free(in);
    free(needed);
    release(cat);
}

/* remember.c — values read from rows that never change (remember.h).
 *
 * A chained hash table under one mutex: lookups are a hash and a few string
 * compares, far cheaper than the read transaction they save, and entries are
 * only ever added (sy_remember_forget unlinks one, rarely, and keeps it). */
#include "remember.h"
#include "util.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct entry {
    sy_remembered val;
    const void *kind;
    char *tenant, *code;
    struct entry *next;
} entry;

#define BUCKETS 4096

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static entry *g_buckets[BUCKETS];
static entry *g_forgotten; /* unlinked by sy_remember_forget, never freed */
static size_t g_count;
static uint64_t g_epoch;

static unsigned bucket_of(const void *kind, const char *tenant, const char *code)
{
    uint64_t h = 1469598103934665603ULL ^ (uint64_t)(uintptr_t)kind; /* FNV-1a */
    for (const char *p = tenant; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    h = (h ^ 0xff) * 1099511628211ULL; /* tenant "ab" + code "c" is not "a" + "bc" */
    for (const char *p = code; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    return (unsigned)(h % BUCKETS);
}

static entry *find(unsigned b, const void *kind, const char *tenant, const char *code)
{
    for (entry *e = g_buckets[b]; e; e = e->next)
        if (e->kind == kind && !strcmp(e->tenant, tenant) && !strcmp(e->code, code))
            return e;
    return NULL;
}

const sy_remembered *sy_remember_get(const void *kind, const char *tenant, const char *code)
{
    unsigned b = bucket_of(kind, tenant, code);
    pthread_mutex_lock(&g_mu);
    entry *e = find(b, kind, tenant, code);
    pthread_mutex_unlock(&g_mu);
    return e ? &e->val : NULL;
}

uint64_t sy_remember_epoch(void)
{
    pthread_mutex_lock(&g_mu);
    uint64_t e = g_epoch;
    pthread_mutex_unlock(&g_mu);
    return e;
}

void sy_remember_forget(const void *kind, const char *tenant, const char *code)
{
    unsigned b = bucket_of(kind, tenant, code);
    pthread_mutex_lock(&g_mu);
    for (entry **pp = &g_buckets[b]; *pp; pp = &(*pp)->next) {
        entry *e = *pp;
        if (e->kind == kind && !strcmp(e->tenant, tenant) && !strcmp(e->code, code)) {
            *pp = e->next;
            e->next = g_forgotten; /* a pointer handed out stays valid */
            g_forgotten = e;
            g_count--;
            break;
        }
    }
    g_epoch++;
    pthread_mutex_unlock(&g_mu);
}

const sy_remembered *sy_remember_put(const void *kind, const char *tenant, const char *code,
                                     size_t n, const char *const *v, uint64_t epoch)
{
    unsigned b = bucket_of(kind, tenant, code);
    pthread_mutex_lock(&g_mu);
    if (epoch != g_epoch) { /* something was forgotten since the caller's read */
        pthread_mutex_unlock(&g_mu);
        return NULL;
    }
    entry *e = find(b, kind, tenant, code);
    if (!e && g_count < SY_REMEMBER_MAX) {
        e = sy_xcalloc(1, sizeof *e);
        e->kind = kind;
        e->tenant = sy_xstrdup(tenant);
        e->code = sy_xstrdup(code);
        e->val.n = n;
        e->val.v = sy_xcalloc(n ? n : 1, sizeof *e->val.v);
        for (size_t i = 0; i < n; i++)
            e->val.v[i] = v[i] ? sy_xstrdup(v[i]) : NULL;
        e->next = g_buckets[b];
        g_buckets[b] = e;
        g_count++;
    }
    pthread_mutex_unlock(&g_mu);
    return e ? &e->val : NULL;
}

size_t sy_remember_count(void)
{
    pthread_mutex_lock(&g_mu);
    size_t n = g_count;
    pthread_mutex_unlock(&g_mu);
    return n;
}

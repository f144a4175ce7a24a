/* tenant.c — tenant rows and the validation of their fields. */
#include "tenant.h"
#include "attr.h"
#include "util.h"
#include "validate.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

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

bool sy_tenant_name_valid(const char *name)
{
    json_t *j = json_string(name); /* NULL when not valid UTF-8 */
    bool ok = j != NULL;
    json_decref(j);
    size_t chars = ok ? sy_utf8_len(name) : 0;
    if (chars < 1 || chars > SY_TENANT_NAME_MAX)
        return false;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return false;
    return true;
}

bool sy_timezone_valid(const char *tz)
{
    /* Names are segments of [A-Za-z0-9_+-] joined by single '/' ("UTC",
     * "Asia/Shanghai", "America/Argentina/Buenos_Aires"); the file they
     * name in the tz database must be a compiled zone ("TZif").  The
     * database also holds files that are not zones (leapseconds, tzdata.zi)
     * and machine-specific aliases (localtime, posixrules). */
    size_t n = strlen(tz);
    if (n < 1 || n > 64 || tz[0] == '/' || tz[n - 1] == '/' || strstr(tz, "//"))
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = tz[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '/' || c == '_' || c == '-' || c == '+'))
            return false;
    }
    if (!strcmp(tz, "localtime") || !strcmp(tz, "posixrules") || !strcmp(tz, "Factory"))
        return false;
    char path[128];
    snprintf(path, sizeof path, "/usr/share/zoneinfo/%s", tz);
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    char magic[4] = {0};
    size_t got = fread(magic, 1, sizeof magic, f);
    fclose(f);
    return got == 4 && memcmp(magic, "TZif", 4) == 0;
}

int64_t sy_tz_offset_ms(const char *zone, int64_t at_ms)
{
    /* glibc resolves zones only through the process's TZ; switch it under a
     * lock and restore it.  Called when an index is built, not per request. */
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    if (!sy_timezone_valid(zone))
        return 0;
    pthread_mutex_lock(&mu);
    const char *old = getenv("TZ");
    char *saved = old ? sy_xstrdup(old) : NULL;
    setenv("TZ", zone, 1);
    tzset();
    time_t t = (time_t)(at_ms / 1000);
    struct tm tm;
    localtime_r(&t, &tm);
    int64_t off = (int64_t)tm.tm_gmtoff * 1000;
    if (saved)
        setenv("TZ", saved, 1);
    else
        unsetenv("TZ");
    tzset();
    free(saved);
    pthread_mutex_unlock(&mu);
    return off;
}

int sy_tenant_create(sy_conn *c, const char *id, const char *name, const char *tz, int64_t now_ms)
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
    int rc = sy_stmt_exec(st);
    /* Every new tenant starts with the bank's attribute template. */
    return rc == SY_OK ? sy_attr_install_template(c, id, now_ms) : rc;
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

#define REGISTRY_TTL_MS 1000
#define REGISTRY_SLOTS 256 /* power of two */

typedef struct slot {
    sy_tenant_info info;
    int64_t loaded_ms; /* 0 = empty */
} slot;

struct sy_tenants {
    sy_store *store;
    pthread_rwlock_t lock;
    slot slots[REGISTRY_SLOTS];
    uint64_t epoch; /* bumped by every forget (under lock) */
};

sy_tenants *sy_tenants_new(sy_store *s)
{
    sy_tenants *t = sy_xcalloc(1, sizeof *t);
    t->store = s;
    pthread_rwlock_init(&t->lock, NULL);
    return t;
}

void sy_tenants_free(sy_tenants *t)
{
    if (!t)
        return;
    pthread_rwlock_destroy(&t->lock);
    free(t);
}

static size_t slot_of(const char *id)
{
    size_t h = 5381;
    for (; *id; id++)
        h = h * 33 + (unsigned char)*id;
    return h & (REGISTRY_SLOTS - 1);
}

static int load_info(sy_store *s, const char *id, sy_tenant_info *out)
{
    static const char sql[] =
        "SELECT id, name, timezone, created_at, updated_at FROM tenants WHERE id = $1";
    sy_conn *c = sy_store_acquire(s);
    sy_stmt *st = sy_conn_prepare(c, sql);
    int rc = SY_ERR;
    if (st) {
        sy_stmt_bind_text(st, 1, id);
        rc = sy_stmt_step(st);
        if (rc == SY_ROW) {
            snprintf(out->id, sizeof out->id, "%s", sy_stmt_text(st, 0));
            snprintf(out->name, sizeof out->name, "%s", sy_stmt_text(st, 1));
            snprintf(out->timezone, sizeof out->timezone, "%s", sy_stmt_text(st, 2));
            out->created_at = sy_stmt_i64(st, 3);
            out->updated_at = sy_stmt_i64(st, 4);
            json_t *j = sy_tenant_info_json(out);
            size_t n = json_dumpb(j, out->json, sizeof out->json, JSON_COMPACT);
            json_decref(j);
            /* Drop the closing brace; a record too big to cache is refused
             * with a store error rather than truncated. */
            out->json_len = n > 0 && n <= sizeof out->json ? n - 1 : 0;
            rc = out->json_len ? SY_OK : SY_ERR;
        }
        sy_stmt_reset(st);
    }
    sy_store_release(s, c);
    return rc;
}

int sy_tenants_get(sy_tenants *t, const char *id, sy_tenant_info *out)
{
    slot *sl = &t->slots[slot_of(id)];
    int64_t now = sy_now_ms();
    pthread_rwlock_rdlock(&t->lock);
    bool hit = sl->loaded_ms && now - sl->loaded_ms < REGISTRY_TTL_MS && !strcmp(sl->info.id, id);
    if (hit)
        *out = sl->info;
    uint64_t epoch = t->epoch;
    pthread_rwlock_unlock(&t->lock);
    if (hit)
        return SY_OK;
    int rc = load_info(t->store, id, out);
    if (rc == SY_OK) {
        /* not kept when a forget came since the read: it may be older
         * than the change that forgot it */
        pthread_rwlock_wrlock(&t->lock);
        if (t->epoch == epoch) {
            sl->info = *out;
            sl->loaded_ms = now;
        }
        pthread_rwlock_unlock(&t->lock);
    }
    return rc;
}

void sy_tenants_forget(sy_tenants *t, const char *id)
{
    slot *sl = &t->slots[slot_of(id)];
    pthread_rwlock_wrlock(&t->lock);
    if (!strcmp(sl->info.id, id))
        sl->loaded_ms = 0;
    t->epoch++;
    pthread_rwlock_unlock(&t->lock);
}

json_t *sy_tenant_info_json(const sy_tenant_info *ti)
{
    return json_pack("{s:s, s:s, s:s, s:o, s:o}", "id", ti->id, "name", ti->name, "timezone",
                     ti->timezone, "created_at", sy_json_time(ti->created_at), "updated_at",
                     sy_json_time(ti->updated_at));
}

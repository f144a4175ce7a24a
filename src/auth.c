/* auth.c — API keys.
 *
 * The verification cache is an open-addressing table keyed by the public
 * prefix, under a reader-writer lock.  A hit younger than one second is
 * answered from memory: the hash of the presented token is computed and
 * compared in constant time with the stored one.  Otherwise the row is read
 * from the store (so keys created or revoked by another process are seen). */
#include "auth.h"
#include "util.h"

#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define CACHE_TTL_MS 1000
#define CACHE_SLOTS 4096 /* power of two; a tenant rarely has more keys */

static const char *const k_role_names[] = {"admin", "app", "analyst", "compliance"};

const char *sy_role_name(sy_role r)
{
    for (int i = 0; i < 4; i++)
        if (r == (sy_role)(1 << i))
            return k_role_names[i];
    return "?";
}

bool sy_role_parse(const char *name, sy_role *out)
{
    for (int i = 0; i < 4; i++)
        if (!strcmp(name, k_role_names[i])) {
            *out = (sy_role)(1 << i);
            return true;
        }
    return false;
}

void sy_key_hash(const unsigned char hash_key[32], const char *token, size_t len, char out[65])
{
    unsigned char h[32];
    crypto_generichash(h, sizeof h, (const unsigned char *)token, len, hash_key, 32);
    sy_hex(h, sizeof h, out);
}

void sy_key_generate(const unsigned char hash_key[32], sy_new_key *k)
{
    unsigned char pfx[SY_KEY_PREFIX_LEN / 2], secret[32];
    randombytes_buf(pfx, sizeof pfx);
    randombytes_buf(secret, sizeof secret);
    sy_hex(pfx, sizeof pfx, k->prefix);
    char b64[64];
    sodium_bin2base64(b64, sizeof b64, secret, sizeof secret,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    snprintf(k->token, sizeof k->token, "sy_%s_%s", k->prefix, b64);
    snprintf(k->id, sizeof k->id, "key_%s", k->prefix);
    sy_key_hash(hash_key, k->token, strlen(k->token), k->hash);
    sodium_memzero(secret, sizeof secret);
}

#define SECRET_B64_LEN 43

bool sy_key_parse(const char *t, size_t len, char prefix[SY_KEY_PREFIX_LEN + 1])
{
    if (len != 3 + SY_KEY_PREFIX_LEN + 1 + SECRET_B64_LEN || memcmp(t, "sy_", 3) != 0 ||
        t[3 + SY_KEY_PREFIX_LEN] != '_')
        return false;
    for (size_t i = 0; i < SY_KEY_PREFIX_LEN; i++) {
        char c = t[3 + i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    for (size_t i = 4 + SY_KEY_PREFIX_LEN; i < len; i++) {
        char c = t[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              c == '-' || c == '_'))
            return false;
    }
    memcpy(prefix, t + 3, SY_KEY_PREFIX_LEN);
    prefix[SY_KEY_PREFIX_LEN] = '\0';
    return true;
}

int sy_key_insert(sy_conn *c, const char *tenant, sy_role role, const char *name,
                  const char *created_by, const sy_new_key *k, int64_t now_ms)
{
    static const char sql[] =
        "INSERT INTO api_keys (id, tenant_id, prefix, hash, role, name, created_at, created_by)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, k->id);
    sy_stmt_bind_text(st, 2, tenant);
    sy_stmt_bind_text(st, 3, k->prefix);
    sy_stmt_bind_text(st, 4, k->hash);
    sy_stmt_bind_text(st, 5, sy_role_name(role));
    sy_stmt_bind_text(st, 6, name ? name : "");
    sy_stmt_bind_i64(st, 7, now_ms);
    sy_stmt_bind_text(st, 8, created_by);
    return sy_stmt_exec(st);
}

typedef struct entry {
    char prefix[SY_KEY_PREFIX_LEN + 1]; /* "" = empty slot */
    char hash[65];
    sy_principal who;
    bool live;          /* false: revoked or unknown */
    int64_t checked_ms; /* when the row was last read */
} entry;

struct sy_keys {
    sy_store *store;
    unsigned char hash_key[32];
    pthread_rwlock_t lock;
    entry *slots;
    /* bumped by every forget (under lock): a row read before a revoke
     * committed is not cached after its forget */
    uint64_t epoch;
};

sy_keys *sy_keys_new(sy_store *s, const unsigned char hash_key[32])
{
    sy_keys *k = sy_xcalloc(1, sizeof *k);
    k->store = s;
    memcpy(k->hash_key, hash_key, 32);
    pthread_rwlock_init(&k->lock, NULL);
    k->slots = sy_xcalloc(CACHE_SLOTS, sizeof *k->slots);
    return k;
}

void sy_keys_free(sy_keys *k)
{
    if (!k)
        return;
    sodium_memzero(k->hash_key, sizeof k->hash_key);
    pthread_rwlock_destroy(&k->lock);
    free(k->slots);
    free(k);
}

const unsigned char *sy_keys_hash_key(sy_keys *k)
{
    return k->hash_key;
}

void (*sy_keys_test_after_load)(void *arg);
void *sy_keys_test_after_load_arg;

static size_t slot_of(const char *prefix)
{
    /* The prefix is random hex: its first digits are already uniform. */
    size_t h = 0;
    for (int i = 0; i < 6; i++)
        h = h * 16 + (size_t)(prefix[i] <= '9' ? prefix[i] - '0' : prefix[i] - 'a' + 10);
    return h & (CACHE_SLOTS - 1);
}

/* Reads the key row; fills e.  Returns false on a store error. */
static bool load_entry(sy_keys *k, const char *prefix, entry *e)
{
    static const char sql[] =
        "SELECT id, tenant_id, hash, role, revoked_at FROM api_keys WHERE prefix = $1";
    memset(e, 0, sizeof *e);
    memcpy(e->prefix, prefix, SY_KEY_PREFIX_LEN + 1);
    e->checked_ms = sy_now_ms();
    sy_conn *c = sy_store_acquire(k->store);
    sy_stmt *st = sy_conn_prepare(c, sql);
    bool ok = st != NULL;
    if (st) {
        sy_stmt_bind_text(st, 1, prefix);
        int rc = sy_stmt_step(st);
        if (rc == SY_ROW) {
            snprintf(e->who.key_id, sizeof e->who.key_id, "%s", sy_stmt_text(st, 0));
            snprintf(e->who.tenant, sizeof e->who.tenant, "%s", sy_stmt_text(st, 1));
            snprintf(e->hash, sizeof e->hash, "%s", sy_stmt_text(st, 2));
            e->live = sy_role_parse(sy_stmt_text(st, 3), &e->who.role) && sy_stmt_is_null(st, 4);
        } else if (rc != SY_DONE) {
            ok = false;
        }
        sy_stmt_reset(st);
    }
    sy_store_release(k->store, c);
    return ok;
}

bool sy_keys_verify(sy_keys *k, const char *token, size_t len, sy_principal *out)
{
    char prefix[SY_KEY_PREFIX_LEN + 1];
    if (!sy_key_parse(token, len, prefix))
        return false;
    char presented[65];
    sy_key_hash(k->hash_key, token, len, presented);
    size_t slot = slot_of(prefix);
    int64_t now = sy_now_ms();
    entry e;
    bool hit = false;
    pthread_rwlock_rdlock(&k->lock);
    entry *c = &k->slots[slot];
    if (!strcmp(c->prefix, prefix) && now - c->checked_ms < CACHE_TTL_MS) {
        e = *c;
        hit = true;
    }
    uint64_t epoch = k->epoch;
    pthread_rwlock_unlock(&k->lock);
    if (!hit) {
        if (!load_entry(k, prefix, &e))
            return false;
        if (sy_keys_test_after_load)
            sy_keys_test_after_load(sy_keys_test_after_load_arg);
        if (e.live) {
            /* Only known keys take a slot, so random prefixes cannot evict.
             * A forget since the read (a revoke committed meanwhile) may
             * have been of this very row: then it is not kept. */
            pthread_rwlock_wrlock(&k->lock);
            if (k->epoch == epoch)
                k->slots[slot] = e;
            pthread_rwlock_unlock(&k->lock);
        }
    }
    if (!e.live || sodium_memcmp(e.hash, presented, 64) != 0)
        return false;
    *out = e.who;
    return true;
}

void sy_keys_forget(sy_keys *k, const char *prefix)
{
    size_t slot = slot_of(prefix);
    pthread_rwlock_wrlock(&k->lock);
    if (!strcmp(k->slots[slot].prefix, prefix))
        memset(&k->slots[slot], 0, sizeof k->slots[slot]);
    k->epoch++;
    pthread_rwlock_unlock(&k->lock);
}

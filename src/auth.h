/* auth.h — API keys: generation, keyed hashing, verification and roles.
 *
 * A key looks like  sy_<prefix>_<secret>  where prefix is 12 hex digits
 * (public, stored, used to find the row) and secret is 32 random bytes in
 * unpadded base64url.  Only BLAKE2b-256(hash_key, whole key) is stored.
 * hash_key is derived from the installation's master secret (secrets.h), so
 * a copied database alone does not let anyone test guessed keys.
 *
 * Verification is served from an in-memory cache; an entry older than one
 * second is re-read from the store, so a key revoked by another process
 * (the CLI, another server) stops working within a second. */
#ifndef SY_AUTH_H
#define SY_AUTH_H

#include "store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum sy_role {
    SY_ROLE_ADMIN = 1 << 0,      /* everything within the tenant */
    SY_ROLE_APP = 1 << 1,        /* the bank's customer-facing back ends */
    SY_ROLE_ANALYST = 1 << 2,    /* read-only reports */
    SY_ROLE_COMPLIANCE = 1 << 3, /* audit, compliance review */
} sy_role;
#define SY_ROLES_ALL (SY_ROLE_ADMIN | SY_ROLE_APP | SY_ROLE_ANALYST | SY_ROLE_COMPLIANCE)

#define SY_TENANT_ID_MAX 32
#define SY_KEY_PREFIX_LEN 12
#define SY_KEY_ID_LEN (4 + SY_KEY_PREFIX_LEN) /* "key_" + prefix */

/* Who is calling: resolved from the Authorization header. */
typedef struct sy_principal {
    char tenant[SY_TENANT_ID_MAX + 1];
    char key_id[SY_KEY_ID_LEN + 1];
    sy_role role;
} sy_principal;

const char *sy_role_name(sy_role r);
/* Returns false for an unknown name. */
bool sy_role_parse(const char *name, sy_role *out);

/* A freshly generated key.  secret is the whole token, shown once. */
typedef struct sy_new_key {
    char id[SY_KEY_ID_LEN + 1];
    char prefix[SY_KEY_PREFIX_LEN + 1];
    char token[80];
    char hash[65];
} sy_new_key;

void sy_key_generate(const unsigned char hash_key[32], sy_new_key *out);
/* hash of token under hash_key, as 64 hex digits. */
void sy_key_hash(const unsigned char hash_key[32], const char *token, size_t len, char out[65]);
/* Splits a token into its prefix; false if it is not shaped like a key. */
bool sy_key_parse(const char *token, size_t len, char prefix[SY_KEY_PREFIX_LEN + 1]);

/* Inserts the key row (inside the caller's transaction). */
int sy_key_insert(sy_conn *c, const char *tenant, sy_role role, const char *name,
                  const char *created_by, const sy_new_key *k, int64_t now_ms);

typedef struct sy_keys sy_keys;
sy_keys *sy_keys_new(sy_store *s, const unsigned char hash_key[32]);
void sy_keys_free(sy_keys *k);
/* Checks a bearer token.  Returns true and fills *out when it is a live key. */
bool sy_keys_verify(sy_keys *k, const char *token, size_t len, sy_principal *out);
/* Drops a cached key (after a revoke committed). */
void sy_keys_forget(sy_keys *k, const char *prefix);
/* For tests only: called in sy_keys_verify between reading a key's row and
 * caching it (NULL in the server). */
extern void (*sy_keys_test_after_load)(void *arg);
extern void *sy_keys_test_after_load_arg;
const unsigned char *sy_keys_hash_key(sy_keys *k);

#endif

/* test_auth.c — API keys: the token format, parsing, keyed hashing, roles,
 * and verification against a real store (live, wrong secret, unknown,
 * revoked). */
#include "testutil.h"
#include "unit/store_fixture.h"

#include "auth.h"
#include "store.h"
#include "tenant.h"
#include "util.h"

#include <sodium.h>
#include <time.h>

#define TOKEN_LEN (3 + SY_KEY_PREFIX_LEN + 1 + 43)

typedef struct fixture {
    char *dir;
    sy_store *store;
    unsigned char hash_key[32];
    sy_keys *keys;
} fixture;

/* One migrated store for the whole group (keys are random, so tests do not
 * collide); each test gets a fresh hash key and verification cache. */
static int group_setup(void **state)
{
    sy_log_set_level(SY_LOG_WARN);
    fixture *f = calloc(1, sizeof *f);
    f->dir = tu_tempdir();
    f->store = tu_store_open(f->dir, true);
    sy_conn *c = sy_store_write_conn(f->store);
    assert_int_equal(sy_tenant_create(c, "acme", "Acme Bank", NULL, sy_now_ms()), SY_OK);
    assert_int_equal(sy_tenant_create(c, "globex", "Globex", NULL, sy_now_ms()), SY_OK);
    *state = f;
    return 0;
}

static int group_teardown(void **state)
{
    fixture *f = *state;
    sy_store_close(f->store);
    tu_rmtree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static int setup(void **state)
{
    fixture *f = *state;
    randombytes_buf(f->hash_key, sizeof f->hash_key);
    f->keys = sy_keys_new(f->store, f->hash_key);
    assert_non_null(f->keys);
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    sy_keys_free(f->keys);
    f->keys = NULL;
    return 0;
}

static bool is_hex_lower(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

static bool is_b64url(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              c == '-' || c == '_'))
            return false;
    }
    return true;
}

/* Inserts a key row in its own transaction. */
static void insert_key(fixture *f, const char *tenant, sy_role role, const sy_new_key *k)
{
    sy_conn *c = sy_store_write_conn(f->store);
    assert_int_equal(sy_conn_begin(c), SY_OK);
    assert_int_equal(sy_key_insert(c, tenant, role, "test key", "key_creator", k, sy_now_ms()),
                     SY_OK);
    assert_int_equal(sy_conn_commit(c), SY_OK);
}

static void revoke_row(fixture *f, const char *key_id)
{
    static const char sql[] = "UPDATE api_keys SET revoked_at = $2 WHERE id = $1";
    sy_conn *c = sy_store_write_conn(f->store);
    sy_stmt *st = sy_conn_prepare(c, sql);
    assert_non_null(st);
    sy_stmt_bind_text(st, 1, key_id);
    sy_stmt_bind_i64(st, 2, sy_now_ms());
    assert_int_equal(sy_stmt_exec(st), SY_OK);
    assert_int_equal(sy_conn_changes(c), 1);
}

static bool verify(fixture *f, const char *token, sy_principal *who)
{
    memset(who, 0, sizeof *who);
    return sy_keys_verify(f->keys, token, strlen(token), who);
}

/* ---- format ---- */

static void test_generate_format(void **state)
{
    fixture *f = *state;
    sy_new_key a, b;
    sy_key_generate(f->hash_key, &a);
    sy_key_generate(f->hash_key, &b);
    for (int i = 0; i < 2; i++) {
        const sy_new_key *k = i ? &b : &a;
        size_t len = strlen(k->token);
        assert_int_equal(len, TOKEN_LEN);
        assert_memory_equal(k->token, "sy_", 3);
        assert_true(is_hex_lower(k->token + 3, SY_KEY_PREFIX_LEN));
        assert_int_equal(k->token[3 + SY_KEY_PREFIX_LEN], '_');
        assert_true(is_b64url(k->token + 4 + SY_KEY_PREFIX_LEN, 43));
        /* prefix and id are derived from the token */
        assert_int_equal(strlen(k->prefix), SY_KEY_PREFIX_LEN);
        assert_memory_equal(k->token + 3, k->prefix, SY_KEY_PREFIX_LEN);
        char want_id[SY_KEY_ID_LEN + 1];
        snprintf(want_id, sizeof want_id, "key_%s", k->prefix);
        assert_string_equal(k->id, want_id);
        /* the stored hash is the keyed hash of the whole token */
        assert_int_equal(strlen(k->hash), 64);
        assert_true(is_hex_lower(k->hash, 64));
        char h[65];
        sy_key_hash(f->hash_key, k->token, len, h);
        assert_string_equal(k->hash, h);
    }
    /* Random: two keys share neither prefix nor secret. */
    assert_string_not_equal(a.prefix, b.prefix);
    assert_memory_not_equal(a.token + 16, b.token + 16, 43);
    assert_string_not_equal(a.hash, b.hash);
}

static void test_parse_accepts_generated(void **state)
{
    fixture *f = *state;
    for (int i = 0; i < 50; i++) {
        sy_new_key k;
        sy_key_generate(f->hash_key, &k);
        char prefix[SY_KEY_PREFIX_LEN + 1];
        memset(prefix, 'X', sizeof prefix);
        assert_true(sy_key_parse(k.token, strlen(k.token), prefix));
        assert_string_equal(prefix, k.prefix);
    }
    /* The length argument is what counts, not a terminator. */
    char buf[160];
    sy_new_key k;
    sy_key_generate(f->hash_key, &k);
    snprintf(buf, sizeof buf, "%sJUNK", k.token);
    char prefix[SY_KEY_PREFIX_LEN + 1];
    assert_true(sy_key_parse(buf, TOKEN_LEN, prefix));
    assert_string_equal(prefix, k.prefix);
    assert_false(sy_key_parse(buf, strlen(buf), prefix));
}

static void expect_rejected(const char *token, const char *why)
{
    char prefix[SY_KEY_PREFIX_LEN + 1];
    if (sy_key_parse(token, strlen(token), prefix))
        fail_msg("sy_key_parse accepted %s: \"%s\"", why, token);
}

static void test_parse_rejects_malformed(void **state)
{
    fixture *f = *state;
    sy_new_key k;
    sy_key_generate(f->hash_key, &k);
    char t[160];

    expect_rejected("", "an empty token");
    expect_rejected("sy_", "a bare scheme");

    snprintf(t, sizeof t, "%s", k.token);
    t[TOKEN_LEN - 1] = '\0';
    expect_rejected(t, "a token one character short");

    snprintf(t, sizeof t, "%sA", k.token);
    expect_rejected(t, "a token one character long");

    snprintf(t, sizeof t, "%s", k.token);
    t[0] = 'x';
    expect_rejected(t, "a wrong scheme");

    snprintf(t, sizeof t, "%s", k.token);
    t[2] = '-';
    expect_rejected(t, "a missing first underscore");

    snprintf(t, sizeof t, "%s", k.token);
    t[3 + SY_KEY_PREFIX_LEN] = 'a';
    expect_rejected(t, "a missing second underscore");

    snprintf(t, sizeof t, "%s", k.token);
    t[3 + SY_KEY_PREFIX_LEN] = '-';
    expect_rejected(t, "a dash instead of the second underscore");

    /* the prefix is lowercase hex only */
    static const char bad_prefix_chars[] = {'A', 'F', 'g', 'z', '_', '-', ' ', '.'};
    for (size_t i = 0; i < sizeof bad_prefix_chars; i++) {
        snprintf(t, sizeof t, "%s", k.token);
        t[3 + 5] = bad_prefix_chars[i];
        expect_rejected(t, "a non-hex prefix character");
    }

    /* the secret is base64url without padding */
    static const char bad_secret_chars[] = {'+', '/', '=', '.', ' ', '~', '\x80', '\n'};
    for (size_t i = 0; i < sizeof bad_secret_chars; i++) {
        snprintf(t, sizeof t, "%s", k.token);
        t[TOKEN_LEN - 1 - (i % 40)] = bad_secret_chars[i];
        expect_rejected(t, "a non-base64url secret character");
    }

    /* a prefix of the wrong length, with the total length kept */
    snprintf(t, sizeof t, "sy_%.11s_%sA", k.prefix, k.token + 16);
    assert_int_equal(strlen(t), TOKEN_LEN);
    expect_rejected(t, "an 11-digit prefix");
    snprintf(t, sizeof t, "sy_%s0_%.42s", k.prefix, k.token + 16);
    assert_int_equal(strlen(t), TOKEN_LEN);
    expect_rejected(t, "a 13-digit prefix");
}

/* ---- hashing ---- */

static void test_hash_is_keyed_blake2b(void **state)
{
    (void)state;
    unsigned char key[32], key2[32];
    for (int i = 0; i < 32; i++) {
        key[i] = (unsigned char)i;
        key2[i] = (unsigned char)i;
    }
    key2[31] ^= 1;
    char h[65], h2[65], h3[65];
    /* Known answer: BLAKE2b-256 of "abc" keyed with bytes 0..31. */
    sy_key_hash(key, "abc", 3, h);
    assert_string_equal(h, "d63a32d3e44738d7907f964316c241adaba0abfeabc32349677578a15a203f7f");
    /* Only len bytes are hashed. */
    sy_key_hash(key, "abcdef", 3, h2);
    assert_string_equal(h, h2);
    /* Another hash key gives another hash. */
    sy_key_hash(key2, "abc", 3, h3);
    assert_string_not_equal(h, h3);
    /* Another token gives another hash. */
    sy_key_hash(key, "abd", 3, h3);
    assert_string_not_equal(h, h3);
    /* Deterministic. */
    sy_key_hash(key, "abc", 3, h2);
    assert_string_equal(h, h2);
}

/* ---- roles ---- */

static void test_role_names_round_trip(void **state)
{
    (void)state;
    static const struct {
        sy_role role;
        const char *name;
    } roles[] = {
        {SY_ROLE_ADMIN, "admin"},
        {SY_ROLE_APP, "app"},
        {SY_ROLE_ANALYST, "analyst"},
        {SY_ROLE_COMPLIANCE, "compliance"},
    };
    unsigned seen = 0;
    for (size_t i = 0; i < SY_ARRAY_LEN(roles); i++) {
        assert_string_equal(sy_role_name(roles[i].role), roles[i].name);
        sy_role r = 0;
        assert_true(sy_role_parse(roles[i].name, &r));
        assert_int_equal(r, roles[i].role);
        assert_string_equal(sy_role_name(r), roles[i].name);
        seen |= (unsigned)r;
    }
    assert_int_equal(seen, SY_ROLES_ALL);

    sy_role r = SY_ROLE_APP;
    assert_false(sy_role_parse("root", &r));
    assert_false(sy_role_parse("", &r));
    assert_false(sy_role_parse("Admin", &r));
    assert_false(sy_role_parse("admin ", &r));
    assert_false(sy_role_parse("apps", &r));
    assert_int_equal(r, SY_ROLE_APP); /* untouched on failure */
    /* Not a single role: no name. */
    assert_string_not_equal(sy_role_name(0), "admin");
    assert_string_not_equal(sy_role_name(SY_ROLE_ADMIN | SY_ROLE_APP), "admin");
    assert_string_not_equal(sy_role_name(SY_ROLE_ADMIN | SY_ROLE_APP), "app");
}

/* ---- verification against the store ---- */

static void test_verify_live_key(void **state)
{
    fixture *f = *state;
    sy_new_key app, admin;
    sy_key_generate(f->hash_key, &app);
    sy_key_generate(f->hash_key, &admin);
    insert_key(f, "acme", SY_ROLE_APP, &app);
    insert_key(f, "globex", SY_ROLE_COMPLIANCE, &admin);

    sy_principal who;
    assert_true(verify(f, app.token, &who));
    assert_string_equal(who.tenant, "acme");
    assert_string_equal(who.key_id, app.id);
    assert_int_equal(who.role, SY_ROLE_APP);

    /* Second time (served from the cache): the same answer. */
    assert_true(verify(f, app.token, &who));
    assert_string_equal(who.tenant, "acme");
    assert_string_equal(who.key_id, app.id);
    assert_int_equal(who.role, SY_ROLE_APP);

    assert_true(verify(f, admin.token, &who));
    assert_string_equal(who.tenant, "globex");
    assert_string_equal(who.key_id, admin.id);
    assert_int_equal(who.role, SY_ROLE_COMPLIANCE);

    /* The row holds the hash, never the token. */
    static const char sql[] = "SELECT hash, prefix, role, tenant_id FROM api_keys WHERE id = $1";
    sy_conn *c = sy_store_acquire(f->store);
    sy_stmt *st = sy_conn_prepare(c, sql);
    sy_stmt_bind_text(st, 1, app.id);
    assert_int_equal(sy_stmt_step(st), SY_ROW);
    assert_string_equal(sy_stmt_text(st, 0), app.hash);
    assert_string_equal(sy_stmt_text(st, 1), app.prefix);
    assert_string_equal(sy_stmt_text(st, 2), "app");
    assert_string_equal(sy_stmt_text(st, 3), "acme");
    sy_stmt_reset(st);
    sy_store_release(f->store, c);
    assert_non_null(sy_keys_hash_key(f->keys));
    assert_memory_equal(sy_keys_hash_key(f->keys), f->hash_key, 32);
}

static void test_verify_rejects_wrong_secret(void **state)
{
    fixture *f = *state;
    sy_new_key k;
    sy_key_generate(f->hash_key, &k);
    insert_key(f, "acme", SY_ROLE_ADMIN, &k);

    char t[160];
    snprintf(t, sizeof t, "%s", k.token);
    t[TOKEN_LEN - 5] = t[TOKEN_LEN - 5] == 'A' ? 'B' : 'A';
    sy_principal who;
    /* Before and after the right key has been cached. */
    assert_false(verify(f, t, &who));
    assert_true(verify(f, k.token, &who));
    assert_false(verify(f, t, &who));
    /* The right key still works after the wrong attempts. */
    assert_true(verify(f, k.token, &who));
    assert_string_equal(who.key_id, k.id);

    /* A verifier with another hash key rejects the genuine token. */
    unsigned char other[32];
    memcpy(other, f->hash_key, 32);
    other[0] ^= 0xff;
    sy_keys *ok = sy_keys_new(f->store, other);
    assert_false(sy_keys_verify(ok, k.token, strlen(k.token), &who));
    sy_keys_free(ok);

    /* Length is what is verified: the token with trailing junk is refused. */
    char longer[160];
    snprintf(longer, sizeof longer, "%sx", k.token);
    assert_false(verify(f, longer, &who));
}

static void test_verify_rejects_unknown_and_malformed(void **state)
{
    fixture *f = *state;
    sy_new_key stored, never;
    sy_key_generate(f->hash_key, &stored);
    sy_key_generate(f->hash_key, &never);
    insert_key(f, "acme", SY_ROLE_APP, &stored);
    sy_principal who;
    assert_false(verify(f, never.token, &who));
    assert_false(verify(f, never.token, &who));
    assert_false(verify(f, "", &who));
    assert_false(verify(f, "Bearer whatever", &who));
    assert_false(verify(f, stored.prefix, &who));
    assert_true(verify(f, stored.token, &who));
}

static void test_verify_fails_after_revoke_and_forget(void **state)
{
    fixture *f = *state;
    sy_new_key k, other;
    sy_key_generate(f->hash_key, &k);
    sy_key_generate(f->hash_key, &other);
    insert_key(f, "acme", SY_ROLE_ADMIN, &k);
    insert_key(f, "acme", SY_ROLE_APP, &other);
    sy_principal who;
    assert_true(verify(f, k.token, &who));
    assert_true(verify(f, other.token, &who));

    revoke_row(f, k.id);
    sy_keys_forget(f->keys, k.prefix);
    assert_false(verify(f, k.token, &who));
    assert_false(verify(f, k.token, &who));
    /* Only that key is affected. */
    assert_true(verify(f, other.token, &who));
    assert_string_equal(who.key_id, other.id);
    /* Forgetting an unknown prefix is harmless. */
    sy_keys_forget(f->keys, "0123456789ab");
    assert_true(verify(f, other.token, &who));
}

/* A revoke that commits, and forgets the key, while a verify is between
 * reading the row and caching it: that verify may still pass (it read
 * first), but the row it read is not cached, so the next one fails. */
typedef struct revoke_midway {
    fixture *f;
    const sy_new_key *k;
} revoke_midway;

static void revoke_now(void *arg)
{
    revoke_midway *m = arg;
    sy_keys_test_after_load = NULL; /* once */
    revoke_row(m->f, m->k->id);
    sy_keys_forget(m->f->keys, m->k->prefix);
}

static void test_revoke_during_a_verify_is_not_undone(void **state)
{
    fixture *f = *state;
    sy_new_key k;
    sy_key_generate(f->hash_key, &k);
    insert_key(f, "acme", SY_ROLE_ADMIN, &k);
    revoke_midway m = {f, &k};
    sy_keys_test_after_load = revoke_now;
    sy_keys_test_after_load_arg = &m;
    sy_principal who;
    assert_true(verify(f, k.token, &who)); /* its read came before the revoke */
    assert_null(sy_keys_test_after_load);
    assert_false(verify(f, k.token, &who));
}

static void test_revoke_elsewhere_seen_within_a_second(void **state)
{
    fixture *f = *state;
    sy_new_key k;
    sy_key_generate(f->hash_key, &k);
    insert_key(f, "acme", SY_ROLE_ANALYST, &k);
    sy_principal who;
    assert_true(verify(f, k.token, &who));
    assert_int_equal(who.role, SY_ROLE_ANALYST);
    /* Revoked by "another process": no forget. */
    revoke_row(f, k.id);
    struct timespec ts = {1, 100 * 1000 * 1000};
    nanosleep(&ts, NULL);
    assert_false(verify(f, k.token, &who));
}

static void test_insert_constraints(void **state)
{
    fixture *f = *state;
    sy_conn *c = sy_store_write_conn(f->store);
    sy_new_key k;
    sy_key_generate(f->hash_key, &k);
    assert_int_equal(sy_key_insert(c, "acme", SY_ROLE_APP, NULL, "me", &k, 1), SY_OK);
    /* Same id and prefix again. */
    assert_int_equal(sy_key_insert(c, "acme", SY_ROLE_APP, NULL, "me", &k, 2), SY_ECONSTRAINT);
    /* Unknown tenant. */
    sy_new_key k2;
    sy_key_generate(f->hash_key, &k2);
    assert_int_equal(sy_key_insert(c, "nobody", SY_ROLE_APP, "x", "me", &k2, 3), SY_ECONSTRAINT);
    /* A NULL name is stored as empty. */
    static const char sql[] = "SELECT name, created_by, created_at FROM api_keys WHERE id = $1";
    sy_stmt *st = sy_conn_prepare(c, sql);
    sy_stmt_bind_text(st, 1, k.id);
    assert_int_equal(sy_stmt_step(st), SY_ROW);
    assert_false(sy_stmt_is_null(st, 0));
    assert_string_equal(sy_stmt_text(st, 0), "");
    assert_string_equal(sy_stmt_text(st, 1), "me");
    assert_int_equal(sy_stmt_i64(st, 2), 1);
    sy_stmt_reset(st);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest auth_api_keys[] = {
        cmocka_unit_test_setup_teardown(test_generate_format, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parse_accepts_generated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parse_rejects_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hash_is_keyed_blake2b, setup, teardown),
        cmocka_unit_test_setup_teardown(test_role_names_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_live_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_rejects_wrong_secret, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_rejects_unknown_and_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_fails_after_revoke_and_forget, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revoke_during_a_verify_is_not_undone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revoke_elsewhere_seen_within_a_second, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_insert_constraints, setup, teardown),
    };
    return cmocka_run_group_tests(auth_api_keys, group_setup, group_teardown);
}

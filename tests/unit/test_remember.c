/* test_remember.c — values of rows that never change (remember.c): what
 * is kept is found again by the same (kind, tenant, code) and by no other,
 * the first keeper wins, NULL values survive, threads agree on one entry,
 * a forgotten entry is gone and a read made before the forget is not kept,
 * and past SY_REMEMBER_MAX nothing more is kept. */
#include "testutil.h"

#include "remember.h"

#include <pthread.h>
#include <stdio.h>

static const char KIND_A[] = "a", KIND_B[] = "b";

static void test_put_then_get(void **state)
{
    (void)state;
    assert_null(sy_remember_get(KIND_A, "t1", "x"));
    const char *v[] = {"seg", NULL, "", "expr"};
    const sy_remembered *e = sy_remember_put(KIND_A, "t1", "x", 4, v, sy_remember_epoch());
    assert_non_null(e);
    assert_int_equal(e->n, 4);
    assert_string_equal(e->v[0], "seg");
    assert_null(e->v[1]);
    assert_string_equal(e->v[2], "");
    assert_string_equal(e->v[3], "expr");
    assert_ptr_not_equal(e->v[0], v[0]); /* a copy */
    assert_ptr_equal(sy_remember_get(KIND_A, "t1", "x"), e);
    /* no values at all is a value too (a code with no segment) */
    const sy_remembered *none =
        sy_remember_put(KIND_A, "t1", "empty", 0, NULL, sy_remember_epoch());
    assert_non_null(none);
    assert_int_equal(none->n, 0);
    assert_ptr_equal(sy_remember_get(KIND_A, "t1", "empty"), none);
}

static void test_keys_are_kept_apart(void **state)
{
    (void)state;
    const char *one[] = {"1"}, *two[] = {"2"}, *three[] = {"3"}, *four[] = {"4"};
    sy_remember_put(KIND_A, "ab", "c", 1, one, sy_remember_epoch());
    sy_remember_put(KIND_A, "a", "bc", 1, two, sy_remember_epoch());
    sy_remember_put(KIND_B, "ab", "c", 1, three, sy_remember_epoch());
    sy_remember_put(KIND_A, "ab", "C", 1, four, sy_remember_epoch());
    assert_string_equal(sy_remember_get(KIND_A, "ab", "c")->v[0], "1");
    assert_string_equal(sy_remember_get(KIND_A, "a", "bc")->v[0], "2");
    assert_string_equal(sy_remember_get(KIND_B, "ab", "c")->v[0], "3");
    assert_string_equal(sy_remember_get(KIND_A, "ab", "C")->v[0], "4");
    assert_null(sy_remember_get(KIND_B, "a", "bc"));
    assert_null(sy_remember_get(KIND_A, "other", "c"));
}

static void test_first_keeper_wins(void **state)
{
    (void)state;
    const char *old[] = {"old"}, *new[] = {"new"};
    const sy_remembered *a = sy_remember_put(KIND_B, "t", "k", 1, old, sy_remember_epoch());
    const sy_remembered *b = sy_remember_put(KIND_B, "t", "k", 1, new, sy_remember_epoch());
    assert_ptr_equal(a, b);
    assert_string_equal(b->v[0], "old");
}

typedef struct racer {
    int n;
    const sy_remembered *got[64];
} racer;

static void *race(void *p)
{
    racer *r = p;
    char value[16];
    snprintf(value, sizeof value, "from %d", r->n);
    const char *v[] = {value};
    for (int i = 0; i < 64; i++) {
        char code[16];
        snprintf(code, sizeof code, "race%d", i);
        r->got[i] = sy_remember_put(KIND_B, "t", code, 1, v, sy_remember_epoch());
    }
    return NULL;
}

static void test_threads_agree(void **state)
{
    (void)state;
    racer r[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        r[i].n = i;
        pthread_create(&t[i], NULL, race, &r[i]);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    for (int k = 0; k < 64; k++) {
        char code[16];
        snprintf(code, sizeof code, "race%d", k);
        const sy_remembered *e = sy_remember_get(KIND_B, "t", code);
        assert_non_null(e);
        for (int i = 0; i < 4; i++)
            assert_ptr_equal(r[i].got[k], e);
    }
}

static void test_forget(void **state)
{
    (void)state;
    const char *was[] = {"segment-a"}, *now[] = {"segment-b"};
    const sy_remembered *e = sy_remember_put(KIND_A, "t", "camp", 1, was, sy_remember_epoch());
    assert_non_null(e);
    size_t n = sy_remember_count();
    /* a reader's epoch, taken before the row changed */
    uint64_t before = sy_remember_epoch();
    sy_remember_forget(KIND_A, "t", "camp");
    assert_null(sy_remember_get(KIND_A, "t", "camp"));
    assert_int_equal(sy_remember_count(), n - 1);
    assert_string_equal(e->v[0], "segment-a"); /* still valid */
    /* what that reader read may be the old row: not kept */
    assert_null(sy_remember_put(KIND_A, "t", "camp", 1, was, before));
    assert_null(sy_remember_get(KIND_A, "t", "camp"));
    /* a read after the forget is kept */
    e = sy_remember_put(KIND_A, "t", "camp", 1, now, sy_remember_epoch());
    assert_non_null(e);
    assert_string_equal(sy_remember_get(KIND_A, "t", "camp")->v[0], "segment-b");
    /* forgetting what is not kept changes nothing else */
    sy_remember_forget(KIND_B, "t", "camp");
    assert_string_equal(sy_remember_get(KIND_A, "t", "camp")->v[0], "segment-b");
}

/* Runs last: fills the table. */
static void test_bounded(void **state)
{
    (void)state;
    const char *v[] = {"x"};
    char code[32];
    for (int i = 0; sy_remember_count() < SY_REMEMBER_MAX; i++) {
        snprintf(code, sizeof code, "fill%d", i);
        assert_non_null(sy_remember_put(KIND_A, "fill", code, 1, v, sy_remember_epoch()));
    }
    assert_int_equal(sy_remember_count(), SY_REMEMBER_MAX);
    assert_null(sy_remember_put(KIND_A, "fill", "one too many", 1, v, sy_remember_epoch()));
    assert_null(sy_remember_get(KIND_A, "fill", "one too many"));
    assert_int_equal(sy_remember_count(), SY_REMEMBER_MAX);
    /* what was kept is still there */
    assert_string_equal(sy_remember_get(KIND_A, "t1", "x")->v[0], "seg");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_then_get),
        cmocka_unit_test(test_keys_are_kept_apart),
        cmocka_unit_test(test_first_keeper_wins),
        cmocka_unit_test(test_threads_agree),
        cmocka_unit_test(test_forget),
        cmocka_unit_test(test_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_tenant.c — tenant id and time-zone validation, tenant rows, and the
 * in-memory tenant registry (sy_tenants) over a real store. */
#include "testutil.h"
#include "unit/store_fixture.h"

#include "store.h"
#include "tenant.h"
#include "util.h"

#include <time.h>

#define CREATED_MS 1700000000000LL /* 2023-11-14T22:13:20.000Z */

typedef struct fixture {
    char *dir;
    sy_store *store;
    sy_tenants *reg;
} fixture;

static int setup(void **state)
{
    sy_log_set_level(SY_LOG_WARN);
    fixture *f = calloc(1, sizeof *f);
    f->dir = tu_tempdir();
    f->store = tu_store_open(f->dir, true);
    sy_conn *c = sy_store_write_conn(f->store);
    assert_int_equal(sy_tenant_create(c, "acme", "Acme Bank", "Asia/Shanghai", CREATED_MS), SY_OK);
    f->reg = sy_tenants_new(f->store);
    assert_non_null(f->reg);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    sy_tenants_free(f->reg);
    sy_store_close(f->store);
    tu_rmtree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static void update_tenant(fixture *f, const char *id, const char *name, const char *tz, int64_t at)
{
    static const char sql[] =
        "UPDATE tenants SET name = $2, timezone = $3, updated_at = $4 WHERE id = $1";
    sy_conn *c = sy_store_write_conn(f->store);
    sy_stmt *st = sy_conn_prepare(c, sql);
    assert_non_null(st);
    sy_stmt_bind_text(st, 1, id);
    sy_stmt_bind_text(st, 2, name);
    sy_stmt_bind_text(st, 3, tz);
    sy_stmt_bind_i64(st, 4, at);
    assert_int_equal(sy_stmt_exec(st), SY_OK);
    assert_int_equal(sy_conn_changes(c), 1);
}

/* ---- validation ---- */

static void test_tenant_id_valid(void **state)
{
    (void)state;
    static const char *const good[] = {
        "a",  "acme", "0bank",       "bank-1",
        "a-", "9",    "abc-def-123", "abcdefghijklmnopqrstuvwxyz012345", /* 32 */
    };
    for (size_t i = 0; i < SY_ARRAY_LEN(good); i++)
        if (!sy_tenant_id_valid(good[i]))
            fail_msg("sy_tenant_id_valid rejected \"%s\"", good[i]);

    static const char *const bad[] = {
        "",         "-acme", "Acme", "ACME", "ac me",
        "a_b",      "a.b",   "a/b",  "../x", "acme\n",
        "\xc3\xbc", "a\tb",  "a:b",  "a@b",  "abcdefghijklmnopqrstuvwxyz0123456", /* 33 */
    };
    for (size_t i = 0; i < SY_ARRAY_LEN(bad); i++)
        if (sy_tenant_id_valid(bad[i]))
            fail_msg("sy_tenant_id_valid accepted \"%s\"", bad[i]);
}

static void test_timezone_valid(void **state)
{
    (void)state;
    static const char *const good[] = {
        "Asia/Shanghai",          "UTC",       "Europe/Paris",
        "America/New_York",       "Etc/GMT+8", "America/Argentina/Buenos_Aires",
        "America/Port-au-Prince",
    };
    for (size_t i = 0; i < SY_ARRAY_LEN(good); i++)
        if (!sy_timezone_valid(good[i]))
            fail_msg("sy_timezone_valid rejected \"%s\"", good[i]);

    static const char *const bad[] = {
        "",
        "../etc/passwd",
        "/etc",
        "/etc/passwd",
        "/usr/share/zoneinfo/UTC",
        "/UTC", /* would resolve to a real file: absolute names are refused */
        "/Asia/Shanghai",
        "../../../etc/passwd",
        "Mars/Base",
        "Asia",                  /* a directory, not a zone */
        "Asia/../Asia/Shanghai", /* no dot-dot anywhere */
        "Asia/Shanghai/..",
        "..",
        "Asia/Shanghai ",
        " Asia/Shanghai",
        "Asia/Shanghai\n",
        "asia/shanghai",
        "Asia\\Shanghai",
        "zone.tab", /* a file of the tz database, not a zone */
        "leapseconds",
        "tzdata.zi",
        "localtime", /* this machine's alias, not a zone name */
        "posixrules",
        "Asia//Shanghai",
        "UTC;rm -rf",
        "Etc/UTC/",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    };
    for (size_t i = 0; i < SY_ARRAY_LEN(bad); i++)
        if (sy_timezone_valid(bad[i]))
            fail_msg("sy_timezone_valid accepted \"%s\"", bad[i]);
}

/* ---- rows ---- */

static void test_tenant_rows(void **state)
{
    fixture *f = *state;
    sy_conn *c = sy_store_write_conn(f->store);

    json_t *j = NULL;
    assert_int_equal(sy_tenant_get(c, "acme", &j), SY_OK);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "id")), "acme");
    assert_string_equal(json_string_value(json_object_get(j, "name")), "Acme Bank");
    assert_string_equal(json_string_value(json_object_get(j, "timezone")), "Asia/Shanghai");
    assert_string_equal(json_string_value(json_object_get(j, "created_at")),
                        "2023-11-14T22:13:20.000Z");
    assert_string_equal(json_string_value(json_object_get(j, "updated_at")),
                        "2023-11-14T22:13:20.000Z");
    json_decref(j);

    j = (json_t *)1;
    assert_int_equal(sy_tenant_get(c, "nobody", &j), SY_OK);
    assert_null(j);

    /* A NULL time zone means the default. */
    assert_int_equal(sy_tenant_create(c, "bank-2", "Bank Two", NULL, CREATED_MS + 1), SY_OK);
    assert_int_equal(sy_tenant_get(c, "bank-2", &j), SY_OK);
    assert_string_equal(json_string_value(json_object_get(j, "timezone")), SY_DEFAULT_TIMEZONE);
    assert_string_equal(json_string_value(json_object_get(j, "created_at")),
                        "2023-11-14T22:13:20.001Z");
    json_decref(j);

    /* Ids are unique. */
    assert_int_equal(sy_tenant_create(c, "acme", "Again", "UTC", CREATED_MS), SY_ECONSTRAINT);

    int64_t n = -1;
    assert_int_equal(sy_tenant_count(c, &n), SY_OK);
    assert_int_equal(n, 2);
}

/* ---- registry ---- */

static void test_registry_get_returns_row(void **state)
{
    fixture *f = *state;
    sy_tenant_info ti;
    memset(&ti, 0, sizeof ti);
    assert_int_equal(sy_tenants_get(f->reg, "acme", &ti), SY_OK);
    assert_string_equal(ti.id, "acme");
    assert_string_equal(ti.name, "Acme Bank");
    assert_string_equal(ti.timezone, "Asia/Shanghai");
    assert_int_equal(ti.created_at, CREATED_MS);
    assert_int_equal(ti.updated_at, CREATED_MS);

    /* Again (from the cache): the same record. */
    sy_tenant_info again;
    memset(&again, 0xAA, sizeof again);
    assert_int_equal(sy_tenants_get(f->reg, "acme", &again), SY_OK);
    assert_string_equal(again.id, "acme");
    assert_string_equal(again.name, "Acme Bank");
    assert_string_equal(again.timezone, "Asia/Shanghai");
    assert_int_equal(again.created_at, CREATED_MS);

    json_t *j = sy_tenant_info_json(&ti);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "id")), "acme");
    assert_string_equal(json_string_value(json_object_get(j, "name")), "Acme Bank");
    assert_string_equal(json_string_value(json_object_get(j, "timezone")), "Asia/Shanghai");
    assert_string_equal(json_string_value(json_object_get(j, "created_at")),
                        "2023-11-14T22:13:20.000Z");
    assert_string_equal(json_string_value(json_object_get(j, "updated_at")),
                        "2023-11-14T22:13:20.000Z");
    json_decref(j);
}

static void test_registry_unknown_is_done(void **state)
{
    fixture *f = *state;
    sy_tenant_info ti;
    assert_int_equal(sy_tenants_get(f->reg, "nobody", &ti), SY_DONE);
    assert_int_equal(sy_tenants_get(f->reg, "nobody", &ti), SY_DONE);
    assert_int_equal(sy_tenants_get(f->reg, "", &ti), SY_DONE);
    /* A tenant created afterwards is found (unknown ids are not cached). */
    assert_int_equal(sy_tenant_create(sy_store_write_conn(f->store), "nobody", "Now Somebody",
                                      "UTC", CREATED_MS),
                     SY_OK);
    assert_int_equal(sy_tenants_get(f->reg, "nobody", &ti), SY_OK);
    assert_string_equal(ti.name, "Now Somebody");
    assert_string_equal(ti.timezone, "UTC");
}

static void test_registry_forget_shows_update(void **state)
{
    fixture *f = *state;
    sy_tenant_info ti;
    assert_int_equal(sy_tenants_get(f->reg, "acme", &ti), SY_OK);
    assert_string_equal(ti.name, "Acme Bank");

    update_tenant(f, "acme", "Acme Holdings", "Europe/Paris", CREATED_MS + 5000);
    /* Forgetting another tenant does not drop this one... */
    sy_tenants_forget(f->reg, "other");
    sy_tenants_forget(f->reg, "acme");
    assert_int_equal(sy_tenants_get(f->reg, "acme", &ti), SY_OK);
    assert_string_equal(ti.id, "acme");
    assert_string_equal(ti.name, "Acme Holdings");
    assert_string_equal(ti.timezone, "Europe/Paris");
    assert_int_equal(ti.created_at, CREATED_MS);
    assert_int_equal(ti.updated_at, CREATED_MS + 5000);

    /* Forgetting an id never loaded is harmless. */
    sy_tenants_forget(f->reg, "never-loaded");
    assert_int_equal(sy_tenants_get(f->reg, "acme", &ti), SY_OK);
    assert_string_equal(ti.name, "Acme Holdings");
}

static void test_registry_rereads_after_a_second(void **state)
{
    fixture *f = *state;
    sy_tenant_info ti;
    assert_int_equal(sy_tenants_get(f->reg, "acme", &ti), SY_OK);
    assert_string_equal(ti.name, "Acme Bank");
    /* Changed by "another process": no forget. */
    update_tenant(f, "acme", "Renamed Elsewhere", "UTC", CREATED_MS + 1);
    struct timespec ts = {1, 100 * 1000 * 1000};
    nanosleep(&ts, NULL);
    assert_int_equal(sy_tenants_get(f->reg, "acme", &ti), SY_OK);
    assert_string_equal(ti.name, "Renamed Elsewhere");
    assert_string_equal(ti.timezone, "UTC");
}

static void test_registry_many_tenants_never_mixed_up(void **state)
{
    fixture *f = *state;
    /* More tenants than a small cache has slots, so some share a slot. */
    enum { N = 600 };
    sy_conn *c = sy_store_write_conn(f->store);
    assert_int_equal(sy_conn_begin(c), SY_OK);
    for (int i = 0; i < N; i++) {
        char id[16], name[32];
        snprintf(id, sizeof id, "t%d", i);
        snprintf(name, sizeof name, "Tenant %d", i);
        assert_int_equal(sy_tenant_create(c, id, name, "UTC", CREATED_MS + i), SY_OK);
    }
    assert_int_equal(sy_conn_commit(c), SY_OK);
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < N; i++) {
            char id[16], name[32];
            snprintf(id, sizeof id, "t%d", i);
            snprintf(name, sizeof name, "Tenant %d", i);
            sy_tenant_info ti;
            assert_int_equal(sy_tenants_get(f->reg, id, &ti), SY_OK);
            assert_string_equal(ti.id, id);
            assert_string_equal(ti.name, name);
            assert_int_equal(ti.created_at, CREATED_MS + i);
        }
        /* Interleave with the original tenant, which shares a slot with some. */
        sy_tenant_info ti;
        assert_int_equal(sy_tenants_get(f->reg, "acme", &ti), SY_OK);
        assert_string_equal(ti.name, "Acme Bank");
    }
}

int main(void)
{
    const struct CMUnitTest tenant_validation_and_registry[] = {
        cmocka_unit_test(test_tenant_id_valid),
        cmocka_unit_test(test_timezone_valid),
        cmocka_unit_test_setup_teardown(test_tenant_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_registry_get_returns_row, setup, teardown),
        cmocka_unit_test_setup_teardown(test_registry_unknown_is_done, setup, teardown),
        cmocka_unit_test_setup_teardown(test_registry_forget_shows_update, setup, teardown),
        cmocka_unit_test_setup_teardown(test_registry_rereads_after_a_second, setup, teardown),
        cmocka_unit_test_setup_teardown(test_registry_many_tenants_never_mixed_up, setup, teardown),
    };
    return cmocka_run_group_tests(tenant_validation_and_registry, NULL, NULL);
}

/* test_customer_packed.c — the packed copy of customers' attributes
 * (migration 0007): attribute ordinals, packing customers written before
 * the table existed, and the check that the copy matches. */
#include "testutil.h"
#include "unit/store_fixture.h"

#include "customer.h"
#include "index.h"
#include "tenant.h"
#include "util.h"

static void count_line(void *ud, const char *line)
{
    (void)line;
    ++*(int *)ud;
}

/* Runs the check; returns the violations it reported. */
static int64_t check(sy_conn *c, const char *tenant, int *lines)
{
    int64_t violations = 0, checked = 0;
    *lines = 0;
    assert_int_equal(sy_customers_check_packed(c, tenant, count_line, lines, &violations, &checked),
                     SY_OK);
    assert_int_equal(*lines, violations);
    return violations;
}

static void test_ordinals_number_definitions(void **state)
{
    char *dir = tu_tempdir();
    sy_store *st = tu_store_open(dir, true);
    sy_conn *w = sy_store_write_conn(st);
    assert_int_equal(sy_conn_begin(w), SY_OK);
    assert_int_equal(sy_tenant_create(w, "t", "T", "Asia/Shanghai", 0), SY_OK);
    sy_attr_set *s;
    assert_int_equal(sy_attr_load(w, "t", &s), SY_OK);
    assert_true(s->sorted);
    /* the template's attributes: 0 .. n-1, each once */
    bool *seen = sy_xcalloc((size_t)s->n, sizeof *seen);
    for (int i = 0; i < s->n; i++) {
        assert_in_range(s->defs[i].ordinal, 0, s->n - 1);
        assert_false(seen[s->defs[i].ordinal]);
        seen[s->defs[i].ordinal] = true;
    }
    free(seen);
    /* a new one, whatever its name, comes next */
    sy_attr_def d = {.type = SY_ATTR_BOOL};
    snprintf(d.name, sizeof d.name, "aaa_first_by_name");
    assert_int_equal(sy_attr_insert(w, "t", &d, 0), SY_OK);
    int n = s->n;
    sy_attr_set_release(s);
    assert_int_equal(sy_attr_load(w, "t", &s), SY_OK);
    assert_string_equal(s->defs[0].name, "aaa_first_by_name");
    assert_int_equal(s->defs[0].ordinal, n);
    /* another tenant numbers its own from 0 */
    assert_int_equal(sy_tenant_create(w, "u", "U", "Asia/Shanghai", 0), SY_OK);
    sy_attr_set *u;
    assert_int_equal(sy_attr_load(w, "u", &u), SY_OK);
    for (int i = 0; i < u->n; i++)
        assert_in_range(u->defs[i].ordinal, 0, u->n - 1);
    sy_attr_set_release(u);
    sy_attr_set_release(s);
    assert_int_equal(sy_conn_commit(w), SY_OK);
    sy_store_close(st);
    tu_rmtree(dir);
    free(dir);
}

/* Customers written before migration 0007 (plain rows, the tenant in the
 * backlog) are packed once; the index then sees their attributes. */
static void test_backlog_packs_old_customers(void **state)
{
    char *dir = tu_tempdir();
    sy_store *st = tu_store_open(dir, true);
    sy_conn *w = sy_store_write_conn(st);
    assert_int_equal(sy_conn_begin(w), SY_OK);
    assert_int_equal(sy_tenant_create(w, "t", "T", "Asia/Shanghai", 0), SY_OK);
    char sql[400];
    enum { N = 12000 }; /* more than one batch */
    for (int i = 0; i < N; i++) {
        snprintf(sql, sizeof sql,
                 "INSERT INTO customers (tenant_id, customer_no, dense_id, attrs, merged_into,"
                 " created_at, updated_at) VALUES ('t', 'C%d', %d,"
                 " '{\"aum\":%d,\"payroll\":%s,\"registered_at\":\"2026-01-%02d\","
                 "\"risk_level\":\"R%d\"}', %s, 0, 0)",
                 i, i, i * 100, i % 2 ? "true" : "false", 1 + i % 28, 1 + i % 5,
                 i % 1000 == 7 ? "'C0'" : "NULL");
        assert_int_equal(sy_conn_exec(w, sql), SY_OK);
    }
    assert_int_equal(sy_conn_exec(w, "INSERT INTO packing_backlog (tenant_id) VALUES ('t')"),
                     SY_OK);
    assert_int_equal(sy_conn_commit(w), SY_OK);
    int lines;
    assert_int_equal(check(w, "t", &lines), 1); /* "not packed yet" */

    int64_t packed;
    assert_int_equal(sy_customers_pack_backlog(st, &packed), SY_OK);
    assert_int_equal(packed, N - N / 1000); /* the merged ones have no row */
    assert_int_equal(check(w, "t", &lines), 0);
    /* once: the backlog is empty */
    assert_int_equal(sy_customers_pack_backlog(st, &packed), SY_OK);
    assert_int_equal(packed, 0);

    sy_attr_set *s;
    assert_int_equal(sy_attr_load(w, "t", &s), SY_OK);
    sy_index *ix = sy_index_new(8 * 3600 * 1000);
    sy_index_load load;
    assert_int_equal(sy_index_rebuild(ix, w, NULL, "t", s, &load), SY_OK);
    assert_int_equal(load.customers, N - N / 1000);
    sy_index_rdlock(ix);
    uint32_t dense;
    assert_true(sy_index_dense(ix, "C9", &dense));
    assert_false(sy_index_dense(ix, "C7", &dense)); /* merged */
    int64_t v;
    assert_true(sy_index_numeric(ix, "aum", 9, &v));
    assert_int_equal(v, 900);
    assert_true(sy_index_numeric(ix, "registered_at", 9, &v));
    assert_int_equal(v, 20454 + 9); /* 2026-01-10 */
    assert_true(roaring_bitmap_contains(sy_index_value(ix, "risk_level", "R5"), 9));
    assert_true(roaring_bitmap_contains(sy_index_value(ix, "payroll", "true"), 9));
    assert_int_equal(roaring_bitmap_get_cardinality(sy_index_value(ix, "payroll", "true")),
                     N / 2 - N / 1000); /* the merged C7, C1007 ... C11007 are odd */
    sy_index_unlock(ix);
    sy_index_free(ix);
    sy_attr_set_release(s);
    sy_store_close(st);
    tu_rmtree(dir);
    free(dir);
}

/* The check finds a missing, a wrong and a stray packed row. */
static void test_check_finds_differences(void **state)
{
    char *dir = tu_tempdir();
    sy_store *st = tu_store_open(dir, true);
    sy_conn *w = sy_store_write_conn(st);
    assert_int_equal(sy_conn_begin(w), SY_OK);
    assert_int_equal(sy_tenant_create(w, "t", "T", "Asia/Shanghai", 0), SY_OK);
    for (int i = 0; i < 3; i++) {
        char sql[300], no[8];
        snprintf(no, sizeof no, "C%d", i);
        snprintf(sql, sizeof sql,
                 "INSERT INTO customers (tenant_id, customer_no, dense_id, attrs, created_at,"
                 " updated_at) VALUES ('t', '%s', %d, '{\"aum\":%d}', 0, 0)",
                 no, i, i);
        assert_int_equal(sy_conn_exec(w, sql), SY_OK);
        json_t *a = json_pack("{s:i}", "aum", i);
        assert_int_equal(sy_customer_packed_put(w, NULL, "t", no, i, a), SY_OK);
        json_decref(a);
    }
    assert_int_equal(sy_conn_commit(w), SY_OK);
    int lines;
    assert_int_equal(check(w, "t", &lines), 0);
    /* a value the API did not write */
    assert_int_equal(sy_conn_exec(w, "UPDATE customers SET attrs = '{\"aum\":5}'"
                                     " WHERE customer_no = 'C1'"),
                     SY_OK);
    assert_int_equal(check(w, "t", &lines), 1);
    /* a customer without its row, and a row without its customer */
    assert_int_equal(sy_conn_exec(w, "DELETE FROM customer_packed WHERE dense_id = 2"), SY_OK);
    assert_int_equal(sy_conn_exec(w, "INSERT INTO customer_packed (tenant_id, dense_id,"
                                     " customer_no, attrs) VALUES ('t', 9, 'C9', x'')"),
                     SY_OK);
    assert_int_equal(check(w, "t", &lines), 3);
    sy_store_close(st);
    tu_rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ordinals_number_definitions),
        cmocka_unit_test(test_backlog_packs_old_customers),
        cmocka_unit_test(test_check_finds_differences),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

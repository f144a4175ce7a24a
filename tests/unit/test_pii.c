/* test_pii.c — sealing, lookup keys, masking and ID validation. */
#include "testutil.h"

#include "customer.h"
#include "pii.h"

#include <sodium.h>
#include <sys/stat.h>

static sy_pii_keys keys(const char *hex)
{
    setenv("SIYU_DATA_KEY", hex, 1);
    sy_pii_keys k;
    char err[256];
    if (!sy_pii_load("/nonexistent", NULL, false, &k, err, sizeof err))
        fail_msg("load: %s", err);
    unsetenv("SIYU_DATA_KEY");
    return k;
}

#define K1 "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define K2 "ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

static void test_seal_open_bound_to_row_and_key(void **state)
{
    sy_pii_keys k = keys(K1), other = keys(K2);
    json_t *p = json_pack("{s:s, s:s}", "name", "王五", "phone", "13512345678");
    char *sealed = sy_pii_seal(&k, "demo", "C1", p);
    assert_non_null(sealed);
    assert_null(strstr(sealed, "13512345678"));
    json_t *back = sy_pii_open(&k, "demo", "C1", sealed);
    assert_non_null(back);
    assert_true(json_equal(back, p));
    json_decref(back);
    /* Another row, another tenant, another key, a flipped byte: refused. */
    assert_null(sy_pii_open(&k, "demo", "C2", sealed));
    assert_null(sy_pii_open(&k, "bank-b", "C1", sealed));
    assert_null(sy_pii_open(&other, "demo", "C1", sealed));
    sealed[10] = sealed[10] == 'A' ? 'B' : 'A';
    assert_null(sy_pii_open(&k, "demo", "C1", sealed));
    assert_null(sy_pii_open(&k, "demo", "C1", "not base64 at all!"));
    /* Two seals of the same data differ (random nonce). */
    char *s1 = sy_pii_seal(&k, "demo", "C1", p), *s2 = sy_pii_seal(&k, "demo", "C1", p);
    assert_string_not_equal(s1, s2);
    free(s1);
    free(s2);
    free(sealed);
    json_decref(p);
}

static void test_key_sources(void **state)
{
    sy_pii_keys k;
    char err[256];
    unsetenv("SIYU_DATA_KEY");
    assert_false(sy_pii_load("/nonexistent", NULL, false, &k, err, sizeof err));
    assert_non_null(strstr(err, "SIYU_DATA_KEY"));
    setenv("SIYU_DATA_KEY", "abc", 1);
    assert_false(sy_pii_load("/nonexistent", NULL, false, &k, err, sizeof err));
    unsetenv("SIYU_DATA_KEY");
    char *dir = tu_tempdir();
    /* --demo creates a 0600 key once and reads it afterwards. */
    assert_true(sy_pii_load(dir, NULL, true, &k, err, sizeof err));
    sy_pii_keys again;
    assert_true(sy_pii_load(dir, NULL, true, &again, err, sizeof err));
    assert_memory_equal(k.enc, again.enc, 32);
    char path[600];
    snprintf(path, sizeof path, "%s/data.key", dir);
    assert_true(sy_pii_load(dir, path, false, &again, err, sizeof err));
    assert_memory_equal(k.enc, again.enc, 32);
    chmod(path, 0644);
    assert_false(sy_pii_load(dir, path, false, &again, err, sizeof err));
    assert_non_null(strstr(err, "chmod 600"));
    tu_rmtree(dir);
    free(dir);
}

static void test_phone_normalize_and_key(void **state)
{
    char out[32];
    assert_true(sy_phone_normalize("+86 138-1234-5678", out, sizeof out));
    assert_string_equal(out, "13812345678");
    assert_true(sy_phone_normalize("008613812345678", out, sizeof out));
    assert_string_equal(out, "13812345678");
    assert_true(sy_phone_normalize("(021) 6234 5678", out, sizeof out));
    assert_string_equal(out, "02162345678");
    assert_false(sy_phone_normalize("12345", out, sizeof out));
    assert_false(sy_phone_normalize("138x12345678", out, sizeof out));
    assert_false(sy_phone_normalize("1+3812345678", out, sizeof out));
    sy_pii_keys k = keys(K1);
    char a[65], b[65], c[65];
    sy_phone_key(&k, "demo", "13812345678", a);
    sy_phone_key(&k, "demo", "13812345678", b);
    sy_phone_key(&k, "bank-b", "13812345678", c);
    assert_string_equal(a, b);
    assert_string_not_equal(a, c); /* per tenant */
    assert_int_equal(strlen(a), 64);
}

static void test_masks(void **state)
{
    char out[64];
    sy_mask_phone("13812345678", out, sizeof out);
    assert_string_equal(out, "138****5678");
    sy_mask_name("张三丰", out, sizeof out);
    assert_string_equal(out, "张**");
    sy_mask_name("Li", out, sizeof out);
    assert_string_equal(out, "L*");
    sy_mask_name("王", out, sizeof out);
    assert_string_equal(out, "王*");
    sy_mask_id_number("11010519491231002X", out, sizeof out);
    assert_string_equal(out, "1101**********002X");
    sy_mask_phone("123", out, sizeof out);
    assert_string_equal(out, "****");
    /* a phone written freely (a delivery's) is never cut mid-character */
    sy_mask_phone("电话１３８１２３４５６７８", out, sizeof out);
    assert_string_equal(out, "****");
    /* an address keeps at most six characters and at most half of them */
    sy_mask_address("北京市朝阳区建国路1号", out, sizeof out);
    assert_string_equal(out, "北京市朝阳****");
    sy_mask_address("Room 1", out, sizeof out);
    assert_string_equal(out, "Roo****");
    sy_mask_address("x", out, sizeof out);
    assert_string_equal(out, "****");
    /* a delivery object masked whole keeps every member */
    json_t *d = json_pack("{s:s, s:s, s:s}", "name", "李四", "phone", "电话１３８", "address",
                          "上海市浦东新区世纪大道");
    json_t *m = sy_pii_masked(d);
    assert_int_equal(json_object_size(m), 3);
    assert_string_equal(json_string_value(json_object_get(m, "phone")), "****");
    json_decref(m);
    json_decref(d);
}

static void test_id_numbers(void **state)
{
    assert_true(sy_id_number_valid("11010519491231002X"));
    assert_true(sy_id_number_valid("11010519491231002x"));
    assert_false(sy_id_number_valid("110105194912310021")); /* wrong check digit */
    assert_false(sy_id_number_valid("1101051949123100"));
    assert_true(sy_id_number_valid("110105491231002")); /* 15-digit form */
    assert_false(sy_id_number_valid("11010549123100X"));
    assert_true(sy_customer_no_valid("C-001:a.b_c"));
    assert_false(sy_customer_no_valid("C 001"));
    assert_false(sy_customer_no_valid(""));
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seal_open_bound_to_row_and_key),
        cmocka_unit_test(test_key_sources),
        cmocka_unit_test(test_phone_normalize_and_key),
        cmocka_unit_test(test_masks),
        cmocka_unit_test(test_id_numbers),
    };
    return cmocka_run_group_tests_name("pii_protection", tests, NULL, NULL);
}

/* test_util.c — byte buffers, strict number parsing, hex, time formatting
 * and the allocation helpers of util.c. */
#include "testutil.h"

#include "util.h"

#include <inttypes.h>
#include <time.h>

/* ---- sy_buf ---- */

static void test_buf_append_grows_and_stays_terminated(void **state)
{
    (void)state;
    sy_buf b = {0};
    sy_buf_append(&b, "abc", 3);
    assert_non_null(b.data);
    assert_int_equal(b.len, 3);
    assert_true(b.cap >= b.len + 1);
    assert_string_equal(b.data, "abc");

    /* Bytes after the given length are not copied. */
    sy_buf_append(&b, "defXYZ", 3);
    assert_int_equal(b.len, 6);
    assert_string_equal(b.data, "abcdef");

    /* Embedded NUL bytes are kept and counted; a terminator follows. */
    sy_buf_append(&b, "g\0h", 3);
    assert_int_equal(b.len, 9);
    assert_memory_equal(b.data, "abcdefg\0h", 9);
    assert_int_equal(b.data[9], '\0');

    /* Grow well past any initial capacity. */
    char chunk[1000];
    for (size_t i = 0; i < sizeof chunk; i++)
        chunk[i] = (char)('a' + i % 26);
    for (int i = 0; i < 20; i++)
        sy_buf_append(&b, chunk, sizeof chunk);
    assert_int_equal(b.len, 9 + 20 * sizeof chunk);
    assert_true(b.cap >= b.len + 1);
    assert_int_equal(b.data[b.len], '\0');
    for (int i = 0; i < 20; i++)
        assert_memory_equal(b.data + 9 + (size_t)i * sizeof chunk, chunk, sizeof chunk);
    assert_memory_equal(b.data, "abcdefg\0h", 9);

    sy_buf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
}

static void test_buf_empty_append_gives_empty_string(void **state)
{
    (void)state;
    sy_buf b = {0};
    sy_buf_append(&b, "", 0);
    assert_non_null(b.data);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    sy_buf_puts(&b, "");
    assert_int_equal(b.len, 0);
    sy_buf_puts(&b, "hello");
    sy_buf_puts(&b, ", world");
    assert_int_equal(b.len, 12);
    assert_string_equal(b.data, "hello, world");
    sy_buf_free(&b);
}

static void test_buf_printf_formats_and_appends(void **state)
{
    (void)state;
    sy_buf b = {0};
    sy_buf_printf(&b, "a=%d, b=%s", 1, "two");
    assert_string_equal(b.data, "a=1, b=two");
    assert_int_equal(b.len, strlen("a=1, b=two"));

    sy_buf_printf(&b, "; %05.1f|%x", 3.14159, 255u);
    assert_string_equal(b.data, "a=1, b=two; 003.1|ff");
    assert_int_equal(b.len, strlen(b.data));

    /* An empty expansion changes nothing. */
    size_t before = b.len;
    sy_buf_printf(&b, "%s", "");
    assert_int_equal(b.len, before);
    assert_string_equal(b.data, "a=1, b=two; 003.1|ff");

    /* A long expansion that needs the buffer to grow. */
    sy_buf_reset(&b);
    sy_buf_printf(&b, "%0300d|%s", 7, "end");
    assert_int_equal(b.len, 304);
    assert_int_equal(strlen(b.data), 304);
    for (int i = 0; i < 299; i++)
        assert_int_equal(b.data[i], '0');
    assert_string_equal(b.data + 299, "7|end");

    /* Mixing append and printf keeps one contiguous string. */
    sy_buf_reset(&b);
    sy_buf_puts(&b, "x");
    sy_buf_printf(&b, "%c%c", 'y', 'z');
    sy_buf_append(&b, "!", 1);
    assert_string_equal(b.data, "xyz!");
    assert_int_equal(b.len, 4);
    sy_buf_free(&b);
}

static void test_buf_steal_transfers_ownership(void **state)
{
    (void)state;
    sy_buf b = {0};
    sy_buf_puts(&b, "payload");
    char *data = b.data;
    char *s = sy_buf_steal(&b);
    assert_ptr_equal(s, data);
    assert_string_equal(s, "payload");
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);

    /* The emptied buffer is usable again and does not alias the stolen bytes. */
    sy_buf_puts(&b, "again");
    assert_ptr_not_equal(b.data, s);
    assert_string_equal(b.data, "again");
    assert_string_equal(s, "payload");
    free(s);

    /* Stealing from a never-used buffer gives an empty, freeable string. */
    sy_buf e = {0};
    char *empty = sy_buf_steal(&e);
    assert_non_null(empty);
    assert_string_equal(empty, "");
    assert_null(e.data);
    free(empty);

    sy_buf_free(&b);
}

static void test_buf_reset_keeps_capacity(void **state)
{
    (void)state;
    sy_buf b = {0};
    sy_buf_reset(&b); /* on a zeroed buffer: nothing to do, must not crash */
    assert_null(b.data);
    assert_int_equal(b.len, 0);

    for (int i = 0; i < 100; i++)
        sy_buf_puts(&b, "0123456789");
    size_t cap = b.cap;
    char *data = b.data;
    sy_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, cap);
    assert_ptr_equal(b.data, data);
    assert_string_equal(b.data, "");

    sy_buf_puts(&b, "new");
    assert_string_equal(b.data, "new");
    assert_int_equal(b.len, 3);
    sy_buf_free(&b);
}

/* ---- sy_parse_i64 ---- */

static void test_parse_i64_accepts_whole_numbers(void **state)
{
    (void)state;
    int64_t v = -1;
    assert_true(sy_parse_i64("0", INT64_MIN, INT64_MAX, &v));
    assert_int_equal(v, 0);
    assert_true(sy_parse_i64("42", INT64_MIN, INT64_MAX, &v));
    assert_int_equal(v, 42);
    assert_true(sy_parse_i64("-17", INT64_MIN, INT64_MAX, &v));
    assert_int_equal(v, -17);
    assert_true(sy_parse_i64("007", 0, 10, &v));
    assert_int_equal(v, 7);
    assert_true(sy_parse_i64("9223372036854775807", INT64_MIN, INT64_MAX, &v));
    assert_true(v == INT64_MAX);
    assert_true(sy_parse_i64("-9223372036854775808", INT64_MIN, INT64_MAX, &v));
    assert_true(v == INT64_MIN);
}

static void test_parse_i64_bounds_are_inclusive(void **state)
{
    (void)state;
    int64_t v = 0;
    assert_true(sy_parse_i64("1", 1, 10, &v));
    assert_int_equal(v, 1);
    assert_true(sy_parse_i64("10", 1, 10, &v));
    assert_int_equal(v, 10);
    assert_false(sy_parse_i64("0", 1, 10, &v));
    assert_false(sy_parse_i64("11", 1, 10, &v));
    assert_false(sy_parse_i64("-1", 0, 100, &v));
    assert_true(sy_parse_i64("-5", -5, -5, &v));
    assert_int_equal(v, -5);
    assert_false(sy_parse_i64("-4", -5, -5, &v));
    assert_false(sy_parse_i64("1000000001", 0, 1000000000, &v));
}

static void test_parse_i64_rejects_junk_and_overflow(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        " 1",
        "\t1",
        "+1",
        "1 ",
        "1\n",
        "1x",
        "x1",
        "0x10",
        "1.5",
        "1e3",
        "-",
        "+",
        "--1",
        "- 1",
        "1,000",
        "\xd9\xa1",
        "12abc",
        "\n1",
        "\r1",
        "\v1",
        "\f1",
        "-\n1",
        "9223372036854775808",  /* INT64_MAX + 1 */
        "-9223372036854775809", /* INT64_MIN - 1 */
        "99999999999999999999999",
    };
    for (size_t i = 0; i < SY_ARRAY_LEN(bad); i++) {
        int64_t v = 12345;
        if (sy_parse_i64(bad[i], INT64_MIN, INT64_MAX, &v))
            fail_msg("sy_parse_i64 accepted \"%s\" as %" PRId64, bad[i], v);
    }
    int64_t v;
    assert_false(sy_parse_i64(NULL, INT64_MIN, INT64_MAX, &v));
}

/* ---- sy_parse_size ---- */

static void test_parse_size_units(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        uint64_t want;
    } ok[] = {
        {"0", 0},
        {"1048576", 1048576},
        {"100B", 100},
        {"512k", 512 * 1024},
        {"512K", 512 * 1024},
        {"4KiB", 4 * 1024},
        {"4kb", 4 * 1024},
        {"4KB", 4 * 1024},
        {"8MiB", 8ull * 1024 * 1024},
        {"8m", 8ull * 1024 * 1024},
        {"8M", 8ull * 1024 * 1024},
        {"8MB", 8ull * 1024 * 1024},
        {"2GiB", 2ull * 1024 * 1024 * 1024},
        {"3g", 3ull * 1024 * 1024 * 1024},
        {"1GB", 1024ull * 1024 * 1024},
        {"18446744073709551615", UINT64_MAX},
        {"17179869183G", 17179869183ull << 30}, /* 2^64 - 2^30 */
        {"18014398509481983k", 18014398509481983ull << 10},
    };
    for (size_t i = 0; i < SY_ARRAY_LEN(ok); i++) {
        uint64_t v = 12345;
        if (!sy_parse_size(ok[i].in, &v))
            fail_msg("sy_parse_size rejected \"%s\"", ok[i].in);
        if (v != ok[i].want)
            fail_msg("sy_parse_size(\"%s\") = %" PRIu64 ", want %" PRIu64, ok[i].in, v, ok[i].want);
    }
}

static void test_parse_size_rejects_bad_input_and_overflow(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "k",
        "MiB",
        "-1",
        "+1",
        " 1",
        "1 ",
        "1 MiB",
        "1x",
        "1TiB",
        "1T",
        "1.5M",
        "8MiBs",
        "8MiB ",
        "1KK",
        "1bb",
        "0x10",
        "1e3",
        "18446744073709551616",     /* UINT64_MAX + 1 */
        "99999999999999999999999k", /* the number alone overflows */
        "17179869184G",             /* exactly 2^64 bytes */
        "18014398509481984k",       /* exactly 2^64 bytes */
        "17592186044416M",          /* exactly 2^64 bytes */
    };
    for (size_t i = 0; i < SY_ARRAY_LEN(bad); i++) {
        uint64_t v = 12345;
        if (sy_parse_size(bad[i], &v))
            fail_msg("sy_parse_size accepted \"%s\" as %" PRIu64, bad[i], v);
    }
    uint64_t v;
    assert_false(sy_parse_size(NULL, &v));
}

/* ---- sy_hex ---- */

static void test_hex_lowercase_and_terminated(void **state)
{
    (void)state;
    const unsigned char in[] = {0x00, 0x01, 0x0f, 0x10, 0x7f, 0x80, 0xab, 0xff};
    char out[2 * sizeof in + 4];
    memset(out, 'X', sizeof out);
    sy_hex(in, sizeof in, out);
    assert_string_equal(out, "00010f107f80abff");
    /* Exactly 2n+1 bytes are written. */
    assert_int_equal(out[2 * sizeof in + 1], 'X');

    char empty[4];
    memset(empty, 'X', sizeof empty);
    sy_hex(in, 0, empty);
    assert_string_equal(empty, "");
    assert_int_equal(empty[1], 'X');

    unsigned char all[256];
    char big[513];
    for (int i = 0; i < 256; i++)
        all[i] = (unsigned char)i;
    sy_hex(all, sizeof all, big);
    assert_int_equal(strlen(big), 512);
    for (int i = 0; i < 256; i++) {
        char want[3];
        snprintf(want, sizeof want, "%02x", i);
        assert_memory_equal(big + 2 * i, want, 2);
    }
}

/* ---- sy_format_time ---- */

static void expect_time(int64_t ms, const char *want)
{
    char out[32];
    memset(out, 'X', sizeof out);
    sy_format_time(ms, out, sizeof out);
    if (strcmp(out, want) != 0)
        fail_msg("sy_format_time(%" PRId64 ") = \"%s\", want \"%s\"", ms, out, want);
}

/* Ordered ids: the prefix, 12 hex digits of time, 16 random hex digits;
 * later times sort later, equal times still differ. */
static void test_ordered_id_sorts_by_time_and_is_unique(void **state)
{
    (void)state;
    char a[40], b[40], c[40], d[40];
    sy_ordered_id("le_", 0x018f3a2b4c5dLL, a, sizeof a);
    assert_int_equal(strlen(a), 3 + SY_ORDERED_ID_LEN);
    assert_memory_equal(a, "le_018f3a2b4c5d", 15);
    for (const char *p = a + 3; *p; p++)
        assert_non_null(strchr("0123456789abcdef", *p));
    sy_ordered_id("le_", 0x018f3a2b4c5dLL, b, sizeof b);
    assert_string_not_equal(a, b); /* the same millisecond: the random part */
    sy_ordered_id("le_", 0x018f3a2b4c5eLL, c, sizeof c);
    assert_true(strcmp(c, a) > 0 && strcmp(c, b) > 0);
    sy_ordered_id("g_", 1, d, sizeof d); /* small times keep their width */
    assert_int_equal(strlen(d), 2 + SY_ORDERED_ID_LEN);
    assert_memory_equal(d, "g_000000000001", 14);
    sy_ordered_id("g_", -5, d, sizeof d); /* before the epoch: clamped */
    assert_memory_equal(d, "g_000000000000", 14);
}

static void test_format_time_known_instants(void **state)
{
    (void)state;
    expect_time(0, "1970-01-01T00:00:00.000Z");
    expect_time(1, "1970-01-01T00:00:00.001Z");
    expect_time(999, "1970-01-01T00:00:00.999Z");
    expect_time(1000, "1970-01-01T00:00:01.000Z");
    expect_time(1700000000123, "2023-11-14T22:13:20.123Z");
    expect_time(951782400000, "2000-02-29T00:00:00.000Z");  /* leap day */
    expect_time(1709251199999, "2024-02-29T23:59:59.999Z"); /* end of a leap day */
    expect_time(253402300799999, "9999-12-31T23:59:59.999Z");
}

static void test_format_time_negative_ms(void **state)
{
    (void)state;
    expect_time(-1, "1969-12-31T23:59:59.999Z");
    expect_time(-999, "1969-12-31T23:59:59.001Z");
    expect_time(-1000, "1969-12-31T23:59:59.000Z");
    expect_time(-1001, "1969-12-31T23:59:58.999Z");
    expect_time(-86400000, "1969-12-31T00:00:00.000Z");
}

static void test_format_time_length_and_now(void **state)
{
    (void)state;
    char out[32];
    int64_t now = sy_now_ms();
    int64_t sys = (int64_t)time(NULL) * 1000;
    assert_true(now >= sys - 2000 && now <= sys + 2000);
    sy_format_time(now, out, sizeof out);
    /* RFC 3339 with milliseconds: 24 characters, fits the documented 25 bytes. */
    assert_int_equal(strlen(out), 24);
    assert_int_equal(out[4], '-');
    assert_int_equal(out[10], 'T');
    assert_int_equal(out[19], '.');
    assert_int_equal(out[23], 'Z');

    char exact[25];
    sy_format_time(1700000000123, exact, sizeof exact);
    assert_string_equal(exact, "2023-11-14T22:13:20.123Z");

    uint64_t a = sy_mono_ns(), b = sy_mono_ns();
    assert_true(b >= a);
}

/* ---- sy_xasprintf and friends ---- */

static void test_xasprintf_and_strdup(void **state)
{
    (void)state;
    char *s = sy_xasprintf("%s-%d-%c", "abc", 42, 'z');
    assert_string_equal(s, "abc-42-z");
    free(s);

    s = sy_xasprintf("%s", "");
    assert_non_null(s);
    assert_string_equal(s, "");
    free(s);

    s = sy_xasprintf("%0*d", 1000, 5);
    assert_int_equal(strlen(s), 1000);
    assert_int_equal(s[0], '0');
    assert_int_equal(s[999], '5');
    free(s);

    s = sy_xstrndup("abcdef", 3);
    assert_string_equal(s, "abc");
    free(s);
    s = sy_xstrdup("copy");
    assert_string_equal(s, "copy");
    free(s);
}

static void test_log_level_names(void **state)
{
    (void)state;
    sy_log_level l = SY_LOG_ERROR;
    assert_true(sy_log_parse_level("debug", &l));
    assert_int_equal(l, SY_LOG_DEBUG);
    assert_true(sy_log_parse_level("warn", &l));
    assert_int_equal(l, SY_LOG_WARN);
    assert_true(sy_log_parse_level("error", &l));
    assert_int_equal(l, SY_LOG_ERROR);
    assert_true(sy_log_parse_level("info", &l));
    assert_int_equal(l, SY_LOG_INFO);
    assert_false(sy_log_parse_level("INFO", &l));
    assert_false(sy_log_parse_level("", &l));
    assert_false(sy_log_parse_level("warning", &l));
}

/* Tokens: 1 to max visible ASCII characters, nothing else. */
static void test_csv_one_field(void **state)
{
    (void)state;
    static const struct {
        const char *line, *field; /* field NULL: refused */
    } cases[] = {
        {"JD-1", "JD-1"},     {"\"JD-1\"", "JD-1"},
        {"\"JD,1\"", "JD,1"}, {"\"JD-\"\"Q\"\"\"", "JD-\"Q\""},
        {"\"\"", ""},         {"\"\"\"\"", "\""},
        {"a,b", NULL},        {"\"a\",b", NULL},
        {"a\"b", NULL},       {"\"abc", NULL},
        {"\"a\"\"", NULL},    {"\"a\"b", NULL},
        {"\"", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char buf[64];
        snprintf(buf, sizeof buf, "%s", cases[i].line);
        const char *why = NULL;
        char *f = sy_csv_one_field(buf, &why);
        if (cases[i].field) {
            if (!f || strcmp(f, cases[i].field) != 0)
                fail_msg("%s: got %s (%s)", cases[i].line, f ? f : "NULL", why ? why : "");
            assert_null(why);
        } else {
            if (f)
                fail_msg("%s: accepted as %s", cases[i].line, f);
            assert_non_null(why);
        }
    }
}

static void test_token_valid(void **state)
{
    (void)state;
    assert_true(sy_token_valid("ev-1", 4));
    assert_true(sy_token_valid("!~", 2));
    assert_true(sy_token_valid("192.168.0.1", 64));
    assert_false(sy_token_valid("", 4));
    assert_false(sy_token_valid("ev-12", 4));
    assert_false(sy_token_valid("a b", 8));
    assert_false(sy_token_valid("a\tb", 8));
    assert_false(sy_token_valid("a\x7f", 8));
    assert_false(sy_token_valid("\xe4\xb8\x8a", 8));
}

int main(void)
{
    const struct CMUnitTest util_buffers_parsing_and_formatting[] = {
        cmocka_unit_test(test_buf_append_grows_and_stays_terminated),
        cmocka_unit_test(test_buf_empty_append_gives_empty_string),
        cmocka_unit_test(test_buf_printf_formats_and_appends),
        cmocka_unit_test(test_buf_steal_transfers_ownership),
        cmocka_unit_test(test_buf_reset_keeps_capacity),
        cmocka_unit_test(test_parse_i64_accepts_whole_numbers),
        cmocka_unit_test(test_parse_i64_bounds_are_inclusive),
        cmocka_unit_test(test_parse_i64_rejects_junk_and_overflow),
        cmocka_unit_test(test_parse_size_units),
        cmocka_unit_test(test_parse_size_rejects_bad_input_and_overflow),
        cmocka_unit_test(test_hex_lowercase_and_terminated),
        cmocka_unit_test(test_ordered_id_sorts_by_time_and_is_unique),
        cmocka_unit_test(test_format_time_known_instants),
        cmocka_unit_test(test_format_time_negative_ms),
        cmocka_unit_test(test_format_time_length_and_now),
        cmocka_unit_test(test_xasprintf_and_strdup),
        cmocka_unit_test(test_log_level_names),
        cmocka_unit_test(test_token_valid),
        cmocka_unit_test(test_csv_one_field),
    };
    return cmocka_run_group_tests(util_buffers_parsing_and_formatting, NULL, NULL);
}

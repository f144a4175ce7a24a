/* test_attr.c — attribute definitions and value checks. */
#include "testutil.h"

#include "attr.h"
#include "util.h"

static sy_attr_def def_of(const char *json)
{
    json_t *b = json_loads(json, 0, NULL);
    assert_non_null(b);
    sy_attr_def d;
    const char *field = NULL;
    char err[256];
    if (!sy_attr_def_parse(b, &d, &field, err, sizeof err))
        fail_msg("definition %s refused: %s (%s)", json, err, field);
    json_decref(b);
    return d;
}

/* Checks JSON text v against d: expect the canonical JSON text, or NULL
 * for a refusal. */
static void expect(const sy_attr_def *d, const char *v, const char *canon)
{
    json_t *in = json_loads(v, JSON_DECODE_ANY, NULL);
    assert_non_null(in);
    json_t *out = NULL;
    char err[256] = "";
    bool ok = sy_attr_check(d, in, &out, err, sizeof err);
    json_decref(in);
    if (!canon) {
        if (ok)
            fail_msg("%s accepted %s", d->name, v);
        assert_non_null(strstr(err, d->name)); /* the message names the attribute */
        return;
    }
    if (!ok)
        fail_msg("%s refused %s: %s", d->name, v, err);
    char *got = json_dumps(out, JSON_ENCODE_ANY);
    if (strcmp(got, canon) != 0)
        fail_msg("%s: %s became %s, expected %s", d->name, v, got, canon);
    free(got);
    json_decref(out);
}

static void test_number_values_are_exact(void **state)
{
    sy_attr_def d = def_of("{\"name\":\"rate\",\"type\":\"number\",\"scale\":2}");
    expect(&d, "12", "\"12.00\"");
    expect(&d, "-3", "\"-3.00\"");
    expect(&d, "1234.56", "\"1234.56\"");
    expect(&d, "0.1", "\"0.10\"");
    expect(&d, "\"1234.5\"", "\"1234.50\"");
    expect(&d, "\"-0.05\"", "\"-0.05\"");
    expect(&d, "1234.567", NULL); /* more decimals than the scale */
    expect(&d, "\"1234.567\"", NULL);
    expect(&d, "\"12.\"", NULL);
    expect(&d, "\".5\"", NULL);
    expect(&d, "\"1e3\"", NULL);
    expect(&d, "\"99999999999999999999\"", NULL); /* overflow */
    expect(&d, "true", NULL);
    sy_attr_def_clear(&d);
    sy_attr_def z = def_of("{\"name\":\"count\",\"type\":\"number\",\"scale\":0}");
    expect(&z, "7", "\"7\"");
    expect(&z, "7.5", NULL);
    sy_attr_def_clear(&z);
}

static void test_other_types(void **state)
{
    sy_attr_def e =
        def_of("{\"name\":\"risk\",\"type\":\"enum\",\"values\":[\"R1\",\"R2\",\"R3\"]}");
    expect(&e, "\"R2\"", "\"R2\"");
    expect(&e, "\"R9\"", NULL);
    expect(&e, "2", NULL);
    assert_int_equal(sy_attr_enum_index(&e, "R3"), 2);
    assert_int_equal(sy_attr_enum_index(&e, "r3"), -1);
    sy_attr_def_clear(&e);

    sy_attr_def i = def_of("{\"name\":\"aum\",\"type\":\"integer\",\"unit\":\"fen\"}");
    expect(&i, "50000000", "50000000");
    expect(&i, "-1", "-1");
    expect(&i, "1.5", NULL);
    expect(&i, "\"5\"", NULL);
    sy_attr_def_clear(&i);

    sy_attr_def dt = def_of("{\"name\":\"since\",\"type\":\"date\"}");
    expect(&dt, "\"2024-02-29\"", "\"2024-02-29\"");
    expect(&dt, "\"2023-02-29\"", NULL);
    expect(&dt, "\"2024-13-01\"", NULL);
    expect(&dt, "\"2024-1-01\"", NULL);
    expect(&dt, "\"2024-01-01T00:00:00Z\"", NULL);
    sy_attr_def_clear(&dt);

    sy_attr_def b = def_of("{\"name\":\"payroll\",\"type\":\"bool\"}");
    expect(&b, "true", "true");
    expect(&b, "0", NULL);
    sy_attr_def_clear(&b);

    sy_attr_def s = def_of("{\"name\":\"city\",\"type\":\"string\"}");
    expect(&s, "\"上海\"", "\"上海\"");
    expect(&s, "\"\"", NULL);
    expect(&s, "\"a\\nb\"", NULL);
    sy_attr_def_clear(&s);
}

static void test_dates_round_trip(void **state)
{
    int64_t days;
    assert_true(sy_parse_date("1970-01-01", &days));
    assert_int_equal(days, 0);
    assert_true(sy_parse_date("2026-11-23", &days));
    char out[11];
    sy_format_date(days, out);
    assert_string_equal(out, "2026-11-23");
    assert_true(sy_parse_date("1900-03-01", &days));
    sy_format_date(days, out);
    assert_string_equal(out, "1900-03-01");
    assert_false(sy_parse_date("1900-02-29", &days)); /* 1900 is not a leap year */
    assert_true(sy_parse_date("2000-02-29", &days));  /* 2000 is */
    assert_false(sy_parse_date("2026-11-23 ", &days));
}

static void test_names(void **state)
{
    assert_true(sy_attr_name_valid("risk_level"));
    assert_true(sy_attr_name_valid("a1"));
    assert_false(sy_attr_name_valid("_x"));
    assert_false(sy_attr_name_valid("Risk"));
    assert_false(sy_attr_name_valid(""));
    char longname[80];
    memset(longname, 'a', 64);
    longname[64] = '\0';
    assert_false(sy_attr_name_valid(longname));
    longname[63] = '\0';
    assert_true(sy_attr_name_valid(longname));
}

/* A schema of every type, sorted by name as sy_attr_load makes it, with
 * ordinals in another order (the order of definition). */
static sy_attr_set *pack_schema(void)
{
    static const char *const defs[] = {
        "{\"name\":\"aum\",\"type\":\"integer\",\"unit\":\"fen\"}",
        "{\"name\":\"city\",\"type\":\"string\"}",
        "{\"name\":\"payroll\",\"type\":\"bool\"}",
        "{\"name\":\"rate\",\"type\":\"number\",\"scale\":2}",
        "{\"name\":\"registered_at\",\"type\":\"date\"}",
        "{\"name\":\"risk_level\",\"type\":\"enum\",\"values\":[\"R1\",\"R2\"]}",
    };
    static const int ordinals[] = {4, 0, 200, 3, 1, 2};
    sy_attr_set *s = sy_xcalloc(1, sizeof *s);
    atomic_init(&s->refs, 1);
    s->n = (int)SY_ARRAY_LEN(defs);
    s->sorted = true;
    s->defs = sy_xcalloc((size_t)s->n, sizeof *s->defs);
    for (int i = 0; i < s->n; i++) {
        s->defs[i] = def_of(defs[i]);
        s->defs[i].ordinal = ordinals[i];
    }
    return s;
}

static void test_pack_round_trip(void **state)
{
    sy_attr_set *s = pack_schema();
    json_t *a = json_loads("{\"risk_level\":\"R2\",\"aum\":-123456789012,\"payroll\":true,"
                           "\"rate\":\"-0.05\",\"registered_at\":\"1969-12-31\","
                           "\"city\":\"上海\",\"unknown\":7}",
                           0, NULL);
    assert_non_null(a);
    sy_buf b = {0};
    sy_attr_pack(s, a, &b);
    const uint8_t *p = (const uint8_t *)b.data, *end = p + b.len;
    sy_attr_packed v;
    /* in the order of the ordinals: city 0, registered_at 1, risk_level 2,
     * rate 3, aum 4, payroll 200; the unknown attribute left out */
    assert_int_equal(sy_attr_unpack(&p, end, &v), 1);
    assert_int_equal(v.ordinal, 0);
    assert_int_equal(v.kind, SY_PACKED_STR);
    assert_string_equal(v.s, "上海");
    assert_int_equal(sy_attr_unpack(&p, end, &v), 1);
    assert_int_equal(v.ordinal, 1);
    assert_int_equal(v.kind, SY_PACKED_INT);
    assert_int_equal(v.i, -1); /* days since 1970-01-01 */
    assert_int_equal(sy_attr_unpack(&p, end, &v), 1);
    assert_int_equal(v.ordinal, 2);
    assert_string_equal(v.s, "R2");
    assert_int_equal(sy_attr_unpack(&p, end, &v), 1);
    assert_int_equal(v.ordinal, 3);
    assert_int_equal(v.kind, SY_PACKED_INT);
    assert_int_equal(v.i, -5); /* scaled by 10^2 */
    assert_int_equal(sy_attr_unpack(&p, end, &v), 1);
    assert_int_equal(v.ordinal, 4);
    assert_true(v.i == -123456789012LL);
    assert_int_equal(sy_attr_unpack(&p, end, &v), 1);
    assert_int_equal(v.ordinal, 200);
    assert_int_equal(v.kind, SY_PACKED_BOOL);
    assert_int_equal(v.i, 1);
    assert_int_equal(sy_attr_unpack(&p, end, &v), 0);

    /* the same values given in another order pack to the same bytes */
    json_t *a2 = json_object();
    const char *keys[] = {"payroll", "city", "aum", "rate", "registered_at", "risk_level"};
    for (size_t i = 0; i < SY_ARRAY_LEN(keys); i++)
        json_object_set(a2, keys[i], json_object_get(a, keys[i]));
    sy_buf b2 = {0};
    sy_attr_pack(s, a2, &b2);
    assert_int_equal(b2.len, b.len);
    assert_memory_equal(b2.data, b.data, b.len);

    /* extreme integers survive the zigzag varint */
    const int64_t extremes[] = {INT64_MIN, INT64_MAX, 0, -1, 63, -64, 64};
    for (size_t i = 0; i < SY_ARRAY_LEN(extremes); i++) {
        json_t *o = json_pack("{s:I}", "aum", (json_int_t)extremes[i]);
        sy_buf_reset(&b2);
        sy_attr_pack(s, o, &b2);
        p = (const uint8_t *)b2.data;
        assert_int_equal(sy_attr_unpack(&p, p + b2.len, &v), 1);
        assert_true(v.i == extremes[i]);
        json_decref(o);
    }
    sy_buf_free(&b2);
    json_decref(a2);
    json_decref(a);
    sy_buf_free(&b);
    sy_attr_set_release(s);
}

/* Cut or damaged bytes are refused (-1), never read past their end. */
static void test_unpack_refuses_damage(void **state)
{
    sy_attr_set *s = pack_schema();
    json_t *a = json_loads("{\"city\":\"北京\",\"aum\":300000000000,\"payroll\":false}", 0, NULL);
    sy_buf b = {0};
    sy_attr_pack(s, a, &b);
    for (size_t cut = 0; cut < b.len; cut++) {
        /* a copy of exactly `cut` bytes, so ASan sees any read past it */
        uint8_t *c = sy_xmalloc(cut ? cut : 1);
        memcpy(c, b.data, cut);
        const uint8_t *p = c, *end = c + cut;
        sy_attr_packed v;
        int rc, n = 0;
        while ((rc = sy_attr_unpack(&p, end, &v)) > 0)
            n++;
        assert_true(p <= end);
        /* the cut falls inside the string, the integer, or between entries */
        assert_true(rc == -1 || p == end);
        assert_true(n <= 3);
        free(c);
    }
    /* a string without its NUL */
    uint8_t bad[] = {0 << 2 | 3, 2, 'a', 'b', 'c'};
    const uint8_t *p = bad;
    sy_attr_packed v;
    assert_int_equal(sy_attr_unpack(&p, bad + sizeof bad, &v), -1);
    /* a varint that never ends */
    uint8_t endless[12];
    memset(endless, 0xff, sizeof endless);
    p = endless;
    assert_int_equal(sy_attr_unpack(&p, endless + sizeof endless, &v), -1);
    /* random bytes: any answer, but within bounds */
    uint64_t x = 42;
    for (int round = 0; round < 2000; round++) {
        uint8_t r[24];
        size_t n = 1 + round % sizeof r;
        for (size_t i = 0; i < n; i++) {
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
            r[i] = (uint8_t)(x >> 56);
        }
        uint8_t *c = sy_xmalloc(n);
        memcpy(c, r, n);
        p = c;
        while (sy_attr_unpack(&p, c + n, &v) > 0)
            assert_true(p <= c + n);
        free(c);
    }
    json_decref(a);
    sy_buf_free(&b);
    sy_attr_set_release(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_number_values_are_exact),
        cmocka_unit_test(test_other_types),
        cmocka_unit_test(test_dates_round_trip),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_pack_round_trip),
        cmocka_unit_test(test_unpack_refuses_damage),
    };
    return cmocka_run_group_tests_name("attr_schema_and_values", tests, NULL, NULL);
}

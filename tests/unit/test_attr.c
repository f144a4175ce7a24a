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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_number_values_are_exact),
        cmocka_unit_test(test_other_types),
        cmocka_unit_test(test_dates_round_trip),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests_name("attr_schema_and_values", tests, NULL, NULL);
}

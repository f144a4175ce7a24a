/* test_ingest.c — the checks of event batches and customer records
 * (src/ingest.c), one case per problem the fuzz targets found. */
#include "testutil.h"

#include "ingest.h"

#include <sodium.h>

#define NOW 1795400000000LL

static sy_pii_keys test_keys(void)
{
    sy_pii_keys k;
    memset(k.enc, 0x11, sizeof k.enc);
    memset(k.lookup, 0x22, sizeof k.lookup);
    return k;
}

static json_t *load(const char *text)
{
    json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
    assert_non_null(j);
    return j;
}

/* A refused event holds nothing: the handler reuses its slot for the next
 * event, so props checked before another field failed must not be kept
 * (they leaked, found by fuzz_events). */
static void test_event_refused_keeps_nothing(void **state)
{
    sy_pii_keys k = test_keys();
    json_t *o = load("{\"event_id\":\"e1\",\"customer_no\":\"C1\",\"name\":\"login\","
                     "\"ts\":\"yesterday\",\"props\":{\"product\":\"WM001\"}}");
    json_t *errors = json_array();
    sy_event_in e;
    assert_false(sy_event_parse(&k, "t1", NOW, o, 3, &e, errors));
    assert_null(e.props);
    assert_null(e.event_id);
    assert_null(e.name);
    assert_null(e.customer_no);
    assert_int_equal(json_array_size(errors), 1);
    json_t *err = json_array_get(errors, 0);
    assert_int_equal(json_integer_value(json_object_get(err, "index")), 3);
    assert_string_equal(json_string_value(json_object_get(err, "field")), "/ts");
    json_decref(errors);
    json_decref(o);
    /* a missing id is said to be missing */
    o = load("{\"customer_no\":\"C1\",\"name\":\"login\",\"ts\":1}");
    errors = json_array();
    assert_false(sy_event_parse(&k, "t1", NOW, o, 0, &e, errors));
    err = json_array_get(errors, 0);
    assert_string_equal(json_string_value(json_object_get(err, "field")), "/event_id");
    assert_non_null(strstr(json_string_value(json_object_get(err, "detail")), "is required"));
    json_decref(errors);
    json_decref(o);
}

/* A line that is not JSON is refused with a detail a JSON answer can carry,
 * even when jansson quotes bytes that are not UTF-8 (found by
 * fuzz_customers: the import's error entry could not be built). */
static void test_bad_line_detail_is_utf8(void **state)
{
    (void)state;
    static const char line[] = "{\"customer_no\":\"I1\",\"aum\\\xd8\xa8\xc5\xfd\x7f";
    sy_customer_err e;
    assert_null(sy_customer_line_load(line, sizeof line - 1, &e));
    assert_string_equal(e.type, "invalid-json");
    json_t *d = json_string(e.detail);
    assert_non_null(d);
    json_decref(d);
}

/* The field of an unknown member is a JSON pointer to it: '~' and '/' in its
 * name are escaped as "~0" and "~1" (RFC 6901; "/~vent_id" was found by
 * fuzz_events). */
static void test_field_pointer_escapes(void **state)
{
    sy_pii_keys k = test_keys();
    json_t *o = load("{\"event_id\":\"e1\",\"customer_no\":\"C1\",\"name\":\"login\","
                     "\"ts\":1795400000000,\"~vent_id\":1}");
    json_t *errors = json_array();
    sy_event_in e;
    assert_false(sy_event_parse(&k, "t1", NOW, o, 0, &e, errors));
    assert_int_equal(json_array_size(errors), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(errors, 0), "field")),
                        "/~0vent_id");
    json_decref(o);
    json_decref(errors);

    sy_attr_set none = {0};
    static const struct {
        const char *body, *field;
    } cases[] = {
        {"{\"a/b\":1}", "/a~1b"},
        {"{\"attributes\":{\"x/~y\":1}}", "/attributes/x~1~0y"},
        {"{\"pii\":{\"e/mail\":\"a@b.c\"}}", "/pii/e~1mail"},
    };
    for (size_t i = 0; i < SY_TEST_LEN(cases); i++) {
        json_t *body = load(cases[i].body);
        sy_customer_in w;
        sy_customer_err err;
        assert_false(sy_customer_parse(&k, &none, "t1", "C1", body, NULL, &w, &err));
        assert_string_equal(err.field, cases[i].field);
        sy_customer_in_clear(&w);
        json_decref(body);
    }
}

/* A long member name is cut at a character boundary: the field and the
 * detail quoting the name stay valid UTF-8, so the error is not lost (an
 * event's error entry could not be built; a PUT's problem lost its field). */
static void test_field_long_name_cut_whole_characters(void **state)
{
    sy_pii_keys k = test_keys();
    char key[200];
    memset(key, 'a', 69);
    snprintf(key + 69, sizeof key - 69, "%s", "张张张");
    json_t *o = load("{\"event_id\":\"e1\",\"customer_no\":\"C1\",\"name\":\"login\","
                     "\"ts\":1795400000000}");
    json_object_set_new(o, key, json_true());
    json_t *errors = json_array();
    sy_event_in e;
    assert_false(sy_event_parse(&k, "t1", NOW, o, 0, &e, errors));
    assert_int_equal(json_array_size(errors), 1);
    const char *field = json_string_value(json_object_get(json_array_get(errors, 0), "field"));
    assert_non_null(field);
    assert_int_equal(strlen(field), 70);
    assert_int_equal(strncmp(field, "/aaa", 4), 0);
    json_decref(o);
    json_decref(errors);

    sy_attr_set none = {0};
    for (size_t pre = 40; pre < 82; pre++) {
        memset(key, 'b', pre);
        snprintf(key + pre, sizeof key - pre, "%s", "张张张");
        json_t *body = json_object(), *attrs = json_object(), *pii = json_object();
        json_object_set_new(body, key, json_true());
        sy_customer_in w;
        sy_customer_err err;
        assert_false(sy_customer_parse(&k, &none, "t1", "C1", body, NULL, &w, &err));
        json_t *f = json_string(err.field), *d = json_string(err.detail);
        assert_non_null(f);
        assert_non_null(d);
        json_decref(f);
        json_decref(d);
        sy_customer_in_clear(&w);
        json_object_clear(body);
        json_object_set_new(attrs, key, json_true());
        json_object_set_new(body, "attributes", attrs);
        assert_false(sy_customer_parse(&k, &none, "t1", "C1", body, NULL, &w, &err));
        assert_non_null(f = json_string(err.field));
        assert_non_null(d = json_string(err.detail));
        json_decref(f);
        json_decref(d);
        sy_customer_in_clear(&w);
        json_object_clear(body);
        json_object_set_new(pii, key, json_true());
        json_object_set_new(body, "pii", pii);
        assert_false(sy_customer_parse(&k, &none, "t1", "C1", body, NULL, &w, &err));
        assert_non_null(f = json_string(err.field));
        json_decref(f);
        sy_customer_in_clear(&w);
        json_decref(body);
    }
}

/* A name is printable text: C0 and C1 control characters (U+0000..U+001F,
 * U+007F..U+009F) are refused, other characters of any script kept. */
static void test_name_refuses_control_characters(void **state)
{
    (void)state;
    /* JSON escapes, decoded by jansson */
    static const char *const bad[] = {"Li\\tLei", "Li\\u007fLei", "Li\\u0085Lei", "Li\\u009fLei"};
    static const char *const good[] = {"Li Lei", "\\u674e\\u96f7", "Zo\\u00eb", "Li\\u00a0Lei"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char text[64];
        snprintf(text, sizeof text, "{\"name\": \"%s\"}", bad[i]);
        json_t *in = load(text), *out = json_object();
        sy_customer_err e = {0};
        assert_false(sy_customer_pii_parse(in, out, &e));
        assert_int_equal(e.status, 400);
        assert_string_equal(e.field, "/pii/name");
        json_decref(in);
        json_decref(out);
    }
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        char text[64];
        snprintf(text, sizeof text, "{\"name\": \"%s\"}", good[i]);
        json_t *in = load(text), *out = json_object();
        sy_customer_err e = {0};
        assert_true(sy_customer_pii_parse(in, out, &e));
        json_decref(in);
        json_decref(out);
    }
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_event_refused_keeps_nothing),
        cmocka_unit_test(test_bad_line_detail_is_utf8),
        cmocka_unit_test(test_field_pointer_escapes),
        cmocka_unit_test(test_field_long_name_cut_whole_characters),
        cmocka_unit_test(test_name_refuses_control_characters),
    };
    return cmocka_run_group_tests_name("ingest", tests, NULL, NULL);
}

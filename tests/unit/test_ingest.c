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
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_event_refused_keeps_nothing),
    };
    return cmocka_run_group_tests_name("ingest", tests, NULL, NULL);
}

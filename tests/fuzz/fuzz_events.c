/* fuzz_events.c — libFuzzer target for the body of POST /v1/events: the
 * reading of a JSON array or of NDJSON lines (sy_events_load) and the check
 * of every event in it (sy_event_parse), as api_events.c runs them.
 *
 * The first byte's low bit picks NDJSON (1) or a JSON array (0); the rest is
 * the body.  Invariants checked: a refused body has a problem type and a
 * detail; a loaded batch holds 1 to 10,000 events; a refused event adds at
 * least one error (until 100 are listed), each with the event's index in
 * the batch, a field that is a JSON pointer ("" or "/...", escaped as RFC
 * 6901 says) whose parent is in the event, and a detail; an accepted event's
 * fields are within the documented limits (docs/openapi.yaml, EventIn):
 * event_id 1-128 visible ASCII, name [a-z][a-z0-9_]{0,63}, one of a valid
 * customer number or a known identity type with its key, ts from 2000 until
 * a day after now, dwell_ms absent (-1) or 0-86,400,000, props absent or an
 * object of at most 4,096 bytes equal to the one sent; nothing leaks
 * (LeakSanitizer) — the batch's slots are reused the way the handler reuses
 * them — or crashes.
 * Build: make fuzz; run: build/fuzz/fuzz_events tests/fuzz/corpus/events */
#include "customer.h"
#include "fuzz_json.h"
#include "ingest.h"
#include "util.h"

#include <assert.h>
#include <jansson.h>
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NOW 1795400000000LL /* 2026-11-24, a fixed clock */

static bool name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 64 || !(s[0] >= 'a' && s[0] <= 'z'))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return false;
    return true;
}

static void accepted(json_t *o, const sy_event_in *e)
{
    json_t *id = json_object_get(o, "event_id");
    size_t n = strlen(e->event_id);
    assert(n >= 1 && n <= 128 && n == json_string_length(id));
    for (size_t i = 0; i < n; i++)
        assert(e->event_id[i] >= 0x21 && e->event_id[i] <= 0x7e);
    assert(!strcmp(e->event_id, json_string_value(id)));
    assert(name_ok(e->name));
    assert(!strcmp(e->name, json_string_value(json_object_get(o, "name"))));
    if (e->customer_no) {
        assert(!json_object_get(o, "identity"));
        assert(sy_customer_no_valid(e->customer_no) && strlen(e->customer_no) <= 64);
    } else {
        assert(!json_object_get(o, "customer_no"));
        assert(sy_identity_type_valid(e->id_type));
        assert(e->id_key[0] != '\0');
    }
    assert(e->ts >= SY_EVENT_EARLIEST_TS && e->ts <= NOW + SY_EVENT_FUTURE_MS);
    json_t *dw = json_object_get(o, "dwell_ms");
    if (!dw || json_is_null(dw))
        assert(e->dwell_ms == -1);
    else
        assert(e->dwell_ms >= 0 && e->dwell_ms <= 86400000 &&
               e->dwell_ms == json_integer_value(dw));
    json_t *props = json_object_get(o, "props");
    if (!props || json_is_null(props)) {
        assert(e->props == NULL);
    } else {
        assert(e->props && strlen(e->props) <= 4096);
        json_t *back = json_loads(e->props, 0, NULL);
        assert(json_is_object(back) && json_equal(back, props));
        json_decref(back);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static sy_pii_keys keys;
    static bool init;
    if (!init) {
        if (sodium_init() < 0)
            abort();
        memset(keys.enc, 0x11, sizeof keys.enc);
        memset(keys.lookup, 0x22, sizeof keys.lookup);
        init = true;
    }
    if (size < 1)
        return 0;
    bool ndjson = data[0] & 1;
    json_t *items;
    const char *type;
    char detail[512];
    if (!sy_events_load((const char *)data + 1, size - 1, ndjson, &items, &type, detail,
                        sizeof detail)) {
        assert(!strcmp(type, "invalid-json") || !strcmp(type, "validation"));
        assert(detail[0] != '\0');
        return 0;
    }
    size_t n = json_array_size(items);
    assert(n >= 1 && n <= SY_EVENTS_MAX);
    /* As the handler: accepted events fill the slots in order, a refused
     * one's slot is used again by the next event. */
    sy_event_in *ev = sy_xcalloc(n, sizeof *ev);
    size_t nok = 0;
    json_t *errors = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_array_get(items, i);
        size_t before = json_array_size(errors);
        if (sy_event_parse(&keys, "t1", NOW, o, i, &ev[nok], errors)) {
            assert(json_array_size(errors) == before);
            accepted(o, &ev[nok]);
            nok++;
            continue;
        }
        size_t after = json_array_size(errors);
        assert(after > before || before == SY_EVENT_ERRORS_SHOWN);
        assert(after <= SY_EVENT_ERRORS_SHOWN);
        for (size_t j = before; j < after; j++) {
            json_t *err = json_array_get(errors, j);
            assert(json_integer_value(json_object_get(err, "index")) == (json_int_t)i);
            fz_field_ok(o, json_string_value(json_object_get(err, "field")));
            const char *d = json_string_value(json_object_get(err, "detail"));
            assert(d && d[0]);
        }
    }
    for (size_t i = 0; i < nok; i++)
        sy_event_in_clear(&ev[i]);
    free(ev);
    json_decref(errors);
    json_decref(items);
    return 0;
}

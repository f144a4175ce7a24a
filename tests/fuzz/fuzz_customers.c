/* fuzz_customers.c — libFuzzer target for the customer records clients
 * send: the body of PUT /v1/customers/{customer_no} and the NDJSON lines of
 * POST /v1/customers:import, checked by sy_customer_parse (attributes
 * against the tenant's schema, personal data, identities) as
 * api_customers.c runs it.
 *
 * The schema is the bank template (sy_attr_install_template, as every new
 * tenant gets it) plus a number attribute `score` (scale 2), read back from
 * a temporary store once; the data keys are a fixed test key.  The first
 * byte's low bit picks an import (1: the rest is the NDJSON body) or a PUT
 * (0: the rest is the customer number, a '\n', then the body).
 *
 * Invariants checked: a refusal is a 400 validation (invalid-json for an
 * import line that is not an object) whose field is a JSON pointer into the
 * record ("" or "/...", escaped as RFC 6901 says, its parent in the record)
 * — or "customer_no" for the PUT's path parameter — and whose field and
 * detail are valid UTF-8, so the reply (or the import's error entry, with
 * its 1-based line number) carries them; an accepted record's customer
 * number is valid, its attribute values are in the schema and canonical
 * (checking one again gives it back), its personal data holds a name of 1
 * to 50 characters, a phone of 6 to 20 digits and a valid ID number, its
 * identities are at most 16 of known types; a record accepted once is
 * accepted again, with the same result, when re-encoded (other key order,
 * \u escapes) and when rebuilt from its canonical values; nothing leaks
 * (LeakSanitizer) or crashes.
 * Build: make fuzz; run: build/fuzz/fuzz_customers tests/fuzz/corpus/customers */
#include "attr.h"
#include "customer.h"
#include "fuzz_json.h"
#include "ingest.h"
#include "store.h"
#include "tenant.h"
#include "util.h"

#include <assert.h>
#include <jansson.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static sy_pii_keys keys;
static sy_attr_set *schema;

/* The bank template and `score`, through a store in a temporary directory. */
static void load_schema(void)
{
    char dir[] = "/tmp/siyu-fuzz-XXXXXX", path[64], err[256] = "";
    if (!mkdtemp(dir))
        abort();
    snprintf(path, sizeof path, "%s/siyu.db", dir);
    sy_store_opts o = {.path = path, .readers = 1, .sync = SY_SYNC_NORMAL};
    sy_store *s = NULL;
    int applied;
    if (sy_store_open(&o, &s, err, sizeof err) != SY_OK ||
        sy_store_migrate(s, &applied, err, sizeof err) != SY_OK) {
        fprintf(stderr, "store: %s\n", err);
        abort();
    }
    sy_conn *c = sy_store_write_conn(s);
    json_t *score = json_pack("{s:s, s:s, s:i}", "name", "score", "type", "number", "scale", 2);
    sy_attr_def d;
    const char *field;
    if (sy_conn_begin(c) != SY_OK ||
        sy_tenant_create(c, "t1", "Fuzz Bank", "Asia/Shanghai", 1795400000000LL) != SY_OK ||
        !sy_attr_def_parse(score, &d, &field, err, sizeof err) ||
        sy_attr_insert(c, "t1", &d, 1795400000000LL) != SY_OK || sy_conn_commit(c) != SY_OK ||
        sy_attr_load(c, "t1", &schema) != SY_OK)
        abort();
    sy_attr_def_clear(&d);
    json_decref(score);
    assert(sy_attr_find(schema, "risk_level") && sy_attr_find(schema, "score"));
    sy_store_close(s);
    char files[3][80];
    snprintf(files[0], sizeof files[0], "%s", path);
    snprintf(files[1], sizeof files[1], "%s-wal", path);
    snprintf(files[2], sizeof files[2], "%s-shm", path);
    for (int i = 0; i < 3; i++)
        unlink(files[i]);
    rmdir(dir);
}

static bool digits(const char *s, size_t lo, size_t hi)
{
    size_t n = strlen(s);
    if (n < lo || n > hi)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

/* What an accepted record holds is within the documented limits. */
static void accepted(json_t *body, const char *no, const sy_customer_in *w)
{
    assert(sy_customer_no_valid(no) && w->customer_no == no);
    const char *key;
    json_t *v;
    json_object_foreach (w->set, key, v) {
        const sy_attr_def *d = sy_attr_find(schema, key);
        json_t *again = NULL;
        char err[256];
        assert(d && sy_attr_check(d, v, &again, err, sizeof err));
        assert(json_equal(again, v));
        json_decref(again);
    }
    size_t i;
    json_array_foreach (w->unset, i, v) {
        assert(sy_attr_find(schema, json_string_value(v)));
        assert(json_is_null(
            json_object_get(json_object_get(body, "attributes"), json_string_value(v))));
    }
    json_object_foreach (w->pii, key, v) {
        if (json_is_null(v))
            continue;
        const char *s = json_string_value(v);
        assert(s);
        if (!strcmp(key, "name")) {
            size_t chars = 0;
            for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
                assert(*p >= 0x20 && *p != 0x7f);
                chars += (*p & 0xC0) != 0x80;
            }
            assert(chars >= 1 && chars <= 50);
        } else if (!strcmp(key, "phone")) {
            assert(digits(s, 6, 20));
        } else {
            assert(!strcmp(key, "id_number") && sy_id_number_valid(s));
        }
    }
    assert(w->nids >= 0 && w->nids <= SY_CUSTOMER_IDENTITIES_MAX);
    assert((size_t)w->nids == json_array_size(json_object_get(body, "identities")));
    for (int j = 0; j < w->nids; j++) {
        assert(sy_identity_type_valid(w->ids[j].type));
        assert(w->ids[j].key[0] != '\0');
    }
}

static void same(const sy_customer_in *a, const sy_customer_in *b)
{
    assert(json_equal(a->set, b->set));
    assert(json_equal(a->unset, b->unset));
    assert(json_equal(a->pii, b->pii));
    assert(a->nids == b->nids);
    assert(memcmp(a->ids, b->ids, (size_t)a->nids * sizeof a->ids[0]) == 0);
}

/* Checks body again, as text with other flags, and expects w's result. */
static void again(json_t *body, const char *no, const char *extra, const sy_customer_in *w)
{
    char *text = json_dumps(body, JSON_ENSURE_ASCII | JSON_SORT_KEYS | JSON_INDENT(1));
    assert(text);
    json_error_t je;
    json_t *back = json_loads(text, JSON_REJECT_DUPLICATES, &je);
    assert(json_is_object(back));
    sy_customer_in w2;
    sy_customer_err e2;
    if (!sy_customer_parse(&keys, schema, "t1", no, back, extra, &w2, &e2)) {
        fprintf(stderr, "refused when re-encoded: %s %s\n%s\n", e2.field, e2.detail, text);
        abort();
    }
    same(w, &w2);
    sy_customer_in_clear(&w2);
    json_decref(back);
    free(text);
}

/* Rebuilds the record from its canonical values: it is accepted as is. */
static void canonical(json_t *body, const char *no, const char *extra, const sy_customer_in *w)
{
    json_t *attrs = json_deep_copy(w->set), *v;
    size_t i;
    json_array_foreach (w->unset, i, v)
        json_object_set_new(attrs, json_string_value(v), json_null());
    json_t *b = json_pack("{s:o, s:O}", "attributes", attrs, "pii", w->pii);
    json_t *ids = json_object_get(body, "identities");
    if (ids)
        json_object_set(b, "identities", ids);
    if (extra && json_object_get(body, extra))
        json_object_set(b, extra, json_object_get(body, extra));
    sy_customer_in w2;
    sy_customer_err e2;
    if (!sy_customer_parse(&keys, schema, "t1", no, b, extra, &w2, &e2)) {
        char *text = json_dumps(b, JSON_COMPACT);
        fprintf(stderr, "canonical form refused: %s %s\n%s\n", e2.field, e2.detail, text);
        abort();
    }
    same(w, &w2);
    sy_customer_in_clear(&w2);
    json_decref(b);
}

/* One record: body of a PUT (extra NULL) or an import line. */
static void record(const char *no, json_t *body, const char *extra, size_t line)
{
    sy_customer_in w;
    sy_customer_err e;
    if (!sy_customer_parse(&keys, schema, "t1", no, body, extra, &w, &e)) {
        assert(e.status == 400 && !strcmp(e.type, "validation"));
        assert(e.detail[0] && fz_utf8_valid(e.detail));
        if (!extra && !strcmp(e.field, "customer_no"))
            assert(!sy_customer_no_valid(no));
        else
            fz_field_ok(body, e.field);
        /* the import's error entry, as import_error() builds it */
        json_t *entry = json_pack("{s:I, s:s, s:s}", "line", (json_int_t)line, "field", e.field,
                                  "detail", e.detail);
        assert(entry);
        json_decref(entry);
        sy_customer_in_clear(&w);
        return;
    }
    accepted(body, no, &w);
    again(body, no, extra, &w);
    canonical(body, no, extra, &w);
    sy_customer_in_clear(&w);
}

static void put(const char *data, size_t size)
{
    const char *nl = memchr(data, '\n', size);
    if (!nl)
        return;
    char *no = sy_xstrndup(data, (size_t)(nl - data));
    size_t len = size - (size_t)(nl + 1 - data);
    /* as sy_req_json_object() reads a body */
    json_t *body = len ? json_loadb(nl + 1, len, JSON_REJECT_DUPLICATES, NULL) : NULL;
    if (json_is_object(body))
        record(no, body, NULL, 0);
    json_decref(body);
    free(no);
}

static void import(const char *data, size_t size)
{
    sy_ndjson it;
    const char *text;
    size_t n, line, prev = 0;
    sy_ndjson_init(&it, data, size);
    while (sy_ndjson_next(&it, &text, &n, &line)) {
        assert(line > prev && text >= data && text + n <= data + size && !memchr(text, '\n', n));
        prev = line;
        sy_customer_err e;
        json_t *o = sy_customer_line_load(text, n, &e);
        if (!o) {
            assert(e.status == 400 && !strcmp(e.type, "invalid-json") && e.field[0] == '\0');
            json_t *entry = json_pack("{s:I, s:s, s:s}", "line", (json_int_t)line, "field", e.field,
                                      "detail", e.detail);
            assert(entry);
            json_decref(entry);
            continue;
        }
        const char *no = json_string_value(json_object_get(o, "customer_no"));
        char *copy = sy_xstrdup(no ? no : "");
        record(copy, o, "customer_no", line);
        free(copy);
        json_decref(o);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!schema) {
        if (sodium_init() < 0)
            abort();
        memset(keys.enc, 0x11, sizeof keys.enc);
        memset(keys.lookup, 0x22, sizeof keys.lookup);
        sy_log_set_level(SY_LOG_ERROR);
        load_schema();
    }
    if (size < 1)
        return 0;
    if (data[0] & 1)
        import((const char *)data + 1, size - 1);
    else
        put((const char *)data + 1, size - 1);
    return 0;
}

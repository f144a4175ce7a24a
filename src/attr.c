/* attr.c — attribute definitions, value checking, the bank template and
 * the per-tenant schema cache. */
#include "attr.h"
#include "util.h"
#include "validate.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const k_type_names[] = {"enum", "integer", "number", "date", "bool", "string"};

const char *sy_attr_type_name(sy_attr_type t)
{
    return (size_t)t < SY_ARRAY_LEN(k_type_names) ? k_type_names[t] : "?";
}

bool sy_attr_type_parse(const char *s, sy_attr_type *out)
{
    for (size_t i = 0; i < SY_ARRAY_LEN(k_type_names); i++)
        if (!strcmp(s, k_type_names[i])) {
            *out = (sy_attr_type)i;
            return true;
        }
    return false;
}

bool sy_attr_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n < 1 || n > SY_ATTR_NAME_MAX || name[0] < 'a' || name[0] > 'z')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            return false;
    }
    return true;
}

const sy_attr_def *sy_attr_find(const sy_attr_set *s, const char *name)
{
    if (s && s->sorted) {
        int lo = 0, hi = s->n - 1;
        while (lo <= hi) {
            int mid = lo + (hi - lo) / 2, c = strcmp(s->defs[mid].name, name);
            if (!c)
                return &s->defs[mid];
            if (c < 0)
                lo = mid + 1;
            else
                hi = mid - 1;
        }
        return NULL;
    }
    for (int i = 0; s && i < s->n; i++)
        if (!strcmp(s->defs[i].name, name))
            return &s->defs[i];
    return NULL;
}

int sy_attr_enum_index(const sy_attr_def *d, const char *value)
{
    for (int i = 0; i < d->nenum; i++)
        if (!strcmp(d->enum_values[i], value))
            return i;
    return -1;
}

static bool text_ok(const char *s, size_t max_chars)
{
    size_t chars = sy_utf8_len(s);
    if (chars < 1 || chars > max_chars)
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return false;
    return true;
}

static const int64_t k_pow10[] = {1, 10, 100, 1000, 10000, 100000, 1000000};

/* "-123.45" with at most scale decimals -> -12345 (scale 2). */
static bool parse_decimal(const char *s, int scale, int64_t *out)
{
    bool neg = *s == '-';
    const char *p = s + neg;
    if (*p < '0' || *p > '9')
        return false;
    int64_t v = 0;
    int frac = -1;
    for (; *p; p++) {
        if (*p == '.' && frac < 0) {
            frac = 0;
            if (p[1] < '0' || p[1] > '9')
                return false;
            continue;
        }
        if (*p < '0' || *p > '9')
            return false;
        if (frac >= 0 && ++frac > scale)
            return false;
        if (v > (INT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (*p - '0');
    }
    int pad = scale - (frac < 0 ? 0 : frac);
    if (v > INT64_MAX / k_pow10[pad])
        return false;
    v *= k_pow10[pad];
    *out = neg ? -v : v;
    return true;
}

/* The canonical text of a scaled decimal: 12345, scale 2 -> "123.45". */
static void format_decimal(int64_t v, int scale, char *out, size_t n)
{
    if (scale == 0) {
        snprintf(out, n, "%lld", (long long)v);
        return;
    }
    bool neg = v < 0;
    uint64_t u = neg ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    uint64_t p = (uint64_t)k_pow10[scale];
    snprintf(out, n, "%s%llu.%0*llu", neg ? "-" : "", (unsigned long long)(u / p), scale,
             (unsigned long long)(u % p));
}

bool sy_attr_check(const sy_attr_def *d, json_t *v, json_t **out, char *err, size_t errlen)
{
    *out = NULL;
    switch (d->type) {
    case SY_ATTR_ENUM:
        if (json_is_string(v) && sy_attr_enum_index(d, json_string_value(v)) >= 0) {
            *out = json_incref(v);
            return true;
        }
        {
            /* all of them, as the segment parser lists them, when they fit */
            int n = snprintf(err, errlen, "'%s' must be one of its enum values (", d->name);
            for (int k = 0; k < d->nenum && n > 0 && (size_t)n < errlen; k++)
                n += snprintf(err + n, errlen - (size_t)n, "%s'%s'", k ? ", " : "",
                              d->enum_values[k]);
            if (n > 0 && (size_t)n < errlen)
                snprintf(err + n, errlen - (size_t)n, ")");
        }
        return false;
    case SY_ATTR_INTEGER:
        if (json_is_integer(v)) {
            *out = json_incref(v);
            return true;
        }
        snprintf(err, errlen, "'%s' must be an integer%s%s", d->name, d->unit[0] ? " in " : "",
                 d->unit);
        return false;
    case SY_ATTR_NUMBER: {
        int64_t scaled;
        bool ok = false;
        if (json_is_integer(v)) {
            json_int_t i = json_integer_value(v);
            ok = i <= INT64_MAX / k_pow10[d->scale] && i >= INT64_MIN / k_pow10[d->scale];
            scaled = ok ? i * k_pow10[d->scale] : 0;
        } else if (json_is_string(v)) {
            ok = parse_decimal(json_string_value(v), d->scale, &scaled);
        } else if (json_is_real(v)) {
            /* A JSON number with a fraction: exact only if it has no more
             * decimals than the scale. */
            double x = json_real_value(v) * (double)k_pow10[d->scale];
            double r = nearbyint(x);
            ok = isfinite(x) && fabs(x) < 9e15 && fabs(x - r) < 1e-6 * fmax(1.0, fabs(x));
            scaled = ok ? (int64_t)r : 0;
        }
        if (!ok) {
            snprintf(err, errlen, "'%s' must be a number with at most %d decimals", d->name,
                     d->scale);
            return false;
        }
        char text[32];
        format_decimal(scaled, d->scale, text, sizeof text);
        *out = json_string(text);
        return true;
    }
    case SY_ATTR_DATE: {
        int64_t days;
        if (json_is_string(v) && sy_parse_date(json_string_value(v), &days)) {
            *out = json_incref(v);
            return true;
        }
        snprintf(err, errlen, "'%s' must be a date YYYY-MM-DD", d->name);
        return false;
    }
    case SY_ATTR_BOOL:
        if (json_is_boolean(v)) {
            *out = json_incref(v);
            return true;
        }
        snprintf(err, errlen, "'%s' must be true or false", d->name);
        return false;
    case SY_ATTR_STRING:
        if (json_is_string(v) && strlen(json_string_value(v)) == json_string_length(v) &&
            text_ok(json_string_value(v), SY_ATTR_STRING_MAX)) {
            *out = json_incref(v);
            return true;
        }
        snprintf(err, errlen,
                 "'%s' must be a string of 1 to %d characters without control characters", d->name,
                 SY_ATTR_STRING_MAX);
        return false;
    }
    snprintf(err, errlen, "'%s' has an unknown type", d->name);
    return false;
}

json_t *sy_attr_def_json(const sy_attr_def *d)
{
    json_t *o = json_pack("{s:s, s:s, s:s}", "name", d->name, "type", sy_attr_type_name(d->type),
                          "description", d->description ? d->description : "");
    if (d->type == SY_ATTR_ENUM) {
        json_t *vals = json_array();
        for (int i = 0; i < d->nenum; i++)
            json_array_append_new(vals, json_string(d->enum_values[i]));
        json_object_set_new(o, "values", vals);
    }
    if (d->type == SY_ATTR_NUMBER)
        json_object_set_new(o, "scale", json_integer(d->scale));
    if (d->unit[0])
        json_object_set_new(o, "unit", json_string(d->unit));
    return o;
}

void sy_attr_def_clear(sy_attr_def *d)
{
    for (int i = 0; i < d->nenum; i++)
        free(d->enum_values[i]);
    free(d->enum_values);
    free(d->description);
    memset(d, 0, sizeof *d);
}

#define FAIL(f, ...)                                                                               \
    do {                                                                                           \
        *field = (f);                                                                              \
        snprintf(err, errlen, __VA_ARGS__);                                                        \
        goto fail;                                                                                 \
    } while (0)

bool sy_attr_def_parse(json_t *body, sy_attr_def *d, const char **field, char *err, size_t errlen)
{
    memset(d, 0, sizeof *d);
    static const char *const known[] = {"name", "type", "values", "scale", "unit", "description"};
    const char *key;
    json_t *v;
    json_object_foreach (body, key, v) {
        bool ok = false;
        for (size_t i = 0; i < SY_ARRAY_LEN(known) && !ok; i++)
            ok = !strcmp(key, known[i]);
        if (!ok) {
            static char ptr[80];
            snprintf(ptr, sizeof ptr, "/%.70s", key);
            FAIL(ptr, "unknown field '%.70s'", key);
        }
    }
    v = json_object_get(body, "name");
    if (!json_is_string(v) || !sy_attr_name_valid(json_string_value(v)))
        FAIL("/name", "'name' must match [a-z][a-z0-9_]* and be at most %d characters",
             SY_ATTR_NAME_MAX);
    snprintf(d->name, sizeof d->name, "%s", json_string_value(v));
    v = json_object_get(body, "type");
    if (!json_is_string(v) || !sy_attr_type_parse(json_string_value(v), &d->type))
        FAIL("/type", "'type' must be one of enum, integer, number, date, bool, string");
    json_t *vals = json_object_get(body, "values");
    if (d->type == SY_ATTR_ENUM) {
        size_t n = json_array_size(vals);
        if (!json_is_array(vals) || n < 1 || n > SY_ATTR_ENUM_MAX)
            FAIL("/values", "an enum needs 'values': an array of 1 to %d strings",
                 SY_ATTR_ENUM_MAX);
        d->enum_values = sy_xcalloc(n, sizeof *d->enum_values);
        for (size_t i = 0; i < n; i++) {
            json_t *e = json_array_get(vals, i);
            if (!json_is_string(e) || !text_ok(json_string_value(e), 64))
                FAIL("/values", "enum value %zu must be a string of 1 to 64 characters", i);
            for (int j = 0; j < d->nenum; j++)
                if (!strcmp(d->enum_values[j], json_string_value(e)))
                    FAIL("/values", "enum value '%s' appears twice", d->enum_values[j]);
            d->enum_values[d->nenum++] = sy_xstrdup(json_string_value(e));
        }
    } else if (vals) {
        FAIL("/values", "'values' is only for enum attributes");
    }
    json_t *sc = json_object_get(body, "scale");
    if (d->type == SY_ATTR_NUMBER) {
        if (!sc) {
            d->scale = 2;
        } else if (!json_is_integer(sc) || json_integer_value(sc) < 0 ||
                   json_integer_value(sc) > SY_ATTR_SCALE_MAX) {
            FAIL("/scale", "'scale' must be an integer from 0 to %d", SY_ATTR_SCALE_MAX);
        } else {
            d->scale = (int)json_integer_value(sc);
        }
    } else if (sc) {
        FAIL("/scale", "'scale' is only for number attributes");
    }
    json_t *unit = json_object_get(body, "unit");
    if (unit) {
        if (!json_is_string(unit) || json_string_length(unit) > 16 ||
            !text_ok(json_string_value(unit), 16))
            FAIL("/unit", "'unit' must be a string of 1 to 16 characters (e.g. fen)");
        snprintf(d->unit, sizeof d->unit, "%s", json_string_value(unit));
    }
    json_t *desc = json_object_get(body, "description");
    if (desc && !(json_is_string(desc) && json_string_length(desc) <= 1000 &&
                  strlen(json_string_value(desc)) == json_string_length(desc)))
        FAIL("/description", "'description' must be a string of at most 1000 bytes");
    d->description = sy_xstrdup(desc ? json_string_value(desc) : "");
    return true;
fail:
    sy_attr_def_clear(d);
    return false;
}

bool sy_attr_numeric(const sy_attr_def *d, const json_t *v, int64_t *out)
{
    if (d->type == SY_ATTR_INTEGER && json_is_integer(v)) {
        *out = json_integer_value(v);
        return true;
    }
    return json_is_string(v) && sy_attr_numeric_text(d->type, json_string_value(v), out);
}

bool sy_attr_numeric_text(sy_attr_type type, const char *t, int64_t *out)
{
    if (type == SY_ATTR_DATE)
        return sy_parse_date(t, out);
    if (type == SY_ATTR_NUMBER) {
        /* canonical text has exactly `scale` decimals: drop the point */
        char digits[40];
        size_t o = 0;
        for (; *t && o < sizeof digits - 1; t++)
            if (*t != '.')
                digits[o++] = *t;
        if (*t)
            return false;
        digits[o] = '\0';
        return sy_parse_i64(digits, INT64_MIN, INT64_MAX, out);
    }
    return false;
}

/* ---- packed attributes ---- */

static void put_varint(sy_buf *b, uint64_t v)
{
    uint8_t tmp[10];
    size_t n = 0;
    while (v >= 0x80) {
        tmp[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    tmp[n++] = (uint8_t)v;
    sy_buf_append(b, tmp, n);
}

static bool get_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t r = 0;
    for (int shift = 0; *p < end && shift < 64; shift += 7) {
        uint8_t byte = *(*p)++;
        r |= (uint64_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80)) {
            *v = r;
            return true;
        }
    }
    return false;
}

enum { PK_INT = 0, PK_FALSE = 1, PK_TRUE = 2, PK_STR = 3 };

typedef struct pack_item {
    const sy_attr_def *d;
    json_t *v;
} pack_item;

static int pack_item_cmp(const void *a, const void *b)
{
    int x = ((const pack_item *)a)->d->ordinal, y = ((const pack_item *)b)->d->ordinal;
    return (x > y) - (x < y);
}

void sy_attr_pack(const sy_attr_set *s, const json_t *attrs, sy_buf *out)
{
    /* in the order of the ordinals, so that the same values always pack
     * to the same bytes (siyu check compares them) */
    pack_item stack[64], *items = stack;
    size_t n = 0, cap = json_object_size(attrs);
    if (cap > SY_ARRAY_LEN(stack))
        items = sy_xmalloc(cap * sizeof *items);
    const char *name;
    json_t *v;
    json_object_foreach ((json_t *)attrs, name, v) {
        const sy_attr_def *d = sy_attr_find(s, name);
        if (d && d->ordinal >= 0 && n < cap)
            items[n++] = (pack_item){d, v};
    }
    qsort(items, n, sizeof *items, pack_item_cmp);
    for (size_t k = 0; k < n; k++) {
        const sy_attr_def *d = items[k].d;
        v = items[k].v;
        uint64_t head = (uint64_t)d->ordinal << 2;
        int64_t i;
        if (d->type == SY_ATTR_INTEGER || d->type == SY_ATTR_NUMBER || d->type == SY_ATTR_DATE) {
            if (!sy_attr_numeric(d, v, &i))
                continue;
            put_varint(out, head | PK_INT);
            put_varint(out, ((uint64_t)i << 1) ^ (uint64_t)(i >> 63)); /* zigzag */
        } else if (json_is_boolean(v)) {
            put_varint(out, head | (json_is_true(v) ? PK_TRUE : PK_FALSE));
        } else if (json_is_string(v)) {
            size_t len = json_string_length(v);
            put_varint(out, head | PK_STR);
            put_varint(out, len);
            sy_buf_append(out, json_string_value(v), len + 1); /* with its NUL */
        }
    }
    if (items != stack)
        free(items);
}

int sy_attr_unpack(const uint8_t **p, const uint8_t *end, sy_attr_packed *v)
{
    uint64_t head, x;
    if (*p >= end)
        return 0;
    if (!get_varint(p, end, &head) || (head >> 2) > (uint64_t)INT32_MAX)
        return -1;
    v->ordinal = (int)(head >> 2);
    switch (head & 3) {
    case PK_INT:
        if (!get_varint(p, end, &x))
            return -1;
        v->kind = SY_PACKED_INT;
        v->i = (int64_t)(x >> 1) ^ -(int64_t)(x & 1);
        return 1;
    case PK_FALSE:
    case PK_TRUE:
        v->kind = SY_PACKED_BOOL;
        v->i = (head & 3) == PK_TRUE;
        return 1;
    default:
        if (!get_varint(p, end, &x) || x >= (uint64_t)(end - *p) || (*p)[x] != '\0')
            return -1;
        v->kind = SY_PACKED_STR;
        v->s = (const char *)*p;
        *p += x + 1;
        return 1;
    }
}

int sy_attr_insert(sy_conn *c, const char *tenant, const sy_attr_def *d, int64_t now_ms)
{
    static const char sql[] =
        "INSERT INTO attributes (tenant_id, name, type, enum_values, scale, unit, description,"
        " created_at, updated_at, ordinal) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8,"
        " (SELECT COALESCE(MAX(ordinal), -1) + 1 FROM attributes WHERE tenant_id = $1))";
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    char *vals = NULL;
    if (d->type == SY_ATTR_ENUM) {
        json_t *a = json_array();
        for (int i = 0; i < d->nenum; i++)
            json_array_append_new(a, json_string(d->enum_values[i]));
        vals = json_dumps(a, JSON_COMPACT);
        json_decref(a);
    }
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, d->name);
    sy_stmt_bind_text(st, 3, sy_attr_type_name(d->type));
    sy_stmt_bind_text(st, 4, vals);
    sy_stmt_bind_i64(st, 5, d->scale);
    sy_stmt_bind_text(st, 6, d->unit);
    sy_stmt_bind_text(st, 7, d->description ? d->description : "");
    sy_stmt_bind_i64(st, 8, now_ms);
    int rc = sy_stmt_exec(st);
    free(vals);
    return rc;
}

void sy_attr_set_release(sy_attr_set *s)
{
    if (!s || atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    for (int i = 0; i < s->n; i++)
        sy_attr_def_clear(&s->defs[i]);
    free(s->defs);
    free(s);
}

int sy_attr_load(sy_conn *c, const char *tenant, sy_attr_set **out)
{
    static const char sql[] = "SELECT name, type, enum_values, scale, unit, description, ordinal"
                              " FROM attributes WHERE tenant_id = $1 ORDER BY name";
    *out = NULL;
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_attr_set *s = sy_xcalloc(1, sizeof *s);
    atomic_init(&s->refs, 1);
    int cap = 0, rc;
    sy_stmt_bind_text(st, 1, tenant);
    while ((rc = sy_stmt_step(st)) == SY_ROW) {
        if (s->n == cap) {
            cap = cap ? cap * 2 : 16;
            s->defs = sy_xrealloc(s->defs, (size_t)cap * sizeof *s->defs);
        }
        sy_attr_def *d = &s->defs[s->n++];
        memset(d, 0, sizeof *d);
        snprintf(d->name, sizeof d->name, "%s", sy_stmt_text(st, 0));
        sy_attr_type_parse(sy_stmt_text(st, 1), &d->type);
        if (!sy_stmt_is_null(st, 2)) {
            json_t *a = json_loads(sy_stmt_text(st, 2), 0, NULL);
            size_t n = json_array_size(a);
            d->enum_values = sy_xcalloc(n ? n : 1, sizeof *d->enum_values);
            for (size_t i = 0; i < n; i++)
                if (json_is_string(json_array_get(a, i)))
                    d->enum_values[d->nenum++] =
                        sy_xstrdup(json_string_value(json_array_get(a, i)));
            json_decref(a);
        }
        d->scale = (int)sy_stmt_i64(st, 3);
        if (d->scale < 0 || d->scale > SY_ATTR_SCALE_MAX)
            d->scale = 0;
        snprintf(d->unit, sizeof d->unit, "%s", sy_stmt_text(st, 4));
        d->description = sy_xstrdup(sy_stmt_text(st, 5));
        d->ordinal = (int)sy_stmt_i64(st, 6);
    }
    sy_stmt_reset(st);
    /* ORDER BY name compares bytes, as strcmp does; check rather than trust */
    s->sorted = true;
    for (int i = 1; i < s->n; i++)
        if (strcmp(s->defs[i - 1].name, s->defs[i].name) >= 0)
            s->sorted = false;
    if (rc != SY_DONE) {
        sy_attr_set_release(s);
        return rc;
    }
    *out = s;
    return SY_OK;
}

/* The template every new tenant starts with: what a bank's customer
 * records carry and its campaigns select on. */
static const struct {
    const char *name, *type, *values, *unit, *description;
} k_template[] = {
    {"risk_level", "enum", "[\"R1\",\"R2\",\"R3\",\"R4\",\"R5\"]", "",
     "Risk tolerance from the latest suitability assessment (风险测评), R1 lowest"},
    {"risk_assessed_at", "date", NULL, "", "Date of the latest risk assessment"},
    {"aum", "integer", NULL, "fen", "Assets under management with the bank, in fen"},
    {"branch", "string", NULL, "", "Code of the customer's home branch"},
    {"city", "string", NULL, "", "City of residence"},
    {"birth_year", "integer", NULL, "", "Year of birth"},
    {"gender", "enum", "[\"M\",\"F\"]", "", "Gender"},
    {"payroll", "bool", NULL, "", "Payroll customer (代发客群): salary paid through the bank"},
    {"credit_card", "bool", NULL, "", "Holds one of the bank's credit cards"},
    {"registered_at", "date", NULL, "", "Date the customer registered in the private domain"},
    {"manager_id", "string", NULL, "", "Customer manager (客户经理) responsible"},
};

int sy_attr_install_template(sy_conn *c, const char *tenant, int64_t now_ms)
{
    for (size_t i = 0; i < SY_ARRAY_LEN(k_template); i++) {
        json_t *body = json_pack("{s:s, s:s, s:s}", "name", k_template[i].name, "type",
                                 k_template[i].type, "description", k_template[i].description);
        if (k_template[i].values)
            json_object_set_new(body, "values", json_loads(k_template[i].values, 0, NULL));
        if (k_template[i].unit[0])
            json_object_set_new(body, "unit", json_string(k_template[i].unit));
        sy_attr_def d;
        const char *field;
        char err[128];
        bool ok = sy_attr_def_parse(body, &d, &field, err, sizeof err);
        json_decref(body);
        if (!ok)
            return SY_ERR;
        int rc = sy_attr_insert(c, tenant, &d, now_ms);
        sy_attr_def_clear(&d);
        if (rc != SY_OK)
            return rc;
    }
    return SY_OK;
}

/* ---- the schema cache ---- */

#define SCHEMA_TTL_MS 1000
#define SCHEMA_SLOTS 256

typedef struct schema_slot {
    char tenant[33];
    int64_t loaded_ms;
    sy_attr_set *set;
} schema_slot;

struct sy_schemas {
    sy_store *store;
    pthread_rwlock_t lock;
    schema_slot slots[SCHEMA_SLOTS];
    uint64_t epoch; /* bumped by every forget (under lock) */
};

sy_schemas *sy_schemas_new(sy_store *s)
{
    sy_schemas *sc = sy_xcalloc(1, sizeof *sc);
    sc->store = s;
    pthread_rwlock_init(&sc->lock, NULL);
    return sc;
}

void sy_schemas_free(sy_schemas *sc)
{
    if (!sc)
        return;
    for (int i = 0; i < SCHEMA_SLOTS; i++)
        sy_attr_set_release(sc->slots[i].set);
    pthread_rwlock_destroy(&sc->lock);
    free(sc);
}

static schema_slot *schema_slot_of(sy_schemas *sc, const char *tenant)
{
    size_t h = 5381;
    for (const char *p = tenant; *p; p++)
        h = h * 33 + (unsigned char)*p;
    return &sc->slots[h & (SCHEMA_SLOTS - 1)];
}

sy_attr_set *sy_schemas_get(sy_schemas *sc, const char *tenant)
{
    schema_slot *sl = schema_slot_of(sc, tenant);
    int64_t now = sy_now_ms();
    sy_attr_set *s = NULL;
    pthread_rwlock_rdlock(&sc->lock);
    if (sl->set && now - sl->loaded_ms < SCHEMA_TTL_MS && !strcmp(sl->tenant, tenant)) {
        s = sl->set;
        atomic_fetch_add(&s->refs, 1);
    }
    uint64_t epoch = sc->epoch;
    pthread_rwlock_unlock(&sc->lock);
    if (s)
        return s;
    sy_conn *c = sy_store_acquire(sc->store);
    int rc = sy_attr_load(c, tenant, &s);
    sy_store_release(sc->store, c);
    if (rc != SY_OK)
        return NULL;
    /* cached unless a forget came since the read (it may predate the
     * change that forgot it) */
    sy_attr_set *old = NULL;
    pthread_rwlock_wrlock(&sc->lock);
    if (sc->epoch == epoch) {
        atomic_fetch_add(&s->refs, 1); /* one for the cache, one for the caller */
        old = sl->set;
        sl->set = s;
        sl->loaded_ms = now;
        snprintf(sl->tenant, sizeof sl->tenant, "%s", tenant);
    }
    pthread_rwlock_unlock(&sc->lock);
    sy_attr_set_release(old);
    return s;
}

void sy_schemas_forget(sy_schemas *sc, const char *tenant)
{
    schema_slot *sl = schema_slot_of(sc, tenant);
    sy_attr_set *old = NULL;
    pthread_rwlock_wrlock(&sc->lock);
    if (!strcmp(sl->tenant, tenant)) {
        old = sl->set;
        sl->set = NULL;
        sl->loaded_ms = 0;
    }
    sc->epoch++;
    pthread_rwlock_unlock(&sc->lock);
    sy_attr_set_release(old);
}

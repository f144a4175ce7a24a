/* attr.h — the typed attribute schema of a tenant's customers.
 *
 * Types: enum (ordered values), integer (int64; unit "fen" marks money),
 * number (exact decimal with a fixed scale, stored as an integer scaled by
 * 10^scale), date (YYYY-MM-DD), bool, string.  Values are checked against
 * the schema and brought to a canonical JSON form before they are stored.
 *
 * A tenant's schema is cached in memory (sy_schemas) for the request path;
 * like the other registries, an entry is re-read after one second and
 * dropped as soon as a change of this server commits. */
#ifndef SY_ATTR_H
#define SY_ATTR_H

#include "store.h"
#include "util.h"

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

typedef enum {
    SY_ATTR_ENUM,
    SY_ATTR_INTEGER,
    SY_ATTR_NUMBER,
    SY_ATTR_DATE,
    SY_ATTR_BOOL,
    SY_ATTR_STRING,
} sy_attr_type;

#define SY_ATTR_NAME_MAX 63
#define SY_ATTR_ENUM_MAX 256   /* values per enum */
#define SY_ATTR_STRING_MAX 256 /* characters in a string value */
#define SY_ATTR_SCALE_MAX 6
#define SY_ATTRS_PER_TENANT 1000

typedef struct sy_attr_def {
    char name[SY_ATTR_NAME_MAX + 1];
    sy_attr_type type;
    char **enum_values; /* ENUM: in order */
    int nenum;
    int scale; /* NUMBER: digits after the decimal point */
    char unit[17];
    char *description;
    int ordinal; /* 0, 1, 2 ... in the order the tenant defined them */
} sy_attr_def;

/* One tenant's schema: an immutable snapshot, shared by reference count. */
typedef struct sy_attr_set {
    sy_attr_def *defs;
    int n;
    bool sorted; /* defs in strcmp order of name (sy_attr_load's sets) */
    atomic_int refs;
} sy_attr_set;

const char *sy_attr_type_name(sy_attr_type t);
bool sy_attr_type_parse(const char *s, sy_attr_type *out);
/* [a-z][a-z0-9_]{0,62} */
bool sy_attr_name_valid(const char *name);
const sy_attr_def *sy_attr_find(const sy_attr_set *s, const char *name);
/* The position of value in an enum's order, or -1. */
int sy_attr_enum_index(const sy_attr_def *d, const char *value);

/* Checks a value against its definition.  On success *out receives the
 * canonical JSON value (a new reference) and true is returned; on failure
 * a message for the client goes to err. */
bool sy_attr_check(const sy_attr_def *d, json_t *v, json_t **out, char *err, size_t errlen);

/* The integer the index keeps for a canonical numeric value: an integer as
 * is, a number scaled by 10^scale ("12.50" at scale 2: 1250), a date as
 * days since 1970-01-01.  False for a non-numeric type or a value that is
 * not canonical. */
bool sy_attr_numeric(const sy_attr_def *d, const json_t *v, int64_t *out);
/* The same for the canonical text of a date or a number. */
bool sy_attr_numeric_text(sy_attr_type type, const char *text, int64_t *out);

/* Packed attributes: a customer's canonical attribute object in the compact
 * binary form of the customer_packed table (migration 0007), which the
 * index reads at start without parsing JSON.  An entry per attribute:
 *
 *   varint (ordinal << 2 | kind), then
 *   kind 0 (integer): zigzag varint of the index's integer (sy_attr_numeric)
 *   kind 1 (bool): nothing, the value is false;  kind 2: true
 *   kind 3 (string): varint byte length n, n bytes of UTF-8, a NUL byte
 *
 * varints are little-endian base 128.  Entries come in the order of the
 * ordinals, so equal values pack to equal bytes.  Attributes the schema does
 * not know are left out.  Appends to out, which may hold other bytes already. */
void sy_attr_pack(const sy_attr_set *s, const json_t *attrs, sy_buf *out);

typedef struct sy_attr_packed {
    int ordinal;
    enum { SY_PACKED_INT, SY_PACKED_BOOL, SY_PACKED_STR } kind;
    int64_t i;     /* INT: the value; BOOL: 0 or 1 */
    const char *s; /* STR: NUL-terminated, inside the packed bytes */
} sy_attr_packed;

/* Reads the entry at *p (before end) into v and moves *p past it.  Returns
 * 1 for an entry, 0 at the end, -1 for bytes that are not a packed record. */
int sy_attr_unpack(const uint8_t **p, const uint8_t *end, sy_attr_packed *v);

/* The definition as the API shows it. */
json_t *sy_attr_def_json(const sy_attr_def *d);
/* Parses a definition from an API body (name, type, values, scale, unit,
 * description).  On failure names the field (JSON pointer) in *field. */
bool sy_attr_def_parse(json_t *body, sy_attr_def *out, const char **field, char *err,
                       size_t errlen);
void sy_attr_def_clear(sy_attr_def *d);

int sy_attr_insert(sy_conn *c, const char *tenant, const sy_attr_def *d, int64_t now_ms);
/* Reads a tenant's schema; the caller owns the set (sy_attr_set_release). */
int sy_attr_load(sy_conn *c, const char *tenant, sy_attr_set **out);
void sy_attr_set_release(sy_attr_set *s);

/* Installs the bank template (risk_level, aum, branch, city, ...) for a new
 * tenant, inside the caller's transaction. */
int sy_attr_install_template(sy_conn *c, const char *tenant, int64_t now_ms);

/* The per-tenant schema cache. */
typedef struct sy_schemas sy_schemas;
sy_schemas *sy_schemas_new(sy_store *s);
void sy_schemas_free(sy_schemas *sc);
/* A reference to the tenant's current schema (release it), or NULL on a
 * store error. */
sy_attr_set *sy_schemas_get(sy_schemas *sc, const char *tenant);
void sy_schemas_forget(sy_schemas *sc, const char *tenant);

#endif

/* ingest.h — the checks of the bodies that bring customers and events in:
 * POST /v1/events (a JSON array, or NDJSON, of events), PUT
 * /v1/customers/{customer_no} and the lines of POST /v1/customers:import.
 *
 * They are functions of their inputs only — the body, the tenant, its
 * attribute schema, the data keys, the clock — so the handlers
 * (api_events.c, api_customers.c) and the fuzz targets
 * (tests/fuzz/fuzz_events.c, fuzz_customers.c) run the same code.  A
 * refusal names the field as a JSON pointer into the object checked ("" for
 * the whole of it), or "customer_no" for the path parameter of a PUT. */
#ifndef SY_INGEST_H
#define SY_INGEST_H

#include "attr.h"
#include "customer.h"
#include "pii.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- NDJSON ---- */

/* A walk over the lines of an NDJSON body. */
typedef struct sy_ndjson {
    const char *p, *end;
    size_t line; /* lines read so far */
} sy_ndjson;

void sy_ndjson_init(sy_ndjson *it, const char *body, size_t len);
/* The next line that is not blank (only spaces, tabs and CRs): its text
 * (not NUL-terminated, without the '\n') in *text and *n, its number
 * (1-based, counting blank lines) in *line.  False at the end. */
bool sy_ndjson_next(sy_ndjson *it, const char **text, size_t *n, size_t *line);

/* ---- events ---- */

#define SY_EVENTS_MAX 10000       /* events in a batch */
#define SY_EVENT_ERRORS_SHOWN 100 /* errors listed in a refusal */
#define SY_EVENT_ID_MAX 128       /* bytes of visible ASCII */
#define SY_EVENT_NAME_MAX 64      /* [a-z][a-z0-9_]* */
#define SY_EVENT_PROPS_MAX 4096   /* bytes of props as compact JSON */
#define SY_EVENT_DWELL_MAX (24LL * 3600 * 1000)
#define SY_EVENT_EARLIEST_TS 946684800000LL     /* 2000-01-01 */
#define SY_EVENT_FUTURE_MS (24LL * 3600 * 1000) /* clocks drift; a day ahead at most */

/* One checked event.  The strings are the event's own (free them with
 * sy_event_in_clear). */
typedef struct sy_event_in {
    char *event_id;
    char *name;
    char *customer_no; /* given, or NULL when an identity is given */
    char id_type[32];  /* identity, when customer_no is NULL */
    char id_key[SY_IDENTITY_VALUE_MAX + 1];
    int64_t ts;
    int64_t dwell_ms; /* -1: none */
    char *props;      /* compact JSON, or NULL */
} sy_event_in;

/* Reads the body of POST /v1/events — a JSON array, or NDJSON when ndjson
 * is set — into *items (a new reference): an array of 1 to SY_EVENTS_MAX
 * values, not yet checked.  On failure returns false with the problem's
 * *type ("invalid-json" or "validation") and detail. */
bool sy_events_load(const char *body, size_t len, bool ndjson, json_t **items, const char **type,
                    char *detail, size_t detail_len);

/* Checks event o, at index i of its batch, into *e, with the tenant's data
 * keys k (for a phone identity's key) and the time now (ms; ts may be at
 * most a day later).  Each problem is appended to errors as {index, field,
 * detail}.  Returns false when the event is bad; *e then holds nothing to
 * free (the handler checks the next event into the same slot). */
bool sy_event_parse(const sy_pii_keys *k, const char *tenant, int64_t now, json_t *o, size_t i,
                    sy_event_in *e, json_t *errors);
void sy_event_in_clear(sy_event_in *e);
/* Appends {index, field, detail} to errors, unless SY_EVENT_ERRORS_SHOWN
 * are there already. */
void sy_event_error_add(json_t *errors, size_t index, const char *field, const char *detail);

/* ---- customers ---- */

#define SY_CUSTOMER_IDENTITIES_MAX 16

typedef struct sy_identity_in {
    char type[32];
    char key[SY_IDENTITY_VALUE_MAX + 1]; /* sy_identity_key of the value */
} sy_identity_in;

/* One checked customer record: what a PUT or an import line changes. */
typedef struct sy_customer_in {
    const char *customer_no; /* the caller's string, not copied */
    json_t *set;             /* attribute name -> canonical value */
    json_t *unset;           /* attribute names */
    json_t *pii;             /* personal data members to set (string) or remove (null) */
    sy_identity_in ids[SY_CUSTOMER_IDENTITIES_MAX];
    int nids;
} sy_customer_in;

/* A refusal of one customer record, before it becomes a reply (PUT) or one
 * line's error (import). */
typedef struct sy_customer_err {
    int status;
    const char *type;
    char field[96];
    char detail[300];
} sy_customer_err;

void sy_customer_err_set(sy_customer_err *e, int status, const char *type, const char *field,
                         const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Checks one customer record, customer number no, body body (the body of a
 * PUT, a line of an import) against the tenant's schema, with its data keys
 * k, into *w.  extra names a member the caller allows besides attributes,
 * pii and identities (NULL for none; with it, a bad customer number is
 * named "/customer_no", without it "customer_no").  On failure returns
 * false with *e set.  Either way free *w with sy_customer_in_clear. */
bool sy_customer_parse(const sy_pii_keys *k, const sy_attr_set *schema, const char *tenant,
                       const char *no, json_t *body, const char *extra, sy_customer_in *w,
                       sy_customer_err *e);
void sy_customer_in_clear(sy_customer_in *w);
/* Checks the personal data object in (name, phone, id_number: a string,
 * or null to remove it) into out, the phone normalised. */
bool sy_customer_pii_parse(json_t *in, json_t *out, sy_customer_err *e);

/* Decodes one line of an import: a JSON object (a new reference), or NULL
 * with *e set. */
json_t *sy_customer_line_load(const char *text, size_t n, sy_customer_err *e);

#endif

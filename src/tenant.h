/* tenant.h — tenants: the banks (or bank units) whose data siyu keeps apart.
 * Every row of every table carries its tenant id. */
#ifndef SY_TENANT_H
#define SY_TENANT_H

#include "store.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define SY_DEFAULT_TIMEZONE "Asia/Shanghai"

/* A tenant id is 1-32 characters of [a-z0-9-], starting with a letter or digit. */
bool sy_tenant_id_valid(const char *id);
/* A tenant name: 1-200 characters of valid UTF-8, no control characters. */
bool sy_tenant_name_valid(const char *name);
#define SY_TENANT_NAME_MAX 200
/* An IANA time zone name known to this machine's tz database. */
bool sy_timezone_valid(const char *tz);

/* The UTC offset of an IANA time zone at a given time, in milliseconds
 * (0 for an unknown zone).  Serialised internally: it briefly switches the
 * process's TZ. */
int64_t sy_tz_offset_ms(const char *zone, int64_t at_ms);

/* Creates the tenant with the bank attribute template (attr.h). */
int sy_tenant_create(sy_conn *c, const char *id, const char *name, const char *tz, int64_t now_ms);
/* Reads a tenant as a JSON object; *out is NULL when it does not exist. */
int sy_tenant_get(sy_conn *c, const char *id, json_t **out);
int sy_tenant_count(sy_conn *c, int64_t *n);

/* An in-memory registry of tenant records for the request path.  An entry
 * older than one second is re-read from the store, so changes made by
 * another process show within a second; the server also drops an entry as
 * soon as its own change commits. */
typedef struct sy_tenants sy_tenants;
typedef struct sy_tenant_info {
    char id[33];
    char name[256 * 4];
    char timezone[65];
    int64_t created_at, updated_at;
    /* The record encoded by jansson as a JSON object, without its closing
     * brace, so a reply can extend it without encoding it again. */
    char json[1400];
    size_t json_len;
} sy_tenant_info;

sy_tenants *sy_tenants_new(sy_store *s);
void sy_tenants_free(sy_tenants *t);
/* Copies the tenant's record into *out.  Returns SY_OK, SY_DONE when there
 * is no such tenant, or a store error. */
int sy_tenants_get(sy_tenants *t, const char *id, sy_tenant_info *out);
void sy_tenants_forget(sy_tenants *t, const char *id);
json_t *sy_tenant_info_json(const sy_tenant_info *ti);

#endif

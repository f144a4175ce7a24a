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
/* An IANA time zone name known to this machine's tz database. */
bool sy_timezone_valid(const char *tz);

int sy_tenant_create(sy_conn *c, const char *id, const char *name, const char *tz,
                     int64_t now_ms);
/* Reads a tenant as a JSON object; *out is NULL when it does not exist. */
int sy_tenant_get(sy_conn *c, const char *id, json_t **out);
int sy_tenant_count(sy_conn *c, int64_t *n);

#endif

/* validate.h — checks of request input that record a problem reply naming
 * the offending field (as a JSON pointer, "/role") when they fail.  Each
 * returns true when the input is acceptable. */
#ifndef SY_VALIDATE_H
#define SY_VALIDATE_H

#include "server.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* obj may hold only the listed fields (NULL-terminated list). */
bool sy_v_only(sy_req *r, json_t *obj, const char *const *fields);
/* A string of 1..maxlen characters without control characters.  *out is
 * left untouched when the field is absent and not required. */
bool sy_v_string(sy_req *r, json_t *obj, const char *field, bool required, size_t maxlen,
                 const char **out);
/* An integer query parameter in [min, max], def when absent. */
bool sy_v_query_int(sy_req *r, const char *name, int64_t min, int64_t max, int64_t def,
                    int64_t *out);
/* A boolean query parameter ("true"/"false"), def when absent. */
bool sy_v_query_bool(sy_req *r, const char *name, bool def, bool *out);
/* Counts UTF-8 code points; the string must already be valid UTF-8. */
size_t sy_utf8_len(const char *s);

/* RFC 3339 UTC text for a time in milliseconds, as a new JSON string. */
json_t *sy_json_time(int64_t ms);

#endif

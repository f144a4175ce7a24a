/* validate.c — input checks shared by the handlers. */
#include "validate.h"
#include "util.h"

#include <stdio.h>
#include <string.h>

bool sy_v_only(sy_req *r, json_t *obj, const char *const *fields)
{
    const char *key;
    json_t *v;
    json_object_foreach (obj, key, v) {
        bool known = false;
        for (const char *const *f = fields; *f && !known; f++)
            known = !strcmp(*f, key);
        if (!known) {
            char ptr[160];
            snprintf(ptr, sizeof ptr, "/%.150s", key);
            sy_reply_problem(r, 400, "validation", ptr, "unknown field '%.150s'", key);
            return false;
        }
    }
    return true;
}

size_t sy_utf8_len(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xc0) != 0x80)
            n++;
    return n;
}

bool sy_v_string(sy_req *r, json_t *obj, const char *field, bool required, size_t maxlen,
                 const char **out)
{
    json_t *v = json_object_get(obj, field);
    char ptr[80];
    snprintf(ptr, sizeof ptr, "/%s", field);
    if (!v || json_is_null(v)) {
        if (required) {
            sy_reply_problem(r, 400, "validation", ptr, "'%s' is required", field);
            return false;
        }
        return true;
    }
    if (!json_is_string(v)) {
        sy_reply_problem(r, 400, "validation", ptr, "'%s' must be a string", field);
        return false;
    }
    const char *s = json_string_value(v);
    size_t bytes = json_string_length(v);
    if (strlen(s) != bytes) {
        sy_reply_problem(r, 400, "validation", ptr, "'%s' must not contain NUL characters", field);
        return false;
    }
    size_t chars = sy_utf8_len(s);
    if (chars == 0 || chars > maxlen) {
        sy_reply_problem(r, 400, "validation", ptr, "'%s' must be 1 to %zu characters", field,
                         maxlen);
        return false;
    }
    for (const char *p = s; *p; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            sy_reply_problem(r, 400, "validation", ptr, "'%s' must not contain control characters",
                             field);
            return false;
        }
    }
    *out = s;
    return true;
}

bool sy_v_query_int(sy_req *r, const char *name, int64_t min, int64_t max, int64_t def,
                    int64_t *out)
{
    const char *v = sy_req_query(r, name);
    if (!v) {
        *out = def;
        return true;
    }
    if (!sy_parse_i64(v, min, max, out)) {
        sy_reply_problem(r, 400, "validation", name,
                         "query parameter '%s' must be an integer from %lld to %lld", name,
                         (long long)min, (long long)max);
        return false;
    }
    return true;
}

bool sy_v_query_bool(sy_req *r, const char *name, bool def, bool *out)
{
    const char *v = sy_req_query(r, name);
    if (!v) {
        *out = def;
    } else if (!strcmp(v, "true")) {
        *out = true;
    } else if (!strcmp(v, "false")) {
        *out = false;
    } else {
        sy_reply_problem(r, 400, "validation", name,
                         "query parameter '%s' must be 'true' or 'false'", name);
        return false;
    }
    return true;
}

json_t *sy_json_time(int64_t ms)
{
    char ts[32];
    sy_format_time(ms, ts, sizeof ts);
    return json_string(ts);
}

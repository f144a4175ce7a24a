/* ingest.c — the checks of the bodies that bring customers and events in
 * (ingest.h): NDJSON lines, events, customer records and their personal
 * data.  Nothing here touches the store or a request. */
#include "ingest.h"
#include "util.h"
#include "validate.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- NDJSON ---- */

void sy_ndjson_init(sy_ndjson *it, const char *body, size_t len)
{
    it->p = body;
    it->end = body ? body + len : body;
    it->line = 0;
}

bool sy_ndjson_next(sy_ndjson *it, const char **text, size_t *n, size_t *line)
{
    while (it->p < it->end) {
        const char *nl = memchr(it->p, '\n', (size_t)(it->end - it->p));
        size_t len = nl ? (size_t)(nl - it->p) : (size_t)(it->end - it->p);
        const char *s = it->p;
        it->p += len + (nl ? 1 : 0);
        it->line++;
        bool blank = true;
        for (size_t k = 0; k < len && blank; k++)
            blank = s[k] == ' ' || s[k] == '\t' || s[k] == '\r';
        if (!blank) {
            *text = s;
            *n = len;
            *line = it->line;
            return true;
        }
    }
    return false;
}

/* Writes prefix, then name cut to at most max bytes at a character
 * boundary, into out (n bytes), so that what client input is quoted stays
 * valid UTF-8.  As a JSON pointer token (pointer set), '~' is written "~0"
 * and '/' "~1" (RFC 6901), counted in max, and never cut apart. */
static void name_cut(char *out, size_t n, const char *prefix, const char *name, size_t max,
                     bool pointer)
{
    size_t o = (size_t)snprintf(out, n, "%s", prefix), used = 0;
    if (o >= n)
        return;
    for (const unsigned char *p = (const unsigned char *)name; *p;) {
        size_t len = 1, need = 0;
        while ((p[len] & 0xC0) == 0x80)
            len++;
        for (size_t j = 0; j < len; j++)
            need += pointer && (p[j] == '~' || p[j] == '/') ? 2 : 1;
        if (used + need > max || o + need >= n)
            break;
        for (size_t j = 0; j < len; j++) {
            if (pointer && (p[j] == '~' || p[j] == '/')) {
                out[o++] = '~';
                out[o++] = p[j] == '~' ? '0' : '1';
            } else {
                out[o++] = (char)p[j];
            }
        }
        used += need;
        p += len;
    }
    out[o] = '\0';
}

/* ---- events ---- */

bool sy_events_load(const char *body, size_t len, bool ndjson, json_t **items, const char **type,
                    char *detail, size_t detail_len)
{
    json_t *a = NULL;
    *items = NULL;
    if (ndjson) {
        a = json_array();
        sy_ndjson it;
        const char *text;
        size_t n, line;
        sy_ndjson_init(&it, body, len);
        while (sy_ndjson_next(&it, &text, &n, &line)) {
            json_error_t e;
            json_t *o = json_loadb(text, n, JSON_REJECT_DUPLICATES, &e);
            if (!o) {
                json_decref(a);
                *type = "invalid-json";
                snprintf(detail, detail_len, "line %zu is not valid JSON (column %d): %s", line,
                         e.column, e.text);
                return false;
            }
            json_array_append_new(a, o);
        }
    } else {
        if (len == 0) {
            *type = "invalid-json";
            snprintf(detail, detail_len, "the request needs a JSON array of events");
            return false;
        }
        json_error_t e;
        a = json_loadb(body, len, JSON_REJECT_DUPLICATES, &e);
        if (!a) {
            *type = "invalid-json";
            snprintf(detail, detail_len, "the body is not valid JSON (line %d, column %d): %s",
                     e.line, e.column, e.text);
            return false;
        }
        if (!json_is_array(a)) {
            json_decref(a);
            *type = "validation";
            snprintf(detail, detail_len,
                     "the body must be a JSON array of events (or NDJSON with "
                     "Content-Type: application/x-ndjson)");
            return false;
        }
    }
    size_t n = json_array_size(a);
    if (n == 0 || n > SY_EVENTS_MAX) {
        json_decref(a);
        *type = "validation";
        snprintf(detail, detail_len, "a batch holds 1 to %d events", SY_EVENTS_MAX);
        return false;
    }
    *items = a;
    return true;
}

void sy_event_error_add(json_t *errors, size_t index, const char *field, const char *detail)
{
    if (json_array_size(errors) < SY_EVENT_ERRORS_SHOWN)
        json_array_append_new(errors, json_pack("{s:I, s:s, s:s}", "index", (json_int_t)index,
                                                "field", field, "detail", detail));
}

bool sy_event_parse(const sy_pii_keys *k, const char *tenant, int64_t now, json_t *o, size_t i,
                    sy_event_in *e, json_t *errors)
{
    static const char *const known[] = {"event_id", "customer_no", "identity", "name",
                                        "ts",       "dwell_ms",    "props"};
    memset(e, 0, sizeof *e);
    e->dwell_ms = -1;
    if (!json_is_object(o)) {
        sy_event_error_add(errors, i, "", "an event must be a JSON object");
        return false;
    }
    bool ok = true;
    const char *key;
    json_t *v;
    json_object_foreach (o, key, v) {
        bool known_key = false;
        for (size_t j = 0; j < SY_ARRAY_LEN(known) && !known_key; j++)
            known_key = !strcmp(key, known[j]);
        if (!known_key) {
            char f[80];
            name_cut(f, sizeof f, "/", key, 70, true);
            sy_event_error_add(errors, i, f, "unknown field");
            ok = false;
        }
    }
    const char *id = json_string_value(json_object_get(o, "event_id"));
    if (!id || !sy_token_valid(id, SY_EVENT_ID_MAX)) {
        sy_event_error_add(errors, i, "/event_id",
                           json_object_get(o, "event_id")
                               ? "'event_id' must be 1 to 128 visible ASCII characters"
                               : "'event_id' is required: the event's own id, 1 to 128 visible"
                                 " ASCII characters (a repeat is a duplicate)");
        ok = false;
    }
    const char *name = json_string_value(json_object_get(o, "name"));
    if (!name || !sy_ident_valid(name, SY_EVENT_NAME_MAX)) {
        sy_event_error_add(errors, i, "/name", "'name' must match [a-z][a-z0-9_]* (at most 64)");
        ok = false;
    }
    json_t *cno = json_object_get(o, "customer_no"), *ident = json_object_get(o, "identity");
    if ((cno != NULL) == (ident != NULL)) {
        sy_event_error_add(errors, i, "/customer_no",
                           "give exactly one of 'customer_no' and 'identity'");
        ok = false;
    } else if (cno && !(json_is_string(cno) && sy_customer_no_valid(json_string_value(cno)))) {
        sy_event_error_add(errors, i, "/customer_no",
                           "'customer_no' is not a valid customer number");
        ok = false;
    } else if (ident) {
        const char *t = json_string_value(json_object_get(ident, "type"));
        const char *val = json_string_value(json_object_get(ident, "value"));
        if (!json_is_object(ident) || json_object_size(ident) != 2 || !t || !val ||
            !sy_identity_type_valid(t) ||
            !sy_identity_key(k, tenant, t, val, e->id_key, sizeof e->id_key)) {
            sy_event_error_add(errors, i, "/identity",
                               "'identity' must be {type, value} of a known type");
            ok = false;
        } else {
            snprintf(e->id_type, sizeof e->id_type, "%s", t);
        }
    }
    json_t *ts = json_object_get(o, "ts");
    if (json_is_integer(ts))
        e->ts = json_integer_value(ts);
    else if (!(json_is_string(ts) && sy_parse_time(json_string_value(ts), &e->ts)))
        e->ts = INT64_MIN;
    if (e->ts < SY_EVENT_EARLIEST_TS || e->ts > now + SY_EVENT_FUTURE_MS) {
        sy_event_error_add(errors, i, "/ts",
                           "'ts' must be an RFC 3339 time with a zone or epoch milliseconds, "
                           "from 2000 until a day from now");
        ok = false;
    }
    json_t *dw = json_object_get(o, "dwell_ms");
    if (dw && !json_is_null(dw)) {
        if (!json_is_integer(dw) || json_integer_value(dw) < 0 ||
            json_integer_value(dw) > SY_EVENT_DWELL_MAX) {
            sy_event_error_add(errors, i, "/dwell_ms",
                               "'dwell_ms' must be an integer from 0 to 86400000");
            ok = false;
        } else {
            e->dwell_ms = json_integer_value(dw);
        }
    }
    json_t *props = json_object_get(o, "props");
    if (props && !json_is_null(props)) {
        char *text = json_is_object(props) ? json_dumps(props, JSON_COMPACT) : NULL;
        if (!text || strlen(text) > SY_EVENT_PROPS_MAX) {
            sy_event_error_add(errors, i, "/props",
                               "'props' must be an object of at most 4096 bytes");
            free(text);
            ok = false;
        } else {
            e->props = text;
        }
    }
    if (!ok) {
        free(e->props); /* the caller keeps nothing of a refused event */
        e->props = NULL;
        return false;
    }
    e->event_id = sy_xstrdup(id);
    e->name = sy_xstrdup(name);
    e->customer_no = cno ? sy_xstrdup(json_string_value(cno)) : NULL;
    return true;
}

void sy_event_in_clear(sy_event_in *e)
{
    free(e->event_id);
    free(e->name);
    free(e->customer_no);
    free(e->props);
    e->event_id = e->name = e->customer_no = e->props = NULL;
}

/* ---- customers ---- */

void sy_customer_err_set(sy_customer_err *e, int status, const char *type, const char *field,
                         const char *fmt, ...)
{
    e->status = status;
    e->type = type;
    snprintf(e->field, sizeof e->field, "%s", field ? field : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->detail, sizeof e->detail, fmt, ap);
    va_end(ap);
    /* The detail may quote the client's bytes (jansson's "near '…'"), which
     * need not be UTF-8, or be cut mid-character: a JSON answer could not
     * carry it, so such a detail keeps its ASCII only. */
    json_t *t = json_string(e->detail);
    if (!t) {
        for (char *p = e->detail; *p; p++)
            if ((unsigned char)*p >= 0x80)
                *p = '?';
    }
    json_decref(t);
}

bool sy_customer_pii_parse(json_t *in, json_t *out, sy_customer_err *e)
{
    const char *key;
    json_t *v;
    json_object_foreach (in, key, v) {
        char ptr[64];
        name_cut(ptr, sizeof ptr, "/pii/", key, 50, true);
        bool known = !strcmp(key, "name") || !strcmp(key, "phone") || !strcmp(key, "id_number");
        if (!known) {
            sy_customer_err_set(e, 400, "validation", ptr,
                                "personal data has name, phone and id_number only");
            return false;
        }
        if (json_is_null(v)) {
            json_object_set(out, key, v);
            continue;
        }
        const char *s = json_string_value(v);
        if (!s || strlen(s) != json_string_length(v)) {
            sy_customer_err_set(e, 400, "validation", ptr, "'%s' must be a string or null", key);
            return false;
        }
        if (!strcmp(key, "phone")) {
            char phone[32];
            if (!sy_phone_normalize(s, phone, sizeof phone)) {
                sy_customer_err_set(e, 400, "validation", ptr,
                                    "'phone' must be a phone number of 6 to 20 digits");
                return false;
            }
            json_object_set_new(out, key, json_string(phone));
        } else if (!strcmp(key, "id_number")) {
            if (!sy_id_number_valid(s)) {
                sy_customer_err_set(e, 400, "validation", ptr,
                                    "'id_number' must be an 18-character resident ID number with "
                                    "a valid check digit (or the 15-digit form)");
                return false;
            }
            json_object_set(out, key, v);
        } else {
            size_t chars = sy_utf8_len(s);
            bool ok = chars >= 1 && chars <= 50;
            /* C0 controls and DEL, and C1 controls (U+0080..U+009F: 0xC2 0x80..0x9F) */
            for (const unsigned char *p = (const unsigned char *)s; ok && *p; p++)
                ok = *p >= 0x20 && *p != 0x7f && !(p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f);
            if (!ok) {
                sy_customer_err_set(e, 400, "validation", ptr,
                                    "'name' must be 1 to 50 characters without control "
                                    "characters");
                return false;
            }
            json_object_set(out, key, v);
        }
    }
    return true;
}

bool sy_customer_parse(const sy_pii_keys *k, const sy_attr_set *schema, const char *tenant,
                       const char *no, json_t *body, const char *extra, sy_customer_in *w,
                       sy_customer_err *e)
{
    memset(w, 0, sizeof *w);
    w->customer_no = no;
    w->set = json_object();
    w->unset = json_array();
    w->pii = json_object();
    if (!sy_customer_no_valid(no)) {
        sy_customer_err_set(e, 400, "validation", extra ? "/customer_no" : "customer_no",
                            "a customer number is 1 to %d characters of A-Z a-z 0-9 _ . : -",
                            SY_CUSTOMER_NO_MAX);
        return false;
    }
    const char *key;
    json_t *v;
    json_object_foreach (body, key, v) {
        if (strcmp(key, "attributes") && strcmp(key, "pii") && strcmp(key, "identities") &&
            !(extra && !strcmp(key, extra))) {
            char ptr[96];
            char quoted[84];
            name_cut(ptr, sizeof ptr, "/", key, 80, true);
            name_cut(quoted, sizeof quoted, "", key, 80, false);
            /* personal data has its own object: a natural slip */
            bool personal =
                !strcmp(key, "name") || !strcmp(key, "phone") || !strcmp(key, "id_number");
            sy_customer_err_set(e, 400, "validation", ptr, "unknown field '%s'%s", quoted,
                                personal ? " (personal data goes in \"pii\": {\"name\": …})"
                                         : " (fields: attributes, pii, identities)");
            return false;
        }
    }
    json_t *attrs = json_object_get(body, "attributes");
    if (attrs && !json_is_object(attrs)) {
        sy_customer_err_set(e, 400, "validation", "/attributes", "'attributes' must be an object");
        return false;
    }
    json_object_foreach (attrs, key, v) {
        char ptr[96];
        name_cut(ptr, sizeof ptr, "/attributes/", key, 80, true);
        const sy_attr_def *d = sy_attr_find(schema, key);
        if (!d) {
            char quoted[84];
            name_cut(quoted, sizeof quoted, "", key, 80, false);
            sy_customer_err_set(e, 400, "validation", ptr,
                                "unknown attribute '%s' (see GET /v1/attributes)", quoted);
            return false;
        }
        if (json_is_null(v)) {
            json_array_append_new(w->unset, json_string(key));
            continue;
        }
        json_t *canon;
        char err[256];
        if (!sy_attr_check(d, v, &canon, err, sizeof err)) {
            sy_customer_err_set(e, 400, "validation", ptr, "%s", err);
            return false;
        }
        json_object_set_new(w->set, key, canon);
    }
    json_t *pii = json_object_get(body, "pii");
    if (pii && !json_is_object(pii)) {
        sy_customer_err_set(e, 400, "validation", "/pii", "'pii' must be an object");
        return false;
    }
    if (pii && !sy_customer_pii_parse(pii, w->pii, e))
        return false;
    json_t *ids = json_object_get(body, "identities");
    if (ids && (!json_is_array(ids) || json_array_size(ids) > SY_CUSTOMER_IDENTITIES_MAX)) {
        sy_customer_err_set(e, 400, "validation", "/identities",
                            "'identities' must be an array of at most %d {type, value} objects",
                            SY_CUSTOMER_IDENTITIES_MAX);
        return false;
    }
    size_t i;
    json_t *id;
    json_array_foreach (ids, i, id) {
        char ptr[48];
        snprintf(ptr, sizeof ptr, "/identities/%zu", i);
        const char *type = json_string_value(json_object_get(id, "type"));
        const char *value = json_string_value(json_object_get(id, "value"));
        if (!json_is_object(id) || json_object_size(id) != 2 || !type || !value ||
            !sy_identity_type_valid(type)) {
            sy_customer_err_set(e, 400, "validation", ptr,
                                "an identity is {\"type\": one of app_user_id, wechat_openid, "
                                "wechat_unionid, wecom_external_userid, phone; \"value\": string}");
            return false;
        }
        sy_identity_in *d = &w->ids[w->nids];
        snprintf(d->type, sizeof d->type, "%s", type);
        if (!sy_identity_key(k, tenant, type, value, d->key, sizeof d->key)) {
            sy_customer_err_set(
                e, 400, "validation", ptr,
                "the %s value must be 1 to %d visible characters (a phone: 6 to 20 digits)", type,
                SY_IDENTITY_VALUE_MAX);
            return false;
        }
        w->nids++;
    }
    return true;
}

void sy_customer_in_clear(sy_customer_in *w)
{
    json_decref(w->set);
    json_decref(w->unset);
    json_decref(w->pii);
    w->set = w->unset = w->pii = NULL;
}

json_t *sy_customer_line_load(const char *text, size_t n, sy_customer_err *e)
{
    json_error_t je;
    json_t *o = json_loadb(text, n, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(o)) {
        sy_customer_err_set(e, 400, "invalid-json", "", "not a JSON object: %s", o ? "" : je.text);
        json_decref(o);
        return NULL;
    }
    return o;
}

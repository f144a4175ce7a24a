/* fuzz_json.h — checks shared by the fuzz targets of request bodies
 * (fuzz_events.c, fuzz_customers.c), fuzz_segment.c and test_segment_parse.c:
 * valid UTF-8, and a refusal's field as a JSON pointer (RFC 6901) into the
 * body refused. */
#ifndef SY_FUZZ_JSON_H
#define SY_FUZZ_JSON_H

#include <assert.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static inline bool fz_utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        int k = *p < 0x80             ? 0
                : (*p & 0xE0) == 0xC0 ? 1
                : (*p & 0xF0) == 0xE0 ? 2
                : (*p & 0xF8) == 0xF0 ? 3
                                      : -1;
        if (k < 0)
            return false;
        p++;
        for (int i = 0; i < k; i++, p++)
            if ((*p & 0xC0) != 0x80)
                return false;
    }
    return true;
}

/* The member of doc that the first n bytes of JSON pointer ptr name, or
 * NULL.  Asserts the pointer's syntax: tokens after '/', '~' only in "~0"
 * ('~') and "~1" ('/'). */
static inline json_t *fz_resolve(json_t *doc, const char *ptr, size_t n)
{
    const char *p = ptr, *end = ptr + n;
    while (p < end && doc) {
        assert(*p == '/');
        p++;
        char tok[1024];
        size_t t = 0;
        while (p < end && *p != '/') {
            char c = *p++;
            if (c == '~') {
                assert(p < end && (*p == '0' || *p == '1'));
                c = *p++ == '0' ? '~' : '/';
            }
            if (t < sizeof tok - 1)
                tok[t++] = c;
        }
        tok[t] = '\0';
        if (json_is_object(doc)) {
            doc = json_object_get(doc, tok);
        } else if (json_is_array(doc)) {
            char *e;
            unsigned long i = strtoul(tok, &e, 10);
            doc = *tok && !*e ? json_array_get(doc, i) : NULL;
        } else {
            doc = NULL;
        }
    }
    return doc;
}

/* A refusal's field: valid UTF-8, "" or a JSON pointer into doc whose
 * parent is there (the member itself may be the one missing). */
static inline void fz_field_ok(json_t *doc, const char *field)
{
    assert(field && fz_utf8_valid(field));
    if (!field[0])
        return;
    assert(field[0] == '/');
    const char *last = strrchr(field, '/');
    assert(fz_resolve(doc, field, (size_t)(last - field)) != NULL);
    (void)fz_resolve(doc, field, strlen(field)); /* the last token's escapes */
}

#endif

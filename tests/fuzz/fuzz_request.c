/* fuzz_request.c — libFuzzer target for siyu's own parsers of request input:
 * route matching (method + path, with {param} and :suffix segments), API-key
 * parsing and hashing, integer and size parsing (query parameters, config),
 * tenant-id and time-zone validation, and a line of a CSV upload read as one
 * field (voucher codes).
 *
 * The input is split at '\n' into up to five fields: method, path,
 * Authorization token, a number, and a name.  Invariants checked: a match
 * returns a valid route index whose method agrees, parameter values are
 * NUL-terminated substrings of the path, and a parsed key's prefix is 12 hex
 * digits.  Build: make fuzz; run: build/fuzz/fuzz_request tests/fuzz/corpus/request */
#include "auth.h"
#include "server.h"
#include "tenant.h"
#include "util.h"
#include "validate.h"

#include <assert.h>
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void split(const uint8_t *data, size_t size, char *fields[5])
{
    size_t start = 0;
    int f = 0;
    for (size_t i = 0; i <= size && f < 5; i++) {
        if (i == size || data[i] == '\n') {
            fields[f++] = sy_xstrndup((const char *)data + start, i - start);
            start = i + 1;
        }
    }
    while (f < 5)
        fields[f++] = sy_xstrdup("");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool init;
    if (!init) {
        if (sodium_init() < 0)
            abort();
        sy_routes_init();
        init = true;
    }
    char *fld[5];
    split(data, size, fld);
    const char *method = fld[0], *path = fld[1], *token = fld[2], *num = fld[3], *name = fld[4];

    char *scratch = sy_xmalloc(strlen(path) + 2);
    sy_match m;
    char allowed[128];
    int r = sy_route_match(sy_routes, sy_routes_count, method, path, scratch, &m, allowed,
                           sizeof allowed);
    if (r >= 0) {
        assert(r < sy_routes_count);
        const char *want = strcmp(method, "HEAD") == 0 ? "GET" : method;
        assert(strcmp(sy_routes[r].method, want) == 0);
        for (int i = 0; i < m.n; i++) {
            size_t len = strlen(m.values[i]);
            assert(len > 0 && len <= strlen(path));
            assert(strstr(path, m.values[i]) != NULL);
        }
    } else {
        assert(strlen(allowed) < sizeof allowed);
    }
    free(scratch);

    char prefix[SY_KEY_PREFIX_LEN + 1];
    if (sy_key_parse(token, strlen(token), prefix)) {
        assert(strlen(prefix) == SY_KEY_PREFIX_LEN);
        static const unsigned char k[32];
        char h[65];
        sy_key_hash(k, token, strlen(token), h);
        assert(strlen(h) == 64);
    }
    sy_role role;
    if (sy_role_parse(token, &role))
        assert(strcmp(sy_role_name(role), token) == 0);

    int64_t v;
    if (sy_parse_i64(num, -1000, 1000, &v))
        assert(v >= -1000 && v <= 1000);
    uint64_t sz;
    (void)sy_parse_size(num, &sz);

    if (sy_tenant_id_valid(name))
        assert(strlen(name) >= 1 && strlen(name) <= 32);
    if (sy_timezone_valid(name))
        assert(strstr(name, "..") == NULL && name[0] != '/');

    /* the name as a line of a CSV upload: one field, or a reason; the field
     * is never longer than the line, and an unquoted one holds no quote or
     * comma */
    char *line = sy_xstrdup(name);
    const char *why = NULL;
    char *field = sy_csv_one_field(line, &why);
    if (field) {
        assert(!why && strlen(field) <= strlen(name));
        if (name[0] != '"')
            assert(!strchr(field, '"') && !strchr(field, ','));
    } else {
        assert(why && why[0]);
    }
    free(line);
    (void)sy_utf8_len(name);

    for (int i = 0; i < 5; i++)
        free(fld[i]);
    return 0;
}

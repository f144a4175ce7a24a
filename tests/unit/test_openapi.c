/* test_openapi.c — docs/openapi.yaml documents exactly the routes of the
 * route table (src/routes.c): every route has its path and method in the
 * spec, and every path + method in the spec is a route.
 *
 * The spec is read from $SIYU_SRC/docs/openapi.yaml (SIYU_SRC is the repo
 * root, set by tests/run.sh; "." when unset).  The YAML is parsed only as
 * far as this needs, by indentation: under the top-level "paths:" line, a
 * line "  <pattern>:" (indent 2; the pattern may be quoted) starts a path,
 * and a line "    <method>:" (indent 4, a lowercase HTTP method) under it
 * names one of its operations.  Anything else (path-level parameters,
 * descriptions, deeper lines) is ignored. */
#include "testutil.h"

#include "server.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <strings.h>
#include <sys/stat.h>

#define SPEC_REL "docs/openapi.yaml"

typedef struct spec_op {
    char method[16]; /* upper case: "GET" */
    char *path;      /* "/v1/keys/{id}" */
    int line;        /* line of the method in the file */
} spec_op;

typedef struct spec_path {
    char *path;
    int line;
} spec_path;

typedef struct spec {
    char file[4096];
    spec_op *ops;
    int nops, capops;
    spec_path *paths;
    int npaths, cappaths;
    bool saw_paths; /* a top-level "paths:" line was found */
} spec;

static const char *const k_methods[] = {"get",     "put",  "post",  "delete",
                                        "options", "head", "patch", "trace"};

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    assert_non_null(q);
    return q;
}

static char *xstrndup(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    assert_non_null(p);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

/* The key of a "key:" or "key: value" line body (after the indent), with
 * surrounding quotes removed.  Returns false if the line is not a mapping
 * key.  An unquoted key ends at the first ':' followed by a blank or the
 * end of the line, so "/v1/grants/{code}:redeem:" gives
 * "/v1/grants/{code}:redeem". */
static bool line_key(const char *s, size_t len, const char **key, size_t *keylen)
{
    if (len == 0 || *s == '#' || *s == '-')
        return false;
    if (*s == '\'' || *s == '"') {
        const char *close = memchr(s + 1, *s, len - 1);
        if (!close || (size_t)(close - s) + 1 >= len || close[1] != ':')
            return false;
        *key = s + 1;
        *keylen = (size_t)(close - s - 1);
        return true;
    }
    for (size_t i = 0; i < len; i++) {
        if (s[i] == ':' && (i + 1 == len || s[i + 1] == ' ' || s[i + 1] == '\t')) {
            *key = s;
            *keylen = i;
            while (*keylen && s[*keylen - 1] == ' ')
                (*keylen)--;
            return *keylen > 0;
        }
        if (s[i] == ' ' && i + 1 < len && s[i + 1] == '#')
            return false; /* a comment before any key separator */
    }
    return false;
}

static void add_path(spec *sp, const char *p, size_t n, int line)
{
    if (sp->npaths == sp->cappaths) {
        sp->cappaths = sp->cappaths ? 2 * sp->cappaths : 32;
        sp->paths = xrealloc(sp->paths, (size_t)sp->cappaths * sizeof *sp->paths);
    }
    sp->paths[sp->npaths++] = (spec_path){xstrndup(p, n), line};
}

static void add_op(spec *sp, const char *method, const char *path, int line)
{
    if (sp->nops == sp->capops) {
        sp->capops = sp->capops ? 2 * sp->capops : 32;
        sp->ops = xrealloc(sp->ops, (size_t)sp->capops * sizeof *sp->ops);
    }
    spec_op *o = &sp->ops[sp->nops++];
    memset(o, 0, sizeof *o);
    for (size_t i = 0; method[i] && i < sizeof o->method - 1; i++)
        o->method[i] = (char)toupper((unsigned char)method[i]);
    o->path = xstrndup(path, strlen(path));
    o->line = line;
}

static bool is_method(const char *k, size_t n, const char **out)
{
    for (size_t i = 0; i < sizeof k_methods / sizeof k_methods[0]; i++)
        if (strlen(k_methods[i]) == n && !memcmp(k_methods[i], k, n)) {
            *out = k_methods[i];
            return true;
        }
    return false;
}

/* Reads the spec's paths and operations.  Fails the test when the file
 * cannot be read. */
static void spec_load(spec *sp)
{
    const char *root = getenv("SIYU_SRC");
    if (!root || !*root)
        root = ".";
    snprintf(sp->file, sizeof sp->file, "%s/%s", root, SPEC_REL);
    FILE *f = fopen(sp->file, "r");
    if (!f)
        fail_msg("cannot open %s: %s (set SIYU_SRC to the repository root)", sp->file,
                 strerror(errno));

    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    int lineno = 0;
    bool in_paths = false;
    const char *cur = NULL; /* the current path, owned by sp->paths */
    while ((got = getline(&line, &cap, f)) >= 0) {
        lineno++;
        size_t len = (size_t)got;
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r' || line[len - 1] == ' '))
            line[--len] = '\0';
        size_t indent = 0;
        while (indent < len && line[indent] == ' ')
            indent++;
        if (indent == len || line[indent] == '#')
            continue; /* blank or comment: no effect on structure */
        const char *key = NULL;
        size_t keylen = 0;
        bool has_key = line_key(line + indent, len - indent, &key, &keylen);
        if (indent == 0) {
            /* A top-level key starts or ends the paths section.  A
             * non-key line at column 0 (e.g. "..." or "---") ends it too. */
            in_paths = has_key && keylen == 5 && !memcmp(key, "paths", 5);
            if (in_paths)
                sp->saw_paths = true;
            cur = NULL;
            continue;
        }
        if (!in_paths)
            continue;
        if (indent == 2) {
            cur = NULL;
            if (has_key && key[0] == '/') {
                add_path(sp, key, keylen, lineno);
                cur = sp->paths[sp->npaths - 1].path;
            }
            continue;
        }
        const char *m;
        if (indent == 4 && cur && has_key && is_method(key, keylen, &m))
            add_op(sp, m, cur, lineno);
    }
    free(line);
    fclose(f);
}

static void spec_free(spec *sp)
{
    for (int i = 0; i < sp->nops; i++)
        free(sp->ops[i].path);
    for (int i = 0; i < sp->npaths; i++)
        free(sp->paths[i].path);
    free(sp->ops);
    free(sp->paths);
    free(sp);
}

static const spec_path *spec_find_path(const spec *sp, const char *path)
{
    for (int i = 0; i < sp->npaths; i++)
        if (!strcmp(sp->paths[i].path, path))
            return &sp->paths[i];
    return NULL;
}

static const spec_op *spec_find_op(const spec *sp, const char *method, const char *path)
{
    for (int i = 0; i < sp->nops; i++)
        if (!strcasecmp(sp->ops[i].method, method) && !strcmp(sp->ops[i].path, path))
            return &sp->ops[i];
    return NULL;
}

static int setup(void **state)
{
    spec *sp = calloc(1, sizeof *sp);
    if (!sp)
        return -1;
    *state = sp;
    return 0;
}

static int teardown(void **state)
{
    if (*state)
        spec_free(*state);
    *state = NULL;
    return 0;
}

/* The spec is readable and has a paths section with operations in it. */
static void test_spec_has_paths(void **state)
{
    spec *sp = *state;
    spec_load(sp);
    if (!sp->saw_paths)
        fail_msg("%s has no top-level 'paths:' line", sp->file);
    if (sp->nops == 0)
        fail_msg("%s: found no operations ('    get:' etc.) under 'paths:'", sp->file);
    assert_true(sy_routes_count > 0);
}

/* Every route of src/routes.c is documented. */
static void test_every_route_documented(void **state)
{
    spec *sp = *state;
    spec_load(sp);
    int missing = 0;
    for (int i = 0; i < sy_routes_count; i++) {
        const sy_route *rt = &sy_routes[i];
        if (!spec_find_path(sp, rt->pattern)) {
            print_error("route %s %s (src/routes.c): %s has no path '  %s:' under 'paths:'\n",
                        rt->method, rt->pattern, sp->file, rt->pattern);
            missing++;
        } else if (!spec_find_op(sp, rt->method, rt->pattern)) {
            char lower[16] = {0};
            for (size_t j = 0; rt->method[j] && j < sizeof lower - 1; j++)
                lower[j] = (char)tolower((unsigned char)rt->method[j]);
            print_error("route %s %s (src/routes.c): %s has the path but no '    %s:' "
                        "operation under it\n",
                        rt->method, rt->pattern, sp->file, lower);
            missing++;
        }
    }
    if (missing)
        fail_msg("%d route(s) of src/routes.c missing from %s", missing, sp->file);
}

/* Every operation of the spec is a route of src/routes.c. */
static void test_every_documented_op_is_a_route(void **state)
{
    spec *sp = *state;
    spec_load(sp);
    int extra = 0;
    for (int i = 0; i < sp->nops; i++) {
        const spec_op *o = &sp->ops[i];
        bool found = false;
        for (int j = 0; j < sy_routes_count && !found; j++)
            found =
                !strcmp(sy_routes[j].method, o->method) && !strcmp(sy_routes[j].pattern, o->path);
        if (!found) {
            print_error("%s:%d documents %s %s, which is not in the route table "
                        "(src/routes.c)\n",
                        sp->file, o->line, o->method, o->path);
            extra++;
        }
    }
    if (extra)
        fail_msg("%d operation(s) of %s are not routes", extra, sp->file);
}

/* No path is listed twice (YAML parsers would silently keep only one). */
static void test_no_duplicate_paths(void **state)
{
    spec *sp = *state;
    spec_load(sp);
    int dups = 0;
    for (int i = 0; i < sp->npaths; i++)
        for (int j = 0; j < i; j++)
            if (!strcmp(sp->paths[i].path, sp->paths[j].path)) {
                print_error("%s:%d repeats path '%s' (first at line %d)\n", sp->file,
                            sp->paths[i].line, sp->paths[i].path, sp->paths[j].line);
                dups++;
            }
    for (int i = 0; i < sp->nops; i++)
        for (int j = 0; j < i; j++)
            if (!strcmp(sp->ops[i].method, sp->ops[j].method) &&
                !strcmp(sp->ops[i].path, sp->ops[j].path)) {
                print_error("%s:%d repeats %s %s (first at line %d)\n", sp->file, sp->ops[i].line,
                            sp->ops[i].method, sp->ops[i].path, sp->ops[j].line);
                dups++;
            }
    if (dups)
        fail_msg("%d duplicate path(s) or operation(s) in %s", dups, sp->file);
}

/* The indentation parser itself, on a small inline document. */
static void test_parser_on_sample(void **state)
{
    spec *sp = *state;
    char *dir = tu_tempdir();
    char docs[512], file[512];
    snprintf(docs, sizeof docs, "%s/docs", dir);
    snprintf(file, sizeof file, "%s/docs/openapi.yaml", dir);
    assert_int_equal(mkdir(docs, 0700), 0);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fputs("openapi: 3.1.0\n"
          "info:\n"
          "  title: t\n"
          "  /not/a/path:\n"
          "    get:\n"
          "paths:\n"
          "  # a comment\n"
          "  /a:\n"
          "    parameters: []\n"
          "    get:\n"
          "      description: |\n"
          "        post:\n"
          "    post:   # trailing comment\r\n"
          "\n"
          "  '/b/{id}':\n"
          "    delete:\n"
          "  \"/g/{code}:redeem\":\n"
          "    post:\n"
          "  /h/{code}:redeem:\n"
          "    put:\n"
          "components:\n"
          "  /c:\n"
          "    get:\n",
          f);
    fclose(f);
    const char *old = getenv("SIYU_SRC");
    char *saved = old ? strdup(old) : NULL;
    setenv("SIYU_SRC", dir, 1);
    spec_load(sp);
    if (saved) {
        setenv("SIYU_SRC", saved, 1);
        free(saved);
    } else {
        unsetenv("SIYU_SRC");
    }
    tu_rmtree(dir);
    free(dir);

    assert_true(sp->saw_paths);
    assert_int_equal(sp->npaths, 4);
    assert_int_equal(sp->nops, 5);
    assert_non_null(spec_find_op(sp, "GET", "/a"));
    assert_non_null(spec_find_op(sp, "POST", "/a"));
    assert_non_null(spec_find_op(sp, "DELETE", "/b/{id}"));
    assert_non_null(spec_find_op(sp, "POST", "/g/{code}:redeem"));
    assert_non_null(spec_find_op(sp, "PUT", "/h/{code}:redeem"));
    assert_null(spec_find_path(sp, "/c"));
    assert_null(spec_find_path(sp, "/not/a/path"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_parser_on_sample, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spec_has_paths, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_route_documented, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_documented_op_is_a_route, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_duplicate_paths, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

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
 * descriptions, deeper lines) is ignored.
 *
 * Also: every problem type the sources answer with (a literal type in a
 * sy_reply_problem call in src/, every .c file) is in the spec's ProblemType list and
 * has a title. */
#include "testutil.h"

#include "server.h"

#include <ctype.h>
#include <dirent.h>
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

/* The whole file (malloc'd, NUL-terminated), or NULL. */
static char *slurp(const char *file)
{
    FILE *f = fopen(file, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    for (size_t n; buf && (n = fread(buf + len, 1, cap - len - 1, f)) > 0;) {
        len += n;
        if (cap - len - 1 == 0) {
            char *more = realloc(buf, cap *= 2);
            if (!more) {
                free(buf);
                buf = NULL;
            }
            buf = more;
        }
    }
    fclose(f);
    if (buf)
        buf[len] = '\0';
    return buf;
}

/* ---- every problem type the sources answer with is documented ---- */

/* The types of sy_reply_problem(r, STATUS, "type", ...) calls in text
 * (the call may span lines), appended to types (n of them, at most max). */
static void problem_types_in(const char *text, char types[][48], int *n, int max)
{
    static const char call[] = "sy_reply_problem(";
    for (const char *p = strstr(text, call); p; p = strstr(p + 1, call)) {
        const char *q = p + sizeof call - 1;
        while (isspace((unsigned char)*q))
            q++;
        if (*q++ != 'r')
            continue; /* the definition, or another first argument */
        while (isspace((unsigned char)*q) || *q == ',')
            q++;
        if (!isdigit((unsigned char)*q))
            continue; /* a status computed at run time */
        while (isdigit((unsigned char)*q))
            q++;
        while (isspace((unsigned char)*q) || *q == ',')
            q++;
        if (*q++ != '"')
            continue; /* a type computed at run time */
        size_t len = strcspn(q, "\"");
        if (len == 0 || len >= 48)
            continue;
        bool seen = false;
        for (int i = 0; i < *n && !seen; i++)
            seen = strlen(types[i]) == len && !strncmp(types[i], q, len);
        if (!seen && *n < max) {
            memcpy(types[*n], q, len);
            types[(*n)++][len] = '\0';
        }
    }
}

static void test_every_problem_type_documented(void **state)
{
    (void)state;
    const char *root = getenv("SIYU_SRC") ? getenv("SIYU_SRC") : ".";
    char path[4096];
    snprintf(path, sizeof path, "%s/src", root);
    DIR *d = opendir(path);
    assert_non_null(d);
    static char types[256][48];
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        if (len < 3 || strcmp(e->d_name + len - 2, ".c") != 0)
            continue;
        char file[4400];
        snprintf(file, sizeof file, "%s/%s", path, e->d_name);
        char *text = slurp(file);
        assert_non_null(text);
        problem_types_in(text, types, &n, 256);
        free(text);
    }
    closedir(d);
    assert_true(n > 30); /* the scan found the calls */
    snprintf(path, sizeof path, "%s/" SPEC_REL, root);
    char *yaml = slurp(path);
    assert_non_null(yaml);
    const char *enum_at = strstr(yaml, "    ProblemType:");
    assert_non_null(enum_at);
    const char *enum_end = strstr(enum_at + 1, "\n    Timestamp:");
    assert_non_null(enum_end);
    for (int i = 0; i < n; i++) {
        char item[80];
        snprintf(item, sizeof item, "\n        - %.47s\n", types[i]);
        const char *hit = strstr(enum_at, item);
        if (!hit || hit > enum_end)
            fail_msg("problem type '%s' is answered but not in ProblemType (%s)", types[i],
                     SPEC_REL);
        if (!sy_problem_title(types[i]))
            fail_msg("problem type '%s' has no title (sy_problem_title)", types[i]);
    }
    free(yaml);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_parser_on_sample, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spec_has_paths, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_route_documented, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_documented_op_is_a_route, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_duplicate_paths, setup, teardown),
        cmocka_unit_test(test_every_problem_type_documented),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

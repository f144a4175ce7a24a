/* config.c — one table describes every setting: its flag, environment
 * variable, config-file key, type, default and help text. */
#include "config.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

typedef enum { T_STR, T_INT, T_SIZE, T_BOOL } opt_type;

typedef struct opt {
    const char *name; /* flag without "--", with '-'; file key uses '_' */
    opt_type type;
    size_t offset;
    const char *def;
    unsigned groups;
    const char *help;
} opt;

#define O(f) offsetof(sy_config, f)
static const opt k_opts[] = {
    {"data", T_STR, O(data), "./data", SY_CFG_DATA, "data directory (database, master key)"},
    {"config", T_STR, O(config), NULL, SY_CFG_DATA, "config file of 'key = value' lines"},
    {"log-level", T_STR, O(log_level), "info", SY_CFG_DATA, "debug, info, warn or error"},
    {"sync", T_STR, O(sync), "full", SY_CFG_DATA,
     "full: fsync every commit (survives power loss); normal: survives process crash only"},
    {"listen", T_STR, O(listen), "127.0.0.1:8080", SY_CFG_SERVE, "address and port to serve on"},
    {"threads", T_INT, O(threads), "0", SY_CFG_SERVE, "HTTP worker threads (0 = one per core)"},
    {"readers", T_INT, O(readers), "0", SY_CFG_SERVE,
     "read connections to the store (0 = threads + 1)"},
    {"max-body", T_SIZE, O(max_body), "8MiB", SY_CFG_SERVE,
     "largest request body accepted (413 beyond)"},
    {"access-log", T_STR, O(access_log), "-", SY_CFG_SERVE,
     "access log: '-' for stdout, 'off', or a file"},
    {"idle-timeout", T_INT, O(idle_timeout), "60", SY_CFG_SERVE,
     "seconds an idle keep-alive connection stays open"},
    {"shutdown-grace", T_INT, O(shutdown_grace), "10000", SY_CFG_SERVE,
     "milliseconds to finish in-flight requests on SIGTERM"},
    {"tenant", T_STR, O(tenant), "demo",
     SY_CFG_SERVE | SY_CFG_KEY | SY_CFG_DEMO | SY_CFG_IMPORT | SY_CFG_CHECK,
     "serve: tenant created with an admin key on first start; key: the key's tenant;"
     " check: the tenant to check"},
    {"port-file", T_STR, O(port_file), NULL, SY_CFG_SERVE,
     "write the bound port to this file once serving"},
    {"max-batch", T_INT, O(max_batch), "1024", SY_CFG_SERVE, "most mutations per group commit"},
    {"role", T_STR, O(role), NULL, SY_CFG_KEY, "admin, app, analyst or compliance"},
    {"name", T_STR, O(name), NULL, SY_CFG_KEY | SY_CFG_TENANT, "a human-readable name"},
    {"timezone", T_STR, O(timezone), "Asia/Shanghai", SY_CFG_TENANT,
     "IANA time zone that decides the tenant's business days"},
    {"examples", T_STR, O(examples), NULL, SY_CFG_KEY,
     "print example curl calls against this ADDR:PORT"},
    {"data-key-file", T_STR, O(data_key_file), NULL, SY_CFG_SERVE | SY_CFG_DEMO,
     "file with the 32-byte key that encrypts personal data (or set SIYU_DATA_KEY)"},
    {"demo", T_BOOL, O(demo), "false", SY_CFG_SERVE,
     "demo bank: create a data key in the data directory if there is none"},
    {"test-clock", T_BOOL, O(test_clock), "false", SY_CFG_SERVE,
     "tests only: take the current time from each request's X-Siyu-Now header (never in"
     " production)"},
    {"customers", T_INT, O(customers), "100000", SY_CFG_DEMO, "demo: customers to generate"},
    {"url", T_STR, O(url), "http://127.0.0.1:8080", SY_CFG_IMPORT, "import: the siyu server"},
    {"key", T_STR, O(key), NULL, SY_CFG_IMPORT, "import: an admin or app key of the tenant"},
    {"batch", T_INT, O(batch), "2000", SY_CFG_IMPORT, "import: lines per request (1-50000)"},
    {"days", T_INT, O(days), "30", SY_CFG_DEMO, "demo: days of behaviour up to today"},
    {"sessions", T_INT, O(sessions), "1", SY_CFG_DEMO,
     "demo: app sessions of an active customer on a day (more events)"},
    {"seed", T_INT, O(seed), "1", SY_CFG_DEMO,
     "demo: seed of the generator (same seed, same bank)"},
};
#undef O

static char **str_field(sy_config *c, const opt *o)
{
    return (char **)((char *)c + o->offset);
}

static bool set_value(sy_config *c, const opt *o, const char *v, const char *origin, char *err,
                      size_t errlen)
{
    switch (o->type) {
    case T_STR: {
        char **f = str_field(c, o);
        free(*f);
        *f = sy_xstrdup(v);
        return true;
    }
    case T_INT: {
        int64_t n;
        if (!sy_parse_i64(v, 0, 1000000000, &n)) {
            snprintf(err, errlen, "%s: %s must be a non-negative integer, got '%s'", origin,
                     o->name, v);
            return false;
        }
        *(int64_t *)((char *)c + o->offset) = n;
        return true;
    }
    case T_BOOL: {
        bool *b = (bool *)((char *)c + o->offset);
        if (!strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "yes")) {
            *b = true;
        } else if (!strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "no")) {
            *b = false;
        } else {
            snprintf(err, errlen, "%s: %s must be true or false, got '%s'", origin, o->name, v);
            return false;
        }
        return true;
    }
    case T_SIZE: {
        uint64_t n;
        if (!sy_parse_size(v, &n) || n == 0) {
            snprintf(err, errlen, "%s: %s must be a size such as 8MiB, got '%s'", origin, o->name,
                     v);
            return false;
        }
        *(uint64_t *)((char *)c + o->offset) = n;
        return true;
    }
    }
    return false;
}

static const opt *find_opt(const char *name, size_t len, unsigned groups, bool file_key)
{
    for (size_t i = 0; i < SY_ARRAY_LEN(k_opts); i++) {
        const opt *o = &k_opts[i];
        if (!(o->groups & groups) || strlen(o->name) != len)
            continue;
        size_t j = 0;
        for (; j < len; j++) {
            char a = o->name[j], b = name[j];
            if (file_key && a == '-')
                a = '_';
            if (a != b)
                break;
        }
        if (j == len)
            return o;
    }
    return NULL;
}

static void env_name(const opt *o, char *out, size_t n)
{
    size_t j = snprintf(out, n, "SIYU_");
    for (const char *p = o->name; *p && j + 1 < n; p++)
        out[j++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
    out[j] = '\0';
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

/* Reads 'key = value' lines; '#' starts a comment line.  Values set by
 * flags or the environment (marked in seen) are left alone. */
static bool load_file(sy_config *c, unsigned groups, const char *path, const bool *seen, char *err,
                      size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "config %s: %s", path, strerror(errno));
        return false;
    }
    char *line = NULL;
    size_t cap = 0;
    int lineno = 0;
    bool ok = true;
    while (ok && getline(&line, &cap, f) >= 0) {
        lineno++;
        char *s = trim(line);
        if (!*s || *s == '#')
            continue;
        char *eq = strchr(s, '=');
        char origin[64];
        snprintf(origin, sizeof origin, "%.40s:%d", path, lineno);
        if (!eq) {
            snprintf(err, errlen, "%s: expected 'key = value'", origin);
            ok = false;
            break;
        }
        *eq = '\0';
        char *key = trim(s), *val = trim(eq + 1);
        const opt *o = find_opt(key, strlen(key), ~0u, true);
        if (!o || o->offset == offsetof(sy_config, config)) {
            snprintf(err, errlen, "%s: unknown setting '%s'", origin, key);
            ok = false;
            break;
        }
        if (!(o->groups & groups) || seen[o - k_opts])
            continue; /* another command's setting, or overridden */
        ok = set_value(c, o, val, origin, err, errlen);
    }
    free(line);
    fclose(f);
    return ok;
}

bool sy_config_load(sy_config *c, unsigned groups, int argc, char **argv, const char **pos,
                    int maxpos, int *npos, bool *help, char *err, size_t errlen)
{
    bool seen[SY_ARRAY_LEN(k_opts)] = {0};
    memset(c, 0, sizeof *c);
    *help = false;
    *npos = 0;
    groups |= SY_CFG_DATA;
    for (size_t i = 0; i < SY_ARRAY_LEN(k_opts); i++)
        if (k_opts[i].def && !set_value(c, &k_opts[i], k_opts[i].def, "default", err, errlen))
            return false;

    /* Flags first: they win over everything else. */
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            *help = true;
            continue;
        }
        if (strncmp(a, "--", 2) != 0) {
            if (*npos >= maxpos) {
                snprintf(err, errlen, "unexpected argument '%s'", a);
                return false;
            }
            pos[(*npos)++] = a;
            continue;
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const opt *o = find_opt(name, len, groups, false);
        if (!o) {
            snprintf(err, errlen, "unknown option '%.*s'", (int)len + 2, a);
            return false;
        }
        const char *v = eq                  ? eq + 1
                        : o->type == T_BOOL ? "true"
                                            : (i + 1 < argc ? argv[++i] : NULL);
        if (!v) {
            snprintf(err, errlen, "option --%s needs a value", o->name);
            return false;
        }
        if (!set_value(c, o, v, "flag", err, errlen))
            return false;
        seen[o - k_opts] = true;
    }
    for (size_t i = 0; i < SY_ARRAY_LEN(k_opts); i++) {
        const opt *o = &k_opts[i];
        if (seen[i] || !(o->groups & groups))
            continue;
        char env[64];
        env_name(o, env, sizeof env);
        const char *v = getenv(env);
        if (v && *v) {
            if (!set_value(c, o, v, env, err, errlen))
                return false;
            seen[i] = true;
        }
    }
    if (c->config && !load_file(c, groups, c->config, seen, err, errlen))
        return false;

    sy_sync_mode sm;
    if (!sy_config_sync_mode(c, &sm)) {
        snprintf(err, errlen, "sync must be 'full' or 'normal', got '%s'", c->sync);
        return false;
    }
    sy_log_level lvl;
    if (!sy_log_parse_level(c->log_level, &lvl)) {
        snprintf(err, errlen, "log-level must be debug, info, warn or error, got '%s'",
                 c->log_level);
        return false;
    }
    return true;
}

bool sy_config_sync_mode(const sy_config *c, sy_sync_mode *out)
{
    if (!strcmp(c->sync, "full"))
        *out = SY_SYNC_FULL;
    else if (!strcmp(c->sync, "normal"))
        *out = SY_SYNC_NORMAL;
    else
        return false;
    return true;
}

void sy_config_free(sy_config *c)
{
    for (size_t i = 0; i < SY_ARRAY_LEN(k_opts); i++)
        if (k_opts[i].type == T_STR) {
            char **f = str_field(c, &k_opts[i]);
            free(*f);
            *f = NULL;
        }
}

void sy_config_usage(FILE *f, unsigned groups)
{
    groups |= SY_CFG_DATA;
    for (size_t i = 0; i < SY_ARRAY_LEN(k_opts); i++) {
        const opt *o = &k_opts[i];
        if (!(o->groups & groups))
            continue;
        char env[64];
        env_name(o, env, sizeof env);
        fprintf(f, "  --%-15s %s\n  %17s (env %s%s%s)\n", o->name, o->help, "", env,
                o->def ? ", default " : "", o->def ? o->def : "");
    }
}

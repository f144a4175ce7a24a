/* main.c — the siyu command line.
 *
 *   siyu serve     run the server (creates the data directory on first start)
 *   siyu migrate   create or upgrade the store, then exit
 *   siyu key ...   create, list and revoke API keys
 *   siyu tenant .. create and list tenants
 *   siyu check     verify a tenant's data against the invariants (the ledger's)
 *   siyu version
 *
 * Commands that write (key, tenant) open the store directly and commit
 * their own transaction; SQLite's locking lets them run beside a server. */
#include "api.h"
#include "app.h"
#include "auth.h"
#include "check.h"
#include "config.h"
#include "customer.h"
#include "demo.h"
#include "metrics.h"
#include "pii.h"
#include "secrets.h"
#include "server.h"
#include "store.h"
#include "tenant.h"
#include "util.h"
#include "version.h"
#include "writer.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ERRLEN 512
#define MAINTENANCE_EVERY_S 600

static void usage(FILE *f)
{
    fprintf(f, "usage: siyu <command> [options]\n\n"
               "commands:\n"
               "  serve                       run the HTTP server\n"
               "  migrate                     create or upgrade the store and exit\n"
               "  key create --tenant T --role R [--name N]\n"
               "  key list --tenant T\n"
               "  key revoke --tenant T KEY_ID\n"
               "  tenant create ID [--name N] [--timezone TZ]\n"
               "  tenant list\n"
               "  demo [--tenant T] [--customers N] [--days D] [--sessions K] [--seed S]\n"
               "  import customers FILE.{csv,ndjson} --tenant T --key KEY [--url URL]\n"
               "  check --tenant T             verify the tenant's invariants (exit 1: broken)\n"
               "  version\n\n"
               "Each command takes --help.  Settings come from flags, then SIYU_* environment\n"
               "variables, then the --config file.\n");
}

/* ------------------------------------------------------------------ */
/* shared setup                                                        */

typedef struct ctx {
    sy_config cfg;
    sy_store *store;
    unsigned char master[32];
    unsigned char key_hash_key[32];
} ctx;

static int fail(const char *msg)
{
    fprintf(stderr, "siyu: %s\n", msg);
    return 1;
}

/* Parses the command's flags.  Returns -1 to go on, else an exit code. */
static int parse(ctx *x, unsigned groups, int argc, char **argv, const char **pos, int maxpos,
                 int *npos, const char *synopsis)
{
    char err[ERRLEN];
    bool help;
    if (!sy_config_load(&x->cfg, groups, argc, argv, pos, maxpos, npos, &help, err, sizeof err)) {
        fprintf(stderr, "siyu: %s\n(see: %s --help)\n", err, synopsis);
        return 2;
    }
    if (help) {
        printf("usage: %s\n\noptions:\n", synopsis);
        sy_config_usage(stdout, groups);
        return 0;
    }
    sy_log_level lvl = SY_LOG_INFO;
    sy_log_parse_level(x->cfg.log_level, &lvl);
    sy_log_set_level(lvl);
    return -1;
}

static char *db_path(const sy_config *cfg)
{
    return sy_xasprintf("%s/siyu.db", cfg->data);
}

/* Opens the store.  create: make the data directory, the master secret and
 * the schema when missing; otherwise they must exist already. */
static int open_store(ctx *x, bool create, int readers)
{
    char err[ERRLEN];
    if (create) {
        if (mkdir(x->cfg.data, 0700) != 0 && errno != EEXIST) {
            fprintf(stderr, "siyu: cannot create %s: %s\n", x->cfg.data, strerror(errno));
            return 1;
        }
    } else {
        char *p = db_path(&x->cfg);
        bool exists = access(p, F_OK) == 0;
        free(p);
        if (!exists) {
            fprintf(stderr,
                    "siyu: no store in %s (start 'siyu serve' or run 'siyu migrate' first)\n",
                    x->cfg.data);
            return 1;
        }
    }
    if (!sy_secret_load(x->cfg.data, create, x->master, err, sizeof err))
        return fail(err);
    sy_secret_derive(x->master, SY_SUBKEY_API_KEYS, x->key_hash_key);
    sy_sync_mode sync = SY_SYNC_FULL;
    sy_config_sync_mode(&x->cfg, &sync);
    char *path = db_path(&x->cfg);
    sy_store_opts so = {.path = path, .readers = readers, .sync = sync};
    int rc = sy_store_open(&so, &x->store, err, sizeof err);
    free(path);
    if (rc != SY_OK)
        return fail(err);
    int applied;
    if (sy_store_migrate(x->store, &applied, err, sizeof err) != SY_OK)
        return fail(err);
    return 0;
}

static void close_ctx(ctx *x)
{
    sy_store_close(x->store);
    sodium_memzero(x->master, sizeof x->master);
    sodium_memzero(x->key_hash_key, sizeof x->key_hash_key);
    sy_config_free(&x->cfg);
}

static const char *operator_name(void)
{
    static char buf[80];
    struct passwd *pw = getpwuid(getuid());
    snprintf(buf, sizeof buf, "cli:%s", pw ? pw->pw_name : "?");
    return buf;
}

static void print_examples(FILE *f, const char *addr, const char *token)
{
    const char *colon = strrchr(addr, ':');
    char host[128];
    snprintf(host, sizeof host, "%.*s", colon ? (int)(colon - addr) : (int)strlen(addr), addr);
    if (!host[0] || !strcmp(host, "0.0.0.0"))
        snprintf(host, sizeof host, "127.0.0.1");
    const char *port = colon ? colon + 1 : "8080";
    fprintf(
        f,
        "Try it:\n\n"
        "  # who am I: the tenant and this key's role\n"
        "  curl -s http://%s:%s/v1/tenant -H 'Authorization: Bearer %s'\n\n"
        "  # create a key for the bank's app back end (the secret is shown once)\n"
        "  curl -s -X POST http://%s:%s/v1/keys -H 'Authorization: Bearer %s' \\\n"
        "       -H 'Content-Type: application/json' -H 'Idempotency-Key: first-app-key' \\\n"
        "       -d '{\"role\":\"app\",\"name\":\"mobile banking back end\"}'\n\n"
        "  # 分层分群: payroll customers, AUM >= 500k yuan, risk R3+, who looked at wealth\n"
        "  # products 3+ times in 7 days but bought no fund in 30 days\n"
        "  curl -s -X POST http://%s:%s/v1/segments:preview -H 'Authorization: Bearer %s' \\\n"
        "       -d '{\"expression\": \"payroll = true and aum >= 50000000 and risk_level >= R3 "
        "and did(view_wealth, 7d) >= 3 and not did(buy_fund, 30d)\", \"breakdown\": \"city\"}'\n\n"
        "  # DAU, WAU, MAU, new and returning customers of the last 30 days\n"
        "  curl -s http://%s:%s/v1/reports/activity -H 'Authorization: Bearer %s'\n\n"
        "  # the wealth funnel: login -> view -> click -> buy within a day, by risk level\n"
        "  curl -s 'http://%s:%s/v1/reports/funnel?steps=login,view_wealth,click_wealth,buy_fund"
        "&window=1d&breakdown=risk_level' -H 'Authorization: Bearer %s'\n\n"
        "  # what customer C00000001 can use right now: campaigns, packages, mall items\n"
        "  curl -s http://%s:%s/v1/customers/C00000001/offers -H 'Authorization: Bearer %s'\n\n",
        host, port, token, host, port, token, host, port, token, host, port, token, host, port,
        token, host, port, token);
}

/* ------------------------------------------------------------------ */
/* key and tenant commands                                             */

typedef struct cli_key {
    const char *tenant;
    sy_role role;
    const char *name;
    sy_new_key key;
    const char *actor;
} cli_key;

static int apply_cli_key(sy_conn *c, void *arg)
{
    cli_key *k = arg;
    json_t *t = NULL;
    if (sy_tenant_get(c, k->tenant, &t) != SY_OK || !t)
        return 1;
    json_decref(t);
    int64_t now = sy_now_ms();
    int rc = sy_key_insert(c, k->tenant, k->role, k->name, k->actor, &k->key, now);
    if (rc == SY_OK)
        rc = sy_audit_insert(c, k->tenant, k->actor, "operator", "key create", k->key.id, NULL,
                             NULL, now);
    return rc;
}

static int cmd_key(int argc, char **argv)
{
    ctx x = {0};
    const char *pos[2];
    int npos, rc;
    const char *sub = argc > 0 ? argv[0] : "";
    if (!strcmp(sub, "create")) {
        if ((rc = parse(&x, SY_CFG_KEY, argc - 1, argv + 1, pos, 0, &npos,
                        "siyu key create --tenant T --role R [--name N]")) >= 0)
            goto out;
        sy_role role;
        if (!x.cfg.role || !sy_role_parse(x.cfg.role, &role)) {
            rc = fail("--role must be admin, app, analyst or compliance");
            goto out;
        }
        if ((rc = open_store(&x, false, 1)) != 0)
            goto out;
        cli_key k = {.tenant = x.cfg.tenant,
                     .role = role,
                     .name = x.cfg.name ? x.cfg.name : "",
                     .actor = operator_name()};
        sy_key_generate(x.key_hash_key, &k.key);
        sy_mutation m = {.apply = apply_cli_key, .ctx = &k};
        int r = sy_mutation_run_direct(sy_store_write_conn(x.store), &m);
        if (r == 1) {
            fprintf(stderr, "siyu: no tenant '%s' (see: siyu tenant list)\n", x.cfg.tenant);
            rc = 1;
        } else if (r != 0) {
            fprintf(stderr, "siyu: cannot create key: %s\n",
                    sy_conn_errmsg(sy_store_write_conn(x.store)));
            rc = 1;
        } else {
            printf("%s\n", k.key.token);
            fprintf(stderr, "created %s key %s for tenant %s; the key is shown only now\n",
                    sy_role_name(role), k.key.id, x.cfg.tenant);
            if (x.cfg.examples)
                print_examples(stderr, x.cfg.examples, k.key.token);
            rc = 0;
        }
    } else if (!strcmp(sub, "list")) {
        if ((rc = parse(&x, SY_CFG_KEY, argc - 1, argv + 1, pos, 0, &npos,
                        "siyu key list --tenant T")) >= 0)
            goto out;
        if ((rc = open_store(&x, false, 1)) != 0)
            goto out;
        static const char sql[] = "SELECT id, role, name, created_at, revoked_at FROM api_keys"
                                  " WHERE tenant_id = $1 ORDER BY created_at, id";
        sy_conn *c = sy_store_acquire(x.store);
        json_t *t = NULL;
        if (sy_tenant_get(c, x.cfg.tenant, &t) != SY_OK || !t) {
            /* as key create and check say, rather than an empty list */
            sy_store_release(x.store, c);
            fprintf(stderr, "siyu: no tenant '%s' (see: siyu tenant list)\n", x.cfg.tenant);
            rc = 1;
            goto out;
        }
        json_decref(t);
        sy_stmt *st = sy_conn_prepare(c, sql);
        printf("%-18s %-11s %-24s %-25s %s\n", "ID", "ROLE", "CREATED", "REVOKED", "NAME");
        sy_stmt_bind_text(st, 1, x.cfg.tenant);
        while (st && sy_stmt_step(st) == SY_ROW) {
            char created[32], revoked[32] = "-";
            sy_format_time(sy_stmt_i64(st, 3), created, sizeof created);
            if (!sy_stmt_is_null(st, 4))
                sy_format_time(sy_stmt_i64(st, 4), revoked, sizeof revoked);
            printf("%-18s %-11s %-24s %-25s %s\n", sy_stmt_text(st, 0), sy_stmt_text(st, 1),
                   created, revoked, sy_stmt_text(st, 2));
        }
        if (st)
            sy_stmt_reset(st);
        sy_store_release(x.store, c);
        rc = 0;
    } else if (!strcmp(sub, "revoke")) {
        if ((rc = parse(&x, SY_CFG_KEY, argc - 1, argv + 1, pos, 1, &npos,
                        "siyu key revoke --tenant T KEY_ID")) >= 0)
            goto out;
        if (npos != 1) {
            rc = fail("key revoke needs the key id (see: siyu key list)");
            goto out;
        }
        if ((rc = open_store(&x, false, 1)) != 0)
            goto out;
        static const char sql[] = "UPDATE api_keys SET revoked_at = $3"
                                  " WHERE tenant_id = $1 AND id = $2 AND revoked_at IS NULL";
        sy_conn *c = sy_store_write_conn(x.store);
        sy_conn_begin(c);
        sy_stmt *st = sy_conn_prepare(c, sql);
        int64_t now = sy_now_ms();
        sy_stmt_bind_text(st, 1, x.cfg.tenant);
        sy_stmt_bind_text(st, 2, pos[0]);
        sy_stmt_bind_i64(st, 3, now);
        int r = sy_stmt_exec(st);
        int64_t changed = sy_conn_changes(c);
        if (r == SY_OK && changed == 1)
            r = sy_audit_insert(c, x.cfg.tenant, operator_name(), "operator", "key revoke", pos[0],
                                NULL, NULL, now);
        if (r == SY_OK && changed == 1 && sy_conn_commit(c) == SY_OK) {
            fprintf(stderr, "revoked %s\n", pos[0]);
            rc = 0;
        } else {
            sy_conn_rollback(c);
            fprintf(stderr, "siyu: no live key '%s' in tenant '%s'\n", pos[0], x.cfg.tenant);
            rc = 1;
        }
    } else {
        fprintf(stderr, "usage: siyu key create|list|revoke ... (see: siyu key create --help)\n");
        return 2;
    }
out:
    close_ctx(&x);
    return rc;
}

typedef struct cli_tenant {
    const char *id, *name, *tz, *actor;
} cli_tenant;

static int apply_cli_tenant(sy_conn *c, void *arg)
{
    cli_tenant *t = arg;
    int64_t now = sy_now_ms();
    int rc = sy_tenant_create(c, t->id, t->name, t->tz, now);
    if (rc == SY_OK)
        rc = sy_audit_insert(c, t->id, t->actor, "operator", "tenant create", t->id, NULL, NULL,
                             now);
    return rc;
}

static int cmd_tenant(int argc, char **argv)
{
    ctx x = {0};
    const char *pos[2];
    int npos, rc;
    const char *sub = argc > 0 ? argv[0] : "";
    if (!strcmp(sub, "create")) {
        if ((rc = parse(&x, SY_CFG_TENANT, argc - 1, argv + 1, pos, 1, &npos,
                        "siyu tenant create ID [--name N] [--timezone TZ]")) >= 0)
            goto out;
        if (npos != 1 || !sy_tenant_id_valid(pos[0])) {
            rc = fail("tenant create needs an ID of 1-32 characters [a-z0-9-]");
            goto out;
        }
        if (x.cfg.name && !sy_tenant_name_valid(x.cfg.name)) {
            rc = fail("--name must be 1-200 characters of UTF-8 without control characters");
            goto out;
        }
        if (!sy_timezone_valid(x.cfg.timezone)) {
            fprintf(stderr, "siyu: unknown time zone '%s'\n", x.cfg.timezone);
            rc = 1;
            goto out;
        }
        if ((rc = open_store(&x, true, 1)) != 0)
            goto out;
        cli_tenant t = {pos[0], x.cfg.name ? x.cfg.name : pos[0], x.cfg.timezone, operator_name()};
        sy_mutation m = {.apply = apply_cli_tenant, .ctx = &t};
        int r = sy_mutation_run_direct(sy_store_write_conn(x.store), &m);
        if (r == SY_ECONSTRAINT) {
            fprintf(stderr, "siyu: tenant '%s' exists already\n", pos[0]);
            rc = 1;
        } else if (r != 0) {
            fprintf(stderr, "siyu: %s\n", sy_conn_errmsg(sy_store_write_conn(x.store)));
            rc = 1;
        } else {
            fprintf(stderr,
                    "created tenant %s; give it an admin key with:\n"
                    "  siyu key create --tenant %s --role admin\n",
                    pos[0], pos[0]);
            rc = 0;
        }
    } else if (!strcmp(sub, "list")) {
        if ((rc = parse(&x, SY_CFG_TENANT, argc - 1, argv + 1, pos, 0, &npos,
                        "siyu tenant list")) >= 0)
            goto out;
        if ((rc = open_store(&x, false, 1)) != 0)
            goto out;
        static const char sql[] = "SELECT id, timezone, name FROM tenants ORDER BY id";
        sy_conn *c = sy_store_acquire(x.store);
        sy_stmt *st = sy_conn_prepare(c, sql);
        printf("%-32s %-20s %s\n", "ID", "TIMEZONE", "NAME");
        while (st && sy_stmt_step(st) == SY_ROW)
            printf("%-32s %-20s %s\n", sy_stmt_text(st, 0), sy_stmt_text(st, 1),
                   sy_stmt_text(st, 2));
        if (st)
            sy_stmt_reset(st);
        sy_store_release(x.store, c);
        rc = 0;
    } else {
        fprintf(stderr, "usage: siyu tenant create|list ... (see: siyu tenant create --help)\n");
        return 2;
    }
out:
    close_ctx(&x);
    return rc;
}

static int cmd_demo(int argc, char **argv)
{
    ctx x = {0};
    const char *pos[1];
    int npos;
    char err[ERRLEN];
    int rc = parse(&x, SY_CFG_DEMO, argc, argv, pos, 0, &npos,
                   "siyu demo [--tenant T] [--customers N] [--days D] [--sessions K] [--seed S]");
    if (rc >= 0)
        goto out;
    rc = 1;
    if (x.cfg.customers < 1 || x.cfg.customers > 100000000 || x.cfg.days < 1 || x.cfg.days > 3650 ||
        x.cfg.sessions < 1 || x.cfg.sessions > 50) {
        fail("--customers must be 1 to 100000000, --days 1 to 3650 and --sessions 1 to 50");
        goto out;
    }
    if (!sy_tenant_id_valid(x.cfg.tenant)) {
        fail("--tenant is not a valid tenant id");
        goto out;
    }
    if (open_store(&x, true, 1) != 0)
        goto out;
    /* The demo's personal data is sealed like real data: with the data key
     * given, or one made for the demo in the data directory. */
    sy_pii_keys pii;
    if (!sy_pii_load(x.cfg.data, x.cfg.data_key_file, true, &pii, err, sizeof err) ||
        !sy_pii_check_store(sy_store_write_conn(x.store), &pii, err, sizeof err)) {
        fail(err);
        goto out;
    }
    sy_conn *c = sy_store_write_conn(x.store);
    json_t *t = NULL;
    if (sy_tenant_get(c, x.cfg.tenant, &t) != SY_OK) {
        fail(sy_conn_errmsg(c));
        goto out;
    }
    if (!t) {
        cli_tenant ct = {x.cfg.tenant, !strcmp(x.cfg.tenant, "demo") ? "Demo Bank" : x.cfg.tenant,
                         SY_DEFAULT_TIMEZONE, operator_name()};
        sy_mutation m = {.apply = apply_cli_tenant, .ctx = &ct};
        if (sy_mutation_run_direct(c, &m) != 0) {
            fail(sy_conn_errmsg(c));
            goto out;
        }
    }
    json_decref(t);
    static const char sql[] = "SELECT COUNT(*) FROM customers WHERE tenant_id = $1";
    sy_stmt *st = sy_conn_prepare(c, sql);
    sy_stmt_bind_text(st, 1, x.cfg.tenant);
    int64_t existing = sy_stmt_step(st) == SY_ROW ? sy_stmt_i64(st, 0) : -1;
    sy_stmt_reset(st);
    if (existing != 0) {
        fprintf(stderr,
                "siyu: tenant '%s' has customers already; demo data goes into an empty "
                "tenant (e.g. --tenant demo2)\n",
                x.cfg.tenant);
        goto out;
    }
    sy_demo_opts o = {.tenant = x.cfg.tenant,
                      .customers = x.cfg.customers,
                      .days = x.cfg.days,
                      .sessions = x.cfg.sessions,
                      .seed = (uint64_t)x.cfg.seed,
                      .now_ms = sy_now_ms(),
                      .progress = isatty(STDERR_FILENO)};
    sy_demo_stats stats;
    uint64_t t0 = sy_mono_ns();
    if (sy_demo_generate(x.store, &pii, &o, &stats, err, sizeof err) != SY_OK) {
        fail(err);
        goto out;
    }
    fprintf(stderr,
            "demo: tenant %s: %lld customers, %lld identities, %lld events, %lld attributes"
            " beyond the template, %lld tags (%lld manual memberships), %lld point types,"
            " %lld benefit items in %.1f s\n",
            x.cfg.tenant, (long long)stats.customers, (long long)stats.identities,
            (long long)stats.events, (long long)stats.attributes, (long long)stats.tags,
            (long long)stats.tag_members, (long long)stats.point_types,
            (long long)stats.benefit_items, (double)(sy_mono_ns() - t0) / 1e9);
    sodium_memzero(&pii, sizeof pii);
    rc = 0;
out:
    close_ctx(&x);
    return rc;
}

int sy_cli_import(sy_config *cfg, const char *what, const char *file);

static int cmd_import(int argc, char **argv)
{
    ctx x = {0};
    const char *pos[2];
    int npos;
    int rc = parse(&x, SY_CFG_IMPORT, argc, argv, pos, 2, &npos,
                   "siyu import customers FILE.{csv,ndjson} --tenant T --key KEY [--url URL]");
    if (rc < 0) {
        if (npos != 2) {
            fprintf(stderr,
                    "usage: siyu import customers FILE.{csv,ndjson} --tenant T --key KEY\n");
            rc = 2;
        } else {
            rc = sy_cli_import(&x.cfg, pos[0], pos[1]);
        }
    }
    sy_config_free(&x.cfg);
    return rc;
}

/* Exit status: 0 every invariant holds, 1 some are broken (each named on
 * stdout), 2 bad usage, 3 the check could not run. */
static int cmd_check(int argc, char **argv)
{
    ctx x = {0};
    const char *pos[1];
    int npos;
    int rc =
        parse(&x, SY_CFG_CHECK, argc, argv, pos, 0, &npos, "siyu check --tenant T [--data DIR]");
    if (rc >= 0)
        goto out;
    rc = 3;
    if (open_store(&x, false, 1) != 0)
        goto out;
    sy_conn *c = sy_store_acquire(x.store);
    json_t *t = NULL;
    int trc = sy_tenant_get(c, x.cfg.tenant, &t);
    sy_store_release(x.store, c);
    if (trc != SY_OK || !t) {
        fprintf(stderr, "siyu: no tenant '%s' (see: siyu tenant list)\n", x.cfg.tenant);
        goto out;
    }
    json_decref(t);
    int64_t violations;
    if (sy_check_tenant(x.store, x.cfg.tenant, stdout, &violations) != SY_OK)
        goto out;
    if (violations)
        printf("tenant %s: %lld violation%s of the invariants\n", x.cfg.tenant,
               (long long)violations, violations == 1 ? "" : "s");
    else
        printf("tenant %s: every invariant holds\n", x.cfg.tenant);
    rc = violations ? 1 : 0;
out:
    close_ctx(&x);
    return rc;
}

static int cmd_migrate(int argc, char **argv)
{
    ctx x = {0};
    const char *pos[1];
    int npos;
    int rc = parse(&x, SY_CFG_DATA, argc, argv, pos, 0, &npos, "siyu migrate [--data DIR]");
    if (rc < 0) {
        rc = open_store(&x, true, 1);
        if (rc == 0) {
            sy_conn *c = sy_store_acquire(x.store);
            int v = 0;
            sy_store_schema_version(c, &v);
            sy_store_release(x.store, c);
            printf("schema version %d (latest %d)\n", v, sy_store_latest_version());
        }
    }
    close_ctx(&x);
    return rc;
}

/* ------------------------------------------------------------------ */
/* serve                                                               */

/* On a store without tenants: create the first tenant and its admin key.
 * Fills token with the key (shown once).  Returns false on failure. */
static bool bootstrap(ctx *x, char *token, size_t toklen)
{
    token[0] = '\0';
    sy_conn *c = sy_store_write_conn(x->store);
    int64_t n;
    if (sy_tenant_count(c, &n) != SY_OK)
        return false;
    if (n > 0)
        return true;
    if (!sy_tenant_id_valid(x->cfg.tenant)) {
        fprintf(stderr, "siyu: --tenant '%s' is not a valid tenant id\n", x->cfg.tenant);
        return false;
    }
    cli_tenant t = {x->cfg.tenant, !strcmp(x->cfg.tenant, "demo") ? "Demo Bank" : x->cfg.tenant,
                    SY_DEFAULT_TIMEZONE, "bootstrap"};
    cli_key k = {
        .tenant = x->cfg.tenant, .role = SY_ROLE_ADMIN, .name = "bootstrap", .actor = "bootstrap"};
    sy_key_generate(x->key_hash_key, &k.key);
    if (sy_conn_begin(c) != SY_OK || apply_cli_tenant(c, &t) != SY_OK ||
        apply_cli_key(c, &k) != SY_OK || sy_conn_commit(c) != SY_OK) {
        fprintf(stderr, "siyu: bootstrap failed: %s\n", sy_conn_errmsg(c));
        sy_conn_rollback(c);
        return false;
    }
    snprintf(token, toklen, "%s", k.key.token);
    return true;
}

typedef struct purge_ctx {
    int64_t before;
} purge_ctx;

static int apply_purge(sy_conn *c, void *arg)
{
    static const char sql[] = "DELETE FROM idempotency WHERE created_at < $1";
    purge_ctx *p = arg;
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_i64(st, 1, p->before);
    return sy_stmt_exec(st);
}

static int open_access_log(const char *spec)
{
    if (!strcmp(spec, "off"))
        return -1;
    if (!strcmp(spec, "-"))
        return STDOUT_FILENO;
    int fd = open(spec, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0)
        fprintf(stderr, "siyu: cannot open access log %s: %s\n", spec, strerror(errno));
    return fd < 0 ? -2 : fd;
}

static int cmd_serve(int argc, char **argv)
{
    ctx x = {0};
    const char *pos[1];
    int npos, rc;
    char err[ERRLEN];
    int lock_fd = -1, log_fd = -1;
    sy_writer *writer = NULL;
    sy_keys *keys = NULL;
    sy_tenants *tenants = NULL;
    sy_schemas *schemas = NULL;
    sy_indexes *indexes = NULL;
    sy_pii_keys pii;
    sy_server *srv = NULL;
    if ((rc = parse(&x, SY_CFG_SERVE, argc, argv, pos, 0, &npos,
                    "siyu serve [--listen ADDR:PORT] [--data DIR] [--config FILE]")) >= 0)
        goto out;
    rc = 1;
    /* Signals go to the main thread only: block them before any thread starts. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int threads = x.cfg.threads > 0 ? (int)x.cfg.threads : (int)(cores > 0 ? cores : 1);
    int readers = x.cfg.readers > 0 ? (int)x.cfg.readers : threads + 1;
    if (mkdir(x.cfg.data, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "siyu: cannot create %s: %s\n", x.cfg.data, strerror(errno));
        goto out;
    }
    char *lock_path = sy_xasprintf("%s/siyu.lock", x.cfg.data);
    lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    free(lock_path);
    if (lock_fd < 0 || flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
        fprintf(stderr, "siyu: another siyu serve is using %s\n", x.cfg.data);
        goto out;
    }
    if ((log_fd = open_access_log(x.cfg.access_log)) == -2)
        goto out;
    /* Personal data is encrypted with a key the bank provides: no key, no
     * server (a demo bank makes its own). */
    if (!sy_pii_load(x.cfg.data, x.cfg.data_key_file, x.cfg.demo, &pii, err, sizeof err)) {
        fprintf(stderr, "siyu: %s\n", err);
        goto out;
    }
    if (open_store(&x, true, readers) != 0)
        goto out;
    if (!sy_pii_check_store(sy_store_write_conn(x.store), &pii, err, sizeof err)) {
        fprintf(stderr, "siyu: %s\n", err);
        goto out;
    }
    char token[80];
    if (!bootstrap(&x, token, sizeof token))
        goto out;

    /* Customers written before their attributes were packed (migration
     * 0007) are packed once, before anything reads or writes them. */
    int64_t packed;
    if (sy_customers_pack_backlog(x.store, &packed) != SY_OK) {
        fprintf(stderr, "siyu: packing attributes failed: %s\n",
                sy_conn_errmsg(sy_store_write_conn(x.store)));
        goto out;
    }

    sy_routes_init();
    writer = sy_writer_start(x.store, &(sy_writer_opts){.max_batch = (int)x.cfg.max_batch});
    keys = sy_keys_new(x.store, x.key_hash_key);
    tenants = sy_tenants_new(x.store);
    schemas = sy_schemas_new(x.store);
    indexes = sy_indexes_new(x.store, tenants, schemas);
    /* The segment indexes are derived: rebuilt from the store at start. */
    if (sy_indexes_build_all(indexes) != SY_OK) {
        fprintf(stderr, "siyu: building the indexes failed\n");
        goto out;
    }
    sy_app app = {.cfg = &x.cfg,
                  .store = x.store,
                  .writer = writer,
                  .keys = keys,
                  .tenants = tenants,
                  .schemas = schemas,
                  .pii = &pii,
                  .indexes = indexes};
    sy_server_opts so = {.listen = x.cfg.listen,
                         .threads = threads,
                         .max_body = (size_t)x.cfg.max_body,
                         .access_log_fd = log_fd,
                         .connection_timeout = (unsigned)x.cfg.idle_timeout};
    srv = sy_server_start(&app, &so, err, sizeof err);
    if (!srv) {
        fprintf(stderr, "siyu: %s\n", err);
        goto out;
    }
    int port = sy_server_port(srv);
    char addr[300];
    const char *colon = strrchr(x.cfg.listen, ':');
    snprintf(addr, sizeof addr, "%.*s:%d", (int)(colon - x.cfg.listen), x.cfg.listen, port);
    sy_info("siyu %s serving on %s (data %s, %d threads, sync=%s)", SY_VERSION, addr, x.cfg.data,
            threads, x.cfg.sync);
    if (x.cfg.test_clock)
        sy_warn("--test-clock: requests may set the current time with X-Siyu-Now; this server"
                " is for tests only");
    if (token[0]) {
        fprintf(stderr,
                "\n==> First start: created tenant '%s' and its admin key.\n"
                "    Store this key now; it is shown only once:\n\n"
                "    %s\n\n",
                x.cfg.tenant, token);
        print_examples(stderr, addr, token);
        sodium_memzero(token, sizeof token);
    }

    /* The port file says "ready": write it last, after the banner. */
    if (x.cfg.port_file) {
        char *tmp = sy_xasprintf("%s.tmp", x.cfg.port_file);
        FILE *pf = fopen(tmp, "w");
        if (pf) {
            fprintf(pf, "%d\n", port);
            fclose(pf);
            rename(tmp, x.cfg.port_file);
        }
        free(tmp);
    }
    int64_t next_maintenance = 0;
    for (;;) {
        struct timespec wait = {1, 0};
        int sig = sigtimedwait(&sigs, NULL, &wait);
        if (sig == SIGTERM || sig == SIGINT) {
            sy_info("received %s: shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
            break;
        }
        int64_t now = sy_now_ms();
        if (now >= next_maintenance) {
            purge_ctx p = {now - SY_IDEMPOTENCY_TTL_MS};
            sy_mutation m = {.apply = apply_purge, .ctx = &p};
            sy_writer_run(writer, &m);
            sy_api_segment_sizes_job(&app);
            sy_api_points_expire_job(&app);
            sy_api_grants_expire_job(&app);
            sy_api_referral_expire_job(&app);
            next_maintenance = now + MAINTENANCE_EVERY_S * 1000;
        }
    }
    rc = 0;
out:
    /* Order matters: stop taking requests and finish them, then commit
     * what is queued, then close the store. */
    sy_server_stop(srv, (int)x.cfg.shutdown_grace);
    sy_writer_stop(writer);
    sy_keys_free(keys);
    sy_tenants_free(tenants);
    sy_indexes_free(indexes);
    sy_schemas_free(schemas);
    sodium_memzero(&pii, sizeof pii);
    if (x.store)
        sy_info("store closed cleanly");
    close_ctx(&x);
    sy_metrics_free();
    if (log_fd > STDOUT_FILENO)
        close(log_fd);
    if (lock_fd >= 0)
        close(lock_fd);
    return rc;
}

int main(int argc, char **argv)
{
    if (sodium_init() < 0)
        return fail("libsodium failed to initialise");
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
        !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "serve"))
        return cmd_serve(argc - 2, argv + 2);
    if (!strcmp(cmd, "migrate"))
        return cmd_migrate(argc - 2, argv + 2);
    if (!strcmp(cmd, "demo"))
        return cmd_demo(argc - 2, argv + 2);
    if (!strcmp(cmd, "import"))
        return cmd_import(argc - 2, argv + 2);
    if (!strcmp(cmd, "key"))
        return cmd_key(argc - 2, argv + 2);
    if (!strcmp(cmd, "tenant"))
        return cmd_tenant(argc - 2, argv + 2);
    if (!strcmp(cmd, "check"))
        return cmd_check(argc - 2, argv + 2);
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        if (argc > 2 && (!strcmp(argv[2], "--help") || !strcmp(argv[2], "-h"))) {
            printf("usage: siyu version\n\nPrints the version of this siyu binary.\n");
            return 0;
        }
        printf("siyu %s\n", SY_VERSION);
        return 0;
    }
    fprintf(stderr, "siyu: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return 2;
}

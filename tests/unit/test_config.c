/* test_config.c — sy_config_load: flags > SIYU_* environment > config file >
 * defaults, the two flag forms, positional arguments, --help, and the error
 * messages for every kind of bad input. */
#include "testutil.h"

#include "config.h"

#include <stdbool.h>

extern char **environ;

/* Removes every SIYU_* variable so the tests see only what they set. */
static void clear_siyu_env(void)
{
    for (;;) {
        char name[256] = "";
        for (char **e = environ; e && *e; e++) {
            if (strncmp(*e, "SIYU_", 5) == 0) {
                const char *eq = strchr(*e, '=');
                size_t n = eq ? (size_t)(eq - *e) : strlen(*e);
                if (n >= sizeof name)
                    n = sizeof name - 1;
                memcpy(name, *e, n);
                name[n] = '\0';
                break;
            }
        }
        if (!name[0])
            return;
        unsetenv(name);
    }
}

typedef struct fixture {
    char *dir;
    char path[512]; /* a config file inside dir */
} fixture;

static int setup(void **state)
{
    clear_siyu_env();
    fixture *f = calloc(1, sizeof *f);
    f->dir = tu_tempdir();
    snprintf(f->path, sizeof f->path, "%s/siyu.conf", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    clear_siyu_env();
    tu_rmtree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static void write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    assert_int_equal(fputs(text, fp) >= 0, 1);
    assert_int_equal(fclose(fp), 0);
}

/* One load: argv is a NULL-terminated list of arguments. */
typedef struct result {
    sy_config cfg;
    bool ok;
    bool help;
    const char *pos[4];
    int npos;
    char err[512];
} result;

static void load_v(result *r, unsigned groups, int maxpos, const char *const *args)
{
    char *argv[32];
    int argc = 0;
    while (args[argc]) {
        assert_true(argc < 31);
        argv[argc] = (char *)args[argc];
        argc++;
    }
    argv[argc] = NULL;
    memset(r, 0, sizeof *r);
    r->help = true; /* must be reset by the loader */
    r->npos = -1;
    r->ok = sy_config_load(&r->cfg, groups, argc, argv, r->pos, maxpos, &r->npos, &r->help, r->err,
                           sizeof r->err);
}

#define LOAD(r, groups, ...)                                                                       \
    do {                                                                                           \
        const char *const args_[] = {__VA_ARGS__, NULL};                                           \
        load_v((r), (groups), 4, args_);                                                           \
    } while (0)
#define LOAD0(r, groups)                                                                           \
    do {                                                                                           \
        const char *const args_[] = {NULL};                                                        \
        load_v((r), (groups), 4, args_);                                                           \
    } while (0)

static void expect_error(result *r, const char *needle1, const char *needle2)
{
    if (r->ok)
        fail_msg("load succeeded; expected an error naming '%s'", needle1);
    if (!strstr(r->err, needle1))
        fail_msg("error \"%s\" does not name '%s'", r->err, needle1);
    if (needle2 && !strstr(r->err, needle2))
        fail_msg("error \"%s\" does not mention '%s'", r->err, needle2);
    sy_config_free(&r->cfg);
}

static void test_defaults(void **state)
{
    (void)state;
    result r;
    LOAD0(&r, SY_CFG_SERVE);
    assert_true(r.ok);
    assert_false(r.help);
    assert_int_equal(r.npos, 0);
    assert_string_equal(r.cfg.listen, "127.0.0.1:8080");
    assert_string_equal(r.cfg.data, "./data");
    assert_null(r.cfg.config);
    assert_int_equal(r.cfg.threads, 0);
    assert_int_equal(r.cfg.readers, 0);
    assert_int_equal(r.cfg.max_body, 8ull * 1024 * 1024);
    assert_string_equal(r.cfg.sync, "full");
    assert_string_equal(r.cfg.access_log, "-");
    assert_string_equal(r.cfg.log_level, "info");
    assert_int_equal(r.cfg.idle_timeout, 60);
    assert_int_equal(r.cfg.shutdown_grace, 10000);
    assert_string_equal(r.cfg.tenant, "demo");
    assert_null(r.cfg.port_file);
    assert_int_equal(r.cfg.max_batch, 1024);
    assert_null(r.cfg.role);
    sy_sync_mode m = SY_SYNC_NORMAL;
    assert_true(sy_config_sync_mode(&r.cfg, &m));
    assert_int_equal(m, SY_SYNC_FULL);
    sy_config_free(&r.cfg);
    assert_null(r.cfg.listen);
    assert_null(r.cfg.data);
}

/* Each layer is checked on a setting that only it and the layers below set. */
static void test_precedence_flag_env_file_default(void **state)
{
    fixture *f = *state;
    write_file(f->path, "# layered settings\n"
                        "listen = 10.0.0.1:1\n"
                        "threads = 3\n"
                        "max_body = 1MiB\n"
                        "idle_timeout = 5\n");
    setenv("SIYU_CONFIG", f->path, 1);
    setenv("SIYU_LISTEN", "10.0.0.2:2", 1);
    setenv("SIYU_THREADS", "5", 1);
    setenv("SIYU_SHUTDOWN_GRACE", "77", 1);

    result r;
    LOAD(&r, SY_CFG_SERVE, "--listen", "10.0.0.3:3", "--shutdown-grace=88");
    assert_true(r.ok);
    assert_string_equal(r.cfg.config, f->path);
    /* flag beats env and file */
    assert_string_equal(r.cfg.listen, "10.0.0.3:3");
    /* flag beats env */
    assert_int_equal(r.cfg.shutdown_grace, 88);
    /* env beats file */
    assert_int_equal(r.cfg.threads, 5);
    /* file beats default */
    assert_int_equal(r.cfg.max_body, 1024 * 1024);
    assert_int_equal(r.cfg.idle_timeout, 5);
    /* default when nobody sets it */
    assert_int_equal(r.cfg.max_batch, 1024);
    assert_string_equal(r.cfg.sync, "full");
    sy_config_free(&r.cfg);

    /* Without the env layer the file value shows through; without the flag
     * the env value does. */
    unsetenv("SIYU_THREADS");
    LOAD0(&r, SY_CFG_SERVE);
    assert_true(r.ok);
    assert_int_equal(r.cfg.threads, 3);
    assert_string_equal(r.cfg.listen, "10.0.0.2:2");
    assert_int_equal(r.cfg.shutdown_grace, 77);
    sy_config_free(&r.cfg);

    /* A flag also beats the file directly. */
    unsetenv("SIYU_CONFIG");
    LOAD(&r, SY_CFG_SERVE, "--config", f->path, "--max-body", "2MiB");
    assert_true(r.ok);
    assert_int_equal(r.cfg.max_body, 2 * 1024 * 1024);
    assert_int_equal(r.cfg.threads, 3);
    sy_config_free(&r.cfg);
}

static void test_empty_env_value_is_ignored(void **state)
{
    fixture *f = *state;
    write_file(f->path, "threads = 4\n");
    setenv("SIYU_THREADS", "", 1);
    setenv("SIYU_LOG_LEVEL", "", 1);
    result r;
    LOAD(&r, SY_CFG_SERVE, "--config", f->path);
    assert_true(r.ok);
    assert_int_equal(r.cfg.threads, 4);
    assert_string_equal(r.cfg.log_level, "info");
    sy_config_free(&r.cfg);
}

static void test_env_names_use_underscores(void **state)
{
    (void)state;
    setenv("SIYU_MAX_BODY", "64k", 1);
    setenv("SIYU_ACCESS_LOG", "off", 1);
    setenv("SIYU_PORT_FILE", "/tmp/port", 1);
    setenv("SIYU_MAX_BATCH", "16", 1);
    setenv("SIYU_SYNC", "normal", 1);
    result r;
    LOAD0(&r, SY_CFG_SERVE);
    assert_true(r.ok);
    assert_int_equal(r.cfg.max_body, 64 * 1024);
    assert_string_equal(r.cfg.access_log, "off");
    assert_string_equal(r.cfg.port_file, "/tmp/port");
    assert_int_equal(r.cfg.max_batch, 16);
    sy_sync_mode m = SY_SYNC_FULL;
    assert_true(sy_config_sync_mode(&r.cfg, &m));
    assert_int_equal(m, SY_SYNC_NORMAL);
    sy_config_free(&r.cfg);
}

static void test_flag_forms(void **state)
{
    (void)state;
    result r;
    LOAD(&r, SY_CFG_SERVE, "--threads=7", "--listen", "0.0.0.0:9", "--max-body", "512k",
         "--access-log=/var/log/x=y");
    assert_true(r.ok);
    assert_int_equal(r.npos, 0);
    assert_int_equal(r.cfg.threads, 7);
    assert_string_equal(r.cfg.listen, "0.0.0.0:9");
    assert_int_equal(r.cfg.max_body, 512 * 1024);
    /* Only the first '=' separates name from value. */
    assert_string_equal(r.cfg.access_log, "/var/log/x=y");
    sy_config_free(&r.cfg);

    /* The last of repeated flags wins. */
    LOAD(&r, SY_CFG_SERVE, "--threads", "1", "--threads=2");
    assert_true(r.ok);
    assert_int_equal(r.cfg.threads, 2);
    sy_config_free(&r.cfg);

    /* A value that looks like a flag is still the value in the spaced form. */
    LOAD(&r, SY_CFG_KEY, "--name", "--weird", "--role", "app");
    assert_true(r.ok);
    assert_string_equal(r.cfg.name, "--weird");
    assert_string_equal(r.cfg.role, "app");
    sy_config_free(&r.cfg);
}

static void test_flag_without_value_is_an_error(void **state)
{
    (void)state;
    result r;
    LOAD(&r, SY_CFG_SERVE, "--threads");
    expect_error(&r, "threads", NULL);
}

static void test_unknown_flag_is_an_error(void **state)
{
    (void)state;
    result r;
    LOAD(&r, SY_CFG_SERVE, "--bogus=1");
    expect_error(&r, "--bogus", NULL);

    LOAD(&r, SY_CFG_SERVE, "--threads", "2", "--colour", "red");
    expect_error(&r, "--colour", NULL);

    /* The file spelling is not a flag. */
    LOAD(&r, SY_CFG_SERVE, "--max_body", "1k");
    expect_error(&r, "--max_body", NULL);

    /* A setting of another command is unknown to this one. */
    LOAD(&r, SY_CFG_SERVE, "--role", "admin");
    expect_error(&r, "--role", NULL);
    LOAD(&r, SY_CFG_KEY, "--listen", "127.0.0.1:1");
    expect_error(&r, "--listen", NULL);
}

static void test_unknown_file_key_is_an_error(void **state)
{
    fixture *f = *state;
    result r;
    write_file(f->path, "threads = 2\ncolour = red\n");
    LOAD(&r, SY_CFG_SERVE, "--config", f->path);
    expect_error(&r, "colour", ":2");

    /* The flag spelling is not a file key. */
    write_file(f->path, "max-body = 1k\n");
    LOAD(&r, SY_CFG_SERVE, "--config", f->path);
    expect_error(&r, "max-body", ":1");

    /* A config file cannot name another config file. */
    write_file(f->path, "config = /etc/other.conf\n");
    LOAD(&r, SY_CFG_SERVE, "--config", f->path);
    expect_error(&r, "config", ":1");

    write_file(f->path, "\n# comment\nthreads 2\n");
    LOAD(&r, SY_CFG_SERVE, "--config", f->path);
    expect_error(&r, ":3", NULL);

    /* A line longer than any fixed buffer is read whole: the long value is
     * kept and the error on the next line names that line. */
    char longline[1300];
    int n = snprintf(longline, sizeof longline, "access_log = /var/log/");
    memset(longline + n, 'a', 1100);
    snprintf(longline + n + 1100, sizeof longline - (size_t)n - 1100, ".log\nthreads = x\n");
    write_file(f->path, longline);
    LOAD(&r, SY_CFG_SERVE, "--config", f->path);
    expect_error(&r, "threads", ":2");

    /* A missing file is an error that names it. */
    char missing[600];
    snprintf(missing, sizeof missing, "%s/nope.conf", f->dir);
    const char *args[] = {"--config", missing, NULL};
    load_v(&r, SY_CFG_SERVE, 4, args);
    expect_error(&r, missing, NULL);
}

static void test_file_syntax(void **state)
{
    fixture *f = *state;
    write_file(f->path, "  # indented comment\n"
                        "\n"
                        "   \t\n"
                        "   threads=  9  \n"
                        "listen   =   [::1]:8080\t\n"
                        "tenant = bank one\n"
                        "role = admin\n" /* another command's setting: ignored */
                        "timezone = Europe/Paris\n");
    result r;
    LOAD(&r, SY_CFG_SERVE, "--config", f->path);
    assert_true(r.ok);
    assert_int_equal(r.cfg.threads, 9);
    assert_string_equal(r.cfg.listen, "[::1]:8080");
    assert_string_equal(r.cfg.tenant, "bank one");
    assert_null(r.cfg.role);
    sy_config_free(&r.cfg);

    /* The same file read by the key command takes role. */
    write_file(f->path, "role = admin\nname = from file\nlisten = 1.2.3.4:5\n");
    LOAD(&r, SY_CFG_KEY, "--config", f->path, "--name", "from flag");
    assert_true(r.ok);
    assert_string_equal(r.cfg.role, "admin");
    assert_string_equal(r.cfg.name, "from flag");
    sy_config_free(&r.cfg);
}

static void test_bad_int_is_an_error(void **state)
{
    fixture *f = *state;
    result r;
    LOAD(&r, SY_CFG_SERVE, "--threads", "abc");
    expect_error(&r, "threads", "abc");
    LOAD(&r, SY_CFG_SERVE, "--threads=-1");
    expect_error(&r, "threads", "-1");
    LOAD(&r, SY_CFG_SERVE, "--idle-timeout= 5");
    expect_error(&r, "idle-timeout", NULL);
    LOAD(&r, SY_CFG_SERVE, "--readers=");
    expect_error(&r, "readers", NULL);
    LOAD(&r, SY_CFG_SERVE, "--max-batch", "99999999999999999999");
    expect_error(&r, "max-batch", NULL);

    setenv("SIYU_MAX_BATCH", "lots", 1);
    LOAD0(&r, SY_CFG_SERVE);
    expect_error(&r, "max-batch", "lots");
    /* The error also says where the value came from. */
    LOAD0(&r, SY_CFG_SERVE);
    expect_error(&r, "SIYU_MAX_BATCH", NULL);
    unsetenv("SIYU_MAX_BATCH");

    write_file(f->path, "shutdown_grace = 1.5\n");
    LOAD(&r, SY_CFG_SERVE, "--config", f->path);
    expect_error(&r, "shutdown-grace", "1.5");
}

static void test_bad_size_is_an_error(void **state)
{
    fixture *f = *state;
    result r;
    LOAD(&r, SY_CFG_SERVE, "--max-body", "8XB");
    expect_error(&r, "max-body", "8XB");
    LOAD(&r, SY_CFG_SERVE, "--max-body=0");
    expect_error(&r, "max-body", NULL);
    setenv("SIYU_MAX_BODY", "-5", 1);
    LOAD0(&r, SY_CFG_SERVE);
    expect_error(&r, "max-body", "-5");
    unsetenv("SIYU_MAX_BODY");
    write_file(f->path, "max_body = lots\n");
    LOAD(&r, SY_CFG_SERVE, "--config", f->path);
    expect_error(&r, "max-body", "lots");
}

static void test_bad_sync_is_an_error(void **state)
{
    fixture *f = *state;
    result r;
    LOAD(&r, SY_CFG_SERVE, "--sync", "sometimes");
    expect_error(&r, "sync", "sometimes");
    setenv("SIYU_SYNC", "FULL", 1);
    LOAD0(&r, SY_CFG_SERVE);
    expect_error(&r, "sync", "FULL");
    unsetenv("SIYU_SYNC");
    write_file(f->path, "sync = off\n");
    LOAD(&r, SY_CFG_SERVE, "--config", f->path);
    expect_error(&r, "sync", "off");

    LOAD(&r, SY_CFG_SERVE, "--sync", "normal");
    assert_true(r.ok);
    sy_sync_mode m = SY_SYNC_FULL;
    assert_true(sy_config_sync_mode(&r.cfg, &m));
    assert_int_equal(m, SY_SYNC_NORMAL);
    sy_config_free(&r.cfg);
}

static void test_bad_log_level_is_an_error(void **state)
{
    fixture *f = *state;
    result r;
    LOAD(&r, SY_CFG_SERVE, "--log-level=loud");
    expect_error(&r, "log-level", "loud");
    write_file(f->path, "log_level = trace\n");
    LOAD(&r, SY_CFG_TENANT, "--config", f->path);
    expect_error(&r, "log-level", "trace");

    LOAD(&r, SY_CFG_TENANT, "--log-level", "warn");
    assert_true(r.ok);
    assert_string_equal(r.cfg.log_level, "warn");
    sy_config_free(&r.cfg);
}

static void test_positional_arguments(void **state)
{
    (void)state;
    static const char *const args[] = {"first", "--threads", "2", "second", NULL};
    result r;
    load_v(&r, SY_CFG_SERVE, 2, args);
    assert_true(r.ok);
    assert_int_equal(r.npos, 2);
    assert_string_equal(r.pos[0], "first");
    assert_string_equal(r.pos[1], "second");
    /* The value of a spaced flag is not a positional argument. */
    assert_int_equal(r.cfg.threads, 2);
    sy_config_free(&r.cfg);

    /* More than maxpos is an error naming the extra argument. */
    load_v(&r, SY_CFG_SERVE, 1, args);
    expect_error(&r, "second", NULL);

    static const char *const one[] = {"only", NULL};
    load_v(&r, SY_CFG_SERVE, 0, one);
    expect_error(&r, "only", NULL);
}

static void test_help_flag(void **state)
{
    (void)state;
    result r;
    LOAD(&r, SY_CFG_SERVE, "--help");
    assert_true(r.ok);
    assert_true(r.help);
    assert_int_equal(r.npos, 0);
    sy_config_free(&r.cfg);

    LOAD(&r, SY_CFG_KEY, "--role", "app", "-h");
    assert_true(r.ok);
    assert_true(r.help);
    assert_string_equal(r.cfg.role, "app");
    sy_config_free(&r.cfg);

    LOAD(&r, SY_CFG_KEY, "--role", "app");
    assert_true(r.ok);
    assert_false(r.help);
    sy_config_free(&r.cfg);
}

static void test_usage_lists_settings_of_the_command(void **state)
{
    (void)state;
    char *text = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&text, &len);
    assert_non_null(fp);
    sy_config_usage(fp, SY_CFG_SERVE);
    fclose(fp);
    assert_non_null(strstr(text, "--max-body"));
    assert_non_null(strstr(text, "SIYU_MAX_BODY"));
    assert_non_null(strstr(text, "--data"));
    assert_null(strstr(text, "--role"));
    free(text);
}

int main(void)
{
    const struct CMUnitTest config_precedence_and_errors[] = {
        cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_precedence_flag_env_file_default, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_env_value_is_ignored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_env_names_use_underscores, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flag_forms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flag_without_value_is_an_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_flag_is_an_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_file_key_is_an_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_syntax, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_int_is_an_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_size_is_an_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_sync_is_an_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_log_level_is_an_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_positional_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_help_flag, setup, teardown),
        cmocka_unit_test_setup_teardown(test_usage_lists_settings_of_the_command, setup, teardown),
    };
    return cmocka_run_group_tests(config_precedence_and_errors, NULL, NULL);
}

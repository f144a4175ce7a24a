/* test_store.c — the SQLite store: migrations, $N placeholders, error
 * mapping, savepoints, the statement cache and the read-connection pool. */
#include "testutil.h"

#include "store.h"
#include "util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <time.h>

typedef struct fixture {
    char *dir;
    char path[512];
    sy_store *store;
} fixture;

static void open_store(fixture *f, int readers)
{
    sy_store_opts o = {.path = f->path, .readers = readers, .sync = SY_SYNC_NORMAL};
    char err[256] = "";
    int rc = sy_store_open(&o, &f->store, err, sizeof err);
    if (rc != SY_OK)
        fail_msg("sy_store_open: %s", err);
    assert_non_null(f->store);
}

static void migrate(fixture *f, int *applied)
{
    char err[256] = "";
    int rc = sy_store_migrate(f->store, applied, err, sizeof err);
    if (rc != SY_OK)
        fail_msg("sy_store_migrate: %s", err);
}

static int setup_common(void **state, int readers, bool do_migrate)
{
    sy_log_set_level(SY_LOG_WARN);
    fixture *f = calloc(1, sizeof *f);
    f->dir = tu_tempdir();
    snprintf(f->path, sizeof f->path, "%s/siyu.db", f->dir);
    open_store(f, readers);
    if (do_migrate) {
        int applied;
        migrate(f, &applied);
    }
    *state = f;
    return 0;
}

static int setup_bare(void **state)
{
    return setup_common(state, 2, false);
}

static int setup_migrated(void **state)
{
    return setup_common(state, 2, true);
}

static int setup_one_reader(void **state)
{
    return setup_common(state, 1, true);
}

static int teardown(void **state)
{
    fixture *f = *state;
    sy_store_close(f->store);
    tu_rmtree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

/* Counts rows of tenants with the given id on connection c. */
static int64_t tenant_rows(sy_conn *c, const char *id)
{
    static const char sql[] = "SELECT COUNT(*) FROM tenants WHERE id = $1";
    sy_stmt *st = sy_conn_prepare(c, sql);
    assert_non_null(st);
    sy_stmt_bind_text(st, 1, id);
    assert_int_equal(sy_stmt_step(st), SY_ROW);
    int64_t n = sy_stmt_i64(st, 0);
    sy_stmt_reset(st);
    return n;
}

static int insert_tenant(sy_conn *c, const char *id)
{
    static const char sql[] = "INSERT INTO tenants (id, name, timezone, created_at, updated_at)"
                              " VALUES ($1, $2, 'Asia/Shanghai', $3, $3)";
    sy_stmt *st = sy_conn_prepare(c, sql);
    assert_non_null(st);
    sy_stmt_bind_text(st, 1, id);
    sy_stmt_bind_text(st, 2, id);
    sy_stmt_bind_i64(st, 3, 1700000000000);
    return sy_stmt_exec(st);
}

/* ---- migrations ---- */

static void test_migrate_applies_all_then_nothing(void **state)
{
    fixture *f = *state;
    sy_conn *w = sy_store_write_conn(f->store);
    int current = -1;
    /* Before the first migration there is no schema_version table. */
    assert_int_not_equal(sy_store_schema_version(w, &current), SY_OK);
    assert_int_equal(current, 0);

    assert_true(sy_migrations_count >= 1);
    assert_true(sy_store_latest_version() >= 1);
    assert_int_equal(sy_store_latest_version(), sy_migrations[sy_migrations_count - 1].version);

    int applied = -1;
    migrate(f, &applied);
    assert_int_equal(applied, sy_migrations_count);
    assert_int_equal(sy_store_schema_version(w, &current), SY_OK);
    assert_int_equal(current, sy_store_latest_version());

    /* The schema exists. */
    assert_int_equal(insert_tenant(w, "acme"), SY_OK);
    assert_int_equal(tenant_rows(w, "acme"), 1);

    /* Each migration is recorded once, with its name. */
    static const char q[] = "SELECT COUNT(*), MIN(name) FROM schema_version";
    sy_stmt *st = sy_conn_prepare(w, q);
    assert_non_null(st);
    assert_int_equal(sy_stmt_step(st), SY_ROW);
    assert_int_equal(sy_stmt_i64(st, 0), sy_migrations_count);
    assert_string_equal(sy_stmt_text(st, 1), sy_migrations[0].name);
    sy_stmt_reset(st);

    /* Second run: idempotent. */
    applied = -1;
    migrate(f, &applied);
    assert_int_equal(applied, 0);
    assert_int_equal(sy_store_schema_version(w, &current), SY_OK);
    assert_int_equal(current, sy_store_latest_version());
    assert_int_equal(tenant_rows(w, "acme"), 1);

    /* After reopening the file: still nothing to apply, data kept. */
    sy_store_close(f->store);
    f->store = NULL;
    open_store(f, 1);
    applied = -1;
    migrate(f, &applied);
    assert_int_equal(applied, 0);
    w = sy_store_write_conn(f->store);
    assert_int_equal(sy_store_schema_version(w, &current), SY_OK);
    assert_int_equal(current, sy_store_latest_version());
    assert_int_equal(tenant_rows(w, "acme"), 1);

    /* A migration missing below the newest one applied (a branch's,
     * merged after a later one landed) is applied all the same: undo
     * 0013 (store_settings and an index) and forget it. */
    assert_int_equal(sy_conn_exec(w,
                                  "DROP TABLE store_settings; DROP INDEX identities_type_customer;"
                                  " DELETE FROM schema_version WHERE version = 13"),
                     SY_OK);
    assert_int_equal(sy_store_schema_version(w, &current), SY_OK);
    assert_int_equal(current, sy_store_latest_version()); /* the newest is still there */
    applied = -1;
    migrate(f, &applied);
    assert_int_equal(applied, 1);
    assert_int_equal(sy_conn_exec(w, "SELECT count(*) FROM store_settings"), SY_OK);
}

static void test_open_fails_with_message(void **state)
{
    fixture *f = *state;
    char path[600];
    snprintf(path, sizeof path, "%s/no/such/dir/x.db", f->dir);
    sy_store_opts o = {.path = path, .readers = 1, .sync = SY_SYNC_FULL};
    sy_store *s = NULL;
    char err[256] = "";
    assert_int_not_equal(sy_store_open(&o, &s, err, sizeof err), SY_OK);
    assert_true(err[0] != '\0');
}

/* ---- placeholders ---- */

static void test_placeholders_bound_by_number(void **state)
{
    fixture *f = *state;
    sy_conn *c = sy_store_write_conn(f->store);

    static const char swap[] = "SELECT $2 || $1";
    sy_stmt *st = sy_conn_prepare(c, swap);
    assert_non_null(st);
    sy_stmt_bind_text(st, 1, "a");
    sy_stmt_bind_text(st, 2, "b");
    assert_int_equal(sy_stmt_step(st), SY_ROW);
    assert_string_equal(sy_stmt_text(st, 0), "ba");
    assert_int_equal(sy_stmt_len(st, 0), 2);
    assert_int_equal(sy_stmt_step(st), SY_DONE);
    sy_stmt_reset(st);

    /* Binding order does not matter either. */
    st = sy_conn_prepare(c, swap);
    sy_stmt_bind_text(st, 2, "first");
    sy_stmt_bind_text(st, 1, "second");
    assert_int_equal(sy_stmt_step(st), SY_ROW);
    assert_string_equal(sy_stmt_text(st, 0), "firstsecond");
    sy_stmt_reset(st);

    static const char three[] = "SELECT $3, $1 - $2, $2";
    st = sy_conn_prepare(c, three);
    assert_non_null(st);
    sy_stmt_bind_i64(st, 1, 100);
    sy_stmt_bind_i64(st, 2, 30);
    sy_stmt_bind_i64(st, 3, INT64_MAX);
    assert_int_equal(sy_stmt_step(st), SY_ROW);
    assert_true(sy_stmt_i64(st, 0) == INT64_MAX);
    assert_int_equal(sy_stmt_i64(st, 1), 70);
    assert_int_equal(sy_stmt_i64(st, 2), 30);
    sy_stmt_reset(st);

    /* The same number used twice is one parameter. */
    static const char twice[] = "SELECT $1 || '-' || $1";
    st = sy_conn_prepare(c, twice);
    assert_non_null(st);
    sy_stmt_bind_text(st, 1, "x");
    assert_int_equal(sy_stmt_step(st), SY_ROW);
    assert_string_equal(sy_stmt_text(st, 0), "x-x");
    sy_stmt_reset(st);

    /* NULL binding, explicit and through bind_text(NULL); a length-limited text. */
    static const char nulls[] = "SELECT $1, $2, $3, $1 IS NULL";
    st = sy_conn_prepare(c, nulls);
    assert_non_null(st);
    sy_stmt_bind_null(st, 1);
    sy_stmt_bind_text(st, 2, NULL);
    sy_stmt_bind_textn(st, 3, "abcdef", 3);
    assert_int_equal(sy_stmt_step(st), SY_ROW);
    assert_true(sy_stmt_is_null(st, 0));
    assert_true(sy_stmt_is_null(st, 1));
    assert_string_equal(sy_stmt_text(st, 0), "");
    assert_false(sy_stmt_is_null(st, 2));
    assert_string_equal(sy_stmt_text(st, 2), "abc");
    assert_int_equal(sy_stmt_len(st, 2), 3);
    assert_int_equal(sy_stmt_i64(st, 3), 1);
    sy_stmt_reset(st);

    /* Placeholders in DML, out of order, round-trip through a table. */
    static const char ins[] = "INSERT INTO tenants (updated_at, created_at, timezone, name, id)"
                              " VALUES ($5, $4, $3, $2, $1)";
    st = sy_conn_prepare(c, ins);
    assert_non_null(st);
    sy_stmt_bind_text(st, 1, "t-id");
    sy_stmt_bind_text(st, 2, "T name");
    sy_stmt_bind_text(st, 3, "UTC");
    sy_stmt_bind_i64(st, 4, 111);
    sy_stmt_bind_i64(st, 5, 222);
    assert_int_equal(sy_stmt_exec(st), SY_OK);
    assert_int_equal(sy_conn_changes(c), 1);
    static const char sel[] = "SELECT id, name, timezone, created_at, updated_at FROM tenants";
    st = sy_conn_prepare(c, sel);
    assert_int_equal(sy_stmt_step(st), SY_ROW);
    assert_string_equal(sy_stmt_text(st, 0), "t-id");
    assert_string_equal(sy_stmt_text(st, 1), "T name");
    assert_string_equal(sy_stmt_text(st, 2), "UTC");
    assert_int_equal(sy_stmt_i64(st, 3), 111);
    assert_int_equal(sy_stmt_i64(st, 4), 222);
    assert_int_equal(sy_stmt_step(st), SY_DONE);
    sy_stmt_reset(st);
}

/* ---- errors ---- */

static void test_unique_violation_maps_to_econstraint(void **state)
{
    fixture *f = *state;
    sy_conn *c = sy_store_write_conn(f->store);
    assert_int_equal(insert_tenant(c, "acme"), SY_OK);
    assert_int_equal(insert_tenant(c, "acme"), SY_ECONSTRAINT);
    assert_non_null(strstr(sy_conn_errmsg(c), "UNIQUE"));
    assert_int_equal(tenant_rows(c, "acme"), 1);

    /* CHECK and FOREIGN KEY constraints map the same way. */
    static const char key[] =
        "INSERT INTO api_keys (id, tenant_id, prefix, hash, role, created_at, created_by)"
        " VALUES ($1, $2, $1, 'h', $3, 0, 'test')";
    sy_stmt *st = sy_conn_prepare(c, key);
    assert_non_null(st);
    sy_stmt_bind_text(st, 1, "k1");
    sy_stmt_bind_text(st, 2, "acme");
    sy_stmt_bind_text(st, 3, "superuser");
    assert_int_equal(sy_stmt_exec(st), SY_ECONSTRAINT);

    st = sy_conn_prepare(c, key);
    sy_stmt_bind_text(st, 1, "k2");
    sy_stmt_bind_text(st, 2, "no-such-tenant");
    sy_stmt_bind_text(st, 3, "admin");
    assert_int_equal(sy_stmt_exec(st), SY_ECONSTRAINT);

    /* The connection is still usable afterwards. */
    assert_int_equal(insert_tenant(c, "other"), SY_OK);

    /* Other errors are SY_ERR with a message; a bad statement is not cached. */
    static const char bad[] = "SELEC nonsense";
    assert_null(sy_conn_prepare(c, bad));
    assert_true(sy_conn_errmsg(c)[0] != '\0');
    assert_null(sy_conn_prepare(c, bad));
    assert_int_equal(sy_conn_exec(c, "INSERT INTO no_such_table VALUES (1)"), SY_ERR);
    assert_non_null(strstr(sy_conn_errmsg(c), "no_such_table"));
}

/* ---- transactions and savepoints ---- */

static void test_savepoint_rollback_undoes_inner_work_only(void **state)
{
    fixture *f = *state;
    sy_conn *c = sy_store_write_conn(f->store);

    assert_int_equal(sy_conn_begin(c), SY_OK);
    assert_int_equal(insert_tenant(c, "outer-before"), SY_OK);
    assert_int_equal(sy_conn_savepoint(c), SY_OK);
    assert_int_equal(insert_tenant(c, "inner-1"), SY_OK);
    assert_int_equal(insert_tenant(c, "inner-2"), SY_OK);
    assert_int_equal(tenant_rows(c, "inner-1"), 1);
    assert_int_equal(sy_conn_rollback_to(c), SY_OK);
    assert_int_equal(tenant_rows(c, "inner-1"), 0);
    assert_int_equal(tenant_rows(c, "outer-before"), 1);
    /* The savepoint is gone but the transaction continues. */
    assert_int_equal(insert_tenant(c, "outer-after"), SY_OK);
    /* A released savepoint keeps its work. */
    assert_int_equal(sy_conn_savepoint(c), SY_OK);
    assert_int_equal(insert_tenant(c, "inner-kept"), SY_OK);
    assert_int_equal(sy_conn_release(c), SY_OK);
    /* A second savepoint can be rolled back independently. */
    assert_int_equal(sy_conn_savepoint(c), SY_OK);
    assert_int_equal(insert_tenant(c, "inner-3"), SY_OK);
    assert_int_equal(sy_conn_rollback_to(c), SY_OK);
    assert_int_equal(sy_conn_commit(c), SY_OK);

    /* Seen from a read connection after the commit. */
    sy_conn *r = sy_store_acquire(f->store);
    assert_int_equal(tenant_rows(r, "outer-before"), 1);
    assert_int_equal(tenant_rows(r, "outer-after"), 1);
    assert_int_equal(tenant_rows(r, "inner-kept"), 1);
    assert_int_equal(tenant_rows(r, "inner-1"), 0);
    assert_int_equal(tenant_rows(r, "inner-2"), 0);
    assert_int_equal(tenant_rows(r, "inner-3"), 0);
    sy_store_release(f->store, r);

    /* A rolled-back transaction leaves nothing; rollback without one is fine. */
    assert_int_equal(sy_conn_begin(c), SY_OK);
    assert_int_equal(insert_tenant(c, "gone"), SY_OK);
    assert_int_equal(sy_conn_rollback(c), SY_OK);
    assert_int_equal(tenant_rows(c, "gone"), 0);
    assert_int_equal(sy_conn_rollback(c), SY_OK);
    /* No savepoint open: release / rollback_to fail. */
    assert_int_not_equal(sy_conn_release(c), SY_OK);
}

static void test_changes_counts_rows(void **state)
{
    fixture *f = *state;
    sy_conn *c = sy_store_write_conn(f->store);
    assert_int_equal(insert_tenant(c, "a"), SY_OK);
    assert_int_equal(insert_tenant(c, "b"), SY_OK);
    assert_int_equal(insert_tenant(c, "c"), SY_OK);
    static const char upd[] = "UPDATE tenants SET name = 'x' WHERE id <> $1";
    sy_stmt *st = sy_conn_prepare(c, upd);
    sy_stmt_bind_text(st, 1, "b");
    assert_int_equal(sy_stmt_exec(st), SY_OK);
    assert_int_equal(sy_conn_changes(c), 2);
    static const char del[] = "DELETE FROM tenants WHERE id = $1";
    st = sy_conn_prepare(c, del);
    sy_stmt_bind_text(st, 1, "nobody");
    assert_int_equal(sy_stmt_exec(st), SY_OK);
    assert_int_equal(sy_conn_changes(c), 0);
}

/* ---- statement cache ---- */

static void test_statement_cache_reuses_and_resets(void **state)
{
    fixture *f = *state;
    sy_conn *c = sy_store_write_conn(f->store);
    assert_int_equal(insert_tenant(c, "t1"), SY_OK);
    assert_int_equal(insert_tenant(c, "t2"), SY_OK);
    assert_int_equal(insert_tenant(c, "t3"), SY_OK);

    static const char sql[] = "SELECT id FROM tenants ORDER BY id";
    sy_stmt *a = sy_conn_prepare(c, sql);
    assert_non_null(a);
    assert_int_equal(sy_stmt_step(a), SY_ROW);
    assert_string_equal(sy_stmt_text(a, 0), "t1");
    assert_int_equal(sy_stmt_step(a), SY_ROW);
    assert_string_equal(sy_stmt_text(a, 0), "t2");

    /* Same SQL pointer: same statement, reset to the start. */
    sy_stmt *b = sy_conn_prepare(c, sql);
    assert_ptr_equal(a, b);
    assert_int_equal(sy_stmt_step(b), SY_ROW);
    assert_string_equal(sy_stmt_text(b, 0), "t1");
    sy_stmt_reset(b);
    assert_int_equal(sy_stmt_step(b), SY_ROW);
    assert_string_equal(sy_stmt_text(b, 0), "t1");
    sy_stmt_reset(b);

    /* Bindings are cleared by the next prepare. */
    static const char echo[] = "SELECT $1";
    sy_stmt *e = sy_conn_prepare(c, echo);
    sy_stmt_bind_text(e, 1, "bound");
    assert_int_equal(sy_stmt_step(e), SY_ROW);
    assert_string_equal(sy_stmt_text(e, 0), "bound");
    e = sy_conn_prepare(c, echo);
    assert_int_equal(sy_stmt_step(e), SY_ROW);
    assert_true(sy_stmt_is_null(e, 0));
    sy_stmt_reset(e);

    /* The key is the address: the same text elsewhere is another statement. */
    static char copy[] = "SELECT id FROM tenants ORDER BY id";
    sy_stmt *d = sy_conn_prepare(c, copy);
    assert_non_null(d);
    assert_ptr_not_equal(d, a);
    assert_int_equal(sy_stmt_step(d), SY_ROW);
    assert_string_equal(sy_stmt_text(d, 0), "t1");
    sy_stmt_reset(d);
    assert_ptr_equal(sy_conn_prepare(c, sql), a);
    assert_ptr_equal(sy_conn_prepare(c, copy), d);
    sy_stmt_reset(a);
    sy_stmt_reset(d);

    /* Each connection has its own cache. */
    sy_conn *r = sy_store_acquire(f->store);
    sy_stmt *rs = sy_conn_prepare(r, sql);
    assert_non_null(rs);
    assert_ptr_not_equal(rs, a);
    assert_int_equal(sy_stmt_step(rs), SY_ROW);
    assert_string_equal(sy_stmt_text(rs, 0), "t1");
    sy_stmt_reset(rs);
    sy_store_release(f->store, r);

    /* Many distinct statements (more than the cache has slots) all stay usable. */
    enum { N = 200 };
    static char texts[N][48];
    sy_stmt *sts[N];
    for (int i = 0; i < N; i++) {
        snprintf(texts[i], sizeof texts[i], "SELECT %d + $1", i);
        sts[i] = sy_conn_prepare(c, texts[i]);
        assert_non_null(sts[i]);
    }
    for (int i = 0; i < N; i++) {
        sy_stmt *s = sy_conn_prepare(c, texts[i]);
        assert_ptr_equal(s, sts[i]);
        sy_stmt_bind_i64(s, 1, 1000);
        assert_int_equal(sy_stmt_step(s), SY_ROW);
        assert_int_equal(sy_stmt_i64(s, 0), 1000 + i);
        sy_stmt_reset(s);
    }
}

/* ---- read connections ---- */

static void test_readers_see_committed_writes(void **state)
{
    fixture *f = *state;
    sy_conn *w = sy_store_write_conn(f->store);
    sy_conn *r1 = sy_store_acquire(f->store);
    sy_conn *r2 = sy_store_acquire(f->store);
    assert_non_null(r1);
    assert_non_null(r2);
    assert_ptr_not_equal(r1, r2);
    assert_ptr_not_equal(r1, w);

    assert_int_equal(tenant_rows(r1, "acme"), 0);
    assert_int_equal(sy_conn_begin(w), SY_OK);
    assert_int_equal(insert_tenant(w, "acme"), SY_OK);
    /* Not yet committed: invisible to readers. */
    assert_int_equal(tenant_rows(r1, "acme"), 0);
    assert_int_equal(tenant_rows(r2, "acme"), 0);
    assert_int_equal(sy_conn_commit(w), SY_OK);
    assert_int_equal(tenant_rows(r1, "acme"), 1);
    assert_int_equal(tenant_rows(r2, "acme"), 1);

    /* Autocommit writes too. */
    assert_int_equal(insert_tenant(w, "bank"), SY_OK);
    assert_int_equal(tenant_rows(r2, "bank"), 1);

    /* Read connections are read-only. */
    assert_int_not_equal(insert_tenant(r1, "sneaky"), SY_OK);
    assert_int_equal(tenant_rows(w, "sneaky"), 0);

    sy_store_release(f->store, r1);
    sy_store_release(f->store, r2);

    /* Released connections are handed out again. */
    sy_conn *r3 = sy_store_acquire(f->store);
    assert_true(r3 == r1 || r3 == r2);
    sy_store_release(f->store, r3);
}

typedef struct waiter {
    sy_store *store;
    sy_conn *got;
    atomic_int acquired;
} waiter;

static void *acquire_thread(void *arg)
{
    waiter *wt = arg;
    wt->got = sy_store_acquire(wt->store);
    atomic_store(&wt->acquired, 1);
    sy_store_release(wt->store, wt->got);
    return NULL;
}

static void test_acquire_waits_for_release(void **state)
{
    fixture *f = *state; /* one read connection */
    sy_conn *r = sy_store_acquire(f->store);
    waiter wt = {.store = f->store};
    atomic_init(&wt.acquired, 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, acquire_thread, &wt), 0);
    struct timespec ts = {0, 50 * 1000 * 1000};
    nanosleep(&ts, NULL);
    assert_int_equal(atomic_load(&wt.acquired), 0);
    sy_store_release(f->store, r);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(atomic_load(&wt.acquired), 1);
    assert_ptr_equal(wt.got, r);
}

/* Commits that leave the WAL past 1,000 pages wake the checkpointer, which
 * copies the pages into the database file beside the writer: the file grows
 * while nothing else checkpoints (the writer's own checkpoints are off). */
static void test_checkpoints_run_beside_the_writer(void **state)
{
    fixture *f = *state;
    sy_conn *w = sy_store_write_conn(f->store);
    struct stat st0;
    assert_int_equal(stat(f->path, &st0), 0);
    assert_int_equal(sy_conn_exec(w, "CREATE TABLE filler (b BLOB)"), SY_OK);
    /* commits of 1 MiB (256 pages) past the checkpointer's threshold */
    int commits = SY_STORE_CKPT_FRAMES / 256 + 4;
    for (int t = 0; t < commits; t++) {
        assert_int_equal(sy_conn_begin(w), SY_OK);
        assert_int_equal(sy_conn_exec(w, "INSERT INTO filler SELECT randomblob(4096) FROM"
                                         " (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT"
                                         " i + 1 FROM n WHERE i < 256) SELECT i FROM n)"),
                         SY_OK);
        assert_int_equal(sy_conn_commit(w), SY_OK);
    }
    struct stat st;
    bool grown = false;
    for (int i = 0; i < 500 && !grown; i++) { /* up to 5 s */
        assert_int_equal(stat(f->path, &st), 0);
        grown = st.st_size >= st0.st_size + (off_t)SY_STORE_CKPT_FRAMES * 4096 / 2;
        if (!grown)
            nanosleep(&(struct timespec){0, 10 * 1000000}, NULL);
    }
    assert_true(grown);
}

int main(void)
{
    const struct CMUnitTest store_sqlite_backend[] = {
        cmocka_unit_test_setup_teardown(test_migrate_applies_all_then_nothing, setup_bare,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_open_fails_with_message, setup_bare, teardown),
        cmocka_unit_test_setup_teardown(test_placeholders_bound_by_number, setup_migrated,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unique_violation_maps_to_econstraint, setup_migrated,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_savepoint_rollback_undoes_inner_work_only,
                                        setup_migrated, teardown),
        cmocka_unit_test_setup_teardown(test_changes_counts_rows, setup_migrated, teardown),
        cmocka_unit_test_setup_teardown(test_statement_cache_reuses_and_resets, setup_migrated,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_readers_see_committed_writes, setup_migrated,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_acquire_waits_for_release, setup_one_reader, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoints_run_beside_the_writer, setup_migrated,
                                        teardown),
    };
    return cmocka_run_group_tests(store_sqlite_backend, NULL, NULL);
}

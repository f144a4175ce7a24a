/* test_writer.c — the group-commit writer over a real store: concurrent
 * submitters, per-mutation savepoints inside one batch, committed() only for
 * successes, draining on stop, and sy_mutation_run_direct.  The tests run
 * on a store in --sync normal mode and again in --sync full mode, where the
 * writer hands each committed batch to its syncer and answers only after
 * the WAL's fsync. */
#include "testutil.h"
#include "unit/store_fixture.h"

#include "metrics.h"
#include "store.h"
#include "util.h"
#include "writer.h"

#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <time.h>

typedef struct fixture {
    char *dir;
    sy_store *store;
} fixture;

static int setup_mode(void **state, sy_sync_mode mode)
{
    sy_log_set_level(SY_LOG_ERROR);
    fixture *f = calloc(1, sizeof *f);
    f->dir = tu_tempdir();
    if (mode == SY_SYNC_NORMAL) {
        f->store = tu_store_open(f->dir, false);
    } else {
        char path[512], err[256] = "";
        snprintf(path, sizeof path, "%s/siyu.db", f->dir);
        sy_store_opts o = {.path = path, .readers = 2, .sync = SY_SYNC_FULL};
        if (sy_store_open(&o, &f->store, err, sizeof err) != SY_OK)
            fail_msg("sy_store_open: %s", err);
    }
    assert_int_equal(sy_conn_exec(sy_store_write_conn(f->store),
                                  "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)"),
                     SY_OK);
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return setup_mode(state, SY_SYNC_NORMAL);
}

static int setup_full(void **state)
{
    return setup_mode(state, SY_SYNC_FULL);
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

static int insert_row(sy_conn *c, int64_t id)
{
    static const char sql[] = "INSERT INTO t (id, v) VALUES ($1, 'x')";
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_i64(st, 1, id);
    return sy_stmt_exec(st);
}

/* Reads through a read connection, so only committed rows count. */
static int64_t count_rows(sy_store *s, int64_t id)
{
    static const char one[] = "SELECT COUNT(*) FROM t WHERE id = $1";
    static const char all[] = "SELECT COUNT(*) FROM t";
    sy_conn *c = sy_store_acquire(s);
    sy_stmt *st = sy_conn_prepare(c, id >= 0 ? one : all);
    int64_t n = -1;
    if (st) {
        if (id >= 0)
            sy_stmt_bind_i64(st, 1, id);
        if (sy_stmt_step(st) == SY_ROW)
            n = sy_stmt_i64(st, 0);
        sy_stmt_reset(st);
    }
    sy_store_release(s, c);
    return n;
}

/* A mutation context: inserts ids[0..nids), then returns result. */
typedef struct job {
    sy_store *store;
    int64_t ids[3];
    int nids;
    int result;
    bool break_txn;            /* ends the batch transaction behind the writer's back */
    sem_t *entered, *gate;     /* when set: post entered, then wait on gate */
    atomic_int *committed;     /* shared counter of committed() calls */
    atomic_int *done;          /* shared counter of done() calls */
    int committed_here;        /* committed() calls for this job */
    int64_t visible_at_commit; /* rows of ids[0] a reader saw inside committed() */
    uint64_t syncs_at_commit;  /* sy_store_syncs() inside committed() */
    uint64_t syncs_at_done;    /* ... and inside done() */
    int applied, resets;       /* apply and reset calls */
    int dup_id;                /* when > 0: then inserts this id again (a clean failure) */
    sy_mutation m;
} job;

static int job_apply(sy_conn *c, void *ctx)
{
    job *j = ctx;
    j->applied++;
    if (j->dup_id > 0 && insert_row(c, j->dup_id) != SY_OK)
        return 9; /* the statement failed and undid itself: nothing written */
    if (j->entered) {
        sem_post(j->entered);
        while (sem_wait(j->gate) != 0) {
        }
    }
    for (int i = 0; i < j->nids; i++)
        if (insert_row(c, j->ids[i]) != SY_OK)
            return 99;
    if (j->break_txn)
        sy_conn_exec(c, "ROLLBACK");
    return j->result;
}

static void job_committed(void *ctx)
{
    job *j = ctx;
    j->committed_here++;
    j->syncs_at_commit = sy_store_syncs(j->store);
    if (j->committed)
        atomic_fetch_add(j->committed, 1);
    if (j->nids > 0)
        j->visible_at_commit = count_rows(j->store, j->ids[0]);
}

static void job_done(sy_mutation *m)
{
    job *j = m->ctx;
    j->syncs_at_done = sy_store_syncs(j->store);
    atomic_fetch_add(j->done, 1);
}

static void job_init(job *j, sy_store *s, int64_t id, int result)
{
    memset(j, 0, sizeof *j);
    j->store = s;
    j->ids[0] = id;
    j->nids = id >= 0 ? 1 : 0;
    j->result = result;
    j->visible_at_commit = -1;
    j->m.apply = job_apply;
    j->m.committed = job_committed;
    j->m.ctx = j;
}

static void job_reset(void *ctx)
{
    job *j = ctx;
    j->resets++;
}

/* Makes j a mutation that may run without a savepoint (writer.h). */
static void job_rerunnable(job *j)
{
    j->m.reset = job_reset;
}

static void job_async(job *j, atomic_int *done)
{
    j->done = done;
    j->m.done = job_done;
}

/* Reads a metric's value from the rendered text ("name value" line). */
static double metric(const char *name)
{
    sy_buf b = {0};
    sy_metrics_render(&b);
    size_t n = strlen(name);
    double v = -1;
    for (const char *p = b.data; p && *p;) {
        const char *eol = strchr(p, '\n');
        if (!strncmp(p, name, n) && p[n] == ' ') {
            v = strtod(p + n + 1, NULL);
            break;
        }
        p = eol ? eol + 1 : p + strlen(p);
    }
    sy_buf_free(&b);
    if (v < 0)
        fail_msg("metric %s not rendered", name);
    return v;
}

static void wait_count(atomic_int *c, int want)
{
    for (int i = 0; i < 5000 && atomic_load(c) < want; i++) {
        struct timespec ts = {0, 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(atomic_load(c), want);
}

/* ---- many threads, sy_writer_run ---- */

#define THREADS 8
#define PER_THREAD 50

typedef struct submitter {
    sy_writer *w;
    sy_store *store;
    int index;
    atomic_int *committed;
    int wrong_rc;
} submitter;

static void *submit_thread(void *arg)
{
    submitter *s = arg;
    for (int k = 0; k < PER_THREAD; k++) {
        job j;
        int64_t id = (int64_t)s->index * 1000 + k;
        /* Every fifth mutation inserts its row and then fails. */
        int want = k % 5 == 4 ? 7 : 0;
        job_init(&j, s->store, id, want);
        j.committed = s->committed;
        int rc = sy_writer_run(s->w, &j.m);
        if (rc != want || j.m.rc != want || j.committed_here != (want == 0))
            s->wrong_rc++;
        if (want == 0 && j.visible_at_commit != 1)
            s->wrong_rc++;
    }
    return NULL;
}

static void test_concurrent_run_commits_all(void **state)
{
    fixture *f = *state;
    sy_writer *w = sy_writer_start(f->store, NULL);
    atomic_int committed;
    atomic_init(&committed, 0);
    pthread_t th[THREADS];
    submitter subs[THREADS];
    for (int i = 0; i < THREADS; i++) {
        subs[i] = (submitter){.w = w, .store = f->store, .index = i, .committed = &committed};
        assert_int_equal(pthread_create(&th[i], NULL, submit_thread, &subs[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    sy_writer_stop(w);

    int ok_per_thread = PER_THREAD - PER_THREAD / 5;
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(subs[i].wrong_rc, 0);
    assert_int_equal(atomic_load(&committed), THREADS * ok_per_thread);
    assert_int_equal(count_rows(f->store, -1), THREADS * ok_per_thread);
    for (int i = 0; i < THREADS; i++) {
        for (int k = 0; k < PER_THREAD; k++) {
            int64_t id = (int64_t)i * 1000 + k;
            assert_int_equal(count_rows(f->store, id), k % 5 == 4 ? 0 : 1);
        }
    }
}

/* Holds the writer with a gate mutation (inserting gate_id unless it is
 * negative), queues list[0..n) behind it and lets them run as one batch,
 * then waits for every answer.  The gate itself must commit. */
static void run_as_one_batch(sy_writer *w, sy_store *s, int64_t gate_id, job **list, int n,
                             atomic_int *done)
{
    sem_t entered, gate;
    sem_init(&entered, 0, 0);
    sem_init(&gate, 0, 0);
    job g;
    job_init(&g, s, gate_id, 0);
    g.entered = &entered;
    g.gate = &gate;
    job_async(&g, done);
    sy_writer_submit(w, &g.m);
    while (sem_wait(&entered) != 0) {
    }
    for (int i = 0; i < n; i++) {
        job_async(list[i], done);
        sy_writer_submit(w, &list[i]->m);
    }
    sem_post(&gate);
    wait_count(done, n + 1);
    assert_int_equal(g.m.rc, 0);
    sem_destroy(&entered);
    sem_destroy(&gate);
}

/* ---- one batch with a failing mutation in the middle ---- */

static void test_failing_mutation_rolls_back_alone(void **state)
{
    fixture *f = *state;
    sy_writer *w = sy_writer_start(f->store, NULL);
    atomic_int done, committed;
    atomic_init(&done, 0);
    atomic_init(&committed, 0);
    double batches0 = metric("siyu_store_commit_batch_size_count");
    double sum0 = metric("siyu_store_commit_batch_size_sum");

    job a, b, c;
    job_init(&a, f->store, 1, 0);
    job_init(&b, f->store, 2, 3); /* inserts 2 and 3, then fails */
    b.ids[1] = 3;
    b.nids = 2;
    job_init(&c, f->store, 4, 0);
    job *batch[] = {&a, &b, &c};
    for (int i = 0; i < 3; i++)
        batch[i]->committed = &committed;
    run_as_one_batch(w, f->store, -1, batch, 3, &done);

    assert_int_equal(a.m.rc, 0);
    assert_int_equal(b.m.rc, 3);
    assert_int_equal(c.m.rc, 0);
    assert_int_equal(count_rows(f->store, 1), 1);
    assert_int_equal(count_rows(f->store, 2), 0);
    assert_int_equal(count_rows(f->store, 3), 0);
    assert_int_equal(count_rows(f->store, 4), 1);
    /* committed() only for the successes, and after their rows were durable. */
    assert_int_equal(a.committed_here, 1);
    assert_int_equal(b.committed_here, 0);
    assert_int_equal(c.committed_here, 1);
    assert_int_equal(atomic_load(&committed), 2);
    assert_int_equal(a.visible_at_commit, 1);
    assert_int_equal(c.visible_at_commit, 1);
    /* Two transactions: the gate alone, then a, b and c together. */
    assert_true(metric("siyu_store_commit_batch_size_count") == batches0 + 2);
    assert_true(metric("siyu_store_commit_batch_size_sum") == sum0 + 4);

    sy_writer_stop(w);
}

/* ---- mutations without savepoints ---- */

/* Failures that wrote nothing (none at all, or a statement that failed and
 * undid itself) need no savepoint and no second run. */
static void test_clean_failure_needs_no_rerun(void **state)
{
    fixture *f = *state;
    sy_writer *w = sy_writer_start(f->store, NULL);
    atomic_int done;
    atomic_init(&done, 0);
    double reruns0 = metric("siyu_store_batch_reruns_total");

    job a, b, c, d;
    job_init(&a, f->store, 1, 0);
    job_init(&b, f->store, -1, 5); /* writes nothing, fails */
    job_init(&c, f->store, 2, 0);
    c.dup_id = 1; /* id 1 exists (a's): the insert fails by itself */
    job_init(&d, f->store, 3, 0);
    job *list[] = {&a, &b, &c, &d};
    for (int i = 0; i < 4; i++)
        job_rerunnable(list[i]);
    run_as_one_batch(w, f->store, -1, list, 4, &done);

    assert_int_equal(a.m.rc, 0);
    assert_int_equal(b.m.rc, 5);
    assert_int_equal(c.m.rc, 9);
    assert_int_equal(d.m.rc, 0);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(list[i]->applied, 1);
        assert_int_equal(list[i]->resets, 0);
    }
    assert_int_equal(count_rows(f->store, 1), 1);
    assert_int_equal(count_rows(f->store, 2), 0);
    assert_int_equal(count_rows(f->store, 3), 1);
    assert_int_equal(count_rows(f->store, -1), 2);
    assert_int_equal(a.committed_here + c.committed_here + d.committed_here, 2);
    assert_true(metric("siyu_store_batch_reruns_total") == reruns0);
    sy_writer_stop(w);
}

/* A failure after writing, without a savepoint: the batch is rolled back,
 * what ran is reset, and the batch runs again with a savepoint each, so
 * the failed mutation's rows are gone and every other one's are there
 * once. */
static void test_dirty_failure_reruns_batch(void **state)
{
    fixture *f = *state;
    sy_writer *w = sy_writer_start(f->store, NULL);
    atomic_int done, committed;
    atomic_init(&done, 0);
    atomic_init(&committed, 0);
    double reruns0 = metric("siyu_store_batch_reruns_total");

    job a, b, c, d, e, g;
    job_init(&a, f->store, 1, 0);
    job_init(&b, f->store, -1, 5); /* a clean failure */
    job_init(&c, f->store, 4, 0);
    job_init(&d, f->store, 2, 3); /* inserts 2 and 3, then fails */
    d.ids[1] = 3;
    d.nids = 2;
    job_init(&e, f->store, 6, 0); /* no reset: always in a savepoint */
    job_init(&g, f->store, 7, 0);
    job *list[] = {&a, &b, &c, &d, &e, &g};
    for (int i = 0; i < 6; i++) {
        list[i]->committed = &committed;
        if (list[i] != &e)
            job_rerunnable(list[i]);
    }
    run_as_one_batch(w, f->store, -1, list, 6, &done);

    assert_int_equal(a.m.rc, 0);
    assert_int_equal(b.m.rc, 5);
    assert_int_equal(c.m.rc, 0);
    assert_int_equal(d.m.rc, 3);
    assert_int_equal(e.m.rc, 0);
    assert_int_equal(g.m.rc, 0);
    /* a..d ran, were reset and ran again; e and g ran once, after the reset */
    job *twice[] = {&a, &b, &c, &d};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(twice[i]->applied, 2);
        assert_int_equal(twice[i]->resets, 1);
    }
    assert_int_equal(e.applied, 1);
    assert_int_equal(g.applied, 1);
    assert_int_equal(g.resets, 0);
    int64_t want[] = {1, 0, 0, 1, 0, 1, 1}; /* ids 1..7 */
    for (int id = 1; id <= 7; id++)
        assert_int_equal(count_rows(f->store, id), want[id - 1]);
    assert_int_equal(count_rows(f->store, -1), 4);
    assert_int_equal(atomic_load(&committed), 4);
    assert_int_equal(d.committed_here, 0);
    assert_true(metric("siyu_store_batch_reruns_total") == reruns0 + 1);
    sy_writer_stop(w);
}

/* ---- a mutation that breaks the transaction fails the whole batch ---- */

/* rerunnable: the three run without savepoints, where SQLite's own end of
 * the transaction (an I/O error, a full disk) shows only as autocommit. */
static void broken_batch(void **state, bool rerunnable)
{
    fixture *f = *state;
    sy_writer *w = sy_writer_start(f->store, NULL);
    atomic_int done, committed;
    atomic_init(&done, 0);
    atomic_init(&committed, 0);
    double errors0 = metric("siyu_store_commits_total{result=\"error\"}");

    job a, x, c;
    job_init(&a, f->store, 11, 0);
    job_init(&x, f->store, 12, 0);
    x.break_txn = true;
    job_init(&c, f->store, 13, 0);
    job *batch[] = {&a, &x, &c};
    for (int i = 0; i < 3; i++) {
        batch[i]->committed = &committed;
        if (rerunnable)
            job_rerunnable(batch[i]);
    }
    run_as_one_batch(w, f->store, 10, batch, 3, &done);

    assert_int_equal(count_rows(f->store, 10), 1);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(batch[i]->m.rc, SY_ERR);
        assert_int_equal(batch[i]->committed_here, 0);
        assert_int_equal(count_rows(f->store, batch[i]->ids[0]), 0);
    }
    assert_int_equal(atomic_load(&committed), 0);
    assert_true(metric("siyu_store_commits_total{result=\"error\"}") == errors0 + 1);

    /* The writer recovers: the next mutation commits. */
    job after;
    job_init(&after, f->store, 14, 0);
    assert_int_equal(sy_writer_run(w, &after.m), 0);
    assert_int_equal(count_rows(f->store, 14), 1);

    sy_writer_stop(w);
}

static void test_broken_transaction_fails_batch(void **state)
{
    broken_batch(state, false);
}

static void test_broken_transaction_fails_batch_without_savepoints(void **state)
{
    broken_batch(state, true);
}

/* ---- max_batch splits the queue ---- */

static void test_max_batch_limits_transaction_size(void **state)
{
    fixture *f = *state;
    sy_writer_opts o = {.max_batch = 2};
    sy_writer *w = sy_writer_start(f->store, &o);
    atomic_int done;
    atomic_init(&done, 0);
    sem_t entered, gate;
    sem_init(&entered, 0, 0);
    sem_init(&gate, 0, 0);
    double batches0 = metric("siyu_store_commit_batch_size_count");
    double sum0 = metric("siyu_store_commit_batch_size_sum");

    job g, js[5];
    job_init(&g, f->store, -1, 0);
    g.entered = &entered;
    g.gate = &gate;
    job_async(&g, &done);
    sy_writer_submit(w, &g.m);
    while (sem_wait(&entered) != 0) {
    }
    for (int i = 0; i < 5; i++) {
        job_init(&js[i], f->store, 100 + i, 0);
        job_async(&js[i], &done);
        sy_writer_submit(w, &js[i].m);
    }
    sem_post(&gate);
    wait_count(&done, 6);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(js[i].m.rc, 0);
        assert_int_equal(count_rows(f->store, 100 + i), 1);
    }
    /* gate | 2 | 2 | 1 */
    assert_true(metric("siyu_store_commit_batch_size_count") == batches0 + 4);
    assert_true(metric("siyu_store_commit_batch_size_sum") == sum0 + 6);

    sy_writer_stop(w);
    sem_destroy(&entered);
    sem_destroy(&gate);
}

/* ---- stop drains the queue ---- */

typedef struct opener {
    sem_t *gate;
    int delay_ms;
} opener;

static void *open_gate_later(void *arg)
{
    opener *o = arg;
    struct timespec ts = {0, (long)o->delay_ms * 1000 * 1000};
    nanosleep(&ts, NULL);
    sem_post(o->gate);
    return NULL;
}

#define QUEUED 100

static void test_stop_drains_queued_mutations(void **state)
{
    fixture *f = *state;
    sy_writer *w = sy_writer_start(f->store, NULL);
    atomic_int done, committed;
    atomic_init(&done, 0);
    atomic_init(&committed, 0);
    sem_t entered, gate;
    sem_init(&entered, 0, 0);
    sem_init(&gate, 0, 0);

    job g;
    job_init(&g, f->store, 5000, 0);
    g.entered = &entered;
    g.gate = &gate;
    g.committed = &committed;
    job_async(&g, &done);
    sy_writer_submit(w, &g.m);
    while (sem_wait(&entered) != 0) {
    }

    job *js = calloc(QUEUED, sizeof *js);
    for (int i = 0; i < QUEUED; i++) {
        job_init(&js[i], f->store, 6000 + i, 0);
        js[i].committed = &committed;
        job_async(&js[i], &done);
        sy_writer_submit(w, &js[i].m);
    }
    /* The writer is still held by the gate: nothing of the queue has run. */
    assert_int_equal(atomic_load(&done), 0);

    /* Open the gate only after sy_writer_stop() has been called. */
    opener op = {.gate = &gate, .delay_ms = 50};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, open_gate_later, &op), 0);
    sy_writer_stop(w);
    /* Everything queued was run and reported before stop returned. */
    assert_int_equal(atomic_load(&done), QUEUED + 1);
    assert_int_equal(atomic_load(&committed), QUEUED + 1);
    assert_int_equal(pthread_join(th, NULL), 0);

    for (int i = 0; i < QUEUED; i++)
        assert_int_equal(js[i].m.rc, 0);
    assert_int_equal(count_rows(f->store, -1), QUEUED + 1);
    free(js);
    sem_destroy(&entered);
    sem_destroy(&gate);
}

/* ---- durability: no answer before the fsync ---- */

#define DURABLE 300

/* In --sync full mode every committed mutation is answered only after an
 * fsync of the WAL that began after its commit; in --sync normal mode the
 * writer never fsyncs and answers right after the commit. */
static void check_answers_after_fsync(fixture *f, bool full)
{
    sy_writer *w = sy_writer_start(f->store, NULL);
    atomic_int done;
    atomic_init(&done, 0);
    job *js = calloc(DURABLE, sizeof *js);
    for (int i = 0; i < DURABLE; i++) {
        job_init(&js[i], f->store, 100 + i, i % 7 == 3 ? 5 : 0);
        job_async(&js[i], &done);
        sy_writer_submit(w, &js[i].m);
    }
    wait_count(&done, DURABLE);
    for (int i = 0; i < DURABLE; i++) {
        if (i % 7 == 3) {
            assert_int_equal(js[i].m.rc, 5);
            assert_int_equal(js[i].committed_here, 0);
            continue;
        }
        assert_int_equal(js[i].m.rc, 0);
        assert_int_equal(js[i].committed_here, 1);
        if (full)
            assert_true(js[i].syncs_at_done > js[i].syncs_at_commit);
        else
            assert_true(js[i].syncs_at_done == 0 && js[i].syncs_at_commit == 0);
    }
    sy_writer_stop(w);
    free(js);
    /* After the writer stops, a direct write is fsynced by its COMMIT again. */
    job after;
    job_init(&after, f->store, 99, 0);
    assert_int_equal(sy_mutation_run_direct(sy_store_write_conn(f->store), &after.m), 0);
    assert_int_equal(count_rows(f->store, -1), DURABLE - (DURABLE + 3) / 7 + 1);
}

static void test_full_sync_answers_after_fsync(void **state)
{
    check_answers_after_fsync(*state, true);
}

static void test_normal_sync_never_fsyncs(void **state)
{
    check_answers_after_fsync(*state, false);
}

/* ---- sy_mutation_run_direct ---- */

static void test_run_direct_commits_and_rolls_back(void **state)
{
    fixture *f = *state;
    sy_conn *c = sy_store_write_conn(f->store);

    job ok;
    job_init(&ok, f->store, 1, 0);
    assert_int_equal(sy_mutation_run_direct(c, &ok.m), 0);
    assert_int_equal(ok.m.rc, 0);
    assert_int_equal(ok.committed_here, 1);
    assert_int_equal(ok.visible_at_commit, 1);
    assert_int_equal(count_rows(f->store, 1), 1);

    job bad;
    job_init(&bad, f->store, 2, 42);
    bad.ids[1] = 3;
    bad.nids = 2;
    assert_int_equal(sy_mutation_run_direct(c, &bad.m), 42);
    assert_int_equal(bad.m.rc, 42);
    assert_int_equal(bad.committed_here, 0);
    assert_int_equal(count_rows(f->store, 2), 0);
    assert_int_equal(count_rows(f->store, 3), 0);

    /* A constraint failure inside apply (duplicate id 1) rolls back too. */
    job dup;
    job_init(&dup, f->store, 7, 0);
    dup.ids[1] = 1;
    dup.nids = 2;
    assert_int_equal(sy_mutation_run_direct(c, &dup.m), 99);
    assert_int_equal(count_rows(f->store, 7), 0);

    /* No transaction is left open: the connection takes a new one. */
    assert_int_equal(sy_conn_begin(c), SY_OK);
    /* ...and inside an open transaction run_direct cannot begin its own. */
    job nested;
    job_init(&nested, f->store, 8, 0);
    assert_int_equal(sy_mutation_run_direct(c, &nested.m), SY_ERR);
    assert_int_equal(nested.committed_here, 0);
    assert_int_equal(sy_conn_rollback(c), SY_OK);
    assert_int_equal(count_rows(f->store, 8), 0);
    assert_int_equal(count_rows(f->store, -1), 1);
}

int main(void)
{
    const struct CMUnitTest writer_group_commit[] = {
        cmocka_unit_test_setup_teardown(test_concurrent_run_commits_all, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failing_mutation_rolls_back_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_broken_transaction_fails_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_broken_transaction_fails_batch_without_savepoints,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_clean_failure_needs_no_rerun, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dirty_failure_reruns_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dirty_failure_reruns_batch, setup_full, teardown),
        cmocka_unit_test_setup_teardown(test_max_batch_limits_transaction_size, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_drains_queued_mutations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_direct_commits_and_rolls_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_normal_sync_never_fsyncs, setup, teardown),
        /* the same, with the syncer */
        cmocka_unit_test_setup_teardown(test_full_sync_answers_after_fsync, setup_full, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_run_commits_all, setup_full, teardown),
        cmocka_unit_test_setup_teardown(test_failing_mutation_rolls_back_alone, setup_full,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_stop_drains_queued_mutations, setup_full, teardown),
    };
    return cmocka_run_group_tests(writer_group_commit, NULL, NULL);
}

/* writer.c — group commit: one thread, one transaction per batch.
 *
 * The queue is a FIFO list under a mutex.  The writer swaps the whole list
 * out, so request threads keep enqueueing while a batch commits; the next
 * batch is whatever accumulated during the previous commit.  Under load this
 * makes batches grow by themselves until one fsync serves many requests.
 *
 * Pipelined durability (with --sync full): the writer's COMMIT only writes
 * the batch's pages to the WAL (sy_store_defer_sync) and the writer goes on
 * with the next batch at once, while a second thread, the syncer, fdatasyncs
 * the WAL and only then answers the batch's requests (done).  One fsync thus
 * also covers every batch committed while the previous one was running, and
 * the disk's latency no longer stalls the writer.  The order is: apply,
 * COMMIT, committed() (in-memory state; in the writer thread, so the next
 * batch sees it), fsync, done() (the answer).  A read may therefore see a
 * write up to one fsync before its writer is answered; no write is answered
 * before it is durable.  A failed fsync stops the process: what reached the
 * disk is then unknown, and a restart recovers from the WAL that did. */
#include "writer.h"
#include "metrics.h"
#include "util.h"

#include <pthread.h>
#include <stdlib.h>

struct sy_writer {
    sy_store *store;
    int max_batch;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    sy_mutation *head, *tail;
    bool stopping;
    /* the syncer: mutations committed but not yet durable, in commit order */
    bool deferred;
    pthread_t syncer;
    pthread_mutex_t sync_mu;
    pthread_cond_t sync_cv;
    sy_mutation *sync_head, *sync_tail;
    bool sync_needed, sync_stopping;
};

/* Answers a list of mutations whose outcome is known (and durable). */
static void answer(sy_mutation *list)
{
    for (sy_mutation *m = list, *next; m; m = next) {
        next = m->next;
        m->next = NULL;
        m->done(m);
    }
}

static void *syncer_main(void *arg)
{
    sy_writer *w = arg;
    pthread_setname_np(pthread_self(), "siyu-syncer"); /* for top -H, perf, /proc */
    pthread_mutex_lock(&w->sync_mu);
    for (;;) {
        while (!w->sync_head && !w->sync_stopping)
            pthread_cond_wait(&w->sync_cv, &w->sync_mu);
        if (!w->sync_head)
            break;
        sy_mutation *list = w->sync_head;
        bool needed = w->sync_needed;
        w->sync_head = w->sync_tail = NULL;
        w->sync_needed = false;
        pthread_mutex_unlock(&w->sync_mu);
        if (needed) {
            uint64_t t0 = sy_mono_ns();
            if (sy_store_sync(w->store) != SY_OK) {
                sy_error("writer: the WAL could not be made durable; stopping so that nothing"
                         " unsynced is acknowledged");
                abort();
            }
            sy_metrics_fsync(sy_mono_ns() - t0);
        }
        answer(list);
        pthread_mutex_lock(&w->sync_mu);
    }
    pthread_mutex_unlock(&w->sync_mu);
    return NULL;
}

/* Hands a committed batch (or a failed one, to keep the order) to the
 * syncer. */
static void to_syncer(sy_writer *w, sy_mutation *list, sy_mutation *last, bool committed)
{
    pthread_mutex_lock(&w->sync_mu);
    if (w->sync_tail)
        w->sync_tail->next = list;
    else
        w->sync_head = list;
    w->sync_tail = last;
    w->sync_needed |= committed;
    pthread_cond_signal(&w->sync_cv);
    pthread_mutex_unlock(&w->sync_mu);
}

/* Runs the batch's mutations in the open transaction.  With `fast`, a
 * leading run of mutations that can be reset goes without savepoints;
 * the rest (and all of them without `fast`) each get one.  Returns SY_OK,
 * a store error, or SY_ERESTART when a mutation without a savepoint failed
 * after writing: the transaction must then be rolled back and the batch
 * run again without `fast` (*ran: the mutations applied, to reset). */
#define SY_ERESTART (-1000)
static int apply_batch(sy_conn *c, sy_mutation *batch, bool fast, size_t *ran)
{
    int trc = SY_OK;
    *ran = 0;
    for (sy_mutation *m = batch; m && trc == SY_OK; m = m->next) {
        (*ran)++;
        if (fast && m->reset) {
            int64_t before = sy_conn_total_changes(c);
            m->rc = m->apply(c, m->ctx);
            /* An I/O error, a full disk or no memory can make SQLite roll
             * the whole transaction back by itself, without moving the
             * count: the batch is lost, and what followed would run
             * outside any transaction.  (With a savepoint, its ROLLBACK TO
             * or RELEASE fails instead.) */
            if (!sy_conn_in_tx(c)) {
                sy_error("writer: the transaction ended under a mutation: %s", sy_conn_errmsg(c));
                return SY_ERR;
            }
            if (m->rc != 0 && sy_conn_total_changes(c) != before)
                return SY_ERESTART;
            continue;
        }
        fast = false; /* from here on the savepoint of each keeps the order */
        if ((trc = sy_conn_savepoint(c)) != SY_OK)
            break;
        m->rc = m->apply(c, m->ctx);
        trc = m->rc == 0 ? sy_conn_release(c) : sy_conn_rollback_to(c);
    }
    return trc;
}

/* Applies one batch (a list of n mutations) in one transaction. */
static void run_batch(sy_writer *w, sy_mutation *batch, size_t n)
{
    sy_conn *c = sy_store_write_conn(w->store);
    uint64_t t0 = sy_mono_ns();
    size_t ran = 0;
    int trc = sy_conn_begin(c);
    if (trc == SY_OK)
        trc = apply_batch(c, batch, true, &ran);
    if (trc == SY_ERESTART) {
        /* A mutation failed half-way without a savepoint to undo its half:
         * undo the whole transaction and run the batch again, each mutation
         * in its own savepoint this time. */
        sy_conn_rollback(c);
        sy_metrics_writer_rerun();
        sy_mutation *m = batch;
        for (size_t i = 0; i < ran; i++, m = m->next) {
            m->rc = SY_ERR;
            if (m->reset)
                m->reset(m->ctx);
        }
        trc = sy_conn_begin(c);
        if (trc == SY_OK)
            trc = apply_batch(c, batch, false, &ran);
    }
    uint64_t t1 = sy_mono_ns();
    if (trc == SY_OK)
        trc = sy_conn_commit(c);
    uint64_t t2 = sy_mono_ns();
    if (trc != SY_OK) {
        sy_error("writer: batch of %zu failed: %s", n, sy_conn_errmsg(c));
        sy_conn_rollback(c);
    }
    sy_metrics_commit(n, t2 - t0, t2 - t1, trc == SY_OK);
    sy_mutation *last = NULL;
    for (sy_mutation *m = batch; m; m = m->next) {
        if (trc != SY_OK)
            m->rc = SY_ERR;
        else if (m->rc == 0 && m->committed)
            m->committed(m->ctx);
        last = m;
    }
    if (w->deferred)
        to_syncer(w, batch, last, trc == SY_OK);
    else
        answer(batch);
}

static void *writer_main(void *arg)
{
    sy_writer *w = arg;
    pthread_setname_np(pthread_self(), "siyu-writer");
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->head && !w->stopping)
            pthread_cond_wait(&w->cv, &w->mu);
        if (!w->head && w->stopping)
            break;
        /* Take up to max_batch mutations from the front of the queue. */
        sy_mutation *batch = w->head, *last = w->head;
        size_t n = 1;
        while (last->next && n < (size_t)w->max_batch) {
            last = last->next;
            n++;
        }
        w->head = last->next;
        if (!w->head)
            w->tail = NULL;
        last->next = NULL;
        pthread_mutex_unlock(&w->mu);
        run_batch(w, batch, n);
        pthread_mutex_lock(&w->mu);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

sy_writer *sy_writer_start(sy_store *s, const sy_writer_opts *o)
{
    sy_writer *w = sy_xcalloc(1, sizeof *w);
    w->store = s;
    w->max_batch = (o && o->max_batch > 0) ? o->max_batch : 1024;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    pthread_mutex_init(&w->sync_mu, NULL);
    pthread_cond_init(&w->sync_cv, NULL);
    w->deferred = sy_store_defer_sync(s);
    if (w->deferred && pthread_create(&w->syncer, NULL, syncer_main, w) != 0) {
        sy_error("writer: cannot start the syncer thread");
        abort();
    }
    if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
        sy_error("writer: cannot start thread");
        abort();
    }
    return w;
}

void sy_writer_submit(sy_writer *w, sy_mutation *m)
{
    m->next = NULL;
    m->rc = SY_ERR;
    pthread_mutex_lock(&w->mu);
    if (w->tail)
        w->tail->next = m;
    else
        w->head = m;
    w->tail = m;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

/* sy_writer_run() wraps the caller's mutation so that the writer signals a
 * condition variable on the caller's stack when the outcome is known. */
typedef struct sync_shim {
    sy_mutation *orig;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
} sync_shim;

static int shim_apply(sy_conn *c, void *ctx)
{
    sync_shim *sh = ctx;
    return sh->orig->apply(c, sh->orig->ctx);
}

static void shim_committed(void *ctx)
{
    sync_shim *sh = ctx;
    if (sh->orig->committed)
        sh->orig->committed(sh->orig->ctx);
}

static void shim_reset(void *ctx)
{
    sync_shim *sh = ctx;
    sh->orig->reset(sh->orig->ctx);
}

static void shim_done(sy_mutation *m)
{
    sync_shim *sh = m->ctx;
    pthread_mutex_lock(&sh->mu);
    sh->done = true;
    pthread_cond_signal(&sh->cv);
    pthread_mutex_unlock(&sh->mu);
}

int sy_writer_run(sy_writer *w, sy_mutation *m)
{
    sync_shim sh = {.orig = m};
    pthread_mutex_init(&sh.mu, NULL);
    pthread_cond_init(&sh.cv, NULL);
    sy_mutation shim = {.apply = shim_apply,
                        .committed = shim_committed,
                        .done = shim_done,
                        .reset = m->reset ? shim_reset : NULL,
                        .ctx = &sh};
    sy_writer_submit(w, &shim);
    pthread_mutex_lock(&sh.mu);
    while (!sh.done)
        pthread_cond_wait(&sh.cv, &sh.mu);
    pthread_mutex_unlock(&sh.mu);
    pthread_mutex_destroy(&sh.mu);
    pthread_cond_destroy(&sh.cv);
    m->rc = shim.rc;
    return m->rc;
}

void sy_writer_stop(sy_writer *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    w->stopping = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    if (w->deferred) {
        pthread_mutex_lock(&w->sync_mu);
        w->sync_stopping = true;
        pthread_cond_signal(&w->sync_cv);
        pthread_mutex_unlock(&w->sync_mu);
        pthread_join(w->syncer, NULL);
        sy_store_end_deferred_sync(w->store);
    }
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->sync_mu);
    pthread_cond_destroy(&w->sync_cv);
    free(w);
}

int sy_mutation_run_direct(sy_conn *c, sy_mutation *m)
{
    int rc = sy_conn_begin(c);
    if (rc != SY_OK)
        return SY_ERR;
    m->rc = m->apply(c, m->ctx);
    if (m->rc != 0) {
        sy_conn_rollback(c);
        return m->rc;
    }
    if (sy_conn_commit(c) != SY_OK) {
        sy_conn_rollback(c);
        return m->rc = SY_ERR;
    }
    if (m->committed)
        m->committed(m->ctx);
    return 0;
}

/* writer.h — the single writer thread and its group commit.
 *
 * Request threads never write to the store themselves.  They describe a
 * change as a sy_mutation and submit it; the writer thread takes every
 * mutation queued at that moment (up to a batch limit), runs them in one
 * transaction — each inside its own savepoint, so one failing mutation does
 * not undo its neighbours — commits once, and only then reports each
 * outcome.  A 2xx therefore always means durable, and one fsync is shared by
 * the whole batch.
 *
 * A savepoint is not free: SQLite copies every page a mutation changes into
 * the savepoint's journal first (an ingest batch of 1,000 events: some
 * 2,000 pages).  So a mutation that can be run again (it has a reset) runs
 * without one, and only a failure that leaves writes behind costs more: the
 * writer then rolls the whole transaction back, resets what ran, and runs
 * the batch again with a savepoint each.  A failure that wrote nothing (the
 * store's count of changed rows did not move; SQLite undoes a failed
 * statement by itself) needs nothing undone. */
#ifndef SY_WRITER_H
#define SY_WRITER_H

#include "store.h"

#include <stdbool.h>

typedef struct sy_writer sy_writer;
typedef struct sy_mutation sy_mutation;

struct sy_mutation {
    /* Runs in the writer thread inside the batch transaction.  Returns 0 to
     * keep its changes, anything else to roll them back (the reason is the
     * callee's to record in ctx).  Must not block on anything but the store. */
    int (*apply)(sy_conn *c, void *ctx);
    /* Optional; runs in the writer thread after the commit, for a mutation
     * whose apply returned 0 — the place to update in-memory state. */
    void (*committed)(void *ctx);
    /* Runs in the writer thread once the outcome is known (rc below).  After
     * it returns the writer no longer touches the mutation. */
    void (*done)(sy_mutation *m);
    /* Optional: makes the mutation one that may run without a savepoint.
     * Called in the writer thread after its transaction was rolled back, to
     * forget what apply recorded in ctx, before apply runs again.  apply
     * must then touch nothing outside ctx and the transaction. */
    void (*reset)(void *ctx);
    void *ctx;
    /* OUT: apply's return value, or SY_ERR if the transaction failed. */
    int rc;
    sy_mutation *next; /* private to the writer */
};

typedef struct sy_writer_opts {
    int max_batch; /* most mutations per transaction (default 1024) */
} sy_writer_opts;

/* Starts the writer thread over the store's write connection. */
sy_writer *sy_writer_start(sy_store *s, const sy_writer_opts *o);
/* Queues m; m->done is called later from the writer thread. */
void sy_writer_submit(sy_writer *w, sy_mutation *m);
/* Queues m and waits for its outcome; returns m->rc.  m->done must be NULL. */
int sy_writer_run(sy_writer *w, sy_mutation *m);
/* Commits everything still queued, stops the thread and frees the writer. */
void sy_writer_stop(sy_writer *w);

/* Runs one mutation in its own transaction on connection c, without a writer
 * thread (command-line tools).  Returns apply's result or SY_ERR. */
int sy_mutation_run_direct(sy_conn *c, sy_mutation *m);

#endif

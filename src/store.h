/* store.h — the storage interface every other module uses.
 *
 * A store is a set of connections to one database: one write connection,
 * owned by the writer thread (writer.h), and a small pool of read
 * connections shared by the request threads.  The only backend today is
 * SQLite (store_sqlite.c); SQL is written in the subset that PostgreSQL 15
 * runs as well, with $1, $2 ... placeholders, so a PostgreSQL backend can
 * come behind this same interface.
 *
 * Prepared statements are cached per connection, keyed by the address of the
 * SQL text: pass string literals (static storage) to sy_conn_prepare().
 * A statement obtained from sy_conn_prepare() belongs to the connection;
 * call sy_stmt_reset() when done with it (the next prepare of the same text
 * resets it too). */
#ifndef SY_STORE_H
#define SY_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sy_store sy_store;
typedef struct sy_conn sy_conn;
typedef struct sy_stmt sy_stmt;

/* Result codes.  Errors are negative. */
enum {
    SY_OK = 0,
    SY_ROW = 1,          /* sy_stmt_step(): a row is available */
    SY_DONE = 2,         /* sy_stmt_step(): no more rows */
    SY_ERR = -1,         /* any other failure; see sy_conn_errmsg() */
    SY_ECONSTRAINT = -2, /* unique / check / foreign-key constraint */
    SY_EBUSY = -3,       /* the database stayed locked past the busy timeout */
};

typedef enum {
    SY_SYNC_FULL,   /* fsync the WAL at every commit: survives power loss */
    SY_SYNC_NORMAL, /* no fsync at commit: survives process crash, not power loss */
} sy_sync_mode;

/* The WAL's size, in pages, past which a commit wakes the checkpointer
 * (store_sqlite.c).  8,000 (32 MiB): a page rewritten by many commits in a
 * row (an account, a stock count) is copied back to the database once per
 * checkpoint, so larger checkpoints write less; at 1,000 the checkpointer
 * took about twice the CPU per mall exchange (docs/benchmarks.md). */
#define SY_STORE_CKPT_FRAMES 8000

typedef struct sy_store_opts {
    const char *path; /* database file */
    int readers;      /* size of the read-connection pool (>= 1) */
    sy_sync_mode sync;
} sy_store_opts;

/* Opens the database (creating the file), sets WAL mode, opens the pool.
 * Returns SY_OK or an error with a message in err. */
int sy_store_open(const sy_store_opts *o, sy_store **out, char *err, size_t errlen);
/* Closes every connection.  All connections must have been released. */
void sy_store_close(sy_store *s);

/* Applies every migration (embedded from src/migrations/) not yet recorded
 * in schema_version — also one numbered below a newer one already applied —
 * in order, each in its own transaction, and records them there.  *applied
 * receives how many were applied now. */
int sy_store_migrate(sy_store *s, int *applied, char *err, size_t errlen);
/* The version recorded in the store and the newest one this binary knows. */
int sy_store_schema_version(sy_conn *c, int *current);
int sy_store_latest_version(void);

/* Borrows a read connection, waiting if all are in use; give it back with
 * sy_store_release(). */
sy_conn *sy_store_acquire(sy_store *s);
/* A free read connection, or NULL at once when all are in use. */
sy_conn *sy_store_try_acquire(sy_store *s);
void sy_store_release(sy_store *s, sy_conn *c);
/* Frees the pages c's cache holds and no statement uses (after a long scan,
 * such as an index rebuild's, whose pages are not read again soon). */
void sy_conn_shed(sy_conn *c);
/* The single write connection.  Only the writer thread (or a command-line
 * tool running without a writer thread) may use it. */
sy_conn *sy_store_write_conn(sy_store *s);

/* Deferred fsync, for the writer's pipelined group commit (writer.c).  In
 * SY_SYNC_FULL mode, sy_store_defer_sync() makes the write connection's
 * COMMIT return once the transaction's pages are written to the WAL, without
 * waiting for the disk (SQLite's synchronous=NORMAL), and returns true: the
 * caller must then call sy_store_sync() before it acknowledges anything.  In
 * SY_SYNC_NORMAL mode (commits are never fsynced) it changes nothing and
 * returns false.  Call it while no transaction is open. */
bool sy_store_defer_sync(sy_store *s);
/* Makes every commit that returned before this call durable: one fdatasync
 * of the WAL file.  Any thread may call it, beside the writer's next
 * transaction.  Returns SY_OK, or SY_ERR when the disk reported a failure,
 * after which nothing written since the last good sync may be assumed
 * durable. */
int sy_store_sync(sy_store *s);
/* Successful sy_store_sync() calls so far (for tests and metrics). */
uint64_t sy_store_syncs(sy_store *s);
/* Ends deferral: commits fsync again before they return (after the writer
 * stops, for whatever still writes directly). */
void sy_store_end_deferred_sync(sy_store *s);

int sy_conn_exec(sy_conn *c, const char *sql);
int sy_conn_begin(sy_conn *c); /* a write transaction (BEGIN IMMEDIATE) */
int sy_conn_commit(sy_conn *c);
int sy_conn_rollback(sy_conn *c);
int sy_conn_savepoint(sy_conn *c); /* nested: a single savepoint level "m" */
int sy_conn_release(sy_conn *c);
int sy_conn_rollback_to(sy_conn *c);
const char *sy_conn_errmsg(sy_conn *c);
/* Rows changed by the last INSERT/UPDATE/DELETE. */
int64_t sy_conn_changes(sy_conn *c);
/* Rows changed by every INSERT/UPDATE/DELETE completed on c so far: if it
 * did not move, nothing was written (a failed statement undoes itself).
 * A statement counts once it has run to its end: a DML ... RETURNING
 * stepped for its first row only and not reset yet has not counted. */
int64_t sy_conn_total_changes(sy_conn *c);
/* Whether a transaction is open on c (SQLite may end one by itself, on an
 * I/O error, a full disk or no memory). */
bool sy_conn_in_tx(sy_conn *c);

/* Returns the cached statement for this SQL text (reset, bindings cleared),
 * or NULL with the reason in sy_conn_errmsg(). */
sy_stmt *sy_conn_prepare(sy_conn *c, const char *sql);

void sy_stmt_bind_i64(sy_stmt *st, int idx, int64_t v);
void sy_stmt_bind_text(sy_stmt *st, int idx, const char *v); /* NULL binds NULL */
void sy_stmt_bind_textn(sy_stmt *st, int idx, const char *v, size_t n);
void sy_stmt_bind_null(sy_stmt *st, int idx);
void sy_stmt_bind_blob(sy_stmt *st, int idx, const void *v, size_t n);
/* SY_ROW, SY_DONE or a negative error. */
int sy_stmt_step(sy_stmt *st);
int64_t sy_stmt_i64(sy_stmt *st, int col);
/* Valid until the next step or reset of this statement; "" for NULL. */
const char *sy_stmt_text(sy_stmt *st, int col);
size_t sy_stmt_len(sy_stmt *st, int col);
/* A BLOB (bytea) column, valid like sy_stmt_text; NULL for an empty or NULL one. */
const void *sy_stmt_blob(sy_stmt *st, int col);
bool sy_stmt_is_null(sy_stmt *st, int col);
void sy_stmt_reset(sy_stmt *st);

/* Runs a statement that returns no rows to completion and resets it. */
int sy_stmt_exec(sy_stmt *st);

/* Embedded migrations (generated from the src/migrations directory at build time). */
typedef struct sy_migration {
    int version;
    const char *name;
    const char *sql;
} sy_migration;
extern const sy_migration sy_migrations[];
extern const int sy_migrations_count;

#endif

/* store_sqlite.c — the SQLite backend of the store interface.
 *
 * Durability: the database runs in WAL mode.  With synchronous=FULL (the
 * default) every commit fsyncs the WAL before it returns, so an acknowledged
 * write survives a process kill, an OS crash and a power loss.  With
 * synchronous=NORMAL the WAL is written at commit but fsynced only at
 * checkpoints: acknowledged writes survive a process kill (kill -9) because
 * they are in the OS page cache, but the last commits may be lost when the
 * machine itself goes down.  The writer's group commit (writer.c) amortises
 * the fsync over every mutation in a batch.
 *
 * Placeholders are written $1, $2 ... as PostgreSQL wants them.  SQLite reads
 * "$1" as a named parameter whose index is the order of first appearance, so
 * each statement keeps a map from the number to SQLite's index. */
#include "store.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SY_MAX_PARAMS 32
#define SY_STMT_CACHE 64 /* slots in each connection's statement cache */

struct sy_stmt {
    sqlite3_stmt *st;
    sy_conn *conn;
    const char *sql;                       /* cache key: address of the SQL text */
    unsigned char pmap[SY_MAX_PARAMS + 1]; /* $n -> sqlite index */
    sy_stmt *next;                         /* hash chain */
};

struct sy_conn {
    sqlite3 *db;
    sy_stmt *cache[SY_STMT_CACHE];
    char errmsg[256];
    bool in_use;
};

/* WAL checkpoints run on a thread and a connection of their own, so that a
 * commit never waits for one: after a commit that leaves the WAL at
 * CKPT_FRAMES pages or more, the writer only wakes the checkpointer, which
 * copies the WAL back into the database file (PASSIVE: beside the writer
 * and the readers).  Should the WAL reach CKPT_INLINE pages all the same,
 * the writer checkpoints it itself, as SQLite's default would. */
#define CKPT_FRAMES SY_STORE_CKPT_FRAMES
#define CKPT_INLINE 50000

struct sy_store {
    sy_conn *writer;
    sy_conn **readers;
    int nreaders;
    char *path;
    sy_sync_mode sync;
    int wal_fd; /* the WAL, opened by sy_store_defer_sync(); -1 before */
    atomic_uint_fast64_t syncs;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* the checkpointer */
    sqlite3 *ckpt_db;
    pthread_t ckpt_thread;
    bool ckpt_inited, ckpt_started, ckpt_due, ckpt_stop;
    pthread_mutex_t ckpt_mu;
    pthread_cond_t ckpt_cv;
};

static int wal_hook(void *ud, sqlite3 *db, const char *name, int frames)
{
    sy_store *s = ud;
    if (frames >= CKPT_INLINE) {
        sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    } else if (frames >= CKPT_FRAMES) {
        pthread_mutex_lock(&s->ckpt_mu);
        s->ckpt_due = true;
        pthread_cond_signal(&s->ckpt_cv);
        pthread_mutex_unlock(&s->ckpt_mu);
    }
    return SQLITE_OK;
}

static void *checkpointer(void *arg)
{
    sy_store *s = arg;
    pthread_setname_np(pthread_self(), "siyu-ckpt");
    pthread_mutex_lock(&s->ckpt_mu);
    for (;;) {
        while (!s->ckpt_due && !s->ckpt_stop)
            pthread_cond_wait(&s->ckpt_cv, &s->ckpt_mu);
        if (s->ckpt_stop)
            break;
        s->ckpt_due = false;
        pthread_mutex_unlock(&s->ckpt_mu);
        sqlite3_wal_checkpoint_v2(s->ckpt_db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        pthread_mutex_lock(&s->ckpt_mu);
    }
    pthread_mutex_unlock(&s->ckpt_mu);
    return NULL;
}

/* Opens the checkpointer's connection and starts its thread; without them
 * the writer keeps SQLite's own checkpoints. */
static void checkpointer_start(sy_store *s, const char *path, sy_sync_mode sync)
{
    pthread_mutex_init(&s->ckpt_mu, NULL);
    pthread_cond_init(&s->ckpt_cv, NULL);
    s->ckpt_inited = true;
    if (sqlite3_open_v2(path, &s->ckpt_db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        sqlite3_close(s->ckpt_db);
        s->ckpt_db = NULL;
        return;
    }
    sqlite3_busy_timeout(s->ckpt_db, 10000);
    sqlite3_exec(s->ckpt_db,
                 sync == SY_SYNC_FULL ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL",
                 NULL, NULL, NULL);
    if (pthread_create(&s->ckpt_thread, NULL, checkpointer, s) != 0) {
        sqlite3_close(s->ckpt_db);
        s->ckpt_db = NULL;
        return;
    }
    s->ckpt_started = true;
    sqlite3_wal_hook(s->writer->db, wal_hook, s);
}

static void checkpointer_stop(sy_store *s)
{
    if (s->ckpt_started) {
        sqlite3_wal_autocheckpoint(s->writer->db, 1000); /* SQLite's own again */
        pthread_mutex_lock(&s->ckpt_mu);
        s->ckpt_stop = true;
        pthread_cond_signal(&s->ckpt_cv);
        pthread_mutex_unlock(&s->ckpt_mu);
        pthread_join(s->ckpt_thread, NULL);
        s->ckpt_started = false;
    }
    if (s->ckpt_db)
        sqlite3_close(s->ckpt_db);
    s->ckpt_db = NULL;
    if (s->ckpt_inited) {
        pthread_mutex_destroy(&s->ckpt_mu);
        pthread_cond_destroy(&s->ckpt_cv);
        s->ckpt_inited = false;
    }
}

static int map_rc(sy_conn *c, int rc)
{
    switch (rc) {
    case SQLITE_OK:
        return SY_OK;
    case SQLITE_ROW:
        return SY_ROW;
    case SQLITE_DONE:
        return SY_DONE;
    default:
        break;
    }
    snprintf(c->errmsg, sizeof c->errmsg, "%s", sqlite3_errmsg(c->db));
    switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
        return SY_ECONSTRAINT;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return SY_EBUSY;
    default:
        return SY_ERR;
    }
}

static int conn_open(const char *path, bool reader, sy_sync_mode sync, sy_conn **out, char *err,
                     size_t errlen)
{
    sy_conn *c = sy_xcalloc(1, sizeof *c);
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    int rc = sqlite3_open_v2(path, &c->db, flags, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "open %s: %s", path, c->db ? sqlite3_errmsg(c->db) : "out of memory");
        goto fail;
    }
    sqlite3_extended_result_codes(c->db, 1);
    sqlite3_busy_timeout(c->db, 10000);
    /* A page cache big enough for the hot part of the database (the
     * default 2 MiB makes every miss a pread).  No memory map: pages read
     * through one count as the process's resident memory, up to the map's
     * size per connection, and at ten million customers the hot pages are
     * spread over a file far larger than any map. */
    char pragmas[384];
    snprintf(pragmas, sizeof pragmas,
             "PRAGMA journal_mode=WAL; PRAGMA synchronous=%s; PRAGMA foreign_keys=ON;"
             "PRAGMA temp_store=MEMORY; PRAGMA cache_size=%d; PRAGMA mmap_size=0; %s",
             sync == SY_SYNC_FULL ? "FULL" : "NORMAL", reader ? -16384 : -65536,
             reader ? "PRAGMA query_only=1;" : "");
    char *msg = NULL;
    if (sqlite3_exec(c->db, pragmas, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, errlen, "configure %s: %s", path, msg ? msg : "?");
        sqlite3_free(msg);
        goto fail;
    }
    *out = c;
    return SY_OK;
fail:
    sqlite3_close(c->db);
    free(c);
    return SY_ERR;
}

static void conn_close(sy_conn *c)
{
    if (!c)
        return;
    for (int i = 0; i < SY_STMT_CACHE; i++) {
        sy_stmt *st = c->cache[i];
        while (st) {
            sy_stmt *next = st->next;
            sqlite3_finalize(st->st);
            free(st);
            st = next;
        }
    }
    sqlite3_close(c->db);
    free(c);
}

/* SQLite's memory statistics take a global mutex on every allocation,
 * which serialises connections used on different threads (the writer,
 * readers, a rebuild's two scans); siyu does not read them. */
static void sqlite_configure(void)
{
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

int sy_store_open(const sy_store_opts *o, sy_store **out, char *err, size_t errlen)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, sqlite_configure);
    sy_store *s = sy_xcalloc(1, sizeof *s);
    s->path = sy_xstrdup(o->path);
    s->sync = o->sync;
    s->wal_fd = -1;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    /* The writer opens first so that WAL mode is set before readers attach. */
    if (conn_open(o->path, false, o->sync, &s->writer, err, errlen) != SY_OK)
        goto fail;
    s->nreaders = o->readers > 0 ? o->readers : 1;
    s->readers = sy_xcalloc((size_t)s->nreaders, sizeof *s->readers);
    for (int i = 0; i < s->nreaders; i++)
        if (conn_open(o->path, true, o->sync, &s->readers[i], err, errlen) != SY_OK)
            goto fail;
    checkpointer_start(s, o->path, o->sync);
    *out = s;
    return SY_OK;
fail:
    sy_store_close(s);
    return SY_ERR;
}

void sy_store_close(sy_store *s)
{
    if (!s)
        return;
    if (s->writer)
        checkpointer_stop(s);
    for (int i = 0; i < s->nreaders; i++)
        conn_close(s->readers[i]);
    free(s->readers);
    if (s->wal_fd >= 0)
        close(s->wal_fd);
    if (s->writer) {
        /* Fold the WAL back into the main file so a clean shutdown leaves
         * one self-contained database file. */
        sqlite3_wal_checkpoint_v2(s->writer->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
        conn_close(s->writer);
    }
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s->path);
    free(s);
}

sy_conn *sy_store_acquire(sy_store *s)
{
    pthread_mutex_lock(&s->mu);
    for (;;) {
        for (int i = 0; i < s->nreaders; i++) {
            if (!s->readers[i]->in_use) {
                s->readers[i]->in_use = true;
                pthread_mutex_unlock(&s->mu);
                return s->readers[i];
            }
        }
        pthread_cond_wait(&s->cv, &s->mu);
    }
}

sy_conn *sy_store_try_acquire(sy_store *s)
{
    sy_conn *c = NULL;
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < s->nreaders && !c; i++)
        if (!s->readers[i]->in_use) {
            s->readers[i]->in_use = true;
            c = s->readers[i];
        }
    pthread_mutex_unlock(&s->mu);
    return c;
}

void sy_store_release(sy_store *s, sy_conn *c)
{
    pthread_mutex_lock(&s->mu);
    c->in_use = false;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

sy_conn *sy_store_write_conn(sy_store *s)
{
    return s->writer;
}

/* The WAL file lives beside the database for as long as a connection is
 * open (the write connection is, until sy_store_close), and checkpoints
 * only truncate it: a descriptor of our own keeps naming the file SQLite
 * appends to, and fdatasync on it flushes what any descriptor wrote. */
bool sy_store_defer_sync(sy_store *s)
{
    if (s->sync != SY_SYNC_FULL || s->wal_fd >= 0)
        return s->wal_fd >= 0;
    char wal[4096];
    snprintf(wal, sizeof wal, "%s-wal", s->path);
    /* journal_mode=WAL makes the file on the first write transaction. */
    if (sy_conn_exec(s->writer, "BEGIN IMMEDIATE; COMMIT") != SY_OK)
        return false;
    int fd = open(wal, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        sy_error("store: cannot open %s to sync it (%s); commits stay synchronous", wal,
                 strerror(errno));
        return false;
    }
    if (sy_conn_exec(s->writer, "PRAGMA synchronous=NORMAL") != SY_OK) {
        close(fd);
        return false;
    }
    s->wal_fd = fd;
    return true;
}

int sy_store_sync(sy_store *s)
{
    if (s->wal_fd < 0)
        return SY_OK;
    int rc;
    do
        rc = fdatasync(s->wal_fd);
    while (rc != 0 && errno == EINTR);
    if (rc != 0) {
        sy_error("store: fdatasync of the WAL failed: %s", strerror(errno));
        return SY_ERR;
    }
    atomic_fetch_add_explicit(&s->syncs, 1, memory_order_relaxed);
    return SY_OK;
}

void sy_store_end_deferred_sync(sy_store *s)
{
    if (s->wal_fd < 0)
        return;
    sy_store_sync(s);
    sy_conn_exec(s->writer, "PRAGMA synchronous=FULL");
    close(s->wal_fd);
    s->wal_fd = -1;
}

uint64_t sy_store_syncs(sy_store *s)
{
    return atomic_load_explicit(&s->syncs, memory_order_relaxed);
}

int sy_conn_exec(sy_conn *c, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(c->db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        int r = map_rc(c, rc);
        if (msg)
            snprintf(c->errmsg, sizeof c->errmsg, "%s", msg);
        sqlite3_free(msg);
        return r;
    }
    return SY_OK;
}

/* Transaction control through the statement cache: the writer runs a
 * SAVEPOINT and a RELEASE per mutation, and sqlite3_exec would compile
 * them every time. */
static int tx(sy_conn *c, const char *sql)
{
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    int rc = sy_stmt_step(st);
    sy_stmt_reset(st);
    return rc == SY_DONE ? SY_OK : rc;
}

static const char k_begin[] = "BEGIN IMMEDIATE", k_commit[] = "COMMIT",
                  k_savepoint[] = "SAVEPOINT m", k_release[] = "RELEASE m",
                  k_rollback_to[] = "ROLLBACK TO m";

int sy_conn_begin(sy_conn *c)
{
    return tx(c, k_begin);
}
int sy_conn_commit(sy_conn *c)
{
    return tx(c, k_commit);
}
int sy_conn_rollback(sy_conn *c)
{
    if (sqlite3_get_autocommit(c->db))
        return SY_OK; /* nothing open: SQLite already rolled back */
    return sy_conn_exec(c, "ROLLBACK");
}
int sy_conn_savepoint(sy_conn *c)
{
    return tx(c, k_savepoint);
}
int sy_conn_release(sy_conn *c)
{
    return tx(c, k_release);
}
int sy_conn_rollback_to(sy_conn *c)
{
    int rc = tx(c, k_rollback_to);
    if (rc == SY_OK)
        rc = tx(c, k_release);
    return rc;
}

const char *sy_conn_errmsg(sy_conn *c)
{
    return c->errmsg;
}

int64_t sy_conn_changes(sy_conn *c)
{
    return sqlite3_changes64(c->db);
}

int64_t sy_conn_total_changes(sy_conn *c)
{
    return sqlite3_total_changes64(c->db);
}

bool sy_conn_in_tx(sy_conn *c)
{
    return !sqlite3_get_autocommit(c->db);
}

static unsigned cache_slot(const char *sql)
{
    uintptr_t p = (uintptr_t)sql;
    return (unsigned)((p >> 3) ^ (p >> 11)) % SY_STMT_CACHE;
}

void sy_conn_shed(sy_conn *c)
{
    sqlite3_db_release_memory(c->db);
}

sy_stmt *sy_conn_prepare(sy_conn *c, const char *sql)
{
    unsigned slot = cache_slot(sql);
    for (sy_stmt *st = c->cache[slot]; st; st = st->next) {
        if (st->sql == sql) {
            sqlite3_reset(st->st);
            sqlite3_clear_bindings(st->st);
            return st;
        }
    }
    sqlite3_stmt *raw = NULL;
    int rc = sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &raw, NULL);
    if (rc != SQLITE_OK) {
        map_rc(c, rc);
        return NULL;
    }
    sy_stmt *st = sy_xcalloc(1, sizeof *st);
    st->st = raw;
    st->conn = c;
    st->sql = sql;
    int n = sqlite3_bind_parameter_count(raw);
    for (int i = 1; i <= n; i++) {
        const char *name = sqlite3_bind_parameter_name(raw, i);
        int64_t num;
        if (name && name[0] == '$' && sy_parse_i64(name + 1, 1, SY_MAX_PARAMS, &num))
            st->pmap[num] = (unsigned char)i;
    }
    st->next = c->cache[slot];
    c->cache[slot] = st;
    return st;
}

static int pidx(sy_stmt *st, int idx)
{
    return (idx >= 1 && idx <= SY_MAX_PARAMS) ? st->pmap[idx] : 0;
}

void sy_stmt_bind_i64(sy_stmt *st, int idx, int64_t v)
{
    sqlite3_bind_int64(st->st, pidx(st, idx), v);
}

void sy_stmt_bind_text(sy_stmt *st, int idx, const char *v)
{
    if (!v)
        sqlite3_bind_null(st->st, pidx(st, idx));
    else
        sqlite3_bind_text(st->st, pidx(st, idx), v, -1, SQLITE_TRANSIENT);
}

void sy_stmt_bind_textn(sy_stmt *st, int idx, const char *v, size_t n)
{
    sqlite3_bind_text64(st->st, pidx(st, idx), v, n, SQLITE_TRANSIENT, SQLITE_UTF8);
}

void sy_stmt_bind_blob(sy_stmt *st, int idx, const void *v, size_t n)
{
    sqlite3_bind_blob64(st->st, pidx(st, idx), v ? v : "", n, SQLITE_TRANSIENT);
}

void sy_stmt_bind_null(sy_stmt *st, int idx)
{
    sqlite3_bind_null(st->st, pidx(st, idx));
}

int sy_stmt_step(sy_stmt *st)
{
    return map_rc(st->conn, sqlite3_step(st->st));
}

int64_t sy_stmt_i64(sy_stmt *st, int col)
{
    return sqlite3_column_int64(st->st, col);
}

const char *sy_stmt_text(sy_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st->st, col);
    return t ? (const char *)t : "";
}

const void *sy_stmt_blob(sy_stmt *st, int col)
{
    return sqlite3_column_blob(st->st, col);
}

size_t sy_stmt_len(sy_stmt *st, int col)
{
    return (size_t)sqlite3_column_bytes(st->st, col);
}

bool sy_stmt_is_null(sy_stmt *st, int col)
{
    return sqlite3_column_type(st->st, col) == SQLITE_NULL;
}

void sy_stmt_reset(sy_stmt *st)
{
    sqlite3_reset(st->st);
    sqlite3_clear_bindings(st->st);
}

int sy_stmt_exec(sy_stmt *st)
{
    int rc = sy_stmt_step(st);
    sy_stmt_reset(st);
    return rc == SY_DONE || rc == SY_ROW ? SY_OK : rc;
}

/* Dialect: the portable migrations use {{AUTOID}} for an auto-assigned
 * integer primary key, which the two databases spell differently. */
const char *sy_store_dialect_autoid(void)
{
    return "INTEGER PRIMARY KEY";
}

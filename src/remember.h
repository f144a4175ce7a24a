/* remember.h — values read from rows that never change, kept in memory.
 *
 * Some rows are written once and never changed in the columns a hot path
 * reads: the segments a mall listing or a benefit item is for, a campaign's
 * audience once it has been approved.  A request thread that reads them
 * per request opens a read transaction each time; remembering what a read of
 * committed rows found saves that, and stays true because nothing changes
 * those columns afterwards.  It is the caller's to decide that a row is of
 * that kind (and, for a code not found, to read again next time).
 *
 * An entry is (kind, tenant, code) -> n values, each a string or NULL; kind
 * is any address that tells the callers' uses apart (e.g. the SQL text).
 * Entries are never freed while the process runs and are immutable, so a
 * pointer returned stays valid (sy_remember_forget only unlinks one); SY_REMEMBER_MAX bounds their
 * number, and past it sy_remember_put() keeps nothing. */
#ifndef SY_REMEMBER_H
#define SY_REMEMBER_H

#include <stddef.h>
#include <stdint.h>

#define SY_REMEMBER_MAX 65536

typedef struct sy_remembered {
    size_t n;
    char **v; /* v[0..n): strings or NULL */
} sy_remembered;

/* The entry for (kind, tenant, code), or NULL. */
const sy_remembered *sy_remember_get(const void *kind, const char *tenant, const char *code);
/* The count of forgets so far: read it before reading the row whose
 * values are then put. */
uint64_t sy_remember_epoch(void);
/* Keeps a copy of v[0..n) for (kind, tenant, code) and returns the kept
 * entry — the one already there if another thread was first — or NULL
 * when SY_REMEMBER_MAX entries are kept already, or when anything was
 * forgotten since `epoch` (sy_remember_epoch() before the read: the read
 * may predate the change that made the forget). */
const sy_remembered *sy_remember_put(const void *kind, const char *tenant, const char *code,
                                     size_t n, const char *const *v, uint64_t epoch);
/* For a row that did change after all (a campaign sent back to draft):
 * drops its entry, after the change is committed.  A pointer returned
 * before stays valid. */
void sy_remember_forget(const void *kind, const char *tenant, const char *code);
/* How many entries are kept (tests, metrics). */
size_t sy_remember_count(void);

#endif

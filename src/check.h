/* check.h — `siyu check`: verifies a tenant's data against the invariants
 * the code promises, reading the store the way it is on disk.
 *
 * The checks are one table (check.c): each names a part of the system and
 * reports every violation it finds as a line of text: the customers' packed
 * attributes (customer.h), the points ledger (ledger.h), the benefits
 * catalogue, grants and the mall (benefits.h). */
#ifndef SY_CHECK_H
#define SY_CHECK_H

#include "store.h"

#include <stdint.h>
#include <stdio.h>

/* Runs every check for the tenant in one read transaction (one consistent
 * state, even beside a running server), writing each violation as
 * "<part>: <what>" and a summary line per part to out.  *violations counts
 * them all.  Returns SY_OK or a store error. */
int sy_check_tenant(sy_store *s, const char *tenant, FILE *out, int64_t *violations);

/* For a part's check function: formats one violation, hands it to
 * report(ud, line) and counts it in *violations. */
void sy_check_violation(void (*report)(void *ud, const char *line), void *ud, int64_t *violations,
                        const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* A check that is one query: with the tenant as $1, every row it returns
 * is a violation, and say() words it. */
typedef struct sy_check_query {
    const char *sql;
    void (*say)(sy_stmt *st, char *line, size_t n);
} sy_check_query;

/* For a part made of such queries: count_sql (one number, with the tenant
 * as $1: the rows the part looks at) sets *checked; then each query's rows
 * are reported and counted in *violations.  Returns SY_OK or a store
 * error. */
int sy_check_queries(sy_conn *c, const char *tenant, const char *count_sql, const sy_check_query *q,
                     size_t n, void (*report)(void *ud, const char *line), void *ud,
                     int64_t *violations, int64_t *checked);

#endif

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

#endif

/* store_fixture.h — a temporary store for unit tests. */
#ifndef SY_STORE_FIXTURE_H
#define SY_STORE_FIXTURE_H

#include "testutil.h"

#include "store.h"

#include <stdbool.h>

/* Opens dir/siyu.db (2 readers, synchronous=NORMAL) and, when migrate is
 * set, applies the migrations.  Fails the test on any error. */
static inline sy_store *tu_store_open(const char *dir, bool migrate)
{
    char path[512], err[256] = "";
    snprintf(path, sizeof path, "%s/siyu.db", dir);
    sy_store_opts o = {.path = path, .readers = 2, .sync = SY_SYNC_NORMAL};
    sy_store *s = NULL;
    if (sy_store_open(&o, &s, err, sizeof err) != SY_OK)
        fail_msg("sy_store_open: %s", err);
    int applied;
    if (migrate && sy_store_migrate(s, &applied, err, sizeof err) != SY_OK)
        fail_msg("sy_store_migrate: %s", err);
    return s;
}

#endif

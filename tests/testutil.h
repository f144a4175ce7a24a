/* testutil.h — small helpers shared by the cmocka tests. */
#ifndef SY_TESTUTIL_H
#define SY_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#define SY_TEST_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Creates a fresh temporary directory; returns a malloc'd path. */
static inline char *tu_tempdir(void)
{
    char tmpl[] = "/tmp/siyu-test-XXXXXX";
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    return strdup(d);
}

/* Removes a directory tree made by tu_tempdir(). */
static inline void tu_rmtree(const char *dir)
{
    if (!dir || strncmp(dir, "/tmp/siyu-test-", 15) != 0)
        return;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

#endif

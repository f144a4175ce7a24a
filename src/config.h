/* config.h — settings of `siyu serve` and the other commands.
 *
 * Each setting can come from a command-line flag (--max-body 8MiB), an
 * environment variable (SIYU_MAX_BODY=8MiB) or a line of the config file
 * (max_body = 8MiB); the first of those that is present wins, in that order,
 * else the built-in default. */
#ifndef SY_CONFIG_H
#define SY_CONFIG_H

#include "store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct sy_config {
    char *listen;           /* ADDR:PORT */
    char *data;             /* data directory */
    char *config;           /* config file (may be unset) */
    int64_t threads;        /* 0 = one per core */
    int64_t readers;        /* read connections; 0 = threads + 1 */
    uint64_t max_body;      /* bytes */
    char *sync;             /* "full" | "normal" */
    char *access_log;       /* "-" = stdout, "off", or a file path */
    char *log_level;        /* debug | info | warn | error */
    int64_t idle_timeout;   /* seconds */
    int64_t shutdown_grace; /* milliseconds to finish in-flight requests */
    char *tenant;           /* tenant created on first start */
    char *port_file;        /* where to write the bound port (tests) */
    int64_t max_batch;      /* mutations per group commit */
    char *role;             /* key create */
    char *name;             /* key create, tenant create */
    char *timezone;         /* tenant create */
    char *examples;         /* key create: print curl examples for ADDR:PORT */
    char *data_key_file;    /* the personal-data key (pii.h) */
    bool demo;              /* a demo bank: create missing keys and demo data */
    bool test_clock;        /* tests only: honour the X-Siyu-Now request header */
    int64_t customers;      /* demo: customers to generate */
    int64_t days;           /* demo: days of behaviour */
    int64_t sessions;       /* demo: app sessions per active day */
    int64_t seed;           /* demo: generator seed */
    char *url;              /* import: the server */
    char *key;              /* import: an API key of the tenant */
    int64_t batch;          /* import: lines per request */
} sy_config;

/* Which settings a command accepts (bit per setting group). */
#define SY_CFG_SERVE (1u << 0)
#define SY_CFG_DATA (1u << 1)
#define SY_CFG_KEY (1u << 2)
#define SY_CFG_TENANT (1u << 3)
#define SY_CFG_DEMO (1u << 4)
#define SY_CFG_IMPORT (1u << 5)
#define SY_CFG_CHECK (1u << 6)

/* Parses argv (flags only, after the command words) over the defaults, the
 * config file and the environment.  Unknown flags and bad values are
 * reported in err and make it return false.  Positional arguments are
 * collected into pos (at most maxpos).  *help is set when --help was given. */
bool sy_config_load(sy_config *cfg, unsigned groups, int argc, char **argv, const char **pos,
                    int maxpos, int *npos, bool *help, char *err, size_t errlen);
void sy_config_free(sy_config *cfg);
void sy_config_usage(FILE *f, unsigned groups);
bool sy_config_sync_mode(const sy_config *cfg, sy_sync_mode *out);

#endif

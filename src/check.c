/* check.c — the table of invariant checks behind `siyu check` (check.h). */
#include "check.h"
#include "benefits.h"
#include "coupon.h"
#include "customer.h"
#include "ledger.h"
#include "lottery.h"
#include "util.h"

#include <stdarg.h>
#include <stdio.h>

typedef struct check_part {
    const char *name;
    /* Reports each violation through report(); see sy_ledger_check. */
    int (*run)(sy_conn *c, const char *tenant, void (*report)(void *ud, const char *line), void *ud,
               int64_t *violations, int64_t *checked);
    const char *what; /* what `checked` counts */
} check_part;

static const check_part k_parts[] = {
    {"customers", sy_customers_check_packed, "customers"},
    {"ledger", sy_ledger_check, "accounts, lots and entries"},
    {"benefits", sy_benefit_check, "items, voucher codes and grants"},
    {"campaigns", sy_lottery_check, "campaign budgets, lottery prizes and draws"},
    {"coupons", sy_coupon_check, "coupon drop waves and claims"},
};

typedef struct printer {
    FILE *out;
    const char *part;
} printer;

static void print_line(void *ud, const char *line)
{
    printer *p = ud;
    fprintf(p->out, "%s: %s\n", p->part, line);
}

int sy_check_tenant(sy_store *s, const char *tenant, FILE *out, int64_t *violations)
{
    *violations = 0;
    sy_conn *c = sy_store_acquire(s);
    int rc = sy_conn_exec(c, "BEGIN");
    for (size_t i = 0; i < SY_ARRAY_LEN(k_parts) && rc == SY_OK; i++) {
        printer p = {out, k_parts[i].name};
        int64_t v = 0, checked = 0;
        rc = k_parts[i].run(c, tenant, print_line, &p, &v, &checked);
        if (rc == SY_OK)
            fprintf(out, "%s: %lld %s checked, %lld violation%s\n", k_parts[i].name,
                    (long long)checked, k_parts[i].what, (long long)v, v == 1 ? "" : "s");
        *violations += v;
    }
    if (rc != SY_OK)
        fprintf(out, "check failed: %s\n", sy_conn_errmsg(c));
    sy_conn_exec(c, "ROLLBACK");
    sy_store_release(s, c);
    return rc;
}

void sy_check_violation(void (*report)(void *ud, const char *line), void *ud, int64_t *violations,
                        const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    report(ud, line);
    (*violations)++;
}

int sy_check_queries(sy_conn *c, const char *tenant, const char *count_sql, const sy_check_query *q,
                     size_t n, void (*report)(void *ud, const char *line), void *ud,
                     int64_t *violations, int64_t *checked)
{
    *violations = 0;
    *checked = 0;
    sy_stmt *st = sy_conn_prepare(c, count_sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    int rc = sy_stmt_step(st);
    if (rc == SY_ROW)
        *checked = sy_stmt_i64(st, 0);
    sy_stmt_reset(st);
    if (rc != SY_ROW)
        return rc == SY_DONE ? SY_ERR : rc;
    for (size_t i = 0; i < n; i++) {
        if (!(st = sy_conn_prepare(c, q[i].sql)))
            return SY_ERR;
        sy_stmt_bind_text(st, 1, tenant);
        while ((rc = sy_stmt_step(st)) == SY_ROW) {
            char line[512];
            q[i].say(st, line, sizeof line);
            report(ud, line);
            (*violations)++;
        }
        sy_stmt_reset(st);
        if (rc != SY_DONE)
            return rc;
    }
    return SY_OK;
}

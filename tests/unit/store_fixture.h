/* store_fixture.h — a temporary store for unit tests, and the fixture the
 * campaign-family tests share: tenant t1 (Asia/Shanghai) with customers
 * C1..Cn and the point type sun, a coupon of supplier acme, campaigns
 * running through December 2026 launched by key_maker and key_checker, and
 * operations run as the writer runs them. */
#ifndef SY_STORE_FIXTURE_H
#define SY_STORE_FIXTURE_H

#include "testutil.h"

#include "benefits.h"
#include "campaign.h"
#include "ledger.h"
#include "store.h"
#include "tenant.h"
#include "util.h"

#include <sodium.h>
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

/* A temporary migrated store and its writer connection (tu_fx_open). */
typedef struct tu_fx {
    char *dir;
    sy_store *s;
    sy_conn *c;
} tu_fx;

/* The milliseconds of an RFC 3339 time; fails the test on a bad one. */
static inline int64_t tu_at(const char *rfc3339)
{
    int64_t ms;
    if (!sy_parse_time(rfc3339, &ms))
        fail_msg("bad time %s", rfc3339);
    return ms;
}

/* Runs sql on c; fails the test unless it succeeds. */
static inline void tu_exec(sy_conn *c, const char *sql)
{
    assert_int_equal(sy_conn_exec(c, sql), SY_OK);
}

/* Inserts customer no of tenant with dense id dense, attrs {}, created at created_at. */
static inline void tu_customer_add(sy_conn *c, const char *tenant, const char *no, int64_t dense,
                                   int64_t created_at)
{
    static const char sql[] = "INSERT INTO customers (tenant_id, customer_no, dense_id, attrs,"
                              " created_at, updated_at) VALUES ($1, $2, $3, '{}', $4, $4)";
    sy_stmt *st = sy_conn_prepare(c, sql);
    assert_non_null(st);
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, no);
    sy_stmt_bind_i64(st, 3, dense);
    sy_stmt_bind_i64(st, 4, created_at);
    assert_int_equal(sy_stmt_exec(st), SY_OK);
}

/* Inserts customers C1..Cn of tenant, dense ids 0..n-1, created at 0. */
static inline void tu_customers_add(sy_conn *c, const char *tenant, int n)
{
    for (int i = 0; i < n; i++) {
        char no[16];
        snprintf(no, sizeof no, "C%d", i + 1);
        tu_customer_add(c, tenant, no, i, 0);
    }
}

/* Creates point type code of tenant, named by its code, never expiring. */
static inline void tu_point_type(sy_conn *c, const char *tenant, const char *code)
{
    sy_point_type t = {.expiry = SY_EXPIRY_NEVER, .created_at = 0};
    snprintf(t.code, sizeof t.code, "%s", code);
    snprintf(t.name, sizeof t.name, "%s", code);
    assert_int_equal(sy_ledger_type_create(c, tenant, &t), SY_OK);
}

/* A new store: tenant t1 (Asia/Shanghai), C1..Cn, point_type unless NULL; tu_fx_close it. */
static inline tu_fx *tu_fx_open(int ncustomers, const char *point_type)
{
    assert_true(sodium_init() >= 0);
    sy_log_set_level(SY_LOG_ERROR);
    tu_fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->dir = tu_tempdir();
    f->s = tu_store_open(f->dir, true);
    f->c = sy_store_write_conn(f->s);
    assert_int_equal(sy_tenant_create(f->c, "t1", "T1", "Asia/Shanghai", 0), SY_OK);
    tu_customers_add(f->c, "t1", ncustomers);
    if (point_type)
        tu_point_type(f->c, "t1", point_type);
    return f;
}

/* Closes the store of tu_fx_open and removes its directory. */
static inline void tu_fx_close(tu_fx *f)
{
    sy_store_close(f->s);
    tu_rmtree(f->dir);
    free(f->dir);
    free(f);
}

/* A cmocka teardown for a state set to tu_fx_open's fixture. */
static inline int tu_fx_teardown(void **state)
{
    tu_fx_close(*state);
    return 0;
}

/* expr's code, run as the writer does: SY_OK or a holdout commits, anything else rolls back. */
#define TU_TX(f, expr)                                                                             \
    ({                                                                                             \
        assert_int_equal(sy_conn_begin((f)->c), SY_OK);                                            \
        int rc_ = (expr);                                                                          \
        if (rc_ == SY_OK || rc_ == SY_CAMPAIGN_HOLDOUT)                                            \
            assert_int_equal(sy_conn_commit((f)->c), SY_OK);                                       \
        else                                                                                       \
            assert_int_equal(sy_conn_rollback((f)->c), SY_OK);                                     \
        rc_;                                                                                       \
    })

/* The first column of sql's first row, $1 bound to a (unless NULL); -1 without a row. */
static inline int64_t tu_q1(tu_fx *f, const char *sql, const char *a)
{
    sy_stmt *st = sy_conn_prepare(f->c, sql);
    assert_non_null(st);
    if (a)
        sy_stmt_bind_text(st, 1, a);
    int rc = sy_stmt_step(st);
    int64_t v = rc == SY_ROW ? sy_stmt_i64(st, 0) : -1;
    sy_stmt_reset(st);
    return v;
}

/* The largest balance customer no of tenant has in any point type (0 without an account). */
static inline int64_t tu_balance(tu_fx *f, const char *tenant, const char *no)
{
    sy_stmt *st = sy_conn_prepare(f->c, "SELECT COALESCE(MAX(balance), 0) FROM point_accounts"
                                        " WHERE tenant_id = $1 AND customer_no = $2");
    assert_non_null(st);
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, no);
    assert_int_equal(sy_stmt_step(st), SY_ROW);
    int64_t v = sy_stmt_i64(st, 0);
    sy_stmt_reset(st);
    return v;
}

/* Earns t1's customer no amount sun points at now (as key_test, account test). */
static inline void tu_earn(tu_fx *f, const char *no, int64_t amount, int64_t now)
{
    sy_ledger_move m = {.tenant = "t1",
                        .customer_no = no,
                        .point_type = "sun",
                        .amount = amount,
                        .account = "test",
                        .operator_id = "key_test",
                        .now_ms = now};
    sy_ledger_result res;
    assert_int_equal(TU_TX(f, sy_ledger_earn(f->c, &m, &res)), SY_OK);
}

/* Creates supplier acme of tenant. */
static inline void tu_acme(sy_conn *c, const char *tenant)
{
    assert_int_equal(sy_benefit_supplier_create(c, tenant, "acme", "Acme", "", 0), SY_OK);
}

/* A coupon item of acme (5 yuan off, costs 3), stock as given, without limits or window. */
static inline sy_benefit_item tu_coupon_item(const char *code, int64_t stock)
{
    return (sy_benefit_item){.code = code,
                             .name = "5 yuan off",
                             .supplier = "acme",
                             .kind = SY_BENEFIT_COUPON,
                             .face_value = 500,
                             .cost_price = 300,
                             .params = "{}",
                             .stock = stock,
                             .limits = {SY_BENEFIT_UNSET, SY_BENEFIT_UNSET, SY_BENEFIT_UNSET},
                             .available_from = SY_BENEFIT_UNSET,
                             .available_until = SY_BENEFIT_UNSET,
                             .validity_days = SY_BENEFIT_UNSET,
                             .operator_id = "key_test",
                             .now_ms = 0};
}

/* Creates supplier acme and its tu_coupon_item(code, stock) for tenant. */
static inline void tu_acme_coupon(sy_conn *c, const char *tenant, const char *code, int64_t stock)
{
    tu_acme(c, tenant);
    sy_benefit_item it = tu_coupon_item(code, stock);
    assert_int_equal(sy_benefit_item_create(c, tenant, &it), SY_OK);
}

/* Fails unless the parse of input refused it (ok false) naming field want (it said msg). */
static inline void tu_refused(const char *input, bool ok, const char *field, const char *msg,
                              const char *want)
{
    if (ok)
        fail_msg("accepted %s", input);
    if (strcmp(field, want) != 0)
        fail_msg("%s: field %s (%s), wanted %s", input, field, msg, want);
}

/* A Dec. 2026 (Shanghai) campaign paying sun, unlimited, rules unless NULL; sy_campaign_free. */
static inline sy_campaign *tu_campaign_def(const char *id, sy_campaign_type t, const char *rules)
{
    sy_campaign *cp = calloc(1, sizeof *cp);
    assert_non_null(cp);
    snprintf(cp->id, sizeof cp->id, "%s", id);
    snprintf(cp->name, sizeof cp->name, "%s", id);
    cp->type = t;
    cp->starts_at = tu_at("2026-12-01T00:00:00+08:00");
    cp->ends_at = tu_at("2027-01-01T00:00:00+08:00");
    cp->open_from = cp->open_until = SY_CAMPAIGN_UNSET;
    cp->budget_points = cp->budget_cost = SY_CAMPAIGN_UNSET;
    cp->limit_day = cp->limit_week = cp->limit_total = SY_CAMPAIGN_UNSET;
    cp->makeup_cost = SY_CAMPAIGN_UNSET;
    snprintf(cp->point_type, sizeof cp->point_type, "sun");
    if (rules) {
        json_t *j = json_loads(rules, 0, NULL);
        if (!j)
            fail_msg("rules are not JSON: %s", rules);
        char field[96], msg[256];
        if (!sy_campaign_rules_parse(cp, j, field, sizeof field, msg, sizeof msg))
            fail_msg("rules %s: %s %s", rules, field, msg);
        json_decref(j);
    }
    return cp;
}

/* Creates campaign cp of tenant as key_maker on November 20, 2026: a draft. */
static inline void tu_campaign_create(tu_fx *f, const char *tenant, const sy_campaign *cp)
{
    sy_campaign_result res;
    int64_t t = tu_at("2026-11-20T00:00:00Z");
    assert_int_equal(TU_TX(f, sy_campaign_create(f->c, tenant, cp, "key_maker", t, &res)), SY_OK);
}

/* Submits (key_maker) and approves (key_checker) draft id of tenant on November 20, 2026. */
static inline void tu_campaign_approve(tu_fx *f, const char *tenant, const char *id)
{
    sy_campaign_result res;
    int64_t t = tu_at("2026-11-20T00:00:00Z");
    assert_int_equal(TU_TX(f, sy_campaign_transition(f->c, tenant, id, SY_CACT_SUBMIT, "key_maker",
                                                     "", t, &res)),
                     SY_OK);
    assert_int_equal(TU_TX(f, sy_campaign_transition(f->c, tenant, id, SY_CACT_APPROVE,
                                                     "key_checker", "", t, &res)),
                     SY_OK);
}

/* Creates and approves cp (tu_campaign_create, tu_campaign_approve), then frees it. */
static inline void tu_campaign_launch(tu_fx *f, const char *tenant, sy_campaign *cp)
{
    tu_campaign_create(f, tenant, cp);
    tu_campaign_approve(f, tenant, cp->id);
    sy_campaign_free(cp);
}

/* Customer no of tenant acting at now through key_app, in the audience. */
static inline sy_campaign_who tu_who(const char *tenant, const char *no, int64_t now)
{
    return (sy_campaign_who){.tenant = tenant,
                             .customer_no = no,
                             .in_audience = true,
                             .operator_id = "key_app",
                             .now_ms = now};
}

#endif

/* test_abuse.c — anti-abuse (src/abuse.c): the rules and the fields their
 * errors name, rate limits over sliding windows (every attempt counts),
 * velocity rules (accepted participations count), scopes kept apart, the
 * client address behind trusted proxies only, and the blocklist with
 * expiry in the store. */
#include "unit/store_fixture.h"

#include "abuse.h"
#include "tenant.h"
#include "util.h"

#include <sodium.h>

static sy_abuse_rules rules_of(const char *json)
{
    json_t *j = json_loads(json, 0, NULL);
    assert_non_null(j);
    sy_abuse_rules r;
    char f[96], m[256];
    if (!sy_abuse_rules_parse(j, &r, f, sizeof f, m, sizeof m))
        fail_msg("%s: %s %s", json, f, m);
    json_decref(j);
    return r;
}

static void expect_bad(const char *json, const char *field)
{
    json_t *j = json_loads(json, 0, NULL);
    assert_non_null(j);
    sy_abuse_rules r;
    char f[96], m[256];
    if (sy_abuse_rules_parse(j, &r, f, sizeof f, m, sizeof m))
        fail_msg("accepted %s", json);
    json_decref(j);
    if (strcmp(f, field) != 0)
        fail_msg("%s: field %s, expected %s (%s)", json, f, field, m);
}

static void test_rules_parse(void **state)
{
    sy_abuse_rules r =
        rules_of("{\"rate_limits\": [{\"scope\": \"ip\", \"max\": 5, \"per_seconds\": 60}],"
                 " \"velocity\": [{\"scope\": \"device\", \"action\": \"draw\", \"max\": 3, "
                 "\"minutes\": 10}],"
                 " \"trusted_proxies\": [\"10.0.0.0/8\", \"::1\"]}");
    assert_int_equal(r.n, 2);
    assert_int_equal(r.rules[0].window_ms, 60000);
    assert_int_equal(r.rules[0].action, SY_ABUSE_ANY);
    assert_true(r.rules[1].velocity);
    assert_int_equal(r.rules[1].window_ms, 600000);
    assert_int_equal(r.nproxies, 2);
    /* the JSON round-trips */
    json_t *j = sy_abuse_rules_json(&r);
    char *txt = json_dumps(j, JSON_COMPACT);
    sy_abuse_rules r2 = rules_of(txt);
    assert_int_equal(r2.n, 2);
    assert_int_equal(r2.nproxies, 2);
    free(txt);
    json_decref(j);
    expect_bad("[]", "");
    expect_bad("{\"bogus\": 1}", "/bogus");
    expect_bad("{\"rate_limits\": {}}", "/rate_limits");
    expect_bad("{\"rate_limits\": [{\"scope\": \"phone\", \"max\": 1, \"per_seconds\": 1}]}",
               "/rate_limits/0/scope");
    expect_bad("{\"rate_limits\": [{\"scope\": \"ip\", \"max\": 0, \"per_seconds\": 1}]}",
               "/rate_limits/0/max");
    expect_bad("{\"rate_limits\": [{\"scope\": \"ip\", \"max\": 1}]}",
               "/rate_limits/0/per_seconds");
    expect_bad("{\"velocity\": [{\"scope\": \"ip\", \"max\": 1, \"per_seconds\": 1}]}",
               "/velocity/0/per_seconds");
    expect_bad(
        "{\"velocity\": [{\"scope\": \"ip\", \"action\": \"x\", \"max\": 1, \"minutes\": 1}]}",
        "/velocity/0/action");
    expect_bad("{\"trusted_proxies\": [\"10.0.0.0/33\"]}", "/trusted_proxies/0");
    expect_bad("{\"trusted_proxies\": [\"proxy.local\"]}", "/trusted_proxies/0");
}

static void test_rate_limit_window(void **state)
{
    sy_abuse_reset();
    sy_abuse_rules r =
        rules_of("{\"rate_limits\": [{\"scope\": \"customer\", \"action\": \"draw\", \"max\": 3,"
                 " \"per_seconds\": 60}]}");
    sy_abuse_subject s = {"t1", "C1", "dev", "10.0.0.1"};
    const sy_abuse_rule *hit;
    int64_t retry, t0 = 1800000000000LL; /* a window boundary (a multiple of 60 s) */
    for (int i = 0; i < 3; i++)
        assert_int_equal(sy_abuse_limit(&r, SY_ABUSE_DRAW, &s, t0 + i * 1000, &hit, &retry),
                         SY_ABUSE_OK);
    assert_int_equal(sy_abuse_limit(&r, SY_ABUSE_DRAW, &s, t0 + 5000, &hit, &retry),
                     SY_ABUSE_RATE_LIMITED);
    assert_ptr_equal(hit, &r.rules[0]);
    assert_true(retry > 0 && retry <= 60000);
    /* check-ins are not this rule's; another customer is counted apart */
    assert_int_equal(sy_abuse_limit(&r, SY_ABUSE_CHECKIN, &s, t0 + 5000, &hit, &retry),
                     SY_ABUSE_OK);
    sy_abuse_subject s2 = {"t1", "C2", "dev", "10.0.0.1"};
    assert_int_equal(sy_abuse_limit(&r, SY_ABUSE_DRAW, &s2, t0 + 5000, &hit, &retry), SY_ABUSE_OK);
    /* another tenant too */
    sy_abuse_subject s3 = {"t2", "C1", "dev", "10.0.0.1"};
    assert_int_equal(sy_abuse_limit(&r, SY_ABUSE_DRAW, &s3, t0 + 5000, &hit, &retry), SY_ABUSE_OK);
    /* the window slides: 4 attempts in the first minute weigh 4 * (1 - 0.5) = 2
     * half-way through the next one, leaving room for one */
    assert_int_equal(sy_abuse_limit(&r, SY_ABUSE_DRAW, &s, t0 + 90000, &hit, &retry), SY_ABUSE_OK);
    assert_int_equal(sy_abuse_limit(&r, SY_ABUSE_DRAW, &s, t0 + 90000, &hit, &retry),
                     SY_ABUSE_RATE_LIMITED);
    /* two windows later everything is forgotten */
    for (int i = 0; i < 3; i++)
        assert_int_equal(sy_abuse_limit(&r, SY_ABUSE_DRAW, &s, t0 + 300000, &hit, &retry),
                         SY_ABUSE_OK);
}

static void test_velocity_counts_accepted(void **state)
{
    sy_abuse_reset();
    sy_abuse_rules r = rules_of("{\"velocity\": [{\"scope\": \"device\", \"action\": \"draw\","
                                " \"max\": 2, \"minutes\": 10}]}");
    sy_abuse_subject a = {"t1", "C1", "phone-1", "10.0.0.1"};
    sy_abuse_subject b = {"t1", "C2", "phone-1", "10.0.0.2"}; /* same device, other customer */
    sy_abuse_subject c = {"t1", "C3", "phone-2", "10.0.0.3"};
    sy_abuse_subject nodev = {"t1", "C4", NULL, "10.0.0.4"};
    const sy_abuse_rule *hit;
    int64_t retry, t0 = 1800000000000LL;
    /* attempts alone do not count */
    for (int i = 0; i < 5; i++)
        assert_int_equal(sy_abuse_limit(&r, SY_ABUSE_DRAW, &a, t0, &hit, &retry), SY_ABUSE_OK);
    sy_abuse_note(&r, SY_ABUSE_DRAW, &a, t0);
    sy_abuse_note(&r, SY_ABUSE_DRAW, &b, t0 + 1000);
    assert_int_equal(sy_abuse_limit(&r, SY_ABUSE_DRAW, &a, t0 + 2000, &hit, &retry),
                     SY_ABUSE_VELOCITY);
    assert_int_equal(sy_abuse_limit(&r, SY_ABUSE_DRAW, &b, t0 + 2000, &hit, &retry),
                     SY_ABUSE_VELOCITY);
    assert_int_equal(hit->scope, SY_ABUSE_DEVICE);
    assert_int_equal(sy_abuse_limit(&r, SY_ABUSE_DRAW, &c, t0 + 2000, &hit, &retry), SY_ABUSE_OK);
    /* without a device id the rule has nothing to count */
    sy_abuse_note(&r, SY_ABUSE_DRAW, &nodev, t0);
    sy_abuse_note(&r, SY_ABUSE_DRAW, &nodev, t0);
    assert_int_equal(sy_abuse_limit(&r, SY_ABUSE_DRAW, &nodev, t0, &hit, &retry), SY_ABUSE_OK);
    /* 20 minutes later the device may draw again */
    assert_int_equal(sy_abuse_limit(&r, SY_ABUSE_DRAW, &a, t0 + 1200000, &hit, &retry),
                     SY_ABUSE_OK);
}

static void test_client_ip(void **state)
{
    sy_abuse_rules none = rules_of("{}");
    sy_abuse_rules r = rules_of("{\"trusted_proxies\": [\"10.0.0.0/8\", \"2001:db8::/32\"]}");
    char ip[64];
    /* not configured: the peer, whatever the header says */
    sy_abuse_client_ip(&none, "10.1.2.3", "1.2.3.4", ip);
    assert_string_equal(ip, "10.1.2.3");
    /* the peer is no trusted proxy: the header is ignored */
    sy_abuse_client_ip(&r, "192.0.2.9", "1.2.3.4", ip);
    assert_string_equal(ip, "192.0.2.9");
    /* behind a trusted proxy: the right-most address that is not one */
    sy_abuse_client_ip(&r, "10.1.2.3", "6.6.6.6, 1.2.3.4", ip);
    assert_string_equal(ip, "1.2.3.4");
    sy_abuse_client_ip(&r, "10.1.2.3", "6.6.6.6, 1.2.3.4, 10.9.9.9", ip);
    assert_string_equal(ip, "1.2.3.4");
    sy_abuse_client_ip(&r, "2001:db8::1", "2001:0db8:0:0::7, 2001:4860::8888", ip);
    assert_string_equal(ip, "2001:4860::8888");
    /* junk in the header: the last address that could be trusted */
    sy_abuse_client_ip(&r, "10.1.2.3", "1.2.3.4, not-an-ip", ip);
    assert_string_equal(ip, "10.1.2.3");
    sy_abuse_client_ip(&r, "10.1.2.3", NULL, ip);
    assert_string_equal(ip, "10.1.2.3");
}

static void test_blocklist(void **state)
{
    assert_true(sodium_init() >= 0);
    sy_log_set_level(SY_LOG_ERROR);
    char *dir = tu_tempdir();
    sy_store *s = tu_store_open(dir, true);
    sy_conn *c = sy_store_write_conn(s);
    assert_int_equal(sy_tenant_create(c, "t1", "T1", "Asia/Shanghai", 0), SY_OK);
    assert_int_equal(sy_tenant_create(c, "t2", "T2", "UTC", 0), SY_OK);
    assert_int_equal(
        sy_conn_exec(c, "INSERT INTO abuse_blocklist (tenant_id, kind, value, reason, expires_at,"
                        " created_by, created_at) VALUES ('t1', 'device', 'emu-1', 'farm', NULL,"
                        " 'k', 0), ('t1', 'ip', '192.0.2.7', '', 2000, 'k', 0), ('t2',"
                        " 'customer', 'C1', '', NULL, 'k', 0)"),
        SY_OK);
    bool blocked;
    char kind[16];
    sy_abuse_subject a = {"t1", "C1", "emu-1", "10.0.0.1"};
    assert_int_equal(sy_abuse_blocked(c, &a, 1000, &blocked, kind), SY_OK);
    assert_true(blocked);
    assert_string_equal(kind, "device");
    sy_abuse_subject b = {"t1", "C1", NULL, "192.0.2.7"};
    assert_int_equal(sy_abuse_blocked(c, &b, 1000, &blocked, kind), SY_OK);
    assert_true(blocked);
    assert_string_equal(kind, "ip");
    /* the entry expired */
    assert_int_equal(sy_abuse_blocked(c, &b, 2000, &blocked, kind), SY_OK);
    assert_false(blocked);
    /* t2's customer C1 is not t1's */
    sy_abuse_subject d = {"t1", "C1", NULL, NULL};
    assert_int_equal(sy_abuse_blocked(c, &d, 0, &blocked, kind), SY_OK);
    assert_false(blocked);
    d.tenant = "t2";
    assert_int_equal(sy_abuse_blocked(c, &d, 0, &blocked, kind), SY_OK);
    assert_true(blocked);
    assert_string_equal(kind, "customer");
    /* the rules are stored and read back */
    sy_abuse_rules r = rules_of("{\"rate_limits\": [{\"scope\": \"ip\", \"max\": 5,"
                                " \"per_seconds\": 60}]}"),
                   back;
    assert_int_equal(sy_abuse_rules_store(c, "t1", &r, "k", 0), SY_OK);
    assert_int_equal(sy_abuse_rules_load(c, "t1", &back), SY_OK);
    assert_int_equal(back.n, 1);
    assert_int_equal(sy_abuse_rules_load(c, "t2", &back), SY_OK);
    assert_int_equal(back.n, 0);
    sy_store_close(s);
    tu_rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rules_parse),
        cmocka_unit_test(test_rate_limit_window),
        cmocka_unit_test(test_velocity_counts_accepted),
        cmocka_unit_test(test_client_ip),
        cmocka_unit_test(test_blocklist),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

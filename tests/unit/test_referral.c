/* test_referral.c — referral fission's rules (src/referral.c) on a
 * temporary store with an injected clock: the rules' validation naming
 * fields; invite codes (made on demand, stable, unguessable, one per
 * customer); binding (unknown code, self-invite, the first code wins, a
 * customer from before the start, a merged invitee); the qualifying event
 * (inside the window pays inviter and invitee once, within the budget;
 * before the binding, of another name or again: nothing; past the window:
 * expired); the cap per inviter; the budget running out; and the fraud
 * rules (same device, IP burst, phone-prefix burst) holding rewards for
 * review, approve by another key than the author paying them, reject
 * refusing them. */
#include "unit/store_fixture.h"

#include "campaign.h"
#include "ledger.h"
#include "referral.h"
#include "tenant.h"
#include "util.h"

#define MIN 60000LL
#define DAY 86400000LL

/* t1 (Shanghai) with sun, C1..C20 from before December, N1..N20 new in December. */
static int setup(void **state)
{
    tu_fx *f = tu_fx_open(20, "sun");
    for (int i = 0; i < 20; i++) {
        char no[16];
        snprintf(no, sizeof no, "N%d", i + 1);
        tu_customer_add(f->c, "t1", no, 100 + i, tu_at("2026-12-02T00:00:00+08:00"));
    }
    *state = f;
    return 0;
}

static const char *status_of(tu_fx *f, const char *invitee)
{
    static char s[16];
    sy_stmt *st = sy_conn_prepare(f->c, "SELECT status FROM referral_bindings WHERE invitee = $1");
    assert_non_null(st);
    sy_stmt_bind_text(st, 1, invitee);
    snprintf(s, sizeof s, "%s", sy_stmt_step(st) == SY_ROW ? sy_stmt_text(st, 0) : "-");
    sy_stmt_reset(st);
    return s;
}

/* Creates and approves a referral campaign (December 2026, Shanghai). */
static void launch(tu_fx *f, const char *id, const char *section, int64_t budget_points)
{
    char body[2048];
    snprintf(body, sizeof body, "{\"referral\": %s}", section);
    sy_campaign *cp = tu_campaign_def(id, SY_CAMPAIGN_REFERRAL, body);
    cp->budget_points = budget_points;
    tu_campaign_launch(f, "t1", cp);
}

static int invite(tu_fx *f, const char *id, const char *no, const char *device, int64_t now,
                  sy_referral_out *o)
{
    sy_campaign_who w = tu_who("t1", no, now);
    return TU_TX(f, sy_referral_invite(f->c, &w, id, device, o));
}

static int bind(tu_fx *f, const char *id, const char *code, const char *invitee, const char *device,
                const char *ip, const char *phone, int64_t now, sy_referral_out *o)
{
    sy_campaign_who w = tu_who("t1", invitee, now);
    sy_referral_bind b = {.code = code, .device_id = device, .ip = ip, .phone = phone};
    return TU_TX(f, sy_referral_bind_invitee(f->c, &w, id, &b, o));
}

static int event(tu_fx *f, const char *id, const char *no, const char *name, int64_t ts,
                 sy_referral_out *o)
{
    sy_campaign *cp;
    assert_int_equal(sy_campaign_load(f->c, "t1", id, &cp), SY_OK);
    sy_referral_rules rules;
    char field[96], msg[256];
    assert_true(sy_referral_rules_parse(cp->extra, cp->point_type, &rules, field, sizeof field, msg,
                                        sizeof msg));
    sy_campaign_who w = tu_who("t1", no, ts);
    int rc = TU_TX(f, sy_referral_event(f->c, cp, &rules, &w, name, "ev", ts, o));
    sy_campaign_free(cp);
    return rc;
}

static const char k_basic[] =
    "{\"qualifying_events\": [\"account_opened\", \"bind_card\"], \"window_days\": 7,"
    " \"inviter_reward\": {\"points\": 100}, \"invitee_reward\": {\"points\": 50}}";

/* ---- the rules ---- */

static void expect_bad(const char *section, const char *want_field)
{
    sy_referral_rules r;
    char field[96] = "", msg[256] = "";
    json_t *j = section ? json_loads(section, 0, NULL) : NULL;
    if (section)
        assert_non_null(j);
    bool ok = sy_referral_rules_parse(j, "sun", &r, field, sizeof field, msg, sizeof msg);
    json_decref(j);
    tu_refused(section, ok, field, msg, want_field);
}

static void test_rules_validation(void **state)
{
    (void)state;
    expect_bad(NULL, "/referral");
    expect_bad("{\"inviter_reward\": {\"points\": 1}}", "/referral/qualifying_events");
    expect_bad("{\"qualifying_events\": [\"Bad Name\"], \"inviter_reward\": {\"points\": 1}}",
               "/referral/qualifying_events/0");
    expect_bad("{\"qualifying_events\": [\"a\"]}", "/referral/inviter_reward");
    expect_bad("{\"qualifying_events\": [\"a\"], \"inviter_reward\": {\"points\": 0}}",
               "/referral/inviter_reward/points");
    expect_bad("{\"qualifying_events\": [\"a\"], \"invitee_reward\": {\"points\": 1},"
               " \"window_days\": 0}",
               "/referral/window_days");
    expect_bad("{\"qualifying_events\": [\"a\"], \"invitee_reward\": {\"points\": 1},"
               " \"fraud\": {\"max_per_ip\": 0}}",
               "/referral/fraud/max_per_ip");
    expect_bad("{\"qualifying_events\": [\"a\"], \"invitee_reward\": {\"points\": 1},"
               " \"fraud\": {\"nope\": 1}}",
               "/referral/fraud/nope");
    expect_bad("{\"qualifying_events\": [\"a\"], \"invitee_reward\": {\"points\": 1},"
               " \"extra\": 1}",
               "/referral/extra");
    expect_bad("{\"qualifying_events\": [\"a\"], \"invitee_reward\": {\"points\": 1},"
               " \"hold_days\": 0}",
               "/referral/hold_days");
    expect_bad("{\"qualifying_events\": [\"a\"], \"invitee_reward\": {\"points\": 1},"
               " \"hold_days\": 366}",
               "/referral/hold_days");
    sy_referral_rules r;
    char field[96], msg[256];
    json_t *j = json_loads(k_basic, 0, NULL);
    assert_true(sy_referral_rules_parse(j, "sun", &r, field, sizeof field, msg, sizeof msg));
    json_decref(j);
    assert_int_equal(r.nevents, 2);
    assert_int_equal(r.window_days, 7);
    assert_int_equal(r.inviter.points, 100);
    assert_string_equal(r.invitee.point_type, "sun");
    assert_true(r.same_device);        /* on by default */
    assert_int_equal(r.hold_days, 14); /* the default review deadline */
    char p[16];
    /* the prefix of the number, not of how it was written (+86, 0086, none) */
    assert_true(sy_referral_phone_prefix("+86 138-0013-8000", 7, p, sizeof p));
    assert_string_equal(p, "1380013");
    assert_true(sy_referral_phone_prefix("0086 13800138000", 7, p, sizeof p));
    assert_string_equal(p, "1380013");
    assert_true(sy_referral_phone_prefix("(138) 0013-8000", 7, p, sizeof p));
    assert_string_equal(p, "1380013");
    assert_false(sy_referral_phone_prefix("123", 7, p, sizeof p));
    assert_false(sy_referral_phone_prefix("call 13800138000", 7, p, sizeof p));
}

/* ---- invite codes ---- */

static void test_invite_codes(void **state)
{
    tu_fx *f = *state;
    launch(f, "inv", k_basic, SY_CAMPAIGN_UNSET);
    int64_t now = tu_at("2026-12-05T10:00:00+08:00");
    sy_referral_out a, b, c2;
    assert_int_equal(invite(f, "inv", "C1", "dev-1", now, &a), SY_OK);
    assert_true(a.created);
    assert_int_equal(strlen(a.code), SY_REFERRAL_CODE_LEN);
    for (const char *p = a.code; *p; p++)
        assert_non_null(strchr("0123456789ABCDEFGHJKMNPQRSTVWXYZ", *p));
    assert_int_equal(invite(f, "inv", "C1", NULL, now + DAY, &b), SY_OK);
    assert_false(b.created);
    assert_string_equal(a.code, b.code); /* stable */
    assert_int_equal(invite(f, "inv", "C2", NULL, now, &c2), SY_OK);
    assert_string_not_equal(a.code, c2.code);
    /* not running: before the start, and a campaign of another type */
    assert_int_equal(invite(f, "inv", "C3", NULL, tu_at("2026-11-30T10:00:00+08:00"), &b),
                     SY_CAMPAIGN_NOT_RUNNING);
    assert_int_equal(invite(f, "inv", "NOPE", NULL, now, &b), SY_CAMPAIGN_NO_CUSTOMER);
    assert_int_equal(tu_q1(f, "SELECT COUNT(*) FROM referral_codes WHERE tenant_id = $1", "t1"), 2);
}

/* ---- binding ---- */

static void test_binding_rules(void **state)
{
    tu_fx *f = *state;
    launch(f, "b1", k_basic, SY_CAMPAIGN_UNSET);
    launch(f, "newonly",
           "{\"qualifying_events\": [\"account_opened\"], \"invitee_reward\": {\"points\": 5},"
           " \"new_customers_only\": true}",
           SY_CAMPAIGN_UNSET);
    int64_t now = tu_at("2026-12-05T10:00:00+08:00");
    sy_referral_out o, c1, c2;
    assert_int_equal(invite(f, "b1", "C1", NULL, now, &c1), SY_OK);
    assert_int_equal(invite(f, "b1", "C2", NULL, now, &c2), SY_OK);
    assert_int_equal(bind(f, "b1", "ZZZZZZZZZZ", "C3", NULL, NULL, NULL, now, &o),
                     SY_REFERRAL_UNKNOWN_CODE);
    assert_int_equal(bind(f, "b1", c1.code, "C1", NULL, NULL, NULL, now, &o), SY_REFERRAL_SELF);
    assert_int_equal(bind(f, "b1", c1.code, "NOPE", NULL, NULL, NULL, now, &o),
                     SY_CAMPAIGN_NO_CUSTOMER);
    assert_int_equal(bind(f, "b1", c1.code, "C3", NULL, NULL, NULL, now, &o), SY_OK);
    assert_string_equal(o.inviter, "C1");
    assert_string_equal(o.status, "bound");
    assert_string_equal(o.flags, "");
    assert_int_equal(o.qualify_by, now + 7 * DAY);
    /* the first valid code wins */
    assert_int_equal(bind(f, "b1", c2.code, "C3", NULL, NULL, NULL, now, &o),
                     SY_REFERRAL_ALREADY_BOUND);
    assert_string_equal(o.inviter, "C1");
    /* a code of another campaign is unknown here */
    assert_int_equal(bind(f, "newonly", c1.code, "N1", NULL, NULL, NULL, now, &o),
                     SY_REFERRAL_UNKNOWN_CODE);
    /* new customers only: C4 was a customer before the start, N1 is new */
    sy_referral_out n;
    assert_int_equal(invite(f, "newonly", "C1", NULL, now, &n), SY_OK);
    assert_int_equal(bind(f, "newonly", n.code, "C4", NULL, NULL, NULL, now, &o),
                     SY_REFERRAL_EXISTING_CUSTOMER);
    assert_int_equal(bind(f, "newonly", n.code, "N1", NULL, NULL, NULL, now, &o), SY_OK);
    /* nothing was written by the refusals */
    assert_int_equal(tu_q1(f, "SELECT COUNT(*) FROM referral_bindings WHERE tenant_id = $1", "t1"),
                     2);
    /* after the end: not running */
    assert_int_equal(
        bind(f, "b1", c1.code, "C5", NULL, NULL, NULL, tu_at("2027-01-02T00:00:00+08:00"), &o),
        SY_CAMPAIGN_NOT_RUNNING);
}

/* ---- the qualifying event ---- */

static void test_qualifying_event_pays_once(void **state)
{
    tu_fx *f = *state;
    launch(f, "q", k_basic, SY_CAMPAIGN_UNSET);
    int64_t now = tu_at("2026-12-05T10:00:00+08:00");
    sy_referral_out c, o;
    assert_int_equal(invite(f, "q", "C1", NULL, now, &c), SY_OK);
    assert_int_equal(bind(f, "q", c.code, "C2", NULL, NULL, NULL, now, &o), SY_OK);
    assert_int_equal(bind(f, "q", c.code, "C3", NULL, NULL, NULL, now, &o), SY_OK);
    /* another event name, or an event from before the binding: nothing */
    assert_int_equal(event(f, "q", "C2", "login", now + MIN, &o), SY_REFERRAL_NO_BINDING);
    assert_int_equal(event(f, "q", "C2", "account_opened", now - DAY, &o), SY_REFERRAL_NO_BINDING);
    assert_int_equal(event(f, "q", "C9", "account_opened", now + MIN, &o), SY_REFERRAL_NO_BINDING);
    /* inside the window: both paid */
    assert_int_equal(event(f, "q", "C2", "bind_card", now + 2 * DAY, &o), SY_OK);
    assert_string_equal(o.status, "rewarded");
    assert_int_equal(o.inviter_paid.reward.points, 100);
    assert_int_equal(o.invitee_paid.reward.points, 50);
    assert_true(o.inviter_paid.ledger_entry[0] && o.invitee_paid.ledger_entry[0]);
    assert_int_equal(tu_balance(f, "t1", "C1"), 100);
    assert_int_equal(tu_balance(f, "t1", "C2"), 50);
    /* again: the binding is no longer waiting */
    assert_int_equal(event(f, "q", "C2", "account_opened", now + 3 * DAY, &o),
                     SY_REFERRAL_NO_BINDING);
    assert_int_equal(tu_balance(f, "t1", "C2"), 50);
    /* past the window: expired, nothing paid */
    assert_int_equal(event(f, "q", "C3", "account_opened", now + 8 * DAY, &o), SY_OK);
    assert_string_equal(o.status, "expired");
    assert_string_equal(status_of(f, "C3"), "expired");
    assert_int_equal(tu_balance(f, "t1", "C3"), 0);
    assert_int_equal(tu_balance(f, "t1", "C1"), 100);
    assert_int_equal(tu_q1(f, "SELECT spent_points FROM campaigns WHERE id = $1", "q"), 150);
    assert_int_equal(tu_q1(f, "SELECT COUNT(*) FROM referral_rewards WHERE campaign_id = $1", "q"),
                     2);
}

static void test_cap_per_inviter_and_budget(void **state)
{
    tu_fx *f = *state;
    launch(f, "cap",
           "{\"qualifying_events\": [\"account_opened\"], \"inviter_reward\": {\"points\": 100},"
           " \"invitee_reward\": {\"points\": 50}, \"max_per_inviter\": 1}",
           200);
    int64_t now = tu_at("2026-12-05T10:00:00+08:00");
    sy_referral_out c, o;
    assert_int_equal(invite(f, "cap", "C1", NULL, now, &c), SY_OK);
    for (int i = 2; i <= 4; i++) {
        char no[16];
        snprintf(no, sizeof no, "C%d", i);
        assert_int_equal(bind(f, "cap", c.code, no, NULL, NULL, NULL, now, &o), SY_OK);
    }
    assert_int_equal(event(f, "cap", "C2", "account_opened", now + MIN, &o), SY_OK);
    assert_string_equal(o.status, "rewarded");
    /* the inviter's cap: the invitee is paid, the inviter not */
    assert_int_equal(event(f, "cap", "C3", "account_opened", now + MIN, &o), SY_OK);
    assert_string_equal(o.status, "rewarded");
    assert_int_equal(o.inviter_paid.reward.points, 0);
    assert_int_equal(o.invitee_paid.reward.points, 50);
    assert_non_null(strstr(o.refusal, "inviter-cap-reached"));
    assert_int_equal(tu_balance(f, "t1", "C1"), 100);
    /* the budget (200) is spent: 100 + 50 + 50; the next is refused */
    assert_int_equal(event(f, "cap", "C4", "account_opened", now + MIN, &o), SY_OK);
    assert_string_equal(o.status, "refused");
    assert_non_null(strstr(o.refusal, "invitee:budget-exhausted"));
    assert_int_equal(tu_balance(f, "t1", "C4"), 0);
    assert_int_equal(tu_q1(f, "SELECT spent_points FROM campaigns WHERE id = $1", "cap"), 200);
    assert_string_equal(status_of(f, "C4"), "refused");
}

/* ---- fraud holds and review ---- */

static void test_fraud_holds_and_review(void **state)
{
    tu_fx *f = *state;
    launch(f, "fr",
           "{\"qualifying_events\": [\"account_opened\"], \"inviter_reward\": {\"points\": 100},"
           " \"invitee_reward\": {\"points\": 50}, \"fraud\": {\"window_minutes\": 60,"
           " \"max_per_ip\": 2, \"max_per_phone_prefix\": 2}}",
           SY_CAMPAIGN_UNSET);
    int64_t now = tu_at("2026-12-05T10:00:00+08:00");
    sy_referral_out c, o;
    assert_int_equal(invite(f, "fr", "C1", "dev-inviter", now, &c), SY_OK);
    /* the same device as the inviter's */
    assert_int_equal(bind(f, "fr", c.code, "C2", "dev-inviter", NULL, NULL, now, &o), SY_OK);
    assert_string_equal(o.flags, "same-device");
    /* a burst from one IP: the third within the hour is flagged */
    assert_int_equal(bind(f, "fr", c.code, "C3", "d3", "10.0.0.9", NULL, now, &o), SY_OK);
    assert_string_equal(o.flags, "");
    assert_int_equal(bind(f, "fr", c.code, "C4", "d4", "10.0.0.9", NULL, now + MIN, &o), SY_OK);
    assert_string_equal(o.flags, "");
    assert_int_equal(bind(f, "fr", c.code, "C5", "d5", "10.0.0.9", NULL, now + 2 * MIN, &o), SY_OK);
    assert_string_equal(o.flags, "ip-burst");
    /* an hour later the IP is quiet again */
    assert_int_equal(bind(f, "fr", c.code, "C6", "d6", "10.0.0.9", NULL, now + 90 * MIN, &o),
                     SY_OK);
    assert_string_equal(o.flags, "");
    /* a burst from one phone prefix (7 digits) */
    assert_int_equal(bind(f, "fr", c.code, "C7", NULL, NULL, "13800138001", now, &o), SY_OK);
    assert_int_equal(bind(f, "fr", c.code, "C8", NULL, NULL, "13800138002", now, &o), SY_OK);
    assert_int_equal(bind(f, "fr", c.code, "C9", NULL, NULL, "1380013 8003", now, &o), SY_OK);
    assert_string_equal(o.flags, "phone-prefix-burst");
    /* one device binding a second invitee, hours later (an account farm) */
    assert_int_equal(bind(f, "fr", c.code, "C10", "farm-1", NULL, NULL, now, &o), SY_OK);
    assert_string_equal(o.flags, "");
    assert_int_equal(bind(f, "fr", c.code, "C11", "farm-1", NULL, NULL, now + 5 * 60 * MIN, &o),
                     SY_OK);
    assert_string_equal(o.flags, "same-device");
    /* qualifying: flagged bindings are held, nothing paid */
    assert_int_equal(event(f, "fr", "C2", "account_opened", now + 3 * 60 * MIN, &o), SY_OK);
    assert_string_equal(o.status, "held");
    assert_int_equal(event(f, "fr", "C5", "account_opened", now + 3 * 60 * MIN, &o), SY_OK);
    assert_string_equal(o.status, "held");
    assert_int_equal(event(f, "fr", "C3", "account_opened", now + 3 * 60 * MIN, &o), SY_OK);
    assert_string_equal(o.status, "rewarded");
    assert_int_equal(tu_balance(f, "t1", "C2"), 0);
    assert_int_equal(tu_balance(f, "t1", "C1"), 100);
    /* review: not by the campaign's author; only held ones */
    sy_campaign_who maker = tu_who("t1", "C2", now + DAY), checker = tu_who("t1", "C2", now + DAY);
    maker.operator_id = "key_maker";
    checker.operator_id = "key_checker";
    assert_int_equal(TU_TX(f, sy_referral_review(f->c, &maker, "fr", "C2", true, NULL, &o)),
                     SY_CAMPAIGN_MAKER_CHECKER);
    assert_int_equal(TU_TX(f, sy_referral_review(f->c, &checker, "fr", "C3", true, NULL, &o)),
                     SY_REFERRAL_NOT_HELD);
    assert_string_equal(o.status, "rewarded");
    assert_int_equal(TU_TX(f, sy_referral_review(f->c, &checker, "fr", "C99", true, NULL, &o)),
                     SY_REFERRAL_NO_BINDING);
    assert_int_equal(TU_TX(f, sy_referral_review(f->c, &checker, "fr", "C2", true, "ok", &o)),
                     SY_OK);
    assert_string_equal(o.status, "rewarded");
    assert_int_equal(tu_balance(f, "t1", "C2"), 50);
    assert_int_equal(tu_balance(f, "t1", "C1"), 200);
    assert_int_equal(TU_TX(f, sy_referral_review(f->c, &checker, "fr", "C5", false, "farm", &o)),
                     SY_OK);
    assert_string_equal(o.status, "rejected");
    assert_string_equal(status_of(f, "C5"), "rejected");
    assert_int_equal(tu_balance(f, "t1", "C5"), 0);
    assert_int_equal(TU_TX(f, sy_referral_review(f->c, &checker, "fr", "C5", true, NULL, &o)),
                     SY_REFERRAL_NOT_HELD);
    assert_int_equal(
        tu_q1(f, "SELECT COUNT(*) FROM referral_bindings WHERE reviewed_by = $1", "key_checker"),
        2);
}

/* Held rewards expire unpaid after hold_days (14 by default): not a
 * moment before, through sy_referral_expire_held (the maintenance loop's
 * and the endpoint's) over every referral campaign, in batches; a review
 * after the deadline expires the binding instead of paying it. */
static void test_held_rewards_expire(void **state)
{
    tu_fx *f = *state;
    launch(f, "h14",
           "{\"qualifying_events\": [\"account_opened\"], \"inviter_reward\": {\"points\": 100},"
           " \"invitee_reward\": {\"points\": 50}}",
           SY_CAMPAIGN_UNSET);
    launch(f, "h3",
           "{\"qualifying_events\": [\"account_opened\"], \"invitee_reward\": {\"points\": 50},"
           " \"hold_days\": 3}",
           SY_CAMPAIGN_UNSET);
    int64_t now = tu_at("2026-12-05T10:00:00+08:00"), held = now + 60 * MIN;
    sy_referral_out c14, c3, o;
    assert_int_equal(invite(f, "h14", "C1", "dev-1", now, &c14), SY_OK);
    assert_int_equal(invite(f, "h3", "C1", "dev-1", now, &c3), SY_OK);
    const char *inv14[] = {"C2", "C3", "C4"}, *inv3[] = {"C5", "C6"};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(bind(f, "h14", c14.code, inv14[i], "dev-1", NULL, NULL, now, &o), SY_OK);
        assert_int_equal(event(f, "h14", inv14[i], "account_opened", held, &o), SY_OK);
        assert_string_equal(o.status, "held");
    }
    for (int i = 0; i < 2; i++) {
        assert_int_equal(bind(f, "h3", c3.code, inv3[i], "dev-1", NULL, NULL, now, &o), SY_OK);
        assert_int_equal(event(f, "h3", inv3[i], "account_opened", held, &o), SY_OK);
    }
    assert_int_equal(tu_q1(f,
                           "SELECT review_by - qualified_at FROM referral_bindings WHERE invitee"
                           " = $1",
                           "C2"),
                     14 * DAY);
    int64_t n;
    bool more;
    /* just before the 3-day deadline: nothing; at it: h3's two */
    assert_int_equal(TU_TX(f, sy_referral_expire_held(f->c, "t1", NULL, held + 3 * DAY - 1,
                                                      "system:expiry", 100, &n, &more)),
                     SY_OK);
    assert_int_equal(n, 0);
    assert_int_equal(TU_TX(f, sy_referral_expire_held(f->c, "t1", NULL, held + 3 * DAY,
                                                      "system:expiry", 100, &n, &more)),
                     SY_OK);
    assert_int_equal(n, 2);
    assert_false(more);
    assert_string_equal(status_of(f, "C5"), "expired");
    assert_string_equal(status_of(f, "C2"), "held");
    /* a review before the deadline still pays */
    sy_campaign_who checker = tu_who("t1", "C2", held + 13 * DAY);
    checker.operator_id = "key_checker";
    assert_int_equal(TU_TX(f, sy_referral_review(f->c, &checker, "h14", "C2", true, NULL, &o)),
                     SY_OK);
    assert_string_equal(o.status, "rewarded");
    /* after it, a review expires the binding, unpaid */
    checker.now_ms = held + 14 * DAY;
    assert_int_equal(TU_TX(f, sy_referral_review(f->c, &checker, "h14", "C3", true, NULL, &o)),
                     SY_OK);
    assert_string_equal(o.status, "expired");
    assert_string_equal(o.refusal, "review-expired");
    assert_string_equal(status_of(f, "C3"), "expired");
    assert_int_equal(tu_balance(f, "t1", "C3"), 0);
    /* one campaign, in batches of one */
    assert_int_equal(TU_TX(f, sy_referral_expire_held(f->c, "t1", "h14", held + 14 * DAY,
                                                      "system:expiry", 1, &n, &more)),
                     SY_OK);
    assert_int_equal(n, 1);
    assert_true(more);
    assert_int_equal(TU_TX(f, sy_referral_expire_held(f->c, "t1", "h14", held + 14 * DAY,
                                                      "system:expiry", 1, &n, &more)),
                     SY_OK);
    assert_int_equal(n, 0);
    assert_string_equal(status_of(f, "C4"), "expired");
    assert_int_equal(tu_balance(f, "t1", "C4"), 0);
    assert_int_equal(tu_balance(f, "t1", "C1"), 100); /* C2's approval only */
    assert_int_equal(tu_q1(f,
                           "SELECT COUNT(*) FROM referral_bindings WHERE refusal ="
                           " 'review-expired' AND reviewed_by = $1",
                           "system:expiry"),
                     3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rules_validation),
        cmocka_unit_test_setup_teardown(test_invite_codes, setup, tu_fx_teardown),
        cmocka_unit_test_setup_teardown(test_binding_rules, setup, tu_fx_teardown),
        cmocka_unit_test_setup_teardown(test_qualifying_event_pays_once, setup, tu_fx_teardown),
        cmocka_unit_test_setup_teardown(test_cap_per_inviter_and_budget, setup, tu_fx_teardown),
        cmocka_unit_test_setup_teardown(test_fraud_holds_and_review, setup, tu_fx_teardown),
        cmocka_unit_test_setup_teardown(test_held_rewards_expire, setup, tu_fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_offers.c — the offers API's rules (src/offers.c) on a temporary
 * store: the catalogue holds the campaigns that may run, the packages and
 * the active listings, with their audiences deduplicated; a customer sees
 * the campaigns running now and open, in their audience, suitable and not
 * held out, with their budget not spent; limits left and chances
 * (check-in done today, tasks done in their period, a lottery's daily
 * draws read defensively, invites left); listings whose stock or limits
 * are used up are left out; and the ranking is priority first, then the
 * soonest end. */
#include "unit/store_fixture.h"

#include "benefits.h"
#include "campaign.h"
#include "ledger.h"
#include "lottery.h"
#include "offers.h"
#include "tenant.h"
#include "util.h"

#define DAY 86400000LL

/* t1 (Shanghai) with C1..C10 and sun; coupons cp5 (10, one a customer), empty (none) and
 * cp10 (5, until December 20); their listings, one for vip, one inactive; a package. */
static int setup(void **state)
{
    tu_fx *f = tu_fx_open(10, "sun");
    tu_acme(f->c, "t1");
    sy_benefit_item it = tu_coupon_item("cp5", 10);
    it.limits.total = 1;
    assert_int_equal(sy_benefit_item_create(f->c, "t1", &it), SY_OK);
    it.code = "empty";
    it.stock = 0;
    it.limits.total = SY_BENEFIT_UNSET;
    assert_int_equal(sy_benefit_item_create(f->c, "t1", &it), SY_OK);
    it.code = "cp10";
    it.stock = 5;
    it.available_until = tu_at("2026-12-20T00:00:00+08:00");
    assert_int_equal(sy_benefit_item_create(f->c, "t1", &it), SY_OK);
    sy_benefit_listing l = {.code = "l_cp5",
                            .item = "cp5",
                            .title = "cp5 for 100",
                            .point_type = "sun",
                            .price = 100,
                            .limits = {SY_BENEFIT_UNSET, SY_BENEFIT_UNSET, SY_BENEFIT_UNSET},
                            .active = true};
    assert_int_equal(sy_benefit_listing_create(f->c, "t1", &l), SY_OK);
    l.code = "l_empty";
    l.item = "empty";
    assert_int_equal(sy_benefit_listing_create(f->c, "t1", &l), SY_OK);
    l.code = "l_cp10";
    l.item = "cp10";
    l.segment_expression = "vip = true";
    assert_int_equal(sy_benefit_listing_create(f->c, "t1", &l), SY_OK);
    l.code = "l_off";
    l.item = "cp5";
    l.segment_expression = NULL;
    l.active = false;
    assert_int_equal(sy_benefit_listing_create(f->c, "t1", &l), SY_OK);
    sy_benefit_package_line line = {"cp5", 2};
    const char *missing = NULL;
    assert_int_equal(sy_benefit_package_create(f->c, "t1", "pk", "Package", "", "gold", NULL, &line,
                                               1, 0, &missing),
                     SY_OK);
    *state = f;
    return 0;
}

/* Creates and approves a campaign; fields tweak the definition. */
static void launch(tu_fx *f, const char *id, sy_campaign_type type, const char *rules, int priority,
                   const char *ends, void (*tweak)(sy_campaign *cp))
{
    sy_campaign *cp = tu_campaign_def(id, type, rules);
    cp->priority = priority;
    cp->ends_at = tu_at(ends);
    if (tweak)
        tweak(cp);
    tu_campaign_launch(f, "t1", cp);
}

static const char k_checkin[] = "{\"checkin\": {\"rewards\": [{\"day\": 1, \"points\": 5}]}}";

static void limits_1_3(sy_campaign *cp)
{
    cp->limit_day = 1;
    cp->limit_total = 3;
}
static void segment_gold(sy_campaign *cp)
{
    snprintf(cp->segment_id, sizeof cp->segment_id, "gold");
}
static void r3(sy_campaign *cp)
{
    cp->product_risk = 3;
    cp->risk_validity_days = 365;
}
static void evening(sy_campaign *cp)
{
    cp->open_from = 18 * 60;
    cp->open_until = 22 * 60;
}
static void holdout_half(sy_campaign *cp)
{
    cp->holdout_percent = 50;
}
static void later(sy_campaign *cp)
{
    cp->starts_at = tu_at("2026-12-10T00:00:00+08:00");
}

/* The offers of a customer as a JSON array, with audiences given by name
 * ("gold" and the expression "vip = true") and a risk profile. */
static json_t *offers(tu_fx *f, const char *no, int64_t now, bool gold, bool vip, int risk)
{
    sy_offers_catalog *cat;
    assert_int_equal(sy_offers_catalog_load(f->c, "t1", now, &cat), SY_OK);
    bool in[8] = {false};
    assert_true(cat->naudiences <= 8);
    for (size_t a = 0; a < cat->naudiences; a++)
        in[a] = cat->audiences[a].id ? (gold && !strcmp(cat->audiences[a].id, "gold")) : vip;
    sy_offers_state st;
    assert_int_equal(sy_offers_state_load(f->c, cat, no, now, NULL, &st), SY_OK);
    sy_offers_profile prof = {.customer_no = no,
                              .risk_level = risk,
                              .risk_assessed_day = sy_campaign_day("Asia/Shanghai", now) - 10};
    json_t *o = sy_offers_build(cat, &st, in, &prof, now);
    sy_offers_state_free(cat, &st);
    sy_offers_catalog_free(cat);
    json_t *items = json_incref(json_object_get(o, "items"));
    json_decref(o);
    return items;
}

static json_t *find(json_t *items, const char *code)
{
    size_t i;
    json_t *v;
    json_array_foreach (items, i, v) {
        const char *c = json_string_value(json_object_get(v, "id"));
        if (!c)
            c = json_string_value(json_object_get(v, "code"));
        if (c && !strcmp(c, code))
            return v;
    }
    return NULL;
}

static void order_is(json_t *items, const char *const *want, size_t n)
{
    char got[512] = "";
    size_t i;
    json_t *v;
    json_array_foreach (items, i, v) {
        const char *c = json_string_value(json_object_get(v, "id"));
        if (!c)
            c = json_string_value(json_object_get(v, "code"));
        snprintf(got + strlen(got), sizeof got - strlen(got), "%s ", c);
    }
    char exp[512] = "";
    for (size_t k = 0; k < n; k++)
        snprintf(exp + strlen(exp), sizeof exp - strlen(exp), "%s ", want[k]);
    if (strcmp(got, exp) != 0)
        fail_msg("order: got [%s], wanted [%s]", got, exp);
}

static void test_ranking_and_eligibility(void **state)
{
    tu_fx *f = *state;
    launch(f, "a_low", SY_CAMPAIGN_CHECKIN, k_checkin, 0, "2026-12-25T00:00:00+08:00", NULL);
    launch(f, "b_soon", SY_CAMPAIGN_CHECKIN, k_checkin, 0, "2026-12-15T00:00:00+08:00", NULL);
    launch(f, "c_top", SY_CAMPAIGN_CHECKIN, k_checkin, 9, "2027-01-01T00:00:00+08:00", NULL);
    launch(f, "d_gold", SY_CAMPAIGN_CHECKIN, k_checkin, 1, "2027-01-01T00:00:00+08:00",
           segment_gold);
    launch(f, "e_r3", SY_CAMPAIGN_CHECKIN, k_checkin, 1, "2026-12-31T00:00:00+08:00", r3);
    launch(f, "f_evening", SY_CAMPAIGN_CHECKIN, k_checkin, 1, "2026-12-30T00:00:00+08:00", evening);
    launch(f, "g_later", SY_CAMPAIGN_CHECKIN, k_checkin, 1, "2026-12-30T00:00:00+08:00", later);
    launch(f, "h_ended", SY_CAMPAIGN_CHECKIN, k_checkin, 1, "2026-12-03T00:00:00+08:00", NULL);
    int64_t noon = tu_at("2026-12-05T12:00:00+08:00");
    /* C1: not gold, not vip, risk R2, at noon */
    json_t *it = offers(f, "C1", noon, false, false, 2);
    const char *want1[] = {"c_top", "b_soon", "a_low", "l_cp5"};
    order_is(it, want1, 4);
    json_decref(it);
    /* gold, vip, R4, in the evening: everything open now */
    int64_t eve = tu_at("2026-12-05T19:00:00+08:00");
    it = offers(f, "C1", eve, true, true, 4);
    const char *want2[] = {"c_top",  "f_evening", "e_r3", "d_gold", "b_soon",
                           "l_cp10", "a_low",     "pk",   "l_cp5"};
    order_is(it, want2, 9);
    /* the package's lines, the listing's price and what is left */
    json_t *pk = find(it, "pk");
    assert_int_equal(json_array_size(json_object_get(pk, "items")), 1);
    json_t *l = find(it, "l_cp5");
    assert_int_equal(json_integer_value(json_object_get(l, "price")), 100);
    assert_int_equal(json_integer_value(json_object_get(l, "exchanges_left")), 1);
    assert_int_equal(json_integer_value(json_object_get(l, "stock")), 10);
    json_decref(it);
    /* after its end, a listing's item is gone; the later campaign has started */
    it = offers(f, "C1", tu_at("2026-12-21T12:00:00+08:00"), true, true, 4);
    assert_null(find(it, "l_cp10"));
    assert_non_null(find(it, "g_later"));
    assert_null(find(it, "b_soon"));
    json_decref(it);
}

static void test_limits_and_chances(void **state)
{
    tu_fx *f = *state;
    launch(f, "ck", SY_CAMPAIGN_CHECKIN, k_checkin, 0, "2027-01-01T00:00:00+08:00", limits_1_3);
    launch(f, "tk", SY_CAMPAIGN_TASK,
           "{\"tasks\": [{\"code\": \"pay\", \"event\": \"pay_bill\", \"period\": \"day\","
           " \"reward\": {\"points\": 3}}, {\"code\": \"card\", \"event\": \"bind_card\","
           " \"period\": \"campaign\", \"reward\": {\"points\": 9}}]}",
           0, "2027-01-01T00:00:00+08:00", NULL);
    /* a lottery with its prize table (3 draws a day, 2 of them free, then 5
     * points) and a campaign limit of 2 a day; another without a table */
    sy_campaign *lc = tu_campaign_def("lo", SY_CAMPAIGN_LOTTERY, NULL);
    lc->limit_day = 2;
    tu_campaign_create(f, "t1", lc);
    sy_campaign_free(lc);
    json_t *tj = json_loads("{\"free_per_day\": 2, \"draws_per_day\": 3, \"cost\": {\"points\":"
                            " 5}, \"thanks\": {\"weight\": 1}, \"prizes\": [{\"code\": \"p\","
                            " \"name\": \"P\", \"weight\": 1, \"stock\": 10, \"reward\":"
                            " {\"points\": 1}}]}",
                            0, NULL);
    sy_lottery_table lt;
    char tfield[96], tmsg[256];
    assert_true(sy_lottery_parse(tj, "sun", &lt, tfield, sizeof tfield, tmsg, sizeof tmsg));
    json_decref(tj);
    sy_campaign_result cres;
    assert_int_equal(TU_TX(f, sy_lottery_define(f->c, "t1", "lo", &lt, "key_maker",
                                                tu_at("2026-11-20T00:00:00Z"), &cres)),
                     SY_OK);
    tu_campaign_approve(f, "t1", "lo");
    launch(f, "lo2", SY_CAMPAIGN_LOTTERY, NULL, 0, "2027-01-01T00:00:00+08:00", NULL);
    int64_t now = tu_at("2026-12-05T12:00:00+08:00");
    sy_campaign_who w = tu_who("t1", "C2", now);
    sy_campaign_outcome o;
    assert_int_equal(sy_campaign_checkin(f->c, &w, "ck", SY_CAMPAIGN_UNSET, &o), SY_OK);
    w.now_ms = now - DAY;
    assert_int_equal(sy_campaign_checkin(f->c, &w, "ck", SY_CAMPAIGN_UNSET, &o), SY_OK);
    sy_campaign *tk;
    assert_int_equal(sy_campaign_load(f->c, "t1", "tk", &tk), SY_OK);
    w.now_ms = now;
    assert_int_equal(
        sy_campaign_task_event(f->c, tk, 1, &w, "bind_card", "e1", now - 2 * DAY, -1, NULL, &o),
        SY_OK);
    assert_int_equal(
        sy_campaign_task_event(f->c, tk, 0, &w, "pay_bill", "e2", now - DAY, -1, NULL, &o), SY_OK);
    sy_campaign_free(tk);
    sy_lottery_outcome lo_out;
    assert_int_equal(TU_TX(f, sy_lottery_draw(f->c, &w, "lo", NULL, NULL, &lo_out)), SY_OK);
    assert_true(lo_out.free);
    assert_int_equal(lo_out.chances_left, 1); /* the campaign's 2 a day */
    json_t *it = offers(f, "C2", now, false, false, 0);
    json_t *ck = find(it, "ck");
    assert_non_null(ck);
    assert_true(json_is_true(json_object_get(json_object_get(ck, "checkin"), "checked_in_today")));
    json_t *left = json_object_get(ck, "limits_left");
    assert_int_equal(json_integer_value(json_object_get(left, "per_day")), 0);
    assert_int_equal(json_integer_value(json_object_get(left, "per_campaign")), 1);
    assert_true(json_is_null(json_object_get(left, "per_week")));
    /* tasks: the campaign-long one is done; the daily one was done yesterday, not today */
    json_t *tasks = json_object_get(find(it, "tk"), "tasks");
    assert_true(json_is_false(json_object_get(json_array_get(tasks, 0), "done")));
    assert_true(json_is_true(json_object_get(json_array_get(tasks, 1), "done")));
    /* the lottery: its table's numbers, the customer's draw counted, and
     * the campaign's own limit capping what is left today */
    json_t *lof = find(it, "lo");
    json_t *lo = json_object_get(lof, "lottery");
    assert_true(json_is_true(json_object_get(lo, "prizes")));
    assert_int_equal(json_integer_value(json_object_get(lo, "draws_per_day")), 3);
    assert_int_equal(json_integer_value(json_object_get(lo, "draws_today")), 1);
    assert_int_equal(json_integer_value(json_object_get(lo, "draws_left_today")), 1);
    assert_int_equal(json_integer_value(json_object_get(lo, "free_left_today")), 1);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(lo, "cost"), "points")), 5);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(lof, "limits_left"), "per_day")), 1);
    json_t *lo2 = json_object_get(find(it, "lo2"), "lottery");
    assert_true(json_is_false(json_object_get(lo2, "prizes")));
    assert_true(json_is_null(json_object_get(lo2, "draws_per_day")));
    assert_int_equal(json_integer_value(json_object_get(lo2, "draws_left_today")),
                     0); /* no prizes: no draw */
    json_decref(it);
    /* another customer has checked in nowhere */
    it = offers(f, "C3", now, false, false, 0);
    ck = find(it, "ck");
    assert_true(json_is_false(json_object_get(json_object_get(ck, "checkin"), "checked_in_today")));
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(ck, "limits_left"), "per_campaign")), 3);
    json_decref(it);
}

static void test_listing_limits_holdout_budget(void **state)
{
    tu_fx *f = *state;
    launch(f, "half", SY_CAMPAIGN_CHECKIN, k_checkin, 0, "2027-01-01T00:00:00+08:00", holdout_half);
    int64_t now = tu_at("2026-12-05T12:00:00+08:00");
    /* the holdout: exactly the customers the hash keeps out do not see it */
    int seen = 0, held = 0;
    for (int i = 1; i <= 10; i++) {
        char no[16];
        snprintf(no, sizeof no, "C%d", i);
        json_t *it = offers(f, no, now, false, false, 0);
        bool out = sy_campaign_in_holdout("t1", "half", no, 50);
        assert_int_equal(find(it, "half") == NULL, out);
        seen += !out;
        held += out;
        json_decref(it);
    }
    assert_int_equal(seen + held, 10);
    /* the item's limit (1 in all): after one grant the listing is gone */
    sy_benefit_issue q = {.tenant = "t1",
                          .customer_no = "C4",
                          .item = "cp5",
                          .operator_id = "k",
                          .idempotency_key = "g1",
                          .now_ms = now};
    sy_benefit_result br;
    assert_int_equal(sy_benefit_issue_one(f->c, &q, &br), SY_OK);
    json_t *it = offers(f, "C4", now, false, false, 0);
    assert_null(find(it, "l_cp5"));
    assert_null(find(it, "l_empty")); /* no stock */
    assert_null(find(it, "l_off"));   /* inactive */
    json_decref(it);
    it = offers(f, "C5", now, false, false, 0);
    assert_non_null(find(it, "l_cp5"));
    json_decref(it);
    /* a campaign whose budget is spent is not offered */
    sy_conn_exec(f->c, "UPDATE campaigns SET budget_points = 10, spent_points = 10 WHERE id = "
                       "'half'");
    for (int i = 1; i <= 10; i++) {
        char no[16];
        snprintf(no, sizeof no, "C%d", i);
        it = offers(f, no, now, false, false, 0);
        assert_null(find(it, "half"));
        json_decref(it);
    }
}

static void test_compare(void **state)
{
    (void)state;
    sy_offer a = {.priority = 1, .ends_at = 100, .code = "a"};
    sy_offer b = {.priority = 2, .ends_at = 900, .code = "b"};
    sy_offer c = {.priority = 1, .ends_at = 50, .code = "c"};
    sy_offer d = {.priority = 1, .ends_at = SY_OFFER_NO_END, .code = "d"};
    sy_offer e = {.priority = 1, .ends_at = 50, .code = "e", .kind = SY_OFFER_LISTING};
    const sy_offer *v[] = {&a, &b, &c, &d, &e};
    qsort(v, 5, sizeof v[0], sy_offers_compare);
    assert_string_equal(v[0]->code, "b");
    assert_string_equal(v[1]->code, "c");
    assert_string_equal(v[2]->code, "e");
    assert_string_equal(v[3]->code, "a");
    assert_string_equal(v[4]->code, "d");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ranking_and_eligibility, setup, tu_fx_teardown),
        cmocka_unit_test_setup_teardown(test_limits_and_chances, setup, tu_fx_teardown),
        cmocka_unit_test_setup_teardown(test_listing_limits_holdout_budget, setup, tu_fx_teardown),
        cmocka_unit_test(test_compare),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

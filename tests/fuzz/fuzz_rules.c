/* fuzz_rules.c — libFuzzer target for siyu's parsers of the JSON definitions
 * clients send: attribute definitions and values checked against them,
 * campaign rules of every type (check-in, tasks, lottery, referral, coupon
 * drop), prize tables, anti-abuse rules, the timed-events setting, and the
 * dates, RFC 3339 times and zones among their strings.
 *
 * The first byte picks the parser (and the campaign type); the rest is the
 * JSON text, parsed by jansson.  Invariants checked: a refusal names the
 * field as a JSON pointer ("" or "/..."), with a message; accepted task
 * rules encode and parse back to the same rules, and a task's conditions
 * on props judge the body's "event_props" (a miss names the property); an
 * accepted attribute value comes back canonical, and checking it again accepts it
 * unchanged; a parsed time formats and parses back to the same instant;
 * nothing leaks (LeakSanitizer) or crashes.
 * Build: make fuzz; run: build/fuzz/fuzz_rules tests/fuzz/corpus/rules */
#include "abuse.h"
#include "attr.h"
#include "campaign.h"
#include "coupon.h"
#include "index.h"
#include "lottery.h"
#include "referral.h"
#include "tenant.h"
#include "util.h"

#include <assert.h>
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A refusal names a JSON pointer: "" (the whole body) or "/...". */
static void refused(const char *field, const char *msg)
{
    assert(field[0] == '\0' || field[0] == '/');
    assert(msg[0] != '\0');
}

/* An attribute definition; its "value" member, if any, checked against it. */
static void attribute(json_t *body)
{
    sy_attr_def d;
    const char *field = NULL;
    char err[256] = "";
    memset(&d, 0, sizeof d);
    if (!sy_attr_def_parse(body, &d, &field, err, sizeof err)) {
        assert(field && err[0]);
        sy_attr_def_clear(&d);
        return;
    }
    json_t *v = json_object_get(body, "value");
    json_t *canon = NULL;
    if (v && sy_attr_check(&d, v, &canon, err, sizeof err)) {
        json_t *again = NULL;
        assert(sy_attr_check(&d, canon, &again, err, sizeof err));
        assert(json_equal(canon, again));
        json_decref(again);
        json_decref(canon);
    }
    sy_attr_def_clear(&d);
}

static void campaign(json_t *body, sy_campaign_type type)
{
    sy_campaign *cp = sy_xcalloc(1, sizeof *cp);
    cp->type = type;
    snprintf(cp->point_type, sizeof cp->point_type, "%s", "points");
    char field[96] = "", msg[256] = "";
    if (!sy_campaign_rules_parse(cp, body, field, sizeof field, msg, sizeof msg)) {
        refused(field, msg);
    } else if (type == SY_CAMPAIGN_REFERRAL) {
        sy_referral_rules rr;
        if (!sy_referral_rules_parse(cp->extra, cp->point_type, &rr, field, sizeof field, msg,
                                     sizeof msg))
            refused(field, msg);
    } else if (type == SY_CAMPAIGN_COUPON_DROP) {
        sy_coupon_rules cr;
        if (!sy_coupon_rules_parse(cp->extra, &cr, field, sizeof field, msg, sizeof msg))
            refused(field, msg);
    } else if (type == SY_CAMPAIGN_TASK) {
        /* the rules given back parse again to the same rules */
        json_t *back = sy_campaign_rules_json(cp);
        sy_campaign *again = sy_xcalloc(1, sizeof *again);
        again->type = type;
        snprintf(again->point_type, sizeof again->point_type, "%s", "points");
        assert(sy_campaign_rules_parse(again, back, field, sizeof field, msg, sizeof msg));
        json_t *back2 = sy_campaign_rules_json(again);
        assert(json_equal(back, back2));
        json_decref(back2);
        json_decref(back);
        sy_campaign_free(again);
        /* each task's conditions judge the body's "event_props", if any
         * (the rules ignore that member): a miss says why */
        json_t *ev = json_object_get(body, "event_props");
        for (int t = 0; t < cp->ntasks; t++) {
            char why[96] = "";
            if (!sy_campaign_props_meet(cp->tasks[t].props, ev, why, sizeof why))
                assert(!strncmp(why, "props.", 6));
        }
    } else {
        json_decref(sy_campaign_rules_json(cp));
    }
    sy_campaign_free(cp);
}

static void prizes(json_t *body)
{
    sy_lottery_table *t = sy_xcalloc(1, sizeof *t);
    char field[96] = "", msg[256] = "";
    if (!sy_lottery_parse(body, "points", t, field, sizeof field, msg, sizeof msg))
        refused(field, msg);
    else
        json_decref(sy_lottery_table_json(t, 20000));
    free(t);
}

static void abuse(json_t *body)
{
    sy_abuse_rules *r = sy_xcalloc(1, sizeof *r);
    char field[96] = "", msg[256] = "";
    if (!sy_abuse_rules_parse(body, r, field, sizeof field, msg, sizeof msg))
        refused(field, msg);
    else
        json_decref(sy_abuse_rules_json(r));
    free(r);
}

/* Every string in the document as a date, a time of day and a zone. */
static void strings(json_t *j, int depth)
{
    if (depth > 8)
        return;
    if (json_is_string(j)) {
        const char *s = json_string_value(j);
        int64_t v;
        if (sy_parse_date(s, &v)) {
            assert(strlen(s) == 10);
        }
        if (sy_parse_time(s, &v)) { /* as RFC 3339 UTC, the same instant */
            char out[32];
            int64_t again;
            sy_format_time(v, out, sizeof out);
            assert(sy_parse_time(out, &again) && again == v);
        }
        (void)sy_timezone_valid(s);
    } else if (json_is_array(j)) {
        size_t i;
        json_t *x;
        json_array_foreach (j, i, x)
            strings(x, depth + 1);
    } else if (json_is_object(j)) {
        const char *k;
        json_t *x;
        json_object_foreach (j, k, x)
            strings(x, depth + 1);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned pick = data[0];
    json_t *body = json_loadb((const char *)data + 1, size - 1, JSON_DECODE_ANY, NULL);
    if (!body)
        return 0;
    switch (pick % 5) {
    case 0:
        attribute(body);
        break;
    case 1:
        campaign(body, (sy_campaign_type)(pick / 5 % 5));
        break;
    case 2:
        prizes(body);
        break;
    case 3:
        abuse(body);
        break;
    default:
        (void)sy_timed_spec_valid(body);
        strings(body, 0);
        break;
    }
    json_decref(body);
    return 0;
}

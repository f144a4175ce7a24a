/* api_campaigns.c — campaigns (活动) over HTTP: the definition (create,
 * read, list, change while a draft), the lifecycle steps with
 * maker-checker approval, check-in, a customer's standing in a campaign,
 * and the hook that rewards tasks as events are ingested.
 *
 * The rules live in campaign.c and run inside the writer's group-commit
 * transaction (sy_req_write), where the limit and budget checks and the
 * changes they allow cannot be separated by another write.  What the
 * writer does not decide is audience membership: segments live in the
 * in-memory index, so the handler evaluates the campaign's segment for the
 * customer (among that one customer, as benefits do) before it submits the
 * write.  Refusals answer a problem whose type names the rule:
 * not-running, not-in-audience, unsuitable, holdout, already-checked-in,
 * limit-reached, budget-exhausted, makeup-not-allowed,
 * insufficient-points, reward-refused, wrong-type; lifecycle refusals:
 * not-draft, bad-transition, maker-checker.  docs/campaigns.md has the
 * model. */
#include "api.h"
#include "app.h"
#include "campaign.h"
#include "coupon.h"
#include "customer.h"
#include "ledger.h"
#include "referral.h"
#include "segment_eval.h"
#include "util.h"
#include "validate.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TASK_CAMPAIGNS 64 /* task campaigns one event batch is matched against */
#define RISK_VALIDITY_DEFAULT 365
#define RISK_VALIDITY_MAX 3660

/* ------------------------------------------------------------------ */
/* refusals                                                            */

static void reply_refusal(sy_req *r, int rc, const sy_campaign_result *why, const char *id,
                          const char *no)
{
    switch (rc) {
    case SY_CAMPAIGN_EXISTS:
        sy_reply_problem(r, 409, "conflict", "/id", "campaign '%s' exists already", id);
        break;
    case SY_CAMPAIGN_NOT_FOUND:
        sy_reply_problem(r, 404, "not-found", NULL, "no campaign '%s'", id);
        break;
    case SY_CAMPAIGN_NOT_DRAFT:
        sy_reply_problem(r, 409, "not-draft", NULL,
                         "campaign '%s' is %s: only a draft can change (reject sends a pending"
                         " campaign back to draft)",
                         id, why->other);
        break;
    case SY_CAMPAIGN_BAD_TRANSITION:
        sy_reply_problem(r, 409, "bad-transition", NULL,
                         "campaign '%s' is %s; that step does not start from there", id,
                         why->other);
        sy_reply_extend(r, "campaign_status", json_string(why->other));
        break;
    case SY_CAMPAIGN_MAKER_CHECKER:
        sy_reply_problem(r, 403, "maker-checker", NULL,
                         "campaign '%s' must be approved by another key than the one that wrote"
                         " or submitted it",
                         id);
        break;
    case SY_CAMPAIGN_UNKNOWN_TYPE:
        sy_reply_problem(r, 400, "validation", why->other,
                         "no such point type (see GET /v1/point-types)");
        break;
    case SY_CAMPAIGN_UNKNOWN_ITEM:
        sy_reply_problem(r, 400, "validation", why->other,
                         "no benefit item of that code that a campaign can issue (see GET"
                         " /v1/benefits/items; goods need a delivery address and are not)");
        break;
    case SY_CAMPAIGN_WRONG_TYPE:
        sy_reply_problem(r, 409, "wrong-type", NULL, "campaign '%s' is a %s campaign", id,
                         why->other);
        break;
    case SY_CAMPAIGN_NOT_RUNNING:
        if (!strcmp(why->other, "closed"))
            sy_reply_problem(r, 409, "not-running", NULL,
                             "campaign '%s' is outside its daily open hours", id);
        else if (!strcmp(why->other, "outside"))
            sy_reply_problem(r, 409, "not-running", NULL, "campaign '%s' is outside its schedule",
                             id);
        else
            sy_reply_problem(r, 409, "not-running", NULL, "campaign '%s' is %s, not running", id,
                             why->other);
        sy_reply_extend(r, "reason", json_string(why->other));
        break;
    case SY_CAMPAIGN_NO_CUSTOMER:
        sy_reply_problem(r, 404, "not-found", "/customer_no", "no customer '%s'", no);
        break;
    case SY_CAMPAIGN_MERGED:
        sy_reply_problem(r, 409, "conflict", "/customer_no",
                         "customer '%s' was merged into '%s'; use that one", no, why->other);
        break;
    case SY_CAMPAIGN_NOT_IN_AUDIENCE:
        sy_reply_problem(r, 403, "not-in-audience", NULL,
                         "customer '%s' is not in the audience of campaign '%s'", no, id);
        break;
    case SY_CAMPAIGN_UNSUITABLE:
        sy_reply_problem(r, 403, "unsuitable", NULL,
                         "campaign '%s' promotes a product that does not suit customer '%s': %s",
                         id, no, why->other);
        break;
    case SY_CAMPAIGN_HOLDOUT:
        sy_reply_problem(r, 403, "holdout", NULL,
                         "customer '%s' is in the holdout of campaign '%s' (kept out to measure"
                         " uplift)",
                         no, id);
        break;
    case SY_CAMPAIGN_ALREADY_CHECKED_IN:
        sy_reply_problem(r, 409, "already-checked-in", NULL,
                         "customer '%s' has checked in for that day already", no);
        break;
    case SY_CAMPAIGN_ALREADY_DONE:
        sy_reply_problem(r, 409, "already-done", NULL,
                         "the task was rewarded in this period already");
        break;
    case SY_CAMPAIGN_LIMIT_REACHED:
        sy_reply_problem(r, 409, "limit-reached", NULL,
                         "customer '%s' reached the campaign's per-%s limit (%lld)", no, why->other,
                         (long long)why->limit);
        sy_reply_extend(r, "limit", json_string(why->other));
        sy_reply_extend(r, "max", json_integer(why->limit));
        break;
    case SY_CAMPAIGN_BUDGET_EXHAUSTED:
        sy_reply_problem(r, 409, "budget-exhausted", NULL,
                         "campaign '%s' has spent its %s budget; nothing was issued", id,
                         why->other);
        sy_reply_extend(r, "budget", json_string(why->other));
        break;
    case SY_CAMPAIGN_BAD_MAKEUP_DAY:
        sy_reply_problem(r, 409, "makeup-not-allowed", "/day",
                         "no make-up check-in for that day: %s", why->other);
        break;
    case SY_CAMPAIGN_NO_MAKEUP:
        sy_reply_problem(r, 409, "makeup-not-allowed", "/day",
                         "campaign '%s' offers no make-up check-in", id);
        break;
    case SY_CAMPAIGN_INSUFFICIENT:
        sy_reply_problem(r, 409, "insufficient-points", NULL,
                         "the customer has %lld points of the make-up's type available, fewer"
                         " than its cost; nothing was spent",
                         (long long)why->balance);
        sy_reply_extend(r, "available", json_integer(why->balance));
        break;
    case SY_CAMPAIGN_REWARD_REFUSED:
        sy_reply_problem(r, 409, "reward-refused", NULL,
                         "the reward could not be issued (%s); nothing was written", why->other);
        sy_reply_extend(r, "reason", json_string(why->other));
        break;
    default:
        sy_reply_problem(r, 500, "internal", NULL, "unexpected campaign answer %d", rc);
        break;
    }
}

/* ------------------------------------------------------------------ */
/* input                                                               */

static bool v_int(sy_req *r, json_t *o, const char *ptr, const char *field, int64_t min,
                  int64_t max, int64_t *out)
{
    json_t *v = json_object_get(o, field);
    if (!v || json_is_null(v))
        return true;
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
        sy_reply_problem(r, 400, "validation", ptr, "'%s' must be an integer from %lld to %lld",
                         field, (long long)min, (long long)max);
        return false;
    }
    *out = json_integer_value(v);
    return true;
}

/* An object member, or NULL; anything else than an object or null is a 400. */
static bool v_object(sy_req *r, json_t *body, const char *field, const char *const *fields,
                     json_t **out)
{
    char ptr[64];
    snprintf(ptr, sizeof ptr, "/%s", field);
    json_t *v = json_object_get(body, field);
    *out = NULL;
    if (!v || json_is_null(v))
        return true;
    if (!json_is_object(v)) {
        sy_reply_problem(r, 400, "validation", ptr, "'%s' must be an object", field);
        return false;
    }
    const char *key;
    json_t *x;
    json_object_foreach (v, key, x) {
        bool known = false;
        for (const char *const *f = fields; *f && !known; f++)
            known = !strcmp(*f, key);
        if (!known) {
            char p[128];
            snprintf(p, sizeof p, "/%s/%.60s", field, key);
            sy_reply_problem(r, 400, "validation", p, "unknown field '%.60s' in '%s'", key, field);
            return false;
        }
    }
    *out = v;
    return true;
}

static bool v_time(sy_req *r, json_t *body, const char *field, int64_t *out)
{
    char ptr[64];
    snprintf(ptr, sizeof ptr, "/%s", field);
    const char *s = NULL;
    if (!sy_v_string(r, body, field, true, 40, &s))
        return false;
    if (!sy_parse_time(s, out)) {
        sy_reply_problem(
            r, 400, "validation", ptr,
            "'%s' must be an RFC 3339 time with a zone, e.g. 2026-12-01T00:00:00+08:00", field);
        return false;
    }
    return true;
}

/* "HH:MM" to minutes after midnight; "24:00" only when allow_24. */
static bool parse_hhmm(const char *s, bool allow_24, int *out)
{
    if (!s || strlen(s) != 5 || s[2] != ':')
        return false;
    for (int i = 0; i < 5; i++)
        if (i != 2 && (s[i] < '0' || s[i] > '9'))
            return false;
    int h = (s[0] - '0') * 10 + (s[1] - '0'), m = (s[3] - '0') * 10 + (s[4] - '0');
    if (m > 59 || h > 24 || (h == 24 && (!allow_24 || m != 0)))
        return false;
    *out = h * 60 + m;
    return true;
}

/* The tenant's index and schema; NULL (with a 500 recorded) when they are
 * not available.  Release the schema. */
static sy_index *tenant_index(sy_req *r, sy_attr_set **schema)
{
    sy_app *app = sy_req_app(r);
    const char *tenant = sy_req_principal(r)->tenant;
    *schema = sy_schemas_get(app->schemas, tenant);
    sy_index *ix = *schema ? sy_indexes_get(app->indexes, tenant) : NULL;
    if (!ix) {
        sy_attr_set_release(*schema);
        *schema = NULL;
        sy_reply_problem(r, 500, "internal", NULL, "the tenant's index is not available");
    }
    return ix;
}

/* The campaign definition from a create or replace body into cp. */
static bool v_definition(sy_req *r, json_t *body, sy_campaign *cp)
{
    static const char *const fields[] = {"id",         "name",        "type",
                                         "starts_at",  "ends_at",     "open_hours",
                                         "segment_id", "suitability", "holdout_percent",
                                         "budget",     "limits",      "point_type",
                                         "checkin",    "tasks",       "lottery",
                                         "referral",   "coupon_drop", "priority",
                                         NULL};
    static const char *const hours_f[] = {"from", "until", NULL};
    static const char *const suit_f[] = {"product_risk", "validity_days", NULL};
    static const char *const budget_f[] = {"points", "cost", NULL};
    static const char *const limits_f[] = {"per_day", "per_week", "per_campaign", NULL};
    const char *name = NULL, *type = NULL, *segment = NULL, *ptype = NULL;
    json_t *hours, *suit, *budget, *limits;
    if (!sy_v_only(r, body, fields) ||
        !sy_v_string(r, body, "name", true, SY_CAMPAIGN_NAME_MAX, &name) ||
        !sy_v_string(r, body, "type", true, 20, &type))
        return false;
    if (!sy_campaign_type_parse(type, &cp->type)) {
        sy_reply_problem(r, 400, "validation", "/type",
                         "'type' must be checkin, task, lottery, referral or coupon_drop");
        return false;
    }
    snprintf(cp->name, sizeof cp->name, "%s", name);
    if (!v_time(r, body, "starts_at", &cp->starts_at) || !v_time(r, body, "ends_at", &cp->ends_at))
        return false;
    if (cp->ends_at <= cp->starts_at) {
        sy_reply_problem(r, 400, "validation", "/ends_at", "'ends_at' must be after 'starts_at'");
        return false;
    }
    cp->open_from = cp->open_until = SY_CAMPAIGN_UNSET;
    if (!v_object(r, body, "open_hours", hours_f, &hours))
        return false;
    if (hours) {
        const char *f = json_string_value(json_object_get(hours, "from"));
        const char *u = json_string_value(json_object_get(hours, "until"));
        if (!parse_hhmm(f, false, &cp->open_from)) {
            sy_reply_problem(r, 400, "validation", "/open_hours/from",
                             "'from' must be a local time HH:MM, 00:00 to 23:59");
            return false;
        }
        if (!parse_hhmm(u, true, &cp->open_until) || cp->open_until <= cp->open_from) {
            sy_reply_problem(r, 400, "validation", "/open_hours/until",
                             "'until' must be a local time HH:MM after 'from' (24:00 at most)");
            return false;
        }
    }
    if (!sy_v_string(r, body, "segment_id", false, 64, &segment))
        return false;
    if (segment) {
        sy_attr_set *schema;
        sy_index *ix = tenant_index(r, &schema);
        if (!ix)
            return false;
        sy_index_rdlock(ix);
        bool known = sy_index_segment(ix, segment) != NULL;
        sy_index_unlock(ix);
        sy_attr_set_release(schema);
        if (!known) {
            sy_reply_problem(r, 400, "validation", "/segment_id",
                             "no saved segment '%s' (see GET /v1/segments)", segment);
            return false;
        }
        snprintf(cp->segment_id, sizeof cp->segment_id, "%s", segment);
    }
    if (!v_object(r, body, "suitability", suit_f, &suit))
        return false;
    if (suit) {
        const char *risk = json_string_value(json_object_get(suit, "product_risk"));
        if (!risk || strlen(risk) != 2 || risk[0] != 'R' || risk[1] < '1' || risk[1] > '5') {
            sy_reply_problem(r, 400, "validation", "/suitability/product_risk",
                             "'product_risk' must be R1, R2, R3, R4 or R5");
            return false;
        }
        cp->product_risk = risk[1] - '0';
        int64_t days = RISK_VALIDITY_DEFAULT;
        if (!v_int(r, suit, "/suitability/validity_days", "validity_days", 1, RISK_VALIDITY_MAX,
                   &days))
            return false;
        cp->risk_validity_days = (int)days;
    }
    int64_t holdout = 0;
    if (!v_int(r, body, "/holdout_percent", "holdout_percent", 0, 50, &holdout))
        return false;
    cp->holdout_percent = (int)holdout;
    int64_t priority = 0;
    if (!v_int(r, body, "/priority", "priority", -1000, 1000, &priority))
        return false;
    cp->priority = (int)priority;
    cp->budget_points = cp->budget_cost = SY_CAMPAIGN_UNSET;
    if (!v_object(r, body, "budget", budget_f, &budget) ||
        (budget &&
         (!v_int(r, budget, "/budget/points", "points", 0, SY_CAMPAIGN_POINTS_MAX * 1000,
                 &cp->budget_points) ||
          !v_int(r, budget, "/budget/cost", "cost", 0, SY_CAMPAIGN_MONEY_MAX, &cp->budget_cost))))
        return false;
    cp->limit_day = cp->limit_week = cp->limit_total = SY_CAMPAIGN_UNSET;
    if (!v_object(r, body, "limits", limits_f, &limits) ||
        (limits && (!v_int(r, limits, "/limits/per_day", "per_day", 1, SY_CAMPAIGN_LIMIT_MAX,
                           &cp->limit_day) ||
                    !v_int(r, limits, "/limits/per_week", "per_week", 1, SY_CAMPAIGN_LIMIT_MAX,
                           &cp->limit_week) ||
                    !v_int(r, limits, "/limits/per_campaign", "per_campaign", 1,
                           SY_CAMPAIGN_LIMIT_MAX, &cp->limit_total))))
        return false;
    if (!sy_v_string(r, body, "point_type", false, 32, &ptype))
        return false;
    if (ptype && !sy_point_type_code_valid(ptype)) {
        sy_reply_problem(r, 400, "validation", "/point_type",
                         "'point_type' must be a point type code (see GET /v1/point-types)");
        return false;
    }
    snprintf(cp->point_type, sizeof cp->point_type, "%s", ptype ? ptype : "");
    char field[96], msg[256];
    if (!sy_campaign_rules_parse(cp, body, field, sizeof field, msg, sizeof msg)) {
        sy_reply_problem(r, 400, "validation", field, "%s", msg);
        return false;
    }
    sy_referral_rules rr;
    if (cp->type == SY_CAMPAIGN_REFERRAL &&
        !sy_referral_rules_parse(cp->extra, cp->point_type, &rr, field, sizeof field, msg,
                                 sizeof msg)) {
        sy_reply_problem(r, 400, "validation", field, "%s", msg);
        return false;
    }
    sy_coupon_rules cr;
    if (cp->type == SY_CAMPAIGN_COUPON_DROP &&
        !sy_coupon_rules_parse(cp->extra, &cr, field, sizeof field, msg, sizeof msg)) {
        sy_reply_problem(r, 400, "validation", field, "%s", msg);
        return false;
    }
    json_t *rules = sy_campaign_rules_json(cp);
    char *text = json_dumps(rules, JSON_COMPACT);
    size_t len = text ? strlen(text) : 0;
    free(text);
    json_decref(rules);
    if (len > SY_CAMPAIGN_RULES_MAX) {
        sy_reply_problem(r, 400, "validation", "", "the campaign's rules exceed %d bytes as JSON",
                         SY_CAMPAIGN_RULES_MAX);
        return false;
    }
    return true;
}

static void campaign_free(void *p)
{
    sy_campaign *cp = p;
    json_decref(cp->extra);
}

static sy_campaign *campaign_new(sy_req *r)
{
    sy_campaign *cp = sy_req_alloc(r, sizeof *cp);
    memset(cp, 0, sizeof *cp);
    sy_req_on_free(r, campaign_free, cp);
    return cp;
}

/* ------------------------------------------------------------------ */
/* reads                                                               */

/* Loads a campaign through a read connection; replies 404 or 500 when it
 * cannot.  Free with sy_campaign_free. */
static sy_campaign *read_campaign(sy_req *r, const char *id)
{
    sy_app *app = sy_req_app(r);
    sy_conn *c = sy_store_acquire(app->store);
    sy_campaign *cp = NULL;
    int rc = sy_campaign_load(c, sy_req_principal(r)->tenant, id, &cp);
    if (rc == SY_CAMPAIGN_NOT_FOUND)
        sy_reply_problem(r, 404, "not-found", NULL, "no campaign '%s'", id);
    else if (rc != SY_OK)
        sy_api_store_error(r, c);
    sy_store_release(app->store, c);
    return cp;
}

void sy_api_campaigns_get(sy_req *r)
{
    sy_campaign *cp = read_campaign(r, sy_req_param(r, "id"));
    if (!cp)
        return;
    sy_reply_json(r, 200, sy_campaign_json(cp, sy_req_now_ms(r)));
    sy_campaign_free(cp);
}

void sy_api_campaigns_list(sy_req *r)
{
    static const char sql[] = "SELECT id FROM campaigns WHERE tenant_id = $1"
                              " AND ($2 = '' OR type = $2) ORDER BY created_at DESC, id";
    const char *type = sy_req_query(r, "type"), *status = sy_req_query(r, "status");
    sy_campaign_type t;
    sy_campaign_status s;
    if (type && !sy_campaign_type_parse(type, &t)) {
        sy_reply_problem(r, 400, "validation", "type",
                         "'type' must be checkin, task, lottery, referral or coupon_drop");
        return;
    }
    if (status && !sy_campaign_status_parse(status, &s)) {
        sy_reply_problem(r, 400, "validation", "status",
                         "'status' must be draft, pending_approval, scheduled, running, paused"
                         " or ended");
        return;
    }
    sy_app *app = sy_req_app(r);
    sy_conn *c = sy_store_acquire(app->store);
    sy_stmt *st = sy_conn_prepare(c, sql);
    int rc = SY_ERR;
    size_t n = 0, cap = 0;
    char(*ids)[SY_CAMPAIGN_ID_MAX + 1] = NULL;
    if (st) {
        sy_stmt_bind_text(st, 1, sy_req_principal(r)->tenant);
        sy_stmt_bind_text(st, 2, type ? type : "");
        while ((rc = sy_stmt_step(st)) == SY_ROW) {
            if (n == cap)
                ids = sy_xrealloc(ids, (cap = cap ? cap * 2 : 16) * sizeof *ids);
            snprintf(ids[n++], sizeof ids[0], "%s", sy_stmt_text(st, 0));
        }
        sy_stmt_reset(st);
    }
    json_t *items = json_array();
    int64_t now = sy_req_now_ms(r);
    for (size_t i = 0; i < n && rc == SY_DONE; i++) {
        sy_campaign *cp;
        rc = sy_campaign_load(c, sy_req_principal(r)->tenant, ids[i], &cp);
        if (rc == SY_OK) {
            if (!status || sy_campaign_effective(cp, now) == s)
                json_array_append_new(items, sy_campaign_json(cp, now));
            sy_campaign_free(cp);
            rc = SY_DONE;
        }
    }
    free(ids);
    if (rc != SY_DONE) {
        json_decref(items);
        sy_api_store_error(r, c);
    } else {
        sy_reply_json(r, 200, json_pack("{s:o}", "items", items));
    }
    sy_store_release(app->store, c);
}

/* ------------------------------------------------------------------ */
/* definition writes                                                   */

/* After a campaign changed: the offers API loads its catalogue again. */
static void offers_changed(sy_req *r, void *ctx)
{
    sy_api_offers_invalidate(sy_req_principal(r)->tenant);
}

typedef struct def_req {
    sy_campaign *cp;
    bool create;
} def_req;

static int reply_campaign(sy_conn *c, sy_req *r, const char *id, int status)
{
    sy_campaign *cp;
    int rc = sy_campaign_load(c, sy_req_principal(r)->tenant, id, &cp);
    if (rc != SY_OK)
        return rc < 0 ? rc : SY_ERR;
    if (status == 201) {
        char loc[96];
        snprintf(loc, sizeof loc, "/v1/campaigns/%s", id);
        sy_reply_header(r, "Location", loc);
    }
    sy_req_audit_target(r, id);
    sy_reply_json(r, status, sy_campaign_json(cp, sy_req_now_ms(r)));
    sy_campaign_free(cp);
    return SY_OK;
}

static int apply_definition(sy_conn *c, sy_req *r, void *ctx)
{
    def_req *d = ctx;
    const char *tenant = sy_req_principal(r)->tenant;
    sy_campaign_result res;
    int64_t now = sy_req_now_ms(r);
    int rc = d->create
                 ? sy_campaign_create(c, tenant, d->cp, sy_req_principal(r)->key_id, now, &res)
                 : sy_campaign_update(c, tenant, d->cp, sy_req_principal(r)->key_id, now, &res);
    sy_referral_rules rr;
    char field[96], msg[200];
    if (rc == SY_OK && d->cp->type == SY_CAMPAIGN_REFERRAL &&
        sy_referral_rules_parse(d->cp->extra, d->cp->point_type, &rr, field, sizeof field, msg,
                                sizeof msg))
        rc = sy_referral_check_refs(c, tenant, &rr, &res);
    sy_coupon_rules cr;
    if (rc == SY_OK && d->cp->type == SY_CAMPAIGN_COUPON_DROP &&
        sy_coupon_rules_parse(d->cp->extra, &cr, field, sizeof field, msg, sizeof msg))
        rc = sy_coupon_check_refs(c, tenant, &cr, &res);
    if (rc > 0) {
        reply_refusal(r, rc, &res, d->cp->id, NULL);
        return 1;
    }
    return rc != SY_OK ? rc : reply_campaign(c, r, d->cp->id, d->create ? 201 : 200);
}

void sy_api_campaigns_create(sy_req *r)
{
    json_t *body = sy_req_json_object(r);
    if (!body)
        return;
    sy_campaign *cp = campaign_new(r);
    const char *id = NULL;
    if (!sy_v_string(r, body, "id", false, SY_CAMPAIGN_ID_MAX, &id))
        return;
    if (id && !sy_campaign_id_valid(id)) {
        sy_reply_problem(r, 400, "validation", "/id",
                         "'id' must be 1 to %d characters of a-z 0-9 _ -, starting with a letter"
                         " or digit",
                         SY_CAMPAIGN_ID_MAX);
        return;
    }
    if (!v_definition(r, body, cp))
        return;
    if (id) {
        snprintf(cp->id, sizeof cp->id, "%s", id);
    } else {
        unsigned char b[6];
        char hex[13];
        randombytes_buf(b, sizeof b);
        sy_hex(b, sizeof b, hex);
        snprintf(cp->id, sizeof cp->id, "cmp_%s", hex);
    }
    def_req *d = sy_req_alloc(r, sizeof *d);
    *d = (def_req){cp, true};
    sy_req_write(r, apply_definition, offers_changed, d);
}

void sy_api_campaigns_put(sy_req *r)
{
    json_t *body = sy_req_json_object(r);
    if (!body)
        return;
    const char *id = sy_req_param(r, "id");
    const char *bid = json_string_value(json_object_get(body, "id"));
    if (json_object_get(body, "id") && (!bid || strcmp(bid, id) != 0)) {
        sy_reply_problem(r, 400, "validation", "/id", "'id' cannot change (it is the path's)");
        return;
    }
    if (!sy_campaign_id_valid(id)) {
        sy_reply_problem(r, 404, "not-found", NULL, "no campaign '%s'", id);
        return;
    }
    sy_campaign *cp = campaign_new(r);
    if (!v_definition(r, body, cp))
        return;
    snprintf(cp->id, sizeof cp->id, "%s", id);
    def_req *d = sy_req_alloc(r, sizeof *d);
    *d = (def_req){cp, false};
    sy_req_write(r, apply_definition, offers_changed, d);
}

/* ------------------------------------------------------------------ */
/* lifecycle                                                           */

typedef struct step_req {
    const char *id, *note;
    sy_campaign_action action;
} step_req;

static int apply_step(sy_conn *c, sy_req *r, void *ctx)
{
    step_req *s = ctx;
    sy_campaign_result res;
    int rc = sy_campaign_transition(c, sy_req_principal(r)->tenant, s->id, s->action,
                                    sy_req_principal(r)->key_id, s->note, sy_req_now_ms(r), &res);
    if (rc > 0) {
        reply_refusal(r, rc, &res, s->id, NULL);
        return 1;
    }
    return rc != SY_OK ? rc : reply_campaign(c, r, s->id, 200);
}

/* After a step: the offers API loads its catalogue again.  A reject
 * forgets the audience draws may have remembered: an approved campaign
 * never returns to draft (a rejected prize table leaves it paused,
 * campaign.c), so this is a safeguard, not a path that happens. */
static void step_committed(sy_req *r, void *ctx)
{
    step_req *s = ctx;
    sy_api_offers_invalidate(sy_req_principal(r)->tenant);
    if (s->action == SY_CACT_REJECT)
        sy_api_lottery_forget_audience(sy_req_principal(r)->tenant, s->id);
}

static void step(sy_req *r, sy_campaign_action a)
{
    static const char *const fields[] = {"note", NULL};
    step_req *s = sy_req_alloc(r, sizeof *s);
    memset(s, 0, sizeof *s);
    s->id = sy_req_param(r, "id");
    s->action = a;
    size_t len;
    sy_req_body(r, &len);
    if (len) {
        json_t *body = sy_req_json_object(r);
        if (!body || !sy_v_only(r, body, fields) ||
            !sy_v_string(r, body, "note", false, SY_CAMPAIGN_NOTE_MAX, &s->note))
            return;
    }
    if (!sy_campaign_id_valid(s->id)) {
        sy_reply_problem(r, 404, "not-found", NULL, "no campaign '%s'", s->id);
        return;
    }
    sy_req_write(r, apply_step, step_committed, s);
}

void sy_api_campaigns_submit(sy_req *r)
{
    step(r, SY_CACT_SUBMIT);
}
void sy_api_campaigns_approve(sy_req *r)
{
    step(r, SY_CACT_APPROVE);
}
void sy_api_campaigns_reject(sy_req *r)
{
    step(r, SY_CACT_REJECT);
}
void sy_api_campaigns_pause(sy_req *r)
{
    step(r, SY_CACT_PAUSE);
}
void sy_api_campaigns_resume(sy_req *r)
{
    step(r, SY_CACT_RESUME);
}
void sy_api_campaigns_end(sy_req *r)
{
    step(r, SY_CACT_END);
}

/* ------------------------------------------------------------------ */
/* audience                                                            */

/* Whether each of the n customers (dense ids; UINT32_MAX: not in the
 * index) is in the saved segment: in[i].  A segment that no longer exists
 * or evaluates admits no one.  Returns false (500 recorded) when the index
 * is not available. */
static bool in_segment(sy_req *r, const char *segment, size_t n, const char *const *nos, bool *in)
{
    sy_attr_set *schema;
    sy_index *ix = tenant_index(r, &schema);
    if (!ix)
        return false;
    sy_index_rdlock(ix);
    uint32_t *dense = sy_xmalloc((n ? n : 1) * sizeof *dense);
    roaring_bitmap_t *among = roaring_bitmap_create();
    for (size_t i = 0; i < n; i++) {
        if (!nos[i] || !sy_index_dense(ix, nos[i], &dense[i]))
            dense[i] = UINT32_MAX;
        else
            roaring_bitmap_add(among, dense[i]);
    }
    const sy_seg_node *node = sy_index_segment(ix, segment);
    sy_seg_error e;
    memset(&e, 0, sizeof e);
    roaring_bitmap_t *b =
        node ? sy_seg_eval_index_among(ix, schema, sy_req_now_ms(r), node, among, &e) : NULL;
    if (!b)
        sy_warn("campaigns %s: segment %s no longer evaluates; it admits no one",
                sy_req_principal(r)->tenant, segment);
    for (size_t i = 0; i < n; i++)
        in[i] = b && dense[i] != UINT32_MAX && roaring_bitmap_contains(b, dense[i]);
    if (b)
        roaring_bitmap_free(b);
    roaring_bitmap_free(among);
    free(dense);
    sy_index_unlock(ix);
    sy_attr_set_release(schema);
    return true;
}

/* ------------------------------------------------------------------ */
/* check-in                                                            */

typedef struct checkin_req {
    const char *id, *no;
    int64_t makeup_day; /* SY_CAMPAIGN_UNSET: today's check-in */
    bool in_audience;
    bool accepted; /* for the anti-abuse velocity rules (api_lottery.c) */
    void *abuse;
} checkin_req;

static json_t *outcome_json(const sy_campaign_outcome *o)
{
    json_t *rw = json_object();
    if (o->reward.item[0]) {
        json_object_set_new(rw, "item", json_string(o->reward.item));
        json_object_set_new(rw, "grant", json_string(o->grant_code));
    } else if (o->reward.points) {
        json_object_set_new(rw, "points", json_integer(o->reward.points));
        json_object_set_new(rw, "point_type", json_string(o->reward.point_type));
        json_object_set_new(rw, "ledger_entry", json_string(o->ledger_entry));
    }
    return json_object_size(rw) ? rw : (json_decref(rw), json_null());
}

static int apply_checkin(sy_conn *c, sy_req *r, void *ctx)
{
    checkin_req *q = ctx;
    const sy_principal *who = sy_req_principal(r);
    sy_campaign_who w = {.tenant = who->tenant,
                         .eligible = sy_api_reward_eligible,
                         .eligible_ud = r,
                         .customer_no = q->no,
                         .in_audience = q->in_audience,
                         .operator_id = who->key_id,
                         .now_ms = sy_req_now_ms(r)};
    sy_campaign_outcome o;
    int rc = sy_campaign_checkin(c, &w, q->id, q->makeup_day, &o);
    if (rc == SY_CAMPAIGN_HOLDOUT) {
        /* the holdout is recorded: this refusal commits */
        sy_req_no_audit(r);
        reply_refusal(r, rc, &o.why, q->id, q->no);
        return 0;
    }
    if (rc > 0) {
        reply_refusal(r, rc, &o.why, q->id, q->no);
        return 1;
    }
    if (rc != SY_OK)
        return rc;
    char day[11];
    sy_format_date(o.day, day);
    json_t *body = json_pack("{s:s, s:s, s:s, s:s, s:i, s:b, s:o}", "campaign", q->id,
                             "customer_no", q->no, "action", o.action_id, "day", day, "streak",
                             o.streak, "makeup", o.makeup, "reward", outcome_json(&o));
    if (o.makeup) {
        json_object_set_new(body, "paid_points", json_integer(o.paid_points));
        json_object_set_new(body, "ledger_entry", json_string(o.ledger_entry));
    }
    sy_req_audit_target(r, q->id);
    sy_reply_json(r, 201, body);
    q->accepted = true;
    return 0;
}

/* Before apply_checkin runs again in a new transaction (writer.h). */
static void checkin_reset(sy_req *r, void *ctx)
{
    (void)r;
    checkin_req *q = ctx;
    q->accepted = false;
}

static void checkin_committed(sy_req *r, void *ctx)
{
    checkin_req *q = ctx;
    if (q->accepted)
        sy_api_abuse_accepted(r, q->abuse);
}

void sy_api_campaigns_checkin(sy_req *r)
{
    static const char *const fields[] = {"customer_no", "day", NULL};
    json_t *body = sy_req_json_object(r);
    checkin_req *q = sy_req_alloc(r, sizeof *q);
    memset(q, 0, sizeof *q);
    q->makeup_day = SY_CAMPAIGN_UNSET;
    q->id = sy_req_param(r, "id");
    const char *day = NULL;
    if (!body || !sy_v_only(r, body, fields) ||
        !sy_v_string(r, body, "customer_no", true, SY_CUSTOMER_NO_MAX, &q->no) ||
        !sy_v_string(r, body, "day", false, 10, &day))
        return;
    if (!sy_customer_no_valid(q->no)) {
        sy_reply_problem(r, 400, "validation", "/customer_no",
                         "'customer_no' must be 1-64 characters of A-Z a-z 0-9 _ . : -");
        return;
    }
    if (day && !sy_parse_date(day, &q->makeup_day)) {
        sy_reply_problem(r, 400, "validation", "/day",
                         "'day' (a make-up check-in) must be a date YYYY-MM-DD");
        return;
    }
    if (!sy_req_header(r, "Idempotency-Key")) {
        sy_reply_problem(r, 400, "validation", "Idempotency-Key",
                         "a check-in needs an Idempotency-Key, so that a retry checks in once");
        return;
    }
    if (!sy_campaign_id_valid(q->id)) {
        sy_reply_problem(r, 404, "not-found", NULL, "no campaign '%s'", q->id);
        return;
    }
    if (!sy_api_abuse_gate(r, 0, q->no, &q->abuse))
        return;
    sy_campaign *cp = read_campaign(r, q->id);
    if (!cp)
        return;
    q->in_audience = true;
    bool ok = !cp->segment_id[0] || in_segment(r, cp->segment_id, 1, &q->no, &q->in_audience);
    sy_campaign_free(cp);
    if (ok) {
        sy_req_write(r, apply_checkin, checkin_committed, q);
        sy_req_write_rerun(r, checkin_reset);
    }
}

/* GET /v1/campaigns/{id}/customers/{customer_no}: the customer's standing. */
void sy_api_campaigns_customer(sy_req *r)
{
    static const char sql[] =
        "SELECT kind, slot, day, target_day, streak, task, points, point_type, item, created_at,"
        " id FROM campaign_actions WHERE tenant_id = $1 AND campaign_id = $2 AND customer_no = $3"
        " ORDER BY created_at DESC, id LIMIT 100";
    static const char sql_zone[] = "SELECT timezone FROM tenants WHERE id = $1";
    const char *id = sy_req_param(r, "id"), *no = sy_req_param(r, "customer_no");
    if (!sy_campaign_id_valid(id)) {
        sy_reply_problem(r, 404, "not-found", NULL, "no campaign '%s'", id);
        return;
    }
    sy_campaign *cp = read_campaign(r, id);
    if (!cp)
        return;
    const char *tenant = sy_req_principal(r)->tenant;
    sy_app *app = sy_req_app(r);
    sy_conn *c = sy_store_acquire(app->store);
    char zone[65] = "UTC";
    sy_stmt *st = sy_conn_prepare(c, sql_zone);
    int rc = st ? SY_OK : SY_ERR;
    if (st) {
        sy_stmt_bind_text(st, 1, tenant);
        if (sy_stmt_step(st) == SY_ROW)
            snprintf(zone, sizeof zone, "%s", sy_stmt_text(st, 0));
        sy_stmt_reset(st);
    }
    int64_t now = sy_req_now_ms(r), today = sy_campaign_day(zone, now);
    int streak = 0;
    bool done = false;
    if (rc == SY_OK)
        rc = sy_campaign_streak(c, tenant, id, no, today, &streak, &done);
    json_t *actions = json_array();
    if (rc == SY_OK && (st = sy_conn_prepare(c, sql))) {
        sy_stmt_bind_text(st, 1, tenant);
        sy_stmt_bind_text(st, 2, id);
        sy_stmt_bind_text(st, 3, no);
        while ((rc = sy_stmt_step(st)) == SY_ROW) {
            char d[11];
            sy_format_date(sy_stmt_is_null(st, 3) ? sy_stmt_i64(st, 2) : sy_stmt_i64(st, 3), d);
            json_t *a = json_pack("{s:s, s:s, s:s, s:s, s:o}", "id", sy_stmt_text(st, 10), "kind",
                                  sy_stmt_text(st, 0), "slot", sy_stmt_text(st, 1), "day", d,
                                  "created_at", sy_json_time(sy_stmt_i64(st, 9)));
            if (!sy_stmt_is_null(st, 4))
                json_object_set_new(a, "streak", json_integer(sy_stmt_i64(st, 4)));
            if (!sy_stmt_is_null(st, 5))
                json_object_set_new(a, "task", json_string(sy_stmt_text(st, 5)));
            if (sy_stmt_i64(st, 6))
                json_object_set_new(a, "points", json_integer(sy_stmt_i64(st, 6)));
            if (!sy_stmt_is_null(st, 8))
                json_object_set_new(a, "item", json_string(sy_stmt_text(st, 8)));
            json_array_append_new(actions, a);
        }
        sy_stmt_reset(st);
        rc = rc == SY_DONE ? SY_OK : rc;
    } else if (rc == SY_OK) {
        rc = SY_ERR;
    }
    if (rc != SY_OK) {
        json_decref(actions);
        sy_api_store_error(r, c);
    } else {
        char d[11];
        sy_format_date(today, d);
        sy_reply_json(r, 200,
                      json_pack("{s:s, s:s, s:s, s:i, s:b, s:b, s:o}", "campaign", id,
                                "customer_no", no, "today", d, "streak", streak, "checked_in_today",
                                done, "holdout",
                                sy_campaign_in_holdout(tenant, id, no, cp->holdout_percent),
                                "actions", actions));
    }
    sy_store_release(app->store, c);
    sy_campaign_free(cp);
}

/* ------------------------------------------------------------------ */
/* tasks: the events hook                                              */

struct sy_task_plan {
    size_t n;  /* events */
    int ncamp; /* running task campaigns */
    char ids[MAX_TASK_CAMPAIGNS][SY_CAMPAIGN_ID_MAX + 1];
    bool *in; /* in[k * n + i]: event i's customer is in campaign k's audience */
    sy_campaign *cp[MAX_TASK_CAMPAIGNS]; /* loaded by the writer */
    bool loaded;
    int64_t now_ms;
};

void sy_api_task_plan_free(sy_task_plan *p)
{
    if (!p)
        return;
    for (int k = 0; k < p->ncamp; k++)
        sy_campaign_free(p->cp[k]);
    free(p->in);
    free(p);
}

void sy_api_task_plan_reset(sy_task_plan *p)
{
    if (!p)
        return;
    for (int k = 0; k < p->ncamp; k++) {
        sy_campaign_free(p->cp[k]);
        p->cp[k] = NULL;
    }
    p->loaded = false;
}

sy_task_plan *sy_api_task_plan(sy_req *r, size_t n, const char *const *nos, bool *failed)
{
    sy_app *app = sy_req_app(r);
    const char *tenant = sy_req_principal(r)->tenant;
    int64_t now = sy_req_now_ms(r);
    *failed = false;
    char(*ids)[SY_CAMPAIGN_ID_MAX + 1] = sy_xmalloc(MAX_TASK_CAMPAIGNS * sizeof *ids);
    int ncamp = 0;
    sy_conn *c = sy_store_acquire(app->store);
    int rc = sy_campaign_running_tasks(c, tenant, now, ids, MAX_TASK_CAMPAIGNS, &ncamp);
    sy_task_plan *p = NULL;
    if (rc == SY_OK && ncamp > 0) {
        p = sy_xcalloc(1, sizeof *p);
        p->n = n;
        p->now_ms = now;
        p->ncamp = ncamp;
        p->in = sy_xcalloc((size_t)ncamp * (n ? n : 1), sizeof *p->in);
        for (int k = 0; k < ncamp && rc == SY_OK; k++) {
            snprintf(p->ids[k], sizeof p->ids[k], "%s", ids[k]);
            sy_campaign *cp;
            rc = sy_campaign_load(c, tenant, ids[k], &cp);
            if (rc != SY_OK)
                break;
            if (!cp->segment_id[0]) {
                for (size_t i = 0; i < n; i++)
                    p->in[(size_t)k * n + i] = true;
            } else if (!in_segment(r, cp->segment_id, n, nos, &p->in[(size_t)k * n])) {
                rc = SY_ERR;
            }
            sy_campaign_free(cp);
        }
    }
    if (rc != SY_OK) {
        *failed = true;
        if (!sy_req_replied(r))
            sy_api_store_error(r, c);
        sy_api_task_plan_free(p);
        p = NULL;
    }
    sy_store_release(app->store, c);
    free(ids);
    return p;
}

/* The reason code of a task's refusal, as the problem type a check-in
 * would answer with ("condition-not-met": the event's dwell time or props
 * did not meet the task's conditions). */
static const char *task_refusal(int rc, const sy_campaign_result *why)
{
    static const struct {
        int rc;
        const char *type;
    } k[] = {{SY_CAMPAIGN_NOT_RUNNING, "not-running"},
             {SY_CAMPAIGN_NO_CUSTOMER, "not-found"},
             {SY_CAMPAIGN_MERGED, "conflict"},
             {SY_CAMPAIGN_NOT_IN_AUDIENCE, "not-in-audience"},
             {SY_CAMPAIGN_UNSUITABLE, "unsuitable"},
             {SY_CAMPAIGN_HOLDOUT, "holdout"},
             {SY_CAMPAIGN_ALREADY_DONE, "already-done"},
             {SY_CAMPAIGN_LIMIT_REACHED, "limit-reached"},
             {SY_CAMPAIGN_BUDGET_EXHAUSTED, "budget-exhausted"},
             {SY_CAMPAIGN_REWARD_REFUSED, "reward-refused"},
             {SY_CAMPAIGN_NOT_MET, "condition-not-met"}};
    if (rc == SY_CAMPAIGN_WRONG_TYPE && !strcmp(why->other, "no-match"))
        return "condition-not-met";
    for (size_t i = 0; i < SY_ARRAY_LEN(k); i++)
        if (k[i].rc == rc)
            return k[i].type;
    return "refused";
}

int sy_api_task_apply(sy_conn *c, sy_req *r, sy_task_plan *p, size_t i, const char *no,
                      const char *name, const char *event_id, int64_t ts, int64_t dwell,
                      const char *props, json_t *rewards, json_t *refusals)
{
    const sy_principal *who = sy_req_principal(r);
    if (!p->loaded) {
        for (int k = 0; k < p->ncamp; k++) {
            int rc = sy_campaign_load(c, who->tenant, p->ids[k], &p->cp[k]);
            if (rc < 0)
                return rc;
        }
        p->loaded = true;
    }
    for (int k = 0; k < p->ncamp; k++) {
        sy_campaign *cp = p->cp[k];
        for (int t = 0; cp && t < cp->ntasks; t++) {
            if (strcmp(cp->tasks[t].event, name) != 0)
                continue;
            sy_campaign_who w = {.tenant = who->tenant,
                                 .eligible = sy_api_reward_eligible,
                                 .eligible_ud = r,
                                 .customer_no = no,
                                 .in_audience = p->in[(size_t)k * p->n + i],
                                 .operator_id = who->key_id,
                                 .now_ms = p->now_ms};
            sy_campaign_outcome o;
            int rc = sy_campaign_task_event(c, cp, t, &w, name, event_id, ts, dwell, props, &o);
            if (rc < 0)
                return rc;
            if (rc == SY_OK) {
                json_t *x = json_pack("{s:s, s:s, s:s, s:s, s:o}", "event_id", event_id,
                                      "customer_no", no, "campaign", cp->id, "task",
                                      cp->tasks[t].code, "reward", outcome_json(&o));
                json_array_append_new(rewards, x);
            } else if (refusals) {
                /* every refusal says why (the catalogue's, a limit's or
                 * budget's detail in `detail`) */
                json_t *x = json_pack("{s:s, s:s, s:s, s:s, s:s}", "event_id", event_id,
                                      "customer_no", no, "campaign", cp->id, "task",
                                      cp->tasks[t].code, "reason", task_refusal(rc, &o.why));
                if (o.why.other[0] && strcmp(o.why.other, "no-match") != 0)
                    json_object_set_new(x, "detail", json_string(o.why.other));
                json_array_append_new(refusals, x);
            }
        }
    }
    return SY_OK;
}

/* ------------------------------------------------------------------ */
/* for the handlers of other campaign types (api_lottery.c)            */

void sy_api_campaign_refusal(sy_req *r, int rc, const struct sy_campaign_result *why,
                             const char *id, const char *no)
{
    reply_refusal(r, rc, why, id, no);
}

bool sy_api_campaign_audience(sy_req *r, const char *segment, const char *no, bool *in)
{
    return in_segment(r, segment, 1, &no, in);
}

sy_campaign *sy_api_campaign_read(sy_req *r, const char *id)
{
    return read_campaign(r, id);
}

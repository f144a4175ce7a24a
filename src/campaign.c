/* campaign.c — the rules of the campaign engine (campaign.h,
 * docs/campaigns.md): the definition and its checks, the lifecycle with
 * maker-checker, admission (schedule, open hours, audience, suitability,
 * holdout), check-in with streaks and make-up days, tasks rewarded for
 * events, limits and budget.
 *
 * As in ledger.c and benefits.c, each operation reads first and writes only
 * once every rule holds; rewards go through sy_ledger_earn and
 * sy_benefit_issue_one in the same transaction, so a reward, the
 * participation that earned it and the budget it used commit together. */
#include "campaign.h"
#include "benefits.h"
#include "ledger.h"
#include "util.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DAY_MS 86400000LL
#define MAX_DWELL_MS 86400000LL

/* ------------------------------------------------------------------ */
/* names                                                               */

static const char *const k_types[] = {"checkin", "task", "lottery", "referral", "coupon_drop"};
static const char *const k_statuses[] = {"draft",   "pending_approval", "scheduled",
                                         "running", "paused",           "ended"};
static const char *const k_actions[] = {"submit", "approve", "reject", "pause", "resume", "end"};
static const char *const k_periods[] = {"day", "week", "campaign"};

static bool parse_name(const char *const *names, size_t n, const char *s, int *out)
{
    for (size_t i = 0; s && i < n; i++)
        if (!strcmp(s, names[i])) {
            *out = (int)i;
            return true;
        }
    return false;
}

const char *sy_campaign_type_name(sy_campaign_type t)
{
    return (unsigned)t < SY_ARRAY_LEN(k_types) ? k_types[t] : "checkin";
}

bool sy_campaign_type_parse(const char *s, sy_campaign_type *out)
{
    int i;
    if (!parse_name(k_types, SY_ARRAY_LEN(k_types), s, &i))
        return false;
    *out = (sy_campaign_type)i;
    return true;
}

const char *sy_campaign_status_name(sy_campaign_status s)
{
    return (unsigned)s < SY_ARRAY_LEN(k_statuses) ? k_statuses[s] : "draft";
}

bool sy_campaign_status_parse(const char *s, sy_campaign_status *out)
{
    int i;
    if (!parse_name(k_statuses, SY_ARRAY_LEN(k_statuses), s, &i))
        return false;
    *out = (sy_campaign_status)i;
    return true;
}

const char *sy_campaign_action_name(sy_campaign_action a)
{
    return (unsigned)a < SY_ARRAY_LEN(k_actions) ? k_actions[a] : "submit";
}

bool sy_campaign_action_parse(const char *s, sy_campaign_action *out)
{
    int i;
    if (!parse_name(k_actions, SY_ARRAY_LEN(k_actions), s, &i))
        return false;
    *out = (sy_campaign_action)i;
    return true;
}

const char *sy_campaign_period_name(sy_campaign_period p)
{
    return (unsigned)p < SY_ARRAY_LEN(k_periods) ? k_periods[p] : "day";
}

bool sy_campaign_id_valid(const char *s)
{
    size_t n = strlen(s);
    return n <= SY_CAMPAIGN_ID_MAX && sy_benefit_code_valid(s);
}

/* An event name: [a-z][a-z0-9_]* of at most 64 (as POST /v1/events). */
static bool event_name_valid(const char *s)
{
    return sy_ident_valid(s, 64);
}

/* ------------------------------------------------------------------ */
/* the rules: parse, check, encode                                     */

bool sy_perr_fail(sy_perr *e, const char *field, const char *fmt, ...)
{
    snprintf(e->field, e->fieldlen, "%s", field);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, e->msglen, fmt, ap);
    va_end(ap);
    return false;
}

bool sy_perr_only(sy_perr *e, json_t *o, const char *ptr, const char *const *fields)
{
    const char *key;
    json_t *v;
    json_object_foreach (o, key, v) {
        bool known = false;
        for (const char *const *f = fields; *f && !known; f++)
            known = !strcmp(*f, key);
        if (!known) {
            char p[160];
            snprintf(p, sizeof p, "%s/%.60s", ptr, key);
            return sy_perr_fail(e, p, "unknown field '%.60s'", key);
        }
    }
    return true;
}

bool sy_perr_int(sy_perr *e, json_t *o, const char *ptr, const char *name, bool required,
                 int64_t min, int64_t max, int64_t *out)
{
    char p[160];
    snprintf(p, sizeof p, "%s/%s", ptr, name);
    json_t *v = json_object_get(o, name);
    if (!v || json_is_null(v))
        return required ? sy_perr_fail(e, p, "'%s' is required", name) : true;
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
        return sy_perr_fail(e, p, "'%s' must be an integer from %lld to %lld", name, (long long)min,
                            (long long)max);
    *out = json_integer_value(v);
    return true;
}

/* A string member that passes valid(); absent leaves *out. */
static bool code_member(sy_perr *e, json_t *o, const char *ptr, const char *name, bool required,
                        bool (*valid)(const char *), const char *what, char *out, size_t outlen)
{
    char p[160];
    snprintf(p, sizeof p, "%s/%s", ptr, name);
    json_t *v = json_object_get(o, name);
    if (!v || json_is_null(v))
        return required ? sy_perr_fail(e, p, "'%s' is required", name) : true;
    const char *s = json_string_value(v);
    if (!s || strlen(s) >= outlen || !valid(s))
        return sy_perr_fail(e, p, "'%s' must be %s", name, what);
    snprintf(out, outlen, "%s", s);
    return true;
}

static bool reward_parse(sy_perr *e, json_t *o, const char *ptr, const char *default_type,
                         bool with_day, sy_campaign_reward *out)
{
    static const char *const fields[] = {"points", "point_type", "item", NULL};
    static const char *const fields_day[] = {"day", "points", "point_type", "item", NULL};
    memset(out, 0, sizeof *out);
    if (!json_is_object(o))
        return sy_perr_fail(e, ptr,
                            "a reward must be an object with 'points' (and 'point_type') or"
                            " 'item'");
    if (!sy_perr_only(e, o, ptr, with_day ? fields_day : fields))
        return false;
    bool has_points = json_object_get(o, "points") != NULL;
    bool has_item = json_object_get(o, "item") != NULL;
    if (has_points == has_item) {
        char p[160];
        snprintf(p, sizeof p, "%s/points", ptr);
        return sy_perr_fail(e, p, "a reward gives 'points' or an 'item' (one of them)");
    }
    if (has_item)
        return code_member(e, o, ptr, "item", true, sy_benefit_code_valid,
                           "a benefit item code (see GET /v1/benefits/items)", out->item,
                           sizeof out->item) &&
               (json_object_get(o, "point_type") == NULL ||
                sy_perr_fail(e, ptr, "an item reward takes no 'point_type'"));
    if (!sy_perr_int(e, o, ptr, "points", true, 1, SY_CAMPAIGN_POINTS_MAX, &out->points))
        return false;
    snprintf(out->point_type, sizeof out->point_type, "%s", default_type);
    if (!code_member(e, o, ptr, "point_type", false, sy_point_type_code_valid,
                     "a point type code (see GET /v1/point-types)", out->point_type,
                     sizeof out->point_type))
        return false;
    if (!out->point_type[0]) {
        char p[160];
        snprintf(p, sizeof p, "%s/point_type", ptr);
        return sy_perr_fail(e, p,
                            "'point_type' is required here, or as the campaign's 'point_type'");
    }
    return true;
}

static bool checkin_parse(sy_perr *e, sy_campaign *cp, json_t *s)
{
    static const char *const fields[] = {"rewards", "cycle", "makeup", NULL};
    static const char *const mfields[] = {"cost", "point_type", "max_days_back", NULL};
    if (!s || json_is_null(s))
        return sy_perr_fail(e, "/checkin",
                            "a check-in campaign needs 'checkin' with its 'rewards'");
    if (!json_is_object(s))
        return sy_perr_fail(e, "/checkin", "'checkin' must be an object");
    if (!sy_perr_only(e, s, "/checkin", fields))
        return false;
    json_t *rw = json_object_get(s, "rewards");
    if (!json_is_array(rw) || json_array_size(rw) < 1 ||
        json_array_size(rw) > SY_CAMPAIGN_STREAK_DAYS_MAX)
        return sy_perr_fail(e, "/checkin/rewards",
                            "'rewards' must be an array of 1 to %d rewards by streak day, e.g."
                            " [{\"day\": 1, \"points\": 5}]",
                            SY_CAMPAIGN_STREAK_DAYS_MAX);
    memset(cp->streak, 0, sizeof cp->streak);
    cp->streak_days = 0;
    size_t i;
    json_t *v;
    json_array_foreach (rw, i, v) {
        char ptr[64];
        snprintf(ptr, sizeof ptr, "/checkin/rewards/%zu", i);
        int64_t day = 0;
        if (!json_is_object(v))
            return sy_perr_fail(e, ptr, "a reward must be an object with 'day'");
        if (!sy_perr_int(e, v, ptr, "day", true, 1, SY_CAMPAIGN_STREAK_DAYS_MAX, &day))
            return false;
        sy_campaign_reward *r = &cp->streak[day - 1];
        if (r->points || r->item[0]) {
            char p[80];
            snprintf(p, sizeof p, "%s/day", ptr);
            return sy_perr_fail(e, p, "streak day %lld has a reward already", (long long)day);
        }
        if (!reward_parse(e, v, ptr, cp->point_type, true, r))
            return false;
        if (day > cp->streak_days)
            cp->streak_days = (int)day;
    }
    json_t *cy = json_object_get(s, "cycle");
    cp->cycle = false;
    if (cy && !json_is_null(cy)) {
        if (!json_is_boolean(cy))
            return sy_perr_fail(e, "/checkin/cycle", "'cycle' must be true or false");
        cp->cycle = json_is_true(cy);
    }
    cp->makeup_cost = SY_CAMPAIGN_UNSET;
    cp->makeup_type[0] = '\0';
    cp->makeup_days = 0;
    json_t *mk = json_object_get(s, "makeup");
    if (mk && !json_is_null(mk)) {
        if (!json_is_object(mk))
            return sy_perr_fail(
                e, "/checkin/makeup",
                "'makeup' must be an object with 'cost' (points) and 'max_days_back'");
        int64_t back = 7;
        if (!sy_perr_only(e, mk, "/checkin/makeup", mfields) ||
            !sy_perr_int(e, mk, "/checkin/makeup", "cost", true, 1, SY_CAMPAIGN_POINTS_MAX,
                         &cp->makeup_cost) ||
            !sy_perr_int(e, mk, "/checkin/makeup", "max_days_back", false, 1,
                         SY_CAMPAIGN_MAKEUP_DAYS_MAX, &back))
            return false;
        cp->makeup_days = (int)back;
        snprintf(cp->makeup_type, sizeof cp->makeup_type, "%s", cp->point_type);
        if (!code_member(e, mk, "/checkin/makeup", "point_type", false, sy_point_type_code_valid,
                         "a point type code", cp->makeup_type, sizeof cp->makeup_type))
            return false;
        if (!cp->makeup_type[0])
            return sy_perr_fail(e, "/checkin/makeup/point_type",
                                "'point_type' is required here, or as the campaign's 'point_type'");
    }
    return true;
}

static bool task_code_valid(const char *s)
{
    return sy_benefit_code_valid(s);
}

/* A property a task's condition names: 1 to 64 characters of A-Z a-z 0-9 _
 * (a top-level member of the event's props). */
static bool prop_name_valid(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return false;
    return true;
}

/* A value a condition compares with: a string (at most 256 bytes), a
 * number or a boolean. */
static bool prop_scalar(const json_t *v)
{
    return (json_is_string(v) && json_string_length(v) <= 256) || json_is_number(v) ||
           json_is_boolean(v);
}

/* -1, 0, 1: a against b, both numbers; integers exactly, else as doubles. */
static int num_cmp(const json_t *a, const json_t *b)
{
    if (json_is_integer(a) && json_is_integer(b)) {
        json_int_t x = json_integer_value(a), y = json_integer_value(b);
        return x < y ? -1 : x > y;
    }
    double x = json_number_value(a), y = json_number_value(b);
    return x < y ? -1 : x > y;
}

static bool prop_equal(const json_t *a, const json_t *b)
{
    if (json_is_number(a) && json_is_number(b))
        return num_cmp(a, b) == 0;
    return json_equal((json_t *)a, (json_t *)b);
}

static const char *const k_prop_ops[] = {"gt", "gte", "lt", "lte"};

/* A task's "props": an object of 1 to SY_TASK_PROPS_MAX conditions, each
 * a value the property must equal, or an object of "in" (a list of values)
 * and bounds "gt", "gte", "lt", "lte" (numbers), all of which must hold. */
static bool task_props_parse(sy_perr *e, json_t *v, const char *ptr)
{
    static const char *const ops[] = {"in", "gt", "gte", "lt", "lte", NULL};
    char p[160];
    snprintf(p, sizeof p, "%s/props", ptr);
    if (!json_is_object(v) || json_object_size(v) < 1 || json_object_size(v) > SY_TASK_PROPS_MAX)
        return sy_perr_fail(e, p,
                            "'props' must be an object of 1 to %d conditions on the event's props",
                            SY_TASK_PROPS_MAX);
    const char *key;
    json_t *c;
    json_object_foreach (v, key, c) {
        if (!prop_name_valid(key))
            return sy_perr_fail(e, p,
                                "a property name must be 1 to 64 characters of A-Z a-z 0-9 _");
        char q[240];
        snprintf(q, sizeof q, "%s/%s", p, key);
        if (prop_scalar(c))
            continue;
        if (!json_is_object(c) || json_object_size(c) < 1)
            return sy_perr_fail(e, q,
                                "a condition is a string (at most 256 bytes), number or boolean"
                                " the property must equal, or an object of in, gt, gte, lt, lte");
        if (!sy_perr_only(e, c, q, ops))
            return false;
        json_t *in = json_object_get(c, "in");
        if (in) {
            if (!json_is_array(in) || json_array_size(in) < 1 ||
                json_array_size(in) > SY_TASK_PROP_VALUES_MAX)
                return sy_perr_fail(e, q, "'in' must be a list of 1 to %d values",
                                    SY_TASK_PROP_VALUES_MAX);
            size_t i;
            json_t *x;
            json_array_foreach (in, i, x)
                if (!prop_scalar(x))
                    return sy_perr_fail(e, q,
                                        "'in' lists strings (at most 256 bytes), numbers or"
                                        " booleans");
        }
        const json_t *lo = NULL, *hi = NULL;
        bool lo_open = false, hi_open = false;
        for (size_t k = 0; k < SY_ARRAY_LEN(k_prop_ops); k++) {
            json_t *b = json_object_get(c, k_prop_ops[k]);
            if (!b)
                continue;
            if (!json_is_number(b))
                return sy_perr_fail(e, q, "'%s' must be a number", k_prop_ops[k]);
            if (k < 2) {
                if (lo)
                    return sy_perr_fail(e, q, "give 'gt' or 'gte', not both");
                lo = b, lo_open = k == 0;
            } else {
                if (hi)
                    return sy_perr_fail(e, q, "give 'lt' or 'lte', not both");
                hi = b, hi_open = k == 2;
            }
        }
        if (lo && hi) {
            int d = num_cmp(lo, hi);
            if (d > 0 || (d == 0 && (lo_open || hi_open)))
                return sy_perr_fail(e, q, "the bounds leave no value that could meet them");
        }
    }
    return true;
}

/* The first of the condition's requirements that v fails, or NULL. */
static const char *prop_fails(const json_t *cond, const json_t *v)
{
    if (!json_is_object(cond))
        return prop_equal(cond, v) ? NULL : "is not the task's value";
    json_t *in = json_object_get(cond, "in");
    if (in) {
        bool any = false;
        size_t i;
        json_t *x;
        json_array_foreach (in, i, x)
            any = any || prop_equal(x, v);
        if (!any)
            return "is none of the task's values";
    }
    for (size_t k = 0; k < SY_ARRAY_LEN(k_prop_ops); k++) {
        json_t *b = json_object_get(cond, k_prop_ops[k]);
        if (!b)
            continue;
        if (!json_is_number(v))
            return "is not a number";
        int d = num_cmp(v, b);
        bool ok = k == 0 ? d > 0 : k == 1 ? d >= 0 : k == 2 ? d < 0 : d <= 0;
        if (!ok)
            return k == 0   ? "is not above the task's bound"
                   : k == 1 ? "is below the task's bound"
                   : k == 2 ? "is not below the task's bound"
                            : "is above the task's bound";
    }
    return NULL;
}

bool sy_campaign_props_meet(const json_t *conditions, const json_t *props, char *why, size_t n)
{
    if (!conditions)
        return true;
    const char *key;
    json_t *cond;
    json_object_foreach ((json_t *)conditions, key, cond) {
        json_t *v = json_is_object(props) ? json_object_get(props, key) : NULL;
        const char *fails = !v || json_is_null(v) ? "is missing" : prop_fails(cond, v);
        if (fails) {
            snprintf(why, n, "props.%.64s %s", key, fails);
            return false;
        }
    }
    return true;
}

static bool tasks_parse(sy_perr *e, sy_campaign *cp, json_t *s)
{
    static const char *const fields[] = {"code",   "event", "min_dwell_ms", "props", "period",
                                         "reward", NULL};
    if (!json_is_array(s) || json_array_size(s) < 1 || json_array_size(s) > SY_CAMPAIGN_TASKS_MAX)
        return sy_perr_fail(e, "/tasks", "a task campaign needs 'tasks': an array of 1 to %d tasks",
                            SY_CAMPAIGN_TASKS_MAX);
    cp->ntasks = 0;
    size_t i;
    json_t *v;
    json_array_foreach (s, i, v) {
        char ptr[64];
        snprintf(ptr, sizeof ptr, "/tasks/%zu", i);
        sy_campaign_task *t = &cp->tasks[i];
        memset(t, 0, sizeof *t);
        t->min_dwell_ms = SY_CAMPAIGN_UNSET;
        if (!json_is_object(v))
            return sy_perr_fail(e, ptr,
                                "a task must be an object with code, event, period and reward");
        if (!sy_perr_only(e, v, ptr, fields) ||
            !code_member(e, v, ptr, "code", true, task_code_valid,
                         "1 to 64 characters of a-z 0-9 _ -", t->code, sizeof t->code) ||
            !code_member(e, v, ptr, "event", true, event_name_valid,
                         "an event name matching [a-z][a-z0-9_]*", t->event, sizeof t->event) ||
            !sy_perr_int(e, v, ptr, "min_dwell_ms", false, 0, MAX_DWELL_MS, &t->min_dwell_ms))
            return false;
        json_t *props = json_object_get(v, "props");
        if (props && !json_is_null(props)) {
            if (!task_props_parse(e, props, ptr))
                return false;
            /* the campaign's extra holds one entry per task, its
             * conditions or null; the task borrows its own */
            if (!cp->extra)
                cp->extra = json_array();
            while (json_array_size(cp->extra) < i)
                json_array_append_new(cp->extra, json_null());
            json_array_append_new(cp->extra, json_deep_copy(props));
            t->props = json_array_get(cp->extra, i);
        }
        for (size_t k = 0; k < i; k++)
            if (!strcmp(cp->tasks[k].code, t->code)) {
                char p[80];
                snprintf(p, sizeof p, "%s/code", ptr);
                return sy_perr_fail(e, p, "task code '%s' appears twice", t->code);
            }
        int period;
        char p[80];
        snprintf(p, sizeof p, "%s/period", ptr);
        if (!parse_name(k_periods, SY_ARRAY_LEN(k_periods),
                        json_string_value(json_object_get(v, "period")), &period))
            return sy_perr_fail(e, p, "'period' must be day, week or campaign");
        t->period = (sy_campaign_period)period;
        snprintf(p, sizeof p, "%s/reward", ptr);
        json_t *rw = json_object_get(v, "reward");
        if (!rw)
            return sy_perr_fail(e, p, "'reward' is required");
        if (!reward_parse(e, rw, p, cp->point_type, false, &t->reward))
            return false;
        cp->ntasks++;
    }
    return true;
}

bool sy_campaign_rules_parse(sy_campaign *cp, json_t *in, char *field, size_t fieldlen, char *msg,
                             size_t msglen)
{
    sy_perr e = {field, msg, fieldlen, msglen};
    json_decref(cp->extra);
    cp->extra = NULL;
    cp->streak_days = 0;
    cp->ntasks = 0;
    cp->makeup_cost = SY_CAMPAIGN_UNSET;
    for (size_t i = 0; i < SY_ARRAY_LEN(k_types); i++) {
        /* a section of another type is a mistake worth naming */
        const char *sec = i == SY_CAMPAIGN_TASK ? "tasks" : k_types[i];
        if (i != (size_t)cp->type && json_object_get(in, sec)) {
            char p[40];
            snprintf(p, sizeof p, "/%s", sec);
            return sy_perr_fail(&e, p, "'%s' belongs to campaigns of type %s, not %s", sec,
                                k_types[i], k_types[cp->type]);
        }
    }
    switch (cp->type) {
    case SY_CAMPAIGN_CHECKIN:
        return checkin_parse(&e, cp, json_object_get(in, "checkin"));
    case SY_CAMPAIGN_TASK:
        return tasks_parse(&e, cp, json_object_get(in, "tasks"));
    default: {
        const char *sec = k_types[cp->type];
        json_t *s = json_object_get(in, sec);
        if (s && !json_is_null(s)) {
            if (!json_is_object(s)) {
                char p[40];
                snprintf(p, sizeof p, "/%s", sec);
                return sy_perr_fail(&e, p, "'%s' must be an object", sec);
            }
            cp->extra = json_deep_copy(s);
        }
        return true;
    }
    }
}

static json_t *reward_json(const sy_campaign_reward *r, int day)
{
    json_t *o = json_object();
    if (day > 0)
        json_object_set_new(o, "day", json_integer(day));
    if (r->item[0]) {
        json_object_set_new(o, "item", json_string(r->item));
    } else {
        json_object_set_new(o, "points", json_integer(r->points));
        json_object_set_new(o, "point_type", json_string(r->point_type));
    }
    return o;
}

json_t *sy_campaign_rules_json(const sy_campaign *cp)
{
    json_t *o = json_object();
    if (cp->type == SY_CAMPAIGN_CHECKIN) {
        json_t *rw = json_array();
        for (int d = 0; d < cp->streak_days; d++)
            if (cp->streak[d].points || cp->streak[d].item[0])
                json_array_append_new(rw, reward_json(&cp->streak[d], d + 1));
        json_t *ck = json_pack("{s:o, s:b}", "rewards", rw, "cycle", cp->cycle);
        if (cp->makeup_cost != SY_CAMPAIGN_UNSET)
            json_object_set_new(ck, "makeup",
                                json_pack("{s:I, s:s, s:i}", "cost", (json_int_t)cp->makeup_cost,
                                          "point_type", cp->makeup_type, "max_days_back",
                                          cp->makeup_days));
        json_object_set_new(o, "checkin", ck);
    } else if (cp->type == SY_CAMPAIGN_TASK) {
        json_t *ts = json_array();
        for (int i = 0; i < cp->ntasks; i++) {
            const sy_campaign_task *t = &cp->tasks[i];
            json_t *to =
                json_pack("{s:s, s:s, s:s, s:o}", "code", t->code, "event", t->event, "period",
                          k_periods[t->period], "reward", reward_json(&t->reward, 0));
            if (t->min_dwell_ms != SY_CAMPAIGN_UNSET)
                json_object_set_new(to, "min_dwell_ms", json_integer(t->min_dwell_ms));
            if (t->props)
                json_object_set_new(to, "props", json_deep_copy(t->props));
            json_array_append_new(ts, to);
        }
        json_object_set_new(o, "tasks", ts);
    } else if (cp->extra) {
        json_object_set(o, k_types[cp->type], cp->extra);
    }
    return o;
}

/* ------------------------------------------------------------------ */
/* time, status, holdout                                               */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

int64_t sy_campaign_week(int64_t day)
{
    return floor_div(day + 3, 7); /* day 0 was a Thursday; weeks start on Monday */
}

int64_t sy_campaign_day(const char *zone, int64_t at_ms)
{
    return floor_div(at_ms + sy_ledger_tz_offset(zone, at_ms), DAY_MS);
}

/* Minutes after the local midnight of at_ms. */
static int local_minute(const char *zone, int64_t at_ms)
{
    int64_t local = at_ms + sy_ledger_tz_offset(zone, at_ms);
    return (int)((local - floor_div(local, DAY_MS) * DAY_MS) / 60000);
}

sy_campaign_status sy_campaign_effective(const sy_campaign *cp, int64_t now_ms)
{
    if ((cp->status == SY_CST_SCHEDULED || cp->status == SY_CST_PAUSED) && now_ms >= cp->ends_at)
        return SY_CST_ENDED;
    if (cp->status == SY_CST_SCHEDULED && now_ms >= cp->starts_at)
        return SY_CST_RUNNING;
    return cp->status;
}

unsigned sy_campaign_bucket(const char *tenant, const char *campaign, const char *customer_no)
{
    crypto_generichash_state st;
    unsigned char out[8];
    static const unsigned char sep = 0x1f;
    crypto_generichash_init(&st, NULL, 0, sizeof out);
    crypto_generichash_update(&st, (const unsigned char *)tenant, strlen(tenant));
    crypto_generichash_update(&st, &sep, 1);
    crypto_generichash_update(&st, (const unsigned char *)campaign, strlen(campaign));
    crypto_generichash_update(&st, &sep, 1);
    crypto_generichash_update(&st, (const unsigned char *)customer_no, strlen(customer_no));
    crypto_generichash_final(&st, out, sizeof out);
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | out[i];
    return (unsigned)(v % 10000);
}

bool sy_campaign_in_holdout(const char *tenant, const char *campaign, const char *customer_no,
                            int percent)
{
    return percent > 0 &&
           sy_campaign_bucket(tenant, campaign, customer_no) < (unsigned)percent * 100;
}

/* ------------------------------------------------------------------ */
/* load and encode                                                     */

static int64_t i64_or_unset(sy_stmt *st, int col)
{
    return sy_stmt_is_null(st, col) ? SY_CAMPAIGN_UNSET : sy_stmt_i64(st, col);
}

void sy_campaign_free(sy_campaign *cp)
{
    if (!cp)
        return;
    json_decref(cp->extra);
    free(cp);
}

int sy_campaign_from_row(sy_stmt *st, int col, const char *tenant, const char *id,
                         sy_campaign **out)
{
    *out = NULL;
    sy_campaign *cp = sy_xcalloc(1, sizeof *cp);
    snprintf(cp->id, sizeof cp->id, "%s", sy_stmt_text(st, col + 0));
    snprintf(cp->name, sizeof cp->name, "%s", sy_stmt_text(st, col + 1));
    bool ok = sy_campaign_type_parse(sy_stmt_text(st, col + 2), &cp->type) &&
              sy_campaign_status_parse(sy_stmt_text(st, col + 3), &cp->status);
    cp->starts_at = sy_stmt_i64(st, col + 4);
    cp->ends_at = sy_stmt_i64(st, col + 5);
    cp->open_from = (int)i64_or_unset(st, col + 6);
    cp->open_until = (int)i64_or_unset(st, col + 7);
    snprintf(cp->segment_id, sizeof cp->segment_id, "%s", sy_stmt_text(st, col + 8));
    cp->product_risk = sy_stmt_is_null(st, col + 9) ? 0 : (int)sy_stmt_i64(st, col + 9);
    cp->risk_validity_days = sy_stmt_is_null(st, col + 10) ? 0 : (int)sy_stmt_i64(st, col + 10);
    cp->holdout_percent = (int)sy_stmt_i64(st, col + 11);
    cp->budget_points = i64_or_unset(st, col + 12);
    cp->budget_cost = i64_or_unset(st, col + 13);
    cp->spent_points = sy_stmt_i64(st, col + SY_CAMPAIGN_COL_SPENT_POINTS);
    cp->spent_cost = sy_stmt_i64(st, col + SY_CAMPAIGN_COL_SPENT_COST);
    cp->limit_day = i64_or_unset(st, col + 16);
    cp->limit_week = i64_or_unset(st, col + 17);
    cp->limit_total = i64_or_unset(st, col + 18);
    snprintf(cp->point_type, sizeof cp->point_type, "%s", sy_stmt_text(st, col + 19));
    json_t *rules = json_loads(sy_stmt_text(st, col + 20), 0, NULL);
    snprintf(cp->created_by, sizeof cp->created_by, "%s", sy_stmt_text(st, col + 21));
    snprintf(cp->updated_by, sizeof cp->updated_by, "%s", sy_stmt_text(st, col + 22));
    snprintf(cp->submitted_by, sizeof cp->submitted_by, "%s", sy_stmt_text(st, col + 23));
    snprintf(cp->approved_by, sizeof cp->approved_by, "%s", sy_stmt_text(st, col + 24));
    cp->created_at = sy_stmt_i64(st, col + 25);
    cp->updated_at = sy_stmt_i64(st, col + 26);
    cp->submitted_at = i64_or_unset(st, col + 27);
    cp->approved_at = i64_or_unset(st, col + 28);
    cp->priority = (int)sy_stmt_i64(st, col + 29);
    char field[80], msg[200];
    if (ok && rules)
        ok = sy_campaign_rules_parse(cp, rules, field, sizeof field, msg, sizeof msg);
    json_decref(rules);
    if (!ok) {
        sy_error("campaign %s/%s: its stored rules do not parse", tenant, id);
        sy_campaign_free(cp);
        return SY_ERR;
    }
    *out = cp;
    return SY_OK;
}

int sy_campaign_load(sy_conn *c, const char *tenant, const char *id, sy_campaign **out)
{
    static const char sql[] =
        "SELECT " SY_CAMPAIGN_COLUMNS("") " FROM campaigns WHERE tenant_id = $1 AND id = $2";
    *out = NULL;
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, id);
    int rc = sy_stmt_step(st);
    if (rc != SY_ROW) {
        sy_stmt_reset(st);
        return rc == SY_DONE ? SY_CAMPAIGN_NOT_FOUND : rc;
    }
    rc = sy_campaign_from_row(st, 0, tenant, id, out);
    sy_stmt_reset(st);
    return rc;
}

static json_t *json_time(int64_t ms)
{
    char t[40];
    sy_format_time(ms, t, sizeof t);
    return json_string(t);
}

static json_t *time_or_null(int64_t ms)
{
    return ms == SY_CAMPAIGN_UNSET ? json_null() : json_time(ms);
}

static json_t *int_or_null(int64_t v)
{
    return v == SY_CAMPAIGN_UNSET ? json_null() : json_integer(v);
}

static json_t *str_or_null(const char *s)
{
    return s[0] ? json_string(s) : json_null();
}

json_t *sy_campaign_json(const sy_campaign *cp, int64_t now_ms)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(cp->id));
    json_object_set_new(o, "name", json_string(cp->name));
    json_object_set_new(o, "type", json_string(k_types[cp->type]));
    json_object_set_new(o, "status",
                        json_string(sy_campaign_status_name(sy_campaign_effective(cp, now_ms))));
    json_object_set_new(o, "starts_at", json_time(cp->starts_at));
    json_object_set_new(o, "ends_at", json_time(cp->ends_at));
    if (cp->open_from != SY_CAMPAIGN_UNSET) {
        char f[16], u[16];
        snprintf(f, sizeof f, "%02d:%02d", cp->open_from / 60, cp->open_from % 60);
        snprintf(u, sizeof u, "%02d:%02d", cp->open_until / 60, cp->open_until % 60);
        json_object_set_new(o, "open_hours", json_pack("{s:s, s:s}", "from", f, "until", u));
    } else {
        json_object_set_new(o, "open_hours", json_null());
    }
    json_object_set_new(o, "segment_id", str_or_null(cp->segment_id));
    if (cp->product_risk) {
        char r[4];
        snprintf(r, sizeof r, "R%d", cp->product_risk);
        json_object_set_new(
            o, "suitability",
            json_pack("{s:s, s:i}", "product_risk", r, "validity_days", cp->risk_validity_days));
    } else {
        json_object_set_new(o, "suitability", json_null());
    }
    json_object_set_new(o, "holdout_percent", json_integer(cp->holdout_percent));
    json_object_set_new(o, "priority", json_integer(cp->priority));
    json_object_set_new(o, "budget",
                        json_pack("{s:o, s:o, s:I, s:I}", "points", int_or_null(cp->budget_points),
                                  "cost", int_or_null(cp->budget_cost), "spent_points",
                                  (json_int_t)cp->spent_points, "spent_cost",
                                  (json_int_t)cp->spent_cost));
    json_object_set_new(o, "limits",
                        json_pack("{s:o, s:o, s:o}", "per_day", int_or_null(cp->limit_day),
                                  "per_week", int_or_null(cp->limit_week), "per_campaign",
                                  int_or_null(cp->limit_total)));
    json_object_set_new(o, "point_type", str_or_null(cp->point_type));
    json_t *rules = sy_campaign_rules_json(cp);
    json_object_update(o, rules);
    json_decref(rules);
    json_object_set_new(o, "created_by", json_string(cp->created_by));
    json_object_set_new(o, "updated_by", json_string(cp->updated_by));
    json_object_set_new(o, "submitted_by", str_or_null(cp->submitted_by));
    json_object_set_new(o, "approved_by", str_or_null(cp->approved_by));
    json_object_set_new(o, "created_at", json_time(cp->created_at));
    json_object_set_new(o, "updated_at", json_time(cp->updated_at));
    json_object_set_new(o, "submitted_at", time_or_null(cp->submitted_at));
    json_object_set_new(o, "approved_at", time_or_null(cp->approved_at));
    return o;
}

/* ------------------------------------------------------------------ */
/* definition                                                          */

static int point_type_exists(sy_conn *c, const char *tenant, const char *code)
{
    sy_point_type t;
    int rc = sy_ledger_type_get(c, tenant, code, &t);
    return rc == SY_OK ? SY_OK : rc == SY_DONE ? SY_CAMPAIGN_UNKNOWN_TYPE : rc;
}

/* An item a campaign can issue: it exists and is no goods (which need a
 * delivery address).  *cost: its cost price in fen. */
static int item_cost(sy_conn *c, const char *tenant, const char *code, int64_t *cost)
{
    static const char sql[] = "SELECT kind, cost_price FROM benefit_items"
                              " WHERE tenant_id = $1 AND code = $2";
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, code);
    int rc = sy_stmt_step(st);
    bool ok = rc == SY_ROW && strcmp(sy_stmt_text(st, 0), "goods") != 0;
    if (rc == SY_ROW)
        *cost = sy_stmt_i64(st, 1);
    sy_stmt_reset(st);
    return ok ? SY_OK : (rc == SY_ROW || rc == SY_DONE) ? SY_CAMPAIGN_UNKNOWN_ITEM : rc;
}

static int check_reward(sy_conn *c, const char *tenant, const sy_campaign_reward *r,
                        const char *ptr, sy_campaign_result *res)
{
    int64_t cost;
    int rc = r->item[0] ? item_cost(c, tenant, r->item, &cost)
                        : point_type_exists(c, tenant, r->point_type);
    if (rc > 0)
        snprintf(res->other, sizeof res->other, "%s/%s", ptr, r->item[0] ? "item" : "point_type");
    return rc;
}

/* Every point type and item the campaign names exists. */
static int check_refs(sy_conn *c, const char *tenant, const sy_campaign *cp,
                      sy_campaign_result *res)
{
    int rc = SY_OK;
    if (cp->point_type[0] && (rc = point_type_exists(c, tenant, cp->point_type)) != SY_OK) {
        snprintf(res->other, sizeof res->other, "/point_type");
        return rc;
    }
    for (int d = 0, k = 0; d < cp->streak_days && rc == SY_OK; d++) {
        if (!cp->streak[d].points && !cp->streak[d].item[0])
            continue;
        char ptr[64];
        snprintf(ptr, sizeof ptr, "/checkin/rewards/%d", k++);
        rc = check_reward(c, tenant, &cp->streak[d], ptr, res);
    }
    if (rc == SY_OK && cp->makeup_cost != SY_CAMPAIGN_UNSET &&
        (rc = point_type_exists(c, tenant, cp->makeup_type)) > 0)
        snprintf(res->other, sizeof res->other, "/checkin/makeup/point_type");
    for (int i = 0; i < cp->ntasks && rc == SY_OK; i++) {
        char ptr[64];
        snprintf(ptr, sizeof ptr, "/tasks/%d/reward", i);
        rc = check_reward(c, tenant, &cp->tasks[i].reward, ptr, res);
    }
    return rc;
}

static void bind_or_null(sy_stmt *st, int idx, int64_t v)
{
    if (v == SY_CAMPAIGN_UNSET)
        sy_stmt_bind_null(st, idx);
    else
        sy_stmt_bind_i64(st, idx, v);
}

static void bind_text_or_null(sy_stmt *st, int idx, const char *s)
{
    sy_stmt_bind_text(st, idx, s[0] ? s : NULL);
}

/* Binds the definition's columns $3..$19 (after tenant and id). */
static int bind_definition(sy_stmt *st, const sy_campaign *cp)
{
    json_t *rules = sy_campaign_rules_json(cp);
    char *text = json_dumps(rules, JSON_COMPACT);
    json_decref(rules);
    sy_stmt_bind_text(st, 3, cp->name);
    sy_stmt_bind_text(st, 4, k_types[cp->type]);
    sy_stmt_bind_i64(st, 5, cp->starts_at);
    sy_stmt_bind_i64(st, 6, cp->ends_at);
    bind_or_null(st, 7, cp->open_from);
    bind_or_null(st, 8, cp->open_until);
    bind_text_or_null(st, 9, cp->segment_id);
    bind_or_null(st, 10, cp->product_risk ? cp->product_risk : SY_CAMPAIGN_UNSET);
    bind_or_null(st, 11, cp->product_risk ? cp->risk_validity_days : SY_CAMPAIGN_UNSET);
    sy_stmt_bind_i64(st, 12, cp->holdout_percent);
    bind_or_null(st, 13, cp->budget_points);
    bind_or_null(st, 14, cp->budget_cost);
    bind_or_null(st, 15, cp->limit_day);
    bind_or_null(st, 16, cp->limit_week);
    bind_or_null(st, 17, cp->limit_total);
    bind_text_or_null(st, 18, cp->point_type);
    sy_stmt_bind_text(st, 19, text);
    sy_stmt_bind_i64(st, 22, cp->priority);
    free(text);
    return SY_OK;
}

int sy_campaign_create(sy_conn *c, const char *tenant, const sy_campaign *cp, const char *actor,
                       int64_t now_ms, sy_campaign_result *res)
{
    static const char sql[] =
        "INSERT INTO campaigns (tenant_id, id, name, type, starts_at, ends_at, open_from,"
        " open_until, segment_id, product_risk, risk_validity_days, holdout_percent,"
        " budget_points, budget_cost, limit_day, limit_week, limit_total, point_type, rules,"
        " status, created_by, updated_by, created_at, updated_at, priority) VALUES ($1, $2, $3,"
        " $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, 'draft', $20,"
        " $20, $21, $21, $22) ON CONFLICT (tenant_id, id) DO NOTHING";
    memset(res, 0, sizeof *res);
    int rc = check_refs(c, tenant, cp, res);
    if (rc != SY_OK)
        return rc;
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, cp->id);
    bind_definition(st, cp);
    sy_stmt_bind_text(st, 20, actor);
    sy_stmt_bind_i64(st, 21, now_ms);
    if ((rc = sy_stmt_exec(st)) != SY_OK)
        return rc;
    if (sy_conn_changes(c) != 1)
        return SY_CAMPAIGN_EXISTS;
    return SY_OK;
}

int sy_campaign_update(sy_conn *c, const char *tenant, const sy_campaign *cp, const char *actor,
                       int64_t now_ms, sy_campaign_result *res)
{
    static const char sql[] =
        "UPDATE campaigns SET name = $3, type = $4, starts_at = $5, ends_at = $6, open_from = $7,"
        " open_until = $8, segment_id = $9, product_risk = $10, risk_validity_days = $11,"
        " holdout_percent = $12, budget_points = $13, budget_cost = $14, limit_day = $15,"
        " limit_week = $16, limit_total = $17, point_type = $18, rules = $19, updated_by = $20,"
        " updated_at = $21, priority = $22 WHERE tenant_id = $1 AND id = $2 AND status = 'draft'";
    memset(res, 0, sizeof *res);
    sy_campaign *old;
    int rc = sy_campaign_load(c, tenant, cp->id, &old);
    if (rc != SY_OK)
        return rc;
    sy_campaign_status was = old->status;
    /* named as the API shows it: running, not the stored scheduled */
    sy_campaign_status shown = sy_campaign_effective(old, now_ms);
    sy_campaign_free(old);
    if (was != SY_CST_DRAFT) {
        snprintf(res->other, sizeof res->other, "%s", k_statuses[shown]);
        return SY_CAMPAIGN_NOT_DRAFT;
    }
    if ((rc = check_refs(c, tenant, cp, res)) != SY_OK)
        return rc;
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, cp->id);
    bind_definition(st, cp);
    sy_stmt_bind_text(st, 20, actor);
    sy_stmt_bind_i64(st, 21, now_ms);
    if ((rc = sy_stmt_exec(st)) != SY_OK)
        return rc;
    return sy_conn_changes(c) == 1 ? SY_OK : SY_ERR;
}

/* ------------------------------------------------------------------ */
/* lifecycle                                                           */

/* Whether the campaign was ever approved. */
static int approved_before(sy_conn *c, const char *tenant, const char *id, bool *before)
{
    static const char sql[] = "SELECT COUNT(*) FROM campaign_transitions WHERE tenant_id = $1"
                              " AND campaign_id = $2 AND action = 'approve'";
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, id);
    int rc = sy_stmt_step(st);
    *before = rc == SY_ROW && sy_stmt_i64(st, 0) > 0;
    sy_stmt_reset(st);
    return rc == SY_ROW ? SY_OK : rc;
}

/* Removes a lottery's newest prize table version (the rejected one); an
 * error if any draw used it. */
static int drop_newest_table(sy_conn *c, const char *tenant, const char *id)
{
    static const char sql_newest[] =
        "SELECT MAX(version), (SELECT COUNT(*) FROM lottery_draws d WHERE d.tenant_id = $1"
        " AND d.campaign_id = $2 AND d.version = (SELECT MAX(version) FROM lottery_versions"
        " WHERE tenant_id = $1 AND campaign_id = $2)) FROM lottery_versions"
        " WHERE tenant_id = $1 AND campaign_id = $2";
    static const char *const sql_drop[] = {
        "DELETE FROM lottery_prizes WHERE tenant_id = $1 AND campaign_id = $2 AND version = $3",
        "DELETE FROM lottery_versions WHERE tenant_id = $1 AND campaign_id = $2 AND version = $3"};
    sy_stmt *st = sy_conn_prepare(c, sql_newest);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, id);
    int rc = sy_stmt_step(st);
    bool any = rc == SY_ROW && !sy_stmt_is_null(st, 0);
    int64_t version = any ? sy_stmt_i64(st, 0) : 0, drawn = any ? sy_stmt_i64(st, 1) : 0;
    sy_stmt_reset(st);
    if (rc != SY_ROW)
        return rc;
    if (!any)
        return SY_OK;
    if (drawn) {
        sy_error("campaign %s/%s: the rejected prize table %lld was drawn against", tenant, id,
                 (long long)version);
        return SY_ERR;
    }
    for (size_t i = 0; i < SY_ARRAY_LEN(sql_drop); i++) {
        if (!(st = sy_conn_prepare(c, sql_drop[i])))
            return SY_ERR;
        sy_stmt_bind_text(st, 1, tenant);
        sy_stmt_bind_text(st, 2, id);
        sy_stmt_bind_i64(st, 3, version);
        if ((rc = sy_stmt_exec(st)) != SY_OK)
            return rc;
    }
    return SY_OK;
}

int sy_campaign_transition(sy_conn *c, const char *tenant, const char *id, sy_campaign_action a,
                           const char *actor, const char *note, int64_t now_ms,
                           sy_campaign_result *res)
{
    static const char sql_move[] =
        "UPDATE campaigns SET status = $3, updated_at = $4 WHERE tenant_id = $1 AND id = $2"
        " AND status = $5";
    static const char sql_submit[] =
        "UPDATE campaigns SET submitted_by = $3, submitted_at = $4, approved_by = NULL,"
        " approved_at = NULL WHERE tenant_id = $1 AND id = $2";
    static const char sql_approve[] =
        "UPDATE campaigns SET approved_by = $3, approved_at = $4 WHERE tenant_id = $1 AND id = $2";
    static const char sql_log[] =
        "INSERT INTO campaign_transitions (tenant_id, campaign_id, action, from_status,"
        " to_status, actor, note, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
    memset(res, 0, sizeof *res);
    sy_campaign *cp;
    int rc = sy_campaign_load(c, tenant, id, &cp);
    if (rc != SY_OK)
        return rc;
    sy_campaign_status eff = sy_campaign_effective(cp, now_ms), to;
    bool ok;
    switch (a) {
    case SY_CACT_SUBMIT:
        ok = eff == SY_CST_DRAFT, to = SY_CST_PENDING;
        break;
    case SY_CACT_APPROVE:
    case SY_CACT_REJECT:
        ok = eff == SY_CST_PENDING, to = a == SY_CACT_APPROVE ? SY_CST_SCHEDULED : SY_CST_DRAFT;
        break;
    case SY_CACT_PAUSE:
        ok = eff == SY_CST_RUNNING || eff == SY_CST_SCHEDULED, to = SY_CST_PAUSED;
        break;
    case SY_CACT_RESUME:
        ok = eff == SY_CST_PAUSED, to = SY_CST_SCHEDULED;
        break;
    default:
        ok = eff == SY_CST_RUNNING || eff == SY_CST_SCHEDULED || eff == SY_CST_PAUSED,
        to = SY_CST_ENDED;
        break;
    }
    sy_campaign_status from = cp->status;
    bool own =
        a == SY_CACT_APPROVE && (!strcmp(actor, cp->created_by) || !strcmp(actor, cp->updated_by) ||
                                 !strcmp(actor, cp->submitted_by));
    bool lottery = cp->type == SY_CAMPAIGN_LOTTERY;
    sy_campaign_free(cp);
    if (!ok) {
        snprintf(res->other, sizeof res->other, "%s", k_statuses[eff]);
        return SY_CAMPAIGN_BAD_TRANSITION;
    }
    if (own)
        return SY_CAMPAIGN_MAKER_CHECKER;
    /* A campaign approved once never becomes a draft again: what it has
     * paid stands with its definition.  It can be pending again only with a
     * paused lottery's new prize table (lottery.c); rejecting that table
     * removes it (no draw can have used it: the campaign was pending) and
     * leaves the campaign paused, with the approved table it had. */
    if (a == SY_CACT_REJECT) {
        bool before;
        if ((rc = approved_before(c, tenant, id, &before)) != SY_OK)
            return rc;
        if (before) {
            to = SY_CST_PAUSED;
            if (lottery && (rc = drop_newest_table(c, tenant, id)) != SY_OK)
                return rc;
        }
    }
    sy_stmt *st = sy_conn_prepare(c, sql_move);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, id);
    sy_stmt_bind_text(st, 3, k_statuses[to]);
    sy_stmt_bind_i64(st, 4, now_ms);
    sy_stmt_bind_text(st, 5, k_statuses[from]);
    if ((rc = sy_stmt_exec(st)) != SY_OK)
        return rc;
    if (sy_conn_changes(c) != 1)
        return SY_ERR;
    if (a == SY_CACT_SUBMIT || a == SY_CACT_APPROVE) {
        if (!(st = sy_conn_prepare(c, a == SY_CACT_SUBMIT ? sql_submit : sql_approve)))
            return SY_ERR;
        sy_stmt_bind_text(st, 1, tenant);
        sy_stmt_bind_text(st, 2, id);
        sy_stmt_bind_text(st, 3, actor);
        sy_stmt_bind_i64(st, 4, now_ms);
        if ((rc = sy_stmt_exec(st)) != SY_OK)
            return rc;
    }
    if (!(st = sy_conn_prepare(c, sql_log)))
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, id);
    sy_stmt_bind_text(st, 3, k_actions[a]);
    sy_stmt_bind_text(st, 4, k_statuses[eff]);
    sy_stmt_bind_text(st, 5, k_statuses[to]);
    sy_stmt_bind_text(st, 6, actor);
    sy_stmt_bind_text(st, 7, note ? note : "");
    sy_stmt_bind_i64(st, 8, now_ms);
    return sy_stmt_exec(st);
}

/* ------------------------------------------------------------------ */
/* admission                                                           */

static int tenant_zone(sy_conn *c, const char *tenant, char zone[65])
{
    static const char sql[] = "SELECT timezone FROM tenants WHERE id = $1";
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    int rc = sy_stmt_step(st);
    snprintf(zone, 65, "%s", rc == SY_ROW ? sy_stmt_text(st, 0) : "UTC");
    sy_stmt_reset(st);
    return rc == SY_ROW || rc == SY_DONE ? SY_OK : rc;
}

/* Whether the customer's risk profile allows the campaign's product. */
static bool suitable(const sy_campaign *cp, const char *attrs, int64_t today, char *why,
                     size_t whylen)
{
    json_t *a = json_loads(attrs, 0, NULL);
    const char *level = json_string_value(json_object_get(a, "risk_level"));
    const char *at = json_string_value(json_object_get(a, "risk_assessed_at"));
    int64_t day;
    bool ok = false;
    if (!level || strlen(level) != 2 || level[0] != 'R' || level[1] < '1' || level[1] > '5')
        snprintf(why, whylen, "no risk_level");
    else if (level[1] - '0' < cp->product_risk)
        snprintf(why, whylen, "risk_level %s is below the product's R%d", level, cp->product_risk);
    else if (!at || !sy_parse_date(at, &day))
        snprintf(why, whylen, "no risk assessment (risk_assessed_at)");
    else if (day < today - cp->risk_validity_days)
        snprintf(why, whylen, "risk assessment of %s is older than %d days", at,
                 cp->risk_validity_days);
    else
        ok = true;
    json_decref(a);
    return ok;
}

/* The checks every participation passes, for an action at `when` (now for
 * a check-in, the event's time for a task).  A holdout customer is recorded
 * (the one write of a refusal). */
static int admit(sy_conn *c, const sy_campaign *cp, const sy_campaign_who *w, const char *zone,
                 int64_t when, sy_campaign_result *why)
{
    static const char sql_customer[] = "SELECT attrs, merged_into FROM customers"
                                       " WHERE tenant_id = $1 AND customer_no = $2";
    static const char sql_holdout[] =
        "INSERT INTO campaign_holdouts (tenant_id, campaign_id, customer_no, first_at)"
        " VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id, campaign_id, customer_no) DO NOTHING";
    sy_campaign_status eff = sy_campaign_effective(cp, w->now_ms);
    if (eff != SY_CST_RUNNING) {
        snprintf(why->other, sizeof why->other, "%s", k_statuses[eff]);
        return SY_CAMPAIGN_NOT_RUNNING;
    }
    if (when < cp->starts_at || when >= cp->ends_at) {
        snprintf(why->other, sizeof why->other, "outside");
        return SY_CAMPAIGN_NOT_RUNNING;
    }
    if (cp->open_from != SY_CAMPAIGN_UNSET) {
        int m = local_minute(zone, when);
        if (m < cp->open_from || m >= cp->open_until) {
            snprintf(why->other, sizeof why->other, "closed");
            return SY_CAMPAIGN_NOT_RUNNING;
        }
    }
    sy_stmt *st = sy_conn_prepare(c, sql_customer);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, w->tenant);
    sy_stmt_bind_text(st, 2, w->customer_no);
    int rc = sy_stmt_step(st);
    if (rc != SY_ROW) {
        sy_stmt_reset(st);
        return rc == SY_DONE ? SY_CAMPAIGN_NO_CUSTOMER : rc;
    }
    if (!sy_stmt_is_null(st, 1)) {
        snprintf(why->other, sizeof why->other, "%s", sy_stmt_text(st, 1));
        sy_stmt_reset(st);
        return SY_CAMPAIGN_MERGED;
    }
    /* the attributes (about 1 KB of JSON) only for a suitability rule */
    bool fit = true;
    if (cp->product_risk) {
        char *attrs = sy_xstrdup(sy_stmt_text(st, 0));
        sy_stmt_reset(st);
        fit = suitable(cp, attrs, sy_campaign_day(zone, w->now_ms), why->other, sizeof why->other);
        free(attrs);
    } else {
        sy_stmt_reset(st);
    }
    if (!w->in_audience)
        return SY_CAMPAIGN_NOT_IN_AUDIENCE;
    if (!fit)
        return SY_CAMPAIGN_UNSUITABLE;
    if (sy_campaign_in_holdout(w->tenant, cp->id, w->customer_no, cp->holdout_percent)) {
        if (!(st = sy_conn_prepare(c, sql_holdout)))
            return SY_ERR;
        sy_stmt_bind_text(st, 1, w->tenant);
        sy_stmt_bind_text(st, 2, cp->id);
        sy_stmt_bind_text(st, 3, w->customer_no);
        sy_stmt_bind_i64(st, 4, w->now_ms);
        if ((rc = sy_stmt_exec(st)) != SY_OK)
            return rc;
        return SY_CAMPAIGN_HOLDOUT;
    }
    return SY_OK;
}

/* ------------------------------------------------------------------ */
/* limits, budget, rewards, the journal of participations              */

static int count_actions(sy_conn *c, const sy_campaign *cp, const char *tenant, const char *no,
                         int64_t from_day, int64_t to_day, int64_t *n)
{
    static const char sql[] =
        "SELECT COUNT(*) FROM campaign_actions WHERE tenant_id = $1 AND campaign_id = $2"
        " AND customer_no = $3 AND day >= $4 AND day <= $5 AND kind <> 'makeup'";
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, cp->id);
    sy_stmt_bind_text(st, 3, no);
    sy_stmt_bind_i64(st, 4, from_day);
    sy_stmt_bind_i64(st, 5, to_day);
    int rc = sy_stmt_step(st);
    *n = rc == SY_ROW ? sy_stmt_i64(st, 0) : 0;
    sy_stmt_reset(st);
    return rc == SY_ROW ? SY_OK : rc;
}

/* The per-customer limits, for one more participation on business day,
 * counting participations with count (count_actions: campaign_actions). */
static int limits_counted(sy_conn *c, const sy_campaign *cp, const char *tenant, const char *no,
                          int64_t day, sy_campaign_counter count, sy_campaign_result *why)
{
    struct {
        int64_t limit, from, to;
        const char *name;
    } lim[] = {
        {cp->limit_day, day, day, "day"},
        {cp->limit_week, sy_campaign_week(day) * 7 - 3, sy_campaign_week(day) * 7 + 3, "week"},
        {cp->limit_total, INT64_MIN / 2, INT64_MAX / 2, "campaign"},
    };
    for (size_t i = 0; i < SY_ARRAY_LEN(lim); i++) {
        if (lim[i].limit == SY_CAMPAIGN_UNSET)
            continue;
        int64_t n;
        int rc = count(c, cp, tenant, no, lim[i].from, lim[i].to, &n);
        if (rc != SY_OK)
            return rc;
        if (n >= lim[i].limit) {
            snprintf(why->other, sizeof why->other, "%s", lim[i].name);
            why->limit = lim[i].limit;
            return SY_CAMPAIGN_LIMIT_REACHED;
        }
    }
    return SY_OK;
}

static int check_limits(sy_conn *c, const sy_campaign *cp, const char *tenant, const char *no,
                        int64_t day, sy_campaign_result *why)
{
    return limits_counted(c, cp, tenant, no, day, count_actions, why);
}

/* Whether the budget still holds points and cost (read now: the writer
 * has applied every earlier participation). */
static int check_budget(sy_conn *c, const char *tenant, const char *id, int64_t points,
                        int64_t cost, sy_campaign_result *why)
{
    static const char sql[] = "SELECT budget_points, budget_cost, spent_points, spent_cost"
                              " FROM campaigns WHERE tenant_id = $1 AND id = $2";
    if (!points && !cost)
        return SY_OK;
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, id);
    int rc = sy_stmt_step(st);
    if (rc != SY_ROW) {
        sy_stmt_reset(st);
        return rc == SY_DONE ? SY_CAMPAIGN_NOT_FOUND : rc;
    }
    bool pts_out = !sy_stmt_is_null(st, 0) && sy_stmt_i64(st, 2) + points > sy_stmt_i64(st, 0);
    bool cost_out = !sy_stmt_is_null(st, 1) && sy_stmt_i64(st, 3) + cost > sy_stmt_i64(st, 1);
    sy_stmt_reset(st);
    if (pts_out || cost_out) {
        snprintf(why->other, sizeof why->other, "%s", pts_out ? "points" : "cost");
        return SY_CAMPAIGN_BUDGET_EXHAUSTED;
    }
    return SY_OK;
}

int sy_campaign_budget_allows(const sy_campaign *cp, int64_t points, int64_t cost,
                              sy_campaign_result *why)
{
    bool pts_out =
        cp->budget_points != SY_CAMPAIGN_UNSET && cp->spent_points + points > cp->budget_points;
    bool cost_out = cp->budget_cost != SY_CAMPAIGN_UNSET && cp->spent_cost + cost > cp->budget_cost;
    if ((points || cost) && (pts_out || cost_out)) {
        snprintf(why->other, sizeof why->other, "%s", pts_out ? "points" : "cost");
        return SY_CAMPAIGN_BUDGET_EXHAUSTED;
    }
    return SY_OK;
}

/* Spends from the budget; the condition is checked again by the UPDATE
 * (and the schema's CHECKs), so a rule broken elsewhere fails the write. */
static int spend_budget(sy_conn *c, const char *tenant, const char *id, int64_t points,
                        int64_t cost)
{
    static const char sql[] =
        "UPDATE campaigns SET spent_points = spent_points + $3, spent_cost = spent_cost + $4"
        " WHERE tenant_id = $1 AND id = $2"
        " AND (budget_points IS NULL OR spent_points + $3 <= budget_points)"
        " AND (budget_cost IS NULL OR spent_cost + $4 <= budget_cost)";
    if (!points && !cost)
        return SY_OK;
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, id);
    sy_stmt_bind_i64(st, 3, points);
    sy_stmt_bind_i64(st, 4, cost);
    int rc = sy_stmt_exec(st);
    if (rc == SY_OK && sy_conn_changes(c) != 1) {
        sy_error("campaign %s/%s: budget moved past its check", tenant, id);
        return SY_ERR;
    }
    return rc;
}

static int slot_taken(sy_conn *c, const char *tenant, const char *id, const char *no,
                      const char *slot, bool *taken)
{
    static const char sql[] = "SELECT 1 FROM campaign_actions WHERE tenant_id = $1"
                              " AND campaign_id = $2 AND customer_no = $3 AND slot = $4";
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, id);
    sy_stmt_bind_text(st, 3, no);
    sy_stmt_bind_text(st, 4, slot);
    int rc = sy_stmt_step(st);
    *taken = rc == SY_ROW;
    sy_stmt_reset(st);
    return rc == SY_ROW || rc == SY_DONE ? SY_OK : rc;
}

static void new_action_id(char out[24])
{
    unsigned char b[8];
    char hex[17];
    randombytes_buf(b, sizeof b);
    sy_hex(b, sizeof b, hex);
    snprintf(out, 24, "ca_%s", hex);
}

/* What a reward costs the budget: its points, and an item's cost price. */
static int reward_cost(sy_conn *c, const char *tenant, const sy_campaign_reward *r, int64_t *points,
                       int64_t *cost)
{
    *points = r->points;
    *cost = 0;
    return r->item[0] ? item_cost(c, tenant, r->item, cost) : SY_OK;
}

/* Whether w's customer may receive item: 1 when the item is for everyone
 * or the customer is in its segment, 0 when not (or nothing can tell), < 0
 * a store error.  An item not found is 1: the catalogue refuses it. */
static int item_eligible(sy_conn *c, const sy_campaign_who *w, const char *item)
{
    static const char sql[] = "SELECT segment_id, segment_expression FROM benefit_items"
                              " WHERE tenant_id = $1 AND code = $2";
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return -1;
    sy_stmt_bind_text(st, 1, w->tenant);
    sy_stmt_bind_text(st, 2, item);
    int rc = sy_stmt_step(st);
    int in = 1;
    if (rc == SY_ROW && (!sy_stmt_is_null(st, 0) || !sy_stmt_is_null(st, 1))) {
        const char *id = sy_stmt_is_null(st, 0) ? NULL : sy_stmt_text(st, 0);
        const char *expr = sy_stmt_is_null(st, 1) ? NULL : sy_stmt_text(st, 1);
        in = w->eligible ? w->eligible(w->eligible_ud, id, expr, w->customer_no) : 0;
    }
    sy_stmt_reset(st);
    return rc == SY_ROW || rc == SY_DONE ? in : -1;
}

/* Issues a reward (points earned from source:campaign:<id>, or one unit of
 * an item).  Refusals write nothing. */
static int issue_reward(sy_conn *c, const sy_campaign *cp, const sy_campaign_who *w,
                        const sy_campaign_reward *r, const char *action_id, const char *reason,
                        sy_campaign_outcome *out)
{
    char account[80];
    snprintf(account, sizeof account, SY_CAMPAIGN_ACCOUNT_PREFIX "%s", cp->id);
    if (r->item[0]) {
        /* an item for a segment goes only to its members, whichever way it
         * is given (as the catalogue's own API checks it) */
        int in = item_eligible(c, w, r->item);
        if (in < 0)
            return SY_ERR;
        if (!in) {
            snprintf(out->why.other, sizeof out->why.other, "not-eligible");
            return SY_CAMPAIGN_REWARD_REFUSED;
        }
        char key[128];
        snprintf(key, sizeof key, "campaign:%s:%s", cp->id, action_id);
        sy_benefit_issue q = {.tenant = w->tenant,
                              .customer_no = w->customer_no,
                              .item = r->item,
                              .operator_id = w->operator_id,
                              .idempotency_key = key,
                              .now_ms = w->now_ms};
        sy_benefit_result br;
        int rc = sy_benefit_issue_one(c, &q, &br);
        if (rc > 0) {
            static const struct {
                int code;
                const char *name;
            } names[] = {{SY_BENEFIT_OUT_OF_STOCK, "out-of-stock"},
                         {SY_BENEFIT_NOT_AVAILABLE, "not-available"},
                         {SY_BENEFIT_LIMIT_REACHED, "item-limit-reached"},
                         {SY_BENEFIT_UNKNOWN_ITEM, "no-such-item"}};
            snprintf(out->why.other, sizeof out->why.other, "refused");
            for (size_t i = 0; i < SY_ARRAY_LEN(names); i++)
                if (names[i].code == rc)
                    snprintf(out->why.other, sizeof out->why.other, "%s", names[i].name);
            return rc == SY_BENEFIT_NO_CUSTOMER ? SY_CAMPAIGN_NO_CUSTOMER
                                                : SY_CAMPAIGN_REWARD_REFUSED;
        }
        if (rc == SY_OK)
            snprintf(out->grant_code, sizeof out->grant_code, "%s", br.code);
        return rc;
    }
    if (!r->points)
        return SY_OK;
    sy_ledger_move m = {.tenant = w->tenant,
                        .customer_no = w->customer_no,
                        .point_type = r->point_type,
                        .amount = r->points,
                        .account = account,
                        .reason = reason,
                        .reference = action_id,
                        .operator_id = w->operator_id,
                        .now_ms = w->now_ms};
    sy_ledger_result lr;
    int rc = sy_ledger_earn(c, &m, &lr);
    if (rc > 0) {
        snprintf(out->why.other, sizeof out->why.other, "points refused (%d)", rc);
        return rc == SY_LEDGER_NO_CUSTOMER ? SY_CAMPAIGN_NO_CUSTOMER : SY_CAMPAIGN_REWARD_REFUSED;
    }
    if (rc == SY_OK)
        snprintf(out->ledger_entry, sizeof out->ledger_entry, "%s", lr.entry_id);
    return rc;
}

typedef struct action_row {
    const char *kind, *slot, *task, *event_id;
    int64_t day, target_day; /* target_day UNSET: none */
    int streak;              /* 0: none */
} action_row;

static int insert_action(sy_conn *c, const sy_campaign *cp, const sy_campaign_who *w,
                         const action_row *a, const sy_campaign_outcome *out)
{
    static const char sql[] =
        "INSERT INTO campaign_actions (tenant_id, campaign_id, id, customer_no, kind, slot, day,"
        " week, target_day, streak, task, event_id, points, point_type, item, grant_code,"
        " ledger_entry, cost, paid_points, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8,"
        " $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)";
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, w->tenant);
    sy_stmt_bind_text(st, 2, cp->id);
    sy_stmt_bind_text(st, 3, out->action_id);
    sy_stmt_bind_text(st, 4, w->customer_no);
    sy_stmt_bind_text(st, 5, a->kind);
    sy_stmt_bind_text(st, 6, a->slot);
    sy_stmt_bind_i64(st, 7, a->day);
    sy_stmt_bind_i64(st, 8, sy_campaign_week(a->day));
    bind_or_null(st, 9, a->target_day);
    bind_or_null(st, 10, a->streak ? a->streak : SY_CAMPAIGN_UNSET);
    sy_stmt_bind_text(st, 11, a->task);
    sy_stmt_bind_text(st, 12, a->event_id);
    sy_stmt_bind_i64(st, 13, out->reward.points);
    bind_text_or_null(st, 14, out->reward.points ? out->reward.point_type : "");
    bind_text_or_null(st, 15, out->reward.item);
    bind_text_or_null(st, 16, out->grant_code);
    bind_text_or_null(st, 17, out->ledger_entry);
    sy_stmt_bind_i64(st, 18, out->cost);
    sy_stmt_bind_i64(st, 19, out->paid_points);
    sy_stmt_bind_i64(st, 20, w->now_ms);
    return sy_stmt_exec(st);
}

/* ------------------------------------------------------------------ */
/* check-in                                                            */

/* The streak of the check-in of `day` (0: none). */
static int streak_of(sy_conn *c, const char *tenant, const char *id, const char *no, int64_t day,
                     int *streak)
{
    static const char sql[] = "SELECT streak FROM campaign_actions WHERE tenant_id = $1"
                              " AND campaign_id = $2 AND customer_no = $3 AND target_day = $4";
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, id);
    sy_stmt_bind_text(st, 3, no);
    sy_stmt_bind_i64(st, 4, day);
    int rc = sy_stmt_step(st);
    *streak = rc == SY_ROW ? (int)sy_stmt_i64(st, 0) : 0;
    sy_stmt_reset(st);
    return rc == SY_ROW || rc == SY_DONE ? SY_OK : rc;
}

/* After a make-up on `day` with streak s, the check-ins of the following
 * consecutive days continue it. */
static int renumber_after(sy_conn *c, const char *tenant, const char *id, const char *no,
                          int64_t day, int s)
{
    static const char sql[] = "UPDATE campaign_actions SET streak = $5 WHERE tenant_id = $1"
                              " AND campaign_id = $2 AND customer_no = $3 AND target_day = $4";
    for (int64_t d = day + 1;; d++) {
        int old;
        int rc = streak_of(c, tenant, id, no, d, &old);
        if (rc != SY_OK)
            return rc;
        if (!old)
            return SY_OK;
        sy_stmt *st = sy_conn_prepare(c, sql);
        if (!st)
            return SY_ERR;
        sy_stmt_bind_text(st, 1, tenant);
        sy_stmt_bind_text(st, 2, id);
        sy_stmt_bind_text(st, 3, no);
        sy_stmt_bind_i64(st, 4, d);
        sy_stmt_bind_i64(st, 5, ++s);
        if ((rc = sy_stmt_exec(st)) != SY_OK)
            return rc;
    }
}

/* The reward of streak day s. */
static const sy_campaign_reward *streak_reward(const sy_campaign *cp, int s)
{
    if (cp->streak_days < 1 || s < 1)
        return NULL;
    int d = s <= cp->streak_days ? s : cp->cycle ? (s - 1) % cp->streak_days + 1 : cp->streak_days;
    const sy_campaign_reward *r = &cp->streak[d - 1];
    return r->points || r->item[0] ? r : NULL;
}

int sy_campaign_streak(sy_conn *c, const char *tenant, const char *campaign,
                       const char *customer_no, int64_t today, int *streak, bool *today_done)
{
    int s;
    int rc = streak_of(c, tenant, campaign, customer_no, today, &s);
    if (rc != SY_OK)
        return rc;
    *today_done = s > 0;
    if (!s && (rc = streak_of(c, tenant, campaign, customer_no, today - 1, &s)) != SY_OK)
        return rc;
    *streak = s;
    return SY_OK;
}

int sy_campaign_checkin(sy_conn *c, const sy_campaign_who *w, const char *campaign,
                        int64_t makeup_day, sy_campaign_outcome *out)
{
    memset(out, 0, sizeof *out);
    sy_campaign *cp;
    int rc = sy_campaign_load(c, w->tenant, campaign, &cp);
    if (rc != SY_OK)
        return rc;
    char zone[65], slot[48], reason[120];
    if (cp->type != SY_CAMPAIGN_CHECKIN) {
        snprintf(out->why.other, sizeof out->why.other, "%s", k_types[cp->type]);
        rc = SY_CAMPAIGN_WRONG_TYPE;
        goto done;
    }
    if ((rc = tenant_zone(c, w->tenant, zone)) != SY_OK ||
        (rc = admit(c, cp, w, zone, w->now_ms, &out->why)) != SY_OK)
        goto done;
    int64_t today = sy_campaign_day(zone, w->now_ms);
    bool makeup = makeup_day != SY_CAMPAIGN_UNSET;
    int64_t target = makeup ? makeup_day : today;
    out->day = target;
    out->makeup = makeup;
    if (makeup) {
        const char *bad = NULL;
        if (cp->makeup_cost == SY_CAMPAIGN_UNSET) {
            rc = SY_CAMPAIGN_NO_MAKEUP;
            goto done;
        }
        if (target >= today)
            bad = "not a past day";
        else if (target < today - cp->makeup_days)
            bad = "further back than the campaign's max_days_back";
        else if (target < sy_campaign_day(zone, cp->starts_at))
            bad = "before the campaign started";
        if (bad) {
            snprintf(out->why.other, sizeof out->why.other, "%s", bad);
            rc = SY_CAMPAIGN_BAD_MAKEUP_DAY;
            goto done;
        }
    }
    snprintf(slot, sizeof slot, "day:%lld", (long long)target);
    bool taken;
    if ((rc = slot_taken(c, w->tenant, cp->id, w->customer_no, slot, &taken)) != SY_OK)
        goto done;
    if (taken) {
        rc = SY_CAMPAIGN_ALREADY_CHECKED_IN;
        goto done;
    }
    int prev;
    if ((rc = streak_of(c, w->tenant, cp->id, w->customer_no, target - 1, &prev)) != SY_OK)
        goto done;
    out->streak = prev + 1;
    const sy_campaign_reward *r = makeup ? NULL : streak_reward(cp, out->streak);
    int64_t points = 0, cost = 0;
    if (!makeup && (rc = check_limits(c, cp, w->tenant, w->customer_no, today, &out->why)) != SY_OK)
        goto done;
    if (r && ((rc = reward_cost(c, w->tenant, r, &points, &cost)) != SY_OK ||
              (rc = check_budget(c, w->tenant, cp->id, points, cost, &out->why)) != SY_OK))
        goto done;
    new_action_id(out->action_id);
    if (makeup) {
        char account[80];
        snprintf(account, sizeof account, "campaign:%s", cp->id);
        snprintf(reason, sizeof reason, "make-up check-in, campaign %s", cp->id);
        sy_ledger_move m = {.tenant = w->tenant,
                            .customer_no = w->customer_no,
                            .point_type = cp->makeup_type,
                            .amount = cp->makeup_cost,
                            .account = account,
                            .reason = reason,
                            .reference = out->action_id,
                            .operator_id = w->operator_id,
                            .now_ms = w->now_ms};
        sy_ledger_result lr;
        rc = sy_ledger_spend(c, &m, &lr);
        if (rc == SY_LEDGER_INSUFFICIENT || rc == SY_LEDGER_NO_CUSTOMER) {
            out->why.balance = rc == SY_LEDGER_INSUFFICIENT ? lr.balance : 0;
            rc = SY_CAMPAIGN_INSUFFICIENT;
        } else if (rc > 0) {
            rc = SY_CAMPAIGN_REWARD_REFUSED;
        }
        if (rc != SY_OK)
            goto done;
        snprintf(out->ledger_entry, sizeof out->ledger_entry, "%s", lr.entry_id);
        out->paid_points = cp->makeup_cost;
    } else if (r) {
        snprintf(reason, sizeof reason, "check-in day %d, campaign %s", out->streak, cp->id);
        if ((rc = issue_reward(c, cp, w, r, out->action_id, reason, out)) != SY_OK)
            goto done;
        out->reward = *r;
        out->cost = cost;
    }
    action_row a = {.kind = makeup ? "makeup" : "checkin",
                    .slot = slot,
                    .day = today,
                    .target_day = target,
                    .streak = out->streak};
    if ((rc = insert_action(c, cp, w, &a, out)) == SY_OK && makeup)
        rc = renumber_after(c, w->tenant, cp->id, w->customer_no, target, out->streak);
    if (rc == SY_OK)
        rc = spend_budget(c, w->tenant, cp->id, points, cost);
done:
    sy_campaign_free(cp);
    return rc;
}

/* ------------------------------------------------------------------ */
/* tasks                                                               */

int sy_campaign_task_event(sy_conn *c, const sy_campaign *cp, int t, const sy_campaign_who *w,
                           const char *event_name, const char *event_id, int64_t ts_ms,
                           int64_t dwell_ms, const char *props, sy_campaign_outcome *out)
{
    memset(out, 0, sizeof *out);
    if (cp->type != SY_CAMPAIGN_TASK || t < 0 || t >= cp->ntasks) {
        snprintf(out->why.other, sizeof out->why.other, "%s", k_types[cp->type]);
        return SY_CAMPAIGN_WRONG_TYPE;
    }
    const sy_campaign_task *task = &cp->tasks[t];
    out->task = task;
    if (strcmp(task->event, event_name) != 0) {
        snprintf(out->why.other, sizeof out->why.other, "no-match");
        return SY_CAMPAIGN_WRONG_TYPE;
    }
    if (task->min_dwell_ms != SY_CAMPAIGN_UNSET && dwell_ms < task->min_dwell_ms) {
        if (dwell_ms < 0)
            snprintf(out->why.other, sizeof out->why.other, "dwell_ms is missing");
        else
            snprintf(out->why.other, sizeof out->why.other,
                     "dwell_ms %lld is below the task's %lld", (long long)dwell_ms,
                     (long long)task->min_dwell_ms);
        return SY_CAMPAIGN_NOT_MET;
    }
    if (task->props) {
        json_t *pj = props ? json_loads(props, 0, NULL) : NULL;
        bool met = sy_campaign_props_meet(task->props, pj, out->why.other, sizeof out->why.other);
        json_decref(pj);
        if (!met)
            return SY_CAMPAIGN_NOT_MET;
    }
    char zone[65], slot[160], reason[160];
    int rc = tenant_zone(c, w->tenant, zone);
    if (rc == SY_OK)
        rc = admit(c, cp, w, zone, ts_ms, &out->why);
    if (rc != SY_OK)
        return rc;
    int64_t day = sy_campaign_day(zone, ts_ms);
    out->day = day;
    if (task->period == SY_PERIOD_DAY)
        snprintf(slot, sizeof slot, "task:%s:day:%lld", task->code, (long long)day);
    else if (task->period == SY_PERIOD_WEEK)
        snprintf(slot, sizeof slot, "task:%s:week:%lld", task->code,
                 (long long)sy_campaign_week(day));
    else
        snprintf(slot, sizeof slot, "task:%s:campaign", task->code);
    bool taken;
    if ((rc = slot_taken(c, w->tenant, cp->id, w->customer_no, slot, &taken)) != SY_OK)
        return rc;
    if (taken)
        return SY_CAMPAIGN_ALREADY_DONE;
    int64_t points, cost;
    if ((rc = check_limits(c, cp, w->tenant, w->customer_no, day, &out->why)) != SY_OK ||
        (rc = reward_cost(c, w->tenant, &task->reward, &points, &cost)) != SY_OK ||
        (rc = check_budget(c, w->tenant, cp->id, points, cost, &out->why)) != SY_OK)
        return rc;
    new_action_id(out->action_id);
    snprintf(reason, sizeof reason, "task %s, campaign %s", task->code, cp->id);
    if ((rc = issue_reward(c, cp, w, &task->reward, out->action_id, reason, out)) != SY_OK)
        return rc;
    out->reward = task->reward;
    out->cost = cost;
    action_row a = {.kind = "task",
                    .slot = slot,
                    .day = day,
                    .target_day = SY_CAMPAIGN_UNSET,
                    .task = task->code,
                    .event_id = event_id};
    if ((rc = insert_action(c, cp, w, &a, out)) == SY_OK)
        rc = spend_budget(c, w->tenant, cp->id, points, cost);
    return rc;
}

int sy_campaign_running_tasks(sy_conn *c, const char *tenant, int64_t now_ms,
                              char (*ids)[SY_CAMPAIGN_ID_MAX + 1], int max, int *n)
{
    static const char sql[] =
        "SELECT id FROM campaigns WHERE tenant_id = $1 AND type = 'task' AND status = 'scheduled'"
        " AND ends_at > $2 AND starts_at <= $2 ORDER BY id";
    *n = 0;
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_i64(st, 2, now_ms);
    int rc;
    while ((rc = sy_stmt_step(st)) == SY_ROW && *n < max)
        snprintf(ids[(*n)++], SY_CAMPAIGN_ID_MAX + 1, "%s", sy_stmt_text(st, 0));
    sy_stmt_reset(st);
    return rc == SY_DONE || rc == SY_ROW ? SY_OK : rc;
}

/* ------------------------------------------------------------------ */
/* the shared rules, for the engines of other campaign types (lottery.c) */

int sy_campaign_zone(sy_conn *c, const char *tenant, char zone[65])
{
    return tenant_zone(c, tenant, zone);
}

int sy_campaign_admit(sy_conn *c, const sy_campaign *cp, const sy_campaign_who *w, const char *zone,
                      int64_t when, sy_campaign_result *why)
{
    return admit(c, cp, w, zone, when, why);
}

bool sy_campaign_open_at(const sy_campaign *cp, const char *zone, int64_t when)
{
    if (when < cp->starts_at || when >= cp->ends_at)
        return false;
    if (cp->open_from == SY_CAMPAIGN_UNSET)
        return true;
    int m = local_minute(zone, when);
    return m >= cp->open_from && m < cp->open_until;
}

int sy_campaign_check_limits(sy_conn *c, const sy_campaign *cp, const char *tenant,
                             const char *customer_no, int64_t day, sy_campaign_counter count,
                             sy_campaign_result *why)
{
    return limits_counted(c, cp, tenant, customer_no, day, count ? count : count_actions, why);
}

int sy_campaign_check_budget(sy_conn *c, const char *tenant, const char *id, int64_t points,
                             int64_t cost, sy_campaign_result *why)
{
    return check_budget(c, tenant, id, points, cost, why);
}

int sy_campaign_spend_budget(sy_conn *c, const char *tenant, const char *id, int64_t points,
                             int64_t cost)
{
    return spend_budget(c, tenant, id, points, cost);
}

int sy_campaign_reward_cost(sy_conn *c, const char *tenant, const sy_campaign_reward *r,
                            int64_t *points, int64_t *cost)
{
    return reward_cost(c, tenant, r, points, cost);
}

int sy_campaign_entry_owner(sy_conn *c, const char *tenant, const char *debit, const char *credit,
                            const char *reference, char campaign[72])
{
    /* clang-format off */
    static const char sql[] =
        "SELECT EXISTS (SELECT 1 FROM campaign_actions WHERE tenant_id = $1 AND campaign_id = $2"
        "   AND id = $3)"
        " OR EXISTS (SELECT 1 FROM lottery_draws WHERE tenant_id = $1 AND campaign_id = $2"
        "   AND id = $3)"
        " OR EXISTS (SELECT 1 FROM referral_rewards WHERE tenant_id = $1 AND campaign_id = $2"
        "   AND id = $3)";
    /* clang-format on */
    static const char sink[] = "sink:" SY_CAMPAIGN_ACCOUNT_PREFIX,
                      source[] = "source:" SY_CAMPAIGN_ACCOUNT_PREFIX;
    campaign[0] = '\0';
    const char *id = !strncmp(credit, sink, sizeof sink - 1)      ? credit + sizeof sink - 1
                     : !strncmp(debit, source, sizeof source - 1) ? debit + sizeof source - 1
                                                                  : NULL;
    if (!id || !reference || !reference[0])
        return SY_OK;
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, id);
    sy_stmt_bind_text(st, 3, reference);
    int rc = sy_stmt_step(st);
    if (rc == SY_ROW && sy_stmt_i64(st, 0))
        snprintf(campaign, 72, "%s", id);
    sy_stmt_reset(st);
    return rc == SY_ROW ? SY_OK : rc;
}

int sy_campaign_issue(sy_conn *c, const sy_campaign *cp, const sy_campaign_who *w,
                      const sy_campaign_reward *r, const char *ref, const char *reason,
                      sy_campaign_outcome *out)
{
    return issue_reward(c, cp, w, r, ref, reason, out);
}

int sy_campaign_reward_check(sy_conn *c, const char *tenant, const sy_campaign_reward *r,
                             const char *ptr, sy_campaign_result *res)
{
    return check_reward(c, tenant, r, ptr, res);
}

bool sy_campaign_reward_parse(json_t *o, const char *ptr, const char *default_type,
                              sy_campaign_reward *out, char *field, size_t fieldlen, char *msg,
                              size_t msglen)
{
    sy_perr e = {field, msg, fieldlen, msglen};
    return reward_parse(&e, o, ptr, default_type, false, out);
}

json_t *sy_campaign_reward_json(const sy_campaign_reward *r)
{
    return reward_json(r, 0);
}

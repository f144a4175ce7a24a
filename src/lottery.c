/* lottery.c — the rules of lotteries (lottery.h, docs/campaigns.md): the
 * versioned prize table, pacing, the draw in the writer's transaction, its
 * explanation, and the invariant checks of `siyu check`.
 *
 * A draw reuses the campaign engine's checks (campaign.h: admission,
 * limits, budget, issuing) and the points ledger and benefits catalogue
 * through their public functions, in the same transaction: the cost, the
 * prize, the stock, the budget and the draw's row commit together or not
 * at all. */
#include "lottery.h"
#include "benefits.h"
#include "check.h"
#include "ledger.h"
#include "util.h"
#include "validate.h"

#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* randomness                                                          */

static uint32_t (*g_rng)(uint32_t upper, void *ud);
static void *g_rng_ud;

void sy_lottery_set_rng(uint32_t (*rng)(uint32_t upper, void *ud), void *ud)
{
    g_rng = rng;
    g_rng_ud = ud;
}

static uint32_t draw_random(uint32_t upper)
{
    return g_rng ? g_rng(upper, g_rng_ud) % upper : randombytes_uniform(upper);
}

/* ------------------------------------------------------------------ */
/* metrics                                                             */

static _Atomic uint64_t g_draws_won, g_draws_thanks, g_draws_guaranteed;
/* bumped by every sy_lottery_define: the draw's remembered tables made
 * before it are read again (see "the draw's definitions, remembered") */
static _Atomic uint64_t g_def_gen = 1;
static _Atomic uint64_t g_def_hits, g_def_misses;

void sy_lottery_metrics_render(sy_buf *o)
{
    sy_buf_printf(
        o,
        "# HELP siyu_lottery_draws_total Lottery draws by outcome.\n"
        "# TYPE siyu_lottery_draws_total counter\n"
        "siyu_lottery_draws_total{outcome=\"prize\"} %llu\n"
        "siyu_lottery_draws_total{outcome=\"thanks\"} %llu\n"
        "# HELP siyu_lottery_guaranteed_total Draws won by the guarantee.\n"
        "# TYPE siyu_lottery_guaranteed_total counter\n"
        "siyu_lottery_guaranteed_total %llu\n"
        "# HELP siyu_lottery_definitions_total Draws by whether their campaign, zone and prize"
        " table were remembered (hit) or parsed (miss).\n"
        "# TYPE siyu_lottery_definitions_total counter\n"
        "siyu_lottery_definitions_total{result=\"hit\"} %llu\n"
        "siyu_lottery_definitions_total{result=\"miss\"} %llu\n",
        (unsigned long long)atomic_load_explicit(&g_draws_won, memory_order_relaxed),
        (unsigned long long)atomic_load_explicit(&g_draws_thanks, memory_order_relaxed),
        (unsigned long long)atomic_load_explicit(&g_draws_guaranteed, memory_order_relaxed),
        (unsigned long long)atomic_load_explicit(&g_def_hits, memory_order_relaxed),
        (unsigned long long)atomic_load_explicit(&g_def_misses, memory_order_relaxed));
}

/* ------------------------------------------------------------------ */
/* the prize table: parse, encode                                      */

static bool name_member(sy_perr *e, json_t *o, const char *ptr, const char *name, bool required,
                        char *out, size_t outlen)
{
    char p[160];
    snprintf(p, sizeof p, "%s/%s", ptr, name);
    json_t *v = json_object_get(o, name);
    if (!v || json_is_null(v))
        return required ? sy_perr_fail(e, p, "'%s' is required", name) : true;
    const char *s = json_string_value(v);
    if (!s || !s[0] || strlen(s) >= outlen || !json_is_string(v))
        return sy_perr_fail(e, p, "'%s' must be a text of 1 to %d characters", name,
                            SY_CAMPAIGN_NAME_MAX);
    snprintf(out, outlen, "%s", s);
    return true;
}

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
                         sy_campaign_reward *out)
{
    static const char *const fields[] = {"points", "point_type", "item", NULL};
    memset(out, 0, sizeof *out);
    if (!json_is_object(o))
        return sy_perr_fail(
            e, ptr, "'reward' must be an object with 'points' (and 'point_type') or 'item'");
    if (!sy_perr_only(e, o, ptr, fields))
        return false;
    bool has_points = json_object_get(o, "points") != NULL;
    bool has_item = json_object_get(o, "item") != NULL;
    if (has_points == has_item) {
        char p[160];
        snprintf(p, sizeof p, "%s/points", ptr);
        return sy_perr_fail(e, p, "a prize gives 'points' or an 'item' (one of them)");
    }
    if (has_item) {
        if (json_object_get(o, "point_type")) {
            char p[160];
            snprintf(p, sizeof p, "%s/point_type", ptr);
            return sy_perr_fail(e, p, "an item prize takes no 'point_type'");
        }
        return code_member(e, o, ptr, "item", true, sy_benefit_code_valid,
                           "a benefit item code (see GET /v1/benefits/items)", out->item,
                           sizeof out->item);
    }
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

bool sy_lottery_parse(json_t *in, const char *default_type, sy_lottery_table *t, char *field,
                      size_t fieldlen, char *msg, size_t msglen)
{
    static const char *const fields[] = {"prizes",        "thanks", "cost",      "free_per_day",
                                         "draws_per_day", "pacing", "guarantee", NULL};
    static const char *const pfields[] = {"code", "name", "weight", "stock", "reward", NULL};
    static const char *const tfields[] = {"weight", "name", NULL};
    static const char *const cfields[] = {"points", "point_type", NULL};
    static const char *const gfields[] = {"after", "prize", NULL};
    sy_perr e = {field, msg, fieldlen, msglen};
    memset(t, 0, sizeof *t);
    t->draws_per_day = SY_CAMPAIGN_UNSET;
    t->guarantee_after = SY_CAMPAIGN_UNSET;
    snprintf(t->thanks_name, sizeof t->thanks_name, "谢谢参与");
    if (!json_is_object(in))
        return sy_perr_fail(&e, "", "the prize table must be a JSON object");
    if (!sy_perr_only(&e, in, "", fields))
        return false;
    json_t *ps = json_object_get(in, "prizes");
    if (!json_is_array(ps) || json_array_size(ps) < 1 ||
        json_array_size(ps) > SY_LOTTERY_PRIZES_MAX)
        return sy_perr_fail(&e, "/prizes", "'prizes' must be an array of 1 to %d prizes",
                            SY_LOTTERY_PRIZES_MAX);
    size_t i;
    json_t *v;
    json_array_foreach (ps, i, v) {
        char ptr[64], p[96];
        snprintf(ptr, sizeof ptr, "/prizes/%zu", i);
        sy_lottery_prize *pz = &t->prizes[i];
        if (!json_is_object(v))
            return sy_perr_fail(&e, ptr,
                                "a prize must be an object with code, name, weight, stock and"
                                " reward");
        if (!sy_perr_only(&e, v, ptr, pfields) ||
            !code_member(&e, v, ptr, "code", true, sy_benefit_code_valid,
                         "1 to 64 characters of a-z 0-9 _ -", pz->code, sizeof pz->code) ||
            !name_member(&e, v, ptr, "name", true, pz->name, sizeof pz->name) ||
            !sy_perr_int(&e, v, ptr, "weight", true, 1, SY_LOTTERY_WEIGHT_MAX, &pz->weight) ||
            !sy_perr_int(&e, v, ptr, "stock", true, 0, SY_LOTTERY_STOCK_MAX, &pz->stock))
            return false;
        for (size_t k = 0; k < i; k++)
            if (!strcmp(t->prizes[k].code, pz->code)) {
                snprintf(p, sizeof p, "%s/code", ptr);
                return sy_perr_fail(&e, p, "prize code '%s' appears twice", pz->code);
            }
        snprintf(p, sizeof p, "%s/reward", ptr);
        json_t *rw = json_object_get(v, "reward");
        if (!rw)
            return sy_perr_fail(&e, p, "'reward' is required");
        if (!reward_parse(&e, rw, p, default_type, &pz->reward))
            return false;
        t->nprizes++;
    }
    json_t *th = json_object_get(in, "thanks");
    if (th && !json_is_null(th)) {
        if (!json_is_object(th))
            return sy_perr_fail(&e, "/thanks",
                                "'thanks' must be an object with 'weight' (and 'name')");
        if (!sy_perr_only(&e, th, "/thanks", tfields) ||
            !sy_perr_int(&e, th, "/thanks", "weight", true, 0, SY_LOTTERY_WEIGHT_MAX,
                         &t->thanks_weight) ||
            !name_member(&e, th, "/thanks", "name", false, t->thanks_name, sizeof t->thanks_name))
            return false;
    }
    json_t *co = json_object_get(in, "cost");
    if (co && !json_is_null(co)) {
        if (!json_is_object(co))
            return sy_perr_fail(&e, "/cost",
                                "'cost' must be an object with 'points' (and 'point_type')");
        snprintf(t->cost_type, sizeof t->cost_type, "%s", default_type);
        if (!sy_perr_only(&e, co, "/cost", cfields) ||
            !sy_perr_int(&e, co, "/cost", "points", true, 1, SY_CAMPAIGN_POINTS_MAX,
                         &t->cost_points) ||
            !code_member(&e, co, "/cost", "point_type", false, sy_point_type_code_valid,
                         "a point type code (see GET /v1/point-types)", t->cost_type,
                         sizeof t->cost_type))
            return false;
        if (!t->cost_type[0])
            return sy_perr_fail(&e, "/cost/point_type",
                                "'point_type' is required here, or as the campaign's 'point_type'");
    }
    if (!sy_perr_int(&e, in, "", "free_per_day", false, 0, SY_LOTTERY_DAY_MAX, &t->free_per_day) ||
        !sy_perr_int(&e, in, "", "draws_per_day", false, 1, SY_LOTTERY_DAY_MAX, &t->draws_per_day))
        return false;
    if (!t->cost_points && !t->free_per_day)
        return sy_perr_fail(
            &e, "/cost", "a lottery needs a 'cost' per draw in points, or 'free_per_day' chances");
    json_t *pa = json_object_get(in, "pacing");
    if (pa && !json_is_null(pa)) {
        if (!json_is_boolean(pa))
            return sy_perr_fail(&e, "/pacing", "'pacing' must be true or false");
        t->pacing = json_is_true(pa);
    }
    json_t *g = json_object_get(in, "guarantee");
    if (g && !json_is_null(g)) {
        if (!json_is_object(g))
            return sy_perr_fail(
                &e, "/guarantee",
                "'guarantee' must be an object with 'after' (losing draws) and 'prize'");
        if (!sy_perr_only(&e, g, "/guarantee", gfields) ||
            !sy_perr_int(&e, g, "/guarantee", "after", true, 1, SY_LOTTERY_GUARANTEE_MAX,
                         &t->guarantee_after) ||
            !code_member(&e, g, "/guarantee", "prize", true, sy_benefit_code_valid,
                         "the code of one of the prizes", t->guarantee_prize,
                         sizeof t->guarantee_prize))
            return false;
        bool known = false;
        for (int k = 0; k < t->nprizes; k++)
            known |= !strcmp(t->prizes[k].code, t->guarantee_prize);
        if (!known)
            return sy_perr_fail(&e, "/guarantee/prize",
                                "'prize' must be the code of one of the prizes");
    }
    return true;
}

int64_t sy_lottery_released(const sy_lottery_table *t, const sy_lottery_prize *p, int64_t day)
{
    if (!t->pacing || day >= t->pace_until)
        return p->stock;
    if (day < t->pace_from)
        return 0;
    int64_t days = t->pace_until - t->pace_from + 1;
    return p->stock * (day - t->pace_from + 1) / days;
}

static json_t *reward_json(const sy_campaign_reward *r)
{
    if (r->item[0])
        return json_pack("{s:s}", "item", r->item);
    return json_pack("{s:I, s:s}", "points", (json_int_t)r->points, "point_type", r->point_type);
}

json_t *sy_lottery_table_json(const sy_lottery_table *t, int64_t day)
{
    json_t *ps = json_array();
    int64_t from = 0;
    for (int i = 0; i < t->nprizes; i++) {
        const sy_lottery_prize *p = &t->prizes[i];
        json_t *o =
            json_pack("{s:s, s:s, s:I, s:I, s:I, s:o, s:[I,I]}", "code", p->code, "name", p->name,
                      "weight", (json_int_t)p->weight, "stock", (json_int_t)p->stock, "used",
                      (json_int_t)p->used, "reward", reward_json(&p->reward), "range",
                      (json_int_t)from, (json_int_t)(from + p->weight));
        from += p->weight;
        if (day != SY_CAMPAIGN_UNSET) {
            int64_t rel = sy_lottery_released(t, p, day);
            json_object_set_new(o, "released", json_integer(rel));
            json_object_set_new(o, "available", json_integer(rel > p->used ? rel - p->used : 0));
        }
        json_array_append_new(ps, o);
    }
    json_t *o = json_object();
    json_object_set_new(o, "version", json_integer(t->version));
    json_object_set_new(o, "prizes", ps);
    json_object_set_new(o, "thanks",
                        json_pack("{s:I, s:s, s:[I,I]}", "weight", (json_int_t)t->thanks_weight,
                                  "name", t->thanks_name, "range", (json_int_t)from,
                                  (json_int_t)(from + t->thanks_weight)));
    json_object_set_new(o, "total_weight", json_integer(from + t->thanks_weight));
    json_object_set_new(o, "cost",
                        t->cost_points
                            ? json_pack("{s:I, s:s}", "points", (json_int_t)t->cost_points,
                                        "point_type", t->cost_type)
                            : json_null());
    json_object_set_new(o, "free_per_day", json_integer(t->free_per_day));
    json_object_set_new(o, "draws_per_day",
                        t->draws_per_day == SY_CAMPAIGN_UNSET ? json_null()
                                                              : json_integer(t->draws_per_day));
    json_object_set_new(o, "pacing", json_boolean(t->pacing));
    if (t->pacing) {
        char f[11], u[11];
        sy_format_date(t->pace_from, f);
        sy_format_date(t->pace_until, u);
        json_object_set_new(o, "paced_days", json_pack("{s:s, s:s}", "from", f, "until", u));
    }
    json_object_set_new(o, "guarantee",
                        t->guarantee_after == SY_CAMPAIGN_UNSET
                            ? json_null()
                            : json_pack("{s:I, s:s}", "after", (json_int_t)t->guarantee_after,
                                        "prize", t->guarantee_prize));
    json_object_set_new(o, "created_by", json_string(t->created_by));
    json_object_set_new(o, "created_at", sy_json_time(t->created_at));
    return o;
}

/* ------------------------------------------------------------------ */
/* define and load                                                     */

static void bind_or_null(sy_stmt *st, int idx, int64_t v)
{
    if (v == SY_CAMPAIGN_UNSET)
        sy_stmt_bind_null(st, idx);
    else
        sy_stmt_bind_i64(st, idx, v);
}

static const char *or_null(const char *s)
{
    return s && s[0] ? s : NULL;
}

/* A new prize table is a change of the campaign for maker-checker: its
 * author becomes the campaign's updated_by, so that key cannot approve it.
 * A paused campaign's new table goes back for approval (status
 * pending_approval, submitted by the author; the transition is logged):
 * resuming it alone would run prizes no second key has seen.
 * res->other: the campaign's status afterwards. */
static int table_changed(sy_conn *c, const char *tenant, const char *campaign, bool paused,
                         const char *actor, int64_t now_ms, sy_campaign_result *res)
{
    static const char sql_draft[] = "UPDATE campaigns SET updated_by = $3, updated_at = $4"
                                    " WHERE tenant_id = $1 AND id = $2";
    static const char sql_paused[] =
        "UPDATE campaigns SET updated_by = $3, updated_at = $4, status = 'pending_approval',"
        " submitted_by = $3, submitted_at = $4, approved_by = NULL, approved_at = NULL"
        " WHERE tenant_id = $1 AND id = $2 AND status = 'paused'";
    static const char sql_log[] =
        "INSERT INTO campaign_transitions (tenant_id, campaign_id, action, from_status,"
        " to_status, actor, note, created_at) VALUES ($1, $2, 'submit', 'paused',"
        " 'pending_approval', $3, 'new prize table', $4)";
    for (int i = 0; i < (paused ? 2 : 1); i++) {
        sy_stmt *st = sy_conn_prepare(c, i ? sql_log : paused ? sql_paused : sql_draft);
        if (!st)
            return SY_ERR;
        sy_stmt_bind_text(st, 1, tenant);
        sy_stmt_bind_text(st, 2, campaign);
        sy_stmt_bind_text(st, 3, actor);
        sy_stmt_bind_i64(st, 4, now_ms);
        int rc = sy_stmt_exec(st);
        if (rc != SY_OK)
            return rc;
        if (i == 0 && sy_conn_changes(c) != 1)
            return SY_ERR;
    }
    snprintf(res->other, sizeof res->other, "%s", paused ? "pending_approval" : "draft");
    return SY_OK;
}

int sy_lottery_define(sy_conn *c, const char *tenant, const char *campaign, sy_lottery_table *t,
                      const char *actor, int64_t now_ms, sy_campaign_result *res)
{
    static const char sql_next[] = "SELECT COALESCE(MAX(version), 0) + 1 FROM lottery_versions"
                                   " WHERE tenant_id = $1 AND campaign_id = $2";
    static const char sql_version[] =
        "INSERT INTO lottery_versions (tenant_id, campaign_id, version, cost_points, cost_type,"
        " free_per_day, draws_per_day, thanks_weight, thanks_name, pacing, pace_from, pace_until,"
        " guarantee_after, guarantee_prize, created_by, created_at) VALUES ($1, $2, $3, $4, $5,"
        " $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)";
    static const char sql_prize[] =
        "INSERT INTO lottery_prizes (tenant_id, campaign_id, version, code, position, name,"
        " weight, stock, points, point_type, item) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9,"
        " $10, $11)";
    memset(res, 0, sizeof *res);
    atomic_fetch_add_explicit(&g_def_gen, 1, memory_order_release);
    sy_campaign *cp;
    int rc = sy_campaign_load(c, tenant, campaign, &cp);
    if (rc != SY_OK)
        return rc;
    sy_campaign_status eff = sy_campaign_effective(cp, now_ms);
    int64_t starts = cp->starts_at, ends = cp->ends_at;
    bool lottery = cp->type == SY_CAMPAIGN_LOTTERY;
    snprintf(res->other, sizeof res->other, "%s",
             lottery ? sy_campaign_status_name(eff) : sy_campaign_type_name(cp->type));
    sy_campaign_free(cp);
    if (!lottery)
        return SY_CAMPAIGN_WRONG_TYPE;
    if (eff != SY_CST_DRAFT && eff != SY_CST_PAUSED)
        return SY_LOTTERY_NOT_EDITABLE;
    res->other[0] = '\0';
    /* the point types and items named exist (items: no goods) */
    sy_point_type pt;
    if (t->cost_points && (rc = sy_ledger_type_get(c, tenant, t->cost_type, &pt)) != SY_OK) {
        snprintf(res->other, sizeof res->other, "/cost/point_type");
        return rc == SY_DONE ? SY_CAMPAIGN_UNKNOWN_TYPE : rc;
    }
    for (int i = 0; i < t->nprizes; i++) {
        const sy_campaign_reward *r = &t->prizes[i].reward;
        int64_t pts, cost;
        if (r->item[0]) {
            rc = sy_campaign_reward_cost(c, tenant, r, &pts, &cost);
            if (rc > 0)
                snprintf(res->other, sizeof res->other, "/prizes/%d/reward/item", i);
        } else if ((rc = sy_ledger_type_get(c, tenant, r->point_type, &pt)) == SY_DONE) {
            snprintf(res->other, sizeof res->other, "/prizes/%d/reward/point_type", i);
            rc = SY_CAMPAIGN_UNKNOWN_TYPE;
        }
        if (rc != SY_OK)
            return rc;
    }
    char zone[65];
    if ((rc = sy_campaign_zone(c, tenant, zone)) != SY_OK)
        return rc;
    int64_t first = sy_campaign_day(zone, starts), today = sy_campaign_day(zone, now_ms);
    t->pace_from = today > first ? today : first;
    t->pace_until = sy_campaign_day(zone, ends - 1);
    if (t->pace_until < t->pace_from)
        t->pace_until = t->pace_from;
    sy_stmt *st = sy_conn_prepare(c, sql_next);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, campaign);
    rc = sy_stmt_step(st);
    t->version = rc == SY_ROW ? (int)sy_stmt_i64(st, 0) : 0;
    sy_stmt_reset(st);
    if (rc != SY_ROW)
        return rc < 0 ? rc : SY_ERR;
    snprintf(t->created_by, sizeof t->created_by, "%s", actor);
    t->created_at = now_ms;
    if (!(st = sy_conn_prepare(c, sql_version)))
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, campaign);
    sy_stmt_bind_i64(st, 3, t->version);
    sy_stmt_bind_i64(st, 4, t->cost_points);
    sy_stmt_bind_text(st, 5, t->cost_points ? t->cost_type : NULL);
    sy_stmt_bind_i64(st, 6, t->free_per_day);
    bind_or_null(st, 7, t->draws_per_day);
    sy_stmt_bind_i64(st, 8, t->thanks_weight);
    sy_stmt_bind_text(st, 9, t->thanks_name);
    sy_stmt_bind_i64(st, 10, t->pacing);
    sy_stmt_bind_i64(st, 11, t->pace_from);
    sy_stmt_bind_i64(st, 12, t->pace_until);
    bind_or_null(st, 13, t->guarantee_after);
    sy_stmt_bind_text(st, 14, t->guarantee_after == SY_CAMPAIGN_UNSET ? NULL : t->guarantee_prize);
    sy_stmt_bind_text(st, 15, actor);
    sy_stmt_bind_i64(st, 16, now_ms);
    if ((rc = sy_stmt_exec(st)) != SY_OK)
        return rc;
    for (int i = 0; i < t->nprizes; i++) {
        sy_lottery_prize *p = &t->prizes[i];
        p->used = 0;
        if (!(st = sy_conn_prepare(c, sql_prize)))
            return SY_ERR;
        sy_stmt_bind_text(st, 1, tenant);
        sy_stmt_bind_text(st, 2, campaign);
        sy_stmt_bind_i64(st, 3, t->version);
        sy_stmt_bind_text(st, 4, p->code);
        sy_stmt_bind_i64(st, 5, i);
        sy_stmt_bind_text(st, 6, p->name);
        sy_stmt_bind_i64(st, 7, p->weight);
        sy_stmt_bind_i64(st, 8, p->stock);
        sy_stmt_bind_i64(st, 9, p->reward.points);
        sy_stmt_bind_text(st, 10, p->reward.item[0] ? NULL : p->reward.point_type);
        sy_stmt_bind_text(st, 11, or_null(p->reward.item));
        if ((rc = sy_stmt_exec(st)) != SY_OK)
            return rc;
    }
    return table_changed(c, tenant, campaign, eff == SY_CST_PAUSED, actor, now_ms, res);
}

/* The lottery_versions columns a version is read from (table_from_row);
 * p prefixes each name. */
#define VERSION_COLUMNS(p)                                                                         \
    p "version, " p "cost_points, " p "cost_type, " p "free_per_day, " p "draws_per_day, " p       \
      "thanks_weight, " p "thanks_name, " p "pacing, " p "pace_from, " p "pace_until, " p          \
      "guarantee_after, " p "guarantee_prize, " p "created_by, " p "created_at"
#define VERSION_NCOLUMNS 14

/* A version's own row (columns col.. of st, VERSION_COLUMNS) into t, whose
 * prizes are left empty. */
static void table_from_row(sy_stmt *st, int col, sy_lottery_table *t)
{
    memset(t, 0, sizeof *t);
    t->version = (int)sy_stmt_i64(st, col + 0);
    t->cost_points = sy_stmt_i64(st, col + 1);
    snprintf(t->cost_type, sizeof t->cost_type, "%s", sy_stmt_text(st, col + 2));
    t->free_per_day = sy_stmt_i64(st, col + 3);
    t->draws_per_day = sy_stmt_is_null(st, col + 4) ? SY_CAMPAIGN_UNSET : sy_stmt_i64(st, col + 4);
    t->thanks_weight = sy_stmt_i64(st, col + 5);
    snprintf(t->thanks_name, sizeof t->thanks_name, "%s", sy_stmt_text(st, col + 6));
    t->pacing = sy_stmt_i64(st, col + 7) != 0;
    t->pace_from = sy_stmt_i64(st, col + 8);
    t->pace_until = sy_stmt_i64(st, col + 9);
    t->guarantee_after =
        sy_stmt_is_null(st, col + 10) ? SY_CAMPAIGN_UNSET : sy_stmt_i64(st, col + 10);
    snprintf(t->guarantee_prize, sizeof t->guarantee_prize, "%s", sy_stmt_text(st, col + 11));
    snprintf(t->created_by, sizeof t->created_by, "%s", sy_stmt_text(st, col + 12));
    t->created_at = sy_stmt_i64(st, col + 13);
}

/* The prizes of version t->version, in table order. */
static int load_prizes(sy_conn *c, const char *tenant, const char *campaign, sy_lottery_table *t)
{
    static const char sql_prizes[] =
        "SELECT code, name, weight, stock, used, points, point_type, item FROM lottery_prizes"
        " WHERE tenant_id = $1 AND campaign_id = $2 AND version = $3 ORDER BY position";
    sy_stmt *st = sy_conn_prepare(c, sql_prizes);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, campaign);
    sy_stmt_bind_i64(st, 3, t->version);
    int rc;
    t->nprizes = 0;
    while ((rc = sy_stmt_step(st)) == SY_ROW && t->nprizes < SY_LOTTERY_PRIZES_MAX) {
        sy_lottery_prize *p = &t->prizes[t->nprizes++];
        snprintf(p->code, sizeof p->code, "%s", sy_stmt_text(st, 0));
        snprintf(p->name, sizeof p->name, "%s", sy_stmt_text(st, 1));
        p->weight = sy_stmt_i64(st, 2);
        p->stock = sy_stmt_i64(st, 3);
        p->used = sy_stmt_i64(st, 4);
        p->reward.points = sy_stmt_i64(st, 5);
        snprintf(p->reward.point_type, sizeof p->reward.point_type, "%s", sy_stmt_text(st, 6));
        snprintf(p->reward.item, sizeof p->reward.item, "%s", sy_stmt_text(st, 7));
    }
    sy_stmt_reset(st);
    return rc == SY_DONE || rc == SY_ROW ? SY_OK : rc;
}

int sy_lottery_load(sy_conn *c, const char *tenant, const char *campaign, int version,
                    sy_lottery_table *t)
{
    /* clang-format off */
    static const char sql_version[] =
        "SELECT " VERSION_COLUMNS("") " FROM lottery_versions WHERE tenant_id = $1"
        " AND campaign_id = $2 AND ($3 = 0 OR version = $3) ORDER BY version DESC LIMIT 1";
    /* clang-format on */
    memset(t, 0, sizeof *t);
    sy_stmt *st = sy_conn_prepare(c, sql_version);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, campaign);
    sy_stmt_bind_i64(st, 3, version);
    int rc = sy_stmt_step(st);
    if (rc != SY_ROW) {
        sy_stmt_reset(st);
        return rc == SY_DONE ? SY_LOTTERY_NO_TABLE : rc;
    }
    table_from_row(st, 0, t);
    sy_stmt_reset(st);
    return load_prizes(c, tenant, campaign, t);
}

/* ------------------------------------------------------------------ */
/* the draw's definitions, remembered                                  */

/* A draw needs its campaign (the row, with its rules as JSON), the
 * tenant's zone and the newest prize table.  It reads all three in one
 * statement (k_def_sql), and parses them only when those values differ
 * from the ones its remembered parse was made from: the parse is a pure
 * function of the values, so whatever changed them — a pause, an end, a
 * new version, an edit made by SQL, a rolled-back batch — is seen by the
 * very next draw, with no invalidation to forget.  Only the campaign's
 * spent columns, which move with every prize, are left out of the
 * comparison (and refreshed on every draw); the prize rows' stock and used
 * are read at the draw for the prizes it touches.
 *
 * The one thing the comparison does not see is a version's prize rows
 * (names, weights, rewards), which sy_lottery_define writes once with the
 * version row: a version number used again after a failed commit could
 * carry other prizes under an identical version row, so define bumps
 * g_def_gen and every remembered table made before it is parsed again.
 *
 * The entries are the writer thread's in practice; a mutex (uncontended)
 * keeps any other caller (tests, the command line) correct too. */

/* one letter per k_def_sql column: T text, I integer, x not compared */
static const char k_def_types[] = "TTTTIIIITIIIIIxxIIITTTTTTIIIII" /* the campaign */
                                  "T"                              /* the zone */
                                  "IITIIITIIIITTI";                /* the newest version */
/* clang-format off */
static const char k_def_sql[] =
    "SELECT " SY_CAMPAIGN_COLUMNS("cp.") ","
    " CASE WHEN tn.id IS NULL THEN 'UTC' ELSE tn.timezone END, " VERSION_COLUMNS("v.")
    " FROM campaigns cp LEFT JOIN tenants tn ON tn.id = cp.tenant_id"
    " LEFT JOIN lottery_versions v ON v.tenant_id = cp.tenant_id AND v.campaign_id = cp.id"
    " AND v.version = (SELECT MAX(version) FROM lottery_versions"
    "   WHERE tenant_id = cp.tenant_id AND campaign_id = cp.id)"
    " WHERE cp.tenant_id = $1 AND cp.id = $2";
/* clang-format on */
#define DEF_ZONE SY_CAMPAIGN_NCOLUMNS
#define DEF_VERSION (DEF_ZONE + 1)
#define DEF_CACHE_MAX 32

_Static_assert(sizeof k_def_types - 1 == DEF_VERSION + VERSION_NCOLUMNS,
               "k_def_types names every column of k_def_sql");

typedef struct def_entry {
    char *tenant, *id;  /* NULL: a free slot */
    uint64_t gen;       /* g_def_gen when parsed */
    unsigned char *row; /* the compared values (def_encode) */
    size_t rowlen;
    sy_campaign *cp; /* spent_points and spent_cost: as read by this draw */
    char zone[65];
    sy_lottery_table *t; /* NULL: no prize table yet */
    uint64_t tick;       /* last use, for eviction */
} def_entry;

static pthread_mutex_t g_def_mu = PTHREAD_MUTEX_INITIALIZER;
static def_entry g_defs[DEF_CACHE_MAX];
static uint64_t g_def_tick;

/* Encodes the compared columns of st's row into out (NULL: only measure);
 * returns the length. */
static size_t def_encode(sy_stmt *st, unsigned char *out)
{
    size_t n = 0;
    for (int i = 0; k_def_types[i]; i++) {
        if (k_def_types[i] == 'x')
            continue;
        if (sy_stmt_is_null(st, i)) {
            if (out)
                out[n] = 0;
            n += 1;
        } else if (k_def_types[i] == 'I') {
            int64_t v = sy_stmt_i64(st, i);
            if (out) {
                out[n] = 1;
                memcpy(out + n + 1, &v, sizeof v);
            }
            n += 1 + sizeof v;
        } else {
            const char *v = sy_stmt_text(st, i);
            uint32_t len = (uint32_t)sy_stmt_len(st, i);
            if (out) {
                out[n] = 2;
                memcpy(out + n + 1, &len, sizeof len);
                memcpy(out + n + 1 + sizeof len, v, len);
            }
            n += 1 + sizeof len + len;
        }
    }
    return n;
}

/* Whether st's row holds the values encoded in row (def_encode's
 * encoding), compared in place. */
static bool def_same(sy_stmt *st, const unsigned char *row, size_t len)
{
    size_t n = 0;
    for (int i = 0; k_def_types[i]; i++) {
        if (k_def_types[i] == 'x')
            continue;
        if (n >= len)
            return false;
        if (sy_stmt_is_null(st, i)) {
            if (row[n++] != 0)
                return false;
        } else if (k_def_types[i] == 'I') {
            int64_t v = sy_stmt_i64(st, i);
            if (row[n] != 1 || len - n < 1 + sizeof v || memcmp(row + n + 1, &v, sizeof v) != 0)
                return false;
            n += 1 + sizeof v;
        } else {
            const char *v = sy_stmt_text(st, i);
            uint32_t vlen = (uint32_t)sy_stmt_len(st, i), was;
            if (row[n] != 2 || len - n < 1 + sizeof was)
                return false;
            memcpy(&was, row + n + 1, sizeof was);
            n += 1 + sizeof was;
            if (was != vlen || len - n < vlen || memcmp(row + n, v, vlen) != 0)
                return false;
            n += vlen;
        }
    }
    return n == len;
}

static void def_drop(def_entry *e)
{
    free(e->tenant);
    free(e->id);
    free(e->row);
    sy_campaign_free(e->cp);
    free(e->t);
    memset(e, 0, sizeof *e);
}

void sy_lottery_cache_clear(void)
{
    pthread_mutex_lock(&g_def_mu);
    for (int i = 0; i < DEF_CACHE_MAX; i++)
        def_drop(&g_defs[i]);
    pthread_mutex_unlock(&g_def_mu);
}

void sy_lottery_cache_stats(uint64_t *hits, uint64_t *misses)
{
    *hits = atomic_load_explicit(&g_def_hits, memory_order_relaxed);
    *misses = atomic_load_explicit(&g_def_misses, memory_order_relaxed);
}

/* The draw's definitions of campaign, as of this transaction (g_def_mu
 * held).  SY_OK with *out set, SY_CAMPAIGN_NOT_FOUND or a store error. */
static int def_get(sy_conn *c, const char *tenant, const char *campaign, def_entry **out)
{
    *out = NULL;
    sy_stmt *st = sy_conn_prepare(c, k_def_sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, campaign);
    int rc = sy_stmt_step(st);
    if (rc != SY_ROW) {
        sy_stmt_reset(st);
        return rc == SY_DONE ? SY_CAMPAIGN_NOT_FOUND : rc;
    }
    uint64_t gen = atomic_load_explicit(&g_def_gen, memory_order_acquire);
    /* the campaign's entry; else the slot it takes: a free one, or the
     * least recently used */
    def_entry *e = NULL, *victim = &g_defs[0];
    for (int i = 0; i < DEF_CACHE_MAX && !e; i++) {
        def_entry *x = &g_defs[i];
        if (x->tenant && !strcmp(x->tenant, tenant) && !strcmp(x->id, campaign))
            e = x;
        else if (victim->tenant && (!x->tenant || x->tick < victim->tick))
            victim = x;
    }
    bool miss = !(e && e->gen == gen && def_same(st, e->row, e->rowlen));
    if (!miss) {
        atomic_fetch_add_explicit(&g_def_hits, 1, memory_order_relaxed);
    } else {
        atomic_fetch_add_explicit(&g_def_misses, 1, memory_order_relaxed);
        if (!e)
            e = victim;
        def_drop(e);
        if ((rc = sy_campaign_from_row(st, 0, tenant, campaign, &e->cp)) != SY_OK) {
            sy_stmt_reset(st);
            return rc;
        }
        snprintf(e->zone, sizeof e->zone, "%s", sy_stmt_text(st, DEF_ZONE));
        if (!sy_stmt_is_null(st, DEF_VERSION)) {
            e->t = sy_xmalloc(sizeof *e->t);
            table_from_row(st, DEF_VERSION, e->t);
        }
        e->tenant = sy_xstrdup(tenant);
        e->id = sy_xstrdup(campaign);
        e->gen = gen;
        e->rowlen = def_encode(st, NULL);
        e->row = sy_xmalloc(e->rowlen);
        def_encode(st, e->row);
    }
    e->cp->spent_points = sy_stmt_i64(st, SY_CAMPAIGN_COL_SPENT_POINTS);
    e->cp->spent_cost = sy_stmt_i64(st, SY_CAMPAIGN_COL_SPENT_COST);
    sy_stmt_reset(st);
    /* a new entry's prize rows, once the statement is done with */
    if (miss && e->t && (rc = load_prizes(c, tenant, campaign, e->t)) != SY_OK) {
        def_drop(e);
        return rc;
    }
    e->tick = ++g_def_tick;
    *out = e;
    return SY_OK;
}

/* ------------------------------------------------------------------ */
/* the draw                                                            */

/* The customer's draws on business days from..to (sy_campaign_counter). */
static int count_draws(sy_conn *c, const sy_campaign *cp, const char *tenant, const char *no,
                       int64_t from_day, int64_t to_day, int64_t *n)
{
    static const char sql[] =
        "SELECT COUNT(*) FROM lottery_draws WHERE tenant_id = $1 AND campaign_id = $2"
        " AND customer_no = $3 AND day >= $4 AND day <= $5";
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

/* The customer's last draw: its number, business day, number that day and
 * losing streak (all 0: none). */
static int last_draw(sy_conn *c, const char *tenant, const char *id, const char *no, int64_t *n,
                     int64_t *day, int64_t *day_n, int64_t *streak)
{
    static const char sql[] =
        "SELECT n, day, day_n, losing_streak FROM lottery_draws WHERE tenant_id = $1"
        " AND campaign_id = $2 AND customer_no = $3 ORDER BY n DESC LIMIT 1";
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, id);
    sy_stmt_bind_text(st, 3, no);
    int rc = sy_stmt_step(st);
    bool row = rc == SY_ROW;
    *n = row ? sy_stmt_i64(st, 0) : 0;
    *day = row ? sy_stmt_i64(st, 1) : 0;
    *day_n = row ? sy_stmt_i64(st, 2) : 0;
    *streak = row ? sy_stmt_i64(st, 3) : 0;
    sy_stmt_reset(st);
    return rc == SY_ROW || rc == SY_DONE ? SY_OK : rc;
}

static int take_stock(sy_conn *c, const char *tenant, const char *id, int version, const char *code)
{
    static const char sql[] =
        "UPDATE lottery_prizes SET used = used + 1 WHERE tenant_id = $1 AND campaign_id = $2"
        " AND version = $3 AND code = $4 AND used < stock";
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, id);
    sy_stmt_bind_i64(st, 3, version);
    sy_stmt_bind_text(st, 4, code);
    int rc = sy_stmt_exec(st);
    if (rc == SY_OK && sy_conn_changes(c) != 1) {
        sy_error("lottery %s/%s: prize %s taken past its stock", tenant, id, code);
        return SY_ERR;
    }
    return rc;
}

static int insert_draw(sy_conn *c, const sy_campaign_who *w, const char *campaign,
                       const sy_lottery_outcome *o, const char *device, const char *ip)
{
    static const char sql[] =
        "INSERT INTO lottery_draws (tenant_id, campaign_id, id, customer_no, n, version, day,"
        " week, random, total_weight, picked, outcome, prize, reason, free, cost_points,"
        " cost_type, spend_entry, points, point_type, item, grant_code, ledger_entry,"
        " budget_cost, losing_streak, device_id, ip, created_at, day_n, idempotency_key)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,"
        " $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30)";
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, w->tenant);
    sy_stmt_bind_text(st, 2, campaign);
    sy_stmt_bind_text(st, 3, o->draw_id);
    sy_stmt_bind_text(st, 4, w->customer_no);
    sy_stmt_bind_i64(st, 5, o->n);
    sy_stmt_bind_i64(st, 6, o->version);
    sy_stmt_bind_i64(st, 7, o->day);
    sy_stmt_bind_i64(st, 8, sy_campaign_week(o->day));
    sy_stmt_bind_i64(st, 9, o->random);
    sy_stmt_bind_i64(st, 10, o->total);
    sy_stmt_bind_text(st, 11, or_null(o->picked));
    sy_stmt_bind_text(st, 12, o->won ? "prize" : "thanks");
    sy_stmt_bind_text(st, 13, o->won ? o->prize : NULL);
    sy_stmt_bind_text(st, 14, or_null(o->reason));
    sy_stmt_bind_i64(st, 15, o->free);
    sy_stmt_bind_i64(st, 16, o->cost_points);
    sy_stmt_bind_text(st, 17, o->cost_points ? o->cost_type : NULL);
    sy_stmt_bind_text(st, 18, or_null(o->spend_entry));
    sy_stmt_bind_i64(st, 19, o->reward.points);
    sy_stmt_bind_text(st, 20, o->reward.points ? o->reward.point_type : NULL);
    sy_stmt_bind_text(st, 21, or_null(o->reward.item));
    sy_stmt_bind_text(st, 22, or_null(o->grant_code));
    sy_stmt_bind_text(st, 23, or_null(o->ledger_entry));
    sy_stmt_bind_i64(st, 24, o->budget_cost);
    sy_stmt_bind_i64(st, 25, o->losing_streak);
    sy_stmt_bind_text(st, 26, or_null(device));
    sy_stmt_bind_text(st, 27, or_null(ip));
    sy_stmt_bind_i64(st, 28, w->now_ms);
    sy_stmt_bind_i64(st, 29, o->draws_today);
    sy_stmt_bind_text(st, 30, w->key);
    return sy_stmt_exec(st);
}

/* Whether prize p has stock released and left on day. */
static bool available(const sy_lottery_table *t, const sy_lottery_prize *p, int64_t day,
                      const char **why)
{
    if (p->used >= p->stock) {
        *why = "out-of-stock";
        return false;
    }
    if (p->used >= sy_lottery_released(t, p, day)) {
        *why = "paced";
        return false;
    }
    return true;
}

/* Prize p of t as it stands now: its stock and used read in this
 * transaction (the remembered table's are those of when it was read). */
static int prize_now(sy_conn *c, const char *tenant, const char *campaign,
                     const sy_lottery_table *t, const sy_lottery_prize *p, sy_lottery_prize *now)
{
    static const char sql[] = "SELECT stock, used FROM lottery_prizes WHERE tenant_id = $1"
                              " AND campaign_id = $2 AND version = $3 AND code = $4";
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, campaign);
    sy_stmt_bind_i64(st, 3, t->version);
    sy_stmt_bind_text(st, 4, p->code);
    int rc = sy_stmt_step(st);
    *now = *p;
    if (rc == SY_ROW) {
        now->stock = sy_stmt_i64(st, 0);
        now->used = sy_stmt_i64(st, 1);
    }
    sy_stmt_reset(st);
    if (rc == SY_DONE) {
        sy_error("lottery %s/%s: prize %s of version %d is gone", tenant, campaign, p->code,
                 t->version);
        return SY_ERR;
    }
    return rc == SY_ROW ? SY_OK : rc;
}

/* The draw an Idempotency-Key made before in this campaign, if any:
 * SY_LOTTERY_REPLAY (the same customer) or SY_LOTTERY_KEY_USED, with
 * out->draw_id; SY_OK when the key is new. */
static int keyed_draw(sy_conn *c, const sy_campaign_who *w, const char *campaign,
                      sy_lottery_outcome *out)
{
    static const char sql[] = "SELECT id, customer_no FROM lottery_draws WHERE tenant_id = $1"
                              " AND campaign_id = $2 AND idempotency_key = $3";
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, w->tenant);
    sy_stmt_bind_text(st, 2, campaign);
    sy_stmt_bind_text(st, 3, w->key);
    int rc = sy_stmt_step(st);
    if (rc == SY_ROW) {
        snprintf(out->draw_id, sizeof out->draw_id, "%s", sy_stmt_text(st, 0));
        rc = strcmp(sy_stmt_text(st, 1), w->customer_no) ? SY_LOTTERY_KEY_USED : SY_LOTTERY_REPLAY;
    }
    sy_stmt_reset(st);
    return rc == SY_DONE ? SY_OK : rc;
}

int sy_lottery_draw(sy_conn *c, const sy_campaign_who *w, const char *campaign, const char *device,
                    const char *ip, sy_lottery_outcome *out)
{
    memset(out, 0, sizeof *out);
    out->chances_left = SY_CAMPAIGN_UNSET;
    if (w->key) {
        int krc = keyed_draw(c, w, campaign, out);
        if (krc != SY_OK)
            return krc;
    }
    pthread_mutex_lock(&g_def_mu);
    def_entry *def;
    int rc = def_get(c, w->tenant, campaign, &def);
    if (rc != SY_OK) {
        pthread_mutex_unlock(&g_def_mu);
        return rc;
    }
    const sy_campaign *cp = def->cp;
    const sy_lottery_table *t = def->t;
    const char *zone = def->zone;
    char reason[160];
    if (cp->type != SY_CAMPAIGN_LOTTERY) {
        snprintf(out->why.other, sizeof out->why.other, "%s", sy_campaign_type_name(cp->type));
        rc = SY_CAMPAIGN_WRONG_TYPE;
        goto done;
    }
    if ((rc = sy_campaign_admit(c, cp, w, zone, w->now_ms, &out->why)) != SY_OK)
        goto done;
    if (!t) {
        rc = SY_LOTTERY_NO_TABLE;
        goto done;
    }
    int64_t day = sy_campaign_day(zone, w->now_ms), today_n, last_day, last_day_n, prev_streak;
    out->day = day;
    out->version = t->version;
    if ((rc = last_draw(c, w->tenant, cp->id, w->customer_no, &out->n, &last_day, &last_day_n,
                        &prev_streak)) != SY_OK)
        goto done;
    out->n++;
    /* the day's draws: from the last one, unless the clock went back */
    today_n = last_day == day ? last_day_n : 0;
    if (out->n > 1 && last_day > day &&
        (rc = count_draws(c, cp, w->tenant, w->customer_no, day, day, &today_n)) != SY_OK)
        goto done;
    if (t->draws_per_day != SY_CAMPAIGN_UNSET && today_n >= t->draws_per_day) {
        snprintf(out->why.other, sizeof out->why.other, "day");
        out->why.limit = t->draws_per_day;
        rc = SY_CAMPAIGN_LIMIT_REACHED;
        goto done;
    }
    if ((rc = sy_campaign_check_limits(c, cp, w->tenant, w->customer_no, day, count_draws,
                                       &out->why)) != SY_OK)
        goto done;
    out->free = today_n < t->free_per_day;
    if (!out->free && !t->cost_points) {
        rc = SY_LOTTERY_NO_CHANCES;
        goto done;
    }
    /* the draw: one random value over the version's ranges */
    int64_t total = t->thanks_weight;
    for (int i = 0; i < t->nprizes; i++)
        total += t->prizes[i].weight;
    out->total = (uint32_t)total;
    out->random = draw_random(out->total);
    const sy_lottery_prize *pick = NULL, *win = NULL;
    int64_t from = 0;
    for (int i = 0; i < t->nprizes && !pick; i++) {
        if (out->random < from + t->prizes[i].weight)
            pick = &t->prizes[i];
        from += t->prizes[i].weight;
    }
    const char *why = NULL;
    sy_lottery_prize now;
    if (pick) {
        snprintf(out->picked, sizeof out->picked, "%s", pick->code);
        if ((rc = prize_now(c, w->tenant, cp->id, t, pick, &now)) != SY_OK)
            goto done;
        if (available(t, &now, day, &why))
            win = pick;
    }
    if (!win && t->guarantee_after != SY_CAMPAIGN_UNSET && prev_streak >= t->guarantee_after) {
        for (int i = 0; i < t->nprizes; i++) {
            const char *gwhy;
            if (strcmp(t->prizes[i].code, t->guarantee_prize) != 0)
                continue;
            if ((rc = prize_now(c, w->tenant, cp->id, t, &t->prizes[i], &now)) != SY_OK)
                goto done;
            if (available(t, &now, day, &gwhy)) {
                win = &t->prizes[i];
                why = "guarantee";
            }
        }
    }
    if (why)
        snprintf(out->reason, sizeof out->reason, "%s", why);
    int64_t points = 0, cost = 0;
    if (win &&
        ((rc = sy_campaign_reward_cost(c, w->tenant, &win->reward, &points, &cost)) != SY_OK ||
         (rc = sy_campaign_budget_allows(cp, points, cost, &out->why)) != SY_OK))
        goto done;
    sy_ordered_id("ld_", w->now_ms, out->draw_id, sizeof out->draw_id);
    if (!out->free) {
        char account[80];
        snprintf(account, sizeof account, "campaign:%s", cp->id);
        snprintf(reason, sizeof reason, "lottery draw, campaign %s", cp->id);
        sy_ledger_move m = {.tenant = w->tenant,
                            .customer_no = w->customer_no,
                            .point_type = t->cost_type,
                            .amount = t->cost_points,
                            .account = account,
                            .reason = reason,
                            .reference = out->draw_id,
                            .operator_id = w->operator_id,
                            .now_ms = w->now_ms,
                            .customer_checked = true};
        sy_ledger_result lr;
        rc = sy_ledger_spend(c, &m, &lr);
        if (rc == SY_LEDGER_INSUFFICIENT || rc == SY_LEDGER_UNKNOWN_TYPE) {
            out->why.balance = rc == SY_LEDGER_INSUFFICIENT ? lr.balance : 0;
            rc = SY_CAMPAIGN_INSUFFICIENT;
        } else if (rc > 0) {
            snprintf(out->why.other, sizeof out->why.other, "points refused (%d)", rc);
            rc = SY_CAMPAIGN_REWARD_REFUSED;
        }
        if (rc != SY_OK)
            goto done;
        out->cost_points = t->cost_points;
        snprintf(out->cost_type, sizeof out->cost_type, "%s", t->cost_type);
        snprintf(out->spend_entry, sizeof out->spend_entry, "%s", lr.entry_id);
    }
    if (win) {
        sy_campaign_outcome io;
        memset(&io, 0, sizeof io);
        snprintf(reason, sizeof reason, "lottery prize %s, campaign %s", win->code, cp->id);
        rc = sy_campaign_issue(c, cp, w, &win->reward, out->draw_id, reason, &io);
        if (rc == SY_CAMPAIGN_REWARD_REFUSED) {
            /* the catalogue refused the item (its own stock, limits, window):
             * nothing was issued, the draw stands as thanks */
            snprintf(out->reason, sizeof out->reason, "%s", io.why.other);
            win = NULL;
            points = cost = 0;
            rc = SY_OK;
        } else if (rc != SY_OK) {
            goto done;
        } else {
            snprintf(out->ledger_entry, sizeof out->ledger_entry, "%s", io.ledger_entry);
            snprintf(out->grant_code, sizeof out->grant_code, "%s", io.grant_code);
        }
    }
    if (win) {
        out->won = true;
        snprintf(out->prize, sizeof out->prize, "%s", win->code);
        snprintf(out->prize_name, sizeof out->prize_name, "%s", win->name);
        out->reward = win->reward;
        out->budget_cost = cost;
        out->losing_streak = 0;
        if ((rc = take_stock(c, w->tenant, cp->id, t->version, win->code)) != SY_OK ||
            (rc = sy_campaign_spend_budget(c, w->tenant, cp->id, points, cost)) != SY_OK)
            goto done;
    } else {
        snprintf(out->prize_name, sizeof out->prize_name, "%s", t->thanks_name);
        out->losing_streak = (int)prev_streak + 1;
    }
    out->draws_today = today_n + 1;
    if ((rc = insert_draw(c, w, cp->id, out, device, ip)) != SY_OK)
        goto done;
    /* the draws left today: the table's daily cap and the campaign's own
     * limits, each counting this draw */
    int64_t left = SY_CAMPAIGN_UNSET;
    if (t->draws_per_day != SY_CAMPAIGN_UNSET)
        left = t->draws_per_day - out->draws_today;
    /* draws that cost nothing end with the free ones */
    if (!t->cost_points && (left == SY_CAMPAIGN_UNSET || t->free_per_day - out->draws_today < left))
        left = t->free_per_day - out->draws_today;
    if (cp->limit_day != SY_CAMPAIGN_UNSET &&
        (left == SY_CAMPAIGN_UNSET || cp->limit_day - out->draws_today < left))
        left = cp->limit_day - out->draws_today;
    if (cp->limit_total != SY_CAMPAIGN_UNSET &&
        (left == SY_CAMPAIGN_UNSET || cp->limit_total - out->n < left))
        left = cp->limit_total - out->n; /* n: the customer's draws, this one included */
    if (cp->limit_week != SY_CAMPAIGN_UNSET) {
        int64_t week = sy_campaign_week(day), in_week;
        if ((rc = count_draws(c, cp, w->tenant, w->customer_no, week * 7 - 3, week * 7 + 3,
                              &in_week)) != SY_OK)
            goto done;
        if (left == SY_CAMPAIGN_UNSET || cp->limit_week - in_week < left)
            left = cp->limit_week - in_week;
    }
    out->chances_left = left == SY_CAMPAIGN_UNSET ? left : left > 0 ? left : 0;
done:
    pthread_mutex_unlock(&g_def_mu);
    return rc;
}

void sy_lottery_count(const sy_lottery_outcome *out)
{
    atomic_fetch_add_explicit(out->won ? &g_draws_won : &g_draws_thanks, 1, memory_order_relaxed);
    if (!strcmp(out->reason, "guarantee"))
        atomic_fetch_add_explicit(&g_draws_guaranteed, 1, memory_order_relaxed);
}

/* ------------------------------------------------------------------ */
/* explain a draw                                                      */

int sy_lottery_draw_outcome(sy_conn *c, const char *tenant, const char *campaign, const char *id,
                            sy_lottery_outcome *out)
{
    static const char sql[] =
        "SELECT d.version, d.day, d.random, d.total_weight, d.picked, d.outcome, d.prize,"
        " d.reason, d.free, d.cost_points, d.cost_type, d.spend_entry, d.points, d.point_type,"
        " d.item, d.grant_code, d.ledger_entry, d.budget_cost, d.losing_streak, d.day_n, d.n,"
        " COALESCE(p.name, v.thanks_name)"
        " FROM lottery_draws d"
        " LEFT JOIN lottery_prizes p ON p.tenant_id = d.tenant_id"
        "   AND p.campaign_id = d.campaign_id AND p.version = d.version AND p.code = d.prize"
        " LEFT JOIN lottery_versions v ON v.tenant_id = d.tenant_id"
        "   AND v.campaign_id = d.campaign_id AND v.version = d.version"
        " WHERE d.tenant_id = $1 AND d.campaign_id = $2 AND d.id = $3";
    memset(out, 0, sizeof *out);
    out->chances_left = SY_CAMPAIGN_UNSET;
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, campaign);
    sy_stmt_bind_text(st, 3, id);
    int rc = sy_stmt_step(st);
    if (rc == SY_ROW) {
#define TXT(dst, col)                                                                              \
    snprintf(dst, sizeof dst, "%s", sy_stmt_is_null(st, col) ? "" : sy_stmt_text(st, col))
        snprintf(out->draw_id, sizeof out->draw_id, "%s", id);
        out->version = (int)sy_stmt_i64(st, 0);
        out->day = sy_stmt_i64(st, 1);
        out->random = (uint32_t)sy_stmt_i64(st, 2);
        out->total = (uint32_t)sy_stmt_i64(st, 3);
        TXT(out->picked, 4);
        out->won = !strcmp(sy_stmt_text(st, 5), "prize");
        TXT(out->prize, 6);
        TXT(out->reason, 7);
        out->free = sy_stmt_i64(st, 8) != 0;
        out->cost_points = sy_stmt_i64(st, 9);
        TXT(out->cost_type, 10);
        TXT(out->spend_entry, 11);
        out->reward.points = sy_stmt_i64(st, 12);
        TXT(out->reward.point_type, 13);
        TXT(out->reward.item, 14);
        TXT(out->grant_code, 15);
        TXT(out->ledger_entry, 16);
        out->budget_cost = sy_stmt_i64(st, 17);
        out->losing_streak = (int)sy_stmt_i64(st, 18);
        out->draws_today = sy_stmt_i64(st, 19);
        out->n = sy_stmt_i64(st, 20);
        TXT(out->prize_name, 21);
#undef TXT
    }
    sy_stmt_reset(st);
    return rc == SY_ROW ? SY_OK : rc == SY_DONE ? SY_LOTTERY_NO_DRAW : rc;
}

int sy_lottery_draw_get(sy_conn *c, const char *tenant, const char *campaign, const char *id,
                        json_t **out)
{
    static const char sql[] =
        "SELECT customer_no, n, version, day, random, total_weight, picked, outcome, prize,"
        " reason, free, cost_points, cost_type, spend_entry, points, point_type, item,"
        " grant_code, ledger_entry, budget_cost, losing_streak, device_id, ip, created_at"
        " FROM lottery_draws WHERE tenant_id = $1 AND campaign_id = $2 AND id = $3";
    *out = NULL;
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, campaign);
    sy_stmt_bind_text(st, 3, id);
    int rc = sy_stmt_step(st);
    if (rc != SY_ROW) {
        sy_stmt_reset(st);
        return rc == SY_DONE ? SY_LOTTERY_NO_DRAW : rc;
    }
    char d[11];
    sy_format_date(sy_stmt_i64(st, 3), d);
    int version = (int)sy_stmt_i64(st, 2);
    int64_t random = sy_stmt_i64(st, 4), total = sy_stmt_i64(st, 5);
    char picked[65];
    snprintf(picked, sizeof picked, "%s", sy_stmt_text(st, 6));
    json_t *o = json_pack(
        "{s:s, s:s, s:s, s:I, s:i, s:s, s:s, s:I, s:I, s:b, s:i, s:o}", "id", id, "campaign",
        campaign, "customer_no", sy_stmt_text(st, 0), "n", (json_int_t)sy_stmt_i64(st, 1),
        "version", version, "day", d, "outcome", sy_stmt_text(st, 7), "random", (json_int_t)random,
        "total_weight", (json_int_t)total, "free", sy_stmt_i64(st, 10) != 0, "losing_streak",
        (int)sy_stmt_i64(st, 20), "created_at", sy_json_time(sy_stmt_i64(st, 23)));
    json_object_set_new(o, "picked", picked[0] ? json_string(picked) : json_null());
    json_object_set_new(o, "reason",
                        sy_stmt_is_null(st, 9) ? json_null() : json_string(sy_stmt_text(st, 9)));
    json_object_set_new(o, "cost",
                        sy_stmt_i64(st, 11)
                            ? json_pack("{s:I, s:s, s:s}", "points",
                                        (json_int_t)sy_stmt_i64(st, 11), "point_type",
                                        sy_stmt_text(st, 12), "ledger_entry", sy_stmt_text(st, 13))
                            : json_null());
    json_t *prize = json_null();
    if (!sy_stmt_is_null(st, 8)) {
        prize = json_pack("{s:s}", "code", sy_stmt_text(st, 8));
        if (sy_stmt_i64(st, 14)) {
            json_object_set_new(prize, "points", json_integer(sy_stmt_i64(st, 14)));
            json_object_set_new(prize, "point_type", json_string(sy_stmt_text(st, 15)));
            json_object_set_new(prize, "ledger_entry", json_string(sy_stmt_text(st, 18)));
        } else {
            json_object_set_new(prize, "item", json_string(sy_stmt_text(st, 16)));
            json_object_set_new(prize, "grant", json_string(sy_stmt_text(st, 17)));
            json_object_set_new(prize, "budget_cost", json_integer(sy_stmt_i64(st, 19)));
        }
    }
    json_object_set_new(o, "prize", prize);
    json_object_set_new(o, "device_id",
                        sy_stmt_is_null(st, 21) ? json_null() : json_string(sy_stmt_text(st, 21)));
    json_object_set_new(o, "ip",
                        sy_stmt_is_null(st, 22) ? json_null() : json_string(sy_stmt_text(st, 22)));
    sy_stmt_reset(st);
    /* the explanation, from the version it was drawn against */
    sy_lottery_table *t = sy_xmalloc(sizeof *t);
    rc = sy_lottery_load(c, tenant, campaign, version, t);
    if (rc == SY_OK) {
        json_t *ranges = json_array();
        int64_t from = 0;
        const char *fell = NULL;
        for (int i = 0; i < t->nprizes; i++) {
            json_array_append_new(ranges, json_pack("{s:s, s:I, s:I}", "outcome", t->prizes[i].code,
                                                    "from", (json_int_t)from, "until",
                                                    (json_int_t)(from + t->prizes[i].weight)));
            if (!fell && random >= from && random < from + t->prizes[i].weight)
                fell = t->prizes[i].code;
            from += t->prizes[i].weight;
        }
        json_array_append_new(ranges, json_pack("{s:s, s:I, s:I}", "outcome", "thanks", "from",
                                                (json_int_t)from, "until",
                                                (json_int_t)(from + t->thanks_weight)));
        char text[400];
        const char *outcome = json_string_value(json_object_get(o, "outcome"));
        const char *rsn = json_string_value(json_object_get(o, "reason"));
        snprintf(text, sizeof text,
                 "random value %lld of [0, %lld) fell in the range of %s in prize table version"
                 " %d; outcome: %s%s%s",
                 (long long)random, (long long)total, fell ? fell : "thanks", version, outcome,
                 rsn ? " because " : "", rsn ? rsn : "");
        json_object_set_new(o, "explain",
                            json_pack("{s:o, s:s, s:s}", "ranges", ranges, "fell_in",
                                      fell ? fell : "thanks", "text", text));
        rc = SY_OK;
    } else if (rc == SY_LOTTERY_NO_TABLE) {
        rc = SY_ERR; /* a draw without its version: the store is inconsistent */
    }
    free(t);
    if (rc != SY_OK) {
        json_decref(o);
        return rc;
    }
    *out = o;
    return SY_OK;
}

/* ------------------------------------------------------------------ */
/* siyu check                                                          */

int sy_lottery_check(sy_conn *c, const char *tenant, void (*report)(void *ud, const char *line),
                     void *ud, int64_t *violations, int64_t *checked)
{
    /* the budget: spent = what check-ins, tasks, draws, referral rewards and coupon
     * claims issued */
    static const char sql_budget[] =
        "SELECT cp.id, cp.spent_points, cp.spent_cost,"
        " COALESCE((SELECT SUM(points) FROM campaign_actions a WHERE a.tenant_id = cp.tenant_id"
        "   AND a.campaign_id = cp.id), 0) + COALESCE((SELECT SUM(points) FROM lottery_draws d"
        "   WHERE d.tenant_id = cp.tenant_id AND d.campaign_id = cp.id), 0)"
        " + COALESCE((SELECT SUM(points) FROM referral_rewards rr WHERE rr.tenant_id ="
        "   cp.tenant_id AND rr.campaign_id = cp.id), 0),"
        " COALESCE((SELECT SUM(cost) FROM campaign_actions a WHERE a.tenant_id = cp.tenant_id"
        "   AND a.campaign_id = cp.id), 0) + COALESCE((SELECT SUM(budget_cost) FROM"
        "   lottery_draws d WHERE d.tenant_id = cp.tenant_id AND d.campaign_id = cp.id), 0)"
        " + COALESCE((SELECT SUM(cost) FROM referral_rewards rr WHERE rr.tenant_id ="
        "   cp.tenant_id AND rr.campaign_id = cp.id), 0)"
        " + COALESCE((SELECT SUM(cost) FROM coupon_claims cc WHERE cc.tenant_id ="
        "   cp.tenant_id AND cc.campaign_id = cp.id), 0),"
        " cp.budget_points, cp.budget_cost"
        " FROM campaigns cp WHERE cp.tenant_id = $1 ORDER BY cp.id";
    /* the stock: used = draws that won the prize, and used <= stock */
    static const char sql_stock[] =
        "SELECT p.campaign_id, p.version, p.code, p.stock, p.used, (SELECT COUNT(*) FROM"
        " lottery_draws d WHERE d.tenant_id = p.tenant_id AND d.campaign_id = p.campaign_id AND"
        " d.version = p.version AND d.prize = p.code) FROM lottery_prizes p WHERE p.tenant_id = $1"
        " ORDER BY p.campaign_id, p.version, p.position";
    /* each draw's cost has its spend entry, each prize its entry or grant */
    static const char sql_draws[] =
        "SELECT d.campaign_id, d.id, d.cost_points, d.customer_no, d.points, d.item,"
        " (SELECT kind || ':' || customer_no || ':' || amount || ':' || credit_account FROM"
        "   ledger_entries e WHERE e.tenant_id = d.tenant_id AND e.id = d.spend_entry),"
        " (SELECT kind || ':' || customer_no || ':' || amount FROM ledger_entries e"
        "   WHERE e.tenant_id = d.tenant_id AND e.id = d.ledger_entry),"
        " (SELECT customer_no || ':' || item FROM benefit_grants g WHERE g.tenant_id ="
        "   d.tenant_id AND g.code = d.grant_code), d.spend_entry, d.ledger_entry, d.grant_code"
        " FROM lottery_draws d WHERE d.tenant_id = $1";
    /* a campaign's entries are never reversed on their own (the API refuses
     * it; the draw, check-in or reward would stand without them) */
    /* clang-format off */
    static const char sql_reversed[] =
        "SELECT id, debit_account, credit_account, reversed_by FROM (SELECT o.tenant_id, o.id,"
        "   o.debit_account, o.credit_account, o.reference, r.id AS reversed_by,"
        "   CASE WHEN o.credit_account LIKE 'sink:campaign:%' THEN substr(o.credit_account, 15)"
        "   ELSE substr(o.debit_account, 17) END AS campaign_id"
        "   FROM ledger_entries r JOIN ledger_entries o ON o.tenant_id = r.tenant_id"
        "   AND o.id = r.reverses WHERE r.tenant_id = $1 AND r.reverses IS NOT NULL"
        "   AND (o.credit_account LIKE 'sink:campaign:%'"
        "   OR o.debit_account LIKE 'source:campaign:%')) e"
        " WHERE EXISTS (SELECT 1 FROM campaign_actions a WHERE a.tenant_id = e.tenant_id"
        "   AND a.campaign_id = e.campaign_id AND a.id = e.reference)"
        " OR EXISTS (SELECT 1 FROM lottery_draws d WHERE d.tenant_id = e.tenant_id"
        "   AND d.campaign_id = e.campaign_id AND d.id = e.reference)"
        " OR EXISTS (SELECT 1 FROM referral_rewards rr WHERE rr.tenant_id = e.tenant_id"
        "   AND rr.campaign_id = e.campaign_id AND rr.id = e.reference)"
        " EXCEPT SELECT w.entry_id, o.debit_account, o.credit_account, o.reversed_by"
        " FROM ledger_reversal_waivers w JOIN ledger_entries o ON o.tenant_id = w.tenant_id"
        "   AND o.id = w.entry_id WHERE w.tenant_id = $1 ORDER BY 1";
    /* clang-format on */
    *violations = 0;
    *checked = 0;
    sy_stmt *st = sy_conn_prepare(c, sql_reversed);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    int rc;
    while ((rc = sy_stmt_step(st)) == SY_ROW)
        sy_check_violation(
            report, ud, violations, "ledger entry %s (%s -> %s) of a campaign was reversed by %s",
            sy_stmt_text(st, 0), sy_stmt_text(st, 1), sy_stmt_text(st, 2), sy_stmt_text(st, 3));
    sy_stmt_reset(st);
    if (rc != SY_DONE)
        return rc;
    st = sy_conn_prepare(c, sql_budget);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    while ((rc = sy_stmt_step(st)) == SY_ROW) {
        (*checked)++;
        const char *id = sy_stmt_text(st, 0);
        int64_t sp = sy_stmt_i64(st, 1), sc = sy_stmt_i64(st, 2), ip = sy_stmt_i64(st, 3),
                ic = sy_stmt_i64(st, 4);
        if (sp != ip)
            sy_check_violation(report, ud, violations,
                               "campaign %s: spent_points %lld, but its participations issued %lld",
                               id, (long long)sp, (long long)ip);
        if (sc != ic)
            sy_check_violation(report, ud, violations,
                               "campaign %s: spent_cost %lld, but its participations issued %lld",
                               id, (long long)sc, (long long)ic);
        if (!sy_stmt_is_null(st, 5) && sp > sy_stmt_i64(st, 5))
            sy_check_violation(report, ud, violations, "campaign %s: spent_points over its budget",
                               id);
        if (!sy_stmt_is_null(st, 6) && sc > sy_stmt_i64(st, 6))
            sy_check_violation(report, ud, violations, "campaign %s: spent_cost over its budget",
                               id);
    }
    sy_stmt_reset(st);
    if (rc != SY_DONE)
        return rc;
    if (!(st = sy_conn_prepare(c, sql_stock)))
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    while ((rc = sy_stmt_step(st)) == SY_ROW) {
        (*checked)++;
        int64_t stock = sy_stmt_i64(st, 3), used = sy_stmt_i64(st, 4), won = sy_stmt_i64(st, 5);
        if (used != won || used > stock)
            sy_check_violation(
                report, ud, violations,
                "lottery %s version %lld prize %s: stock %lld, used %lld, draws won %lld",
                sy_stmt_text(st, 0), (long long)sy_stmt_i64(st, 1), sy_stmt_text(st, 2),
                (long long)stock, (long long)used, (long long)won);
    }
    sy_stmt_reset(st);
    if (rc != SY_DONE)
        return rc;
    if (!(st = sy_conn_prepare(c, sql_draws)))
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    while ((rc = sy_stmt_step(st)) == SY_ROW) {
        (*checked)++;
        const char *camp = sy_stmt_text(st, 0), *id = sy_stmt_text(st, 1),
                   *no = sy_stmt_text(st, 3);
        int64_t cost = sy_stmt_i64(st, 2), pts = sy_stmt_i64(st, 4);
        char want[256];
        if (cost) {
            snprintf(want, sizeof want, "spend:%s:%lld:sink:campaign:%s", no, (long long)cost,
                     camp);
            if (sy_stmt_is_null(st, 6) || strcmp(sy_stmt_text(st, 6), want) != 0)
                sy_check_violation(
                    report, ud, violations,
                    "draw %s (campaign %s): its cost of %lld has no matching spend entry"
                    " (%s)",
                    id, camp, (long long)cost, sy_stmt_text(st, 9));
        }
        if (pts) {
            snprintf(want, sizeof want, "earn:%s:%lld", no, (long long)pts);
            if (sy_stmt_is_null(st, 7) || strcmp(sy_stmt_text(st, 7), want) != 0)
                sy_check_violation(
                    report, ud, violations,
                    "draw %s (campaign %s): its prize of %lld points has no matching earn"
                    " entry (%s)",
                    id, camp, (long long)pts, sy_stmt_text(st, 10));
        }
        if (!sy_stmt_is_null(st, 5)) {
            snprintf(want, sizeof want, "%s:%s", no, sy_stmt_text(st, 5));
            if (sy_stmt_is_null(st, 8) || strcmp(sy_stmt_text(st, 8), want) != 0)
                sy_check_violation(
                    report, ud, violations,
                    "draw %s (campaign %s): its prize item has no matching grant (%s)", id, camp,
                    sy_stmt_text(st, 11));
        }
    }
    sy_stmt_reset(st);
    return rc == SY_DONE ? SY_OK : rc;
}

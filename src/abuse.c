/* abuse.c — anti-abuse (abuse.h): rules, the in-memory sliding-window
 * counters, the client address behind trusted proxies, the blocklist and
 * the refusal counters. */
#include "abuse.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static const char *const k_actions[] = {"checkin", "draw", "claim", "any"};
static const char *const k_scopes[] = {"customer", "device", "ip"};
static const char *const k_reasons[] = {"ok", "blocked", "rate-limited", "velocity"};

const char *sy_abuse_action_name(sy_abuse_action a)
{
    return (unsigned)a < SY_ARRAY_LEN(k_actions) ? k_actions[a] : "any";
}

const char *sy_abuse_scope_name(sy_abuse_scope s)
{
    return (unsigned)s < SY_ARRAY_LEN(k_scopes) ? k_scopes[s] : "customer";
}

bool sy_abuse_scope_parse(const char *s, sy_abuse_scope *out)
{
    for (size_t i = 0; s && i < SY_ARRAY_LEN(k_scopes); i++)
        if (!strcmp(s, k_scopes[i])) {
            *out = (sy_abuse_scope)i;
            return true;
        }
    return false;
}

const char *sy_abuse_reason_name(sy_abuse_reason r)
{
    return (unsigned)r < SY_ARRAY_LEN(k_reasons) ? k_reasons[r] : "ok";
}

/* ------------------------------------------------------------------ */
/* rules                                                               */

static bool fail(char *field, size_t fl, char *msg, size_t ml, const char *f, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
static bool fail(char *field, size_t fl, char *msg, size_t ml, const char *f, const char *fmt, ...)
{
    snprintf(field, fl, "%s", f);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, ml, fmt, ap);
    va_end(ap);
    return false;
}

static bool parse_net(const char *s, sy_abuse_net *n)
{
    char buf[80];
    if (!s || strlen(s) >= sizeof buf)
        return false;
    snprintf(buf, sizeof buf, "%s", s);
    char *slash = strchr(buf, '/');
    int bits = -1;
    if (slash) {
        *slash = '\0';
        char *end;
        long b = strtol(slash + 1, &end, 10);
        if (!slash[1] || *end || b < 0 || b > 128)
            return false;
        bits = (int)b;
    }
    memset(n, 0, sizeof *n);
    if (inet_pton(AF_INET, buf, n->addr) == 1) {
        n->family = AF_INET;
        if (bits > 32)
            return false;
        n->bits = bits < 0 ? 32 : bits;
    } else if (inet_pton(AF_INET6, buf, n->addr) == 1) {
        n->family = AF_INET6;
        n->bits = bits < 0 ? 128 : bits;
    } else {
        return false;
    }
    return true;
}

static bool net_contains(const sy_abuse_net *n, int family, const unsigned char *addr)
{
    if (n->family != family)
        return false;
    int full = n->bits / 8, rest = n->bits % 8;
    if (memcmp(n->addr, addr, (size_t)full) != 0)
        return false;
    if (!rest)
        return true;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (n->addr[full] & mask) == (addr[full] & mask);
}

static bool rule_list(json_t *arr, const char *name, bool velocity, sy_abuse_rules *out,
                      char *field, size_t fl, char *msg, size_t ml)
{
    const char *unit = velocity ? "minutes" : "per_seconds";
    if (!arr || json_is_null(arr))
        return true;
    char ptr[96];
    snprintf(ptr, sizeof ptr, "/%s", name);
    if (!json_is_array(arr))
        return fail(field, fl, msg, ml, ptr, "'%s' must be an array of rules", name);
    size_t i;
    json_t *v;
    json_array_foreach (arr, i, v) {
        snprintf(ptr, sizeof ptr, "/%s/%zu", name, i);
        if (out->n >= SY_ABUSE_RULES_MAX)
            return fail(field, fl, msg, ml, ptr, "at most %d rules in all", SY_ABUSE_RULES_MAX);
        if (!json_is_object(v))
            return fail(field, fl, msg, ml, ptr,
                        "a rule must be an object with scope, max and %s (and action)", unit);
        const char *key;
        json_t *x;
        json_object_foreach (v, key, x) {
            if (strcmp(key, "scope") && strcmp(key, "action") && strcmp(key, "max") &&
                strcmp(key, unit)) {
                char p[160];
                snprintf(p, sizeof p, "%s/%.60s", ptr, key);
                return fail(field, fl, msg, ml, p, "unknown field '%.60s'", key);
            }
        }
        sy_abuse_rule *r = &out->rules[out->n];
        memset(r, 0, sizeof *r);
        r->velocity = velocity;
        char p[160];
        snprintf(p, sizeof p, "%s/scope", ptr);
        if (!sy_abuse_scope_parse(json_string_value(json_object_get(v, "scope")), &r->scope))
            return fail(field, fl, msg, ml, p, "'scope' must be customer, device or ip");
        snprintf(p, sizeof p, "%s/action", ptr);
        json_t *a = json_object_get(v, "action");
        const char *as = json_string_value(a);
        r->action = SY_ABUSE_ANY;
        if (a && !json_is_null(a)) {
            if (as && !strcmp(as, "checkin"))
                r->action = SY_ABUSE_CHECKIN;
            else if (as && !strcmp(as, "draw"))
                r->action = SY_ABUSE_DRAW;
            else if (as && !strcmp(as, "claim"))
                r->action = SY_ABUSE_CLAIM;
            else if (!as || strcmp(as, "any") != 0)
                return fail(field, fl, msg, ml, p, "'action' must be checkin, draw, claim or any");
        }
        snprintf(p, sizeof p, "%s/max", ptr);
        json_t *m = json_object_get(v, "max");
        if (!json_is_integer(m) || json_integer_value(m) < 1 || json_integer_value(m) > 1000000000)
            return fail(field, fl, msg, ml, p, "'max' must be an integer from 1 to 1000000000");
        r->max = json_integer_value(m);
        snprintf(p, sizeof p, "%s/%s", ptr, unit);
        json_t *w = json_object_get(v, unit);
        int64_t mult = velocity ? 60000 : 1000;
        int64_t wmax = SY_ABUSE_WINDOW_MAX_MS / mult;
        if (!json_is_integer(w) || json_integer_value(w) < 1 || json_integer_value(w) > wmax)
            return fail(field, fl, msg, ml, p, "'%s' must be an integer from 1 to %lld", unit,
                        (long long)wmax);
        r->window_ms = json_integer_value(w) * mult;
        out->n++;
    }
    return true;
}

bool sy_abuse_rules_parse(json_t *in, sy_abuse_rules *out, char *field, size_t fl, char *msg,
                          size_t ml)
{
    memset(out, 0, sizeof *out);
    if (!json_is_object(in))
        return fail(field, fl, msg, ml, "", "the rules must be a JSON object");
    const char *key;
    json_t *v;
    json_object_foreach (in, key, v) {
        if (strcmp(key, "rate_limits") && strcmp(key, "velocity") &&
            strcmp(key, "trusted_proxies")) {
            char p[80];
            snprintf(p, sizeof p, "/%.60s", key);
            return fail(field, fl, msg, ml, p, "unknown field '%.60s'", key);
        }
    }
    if (!rule_list(json_object_get(in, "rate_limits"), "rate_limits", false, out, field, fl, msg,
                   ml) ||
        !rule_list(json_object_get(in, "velocity"), "velocity", true, out, field, fl, msg, ml))
        return false;
    json_t *px = json_object_get(in, "trusted_proxies");
    if (px && !json_is_null(px)) {
        if (!json_is_array(px) || json_array_size(px) > SY_ABUSE_PROXIES_MAX)
            return fail(field, fl, msg, ml, "/trusted_proxies",
                        "'trusted_proxies' must be an array of at most %d addresses or networks"
                        " (CIDR)",
                        SY_ABUSE_PROXIES_MAX);
        size_t i;
        json_array_foreach (px, i, v) {
            if (!parse_net(json_string_value(v), &out->proxies[out->nproxies])) {
                char p[64];
                snprintf(p, sizeof p, "/trusted_proxies/%zu", i);
                return fail(field, fl, msg, ml, p,
                            "an IPv4 or IPv6 address or network, e.g. 10.0.0.0/8");
            }
            out->nproxies++;
        }
    }
    return true;
}

json_t *sy_abuse_rules_json(const sy_abuse_rules *r)
{
    json_t *rate = json_array(), *vel = json_array(), *px = json_array();
    for (int i = 0; i < r->n; i++) {
        const sy_abuse_rule *x = &r->rules[i];
        json_t *o = json_pack("{s:s, s:s, s:I}", "scope", k_scopes[x->scope], "action",
                              k_actions[x->action], "max", (json_int_t)x->max);
        if (x->velocity) {
            json_object_set_new(o, "minutes", json_integer(x->window_ms / 60000));
            json_array_append_new(vel, o);
        } else {
            json_object_set_new(o, "per_seconds", json_integer(x->window_ms / 1000));
            json_array_append_new(rate, o);
        }
    }
    for (int i = 0; i < r->nproxies; i++) {
        char a[INET6_ADDRSTRLEN], s[INET6_ADDRSTRLEN + 8];
        inet_ntop(r->proxies[i].family, r->proxies[i].addr, a, sizeof a);
        snprintf(s, sizeof s, "%s/%d", a, r->proxies[i].bits);
        json_array_append_new(px, json_string(s));
    }
    return json_pack("{s:o, s:o, s:o}", "rate_limits", rate, "velocity", vel, "trusted_proxies",
                     px);
}

int sy_abuse_rules_load(sy_conn *c, const char *tenant, sy_abuse_rules *out)
{
    static const char sql[] = "SELECT rules FROM abuse_rules WHERE tenant_id = $1";
    memset(out, 0, sizeof *out);
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    int rc = sy_stmt_step(st);
    json_t *j = rc == SY_ROW ? json_loads(sy_stmt_text(st, 0), 0, NULL) : NULL;
    sy_stmt_reset(st);
    if (rc == SY_DONE)
        return SY_OK;
    if (rc != SY_ROW)
        return rc;
    char f[80], m[200];
    bool ok = j && sy_abuse_rules_parse(j, out, f, sizeof f, m, sizeof m);
    json_decref(j);
    if (!ok) {
        sy_error("abuse rules of tenant %s do not parse; none apply", tenant);
        memset(out, 0, sizeof *out);
    }
    return SY_OK;
}

int sy_abuse_rules_store(sy_conn *c, const char *tenant, const sy_abuse_rules *r, const char *actor,
                         int64_t now_ms)
{
    static const char sql[] =
        "INSERT INTO abuse_rules (tenant_id, rules, updated_by, updated_at) VALUES ($1, $2, $3,"
        " $4) ON CONFLICT (tenant_id) DO UPDATE SET rules = excluded.rules, updated_by ="
        " excluded.updated_by, updated_at = excluded.updated_at";
    json_t *j = sy_abuse_rules_json(r);
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st) {
        free(text);
        return SY_ERR;
    }
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_text(st, 2, text);
    sy_stmt_bind_text(st, 3, actor);
    sy_stmt_bind_i64(st, 4, now_ms);
    int rc = sy_stmt_exec(st);
    free(text);
    return rc;
}

/* ---- the rules cache ---- */

#define CACHE_SLOTS 64
#define CACHE_TTL_MS 1000

static struct {
    char tenant[65];
    int64_t at;
    sy_abuse_rules rules;
} g_cache[CACHE_SLOTS];
static pthread_mutex_t g_cache_mu = PTHREAD_MUTEX_INITIALIZER;

static unsigned slot_of(const char *tenant)
{
    unsigned h = 2166136261u;
    for (const char *p = tenant; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    return h % CACHE_SLOTS;
}

static uint64_t g_cache_epoch; /* bumped by every invalidate, under g_cache_mu */

bool sy_abuse_rules_cached(const char *tenant, int64_t mono_ms, sy_abuse_rules *out,
                           uint64_t *epoch)
{
    unsigned s = slot_of(tenant);
    pthread_mutex_lock(&g_cache_mu);
    bool hit = !strcmp(g_cache[s].tenant, tenant) && mono_ms - g_cache[s].at < CACHE_TTL_MS;
    if (hit)
        *out = g_cache[s].rules;
    *epoch = g_cache_epoch;
    pthread_mutex_unlock(&g_cache_mu);
    return hit;
}

void sy_abuse_rules_cache_put(const char *tenant, int64_t mono_ms, const sy_abuse_rules *r,
                              uint64_t epoch)
{
    unsigned s = slot_of(tenant);
    pthread_mutex_lock(&g_cache_mu);
    if (epoch == g_cache_epoch) { /* else read before a change that invalidated */
        snprintf(g_cache[s].tenant, sizeof g_cache[s].tenant, "%s", tenant);
        g_cache[s].at = mono_ms;
        g_cache[s].rules = *r;
    }
    pthread_mutex_unlock(&g_cache_mu);
}

void sy_abuse_rules_invalidate(const char *tenant)
{
    unsigned s = slot_of(tenant);
    pthread_mutex_lock(&g_cache_mu);
    if (!strcmp(g_cache[s].tenant, tenant))
        g_cache[s].tenant[0] = '\0';
    g_cache_epoch++;
    pthread_mutex_unlock(&g_cache_mu);
}

/* ------------------------------------------------------------------ */
/* the client's address                                                */

static bool ip_canonical(const char *s, bool fold_mapped, char *out, size_t outlen)
{
    unsigned char a[16];
    char buf[INET6_ADDRSTRLEN];
    if (!s || strlen(s) >= sizeof buf)
        return false;
    if (inet_pton(AF_INET, s, a) == 1)
        return inet_ntop(AF_INET, a, out, (socklen_t)outlen) != NULL;
    if (inet_pton(AF_INET6, s, a) != 1)
        return false;
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (fold_mapped && !memcmp(a, mapped, sizeof mapped))
        return inet_ntop(AF_INET, a + 12, out, (socklen_t)outlen) != NULL;
    return inet_ntop(AF_INET6, a, out, (socklen_t)outlen) != NULL;
}

bool sy_abuse_ip_canonical(const char *s, char *out, size_t outlen)
{
    return ip_canonical(s, false, out, outlen);
}

bool sy_abuse_ip_key(const char *s, char *out, size_t outlen)
{
    return ip_canonical(s, true, out, outlen);
}

static bool trusted(const sy_abuse_rules *r, const char *ip)
{
    unsigned char a[16];
    int fam = inet_pton(AF_INET, ip, a) == 1    ? AF_INET
              : inet_pton(AF_INET6, ip, a) == 1 ? AF_INET6
                                                : 0;
    if (!fam)
        return false;
    for (int i = 0; i < r->nproxies; i++)
        if (net_contains(&r->proxies[i], fam, a))
            return true;
    return false;
}

void sy_abuse_client_ip(const sy_abuse_rules *r, const char *peer, const char *xff, char *out)
{
    snprintf(out, 64, "%s", peer ? peer : "");
    if (!peer || !xff || !r->nproxies || !trusted(r, peer))
        return;
    /* right to left: the first address that is not a trusted proxy */
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", xff);
    for (;;) {
        char *comma = strrchr(buf, ',');
        char *item = comma ? comma + 1 : buf;
        while (*item == ' ' || *item == '\t')
            item++;
        size_t n = strlen(item);
        while (n && (item[n - 1] == ' ' || item[n - 1] == '\t'))
            item[--n] = '\0';
        char canon[64];
        if (!sy_abuse_ip_canonical(item, canon, sizeof canon))
            return; /* junk: keep the last address we could trust */
        snprintf(out, 64, "%s", canon);
        if (!trusted(r, canon) || !comma)
            return;
        *comma = '\0';
    }
}

/* ------------------------------------------------------------------ */
/* the counters                                                        */

#define STRIPES 64

typedef struct counter {
    uint64_t key;
    int64_t window_ms, start, last;
    int64_t cur, prev;
    struct counter *next;
} counter;

typedef struct stripe {
    pthread_mutex_t mu;
    counter **buckets;
    size_t nbuckets, count;
} stripe;

static stripe g_stripes[STRIPES];
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void stripes_init(void)
{
    for (int i = 0; i < STRIPES; i++) {
        pthread_mutex_init(&g_stripes[i].mu, NULL);
        g_stripes[i].nbuckets = 256;
        g_stripes[i].buckets = sy_xcalloc(256, sizeof *g_stripes[i].buckets);
    }
}

static uint64_t mix(uint64_t h, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    return (h ^ 0x1f) * 1099511628211ULL;
}

static uint64_t key_of(const char *tenant, const sy_abuse_rule *r, const char *value)
{
    uint64_t h = 14695981039346656037ULL;
    h = mix(h, tenant);
    char sig[64];
    snprintf(sig, sizeof sig, "%d:%d:%d:%lld", r->velocity, r->scope, r->action,
             (long long)r->window_ms);
    h = mix(h, sig);
    return mix(h, value);
}

/* Drops counters idle for two of their windows (their estimate is 0). */
static void sweep(stripe *s, int64_t now)
{
    for (size_t b = 0; b < s->nbuckets; b++) {
        counter **pp = &s->buckets[b];
        while (*pp) {
            counter *x = *pp;
            if (now - x->last > 2 * x->window_ms) {
                *pp = x->next;
                free(x);
                s->count--;
            } else {
                pp = &x->next;
            }
        }
    }
}

static void grow(stripe *s)
{
    size_t nb = s->nbuckets * 2;
    counter **b = sy_xcalloc(nb, sizeof *b);
    for (size_t i = 0; i < s->nbuckets; i++)
        for (counter *x = s->buckets[i], *next; x; x = next) {
            next = x->next;
            x->next = b[x->key & (nb - 1)];
            b[x->key & (nb - 1)] = x;
        }
    free(s->buckets);
    s->buckets = b;
    s->nbuckets = nb;
}

/* The counter of key (created when missing), its windows moved to now.
 * Called with the stripe locked. */
static counter *find(stripe *s, uint64_t key, int64_t window, int64_t now)
{
    counter *x = s->buckets[key & (s->nbuckets - 1)];
    while (x && x->key != key)
        x = x->next;
    if (!x) {
        if (s->count >= s->nbuckets * 2) {
            sweep(s, now);
            if (s->count >= s->nbuckets * 2 && s->nbuckets < (1u << 20))
                grow(s);
        }
        x = sy_xcalloc(1, sizeof *x);
        x->key = key;
        x->window_ms = window;
        x->start = now - now % window;
        size_t b = key & (s->nbuckets - 1);
        x->next = s->buckets[b];
        s->buckets[b] = x;
        s->count++;
    }
    if (now >= x->start + 2 * window) {
        x->prev = x->cur = 0;
        x->start = now - now % window;
    } else if (now >= x->start + window) {
        x->prev = x->cur;
        x->cur = 0;
        x->start += window;
    }
    x->last = now;
    return x;
}

/* The sliding estimate: the previous window weighted by its overlap. */
static int64_t estimate(const counter *x, int64_t now)
{
    int64_t into = now - x->start;
    if (into < 0)
        into = 0;
    return x->prev * (x->window_ms - into) / x->window_ms + x->cur;
}

static const char *value_of(const sy_abuse_subject *s, sy_abuse_scope scope)
{
    const char *v = scope == SY_ABUSE_CUSTOMER ? s->customer_no
                    : scope == SY_ABUSE_DEVICE ? s->device
                                               : s->ip;
    return v && v[0] ? v : NULL;
}

static bool applies(const sy_abuse_rule *r, sy_abuse_action a)
{
    return r->action == SY_ABUSE_ANY || r->action == a;
}

/* Counts (add: 1 or 0) and returns the estimate before the add. */
static int64_t touch(const char *tenant, const sy_abuse_rule *r, const char *value, int64_t now,
                     int64_t add, int64_t *retry_ms)
{
    pthread_once(&g_once, stripes_init);
    uint64_t key = key_of(tenant, r, value);
    stripe *s = &g_stripes[(key >> 58) % STRIPES];
    pthread_mutex_lock(&s->mu);
    counter *x = find(s, key, r->window_ms, now);
    int64_t est = estimate(x, now);
    x->cur += add;
    *retry_ms = x->start + r->window_ms - now;
    pthread_mutex_unlock(&s->mu);
    return est;
}

sy_abuse_reason sy_abuse_limit(const sy_abuse_rules *r, sy_abuse_action a,
                               const sy_abuse_subject *s, int64_t now_ms, const sy_abuse_rule **hit,
                               int64_t *retry_ms)
{
    sy_abuse_reason why = SY_ABUSE_OK;
    *hit = NULL;
    *retry_ms = 0;
    for (int i = 0; i < r->n; i++) {
        const sy_abuse_rule *x = &r->rules[i];
        const char *v = value_of(s, x->scope);
        if (!v || !applies(x, a))
            continue;
        int64_t retry;
        int64_t est = touch(s->tenant, x, v, now_ms, x->velocity ? 0 : 1, &retry);
        bool over = x->velocity ? est >= x->max : est + 1 > x->max;
        if (over && why == SY_ABUSE_OK) {
            why = x->velocity ? SY_ABUSE_VELOCITY : SY_ABUSE_RATE_LIMITED;
            *hit = x;
            *retry_ms = retry > 0 ? retry : 1;
        }
    }
    return why;
}

void sy_abuse_note(const sy_abuse_rules *r, sy_abuse_action a, const sy_abuse_subject *s,
                   int64_t now_ms)
{
    for (int i = 0; i < r->n; i++) {
        const sy_abuse_rule *x = &r->rules[i];
        const char *v = value_of(s, x->scope);
        int64_t retry;
        if (x->velocity && v && applies(x, a))
            touch(s->tenant, x, v, now_ms, 1, &retry);
    }
}

void sy_abuse_reset(void)
{
    pthread_once(&g_once, stripes_init);
    for (int i = 0; i < STRIPES; i++) {
        stripe *s = &g_stripes[i];
        pthread_mutex_lock(&s->mu);
        for (size_t b = 0; b < s->nbuckets; b++)
            for (counter *x = s->buckets[b], *next; x; x = next) {
                next = x->next;
                free(x);
            }
        memset(s->buckets, 0, s->nbuckets * sizeof *s->buckets);
        s->count = 0;
        pthread_mutex_unlock(&s->mu);
    }
}

/* ------------------------------------------------------------------ */
/* the blocklist                                                       */

int sy_abuse_blocked(sy_conn *c, const sy_abuse_subject *s, int64_t now_ms, bool *blocked,
                     char kind[16])
{
    static const char sql[] =
        "SELECT kind FROM abuse_blocklist WHERE tenant_id = $1 AND ((kind = 'customer' AND"
        " value = $2) OR (kind = 'device' AND value = $3) OR (kind = 'ip' AND value = $4)) AND"
        " (expires_at IS NULL OR expires_at > $5) ORDER BY kind LIMIT 1";
    *blocked = false;
    kind[0] = '\0';
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, s->tenant);
    sy_stmt_bind_text(st, 2, s->customer_no ? s->customer_no : "");
    sy_stmt_bind_text(st, 3, s->device ? s->device : "");
    sy_stmt_bind_text(st, 4, s->ip ? s->ip : "");
    sy_stmt_bind_i64(st, 5, now_ms);
    int rc = sy_stmt_step(st);
    if (rc == SY_ROW) {
        *blocked = true;
        snprintf(kind, 16, "%s", sy_stmt_text(st, 0));
    }
    sy_stmt_reset(st);
    return rc == SY_ROW || rc == SY_DONE ? SY_OK : rc;
}

/* ------------------------------------------------------------------ */
/* metrics                                                             */

static _Atomic uint64_t g_refusals[4][3][3]; /* reason, action, scope */

void sy_abuse_count(sy_abuse_reason why, sy_abuse_action a, sy_abuse_scope s)
{
    if ((unsigned)why < 4 && (unsigned)a < 3 && (unsigned)s < 3)
        atomic_fetch_add_explicit(&g_refusals[why][a][s], 1, memory_order_relaxed);
}

void sy_abuse_metrics_render(sy_buf *o)
{
    sy_buf_puts(o,
                "# HELP siyu_abuse_refusals_total Check-ins, draws and coupon claims refused by the"
                " anti-abuse rules, by reason, action and the scope that matched.\n"
                "# TYPE siyu_abuse_refusals_total counter\n");
    for (int w = 1; w < 4; w++)
        for (int a = 0; a < 3; a++)
            for (int s = 0; s < 3; s++)
                sy_buf_printf(
                    o, "siyu_abuse_refusals_total{reason=\"%s\",action=\"%s\",scope=\"%s\"} %llu\n",
                    k_reasons[w], k_actions[a], k_scopes[s],
                    (unsigned long long)atomic_load_explicit(&g_refusals[w][a][s],
                                                             memory_order_relaxed));
}

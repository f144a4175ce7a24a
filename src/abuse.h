/* abuse.h — anti-abuse (薅羊毛) for check-in and lottery draws: the
 * tenant's rules (rate limits and velocity rules per customer, device id
 * and IP address; the proxies whose X-Forwarded-For is trusted), the
 * in-memory counters that enforce them, the blocklist in the store, and
 * the refusal counters for /metrics.
 *
 * Rate limits count every attempt (refused or not) in a sliding window;
 * velocity rules count accepted participations (sy_abuse_note after the
 * commit) and refuse once a window holds `max` of them.  The counters live
 * in this process's memory only: they reset when siyu restarts, and
 * several siyu processes count separately (docs/campaigns.md).  Windows
 * are sliding-window counters (the previous fixed window weighted by its
 * overlap plus the current one): a close approximation of a true sliding
 * window in O(1) memory per key. */
#ifndef SY_ABUSE_H
#define SY_ABUSE_H

#include "store.h"
#include "util.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define SY_ABUSE_RULES_MAX 32
#define SY_ABUSE_PROXIES_MAX 16
#define SY_ABUSE_DEVICE_MAX 128
#define SY_ABUSE_VALUE_MAX 128
#define SY_ABUSE_REASON_MAX 500
#define SY_ABUSE_WINDOW_MAX_MS (7LL * 86400 * 1000)

typedef enum sy_abuse_action {
    SY_ABUSE_CHECKIN,
    SY_ABUSE_DRAW,
    SY_ABUSE_CLAIM, /* coupon drops */
    SY_ABUSE_ANY
} sy_abuse_action;
typedef enum sy_abuse_scope { SY_ABUSE_CUSTOMER, SY_ABUSE_DEVICE, SY_ABUSE_IP } sy_abuse_scope;
typedef enum sy_abuse_reason {
    SY_ABUSE_OK = 0,
    SY_ABUSE_BLOCKED,
    SY_ABUSE_RATE_LIMITED,
    SY_ABUSE_VELOCITY,
} sy_abuse_reason;

const char *sy_abuse_action_name(sy_abuse_action a);
const char *sy_abuse_scope_name(sy_abuse_scope s);
bool sy_abuse_scope_parse(const char *s, sy_abuse_scope *out);
const char *sy_abuse_reason_name(sy_abuse_reason r);

typedef struct sy_abuse_rule {
    sy_abuse_scope scope;
    sy_abuse_action action; /* ANY: check-in and draws */
    int64_t max, window_ms;
    bool velocity; /* counts accepted participations, not attempts */
} sy_abuse_rule;

typedef struct sy_abuse_net {
    int family; /* AF_INET or AF_INET6 */
    unsigned char addr[16];
    int bits;
} sy_abuse_net;

typedef struct sy_abuse_rules {
    sy_abuse_rule rules[SY_ABUSE_RULES_MAX];
    int n;
    sy_abuse_net proxies[SY_ABUSE_PROXIES_MAX];
    int nproxies;
} sy_abuse_rules;

/* Parses {"rate_limits": [...], "velocity": [...], "trusted_proxies": [...]}
 * (docs/campaigns.md).  On failure returns false with field and msg. */
bool sy_abuse_rules_parse(json_t *in, sy_abuse_rules *out, char *field, size_t fieldlen, char *msg,
                          size_t msglen);
json_t *sy_abuse_rules_json(const sy_abuse_rules *r);
/* The tenant's stored rules (none: n == 0).  SY_OK or a store error. */
int sy_abuse_rules_load(sy_conn *c, const char *tenant, sy_abuse_rules *out);
int sy_abuse_rules_store(sy_conn *c, const char *tenant, const sy_abuse_rules *r, const char *actor,
                         int64_t now_ms);
/* A per-tenant cache of the rules, kept for a second (rules written by
 * this process are dropped at their commit). */
/* On a miss, *epoch is what to give sy_abuse_rules_cache_put after the
 * load: the rules are then kept only if no invalidate came between. */
bool sy_abuse_rules_cached(const char *tenant, int64_t mono_ms, sy_abuse_rules *out,
                           uint64_t *epoch);
void sy_abuse_rules_cache_put(const char *tenant, int64_t mono_ms, const sy_abuse_rules *r,
                              uint64_t epoch);
void sy_abuse_rules_invalidate(const char *tenant);

/* The client's address: the peer, or — when the peer is a trusted proxy —
 * the right-most X-Forwarded-For address that is not one.  out: 64 bytes. */
void sy_abuse_client_ip(const sy_abuse_rules *r, const char *peer, const char *xff, char *out);
/* Canonical text of an IP address (false: not one). */
bool sy_abuse_ip_canonical(const char *s, char *out, size_t outlen);
/* Like sy_abuse_ip_canonical, but an IPv4-mapped IPv6 address
 * (::ffff:a.b.c.d) gives the IPv4 address a.b.c.d: the one text under
 * which an address is stored and counted wherever a client may write it
 * either way (the referral burst rule).  out: at least INET6_ADDRSTRLEN. */
bool sy_abuse_ip_key(const char *s, char *out, size_t outlen);

typedef struct sy_abuse_subject {
    const char *tenant, *customer_no, *device, *ip; /* device, ip: NULL when unknown */
} sy_abuse_subject;

/* The rate limits and velocity rules for one attempt at now_ms.  Counts
 * the attempt against every rate limit that applies.  SY_ABUSE_OK, or the
 * refusal with *hit (the rule) and *retry_ms (until the window allows
 * again, roughly). */
sy_abuse_reason sy_abuse_limit(const sy_abuse_rules *r, sy_abuse_action a,
                               const sy_abuse_subject *s, int64_t now_ms, const sy_abuse_rule **hit,
                               int64_t *retry_ms);
/* An accepted participation, for the velocity rules. */
void sy_abuse_note(const sy_abuse_rules *r, sy_abuse_action a, const sy_abuse_subject *s,
                   int64_t now_ms);
/* Forgets every counter (tests). */
void sy_abuse_reset(void);

/* Whether customer, device or ip is on the tenant's blocklist at now_ms:
 * SY_OK with *blocked and kind ("customer", "device" or "ip"), or a store
 * error. */
int sy_abuse_blocked(sy_conn *c, const sy_abuse_subject *s, int64_t now_ms, bool *blocked,
                     char kind[16]);

/* Refusals for /metrics: siyu_abuse_refusals_total{reason, action, scope}. */
void sy_abuse_count(sy_abuse_reason why, sy_abuse_action a, sy_abuse_scope s);
void sy_abuse_metrics_render(sy_buf *out);

#endif

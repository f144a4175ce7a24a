/* server.h — the HTTP layer handlers are written against.
 *
 * A handler receives a sy_req, reads what it needs (path parameters, query,
 * headers, the JSON body, the caller), and either replies directly
 * (sy_reply_json / sy_reply_problem) or asks for a write with sy_req_write().
 * A write runs later in the writer thread inside the group-commit
 * transaction; its apply function records the reply, and the server sends it
 * only after the transaction has committed.  Replies are always deferred:
 * the server queues the one recorded reply when control comes back to it.
 *
 * Memory: strings returned by sy_req_* live as long as the request.
 * sy_req_alloc() gives memory from the request's arena, freed with it. */
#ifndef SY_SERVER_H
#define SY_SERVER_H

#include "auth.h"
#include "store.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct sy_req sy_req;
typedef struct sy_app sy_app;
typedef struct sy_server sy_server;

typedef void (*sy_handler_fn)(sy_req *r);

#define SY_ROUTE_IDEMPOTENT (1u << 0)              /* honours Idempotency-Key */
#define SY_IDEMPOTENCY_TTL_MS (24LL * 3600 * 1000) /* how long outcomes are kept */
#define SY_ROUTE_NO_AUDIT (1u << 1)                /* a write not worth an audit row */
/* The path's last segment is personal data (a phone number, an id number):
 * the access log and a problem's `instance` show it as "***". */
#define SY_ROUTE_PII_PATH (1u << 2)

typedef struct sy_route {
    const char *method;  /* "GET", "POST", ... */
    const char *pattern; /* "/v1/keys/{id}", "/v1/grants/{code}:redeem" */
    sy_handler_fn handler;
    unsigned roles;    /* sy_role bits allowed; 0 = no key needed */
    unsigned flags;    /* SY_ROUTE_* */
    const char *label; /* "GET /v1/keys/{id}": filled by sy_routes_init */
} sy_route;

/* The route table (routes.c). */
extern sy_route sy_routes[];
extern const int sy_routes_count;
void sy_routes_init(void);

/* Matches method + path against the table.  Returns the route index, or -1
 * with *allowed set to the methods that path does accept (for 405; 0 for
 * 404).  Path parameters are written to params (pointers into scratch,
 * which must hold strlen(path)+1 bytes). */
#define SY_MAX_PARAMS_PER_ROUTE 4
typedef struct sy_match {
    const char *names[SY_MAX_PARAMS_PER_ROUTE];
    size_t name_lens[SY_MAX_PARAMS_PER_ROUTE];
    const char *values[SY_MAX_PARAMS_PER_ROUTE];
    int n;
} sy_match;
int sy_route_match(const sy_route *routes, int nroutes, const char *method, const char *path,
                   char *scratch, sy_match *m, char *allowed, size_t allowed_len);

/* ---- requests ---- */
sy_app *sy_req_app(sy_req *r);
/* The current time for this request: the real clock, or the X-Siyu-Now
 * header's under `siyu serve --test-clock` (tests of business days). */
int64_t sy_req_now_ms(sy_req *r);
const char *sy_req_method(sy_req *r);
const char *sy_req_path(sy_req *r);
const char *sy_req_param(sy_req *r, const char *name);
const char *sy_req_query(sy_req *r, const char *name);
const char *sy_req_header(sy_req *r, const char *name);
const char *sy_req_id(sy_req *r);
/* The peer's IP address as text ("" when unknown). */
const char *sy_req_peer(sy_req *r);
const sy_principal *sy_req_principal(sy_req *r);
const char *sy_req_body(sy_req *r, size_t *len);
/* The body parsed as a JSON object.  On failure it records the problem
 * reply (invalid-json / validation) and returns NULL.  Owned by the request. */
json_t *sy_req_json_object(sy_req *r);
void *sy_req_alloc(sy_req *r, size_t n);
/* Calls fn(p) when the request ends (memory a handler owns outside the
 * arena).  At most 4 per request. */
void sy_req_on_free(sy_req *r, void (*fn)(void *), void *p);
char *sy_req_strdup(sy_req *r, const char *s);

/* ---- replies ---- */
/* Records a JSON reply; steals the reference to body. */
void sy_reply_json(sy_req *r, int status, json_t *body);
/* Records an application/problem+json reply (RFC 9457).  type is one of the
 * stable codes: each has a title (sy_problem_title) and is listed in
 * docs/openapi.yaml's ProblemType (test_openapi checks every type the
 * sources answer with).  field, when not NULL, names the offending input
 * as a JSON pointer ("/role") or a parameter name. */
void sy_reply_problem(sy_req *r, int status, const char *type, const char *field, const char *fmt,
                      ...) __attribute__((format(printf, 5, 6)));
/* The short, fixed title of a problem type; NULL for a type it does not
 * know (answered with the title "Error"). */
const char *sy_problem_title(const char *type);
/* Records a reply with any content type; takes ownership of body (malloc'd). */
void sy_reply_raw(sy_req *r, int status, const char *content_type, char *body, size_t len);
void sy_reply_header(sy_req *r, const char *name, const char *value);
/* Records a streamed reply: fill(ctx, buf, max) is called from the HTTP
 * threads after the handler returned, and returns the bytes written, 0 at
 * the end.  free_ctx(ctx) runs when the response is done. */
void sy_reply_stream(sy_req *r, int status, const char *content_type,
                     size_t (*fill)(void *ctx, char *buf, size_t max), void *ctx,
                     void (*free_ctx)(void *ctx));
/* Adds a member to the recorded JSON reply (e.g. the list of per-item
 * errors of a problem).  Steals the reference to value. */
void sy_reply_extend(sy_req *r, const char *key, json_t *value);
bool sy_req_replied(sy_req *r);

/* ---- writes ---- */
/* apply runs in the writer thread inside the batch transaction.  It does
 * the SQL and records the reply; it returns 0 to commit (reply should be
 * 2xx) or non-zero to roll back (reply should be a problem).  committed,
 * if given, runs in the writer thread after the commit.  The server stores
 * the Idempotency-Key outcome and the audit row in the same transaction. */
typedef int (*sy_write_fn)(sy_conn *c, sy_req *r, void *ctx);
void sy_req_write(sy_req *r, sy_write_fn apply, void (*committed)(sy_req *r, void *ctx), void *ctx);
/* Optional, after sy_req_write(): when apply returns 0 without recording a
 * reply, reply(c, r, ctx) records it from what apply committed.  It runs in
 * the request's HTTP thread once the write is durable, on a read connection,
 * so that the one writer thread does not spend its time building replies;
 * or, when the request carries an Idempotency-Key (whose stored reply is
 * written in the same transaction), in the writer thread right after apply,
 * on the write connection.  Returns SY_OK or a store error (a 500). */
void sy_req_write_reply(sy_req *r, sy_write_fn reply);
/* Optional, after sy_req_write(): apply may run a second time (writer.h).
 * Before it does, the server forgets the reply and headers apply recorded,
 * and reset (may be NULL) puts ctx back as it was before apply ran.  A
 * write declared so runs without a savepoint of its own: the hot writes
 * (events, exchanges, draws, check-ins, points) save a copy of every page
 * they change that way. */
void sy_req_write_rerun(sy_req *r, void (*reset)(sy_req *r, void *ctx));
/* What the audit row of this write names as its target (e.g. a key id). */
void sy_req_audit_target(sy_req *r, const char *target);
/* The audit row's action, when it is not the route (e.g. a read of
 * unmasked personal data).  action must be a string literal. */
void sy_req_audit_action(sy_req *r, const char *action);
/* This write changed nothing worth an audit row (e.g. revoking a key
 * that was revoked already). */
void sy_req_no_audit(sy_req *r);
/* A different body to store for Idempotency-Key replays (e.g. without a
 * secret shown once).  Steals the reference. */
void sy_req_idem_body(sy_req *r, json_t *body);
/* From apply, with a refusal recorded: the change's own record of keys
 * (a ledger entry's idempotency_key) holds this request's Idempotency-Key.
 * After the commit the request's stored answer is replayed if there is
 * one (the other request with the key was in flight at the same time);
 * else the refusal is sent. */
void sy_req_idem_used(sy_req *r);

/* Records an audit row (inside a write's transaction). */
int sy_audit_insert(sy_conn *c, const char *tenant, const char *actor, const char *role,
                    const char *action, const char *target, const char *request_id,
                    const char *detail_json, int64_t now_ms);

/* ---- the server ---- */
typedef struct sy_server_opts {
    const char *listen;          /* "127.0.0.1:8080", "[::1]:8080", ":8080" */
    int threads;                 /* worker threads; 0 = number of cores */
    size_t max_body;             /* bytes; larger bodies get 413 */
    int access_log_fd;           /* -1 = no access log */
    unsigned connection_timeout; /* seconds an idle connection is kept */
} sy_server_opts;

/* Starts listening and serving.  Returns NULL with a message in err. */
sy_server *sy_server_start(sy_app *app, const sy_server_opts *o, char *err, size_t errlen);
int sy_server_port(sy_server *s);
/* Stops accepting, waits up to grace_ms for in-flight requests, stops. */
void sy_server_stop(sy_server *s, int grace_ms);

#endif

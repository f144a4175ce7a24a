/* server.c — HTTP plumbing on libmicrohttpd.
 *
 * One daemon with an internal epoll thread pool.  For every request the
 * access handler is called several times:
 *
 *   1. first call (*con_cls == NULL): allocate the request, match the route,
 *      return MHD_YES without queueing anything — queueing here would make
 *      libmicrohttpd close the connection after every response;
 *   2. calls with upload data: append to the body, up to max_body (413);
 *   3. the final call (no more data): authenticate, check the
 *      Idempotency-Key, run the handler.  A handler that only reads has
 *      recorded its reply by now and the reply is queued.  A handler that
 *      writes has asked for a write: the connection is suspended, the write
 *      goes to the group-commit writer, and the worker thread is free for
 *      other connections;
 *   4. after the commit the writer resumes the connection and the handler is
 *      called once more: the recorded reply is queued.
 *
 * The access-log line and the metrics are written when libmicrohttpd
 * reports the request completed. */
#include "server.h"
#include "app.h"
#include "metrics.h"
#include "util.h"
#include "writer.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define ROUTE_NONE (-1)

static const char k_problem_type[] = "application/problem+json";
#define MAX_EXTRA_HEADERS 4
#define ARENA_CHUNK 4096

/* The most HTTP threads (--threads): one libmicrohttpd daemon each. */
#define SY_SERVER_MAX_THREADS 64

struct sy_server {
    /* One single-threaded daemon per HTTP thread, all listening on the
     * same port with SO_REUSEPORT, so that the kernel spreads the
     * connections over them.  A daemon with a pool of threads leaves the
     * accepting to whichever thread wakes first, and that thread takes up
     * to ten pending connections at once: 8, or even 64, keep-alive
     * connections opened together often all land on one thread, which
     * then serves them alone while the others idle. */
    struct MHD_Daemon *ds[SY_SERVER_MAX_THREADS];
    unsigned nds;
    sy_app *app;
    size_t max_body;
    int log_fd;
    int port;
    /* Shutdown: once stopping is set, new requests (which keep arriving on
     * established keep-alive connections after the listener is closed) are
     * answered 503 and start no writes.  suspended counts connections
     * waiting for the writer; libmicrohttpd must not be stopped while any
     * exists. */
    atomic_bool stopping;
    atomic_int suspended;
};

typedef enum {
    ST_READING, /* collecting the body */
    ST_WRITING, /* suspended, waiting for the writer */
    ST_WRITTEN, /* the writer is done; the reply is ready */
    ST_QUEUED,  /* the reply is queued */
} req_state;

typedef struct arena_chunk {
    struct arena_chunk *next;
    size_t used, cap;
    _Alignas(16) char data[];
} arena_chunk;

struct sy_req {
    sy_server *srv;
    struct MHD_Connection *conn;
    req_state state;
    uint64_t t0;
    const char *method;
    char *path;
    char *shown_path; /* the path as logged and shown (SY_ROUTE_PII_PATH); NULL: path */
    int route;
    sy_match match;
    char *scratch; /* holds the path parameter values */
    char request_id[65];
    sy_principal who;
    bool authenticated;

    sy_buf body;
    json_t *json;

    /* the recorded reply */
    int status;
    char *resp_body;
    size_t resp_len;
    const char *resp_type;
    size_t (*stream_fill)(void *, char *, size_t);
    void *stream_ctx;
    void (*stream_free)(void *);
    const char *hdr_name[MAX_EXTRA_HEADERS];
    char *hdr_value[MAX_EXTRA_HEADERS];
    int nhdr;

    /* a pending write */
    sy_write_fn wapply, wreply;
    void (*wcommitted)(sy_req *, void *);
    void (*wreset)(sy_req *, void *);
    bool wrerun; /* apply may run again (sy_req_write_rerun) */
    int wnhdr;   /* headers recorded before apply ran */
    /* the audit settings before apply ran, for a second run */
    const char *w_audit_target, *w_audit_action;
    bool w_no_audit;
    void *wctx;
    sy_mutation mut;
    bool suspended; /* counted in sy_server.suspended */
    const char *idem_key;
    char idem_hash[65];
    bool idem_race;
    bool idem_used; /* the change found its key used (sy_req_idem_used) */
    /* the query parameters the handler asked for (sy_req_query) */
    const char *asked[16];
    int nasked;
    bool asked_many;
    bool replaying; /* the reply is a stored one, sent after a durability barrier */
    json_t *idem_body;
    const char *audit_target;
    const char *audit_action;
    bool no_audit;
    int64_t now_ms;        /* X-Siyu-Now under --test-clock; 0: the real clock */
    bool fail_after_write; /* X-Siyu-Test-Fail: after-write under --test-clock */

    arena_chunk *arena;
    void (*cleanup_fn[4])(void *);
    void *cleanup_arg[4];
    int ncleanup;
};

/* ------------------------------------------------------------------ */
/* arena                                                               */

void *sy_req_alloc(sy_req *r, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    arena_chunk *c = r->arena;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > ARENA_CHUNK ? n : ARENA_CHUNK;
        arena_chunk *nc = sy_xmalloc(sizeof *nc + cap);
        nc->next = c;
        nc->used = 0;
        nc->cap = cap;
        r->arena = c = nc;
    }
    void *p = c->data + c->used;
    c->used += n;
    return p;
}

char *sy_req_strdup(sy_req *r, const char *s)
{
    size_t n = strlen(s);
    char *p = sy_req_alloc(r, n + 1);
    memcpy(p, s, n + 1);
    return p;
}

void sy_req_on_free(sy_req *r, void (*fn)(void *), void *p)
{
    if (r->ncleanup >= 4) {
        sy_error("sy_req_on_free: too many cleanups");
        abort();
    }
    r->cleanup_fn[r->ncleanup] = fn;
    r->cleanup_arg[r->ncleanup++] = p;
}

static void req_free(sy_req *r)
{
    if (r->stream_fill && r->stream_free) /* recorded but never queued */
        r->stream_free(r->stream_ctx);
    while (r->ncleanup > 0) {
        r->ncleanup--;
        r->cleanup_fn[r->ncleanup](r->cleanup_arg[r->ncleanup]);
    }
    for (arena_chunk *c = r->arena, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    sy_buf_free(&r->body);
    json_decref(r->json);
    json_decref(r->idem_body);
    free(r->resp_body);
    for (int i = 0; i < r->nhdr; i++)
        free(r->hdr_value[i]);
    free(r->path);
    free(r->shown_path);
    free(r->scratch);
    free(r);
}

/* ------------------------------------------------------------------ */
/* routing                                                             */

/* Matches one pattern segment against one path segment.  A segment
 * pattern is a literal ("keys"), a parameter ("{id}"), or a parameter
 * with a literal suffix ("{code}:redeem"). */
static bool match_segment(const char *pat, size_t plen, const char *seg, size_t slen, sy_match *m,
                          char *scratch_seg)
{
    if (plen >= 2 && pat[0] == '{') {
        const char *close = memchr(pat, '}', plen);
        if (!close)
            return false;
        const char *suffix = close + 1;
        size_t sufflen = plen - (size_t)(suffix - pat);
        if (slen <= sufflen || memcmp(seg + slen - sufflen, suffix, sufflen) != 0)
            return false;
        if (m->n >= SY_MAX_PARAMS_PER_ROUTE)
            return false;
        size_t vlen = slen - sufflen;
        /* The value ends where the suffix starts: terminate it in scratch. */
        scratch_seg[vlen] = '\0';
        m->names[m->n] = pat + 1;
        m->name_lens[m->n] = (size_t)(close - pat - 1);
        m->values[m->n] = scratch_seg;
        m->n++;
        return true;
    }
    return plen == slen && memcmp(pat, seg, plen) == 0;
}

static bool match_path(const char *pattern, const char *path, char *scratch, sy_match *m)
{
    const char *p = pattern, *s = path;
    m->n = 0;
    size_t off = 0;
    if (*p != '/' || *s != '/')
        return false;
    for (;;) {
        p++, s++, off++;
        const char *pe = strchr(p, '/'), *se = strchr(s, '/');
        size_t plen = pe ? (size_t)(pe - p) : strlen(p);
        size_t slen = se ? (size_t)(se - s) : strlen(s);
        memcpy(scratch + off, s, slen);
        scratch[off + slen] = '\0';
        if (!match_segment(p, plen, s, slen, m, scratch + off))
            return false;
        off += slen;
        if (!pe || !se)
            return !pe && !se;
        p = pe, s = se;
    }
}

int sy_route_match(const sy_route *routes, int nroutes, const char *method, const char *path,
                   char *scratch, sy_match *m, char *allowed, size_t allowed_len)
{
    if (allowed_len)
        allowed[0] = '\0';
    size_t alen = 0;
    /* HEAD is served by the GET route; libmicrohttpd drops the body. */
    const char *want = strcmp(method, "HEAD") == 0 ? "GET" : method;
    /* The routes of the request's method first: a method is cheaper to
     * compare than a path, and the first match wins either way. */
    for (int i = 0; i < nroutes; i++)
        if (strcmp(routes[i].method, want) == 0 && match_path(routes[i].pattern, path, scratch, m))
            return i;
    /* None: the methods the path allows, for the 405's Allow header. */
    for (int i = 0; i < nroutes; i++) {
        sy_match tmp;
        if (!match_path(routes[i].pattern, path, scratch, &tmp))
            continue;
        if (allowed_len) {
            bool get = strcmp(routes[i].method, "GET") == 0;
            int n = snprintf(allowed + alen, allowed_len - alen, "%s%s%s", alen ? ", " : "",
                             routes[i].method, get ? ", HEAD" : "");
            if (n > 0 && (size_t)n < allowed_len - alen)
                alen += (size_t)n;
            else
                allowed[alen] = '\0'; /* keep only whole entries */
        }
    }
    return ROUTE_NONE;
}

/* ------------------------------------------------------------------ */
/* request accessors                                                   */

sy_app *sy_req_app(sy_req *r)
{
    return r->srv->app;
}

int64_t sy_req_now_ms(sy_req *r)
{
    return r->now_ms ? r->now_ms : sy_now_ms();
}
const char *sy_req_method(sy_req *r)
{
    return r->method;
}
const char *sy_req_path(sy_req *r)
{
    return r->path;
}
const char *sy_req_id(sy_req *r)
{
    return r->request_id;
}
const sy_principal *sy_req_principal(sy_req *r)
{
    return &r->who;
}

const char *sy_req_param(sy_req *r, const char *name)
{
    size_t n = strlen(name);
    for (int i = 0; i < r->match.n; i++)
        if (r->match.name_lens[i] == n && !memcmp(r->match.names[i], name, n))
            return r->match.values[i];
    return NULL;
}

const char *sy_req_query(sy_req *r, const char *name)
{
    bool seen = false;
    for (int i = 0; i < r->nasked && !seen; i++)
        seen = !strcmp(r->asked[i], name);
    if (!seen && r->nasked < (int)SY_ARRAY_LEN(r->asked))
        r->asked[r->nasked++] = sy_req_strdup(r, name);
    else if (!seen)
        r->asked_many = true;
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

static void set_reply(sy_req *r, int status, const char *type, char *body, size_t len);

typedef struct unasked {
    sy_req *r;
    const char *name;
} unasked;

static enum MHD_Result find_unasked(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *value)
{
    (void)kind, (void)value;
    unasked *u = cls;
    for (int i = 0; i < u->r->nasked; i++)
        if (!strcmp(u->r->asked[i], key))
            return MHD_YES;
    u->name = key;
    return MHD_NO;
}

/* After a handler succeeded (or asked for a write): a query parameter it
 * never looked at changed nothing, and is most likely misspelt (form= for
 * from=).  Its success is then replaced by a 400 naming it; a refusal
 * stands, since the handler may have stopped before reading the rest. */
static bool refuse_unasked(sy_req *r)
{
    bool ok = r->wapply ? !r->status : r->status >= 200 && r->status < 300;
    if (!ok || r->asked_many)
        return false;
    unasked u = {r, NULL};
    MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, find_unasked, &u);
    if (!u.name)
        return false;
    char took[256] = "none";
    size_t n = 0;
    for (int i = 0; i < r->nasked && n < sizeof took; i++)
        n += (size_t)snprintf(took + n, sizeof took - n, "%s%s", i ? ", " : "", r->asked[i]);
    r->wapply = NULL;
    if (r->stream_fill && r->stream_free)
        r->stream_free(r->stream_ctx);
    r->stream_fill = NULL;
    set_reply(r, 0, NULL, NULL, 0);
    while (r->nhdr)
        free(r->hdr_value[--r->nhdr]);
    sy_reply_problem(r, 400, "validation", u.name,
                     "unknown query parameter '%.64s' (this endpoint reads: %s)", u.name, took);
    return true;
}

const char *sy_req_header(sy_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *sy_req_peer(sy_req *r)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    char *out = sy_req_alloc(r, INET6_ADDRSTRLEN);
    out[0] = '\0';
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;
    if (sa && sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out,
                  INET6_ADDRSTRLEN);
    else if (sa && sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, out,
                  INET6_ADDRSTRLEN);
    return out;
}

const char *sy_req_body(sy_req *r, size_t *len)
{
    *len = r->body.len;
    return r->body.data ? r->body.data : "";
}

json_t *sy_req_json_object(sy_req *r)
{
    if (r->json)
        return r->json;
    if (r->body.len == 0) {
        sy_reply_problem(r, 400, "invalid-json", "", "the request needs a JSON object body");
        return NULL;
    }
    json_error_t e;
    json_t *j = json_loadb(r->body.data, r->body.len, JSON_REJECT_DUPLICATES, &e);
    if (!j) {
        sy_reply_problem(r, 400, "invalid-json", "",
                         "the body is not valid JSON (line %d, column %d): %s", e.line, e.column,
                         e.text);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        sy_reply_problem(r, 400, "validation", "", "the body must be a JSON object");
        return NULL;
    }
    r->json = j;
    return j;
}

/* ------------------------------------------------------------------ */
/* replies                                                             */

static void set_reply(sy_req *r, int status, const char *type, char *body, size_t len)
{
    free(r->resp_body);
    r->status = status;
    r->resp_type = type;
    r->resp_body = body;
    r->resp_len = len;
}

void sy_reply_raw(sy_req *r, int status, const char *content_type, char *body, size_t len)
{
    set_reply(r, status, content_type, body, len);
}

void sy_reply_json(sy_req *r, int status, json_t *body)
{
    /* Most replies fit a stack buffer: encode there and copy once, rather
     * than growing jansson's string buffer. */
    char stack[4096];
    size_t n = json_dumpb(body, stack, sizeof stack, JSON_COMPACT);
    char *s = NULL;
    if (n > 0 && n <= sizeof stack) {
        s = sy_xstrndup(stack, n);
    } else if (n > sizeof stack) {
        s = json_dumps(body, JSON_COMPACT);
        n = s ? strlen(s) : 0;
    }
    json_decref(body);
    if (!s) {
        sy_reply_problem(r, 500, "internal", NULL, "could not encode the response");
        return;
    }
    set_reply(r, status, "application/json", s, n);
}

const char *sy_problem_title(const char *type)
{
    static const struct {
        const char *type, *title;
    } titles[] = {
        {"invalid-json", "Malformed JSON"},
        {"validation", "Invalid input"},
        {"unauthorized", "Missing or invalid API key"},
        {"forbidden", "Not allowed for this key's role"},
        {"not-found", "Not found"},
        {"method-not-allowed", "Method not allowed"},
        {"conflict", "Conflict"},
        {"idempotency-mismatch", "Idempotency-Key reused with a different request"},
        {"insufficient-points", "Not enough points"},
        {"points-used", "The earned points were used"},
        {"already-reversed", "Entry reversed already"},
        {"not-reversible", "Entry cannot be reversed"},
        {"not-available", "Not available now"},
        {"out-of-stock", "Out of stock"},
        {"limit-reached", "Limit reached"},
        {"not-eligible", "Not eligible"},
        {"not-redeemable", "Grant cannot be redeemed"},
        {"already-redeemed", "Grant redeemed already under another reference"},
        {"not-revocable", "Grant cannot be revoked"},
        {"not-draft", "Only a draft campaign can change"},
        {"bad-transition", "Not a step of the campaign's lifecycle from its status"},
        {"maker-checker", "Approval must come from another key than the author's"},
        {"wrong-type", "Not a campaign of that type"},
        {"not-running", "Campaign not running"},
        {"not-in-audience", "Not in the campaign's audience"},
        {"unsuitable", "The campaign's product does not suit the customer's risk profile"},
        {"holdout", "Held out of the campaign"},
        {"already-checked-in", "Checked in already"},
        {"already-done", "Task rewarded already in this period"},
        {"budget-exhausted", "Campaign budget spent"},
        {"makeup-not-allowed", "Make-up check-in not allowed"},
        {"reward-refused", "The reward could not be issued"},
        {"no-prizes", "The lottery has no prize table"},
        {"no-chances", "No draws left today"},
        {"not-editable", "The prize table cannot change now"},
        {"self-invite", "A customer cannot use their own invite code"},
        {"unknown-code", "No such invite code in this campaign"},
        {"already-bound", "The invitee is bound to an inviter already"},
        {"existing-customer", "Only new customers can be invited"},
        {"not-held", "The referral is not held for review"},
        {"review-expired", "The review deadline has passed"},
        {"not-started", "No wave of the coupon drop has opened yet"},
        {"wave-sold-out", "The current wave is sold out"},
        {"blocked", "On the tenant's blocklist"},
        {"velocity", "Too many participations in a short time"},
        {"payload-too-large", "Request body too large"},
        {"rate-limited", "Too many requests"},
        {"internal", "Internal error"},
        {"unavailable", "Service unavailable"},
    };
    for (size_t i = 0; i < SY_ARRAY_LEN(titles); i++)
        if (!strcmp(titles[i].type, type))
            return titles[i].title;
    return NULL;
}

void sy_reply_problem(sy_req *r, int status, const char *type, const char *field, const char *fmt,
                      ...)
{
    char detail[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    json_t *p = json_object();
    json_object_set_new(p, "type", json_string(type));
    const char *title = sy_problem_title(type);
    json_object_set_new(p, "title", json_string(title ? title : "Error"));
    json_object_set_new(p, "status", json_integer(status));
    /* detail may quote client input that is not valid UTF-8. */
    json_t *d = json_string(detail);
    json_object_set_new(p, "detail", d ? d : json_string("(detail not representable)"));
    if (field) {
        json_t *f = json_string(field);
        if (f)
            json_object_set_new(p, "field", f);
    }
    if (r->path) {
        json_t *inst = json_string(r->shown_path ? r->shown_path : r->path);
        if (inst)
            json_object_set_new(p, "instance", inst);
    }
    json_object_set_new(p, "request_id", json_string(r->request_id));
    char *s = json_dumps(p, JSON_COMPACT);
    json_decref(p);
    set_reply(r, status, k_problem_type, s, strlen(s));
}

void sy_reply_header(sy_req *r, const char *name, const char *value)
{
    if (r->nhdr >= MAX_EXTRA_HEADERS)
        return;
    r->hdr_name[r->nhdr] = name;
    r->hdr_value[r->nhdr] = sy_xstrdup(value);
    r->nhdr++;
}

void sy_reply_extend(sy_req *r, const char *key, json_t *value)
{
    json_t *o = r->resp_body ? json_loadb(r->resp_body, r->resp_len, 0, NULL) : NULL;
    if (!json_is_object(o)) {
        json_decref(o);
        json_decref(value);
        return;
    }
    json_object_set_new(o, key, value);
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (s)
        set_reply(r, r->status, r->resp_type, s, strlen(s));
}

void sy_reply_stream(sy_req *r, int status, const char *content_type,
                     size_t (*fill)(void *ctx, char *buf, size_t max), void *ctx,
                     void (*free_ctx)(void *ctx))
{
    set_reply(r, status, content_type, NULL, 0);
    r->stream_fill = fill;
    r->stream_ctx = ctx;
    r->stream_free = free_ctx;
}

typedef struct stream_state {
    size_t (*fill)(void *, char *, size_t);
    void *ctx;
    void (*free_ctx)(void *);
} stream_state;

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    stream_state *s = cls;
    size_t n = s->fill(s->ctx, buf, max);
    return n ? (ssize_t)n : MHD_CONTENT_READER_END_OF_STREAM;
}

static void stream_done(void *cls)
{
    stream_state *s = cls;
    if (s->free_ctx)
        s->free_ctx(s->ctx);
    free(s);
}

bool sy_req_replied(sy_req *r)
{
    return r->status != 0;
}

static enum MHD_Result queue_reply(sy_req *r)
{
    if (!r->status)
        sy_reply_problem(r, 500, "internal", NULL, "the handler produced no response");
    struct MHD_Response *resp;
    if (r->stream_fill) {
        stream_state *ss = sy_xmalloc(sizeof *ss);
        *ss = (stream_state){r->stream_fill, r->stream_ctx, r->stream_free};
        r->stream_fill = NULL; /* owned by the response now */
        resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024, stream_read, ss,
                                                 stream_done);
        if (!resp) {
            stream_done(ss);
            return MHD_NO;
        }
    } else {
        resp = MHD_create_response_from_buffer_with_free_callback(r->resp_len, r->resp_body, free);
        if (!resp)
            return MHD_NO;
        r->resp_body = NULL; /* owned by the response now */
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->resp_type);
    MHD_add_response_header(resp, "X-Request-Id", r->request_id);
    for (int i = 0; i < r->nhdr; i++)
        MHD_add_response_header(resp, r->hdr_name[i], r->hdr_value[i]);
    enum MHD_Result ok = MHD_queue_response(r->conn, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    r->state = ST_QUEUED;
    return ok;
}

/* ------------------------------------------------------------------ */
/* audit and idempotency                                               */

int sy_audit_insert(sy_conn *c, const char *tenant, const char *actor, const char *role,
                    const char *action, const char *target, const char *request_id,
                    const char *detail_json, int64_t now_ms)
{
    static const char sql[] =
        "INSERT INTO audit_log (tenant_id, at, actor, role, action, target, request_id, detail)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    sy_stmt_bind_text(st, 1, tenant);
    sy_stmt_bind_i64(st, 2, now_ms);
    sy_stmt_bind_text(st, 3, actor);
    sy_stmt_bind_text(st, 4, role);
    sy_stmt_bind_text(st, 5, action);
    sy_stmt_bind_text(st, 6, target);
    sy_stmt_bind_text(st, 7, request_id);
    sy_stmt_bind_text(st, 8, detail_json);
    return sy_stmt_exec(st);
}

static void idem_hash(sy_req *r)
{
    crypto_generichash_state h;
    unsigned char out[32];
    crypto_generichash_init(&h, NULL, 0, sizeof out);
    crypto_generichash_update(&h, (const unsigned char *)r->method, strlen(r->method) + 1);
    crypto_generichash_update(&h, (const unsigned char *)r->path, strlen(r->path) + 1);
    if (r->body.len)
        crypto_generichash_update(&h, (const unsigned char *)r->body.data, r->body.len);
    crypto_generichash_final(&h, out, sizeof out);
    sy_hex(out, sizeof out, r->idem_hash);
}

/* Looks up a stored outcome.  Returns true when it recorded a reply (the
 * replay, or 409 idempotency-mismatch). */
static bool idem_replay(sy_req *r)
{
    static const char sql[] =
        "SELECT request_hash, status, body, content_type, location FROM idempotency"
        " WHERE tenant_id = $1 AND idem_key = $2 AND created_at >= $3";
    sy_store *s = r->srv->app->store;
    sy_conn *c = sy_store_acquire(s);
    bool replied = false;
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st) {
        sy_reply_problem(r, 500, "internal", NULL, "idempotency lookup failed");
        sy_store_release(s, c);
        return true;
    }
    sy_stmt_bind_text(st, 1, r->who.tenant);
    sy_stmt_bind_text(st, 2, r->idem_key);
    sy_stmt_bind_i64(st, 3, sy_now_ms() - SY_IDEMPOTENCY_TTL_MS);
    int rc = sy_stmt_step(st);
    if (rc == SY_ROW) {
        replied = true;
        if (strcmp(sy_stmt_text(st, 0), r->idem_hash) != 0) {
            sy_reply_problem(r, 409, "idempotency-mismatch", "Idempotency-Key",
                             "this Idempotency-Key was used with a different request");
        } else {
            /* The answer as it was first sent: its type (records from
             * before migration 0022 have none: a refusal's was a problem)
             * and its Location. */
            int status = (int)sy_stmt_i64(st, 1);
            const char *type = sy_stmt_is_null(st, 3) ? NULL : sy_stmt_text(st, 3);
            bool problem = type ? strcmp(type, k_problem_type) == 0 : status >= 400;
            set_reply(r, status, problem ? k_problem_type : "application/json",
                      sy_xstrndup(sy_stmt_text(st, 2), sy_stmt_len(st, 2)), sy_stmt_len(st, 2));
            if (!sy_stmt_is_null(st, 4))
                sy_reply_header(r, "Location", sy_stmt_text(st, 4));
            sy_reply_header(r, "Idempotent-Replayed", "true");
            r->replaying = true;
        }
    } else if (rc != SY_DONE) {
        replied = true;
        sy_reply_problem(r, 500, "internal", NULL, "idempotency lookup failed");
    }
    sy_stmt_reset(st);
    sy_store_release(s, c);
    return replied;
}

static int idem_store(sy_conn *c, sy_req *r)
{
    /* An expired record not purged yet must not block the key's reuse. */
    static const char expired[] = "DELETE FROM idempotency WHERE tenant_id = $1"
                                  " AND idem_key = $2 AND created_at < $3";
    sy_stmt *del = sy_conn_prepare(c, expired);
    if (!del)
        return SY_ERR;
    sy_stmt_bind_text(del, 1, r->who.tenant);
    sy_stmt_bind_text(del, 2, r->idem_key);
    sy_stmt_bind_i64(del, 3, sy_now_ms() - SY_IDEMPOTENCY_TTL_MS);
    int drc = sy_stmt_exec(del);
    if (drc != SY_OK)
        return drc;
    static const char sql[] =
        "INSERT INTO idempotency (tenant_id, idem_key, request_hash, status, body, created_at,"
        " content_type, location) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
    sy_stmt *st = sy_conn_prepare(c, sql);
    if (!st)
        return SY_ERR;
    char *stored = NULL;
    if (r->idem_body)
        stored = json_dumps(r->idem_body, JSON_COMPACT);
    sy_stmt_bind_text(st, 1, r->who.tenant);
    sy_stmt_bind_text(st, 2, r->idem_key);
    sy_stmt_bind_text(st, 3, r->idem_hash);
    sy_stmt_bind_i64(st, 4, r->status);
    if (stored)
        sy_stmt_bind_text(st, 5, stored);
    else
        sy_stmt_bind_textn(st, 5, r->resp_body ? r->resp_body : "", r->resp_len);
    sy_stmt_bind_i64(st, 6, sy_now_ms());
    sy_stmt_bind_text(st, 7, r->resp_type ? r->resp_type : "application/json");
    const char *location = NULL;
    for (int i = 0; i < r->nhdr; i++)
        if (!strcmp(r->hdr_name[i], "Location"))
            location = r->hdr_value[i];
    if (location)
        sy_stmt_bind_text(st, 8, location);
    else
        sy_stmt_bind_null(st, 8);
    int rc = sy_stmt_exec(st);
    free(stored);
    return rc;
}

/* ------------------------------------------------------------------ */
/* writes                                                              */

void sy_req_write(sy_req *r, sy_write_fn apply, void (*committed)(sy_req *, void *), void *ctx)
{
    r->wapply = apply;
    r->wcommitted = committed;
    r->wctx = ctx;
}

void sy_req_write_reply(sy_req *r, sy_write_fn reply)
{
    r->wreply = reply;
}

void sy_req_write_rerun(sy_req *r, void (*reset)(sy_req *r, void *ctx))
{
    r->wrerun = true;
    r->wreset = reset;
}

void sy_req_audit_target(sy_req *r, const char *target)
{
    r->audit_target = target ? sy_req_strdup(r, target) : NULL;
}

void sy_req_audit_action(sy_req *r, const char *action)
{
    r->audit_action = action;
}

void sy_req_no_audit(sy_req *r)
{
    r->no_audit = true;
}

void sy_req_idem_used(sy_req *r)
{
    r->idem_used = true;
}

void sy_req_idem_body(sy_req *r, json_t *body)
{
    json_decref(r->idem_body);
    r->idem_body = body;
}

static bool audited_role(sy_role role)
{
    return role == SY_ROLE_ADMIN || role == SY_ROLE_COMPLIANCE;
}

static int req_apply(sy_conn *c, void *ctx)
{
    sy_req *r = ctx;
    int rc = r->wapply(c, r, r->wctx);
    if (rc == 0 && !r->status && r->wreply && r->idem_key)
        rc = r->wreply(c, r, r->wctx); /* the stored reply needs it now */
    if (rc != 0) {
        if (!r->status) {
            sy_error("write %s failed (%d): %s", sy_routes[r->route].label, rc, sy_conn_errmsg(c));
            sy_reply_problem(r, 500, "internal", NULL, "the change could not be made");
        }
        return rc;
    }
    if (r->idem_key && (rc = idem_store(c, r)) != SY_OK) {
        if (rc == SY_ECONSTRAINT) {
            /* A concurrent request with the same key committed first. */
            r->idem_race = true;
            return rc;
        }
        sy_error("idempotency record: %s", sy_conn_errmsg(c));
        sy_reply_problem(r, 500, "internal", NULL, "the change could not be recorded");
        return rc;
    }
    const sy_route *rt = &sy_routes[r->route];
    if (audited_role(r->who.role) && !(rt->flags & SY_ROUTE_NO_AUDIT) && !r->no_audit) {
        rc = sy_audit_insert(c, r->who.tenant, r->who.key_id, sy_role_name(r->who.role),
                             r->audit_action ? r->audit_action : rt->label, r->audit_target,
                             r->request_id, NULL, sy_now_ms());
        if (rc != SY_OK) {
            sy_error("audit record: %s", sy_conn_errmsg(c));
            sy_reply_problem(r, 500, "internal", NULL, "the change could not be audited");
            return rc;
        }
    }
    if (r->fail_after_write) {
        sy_reply_problem(r, 500, "internal", NULL,
                         "the change was made and then failed, as X-Siyu-Test-Fail asked");
        return SY_ERR;
    }
    return 0;
}

/* A replayed answer waits for a batch of its own: the writer commits in
 * order and the syncer answers in order, so once this mutation is answered
 * every batch committed before it — the one that stored the answer among
 * them — is durable.  A read connection sees a commit up to one fsync
 * before it is; without this, a retry arriving in that window would be
 * acknowledged before the original. */
static int barrier_apply(sy_conn *c, void *ctx)
{
    (void)c, (void)ctx;
    return 0;
}

static void barrier_reset(void *ctx)
{
    (void)ctx;
}

/* Before apply runs again: what it recorded is forgotten. */
static void req_reset(void *ctx)
{
    sy_req *r = ctx;
    set_reply(r, 0, NULL, NULL, 0);
    while (r->nhdr > r->wnhdr)
        free(r->hdr_value[--r->nhdr]);
    r->idem_race = false;
    r->idem_used = false;
    r->audit_target = r->w_audit_target;
    r->audit_action = r->w_audit_action;
    r->no_audit = r->w_no_audit;
    if (r->wreset)
        r->wreset(r, r->wctx);
}

static void req_committed(void *ctx)
{
    sy_req *r = ctx;
    if (r->wcommitted)
        r->wcommitted(r, r->wctx);
}

static void req_write_done(sy_mutation *m)
{
    sy_req *r = m->ctx;
    r->state = ST_WRITTEN;
    MHD_resume_connection(r->conn);
}

/* libmicrohttpd's unescaping of the path and the query, except that a
 * %00 becomes 0x01: a decoded NUL would cut the path or a value short,
 * unseen (/v1/keys/ID%00junk would read key ID), while 0x01 is refused
 * in a path (req_new) and fails every check of a query value. */
static size_t unescape(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls, (void)c;
    size_t n = MHD_http_unescape(s);
    for (size_t i = 0; i < n; i++)
        if (s[i] == '\0')
            s[i] = '\x01';
    return n;
}

/* Called on the first access-handler call after the writer resumed us. */
static void finish_write(sy_req *r)
{
    if (r->replaying)
        return; /* the stored reply, now that what it answers is durable */
    if (r->idem_used && r->idem_key) {
        /* The change's own check found its key used: by a request whose
         * stored answer is replayed when there is one (two requests with
         * one key, in flight together), else the refusal stands (a key
         * whose record has expired). */
        int status = r->status;
        const char *type = r->resp_type;
        char *body = r->resp_body;
        size_t len = r->resp_len;
        r->resp_body = NULL;
        r->status = 0;
        if (idem_replay(r)) {
            r->replaying = false;
            free(body);
        } else {
            set_reply(r, status, type, body, len);
        }
        return;
    }
    if (r->idem_race) {
        free(r->resp_body);
        r->resp_body = NULL;
        r->status = 0;
        if (!idem_replay(r))
            sy_reply_problem(r, 409, "conflict", "Idempotency-Key",
                             "a request with this Idempotency-Key is in progress; retry");
        return;
    }
    if (r->mut.rc == SY_ERR && (r->status < 400)) {
        /* The batch transaction failed after apply succeeded. */
        sy_reply_problem(r, 503, "unavailable", NULL,
                         "the change was not saved (storage error); it is safe to retry");
        return;
    }
    if (r->mut.rc == 0 && !r->status && r->wreply) {
        sy_conn *c = sy_store_acquire(r->srv->app->store);
        int rc = r->wreply(c, r, r->wctx);
        if (rc != SY_OK || !r->status)
            sy_error("reply of %s failed (%d): %s", sy_routes[r->route].label, rc,
                     sy_conn_errmsg(c));
        sy_store_release(r->srv->app->store, c);
        if (rc != SY_OK || !r->status) {
            free(r->resp_body);
            r->resp_body = NULL;
            r->status = 0;
            sy_reply_problem(r, 500, "internal", NULL,
                             "the change was saved, but its reply could not be read back");
        }
    }
}

/* ------------------------------------------------------------------ */
/* dispatch                                                            */

static bool valid_token_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '-' || ch == '_' || ch == '.' || ch == ':';
}

static char prefix_of_ids[17];

static void init_request_id_prefix(void)
{
    unsigned char rnd[8];
    randombytes_buf(rnd, sizeof rnd);
    sy_hex(rnd, sizeof rnd, prefix_of_ids);
}

static void set_request_id(sy_req *r)
{
    const char *h = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "X-Request-Id");
    if (h) {
        size_t n = strlen(h);
        bool ok = n > 0 && n < sizeof r->request_id;
        for (size_t i = 0; ok && i < n; i++)
            ok = valid_token_char(h[i]);
        if (ok) {
            memcpy(r->request_id, h, n + 1);
            return;
        }
    }
    /* Generated ids: a random per-process prefix and a counter — unique,
     * and no system call per request. */
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    static atomic_uint_fast64_t counter;
    pthread_once(&once, init_request_id_prefix);
    snprintf(r->request_id, sizeof r->request_id, "%s%08llx", prefix_of_ids,
             (unsigned long long)atomic_fetch_add(&counter, 1));
}

static bool authenticate(sy_req *r, const sy_route *rt)
{
    const char *h =
        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h || strncasecmp(h, "Bearer ", 7) != 0) {
        sy_reply_problem(r, 401, "unauthorized", "Authorization",
                         "send an API key as 'Authorization: Bearer <key>'");
        sy_reply_header(r, "WWW-Authenticate", "Bearer realm=\"siyu\"");
        return false;
    }
    const char *tok = h + 7;
    while (*tok == ' ')
        tok++;
    if (!sy_keys_verify(r->srv->app->keys, tok, strlen(tok), &r->who)) {
        sy_reply_problem(r, 401, "unauthorized", "Authorization",
                         !strncmp(tok, "key_", 4)
                             ? "that is a key's id (key_…): send the key itself (sy_…), which was"
                               " shown once when it was created"
                             : "the API key is not valid or has been revoked");
        sy_reply_header(r, "WWW-Authenticate", "Bearer realm=\"siyu\", error=\"invalid_token\"");
        return false;
    }
    r->authenticated = true;
    if (!(rt->roles & r->who.role)) {
        sy_reply_problem(r, 403, "forbidden", NULL, "a key with role '%s' may not call %s",
                         sy_role_name(r->who.role), rt->label);
        return false;
    }
    return true;
}

static bool check_idempotency(sy_req *r)
{
    const char *k = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Idempotency-Key");
    if (!k)
        return true;
    size_t n = strlen(k);
    bool ok = n >= 1 && n <= 255;
    for (size_t i = 0; ok && i < n; i++)
        ok = k[i] > 0x20 && k[i] < 0x7f;
    if (!ok) {
        sy_reply_problem(r, 400, "validation", "Idempotency-Key",
                         "Idempotency-Key must be 1 to 255 visible ASCII characters");
        return false;
    }
    r->idem_key = sy_req_strdup(r, k);
    idem_hash(r);
    return !idem_replay(r);
}

/* The test clock: a server started with --test-clock takes "now" from the
 * request's X-Siyu-Now header (RFC 3339 or epoch milliseconds); any other
 * server refuses a request that carries it, so a client can never move a
 * production server's clock. */
static bool test_clock(sy_req *r)
{
    const char *v = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "X-Siyu-Now");
    if (!v)
        return true;
    const sy_config *cfg = r->srv->app ? r->srv->app->cfg : NULL;
    if (!cfg || !cfg->test_clock) {
        sy_reply_problem(r, 400, "validation", "X-Siyu-Now",
                         "X-Siyu-Now is accepted only by a server started with --test-clock");
        return false;
    }
    int64_t ms;
    if (!sy_parse_time(v, &ms) && !sy_parse_i64(v, 1, INT64_MAX / 2, &ms)) {
        sy_reply_problem(r, 400, "validation", "X-Siyu-Now",
                         "X-Siyu-Now must be an RFC 3339 time with a zone or epoch milliseconds");
        return false;
    }
    r->now_ms = ms;
    return true;
}

/* Under --test-clock only: "X-Siyu-Test-Fail: after-write" makes the
 * request's write fail after all its SQL ran (a 500), so that tests can
 * watch the writer undo a mutation that wrote before it failed. */
static bool test_fail(sy_req *r)
{
    const char *v = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "X-Siyu-Test-Fail");
    if (!v)
        return true;
    const sy_config *cfg = r->srv->app ? r->srv->app->cfg : NULL;
    if (!cfg || !cfg->test_clock || strcmp(v, "after-write") != 0) {
        sy_reply_problem(r, 400, "validation", "X-Siyu-Test-Fail",
                         "X-Siyu-Test-Fail: after-write is accepted only by a server started"
                         " with --test-clock");
        return false;
    }
    r->fail_after_write = true;
    return true;
}

/* Runs the matched route's handler.  Returns true when a write is pending. */
static bool dispatch(sy_req *r)
{
    if (r->route == ROUTE_NONE)
        return false; /* the 404/405 reply was recorded at the first call */
    const sy_route *rt = &sy_routes[r->route];
    if (rt->roles && !authenticate(r, rt))
        return false;
    if ((rt->flags & SY_ROUTE_IDEMPOTENT) && !check_idempotency(r))
        return r->replaying; /* a replay goes through the writer (barrier_apply) */
    if (!test_clock(r) || !test_fail(r))
        return false;
    rt->handler(r);
    if (refuse_unasked(r))
        return false;
    if (r->wapply) {
        if (r->status) {
            sy_error("handler %s both replied and wrote", rt->label);
            r->wapply = NULL;
            return false;
        }
        return true;
    }
    return false;
}

static void start_write(sy_req *r)
{
    r->state = ST_WRITING;
    r->wnhdr = r->nhdr;
    r->w_audit_target = r->audit_target;
    r->w_audit_action = r->audit_action;
    r->w_no_audit = r->no_audit;
    if (r->replaying)
        r->mut = (sy_mutation){
            .apply = barrier_apply, .done = req_write_done, .reset = barrier_reset, .ctx = r};
    else
        r->mut = (sy_mutation){.apply = req_apply,
                               .committed = req_committed,
                               .done = req_write_done,
                               .reset = r->wrerun ? req_reset : NULL,
                               .ctx = r};
    /* Suspend before submitting so the writer's resume cannot come first. */
    r->suspended = true;
    atomic_fetch_add(&r->srv->suspended, 1);
    sy_metrics_awaiting_commit(1);
    MHD_suspend_connection(r->conn);
    sy_writer_submit(r->srv->app->writer, &r->mut);
}

/* A suspended request ends either by being called again after the resume,
 * or — when its client went away meanwhile — by being completed without
 * that call.  Whichever comes first settles the count. */
static void settle_suspended(sy_req *r)
{
    if (r->suspended) {
        r->suspended = false;
        atomic_fetch_sub(&r->srv->suspended, 1);
        sy_metrics_awaiting_commit(-1);
    }
}

static sy_req *req_new(sy_server *srv, struct MHD_Connection *conn, const char *method,
                       const char *url)
{
    sy_req *r = sy_xcalloc(1, sizeof *r);
    r->srv = srv;
    r->conn = conn;
    r->t0 = sy_mono_ns();
    r->method = method; /* libmicrohttpd keeps it alive for the request */
    r->path = sy_xstrdup(url);
    r->scratch = sy_xmalloc(strlen(url) + 2);
    r->state = ST_READING;
    set_request_id(r);
    sy_metrics_in_flight(1);
    char allowed[128];
    r->route = sy_route_match(sy_routes, sy_routes_count, method, r->path, r->scratch, &r->match,
                              allowed, sizeof allowed);
    /* A path ending in personal data is shown without it, also when the
     * method does not fit (a POST to /v1/identities/phone/…: 405) */
    bool pii = r->route != ROUTE_NONE && (sy_routes[r->route].flags & SY_ROUTE_PII_PATH);
    for (int i = 0; r->route == ROUTE_NONE && !pii && i < sy_routes_count; i++) {
        char al[16];
        sy_match m;
        pii = (sy_routes[i].flags & SY_ROUTE_PII_PATH) &&
              sy_route_match(&sy_routes[i], 1, sy_routes[i].method, r->path, r->scratch, &m, al,
                             sizeof al) == 0;
    }
    if (pii) {
        const char *slash = strrchr(r->path, '/');
        size_t keep = (size_t)(slash - r->path) + 1;
        r->shown_path = sy_xmalloc(keep + 4);
        memcpy(r->shown_path, r->path, keep);
        memcpy(r->shown_path + keep, "***", 4);
    }
    const char *shown = r->shown_path ? r->shown_path : r->path;
    bool control = false;
    for (const char *p = r->path; *p; p++)
        control |= (unsigned char)*p < 0x20 || *p == 0x7f;
    if (atomic_load(&srv->stopping)) {
        sy_reply_problem(r, 503, "unavailable", NULL, "the server is shutting down; retry");
        sy_reply_header(r, "Connection", "close");
    } else if (control) {
        sy_reply_problem(r, 400, "validation", "path",
                         "the path must not contain control characters (%%00 to %%1F, %%7F)");
    } else if (r->route == ROUTE_NONE) {
        /* /v1/segments/preview for /v1/segments:preview: actions are
         * written with a colon, a natural slip worth naming */
        char hint[160] = "";
        const char *slash = strrchr(r->path, '/');
        if (!r->shown_path && slash && slash > r->path && strlen(r->path) < 128) {
            char alt[130], alt_scratch[132], alt_allowed[128];
            snprintf(alt, sizeof alt, "%s", r->path);
            alt[slash - r->path] = ':';
            sy_match m;
            if (sy_route_match(sy_routes, sy_routes_count, method, alt, alt_scratch, &m,
                               alt_allowed, sizeof alt_allowed) != ROUTE_NONE)
                snprintf(hint, sizeof hint, " (did you mean %s %s?)", method, alt);
        }
        if (allowed[0]) {
            sy_reply_problem(r, 405, "method-not-allowed", NULL, "%s is not allowed on %s%s",
                             method, shown, hint);
            sy_reply_header(r, "Allow", allowed);
        } else {
            sy_reply_problem(r, 404, "not-found", NULL, "no such endpoint: %s%s", shown, hint);
        }
    }
    return r;
}

static void too_large(sy_req *r)
{
    sy_reply_problem(r, 413, "payload-too-large", NULL,
                     "the request body exceeds the limit of %zu bytes", r->srv->max_body);
    sy_reply_header(r, "Connection", "close");
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls)
{
    (void)version;
    sy_server *srv = cls;
    sy_req *r = *con_cls;
    if (!r) {
        /* libmicrohttpd names its threads MHD-single; ours say what they
         * are, for top -H, perf and the benchmarks' CPU by thread */
        static _Thread_local bool named;
        if (!named) {
            pthread_setname_np(pthread_self(), "siyu-http");
            named = true;
        }
        *con_cls = r = req_new(srv, conn, method, url);
        /* A body announced larger than the limit is refused before it is
         * read.  Queueing now makes libmicrohttpd close the connection,
         * which is what we want here. */
        const char *cl =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        int64_t want;
        if (cl && sy_parse_i64(cl, 0, INT64_MAX, &want)) {
            if ((uint64_t)want > srv->max_body) {
                too_large(r);
                return queue_reply(r);
            }
            if (want > 0 && !r->status)
                sy_buf_reserve(&r->body, (size_t)want);
        }
        return MHD_YES;
    }
    switch (r->state) {
    case ST_QUEUED:
        *upload_data_size = 0; /* discard what follows a 413 */
        return MHD_YES;
    case ST_WRITTEN:
        settle_suspended(r);
        finish_write(r);
        return queue_reply(r);
    case ST_WRITING:
        return MHD_YES; /* not expected while suspended */
    case ST_READING:
        break;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (r->status)
            return MHD_YES; /* already refused (413): discard the rest */
        if (r->body.len + n > srv->max_body) {
            too_large(r);
            return MHD_YES;
        }
        sy_buf_append(&r->body, upload_data, n);
        return MHD_YES;
    }
    if (!r->status && dispatch(r)) {
        start_write(r);
        return MHD_YES;
    }
    return queue_reply(r);
}

/* ------------------------------------------------------------------ */
/* completion: access log + metrics                                    */

/* Quotes client-supplied text as a JSON string into out; returns its length. */
static size_t json_quote(const char *text, char *out, size_t n)
{
    json_t *j = json_string(text);
    size_t len = j ? json_dumpb(j, out, n, JSON_ENCODE_ANY) : 0;
    json_decref(j);
    if (!j || len == 0 || len >= n)
        len = (size_t)snprintf(out, n, "\"(unprintable)\"");
    return len;
}

/* One JSON line per request.  Fixed fields are formatted directly; only the
 * client-supplied ones (method, path) go through jansson for escaping.
 * Tenant, key and request ids are validated tokens and need none. */
static void write_access_log(sy_server *srv, sy_req *r, double ms)
{
    char ts[32], path[2100], method[64];
    sy_format_time(sy_now_ms(), ts, sizeof ts);
    size_t plen = json_quote(r->shown_path ? r->shown_path : r->path, path, sizeof path);
    size_t mlen = json_quote(r->method, method, sizeof method);
    char line[2600];
    int n;
    if (r->authenticated)
        n = snprintf(line, sizeof line,
                     "{\"ts\":\"%s\",\"method\":%.*s,\"path\":%.*s,\"route\":\"%s\","
                     "\"status\":%d,\"latency_ms\":%.3f,\"tenant\":\"%s\",\"key\":\"%s\","
                     "\"request_id\":\"%s\"}\n",
                     ts, (int)mlen, method, (int)plen, path,
                     r->route >= 0 ? sy_routes[r->route].label : "unmatched", r->status, ms,
                     r->who.tenant, r->who.key_id, r->request_id);
    else
        n = snprintf(line, sizeof line,
                     "{\"ts\":\"%s\",\"method\":%.*s,\"path\":%.*s,\"route\":\"%s\","
                     "\"status\":%d,\"latency_ms\":%.3f,\"tenant\":null,\"key\":null,"
                     "\"request_id\":\"%s\"}\n",
                     ts, (int)mlen, method, (int)plen, path,
                     r->route >= 0 ? sy_routes[r->route].label : "unmatched", r->status, ms,
                     r->request_id);
    if (n > 0 && (size_t)n < sizeof line)
        sy_write_all(srv->log_fd, line, (size_t)n);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)conn;
    (void)toe;
    sy_server *srv = cls;
    sy_req *r = *con_cls;
    if (!r)
        return;
    *con_cls = NULL;
    settle_suspended(r);
    uint64_t ns = sy_mono_ns() - r->t0;
    sy_metrics_request(r->route, r->status, ns);
    if (srv->log_fd >= 0)
        write_access_log(srv, r, (double)ns / 1e6);
    sy_metrics_in_flight(-1);
    req_free(r);
}

/* New connections are accepted until the server begins to stop. */
static enum MHD_Result on_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
    (void)addr;
    (void)addrlen;
    sy_server *srv = cls;
    return atomic_load(&srv->stopping) ? MHD_NO : MHD_YES;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_ctx,
                          enum MHD_ConnectionNotificationCode code)
{
    (void)cls, (void)conn, (void)socket_ctx;
    sy_metrics_connections(code == MHD_CONNECTION_NOTIFY_STARTED ? 1 : -1);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    sy_warn("libmicrohttpd: %s", msg);
}

/* ------------------------------------------------------------------ */
/* start / stop                                                        */

static bool parse_listen(const char *listen, struct sockaddr_storage *ss, char *err, size_t errlen)
{
    char host[256];
    const char *colon = strrchr(listen, ':');
    if (!colon) {
        snprintf(err, errlen, "listen address '%s' must be ADDR:PORT", listen);
        return false;
    }
    size_t hl = (size_t)(colon - listen);
    if (hl >= sizeof host) {
        snprintf(err, errlen, "listen address too long");
        return false;
    }
    memcpy(host, listen, hl);
    host[hl] = '\0';
    if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
        memmove(host, host + 1, hl - 2);
        host[hl - 2] = '\0';
    }
    int64_t port;
    if (!sy_parse_i64(colon + 1, 0, 65535, &port)) {
        snprintf(err, errlen, "listen port in '%s' must be 0-65535", listen);
        return false;
    }
    struct addrinfo hints = {.ai_flags = AI_PASSIVE | AI_NUMERICSERV, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    char portstr[8];
    snprintf(portstr, sizeof portstr, "%d", (int)port);
    int rc = getaddrinfo(host[0] ? host : NULL, portstr, &hints, &res);
    if (rc != 0 || !res) {
        snprintf(err, errlen, "listen address '%s': %s", listen, gai_strerror(rc));
        return false;
    }
    memset(ss, 0, sizeof *ss);
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return true;
}

/* Whether the address is free for a listener of ours.  The daemons listen
 * with SO_REUSEPORT, which would let a second server (another data
 * directory, by mistake) share a port that one already serves, each
 * getting part of the connections.  A probe bound without it fails while
 * anyone listens there. */
static bool address_free(const struct sockaddr_storage *ss)
{
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return true; /* let the daemon report it */
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one,
               sizeof one); /* as the daemon: TIME_WAIT is fine */
    /* and IPv6 only, as libmicrohttpd's sockets are without
     * MHD_USE_DUAL_STACK: [::]:P does not collide with 0.0.0.0:P */
    if (ss->ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    socklen_t len =
        ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    bool free_ = bind(fd, (const struct sockaddr *)ss, len) == 0;
    close(fd);
    return free_;
}

sy_server *sy_server_start(sy_app *app, const sy_server_opts *o, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    if (!parse_listen(o->listen, &ss, err, errlen))
        return NULL;
    sy_server *srv = sy_xcalloc(1, sizeof *srv);
    srv->app = app;
    srv->max_body = o->max_body;
    srv->log_fd = o->access_log_fd;
    unsigned threads =
        o->threads > 0 ? (unsigned)o->threads : (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
    if (threads < 1)
        threads = 1;
    if (threads > SY_SERVER_MAX_THREADS)
        threads = SY_SERVER_MAX_THREADS;
    in_port_t want = ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                              : ((struct sockaddr_in *)&ss)->sin_port;
    if (want != 0 && !address_free(&ss)) {
        snprintf(err, errlen, "cannot listen on %s (address in use)", o->listen);
        free(srv);
        return NULL;
    }
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    for (unsigned i = 0; i < threads; i++) {
        srv->ds[i] = MHD_start_daemon(
            flags, 0, on_accept, srv, on_access, srv, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss, MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u,
            MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv, MHD_OPTION_NOTIFY_CONNECTION,
            on_connection, srv, MHD_OPTION_CONNECTION_TIMEOUT,
            o->connection_timeout ? o->connection_timeout : 60u, MHD_OPTION_LISTEN_BACKLOG_SIZE,
            1024,
            /* Each connection's pool holds its request line, headers and
             * I/O buffers, and is zeroed between keep-alive requests: 16
             * KiB is ample for API calls and halves that cost against the
             * default. */
            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)16384, MHD_OPTION_UNESCAPE_CALLBACK,
            unescape, NULL, MHD_OPTION_END);
        if (!srv->ds[i]) {
            snprintf(err, errlen, "cannot listen on %s (address in use or not available)",
                     o->listen);
            for (unsigned k = 0; k < i; k++)
                MHD_stop_daemon(srv->ds[k]);
            free(srv);
            return NULL;
        }
        srv->nds = i + 1;
        if (i == 0) {
            /* the others join the port the first one got (port 0: any) */
            const union MHD_DaemonInfo *info =
                MHD_get_daemon_info(srv->ds[0], MHD_DAEMON_INFO_BIND_PORT);
            srv->port = info ? info->port : 0;
            if (srv->port <= 0) {
                snprintf(err, errlen, "cannot tell the port %s was bound to", o->listen);
                MHD_stop_daemon(srv->ds[0]);
                free(srv);
                return NULL;
            }
            if (ss.ss_family == AF_INET6)
                ((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)srv->port);
            else
                ((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)srv->port);
        }
    }
    return srv;
}

int sy_server_port(sy_server *s)
{
    return s->port;
}

void sy_server_stop(sy_server *s, int grace_ms)
{
    if (!s)
        return;
    /* Stop accepting (on_accept refuses new connections); requests already
     * begun finish.  Not MHD_quiesce_daemon: with a pool of epoll threads,
     * libmicrohttpd 0.9.75 sometimes aborts in it ("Failed to remove listen
     * FD from epoll set") when a worker touches its epoll set meanwhile. */
    atomic_store(&s->stopping, true);
    struct timespec tick = {0, 5 * 1000000};
    uint64_t deadline = sy_mono_ns() + (uint64_t)grace_ms * 1000000u;
    while (sy_metrics_in_flight_now() > 0 && sy_mono_ns() < deadline)
        nanosleep(&tick, NULL);
    if (sy_metrics_in_flight_now() > 0)
        sy_warn("shutdown: %lld requests still in flight after %d ms (slow clients)",
                (long long)sy_metrics_in_flight_now(), grace_ms);
    /* Writes in progress always finish: the writer commits or fails each one
     * within the store's busy timeout, and its reply must go out. */
    while (atomic_load(&s->suspended) > 0)
        nanosleep(&tick, NULL);
    for (unsigned i = 0; i < s->nds; i++)
        MHD_stop_daemon(s->ds[i]);
    free(s);
}

/* harness.h — end-to-end test harness: starts the real siyu binary
 * ($SIYU_BIN) on a free loopback port with a temporary data directory, and
 * speaks HTTP to it through libcurl.
 *
 * The server is started with --listen 127.0.0.1:0 and reports the port it
 * bound in a port file; its stderr (which carries the bootstrap admin key on
 * first start) and its access log are kept in the test's directory. */
#ifndef SY_E2E_HARNESS_H
#define SY_E2E_HARNESS_H

#include "testutil.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

/* The personal-data key every test server runs with (a test-only value). */
#define H_DATA_KEY "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

typedef struct h_server {
    char *dir; /* test directory: data/, stderr.log, access.log, port */
    char data[512];
    char admin_key[128];
    pid_t pid;
    int port;
    char extra[8][64]; /* extra command-line arguments */
    int nextra;
} h_server;

typedef struct h_resp {
    long status;
    char *body;
    size_t len;
    char headers[4096];
    json_t *json;  /* parsed body, NULL if not JSON */
    long connects; /* new connections this request opened */
} h_resp;

static inline const char *h_bin(void)
{
    const char *b = getenv("SIYU_BIN");
    return b ? b : "./siyu";
}

static inline void h_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static inline char *h_read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    size_t n;
    while ((n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len < 2) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
    }
    buf[len] = '\0';
    fclose(f);
    return buf;
}

/* Runs a siyu command synchronously (e.g. "key create ..."); returns its exit
 * status and its stdout in out (malloc'd, may be NULL). */
static inline int h_cli(h_server *s, char **out, const char *fmt, ...)
{
    char args[1024], cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "'%s' %s --data '%s' 2>>'%s/cli.log'", h_bin(), args, s->data,
             s->dir);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char buf[4096];
    size_t n = fread(buf, 1, sizeof buf - 1, p);
    buf[n] = '\0';
    int st = pclose(p);
    if (out)
        *out = strdup(buf);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Runs SQL with the sqlite3 shell on s's database, beside the running
 * server (which may be writing: the shell waits up to 10 s for the lock),
 * and returns the first number it prints (-1: none). */
static inline long h_sql_long(h_server *s, const char *sql)
{
    char *cmd = malloc(strlen(sql) + strlen(s->data) + 64);
    assert_non_null(cmd);
    sprintf(cmd, "sqlite3 -cmd '.timeout 10000' '%s/siyu.db' \"%s\"", s->data, sql);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    long n = -1;
    if (fscanf(p, "%ld", &n) != 1)
        n = -1;
    pclose(p);
    free(cmd);
    return n;
}

/* Runs SQL on s's database beside the server (see h_sql_long); it must
 * succeed. */
static inline void h_sql(h_server *s, const char *sql)
{
    char *cmd = malloc(strlen(sql) + strlen(s->data) + 64);
    assert_non_null(cmd);
    sprintf(cmd, "sqlite3 -cmd '.timeout 10000' '%s/siyu.db' \"%s\" >/dev/null", s->data, sql);
    assert_int_equal(system(cmd), 0);
    free(cmd);
}

/* Servers still running when the test program exits (a failed assertion
 * skips h_stop) are killed, so no test leaves a process behind. */
static pid_t h_live[64];

static void h_kill_live(void)
{
    for (size_t i = 0; i < SY_TEST_LEN(h_live); i++)
        if (h_live[i] > 0) {
            kill(h_live[i], SIGKILL);
            waitpid(h_live[i], NULL, 0);
        }
}

static inline void h_track(pid_t old, pid_t now)
{
    static bool registered;
    if (!registered) {
        atexit(h_kill_live);
        registered = true;
    }
    for (size_t i = 0; i < SY_TEST_LEN(h_live); i++)
        if (h_live[i] == old) {
            h_live[i] = now;
            return;
        }
}

/* Starts (or restarts) the server on the data directory. */
static inline void h_launch(h_server *s)
{
    char portfile[600], errlog[600], alog[600];
    snprintf(portfile, sizeof portfile, "%s/port", s->dir);
    snprintf(errlog, sizeof errlog, "%s/stderr.log", s->dir);
    snprintf(alog, sizeof alog, "%s/access.log", s->dir);
    unlink(portfile);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(errlog, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, 2);
            dup2(fd, 1);
            close(fd);
        }
        const char *argv[32];
        int a = 0;
        argv[a++] = h_bin();
        argv[a++] = "serve";
        argv[a++] = "--data";
        argv[a++] = s->data;
        argv[a++] = "--listen";
        argv[a++] = "127.0.0.1:0";
        argv[a++] = "--port-file";
        argv[a++] = portfile;
        argv[a++] = "--access-log";
        argv[a++] = alog;
        argv[a++] = "--threads";
        argv[a++] = "4";
        for (int i = 0; i < s->nextra; i++)
            argv[a++] = s->extra[i];
        argv[a] = NULL;
        if (!getenv("H_NO_DATA_KEY"))
            setenv("SIYU_DATA_KEY", H_DATA_KEY, 1);
        else
            unsetenv("SIYU_DATA_KEY"); /* not the caller's either */
        execv(h_bin(), (char *const *)argv);
        _exit(127);
    }
    s->pid = pid;
    h_track(0, pid);
    /* Generous: a restart after kill -9 recovers the WAL first, and CI runs
     * this under the sanitizers on a busy machine. */
    for (int i = 0; i < 3000; i++) {
        char *p = h_read_file(portfile);
        if (p) {
            s->port = atoi(p);
            free(p);
            if (s->port > 0)
                return;
        }
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            char *log = h_read_file(errlog);
            fail_msg("siyu serve exited early: %s", log ? log : "(no log)");
        }
        h_sleep_ms(10);
    }
    fail_msg("siyu serve did not report its port within 30 s");
}

/* Creates a test directory and starts a server on a fresh data directory;
 * extra arguments (NULL-terminated) are passed to `siyu serve`. */
static inline h_server *h_start(const char *extra, ...)
{
    h_server *s = calloc(1, sizeof *s);
    s->dir = tu_tempdir();
    snprintf(s->data, sizeof s->data, "%s/data", s->dir);
    va_list ap;
    va_start(ap, extra);
    for (const char *e = extra; e && s->nextra < 8; e = va_arg(ap, const char *))
        snprintf(s->extra[s->nextra++], sizeof s->extra[0], "%s", e);
    va_end(ap);
    h_launch(s);
    char path[600];
    snprintf(path, sizeof path, "%s/stderr.log", s->dir);
    /* The server prints its bootstrap key before it reports its port; poll
     * briefly all the same, so a slow disk cannot make this flaky. */
    for (int tries = 0; tries < 500 && !s->admin_key[0]; tries++) {
        char *log = h_read_file(path);
        const char *k = log ? strstr(log, "sy_") : NULL;
        while (k && !(strlen(k) >= 59 && k[15] == '_'))
            k = strstr(k + 1, "sy_");
        if (k) {
            memcpy(s->admin_key, k, 59);
            s->admin_key[59] = '\0';
        }
        free(log);
        if (!s->admin_key[0])
            h_sleep_ms(10);
    }
    if (!s->admin_key[0])
        fail_msg("no bootstrap admin key in %s", path);
    return s;
}

/* Sends sig and waits for the process; returns its exit status (or 128+sig). */
static inline int h_signal_wait(h_server *s, int sig)
{
    if (s->pid <= 0)
        return -1;
    kill(s->pid, sig);
    int st = 0;
    for (int i = 0; i < 3000; i++) {
        if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
            h_track(s->pid, 0);
            s->pid = 0;
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        h_sleep_ms(10);
    }
    kill(s->pid, SIGKILL);
    waitpid(s->pid, &st, 0);
    h_track(s->pid, 0);
    s->pid = 0;
    fail_msg("siyu did not exit within 30 s of signal %d", sig);
    return -1;
}

static inline void h_stop(h_server *s)
{
    if (!s)
        return;
    if (s->pid > 0)
        assert_int_equal(h_signal_wait(s, SIGTERM), 0);
    tu_rmtree(s->dir);
    free(s->dir);
    free(s);
}

static size_t h_write_cb(char *p, size_t sz, size_t n, void *ud)
{
    h_resp *r = ud;
    size_t add = sz * n;
    r->body = realloc(r->body, r->len + add + 1);
    memcpy(r->body + r->len, p, add);
    r->len += add;
    r->body[r->len] = '\0';
    return add;
}

static size_t h_header_cb(char *p, size_t sz, size_t n, void *ud)
{
    h_resp *r = ud;
    size_t add = sz * n, have = strlen(r->headers);
    if (have + add < sizeof r->headers) {
        memcpy(r->headers + have, p, add);
        r->headers[have + add] = '\0';
    }
    return add;
}

static inline void h_resp_free(h_resp *r)
{
    free(r->body);
    json_decref(r->json);
    memset(r, 0, sizeof *r);
}

/* Finds a response header (case-insensitive name); copies its value. */
static inline bool h_header(const h_resp *r, const char *name, char *out, size_t n)
{
    size_t nl = strlen(name);
    for (const char *line = r->headers; line && *line;) {
        if (!strncasecmp(line, name, nl) && line[nl] == ':') {
            const char *v = line + nl + 1;
            while (*v == ' ')
                v++;
            size_t len = strcspn(v, "\r\n");
            if (len >= n)
                len = n - 1;
            memcpy(out, v, len);
            out[len] = '\0';
            return true;
        }
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    return false;
}

/* One request on handle c (reused for keep-alive).  headers: extra request
 * headers, NULL-terminated list or NULL.  body may be NULL. */
static inline h_resp h_req_on(CURL *c, h_server *s, const char *method, const char *path,
                              const char *key, const char *body, size_t body_len,
                              const char *const *headers)
{
    h_resp r = {0};
    char url[1024];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", s->port, path);
    struct curl_slist *hl = NULL;
    char auth[256];
    if (key) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", key);
        hl = curl_slist_append(hl, auth);
    }
    bool own_type = false, own_expect = false;
    for (const char *const *h = headers; h && *h; h++) {
        own_type |= !strncasecmp(*h, "Content-Type:", 13);
        own_expect |= !strncasecmp(*h, "Expect:", 7);
    }
    if (body && !own_type)
        hl = curl_slist_append(hl, "Content-Type: application/json");
    if (!own_expect) /* curl would wait for a 100 Continue on large bodies */
        hl = curl_slist_append(hl, "Expect:");
    for (const char *const *h = headers; h && *h; h++)
        hl = curl_slist_append(hl, *h);
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, h_write_cb);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, h_header_cb);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (!strcmp(method, "HEAD"))
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    }
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK) {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
        curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &r.connects);
        if (r.body) {
            /* A reply with a key twice is a broken reply: it must not parse. */
            json_error_t je;
            r.json = json_loadb(r.body, r.len, JSON_REJECT_DUPLICATES, &je);
            if (!r.json && strstr(je.text, "duplicate"))
                fail_msg("%s %s: the reply has a duplicate key: %s\n%.*s", method, path, je.text,
                         (int)(r.len > 600 ? 600 : r.len), r.body);
        }
    } else {
        r.status = -(long)rc; /* transport failure */
    }
    curl_slist_free_all(hl);
    return r;
}

static inline h_resp h_req(h_server *s, const char *method, const char *path, const char *key,
                           const char *body)
{
    CURL *c = curl_easy_init();
    h_resp r = h_req_on(c, s, method, path, key, body, body ? strlen(body) : 0, NULL);
    curl_easy_cleanup(c);
    return r;
}

static inline h_resp h_req_h(h_server *s, const char *method, const char *path, const char *key,
                             const char *body, const char *const *headers)
{
    CURL *c = curl_easy_init();
    h_resp r = h_req_on(c, s, method, path, key, body, body ? strlen(body) : 0, headers);
    curl_easy_cleanup(c);
    return r;
}

static inline const char *h_str(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* Asserts a problem+json reply with the given status and type; when field
 * is not NULL, also the field it names. */
#define h_assert_problem(r, st, typ, fld)                                                          \
    do {                                                                                           \
        char ct_[128] = "";                                                                        \
        if ((r).status != (st))                                                                    \
            fail_msg("expected %d, got %ld: %s", (st), (r).status, (r).body ? (r).body : "");      \
        assert_true(h_header(&(r), "Content-Type", ct_, sizeof ct_));                              \
        assert_string_equal(ct_, "application/problem+json");                                      \
        assert_non_null((r).json);                                                                 \
        assert_string_equal(h_str((r).json, "type"), (typ));                                       \
        assert_int_equal(json_integer_value(json_object_get((r).json, "status")), (st));           \
        assert_non_null(h_str((r).json, "detail"));                                                \
        if ((fld) != NULL)                                                                         \
            assert_string_equal(h_str((r).json, "field"), (const char *)(fld));                    \
    } while (0)

/* ---- a burst of concurrent clients ---- */

#define H_BURST_CLIENTS 64 /* clients a burst (and a kill -9 run) starts at once */
#define H_BURST_EACH 4     /* requests each client of a burst sends */

/* A burst (h_burst_run): send is called for k = 0 .. H_BURST_CLIENTS * H_BURST_EACH - 1, each
 * client on its own handle c; a 201 counts in ok (and in marked when mark says so), a 409 of
 * problem type refusal in refused, anything else fails the test. */
typedef struct h_burst {
    h_resp (*send)(CURL *c, int k, const void *ud);
    const void *ud;
    const char *refusal;
    bool (*mark)(const h_resp *r); /* may be NULL */
    int ok, refused, marked, other;
    char last_other[512];
    volatile int go;
    pthread_mutex_t mu;
} h_burst;

typedef struct h_burst_client {
    h_burst *b;
    int n;
} h_burst_client;

static inline void *h_burst_client_run(void *p)
{
    h_burst_client *cl = p;
    h_burst *b = cl->b;
    CURL *c = curl_easy_init();
    while (!b->go)
        ;
    for (int i = 0; i < H_BURST_EACH; i++) {
        h_resp r = b->send(c, cl->n * H_BURST_EACH + i, b->ud);
        pthread_mutex_lock(&b->mu);
        if (r.status == 201) {
            b->ok++;
            b->marked += b->mark && b->mark(&r);
        } else if (r.status == 409 && r.json && !strcmp(h_str(r.json, "type"), b->refusal)) {
            b->refused++;
        } else {
            b->other++;
            snprintf(b->last_other, sizeof b->last_other, "%ld %s", r.status, r.body ? r.body : "");
        }
        pthread_mutex_unlock(&b->mu);
        h_resp_free(&r);
    }
    curl_easy_cleanup(c);
    return NULL;
}

/* Starts the clients of b together and waits for them; fails the test on an unexpected answer. */
static inline void h_burst_run(h_burst *b)
{
    pthread_mutex_init(&b->mu, NULL);
    pthread_t t[H_BURST_CLIENTS];
    h_burst_client cl[H_BURST_CLIENTS];
    for (int i = 0; i < H_BURST_CLIENTS; i++) {
        cl[i] = (h_burst_client){b, i};
        pthread_create(&t[i], NULL, h_burst_client_run, &cl[i]);
    }
    b->go = 1;
    for (int i = 0; i < H_BURST_CLIENTS; i++)
        pthread_join(t[i], NULL);
    pthread_mutex_destroy(&b->mu);
    if (b->other)
        fail_msg("%d unexpected answers, e.g. %s", b->other, b->last_other);
    assert_int_equal(b->ok + b->refused, H_BURST_CLIENTS * H_BURST_EACH);
}

/* ---- kill -9 in the middle of a run of writes ---- */

#define H_KILL9_MAX_ACKED 20000 /* acknowledged writes a kill -9 run keeps */

/* A kill -9 run (h_kill9_run): H_BURST_CLIENTS clients call send, on their own handle c, for a
 * customer K0 .. K(customers - 1) picked at random with a fresh Idempotency-Key idem, until the
 * server dies; a 201's member id_field goes into acked, a lost connection waits for the end,
 * any other answer counts in bad. */
typedef struct h_kill9 {
    h_server *s;
    char key[128]; /* the API key the clients send */
    h_resp (*send)(CURL *c, const struct h_kill9 *k, const char *no, const char *idem);
    int customers;
    const char *id_field;
    char (*acked)[48]; /* malloc'd by h_kill9_run; the caller frees it */
    int nacked, bad;
    char last_bad[256];
    volatile int stop;
    pthread_mutex_t mu;
} h_kill9;

static inline void *h_kill9_client_run(void *p)
{
    h_kill9 *k = p;
    CURL *c = curl_easy_init();
    unsigned seed = (unsigned)(uintptr_t)pthread_self();
    for (int i = 0; !k->stop; i++) {
        char no[16], idem[64];
        snprintf(no, sizeof no, "K%u", (unsigned)(rand_r(&seed) % (unsigned)k->customers));
        snprintf(idem, sizeof idem, "k-%u-%d", (unsigned)(uintptr_t)pthread_self(), i);
        h_resp r = k->send(c, k, no, idem);
        pthread_mutex_lock(&k->mu);
        if (r.status == 201 && k->nacked < H_KILL9_MAX_ACKED) {
            snprintf(k->acked[k->nacked++], sizeof k->acked[0], "%s", h_str(r.json, k->id_field));
        } else if (r.status > 0 && r.status != 201) {
            k->bad++;
            snprintf(k->last_bad, sizeof k->last_bad, "%ld %s", r.status, r.body ? r.body : "");
        }
        pthread_mutex_unlock(&k->mu);
        bool gone = r.status < 0;
        h_resp_free(&r);
        while (gone && !k->stop)
            h_sleep_ms(5);
    }
    curl_easy_cleanup(c);
    return NULL;
}

/* Runs the clients of k until want writes are acknowledged (60 s at most), kills the server
 * with SIGKILL, stops the clients and restarts the server; fails the test on a bad answer or
 * fewer than want acknowledged. */
static inline void h_kill9_run(h_kill9 *k, int want)
{
    pthread_mutex_init(&k->mu, NULL);
    k->acked = calloc(H_KILL9_MAX_ACKED, sizeof *k->acked);
    assert_non_null(k->acked);
    pthread_t t[H_BURST_CLIENTS];
    for (int i = 0; i < H_BURST_CLIENTS; i++)
        pthread_create(&t[i], NULL, h_kill9_client_run, k);
    for (int waited = 0; waited < 60000; waited += 5) {
        pthread_mutex_lock(&k->mu);
        int n = k->nacked;
        pthread_mutex_unlock(&k->mu);
        if (n >= want)
            break;
        h_sleep_ms(5);
    }
    assert_int_equal(h_signal_wait(k->s, SIGKILL), 128 + SIGKILL);
    k->stop = 1;
    for (int i = 0; i < H_BURST_CLIENTS; i++)
        pthread_join(t[i], NULL);
    pthread_mutex_destroy(&k->mu);
    if (k->bad)
        fail_msg("%d writes got an unexpected answer, e.g. %s", k->bad, k->last_bad);
    assert_true(k->nacked >= want);
    h_launch(k->s);
}

#endif

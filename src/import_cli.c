/* import_cli.c — `siyu import customers FILE --tenant T`: bulk import
 * through a running server.
 *
 * The file is NDJSON (one customer object per line, as POST
 * /v1/customers:import takes it) or CSV with a header line: customer_no,
 * then any of the tenant's attributes, the personal data columns name,
 * phone and id_number, and identity columns (app_user_id, wechat_openid,
 * wechat_unionid, wecom_external_userid).  CSV cells are typed by the
 * attribute schema; an empty cell is left out.  Rows go to the server in
 * batches, so its indexes stay current; a bad row is reported with its line
 * number and the others are imported.  On a terminal a progress bar shows
 * rows per second and the time left. */
#include "config.h"
#include "util.h"

#include <csv.h>
#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct http {
    CURL *c;
    const char *url, *key;
} http;

static size_t sink(char *p, size_t sz, size_t n, void *ud)
{
    sy_buf_append(ud, p, sz * n);
    return sz * n;
}

/* Sends a request; returns the status (or -1) and the parsed JSON body. */
static long call(http *h, const char *method, const char *path, const char *body, size_t len,
                 const char *ctype, json_t **out)
{
    char url[1024], auth[256], ct[64];
    snprintf(url, sizeof url, "%s%s", h->url, path);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", h->key);
    snprintf(ct, sizeof ct, "Content-Type: %s", ctype ? ctype : "application/json");
    struct curl_slist *hl = curl_slist_append(NULL, auth);
    hl = curl_slist_append(hl, ct);
    hl = curl_slist_append(hl, "Expect:");
    sy_buf resp = {0};
    curl_easy_reset(h->c);
    curl_easy_setopt(h->c, CURLOPT_URL, url);
    curl_easy_setopt(h->c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h->c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h->c, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(h->c, CURLOPT_WRITEDATA, &resp);
    curl_easy_setopt(h->c, CURLOPT_TIMEOUT, 300L);
    if (body) {
        curl_easy_setopt(h->c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h->c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    long status = -1;
    if (curl_easy_perform(h->c) == CURLE_OK)
        curl_easy_getinfo(h->c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hl);
    *out = resp.data ? json_loadb(resp.data, resp.len, 0, NULL) : NULL;
    sy_buf_free(&resp);
    return status;
}

/* ---- CSV to customer objects ---- */

typedef enum { COL_NO, COL_ATTR_STR, COL_ATTR_INT, COL_ATTR_BOOL, COL_PII, COL_IDENTITY } col_kind;

typedef struct csv_state {
    json_t *schema; /* attribute name -> type */
    col_kind *kinds;
    char **names;
    size_t ncols, col;
    bool header_done;
    json_t *row; /* the object being built */
    sy_buf *out; /* NDJSON lines */
    size_t rows;
    char err[256];
} csv_state;

static void csv_field(void *s, size_t len, void *ud)
{
    csv_state *st = ud;
    char *v = sy_xstrndup(s ? s : "", len);
    size_t i = st->col++;
    if (!st->header_done) {
        st->names = sy_xrealloc(st->names, (i + 1) * sizeof *st->names);
        st->kinds = sy_xrealloc(st->kinds, (i + 1) * sizeof *st->kinds);
        st->names[i] = v;
        st->ncols = i + 1;
        const char *type = json_string_value(json_object_get(st->schema, v));
        if (!strcmp(v, "customer_no"))
            st->kinds[i] = COL_NO;
        else if (!strcmp(v, "name") || !strcmp(v, "phone") || !strcmp(v, "id_number"))
            st->kinds[i] = COL_PII;
        else if (!strcmp(v, "app_user_id") || !strcmp(v, "wechat_openid") ||
                 !strcmp(v, "wechat_unionid") || !strcmp(v, "wecom_external_userid"))
            st->kinds[i] = COL_IDENTITY;
        else if (type && !strcmp(type, "integer"))
            st->kinds[i] = COL_ATTR_INT;
        else if (type && !strcmp(type, "bool"))
            st->kinds[i] = COL_ATTR_BOOL;
        else if (type)
            st->kinds[i] = COL_ATTR_STR;
        else if (!st->err[0])
            snprintf(st->err, sizeof st->err,
                     "column '%s' is not an attribute of the tenant (see GET /v1/attributes)", v);
        return;
    }
    if (!st->row)
        st->row = json_object();
    if (i >= st->ncols || len == 0) {
        free(v);
        return;
    }
    const char *name = st->names[i];
    json_t *val = NULL;
    switch (st->kinds[i]) {
    case COL_NO:
        json_object_set_new(st->row, "customer_no", json_string(v));
        break;
    case COL_ATTR_INT: {
        int64_t n;
        val = sy_parse_i64(v, INT64_MIN, INT64_MAX, &n) ? json_integer(n) : json_string(v);
        break;
    }
    case COL_ATTR_BOOL:
        val = !strcmp(v, "true") || !strcmp(v, "1")    ? json_true()
              : !strcmp(v, "false") || !strcmp(v, "0") ? json_false()
                                                       : json_string(v);
        break;
    case COL_ATTR_STR:
        val = json_string(v);
        break;
    case COL_PII: {
        json_t *p = json_object_get(st->row, "pii");
        if (!p)
            json_object_set_new(st->row, "pii", p = json_object());
        json_object_set_new(p, name, json_string(v));
        break;
    }
    case COL_IDENTITY: {
        json_t *ids = json_object_get(st->row, "identities");
        if (!ids)
            json_object_set_new(st->row, "identities", ids = json_array());
        json_array_append_new(ids, json_pack("{s:s, s:s}", "type", name, "value", v));
        break;
    }
    }
    if (val) {
        json_t *a = json_object_get(st->row, "attributes");
        if (!a)
            json_object_set_new(st->row, "attributes", a = json_object());
        json_object_set_new(a, name, val ? val : json_null());
    }
    free(v);
}

static void csv_row(int c, void *ud)
{
    csv_state *st = ud;
    st->col = 0;
    if (!st->header_done) {
        st->header_done = true;
        return;
    }
    json_t *row = st->row ? st->row : json_object();
    st->row = NULL;
    char *line = json_dumps(row, JSON_COMPACT);
    json_decref(row);
    sy_buf_puts(st->out, line ? line : "{}");
    sy_buf_puts(st->out, "\n");
    free(line);
    st->rows++;
}

/* ---- the command ---- */

static void progress(size_t done, size_t total, size_t rows, uint64_t t0)
{
    double secs = (double)(sy_mono_ns() - t0) / 1e9;
    double frac = total ? (double)done / (double)total : 1;
    double rate = secs > 0 ? (double)rows / secs : 0;
    double eta = frac > 0 ? secs / frac - secs : 0;
    char bar[31];
    int fill = (int)(frac * 30);
    for (int i = 0; i < 30; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[30] = '\0';
    fprintf(stderr, "\r[%s] %3.0f%%  %zu rows  %.0f rows/s  ETA %d:%02d   ", bar, frac * 100, rows,
            rate, (int)eta / 60, (int)eta % 60);
}

int sy_cli_import(sy_config *cfg, const char *what, const char *file)
{
    if (strcmp(what, "customers") != 0) {
        fprintf(stderr, "siyu: import what? only 'customers' (siyu import customers FILE)\n");
        return 2;
    }
    if (!cfg->key || !*cfg->key) {
        fprintf(stderr, "siyu: import needs --key (or SIYU_KEY): an admin or app key\n");
        return 2;
    }
    if (cfg->batch < 1 || cfg->batch > 50000) {
        fprintf(stderr, "siyu: --batch must be 1 to 50000\n");
        return 2;
    }
    FILE *f = fopen(file, "rb");
    if (!f) {
        perror(file);
        return 1;
    }
    struct stat stt;
    size_t total = fstat(fileno(f), &stt) == 0 ? (size_t)stt.st_size : 0;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    http h = {curl_easy_init(), cfg->url, cfg->key};
    int rc = 1;
    json_t *j = NULL, *schema = json_object();
    long st = call(&h, "GET", "/v1/tenant", NULL, 0, NULL, &j);
    char tenant[64] = "";
    if (json_string_value(json_object_get(j, "id")))
        snprintf(tenant, sizeof tenant, "%s", json_string_value(json_object_get(j, "id")));
    if (st != 200 || !tenant[0]) {
        fprintf(stderr,
                "siyu: %s/v1/tenant answered %ld: is the server running and the key valid?\n",
                cfg->url, st);
        goto out;
    }
    if (strcmp(tenant, cfg->tenant) != 0) {
        fprintf(stderr, "siyu: the key belongs to tenant '%s', not '%s'\n", tenant, cfg->tenant);
        goto out;
    }
    json_decref(j);
    if (call(&h, "GET", "/v1/attributes", NULL, 0, NULL, &j) != 200) {
        fprintf(stderr, "siyu: cannot read the attribute schema\n");
        goto out;
    }
    size_t i;
    json_t *a;
    json_array_foreach (json_object_get(j, "items"), i, a)
        json_object_set(schema, json_string_value(json_object_get(a, "name")),
                        json_object_get(a, "type"));

    bool csvfile = strlen(file) > 4 && !strcasecmp(file + strlen(file) - 4, ".csv");
    bool tty = isatty(STDERR_FILENO);
    uint64_t t0 = sy_mono_ns();
    size_t done = 0, rows = 0, created = 0, updated = 0, failed = 0, next_line = 1;
    struct csv_parser cp;
    sy_buf lines = {0};
    csv_state cs = {.schema = schema, .out = &lines};
    if (csvfile)
        csv_init(&cp, CSV_APPEND_NULL);
    char buf[1 << 16];
    size_t n;
    bool eof = false;
    rc = 0;
    while (!eof && rc == 0) {
        /* Fill a batch of lines. */
        while (!eof) {
            size_t count = 0;
            for (size_t k = 0; k < lines.len; k++)
                count += lines.data[k] == '\n';
            if (count >= (size_t)cfg->batch)
                break;
            if ((n = fread(buf, 1, sizeof buf, f)) == 0) {
                eof = true;
                if (csvfile)
                    csv_fini(&cp, csv_field, csv_row, &cs);
                else if (lines.len && lines.data[lines.len - 1] != '\n')
                    sy_buf_puts(&lines, "\n");
                break;
            }
            done += n;
            if (csvfile) {
                if (csv_parse(&cp, buf, n, csv_field, csv_row, &cs) != n) {
                    fprintf(stderr, "\nsiyu: %s: %s\n", file, csv_strerror(csv_error(&cp)));
                    rc = 1;
                    break;
                }
                if (cs.err[0]) {
                    fprintf(stderr, "siyu: %s: %s\n", file, cs.err);
                    rc = 1;
                    break;
                }
            } else {
                sy_buf_append(&lines, buf, n);
            }
        }
        if (rc != 0)
            break;
        /* Send whole lines, up to the batch size. */
        size_t cut = 0, count = 0;
        while (cut < lines.len && count < (size_t)cfg->batch) {
            char *nl = memchr(lines.data + cut, '\n', lines.len - cut);
            if (!nl)
                break;
            cut = (size_t)(nl - lines.data) + 1;
            count++;
        }
        if (count == 0)
            continue;
        json_t *res = NULL;
        long status =
            call(&h, "POST", "/v1/customers:import", lines.data, cut, "application/x-ndjson", &res);
        if (status != 200) {
            fprintf(stderr, "\nsiyu: import request answered %ld: %s\n", status,
                    json_string_value(json_object_get(res, "detail"))
                        ? json_string_value(json_object_get(res, "detail"))
                        : "(no detail)");
            json_decref(res);
            rc = 1;
            break;
        }
        created += (size_t)json_integer_value(json_object_get(res, "created"));
        updated += (size_t)json_integer_value(json_object_get(res, "updated"));
        failed += (size_t)json_integer_value(json_object_get(res, "failed"));
        json_t *e;
        json_array_foreach (json_object_get(res, "errors"), i, e) {
            /* The server numbers the batch's lines from 1; a CSV file's
             * line 1 is its header. */
            size_t at = next_line - 1 + (size_t)json_integer_value(json_object_get(e, "line")) +
                        (csvfile ? 1 : 0);
            fprintf(stderr, "%s%s:%zu: %s%s%s\n", tty ? "\r" : "", file, at,
                    json_string_value(json_object_get(e, "field")),
                    *json_string_value(json_object_get(e, "field")) ? ": " : "",
                    json_string_value(json_object_get(e, "detail")));
        }
        json_decref(res);
        rows += count;
        next_line += count;
        memmove(lines.data, lines.data + cut, lines.len - cut);
        lines.len -= cut;
        if (tty)
            progress(done, total, rows, t0);
    }
    if (tty)
        progress(done, total, rows, t0), fputc('\n', stderr);
    double secs = (double)(sy_mono_ns() - t0) / 1e9;
    if (rc != 0 && rows == 0)
        fprintf(stderr, "siyu: nothing was imported into tenant %s\n", tenant);
    else
        fprintf(stderr,
                "%s %zu rows into tenant %s: %zu created, %zu updated, %zu failed, in %.1f s "
                "(%.0f rows/s)\n",
                rc != 0 ? "stopped after" : "imported", rows, tenant, created, updated, failed,
                secs, secs > 0 ? (double)rows / secs : 0);
    if (rc == 0 && failed)
        rc = 1;
    if (csvfile) {
        csv_free(&cp);
        for (size_t k = 0; k < cs.ncols; k++)
            free(cs.names[k]);
        free(cs.names);
        free(cs.kinds);
        json_decref(cs.row);
    }
    sy_buf_free(&lines);
out:
    json_decref(j);
    json_decref(schema);
    curl_easy_cleanup(h.c);
    curl_global_cleanup();
    fclose(f);
    return rc;
}

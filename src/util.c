/* util.c — allocation wrappers, byte buffers, clocks, number parsing and the
 * structured (JSON lines) logger. */
#include "util.h"

#include <csv.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void sy_oom(size_t n)
{
    char msg[96];
    int len = snprintf(msg, sizeof msg, "siyu: out of memory allocating %zu bytes\n", n);
    if (len > 0)
        (void)!write(STDERR_FILENO, msg, (size_t)len);
    abort();
}

void *sy_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        sy_oom(n);
    return p;
}

void *sy_xcalloc(size_t count, size_t n)
{
    void *p = calloc(count ? count : 1, n ? n : 1);
    if (!p)
        sy_oom(count * n);
    return p;
}

void *sy_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        sy_oom(n);
    return q;
}

char *sy_xstrdup(const char *s)
{
    return sy_xstrndup(s, strlen(s));
}

char *sy_xstrndup(const char *s, size_t n)
{
    char *p = sy_xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *sy_xasprintf(const char *fmt, ...)
{
    sy_buf b = {0};
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return sy_xstrdup("");
    sy_buf_reserve(&b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b.data, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return b.data;
}

void sy_buf_reserve(sy_buf *b, size_t extra)
{
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    b->data = sy_xrealloc(b->data, cap);
    b->cap = cap;
}

void sy_buf_append(sy_buf *b, const void *p, size_t n)
{
    sy_buf_reserve(b, n);
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void sy_buf_puts(sy_buf *b, const char *s)
{
    sy_buf_append(b, s, strlen(s));
}

void sy_buf_printf(sy_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n <= 0)
        return;
    sy_buf_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void sy_buf_reset(sy_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void sy_buf_free(sy_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

char *sy_buf_steal(sy_buf *b)
{
    if (!b->data)
        sy_buf_reserve(b, 0), b->data[0] = '\0';
    char *p = b->data;
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}

int64_t sy_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t sy_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Days since 1970-01-01 to a proleptic Gregorian date (the "civil from
 * days" algorithm of H. Hinnant): integer arithmetic only, so no locale or
 * time-zone lock is taken on this hot path (every timestamp in a reply). */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

int64_t sy_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

bool sy_parse_date(const char *s, int64_t *days)
{
    for (int i = 0; i < 10; i++) {
        bool dash = i == 4 || i == 7;
        if (dash ? s[i] != '-' : (s[i] < '0' || s[i] > '9'))
            return false;
    }
    if (s[10] != '\0')
        return false;
    int y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
    unsigned m = (unsigned)((s[5] - '0') * 10 + (s[6] - '0'));
    unsigned d = (unsigned)((s[8] - '0') * 10 + (s[9] - '0'));
    static const unsigned mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (y < 1900 || y > 2999 || m < 1 || m > 12 || d < 1 ||
        d > mdays[m - 1] + (m == 2 && leap ? 1u : 0u))
        return false;
    *days = sy_days_from_civil(y, m, d);
    return true;
}

static bool digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

bool sy_parse_time(const char *s, int64_t *ms)
{
    char date[11];
    if (strlen(s) < 20)
        return false;
    memcpy(date, s, 10);
    date[10] = '\0';
    int64_t days;
    int hh, mi, ss;
    if (!sy_parse_date(date, &days) || (s[10] != 'T' && s[10] != 't') || !digits(s + 11, 2, &hh) ||
        s[13] != ':' || !digits(s + 14, 2, &mi) || s[16] != ':' || !digits(s + 17, 2, &ss) ||
        hh > 23 || mi > 59 || ss > 59)
        return false;
    const char *p = s + 19;
    int frac = 0;
    if (*p == '.') {
        int n = 0, v = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, n++)
            if (n < 3)
                v = v * 10 + (*p - '0');
        if (n == 0 || n > 9)
            return false;
        for (; n < 3; n++)
            v *= 10;
        frac = v;
    }
    int offset_min = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om;
        if (!digits(p + 1, 2, &oh) || p[3] != ':' || !digits(p + 4, 2, &om) || oh > 23 || om > 59)
            return false;
        offset_min = (oh * 60 + om) * (*p == '-' ? -1 : 1);
        p += 6;
    } else {
        return false;
    }
    if (*p)
        return false;
    *ms = ((days * 86400 + hh * 3600 + mi * 60 + ss) - (int64_t)offset_min * 60) * 1000 + frac;
    return true;
}

static char *put_digits(char *p, unsigned v, int width)
{
    for (int i = width - 1; i >= 0; i--, v /= 10)
        p[i] = (char)('0' + v % 10);
    return p + width;
}

void sy_format_time(int64_t ms, char *out, size_t n)
{
    int64_t days = ms / 86400000, rem = ms % 86400000;
    if (rem < 0) {
        rem += 86400000;
        days -= 1;
    }
    int64_t y;
    unsigned mo, d;
    civil_from_days(days, &y, &mo, &d);
    if (n < 25 || y < 0 || y > 9999) {
        snprintf(out, n, "%s", "invalid-time");
        return;
    }
    unsigned msec = (unsigned)rem;
    char *p = put_digits(out, (unsigned)y, 4);
    *p++ = '-';
    p = put_digits(p, mo, 2);
    *p++ = '-';
    p = put_digits(p, d, 2);
    *p++ = 'T';
    p = put_digits(p, msec / 3600000, 2);
    *p++ = ':';
    p = put_digits(p, msec / 60000 % 60, 2);
    *p++ = ':';
    p = put_digits(p, msec / 1000 % 60, 2);
    *p++ = '.';
    p = put_digits(p, msec % 1000, 3);
    *p++ = 'Z';
    *p = '\0';
}

void sy_format_date(int64_t days, char out[11])
{
    int64_t y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    if (y < 0 || y > 9999) {
        memcpy(out, "0000-00-00", 11);
        return;
    }
    char *p = put_digits(out, (unsigned)y, 4);
    *p++ = '-';
    p = put_digits(p, m, 2);
    *p++ = '-';
    p = put_digits(p, d, 2);
    *p = '\0';
}

void sy_hex(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

/* sy_csv_one_field's reading of a line: the fields libcsv found, the first
 * one copied out. */
typedef struct csv_one {
    int fields;
    char *first;
} csv_one;

static void csv_one_field_cb(void *s, size_t len, void *ud)
{
    csv_one *o = ud;
    if (o->fields++ == 0)
        o->first = sy_xstrndup(s ? s : "", s ? len : 0);
}

char *sy_csv_one_field(char *p, const char **why)
{
    /* libcsv, strictly: a quote inside an unquoted field, or text after a
     * closing quote, is an error; so is a quote left open at the end */
    struct csv_parser cp;
    if (csv_init(&cp, CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL) != 0)
        sy_oom(sizeof cp);
    csv_one o = {0};
    size_t n = strlen(p);
    if (csv_parse(&cp, p, n, csv_one_field_cb, NULL, &o) != n)
        *why = p[0] == '"' ? "text after the closing quote of a quoted code"
                           : "a quote inside an unquoted code: quote the whole code and double its"
                             " quotes";
    else if (csv_fini(&cp, csv_one_field_cb, NULL, &o) != 0)
        *why = "a quoted code without its closing quote";
    else if (o.fields != 1)
        *why = "more than one field: one code a line";
    csv_free(&cp);
    if (!*why)
        memcpy(p, o.first, strlen(o.first) + 1); /* never longer than the line */
    free(o.first);
    return *why ? NULL : p;
}

bool sy_token_valid(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n < 1 || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return false;
    return true;
}

bool sy_ident_valid(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n < 1 || n > max || s[0] < 'a' || s[0] > 'z')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return false;
    return true;
}

void sy_ordered_id(const char *prefix, int64_t now_ms, char *out, size_t n)
{
    unsigned char raw[14];
    uint64_t t = now_ms < 0 ? 0 : (uint64_t)now_ms;
    for (int i = 0; i < 6; i++)
        raw[i] = (unsigned char)(t >> (8 * (5 - i)));
    randombytes_buf(raw + 6, 8);
    char hex[2 * sizeof raw + 1];
    sy_hex(raw, sizeof raw, hex);
    snprintf(out, n, "%s%s", prefix, hex);
}

bool sy_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
    /* Only an optional '-' and digits: strtoll alone would also accept
     * leading white space of any kind and a '+'. */
    if (!s || !(*s == '-' ? s[1] >= '0' && s[1] <= '9' : *s >= '0' && *s <= '9'))
        return false;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return false;
    *out = v;
    return true;
}

bool sy_parse_size(const char *s, uint64_t *out)
{
    if (!s || *s < '0' || *s > '9')
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno)
        return false;
    uint64_t mult = 1;
    if (!strcmp(end, "") || !strcmp(end, "B"))
        mult = 1;
    else if (!strcasecmp(end, "k") || !strcmp(end, "KiB") || !strcasecmp(end, "kb"))
        mult = 1024;
    else if (!strcasecmp(end, "m") || !strcmp(end, "MiB") || !strcasecmp(end, "mb"))
        mult = 1024 * 1024;
    else if (!strcasecmp(end, "g") || !strcmp(end, "GiB") || !strcasecmp(end, "gb"))
        mult = 1024ull * 1024 * 1024;
    else
        return false;
    if (v > UINT64_MAX / mult)
        return false;
    *out = (uint64_t)v * mult;
    return true;
}

static sy_log_level g_log_level = SY_LOG_INFO;
static const char *const g_level_names[] = {"debug", "info", "warn", "error"};

void sy_log_set_level(sy_log_level lvl)
{
    g_log_level = lvl;
}

bool sy_log_parse_level(const char *s, sy_log_level *out)
{
    for (size_t i = 0; i < SY_ARRAY_LEN(g_level_names); i++) {
        if (!strcmp(s, g_level_names[i])) {
            *out = (sy_log_level)i;
            return true;
        }
    }
    return false;
}

void sy_log(sy_log_level lvl, const char *fmt, ...)
{
    if (lvl < g_log_level)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char ts[32];
    sy_format_time(sy_now_ms(), ts, sizeof ts);
    json_t *o = json_pack("{s:s, s:s, s:s}", "ts", ts, "level", g_level_names[lvl], "msg", msg);
    if (!o)
        return;
    char line[2048];
    size_t n = json_dumpb(o, line, sizeof line - 1, JSON_COMPACT);
    json_decref(o);
    if (n == 0 || n >= sizeof line - 1)
        return;
    line[n++] = '\n';
    sy_write_all(STDERR_FILENO, line, n);
}

bool sy_write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return false;
        }
        c += w;
        n -= (size_t)w;
    }
    return true;
}

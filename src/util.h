/* util.h — allocation, growable buffers, clocks and structured logging.
 *
 * Every allocation in siyu goes through sy_xmalloc() and friends: they abort
 * with a message when memory runs out, so callers never test for NULL and
 * out-of-memory is handled in exactly one place. */
#ifndef SY_UTIL_H
#define SY_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SY_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

void *sy_xmalloc(size_t n);
void *sy_xcalloc(size_t count, size_t n);
void *sy_xrealloc(void *p, size_t n);
char *sy_xstrdup(const char *s);
char *sy_xstrndup(const char *s, size_t n);
char *sy_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A growable byte buffer, always NUL-terminated so it can be used as a
 * C string.  Zero-initialise ({0}) before first use; sy_buf_free() releases. */
typedef struct sy_buf {
    char *data;
    size_t len;
    size_t cap;
} sy_buf;

void sy_buf_reserve(sy_buf *b, size_t extra);
void sy_buf_append(sy_buf *b, const void *p, size_t n);
void sy_buf_puts(sy_buf *b, const char *s);
void sy_buf_printf(sy_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sy_buf_reset(sy_buf *b);
void sy_buf_free(sy_buf *b);
/* Transfers ownership of the bytes to the caller; the buffer is left empty. */
char *sy_buf_steal(sy_buf *b);

/* Wall-clock milliseconds since the Unix epoch (UTC). */
int64_t sy_now_ms(void);
/* Monotonic nanoseconds, for measuring durations. */
uint64_t sy_mono_ns(void);
/* Formats ms-since-epoch as RFC 3339 UTC with milliseconds into out (>= 25 bytes). */
void sy_format_time(int64_t ms, char *out, size_t n);

/* Calendar dates as days since 1970-01-01 (proleptic Gregorian).
 * sy_parse_date accepts exactly YYYY-MM-DD of a real date, years 1900-2999. */
bool sy_parse_date(const char *s, int64_t *days);
void sy_format_date(int64_t days, char out[11]);
int64_t sy_days_from_civil(int64_t y, unsigned m, unsigned d);

/* Parses an RFC 3339 time with a zone ("2026-11-23T10:00:00Z",
 * "2026-11-23T18:00:00.250+08:00") into milliseconds since the epoch. */
bool sy_parse_time(const char *s, int64_t *ms);

/* A lowercase identifier: [a-z][a-z0-9_]*, 1 to max characters (event
 * names, segment ids). */
bool sy_ident_valid(const char *s, size_t max);
/* A token of 1 to max visible ASCII characters (0x21..0x7e): event ids,
 * device ids, addresses, codes. */
bool sy_token_valid(const char *s, size_t max);
/* A CSV line (without its line break) as exactly one field, RFC 4180 as
 * libcsv reads it strictly, in place: a quoted field ends at its closing
 * quote and its "" is one quote.
 * Returns the field (within p), or NULL with *why (a sentence) when the
 * line is not one field: a second field, a quote inside an unquoted
 * field, an unclosed quote, text after the closing quote.  *why must be
 * NULL on entry. */
char *sy_csv_one_field(char *p, const char **why);

/* Lowercase hex encoding: out must hold 2*n+1 bytes. */
void sy_hex(const unsigned char *in, size_t n, char *out);

/* A new public id: prefix, the time in milliseconds as 12 hex digits, then
 * 16 random hex digits ("le_018f3a2b4c5d9e0f1a2b3c4d5e6f").  Ids made later
 * sort later, so a B-tree indexed by them grows at its right edge instead of
 * dirtying a random page per insert; the random part keeps them unique and
 * unguessable.  out must hold strlen(prefix) + 29 bytes (SY_ORDERED_ID_LEN). */
#define SY_ORDERED_ID_LEN 28
void sy_ordered_id(const char *prefix, int64_t now_ms, char *out, size_t n);

/* Strict integer parsing of a whole string; returns false on any junk,
 * overflow or value outside [min, max]. */
bool sy_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out);

/* Parses a size such as "8MiB", "512k", "1048576" into bytes. */
bool sy_parse_size(const char *s, uint64_t *out);

/* Structured logging: one JSON object per line on stderr, written with a
 * single write(2) so lines from different threads never interleave. */
typedef enum { SY_LOG_DEBUG, SY_LOG_INFO, SY_LOG_WARN, SY_LOG_ERROR } sy_log_level;
void sy_log_set_level(sy_log_level lvl);
bool sy_log_parse_level(const char *s, sy_log_level *out);
void sy_log(sy_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define sy_info(...) sy_log(SY_LOG_INFO, __VA_ARGS__)
#define sy_warn(...) sy_log(SY_LOG_WARN, __VA_ARGS__)
#define sy_error(...) sy_log(SY_LOG_ERROR, __VA_ARGS__)
#define sy_debug(...) sy_log(SY_LOG_DEBUG, __VA_ARGS__)

/* Writes all n bytes to fd, retrying on EINTR and short writes. */
bool sy_write_all(int fd, const void *p, size_t n);

#endif

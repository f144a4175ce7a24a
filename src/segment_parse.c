/* segment_parse.c — lexer, recursive-descent parser and canonical formatter
 * of the segment expression language (docs/segments.md).
 *
 * The lexer runs on demand: the parser holds one current token and can peek
 * at the next one.  Lexing errors travel inside the token (T_ERROR) and are
 * recorded when that token becomes current, so a peek never reports anything.
 * The first error recorded wins; later ones are ignored, and every parse
 * function frees what it built when it gives up.
 *
 * Recursion is bounded: 'and'/'or' chains are loops, and only '(' and 'not'
 * open a level, at most SY_SEG_MAX_DEPTH of them. */
#include "segment_parse.h"

#include "util.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- keywords ---- */

enum {
    KW_NONE,
    KW_AND,
    KW_OR,
    KW_NOT,
    KW_IN,
    KW_BETWEEN,
    KW_IS,
    KW_NULL,
    KW_WITHIN,
    KW_TRUE,
    KW_FALSE,
    KW_TAG,
    KW_SEGMENT,
    KW_DID,
    KW_DWELL
};

static const char *const kw_names[] = {"",        "and", "or",      "not",    "in",
                                       "between", "is",  "null",    "within", "true",
                                       "false",   "tag", "segment", "did",    "dwell"};

static int keyword(const char *s, size_t n)
{
    for (int k = KW_AND; k < (int)SY_ARRAY_LEN(kw_names); k++) {
        if (strlen(kw_names[k]) == n && strncasecmp(s, kw_names[k], n) == 0)
            return k;
    }
    return KW_NONE;
}

/* ---- characters ---- */

static bool is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static bool is_alpha(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_name_start(int c)
{
    return is_alpha(c) || c == '_';
}

static bool is_name_char(int c)
{
    return is_name_start(c) || is_digit(c);
}

/* A valid identifier: [A-Za-z_][A-Za-z0-9_]*, 1..63 characters. */
static bool is_ident(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > SY_SEG_MAX_NAME || !is_name_start((unsigned char)s[0]))
        return false;
    for (size_t i = 1; i < n; i++) {
        if (!is_name_char((unsigned char)s[i]))
            return false;
    }
    return true;
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0 when the
 * bytes are not one (overlong forms, surrogates and values above U+10FFFF
 * are invalid).  *cp receives the code point. */
static size_t utf8_seq(const unsigned char *s, size_t n, uint32_t *cp)
{
    if (n == 0)
        return 0;
    unsigned c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t len;
    uint32_t v, min;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2, v = c & 0x1F, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3, v = c & 0x0F, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4, v = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return len;
}

/* Number of bytes of whitespace at s[i]: ASCII space, tab, CR, LF, or the
 * ideographic (full-width) space U+3000. */
static size_t space_at(const char *s, size_t len, size_t i)
{
    unsigned char c = (unsigned char)s[i];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r')
        return 1;
    if (c == 0xE3 && i + 2 < len && (unsigned char)s[i + 1] == 0x80 &&
        (unsigned char)s[i + 2] == 0x80)
        return 3;
    return 0;
}

/* ---- calendar (proleptic Gregorian; H. Hinnant's algorithms) ---- */

static bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int64_t y, int m)
{
    static const int dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : dm[m - 1];
}

static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

/* ---- tokens ---- */

typedef enum {
    T_END,
    T_ERROR,
    T_IDENT,    /* name or keyword (kw) */
    T_QNAME,    /* `name` */
    T_STRING,   /* '...' or "..." */
    T_INT,      /* v */
    T_DECIMAL,  /* text kept */
    T_DATE,     /* v = days since 1970-01-01 */
    T_DURATION, /* v = milliseconds */
    T_LPAREN,
    T_RPAREN,
    T_COMMA,
    T_OP /* op */
} tok_type;

typedef struct token {
    tok_type t;
    int kw;
    size_t pos, end;
    int64_t v;
    sy_seg_op op;
    size_t errpos; /* T_ERROR */
    char errmsg[200];
} token;

static void tok_error(token *t, size_t pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void tok_error(token *t, size_t pos, const char *fmt, ...)
{
    t->t = T_ERROR;
    t->errpos = pos;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->errmsg, sizeof t->errmsg, fmt, ap);
    va_end(ap);
}

/* Cuts s (NUL-terminated) back so that it does not end inside a UTF-8
 * sequence — after a truncating snprintf. */
static void trim_utf8(char *s)
{
    size_t n = strlen(s);
    size_t i = n;
    while (i > 0 && ((unsigned char)s[i - 1] & 0xC0) == 0x80 && n - i < 3)
        i--;
    if (i > 0 && (unsigned char)s[i - 1] >= 0xC0) {
        uint32_t cp;
        if (utf8_seq((const unsigned char *)s + i - 1, n - (i - 1), &cp) != n - (i - 1))
            s[i - 1] = '\0';
    }
}

/* Quotes up to 32 bytes of src[a, b) into out for a message, cutting at a
 * character boundary and marking the cut with "...".  The text is known to
 * be printable ASCII or valid UTF-8. */
static void excerpt(const char *src, size_t a, size_t b, char *out, size_t outn)
{
    size_t n = b - a;
    bool cut = false;
    if (n > 32) {
        n = 32;
        while (n > 0 && ((unsigned char)src[a + n] & 0xC0) == 0x80)
            n--;
        cut = true;
    }
    snprintf(out, outn, "%.*s%s", (int)n, src + a, cut ? "..." : "");
}

static const char unit_names[] = "ms, s, m, h, d or w";

/* Number, date or duration starting at s[i] (a digit, or '-' then a digit). */
static void lex_number(const char *s, size_t len, size_t i, token *t)
{
    size_t j = i + 1;
    while (j < len && (is_name_char((unsigned char)s[j]) || s[j] == '.' || s[j] == '-'))
        j++;
    /* A keyword right after the number ends it, as in SQL: "aum>=5and x=1". */
    size_t e = i + (s[i] == '-');
    while (e < j && is_digit(s[e]))
        e++;
    if (e + 1 < j && s[e] == '.' && is_digit(s[e + 1])) {
        for (e++; e < j && is_digit(s[e]);)
            e++;
    } else if (s[i] != '-' && e - i == 4 && e + 6 <= j && s[e] == '-' && is_digit(s[e + 1]) &&
               is_digit(s[e + 2]) && s[e + 3] == '-' && is_digit(s[e + 4]) && is_digit(s[e + 5])) {
        e += 6;
    }
    size_t letters = e;
    while (letters < j && is_alpha((unsigned char)s[letters]))
        letters++;
    if (letters == j && letters > e && keyword(s + e, letters - e) != KW_NONE)
        j = e;
    t->end = j;
    char text[48];
    excerpt(s, i, j, text, sizeof text);
    bool neg = s[i] == '-';
    size_t d0 = i + neg, d = d0;
    while (d < j && is_digit(s[d]))
        d++;
    size_t nd = d - d0;

    if (d == j) { /* integer */
        uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX, v = 0;
        for (size_t k = d0; k < d; k++) {
            unsigned dig = (unsigned)(s[k] - '0');
            if (v > (limit - dig) / 10) {
                tok_error(t, i,
                          "integer out of range: '%s' (64-bit integers lie between "
                          "-9223372036854775808 and 9223372036854775807)",
                          text);
                return;
            }
            v = v * 10 + dig;
        }
        t->t = T_INT;
        t->v = neg ? (v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v) : (int64_t)v;
        return;
    }
    if (s[d] == '.') {
        size_t f = d + 1;
        while (f < j && is_digit(s[f]))
            f++;
        if (f == j && f > d + 1) {
            if (nd + (f - d - 1) > SY_SEG_MAX_DECIMAL_DIGITS) {
                tok_error(t, i, "decimal '%s' has more than %d digits", text,
                          SY_SEG_MAX_DECIMAL_DIGITS);
                return;
            }
            t->t = T_DECIMAL;
            return;
        }
        tok_error(t, i, "invalid number '%s'", text);
        return;
    }
    if (s[d] == '-' && !neg) {
        if (nd == 4 && j - i == 10 && is_digit(s[i + 5]) && is_digit(s[i + 6]) && s[i + 7] == '-' &&
            is_digit(s[i + 8]) && is_digit(s[i + 9])) {
            int64_t y = (s[i] - '0') * 1000 + (s[i + 1] - '0') * 100 + (s[i + 2] - '0') * 10 +
                        (s[i + 3] - '0');
            int m = (s[i + 5] - '0') * 10 + (s[i + 6] - '0');
            int dd = (s[i + 8] - '0') * 10 + (s[i + 9] - '0');
            if (m < 1 || m > 12) {
                tok_error(t, i, "invalid date '%s': month must be 01 to 12", text);
                return;
            }
            if (dd < 1 || dd > days_in_month(y, m)) {
                tok_error(t, i, "invalid date '%s': there is no day %02d in %04" PRId64 "-%02d",
                          text, dd, y, m);
                return;
            }
            t->t = T_DATE;
            t->v = days_from_civil(y, m, dd);
            return;
        }
        tok_error(t, i, "invalid date '%s' (dates are written YYYY-MM-DD)", text);
        return;
    }
    size_t u = d;
    while (u < j && is_alpha((unsigned char)s[u]))
        u++;
    if (u != j || nd == 0) {
        tok_error(t, i, "invalid number '%s'", text);
        return;
    }
    /* a duration: digits and a unit */
    static const struct {
        const char *name;
        int64_t ms;
    } units[] = {{"ms", 1},      {"s", 1000},     {"m", 60000},
                 {"h", 3600000}, {"d", 86400000}, {"w", 7 * 86400000LL}};
    int64_t unit = 0;
    for (size_t k = 0; k < SY_ARRAY_LEN(units); k++) {
        if (strlen(units[k].name) == j - d && memcmp(units[k].name, s + d, j - d) == 0)
            unit = units[k].ms;
    }
    if (!unit) {
        char ubuf[40];
        excerpt(s, d, j, ubuf, sizeof ubuf);
        tok_error(t, i, "unknown duration unit '%s' in '%s' (use %s)", ubuf, text, unit_names);
        return;
    }
    if (neg) {
        tok_error(t, i, "duration '%s' must be positive", text);
        return;
    }
    int64_t v = 0;
    for (size_t k = d0; k < d; k++) {
        v = v * 10 + (s[k] - '0');
        if (v > SY_SEG_MAX_DURATION_MS / unit) {
            tok_error(t, i, "duration '%s' is longer than the maximum of 3650d", text);
            return;
        }
    }
    if (v == 0) {
        tok_error(t, i, "duration '%s' must be positive", text);
        return;
    }
    t->t = T_DURATION;
    t->v = v * unit;
}

/* String literal starting at the quote s[i]; validates it and leaves the
 * unescaped length in t->v (the text is decoded by string_value()). */
static void lex_string(const char *s, size_t len, size_t i, token *t)
{
    char q = s[i];
    size_t j = i + 1, n = 0;
    for (;;) {
        if (j >= len) {
            tok_error(t, i, "unterminated string: no closing %c", q);
            return;
        }
        unsigned char c = (unsigned char)s[j];
        if (c == (unsigned char)q)
            break;
        if (c == '\\') {
            if (j + 1 >= len) {
                tok_error(t, i, "unterminated string: no closing %c", q);
                return;
            }
            unsigned char e = (unsigned char)s[j + 1];
            if (e != '\\' && e != '\'' && e != '"') {
                if (e > 0x20 && e < 0x7f)
                    tok_error(
                        t, j,
                        "invalid escape '\\%c' in string (only \\\\, \\' and \\\" are escapes)", e);
                else
                    tok_error(t, j,
                              "invalid escape (backslash before byte 0x%02x) in string "
                              "(only \\\\, \\' and \\\" are escapes)",
                              e);
                return;
            }
            n++, j += 2;
        } else if (c < 0x20 || c == 0x7f) {
            tok_error(t, j, "control character 0x%02x in string (strings are one line of text)", c);
            return;
        } else {
            uint32_t cp;
            size_t k = utf8_seq((const unsigned char *)s + j, len - j, &cp);
            if (!k) {
                tok_error(t, j, "invalid UTF-8 in string (byte 0x%02x)", c);
                return;
            }
            n += k, j += k;
        }
    }
    t->end = j + 1;
    if (n > SY_SEG_MAX_STRING) {
        tok_error(t, i, "string is longer than %d bytes", SY_SEG_MAX_STRING);
        return;
    }
    t->t = T_STRING;
    t->v = (int64_t)n;
}

/* The token at or after s[i]. */
static void lex(const char *s, size_t len, size_t i, token *t)
{
    t->kw = KW_NONE;
    t->v = 0;
    size_t w;
    while (i < len && (w = space_at(s, len, i)) > 0)
        i += w;
    t->pos = i;
    t->end = i;
    if (i >= len) {
        t->t = T_END;
        return;
    }
    unsigned char c = (unsigned char)s[i];
    t->end = i + 1;
    if (is_name_start(c)) {
        size_t j = i + 1;
        while (j < len && is_name_char((unsigned char)s[j]))
            j++;
        t->end = j;
        if (j - i > SY_SEG_MAX_NAME) {
            tok_error(t, i, "name '%.20s...' is longer than %d characters", s + i, SY_SEG_MAX_NAME);
            return;
        }
        t->t = T_IDENT;
        t->kw = keyword(s + i, j - i);
        return;
    }
    if (is_digit(c) || (c == '-' && i + 1 < len && is_digit(s[i + 1]))) {
        lex_number(s, len, i, t);
        return;
    }
    switch (c) {
    case '\'':
    case '"':
        lex_string(s, len, i, t);
        return;
    case '`': {
        size_t j = i + 1;
        if (j < len && is_name_start((unsigned char)s[j])) {
            while (j < len && is_name_char((unsigned char)s[j]))
                j++;
        }
        if (j < len && s[j] == '`' && j > i + 1) {
            t->end = j + 1;
            if (j - i - 1 > SY_SEG_MAX_NAME) {
                tok_error(t, i, "name '%.20s...' is longer than %d characters", s + i + 1,
                          SY_SEG_MAX_NAME);
                return;
            }
            t->t = T_QNAME;
            return;
        }
        if (!memchr(s + i + 1, '`', len - i - 1))
            tok_error(t, i, "unterminated `: no closing `");
        else
            tok_error(t, j,
                      "invalid name in backticks (names are ASCII letters, digits and _, "
                      "not starting with a digit)");
        return;
    }
    case '(':
        t->t = T_LPAREN;
        return;
    case ')':
        t->t = T_RPAREN;
        return;
    case ',':
        t->t = T_COMMA;
        return;
    case '=':
        t->t = T_OP, t->op = SY_OP_EQ;
        if (i + 1 < len && s[i + 1] == '=')
            t->end = i + 2;
        return;
    case '!':
        if (i + 1 < len && s[i + 1] == '=') {
            t->t = T_OP, t->op = SY_OP_NE, t->end = i + 2;
            return;
        }
        tok_error(t, i, "unexpected character '!' (use '!=' or 'not')");
        return;
    case '<':
        t->t = T_OP, t->op = SY_OP_LT;
        if (i + 1 < len && s[i + 1] == '=')
            t->op = SY_OP_LE, t->end = i + 2;
        else if (i + 1 < len && s[i + 1] == '>')
            t->op = SY_OP_NE, t->end = i + 2;
        return;
    case '>':
        t->t = T_OP, t->op = SY_OP_GT;
        if (i + 1 < len && s[i + 1] == '=')
            t->op = SY_OP_GE, t->end = i + 2;
        return;
    default:
        break;
    }
    if (c == 0) {
        tok_error(t, i, "unexpected NUL byte");
        return;
    }
    if (c < 0x20 || c == 0x7f) {
        tok_error(t, i, "unexpected control character 0x%02x", c);
        return;
    }
    if (c == '/' && i > 0 && s[i - 1] >= '0' && s[i - 1] <= '9') {
        tok_error(t, i, "unexpected character '/' (write a date as YYYY-MM-DD)");
        return;
    }
    if (c < 0x80) {
        tok_error(t, i, "unexpected character '%c'", c);
        return;
    }
    uint32_t cp;
    size_t k = utf8_seq((const unsigned char *)s + i, len - i, &cp);
    if (!k) {
        tok_error(t, i, "invalid UTF-8 (byte 0x%02x)", c);
        return;
    }
    const char *hint;
    switch (cp) {
    case 0xFF08:
        hint = "a full-width parenthesis: use ASCII '('";
        break;
    case 0xFF09:
        hint = "a full-width parenthesis: use ASCII ')'";
        break;
    case 0xFF0C:
    case 0x3001:
        hint = "a full-width comma: use ASCII ','";
        break;
    case 0xFF1D:
        hint = "a full-width equals sign: use ASCII '='";
        break;
    case 0xFF1C:
        hint = "use ASCII '<'";
        break;
    case 0xFF1E:
        hint = "use ASCII '>'";
        break;
    case 0x2018:
    case 0x2019:
    case 0x201C:
    case 0x201D:
        hint = "a typographic quote: quote strings with ASCII ' or \"";
        break;
    default:
        hint = "names are ASCII; quote text values with ' or \"";
        break;
    }
    tok_error(t, i, "unexpected character '%.*s' (%s)", (int)k, s + i, hint);
}

/* ---- parser ---- */

typedef struct parser {
    const char *src;
    size_t len;
    token tok; /* the current token */
    int depth, npreds;
    bool failed;
    sy_seg_error *err;
} parser;

/* 1-based line and column (in UTF-8 characters; a stray byte counts as one)
 * of byte offset pos. */
static void line_col(const char *s, size_t pos, int *line, int *col)
{
    int l = 1, c = 1;
    size_t i = 0;
    while (i < pos) {
        if (s[i] == '\n') {
            l++, c = 1, i++;
            continue;
        }
        uint32_t cp;
        size_t k = utf8_seq((const unsigned char *)s + i, pos - i, &cp);
        i += k ? k : 1;
        c++;
    }
    *line = l;
    *col = c;
}

static void fail(parser *p, size_t pos, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void fail(parser *p, size_t pos, const char *fmt, ...)
{
    if (p->failed)
        return;
    p->failed = true;
    if (!p->err)
        return;
    p->err->pos = (int)pos;
    line_col(p->src, pos, &p->err->line, &p->err->col);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err->msg, sizeof p->err->msg, fmt, ap);
    va_end(ap);
    trim_utf8(p->err->msg);
}

static void advance(parser *p)
{
    lex(p->src, p->len, p->tok.end, &p->tok);
    if (p->tok.t == T_ERROR)
        fail(p, p->tok.errpos, "%s", p->tok.errmsg);
}

static void peek(const parser *p, token *t)
{
    lex(p->src, p->len, p->tok.end, t);
}

/* What a token is, for "found ..." in messages. */
static void describe(const parser *p, const token *t, char *out, size_t n)
{
    char text[48];
    switch (t->t) {
    case T_END:
        snprintf(out, n, "end of input");
        return;
    case T_STRING:
        excerpt(p->src, t->pos, t->end, text, sizeof text);
        snprintf(out, n, "string %s", text);
        return;
    default:
        excerpt(p->src, t->pos, t->end, text, sizeof text);
        snprintf(out, n, "'%s'", text);
        return;
    }
}

/* Records "expected <what>, found <current token>[ (<hint>)]" — unless the
 * current token is a lexing error, which is already recorded. */
static void expected(parser *p, const char *what, const char *hint)
{
    char found[64];
    describe(p, &p->tok, found, sizeof found);
    if (hint)
        fail(p, p->tok.pos, "expected %s, found %s (%s)", what, found, hint);
    else
        fail(p, p->tok.pos, "expected %s, found %s", what, found);
}

static bool is_kw(const parser *p, int kw)
{
    return p->tok.t == T_IDENT && p->tok.kw == kw;
}

static char *tok_text(const parser *p)
{
    return sy_xstrndup(p->src + p->tok.pos, p->tok.end - p->tok.pos);
}

/* The unescaped text of the current T_STRING token. */
static char *string_value(const parser *p)
{
    char *out = sy_xmalloc((size_t)p->tok.v + 1);
    size_t n = 0;
    for (size_t j = p->tok.pos + 1; j < p->tok.end - 1; j++) {
        if (p->src[j] == '\\')
            j++;
        out[n++] = p->src[j];
    }
    out[n] = '\0';
    return out;
}

/* "at L:C" of byte offset pos, for messages that point back. */
static void at_text(const parser *p, size_t pos, char *out, size_t n)
{
    int l, c;
    line_col(p->src, pos, &l, &c);
    snprintf(out, n, "%d:%d", l, c);
}

static sy_seg_node *new_node(sy_seg_kind kind, size_t pos)
{
    sy_seg_node *n = sy_xcalloc(1, sizeof *n);
    n->kind = kind;
    n->pos = (int)pos;
    return n;
}

static bool expect(parser *p, tok_type t, const char *what)
{
    if (p->tok.t != t) {
        expected(p, what, NULL);
        return false;
    }
    advance(p);
    return true;
}

/* ')' closing the '(' at open_pos. */
static bool expect_close(parser *p, size_t open_pos)
{
    if (p->tok.t == T_RPAREN) {
        advance(p);
        return true;
    }
    char at[32], what[64];
    at_text(p, open_pos, at, sizeof at);
    snprintf(what, sizeof what, "')' to close '(' at %s", at);
    expected(p, what, NULL);
    return false;
}

/* A literal (value) into *l, which the caller owns (and frees on failure). */
static bool parse_literal(parser *p, sy_seg_lit *l)
{
    token *t = &p->tok;
    l->pos = (int)t->pos;
    switch (t->t) {
    case T_INT:
        l->kind = SY_LIT_INT, l->i = t->v;
        break;
    case T_DECIMAL:
        l->kind = SY_LIT_DECIMAL, l->s = tok_text(p);
        break;
    case T_DATE:
        l->kind = SY_LIT_DATE, l->i = t->v;
        break;
    case T_STRING:
        l->kind = SY_LIT_STRING, l->s = string_value(p);
        break;
    case T_IDENT:
        if (t->kw == KW_TRUE || t->kw == KW_FALSE) {
            l->kind = SY_LIT_BOOL, l->i = t->kw == KW_TRUE;
            break;
        }
        if (t->kw == KW_NONE) {
            l->kind = SY_LIT_STRING, l->s = tok_text(p), l->bare = true;
            break;
        }
        if (t->kw == KW_NULL) {
            expected(p, "a value", "test for a missing value with 'is null'");
            return false;
        }
        expected(p, "a value", "a keyword cannot be a bare value: quote it");
        return false;
    case T_DURATION:
        expected(p, "a value", "durations go with 'within', did(...) and dwell(...)");
        return false;
    default:
        expected(p, "a value (a number, string, date, true, false or name)", NULL);
        return false;
    }
    advance(p);
    return true;
}

static sy_seg_lit *add_lit(sy_seg_node *n)
{
    n->lits = sy_xrealloc(n->lits, (size_t)(n->nlits + 1) * sizeof *n->lits);
    sy_seg_lit *l = &n->lits[n->nlits++];
    memset(l, 0, sizeof *l);
    return l;
}

static bool parse_duration(parser *p, int64_t *ms, const char *what)
{
    if (p->tok.t != T_DURATION) {
        char w[96];
        snprintf(w, sizeof w, "%s (a whole number and a unit: %s)", what, unit_names);
        expected(p, w, NULL);
        return false;
    }
    *ms = p->tok.v;
    advance(p);
    return true;
}

/* A name in tag(...), segment(...), did(...), dwell(...): any identifier
 * (keywords included: the position is unambiguous), a `name`, or — for tags
 * and segments — a quoted string. */
static char *parse_ref_name(parser *p, bool quoted_ok, const char *what)
{
    char *name = NULL;
    if (p->tok.t == T_IDENT) {
        name = tok_text(p);
    } else if (p->tok.t == T_QNAME) {
        name = sy_xstrndup(p->src + p->tok.pos + 1, p->tok.end - p->tok.pos - 2);
    } else if (p->tok.t == T_STRING && quoted_ok) {
        if (p->tok.v == 0) {
            fail(p, p->tok.pos, "%s must not be empty", what);
            return NULL;
        }
        if (p->tok.v > SY_SEG_MAX_TAG) {
            fail(p, p->tok.pos, "%s is longer than %d bytes", what, SY_SEG_MAX_TAG);
            return NULL;
        }
        name = string_value(p);
    } else {
        char w[64];
        snprintf(w, sizeof w, "%s%s", what, quoted_ok ? " (a name or a quoted string)" : "");
        expected(p, w, NULL);
        return NULL;
    }
    advance(p);
    return name;
}

static bool is_pred_op_token(const token *t)
{
    return t->t == T_OP ||
           (t->t == T_IDENT && (t->kw == KW_IN || t->kw == KW_NOT || t->kw == KW_BETWEEN ||
                                t->kw == KW_IS || t->kw == KW_WITHIN));
}

/* tag(name) / segment(name) */
static sy_seg_node *parse_ref(parser *p, sy_seg_kind kind)
{
    const char *kwn = kind == SY_SEG_TAG ? "tag" : "segment";
    sy_seg_node *n = new_node(kind, p->tok.pos);
    advance(p);
    if (p->tok.t != T_LPAREN) {
        char w[32], hint[80];
        snprintf(w, sizeof w, "'(' after '%s'", kwn);
        snprintf(hint, sizeof hint, "to use %s as an attribute name, write `%s`", kwn, kwn);
        expected(p, w, is_pred_op_token(&p->tok) ? hint : NULL);
        goto fail;
    }
    size_t open = p->tok.pos;
    advance(p);
    n->name = parse_ref_name(p, true, kind == SY_SEG_TAG ? "a tag name" : "a segment name");
    if (!n->name || !expect_close(p, open))
        goto fail;
    return n;
fail:
    sy_seg_free(n);
    return NULL;
}

/* did(event, window) [op count] / dwell(event, window) op duration */
static sy_seg_node *parse_event(parser *p, sy_seg_kind kind)
{
    const char *kwn = kind == SY_SEG_DID ? "did" : "dwell";
    sy_seg_node *n = new_node(kind, p->tok.pos);
    advance(p);
    if (p->tok.t != T_LPAREN) {
        char w[32], hint[80];
        snprintf(w, sizeof w, "'(' after '%s'", kwn);
        snprintf(hint, sizeof hint, "to use %s as an attribute name, write `%s`", kwn, kwn);
        expected(p, w, is_pred_op_token(&p->tok) ? hint : NULL);
        goto fail;
    }
    size_t open = p->tok.pos;
    advance(p);
    n->name = parse_ref_name(p, false, "an event name");
    if (!n->name)
        goto fail;
    if (!expect(p, T_COMMA, "',' after the event name"))
        goto fail;
    if (!parse_duration(p, &n->window_ms, "a time window"))
        goto fail;
    if (!expect_close(p, open))
        goto fail;
    if (kind == SY_SEG_DID) {
        n->op = SY_OP_GE;
        n->count = 1;
        if (p->tok.t != T_OP)
            return n;
        n->op = p->tok.op;
        advance(p);
        if (p->tok.t != T_INT) {
            expected(p, "an event count (a whole number)", NULL);
            goto fail;
        }
        if (p->tok.v < 0) {
            fail(p, p->tok.pos, "an event count cannot be negative");
            goto fail;
        }
        n->count = p->tok.v;
        advance(p);
        return n;
    }
    if (p->tok.t != T_OP) {
        expected(p, "a comparison operator after dwell(...)", "e.g. dwell(view_fund, 7d) >= 60s");
        goto fail;
    }
    n->op = p->tok.op;
    advance(p);
    if (!parse_duration(p, &n->dwell_ms, "a duration"))
        goto fail;
    return n;
fail:
    sy_seg_free(n);
    return NULL;
}

/* attr op value | attr [not] in (...) | attr between v and v | attr is [not]
 * null | attr within duration */
static sy_seg_node *parse_attr_pred(parser *p)
{
    size_t start = p->tok.pos;
    char *name = p->tok.t == T_QNAME
                     ? sy_xstrndup(p->src + p->tok.pos + 1, p->tok.end - p->tok.pos - 2)
                     : tok_text(p);
    advance(p);
    sy_seg_node *n = new_node(SY_SEG_CMP, start);
    n->name = name;
    token *t = &p->tok;
    if (t->t == T_OP) {
        n->op = t->op;
        advance(p);
        if (!parse_literal(p, add_lit(n)))
            goto fail;
        return n;
    }
    if (t->t == T_IDENT && (t->kw == KW_IN || t->kw == KW_NOT)) {
        n->kind = SY_SEG_IN;
        if (t->kw == KW_NOT) {
            n->negated = true;
            advance(p);
            if (!is_kw(p, KW_IN)) {
                expected(p, "'in' after 'not'", NULL);
                goto fail;
            }
        }
        advance(p);
        if (p->tok.t != T_LPAREN) {
            expected(p, "'(' to start the list of values", NULL);
            goto fail;
        }
        size_t open = p->tok.pos;
        advance(p);
        for (;;) {
            if (!parse_literal(p, add_lit(n)))
                goto fail;
            if (p->tok.t == T_COMMA) {
                advance(p);
                continue;
            }
            if (p->tok.t == T_RPAREN) {
                advance(p);
                return n;
            }
            char at[32], what[64];
            at_text(p, open, at, sizeof at);
            snprintf(what, sizeof what, "',' or ')' to close '(' at %s", at);
            expected(p, what, NULL);
            goto fail;
        }
    }
    if (is_kw(p, KW_BETWEEN)) {
        n->kind = SY_SEG_BETWEEN;
        advance(p);
        if (!parse_literal(p, add_lit(n)))
            goto fail;
        if (!is_kw(p, KW_AND)) {
            expected(p, "'and' of 'between ... and ...'", NULL);
            goto fail;
        }
        advance(p);
        if (!parse_literal(p, add_lit(n)))
            goto fail;
        return n;
    }
    if (is_kw(p, KW_IS)) {
        n->kind = SY_SEG_IS_NULL;
        advance(p);
        if (is_kw(p, KW_NOT)) {
            n->negated = true;
            advance(p);
        }
        if (!is_kw(p, KW_NULL)) {
            expected(p, n->negated ? "'null' after 'is not'" : "'null' or 'not null' after 'is'",
                     NULL);
            goto fail;
        }
        advance(p);
        return n;
    }
    if (is_kw(p, KW_WITHIN)) {
        n->kind = SY_SEG_WITHIN;
        advance(p);
        if (!parse_duration(p, &n->window_ms, "a duration after 'within'"))
            goto fail;
        return n;
    }
    if (t->t == T_LPAREN) {
        char fn[48];
        excerpt(p->src, start, start + strlen(name), fn, sizeof fn);
        fail(p, start, "unknown function '%s' (the functions are tag, segment, did and dwell)", fn);
        goto fail;
    }
    {
        char what[160], nm[48];
        excerpt(name, 0, strlen(name), nm, sizeof nm);
        snprintf(what, sizeof what,
                 "a comparison operator, 'in', 'not in', 'between', 'is' or 'within' after '%s'",
                 nm);
        expected(p, what, NULL);
    }
fail:
    sy_seg_free(n);
    return NULL;
}

static sy_seg_node *parse_predicate(parser *p)
{
    if (++p->npreds > SY_SEG_MAX_PREDICATES) {
        fail(p, p->tok.pos, "too many conditions (at most %d)", SY_SEG_MAX_PREDICATES);
        return NULL;
    }
    token *t = &p->tok;
    if (t->t == T_QNAME || (t->t == T_IDENT && t->kw == KW_NONE))
        return parse_attr_pred(p);
    if (t->t == T_IDENT) {
        switch (t->kw) {
        case KW_TAG:
            return parse_ref(p, SY_SEG_TAG);
        case KW_SEGMENT:
            return parse_ref(p, SY_SEG_SEGMENT);
        case KW_DID:
            return parse_event(p, SY_SEG_DID);
        case KW_DWELL:
            return parse_event(p, SY_SEG_DWELL);
        default: {
            token next;
            peek(p, &next);
            if (is_pred_op_token(&next)) {
                char hint[96], kw[16];
                excerpt(p->src, t->pos, t->end, kw, sizeof kw);
                snprintf(hint, sizeof hint,
                         "a keyword used as an attribute name must be quoted: `%s`", kw);
                expected(p, "a condition", hint);
            } else {
                expected(p, "a condition", NULL);
            }
            return NULL;
        }
        }
    }
    expected(p, "a condition", NULL);
    return NULL;
}

static sy_seg_node *parse_or(parser *p);

static sy_seg_node *parse_primary(parser *p)
{
    if (p->tok.t != T_LPAREN)
        return parse_predicate(p);
    size_t open = p->tok.pos;
    if (++p->depth > SY_SEG_MAX_DEPTH) {
        fail(p, open, "nesting too deep (at most %d levels of parentheses and 'not')",
             SY_SEG_MAX_DEPTH);
        return NULL;
    }
    advance(p);
    sy_seg_node *e = parse_or(p);
    if (!e)
        return NULL;
    if (!expect_close(p, open)) {
        sy_seg_free(e);
        return NULL;
    }
    p->depth--;
    return e;
}

static sy_seg_node *parse_unary(parser *p)
{
    size_t nots[SY_SEG_MAX_DEPTH];
    int k = 0;
    while (is_kw(p, KW_NOT)) {
        if (++p->depth > SY_SEG_MAX_DEPTH) {
            fail(p, p->tok.pos, "nesting too deep (at most %d levels of parentheses and 'not')",
                 SY_SEG_MAX_DEPTH);
            return NULL;
        }
        nots[k++] = p->tok.pos;
        advance(p);
    }
    sy_seg_node *e = parse_primary(p);
    if (!e)
        return NULL;
    while (k > 0) {
        sy_seg_node *n = new_node(SY_SEG_NOT, nots[--k]);
        n->a = e;
        e = n;
        p->depth--;
    }
    return e;
}

static sy_seg_node *parse_and(parser *p)
{
    size_t start = p->tok.pos;
    sy_seg_node *left = parse_unary(p);
    while (left && is_kw(p, KW_AND)) {
        advance(p);
        sy_seg_node *right = parse_unary(p);
        if (!right) {
            sy_seg_free(left);
            return NULL;
        }
        sy_seg_node *n = new_node(SY_SEG_AND, start);
        n->a = left, n->b = right;
        left = n;
    }
    return left;
}

static sy_seg_node *parse_or(parser *p)
{
    size_t start = p->tok.pos;
    sy_seg_node *left = parse_and(p);
    while (left && is_kw(p, KW_OR)) {
        advance(p);
        sy_seg_node *right = parse_and(p);
        if (!right) {
            sy_seg_free(left);
            return NULL;
        }
        sy_seg_node *n = new_node(SY_SEG_OR, start);
        n->a = left, n->b = right;
        left = n;
    }
    return left;
}

sy_seg_node *sy_seg_parse(const char *src, size_t len, sy_seg_error *err)
{
    parser p = {.src = src ? src : "", .len = src ? len : 0, .err = err};
    if (err)
        memset(err, 0, sizeof *err);
    if (p.len > SY_SEG_MAX_INPUT) {
        p.src = "";
        fail(&p, 0, "expression is too long: %zu bytes (at most %d)", len, SY_SEG_MAX_INPUT);
        return NULL;
    }
    p.tok.end = 0;
    advance(&p);
    sy_seg_node *root = parse_or(&p);
    if (root && p.tok.t != T_END) {
        if (p.tok.t == T_RPAREN)
            fail(&p, p.tok.pos, "unmatched ')'");
        else
            expected(&p, "'and', 'or' or end of input", NULL);
    }
    if (p.failed) {
        sy_seg_free(root);
        return NULL;
    }
    /* The canonical text must itself be acceptable input (it can be longer
     * than what was written: spaces around operators, escaped quotes). */
    char *canon = sy_seg_format(root);
    size_t clen = strlen(canon);
    free(canon);
    if (clen > SY_SEG_MAX_INPUT) {
        fail(&p, 0, "expression is too long: its canonical form has %zu bytes (at most %d)", clen,
             SY_SEG_MAX_INPUT);
        sy_seg_free(root);
        return NULL;
    }
    return root;
}

void sy_seg_free(sy_seg_node *n)
{
    if (!n)
        return;
    sy_seg_free(n->a);
    sy_seg_free(n->b);
    free(n->name);
    for (int i = 0; i < n->nlits; i++)
        free(n->lits[i].s);
    free(n->lits);
    free(n);
}

void sy_seg_walk(const sy_seg_node *n, void (*fn)(const sy_seg_node *, void *), void *ud)
{
    if (!n)
        return;
    fn(n, ud);
    sy_seg_walk(n->a, fn, ud);
    sy_seg_walk(n->b, fn, ud);
}

/* ---- formatting ---- */

static const char *const op_text[] = {"=", "!=", "<", "<=", ">", ">="};

static const char *op_str(sy_seg_op op)
{
    return (unsigned)op < SY_ARRAY_LEN(op_text) ? op_text[op] : "?";
}

static void fmt_quoted(sy_buf *b, const char *s)
{
    sy_buf_append(b, "'", 1);
    for (; *s; s++) {
        if (*s == '\\' || *s == '\'')
            sy_buf_append(b, "\\", 1);
        sy_buf_append(b, s, 1);
    }
    sy_buf_append(b, "'", 1);
}

static void fmt_duration(sy_buf *b, int64_t ms)
{
    static const struct {
        const char *name;
        int64_t ms;
    } units[] = {{"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000}};
    for (size_t k = 0; k < SY_ARRAY_LEN(units); k++) {
        if (ms != 0 && ms % units[k].ms == 0) {
            sy_buf_printf(b, "%" PRId64 "%s", ms / units[k].ms, units[k].name);
            return;
        }
    }
    sy_buf_printf(b, "%" PRId64 "ms", ms);
}

static void fmt_lit(sy_buf *b, const sy_seg_lit *l)
{
    switch (l->kind) {
    case SY_LIT_INT:
        sy_buf_printf(b, "%" PRId64, l->i);
        return;
    case SY_LIT_DECIMAL:
        sy_buf_puts(b, l->s ? l->s : "0.0");
        return;
    case SY_LIT_STRING:
        if (l->bare && l->s && is_ident(l->s) && keyword(l->s, strlen(l->s)) == KW_NONE)
            sy_buf_puts(b, l->s);
        else
            fmt_quoted(b, l->s ? l->s : "");
        return;
    case SY_LIT_BOOL:
        sy_buf_puts(b, l->i ? "true" : "false");
        return;
    case SY_LIT_DATE: {
        int64_t y;
        int m, d;
        civil_from_days(l->i, &y, &m, &d);
        sy_buf_printf(b, "%04" PRId64 "-%02d-%02d", y, m, d);
        return;
    }
    }
}

/* An attribute name: backticks around keywords. */
static void fmt_attr(sy_buf *b, const char *name)
{
    if (keyword(name, strlen(name)) != KW_NONE)
        sy_buf_printf(b, "`%s`", name);
    else
        sy_buf_puts(b, name);
}

/* A tag, segment or event name: bare when it is an identifier, else quoted. */
static void fmt_ref(sy_buf *b, const char *name)
{
    if (is_ident(name))
        sy_buf_puts(b, name);
    else
        fmt_quoted(b, name);
}

static void fmt_node(sy_buf *b, const sy_seg_node *n);

/* A child, in parentheses when it binds looser than its parent. */
static void fmt_child(sy_buf *b, const sy_seg_node *c, bool parens)
{
    if (parens)
        sy_buf_append(b, "(", 1);
    fmt_node(b, c);
    if (parens)
        sy_buf_append(b, ")", 1);
}

static void fmt_node(sy_buf *b, const sy_seg_node *n)
{
    if (!n)
        return;
    const char *name = n->name ? n->name : "";
    switch (n->kind) {
    case SY_SEG_OR:
        fmt_child(b, n->a, false);
        sy_buf_puts(b, " or ");
        fmt_child(b, n->b, false);
        return;
    case SY_SEG_AND:
        fmt_child(b, n->a, n->a && n->a->kind == SY_SEG_OR);
        sy_buf_puts(b, " and ");
        fmt_child(b, n->b, n->b && n->b->kind == SY_SEG_OR);
        return;
    case SY_SEG_NOT:
        sy_buf_puts(b, "not ");
        fmt_child(b, n->a, n->a && (n->a->kind == SY_SEG_OR || n->a->kind == SY_SEG_AND));
        return;
    case SY_SEG_CMP:
        fmt_attr(b, name);
        sy_buf_printf(b, " %s ", op_str(n->op));
        if (n->nlits > 0)
            fmt_lit(b, &n->lits[0]);
        return;
    case SY_SEG_IN:
        fmt_attr(b, name);
        sy_buf_puts(b, n->negated ? " not in (" : " in (");
        for (int i = 0; i < n->nlits; i++) {
            if (i)
                sy_buf_puts(b, ", ");
            fmt_lit(b, &n->lits[i]);
        }
        sy_buf_append(b, ")", 1);
        return;
    case SY_SEG_BETWEEN:
        fmt_attr(b, name);
        sy_buf_puts(b, " between ");
        if (n->nlits > 0)
            fmt_lit(b, &n->lits[0]);
        sy_buf_puts(b, " and ");
        if (n->nlits > 1)
            fmt_lit(b, &n->lits[1]);
        return;
    case SY_SEG_IS_NULL:
        fmt_attr(b, name);
        sy_buf_puts(b, n->negated ? " is not null" : " is null");
        return;
    case SY_SEG_WITHIN:
        fmt_attr(b, name);
        sy_buf_puts(b, " within ");
        fmt_duration(b, n->window_ms);
        return;
    case SY_SEG_TAG:
    case SY_SEG_SEGMENT:
        sy_buf_puts(b, n->kind == SY_SEG_TAG ? "tag(" : "segment(");
        fmt_ref(b, name);
        sy_buf_append(b, ")", 1);
        return;
    case SY_SEG_DID:
    case SY_SEG_DWELL:
        sy_buf_puts(b, n->kind == SY_SEG_DID ? "did(" : "dwell(");
        fmt_ref(b, name);
        sy_buf_puts(b, ", ");
        fmt_duration(b, n->window_ms);
        sy_buf_append(b, ")", 1);
        if (n->kind == SY_SEG_DID) {
            if (n->op != SY_OP_GE || n->count != 1)
                sy_buf_printf(b, " %s %" PRId64, op_str(n->op), n->count);
        } else {
            sy_buf_printf(b, " %s ", op_str(n->op));
            fmt_duration(b, n->dwell_ms);
        }
        return;
    }
}

char *sy_seg_format(const sy_seg_node *n)
{
    sy_buf b = {0};
    fmt_node(&b, n);
    return sy_buf_steal(&b);
}

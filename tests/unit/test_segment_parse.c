/* test_segment_parse.c — the segment expression parser and formatter
 * (src/segment_parse.c): the data-driven cases of tests/data/segment_parse.txt,
 * round trips of every valid case, node fields, walk order, error positions
 * and the limits (64 KiB, depth 64, 1000 conditions). */
#include "testutil.h"
#include "fuzz/fuzz_json.h" /* fz_utf8_valid */

#include "segment_parse.h"
#include "util.h"

#include <inttypes.h>

/* ---- the data file ---- */

typedef struct seg_case {
    int line;    /* of the input line, 1-based */
    char *input; /* decoded */
    size_t len;
    char *expected; /* canonical text, or "error L:C: substring" */
} seg_case;

typedef struct seg_cases {
    seg_case *v;
    int n;
} seg_cases;

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes an '@' line: \n \r \t \0 \\ \xHH. */
static char *decode_escaped(const char *s, size_t n, size_t *outlen)
{
    char *out = sy_xmalloc(n + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\\' || i + 1 >= n) {
            out[o++] = s[i];
            continue;
        }
        char e = s[++i];
        switch (e) {
        case 'n':
            out[o++] = '\n';
            break;
        case 'r':
            out[o++] = '\r';
            break;
        case 't':
            out[o++] = '\t';
            break;
        case '0':
            out[o++] = '\0';
            break;
        case 'x':
            if (i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
                out[o++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
                i += 2;
                break;
            }
            fail_msg("bad \\x escape in data file");
            break;
        default:
            out[o++] = e;
            break;
        }
    }
    out[o] = '\0';
    *outlen = o;
    return out;
}

static char *data_path(void)
{
    const char *root = getenv("SIYU_SRC");
    if (!root || !*root)
        root = ".";
    return sy_xasprintf("%s/tests/data/segment_parse.txt", root);
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    sy_buf b = {0};
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        sy_buf_append(&b, chunk, n);
    fclose(f);
    *len = b.len;
    return sy_buf_steal(&b);
}

static void cases_free(seg_cases *cs)
{
    for (int i = 0; i < cs->n; i++) {
        free(cs->v[i].input);
        free(cs->v[i].expected);
    }
    free(cs->v);
    cs->v = NULL;
    cs->n = 0;
}

/* Reads the case file; fails the test when it is missing or malformed. */
static void cases_load(seg_cases *cs)
{
    char *path = data_path();
    size_t len = 0;
    char *text = read_file(path, &len);
    if (!text) {
        print_error("cannot read %s (set SIYU_SRC to the repository root)\n", path);
        free(path);
        fail();
    }
    /* split into lines */
    int nlines = 0, cap = 0;
    char **lines = NULL;
    size_t *lens = NULL;
    for (size_t i = 0; i < len;) {
        size_t j = i;
        while (j < len && text[j] != '\n')
            j++;
        if (nlines == cap) {
            cap = cap ? cap * 2 : 256;
            lines = sy_xrealloc(lines, (size_t)cap * sizeof *lines);
            lens = sy_xrealloc(lens, (size_t)cap * sizeof *lens);
        }
        lines[nlines] = text + i;
        lens[nlines++] = j - i;
        i = j + 1;
    }
    cs->v = NULL;
    cs->n = 0;
    int ccap = 0;
    for (int l = 0; l < nlines;) {
        if (lens[l] == 0 || lines[l][0] == '#') {
            l++;
            continue;
        }
        if (l + 1 >= nlines || lens[l + 1] == 0) {
            print_error("%s:%d: a case needs an expected line after its input\n", path, l + 1);
            fail();
        }
        if (l + 2 < nlines && lens[l + 2] != 0) {
            print_error("%s:%d: a case must be followed by a blank line\n", path, l + 3);
            fail();
        }
        if (cs->n == ccap) {
            ccap = ccap ? ccap * 2 : 128;
            cs->v = sy_xrealloc(cs->v, (size_t)ccap * sizeof *cs->v);
        }
        seg_case *c = &cs->v[cs->n++];
        c->line = l + 1;
        if (lines[l][0] == '@')
            c->input = decode_escaped(lines[l] + 1, lens[l] - 1, &c->len);
        else
            c->input = sy_xstrndup(lines[l], lens[l]), c->len = lens[l];
        c->expected = sy_xstrndup(lines[l + 1], lens[l + 1]);
        l += 3;
    }
    free(lines);
    free(lens);
    free(text);
    free(path);
}

/* Runs one case; on a mismatch prints it with its id and returns false. */
static bool run_case(const seg_case *c)
{
    sy_seg_error err;
    sy_seg_node *n = sy_seg_parse(c->input, c->len, &err);
    bool want_error = strncmp(c->expected, "error ", 6) == 0;
    bool ok;
    if (want_error) {
        int l = 0, col = 0, used = 0;
        if (sscanf(c->expected, "error %d:%d: %n", &l, &col, &used) < 2 || used == 0) {
            print_error("parse-%d: malformed expected line '%s'\n", c->line, c->expected);
            sy_seg_free(n);
            return false;
        }
        const char *sub = c->expected + used;
        if (n) {
            char *got = sy_seg_format(n);
            print_error("parse-%d: input '%s'\n  expected an error %d:%d: %s\n  got      '%s'\n",
                        c->line, c->input, l, col, sub, got);
            free(got);
            ok = false;
        } else {
            ok = err.line == l && err.col == col && strstr(err.msg, sub) != NULL;
            if (!ok)
                print_error("parse-%d: input '%s'\n  expected error %d:%d: ...%s...\n"
                            "  got      error %d:%d: %s\n",
                            c->line, c->input, l, col, sub, err.line, err.col, err.msg);
        }
    } else if (!n) {
        print_error("parse-%d: input '%s'\n  expected '%s'\n  got      error %d:%d: %s\n", c->line,
                    c->input, c->expected, err.line, err.col, err.msg);
        ok = false;
    } else {
        char *got = sy_seg_format(n);
        ok = strcmp(got, c->expected) == 0;
        if (!ok)
            print_error("parse-%d: input '%s'\n  expected '%s'\n  got      '%s'\n", c->line,
                        c->input, c->expected, got);
        free(got);
    }
    sy_seg_free(n);
    return ok;
}

static void test_data_file_cases(void **state)
{
    (void)state;
    seg_cases cs;
    cases_load(&cs);
    int failed = 0, errors = 0;
    for (int i = 0; i < cs.n; i++) {
        if (!run_case(&cs.v[i]))
            failed++;
        if (strncmp(cs.v[i].expected, "error ", 6) == 0)
            errors++;
    }
    print_message("segment_parse: %d cases (%d valid, %d errors), %d failed\n", cs.n, cs.n - errors,
                  errors, failed);
    assert_true(cs.n >= 80);
    cases_free(&cs);
    assert_int_equal(failed, 0);
}

/* format(parse(format(parse(x)))) == format(parse(x)) for every valid case. */
static void test_data_file_round_trip(void **state)
{
    (void)state;
    seg_cases cs;
    cases_load(&cs);
    int failed = 0, checked = 0;
    for (int i = 0; i < cs.n; i++) {
        sy_seg_error err;
        sy_seg_node *n = sy_seg_parse(cs.v[i].input, cs.v[i].len, &err);
        if (!n)
            continue;
        checked++;
        char *f1 = sy_seg_format(n);
        sy_seg_node *n2 = sy_seg_parse(f1, strlen(f1), &err);
        if (!n2) {
            print_error("parse-%d: canonical '%s' does not parse: %d:%d: %s\n", cs.v[i].line, f1,
                        err.line, err.col, err.msg);
            failed++;
        } else {
            char *f2 = sy_seg_format(n2);
            if (strcmp(f1, f2) != 0) {
                print_error("parse-%d: not a fixed point:\n  '%s'\n  '%s'\n", cs.v[i].line, f1, f2);
                failed++;
            }
            free(f2);
        }
        sy_seg_free(n2);
        sy_seg_free(n);
        free(f1);
    }
    cases_free(&cs);
    assert_true(checked >= 40);
    assert_int_equal(failed, 0);
}

/* ---- helpers ---- */

static sy_seg_node *parse_ok(const char *s)
{
    sy_seg_error err;
    sy_seg_node *n = sy_seg_parse(s, strlen(s), &err);
    if (!n)
        print_error("'%s': %d:%d: %s\n", s, err.line, err.col, err.msg);
    assert_non_null(n);
    return n;
}

static void parse_err(const char *s, size_t len, int line, int col, const char *sub)
{
    sy_seg_error err;
    sy_seg_node *n = sy_seg_parse(s, len, &err);
    assert_null(n);
    if (err.line != line || err.col != col || !strstr(err.msg, sub))
        print_error("got %d:%d: %s\n", err.line, err.col, err.msg);
    assert_int_equal(err.line, line);
    assert_int_equal(err.col, col);
    assert_non_null(strstr(err.msg, sub));
}

static char *fmt(const char *s)
{
    sy_seg_node *n = parse_ok(s);
    char *f = sy_seg_format(n);
    sy_seg_free(n);
    return f;
}

/* ---- node fields ---- */

static void test_fields_comparisons_and_literals(void **state)
{
    (void)state;
    const char *src = "aum >= 50000000 and risk_level >= R3 and name = '上海' and "
                      "x <> 1.50 and d < 2024-03-01 and f == false";
    sy_seg_node *root = parse_ok(src);
    /* left-deep: ((((aum and risk) and name) and x) and d) and f */
    assert_int_equal(root->kind, SY_SEG_AND);
    assert_int_equal(root->pos, 0);
    const sy_seg_node *f = root->b;
    assert_int_equal(f->kind, SY_SEG_CMP);
    assert_string_equal(f->name, "f");
    assert_int_equal(f->op, SY_OP_EQ);
    assert_int_equal(f->nlits, 1);
    assert_int_equal(f->lits[0].kind, SY_LIT_BOOL);
    assert_int_equal(f->lits[0].i, 0);

    const sy_seg_node *d = root->a->b;
    assert_int_equal(d->op, SY_OP_LT);
    assert_int_equal(d->lits[0].kind, SY_LIT_DATE);
    /* 2024-03-01: 19783 days after 1970-01-01 (2024-01-01 is 19723) */
    assert_int_equal(d->lits[0].i, 19723 + 31 + 29);

    const sy_seg_node *x = root->a->a->b;
    assert_int_equal(x->op, SY_OP_NE);
    assert_int_equal(x->lits[0].kind, SY_LIT_DECIMAL);
    assert_string_equal(x->lits[0].s, "1.50");

    const sy_seg_node *name = root->a->a->a->b;
    assert_int_equal(name->lits[0].kind, SY_LIT_STRING);
    assert_false(name->lits[0].bare);
    assert_string_equal(name->lits[0].s, "上海");

    const sy_seg_node *risk = root->a->a->a->a->b;
    assert_string_equal(risk->name, "risk_level");
    assert_int_equal(risk->op, SY_OP_GE);
    assert_int_equal(risk->lits[0].kind, SY_LIT_STRING);
    assert_true(risk->lits[0].bare);
    assert_string_equal(risk->lits[0].s, "R3");
    assert_int_equal(risk->pos, (int)(strstr(src, "risk_level") - src));
    assert_int_equal(risk->lits[0].pos, (int)(strstr(src, "R3") - src));

    const sy_seg_node *aum = root->a->a->a->a->a;
    assert_int_equal(aum->kind, SY_SEG_CMP);
    assert_string_equal(aum->name, "aum");
    assert_int_equal(aum->lits[0].kind, SY_LIT_INT);
    assert_int_equal(aum->lits[0].i, 50000000);
    assert_int_equal(aum->pos, 0);
    sy_seg_free(root);

    /* dates around the epoch */
    sy_seg_node *n = parse_ok("d in (1970-01-01, 1969-12-31, 2000-03-01, 1900-01-01)");
    assert_int_equal(n->kind, SY_SEG_IN);
    assert_false(n->negated);
    assert_int_equal(n->nlits, 4);
    assert_int_equal(n->lits[0].i, 0);
    assert_int_equal(n->lits[1].i, -1);
    assert_int_equal(n->lits[2].i, 11017);
    assert_int_equal(n->lits[3].i, -25567);
    sy_seg_free(n);

    n = parse_ok("x = -9223372036854775808 or y = 9223372036854775807");
    assert_true(n->a->lits[0].i == INT64_MIN);
    assert_true(n->b->lits[0].i == INT64_MAX);
    sy_seg_free(n);

    n = parse_ok("x = 'a\\'b\\\\c\\\"d'");
    assert_string_equal(n->lits[0].s, "a'b\\c\"d");
    sy_seg_free(n);

    n = parse_ok("`and` = TRUE");
    assert_string_equal(n->name, "and");
    assert_int_equal(n->lits[0].kind, SY_LIT_BOOL);
    assert_int_equal(n->lits[0].i, 1);
    sy_seg_free(n);
}

static void test_fields_in_between_null_within(void **state)
{
    (void)state;
    sy_seg_node *n = parse_ok("city not in ('上海', SH, 3)");
    assert_int_equal(n->kind, SY_SEG_IN);
    assert_true(n->negated);
    assert_string_equal(n->name, "city");
    assert_int_equal(n->nlits, 3);
    assert_string_equal(n->lits[0].s, "上海");
    assert_false(n->lits[0].bare);
    assert_string_equal(n->lits[1].s, "SH");
    assert_true(n->lits[1].bare);
    assert_int_equal(n->lits[2].kind, SY_LIT_INT);
    assert_int_equal(n->lits[2].pos, (int)strlen("city not in ('上海', SH, "));
    sy_seg_free(n);

    n = parse_ok("birth_year between 1970 and 1985");
    assert_int_equal(n->kind, SY_SEG_BETWEEN);
    assert_int_equal(n->nlits, 2);
    assert_int_equal(n->lits[0].i, 1970);
    assert_int_equal(n->lits[1].i, 1985);
    sy_seg_free(n);

    n = parse_ok("manager_id is null or x is not null");
    assert_int_equal(n->kind, SY_SEG_OR);
    assert_int_equal(n->a->kind, SY_SEG_IS_NULL);
    assert_false(n->a->negated);
    assert_int_equal(n->b->kind, SY_SEG_IS_NULL);
    assert_true(n->b->negated);
    assert_string_equal(n->b->name, "x");
    assert_int_equal(n->b->nlits, 0);
    sy_seg_free(n);

    static const struct {
        const char *src;
        int64_t ms;
    } durs[] = {
        {"t within 1500ms", 1500},
        {"t within 90s", 90000},
        {"t within 5m", 300000},
        {"t within 36h", 36 * 3600000LL},
        {"t within 90d", 90 * 86400000LL},
        {"t within 2w", 14 * 86400000LL},
        {"t within 3650d", 3650 * 86400000LL},
        {"t within 1ms", 1},
    };
    for (size_t i = 0; i < SY_TEST_LEN(durs); i++) {
        n = parse_ok(durs[i].src);
        assert_int_equal(n->kind, SY_SEG_WITHIN);
        assert_string_equal(n->name, "t");
        assert_true(n->window_ms == durs[i].ms);
        sy_seg_free(n);
    }
}

static void test_fields_events_tags_segments(void **state)
{
    (void)state;
    sy_seg_node *n = parse_ok("did(view_wealth, 7d)");
    assert_int_equal(n->kind, SY_SEG_DID);
    assert_string_equal(n->name, "view_wealth");
    assert_true(n->window_ms == 7 * 86400000LL);
    assert_int_equal(n->op, SY_OP_GE);
    assert_int_equal(n->count, 1);
    sy_seg_free(n);

    n = parse_ok("did(buy_fund, 30d) < 2");
    assert_int_equal(n->op, SY_OP_LT);
    assert_int_equal(n->count, 2);
    assert_true(n->window_ms == 30 * 86400000LL);
    sy_seg_free(n);

    n = parse_ok("not did(buy_fund, 30d)");
    assert_int_equal(n->kind, SY_SEG_NOT);
    assert_null(n->b);
    assert_int_equal(n->a->kind, SY_SEG_DID);
    assert_int_equal(n->a->count, 1);
    assert_int_equal(n->a->pos, 4);
    sy_seg_free(n);

    n = parse_ok("dwell(view_fund, 24h) >= 60s");
    assert_int_equal(n->kind, SY_SEG_DWELL);
    assert_string_equal(n->name, "view_fund");
    assert_true(n->window_ms == 86400000LL);
    assert_int_equal(n->op, SY_OP_GE);
    assert_int_equal(n->dwell_ms, 60000);
    sy_seg_free(n);

    n = parse_ok("tag(\"高净值\") and segment(seg_vip)");
    assert_int_equal(n->a->kind, SY_SEG_TAG);
    assert_string_equal(n->a->name, "高净值");
    assert_int_equal(n->b->kind, SY_SEG_SEGMENT);
    assert_string_equal(n->b->name, "seg_vip");
    assert_int_equal(n->b->pos, (int)strlen("tag(\"高净值\") and "));
    sy_seg_free(n);
}

/* ---- walk ---- */

static void collect(const sy_seg_node *n, void *ud)
{
    sy_buf *b = ud;
    static const char *const kinds[] = {"and",  "or",     "not", "cmp",     "in",  "between",
                                        "null", "within", "tag", "segment", "did", "dwell"};
    sy_buf_printf(b, "%s%s%s ", kinds[n->kind], n->name ? ":" : "", n->name ? n->name : "");
}

static void collect_segments(const sy_seg_node *n, void *ud)
{
    sy_buf *b = ud;
    if (n->kind == SY_SEG_SEGMENT)
        sy_buf_printf(b, "%s,", n->name);
}

static void test_walk_pre_order(void **state)
{
    (void)state;
    sy_seg_node *n = parse_ok("(a = 1 or not tag(t)) and segment(s1) and did(e, 1d) "
                              "or not (segment(s2) and x is null)");
    sy_buf b = {0};
    sy_seg_walk(n, collect, &b);
    assert_string_equal(b.data, "or and and or cmp:a not tag:t segment:s1 did:e not and "
                                "segment:s2 null:x ");
    sy_buf_reset(&b);
    sy_seg_walk(n, collect_segments, &b);
    assert_string_equal(b.data, "s1,s2,");
    sy_buf_free(&b);
    sy_seg_free(n);

    /* NULL is an empty tree */
    sy_buf e = {0};
    sy_seg_walk(NULL, collect, &e);
    assert_null(e.data);
    sy_seg_free(NULL);
}

/* ---- errors ---- */

static void test_error_positions_and_messages(void **state)
{
    (void)state;
    /* the column counts characters, the position bytes */
    sy_seg_error err;
    const char *s = "city = '上海' and (x = 1 and";
    assert_null(sy_seg_parse(s, strlen(s), &err));
    assert_int_equal(err.pos, (int)strlen(s));
    assert_int_equal(err.line, 1);
    assert_int_equal(err.col, 27);
    assert_string_equal(err.msg, "expected a condition, found end of input");

    s = "a = 1 and (\n  b = 2\n  or c = 3\n  and d";
    assert_null(sy_seg_parse(s, strlen(s), &err));
    assert_int_equal(err.line, 4);
    assert_int_equal(err.col, 8);
    assert_non_null(strstr(err.msg, "after 'd', found end of input"));

    s = "(a = 1 and\nb = 2 c";
    assert_null(sy_seg_parse(s, strlen(s), &err));
    assert_string_equal(err.msg, "expected ')' to close '(' at 1:1, found 'c'");
    assert_int_equal(err.line, 2);
    assert_int_equal(err.col, 7);

    parse_err("a　=　'x' and　\"y", strlen("a　=　'x' and　\"y"), 1, 13, "unterminated string");

    /* a long token is cut in the message, at a character boundary */
    char buf[600];
    snprintf(buf, sizeof buf, "a = 1 '%s'",
             "上上上上上上上上上上上上上上上上上上上上上上上上上上上上");
    assert_null(sy_seg_parse(buf, strlen(buf), &err));
    assert_non_null(strstr(err.msg, "found string '上上"));
    assert_non_null(strstr(err.msg, "..."));
    assert_true(fz_utf8_valid(err.msg));

    /* NUL inside the input */
    parse_err("a = 1\0 or b = 2", 15, 1, 6, "unexpected NUL byte");
    /* a NULL error pointer is allowed, and a NULL source is empty */
    assert_null(sy_seg_parse("a = ", 4, NULL));
    assert_null(sy_seg_parse(NULL, 0, &err));
    assert_string_equal(err.msg, "expected a condition, found end of input");
    /* on success the error is cleared */
    sy_seg_node *n = sy_seg_parse("a = 1", 5, &err);
    assert_non_null(n);
    assert_string_equal(err.msg, "");
    sy_seg_free(n);
    /* len, not the terminator, bounds the input */
    n = sy_seg_parse("a = 1 garbage", 5, &err);
    assert_non_null(n);
    sy_seg_free(n);
}

/* ---- limits ---- */

static void test_limit_input_size(void **state)
{
    (void)state;
    size_t max = SY_SEG_MAX_INPUT;
    char *s = sy_xmalloc(max + 2);
    memset(s, ' ', max + 1);
    memcpy(s, "a = 1", 5);
    sy_seg_node *n = sy_seg_parse(s, max, NULL);
    assert_non_null(n);
    sy_seg_free(n);
    sy_seg_error err;
    assert_null(sy_seg_parse(s, max + 1, &err));
    assert_int_equal(err.pos, 0);
    assert_int_equal(err.line, 1);
    assert_int_equal(err.col, 1);
    assert_non_null(strstr(err.msg, "too long: 65537 bytes (at most 65536)"));

    /* a canonical form longer than the limit is refused too: 'a,' → 'a, ' */
    sy_buf b = {0};
    sy_buf_puts(&b, "x in(");
    for (int i = 0; i < 30000; i++)
        sy_buf_puts(&b, i ? ",a" : "a");
    sy_buf_puts(&b, ")");
    assert_true(b.len <= max);
    assert_null(sy_seg_parse(b.data, b.len, &err));
    assert_non_null(strstr(err.msg, "canonical form"));
    sy_buf_free(&b);
    free(s);
}

static void test_limit_depth(void **state)
{
    (void)state;
    for (int depth = 63; depth <= 66; depth++) {
        sy_buf b = {0};
        for (int i = 0; i < depth; i++)
            sy_buf_puts(&b, "(");
        sy_buf_puts(&b, "a = 1");
        for (int i = 0; i < depth; i++)
            sy_buf_puts(&b, ")");
        sy_seg_error err;
        sy_seg_node *n = sy_seg_parse(b.data, b.len, &err);
        if (depth <= SY_SEG_MAX_DEPTH) {
            assert_non_null(n);
            assert_int_equal(n->kind, SY_SEG_CMP);
        } else {
            assert_null(n);
            assert_int_equal(err.col, SY_SEG_MAX_DEPTH + 1);
            assert_non_null(strstr(err.msg, "nesting too deep"));
        }
        sy_seg_free(n);
        sy_buf_free(&b);
    }
    /* 'not' counts as a level, mixed with parentheses */
    sy_buf b = {0};
    for (int i = 0; i < 32; i++)
        sy_buf_puts(&b, "not (");
    sy_buf_puts(&b, "a = 1");
    for (int i = 0; i < 32; i++)
        sy_buf_puts(&b, ")");
    sy_seg_node *n = sy_seg_parse(b.data, b.len, NULL);
    assert_non_null(n);
    int nots = 0;
    for (const sy_seg_node *m = n; m->kind == SY_SEG_NOT; m = m->a)
        nots++;
    assert_int_equal(nots, 32);
    sy_seg_free(n);
    sy_buf_free(&b);

    /* very deep input fails cleanly, without exhausting the stack */
    size_t deep = 60000;
    char *s = sy_xmalloc(deep);
    memset(s, '(', deep);
    sy_seg_error err;
    assert_null(sy_seg_parse(s, deep, &err));
    assert_non_null(strstr(err.msg, "nesting too deep"));
    for (size_t i = 0; i + 4 <= deep; i += 4)
        memcpy(s + i, "not ", 4);
    assert_null(sy_seg_parse(s, deep, &err));
    assert_non_null(strstr(err.msg, "nesting too deep"));
    free(s);
}

static void test_limit_predicates(void **state)
{
    (void)state;
    for (int count = 999; count <= 1001; count++) {
        sy_buf b = {0};
        size_t last = 0;
        for (int i = 0; i < count; i++) {
            if (i)
                sy_buf_puts(&b, i % 2 ? " and " : " or ");
            last = b.len;
            sy_buf_printf(&b, "a%d = %d", i, i);
        }
        sy_seg_error err;
        sy_seg_node *n = sy_seg_parse(b.data, b.len, &err);
        if (count <= SY_SEG_MAX_PREDICATES) {
            assert_non_null(n);
            char *f = sy_seg_format(n);
            assert_string_equal(f, b.data);
            free(f);
        } else {
            assert_null(n);
            assert_int_equal(err.pos, (int)last);
            assert_non_null(strstr(err.msg, "too many conditions (at most 1000)"));
        }
        sy_seg_free(n);
        sy_buf_free(&b);
    }
    /* an IN list is one condition, whatever its length */
    sy_buf b = {0};
    sy_buf_puts(&b, "x in (0");
    for (int i = 1; i < 5000; i++)
        sy_buf_printf(&b, ", %d", i);
    sy_buf_puts(&b, ")");
    sy_seg_node *n = parse_ok(b.data);
    assert_int_equal(n->nlits, 5000);
    assert_int_equal(n->lits[4999].i, 4999);
    sy_seg_free(n);
    sy_buf_free(&b);
}

/* ---- formatting ---- */

static sy_seg_node *leaf(const char *attr, int64_t v)
{
    sy_seg_node *n = sy_xcalloc(1, sizeof *n);
    n->kind = SY_SEG_CMP;
    n->name = sy_xstrdup(attr);
    n->op = SY_OP_EQ;
    n->lits = sy_xcalloc(1, sizeof *n->lits);
    n->nlits = 1;
    n->lits[0].kind = SY_LIT_INT;
    n->lits[0].i = v;
    return n;
}

static sy_seg_node *binary(sy_seg_kind k, sy_seg_node *a, sy_seg_node *b)
{
    sy_seg_node *n = sy_xcalloc(1, sizeof *n);
    n->kind = k;
    n->a = a;
    n->b = b;
    return n;
}

static void test_format_hand_built_trees(void **state)
{
    (void)state;
    /* right-nested chains need no parentheses: and/or are associative */
    sy_seg_node *t = binary(SY_SEG_OR, leaf("a", 1), binary(SY_SEG_OR, leaf("b", 2), leaf("c", 3)));
    char *f = sy_seg_format(t);
    assert_string_equal(f, "a = 1 or b = 2 or c = 3");
    free(f);
    sy_seg_free(t);

    t = binary(SY_SEG_AND, binary(SY_SEG_OR, leaf("a", 1), leaf("b", 2)),
               binary(SY_SEG_NOT, binary(SY_SEG_AND, leaf("c", 3), leaf("in", 4)), NULL));
    f = sy_seg_format(t);
    assert_string_equal(f, "(a = 1 or b = 2) and not (c = 3 and `in` = 4)");
    free(f);
    sy_seg_free(t);

    /* a bare value that is not a name is quoted */
    t = leaf("x", 0);
    t->lits[0].kind = SY_LIT_STRING;
    t->lits[0].bare = true;
    t->lits[0].s = sy_xstrdup("not a name");
    f = sy_seg_format(t);
    assert_string_equal(f, "x = 'not a name'");
    free(f);
    sy_seg_free(t);

    char *e = sy_seg_format(NULL);
    assert_string_equal(e, "");
    free(e);
}

static void test_format_canonical_spelling(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"A=1   AND\tB  >=  2", "A = 1 and B >= 2"},
        {"x within 86400000ms", "x within 1d"},
        {"x within 3600s", "x within 1h"},
        {"x within 61s", "x within 61s"},
        {"x within 1w", "x within 7d"},
        {"x within 1001ms", "x within 1001ms"},
        {"did(e, 168h) >= 1", "did(e, 7d)"},
        {"did(e, 1d) > 1", "did(e, 1d) > 1"},
        {"tag(`vip`)", "tag(vip)"},
        {"tag('a b')", "tag('a b')"},
        {"tag('Ab_9')", "tag(Ab_9)"},
        {"tag('9a')", "tag('9a')"},
        {"x = \"\\\\'\"", "x = '\\\\\\''"},
        {"d = 0000-01-01", "d = 0000-01-01"},
        {"d = 9999-12-31", "d = 9999-12-31"},
        {"x = -0.0", "x = -0.0"},
    };
    for (size_t i = 0; i < SY_TEST_LEN(cases); i++) {
        char *f = fmt(cases[i].in);
        if (strcmp(f, cases[i].out) != 0)
            print_error("'%s' → '%s', want '%s'\n", cases[i].in, f, cases[i].out);
        assert_string_equal(f, cases[i].out);
        free(f);
    }
}

int main(void)
{
    const struct CMUnitTest segment_parse[] = {
        cmocka_unit_test(test_data_file_cases),
        cmocka_unit_test(test_data_file_round_trip),
        cmocka_unit_test(test_fields_comparisons_and_literals),
        cmocka_unit_test(test_fields_in_between_null_within),
        cmocka_unit_test(test_fields_events_tags_segments),
        cmocka_unit_test(test_walk_pre_order),
        cmocka_unit_test(test_error_positions_and_messages),
        cmocka_unit_test(test_limit_input_size),
        cmocka_unit_test(test_limit_depth),
        cmocka_unit_test(test_limit_predicates),
        cmocka_unit_test(test_format_hand_built_trees),
        cmocka_unit_test(test_format_canonical_spelling),
    };
    return cmocka_run_group_tests(segment_parse, NULL, NULL);
}

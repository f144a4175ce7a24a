/* test_segment_eval.c — the segment evaluator (src/segment_eval.c) over the
 * in-memory index (src/index.c): the data-driven cases of
 * tests/data/segment_eval.txt.  The file describes a small tenant (schema,
 * twelve customers, their events, tags and segments) and, for each
 * expression, the customers it selects or the error it gives; see the
 * comment at the top of the file. */
#include "testutil.h"

#include "attr.h"
#include "index.h"
#include "segment_eval.h"
#include "segment_parse.h"
#include "util.h"

#include <ctype.h>
#include <inttypes.h>

#define DAY_MS 86400000LL
#define MAX_CUSTOMERS 64
#define MAX_REFS 16

/* ---- the fixture ---- */

typedef struct ref_set {
    char name[64];
    roaring_bitmap_t *members;
} ref_set;

typedef struct fixture {
    const char *path;
    int64_t now_ms;
    bool have_now, have_tz;
    int64_t tz_ms;
    int64_t today; /* business day of now, for event offsets */
    sy_attr_set *schema;
    int ndefs;
    sy_index *ix;
    long numbers[MAX_CUSTOMERS]; /* customer numbers, in order of dense id / 2 */
    int ncustomers;
    ref_set tags[MAX_REFS], segments[MAX_REFS];
    int ntags, nsegments;
} fixture;

static char *data_path(void)
{
    const char *root = getenv("SIYU_SRC");
    if (!root || !*root)
        root = ".";
    return sy_xasprintf("%s/tests/data/segment_eval.txt", root);
}

static char *read_whole(const char *path)
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
    sy_buf_puts(&b, "");
    return sy_buf_steal(&b);
}

#define FIXTURE_FAIL(line, ...)                                                                    \
    do {                                                                                           \
        print_error("%s:%d: ", fx->path, (line));                                                  \
        print_error(__VA_ARGS__);                                                                  \
        print_error("\n");                                                                         \
        fail();                                                                                    \
    } while (0)

static uint32_t dense_of_number(const fixture *fx, long no)
{
    for (int i = 0; i < fx->ncustomers; i++)
        if (fx->numbers[i] == no)
            return (uint32_t)i * 2;
    return 1000000u + (uint32_t)no; /* nobody */
}

static long number_of_dense(const fixture *fx, uint32_t dense)
{
    if (dense % 2 == 0 && dense / 2 < (uint32_t)fx->ncustomers)
        return fx->numbers[dense / 2];
    return -(long)dense - 1; /* a dense id that is nobody: shows as negative */
}

/* "+08:00" / "-05:30" */
static bool parse_offset(const char *s, int64_t *ms)
{
    int h, m;
    char sign;
    int used = 0;
    if (sscanf(s, "%c%2d:%2d%n", &sign, &h, &m, &used) != 3 || used != 6 || s[used] != '\0' ||
        (sign != '+' && sign != '-'))
        return false;
    *ms = (int64_t)(h * 60 + m) * 60000 * (sign == '-' ? -1 : 1);
    return true;
}

/* "20s", "1500ms", "2m", "-" (none: -1) */
static bool parse_dwell(const char *s, int64_t *ms)
{
    if (!strcmp(s, "-")) {
        *ms = -1;
        return true;
    }
    char *end;
    long long v = strtoll(s, &end, 10);
    if (end == s || v < 0)
        return false;
    static const struct {
        const char *u;
        int64_t f;
    } units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}};
    for (size_t i = 0; i < SY_TEST_LEN(units); i++)
        if (!strcmp(end, units[i].u)) {
            *ms = v * units[i].f;
            return true;
        }
    return false;
}

static roaring_bitmap_t *parse_members(fixture *fx, int line, const char *list)
{
    roaring_bitmap_t *b = roaring_bitmap_create();
    if (!strcmp(list, "-"))
        return b;
    const char *p = list;
    while (*p) {
        char *end;
        long no = strtol(p, &end, 10);
        if (end == p || (*end != ',' && *end != '\0'))
            FIXTURE_FAIL(line, "bad member list '%s'", list);
        roaring_bitmap_add(b, dense_of_number(fx, no));
        p = *end ? end + 1 : end;
    }
    return b;
}

static void fixture_customer(fixture *fx, int line, const char *rest)
{
    char *end;
    long no = strtol(rest, &end, 10);
    if (end == rest || *end != ' ')
        FIXTURE_FAIL(line, "expected 'customer N {json}'");
    if (!fx->have_tz || !fx->schema)
        FIXTURE_FAIL(line, "tz and attr lines come before customers");
    if (fx->ncustomers == MAX_CUSTOMERS)
        FIXTURE_FAIL(line, "too many customers");
    json_error_t jerr;
    json_t *attrs = json_loads(end + 1, 0, &jerr);
    if (!json_is_object(attrs))
        FIXTURE_FAIL(line, "attributes: %s", jerr.text);
    json_t *canon = json_object();
    const char *k;
    json_t *v;
    json_object_foreach (attrs, k, v) {
        const sy_attr_def *d = sy_attr_find(fx->schema, k);
        if (!d)
            FIXTURE_FAIL(line, "customer %ld: no attribute '%s'", no, k);
        json_t *c;
        char err[256];
        if (!sy_attr_check(d, v, &c, err, sizeof err))
            FIXTURE_FAIL(line, "customer %ld: %s", no, err);
        json_object_set_new(canon, k, c);
    }
    uint32_t dense = (uint32_t)fx->ncustomers * 2;
    fx->numbers[fx->ncustomers++] = no;
    char num[32];
    snprintf(num, sizeof num, "%ld", no);
    sy_index_add_customer(fx->ix, num, dense);
    sy_index_update_attrs(fx->ix, dense, fx->schema, NULL, canon);
    json_decref(canon);
    json_decref(attrs);
}

static void fixture_event(fixture *fx, int line, const char *rest)
{
    long no;
    char name[64], when[64], count_s[32], dwell_s[32];
    if (sscanf(rest, "%ld %63s %63s %31s %31s", &no, name, when, count_s, dwell_s) != 5)
        FIXTURE_FAIL(line, "expected 'event N NAME DAY[@HH:MM:SS] COUNT DWELL'");
    if (!fx->have_now)
        FIXTURE_FAIL(line, "now comes before events");
    uint32_t dense = dense_of_number(fx, no);
    if (dense >= 1000000u)
        FIXTURE_FAIL(line, "no customer %ld", no);
    int h = 10, m = 0, s = 0;
    char *at = strchr(when, '@');
    if (at) {
        if (sscanf(at + 1, "%2d:%2d:%2d", &h, &m, &s) != 3 || h > 23 || m > 59 || s > 59)
            FIXTURE_FAIL(line, "bad time of day '%s'", at + 1);
        *at = '\0';
    }
    long from, to;
    char *end;
    from = strtol(when, &end, 10);
    if (end == when)
        FIXTURE_FAIL(line, "bad day '%s'", when);
    to = from;
    if (*end == '.' && end[1] == '.') {
        char *e2;
        to = strtol(end + 2, &e2, 10);
        if (e2 == end + 2 || *e2)
            FIXTURE_FAIL(line, "bad day range '%s'", when);
    } else if (*end) {
        FIXTURE_FAIL(line, "bad day '%s'", when);
    }
    long count = strtol(count_s, &end, 10);
    if (*end || count < 1)
        FIXTURE_FAIL(line, "bad count '%s'", count_s);
    int64_t dwell = -1;
    if (!parse_dwell(dwell_s, &dwell))
        FIXTURE_FAIL(line, "bad dwell '%s'", dwell_s);
    for (long day = from; day <= to; day++) {
        int64_t ts = (fx->today + day) * DAY_MS - fx->tz_ms + ((h * 60 + m) * 60 + s) * 1000LL;
        for (long i = 0; i < count; i++)
            sy_index_add_event(fx->ix, dense, name, ts, dwell);
    }
}

static void fixture_ref(fixture *fx, int line, const char *rest, bool tag)
{
    char name[64], list[512];
    if (sscanf(rest, "%63s %511s", name, list) != 2)
        FIXTURE_FAIL(line, "expected '%s NAME N,N,...'", tag ? "tag" : "segment");
    ref_set *r = tag ? &fx->tags[fx->ntags] : &fx->segments[fx->nsegments];
    if ((tag ? fx->ntags : fx->nsegments) == MAX_REFS)
        FIXTURE_FAIL(line, "too many");
    snprintf(r->name, sizeof r->name, "%s", name);
    r->members = parse_members(fx, line, list);
    if (tag)
        fx->ntags++;
    else
        fx->nsegments++;
}

static void fixture_attr(fixture *fx, int line, const char *rest)
{
    json_error_t jerr;
    json_t *body = json_loads(rest, 0, &jerr);
    if (!body)
        FIXTURE_FAIL(line, "attr: %s", jerr.text);
    if (!fx->schema) {
        fx->schema = sy_xcalloc(1, sizeof *fx->schema);
        atomic_init(&fx->schema->refs, 1);
        fx->schema->defs = sy_xcalloc(32, sizeof *fx->schema->defs);
    }
    if (fx->schema->n == 32)
        FIXTURE_FAIL(line, "too many attributes");
    const char *field;
    char err[256];
    if (!sy_attr_def_parse(body, &fx->schema->defs[fx->schema->n], &field, err, sizeof err))
        FIXTURE_FAIL(line, "attr %s: %s", field ? field : "", err);
    fx->schema->n++;
    json_decref(body);
}

static void fixture_free(fixture *fx)
{
    sy_index_free(fx->ix);
    sy_attr_set_release(fx->schema);
    for (int i = 0; i < fx->ntags; i++)
        roaring_bitmap_free(fx->tags[i].members);
    for (int i = 0; i < fx->nsegments; i++)
        roaring_bitmap_free(fx->segments[i].members);
}

static const roaring_bitmap_t *resolve(const ref_set *v, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(v[i].name, name))
            return v[i].members;
    return NULL;
}

static const roaring_bitmap_t *resolve_tag(void *ud, const char *name)
{
    const fixture *fx = ud;
    return resolve(fx->tags, fx->ntags, name);
}

static const roaring_bitmap_t *resolve_segment(void *ud, const char *name)
{
    const fixture *fx = ud;
    return resolve(fx->segments, fx->nsegments, name);
}

/* ---- the cases ---- */

/* The members as "1,3,5" (or "-"), customer numbers ascending. */
static char *members_text(const fixture *fx, const roaring_bitmap_t *b)
{
    long nos[MAX_CUSTOMERS * 2];
    int n = 0;
    roaring_uint32_iterator_t *it = roaring_create_iterator(b);
    for (; it->has_value; roaring_advance_uint32_iterator(it)) {
        long no = number_of_dense(fx, it->current_value);
        if (n < (int)SY_TEST_LEN(nos))
            nos[n++] = no;
    }
    roaring_free_uint32_iterator(it);
    for (int i = 1; i < n; i++) /* insertion sort */
        for (int j = i; j > 0 && nos[j - 1] > nos[j]; j--) {
            long t = nos[j];
            nos[j] = nos[j - 1];
            nos[j - 1] = t;
        }
    if (n == 0)
        return sy_xstrdup("-");
    sy_buf out = {0};
    for (int i = 0; i < n; i++)
        sy_buf_printf(&out, "%s%ld", i ? "," : "", nos[i]);
    return sy_buf_steal(&out);
}

/* A member list of the data file must be ascending customer numbers. */
static bool expected_list_ok(const char *s)
{
    if (!strcmp(s, "-"))
        return true;
    long prev = -1;
    const char *p = s;
    while (*p) {
        if (!isdigit((unsigned char)*p))
            return false;
        char *end;
        long v = strtol(p, &end, 10);
        if (v <= prev || (*end != ',' && *end))
            return false;
        prev = v;
        p = *end ? end + 1 : end;
    }
    return true;
}

/* The answer among some candidates is the whole answer's share of them,
 * and the answer in two halves on two threads is the whole answer. */
static bool same_among_and_in_halves(const sy_seg_ctx *cx, const sy_seg_node *n,
                                     const roaring_bitmap_t *whole)
{
    uint32_t size = sy_index_size(cx->ix);
    roaring_bitmap_t *sets[4] = {roaring_bitmap_from_range(0, size / 2 + 1, 1),
                                 roaring_bitmap_from_range(1, size + 1, 2), /* odd ids */
                                 roaring_bitmap_from_range(size / 3, size / 3 + 1, 1),
                                 roaring_bitmap_create()};
    bool ok = true;
    for (int i = 0; i < 4; i++) {
        sy_seg_error err = {0};
        roaring_bitmap_t *got = sy_seg_eval_among(cx, n, sets[i], &err);
        roaring_bitmap_t *want = roaring_bitmap_and(whole, sets[i]);
        ok = ok && got && roaring_bitmap_equals(got, want);
        if (got)
            roaring_bitmap_free(got);
        roaring_bitmap_free(want);
        roaring_bitmap_free(sets[i]);
    }
    uint32_t saved = sy_seg_parallel_min;
    sy_seg_parallel_min = 2;
    sy_seg_error err = {0};
    roaring_bitmap_t *got = sy_seg_eval_parallel(cx, n, &err);
    sy_seg_parallel_min = saved;
    ok = ok && got && roaring_bitmap_equals(got, whole);
    if (got)
        roaring_bitmap_free(got);
    return ok;
}

typedef struct run_stats {
    int cases, errors, failed;
} run_stats;

static void run_case(fixture *fx, int line, const char *expr, const char *expected, run_stats *st)
{
    st->cases++;
    bool want_error = strncmp(expected, "error ", 6) == 0;
    if (want_error)
        st->errors++;
    else if (!expected_list_ok(expected)) {
        print_error("eval-%d: malformed expected line '%s' (ascending numbers or '-')\n", line,
                    expected);
        st->failed++;
        return;
    }
    sy_seg_error err = {0};
    char *got = NULL;
    bool got_error = false;
    sy_seg_node *n = sy_seg_parse(expr, strlen(expr), &err);
    if (!n) {
        got = sy_xasprintf("error %d:%d: %s", err.line, err.col, err.msg);
        got_error = true;
    } else {
        sy_seg_ctx cx = {.ix = fx->ix,
                         .schema = fx->schema,
                         .now_ms = fx->now_ms,
                         .tag = resolve_tag,
                         .segment = resolve_segment,
                         .ud = fx};
        sy_index_rdlock(fx->ix);
        memset(&err, 0, sizeof err);
        roaring_bitmap_t *b = sy_seg_eval(&cx, n, &err);
        if (!b) {
            got = sy_xasprintf("error @%d: %s", err.pos, err.msg);
            got_error = true;
            if (err.msg[0] == '\0' || err.pos < 0 || (size_t)err.pos > strlen(expr)) {
                print_error("eval-%d: '%s': error without a message or with a bad position %d\n",
                            line, expr, err.pos);
                st->failed++;
            }
        } else {
            if (!roaring_bitmap_is_subset(b, sy_index_all(fx->ix))) {
                print_error("eval-%d: '%s': the result holds dense ids that are nobody\n", line,
                            expr);
                st->failed++;
            }
            got = members_text(fx, b);
            if (!same_among_and_in_halves(&cx, n, b)) {
                print_error("eval-%d: '%s': evaluated among candidates or in two halves, the"
                            " answer differs\n",
                            line, expr);
                st->failed++;
            }
            roaring_bitmap_free(b);
        }
        sy_index_unlock(fx->ix);
        sy_seg_free(n);
    }
    bool ok = want_error ? got_error && strstr(got, expected + 6) != NULL
                         : !got_error && strcmp(got, expected) == 0;
    if (!ok) {
        fprintf(stderr, "eval-%d: %s\n  expected: %s\n  got:      %s\n", line, expr, expected, got);
        st->failed++;
    }
    free(got);
}

static void data_file(void)
{
    fixture fxs = {0};
    fixture *fx = &fxs;
    char *path = data_path();
    fx->path = path;
    char *text = read_whole(path);
    if (!text) {
        print_error("cannot read %s (set SIYU_SRC to the repository root)\n", path);
        free(path);
        fail();
    }
    /* split into lines, in place */
    int nlines = 0, cap = 0;
    char **lines = NULL;
    for (char *p = text; *p;) {
        char *nl = strchr(p, '\n');
        if (nlines == cap) {
            cap = cap ? cap * 2 : 512;
            lines = sy_xrealloc(lines, (size_t)cap * sizeof *lines);
        }
        lines[nlines++] = p;
        if (!nl)
            break;
        *nl = '\0';
        p = nl + 1;
    }

    /* the fixture */
    int l = 0;
    for (; l < nlines; l++) {
        char *s = lines[l];
        if (!*s || *s == '#')
            continue;
        if (!strcmp(s, "cases"))
            break;
        if (!strncmp(s, "now ", 4)) {
            if (!sy_parse_time(s + 4, &fx->now_ms))
                FIXTURE_FAIL(l + 1, "bad time '%s'", s + 4);
            fx->have_now = true;
        } else if (!strncmp(s, "tz ", 3)) {
            if (!parse_offset(s + 3, &fx->tz_ms) || fx->ix)
                FIXTURE_FAIL(l + 1, "bad or late tz '%s'", s + 3);
            fx->have_tz = true;
            fx->ix = sy_index_new(fx->tz_ms);
        } else if (!strncmp(s, "attr ", 5)) {
            fixture_attr(fx, l + 1, s + 5);
        } else if (!strncmp(s, "customer ", 9)) {
            fixture_customer(fx, l + 1, s + 9);
        } else if (!strncmp(s, "event ", 6)) {
            fixture_event(fx, l + 1, s + 6);
        } else if (!strncmp(s, "tag ", 4)) {
            fixture_ref(fx, l + 1, s + 4, true);
        } else if (!strncmp(s, "segment ", 8)) {
            fixture_ref(fx, l + 1, s + 8, false);
        } else {
            FIXTURE_FAIL(l + 1, "unknown fixture line '%s'", s);
        }
        if (fx->have_now && fx->have_tz) {
            int64_t local = fx->now_ms + fx->tz_ms;
            fx->today = local >= 0 ? local / DAY_MS : -((-local + DAY_MS - 1) / DAY_MS);
        }
    }
    if (l == nlines)
        FIXTURE_FAIL(l, "no 'cases' line");
    if (!fx->have_now || !fx->have_tz || !fx->schema || fx->ncustomers == 0)
        FIXTURE_FAIL(l + 1, "the fixture needs now, tz, attr and customer lines");

    /* the cases */
    run_stats st = {0};
    for (l++; l < nlines;) {
        char *s = lines[l];
        if (!*s || *s == '#') {
            l++;
            continue;
        }
        if (!strncmp(s, "@now ", 5)) {
            if (!sy_parse_time(s + 5, &fx->now_ms))
                FIXTURE_FAIL(l + 1, "bad time '%s'", s + 5);
            l++;
            continue;
        }
        if (l + 1 >= nlines || !*lines[l + 1])
            FIXTURE_FAIL(l + 1, "a case needs an expected line after its expression");
        if (l + 2 < nlines && *lines[l + 2])
            FIXTURE_FAIL(l + 3, "a case must be followed by a blank line");
        run_case(fx, l + 1, s, lines[l + 1], &st);
        l += 3;
    }
    print_message("segment_eval: %d cases (%d selections, %d errors), %d failed\n", st.cases,
                  st.cases - st.errors, st.errors, st.failed);
    free(lines);
    free(text);
    fixture_free(fx);
    free(path);
    assert_true(st.cases >= 60);
    assert_int_equal(st.failed, 0);
}

/* Every case, with and-chains in one pass over the containers (the
 * default) and term by term: the same answers and errors. */
static void test_data_file(void **state)
{
    (void)state;
    bool saved = sy_seg_fuse;
    for (int fuse = 1; fuse >= 0; fuse--) {
        sy_seg_fuse = fuse;
        print_message("segment_eval: and-chains %s\n", fuse ? "in one pass" : "term by term");
        data_file();
    }
    sy_seg_fuse = saved;
}

/* ---- many containers ----
 *
 * The data file's tenant fits one container of each bitmap, all arrays.
 * This tenant spreads 200,000 customers over 1.1M dense ids: the first
 * 140,000 ids are all customers (value bitmaps with bitset containers),
 * then one id in 16 (arrays); `zone` follows ranges of ids (run containers
 * once compacted), and some customers lack some attributes.  Each
 * and-chain below is evaluated in one pass and term by term, among
 * candidates, in two halves that meet mid-container and at a container
 * boundary: the answers must agree. */

#define MC_CUSTOMERS 200000
#define MC_NOW 1764979200000LL /* 2025-12-06T00:00:00Z */

typedef struct mc_ctx {
    roaring_bitmap_t *tag;
} mc_ctx;

static const roaring_bitmap_t *mc_tag(void *ud, const char *name)
{
    const mc_ctx *m = ud;
    return strcmp(name, "t") ? NULL : m->tag;
}

static uint64_t mc_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void test_many_containers(void **state)
{
    (void)state;
    static const char *const defs[] = {
        "{\"name\":\"tier\",\"type\":\"enum\",\"values\":[\"A\",\"B\",\"C\",\"D\"]}",
        "{\"name\":\"city\",\"type\":\"string\"}",
        "{\"name\":\"zone\",\"type\":\"string\"}",
        "{\"name\":\"flag\",\"type\":\"bool\"}",
        "{\"name\":\"aum\",\"type\":\"integer\",\"unit\":\"fen\"}",
        "{\"name\":\"age\",\"type\":\"integer\"}",
        "{\"name\":\"since\",\"type\":\"date\"}",
    };
    sy_attr_set *schema = sy_xcalloc(1, sizeof *schema);
    atomic_init(&schema->refs, 1);
    schema->defs = sy_xcalloc(SY_TEST_LEN(defs), sizeof *schema->defs);
    for (size_t i = 0; i < SY_TEST_LEN(defs); i++) {
        json_t *b = json_loads(defs[i], 0, NULL);
        const char *field;
        char err[256];
        assert_true(sy_attr_def_parse(b, &schema->defs[schema->n], &field, err, sizeof err));
        schema->defs[schema->n].ordinal = schema->n;
        schema->n++;
        json_decref(b);
    }
    sy_index *ix = sy_index_new(8 * 3600000LL);
    mc_ctx m = {.tag = roaring_bitmap_create()};
    uint64_t seed = 42;
    int64_t today = (MC_NOW + 8 * 3600000LL) / DAY_MS;
    for (uint32_t i = 0; i < MC_CUSTOMERS; i++) {
        uint32_t dense = i < 140000 ? i : 140000 + (i - 140000) * 16;
        char no[16], buf[16];
        snprintf(no, sizeof no, "M%06u", i);
        sy_index_add_customer(ix, no, dense);
        uint64_t r = mc_next(&seed);
        json_t *o = json_object();
        if (r % 20) {
            unsigned t = (unsigned)(r >> 8) % 100;
            json_object_set_new(o, "tier",
                                json_string(t < 45   ? "A"
                                            : t < 75 ? "B"
                                            : t < 95 ? "C"
                                                     : "D"));
        }
        snprintf(buf, sizeof buf, "c%u", (unsigned)(r >> 16) % 30);
        json_object_set_new(o, "city", json_string(buf));
        snprintf(buf, sizeof buf, "z%u", (dense / 7000) % 4);
        json_object_set_new(o, "zone", json_string(buf));
        json_object_set_new(o, "flag", json_boolean((r >> 24) & 1));
        if ((r >> 25) % 10)
            json_object_set_new(o, "aum",
                                json_integer((int64_t)((r >> 28) % 40000000000ULL) - 1000000));
        json_object_set_new(o, "age", json_integer(18 + (int)((r >> 40) % 63)));
        char date[16];
        sy_format_date(today - (int64_t)((r >> 48) % 400), date);
        json_object_set_new(o, "since", json_string(date));
        sy_index_update_attrs(ix, dense, schema, NULL, o);
        json_decref(o);
        if ((r >> 56) % 4 == 0 || (dense >= 20000 && dense < 90000 && (r >> 58) % 4))
            roaring_bitmap_add(m.tag, dense);
        if ((r >> 60) % 5 == 0)
            for (int e = 0; e <= (int)((r >> 62) & 1); e++)
                sy_index_add_event(ix, dense, "login", MC_NOW - (int64_t)e * 3 * DAY_MS, -1);
    }
    sy_index_compact(ix);
    roaring_bitmap_run_optimize(m.tag);

    static const char *const exprs[] = {
        "tier >= C and flag = true and city = 'c3' and aum >= 1000000",
        "tier in (A, D) and zone = 'z1' and age between 30 and 50",
        "zone != 'z2' and city in ('c1', 'c2', 'c3') and flag = false and tier < C and aum < 0",
        "tag(t) and tier = D and age >= 60",
        "tag(t) and tier != A and zone in ('z0', 'z3') and flag = true",
        "did(login, 7d) and city = 'c5' and flag = true and aum is not null and since within 30d",
        "tier is not null and zone = 'z3' and flag = true",
        "flag = true and aum between -5000 and 5000000 and age < 40 and not city = 'c1'",
        "tier >= B and flag = true and city != 'c4' and did(login, 7d) >= 2",
        "tier = A and tier = B and flag = true",
        "aum >= 0 and age >= 18",
        "tier >= A and flag = true and zone = 'z0'",
        "city = 'nope' and flag = true and aum > 0",
        "aum > 9223372036854775807 and flag = true",
        "tier >= B and age = 40 and aum <= 100000000 and since within 90d and flag = false",
        "(tier = A or city = 'c1') and flag = true and age > 30 and zone = 'z2'",
    };
    sy_seg_ctx cx = {.ix = ix, .schema = schema, .now_ms = MC_NOW, .tag = mc_tag, .ud = &m};
    bool saved_fuse = sy_seg_fuse;
    uint32_t saved_min = sy_seg_parallel_min;
    int nonempty = 0;
    sy_index_rdlock(ix);
    assert_true(sy_index_size(ix) >= (1u << 20));
    for (size_t i = 0; i < SY_TEST_LEN(exprs); i++) {
        sy_seg_error err = {0};
        sy_seg_node *n = sy_seg_parse(exprs[i], strlen(exprs[i]), &err);
        assert_non_null(n);
        sy_seg_fuse = false;
        roaring_bitmap_t *want = sy_seg_eval(&cx, n, &err);
        assert_non_null(want);
        nonempty += !roaring_bitmap_is_empty(want);
        sy_seg_fuse = true;
        roaring_bitmap_t *got = sy_seg_eval(&cx, n, &err);
        assert_non_null(got);
        if (!roaring_bitmap_equals(got, want))
            fail_msg("many-%zu: '%s': %llu in one pass, %llu term by term", i, exprs[i],
                     (unsigned long long)roaring_bitmap_get_cardinality(got),
                     (unsigned long long)roaring_bitmap_get_cardinality(want));
        roaring_bitmap_free(got);
        for (int fuse = 0; fuse < 2; fuse++) {
            sy_seg_fuse = fuse;
            if (!same_among_and_in_halves(&cx, n, want))
                fail_msg("many-%zu: '%s': among candidates or in halves (one pass: %d)", i,
                         exprs[i], fuse);
            /* halves at a container boundary (the tenant is past 2^20 ids) */
            sy_seg_parallel_min = 2;
            roaring_bitmap_t *par = sy_seg_eval_parallel(&cx, n, &err);
            sy_seg_parallel_min = saved_min;
            assert_non_null(par);
            if (!roaring_bitmap_equals(par, want))
                fail_msg("many-%zu: '%s': in halves (one pass: %d)", i, exprs[i], fuse);
            roaring_bitmap_free(par);
        }
        roaring_bitmap_free(want);
        sy_seg_free(n);
    }
    sy_index_unlock(ix);
    sy_seg_fuse = saved_fuse;
    assert_true(nonempty >= 12);
    roaring_bitmap_free(m.tag);
    sy_index_free(ix);
    sy_attr_set_release(schema);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_data_file),
        cmocka_unit_test(test_many_containers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* api_segments.c — segment expressions over the tenant's index.
 *
 * POST /v1/segments:preview evaluates an expression without saving it:
 * the number of matching customers and, optionally, their breakdown by one
 * enum, bool or string attribute.  Errors in the expression are 400
 * validation answers with the position (offset, line, column) and what was
 * expected. */
#include "api.h"
#include "app.h"
#include "segment_eval.h"
#include "segment_parse.h"
#include "util.h"
#include "validate.h"

#include <stdlib.h>
#include <string.h>

static void reply_expression_error(sy_req *r, const sy_seg_error *e, const char *src)
{
    int line = e->line, col = e->col;
    if (line == 0) {
        /* Semantic errors carry the offset only: count lines and characters. */
        line = 1;
        col = 1;
        for (int i = 0; i < e->pos && src[i]; i++) {
            if (src[i] == '\n') {
                line++;
                col = 1;
            } else if (((unsigned char)src[i] & 0xc0) != 0x80) {
                col++;
            }
        }
    }
    sy_reply_problem(r, 400, "validation", "/expression", "at %d:%d: %s", line, col, e->msg);
    sy_reply_extend(r, "position",
                    json_pack("{s:i, s:i, s:i}", "offset", e->pos, "line", line, "column", col));
}

typedef struct breakdown {
    const roaring_bitmap_t *members;
    json_t *rows;
    uint64_t counted;
} breakdown;

static void breakdown_visit(const char *value, const roaring_bitmap_t *b, void *ud)
{
    breakdown *bd = ud;
    uint64_t n = roaring_bitmap_and_cardinality(bd->members, b);
    if (!n)
        return;
    bd->counted += n;
    json_array_append_new(bd->rows,
                          json_pack("{s:s, s:I}", "value", value, "count", (json_int_t)n));
}

static int by_count_desc(const void *a, const void *b)
{
    json_int_t x = json_integer_value(json_object_get(*(json_t *const *)a, "count"));
    json_int_t y = json_integer_value(json_object_get(*(json_t *const *)b, "count"));
    return (y > x) - (y < x);
}

void sy_api_segments_preview(sy_req *r)
{
    json_t *body = sy_req_json_object(r);
    static const char *const fields[] = {"expression", "breakdown", NULL};
    const char *expr = NULL, *by = NULL;
    if (!body || !sy_v_only(r, body, fields) ||
        !sy_v_string(r, body, "expression", true, SY_SEG_MAX_INPUT, &expr) ||
        !sy_v_string(r, body, "breakdown", false, SY_ATTR_NAME_MAX, &by))
        return;
    sy_seg_error e;
    memset(&e, 0, sizeof e);
    sy_seg_node *ast = sy_seg_parse(expr, strlen(expr), &e);
    if (!ast) {
        reply_expression_error(r, &e, expr);
        return;
    }
    sy_app *app = sy_req_app(r);
    const char *tenant = sy_req_principal(r)->tenant;
    sy_attr_set *schema = sy_schemas_get(app->schemas, tenant);
    sy_index *ix = schema ? sy_indexes_get(app->indexes, tenant) : NULL;
    if (!ix) {
        sy_seg_free(ast);
        sy_attr_set_release(schema);
        sy_reply_problem(r, 500, "internal", NULL, "the tenant's index is not available");
        return;
    }
    const sy_attr_def *bdef = by ? sy_attr_find(schema, by) : NULL;
    if (by && (!bdef || bdef->type == SY_ATTR_INTEGER || bdef->type == SY_ATTR_NUMBER ||
               bdef->type == SY_ATTR_DATE)) {
        sy_reply_problem(r, 400, "validation", "/breakdown",
                         "'breakdown' must name an enum, bool or string attribute");
        sy_seg_free(ast);
        sy_attr_set_release(schema);
        return;
    }
    uint64_t t0 = sy_mono_ns();
    sy_seg_ctx cx = {.schema = schema, .now_ms = sy_now_ms()};
    sy_index_rdlock(ix);
    cx.ix = ix;
    roaring_bitmap_t *members = sy_seg_eval(&cx, ast, &e);
    json_t *rows = NULL;
    uint64_t count = members ? roaring_bitmap_get_cardinality(members) : 0;
    if (members && bdef) {
        breakdown bd = {.members = members, .rows = json_array()};
        sy_index_values(ix, bdef->name, breakdown_visit, &bd);
        rows = bd.rows;
        if (count > bd.counted)
            json_array_append_new(
                rows, json_pack("{s:n, s:I}", "value", "count", (json_int_t)(count - bd.counted)));
    }
    sy_index_unlock(ix);
    double ms = (double)(sy_mono_ns() - t0) / 1e6;
    if (!members) {
        reply_expression_error(r, &e, expr);
    } else {
        char *canon = sy_seg_format(ast);
        json_t *out =
            json_pack("{s:s, s:I, s:o, s:f}", "expression", canon, "count", (json_int_t)count,
                      "evaluated_at", sy_json_time(cx.now_ms), "took_ms", ms);
        free(canon);
        if (rows) {
            size_t n = json_array_size(rows);
            json_t **v = sy_xmalloc(n * sizeof *v);
            for (size_t i = 0; i < n; i++)
                v[i] = json_incref(json_array_get(rows, i));
            qsort(v, n, sizeof *v, by_count_desc);
            json_t *sorted = json_array();
            for (size_t i = 0; i < n; i++)
                json_array_append_new(sorted, v[i]);
            free(v);
            json_decref(rows);
            json_object_set_new(out, "breakdown",
                                json_pack("{s:s, s:o}", "attribute", bdef->name, "rows", sorted));
        }
        sy_reply_json(r, 200, out);
        roaring_bitmap_free(members);
    }
    sy_seg_free(ast);
    sy_attr_set_release(schema);
}

/* segment_parse.h — parser and canonical formatter of the segment expression
 * language (人群圈选): the conditions that select a tenant's customers, e.g.
 *
 *     payroll = true and aum >= 50000000 and did(view_wealth, 7d) >= 3
 *
 * The language is described in docs/segments.md.  sy_seg_parse() turns text
 * into a tree of sy_seg_node; sy_seg_format() turns a tree back into canonical
 * text, which re-parses to the same canonical text.  The parser is a
 * hand-written, depth-limited recursive descent over an on-the-fly lexer; it
 * accepts any bytes (NUL, invalid UTF-8) and either returns a tree or fills
 * the error with a position and a message saying what it expected and what
 * it found.  Evaluation is not done here. */
#ifndef SY_SEGMENT_PARSE_H
#define SY_SEGMENT_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Limits (docs/segments.md, "Limits"). */
#define SY_SEG_MAX_INPUT 65536 /* bytes of text, as written and in canonical form */
#define SY_SEG_MAX_DEPTH 64    /* nested parentheses and 'not' */
#define SY_SEG_MAX_PREDICATES 1000
#define SY_SEG_MAX_NAME 63    /* attribute, event and bare names (ASCII) */
#define SY_SEG_MAX_STRING 256 /* bytes of a string literal after unescaping */
#define SY_SEG_MAX_TAG 100    /* bytes of a tag or segment name */
#define SY_SEG_MAX_DECIMAL_DIGITS 38
#define SY_SEG_MAX_DURATION_MS (3650LL * 86400000LL)

typedef enum {
    SY_SEG_AND,
    SY_SEG_OR,
    SY_SEG_NOT,
    SY_SEG_CMP,
    SY_SEG_IN,
    SY_SEG_BETWEEN,
    SY_SEG_IS_NULL,
    SY_SEG_WITHIN,
    SY_SEG_TAG,
    SY_SEG_SEGMENT,
    SY_SEG_DID,
    SY_SEG_DWELL
} sy_seg_kind;

typedef enum { SY_OP_EQ, SY_OP_NE, SY_OP_LT, SY_OP_LE, SY_OP_GT, SY_OP_GE } sy_seg_op;

typedef enum { SY_LIT_INT, SY_LIT_DECIMAL, SY_LIT_STRING, SY_LIT_BOOL, SY_LIT_DATE } sy_lit_kind;

typedef struct sy_seg_lit {
    sy_lit_kind kind;
    int64_t i; /* INT value; BOOL 0/1; DATE days since 1970-01-01 */
    char *s;   /* STRING/DECIMAL text, NUL-terminated (valid UTF-8, no control characters) */
    bool bare; /* STRING written as a bare name (an enum value such as R3) */
    int pos;   /* byte offset of the literal */
} sy_seg_lit;

typedef struct sy_seg_node {
    sy_seg_kind kind;
    int pos;                   /* byte offset of the node's first token */
    struct sy_seg_node *a, *b; /* AND/OR: a, b; NOT: a */
    char *name;                /* attribute, tag, segment or event */
    sy_seg_op op;              /* CMP, DID, DWELL */
    sy_seg_lit *lits;          /* CMP 1, IN n, BETWEEN 2 */
    int nlits;
    int64_t window_ms; /* DID, DWELL, WITHIN */
    int64_t count;     /* DID: the compared integer (1 for bare did) */
    int64_t dwell_ms;  /* DWELL: compared duration */
    bool negated;      /* IN: not in; IS_NULL: is not null */
} sy_seg_node;

typedef struct sy_seg_error {
    int pos;       /* byte offset */
    int line, col; /* 1-based; col counts UTF-8 characters */
    char msg[256]; /* e.g. "expected ')' to close '(' at 1:5, found 'and'" (valid UTF-8) */
} sy_seg_error;

/* Parses len bytes of src.  Returns the tree (free with sy_seg_free), or NULL
 * with *err filled (err may be NULL).  Never crashes and never leaks, whatever
 * the bytes. */
sy_seg_node *sy_seg_parse(const char *src, size_t len, sy_seg_error *err);

void sy_seg_free(sy_seg_node *n);

/* Canonical text, malloc'd: lowercase keywords, single spaces, minimal
 * parentheses, strings single-quoted, durations in the largest exact unit
 * (d, h, m, s, ms).  sy_seg_format(sy_seg_parse(t)) is a fixed point. */
char *sy_seg_format(const sy_seg_node *n);

/* Calls fn on every node, pre-order (node, then a, then b). */
void sy_seg_walk(const sy_seg_node *n, void (*fn)(const sy_seg_node *, void *), void *ud);

#endif

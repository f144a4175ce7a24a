/* fuzz_segment.c — libFuzzer target for the segment expression parser
 * (src/segment_parse.c).
 *
 * The input bytes, whatever they are (NUL, invalid UTF-8, deep nesting), go
 * to sy_seg_parse().  Invariants checked: a failure comes with a message
 * (valid UTF-8) and a position inside the input; a success formats to
 * canonical text that parses again and formats to the same text, and whose
 * tree has the same number of nodes; walking visits every node.  Everything
 * is freed, so LeakSanitizer reports any leak.
 * Build: make fuzz; run: build/fuzz/fuzz_segment tests/fuzz/corpus/segment */
#include "fuzz_json.h"
#include "segment_parse.h"

#include <assert.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void count(const sy_seg_node *n, void *ud)
{
    (void)n;
    (*(int *)ud)++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sy_seg_error err;
    sy_seg_node *n = sy_seg_parse((const char *)data, size, &err);
    if (!n) {
        assert(err.msg[0] != '\0');
        assert(fz_utf8_valid(err.msg));
        assert(err.pos >= 0 && (size_t)err.pos <= size);
        assert(err.line >= 1 && err.col >= 1);
        return 0;
    }
    int nodes = 0;
    sy_seg_walk(n, count, &nodes);
    assert(nodes >= 1);

    char *f1 = sy_seg_format(n);
    assert(fz_utf8_valid(f1));
    sy_seg_error err2;
    sy_seg_node *n2 = sy_seg_parse(f1, strlen(f1), &err2);
    if (!n2) {
        fprintf(stderr, "canonical text does not parse: %d:%d: %s\n%s\n", err2.line, err2.col,
                err2.msg, f1);
        abort();
    }
    char *f2 = sy_seg_format(n2);
    if (strcmp(f1, f2) != 0) {
        fprintf(stderr, "not a fixed point:\n%s\n%s\n", f1, f2);
        abort();
    }
    int nodes2 = 0;
    sy_seg_walk(n2, count, &nodes2);
    assert(nodes2 == nodes);

    free(f2);
    free(f1);
    sy_seg_free(n2);
    sy_seg_free(n);
    return 0;
}

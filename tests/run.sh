#!/bin/sh
# run.sh BUILD TEST... -- FUZZ... — runs every test binary and the fuzz
# targets' smoke runs, then prints one line: "N passed, N failed".
#
# Test binaries are cmocka programs: the counts come from their
# "[  PASSED  ] n test(s)" / "[  FAILED  ] n test(s)" lines.  A binary that
# dies without printing its summary (a crash, a sanitizer report) counts as
# one failure.  Each fuzz target runs over its seed corpus and for a few
# thousand generated inputs; a crash is a failure.
set -u
BUILD=$1; shift
export SIYU_BIN="$(pwd)/$BUILD/siyu"
export SIYU_SRC="$(pwd)"
passed=0; failed=0; failures=""
log=$(mktemp)
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
    t=$1; shift
    name=$(basename "$t")
    printf '%s\n' "--- $name"
    "$t" >"$log" 2>&1
    rc=$?
    p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -1)
    f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -1)
    p=${p:-0}; f=${f:-0}
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1
    fi
    if [ "$f" -ne 0 ] || [ "$rc" -ne 0 ]; then
        cat "$log"
        failures="$failures $name"
    else
        grep -E '^\[ +(OK|RUN) +\]' "$log" | grep OK | sed 's/^/  /'
    fi
    passed=$((passed + p)); failed=$((failed + f))
done
[ $# -gt 0 ] && shift
for fz in "$@"; do
    name=$(basename "$fz")
    corpus="tests/fuzz/corpus/${name#fuzz_}"
    work=$(mktemp -d)
    [ -d "$corpus" ] && cp "$corpus"/* "$work"/ 2>/dev/null
    printf '%s\n' "--- $name (smoke: seed corpus + 20000 runs)"
    if "$fz" -runs=20000 -max_len=4096 "$work" >"$log" 2>&1; then
        passed=$((passed + 1))
        echo "  [       OK ] $name"
    else
        cat "$log" | tail -40
        failed=$((failed + 1)); failures="$failures $name"
    fi
    rm -rf "$work"
done
rm -f "$log"
[ -n "$failures" ] && echo "failed:$failures"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

#!/bin/bash
# bench/experiments/http-threads.sh BIN [CONNS...] — how the HTTP threads
# share connections: a 20,000-customer demo bank served by BIN, wrk
# (-t2, 3 s) on GET /healthz with each number of connections in turn, and
# each HTTP thread's CPU seconds (schedstat) before and after every run.
# Threads that got none of the connections show no change.
#
#   bench/experiments/http-threads.sh ./siyu 8 64 8
set -eu
BIN=$(realpath "$1"); shift
[ $# -gt 0 ] || set -- 8 64 8
T=$(mktemp -d "${TMPDIR:-/tmp}/siyu-threads.XXXXXX")
export SIYU_DATA_KEY=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
"$BIN" demo --data "$T/data" --customers 20000 --days 1 >/dev/null 2>&1
"$BIN" serve --data "$T/data" --listen 127.0.0.1:0 --port-file "$T/port" --access-log off \
    --log-level warn >"$T/serve.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$T"' EXIT
for _ in $(seq 1 200); do [ -s "$T/port" ] && break; sleep 0.05; done
P=$(cat "$T/port")
snap() {   # CPU seconds of each HTTP thread (siyu-http, or libmicrohttpd's MHD-*)
    for t in /proc/$PID/task/*; do echo "$(cat "$t/comm") $(cut -d' ' -f1 "$t/schedstat")"; done |
        awk '/^(siyu-http|MHD-)/ {printf "%.2f ", $2 / 1e9}'
}
for c in "$@"; do
    a=$(snap)
    r=$(wrk -t2 -c"$c" -d3s "http://127.0.0.1:$P/healthz" | awk '/Requests\/sec/ {print $2}')
    b=$(snap)
    echo "connections $c: $r req/s; HTTP threads' CPU seconds before: $a after: $b"
done

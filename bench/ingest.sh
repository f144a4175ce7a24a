#!/bin/bash
# bench/ingest.sh — event ingest of siyu, measured side by side with a
# PostgreSQL 15 COPY of the same rows.
#
#   siyu  POST /v1/events over HTTP, wrk -t2 -c$CONNS -d${DURATION}s, each
#         request a JSON array of $BATCH distinct events (1,000 by default).
#         A 200 means the batch is committed (sync=full: the WAL is fsynced
#         per group commit) and indexed in memory.
#   PG    one `\copy events FROM 'file' CSV` through psql into a throwaway
#         PostgreSQL 15 server (defaults: fsync on, synchronous_commit on),
#         table `events` with siyu's columns, primary key and timeline
#         index.  The file holds exactly the rows siyu stored during the
#         run, exported from siyu's store, so both sides get the same number
#         of rows of the same shape.  Only the COPY is timed (psql \timing).
#         One COPY of everything is the peer's best case: one transaction,
#         one fsync, no HTTP, no JSON.
#
# rows/s: siyu = 200-responses/s x batch size; PG = rows / COPY time.  The
# figure that counts is the ratio siyu/COPY (goal >= 0.5).
#
# After the wrk run siyu is stopped and its store checked with sqlite3:
# every batch answered 200 must be stored whole (1,000 rows), no batch may
# be stored partly, each 200 must say "accepted": 1000, and the only stored
# batches without a 200 may be those still in flight when wrk stopped (at
# most one per connection; wrk does not wait for them).  Any other
# difference fails the script (exit 1).
#
#   bench/ingest.sh
#   CONNS=16 DURATION=30 bench/ingest.sh
#   PERF_OUT=/tmp/ingest.perf bench/ingest.sh   also records the server's CPU profile
#   WAL_PAGES=1 bench/ingest.sh      also prints the pages the commits wrote, by table
#                                    and index (bench/walpages.py)
#
# Needs: wrk, sqlite3, curl (scripts/deps.sh bench), postgresql-15
# (installed here when missing, as in scripts/pg-compat.sh).
set -eu

CONNS=${CONNS:-8}
DURATION=${DURATION:-20}
THREADS=2
BATCH=1000
CUSTOMERS=20000
GOAL=0.5

cd "$(dirname "$0")/.."
ROOT=$(pwd)
. bench/lib.sh

die() {
    echo "ingest.sh: $*" >&2
    exit 1
}

# ---------------------------------------------------------------- deps, build

scripts/deps.sh bench
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
if ! dpkg-query -W -f='${Status}' postgresql-15 2>/dev/null | grep -q "ok installed"; then
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q postgresql-15 >/dev/null ||
        { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q postgresql-15 >/dev/null; }
fi
make -s siyu
SIYU="$ROOT/siyu"
PGBIN=/usr/lib/postgresql/15/bin
for c in wrk sqlite3 curl psql "$PGBIN/initdb" "$PGBIN/pg_ctl"; do
    command -v "$c" >/dev/null || die "$c not found"
done

T=$(mktemp -d "${TMPDIR:-/tmp}/siyu-ingest.XXXXXX")
SIYU_PID=""
PG_STARTED=0

# pgrun CMD — run a shell command as the postgres user when we are root
pgrun() {
    if [ "$(id -u)" -eq 0 ]; then su postgres -c "$*"; else bash -c "$*"; fi
}
stop_siyu() {
    if [ -n "$SIYU_PID" ]; then
        kill -TERM "$SIYU_PID" 2>/dev/null || true
        wait "$SIYU_PID" 2>/dev/null || true
        SIYU_PID=""
    fi
}
stop_pg() {
    if [ "$PG_STARTED" -eq 1 ]; then
        pgrun "$PGBIN/pg_ctl -D $T/pg/db -m immediate stop" >/dev/null 2>&1 || true
        PG_STARTED=0
    fi
}
cleanup() {
    stop_siyu
    stop_pg
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- siyu store

"$SIYU" demo --data "$T/data" --customers "$CUSTOMERS" --days 1 --seed 1 >>"$T/setup.log" 2>&1 ||
    { cat "$T/setup.log" >&2; die "siyu demo failed"; }
KEY=$("$SIYU" key create --data "$T/data" --tenant demo --role app 2>>"$T/setup.log") ||
    { cat "$T/setup.log" >&2; die "siyu key create failed"; }
DB="$T/data/siyu.db"
[ -f "$DB" ] || die "no $DB after siyu demo"
PRE=$(sqlite3 "$DB" "SELECT count(*) FROM events WHERE event_id LIKE 'wrk%'")
[ "$PRE" -eq 0 ] || die "the demo store already holds events named wrk*"
DEMO_EVENTS=$(sqlite3 "$DB" "SELECT count(*) FROM events")

"$SIYU" serve --data "$T/data" --listen 127.0.0.1:0 --port-file "$T/siyu.port" --access-log off \
    --demo --shutdown-grace 5000 >>"$T/siyu.out" 2>>"$T/siyu.err" &
SIYU_PID=$!
PORT=""
for _ in $(seq 300); do
    if [ -s "$T/siyu.port" ] && grep -q '^[0-9][0-9]*$' "$T/siyu.port"; then
        PORT=$(cat "$T/siyu.port")
        break
    fi
    kill -0 "$SIYU_PID" 2>/dev/null || break
    sleep 0.1
done
[ -n "$PORT" ] || { cat "$T/siyu.err" >&2; die "siyu did not start"; }
URL="http://127.0.0.1:$PORT"

# ---------------------------------------------------------------- wrk script

# Each thread precomputes 16 batch templates (random customers out of
# $CUSTOMERS, event names, ts within the last 20 hours, dwell_ms on view_*
# events); a request picks one and fills in the event ids:
#   wrk<thread>-<counter>-<000..999>
# so ids are unique across requests and threads.  Each request carries
# X-Request-Id wrk<thread>-<counter>, which siyu echoes; response() records
# the ids answered 200 and done() writes them to $ACK_FILE.
cat >"$T/ingest.lua" <<'LUA'
local threads = {}
local nthreads = 0
function setup(thread)
    thread:set("tid", nthreads)
    nthreads = nthreads + 1
    table.insert(threads, thread)
end

local NT = 16
local BATCH, CUSTOMERS
local templates = {}
local counter = 0
sent = 0
ok200 = 0
non200 = 0
badacc = 0
acked = {}

function init(args)
    BATCH = tonumber(args[1])
    CUSTOMERS = tonumber(args[2])
    math.randomseed(os.time() * 131 + tid * 7919)
    local names = { "view_wealth", "view_fund", "view_loan", "login", "buy_fund", "search", "view_card" }
    local now = os.time() * 1000
    for k = 1, NT do
        local t = {}
        for i = 0, BATCH - 1 do
            local name = names[math.random(#names)]
            local s = string.format('-%03d","customer_no":"C%08d","name":"%s","ts":%.0f', i,
                math.random(CUSTOMERS), name, now - math.random(60000, 20 * 3600 * 1000))
            if name:sub(1, 5) == "view_" then
                s = s .. string.format(',"dwell_ms":%d', math.random(500, 120000))
            end
            t[3 * i + 1] = (i == 0 and '[{"event_id":"' or ',{"event_id":"')
            t[3 * i + 2] = ""
            t[3 * i + 3] = s .. "}"
        end
        t[3 * BATCH + 1] = "]"
        templates[k] = t
    end
end

function request()
    counter = counter + 1
    sent = sent + 1
    local id = "wrk" .. tid .. "-" .. counter
    local t = templates[(counter % NT) + 1]
    for i = 0, BATCH - 1 do
        t[3 * i + 2] = id
    end
    local h = {}
    for k, v in pairs(wrk.headers) do h[k] = v end
    h["X-Request-Id"] = id
    h["Content-Type"] = "application/json"
    return wrk.format("POST", "/v1/events", h, table.concat(t))
end

function response(status, headers, body)
    if status == 200 then
        ok200 = ok200 + 1
        local a = tonumber(body:match('"accepted":%s*(%d+)'))
        if a ~= BATCH then badacc = badacc + 1 end
        acked[#acked + 1] = headers["X-Request-Id"] or headers["x-request-id"] or "?"
    else
        non200 = non200 + 1
    end
end

function done(summary, latency, requests)
    local f = assert(io.open(os.getenv("ACK_FILE"), "w"))
    local s, o, n, b = 0, 0, 0, 0
    for _, th in ipairs(threads) do
        s = s + (th:get("sent") or 0)
        o = o + (th:get("ok200") or 0)
        n = n + (th:get("non200") or 0)
        b = b + (th:get("badacc") or 0)
        for _, id in ipairs(th:get("acked") or {}) do f:write(id, "\n") end
    end
    f:close()
    local g = assert(io.open(os.getenv("ACK_FILE") .. ".sum", "w"))
    g:write(string.format("sent %d\nok200 %d\nnon200 %d\nbadacc %d\ncompleted %d\n", s, o, n, b,
        summary.requests))
    g:write(string.format("p50us %.0f\np99us %.0f\n", latency:percentile(50), latency:percentile(99)))
    g:close()
end
LUA

# ---------------------------------------------------------------- header

PGVER=$("$PGBIN/postgres" --version | awk '{print $3}')
echo "siyu ingest benchmark — siyu POST /v1/events vs PostgreSQL $PGVER COPY, $(wrk --version 2>&1 | head -1 | awk '{print $1, $2}')"
echo "date $(date -u +%Y-%m-%dT%H:%MZ), nproc $(nproc), kernel $(uname -r), $("$SIYU" version 2>/dev/null | head -1)"
echo "source $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown), filesystem of $T: $(df -T "$T" | awk 'NR==2 {print $2}')"
echo "store: siyu demo, $CUSTOMERS customers, 1 day ($DEMO_EVENTS demo events); siyu on 127.0.0.1:$PORT (sync=full, access log off)"
echo "load:  wrk -t$THREADS -c$CONNS -d${DURATION}s --latency, $BATCH distinct events per POST"

# ---------------------------------------------------------------- siyu run

export ACK_FILE="$T/acked"
thread_cpu "$SIYU_PID" >"$T/cpu0"
PERF_PID=""
if [ -n "${PERF_OUT:-}" ]; then   # a CPU profile of the server during the run
    perf record -q -F 499 -g -p "$SIYU_PID" -o "$PERF_OUT" -- sleep "$DURATION" 2>/dev/null &
    PERF_PID=$!
fi
wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency -s "$T/ingest.lua" \
    -H "Authorization: Bearer $KEY" "$URL/v1/events" -- "$BATCH" "$CUSTOMERS" >"$T/wrk.txt" 2>&1 ||
    { cat "$T/wrk.txt" >&2; die "wrk failed"; }
[ -n "$PERF_PID" ] && wait "$PERF_PID"
kill -0 "$SIYU_PID" 2>/dev/null || die "siyu died during the run"
thread_cpu "$SIYU_PID" >"$T/cpu1"
[ -f "$ACK_FILE.sum" ] || { cat "$T/wrk.txt" >&2; die "the wrk script wrote no summary"; }
sum() { awk -v k="$1" '$1 == k { print $2 }' "$ACK_FILE.sum"; }
SENT=$(sum sent) OK200=$(sum ok200) NON200=$(sum non200) BADACC=$(sum badacc) COMPLETED=$(sum completed)
P50=$(awk -v v="$(sum p50us)" 'BEGIN { printf "%.1f", v / 1000 }')
P99=$(awk -v v="$(sum p99us)" 'BEGIN { printf "%.1f", v / 1000 }')
RPS=$(awk '/^Requests\/sec:/ { print $2 }' "$T/wrk.txt")
SECS=$(awk '/requests in/ { for (i = 1; i <= NF; i++) if ($i == "in") { v = $(i + 1); sub(/,$/, "", v); print v } }' "$T/wrk.txt")
SOCKERR=$(awk '/Socket errors:/ { n = 0; for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+,?$/) n += $i; print n }' "$T/wrk.txt")
SOCKERR=${SOCKERR:-0}

# Stop siyu (graceful: in-flight batches finish) and check its store.
wal_keep "$T/data"
stop_siyu
FAILED=0
check() { # check OK? MESSAGE
    if [ "$1" -eq 1 ]; then echo "  check ok:   $2"; else echo "  check FAIL: $2"; FAILED=1; fi
}
sqlite3 "$DB" "SELECT substr(event_id, 1, length(event_id) - 4), count(*) FROM events
               WHERE tenant_id = 'demo' AND event_id LIKE 'wrk%' GROUP BY 1 ORDER BY 1" \
    | tr '|' ' ' >"$T/stored"
STORED=$(awk '{ n += $2 } END { print n + 0 }' "$T/stored")
STORED_BATCHES=$(wc -l <"$T/stored")
PARTIAL=$(awk -v b="$BATCH" '$2 != b' "$T/stored" | wc -l)
sort -u "$ACK_FILE" | grep -v '^$' >"$T/acked.sorted" || true
ACKED_IDS=$(wc -l <"$T/acked.sorted")
# acknowledged batches missing (or short) in the store
LOST=$(awk -v b="$BATCH" 'NR == FNR { s[$1] = $2; next } s[$1] != b' "$T/stored" "$T/acked.sorted" | wc -l)
# stored batches never answered 200 within the run
UNACKED=$(awk 'NR == FNR { a[$1] = 1; next } !($1 in a)' "$T/acked.sorted" "$T/stored" | wc -l)
INFLIGHT=$((SENT - OK200 - NON200))

echo
echo "siyu: wrk: $COMPLETED responses in $SECS ($RPS req/s), $OK200 x 200, $NON200 non-200, socket errors $SOCKERR;"
echo "      requests built by wrk $SENT, of them unanswered when wrk stopped $INFLIGHT"
echo "siyu: store after a graceful stop: $STORED rows in $STORED_BATCHES batches (+ $DEMO_EVENTS demo events)"
check "$([ "$NON200" -eq 0 ] && echo 1 || echo 0)" "every response was 200 ($NON200 were not)"
check "$([ "$SOCKERR" -eq 0 ] && echo 1 || echo 0)" "no socket errors ($SOCKERR)"
check "$([ "$BADACC" -eq 0 ] && echo 1 || echo 0)" "every 200 said \"accepted\": $BATCH ($BADACC did not)"
check "$([ "$ACKED_IDS" -eq "$OK200" ] && echo 1 || echo 0)" "every 200 echoed its own batch id ($ACKED_IDS distinct ids for $OK200 answers)"
check "$([ "$LOST" -eq 0 ] && echo 1 || echo 0)" "every batch answered 200 is stored whole: $LOST lost or short"
check "$([ "$PARTIAL" -eq 0 ] && echo 1 || echo 0)" "no batch is stored in part: $PARTIAL partial"
check "$([ "$UNACKED" -le "$INFLIGHT" ] && [ "$UNACKED" -le "$CONNS" ] && echo 1 || echo 0)" \
    "stored batches without a 200 ($UNACKED) <= unanswered requests ($INFLIGHT) and <= connections ($CONNS): in flight when wrk stopped"
check "$([ "$STORED" -eq $(((OK200 + UNACKED) * BATCH)) ] && echo 1 || echo 0)" \
    "stored rows = $BATCH x (200 answers + stored in-flight batches) = $BATCH x ($OK200 + $UNACKED) = $(((OK200 + UNACKED) * BATCH))"
[ "$STORED" -gt 0 ] || die "siyu stored nothing"
SIYU_ROWS_PER_S=$(awk -v r="$OK200" -v b="$BATCH" -v s="$SECS" 'BEGIN {
    sub(/s$/, "", s); if (s ~ /m$/) { sub(/m$/, "", s); s *= 60 } printf "%.0f", r * b / s }')
printf 'siyu: %s rows/s (%s x 200 x %d rows / %s), p50 %s ms, p99 %s ms per %d-event batch\n' \
    "$SIYU_ROWS_PER_S" "$OK200" "$BATCH" "$SECS" "$P50" "$P99" "$BATCH"
echo "siyu: $(cpu_per_op "$T/cpu0" "$T/cpu1" "$(((OK200 + UNACKED) * BATCH / 1000))" "1,000 events")"

# ---------------------------------------------------------------- PostgreSQL

# The same rows siyu stored during the run, exported as CSV (NULL = empty).
sqlite3 -csv "$DB" "SELECT tenant_id, event_id, customer_no, name, ts, dwell_ms, props, received_at
                    FROM events WHERE tenant_id = 'demo' AND event_id LIKE 'wrk%'" >"$T/events.csv"
ROWS=$(wc -l <"$T/events.csv")
[ "$ROWS" -eq "$STORED" ] || die "CSV holds $ROWS rows, siyu stored $STORED"
CSV_MB=$(awk -v b="$(stat -c %s "$T/events.csv")" 'BEGIN { printf "%.1f", b / 1048576 }')

mkdir -p "$T/pg"
[ "$(id -u)" -eq 0 ] && chown postgres "$T/pg" && chmod 755 "$T" && chmod 644 "$T/events.csv"
pgrun "$PGBIN/initdb -D $T/pg/db -A trust -U postgres" >"$T/pg-init.log" 2>&1 ||
    { cat "$T/pg-init.log" >&2; die "initdb failed"; }
PG_STARTED=1
pgrun "$PGBIN/pg_ctl -D $T/pg/db -o '-p 55439 -k $T/pg -c listen_addresses=' -l $T/pg/log -w start" >/dev/null ||
    { cat "$T/pg/log" >&2; die "PostgreSQL did not start"; }
PSQL=(psql -h "$T/pg" -p 55439 -U postgres -X -v ON_ERROR_STOP=1 -q)
"${PSQL[@]}" -c "CREATE DATABASE siyu"
"${PSQL[@]}" -d siyu <<'SQL'
CREATE TABLE events (
    tenant_id    TEXT NOT NULL,
    event_id     TEXT NOT NULL,
    customer_no  TEXT NOT NULL,
    name         TEXT NOT NULL,
    ts           BIGINT NOT NULL,
    dwell_ms     BIGINT,
    props        TEXT,
    received_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, event_id)
);
CREATE INDEX events_timeline ON events (tenant_id, customer_no, ts, event_id);
SQL
SETTINGS=$("${PSQL[@]}" -d siyu -tAc "SELECT string_agg(name || '=' || setting, ', ' ORDER BY name) FROM pg_settings
                                       WHERE name IN ('fsync', 'synchronous_commit', 'wal_level', 'full_page_writes',
                                                      'shared_buffers', 'max_wal_size', 'wal_sync_method')")
# psql's \timing measures the \copy itself (client reads the file, server
# parses, inserts, maintains both indexes, commits with a WAL fsync).
"${PSQL[@]}" -d siyu -c '\timing on' -c "\\copy events FROM '$T/events.csv' CSV" >"$T/copy.txt" 2>&1 ||
    { cat "$T/copy.txt" >&2; die "COPY failed"; }
COPY_MS=$(awk '/^Time:/ { print $2 }' "$T/copy.txt")
[ -n "$COPY_MS" ] || { cat "$T/copy.txt" >&2; die "no timing from psql"; }
PG_ROWS=$("${PSQL[@]}" -d siyu -tAc "SELECT count(*) FROM events")
check "$([ "$PG_ROWS" -eq "$ROWS" ] && echo 1 || echo 0)" "PostgreSQL holds the $ROWS rows after COPY ($PG_ROWS)"
stop_pg
PG_ROWS_PER_S=$(awk -v r="$ROWS" -v ms="$COPY_MS" 'BEGIN { printf "%.0f", r / (ms / 1000) }')
echo
echo "PostgreSQL $PGVER: $SETTINGS"
printf 'PostgreSQL: one \\copy of %d rows (%s MiB CSV) in %.0f ms: %s rows/s\n' "$ROWS" "$CSV_MB" "$COPY_MS" "$PG_ROWS_PER_S"

# ---------------------------------------------------------------- result

RATIO=$(awk -v a="$SIYU_ROWS_PER_S" -v b="$PG_ROWS_PER_S" 'BEGIN { printf "%.2f", a / b }')
VERDICT=$(awk -v r="$RATIO" -v g="$GOAL" 'BEGIN { print (r + 0 >= g + 0) ? "meets" : "BELOW" }')
echo
echo "| side | what | rows | rows/s | p50 ms | p99 ms |"
echo "|---|---|---:|---:|---:|---:|"
printf '| siyu | POST /v1/events, %d conns, %d-event batches, %s | %d | %s | %s | %s |\n' \
    "$CONNS" "$BATCH" "$SECS" "$((OK200 * BATCH))" "$SIYU_ROWS_PER_S" "$P50" "$P99"
printf '| PostgreSQL %s | one \\copy, %.0f ms | %d | %s | — | — |\n' "$PGVER" "$COPY_MS" "$ROWS" "$PG_ROWS_PER_S"
echo
echo "siyu/COPY rows/s: $RATIO ($VERDICT goal >= $GOAL)"
wal_pages "$T/data"
if [ "$FAILED" -ne 0 ]; then
    echo "ingest.sh: some checks FAILED (see above)" >&2
    exit 1
fi

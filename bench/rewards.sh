#!/bin/bash
# bench/rewards.sh — points-mall exchanges per second: siyu against the same
# operation as a Redis Lua script, at 64 concurrent clients.
#
# siyu: a demo bank (DEMO_CUSTOMERS customers), a coupon item with a large
# stock and a mall listing priced at 1 point without limits; the first
# POINTED customers earn enough points up front (not measured).  wrk then
# drives POST /v1/mall/exchange (an app key) with 64 keep-alive connections, each
# request for a random one of those customers: every exchange checks the
# limits, debits the points through the ledger (a spend entry drawn from the
# customer's lots), takes a unit of stock and writes the grant, and is
# committed (synchronous=FULL: fsync at every group commit) before its 201.
#
# Redis: redis-server (Debian redis-server 7) started here on a loopback
# port with appendonly yes and appendfsync always, no RDB snapshots; the
# same operation as one Lua script (EVALSHA) — check the customer's limit,
# check and debit the points, check and decrement the stock, record the
# grant as a hash under a new id — driven by redis-benchmark with 64
# clients over 100,000 customers who all hold points.
#
# Prints exchanges/s, p50 and p99 of both and the ratio siyu/Redis.  Every
# siyu answer must be 201 (no non-2xx, no socket errors), and `siyu check`
# must pass on the data afterwards; otherwise the script exits 1.
#
#   bench/rewards.sh                 10 s per run
#   DURATION=30 bench/rewards.sh
#   PERF_OUT=/tmp/rw.perf bench/rewards.sh   also records the server's CPU profile
#                                             (PERF_ARGS, default "-g")
#   WAL_PAGES=1 bench/rewards.sh             also prints the pages the commits wrote,
#                                             by table and index (bench/walpages.py)
#
# Needs: wrk, curl (scripts/deps.sh bench), redis-server (installed here
# when missing, as bench/ingest.sh installs PostgreSQL).
set -eu

DURATION=${DURATION:-10}
CONNS=64
THREADS=2
DEMO_CUSTOMERS=${DEMO_CUSTOMERS:-20000}
POINTED=${POINTED:-2000}
REDIS_N=${REDIS_N:-200000}   # redis-benchmark requests (about DURATION seconds' worth)

cd "$(dirname "$0")/.."
ROOT=$(pwd)
. bench/lib.sh
scripts/deps.sh bench
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
if ! command -v redis-server >/dev/null || ! command -v redis-benchmark >/dev/null; then
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends redis-server >/dev/null ||
        { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends redis-server >/dev/null; }
fi
make -s siyu
SIYU="$ROOT/siyu"

T=$(mktemp -d "${TMPDIR:-/tmp}/siyu-rewards.XXXXXX")
SIYU_PID=""
REDIS_PID=""
cleanup() {
    [ -n "$SIYU_PID" ] && { kill -TERM "$SIYU_PID" 2>/dev/null || true; wait "$SIYU_PID" 2>/dev/null || true; }
    [ -n "$REDIS_PID" ] && { kill -TERM "$REDIS_PID" 2>/dev/null || true; wait "$REDIS_PID" 2>/dev/null || true; }
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
die() { echo "rewards.sh: $*" >&2; exit 1; }

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# ---------------------------------------------------------------- siyu
export SIYU_DATA_KEY=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
echo "==> siyu: demo bank of $DEMO_CUSTOMERS customers" >&2
"$SIYU" demo --data "$T/data" --tenant demo --customers "$DEMO_CUSTOMERS" --days 1 >/dev/null 2>&1 ||
    die "siyu demo failed"
KEY=$("$SIYU" key create --data "$T/data" --tenant demo --role admin --name bench 2>/dev/null | awk '{print $1}')
# the bank's app server exchanges (an app key: not audited, as in production)
APP=$("$SIYU" key create --data "$T/data" --tenant demo --role app --name bench-app 2>/dev/null | awk '{print $1}')
PORT=$(free_port)
"$SIYU" serve --data "$T/data" --listen "127.0.0.1:$PORT" --port-file "$T/port" \
    --log-level warn >"$T/siyu.log" 2>&1 &
SIYU_PID=$!
for _ in $(seq 1 500); do [ -s "$T/port" ] && break; sleep 0.02; done
[ -s "$T/port" ] || die "siyu did not start: $(tail -3 "$T/siyu.log")"
U="http://127.0.0.1:$PORT"
H="Authorization: Bearer $KEY"
post() {
    curl -sf -o /dev/null -X POST "$U$1" -H "$H" -H 'Content-Type: application/json' -d "$2" ||
        die "POST $1 $2 failed"
}
post /v1/benefits/items '{"code":"bench","name":"bench coupon","kind":"coupon","supplier":"wxpay","face_value":100,"cost_price":90,"params":{"threshold":0},"stock":1000000000,"validity_days":30}'
post /v1/mall/listings '{"code":"bench","item":"bench","title":"bench","point_type":"points","price":1}'
echo "==> siyu: $POINTED customers earn points" >&2
seq 1 "$POINTED" | xargs -P 16 -I{} sh -c \
    'curl -sf -o /dev/null -X POST "$0/v1/customers/$(printf C%08d {})/points:earn" -H "$1" \
         -d "{\"point_type\":\"points\",\"amount\":1000000000,\"source\":\"bench\"}" || echo fail' "$U" "$H" |
    grep -q fail && die "earning points failed"

cat >"$T/exchange.lua" <<EOF
local n = $POINTED
local threads = 0
function setup(thread)
    thread:set("id", threads)
    threads = threads + 1
end
function init(args)
    math.randomseed(os.time() * 100 + id)
end
request = function()
    local body = string.format('{"listing":"bench","customer_no":"C%08d"}', math.random(1, n))
    return wrk.format("POST", "/v1/mall/exchange", {["Authorization"] = "Bearer $APP",
        ["Content-Type"] = "application/json"}, body)
end
EOF
echo "==> siyu: warm-up (2 s), then ${DURATION} s of exchanges at $CONNS connections" >&2
wrk -t"$THREADS" -c"$CONNS" -d2s -s "$T/exchange.lua" "$U" >/dev/null
metric() { curl -s "$U/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
io_written() { awk '/^write_bytes/ {print $2}' "/proc/$SIYU_PID/io"; }
M0_N=$(metric siyu_store_commit_batch_size_sum); M0_C=$(metric siyu_store_commit_batch_size_count)
M0_T=$(metric siyu_store_commit_duration_seconds_sum); M0_S=$(metric siyu_store_commit_statement_duration_seconds_sum)
M0_W=$(io_written); M0_F=$(metric siyu_store_fsync_duration_seconds_count); M0_FS=$(metric siyu_store_fsync_duration_seconds_sum)
thread_cpu "$SIYU_PID" >"$T/cpu0"
PERF_PID=""
if [ -n "${PERF_OUT:-}" ]; then   # a CPU profile of the server during the measured run
    perf record -q -F 499 ${PERF_ARGS:--g} -p "$SIYU_PID" -o "$PERF_OUT" -- sleep "$DURATION" 2>/dev/null &
    PERF_PID=$!
fi
wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency -s "$T/exchange.lua" "$U" >"$T/wrk.txt"
[ -n "$PERF_PID" ] && wait "$PERF_PID"
M1_N=$(metric siyu_store_commit_batch_size_sum); M1_C=$(metric siyu_store_commit_batch_size_count)
M1_T=$(metric siyu_store_commit_duration_seconds_sum); M1_S=$(metric siyu_store_commit_statement_duration_seconds_sum)
M1_W=$(io_written); M1_F=$(metric siyu_store_fsync_duration_seconds_count); M1_FS=$(metric siyu_store_fsync_duration_seconds_sum)
thread_cpu "$SIYU_PID" >"$T/cpu1"
WRITER=$(awk -v n="$((M1_N - M0_N))" -v c="$((M1_C - M0_C))" -v t="$M1_T" -v t0="$M0_T" \
    -v s="$M1_S" -v s0="$M0_S" -v w="$((M1_W - M0_W))" -v f="$((M1_F - M0_F))" -v fs="$M1_FS" -v fs0="$M0_FS" 'BEGIN {
    printf "%d mutations in %d commits (%.1f per commit); a batch %.2f ms, of it COMMIT %.2f ms; %d fsyncs by the syncer, %.2f ms each; %.1f KiB written per mutation",
        n, c, n / c, (t - t0) * 1000 / c, (s - s0) * 1000 / c, f, f ? (fs - fs0) * 1000 / f : 0, w / n / 1024 }')
FAILED=0
grep -q "Non-2xx" "$T/wrk.txt" && { echo "rewards.sh: siyu answered non-2xx:" >&2; grep Non-2xx "$T/wrk.txt" >&2; FAILED=1; }
grep -q "Socket errors" "$T/wrk.txt" && { grep "Socket errors" "$T/wrk.txt" >&2; FAILED=1; }
S_RPS=$(awk '/Requests\/sec/ {print $2}' "$T/wrk.txt")
S_N=$(awk '/requests in/ {print $1}' "$T/wrk.txt")
CPU=$(cpu_per_op "$T/cpu0" "$T/cpu1" "$S_N" exchange)
S_P50=$(to_ms "$(awk '$1 == "50%" {print $2}' "$T/wrk.txt")")
S_P99=$(to_ms "$(awk '$1 == "99%" {print $2}' "$T/wrk.txt")")
wal_keep "$T/data"
kill -TERM "$SIYU_PID"; wait "$SIYU_PID" 2>/dev/null || true; SIYU_PID=""
if ! "$SIYU" check --data "$T/data" --tenant demo >"$T/check.txt" 2>&1; then
    echo "rewards.sh: siyu check failed:" >&2; cat "$T/check.txt" >&2; FAILED=1
fi
GRANTS=$(sqlite3 "$T/data/siyu.db" "SELECT COUNT(*) FROM benefit_grants WHERE item = 'bench'")

# ---------------------------------------------------------------- Redis
RPORT=$(free_port)
mkdir -p "$T/redis"
redis-server --port "$RPORT" --bind 127.0.0.1 --dir "$T/redis" --appendonly yes \
    --appendfsync always --save '' --daemonize no --logfile "$T/redis.log" &
REDIS_PID=$!
R="redis-cli -p $RPORT"
for _ in $(seq 1 200); do $R ping >/dev/null 2>&1 && break; sleep 0.02; done
$R ping >/dev/null || die "redis-server did not start"
# 100,000 customers C000000000000 .. with points (redis-benchmark's
# __rand_int__ is 12 digits), a large stock.
$R eval "for i = 0, 99999 do redis.call('HSET', KEYS[1], string.format('C%012d', i), 1000000000) end return 1" 1 pts >/dev/null
$R set stock 1000000000 >/dev/null
SHA=$($R script load "
local c, price, limit = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
if tonumber(redis.call('HGET', KEYS[3], c) or '0') >= limit then return redis.error_reply('limit-reached') end
local bal = tonumber(redis.call('HGET', KEYS[2], c) or '0')
if bal < price then return redis.error_reply('insufficient-points') end
if tonumber(redis.call('GET', KEYS[1]) or '0') <= 0 then return redis.error_reply('out-of-stock') end
redis.call('DECR', KEYS[1])
redis.call('HINCRBY', KEYS[2], c, -price)
redis.call('HINCRBY', KEYS[3], c, 1)
local id = redis.call('INCR', KEYS[4])
redis.call('HSET', 'grant:' .. id, 'customer', c, 'item', 'bench', 'points', price, 'status', 'issued')
return id")
echo "==> redis: warm-up, then $REDIS_N exchanges at $CONNS clients (appendfsync always)" >&2
redis-benchmark -p "$RPORT" -c "$CONNS" -n 20000 -r 100000 EVALSHA "$SHA" 4 stock pts limits seq C__rand_int__ 1 1000000000 >/dev/null
redis-benchmark -p "$RPORT" -c "$CONNS" -n "$REDIS_N" -r 100000 --csv \
    EVALSHA "$SHA" 4 stock pts limits seq C__rand_int__ 1 1000000000 >"$T/redis.csv"
R_RPS=$(awk -F'"' 'NR == 2 {print $4}' "$T/redis.csv")
R_P50=$(awk -F'"' 'NR == 2 {print $10}' "$T/redis.csv")
R_P99=$(awk -F'"' 'NR == 2 {print $14}' "$T/redis.csv")
R_GRANTS=$($R get seq)
[ "$($R get stock)" -eq $((1000000000 - R_GRANTS)) ] || { echo "rewards.sh: redis stock does not add up" >&2; FAILED=1; }

# ---------------------------------------------------------------- report
RATIO=$(awk -v a="$S_RPS" -v b="$R_RPS" 'BEGIN { printf "%.2f", a / b }')
printf '\n%-44s %12s %9s %9s\n' "mall exchange, $CONNS concurrent clients" "exchanges/s" "p50 ms" "p99 ms"
printf '%-44s %12.0f %9s %9s\n' "siyu (HTTP, SQLite, fsync per group commit)" "$S_RPS" "$S_P50" "$S_P99"
printf '%-44s %12.0f %9s %9s\n' "Redis Lua (appendfsync always)" "$R_RPS" "$R_P50" "$R_P99"
printf 'ratio siyu/Redis: %s   (goal >= 1.0 with siyu p99 <= 10 ms)\n' "$RATIO"
printf 'siyu writer: %s\n' "$WRITER"
printf 'siyu threads: %s\n' "$CPU"
printf 'grants written: siyu %s in %s s, Redis %s; siyu check: %s\n' "$GRANTS" "$DURATION" "$R_GRANTS" \
    "$(tail -1 "$T/check.txt")"
wal_pages "$T/data"
exit $FAILED

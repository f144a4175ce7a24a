#!/bin/bash
# bench/lottery.sh — lottery draws per second: siyu against the same steps
# as a Redis Lua script, at 64 concurrent clients.
#
# siyu: a demo bank (DEMO_CUSTOMERS customers), a coupon item with a large
# stock, a running lottery campaign (approved by a second key) whose prize
# table has a coupon (weight 1), 10 points (weight 1) and "thanks" (weight
# 2), each draw costing 1 point; the first POINTED customers earn enough
# points up front (not measured).  wrk then drives POST
# /v1/campaigns/bench/draw (an app key, a fresh Idempotency-Key per request)
# with 64 keep-alive connections for random customers.  Every draw is one
# writer mutation: the campaign's admission checks, the day's draw count and
# the campaign's limits, the cost spent through the points ledger, a random
# value (libsodium) over the weights, the prize's stock, the coupon granted
# through the catalogue or the points earned through the ledger, the budget,
# the draw's journal row and the idempotency record — committed
# (synchronous=FULL: fsync at every group commit) before its 201.
#
# Redis: redis-server started here on a loopback port with appendonly yes
# and appendfsync always, no RDB snapshots; the same steps as one Lua script
# (EVALSHA): the customer's daily draw count (limit check), check and debit
# the points, a weighted pick from a random value, check and decrement the
# prize's stock (out of stock: thanks), the grant or points, a draw record
# (journal) under a new id, and the count — driven by redis-benchmark with
# 64 clients over 100,000 customers who all hold points.
#
# Prints draws/s, p50 and p99 of both and the ratio siyu/Redis, and from
# siyu's /metrics and /proc: the writer's batches, the writer's time to
# apply one draw (a batch's time less its COMMIT, per mutation; the
# writer's own work per draw) and the whole server's CPU per draw.  Every siyu
# answer must be 201, and `siyu check` must pass afterwards; otherwise the
# script exits 1.
#
#   bench/lottery.sh                 10 s per run
#   DURATION=30 bench/lottery.sh
#   PERF_OUT=/tmp/lot.perf bench/lottery.sh   also records the server's CPU profile
#                                             (PERF_ARGS, default "-g")
#   WAL_PAGES=1 bench/lottery.sh             also prints the pages the commits wrote,
#                                             by table and index (bench/walpages.py)
set -eu

DURATION=${DURATION:-10}
CONNS=64
THREADS=2
DEMO_CUSTOMERS=${DEMO_CUSTOMERS:-20000}
POINTED=${POINTED:-2000}
REDIS_N=${REDIS_N:-200000}

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

T=$(mktemp -d "${TMPDIR:-/tmp}/siyu-lottery.XXXXXX")
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
die() { echo "lottery.sh: $*" >&2; exit 1; }

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

echo "==> machine load: $(uptime)" >&2

# ---------------------------------------------------------------- siyu
export SIYU_DATA_KEY=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
echo "==> siyu: demo bank of $DEMO_CUSTOMERS customers" >&2
"$SIYU" demo --data "$T/data" --tenant demo --customers "$DEMO_CUSTOMERS" --days 1 >/dev/null 2>&1 ||
    die "siyu demo failed"
KEY=$("$SIYU" key create --data "$T/data" --tenant demo --role admin --name bench 2>/dev/null | awk '{print $1}')
KEY2=$("$SIYU" key create --data "$T/data" --tenant demo --role admin --name checker 2>/dev/null | awk '{print $1}')
APP=$("$SIYU" key create --data "$T/data" --tenant demo --role app --name bench-app 2>/dev/null | awk '{print $1}')
PORT=$(free_port)
"$SIYU" serve --data "$T/data" --listen "127.0.0.1:$PORT" --port-file "$T/port" \
    --log-level warn >"$T/siyu.log" 2>&1 &
SIYU_PID=$!
for _ in $(seq 1 500); do [ -s "$T/port" ] && break; sleep 0.02; done
[ -s "$T/port" ] || die "siyu did not start: $(tail -3 "$T/siyu.log")"
U="http://127.0.0.1:$PORT"
req() {   # method path key body
    curl -sf -o /dev/null -X "$1" "$U$2" -H "Authorization: Bearer $3" -H 'Content-Type: application/json' \
        ${4:+-d "$4"} || die "$1 $2 ${4:-} failed"
}
START=$(date -u -d '-1 day' +%Y-%m-%dT%H:%M:%SZ)
END=$(date -u -d '+30 days' +%Y-%m-%dT%H:%M:%SZ)
req POST /v1/benefits/items "$KEY" '{"code":"bench","name":"bench coupon","kind":"coupon","supplier":"wxpay","face_value":100,"cost_price":90,"params":{"threshold":0},"stock":1000000000,"validity_days":30}'
req POST /v1/campaigns "$KEY" "{\"id\":\"bench\",\"name\":\"bench lottery\",\"type\":\"lottery\",\"starts_at\":\"$START\",\"ends_at\":\"$END\",\"point_type\":\"points\"}"
req PUT /v1/campaigns/bench/prizes "$KEY" '{"cost":{"points":1},"thanks":{"weight":2},"prizes":[{"code":"coupon","name":"coupon","weight":1,"stock":1000000000,"reward":{"item":"bench"}},{"code":"pts","name":"10 points","weight":1,"stock":1000000000,"reward":{"points":10}}]}'
req POST /v1/campaigns/bench:submit "$KEY"
req POST /v1/campaigns/bench:approve "$KEY2"
echo "==> siyu: $POINTED customers earn points" >&2
seq 1 "$POINTED" | xargs -P 16 -I{} sh -c \
    'curl -sf -o /dev/null -X POST "$0/v1/customers/$(printf C%08d {})/points:earn" -H "$1" \
         -d "{\"point_type\":\"points\",\"amount\":1000000000,\"source\":\"bench\"}" || echo fail' "$U" "Authorization: Bearer $KEY" |
    grep -q fail && die "earning points failed"

cat >"$T/draw.lua" <<EOF2
local n = $POINTED
local threads = 0
function setup(thread)
    thread:set("id", threads)
    threads = threads + 1
end
function init(args)
    math.randomseed(os.time() * 100 + id)
    seq = 0
    run = math.random(1, 1000000000)
end
request = function()
    seq = seq + 1
    local body = string.format('{"customer_no":"C%08d"}', math.random(1, n))
    return wrk.format("POST", "/v1/campaigns/bench/draw", {["Authorization"] = "Bearer $APP",
        ["Content-Type"] = "application/json",
        ["Idempotency-Key"] = string.format("b-%d-%d-%d", id, run, seq)}, body)
end
EOF2
echo "==> siyu: warm-up (2 s), then ${DURATION} s of draws at $CONNS connections" >&2
wrk -t"$THREADS" -c"$CONNS" -d2s -s "$T/draw.lua" "$U" >/dev/null
metric() { curl -s "$U/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
M0_N=$(metric siyu_store_commit_batch_size_sum); M0_C=$(metric siyu_store_commit_batch_size_count)
M0_T=$(metric siyu_store_commit_duration_seconds_sum)
M0_S=$(metric siyu_store_commit_statement_duration_seconds_sum)
thread_cpu "$SIYU_PID" >"$T/cpu0"
PERF_PID=""
if [ -n "${PERF_OUT:-}" ]; then
    perf record -q -F 499 ${PERF_ARGS:--g} -p "$SIYU_PID" -o "$PERF_OUT" -- sleep "$DURATION" 2>/dev/null &
    PERF_PID=$!
fi
wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency -s "$T/draw.lua" "$U" >"$T/wrk.txt"
[ -n "$PERF_PID" ] && wait "$PERF_PID"
M1_N=$(metric siyu_store_commit_batch_size_sum); M1_C=$(metric siyu_store_commit_batch_size_count)
M1_T=$(metric siyu_store_commit_duration_seconds_sum)
M1_S=$(metric siyu_store_commit_statement_duration_seconds_sum)
thread_cpu "$SIYU_PID" >"$T/cpu1"
WRITER=$(awk -v n="$((M1_N - M0_N))" -v c="$((M1_C - M0_C))" -v t="$M1_T" -v t0="$M0_T" \
    -v s="$M1_S" -v s0="$M0_S" 'BEGIN {
    printf "%d mutations in %d commits (%.1f per commit); a batch %.2f ms", n, c, n / c, (t - t0) * 1000 / c
    printf " (its COMMIT %.2f ms); applying a draw %.1f us in the writer",
        (s - s0) * 1000 / c, ((t - t0) - (s - s0)) * 1e6 / n }')
FAILED=0
grep -q "Non-2xx" "$T/wrk.txt" && { echo "lottery.sh: siyu answered non-2xx:" >&2; grep Non-2xx "$T/wrk.txt" >&2; FAILED=1; }
grep -q "Socket errors" "$T/wrk.txt" && { grep "Socket errors" "$T/wrk.txt" >&2; FAILED=1; }
S_RPS=$(awk '/Requests\/sec/ {print $2}' "$T/wrk.txt")
S_N=$(awk '/requests in/ {print $1}' "$T/wrk.txt")
CPU=$(cpu_per_op "$T/cpu0" "$T/cpu1" "$S_N" draw)
S_P50=$(to_ms "$(awk '$1 == "50%" {print $2}' "$T/wrk.txt")")
S_P99=$(to_ms "$(awk '$1 == "99%" {print $2}' "$T/wrk.txt")")
wal_keep "$T/data"
kill -TERM "$SIYU_PID"; wait "$SIYU_PID" 2>/dev/null || true; SIYU_PID=""
if ! "$SIYU" check --data "$T/data" --tenant demo >"$T/check.txt" 2>&1; then
    echo "lottery.sh: siyu check failed:" >&2; cat "$T/check.txt" >&2; FAILED=1
fi
DRAWS=$(sqlite3 "$T/data/siyu.db" "SELECT COUNT(*) || ' draws, ' || SUM(outcome = 'prize') || ' won' FROM lottery_draws WHERE campaign_id = 'bench'")

# ---------------------------------------------------------------- Redis
RPORT=$(free_port)
mkdir -p "$T/redis"
redis-server --port "$RPORT" --bind 127.0.0.1 --dir "$T/redis" --appendonly yes \
    --appendfsync always --save '' --daemonize no --logfile "$T/redis.log" &
REDIS_PID=$!
R="redis-cli -p $RPORT"
for _ in $(seq 1 200); do $R ping >/dev/null 2>&1 && break; sleep 0.02; done
$R ping >/dev/null || die "redis-server did not start"
$R eval "for i = 0, 99999 do redis.call('HSET', KEYS[1], string.format('C%012d', i), 1000000000) end return 1" 1 pts >/dev/null
$R hset stock coupon 1000000000 pts 1000000000 >/dev/null
# KEYS: pts, stock, draws (the day's count per customer), seq
# ARGV: customer, cost, max draws a day, a random value, day
SHA=$($R script load "
local c, cost, maxday, rnd, day = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
local dk = KEYS[3] .. ':' .. day
if tonumber(redis.call('HGET', dk, c) or '0') >= maxday then return redis.error_reply('limit-reached') end
local bal = tonumber(redis.call('HGET', KEYS[1], c) or '0')
if bal < cost then return redis.error_reply('insufficient-points') end
redis.call('HINCRBY', KEYS[1], c, -cost)
local r = rnd % 4
local prize = nil
if r < 1 then prize = 'coupon' elseif r < 2 then prize = 'pts' end
local reason = ''
if prize and tonumber(redis.call('HGET', KEYS[2], prize) or '0') <= 0 then prize = nil; reason = 'out-of-stock' end
local id = redis.call('INCR', KEYS[4])
if prize then
    redis.call('HINCRBY', KEYS[2], prize, -1)
    if prize == 'coupon' then
        redis.call('HSET', 'grant:' .. id, 'customer', c, 'item', 'bench', 'status', 'issued')
    else
        redis.call('HINCRBY', KEYS[1], c, 10)
    end
end
redis.call('HINCRBY', dk, c, 1)
redis.call('HSET', 'draw:' .. id, 'customer', c, 'version', 1, 'random', r, 'outcome', prize or 'thanks', 'reason', reason, 'cost', cost)
return id")
DAY=$(date -u +%Y-%m-%d)
echo "==> redis: warm-up, then $REDIS_N draws at $CONNS clients (appendfsync always)" >&2
redis-benchmark -p "$RPORT" -c "$CONNS" -n 20000 -r 100000 EVALSHA "$SHA" 4 pts stock draws seq C__rand_int__ 1 1000000000 __rand_int__ "$DAY" >/dev/null
redis-benchmark -p "$RPORT" -c "$CONNS" -n "$REDIS_N" -r 100000 --csv \
    EVALSHA "$SHA" 4 pts stock draws seq C__rand_int__ 1 1000000000 __rand_int__ "$DAY" >"$T/redis.csv"
R_RPS=$(awk -F'"' 'NR == 2 {print $4}' "$T/redis.csv")
R_P50=$(awk -F'"' 'NR == 2 {print $10}' "$T/redis.csv")
R_P99=$(awk -F'"' 'NR == 2 {print $14}' "$T/redis.csv")
R_DRAWS=$($R get seq)
R_WON=$(( 2000000000 - $($R hget stock coupon) - $($R hget stock pts) ))

# ---------------------------------------------------------------- report
RATIO=$(awk -v a="$S_RPS" -v b="$R_RPS" 'BEGIN { printf "%.2f", a / b }')
printf '\n%-44s %12s %9s %9s\n' "lottery draw, $CONNS concurrent clients" "draws/s" "p50 ms" "p99 ms"
printf '%-44s %12.0f %9s %9s\n' "siyu (HTTP, SQLite, fsync per group commit)" "$S_RPS" "$S_P50" "$S_P99"
printf '%-44s %12.0f %9s %9s\n' "Redis Lua (appendfsync always)" "$R_RPS" "$R_P50" "$R_P99"
printf 'ratio siyu/Redis: %s   (goal >= 1.0 with siyu p99 <= 10 ms)\n' "$RATIO"
printf 'siyu writer: %s\n' "$WRITER"
printf 'siyu threads: %s\n' "$CPU"
printf 'siyu: %s in %s s (plus warm-up); Redis: %s draws, %s won; siyu check: %s\n' "$DRAWS" "$DURATION" \
    "$R_DRAWS" "$R_WON" "$(tail -1 "$T/check.txt")"
echo "machine load after: $(uptime)"
wal_pages "$T/data"
exit $FAILED

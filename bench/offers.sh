#!/bin/bash
# bench/offers.sh — GET /v1/customers/{no}/offers (千人千面): latency with
# 200 running campaigns on a demo bank.
#
# A demo bank of DEMO_CUSTOMERS customers (`siyu demo`, one day of
# behaviour) gets 20 saved segments (risk levels, AUM tiers, payroll, credit
# card, gender, birth years, and two that combine them) and CAMPAIGNS
# running campaigns, approved by a second admin key: in turn check-in, task,
# lottery (with a prize table of points), coupon-drop (two waves a day of a
# bench coupon) and referral campaigns, two thirds with one of the segments
# as audience, a quarter with a suitability rule, all with a 5% holdout,
# priorities 0..9, ends spread over the next 60 days.  On an existing store
# (DATA_DIR) the campaigns of an earlier run are ended first, so that
# CAMPAIGNS is what runs.  The demo's benefits catalogue adds its packages
# and mall listings.  wrk then asks for the offers of a random customer
# (C00000001 .. C<N>) with an app key at each of CONNS keep-alive
# connections for DURATION seconds, after a warm-up.  Every answer must be
# 200.
#
# Prints requests/s, p50 and p99 per connection count, the size of an
# answer, and the machine's load (uptime).
#
#   bench/offers.sh                                  100,000 customers, 10 s per run
#   DEMO_CUSTOMERS=10000000 bench/offers.sh          the 10M-customer bank (long to generate)
#   CONNS="1 16 64" DURATION=30 bench/offers.sh
#   DATA_DIR=/tmp/sy-stores/n10000000 DEMO_CUSTOMERS=10000000 bench/offers.sh
#                                                    an existing demo store (made by
#                                                    `siyu demo` with its own data.key,
#                                                    e.g. bench/segments.sh's); it keeps
#                                                    the segments and campaigns added
#
# The demo bank is generated at nice 10 (it is not measured).
#
# Needs: wrk, curl (scripts/deps.sh bench).
set -eu

DURATION=${DURATION:-10}
CONNS=${CONNS:-"1 8 64"}
THREADS=2
DEMO_CUSTOMERS=${DEMO_CUSTOMERS:-100000}
CAMPAIGNS=${CAMPAIGNS:-200}

cd "$(dirname "$0")/.."
ROOT=$(pwd)
. bench/lib.sh
scripts/deps.sh bench
make -s siyu
SIYU="$ROOT/siyu"

T=$(mktemp -d "${TMPDIR:-/tmp}/siyu-offers.XXXXXX")
SIYU_PID=""
cleanup() {
    [ -n "$SIYU_PID" ] && { kill -TERM "$SIYU_PID" 2>/dev/null || true; wait "$SIYU_PID" 2>/dev/null || true; }
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
die() { echo "offers.sh: $*" >&2; exit 1; }
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

DATA_DIR=${DATA_DIR:-}
SERVE_DEMO=()
if [ -n "$DATA_DIR" ]; then
    # an existing demo store, sealed with its own data.key
    unset SIYU_DATA_KEY
    rm -rf "$T/data"; ln -s "$DATA_DIR" "$T/data"
    SERVE_DEMO=(--demo)
    echo "==> the demo bank in $DATA_DIR ($DEMO_CUSTOMERS customers)" >&2
else
    export SIYU_DATA_KEY=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
    echo "==> demo bank of $DEMO_CUSTOMERS customers" >&2
    T0=$(date +%s)
    nice -n 10 "$SIYU" demo --data "$T/data" --tenant demo --customers "$DEMO_CUSTOMERS" --days 1 >/dev/null 2>&1 ||
        die "siyu demo failed"
    echo "    generated in $(( $(date +%s) - T0 )) s" >&2
fi
KEY=$("$SIYU" key create --data "$T/data" --tenant demo --role admin --name bench 2>/dev/null | awk '{print $1}')
KEY2=$("$SIYU" key create --data "$T/data" --tenant demo --role admin --name checker 2>/dev/null | awk '{print $1}')
APP=$("$SIYU" key create --data "$T/data" --tenant demo --role app --name bench-app 2>/dev/null | awk '{print $1}')
PORT=$(free_port)
T0=$(date +%s)
"$SIYU" serve --data "$T/data" --listen "127.0.0.1:$PORT" --port-file "$T/port" \
    --log-level warn "${SERVE_DEMO[@]}" >"$T/siyu.log" 2>&1 &
SIYU_PID=$!
for _ in $(seq 1 30000); do [ -s "$T/port" ] && break; sleep 0.02; done
[ -s "$T/port" ] || die "siyu did not start: $(tail -3 "$T/siyu.log")"
echo "    serving after $(( $(date +%s) - T0 )) s (index built)" >&2
U="http://127.0.0.1:$PORT"
post() {   # key path body [method]
    curl -sf -o /dev/null -X "${4:-POST}" "$U$2" -H "Authorization: Bearer $1" \
        -H 'Content-Type: application/json' -d "$3" || die "${4:-POST} $2 $3 failed"
}
ensure() {   # key path body: created now, or there from an earlier run (409)
    code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$U$2" -H "Authorization: Bearer $1" \
        -H 'Content-Type: application/json' -d "$3")
    [ "$code" = 201 ] || [ "$code" = 409 ] || die "POST $2 $3: $code"
}

echo "==> 20 segments, $CAMPAIGNS campaigns" >&2
SEGS=(
    'risk_level >= R2' 'risk_level >= R3' 'risk_level >= R4' 'risk_level = R5'
    'aum >= 1000000' 'aum >= 5000000' 'aum >= 50000000' 'aum < 1000000'
    'payroll = true' 'credit_card = true' 'payroll = true and credit_card = true'
    'gender = F' 'gender = M' 'birth_year >= 1990' 'birth_year < 1970'
    'birth_year >= 1980 and birth_year < 1990' 'payroll = true and aum >= 5000000'
    'risk_level >= R3 and aum >= 1000000' 'credit_card = false' 'not (payroll = true)'
)
for i in "${!SEGS[@]}"; do
    ensure "$KEY" /v1/segments "{\"id\":\"seg$i\",\"name\":\"seg$i\",\"expression\":\"${SEGS[$i]}\"}"
done
ensure "$KEY" /v1/point-types '{"code":"sun","name":"阳光值","expiry":"never"}'
ensure "$KEY" /v1/benefits/suppliers '{"code":"bench","name":"bench"}'
ensure "$KEY" /v1/benefits/items '{"code":"bench_cp","name":"bench coupon","kind":"coupon","supplier":"bench","face_value":500,"cost_price":450,"params":{"threshold":0},"stock":100000000,"validity_days":7}'
# an earlier run's campaigns (on DATA_DIR) stop, so that CAMPAIGNS run
curl -sf "$U/v1/campaigns?status=running" -H "Authorization: Bearer $KEY" |
    python3 -c 'import json,sys,re; [print(c["id"]) for c in json.load(sys.stdin)["items"] if re.match(r"^(o[0-9]+)?c[0-9]+$", c["id"])]' |
    while read -r old; do post "$KEY" "/v1/campaigns/$old:end" ''; done
RUN=$(date +%s)
NOW=$(date +%s)
START=$(date -u -d "@$((NOW - 86400))" +%Y-%m-%dT%H:%M:%SZ)
for i in $(seq 1 "$CAMPAIGNS"); do
    END=$(date -u -d "@$((NOW + 86400 * (1 + i % 60)))" +%Y-%m-%dT%H:%M:%SZ)
    AUD=""
    [ $((i % 3)) -ne 0 ] && AUD=",\"segment_id\":\"seg$((i % 20))\""
    SUIT=""
    [ $((i % 4)) -eq 0 ] && SUIT=",\"suitability\":{\"product_risk\":\"R$((1 + i % 5))\",\"validity_days\":3650}"
    case $((i % 5)) in
    0) RULES='"type":"checkin","limits":{"per_day":1,"per_campaign":30},"checkin":{"rewards":[{"day":1,"points":5},{"day":7,"points":30}],"cycle":true}' ;;
    1) RULES='"type":"task","limits":{"per_week":5},"tasks":[{"code":"view","event":"view_wealth","min_dwell_ms":30000,"period":"day","reward":{"points":10}},{"code":"card","event":"bind_card","period":"campaign","reward":{"points":50}}]' ;;
    2) RULES='"type":"lottery","limits":{"per_week":20}' ;;
    3) RULES='"type":"coupon_drop","limits":{"per_day":1},"coupon_drop":{"item":"bench_cp","quantity_per_wave":100,"waves":[{"at":"10:00"},{"at":"20:00","quantity":50}]}' ;;
    4) RULES='"type":"referral","referral":{"qualifying_events":["account_opened"],"inviter_reward":{"points":100},"invitee_reward":{"points":50},"max_per_inviter":5}' ;;
    esac
    ID="o${RUN}c$i"
    post "$KEY" /v1/campaigns "{\"id\":\"$ID\",\"name\":\"campaign $i\",$RULES,\"priority\":$((i % 10)),\"starts_at\":\"$START\",\"ends_at\":\"$END\",\"holdout_percent\":5,\"point_type\":\"sun\",\"budget\":{\"points\":100000000,\"cost\":100000000}$AUD$SUIT}"
    [ $((i % 5)) -eq 2 ] && post "$KEY" "/v1/campaigns/$ID/prizes" '{"cost":{"points":5},"free_per_day":1,"draws_per_day":5,"thanks":{"weight":500},"prizes":[{"code":"s10","name":"10 阳光值","weight":400,"stock":100000,"reward":{"points":10}},{"code":"s50","name":"50 阳光值","weight":100,"stock":10000,"reward":{"points":50}}]}' PUT
    post "$KEY" "/v1/campaigns/$ID:submit" ''
    post "$KEY2" "/v1/campaigns/$ID:approve" ''
done
RUNNING=$(curl -sf "$U/v1/campaigns?status=running" -H "Authorization: Bearer $KEY" |
    python3 -c 'import json,sys; print(len(json.load(sys.stdin)["items"]))')
[ "$RUNNING" -ge "$CAMPAIGNS" ] || die "only $RUNNING campaigns run"
SAMPLE=$(curl -sf "$U/v1/customers/C00000001/offers" -H "Authorization: Bearer $APP")
SAMPLE_N=$(printf '%s' "$SAMPLE" | python3 -c 'import json,sys; print(json.load(sys.stdin)["count"])')
SAMPLE_B=$(printf '%s' "$SAMPLE" | wc -c)

cat >"$T/offers.lua" <<EOF
local n = $DEMO_CUSTOMERS
local threads = 0
function setup(thread)
    thread:set("id", threads)
    threads = threads + 1
end
function init(args)
    math.randomseed(os.time() * 100 + id)
end
request = function()
    return wrk.format("GET", string.format("/v1/customers/C%08d/offers", math.random(1, n)),
        {["Authorization"] = "Bearer $APP"})
end
EOF
echo "==> warm-up (3 s), then ${DURATION} s per connection count" >&2
wrk -t"$THREADS" -c8 -d3s -s "$T/offers.lua" "$U" >/dev/null
FAILED=0
printf '\n%-58s %8s %9s %9s\n' "GET /v1/customers/{no}/offers" "req/s" "p50 ms" "p99 ms"
for c in $CONNS; do
    t=$THREADS; [ "$c" -lt "$t" ] && t=$c
    wrk -t"$t" -c"$c" -d"${DURATION}s" --latency -s "$T/offers.lua" "$U" >"$T/wrk-$c.txt"
    grep -q "Non-2xx" "$T/wrk-$c.txt" && { grep Non-2xx "$T/wrk-$c.txt" >&2; FAILED=1; }
    grep -q "Socket errors" "$T/wrk-$c.txt" && { grep "Socket errors" "$T/wrk-$c.txt" >&2; FAILED=1; }
    printf '%-58s %8.0f %9s %9s\n' \
        "$DEMO_CUSTOMERS customers, $RUNNING running campaigns, $c conns" \
        "$(awk '/Requests\/sec/ {print $2}' "$T/wrk-$c.txt")" \
        "$(to_ms "$(awk '$1 == "50%" {print $2}' "$T/wrk-$c.txt")")" \
        "$(to_ms "$(awk '$1 == "99%" {print $2}' "$T/wrk-$c.txt")")"
done
printf 'an answer (C00000001): %s offers, %s bytes\n' "$SAMPLE_N" "$SAMPLE_B"
printf 'load: %s\n' "$(uptime)"
exit $FAILED

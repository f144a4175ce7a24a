#!/bin/bash
# bench/http.sh — HTTP throughput of siyu, measured side by side with nginx.
#
# Starts siyu and nginx (Debian nginx-light, as the current user, with a
# generated config) on free loopback ports, everything inside one temp dir,
# and drives both with wrk:
#
#   nginx  GET /            a fixed JSON body of the same size and shape as
#                           siyu's /v1/tenant answer (return 200 '...')
#   siyu   GET /healthz     unauthenticated
#   siyu   GET /v1/tenant   Authorization: Bearer <app key>
#
# in two configurations: (a) access logs off on both sides, (b) access logs
# on on both sides, written to files in the temp dir.  Within a
# configuration the three targets are run interleaved (nginx, healthz,
# tenant, nginx, healthz, tenant, ...) for ROUNDS rounds and the better run
# of each target (highest req/s) is reported, to damp drift on a shared
# machine.  The figure that matters is the ratio siyu/nginx.
#
# Every wrk run must have no non-2xx/3xx responses and no socket errors,
# and both servers must keep connections alive; otherwise the script still
# prints its table but exits 1.
#
#   bench/http.sh                      10 s per run
#   DURATION=30 bench/http.sh          longer runs
#   ROUNDS=3 WARMUP=5 bench/http.sh
#
# Needs: wrk, nginx-light, curl (installed by scripts/deps.sh bench).
set -eu

DURATION=${DURATION:-10}    # seconds per measured wrk run
ROUNDS=${ROUNDS:-2}         # interleaved rounds per configuration
WARMUP=${WARMUP:-2}         # seconds of unreported warm-up per target and configuration
THREADS=2
CONNS=64
GOAL=0.6                    # siyu/nginx req/s for /v1/tenant

cd "$(dirname "$0")/.."
ROOT=$(pwd)
. bench/lib.sh

scripts/deps.sh bench
make -s siyu
SIYU="$ROOT/siyu"
NGINX=/usr/sbin/nginx
[ -x "$NGINX" ] || { echo "http.sh: $NGINX not found (nginx-light)" >&2; exit 1; }
command -v wrk >/dev/null || { echo "http.sh: wrk not found" >&2; exit 1; }

T=$(mktemp -d "${TMPDIR:-/tmp}/siyu-bench.XXXXXX")
SIYU_PID=""
NGINX_PID=""
FAILED=0

stop_siyu() {
    if [ -n "$SIYU_PID" ]; then
        kill -TERM "$SIYU_PID" 2>/dev/null || true
        wait "$SIYU_PID" 2>/dev/null || true
        SIYU_PID=""
    fi
}
stop_nginx() {
    if [ -n "$NGINX_PID" ]; then
        kill -TERM "$NGINX_PID" 2>/dev/null || true   # fast shutdown of master + workers
        wait "$NGINX_PID" 2>/dev/null || true
        NGINX_PID=""
    fi
}
cleanup() {
    stop_siyu
    stop_nginx
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

die() {
    echo "http.sh: $*" >&2
    exit 1
}

# ---------------------------------------------------------------- siyu

mkdir -p "$T/data"
"$SIYU" migrate --data "$T/data" >>"$T/setup.log" 2>&1 || { cat "$T/setup.log" >&2; die "siyu migrate failed"; }
"$SIYU" tenant create bench --data "$T/data" >>"$T/setup.log" 2>&1 || { cat "$T/setup.log" >&2; die "siyu tenant create failed"; }
KEY=$("$SIYU" key create --data "$T/data" --tenant bench --role app 2>>"$T/setup.log") ||
    { cat "$T/setup.log" >&2; die "siyu key create failed"; }
printf '%s\n' "$KEY" | grep -q '^sy_[0-9a-f]\{12\}_[A-Za-z0-9_-]\{43\}$' || die "unexpected key format: $KEY"

# start_siyu ACCESS_LOG — sets SIYU_PORT
start_siyu() {
    rm -f "$T/siyu.port"
    "$SIYU" serve --data "$T/data" --listen 127.0.0.1:0 --access-log "$1" --demo \
        --port-file "$T/siyu.port" --shutdown-grace 1000 >>"$T/siyu.out" 2>>"$T/siyu.err" &
    SIYU_PID=$!
    local i
    for i in $(seq 100); do
        if [ -s "$T/siyu.port" ] && grep -q '^[0-9][0-9]*$' "$T/siyu.port"; then
            SIYU_PORT=$(cat "$T/siyu.port")
            return 0
        fi
        kill -0 "$SIYU_PID" 2>/dev/null || break
        sleep 0.1
    done
    cat "$T/siyu.err" >&2
    die "siyu did not start"
}

# ---------------------------------------------------------------- nginx

# The fixed body: siyu's own /v1/tenant answer, captured once, so the size
# and shape are identical.
start_siyu off
BODY=$(curl -sf -H "Authorization: Bearer $KEY" "http://127.0.0.1:$SIYU_PORT/v1/tenant") ||
    die "GET /v1/tenant failed"
stop_siyu
case $BODY in
    *'$'*) die "tenant body contains '\$', cannot embed it in nginx.conf" ;;
esac
BODY_LEN=$(printf '%s' "$BODY" | wc -c)
# nginx quoted string: escape backslash and single quote
NGINX_BODY=$(printf '%s' "$BODY" | sed -e 's/\\/\\\\/g' -e "s/'/\\\\'/g")

mkdir -p "$T/nginx"
NGINX_USER=""
if [ "$(id -u)" -eq 0 ]; then
    # as root the workers would otherwise drop to nobody
    NGINX_USER="user $(id -un) $(id -gn);"
fi

# write_nginx_conf PORT ACCESS_LOG(off|FILE)
write_nginx_conf() {
    local al="off"
    [ "$2" = off ] || al="$2"
    cat >"$T/nginx/nginx.conf" <<EOF
$NGINX_USER
daemon off;
master_process on;
worker_processes auto;
pid $T/nginx/nginx.pid;
error_log $T/nginx/error.log warn;
events {
    worker_connections 1024;
}
http {
    access_log $al;
    client_body_temp_path $T/nginx/client_body;
    proxy_temp_path $T/nginx/proxy;
    fastcgi_temp_path $T/nginx/fastcgi;
    uwsgi_temp_path $T/nginx/uwsgi;
    scgi_temp_path $T/nginx/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
    server {
        listen 127.0.0.1:$1;
        location / {
            default_type application/json;
            return 200 '$NGINX_BODY';
        }
    }
}
EOF
}

# start_nginx ACCESS_LOG — picks a free port (retrying on EADDRINUSE), sets NGINX_PORT
start_nginx() {
    local try i port
    for try in $(seq 20); do
        port=$((20000 + RANDOM % 40000))
        [ "$port" = "${SIYU_PORT:-}" ] && continue
        write_nginx_conf "$port" "$1"
        : >"$T/nginx/error.log"
        "$NGINX" -p "$T/nginx/" -c "$T/nginx/nginx.conf" -e "$T/nginx/error.log" \
            >>"$T/nginx/stdout" 2>&1 &
        NGINX_PID=$!
        for i in $(seq 100); do
            if curl -sf -o /dev/null "http://127.0.0.1:$port/"; then
                NGINX_PORT=$port
                return 0
            fi
            kill -0 "$NGINX_PID" 2>/dev/null || break
            sleep 0.1
        done
        stop_nginx
        grep -q 'Address already in use' "$T/nginx/error.log" "$T/nginx/stdout" 2>/dev/null || break
    done
    cat "$T/nginx/error.log" "$T/nginx/stdout" >&2 2>/dev/null || true
    die "nginx did not start"
}

# ---------------------------------------------------------------- checks

# keepalive_check NAME URL [curl args] — two requests on one connection
keepalive_check() {
    local name=$1 url=$2 out reused closes
    shift 2
    out=$(curl -sv "$@" -o /dev/null -o /dev/null "$url" "$url" 2>&1) || true
    reused=$(printf '%s\n' "$out" | grep -c 'Re-using\|Reusing' || true)
    closes=$(printf '%s\n' "$out" | grep -ci '^< connection: *close' || true)
    if [ "$reused" -ge 1 ] && [ "$closes" -eq 0 ]; then
        echo "keep-alive: $name: ok (second request re-used the connection)"
    else
        echo "keep-alive: $name: FAIL (re-used=$reused, 'Connection: close' answers=$closes)"
        FAILED=1
    fi
}


# ---------------------------------------------------------------- runs

# run_wrk OUTFILE DURATION URL [wrk args]; prints "rps p50ms p99ms status"
run_wrk() {
    local out=$1 dur=$2 url=$3 rps p50 p99 non2xx sockerr status
    shift 3
    wrk -t"$THREADS" -c"$CONNS" -d"${dur}s" --latency "$@" "$url" >"$out" 2>&1 || true
    rps=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
    p50=$(awk '$1 == "50%" { print $2 }' "$out")
    p99=$(awk '$1 == "99%" { print $2 }' "$out")
    non2xx=$(awk -F: '/Non-2xx or 3xx responses/ { gsub(/ /, "", $2); print $2 }' "$out")
    sockerr=$(awk '/Socket errors:/ { n = 0; for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+,?$/) n += $i; print n }' "$out")
    status=ok
    if [ -z "$rps" ] || [ -z "$p50" ] || [ -z "$p99" ]; then
        status="FAIL(no-output)"
        rps=0 p50=0 p99=0
    else
        p50=$(to_ms "$p50")
        p99=$(to_ms "$p99")
    fi
    [ -z "$non2xx" ] || [ "$non2xx" -eq 0 ] || status="FAIL(non-2xx=$non2xx)"
    [ -z "$sockerr" ] || [ "$sockerr" -eq 0 ] ||
        status="FAIL(socket-errors: $(grep 'Socket errors:' "$out" | sed 's/^ *Socket errors: *//'))"
    echo "$rps $p50 $p99 $status"
}

TARGETS="nginx healthz tenant"
label() {
    case $1 in
        nginx) echo "nginx fixed body (${BODY_LEN} B)" ;;
        healthz) echo "siyu /healthz" ;;
        tenant) echo "siyu /v1/tenant (Bearer)" ;;
    esac
}

# run_config TAG TITLE SIYU_ACCESS_LOG NGINX_ACCESS_LOG
run_config() {
    local tag=$1 title=$2 slog=$3 nlog=$4 t r res rps p50 p99 status url
    local -a hdr
    start_siyu "$slog"
    start_nginx "$nlog"
    echo
    echo "== ($tag) $title =="
    echo "siyu 127.0.0.1:$SIYU_PORT (--access-log $slog), nginx 127.0.0.1:$NGINX_PORT (access_log $nlog)"
    keepalive_check "nginx /" "http://127.0.0.1:$NGINX_PORT/"
    keepalive_check "siyu /healthz" "http://127.0.0.1:$SIYU_PORT/healthz"
    keepalive_check "siyu /v1/tenant" "http://127.0.0.1:$SIYU_PORT/v1/tenant" -H "Authorization: Bearer $KEY"

    for r in $(seq 0 "$ROUNDS"); do
        for t in $TARGETS; do
            hdr=()
            case $t in
                nginx) url="http://127.0.0.1:$NGINX_PORT/" ;;
                healthz) url="http://127.0.0.1:$SIYU_PORT/healthz" ;;
                tenant)
                    url="http://127.0.0.1:$SIYU_PORT/v1/tenant"
                    hdr=(-H "Authorization: Bearer $KEY")
                    ;;
            esac
            if [ "$r" -eq 0 ]; then
                [ "$WARMUP" -gt 0 ] || continue
                run_wrk "$T/wrk-$tag-$t-warmup.txt" "$WARMUP" "$url" "${hdr[@]}" >/dev/null
                continue
            fi
            res=$(run_wrk "$T/wrk-$tag-$t-$r.txt" "$DURATION" "$url" "${hdr[@]}")
            read -r rps p50 p99 status <<<"$res"
            printf '  round %d  %-28s %10s req/s  p50 %7s ms  p99 %7s ms  %s\n' \
                "$r" "$(label "$t")" "$rps" "$p50" "$p99" "$status"
            if [ "$status" != ok ]; then
                FAILED=1
                sed 's/^/    | /' "$T/wrk-$tag-$t-$r.txt"
            fi
            echo "$t $r $res" >>"$T/results-$tag"
        done
        kill -0 "$SIYU_PID" 2>/dev/null || die "siyu died during the run"
        kill -0 "$NGINX_PID" 2>/dev/null || die "nginx died during the run"
    done

    if [ "$slog" != off ]; then
        echo "access-log lines written: siyu $(wc -l <"$slog"), nginx $(wc -l <"$nlog")"
    fi
    stop_siyu
    stop_nginx

    # best of the rounds per target (highest req/s; its p50/p99 come from the same run)
    echo
    echo "($tag) $title — best of $ROUNDS interleaved rounds, wrk -t$THREADS -c$CONNS -d${DURATION}s:"
    echo
    echo "| target | req/s | p50 ms | p99 ms | siyu/nginx req/s |"
    echo "|---|---:|---:|---:|---:|"
    local nginx_rps="" best ratio
    for t in $TARGETS; do
        best=$(awk -v t="$t" '$1 == t && $6 == "ok" { if (!f || $3 > b) { b = $3; l = $0; f = 1 } }
                              END { if (f) print l }' "$T/results-$tag")
        if [ -z "$best" ]; then
            echo "| $(label "$t") | failed | | | |"
            continue
        fi
        read -r _ _ rps p50 p99 _ <<<"$best"
        if [ "$t" = nginx ]; then
            nginx_rps=$rps
            ratio="—"
        elif [ -n "$nginx_rps" ]; then
            ratio=$(awk -v a="$rps" -v b="$nginx_rps" 'BEGIN { printf "%.2f", a / b }')
            eval "RATIO_${tag}_$t=$ratio"
        else
            ratio="n/a"
        fi
        printf '| %s | %.0f | %s | %s | %s |\n' "$(label "$t")" "$rps" "$p50" "$p99" "$ratio"
    done
}

echo "siyu HTTP benchmark — siyu vs nginx $("$NGINX" -v 2>&1 | sed 's/.*nginx\///'), $(wrk --version 2>&1 | head -1 | awk '{print $1, $2}')"
echo "date $(date -u +%Y-%m-%dT%H:%MZ), nproc $(nproc), kernel $(uname -r), $("$SIYU" version 2>/dev/null | head -1)"
echo "source $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown) (git describe --always --dirty of the tree ./siyu was built from)"
echo "method: wrk -t$THREADS -c$CONNS -d${DURATION}s --latency per run; per configuration the three"
echo "        targets run interleaved (nginx, healthz, tenant) x $ROUNDS rounds after a ${WARMUP}s warm-up"
echo "        each; the best run (highest req/s) of each target is reported; ratio = siyu/nginx req/s."
echo "        nginx answers a fixed copy of siyu's /v1/tenant body ($BODY_LEN bytes) with return 200."

run_config a "access logs off (siyu --access-log off, nginx access_log off)" off off
run_config b "access logs on (siyu --access-log FILE, nginx access_log FILE combined, both in the temp dir)" \
    "$T/siyu-access.log" "$T/nginx-access.log"

echo
for tag in a b; do
    eval "rt=\${RATIO_${tag}_tenant:-n/a}; rh=\${RATIO_${tag}_healthz:-n/a}"
    verdict=$(awk -v r="$rt" -v g="$GOAL" 'BEGIN { if (r == "n/a") print "n/a"; else if (r + 0 >= g + 0) print "meets"; else print "BELOW" }')
    echo "($tag) siyu/nginx: /v1/tenant $rt ($verdict goal >= $GOAL), /healthz $rh"
done
if [ "$FAILED" -ne 0 ]; then
    echo "http.sh: some checks FAILED (see above)" >&2
    exit 1
fi

#!/bin/bash
# bench/reports.sh — reports: siyu side by side with SQLite and PostgreSQL 15.
#
# Builds a demo bank (`siyu demo --customers N --days 30 --sessions K`: K app
# sessions per active customer-day, so 1M customers give 30M+ events in 30
# days), starts `siyu serve` on it, and asks the same questions of siyu and,
# as SQL over a copy of the events, of SQLite and PostgreSQL:
#
#   dau        30 days of DAU
#              siyu: GET /v1/reports/activity (which also computes WAU, MAU,
#              new and returning for each day)
#              SQL:  SELECT day, count(DISTINCT customer_no) FROM events
#                    WHERE day BETWEEN a AND b GROUP BY day
#   retention  the retention matrix of the 30 daily cohorts (first day
#              active ever), 30 periods
#              siyu: GET /v1/reports/retention?periods=30
#              SQL:  first day per customer, distinct (customer, day) pairs,
#                    joined and counted by (cohort, period)
#   funnel     a 4-step funnel login -> view_wealth -> click_wealth ->
#              buy_fund, 1-day window, entries on the 30 days
#              siyu: GET /v1/reports/funnel (from the index's event times;
#              it also computes the median time between steps)
#              SQL:  each customer's first login in the range, then for each
#                    step the earliest event of it at or after the step
#                    before and within the window (a correlated min(ts)
#                    per customer and step), counted per step
#
# The relational copy is one table events (customer_no, name, ts, day), day
# being the business day in Asia/Shanghai (UTC+8, no DST) like siyu's, with
# the indexes (day, customer_no), (customer_no, day) and, for the funnel,
# (name, day, customer_no, ts) and (customer_no, name, ts), built by sqlite3
# next to the store (ATTACHing siyu.db) and copied into PostgreSQL with
# COPY, then ANALYZE (PostgreSQL: VACUUM ANALYZE).
#
# Each query: one warm-up run per system, then RUNS timed runs; p50 is the
# median, max the slowest.  siyu's in-process time is the report's took_ms,
# its HTTP time curl's time_total.  The answers must agree (the sum of the 30
# DAUs; the sum of every retention cell; the sum of the funnel's step
# counts) or the script exits 1.
#
#   bench/reports.sh                             N=1000000 SESSIONS=4
#   N=20000 SESSIONS=2 RUNS=3 bench/reports.sh   a quick check
#   STORE_DIR=/tmp/siyu-stores bench/reports.sh  keep the demo store there, reuse it
#
# Needs: sqlite3, python3, curl, jq, postgresql-15 (installed when missing).
set -eu

N=${N:-1000000}
DAYS=30
SESSIONS=${SESSIONS:-4}
RUNS=${RUNS:-5}
SEED=${SEED:-1}
PG_PORT=${PG_PORT:-55435}
STORE_DIR=${STORE_DIR:-}
TZ_OFFSET_MS=28800000
DAY_MS=86400000

cd "$(dirname "$0")/.."
ROOT=$(pwd)
die() { echo "reports.sh: $*" >&2; exit 1; }
for c in sqlite3 python3 curl jq awk; do command -v "$c" >/dev/null || die "$c not found"; done
make -s siyu
SIYU="$ROOT/siyu"
if ! dpkg-query -W -f='${Status}' postgresql-15 2>/dev/null | grep -q "ok installed"; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q postgresql-15 >/dev/null ||
        { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q postgresql-15 >/dev/null; }
fi
PGBIN=/usr/lib/postgresql/15/bin

T=$(mktemp -d "${TMPDIR:-/tmp}/siyu-rep.XXXXXX")
chmod 711 "$T"
SIYU_PID=""
PG_STARTED=0
mkdir -p "$T/pg"
RUNAS=0
if [ "$(id -u)" -eq 0 ]; then chown postgres "$T/pg"; RUNAS=1; fi
pgrun() { if [ "$RUNAS" = 1 ]; then su postgres -c "$*"; else bash -c "$*"; fi; }
cleanup() {
    if [ -n "$SIYU_PID" ]; then kill -TERM "$SIYU_PID" 2>/dev/null || true; wait "$SIYU_PID" 2>/dev/null || true; fi
    if [ "$PG_STARTED" = 1 ]; then pgrun "$PGBIN/pg_ctl -D $T/pg/db -m immediate stop" >/dev/null 2>&1 || true; fi
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

stats() { sort -g | awk '{v[NR]=$1} END {if (NR==0) {print "- -"; exit} printf "%.3f %.3f\n", v[int((NR+1)/2)], v[NR]}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b <= 0) print "-"; else if (a / b < 10) printf "%.1f", a / b; else printf "%.0f", a / b }'; }
secs_since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f s", b-a}'; }

# ---------------------------------------------------------------- the bank
if [ -n "$STORE_DIR" ]; then D="$STORE_DIR/r$N-s$SESSIONS"; else D="$T/store"; fi
GEN="reused"
if [ ! -s "$D/siyu.db" ] || [ ! -e "$D/.complete" ]; then
    rm -rf "$D"; mkdir -p "$D"
    t0=$(date +%s.%N)
    env -u SIYU_DATA_KEY "$SIYU" demo --data "$D" --customers "$N" --days "$DAYS" --sessions "$SESSIONS" \
        --seed "$SEED" --log-level warn >"$T/demo.out" 2>"$T/demo.err" ||
        { tail -5 "$T/demo.err" >&2; die "siyu demo failed"; }
    GEN=$(secs_since "$t0")
    touch "$D/.complete"
fi
KEY=$(env -u SIYU_DATA_KEY "$SIYU" key create --data "$D" --tenant demo --role analyst --log-level warn 2>>"$T/setup.log") ||
    { cat "$T/setup.log" >&2; die "siyu key create failed"; }

# ---------------------------------------------------------------- SQL copies
S="$T/sql.db"
t0=$(date +%s.%N)
sqlite3 "$S" >/dev/null <<SQL || die "building the SQLite table failed"
PRAGMA synchronous = off;
ATTACH '$D/siyu.db' AS s;
CREATE TABLE events (customer_no TEXT NOT NULL, name TEXT NOT NULL, ts INTEGER NOT NULL, day INTEGER NOT NULL);
INSERT INTO events SELECT customer_no, name, ts, (ts + $TZ_OFFSET_MS) / $DAY_MS FROM s.events WHERE tenant_id = 'demo';
DETACH s;
CREATE INDEX events_day ON events (day, customer_no);
CREATE INDEX events_customer ON events (customer_no, day);
CREATE INDEX events_name_day ON events (name, day, customer_no, ts);
CREATE INDEX events_step ON events (customer_no, name, ts);
ANALYZE;
SQL
SQLITE_PREP=$(secs_since "$t0")
NEV=$(sqlite3 "$S" "SELECT count(*) FROM events")
LAST=$(sqlite3 "$S" "SELECT max(day) FROM events")
FIRST=$((LAST - DAYS + 1))

pgrun "$PGBIN/initdb -D $T/pg/db -A trust -U postgres -E UTF8 --locale=C" >/dev/null
pgrun "$PGBIN/pg_ctl -D $T/pg/db -o '-p $PG_PORT -k $T/pg -c listen_addresses= -c shared_buffers=2GB -c work_mem=256MB -c maintenance_work_mem=1GB -c jit=off -c max_wal_size=8GB -c fsync=off -c synchronous_commit=off' -l $T/pg/log -w start" >/dev/null
PG_STARTED=1
PSQL=(psql -X -h "$T/pg" -p "$PG_PORT" -U postgres -v ON_ERROR_STOP=1 -q)
"${PSQL[@]}" -c "CREATE DATABASE bench" >/dev/null
PGVER=$("${PSQL[@]}" -d bench -tAc 'show server_version' | cut -d' ' -f1)
t0=$(date +%s.%N)
"${PSQL[@]}" -d bench -c "CREATE TABLE events (customer_no TEXT NOT NULL, name TEXT NOT NULL, ts BIGINT NOT NULL, day INTEGER NOT NULL)" >/dev/null
sqlite3 -csv "$S" "SELECT * FROM events" | "${PSQL[@]}" -d bench -c "\\copy events FROM STDIN (FORMAT csv)"
"${PSQL[@]}" -d bench >/dev/null <<'SQL'
CREATE INDEX events_day ON events (day, customer_no);
CREATE INDEX events_customer ON events (customer_no, day);
CREATE INDEX events_name_day ON events (name, day, customer_no, ts);
CREATE INDEX events_step ON events (customer_no, name, ts);
VACUUM ANALYZE events;
SQL
PG_PREP=$(secs_since "$t0")

# ---------------------------------------------------------------- siyu
t0=$(date +%s.%N)
env -u SIYU_DATA_KEY "$SIYU" serve --data "$D" --listen 127.0.0.1:0 --port-file "$T/siyu.port" --access-log off \
    --demo --shutdown-grace 1000 >"$T/siyu.out" 2>"$T/siyu.err" &
SIYU_PID=$!
for _ in $(seq 1 6000); do
    [ -s "$T/siyu.port" ] && grep -q '^[0-9][0-9]*$' "$T/siyu.port" && break
    kill -0 "$SIYU_PID" 2>/dev/null || { cat "$T/siyu.err" >&2; die "siyu exited"; }
    sleep 0.1
done
[ -s "$T/siyu.port" ] || die "siyu did not start within 600 s"
START=$(secs_since "$t0")
U="http://127.0.0.1:$(cat "$T/siyu.port")"
INDEXED=$(grep -o 'indexed tenant demo: [^"]*' "$T/siyu.err" "$T/siyu.out" 2>/dev/null | head -1 | sed 's/^[^:]*:indexed/indexed/')
day_of() { python3 -c "import datetime; print((datetime.date(1970,1,1)+datetime.timedelta(days=$1)).isoformat())"; }
FROM=$(day_of "$FIRST")
TO=$(day_of "$LAST")

cat >"$T/sqlite_time.py" <<'PY'
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1])
db.execute("PRAGMA cache_size = -1048576")
for r in range(int(sys.argv[3]) + 1):
    t0 = time.perf_counter()
    rows = db.execute(sys.argv[2]).fetchall()
    ms = (time.perf_counter() - t0) * 1000
    if r:
        print(sum(row[-1] for row in rows), "%.3f" % ms)
PY

# name | siyu path | jq sum of the answer | SQL (same text for both)
QN=(); QP=(); QJ=(); QS=()
q() { QN+=("$1"); QP+=("$2"); QJ+=("$3"); QS+=("$4"); }
q "dau (30 days)" "/v1/reports/activity?from=$FROM&to=$TO" '[.days[].dau] | add' \
  "SELECT day, count(DISTINCT customer_no) FROM events WHERE day BETWEEN $FIRST AND $LAST GROUP BY day"
q "retention (30 cohorts x 30)" "/v1/reports/retention?from=$FROM&to=$TO&periods=30" '[.cohorts[].retained[]] | add' \
  "WITH f AS (SELECT customer_no, min(day) AS d0 FROM events GROUP BY customer_no), a AS (SELECT DISTINCT customer_no, day FROM events WHERE day BETWEEN $FIRST AND $LAST) SELECT f.d0, a.day - f.d0, count(*) FROM f JOIN a ON a.customer_no = f.customer_no WHERE f.d0 BETWEEN $FIRST AND $LAST AND a.day - f.d0 < 30 GROUP BY f.d0, a.day - f.d0"
step() { # the earliest $1 event of each customer of $2 at or after its time t, within the window
    echo "SELECT p.customer_no, p.t0, (SELECT min(e.ts) FROM events e WHERE e.customer_no = p.customer_no AND e.name = '$1' AND e.ts >= p.t AND e.ts <= p.t0 + $DAY_MS) AS t FROM $2 p WHERE p.t IS NOT NULL"
}
q "funnel (4 steps, 1-day window)" "/v1/reports/funnel?steps=login,view_wealth,click_wealth,buy_fund&window=1d&from=$FROM&to=$TO" '[.steps[].customers] | add' \
  "WITH s1 AS (SELECT customer_no, min(ts) AS t0, min(ts) AS t FROM events WHERE name = 'login' AND day BETWEEN $FIRST AND $LAST GROUP BY customer_no), s2 AS ($(step view_wealth s1)), s3 AS ($(step click_wealth s2)), s4 AS ($(step buy_fund s3)) SELECT 1 AS step, count(*) AS count FROM s1 UNION ALL SELECT 2, count(t) FROM s2 UNION ALL SELECT 3, count(t) FROM s3 UNION ALL SELECT 4, count(t) FROM s4"

echo "# bench/reports.sh — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), RUNS=$RUNS"
echo "# source $(git -C "$ROOT" describe --always --dirty 2>/dev/null), SQLite $(python3 -c 'import sqlite3; print(sqlite3.sqlite_version)') (python3), PostgreSQL $PGVER (jit off, shared_buffers 2GB, work_mem 256MB)"
echo ""
echo "$N customers, $NEV events in $DAYS days ($FROM .. $TO), $SESSIONS sessions per active day"
echo "setup: siyu demo $GEN; SQLite table+indexes $SQLITE_PREP; PostgreSQL COPY+indexes+VACUUM ANALYZE $PG_PREP; siyu start $START ($INDEXED)"
echo ""
echo "| report | siyu in-process p50 / max ms | siyu HTTP p50 / max ms | SQLite p50 / max ms | PostgreSQL p50 / max ms | PG / siyu | SQLite / siyu |"
echo "|---|---:|---:|---:|---:|---:|---:|"
FAILED=0
for i in "${!QN[@]}"; do
    : >"$T/siyu.runs"
    for r in $(seq 0 "$RUNS"); do
        resp=$(curl -sS "$U${QP[$i]}" -H "Authorization: Bearer $KEY" -w '\n%{http_code} %{time_total}') || die "curl failed"
        code=$(printf '%s\n' "$resp" | tail -1 | cut -d' ' -f1)
        tt=$(printf '%s\n' "$resp" | tail -1 | cut -d' ' -f2)
        json=$(printf '%s\n' "$resp" | sed '$d')
        [ "$code" = 200 ] || die "${QN[$i]}: HTTP $code: $json"
        [ "$r" = 0 ] || printf '%s\t%s\t%s\n' "$(printf '%s' "$json" | jq -r "${QJ[$i]}")" \
            "$(printf '%s' "$json" | jq -r .took_ms)" "$tt" >>"$T/siyu.runs"
    done
    SUM=$(head -1 "$T/siyu.runs" | cut -f1)
    read -r SP50 SMAX < <(cut -f2 "$T/siyu.runs" | stats)
    read -r HP50 HMAX < <(cut -f3 "$T/siyu.runs" | awk '{printf "%.3f\n", $1 * 1000}' | stats)
    python3 "$T/sqlite_time.py" "$S" "${QS[$i]}" "$RUNS" >"$T/sqlite.runs"
    LSUM=$(head -1 "$T/sqlite.runs" | cut -d' ' -f1)
    read -r LP50 LMAX < <(cut -d' ' -f2 "$T/sqlite.runs" | stats)
    : >"$T/pg.runs"
    for r in $(seq 0 "$RUNS"); do
        outp=$(printf '\\timing on\nSELECT sum(q.count) FROM (%s) q;\n' "${QS[$i]}" |
            "${PSQL[@]}" -d bench -tA 2>&1) || die "PostgreSQL: $outp"
        psum=$(printf '%s\n' "$outp" | grep -v '^Time' | grep -v '^$' | head -1)
        pms=$(printf '%s\n' "$outp" | awk '/^Time:/ {print $2}')
        [ "$r" = 0 ] || echo "$psum $pms" >>"$T/pg.runs"
    done
    PSUM=$(head -1 "$T/pg.runs" | cut -d' ' -f1)
    read -r PP50 PMAX < <(cut -d' ' -f2 "$T/pg.runs" | stats)
    MARK=""
    if [ "$SUM" != "$LSUM" ] || [ "$SUM" != "$PSUM" ]; then
        MARK=" MISMATCH (siyu $SUM, SQLite $LSUM, PostgreSQL $PSUM)"; FAILED=1
    fi
    echo "| ${QN[$i]} (sum $SUM)$MARK | $SP50 / $SMAX | $HP50 / $HMAX | $LP50 / $LMAX | $PP50 / $PMAX | $(ratio "$PP50" "$SP50")× | $(ratio "$LP50" "$SP50")× |"
done
RSS=$(ps -o rss= -p "$SIYU_PID" | awk '{printf "%.1f", $1 / 1024}')
echo ""
echo "siyu resident memory after the reports: $RSS MiB"
exit $FAILED

#!/bin/bash
# bench/segments.sh — segment counts: siyu side by side with SQLite and PostgreSQL 15.
#
# For each size in SIZES it builds a demo bank (`siyu demo`, tenant demo:
# 51 attributes, 50 tags, 30 days of behaviour), starts `siyu serve` on it
# (which builds its in-memory index) and runs TEN fixed segment queries,
# each written once as a siyu expression and once as the equivalent SQL:
#
#   q1  risk>=R3          risk_level >= R3
#   q2  payroll+aum       payroll = true and aum >= 50000000
#   q3  5-pred mix        risk_level >= R3 and payroll = true and gender = 'F'
#                         and city = '上海' and aum >= 10000000
#   q4  manual tag+attrs  tag('专属客户经理名单') and customer_tier >= '白金'
#                         and mobile_banking = true
#                         (SQL: a join with the manual tag's rows in tag_members)
#   q5  registered 90d    registered_at within 90d
#   q6  did login>=3      did(login, 7d) >= 3
#   q7  view,not buy      not did(buy_fund, 30d) and did(view_wealth, 7d)
#   q8  dwell>=60s        dwell(view_wealth, 7d) >= 60s
#   q9  rule tag+extras   tag('资产提升潜力') and occupation in ('企业职员', '专业人士')
#                         and has_wealth = false
#                         (SQL: the rule tag's expression spelled out, customer_tier =
#                         '普通' and aum >= 3000000 and monthly_income >= 1500000)
#   q10 issue example     payroll = true and aum >= 50000000 and risk_level >= R3
#                         and did(view_wealth, 7d) >= 3 and not did(buy_fund, 30d)
#
#   siyu-proc   took_ms of POST /v1/segments:preview (evaluation inside siyu)
#   siyu-http   curl's %{time_total} for that same request (loopback HTTP)
#   sqlite      SQLite (the library python3 links, 256 MiB page cache), execute +
#               fetchone timed by perf_counter in one connection
#   postgres    psql `\timing` (client-side, unix socket), same tables, PG 15
#
# The relational copy: a table cust (one row per customer, the JSON attrs
# flattened by json_extract into typed columns: risk 1..5, aum in fen,
# payroll/credit_card 0/1, city, gender, birth_year, registered_day = days
# since 1970-01-01, tier 1..5 for customer_tier 普通..私行, mobile_banking
# and has_wealth 0/1, occupation, monthly_income in fen; a missing value is
# NULL), a table tag_members (tag, customer_no) of the manual tags' members
# and a table events (customer_no, name, ts, dwell_ms) of the tenant's
# events, built by sqlite3 in a second database file next to the store
# (ATTACHing siyu.db), then copied into PostgreSQL with COPY.  Both get the
# same indexes: one per cust column used, tag_members (tag, customer_no),
# and events (name, ts, customer_no, dwell_ms) — the (name, ts, customer_no)
# index with dwell_ms appended so dwell() sums can be answered from the index
# too — then ANALYZE (PostgreSQL: VACUUM ANALYZE, for index-only scans).
# A rule tag has no table: its SQL spells out the tag's expression.
#
# Windows: siyu counts whole business days in the tenant's zone
# (Asia/Shanghai, UTC+8, no DST): a window of W days is the current
# business day and the W-1 days before.  The SQL uses the same bounds,
# computed from the evaluated_at siyu reports for the query:
#   today = floor((now_ms + 8 h) / 1 day)
#   ts >= (today - W + 1) * 1 day - 8 h  and  ts < (today + 1) * 1 day - 8 h
#   registered_at within 90d: registered_day between today - 89 and today
#
# Each query: one unreported warm-up run per system, then RUNS (5) timed
# runs; p50 is the median, p99 is reported as the maximum of the runs.
# The counts of all four must agree: a mismatch is printed as a warning,
# marked in the table (MISMATCH) and makes the script exit 1.
#
#   bench/segments.sh                          SIZES="100000 1000000"
#   SIZES=10000000 bench/segments.sh           the issue's target size: on the 2-core VM
#                                              (2026-12-06) `siyu demo` took 36 min for a
#                                              33 GB store, SQL loading 15-23 min, siyu's
#                                              start 4 min, the queries 12 min; about 60 GB
#                                              of disk (store 33, SQL copies 27)
#   SIZES=20000 RUNS=5 bench/segments.sh       a quick check
#   STORE_DIR=/tmp/siyu-stores bench/segments.sh
#                                              keep the demo stores there and reuse them
#                                              on the next run (otherwise all is temporary)
#   RESULTS=/tmp/seg.md bench/segments.sh      also write the tables to that file
#
# Needs: sqlite3 (with json_extract), curl,
# jq, postgresql-15 (installed when missing, as scripts/pg-compat.sh does).
set -eu

SIZES=${SIZES:-"100000 1000000"}
RUNS=${RUNS:-5}
SEED=${SEED:-1}
DAYS=${DAYS:-30}
PG_PORT=${PG_PORT:-55434}
STORE_DIR=${STORE_DIR:-}
RESULTS=${RESULTS:-}
TZ_OFFSET_MS=28800000       # Asia/Shanghai, UTC+8 (no daylight saving time)
DAY_MS=86400000

cd "$(dirname "$0")/.."
ROOT=$(pwd)

die() { echo "segments.sh: $*" >&2; exit 1; }
for c in sqlite3 python3 curl jq awk; do command -v "$c" >/dev/null || die "$c not found"; done
make -s siyu
SIYU="$ROOT/siyu"

if ! dpkg-query -W -f='${Status}' postgresql-15 2>/dev/null | grep -q "ok installed"; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q postgresql-15 >/dev/null ||
        { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q postgresql-15 >/dev/null; }
fi
PGBIN=/usr/lib/postgresql/15/bin

T=$(mktemp -d "${TMPDIR:-/tmp}/siyu-seg.XXXXXX")
chmod 711 "$T"
SIYU_PID=""
PG_STARTED=0
FAILED=0
mkdir -p "$T/pg"
RUNAS=0
if [ "$(id -u)" -eq 0 ]; then chown postgres "$T/pg"; RUNAS=1; fi
pgrun() { if [ "$RUNAS" = 1 ]; then su postgres -c "$*"; else bash -c "$*"; fi; }

stop_siyu() {
    if [ -n "$SIYU_PID" ]; then
        kill -TERM "$SIYU_PID" 2>/dev/null || true
        wait "$SIYU_PID" 2>/dev/null || true
        SIYU_PID=""
    fi
}
cleanup() {
    stop_siyu
    if [ "$PG_STARTED" = 1 ]; then
        pgrun "$PGBIN/pg_ctl -D $T/pg/db -m immediate stop" >/dev/null 2>&1 || true
    fi
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------ PostgreSQL
# A throwaway server on a unix socket.  Settings that favour these queries:
# shared_buffers large enough to hold the 1M tables, JIT off (it costs
# tens of ms of compilation on counts this size); parallel query as default.
pgrun "$PGBIN/initdb -D $T/pg/db -A trust -U postgres -E UTF8 --locale=C" >/dev/null
pgrun "$PGBIN/pg_ctl -D $T/pg/db -o '-p $PG_PORT -k $T/pg -c listen_addresses= -c shared_buffers=1GB -c work_mem=64MB -c maintenance_work_mem=512MB -c jit=off -c max_wal_size=4GB -c fsync=off -c synchronous_commit=off' -l $T/pg/log -w start" >/dev/null
PG_STARTED=1
PSQL=(psql -X -h "$T/pg" -p "$PG_PORT" -U postgres -v ON_ERROR_STOP=1 -q)
"${PSQL[@]}" -c "CREATE DATABASE bench" >/dev/null
PGVER=$("${PSQL[@]}" -d bench -tAc 'show server_version' | cut -d' ' -f1)

# ---------------------------------------------------------------- queries
# NAME | siyu expression | SQL (same text for SQLite and PostgreSQL).
# Placeholders in the SQL: {B7} {B30} window starts (ms), {E} end of the
# current business day (ms, exclusive), {TODAY} current business day (days).
QN=(); QE=(); QS=()
q() { QN+=("$1"); QE+=("$2"); QS+=("$3"); }
q "q1 risk>=R3" \
  "risk_level >= R3" \
  "SELECT count(*) FROM cust WHERE risk >= 3"
q "q2 payroll+aum" \
  "payroll = true and aum >= 50000000" \
  "SELECT count(*) FROM cust WHERE payroll = 1 AND aum >= 50000000"
q "q3 5-pred mix" \
  "risk_level >= R3 and payroll = true and gender = 'F' and city = '上海' and aum >= 10000000" \
  "SELECT count(*) FROM cust WHERE risk >= 3 AND payroll = 1 AND gender = 'F' AND city = '上海' AND aum >= 10000000"
q "q4 manual tag+attrs" \
  "tag('专属客户经理名单') and customer_tier >= '白金' and mobile_banking = true" \
  "SELECT count(*) FROM cust c JOIN tag_members m ON m.customer_no = c.customer_no WHERE m.tag = '专属客户经理名单' AND c.tier >= 3 AND c.mobile_banking = 1"
q "q5 registered 90d" \
  "registered_at within 90d" \
  "SELECT count(*) FROM cust WHERE registered_day BETWEEN {TODAY} - 89 AND {TODAY}"
q "q6 did login>=3" \
  "did(login, 7d) >= 3" \
  "SELECT count(*) FROM (SELECT customer_no FROM events WHERE name = 'login' AND ts >= {B7} AND ts < {E} GROUP BY customer_no HAVING count(*) >= 3) t"
q "q7 view,not buy" \
  "not did(buy_fund, 30d) and did(view_wealth, 7d)" \
  "SELECT count(*) FROM (SELECT customer_no FROM events WHERE name = 'view_wealth' AND ts >= {B7} AND ts < {E} EXCEPT SELECT customer_no FROM events WHERE name = 'buy_fund' AND ts >= {B30} AND ts < {E}) t"
q "q8 dwell>=60s" \
  "dwell(view_wealth, 7d) >= 60s" \
  "SELECT count(*) FROM (SELECT customer_no FROM events WHERE name = 'view_wealth' AND ts >= {B7} AND ts < {E} GROUP BY customer_no HAVING sum(dwell_ms) >= 60000) t"
q "q9 rule tag+extras" \
  "tag('资产提升潜力') and occupation in ('企业职员', '专业人士') and has_wealth = false" \
  "SELECT count(*) FROM cust WHERE tier = 1 AND aum >= 3000000 AND monthly_income >= 1500000 AND occupation IN ('企业职员', '专业人士') AND has_wealth = 0"
q "q10 issue example" \
  "payroll = true and aum >= 50000000 and risk_level >= R3 and did(view_wealth, 7d) >= 3 and not did(buy_fund, 30d)" \
  "SELECT count(*) FROM cust c JOIN (SELECT customer_no FROM events WHERE name = 'view_wealth' AND ts >= {B7} AND ts < {E} GROUP BY customer_no HAVING count(*) >= 3) v ON v.customer_no = c.customer_no WHERE c.payroll = 1 AND c.aum >= 50000000 AND c.risk >= 3 AND c.customer_no NOT IN (SELECT customer_no FROM events WHERE name = 'buy_fund' AND ts >= {B30} AND ts < {E})"

# ---------------------------------------------------------------- helpers
# stats: numbers on stdin -> "p50 max" (p50 = median; lower middle for even n)
stats() { sort -g | awk '{v[NR]=$1} END {if (NR==0) {print "- -"; exit} printf "%.3f %.3f\n", v[int((NR+1)/2)], v[NR]}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b <= 0) print "-"; else if (a / b < 10) printf "%.1f", a / b; else printf "%.0f", a / b }'; }
out() { printf '%s\n' "$*"; if [ -n "$RESULTS" ]; then printf '%s\n' "$*" >>"$RESULTS"; fi; }
ms_of_iso() { # 2026-11-23T15:10:23.901Z -> epoch ms
    local s frac
    s=$(date -u -d "${1%.*}Z" +%s)
    frac=${1##*.}; frac=${frac%Z}
    echo $((s * 1000 + 10#$frac))
}
[ -z "$RESULTS" ] || : >"$RESULTS"
# SQLite timing loop (the sqlite3 CLI's .timer has only millisecond resolution)
cat >"$T/sqlite_time.py" <<'PY'
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1])
db.execute("PRAGMA cache_size = -262144")
for r in range(int(sys.argv[3]) + 1):
    t0 = time.perf_counter()
    n = db.execute(sys.argv[2]).fetchone()[0]
    ms = (time.perf_counter() - t0) * 1000
    if r:
        print(n, "%.3f" % ms)
PY

out "# bench/segments.sh — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, RUNS=$RUNS, SEED=$SEED, DAYS=$DAYS"
out "# $("$SIYU" --version 2>/dev/null | head -1), SQLite $(python3 -c 'import sqlite3; print(sqlite3.sqlite_version)') (python3), PostgreSQL $PGVER (jit off, shared_buffers 1GB, work_mem 64MB)"

for N in $SIZES; do
    echo "== $N customers" >&2
    if [ -n "$STORE_DIR" ]; then D="$STORE_DIR/n$N"; else D="$T/n$N"; fi
    W="$T/w$N"; mkdir -p "$W"
    GEN="reused"
    if [ ! -s "$D/siyu.db" ] || [ ! -e "$D/.complete" ]; then
        rm -rf "$D"; mkdir -p "$D"
        t0=$(date +%s.%N)
        "$SIYU" demo --data "$D" --customers "$N" --days "$DAYS" --seed "$SEED" --log-level warn \
            >"$W/demo.out" 2>"$W/demo.err" || { tail -5 "$W/demo.err" >&2; die "siyu demo failed"; }
        GEN=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f s", b-a}')
        touch "$D/.complete"
    fi
    KEY=$("$SIYU" key create --data "$D" --tenant demo --role analyst --log-level warn 2>>"$W/setup.log") ||
        { cat "$W/setup.log" >&2; die "siyu key create failed"; }

    # --- the relational copy (SQLite), built before siyu starts
    S="$W/sql.db"
    t0=$(date +%s.%N)
    sqlite3 "$S" >/dev/null <<SQL || die "building the SQLite tables failed"
PRAGMA synchronous = off;
ATTACH '$D/siyu.db' AS s;
CREATE TABLE cust (customer_no TEXT PRIMARY KEY, dense_id INTEGER, risk INTEGER, aum INTEGER,
    payroll INTEGER, credit_card INTEGER, city TEXT, gender TEXT, birth_year INTEGER,
    registered_day INTEGER, risk_assessed_day INTEGER, branch TEXT, manager_id TEXT,
    tier INTEGER, mobile_banking INTEGER, has_wealth INTEGER, occupation TEXT,
    monthly_income INTEGER);
INSERT INTO cust SELECT customer_no, dense_id,
    CAST(substr(json_extract(attrs, '\$.risk_level'), 2) AS INTEGER),
    json_extract(attrs, '\$.aum'), json_extract(attrs, '\$.payroll'),
    json_extract(attrs, '\$.credit_card'), json_extract(attrs, '\$.city'),
    json_extract(attrs, '\$.gender'), json_extract(attrs, '\$.birth_year'),
    CAST(julianday(json_extract(attrs, '\$.registered_at')) - 2440587.5 AS INTEGER),
    CAST(julianday(json_extract(attrs, '\$.risk_assessed_at')) - 2440587.5 AS INTEGER),
    json_extract(attrs, '\$.branch'), json_extract(attrs, '\$.manager_id'),
    CASE json_extract(attrs, '\$.customer_tier') WHEN '普通' THEN 1 WHEN '金卡' THEN 2
        WHEN '白金' THEN 3 WHEN '钻石' THEN 4 WHEN '私行' THEN 5 END,
    json_extract(attrs, '\$.mobile_banking'), json_extract(attrs, '\$.has_wealth'),
    json_extract(attrs, '\$.occupation'), json_extract(attrs, '\$.monthly_income')
  FROM s.customers WHERE tenant_id = 'demo' ORDER BY customer_no;
CREATE TABLE tag_members (tag TEXT NOT NULL, customer_no TEXT NOT NULL);
INSERT INTO tag_members SELECT tag, customer_no FROM s.tag_members WHERE tenant_id = 'demo';
CREATE TABLE events (customer_no TEXT NOT NULL, name TEXT NOT NULL, ts INTEGER NOT NULL, dwell_ms INTEGER);
INSERT INTO events SELECT customer_no, name, ts, dwell_ms FROM s.events WHERE tenant_id = 'demo';
DETACH s;
SQL
    IDX="CREATE INDEX cust_risk ON cust (risk);
CREATE INDEX cust_aum ON cust (aum);
CREATE INDEX cust_payroll ON cust (payroll);
CREATE INDEX cust_city ON cust (city);
CREATE INDEX cust_gender ON cust (gender);
CREATE INDEX cust_registered_day ON cust (registered_day);
CREATE INDEX cust_tier ON cust (tier);
CREATE INDEX cust_mobile_banking ON cust (mobile_banking);
CREATE INDEX cust_has_wealth ON cust (has_wealth);
CREATE INDEX cust_occupation ON cust (occupation);
CREATE INDEX cust_monthly_income ON cust (monthly_income);
CREATE INDEX tag_members_tag ON tag_members (tag, customer_no);
CREATE INDEX events_name_ts ON events (name, ts, customer_no, dwell_ms);"
    printf '%s\nANALYZE;\n' "$IDX" | sqlite3 "$S" || die "SQLite indexes failed"
    SQLITE_PREP=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f s", b-a}')
    NCUST=$(sqlite3 "$S" "SELECT count(*) FROM cust")
    NEV=$(sqlite3 "$S" "SELECT count(*) FROM events")
    NTM=$(sqlite3 "$S" "SELECT count(*) FROM tag_members")
    [ "$NCUST" = "$N" ] || die "cust has $NCUST rows, expected $N"

    # --- the same rows into PostgreSQL
    t0=$(date +%s.%N)
    "${PSQL[@]}" -d bench >/dev/null <<'SQL'
SET client_min_messages = warning;
DROP TABLE IF EXISTS cust;
DROP TABLE IF EXISTS tag_members;
DROP TABLE IF EXISTS events;
CREATE TABLE cust (customer_no TEXT PRIMARY KEY, dense_id INTEGER, risk INTEGER, aum BIGINT,
    payroll INTEGER, credit_card INTEGER, city TEXT, gender TEXT, birth_year INTEGER,
    registered_day INTEGER, risk_assessed_day INTEGER, branch TEXT, manager_id TEXT,
    tier INTEGER, mobile_banking INTEGER, has_wealth INTEGER, occupation TEXT,
    monthly_income BIGINT);
CREATE TABLE tag_members (tag TEXT NOT NULL, customer_no TEXT NOT NULL);
CREATE TABLE events (customer_no TEXT NOT NULL, name TEXT NOT NULL, ts BIGINT NOT NULL, dwell_ms BIGINT);
SQL
    sqlite3 -csv "$S" "SELECT * FROM cust" | "${PSQL[@]}" -d bench -c "\\copy cust FROM STDIN (FORMAT csv)"
    sqlite3 -csv "$S" "SELECT * FROM tag_members" | "${PSQL[@]}" -d bench -c "\\copy tag_members FROM STDIN (FORMAT csv)"
    sqlite3 -csv "$S" "SELECT * FROM events" | "${PSQL[@]}" -d bench -c "\\copy events FROM STDIN (FORMAT csv)"
    printf '%s\nVACUUM ANALYZE cust;\nVACUUM ANALYZE tag_members;\nVACUUM ANALYZE events;\n' "$IDX" | "${PSQL[@]}" -d bench >/dev/null
    PG_PREP=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f s", b-a}')
    PGN=$("${PSQL[@]}" -d bench -tAc "SELECT (SELECT count(*) FROM cust) || ' ' || (SELECT count(*) FROM events) || ' ' || (SELECT count(*) FROM tag_members)")
    [ "$PGN" = "$NCUST $NEV $NTM" ] || die "PostgreSQL has $PGN rows, SQLite $NCUST $NEV $NTM"

    # --- siyu
    # Segments read no event times: the bank times no events (the setting's
    # default times all of them, about 4 bytes an event, for funnels and
    # dwell; docs/reports.md), so the resident memory is the segment
    # engine's.  `siyu key create` above has brought the store's schema up
    # to date.
    sqlite3 "$D/siyu.db" "UPDATE tenants SET timed_events = '[]' WHERE id = 'demo'" ||
        die "setting the timed events failed"
    rm -f "$W/siyu.port"
    t0=$(date +%s.%N)
    "$SIYU" serve --data "$D" --listen 127.0.0.1:0 --port-file "$W/siyu.port" --access-log off --demo \
        --shutdown-grace 1000 >"$W/siyu.out" 2>"$W/siyu.err" &
    SIYU_PID=$!
    for _ in $(seq 1 18000); do   # up to 30 min: 10M customers index for minutes
        [ -s "$W/siyu.port" ] && grep -q '^[0-9][0-9]*$' "$W/siyu.port" && break
        kill -0 "$SIYU_PID" 2>/dev/null || { cat "$W/siyu.err" >&2; die "siyu exited"; }
        sleep 0.1
    done
    [ -s "$W/siyu.port" ] || die "siyu did not start within 1800 s"
    START=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f s", b-a}')
    RSS0=$(ps -o rss= -p "$SIYU_PID" | awk '{printf "%.1f", $1 / 1024}')
    PORT=$(cat "$W/siyu.port")
    INDEXED=$(grep -o 'indexed tenant demo: [^"]*' "$W/siyu.err" "$W/siyu.out" 2>/dev/null | head -1 | sed 's/^[^:]*:indexed/indexed/')
    URL="http://127.0.0.1:$PORT/v1/segments:preview"

    out ""
    out "## $N customers, $NEV events"
    out ""
    out "setup: siyu demo $GEN; SQLite tables+indexes $SQLITE_PREP; PostgreSQL COPY+indexes+VACUUM ANALYZE $PG_PREP; siyu start $START ($INDEXED)"
    out ""
    out "| query | count | siyu in-process p50 / max ms | siyu HTTP p50 / max ms | SQLite p50 / max ms | PostgreSQL p50 / max ms | PG / siyu | SQLite / siyu |"
    out "|---|---:|---:|---:|---:|---:|---:|---:|"

    for i in "${!QN[@]}"; do
        body=$(jq -cn --arg e "${QE[$i]}" '{expression: $e}')
        : >"$W/siyu.runs"
        for r in $(seq 0 "$RUNS"); do
            resp=$(curl -sS -X POST "$URL" -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
                --data-binary "$body" -w '\n%{http_code} %{time_total}') || die "curl failed"
            code=$(printf '%s\n' "$resp" | tail -1 | cut -d' ' -f1)
            tt=$(printf '%s\n' "$resp" | tail -1 | cut -d' ' -f2)
            json=$(printf '%s\n' "$resp" | sed '$d')
            [ "$code" = 200 ] || die "${QN[$i]}: HTTP $code: $json"
            line=$(printf '%s' "$json" | jq -r '[.count, .took_ms, .evaluated_at] | @tsv')
            [ "$r" = 0 ] || printf '%s\t%s\n' "$line" "$tt" >>"$W/siyu.runs"
        done
        counts=$(cut -f1 "$W/siyu.runs" | sort -u)
        SC=$(printf '%s\n' "$counts" | head -1)
        if [ "$(printf '%s\n' "$counts" | wc -l)" != 1 ]; then
            echo "WARNING: ${QN[$i]}: siyu gave different counts across runs: $(echo $counts)" >&2
            FAILED=1
        fi
        days=$(cut -f3 "$W/siyu.runs" | while read -r iso; do echo $((($(ms_of_iso "$iso") + TZ_OFFSET_MS) / DAY_MS)); done | sort -u)
        if [ "$(printf '%s\n' "$days" | wc -l)" != 1 ]; then
            echo "WARNING: ${QN[$i]}: the business day changed during the siyu runs (midnight in Asia/Shanghai); SQL uses the last" >&2
        fi
        TODAY=$(printf '%s\n' "$days" | tail -1)
        E=$(((TODAY + 1) * DAY_MS - TZ_OFFSET_MS))
        B7=$(((TODAY - 6) * DAY_MS - TZ_OFFSET_MS))
        B30=$(((TODAY - 29) * DAY_MS - TZ_OFFSET_MS))
        sql=$(printf '%s' "${QS[$i]}" | sed "s/{TODAY}/$TODAY/g; s/{E}/$E/g; s/{B7}/$B7/g; s/{B30}/$B30/g")
        P=$(cut -f2 "$W/siyu.runs" | stats)
        H=$(cut -f4 "$W/siyu.runs" | awk '{print $1 * 1000}' | stats)

        # SQLite: warm-up + RUNS in one connection, execute+fetch timed
        python3 "$T/sqlite_time.py" "$S" "$sql" "$RUNS" >"$W/sqlite.out" 2>&1 ||
            { cat "$W/sqlite.out" >&2; die "${QN[$i]}: SQLite failed"; }
        LC=$(cut -d' ' -f1 "$W/sqlite.out" | sort -u)
        L=$(cut -d' ' -f2 "$W/sqlite.out" | stats)

        # PostgreSQL: warm-up + RUNS, \timing (ms)
        { echo '\timing on'; for r in $(seq 0 "$RUNS"); do echo "$sql;"; done; } |
            "${PSQL[@]}" -d bench -tA >"$W/pg.out" 2>&1 || { cat "$W/pg.out" >&2; die "${QN[$i]}: psql failed"; }
        GC=$(grep -v '^Time:' "$W/pg.out" | grep -v '^Timing' | grep -v '^$' | sort -u)
        G=$(grep '^Time:' "$W/pg.out" | tail -n +2 | awk '{print $2}' | stats)

        mark=""
        if [ "$LC" != "$SC" ] || [ "$GC" != "$SC" ]; then
            mark=" MISMATCH (SQLite $(echo $LC), PG $(echo $GC))"
            FAILED=1
            {
                echo "WARNING: ${QN[$i]} at $N customers: counts differ: siyu $SC, SQLite $(echo $LC), PostgreSQL $(echo $GC)"
                echo "  expression: ${QE[$i]}"
                echo "  SQL:        $sql"
            } >&2
        fi
        set -- $P; p50=$1; pmax=$2
        set -- $H; h50=$1; hmax=$2
        set -- $L; l50=$1; lmax=$2
        set -- $G; g50=$1; gmax=$2
        out "| ${QN[$i]} | $SC$mark | $p50 / $pmax | $h50 / $hmax | $l50 / $lmax | $g50 / $gmax | $(ratio "$g50" "$p50")× | $(ratio "$l50" "$p50")× |"
    done

    RSS=$(ps -o rss= -p "$SIYU_PID" | awk '{printf "%.1f", $1 / 1024}')
    HWM=$(awk '/^VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$SIYU_PID/status" 2>/dev/null || echo "?")
    out ""
    ANON=$(awk '/^Anonymous:/ {printf "%.1f", $2 / 1024}' "/proc/$SIYU_PID/smaps_rollup" 2>/dev/null || echo "?")
    out "siyu resident memory: $RSS0 MiB once serving, $RSS MiB after the queries (ps -o rss; $ANON MiB of it anonymous, the rest file pages; peak VmHWM $HWM MiB)"
    out "queries as SQL, with the bounds of the last query: B7=$B7 B30=$B30 E=$E TODAY=$TODAY"
    stop_siyu
    if [ -z "$STORE_DIR" ]; then rm -rf "$D"; fi
    rm -rf "$W"
done

out ""
if [ "$FAILED" != 0 ]; then
    out "RESULT: some counts did not agree (see the warnings and MISMATCH above)"
    exit 1
fi
out "RESULT: all counts agree across siyu, SQLite and PostgreSQL"

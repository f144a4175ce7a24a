# bench/lib.sh — shell helpers shared by the HTTP benchmarks (sourced).

# thread_cpu PID: each thread name of the process with the CPU time its
# threads have had, in nanoseconds (the first field of schedstat: time on a
# CPU, exact, unlike the tick counts of /proc/PID/stat).  Threads of one name
# (the HTTP threads, siyu-http) are summed.
thread_cpu() {
    for t in /proc/"$1"/task/*; do
        echo "$(cat "$t/comm" 2>/dev/null) $(cut -d' ' -f1 "$t/schedstat" 2>/dev/null)"
    done | awk 'NF == 2 {t[$1] += $2} END {for (n in t) print n, t[n]}' | sort
}

# cpu_per_op BEFORE AFTER N WHAT: "T us of CPU per WHAT (name us, ...)" from
# two thread_cpu snapshots over N operations.
cpu_per_op() {
    join -a 2 -e 0 -o 2.1,1.2,2.2 "$1" "$2" | awk -v n="$3" -v what="$4" '
        { us = ($3 - $2) / 1e3 / n; total += us; if (us >= 0.5) parts = parts sprintf(", %s %.0f", $1, us) }
        END { printf "%.0f us of CPU per %s (%s)", total, what, substr(parts, 3) }'
}

# to_ms VALUE: wrk's latency (us, ms, s or m) in milliseconds.
to_ms() {
    printf '%s\n' "$1" | awk '{
        v = $1 + 0
        if ($1 ~ /us$/) v /= 1000; else if ($1 ~ /ms$/) v += 0; else if ($1 ~ /m$/) v *= 60000; else if ($1 ~ /s$/) v *= 1000
        printf "%.2f", v }'
}

# WAL_PAGES=1: which tables and indexes the run's commits wrote.  wal_keep
# copies the running server's WAL (a graceful stop would checkpoint and empty
# it); wal_pages prints its frames by B-tree once the server has stopped
# (bench/walpages.py).
wal_keep() { # DATA_DIR
    if [ -n "${WAL_PAGES:-}" ]; then cp "$1/siyu.db-wal" "$1/../wal.copy" 2>/dev/null || true; fi
}
wal_pages() { # DATA_DIR
    if [ -n "${WAL_PAGES:-}" ] && [ -s "$1/../wal.copy" ]; then
        echo "pages written by B-tree (WAL_PAGES):"
        python3 "$(dirname "${BASH_SOURCE[0]}")/walpages.py" "$1/../wal.copy" "$1/siyu.db"
    fi
}

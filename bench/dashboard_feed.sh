#!/usr/bin/env bash
# dashboard_feed.sh - the dashboard's live feed with a large fleet: a coordinator, N fake
# workers (drover stress, attached, holding tests that run for a while), one page open
# in chromium; prints the bytes per second the page receives, what GET /api/v1/workers
# (the whole fleet) weighs for comparison, and the coordinator's CPU per second with the
# page open, and whether the page stays usable (live, next page, a worker's detail).
#
# Usage: bench/dashboard_feed.sh [BUILD_DIR]; env WORKERS (default "1000 10000"),
# SECONDS_MEASURED (10). Prints figures; asserts nothing.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
drover=${1:-$root/build}/drover
work=$(mktemp -d "${TMPDIR:-/tmp}/drover-feed.XXXXXX")
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    sleep 1
    for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
for n in ${WORKERS:-1000 10000}; do
    rm -f "$work/port" "$work/drover.db"*
    "$drover" coordinator --listen 127.0.0.1:0 --port-file "$work/port" --db "$work/drover.db" \
        --client-token C --worker-token W --open-read --heartbeat-timeout 30 >"$work/coord-$n.log" 2>&1 &
    coord=$!
    pids+=("$coord")
    for _ in $(seq 1 100); do [[ -s $work/port ]] && break; sleep 0.05; done
    url="http://127.0.0.1:$(cat "$work/port")"
    # Tests of 60 s each, two per worker: the fleet stays connected and busy while
    # measured. One stress process holds every worker (drv_agent_hub_quiet).
    "$drover" stress --url "$url" --token C --worker-token W --workers "$n" --tests $((2 * n)) \
        --duration-mean 60 --sigma 0 --time-limit 300 >"$work/stress-$n.log" 2>&1 &
    pids+=("$!")
    for _ in $(seq 1 600); do
        k=$(curl -s --max-time 10 "$url/api/v1/status" | sed -n 's/.*"connected": *\([0-9]*\).*/\1/p') || true
        kill -0 "$coord" 2>/dev/null || { tail -5 "$work/coord-$n.log"; exit 1; }
        [[ ${k:-0} -ge $n ]] && break
        sleep 0.2
    done
    sleep 2
    full=$(curl -s "$url/api/v1/workers" | wc -c)
    t0=$(cpu_ticks "$coord")
    idle=$(sleep "${SECONDS_MEASURED:-10}"; echo $(( $(cpu_ticks "$coord") - t0 )))
    page=$(TIMINGS=1 node "$root/bench/dashboard_feed.mjs" "$url" "${SECONDS_MEASURED:-10}")
    t1=$(cpu_ticks "$coord")
    page200=$(node "$root/bench/dashboard_feed.mjs" "$url" "${SECONDS_MEASURED:-10}" 200)
    with=$(( $(cpu_ticks "$coord") - t1 ))
    t2=$(cpu_ticks "$coord")
    byscore=$(SORT=score node "$root/bench/dashboard_feed.mjs" "$url" "${SECONDS_MEASURED:-10}")
    scored=$(( $(cpu_ticks "$coord") - t2 ))
    hz=$(getconf CLK_TCK)
    echo "workers $n (connected ${k:-?}): page of 50 rows: ${page%%$'\n'*}"
    echo "workers $n: ${page#*$'\n'}"
    echo "workers $n: page of 200 rows: $page200"
    echo "workers $n: page of 50 rows sorted by score: $byscore; coordinator CPU $(awk -v t="$scored" -v h="$(getconf CLK_TCK)" -v s="${SECONDS_MEASURED:-10}" 'BEGIN{printf "%.3f", t/h/(s+5.5)}') s/s"
    echo "workers $n: GET /api/v1/workers (the whole fleet, what each snapshot carried before): $full bytes"
    echo "workers $n: coordinator CPU idle $(awk -v t="$idle" -v h="$hz" -v s="${SECONDS_MEASURED:-10}" 'BEGIN{printf "%.3f", t/h/s}') s/s, with a page open (incl. page start-up) $(awk -v t="$with" -v h="$hz" -v s="${SECONDS_MEASURED:-10}" 'BEGIN{printf "%.3f", t/h/(s+4)}') s/s"
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    sleep 2
    for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    pids=()
done

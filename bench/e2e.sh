#!/usr/bin/env bash
# e2e.sh - tests through the whole system on this machine, against xargs -P.
#
#   1. N tests of `true` through coordinator + WORKERS local workers of SLOTS slots +
#      the SQLite store, from the submission to the run's end; in the same run the same
#      N `true` processes through `xargs -P WORKERS*SLOTS`. Prints both rates and their
#      ratio (the bar: >= 0.9).
#   2. ACK_N tests through the same path with workers in --ack-only mode (no process:
#      each test is acknowledged as passed at once): tests/s of coordinator, protocol
#      and store (the bar: >= 50,000/s).
#
# Usage: bench/e2e.sh [BUILD_DIR]; env N (default 2000), ACK_N (100000), WORKERS (2),
# SLOTS (2), WARMUP (200 tests run first, untimed); N=0 skips part 1, ACK_N=0 part 2.
# Prints figures; asserts nothing (these machines are shared and noisy).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
drover=${1:-$root/build}/drover
N=${N:-2000}
ACK_N=${ACK_N:-100000}
WORKERS=${WORKERS:-2}
SLOTS=${SLOTS:-2}
WARMUP=${WARMUP:-200}
P=$((WORKERS * SLOTS))
work=$(mktemp -d "${TMPDIR:-/tmp}/drover-bench.XXXXXX")
pids=()
stop_started() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    sleep 0.3
    for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    pids=()
}
stop_all() {
    stop_started
    rm -rf "$work"
}
trap stop_all EXIT
trap "exit 143" TERM INT
now() { date +%s.%N; }
calc() { awk "BEGIN { print $1 }"; }

# submit_and_wait URL COUNT RUN DIR: submits COUNT tests of `true` as run RUN (the
# RUN-th run of that coordinator), waits until it is done, sets ELAPSED to the seconds.
submit_and_wait() {
    local url=$1 count=$2 run=$3 dir=$4
    seq "$count" | sed "s/.*/{\"name\":\"r$run-t&\",\"argv\":[\"true\"]}/" >"$dir/tests.jsonl"
    local t0 t1
    t0=$(now)
    curl -s -f -X POST --data-binary @"$dir/tests.jsonl" "$url/api/v1/tests?run=bench" >/dev/null
    until curl -s "$url/api/v1/runs/$run" | grep -q '"done":true'; do sleep 0.01; done
    t1=$(now)
    local passed
    passed=$(curl -s "$url/api/v1/runs/$run" | grep -o '"passed":[0-9]*' | cut -d: -f2)
    [[ "$passed" == "$count" ]] || echo "warning: only $passed of $count passed" >&2
    ELAPSED=$(calc "$t1 - $t0")
}

# run_through_drover COUNT [WORKER ARGS...]: a fresh coordinator and workers; a warm-up
# run (WARMUP tests, untimed, so durations are learned), then COUNT tests; prints the
# seconds of the latter in ELAPSED. Not run in a subshell: it records the PIDs it starts
# in pids (stop_all kills them). The coordinator runs with bench/e2e-balancer.json: the default
# settings but no thermal warm-up ramp (a new worker otherwise starts at a quarter of
# its slots and ramps up over 30 s: a policy for hot GPUs, not a cost of the pipeline).
run_through_drover() {
    local count=$1
    shift
    local dir
    dir=$(mktemp -d "$work/run.XXXX")
    "$drover" coordinator --listen 127.0.0.1:0 --db "$dir/drover.db" --port-file "$dir/port" \
        --quiet --max-body $((256 * 1024 * 1024)) --worker-token bench \
        --config "$root/bench/e2e-balancer.json" >"$dir/coordinator.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 1 200); do [[ -s "$dir/port" ]] && break; sleep 0.02; done
    local url=http://127.0.0.1:$(cat "$dir/port")
    for w in $(seq 1 "$WORKERS"); do
        "$drover" worker --url "$url" --token bench --name "w$w" --slots "$SLOTS" "$@" \
            >"$dir/worker$w.log" 2>&1 &
        pids+=($!)
    done
    local ok=""
    for _ in $(seq 1 500); do
        curl -s "$url/api/v1/status" | grep -q "\"connected\":$WORKERS" && ok=1 && break
        sleep 0.02
    done
    [[ -n "$ok" ]] || { echo "bench/e2e: the workers did not connect:" >&2; cat "$dir"/*.log >&2; exit 1; }
    submit_and_wait "$url" "$WARMUP" 1 "$dir"
    submit_and_wait "$url" "$count" 2 "$dir"
}

if ((N > 0)); then
    echo "bench/e2e: $N tests of \`true\`, $WORKERS workers x $SLOTS slots (parallelism $P)"
    t0=$(now)
    seq "$N" | xargs -P "$P" -n 1 true
    t1=$(now)
    xargs_s=$(calc "$t1 - $t0")
    run_through_drover "$N"
    drover_s=$ELAPSED
    stop_started
    printf "  xargs -P %d:        %8.2f s  %9.0f tests/s\n" "$P" "$xargs_s" "$(calc "$N / $xargs_s")"
    printf "  drover:             %8.2f s  %9.0f tests/s\n" "$drover_s" "$(calc "$N / $drover_s")"
    printf "  ratio drover/xargs: %8.3f   (bar: >= 0.9)\n" "$(calc "$xargs_s / $drover_s")"
fi
((ACK_N > 0)) || exit 0
run_through_drover "$ACK_N" --ack-only
ack_s=$ELAPSED
printf "acknowledge-only workers, %d tests: %.2f s, %.0f tests/s (bar: >= 50000)\n" "$ACK_N" \
    "$ack_s" "$(calc "$ACK_N / $ack_s")"

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
#   Both print the CPU time the coordinator and the workers spent per test while timed:
#   on a shared machine the rate moves with the neighbours' load, the CPU cost far less.
#
# Usage: bench/e2e.sh [BUILD_DIR]; env N (default 2000), ACK_N (100000), WORKERS (2),
# SLOTS (2), WARMUP (200 tests run first, untimed), POLL_S (0.02: see run_done); N=0
# skips part 1, ACK_N=0 part 2.
# Prints figures; asserts nothing (these machines are shared and noisy).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
drover=${1:-$root/build}/drover
N=${N:-2000}
ACK_N=${ACK_N:-100000}
WORKERS=${WORKERS:-2}
SLOTS=${SLOTS:-2}
WARMUP=${WARMUP:-200}
POLL_S=${POLL_S:-0.02}
P=$((WORKERS * SLOTS))
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"
bench_begin e2e

# run_done URL RUN: true once GET /api/v1/runs/RUN says "done":true. Polled every POLL_S
# seconds (default 0.02: under 1% of a 2 s run; each poll makes the coordinator count the
# run's tests by state, which at 10 ms was a tenth of its CPU in a 100,000-test run), and
# it spawns nothing (curl, grep and sleep per poll took a tenth of the two cores away
# from the system measured): an HTTP/1.0 request over bash's /dev/tcp, and the wait is a
# read with a timeout on a FIFO nobody writes.
run_done() {
    local hostport=${1#http://} resp=""
    exec {conn}<>"/dev/tcp/${hostport%:*}/${hostport##*:}" || return 1
    printf 'GET /api/v1/runs/%s HTTP/1.0\r\nHost: %s\r\n\r\n' "$2" "$hostport" >&"$conn"
    IFS= read -r -d '' -u "$conn" resp || true
    exec {conn}>&-
    [[ $resp == *'"done":true'* ]]
}
mkfifo "$work/tick"
exec {tick_fd}<>"$work/tick"

# submit_and_wait URL COUNT RUN DIR: submits COUNT tests of `true` as run RUN (the
# RUN-th run of that coordinator), waits until it is done, sets ELAPSED to the seconds.
submit_and_wait() {
    local url=$1 count=$2 run=$3 dir=$4
    seq "$count" | sed "s/.*/{\"name\":\"r$run-t&\",\"argv\":[\"true\"]}/" >"$dir/tests.jsonl"
    local t0 t1
    t0=$(now)
    curl -s -f -X POST --data-binary @"$dir/tests.jsonl" "$url/api/v1/tests?run=bench" >/dev/null
    until run_done "$url" "$run"; do read -r -t "$POLL_S" -u "$tick_fd" || true; done
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
    local url coordinator_opts=(--max-body $((256 * 1024 * 1024))
                                --config "$root/bench/e2e-balancer.json")
    start_fleet "$dir" "$@"
    submit_and_wait "$url" "$WARMUP" 1 "$dir"
    local coord=${pids[-$((WORKERS + 1))]} workers=("${pids[@]: -$WORKERS}")
    local c0 w0
    c0=$(cpu_ticks "$coord")
    w0=$(cpu_ticks "${workers[@]}")
    submit_and_wait "$url" "$count" 2 "$dir"
    CPU_COORD_US=$(calc "($(cpu_ticks "$coord") - $c0) * 1e6 / $TICKS / $count")
    CPU_WORKERS_US=$(calc "($(cpu_ticks "${workers[@]}") - $w0) * 1e6 / $TICKS / $count")
}

# cpu_ticks PID...: user + system CPU time of the processes so far, in clock ticks.
TICKS=$(getconf CLK_TCK)
cpu_ticks() {
    local pid sum=0 f
    for pid in "$@"; do
        read -r -a f <"/proc/$pid/stat"
        sum=$((sum + f[13] + f[14]))
    done
    echo "$sum"
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
    printf "  CPU per test: coordinator %.0f us, workers %.0f us (all of them)\n" "$CPU_COORD_US" \
        "$CPU_WORKERS_US"
fi
((ACK_N > 0)) || exit 0
run_through_drover "$ACK_N" --ack-only
ack_s=$ELAPSED
printf "acknowledge-only workers, %d tests: %.2f s, %.0f tests/s (bar: >= 50000)\n" "$ACK_N" \
    "$ack_s" "$(calc "$ACK_N / $ack_s")"
printf "  CPU per test: coordinator %.1f us, workers %.1f us (all of them); the whole machine\n" \
    "$CPU_COORD_US" "$CPU_WORKERS_US"
printf "  has %d cores, so 50000 tests/s leaves %.0f us per test for everything\n" "$(nproc)" \
    "$(calc "$(nproc) * 1e6 / 50000")"

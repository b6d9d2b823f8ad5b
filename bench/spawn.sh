#!/usr/bin/env bash
# spawn.sh - what one test costs the worker: its start, its reaping and its report.
#
# One coordinator and WORKERS local workers of SLOTS slots (default 1 x 1, so the tests of
# a slot follow each other); a warm-up run, then N tests of CMD (default `true`) as one
# run. Prints, per test: the wall time of the run, the worker's CPU time, the context
# switches of the worker and of its guardian (each wake-up of the guardian can take the
# CPU from the worker), and - when `perf` can record the scheduler's tracepoints (root) -
# the time from a test process's exit to the worker's next fork, the slot's idle time
# between two tests (median, mean, p90), and the test process's own time from fork to exit.
# The same N processes through `xargs -P WORKERS*SLOTS` are timed beside it.
#
# Usage: bench/spawn.sh [BUILD_DIR]; env N (2000), CMD (true), WORKERS (1), SLOTS (1),
# WARMUP (200). Prints figures; asserts nothing.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
drover=${1:-$root/build}/drover
N=${N:-2000}
CMD=${CMD:-$(type -P true)}
WORKERS=${WORKERS:-1}
SLOTS=${SLOTS:-1}
WARMUP=${WARMUP:-200}
P=$((WORKERS * SLOTS))
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"
bench_begin spawn

# tests NAME COUNT: COUNT tests of CMD as JSON lines.
tests() { seq "$2" | sed "s|.*|{\"name\":\"$1&\",\"argv\":[\"$CMD\"]}|"; }
# run_and_wait RUN FILE: submits FILE as the RUN-th run and waits until it is done.
run_and_wait() {
    curl -s -f -X POST --data-binary @"$2" "$url/api/v1/tests?run=spawn$1" >/dev/null
    until curl -s "$url/api/v1/runs/$1?wait=30" | grep -q '"done":true'; do :; done
}
# ctxt PID: voluntary + involuntary context switches of the process so far.
ctxt() { awk '/ctxt_switches/ {n += $2} END {print n + 0}' "/proc/$1/status"; }
TICKS=$(getconf CLK_TCK)
cpu_ticks() { local f; read -r -a f <"/proc/$1/stat"; echo $((f[13] + f[14])); }

echo "bench/spawn: $N tests of $CMD, $WORKERS worker(s) x $SLOTS slot(s); load $(cut -d' ' -f1-3 /proc/loadavg)"
t0=$(now)
seq "$N" | xargs -P "$P" -n 1 "$CMD"
t1=$(now)
xargs_s=$(calc "$t1 - $t0")

coordinator_opts=(--config "$root/bench/e2e-balancer.json")
start_fleet "$work" --no-detect
worker=${pids[1]}
guardian=$(pgrep -P "$worker" | head -n 1 || true)
tests w "$WARMUP" >"$work/warm.jsonl"
tests t "$N" >"$work/tests.jsonl"
run_and_wait 1 "$work/warm.jsonl"

perf_pid=""
if command -v perf >/dev/null && [[ $(id -u) == 0 ]]; then
    perf record -q -o "$work/perf.data" -e sched:sched_process_fork -e sched:sched_process_exit \
        -a >/dev/null 2>&1 &
    perf_pid=$!
    sleep 0.5
fi
c0=$(cpu_ticks "$worker")
x0=$(ctxt "$worker")
g0=$([[ -n "$guardian" ]] && ctxt "$guardian" || echo 0)
t0=$(now)
run_and_wait 2 "$work/tests.jsonl"
t1=$(now)
c1=$(cpu_ticks "$worker")
x1=$(ctxt "$worker")
g1=$([[ -n "$guardian" ]] && ctxt "$guardian" || echo 0)
drover_s=$(calc "$t1 - $t0")
[[ -n "$perf_pid" ]] && { kill -INT "$perf_pid"; wait "$perf_pid" || true; }

printf "  xargs -P %d:   %7.3f ms per test\n" "$P" "$(calc "$xargs_s * 1000 * $P / $N")"
printf "  drover:        %7.3f ms per test and slot (wall %.2f s)\n" \
    "$(calc "$drover_s * 1000 * $P / $N")" "$drover_s"
printf "  worker CPU:    %7.0f us per test (ticks of 1/%d s)\n" \
    "$(calc "($c1 - $c0) * 1e6 / $TICKS / $N * $WORKERS")" "$TICKS"
printf "  context switches per test: worker %.2f, guardian %.2f\n" \
    "$(calc "($x1 - $x0) / $N")" "$(calc "($g1 - $g0) / $N")"
[[ -n "$perf_pid" ]] || { echo "  (no perf as root: no exit -> next start figures)"; exit 0; }
perf script -i "$work/perf.data" -F pid,time,event,trace 2>/dev/null | awk -v workers="${pids[*]:1}" '
    BEGIN { split(workers, w, " "); for (i in w) mine[w[i]] = 1 }
    / sched:sched_process_fork: / {
        match($0, /child_pid=[0-9]+/); c = substr($0, RSTART + 10, RLENGTH - 10)
        if ($1 in mine) { parent[c] = $1; t = $2; sub(/:$/, "", t); fork_t[c] = t }
    }
    / sched:sched_process_exit: / {
        t = $2; sub(/:$/, "", t); if ($1 in parent) exit_t[$1] = t
    }
    END {
        for (c in exit_t) {
            printf "B %.9f\n", exit_t[c] - fork_t[c]
            best = -1 # the next fork by the same worker after this exit
            for (d in fork_t)
                if (parent[d] == parent[c] && fork_t[d] >= exit_t[c] && (best < 0 || fork_t[d] < best))
                    best = fork_t[d]
            if (best >= 0) printf "G %.9f\n", (best - exit_t[c]) * 1000
        }
    }' | sort -k1,1 -k2,2g | awk '
    $1 == "B" { busy += $2; tests++ }
    $1 == "G" { gap[++n] = $2; sum += $2 }
    END {
        if (n == 0) { print "  (no test processes seen)"; exit }
        printf "  exit -> next fork by the worker: median %.3f ms, mean %.3f, p90 %.3f (%d gaps)\n",
            gap[int((n + 1) / 2)], sum / n, gap[int(n * 0.9)], n
        printf "  fork -> exit of a test process: mean %.3f ms\n", busy * 1000 / tests
    }'

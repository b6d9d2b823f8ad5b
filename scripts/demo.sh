#!/usr/bin/env bash
# demo.sh - the main job on the embedded default (`make demo`): a coordinator on a fresh
# SQLite file, four local workers with different labels (one pretends to offer CUDA,
# one WebGPU in chromium), the sample suite examples/local-suite.json (real commands of
# varied durations and requirements, one that fails, one that times out, one no worker
# can run), live progress, the report, and everything it started stopped again.
#
# Usage: scripts/demo.sh [BUILD_DIR]   (default: build); DEMO_KEEP=1 keeps it running
# after the report until Ctrl-C. Files go to demo/ (kept: the
# store demo/drover.db, the JUnit report demo/report.xml and every process's log).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
drover=$build/drover
out=$root/demo
[[ -x "$drover" ]] || { echo "demo.sh: $drover not found: run make build first" >&2; exit 1; }

rm -rf "$out"
mkdir -p "$out"
pids=()
# Stops the workers first (they drain: nothing is running by then), then the
# coordinator; SIGKILL for anything still there after 5 s.
stop_all() {
    disown -a 2>/dev/null || true
    local i pid
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        pid=${pids[i]}
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
        kill -9 "$pid" 2>/dev/null || true
    done
}
trap stop_all EXIT
trap 'exit 130' INT TERM

export DROVER_TOKEN=demo-client-$RANDOM$RANDOM
export DROVER_WORKER_TOKEN=demo-worker-$RANDOM$RANDOM

# Port 7070 when it is free, else any free port.
listen=127.0.0.1:7070
if (exec 3<>/dev/tcp/127.0.0.1/7070) 2>/dev/null; then listen=127.0.0.1:0; fi
"$drover" coordinator --listen "$listen" --db "$out/drover.db" --port-file "$out/port" \
    --client-token "$DROVER_TOKEN" --worker-token "$DROVER_WORKER_TOKEN" \
    --open-read >"$out/coordinator.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do [[ -s "$out/port" ]] && break; sleep 0.05; done
[[ -s "$out/port" ]] || { echo "demo.sh: the coordinator did not start:" >&2; cat "$out/coordinator.log" >&2; exit 1; }
export DROVER_URL=http://127.0.0.1:$(cat "$out/port")

echo "drover demo: coordinator at $DROVER_URL (store $out/drover.db)"
echo "  dashboard: $DROVER_URL/   (live; reads are open)"
echo "  REST API:  curl $DROVER_URL/api/v1/status   (docs/api.md)"
# --no-detect: each worker offers what its labels say, whatever GPUs and browsers this
# machine has, so the demo routes the same way everywhere.
start_worker() {
    local name=$1
    shift
    "$drover" worker --url "$DROVER_URL" --name "$name" --no-detect "$@" >"$out/worker-$name.log" 2>&1 &
    pids+=($!)
    echo "  worker $name $*"
}
start_worker cpu-1 --slots 3
start_worker cpu-2 --slots 2
start_worker gpu-1 --slots 2 --label cuda
start_worker browser-1 --slots 2 --label chromium --label webgpu
for _ in $(seq 1 200); do
    "$drover" status 2>/dev/null | grep -q -E 'connected[^0-9]*4' && break
    sleep 0.05
done
echo

status=0
"$drover" run --run demo "$root/examples/local-suite.json" || status=$?
echo
"$drover" report --junit "$out/report.xml" >/dev/null && echo "JUnit report: $out/report.xml"
"$drover" status --workers || true
echo
echo "drover demo: done (logs in $out/); the suite has a failing, a timed-out and an"
echo "unschedulable test on purpose, so \`drover run\` exited $status."
# DEMO_KEEP=1 make demo: leave everything running to look around (the dashboard,
# drover top, drover status) until Ctrl-C.
if [[ "${DEMO_KEEP:-}" == 1 ]]; then
    echo "DEMO_KEEP=1: still running; dashboard $DROVER_URL/ ; Ctrl-C stops everything"
    while kill -0 "${pids[0]}" 2>/dev/null; do sleep 1; done
fi
exit 0

#!/usr/bin/env bash
# What the balancer learned outlives a coordinator restart. Two workers of different
# kinds (labels), one 4x slower (its tests multiply their sleeps by DRV_E2E_SLOW, which
# they inherit from it); a suite of one long test and short ones pinned to each kind
# (so each kind runs some: first runs say how fast a kind is). From the second run on,
# the long test goes to the fast worker; after a clean restart of the coordinator (and
# of both workers, the slow one registering first: a balancer that knows nothing gives
# it the long test, ties going to the lower worker index) it still does.
source "$(dirname "$0")/lib.sh"
start_coordinator
COORD_PORT=$PORT

start_workers() {
    DRV_E2E_SLOW=4 start_worker slow --slots 1 --label slowbox
    wait_workers 1
    start_worker fast --slots 1 --label fastbox
    wait_workers 2
}

# test NAME BASE_S [TAG]: one test sleeping BASE_S times the worker's slowness.
test_json() {
    local req=""
    [[ -z "${3:-}" ]] || req=',"requirements":{"tags":["'$3'"]}'
    echo '{"name":"'$1'","command":"sleep $(awk \"BEGIN{print '$2'*${DRV_E2E_SLOW:-1}}\")","shell":true'$req'}'
}
suite="$WORK/suite.json"
{
    echo '['
    test_json long 0.8
    for i in $(seq 1 8); do
        echo ","
        test_json "short-fast-$i" 0.05 fastbox
        echo ","
        test_json "short-slow-$i" 0.05 slowbox
    done
    echo ']'
} >"$suite"

# long_on RUN: the worker the long test of run RUN ran on.
long_on() {
    api GET "/api/v1/tests?name=long&run=$1&limit=10" | head -n 1 |
        grep -o '"worker":"[a-z]*"' | cut -d'"' -f4
}
run() {
    "$DROVER" run --quiet --run "r$1" "$suite" >"$WORK/run$1.out" 2>&1 || fail "run $1: $(cat "$WORK/run$1.out")"
}

start_workers
run 1
run 2
[[ "$(long_on 2)" == fast ]] || fail "before the restart the long test ran on $(long_on 2), expected fast"

# Stop everything cleanly (workers first: they would reconnect), then start again.
for pid in "${PIDS[@]}"; do
    [[ "$pid" == "$COORD_PID" ]] || kill -TERM "$pid" 2>/dev/null || true
done
for pid in "${PIDS[@]}"; do
    [[ "$pid" == "$COORD_PID" ]] || wait_until 10 bash -c "! kill -0 $pid 2>/dev/null"
done
kill -TERM "$COORD_PID"
wait_until 10 bash -c "! kill -0 $COORD_PID 2>/dev/null"
start_coordinator
start_workers
run 3
[[ "$(long_on 3)" == fast ]] || fail "after the restart the long test ran on $(long_on 3), expected fast"
echo ok

#!/usr/bin/env bash
# stress.sh - `drover stress` against a coordinator this script started: 20 fake workers
# take a burst of 2,000 tests through the real protocol (every test must pass: exit 0,
# and a tests/s figure is printed), then a short worker_churn run in which workers lose
# their connection, are killed and rejoin while tests are submitted, and every test
# still passes; with --away 4 (past the heartbeat timeout of 3 s) killed workers are
# lost, so the fleet really shrinks. Then --benchmark prints one row per pair of its
# grid, and --start --keep prints the dashboard's address and keeps the coordinator and
# its workers up until SIGINT.
source "$(dirname "$0")/lib.sh"

start_coordinator

"$DROVER" stress --url "$URL" --workers 20 --tests 2000 --scenario burst --time-limit 60 \
    >"$WORK/burst.out" 2>>"$WORK/stress.log" || {
    cat "$WORK/burst.out" >&2
    fail "stress burst did not pass every test"
}
cat "$WORK/burst.out"
grep -Eq '^passed: 2000/2000 .*: [0-9]+\.[0-9] tests/s' "$WORK/burst.out" ||
    fail "stress burst printed no tests/s figure"
grep -q '^assign latency: p50 ' "$WORK/burst.out" || fail "stress burst printed no latency"
grep -Eq '^coordinator memory: .*[0-9]+ kB' "$WORK/burst.out" ||
    fail "stress burst printed no coordinator memory"

"$DROVER" stress --url "$URL" --workers 20 --tests 400 --rate 200 --scenario worker_churn \
    --time-limit 30 >"$WORK/churn.out" 2>>"$WORK/stress.log" || {
    cat "$WORK/churn.out" >&2
    fail "stress worker_churn did not pass every test"
}
cat "$WORK/churn.out"
grep -Eq '^passed: 400/400 .* tests/s' "$WORK/churn.out" || fail "worker_churn printed no tests/s"
grep -Eq '^churn: [1-9][0-9]* disconnects' "$WORK/churn.out" ||
    fail "worker_churn cut no connection"
# --away 4: a killed worker stays away past the heartbeat timeout: lost, then back.
"$DROVER" stress --url "$URL" --workers 10 --tests 150 --rate 30 --scenario worker_churn \
    --away 4 --time-limit 40 >"$WORK/away.out" 2>>"$WORK/stress.log" || true
cat "$WORK/away.out"
grep -Eq '^churn: .* [1-9][0-9]* workers killed' "$WORK/away.out" || fail "--away: no worker killed"
grep -q 'worker stress-[0-9]* lost (no heartbeat' "$WORK/coordinator.log" ||
    fail "--away 4: no worker was lost"

# --benchmark: a table, one row per pair, every test passed.
"$DROVER" stress --benchmark --grid-workers 2,6 --grid-tests 40 --time-limit 30 \
    >"$WORK/bench.out" 2>>"$WORK/stress.log" || { cat "$WORK/bench.out" >&2; fail "--benchmark failed"; }
cat "$WORK/bench.out"
grep -Eq '^ +workers +tests +passed' "$WORK/bench.out" || fail "--benchmark: no table header"
grep -Eq '^ +2 +40 +40 ' "$WORK/bench.out" && grep -Eq '^ +6 +40 +40 ' "$WORK/bench.out" ||
    fail "--benchmark: a row is missing or not every test passed"

# --start --keep: the dashboard's address first; after the run it stays up with its
# workers until SIGINT.
"$DROVER" stress --start --keep --workers 3 --tests 30 --time-limit 30 >"$WORK/keep.out" \
    2>"$WORK/keep.err" &
keep_pid=$!
PIDS+=("$keep_pid")
wait_until 30 grep -q '^passed: 30/30' "$WORK/keep.out"
dash=$(sed -n 's/^dashboard: //p' "$WORK/keep.out")
[[ $dash == http://127.0.0.1:*/#token=* ]] || fail "--start printed no dashboard address: $(cat "$WORK/keep.out")"
base=${dash%%/#*}
tok=${dash##*#token=}
curl -s -S --max-time 5 "$base/" >"$WORK/keep-page.html" || fail "--keep: GET / failed"
grep -q 'var uPlot=' "$WORK/keep-page.html" || fail "--keep: the dashboard is not served"
sleep 1
curl -s -S --max-time 5 -H "Authorization: Bearer $tok" "$base/api/v1/status" >"$WORK/keep-status.json"
grep -Eq '"connected": *3' "$WORK/keep-status.json" ||
    fail "--keep: the workers are not connected after the run: $(cat "$WORK/keep-status.json")"
kill -INT "$keep_pid"
wait_until 10 bash -c "! kill -0 $keep_pid 2>/dev/null"
curl -s --max-time 2 "$base/" >/dev/null && fail "--keep: the coordinator is still up after SIGINT"
echo "PASS"

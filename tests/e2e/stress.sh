#!/usr/bin/env bash
# stress.sh - `drover stress` against a coordinator this script started: 20 fake workers
# take a burst of 2,000 tests through the real protocol (every test must pass: exit 0,
# and a tests/s figure is printed), then a short worker_churn run in which workers lose
# their connection, are killed and rejoin while tests are submitted, and every test
# still passes.
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
echo "PASS"

#!/usr/bin/env bash
# A straggler gets a speculative copy: the test "hang" takes 0.5 s, except on the worker
# "stuck" (its environment makes it sleep 30 s). Once it has run well past its p90
# there and another worker has a free slot, a copy runs there and finishes first: the
# run ends long before the hang would, the test has exactly one result, the copy on
# "stuck" is recorded superseded and its process is killed; /metrics counts the copy.
source "$(dirname "$0")/lib.sh"
start_coordinator
start_worker fast --slots 1 --label bbox
wait_workers 1

hang='{"name":"hang","command":"echo $$ > '"$WORK"'/pid-${DRV_E2E_HANG:-0}; if [ -n \"$DRV_E2E_HANG\" ]; then sleep 30; else sleep 0.5; fi","shell":true}'
# Run 1 teaches how long "hang" takes (on fast).
echo "[$hang]" >"$WORK/one.json"
"$DROVER" run --quiet --run learn "$WORK/one.json" >"$WORK/run1.out" 2>&1 || fail "run 1: $(cat "$WORK/run1.out")"

DRV_E2E_HANG=1 start_worker stuck --slots 1
wait_workers 2
# Run 2: fast is busy for 3 s with a test only it can run, so "hang" goes to stuck.
echo '[{"name":"blocker","argv":["sleep","3"],"requirements":{"tags":["bbox"]}},'"$hang"']' >"$WORK/two.json"
start=$SECONDS
"$DROVER" run --quiet --run stragglers --wait-timeout 25 "$WORK/two.json" >"$WORK/run2.out" 2>&1 ||
    fail "run 2: $(cat "$WORK/run2.out")"
took=$((SECONDS - start))
((took < 15)) || fail "run 2 took $took s: the hang was waited for"

id=$(api GET '/api/v1/tests?name=hang&run=2' | head -n 1 | grep -o '"id":[0-9]*' | cut -d: -f2)
[[ $(wc -w <<<"$id") -eq 1 ]] || fail "expected one test hang in run 2, got: $id"
t=$(api GET "/api/v1/tests/$id" | head -n 1)
grep -q '"state":"passed"' <<<"$t" || fail "hang did not pass: $t"
[[ $(grep -o '"state":"finished"' <<<"$t" | wc -l) -eq 1 ]] || fail "not exactly one result: $t"
[[ $(grep -o '"state":"superseded"' <<<"$t" | wc -l) -eq 1 ]] || fail "no superseded copy: $t"
grep -q '"worker":"stuck","state":"superseded"' <<<"$t" || fail "the copy on stuck was not the one superseded: $t"
grep -q '"copy_of":1' <<<"$t" || fail "the winner is not marked a copy of attempt 1: $t"

# The copy on stuck was killed, with its process group.
[[ -s "$WORK/pid-1" ]] || fail "hang never started on stuck"
wait_until 10 bash -c "! kill -0 $(cat "$WORK/pid-1") 2>/dev/null"
# Read whole first: grep -q closing the pipe early fails curl under pipefail.
metrics=$(api GET /metrics)
grep -q '^drover_speculations_total 1$' <<<"$metrics" ||
    fail "drover_speculations_total is not 1: $(grep speculations <<<"$metrics")"
# The report says which copy won.
"$DROVER" report 2 --junit "$WORK/report.xml" --json "$WORK/report.json" 2>/dev/null || fail "drover report failed"
grep -q 'drover: speculation: the speculative copy won: attempt 2 on fast' "$WORK/report.xml" ||
    fail "the JUnit report does not say which copy won: $(cat "$WORK/report.xml")"
junit_valid "$WORK/report.xml"
tr -d ' \n' <"$WORK/report.json" | grep -q '"speculation":{"winner_attempt":2,"winner_worker":"fast","copy_won":true}' ||
    fail "the JSON report does not say which copy won: $(cat "$WORK/report.json")"
echo "ok (run 2: $took s)"

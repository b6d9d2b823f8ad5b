#!/usr/bin/env bash
# A straggler gets a speculative copy, and (run 3) a copy started while nothing waited
# yields to work that arrives. The straggler: the test "hang" takes 0.5 s, except on the worker
# "stuck" (its environment makes it sleep 30 s). Once it has run well past its p90
# there and another worker has a free slot, a copy runs there and finishes first: the
# run ends long before the hang would, the test has exactly one result, the copy on
# "stuck" is recorded superseded and its process is killed; /metrics counts the copy.
source "$(dirname "$0")/lib.sh"
start_coordinator
start_worker fast --slots 1 --label bbox
wait_workers 1

hang='{"name":"hang","command":"echo $$ > '"$WORK"'/pid-${DRV_E2E_HANG:-0}; if [ -n \"$DRV_E2E_HANG\" ]; then sleep 30; else sleep 0.5; fi","shell":true}'
# "gate" takes 0.3 s, after waiting while the file hold exists (on any worker).
gate='{"name":"gate","command":"echo $$ > '"$WORK"'/gate-${DRV_E2E_HANG:-0}; while [ -e '"$WORK"'/hold ]; do sleep 0.05; done; sleep 0.3","shell":true}'
# Run 1 teaches how long "hang" and "gate" take (on fast).
echo "[$hang,$gate]" >"$WORK/one.json"
"$DROVER" run --quiet --run learn "$WORK/one.json" >"$WORK/run1.out" 2>&1 || fail "run 1: $(cat "$WORK/run1.out")"
rm -f "$WORK/gate-0"

DRV_E2E_HANG=1 start_worker stuck --slots 1 --label sbox
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

# spec5, run 3: a copy started while nothing waited yields to work that arrives. stuck is
# busy for 1.5 s, so "gate" goes to fast and holds there; once stuck is free, gate's copy
# runs there (nothing waits: its slot would idle) and holds too. Then a test only stuck
# can run arrives (run 4): the copy is killed for it, and once hold is gone the
# original's result is the one kept.
touch "$WORK/hold"
echo '[{"name":"blocker","argv":["sleep","1.5"],"requirements":{"tags":["sbox"]}},'"$gate"']' >"$WORK/yield.json"
"$DROVER" run --quiet --run yield --wait-timeout 25 "$WORK/yield.json" >"$WORK/yield.out" 2>&1 &
yield_run=$!
PIDS+=("$yield_run")
gate_test() { # gate's test record in run 3
    local id
    id=$(api GET '/api/v1/tests?name=gate&run=3' | head -n 1 | grep -o '"id":[0-9]*' | cut -d: -f2)
    [[ -n $id ]] && api GET "/api/v1/tests/$id" | head -n 1
}
wait_until 15 test -s "$WORK/gate-1" # the copy runs on stuck
[[ -s "$WORK/gate-0" ]] || fail "gate's original never started on fast: $(gate_test)"
copy_pid=$(cat "$WORK/gate-1")
"$DROVER" submit --quiet --run arrival --name late --require sbox -- sleep 0.1 >/dev/null ||
    fail "could not submit the late test"
end=$((SECONDS + 10))
until grep -q '"worker":"stuck","state":"superseded"' <<<"$(gate_test)"; do
    ((SECONDS < end)) || fail "the copy did not yield to the late test: $(gate_test)"
    sleep 0.1
done
wait_until 10 bash -c "! kill -0 $copy_pid 2>/dev/null" # its process was killed
rm -f "$WORK/hold"
wait "$yield_run" || fail "run 3: $(cat "$WORK/yield.out")"
t=$(gate_test)
grep -q '"state":"passed"' <<<"$t" || fail "gate did not pass: $t"
grep -q '"worker":"fast","state":"finished"' <<<"$t" || fail "the original's result was not kept: $t"
[[ $(grep -o '"state":"finished"' <<<"$t" | wc -l) -eq 1 ]] || fail "not exactly one result: $t"
grep -q '"worker":"stuck","state":"superseded"[^}]*"reason":"yielded"' <<<"$t" ||
    fail "the yielded copy is not recorded yielded: $t"
grep -q 'yields its slot to waiting work' "$WORK/coordinator.log" || fail "no yield in the log"
echo "ok (run 2: $took s; run 3: the copy yielded)"

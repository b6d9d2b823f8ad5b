#!/usr/bin/env bash
# The CLI as CI uses it: --version; exit codes (2 bad input, 3 coordinator unreachable,
# 0 passed, 1 failed, 4 timed out); submit --json gives the run id; drover runs lists runs; Ctrl-C on
# `drover run` cancels the run and says so, a second Ctrl-C detaches and leaves it going;
# --json on wait/run/explain/cancel, the ETA; --rerun-failures: the rerun on the other
# worker, flaky in the text report, the API, JUnit and the flakiness across runs.
source "$(dirname "$0")/lib.sh"
code() { # code EXPECTED CMD...: runs CMD and checks its exit status
    local want=$1 got=0
    shift
    "$@" >"$WORK/last.out" 2>&1 || got=$?
    [[ $got -eq $want ]] || { cat "$WORK/last.out"; fail "exit $got, expected $want: $*"; }
}
code 0 "$DROVER" --version
grep -q '^drover [0-9]' "$WORK/last.out" || fail "--version: $(cat "$WORK/last.out")"

echo '{"name":"a","argv":["true"]}' >"$WORK/ok.json"
echo '[{"name":"a","argv":["true"]},{"name":"a","argv":["false"]}]' >"$WORK/dup.json"
echo '{"name":"a","argv":["true"],"priority":5000}' >"$WORK/bad.json"
# Nothing listens on this port (the coordinator is not started yet): infrastructure.
code 3 "$DROVER" submit --url http://127.0.0.1:9 "$WORK/ok.json"
code 3 "$DROVER" runs --url http://127.0.0.1:9
code 2 "$DROVER" submit "$WORK/bad.json"
code 2 "$DROVER" submit "$WORK/dup.json"
grep -q '"a" (tests\[0\] and tests\[1\])' "$WORK/last.out" || fail "duplicates not named: $(cat "$WORK/last.out")"
code 2 "$DROVER" submit "$WORK/missing.json"

start_coordinator
start_worker w1 --slots 2
wait_workers 1
code 0 "$DROVER" submit --json --run first "$WORK/ok.json"
grep -q '^{"run_id": 1, "count": 1}$' "$WORK/last.out" || fail "submit --json: $(cat "$WORK/last.out")"
code 0 "$DROVER" wait 1 --timeout 30
code 1 "$DROVER" run -- false
code 0 "$DROVER" runs
grep -q '^1 *first ' "$WORK/last.out" || fail "drover runs does not list run 1: $(cat "$WORK/last.out")"
code 0 "$DROVER" runs --json --limit 1
 grep -q '"id": 2' "$WORK/last.out" || fail "runs --json --limit 1: $(cat "$WORK/last.out")"

# The worker keeps stderr apart, and a NUL byte does not cut the output (run 3).
code 0 "$DROVER" run --quiet -- sh -c 'echo out; echo err >&2; printf "a\\000b\\n"'
t=$(api GET /api/v1/tests/3 | head -n 1)
grep -q '"stderr_tail":"err\\n"' <<<"$t" || fail "stderr is not kept apart: $t"
grep -q 'a\\\\x00b\\n' <<<"$t" || fail "the NUL cut or lost the output: $t"
"$DROVER" report 3 --junit "$WORK/r.xml" 2>/dev/null || fail "report 3"
# Without a run id, report says which run it picked (another job's may be the latest).
code 0 "$DROVER" report --junit "$WORK/r2.xml"
grep -q 'no RUN given: reporting run 3, the most recent' "$WORK/last.out" || fail "report did not say: $(cat "$WORK/last.out")"
junit_valid "$WORK/r.xml" "$WORK/r2.xml"
# The schema refuses what CI readers would not take: a property inside a testcase.
sed 's|<system-out>|<properties/><system-out>|' "$WORK/r.xml" >"$WORK/bad.xml"
xmllint --noout --schema "$DRV_SOURCE_DIR/tests/data/junit.xsd" "$WORK/bad.xml" 2>/dev/null &&
    fail "the schema accepts properties inside a testcase"
# Jenkins' junit-4.xsd refuses a testsuite without its required tests count.
sed 's|<testsuite name="run 3" tests="1"|<testsuite name="run 3"|' "$WORK/r.xml" >"$WORK/bad4.xml"
grep -q '<testsuite name="run 3" failures' "$WORK/bad4.xml" || fail "bad4.xml was not made: $(head -3 "$WORK/bad4.xml")"
xmllint --noout --schema "$DRV_SOURCE_DIR/tests/data/jenkins-junit/junit-4.xsd" "$WORK/bad4.xml" 2>/dev/null &&
    fail "junit-4.xsd accepts a testsuite without tests"

# Ctrl-C cancels the run (run 4).
"$DROVER" run --quiet -- sleep 30 >"$WORK/int.out" 2>&1 &
pid=$!
wait_until 10 at_least 1 running
kill -INT "$pid"
wait_until 10 at_least 1 cancelled
wait "$pid" || true
grep -q 'Ctrl-C: cancelling the run' "$WORK/int.out" || fail "Ctrl-C said nothing: $(cat "$WORK/int.out")"
# A second Ctrl-C detaches at once, saying so (run 5). The coordinator is stopped
# between the two, so the first one's cancel cannot end the run (and `run` with it)
# before the second arrives.
"$DROVER" run --quiet -- sleep 30 >"$WORK/int2.out" 2>&1 &
pid=$!
wait_until 10 at_least 1 running
kill -STOP "$COORD_PID"
kill -INT "$pid"
sleep 0.05
kill -INT "$pid"
status=0
wait "$pid" || status=$?
kill -CONT "$COORD_PID"
[[ $status -eq 130 ]] || fail "a second Ctrl-C exited $status, expected 130"
grep -q 'detached' "$WORK/int2.out" || fail "the second Ctrl-C said nothing: $(cat "$WORK/int2.out")"

# A wait that runs out exits 4, its progress with an ETA; --json on wait, explain, cancel (run 6).
code 0 "$DROVER" submit --quiet -- sleep 30
code 4 "$DROVER" wait 6 --timeout 0.5
grep -q 'gave up waiting after 0.5 s' "$WORK/last.out" || fail "wait timeout: $(cat "$WORK/last.out")"
grep -Eq '^run 6: 0/1 done.*, ETA [0-9]+ s' "$WORK/last.out" || fail "no ETA: $(cat "$WORK/last.out")"
code 4 "$DROVER" run --json --wait-timeout 0.3 -- sleep 30
code 4 "$DROVER" wait --json --quiet --timeout 0.3 6
grep -q '"timed_out": true' "$WORK/last.out" || fail "wait --json: $(cat "$WORK/last.out")"
grep -q '"eta_s"' "$WORK/last.out" || fail "no eta_s in the run: $(cat "$WORK/last.out")"
code 0 "$DROVER" explain --json 7
grep -q '"state"' "$WORK/last.out" || fail "explain --json: $(cat "$WORK/last.out")"
code 2 "$DROVER" explain 999
code 0 "$DROVER" cancel --run 6 --json
grep -q '"cancelled": 1' "$WORK/last.out" || fail "cancel --json --run: $(cat "$WORK/last.out")"
code 1 "$DROVER" cancel 6 --json
grep -q '"error"' "$WORK/last.out" || fail "cancel --json of a final test: $(cat "$WORK/last.out")"
code 1 "$DROVER" wait 6 --json --quiet
grep -q '"cancelled": 1' "$WORK/last.out" || fail "wait --json of a done run: $(cat "$WORK/last.out")"

# --rerun-failures: a test that fails once, then passes on the other worker, is flaky: in the
# text report, the API, JUnit (flakyFailure) and its flakiness across runs (runs 8, 9).
code 0 "$DROVER" cancel --run 5
code 0 "$DROVER" cancel --run 7
start_worker w2 --slots 1
wait_workers 2
flaky=(sh -c "if [ -e '$WORK/marker' ]; then echo second; else touch '$WORK/marker'; echo first; exit 3; fi")
code 0 "$DROVER" run --rerun-failures 2 --name flaky -- "${flaky[@]}"
grep -q '^flaky (failed, then passed when rerun):' "$WORK/last.out" || fail "not shown flaky: $(cat "$WORK/last.out")"
grep -Eq '^  flaky \(test 8\): failed on (w1|w2), passed on (w1|w2)$' "$WORK/last.out" || fail "flaky line: $(cat "$WORK/last.out")"
t=$(api GET /api/v1/tests/8 | head -n 1)
grep -q '"flaky":true' <<<"$t" || fail "the API does not say flaky: $t"
w1=$(grep -o '"worker":"w[12]"' <<<"$t" | sed -n 1p)
w2=$(grep -o '"worker":"w[12]"' <<<"$t" | sed -n 2p)
[[ -n $w1 && $w1 != "$w2" ]] || fail "the rerun did not go to the other worker: $t"
code 0 "$DROVER" report 8 --junit "$WORK/flaky.xml"
grep -q '<flakyFailure message="exit 3 on w[12]" type="failed">first' "$WORK/flaky.xml" || fail "no flakyFailure: $(cat "$WORK/flaky.xml")"
junit_valid "$WORK/flaky.xml"
code 0 "$DROVER" run --quiet --rerun-failures 2 --name flaky -- "${flaky[@]}"
code 0 "$DROVER" status --test 9
grep -q '^flakiness: 50% (1 flaky of its last 2 runs by this name)' "$WORK/last.out" || fail "flakiness: $(cat "$WORK/last.out")"

# GET /runs/ID?wait=S holds the answer until the run is done (run 10): asked at once after
# the submission, it still says done; a bad S is refused, naming `wait`.
echo '{"name":"slow","argv":["sleep","1"]}' >"$WORK/slow.json"
code 0 "$DROVER" submit --json "$WORK/slow.json"
grep -q '"run_id": 10' "$WORK/last.out" || fail "submit: $(cat "$WORK/last.out")"
r=$(api GET "/api/v1/runs/10?wait=20")
grep -q '"done":true' <<<"$r" || fail "?wait=20 answered before the run was done: $r"
r=$(api GET "/api/v1/runs/10?wait=61")
grep -q '"field":"wait"' <<<"$r" && grep -q '^400$' <<<"$r" || fail "?wait=61 not refused: $r"
echo ok

#!/usr/bin/env bash
# `drover pytest` on tests/data/pytest_project: batches of node ids in one interpreter
# each, and every test keeps its own outcome (passed, failed with its assertion, error,
# skipped, xfailed, xpassed); a flaky test (fails once, through a marker file) is flaky
# with --rerun-failures 1; a test that kills its batch's process is an error and the
# tests of the batch that never ran are run again; the exit code is 1 (tests failed);
# the JUnit file names the tests as pytest does and passes xmllint.
source "$(dirname "$0")/lib.sh"
/usr/bin/python3 -m pytest --version >/dev/null 2>&1 || fail "python3-pytest is needed (scripts/setup.sh)"
cp -r "$DRV_SOURCE_DIR/tests/data/pytest_project" "$WORK/proj"
mkdir -p "$WORK/state"
export DRV_PYTEST_STATE="$WORK/state" DRV_PYTEST_CRASH=1

# Batching without a coordinator: by file (2 batches), by test (one per test).
cd "$WORK/proj"
n=$("$DROVER" pytest --dry-run --by file | grep -o '"name"' | wc -l)
[[ $n -eq 2 ]] || fail "--by file made $n batches, expected 2"
n=$("$DROVER" pytest --dry-run --by test | grep -o '"name"' | wc -l)
[[ $n -eq 13 ]] || fail "--by test made $n batches, expected 13"
n=$("$DROVER" pytest --dry-run --batch-size 4 -- -k param | grep -o '"name"' | wc -l)
[[ $n -eq 1 ]] || fail "-k param gave $n batches, expected 1"

start_coordinator
start_worker w1 --slots 2
start_worker w2 --slots 2
wait_workers 2
status=0
"$DROVER" pytest -v --rerun-failures 1 --junit "$WORK/junit.xml" --run py >"$WORK/out" 2>&1 || status=$?
cat "$WORK/out"
[[ $status -eq 1 ]] || fail "drover pytest exited $status, expected 1"
has() { grep -q -- "$1" "$WORK/out" || fail "expected in the output: $1"; }
has '^passed   test_outcomes.py::test_pass '
has '^failed   test_outcomes.py::test_fail .*the answer was wrong'
has '^error    test_outcomes.py::test_error .*the fixture broke'
has '^skipped  test_outcomes.py::test_skip .*not on this machine'
has '^xfailed  test_outcomes.py::test_xfail .*known bug 12'
has '^xpassed  test_outcomes.py::test_xpass'
has '^FLAKY    test_outcomes.py::test_flaky .*(failed first)'
has '^passed   test_outcomes.py::test_param\[3\]'
has '^error    test_crash.py::test_crash .*crashed the batch.s process'
has '^passed   test_crash.py::test_after_crash'
has '^passed   test_crash.py::test_before_crash'
has 'did not run (a batch crashed): submitting them again'
has '^13 tests: 7 passed, 1 failed, 2 errors, 1 skipped, 1 xfailed, 1 xpassed, 1 flaky'
# One interpreter per batch: the first round was two drover tests for 13 pytest tests;
# the later rounds (the crashed batch's unstarted test, the reruns) joined the same run.
has '^submitted 2 batches as run 1$'
[[ $(grep -c '^submitted .* as run 1$' "$WORK/out") -eq 3 ]] || fail "the rounds did not share run 1"

# Each test has its own result in the coordinator: a row of run 1 with the batch that ran
# it, its state, worker and outcome; the flaky test is one test with two attempts (failed,
# then passed) and the flakiness of its name; the crashed one failed as an error.
api GET "/api/v1/tests?run=1&limit=100" | head -n 1 >"$WORK/rows.json"
/usr/bin/python3 - "$WORK/rows.json" <<'PY' || fail "the member tests' stored results are wrong"
import json, sys
rows = json.load(open(sys.argv[1]))["tests"]
members = {r["name"]: r for r in rows if r.get("batch")}
batches = [r for r in rows if r.get("members")]
assert len(members) == 13, sorted(members)
assert len(batches) == 2 + 1 + 4, [b["name"] for b in batches]
# A batch that reported all its members passed (their failures are theirs); the two that
# crashed (first round, and test_crash's rerun) keep their own failure.
failed = [b["name"] for b in batches if b["state"] != "passed"]
assert len(failed) == 2 and all(n.startswith("test_crash.py") for n in failed), failed
want = {"test_outcomes.py::test_pass": ("passed", "passed"),
        "test_outcomes.py::test_fail": ("failed", "failed: AssertionError: the answer was wrong"),
        "test_outcomes.py::test_error": ("failed", "error: RuntimeError: the fixture broke"),
        "test_outcomes.py::test_skip": ("skipped", "skipped: "),
        "test_outcomes.py::test_xfail": ("skipped", "xfailed: "),
        "test_outcomes.py::test_xpass": ("passed", "xpassed"),
        "test_outcomes.py::test_flaky": ("passed", "passed"),
        "test_crash.py::test_crash": ("failed", "error: crashed the batch's process")}
for name, (state, reason) in want.items():
    r = members[name]
    assert r["state"] == state and r["reason"].startswith(reason), r
    assert r["worker"] in ("w1", "w2") and r["duration_s"] is not None, r
assert members["test_outcomes.py::test_flaky"]["attempts"] == 2, members["test_outcomes.py::test_flaky"]
assert members["test_outcomes.py::test_fail"]["attempts"] == 2
print("stored per test:", len(members), "members of", len(batches), "batches")
PY
flaky_id=$(/usr/bin/python3 -c 'import json,sys; print([r["id"] for r in json.load(open(sys.argv[1]))["tests"] if r["name"] == "test_outcomes.py::test_flaky"][0])' "$WORK/rows.json")
api GET "/api/v1/tests/$flaky_id" | head -n 1 | grep -q '"flakiness": *{"runs": *1, *"flaky": *1' ||
    fail "the flaky member test has no flakiness of its own: $(api GET /api/v1/tests/$flaky_id | head -c 600)"
"$DROVER" status --test test_outcomes.py::test_flaky | grep -q "flakiness: 100%" || fail "status --test NAME shows no flakiness"
# drover report: the member tests, not the batches that ran them.
"$DROVER" report 1 --junit "$WORK/report.xml" --json "$WORK/report.json" 2>"$WORK/report.err" ||
    fail "drover report failed: $(cat "$WORK/report.err")"
grep -q '^run 1: 13 tests reported' "$WORK/report.err" || fail "report: $(cat "$WORK/report.err")"
grep -q '<testcase name="test_flaky" classname="test_outcomes"' "$WORK/report.xml" ||
    fail "the report's JUnit lacks the member test"
if grep -q '\[batch [0-9]' "$WORK/report.xml"; then fail "the report's JUnit lists a batch"; fi
junit_valid "$WORK/report.xml"

[[ -s "$WORK/junit.xml" ]] || fail "no JUnit file"
grep -q '<testcase name="test_fail" classname="test_outcomes"' "$WORK/junit.xml" ||
    fail "the JUnit names are not pytest's"
grep -q 'message="[^"]*the answer was wrong' "$WORK/junit.xml" || fail "the failure message lacks the assertion"
grep -q '<testcase name="test_param\[2\]" classname="test_outcomes"' "$WORK/junit.xml" ||
    fail "a parametrized test is not named as pytest names it"
# --by auto keeps the measured durations, and the next batches are packed by them
# (longest first, a priority per batch).
grep -q '"test_outcomes.py::test_pass":' .drover-pytest-durations.json || fail "no durations file"
n=$("$DROVER" pytest --dry-run | grep -o '"priority"' | wc -l)
[[ $n -ge 1 ]] || fail "the second run's batches are not packed by duration"

# The flaky test as Maven Surefire writes one: passed, with the failed run before it.
grep -A3 '<testcase name="test_flaky"' "$WORK/junit.xml" | grep -q '<flakyFailure message="AssertionError: first run fails' ||
    fail "the flaky test has no flakyFailure"
grep -A3 '<testcase name="test_fail"' "$WORK/junit.xml" | grep -q '<rerunFailure' ||
    fail "the failed test run again has no rerunFailure"
junit_valid "$WORK/junit.xml"

# -v prints each test as its result comes in, not when its batch ends: test_waits, in
# the same batch (one file) after test_a_quick, waits for a file this script writes only
# once the line of test_a_quick was printed.
cat >test_a_wait.py <<'PY'
import os, time
def test_a_quick():
    pass
def test_waits():
    go = os.path.join(os.environ["DRV_PYTEST_STATE"], "go")
    for _ in range(600):
        if os.path.exists(go):
            return
        time.sleep(0.05)
    raise AssertionError("no -v line for test_a_quick while its batch ran")
PY
"$DROVER" pytest -v --by file --run stream -- test_a_wait.py 2>&1 |
    while IFS= read -r line; do
        printf '%s\n' "$line" >>"$WORK/stream"
        if [[ $line == passed*test_a_wait.py::test_a_quick* ]]; then touch "$DRV_PYTEST_STATE/go"; fi
    done
cat "$WORK/stream"
grep -q '^submitted 1 batch as run' "$WORK/stream" || fail "the two tests were not one batch"
grep -q '^passed   test_a_wait.py::test_waits' "$WORK/stream" ||
    fail "-v did not print test_a_quick while its batch went on"
# A coordinator killed and restarted while a batch runs: the member it stored before
# keeps its one result (its lines, seen again in the batch's tail, are not stored twice),
# and the member that ends after the restart gets its own.
cat >test_b_restart.py <<'PY'
import os, time
def test_1_first():
    pass
def test_2_waits():
    go = os.path.join(os.environ["DRV_PYTEST_STATE"], "go2")
    for _ in range(600):
        if os.path.exists(go):
            return
        time.sleep(0.05)
    raise AssertionError("not released")
PY
rows_named() { api GET "/api/v1/tests?name=$1" | head -n 1 | grep -o "\"name\": *\"$1\"" | wc -l; }
first_stored() { [[ $(rows_named test_b_restart.py::test_1_first) -eq 1 ]]; }
"$DROVER" pytest --quiet --by file --run restart -- test_b_restart.py >"$WORK/restart.out" 2>&1 &
cli=$!
PIDS+=("$cli")
wait_until 20 first_stored
COORD_PORT=$PORT
kill -9 "$COORD_PID"
start_coordinator
touch "$DRV_PYTEST_STATE/go2"
second_stored() { [[ $(rows_named test_b_restart.py::test_2_waits) -ge 1 ]]; }
wait_until 30 second_stored
wait "$cli" || true # it lost its coordinator for a moment (it says so and stops)
[[ $(rows_named test_b_restart.py::test_1_first) -eq 1 ]] ||
    fail "a member stored before the restart was stored again: $(api GET '/api/v1/tests?name=test_b_restart' | head -c 800)"
[[ $(rows_named test_b_restart.py::test_2_waits) -eq 1 ]] || fail "the member after the restart is not stored once"
# A member that failed in a run begun before a coordinator restart, submitted again in
# that run after it: one more attempt of the same test (flaky), not a test of its own.
# The batches print the member lines themselves (protocol.md "Member result lines").
batch() { # NAME OUTCOME
    jq -cn --arg name "$1" --arg out "$(printf '@@drover@@ start rr::m1\n@@drover@@ %s 0.01 rr::m1\tround' "$2")" \
        '[{name: $name, members: ["rr::m1"], argv: ["/bin/sh", "-c", "printf \"%s\\n\" \"$1\"", "x", $out]}]'
}
run_id=$(api POST "/api/v1/tests?run=rerun" --data-binary "$(batch rr-1 failed)" | head -n 1 |
    grep -o '"run_id": *[0-9]*' | grep -o '[0-9]*$')
[[ -n $run_id ]] || fail "the first batch was not accepted"
m1_failed() { api GET "/api/v1/tests?name=rr::m1" | head -n 1 | grep -q '"state": *"failed"'; }
wait_until 20 m1_failed
kill -9 "$COORD_PID"
start_coordinator
api POST "/api/v1/tests?run_id=$run_id" --data-binary "$(batch rr-2 passed)" | tail -n 1 | grep -q "^20[0-9]$" ||
    fail "the rerun batch was not accepted into run $run_id"
m1_passed() { api GET "/api/v1/tests?name=rr::m1" | head -n 1 | grep -q '"state": *"passed"'; }
wait_until 30 m1_passed
[[ $(rows_named rr::m1) -eq 1 ]] ||
    fail "the rerun after a restart is a test of its own: $(api GET '/api/v1/tests?name=rr::m1' | head -c 800)"
api GET "/api/v1/tests?name=rr::m1" | head -n 1 | grep -q '"attempts": *2' ||
    fail "the rerun after a restart is not the test's second attempt: $(api GET '/api/v1/tests?name=rr::m1' | head -c 800)"
echo ok

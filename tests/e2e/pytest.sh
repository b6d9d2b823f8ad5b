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
has '^error    test_crash.py::test_crash .*crashed the pytest process'
has '^passed   test_crash.py::test_after_crash'
has '^passed   test_crash.py::test_before_crash'
has 'did not run (a batch crashed): submitting them again'
has '^13 tests: 7 passed, 1 failed, 2 errors, 1 skipped, 1 xfailed, 1 xpassed, 1 flaky'
# One interpreter per batch: the first round was two drover tests for 13 pytest tests.
[[ $(api GET /api/v1/runs/1 | head -n 1 | grep -o '"submitted":[0-9]*') == '"submitted":2' ]] ||
    fail "the first round was not two batches"

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
echo ok

#!/usr/bin/env bash
# A suite of real commands across several workers: `drover run` passes what passes and
# exits 1 for the rest; requirements route tests (cuda only to the worker labelled cuda,
# webgpu only to the browser worker); a test no worker can run is unschedulable; a
# timeout kills the test's whole process group; the JUnit report is right.
source "$(dirname "$0")/lib.sh"
start_coordinator
start_worker cpu-1 --slots 2
start_worker gpu-1 --slots 2 --label cuda
start_worker browser-1 --slots 2 --label chromium --label webgpu
wait_workers 3

suite="$DRV_SOURCE_DIR/examples/local-suite.json"
# One more test: its background child must die with it at the timeout.
python_free_suite="$WORK/suite.json"
sed '$d' "$suite" >"$python_free_suite"
echo ",{\"name\":\"integration/test_timeout_group\",\"command\":\"sleep 30 & echo \$! > $WORK/child.pid; wait\",\"shell\":true,\"timeout_s\":1}]" >>"$python_free_suite"

status=0
"$DROVER" run --run e2e "$python_free_suite" >"$WORK/run.out" 2>&1 || status=$?
cat "$WORK/run.out"
[[ $status -eq 1 ]] || fail "drover run exited $status, expected 1 (a test fails)"

count() { count_in "$1" "&run=1"; }
[[ $(count passed) -eq 19 ]] || fail "expected 19 passed, got $(count passed)"
[[ $(count failed) -eq 1 ]] || fail "expected 1 failed, got $(count failed)"
[[ $(count timed_out) -eq 2 ]] || fail "expected 2 timed out, got $(count timed_out)"
[[ $(count unschedulable) -eq 1 ]] || fail "expected 1 unschedulable, got $(count unschedulable)"

# Routing: every cuda test ran on gpu-1, every webgpu test on browser-1.
gpu=$(api GET '/api/v1/tests?name=gpu/llama' | head -n 1)
[[ $(grep -o '"worker":"gpu-1"' <<<"$gpu" | wc -l) -eq 4 ]] || fail "cuda tests not all on gpu-1: $gpu"
web=$(api GET '/api/v1/tests?name=browser/webgpu' | head -n 1)
[[ $(grep -o '"worker":"browser-1"' <<<"$web" | wc -l) -eq 3 ]] || fail "webgpu tests not all on browser-1: $web"
api GET '/api/v1/tests?state=unschedulable' | head -n 1 | grep -q 'rocm' ||
    fail "the unschedulable test does not say which tag is missing"

# The timed-out test's background child died with its process group.
[[ -s "$WORK/child.pid" ]] || fail "the timeout test did not start"
child=$(cat "$WORK/child.pid")
wait_until 5 bash -c "! kill -0 $child 2>/dev/null"

# The JUnit report: one testcase per test, the failure with its output.
"$DROVER" report 1 --junit "$WORK/report.xml"
[[ $(grep -c '<testcase ' "$WORK/report.xml") -eq 23 ]] || fail "expected 23 testcases in the report"
junit_valid "$WORK/report.xml"
grep -q 'AssertionError: expected 30522 tokens' "$WORK/report.xml" || fail "the failure's output is not in the report"
grep -q '<skipped' "$WORK/report.xml" || fail "the unschedulable test is not reported as skipped"
echo ok

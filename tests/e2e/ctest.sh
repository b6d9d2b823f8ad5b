#!/usr/bin/env bash
# `drover ctest` on a real CMake project built here (tests/data/ctest_project): every
# CTest property comes out as CTest means it: WILL_FAIL inverts, PASS/FAIL regular
# expressions judge the output, a skip code and a skip expression skip, DISABLED is
# reported and never runs, a TIMEOUT kills, DEPENDS orders a chain, a failed fixture setup
# skips its user and its cleanup still runs last, RESOURCE_LOCK never overlaps,
# RUN_SERIAL runs alone, RESOURCE_GROUPS route to the worker with the resource, the
# environment and working directory arrive; the exit code is 1 (tests failed) and the
# JUnit file is written.
source "$(dirname "$0")/lib.sh"
command -v cmake >/dev/null && command -v ctest >/dev/null || fail "cmake and ctest are needed"
export DRV_CTEST_LOG="$WORK/ctest.log"
cmake -S "$DRV_SOURCE_DIR/tests/data/ctest_project" -B "$WORK/proj" >"$WORK/cmake.log" 2>&1 ||
    { cat "$WORK/cmake.log"; fail "the project does not configure"; }
cmake --build "$WORK/proj" >>"$WORK/cmake.log" 2>&1 || { cat "$WORK/cmake.log"; fail "the project does not build"; }

# The conversion, without a coordinator.
"$DROVER" ctest --build-dir "$WORK/proj" --dry-run >"$WORK/suite.json" || fail "--dry-run failed"
python3 - "$WORK/suite.json" <<'EOF' || fail "the converted suite is wrong"
import json, sys
t = {x["name"]: x for x in json.load(open(sys.argv[1]))}
assert sorted(t["env"]["labels"]) == ["env", "fast"], t["env"]
assert t["env"]["requirements"] == {"cpu": 2}, t["env"]
assert t["env"]["env"]["GREETING"] == "hello"
assert t["widget"]["requirements"] == {"tags": ["widget"]}, t["widget"]
assert t["timeout"]["timeout_s"] == 1
assert t["disabled"]["disabled"] is True
assert t["skip_code"]["skip_exit_code"] == 4 and t["skip_code"]["argv"][1:] == ["skip_code", "0", "4"]
assert t["will_fail"]["argv"][1:3] == ["judge", "--will-fail"]
assert t["chain2"]["after"] == ["chain1"] and t["chain2"]["run_anyway"] is True
assert t["db_user"]["after"] == ["db_setup"] and "run_anyway" not in t["db_user"]
assert sorted(t["db_cleanup"]["after"]) == ["db_setup", "db_user"] and t["db_cleanup"]["run_anyway"]
assert sorted(t["srv_cleanup"]["after"]) == ["srv_setup", "srv_user1", "srv_user2"]
assert t["lock2"]["locks"] == ["res"] and t["serial"]["exclusive"] is True
EOF
# Filters go to ctest.
n=$("$DROVER" ctest --build-dir "$WORK/proj" --dry-run -R '^chain' -E chain3 | grep -o '"name"' | wc -l)
[[ $n -eq 2 ]] || fail "-R ^chain -E chain3 gave $n tests, expected 2"
n=$("$DROVER" ctest --build-dir "$WORK/proj" --dry-run -L fast | grep -o '"name"' | wc -l)
[[ $n -eq 1 ]] || fail "-L fast gave $n tests, expected 1"
# --rerun-failures N: every test gets reruns N (the coordinator reruns a failed one).
n=$("$DROVER" ctest --build-dir "$WORK/proj" --dry-run -R '^chain' --rerun-failures 2 | grep -o '"reruns": *2' | wc -l)
[[ $n -eq 3 ]] || fail "--rerun-failures 2 gave $n tests reruns 2, expected 3"

start_coordinator
start_worker w1 --slots 2
start_worker w2 --slots 2 --label widget
wait_workers 2
status=0
"$DROVER" ctest --build-dir "$WORK/proj" --run ctest --junit "$WORK/junit.xml" -v >"$WORK/run.out" 2>&1 || status=$?
cat "$WORK/run.out"
cat "$DRV_CTEST_LOG"
[[ $status -eq 1 ]] || fail "drover ctest exited $status, expected 1 (tests failed)"
# -v: a line per test as it finishes, with its worker and why it did not pass.
grep -q '^passed    widget (.*, on w2)$' "$WORK/run.out" || fail "-v has no line for widget on w2"
grep -q '^skipped   db_user .*a test it runs after did not pass' "$WORK/run.out" || fail "-v: db_user"
grep -q '^failed    regex_fail .*exit 1' "$WORK/run.out" || fail "-v: regex_fail"
# The summary lines count the skipped tests (skip code, skip regex, disabled, db_user).
grep -q '^run 1 (ctest): 25 tests: .*, 4 skipped' "$WORK/run.out" || fail "the summary has no skipped: $(cat "$WORK/run.out")"
"$DROVER" status 1 | grep -q ', 4 skipped' || fail "drover status 1 does not count skipped: $("$DROVER" status 1)"

state() { api GET "/api/v1/tests?name=$1&run=1" | head -n 1 | grep -o '"state":"[a-z_]*"' | head -n 1 | cut -d'"' -f4; }
expect() { [[ "$(state "$1")" == "$2" ]] || fail "$1 is $(state "$1"), expected $2"; }
for t in plain will_fail regex_pass env widget chain1 chain2 chain3 db_cleanup srv_setup \
    srv_user1 srv_user2 srv_cleanup lock1 lock2 lock3 serial; do
    expect "$t" passed
done
for t in will_fail_but_passes regex_fail db_setup; do expect "$t" failed; done
for t in skip_code skip_regex disabled db_user; do expect "$t" skipped; done
expect timeout timed_out
api GET '/api/v1/tests?name=widget' | head -n 1 | grep -q '"worker":"w2"' || fail "widget did not run on w2"
api GET '/api/v1/tests?name=disabled' | head -n 1 | grep -q 'disabled: not run' || fail "disabled gives no reason"
grep -q 'start disabled' "$DRV_CTEST_LOG" && fail "the disabled test ran"
grep -q 'start db_user' "$DRV_CTEST_LOG" && fail "the user of a failed fixture ran"
id=$(api GET '/api/v1/tests?name=regex_fail' | head -n 1 | grep -o '"id":[0-9]*' | head -n 1 | cut -d: -f2)
api GET "/api/v1/tests/$id" | head -n 1 | grep -q 'matched FAIL_REGULAR_EXPRESSION' ||
    fail "the regex verdict is not in the output"

line() { grep -n -x "$1 $2" "$DRV_CTEST_LOG" | head -n 1 | cut -d: -f1; }
before() {
    local x y
    x=$(line "$1" "$2")
    y=$(line "$3" "$4")
    [[ -n "$x" && -n "$y" && $x -lt $y ]] || fail "expected '$1 $2' before '$3 $4'"
}
before end chain1 start chain2
before end chain2 start chain3
before end db_setup start db_cleanup
before end srv_setup start srv_user1
before end srv_setup start srv_user2
before end srv_user1 start srv_cleanup
before end srv_user2 start srv_cleanup
# (by name: an attempt moved away from a worker that had just started it is killed there
# and logs no end, then starts again elsewhere)
awk '/^start lock[123]$/ { for (n in open) if (n != $2) bad = 1; open[$2] = 1 }
     /^end lock[123]$/ { delete open[$2] } END { exit bad }' "$DRV_CTEST_LOG" ||
    fail "two RESOURCE_LOCK tests overlapped"
s=$(line start serial)
e=$(line end serial)
[[ $((e - s)) -eq 1 ]] || fail "RUN_SERIAL did not run alone"
# Nothing else open when it started, by name (the timeout test is killed before it logs
# its end).
open=$(head -n "$((s - 1))" "$DRV_CTEST_LOG" | grep -v ' timeout$' |
    awk '/^start/ { open[$2] = 1 } /^end/ { delete open[$2] } END { for (n in open) printf "%s ", n }')
[[ -z "$open" ]] || fail "running when the RUN_SERIAL test started: $open"

# -j 1: one at a time of tests that would otherwise all start at once (a counted lock).
: >"$DRV_CTEST_LOG"
"$DROVER" ctest --build-dir "$WORK/proj" -R '^(chain1|srv_setup|lock1|plain)$' -j 1 --quiet >"$WORK/j.out" 2>&1 ||
    { cat "$WORK/j.out"; fail "drover ctest -j 1 failed"; }
[[ $(grep -c '^start' "$DRV_CTEST_LOG") -eq 4 ]] || fail "-j 1 did not run 4 tests: $(cat "$DRV_CTEST_LOG")"
awk '/^start/ { if (n++) bad = 1 } /^end/ { n-- } END { exit bad }' "$DRV_CTEST_LOG" ||
    fail "-j 1: two tests ran at once: $(cat "$DRV_CTEST_LOG")"
[[ -s "$WORK/junit.xml" ]] || fail "no JUnit file"
[[ $(grep -c '<testcase ' "$WORK/junit.xml") -eq 25 ]] || fail "expected 25 testcases in the JUnit file"
junit_valid "$WORK/junit.xml"
echo ok

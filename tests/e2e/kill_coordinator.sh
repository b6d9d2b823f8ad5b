#!/usr/bin/env bash
# The coordinator killed with SIGKILL mid-run and restarted on the same store loses no
# accepted test and no reported result, and counts none twice.
source "$(dirname "$0")/lib.sh"
start_coordinator --recovery-grace 5
COORD_PORT=$PORT
start_worker w1 --slots 3
start_worker w2 --slots 3
wait_workers 2
tests=""
for i in $(seq 1 30); do
    tests+="{\"name\":\"t$i\",\"argv\":[\"sleep\",\"0.$((i % 7 + 2))\"]}"$'\n'
done
out=$(api POST '/api/v1/tests?run=crash' --data-binary "$tests")
grep -q '"count":30' <<<"$out" || fail "submit: $out"
wait_until 20 at_least 5 passed
kill -9 "$COORD_PID"
before=$(grep -c . "$WORK/coordinator.log" || true)
start_coordinator --recovery-grace 5
grep -q "recovered" "$WORK/coordinator.log" || fail "the restarted coordinator recovered nothing"
"$DROVER" wait 1 --timeout 60 || fail "the run did not pass after the restart"
[[ $(count_in passed) -eq 30 ]] || fail "expected 30 passed, got $(count_in passed)"
total=$(api GET /api/v1/status | head -n 1 | grep -o '"total":[0-9]*')
[[ "$total" == '"total":30' ]] || fail "expected 30 tests in the store, got $total"
for id in $(seq 1 30); do
    t=$(api GET /api/v1/tests/$id | head -n 1)
    [[ $(grep -o '"state":"finished"' <<<"$t" | wc -l) -eq 1 ]] || fail "test $id has not exactly one counted result: $t"
done
echo "ok ($before log lines before the crash)"

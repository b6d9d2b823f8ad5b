#!/usr/bin/env bash
# Store retention: with --retention of about 3 s, a finished run goes from the store
# (the run, its tests and their attempts) and the coordinator says so; a run still
# running stays, and so does everything of it. Nothing else changes: the whole-store
# counts follow, and new submissions get new ids.
source "$(dirname "$0")/lib.sh"
start_coordinator --retention 0.00003 # 2.6 s
start_worker w --slots 2
wait_workers 1
out=$(api POST '/api/v1/tests?run=done' --data-binary '[{"name":"a","argv":["true"]},{"name":"b","argv":["true"]}]')
grep -q '"count":2' <<<"$out" || fail "submit: $out"
"$DROVER" wait 1 --timeout 20 >/dev/null || fail "run 1 did not pass"
out=$(api POST '/api/v1/tests?run=running' --data-binary '[{"name":"c","argv":["sleep","30"]}]')
grep -q '"run_id":2' <<<"$out" || fail "submit: $out"
wait_until 10 bash -c "curl -s -H 'Authorization: Bearer $DROVER_TOKEN' $URL/api/v1/tests/3 | grep -q '\"state\":\"running\"'"

gone() {
    [[ "$(api GET /api/v1/runs/1 | tail -n 1)" == 404 ]]
}
wait_until 15 gone
for id in 1 2; do
    [[ "$(api GET /api/v1/tests/$id | tail -n 1)" == 404 ]] || fail "test $id of the removed run is still there"
done
out=$(api GET /api/v1/runs/2)
[[ "$(tail -n 1 <<<"$out")" == 200 ]] || fail "the running run was removed: $out"
out=$(api GET /api/v1/status)
grep -q '"total":1' <<<"$out" || fail "status after retention: $out"
grep -q '"running":1' <<<"$out" || fail "status after retention: $out"
wait_until 5 grep -q "retention: removed 1 runs (2 tests)" "$WORK/coordinator.log"
out=$(api POST '/api/v1/tests?run=after' --data-binary '[{"name":"d","argv":["true"]}]')
grep -q '"run_id":3,"count":1,"ids":\[4\]' <<<"$out" || fail "ids were reused after retention: $out"
echo ok

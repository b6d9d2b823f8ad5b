#!/usr/bin/env bash
# A worker killed with SIGKILL mid-test is noticed within the heartbeat timeout and its
# tests finish on the other worker; its late attempt never counts.
source "$(dirname "$0")/lib.sh"
start_coordinator --heartbeat-timeout 1
start_worker doomed --slots 2
doomed=$WORKER_PID
wait_workers 1
out=$(api POST '/api/v1/tests?run=k' --data-binary \
    '[{"name":"a","argv":["sleep","2"],"max_retries":2},{"name":"b","argv":["sleep","2"],"max_retries":2}]')
grep -q '"count":2' <<<"$out" || fail "submit: $out"
wait_until 10 at_least 1 running
start_worker survivor --slots 2
wait_workers 2
kill -9 "$doomed"
t0=$SECONDS
"$DROVER" wait 1 --timeout 30 || fail "the run did not pass after the worker was killed"
lost=$(api GET /api/v1/workers/doomed | head -n 1)
grep -q '"health":"lost"' <<<"$lost" || fail "doomed is not lost: $lost"
# An operator drains the survivor: it takes nothing new until cleared.
"$DROVER" fleet drain survivor | grep -q "worker survivor: draining" || fail "fleet drain"
"$DROVER" fleet clear survivor | grep -q "worker survivor: ok" || fail "fleet clear"
out=$("$DROVER" fleet clear nobody 2>&1) && fail "fleet clear of an unknown worker succeeded"
grep -q 'no worker "nobody"' <<<"$out" || fail "fleet clear of an unknown worker: $out"
for id in 1 2; do
    t=$(api GET /api/v1/tests/$id | head -n 1)
    grep -q '"state":"passed"' <<<"$t" || fail "test $id: $t"
    [[ $(grep -o '"state":"finished"' <<<"$t" | wc -l) -eq 1 ]] || fail "test $id counted more than once: $t"
done
echo "ok (recovered in $((SECONDS - t0)) s)"

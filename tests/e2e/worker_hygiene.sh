#!/usr/bin/env bash
# Left versus lost (issue 11): a worker drained with SIGTERM is `left`, one killed with
# SIGKILL is `lost`, each with a reason a person can read (no raw epoch); both are
# forgotten after --forget-workers-after, and a test only the forgotten worker could run
# becomes unschedulable with the reason (once some worker is there to say so). A
# forgotten worker's utilization series goes with it (mon3: the store does not grow with
# the fleet's churn): its history is a 404, the store has no row of it.
source "$(dirname "$0")/lib.sh"
start_coordinator --heartbeat-timeout 1 --forget-workers-after 3
start_worker gpu --label cuda
gpu=$WORKER_PID
start_worker plain
plain=$WORKER_PID
start_worker stay # with no worker at all, a test waits for the first to come
wait_workers 3
kill -TERM "$gpu"
kill -9 "$plain"
health_is() { api GET "/api/v1/workers/$1" | head -n 1 | grep -q "\"health\":\"$2\""; }
wait_until 10 health_is gpu left
wait_until 10 health_is plain lost
g=$(api GET /api/v1/workers/gpu | head -n 1)
grep -q '"health_reason":"left after draining' <<<"$g" || fail "gpu: $g"
p=$(api GET /api/v1/workers/plain | head -n 1)
grep -q '"health_reason":"lost: no heartbeat for' <<<"$p" || fail "plain: $p"
grep -q 'lost at' <<<"$g$p" && fail "a raw time in a reason: $g $p"
s=$(api GET /api/v1/status | head -n 1)
grep -q '"lost":1,"left":1' <<<"$s" || fail "status: $s"
out=$(api POST '/api/v1/tests?run=h' --data-binary \
    '{"name":"needs-cuda","argv":["true"],"requirements":{"tags":["cuda"]}}')
grep -q '"count":1' <<<"$out" || fail "submit: $out"
sleep 0.5
[[ $(count_in queued) -eq 1 ]] || fail "the test did not wait for the worker that left"
# Forgotten 3 s after it went, then unschedulable after the balancer's grace (5 s).
wait_until 20 at_least 1 unschedulable
t=$(api GET /api/v1/tests/1 | head -n 1)
grep -q 'cuda' <<<"$t" || fail "no reason: $t"
code=$(api GET /api/v1/workers/gpu | tail -n 1)
[[ "$code" == 404 ]] || fail "gpu not forgotten: $code"
grep -q "worker gpu forgotten" "$WORK/coordinator.log" || fail "no log line for the forgotten worker"
h=$(api GET "/api/v1/metrics/history?metric=worker_utilization&worker=stay&from=-60")
grep -q '"points":\[\[' <<<"$h" || fail "no utilization series of a worker still there: $h"
wait_until 10 bash -c "[[ \$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer $DROVER_TOKEN' \
    '$URL/api/v1/metrics/history?metric=worker_utilization&worker=gpu&from=-60') == 404 ]]"
left=$(/usr/bin/python3 -c 'import sqlite3,sys
db = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True)
print(db.execute("SELECT count(*) FROM sample_series WHERE key IN (?, ?)", ("gpu", "plain")).fetchone()[0],
      db.execute("SELECT count(*) FROM samples s JOIN sample_series k ON k.id = s.series WHERE k.key = ?", ("stay",)).fetchone()[0] > 0)' "$WORK/drover.db")
[[ "$left" == "0 True" ]] || fail "the forgotten workers' series are still in the store (series, stay has samples): $left"
echo "ok"

#!/usr/bin/env bash
# Whose fault a lost test is, for quarantine (quarantine_after 1 here):
# - a worker killed with SIGKILL while running a test and started again under its name
#   (a new process: a restart) is not a failing machine: it stays ok, and the test runs
#   again and passes;
# - a worker frozen (SIGSTOP) past the heartbeat timeout while running a test, whose same
#   process comes back: its machine or network lost the test, one infrastructure failure:
#   quarantined.
source "$(dirname "$0")/lib.sh"
echo '{"settings": {"quarantine_after": 1}}' >"$WORK/balancer.json"
# 2 s, not 1: under a loaded make check a restarted worker's first heartbeats came 1 s late,
# it was lost again and its return judged an infrastructure failure (quarantined).
start_coordinator --heartbeat-timeout 2 --probe-interval never --config "$WORK/balancer.json"
start_worker w --slots 1
wait_workers 1
health_is() { api GET "/api/v1/workers/$1" | head -n 1 | grep -q "\"health\":\"$2\""; }

out=$(api POST '/api/v1/tests?run=restart' --data-binary \
    '[{"name":"a","argv":["sleep","2"],"max_retries":5}]')
grep -q '"count":1' <<<"$out" || fail "submit a: $out"
wait_until 10 at_least 1 running
kill -9 "$WORKER_PID"
wait_until 10 health_is w lost
start_worker w --slots 1
wait_workers 1
"$DROVER" wait 1 --timeout 30 >/dev/null || fail "test a did not pass after the restart"
w=$(api GET /api/v1/workers/w | head -n 1)
grep -q '"health":"ok"' <<<"$w" || fail "a restarted worker was blamed: $w"

out=$(api POST '/api/v1/tests?run=freeze' --data-binary \
    '[{"name":"b","argv":["sleep","3"],"max_retries":5}]')
grep -q '"count":1' <<<"$out" || fail "submit b: $out"
wait_until 10 at_least 1 running
kill -STOP "$WORKER_PID"
wait_until 10 health_is w lost
kill -CONT "$WORKER_PID"
wait_until 15 health_is w quarantined
w=$(api GET /api/v1/workers/w | head -n 1)
grep -q '"health_reason":"1 infrastructure failures in a row (last: lost while running tests)"' \
    <<<"$w" || fail "the same process back: $w"
echo ok

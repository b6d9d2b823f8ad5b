#!/usr/bin/env bash
# Fencing (issue 11): a worker frozen (SIGSTOP) with an assign just sent to it is lost
# after the heartbeat timeout; its test runs elsewhere; resumed (SIGCONT), the frozen
# worker never starts the stale assign (the test's execution log has one line) and
# says it was fenced. Tests do not see the worker's token in their environment.
source "$(dirname "$0")/lib.sh"
start_coordinator --heartbeat-timeout 1
LOG="$WORK/executions"
: >"$LOG"
start_worker frozen --slots 2
frozen=$WORKER_PID
wait_workers 1
kill -STOP "$frozen"
out=$(api POST '/api/v1/tests?run=fence' --data-binary \
    "{\"name\":\"f\",\"command\":\"echo token=\${DROVER_WORKER_TOKEN:-none} >> $LOG\",\"shell\":true}")
grep -q '"count":1' <<<"$out" || fail "submit: $out"
wait_until 5 workers_are 0 # lost, its assign given back
start_worker other --slots 2
wait_until 15 at_least 1 passed
t=$(api GET /api/v1/tests/1 | head -n 1)
grep -q '"attempt":1,"worker":"frozen"' <<<"$t" ||
    fail "setup: the assign did not go to the frozen worker (machine too slow?): $t"
kill -CONT "$frozen"
# The resumed worker reconnects (fenced); give it the time to start the stale test.
wait_until 15 grep -q "fenced" "$WORK/worker-frozen.log"
wait_until 15 workers_are 2
sleep 1
[[ $(grep -c . "$LOG") -eq 1 ]] || fail "the test ran $(grep -c . "$LOG") times: $(cat "$LOG")"
grep -q "token=none" "$LOG" || fail "a test saw the worker token: $(cat "$LOG")"
t=$(api GET /api/v1/tests/1 | head -n 1)
[[ $(grep -o '"state":"finished"' <<<"$t" | wc -l) -eq 1 ]] || fail "not exactly one result: $t"
# Whose fault: tests that cannot start (missing program, bad cwd) fail with the reason
# and quarantine nobody.
bad=""
for i in 1 2 3 4; do
    bad+="{\"name\":\"missing$i\",\"argv\":[\"/nonexistent/prog$i\"]}"$'\n'
done
bad+="{\"name\":\"badcwd\",\"argv\":[\"true\"],\"cwd\":\"/nonexistent/dir\"}"
out=$(api POST '/api/v1/tests?run=bad' --data-binary "$bad")
grep -q '"count":5' <<<"$out" || fail "submit: $out"
wait_until 15 at_least 5 failed
t=$(api GET /api/v1/tests/2 | head -n 1)
grep -q 'could not start: spawn /nonexistent/prog1: no such file' <<<"$t" || fail "no reason: $t"
[[ $(grep -o '"attempt":' <<<"$t" | wc -l) -eq 1 ]] || fail "a test's own spawn failure was retried: $t"
for w in frozen other; do
    h=$(api GET /api/v1/workers/$w | head -n 1)
    grep -q '"health":"ok"' <<<"$h" || fail "worker $w: $h"
done
echo "ok"

#!/usr/bin/env bash
# Retry budgets survive a coordinator restart (issue 11): a test with max_retries 1 whose
# first worker is lost (one retry used) and whose second worker dies together with the
# coordinator (kill -9 of both during the second attempt) ends failed with
# retries_exhausted after the restart. It ran exactly twice (its own execution log says
# so), not a third time on a fresh budget. No orphans: the test process (sleep 30) of
# the worker killed with SIGKILL is gone within 5 s (the worker's guardian), and so is
# the second one's when its worker's whole process group is killed.
source "$(dirname "$0")/lib.sh"
start_coordinator --heartbeat-timeout 1 --recovery-grace 1
COORD_PORT=$PORT
LOG="$WORK/executions"
: >"$LOG"
start_worker w1 --slots 1
w1=$WORKER_PID
wait_workers 1
out=$(api POST '/api/v1/tests?run=budget' --data-binary \
    "{\"name\":\"b\",\"command\":\"echo \$\$ >> $LOG; exec sleep 30\",\"shell\":true,\"max_retries\":1}")
grep -q '"count":1' <<<"$out" || fail "submit: $out"
runs() { grep -c . "$LOG" || true; }
runs_are() { [[ $(runs) -eq $1 ]]; }
wait_until 10 runs_are 1
wait_until 10 at_least 1 running
orphan=$(head -n 1 "$LOG")
kill -0 "$orphan" || fail "the test process $orphan is not running"
kill -9 "$w1"
gone() { ! kill -0 "$orphan" 2>/dev/null; }
wait_until 5 gone
# The second worker runs in a process group of its own (setsid execs in place: the same
# PID), which is killed as a whole, as a supervisor or a shell's kill -9 -PGID does: its
# guardian lives in a session of its own and still kills the test.
setsid "$DROVER" worker --url "$URL" --name w2 --no-detect --pressure-root "$WORK/unmeasured" \
    --slots 1 >>"$WORK/worker-w2.log" 2>&1 &
w2=$!
PIDS+=("$w2")
[[ $(ps -o pgid= -p "$w2" | tr -d ' ') == "$w2" ]] || fail "setup: w2 does not lead its group"
wait_until 15 runs_are 2
wait_until 10 at_least 1 running
orphan=$(sed -n 2p "$LOG")
kill -0 "$orphan" || fail "the second test process $orphan is not running"
# The second worker (its whole group) and the coordinator die together.
kill -9 -- "-$w2" "$COORD_PID"
wait_until 5 gone
start_coordinator --heartbeat-timeout 1 --recovery-grace 1
start_worker w3 --slots 1
wait_until 15 at_least 1 failed
sleep 1.5 # room for a wrong third run
t=$(api GET /api/v1/tests/1 | head -n 1)
grep -q '"state":"failed"' <<<"$t" || fail "not failed: $t"
grep -q 'retries_exhausted (max_retries: 1 of 1 used' <<<"$t" || fail "no budget in the reason: $t"
[[ $(runs) -eq 2 ]] || fail "ran $(runs) times with max_retries 1"
# The explanation names the budget too.
"$DROVER" explain 1 | grep -q "max_retries" || fail "explain: $("$DROVER" explain 1 2>&1)"
echo "ok (ran $(runs) times)"

#!/usr/bin/env bash
# A move never runs a test twice (exec2, issue 11): the holder stalls 0.6 s between
# starting each test's process and saying `started` (DROVER_TEST_START_STALL_S), so the
# coordinator still takes the test for unstarted when a second worker joins and steals.
# The two-phase move asks the holder to release it first; the holder answers that it runs,
# and the move is dropped. Every test appends its id to an execution log: each id must be
# there once, every test must pass, and drover_moves_dropped_total must show the race was
# hit (else this test could not fail). The history's moves series counts the moves done
# only, as drover_moves_total does: a dropped move is in neither. Moves of unstarted
# tests: e2e_stealing.
source "$(dirname "$0")/lib.sh"
cat >"$WORK/balancer.json" <<'JSON'
{"settings": {"prefetch_max": 1024, "batch_target_s": 10, "migration_cost_s": 0.05,
              "thermal": {"initial_share": 1, "ramp_s": 0}}}
JSON
start_coordinator --config "$WORK/balancer.json"
DROVER_TEST_START_STALL_S=0.6 start_worker holder --slots 1
wait_workers 1
log="$WORK/executions.log"
tests() {
    for i in $(seq 1 "$1"); do
        printf '{"name":"race/t_%02d","priority":%d,"shell":true,"command":"echo $DROVER_TEST_ID >> %s; sleep 0.2"}\n' \
            "$i" $((900 - 100 * i)) "$log"
    done
}
# Run 1 teaches their durations, so in run 2 the holder takes all six at once. Distinct
# priorities make the order it runs them the order the balancer steals in.
out=$(api POST '/api/v1/tests?run=learn' --data-binary "$(tests 6)")
grep -q '"count":6' <<<"$out" || fail "submit run 1: $out"
"$DROVER" wait 1 --timeout 40 >/dev/null || fail "run 1 did not pass"
: >"$log"
out=$(api POST '/api/v1/tests?run=race' --data-binary "$(tests 6)")
grep -q '"count":6' <<<"$out" || fail "submit run 2: $out"
# The holder starts the first, stalled before `started`: the thief joins during the stall
# and steals the oldest test the coordinator believes unstarted, the one that runs.
wait_until 10 test -s "$log"
start_worker thief --slots 1
"$DROVER" wait 2 --timeout 60 >/dev/null || fail "run 2 did not pass"
dups=$(sort "$log" | uniq -d)
[[ -z "$dups" ]] || fail "tests ran more than once: $(tr '\n' ' ' <<<"$dups")"
n=$(wc -l <"$log")
((n == 6)) || fail "$n executions for 6 tests: $(tr '\n' ' ' <"$log")"
metrics=$(api GET /metrics)
dropped=$(grep '^drover_moves_dropped_total ' <<<"$metrics" | cut -d' ' -f2)
moves=$(grep '^drover_moves_total ' <<<"$metrics" | cut -d' ' -f2)
pending=$(grep '^drover_moves_pending ' <<<"$metrics" | cut -d' ' -f2)
((dropped >= 1)) || fail "no move was dropped: the race was not hit ($moves moves)"
((pending == 0)) || fail "$pending moves still pending after the run"
# The moves of the last 5 minutes, second by second, once the sampler has seen the last
# one: each sample is moves over the seconds since the one before (at least 1 s), so the
# sum is at most the moves done, and above 0 when there were some. A dropped move
# counted (dropped >= 1 here) would push it over.
sleep 2
hist=$(api GET '/api/v1/metrics/history?metric=moves&from=-300&step=1' | head -n 1)
/usr/bin/python3 -c '
import json, sys
moves, s = int(sys.argv[1]), sum(v for t, v in json.loads(sys.argv[2])["points"])
assert s <= moves + 0.5 and (moves == 0 or s > 0), (s, moves)' "$moves" "$hist" ||
    fail "the history counts other moves than the $moves done ($dropped dropped): $hist"
rows=$(api GET '/api/v1/tests?run=2&limit=100' | head -n 1)
passed=$(grep -o '"state":"passed"' <<<"$rows" | wc -l)
((passed == 6)) || fail "$passed of 6 passed: $rows"
echo "ok (6 executions, $moves moves done, $dropped dropped)"

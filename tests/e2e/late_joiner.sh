#!/usr/bin/env bash
# No hoarding: a 1-slot worker that has run one `true` (every test without a model id
# shares the "unknown" family) is given 12 tests of `sleep 1`; a second worker joins a
# second later and must run a fair part of them, not none (issue 10: it ran none, 24 s
# against 13 s ideal, because the unknown tests were predicted "0 s" from that `true` and
# all sat on the first worker). /metrics counts the moves stealing made.
source "$(dirname "$0")/lib.sh"
start_coordinator
start_worker early --slots 1
wait_workers 1
out=$(api POST '/api/v1/tests?run=warm' --data-binary '{"name":"warm/true","argv":["true"]}')
grep -q '"count":1' <<<"$out" || fail "submit warm: $out"
"$DROVER" wait 1 --timeout 20 >/dev/null || fail "the warm-up run did not pass"
tests=$(for i in $(seq 1 12); do printf '{"name":"late/sleep_%02d","argv":["sleep","1"]}\n' "$i"; done)
out=$(api POST '/api/v1/tests?run=late' --data-binary "$tests")
grep -q '"count":12' <<<"$out" || fail "submit: $out"
sleep 1
start_worker late --slots 1
"$DROVER" wait 2 --timeout 40 >/dev/null || fail "the run did not pass"
rows=$(api GET '/api/v1/tests?run=2&limit=100' | head -n 1)
early=$(grep -o '"worker":"early"' <<<"$rows" | wc -l)
late=$(grep -o '"worker":"late"' <<<"$rows" | wc -l)
((early + late == 12)) || fail "expected 12 tests on early and late, got $early + $late: $rows"
# Ideal: 6 each (the late one a second behind); before the fix: 0 on the late worker.
((late >= 4)) || fail "the late worker ran $late of 12 (early $early): it should take its share"
metrics=$(api GET /metrics | head -n -1)
grep -q '^drover_moves_total ' <<<"$metrics" || fail "/metrics has no drover_moves_total"
echo "ok (early $early, late $late, $(grep '^drover_moves_total ' <<<"$metrics"))"

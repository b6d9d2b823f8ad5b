#!/usr/bin/env bash
# Stealing: a 1-slot worker whose tests are known to be short holds all of a run's 12
# (batch_target_s 10 s of prefetch); a second worker joins and at once takes unstarted
# ones from it (the queue is empty: drv_balancer_steal_idle). Each move shows in the
# test's attempts (the abandoned one has reason "stolen") and in drover_moves_total.
source "$(dirname "$0")/lib.sh"
cat >"$WORK/balancer.json" <<'JSON'
{"settings": {"prefetch_max": 1024, "batch_target_s": 10, "migration_cost_s": 0.1,
              "thermal": {"initial_share": 1, "ramp_s": 0}}}
JSON
start_coordinator --config "$WORK/balancer.json"
start_worker holder --slots 1
wait_workers 1
tests=$(for i in $(seq 1 12); do printf '{"name":"steal/t_%02d","argv":["sleep","0.5"]}\n' "$i"; done)
out=$(api POST '/api/v1/tests?run=learn' --data-binary "$tests")
grep -q '"count":12' <<<"$out" || fail "submit run 1: $out"
"$DROVER" wait 1 --timeout 30 >/dev/null || fail "run 1 did not pass"
out=$(api POST '/api/v1/tests?run=steal' --data-binary "$tests")
grep -q '"count":12' <<<"$out" || fail "submit run 2: $out"
start_worker thief --slots 1
"$DROVER" wait 2 --timeout 30 >/dev/null || fail "run 2 did not pass"
rows=$(api GET '/api/v1/tests?run=2&limit=100' | head -n 1)
thief=$(grep -o '"worker":"thief"' <<<"$rows" | wc -l)
((thief >= 3)) || fail "the thief ran $thief of 12: $rows"
moves=$(api GET /metrics | grep '^drover_moves_total ' | cut -d' ' -f2)
((moves >= 1)) || fail "drover_moves_total is $moves"
stolen=0
for id in $(grep -o '"id":[0-9]*' <<<"$rows" | cut -d: -f2); do
    t=$(api GET "/api/v1/tests/$id" | head -n 1)
    if grep -q '"reason":"stolen"' <<<"$t"; then
        grep -q '"worker":"holder","state":"abandoned"' <<<"$t" ||
            fail "a stolen attempt is not the holder's abandoned one: $t"
        grep -q '"worker":"thief","state":"finished"' <<<"$t" ||
            fail "a stolen test did not finish on the thief: $t"
        stolen=$((stolen + 1))
    fi
done
((stolen >= 1)) || fail "no attempt says it was stolen"
echo "ok (thief ran $thief of 12, $moves moves, $stolen attempts stolen)"

#!/usr/bin/env bash
# Thermal state from measured pressure, not from busy slots. A worker reading a calm
# fake /proc and /sys (tests/data/pressure/calm, --pressure-root) admits its 8 slots at
# once and keeps all 8 while every slot is busy for longer than overload_sustain_s
# (which the old occupancy rule called overload). Then its memory pressure rises (the
# hot tree's PSI file): it cools to half its slots, with the measured reason in
# GET /api/v1/workers, `drover status --workers` and `drover explain` of a waiting test.
# Also (same processes): the analyzer's batch size reaches the test as DROVER_BATCH_SIZE.
source "$(dirname "$0")/lib.sh"
cp -r "$DRV_SOURCE_DIR/tests/data/pressure/calm" "$WORK/tree"
# No prefetch: the worker starts whatever it holds, so what it holds is what it runs.
echo '{"settings": {"prefetch_max": 0, "thermal": {"overload_sustain_s": 1, "cooldown_s": 600}}}' >"$WORK/balancer.json"
start_coordinator --config "$WORK/balancer.json"
start_worker busy --slots 8 --pressure-root "$WORK/tree"
wait_workers 1

workers() { api GET /api/v1/workers | head -n 1; }

# 0. DROVER_BATCH_SIZE: the analyzer's for a vit test on this CPU-only worker (32 / 4),
# the test's own when it sets one, none without a model id or batch size.
cat >"$WORK/batch.json" <<JSON
[{"name": "batch/vit", "command": "echo \${DROVER_BATCH_SIZE-unset} > $WORK/vit.out", "shell": true,
  "model_id": "google/vit-base-patch16-224"},
 {"name": "batch/own", "command": "echo \${DROVER_BATCH_SIZE-unset} > $WORK/own.out", "shell": true,
  "model_id": "google/vit-base-patch16-224", "batch_size": 3},
 {"name": "batch/none", "command": "echo \${DROVER_BATCH_SIZE-unset} > $WORK/none.out", "shell": true}]
JSON
"$DROVER" run --quiet "$WORK/batch.json" >/dev/null || fail "the batch-size tests failed"
[[ "$(cat "$WORK/vit.out")" == 8 ]] || fail "vit on a CPU worker: DROVER_BATCH_SIZE=$(cat "$WORK/vit.out"), expected 8"
[[ "$(cat "$WORK/own.out")" == 3 ]] || fail "batch_size 3: DROVER_BATCH_SIZE=$(cat "$WORK/own.out")"
[[ "$(cat "$WORK/none.out")" == unset ]] || fail "no model: DROVER_BATCH_SIZE=$(cat "$WORK/none.out")"
running_now() { workers | grep -o '"running":[0-9]*' | head -n 1 | cut -d: -f2; }

# 1. 24 tests of `sleep 1`: three rounds of 8, every slot busy for 3 s.
python3 -c 'import json; print(json.dumps([{"name": "sleep/%d" % i, "argv": ["sleep", "1"]} for i in range(24)]))' >"$WORK/suite.json"
"$DROVER" submit --run busy "$WORK/suite.json" >/dev/null
most=0
cooled=""
until (($(count_in passed "&run=2") == 24)); do
    n=$(running_now)
    ((n > most)) && most=$n
    w=$(workers)
    grep -q '"thermal":"cooling"\|"thermal":"warming"' <<<"$w" && cooled=$w
    ((SECONDS < 40)) || fail "the busy suite did not finish in 40 s"
    sleep 0.1
done
[[ $most -eq 8 ]] || fail "at most $most of 8 slots ran at once"
[[ -z "$cooled" ]] || fail "a busy worker was throttled: $cooled"
workers | grep -q '"thermal":"warm","thermal_reason":"warm for [0-9.]* s (first work): admits 8 of 8 slots"' ||
    fail "after the busy run: $(workers)"
workers | grep -q '"pressure":{"cpu":0.03[45][0-9]*,"memory":0.0,"freq_ratio":0.75,"temperature_c":52.5,"throttled":false}' ||
    fail "the calm tree's measurements are not shown: $(workers)"

# 2. Memory pressure 45 % (>= 20 %) for 1 s: cooling, half the slots, and the reason.
cp "$DRV_SOURCE_DIR/tests/data/pressure/hot/proc/pressure/memory" "$WORK/tree/proc/pressure/memory"
cooling() { workers | grep -q '"thermal":"cooling","thermal_reason":"cooling for [0-9.]* s (memory pressure 0.45 >= 0.20 for 1 s): admits 4 of 8 slots"'; }
wait_until 10 cooling
python3 -c 'import json; print(json.dumps([{"name": "hold/%d" % i, "argv": ["sleep", "30"]} for i in range(6)]))' >"$WORK/hold.json"
"$DROVER" submit --run hot "$WORK/hold.json" >/dev/null
four_running() { (($(running_now) == 4)); }
wait_until 10 four_running
sleep 1
[[ $(running_now) -eq 4 ]] || fail "a cooling worker runs $(running_now), expected 4"
"$DROVER" status --workers >"$WORK/status.out"
grep -q '^busy: thermal: cooling for [0-9.]* s (memory pressure 0.45 >= 0.20 for 1 s): admits 4 of 8 slots$' "$WORK/status.out" ||
    fail "status --workers: $(cat "$WORK/status.out")"
queued=$(api GET '/api/v1/tests?state=queued' | head -n 1 | grep -o '"id":[0-9]*' | head -n 1 | cut -d: -f2)
[[ -n "$queued" ]] || fail "no test waits"
"$DROVER" explain "$queued" >"$WORK/explain.out" || true
grep -q 'cooling down (busy is cooling for [0-9.]* s (memory pressure 0.45' "$WORK/explain.out" ||
    fail "explain does not say cooling: $(cat "$WORK/explain.out")"
grep -q 'warming' "$WORK/explain.out" && fail "explain says warming: $(cat "$WORK/explain.out")"
echo ok

#!/usr/bin/env bash
# The dashboard shows an anomaly: four workers of one class, one slowed (its tests read
# DROVER_E2E_SLOWDOWN from the worker's environment and sleep 5x longer); once the
# coordinator flags it (slow_worker), tests/browser/anomalies.mjs checks the banner, the
# panel with the evidence, the flagged row, the score order and the worker's detail.
# Its screenshot stays in $DRV_DASHBOARD_SHOTS (default: where the test runs).
source "$(dirname "$0")/lib.sh"
start_coordinator
for n in a b c; do start_worker an-$n --slots 1; done
DROVER_E2E_SLOWDOWN=5 start_worker an-slow --slots 1
wait_workers 4
for i in $(seq 1 40); do
    echo "{\"name\":\"s-$i\",\"argv\":[\"sh\",\"-c\",\"sleep \$(awk \\\"BEGIN{print 0.2*\${DROVER_E2E_SLOWDOWN:-1}}\\\")\"]}"
done >"$WORK/suite.jsonl"
"$DROVER" submit --run slow "$WORK/suite.jsonl" >"$WORK/submit.out" 2>&1 || fail "submit failed: $(cat "$WORK/submit.out")"
shots=${DRV_DASHBOARD_SHOTS:-$PWD}
mkdir -p "$shots"
node "$DRV_SOURCE_DIR/tests/browser/anomalies.mjs" "$URL" "$DROVER_TOKEN" an-slow "$shots" \
    >"$WORK/browser.log" 2>&1 || { cat "$WORK/browser.log" >&2; fail "the anomalies check failed"; }
cat "$WORK/browser.log"
echo "e2e dashboard_anomalies: ok"

#!/usr/bin/env bash
# The dashboards: a coordinator and three workers run a small suite, then
# tests/browser/dashboard.mjs opens GET / in chromium (playwright-core) and checks the
# token prompt, the workers table (sorted, filtered), the run at 100%, a suite submitted
# from the page moving the counts and the chart, the exports, the worker and test
# details, a killed worker (dash-c) shown lost, and the page at 390 px; its screenshots
# stay in $DRV_DASHBOARD_SHOTS (default: the directory the test runs in, the build
# directory under ctest). Then `drover top --once` prints the same as text.
source "$(dirname "$0")/lib.sh"
start_coordinator
start_worker dash-a --slots 2
start_worker dash-b --slots 1 --label webgpu
start_worker dash-c --slots 1
KILL_PID=$WORKER_PID
wait_workers 3

for i in 1 2 3 4 5; do echo "{\"name\":\"ok-$i\",\"argv\":[\"true\"]}"; done >"$WORK/suite.jsonl"
echo '{"name":"no","argv":["false"]}' >>"$WORK/suite.jsonl"
status=0
"$DROVER" run --run dash "$WORK/suite.jsonl" >"$WORK/run.out" 2>&1 || status=$?
[[ $status -eq 1 ]] || fail "drover run exited $status, expected 1 (one test fails)"

# The page is served without a token (it holds no data) as HTML.
page=$(curl -s -S --max-time 10 -D "$WORK/headers" "$URL/")
grep -qi '^content-type: text/html' "$WORK/headers" || fail "GET / is not text/html"
grep -q 'var uPlot=' <<<"$page" || fail "GET / lacks the inlined charting library"

shots=${DRV_DASHBOARD_SHOTS:-$PWD}
mkdir -p "$shots"
node "$DRV_SOURCE_DIR/tests/browser/dashboard.mjs" "$URL" "$DROVER_TOKEN" dash-a,dash-b,dash-c 1 \
    "$KILL_PID" dash-c "$shots" >"$WORK/browser.log" 2>&1 ||
    { cat "$WORK/browser.log" >&2; fail "the dashboard check failed"; }
cat "$WORK/browser.log"

# The terminal dashboard, one frame as text: the counts, the run, both workers.
"$DROVER" top --once >"$WORK/top.out" 2>&1 || { cat "$WORK/top.out" >&2; fail "drover top --once failed"; }
cat "$WORK/top.out"
grep -q '^tests: 14 (13 passed, 1 failed)' "$WORK/top.out" || fail "top: wrong counts"
grep -q '^run 2 (live).*8 tests' "$WORK/top.out" || fail "top: the run submitted from the page is missing"
grep -q '^done: 100%' "$WORK/top.out" || fail "top: the run is not done"
grep -q '^dash-a ' "$WORK/top.out" && grep -q '^dash-b ' "$WORK/top.out" || fail "top: a worker is missing"
grep -q '^dash-c .*lost' "$WORK/top.out" || fail "top: dash-c is not lost"
echo "e2e dashboard: ok"

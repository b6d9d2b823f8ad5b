#!/usr/bin/env bash
# The dashboards: a coordinator and two workers run a small suite, then
# tests/browser/dashboard.mjs opens GET / in chromium (playwright-core) and checks the
# token prompt, the workers, the run at 100%, the counts and both charts; then
# `drover top --once` prints the same as text.
source "$(dirname "$0")/lib.sh"
start_coordinator
start_worker dash-a --slots 2
start_worker dash-b --slots 1 --label webgpu
wait_workers 2

for i in 1 2 3 4 5; do echo "{\"name\":\"ok-$i\",\"argv\":[\"true\"]}"; done >"$WORK/suite.jsonl"
echo '{"name":"no","argv":["false"]}' >>"$WORK/suite.jsonl"
status=0
"$DROVER" run --run dash "$WORK/suite.jsonl" >"$WORK/run.out" 2>&1 || status=$?
[[ $status -eq 1 ]] || fail "drover run exited $status, expected 1 (one test fails)"

# The page is served without a token (it holds no data) as HTML.
page=$(curl -s -S --max-time 10 -D "$WORK/headers" "$URL/")
grep -qi '^content-type: text/html' "$WORK/headers" || fail "GET / is not text/html"
grep -q 'var uPlot=' <<<"$page" || fail "GET / lacks the inlined charting library"

node "$DRV_SOURCE_DIR/tests/browser/dashboard.mjs" "$URL" "$DROVER_TOKEN" dash-a,dash-b 1 \
    ${DRV_DASHBOARD_SCREENSHOT:+"$DRV_DASHBOARD_SCREENSHOT"} >"$WORK/browser.log" 2>&1 ||
    { cat "$WORK/browser.log" >&2; fail "the dashboard check failed"; }
cat "$WORK/browser.log"

# The terminal dashboard, one frame as text: the counts, the run, both workers.
"$DROVER" top --once >"$WORK/top.out" 2>&1 || { cat "$WORK/top.out" >&2; fail "drover top --once failed"; }
cat "$WORK/top.out"
grep -q '^tests: 6 (5 passed, 1 failed)' "$WORK/top.out" || fail "top: wrong counts"
grep -q '^run 1 (dash).*6 tests' "$WORK/top.out" || fail "top: the run is missing"
grep -q '^done: 100%' "$WORK/top.out" || fail "top: the run is not done"
grep -q '^dash-a ' "$WORK/top.out" && grep -q '^dash-b ' "$WORK/top.out" || fail "top: a worker is missing"
echo "e2e dashboard: ok"

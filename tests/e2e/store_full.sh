#!/usr/bin/env bash
# A store that cannot take a commit (here the file size limit, which the coordinator
# meets as a full disk does) stops the coordinator with exit status 3 and a message
# naming the store, and nothing of what it could not commit is acknowledged; restarted
# with room, the store has exactly what was acknowledged.
source "$(dirname "$0")/lib.sh"

# The coordinator alone under a 4 MiB file size limit; SIGXFSZ ignored (inherited
# across exec), so a write past the limit fails with EFBIG instead of killing it.
rm -f "$WORK/port"
(
    ulimit -f 4096
    trap '' XFSZ
    exec "$DROVER" coordinator --listen 127.0.0.1:0 --db "$WORK/drover.db" \
        --port-file "$WORK/port" --client-token "$DROVER_TOKEN" \
        --worker-token "$DROVER_WORKER_TOKEN" --max-body $((64 * 1024 * 1024))
) >>"$WORK/coordinator.log" 2>&1 &
COORD_PID=$!
PIDS+=("$COORD_PID")
wait_until 10 test -s "$WORK/port"
URL="http://127.0.0.1:$(cat "$WORK/port")"
export DROVER_URL=$URL

out=$(api POST '/api/v1/tests?run=small' --data-binary '[{"name":"a","argv":["true"]},{"name":"b","argv":["true"]}]')
grep -q '"count":2' <<<"$out" || fail "the small run was not accepted: $out"

# About 12 MB of tests: their commit cannot fit under the limit.
pad=$(printf '%0400d' 0)
seq 30000 | sed "s/.*/{\"name\":\"big-&\",\"argv\":[\"echo\",\"$pad\"]}/" >"$WORK/big.jsonl"
out=$(api POST '/api/v1/tests?run=big' --data-binary @"$WORK/big.jsonl" 2>&1 || true)
if grep -q '"count":30000' <<<"$out"; then
    fail "a submission that could not be committed was acknowledged"
fi
status=0
wait "$COORD_PID" || status=$?
[[ $status -eq 3 ]] || fail "the coordinator exited with $status, expected 3"
grep -q "fatal: store $WORK/drover.db: .*nothing of this transaction was stored" \
    "$WORK/coordinator.log" || fail "no clear message about the store in the log"

# With room again: the acknowledged run, nothing of the other.
start_coordinator
out=$(api GET /api/v1/status)
grep -q '"total":2' <<<"$out" || fail "expected the 2 acknowledged tests only: $out"
out=$(api GET /api/v1/runs/2)
[[ "$(tail -n 1 <<<"$out")" == 404 ]] || fail "the refused run is in the store: $out"
echo "ok"

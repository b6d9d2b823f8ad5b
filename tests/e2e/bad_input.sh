#!/usr/bin/env bash
# Bad requests get clear errors, change nothing, and the coordinator keeps serving:
# a missing or wrong token (401), malformed JSON, a wrong field type (400 naming the
# field), an oversized body (413), an unknown endpoint (404), a wrong method (405);
# a client that asks for "100 Continue" before sending its body gets it.
source "$(dirname "$0")/lib.sh"
start_coordinator --max-body 4096

expect() { # expect STATUS PATTERN OUTPUT
    local status=$1 pattern=$2 out=$3
    [[ "$(tail -n 1 <<<"$out")" == "$status" ]] || fail "expected HTTP $status, got: $out"
    grep -q -E -- "$pattern" <<<"$out" || fail "expected /$pattern/ in: $out"
}

good='[{"name":"t1","argv":["true"]}]'
out=$(curl -s -w '\n%{http_code}\n' -X POST --data-binary "$good" "$URL/api/v1/tests")
expect 401 '"error":"missing token' "$out"
out=$(curl -s -w '\n%{http_code}\n' -H 'Authorization: Bearer nope' -X POST --data-binary "$good" "$URL/api/v1/tests")
expect 401 '"error":"wrong token"' "$out"
out=$(curl -s -w '\n%{http_code}\n' "$URL/api/v1/tests")
expect 401 'token' "$out"

out=$(api POST /api/v1/tests --data-binary '[{"name":"t1","argv":["true"]},{"name":')
expect 400 'not valid JSON' "$out"
out=$(api POST /api/v1/tests --data-binary '[{"name":"t1","argv":["true"]},{"name":"t2","argv":["true"],"priority":"high"}]')
expect 400 '"field":"tests\[1\]\.priority"' "$out"
out=$(api POST /api/v1/tests --data-binary $'{"name":"a","argv":["true"]}\n{"name":"b","argv":"true"}')
expect 400 '"error":"line 2: argv' "$out"
big=$(printf '[{"name":"t","argv":["%05000d"]}]' 0)
out=$(api POST /api/v1/tests --data-binary "$big")
expect 413 'larger than the limit of 4096 bytes' "$out"
out=$(api GET /api/v1/nothing)
expect 404 'no such endpoint' "$out"
out=$(api POST /api/v1/status)
expect 405 'use GET' "$out"
out=$(api GET '/api/v1/tests?state=sleeping')
expect 400 'unknown state' "$out"
out=$(api GET '/api/v1/tests?worker=w1&order=sideways')
expect 400 '"field":"order"' "$out"
out=$(api POST /api/v1/tests/999/cancel)
expect 404 'no test 999' "$out"

# Nothing of the above was stored.
out=$(api GET /api/v1/status)
expect 200 '"total":0' "$out"

# And the coordinator still serves: a good submission is accepted. This one asks for
# "100 Continue" first, as curl does for bodies over 1 MiB (without the interim answer
# it holds the body back for a second).
out=$(api POST '/api/v1/tests?run=ok' -H 'Expect: 100-continue' --data-binary "$good" -v 2>&1)
expect 201 '"count":1' "$out"
grep -q '< HTTP/1.1 100 Continue' <<<"$out" || fail "no 100 Continue before the body: $out"
out=$(api GET /api/v1/tests/1)
expect 200 '"name":"t1"' "$out"
kill -0 "$COORD_PID" || fail "the coordinator died"
echo "ok"

#!/usr/bin/env bash
# Connections the coordinator does not keep, and requests it reads right:
# - upgraded sockets that never authenticate (a worker channel without hello, a
#   dashboard socket without its token, half a frame) are closed after --auth-timeout,
#   while a real worker and an authenticated dashboard stay;
# - a dashboard's wrong token gets the WebSocket close status 1008, not a dropped TCP
#   connection (which a browser reports as 1006); so does a refused worker hello, after
#   its error frame, with the reason in the close frame (a binary frame: 1003);
# - a body sent with Transfer-Encoding: chunked is read (extensions, trailers, several
#   chunks), a malformed one is a 400;
# - a query value that is not UTF-8 once decoded, or holds %00, is a 400 naming the
#   parameter, and nothing is stored.
source "$(dirname "$0")/lib.sh"
WS="/usr/bin/python3 $(dirname "$0")/wsprobe.py"
start_coordinator --auth-timeout 1
start_worker steady --slots 1
wait_workers 1

# A wrong dashboard token: close 1008.
out=$($WS "$PORT" /ws/dashboard/v1 drover-dashboard --send '{"token":"nope"}' --wait 5)
[[ "$out" == "close 1008 wrong token" ]] || fail "dashboard, wrong token: $out"
# A refused worker hello (here a wrong worker token): the error frame, then a close frame
# with 1008 and the reason (lws 4.1 drops a close sent from the writeable callback: the
# coordinator closes from the receive callback).
out=$($WS "$PORT" /ws/worker/v1 drover-worker --texts --wait 5 --send \
    '{"type":"hello","v":1,"token":"nope","name":"intruder","capabilities":{"cpu_cores":1,"memory_mb":1},"slots":1}')
[[ "$out" == *'text {"type":"error","v":1,"message":"hello.token: bad worker token","field":"hello.token"}'* ]] ||
    fail "worker, wrong token, error frame: $out"
[[ "$(tail -n 1 <<<"$out")" == "close 1008 hello.token: bad worker token" ]] ||
    fail "worker, wrong token, close frame: $out"
# A binary frame: 1003 with the reason.
out=$($WS "$PORT" /ws/worker/v1 drover-worker --binary --wait 5 --send 'x')
[[ "$(tail -n 1 <<<"$out")" == "close 1003 binary frames are refused: send JSON text frames" ]] ||
    fail "worker, binary frame: $out"
# The right one: still open after three auth timeouts.
out=$($WS "$PORT" /ws/dashboard/v1 drover-dashboard --send "{\"token\":\"$DROVER_TOKEN\"}" --wait 3)
[[ "$out" == "open" ]] || fail "dashboard, right token: $out"

# Never authenticating: closed after about a second, not held.
for args in "/ws/worker/v1 drover-worker" "/ws/dashboard/v1 drover-dashboard" \
    "/ws/worker/v1 drover-worker --half --send {\"type\":\"hello\",\"token\":\"$DROVER_WORKER_TOKEN\"}"; do
    start=$SECONDS
    # shellcheck disable=SC2086 # the words of $args are the probe's arguments
    out=$($WS "$PORT" $args --wait 8)
    [[ "$out" == "eof" || "$out" == close* ]] || fail "$args: still $out after 8 s"
    ((SECONDS - start <= 5)) || fail "$args: closed after $((SECONDS - start)) s"
done
# The real worker outlived all of that.
workers_are 1 || fail "the authenticated worker was dropped"

# Chunked bodies: curl's, and one by hand with an extension, two chunks and a trailer.
out=$(api POST '/api/v1/tests?run=chunked' -H 'Transfer-Encoding: chunked' \
    --data-binary '[{"name":"c1","argv":["true"]}]')
[[ "$(tail -n 1 <<<"$out")" == 201 ]] || fail "chunked body (curl): $out"
grep -q '"count":1' <<<"$out" || fail "chunked body (curl): $out"
/usr/bin/python3 - "$PORT" "$DROVER_TOKEN" >"$WORK/raw.out" <<'EOF'
import socket, sys
port, token = int(sys.argv[1]), sys.argv[2]
body = b'[{"name":"c2","argv":["true"]},{"name":"c3","argv":["true"]}]'
a, b = body[:7], body[7:]
def send(chunks):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"POST /api/v1/tests?run=by-hand HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
              + token.encode() + b"\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks)
    out = b""
    while True:
        d = s.recv(4096)
        if not d:
            break
        out += d
    body = out.split(b"\r\n\r\n", 1)[-1].decode().strip()
    return out.split(b"\r\n")[0].decode() + " " + body
print(send(b"%x;ext=1\r\n%s\r\n%X\r\n%s\r\n0\r\nX-Trailer: yes\r\n\r\n" % (len(a), a, len(b), b)))
print(send(b"zz\r\nhello\r\n0\r\n\r\n"))
EOF
sed -n 1p "$WORK/raw.out" | grep -q 'HTTP/1.1 201.*"count":2' || fail "chunked by hand: $(cat "$WORK/raw.out")"
sed -n 2p "$WORK/raw.out" | grep -q 'HTTP/1.1 400.*malformed chunked body' ||
    fail "malformed chunked body: $(cat "$WORK/raw.out")"

# Query values that are not UTF-8.
out=$(api POST '/api/v1/tests?run=%FF' --data-binary '[{"name":"u1","argv":["true"]}]')
[[ "$(tail -n 1 <<<"$out")" == 400 ]] || fail "?run=%FF: $out"
grep -q '"error":"query parameter \\"run\\": not valid UTF-8.*"field":"run"' <<<"$out" ||
    fail "?run=%FF: $out"
out=$(api GET '/api/v1/tests?state=%C3')
grep -q '"field":"state"' <<<"$out" || fail "?state=%C3: $out"
# %00 (lws drops such a request line): a 400 naming the parameter too.
out=$(api POST '/api/v1/tests?run=a%00b' --data-binary '[{"name":"u0","argv":["true"]}]')
[[ "$(tail -n 1 <<<"$out")" == 400 ]] || fail "?run=a%00b: $out"
grep -q '"error":"query parameter \\"run\\": %00 (a NUL byte) is not allowed","field":"run"' <<<"$out" ||
    fail "?run=a%00b: $out"
# UTF-8 that is valid is kept as sent.
out=$(api POST '/api/v1/tests?run=%C3%A9t%C3%A9' --data-binary '[{"name":"u2","argv":["true"]}]')
[[ "$(tail -n 1 <<<"$out")" == 201 ]] || fail "?run=été: $out"
out=$(api GET /api/v1/status)
grep -q '"total":4' <<<"$out" || fail "expected 4 tests stored (c1, c2, c3, u2; none refused): $out"
api GET '/api/v1/runs' | grep -q '"name":"été"' || fail "the run named été is not listed"
echo ok

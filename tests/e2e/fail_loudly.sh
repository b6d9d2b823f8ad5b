#!/usr/bin/env bash
# A coordinator that cannot serve says why and exits non-zero before it writes its port
# file or says "listening": the port taken by another process, a host that is not an
# address of this machine, a host that does not resolve, TLS files that cannot be read or
# are not PEM. A host name (localhost) is resolved and served. One that can serves
# GET /healthz without a token, logs RFC 3339 UTC times with a level (JSON with
# --log-format json; a worker in the same form), and says how many workers its descriptor
# limit allows; out of descriptors it pauses accepting and says so once,
# instead of a line per failed accept().
source "$(dirname "$0")/lib.sh"

# cannot_start PATTERN ARGS...: the coordinator exits non-zero within 10 s, with PATTERN
# in its output, no port file and no "listening".
cannot_start() {
    local pattern=$1 status=0
    shift
    rm -f "$WORK/port"
    timeout 10 "$DROVER" coordinator --db "$WORK/refused.db" --port-file "$WORK/port" \
        --client-token "$DROVER_TOKEN" --worker-token "$DROVER_WORKER_TOKEN" "$@" \
        >"$WORK/refused.out" 2>&1 || status=$?
    [[ $status -ne 0 && $status -ne 124 ]] ||
        fail "coordinator $* exited with $status: $(cat "$WORK/refused.out")"
    [[ ! -e "$WORK/port" ]] || fail "coordinator $* wrote its port file"
    ! grep -q listening "$WORK/refused.out" || fail "coordinator $* said listening"
    grep -q -E -- "$pattern" "$WORK/refused.out" ||
        fail "coordinator $*: expected /$pattern/ in: $(cat "$WORK/refused.out")"
    cat "$WORK/refused.out" >>"$WORK/refused.log"
}

start_coordinator --log-format json
taken=$PORT
cannot_start "127\.0\.0\.1:$taken: the port is in use by another process" --listen "127.0.0.1:$taken"
cannot_start "10\.1\.2\.3:0: not an address of this machine" --listen 10.1.2.3:0
cannot_start 'host "no-such-host\.invalid" does not resolve' --listen no-such-host.invalid:0
cannot_start "--tls-cert $WORK/missing\.pem: cannot read" --listen 127.0.0.1:0 \
    --tls-cert "$WORK/missing.pem" --tls-key "$WORK/missing.pem"
cannot_start "--tls-cert $WORK: cannot read: Is a directory" --listen 127.0.0.1:0 \
    --tls-cert "$WORK" --tls-key "$WORK/bad.pem"
echo "not a certificate" >"$WORK/bad.pem"
cannot_start "TLS file $WORK/bad\.pem: not a PEM certificate" --listen 127.0.0.1:0 \
    --tls-cert "$WORK/bad.pem" --tls-key "$WORK/bad.pem"

# A host name is resolved: localhost serves (it used to serve nothing, silently).
(
    exec "$DROVER" coordinator --listen localhost:0 --db "$WORK/local.db" \
        --port-file "$WORK/local.port" --client-token "$DROVER_TOKEN" \
        --worker-token "$DROVER_WORKER_TOKEN" >"$WORK/local.log" 2>&1
) &
local_pid=$!
PIDS+=("$local_pid")
wait_until 10 test -s "$WORK/local.port"
out=$(curl -s -S --max-time 5 "http://localhost:$(cat "$WORK/local.port")/healthz")
grep -q '"status":"ok"' <<<"$out" || fail "--listen localhost:0 does not serve: $out"
kill -TERM "$local_pid"

# GET /healthz needs no token.
out=$(curl -s -S --max-time 5 -w '\n%{http_code}\n' "$URL/healthz")
[[ "$(tail -n 1 <<<"$out")" == 200 ]] || fail "GET /healthz: $out"
grep -q '"status":"ok"' <<<"$out" || fail "GET /healthz: $out"
# The rest of the API still does.
code=$(curl -s -o /dev/null -w '%{http_code}' "$URL/api/v1/status")
[[ "$code" == 401 ]] || fail "GET /api/v1/status without a token: $code"

# JSON log lines: time (RFC 3339, UTC, milliseconds), level, source, msg.
ts='"time":"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z"'
grep -q -E "^\{$ts,\"level\":\"info\",\"source\":\"coordinator\",\"msg\":\"listening on http://127\.0\.0\.1:$PORT" \
    "$WORK/coordinator.log" || fail "no JSON 'listening' line in the log"
grep -q -E "\"msg\":\"file descriptors: limit [0-9]+.*room for about [0-9]+ workers\"" \
    "$WORK/coordinator.log" || fail "the log does not say how many workers the limit allows"

# A worker's lines have the same form: its own (text by default, JSON when asked).
start_worker plain
start_worker structured --log-format json
wait_until 10 grep -q -E '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\.[0-9]{3}Z INFO worker: worker plain connected' \
    "$WORK/worker-plain.log" || fail "worker text log line: $(head -n 3 "$WORK/worker-plain.log")"
wait_until 10 grep -q -E "^\{$ts,\"level\":\"info\",\"source\":\"worker\",\"msg\":\"worker structured connected" \
    "$WORK/worker-structured.log" || fail "worker JSON log line: $(head -n 3 "$WORK/worker-structured.log")"

# Out of descriptors: a coordinator with a limit of 48 and 80 connections that hold on.
# It logs the condition a few times at most (once per 10 s), keeps running, and serves
# again once connections go away.
(
    ulimit -n 48
    exec "$DROVER" coordinator --listen 127.0.0.1:0 --db "$WORK/small.db" \
        --port-file "$WORK/small.port" --client-token "$DROVER_TOKEN" \
        --worker-token "$DROVER_WORKER_TOKEN" >"$WORK/small.log" 2>&1
) &
small_pid=$!
PIDS+=("$small_pid")
wait_until 10 test -s "$WORK/small.port"
small_port=$(cat "$WORK/small.port")
grep -q -E '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\.[0-9]{3}Z INFO coordinator: file descriptors: limit 48' \
    "$WORK/small.log" || fail "text log line: $(head -n 3 "$WORK/small.log")"
/usr/bin/python3 - "$small_port" <<'EOF' || fail "out of descriptors: the coordinator did not recover"
import socket, sys, time
port = int(sys.argv[1])
held = []
for _ in range(80):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    held.append(s)
time.sleep(1.5)
for s in held:
    s.close()
deadline = time.time() + 10
while True:
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=2)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        if b"200" in s.recv(100):
            sys.exit(0)
    except OSError:
        pass
    if time.time() > deadline:
        sys.exit(1)
    time.sleep(0.2)
EOF
kill -0 "$small_pid" || fail "the coordinator out of descriptors died"
lines=$(grep -c 'out of file descriptors' "$WORK/small.log" || true)
[[ $lines -ge 1 && $lines -le 3 ]] || fail "expected 1-3 'out of file descriptors' lines, got $lines"
total=$(wc -l <"$WORK/small.log")
[[ $total -le 20 ]] || fail "the log grew to $total lines: $(tail -n 5 "$WORK/small.log")"
echo ok

#!/usr/bin/env bash
# With a certificate and key the coordinator serves HTTPS and WSS only: a worker and the
# CLI that trust its CA (--ca / DROVER_CA) run a test through it; a client that does not
# trust it, and plain HTTP, get nowhere.
source "$(dirname "$0")/lib.sh"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$WORK/key.pem" -out "$WORK/cert.pem" \
    -days 1 -subj "/CN=127.0.0.1" -addext "subjectAltName=IP:127.0.0.1" >"$WORK/openssl.log" 2>&1 ||
    fail "openssl could not make a certificate: $(cat "$WORK/openssl.log")"
start_coordinator --tls-cert "$WORK/cert.pem" --tls-key "$WORK/key.pem"
URL="https://127.0.0.1:$PORT"
export DROVER_URL=$URL DROVER_CA=$WORK/cert.pem
start_worker secure --slots 1 --url "wss://127.0.0.1:$PORT"
wait_until 15 bash -c "curl -s --cacert '$WORK/cert.pem' -H 'Authorization: Bearer $DROVER_TOKEN' $URL/api/v1/status | grep -q '\"connected\":1'"
"$DROVER" submit --run tls -- sh -c 'echo over tls' >/dev/null
"$DROVER" wait 1 --timeout 20 || fail "the test did not pass over TLS"
# No trust, no answer; plain HTTP on the TLS port is not served.
if curl -s -o /dev/null "$URL/api/v1/status"; then fail "an untrusted certificate was accepted"; fi
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/api/v1/status" || true)
[[ "$code" != "200" ]] || fail "plain HTTP was served on the TLS port"
echo ok

# lib.sh - what the end-to-end tests share: start a coordinator and workers on
# 127.0.0.1 (each in the test's own temporary directory), wait for them, and kill every
# process the test started, by PID, however the test ends. Sourced by tests/e2e/*.sh.
#
# Environment: DROVER (the binary, required). Every test runs under `set -euo pipefail`;
# `fail MSG` ends it; every wait is bounded (wait_until), and CTest bounds the whole.
set -euo pipefail

: "${DROVER:?set DROVER to the drover binary}"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/drover-e2e.XXXXXX")
PIDS=()
COORD_PID=""
PORT=""
URL=""
export DROVER_TOKEN=client-secret
export DROVER_WORKER_TOKEN=worker-secret

cleanup() {
    local status=$?
    # SIGTERM first, so the processes exit cleanly (and the sanitizers check for
    # leaks), then SIGKILL whatever is left after 5 s.
    # Workers first (started last), so they do not spend their drain reconnecting.
    disown -a 2>/dev/null || true
    local i
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        [[ "${PIDS[i]}" != "$COORD_PID" ]] || sleep 0.2
        kill -TERM "${PIDS[i]}" 2>/dev/null || true
    done
    local end=$((SECONDS + 5))
    for pid in "${PIDS[@]}"; do
        while kill -0 "$pid" 2>/dev/null && ((SECONDS < end)); do
            sleep 0.05
        done
        kill -9 "$pid" 2>/dev/null || true
    done
    # Sanitizer reports in any process's log fail the test.
    if grep -l -E "ERROR: (Address|Leak)Sanitizer|runtime error:" "$WORK"/*.log >/dev/null 2>&1; then
        echo "FAIL: sanitizer report in:" >&2
        grep -l -E "ERROR: (Address|Leak)Sanitizer|runtime error:" "$WORK"/*.log >&2
        grep -h -A30 -E "ERROR: (Address|Leak)Sanitizer|runtime error:" "$WORK"/*.log >&2 || true
        status=1
    fi
    if [[ $status -ne 0 ]]; then
        for f in "$WORK"/*.log; do
            [[ -f "$f" ]] || continue
            echo "---- $(basename "$f") (last 40 lines)" >&2
            tail -n 40 "$f" >&2
        done
    fi
    rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT
# CTest runs each test under `timeout -s TERM`: a TERM ends the test through cleanup.
trap 'echo "FAIL: interrupted (time limit?)" >&2; exit 143' TERM INT

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# junit_valid FILE...: each FILE is valid against drover's JUnit schema (tests/data/junit.xsd,
# the structure CI readers accept; suite2, issue 13) and against Jenkins' junit-4.xsd as
# published (tests/data/jenkins-junit/), less the two things junit-10 added to it
# (skipped@message, Surefire's rerun elements: junit4_view.py, SOURCE.md there).
junit_valid() {
    local f
    for f in "$@"; do
        xmllint --noout --schema "$DRV_SOURCE_DIR/tests/data/junit.xsd" "$f" >"$WORK/xsd.out" 2>&1 ||
            fail "$f is not valid JUnit (tests/data/junit.xsd): $(cat "$WORK/xsd.out")"
        /usr/bin/python3 "$DRV_SOURCE_DIR/tests/e2e/junit4_view.py" "$f" "$WORK/junit4.xml" ||
            fail "$f: could not be read as XML by junit4_view.py"
        xmllint --noout --schema "$DRV_SOURCE_DIR/tests/data/jenkins-junit/junit-4.xsd" \
            "$WORK/junit4.xml" >"$WORK/xsd.out" 2>&1 ||
            fail "$f is not valid JUnit against Jenkins' junit-4.xsd: $(cat "$WORK/xsd.out")"
    done
}

# wait_until SECONDS CMD...: runs CMD every 50 ms until it succeeds; fails after SECONDS.
# CMD is run anew each time: pass a command or a function, not "$(...)" (that would be
# expanded once, before the first try).
wait_until() {
    local limit=$1
    shift
    local end=$((SECONDS + limit))
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < end)) || fail "timed out after ${limit} s waiting for: $*"
        sleep 0.05
    done
}

# start_coordinator [ARGS...]: a coordinator on a free port with $WORK/drover.db.
start_coordinator() {
    rm -f "$WORK/port"
    "$DROVER" coordinator --listen 127.0.0.1:${COORD_PORT:-0} --db "$WORK/drover.db" \
        --port-file "$WORK/port" --client-token "$DROVER_TOKEN" \
        --worker-token "$DROVER_WORKER_TOKEN" "$@" >>"$WORK/coordinator.log" 2>&1 &
    COORD_PID=$!
    PIDS+=("$COORD_PID")
    wait_until 10 test -s "$WORK/port"
    PORT=$(cat "$WORK/port")
    URL="http://127.0.0.1:$PORT"
    export DROVER_URL=$URL
}

# start_worker NAME [ARGS...]: a worker connected to the coordinator; sets WORKER_PID.
# --no-detect: it offers what its labels say, not this machine's GPUs and browsers.
# --pressure-root (an empty directory): it measures no pressure, so the load of a shared
# test machine does not cool it in the middle of a test (ARGS may give another root).
start_worker() {
    local name=$1
    shift
    "$DROVER" worker --url "$URL" --name "$name" --no-detect --pressure-root "$WORK/unmeasured" \
        "$@" >>"$WORK/worker-$name.log" 2>&1 &
    WORKER_PID=$!
    PIDS+=("$WORKER_PID")
}

# api METHOD PATH [CURL ARGS...]: prints the body, then the status on its own last line.
api() {
    local method=$1 path=$2
    shift 2
    curl -s -S --max-time 10 -X "$method" -H "Authorization: Bearer $DROVER_TOKEN" \
        -w '\n%{http_code}\n' "$@" "$URL$path"
}

# connected_workers: how many workers are connected now.
connected_workers() {
    api GET /api/v1/status | head -n 1 | grep -o '"connected":[0-9]*' | cut -d: -f2
}

# workers_are N: true when exactly N workers are connected.
workers_are() {
    [[ "$(connected_workers)" == "$1" ]]
}

# wait_workers N: waits until N workers are connected.
wait_workers() {
    wait_until 15 workers_are "$1"
}

# count_in STATE [QUERY]: how many tests are in STATE (e.g. count_in passed "&run=1").
count_in() {
    api GET "/api/v1/tests?state=$1&limit=100000${2:-}" | head -n 1 | grep -o '"id":' | wc -l
}

# at_least N STATE: true when at least N tests are in STATE.
at_least() {
    (($(count_in "$2") >= $1))
}

# lib.sh - what the benchmark scripts share: a work directory removed at the end, the
# processes they start (stopped by PID at the end), a clock, arithmetic, and a
# coordinator with local workers. Source it with `drover` set to the binary.

# bench_begin NAME: $work (a fresh directory), pids, and the traps that clean up.
bench_begin() {
    work=$(mktemp -d "${TMPDIR:-/tmp}/drover-bench-$1.XXXXXX")
    pids=()
    trap stop_all EXIT
    trap "exit 143" TERM INT
}

# SIGTERM (workers drain, the coordinator commits), up to 5 s, then SIGKILL; disowned
# first so bash reports no "Killed" lines.
stop_started() {
    disown -a 2>/dev/null || true
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
        kill -9 "$pid" 2>/dev/null || true
    done
    pids=()
}

stop_all() {
    stop_started
    rm -rf "$work"
}

now() { date +%s.%N; }
calc() { awk "BEGIN { print $1 }"; }

# start_fleet DIR [WORKER OPTIONS...]: a coordinator on DIR/drover.db (its options from
# the array coordinator_opts, if set) and WORKERS workers w1.. of SLOTS slots each with
# the options given; waits until all are connected and sets url.
start_fleet() {
    local dir=$1
    shift
    "$drover" coordinator --listen 127.0.0.1:0 --db "$dir/drover.db" --port-file "$dir/port" \
        --quiet --worker-token bench ${coordinator_opts[@]+"${coordinator_opts[@]}"} \
        >"$dir/coordinator.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 1 200); do [[ -s "$dir/port" ]] && break; sleep 0.02; done
    url=http://127.0.0.1:$(cat "$dir/port")
    for w in $(seq 1 "$WORKERS"); do
        "$drover" worker --url "$url" --token bench --name "w$w" --slots "$SLOTS" "$@" \
            >"$dir/worker$w.log" 2>&1 &
        pids+=($!)
    done
    local ok=""
    for _ in $(seq 1 500); do
        curl -s "$url/api/v1/status" | grep -q "\"connected\":$WORKERS" && ok=1 && break
        sleep 0.02
    done
    [[ -n "$ok" ]] || { echo "bench: the workers did not connect:" >&2; cat "$dir"/*.log >&2; exit 1; }
}

# The moves of every run on the coordinator at url: "N, dropped D".
moves_line() {
    curl -s "$url/metrics" | awk '/^drover_moves_total / {m = $2} /^drover_moves_dropped_total / {d = $2}
        END {printf "%d, dropped %d", m, d}'
}

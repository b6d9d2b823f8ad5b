#!/usr/bin/env bash
# monitoring.sh - what monitoring costs the coordinator: with N stress workers (default
# 1,000) and a steady stream of tests, the loop CPU spent sampling (plus the anomaly
# detectors) and building the dashboard's feed (one page watching over the WebSocket),
# read back from the coordinator's own series (sampler_cpu, feed_cpu, coordinator_cpu),
# and the store's growth per hour of sampling, from the samples table's size (SQLite's
# dbstat) over the run. Prints figures; asserts nothing.
#
#   bench/monitoring.sh [WORKERS] [SECONDS] [RATE]     (defaults 1000 60 500)
# Environment: DROVER (default build/drover).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
DROVER=${DROVER:-$root/build/drover}
workers=${1:-1000}
seconds=${2:-60}
rate=${3:-500}
PY=/usr/bin/python3
work=$(mktemp -d "${TMPDIR:-/tmp}/drover-bench-mon.XXXXXX")
pids=()
cleanup() {
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill -TERM "${pids[i]}" 2>/dev/null || true; done
    sleep 1
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

"$DROVER" coordinator --listen 127.0.0.1:0 --db "$work/drover.db" --port-file "$work/port" \
    --client-token c --worker-token w --quiet >"$work/coordinator.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [[ -s "$work/port" ]] && break; sleep 0.1; done
url="http://127.0.0.1:$(cat "$work/port")"

# One page watching the live feed: counts the bytes it receives.
node --experimental-websocket -e '
const ws = new WebSocket(process.argv[1].replace("http", "ws") + "/ws/dashboard/v1", "drover-dashboard");
let bytes = 0, frames = 0;
ws.onopen = () => ws.send(JSON.stringify({token: "c"}));
ws.onmessage = (m) => { bytes += (typeof m.data === "string" ? Buffer.byteLength(m.data) : m.data.size); frames++; };
process.on("SIGTERM", () => { require("fs").writeFileSync(process.argv[2], JSON.stringify({bytes, frames})); process.exit(0); });
' "$url" "$work/feed.json" 2>"$work/feed.log" &
feed_pid=$!
pids+=($feed_pid)

size_of_samples() {
    $PY -c 'import sqlite3,sys; c=sqlite3.connect("file:"+sys.argv[1]+"?mode=ro", uri=True)
print(c.execute("SELECT coalesce(sum(pgsize),0) FROM dbstat WHERE name IN (\"samples\",\"sample_series\")").fetchone()[0], c.execute("SELECT count(*) FROM samples").fetchone()[0])' "$work/drover.db"
}
sleep 3
t0=$(date +%s.%N)
read -r bytes0 rows0 < <(size_of_samples)
tests=$((rate * seconds))
"$DROVER" stress --url "$url" --token c --worker-token w --workers "$workers" --tests "$tests" \
    --scenario steady --rate "$rate" --duration-mean 1 --time-limit $((seconds + 120)) \
    >"$work/stress.out" 2>&1 || true
t1=$(date +%s.%N)
read -r bytes1 rows1 < <(size_of_samples)
kill -TERM "$feed_pid" 2>/dev/null || true
sleep 0.5

echo "workers $workers, tests $tests at $rate/s, $(printf %.0f "$(echo "$t1 - $t0" | bc)") s"
tail -n 4 "$work/stress.out"
for m in coordinator_cpu sampler_cpu feed_cpu workers_connected; do
    curl -s -H "Authorization: Bearer c" \
        "$url/api/v1/metrics/history?metric=$m&from=$t0&to=$t1&step=1" >"$work/$m.json"
done
$PY - "$work" "$t0" "$t1" "$bytes0" "$bytes1" "$rows0" "$rows1" <<'PYEOF'
import json, sys, os
work, t0, t1, b0, b1, r0, r1 = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), *map(int, sys.argv[4:])
def series(m):
    return [v for t, v in json.load(open(os.path.join(work, m + ".json")))["points"]]
conn = series("workers_connected")
full = max(conn) if conn else 0
# the seconds with the whole fleet connected
pts = {m: series(m) for m in ("coordinator_cpu", "sampler_cpu", "feed_cpu")}
idx = [i for i, c in enumerate(conn) if c >= 0.95 * full]
def mean(m):
    v = [pts[m][i] for i in idx if i < len(pts[m])]
    return sum(v) / len(v) if v else float("nan")
def peak(m):
    v = [pts[m][i] for i in idx if i < len(pts[m])]
    return max(v) if v else float("nan")
print(f"seconds with >= 95% of {full:.0f} workers connected: {len(idx)}")
for m in ("coordinator_cpu", "sampler_cpu", "feed_cpu"):
    print(f"{m}: mean {mean(m) * 1000:.1f} ms/s, max {peak(m) * 1000:.1f} ms/s")
feed = json.load(open(os.path.join(work, "feed.json"))) if os.path.exists(os.path.join(work, "feed.json")) else None
if feed:
    print(f"feed: {feed['frames']} snapshots, {feed['bytes'] / (t1 - t0) / 1024:.0f} KiB/s to one page")
dt = t1 - t0
print(f"store: samples +{r1 - r0} rows, +{(b1 - b0) / 1024:.0f} KiB in {dt:.0f} s "
      f"-> {(r1 - r0) / dt * 3600 / 1e6:.2f} M rows, {(b1 - b0) / dt * 3600 / 2**20:.0f} MiB per hour "
      f"({(b1 - b0) / max(1, r1 - r0):.1f} bytes/row)")
PYEOF

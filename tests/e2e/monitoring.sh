#!/usr/bin/env bash
# Monitoring: a coordinator and five workers of one class, one of them slowed (its tests
# read DROVER_E2E_SLOWDOWN from the worker's environment and sleep 5x longer), one whose
# tests all fail (DROVER_E2E_FAIL). Checks that the history has points after a few
# seconds (JSON and CSV), that the tests' CSV parses, that the slowed worker is flagged
# slow_worker with its evidence and its score drops below the others', that the failing
# one is flagged failure_rate while the others pass, that GET /metrics parses with a strict parser (Debian's
# python3-prometheus-client) and has the histograms, the build info and the thermal
# states, and that the read-only token reads but cannot change anything. Then (mon3) the
# coordinator is killed and restarted on its store: the open anomalies are still there
# (same ids, same start), GET /api/v1/anomalies?from=&to= reads them by the range they
# were open in, and the unfinished 1 min / 10 min buckets of a series are rebuilt from
# its 1 s samples.
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
$PY -c 'from prometheus_client.parser import text_string_to_metric_families' ||
    fail "python3-prometheus-client is missing (scripts/setup.sh installs it)"

start_coordinator --read-token reader-secret
for n in a b c; do start_worker mon-$n --slots 1; done
DROVER_E2E_SLOWDOWN=5 start_worker mon-slow --slots 1
DROVER_E2E_FAIL=1 start_worker mon-fail --slots 1
wait_workers 5

# 0.3 s per test, 1.5 s on the slowed worker; exit status 1 on the failing one.
$PY -c '
import json
cmd = "sleep $(awk \"BEGIN{print 0.3*${DROVER_E2E_SLOWDOWN:-1}}\"); [ -z \"$DROVER_E2E_FAIL\" ]"
for i in range(1, 97):
    print(json.dumps({"name": "m-%d" % i, "argv": ["sh", "-c", cmd]}))
' >"$WORK/suite.jsonl"
"$DROVER" submit --run mon "$WORK/suite.jsonl" >"$WORK/submit.out" 2>&1 || fail "submit failed: $(cat "$WORK/submit.out")"

read_api() { # read_api PATH: GET with the read-only token; body, then the status line
    curl -s -S --max-time 10 -H "Authorization: Bearer reader-secret" -w '\n%{http_code}\n' "$URL$1"
}

# The queue by priority: once the status says nothing is queued while tests run (all
# placed on the workers), no band counts a test: placed tests have left theirs.
bands_drained() {
    read_api /api/v1/status | head -n 1 | $PY -c '
import json, sys
d = json.load(sys.stdin)
q, k = d["queued_by_priority"], d["counts"]
if k["queued"] > 0 or k["running"] == 0:
    sys.exit(1)
if q != {"high": 0, "normal": 0, "low": 0}:
    open(sys.argv[1], "w").write(json.dumps([q, k]))
' "$WORK/bands_wrong"
}
wait_until 30 bands_drained
[[ ! -f "$WORK/bands_wrong" ]] || fail "the queue by priority counts placed tests: $(cat "$WORK/bands_wrong")"

# The history has points after a few seconds; JSON parses and names the series.
history_has_points() {
    read_api "/api/v1/metrics/history?metric=workers_connected&from=-60" | head -n 1 |
        $PY -c 'import json,sys; d=json.load(sys.stdin); sys.exit(0 if len(d["points"]) >= 3 and d["points"][-1][1] == 5 else 1)'
}
wait_until 20 history_has_points
read_api "/api/v1/metrics" | head -n 1 | $PY -c '
import json, sys
d = json.load(sys.stdin)
names = {m["name"]: m for m in d["metrics"]}
for n in ("tests_queued_high", "assign_latency_p99", "worker_utilization", "coordinator_cpu"):
    assert n in names, n
assert names["worker_utilization"]["per"] == "worker"
assert [r["step"] for r in d["resolutions"]] == [1, 60, 600]
' || fail "GET /api/v1/metrics lacks a series"

# The slowed worker is flagged with its evidence, and its score drops below the others'.
slow_flagged() {
    read_api /api/v1/anomalies | head -n 1 | $PY -c '
import json, sys
d = json.load(sys.stdin)
hits = [a for a in d["anomalies"] if a["kind"] == "slow_worker" and a["active"]]
sys.exit(0 if [a["worker"] for a in hits] == ["mon-slow"] else 1)'
}
wait_until 60 slow_flagged
read_api /api/v1/anomalies | head -n 1 >"$WORK/anomalies.json"
$PY - "$WORK/anomalies.json" <<'PYEOF' || fail "slow_worker evidence is wrong: $(cat "$WORK/anomalies.json")"
import json, sys
d = json.load(open(sys.argv[1]))
a = [a for a in d["anomalies"] if a["kind"] == "slow_worker"][0]
ev = a["evidence"]
assert ev["tests"] >= 3, ev
assert 3 <= ev["slower"] <= 8, ev          # about 5x
assert ev["ratio"] > 2 * ev["class_ratio"], ev
assert a["severity"] == "critical" and a["end"] is None and a["start"] > 0, a
assert "mon-slow" in a["summary"], a
others = [a for a in d["anomalies"] if a.get("worker") not in (None, "mon-slow") and a["kind"] == "slow_worker"]
assert not others, others
PYEOF
# The failing worker: flagged failure_rate with its counts; nobody else is.
fail_flagged() {
    read_api /api/v1/anomalies | head -n 1 | $PY -c '
import json, sys
d = json.load(sys.stdin)
hits = [a for a in d["anomalies"] if a["kind"] == "failure_rate" and a["active"]]
assert [a["worker"] for a in hits] == ["mon-fail"], hits
ev = hits[0]["evidence"]
assert ev["failed"] == ev["tests"] >= 5 and ev["rate"] == 1 and ev["fleet_rate"] == 0, ev
assert hits[0]["severity"] == "critical", hits'
}
wait_until 60 fail_flagged
read_api /api/v1/workers | head -n 1 | $PY -c '
import json, sys
ws = {w["name"]: w["score"] for w in json.load(sys.stdin)["workers"]}
slow = ws["mon-slow"]
assert slow["speed"] <= 40 and slow["speed_ratio"] >= 3, slow
for n in ("mon-a", "mon-b", "mon-c"):
    assert ws[n]["value"] >= slow["value"] + 25, (n, ws[n], slow)
    assert ws[n]["value"] >= ws["mon-fail"]["value"] + 25, (n, ws[n], ws["mon-fail"])
assert ws["mon-fail"]["reliability"] == 0, ws["mon-fail"]
' || fail "the slowed worker's score did not drop: $(read_api /api/v1/workers | head -n 1)"

# A worker's detail has its measured speed per family against its class: the slowed one
# about a fifth, the others about 1 (the suite's tests name no model: family "unknown").
for n in mon-slow mon-a; do read_api "/api/v1/workers/$n" | head -n 1 >"$WORK/detail-$n.json"; done
$PY - "$WORK/detail-mon-slow.json" "$WORK/detail-mon-a.json" <<'PYEOF' || fail "speed_by_family is wrong: $(cat "$WORK"/detail-*.json)"
import json, sys
slow, ok = (json.load(open(p))["speed_by_family"] for p in sys.argv[1:])
assert [f["family"] for f in slow] == ["unknown"] and slow[0]["tests"] >= 3, slow
assert slow[0]["speed"] <= 0.35 and ok[0]["speed"] >= 0.7, (slow, ok)
assert slow[0]["class_speed"] > 0 and "affinity" in slow[0], slow
PYEOF

# CSV: the history and the tests parse, with the header docs/api.md gives.
read_api "/api/v1/metrics/history?metric=worker_utilization&worker=mon-slow&from=-60&format=csv" >"$WORK/h.csv"
[[ "$(tail -n 1 "$WORK/h.csv")" == 200 ]] || fail "history CSV: $(cat "$WORK/h.csv")"
sed '$d' "$WORK/h.csv" | $PY -c '
import csv, sys
rows = [r for r in csv.reader(sys.stdin) if r]
assert rows[0] == ["t", "value"], rows[0]
assert len(rows) >= 4, rows
assert all(0 <= float(v) <= 1 for t, v in rows[1:]), rows
assert any(float(v) > 0 for t, v in rows[1:]), rows
' || fail "history CSV does not parse"
# The fleet's utilization is running over slots (docs/api.md): never above 1 while the
# workers' windows hold assigned tests beyond their slots.
read_api "/api/v1/metrics/history?metric=utilization&from=-60" | head -n 1 | $PY -c '
import json, sys
p = [v for t, v in json.load(sys.stdin)["points"]]
assert len(p) >= 4 and all(0 <= v <= 1 for v in p) and max(p) > 0.5, p
' || fail "fleet utilization out of [0, 1]: $(read_api "/api/v1/metrics/history?metric=utilization&from=-60")"
run_done() { api GET /api/v1/runs/1 | head -n 1 | grep -q '"done":true'; }
wait_until 60 run_done
# Still flagged at the end of the run (the comparison is with its class's prediction,
# not with the balancer's for the worker itself, which learns its pace).
read_api /api/v1/anomalies | head -n 1 | $PY -c '
import json, sys
d = json.load(sys.stdin)
hits = [a for a in d["anomalies"] if a["kind"] == "slow_worker" and a["active"]]
assert [a["worker"] for a in hits] == ["mon-slow"] and hits[0]["evidence"]["tests"] >= 3, hits
assert hits[0]["evidence"]["slower"] >= 3, hits
' || fail "the slowed worker is no longer flagged at the end of the run: $(read_api /api/v1/anomalies | head -n 1)"
# Evidence prints rounded (4 significant digits), not 0.15129999999999999: read as text.
read_api /api/v1/anomalies | head -n 1 | $PY -c '
import json, re, sys
d = json.loads(sys.stdin.read(), parse_float=str)
nums = [v for a in d["anomalies"] for v in a["evidence"].values() if isinstance(v, str)]
assert nums, d
long = [v for v in nums if len(re.sub(r"^[-0.]*|[.]|e.*$", "", v)) > 4]
assert not long, long
' || fail "anomaly evidence is not rounded: $(read_api /api/v1/anomalies | head -n 1)"
read_api "/api/v1/tests?run=1&format=csv&limit=100" >"$WORK/t.csv"
sed '$d' "$WORK/t.csv" | $PY -c '
import csv, sys
rows = list(csv.DictReader(sys.stdin))
assert len(rows) == 96, len(rows)
for r in rows:
    want = ("failed", "1") if r["worker"] == "mon-fail" else ("passed", "0")
    assert (r["state"], r["exit_code"]) == want and float(r["duration_s"]) > 0, r
slow = [float(r["duration_s"]) for r in rows if r["worker"] == "mon-slow"]
fast = [float(r["duration_s"]) for r in rows if r["worker"] not in ("mon-slow", "mon-fail")]
# medians: one fast run stretched by a loaded machine (0.55 s seen) must not decide it
med = lambda v: sorted(v)[len(v) // 2]
assert slow and fast and med(slow) > 3 * med(fast), (slow, fast)
' || fail "tests CSV does not parse or is wrong"

# Errors name the parameter.
out=$(read_api "/api/v1/metrics/history?metric=worker_utilization")
grep -q '"field":"worker"' <<<"$out" && [[ "$(tail -n 1 <<<"$out")" == 400 ]] || fail "missing worker not named: $out"
out=$(read_api "/api/v1/metrics/history?metric=tests_queued&from=yesterday")
grep -q '"field":"from"' <<<"$out" || fail "bad from not named: $out"

# /metrics: a strict parser, the histograms, the build info, a thermal state per worker.
read_api /metrics | sed '$d' >"$WORK/metrics.txt"
$PY - "$WORK/metrics.txt" <<'PYEOF' || fail "/metrics does not parse or lacks a family"
import sys
from prometheus_client.parser import text_string_to_metric_families
fams = {f.name: f for f in text_string_to_metric_families(open(sys.argv[1]).read())}
for h in ("drover_assign_latency_seconds", "drover_queue_wait_seconds", "drover_test_duration_seconds"):
    assert fams[h].type == "histogram", h
    count = [s.value for s in fams[h].samples if s.name == h + "_count"][0]
    inf = [s.value for s in fams[h].samples if s.name == h + "_bucket" and s.labels["le"] == "+Inf"][0]
    assert count >= 96 and inf == count, (h, count, inf)
dur = fams["drover_test_duration_seconds"]
def bucket(le):
    return [s.value for s in dur.samples if s.name.endswith("_bucket") and float(s.labels["le"]) == le][0]
total = [s.value for s in dur.samples if s.name.endswith("_count")][0]
assert bucket(0.1) == 0 and 0 < bucket(0.5) < total, (bucket(0.1), bucket(0.5), total)  # 0.3 s and 1.5 s
assert [s.labels["version"] for s in fams["drover_build_info"].samples]
th = [s for s in fams["drover_worker_thermal_state"].samples if s.value == 1]
assert sorted(s.labels["worker"] for s in th) == ["mon-a", "mon-b", "mon-c", "mon-fail", "mon-slow"], th
assert "drover_worker_score" in fams and "drover_anomalies" in fams
PYEOF

# The read-only token reads but does not write; the client token still writes.
out=$(curl -s -S --max-time 10 -X POST -H "Authorization: Bearer reader-secret" -w '\n%{http_code}\n' "$URL/api/v1/runs/1/cancel")
[[ "$(tail -n 1 <<<"$out")" == 401 ]] || fail "the read-only token could POST: $out"
[[ "$(read_api /api/v1/status | tail -n 1)" == 200 ]] || fail "the read-only token cannot read"
[[ "$(api POST /api/v1/runs/1/cancel | tail -n 1)" == 200 ]] || fail "the client token cannot POST"

# mon3: a restart keeps the anomalies and the coarser buckets.
read_api /api/v1/anomalies | head -n 1 >"$WORK/before.json"
COORD_PORT=$PORT
kill -9 "$COORD_PID"
wait "$COORD_PID" 2>/dev/null || true
# A series whose last 1 s samples (values 1..10) end a minute and a ten-minute bucket
# twenty minutes ago, with no coarser row yet: a crash before those were written.
t0=$(($(date +%s) / 600 * 600 - 1200))
$PY - "$WORK/drover.db" "$t0" <<'PYEOF' || fail "cannot plant samples"
import sqlite3, sys
db, t0 = sqlite3.connect(sys.argv[1]), int(sys.argv[2])
sid = db.execute("SELECT max(id) + 1 FROM sample_series").fetchone()[0]
db.execute("INSERT INTO sample_series (id, name, key) VALUES (?, 'worker_utilization', 'ghost')", (sid,))
for i in range(10):
    db.execute("INSERT INTO samples VALUES (?, 1, ?, ?)", (sid, t0 + 590 + i, i + 1))
db.commit()
PYEOF
start_coordinator --read-token reader-secret
read_api /api/v1/anomalies | head -n 1 >"$WORK/after.json"
$PY - "$WORK/before.json" "$WORK/after.json" <<'PYEOF' || fail "anomalies lost at a restart: $(cat "$WORK/before.json") -> $(cat "$WORK/after.json")"
import json, sys
before, after = (json.load(open(p))["anomalies"] for p in sys.argv[1:])
def open_ones(d):  # the two this test caused (others may come and go under load)
    return {a["id"]: (a["kind"], a["worker"], a["start"]) for a in d
            if a["active"] and a["kind"] in ("slow_worker", "failure_rate")}
b = open_ones(before)
assert sorted(k for k, w, s in b.values()) == ["failure_rate", "slow_worker"], b
assert open_ones(after) == b, (open_ones(after), b)
PYEOF
slow_start=$($PY -c 'import json,sys; print([a["start"] for a in json.load(open(sys.argv[1]))["anomalies"] if a["kind"] == "slow_worker"][0])' "$WORK/before.json")
read_api "/api/v1/anomalies?from=$slow_start&to=$(awk -v s="$slow_start" 'BEGIN{printf "%.3f", s + 1}')" | head -n 1 >"$WORK/range.json"
read_api "/api/v1/anomalies?from=1&to=2" | head -n 1 >"$WORK/empty.json"
$PY - "$WORK/range.json" "$WORK/empty.json" <<'PYEOF' || fail "anomalies by range: $(cat "$WORK/range.json") / $(cat "$WORK/empty.json")"
import json, sys
r, e = (json.load(open(p)) for p in sys.argv[1:])
assert "slow_worker" in [a["kind"] for a in r["anomalies"]] and "evidence" in r["anomalies"][0], r
assert e["anomalies"] == [], e
PYEOF
out=$(read_api "/api/v1/anomalies?from=10&to=5")
grep -q '"field":"from"' <<<"$out" || fail "from after to not named: $out"
coarse_rebuilt() {
    $PY - "$WORK/drover.db" "$t0" <<'PYEOF'
import sqlite3, sys
db, t0 = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True), int(sys.argv[2])
got = db.execute("SELECT s.res, s.t, s.value FROM samples s JOIN sample_series k ON k.id = s.series"
                 " WHERE k.key = 'ghost' AND s.res > 1 ORDER BY s.res").fetchall()
sys.exit(0 if got == [(60, t0 + 540, 5.5), (600, t0, 5.5)] else 1)
PYEOF
}
wait_until 10 coarse_rebuilt
echo "e2e monitoring: ok"

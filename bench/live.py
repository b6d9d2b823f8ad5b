#!/usr/bin/python3
"""live.py - the live benchmark behind bench/live.sh (see there for what it measures).

For each scenario: a real coordinator (SQLite store, 127.0.0.1) and real `drover worker`
processes of different speeds run a seeded suite (once or twice); in the same run a
shared pull-queue over the same slots and speeds runs the same commands in submission
order (what pytest-xdist's `load` and `ctest -j` do); and `drover sim` replays the same
fleet and suite through the balancer on a virtual clock. Prints makespan, lower bound,
the ratios and sim against live. Every process it starts is stopped by its PID.
"""
import argparse
import json
import math
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HELPER = os.path.join(ROOT, "bench", "live_task.sh")
CLIENT_TOKEN = "bench-client"
WORKER_TOKEN = "bench-worker"
KEEP = None  # --keep DIR: the logs stay there, the coordinator's not quiet

MIXED = [(2, 2, 1.0, 0.0), (2, 2, 3.0, 0.0)]  # (count, slots, slowdown, join after s)
SCENARIOS = {
    "mixed": dict(fleet=MIXED, runs=2, what="mixed fleet (2 fast + 2 at a third, 2 slots), run 2",
                  bar=1.10, bar_what="bound", beat_queue=True),
    "full8": dict(fleet=[(1, 8, 1.0, 0.0)], runs=2, what="one 8-slot worker, run 2",
                  bar=1.03, bar_what="ideal"),
    "late": dict(fleet=[(1, 2, 1.0, 0.0), (1, 2, 1.0, 3.0)], runs=1,
                 what="2-slot worker + one joining 3 s after the submission", bar=1.2,
                 bar_what="ideal"),
    "restart": dict(fleet=MIXED, runs=2, restart=True, sim_note="sim: no restart",
                    what="mixed fleet, coordinator restarted between the runs, run 2", bar=1.15,
                    bar_what="bound"),
    "stragglers": dict(fleet=MIXED, runs=2, hang=(3, 10.0), sim_note="sim: the same hangs",
                       what="mixed fleet, run 2: the first 3 tests on one fast worker hang 10 s",
                       bar=1.2, bar_what="bound without the hangs"),
}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def workers_of(fleet):
    """(name, group, slots, slowdown, join_s) for every worker of the fleet."""
    out = []
    for g, (count, slots, slow, join) in enumerate(fleet):
        for i in range(count):
            out.append((f"g{g + 1}-{i + 1}", g + 1, slots, slow, join))
    return out


def make_suite(n, seed, fleet, target_s):
    """n base durations (lognormal, sigma 1, seeded), scaled so that the fleet's work bound
    is about target_s seconds."""
    r = random.Random(seed)
    raw = [r.lognormvariate(0, 1) for _ in range(n)]
    cap = sum(c * s / slow for c, s, slow, _ in fleet)
    scale = target_s * cap / sum(raw)
    return [round(max(0.01, d * scale), 3) for d in raw]


def lower_bound(durations, fleet):
    """max(total work / sum(slots x speed), longest test / fastest speed); with workers
    joining late, the earliest T at which the fleet present could have done the work."""
    work = sum(durations)
    fastest = max(1.0 / slow for _, _, slow, _ in fleet)
    longest = max(durations) / fastest

    def done_by(t):
        return sum(c * s / slow * max(0.0, t - j) for c, s, slow, j in fleet)

    lo, hi = 0.0, 1.0
    while done_by(hi) < work:
        hi *= 2
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if done_by(mid) < work else (lo, mid)
    return max(hi, longest)


class Live:
    """A coordinator and its workers; stops everything it started by PID."""

    def __init__(self, drover, work, config, scenario):
        self.drover, self.work, self.config, self.sc = drover, work, config, scenario
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.coord = None
        self.workers = {}
        self.db = os.path.join(work, "drover.db")
        # With thermal management off (a config given) the workers measure nothing.
        self.unmeasured = None
        if config:
            self.unmeasured = os.path.join(work, "unmeasured")
            os.makedirs(self.unmeasured, exist_ok=True)

    def api(self, method, path, body=None):
        req = urllib.request.Request(self.url + path, method=method, data=body)
        req.add_header("Authorization", f"Bearer {CLIENT_TOKEN}")
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.read().decode()

    def start_coordinator(self):
        cmd = [self.drover, "coordinator", "--listen", f"127.0.0.1:{self.port}", "--db", self.db,
               "--client-token", CLIENT_TOKEN, "--worker-token", WORKER_TOKEN]
        if not KEEP:
            cmd += ["--quiet"]
        if self.config:
            cmd += ["--config", self.config]
        logf = open(os.path.join(self.work, "coordinator.log"), "a")
        self.coord = subprocess.Popen(cmd, stdout=logf, stderr=logf)
        self.wait(10, lambda: self.status() is not None, "the coordinator to listen")

    def stop_coordinator(self):
        if self.coord and self.coord.poll() is None:
            self.coord.send_signal(signal.SIGTERM)
            try:
                self.coord.wait(10)
            except subprocess.TimeoutExpired:
                self.coord.kill()
                self.coord.wait()
        self.coord = None

    def status(self):
        try:
            return json.loads(self.api("GET", "/api/v1/status"))
        except Exception:
            return None

    def connected(self):
        s = self.status()
        return (s or {}).get("workers", {}).get("connected", -1) if s else -1

    def start_worker(self, name, group, slots, slow, hang_dir=None):
        env = dict(os.environ, DROVER_WORKER_TOKEN=WORKER_TOKEN, DROVER_BENCH_SLOWDOWN=str(slow))
        if hang_dir:
            count, hang_s = self.sc["hang"]
            env.update(DROVER_BENCH_HANG_DIR=hang_dir, DROVER_BENCH_HANG_COUNT=str(count),
                       DROVER_BENCH_HANG_S=str(hang_s))
        cmd = [self.drover, "worker", "--url", f"ws://127.0.0.1:{self.port}", "--name", name,
               "--slots", str(slots), "--label", f"bench-g{group}", "--no-detect"]
        if self.unmeasured:
            cmd += ["--pressure-root", self.unmeasured]
        logf = open(os.path.join(self.work, f"worker-{name}.log"), "a")
        self.workers[name] = subprocess.Popen(cmd, env=env, stdout=logf, stderr=logf)

    def stop_all(self):
        for p in self.workers.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.workers.values():
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.workers = {}
        self.stop_coordinator()

    @staticmethod
    def wait(limit, cond, what):
        end = time.monotonic() + limit
        while not cond():
            if time.monotonic() > end:
                raise RuntimeError(f"timed out after {limit} s waiting for {what}")
            time.sleep(0.05)

    def run(self, tests, name, joiners=()):
        """Submits tests as run `name`, starts the joiners (name, group, slots, slow, join_s)
        join_s after the submission, waits; returns (makespan, moves, tests on each
        worker)."""
        body = json.dumps(tests).encode()
        resp = json.loads(self.api("POST", f"/api/v1/tests?run={name}", body))
        run_id = resp["run_id"]
        t0 = time.monotonic()
        pending = sorted(joiners, key=lambda w: w[4])
        while True:
            while pending and time.monotonic() - t0 >= pending[0][4]:
                w = pending.pop(0)
                self.start_worker(w[0], w[1], w[2], w[3])
            r = json.loads(self.api("GET", f"/api/v1/runs/{run_id}"))
            if r.get("done"):
                break
            if time.monotonic() - t0 > 600:
                raise RuntimeError(f"run {name} did not end in 600 s")
            time.sleep(0.1)
        rows = json.loads(self.api("GET", f"/api/v1/tests?run={run_id}&limit=100000"))["tests"]
        bad = [t["name"] for t in rows if t["state"] != "passed"]
        if bad:
            raise RuntimeError(f"run {name}: {len(bad)} tests did not pass ({bad[:3]})")
        makespan = max(t["finished_at"] for t in rows) - min(t["submitted_at"] for t in rows)
        on = {}
        for t in rows:
            on[t["worker"]] = on.get(t["worker"], 0) + 1
        # What a test cost beyond its sleep (process start, awk, reporting), by the
        # worker's own measure: what the simulator does not model.
        slow = {w[0]: w[3] for w in workers_of(self.sc["fleet"])}
        base = {t["name"]: float(t["argv"][1]) for t in tests}
        over = [t["duration_s"] - base[t["name"]] * slow[t["worker"]] for t in rows
                if t["worker"] in slow and t.get("duration_s") is not None]
        self.overhead_ms = 1000 * sum(over) / len(over) if over else 0
        moves = 0
        for line in self.api("GET", "/metrics").splitlines():
            if line.startswith("drover_moves_total "):
                moves = int(float(line.split()[1]))
        return makespan, moves, on, self.overhead_ms


def run_live(drover, work, config, sc, tests):
    live = Live(drover, work, config, sc)
    fleet = workers_of(sc["fleet"])
    hang_dir = os.path.join(work, "hang-live")
    try:
        live.start_coordinator()
        present = [w for w in fleet if w[4] == 0]
        for i, (name, group, slots, slow, _) in enumerate(present):
            live.start_worker(name, group, slots, slow,
                              hang_dir if sc.get("hang") and i == 0 else None)
        live.wait(20, lambda: live.connected() == len(present), "the workers to connect")
        results = []
        for k in range(1, sc["runs"] + 1):
            last = k == sc["runs"]
            if last and sc.get("restart"):
                live.stop_coordinator()
                live.start_coordinator()
                live.wait(30, lambda: live.connected() == len(present), "the workers to reconnect")
            if last and sc.get("hang"):
                os.mkdir(hang_dir)
            joiners = [w for w in fleet if w[4] > 0] if last else []
            results.append(live.run(tests, f"run{k}", joiners))
        return results
    finally:
        live.stop_all()


def run_queue(sc, durations, work):
    """The shared pull-queue: one loop per slot of every worker, each taking the next test
    in submission order and running the same command with its worker's environment."""
    fleet = workers_of(sc["fleet"])
    hang_dir = os.path.join(work, "hang-queue")
    if sc.get("hang"):
        os.mkdir(hang_dir)
    lock = threading.Lock()
    nxt = [0]
    last = [0.0]
    t0 = time.monotonic()

    def lane(env, join_s):
        delay = t0 + join_s - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        while True:
            with lock:
                i = nxt[0]
                nxt[0] += 1
            if i >= len(durations):
                return
            subprocess.run([HELPER, f"{durations[i]:.3f}"], env=env, check=True)
            with lock:
                last[0] = max(last[0], time.monotonic() - t0)

    threads = []
    for wi, (name, group, slots, slow, join) in enumerate(fleet):
        env = dict(os.environ, DROVER_BENCH_SLOWDOWN=str(slow))
        if sc.get("hang") and wi == 0:
            count, hang_s = sc["hang"]
            env.update(DROVER_BENCH_HANG_DIR=hang_dir, DROVER_BENCH_HANG_COUNT=str(count),
                       DROVER_BENCH_HANG_S=str(hang_s))
        for _ in range(slots):
            th = threading.Thread(target=lane, args=(env, join))
            th.start()
            threads.append(th)
    for th in threads:
        th.join()
    return last[0]


def run_sim(drover, work, config, sc, names, durations, overhead_s):
    path = os.path.join(work, "durations.json")
    with open(path, "w") as f:
        json.dump(dict(zip(names, durations)), f)
    fleet = ",".join(f"{c}x{s}@{1.0 / slow:.6f}" + (f"+{j:g}" if j > 0 else "")
                     for c, s, slow, j in sc["fleet"])
    cmd = [drover, "sim", "--durations", path, "--fleet", fleet, "--policies", "composite",
           "--scenario", "second_run" if sc["runs"] == 2 else "burst", "--spread", "0",
           "--rebalance", "1", "--speculate", "0.5", "--no-timing", "--json",
           "--test-overhead", f"{overhead_s:.4f}"]
    if sc.get("hang"):  # the first worker of the fleet is the one whose tests hang, as live
        count, hang_s = sc["hang"]
        cmd[cmd.index("--scenario") + 1] = "stragglers"
        cmd += ["--hangs", str(count), "--hang-s", f"{hang_s:g}"]
    if config:
        cmd += ["--config", config]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    rows = [r for r in json.loads(out) if r["policy"] == "composite"]
    return [r["makespan_s"] for r in sorted(rows, key=lambda r: r["run"])]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--drover", required=True)
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    ap.add_argument("--tests", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--target", type=float, default=15.0, help="work bound per run, s")
    ap.add_argument("--thermal", choices=["off", "default"], default="off")
    ap.add_argument("--no-queue", action="store_true")
    ap.add_argument("--keep", metavar="DIR",
                    help="keep the logs in DIR (new); the coordinator logs every decision")
    args = ap.parse_args()
    global KEEP
    KEEP = args.keep
    if KEEP:
        os.makedirs(KEEP)
    work = KEEP or tempfile.mkdtemp(prefix="drover-live.")
    config = None
    if args.thermal == "off":
        # Thermal management off: no ramp, no pressure limit a loaded machine can reach,
        # and the workers measure nothing (an empty --pressure-root). prefetch_max as the
        # figures in docs/balancer.md were measured.
        config = os.path.join(work, "balancer.json")
        with open(config, "w") as f:
            json.dump({"settings": {"prefetch_max": 1024, "unschedulable_grace_s": 5,
                                    "thermal": {"initial_share": 1, "ramp_s": 0,
                                                "cpu_pressure_limit": 1e9,
                                                "memory_pressure_limit": 1e9,
                                                "freq_ratio_limit": 0,
                                                "temperature_limit_c": 1e9}}}, f)
    print(f"bench/live: {args.tests} tests per run, lognormal (sigma 1), seed {args.seed}, "
          f"work bound ~{args.target:g} s; thermal management {args.thermal}")
    print(f"{'scenario':<11} {'live':>7} {'bound':>7} {'ratio':>6} {'queue':>7} {'q/bnd':>6} "
          f"{'sim':>7} {'sim/live':>8} {'moves':>5}  bar")
    try:
        for name in args.scenarios.split(","):
            sc = SCENARIOS.get(name)
            if not sc:
                sys.exit(f"bench/live: unknown scenario {name!r} (known: {', '.join(SCENARIOS)})")
            sdir = os.path.join(work, name)
            os.mkdir(sdir)
            durations = make_suite(args.tests, args.seed, sc["fleet"], args.target)
            names = [f"live/t{i:03d}" for i in range(len(durations))]
            tests = [{"name": n, "argv": [HELPER, f"{d:.3f}"]} for n, d in zip(names, durations)]
            bound = lower_bound(durations, sc["fleet"])
            log(f"bench/live: {name}: {sc['what']}")
            live = run_live(args.drover, sdir, config, sc, tests)
            queue = None if args.no_queue else run_queue(sc, durations, sdir)
            # The simulator is told what a test costs beyond its sleep on this machine, as
            # the workers measured it in the run compared (in run 1 with hangs, which
            # would count as cost): on a shared machine process starts take 5 to 40 ms
            # with the neighbours' load, and sim against live should compare scheduling.
            cost = live[0 if sc.get("hang") else -1][3] / 1000
            sim = run_sim(args.drover, sdir, config, sc, names, durations, cost)
            mk, moves, on, over_ms = live[-1]
            ratio = mk / bound
            ok = ratio <= sc["bar"] and (not sc.get("beat_queue") or queue is None or mk < queue)
            qtxt = f"{queue:6.1f}s {queue / bound:6.3f}" if queue is not None else f"{'-':>7} {'-':>6}"
            print(f"{name:<11} {mk:6.1f}s {bound:6.1f}s {ratio:6.3f} {qtxt} {sim[-1]:6.1f}s "
                  f"{sim[-1] / mk:8.3f} {moves:5d}  <= {sc['bar']:g} x {sc['bar_what']}"
                  f"{' and < queue' if sc.get('beat_queue') else ''}: {'ok' if ok else 'MISSED'}"
                  + (f" ({sc['sim_note']})" if sc.get("sim_note") else ""),
                  flush=True)
            first = (f"run 1 {live[0][0]:.1f}s ({live[0][0] / bound:.3f} x bound), "
                     f"sim run 1 {sim[0]:.1f}s; " if len(live) > 1 else "")
            print(f"{'':<11} {first}per test {over_ms:.0f} ms beyond its sleep; the sim's "
                  f"--test-overhead {1000 * cost:.0f} ms; tests per worker "
                  "in the last run: " + ", ".join(f"{w} {n}" for w, n in sorted(on.items())),
                  flush=True)
    finally:
        if not KEEP:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""chaos.py - the chaos suite (issue 11): a seeded schedule of faults against real
drover processes on 127.0.0.1, checked against the executions themselves.

It starts a coordinator (SQLite store in a temporary directory) and a few workers, one
of them behind a TCP proxy the suite can cut, submits short real tests (passing,
failing, flaky with reruns, timing out, longer ones; various max_retries and reruns),
and meanwhile injects faults drawn from the seed: workers killed with SIGKILL and
replaced (some under the same name), workers frozen (SIGSTOP) past the heartbeat
timeout and resumed, the coordinator killed with SIGKILL and restarted on the same
store and port, workers drained (SIGTERM) and replaced, the proxy's connections cut,
and a store that fills: run as root with mount(8), the store lives on a tmpfs of its
own (mount -t tmpfs), shrunk while the coordinator runs to 512 KiB above what it holds
(a real full file system: ENOSPC); otherwise the coordinator is restarted under a file
size limit a little above its store's size (SIGXFSZ ignored: EFBIG). Either way it must
stop with exit status 3, acknowledging nothing it could not store, and is started again
with room; the output says which of the two was used.

Every test appends "ID ATTEMPT START_TIME" to one execution log when it starts
(DROVER_TEST_ID and DROVER_ATTEMPT come from the worker). At the end it checks:
  - every accepted test (its id was in a 201 answer) is final, with exactly one final
    result (no attempt left open, at most one passing result, a passed test's last
    finished attempt passed);
  - no (test, attempt) ran twice (duplicates), and no test ran more often than
    1 + max_retries + reruns, not counting runs of speculative copies that lost (their
    attempts are "superseded", printed apart): a run of an attempt the coordinator gave
    up before it heard it start (a move away from a worker that was starting it) is a
    violation, since moves are two-phase (exec2; --lenient-moves only counts them);
  - no test started after it was final (its log time after its finished_at);
  - the coordinator's resident memory stayed under --max-rss-mb;
and prints the counts. Exit status 0 when every check holds, 1 on any violation, 2 on
a setup failure. Only the standard library; processes are ended by PID.
"""
import argparse
import json
import os
import resource
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

CLIENT_TOKEN = "chaos-client"
WORKER_TOKEN = "chaos-worker"
FINAL = ("passed", "failed", "timed_out", "cancelled", "unschedulable")


class Proxy:
    """A TCP proxy to the coordinator whose connections can be cut at once."""

    def __init__(self, target_port):
        self.target_port = target_port
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.pairs = []
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            try:
                u = socket.create_connection(("127.0.0.1", self.target_port), timeout=2)
            except OSError:
                c.close()
                continue
            with self.lock:
                self.pairs.append((c, u))
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(a, b):
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                b.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self):
        """Closes every connection going through (as a network failure would)."""
        with self.lock:
            pairs, self.pairs = self.pairs, []
        for c, u in pairs:
            for s in (c, u):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                    s.close()
                except OSError:
                    pass
        return len(pairs)

    def close(self):
        self.closed = True
        self.cut()
        self.sock.close()


class Chaos:
    def __init__(self, a):
        self.a = a
        self.rng = random.Random(a.seed)
        self.dir = tempfile.mkdtemp(prefix="drover-chaos.")
        self.db = os.path.join(self.dir, "drover.db")
        self.execlog = os.path.join(self.dir, "executions")
        open(self.execlog, "w").close()
        self.coord = None
        self.port = 0
        self.proxy = None
        self.workers = {}  # name -> Popen
        self.frozen = {}  # name -> resume time
        self.all_procs = []
        self.serial = 0
        self.faults = {}
        self.accepted = {}  # id -> (max_retries, reruns, kind)
        self.unacknowledged = 0
        self.violations = []
        self.rss_max_kb = 0
        self.store_full = False  # the coordinator runs on a store that fills
        self.store_full_stops = 0
        self.tmpfs = None  # the store's own tmpfs mount point, when one could be mounted
        self.fill_way = "file size limit"

    # ---- processes ----

    def log(self, msg):
        if not self.a.quiet:
            print(f"chaos: {time.strftime('%H:%M:%S')} {msg}", flush=True)

    TMPFS_ROOM = "1g"  # the tmpfs's size while the store has room (a limit, not memory)

    def mount_store(self):
        """Puts the store on a tmpfs of its own when this runs as root with mount(8), so
        that it can fill for real; says which way the store will fill."""
        if self.a.store_fulls <= 0:
            return
        why = "not root" if os.geteuid() != 0 else "--no-tmpfs" if self.a.no_tmpfs else None
        if why is None and not shutil.which("mount"):
            why = "no mount(8)"
        if why is None:
            point = os.path.join(self.dir, "store")
            os.mkdir(point)
            r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={self.TMPFS_ROOM}", "tmpfs",
                                point], capture_output=True, text=True)
            if r.returncode == 0:
                self.tmpfs = point
                self.fill_way = "tmpfs"
                self.db = os.path.join(point, "drover.db")
                print(f"chaos: the store that fills: a tmpfs of its own ({point}), shrunk to "
                      f"512 KiB above its use", flush=True)
                return
            why = f"mount -t tmpfs failed: {r.stderr.strip() or r.returncode}"
        print(f"chaos: the store that fills: a file size limit (RLIMIT_FSIZE), since {why}",
              flush=True)

    def tmpfs_size(self, size):
        """Remounts the store's tmpfs with size (bytes or "1g"). Returns True on success."""
        return subprocess.run(["mount", "-o", f"remount,size={size}", self.tmpfs],
                              capture_output=True).returncode == 0

    def unmount_store(self):
        if self.tmpfs:
            subprocess.run(["umount", "-l", self.tmpfs], capture_output=True)
            self.tmpfs = None

    def start_coordinator(self, fsize_limit=None):
        """Starts the coordinator on the store and port; with fsize_limit (bytes), under
        that file size limit (SIGXFSZ ignored): its store fills as a full disk would. A
        store on its tmpfs gets its room back first (unless it is meant to be full)."""
        if self.tmpfs and not self.store_full:
            self.tmpfs_size(self.TMPFS_ROOM)
        port_file = os.path.join(self.dir, "port")
        if os.path.exists(port_file):
            os.unlink(port_file)
        args = [self.a.drover, "coordinator", "--listen", f"127.0.0.1:{self.port}",
                "--db", self.db, "--port-file", port_file, "--client-token", CLIENT_TOKEN,
                "--worker-token", WORKER_TOKEN, "--heartbeat-timeout", str(self.a.heartbeat_timeout),
                "--heartbeat-interval", str(self.a.heartbeat_interval),
                "--recovery-grace", "2"]
        out = open(os.path.join(self.dir, "coordinator.log"), "a")
        def limit():
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize_limit, fsize_limit))

        for _ in range(50):  # a port in TIME_WAIT or the old store lock may need a moment
            p = subprocess.Popen(args, stdout=out, stderr=out, stdin=subprocess.DEVNULL,
                                 preexec_fn=limit if fsize_limit else None)
            self.all_procs.append(p)
            end = time.time() + 10
            while time.time() < end and p.poll() is None and not os.path.exists(port_file):
                time.sleep(0.02)
            if os.path.exists(port_file) and p.poll() is None:
                while not open(port_file).read().strip():
                    time.sleep(0.01)
                self.port = int(open(port_file).read().strip())
                self.coord = p
                return
            if p.poll() is None:
                p.kill()
                p.wait()
            elif fsize_limit:  # its store filled while it started: room again
                self.store_full_stops += 1
                self.store_full = False
                fsize_limit = None
            time.sleep(0.2)
        raise RuntimeError("the coordinator did not start (see coordinator.log)")

    def start_worker(self, name=None, proxied=False):
        if name is None:
            self.serial += 1
            name = f"w{self.serial}"
        url = f"http://127.0.0.1:{self.proxy.port if proxied else self.port}"
        env = dict(os.environ, DROVER_WORKER_TOKEN=WORKER_TOKEN)
        out = open(os.path.join(self.dir, f"worker-{name}.log"), "a")
        p = subprocess.Popen([self.a.drover, "worker", "--url", url, "--name", name, "--no-detect",
                              "--slots", str(self.a.slots)], stdout=out, stderr=out,
                             stdin=subprocess.DEVNULL, env=env)
        self.all_procs.append(p)
        self.workers[name] = p
        return name

    def fault(self, kind):
        self.faults[kind] = self.faults.get(kind, 0) + 1

    # ---- the REST API ----

    def api(self, method, path, body=None, timeout=10):
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=body,
                                     method=method)
        req.add_header("Authorization", f"Bearer {CLIENT_TOKEN}")
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return json.loads(r.read().decode())

    # ---- tests ----

    def make_test(self, i):
        log = self.execlog
        head = f'echo "$DROVER_TEST_ID $DROVER_ATTEMPT $EPOCHREALTIME" >> {log}; '
        kind = self.rng.choices(["pass", "fail", "flaky", "timeout", "long"],
                                [70, 8, 10, 4, 8])[0]
        t = {"name": f"chaos/{i}", "max_retries": self.rng.choice([0, 1, 2, 2, 2, 3])}
        if kind == "pass":
            body = f"sleep 0.0{self.rng.randint(1, 9)}"
        elif kind == "fail":
            body = "sleep 0.02; exit 1"
            t["reruns"] = self.rng.choice([0, 1, 2])
        elif kind == "flaky":  # fails on its first attempt; a rerun passes
            body = 'sleep 0.03; [ "$DROVER_ATTEMPT" -gt 1 ] || exit 3'
            t["reruns"] = self.rng.choice([1, 2])
        elif kind == "timeout":
            body = "sleep 5"
            t["timeout_s"] = 0.3
            t["reruns"] = self.rng.choice([0, 1])
        else:
            body = f"sleep 1.{self.rng.randint(0, 9)}"
        t["argv"] = ["bash", "-c", head + body]
        return t, kind

    def submit(self, batch):
        body = "\n".join(json.dumps(t) for t, _ in batch).encode()
        try:
            ans = self.api("POST", "/api/v1/tests?run=chaos", body, timeout=20)
        except (urllib.error.URLError, OSError, ValueError):
            # Not acknowledged (the coordinator may be down): tried again later; tests
            # that were stored without an answer are not "accepted".
            self.unacknowledged += 1
            return False
        for tid, (t, kind) in zip(ans["ids"], batch):
            self.accepted[tid] = (t["max_retries"], t.get("reruns", 0), kind)
        return True

    # ---- faults ----

    def live_workers(self):
        return [n for n, p in self.workers.items() if p.poll() is None and n not in self.frozen
                and n != "proxied"]

    def inject(self, kind):
        live = self.live_workers()
        if kind == "kill_worker" and live:
            name = self.rng.choice(live)
            self.workers[name].kill()
            self.workers[name].wait()
            same = self.rng.random() < 0.4
            self.start_worker(name if same else None)
            self.log(f"kill -9 worker {name}; replaced{' under the same name' if same else ''}")
            self.fault("worker kill -9" + (" (same-name restart)" if same else ""))
        elif kind == "freeze" and live:
            name = self.rng.choice(live)
            self.workers[name].send_signal(signal.SIGSTOP)
            self.frozen[name] = time.time() + self.a.heartbeat_timeout + 1.5
            self.log(f"SIGSTOP worker {name}")
            self.fault("worker SIGSTOP past the heartbeat timeout")
        elif kind == "drain" and live:
            name = self.rng.choice(live)
            self.workers[name].send_signal(signal.SIGTERM)
            self.start_worker()
            self.log(f"drain (SIGTERM) worker {name}; another started")
            self.fault("worker drain")
        elif kind == "kill_coordinator":
            self.coord.kill()
            self.coord.wait()
            time.sleep(self.rng.uniform(0.1, 1.0))
            self.store_full = False
            self.start_coordinator()
            self.log("kill -9 coordinator; restarted")
            self.fault("coordinator kill -9 and restart")
        elif kind == "store_full" and self.tmpfs:
            # The store's file system shrinks to 512 KiB above what it holds, under the
            # running coordinator: the next commits fail (ENOSPC), and it must stop (exit
            # 3) acknowledging nothing it could not store. It is then started with room.
            for _ in range(5):  # it grows meanwhile: a size under its use is refused
                st = os.statvfs(self.tmpfs)
                used = (st.f_blocks - st.f_bfree) * st.f_frsize
                size = used + 512 * 1024
                if self.tmpfs_size(size):
                    break
            else:
                self.log("the store's tmpfs could not be shrunk")
                return
            self.store_full = True
            self.log(f"the store's tmpfs shrunk to {size // 1024} KiB ({used // 1024} KiB used)")
            self.fault("store full (its tmpfs shrunk under the running coordinator)")
        elif kind == "store_full":
            # Restarted with room for 512 KiB more in each store file: the next
            # commits fail, and the coordinator must stop (exit 3) acknowledging nothing
            # it could not store. It is then started with room again.
            self.coord.kill()
            self.coord.wait()
            # The limit is per file: from the main file's size, which grows at each
            # checkpoint (a WAL already past it fails at once: fine too).
            self.store_full = True
            self.start_coordinator(fsize_limit=os.path.getsize(self.db) + 512 * 1024)
            self.log("coordinator restarted on a store that fills")
            self.fault("store full (coordinator restarted under a file size limit)")
        elif kind == "cut":
            n = self.proxy.cut()
            self.log(f"cut {n} proxied connection(s)")
            self.fault("connection cut")

    def resume_frozen(self, now, all_of_them=False):
        for name, when in list(self.frozen.items()):
            if all_of_them or now >= when:
                p = self.workers[name]
                if p.poll() is None:
                    p.send_signal(signal.SIGCONT)
                del self.frozen[name]
                self.log(f"SIGCONT worker {name}")

    def sample_rss(self):
        try:
            with open(f"/proc/{self.coord.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        self.rss_max_kb = max(self.rss_max_kb, int(line.split()[1]))
        except OSError:
            pass

    # ---- the run ----

    def schedule(self, t0):
        a = self.a
        kinds = (["kill_worker"] * a.worker_kills + ["freeze"] * a.freezes +
                 ["kill_coordinator"] * a.coordinator_kills + ["drain"] * a.drains +
                 ["cut"] * a.cuts)
        span = a.duration * 0.8
        times = sorted(self.rng.uniform(1.5, span) for _ in kinds)
        self.rng.shuffle(kinds)
        events = [(t0 + t, k) for t, k in zip(times, kinds)]
        # A store that fills while tests are still being submitted (it has to fill).
        events += [(t0 + self.rng.uniform(1.5, a.duration * 0.4), "store_full")
                   for _ in range(a.store_fulls)]
        return sorted(events)

    def run(self):
        a = self.a
        self.mount_store()
        self.start_coordinator()
        self.proxy = Proxy(self.port)
        for _ in range(a.workers):
            self.start_worker()
        self.start_worker("proxied", proxied=True)
        tests = [self.make_test(i) for i in range(a.tests)]
        t0 = time.time()
        events = self.schedule(t0)
        pending = list(range(0, len(tests), a.batch))
        # Submissions spread over the first 70% of the run.
        per_s = len(pending) / max(a.duration * 0.7, 1)
        next_submit = t0
        while time.time() < t0 + a.duration or pending:
            now = time.time()
            self.resume_frozen(now)
            while events and events[0][0] <= now:
                self.inject(events.pop(0)[1])
            if pending and now >= next_submit:
                i = pending[0]
                if self.submit(tests[i:i + a.batch]):
                    pending.pop(0)
                next_submit = now + 1 / per_s if per_s > 0 else now
            self.sample_rss()
            if self.coord.poll() is not None:
                if self.store_full and self.coord.returncode == 3:
                    self.log("the coordinator stopped on its full store (exit 3); room again")
                    self.store_full_stops += 1
                else:
                    self.violations.append(
                        f"the coordinator exited by itself (status {self.coord.returncode})")
                self.store_full = False
                self.start_coordinator()
            time.sleep(0.05)
        for _, k in events:
            self.inject(k)
        self.resume_frozen(0, all_of_them=True)
        if self.store_full:  # it did not fill in time: room again
            self.coord.kill()
            self.coord.wait()
            self.store_full = False
            self.start_coordinator()
        self.wait_final()

    def wait_final(self):
        deadline = time.time() + self.a.settle
        while time.time() < deadline:
            self.sample_rss()
            try:
                st = self.api("GET", "/api/v1/status")
                c = st["counts"]
                if c.get("queued", 0) + c.get("assigned", 0) + c.get("running", 0) == 0:
                    return
            except (urllib.error.URLError, OSError, ValueError):
                pass
            time.sleep(0.25)
        self.log("the tests did not all become final in time")

    # ---- the checks ----

    def check(self):
        executions = {}  # id -> list of (attempt, t)
        for line in open(self.execlog):
            parts = line.split()
            if len(parts) != 3:
                self.violations.append(f"execution log: bad line {line.strip()!r}")
                continue
            executions.setdefault(int(parts[0]), []).append((int(parts[1]), float(parts[2])))
        states = {}
        duplicates = 0
        total_exec = 0
        raced = 0
        speculative = 0
        moves_done = 0
        for tid in sorted(self.accepted):
            max_retries, reruns, kind = self.accepted[tid]
            try:
                d = self.api("GET", f"/api/v1/tests/{tid}")
            except (urllib.error.URLError, OSError, ValueError) as e:
                self.violations.append(f"test {tid}: cannot read it: {e}")
                continue
            st = d["state"]
            states[st] = states.get(st, 0) + 1
            ex = executions.get(tid, [])
            total_exec += len(ex)
            seen = {}
            for att, _ in ex:
                seen[att] = seen.get(att, 0) + 1
            dup = sum(n - 1 for n in seen.values())
            duplicates += dup
            if dup:
                self.violations.append(f"test {tid}: an attempt ran twice: {sorted(ex)}")
            if st not in FINAL:
                self.violations.append(f"test {tid}: not final ({st})")
                continue
            atts = d.get("attempts") or []
            # An attempt the coordinator gave up before it heard it start, and which ran
            # anyway: with the two-phase move a test moved away is released by its holder
            # first, so such a run is a violation (counted apart; --lenient-moves only
            # counts it). A speculative copy that lost is "superseded" (superseded_by set),
            # never "abandoned": its run is one the speculation promised, counted apart
            # and not against the budget.
            gave_up = {x["attempt"] for x in atts
                       if x["state"] == "abandoned" and x.get("started_at") is None
                       and x.get("superseded_by") is None}
            copies = {x["attempt"] for x in atts
                      if x["state"] == "superseded" or x.get("superseded_by") is not None}
            moves_done += sum(1 for x in atts if x.get("reason") in ("stolen", "rebalanced"))
            moved = sum(1 for att, _ in ex if att in gave_up)
            copied = sum(1 for att, _ in ex if att in copies)
            raced += moved
            speculative += copied
            if moved and not self.a.lenient_moves:
                self.violations.append(
                    f"test {tid}: {moved} run(s) of an attempt given up before it started: "
                    f"{sorted(ex)}")
            budget = 1 + max_retries + reruns
            if len(ex) - moved - copied > budget:
                self.violations.append(
                    f"test {tid} ({kind}, max_retries {max_retries}, reruns {reruns}): ran "
                    f"{len(ex)} times, more than {budget}")
            fin = d.get("finished_at") or 0
            late = [t for _, t in ex if t > fin]
            if late:
                self.violations.append(f"test {tid}: started {late[0] - fin:.3f} s after it was final")
            open_atts = [x for x in atts if x["state"] in ("assigned", "running")]
            if open_atts:
                self.violations.append(f"test {tid}: final with an open attempt")
            finished = [x for x in atts if x["state"] == "finished"]
            passing = [x for x in finished if not x.get("infra_failure") and not x.get("timed_out")
                       and x.get("exit_code") == 0]
            if len(passing) > 1:
                self.violations.append(f"test {tid}: {len(passing)} passing results")
            if st == "passed" and (not finished or finished[-1] not in passing):
                self.violations.append(f"test {tid}: passed but its last result did not pass")
        for name in sorted(os.listdir(self.dir)):
            if name.endswith(".log"):
                text = open(os.path.join(self.dir, name), errors="replace").read()
                if "ERROR: AddressSanitizer" in text or "runtime error:" in text:
                    self.violations.append(f"a sanitizer report in {name}")
        if self.rss_max_kb > self.a.max_rss_mb * 1024:
            self.violations.append(
                f"coordinator memory {self.rss_max_kb // 1024} MiB over {self.a.max_rss_mb} MiB")
        late_results = "?"
        try:
            late_results = self.api("GET", "/api/v1/status").get("late_results", "?")
        except (urllib.error.URLError, OSError, ValueError):
            pass
        print(f"chaos: seed {self.a.seed}: submitted {len(self.accepted)} accepted tests "
              f"({self.a.tests} generated, {self.unacknowledged} submissions "
              f"unacknowledged and retried)")
        print("chaos: final by state: " + ", ".join(f"{k} {v}" for k, v in sorted(states.items())))
        print(f"chaos: executions {total_exec}, duplicates {duplicates}, runs of attempts given "
              f"up before they started {raced}, runs of superseded speculative copies "
              f"{speculative}, late results ignored "
              f"{late_results}, coordinator peak RSS {self.rss_max_kb // 1024} MiB")
        # Moves: done ones are on the attempts (reason stolen or rebalanced); dropped ones
        # (the holder had started the test, or could not answer) only in the log.
        dropped = 0
        log = os.path.join(self.dir, "coordinator.log")
        if os.path.exists(log):
            dropped = sum(1 for line in open(log, errors="replace") if ", not moved to " in line)
        print(f"chaos: moves done {moves_done}, moves dropped (two-phase) {dropped}")
        print(f"chaos: faults injected {sum(self.faults.values())}: " +
              ", ".join(f"{v} {k}" for k, v in sorted(self.faults.items())) +
              f"; the full store ({self.fill_way}) stopped the coordinator "
              f"{self.store_full_stops} time(s)")
        for v in self.violations[:30]:
            print(f"chaos: VIOLATION: {v}")
        if len(self.violations) > 30:
            print(f"chaos: ... and {len(self.violations) - 30} more violations")
        print(f"chaos: {'FAILED' if self.violations else 'ok'}: {len(self.violations)} violations")
        return 1 if self.violations else 0

    def cleanup(self, keep):
        self.resume_frozen(0, all_of_them=True)
        for p in self.workers.values():
            if p.poll() is None:
                p.send_signal(signal.SIGCONT)
                p.send_signal(signal.SIGKILL)
        for p in self.all_procs:
            if p.poll() is None:
                p.kill()
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        if self.proxy:
            self.proxy.close()
        if keep and self.tmpfs:  # the store leaves its tmpfs with the logs
            for f in os.listdir(self.tmpfs):
                shutil.copy(os.path.join(self.tmpfs, f), self.dir)
        self.unmount_store()
        if keep:
            print(f"chaos: logs kept in {self.dir}")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--drover", default=os.environ.get("DROVER", "build/drover"))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--tests", type=int, default=3000)
    ap.add_argument("--duration", type=float, default=90, help="seconds of submissions and faults")
    ap.add_argument("--settle", type=float, default=120, help="seconds allowed to finish after")
    ap.add_argument("--workers", type=int, default=4, help="direct workers (one more is proxied)")
    ap.add_argument("--slots", type=int, default=3)
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--heartbeat-timeout", type=float, default=1.5)
    ap.add_argument("--heartbeat-interval", type=float, default=0.5)
    ap.add_argument("--worker-kills", type=int, default=12)
    ap.add_argument("--freezes", type=int, default=7)
    ap.add_argument("--coordinator-kills", type=int, default=3)
    ap.add_argument("--drains", type=int, default=2)
    ap.add_argument("--cuts", type=int, default=2)
    ap.add_argument("--store-fulls", type=int, default=1,
                    help="restarts of the coordinator on a store that fills (exit 3 expected)")
    ap.add_argument("--no-tmpfs", action="store_true",
                    help="fill the store by a file size limit even where a tmpfs could be mounted")
    ap.add_argument("--max-rss-mb", type=int, default=256)
    ap.add_argument("--keep", action="store_true", help="keep the logs and the store")
    ap.add_argument("--lenient-moves", action="store_true",
                    help="only count (no violation) runs of attempts given up before they "
                         "started (moves before the two-phase move)")
    ap.add_argument("--strict-moves", action="store_true",
                    help="the default since the two-phase move; accepted for old scripts")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args()
    if not os.access(a.drover, os.X_OK):
        print(f"chaos: {a.drover}: not an executable drover (give --drover or DROVER)", file=sys.stderr)
        return 2
    c = Chaos(a)
    status = 2
    try:
        c.run()
        status = c.check()
    except RuntimeError as e:
        print(f"chaos: {e}", file=sys.stderr)
        c.a.keep = True
    finally:
        c.cleanup(a.keep or status != 0)
    return status


if __name__ == "__main__":
    sys.exit(main())

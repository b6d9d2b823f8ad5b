// dashboard.js - the coordinator's live page: takes the snapshots the coordinator pushes
// each second on its live feed (WebSocket /ws/dashboard/v1; polling the REST API,
// docs/api.md, when that cannot be opened) and draws them: counts, throughput and queue over the last minutes
// (uPlot), the workers with their health and why, the recent runs.
//
// Reads need the client token unless the coordinator runs with --open-read: the page
// takes it from the address (#token=...) or the form, and keeps it for this tab only.
(function () {
  "use strict";
  var POLL_MS = 1000, KEEP = 600; // 10 minutes of samples
  var token = sessionStorage.getItem("drover-token") || "";
  var m = /(?:^|[#&])token=([^&]*)/.exec(location.hash);
  if (m) {
    token = decodeURIComponent(m[1]);
    sessionStorage.setItem("drover-token", token);
    history.replaceState(null, "", location.pathname);
  }
  var $ = function (id) { return document.getElementById(id); };
  var FINAL = ["passed", "failed", "timed_out", "cancelled", "unschedulable"];

  function get(path) {
    var h = token ? { Authorization: "Bearer " + token } : {};
    return fetch(path, { headers: h, cache: "no-store" }).then(function (r) {
      if (r.status === 401) throw { auth: true };
      if (!r.ok) throw new Error(path + ": HTTP " + r.status);
      return r.json();
    });
  }

  function td(tr, text, cls) {
    var c = document.createElement("td");
    c.textContent = text == null ? "" : String(text);
    if (cls) c.className = cls;
    tr.appendChild(c);
    return c;
  }

  // ---- charts ----
  var series = { t: [], rate: [], queued: [], running: [] };
  var lastFinal = null, lastT = null;
  function chart(el, labels, colors) {
    var s = [{}].concat(labels.map(function (l, i) {
      return { label: l, stroke: colors[i], width: 1.5 };
    }));
    var w = Math.max(320, Math.min(620, (document.body.clientWidth - 60) / 2));
    return new uPlot({ width: w, height: 220, series: s, scales: { x: { time: true } },
      axes: [{}, { size: 60 }] }, [[]].concat(labels.map(function () { return []; })), el);
  }
  var rateChart = chart($("chart-rate"), ["tests/s"], ["#1f77b4"]);
  var queueChart = chart($("chart-queue"), ["queued", "running"], ["#ff7f0e", "#2ca02c"]);

  function sample(st) {
    var now = Date.now() / 1000, c = st.counts, fin = 0;
    FINAL.forEach(function (k) { fin += c[k] || 0; });
    var rate = lastFinal == null ? 0 : Math.max(0, (fin - lastFinal) / Math.max(0.001, now - lastT));
    lastFinal = fin; lastT = now;
    series.t.push(now); series.rate.push(rate);
    series.queued.push(c.queued || 0); series.running.push((c.running || 0) + (c.assigned || 0));
    if (series.t.length > KEEP) Object.keys(series).forEach(function (k) { series[k].shift(); });
    rateChart.setData([series.t, series.rate]);
    queueChart.setData([series.t, series.queued, series.running]);
    return rate;
  }

  // ---- tables ----
  function cards(st, rate) {
    var c = st.counts, el = $("cards");
    el.textContent = "";
    [["queued", c.queued], ["running", (c.running || 0) + (c.assigned || 0)],
     ["passed", c.passed], ["failed", (c.failed || 0) + (c.timed_out || 0)],
     ["unschedulable", c.unschedulable], ["tests/s", rate.toFixed(1)],
     ["workers", st.workers.connected], ["lost", st.workers.lost],
     ["quarantined", st.workers.quarantined]].forEach(function (p) {
      var d = document.createElement("div"), b = document.createElement("b"),
          s = document.createElement("span");
      d.className = "card"; b.textContent = p[1] == null ? 0 : p[1]; s.textContent = p[0];
      d.appendChild(b); d.appendChild(s); el.appendChild(d);
    });
    $("meta").textContent = "drover " + st.version + " · store " + st.store + " · up " +
      Math.round(st.uptime_s) + " s";
  }

  function workers(list) {
    var body = $("workers").tBodies[0];
    body.textContent = "";
    list.forEach(function (w) {
      var tr = document.createElement("tr");
      tr.className = w.health;
      tr.dataset.name = w.name;
      td(tr, w.name);
      td(tr, w.connected ? w.health : (w.health === "lost" ? "lost" : w.health + " (away)"));
      td(tr, w.thermal).title = w.thermal_reason || ""; td(tr, w.slots); td(tr, w.running); td(tr, w.assigned);
      td(tr, w.load == null ? "" : w.load.toFixed(2)); td(tr, w.finished);
      td(tr, w.infra_failures);
      td(tr, (w.capabilities && w.capabilities.tags || []).join(", "));
      td(tr, [w.health_reason, w.thermal_reason].filter(Boolean).join("; "), "why");
      body.appendChild(tr);
    });
    $("workers-count").textContent = list.length + " known";
  }

  // ---- a run's tests that did not pass, and one test's attempts ----
  var selectedRun = null, selectedTest = null, seenBad = null;
  var BAD = ["failed", "timed_out", "unschedulable"];

  function badCount(r) {
    var c = r.counts;
    return BAD.reduce(function (n, k) { return n + (c[k] || 0); }, 0);
  }

  function showNotPassed(runId) {
    Promise.all(BAD.map(function (st) {
      return get("/api/v1/tests?run=" + runId + "&state=" + st + "&limit=100");
    })).then(function (answers) {
      var tests = [];
      answers.forEach(function (a) { tests = tests.concat(a.tests || []); });
      tests.sort(function (a, b) { return a.id - b.id; });
      var body = $("notpassed").tBodies[0];
      body.textContent = "";
      tests.forEach(function (t) {
        var tr = document.createElement("tr");
        tr.dataset.id = t.id;
        if (t.id === selectedTest) tr.className = "selected";
        td(tr, t.id); td(tr, t.name); td(tr, t.state); td(tr, t.worker);
        td(tr, t.state === "failed" && t.exit_code != null && t.signal == null
          ? "exit " + t.exit_code : t.signal != null ? "signal " + t.signal : t.reason, "why");
        td(tr, t.duration_s == null ? "" : t.duration_s.toFixed(2) + " s");
        tr.addEventListener("click", function () { showTest(t.id); });
        body.appendChild(tr);
      });
      $("notpassed").hidden = tests.length === 0;
      $("notpassed-none").hidden = tests.length !== 0;
    }).catch(function () {});
  }

  function showTest(id) {
    selectedTest = id;
    Array.prototype.forEach.call($("notpassed").tBodies[0].rows, function (tr) {
      tr.className = Number(tr.dataset.id) === id ? "selected" : "";
    });
    get("/api/v1/tests/" + id).then(function (t) {
      $("test").hidden = false;
      $("test-title").textContent = "Test " + t.id + ": " + t.name + " (" + t.state + ")";
      var lines = [];
      if (t.explain) lines.push("why: " + t.explain);
      if (t.reason && t.state === "unschedulable") lines.push("why: " + t.reason);
      (t.attempts || []).forEach(function (a) {
        var what = a.infra_failure ? "infrastructure failure" : a.timed_out ? "timed out" :
          a.signal != null ? "signal " + a.signal : a.exit_code != null ? "exit " + a.exit_code : a.state;
        lines.push("attempt " + a.attempt + " on " + (a.worker || "?") + ": " + what +
          (a.duration_s != null ? ", " + a.duration_s.toFixed(3) + " s" : ""));
        if (a.output_tail) lines.push(a.output_tail.replace(/\n$/, "").split("\n").map(function (l) {
          return "    | " + l;
        }).join("\n"));
      });
      if (t.live_output) lines.push("output so far:\n" + t.live_output);
      $("test-body").textContent = lines.join("\n");
    }).catch(function () {});
  }

  function selectRun(r) {
    if (selectedRun !== r.id) {
      selectedRun = r.id; selectedTest = null; seenBad = null;
      $("test").hidden = true;
    }
    $("detail").hidden = false;
    $("detail-title").textContent = "Run " + r.id + (r.name ? " (" + r.name + ")" : "") +
      ": tests that did not pass";
    var bad = badCount(r);
    if (bad !== seenBad) { seenBad = bad; showNotPassed(r.id); }
  }

  function runs(list) {
    var body = $("runs").tBodies[0];
    body.textContent = "";
    list.forEach(function (r) {
      if (r.id === selectedRun) selectRun(r); // new failures show up while it runs
    });
    list.forEach(function (r) {
      var c = r.counts, tr = document.createElement("tr");
      tr.dataset.id = r.id;
      if (r.id === selectedRun) tr.className = "selected";
      tr.addEventListener("click", function () {
        Array.prototype.forEach.call(body.rows, function (x) { x.className = ""; });
        tr.className = "selected";
        selectRun(r);
      });
      td(tr, r.id); td(tr, r.name || "");
      var p = td(tr, ""), bar = document.createElement("span"), fill = document.createElement("i");
      bar.className = "bar"; fill.style.width = Math.round(100 * (r.progress || 0)) + "%";
      bar.appendChild(fill); p.appendChild(bar);
      p.appendChild(document.createTextNode(" " + Math.round(100 * (r.progress || 0)) + "%" +
        (r.done ? " done" : "")));
      td(tr, c.passed); td(tr, c.failed); td(tr, c.timed_out); td(tr, c.unschedulable);
      td(tr, c.cancelled); td(tr, (c.queued || 0) + (c.assigned || 0) + (c.running || 0));
      body.appendChild(tr);
    });
  }

  function setConn(text, ok) {
    var el = $("conn");
    el.textContent = text;
    el.className = "pill " + (ok ? "ok" : "bad");
    el.dataset.transport = transport;
    el.title = ok ? "updated by " + transport : "";
  }

  function render(status, workersAnswer, runsAnswer) {
    $("login").hidden = true;
    var rate = sample(status);
    cards(status, rate);
    workers(workersAnswer.workers);
    runs(runsAnswer.runs);
    setConn("live", true);
  }

  function needToken() {
    $("login").hidden = false;
    setConn(token ? "wrong token" : "token needed", false);
  }

  // Polling: when the live feed cannot be opened (a proxy without WebSocket, say).
  var polling = false;
  function poll() {
    polling = true;
    transport = "polling";
    Promise.all([get("/api/v1/status"), get("/api/v1/workers"), get("/api/v1/runs?limit=10")])
      .then(function (r) { render(r[0], r[1], r[2]); })
      .catch(function (e) {
        if (e && e.auth) needToken();
        else setConn("coordinator unreachable", false);
      })
      .then(function () { setTimeout(poll, POLL_MS); });
  }

  // The live feed: the coordinator pushes a snapshot (status, workers, runs) each second
  // on /ws/dashboard/v1; the page's first message carries the token when it has one.
  var transport = "websocket", socket = null;
  function openFeed() {
    var url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host +
      "/ws/dashboard/v1";
    var got = false;
    try {
      socket = new WebSocket(url, "drover-dashboard");
    } catch (e) {
      poll();
      return;
    }
    socket.onopen = function () {
      if (token) socket.send(JSON.stringify({ token: token }));
    };
    socket.onmessage = function (ev) {
      var m = JSON.parse(ev.data);
      if (m.type !== "snapshot") return;
      got = true;
      transport = "websocket";
      render(m.status, m.workers, m.runs);
    };
    socket.onclose = function (ev) {
      socket = null;
      if (ev.code === 1008) needToken();
      else if (!got) poll(); // never worked: poll instead
      else { setConn("reconnecting", false); setTimeout(start, 1000); }
    };
  }

  // Whether reads need a token decides what the page asks first.
  function start() {
    get("/api/v1/status")
      .then(function () { openFeed(); })
      .catch(function (e) {
        if (e && e.auth) needToken();
        else { setConn("coordinator unreachable", false); setTimeout(start, 2000); }
      });
  }

  $("login").addEventListener("submit", function (ev) {
    ev.preventDefault();
    token = $("token").value;
    sessionStorage.setItem("drover-token", token);
    if (!polling && !socket) start();
  });
  start();
})();

// dashboard.js - the coordinator's live page. The coordinator pushes a snapshot each
// second on its live feed (WebSocket /ws/dashboard/v1; the page polls the REST API,
// docs/api.md, when that cannot be opened): the counts, the fleet summed up, ONE PAGE of
// the workers table (the page says which: sort, direction, filter, offset, limit) and
// the recent runs. The charts read the metrics history (GET /api/v1/metrics/history) for
// the range picked, so a reload loses nothing; without that API they draw what this page
// has seen and say "no history yet". A click on a worker, a run or a test opens its
// detail; the export buttons download a series or a run's tests as CSV or JSON.
//
// Reads need the client token unless the coordinator runs with --open-read: the page
// takes it from the address (#token=...) or the form, and keeps it for this tab only.
(function () {
  "use strict";
  var POLL_MS = 1000, KEEP_S = 86400, HISTORY_EVERY_MS = 5000, TESTS_PAGE = 100;
  var token = sessionStorage.getItem("drover-token") || "";
  var m = /(?:^|[#&])token=([^&]*)/.exec(location.hash);
  if (m) {
    token = decodeURIComponent(m[1]);
    sessionStorage.setItem("drover-token", token);
    history.replaceState(null, "", location.pathname);
  }
  var $ = function (id) { return document.getElementById(id); };
  var FINAL = ["passed", "failed", "timed_out", "cancelled", "unschedulable"];

  function headers() { return token ? { Authorization: "Bearer " + token } : {}; }
  function get(path) {
    return fetch(path, { headers: headers(), cache: "no-store" }).then(function (r) {
      if (r.status === 401) throw { auth: true };
      if (!r.ok) throw { status: r.status, message: path + ": HTTP " + r.status };
      return r.json();
    });
  }
  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text != null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  function td(tr, text, cls) { var c = el("td", text == null ? "" : text, cls); tr.appendChild(c); return c; }
  function fmt(v, d) { return v == null || isNaN(v) ? "" : Number(v).toFixed(d == null ? 1 : d); }
  function when(t) { return t ? new Date(t * 1000).toLocaleString() : "?"; }

  // ---- downloads ----
  function download(name, type, text) {
    var a = el("a");
    a.href = URL.createObjectURL(new Blob([text], { type: type }));
    a.download = name;
    document.body.appendChild(a);
    a.click();
    setTimeout(function () { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
  }
  function csvCell(v) {
    if (v == null) return "";
    var s = typeof v === "object" ? JSON.stringify(v) : String(v);
    return /[",\n\r]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
  }
  function toCsv(cols, rows) {
    return [cols.join(",")].concat(rows.map(function (r) {
      return cols.map(function (c) { return csvCell(r[c]); }).join(",");
    })).join("\n") + "\n";
  }

  // ---- charts over time ----
  // Each chart: its series, each from a history metric and (while the range ends now)
  // from the live snapshots in between two history reads.
  var CHARTS = [
    { id: "throughput", title: "Throughput (tests/s)", series: [
      { label: "tests/s", metric: "throughput", color: "#1f77b4", live: function (s) { return s.rate; } }] },
    { id: "latency", title: "Latency (s)", series: [
      { label: "duration p50", metric: "test_duration_p50", color: "#2ca02c" },
      { label: "duration p90", metric: "test_duration_p90", color: "#ff7f0e" },
      { label: "duration p99", metric: "test_duration_p99", color: "#d62728" },
      { label: "queue wait p90", metric: "queue_wait_p90", color: "#9467bd" },
      { label: "assign p90", metric: "assign_latency_p90", color: "#8c564b" }] },
    { id: "utilization", title: "Utilization (busy slots / slots)", series: [
      { label: "utilization", metric: "utilization", color: "#17becf", live: function (s) { return s.util; } }] },
    { id: "queue", title: "Queue by priority", series: [
      { label: "high", metric: "tests_queued_high", color: "#d62728", live: function (s) { return s.qh; } },
      { label: "normal", metric: "tests_queued_normal", color: "#ff7f0e", live: function (s) { return s.qn; } },
      { label: "low", metric: "tests_queued_low", color: "#7f7f7f", live: function (s) { return s.ql; } },
      { label: "running", metric: "tests_running", color: "#2ca02c", live: function (s) { return s.running; } }] },
    { id: "coordinator", title: "Coordinator (CPU, memory)", series: [
      { label: "CPU %", metric: "coordinator_cpu", column: "coordinator_cpu_percent", color: "#1f77b4", map: function (v) { return 100 * v; } },
      { label: "memory MiB", metric: "coordinator_rss_bytes", column: "coordinator_rss_mib", color: "#9467bd", scale: "mib",
        map: function (v) { return v / 1048576; } }] }
  ];
  var range = { span: 300, from: null, to: null }; // to null: ends now
  var live = [];            // {t, rate, util, qh, qn, ql, running} seen by this page
  var hist = {};            // metric -> [[t, v], ...] from the history API
  var historyState = "unknown"; // "ok", "missing" (no API), "error"
  var lastFinal = null, lastT = null;
  var coordStart = null; // when the coordinator started (from its uptime)

  function chartWidth(box) { return Math.max(200, box.clientWidth - 14); }
  CHARTS.forEach(function (c) {
    var box = el("div", null, "chart");
    box.id = "chart-" + c.id;
    var head = el("div", null, "bar-head");
    head.appendChild(el("h3", c.title));
    var csv = el("button", "CSV"), json = el("button", "JSON");
    csv.type = json.type = "button";
    csv.dataset.export = c.id; csv.dataset.format = "csv";
    json.dataset.export = c.id; json.dataset.format = "json";
    csv.addEventListener("click", function () { exportChart(c, "csv"); });
    json.addEventListener("click", function () { exportChart(c, "json"); });
    head.appendChild(csv); head.appendChild(json);
    box.appendChild(head);
    var plot = el("div", null, "plot");
    c.empty = el("div", "", "empty");
    box.appendChild(plot); box.appendChild(c.empty);
    $("charts").appendChild(box);
    c.box = box;
    c.plotEl = plot;
  });
  // Sized once every box is laid out (the grid decides their widths).
  CHARTS.forEach(function (c) {
    c.plot = new uPlot({
      width: chartWidth(c.box), height: 180,
      series: [{}].concat(c.series.map(function (s) {
        return { label: s.label, stroke: s.color, width: 1.5, spanGaps: false, scale: s.scale || "y" };
      })),
      // The x axis is the range picked (one point would otherwise stretch it over
      // years), less what is before both the coordinator's start and the first point.
      scales: { x: { time: true, range: function (u, dmin) {
        var b = rangeBounds(), lo = Math.min(dmin != null ? dmin : Infinity, coordStart || b[0]);
        return [Math.max(b[0], lo), b[1]];
      } } },
      // A series on a scale of its own (memory beside CPU) gets its axis on the right.
      axes: [{}, { size: 50 }].concat(c.series.filter(function (s) { return s.scale; }).map(function (s) {
        return { scale: s.scale, side: 1, size: 50, grid: { show: false } };
      })),
      legend: { show: true }
    }, [[]].concat(c.series.map(function () { return []; })), c.plotEl);
  });
  var resizeTimer = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(function () {
      CHARTS.forEach(function (c) { c.plot.setSize({ width: chartWidth(c.box), height: 180 }); });
    }, 100);
  });

  function rangeBounds() {
    var now = Date.now() / 1000;
    return range.to == null ? [now - range.span, now] : [range.from, range.to];
  }

  // The chart's data: one time axis, the union of its series' times.
  function chartData(c) {
    var b = rangeBounds(), times = {}, cols = c.series.map(function () { return {}; });
    c.series.forEach(function (s, i) {
      var pts = hist[s.metric] || [], lastHist = pts.length ? pts[pts.length - 1][0] : -Infinity;
      pts.forEach(function (p) {
        if (p[0] >= b[0] && p[0] <= b[1]) { times[p[0]] = 1; cols[i][p[0]] = s.map ? s.map(p[1]) : p[1]; }
      });
      if (s.live && range.to == null) live.forEach(function (x) {
        var v = s.live(x);
        if (x.t > lastHist && x.t >= b[0] && v != null) { times[x.t] = 1; cols[i][x.t] = v; }
      });
    });
    var t = Object.keys(times).map(Number).sort(function (a, z) { return a - z; });
    return [t].concat(cols.map(function (col) {
      return t.map(function (x) { return col[x] == null ? null : col[x]; });
    }));
  }

  function drawCharts() {
    CHARTS.forEach(function (c) {
      var d = chartData(c);
      c.plot.setData(d);
      c.box.dataset.points = d[0].length;
      c.box.dataset.first = d[0].length ? d[0][0] : "";
      c.empty.textContent = d[0].length ? "" : historyState === "ok" ? "no samples in this range" :
        "no history yet" + (c.series.some(function (s) { return s.live; }) ? " (filling from now on)" : "");
    });
  }

  function exportChart(c, format) {
    var d = chartData(c), rows = d[0].map(function (t, i) {
      var r = { t: t };
      c.series.forEach(function (s, k) { r[s.column || s.metric] = d[k + 1][i]; });
      return r;
    });
    var cols = ["t"].concat(c.series.map(function (s) { return s.column || s.metric; }));
    if (format === "csv") download("drover-" + c.id + ".csv", "text/csv", toCsv(cols, rows));
    else download("drover-" + c.id + ".json", "application/json",
                  JSON.stringify({ chart: c.id, from: rangeBounds()[0], to: rangeBounds()[1], points: rows }, null, 1));
  }

  var historyBusy = false, historyApi = null;
  function loadHistory() {
    if (historyBusy || historyState === "missing") return;
    historyBusy = true;
    if (historyApi === null) { // one question first: does this coordinator keep history?
      get("/api/v1/metrics").then(function () { historyApi = true; })
        .catch(function (e) { historyApi = !(e && e.status === 404); })
        .then(function () {
          historyBusy = false;
          if (historyApi) loadHistory();
          else { historyState = "missing"; noteHistory({ status: 404 }); drawCharts(); }
        });
      return;
    }
    var b = rangeBounds(), span = b[1] - b[0];
    var step = span <= 600 ? 1 : Math.ceil(span / 600);
    // The coordinator answers from the finest resolution kept over the whole range: a
    // range ending now is cut by 2 s so "1 h" still reads the 1 s samples of the last hour.
    if (range.to == null) b = [b[0] + 2, b[1]];
    var metrics = [];
    CHARTS.forEach(function (c) { c.series.forEach(function (s) { metrics.push(s.metric); }); });
    Promise.all(metrics.map(function (name) {
      // Once a series is read for this range, only what is newer than its last point.
      var have = hist[name], last = have && have.length ? have[have.length - 1][0] : null;
      var from = last != null && range.to == null ? last + step : Math.floor(b[0]);
      var to = Math.ceil(b[1]);
      // The newest point can be ahead of this browser's clock (the coordinator's clock,
      // or a sample taken in the same second): nothing newer to ask for yet.
      if (from > to) return Promise.resolve(true);
      return get("/api/v1/metrics/history?metric=" + name + "&from=" + from +
                 "&to=" + to + "&step=" + step)
        .then(function (a) {
          var pts = a.points || [];
          hist[name] = last != null && range.to == null
            ? have.concat(pts.filter(function (p) { return p[0] > last; }))
                .filter(function (p) { return p[0] >= b[0]; })
            : pts;
          return true;
        })
        .catch(function (e) {
          if (e && e.status === 404 && /metrics\/history/.test(e.message)) throw e;
          hist[name] = []; return false; // one series the coordinator does not have
        });
    })).then(function () {
      historyState = "ok";
      $("history-note").hidden = true;
    }).catch(function (e) {
      historyState = e && e.status === 404 ? "missing" : "error";
      noteHistory(e);
    }).then(function () { historyBusy = false; drawCharts(); });
  }
  function noteHistory(e) {
    $("history-note").hidden = false;
    $("history-note").textContent = historyState === "missing"
      ? "no history yet: this coordinator keeps no metrics history; the charts show what this page has seen since it opened"
      : "the history could not be read (" + (e && e.message || e) + "); retrying";
  }
  setInterval(function () { if (range.to == null) loadHistory(); }, HISTORY_EVERY_MS);

  function setRange(span) {
    Array.prototype.forEach.call($("range").children, function (b) {
      b.className = b.dataset.range === String(span) ? "on" : "";
    });
    $("custom").hidden = span !== "custom";
    if (span === "custom") return;
    range = { span: span, from: null, to: null };
    hist = {};
    loadHistory();
    drawCharts();
  }
  $("range").addEventListener("click", function (ev) {
    var r = ev.target.dataset && ev.target.dataset.range;
    if (r) setRange(r === "custom" ? "custom" : Number(r));
  });
  $("custom").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var f = Date.parse($("custom-from").value) / 1000, t = Date.parse($("custom-to").value) / 1000;
    if (!(f < t)) { $("history-note").hidden = false; $("history-note").textContent = "custom range: from must be before to"; return; }
    range = { span: t - f, from: f, to: t };
    hist = {};
    historyState = historyState === "missing" ? "missing" : "unknown";
    loadHistory();
    drawCharts();
  });

  function sample(st, fleet) {
    var now = Date.now() / 1000, c = st.counts, fin = 0;
    if (st.uptime_s != null) coordStart = now - st.uptime_s;
    FINAL.forEach(function (k) { fin += c[k] || 0; });
    var rate = lastFinal == null ? null : Math.max(0, (fin - lastFinal) / Math.max(0.001, now - lastT));
    lastFinal = fin; lastT = now;
    var q = fleet && fleet.queued_by_priority || {};
    live.push({ t: now, rate: rate, util: fleet ? fleet.utilization : null,
                qh: q.high, qn: q.normal, ql: q.low,
                running: (c.running || 0) + (c.assigned || 0) });
    while (live.length && live[0].t < now - KEEP_S) live.shift();
    drawCharts();
    return rate || 0;
  }

  // ---- counts ----
  function cards(st, fleet, rate) {
    var c = st.counts, box = $("cards");
    box.textContent = "";
    [["queued", c.queued], ["running", (c.running || 0) + (c.assigned || 0)],
     ["passed", c.passed], ["failed", (c.failed || 0) + (c.timed_out || 0)],
     ["unschedulable", c.unschedulable], ["tests/s", rate.toFixed(1)],
     ["workers", st.workers.connected], ["lost", st.workers.lost],
     ["quarantined", st.workers.quarantined],
     ["utilization", fleet ? Math.round(100 * fleet.utilization) + "%" : "–"]].forEach(function (p) {
      var d = el("div", null, "card");
      d.dataset.card = p[0];
      d.appendChild(el("b", p[1] == null ? 0 : p[1]));
      d.appendChild(el("span", p[0]));
      box.appendChild(d);
    });
    $("meta").textContent = "drover " + st.version + " · store " + st.store + " · up " +
      Math.round(st.uptime_s) + " s";
  }

  // ---- anomalies ----
  var anomalies = [], flagged = {};
  // counts: {count, active} of all of them when the list is cut (the feed sends 50).
  function showAnomalies(list, counts) {
    anomalies = list || [];
    flagged = {};
    var ul = $("anomalies"), active = 0, critical = 0;
    ul.textContent = "";
    anomalies.forEach(function (a) {
      var li = el("li", null, (a.severity || "warning") + (a.active ? "" : " ended"));
      li.dataset.kind = a.kind;
      if (a.worker) li.dataset.worker = a.worker;
      li.appendChild(el("b", (a.active ? "" : "ended · ") + a.kind + (a.worker ? " · " + a.worker : "") + ": "));
      li.appendChild(document.createTextNode(a.summary || ""));
      var ev = Object.keys(a.evidence || {}).map(function (k) { return k + " " + a.evidence[k]; }).join(", ");
      li.appendChild(el("div", "since " + when(a.start) + (a.end ? " until " + when(a.end) : "") +
                        (ev ? " · " + ev : ""), "ev"));
      if (a.worker) li.addEventListener("click", function () { showWorker(a.worker); });
      ul.appendChild(li);
      if (a.active) { active++; if (a.severity === "critical") critical++; if (a.worker) flagged[a.worker] = a; }
    });
    if (!anomalies.length) ul.appendChild(el("li", anomalyApi === false ? "no anomaly detection on this coordinator" : "none: the fleet looks healthy"));
    if (counts && counts.active != null) active = counts.active;
    if (counts && counts.count > anomalies.length)
      ul.appendChild(el("li", "… and " + (counts.count - anomalies.length) + " more (GET /api/v1/anomalies lists them all)", "more"));
    $("anomalies-count").textContent = active ? active + " active" : "";
    var alert = $("alert");
    alert.hidden = !active;
    alert.className = "alert" + (critical ? "" : " warning");
    alert.textContent = active ? "⚠ " + active + " anomal" + (active === 1 ? "y" : "ies") + " active: " +
      anomalies.filter(function (a) { return a.active; }).slice(0, 3).map(function (a) { return a.summary || a.kind; }).join("; ") : "";
  }
  // The snapshot carries them when the coordinator detects anomalies; else ask now and then.
  var anomalyApi = null, lastAnomalyPoll = 0;
  function pollAnomalies() {
    if (anomalyApi === false || Date.now() - lastAnomalyPoll < 10000) return;
    lastAnomalyPoll = Date.now();
    get("/api/v1/anomalies").then(function (a) { anomalyApi = true; showAnomalies(a.anomalies); })
      .catch(function (e) { if (e && e.status === 404) { anomalyApi = false; showAnomalies([]); } });
  }

  // ---- workers: one page, sorted and filtered by the coordinator ----
  var view = { sort: "name", dir: "asc", filter: "", offset: 0, limit: 50 };
  var rows = {}, selectedWorker = null;
  function sendView() {
    if (socket && socket.readyState === 1) socket.send(JSON.stringify({ view: view }));
    else if (polling) pollNow();
    markSort();
  }
  function markSort() {
    Array.prototype.forEach.call(document.querySelectorAll("#workers th[data-sort]"), function (th) {
      th.className = th.dataset.sort === view.sort ? "sorted" + (view.dir === "desc" ? " desc" : "") : "";
    });
  }
  document.querySelector("#workers thead").addEventListener("click", function (ev) {
    var k = ev.target.dataset && ev.target.dataset.sort;
    if (!k) return;
    if (view.sort === k) view.dir = view.dir === "asc" ? "desc" : "asc";
    else { view.sort = k; view.dir = k === "name" || k === "health" ? "asc" : "desc"; }
    view.offset = 0;
    sendView();
  });
  var filterTimer = null;
  $("worker-filter").addEventListener("input", function () {
    clearTimeout(filterTimer);
    filterTimer = setTimeout(function () { view.filter = $("worker-filter").value; view.offset = 0; sendView(); }, 200);
  });
  $("page-prev").addEventListener("click", function () { view.offset = Math.max(0, view.offset - view.limit); sendView(); });
  $("page-next").addEventListener("click", function () { view.offset += view.limit; sendView(); });
  $("page-size").addEventListener("change", function () { view.limit = Number($("page-size").value); view.offset = 0; sendView(); });

  function scoreCell(tr, s) {
    var c = td(tr, "");
    if (!s) { c.textContent = "–"; c.title = "no score from this coordinator"; return; }
    var v = typeof s === "object" ? s.value : s, b = el("span", v, "score " + (v < 50 ? "low" : v < 80 ? "mid" : "high"));
    if (typeof s === "object") b.title = "speed " + s.speed + " · reliability " + s.reliability + " · stability " + s.stability;
    c.appendChild(b);
  }
  function loadCell(tr, w) {
    var c = td(tr, ""), busy = (w.running || 0) + (w.assigned || 0), share = w.slots ? busy / w.slots : 0;
    var bar = el("span", null, "bar"), fill = el("i", null, share >= 1 ? "full" : w.load > 0.9 ? "hot" : "");
    fill.style.width = Math.min(100, Math.round(100 * share)) + "%";
    bar.appendChild(fill); c.appendChild(bar);
    c.appendChild(document.createTextNode(" " + busy + "/" + w.slots + (w.load != null ? " · " + fmt(w.load, 2) : "")));
    c.title = w.running + " running, " + w.assigned + " assigned of " + w.slots + " slots; reported load " + fmt(w.load, 2);
  }
  function workers(page) {
    var body = $("workers").tBodies[0], list = page.workers || [];
    body.textContent = "";
    rows = {};
    list.forEach(function (w) {
      rows[w.name] = w;
      var tr = el("tr", null, w.health + (flagged[w.name] ? " flagged" : "") + (w.name === selectedWorker ? " selected" : ""));
      tr.dataset.name = w.name;
      td(tr, w.name);
      var st = td(tr, w.connected ? w.health : (w.health === "lost" ? "lost" : w.health + " (away)"));
      if (w.health_reason) st.appendChild(el("small", w.health_reason));
      var th = td(tr, w.thermal);
      if (w.thermal_reason) th.appendChild(el("small", w.thermal_reason));
      scoreCell(tr, w.score);
      loadCell(tr, w);
      td(tr, w.finished, "wide");
      var cur = td(tr, "", "sub wide");
      (w.current || []).forEach(function (t, i) {
        if (i) cur.appendChild(document.createTextNode(", "));
        var a = el("a", t.name, "test"); a.addEventListener("click", function (ev) { ev.stopPropagation(); showTest(t.id); });
        cur.appendChild(a);
      });
      if (w.current_count > (w.current || []).length) cur.appendChild(document.createTextNode(" +" + (w.current_count - w.current.length)));
      var k = w.capabilities || {};
      td(tr, (k.cpu ? k.cpu + " cpu" : "") + (k.gpus ? ", " + k.gpus + " gpu" : "") +
         ((k.tags || []).length ? " · " + k.tags.join(", ") : ""), "sub wide");
      tr.addEventListener("click", function () { showWorker(w.name); });
      body.appendChild(tr);
    });
    var total = page.total != null ? page.total : list.length, matched = page.matched != null ? page.matched : list.length;
    var off = page.offset || 0;
    $("workers-count").textContent = total + " known" + (matched !== total ? ", " + matched + " match" : "");
    $("page-info").textContent = matched ? (off + 1) + "–" + (off + list.length) + " of " + matched : "no worker matches";
    $("page-prev").disabled = off <= 0;
    $("page-next").disabled = off + list.length >= matched;
    if (off > 0 && off >= matched) { view.offset = Math.max(0, matched - view.limit); sendView(); }
    if (selectedWorker && rows[selectedWorker]) fillWorker(rows[selectedWorker], null);
  }

  // ---- one worker ----
  var workerAnswer = null, recentTests = null;
  function showWorker(name) {
    selectedWorker = name;
    workerAnswer = null;
    recentTests = null;
    get("/api/v1/tests?worker=" + encodeURIComponent(name) + "&order=desc&limit=20").then(function (a) {
      if (selectedWorker !== name) return;
      recentTests = a.tests || [];
      fillWorker(rows[name] || workerAnswer, null);
    }).catch(function () { recentTests = []; });
    $("worker").hidden = false;
    $("worker-title").textContent = "Worker " + name;
    fillWorker(rows[name] || { name: name }, null);
    get("/api/v1/workers/" + encodeURIComponent(name)).then(function (a) {
      workerAnswer = a.workers ? a.workers[0] : a;
      fillWorker(rows[name] || workerAnswer, workerAnswer);
    }).catch(function (e) { $("worker-body").textContent = "cannot read the worker: " + (e && e.message || e); });
    Array.prototype.forEach.call($("workers").tBodies[0].rows, function (tr) {
      tr.classList.toggle("selected", tr.dataset.name === name);
    });
    $("worker").scrollIntoView({ block: "nearest" });
  }
  function fillWorker(row, answer) {
    var w = {}, k;
    [answer || workerAnswer || {}, row || {}].forEach(function (o) { for (k in o) if (o[k] != null) w[k] = o[k]; });
    var body = $("worker-body"), dl = el("dl", null, "kv");
    body.textContent = "";
    function kv(key, value) { if (value == null || value === "") return; dl.appendChild(el("dt", key)); dl.appendChild(el("dd", value)); }
    var caps = w.capabilities || {};
    kv("state", (w.connected ? "connected, " : "not connected, ") + w.health + (w.health_reason ? " — " + w.health_reason : ""));
    kv("thermal", w.thermal + (w.thermal_reason ? " — " + w.thermal_reason : ""));
    kv("capabilities", [caps.cpu != null ? caps.cpu + " CPU cores" : "", caps.memory_mb ? Math.round(caps.memory_mb / 1024) + " GiB memory" : "",
       caps.gpus ? caps.gpus + " GPU" + (caps.gpu_memory_mb ? " (" + Math.round(caps.gpu_memory_mb / 1024) + " GiB)" : "") : "no GPU"]
       .filter(Boolean).join(", "));
    kv("tags", (caps.tags || []).join(", "));
    kv("slots", w.slots + " (" + (w.running || 0) + " running, " + (w.assigned || 0) + " assigned), reported load " + fmt(w.load, 2));
    kv("finished", w.finished + " tests, " + (w.infra_failures || 0) + " infrastructure failures");
    if (w.score && typeof w.score === "object") {
      var s = w.score;
      kv("score", s.value + " / 100 = 0.5 × speed " + s.speed + " + 0.3 × reliability " + s.reliability + " + 0.2 × stability " + s.stability);
      kv("measured speed", s.speed_ratio != null ? fmt(s.speed_ratio, 2) + "× its class's time per predicted second over " + s.tests + " tests" : "not measured yet");
      kv("failure rate", s.failure_rate != null ? Math.round(100 * s.failure_rate) + "%" : null);
      kv("connection losses", s.losses);
    } else {
      kv("score", "not scored by this coordinator");
    }
    // Measured speed per model family against its class (GET /api/v1/workers/NAME).
    if (w.speed_by_family && w.speed_by_family.length) {
      var fam = el("ul");
      fam.id = "worker-families";
      w.speed_by_family.forEach(function (f) {
        var li = el("li", f.family + ": " + fmt(f.speed, 2) + "× its class's speed over " + f.tests + " test" + (f.tests === 1 ? "" : "s") +
          " (class speed " + fmt(f.class_speed, 2) + (f.affinity != null ? ", affinity " + fmt(f.affinity, 2) : "") + ")");
        li.dataset.family = f.family;
        li.dataset.speed = f.speed;
        fam.appendChild(li);
      });
      dl.appendChild(el("dt", "speed per family"));
      var dd = el("dd");
      dd.appendChild(fam);
      dl.appendChild(dd);
    } else if (answer || workerAnswer) {
      kv("speed per family", "not measured yet");
    }
    kv("last seen", when(w.last_seen));
    var fl = anomalies.filter(function (a) { return a.worker === w.name; });
    if (fl.length) kv("anomalies", fl.map(function (a) { return (a.active ? "" : "ended: ") + (a.summary || a.kind); }).join("; "));
    body.appendChild(dl);
    var cur = w.current || [];
    body.appendChild(el("h3", "Running now" + (w.current_count ? " (" + w.current_count + ")" : ""), "meta"));
    var ul = el("ul");
    cur.forEach(function (t) { var li = el("li"), a = el("a", t.name + " (test " + t.id + ")", "test"); a.addEventListener("click", function () { showTest(t.id); }); li.appendChild(a); ul.appendChild(li); });
    if (!cur.length) ul.appendChild(el("li", "nothing"));
    body.appendChild(ul);
    body.appendChild(el("h3", "Recent tests", "meta"));
    if (!recentTests) { body.appendChild(el("p", "reading…", "meta")); return; }
    if (!recentTests.length) { body.appendChild(el("p", "none yet", "meta")); return; }
    var box = el("div", null, "scroll"), table = el("table"), tb = el("tbody");
    table.id = "worker-tests";
    recentTests.forEach(function (t) {
      var tr = el("tr");
      tr.dataset.id = t.id;
      td(tr, t.id); td(tr, t.name); td(tr, t.state);
      td(tr, t.duration_s == null ? "" : t.duration_s.toFixed(2) + " s");
      tr.addEventListener("click", function () { showTest(t.id); });
      tb.appendChild(tr);
    });
    table.appendChild(tb); box.appendChild(table); body.appendChild(box);
  }

  // ---- runs, a run's tests, one test ----
  var selectedRun = null, selectedTest = null, seenRun = null, testsOffset = 0, testsShown = [];
  var NOTPASSED = ["failed", "timed_out", "unschedulable", "cancelled"];

  function runTests(runId, state, offset, limit) {
    if (state === "notpassed") {
      return Promise.all(NOTPASSED.map(function (s) {
        return get("/api/v1/tests?run=" + runId + "&state=" + s + "&limit=" + (offset + limit));
      })).then(function (answers) {
        var t = [];
        answers.forEach(function (a) { t = t.concat(a.tests || []); });
        t.sort(function (a, b) { return a.id - b.id; });
        return t.slice(offset, offset + limit);
      });
    }
    return get("/api/v1/tests?run=" + runId + (state ? "&state=" + state : "") +
               "&limit=" + limit + "&offset=" + offset).then(function (a) { return a.tests || []; });
  }

  function showTests() {
    var runId = selectedRun, state = $("detail-state").value;
    runTests(runId, state, testsOffset, TESTS_PAGE).then(function (tests) {
      if (runId !== selectedRun) return;
      testsShown = tests;
      var body = $("tests").tBodies[0];
      body.textContent = "";
      tests.forEach(function (t) {
        var tr = el("tr", null, t.id === selectedTest ? "selected" : "");
        tr.dataset.id = t.id;
        td(tr, t.id); td(tr, t.name); td(tr, t.state); td(tr, t.worker);
        td(tr, t.state === "failed" && t.exit_code != null && t.signal == null
          ? "exit " + t.exit_code : t.signal != null ? "signal " + t.signal :
          t.state === "passed" ? "" : t.reason, "why");
        td(tr, t.duration_s == null ? "" : t.duration_s.toFixed(2) + " s");
        tr.addEventListener("click", function () { showTest(t.id); });
        body.appendChild(tr);
      });
      $("tests").hidden = tests.length === 0;
      $("tests-none").hidden = tests.length !== 0;
      $("tests-none").textContent = state === "notpassed" ? "every test of this run passed or is still to run" : "no test here";
      $("tests-info").textContent = tests.length ? (testsOffset + 1) + "–" + (testsOffset + tests.length) : "";
      $("tests-prev").disabled = testsOffset === 0;
      $("tests-next").disabled = tests.length < TESTS_PAGE;
    }).catch(function () {});
  }
  $("detail-state").addEventListener("change", function () { testsOffset = 0; showTests(); });
  $("tests-prev").addEventListener("click", function () { testsOffset = Math.max(0, testsOffset - TESTS_PAGE); showTests(); });
  $("tests-next").addEventListener("click", function () { testsOffset += TESTS_PAGE; showTests(); });

  // Every test of the selected run (in the chosen state), all pages, for an export.
  function allTests(runId, state) {
    var out = [];
    function next(offset) {
      return runTests(runId, state, offset, 10000).then(function (t) {
        out = out.concat(t);
        return t.length === 10000 && state !== "notpassed" ? next(offset + 10000) : out;
      });
    }
    return next(0);
  }
  var TEST_COLS = ["id", "run_id", "name", "state", "attempts", "priority", "worker", "exit_code",
                   "signal", "duration_s", "reason", "submitted_at", "finished_at"];
  $("export-tests-csv").addEventListener("click", function () {
    var run = selectedRun, state = $("detail-state").value;
    allTests(run, state).then(function (t) { download("drover-run-" + run + "-tests.csv", "text/csv", toCsv(TEST_COLS, t)); });
  });
  $("export-tests-json").addEventListener("click", function () {
    var run = selectedRun, state = $("detail-state").value;
    allTests(run, state).then(function (t) {
      download("drover-run-" + run + "-tests.json", "application/json", JSON.stringify({ run: run, tests: t }, null, 1));
    });
  });

  function describeAttempt(a) {
    var what = a.infra_failure ? "infrastructure failure" : a.timed_out ? "timed out" :
      a.signal != null ? "signal " + a.signal : a.exit_code != null ? "exit " + a.exit_code : a.state;
    return "attempt " + a.attempt + " on " + (a.worker || "?") + ": " + what +
      (a.duration_s != null ? ", " + a.duration_s.toFixed(3) + " s" : "") +
      (a.peak_memory_kb ? ", peak " + a.peak_memory_kb + " KiB" : "");
  }
  function showTest(id) {
    selectedTest = id;
    Array.prototype.forEach.call($("tests").tBodies[0].rows, function (tr) {
      tr.className = Number(tr.dataset.id) === id ? "selected" : "";
    });
    get("/api/v1/tests/" + id).then(function (t) {
      $("test").hidden = false;
      $("test-title").textContent = "Test " + t.id + ": " + t.name + " (" + t.state + ")";
      var lines = ["run " + t.run_id + ", priority " + t.priority + ", submitted " + when(t.submitted_at) +
                   (t.finished_at ? ", finished " + when(t.finished_at) : "")];
      var spec = t.test || {};
      if (spec.command) lines.push("command: " + spec.command);
      else if (spec.argv) lines.push("command: " + spec.argv.join(" "));
      if (spec.requirements) lines.push("requirements: " + JSON.stringify(spec.requirements));
      if (t.explain) lines.push("why not running: " + t.explain);
      if (t.reason && t.state !== "passed") lines.push("outcome: " + t.reason);
      // py3 (issue 13): flaky (failed, then passed when rerun) and the name's flakiness rate.
      if (t.flaky) lines.push("flaky: failed, then passed when rerun");
      var fl = t.flakiness;
      if (fl) lines.push("flakiness: " + Math.round(100 * fl.rate) + "% (" + fl.flaky + " flaky of its last " +
                         fl.runs + " runs by this name)");
      if (t.batch) lines.push("ran in batch " + t.batch + " (its own result, read from the batch's output)");
      var att = t.attempts || [];
      att.forEach(function (a, i) {
        lines.push(describeAttempt(a));
        // Why it moved: an attempt that ended without a result, and the next one elsewhere.
        if (a.state === "abandoned" || (a.infra_failure && i + 1 < att.length))
          lines.push("    moved: " + (a.state === "abandoned" ? "the attempt was abandoned (worker lost, or the test was moved to another worker)" :
                     "infrastructure failure") + (att[i + 1] ? "; next attempt on " + att[i + 1].worker : ""));
        if (a.output_tail) lines.push(a.output_tail.replace(/\n$/, "").split("\n").map(function (l) {
          return "    | " + l;
        }).join("\n"));
      });
      if (!att.length) lines.push("no attempt yet");
      if (t.live_output) lines.push("output so far:\n" + t.live_output);
      $("test-body").textContent = lines.join("\n");
      $("test").scrollIntoView({ block: "nearest" });
    }).catch(function (e) { $("test").hidden = false; $("test-body").textContent = "cannot read test " + id + ": " + (e && e.message || e); });
  }

  function selectRun(r, clicked) {
    if (selectedRun !== r.id) {
      selectedRun = r.id; selectedTest = null; seenRun = null; testsOffset = 0;
      $("test").hidden = true;
    }
    $("detail").hidden = false;
    $("detail-title").textContent = "Run " + r.id + (r.name ? " (" + r.name + ")" : "") + ": tests";
    var sig = JSON.stringify(r.counts);
    if (sig !== seenRun || clicked) { seenRun = sig; showTests(); }
  }

  function runs(list) {
    var body = $("runs").tBodies[0];
    body.textContent = "";
    list.forEach(function (r) { if (r.id === selectedRun) selectRun(r, false); });
    list.forEach(function (r) {
      var c = r.counts, tr = el("tr", null, r.id === selectedRun ? "selected" : "");
      tr.dataset.id = r.id;
      tr.addEventListener("click", function () {
        Array.prototype.forEach.call(body.rows, function (x) { x.className = ""; });
        tr.className = "selected";
        selectRun(r, true);
      });
      td(tr, r.id); td(tr, r.name || "");
      var p = td(tr, ""), bar = el("span", null, "bar"), fill = el("i");
      fill.style.width = Math.round(100 * (r.progress || 0)) + "%";
      bar.appendChild(fill); p.appendChild(bar);
      p.appendChild(document.createTextNode(" " + Math.round(100 * (r.progress || 0)) + "%" + (r.done ? " done" : "")));
      td(tr, c.passed); td(tr, c.failed); td(tr, c.timed_out, "wide"); td(tr, c.unschedulable, "wide");
      td(tr, c.cancelled, "wide"); td(tr, (c.queued || 0) + (c.assigned || 0) + (c.running || 0));
      body.appendChild(tr);
    });
  }

  Array.prototype.forEach.call(document.querySelectorAll("button.close"), function (b) {
    b.addEventListener("click", function () {
      $(b.dataset.close).hidden = true;
      if (b.dataset.close === "worker") selectedWorker = null;
    });
  });

  // ---- transport ----
  function setConn(text, ok) {
    var e = $("conn");
    e.textContent = text;
    e.className = "pill " + (ok ? "ok" : "bad");
    e.dataset.transport = transport;
    e.title = ok ? "updated by " + transport : "";
  }

  var firstRender = true;
  function render(m) {
    $("login").hidden = true;
    var rate = sample(m.status, m.fleet);
    cards(m.status, m.fleet, rate);
    if (m.anomalies) { anomalyApi = true; showAnomalies(m.anomalies.anomalies, m.anomalies); } else pollAnomalies();
    workers(m.workers);
    runs(m.runs.runs);
    setConn("live", true);
    if (firstRender) { firstRender = false; loadHistory(); }
  }

  function needToken() {
    $("login").hidden = false;
    setConn(token ? "wrong token" : "token needed", false);
  }

  // Polling: when the live feed cannot be opened (a proxy without WebSocket, say). The
  // REST API lists every worker: the page sorts, filters and cuts it here.
  var polling = false, pollTimer = null;
  function localPage(all) {
    var f = view.filter.toLowerCase().split(/\s+/).filter(Boolean);
    var list = all.filter(function (w) {
      var hay = [w.name, w.health, w.thermal].concat((w.capabilities || {}).tags || []).join(" ").toLowerCase();
      return f.every(function (x) { return hay.indexOf(x) >= 0; });
    });
    var key = function (w) { var v = view.sort === "running" ? w.running + w.assigned : w[view.sort]; return v && typeof v === "object" ? v.value : v; };
    list.sort(function (a, b) { var x = key(a), y = key(b), r = x < y ? -1 : x > y ? 1 : 0; return view.dir === "desc" ? -r : r; });
    return { total: all.length, matched: list.length, offset: view.offset, limit: view.limit,
             workers: list.slice(view.offset, view.offset + view.limit) };
  }
  function pollNow() {
    clearTimeout(pollTimer);
    Promise.all([get("/api/v1/status"), get("/api/v1/workers"), get("/api/v1/runs?limit=10")])
      .then(function (r) { render({ status: r[0], workers: localPage(r[1].workers), runs: r[2] }); })
      .catch(function (e) {
        if (e && e.auth) needToken();
        else setConn("coordinator unreachable", false);
      })
      .then(function () { pollTimer = setTimeout(pollNow, POLL_MS); });
  }
  function poll() { polling = true; transport = "polling"; pollNow(); }

  // The live feed: the first message carries the token (when there is one) and the view.
  var transport = "websocket", socket = null;
  function openFeed() {
    var url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws/dashboard/v1";
    var got = false;
    try {
      socket = new WebSocket(url, "drover-dashboard");
    } catch (e) {
      poll();
      return;
    }
    socket.onopen = function () {
      var hello = { view: view };
      if (token) hello.token = token;
      socket.send(JSON.stringify(hello));
    };
    socket.onmessage = function (ev) {
      var msg = JSON.parse(ev.data);
      if (msg.type !== "snapshot") return;
      got = true;
      transport = "websocket";
      render(msg);
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
  markSort();
  drawCharts();
  start();
})();

// dashboard.mjs - the coordinator's dashboard in a real browser (Debian's chromium via
// playwright-core), against a live coordinator with real workers:
//
//   node tests/browser/dashboard.mjs URL TOKEN WORKER[,WORKER...] RUN_ID KILL_PID KILL_NAME [SHOT_DIR]
//
// Checks what a user sees: without a token the page asks for one; with it the page goes
// live on the coordinator's WebSocket feed and lists every worker and the run (done,
// 100%); the workers table sorts and filters through the feed; a suite submitted while
// the page is open moves the counters and the throughput chart within seconds; the
// worker KILL_NAME (process KILL_PID, killed here) shows as lost; a worker's detail and
// a passed test's detail open (with its name's flakiness rate); the run's tests and the
// throughput series export as CSV files that parse; at 390 px wide nothing scrolls
// sideways; no script error. Keeps desktop and phone screenshots in SHOT_DIR. Prints
// "dashboard ok" and exits 0, else 1.
import { chromium } from "playwright-core";
import { existsSync, readFileSync } from "node:fs";

const [url, token, workerList, runId, killPid, killName, shotDir] = process.argv.slice(2);
if (!url || !token || !workerList || !runId || !killPid || !killName) {
  console.error("usage: dashboard.mjs URL TOKEN WORKER[,WORKER...] RUN_ID KILL_PID KILL_NAME [SHOT_DIR]");
  process.exit(2);
}
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
if (!existsSync(executablePath)) {
  console.error(`dashboard.mjs: ${executablePath} is missing (scripts/setup.sh installs chromium)`);
  process.exit(2);
}

// A CSV as rows of cells (RFC 4180 quoting), the header first.
function parseCsv(text) {
  const rows = [];
  let row = [], cell = "", quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') { cell += '"'; i++; }
      else if (ch === '"') quoted = false;
      else cell += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ",") { row.push(cell); cell = ""; }
    else if (ch === "\n") { row.push(cell); rows.push(row); row = []; cell = ""; }
    else cell += ch;
  }
  if (quoted) throw new Error("an unterminated quote");
  if (cell || row.length) { row.push(cell); rows.push(row); }
  for (const r of rows) if (r.length !== rows[0].length) throw new Error(`a row of ${r.length} cells under a header of ${rows[0].length}`);
  return rows;
}

const failures = [];
let expect401 = true; // the first visit has no token: its 401s are expected
let snapshots = 0; // snapshots read from the feed (below)
const browser = await chromium.launch({ executablePath, args: ["--no-sandbox"], timeout: 60000 });
try {
  const ctx = await browser.newContext({ viewport: { width: 1300, height: 900 }, acceptDownloads: true });
  const page = await ctx.newPage();
  page.setDefaultTimeout(15000);
  page.on("pageerror", (e) => failures.push(`script error: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() !== "error") return;
    if (expect401 && /status of 401/.test(m.text())) return;
    // A coordinator without the monitoring API answers 404 there: the page says so.
    if (/status of 404/.test(m.text()) && /\/api\/v1\/(metrics|anomalies)/.test(m.location().url || "")) return;
    failures.push(`console error: ${m.text()} (${m.location().url})`);
  });
  page.on("request", (r) => {
    if (!r.url().startsWith(url) && !r.url().startsWith("blob:"))
      failures.push(`the page requested ${r.url()} (not the coordinator)`);
  });
  // The feed's fleet utilization is running over slots (docs/api.md): in [0, 1] in every
  // snapshot, however many tests the workers' windows hold.
  page.on("websocket", (ws) => ws.on("framereceived", (f) => {
    let m;
    try { m = JSON.parse(f.payload); } catch { return; }
    if (m.type !== "snapshot" || !m.fleet) return;
    snapshots++;
    const u = m.fleet.utilization;
    if (!(u >= 0 && u <= 1)) failures.push(`fleet utilization ${u} out of [0, 1]: ${JSON.stringify(m.fleet)}`);
  }));
  const check = async (what, fn) => { try { await fn(); } catch (e) { failures.push(`${what}: ${e.message.split("\n")[0]}`); } };
  const card = async (name) => Number(await page.locator(`#cards [data-card="${name}"] b`).innerText());

  const openedAt = Date.now() / 1000;
  // 1. No token: the page says so and shows the form.
  await page.goto(`${url}/`, { waitUntil: "load" });
  await page.waitForSelector("#login:not([hidden])");
  const pill = await page.locator("#conn").innerText();
  if (!/token needed/.test(pill)) failures.push(`without a token the status says "${pill}"`);

  // 2. The token typed into the form: live.
  await page.fill("#token", token);
  await page.click("#login button");
  expect401 = false;
  await page.waitForFunction(() => document.getElementById("conn").textContent === "live");
  if (await page.locator("#login").isVisible()) failures.push("the token form stays visible");
  const transport = await page.locator("#conn").getAttribute("data-transport");
  if (transport !== "websocket") failures.push(`updated by ${transport}, not the live feed`);

  // 3. Workers and the run.
  const names = workerList.split(",");
  for (const name of names)
    await check(`worker ${name} is not listed`, () => page.locator(`#workers tr[data-name="${name}"]`).waitFor());
  // Each worker's thermal state comes with its reason (drv_thermal_describe).
  for (const name of names) {
    const row = page.locator(`#workers tr[data-name="${name}"]`);
    if ((await row.count()) === 1) {
      const text = await row.innerText();
      if (!/(cold|warm|warming|cooling) for [\d.]+ s \(.+\): admits \d+ of \d+ slots/.test(text))
        failures.push(`worker ${name} shows no thermal reason: ${text}`);
    }
  }
  const run = page.locator(`#runs tr[data-id="${runId}"]`);
  await check(`run ${runId} is not listed`, () => run.waitFor());
  if (!/100% done/.test(await run.innerText())) failures.push(`run ${runId} is not shown done`);

  // 4. The workers table: sorted by the coordinator (a click on "name" reverses it),
  // filtered (a tag), one page of it.
  const order = () => page.locator("#workers tbody tr").evaluateAll((rs) => rs.map((r) => r.dataset.name));
  const sorted = [...names].sort();
  await check("the workers are not sorted by name", () =>
    page.waitForFunction((want) => [...document.querySelectorAll("#workers tbody tr")].map((r) => r.dataset.name).join() === want, sorted.join()));
  await page.click('#workers th[data-sort="name"]');
  await check(`a click on "name" does not reverse the order (${await order()})`, () =>
    page.waitForFunction((want) => [...document.querySelectorAll("#workers tbody tr")].map((r) => r.dataset.name).join() === want, [...sorted].reverse().join()));
  await page.fill("#worker-filter", "webgpu");
  await check(`the filter "webgpu" does not leave dash-b alone (${await order()})`, () =>
    page.waitForFunction(() => [...document.querySelectorAll("#workers tbody tr")].map((r) => r.dataset.name).join() === "dash-b"));
  await page.fill("#worker-filter", "");
  await page.waitForFunction((n) => document.querySelectorAll("#workers tbody tr").length === n, names.length);

  // 5. A suite submitted now moves the counters and the throughput chart.
  const passedBefore = await card("passed");
  const submitted = await page.evaluate(async (tok) => {
    const body = Array.from({ length: 8 }, (_, i) => JSON.stringify({ name: `live-${i}`, argv: ["true"] })).join("\n");
    const r = await fetch("/api/v1/tests?run=live", { method: "POST", headers: { Authorization: `Bearer ${tok}` }, body });
    return r.status;
  }, token);
  if (submitted !== 201) failures.push(`submitting from the page answered ${submitted}`);
  await check("the passed count did not move by 8", () => page.waitForFunction(
    (want) => Number(document.querySelector('#cards [data-card="passed"] b').textContent) >= want, passedBefore + 8));

  // 6. Export the throughput series as CSV: it parses and shows tests finishing.
  await page.waitForTimeout(1500);
  await check("the throughput export", async () => {
    const [dl] = await Promise.all([page.waitForEvent("download"),
      page.click('#chart-throughput button[data-format="csv"]')]);
    const rows = parseCsv(readFileSync(await dl.path(), "utf8"));
    if (rows[0].join() !== "t,throughput") throw new Error(`header ${rows[0]}`);
    if (rows.length < 3) throw new Error(`only ${rows.length - 1} points`);
    if (!rows.slice(1).some((r) => Number(r[1]) > 0)) throw new Error("no point above 0 tests/s");
  });
  for (const id of ["chart-throughput", "chart-utilization", "chart-queue"]) {
    const ok = await page.evaluate((sel) => {
      const c = document.querySelector(sel);
      if (!c || !c.width) return false;
      const px = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
      for (let i = 4; i < px.length; i += 4) if (px[i + 3] !== px[3] || px[i] !== px[0]) return true;
      return false;
    }, `#${id} canvas`);
    if (!ok) failures.push(`#${id}: the chart is not drawn`);
  }

  // 6b. With the coordinator's metrics history (GET /api/v1/metrics answers), the charts
  // show what happened before the page was opened, for each range picked.
  const history = await page.evaluate(async (tok) =>
    (await fetch("/api/v1/metrics", { headers: { Authorization: `Bearer ${tok}` } })).status, token);
  if (history === 200) {
    for (const range of ["300", "3600"]) {
      await page.click(`#range button[data-range="${range}"]`);
      await check(`range ${range} s: no history from before the page opened`, () => page.waitForFunction(
        (before) => Number(document.getElementById("chart-throughput").dataset.first) < before, openedAt - 1));
    }
    await page.click('#range button[data-range="300"]');
  } else {
    if (!/no history yet/.test(await page.locator("#history-note").innerText()))
      failures.push("without the history API the page does not say \"no history yet\"");
    console.log(`dashboard.mjs: GET /api/v1/metrics answered ${history}: the history checks are skipped`);
  }

  // 7. A worker's detail.
  await page.click(`#workers tr[data-name="${names[0]}"]`);
  await check("the worker's detail does not open", () => page.waitForSelector("#worker:not([hidden])"));
  await check("the worker's detail lacks its capabilities", () =>
    page.waitForFunction(() => /capabilities[\s\S]*CPU cores/.test(document.getElementById("worker-body").innerText)));
  await check("the worker's detail lists no recent test", () =>
    page.waitForFunction(() => document.querySelectorAll("#worker-tests tbody tr").length > 0));

  // 8. The run's tests: the one that failed, then every test, a passed one's detail, and
  // the export as CSV.
  await run.click();
  const bad = page.locator("#tests tbody tr");
  await check("no failed test listed for the run", () => bad.first().waitFor());
  const rows = await bad.allInnerTexts();
  if (rows.length !== 1 || !/\bno\b.*failed.*exit 1/s.test(rows[0]))
    failures.push(`the run's not-passed list is wrong: ${JSON.stringify(rows)}`);
  await bad.first().click();
  await check("the failed test's detail", async () => {
    await page.waitForSelector("#test:not([hidden])");
    await page.waitForFunction(() => /attempt \d+ on dash-[a-c]: exit 1/.test(document.getElementById("test-body").textContent))
      .catch(async (e) => { throw new Error(`${e.message}: ${(await page.locator("#test-body").textContent()).replace(/\n/g, " | ")}`); });
  });
  await page.selectOption("#detail-state", "passed");
  await check("the passed tests are not listed", () =>
    page.waitForFunction(() => document.querySelectorAll("#tests tbody tr").length === 5));
  await page.locator("#tests tbody tr").first().click();
  await check("a passed test's detail", () =>
    page.waitForFunction(() => /\(passed\)/.test(document.getElementById("test-title").textContent) &&
      /attempt \d+ on dash-[a-c]: exit 0/.test(document.getElementById("test-body").textContent) &&
      /flakiness: 0% \(0 flaky of its last [1-9]\d* runs by this name\)/.test(document.getElementById("test-body").textContent))
      .catch(async (e) => { throw new Error(`${e.message}: ${await page.locator("#test-title").textContent()} / ${(await page.locator("#test-body").textContent()).replace(/\n/g, " | ")}`); }));
  await page.selectOption("#detail-state", "");
  await check("the run's tests export", async () => {
    const [dl] = await Promise.all([page.waitForEvent("download"), page.click("#export-tests-csv")]);
    const rows = parseCsv(readFileSync(await dl.path(), "utf8"));
    if (rows[0][0] !== "id" || !rows[0].includes("state")) throw new Error(`header ${rows[0]}`);
    if (rows.length !== 7) throw new Error(`${rows.length - 1} tests, expected 6`);
    const states = rows.slice(1).map((r) => r[rows[0].indexOf("state")]).sort().join();
    if (states !== "failed,passed,passed,passed,passed,passed") throw new Error(`states ${states}`);
  });

  // 9. A killed worker shows as lost.
  process.kill(Number(killPid), "SIGKILL");
  await check(`${killName} is not shown lost`, () => page.waitForFunction(
    (n) => { const r = document.querySelector(`#workers tr[data-name="${n}"]`); return r && r.cells[1].firstChild.textContent === "lost"; },
    killName, { timeout: 20000 }));
  await check("the lost count is not 1", () =>
    page.waitForFunction(() => document.querySelector('#cards [data-card="lost"] b').textContent === "1"));
  if (shotDir) await page.screenshot({ path: `${shotDir}/dashboard-desktop.png`, fullPage: true });

  // 10. A phone: 390 px wide, nothing scrolls sideways.
  const phone = await ctx.newPage();
  await phone.setViewportSize({ width: 390, height: 844 });
  phone.on("pageerror", (e) => failures.push(`script error (phone): ${e.message}`));
  await phone.goto(`${url}/#token=${encodeURIComponent(token)}`);
  await phone.waitForFunction(() => document.getElementById("conn").textContent === "live");
  await phone.locator(`#runs tr[data-id="${runId}"]`).click();
  await phone.locator("#tests tbody tr").first().click();
  await phone.waitForSelector("#test:not([hidden])");
  await phone.waitForTimeout(500);
  const width = await phone.evaluate(() => document.documentElement.scrollWidth);
  if (width > 390) failures.push(`at 390 px the page is ${width} px wide`);
  if (shotDir) await phone.screenshot({ path: `${shotDir}/dashboard-phone.png`, fullPage: true });
} finally {
  await browser.close();
}
if (!snapshots) failures.push("no snapshot was read from the feed");
if (failures.length) {
  for (const f of failures) console.error(`dashboard.mjs: ${f}`);
  process.exit(1);
}
console.log("dashboard ok");

// dashboard.mjs - the coordinator's dashboard in a real browser (Debian's chromium via
// playwright-core), against a live coordinator:
//
//   node tests/browser/dashboard.mjs URL TOKEN WORKER[,WORKER...] RUN_ID [SCREENSHOT.png]
//
// Checks what a user sees: without a token the page asks for one; with it the page goes
// live on the coordinator's WebSocket feed, lists every worker and the run (done, 100%), counts the passed tests, draws both
// charts, and raises no script error. Prints "dashboard ok" and exits 0, else exits 1.
import { chromium } from "playwright-core";
import { existsSync } from "node:fs";

const [url, token, workerList, runId, screenshot] = process.argv.slice(2);
if (!url || !token || !workerList || !runId) {
  console.error("usage: dashboard.mjs URL TOKEN WORKER[,WORKER...] RUN_ID [SCREENSHOT]");
  process.exit(2);
}
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
if (!existsSync(executablePath)) {
  console.error(`dashboard.mjs: ${executablePath} is missing (scripts/setup.sh installs chromium)`);
  process.exit(2);
}

const failures = [];
let expect401 = true; // the first visit has no token: its 401s are expected
const browser = await chromium.launch({ executablePath, args: ["--no-sandbox"], timeout: 60000 });
try {
  const page = await browser.newPage({ viewport: { width: 1300, height: 900 } });
  page.setDefaultTimeout(15000);
  page.on("pageerror", (e) => failures.push(`script error: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() !== "error") return;
    if (expect401 && /status of 401/.test(m.text())) return;
    failures.push(`console error: ${m.text()}`);
  });
  page.on("request", (r) => {
    if (!r.url().startsWith(url)) failures.push(`the page requested ${r.url()} (not the coordinator)`);
  });

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
  for (const name of workerList.split(",")) {
    const row = page.locator(`#workers tr[data-name="${name}"]`);
    await row.waitFor().catch(() => failures.push(`worker ${name} is not listed`));
    // Its thermal state comes with its reason (drv_thermal_describe).
    if ((await row.count()) === 1) {
      const text = await row.innerText();
      if (!/(cold|warm|warming|cooling) for [\d.]+ s \(.+\): admits \d+ of \d+ slots/.test(text))
        failures.push(`worker ${name} shows no thermal reason: ${text}`);
    }
  }
  const run = page.locator(`#runs tr[data-id="${runId}"]`);
  await run.waitFor().catch(() => failures.push(`run ${runId} is not listed`));
  if ((await run.count()) === 1) {
    const text = await run.innerText();
    if (!/100% done/.test(text)) failures.push(`run ${runId} is not shown done: ${text}`);
  }
  // 4. The run's tests that did not pass, and one test's attempts.
  if ((await run.count()) === 1) {
    await run.click();
    const bad = page.locator("#notpassed tbody tr");
    await bad.first().waitFor().catch(() => failures.push("no failed test listed for the run"));
    const rows = await bad.allInnerTexts();
    if (rows.length !== 1 || !/\bno\b.*failed.*exit 1/s.test(rows[0]))
      failures.push(`the run's not-passed list is wrong: ${JSON.stringify(rows)}`);
    if (rows.length >= 1) {
      await bad.first().click();
      await page.waitForSelector("#test:not([hidden])");
      const body = await page.locator("#test-body").innerText();
      // Its last attempt failed (an earlier one may have been moved to the other worker).
      if (!/attempt \d+ on dash-[ab]: exit 1/.test(body))
        failures.push(`the test's detail is wrong: ${body}`);
    }
  }
  const cards = await page.locator("#cards").innerText();
  if (!/passed/.test(cards)) failures.push(`no passed count: ${cards}`);

  // 5. Charts: both drawn, with a few samples in them.
  await page.waitForTimeout(2500);
  for (const id of ["chart-rate", "chart-queue"]) {
    const ok = await page.evaluate((sel) => {
      const c = document.querySelector(sel);
      if (!c || !c.width) return false;
      const px = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
      for (let i = 4; i < px.length; i += 4) if (px[i + 3] !== px[3] || px[i] !== px[0]) return true;
      return false;
    }, `#${id} canvas`);
    if (!ok) failures.push(`#${id}: the chart is not drawn`);
  }
  if (screenshot) await page.screenshot({ path: screenshot, fullPage: true });
} finally {
  await browser.close();
}
if (failures.length) {
  for (const f of failures) console.error(`dashboard.mjs: ${f}`);
  process.exit(1);
}
console.log("dashboard ok");

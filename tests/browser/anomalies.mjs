// anomalies.mjs - the dashboard's anomalies in a real browser (Debian's chromium via
// playwright-core), against a live coordinator one of whose workers is slowed:
//
//   node tests/browser/anomalies.mjs URL TOKEN SLOW_WORKER [SHOT_DIR]
//
// Checks that the page raises the alert banner, lists a slow_worker anomaly for
// SLOW_WORKER with its evidence in the anomalies panel, marks its row in the workers
// table, that sorting by score puts it last with a score below the others', and that
// its detail shows the score's parts, the anomaly and its measured speed per family. Prints "anomalies ok", else exits 1.
import { chromium } from "playwright-core";
import { existsSync } from "node:fs";

const [url, token, slow, shotDir] = process.argv.slice(2);
if (!url || !token || !slow) {
  console.error("usage: anomalies.mjs URL TOKEN SLOW_WORKER [SHOT_DIR]");
  process.exit(2);
}
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
if (!existsSync(executablePath)) {
  console.error(`anomalies.mjs: ${executablePath} is missing (scripts/setup.sh installs chromium)`);
  process.exit(2);
}
const failures = [];
const browser = await chromium.launch({ executablePath, args: ["--no-sandbox"], timeout: 60000 });
try {
  const page = await browser.newPage({ viewport: { width: 1300, height: 900 } });
  page.setDefaultTimeout(15000);
  page.on("pageerror", (e) => failures.push(`script error: ${e.message}`));
  const check = async (what, fn) => { try { await fn(); } catch (e) { failures.push(`${what}: ${e.message.split("\n")[0]}`); } };
  await page.goto(`${url}/#token=${encodeURIComponent(token)}`);
  await page.waitForFunction(() => document.getElementById("conn").textContent === "live");

  await check("no alert banner", () => page.waitForSelector("#alert:not([hidden])", { timeout: 60000 }));
  const item = page.locator(`#anomalies li[data-kind="slow_worker"][data-worker="${slow}"]`);
  await check(`no slow_worker anomaly for ${slow} in the panel`, () => item.waitFor());
  if (await item.count()) {
    const text = await item.innerText();
    if (!/ratio/.test(text) || !/tests/.test(text)) failures.push(`the anomaly shows no evidence: ${text}`);
  }
  await check(`${slow}'s row is not flagged`, () => page.waitForSelector(`#workers tr.flagged[data-name="${slow}"]`));
  await page.click('#workers th[data-sort="score"]'); // highest first
  await check(`sorted by score, ${slow} is not last with the lowest score`, () => page.waitForFunction((name) => {
    const rows = [...document.querySelectorAll("#workers tbody tr")];
    const score = (r) => Number(r.cells[3].textContent);
    return rows.length > 1 && rows[rows.length - 1].dataset.name === name &&
      rows.slice(0, -1).every((r) => score(r) > score(rows[rows.length - 1]));
  }, slow));
  await page.click(`#workers tr[data-name="${slow}"]`);
  await check("the worker's detail lacks the score's parts or the anomaly", () => page.waitForFunction(() => {
    const t = document.getElementById("worker-body").innerText;
    return /score[\s\S]*speed \d+[\s\S]*reliability \d+/.test(t) && /anomalies/.test(t);
  }));
  // Its measured speed per family: the suite's tests (no model: family "unknown") run
  // at about a fifth of its class's speed.
  await check("the worker's detail lacks its slow speed per family", () => page.waitForFunction(() => {
    const li = document.querySelector('#worker-families li[data-family="unknown"]');
    return li && Number(li.dataset.speed) < 0.5 && /its class's speed over \d+ tests/.test(li.textContent);
  }));
  if (shotDir) await page.screenshot({ path: `${shotDir}/dashboard-anomalies.png`, fullPage: true });
} finally {
  await browser.close();
}
if (failures.length) {
  for (const f of failures) console.error(`anomalies.mjs: ${f}`);
  process.exit(1);
}
console.log("anomalies ok");

// sim_report.mjs - opens a `drover sim --html` report in a real browser (Debian's
// chromium, driven by playwright-core) and checks what a reader sees: every chart drawn,
// the policies named in the legends, no script error, no request leaving the file.
//
//   node tests/browser/sim_report.mjs REPORT.html [SCREENSHOT.png]
//
// Exits 0 and prints "report ok" when all holds; otherwise prints what failed, exit 1.
// CHROMIUM overrides the browser's path (default /usr/bin/chromium).
import { chromium } from "playwright-core";
import { pathToFileURL } from "node:url";
import { existsSync } from "node:fs";

const [report, screenshot] = process.argv.slice(2);
if (!report || !existsSync(report)) {
  console.error(`sim_report.mjs: no report file: ${report ?? "(none given)"}`);
  process.exit(2);
}
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
if (!existsSync(executablePath)) {
  console.error(`sim_report.mjs: ${executablePath} is missing (scripts/setup.sh installs chromium)`);
  process.exit(2);
}

const failures = [];
const browser = await chromium.launch({ executablePath, args: ["--no-sandbox"], timeout: 60000 });
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.setDefaultTimeout(10000);
  page.on("pageerror", (e) => failures.push(`script error: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error") failures.push(`console error: ${m.text()}`);
  });
  const url = pathToFileURL(report).href;
  page.on("request", (r) => {
    if (r.url() !== url && !r.url().startsWith("data:"))
      failures.push(`the page requested ${r.url()} (it must be self-contained)`);
  });
  await page.goto(url, { waitUntil: "load", timeout: 30000 });

  // The five charts: ratio, makespan, wait, utilization, queue.
  const ids = ["drv-ratio", "drv-makespan", "drv-wait", "drv-util", "drv-queue"];
  for (const id of ids) {
    const chart = page.locator(`#${id} .uplot`);
    if ((await chart.count()) !== 1) {
      failures.push(`#${id}: no chart drawn`);
      continue;
    }
    // A drawn canvas has pixels that are not all one colour.
    const painted = await page.evaluate((sel) => {
      const c = document.querySelector(sel);
      if (!c || c.width === 0 || c.height === 0) return false;
      const px = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
      for (let i = 4; i < px.length; i += 4)
        if (px[i] !== px[0] || px[i + 1] !== px[1] || px[i + 2] !== px[2] || px[i + 3] !== px[3])
          return true;
      return false;
    }, `#${id} canvas`);
    if (!painted) failures.push(`#${id}: the canvas is blank`);
  }

  // Every result of the blob is named in the time charts' legends, as the table names it.
  const labels = await page.evaluate(() =>
    JSON.parse(document.getElementById("drv-data").textContent).results.map((r) => r.label));
  if (labels.length === 0) failures.push("the data blob holds no results");
  for (const id of ["drv-util", "drv-queue"]) {
    const loc = page.locator(`#${id} .u-legend`);
    if ((await loc.count()) !== 1) continue; /* no chart: said above */
    const legend = await loc.innerText();
    for (const l of labels)
      if (!legend.includes(l)) failures.push(`#${id}: legend lacks ${l}`);
  }
  const pre = await page.locator("pre").innerText();
  for (const l of labels)
    if (!pre.includes(l)) failures.push(`tables lack ${l}`);

  if (screenshot) await page.screenshot({ path: screenshot, fullPage: true });
} finally {
  await browser.close();
}

if (failures.length) {
  for (const f of failures) console.error(`sim_report.mjs: ${f}`);
  process.exit(1);
}
console.log("report ok");

// dashboard_feed.mjs - what one dashboard page receives on the live feed: opens the page
// in chromium (playwright-core), lets it go live, then counts the bytes of the snapshots
// it gets for SECONDS seconds.
//
//   [SORT=COLUMN] node bench/dashboard_feed.mjs URL [SECONDS] [PAGE_SIZE]
//
// Prints one line: "frames N, bytes B, B/s X, rows R, workers known K"; with TIMINGS=1
// a second one, whether the page stays usable: how long it took to go live, to show the
// next page of workers after a click, and to open a worker's detail.
import { chromium } from "playwright-core";

const [url, seconds = "10", size = ""] = process.argv.slice(2);
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium", args: ["--no-sandbox"] });
try {
  const page = await browser.newPage({ viewport: { width: 1300, height: 900 } });
  let frames = 0, bytes = 0, counting = false, last = null;
  page.on("websocket", (ws) => ws.on("framereceived", (f) => {
    if (!counting) return;
    frames++;
    bytes += Buffer.byteLength(f.payload);
    last = f.payload;
  }));
  const tGoto = Date.now();
  await page.goto(url);
  await page.waitForFunction(() => document.getElementById("conn").textContent === "live", null, { timeout: 60000 });
  const liveMs = Date.now() - tGoto;
  if (size) {
    await page.selectOption("#page-size", size);
    await page.waitForTimeout(1500);
  }
  if (process.env.SORT) { // a column's header, clicked: the coordinator sorts by it
    await page.click(`#workers th[data-sort="${process.env.SORT}"]`);
    await page.waitForTimeout(1500);
  }
  counting = true;
  const t0 = Date.now();
  await page.waitForTimeout(Number(seconds) * 1000);
  const s = (Date.now() - t0) / 1000;
  const m = last ? JSON.parse(last) : { workers: {} };
  console.log(`frames ${frames}, bytes ${bytes}, B/s ${Math.round(bytes / s)}, rows ${(m.workers.workers || []).length}, workers known ${m.workers.total}`);
  if (process.env.TIMINGS) {
    const info = await page.textContent("#page-info");
    let t = Date.now();
    await page.click("#page-next");
    await page.waitForFunction((before) => document.getElementById("page-info").textContent !== before, info, { timeout: 30000 });
    const nextMs = Date.now() - t;
    t = Date.now();
    await page.click("#workers tbody tr");
    await page.waitForFunction(() => /score/.test(document.getElementById("worker-body").textContent) &&
                               /capabilities/.test(document.getElementById("worker-body").textContent), null, { timeout: 30000 });
    const detailMs = Date.now() - t;
    console.log(`usable: live in ${liveMs} ms, next page in ${nextMs} ms (${await page.textContent("#page-info")}), worker detail in ${detailMs} ms`);
  }
} finally {
  await browser.close();
}

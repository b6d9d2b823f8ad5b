// dashboard_feed.mjs - what one dashboard page receives on the live feed: opens the page
// in chromium (playwright-core), lets it go live, then counts the bytes of the snapshots
// it gets for SECONDS seconds.
//
//   [SORT=COLUMN] node bench/dashboard_feed.mjs URL [SECONDS] [PAGE_SIZE]
//
// Prints one line: "frames N, bytes B, B/s X, rows R, workers known K".
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
  await page.goto(url);
  await page.waitForFunction(() => document.getElementById("conn").textContent === "live", null, { timeout: 60000 });
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
} finally {
  await browser.close();
}

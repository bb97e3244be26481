// The dashboard page in a real browser: Debian's Chromium driven by
// playwright-core.  Signs in, picks the date range, waits for the charts,
// saves a screenshot and prints what the charts show as JSON (the pytest
// test tests/integration/test_analytics.py asserts the numbers).
//
// env: FEIRA_URL (http://127.0.0.1:port), FEIRA_EMAIL, FEIRA_PASSWORD,
//      FEIRA_FROM, FEIRA_TO (YYYY-MM-DD), FEIRA_SCREENSHOT (a .png path),
//      FEIRA_CHROMIUM (default /usr/bin/chromium)
import { chromium } from "playwright-core";

const env = process.env;
const browser = await chromium.launch({
  executablePath: env.FEIRA_CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});

const problems = [];
const requests = [];

try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 1400 } });
  page.on("console", (m) => {
    if (m.type() === "error") problems.push("console: " + m.text());
  });
  page.on("pageerror", (e) => problems.push("page: " + e.message));
  page.on("request", (r) => requests.push(r.url()));
  page.on("response", (r) => {
    if (r.status() >= 400) problems.push(`HTTP ${r.status()} ${r.url()}`);
  });

  await page.goto(env.FEIRA_URL + "/dashboard/", { waitUntil: "load" });
  await page.fill("#email", env.FEIRA_EMAIL);
  await page.fill("#password", env.FEIRA_PASSWORD);
  await page.click("#signin-form button[type=submit]");
  await page.waitForSelector("#board:not([hidden])", { timeout: 15000 });

  await page.fill("#from", env.FEIRA_FROM);
  await page.fill("#to", env.FEIRA_TO);
  await page.click("#range button[type=submit]");

  const days = Math.round((Date.parse(env.FEIRA_TO) - Date.parse(env.FEIRA_FROM))
                          / 86400000) + 1;
  await page.waitForSelector(
    `body[data-loaded="${days}:${env.FEIRA_FROM}:${env.FEIRA_TO}"]`,
    { timeout: 15000 });

  const shown = await page.evaluate(() => {
    const out = { charts: {}, totals: {} };
    for (const [name, chart] of Object.entries(window.feiraCharts)) {
      const canvas = chart.canvas;
      out.charts[name] = {
        type: chart.config.type,
        labels: chart.data.labels,
        datasets: chart.data.datasets.map((d) => ({ label: d.label, data: d.data })),
        width: canvas.width,
        height: canvas.height,
        // the canvas has been painted: some pixel is not transparent
        painted: (() => {
          const ctx = canvas.getContext("2d");
          const px = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
          for (let i = 3; i < px.length; i += 4) if (px[i] !== 0) return true;
          return false;
        })(),
      };
    }
    for (const dd of document.querySelectorAll("#totals dd")) {
      out.totals[dd.dataset.metric] = dd.textContent;
    }
    out.chartLib = typeof window.Chart === "function" ? window.Chart.version : null;
    return out;
  });

  await page.screenshot({ path: env.FEIRA_SCREENSHOT, fullPage: true });

  shown.problems = problems;
  shown.external = requests.filter((u) => !u.startsWith(env.FEIRA_URL));
  process.stdout.write(JSON.stringify(shown) + "\n");
} finally {
  await browser.close();
}

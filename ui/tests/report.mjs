// The report of `moat analyze --report` in a real browser (Debian's chromium through
// playwright-core), opened from the file system with nothing to talk to: the overview's
// cards are the embedded summary, the campaigns list and a campaign's page (graph, charts)
// are drawn from the embedded answers, the live-only pages are hidden, and nothing is refused
// by the page's content security policy.
//
// Usage: node ui/tests/report.mjs REPORT_HTML SCREENSHOT_DIR CHROMIUM
// Prints one JSON line of what it saw; exits non-zero on the first failed check.
import { chromium } from "playwright-core";

const [report, shots, executablePath] = process.argv.slice(2);
const check = (cond, what) => {
  if (!cond) {
    console.error(`report check failed: ${what}`);
    process.exit(1);
  }
};

const browser = await chromium.launch({ executablePath, args: ["--no-sandbox"] });
const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
const errors = [];
const requests = [];
page.on("pageerror", (e) => errors.push(String(e)));
page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
page.on("request", (r) => r.url().startsWith("file:") || requests.push(r.url()));
const cardValue = async (label) =>
  (await page.locator(".card", { has: page.locator(".label", { hasText: new RegExp(`^${label}$`) }) }).locator(".value").textContent()).trim();

try {
  await page.goto(`file://${report}`);
  await page.waitForSelector(".cards");
  const { answers } = await page.evaluate(() => JSON.parse(document.getElementById("moat-snapshot").textContent));
  const summary = answers["/summary"];
  check((await cardValue("campaigns")) === summary.campaigns.toLocaleString("en"), "campaigns card");
  check((await cardValue("flagged accounts")) === summary.flagged.toLocaleString("en"), "flagged card");
  check(await page.locator("header nav a[href='#/policy']").isHidden(), "no policy page in a report");
  await page.click("header nav a[href='#/campaigns']");
  await page.waitForSelector("h1:has-text('Campaigns')");
  const list = answers["/campaigns?sort=size&limit=100&offset=0"];
  check((await page.locator("main tbody tr").count()) === list.items.length, "one row per campaign");
  const first = list.items[0].campaign_id;
  await page.click(`main tbody a[href='#/campaigns/${encodeURIComponent(first)}']`);
  await page.waitForSelector(`h1:has-text('Campaign ${first}')`);
  await page.waitForSelector(".graph canvas");
  check((await page.locator(".chart canvas").count()) >= 2, "timeline and capability charts");
  check((await page.locator("section.actions").count()) === 0, "no policy action in a report");
  await page.screenshot({ path: `${shots}/report-campaign.png`, fullPage: false });
  check(errors.length === 0, `no script or policy error: ${errors.join("; ")}`);
  check(requests.length === 0, `nothing fetched: ${requests.join(", ")}`);
  console.log(JSON.stringify({ campaigns: summary.campaigns, flagged: summary.flagged }));
} finally {
  await browser.close();
}

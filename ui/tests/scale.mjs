// The dashboard at the scale the issue names, in a real browser: `moat ui` over 100,000
// accounts and 1,000 campaigns (crates/cli/tests/ui_offline.rs writes the files and starts
// it). Every page must show the totals, hold one page of rows, page on, and draw the largest
// campaign's graph; nothing may fail in the page.
//
// Usage: node ui/tests/scale.mjs BASE_URL SCREENSHOT_DIR CHROMIUM
// Prints one JSON line of what it saw; exits non-zero on the first failed check.
import { chromium } from "playwright-core";

const [base, shots, executablePath] = process.argv.slice(2);
const check = (cond, what) => {
  if (!cond) {
    console.error(`scale check failed: ${what}`);
    process.exit(1);
  }
};
const api = async (path) => (await fetch(`${base}/admin${path}`)).json();

const browser = await chromium.launch({ executablePath, args: ["--no-sandbox"] });
const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
const errors = [];
page.on("pageerror", (e) => errors.push(String(e)));
page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
const cardValue = async (label) =>
  (await page.locator(".card", { has: page.locator(".label", { hasText: new RegExp(`^${label}$`) }) }).locator(".value").textContent()).trim();
const rows = () => page.locator("main tbody tr").count();

try {
  const summary = await api("/summary");
  await page.goto(`${base}/ui/`);
  await page.waitForSelector(".cards");
  check((await cardValue("accounts")) === summary.accounts.toLocaleString("en"), "accounts card");
  check((await cardValue("campaigns")) === summary.campaigns.toLocaleString("en"), "campaigns card");

  await page.click("header nav a[href='#/campaigns']");
  await page.waitForSelector(`h1:has-text('Campaigns (${summary.campaigns.toLocaleString("en")})')`);
  check((await rows()) === 100, "one page of campaigns");
  await page.click("a:has-text('next page')");
  await page.waitForSelector("text=101–200");
  check((await rows()) === 100, "the second page of campaigns");

  const largest = (await api("/campaigns?sort=size&limit=1&offset=0")).items[0];
  await page.goto(`${base}/ui/#/campaigns/${encodeURIComponent(largest.campaign_id)}`);
  await page.waitForSelector(".graph canvas");
  const view = await api(`/campaigns/${encodeURIComponent(largest.campaign_id)}/view`);
  check((await cardValue("member accounts")) === largest.size.toLocaleString("en"), "member count");
  check(view.graph.nodes.length <= 150 + 6 * 12, "a bounded graph");
  check((await page.locator("main td > a[href^='#/accounts/']").count()) <= 100 + view.samples.length, "one page of members");
  await page.screenshot({ path: `${shots}/scale-campaign.png` });

  await page.click("header nav a[href='#/accounts']");
  await page.waitForSelector("h1:has-text('Flagged accounts')");
  check((await rows()) === 100, "one page of flagged accounts");
  await page.click("a:has-text('next page')");
  await page.waitForSelector("text=after ");
  check((await rows()) === 100, "the next page of flagged accounts");
  check(errors.length === 0, `no script error: ${errors.join("; ")}`);
  console.log(JSON.stringify({ accounts: summary.accounts, campaigns: summary.campaigns, graph_nodes: view.graph.nodes.length }));
} finally {
  await browser.close();
}

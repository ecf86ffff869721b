// The dashboard in a real browser (Debian's chromium through playwright-core), against a
// seeded `moat serve`: crates/cli/tests/dashboard.rs starts the gateway, replays traffic with
// campaigns through it and runs this script when MOAT_BROWSER names a Chromium.
//
// Usage: node ui/tests/e2e.mjs ADMIN_URL TOKEN SCREENSHOT_DIR CHROMIUM
// Loads every page, checks the numbers shown against the admin API, clicks from the campaign
// list to a campaign to one of its accounts, reloads the policy through the confirmation
// dialog and finds the reload in the audit log; saves a screenshot of each page. Prints one
// JSON line of what it saw; exits non-zero on the first failed check.
import { chromium } from "playwright-core";

const [base, token, shots, executablePath] = process.argv.slice(2);
const check = (cond, what) => {
  if (!cond) {
    console.error(`dashboard check failed: ${what}`);
    process.exit(1);
  }
};
const api = async (path, init = {}) => {
  const resp = await fetch(`${base}/admin${path}`, { ...init, headers: { authorization: `Bearer ${token}` } });
  check(resp.ok, `${path} answered ${resp.status}`);
  return resp.json();
};

const browser = await chromium.launch({ executablePath, args: ["--no-sandbox"] });
const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
const errors = [];
page.on("pageerror", (e) => errors.push(String(e)));
page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
page.on("dialog", (d) => d.accept());
const seen = {};
const shot = (name) => page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });
const cardValue = async (label) =>
  (await page.locator(".card", { has: page.locator(".label", { hasText: new RegExp(`^${label}$`) }) }).locator(".value").textContent()).trim();

try {
  // A wrong token is refused and the form says so.
  await page.goto(`${base}/ui/`);
  await page.fill("input[name=token]", "wrong-token");
  await page.click("button[type=submit]");
  await page.waitForSelector("form.login .error");
  await page.fill("input[name=token]", token);
  await page.click("button[type=submit]");
  await page.waitForSelector(".cards");
  // The refused token's 401s are in the console; from here on nothing may fail.
  errors.length = 0;

  // Overview: the cards are the API's numbers; the charts are drawn.
  const campaigns = (await api("/campaigns")).items;
  check(campaigns.length > 0, "the seeded gateway has campaigns");
  check((await cardValue("campaigns")) === campaigns.length.toLocaleString("en"), "overview campaign count");
  const health = await (await fetch(`${base}/health`)).json();
  seen.exchanges = health.engine.observed;
  check((await page.locator("canvas").count()) >= 3, "overview charts");
  await shot("overview");

  // Campaigns → one campaign → one of its accounts.
  await page.click("header nav a[href='#/campaigns']");
  await page.waitForSelector("h1:has-text('Campaigns')");
  check((await page.locator("main tbody tr").count()) === campaigns.length, "one row per campaign");
  await shot("campaigns");
  const first = campaigns[0];
  await page.click(`main tbody a[href='#/campaigns/${encodeURIComponent(first.campaign_id)}']`);
  await page.waitForSelector(`h1:has-text('Campaign ${first.campaign_id}')`);
  const detail = await api(`/campaigns/${encodeURIComponent(first.campaign_id)}`);
  check((await cardValue("member accounts")) === detail.accounts.length.toLocaleString("en"), "campaign member count");
  check((await page.locator("main a[href^='#/accounts/']").count()) === detail.accounts.length, "one link per member");
  await shot("campaign");
  const member = detail.accounts[0];
  await page.click(`main a[href='#/accounts/${encodeURIComponent(member)}']`);
  await page.waitForSelector(`h1:has-text('Account ${member}')`);
  const account = await api(`/accounts/${encodeURIComponent(member)}`);
  check(account.campaign_id === first.campaign_id, "the member's standing names the campaign");
  check((await page.locator("main").textContent()).includes(first.campaign_id), "the account page links its campaign");
  await shot("account");

  // Accounts, paged.
  await page.click("header nav a[href='#/accounts']");
  await page.waitForSelector("h1:has-text('Flagged accounts')");
  await shot("accounts");

  // Policy: reload through the confirmation; the audit log has it.
  await page.click("header nav a[href='#/policy']");
  await page.waitForSelector("h1:has-text('Policy')");
  const rules = (await api("/policy")).rules.length;
  check((await page.locator("main tbody tr").count()) === rules, "one row per rule");
  await page.click("button:has-text('Reload policy')");
  await page.waitForSelector(`p.ok:has-text('Reloaded: ${rules} rules.')`);
  const audit = await api("/audit");
  check(audit.items.some((e) => e.action === "policy_reload" && e.actor === "admin"), "the reload is audited");
  await shot("policy");

  for (const [hash, title] of [["#/intel", "Intelligence"], ["#/alerts", "Alerts"]]) {
    await page.click(`header nav a[href='${hash}']`);
    await page.waitForSelector(`h1:has-text('${title}')`);
    await shot(hash.slice(2));
  }
  check(errors.length === 0, `no script error: ${errors.join("; ")}`);
  seen.campaigns = campaigns.length;
  seen.members = detail.accounts.length;
  seen.rules = rules;
  console.log(JSON.stringify(seen));
} finally {
  await browser.close();
}

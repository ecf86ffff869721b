// The dashboard in a real browser (Debian's chromium through playwright-core), against a
// seeded `moat serve`: crates/cli/tests/dashboard.rs starts the gateway, replays traffic with
// campaigns through it and runs this script when MOAT_BROWSER names a Chromium.
//
// Usage: node ui/tests/e2e.mjs ADMIN_URL TOKEN SCREENSHOT_DIR CHROMIUM API_URL
// Loads every page, checks the numbers shown against the admin API, clicks from the campaign
// list to a campaign (its graph, timeline, capability sweep, samples) to one of its accounts,
// blocks the campaign with one click through the confirmation, sees a member's request refused
// at API_URL, reverts it and sees the request pass, finds both in the audit log, reloads the
// policy through its confirmation; saves a screenshot of each page. Prints one JSON line of
// what it saw; exits non-zero on the first failed check.
import { chromium } from "playwright-core";

const [base, token, shots, executablePath, apiBase] = process.argv.slice(2);
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
  const summary = await api("/summary");
  check(summary.campaigns > 0, "the seeded gateway has campaigns");
  check((await cardValue("campaigns")) === summary.campaigns.toLocaleString("en"), "overview campaign count");
  check((await cardValue("flagged accounts")) === summary.flagged.toLocaleString("en"), "overview flagged count");
  check((await page.locator("canvas").count()) >= 3, "overview charts");
  await shot("overview");

  // Campaigns, ranked and paged by the server → one campaign → one of its accounts.
  const list = await api("/campaigns?sort=size&limit=100&offset=0");
  await page.click("header nav a[href='#/campaigns']");
  await page.waitForSelector("h1:has-text('Campaigns')");
  check((await page.locator("h1").textContent()).includes(`(${list.total.toLocaleString("en")})`), "campaign total");
  check((await page.locator("main tbody tr").count()) === list.items.length, "one row per campaign of the page");
  await page.selectOption("select[name=sort]", "reasoning_tokens");
  await page.waitForFunction(() => location.hash.includes("sort=reasoning_tokens"));
  const byTokens = await api("/campaigns?sort=reasoning_tokens&limit=100&offset=0");
  await page.waitForSelector(`main tbody tr:first-child a:text-is('${byTokens.items[0].campaign_id}')`);
  await shot("campaigns");
  const first = list.items[0];
  const cid = encodeURIComponent(first.campaign_id);
  await page.goto(`${base}/ui/#/campaigns`);
  await page.waitForSelector("main tbody a");
  await page.click(`main tbody a[href='#/campaigns/${cid}']`);
  await page.waitForSelector(`h1:has-text('Campaign ${first.campaign_id}')`);
  const detail = await api(`/campaigns/${cid}`);
  const view = await api(`/campaigns/${cid}/view`);
  check((await cardValue("member accounts")) === detail.accounts.length.toLocaleString("en"), "campaign member count");
  check((await cardValue("exchanges")) === first.exchanges.toLocaleString("en"), "campaign exchanges");
  check((await cardValue("reasoning tokens harvested")) === first.reasoning_tokens.toLocaleString("en"), "campaign reasoning tokens");
  // The graph: drawn (cytoscape's canvases), its legend counting the API's nodes per kind.
  check(view.graph.nodes.length > 0, "the campaign view has a graph");
  await page.waitForSelector(".graph canvas");
  const legend = await page.locator(".legend").textContent();
  const accountsDrawn = view.graph.nodes.filter((n) => n.kind === "account").length;
  check(legend.includes(`account (${accountsDrawn.toLocaleString("en")})`), `graph legend counts accounts: ${legend}`);
  check(view.graph.nodes.some((n) => n.kind !== "account"), "the graph has shared attributes");
  check((await page.locator(".chart canvas").count()) >= 2, "timeline and capability charts");
  const samples = page.locator("table", { has: page.locator("th", { hasText: "prompt" }) }).locator("tbody tr");
  check((await samples.count()) === Math.max(1, view.samples.length), "one row per sample prompt");
  const members = Math.min(100, detail.accounts.length);
  check((await page.locator("main td > a[href^='#/accounts/']").count()) >= members, "one link per member of the first page");
  await shot("campaign");
  // The top of the campaign page, with its graph (the README's picture).
  await page.screenshot({ path: `${shots}/campaign-top.png`, fullPage: true, clip: { x: 0, y: 0, width: 1280, height: 1500 } });

  // One-click action: block the campaign; a member's request is refused; revert; it passes.
  const member = detail.accounts[0];
  const ask = () =>
    fetch(`${apiBase}/v1/chat/completions`, {
      method: "POST",
      // The listener takes the request time from a header (the replay's clock): just after
      // the campaign's last exchange.
      headers: { "content-type": "application/json", "x-moat-account": member, "x-moat-time": new Date(Date.parse(first.last_seen) + 1000).toISOString() },
      body: JSON.stringify({ model: "m", messages: [{ role: "user", content: "What is 2 + 2?" }] }),
    }).then(async (r) => [r.status, await r.text()]);
  const expect = async (status, what) => {
    const [got, body] = await ask();
    check(got === status, `${what}: ${got} ${body.slice(0, 300)}`);
  };
  await expect(200, "a member's request passes before the block");
  await page.click("section.actions button[data-action=block]");
  await page.waitForSelector("section.actions button[data-revert]");
  const applied = (await api("/actions")).items.filter((a) => a.target.id === first.campaign_id && a.action === "block");
  check(applied.length === 1, "the block is active");
  await expect(403, "a member's request is refused while the block is active");
  await shot("campaign-blocked");
  await page.click("section.actions button[data-revert]");
  await page.waitForSelector("section.actions button[data-action=block]:not([disabled])");
  check((await api("/actions")).items.length === 0, "the block is reverted");
  await expect(200, "a member's request passes after the revert");
  const trail = (await api("/audit?limit=100")).items.map((e) => e.action);
  check(trail.includes("action_apply") && trail.includes("action_revert"), `apply and revert are audited: ${trail}`);

  await page.click(`main td > a[href='#/accounts/${encodeURIComponent(member)}']`);
  await page.waitForSelector(`h1:has-text('Account ${member}')`);
  const account = await api(`/accounts/${encodeURIComponent(member)}`);
  check(account.campaign_id === first.campaign_id, "the member's standing names the campaign");
  check((await page.locator("main").textContent()).includes(first.campaign_id), "the account page links its campaign");
  check((await cardValue("exchanges")) === account.usage.exchanges.toLocaleString("en"), "account exchanges");
  const recent = page.locator("table", { has: page.locator("th", { hasText: "prompt" }) }).locator("tbody tr");
  check((await recent.count()) === Math.max(1, account.recent_exchanges.length), "one row per recent exchange");
  await shot("account");

  // Accounts, paged.
  await page.click("header nav a[href='#/accounts']");
  await page.waitForSelector("h1:has-text('Flagged accounts')");
  const flagged = await api("/accounts?flagged=true&limit=100");
  check((await page.locator("main tbody tr").count()) === Math.max(1, flagged.items.length), "one row per flagged account of the page");
  await shot("accounts");

  // Policy: reload through the confirmation; the audit log has it.
  await page.click("header nav a[href='#/policy']");
  await page.waitForSelector("h1:has-text('Policy')");
  const rules = (await api("/policy")).rules.length;
  const rulesTable = page.locator("table", { has: page.locator("th", { hasText: "when" }) }).locator("tbody tr");
  check((await rulesTable.count()) === rules, "one row per rule");
  await page.click("button:has-text('Check file')");
  await page.waitForSelector(`p.ok:has-text('The file is valid: ${rules} rules (not applied).')`);
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
  seen.campaigns = summary.campaigns;
  seen.members = detail.accounts.length;
  seen.graph_nodes = view.graph.nodes.length;
  seen.rules = rules;
  console.log(JSON.stringify(seen));
} finally {
  await browser.close();
}

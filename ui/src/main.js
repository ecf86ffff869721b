// Moat's investigator dashboard: a single page over the admin API (/admin/…) of `moat serve`.
// The admin token is asked once and kept in this tab's sessionStorage; every request sends it as
// a bearer token (no cookie, so no cross-site request can act with it). Data is put in the page
// with textContent only, never parsed as HTML: account ids, rule names and evidence are input
// from outside.

import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  PointElement,
  Tooltip,
} from "chart.js";

Chart.register(BarController, BarElement, CategoryScale, LinearScale, LineController, LineElement, PointElement, Legend, Tooltip);

const TOKEN_KEY = "moat-admin-token";
const main = document.getElementById("main");
const logout = document.getElementById("logout");
let charts = [];

/** An element with attributes and children (strings become text nodes). */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

class Unauthorized extends Error {}

/** Calls the admin API; throws Unauthorized on 401/403 and Error with the server's message. */
async function api(path, { method = "GET" } = {}) {
  const token = sessionStorage.getItem(TOKEN_KEY) || "";
  const resp = await fetch(`/admin${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, accept: "application/json" },
    cache: "no-store",
  });
  let body = null;
  try {
    body = await resp.json();
  } catch {
    body = null;
  }
  if (resp.status === 401) throw new Unauthorized();
  if (!resp.ok) {
    const message = body?.error?.message ?? body?.error ?? `HTTP ${resp.status}`;
    throw new Error(typeof message === "string" ? message : JSON.stringify(message));
  }
  return body;
}

const fmt = new Intl.NumberFormat("en");
const num = (n) => (n === null || n === undefined ? "–" : fmt.format(n));
const pct = (x) => (x === null || x === undefined ? "–" : `${(100 * x).toFixed(0)}%`);
const when = (t) => (t ? String(t).replace("T", " ").replace(/\.\d+Z$|Z$/, " UTC") : "–");
const link = (hash, text) => h("a", { href: hash }, text);
const accountLink = (id) => link(`#/accounts/${encodeURIComponent(id)}`, id);
const campaignLink = (id) => link(`#/campaigns/${encodeURIComponent(id)}`, id);

function card(label, value, cls) {
  return h("div", { class: "card" }, h("div", { class: `value ${cls ?? ""}` }, value), h("div", { class: "label" }, label));
}

function table(headers, rows) {
  return h(
    "table",
    {},
    h("thead", {}, h("tr", {}, headers.map(([t, c]) => h("th", { class: c }, t)))),
    h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: headers.length, class: "muted" }, "none"))),
  );
}

const COLORS = { allow: "#9aa3b5", shadow: "#c9a227", throttle: "#e07b00", tarpit: "#8e44ad", summarize_reasoning: "#2a9d8f", withhold_reasoning: "#1f5fbf", block: "#b3261e" };

function chart(config, label) {
  const canvas = h("canvas", { "aria-label": label, role: "img" });
  const box = h("div", { class: "chart" }, canvas);
  queueMicrotask(() => charts.push(new Chart(canvas, config)));
  return box;
}

function barChart(labels, values, label) {
  return chart(
    {
      type: "bar",
      data: { labels, datasets: [{ label, data: values, backgroundColor: "#1f5fbf" }] },
      options: { responsive: true, maintainAspectRatio: false, animation: false, plugins: { legend: { display: false } } },
    },
    label,
  );
}

/** The timeline's points as chart labels (local time, HH:MM). */
function timeLabels(series) {
  return series.requests.map((_, i) => {
    const d = new Date(series.start_ms + (i + 1) * series.step_ms);
    return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  });
}

function timelineCharts(series) {
  const labels = timeLabels(series);
  const perSecond = series.step_ms / 1000;
  const options = { responsive: true, maintainAspectRatio: false, animation: false, interaction: { mode: "index", intersect: false }, scales: { y: { beginAtZero: true } } };
  return [
    h("h2", {}, `Requests per second, and the policy's actions (last ${Math.round((series.requests.length * series.step_ms) / 60000)} min, ${perSecond} s per point)`),
    chart(
      {
        type: "line",
        data: {
          labels,
          datasets: [
            { label: "requests/s", data: series.requests.map((n) => n / perSecond), borderColor: "#1d2330", pointRadius: 0, borderWidth: 2 },
            ...series.actions
              .filter(([, counts]) => counts.some((n) => n > 0))
              .map(([name, counts]) => ({ label: `${name}/s`, data: counts.map((n) => n / perSecond), borderColor: COLORS[name] ?? "#777", pointRadius: 0, borderWidth: 1.5 })),
          ],
        },
        options,
      },
      "requests and actions per second",
    ),
    h("h2", {}, "Flagged accounts and campaigns"),
    chart(
      {
        type: "line",
        data: {
          labels,
          datasets: [
            { label: "flagged accounts", data: series.flagged, borderColor: "#b3261e", pointRadius: 0, spanGaps: true },
            { label: "campaigns", data: series.campaigns, borderColor: "#1f5fbf", pointRadius: 0, spanGaps: true, yAxisID: "y1" },
          ],
        },
        options: { ...options, scales: { y: { beginAtZero: true, position: "left" }, y1: { beginAtZero: true, position: "right", grid: { drawOnChartArea: false } } } },
      },
      "flagged accounts and campaigns",
    ),
  ];
}

// ---- pages ------------------------------------------------------------------------------

async function overview() {
  const [health, campaigns, flagged, intel, series] = await Promise.all([
    fetch("/health", { cache: "no-store" }).then((r) => r.json()),
    api("/campaigns"),
    api("/accounts?flagged=true&limit=1000"),
    api("/intel"),
    api("/timeline?span_s=3600&step_s=30"),
  ]);
  const top = campaigns.items.slice(0, 20);
  return [
    h("h1", {}, "Overview"),
    h(
      "div",
      { class: "cards" },
      card("status", health.status, health.status === "ok" ? "ok" : "bad"),
      card("exchanges scored", num(health.engine?.observed)),
      card("campaigns", num(campaigns.items.length)),
      card("flagged accounts", flagged.next ? `${num(flagged.items.length)}+` : num(flagged.items.length)),
      card("records written", num(health.recorder?.written)),
      card("records dropped", num(health.recorder?.dropped), health.recorder?.dropped ? "bad" : ""),
      card("policy rules", num(health.policy?.rules)),
      card("partner indicators", intel.enabled ? num(intel.indicators) : "off"),
    ),
    timelineCharts(series),
    h("h2", {}, "Largest campaigns (member accounts)"),
    top.length ? barChart(top.map((c) => c.campaign_id), top.map((c) => c.size), "member accounts") : h("p", { class: "muted" }, "No campaign detected yet."),
  ];
}

async function campaigns() {
  const { items } = await api("/campaigns");
  return [
    h("h1", {}, `Campaigns (${num(items.length)})`),
    table(
      [["campaign"], ["accounts", "num"], ["score", "num"], ["first detected"]],
      items.map((c) => h("tr", {}, h("td", {}, campaignLink(c.campaign_id)), h("td", { class: "num" }, num(c.size)), h("td", { class: "num" }, pct(c.score)), h("td", {}, when(c.first_detected_at)))),
    ),
  ];
}

async function campaign(id) {
  const c = await api(`/campaigns/${encodeURIComponent(id)}`);
  return [
    h("h1", {}, `Campaign ${c.campaign_id}`),
    h("div", { class: "cards" }, card("member accounts", num(c.accounts.length)), card("score", pct(c.score)), card("first detected", when(c.first_detected_at))),
    h("h2", {}, "Evidence"),
    table(
      [["signal"], ["detail"]],
      (c.signals ?? []).map((s) => h("tr", {}, h("td", { class: "mono" }, s.name), h("td", {}, s.detail))),
    ),
    h("h2", {}, "Members"),
    table(
      [["account"]],
      c.accounts.map((a) => h("tr", {}, h("td", {}, accountLink(a)))),
    ),
  ];
}

async function accounts(query) {
  const flaggedOnly = query.get("flagged") !== "false";
  const after = query.get("after");
  const params = new URLSearchParams({ limit: "100" });
  if (flaggedOnly) params.set("flagged", "true");
  if (after) params.set("after", after);
  const page = await api(`/accounts?${params}`);
  const next = new URLSearchParams({ flagged: String(flaggedOnly) });
  if (page.next) next.set("after", page.next);
  return [
    h("h1", {}, flaggedOnly ? "Flagged accounts" : "Accounts"),
    h(
      "div",
      { class: "pager" },
      link(`#/accounts?flagged=${!flaggedOnly}`, flaggedOnly ? "show every account" : "show flagged only"),
      page.next ? link(`#/accounts?${next}`, "next page →") : h("span", { class: "muted" }, "last page"),
    ),
    table(
      [["account"], ["risk", "num"], ["flagged"], ["campaign"], ["reasons"]],
      page.items.map((a) =>
        h(
          "tr",
          {},
          h("td", {}, accountLink(a.account_id)),
          h("td", { class: "num" }, pct(a.risk)),
          h("td", {}, a.flagged ? when(a.flagged_at) : "no"),
          h("td", {}, a.campaign_id ? campaignLink(a.campaign_id) : "–"),
          h("td", { class: "mono" }, (a.reasons ?? []).join(", ")),
        ),
      ),
    ),
  ];
}

async function account(id) {
  const a = await api(`/accounts/${encodeURIComponent(id)}`);
  return [
    h("h1", {}, `Account ${a.account_id}`),
    h(
      "div",
      { class: "cards" },
      card("risk", pct(a.risk), a.risk >= 0.5 ? "bad" : ""),
      card("flagged", a.flagged ? when(a.flagged_at) : "no", a.flagged ? "bad" : ""),
      card("campaign", a.campaign_id ?? "–"),
    ),
    a.campaign_id ? h("p", {}, "Member of ", campaignLink(a.campaign_id), ".") : null,
    h("h2", {}, "Reasons"),
    h("p", { class: "mono" }, (a.reasons ?? []).join(", ") || "none"),
    h("h2", {}, "Recent decisions"),
    a.recent_decisions === null
      ? h("p", { class: "error" }, "The store could not be read.")
      : table(
          [["time"], ["action"], ["rule"], ["detail"]],
          a.recent_decisions.map((d) => h("tr", {}, h("td", {}, when(d.ts)), h("td", { class: "mono" }, (d.actions ?? []).join(", ") + (d.enforced ? "" : " (not enforced)")), h("td", {}, d.rule ?? "default"), h("td", {}, d.detail ?? ""))),
        ),
  ];
}

async function policy() {
  const p = await api("/policy");
  const status = h("p", { class: p.last_error ? "error" : "muted" }, p.last_error ? `Last reload rejected: ${p.last_error}` : `File: ${p.file ?? "(none)"}`);
  const reload = h(
    "button",
    {
      type: "button",
      class: "primary",
      onclick: async () => {
        if (!confirm("Reload the policy file now? A file with errors is rejected and the current rules stay.")) return;
        try {
          const r = await api("/policy/reload", { method: "POST" });
          status.className = "ok";
          status.textContent = `Reloaded: ${num(r.rules)} rules.`;
        } catch (e) {
          status.className = "error";
          status.textContent = `Rejected: ${e.message}`;
        }
      },
    },
    "Reload policy",
  );
  return [
    h("h1", {}, "Policy"),
    status,
    reload,
    h("h2", {}, "Rules, in order"),
    table(
      [["#", "num"], ["name"], ["when"], ["actions"], ["mode"]],
      p.rules.map((r, i) => h("tr", {}, h("td", { class: "num" }, i + 1), h("td", {}, r.name), h("td", { class: "mono" }, r.when), h("td", { class: "mono" }, r.actions.join(", ")), h("td", {}, r.shadow ? "shadow" : "enforce"))),
    ),
  ];
}

async function intel() {
  const s = await api("/intel");
  if (!s.enabled) {
    return [h("h1", {}, "Intelligence"), h("p", { class: "muted" }, "No intel database is configured ([intel] db in moat.toml).")];
  }
  return [
    h("h1", {}, "Intelligence"),
    s.error ? h("p", { class: "error" }, `The intel database could not be read; the indicators loaded before stay in force: ${s.error}`) : null,
    h("div", { class: "cards" }, card("indicators in force", num(s.indicators)), card("database generation", num(s.generation))),
    h("h2", {}, "Sources"),
    table(
      [["source"], ["keyed"], ["objects", "num"], ["matchable", "num"], ["unsupported", "num"], ["refused", "num"]],
      (s.sources ?? []).map((x) => h("tr", {}, h("td", {}, x.source), h("td", {}, x.keyed ? "yes" : "no key"), h("td", { class: "num" }, num(x.objects)), h("td", { class: "num" }, num(x.matchable)), h("td", { class: "num" }, num(x.unsupported)), h("td", { class: "num" }, num(x.refused)))),
    ),
  ];
}

async function alerts() {
  const s = await api("/alerts");
  if (!s.enabled) {
    return [h("h1", {}, "Alerts"), h("p", { class: "muted" }, "No webhook is configured ([[alerts.webhook]] in moat.toml).")];
  }
  if (!s.running) {
    return [h("h1", {}, "Alerts"), h("p", { class: "error" }, "The alert dispatcher is not running (see the gateway's log).")];
  }
  const st = s.stats;
  const at = (ms) => (ms ? when(new Date(ms).toISOString()) : "–");
  return [
    h("h1", {}, "Alerts"),
    h("div", { class: "cards" }, card("alerts queued", num(st.queued)), card("dropped (queue full)", num(st.queue_dropped), st.queue_dropped ? "bad" : "")),
    h("h2", {}, "Webhooks"),
    table(
      [["webhook"], ["delivered", "num"], ["failed", "num"], ["retries", "num"], ["deduplicated", "num"], ["dropped", "num"], ["last success"], ["last error"]],
      st.webhooks.map((w) =>
        h(
          "tr",
          {},
          h("td", {}, w.name),
          h("td", { class: "num" }, num(w.delivered)),
          h("td", { class: `num ${w.failed ? "bad" : ""}` }, num(w.failed)),
          h("td", { class: "num" }, num(w.retried)),
          h("td", { class: "num" }, num(w.deduplicated)),
          h("td", { class: "num" }, num(w.dropped)),
          h("td", {}, at(w.last_success_at_ms)),
          h("td", { class: w.last_error ? "bad" : "" }, w.last_error ? `${w.last_error} (${at(w.last_error_at_ms)})` : "–"),
        ),
      ),
    ),
    h("h2", {}, "Last deliveries"),
    table(
      [["time"], ["webhook"], ["alerts", "num"], ["outcome"], ["attempts", "num"], ["error"]],
      [...st.recent].reverse().map((d) => h("tr", {}, h("td", {}, at(d.at_ms)), h("td", {}, d.webhook), h("td", { class: "num" }, num(d.alerts)), h("td", { class: d.outcome === "delivered" ? "ok" : "bad" }, d.outcome), h("td", { class: "num" }, num(d.attempts)), h("td", {}, d.error ?? ""))),
    ),
  ];
}

// ---- routing ----------------------------------------------------------------------------

function login(message) {
  logout.hidden = true;
  const input = h("input", { type: "password", name: "token", autocomplete: "current-password", required: true });
  return h(
    "form",
    {
      class: "login",
      onsubmit: (e) => {
        e.preventDefault();
        sessionStorage.setItem(TOKEN_KEY, input.value);
        render();
      },
    },
    h("h1", {}, "Sign in"),
    message ? h("p", { class: "error" }, message) : null,
    h("label", {}, "Admin token (the value of the variable [admin] token_env names)", input),
    h("button", { type: "submit", class: "primary" }, "Open the dashboard"),
  );
}

function route() {
  const [path, q] = (location.hash.slice(1) || "/overview").split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  const query = new URLSearchParams(q ?? "");
  switch (parts[0]) {
    case "campaigns":
      return parts[1] ? () => campaign(parts[1]) : campaigns;
    case "accounts":
      return parts[1] ? () => account(parts[1]) : () => accounts(query);
    case "policy":
      return policy;
    case "intel":
      return intel;
    case "alerts":
      return alerts;
    default:
      return overview;
  }
}

async function render() {
  for (const c of charts) c.destroy();
  charts = [];
  const section = (location.hash.slice(2) || "overview").split(/[/?]/)[0];
  for (const a of document.querySelectorAll("header nav a")) {
    a.classList.toggle("active", a.getAttribute("href") === `#/${section}`);
  }
  if (!sessionStorage.getItem(TOKEN_KEY)) {
    main.replaceChildren(login());
    return;
  }
  logout.hidden = false;
  try {
    const content = await route()();
    main.replaceChildren(...[content].flat(Infinity).filter(Boolean));
  } catch (e) {
    if (e instanceof Unauthorized) {
      sessionStorage.removeItem(TOKEN_KEY);
      main.replaceChildren(login("That token was refused."));
    } else {
      main.replaceChildren(h("p", { class: "error" }, `Could not load this page: ${e.message}`));
    }
  }
}

logout.addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  render();
});
window.addEventListener("hashchange", render);
render();

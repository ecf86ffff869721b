// Moat's investigator dashboard: a single page over the admin API (/admin/…) of `moat serve`,
// or of `moat ui` (read-only, over the output of `moat analyze`), or over a snapshot of those
// answers embedded in the page itself (`moat analyze --report`).
// The admin token is asked once and kept in this tab's sessionStorage; every request sends it as
// a bearer token (no cookie, so no cross-site request can act with it). Data is put in the page
// with textContent only, never parsed as HTML: account ids, rule names, prompts and evidence are
// input from outside. Listings are sorted and paged by the server; the page never holds more
// than one page of rows.

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
import cytoscape from "cytoscape";

Chart.register(BarController, BarElement, CategoryScale, LinearScale, LineController, LineElement, PointElement, Legend, Tooltip);

const TOKEN_KEY = "moat-admin-token";
const main = document.getElementById("main");
const logout = document.getElementById("logout");
/** Charts and graphs of the page shown, destroyed when it is replaced. */
let widgets = [];
/** Work that needs the page in the document (sizes): run after it is shown. */
let mounted = [];
/** `{mode, read_only, auth}` of the server (or of the snapshot). */
let about = { mode: "live", read_only: false, auth: true };
/** Answers embedded in the page by `moat analyze --report`, by path; null when served. */
const snapshot = (() => {
  const el = document.getElementById("moat-snapshot");
  if (!el) return null;
  try {
    return JSON.parse(el.textContent);
  } catch {
    return null;
  }
})();

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
class NotInSnapshot extends Error {}

/** Calls the admin API; throws Unauthorized on 401 and Error with the server's message. */
async function api(path, { method = "GET", body } = {}) {
  if (snapshot) {
    const answer = snapshot.answers?.[path];
    if (answer === undefined) throw new NotInSnapshot(path);
    return answer;
  }
  const token = sessionStorage.getItem(TOKEN_KEY) || "";
  const headers = { authorization: `Bearer ${token}`, accept: "application/json" };
  if (body !== undefined) headers["content-type"] = "application/json";
  const resp = await fetch(`/admin${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: "no-store",
  });
  let answer = null;
  try {
    answer = await resp.json();
  } catch {
    answer = null;
  }
  if (resp.status === 401) throw new Unauthorized();
  if (!resp.ok) {
    const message = answer?.error?.message ?? answer?.error ?? `HTTP ${resp.status}`;
    throw new Error(typeof message === "string" ? message : JSON.stringify(message));
  }
  return answer;
}

const live = () => about.mode === "live" && !snapshot;
const fmt = new Intl.NumberFormat("en");
const num = (n) => (n === null || n === undefined ? "–" : fmt.format(n));
const pct = (x) => (x === null || x === undefined ? "–" : `${(100 * x).toFixed(0)}%`);
const when = (t) => (t ? String(t).replace("T", " ").replace(/\.\d+Z$|Z$/, " UTC") : "–");
const whenMs = (ms) => (ms === null || ms === undefined ? "–" : when(new Date(ms).toISOString()));
const link = (hash, text) => h("a", { href: hash }, text);
const accountLink = (id) => link(`#/accounts/${encodeURIComponent(id)}`, id);
const campaignLink = (id) => link(`#/campaigns/${encodeURIComponent(id)}`, id);

/** A card; a long value (a time) in a smaller font. */
function card(label, value, cls) {
  if (typeof value === "string" && value.length > 14) cls = `${cls ?? ""} long`;
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
  mounted.push(() => widgets.push(new Chart(canvas, config)));
  return box;
}

const BASE_OPTIONS = { responsive: true, maintainAspectRatio: false, animation: false };

function barChart(labels, datasets, label, extra = {}) {
  return chart(
    {
      type: "bar",
      data: { labels, datasets },
      options: { ...BASE_OPTIONS, plugins: { legend: { display: datasets.length > 1 } }, ...extra },
    },
    label,
  );
}

/** Labels of a series of `n` points from `start_ms` every `step_ms` (time, or date and time). */
function timeLabels(start_ms, step_ms, n, offset = 0) {
  const long = step_ms * n > 86_400_000;
  return Array.from({ length: n }, (_, i) => {
    const d = new Date(start_ms + (i + offset) * step_ms);
    return long ? d.toISOString().slice(5, 16).replace("T", " ") : d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  });
}

function timelineCharts(series) {
  const labels = timeLabels(series.start_ms, series.step_ms, series.requests.length, 1);
  const perSecond = series.step_ms / 1000;
  const options = { ...BASE_OPTIONS, interaction: { mode: "index", intersect: false }, scales: { y: { beginAtZero: true } } };
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

// ---- the account–attribute graph ----------------------------------------------------------

const KINDS = {
  account: { color: "#9aa3b5", shape: "ellipse", name: "account" },
  template: { color: "#e07b00", shape: "round-rectangle", name: "shared prompt template" },
  ip_block: { color: "#1f5fbf", shape: "diamond", name: "IP block" },
  payment: { color: "#b3261e", shape: "star", name: "payment fingerprint" },
  ja4: { color: "#8e44ad", shape: "hexagon", name: "TLS fingerprint (JA4)" },
  asn: { color: "#2a9d8f", shape: "triangle", name: "network (ASN)" },
  user_agent: { color: "#7a5c2e", shape: "vee", name: "user agent" },
};

/** What ties the accounts together: accounts linked to the attribute values they share. */
function attributeGraph(graph) {
  if (!graph || !graph.nodes.length) return h("p", { class: "muted" }, "No attribute is shared by two members in the exchanges read.");
  const box = h("div", { class: "graph", role: "img", "aria-label": "account–attribute graph" });
  const info = h("p", { class: "muted graph-info" }, "Click an attribute to see it; click an account to open it.");
  const counts = {};
  for (const n of graph.nodes) counts[n.kind] = (counts[n.kind] ?? 0) + 1;
  const legend = h(
    "div",
    { class: "legend" },
    Object.entries(counts).map(([kind, n]) => h("span", {}, h("i", { style: `background:${KINDS[kind]?.color ?? "#777"}` }), `${KINDS[kind]?.name ?? kind} (${num(n)})`)),
  );
  mounted.push(() => {
    const cy = cytoscape({
      container: box,
      elements: [
        ...graph.nodes.map((n) => ({ data: { id: n.id, kind: n.kind, label: n.kind === "account" ? "" : n.label, full: n.label, weight: n.weight } })),
        ...graph.edges.map((e, i) => ({ data: { id: `e${i}`, source: e.source, target: e.target, weight: e.weight } })),
      ],
      style: [
        {
          selector: "node",
          style: {
            "background-color": (n) => KINDS[n.data("kind")]?.color ?? "#777",
            shape: (n) => KINDS[n.data("kind")]?.shape ?? "ellipse",
            width: (n) => (n.data("kind") === "account" ? 10 : 14 + Math.min(30, 2 * Math.sqrt(n.data("weight")))),
            height: (n) => (n.data("kind") === "account" ? 10 : 14 + Math.min(30, 2 * Math.sqrt(n.data("weight")))),
            label: "data(label)",
            "font-size": 10,
            "text-wrap": "ellipsis",
            "text-max-width": 160,
            "text-valign": "bottom",
            "text-margin-y": 3,
            "text-background-color": "#fff",
            "text-background-opacity": 0.75,
            "text-background-padding": 1,
            color: "#1d2330",
          },
        },
        { selector: "edge", style: { width: 0.6, "line-color": "#c3c8d2", opacity: 0.8 } },
        { selector: "node:selected", style: { "border-width": 3, "border-color": "#1d2330" } },
      ],
      // Force-directed: the shared values pull their accounts together; accounts tied by the
      // same values end up in one cluster.
      layout: { name: "cose", animate: false, randomize: false, nodeRepulsion: () => 60000, idealEdgeLength: () => 70, nodeOverlap: 20, gravity: 0.4, numIter: 2000, componentSpacing: 60 },
      wheelSensitivity: 0.3,
    });
    cy.on("tap", "node", (ev) => {
      const n = ev.target;
      if (n.data("kind") === "account") {
        location.hash = `#/accounts/${encodeURIComponent(n.data("full"))}`;
        return;
      }
      const members = n.connectedEdges().length;
      info.className = "graph-info";
      info.textContent = `${KINDS[n.data("kind")]?.name ?? n.data("kind")}: ${n.data("full")} — shared by ${num(n.data("weight"))} members (${num(members)} drawn)`;
    });
    widgets.push(cy);
  });
  const omitted = graph.omitted_accounts || graph.omitted_values ? h("p", { class: "muted" }, `Not drawn: ${num(graph.omitted_accounts)} accounts and ${num(graph.omitted_values)} values with fewer ties.`) : null;
  return [legend, box, info, omitted];
}

// ---- pages ------------------------------------------------------------------------------

async function overview() {
  const summary = await api("/summary");
  const top = await api("/campaigns?sort=size&limit=20&offset=0");
  const extra = live() ? await Promise.all([fetch("/health", { cache: "no-store" }).then((r) => r.json()), api("/intel"), api("/timeline?span_s=3600&step_s=30")]) : null;
  const [health, intel, series] = extra ?? [];
  return [
    h("h1", {}, "Overview"),
    h(
      "div",
      { class: "cards" },
      health ? card("status", health.status, health.status === "ok" ? "ok" : "bad") : null,
      card("exchanges", num(summary.exchanges)),
      card("accounts", num(summary.accounts)),
      card("flagged accounts", num(summary.flagged), summary.flagged ? "bad" : ""),
      card("campaigns", num(summary.campaigns)),
      card("campaign members", num(summary.campaign_members)),
      card("reasoning tokens to campaigns", num(summary.campaign_reasoning_tokens)),
      card("campaign exchanges after detection", num(summary.campaign_after_detection), summary.campaign_after_detection ? "bad" : ""),
      health ? card("records dropped", num(health.recorder?.dropped), health.recorder?.dropped ? "bad" : "") : null,
      health ? card("policy rules", num(health.policy?.rules)) : null,
      intel ? card("partner indicators", intel.enabled ? num(intel.indicators) : "off") : null,
    ),
    series ? timelineCharts(series) : null,
    h("h2", {}, "Largest campaigns"),
    top.items.length
      ? barChart(
          top.items.map((c) => c.campaign_id),
          [
            { label: "member accounts", data: top.items.map((c) => c.size), backgroundColor: "#1f5fbf", yAxisID: "y" },
            { label: "exchanges", data: top.items.map((c) => c.exchanges), backgroundColor: "#9aa3b5", yAxisID: "y1" },
          ],
          "largest campaigns",
          { scales: { y: { beginAtZero: true, position: "left" }, y1: { beginAtZero: true, position: "right", grid: { drawOnChartArea: false } } } },
        )
      : h("p", { class: "muted" }, "No campaign detected yet."),
  ];
}

const CAMPAIGN_SORTS = [
  ["size", "members"],
  ["exchanges", "exchanges"],
  ["reasoning_tokens", "reasoning tokens"],
  ["leakage", "leakage"],
  ["score", "score"],
  ["first_seen", "first seen"],
  ["first_detected", "first detected"],
];

async function campaigns(query) {
  const sort = query.get("sort") ?? "size";
  const offset = Number.parseInt(query.get("offset") ?? "0", 10) || 0;
  const page = await api(`/campaigns?sort=${encodeURIComponent(sort)}&limit=100&offset=${offset}`);
  const at = (o) => `#/campaigns?sort=${encodeURIComponent(sort)}&offset=${o}`;
  return [
    h("h1", {}, `Campaigns (${num(page.total)})`),
    h(
      "div",
      { class: "pager" },
      "Rank by ",
      h(
        "select",
        { name: "sort", onchange: (e) => (location.hash = `#/campaigns?sort=${encodeURIComponent(e.target.value)}`) },
        CAMPAIGN_SORTS.map(([k, label]) => h("option", { value: k, selected: k === sort }, label)),
      ),
      h("span", { class: "muted" }, page.total ? `${num(offset + 1)}–${num(offset + page.items.length)} of ${num(page.total)}` : ""),
      offset > 0 ? link(at(Math.max(0, offset - 100)), "← previous") : null,
      page.next_offset !== null && page.next_offset !== undefined ? link(at(page.next_offset), "next page →") : null,
    ),
    table(
      [["campaign"], ["members", "num"], ["score", "num"], ["exchanges", "num"], ["reasoning tokens", "num"], ["first seen"], ["first detected"], ["after detection", "num"]],
      page.items.map((c) =>
        h(
          "tr",
          {},
          h("td", {}, campaignLink(c.campaign_id)),
          h("td", { class: "num" }, num(c.size)),
          h("td", { class: "num" }, pct(c.score)),
          h("td", { class: "num" }, num(c.exchanges)),
          h("td", { class: "num" }, num(c.reasoning_tokens)),
          h("td", {}, when(c.first_seen)),
          h("td", {}, when(c.first_detected_at)),
          h("td", { class: `num ${c.after_detection ? "bad" : ""}`, title: `${num(c.reasoning_after_detection)} reasoning tokens` }, c.exchanges ? `${num(c.after_detection)} (${pct(c.leakage)})` : "–"),
        ),
      ),
    ),
  ];
}

const ACTIONS = [
  ["withhold_reasoning", "Withhold reasoning", "Withhold the reasoning of every answer to"],
  ["summarize_reasoning", "Summarize reasoning", "Replace the reasoning with a summary in every answer to"],
  ["throttle", "Throttle", "Throttle (10 requests per minute)"],
  ["block", "Block", "Refuse every request from"],
];

/** One-click policy actions on a campaign or account, with their confirmation and revert. */
async function actionPanel(kind, id) {
  if (!live() || about.read_only) return null;
  let active = [];
  let error = null;
  try {
    active = (await api("/actions")).items.filter((a) => a.target?.kind === kind && a.target?.id === id);
  } catch (e) {
    error = e.message;
  }
  const status = h("p", { class: error ? "error" : "muted" }, error ? `Actions are unavailable: ${error}` : "Applied at once, first in the policy; every action and revert is in the audit log.");
  const what = kind === "campaign" ? `every member of campaign ${id}` : `account ${id}`;
  const apply = async (action, verb) => {
    if (!confirm(`${verb} ${what}?\n\nThis is applied at once and written to the audit log.`)) return;
    try {
      const a = await api("/actions", { method: "POST", body: { target: { kind, id }, action } });
      status.className = "ok";
      status.textContent = `Applied ${a.action} (${a.id}).`;
      await render();
    } catch (e) {
      status.className = "error";
      status.textContent = `Not applied: ${e.message}`;
    }
  };
  const revert = async (a) => {
    if (!confirm(`Revert ${a.action} on ${what}?`)) return;
    try {
      await api(`/actions/${encodeURIComponent(a.id)}/revert`, { method: "POST" });
      await render();
    } catch (e) {
      status.className = "error";
      status.textContent = `Not reverted: ${e.message}`;
    }
  };
  const activeNames = new Set(active.map((a) => a.action));
  return h(
    "section",
    { class: "actions" },
    h("h2", {}, "Policy actions"),
    h(
      "div",
      { class: "buttons" },
      ACTIONS.map(([action, label, verb]) => h("button", { type: "button", class: action === "block" ? "danger" : "", disabled: activeNames.has(action), "data-action": action, onclick: () => apply(action, verb) }, label)),
    ),
    active.length
      ? table(
          [["action"], ["id"], ["applied"], ["by"], [""]],
          active.map((a) => h("tr", {}, h("td", { class: "mono" }, a.action), h("td", { class: "mono" }, a.id), h("td", {}, when(a.created_at)), h("td", {}, a.actor), h("td", {}, h("button", { type: "button", "data-revert": a.id, onclick: () => revert(a) }, "Revert")))),
        )
      : null,
    status,
  );
}

const CATEGORY_ORDER = ["math", "code", "reasoning", "knowledge", "writing", "chat", "other"];

async function campaign(id) {
  const enc = encodeURIComponent(id);
  const [c, view, members] = await Promise.all([api(`/campaigns/${enc}`), api(`/campaigns/${enc}/view`), api(`/accounts?campaign=${enc}&limit=100`)]);
  const usage = view.usage ?? null;
  const exchanges = usage?.exchanges ?? view.exchanges;
  const reasoning = usage?.reasoning_tokens ?? view.reasoning_tokens;
  const after = usage ? usage.after_detection : view.after_detection?.exchanges;
  const firstSeen = usage?.first_ms ? whenMs(usage.first_ms) : when(view.first_seen);
  const tl = view.timeline;
  const caps = [...(view.capabilities ?? [])].sort((a, b) => CATEGORY_ORDER.indexOf(a.category) - CATEGORY_ORDER.indexOf(b.category));
  const sample = view.sample;
  return [
    h("h1", {}, `Campaign ${c.campaign_id}`),
    h(
      "div",
      { class: "cards" },
      card("member accounts", num(c.accounts.length)),
      card("score", pct(c.score)),
      card("exchanges", num(exchanges)),
      card("reasoning tokens harvested", num(reasoning)),
      card("first seen", firstSeen),
      card("first detected", when(c.first_detected_at)),
      card("exchanges after detection", exchanges ? `${num(after)} (${pct(after / exchanges)})` : "–", after ? "bad" : ""),
    ),
    await actionPanel("campaign", c.campaign_id),
    h("h2", {}, "Evidence"),
    table(
      [["signal"], ["detail"]],
      (c.signals ?? []).map((s) => h("tr", {}, h("td", { class: "mono" }, s.name), h("td", {}, s.detail))),
    ),
    h("h2", {}, "What ties the accounts together"),
    sample && !sample.complete ? h("p", { class: "muted" }, `Drawn from ${num(sample.exchanges_read)} stored exchanges of the ${num(sample.members_read)} busiest of ${num(sample.members)} members.`) : null,
    attributeGraph(view.graph),
    h("h2", {}, "Timeline"),
    tl && tl.exchanges.length
      ? chart(
          {
            type: "bar",
            data: {
              labels: timeLabels(tl.start_ms, tl.step_ms, tl.exchanges.length),
              datasets: [
                { label: "exchanges", data: tl.exchanges, backgroundColor: "#1f5fbf", yAxisID: "y" },
                { label: "eliciting reasoning", data: tl.eliciting, backgroundColor: "#e07b00", yAxisID: "y" },
                { type: "line", label: "reasoning tokens", data: tl.reasoning_tokens, borderColor: "#b3261e", pointRadius: 0, yAxisID: "y1" },
              ],
            },
            options: { ...BASE_OPTIONS, interaction: { mode: "index", intersect: false }, scales: { y: { beginAtZero: true }, y1: { beginAtZero: true, position: "right", grid: { drawOnChartArea: false } } } },
          },
          "campaign timeline",
        )
      : h("p", { class: "muted" }, "No exchange stored."),
    h("h2", {}, "Capability sweep: what the members asked for"),
    caps.length
      ? barChart(
          caps.map((x) => x.category),
          [
            { label: "exchanges", data: caps.map((x) => x.exchanges), backgroundColor: "#1f5fbf" },
            { label: "eliciting reasoning", data: caps.map((x) => x.eliciting), backgroundColor: "#e07b00" },
          ],
          "capability sweep",
        )
      : null,
    h("h2", {}, "Sample prompts (secrets masked)"),
    table(
      [["time"], ["account"], ["category"], ["prompt"]],
      (view.samples ?? []).map((x) => h("tr", {}, h("td", {}, when(x.ts)), h("td", {}, accountLink(x.account_id)), h("td", {}, x.category), h("td", { class: "prompt" }, x.prompt))),
    ),
    h("h2", {}, `Members (${num(c.accounts.length)})`),
    accountTable(members.items),
    members.next ? h("p", {}, link(`#/accounts?flagged=any&campaign=${enc}&after=${encodeURIComponent(members.next)}`, "more members →")) : null,
  ];
}

function accountTable(items) {
  return table(
    [["account"], ["risk", "num"], ["flagged"], ["campaign"], ["exchanges", "num"], ["reasoning tokens", "num"], ["reasons"]],
    items.map((a) =>
      h(
        "tr",
        {},
        h("td", {}, accountLink(a.account_id)),
        h("td", { class: "num" }, pct(a.risk)),
        h("td", {}, a.flagged ? when(a.flagged_at) : "no"),
        h("td", {}, a.campaign_id ? campaignLink(a.campaign_id) : "–"),
        h("td", { class: "num" }, num(a.usage?.exchanges)),
        h("td", { class: "num" }, num(a.usage?.reasoning_tokens)),
        h("td", { class: "mono" }, (a.reasons ?? []).join(", ")),
      ),
    ),
  );
}

async function accounts(query) {
  const filter = query.get("flagged") ?? "true";
  const campaignId = query.get("campaign");
  const after = query.get("after");
  const params = new URLSearchParams({ limit: "100" });
  if (filter !== "any") params.set("flagged", filter);
  if (campaignId) params.set("campaign", campaignId);
  if (after) params.set("after", after);
  const page = await api(`/accounts?${params}`);
  const next = new URLSearchParams({ flagged: filter });
  if (campaignId) next.set("campaign", campaignId);
  if (page.next) next.set("after", page.next);
  const title = campaignId ? `Members of ${campaignId}` : filter === "true" ? "Flagged accounts" : "Accounts";
  return [
    h("h1", {}, title),
    h(
      "div",
      { class: "pager" },
      campaignId ? null : link(filter === "true" ? "#/accounts?flagged=any" : "#/accounts?flagged=true", filter === "true" ? "show every account" : "show flagged only"),
      after ? h("span", { class: "muted" }, `after ${after}`) : null,
      page.next ? link(`#/accounts?${next}`, "next page →") : h("span", { class: "muted" }, "last page"),
    ),
    accountTable(page.items),
  ];
}

async function account(id) {
  const a = await api(`/accounts/${encodeURIComponent(id)}`);
  const u = a.usage;
  const decisions = a.recent_decisions ?? [];
  const history = [...decisions].filter((d) => typeof d.risk === "number").reverse();
  return [
    h("h1", {}, `Account ${a.account_id}`),
    h(
      "div",
      { class: "cards" },
      card("risk", pct(a.risk), a.risk >= 0.5 ? "bad" : ""),
      card("flagged", a.flagged ? when(a.flagged_at) : "no", a.flagged ? "bad" : ""),
      card("campaign", a.campaign_id ?? "–"),
      card("exchanges", num(u?.exchanges)),
      card("reasoning tokens", num(u?.reasoning_tokens)),
      card("first seen", whenMs(u?.first_ms)),
      card("after detection", num(u?.after_detection), u?.after_detection ? "bad" : ""),
    ),
    a.campaign_id ? h("p", {}, "Member of ", campaignLink(a.campaign_id), ".") : null,
    await actionPanel("account", a.account_id),
    h("h2", {}, "Reasons"),
    h("p", { class: "mono" }, (a.reasons ?? []).join(", ") || "none"),
    history.length > 1
      ? [
          h("h2", {}, "Risk at each recorded decision"),
          chart(
            {
              type: "line",
              data: { labels: history.map((d) => when(d.ts)), datasets: [{ label: "risk", data: history.map((d) => d.risk), borderColor: "#b3261e", pointRadius: 2 }] },
              options: { ...BASE_OPTIONS, scales: { y: { min: 0, max: 1 }, x: { ticks: { maxTicksLimit: 8 } } }, plugins: { legend: { display: false } } },
            },
            "risk history",
          ),
        ]
      : null,
    h("h2", {}, "Recent exchanges (secrets masked)"),
    a.recent_exchanges === null
      ? h("p", { class: "error" }, "The store could not be read.")
      : table(
          [["time"], ["model"], ["status", "num"], ["completion", "num"], ["reasoning", "num"], ["prompt"]],
          (a.recent_exchanges ?? []).map((x) => h("tr", {}, h("td", {}, when(x.ts)), h("td", {}, x.model ?? "–"), h("td", { class: "num" }, x.status ?? "–"), h("td", { class: "num" }, num(x.completion_tokens)), h("td", { class: "num" }, num(x.reasoning_tokens)), h("td", { class: "prompt" }, x.prompt))),
        ),
    live()
      ? [
          h("h2", {}, "Recent decisions"),
          a.recent_decisions === null
            ? h("p", { class: "error" }, "The store could not be read.")
            : table(
                [["time"], ["action"], ["rule"], ["risk", "num"], ["detail"]],
                decisions.slice(0, 20).map((d) => h("tr", {}, h("td", {}, when(d.ts)), h("td", { class: "mono" }, (d.actions ?? []).join(", ") + (d.enforced ? "" : " (not enforced)")), h("td", {}, d.rule ?? "default"), h("td", { class: "num" }, pct(d.risk)), h("td", {}, d.detail ?? ""))),
              ),
        ]
      : null,
  ];
}

async function policy() {
  const p = await api("/policy");
  let actions = [];
  try {
    actions = (await api("/actions")).items;
  } catch {
    actions = [];
  }
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
  const validate = h(
    "button",
    {
      type: "button",
      onclick: async () => {
        try {
          const r = await api("/policy/validate", { method: "POST" });
          status.className = "ok";
          status.textContent = `The file is valid: ${num(r.rules)} rules (not applied).`;
        } catch (e) {
          status.className = "error";
          status.textContent = `The file would be rejected: ${e.message}`;
        }
      },
    },
    "Check file",
  );
  return [
    h("h1", {}, "Policy"),
    status,
    h("div", { class: "buttons" }, validate, reload),
    h("h2", {}, "Rules, in order"),
    table(
      [["#", "num"], ["name"], ["when"], ["actions"], ["mode"], ["source"]],
      p.rules.map((r, i) => h("tr", {}, h("td", { class: "num" }, i + 1), h("td", {}, r.name), h("td", { class: "mono" }, r.when), h("td", { class: "mono" }, r.actions.join(", ")), h("td", {}, r.shadow ? "shadow" : "enforce"), h("td", {}, r.source ?? "file"))),
    ),
    h("h2", {}, "Actions applied from the dashboard"),
    table(
      [["id"], ["target"], ["action"], ["applied"], ["by"], ["note"]],
      actions.map((a) => h("tr", {}, h("td", { class: "mono" }, a.id), h("td", {}, a.target.kind === "campaign" ? campaignLink(a.target.id) : accountLink(a.target.id)), h("td", { class: "mono" }, a.action), h("td", {}, when(a.created_at)), h("td", {}, a.actor), h("td", {}, a.note ?? ""))),
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
      [["source"], ["keyed"], ["objects", "num"], ["matchable", "num"], ["unsupported", "num"], ["refused", "num"], ["requests matched", "num"]],
      (s.sources ?? []).map((x) => h("tr", {}, h("td", {}, x.source), h("td", {}, x.keyed ? "yes" : "no key"), h("td", { class: "num" }, num(x.objects)), h("td", { class: "num" }, num(x.matchable)), h("td", { class: "num" }, num(x.unsupported)), h("td", { class: "num" }, num(x.refused)), h("td", { class: "num" }, num(s.matches?.[x.source] ?? 0)))),
    ),
    h("h2", {}, "Imports (latest 20)"),
    s.imports_error
      ? h("p", { class: "error" }, `The imports could not be read: ${s.imports_error}`)
      : table(
          [["pulled"], ["source"], ["from"], ["collection"], ["objects", "num"], ["matchable", "num"], ["unsupported", "num"]],
          (s.imports ?? []).map((i) => h("tr", {}, h("td", {}, when(i.pulled_at)), h("td", {}, i.source), h("td", { class: "mono" }, i.url), h("td", { class: "mono" }, i.collection), h("td", { class: "num" }, num(i.objects)), h("td", { class: "num" }, num(i.matchable)), h("td", { class: "num" }, num(i.unsupported)))),
        ),
    h("p", { class: "muted" }, "Exports: moat intel export (a STIX bundle of the campaigns detected) and moat intel publish / push (to a TAXII collection partners pull from)."),
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
          h("td", {}, whenMs(w.last_success_at_ms)),
          h("td", { class: w.last_error ? "bad" : "" }, w.last_error ? `${w.last_error} (${whenMs(w.last_error_at_ms)})` : "–"),
        ),
      ),
    ),
    h("h2", {}, "Last deliveries"),
    table(
      [["time"], ["webhook"], ["alerts", "num"], ["outcome"], ["attempts", "num"], ["error"]],
      [...st.recent].reverse().map((d) => h("tr", {}, h("td", {}, whenMs(d.at_ms)), h("td", {}, d.webhook), h("td", { class: "num" }, num(d.alerts)), h("td", { class: d.outcome === "delivered" ? "ok" : "bad" }, d.outcome), h("td", { class: "num" }, num(d.attempts)), h("td", {}, d.error ?? ""))),
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

/** Pages only a live gateway has. */
const LIVE_ONLY = new Set(["policy", "intel", "alerts"]);

function route() {
  const [path, q] = (location.hash.slice(1) || "/overview").split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  const query = new URLSearchParams(q ?? "");
  if (LIVE_ONLY.has(parts[0]) && !live()) return overview;
  switch (parts[0]) {
    case "campaigns":
      return parts[1] ? () => campaign(parts[1]) : () => campaigns(query);
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
  const section = (location.hash.slice(2) || "overview").split(/[/?]/)[0];
  for (const a of document.querySelectorAll("header nav a")) {
    a.classList.toggle("active", a.getAttribute("href") === `#/${section}`);
    a.hidden = LIVE_ONLY.has(a.getAttribute("href").slice(2)) && !live();
  }
  if (about.auth && !snapshot && !sessionStorage.getItem(TOKEN_KEY)) {
    main.replaceChildren(login());
    return;
  }
  logout.hidden = !about.auth || Boolean(snapshot);
  let content;
  try {
    mounted = [];
    content = await route()();
  } catch (e) {
    if (e instanceof Unauthorized) {
      sessionStorage.removeItem(TOKEN_KEY);
      content = login("That token was refused.");
    } else if (e instanceof NotInSnapshot) {
      content = h("p", { class: "muted" }, "This page is not in the report (it keeps the largest campaigns and the riskiest accounts); `moat ui` shows every one.");
    } else {
      content = h("p", { class: "error" }, `Could not load this page: ${e.message}`);
    }
  }
  for (const w of widgets) w.destroy();
  widgets = [];
  main.replaceChildren(...[content].flat(Infinity).filter(Boolean));
  for (const f of mounted) f();
  mounted = [];
}

logout.addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  render();
});
window.addEventListener("hashchange", render);

(async () => {
  if (snapshot) {
    about = { ...snapshot.about, read_only: true, auth: false };
  } else {
    try {
      const r = await fetch("/admin/about", { cache: "no-store" });
      if (r.ok) about = await r.json();
    } catch {
      // An older gateway: live, with a token.
    }
  }
  document.body.dataset.mode = snapshot ? "report" : about.mode;
  await render();
})();

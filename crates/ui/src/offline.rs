//! `moat ui`: the dashboard's admin API answered from the output of `moat analyze` and the
//! traffic it analyzed, read-only, with no gateway, store or other service behind it.
//!
//! [`OfflineData::builder`] takes the detections, [`OfflineBuilder::add_account`] the side
//! facts of the accounts file, [`OfflineBuilder::observe`] every exchange of the traffic once
//! (file order), and [`OfflineBuilder::finish`] gives the [`OfflineData`] that [`router`]
//! serves. Memory grows with the accounts and campaigns, never with the exchanges: per account
//! its detection, its [`Usage`] and, for flagged accounts and campaign members only, its
//! latest [`RECENT_EXCHANGES`] exchanges (prompt sanitised and cut to [`RECENT_PROMPT_CHARS`]
//! characters); per campaign a [`CampaignInsight`], whose view is drawn the first time it is
//! asked for and then kept.
//!
//! The answers are the gateway's JSON: the same [`crate::data`] rows and pages and the same
//! error body (`{"error": {"message", "type", "param", "code"}}`), so the page does not care
//! which one it talks to; `/admin/about` tells it that this one is offline, and what only a
//! live gateway has (timeline, policy, alerts, intelligence, actions, decisions, audit)
//! answers 404 `not_available_offline`. A detections file that contradicts itself (repeated
//! ids, campaign members without an account line) is served as best it can be and described in
//! [`OfflineData::notes`]. Not here: reading the files and listening (`moat ui` in the CLI).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock};

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{any, get};
use axum::{Json, Router};
use moat_report::{sanitize_prompt, CampaignInsight, CampaignView, InsightOptions};
use moat_types::{Account, AccountDetection, CampaignDetection, Detection, Exchange, Timestamp};
use serde::Serialize;
use serde_json::json;

use crate::data::{
    page_accounts, page_campaigns, AccountPage, AccountQuery, AccountRow, CampaignQuery,
    CampaignRow, Page, QueryError, Summary, Usage, DEFAULT_PAGE, MAX_PAGE,
};

/// Exchanges kept per followed account (flagged, or a campaign member) for its page.
pub const RECENT_EXCHANGES: usize = 20;
/// Longest prompt of a kept exchange, in characters.
pub const RECENT_PROMPT_CHARS: usize = 300;
/// Account or campaign ids quoted in one note.
const NOTE_EXAMPLES: usize = 3;
/// Admin endpoints of the live gateway that have nothing to show offline.
const LIVE_ONLY: [&str; 7] = [
    "timeline",
    "policy",
    "alerts",
    "intel",
    "actions",
    "decisions",
    "audit",
];

/// One exchange as an account's page lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecentExchange {
    /// When it was answered.
    pub ts: Timestamp,
    /// The requested model.
    pub model: Option<String>,
    /// The last user message (or completion prompt), sanitised and cut to
    /// [`RECENT_PROMPT_CHARS`] characters.
    pub prompt: String,
    /// HTTP status returned.
    pub status: Option<u16>,
    /// Answer tokens.
    pub completion_tokens: Option<u64>,
    /// Reasoning tokens.
    pub reasoning_tokens: Option<u64>,
}

impl RecentExchange {
    fn of(x: &Exchange) -> Self {
        let r = x.response.as_ref();
        RecentExchange {
            ts: x.ts,
            model: x.request.model.clone(),
            prompt: sanitize_prompt(&x.last_user_text(), RECENT_PROMPT_CHARS),
            status: r.and_then(|r| r.status),
            completion_tokens: r.and_then(|r| r.completion_tokens),
            reasoning_tokens: r.and_then(|r| r.reasoning_tokens),
        }
    }
}

/// One account: its verdict, its traffic, and what its page lists.
#[derive(Debug)]
struct AccountEntry {
    detection: AccountDetection,
    usage: Usage,
    /// Indices of the campaigns that list it (almost always none or one).
    campaigns: Vec<usize>,
    /// From when its exchanges count as answered after detection: its `flagged_at` or the
    /// earliest `first_detected_at` of its campaigns.
    detected_from: Option<Timestamp>,
    /// Its latest exchanges, oldest first; `None` for accounts not followed.
    recent: Option<Vec<RecentExchange>>,
}

impl AccountEntry {
    fn new(detection: AccountDetection) -> Self {
        AccountEntry {
            detected_from: detection.flagged.then_some(detection.flagged_at).flatten(),
            recent: detection.flagged.then(Vec::new),
            detection,
            usage: Usage::default(),
            campaigns: Vec::new(),
        }
    }

    fn row(&self) -> AccountRow {
        let d = &self.detection;
        AccountRow {
            account_id: d.account_id.clone(),
            risk: d.risk,
            flagged: d.flagged,
            flagged_at: d.flagged_at,
            campaign_id: d.campaign_id.clone(),
            reasons: d.reasons.clone(),
            usage: Some(self.usage),
        }
    }

    fn remember(&mut self, x: &Exchange) {
        let Some(recent) = self.recent.as_mut() else {
            return;
        };
        // Kept in time order whatever the input order; an exchange older than every kept one
        // is not even sanitised once the list is full.
        if recent.len() >= RECENT_EXCHANGES && recent.first().is_some_and(|r| x.ts < r.ts) {
            return;
        }
        let at = recent.partition_point(|r| r.ts <= x.ts);
        recent.insert(at, RecentExchange::of(x));
        if recent.len() > RECENT_EXCHANGES {
            recent.remove(0);
        }
    }
}

/// A campaign during the pass.
#[derive(Debug)]
struct BuildingCampaign {
    detection: CampaignDetection,
    /// Indices of its distinct members.
    members: Vec<usize>,
    insight: CampaignInsight,
}

/// A campaign once the pass is over.
#[derive(Debug)]
struct CampaignEntry {
    detection: CampaignDetection,
    row: CampaignRow,
    insight: CampaignInsight,
    view: OnceLock<CampaignView>,
}

/// Folds the detections, the accounts file and the traffic into an [`OfflineData`]; see the
/// module documentation.
#[derive(Debug)]
pub struct OfflineBuilder {
    /// Sorted by account id.
    accounts: Vec<AccountEntry>,
    index: HashMap<Box<str>, usize>,
    campaigns: Vec<BuildingCampaign>,
    exchanges: u64,
    /// Exchanges of accounts without an account line.
    unlisted: u64,
    notes: Vec<String>,
}

/// What `moat ui` serves: the accounts and campaigns of one analysis with their traffic,
/// aggregated. Immutable; share it behind an [`Arc`].
#[derive(Debug)]
pub struct OfflineData {
    /// Sorted by account id.
    accounts: Vec<AccountEntry>,
    /// In the detections file's order.
    campaigns: Vec<CampaignEntry>,
    campaign_index: HashMap<String, usize>,
    summary: Summary,
    notes: Vec<String>,
}

/// `what` with the count and the first few ids of `ids`, or nothing when `ids` is empty.
fn note(notes: &mut Vec<String>, what: &str, ids: &[String]) {
    if ids.is_empty() {
        return;
    }
    let shown: Vec<&str> = ids.iter().take(NOTE_EXAMPLES).map(String::as_str).collect();
    let more = if ids.len() > NOTE_EXAMPLES {
        ", …"
    } else {
        ""
    };
    notes.push(format!("{} {what} ({}{more})", ids.len(), shown.join(", ")));
}

impl OfflineData {
    /// Starts from the detections of one analysis (`moat analyze --out`), in any order.
    pub fn builder(detections: Vec<Detection>) -> OfflineBuilder {
        let mut notes = Vec::new();
        let mut account_lines = Vec::new();
        let mut campaign_lines = Vec::new();
        for d in detections {
            match d {
                Detection::Account(a) => account_lines.push(a),
                Detection::Campaign(c) => campaign_lines.push(c),
            }
        }

        // A repeated id keeps its first line.
        let mut seen = HashSet::new();
        let mut repeated = Vec::new();
        campaign_lines.retain(|c| {
            let first = seen.insert(c.campaign_id.clone());
            if !first {
                repeated.push(c.campaign_id.clone());
            }
            first
        });
        note(
            &mut notes,
            "campaign lines repeat an earlier campaign id and were ignored",
            &repeated,
        );
        account_lines.sort_by(|a, b| a.account_id.cmp(&b.account_id));
        let mut repeated = Vec::new();
        account_lines.dedup_by(|later, first| {
            let same = later.account_id == first.account_id;
            if same {
                repeated.push(later.account_id.clone());
            }
            same
        });
        note(
            &mut notes,
            "account lines repeat an earlier account id and were ignored",
            &repeated,
        );
        let unknown: Vec<String> = account_lines
            .iter()
            .filter_map(|a| a.campaign_id.as_ref())
            .filter(|c| !seen.contains(*c))
            .cloned()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        note(
            &mut notes,
            "campaign ids named by account lines have no campaign line",
            &unknown,
        );

        // Members without an account line still get a row, so that their traffic is counted.
        let mut missing: Vec<AccountDetection> = Vec::new();
        let mut added = HashSet::new();
        for c in &campaign_lines {
            for m in &c.accounts {
                let listed = account_lines
                    .binary_search_by(|a| a.account_id.as_str().cmp(m))
                    .is_ok();
                if !listed && added.insert(m.clone()) {
                    missing.push(AccountDetection {
                        account_id: m.clone(),
                        risk: 0.0,
                        flagged: false,
                        flagged_at: None,
                        campaign_id: Some(c.campaign_id.clone()),
                        reasons: Vec::new(),
                    });
                }
            }
        }
        if !missing.is_empty() {
            let ids: Vec<String> = missing.iter().map(|a| a.account_id.clone()).collect();
            note(
                &mut notes,
                "campaign members have no account line and are listed unflagged",
                &ids,
            );
            account_lines.extend(missing);
            account_lines.sort_by(|a, b| a.account_id.cmp(&b.account_id));
        }

        let mut accounts: Vec<AccountEntry> =
            account_lines.into_iter().map(AccountEntry::new).collect();
        let index: HashMap<Box<str>, usize> = accounts
            .iter()
            .enumerate()
            .map(|(i, a)| (a.detection.account_id.as_str().into(), i))
            .collect();
        let mut campaigns = Vec::with_capacity(campaign_lines.len());
        for (ci, c) in campaign_lines.into_iter().enumerate() {
            let mut members = Vec::with_capacity(c.accounts.len());
            for m in &c.accounts {
                let Some(&i) = index.get(m.as_str()) else {
                    continue;
                };
                let Some(entry) = accounts.get_mut(i) else {
                    continue;
                };
                if entry.campaigns.contains(&ci) {
                    continue;
                }
                entry.campaigns.push(ci);
                entry.recent.get_or_insert_with(Vec::new);
                if let Some(t) = c.first_detected_at {
                    entry.detected_from = Some(entry.detected_from.map_or(t, |d| d.min(t)));
                }
                members.push(i);
            }
            campaigns.push(BuildingCampaign {
                insight: CampaignInsight::new(&c, InsightOptions::default()),
                detection: c,
                members,
            });
        }
        OfflineBuilder {
            accounts,
            index,
            campaigns,
            exchanges: 0,
            unlisted: 0,
            notes,
        }
    }

    /// The overview's numbers.
    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    /// What in the input was inconsistent and how it was handled, one sentence each.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// A page of the campaigns listing.
    pub fn campaign_page(&self, q: &CampaignQuery) -> Result<Page<CampaignRow>, QueryError> {
        page_campaigns(self.campaigns.iter().map(|c| c.row.clone()).collect(), q)
    }

    /// A page of the accounts listing, in id order. Walks the accounts from `after` only
    /// until the page is full.
    pub fn account_page(&self, q: &AccountQuery) -> AccountPage {
        let limit = q.limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE);
        let start = q.after.as_deref().map_or(0, |after| {
            self.accounts
                .partition_point(|a| a.detection.account_id.as_str() <= after)
        });
        let rows: Vec<AccountRow> = self
            .accounts
            .get(start..)
            .unwrap_or_default()
            .iter()
            .filter(|a| {
                let d = &a.detection;
                q.selects(&d.account_id, d.flagged, d.campaign_id.as_deref())
            })
            // One more than the page tells whether another page follows.
            .take(limit + 1)
            .map(AccountEntry::row)
            .collect();
        page_accounts(rows, q)
    }

    fn account_entry(&self, id: &str) -> Option<&AccountEntry> {
        let i = self
            .accounts
            .binary_search_by(|a| a.detection.account_id.as_str().cmp(id))
            .ok()?;
        self.accounts.get(i)
    }

    /// One account's row.
    pub fn account(&self, id: &str) -> Option<AccountRow> {
        self.account_entry(id).map(AccountEntry::row)
    }

    /// One account's latest exchanges, oldest first (empty for accounts neither flagged nor
    /// in a campaign).
    pub fn recent_exchanges(&self, id: &str) -> &[RecentExchange] {
        self.account_entry(id)
            .and_then(|a| a.recent.as_deref())
            .unwrap_or_default()
    }

    fn campaign_entry(&self, id: &str) -> Option<&CampaignEntry> {
        self.campaign_index
            .get(id)
            .and_then(|&i| self.campaigns.get(i))
    }

    /// One campaign's detection, as the detections file gives it.
    pub fn campaign(&self, id: &str) -> Option<&CampaignDetection> {
        self.campaign_entry(id).map(|c| &c.detection)
    }

    /// One campaign's page (drawn on the first call, then kept).
    pub fn campaign_view(&self, id: &str) -> Option<&CampaignView> {
        self.campaign_entry(id)
            .map(|c| c.view.get_or_init(|| c.insight.view()))
    }
}

impl OfflineBuilder {
    /// Side facts of an account (its payment fingerprint ties campaign members together);
    /// accounts in no campaign are ignored.
    pub fn add_account(&mut self, account: &Account) {
        let Some(entry) = self
            .index
            .get(account.account_id.as_str())
            .and_then(|&i| self.accounts.get(i))
        else {
            return;
        };
        for &c in &entry.campaigns {
            if let Some(c) = self.campaigns.get_mut(c) {
                c.insight.add_account(account);
            }
        }
    }

    /// One exchange of the traffic. Exchanges of accounts without an account line count in
    /// the total only (and in a note).
    pub fn observe(&mut self, x: &Exchange) {
        self.exchanges += 1;
        let Some(entry) = self
            .index
            .get(x.account_id.as_str())
            .and_then(|&i| self.accounts.get_mut(i))
        else {
            self.unlisted += 1;
            return;
        };
        let detected = entry.detected_from.is_some_and(|t| t <= x.ts);
        entry.usage.add(x, detected);
        for &c in &entry.campaigns {
            if let Some(c) = self.campaigns.get_mut(c) {
                c.insight.observe(x);
            }
        }
        entry.remember(x);
    }

    /// Exchanges observed so far.
    pub fn exchanges(&self) -> u64 {
        self.exchanges
    }

    /// Totals the traffic per campaign and for the overview.
    pub fn finish(mut self) -> OfflineData {
        if self.unlisted > 0 {
            self.notes.push(format!(
                "{} exchanges are of accounts without an account line (is the detections file \
                 the analysis of this traffic?): counted in the total exchanges only",
                self.unlisted
            ));
        }
        let mut summary = Summary {
            mode: "offline",
            accounts: self.accounts.len(),
            exchanges: self.exchanges,
            campaigns: self.campaigns.len(),
            ..Summary::default()
        };
        for a in &self.accounts {
            summary.flagged += usize::from(a.detection.flagged);
            if !a.campaigns.is_empty() {
                summary.campaign_members += 1;
                summary.campaign_reasoning_tokens = summary
                    .campaign_reasoning_tokens
                    .saturating_add(a.usage.reasoning_tokens);
                summary.campaign_after_detection += a.usage.after_detection;
            }
        }
        let mut campaign_index = HashMap::with_capacity(self.campaigns.len());
        let mut campaigns = Vec::with_capacity(self.campaigns.len());
        for (i, c) in self.campaigns.into_iter().enumerate() {
            let mut usage = Usage::default();
            for &m in &c.members {
                if let Some(a) = self.accounts.get(m) {
                    usage.merge(&a.usage);
                }
            }
            let d = &c.detection;
            let row = CampaignRow::new(
                &d.campaign_id,
                d.score,
                c.members.len(),
                d.first_detected_at,
                &usage,
            );
            campaign_index.insert(d.campaign_id.clone(), i);
            campaigns.push(CampaignEntry {
                detection: c.detection,
                row,
                insight: c.insight,
                view: OnceLock::new(),
            });
        }
        OfflineData {
            accounts: self.accounts,
            campaigns,
            campaign_index,
            summary,
            notes: self.notes,
        }
    }
}

/// How [`router`] is reached.
#[derive(Clone, Default)]
pub struct Access {
    /// What the data was read from, shown by `/admin/about` (the detections file's path).
    pub source: String,
    /// The bearer token `/admin/*` requires (`/admin/about` excepted); `None`: no token.
    pub token: Option<String>,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access")
            .field("source", &self.source)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// What every handler shares.
struct Served {
    data: Arc<OfflineData>,
    access: Access,
}

type St = State<Arc<Served>>;

/// The offline server's routes: `/health`, `/` (redirected to the page), the dashboard's page
/// and files ([`crate::router`]), and the read-only admin API described in the module
/// documentation.
pub fn router(data: Arc<OfflineData>, access: Access) -> Router {
    let st = Arc::new(Served { data, access });
    let mut admin = Router::new()
        .route("/admin/summary", get(summary))
        .route("/admin/campaigns", get(campaigns))
        .route("/admin/campaigns/{id}", get(campaign))
        .route("/admin/campaigns/{id}/view", get(campaign_view))
        .route("/admin/accounts", get(accounts))
        .route("/admin/accounts/{id}", get(account));
    for name in LIVE_ONLY {
        admin = admin
            .route(&format!("/admin/{name}"), any(live_only))
            .route(&format!("/admin/{name}/{{*rest}}"), any(live_only));
    }
    let admin = admin.route_layer(middleware::from_fn_with_state(
        Arc::clone(&st),
        require_token,
    ));
    Router::new()
        .route("/health", get(health))
        .route("/", get(|| async { Redirect::to("/ui/") }))
        .route("/admin/about", get(about))
        .merge(admin)
        .merge(crate::router())
        .fallback(|| async { error(StatusCode::NOT_FOUND, "not_found", "no such endpoint") })
        .with_state(st)
}

/// The gateway's error body: `{"error": {"message", "type", "param", "code"}}`.
fn error(status: StatusCode, code: &'static str, message: impl Into<String>) -> Response {
    let kind = match status.as_u16() {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        400..=499 => "invalid_request_error",
        _ => "server_error",
    };
    let body = json!({
        "error": { "message": message.into(), "type": kind, "param": null, "code": code }
    });
    (status, Json(body)).into_response()
}

fn bad_query(reason: &str) -> Response {
    error(StatusCode::BAD_REQUEST, "invalid_query", reason)
}

/// Whether `Authorization: Bearer` carries `expected`, compared in time independent of where
/// they differ.
fn bearer_matches(headers: &HeaderMap, expected: &str) -> bool {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let (a, b) = (given.as_bytes(), expected.as_bytes());
    let mut diff = a.len() ^ b.len();
    for (i, &e) in b.iter().enumerate() {
        diff |= usize::from(a.get(i).copied().unwrap_or(0) ^ e);
    }
    diff == 0
}

async fn require_token(State(st): St, req: Request, next: Next) -> Response {
    if let Some(expected) = st.access.token.as_deref() {
        if !bearer_matches(req.headers(), expected) {
            return error(
                StatusCode::UNAUTHORIZED,
                "invalid_admin_token",
                "missing or wrong token",
            );
        }
    }
    next.run(req).await
}

async fn health() -> Response {
    Json(json!({ "status": "ok", "mode": "offline" })).into_response()
}

async fn about(State(st): St) -> Response {
    Json(json!({
        "mode": "offline",
        "read_only": true,
        "auth": st.access.token.is_some(),
        "source": st.access.source,
    }))
    .into_response()
}

async fn live_only() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "not_available_offline",
        "only a live gateway (moat serve) has this; moat ui shows the output of moat analyze",
    )
}

async fn summary(State(st): St) -> Response {
    Json(st.data.summary()).into_response()
}

async fn campaigns(State(st): St, q: Result<Query<CampaignQuery>, QueryRejection>) -> Response {
    let Query(q) = match q {
        Ok(q) => q,
        Err(e) => return bad_query(&e.body_text()),
    };
    match st.data.campaign_page(&q) {
        Ok(page) => Json(page).into_response(),
        Err(e) => bad_query(&e.0),
    }
}

fn no_campaign() -> Response {
    error(StatusCode::NOT_FOUND, "not_found", "no such campaign")
}

async fn campaign(State(st): St, Path(id): Path<String>) -> Response {
    match st.data.campaign(&id) {
        Some(c) => Json(c).into_response(),
        None => no_campaign(),
    }
}

async fn campaign_view(State(st): St, Path(id): Path<String>) -> Response {
    match st.data.campaign_view(&id) {
        Some(v) => Json(v).into_response(),
        None => no_campaign(),
    }
}

async fn accounts(State(st): St, q: Result<Query<AccountQuery>, QueryRejection>) -> Response {
    match q {
        Ok(Query(q)) => Json(st.data.account_page(&q)).into_response(),
        Err(e) => bad_query(&e.body_text()),
    }
}

/// An account's page: its row, its latest exchanges (newest first, as the gateway lists them),
/// and no decisions (nothing was enforced).
#[derive(Serialize)]
struct AccountDetail<'a> {
    #[serde(flatten)]
    row: AccountRow,
    recent_exchanges: Vec<&'a RecentExchange>,
    recent_decisions: [(); 0],
}

/// The JSON of `/admin/accounts/{id}`, shared with the report.
pub(crate) fn account_detail(data: &OfflineData, id: &str) -> Option<serde_json::Value> {
    let row = data.account(id)?;
    serde_json::to_value(AccountDetail {
        row,
        recent_exchanges: data.recent_exchanges(id).iter().rev().collect(),
        recent_decisions: [],
    })
    .ok()
}

async fn account(State(st): St, Path(id): Path<String>) -> Response {
    match account_detail(&st.data, &id) {
        Some(v) => Json(v).into_response(),
        None => error(StatusCode::NOT_FOUND, "not_found", "no such account"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use axum::body::Body;
    use http_body_util::BodyExt;
    use moat_types::{Client, Message, Request as XRequest, Response as XResponse, Signal};
    use tower::ServiceExt;

    const T0: i64 = 1_775_000_000_000;

    fn account(id: &str, flagged_at: Option<i64>, campaign: Option<&str>) -> Detection {
        Detection::Account(AccountDetection {
            account_id: id.to_owned(),
            risk: if flagged_at.is_some() { 0.9 } else { 0.1 },
            flagged: flagged_at.is_some(),
            flagged_at: flagged_at.map(Timestamp::from_millis),
            campaign_id: campaign.map(str::to_owned),
            reasons: flagged_at
                .map(|_| vec!["cot_elicitation".to_owned()])
                .unwrap_or_default(),
        })
    }

    fn campaign(id: &str, members: &[&str], detected: Option<i64>) -> Detection {
        Detection::Campaign(CampaignDetection {
            campaign_id: id.to_owned(),
            accounts: members.iter().map(|m| (*m).to_owned()).collect(),
            score: 0.95,
            first_detected_at: detected.map(Timestamp::from_millis),
            signals: vec![Signal {
                name: "shared_template".to_owned(),
                detail: "one template".to_owned(),
            }],
        })
    }

    fn exchange(account: &str, ts: i64, prompt: &str) -> Exchange {
        Exchange {
            v: 1,
            ts: Timestamp::from_millis(ts),
            request_id: None,
            account_id: account.to_owned(),
            api_key_id: None,
            client: Some(Client {
                ip: Some("203.0.113.7".to_owned()),
                asn: Some(64500),
                country: None,
                user_agent: Some("OpenAI/Python 1.40.0".to_owned()),
                tls_ja4: None,
            }),
            request: XRequest {
                endpoint: None,
                model: Some("frontier-1".to_owned()),
                messages: vec![Message::text("user", prompt)],
                prompt: None,
                params: None,
            },
            response: Some(XResponse {
                status: Some(200),
                completion_tokens: Some(10),
                reasoning_tokens: Some(100),
                ..XResponse::default()
            }),
        }
    }

    /// Two campaign members (`a1` flagged at T0+50s, campaign detected at T0+100s), a flagged
    /// loner `a3`, a benign `a4`.
    fn small() -> OfflineData {
        let mut b = OfflineData::builder(vec![
            account("a1", Some(T0 + 50_000), Some("C-1")),
            account("a2", None, Some("C-1")),
            account("a3", Some(T0), None),
            account("a4", None, None),
            campaign("C-1", &["a1", "a2"], Some(T0 + 100_000)),
        ]);
        b.add_account(&Account {
            account_id: "a1".to_owned(),
            created_at: None,
            email_domain: None,
            payment_fingerprint: Some("pf_1".to_owned()),
            country: None,
            tier: None,
            verified: None,
        });
        for i in 0..30 {
            let ts = T0 + i * 10_000;
            for a in ["a1", "a2", "a3", "a4"] {
                let prompt = format!("Solve step by step, key sk-ABCDEFGHIJKLMNOPQRSTUVWX {i}");
                b.observe(&exchange(a, ts, &prompt));
            }
        }
        b.observe(&exchange("stranger", T0, "hello"));
        b.finish()
    }

    #[test]
    fn usage_counts_after_flagging_or_campaign_detection() {
        let d = small();
        let u = |id: &str| d.account(id).unwrap().usage.unwrap();
        // a1: flagged at 50 s, so exchanges 5..30 (ts >= 50 s) are after detection.
        assert_eq!((u("a1").exchanges, u("a1").after_detection), (30, 25));
        // a2: only the campaign's detection at 100 s.
        assert_eq!(u("a2").after_detection, 20);
        assert_eq!(u("a3").after_detection, 30);
        assert_eq!(u("a4").after_detection, 0);
        assert_eq!(u("a4").reasoning_tokens, 3000);

        let s = d.summary();
        assert_eq!(s.mode, "offline");
        assert_eq!((s.accounts, s.flagged, s.campaigns), (4, 2, 1));
        assert_eq!((s.campaign_members, s.exchanges), (2, 121));
        assert_eq!(s.campaign_reasoning_tokens, 6000);
        assert_eq!(s.campaign_after_detection, 45);
        assert_eq!(d.notes().len(), 1, "{:?}", d.notes());
        assert!(d.notes()[0].starts_with("1 exchanges"), "{:?}", d.notes());

        let page = d.campaign_page(&CampaignQuery::default()).unwrap();
        let row = &page.items[0];
        assert_eq!((row.size, row.exchanges, row.after_detection), (2, 60, 45));
        assert_eq!(row.first_seen, Some(Timestamp::from_millis(T0)));
        let view = d.campaign_view("C-1").unwrap();
        assert_eq!(view.exchanges, 60);
        // Both members share an address block, an ASN, a user agent and a template.
        assert!(view.graph.nodes.iter().any(|n| n.kind == "ip_block"));
        assert!(d.campaign_view("C-2").is_none());
    }

    #[test]
    fn recent_exchanges_are_the_latest_of_followed_accounts_sanitised() {
        let d = small();
        for id in ["a1", "a2", "a3"] {
            let r = d.recent_exchanges(id);
            assert_eq!(r.len(), RECENT_EXCHANGES, "{id}");
            assert!(r.windows(2).all(|w| w[0].ts <= w[1].ts));
            assert_eq!(r.last().unwrap().ts, Timestamp::from_millis(T0 + 290_000));
            assert!(r.iter().all(|x| !x.prompt.contains("sk-ABCDEF")), "{r:?}");
        }
        assert!(d.recent_exchanges("a4").is_empty());
        assert!(d.recent_exchanges("nobody").is_empty());

        // Out of order input keeps the newest.
        let mut b = OfflineData::builder(vec![account("x", Some(T0), None)]);
        for i in (0..50).rev() {
            b.observe(&exchange("x", T0 + i, "q"));
        }
        let d = b.finish();
        let r = d.recent_exchanges("x");
        assert_eq!(r.len(), RECENT_EXCHANGES);
        assert_eq!(r[0].ts, Timestamp::from_millis(T0 + 30));
        assert_eq!(r[19].ts, Timestamp::from_millis(T0 + 49));
    }

    #[test]
    fn an_inconsistent_detections_file_is_served_and_described() {
        let d = OfflineData::builder(vec![
            account("a1", None, Some("C-9")),
            account("a1", Some(T0), None),
            campaign("C-1", &["a1", "ghost", "ghost"], None),
            campaign("C-1", &["a1"], None),
        ])
        .finish();
        assert_eq!(d.notes().len(), 4, "{:?}", d.notes());
        let ghost = d.account("ghost").unwrap();
        assert_eq!(ghost.campaign_id.as_deref(), Some("C-1"));
        assert!(!ghost.flagged);
        // The first line of a1 is kept.
        assert!(!d.account("a1").unwrap().flagged);
        assert_eq!(d.summary().campaign_members, 2);
        assert_eq!(d.campaign("C-1").unwrap().accounts.len(), 3);
    }

    async fn call(
        app: &Router,
        path: &str,
        token: Option<&str>,
    ) -> (StatusCode, serde_json::Value) {
        let mut req = axum::http::Request::get(path);
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let resp = app
            .clone()
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let v = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        (status, v)
    }

    #[tokio::test]
    async fn the_api_answers_the_gateways_json() {
        let app = router(
            Arc::new(small()),
            Access {
                source: "d.jsonl".to_owned(),
                token: None,
            },
        );
        let (s, v) = call(&app, "/admin/about", None).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(
            v,
            json!({"mode": "offline", "read_only": true, "auth": false, "source": "d.jsonl"})
        );
        let (_, v) = call(&app, "/health", None).await;
        assert_eq!(v, json!({"status": "ok", "mode": "offline"}));
        let (_, v) = call(&app, "/admin/summary", None).await;
        assert_eq!(
            (v["mode"].as_str(), v["accounts"].as_u64()),
            (Some("offline"), Some(4))
        );

        let (s, v) = call(&app, "/admin/campaigns?sort=score&limit=5", None).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(
            (v["total"].as_u64(), v["items"][0]["exchanges"].as_u64()),
            (Some(1), Some(60))
        );
        let (s, v) = call(&app, "/admin/campaigns/C-1", None).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(v["accounts"], json!(["a1", "a2"]));
        assert_eq!(v["signals"][0]["name"], "shared_template");
        let (s, v) = call(&app, "/admin/campaigns/C-1/view", None).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(v["exchanges"].as_u64(), Some(60));
        assert!(v["graph"]["nodes"].is_array());

        let (s, v) = call(&app, "/admin/accounts?flagged=true&limit=1", None).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(v["items"][0]["account_id"], "a1");
        assert_eq!(v["next"], "a1");
        let (_, v) = call(&app, "/admin/accounts?flagged=true&limit=1&after=a1", None).await;
        assert_eq!(
            (v["items"][0]["account_id"].as_str(), &v["next"]),
            (Some("a3"), &json!(null))
        );
        let (_, v) = call(&app, "/admin/accounts?campaign=C-1", None).await;
        assert_eq!(v["items"].as_array().unwrap().len(), 2);
        assert_eq!(v["items"][1]["usage"]["exchanges"].as_u64(), Some(30));

        let (s, v) = call(&app, "/admin/accounts/a1", None).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(v["campaign_id"], "C-1");
        assert_eq!(v["recent_decisions"], json!([]));
        let recent = v["recent_exchanges"].as_array().unwrap();
        assert_eq!(recent.len(), RECENT_EXCHANGES);
        // Newest first, as the gateway lists them.
        let last = recent.first().unwrap();
        assert_eq!(last["model"], "frontier-1");
        assert_eq!(
            (last["status"].as_u64(), last["reasoning_tokens"].as_u64()),
            (Some(200), Some(100))
        );
        assert!(last.get("category").is_none());
        assert!(last["prompt"]
            .as_str()
            .unwrap()
            .starts_with("Solve step by step"));

        for (path, code) in [
            ("/admin/campaigns/C-404", "not_found"),
            ("/admin/campaigns/C-404/view", "not_found"),
            ("/admin/accounts/nobody", "not_found"),
            ("/admin/policy", "not_available_offline"),
            ("/admin/policy/reload", "not_available_offline"),
            ("/admin/timeline?span_s=60", "not_available_offline"),
            ("/admin/alerts", "not_available_offline"),
            ("/admin/intel", "not_available_offline"),
            ("/admin/actions", "not_available_offline"),
            ("/admin/nothing", "not_found"),
        ] {
            let (s, v) = call(&app, path, None).await;
            assert_eq!(s, StatusCode::NOT_FOUND, "{path}");
            assert_eq!(v["error"]["code"], code, "{path}");
            assert_eq!(v["error"]["type"], "not_found_error", "{path}");
        }
        for path in [
            "/admin/campaigns?sort=nope",
            "/admin/campaigns?limit=many",
            "/admin/campaigns?colour=red",
            "/admin/accounts?flagged=maybe",
        ] {
            let (s, v) = call(&app, path, None).await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{path}");
            assert_eq!(v["error"]["code"], "invalid_query", "{path}");
            assert_eq!(v["error"]["type"], "invalid_request_error", "{path}");
            assert!(!v["error"]["message"].as_str().unwrap().is_empty());
        }

        let resp = app
            .clone()
            .oneshot(axum::http::Request::get("/").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert!(resp.status().is_redirection());
        assert_eq!(resp.headers()[header::LOCATION], "/ui/");
        let resp = app
            .clone()
            .oneshot(
                axum::http::Request::get("/ui/")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn a_token_guards_everything_but_about() {
        let app = router(
            Arc::new(small()),
            Access {
                source: "d.jsonl".to_owned(),
                token: Some("s3cret-token".to_owned()),
            },
        );
        let (s, v) = call(&app, "/admin/about", None).await;
        assert_eq!((s, &v["auth"]), (StatusCode::OK, &json!(true)));
        for path in ["/admin/summary", "/admin/accounts/a1", "/admin/policy"] {
            for token in [
                None,
                Some("wrong"),
                Some("s3cret-toke"),
                Some("s3cret-token!"),
            ] {
                let (s, v) = call(&app, path, token).await;
                assert_eq!(s, StatusCode::UNAUTHORIZED, "{path} {token:?}");
                assert_eq!(v["error"]["code"], "invalid_admin_token");
            }
        }
        let (s, _) = call(&app, "/admin/summary", Some("s3cret-token")).await;
        assert_eq!(s, StatusCode::OK);
        // The page holds no data and needs no token.
        let (s, _) = call(&app, "/health", None).await;
        assert_eq!(s, StatusCode::OK);
        assert!(!format!(
            "{:?}",
            Access {
                source: String::new(),
                token: Some("s3cret-token".into())
            }
        )
        .contains("s3cret"));
    }

    /// Memory and pages stay bounded at scale: 100,000 accounts, 1,000 campaigns of 10.
    #[test]
    fn a_hundred_thousand_accounts_and_a_thousand_campaigns_page_within_bounds() {
        const ACCOUNTS: usize = 100_000;
        const CAMPAIGNS: usize = 1_000;
        const SIZE: usize = 10;
        let id = |i: usize| format!("acct_{i:06}");
        let mut detections = Vec::with_capacity(ACCOUNTS + CAMPAIGNS);
        // Members are accounts 0..10,000 (all flagged); every 7th other account is flagged too.
        let flagged = |i: usize| i < CAMPAIGNS * SIZE || i % 7 == 0;
        for i in 0..ACCOUNTS {
            let c = (i < CAMPAIGNS * SIZE).then(|| format!("C-{:04}", i / SIZE));
            detections.push(Detection::Account(AccountDetection {
                account_id: id(i),
                risk: if flagged(i) { 0.9 } else { 0.1 },
                flagged: flagged(i),
                flagged_at: flagged(i).then(|| Timestamp::from_millis(T0)),
                campaign_id: c,
                reasons: Vec::new(),
            }));
        }
        for c in 0..CAMPAIGNS {
            detections.push(Detection::Campaign(CampaignDetection {
                campaign_id: format!("C-{c:04}"),
                accounts: (c * SIZE..(c + 1) * SIZE).map(id).collect(),
                score: 0.5 + (c % 50) as f64 / 100.0,
                first_detected_at: Some(Timestamp::from_millis(T0 + 1_000)),
                signals: Vec::new(),
            }));
        }
        let mut b = OfflineData::builder(detections);
        let mut x = exchange("", T0, "Explain your reasoning: what is 2 + 2?");
        for round in 0..2 {
            x.ts = Timestamp::from_millis(T0 + round * 1_000);
            for i in 0..ACCOUNTS {
                x.account_id = id(i);
                b.observe(&x);
            }
        }
        let d = b.finish();
        let expected_flagged = (0..ACCOUNTS).filter(|&i| flagged(i)).count();
        let s = d.summary();
        assert_eq!(
            (s.accounts, s.flagged, s.campaigns),
            (ACCOUNTS, expected_flagged, CAMPAIGNS)
        );
        assert_eq!(s.campaign_members, CAMPAIGNS * SIZE);
        assert_eq!(s.exchanges, 2 * ACCOUNTS as u64);
        assert_eq!(s.campaign_after_detection, (CAMPAIGNS * SIZE) as u64 * 2);

        let q = CampaignQuery {
            sort: Some("score".into()),
            limit: Some(100),
            offset: None,
        };
        let page = d.campaign_page(&q).unwrap();
        assert_eq!(
            (page.items.len(), page.total, page.next_offset),
            (100, CAMPAIGNS, Some(100))
        );
        assert!(page
            .items
            .iter()
            .all(|r| r.size == SIZE && r.exchanges == 2 * SIZE as u64));
        let all = d
            .campaign_page(&CampaignQuery {
                limit: Some(MAX_PAGE),
                ..CampaignQuery::default()
            })
            .unwrap();
        let sum: u64 = all.items.iter().map(|r| r.exchanges).sum();
        assert_eq!(sum, 2 * (CAMPAIGNS * SIZE) as u64);

        let mut q = AccountQuery {
            flagged: Some(true),
            limit: Some(500),
            ..AccountQuery::default()
        };
        let mut seen = 0;
        let mut last: Option<String> = None;
        loop {
            let p = d.account_page(&q);
            assert!(p.items.len() <= 500);
            for r in &p.items {
                assert!(r.flagged);
                assert!(last.as_deref() < Some(r.account_id.as_str()));
                last = Some(r.account_id.clone());
            }
            seen += p.items.len();
            match p.next {
                Some(n) => q.after = Some(n),
                None => break,
            }
        }
        assert_eq!(seen, expected_flagged);
        let one = d.account_page(&AccountQuery {
            campaign: Some("C-0999".into()),
            ..AccountQuery::default()
        });
        assert_eq!((one.items.len(), one.next.as_deref()), (SIZE, None));
        let v = d.campaign_view("C-0500").unwrap();
        assert_eq!(v.exchanges, 2 * SIZE as u64);
    }
}

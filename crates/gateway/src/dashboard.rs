//! The admin endpoints behind the dashboard's listings and detail pages: what the page asks
//! for, sorted, paged and aggregated here so that the browser gets one page whatever the number
//! of accounts and campaigns. `moat ui` answers the same paths with the same JSON over the
//! output of `moat analyze` (`moat_ui::data` holds the shared rows and paging).
//!
//! - `GET /admin/about` (no token): which mode this is (`live`), for the page.
//! - `GET /admin/summary`: the overview's numbers.
//! - `GET /admin/campaigns?sort&limit&offset`: campaigns with their members' volume, reasoning
//!   tokens, first seen and leakage ([`crate::usage`], counted in [`crate::live::Published`]).
//! - `GET /admin/campaigns/{id}`: the campaign as detected; `…/view`: its aggregates (graph,
//!   timeline, capability sweep, sample prompts) folded from the store's exchanges of its
//!   members: all of them when they number at most [`MAX_EXCHANGES_READ`], otherwise the
//!   newest of the [`MAX_MEMBERS_READ`] busiest members, an equal share each (the answer's
//!   `sample` says what was read).
//! - `GET /admin/accounts?flagged&campaign&limit&after`, `GET /admin/accounts/{id}`.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use moat_report::{sanitize_prompt, CampaignInsight, InsightOptions};
use moat_store::{DecisionQuery, ExchangeQuery, Order};
use moat_types::{CampaignDetection, Exchange};
use moat_ui::data::{
    page_accounts, page_campaigns, AccountQuery, AccountRow, CampaignQuery, CampaignRow, Summary,
    Usage, DEFAULT_PAGE, MAX_PAGE,
};
use serde_json::json;

use crate::admin::authorized;
use crate::error::GatewayError;
use crate::live::Standing;
use crate::state::AppState;

/// Members whose exchanges a campaign view reads (the busiest first).
pub const MAX_MEMBERS_READ: usize = 400;
/// Exchanges a campaign view reads in all (the newest of each member first).
pub const MAX_EXCHANGES_READ: usize = 40_000;
/// Exchanges read per member at least, when a campaign has more than [`MAX_EXCHANGES_READ`].
const MIN_PER_MEMBER: usize = 50;
/// Characters of a prompt shown on an account's page.
const PROMPT_CHARS: usize = 300;

type QueryResult<T> = Result<Query<T>, axum::extract::rejection::QueryRejection>;

fn bad_query(reason: &str) -> Response {
    GatewayError::client(StatusCode::BAD_REQUEST, "invalid_query", reason.to_owned())
        .into_response()
}

fn not_found(what: &'static str) -> Response {
    GatewayError::client(StatusCode::NOT_FOUND, "not_found", what).into_response()
}

/// Which server this is; the page hides what a read-only one cannot do.
pub async fn about() -> Response {
    Json(json!({ "mode": "live", "read_only": false, "auth": true })).into_response()
}

/// The overview's numbers, counted over the published standings and campaigns.
pub async fn summary(State(st): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if let Err(e) = authorized(&st, &headers) {
        return e.into_response();
    }
    let st2 = Arc::clone(&st);
    let work = move || {
        let published = st2.engine.published();
        let (mut accounts, mut flagged, mut members) = (0, 0, 0);
        for e in published.accounts.iter() {
            let Some(s) = &e.standing else { continue };
            accounts += 1;
            flagged += usize::from(s.flagged);
            members += usize::from(s.campaign.is_some());
        }
        let campaigns = published.campaigns.load();
        let mut usage = Usage::default();
        for c in campaigns.values() {
            usage.merge(&published.usage_sum(c.accounts.iter().map(String::as_str)));
        }
        Summary {
            mode: "live",
            accounts,
            flagged,
            campaigns: campaigns.len(),
            campaign_members: members,
            exchanges: published.exchanges(),
            campaign_reasoning_tokens: usage.reasoning_tokens,
            campaign_after_detection: usage.after_detection,
        }
    };
    match tokio::task::spawn_blocking(work).await {
        Ok(s) => Json(s).into_response(),
        Err(_) => {
            GatewayError::internal("summary_failed", "the summary did not complete").into_response()
        }
    }
}

/// Campaigns with their members' traffic, sorted and paged.
pub async fn campaigns(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    q: QueryResult<CampaignQuery>,
) -> Response {
    if let Err(e) = authorized(&st, &headers) {
        return e.into_response();
    }
    let Query(q) = match q {
        Ok(q) => q,
        Err(e) => return bad_query(&e.body_text()),
    };
    let st2 = Arc::clone(&st);
    let work = move || {
        let published = st2.engine.published();
        let map = published.campaigns.load();
        let rows: Vec<CampaignRow> = map
            .values()
            .map(|c| {
                let usage = published.usage_sum(c.accounts.iter().map(String::as_str));
                CampaignRow::new(
                    &c.campaign_id,
                    c.score,
                    c.accounts.len(),
                    c.first_detected_at,
                    &usage,
                )
            })
            .collect();
        page_campaigns(rows, &q)
    };
    match tokio::task::spawn_blocking(work).await {
        Ok(Ok(page)) => Json(page).into_response(),
        Ok(Err(e)) => bad_query(&e.0),
        Err(_) => {
            GatewayError::internal("listing_failed", "the listing did not complete").into_response()
        }
    }
}

/// The campaign as discovery reported it (members and evidence).
pub async fn campaign(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(e) = authorized(&st, &headers) {
        return e.into_response();
    }
    match st.engine.published().campaigns.load().get(&id) {
        Some(c) => Json(c).into_response(),
        None => not_found("no such campaign"),
    }
}

/// The campaign's aggregates, folded from the stored exchanges of its busiest members.
pub async fn campaign_view(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(e) = authorized(&st, &headers) {
        return e.into_response();
    }
    let Some(c) = st.engine.published().campaigns.load().get(&id).cloned() else {
        return not_found("no such campaign");
    };
    let st2 = Arc::clone(&st);
    match tokio::task::spawn_blocking(move || fold_view(&st2, c)).await {
        Ok(Ok(body)) => Json(body).into_response(),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, campaign = %id, "campaign view: the store could not be read");
            GatewayError::internal("store_unavailable", "the store could not be read")
                .into_response()
        }
        Err(_) => {
            GatewayError::internal("view_failed", "the view did not complete").into_response()
        }
    }
}

fn fold_view(
    st: &AppState,
    c: crate::live::CampaignView,
) -> Result<serde_json::Value, moat_store::StoreError> {
    let published = st.engine.published();
    let detection = CampaignDetection {
        campaign_id: c.campaign_id,
        accounts: c.accounts,
        score: c.score,
        first_detected_at: c.first_detected_at,
        signals: c.signals,
    };
    let mut insight = CampaignInsight::new(&detection, InsightOptions::default());
    // The busiest members first, so that a sample of a huge campaign shows most of its traffic.
    let mut members: Vec<(u64, &str)> = detection
        .accounts
        .iter()
        .map(|a| (published.usage(a).map_or(0, |u| u.exchanges), a.as_str()))
        .collect();
    members.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    let usage = published.usage_sum(detection.accounts.iter().map(String::as_str));
    // Everything when it fits; otherwise an equal share for each member read.
    let share = if usage.exchanges as usize <= MAX_EXCHANGES_READ {
        MAX_EXCHANGES_READ
    } else {
        (MAX_EXCHANGES_READ / members.len().clamp(1, MAX_MEMBERS_READ)).max(MIN_PER_MEMBER)
    };
    let (mut members_read, mut exchanges_read) = (0usize, 0usize);
    for (_, account) in &members {
        if members_read >= MAX_MEMBERS_READ || exchanges_read >= MAX_EXCHANGES_READ {
            break;
        }
        if let Some(side) = st.accounts.get(*account) {
            insight.add_account(side);
        }
        let mut want = share.min(MAX_EXCHANGES_READ - exchanges_read);
        let mut cursor = None;
        while want > 0 {
            let page = st.store.exchanges(&ExchangeQuery {
                account_id: Some((*account).to_owned()),
                order: Order::NewestFirst,
                limit: want.min(moat_store::MAX_PAGE_LIMIT),
                cursor,
                ..ExchangeQuery::default()
            })?;
            want -= page.items.len().min(want);
            exchanges_read += page.items.len();
            for x in &page.items {
                insight.observe(x);
            }
            match page.next {
                Some(next) if !page.items.is_empty() => cursor = Some(next),
                _ => break,
            }
        }
        members_read += 1;
    }
    let mut body = serde_json::to_value(insight.view()).unwrap_or_default();
    if let Some(o) = body.as_object_mut() {
        o.insert(
            "sample".to_owned(),
            json!({
                "members": detection.accounts.len(),
                "members_read": members_read,
                "exchanges_read": exchanges_read,
                "complete": members_read == detection.accounts.len()
                    && usage.exchanges as usize <= exchanges_read,
            }),
        );
        o.insert("usage".to_owned(), json!(usage));
    }
    Ok(body)
}

fn account_row(id: &str, s: &Standing, usage: Option<Usage>) -> AccountRow {
    AccountRow {
        account_id: id.to_owned(),
        risk: s.risk,
        flagged: s.flagged,
        flagged_at: s.flagged_at,
        campaign_id: s.campaign.as_deref().map(str::to_owned),
        reasons: s.reasons.names(),
        usage,
    }
}

/// Accounts by id, filtered and paged.
pub async fn accounts(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    q: QueryResult<AccountQuery>,
) -> Response {
    if let Err(e) = authorized(&st, &headers) {
        return e.into_response();
    }
    let Query(q) = match q {
        Ok(q) => q,
        Err(e) => return bad_query(&e.body_text()),
    };
    let st2 = Arc::clone(&st);
    let work = move || {
        // Ids first (the map may hold every account there is), rows for one page only.
        let accounts = &st2.engine.published().accounts;
        let mut ids: Vec<Box<str>> = accounts
            .iter()
            .filter(|e| {
                e.standing
                    .as_ref()
                    .is_some_and(|s| q.selects(e.key(), s.flagged, s.campaign.as_deref()))
            })
            .map(|e| e.key().clone())
            .collect();
        let keep = q.limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE) + 1;
        if ids.len() > keep {
            ids.select_nth_unstable(keep - 1);
            ids.truncate(keep);
        }
        let rows: Vec<AccountRow> = ids
            .iter()
            .filter_map(|id| {
                let e = accounts.get(&**id)?;
                Some(account_row(id, e.standing.as_ref()?, e.usage.usage()))
            })
            .collect();
        page_accounts(rows, &q)
    };
    match tokio::task::spawn_blocking(work).await {
        Ok(page) => Json(page).into_response(),
        Err(_) => {
            GatewayError::internal("listing_failed", "the listing did not complete").into_response()
        }
    }
}

/// An exchange as an account's page lists it: the prompt masked and cut, the counts.
pub fn exchange_row(x: &Exchange) -> serde_json::Value {
    let r = x.response.as_ref();
    json!({
        "ts": x.ts,
        "model": x.request.model,
        "prompt": sanitize_prompt(&x.last_user_text(), PROMPT_CHARS),
        "status": r.and_then(|r| r.status),
        "completion_tokens": r.and_then(|r| r.completion_tokens),
        "reasoning_tokens": r.and_then(|r| r.reasoning_tokens),
    })
}

/// One account: its standing, traffic, recent decisions (with the risk at each) and recent
/// exchanges.
pub async fn account(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(e) = authorized(&st, &headers) {
        return e.into_response();
    }
    let Some(s) = st.engine.published().standing(&id) else {
        return not_found("no such account");
    };
    let store = Arc::clone(&st.store);
    let account = id.clone();
    let recent = tokio::task::spawn_blocking(move || {
        let decisions = store.decisions(&DecisionQuery {
            account_id: Some(account.clone()),
            order: Order::NewestFirst,
            limit: 100,
            ..DecisionQuery::default()
        })?;
        let exchanges = store.exchanges(&ExchangeQuery {
            account_id: Some(account),
            order: Order::NewestFirst,
            limit: 20,
            ..ExchangeQuery::default()
        })?;
        Ok::<_, moat_store::StoreError>((decisions.items, exchanges.items))
    })
    .await;
    let mut v = serde_json::to_value(account_row(&id, &s, st.engine.published().usage(&id)))
        .unwrap_or_default();
    let (decisions, exchanges) = match recent {
        Ok(Ok((d, x))) => (
            json!(d),
            json!(x.iter().map(exchange_row).collect::<Vec<_>>()),
        ),
        _ => (json!(null), json!(null)),
    };
    v["recent_decisions"] = decisions;
    v["recent_exchanges"] = exchanges;
    Json(v).into_response()
}

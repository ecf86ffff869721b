//! The admin listener: health, Prometheus metrics, and the API investigators and automation
//! use (accounts, campaigns, decisions, the policy and its reload, the engine's detections).
//! Everything but `/health` (and `/metrics` when configured public) needs the admin token as
//! `Authorization: Bearer`; without a configured token those endpoints refuse. Reloads are
//! written to the audit log with the actor (`admin`, never the token). The dashboard's page
//! and files (`/ui/`, `moat-ui`) need no token: they hold no data and the page asks for it.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use moat_store::{AuditEntry, AuditQuery, Cursor, DecisionQuery, Order};
use serde::Deserialize;
use serde_json::json;

use crate::config::FailMode;
use crate::dashboard;
use crate::error::GatewayError;
use crate::metrics::ReloadLabels;
use crate::state::{now, AppState};

/// The admin router.
pub fn router(st: Arc<AppState>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/admin/about", get(dashboard::about))
        .route("/admin/summary", get(dashboard::summary))
        .route("/admin/accounts", get(dashboard::accounts))
        .route("/admin/accounts/{id}", get(dashboard::account))
        .route("/admin/campaigns", get(dashboard::campaigns))
        .route("/admin/campaigns/{id}", get(dashboard::campaign))
        .route("/admin/campaigns/{id}/view", get(dashboard::campaign_view))
        .route("/admin/decisions", get(decisions))
        .route("/admin/audit", get(audit))
        .route("/admin/policy", get(policy))
        .route("/admin/policy/reload", post(reload))
        .route("/admin/policy/validate", post(validate))
        .route("/admin/detections", get(detections))
        .route("/admin/intel", get(intel))
        .route("/admin/intel/reload", post(intel_reload))
        .route("/admin/timeline", get(timeline))
        .route("/admin/alerts", get(alerts))
        .merge(crate::actions::router())
        .merge(moat_ui::router())
        .fallback(|| async {
            GatewayError::client(StatusCode::NOT_FOUND, "not_found", "no such admin endpoint")
        })
        .with_state(st)
}

/// Compares the bearer token with the configured one in time independent of where they
/// differ.
pub(crate) fn authorized(st: &AppState, headers: &HeaderMap) -> Result<(), GatewayError> {
    let Some(expected) = st.admin_token.as_deref() else {
        return Err(GatewayError::client(
            StatusCode::FORBIDDEN,
            "admin_disabled",
            "no admin token is configured (see [admin] token_env)",
        ));
    };
    let given = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let (a, b) = (given.as_bytes(), expected.as_bytes());
    let mut diff = a.len() ^ b.len();
    for (i, &e) in b.iter().enumerate() {
        diff |= usize::from(a.get(i).copied().unwrap_or(0) ^ e);
    }
    if diff == 0 {
        Ok(())
    } else {
        Err(GatewayError::client(
            StatusCode::UNAUTHORIZED,
            "invalid_admin_token",
            "missing or wrong admin token",
        ))
    }
}

async fn health(State(st): State<Arc<AppState>>) -> Response {
    let engine = st.engine.alive();
    let rec = st.recorder.stats();
    let store = st.recorder.store_available();
    let healthy = (engine && store) || st.fail_mode == FailMode::Open;
    let body = json!({
        "status": if engine && store { "ok" } else { "degraded" },
        "store": { "available": store },
        "engine": {
            "alive": engine,
            "observed": st.engine.published().observed.load(std::sync::atomic::Ordering::Relaxed),
            "dropped": st.engine.published().dropped.load(std::sync::atomic::Ordering::Relaxed),
            "discovery_passes": st.engine.published().passes.load(std::sync::atomic::Ordering::Relaxed),
        },
        "recorder": {
            "queued": rec.queue_len,
            "written": rec.written,
            "spilled": rec.spilled,
            "recovered": rec.recovered,
            "dropped": rec.dropped,
        },
        "policy": { "rules": st.rules.current().len(), "last_error": st.rules.last_error() },
        "fail_mode": if st.fail_mode == FailMode::Open { "open" } else { "closed" },
    });
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

async fn metrics(State(st): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if !st.public_metrics {
        if let Err(e) = authorized(&st, &headers) {
            return e.into_response();
        }
    }
    (
        [(
            http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        st.metrics.render(),
    )
        .into_response()
}

fn limit_of(l: Option<usize>) -> usize {
    l.unwrap_or(100).clamp(1, 1000)
}

/// Query of the decision and audit listings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoreQuery {
    #[serde(default)]
    account: Option<String>,
    #[serde(default)]
    limit: Option<usize>,
    #[serde(default)]
    cursor: Option<String>,
    /// `newest` (default) or `oldest`.
    #[serde(default)]
    order: Option<String>,
}

fn bad_query(reason: &str) -> Response {
    GatewayError::client(StatusCode::BAD_REQUEST, "invalid_query", reason.to_owned())
        .into_response()
}

fn order_of(o: Option<&str>) -> Result<Order, Box<Response>> {
    match o {
        None | Some("newest") => Ok(Order::NewestFirst),
        Some("oldest") => Ok(Order::OldestFirst),
        Some(_) => Err(Box::new(bad_query("order: expected newest or oldest"))),
    }
}

/// Runs a store listing off the async threads and answers it as `{items, next}`.
async fn listing<T, F>(st: &AppState, f: F) -> Response
where
    T: serde::Serialize + Send + 'static,
    F: FnOnce(&dyn moat_store::Store) -> Result<moat_store::Page<T>, moat_store::StoreError>
        + Send
        + 'static,
{
    let store = Arc::clone(&st.store);
    match tokio::task::spawn_blocking(move || f(store.as_ref())).await {
        Ok(Ok(page)) => Json(json!({
            "items": page.items,
            "next": page.next.as_ref().map(|c| c.as_str()),
        }))
        .into_response(),
        Ok(Err(moat_store::StoreError::InvalidCursor)) => {
            bad_query("cursor: not a cursor this listing returned")
        }
        _ => GatewayError::internal("store_unavailable", "the store could not be read")
            .into_response(),
    }
}

/// The admin check and the query of a store listing; `Err` is the answer.
fn store_query(
    st: &AppState,
    headers: &HeaderMap,
    q: Result<Query<StoreQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<(StoreQuery, Order), Box<Response>> {
    authorized(st, headers).map_err(|e| Box::new(e.into_response()))?;
    let Query(q) = q.map_err(|e| Box::new(bad_query(&e.body_text())))?;
    let order = order_of(q.order.as_deref())?;
    Ok((q, order))
}

async fn decisions(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    q: Result<Query<StoreQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let (q, order) = match store_query(&st, &headers, q) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let query = DecisionQuery {
        account_id: q.account,
        order,
        limit: limit_of(q.limit),
        cursor: q.cursor.map(Cursor::new),
        ..DecisionQuery::default()
    };
    listing(&st, move |s| s.decisions(&query)).await
}

async fn audit(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    q: Result<Query<StoreQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let (q, order) = match store_query(&st, &headers, q) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let query = AuditQuery {
        order,
        limit: limit_of(q.limit),
        cursor: q.cursor.map(Cursor::new),
        ..AuditQuery::default()
    };
    listing(&st, move |s| s.audit(&query)).await
}

async fn policy(State(st): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if let Err(e) = authorized(&st, &headers) {
        return e.into_response();
    }
    let p = st.rules.effective();
    let rules: Vec<_> = p
        .policy
        .rules()
        .map(|r| {
            json!({
                "name": r.name,
                "when": r.when,
                "actions": r.actions.names().collect::<Vec<_>>(),
                "shadow": r.mode == moat_policy::Mode::Shadow,
                "source": p.source(r.index),
            })
        })
        .collect();
    Json(json!({
        "file": st.rules.file().map(|f| f.display().to_string()),
        "rules": rules,
        "last_error": st.rules.last_error(),
    }))
    .into_response()
}

/// Reloads the policy file now (also done on SIGHUP and when the file changes).
pub fn reload_now(st: &AppState, actor: &str) -> crate::rules::ReloadOutcome {
    let out = st.rules.reload();
    st.metrics
        .reloads
        .get_or_create(&ReloadLabels {
            result: if out.applied { "ok" } else { "rejected" },
        })
        .inc();
    if out.applied {
        tracing::info!(rules = out.rules, actor, "policy reloaded");
        st.alerting.action_applied(
            now(),
            "policy_reload",
            actor,
            &format!(
                "{} ({} rules)",
                st.rules
                    .file()
                    .map_or_else(|| "no policy file".to_owned(), |f| f.display().to_string()),
                out.rules
            ),
        );
    } else {
        tracing::warn!(
            error = out.error.as_deref().unwrap_or(""),
            actor,
            "policy reload rejected, previous rules kept"
        );
    }
    let entry = AuditEntry {
        ts: now(),
        actor: actor.to_owned(),
        action: "policy_reload".to_owned(),
        target: st.rules.file().map(|f| f.display().to_string()),
        detail: Some(match &out.error {
            None => format!("applied, {} rules", out.rules),
            Some(e) => format!("rejected: {e}"),
        }),
    };
    let _ = st.store.append_audit(&entry);
    out
}

async fn reload(State(st): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if let Err(e) = authorized(&st, &headers) {
        return e.into_response();
    }
    let st2 = Arc::clone(&st);
    match tokio::task::spawn_blocking(move || reload_now(&st2, "admin")).await {
        Ok(out) => {
            let status = if out.applied {
                StatusCode::OK
            } else {
                StatusCode::UNPROCESSABLE_ENTITY
            };
            (status, Json(out)).into_response()
        }
        Err(_) => {
            GatewayError::internal("reload_failed", "the reload did not complete").into_response()
        }
    }
}

/// Checks the policy file as a reload would, without applying it.
async fn validate(State(st): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if let Err(e) = authorized(&st, &headers) {
        return e.into_response();
    }
    let st2 = Arc::clone(&st);
    match tokio::task::spawn_blocking(move || st2.rules.validate()).await {
        Ok(Ok(rules)) => Json(json!({ "valid": true, "rules": rules })).into_response(),
        Ok(Err(error)) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({ "valid": false, "error": error })),
        )
            .into_response(),
        Err(_) => {
            GatewayError::internal("validate_failed", "the check did not complete").into_response()
        }
    }
}

/// Webhook delivery statistics and the last deliveries, failures included.
async fn alerts(State(st): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if let Err(e) = authorized(&st, &headers) {
        return e.into_response();
    }
    Json(st.alerting.status()).into_response()
}

/// Query of `/admin/timeline`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TimelineQuery {
    /// Seconds back from now (default one hour, at most a day).
    #[serde(default)]
    span_s: Option<i64>,
    /// Seconds per point (default: the span in 120 points; at least 10).
    #[serde(default)]
    step_s: Option<i64>,
}

/// Requests, enforced actions, flagged accounts and campaigns over the last span, aggregated
/// here into at most 1,440 points.
async fn timeline(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    q: Result<Query<TimelineQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    if let Err(e) = authorized(&st, &headers) {
        return e.into_response();
    }
    let Query(q) = match q {
        Ok(q) => q,
        Err(e) => return bad_query(&e.body_text()),
    };
    let span_s = q.span_s.unwrap_or(3600).clamp(10, 86_400);
    let step_s = q.step_s.unwrap_or(span_s / 120).max(10);
    let series = st.timeline.series(
        now().as_millis(),
        span_s.saturating_mul(1000),
        step_s.saturating_mul(1000),
    );
    Json(series).into_response()
}

/// What intelligence is loaded: sources, counts, the database generation, the last error.
async fn intel(State(st): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if let Err(e) = authorized(&st, &headers) {
        return e.into_response();
    }
    let mut body = st.intel.status();
    let st2 = Arc::clone(&st);
    let imports = tokio::task::spawn_blocking(move || st2.intel.imports(20)).await;
    if let Some(o) = body.as_object_mut() {
        // Requests each source's indicators matched since start (the metric's counts).
        let mut matches = serde_json::Map::new();
        if let Some(sources) = o.get("sources").and_then(|s| s.as_array()) {
            for name in sources.iter().filter_map(|s| s["source"].as_str()) {
                let n = st
                    .metrics
                    .intel_matches
                    .get_or_create(&crate::metrics::IntelLabels {
                        source: name.to_owned(),
                    })
                    .get();
                matches.insert(name.to_owned(), n.into());
            }
        }
        o.insert("matches".to_owned(), matches.into());
        match imports {
            Ok(Some(Ok(rows))) => {
                o.insert("imports".to_owned(), json!(rows));
            }
            Ok(Some(Err(e))) => {
                o.insert("imports_error".to_owned(), e.into());
            }
            _ => {}
        }
    }
    Json(body).into_response()
}

/// Reads the intel database now if it changed (also done every `[intel] reload_interval_ms`).
async fn intel_reload(State(st): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if let Err(e) = authorized(&st, &headers) {
        return e.into_response();
    }
    let st2 = Arc::clone(&st);
    match tokio::task::spawn_blocking(move || st2.intel.refresh()).await {
        Ok(Ok(changed)) => {
            let mut body = st.intel.status();
            if let Some(o) = body.as_object_mut() {
                o.insert("reloaded".to_owned(), changed.into());
            }
            Json(body).into_response()
        }
        Ok(Err(e)) => GatewayError::client(
            StatusCode::UNPROCESSABLE_ENTITY,
            "intel_unreadable",
            format!("the intel database cannot be loaded: {e}"),
        )
        .into_response(),
        Err(_) => {
            GatewayError::internal("reload_failed", "the reload did not complete").into_response()
        }
    }
}

async fn detections(State(st): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if let Err(e) = authorized(&st, &headers) {
        return e.into_response();
    }
    let st2 = Arc::clone(&st);
    let snap = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::task::spawn_blocking(move || st2.engine.snapshot()),
    )
    .await;
    match snap {
        Ok(Ok(Some(lines))) => {
            let mut out = String::new();
            for d in lines {
                if let Ok(s) = serde_json::to_string(&d) {
                    out.push_str(&s);
                    out.push('\n');
                }
            }
            ([(http::header::CONTENT_TYPE, "application/x-ndjson")], out).into_response()
        }
        _ => GatewayError::internal("engine_unavailable", "the engine did not answer")
            .into_response(),
    }
}

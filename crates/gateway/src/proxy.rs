//! The API path: one handler for every model endpoint. In order: read and check the request,
//! identify the caller, restore reasoning it echoes back, score it (the request's own
//! signals and the account's standing), decide by policy, enforce (block, throttle, tarpit),
//! forward, and answer, withholding or summarizing reasoning and counting tokens as a stream
//! passes; then hand the exchange and the decision to the recorder.
//!
//! What the gateway adds to a request is measured from arrival to the upstream call plus
//! from the upstream's answer to the gateway's (`moat_overhead_seconds`); the upstream's own
//! time is not the gateway's.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use http_body_util::{BodyExt, Limited};
use moat_detect::Features;
use moat_dialect::{EarlyStop, Endpoint, Mode, ResponseFacts, SseParser, StreamFilter, StreamMode};
use moat_policy::{Decision, Facts, ReasoningAction, SummaryFallback};
use moat_store::DecisionRecord;
use moat_types::{Exchange, Response as Answer, Timestamp};

use crate::config::FailMode;
use crate::error::{GatewayError, Shape};
use crate::identity::{Caller, Unidentified};
use crate::limit::Limits;
use crate::metrics::{ActionLabels, EndpointLabel, ErrorLabels, RequestLabels};
use crate::state::{now, AppState};

/// One request on its way through: everything decided before it goes upstream.
struct Admitted {
    endpoint: Endpoint,
    shape: Shape,
    exchange: Exchange,
    reasoning: Reasoning,
    /// Limiter scopes charged for model tokens.
    scopes: Vec<String>,
    body: Bytes,
    headers: HeaderMap,
    path_and_query: String,
    /// The policy's decision, when it is worth a record of its own (see [`worth_recording`]).
    decision: Option<DecisionRecord>,
    started: Instant,
    /// Time spent in the gateway before the upstream call.
    before: Duration,
}

/// What happens to the reasoning of the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reasoning {
    Pass,
    Withhold,
    Summarize { fallback_withhold: bool },
}

fn endpoint_label(e: Endpoint) -> EndpointLabel {
    match e {
        Endpoint::ChatCompletions => EndpointLabel::chat_completions,
        Endpoint::Completions => EndpointLabel::completions,
        Endpoint::Responses => EndpointLabel::responses,
        _ => EndpointLabel::messages,
    }
}

fn class(status: StatusCode) -> &'static str {
    match status.as_u16() {
        200..=299 => "2xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// The handler of one model endpoint.
pub async fn handle(
    State(st): State<Arc<AppState>>,
    endpoint: Endpoint,
    req: http::Request<Body>,
) -> Response {
    let started = Instant::now();
    let shape = if endpoint == Endpoint::Messages {
        Shape::Anthropic
    } else {
        Shape::OpenAi
    };
    st.metrics.in_flight.inc();
    let resp = match admit(&st, endpoint, shape, req, started).await {
        Ok(admitted) => forward(&st, admitted).await,
        Err(e) => {
            log_refusal(endpoint, &e);
            e.shaped(shape).into_response()
        }
    };
    st.metrics.in_flight.dec();
    st.metrics
        .requests
        .get_or_create(&RequestLabels {
            endpoint: endpoint_label(endpoint),
            class: class(resp.status()),
        })
        .inc();
    resp
}

/// Logs a request that went no further, once, where it becomes a response. Client mistakes
/// and policy refusals are routine (and an abusive client could flood a log at warn level),
/// so they are debug; the gateway's own failures are warnings. Messages name fields and
/// codes, never prompt text or keys.
fn log_refusal(endpoint: Endpoint, e: &GatewayError) {
    let path = endpoint.path();
    let status = e.status.as_u16();
    match e.fault {
        crate::error::Fault::Internal | crate::error::Fault::Upstream => {
            tracing::warn!(endpoint = path, status, code = e.code, error = %e.message, "request failed");
        }
        crate::error::Fault::Client | crate::error::Fault::Policy => {
            tracing::debug!(endpoint = path, status, code = e.code, error = %e.message, "request refused");
        }
    }
}

/// Reads, identifies, scores and decides; `Err` is the answer when the request goes no
/// further.
async fn admit(
    st: &Arc<AppState>,
    endpoint: Endpoint,
    shape: Shape,
    req: http::Request<Body>,
    started: Instant,
) -> Result<Admitted, GatewayError> {
    let (parts, body) = req.into_parts();
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    if parts.method != Method::POST {
        return Err(GatewayError::client(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("{} accepts POST only", endpoint.path()),
        ));
    }
    check_content_type(&parts.headers)?;
    // Identify before reading the body, so unknown callers cost nothing.
    let caller = st
        .resolver
        .resolve(&parts.headers, peer)
        .map_err(unidentified)?;
    // `[identity] time_header` (replays only): the request's time as the header gives it.
    let sent_at = st
        .resolver
        .request_time(&parts.headers)
        .map_err(|b| GatewayError::client(StatusCode::BAD_REQUEST, "invalid_time", b.message()))?;
    let raw = read_body(body, st.max_body).await?;
    let mut value: serde_json::Value = serde_json::from_slice(&raw).map_err(|e| {
        GatewayError::client(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("request body is not valid JSON: {e}"),
        )
    })?;
    let restored = moat_dialect::restore_request(endpoint, &caller.account, &mut value, &st.sealer)
        .map_err(|e| {
            GatewayError::client(
                StatusCode::BAD_REQUEST,
                "invalid_reasoning_token",
                e.to_string(),
            )
        })?;
    let facts = moat_dialect::parse_request(endpoint, &value).map_err(|e| {
        GatewayError::client(StatusCode::BAD_REQUEST, "invalid_request", e.to_string())
    })?;
    let body = if restored.restored > 0 {
        st.metrics
            .reasoning_restored
            .inc_by(restored.restored as u64);
        Bytes::from(value.to_string())
    } else {
        raw
    };
    let request_id = st.request_id();
    let ts = sent_at.unwrap_or_else(now);
    let exchange = Exchange {
        v: 1,
        ts,
        request_id: Some(request_id.clone()),
        account_id: caller.account.clone(),
        api_key_id: caller.key_id.clone(),
        client: Some(caller.client.clone()),
        request: facts.request,
        response: None,
    };
    let features = Features::of(&exchange);
    let signals = *features.signals();
    if st.fail_mode == FailMode::Closed {
        if !st.engine.alive() {
            return Err(GatewayError::internal(
                "engine_unavailable",
                "scoring is unavailable and the gateway is configured to fail closed",
            ));
        }
        if !st.recorder.store_available() {
            return Err(GatewayError::internal(
                "store_unavailable",
                "recording is unavailable and the gateway is configured to fail closed",
            ));
        }
    }
    let standing = st.engine.published().standing(&caller.account);
    let mut templates = [0u64; moat_detect::template::MAX_SEGMENTS];
    let mut n_templates = 0;
    for (slot, t) in templates.iter_mut().zip(features.templates()) {
        *slot = t;
        n_templates += 1;
    }
    // Hand the request to the engine now: the account's next request meets the new state.
    st.engine.observe(features);

    let campaigns = st.engine.published().campaigns.load();
    let campaign = standing
        .as_ref()
        .and_then(|s| s.campaign.as_deref())
        .and_then(|c| campaigns.get(c));
    let side = st.accounts.get(&caller.account);
    let reasons: Vec<&str> = standing
        .as_ref()
        .map(|s| s.reasons.iter().map(moat_detect::Reason::as_str).collect())
        .unwrap_or_default();
    let attrs: Vec<(&str, &str)> = caller
        .attrs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let category = signals.category.as_str();
    let policy = st.rules.current();
    let age_days = side
        .and_then(|a| a.created_at)
        .map(|c| ((ts.as_millis() - c.as_millis()).max(0) / Timestamp::DAY) as u32);
    let feeds = st.intel.enabled().then(|| st.intel.feeds());
    let hits = feeds.as_deref().map_or_else(Vec::new, |f| {
        crate::intel::matches(
            f,
            &moat_intel::Probe {
                ts,
                ip: caller.ip,
                asn: caller.client.asn,
                user_agent: caller.client.user_agent.as_deref().unwrap_or(""),
                ja4: caller.client.tls_ja4.as_deref().unwrap_or(""),
                templates: templates.get(..n_templates).unwrap_or_default(),
                payment: side.and_then(|a| a.payment_fingerprint.as_deref()),
            },
        )
    });
    let intel_sources = crate::intel::sources(&hits);
    let intel_kinds = crate::intel::kinds(&hits);
    if !hits.is_empty() {
        st.metrics.count_intel(&intel_sources);
    }
    let decision = policy.evaluate(&Facts {
        account: moat_policy::AccountFacts {
            id: &caller.account,
            risk: standing.as_ref().map_or(0.0, |s| s.risk),
            flagged: standing.as_ref().is_some_and(|s| s.flagged),
            reasons: &reasons,
            tier: side.and_then(|a| a.tier.as_deref()).unwrap_or(""),
            country: side.and_then(|a| a.country.as_deref()).unwrap_or(""),
            email_domain: side.and_then(|a| a.email_domain.as_deref()).unwrap_or(""),
            verified: side.and_then(|a| a.verified).unwrap_or(false),
            age_days,
        },
        campaign: moat_policy::CampaignFacts {
            member: campaign.is_some(),
            id: campaign.map_or("", |c| c.campaign_id.as_str()),
            score: campaign.map_or(0.0, |c| c.score),
            size: campaign.map_or(0, |c| c.accounts.len() as u32),
        },
        request: moat_policy::RequestFacts {
            cot: f64::from(signals.cot),
            jailbreak: f64::from(signals.jailbreak),
            harvest: signals.harvest_params.any(),
            category,
            endpoint: endpoint.path(),
            model: exchange.request.model.as_deref().unwrap_or(""),
            stream: facts.stream,
            max_tokens: facts.max_output_tokens,
        },
        client: moat_policy::ClientFacts {
            ip: caller.ip,
            asn: caller.client.asn,
            country: caller.client.country.as_deref().unwrap_or(""),
            user_agent: caller.client.user_agent.as_deref().unwrap_or(""),
            ja4: caller.client.tls_ja4.as_deref().unwrap_or(""),
        },
        attrs: &attrs,
        intel: moat_policy::IntelFacts {
            matched: !hits.is_empty(),
            sources: &intel_sources,
            kinds: &intel_kinds,
        },
    });
    let record = worth_recording(&decision).then(|| {
        decision_record(
            &decision,
            &exchange,
            standing.as_ref().map_or(0.0, |s| s.risk),
            campaign.map(|c| c.campaign_id.clone()),
            crate::intel::detail(&hits),
        )
    });
    drop(hits);
    drop(feeds);
    count_actions(st, &decision);
    st.timeline
        .count(crate::state::now().as_millis(), decision.actions.names());

    let mut admitted = Admitted {
        endpoint,
        shape,
        exchange,
        reasoning: Reasoning::Pass,
        scopes: Vec::new(),
        body,
        headers: parts.headers,
        path_and_query: parts
            .uri
            .path_and_query()
            .map_or(endpoint.path().to_owned(), |p| p.as_str().to_owned()),
        decision: record,
        started,
        before: Duration::ZERO,
    };
    enforce(
        st,
        &decision,
        &caller,
        campaign.map(|c| c.campaign_id.as_str()),
        &mut admitted,
    )
    .await?;
    admitted.before = started.elapsed();
    Ok(admitted)
}

/// Applies the decision's enforced actions; a refusal is recorded before it is answered.
async fn enforce(
    st: &Arc<AppState>,
    decision: &Decision<'_>,
    caller: &Caller,
    campaign: Option<&str>,
    a: &mut Admitted,
) -> Result<(), GatewayError> {
    let actions = &decision.actions;
    if let Some(block) = &actions.block {
        let status = StatusCode::from_u16(block.status).unwrap_or(StatusCode::FORBIDDEN);
        let e = GatewayError::policy(status, "blocked_by_policy", block.message.to_string());
        refuse(st, a, &e);
        return Err(e);
    }
    if let Some(t) = &actions.throttle {
        let limits = Limits {
            requests_per_minute: t.requests_per_minute,
            tokens_per_minute: t.tokens_per_minute,
        };
        let key = match (t.scope, campaign) {
            (moat_policy::Scope::Campaign, Some(c)) => format!("c:{c}"),
            _ => format!("a:{}", caller.account),
        };
        if let Err(ex) = admit_throttle(st, &key, limits).await? {
            let e = GatewayError::policy(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "rate limit reached for this account; retry later",
            )
            .retry_after(ex.retry_after);
            refuse(st, a, &e);
            return Err(e);
        }
        if limits.tokens_per_minute.is_some() {
            a.scopes.push(key);
        }
    }
    if let Some(ms) = actions.tarpit_ms {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    a.reasoning = match actions.reasoning {
        ReasoningAction::Pass => Reasoning::Pass,
        ReasoningAction::Withhold => Reasoning::Withhold,
        ReasoningAction::Summarize { fallback } => Reasoning::Summarize {
            fallback_withhold: fallback == SummaryFallback::Withhold,
        },
    };
    Ok(())
}

/// Records a request refused before it went upstream.
fn refuse(st: &AppState, a: &Admitted, e: &GatewayError) {
    let mut x = a.exchange.clone();
    x.response = Some(Answer {
        status: Some(e.status.as_u16()),
        latency_ms: Some(a.started.elapsed().as_millis() as u64),
        ..Answer::default()
    });
    st.engine.published().count_answer(&x);
    st.recorder.record_exchange(x);
    if let Some(d) = &a.decision {
        st.recorder.record_decision(d.clone());
    }
}

/// Whether a decision says more than its exchange does: a rule matched (enforced or shadow)
/// or the default action is not a plain allow. A request no rule touched is the exchange
/// alone, which halves what the store writes for ordinary traffic.
fn worth_recording(d: &Decision<'_>) -> bool {
    d.rule.is_some() || !d.shadowed.is_empty() || d.actions.kind() != "allow"
}

fn decision_record(
    d: &Decision<'_>,
    x: &Exchange,
    risk: f64,
    campaign_id: Option<String>,
    detail: Option<String>,
) -> DecisionRecord {
    DecisionRecord {
        ts: x.ts,
        request_id: x.request_id.clone(),
        account_id: x.account_id.clone(),
        campaign_id,
        rule: d.rule.as_ref().map(|m| m.name.to_owned()),
        actions: d.actions.names().map(str::to_owned).collect(),
        shadow: d.shadowed.iter().map(|m| m.name.to_owned()).collect(),
        risk,
        enforced: !d.actions.shadow,
        detail,
    }
}

fn count_actions(st: &AppState, d: &Decision<'_>) {
    for name in d.actions.names() {
        st.metrics
            .actions
            .get_or_create(&ActionLabels {
                action: name,
                mode: "enforced",
            })
            .inc();
    }
    for m in d.shadowed.iter() {
        for name in m.actions.names() {
            st.metrics
                .actions
                .get_or_create(&ActionLabels {
                    action: name,
                    mode: "shadow",
                })
                .inc();
        }
    }
}

fn unidentified(u: Unidentified) -> GatewayError {
    let msg = match u {
        Unidentified::Missing => "no API key: send Authorization: Bearer <key> or x-api-key",
        Unidentified::UnknownKey => "invalid API key",
        Unidentified::BadHeader => "the account header is empty or too long",
    };
    GatewayError::client(StatusCode::UNAUTHORIZED, "invalid_api_key", msg)
}

fn check_content_type(headers: &HeaderMap) -> Result<(), GatewayError> {
    let ok = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"));
    if ok {
        Ok(())
    } else {
        Err(GatewayError::client(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "request body must be application/json",
        ))
    }
}

async fn read_body(body: Body, max: usize) -> Result<Bytes, GatewayError> {
    match Limited::new(body, max).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(GatewayError::client(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request_too_large",
                format!("request body exceeds {max} bytes"),
            ))
        }
        Err(_) => Err(GatewayError::client(
            StatusCode::BAD_REQUEST,
            "body_read_failed",
            "the request body could not be read",
        )),
    }
}

/// Sends the admitted request upstream and answers the client.
async fn forward(st: &Arc<AppState>, a: Admitted) -> Response {
    let sent = st
        .upstream
        .send(Method::POST, &a.path_and_query, &a.headers, a.body.clone())
        .await;
    let resp = match sent {
        Ok(r) => r,
        Err(f) => {
            st.metrics
                .upstream_errors
                .get_or_create(&ErrorLabels { kind: f.kind() })
                .inc();
            tracing::warn!(
                endpoint = a.endpoint.path(),
                request_id = a.exchange.request_id.as_deref().unwrap_or(""),
                kind = f.kind(),
                "upstream unavailable"
            );
            let status = if f == crate::upstream::UpstreamFailure::Timeout {
                StatusCode::GATEWAY_TIMEOUT
            } else {
                StatusCode::BAD_GATEWAY
            };
            let e = GatewayError::upstream(status, "the model server could not be reached")
                .shaped(a.shape);
            refuse(st, &a, &e);
            return e.into_response();
        }
    };
    let back = Instant::now();
    let status = resp.status();
    let is_sse = resp
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    let headers = crate::upstream::response_headers(resp.headers());
    if is_sse && status.is_success() {
        return stream(st, a, status, headers, resp.into_body(), back);
    }
    whole(st, a, status, headers, resp.into_body(), back).await
}

/// A whole (non-streamed) answer.
async fn whole(
    st: &Arc<AppState>,
    a: Admitted,
    status: StatusCode,
    mut headers: HeaderMap,
    body: hyper::body::Incoming,
    back: Instant,
) -> Response {
    let bytes = match Limited::new(body, st.max_upstream_body).collect().await {
        Ok(c) => c.to_bytes(),
        Err(_) => {
            st.metrics
                .upstream_errors
                .get_or_create(&ErrorLabels { kind: "body" })
                .inc();
            let e = GatewayError::upstream(
                StatusCode::BAD_GATEWAY,
                "the model server's answer could not be read",
            )
            .shaped(a.shape);
            refuse(st, &a, &e);
            return e.into_response();
        }
    };
    let post = Instant::now();
    let upstream_ms = back.saturating_duration_since(a.started).as_millis() as u64;
    let mut answer = Answer {
        status: Some(status.as_u16()),
        latency_ms: Some(upstream_ms),
        ..Answer::default()
    };
    let mut out = bytes.clone();
    if status.is_success() {
        if let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(&bytes) {
            let mut facts = moat_dialect::inspect_response(a.endpoint, &v);
            let has_reasoning = !facts.reasoning.is_empty();
            let mode = if has_reasoning {
                whole_mode(st, a.reasoning, &facts.reasoning).await
            } else {
                Mode::Pass
            };
            if mode != Mode::Pass {
                match moat_dialect::withhold_response(
                    a.endpoint,
                    &a.exchange.account_id,
                    &mut v,
                    &st.sealer,
                    &mode,
                ) {
                    Ok(report) if report.withheld > 0 => {
                        st.metrics.reasoning_withheld.inc();
                        out = Bytes::from(v.to_string());
                        facts.disposition = match mode {
                            Mode::Summarize(summary) if report.summarized => {
                                facts.summary = Some(summary);
                                moat_dialect::ReasoningDisposition::Summarized
                            }
                            _ => moat_dialect::ReasoningDisposition::Withheld,
                        };
                    }
                    Ok(_) => {}
                    Err(_) => {
                        // Sealing failed: the reasoning must not leak, so nothing is sent.
                        let e = GatewayError::internal(
                            "withhold_failed",
                            "the answer could not be prepared",
                        )
                        .shaped(a.shape);
                        refuse(st, &a, &e);
                        return e.into_response();
                    }
                }
            }
            answer = answer_of(&facts, status, upstream_ms, st.record_text);
            charge(st, &a.scopes, total_tokens(&facts)).await;
        }
    }
    headers.remove(http::header::CONTENT_LENGTH);
    let mut resp = (status, headers, out).into_response();
    let overhead = a.before + post.elapsed();
    finish_overhead(st, &mut resp, overhead);
    record(st, a, answer);
    resp
}

/// How a whole answer's reasoning is shown: a summary is asked for only when the rule wants
/// one, and its failure falls back as the rule says.
async fn whole_mode(st: &AppState, r: Reasoning, reasoning: &str) -> Mode {
    match r {
        Reasoning::Pass => Mode::Pass,
        Reasoning::Withhold => Mode::Withhold,
        Reasoning::Summarize { fallback_withhold } => {
            let summary = match &st.summarizer {
                Some(s) => s.summarize(reasoning).await,
                None => None,
            };
            match summary {
                Some(text) => Mode::Summarize(text),
                None if summary_failed(st, fallback_withhold) => Mode::Withhold,
                None => Mode::Pass,
            }
        }
    }
}

/// Counts a summary that could not be had and says whether the rule's fallback withholds.
fn summary_failed(st: &AppState, fallback_withhold: bool) -> bool {
    st.metrics.summary_fallbacks.inc();
    fallback_withhold
}

/// The record's response part; texts only when the operator records them.
fn answer_of(facts: &ResponseFacts, status: StatusCode, upstream_ms: u64, text: bool) -> Answer {
    let mut answer = facts.to_response(Some(status.as_u16()), Some(upstream_ms));
    if !text {
        answer.content = None;
        answer.reasoning = None;
    }
    answer
}

fn total_tokens(f: &ResponseFacts) -> u64 {
    f.prompt_tokens.unwrap_or(0) + f.completion_tokens.unwrap_or(0)
}

/// Takes one request from the scope's bucket: the shared one in Redis when configured, else
/// (or when Redis cannot answer and the gateway fails open) this process's own. `Err` is the
/// refusal of a gateway that fails closed.
async fn admit_throttle(
    st: &AppState,
    key: &str,
    limits: Limits,
) -> Result<Result<(), crate::limit::Exhausted>, GatewayError> {
    if let Some(shared) = &st.shared_limiter {
        match shared.admit(key, limits).await {
            Ok(r) => return Ok(r),
            Err(e) => {
                st.metrics.throttle_unavailable.inc();
                if shared.should_warn() {
                    tracing::warn!(error = %e.0, "shared throttle unavailable (logged once per 10 s; moat_throttle_shared_unavailable_total counts each)");
                }
                if st.fail_mode == FailMode::Closed {
                    return Err(GatewayError::internal(
                        "throttle_unavailable",
                        "rate limiting is unavailable and the gateway is configured to fail closed",
                    ));
                }
            }
        }
    }
    Ok(st.limiter.admit(key, limits, st.clock_ms()))
}

/// Charges model tokens to the scopes and says whether every budget still holds. With shared
/// buckets the charge goes to Redis; if Redis cannot answer, this process's buckets count it.
async fn charge(st: &AppState, scopes: &[String], tokens: u64) -> bool {
    let mut ok = true;
    for s in scopes {
        ok &= charge_one(st, s, tokens).await;
    }
    ok
}

async fn charge_one(st: &AppState, scope: &str, tokens: u64) -> bool {
    if let Some(shared) = &st.shared_limiter {
        match shared.charge(scope, tokens).await {
            Ok(ok) => return ok,
            Err(e) => {
                st.metrics.throttle_unavailable.inc();
                if shared.should_warn() {
                    tracing::warn!(error = %e.0, "shared throttle unavailable (logged once per 10 s; moat_throttle_shared_unavailable_total counts each)");
                }
            }
        }
    }
    st.limiter.charge(scope, tokens, st.clock_ms())
}

/// [`charge`] from code that cannot wait (a stream's end, which may run in a destructor):
/// local buckets at once, shared ones from a task of their own.
fn charge_later(st: &Arc<AppState>, scopes: &[String], tokens: u64) {
    if st.shared_limiter.is_none() {
        let now = st.clock_ms();
        for s in scopes {
            st.limiter.charge(s, tokens, now);
        }
        return;
    }
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        let st = Arc::clone(st);
        let scopes = scopes.to_vec();
        rt.spawn(async move {
            charge(&st, &scopes, tokens).await;
        });
    }
}

fn finish_overhead(st: &AppState, resp: &mut Response, overhead: Duration) {
    st.metrics.overhead.observe(overhead.as_secs_f64());
    if st.overhead_header {
        resp.headers_mut().insert(
            "x-moat-overhead-us",
            HeaderValue::from(overhead.as_micros() as u64),
        );
    }
}

fn record(st: &AppState, a: Admitted, answer: Answer) {
    let mut x = a.exchange;
    x.response = Some(answer);
    st.engine.published().count_answer(&x);
    st.recorder.record_exchange(x);
    if let Some(d) = a.decision {
        st.recorder.record_decision(d);
    }
}

/// Largest single server-sent event accepted from upstream.
const MAX_EVENT_BYTES: usize = 8 << 20;

/// A streamed answer: events pass as they arrive, through the dialect's filter.
fn stream(
    st: &Arc<AppState>,
    a: Admitted,
    status: StatusCode,
    mut headers: HeaderMap,
    body: hyper::body::Incoming,
    back: Instant,
) -> Response {
    let mode = match a.reasoning {
        Reasoning::Pass => StreamMode::Pass,
        Reasoning::Withhold => StreamMode::Withhold,
        // Without a summarizer there is nothing to wait for: the fallback applies at once.
        Reasoning::Summarize { fallback_withhold } if st.summarizer.is_none() => {
            if summary_failed(st, fallback_withhold) {
                StreamMode::Withhold
            } else {
                StreamMode::Pass
            }
        }
        Reasoning::Summarize { .. } => StreamMode::Summarize,
    };
    let filter = StreamFilter::new(
        a.endpoint,
        mode,
        st.sealer.clone(),
        a.exchange.account_id.clone(),
    );
    let overhead = a.before + back.elapsed();
    headers.remove(http::header::CONTENT_LENGTH);
    let upstream_ms = back.saturating_duration_since(a.started).as_millis() as u64;
    let pass = Passing {
        st: Arc::clone(st),
        a: Some(a),
        parser: SseParser::new(MAX_EVENT_BYTES),
        filter,
        body,
        done: false,
        status,
        upstream_ms,
        cut: false,
    };
    let s = futures_util::stream::unfold(pass, |mut p| async move {
        let item = p.next().await?;
        Some((Ok::<_, std::convert::Infallible>(item), p))
    });
    let mut resp = (status, headers, Body::from_stream(s)).into_response();
    finish_overhead(st, &mut resp, overhead);
    resp
}

/// The state of a stream in flight; records the exchange when it ends, however it ends
/// (upstream finished, budget cut, upstream failed, client gone).
struct Passing {
    st: Arc<AppState>,
    a: Option<Admitted>,
    parser: SseParser,
    filter: StreamFilter,
    body: hyper::body::Incoming,
    done: bool,
    status: StatusCode,
    upstream_ms: u64,
    cut: bool,
}

impl Passing {
    /// The next bytes for the client; `None` once the stream is over.
    async fn next(&mut self) -> Option<Bytes> {
        loop {
            if self.done {
                return None;
            }
            let out = match self.body.frame().await {
                Some(Ok(frame)) => {
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    self.parser.feed(&data);
                    self.drain().await
                }
                Some(Err(_)) => {
                    // Upstream died mid-stream: close the client's stream cleanly.
                    self.count_error("stream");
                    Err(self.filter.finish_early(EarlyStop::Policy))
                }
                None => {
                    let mut out = match self.drain().await {
                        Ok(b) => b.to_vec(),
                        Err(b) => {
                            self.end();
                            return Some(b);
                        }
                    };
                    if let Some(ev) = self.parser.finish() {
                        if let Ok(b) = self.filter.push(ev) {
                            out.extend_from_slice(&b);
                        }
                    }
                    match self.filter.finish() {
                        Ok(b) => out.extend_from_slice(&b),
                        Err(_) => self.count_error("stream"),
                    }
                    self.end();
                    return (!out.is_empty()).then(|| Bytes::from(out));
                }
            };
            match out {
                Ok(b) if b.is_empty() => continue,
                Ok(b) => return Some(b),
                Err(b) => {
                    self.end();
                    return (!b.is_empty()).then_some(b);
                }
            }
        }
    }

    /// Passes every complete event through the filter, charging tokens as they pass;
    /// `Err` carries the closing bytes when the stream must end now.
    async fn drain(&mut self) -> Result<Bytes, Bytes> {
        let mut out: Vec<u8> = Vec::new();
        loop {
            let ev = match self.parser.next_event() {
                Ok(Some(ev)) => ev,
                Ok(None) => break,
                Err(_) => {
                    self.count_error("stream");
                    out.extend_from_slice(&self.filter.finish_early(EarlyStop::Policy));
                    return Err(Bytes::from(out));
                }
            };
            let before = self.filter.output_tokens();
            match self.filter.push(ev) {
                Ok(b) => out.extend_from_slice(&b),
                Err(_) => {
                    self.count_error("stream");
                    out.extend_from_slice(&self.filter.finish_early(EarlyStop::Policy));
                    return Err(Bytes::from(out));
                }
            }
            if let Some(text) = self.filter.pending_summary().map(str::to_owned) {
                let summary = match &self.st.summarizer {
                    Some(s) => s.summarize(&text).await,
                    None => None,
                };
                let held = match summary {
                    Some(sum) => self.filter.supply_summary(&sum),
                    None => {
                        self.st.metrics.summary_fallbacks.inc();
                        self.filter.decline_summary()
                    }
                };
                match held {
                    Ok(b) => out.extend_from_slice(&b),
                    Err(_) => {
                        out.extend_from_slice(&self.filter.finish_early(EarlyStop::Policy));
                        return Err(Bytes::from(out));
                    }
                }
            }
            let spent = self.filter.output_tokens().saturating_sub(before);
            let scopes = self.a.as_ref().map_or(&[][..], |a| a.scopes.as_slice());
            if spent > 0 && !scopes.is_empty() && !charge(&self.st, scopes, spent).await {
                self.cut = true;
                self.st.metrics.streams_cut.inc();
                out.extend_from_slice(&self.filter.finish_early(EarlyStop::TokenBudget));
                return Err(Bytes::from(out));
            }
        }
        Ok(Bytes::from(out))
    }

    fn count_error(&self, kind: &'static str) {
        tracing::warn!(
            request_id = self
                .a
                .as_ref()
                .and_then(|a| a.exchange.request_id.as_deref())
                .unwrap_or(""),
            kind,
            "upstream stream failed; the client's stream was closed cleanly"
        );
        self.st
            .metrics
            .upstream_errors
            .get_or_create(&ErrorLabels { kind })
            .inc();
    }

    fn end(&mut self) {
        self.done = true;
        let Some(a) = self.a.take() else { return };
        let facts = self.filter.facts();
        let mut answer = answer_of(&facts, self.status, self.upstream_ms, self.st.record_text);
        if self.cut {
            answer.finish_reason = Some("length".to_owned());
        }
        if matches!(
            facts.disposition,
            moat_dialect::ReasoningDisposition::Withheld
                | moat_dialect::ReasoningDisposition::Summarized
        ) {
            self.st.metrics.reasoning_withheld.inc();
        }
        // Tokens of a stream that ran to its end were charged as they passed; the prompt's
        // are charged here, once upstream has counted them.
        if let Some(p) = facts.prompt_tokens {
            if !a.scopes.is_empty() {
                charge_later(&self.st, &a.scopes, p);
            }
        }
        record(&self.st, a, answer);
    }
}

impl Drop for Passing {
    fn drop(&mut self) {
        // The client went away mid-stream: what passed is still an exchange.
        if self.a.is_some() {
            self.end();
        }
    }
}

/// `GET /v1/models`: the upstream's list, for identified callers.
pub async fn models(State(st): State<Arc<AppState>>, req: http::Request<Body>) -> Response {
    let (parts, _) = req.into_parts();
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let shape = if parts.headers.contains_key("anthropic-version") {
        Shape::Anthropic
    } else {
        Shape::OpenAi
    };
    if let Err(u) = st.resolver.resolve(&parts.headers, peer) {
        return unidentified(u).shaped(shape).into_response();
    }
    let pq = parts
        .uri
        .path_and_query()
        .map_or("/v1/models", |p| p.as_str());
    let resp = match st
        .upstream
        .send(Method::GET, pq, &parts.headers, Bytes::new())
        .await
    {
        Ok(r) => r,
        Err(f) => {
            st.metrics
                .upstream_errors
                .get_or_create(&ErrorLabels { kind: f.kind() })
                .inc();
            return GatewayError::upstream(
                StatusCode::BAD_GATEWAY,
                "the model server could not be reached",
            )
            .shaped(shape)
            .into_response();
        }
    };
    let status = resp.status();
    let headers = crate::upstream::response_headers(resp.headers());
    match Limited::new(resp.into_body(), st.max_upstream_body)
        .collect()
        .await
    {
        Ok(c) => {
            st.metrics
                .requests
                .get_or_create(&RequestLabels {
                    endpoint: EndpointLabel::models,
                    class: class(status),
                })
                .inc();
            (status, headers, c.to_bytes()).into_response()
        }
        Err(_) => GatewayError::upstream(
            StatusCode::BAD_GATEWAY,
            "the model server's answer could not be read",
        )
        .shaped(shape)
        .into_response(),
    }
}

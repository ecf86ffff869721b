//! The axum router that ties the pieces together: record, apply the controls, answer.
//!
//! Each request goes through the same steps: it is recorded, its `x-mock-*` headers are read, the
//! latency is waited out, an injected error or a malformed request is answered in the endpoint's
//! own error shape, and otherwise the endpoint module builds the JSON body or the SSE frames. This
//! module only does HTTP plumbing; what replies say is decided elsewhere.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;

use crate::log::RequestLog;
use crate::request::{plan, Controls, Endpoint, Fault};
use crate::{anthropic, openai, responses, sse, MockConfig};

/// What every handler shares.
struct Shared {
    cfg: MockConfig,
    log: RequestLog,
    /// Numbers requests, for ids and `x-request-id`.
    seq: AtomicU64,
    /// The `/v1/models` body, serialised once.
    models: Bytes,
}

/// Builds the router and returns the handle to its request record.
pub(crate) fn build(cfg: MockConfig) -> (Router, RequestLog) {
    let log = RequestLog::new(cfg.record_limit);
    let models_body = openai::models_json().map(Bytes::from).unwrap_or_default();
    let body_limit = cfg.max_body_bytes;
    let shared = Arc::new(Shared {
        cfg,
        log: log.clone(),
        seq: AtomicU64::new(0),
        models: models_body,
    });
    let router = Router::new()
        .route("/v1/models", get(models))
        .route("/v1/chat/completions", post(chat))
        .route("/v1/completions", post(completions))
        .route("/v1/responses", post(responses_api))
        .route("/v1/messages", post(messages))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(shared);
    (router, log)
}

async fn models(State(s): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    handle(&s, Endpoint::Models, &headers, Bytes::new()).await
}

async fn chat(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    handle(&s, Endpoint::Chat, &headers, body).await
}

async fn completions(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    handle(&s, Endpoint::Completions, &headers, body).await
}

async fn responses_api(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    handle(&s, Endpoint::Responses, &headers, body).await
}

async fn messages(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    handle(&s, Endpoint::Messages, &headers, body).await
}

async fn not_found() -> Response {
    error(
        Endpoint::Chat,
        &Fault {
            status: StatusCode::NOT_FOUND,
            message: "the mock upstream has no such route".into(),
        },
        None,
    )
}

async fn handle(s: &Shared, endpoint: Endpoint, headers: &HeaderMap, body: Bytes) -> Response {
    let method = if endpoint == Endpoint::Models {
        "GET"
    } else {
        "POST"
    };
    s.log.record(method, endpoint.path(), headers, &body);
    let seq = s.seq.fetch_add(1, Ordering::Relaxed);
    let controls = match Controls::from_headers(headers, &s.cfg) {
        Ok(controls) => controls,
        Err(fault) => return error(endpoint, &fault, Some(seq)),
    };
    if !controls.latency.is_zero() {
        tokio::time::sleep(controls.latency).await;
    }
    if let Some(status) = controls.status {
        return error(endpoint, &Fault::injected(status), Some(seq));
    }
    if endpoint == Endpoint::Models {
        return reply(
            StatusCode::OK,
            "application/json",
            Body::from(s.models.clone()),
            seq,
        );
    }
    let plan = match plan(endpoint, &body, &controls, s.cfg.reasoning, seq) {
        Ok(plan) => plan,
        Err(fault) => return error(endpoint, &fault, Some(seq)),
    };
    if plan.stream {
        let frames = match endpoint {
            Endpoint::Chat => openai::chat_frames(&plan),
            Endpoint::Completions => openai::completion_frames(&plan),
            Endpoint::Responses => responses::frames(&plan),
            Endpoint::Messages => anthropic::frames(&plan),
            // The model list was answered above and has no stream.
            Endpoint::Models => return internal(endpoint, seq),
        };
        match frames {
            Ok(frames) => {
                let body = sse::body(frames, controls.interval, controls.drop_after);
                let mut response = reply(StatusCode::OK, "text/event-stream", body, seq);
                response
                    .headers_mut()
                    .insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
                response
            }
            Err(_) => internal(endpoint, seq),
        }
    } else {
        let json = match endpoint {
            Endpoint::Chat => openai::chat_json(&plan),
            Endpoint::Completions => openai::completion_json(&plan),
            Endpoint::Responses => responses::json(&plan),
            Endpoint::Messages => anthropic::json(&plan),
            // The model list was answered above.
            Endpoint::Models => return internal(endpoint, seq),
        };
        match json {
            Ok(json) => reply(StatusCode::OK, "application/json", Body::from(json), seq),
            Err(_) => internal(endpoint, seq),
        }
    }
}

/// A response with a status, a content type, a body and the request id.
fn reply(status: StatusCode, content_type: &'static str, body: Body, seq: u64) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(id) = HeaderValue::try_from(format!("req_mock{seq}")) {
        headers.insert("x-request-id", id);
    }
    response
}

/// An error in the endpoint's shape: Anthropic's for `/v1/messages`, OpenAI's elsewhere.
fn error(endpoint: Endpoint, fault: &Fault, seq: Option<u64>) -> Response {
    let body = match endpoint {
        Endpoint::Messages => anthropic::error_json(fault.status, &fault.message),
        _ => openai::error_json(fault.status, &fault.message),
    };
    let Ok(body) = body else {
        return internal(endpoint, seq.unwrap_or_default());
    };
    let mut response = reply(
        fault.status,
        "application/json",
        Body::from(body),
        seq.unwrap_or_default(),
    );
    if seq.is_none() {
        response.headers_mut().remove("x-request-id");
    }
    if fault.status == StatusCode::TOO_MANY_REQUESTS {
        // Real rate limiters say when to come back; retrying clients read this.
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

/// The reply when building a body failed, which only a bug in this crate can cause.
fn internal(endpoint: Endpoint, seq: u64) -> Response {
    let body: &'static [u8] = match endpoint {
        Endpoint::Messages => {
            br#"{"type":"error","error":{"type":"api_error","message":"mock upstream failed to build its reply"}}"#
        }
        _ => {
            br#"{"error":{"message":"mock upstream failed to build its reply","type":"server_error","param":null,"code":null}}"#
        }
    };
    reply(
        StatusCode::INTERNAL_SERVER_ERROR,
        "application/json",
        Body::from(body),
        seq,
    )
}

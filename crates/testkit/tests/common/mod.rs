//! Helpers shared by the integration tests: drive the router with `oneshot` and read replies
//! back, streamed ones frame by frame.

#![allow(dead_code)]

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use moat_testkit::{parse_sse, SseEvent};
use serde_json::Value;
use std::time::{Duration, Instant};
use tower::ServiceExt;

/// A reply read to its end, or to the error that cut it short.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    /// The number of body frames received before the end.
    pub frames: usize,
    /// Whether the body ended with an error (a dropped stream) rather than cleanly.
    pub aborted: bool,
    /// When each body frame arrived, measured from just before the request was sent.
    pub arrivals: Vec<Duration>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("reply body is JSON")
    }

    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("reply body is UTF-8")
    }

    pub fn events(&self) -> Vec<SseEvent> {
        parse_sse(self.text())
    }

    /// Every event's data parsed as JSON, skipping `[DONE]`.
    pub fn event_json(&self) -> Vec<Value> {
        self.events().iter().filter_map(SseEvent::json).collect()
    }
}

/// Sends one request through the router and reads the whole reply.
pub async fn send(
    router: &Router,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Value,
) -> Reply {
    let mut request = Request::builder().method(method).uri(path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let body = if body.is_null() {
        Body::empty()
    } else {
        request = request.header("content-type", "application/json");
        Body::from(serde_json::to_vec(&body).unwrap())
    };
    let start = Instant::now();
    let response = router
        .clone()
        .oneshot(request.body(body).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let mut body = response.into_body();
    let mut bytes = Vec::new();
    let mut frames = 0;
    let mut aborted = false;
    let mut arrivals = Vec::new();
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => {
                if let Some(data) = frame.data_ref() {
                    bytes.extend_from_slice(data);
                    frames += 1;
                    arrivals.push(start.elapsed());
                }
            }
            Err(_) => {
                aborted = true;
                break;
            }
        }
    }
    Reply {
        status,
        headers,
        body: bytes,
        frames,
        aborted,
        arrivals,
    }
}

/// Posts a JSON body.
pub async fn post(router: &Router, path: &str, body: Value) -> Reply {
    send(router, "POST", path, &[], body).await
}

/// Posts a JSON body with extra headers.
pub async fn post_with(
    router: &Router,
    path: &str,
    headers: &[(&str, &str)],
    body: Value,
) -> Reply {
    send(router, "POST", path, headers, body).await
}

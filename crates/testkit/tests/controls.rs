//! The `x-mock-*` control headers, latency and pacing, malformed requests and the request record,
//! through the router without sockets.
//!
//! Timing tests assert only lower bounds, which sleeps guarantee, so they cannot be flaky.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::{post, post_with, send};
use moat_testkit::text::{expected_content, expected_reasoning, REASONING_MARKER};
use moat_testkit::{router, router_with_log, MockConfig, Reasoning};
use serde_json::{json, Value};

fn chat(stream: bool) -> Value {
    json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "stream": stream})
}

fn messages(stream: bool) -> Value {
    json!({"model": "claude", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}], "stream": stream})
}

#[tokio::test]
async fn injected_status_gets_an_openai_shaped_error() {
    let app = router(MockConfig::default());
    for (status, kind) in [
        ("500", "server_error"),
        ("503", "server_error"),
        ("429", "requests"),
    ] {
        for path in ["/v1/chat/completions", "/v1/completions", "/v1/responses"] {
            for stream in [false, true] {
                let body = json!({"model": "m", "messages": [], "prompt": "p", "input": "i", "stream": stream});
                let reply = post_with(&app, path, &[("x-mock-status", status)], body).await;
                assert_eq!(reply.status.as_str(), status, "{path}");
                assert_eq!(reply.headers["content-type"], "application/json");
                let error = &reply.json()["error"];
                assert_eq!(error["type"], kind);
                assert!(error["message"].as_str().unwrap().contains(status));
                assert!(error.get("code").is_some() && error.get("param").is_some());
            }
        }
    }
}

#[tokio::test]
async fn injected_status_gets_an_anthropic_shaped_error_on_messages() {
    let app = router(MockConfig::default());
    for (status, kind) in [
        ("500", "api_error"),
        ("503", "overloaded_error"),
        ("529", "overloaded_error"),
        ("429", "rate_limit_error"),
    ] {
        let reply = post_with(
            &app,
            "/v1/messages",
            &[("x-mock-status", status)],
            messages(true),
        )
        .await;
        assert_eq!(reply.status.as_str(), status);
        let body = reply.json();
        assert_eq!(body["type"], "error");
        assert_eq!(body["error"]["type"], kind);
        assert!(body["error"]["message"].is_string());
        assert!(body.get("choices").is_none());
    }
}

#[tokio::test]
async fn rate_limit_errors_say_when_to_retry() {
    let app = router(MockConfig::default());
    let reply = post_with(
        &app,
        "/v1/chat/completions",
        &[("x-mock-status", "429")],
        chat(false),
    )
    .await;
    assert_eq!(reply.headers["retry-after"], "1");
    let reply = post_with(
        &app,
        "/v1/chat/completions",
        &[("x-mock-status", "500")],
        chat(false),
    )
    .await;
    assert!(!reply.headers.contains_key("retry-after"));
}

#[tokio::test]
async fn injected_status_applies_to_the_model_list() {
    let app = router(MockConfig::default());
    let reply = send(
        &app,
        "GET",
        "/v1/models",
        &[("x-mock-status", "503")],
        Value::Null,
    )
    .await;
    assert_eq!(reply.status, 503);
    assert!(reply.json()["error"].is_object());
}

#[tokio::test]
async fn drop_after_aborts_the_stream_after_k_deltas_without_finishing() {
    let app = router(MockConfig::default());
    let reply = post_with(
        &app,
        "/v1/chat/completions",
        &[("x-mock-drop-after", "3")],
        chat(true),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert!(
        reply.aborted,
        "the body must end with an error, not cleanly"
    );
    let chunks = reply.event_json();
    assert_eq!(chunks.len(), 1 + 3, "the role chunk and three deltas");
    let content: String = chunks[1..]
        .iter()
        .map(|c| c["choices"][0]["delta"]["content"].as_str().unwrap())
        .collect();
    assert_eq!(content, "This is a");
    assert!(chunks
        .iter()
        .all(|c| c["choices"][0]["finish_reason"].is_null()));
    assert!(!reply.text().contains("[DONE]"));
}

#[tokio::test]
async fn drop_after_zero_keeps_only_the_preamble() {
    let app = router(MockConfig::default());
    let reply = post_with(
        &app,
        "/v1/messages",
        &[("x-mock-drop-after", "0")],
        messages(true),
    )
    .await;
    assert!(reply.aborted);
    let names: Vec<String> = reply
        .events()
        .into_iter()
        .map(|e| e.event.unwrap())
        .collect();
    assert_eq!(names, ["message_start", "content_block_start", "ping"]);
}

#[tokio::test]
async fn drop_after_every_delta_still_cuts_before_the_finish() {
    let app = router(MockConfig {
        chunks: 2,
        ..MockConfig::default()
    });
    for path in ["/v1/chat/completions", "/v1/responses", "/v1/messages"] {
        let body = json!({"model": "mock-reasoning", "messages": [], "input": "x", "stream": true});
        let reply = post_with(&app, path, &[("x-mock-drop-after", "100")], body).await;
        assert!(reply.aborted, "{path}");
        let text = reply.text();
        // Both content deltas went out ...
        assert!(
            text.contains("This is a mock") && text.contains(" reply to "),
            "{path}"
        );
        // ... but nothing that finishes the stream did.
        for finish in [
            "[DONE]",
            "\"finish_reason\":\"stop\"",
            "response.output_text.done",
            "response.completed",
            "message_delta",
            "message_stop",
        ] {
            assert!(!text.contains(finish), "{path} sent {finish}");
        }
        // The thinking block closes before the text, but the text block never closes.
        assert!(
            text.matches("event: content_block_stop").count() <= 1,
            "{path}"
        );
    }
}

#[tokio::test]
async fn drop_after_counts_reasoning_deltas_too() {
    let app = router(MockConfig {
        chunks: 4,
        ..MockConfig::default()
    });
    let body = json!({"model": "mock-reasoning-content", "messages": [], "stream": true});
    let reply = post_with(
        &app,
        "/v1/chat/completions",
        &[("x-mock-drop-after", "4")],
        body,
    )
    .await;
    assert!(reply.aborted);
    let chunks = reply.event_json();
    assert_eq!(chunks.len(), 5);
    let reasoning: String = chunks[1..]
        .iter()
        .map(|c| {
            c["choices"][0]["delta"]["reasoning_content"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(reasoning, expected_reasoning(0, 4));
    assert!(!reply.text().contains("\"content\":\"This"));
}

#[tokio::test]
async fn drop_after_is_ignored_without_a_stream() {
    let app = router(MockConfig::default());
    let reply = post_with(
        &app,
        "/v1/chat/completions",
        &[("x-mock-drop-after", "1")],
        chat(false),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert!(!reply.aborted);
    assert_eq!(
        reply.json()["choices"][0]["message"]["content"],
        expected_content(1, 8)
    );
}

#[tokio::test]
async fn latency_header_delays_the_reply() {
    let app = router(MockConfig::default());
    let start = Instant::now();
    let reply = post_with(
        &app,
        "/v1/chat/completions",
        &[("x-mock-latency-ms", "80")],
        chat(false),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert!(start.elapsed() >= Duration::from_millis(80));
}

#[tokio::test]
async fn configured_latency_delays_errors_and_streams_too() {
    let app = router(MockConfig {
        latency: Duration::from_millis(60),
        ..MockConfig::default()
    });
    let reply = post_with(
        &app,
        "/v1/messages",
        &[("x-mock-status", "500")],
        messages(false),
    )
    .await;
    assert_eq!(reply.status, 500);
    assert!(reply.arrivals[0] >= Duration::from_millis(60));
    let reply = post(&app, "/v1/chat/completions", chat(true)).await;
    assert!(reply.arrivals[0] >= Duration::from_millis(60));
    // A per-request header overrides the configured latency, here down to nothing.
    let reply = post_with(
        &app,
        "/v1/chat/completions",
        &[("x-mock-latency-ms", "0")],
        chat(false),
    )
    .await;
    assert_eq!(reply.status, 200);
}

#[tokio::test]
async fn deltas_are_paced_by_the_interval() {
    let app = router(MockConfig {
        chunks: 4,
        interval: Duration::from_millis(40),
        ..MockConfig::default()
    });
    let reply = post(&app, "/v1/chat/completions", chat(true)).await;
    // Frames: role, four deltas, finish, [DONE]. Pacing starts once the role chunk has been
    // read, and delta k waits until k intervals after that, so these lower bounds always hold.
    assert_eq!(reply.frames, 7);
    for k in 1..=4 {
        let since_role = reply.arrivals[k] - reply.arrivals[0];
        assert!(
            since_role >= Duration::from_millis(40 * k as u64),
            "delta {k}: {:?}",
            reply.arrivals
        );
    }
}

#[tokio::test]
async fn interval_header_overrides_the_configuration() {
    let app = router(MockConfig::default());
    let reply = post_with(
        &app,
        "/v1/messages",
        &[("x-mock-interval-ms", "25"), ("x-mock-chunks", "3")],
        messages(true),
    )
    .await;
    let deltas = reply
        .events()
        .iter()
        .filter(|e| e.event.as_deref() == Some("content_block_delta"))
        .count();
    assert_eq!(deltas, 3);
    assert!(*reply.arrivals.last().unwrap() >= Duration::from_millis(75));
}

#[tokio::test]
async fn chunks_header_changes_the_number_of_deltas() {
    let app = router(MockConfig::default());
    let reply = post_with(
        &app,
        "/v1/chat/completions",
        &[("x-mock-chunks", "12")],
        chat(true),
    )
    .await;
    let chunks = reply.event_json();
    assert_eq!(chunks.len(), 1 + 12 + 1);
    let content: String = chunks[1..13]
        .iter()
        .map(|c| c["choices"][0]["delta"]["content"].as_str().unwrap())
        .collect();
    assert_eq!(content, expected_content(1, 12));
}

#[tokio::test]
async fn reasoning_header_overrides_the_model_name() {
    let app = router(MockConfig::default());
    let reply = post_with(
        &app,
        "/v1/chat/completions",
        &[("x-mock-reasoning", "reasoning_content")],
        json!({"model": "mock-plain", "messages": []}),
    )
    .await;
    let message = &reply.json()["choices"][0]["message"];
    assert!(message["reasoning_content"]
        .as_str()
        .unwrap()
        .starts_with(REASONING_MARKER));
    let reply = post_with(
        &app,
        "/v1/messages",
        &[("x-mock-reasoning", Reasoning::Plain.name())],
        json!({"model": "mock-reasoning-details", "messages": []}),
    )
    .await;
    assert_eq!(reply.json()["content"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn malformed_control_headers_are_rejected_in_the_endpoint_shape() {
    let app = router(MockConfig::default());
    let reply = post_with(
        &app,
        "/v1/chat/completions",
        &[("x-mock-status", "teapot")],
        chat(false),
    )
    .await;
    assert_eq!(reply.status, 400);
    assert!(reply.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("x-mock-status"));
    let reply = post_with(
        &app,
        "/v1/messages",
        &[("x-mock-reasoning", "deep")],
        messages(false),
    )
    .await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["error"]["type"], "invalid_request_error");
}

#[tokio::test]
async fn malformed_bodies_get_400_without_echoing_the_prompt() {
    let app = router(MockConfig::default());
    for path in ["/v1/chat/completions", "/v1/completions", "/v1/messages"] {
        let reply = post(
            &app,
            path,
            json!({"model": "m", "messages": "secret words", "prompt": 7}),
        )
        .await;
        assert_eq!(reply.status, 400, "{path}");
        assert!(!reply.text().contains("secret"), "{path}: {}", reply.text());
    }
    let reply = post(&app, "/v1/chat/completions", json!({"messages": []})).await;
    assert_eq!(reply.status, 400);
    assert!(reply.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("model"));
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let app = router(MockConfig {
        max_body_bytes: 1024,
        ..MockConfig::default()
    });
    let big = "x".repeat(4096);
    let reply = post(
        &app,
        "/v1/chat/completions",
        json!({"model": "m", "messages": [{"role": "user", "content": big}]}),
    )
    .await;
    assert_eq!(reply.status, 413);
}

#[tokio::test]
async fn requests_records_path_headers_and_body() {
    let (app, log) = router_with_log(MockConfig::default());
    let body = json!({
        "model": "mock-reasoning-content",
        "messages": [
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": "a", "reasoning_content": "restored reasoning"},
        ],
    });
    post_with(
        &app,
        "/v1/chat/completions",
        &[
            ("authorization", "Bearer upstream-key"),
            ("x-moat-trace", "t1"),
        ],
        body.clone(),
    )
    .await;
    send(&app, "GET", "/v1/models", &[], Value::Null).await;
    let seen = log.requests();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0]["method"], "POST");
    assert_eq!(seen[0]["path"], "/v1/chat/completions");
    assert_eq!(seen[0]["body"], body);
    assert_eq!(
        seen[0]["body"]["messages"][1]["reasoning_content"],
        "restored reasoning"
    );
    assert_eq!(seen[0]["headers"]["authorization"], "Bearer upstream-key");
    assert_eq!(seen[0]["headers"]["x-moat-trace"], "t1");
    assert_eq!(seen[0]["headers"]["content-type"], "application/json");
    assert_eq!(seen[1]["method"], "GET");
    assert_eq!(seen[1]["path"], "/v1/models");
    log.clear();
    assert!(log.requests().is_empty());
}

#[tokio::test]
async fn rejected_requests_are_recorded_too() {
    let (app, log) = router_with_log(MockConfig::default());
    post_with(
        &app,
        "/v1/messages",
        &[("x-mock-status", "500")],
        messages(false),
    )
    .await;
    post(&app, "/v1/completions", json!({"model": "m"})).await;
    let paths: Vec<Value> = log.requests().iter().map(|r| r["path"].clone()).collect();
    assert_eq!(paths, [json!("/v1/messages"), json!("/v1/completions")]);
}

#[tokio::test]
async fn replies_are_deterministic_apart_from_ids() {
    let app = router(MockConfig::default());
    let strip = |mut v: Value| {
        v["id"] = Value::Null;
        v
    };
    let a = post(&app, "/v1/chat/completions", chat(false)).await.json();
    let b = post(&app, "/v1/chat/completions", chat(false)).await.json();
    assert_ne!(a["id"], b["id"], "ids tell requests apart");
    assert_eq!(strip(a), strip(b));
}

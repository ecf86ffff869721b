//! Chat completions, legacy completions and the model list, through the router without sockets.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{post, send};
use moat_testkit::text::{
    expected_content, expected_reasoning, expected_think_content, REASONING_MARKER, SIGNATURE,
};
use moat_testkit::{router, MockConfig, Reasoning};
use serde_json::{json, Value};

const REASONING_FIELDS: [&str; 3] = ["reasoning_content", "reasoning", "reasoning_details"];

fn chat_body(model: &str, stream: bool) -> Value {
    json!({
        "model": model,
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hello"},
        ],
        "stream": stream,
        "stream_options": {"include_usage": true},
    })
}

/// The one field a dialect puts reasoning in, or none.
fn field_of(variant: Reasoning) -> Option<&'static str> {
    match variant {
        Reasoning::ReasoningContent => Some("reasoning_content"),
        Reasoning::Reasoning => Some("reasoning"),
        Reasoning::ReasoningDetails => Some("reasoning_details"),
        _ => None,
    }
}

#[tokio::test]
async fn chat_completion_has_the_openai_shape_and_deterministic_content() {
    let app = router(MockConfig::default());
    let reply = post(&app, "/v1/chat/completions", chat_body("gpt-4o", false)).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.headers["content-type"], "application/json");
    assert!(reply.headers.contains_key("x-request-id"));
    let body = reply.json();
    assert_eq!(body["object"], "chat.completion");
    assert!(body["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert!(body["created"].is_u64());
    assert_eq!(body["model"], "gpt-4o");
    let choice = &body["choices"][0];
    assert_eq!(choice["index"], 0);
    assert_eq!(choice["finish_reason"], "stop");
    assert_eq!(choice["message"]["role"], "assistant");
    assert_eq!(choice["message"]["content"], expected_content(2, 8));
    assert_eq!(
        choice["message"]["content"],
        "This is a mock reply to 2 messages."
    );
    for field in REASONING_FIELDS {
        assert!(
            choice["message"].get(field).is_none(),
            "{field} in a plain reply"
        );
    }
    let usage = &body["usage"];
    assert_eq!(usage["completion_tokens"], 8);
    assert_eq!(usage["completion_tokens_details"]["reasoning_tokens"], 0);
    assert_eq!(
        usage["total_tokens"].as_u64().unwrap(),
        usage["prompt_tokens"].as_u64().unwrap() + 8
    );
}

#[tokio::test]
async fn each_reasoning_variant_puts_reasoning_in_its_own_field() {
    let app = router(MockConfig::default());
    for variant in Reasoning::ALL {
        let reply = post(
            &app,
            "/v1/chat/completions",
            chat_body(variant.model(), false),
        )
        .await;
        assert_eq!(reply.status, 200, "{variant}");
        let body = reply.json();
        let message = &body["choices"][0]["message"];
        let expected_field = field_of(variant);
        for field in REASONING_FIELDS {
            assert_eq!(
                message.get(field).is_some(),
                Some(field) == expected_field,
                "{variant}: field {field}"
            );
        }
        let reasoning = expected_reasoning(2, 8);
        match variant {
            Reasoning::ReasoningContent => assert_eq!(message["reasoning_content"], reasoning),
            Reasoning::Reasoning => assert_eq!(message["reasoning"], reasoning),
            Reasoning::ReasoningDetails => {
                let details = message["reasoning_details"].as_array().unwrap();
                assert_eq!(details.len(), 1);
                assert_eq!(details[0]["type"], "reasoning.text");
                assert_eq!(details[0]["text"], reasoning);
                assert_eq!(details[0]["signature"], SIGNATURE);
            }
            _ => {}
        }
        if variant == Reasoning::Think {
            assert_eq!(message["content"], expected_think_content(2, 8));
            assert!(message["content"]
                .as_str()
                .unwrap()
                .starts_with("<think>\n"));
        } else {
            assert_eq!(message["content"], expected_content(2, 8));
        }
        let reasoning_tokens = if variant == Reasoning::Plain { 0 } else { 8 };
        assert_eq!(
            body["usage"]["completion_tokens_details"]["reasoning_tokens"], reasoning_tokens,
            "{variant}"
        );
    }
}

#[tokio::test]
async fn config_default_variant_applies_to_other_model_names() {
    let app = router(MockConfig {
        reasoning: Reasoning::ReasoningContent,
        ..MockConfig::default()
    });
    let body = post(&app, "/v1/chat/completions", chat_body("qwen3", false))
        .await
        .json();
    assert!(body["choices"][0]["message"]["reasoning_content"]
        .as_str()
        .unwrap()
        .starts_with(REASONING_MARKER));
    // The model name still wins over the configured default.
    let body = post(&app, "/v1/chat/completions", chat_body("mock-plain", false))
        .await
        .json();
    assert!(body["choices"][0]["message"]
        .get("reasoning_content")
        .is_none());
}

/// Checks the framing every chat stream shares and returns the chunks between the role chunk and
/// the finish chunk.
fn check_chat_stream(reply: &common::Reply, model: &str, with_usage: bool) -> Vec<Value> {
    assert_eq!(reply.status, 200);
    assert_eq!(reply.headers["content-type"], "text/event-stream");
    assert!(reply.text().ends_with("data: [DONE]\n\n"));
    let events = reply.events();
    assert!(
        events.iter().all(|e| e.event.is_none()),
        "chat streams have no event names"
    );
    assert_eq!(events.last().unwrap().data, "[DONE]");
    let chunks: Vec<Value> = reply.event_json();
    assert_eq!(
        chunks.len() + 1,
        events.len(),
        "every event but [DONE] is JSON"
    );
    let id = chunks[0]["id"].clone();
    for chunk in &chunks {
        assert_eq!(chunk["object"], "chat.completion.chunk");
        assert_eq!(chunk["id"], id);
        assert_eq!(chunk["model"], model);
        assert!(chunk["created"].is_u64());
    }
    let first = &chunks[0]["choices"][0];
    assert_eq!(first["delta"], json!({"role": "assistant", "content": ""}));
    assert!(first["finish_reason"].is_null());
    let tail = if with_usage { 2 } else { 1 };
    let finish = &chunks[chunks.len() - tail];
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    assert_eq!(finish["choices"][0]["delta"], json!({}));
    if with_usage {
        let usage = chunks.last().unwrap();
        assert_eq!(usage["choices"], json!([]));
        assert!(usage["usage"]["total_tokens"].is_u64());
    } else {
        assert!(chunks.iter().all(|c| c.get("usage").is_none()));
    }
    chunks[1..chunks.len() - tail].to_vec()
}

#[tokio::test]
async fn chat_stream_sends_role_deltas_finish_usage_and_done() {
    let app = router(MockConfig::default());
    let reply = post(&app, "/v1/chat/completions", chat_body("gpt-4o", true)).await;
    let deltas = check_chat_stream(&reply, "gpt-4o", true);
    assert_eq!(deltas.len(), 8, "default chunks");
    let content: String = deltas
        .iter()
        .map(|d| d["choices"][0]["delta"]["content"].as_str().unwrap())
        .collect();
    assert_eq!(content, expected_content(2, 8));
    let usage = reply.event_json().last().unwrap()["usage"].clone();
    assert_eq!(usage["completion_tokens"], 8);
    // Each event went out as a body frame of its own rather than one buffered string.
    assert_eq!(reply.frames, reply.events().len());
}

#[tokio::test]
async fn chat_stream_without_include_usage_has_no_usage_chunk() {
    let app = router(MockConfig {
        chunks: 3,
        ..MockConfig::default()
    });
    let body =
        json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": true});
    let reply = post(&app, "/v1/chat/completions", body).await;
    let deltas = check_chat_stream(&reply, "m", false);
    assert_eq!(deltas.len(), 3);
}

#[tokio::test]
async fn chat_stream_sends_reasoning_deltas_before_content_in_every_variant() {
    let app = router(MockConfig::default());
    for variant in Reasoning::ALL {
        let reply = post(
            &app,
            "/v1/chat/completions",
            chat_body(variant.model(), true),
        )
        .await;
        let deltas = check_chat_stream(&reply, variant.model(), true);
        let usage = reply.event_json().last().unwrap()["usage"].clone();
        let mut reasoning = String::new();
        let mut content = String::new();
        let mut signatures = Vec::new();
        for (i, chunk) in deltas.iter().enumerate() {
            let delta = &chunk["choices"][0]["delta"];
            let fields: Vec<&String> = delta.as_object().unwrap().keys().collect();
            assert_eq!(
                fields.len(),
                1,
                "{variant}: one field a delta, got {fields:?}"
            );
            if let Some(text) = delta["content"].as_str() {
                content.push_str(text);
                continue;
            }
            assert!(
                content.is_empty(),
                "{variant}: reasoning after content at {i}"
            );
            match variant {
                Reasoning::ReasoningContent => {
                    reasoning.push_str(delta["reasoning_content"].as_str().unwrap())
                }
                Reasoning::Reasoning => reasoning.push_str(delta["reasoning"].as_str().unwrap()),
                Reasoning::ReasoningDetails => {
                    let detail = &delta["reasoning_details"][0];
                    assert_eq!(detail["type"], "reasoning.text");
                    reasoning.push_str(detail["text"].as_str().unwrap());
                    signatures.push(detail.get("signature").cloned());
                }
                other => panic!("{other}: unexpected delta {delta}"),
            }
        }
        match variant {
            Reasoning::Plain => {
                assert_eq!(deltas.len(), 8);
                assert_eq!(content, expected_content(2, 8));
            }
            Reasoning::Think => {
                assert_eq!(deltas.len(), 16);
                assert_eq!(content, expected_think_content(2, 8));
            }
            _ => {
                assert_eq!(deltas.len(), 16);
                assert_eq!(reasoning, expected_reasoning(2, 8));
                assert_eq!(content, expected_content(2, 8));
            }
        }
        if variant == Reasoning::ReasoningDetails {
            // Only the last reasoning delta carries the signature, as OpenRouter sends it.
            assert_eq!(signatures.len(), 8);
            assert!(signatures[..7].iter().all(Option::is_none));
            assert_eq!(signatures[7], Some(json!(SIGNATURE)));
        }
        let reasoning_tokens = if variant == Reasoning::Plain { 0 } else { 8 };
        assert_eq!(
            usage["completion_tokens_details"]["reasoning_tokens"],
            reasoning_tokens
        );
    }
}

#[tokio::test]
async fn completions_answer_text_and_stream_it() {
    let app = router(MockConfig {
        chunks: 4,
        ..MockConfig::default()
    });
    let body = post(
        &app,
        "/v1/completions",
        json!({"model": "m", "prompt": "Once"}),
    )
    .await
    .json();
    assert_eq!(body["object"], "text_completion");
    assert!(body["id"].as_str().unwrap().starts_with("cmpl-"));
    assert_eq!(body["choices"][0]["text"], expected_content(1, 4));
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert_eq!(body["usage"]["completion_tokens"], 4);

    let reply = post(
        &app,
        "/v1/completions",
        json!({"model": "m", "prompt": ["a", "b"], "stream": true, "stream_options": {"include_usage": true}}),
    )
    .await;
    assert_eq!(reply.headers["content-type"], "text/event-stream");
    assert_eq!(reply.events().last().unwrap().data, "[DONE]");
    let chunks = reply.event_json();
    assert_eq!(chunks.len(), 4 + 2, "deltas, finish, usage");
    assert!(chunks.iter().all(|c| c["object"] == "text_completion"));
    let text: String = chunks[..4]
        .iter()
        .map(|c| c["choices"][0]["text"].as_str().unwrap())
        .collect();
    assert_eq!(text, expected_content(2, 4));
    assert_eq!(chunks[4]["choices"][0]["finish_reason"], "stop");
    assert_eq!(chunks[5]["choices"], json!([]));
    assert_eq!(chunks[5]["usage"]["completion_tokens"], 4);
}

#[tokio::test]
async fn completions_show_reasoning_only_inline() {
    let app = router(MockConfig::default());
    let think = post(
        &app,
        "/v1/completions",
        json!({"model": "mock-think", "prompt": "x"}),
    )
    .await
    .json();
    assert_eq!(think["choices"][0]["text"], expected_think_content(1, 8));
    let separate = post(
        &app,
        "/v1/completions",
        json!({"model": "mock-reasoning-content", "prompt": "x"}),
    )
    .await
    .json();
    assert_eq!(separate["choices"][0]["text"], expected_content(1, 8));
    assert_eq!(
        separate["usage"]["completion_tokens_details"]["reasoning_tokens"],
        0
    );
    assert!(!separate.to_string().contains(REASONING_MARKER));
}

#[tokio::test]
async fn models_lists_one_model_per_reasoning_variant() {
    let app = router(MockConfig::default());
    let reply = send(&app, "GET", "/v1/models", &[], Value::Null).await;
    assert_eq!(reply.status, 200);
    let body = reply.json();
    assert_eq!(body["object"], "list");
    let ids: Vec<&str> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    for variant in Reasoning::ALL {
        assert!(
            ids.contains(&variant.model()),
            "{} missing",
            variant.model()
        );
    }
    assert!(body["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["object"] == "model"));
}

#[tokio::test]
async fn unknown_routes_get_an_openai_shaped_404() {
    let app = router(MockConfig::default());
    let reply = post(&app, "/v1/embeddings", json!({"model": "m"})).await;
    assert_eq!(reply.status, 404);
    assert!(reply.json()["error"]["message"].is_string());
}

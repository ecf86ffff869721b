//! The Responses API and the Anthropic Messages API, through the router without sockets.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::post;
use moat_testkit::text::{
    expected_content, expected_reasoning, expected_think_content, REASONING_MARKER, SIGNATURE,
};
use moat_testkit::{router, MockConfig, Reasoning};
use serde_json::{json, Value};

fn responses_body(model: &str, stream: bool) -> Value {
    json!({
        "model": model,
        "input": [{"role": "user", "content": "hi"}, {"role": "user", "content": "again"}],
        "stream": stream,
    })
}

fn messages_body(model: &str, stream: bool) -> Value {
    json!({
        "model": model,
        "max_tokens": 64,
        "system": "be brief",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": stream,
    })
}

#[tokio::test]
async fn response_object_has_a_reasoning_item_before_the_message() {
    let app = router(MockConfig::default());
    for variant in Reasoning::ALL {
        let body = post(
            &app,
            "/v1/responses",
            responses_body(variant.model(), false),
        )
        .await
        .json();
        assert_eq!(body["object"], "response", "{variant}");
        assert_eq!(body["status"], "completed");
        assert_eq!(body["model"], variant.model());
        assert!(body["id"].as_str().unwrap().starts_with("resp_"));
        let output = body["output"].as_array().unwrap();
        let message = output.last().unwrap();
        assert_eq!(message["type"], "message");
        assert_eq!(message["role"], "assistant");
        assert_eq!(message["content"][0]["type"], "output_text");
        let text = message["content"][0]["text"].as_str().unwrap();
        let usage = &body["usage"];
        assert_eq!(
            usage["total_tokens"].as_u64().unwrap(),
            usage["input_tokens"].as_u64().unwrap() + usage["output_tokens"].as_u64().unwrap()
        );
        match variant {
            Reasoning::Plain => {
                assert_eq!(output.len(), 1);
                assert_eq!(text, expected_content(2, 8));
                assert_eq!(usage["output_tokens_details"]["reasoning_tokens"], 0);
            }
            Reasoning::Think => {
                assert_eq!(output.len(), 1);
                assert_eq!(text, expected_think_content(2, 8));
            }
            _ => {
                assert_eq!(output.len(), 2, "{variant}");
                let reasoning = &output[0];
                assert_eq!(reasoning["type"], "reasoning");
                assert_eq!(reasoning["summary"][0]["type"], "summary_text");
                assert!(reasoning["summary"][0]["text"].is_string());
                assert_eq!(reasoning["content"][0]["type"], "reasoning_text");
                assert_eq!(reasoning["content"][0]["text"], expected_reasoning(2, 8));
                assert_eq!(text, expected_content(2, 8));
                assert_eq!(usage["output_tokens_details"]["reasoning_tokens"], 8);
            }
        }
    }
}

#[tokio::test]
async fn responses_stream_follows_the_typed_event_sequence() {
    let app = router(MockConfig {
        chunks: 3,
        ..MockConfig::default()
    });
    let reply = post(
        &app,
        "/v1/responses",
        responses_body("mock-reasoning", true),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.headers["content-type"], "text/event-stream");
    assert!(
        !reply.text().contains("[DONE]"),
        "the Responses API sends no [DONE]"
    );
    let events = reply.events();
    let names: Vec<&str> = events.iter().map(|e| e.event.as_deref().unwrap()).collect();
    let expected = [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.reasoning_text.delta",
        "response.reasoning_text.delta",
        "response.reasoning_text.delta",
        "response.reasoning_text.done",
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ];
    assert_eq!(names, expected);
    let data: Vec<Value> = events.iter().map(|e| e.json().unwrap()).collect();
    for (i, (event, name)) in data.iter().zip(&names).enumerate() {
        assert_eq!(
            event["type"], *name,
            "the data's type repeats the event name"
        );
        assert_eq!(event["sequence_number"], i as u64);
    }
    assert_eq!(data[0]["response"]["status"], "in_progress");
    assert_eq!(data[2]["item"]["type"], "reasoning");
    let reasoning: String = data
        .iter()
        .filter(|e| e["type"] == "response.reasoning_text.delta")
        .map(|e| e["delta"].as_str().unwrap())
        .collect();
    assert_eq!(reasoning, expected_reasoning(2, 3));
    let text: String = data
        .iter()
        .filter(|e| e["type"] == "response.output_text.delta")
        .map(|e| e["delta"].as_str().unwrap())
        .collect();
    assert_eq!(text, expected_content(2, 3));
    let completed = &data.last().unwrap()["response"];
    assert_eq!(completed["status"], "completed");
    assert_eq!(completed["output"].as_array().unwrap().len(), 2);
    assert_eq!(completed["usage"]["output_tokens"], 6);
    assert_eq!(
        completed["usage"]["output_tokens_details"]["reasoning_tokens"],
        3
    );
}

#[tokio::test]
async fn plain_responses_stream_has_only_the_message_item() {
    let app = router(MockConfig::default());
    let reply = post(&app, "/v1/responses", responses_body("mock-plain", true)).await;
    let data: Vec<Value> = reply.event_json();
    assert!(data
        .iter()
        .all(|e| !e["type"].as_str().unwrap().contains("reasoning")));
    assert!(!reply.text().contains(REASONING_MARKER));
    assert_eq!(data.last().unwrap()["type"], "response.completed");
}

#[tokio::test]
async fn anthropic_message_has_a_signed_thinking_block_before_the_text() {
    let app = router(MockConfig::default());
    for variant in Reasoning::ALL {
        let reply = post(&app, "/v1/messages", messages_body(variant.model(), false)).await;
        assert_eq!(reply.status, 200);
        let body = reply.json();
        assert_eq!(body["type"], "message", "{variant}");
        assert_eq!(body["role"], "assistant");
        assert_eq!(body["model"], variant.model());
        assert_eq!(body["stop_reason"], "end_turn");
        assert!(body["id"].as_str().unwrap().starts_with("msg_"));
        assert!(body["usage"]["input_tokens"].is_u64());
        let content = body["content"].as_array().unwrap();
        let text = content.last().unwrap();
        assert_eq!(text["type"], "text");
        match variant {
            Reasoning::Plain => {
                assert_eq!(content.len(), 1);
                assert_eq!(text["text"], expected_content(1, 8));
            }
            Reasoning::Think => {
                assert_eq!(content.len(), 1);
                assert_eq!(text["text"], expected_think_content(1, 8));
            }
            _ => {
                assert_eq!(content.len(), 2);
                assert_eq!(content[0]["type"], "thinking");
                assert_eq!(content[0]["thinking"], expected_reasoning(1, 8));
                assert_eq!(content[0]["signature"], SIGNATURE);
                assert_eq!(text["text"], expected_content(1, 8));
                assert_eq!(body["usage"]["output_tokens"], 16);
            }
        }
    }
}

#[test]
fn signature_is_valid_looking_base64() {
    assert!(SIGNATURE.len() >= 64);
    assert_eq!(SIGNATURE.len() % 4, 0);
    assert!(SIGNATURE
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'='));
}

#[tokio::test]
async fn anthropic_stream_follows_the_event_sequence_with_thinking_and_signature_deltas() {
    let app = router(MockConfig {
        chunks: 2,
        ..MockConfig::default()
    });
    let reply = post(
        &app,
        "/v1/messages",
        messages_body("mock-reasoning-content", true),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.headers["content-type"], "text/event-stream");
    assert!(!reply.text().contains("[DONE]"));
    let events = reply.events();
    let names: Vec<&str> = events.iter().map(|e| e.event.as_deref().unwrap()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
    );
    let data: Vec<Value> = events.iter().map(|e| e.json().unwrap()).collect();
    for (event, name) in data.iter().zip(&names) {
        assert_eq!(event["type"], *name);
    }
    assert_eq!(data[0]["message"]["content"], json!([]));
    assert!(data[0]["message"]["stop_reason"].is_null());
    assert_eq!(data[1]["content_block"]["type"], "thinking");
    assert_eq!(data[1]["index"], 0);
    let thinking: String = data[3..5]
        .iter()
        .map(|e| {
            assert_eq!(e["delta"]["type"], "thinking_delta");
            e["delta"]["thinking"].as_str().unwrap()
        })
        .collect();
    assert_eq!(thinking, expected_reasoning(1, 2));
    assert_eq!(
        data[5]["delta"],
        json!({"type": "signature_delta", "signature": SIGNATURE})
    );
    assert_eq!(
        data[7]["content_block"],
        json!({"type": "text", "text": ""})
    );
    assert_eq!(data[7]["index"], 1);
    let text: String = data[8..10]
        .iter()
        .map(|e| {
            assert_eq!(e["delta"]["type"], "text_delta");
            assert_eq!(e["index"], 1);
            e["delta"]["text"].as_str().unwrap()
        })
        .collect();
    assert_eq!(text, expected_content(1, 2));
    assert_eq!(data[11]["delta"]["stop_reason"], "end_turn");
    assert_eq!(data[11]["usage"]["output_tokens"], 4);
}

#[tokio::test]
async fn plain_anthropic_stream_pings_after_the_text_block_start() {
    let app = router(MockConfig {
        chunks: 2,
        ..MockConfig::default()
    });
    let reply = post(&app, "/v1/messages", messages_body("claude-sonnet-4", true)).await;
    let names: Vec<String> = reply
        .events()
        .into_iter()
        .map(|e| e.event.unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
    );
    assert!(!reply.text().contains(REASONING_MARKER));
}

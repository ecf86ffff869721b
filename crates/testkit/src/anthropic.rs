//! Replies in the Anthropic Messages API's shape (`POST /v1/messages`), and its error bodies.
//!
//! A reply is a `message` whose `content` holds a `thinking` block (with a `signature`) before the
//! `text` block when the dialect keeps reasoning separate. Streams follow the API's events:
//! `message_start`, `content_block_start`, `ping`, `content_block_delta`s (`thinking_delta`s and a
//! `signature_delta` for thinking, `text_delta`s for text), `content_block_stop`, `message_delta`
//! (stop reason and usage) and `message_stop`. OpenAI shapes live in `openai`.

use axum::http::StatusCode;
use serde_json::{json, Value};

use crate::request::Plan;
use crate::sse::{frame, Frame, Role};
use crate::text::{answer_deltas, expected_reasoning, reasoning_deltas, SIGNATURE};
use crate::Reasoning;

fn message_id(plan: &Plan) -> String {
    // Anthropic ids look like `msg_01...`; the sequence number keeps replies distinguishable.
    format!("msg_01mock{}", plan.seq)
}

fn usage(plan: &Plan, output_tokens: u64) -> Value {
    json!({
        "input_tokens": plan.prompt_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": output_tokens,
    })
}

/// The text block's deltas, with inline reasoning in the think dialect.
fn text_deltas(plan: &Plan) -> Vec<String> {
    let mut deltas = Vec::with_capacity(plan.chunks * 2);
    if plan.reasoning == Reasoning::Think {
        let mut reasoning = reasoning_deltas(plan.inputs, plan.chunks);
        if let Some(first) = reasoning.first_mut() {
            first.insert_str(0, "<think>\n");
        }
        if let Some(last) = reasoning.last_mut() {
            last.push_str("\n</think>\n\n");
        }
        deltas.extend(reasoning);
    }
    deltas.extend(answer_deltas(plan.inputs, plan.chunks));
    deltas
}

fn message(plan: &Plan, content: Value, stop_reason: Value, usage: Value) -> Value {
    json!({
        "id": message_id(plan),
        "type": "message",
        "role": "assistant",
        "model": plan.model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": null,
        "usage": usage,
    })
}

/// A non-streamed message, serialised.
pub(crate) fn json(plan: &Plan) -> Result<Vec<u8>, serde_json::Error> {
    let mut content = Vec::with_capacity(2);
    if plan.reasoning.separate() {
        content.push(json!({
            "type": "thinking",
            "thinking": expected_reasoning(plan.inputs, plan.chunks),
            "signature": SIGNATURE,
        }));
    }
    content.push(json!({"type": "text", "text": text_deltas(plan).concat()}));
    serde_json::to_vec(&message(
        plan,
        Value::Array(content),
        Value::from("end_turn"),
        usage(plan, plan.completion_tokens()),
    ))
}

/// A streamed message, as frames.
pub(crate) fn frames(plan: &Plan) -> Result<Vec<Frame>, serde_json::Error> {
    let mut frames = Vec::with_capacity(plan.chunks * 2 + 12);
    let mut push = |kind: &'static str, data: Value, role: Role| -> Result<(), serde_json::Error> {
        frames.push(frame(Some(kind), &data, role)?);
        Ok(())
    };
    // Real streams report a token or so of output at the start and the total at the end.
    push(
        "message_start",
        json!({"type": "message_start", "message": message(plan, json!([]), Value::Null, usage(plan, 1))}),
        Role::Frame,
    )?;
    let mut index = 0;
    if plan.reasoning.separate() {
        push(
            "content_block_start",
            json!({"type": "content_block_start", "index": index, "content_block": {"type": "thinking", "thinking": "", "signature": ""}}),
            Role::Frame,
        )?;
        push("ping", json!({"type": "ping"}), Role::Frame)?;
        for delta in reasoning_deltas(plan.inputs, plan.chunks) {
            push(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": index, "delta": {"type": "thinking_delta", "thinking": delta}}),
                Role::Delta,
            )?;
        }
        push(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": index, "delta": {"type": "signature_delta", "signature": SIGNATURE}}),
            Role::Frame,
        )?;
        push(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": index}),
            Role::Frame,
        )?;
        index += 1;
    }
    push(
        "content_block_start",
        json!({"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}}),
        Role::Frame,
    )?;
    if index == 0 {
        push("ping", json!({"type": "ping"}), Role::Frame)?;
    }
    for delta in text_deltas(plan) {
        push(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": delta}}),
            Role::Delta,
        )?;
    }
    push(
        "content_block_stop",
        json!({"type": "content_block_stop", "index": index}),
        Role::Tail,
    )?;
    push(
        "message_delta",
        json!({
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": null},
            "usage": {"output_tokens": plan.completion_tokens()},
        }),
        Role::Tail,
    )?;
    push("message_stop", json!({"type": "message_stop"}), Role::Tail)?;
    Ok(frames)
}

/// An Anthropic-shaped error body: `{"type": "error", "error": {"type", "message"}}`.
pub(crate) fn error_json(status: StatusCode, message: &str) -> Result<Vec<u8>, serde_json::Error> {
    let kind = match status.as_u16() {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        400..=499 => "invalid_request_error",
        _ => "api_error",
    };
    serde_json::to_vec(&json!({
        "type": "error",
        "error": {"type": kind, "message": message},
    }))
}

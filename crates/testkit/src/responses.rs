//! Replies for the OpenAI Responses API (`POST /v1/responses`).
//!
//! A reply is a `response` object whose `output` holds a `reasoning` item (a summary and the
//! `reasoning_text` content) before the `message` item, when the dialect keeps reasoning separate.
//! Streams follow the API's typed events: `response.created`, `response.in_progress`, per item
//! `response.output_item.added` ... `response.output_item.done`, then `response.completed` with
//! usage; every event carries a `sequence_number`, and there is no `[DONE]`. This path is colder
//! than chat completions, so it builds `serde_json::Value`s for readability.

use serde_json::{json, Value};

use crate::request::Plan;
use crate::sse::{frame, Frame, Role};
use crate::text::{answer_deltas, expected_reasoning, reasoning_deltas, CREATED};
use crate::Reasoning;

/// The short summary a reasoning item carries.
fn summary(plan: &Plan) -> String {
    format!("Summary: thinking about {} input(s).", plan.inputs)
}

fn ids(plan: &Plan) -> (String, String, String) {
    (
        format!("resp_mock{}", plan.seq),
        format!("rs_mock{}", plan.seq),
        format!("msg_mock{}", plan.seq),
    )
}

fn usage(plan: &Plan) -> Value {
    let output = plan.completion_tokens();
    json!({
        "input_tokens": plan.prompt_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": plan.reasoning_tokens()},
        "total_tokens": plan.prompt_tokens.saturating_add(output),
    })
}

fn reasoning_item(id: &str, summary: &str, text: &str) -> Value {
    json!({
        "type": "reasoning",
        "id": id,
        "summary": [{"type": "summary_text", "text": summary}],
        "content": [{"type": "reasoning_text", "text": text}],
    })
}

fn message_item(id: &str, text: &str, status: &str) -> Value {
    let content = if status == "completed" {
        json!([{"type": "output_text", "text": text, "annotations": []}])
    } else {
        json!([])
    };
    json!({
        "type": "message",
        "id": id,
        "status": status,
        "role": "assistant",
        "content": content,
    })
}

/// The answer as the message item shows it, with inline reasoning in the think dialect.
fn answer(plan: &Plan) -> Vec<String> {
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

fn response(plan: &Plan, id: &str, status: &str, output: Vec<Value>, usage: Value) -> Value {
    json!({
        "id": id,
        "object": "response",
        "created_at": CREATED,
        "status": status,
        "error": null,
        "incomplete_details": null,
        "instructions": null,
        "max_output_tokens": null,
        "model": plan.model,
        "output": output,
        "parallel_tool_calls": true,
        "previous_response_id": null,
        "reasoning": {"effort": null, "summary": null},
        "store": false,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": usage,
        "metadata": {},
    })
}

/// The completed output items.
fn output(plan: &Plan, rs_id: &str, msg_id: &str) -> Vec<Value> {
    let mut items = Vec::with_capacity(2);
    if plan.reasoning.separate() {
        items.push(reasoning_item(
            rs_id,
            &summary(plan),
            &expected_reasoning(plan.inputs, plan.chunks),
        ));
    }
    items.push(message_item(msg_id, &answer(plan).concat(), "completed"));
    items
}

/// A non-streamed response object, serialised.
pub(crate) fn json(plan: &Plan) -> Result<Vec<u8>, serde_json::Error> {
    let (id, rs_id, msg_id) = ids(plan);
    serde_json::to_vec(&response(
        plan,
        &id,
        "completed",
        output(plan, &rs_id, &msg_id),
        usage(plan),
    ))
}

/// Numbers events as the API does and frames them under their `type`.
struct Events {
    frames: Vec<Frame>,
    seq: u64,
}

impl Events {
    fn push(
        &mut self,
        kind: &'static str,
        mut data: Value,
        role: Role,
    ) -> Result<(), serde_json::Error> {
        if let Value::Object(map) = &mut data {
            map.insert("type".to_owned(), Value::from(kind));
            map.insert("sequence_number".to_owned(), Value::from(self.seq));
        }
        self.seq += 1;
        self.frames.push(frame(Some(kind), &data, role)?);
        Ok(())
    }
}

/// A streamed response, as frames.
pub(crate) fn frames(plan: &Plan) -> Result<Vec<Frame>, serde_json::Error> {
    let (id, rs_id, msg_id) = ids(plan);
    let mut ev = Events {
        frames: Vec::with_capacity(plan.chunks * 2 + 16),
        seq: 0,
    };
    let pending = response(plan, &id, "in_progress", Vec::new(), Value::Null);
    ev.push(
        "response.created",
        json!({"response": pending}),
        Role::Frame,
    )?;
    ev.push(
        "response.in_progress",
        json!({"response": pending}),
        Role::Frame,
    )?;

    let mut index = 0;
    if plan.reasoning.separate() {
        let summary = summary(plan);
        let text = expected_reasoning(plan.inputs, plan.chunks);
        ev.push(
            "response.output_item.added",
            json!({"output_index": index, "item": {"type": "reasoning", "id": rs_id, "summary": [], "content": []}}),
            Role::Frame,
        )?;
        for delta in reasoning_deltas(plan.inputs, plan.chunks) {
            ev.push(
                "response.reasoning_text.delta",
                json!({"item_id": rs_id, "output_index": index, "content_index": 0, "delta": delta}),
                Role::Delta,
            )?;
        }
        ev.push(
            "response.reasoning_text.done",
            json!({"item_id": rs_id, "output_index": index, "content_index": 0, "text": text}),
            Role::Frame,
        )?;
        let part = json!({"type": "summary_text", "text": summary});
        ev.push(
            "response.reasoning_summary_part.added",
            json!({"item_id": rs_id, "output_index": index, "summary_index": 0, "part": {"type": "summary_text", "text": ""}}),
            Role::Frame,
        )?;
        ev.push(
            "response.reasoning_summary_text.delta",
            json!({"item_id": rs_id, "output_index": index, "summary_index": 0, "delta": summary}),
            Role::Frame,
        )?;
        ev.push(
            "response.reasoning_summary_text.done",
            json!({"item_id": rs_id, "output_index": index, "summary_index": 0, "text": summary}),
            Role::Frame,
        )?;
        ev.push(
            "response.reasoning_summary_part.done",
            json!({"item_id": rs_id, "output_index": index, "summary_index": 0, "part": part}),
            Role::Frame,
        )?;
        ev.push(
            "response.output_item.done",
            json!({"output_index": index, "item": reasoning_item(&rs_id, &summary, &text)}),
            Role::Frame,
        )?;
        index += 1;
    }

    let deltas = answer(plan);
    let text = deltas.concat();
    ev.push(
        "response.output_item.added",
        json!({"output_index": index, "item": message_item(&msg_id, "", "in_progress")}),
        Role::Frame,
    )?;
    ev.push(
        "response.content_part.added",
        json!({"item_id": msg_id, "output_index": index, "content_index": 0, "part": {"type": "output_text", "text": "", "annotations": []}}),
        Role::Frame,
    )?;
    for delta in deltas {
        ev.push(
            "response.output_text.delta",
            json!({"item_id": msg_id, "output_index": index, "content_index": 0, "delta": delta, "logprobs": []}),
            Role::Delta,
        )?;
    }
    ev.push(
        "response.output_text.done",
        json!({"item_id": msg_id, "output_index": index, "content_index": 0, "text": text, "logprobs": []}),
        Role::Tail,
    )?;
    ev.push(
        "response.content_part.done",
        json!({"item_id": msg_id, "output_index": index, "content_index": 0, "part": {"type": "output_text", "text": text, "annotations": []}}),
        Role::Tail,
    )?;
    ev.push(
        "response.output_item.done",
        json!({"output_index": index, "item": message_item(&msg_id, &text, "completed")}),
        Role::Tail,
    )?;
    let done = response(
        plan,
        &id,
        "completed",
        output(plan, &rs_id, &msg_id),
        usage(plan),
    );
    ev.push("response.completed", json!({"response": done}), Role::Tail)?;
    Ok(ev.frames)
}

//! OpenAI Responses streams: `event: response.*` with typed JSON data.
//!
//! Reasoning items are announced (`response.output_item.added`) without their text, their
//! `response.reasoning_*` and content-part events are dropped, and their
//! `response.output_item.done` carries the withheld item. Terminal events
//! (`response.completed`, `.incomplete`, `.failed`) repeat the whole output, so their
//! reasoning items are rewritten to the same withheld items.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Map, Value};

use super::{check_size, Core, Segment, SiteKind};
use crate::error::DialectError;
use crate::response::{responses_finish, responses_reasoning, responses_usage, ResponseFacts};
use crate::sse::SseEvent;
use crate::stream::EarlyStop;

#[derive(Debug, Default)]
pub(super) struct ResponsesState {
    /// Reasoning items announced and not yet done, by output index: the announced item and
    /// the texts streamed for it so far.
    open: BTreeMap<u64, Partial>,
    /// Output indices of reasoning items (their content-part events are reasoning too).
    reasoning_indices: BTreeSet<u64>,
    /// The response object of `response.created`, for a `response.incomplete` we write.
    response: Option<Value>,
    /// Items completed so far, as the client saw them (for a `response.incomplete` we write).
    done_items: Vec<Value>,
    reasoning_text: String,
    summary_text: String,
    ended: bool,
}

#[derive(Debug, Default)]
struct Partial {
    item: Value,
    summary: String,
    content: String,
}

impl ResponsesState {
    pub(super) fn event(&mut self, core: &mut Core, ev: SseEvent) -> Result<(), DialectError> {
        let parsed = ev
            .data
            .as_deref()
            .and_then(|d| serde_json::from_str::<Value>(d).ok());
        let Some(mut data) = parsed else {
            core.emit(ev.raw);
            return Ok(());
        };
        let kind = data
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let index = data.get("output_index").and_then(Value::as_u64);
        let is_reasoning_item =
            data.pointer("/item/type").and_then(Value::as_str) == Some("reasoning");
        let delta = data
            .get("delta")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        match kind.as_str() {
            "response.created" | "response.in_progress" => {
                self.response = data.get("response").cloned();
            }
            "response.output_item.added" if is_reasoning_item => {
                if let Some(i) = index {
                    self.reasoning_indices.insert(i);
                    let item = data.get("item").cloned().unwrap_or(Value::Null);
                    self.open.insert(
                        i,
                        Partial {
                            item,
                            ..Partial::default()
                        },
                    );
                }
                if core.rewriting() {
                    if let Some(item) = data.get_mut("item") {
                        *item = announced(item);
                    }
                    core.emit_event(Some(&kind), &data);
                    return Ok(());
                }
            }
            "response.output_text.delta" => core.answer(&delta, true),
            "response.reasoning_text.delta" | "response.reasoning_summary_text.delta" => {
                let summary = kind == "response.reasoning_summary_text.delta";
                let text = if summary {
                    &mut self.summary_text
                } else {
                    &mut self.reasoning_text
                };
                super::append_capped(text, &delta);
                core.text_bytes += delta.len() as u64;
                if let Some(p) = index.and_then(|i| self.open.get_mut(&i)) {
                    let acc = if summary {
                        &mut p.summary
                    } else {
                        &mut p.content
                    };
                    acc.push_str(&delta);
                    check_size(p.summary.len() + p.content.len())?;
                }
                if core.rewriting() {
                    return Ok(());
                }
            }
            "response.output_item.done" => {
                let item = data.get("item").cloned().unwrap_or(Value::Null);
                if is_reasoning_item {
                    let partial = index.and_then(|i| self.open.remove(&i));
                    if partial.is_none_or(|p| p.content.is_empty() && p.summary.is_empty()) {
                        // Nothing was streamed for it: its text is only in the done item.
                        let text = responses_reasoning(&item);
                        super::append_capped(&mut self.reasoning_text, &text);
                        core.text_bytes += text.len() as u64;
                    }
                    if core.rewriting() {
                        let text = responses_reasoning(&item);
                        core.site(text, SiteKind::Responses { event: data, item });
                        // Its withheld form is known only once rendered; a placeholder keeps
                        // the order for a `response.incomplete` we may write.
                        self.done_items.push(Value::Null);
                        return Ok(());
                    }
                }
                self.done_items.push(item);
            }
            "response.completed" | "response.incomplete" | "response.failed" => {
                self.ended = true;
                if let Some(r) = data.get("response") {
                    core.facts.finish_reason = responses_finish(r);
                    if let Some(u) = r.get("usage").filter(|u| u.is_object()) {
                        responses_usage(u, &mut core.facts);
                    }
                }
                if core.rewriting() {
                    core.out.push(Segment::ResponsesFinal {
                        event: kind,
                        json: data,
                    });
                    return Ok(());
                }
            }
            k if core.rewriting() && self.is_reasoning_event(k, index) => return Ok(()),
            _ => {}
        }
        core.emit(ev.raw);
        Ok(())
    }

    fn is_reasoning_event(&self, kind: &str, index: Option<u64>) -> bool {
        kind.starts_with("response.reasoning")
            || (kind.starts_with("response.content_part.")
                && index.is_some_and(|i| self.reasoning_indices.contains(&i)))
    }

    /// Reasoning items upstream left open become done items with a token for what was seen.
    fn close_open(&mut self, core: &mut Core) {
        for (i, p) in std::mem::take(&mut self.open) {
            if !core.rewriting() {
                continue;
            }
            let mut item = match p.item {
                Value::Object(m) => m,
                _ => Map::new(),
            };
            if !p.summary.is_empty() {
                item.insert(
                    "summary".into(),
                    json!([{"type": "summary_text", "text": p.summary}]),
                );
            }
            if !p.content.is_empty() {
                item.insert(
                    "content".into(),
                    json!([{"type": "reasoning_text", "text": p.content}]),
                );
            }
            let item = Value::Object(item);
            let text = responses_reasoning(&item);
            let event = json!({"type": "response.output_item.done", "output_index": i});
            core.site(text, SiteKind::Responses { event, item });
        }
    }

    pub(super) fn finish(&mut self, core: &mut Core) {
        self.close_open(core);
    }

    pub(super) fn finish_early(&mut self, core: &mut Core, reason: EarlyStop) {
        if self.ended {
            return;
        }
        self.close_open(core);
        let reason = match reason {
            EarlyStop::TokenBudget => "max_output_tokens",
            EarlyStop::Policy => "content_filter",
        };
        let mut response = match self.response.take() {
            Some(Value::Object(m)) => m,
            _ => Map::new(),
        };
        response.insert("object".into(), json!("response"));
        response.insert("status".into(), json!("incomplete"));
        response.insert("incomplete_details".into(), json!({"reason": reason}));
        // Reasoning items are left out: the client already has them from their done events.
        let output: Vec<Value> = self
            .done_items
            .iter()
            .filter(|v| !v.is_null())
            .cloned()
            .collect();
        response.insert("output".into(), Value::Array(output));
        let response = Value::Object(response);
        core.facts.finish_reason = responses_finish(&response);
        core.emit_event(
            Some("response.incomplete"),
            &json!({"type": "response.incomplete", "response": response}),
        );
        self.ended = true;
    }

    /// The record's reasoning: the full reasoning text when streamed, the summary otherwise.
    pub(super) fn complete_facts(&self, f: &mut ResponseFacts) {
        f.reasoning = if self.reasoning_text.is_empty() {
            self.summary_text.clone()
        } else {
            self.reasoning_text.clone()
        };
    }
}

/// A reasoning item as announced to a withholding client: identity only.
fn announced(item: &Value) -> Value {
    let mut m = Map::new();
    m.insert("type".into(), json!("reasoning"));
    for k in ["id", "status"] {
        if let Some(v) = item.get(k) {
            m.insert(k.into(), v.clone());
        }
    }
    m.insert("summary".into(), json!([]));
    Value::Object(m)
}

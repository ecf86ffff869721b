//! Chat completions and legacy completions streams: `data: {chunk}` events, `data: [DONE]`.
//!
//! Each choice has its own state: the reasoning fields being withheld (`reasoning_content`,
//! `reasoning`, `reasoning_details` in `delta`) and an inline `<think>` splitter over the
//! answer text. A reasoning place closes when the answer (or a tool call) starts, at the
//! choice's finish reason, or at `[DONE]`; its withheld form goes out just before the chunk
//! that closed it.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::{check_size, Core, SiteKind};
use crate::error::DialectError;
use crate::response::{chat_reasoning, chat_usage, CHAT_REASONING_FIELDS};
use crate::sse::SseEvent;
use crate::stream::EarlyStop;
use crate::think::Splitter;

/// More choices than any API allows (`n` is at most 128); a stream claiming more is hostile.
const MAX_CHOICES: usize = 128;

#[derive(Debug)]
pub(super) struct ChatState {
    completions: bool,
    choices: BTreeMap<u64, Choice>,
    /// `id`, `object`, `created`, `model` of the latest chunk, for chunks we write.
    envelope: Map<String, Value>,
    done: bool,
}

#[derive(Debug, Default)]
struct Choice {
    fields: Option<Fields>,
    splitter: Splitter,
    finished: bool,
}

/// Reasoning fields of one choice accumulated from deltas, in their original form.
#[derive(Debug, Default)]
struct Fields {
    reasoning_content: Option<String>,
    reasoning: Option<String>,
    details: Option<Vec<Value>>,
    text: String,
    size: usize,
}

impl Fields {
    fn add(&mut self, delta: &mut Map<String, Value>, text: &str) -> Result<(), DialectError> {
        for k in CHAT_REASONING_FIELDS {
            let Some(v) = delta.remove(k) else { continue };
            match (k, v) {
                ("reasoning_content", Value::String(s)) => {
                    self.size += s.len();
                    self.reasoning_content.get_or_insert_default().push_str(&s);
                }
                ("reasoning", Value::String(s)) => {
                    self.size += s.len();
                    self.reasoning.get_or_insert_default().push_str(&s);
                }
                ("reasoning_details", Value::Array(items)) => {
                    let details = self.details.get_or_insert_default();
                    for item in items {
                        self.size += merge_detail(details, item);
                    }
                }
                // Nulls (and odd shapes) carry no reasoning; odd shapes are dropped too,
                // since nothing reasoning-like may pass in this mode.
                _ => {}
            }
        }
        self.text.push_str(text);
        check_size(self.size + self.text.len())
    }

    fn original(self) -> Value {
        let mut m = Map::new();
        if let Some(s) = self.reasoning_content {
            m.insert("reasoning_content".to_owned(), Value::String(s));
        }
        if let Some(s) = self.reasoning {
            m.insert("reasoning".to_owned(), Value::String(s));
        }
        if let Some(d) = self.details {
            m.insert("reasoning_details".to_owned(), Value::Array(d));
        }
        Value::Object(m)
    }
}

/// Merges one streamed `reasoning_details` entry into the list: a piece of the same type
/// and `index` as the last entry continues it (texts appended, other keys set), anything
/// else starts a new entry. Returns the bytes added.
fn merge_detail(details: &mut Vec<Value>, item: Value) -> usize {
    let size = item.to_string().len();
    let Value::Object(piece) = item else {
        return 0;
    };
    if let Some(Value::Object(last)) = details.last_mut() {
        if last.get("type") == piece.get("type") && last.get("index") == piece.get("index") {
            for (k, v) in piece {
                let appendable = matches!(k.as_str(), "text" | "summary" | "data" | "signature");
                match (last.get_mut(&k), v) {
                    (Some(Value::String(acc)), Value::String(s)) if appendable => acc.push_str(&s),
                    // A null or repeated key in a later piece keeps what we have.
                    (Some(_), Value::Null) => {}
                    (Some(Value::String(_)), _) if appendable => {}
                    (_, v) => {
                        last.insert(k, v);
                    }
                }
            }
            return size;
        }
    }
    details.push(Value::Object(piece));
    size
}

fn nonempty_str(v: Option<&Value>) -> Option<&str> {
    v.and_then(Value::as_str).filter(|s| !s.is_empty())
}

impl ChatState {
    pub(super) fn new(completions: bool) -> Self {
        ChatState {
            completions,
            choices: BTreeMap::new(),
            envelope: Map::new(),
            done: false,
        }
    }

    fn envelope(&self) -> Value {
        let mut e = self.envelope.clone();
        if !e.contains_key("object") {
            let object = if self.completions {
                "text_completion"
            } else {
                "chat.completion.chunk"
            };
            e.insert("object".to_owned(), json!(object));
        }
        Value::Object(e)
    }

    pub(super) fn event(&mut self, core: &mut Core, ev: SseEvent) -> Result<(), DialectError> {
        let Some(data) = ev.data.as_deref() else {
            core.emit(ev.raw);
            return Ok(());
        };
        if data.trim() == "[DONE]" {
            self.close_all(core);
            self.done = true;
            core.emit(ev.raw);
            return Ok(());
        }
        let Ok(Value::Object(mut chunk)) = serde_json::from_str::<Value>(data) else {
            // Not a chunk (an error text, say): not ours to judge.
            core.emit(ev.raw);
            return Ok(());
        };
        if let Some(u) = chunk.get("usage").filter(|u| u.is_object()) {
            chat_usage(u, &mut core.facts);
        }
        for k in ["id", "object", "created", "model", "system_fingerprint"] {
            if let Some(v) = chunk.get(k) {
                self.envelope.insert(k.to_owned(), v.clone());
            }
        }
        let rewriting = core.rewriting();
        let mut changed = false;
        let mut before = Vec::new();
        let envelope = rewriting.then(|| self.envelope());
        if let Some(Value::Array(choices)) = chunk.get_mut("choices") {
            let had_choices = !choices.is_empty();
            for (pos, choice) in choices.iter_mut().enumerate() {
                let Value::Object(choice) = choice else {
                    continue;
                };
                let index = choice
                    .get("index")
                    .and_then(Value::as_u64)
                    .unwrap_or(pos as u64);
                changed |= self.choice(core, index, choice, envelope.as_ref(), &mut before)?;
            }
            if changed {
                choices.retain(|c| !empty_choice(c, self.completions));
                if had_choices
                    && choices.is_empty()
                    && chunk.get("usage").is_none_or(Value::is_null)
                {
                    // Nothing left but reasoning we withheld: send nothing.
                    for (text, kind) in before {
                        core.site(text, kind);
                    }
                    return Ok(());
                }
            }
        }
        for (text, kind) in before {
            core.site(text, kind);
        }
        if changed {
            core.emit_event(None, &Value::Object(chunk));
        } else {
            core.emit(ev.raw);
        }
        Ok(())
    }

    /// Handles one choice of a chunk; returns whether it was rewritten.
    fn choice(
        &mut self,
        core: &mut Core,
        index: u64,
        choice: &mut Map<String, Value>,
        envelope: Option<&Value>,
        before: &mut Vec<(String, SiteKind)>,
    ) -> Result<bool, DialectError> {
        if !self.choices.contains_key(&index) && self.choices.len() >= MAX_CHOICES {
            return Err(DialectError::Malformed {
                at: "choices[].index".to_owned(),
                expected: "at most 128 distinct choices",
            });
        }
        let completions = self.completions;
        let first = index == 0;
        let state = self.choices.entry(index).or_default();
        let mut changed = false;
        let finish = choice
            .get("finish_reason")
            .and_then(Value::as_str)
            .map(str::to_owned);

        // Reasoning fields (chat only).
        if !completions {
            if let Some(Value::Object(delta)) = choice.get_mut("delta") {
                let has_fields = CHAT_REASONING_FIELDS
                    .iter()
                    .any(|k| delta.get(*k).is_some_and(|v| !v.is_null()));
                if has_fields {
                    let text = chat_reasoning(delta, "").unwrap_or_default();
                    core.reasoning(&text, first);
                    if envelope.is_some() {
                        state.fields.get_or_insert_default().add(delta, &text)?;
                        changed = true;
                    }
                } else if envelope.is_some() {
                    // Null placeholders go too, so no reasoning key reaches the client.
                    for k in CHAT_REASONING_FIELDS {
                        changed |= delta.remove(k).is_some();
                    }
                }
            }
        }

        // Answer text, through the inline splitter.
        let text_slot = if completions {
            choice.get_mut("text")
        } else {
            choice.get_mut("delta").and_then(|d| d.get_mut("content"))
        };
        let answer_started;
        if let Some(Value::String(text)) = text_slot {
            let split = state.splitter.push(text);
            core.answer(&split.answer, first);
            core.reasoning(&split.reasoning, first);
            answer_started = !split.answer.is_empty();
            if let Some(env) = envelope {
                if answer_started || split.closed.is_some() {
                    close_fields(state, env, index, before);
                }
                if let Some(block) = split.closed {
                    before.push(inline_site(env, index, block, completions));
                }
                if *text != split.answer {
                    *text = split.answer;
                    changed = true;
                }
                check_size(state.splitter.raw().len())?;
            }
        } else {
            answer_started = false;
        }
        let tool_call = !completions
            && choice
                .get("delta")
                .and_then(|d| d.get("tool_calls"))
                .is_some_and(|t| !t.is_null());

        if let Some(env) = envelope {
            if tool_call && !answer_started {
                close_fields(state, env, index, before);
            }
        }
        if let Some(reason) = finish {
            if first {
                core.facts.finish_reason = Some(reason);
            }
            state.finished = true;
            let split = state.splitter.finish();
            core.answer(&split.answer, first);
            core.reasoning(&split.reasoning, first);
            if let Some(env) = envelope {
                close_fields(state, env, index, before);
                if let Some(block) = split.closed {
                    before.push(inline_site(env, index, block, completions));
                }
                if !split.answer.is_empty() {
                    let slot = if completions {
                        choice.get_mut("text")
                    } else {
                        choice
                            .get_mut("delta")
                            .and_then(Value::as_object_mut)
                            .map(|d| d.entry("content").or_insert(Value::String(String::new())))
                    };
                    if let Some(slot) = slot {
                        let mut text = slot.as_str().unwrap_or_default().to_owned();
                        text.push_str(&split.answer);
                        *slot = Value::String(text);
                        changed = true;
                    }
                }
            }
        }
        Ok(changed)
    }

    /// Closes every choice still open: their withheld places, and answer text the splitter
    /// still held, go out before what follows.
    fn close_all(&mut self, core: &mut Core) {
        let rewriting = core.rewriting();
        let envelope = self.envelope();
        let completions = self.completions;
        for (&index, state) in self.choices.iter_mut() {
            if state.finished {
                continue;
            }
            let mut before = Vec::new();
            let split = state.splitter.finish();
            core.answer(&split.answer, index == 0);
            core.reasoning(&split.reasoning, index == 0);
            if rewriting {
                close_fields(state, &envelope, index, &mut before);
                if let Some(block) = split.closed {
                    before.push(inline_site(&envelope, index, block, completions));
                }
            }
            for (text, kind) in before {
                core.site(text, kind);
            }
            if rewriting && !split.answer.is_empty() {
                let mut chunk = envelope.clone();
                chunk["choices"] = choice_json(index, completions, &split.answer, None);
                core.emit_event(None, &chunk);
            }
        }
    }

    pub(super) fn finish(&mut self, core: &mut Core) {
        if !self.done {
            self.close_all(core);
        }
    }

    pub(super) fn finish_early(&mut self, core: &mut Core, reason: EarlyStop) {
        if self.done {
            return;
        }
        self.close_all(core);
        let reason = match reason {
            EarlyStop::TokenBudget => "length",
            EarlyStop::Policy => "content_filter",
        };
        let mut open: Vec<u64> = self
            .choices
            .iter()
            .filter(|(_, s)| !s.finished)
            .map(|(i, _)| *i)
            .collect();
        if self.choices.is_empty() {
            open.push(0);
        }
        if !open.is_empty() {
            let mut chunk = self.envelope();
            let choices: Vec<Value> = open
                .iter()
                .filter_map(
                    |&i| match choice_json(i, self.completions, "", Some(reason)) {
                        Value::Array(mut v) => v.pop(),
                        _ => None,
                    },
                )
                .collect();
            chunk["choices"] = Value::Array(choices);
            core.emit_event(None, &chunk);
        }
        core.facts.finish_reason = Some(reason.to_owned());
        self.done = true;
        core.emit(bytes::Bytes::from_static(b"data: [DONE]\n\n"));
    }
}

fn choice_json(index: u64, completions: bool, text: &str, finish: Option<&str>) -> Value {
    if completions {
        json!([{"index": index, "text": text, "logprobs": null, "finish_reason": finish}])
    } else if text.is_empty() {
        json!([{"index": index, "delta": {}, "finish_reason": finish}])
    } else {
        json!([{"index": index, "delta": {"content": text}, "finish_reason": finish}])
    }
}

fn close_fields(
    state: &mut Choice,
    envelope: &Value,
    index: u64,
    before: &mut Vec<(String, SiteKind)>,
) {
    if let Some(mut fields) = state.fields.take() {
        let text = std::mem::take(&mut fields.text);
        before.push((
            text,
            SiteKind::ChatFields {
                envelope: envelope.clone(),
                index: json!(index),
                original: fields.original(),
            },
        ));
    }
}

fn inline_site(
    envelope: &Value,
    index: u64,
    block: String,
    completions: bool,
) -> (String, SiteKind) {
    let text = crate::think::find(&block)
        .map(|b| b.inner(&block).to_owned())
        .unwrap_or_default();
    (
        text,
        SiteKind::Inline {
            envelope: envelope.clone(),
            index: json!(index),
            block,
            completions,
        },
    )
}

/// A choice left with nothing to say after withholding: no answer text, no finish reason,
/// no log-probabilities, and (chat) a delta with nothing but an empty `content`. A `role`
/// is a fact the client needs, so a delta with one is kept.
fn empty_choice(c: &Value, completions: bool) -> bool {
    let Value::Object(c) = c else { return false };
    let nullish = |k: &str| c.get(k).is_none_or(Value::is_null);
    if !nullish("finish_reason") || !nullish("logprobs") {
        return false;
    }
    if completions {
        return nonempty_str(c.get("text")).is_none();
    }
    match c.get("delta") {
        Some(Value::Object(d)) => d
            .iter()
            .all(|(k, v)| k == "content" && (v.is_null() || v.as_str() == Some(""))),
        _ => true,
    }
}

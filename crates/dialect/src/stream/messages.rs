//! Anthropic Messages streams: `message_start`, `content_block_start/delta/stop`,
//! `message_delta`, `message_stop`, `ping`, `error`.
//!
//! A `thinking` block is held from its start to its stop (its deltas rebuilt into the exact
//! block, signature included) and replaced, at its stop, by a withheld block at the same
//! index, so the client's block indices stay contiguous. Upstream `redacted_thinking` blocks
//! are already opaque and pass.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use super::{check_size, Core, SiteKind};
use crate::error::DialectError;
use crate::response::anthropic_finish;
use crate::sse::SseEvent;
use crate::stream::EarlyStop;

#[derive(Debug, Default)]
pub(super) struct MessagesState {
    /// Thinking blocks being withheld, by index, rebuilt from their deltas.
    held: BTreeMap<u64, Value>,
    /// Blocks the client has seen start but not stop.
    open: BTreeSet<u64>,
    /// Thinking blocks seen (to separate their texts in the record).
    thinking_blocks: usize,
    stopped: bool,
}

impl MessagesState {
    pub(super) fn event(&mut self, core: &mut Core, ev: SseEvent) -> Result<(), DialectError> {
        let parsed = ev
            .data
            .as_deref()
            .and_then(|d| serde_json::from_str::<Value>(d).ok());
        let Some(data) = parsed else {
            core.emit(ev.raw);
            return Ok(());
        };
        let kind = data.get("type").and_then(Value::as_str).unwrap_or_default();
        let index = data.get("index").and_then(Value::as_u64);
        match (kind, index) {
            ("message_start", _) => {
                if let Some(u) = data.pointer("/message/usage") {
                    if let Some(n) = u.get("input_tokens").and_then(Value::as_u64) {
                        core.facts.prompt_tokens = Some(n);
                    }
                    if let Some(n) = u.get("output_tokens").and_then(Value::as_u64) {
                        core.facts.completion_tokens = Some(n);
                    }
                }
            }
            ("content_block_start", Some(i)) => {
                let block = data.get("content_block").cloned().unwrap_or(Value::Null);
                if block.get("type").and_then(Value::as_str) == Some("thinking") {
                    if self.thinking_blocks > 0 {
                        core.reasoning("\n", true);
                    }
                    self.thinking_blocks += 1;
                    if let Some(t) = block.get("thinking").and_then(Value::as_str) {
                        core.reasoning(t, true);
                    }
                    if core.rewriting() {
                        self.held.insert(i, block);
                        return Ok(());
                    }
                }
                if let Some(t) = block.get("text").and_then(Value::as_str) {
                    core.answer(t, true);
                }
                self.open.insert(i);
            }
            ("content_block_delta", Some(i)) => {
                let delta = data.get("delta");
                let dtype = delta.and_then(|d| d.get("type")).and_then(Value::as_str);
                let field = |k: &str| delta.and_then(|d| d.get(k)).and_then(Value::as_str);
                match dtype {
                    Some("thinking_delta") => core.reasoning(field("thinking").unwrap_or(""), true),
                    Some("text_delta") => core.answer(field("text").unwrap_or(""), true),
                    _ => {}
                }
                if let Some(block) = self.held.get_mut(&i) {
                    let (key, piece) = match dtype {
                        Some("thinking_delta") => ("thinking", field("thinking")),
                        Some("signature_delta") => ("signature", field("signature")),
                        _ => ("", None),
                    };
                    if let (Some(piece), Value::Object(b)) = (piece, block) {
                        let slot = b.entry(key).or_insert(Value::String(String::new()));
                        let mut acc = slot.as_str().unwrap_or_default().to_owned();
                        acc.push_str(piece);
                        check_size(acc.len())?;
                        *slot = Value::String(acc);
                    }
                    return Ok(());
                }
            }
            ("content_block_stop", Some(i)) => {
                if let Some(block) = self.held.remove(&i) {
                    let text = block
                        .get("thinking")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned();
                    core.site(
                        text,
                        SiteKind::Messages {
                            index: json!(i),
                            block,
                        },
                    );
                    return Ok(());
                }
                self.open.remove(&i);
            }
            ("message_delta", _) => {
                if let Some(r) = data.pointer("/delta/stop_reason").and_then(Value::as_str) {
                    core.facts.finish_reason = Some(anthropic_finish(r));
                }
                if let Some(u) = data.get("usage") {
                    if let Some(n) = u.get("output_tokens").and_then(Value::as_u64) {
                        core.facts.completion_tokens = Some(n);
                    }
                    if let Some(n) = u.get("input_tokens").and_then(Value::as_u64) {
                        core.facts.prompt_tokens = Some(n);
                    }
                }
            }
            ("message_stop", _) => self.stopped = true,
            _ => {}
        }
        core.emit(ev.raw);
        Ok(())
    }

    /// Closes thinking blocks upstream left open (withheld for what was seen).
    fn close_held(&mut self, core: &mut Core) {
        for (i, block) in std::mem::take(&mut self.held) {
            let text = block
                .get("thinking")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            core.site(
                text,
                SiteKind::Messages {
                    index: json!(i),
                    block,
                },
            );
        }
    }

    pub(super) fn finish(&mut self, core: &mut Core) {
        self.close_held(core);
    }

    pub(super) fn finish_early(&mut self, core: &mut Core, reason: EarlyStop) {
        if self.stopped {
            return;
        }
        self.close_held(core);
        for i in std::mem::take(&mut self.open) {
            core.emit_event(
                Some("content_block_stop"),
                &json!({"type": "content_block_stop", "index": i}),
            );
        }
        let stop_reason = match reason {
            EarlyStop::TokenBudget => "max_tokens",
            EarlyStop::Policy => "refusal",
        };
        core.facts.finish_reason = Some(anthropic_finish(stop_reason));
        let output_tokens = core
            .facts
            .completion_tokens
            .unwrap_or(0)
            .max(core.text_bytes.div_ceil(4));
        core.emit_event(
            Some("message_delta"),
            &json!({"type": "message_delta",
                    "delta": {"stop_reason": stop_reason, "stop_sequence": null},
                    "usage": {"output_tokens": output_tokens}}),
        );
        core.emit_event(Some("message_stop"), &json!({"type": "message_stop"}));
        self.stopped = true;
    }
}

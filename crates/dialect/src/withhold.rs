//! Withholding reasoning in a whole response: each place that holds reasoning is replaced by
//! a sealed token in the form the dialect's clients already echo back.
//!
//! - Anthropic: a `thinking` block becomes `{"type":"redacted_thinking","data":TOKEN}`, which
//!   clients pass back verbatim. In summarize mode it becomes
//!   `{"type":"thinking","thinking":SUMMARY,"signature":TOKEN}`: this is how Anthropic itself
//!   returns summarized thinking (a readable summary, the full reasoning sealed in the
//!   signature), clients echo it back unchanged, and the gateway restores the original block
//!   (with upstream's real signature) before upstream ever sees it. A block we cannot sign is
//!   therefore never forwarded, and the answer text is not polluted by an extra text block.
//!   Upstream `redacted_thinking` blocks are already opaque and pass untouched.
//! - Responses: a `reasoning` item keeps `type` and `id`, loses `content`, gets an empty
//!   `summary` (or the summary) and `encrypted_content` = token.
//! - Chat fields (`reasoning_content`, `reasoning`, `reasoning_details`): removed, and
//!   `reasoning_details` = `[{"type":"reasoning.encrypted","data":TOKEN,"format":"moat-v1"}]`;
//!   in summarize mode the field the original used carries the summary.
//! - Inline `<think>` blocks: replaced by `<think>[moat:withheld TOKEN]</think>` (summary
//!   first when summarizing).
//!
//! A summary goes to the first place only; later places (several choices, interleaved
//! thinking) are withheld without one. Streams are handled in `crate::stream`.

use serde_json::{json, Map, Value};

use crate::error::DialectError;
use crate::payload::{self, Kind};
use crate::response::CHAT_REASONING_FIELDS;
use crate::seal::Sealer;
use crate::{think, Endpoint, Mode};

/// The `format` our `reasoning_details` entries carry, to tell them from upstream's.
pub(crate) const DETAILS_FORMAT: &str = "moat-v1";

/// What [`withhold_response`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WithholdReport {
    /// Places whose reasoning was replaced by a token.
    pub withheld: usize,
    /// Whether the summary was shown in one of them.
    pub summarized: bool,
}

/// Replaces the reasoning of a whole response body of `endpoint` by tokens sealed for
/// `account_id`. In [`Mode::Pass`] it changes nothing. On error the body may be partly
/// rewritten; the gateway must then not send it.
pub fn withhold_response(
    endpoint: Endpoint,
    account_id: &str,
    body: &mut Value,
    sealer: &Sealer,
    mode: &Mode,
) -> Result<WithholdReport, DialectError> {
    let summary = match mode {
        Mode::Pass => return Ok(WithholdReport::default()),
        Mode::Withhold => None,
        Mode::Summarize(s) => Some(s.as_str()),
    };
    let mut w = Withholder {
        sealer,
        account_id,
        summary,
        report: WithholdReport::default(),
    };
    match endpoint {
        Endpoint::ChatCompletions | Endpoint::Completions => {
            if let Some(Value::Array(choices)) = body.get_mut("choices") {
                for choice in choices {
                    if endpoint == Endpoint::Completions {
                        if let Some(Value::String(text)) = choice.get_mut("text") {
                            w.inline(text)?;
                        }
                    } else if let Some(Value::Object(msg)) = choice.get_mut("message") {
                        w.chat_fields(msg)?;
                        if let Some(Value::String(text)) = msg.get_mut("content") {
                            w.inline(text)?;
                        }
                    }
                }
            }
        }
        Endpoint::Responses => {
            if let Some(Value::Array(items)) = body.get_mut("output") {
                for item in items {
                    if item.get("type").and_then(Value::as_str) == Some("reasoning") {
                        let summary = w.take_summary();
                        let token = payload::seal(sealer, account_id, Kind::ResponsesItem, item)?;
                        *item = responses_item(item, &token, summary);
                        w.report.withheld += 1;
                    }
                }
            }
        }
        Endpoint::Messages => {
            if let Some(Value::Array(blocks)) = body.get_mut("content") {
                for block in blocks {
                    if block.get("type").and_then(Value::as_str) == Some("thinking") {
                        let summary = w.take_summary();
                        let token = payload::seal(sealer, account_id, Kind::MessagesBlock, block)?;
                        *block = anthropic_block(&token, summary);
                        w.report.withheld += 1;
                    }
                }
            }
        }
    }
    Ok(w.report)
}

struct Withholder<'a> {
    sealer: &'a Sealer,
    account_id: &'a str,
    summary: Option<&'a str>,
    report: WithholdReport,
}

impl<'a> Withholder<'a> {
    /// The summary for the next place, once.
    fn take_summary(&mut self) -> Option<&'a str> {
        let s = self.summary.take();
        if s.is_some() {
            self.report.summarized = true;
        }
        s
    }

    fn chat_fields(&mut self, msg: &mut Map<String, Value>) -> Result<(), DialectError> {
        let present = CHAT_REASONING_FIELDS
            .iter()
            .any(|k| msg.get(*k).is_some_and(|v| !v.is_null()));
        if !present {
            return Ok(());
        }
        let mut original = Map::new();
        for k in CHAT_REASONING_FIELDS {
            if let Some(v) = msg.remove(k) {
                original.insert(k.to_owned(), v);
            }
        }
        let original = Value::Object(original);
        let token = payload::seal(self.sealer, self.account_id, Kind::ChatFields, &original)?;
        let summary = self.take_summary();
        let (field, details) = chat_replacement(&original, &token, summary);
        if let Some((field, text)) = field {
            msg.insert(field.to_owned(), Value::String(text));
        }
        msg.insert("reasoning_details".to_owned(), details);
        self.report.withheld += 1;
        Ok(())
    }

    fn inline(&mut self, text: &mut String) -> Result<(), DialectError> {
        let Some(block) = think::find(text) else {
            return Ok(());
        };
        let original = Value::String(text[block.start..block.end].to_owned());
        let token = payload::seal(self.sealer, self.account_id, Kind::Inline, &original)?;
        let summary = self.take_summary();
        text.replace_range(
            block.start..block.end,
            &think::marker_block(&token, summary),
        );
        self.report.withheld += 1;
        Ok(())
    }
}

/// The withheld form of chat reasoning fields: the summary field (which field the original
/// used) and the `reasoning_details` that carries the token.
pub(crate) fn chat_replacement(
    original: &Value,
    token: &str,
    summary: Option<&str>,
) -> (Option<(&'static str, String)>, Value) {
    let mut details = Vec::with_capacity(2);
    let mut field = None;
    if let Some(s) = summary {
        let text_field = ["reasoning_content", "reasoning"]
            .into_iter()
            .find(|k| original.get(*k).is_some_and(Value::is_string));
        match text_field {
            Some(k) => field = Some((k, s.to_owned())),
            None => details.push(json!({
                "type": "reasoning.summary", "summary": s, "format": DETAILS_FORMAT
            })),
        }
    }
    details.push(json!({"type": "reasoning.encrypted", "data": token, "format": DETAILS_FORMAT}));
    (field, Value::Array(details))
}

/// The withheld form of a Responses reasoning item.
pub(crate) fn responses_item(original: &Value, token: &str, summary: Option<&str>) -> Value {
    let mut item = Map::new();
    item.insert("type".to_owned(), json!("reasoning"));
    if let Some(id) = original.get("id") {
        item.insert("id".to_owned(), id.clone());
    }
    let summary = match summary {
        Some(s) => json!([{"type": "summary_text", "text": s}]),
        None => json!([]),
    };
    item.insert("summary".to_owned(), summary);
    item.insert("encrypted_content".to_owned(), json!(token));
    if let Some(status) = original.get("status") {
        item.insert("status".to_owned(), status.clone());
    }
    Value::Object(item)
}

/// The withheld form of an Anthropic thinking block.
pub(crate) fn anthropic_block(token: &str, summary: Option<&str>) -> Value {
    match summary {
        Some(s) => json!({"type": "thinking", "thinking": s, "signature": token}),
        None => json!({"type": "redacted_thinking", "data": token}),
    }
}

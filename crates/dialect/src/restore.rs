//! Restoring withheld reasoning in a request: every token this crate put in a response and a
//! client echoed back is opened and replaced by the original, so upstream sees the
//! conversation it produced (Anthropic signatures intact).
//!
//! Only assistant turns (and the Responses `input` items, and a completions `prompt`) are
//! searched, in the places `crate::withhold` puts tokens. A token that does not open is an
//! error naming where it was: the gateway answers 400 rather than forward a turn it cannot
//! vouch for. A request without tokens is left untouched.

use serde_json::{Map, Value};

use crate::error::DialectError;
use crate::payload::{self, Kind};
use crate::response::CHAT_REASONING_FIELDS;
use crate::seal::{is_token, Sealer};
use crate::withhold::DETAILS_FORMAT;
use crate::{think, Endpoint};

/// What [`restore_request`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RestoreReport {
    /// Tokens opened and replaced by their original reasoning.
    pub restored: usize,
}

/// Restores the reasoning behind every token in a request body of `endpoint`.
pub fn restore_request(
    endpoint: Endpoint,
    account_id: &str,
    body: &mut Value,
    sealer: &Sealer,
) -> Result<RestoreReport, DialectError> {
    let mut r = Restorer {
        sealer,
        account_id,
        report: RestoreReport::default(),
    };
    match endpoint {
        Endpoint::ChatCompletions => {
            if let Some(Value::Array(messages)) = body.get_mut("messages") {
                for (i, m) in messages.iter_mut().enumerate() {
                    let Value::Object(msg) = m else { continue };
                    if msg.get("role").and_then(Value::as_str) != Some("assistant") {
                        continue;
                    }
                    r.chat_fields(msg, i)?;
                    match msg.get_mut("content") {
                        Some(Value::String(text)) => {
                            r.inline(text, &|| format!("messages[{i}].content"))?
                        }
                        Some(Value::Array(parts)) => {
                            for (j, p) in parts.iter_mut().enumerate() {
                                if let Some(Value::String(text)) = p.get_mut("text") {
                                    r.inline(text, &|| format!("messages[{i}].content[{j}].text"))?;
                                }
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
        Endpoint::Completions => match body.get_mut("prompt") {
            Some(Value::String(text)) => r.inline(text, &|| "prompt".to_owned())?,
            Some(Value::Array(items)) => {
                for (i, item) in items.iter_mut().enumerate() {
                    if let Value::String(text) = item {
                        r.inline(text, &|| format!("prompt[{i}]"))?;
                    }
                }
            }
            _ => {}
        },
        Endpoint::Responses => {
            if let Some(Value::Array(items)) = body.get_mut("input") {
                for (i, item) in items.iter_mut().enumerate() {
                    if item.get("type").and_then(Value::as_str) != Some("reasoning") {
                        continue;
                    }
                    let Some(token) = item
                        .get("encrypted_content")
                        .and_then(Value::as_str)
                        .filter(|t| is_token(t))
                    else {
                        continue;
                    };
                    let at = || format!("input[{i}].encrypted_content");
                    *item = payload::open(sealer, account_id, Kind::ResponsesItem, token, &at)?;
                    r.report.restored += 1;
                }
            }
        }
        Endpoint::Messages => {
            if let Some(Value::Array(messages)) = body.get_mut("messages") {
                for (i, m) in messages.iter_mut().enumerate() {
                    if m.get("role").and_then(Value::as_str) != Some("assistant") {
                        continue;
                    }
                    let Some(Value::Array(blocks)) = m.get_mut("content") else {
                        continue;
                    };
                    for (j, block) in blocks.iter_mut().enumerate() {
                        let field = match block.get("type").and_then(Value::as_str) {
                            Some("redacted_thinking") => "data",
                            Some("thinking") => "signature",
                            _ => continue,
                        };
                        let Some(token) = block
                            .get(field)
                            .and_then(Value::as_str)
                            .filter(|t| is_token(t))
                        else {
                            continue;
                        };
                        let at = || format!("messages[{i}].content[{j}].{field}");
                        *block =
                            payload::open(sealer, account_id, Kind::MessagesBlock, token, &at)?;
                        r.report.restored += 1;
                    }
                }
            }
        }
    }
    Ok(r.report)
}

struct Restorer<'a> {
    sealer: &'a Sealer,
    account_id: &'a str,
    report: RestoreReport,
}

impl Restorer<'_> {
    fn chat_fields(&mut self, msg: &mut Map<String, Value>, i: usize) -> Result<(), DialectError> {
        let Some(Value::Array(details)) = msg.get("reasoning_details") else {
            return Ok(());
        };
        let Some((j, token)) = details.iter().enumerate().find_map(|(j, d)| {
            let ours = d.get("format").and_then(Value::as_str) == Some(DETAILS_FORMAT)
                && d.get("type").and_then(Value::as_str) == Some("reasoning.encrypted");
            let token = d.get("data").and_then(Value::as_str)?;
            ours.then(|| (j, token.to_owned()))
        }) else {
            return Ok(());
        };
        let at = || format!("messages[{i}].reasoning_details[{j}].data");
        let Value::Object(original) =
            payload::open(self.sealer, self.account_id, Kind::ChatFields, &token, &at)?
        else {
            return Ok(());
        };
        // Put back exactly the original fields: ours (the token entry, a summary in the
        // field the original used) are replaced or removed.
        for k in CHAT_REASONING_FIELDS {
            match original.get(k) {
                Some(v) => {
                    msg.insert(k.to_owned(), v.clone());
                }
                None if k == "reasoning_details" => {
                    msg.remove(k);
                }
                None => {}
            }
        }
        self.report.restored += 1;
        Ok(())
    }

    fn inline(&mut self, text: &mut String, at: &dyn Fn() -> String) -> Result<(), DialectError> {
        // Most texts carry no marker: check cheaply before building anything.
        if !text.contains(think::MARKER_START) {
            return Ok(());
        }
        let mut out = String::with_capacity(text.len());
        let mut pos = 0;
        while let Some(m) = think::find_marker(text, pos) {
            if !is_token(m.token) {
                // Not ours (or a client's literal text): leave it as it is.
                out.push_str(&text[pos..m.end]);
                pos = m.end;
                continue;
            }
            let original = payload::open(self.sealer, self.account_id, Kind::Inline, m.token, at)?;
            out.push_str(&text[pos..m.start]);
            out.push_str(original.as_str().unwrap_or_default());
            pos = m.end;
            self.report.restored += 1;
        }
        out.push_str(&text[pos..]);
        *text = out;
        Ok(())
    }
}

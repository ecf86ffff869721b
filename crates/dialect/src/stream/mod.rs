//! Streamed responses: a per-response filter over complete server-sent events.
//!
//! The gateway parses upstream bytes with [`crate::SseParser`] and hands each event to a
//! [`StreamFilter`], which returns the bytes to send downstream and accumulates the facts of
//! the exchange record as they pass. In [`StreamMode::Pass`] every event goes out unchanged
//! (the same `Bytes`, not a copy). In the other modes reasoning events are dropped and, when a
//! reasoning block ends, replaced by the dialect's withheld form carrying a token (see
//! `crate::withhold` for the forms). Nothing is buffered beyond the reasoning block being
//! withheld, except in summarize mode while the gateway fetches a summary (see
//! [`StreamFilter::pending_summary`]).
//!
//! The dialects live side by side in `chat.rs` (chat and completions), `messages.rs` and
//! `responses.rs`, each a state machine over events that emits [`Segment`]s; this module owns
//! what they share: rendering withheld forms, holding output for a summary, token counts.

mod chat;
mod messages;
mod responses;

use std::collections::{HashMap, VecDeque};

use bytes::Bytes;
use serde_json::{json, Value};

use crate::error::DialectError;
use crate::payload::{self, Kind};
use crate::response::{ReasoningDisposition, ResponseFacts};
use crate::seal::{Sealer, MAX_PAYLOAD_BYTES};
use crate::sse::SseEvent;
use crate::withhold::{anthropic_block, chat_replacement, responses_item};
use crate::{think, Endpoint};

/// What a [`StreamFilter`] does with reasoning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamMode {
    /// Send every event unchanged.
    Pass,
    /// Drop reasoning and send a token in its place.
    Withhold,
    /// Like withhold, and show a summary in the first reasoning place. The filter holds its
    /// output from the end of that reasoning until [`StreamFilter::supply_summary`].
    Summarize,
}

/// Why the gateway ends a stream before upstream did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EarlyStop {
    /// The output token budget is spent (`length`, `max_tokens`, `max_output_tokens`).
    TokenBudget,
    /// The policy stopped it (`content_filter`, Anthropic `refusal`).
    Policy,
}

/// The most output held while waiting for a summary; past it the summary is given up and
/// the reasoning withheld without one, so a slow summarizer cannot make us buffer a whole
/// response.
const MAX_HELD_BYTES: usize = 4 << 20;

/// One piece of downstream output, rendered when it is sent.
#[derive(Debug)]
enum Segment {
    /// Bytes ready to go.
    Raw(Bytes),
    /// A withheld reasoning place; rendered with a fresh token.
    Site(Site),
    /// A Responses terminal event whose `response.output` must be rewritten with the items
    /// rendered before it.
    ResponsesFinal { event: String, json: Value },
}

#[derive(Debug)]
struct Site {
    /// The reasoning text, what a summarizer reads.
    text: String,
    kind: SiteKind,
}

#[derive(Debug)]
enum SiteKind {
    /// Chat reasoning fields of choice `index`; `envelope` is a chunk without choices.
    ChatFields {
        envelope: Value,
        index: Value,
        original: Value,
    },
    /// An inline `<think>` block of choice `index`.
    Inline {
        envelope: Value,
        index: Value,
        block: String,
        completions: bool,
    },
    /// An Anthropic thinking block at content index `index`.
    Messages { index: Value, block: Value },
    /// A Responses reasoning item; `event` is its `response.output_item.done` event.
    Responses { event: Value, item: Value },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Summary {
    /// No reasoning place reached yet.
    NotYet,
    /// Output held until the gateway supplies the summary.
    Awaiting,
    /// Supplied, not yet shown.
    Supplied(String),
    /// Shown (or given up); later places are withheld without one.
    Done,
}

/// What the dialect state machines share: mode, facts, counts and the output they emit.
#[derive(Debug)]
struct Core {
    mode: StreamMode,
    facts: ResponseFacts,
    /// Bytes of answer and reasoning text seen, for the token estimate.
    text_bytes: u64,
    out: Vec<Segment>,
}

impl Core {
    fn rewriting(&self) -> bool {
        self.mode != StreamMode::Pass
    }

    fn emit(&mut self, bytes: Bytes) {
        self.out.push(Segment::Raw(bytes));
    }

    fn emit_event(&mut self, event: Option<&str>, json: &Value) {
        self.emit(SseEvent::synthesize(event, &json.to_string()));
    }

    fn site(&mut self, text: String, kind: SiteKind) {
        self.out.push(Segment::Site(Site { text, kind }));
    }

    fn answer(&mut self, text: &str, first_choice: bool) {
        self.text_bytes += text.len() as u64;
        if first_choice {
            append_capped(&mut self.facts.content, text);
        }
    }

    fn reasoning(&mut self, text: &str, first_choice: bool) {
        self.text_bytes += text.len() as u64;
        if first_choice {
            append_capped(&mut self.facts.reasoning, text);
        }
    }
}

/// Appends to a record text, keeping it within the payload bound (a record may be cut; the
/// memory of a hostile upstream's endless stream must not grow without end).
fn append_capped(s: &mut String, text: &str) {
    let room = MAX_PAYLOAD_BYTES.saturating_sub(s.len());
    if text.len() <= room {
        s.push_str(text);
    } else {
        let mut end = room;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        s.push_str(&text[..end]);
    }
}

/// Refuses reasoning that grew past what a token can hold.
fn check_size(len: usize) -> Result<(), DialectError> {
    if len > MAX_PAYLOAD_BYTES {
        Err(DialectError::PayloadTooLarge {
            size: len,
            limit: MAX_PAYLOAD_BYTES,
        })
    } else {
        Ok(())
    }
}

#[derive(Debug)]
enum Dialect {
    Chat(chat::ChatState),
    Messages(messages::MessagesState),
    Responses(responses::ResponsesState),
}

/// The per-response filter of a streamed response.
#[derive(Debug)]
pub struct StreamFilter {
    core: Core,
    dialect: Dialect,
    sealer: Sealer,
    account_id: String,
    held: VecDeque<Segment>,
    held_bytes: usize,
    summary: Summary,
    /// Withheld Responses items by id, so the terminal event repeats the same token.
    sealed_items: HashMap<String, Value>,
    /// Reasoning places replaced by a token so far.
    sealed: usize,
    /// Set once the stream is closed (by upstream's end or [`StreamFilter::finish_early`]).
    ended: bool,
}

impl StreamFilter {
    /// A filter for one streamed response of `endpoint` to `account_id`.
    pub fn new(
        endpoint: Endpoint,
        mode: StreamMode,
        sealer: Sealer,
        account_id: impl Into<String>,
    ) -> Self {
        let dialect = match endpoint {
            Endpoint::ChatCompletions => Dialect::Chat(chat::ChatState::new(false)),
            Endpoint::Completions => Dialect::Chat(chat::ChatState::new(true)),
            Endpoint::Messages => Dialect::Messages(messages::MessagesState::default()),
            Endpoint::Responses => Dialect::Responses(responses::ResponsesState::default()),
        };
        StreamFilter {
            core: Core {
                mode,
                facts: ResponseFacts::default(),
                text_bytes: 0,
                out: Vec::new(),
            },
            dialect,
            sealer,
            account_id: account_id.into(),
            held: VecDeque::new(),
            held_bytes: 0,
            summary: Summary::NotYet,
            sealed_items: HashMap::new(),
            sealed: 0,
            ended: false,
        }
    }

    /// Takes one complete event from upstream; returns the bytes to send downstream now
    /// (possibly none). After the stream ended, events are ignored.
    pub fn push(&mut self, event: SseEvent) -> Result<Bytes, DialectError> {
        if self.ended {
            return Ok(Bytes::new());
        }
        match &mut self.dialect {
            Dialect::Chat(s) => s.event(&mut self.core, event)?,
            Dialect::Messages(s) => s.event(&mut self.core, event)?,
            Dialect::Responses(s) => s.event(&mut self.core, event)?,
        }
        self.flush()
    }

    /// Upstream's stream ended: closes any reasoning still open (withheld with a token),
    /// gives up a summary not yet supplied, and returns what is left to send.
    pub fn finish(&mut self) -> Result<Bytes, DialectError> {
        if !self.ended {
            match &mut self.dialect {
                Dialect::Chat(s) => s.finish(&mut self.core),
                Dialect::Messages(s) => s.finish(&mut self.core),
                Dialect::Responses(s) => s.finish(&mut self.core),
            }
            self.ended = true;
        }
        self.give_up_summary();
        self.flush()
    }

    /// Ends the stream now, for the given reason, with the dialect's closing events (chat:
    /// a chunk with a finish reason and `[DONE]`; Anthropic: the open block's stop,
    /// `message_delta` and `message_stop`; Responses: `response.incomplete`), so the client
    /// ends cleanly. Reasoning still open is closed with a token for what was seen. Anything
    /// held for a summary is sent first, without the summary.
    pub fn finish_early(&mut self, reason: EarlyStop) -> Bytes {
        if self.ended {
            return self.flush().unwrap_or_default();
        }
        self.ended = true;
        match &mut self.dialect {
            Dialect::Chat(s) => s.finish_early(&mut self.core, reason),
            Dialect::Messages(s) => s.finish_early(&mut self.core, reason),
            Dialect::Responses(s) => s.finish_early(&mut self.core, reason),
        }
        self.give_up_summary();
        match self.flush() {
            Ok(b) => b,
            // Sealing failed (the random source, or reasoning too large): send the closing
            // events without the withheld places rather than leave the client hanging.
            Err(_) => {
                let mut out = Vec::new();
                for seg in std::mem::take(&mut self.held) {
                    if let Segment::Raw(b) = seg {
                        out.extend_from_slice(&b);
                    }
                }
                self.held_bytes = 0;
                Bytes::from(out)
            }
        }
    }

    /// In summarize mode, once a reasoning block has ended: its text, which the gateway
    /// summarizes and hands to [`StreamFilter::supply_summary`]. Output is held meanwhile.
    pub fn pending_summary(&self) -> Option<&str> {
        if self.summary != Summary::Awaiting {
            return None;
        }
        self.held.iter().find_map(|s| match s {
            Segment::Site(site) => Some(site.text.as_str()),
            _ => None,
        })
    }

    /// Supplies the summary asked for by [`StreamFilter::pending_summary`] and returns the
    /// output held until now. Ignored (returns only what is ready) when none is pending.
    pub fn supply_summary(&mut self, summary: &str) -> Result<Bytes, DialectError> {
        if self.summary == Summary::Awaiting {
            self.summary = Summary::Supplied(summary.to_owned());
        }
        self.flush()
    }

    /// Gives up the summary asked for by [`StreamFilter::pending_summary`] (the summarizer
    /// failed or timed out): the reasoning stays withheld, without a summary, and the output
    /// held until now is returned.
    pub fn decline_summary(&mut self) -> Result<Bytes, DialectError> {
        self.give_up_summary();
        self.flush()
    }

    /// The facts of the exchange so far (final after [`StreamFilter::finish`]).
    pub fn facts(&self) -> ResponseFacts {
        let mut f = self.core.facts.clone();
        match &self.dialect {
            Dialect::Responses(s) => s.complete_facts(&mut f),
            Dialect::Chat(_) | Dialect::Messages(_) => {}
        }
        f.disposition = if f.reasoning.is_empty() && self.sealed == 0 {
            ReasoningDisposition::Absent
        } else {
            match (self.core.mode, &f.summary) {
                (StreamMode::Pass, _) => ReasoningDisposition::Returned,
                (StreamMode::Summarize, Some(_)) => ReasoningDisposition::Summarized,
                _ => ReasoningDisposition::Withheld,
            }
        };
        f
    }

    /// Output tokens so far: upstream's count where it reported one, else (or when larger)
    /// an estimate of one token per 4 bytes of answer and reasoning text.
    pub fn output_tokens(&self) -> u64 {
        let estimate = self.core.text_bytes.div_ceil(4);
        self.core
            .facts
            .completion_tokens
            .map_or(estimate, |n| n.max(estimate))
    }

    /// Whether the stream has ended (upstream's end, [`StreamFilter::finish`] or
    /// [`StreamFilter::finish_early`]).
    pub fn ended(&self) -> bool {
        self.ended
    }

    fn give_up_summary(&mut self) {
        if matches!(self.summary, Summary::NotYet | Summary::Awaiting) {
            self.summary = Summary::Done;
        }
    }

    /// Moves the dialect's new segments behind anything held and renders from the front
    /// until a place that waits for a summary.
    fn flush(&mut self) -> Result<Bytes, DialectError> {
        for seg in self.core.out.drain(..) {
            if let Segment::Raw(b) = &seg {
                self.held_bytes += b.len();
            }
            self.held.push_back(seg);
        }
        if self.summary == Summary::Awaiting && self.held_bytes > MAX_HELD_BYTES {
            self.summary = Summary::Done;
        }
        // The common case, one event out unchanged: hand back the same `Bytes`.
        if self.held.len() == 1 {
            if let Some(Segment::Raw(_)) = self.held.front() {
                if let Some(Segment::Raw(b)) = self.held.pop_front() {
                    self.held_bytes = 0;
                    return Ok(b);
                }
            }
        }
        let mut out = Vec::new();
        while let Some(seg) = self.held.front() {
            if let Segment::Site(_) = seg {
                if self.core.mode == StreamMode::Summarize {
                    match self.summary {
                        Summary::NotYet | Summary::Awaiting => {
                            self.summary = Summary::Awaiting;
                            break;
                        }
                        Summary::Supplied(_) | Summary::Done => {}
                    }
                }
            }
            let Some(seg) = self.held.pop_front() else {
                break;
            };
            match seg {
                Segment::Raw(b) => {
                    self.held_bytes = self.held_bytes.saturating_sub(b.len());
                    out.extend_from_slice(&b);
                }
                Segment::Site(site) => {
                    let summary = match std::mem::replace(&mut self.summary, Summary::Done) {
                        Summary::Supplied(s) => Some(s),
                        _ => None,
                    };
                    if let Some(s) = &summary {
                        self.core.facts.summary = Some(s.clone());
                    }
                    out.extend_from_slice(&self.render(site, summary.as_deref())?);
                }
                Segment::ResponsesFinal { event, mut json } => {
                    self.rewrite_final(&mut json)?;
                    out.extend_from_slice(&SseEvent::synthesize(Some(&event), &json.to_string()));
                }
            }
        }
        Ok(Bytes::from(out))
    }

    fn render(&mut self, site: Site, summary: Option<&str>) -> Result<Bytes, DialectError> {
        self.sealed += 1;
        let (sealer, account) = (&self.sealer, self.account_id.as_str());
        Ok(match site.kind {
            SiteKind::ChatFields {
                mut envelope,
                index,
                original,
            } => {
                let token = payload::seal(sealer, account, Kind::ChatFields, &original)?;
                let (field, details) = chat_replacement(&original, &token, summary);
                let mut delta = serde_json::Map::new();
                if let Some((f, text)) = field {
                    delta.insert(f.to_owned(), Value::String(text));
                }
                delta.insert("reasoning_details".to_owned(), details);
                envelope["choices"] =
                    json!([{"index": index, "delta": delta, "finish_reason": null}]);
                SseEvent::synthesize(None, &envelope.to_string())
            }
            SiteKind::Inline {
                mut envelope,
                index,
                block,
                completions,
            } => {
                let token = payload::seal(sealer, account, Kind::Inline, &Value::String(block))?;
                let text = think::marker_block(&token, summary);
                envelope["choices"] = if completions {
                    json!([{"index": index, "text": text, "logprobs": null, "finish_reason": null}])
                } else {
                    json!([{"index": index, "delta": {"content": text}, "finish_reason": null}])
                };
                SseEvent::synthesize(None, &envelope.to_string())
            }
            SiteKind::Messages { index, block } => {
                let token = payload::seal(sealer, account, Kind::MessagesBlock, &block)?;
                let mut out = Vec::new();
                let mut ev = |name: &str, v: Value| {
                    out.extend_from_slice(&SseEvent::synthesize(Some(name), &v.to_string()));
                };
                match summary {
                    Some(s) => {
                        ev(
                            "content_block_start",
                            json!({"type": "content_block_start", "index": index,
                                   "content_block": {"type": "thinking", "thinking": ""}}),
                        );
                        ev(
                            "content_block_delta",
                            json!({"type": "content_block_delta", "index": index,
                                   "delta": {"type": "thinking_delta", "thinking": s}}),
                        );
                        ev(
                            "content_block_delta",
                            json!({"type": "content_block_delta", "index": index,
                                   "delta": {"type": "signature_delta", "signature": token}}),
                        );
                    }
                    None => ev(
                        "content_block_start",
                        json!({"type": "content_block_start", "index": index,
                               "content_block": anthropic_block(&token, None)}),
                    ),
                }
                ev(
                    "content_block_stop",
                    json!({"type": "content_block_stop", "index": index}),
                );
                Bytes::from(out)
            }
            SiteKind::Responses { mut event, item } => {
                let token = payload::seal(sealer, account, Kind::ResponsesItem, &item)?;
                let withheld = responses_item(&item, &token, summary);
                let id = item
                    .get("id")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned();
                self.sealed_items.insert(id, withheld.clone());
                event["item"] = withheld;
                SseEvent::synthesize(Some("response.output_item.done"), &event.to_string())
            }
        })
    }

    /// Rewrites the reasoning items of a terminal Responses event's `response.output`,
    /// repeating the withheld item already sent where there is one.
    fn rewrite_final(&mut self, json: &mut Value) -> Result<(), DialectError> {
        let Some(Value::Array(items)) = json.pointer_mut("/response/output") else {
            return Ok(());
        };
        for item in items {
            if item.get("type").and_then(Value::as_str) != Some("reasoning") {
                continue;
            }
            let id = item.get("id").and_then(Value::as_str).unwrap_or("");
            match self.sealed_items.get(id) {
                Some(w) => *item = w.clone(),
                _ => {
                    let token =
                        payload::seal(&self.sealer, &self.account_id, Kind::ResponsesItem, item)?;
                    *item = responses_item(item, &token, None);
                }
            }
        }
        Ok(())
    }
}

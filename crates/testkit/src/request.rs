//! Reading a request: the `x-mock-*` control headers and the few body fields the mock needs.
//!
//! Everything here treats its input as hostile: a malformed header or body becomes a [`Fault`]
//! (a 4xx reply in the endpoint's own error shape), never a panic, and every number a header sets
//! is bounded. The body is read into a borrowed view that skips everything the mock does not
//! use, which keeps a zero-delay reply cheap. Building replies is the endpoint modules' job.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use serde::de::{self, Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde::Deserialize;

use crate::text::{clamp_chunks, prompt_tokens, MAX_CHUNKS};
use crate::{MockConfig, Reasoning};

/// The longest per-request latency or interval a header may ask for.
const MAX_HEADER_DELAY: Duration = Duration::from_secs(600);

/// The API a request was sent to; it decides the reply format and the error shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// `GET /v1/models`.
    Models,
    /// `POST /v1/chat/completions`.
    Chat,
    /// `POST /v1/completions`.
    Completions,
    /// `POST /v1/responses`.
    Responses,
    /// `POST /v1/messages` (Anthropic).
    Messages,
}

impl Endpoint {
    /// The route the endpoint is served on.
    pub(crate) fn path(self) -> &'static str {
        match self {
            Endpoint::Models => "/v1/models",
            Endpoint::Chat => "/v1/chat/completions",
            Endpoint::Completions => "/v1/completions",
            Endpoint::Responses => "/v1/responses",
            Endpoint::Messages => "/v1/messages",
        }
    }
}

/// A reply the mock gives instead of a completion: an injected error or a rejected request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fault {
    /// The HTTP status to answer with.
    pub(crate) status: StatusCode,
    /// A short description. It never quotes the request body, which may hold prompt text.
    pub(crate) message: Cow<'static, str>,
}

impl Fault {
    fn bad_request(message: impl Into<Cow<'static, str>>) -> Fault {
        Fault {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    /// The error an `x-mock-status` header asked for.
    pub(crate) fn injected(status: StatusCode) -> Fault {
        Fault {
            status,
            message: Cow::Owned(format!(
                "mock upstream error injected by x-mock-status: {}",
                status.as_u16()
            )),
        }
    }
}

/// The per-request settings, from the configuration and the `x-mock-*` headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Controls {
    /// The delay before the reply (`x-mock-latency-ms`).
    pub(crate) latency: Duration,
    /// The delay before each streamed delta (`x-mock-interval-ms`).
    pub(crate) interval: Duration,
    /// The number of content deltas (`x-mock-chunks`), already clamped.
    pub(crate) chunks: usize,
    /// The reasoning dialect forced by `x-mock-reasoning`, if any.
    pub(crate) reasoning: Option<Reasoning>,
    /// The error status to answer with instead of a completion (`x-mock-status`).
    pub(crate) status: Option<StatusCode>,
    /// Abort the stream after this many deltas (`x-mock-drop-after`).
    pub(crate) drop_after: Option<usize>,
}

impl Controls {
    /// Reads the control headers over the configured defaults. A control header that is present
    /// but malformed is a 400, because a test that misspells a control should fail loudly rather
    /// than silently get a normal reply.
    pub(crate) fn from_headers(headers: &HeaderMap, cfg: &MockConfig) -> Result<Controls, Fault> {
        let mut controls = Controls {
            latency: cfg.latency,
            interval: cfg.interval,
            chunks: clamp_chunks(cfg.chunks),
            reasoning: None,
            status: None,
            drop_after: None,
        };
        if let Some(ms) = number(headers, "x-mock-latency-ms", millis(MAX_HEADER_DELAY))? {
            controls.latency = Duration::from_millis(ms);
        }
        if let Some(ms) = number(headers, "x-mock-interval-ms", millis(MAX_HEADER_DELAY))? {
            controls.interval = Duration::from_millis(ms);
        }
        if let Some(chunks) = number(headers, "x-mock-chunks", MAX_CHUNKS as u64)? {
            controls.chunks = clamp_chunks(usize::try_from(chunks).unwrap_or(MAX_CHUNKS));
        }
        if let Some(k) = number(headers, "x-mock-drop-after", u64::from(u32::MAX))? {
            controls.drop_after = Some(usize::try_from(k).unwrap_or(usize::MAX));
        }
        if let Some(code) = number(headers, "x-mock-status", 599)? {
            let status = u16::try_from(code)
                .ok()
                .and_then(|c| StatusCode::from_u16(c).ok())
                .filter(|s| s.is_client_error() || s.is_server_error())
                .ok_or_else(|| Fault::bad_request("x-mock-status must be between 400 and 599"))?;
            controls.status = Some(status);
        }
        if let Some(value) = headers.get("x-mock-reasoning") {
            let variant = value
                .to_str()
                .ok()
                .and_then(Reasoning::from_name)
                .ok_or_else(|| {
                    Fault::bad_request(
                        "x-mock-reasoning must be one of plain, reasoning-content, reasoning, \
                         reasoning-details, think",
                    )
                })?;
            controls.reasoning = Some(variant);
        }
        Ok(controls)
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Reads a decimal header no greater than `max`; absent is `None`, anything else malformed is a
/// 400 naming the header.
fn number(headers: &HeaderMap, name: &'static str, max: u64) -> Result<Option<u64>, Fault> {
    let Some(value) = headers.get(name) else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .filter(|n| *n <= max)
        .map(Some)
        .ok_or_else(|| {
            Fault::bad_request(format!(
                "{name} must be a decimal number no greater than {max}"
            ))
        })
}

/// What the mock will answer: everything the endpoint modules need, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    /// The model name, echoed back as real servers do.
    pub(crate) model: String,
    /// The number of input messages (or prompts, or input items); the reply text mentions it.
    pub(crate) inputs: usize,
    /// The rough prompt-token count reported in usage.
    pub(crate) prompt_tokens: u64,
    /// Whether to answer with an SSE stream.
    pub(crate) stream: bool,
    /// Whether a chat or completions stream ends with a usage chunk.
    pub(crate) include_usage: bool,
    /// The reasoning dialect.
    pub(crate) reasoning: Reasoning,
    /// The number of content deltas (and of reasoning deltas, when there is reasoning).
    pub(crate) chunks: usize,
    /// A per-server sequence number, used in ids so replies are distinguishable.
    pub(crate) seq: u64,
}

impl Plan {
    /// The number of reasoning "tokens" reported in usage: one per reasoning delta.
    pub(crate) fn reasoning_tokens(&self) -> u64 {
        if self.reasoning.any() {
            self.chunks as u64
        } else {
            0
        }
    }

    /// The number of completion "tokens" reported in usage: one per delta, reasoning included.
    pub(crate) fn completion_tokens(&self) -> u64 {
        self.chunks as u64 + self.reasoning_tokens()
    }
}

/// The body fields the mock reads. Everything else is skipped without being built.
#[derive(Deserialize)]
struct Wire<'a> {
    #[serde(borrow, default)]
    model: Option<Cow<'a, str>>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
    #[serde(default)]
    messages: Option<Counted>,
    #[serde(default)]
    prompt: Option<Counted>,
    #[serde(default)]
    input: Option<Counted>,
}

#[derive(Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: Option<bool>,
}

/// A string or an array, remembered only as how many items it held (a string is one).
#[derive(Debug, Clone, Copy)]
struct Counted {
    items: usize,
    array: bool,
}

impl<'de> Deserialize<'de> for Counted {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CountVisitor;

        impl<'de> Visitor<'de> for CountVisitor {
            type Value = Counted;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array")
            }

            fn visit_str<E: de::Error>(self, _: &str) -> Result<Counted, E> {
                Ok(Counted {
                    items: 1,
                    array: false,
                })
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Counted, A::Error> {
                let mut items = 0;
                while seq.next_element::<IgnoredAny>()?.is_some() {
                    items += 1;
                }
                Ok(Counted { items, array: true })
            }
        }

        deserializer.deserialize_any(CountVisitor)
    }
}

/// Reads a completion request's body into a [`Plan`]. Rejects what a real server would reject
/// (a body that is not a JSON object, a missing model, messages that are not an array) so that
/// the gateway's error paths see realistic upstream errors.
pub(crate) fn plan(
    endpoint: Endpoint,
    body: &[u8],
    controls: &Controls,
    default_reasoning: Reasoning,
    seq: u64,
) -> Result<Plan, Fault> {
    let wire: Wire<'_> = serde_json::from_slice(body).map_err(|e| {
        // serde_json's own messages can quote a string value from the body, which may be prompt
        // text, so only the kind of error and its position are reported.
        let what = match e.classify() {
            serde_json::error::Category::Data => "request body has a field of the wrong type",
            _ => "request body is not a valid JSON object",
        };
        Fault::bad_request(format!("{what} at line {} column {}", e.line(), e.column()))
    })?;
    let model = wire
        .model
        .filter(|m| !m.is_empty())
        .ok_or_else(|| Fault::bad_request("request body lacks a model"))?;
    let inputs = match endpoint {
        Endpoint::Chat | Endpoint::Messages => match wire.messages {
            Some(Counted { items, array: true }) => items,
            _ => return Err(Fault::bad_request("messages must be an array")),
        },
        Endpoint::Completions => match wire.prompt {
            Some(prompt) => prompt.items,
            None => return Err(Fault::bad_request("request body lacks a prompt")),
        },
        // The Responses API allows no input when a previous response is referenced.
        Endpoint::Responses => wire.input.map_or(0, |input| input.items),
        Endpoint::Models => 0,
    };
    let reasoning = controls
        .reasoning
        .or_else(|| Reasoning::from_model(&model))
        .unwrap_or(default_reasoning);
    Ok(Plan {
        model: model.into_owned(),
        inputs,
        prompt_tokens: prompt_tokens(body.len()),
        stream: wire.stream.unwrap_or(false),
        include_usage: wire
            .stream_options
            .and_then(|o| o.include_usage)
            .unwrap_or(false),
        reasoning,
        chunks: controls.chunks,
        seq,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use proptest::prelude::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn controls() -> Controls {
        Controls::from_headers(&HeaderMap::new(), &MockConfig::default()).unwrap()
    }

    #[test]
    fn headers_override_the_configuration() {
        let cfg = MockConfig {
            latency: Duration::from_millis(5),
            chunks: 3,
            ..MockConfig::default()
        };
        let c = Controls::from_headers(
            &headers(&[
                ("x-mock-latency-ms", "250"),
                ("x-mock-interval-ms", "7"),
                ("x-mock-chunks", "4"),
                ("x-mock-drop-after", "2"),
                ("x-mock-status", "429"),
                ("x-mock-reasoning", "reasoning_details"),
            ]),
            &cfg,
        )
        .unwrap();
        assert_eq!(c.latency, Duration::from_millis(250));
        assert_eq!(c.interval, Duration::from_millis(7));
        assert_eq!(c.chunks, 4);
        assert_eq!(c.drop_after, Some(2));
        assert_eq!(c.status, Some(StatusCode::TOO_MANY_REQUESTS));
        assert_eq!(c.reasoning, Some(Reasoning::ReasoningDetails));
    }

    #[test]
    fn malformed_control_headers_are_bad_requests() {
        for (name, value) in [
            ("x-mock-latency-ms", "soon"),
            ("x-mock-latency-ms", "99999999999"),
            ("x-mock-status", "200"),
            ("x-mock-status", "700"),
            ("x-mock-chunks", "-1"),
            ("x-mock-drop-after", "1.5"),
            ("x-mock-reasoning", "deep"),
        ] {
            let fault = Controls::from_headers(&headers(&[(name, value)]), &MockConfig::default())
                .unwrap_err();
            assert_eq!(fault.status, StatusCode::BAD_REQUEST, "{name}: {value}");
            assert!(fault.message.contains(name), "{}", fault.message);
        }
    }

    #[test]
    fn reasoning_header_beats_model_name_which_beats_the_default() {
        let body = br#"{"model":"mock-think","messages":[]}"#;
        let mut c = controls();
        let p = plan(Endpoint::Chat, body, &c, Reasoning::Reasoning, 0).unwrap();
        assert_eq!(p.reasoning, Reasoning::Think);
        c.reasoning = Some(Reasoning::Plain);
        let p = plan(Endpoint::Chat, body, &c, Reasoning::Reasoning, 0).unwrap();
        assert_eq!(p.reasoning, Reasoning::Plain);
        let other = br#"{"model":"gpt-4o","messages":[]}"#;
        let p = plan(Endpoint::Chat, other, &controls(), Reasoning::Reasoning, 0).unwrap();
        assert_eq!(p.reasoning, Reasoning::Reasoning);
    }

    #[test]
    fn counts_inputs_per_endpoint() {
        let c = controls();
        let chat = br#"{"model":"m","messages":[{"role":"user","content":"a"},{"role":"user","content":[{"type":"text","text":"b"}]}],"stream":true,"stream_options":{"include_usage":true}}"#;
        let p = plan(Endpoint::Chat, chat, &c, Reasoning::Plain, 0).unwrap();
        assert_eq!((p.inputs, p.stream, p.include_usage), (2, true, true));
        let completion = br#"{"model":"m","prompt":"hello"}"#;
        let p = plan(Endpoint::Completions, completion, &c, Reasoning::Plain, 0).unwrap();
        assert_eq!((p.inputs, p.stream), (1, false));
        let batch = br#"{"model":"m","prompt":["a","b","c"]}"#;
        assert_eq!(
            plan(Endpoint::Completions, batch, &c, Reasoning::Plain, 0)
                .unwrap()
                .inputs,
            3
        );
        let responses = br#"{"model":"m","input":"hi"}"#;
        assert_eq!(
            plan(Endpoint::Responses, responses, &c, Reasoning::Plain, 0)
                .unwrap()
                .inputs,
            1
        );
    }

    #[test]
    fn rejects_what_real_servers_reject() {
        let c = controls();
        for (endpoint, body) in [
            (Endpoint::Chat, &b"not json"[..]),
            (Endpoint::Chat, br#"[1,2]"#),
            (Endpoint::Chat, br#"{"messages":[]}"#),
            (Endpoint::Chat, br#"{"model":"","messages":[]}"#),
            (Endpoint::Chat, br#"{"model":"m"}"#),
            (Endpoint::Chat, br#"{"model":"m","messages":"hi"}"#),
            (
                Endpoint::Chat,
                br#"{"model":"m","messages":[],"stream":"yes"}"#,
            ),
            (Endpoint::Messages, br#"{"model":"m","messages":{}}"#),
            (Endpoint::Completions, br#"{"model":"m"}"#),
            (Endpoint::Completions, br#"{"model":"m","prompt":5}"#),
        ] {
            let fault = plan(endpoint, body, &c, Reasoning::Plain, 0).unwrap_err();
            assert_eq!(fault.status, StatusCode::BAD_REQUEST);
        }
    }

    #[test]
    fn errors_never_quote_the_prompt() {
        let body = br#"{"model":"m","messages":"secret prompt text"}"#;
        let fault = plan(Endpoint::Chat, body, &controls(), Reasoning::Plain, 0).unwrap_err();
        assert!(!fault.message.contains("secret"));
        let body =
            br#"{"model":"m","messages":[{"content":"secret prompt text"}], "stream": "secret"}"#;
        let fault = plan(Endpoint::Chat, body, &controls(), Reasoning::Plain, 0).unwrap_err();
        assert!(!fault.message.contains("secret"), "{}", fault.message);
    }

    proptest! {
        #[test]
        fn plan_never_panics_on_arbitrary_bytes(body in proptest::collection::vec(any::<u8>(), 0..256)) {
            let c = controls();
            for endpoint in [Endpoint::Chat, Endpoint::Completions, Endpoint::Responses, Endpoint::Messages] {
                let _ = plan(endpoint, &body, &c, Reasoning::Plain, 0);
            }
        }

        #[test]
        fn control_headers_never_panic(value in "[ -~]{0,24}") {
            for name in ["x-mock-latency-ms", "x-mock-interval-ms", "x-mock-chunks", "x-mock-drop-after", "x-mock-status", "x-mock-reasoning"] {
                if let Ok(v) = HeaderValue::from_str(&value) {
                    let mut map = HeaderMap::new();
                    map.insert(name, v);
                    let _ = Controls::from_headers(&map, &MockConfig::default());
                }
            }
        }
    }
}

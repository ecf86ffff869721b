//! One exchange (one API call) of exchange log v1.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{Record, Timestamp, ValidationError};

/// One API call, as the gateway records it and the simulator produces it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Exchange {
    /// Format version; always 1.
    pub v: u64,
    /// When the request arrived (UTC).
    pub ts: Timestamp,
    /// Provider's request identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Billing account or organisation that made the call.
    pub account_id: String,
    /// Identifier of the API key used (never the key itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_id: Option<String>,
    /// Network and client attributes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<Client>,
    /// What was asked.
    pub request: Request,
    /// What was answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<Response>,
}

/// Network and client attributes of an exchange; every field may be unknown.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Client {
    /// IPv4 or IPv6 address in text form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// Autonomous system number, as the provider's enrichment knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asn: Option<u32>,
    /// ISO 3166 country code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// HTTP `User-Agent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// JA4 TLS client fingerprint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_ja4: Option<String>,
}

/// The request part of an exchange.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// API path, e.g. `/v1/chat/completions`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Requested model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Conversation sent, history included. Required by the spec; may be empty only for
    /// non-chat endpoints that carry [`Request::prompt`].
    pub messages: Vec<Message>,
    /// Prompt of a non-chat endpoint (`/v1/completions`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// Sampling parameters as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<Params>,
}

/// One chat message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// `system`, `user`, `assistant`, `tool`, … (kept as sent).
    pub role: String,
    /// Text, or OpenAI-style parts; `null` for e.g. assistant tool calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Content>,
}

impl Message {
    /// A message whose content is one string.
    pub fn text(role: impl Into<String>, text: impl Into<String>) -> Self {
        Message {
            role: role.into(),
            content: Some(Content::Text(text.into())),
        }
    }

    /// The message's text: the string, or the `text` of its parts joined by newlines.
    pub fn text_content(&self) -> String {
        match &self.content {
            None => String::new(),
            Some(c) => c.to_text(),
        }
    }
}

/// Message content in either shape the spec allows.
#[derive(Debug, Clone, PartialEq)]
pub enum Content {
    /// `"content": "..."`.
    Text(String),
    /// `"content": [{"type": "text", "text": "..."}, ...]`.
    Parts(Vec<ContentPart>),
}

impl Content {
    /// The text of this content; parts without text (images, audio) contribute nothing.
    pub fn to_text(&self) -> String {
        match self {
            Content::Text(t) => t.clone(),
            Content::Parts(parts) => {
                let texts: Vec<&str> = parts.iter().filter_map(|p| p.text.as_deref()).collect();
                texts.join("\n")
            }
        }
    }
}

/// One part of array-shaped content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContentPart {
    /// Part type: `text`, `image_url`, …
    #[serde(rename = "type")]
    pub kind: String,
    /// Text of a `text` part.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

impl Serialize for Content {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Content::Text(t) => s.serialize_str(t),
            Content::Parts(p) => p.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Content {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Content;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array of content parts")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Content, E> {
                Ok(Content::Text(v.to_owned()))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Content, E> {
                Ok(Content::Text(v))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<Content, A::Error> {
                let parts = Vec::<ContentPart>::deserialize(
                    serde::de::value::SeqAccessDeserializer::new(seq),
                )?;
                Ok(Content::Parts(parts))
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// Sampling parameters. Known keys are typed; unknown keys are kept in `extra` and ignored.
///
/// Deserialized by hand rather than by serde's `flatten`, which buffers every entry of the
/// object before it deserializes the typed ones again from the buffer (a tenth of the cost of
/// reading a whole exchange). It accepts and refuses exactly what the derived `flatten` form
/// does (a test compares them): an object only, typed known keys, each at most once, any value
/// under an unknown key, the last of a repeated unknown key kept.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Params {
    /// Sampling temperature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Nucleus sampling mass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// Output token budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    /// Number of choices requested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<u64>,
    /// `low`, `medium`, `high`, … as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_effort: Option<String>,
    /// Whether the response was streamed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// Whether token log-probabilities were requested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<bool>,
    /// Number of alternative tokens with log-probabilities per position.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_logprobs: Option<u64>,
    /// Any other parameter, kept as sent.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl<'de> Deserialize<'de> for Params {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{Error, MapAccess};

        /// `Some` value of a known key, refusing a second occurrence as derived code does.
        fn once<'de, A: MapAccess<'de>, T: Deserialize<'de>>(
            map: &mut A,
            slot: &mut Option<Option<T>>,
            name: &'static str,
        ) -> Result<(), A::Error> {
            if slot.is_some() {
                return Err(A::Error::duplicate_field(name));
            }
            *slot = Some(map.next_value()?);
            Ok(())
        }

        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Params;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of sampling parameters")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Params, A::Error> {
                let (mut temperature, mut top_p, mut max_tokens, mut n) = (None, None, None, None);
                let (mut reasoning_effort, mut stream, mut logprobs, mut top_logprobs) =
                    (None, None, None, None);
                let mut extra = BTreeMap::new();
                while let Some(crate::view::Text(key)) = map.next_key()? {
                    match key.as_ref() {
                        "temperature" => once(&mut map, &mut temperature, "temperature")?,
                        "top_p" => once(&mut map, &mut top_p, "top_p")?,
                        "max_tokens" => once(&mut map, &mut max_tokens, "max_tokens")?,
                        "n" => once(&mut map, &mut n, "n")?,
                        "reasoning_effort" => {
                            once(&mut map, &mut reasoning_effort, "reasoning_effort")?
                        }
                        "stream" => once(&mut map, &mut stream, "stream")?,
                        "logprobs" => once(&mut map, &mut logprobs, "logprobs")?,
                        "top_logprobs" => once(&mut map, &mut top_logprobs, "top_logprobs")?,
                        _ => {
                            let value: serde_json::Value = map.next_value()?;
                            extra.insert(key.into_owned(), value);
                        }
                    }
                }
                Ok(Params {
                    temperature: temperature.flatten(),
                    top_p: top_p.flatten(),
                    max_tokens: max_tokens.flatten(),
                    n: n.flatten(),
                    reasoning_effort: reasoning_effort.flatten(),
                    stream: stream.flatten(),
                    logprobs: logprobs.flatten(),
                    top_logprobs: top_logprobs.flatten(),
                    extra,
                })
            }
        }
        d.deserialize_map(Visitor)
    }
}

/// The response part of an exchange.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// HTTP status returned to the client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Input tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens: Option<u64>,
    /// Output tokens (answer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_tokens: Option<u64>,
    /// Tokens of hidden or visible reasoning the call consumed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_tokens: Option<u64>,
    /// `stop`, `length`, `content_filter`, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<String>,
    /// Time to the last byte, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    /// The answer text, if logged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// Reasoning text actually returned to the client, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<String>,
}

impl Exchange {
    /// The text of the last `user` message, or the completion prompt; what the caller asked now.
    pub fn last_user_text(&self) -> String {
        self.request
            .messages
            .iter()
            .rev()
            .find(|m| m.role == "user")
            .map(Message::text_content)
            .or_else(|| self.request.prompt.clone())
            .unwrap_or_default()
    }
}

impl Record for Exchange {
    fn order_key(&self) -> Option<Timestamp> {
        Some(self.ts)
    }

    fn validate(&self) -> Result<(), ValidationError> {
        check_exchange(
            self.v,
            self.account_id.is_empty(),
            self.request.messages.is_empty() && self.request.prompt.is_none(),
            self.response.as_ref().and_then(|r| r.status),
        )
    }
}

/// The rules of the spec for an exchange that serde's types cannot express, shared by
/// [`Exchange`] and [`crate::ExchangeView`]: version 1, a non-empty account, a prompt, an HTTP
/// status in range.
pub(crate) fn check_exchange(
    v: u64,
    no_account: bool,
    no_prompt: bool,
    status: Option<u16>,
) -> Result<(), ValidationError> {
    if v != 1 {
        return Err(ValidationError::UnsupportedVersion(v));
    }
    if no_account {
        return Err(ValidationError::Empty("account_id"));
    }
    if no_prompt {
        return Err(ValidationError::NoPrompt);
    }
    if let Some(status) = status {
        if !(100..=599).contains(&status) {
            return Err(ValidationError::OutOfRange {
                field: "response.status",
                value: status.to_string(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// [`Params`] as serde derives it with `flatten`: the reference the hand-written
    /// deserializer must agree with.
    #[derive(Debug, PartialEq, Deserialize)]
    struct Derived {
        #[serde(default)]
        temperature: Option<f64>,
        #[serde(default)]
        top_p: Option<f64>,
        #[serde(default)]
        max_tokens: Option<u64>,
        #[serde(default)]
        n: Option<u64>,
        #[serde(default)]
        reasoning_effort: Option<String>,
        #[serde(default)]
        stream: Option<bool>,
        #[serde(default)]
        logprobs: Option<bool>,
        #[serde(default)]
        top_logprobs: Option<u64>,
        #[serde(flatten)]
        extra: BTreeMap<String, serde_json::Value>,
    }

    fn agree(json: &str) {
        let ours = serde_json::from_str::<Params>(json).ok();
        let derived = serde_json::from_str::<Derived>(json).ok().map(|d| Params {
            temperature: d.temperature,
            top_p: d.top_p,
            max_tokens: d.max_tokens,
            n: d.n,
            reasoning_effort: d.reasoning_effort,
            stream: d.stream,
            logprobs: d.logprobs,
            top_logprobs: d.top_logprobs,
            extra: d.extra,
        });
        assert_eq!(ours, derived, "{json}");
    }

    const FULL: &str = r#"{"temperature":0.7,"top_p":1,"max_tokens":1024,"n":2,"reasoning_effort":"h\u0069gh","stream":false,"logprobs":true,"top_logprobs":5,"max_completion_tokens":9000,"reasoning":{"effort":"high"},"x":[1e3,null,"s"]}"#;

    #[test]
    fn hand_written_params_agree_with_derived_flatten() {
        for json in [
            FULL,
            "{}",
            "null",
            "[]",
            "[0.5]",
            "3",
            r#"{"temperature":null}"#,
            r#"{"temperature":null,"temperature":1}"#,
            r#"{"max_tokens":1,"max_tokens":1}"#,
            r#"{"x":1,"x":2}"#,
            r#"{"x":1e400}"#,
            r#"{"max_tokens":-1}"#,
            r#"{"max_tokens":1.5}"#,
            r#"{"max_tokens":"many"}"#,
            r#"{"n":18446744073709551616}"#,
            r#"{"stream":"yes"}"#,
            r#"{"temp\u0065rature":0.1}"#,
            r#"{"reasoning_effort":7}"#,
            r#"{"Temperature":0.1}"#,
            r#"{"temperature":0.1,}"#,
        ] {
            agree(json);
        }
        assert!(serde_json::from_str::<Params>(FULL).is_ok());
    }

    proptest! {
        /// Any prefix of a full object, or the object with one byte changed, reads the same.
        #[test]
        fn damaged_params_agree(cut in 0..FULL.len(), at in 0..FULL.len(), byte in 0x20u8..0x7f) {
            if let Some(prefix) = FULL.get(..cut) {
                agree(prefix);
            }
            let mut bytes = FULL.as_bytes().to_vec();
            bytes[at] = byte;
            if let Ok(json) = std::str::from_utf8(&bytes) {
                agree(json);
            }
        }
    }
}

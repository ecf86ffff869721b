//! [`ExchangeView`]: one exchange parsed without copying its text.
//!
//! Reading a log is mostly reading strings: an exchange of the simulator's standard scenario
//! is about 1.2 KB of JSON holding a dozen strings, and parsing it into an owned [`Exchange`]
//! allocates and copies each of them, only for an analysis to keep three and free the rest.
//! An [`ExchangeView`] borrows every string from the line it was parsed from (a string with
//! escape sequences, which must be decoded, is the only one copied) and is otherwise the same
//! record: the same fields with the same types, required and optional alike, and
//! [`ExchangeView::validate`] checks the same rules as [`Exchange`]'s `validate`. So a line
//! parses and validates as a view exactly when it does as an [`Exchange`], and the view holds
//! the same values (`tests/view.rs` checks both on valid and broken lines).
//!
//! Not a replacement for [`Exchange`]: it cannot be written, and it lives no longer than its
//! line. Error messages are [`Exchange`]'s business; readers that try the view first fall back
//! to [`Exchange`] to report a bad line.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Deserializer};

use crate::exchange::check_exchange;
use crate::{
    Client, Content, ContentPart, Exchange, Message, Params, Request, Response, Timestamp,
    ValidationError,
};

/// A JSON string, borrowed from the input unless it had to be unescaped.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Text<'a>(pub Cow<'a, str>);

impl<'a> Text<'a> {
    /// The string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The string, owned (copied only if it was borrowed).
    pub fn into_owned(self) -> String {
        self.0.into_owned()
    }
}

impl std::ops::Deref for Text<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        d.deserialize_string(Visitor)
    }
}

/// [`crate::Exchange`], borrowing its strings from the line; see the module documentation.
#[derive(Debug, Clone, Deserialize)]
pub struct ExchangeView<'a> {
    /// Format version; always 1.
    pub v: u64,
    /// When the request arrived (UTC).
    pub ts: Timestamp,
    /// Provider's request identifier.
    #[serde(default, borrow)]
    pub request_id: Option<Text<'a>>,
    /// Billing account or organisation that made the call.
    #[serde(borrow)]
    pub account_id: Text<'a>,
    /// Identifier of the API key used.
    #[serde(default, borrow)]
    pub api_key_id: Option<Text<'a>>,
    /// Network and client attributes.
    #[serde(default, borrow)]
    pub client: Option<ClientView<'a>>,
    /// What was asked.
    #[serde(borrow)]
    pub request: RequestView<'a>,
    /// What was answered.
    #[serde(default, borrow)]
    pub response: Option<ResponseView<'a>>,
}

/// [`crate::Client`], borrowed.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ClientView<'a> {
    /// IPv4 or IPv6 address in text form.
    #[serde(default, borrow)]
    pub ip: Option<Text<'a>>,
    /// Autonomous system number.
    #[serde(default)]
    pub asn: Option<u32>,
    /// ISO 3166 country code.
    #[serde(default, borrow)]
    pub country: Option<Text<'a>>,
    /// HTTP `User-Agent`.
    #[serde(default, borrow)]
    pub user_agent: Option<Text<'a>>,
    /// JA4 TLS client fingerprint.
    #[serde(default, borrow)]
    pub tls_ja4: Option<Text<'a>>,
}

/// [`crate::Request`], borrowed (the sampling parameters, few and short, are owned).
#[derive(Debug, Clone, Deserialize)]
pub struct RequestView<'a> {
    /// API path.
    #[serde(default, borrow)]
    pub endpoint: Option<Text<'a>>,
    /// Requested model.
    #[serde(default, borrow)]
    pub model: Option<Text<'a>>,
    /// Conversation sent, history included.
    #[serde(borrow)]
    pub messages: Vec<MessageView<'a>>,
    /// Prompt of a non-chat endpoint.
    #[serde(default, borrow)]
    pub prompt: Option<Text<'a>>,
    /// Sampling parameters as sent.
    #[serde(default)]
    pub params: Option<Params>,
}

/// [`crate::Message`], borrowed.
#[derive(Debug, Clone, Deserialize)]
pub struct MessageView<'a> {
    /// `system`, `user`, `assistant`, `tool`, …
    #[serde(borrow)]
    pub role: Text<'a>,
    /// Text, or OpenAI-style parts.
    #[serde(default, borrow)]
    pub content: Option<ContentView<'a>>,
}

impl MessageView<'_> {
    /// The message's text as [`crate::Message::text_content`] gives it, borrowed when the
    /// content is one string.
    pub fn text_content(&self) -> Cow<'_, str> {
        match &self.content {
            None => Cow::Borrowed(""),
            Some(ContentView::Text(t)) => Cow::Borrowed(t.as_str()),
            Some(ContentView::Parts(parts)) => {
                let texts: Vec<&str> = parts
                    .iter()
                    .filter_map(|p| p.text.as_ref().map(Text::as_str))
                    .collect();
                Cow::Owned(texts.join("\n"))
            }
        }
    }
}

/// [`crate::Content`], borrowed.
#[derive(Debug, Clone)]
pub enum ContentView<'a> {
    /// `"content": "..."`.
    Text(Text<'a>),
    /// `"content": [{"type": "text", "text": "..."}, ...]`.
    Parts(Vec<ContentPartView<'a>>),
}

/// [`crate::ContentPart`], borrowed.
#[derive(Debug, Clone, Deserialize)]
pub struct ContentPartView<'a> {
    /// Part type.
    #[serde(rename = "type", borrow)]
    pub kind: Text<'a>,
    /// Text of a `text` part.
    #[serde(default, borrow)]
    pub text: Option<Text<'a>>,
}

impl<'de: 'a, 'a> Deserialize<'de> for ContentView<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = ContentView<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array of content parts")
            }
            fn visit_borrowed_str<E: serde::de::Error>(
                self,
                v: &'de str,
            ) -> Result<Self::Value, E> {
                Ok(ContentView::Text(Text(Cow::Borrowed(v))))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(ContentView::Text(Text(Cow::Owned(v.to_owned()))))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(ContentView::Text(Text(Cow::Owned(v))))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                seq: A,
            ) -> Result<Self::Value, A::Error> {
                let parts = Vec::<ContentPartView<'de>>::deserialize(
                    serde::de::value::SeqAccessDeserializer::new(seq),
                )?;
                Ok(ContentView::Parts(parts))
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// [`crate::Response`], borrowed.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ResponseView<'a> {
    /// HTTP status returned to the client.
    #[serde(default)]
    pub status: Option<u16>,
    /// Input tokens.
    #[serde(default)]
    pub prompt_tokens: Option<u64>,
    /// Output tokens (answer).
    #[serde(default)]
    pub completion_tokens: Option<u64>,
    /// Reasoning tokens.
    #[serde(default)]
    pub reasoning_tokens: Option<u64>,
    /// `stop`, `length`, `content_filter`, …
    #[serde(default, borrow)]
    pub finish_reason: Option<Text<'a>>,
    /// Time to the last byte, in milliseconds.
    #[serde(default)]
    pub latency_ms: Option<u64>,
    /// The answer text, if logged.
    #[serde(default, borrow)]
    pub content: Option<Text<'a>>,
    /// Reasoning text returned to the client, if any.
    #[serde(default, borrow)]
    pub reasoning: Option<Text<'a>>,
}

impl<'a> ExchangeView<'a> {
    /// Parses one line (without its newline) and checks the rules of the spec, like reading an
    /// [`crate::Exchange`] from it; `None` when the line is not a valid exchange (parse it as
    /// an [`crate::Exchange`] to learn why).
    pub fn parse(line: &'a str) -> Option<Self> {
        let x: ExchangeView<'a> = serde_json::from_str(line).ok()?;
        x.validate().ok()?;
        Some(x)
    }

    /// The rules of the spec that serde's types cannot express, as for [`crate::Exchange`].
    pub fn validate(&self) -> Result<(), ValidationError> {
        check_exchange(
            self.v,
            self.account_id.is_empty(),
            self.request.messages.is_empty() && self.request.prompt.is_none(),
            self.response.as_ref().and_then(|r| r.status),
        )
    }

    /// The text of the last `user` message, or the completion prompt, as
    /// [`crate::Exchange::last_user_text`] gives it.
    pub fn last_user_text(&self) -> Cow<'_, str> {
        self.request
            .messages
            .iter()
            .rev()
            .find(|m| m.role.as_str() == "user")
            .map(MessageView::text_content)
            .or_else(|| {
                self.request
                    .prompt
                    .as_ref()
                    .map(|p| Cow::Borrowed(p.as_str()))
            })
            .unwrap_or_default()
    }
}

fn owned(t: &Option<Text<'_>>) -> Option<String> {
    t.as_ref().map(|t| t.as_str().to_owned())
}

impl ExchangeView<'_> {
    /// The same record as an owned [`Exchange`] (copies every string).
    pub fn to_exchange(&self) -> Exchange {
        Exchange {
            v: self.v,
            ts: self.ts,
            request_id: owned(&self.request_id),
            account_id: self.account_id.as_str().to_owned(),
            api_key_id: owned(&self.api_key_id),
            client: self.client.as_ref().map(|c| Client {
                ip: owned(&c.ip),
                asn: c.asn,
                country: owned(&c.country),
                user_agent: owned(&c.user_agent),
                tls_ja4: owned(&c.tls_ja4),
            }),
            request: Request {
                endpoint: owned(&self.request.endpoint),
                model: owned(&self.request.model),
                messages: self
                    .request
                    .messages
                    .iter()
                    .map(|m| Message {
                        role: m.role.as_str().to_owned(),
                        content: m.content.as_ref().map(|c| match c {
                            ContentView::Text(t) => Content::Text(t.as_str().to_owned()),
                            ContentView::Parts(parts) => Content::Parts(
                                parts
                                    .iter()
                                    .map(|p| ContentPart {
                                        kind: p.kind.as_str().to_owned(),
                                        text: owned(&p.text),
                                    })
                                    .collect(),
                            ),
                        }),
                    })
                    .collect(),
                prompt: owned(&self.request.prompt),
                params: self.request.params.clone(),
            },
            response: self.response.as_ref().map(|r| Response {
                status: r.status,
                prompt_tokens: r.prompt_tokens,
                completion_tokens: r.completion_tokens,
                reasoning_tokens: r.reasoning_tokens,
                finish_reason: owned(&r.finish_reason),
                latency_ms: r.latency_ms,
                content: owned(&r.content),
                reasoning: owned(&r.reasoning),
            }),
        }
    }
}

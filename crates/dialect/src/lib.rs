//! The JSON shapes of the model APIs Moat's gateway fronts: OpenAI chat completions,
//! completions and responses, and Anthropic messages.
//!
//! What it is for: turning a request and a response (whole or streamed) into the facts of an
//! exchange-log v1 record ([`parse_request`], [`inspect_response`], [`StreamFilter`]); finding
//! the reasoning in every dialect in use; withholding it behind an opaque authenticated token
//! ([`Sealer`], [`withhold_response`]) that clients echo back in later turns; restoring the
//! original from such tokens before a request goes upstream ([`restore_request`]); and, for
//! replays, rebuilding the body a client sent from a record's request ([`request_body`]).
//!
//! What it is not: it does no IO, knows no HTTP types and reads no clock. The gateway owns the
//! sockets, the policy decision, timing and the summarizer call; this crate only rewrites JSON
//! values and SSE bytes.
//!
//! *Invariant:* in withhold and summarize modes, no original reasoning text leaves through a
//! rewritten body or stream; only the sealed token (and the given summary) does.
//!
//! *Invariant:* restoration is faithful at the JSON value level: the restored turn equals what
//! upstream produced (Anthropic signatures included).

mod error;
mod payload;
mod rebuild;
mod request;
mod response;
mod restore;
mod seal;
pub mod sse;
mod stream;
pub mod think;
mod withhold;

pub use error::{DialectError, TokenFault};
pub use rebuild::request_body;
pub use request::{parse_request, RequestFacts};
pub use response::{inspect_response, ReasoningDisposition, ResponseFacts};
pub use restore::{restore_request, RestoreReport};
pub use seal::{is_token, Sealer, MAX_PAYLOAD_BYTES, MAX_TOKEN_CHARS, TOKEN_PREFIX};
pub use sse::{SseEvent, SseParser};
pub use stream::{EarlyStop, StreamFilter, StreamMode};

pub use withhold::{withhold_response, WithholdReport};

/// The API dialects this crate knows, by request path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Endpoint {
    /// `/v1/chat/completions` (OpenAI chat and its many compatible servers).
    ChatCompletions,
    /// `/v1/completions` (legacy text completions).
    Completions,
    /// `/v1/responses` (OpenAI Responses).
    Responses,
    /// `/v1/messages` (Anthropic Messages).
    Messages,
}

impl Endpoint {
    /// Every endpoint, in a fixed order.
    pub const ALL: [Endpoint; 4] = [
        Endpoint::ChatCompletions,
        Endpoint::Completions,
        Endpoint::Responses,
        Endpoint::Messages,
    ];

    /// The endpoint of a request path (query string and one trailing slash ignored).
    pub fn from_path(path: &str) -> Result<Endpoint, DialectError> {
        let p = path.split('?').next().unwrap_or(path);
        let p = p.strip_suffix('/').unwrap_or(p);
        Endpoint::ALL
            .into_iter()
            .find(|e| e.path() == p)
            .ok_or_else(|| DialectError::UnknownEndpoint(truncate(path, 128)))
    }

    /// The canonical path, as recorded in `request.endpoint`.
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::ChatCompletions => "/v1/chat/completions",
            Endpoint::Completions => "/v1/completions",
            Endpoint::Responses => "/v1/responses",
            Endpoint::Messages => "/v1/messages",
        }
    }
}

/// What to do with reasoning in a whole (non-streamed) response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Leave it as upstream sent it.
    Pass,
    /// Replace it by a token.
    Withhold,
    /// Replace it by a token and show this summary in its place (see [`withhold_response`]
    /// for where each dialect shows it).
    Summarize(String),
}

/// At most `max` bytes of `s`, cut at a character boundary (for error messages).
fn truncate(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_come_from_paths() {
        for e in Endpoint::ALL {
            assert_eq!(Endpoint::from_path(e.path()), Ok(e));
        }
        assert_eq!(
            Endpoint::from_path("/v1/chat/completions/?x=1"),
            Ok(Endpoint::ChatCompletions)
        );
        assert!(matches!(
            Endpoint::from_path("/v1/embeddings"),
            Err(DialectError::UnknownEndpoint(_))
        ));
    }
}

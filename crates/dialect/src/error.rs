//! The one error type of this crate.
//!
//! Errors name what is wrong and where (a JSON path into the body, or the limit that was hit),
//! never the content: prompt text, reasoning text and token bytes stay out of messages.

use std::fmt;

/// Why a reasoning token could not be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenFault {
    /// Not of the form `moatr1.<base64url>`, or too short to hold a nonce and a tag.
    Format,
    /// Longer than the largest token this crate ever issues.
    TooLarge,
    /// Authentication failed: the token was altered, truncated or issued to another account.
    Authentication,
    /// It opened, but what it holds is not a payload this crate wrote for this place.
    Payload,
}

impl fmt::Display for TokenFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TokenFault::Format => "not a moat reasoning token",
            TokenFault::TooLarge => "token exceeds the size limit",
            TokenFault::Authentication => {
                "authentication failed (tampered, truncated or from another account)"
            }
            TokenFault::Payload => "unexpected payload",
        })
    }
}

/// Everything that can go wrong in this crate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DialectError {
    /// A path that is none of the dialects this crate knows.
    #[error("unknown endpoint {0:?}")]
    UnknownEndpoint(String),
    /// A request body whose shape is wrong at `at`.
    #[error("{at}: expected {expected}")]
    Malformed {
        /// JSON path of the offending field, e.g. `messages[2].content`.
        at: String,
        /// What the field should have been.
        expected: &'static str,
    },
    /// A record's request that no body of its dialect parses into (see
    /// [`crate::request_body`]).
    #[error("{at}: cannot be sent as a request body: {reason}")]
    Unrepresentable {
        /// Path of the offending field in the record's `request`, e.g. `params.max_tokens`.
        at: String,
        /// Why no body carries it.
        reason: &'static str,
    },
    /// A token given to [`crate::Sealer::open`] that does not open.
    #[error("invalid reasoning token: {0}")]
    InvalidToken(TokenFault),
    /// A token found in a request body that does not open (the gateway answers 400).
    #[error("tampered reasoning token at {at}: {fault}")]
    TamperedToken {
        /// JSON path of the token in the request body.
        at: String,
        /// Why it did not open.
        fault: TokenFault,
    },
    /// Reasoning too large to seal.
    #[error("reasoning payload of {size} bytes exceeds the limit of {limit} bytes")]
    PayloadTooLarge {
        /// Size of the payload.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// One server-sent event longer than the parser's bound.
    #[error("server-sent event exceeds the limit of {limit} bytes")]
    EventTooLarge {
        /// The bound the parser was built with.
        limit: usize,
    },
    /// The operating system's random source failed.
    #[error("random source failed: {0}")]
    Random(String),
    /// A sealing key of the wrong length.
    #[error("sealing key must be 32 bytes, got {0}")]
    KeyLength(usize),
}

impl DialectError {
    /// Whether the client is at fault (a malformed body or a bad token): the gateway answers 400.
    pub fn is_client_error(&self) -> bool {
        matches!(
            self,
            DialectError::Malformed { .. }
                | DialectError::InvalidToken(_)
                | DialectError::TamperedToken { .. }
        )
    }
}

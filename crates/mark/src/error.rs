//! The crate's one error type.

/// What can go wrong building keys, schemes or tests. Messages are lowercase, name the
/// offending value, and never contain key material.
#[derive(Debug, thiserror::Error, PartialEq)]
#[non_exhaustive]
pub enum Error {
    /// A key or master secret that is not 64 hex characters.
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// A scheme parameter out of its range.
    #[error("invalid parameter {name}: {reason}")]
    InvalidParameter {
        /// The parameter (`gamma`, `delta`, `h`, …).
        name: &'static str,
        /// Why the value is refused.
        reason: String,
    },
    /// A keyring file that does not parse or holds a bad entry.
    #[error("invalid keyring: {0}")]
    InvalidKeyring(String),
    /// A test was given nothing it could score.
    #[error("nothing to score: {0}")]
    NothingToScore(String),
}

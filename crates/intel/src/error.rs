//! The crate's one error type.

/// Why an export could not be set up or finished, or why STIX read from outside was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IntelError {
    /// The partner key is too short to be a key.
    #[error("partner key is {len} bytes, fewer than the {min} required")]
    KeyTooShort {
        /// Bytes found.
        len: usize,
        /// Bytes required.
        min: usize,
    },
    /// `--campaign` named a campaign the detections do not have.
    #[error("campaign {0} is not in the detections")]
    UnknownCampaign(String),
    /// `--tlp` named no TLP 2.0 level.
    #[error("unknown TLP level {0:?} (expected clear, green, amber, amber+strict or red)")]
    UnknownTlp(String),
    /// A required option is empty.
    #[error("{0} must not be empty")]
    Empty(&'static str),
    /// The validity window is out of range.
    #[error("valid days must be between 1 and 3650, not {0}")]
    ValidDays(u32),
    /// The bundle could not be serialized.
    #[error("serializing the bundle")]
    Json(#[from] serde_json::Error),
    /// A document (bundle, envelope) is larger than the reader accepts.
    #[error("document is {len} bytes, more than the {max} accepted")]
    TooLarge {
        /// Bytes given.
        len: usize,
        /// Most bytes accepted.
        max: usize,
    },
    /// A document is not JSON.
    #[error("not JSON at line {line}, column {column}: {message}")]
    Syntax {
        /// Line of the error (1-based).
        line: usize,
        /// Column of the error (1-based).
        column: usize,
        /// What the JSON parser found.
        message: String,
    },
    /// A document or object is malformed as a whole (not an object, nested too deep).
    #[error("{0}")]
    Malformed(String),
    /// A property of a STIX object (or bundle, or envelope) is missing or wrong.
    #[error("property {property:?}: {reason}")]
    Property {
        /// The property, with the path inside it for nested ones
        /// (`external_references[1].source_name`).
        property: String,
        /// What is wrong with it.
        reason: String,
    },
    /// One object of a bundle or envelope was refused (the whole document is refused with it).
    #[error("objects[{index}]{}: {error}", id.as_deref().map(|i| format!(" ({i})")).unwrap_or_default())]
    Object {
        /// Position of the object in `objects`.
        index: usize,
        /// The object's `id`, when it has a string one.
        id: Option<String>,
        /// Why it was refused.
        error: Box<IntelError>,
    },
    /// A STIX pattern does not parse.
    #[error("pattern: at byte {offset}: {message}")]
    Pattern {
        /// Byte offset in the pattern where parsing failed.
        offset: usize,
        /// What was expected there, and what was found.
        message: String,
    },
}

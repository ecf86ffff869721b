//! The validation error of this crate: a record parsed but breaks a rule of the spec.

/// A record that parsed as JSON but breaks a rule of the spec.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValidationError {
    /// `v` is not a version this reader understands.
    #[error("unsupported format version {0} (this reader understands v1)")]
    UnsupportedVersion(u64),
    /// A required string field is empty.
    #[error("field `{0}` must not be empty")]
    Empty(&'static str),
    /// A chat request without messages, or a non-chat request without `prompt`.
    #[error("`request.messages` is empty and `request.prompt` is absent")]
    NoPrompt,
    /// A number outside its allowed range.
    #[error("field `{field}` is out of range: {value}")]
    OutOfRange {
        /// Dotted path of the field.
        field: &'static str,
        /// The offending value, as text.
        value: String,
    },
}

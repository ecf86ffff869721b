//! The crate's one error type.

/// Why an export could not be set up or finished.
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
}

//! The crate's one error type.
//!
//! No variant ever holds a webhook URL: the path and query of a Slack or generic webhook URL are
//! its credential, so errors name the key the URL came from (`alerts.webhook[1].url_env`), never
//! the value.

/// Why configuring, rendering or starting alerts failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AlertsError {
    /// The `[alerts]` document is not TOML, has a key the format does not have, or lacks a
    /// required one.
    #[error("alerts config: {message}")]
    Toml {
        /// What TOML or the format said, with the line and column where known.
        message: String,
    },
    /// A configuration value that cannot be used.
    #[error("{key}: {reason}")]
    Config {
        /// Key path (`alerts.webhook[1].url_env`, `alerts.queue`).
        key: String,
        /// Why (never quotes a webhook URL).
        reason: String,
    },
    /// A body could not be rendered.
    #[error("rendering alerts: {0}")]
    Render(String),
    /// [`crate::Dispatcher::start`] was called outside a tokio runtime.
    #[error("the alert dispatcher needs a tokio runtime: {0}")]
    NoRuntime(String),
}

impl AlertsError {
    /// A [`AlertsError::Config`] for `key`.
    pub(crate) fn config(key: impl Into<String>, reason: impl Into<String>) -> AlertsError {
        AlertsError::Config {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

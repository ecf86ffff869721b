//! The error type of this crate: what went wrong, in which file, at which line.

use std::fmt;

use moat_types::{Timestamp, ValidationError};

/// A problem reading or writing a file, with its location.
#[derive(Debug, thiserror::Error)]
#[error("{path}{}: {kind}", line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct FormatError {
    /// File name as given by the caller (or a description such as `<stdin>`).
    pub path: String,
    /// 1-based line number, when the problem concerns one line.
    pub line: Option<u64>,
    /// What went wrong.
    pub kind: FormatErrorKind,
}

/// What went wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FormatErrorKind {
    /// The operating system or the gzip decoder failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The line is not JSON of the expected shape.
    #[error("malformed record: {0}")]
    Parse(String),
    /// The line parsed but breaks a rule of the spec.
    #[error("invalid record: {0}")]
    Invalid(#[from] ValidationError),
    /// The line's timestamp is earlier than the previous line's.
    #[error("out of order: ts {ts} is before the previous line's {previous} (files must be in non-decreasing ts order; sort the file first)")]
    OutOfOrder {
        /// This line's timestamp.
        ts: Timestamp,
        /// The latest timestamp seen before it.
        previous: Timestamp,
    },
    /// The line is longer than the reader accepts.
    #[error("line longer than {limit} bytes")]
    LineTooLong {
        /// The configured limit.
        limit: usize,
    },
}

impl FormatError {
    pub(crate) fn new(path: &str, line: Option<u64>, kind: impl Into<FormatErrorKind>) -> Self {
        FormatError {
            path: path.to_owned(),
            line,
            kind: kind.into(),
        }
    }

    /// Whether `--skip-bad-lines` may skip this error: problems of one line's content are
    /// skippable; IO failures and out-of-order input are not.
    pub fn is_skippable(&self) -> bool {
        matches!(
            self.kind,
            FormatErrorKind::Parse(_)
                | FormatErrorKind::Invalid(_)
                | FormatErrorKind::LineTooLong { .. }
        )
    }
}

/// Short, single-line rendering for skip reports.
pub(crate) struct Brief<'a>(pub &'a FormatErrorKind);

impl fmt::Display for Brief<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.0.to_string();
        let short: String = text.chars().take(200).collect();
        f.write_str(&short)
    }
}

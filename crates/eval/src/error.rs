//! The error type of this crate: why an evaluation could not produce a report.
//!
//! Only problems that make the figures meaningless are errors (malformed or ambiguous input,
//! traffic that the labels do not cover). Problems a detector's output may legitimately have,
//! such as missing or unknown account lines, are not errors: they are counted in the report's
//! validation section.

use moat_types::Timestamp;

/// Why `moat eval` failed. Every variant names the file (and line, where one is at fault).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EvalError {
    /// A file could not be read, or one of its lines is malformed (file and line inside).
    #[error(transparent)]
    Format(#[from] moat_format::FormatError),
    /// Two label lines for one account.
    #[error("{path}:{line}: duplicate label for account {account} (first at line {first_line})")]
    DuplicateLabel {
        /// The labels file.
        path: String,
        /// Line of the second label.
        line: u64,
        /// The account.
        account: String,
        /// Line of the first label.
        first_line: u64,
    },
    /// Two `account` lines for one account in the detections file.
    #[error(
        "{path}:{line}: duplicate account line for {account} (first at line {first_line}); \
         a detections file has one account line per account"
    )]
    DuplicateAccountLine {
        /// The detections file.
        path: String,
        /// Line of the second account line.
        line: u64,
        /// The account.
        account: String,
        /// Line of the first account line.
        first_line: u64,
    },
    /// Two `campaign` lines with one `campaign_id` in the detections file.
    #[error("{path}:{line}: duplicate campaign line for {campaign} (first at line {first_line})")]
    DuplicateCampaignLine {
        /// The detections file.
        path: String,
        /// Line of the second campaign line.
        line: u64,
        /// The campaign id.
        campaign: String,
        /// Line of the first campaign line.
        first_line: u64,
    },
    /// An account in the traffic has no label: the labels must cover the whole traffic.
    #[error(
        "{path}{}: account {account} has no label (the labels file must cover every account \
         in the traffic)",
        line.map(|l| format!(":{l}")).unwrap_or_default()
    )]
    UnlabelledAccount {
        /// The traffic file (or `<traffic>` for exchanges fed directly).
        path: String,
        /// Line of the first exchange of the account, when read from a file.
        line: Option<u64>,
        /// The account.
        account: String,
    },
    /// Exchanges of one account were fed out of time order.
    #[error(
        "{path}{}: exchange of account {account} at {ts} is before its previous one at \
         {previous} (traffic must be in non-decreasing ts order)",
        line.map(|l| format!(":{l}")).unwrap_or_default()
    )]
    OutOfOrder {
        /// The traffic file (or `<traffic>`).
        path: String,
        /// Line of the exchange, when read from a file.
        line: Option<u64>,
        /// The account.
        account: String,
        /// This exchange's timestamp.
        ts: Timestamp,
        /// The account's previous timestamp.
        previous: Timestamp,
    },
    /// The traffic holds no exchange at all, so there is no population to score.
    #[error("{path}: the traffic holds no exchanges; nothing to evaluate")]
    EmptyTraffic {
        /// The traffic file (or `<traffic>`).
        path: String,
    },
    /// The second pass over the traffic did not see what the first pass saw.
    #[error(
        "{path}: the traffic changed between the two passes ({first} exchanges in the first, \
         {second} in the second)"
    )]
    TrafficChanged {
        /// The traffic file (or `<traffic>`).
        path: String,
        /// Exchanges counted by the first pass.
        first: u64,
        /// Exchanges counted by the second pass (so far, when it failed early).
        second: u64,
    },
    /// Writing the JSON report failed.
    #[error("writing {path}: {source}")]
    Write {
        /// The output file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
}

impl EvalError {
    /// Fills in the file and line of a traffic error raised by the file-less core.
    pub(crate) fn at(mut self, file: &str, at_line: Option<u64>) -> Self {
        match &mut self {
            EvalError::UnlabelledAccount { path, line, .. }
            | EvalError::OutOfOrder { path, line, .. } => {
                *path = file.to_owned();
                *line = at_line;
            }
            EvalError::EmptyTraffic { path } | EvalError::TrafficChanged { path, .. } => {
                *path = file.to_owned();
            }
            _ => {}
        }
        self
    }
}

/// Name used for the traffic in errors of the file-less core.
pub(crate) const TRAFFIC: &str = "<traffic>";

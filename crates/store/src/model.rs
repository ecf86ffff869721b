//! Records the store keeps besides exchanges (policy decisions, audit entries, account
//! summaries) and the query and page types every backend shares.
//!
//! This module is data only; backends decide how to keep and find these records. Exchanges
//! themselves are [`moat_types::Exchange`], stored as their exchange-log v1 JSON line.

use moat_types::Timestamp;
use serde::{Deserialize, Deserializer, Serialize};

/// Largest page a query returns; larger limits are clamped so that a hostile admin request
/// cannot make the store load a whole table into memory.
pub const MAX_PAGE_LIMIT: usize = 1_000;

/// Page size when a query does not say.
pub const DEFAULT_PAGE_LIMIT: usize = 100;

/// One policy decision the gateway took for a request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionRecord {
    /// When the decision was taken.
    pub ts: Timestamp,
    /// Request the decision applied to, if known. With `ts`, the key that makes appends of the
    /// same decision idempotent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Account the request was attributed to.
    pub account_id: String,
    /// Campaign the account belongs to, if detection found one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign_id: Option<String>,
    /// Policy rule that matched, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// Actions applied, e.g. `["throttle", "withhold_reasoning"]`; empty for allow.
    #[serde(default)]
    pub actions: Vec<String>,
    /// Shadow rules that matched but were only recorded.
    #[serde(default)]
    pub shadow: Vec<String>,
    /// Risk score the decision was based on. A non-finite score is kept as NaN (JSON `null`).
    #[serde(deserialize_with = "risk_or_nan")]
    pub risk: f64,
    /// Whether the actions were enforced (false in shadow mode).
    pub enforced: bool,
    /// Free-form detail for operators (never prompt text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Reads a risk score, taking `null` (how serde_json writes NaN) as NaN so that a spilled
/// decision with a broken score can still be imported.
fn risk_or_nan<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// Who did what through the admin API, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// When it happened.
    pub ts: Timestamp,
    /// Who did it: an admin identity or token id (never the token itself).
    pub actor: String,
    /// What was done, e.g. `policy_reload`, `block_account`.
    pub action: String,
    /// What it was done to, e.g. an account id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Free-form detail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// What the store knows about one account, for an admin "accounts" listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountSummary {
    /// The account.
    pub account_id: String,
    /// Exchanges stored for it.
    pub exchanges: u64,
    /// Earliest exchange timestamp.
    pub first_seen: Timestamp,
    /// Latest exchange timestamp.
    pub last_seen: Timestamp,
    /// Sum of `response.prompt_tokens` (missing counts as 0).
    pub prompt_tokens: u64,
    /// Sum of `response.completion_tokens`.
    pub completion_tokens: u64,
    /// Sum of `response.reasoning_tokens`.
    pub reasoning_tokens: u64,
}

impl AccountSummary {
    /// Prompt, completion and reasoning tokens together.
    pub fn total_tokens(&self) -> u64 {
        self.prompt_tokens
            .saturating_add(self.completion_tokens)
            .saturating_add(self.reasoning_tokens)
    }
}

/// Outcome of an idempotent append.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AppendReport {
    /// Records stored by this call.
    pub new: u64,
    /// Records skipped because the same key was already stored (or earlier in the batch).
    pub duplicates: u64,
}

/// An opaque position in a result list, returned with a page and passed back for the next one.
///
/// Its text is safe to hand to clients (it holds only what the page already showed) and safe to
/// take back from them: a backend refuses a cursor it cannot parse with
/// [`crate::StoreError::InvalidCursor`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Cursor(String);

impl Cursor {
    /// Wraps cursor text received from a client.
    pub fn new(text: impl Into<String>) -> Self {
        Cursor(text.into())
    }

    /// The cursor's text, to send to a client.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Cursor of a list ordered by `(ts, insertion id)`.
    pub(crate) fn from_position(ts_ms: i64, id: i64) -> Self {
        Cursor(format!("{ts_ms}.{id}"))
    }

    /// The `(ts, insertion id)` this cursor points at.
    pub(crate) fn position(&self) -> Result<(i64, i64), crate::StoreError> {
        let (ts, id) = self
            .0
            .split_once('.')
            .ok_or(crate::StoreError::InvalidCursor)?;
        let ts = ts.parse().map_err(|_| crate::StoreError::InvalidCursor)?;
        let id = id.parse().map_err(|_| crate::StoreError::InvalidCursor)?;
        Ok((ts, id))
    }
}

/// One page of results and the cursor of the next, absent on the last page.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// Results, in the query's order.
    pub items: Vec<T>,
    /// Pass this back in the query to get the next page; `None` when there is none.
    pub next: Option<Cursor>,
}

/// Order of a time-ordered listing; ties on the timestamp go by insertion order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Order {
    /// Oldest first.
    #[default]
    OldestFirst,
    /// Newest first.
    NewestFirst,
}

/// Selects exchanges: by account and half-open time range `[since, until)`, paged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangeQuery {
    /// Only this account's exchanges.
    pub account_id: Option<String>,
    /// Only exchanges at or after this instant.
    pub since: Option<Timestamp>,
    /// Only exchanges before this instant.
    pub until: Option<Timestamp>,
    /// Listing order.
    pub order: Order,
    /// Page size, clamped to `1..=`[`MAX_PAGE_LIMIT`].
    pub limit: usize,
    /// Continue after this position (from the previous page's [`Page::next`]).
    pub cursor: Option<Cursor>,
}

impl Default for ExchangeQuery {
    fn default() -> Self {
        ExchangeQuery {
            account_id: None,
            since: None,
            until: None,
            order: Order::default(),
            limit: DEFAULT_PAGE_LIMIT,
            cursor: None,
        }
    }
}

/// Selects decisions: by account, request and half-open time range `[since, until)`, paged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionQuery {
    /// Only this account's decisions.
    pub account_id: Option<String>,
    /// Only decisions about this request.
    pub request_id: Option<String>,
    /// Only decisions at or after this instant.
    pub since: Option<Timestamp>,
    /// Only decisions before this instant.
    pub until: Option<Timestamp>,
    /// Listing order.
    pub order: Order,
    /// Page size, clamped to `1..=`[`MAX_PAGE_LIMIT`].
    pub limit: usize,
    /// Continue after this position.
    pub cursor: Option<Cursor>,
}

impl Default for DecisionQuery {
    fn default() -> Self {
        DecisionQuery {
            account_id: None,
            request_id: None,
            since: None,
            until: None,
            order: Order::default(),
            limit: DEFAULT_PAGE_LIMIT,
            cursor: None,
        }
    }
}

/// Selects audit entries: by actor and half-open time range `[since, until)`, paged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditQuery {
    /// Only this actor's entries.
    pub actor: Option<String>,
    /// Only entries at or after this instant.
    pub since: Option<Timestamp>,
    /// Only entries before this instant.
    pub until: Option<Timestamp>,
    /// Listing order.
    pub order: Order,
    /// Page size, clamped to `1..=`[`MAX_PAGE_LIMIT`].
    pub limit: usize,
    /// Continue after this position.
    pub cursor: Option<Cursor>,
}

impl Default for AuditQuery {
    fn default() -> Self {
        AuditQuery {
            actor: None,
            since: None,
            until: None,
            order: Order::default(),
            limit: DEFAULT_PAGE_LIMIT,
            cursor: None,
        }
    }
}

/// Pages through account summaries in account id order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountQuery {
    /// Page size, clamped to `1..=`[`MAX_PAGE_LIMIT`].
    pub limit: usize,
    /// Continue after this position.
    pub cursor: Option<Cursor>,
}

impl Default for AccountQuery {
    fn default() -> Self {
        AccountQuery {
            limit: DEFAULT_PAGE_LIMIT,
            cursor: None,
        }
    }
}

/// A query's page size clamped to what a backend may return.
pub(crate) fn clamp_limit(limit: usize) -> usize {
    limit.clamp(1, MAX_PAGE_LIMIT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn cursor_position_round_trips_negative_and_large_values() {
        for (ts, id) in [(0, 0), (-62_167_219_200_000, 1), (i64::MAX, i64::MIN)] {
            assert_eq!(Cursor::from_position(ts, id).position().unwrap(), (ts, id));
        }
    }

    #[test]
    fn damaged_cursor_is_refused() {
        for text in [
            "",
            ".",
            "1.",
            ".1",
            "1",
            "a.b",
            "1.2.3",
            "99999999999999999999.1",
        ] {
            assert!(Cursor::new(text).position().is_err(), "{text:?}");
        }
    }

    #[test]
    fn decision_with_null_risk_reads_as_nan() {
        let d: DecisionRecord = serde_json::from_str(
            r#"{"ts":"2026-04-01T00:00:00.000Z","account_id":"a","risk":null,"enforced":false}"#,
        )
        .unwrap();
        assert!(d.risk.is_nan());
        assert!(d.actions.is_empty() && d.shadow.is_empty());
    }

    proptest! {
        #[test]
        fn cursor_parsing_never_panics(text in ".{0,64}") {
            let _ = Cursor::new(text).position();
        }
    }
}

/// One row of the feature log ([`crate::FeatureLog`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureRow {
    /// The exchange's request id (the idempotency key; rows without one are always stored).
    pub request_id: Option<String>,
    /// The exchange's account.
    pub account_id: String,
    /// The exchange's time.
    pub ts: Timestamp,
    /// The encoded features (opaque to the store).
    pub body: Vec<u8>,
}

/// A position in the feature log. `FeatureCursor::default()` is its start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct FeatureCursor {
    /// PostgreSQL: the transaction id of the last row read (0 for SQLite).
    pub txid: u64,
    /// The row id of the last row read.
    pub id: i64,
}

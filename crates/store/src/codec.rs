//! How records become column values and back, shared by the SQL backends ([`crate::SqliteStore`]
//! and [`crate::PostgresStore`]), so that both store and read exactly the same thing.
//!
//! Not here: SQL text or driver calls; each backend owns its statements.

use std::time::{SystemTime, UNIX_EPOCH};

use moat_types::Exchange;

use crate::error::json_reason;
use crate::StoreError;

/// Rows an export reads per lock; small enough that the writer waits at most milliseconds.
pub(crate) const EXPORT_CHUNK: usize = 1_000;

/// Token counts above this are clamped when summed, so that a broken upstream count cannot
/// overflow an account's 64-bit total (2^31 exchanges at the cap would be needed).
pub(crate) const MAX_TOKENS_PER_EXCHANGE: u64 = 1 << 32;

/// A `u64` count as SQL's signed 64-bit integer, clamped.
pub(crate) fn to_sql_count(n: u64) -> i64 {
    i64::try_from(n.min(MAX_TOKENS_PER_EXCHANGE)).unwrap_or(i64::MAX)
}

/// A stored count back as `u64` (negative only if altered outside; read as 0).
pub(crate) fn from_sql_count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// Milliseconds since the Unix epoch, for `schema_version.applied_at_ms`.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// An exchange back from its stored exchange-log v1 line.
pub(crate) fn decode_exchange(text: &str, id: i64) -> Result<Exchange, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::CorruptRow {
        table: "exchanges",
        id,
        reason: json_reason(&e),
    })
}

/// A decision's action or shadow-rule list back from its stored JSON array.
pub(crate) fn decode_list(text: &str, id: i64) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::CorruptRow {
        table: "decisions",
        id,
        reason: json_reason(&e),
    })
}

/// A record as JSON text; `what` names it in the error.
pub(crate) fn encode<T: serde::Serialize>(
    what: &'static str,
    value: &T,
) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Encode {
        what,
        reason: json_reason(&e),
    })
}

/// A detection line back from its stored JSON; `row` numbers it in the error.
pub(crate) fn decode_detection(text: &str, row: i64) -> Result<moat_types::Detection, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::CorruptRow {
        table: "detections",
        id: row,
        reason: json_reason(&e),
    })
}

/// The rows `put_detections` writes: (kind, id, line) for each account and campaign.
pub(crate) fn detection_rows(
    accounts: &[moat_types::AccountDetection],
    campaigns: &[moat_types::CampaignDetection],
) -> Result<Vec<(&'static str, String, String)>, StoreError> {
    let mut rows = Vec::with_capacity(accounts.len() + campaigns.len());
    for a in accounts {
        let line = encode("a detection", &moat_types::Detection::Account(a.clone()))?;
        rows.push(("account", a.account_id.clone(), line));
    }
    for c in campaigns {
        let line = encode("a detection", &moat_types::Detection::Campaign(c.clone()))?;
        rows.push(("campaign", c.campaign_id.clone(), line));
    }
    Ok(rows)
}

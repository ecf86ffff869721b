//! Moat's store: where the gateway keeps every exchange (exchange-log v1), every policy
//! decision and every admin action, and where operators and `moat analyze` read them back.
//!
//! - [`Store`] is the one interface; every backend passes the same conformance suite
//!   (`tests/conformance/`), which a backend's test file instantiates with one macro call.
//! - [`SqliteStore`] is the embedded default: one file, no server, WAL, versioned migrations
//!   ([`migrate`]).
//! - [`PostgresStore`] is the backend for scale-out mode, where several gateways and workers
//!   share one PostgreSQL database: the same tables and semantics, migrations under an
//!   advisory lock.
//! - [`Recorder`] takes records off the request path: a bounded queue drained by one OS thread
//!   that writes in batches, spilling to JSON Lines files rather than ever blocking the caller,
//!   and imports what it spilled once it has caught up; [`import_spill`] and
//!   [`import_decision_spill`] bring back what a stopped recorder left ([`spill_files`]).
//!
//! Not here: HTTP (the gateway), detection (moat-detect), reading exchange-log files in general
//! (moat-format). *Invariant:* only this crate knows SQL.

mod codec;
mod error;
pub mod migrate;
mod model;
mod postgres;
mod recorder;
mod spill;
mod sqlite;

use std::io::Write;

use moat_types::{Exchange, Timestamp};

pub use error::StoreError;
pub use model::{
    AccountQuery, AccountSummary, AppendReport, AuditEntry, AuditQuery, Cursor, DecisionQuery,
    DecisionRecord, ExchangeQuery, FeatureCursor, FeatureRow, Order, Page, DEFAULT_PAGE_LIMIT,
    MAX_PAGE_LIMIT,
};
pub use postgres::{Leadership, PostgresStore};
pub use recorder::{Recorder, RecorderOptions, RecorderStats};
pub use spill::{
    import_decision_spill, import_spill, spill_files, ImportReport, MAX_SPILL_LINE_BYTES,
};
pub use sqlite::SqliteStore;

/// The feature log of scale-out mode: what workers computed from each exchange (an opaque,
/// compact record of the detection engine's input), read back by the one consolidator in the
/// order the log settled.
///
/// Reading is exactly once: [`FeatureLog::read_features`] returns every row appended, each
/// once, however many writers append at once and in whatever order their transactions commit
/// (PostgreSQL: rows are read only once every transaction that could still add one before them
/// has ended; SQLite has one writer).
pub trait FeatureLog: Send + Sync {
    /// Appends rows in one transaction; idempotent by `request_id` like exchanges.
    fn append_features(&self, batch: &[FeatureRow]) -> Result<AppendReport, StoreError>;

    /// Up to `limit` rows after `after`, in log order, and the cursor after the last one
    /// (`after` itself when there is nothing new).
    fn read_features(
        &self,
        after: FeatureCursor,
        limit: usize,
    ) -> Result<(Vec<FeatureRow>, FeatureCursor), StoreError>;
}

/// The consolidator's results in scale-out mode: every account's detection line and every
/// campaign, as `moat analyze` writes them, kept current by the consolidator so that the
/// shared database holds the accounts and campaigns found (readable with SQL or
/// [`DetectionLog::detections`]).
pub trait DetectionLog: Send + Sync {
    /// Replaces the lines of these accounts and campaigns and removes the campaigns named in
    /// `gone`, in one transaction.
    fn put_detections(
        &self,
        accounts: &[moat_types::AccountDetection],
        campaigns: &[moat_types::CampaignDetection],
        gone: &[String],
    ) -> Result<(), StoreError>;

    /// Every line: accounts by id, then campaigns by id.
    fn detections(&self) -> Result<Vec<moat_types::Detection>, StoreError>;
}

/// Receives exported exchanges one exact exchange-log v1 JSON line at a time (no newline).
pub type ExportSink<'a> = dyn FnMut(&str) -> Result<(), StoreError> + 'a;

/// A place that keeps exchanges, decisions and audit entries. Every method takes `&self`, so one
/// store is shared by the recorder thread and the admin API.
pub trait Store: Send + Sync {
    /// Appends exchanges in one transaction: all or nothing.
    ///
    /// Idempotent by `request_id`: a record whose `request_id` is already stored (or appears
    /// earlier in the batch) is skipped and counted as a duplicate, not an error. Records
    /// without a `request_id` are always stored.
    fn append_exchanges(&self, batch: &[Exchange]) -> Result<AppendReport, StoreError>;

    /// Appends decisions in one transaction: all or nothing.
    ///
    /// Idempotent by `(request_id, ts)` when `request_id` is present, so that re-importing a
    /// spill file does not double decisions; decisions without a request are always stored.
    fn append_decisions(&self, batch: &[DecisionRecord]) -> Result<AppendReport, StoreError>;

    /// Exchanges matching the query, ordered by `ts` then insertion order (keyset pages: a page
    /// boundary never skips or repeats a record, even while appends go on).
    fn exchanges(&self, q: &ExchangeQuery) -> Result<Page<Exchange>, StoreError>;

    /// Decisions matching the query, ordered by `ts` then insertion order.
    fn decisions(&self, q: &DecisionQuery) -> Result<Page<DecisionRecord>, StoreError>;

    /// How many exchanges are stored.
    fn count_exchanges(&self) -> Result<u64, StoreError>;

    /// Per-account aggregates in account id order, for an admin accounts listing.
    fn account_summaries(&self, q: &AccountQuery) -> Result<Page<AccountSummary>, StoreError>;

    /// Records an admin action.
    fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError>;

    /// Admin actions matching the query, ordered by `ts` then insertion order.
    fn audit(&self, q: &AuditQuery) -> Result<Page<AuditEntry>, StoreError>;

    /// Streams every exchange with `ts >= since` in `ts` order (then insertion order) to `sink`,
    /// each as the exact JSON line it was stored as, and returns how many were sent.
    ///
    /// Backends read in chunks and do not hold locks while `sink` runs, so an export does not
    /// stall the recorder; exchanges appended during the export appear in it only if they sort
    /// after the chunk being read. An error from `sink` stops the export and is returned.
    fn export_exchanges(
        &self,
        since: Option<Timestamp>,
        sink: &mut ExportSink<'_>,
    ) -> Result<u64, StoreError>;

    /// Schema version of the underlying database (the last applied migration).
    fn schema_version(&self) -> Result<u32, StoreError>;
}

/// Exports exchanges with `ts >= since` as an exchange-log v1 JSON Lines stream (the format
/// `moat analyze` reads) and returns how many lines were written. Flushes `out` at the end.
pub fn export_jsonl(
    store: &dyn Store,
    since: Option<Timestamp>,
    out: &mut dyn Write,
) -> Result<u64, StoreError> {
    let io = |source| StoreError::Io {
        what: "export output".to_owned(),
        source,
    };
    let n = store.export_exchanges(since, &mut |line| {
        out.write_all(line.as_bytes()).map_err(io)?;
        out.write_all(b"\n").map_err(io)
    })?;
    out.flush().map_err(io)?;
    Ok(n)
}

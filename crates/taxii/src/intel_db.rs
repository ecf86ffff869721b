//! The consumer's intel database: the STIX objects partners shared, with where and when each
//! batch came from, kept in SQLite for the gateway to load as [`moat_intel::Feeds`].
//!
//! An import is all or nothing: every object is checked ([`moat_intel::check_object`]) and
//! loaded into a scratch [`Feed`] first, and one bad object refuses the whole batch, naming
//! it. Only then does one transaction write the import's provenance row and its objects. Per
//! partner (`source`) and object id only the latest version is kept: a newer `version`
//! replaces the stored one, an older or equal one is ignored.
//!
//! The gateway polls [`IntelDb::generation`], which changes with every import and removal, to
//! know when to [`IntelDb::load`] again. Not the TAXII server's store ([`crate::store`]): that
//! one holds what this provider publishes; this one holds what it received.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use moat_intel::{check_object, Feed, Feeds, IntelError, Loaded, PartnerKey};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde::Serialize;
use serde_json::Value;

use crate::TaxiiError;

/// The schema version this code writes (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = 1;

/// How long a writer waits for another one before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Distinct reasons kept per summary before the rest are counted together.
const MAX_REASONS: usize = 20;

/// Schema version 1. `version_key` is `version` normalised so that text order is time order
/// (STIX timestamps may carry 0 to 9 fractional digits). The single-row `generation` table
/// counts changes; it is bumped in the same transaction as every import and removal.
const SCHEMA_V1: &str = "
CREATE TABLE imports (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    source TEXT NOT NULL,
    url TEXT NOT NULL,
    collection TEXT NOT NULL,
    pulled_at TEXT NOT NULL,
    added_after_used TEXT,
    high_water TEXT,
    objects INTEGER NOT NULL,
    matchable INTEGER NOT NULL,
    unsupported INTEGER NOT NULL,
    skipped INTEGER NOT NULL
);
CREATE INDEX imports_by_origin ON imports (source, url, collection, id);
CREATE TABLE intel_objects (
    source TEXT NOT NULL,
    id TEXT NOT NULL,
    version TEXT NOT NULL,
    version_key TEXT NOT NULL,
    type TEXT NOT NULL,
    json TEXT NOT NULL,
    import_id INTEGER NOT NULL REFERENCES imports (id),
    UNIQUE (source, id)
);
CREATE INDEX intel_objects_by_import ON intel_objects (import_id);
CREATE TABLE generation (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    n INTEGER NOT NULL
);
INSERT INTO generation (one, n) VALUES (1, 0);
";

/// Where a batch of objects came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Provenance {
    /// The partner's name, `[a-z0-9_.-]{1,64}` (the policy's feeds are named after it).
    pub source: String,
    /// The API root (or other URL) the objects were read from.
    pub url: String,
    /// The collection's id.
    pub collection: String,
    /// When the pull was made (RFC 3339).
    pub pulled_at: String,
    /// The `added_after` the pull asked for, if any (an incremental pull).
    pub added_after: Option<String>,
}

/// What one import did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    /// The import's row id.
    pub import_id: i64,
    /// Objects in the batch.
    pub objects: usize,
    /// Indicators requests can match; keyed (template and payment) fingerprints count here
    /// and match where the gateway has the partner's key.
    pub matchable: usize,
    /// Well-formed indicators that cannot be matched.
    pub unsupported: usize,
    /// Why, and how many of each.
    pub unsupported_reasons: BTreeMap<String, usize>,
    /// Objects kept for provenance only (not indicators, or revoked).
    pub skipped: usize,
    /// Objects stored for the first time.
    pub new: usize,
    /// Objects that replaced an older version.
    pub updated: usize,
    /// Objects ignored because the stored version is as new or newer.
    pub unchanged: usize,
}

/// One row of the `imports` table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportRow {
    /// The import's id (increasing).
    pub id: i64,
    /// The partner.
    pub source: String,
    /// Where from.
    pub url: String,
    /// Which collection.
    pub collection: String,
    /// When.
    pub pulled_at: String,
    /// The `added_after` asked for.
    pub added_after_used: Option<String>,
    /// The last date added seen (the next pull's `added_after`).
    pub high_water: Option<String>,
    /// Objects in the batch.
    pub objects: i64,
    /// Matchable indicators in the batch.
    pub matchable: i64,
    /// Unsupported indicators in the batch.
    pub unsupported: i64,
    /// Other objects in the batch.
    pub skipped: i64,
}

/// A place a source's objects were pulled from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Origin {
    /// The URL.
    pub url: String,
    /// The collection's id.
    pub collection: String,
}

/// What the database holds from one partner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceSummary {
    /// The partner.
    pub source: String,
    /// Objects held (latest versions).
    pub objects: i64,
    /// Of which indicators.
    pub indicators: i64,
    /// Imports made.
    pub imports: i64,
    /// The first import's time.
    pub first_pulled_at: Option<String>,
    /// The latest import's time.
    pub last_pulled_at: Option<String>,
    /// Where its objects came from.
    pub origins: Vec<Origin>,
}

/// What [`IntelDb::load`] made of one source.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SourceLoad {
    /// The partner.
    pub source: String,
    /// Whether a partner key was given for it.
    pub keyed: bool,
    /// Objects read.
    pub objects: usize,
    /// Indicators requests can match.
    pub matchable: usize,
    /// Indicators that cannot be matched.
    pub unsupported: usize,
    /// Why, and how many of each.
    pub unsupported_reasons: BTreeMap<String, usize>,
    /// Other objects.
    pub skipped: usize,
    /// Stored objects the feed now refuses (left out; a newer Moat may check more strictly).
    pub refused: usize,
    /// Why, and how many of each.
    pub refused_reasons: BTreeMap<String, usize>,
}

/// What [`IntelDb::load`] made of the whole database.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LoadReport {
    /// The generation loaded.
    pub generation: i64,
    /// Per source, in name order.
    pub sources: Vec<SourceLoad>,
    /// Keys given for sources the database does not hold (a misspelt name?).
    pub unused_keys: Vec<String>,
}

/// What [`IntelDb::remove_source`] deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Removed {
    /// Import rows.
    pub imports: usize,
    /// Objects.
    pub objects: usize,
}

/// The consumer's intel database.
#[derive(Debug)]
pub struct IntelDb {
    conn: Connection,
    path: String,
}

impl IntelDb {
    /// Opens (creating it if needed) the database at `path`, in WAL mode so that the gateway
    /// reads while a pull writes.
    pub fn open(path: &Path) -> Result<IntelDb, TaxiiError> {
        let shown = path.display().to_string();
        let conn = Connection::open(path).map_err(db_err(&shown))?;
        Self::init(conn, shown)
    }

    /// A private in-memory database (tests, dry runs).
    pub fn open_in_memory() -> Result<IntelDb, TaxiiError> {
        let shown = ":memory:".to_owned();
        let conn = Connection::open_in_memory().map_err(db_err(&shown))?;
        Self::init(conn, shown)
    }

    fn init(mut conn: Connection, path: String) -> Result<IntelDb, TaxiiError> {
        let shown = path.clone();
        let err = db_err(&shown);
        conn.busy_timeout(BUSY_TIMEOUT).map_err(&err)?;
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0))
            .map_err(&err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(&err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(&err)?;
        // An immediate transaction, so that two processes opening a new file do not both
        // create the schema.
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&err)?;
        let found: i64 = tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(&err)?;
        if found > SCHEMA_VERSION {
            return Err(TaxiiError::SchemaTooNew {
                path,
                found,
                supported: SCHEMA_VERSION,
            });
        }
        if found < 1 {
            tx.execute_batch(SCHEMA_V1).map_err(&err)?;
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)
                .map_err(&err)?;
        }
        tx.commit().map_err(&err)?;
        Ok(IntelDb { conn, path })
    }

    /// Imports `objects` from `provenance`, all or nothing; `high_water` is the last date
    /// added the server reported (kept for the next pull's `added_after`). An empty batch
    /// still records the pull.
    pub fn import(
        &mut self,
        provenance: &Provenance,
        objects: &[Value],
        high_water: Option<&str>,
    ) -> Result<ImportReport, TaxiiError> {
        check_source(&provenance.source)?;
        // Everything is checked before anything is written.
        let mut metas = Vec::with_capacity(objects.len());
        // The scratch feed only classifies: a placeholder key lets keyed fingerprints count
        // as matchable (the gateway matches them with the key it is configured with, and its
        // load report names a source whose key is missing).
        let placeholder = PartnerKey::new(vec![0; 32]).ok();
        let mut scratch = Feed::new(provenance.source.clone(), placeholder);
        let mut report = ImportReport {
            objects: objects.len(),
            ..ImportReport::default()
        };
        for (index, obj) in objects.iter().enumerate() {
            let refused = |error: IntelError| TaxiiError::Object {
                index,
                id: obj
                    .get("id")
                    .and_then(Value::as_str)
                    .map_or_else(|| "?".to_owned(), |id| id.chars().take(100).collect()),
                error,
            };
            let meta = check_object(obj).map_err(refused)?;
            match scratch.add(obj).map_err(refused)? {
                Loaded::Matchable => report.matchable += 1,
                Loaded::Unsupported(why) => {
                    report.unsupported += 1;
                    count_reason(&mut report.unsupported_reasons, why);
                }
                Loaded::Skipped => report.skipped += 1,
            }
            metas.push(meta);
        }

        let err = db_err(&self.path);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&err)?;
        tx.execute(
            "INSERT INTO imports (source, url, collection, pulled_at, added_after_used,
                high_water, objects, matchable, unsupported, skipped)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                provenance.source,
                provenance.url,
                provenance.collection,
                provenance.pulled_at,
                provenance.added_after,
                high_water,
                count(report.objects),
                count(report.matchable),
                count(report.unsupported),
                count(report.skipped),
            ],
        )
        .map_err(&err)?;
        let import_id = tx.last_insert_rowid();
        {
            let mut stored = tx
                .prepare("SELECT version_key FROM intel_objects WHERE source = ?1 AND id = ?2")
                .map_err(&err)?;
            let mut insert = tx
                .prepare(
                    "INSERT INTO intel_objects (source, id, version, version_key, type, json,
                        import_id)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .map_err(&err)?;
            let mut update = tx
                .prepare(
                    "UPDATE intel_objects
                     SET version = ?3, version_key = ?4, type = ?5, json = ?6, import_id = ?7
                     WHERE source = ?1 AND id = ?2",
                )
                .map_err(&err)?;
            for (obj, meta) in objects.iter().zip(&metas) {
                let key = version_key(&meta.version);
                let old: Option<String> = stored
                    .query_row(params![provenance.source, meta.id], |r| r.get(0))
                    .optional()
                    .map_err(&err)?;
                let statement = match old {
                    None => {
                        report.new += 1;
                        &mut insert
                    }
                    Some(old) if key > old => {
                        report.updated += 1;
                        &mut update
                    }
                    Some(_) => {
                        report.unchanged += 1;
                        continue;
                    }
                };
                let json = serde_json::to_string(obj).map_err(IntelError::from)?;
                statement
                    .execute(params![
                        provenance.source,
                        meta.id,
                        meta.version,
                        key,
                        meta.kind,
                        json,
                        import_id
                    ])
                    .map_err(&err)?;
            }
        }
        tx.execute("UPDATE generation SET n = n + 1", [])
            .map_err(&err)?;
        tx.commit().map_err(&err)?;
        report.import_id = import_id;
        Ok(report)
    }

    /// The high water of the latest import from `source`, `url` and `collection` that
    /// recorded one: what the next incremental pull asks `added_after`.
    pub fn high_water(
        &self,
        source: &str,
        url: &str,
        collection: &str,
    ) -> Result<Option<String>, TaxiiError> {
        self.conn
            .query_row(
                "SELECT high_water FROM imports
                 WHERE source = ?1 AND url = ?2 AND collection = ?3 AND high_water IS NOT NULL
                 ORDER BY id DESC LIMIT 1",
                params![source, url, collection],
                |r| r.get(0),
            )
            .optional()
            .map_err(db_err(&self.path))
    }

    /// A number that changes whenever an import lands or a source is removed; the gateway
    /// polls it and loads again when it differs.
    pub fn generation(&self) -> Result<i64, TaxiiError> {
        self.conn
            .query_row("SELECT n FROM generation", [], |r| r.get(0))
            .map_err(db_err(&self.path))
    }

    /// Compiles every source's objects into one [`Feed`] per source (in name order), with the
    /// source's key from `keys` when there is one. A stored object the feed now refuses is
    /// left out and counted, not fatal: the gateway still gets the rest.
    pub fn load(
        &self,
        keys: &BTreeMap<String, PartnerKey>,
    ) -> Result<(Feeds, LoadReport), TaxiiError> {
        let err = db_err(&self.path);
        // One read transaction, so that the generation matches the objects read.
        let tx = self.conn.unchecked_transaction().map_err(&err)?;
        let generation: i64 = tx
            .query_row("SELECT n FROM generation", [], |r| r.get(0))
            .map_err(&err)?;
        let mut feeds = Vec::new();
        let mut report = LoadReport {
            generation,
            ..LoadReport::default()
        };
        {
            let mut stmt = tx
                .prepare("SELECT source, id, json FROM intel_objects ORDER BY source, id")
                .map_err(&err)?;
            let mut rows = stmt.query([]).map_err(&err)?;
            let mut current: Option<(Feed, SourceLoad)> = None;
            while let Some(row) = rows.next().map_err(&err)? {
                let source: String = row.get(0).map_err(&err)?;
                let id: String = row.get(1).map_err(&err)?;
                let json: String = row.get(2).map_err(&err)?;
                if current.as_ref().is_none_or(|(f, _)| f.source() != source) {
                    if let Some((feed, load)) = current.take() {
                        feeds.push(feed);
                        report.sources.push(load);
                    }
                    let key = keys.get(&source).cloned();
                    current = Some((
                        Feed::new(source.clone(), key.clone()),
                        SourceLoad {
                            source,
                            keyed: key.is_some(),
                            ..SourceLoad::default()
                        },
                    ));
                }
                let Some((feed, load)) = current.as_mut() else {
                    continue;
                };
                load.objects += 1;
                let added = serde_json::from_str::<Value>(&json)
                    .map_err(IntelError::from)
                    .and_then(|obj| feed.add(&obj));
                match added {
                    Ok(Loaded::Matchable) => load.matchable += 1,
                    Ok(Loaded::Unsupported(why)) => {
                        load.unsupported += 1;
                        count_reason(&mut load.unsupported_reasons, why);
                    }
                    Ok(Loaded::Skipped) => load.skipped += 1,
                    Err(e) => {
                        load.refused += 1;
                        tracing::debug!(source = %load.source, id = %id, error = %e, "stored intel object refused");
                        count_reason(&mut load.refused_reasons, e.to_string());
                    }
                }
            }
            if let Some((feed, load)) = current {
                feeds.push(feed);
                report.sources.push(load);
            }
        }
        tx.finish().map_err(&err)?;
        report.unused_keys = keys
            .keys()
            .filter(|k| !report.sources.iter().any(|s| &s.source == *k))
            .cloned()
            .collect();
        Ok((Feeds::new(feeds), report))
    }

    /// Every import, oldest first.
    pub fn imports(&self) -> Result<Vec<ImportRow>, TaxiiError> {
        let err = db_err(&self.path);
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, source, url, collection, pulled_at, added_after_used, high_water,
                    objects, matchable, unsupported, skipped
                 FROM imports ORDER BY id",
            )
            .map_err(&err)?;
        let rows = stmt
            .query_map([], |r| {
                Ok(ImportRow {
                    id: r.get(0)?,
                    source: r.get(1)?,
                    url: r.get(2)?,
                    collection: r.get(3)?,
                    pulled_at: r.get(4)?,
                    added_after_used: r.get(5)?,
                    high_water: r.get(6)?,
                    objects: r.get(7)?,
                    matchable: r.get(8)?,
                    unsupported: r.get(9)?,
                    skipped: r.get(10)?,
                })
            })
            .map_err(&err)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(&err)
    }

    /// One summary per source (in name order): what is held, from where, since when.
    pub fn sources(&self) -> Result<Vec<SourceSummary>, TaxiiError> {
        let err = db_err(&self.path);
        let mut out: BTreeMap<String, SourceSummary> = BTreeMap::new();
        let mut stmt = self
            .conn
            .prepare(
                "SELECT source, COUNT(*), MIN(pulled_at), MAX(pulled_at)
                 FROM imports GROUP BY source",
            )
            .map_err(&err)?;
        let mut rows = stmt.query([]).map_err(&err)?;
        while let Some(r) = rows.next().map_err(&err)? {
            let source: String = r.get(0).map_err(&err)?;
            out.insert(
                source.clone(),
                SourceSummary {
                    source,
                    objects: 0,
                    indicators: 0,
                    imports: r.get(1).map_err(&err)?,
                    first_pulled_at: r.get(2).map_err(&err)?,
                    last_pulled_at: r.get(3).map_err(&err)?,
                    origins: Vec::new(),
                },
            );
        }
        let mut stmt = self
            .conn
            .prepare(
                "SELECT source, COUNT(*), COALESCE(SUM(type = 'indicator'), 0)
                 FROM intel_objects GROUP BY source",
            )
            .map_err(&err)?;
        let mut rows = stmt.query([]).map_err(&err)?;
        while let Some(r) = rows.next().map_err(&err)? {
            let source: String = r.get(0).map_err(&err)?;
            if let Some(s) = out.get_mut(&source) {
                s.objects = r.get(1).map_err(&err)?;
                s.indicators = r.get(2).map_err(&err)?;
            }
        }
        let mut stmt = self
            .conn
            .prepare("SELECT DISTINCT source, url, collection FROM imports ORDER BY source, url, collection")
            .map_err(&err)?;
        let mut rows = stmt.query([]).map_err(&err)?;
        while let Some(r) = rows.next().map_err(&err)? {
            let source: String = r.get(0).map_err(&err)?;
            if let Some(s) = out.get_mut(&source) {
                s.origins.push(Origin {
                    url: r.get(1).map_err(&err)?,
                    collection: r.get(2).map_err(&err)?,
                });
            }
        }
        Ok(out.into_values().collect())
    }

    /// Deletes everything from `source` (a partner relationship ended), in one transaction.
    pub fn remove_source(&mut self, source: &str) -> Result<Removed, TaxiiError> {
        check_source(source)?;
        let err = db_err(&self.path);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&err)?;
        let objects = tx
            .execute("DELETE FROM intel_objects WHERE source = ?1", [source])
            .map_err(&err)?;
        let imports = tx
            .execute("DELETE FROM imports WHERE source = ?1", [source])
            .map_err(&err)?;
        if objects + imports > 0 {
            tx.execute("UPDATE generation SET n = n + 1", [])
                .map_err(&err)?;
        }
        tx.commit().map_err(&err)?;
        Ok(Removed { imports, objects })
    }
}

/// Checks a partner name: `[a-z0-9_.-]{1,64}`.
pub fn check_source(source: &str) -> Result<(), TaxiiError> {
    let ok = (1..=64).contains(&source.len())
        && source.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-')
        });
    if ok {
        Ok(())
    } else {
        Err(TaxiiError::BadSource(source.chars().take(80).collect()))
    }
}

fn db_err(path: &str) -> impl Fn(rusqlite::Error) -> TaxiiError + '_ {
    move |source| TaxiiError::Db {
        path: path.to_owned(),
        source,
    }
}

/// A count as SQLite's integer (saturating; counts never come near).
fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Counts one more `reason`, folding reasons past the first [`MAX_REASONS`] into "other".
fn count_reason(reasons: &mut BTreeMap<String, usize>, reason: String) {
    let key = if reasons.contains_key(&reason) || reasons.len() < MAX_REASONS {
        reason
    } else {
        "other".to_owned()
    };
    *reasons.entry(key).or_insert(0) += 1;
}

/// `version` in a form whose text order is time order: the canonical STIX timestamp
/// `YYYY-MM-DDTHH:MM:SS[.f…]Z` with the fraction padded to 9 digits. Anything else (an empty
/// version, another shape) is kept as it is.
fn version_key(version: &str) -> String {
    let b = version.as_bytes();
    let shape = b.len() >= 20
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[b.len() - 1] == b'Z';
    if !shape {
        return version.to_owned();
    }
    let (head, rest) = version.split_at(19);
    let fraction = &rest[..rest.len() - 1];
    let digits = match fraction.strip_prefix('.') {
        Some(d) if (1..=9).contains(&d.len()) && d.bytes().all(|c| c.is_ascii_digit()) => d,
        None if fraction.is_empty() => "",
        _ => return version.to_owned(),
    };
    format!("{head}.{digits:0<9}Z")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use serde_json::json;

    use super::*;

    fn provenance(source: &str) -> Provenance {
        Provenance {
            source: source.into(),
            url: "https://partner.example/api1/".into(),
            collection: "c1".into(),
            pulled_at: "2025-03-01T00:00:00.000Z".into(),
            added_after: None,
        }
    }

    fn indicator(n: u32, modified: &str, ip: &str) -> Value {
        json!({
            "type": "indicator",
            "spec_version": "2.1",
            "id": format!("indicator--00000000-0000-4000-8000-{n:012}"),
            "created": "2025-01-01T00:00:00.000Z",
            "modified": modified,
            "pattern": format!("[ipv4-addr:value = '{ip}']"),
            "pattern_type": "stix",
            "valid_from": "2025-01-01T00:00:00.000Z",
        })
    }

    fn stored_json(db: &IntelDb, id: &str) -> Option<Value> {
        db.conn
            .query_row("SELECT json FROM intel_objects WHERE id = ?1", [id], |r| {
                r.get::<_, String>(0)
            })
            .optional()
            .unwrap()
            .map(|j| serde_json::from_str(&j).unwrap())
    }

    fn object_count(db: &IntelDb) -> i64 {
        db.conn
            .query_row("SELECT COUNT(*) FROM intel_objects", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn version_keys_order_like_time_whatever_the_precision() {
        assert_eq!(
            version_key("2025-01-01T00:00:00Z"),
            "2025-01-01T00:00:00.000000000Z"
        );
        assert_eq!(
            version_key("2025-01-01T00:00:00.5Z"),
            "2025-01-01T00:00:00.500000000Z"
        );
        assert!(version_key("2025-01-01T00:00:00.001Z") > version_key("2025-01-01T00:00:00Z"));
        assert!(version_key("2025-01-01T00:00:01Z") > version_key("2025-01-01T00:00:00.999Z"));
        assert_eq!(version_key(""), "");
        assert_eq!(version_key("not a time"), "not a time");
    }

    #[test]
    fn source_names_are_checked() {
        for ok in ["acme", "partner-1", "a.b_c", &"x".repeat(64)] {
            assert!(check_source(ok).is_ok(), "{ok}");
        }
        for bad in ["", "Acme", "a b", "a/b", &"x".repeat(65), "é"] {
            assert!(check_source(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_schema_is_versioned_and_a_newer_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("intel.db");
        let db = IntelDb::open(&path).unwrap();
        let v: i64 = db
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION);
        let mode: String = db
            .conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        db.conn.pragma_update(None, "user_version", 99).unwrap();
        drop(db);
        assert!(matches!(
            IntelDb::open(&path),
            Err(TaxiiError::SchemaTooNew { found: 99, .. })
        ));
    }

    #[test]
    fn a_batch_with_one_malformed_object_writes_nothing() {
        let mut db = IntelDb::open_in_memory().unwrap();
        let mut bad = indicator(2, "2025-01-02T00:00:00.000Z", "203.0.113.2");
        bad.as_object_mut().unwrap().remove("created");
        let batch = vec![
            indicator(1, "2025-01-02T00:00:00.000Z", "203.0.113.1"),
            bad,
            indicator(3, "2025-01-02T00:00:00.000Z", "203.0.113.3"),
        ];
        let before = db.generation().unwrap();
        let e = db
            .import(&provenance("acme"), &batch, Some("x"))
            .unwrap_err();
        match &e {
            TaxiiError::Object { index, id, .. } => {
                assert_eq!(*index, 1);
                assert!(id.ends_with("000000000002"), "{id}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(object_count(&db), 0);
        assert!(db.imports().unwrap().is_empty());
        assert_eq!(db.generation().unwrap(), before);
        assert_eq!(
            db.high_water("acme", "https://partner.example/api1/", "c1")
                .unwrap(),
            None
        );
    }

    #[test]
    fn a_bad_source_name_is_refused_before_anything_is_checked() {
        let mut db = IntelDb::open_in_memory().unwrap();
        assert!(matches!(
            db.import(&provenance("Bad Name"), &[], None),
            Err(TaxiiError::BadSource(_))
        ));
    }

    #[test]
    fn a_good_batch_writes_everything_with_its_provenance() {
        let mut db = IntelDb::open_in_memory().unwrap();
        let g0 = db.generation().unwrap();
        let batch: Vec<Value> = (1..=3)
            .map(|n| indicator(n, "2025-01-02T00:00:00.000Z", &format!("203.0.113.{n}")))
            .collect();
        let r = db
            .import(
                &provenance("acme"),
                &batch,
                Some("2025-02-01T00:00:00.000Z"),
            )
            .unwrap();
        assert_eq!((r.objects, r.new, r.updated, r.unchanged), (3, 3, 0, 0));
        assert_eq!(r.matchable + r.unsupported + r.skipped, 3);
        assert_eq!(object_count(&db), 3);
        assert_ne!(db.generation().unwrap(), g0);
        let imports = db.imports().unwrap();
        assert_eq!(imports.len(), 1);
        assert_eq!(imports[0].source, "acme");
        assert_eq!(imports[0].objects, 3);
        assert_eq!(
            imports[0].high_water.as_deref(),
            Some("2025-02-01T00:00:00.000Z")
        );
        let sources = db.sources().unwrap();
        assert_eq!(sources.len(), 1);
        assert_eq!(
            (
                sources[0].objects,
                sources[0].indicators,
                sources[0].imports
            ),
            (3, 3, 1)
        );
        assert_eq!(sources[0].origins[0].collection, "c1");
    }

    #[test]
    fn a_newer_version_replaces_and_an_older_or_equal_one_is_ignored() {
        let mut db = IntelDb::open_in_memory().unwrap();
        let id = "indicator--00000000-0000-4000-8000-000000000001";
        db.import(
            &provenance("acme"),
            &[indicator(1, "2025-01-02T00:00:00Z", "203.0.113.1")],
            None,
        )
        .unwrap();
        // Newer, with more fractional digits than the stored one.
        let r = db
            .import(
                &provenance("acme"),
                &[indicator(1, "2025-01-02T00:00:00.001Z", "203.0.113.9")],
                None,
            )
            .unwrap();
        assert_eq!((r.new, r.updated, r.unchanged), (0, 1, 0));
        assert!(stored_json(&db, id).unwrap()["pattern"]
            .as_str()
            .unwrap()
            .contains("203.0.113.9"));
        // Older, then equal: both ignored.
        for modified in ["2025-01-01T12:00:00.000Z", "2025-01-02T00:00:00.001Z"] {
            let r = db
                .import(
                    &provenance("acme"),
                    &[indicator(1, modified, "198.51.100.1")],
                    None,
                )
                .unwrap();
            assert_eq!((r.new, r.updated, r.unchanged), (0, 0, 1));
        }
        assert!(stored_json(&db, id).unwrap()["pattern"]
            .as_str()
            .unwrap()
            .contains("203.0.113.9"));
        // The same id from another partner is another object.
        let r = db
            .import(
                &provenance("other"),
                &[indicator(1, "2025-01-01T00:00:00Z", "192.0.2.1")],
                None,
            )
            .unwrap();
        assert_eq!(r.new, 1);
        assert_eq!(object_count(&db), 2);
    }

    #[test]
    fn high_water_is_the_latest_recorded_for_that_origin() {
        let mut db = IntelDb::open_in_memory().unwrap();
        let url = "https://partner.example/api1/";
        assert_eq!(db.high_water("acme", url, "c1").unwrap(), None);
        db.import(&provenance("acme"), &[], Some("2025-01-01T00:00:00Z"))
            .unwrap();
        db.import(&provenance("acme"), &[], Some("2025-02-01T00:00:00Z"))
            .unwrap();
        // An import without one does not erase it.
        db.import(&provenance("acme"), &[], None).unwrap();
        assert_eq!(
            db.high_water("acme", url, "c1").unwrap().as_deref(),
            Some("2025-02-01T00:00:00Z")
        );
        assert_eq!(db.high_water("acme", url, "c2").unwrap(), None);
        assert_eq!(db.high_water("other", url, "c1").unwrap(), None);
    }

    #[test]
    fn generation_changes_with_every_import_and_removal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("intel.db");
        let mut writer = IntelDb::open(&path).unwrap();
        let reader = IntelDb::open(&path).unwrap();
        let g0 = reader.generation().unwrap();
        writer.import(&provenance("acme"), &[], None).unwrap();
        let g1 = reader.generation().unwrap();
        assert_ne!(g0, g1);
        writer.import(&provenance("beta"), &[], None).unwrap();
        let g2 = reader.generation().unwrap();
        assert_ne!(g1, g2);
        // Removing an older source changes it too (a max import id would not).
        writer.remove_source("acme").unwrap();
        let g3 = reader.generation().unwrap();
        assert_ne!(g2, g3);
        // Removing nothing changes nothing.
        writer.remove_source("nobody").unwrap();
        assert_eq!(reader.generation().unwrap(), g3);
    }

    #[test]
    fn remove_source_deletes_only_that_partner() {
        let mut db = IntelDb::open_in_memory().unwrap();
        db.import(
            &provenance("acme"),
            &[
                indicator(1, "2025-01-02T00:00:00Z", "203.0.113.1"),
                indicator(2, "2025-01-02T00:00:00Z", "203.0.113.2"),
            ],
            Some("2025-02-01T00:00:00Z"),
        )
        .unwrap();
        db.import(
            &provenance("beta"),
            &[indicator(3, "2025-01-02T00:00:00Z", "203.0.113.3")],
            None,
        )
        .unwrap();
        let removed = db.remove_source("acme").unwrap();
        assert_eq!(
            removed,
            Removed {
                imports: 1,
                objects: 2
            }
        );
        assert_eq!(object_count(&db), 1);
        let sources = db.sources().unwrap();
        assert_eq!(sources.len(), 1);
        assert_eq!(sources[0].source, "beta");
        assert_eq!(
            db.high_water("acme", "https://partner.example/api1/", "c1")
                .unwrap(),
            None
        );
    }

    #[test]
    fn load_builds_one_feed_per_source_with_its_key() {
        let mut db = IntelDb::open_in_memory().unwrap();
        db.import(
            &provenance("acme"),
            &[
                indicator(1, "2025-01-02T00:00:00Z", "203.0.113.1"),
                indicator(2, "2025-01-02T00:00:00Z", "203.0.113.2"),
            ],
            None,
        )
        .unwrap();
        db.import(
            &provenance("beta"),
            &[indicator(3, "2025-01-02T00:00:00Z", "203.0.113.3")],
            None,
        )
        .unwrap();
        let mut keys = BTreeMap::new();
        keys.insert("beta".to_owned(), PartnerKey::new(vec![7; 32]).unwrap());
        keys.insert("gamma".to_owned(), PartnerKey::new(vec![8; 32]).unwrap());
        let (feeds, report) = db.load(&keys).unwrap();
        assert_eq!(report.generation, db.generation().unwrap());
        let names: Vec<&str> = report.sources.iter().map(|s| s.source.as_str()).collect();
        assert_eq!(names, ["acme", "beta"]);
        assert!(!report.sources[0].keyed);
        assert!(report.sources[1].keyed);
        assert_eq!(report.sources[0].objects, 2);
        assert_eq!(report.sources[0].matchable, 2);
        assert_eq!(report.sources[1].matchable, 1);
        assert_eq!(report.sources[0].refused, 0);
        assert_eq!(report.unused_keys, ["gamma"]);
        assert!(!feeds.is_empty());
    }
}

//! [`SqliteStore`]: the embedded default backend, one SQLite file and no server.
//!
//! Tuned for a gateway that writes batches of hundreds to thousands of records from one thread
//! while admins read: WAL (readers never block the writer), `synchronous=NORMAL` (a power loss
//! may lose the last transactions but never corrupts the file), a busy timeout, and one
//! transaction per batch. A file database gets two connections, a writer and a read-only
//! reader, each behind a mutex so that `&self` methods are `Send + Sync`; an in-memory
//! database has only the one connection.
//!
//! Not here: anything PostgreSQL; the migration list lives in [`crate::migrate`].

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use moat_types::{Exchange, Timestamp};
use rusqlite::types::Value;
use rusqlite::{params, Connection, OpenFlags, Row, TransactionBehavior};

use crate::codec::{
    decode_exchange, decode_list, encode, from_sql_count, now_ms, to_sql_count, EXPORT_CHUNK,
};
use crate::migrate::{self, Migration, SQLITE_MIGRATIONS};
use crate::model::clamp_limit;
use crate::{
    AccountQuery, AccountSummary, AppendReport, AuditEntry, AuditQuery, Cursor, DecisionQuery,
    DecisionRecord, DetectionLog, ExchangeQuery, ExportSink, FeatureCursor, FeatureLog, FeatureRow,
    Order, Page, Store, StoreError,
};

/// How long a statement waits for another process's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The embedded SQLite backend.
#[derive(Debug)]
pub struct SqliteStore {
    path: PathBuf,
    writer: Mutex<Connection>,
    reader: Option<Mutex<Connection>>,
}

impl SqliteStore {
    /// Opens (creating if needed) a database file and brings its schema up to date.
    ///
    /// Fails with [`StoreError::SchemaTooNew`] for a database written by a newer build.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_at(path, migrate::latest_version(SQLITE_MIGRATIONS))
    }

    /// An in-memory database with the current schema, for tests and throwaway runs.
    pub fn in_memory() -> Result<Self, StoreError> {
        let path = PathBuf::from(":memory:");
        let open_err = |source| StoreError::Open {
            path: path.clone(),
            source,
        };
        let mut conn = Connection::open_in_memory().map_err(open_err)?;
        let latest = migrate::latest_version(SQLITE_MIGRATIONS);
        migrate_to(&mut conn, SQLITE_MIGRATIONS, latest, &path)?;
        Ok(SqliteStore {
            path,
            writer: Mutex::new(conn),
            reader: None,
        })
    }

    /// The database file (`:memory:` for an in-memory store).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens a file database migrated up to `target` only; tests use it to build old versions.
    fn open_at(path: &Path, target: u32) -> Result<Self, StoreError> {
        let open_err = |source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        };
        let mut conn = Connection::open(path).map_err(open_err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0))
            .map_err(open_err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(open_err)?;
        migrate_to(&mut conn, SQLITE_MIGRATIONS, target, path)?;

        let reader = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(open_err)?;
        reader.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
        Ok(SqliteStore {
            path: path.to_path_buf(),
            writer: Mutex::new(conn),
            reader: Some(Mutex::new(reader)),
        })
    }

    fn writer(&self) -> MutexGuard<'_, Connection> {
        // A panic while the lock was held cannot leave a half-written batch behind (its
        // transaction rolls back on drop), so a poisoned connection is still good to use.
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn reader(&self) -> MutexGuard<'_, Connection> {
        match &self.reader {
            Some(r) => r.lock().unwrap_or_else(|e| e.into_inner()),
            None => self.writer(),
        }
    }
}

/// Applies the migrations of `list` above the database's version, up to `target`, in one
/// immediate transaction (so two processes opening the same file do not both migrate).
fn migrate_to(
    conn: &mut Connection,
    list: &'static [Migration],
    target: u32,
    path: &Path,
) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(StoreError::sql("starting migrations"))?;
    tx.execute_batch(migrate::SCHEMA_VERSION_TABLE)
        .map_err(StoreError::sql("creating the schema_version table"))?;
    let current = read_version(&tx)?;
    let now = now_ms();
    for m in migrate::pending(list, current, &path.display().to_string())? {
        if m.version > target {
            break;
        }
        let failed = |source| StoreError::Migration {
            version: m.version,
            name: m.name,
            source,
        };
        tx.execute_batch(m.sql).map_err(failed)?;
        tx.execute(
            "INSERT INTO schema_version (version, name, applied_at_ms) VALUES (?1, ?2, ?3)",
            params![m.version, m.name, now],
        )
        .map_err(failed)?;
        tracing::info!(
            version = m.version,
            name = m.name,
            "applied store migration"
        );
    }
    tx.commit()
        .map_err(StoreError::sql("committing migrations"))
}

fn read_version(conn: &Connection) -> Result<u32, StoreError> {
    let v: i64 = conn
        .query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_version",
            [],
            |r| r.get(0),
        )
        .map_err(StoreError::sql("reading the schema version"))?;
    // A negative or huge version can only come from outside; reading it as "too new" refuses
    // to touch the file, the safe side.
    Ok(u32::try_from(v).unwrap_or(u32::MAX))
}

/// A time-ordered listing of one table: the shared keyset pagination of exchanges, decisions
/// and audit entries.
struct Listing<'a> {
    table: &'static str,
    columns: &'static str,
    /// `column = ?` filters; column names are fixed strings of this module, never input.
    filters: Vec<(&'static str, &'a str)>,
    since: Option<Timestamp>,
    until: Option<Timestamp>,
    order: Order,
    limit: usize,
    cursor: Option<&'a Cursor>,
}

impl Listing<'_> {
    /// Runs the listing; `decode` turns a row (`id`, `ts_ms`, then `columns`) into an item.
    fn run<T>(
        &self,
        conn: &Connection,
        op: &'static str,
        mut decode: impl FnMut(&Row<'_>, i64) -> Result<T, StoreError>,
    ) -> Result<Page<T>, StoreError> {
        let limit = clamp_limit(self.limit);
        let (cmp, dir, start) = match self.order {
            Order::OldestFirst => (">", "ASC", (i64::MIN, i64::MIN)),
            Order::NewestFirst => ("<", "DESC", (i64::MAX, i64::MAX)),
        };
        let (after_ts, after_id) = match self.cursor {
            Some(c) => c.position()?,
            None => start,
        };
        let mut sql = format!(
            "SELECT id, ts_ms, {} FROM {} WHERE ts_ms >= ?1 AND ts_ms < ?2 AND (ts_ms, id) {cmp} (?3, ?4)",
            self.columns, self.table
        );
        let mut values = vec![
            Value::Integer(self.since.map_or(i64::MIN, Timestamp::as_millis)),
            Value::Integer(self.until.map_or(i64::MAX, Timestamp::as_millis)),
            Value::Integer(after_ts),
            Value::Integer(after_id),
        ];
        for (column, value) in &self.filters {
            values.push(Value::Text((*value).to_owned()));
            sql.push_str(&format!(" AND {column} = ?{}", values.len()));
        }
        // One row more than the page tells whether a next page exists.
        values.push(Value::Integer(i64::try_from(limit + 1).unwrap_or(i64::MAX)));
        sql.push_str(&format!(
            " ORDER BY ts_ms {dir}, id {dir} LIMIT ?{}",
            values.len()
        ));

        let mut stmt = conn.prepare_cached(&sql).map_err(StoreError::sql(op))?;
        let mut rows = stmt
            .query(rusqlite::params_from_iter(values))
            .map_err(StoreError::sql(op))?;
        let mut items = Vec::with_capacity(limit.min(64));
        let mut last = None;
        let mut more = false;
        while let Some(row) = rows.next().map_err(StoreError::sql(op))? {
            if items.len() == limit {
                more = true;
                break;
            }
            let id: i64 = row.get(0).map_err(StoreError::sql(op))?;
            let ts: i64 = row.get(1).map_err(StoreError::sql(op))?;
            items.push(decode(row, id)?);
            last = Some((ts, id));
        }
        let next = match (more, last) {
            (true, Some((ts, id))) => Some(Cursor::from_position(ts, id)),
            _ => None,
        };
        Ok(Page { items, next })
    }
}

impl Store for SqliteStore {
    fn append_exchanges(&self, batch: &[Exchange]) -> Result<AppendReport, StoreError> {
        const OP: &str = "appending exchanges";
        let mut report = AppendReport::default();
        if batch.is_empty() {
            return Ok(report);
        }
        let mut conn = self.writer();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(StoreError::sql(OP))?;
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO exchanges
                     (ts_ms, account_id, request_id, prompt_tokens, completion_tokens,
                      reasoning_tokens, record)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                     ON CONFLICT (request_id) DO NOTHING",
                )
                .map_err(StoreError::sql(OP))?;
            let mut account = tx
                .prepare_cached(
                    "INSERT INTO accounts VALUES (?1, 1, ?2, ?2, ?3, ?4, ?5)
                     ON CONFLICT (account_id) DO UPDATE SET
                       exchanges = exchanges + 1,
                       first_seen_ms = min(first_seen_ms, excluded.first_seen_ms),
                       last_seen_ms = max(last_seen_ms, excluded.last_seen_ms),
                       prompt_tokens = prompt_tokens + excluded.prompt_tokens,
                       completion_tokens = completion_tokens + excluded.completion_tokens,
                       reasoning_tokens = reasoning_tokens + excluded.reasoning_tokens",
                )
                .map_err(StoreError::sql(OP))?;
            for x in batch {
                let record = encode("exchange", x)?;
                let tokens = |f: fn(&moat_types::Response) -> Option<u64>| {
                    to_sql_count(x.response.as_ref().and_then(f).unwrap_or(0))
                };
                let (p, c, r) = (
                    tokens(|r| r.prompt_tokens),
                    tokens(|r| r.completion_tokens),
                    tokens(|r| r.reasoning_tokens),
                );
                let ts = x.ts.as_millis();
                let inserted = insert
                    .execute(params![ts, x.account_id, x.request_id, p, c, r, record])
                    .map_err(StoreError::sql(OP))?;
                if inserted == 0 {
                    report.duplicates += 1;
                    continue;
                }
                account
                    .execute(params![x.account_id, ts, p, c, r])
                    .map_err(StoreError::sql(OP))?;
                report.new += 1;
            }
        }
        tx.commit().map_err(StoreError::sql(OP))?;
        Ok(report)
    }

    fn append_decisions(&self, batch: &[DecisionRecord]) -> Result<AppendReport, StoreError> {
        const OP: &str = "appending decisions";
        let mut report = AppendReport::default();
        if batch.is_empty() {
            return Ok(report);
        }
        let mut conn = self.writer();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(StoreError::sql(OP))?;
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO decisions
                     (ts_ms, request_id, account_id, campaign_id, rule, actions, shadow, risk,
                      enforced, detail)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                     ON CONFLICT (request_id, ts_ms) DO NOTHING",
                )
                .map_err(StoreError::sql(OP))?;
            for d in batch {
                // SQLite has no NaN; a non-finite risk is kept as NULL and read back as NaN.
                let risk = d.risk.is_finite().then_some(d.risk);
                let inserted = insert
                    .execute(params![
                        d.ts.as_millis(),
                        d.request_id,
                        d.account_id,
                        d.campaign_id,
                        d.rule,
                        encode("decision actions", &d.actions)?,
                        encode("decision shadow rules", &d.shadow)?,
                        risk,
                        d.enforced,
                        d.detail,
                    ])
                    .map_err(StoreError::sql(OP))?;
                if inserted == 0 {
                    report.duplicates += 1;
                } else {
                    report.new += 1;
                }
            }
        }
        tx.commit().map_err(StoreError::sql(OP))?;
        Ok(report)
    }

    fn exchanges(&self, q: &ExchangeQuery) -> Result<Page<Exchange>, StoreError> {
        let mut filters = Vec::new();
        if let Some(a) = &q.account_id {
            filters.push(("account_id", a.as_str()));
        }
        let listing = Listing {
            table: "exchanges",
            columns: "record",
            filters,
            since: q.since,
            until: q.until,
            order: q.order,
            limit: q.limit,
            cursor: q.cursor.as_ref(),
        };
        const OP: &str = "querying exchanges";
        listing.run(&self.reader(), OP, |row, id| {
            let text: String = row.get(2).map_err(StoreError::sql(OP))?;
            decode_exchange(&text, id)
        })
    }

    fn decisions(&self, q: &DecisionQuery) -> Result<Page<DecisionRecord>, StoreError> {
        let mut filters = Vec::new();
        if let Some(a) = &q.account_id {
            filters.push(("account_id", a.as_str()));
        }
        if let Some(r) = &q.request_id {
            filters.push(("request_id", r.as_str()));
        }
        let listing = Listing {
            table: "decisions",
            columns:
                "request_id, account_id, campaign_id, rule, actions, shadow, risk, enforced, detail",
            filters,
            since: q.since,
            until: q.until,
            order: q.order,
            limit: q.limit,
            cursor: q.cursor.as_ref(),
        };
        const OP: &str = "querying decisions";
        listing.run(&self.reader(), OP, |row, id| {
            let get = StoreError::sql(OP);
            let ts: i64 = row.get(1).map_err(get)?;
            let actions: String = row.get(6).map_err(StoreError::sql(OP))?;
            let shadow: String = row.get(7).map_err(StoreError::sql(OP))?;
            let risk: Option<f64> = row.get(8).map_err(StoreError::sql(OP))?;
            Ok(DecisionRecord {
                ts: Timestamp::from_millis(ts),
                request_id: row.get(2).map_err(StoreError::sql(OP))?,
                account_id: row.get(3).map_err(StoreError::sql(OP))?,
                campaign_id: row.get(4).map_err(StoreError::sql(OP))?,
                rule: row.get(5).map_err(StoreError::sql(OP))?,
                actions: decode_list(&actions, id)?,
                shadow: decode_list(&shadow, id)?,
                risk: risk.unwrap_or(f64::NAN),
                enforced: row.get(9).map_err(StoreError::sql(OP))?,
                detail: row.get(10).map_err(StoreError::sql(OP))?,
            })
        })
    }

    fn count_exchanges(&self) -> Result<u64, StoreError> {
        // The per-account aggregates hold the count, which spares a scan of the exchanges.
        let n: i64 = self
            .reader()
            .query_row(
                "SELECT COALESCE(SUM(exchanges), 0) FROM accounts",
                [],
                |r| r.get(0),
            )
            .map_err(StoreError::sql("counting exchanges"))?;
        Ok(from_sql_count(n))
    }

    fn account_summaries(&self, q: &AccountQuery) -> Result<Page<AccountSummary>, StoreError> {
        const OP: &str = "querying account summaries";
        let limit = clamp_limit(q.limit);
        let fetch = i64::try_from(limit + 1).unwrap_or(i64::MAX);
        let conn = self.reader();
        let columns = "account_id, exchanges, first_seen_ms, last_seen_ms, prompt_tokens, \
                       completion_tokens, reasoning_tokens";
        let decode = |r: &Row<'_>| -> rusqlite::Result<AccountSummary> {
            Ok(AccountSummary {
                account_id: r.get(0)?,
                exchanges: from_sql_count(r.get(1)?),
                first_seen: Timestamp::from_millis(r.get(2)?),
                last_seen: Timestamp::from_millis(r.get(3)?),
                prompt_tokens: from_sql_count(r.get(4)?),
                completion_tokens: from_sql_count(r.get(5)?),
                reasoning_tokens: from_sql_count(r.get(6)?),
            })
        };
        let mut items = match &q.cursor {
            // The cursor of this listing is the last account id shown.
            Some(after) => conn
                .prepare_cached(&format!(
                    "SELECT {columns} FROM accounts WHERE account_id > ?1 ORDER BY account_id LIMIT ?2"
                ))
                .and_then(|mut s| {
                    s.query_map(params![after.as_str(), fetch], decode)?
                        .collect::<rusqlite::Result<Vec<_>>>()
                }),
            None => conn
                .prepare_cached(&format!(
                    "SELECT {columns} FROM accounts ORDER BY account_id LIMIT ?1"
                ))
                .and_then(|mut s| {
                    s.query_map(params![fetch], decode)?
                        .collect::<rusqlite::Result<Vec<_>>>()
                }),
        }
        .map_err(StoreError::sql(OP))?;
        let next = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|a| Cursor::new(a.account_id.clone()))
        } else {
            None
        };
        Ok(Page { items, next })
    }

    fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        self.writer()
            .execute(
                "INSERT INTO audit (ts_ms, actor, action, target, detail)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    entry.ts.as_millis(),
                    entry.actor,
                    entry.action,
                    entry.target,
                    entry.detail
                ],
            )
            .map_err(StoreError::sql("appending an audit entry"))?;
        Ok(())
    }

    fn audit(&self, q: &AuditQuery) -> Result<Page<AuditEntry>, StoreError> {
        let mut filters = Vec::new();
        if let Some(a) = &q.actor {
            filters.push(("actor", a.as_str()));
        }
        let listing = Listing {
            table: "audit",
            columns: "actor, action, target, detail",
            filters,
            since: q.since,
            until: q.until,
            order: q.order,
            limit: q.limit,
            cursor: q.cursor.as_ref(),
        };
        const OP: &str = "querying the audit log";
        listing.run(&self.reader(), OP, |row, _| {
            let ts: i64 = row.get(1).map_err(StoreError::sql(OP))?;
            Ok(AuditEntry {
                ts: Timestamp::from_millis(ts),
                actor: row.get(2).map_err(StoreError::sql(OP))?,
                action: row.get(3).map_err(StoreError::sql(OP))?,
                target: row.get(4).map_err(StoreError::sql(OP))?,
                detail: row.get(5).map_err(StoreError::sql(OP))?,
            })
        })
    }

    fn export_exchanges(
        &self,
        since: Option<Timestamp>,
        sink: &mut ExportSink<'_>,
    ) -> Result<u64, StoreError> {
        const OP: &str = "exporting exchanges";
        let since = since.map_or(i64::MIN, Timestamp::as_millis);
        let mut after = (i64::MIN, i64::MIN);
        let mut sent = 0u64;
        loop {
            // Read one chunk under the lock, then release it before the sink runs.
            let chunk: Vec<(i64, i64, String)> = {
                let conn = self.reader();
                let mut stmt = conn
                    .prepare_cached(
                        "SELECT ts_ms, id, record FROM exchanges
                         WHERE ts_ms >= ?1 AND (ts_ms, id) > (?2, ?3)
                         ORDER BY ts_ms, id LIMIT ?4",
                    )
                    .map_err(StoreError::sql(OP))?;
                let rows = stmt
                    .query_map(params![since, after.0, after.1, EXPORT_CHUNK as i64], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                    })
                    .map_err(StoreError::sql(OP))?;
                rows.collect::<rusqlite::Result<_>>()
                    .map_err(StoreError::sql(OP))?
            };
            for (_, _, record) in &chunk {
                sink(record)?;
                sent += 1;
            }
            match chunk.last() {
                Some((ts, id, _)) if chunk.len() == EXPORT_CHUNK => after = (*ts, *id),
                _ => return Ok(sent),
            }
        }
    }

    fn schema_version(&self) -> Result<u32, StoreError> {
        read_version(&self.reader())
    }
}

/// Reads the version a database file is at without migrating it (tests of old databases).
/// One writer: row ids grow in commit order, so the log order is the row id and the cursor's
/// `txid` stays 0.
impl FeatureLog for SqliteStore {
    fn append_features(&self, batch: &[FeatureRow]) -> Result<AppendReport, StoreError> {
        const OP: &str = "appending features";
        let mut report = AppendReport::default();
        if batch.is_empty() {
            return Ok(report);
        }
        let mut conn = self.writer();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(StoreError::sql(OP))?;
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO features (ts_ms, account_id, request_id, body)
                     VALUES (?1, ?2, ?3, ?4) ON CONFLICT (request_id) DO NOTHING",
                )
                .map_err(StoreError::sql(OP))?;
            for r in batch {
                let inserted = insert
                    .execute(params![
                        r.ts.as_millis(),
                        r.account_id,
                        r.request_id,
                        r.body
                    ])
                    .map_err(StoreError::sql(OP))?;
                if inserted == 0 {
                    report.duplicates += 1;
                } else {
                    report.new += 1;
                }
            }
        }
        tx.commit().map_err(StoreError::sql(OP))?;
        Ok(report)
    }

    fn read_features(
        &self,
        after: FeatureCursor,
        limit: usize,
    ) -> Result<(Vec<FeatureRow>, FeatureCursor), StoreError> {
        const OP: &str = "reading features";
        let conn = self.reader();
        let mut stmt = conn
            .prepare_cached(
                "SELECT id, ts_ms, account_id, request_id, body FROM features
                 WHERE id > ?1 ORDER BY id LIMIT ?2",
            )
            .map_err(StoreError::sql(OP))?;
        let limit = i64::try_from(limit.max(1)).unwrap_or(i64::MAX);
        let mut cursor = after;
        let rows = stmt
            .query_map(params![after.id, limit], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    FeatureRow {
                        ts: Timestamp::from_millis(r.get(1)?),
                        account_id: r.get(2)?,
                        request_id: r.get(3)?,
                        body: r.get(4)?,
                    },
                ))
            })
            .map_err(StoreError::sql(OP))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, row) = row.map_err(StoreError::sql(OP))?;
            cursor = FeatureCursor { txid: 0, id };
            out.push(row);
        }
        Ok((out, cursor))
    }
}

impl DetectionLog for SqliteStore {
    fn put_detections(
        &self,
        accounts: &[moat_types::AccountDetection],
        campaigns: &[moat_types::CampaignDetection],
        gone: &[String],
    ) -> Result<(), StoreError> {
        const OP: &str = "writing detections";
        let rows = crate::codec::detection_rows(accounts, campaigns)?;
        let mut conn = self.writer();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(StoreError::sql(OP))?;
        {
            let mut put = tx
                .prepare_cached(
                    "INSERT INTO detections (kind, id, line) VALUES (?1, ?2, ?3)
                     ON CONFLICT (kind, id) DO UPDATE SET line = excluded.line",
                )
                .map_err(StoreError::sql(OP))?;
            for (kind, id, line) in &rows {
                put.execute(params![kind, id, line])
                    .map_err(StoreError::sql(OP))?;
            }
            let mut del = tx
                .prepare_cached("DELETE FROM detections WHERE kind = 'campaign' AND id = ?1")
                .map_err(StoreError::sql(OP))?;
            for id in gone {
                del.execute(params![id]).map_err(StoreError::sql(OP))?;
            }
        }
        tx.commit().map_err(StoreError::sql(OP))
    }

    fn detections(&self) -> Result<Vec<moat_types::Detection>, StoreError> {
        const OP: &str = "reading detections";
        let conn = self.reader();
        let mut stmt = conn
            .prepare_cached(
                "SELECT rowid, line FROM detections
                 ORDER BY kind = 'campaign', CAST(id AS BLOB)",
            )
            .map_err(StoreError::sql(OP))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
            .map_err(StoreError::sql(OP))?;
        let mut out = Vec::new();
        for row in rows {
            let (n, line) = row.map_err(StoreError::sql(OP))?;
            out.push(crate::codec::decode_detection(&line, n)?);
        }
        Ok(out)
    }
}

#[cfg(test)]
fn file_version(path: &Path) -> u32 {
    use rusqlite::OptionalExtension;
    let conn = Connection::open(path).unwrap();
    conn.query_row("SELECT MAX(version) FROM schema_version", [], |r| {
        r.get::<_, Option<u32>>(0)
    })
    .optional()
    .unwrap()
    .flatten()
    .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::MAX_TOKENS_PER_EXCHANGE;
    use moat_types::{Message, Request, Response};

    fn exchange(account: &str, request_id: &str, ts_ms: i64, tokens: u64) -> Exchange {
        Exchange {
            v: 1,
            ts: Timestamp::from_millis(ts_ms),
            request_id: Some(request_id.to_owned()),
            account_id: account.to_owned(),
            api_key_id: None,
            client: None,
            request: Request {
                messages: vec![Message::text("user", "hi")],
                ..Request::default()
            },
            response: Some(Response {
                prompt_tokens: Some(tokens),
                completion_tokens: Some(tokens.saturating_mul(2)),
                reasoning_tokens: Some(tokens.saturating_mul(3)),
                ..Response::default()
            }),
        }
    }

    #[test]
    fn old_version_database_is_migrated_and_backfilled() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        {
            let v1 = SqliteStore::open_at(&path, 1).unwrap();
            assert_eq!(v1.schema_version().unwrap(), 1);
            // Version 1 has no accounts table, so append by hand what a v1 build would have.
            let conn = v1.writer();
            for (i, (acct, ts, tok)) in [("a", 10, 5), ("b", 20, 1), ("a", 30, 7)]
                .iter()
                .enumerate()
            {
                let x = exchange(acct, &format!("r{i}"), *ts, *tok);
                conn.execute(
                    "INSERT INTO exchanges (ts_ms, account_id, request_id, prompt_tokens,
                     completion_tokens, reasoning_tokens, record) VALUES (?1,?2,?3,?4,?5,?6,?7)",
                    params![
                        ts,
                        acct,
                        x.request_id,
                        *tok as i64,
                        2 * *tok as i64,
                        3 * *tok as i64,
                        serde_json::to_string(&x).unwrap()
                    ],
                )
                .unwrap();
            }
        }
        assert_eq!(file_version(&path), 1);

        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), 4);
        assert_eq!(file_version(&path), 4);
        assert_eq!(store.count_exchanges().unwrap(), 3);
        let accounts = store.account_summaries(&AccountQuery::default()).unwrap();
        let a = &accounts.items[0];
        assert_eq!((a.account_id.as_str(), a.exchanges), ("a", 2));
        assert_eq!(
            (a.first_seen.as_millis(), a.last_seen.as_millis()),
            (10, 30)
        );
        assert_eq!(
            (a.prompt_tokens, a.completion_tokens, a.reasoning_tokens),
            (12, 24, 36)
        );
        assert_eq!(accounts.items[1].account_id, "b");

        // The migrated store keeps working: appends update the backfilled aggregates.
        store
            .append_exchanges(&[exchange("b", "r9", 5, 1)])
            .unwrap();
        let b = &store
            .account_summaries(&AccountQuery::default())
            .unwrap()
            .items[1];
        assert_eq!((b.exchanges, b.first_seen.as_millis()), (2, 5));
    }

    #[test]
    fn failed_migration_leaves_the_database_unchanged() {
        static BROKEN: &[Migration] = &[
            Migration {
                version: 1,
                name: "ok",
                sql: "CREATE TABLE t (x INTEGER);",
            },
            Migration {
                version: 2,
                name: "broken",
                sql: "CREATE TABLE t (x INTEGER);",
            },
        ];
        let mut conn = Connection::open_in_memory().unwrap();
        let err = migrate_to(&mut conn, BROKEN, 2, Path::new(":memory:")).unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::Migration {
                    version: 2,
                    name: "broken",
                    ..
                }
            ),
            "{err}"
        );
        // Both migrations ran in one transaction, so neither the table nor the version stayed.
        let tables: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name = 't'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(tables, 0);
    }

    #[test]
    fn file_database_uses_wal() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("x.db")).unwrap();
        let mode: String = store
            .writer()
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }

    #[test]
    fn huge_token_counts_are_clamped_not_overflowed() {
        let store = SqliteStore::in_memory().unwrap();
        let batch: Vec<_> = (0..4)
            .map(|i| exchange("a", &format!("r{i}"), i, u64::MAX))
            .collect();
        store.append_exchanges(&batch).unwrap();
        let a = &store
            .account_summaries(&AccountQuery::default())
            .unwrap()
            .items[0];
        assert_eq!(a.prompt_tokens, 4 * MAX_TOKENS_PER_EXCHANGE);
        // The exact records are kept even though the summed columns were clamped.
        let page = store.exchanges(&ExchangeQuery::default()).unwrap();
        assert_eq!(page.items, batch);
    }
}

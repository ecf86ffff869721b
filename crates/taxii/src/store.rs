//! The TAXII server's objects and status resources, in SQLite: what a partner POSTs (or a
//! local `moat intel publish` adds) is checked object by object, stored in one transaction,
//! and read back page by page with TAXII's filters.
//!
//! Every stored version gets a `date_added` (a STIX timestamp with millisecond precision)
//! that is strictly increasing across the whole store, one millisecond at least between
//! versions, so that `added_after` paging is exact and the order of `date_added` is the
//! order of `seq`. Pages follow `seq`; a page's `next` token is the last `seq` it holds,
//! bound to the query that produced it and authenticated with a key kept in the database,
//! so a token from another query, or one a client made up, is refused (HTTP 400).
//!
//! Calls are blocking: an async caller runs them in `tokio::task::spawn_blocking`. A writer
//! and a reader connection (WAL) let reads go on while a POST is being stored.
//!
//! Not HTTP ([`crate::server`]) and not access control: callers check rights first.

use std::fmt;
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use moat_intel::ObjectMeta;
use moat_types::Timestamp;
use rusqlite::types::{Type, Value as SqlValue};
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, TransactionBehavior};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::{TaxiiError, STIX_MEDIA_TYPE};

/// The newest schema this code knows (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = 1;
/// How long status resources are kept (TAXII asks for at least 24 hours).
pub const STATUS_RETENTION_MS: i64 = 7 * Timestamp::DAY;

const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

const SCHEMA: &str = "
CREATE TABLE objects (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    collection TEXT NOT NULL,
    id TEXT NOT NULL,
    version TEXT NOT NULL,
    version_key TEXT NOT NULL,
    type TEXT NOT NULL,
    spec_version TEXT NOT NULL,
    date_added TEXT NOT NULL,
    json TEXT NOT NULL,
    UNIQUE (collection, id, version)
);
CREATE INDEX objects_by_collection ON objects (collection, seq);
CREATE INDEX objects_by_version ON objects (collection, id, version_key);
CREATE INDEX objects_by_date ON objects (date_added);
CREATE TABLE statuses (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    json TEXT NOT NULL,
    created TEXT NOT NULL
);
CREATE INDEX statuses_by_created ON statuses (created);
CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
";

/// TAXII's filter parameters of a read, already checked for syntax by the caller (the
/// store checks the timestamps and `next` again).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// `added_after`: only versions added after this STIX timestamp.
    pub added_after: Option<String>,
    /// `limit`: at most this many items (positive); `None` for all.
    pub limit: Option<usize>,
    /// `next`: the token of the previous page of the same query.
    pub next: Option<String>,
    /// `match[id]`: any of these ids (empty: any).
    pub ids: Vec<String>,
    /// `match[type]`: any of these types (empty: any).
    pub types: Vec<String>,
    /// `match[version]` (empty: `last`).
    pub versions: Vec<VersionMatch>,
    /// `match[spec_version]`: any of these (empty: any; every stored object is 2.1).
    pub spec_versions: Vec<String>,
}

/// One value of `match[version]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionMatch {
    /// `last`: the latest version of each object (the default).
    Last,
    /// `first`: the earliest version.
    First,
    /// `all`: every version (alone only).
    All,
    /// A STIX timestamp: the version with exactly this `modified` (or `created`).
    At(String),
}

impl VersionMatch {
    /// Parses one comma-separated item of `match[version]`; `None` when it is neither a
    /// keyword nor a STIX timestamp.
    pub fn parse(text: &str) -> Option<VersionMatch> {
        match text {
            "last" => Some(VersionMatch::Last),
            "first" => Some(VersionMatch::First),
            "all" => Some(VersionMatch::All),
            _ => parse_stix_time(text).map(|_| VersionMatch::At(text.to_owned())),
        }
    }
}

/// One page of a read.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The items, in the order they were added.
    pub items: Vec<T>,
    /// Whether more items match.
    pub more: bool,
    /// The token of the next page, when `more`.
    pub next: Option<String>,
    /// `date_added` of the first item (`X-TAXII-Date-Added-First`).
    pub date_added_first: Option<String>,
    /// `date_added` of the last item (`X-TAXII-Date-Added-Last`).
    pub date_added_last: Option<String>,
}

/// TAXII's `manifest-record`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestRecord {
    /// The object's id.
    pub id: String,
    /// When this version was added.
    pub date_added: String,
    /// The version (`modified`, else `created`, else `date_added`).
    pub version: String,
    /// Always the STIX 2.1 media type.
    pub media_type: String,
}

/// TAXII's `status` resource, for one POST of objects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusResource {
    /// Its id (a random UUID).
    pub id: String,
    /// `complete`: objects are stored when the POST is answered.
    pub status: String,
    /// When the request was received.
    pub request_timestamp: String,
    /// Objects in the request.
    pub total_count: u64,
    /// Objects stored (or already there, unchanged).
    pub success_count: u64,
    /// Those objects.
    pub successes: Vec<StatusDetail>,
    /// Objects refused.
    pub failure_count: u64,
    /// Those objects, each with why.
    pub failures: Vec<StatusDetail>,
    /// Always 0.
    pub pending_count: u64,
    /// Always empty.
    pub pendings: Vec<StatusDetail>,
}

/// TAXII's `status-details`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusDetail {
    /// The object's id (empty when it had none).
    pub id: String,
    /// Its version (empty when a refused object had none).
    pub version: String,
    /// Why it was refused, or a note on a success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The SQLite store of a TAXII server.
pub struct Store {
    path: String,
    writer: Mutex<Connection>,
    reader: Mutex<Connection>,
    key: [u8; 32],
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// What a read covers; part of what a `next` token is bound to.
#[derive(Clone, Copy)]
enum Scope<'a> {
    Objects,
    Manifest,
    Object(&'a str),
    Versions(&'a str),
}

struct Row {
    seq: i64,
    id: String,
    version: String,
    date_added: String,
    json: String,
}

impl Store {
    /// Opens (creating if needed) the store at `path`, in WAL mode, migrating its schema.
    pub fn open(path: &Path) -> Result<Store, TaxiiError> {
        let name = path.display().to_string();
        let db = |source| TaxiiError::Db {
            path: name.clone(),
            source,
        };
        let mut writer = Connection::open(path).map_err(db)?;
        writer.busy_timeout(BUSY_TIMEOUT).map_err(db)?;
        writer
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0))
            .map_err(db)?;
        writer
            .pragma_update(None, "synchronous", "NORMAL")
            .map_err(db)?;
        let key = migrate(&mut writer, &name)?;
        let reader = Connection::open(path).map_err(db)?;
        reader.busy_timeout(BUSY_TIMEOUT).map_err(db)?;
        Ok(Store {
            path: name,
            writer: Mutex::new(writer),
            reader: Mutex::new(reader),
            key,
        })
    }

    /// The database file.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Adds objects to `collection` as the local publisher (its status is not visible to
    /// any partner). See [`Store::add_objects_by`].
    pub fn add_objects(
        &self,
        collection: &str,
        objects: &[Value],
        now_ms: i64,
    ) -> Result<StatusResource, TaxiiError> {
        self.add_objects_by("", collection, objects, now_ms)
    }

    /// Adds objects to `collection` on behalf of partner `owner` (who alone may read the
    /// status back). Each object is checked ([`moat_intel::check_object`]); the good ones
    /// are stored in one transaction, a version already stored unchanged counts as a
    /// success that changes nothing, and every refusal is a failure naming why. The status
    /// resource is stored and returned.
    pub fn add_objects_by(
        &self,
        owner: &str,
        collection: &str,
        objects: &[Value],
        now_ms: i64,
    ) -> Result<StatusResource, TaxiiError> {
        let checked = objects
            .iter()
            .map(|o| (o, moat_intel::check_object(o).map_err(|e| e.to_string())))
            .collect();
        self.add_checked(owner, collection, checked, now_ms)
    }

    fn add_checked(
        &self,
        owner: &str,
        collection: &str,
        checked: Vec<(&Value, Result<ObjectMeta, String>)>,
        now_ms: i64,
    ) -> Result<StatusResource, TaxiiError> {
        let status_id = random_uuid()?;
        let total = checked.len();
        let mut successes = Vec::new();
        let mut failures = Vec::new();
        let mut conn = lock(&self.writer);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.db(e))?;
        let last: Option<String> = tx
            .query_row("SELECT MAX(date_added) FROM objects", [], |r| r.get(0))
            .map_err(|e| self.db(e))?;
        let mut next_ms = match last.and_then(|s| Timestamp::parse(&s).ok()) {
            Some(t) => now_ms.max(t.as_millis() + 1),
            None => now_ms,
        };
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO objects
                       (collection, id, version, version_key, type, spec_version, date_added, json)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .map_err(|e| self.db(e))?;
            let mut stored = tx
                .prepare_cached(
                    "SELECT json, date_added FROM objects
                     WHERE collection = ?1 AND id = ?2 AND version = ?3",
                )
                .map_err(|e| self.db(e))?;
            for (obj, meta) in checked {
                let meta = match meta {
                    Ok(meta) => meta,
                    Err(message) => {
                        failures.push(StatusDetail {
                            id: str_prop(obj, "id"),
                            version: object_version(obj),
                            message: Some(message),
                        });
                        continue;
                    }
                };
                let json = match serde_json::to_string(obj) {
                    Ok(json) => json,
                    Err(e) => {
                        failures.push(StatusDetail {
                            id: meta.id,
                            version: meta.version,
                            message: Some(format!("cannot be serialized: {e}")),
                        });
                        continue;
                    }
                };
                let date_added = format_ms(next_ms);
                let version_key = time_key(if meta.version.is_empty() {
                    &date_added
                } else {
                    &meta.version
                });
                let spec_version = if meta.spec_version.is_empty() {
                    "2.1"
                } else {
                    meta.spec_version.as_str()
                };
                let inserted = insert
                    .execute(params![
                        collection,
                        meta.id,
                        meta.version,
                        version_key,
                        meta.kind,
                        spec_version,
                        date_added,
                        json
                    ])
                    .map_err(|e| self.db(e))?;
                if inserted == 1 {
                    next_ms += 1;
                    successes.push(StatusDetail {
                        version: effective_version(&meta.version, &date_added),
                        id: meta.id,
                        message: None,
                    });
                    continue;
                }
                let (old_json, old_added): (String, String) = stored
                    .query_row(params![collection, meta.id, meta.version], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })
                    .map_err(|e| self.db(e))?;
                let same = serde_json::from_str::<Value>(&old_json).is_ok_and(|old| &old == obj);
                let detail = |message: &str| StatusDetail {
                    id: meta.id.clone(),
                    version: effective_version(&meta.version, &old_added),
                    message: Some(message.to_owned()),
                };
                if same {
                    successes.push(detail("already in the collection, unchanged"));
                } else {
                    failures.push(detail(
                        "a different object with this id and version is already in the collection",
                    ));
                }
            }
        }
        let status = StatusResource {
            id: status_id,
            status: "complete".to_owned(),
            request_timestamp: format_ms(now_ms),
            total_count: total as u64,
            success_count: successes.len() as u64,
            successes,
            failure_count: failures.len() as u64,
            failures,
            pending_count: 0,
            pendings: Vec::new(),
        };
        let json = serde_json::to_string(&status)
            .map_err(|e| self.db(rusqlite::Error::ToSqlConversionFailure(Box::new(e))))?;
        tx.execute(
            "DELETE FROM statuses WHERE created < ?1",
            [format_ms(now_ms.saturating_sub(STATUS_RETENTION_MS))],
        )
        .map_err(|e| self.db(e))?;
        tx.execute(
            "INSERT INTO statuses (id, owner, json, created) VALUES (?1, ?2, ?3, ?4)",
            params![status.id, owner, json, format_ms(now_ms)],
        )
        .map_err(|e| self.db(e))?;
        tx.commit().map_err(|e| self.db(e))?;
        Ok(status)
    }

    /// Objects of `collection` matching `filter` (TAXII's Get Objects).
    pub fn objects(&self, collection: &str, filter: &Filter) -> Result<Page<Value>, TaxiiError> {
        let rows = self.select(collection, Scope::Objects, filter, true)?;
        self.object_page(rows)
    }

    /// Manifest records of the objects of `collection` matching `filter`.
    pub fn manifest(
        &self,
        collection: &str,
        filter: &Filter,
    ) -> Result<Page<ManifestRecord>, TaxiiError> {
        let rows = self.select(collection, Scope::Manifest, filter, false)?;
        Ok(map_page(rows, |r| ManifestRecord {
            version: effective_version(&r.version, &r.date_added),
            id: r.id,
            date_added: r.date_added,
            media_type: STIX_MEDIA_TYPE.to_owned(),
        }))
    }

    /// Versions of object `id` in `collection` matching `filter` (its `ids` and `types` are
    /// not used); `None` when the collection has no version of it at all.
    pub fn object(
        &self,
        collection: &str,
        id: &str,
        filter: &Filter,
    ) -> Result<Option<Page<Value>>, TaxiiError> {
        if !self.has_object(collection, id)? {
            return Ok(None);
        }
        let rows = self.select(collection, Scope::Object(id), filter, true)?;
        self.object_page(rows).map(Some)
    }

    /// The versions of object `id` in `collection` (`added_after`, `limit`, `next` and
    /// `spec_versions` of `filter` apply); `None` when the collection does not hold it.
    pub fn versions(
        &self,
        collection: &str,
        id: &str,
        filter: &Filter,
    ) -> Result<Option<Page<String>>, TaxiiError> {
        if !self.has_object(collection, id)? {
            return Ok(None);
        }
        let rows = self.select(collection, Scope::Versions(id), filter, false)?;
        Ok(Some(map_page(rows, |r| {
            effective_version(&r.version, &r.date_added)
        })))
    }

    /// The status resource `id`, if it exists and partner `owner` made it.
    pub fn status(&self, id: &str, owner: &str) -> Result<Option<StatusResource>, TaxiiError> {
        let conn = lock(&self.reader);
        let json: Option<String> = conn
            .query_row(
                "SELECT json FROM statuses WHERE id = ?1 AND owner = ?2",
                params![id, owner],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.db(e))?;
        json.map(|j| {
            serde_json::from_str(&j).map_err(|e| {
                self.db(rusqlite::Error::FromSqlConversionFailure(
                    0,
                    Type::Text,
                    Box::new(e),
                ))
            })
        })
        .transpose()
    }

    fn has_object(&self, collection: &str, id: &str) -> Result<bool, TaxiiError> {
        let conn = lock(&self.reader);
        conn.query_row(
            "SELECT 1 FROM objects WHERE collection = ?1 AND id = ?2 LIMIT 1",
            params![collection, id],
            |_| Ok(()),
        )
        .optional()
        .map(|found| found.is_some())
        .map_err(|e| self.db(e))
    }

    fn object_page(&self, page: Page<Row>) -> Result<Page<Value>, TaxiiError> {
        let mut items = Vec::with_capacity(page.items.len());
        for row in &page.items {
            let value = serde_json::from_str(&row.json).map_err(|e| {
                self.db(rusqlite::Error::FromSqlConversionFailure(
                    0,
                    Type::Text,
                    Box::new(e),
                ))
            })?;
            items.push(value);
        }
        Ok(Page {
            items,
            more: page.more,
            next: page.next,
            date_added_first: page.date_added_first,
            date_added_last: page.date_added_last,
        })
    }

    /// The rows of one page of a read.
    fn select(
        &self,
        collection: &str,
        scope: Scope<'_>,
        filter: &Filter,
        with_json: bool,
    ) -> Result<Page<Row>, TaxiiError> {
        let added_after = match &filter.added_after {
            Some(text) => Some(
                parse_stix_time(text)
                    .map(|t| format_ms(t.ms))
                    .ok_or_else(|| bad_parameter("added_after", "not a STIX timestamp"))?,
            ),
            None => None,
        };
        if filter.limit == Some(0) {
            return Err(bad_parameter("limit", "must be a positive integer"));
        }
        let digest = query_digest(collection, scope, filter, added_after.as_deref())?;
        let after_seq = match &filter.next {
            Some(token) => self.open_token(token, &digest)?,
            None => 0,
        };

        let mut sql = format!(
            "SELECT o.seq, o.id, o.version, o.date_added, {} FROM objects o
             WHERE o.collection = ? AND o.seq > ?",
            if with_json { "o.json" } else { "''" }
        );
        let mut args: Vec<SqlValue> = vec![collection.to_owned().into(), after_seq.into()];
        if let Some(after) = added_after {
            sql.push_str(" AND o.date_added > ?");
            args.push(after.into());
        }
        match scope {
            Scope::Objects | Scope::Manifest => {
                in_list(&mut sql, &mut args, "o.id", &filter.ids);
                in_list(&mut sql, &mut args, "o.type", &filter.types);
            }
            Scope::Object(id) | Scope::Versions(id) => {
                sql.push_str(" AND o.id = ?");
                args.push(id.to_owned().into());
            }
        }
        in_list(&mut sql, &mut args, "o.spec_version", &filter.spec_versions);
        if !matches!(scope, Scope::Versions(_)) {
            version_clause(&mut sql, &mut args, &filter.versions, &filter.spec_versions)?;
        }
        sql.push_str(" ORDER BY o.seq");
        if let Some(limit) = filter.limit {
            sql.push_str(" LIMIT ?");
            args.push(
                i64::try_from(limit)
                    .unwrap_or(i64::MAX - 1)
                    .saturating_add(1)
                    .into(),
            );
        }

        let conn = lock(&self.reader);
        let mut stmt = conn.prepare(&sql).map_err(|e| self.db(e))?;
        let mut rows = stmt
            .query_map(params_from_iter(args), |r| {
                Ok(Row {
                    seq: r.get(0)?,
                    id: r.get(1)?,
                    version: r.get(2)?,
                    date_added: r.get(3)?,
                    json: r.get(4)?,
                })
            })
            .map_err(|e| self.db(e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.db(e))?;
        let more = filter.limit.is_some_and(|l| rows.len() > l);
        if let (true, Some(limit)) = (more, filter.limit) {
            rows.truncate(limit);
        }
        let next = match (more, rows.last()) {
            (true, Some(last)) => Some(self.seal_token(last.seq, &digest)),
            _ => None,
        };
        Ok(Page {
            more,
            next,
            date_added_first: rows.first().map(|r| r.date_added.clone()),
            date_added_last: rows.last().map(|r| r.date_added.clone()),
            items: rows,
        })
    }

    /// `next` token: `base64url(1 | seq (8 bytes, big-endian) | query digest (16) | mac (16))`
    /// with `mac = SHA-256(key | the 25 bytes before it)`. Every token has the same length,
    /// so the key-prefix MAC cannot be extended.
    fn seal_token(&self, seq: i64, digest: &[u8; 16]) -> String {
        let mut token = Vec::with_capacity(41);
        token.push(1u8);
        token.extend_from_slice(&seq.to_be_bytes());
        token.extend_from_slice(digest);
        let mac = self.mac(&token);
        token.extend_from_slice(&mac);
        URL_SAFE_NO_PAD.encode(token)
    }

    /// The `seq` a `next` token holds, if this store issued it for this query.
    fn open_token(&self, token: &str, digest: &[u8; 16]) -> Result<i64, TaxiiError> {
        let forged = || bad_parameter("next", "not a token this server issued");
        let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| forged())?;
        if bytes.len() != 41 || bytes[0] != 1 {
            return Err(forged());
        }
        let (body, mac) = bytes.split_at(25);
        if !bool::from(self.mac(body).ct_eq(mac)) {
            return Err(forged());
        }
        if body[9..25] != digest[..] {
            return Err(bad_parameter(
                "next",
                "issued for another query (send the other parameters unchanged)",
            ));
        }
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&body[1..9]);
        Ok(i64::from_be_bytes(seq))
    }

    fn mac(&self, body: &[u8]) -> [u8; 16] {
        let full = Sha256::new()
            .chain_update(self.key)
            .chain_update(body)
            .finalize();
        let mut mac = [0u8; 16];
        mac.copy_from_slice(&full[..16]);
        mac
    }

    fn db(&self, source: rusqlite::Error) -> TaxiiError {
        TaxiiError::Db {
            path: self.path.clone(),
            source,
        }
    }
}

fn lock(conn: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    // A panic while holding the lock rolled its transaction back when the guard's
    // transaction was dropped; the connection itself is still good.
    conn.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Creates or checks the schema; returns the paging key.
fn migrate(conn: &mut Connection, name: &str) -> Result<[u8; 32], TaxiiError> {
    let db = |source| TaxiiError::Db {
        path: name.to_owned(),
        source,
    };
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)?;
    let found: i64 = tx
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(db)?;
    if found > SCHEMA_VERSION {
        return Err(TaxiiError::StoreTooNew {
            path: name.to_owned(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    if found < 1 {
        tx.execute_batch(SCHEMA).map_err(db)?;
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|e| TaxiiError::Random(e.to_string()))?;
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('paging_key', ?1)",
            [&key[..]],
        )
        .map_err(db)?;
        tx.execute_batch("PRAGMA user_version = 1").map_err(db)?;
    }
    let key: Vec<u8> = tx
        .query_row("SELECT value FROM meta WHERE key = 'paging_key'", [], |r| {
            r.get(0)
        })
        .map_err(db)?;
    tx.commit().map_err(db)?;
    key.try_into().map_err(|_| {
        db(rusqlite::Error::FromSqlConversionFailure(
            0,
            Type::Blob,
            "paging key is not 32 bytes".into(),
        ))
    })
}

/// ` AND column IN (?, …)` when `values` is not empty.
fn in_list(sql: &mut String, args: &mut Vec<SqlValue>, column: &str, values: &[String]) {
    if values.is_empty() {
        return;
    }
    sql.push_str(" AND ");
    sql.push_str(column);
    sql.push_str(" IN (");
    for (i, v) in values.iter().enumerate() {
        sql.push_str(if i == 0 { "?" } else { ", ?" });
        args.push(v.clone().into());
    }
    sql.push(')');
}

/// The `match[version]` condition: `last` (the default) and `first` are the greatest and
/// least version of the same object (among the requested spec versions), a timestamp is an
/// exact version; several are ORed, `all` is no condition.
fn version_clause(
    sql: &mut String,
    args: &mut Vec<SqlValue>,
    versions: &[VersionMatch],
    spec_versions: &[String],
) -> Result<(), TaxiiError> {
    if versions.contains(&VersionMatch::All) {
        if versions.len() > 1 {
            return Err(bad_parameter(
                "match[version]",
                "all cannot be combined with other values",
            ));
        }
        return Ok(());
    }
    let versions = if versions.is_empty() {
        &[VersionMatch::Last][..]
    } else {
        versions
    };
    sql.push_str(" AND (");
    for (i, v) in versions.iter().enumerate() {
        if i > 0 {
            sql.push_str(" OR ");
        }
        match v {
            VersionMatch::Last | VersionMatch::First => {
                let agg = if *v == VersionMatch::Last {
                    "MAX"
                } else {
                    "MIN"
                };
                sql.push_str("o.version_key = (SELECT ");
                sql.push_str(agg);
                sql.push_str(
                    "(p.version_key) FROM objects p WHERE p.collection = o.collection AND p.id = o.id",
                );
                in_list(sql, args, "p.spec_version", spec_versions);
                sql.push(')');
            }
            VersionMatch::At(text) => {
                let t = parse_stix_time(text)
                    .ok_or_else(|| bad_parameter("match[version]", "not a STIX timestamp"))?;
                sql.push_str("o.version_key = ?");
                args.push(t.key.into());
            }
            VersionMatch::All => sql.push('1'),
        }
    }
    sql.push(')');
    Ok(())
}

/// What a `next` token is bound to: the scope and every filter but `limit` and `next`.
fn query_digest(
    collection: &str,
    scope: Scope<'_>,
    filter: &Filter,
    added_after: Option<&str>,
) -> Result<[u8; 16], TaxiiError> {
    let mut h = Sha256::new();
    let mut put = |s: &str| {
        h.update((s.len() as u64).to_be_bytes());
        h.update(s.as_bytes());
    };
    let (tag, object) = match scope {
        Scope::Objects => ("objects", ""),
        Scope::Manifest => ("manifest", ""),
        Scope::Object(id) => ("object", id),
        Scope::Versions(id) => ("versions", id),
    };
    put(tag);
    put(collection);
    put(object);
    put(added_after.unwrap_or(""));
    for list in [&filter.ids, &filter.types, &filter.spec_versions] {
        put(&list.len().to_string());
        for v in list {
            put(v);
        }
    }
    put(&filter.versions.len().to_string());
    for v in &filter.versions {
        match v {
            VersionMatch::Last => put("last"),
            VersionMatch::First => put("first"),
            VersionMatch::All => put("all"),
            VersionMatch::At(text) => {
                let t = parse_stix_time(text)
                    .ok_or_else(|| bad_parameter("match[version]", "not a STIX timestamp"))?;
                put(&t.key);
            }
        }
    }
    let full = h.finalize();
    let mut digest = [0u8; 16];
    digest.copy_from_slice(&full[..16]);
    Ok(digest)
}

fn map_page<T>(page: Page<Row>, f: impl FnMut(Row) -> T) -> Page<T> {
    Page {
        items: page.items.into_iter().map(f).collect(),
        more: page.more,
        next: page.next,
        date_added_first: page.date_added_first,
        date_added_last: page.date_added_last,
    }
}

fn bad_parameter(name: &str, reason: &str) -> TaxiiError {
    TaxiiError::BadParameter {
        name: name.to_owned(),
        reason: reason.to_owned(),
    }
}

/// A version as TAXII shows it: the object's own, else the date it was added.
fn effective_version(version: &str, date_added: &str) -> String {
    if version.is_empty() {
        date_added.to_owned()
    } else {
        version.to_owned()
    }
}

fn str_prop(obj: &Value, key: &str) -> String {
    obj.get(key)
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned()
}

/// `modified`, else `created`, else empty: the version of an object that was refused.
fn object_version(obj: &Value) -> String {
    let modified = str_prop(obj, "modified");
    if modified.is_empty() {
        str_prop(obj, "created")
    } else {
        modified
    }
}

/// A random (version 4) UUID.
fn random_uuid() -> Result<String, TaxiiError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| TaxiiError::Random(e.to_string()))?;
    Ok(uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .hyphenated()
        .to_string())
}

/// Milliseconds since the epoch as a STIX timestamp (`YYYY-MM-DDTHH:MM:SS.mmmZ`).
pub fn format_ms(ms: i64) -> String {
    Timestamp::from_millis(ms).to_string()
}

/// A checked STIX timestamp.
pub(crate) struct StixTime {
    /// Milliseconds since the epoch, finer precision dropped.
    pub(crate) ms: i64,
    /// A form that compares (as text) like the instants do, equal for equal instants:
    /// `YYYY-MM-DDTHH:MM:SS.` and the fraction without trailing zeros, padded to 9 digits.
    pub(crate) key: String,
}

/// Parses a STIX timestamp: `YYYY-MM-DDTHH:MM:SS[.s+]Z`, UTC, upper-case `T` and `Z`.
pub(crate) fn parse_stix_time(text: &str) -> Option<StixTime> {
    let b = text.as_bytes();
    if b.len() < 20 || b[b.len() - 1] != b'Z' {
        return None;
    }
    let shape = b[..19].iter().enumerate().all(|(i, &c)| match i {
        4 | 7 => c == b'-',
        10 => c == b'T',
        13 | 16 => c == b':',
        _ => c.is_ascii_digit(),
    });
    if !shape {
        return None;
    }
    let rest = text.get(19..text.len() - 1)?;
    let digits = if rest.is_empty() {
        ""
    } else {
        let d = rest.strip_prefix('.')?;
        if d.is_empty() || !d.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        d
    };
    let ms = Timestamp::parse(text).ok()?.as_millis();
    let mut fraction = digits.trim_end_matches('0').to_owned();
    while fraction.len() < 9 {
        fraction.push('0');
    }
    Some(StixTime {
        ms,
        key: format!("{}.{fraction}", text.get(..19)?),
    })
}

/// The comparable key of a stored version (itself when it is not a timestamp).
fn time_key(version: &str) -> String {
    parse_stix_time(version).map_or_else(|| version.to_owned(), |t| t.key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const C: &str = "91a7b528-80eb-42ed-a74d-c6fbd5a26116";
    const T0: i64 = 1_717_200_000_000; // 2024-06-01T00:00:00.000Z

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("taxii.db")).unwrap();
        (dir, store)
    }

    fn obj(kind: &str, n: u32, modified: &str) -> Value {
        json!({
            "type": kind,
            "spec_version": "2.1",
            "id": format!("{kind}--00000000-0000-4000-8000-{n:012}"),
            "created": "2024-01-01T00:00:00.000Z",
            "modified": modified,
            "name": format!("{kind} {n}"),
        })
    }

    fn meta(o: &Value) -> ObjectMeta {
        ObjectMeta {
            id: o["id"].as_str().unwrap().to_owned(),
            kind: o["type"].as_str().unwrap().to_owned(),
            version: o["modified"].as_str().unwrap_or("").to_owned(),
            spec_version: "2.1".to_owned(),
        }
    }

    /// Adds objects as if `check_object` accepted them all (these tests are about the store).
    fn add(store: &Store, objects: &[Value], now_ms: i64) -> StatusResource {
        let checked = objects.iter().map(|o| (o, Ok(meta(o)))).collect();
        store.add_checked("globex", C, checked, now_ms).unwrap()
    }

    fn all() -> Filter {
        Filter {
            versions: vec![VersionMatch::All],
            ..Filter::default()
        }
    }

    fn ids(page: &Page<Value>) -> Vec<String> {
        page.items
            .iter()
            .map(|o| {
                format!(
                    "{}@{}",
                    o["name"].as_str().unwrap(),
                    o["modified"].as_str().unwrap()
                )
            })
            .collect()
    }

    #[test]
    fn date_added_strictly_increases_even_when_the_clock_does_not() {
        let (_d, s) = store();
        let objects: Vec<Value> = (0..3)
            .map(|n| obj("campaign", n, "2024-01-02T00:00:00.000Z"))
            .collect();
        add(&s, &objects, T0);
        add(
            &s,
            &[obj("campaign", 9, "2024-01-02T00:00:00.000Z")],
            T0 - 5_000,
        );
        let page = s.manifest(C, &all()).unwrap();
        let added: Vec<&str> = page.items.iter().map(|m| m.date_added.as_str()).collect();
        assert_eq!(
            added,
            [
                "2024-06-01T00:00:00.000Z",
                "2024-06-01T00:00:00.001Z",
                "2024-06-01T00:00:00.002Z",
                "2024-06-01T00:00:00.003Z"
            ]
        );
    }

    #[test]
    fn duplicates_succeed_unchanged_and_conflicts_fail() {
        let (_d, s) = store();
        let a = obj("campaign", 1, "2024-01-02T00:00:00.000Z");
        let first = add(&s, std::slice::from_ref(&a), T0);
        assert_eq!(first.success_count, 1);
        let mut changed = a.clone();
        changed["name"] = json!("other");
        let again = add(&s, &[a.clone(), changed], T0 + 10);
        assert_eq!((again.success_count, again.failure_count), (1, 1));
        assert_eq!(
            again.successes[0].message.as_deref(),
            Some("already in the collection, unchanged")
        );
        assert!(again.failures[0]
            .message
            .as_deref()
            .unwrap()
            .contains("different object"));
        assert_eq!(s.objects(C, &all()).unwrap().items.len(), 1);
    }

    #[test]
    fn refused_objects_are_failures_with_the_checker_message() {
        let (_d, s) = store();
        let good = obj("campaign", 1, "2024-01-02T00:00:00.000Z");
        let bad =
            json!({"type": "campaign", "id": "campaign--x", "modified": "2024-01-03T00:00:00Z"});
        let checked = vec![
            (&good, Ok(meta(&good))),
            (&bad, Err("id: not a STIX identifier".to_owned())),
        ];
        let st = s.add_checked("globex", C, checked, T0).unwrap();
        assert_eq!(
            (st.total_count, st.success_count, st.failure_count),
            (2, 1, 1)
        );
        assert_eq!(st.failures[0].id, "campaign--x");
        assert_eq!(st.failures[0].version, "2024-01-03T00:00:00Z");
        assert_eq!(
            st.failures[0].message.as_deref(),
            Some("id: not a STIX identifier")
        );
        assert_eq!(st.status, "complete");
        assert_eq!(st.request_timestamp, "2024-06-01T00:00:00.000Z");
        // Only its owner sees it.
        assert_eq!(s.status(&st.id, "globex").unwrap(), Some(st.clone()));
        assert_eq!(s.status(&st.id, "initech").unwrap(), None);
        assert_eq!(s.status("nope", "globex").unwrap(), None);
    }

    #[test]
    fn paging_with_limit_and_next_visits_everything_once() {
        let (_d, s) = store();
        let objects: Vec<Value> = (0..5)
            .map(|n| obj("campaign", n, "2024-01-02T00:00:00.000Z"))
            .collect();
        add(&s, &objects, T0);
        let mut filter = Filter {
            limit: Some(2),
            ..Filter::default()
        };
        let mut seen = Vec::new();
        let mut pages = 0;
        loop {
            let page = s.objects(C, &filter).unwrap();
            pages += 1;
            seen.extend(ids(&page));
            if !page.more {
                assert!(page.next.is_none());
                break;
            }
            filter.next = page.next;
        }
        assert_eq!(pages, 3);
        assert_eq!(seen.len(), 5);
        assert_eq!(seen[0], "campaign 0@2024-01-02T00:00:00.000Z");
        assert_eq!(seen[4], "campaign 4@2024-01-02T00:00:00.000Z");
    }

    #[test]
    fn forged_or_foreign_next_tokens_are_refused() {
        let (_d, s) = store();
        let objects: Vec<Value> = (0..3)
            .map(|n| obj("campaign", n, "2024-01-02T00:00:00.000Z"))
            .collect();
        add(&s, &objects, T0);
        let f = Filter {
            limit: Some(1),
            ..Filter::default()
        };
        let token = s.objects(C, &f).unwrap().next.unwrap();
        for bad in ["", "abc", "!!!!", &format!("{token}A")] {
            let f = Filter {
                next: Some(bad.to_owned()),
                ..f.clone()
            };
            let err = s.objects(C, &f).unwrap_err().to_string();
            assert!(err.starts_with("next:"), "{bad}: {err}");
        }
        // One changed bit of the sequence number breaks the MAC.
        let mut raw = URL_SAFE_NO_PAD.decode(&token).unwrap();
        raw[8] ^= 1;
        let f2 = Filter {
            next: Some(URL_SAFE_NO_PAD.encode(raw)),
            ..f.clone()
        };
        assert!(s.objects(C, &f2).is_err());
        // The same token with another filter, or on the manifest, is refused.
        let other = Filter {
            next: Some(token.clone()),
            types: vec!["indicator".into()],
            ..f.clone()
        };
        assert!(s
            .objects(C, &other)
            .unwrap_err()
            .to_string()
            .contains("another query"));
        let manifest = Filter {
            next: Some(token.clone()),
            ..f.clone()
        };
        assert!(s.manifest(C, &manifest).is_err());
        // A changed limit keeps the token valid.
        let more = Filter {
            next: Some(token),
            limit: Some(10),
            ..Filter::default()
        };
        assert_eq!(s.objects(C, &more).unwrap().items.len(), 2);
    }

    #[test]
    fn tokens_survive_reopening_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("taxii.db");
        let f = Filter {
            limit: Some(1),
            ..Filter::default()
        };
        let token = {
            let s = Store::open(&path).unwrap();
            let objects: Vec<Value> = (0..2)
                .map(|n| obj("campaign", n, "2024-01-02T00:00:00.000Z"))
                .collect();
            add(&s, &objects, T0);
            s.objects(C, &f).unwrap().next.unwrap()
        };
        let s = Store::open(&path).unwrap();
        let f = Filter {
            next: Some(token),
            ..f
        };
        assert_eq!(s.objects(C, &f).unwrap().items.len(), 1);
    }

    #[test]
    fn match_version_first_last_all_and_exact() {
        let (_d, s) = store();
        add(&s, &[obj("campaign", 1, "2024-01-02T00:00:00.000Z")], T0);
        add(&s, &[obj("campaign", 1, "2024-01-03T00:00:00Z")], T0 + 1);
        add(&s, &[obj("campaign", 1, "2024-01-02T12:00:00.5Z")], T0 + 2);
        let with = |versions: Vec<VersionMatch>| {
            let f = Filter {
                versions,
                ..Filter::default()
            };
            ids(&s.objects(C, &f).unwrap())
        };
        assert_eq!(with(vec![]), ["campaign 1@2024-01-03T00:00:00Z"]);
        assert_eq!(
            with(vec![VersionMatch::First]),
            ["campaign 1@2024-01-02T00:00:00.000Z"]
        );
        assert_eq!(with(vec![VersionMatch::All]).len(), 3);
        assert_eq!(
            with(vec![VersionMatch::First, VersionMatch::Last]),
            [
                "campaign 1@2024-01-02T00:00:00.000Z",
                "campaign 1@2024-01-03T00:00:00Z"
            ]
        );
        // Exact versions compare as instants: .5 is .500.
        assert_eq!(
            with(vec![VersionMatch::At("2024-01-02T12:00:00.500Z".into())]),
            ["campaign 1@2024-01-02T12:00:00.5Z"]
        );
        let both = Filter {
            versions: vec![VersionMatch::All, VersionMatch::Last],
            ..Filter::default()
        };
        assert!(s.objects(C, &both).is_err());
        let versions = s.versions(
            C,
            "campaign--00000000-0000-4000-8000-000000000001",
            &Filter::default(),
        );
        assert_eq!(
            versions.unwrap().unwrap().items,
            [
                "2024-01-02T00:00:00.000Z",
                "2024-01-03T00:00:00Z",
                "2024-01-02T12:00:00.5Z"
            ]
        );
        assert_eq!(
            s.versions(C, "campaign--nope", &Filter::default()).unwrap(),
            None
        );
        assert_eq!(
            s.object(
                "other-collection",
                "campaign--00000000-0000-4000-8000-000000000001",
                &Filter::default()
            )
            .unwrap(),
            None
        );
    }

    #[test]
    fn added_after_type_id_and_spec_version_filter() {
        let (_d, s) = store();
        add(&s, &[obj("campaign", 1, "2024-01-02T00:00:00.000Z")], T0);
        add(
            &s,
            &[obj("identity", 2, "2024-01-02T00:00:00.000Z")],
            T0 + 10,
        );
        add(
            &s,
            &[obj("campaign", 3, "2024-01-02T00:00:00.000Z")],
            T0 + 20,
        );
        let count = |f: Filter| s.objects(C, &f).unwrap().items.len();
        let after = |t: &str| Filter {
            added_after: Some(t.into()),
            ..Filter::default()
        };
        assert_eq!(count(after("2024-06-01T00:00:00.000Z")), 2);
        assert_eq!(count(after("2024-06-01T00:00:00.0099Z")), 2);
        assert_eq!(count(after("2024-06-01T00:00:00.010Z")), 1);
        assert_eq!(count(after("2024-06-01T00:00:00.0101Z")), 1);
        assert!(s.objects(C, &after("2024-06-01")).is_err());
        assert_eq!(
            count(Filter {
                types: vec!["campaign".into()],
                ..Filter::default()
            }),
            2
        );
        assert_eq!(
            count(Filter {
                ids: vec![
                    "identity--00000000-0000-4000-8000-000000000002".into(),
                    "x".into()
                ],
                ..Filter::default()
            }),
            1
        );
        assert_eq!(
            count(Filter {
                spec_versions: vec!["2.1".into()],
                ..Filter::default()
            }),
            3
        );
        assert_eq!(
            count(Filter {
                spec_versions: vec!["2.0".into()],
                ..Filter::default()
            }),
            0
        );
        let page = s.objects(C, &Filter::default()).unwrap();
        assert_eq!(
            page.date_added_first.as_deref(),
            Some("2024-06-01T00:00:00.000Z")
        );
        assert_eq!(
            page.date_added_last.as_deref(),
            Some("2024-06-01T00:00:00.020Z")
        );
    }

    #[test]
    fn stix_timestamps_are_strict_and_keys_order_like_instants() {
        assert!(parse_stix_time("2024-01-02T03:04:05Z").is_some());
        assert!(parse_stix_time("2024-01-02T03:04:05.123456Z").is_some());
        for bad in [
            "2024-01-02t03:04:05Z",
            "2024-01-02T03:04:05+00:00",
            "2024-01-02T03:04:05.Z",
            "2024-02-30T03:04:05Z",
            "2024-01-02 03:04:05Z",
            "",
        ] {
            assert!(parse_stix_time(bad).is_none(), "{bad}");
        }
        let key = |s: &str| parse_stix_time(s).unwrap().key;
        assert_eq!(key("2024-01-02T03:04:05Z"), key("2024-01-02T03:04:05.000Z"));
        assert!(key("2024-01-02T03:04:05.5Z") < key("2024-01-02T03:04:05.5000000001Z"));
        assert!(key("2024-01-02T03:04:05Z") < key("2024-01-02T03:04:05.001Z"));
        assert!(key("2024-01-02T03:04:05.999Z") < key("2024-01-02T03:04:06Z"));
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("taxii.db");
        drop(Store::open(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("PRAGMA user_version = 99").unwrap();
        drop(conn);
        let err = Store::open(&path).unwrap_err();
        assert!(
            matches!(err, TaxiiError::StoreTooNew { found: 99, .. }),
            "{err}"
        );
    }
}

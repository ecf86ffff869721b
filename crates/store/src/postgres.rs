//! [`PostgresStore`]: the PostgreSQL backend, for scale-out mode, where several gateways and
//! workers share one database.
//!
//! It mirrors [`crate::SqliteStore`] table for table and method for method (the schema is
//! [`crate::migrate::POSTGRES_MIGRATIONS`]): one writer and one reader session, each behind a
//! mutex so that `&self` methods are `Send + Sync`; one transaction per append; a batch sent as
//! one statement per thousand records (`unnest` of column arrays, so a batch costs a few round
//! trips, not one per record); keyset pages by `(ts_ms, id)`. Migrations run at connect, in one
//! transaction under an advisory lock per schema, so that processes starting at once take
//! turns. A session found closed (server restart, network cut) is reopened by the next call;
//! the call that met the break fails.
//!
//! Not here: TLS (the client uses `NoTls`: reach the server over loopback, a Unix socket or a
//! private network), connection pools (two sessions per store are enough for one recorder
//! thread and the admin API), and anything SQLite.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use moat_types::{Exchange, Timestamp};
use postgres::config::Host;
use postgres::types::{FromSql, ToSql};
use postgres::{Client, Config, GenericClient, NoTls, Row, Statement};

use crate::codec::{
    decode_exchange, decode_list, encode, from_sql_count, now_ms, to_sql_count, EXPORT_CHUNK,
};
use crate::error::pg_reason;
use crate::migrate::{self, Migration, POSTGRES_MIGRATIONS};
use crate::model::clamp_limit;
use crate::{
    AccountQuery, AccountSummary, AppendReport, AuditEntry, AuditQuery, Cursor, DecisionQuery,
    DecisionRecord, DetectionLog, ExchangeQuery, ExportSink, FeatureCursor, FeatureLog, FeatureRow,
    Order, Page, Store, StoreError,
};

/// How long connecting may take when the connection string does not say (`connect_timeout`);
/// without one, an unreachable host would hang the gateway's start.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// First key of the migration advisory lock ("moat" in ASCII); the second is a hash of the
/// schema name, so that migrations of different schemas do not wait for each other.
const MIGRATION_LOCK_CLASS: i32 = 0x6d6f_6174;

/// First key of the leadership advisory locks ("lead" in ASCII); the second is a hash of the
/// schema and role name.
const LEADER_LOCK_CLASS: i32 = 0x6c65_6164;

/// Records per insert statement: bounds the size of one statement's parameters.
const INSERT_CHUNK: usize = 1_000;

/// PostgreSQL's identifier length limit (`NAMEDATALEN - 1`), in bytes.
const MAX_SCHEMA_NAME: usize = 63;

/// The PostgreSQL backend.
///
/// Blocking, like every [`Store`]: call it from a plain thread or `spawn_blocking`, never from
/// async code, where the driver's own runtime panics. Dropping it is safe anywhere.
///
/// Strings are kept as their UTF-8 bytes (`BYTEA`), so every record the SQLite backend accepts
/// round-trips here too, NUL characters included, and the account listing is in code point
/// order whatever the database's collation.
pub struct PostgresStore {
    target: Target,
    /// `None` after a failed reconnect (the next call tries again) and during drop.
    writer: Mutex<Option<Session>>,
    reader: Mutex<Option<Session>>,
}

/// Where the sessions go: the parsed connection string, the schema and a description for
/// messages (which never holds the password).
struct Target {
    config: Config,
    schema: Option<String>,
    description: String,
}

/// One connection and the statements prepared on it.
struct Session {
    client: Client,
    statements: HashMap<String, Statement>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Writer,
    /// Read-only by default, so that a mistake in a query cannot write.
    Reader,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The config holds the password; show only the description, which never does.
        f.debug_struct("PostgresStore")
            .field("database", &self.target.description)
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects to a PostgreSQL database and brings its schema up to date.
    ///
    /// `url` is a key=value string (`host=127.0.0.1 user=moat dbname=moat`) or a URL
    /// (`postgres://moat@127.0.0.1/moat`). Tables go in the first schema of the session's
    /// `search_path` (normally `public`). Fails with [`StoreError::SchemaTooNew`] for a schema
    /// written by a newer build, and with [`StoreError::Postgres`] naming the server (never the
    /// password) when the server cannot be reached.
    pub fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_at(url, None, migrate::latest_version(POSTGRES_MIGRATIONS))
    }

    /// Like [`PostgresStore::connect`], but keeps the tables in `schema`, created if missing,
    /// so that several stores (or test runs) can share one database.
    ///
    /// `schema` must be 1 to 63 ASCII letters, digits or underscores, not starting with a digit.
    pub fn connect_schema(url: &str, schema: &str) -> Result<Self, StoreError> {
        check_schema_name(schema)?;
        Self::connect_at(
            url,
            Some(schema),
            migrate::latest_version(POSTGRES_MIGRATIONS),
        )
    }

    /// The database this store uses, as shown in messages: server, database, user and schema,
    /// never the password.
    pub fn database(&self) -> &str {
        &self.target.description
    }

    /// Connects and migrates up to `target` only; tests use it to build old versions.
    fn connect_at(url: &str, schema: Option<&str>, target: u32) -> Result<Self, StoreError> {
        let mut config: Config = url.parse().map_err(|e| StoreError::Postgres {
            what: "parsing the connection string".to_owned(),
            reason: parse_reason(&e),
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(DEFAULT_CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("moat");
        }
        let target_db = Target {
            description: describe(&config, schema),
            schema: schema.map(str::to_owned),
            config,
        };
        let mut writer = target_db.open(Role::Writer)?;
        migrate_to(&mut writer.client, POSTGRES_MIGRATIONS, target, &target_db)?;
        let reader = target_db.open(Role::Reader)?;
        Ok(PostgresStore {
            target: target_db,
            writer: Mutex::new(Some(writer)),
            reader: Mutex::new(Some(reader)),
        })
    }

    /// Runs `f` on the writer or reader session under its lock, opening a new session first if
    /// there is none or the last one was closed (server restart, network cut).
    fn with_session<T>(
        &self,
        role: Role,
        f: impl FnOnce(&mut Session) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let slot = match role {
            Role::Writer => &self.writer,
            Role::Reader => &self.reader,
        };
        // A panic while the lock was held cannot leave a half-written batch behind (the driver
        // rolls a dropped transaction back), so a poisoned session is still good to use.
        let mut slot = slot.lock().unwrap_or_else(PoisonError::into_inner);
        let session = match slot.take() {
            Some(open) if !open.client.is_closed() => slot.insert(open),
            closed => {
                if closed.is_some() {
                    tracing::warn!(
                        database = %self.target.description,
                        role = ?role,
                        "postgres session closed, reconnecting"
                    );
                }
                // On failure the slot stays empty and the next call tries again.
                slot.insert(self.target.open(role)?)
            }
        };
        f(session)
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        // Closing a `postgres::Client` runs its own small tokio runtime, which panics inside an
        // async context; close the sessions on a thread of their own, so that the last owner
        // of a store may be async code (an `Arc` dropped by a handler at shutdown).
        let sessions = [&mut self.writer, &mut self.reader].map(|slot| {
            slot.get_mut()
                .unwrap_or_else(PoisonError::into_inner)
                .take()
        });
        if sessions.iter().all(Option::is_none) {
            return;
        }
        let closing = std::thread::Builder::new()
            .name("moat-pg-close".to_owned())
            .spawn(move || drop(sessions));
        // If no thread could be started the sessions were dropped here, as a plain drop would.
        if let Ok(thread) = closing {
            let _ = thread.join();
        }
    }
}

impl Target {
    /// Opens a session: connects, then points `search_path` at the schema.
    fn open(&self, role: Role) -> Result<Session, StoreError> {
        let failed = |e: postgres::Error| StoreError::Postgres {
            what: format!("connecting to {}", self.description),
            reason: pg_reason(&e),
        };
        let mut client = self.config.connect(NoTls).map_err(failed)?;
        let mut setup = String::new();
        if let Some(schema) = &self.schema {
            // The schema may not exist yet (migrations create it); search_path allows that.
            setup.push_str(&format!("SET search_path TO {};", quote_ident(schema)));
        }
        if role == Role::Reader {
            setup.push_str("SET default_transaction_read_only = on;");
        }
        if !setup.is_empty() {
            client.batch_execute(&setup).map_err(failed)?;
        }
        Ok(Session {
            client,
            statements: HashMap::new(),
        })
    }
}

impl Session {
    /// Prepares `sql` once per connection; the statements are a handful of fixed texts.
    fn prepare(&mut self, sql: &str) -> Result<Statement, postgres::Error> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(sql)?;
        self.statements.insert(sql.to_owned(), s.clone());
        Ok(s)
    }
}

/// Why a connection string did not parse, without the character the parser stopped at: in
/// `password hunter2` (a missing `=`), that is the first character of the password.
fn parse_reason(e: &postgres::Error) -> String {
    let mut reason = pg_reason(e);
    if let Some(at) = reason.find(" but got ") {
        reason.truncate(at);
    }
    reason
}

/// Refuses a schema name that would need quoting rules or exceed PostgreSQL's limit.
fn check_schema_name(schema: &str) -> Result<(), StoreError> {
    let ok = schema.len() <= MAX_SCHEMA_NAME
        && schema
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && schema.bytes().next().is_some_and(|b| !b.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(StoreError::Postgres {
            what: "checking the schema name".to_owned(),
            reason: format!(
                "{schema:?} is not 1 to {MAX_SCHEMA_NAME} ASCII letters, digits or underscores \
                 starting with a letter or underscore"
            ),
        })
    }
}

/// An identifier quoted for SQL text (names are checked, but quoting keeps the case).
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `postgres://user@host:port/dbname schema NAME`, never the password.
fn describe(config: &Config, schema: Option<&str>) -> String {
    let ports = config.get_ports();
    // As in libpq, one port applies to every host; none means the default.
    let port = |i: usize| ports.get(i).or(ports.first()).copied().unwrap_or(5432);
    let mut hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| match host {
            Host::Tcp(name) => format!("{name}:{}", port(i)),
            #[cfg(unix)]
            Host::Unix(dir) => format!("{}:{}", dir.display(), port(i)),
        })
        .collect();
    if hosts.is_empty() {
        hosts = config
            .get_hostaddrs()
            .iter()
            .enumerate()
            .map(|(i, addr)| format!("{addr}:{}", port(i)))
            .collect();
    }
    let user = config
        .get_user()
        .map(|u| format!("{u}@"))
        .unwrap_or_default();
    let dbname = config.get_dbname().unwrap_or_default();
    let mut text = format!("postgres://{user}{}/{dbname}", hosts.join(","));
    if let Some(schema) = schema {
        text.push_str(&format!(" schema {schema}"));
    }
    text
}

/// Creates the schema if needed and applies the migrations of `list` above its version, up to
/// `target`, in one transaction that holds an advisory lock on the schema, so that two
/// processes starting at once do not both migrate (the second waits, then finds nothing to do).
fn migrate_to(
    client: &mut Client,
    list: &'static [Migration],
    target: u32,
    db: &Target,
) -> Result<(), StoreError> {
    let mut tx = client
        .transaction()
        .map_err(StoreError::pg("starting migrations"))?;
    // Released at commit or rollback. Without a named schema the lock is on the session's
    // current schema, where the tables go.
    tx.execute(
        "SELECT pg_advisory_xact_lock($1, hashtext(coalesce($2::TEXT, current_schema()::TEXT, '')))",
        &[&MIGRATION_LOCK_CLASS, &db.schema],
    )
    .map_err(StoreError::pg("taking the migration lock"))?;
    if let Some(schema) = &db.schema {
        // Checked first rather than `CREATE SCHEMA IF NOT EXISTS`, which requires the CREATE
        // privilege on the database even when the schema exists.
        let exists: bool = tx
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)",
                &[schema],
            )
            .and_then(|r| r.try_get(0))
            .map_err(StoreError::pg("looking up the schema"))?;
        if !exists {
            tx.batch_execute(&format!("CREATE SCHEMA {}", quote_ident(schema)))
                .map_err(StoreError::pg("creating the schema"))?;
        }
    }
    tx.batch_execute(migrate::SCHEMA_VERSION_TABLE)
        .map_err(StoreError::pg("creating the schema_version table"))?;
    let current = read_version(&mut tx)?;
    let now = now_ms();
    for m in migrate::pending(list, current, &db.description)? {
        if m.version > target {
            break;
        }
        let failed = |e: postgres::Error| StoreError::PostgresMigration {
            version: m.version,
            name: m.name,
            reason: pg_reason(&e),
        };
        let version = i32::try_from(m.version).unwrap_or(i32::MAX);
        tx.batch_execute(m.sql).map_err(failed)?;
        tx.execute(
            "INSERT INTO schema_version (version, name, applied_at_ms) VALUES ($1, $2, $3)",
            &[&version, &m.name, &now],
        )
        .map_err(failed)?;
        tracing::info!(
            version = m.version,
            name = m.name,
            database = %db.description,
            "applied store migration"
        );
    }
    tx.commit().map_err(StoreError::pg("committing migrations"))
}

fn read_version(client: &mut impl GenericClient) -> Result<u32, StoreError> {
    let v: i32 = client
        .query_one("SELECT COALESCE(MAX(version), 0) FROM schema_version", &[])
        .and_then(|r| r.try_get(0))
        .map_err(StoreError::pg("reading the schema version"))?;
    // A negative version can only come from outside; reading it as "too new" refuses to touch
    // the schema, the safe side.
    Ok(u32::try_from(v).unwrap_or(u32::MAX))
}

/// Reads the columns of one row, turning driver and UTF-8 errors into [`StoreError`]s that
/// name the table and row but not the content.
struct Cells<'r> {
    row: &'r Row,
    table: &'static str,
    id: i64,
    op: &'static str,
}

impl Cells<'_> {
    fn get<'a, T: FromSql<'a>>(&'a self, column: &str) -> Result<T, StoreError> {
        self.row.try_get(column).map_err(StoreError::pg(self.op))
    }

    fn string(&self, column: &str) -> Result<String, StoreError> {
        let bytes: Vec<u8> = self.get(column)?;
        String::from_utf8(bytes).map_err(|_| StoreError::CorruptRow {
            table: self.table,
            id: self.id,
            reason: format!("column {column} is not UTF-8"),
        })
    }

    fn opt_string(&self, column: &str) -> Result<Option<String>, StoreError> {
        match self.get::<Option<Vec<u8>>>(column)? {
            None => Ok(None),
            Some(bytes) => String::from_utf8(bytes)
                .map(Some)
                .map_err(|_| StoreError::CorruptRow {
                    table: self.table,
                    id: self.id,
                    reason: format!("column {column} is not UTF-8"),
                }),
        }
    }
}

/// An optional string as an optional `BYTEA` parameter.
fn opt_bytes(s: &Option<String>) -> Option<&[u8]> {
    s.as_deref().map(str::as_bytes)
}

/// A time-ordered listing of one table: the shared keyset pagination of exchanges, decisions
/// and audit entries, as in the SQLite backend.
struct Listing<'a> {
    table: &'static str,
    columns: &'static str,
    /// `column = $n` filters on `BYTEA` columns; names are fixed strings of this module.
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
        session: &mut Session,
        op: &'static str,
        mut decode: impl FnMut(&Cells<'_>) -> Result<T, StoreError>,
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
        let since = self.since.map_or(i64::MIN, Timestamp::as_millis);
        let until = self.until.map_or(i64::MAX, Timestamp::as_millis);
        // One row more than the page tells whether a next page exists.
        let fetch = i64::try_from(limit + 1).unwrap_or(i64::MAX);
        let values: Vec<&[u8]> = self.filters.iter().map(|(_, v)| v.as_bytes()).collect();

        let mut sql = format!(
            "SELECT id, ts_ms, {} FROM {} WHERE ts_ms >= $1 AND ts_ms < $2 AND (ts_ms, id) {cmp} ($3, $4)",
            self.columns, self.table
        );
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&since, &until, &after_ts, &after_id];
        for ((column, _), value) in self.filters.iter().zip(&values) {
            params.push(value);
            sql.push_str(&format!(" AND {column} = ${}", params.len()));
        }
        params.push(&fetch);
        sql.push_str(&format!(
            " ORDER BY ts_ms {dir}, id {dir} LIMIT ${}",
            params.len()
        ));

        let stmt = session.prepare(&sql).map_err(StoreError::pg(op))?;
        let rows = session
            .client
            .query(&stmt, &params)
            .map_err(StoreError::pg(op))?;
        let mut items = Vec::with_capacity(rows.len().min(limit));
        let mut last = None;
        for row in rows.iter().take(limit) {
            let id: i64 = row.try_get(0).map_err(StoreError::pg(op))?;
            let ts: i64 = row.try_get(1).map_err(StoreError::pg(op))?;
            items.push(decode(&Cells {
                row,
                table: self.table,
                id,
                op,
            })?);
            last = Some((ts, id));
        }
        let next = match (rows.len() > limit, last) {
            (true, Some((ts, id))) => Some(Cursor::from_position(ts, id)),
            _ => None,
        };
        Ok(Page { items, next })
    }
}

/// Inserts a chunk of exchanges, skipping known request ids (the first of a batch wins, since
/// rows go in batch order), adds the new ones to their accounts' aggregates, and returns how
/// many were new. Accounts are upserted in id order so that concurrent writers lock them in
/// the same order and cannot deadlock on them.
const INSERT_EXCHANGES: &str = "
WITH inserted AS (
    INSERT INTO exchanges
        (ts_ms, account_id, request_id, prompt_tokens, completion_tokens, reasoning_tokens, record)
    SELECT ts_ms, account_id, request_id, prompt_tokens, completion_tokens, reasoning_tokens, record
    FROM unnest($1::BIGINT[], $2::BYTEA[], $3::BYTEA[], $4::BIGINT[], $5::BIGINT[], $6::BIGINT[],
                $7::TEXT[])
        WITH ORDINALITY AS batch (ts_ms, account_id, request_id, prompt_tokens,
                                  completion_tokens, reasoning_tokens, record, seq)
    ORDER BY seq
    ON CONFLICT (request_id) WHERE request_id IS NOT NULL DO NOTHING
    RETURNING account_id, ts_ms, prompt_tokens, completion_tokens, reasoning_tokens
), summed AS (
    INSERT INTO accounts AS a
        (account_id, exchanges, first_seen_ms, last_seen_ms, prompt_tokens, completion_tokens,
         reasoning_tokens)
    SELECT account_id, count(*), min(ts_ms), max(ts_ms), sum(prompt_tokens)::BIGINT,
           sum(completion_tokens)::BIGINT, sum(reasoning_tokens)::BIGINT
    FROM inserted GROUP BY account_id ORDER BY account_id
    ON CONFLICT (account_id) DO UPDATE SET
        exchanges = a.exchanges + excluded.exchanges,
        first_seen_ms = least(a.first_seen_ms, excluded.first_seen_ms),
        last_seen_ms = greatest(a.last_seen_ms, excluded.last_seen_ms),
        prompt_tokens = a.prompt_tokens + excluded.prompt_tokens,
        completion_tokens = a.completion_tokens + excluded.completion_tokens,
        reasoning_tokens = a.reasoning_tokens + excluded.reasoning_tokens
)
SELECT count(*) FROM inserted";

/// Inserts a chunk of decisions, skipping known `(request_id, ts)` pairs.
const INSERT_DECISIONS: &str = "
INSERT INTO decisions
    (ts_ms, request_id, account_id, campaign_id, rule, actions, shadow, risk, enforced, detail)
SELECT ts_ms, request_id, account_id, campaign_id, rule, actions, shadow, risk, enforced, detail
FROM unnest($1::BIGINT[], $2::BYTEA[], $3::BYTEA[], $4::BYTEA[], $5::BYTEA[], $6::TEXT[],
            $7::TEXT[], $8::DOUBLE PRECISION[], $9::BOOLEAN[], $10::BYTEA[])
    WITH ORDINALITY AS batch (ts_ms, request_id, account_id, campaign_id, rule, actions, shadow,
                              risk, enforced, detail, seq)
ORDER BY seq
ON CONFLICT (request_id, ts_ms) WHERE request_id IS NOT NULL DO NOTHING";

const INSERT_AUDIT: &str = "INSERT INTO audit (ts_ms, actor, action, target, detail)
VALUES ($1, $2, $3, $4, $5)";

const EXPORT_EXCHANGES: &str = "SELECT ts_ms, id, record FROM exchanges
WHERE ts_ms >= $1 AND (ts_ms, id) > ($2, $3)
ORDER BY ts_ms, id LIMIT $4";

const ACCOUNT_COLUMNS: &str = "account_id, exchanges, first_seen_ms, last_seen_ms, \
                               prompt_tokens, completion_tokens, reasoning_tokens";

/// `new` and `duplicates` of a chunk from how many of its records were stored.
fn chunk_report(report: &mut AppendReport, chunk_len: usize, stored: u64) {
    let len = u64::try_from(chunk_len).unwrap_or(u64::MAX);
    let stored = stored.min(len);
    report.new += stored;
    report.duplicates += len - stored;
}

impl Store for PostgresStore {
    fn append_exchanges(&self, batch: &[Exchange]) -> Result<AppendReport, StoreError> {
        const OP: &str = "appending exchanges";
        let mut report = AppendReport::default();
        if batch.is_empty() {
            return Ok(report);
        }
        self.with_session(Role::Writer, |session| {
            let stmt = session
                .prepare(INSERT_EXCHANGES)
                .map_err(StoreError::pg(OP))?;
            let mut tx = session.client.transaction().map_err(StoreError::pg(OP))?;
            for chunk in batch.chunks(INSERT_CHUNK) {
                let n = chunk.len();
                let (mut ts, mut accounts, mut requests) = (
                    Vec::with_capacity(n),
                    Vec::with_capacity(n),
                    Vec::with_capacity(n),
                );
                let (mut prompt, mut completion, mut reasoning, mut records) = (
                    Vec::with_capacity(n),
                    Vec::with_capacity(n),
                    Vec::with_capacity(n),
                    Vec::with_capacity(n),
                );
                for x in chunk {
                    let tokens = |f: fn(&moat_types::Response) -> Option<u64>| {
                        to_sql_count(x.response.as_ref().and_then(f).unwrap_or(0))
                    };
                    ts.push(x.ts.as_millis());
                    accounts.push(x.account_id.as_bytes());
                    requests.push(opt_bytes(&x.request_id));
                    prompt.push(tokens(|r| r.prompt_tokens));
                    completion.push(tokens(|r| r.completion_tokens));
                    reasoning.push(tokens(|r| r.reasoning_tokens));
                    records.push(encode("exchange", x)?);
                }
                let stored: i64 = tx
                    .query_one(
                        &stmt,
                        &[
                            &ts,
                            &accounts,
                            &requests,
                            &prompt,
                            &completion,
                            &reasoning,
                            &records,
                        ],
                    )
                    .and_then(|r| r.try_get(0))
                    .map_err(StoreError::pg(OP))?;
                chunk_report(&mut report, n, from_sql_count(stored));
            }
            tx.commit().map_err(StoreError::pg(OP))?;
            Ok(report)
        })
    }

    fn append_decisions(&self, batch: &[DecisionRecord]) -> Result<AppendReport, StoreError> {
        const OP: &str = "appending decisions";
        let mut report = AppendReport::default();
        if batch.is_empty() {
            return Ok(report);
        }
        self.with_session(Role::Writer, |session| {
            let stmt = session
                .prepare(INSERT_DECISIONS)
                .map_err(StoreError::pg(OP))?;
            let mut tx = session.client.transaction().map_err(StoreError::pg(OP))?;
            for chunk in batch.chunks(INSERT_CHUNK) {
                let n = chunk.len();
                let mut ts = Vec::with_capacity(n);
                let mut requests = Vec::with_capacity(n);
                let mut accounts = Vec::with_capacity(n);
                let mut campaigns = Vec::with_capacity(n);
                let mut rules = Vec::with_capacity(n);
                let mut actions = Vec::with_capacity(n);
                let mut shadows = Vec::with_capacity(n);
                let mut risks = Vec::with_capacity(n);
                let mut enforced = Vec::with_capacity(n);
                let mut details = Vec::with_capacity(n);
                for d in chunk {
                    ts.push(d.ts.as_millis());
                    requests.push(opt_bytes(&d.request_id));
                    accounts.push(d.account_id.as_bytes());
                    campaigns.push(opt_bytes(&d.campaign_id));
                    rules.push(opt_bytes(&d.rule));
                    actions.push(encode("decision actions", &d.actions)?);
                    shadows.push(encode("decision shadow rules", &d.shadow)?);
                    // As in SQLite: a non-finite risk is kept as NULL and read back as NaN, so
                    // both backends give the same answer for it.
                    risks.push(d.risk.is_finite().then_some(d.risk));
                    enforced.push(d.enforced);
                    details.push(opt_bytes(&d.detail));
                }
                let stored = tx
                    .execute(
                        &stmt,
                        &[
                            &ts, &requests, &accounts, &campaigns, &rules, &actions, &shadows,
                            &risks, &enforced, &details,
                        ],
                    )
                    .map_err(StoreError::pg(OP))?;
                chunk_report(&mut report, n, stored);
            }
            tx.commit().map_err(StoreError::pg(OP))?;
            Ok(report)
        })
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
        self.with_session(Role::Reader, |session| {
            listing.run(session, "querying exchanges", |cells| {
                let text: String = cells.get("record")?;
                decode_exchange(&text, cells.id)
            })
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
        self.with_session(Role::Reader, |session| {
            listing.run(session, "querying decisions", |cells| {
                let actions: String = cells.get("actions")?;
                let shadow: String = cells.get("shadow")?;
                let risk: Option<f64> = cells.get("risk")?;
                Ok(DecisionRecord {
                    ts: Timestamp::from_millis(cells.get("ts_ms")?),
                    request_id: cells.opt_string("request_id")?,
                    account_id: cells.string("account_id")?,
                    campaign_id: cells.opt_string("campaign_id")?,
                    rule: cells.opt_string("rule")?,
                    actions: decode_list(&actions, cells.id)?,
                    shadow: decode_list(&shadow, cells.id)?,
                    risk: risk.unwrap_or(f64::NAN),
                    enforced: cells.get("enforced")?,
                    detail: cells.opt_string("detail")?,
                })
            })
        })
    }

    fn count_exchanges(&self) -> Result<u64, StoreError> {
        const OP: &str = "counting exchanges";
        // The per-account aggregates hold the count, which spares a scan of the exchanges.
        let n: i64 = self.with_session(Role::Reader, |session| {
            let stmt = session
                .prepare("SELECT COALESCE(SUM(exchanges), 0)::BIGINT FROM accounts")
                .map_err(StoreError::pg(OP))?;
            session
                .client
                .query_one(&stmt, &[])
                .and_then(|r| r.try_get(0))
                .map_err(StoreError::pg(OP))
        })?;
        Ok(from_sql_count(n))
    }

    fn account_summaries(&self, q: &AccountQuery) -> Result<Page<AccountSummary>, StoreError> {
        const OP: &str = "querying account summaries";
        let limit = clamp_limit(q.limit);
        let fetch = i64::try_from(limit + 1).unwrap_or(i64::MAX);
        let rows = self.with_session(Role::Reader, |session| {
            match &q.cursor {
                // The cursor of this listing is the last account id shown.
                Some(after) => {
                    let stmt = session
                        .prepare(&format!(
                            "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE account_id > $1 \
                         ORDER BY account_id LIMIT $2"
                        ))
                        .map_err(StoreError::pg(OP))?;
                    session
                        .client
                        .query(&stmt, &[&after.as_str().as_bytes(), &fetch])
                }
                None => {
                    let stmt = session
                        .prepare(&format!(
                            "SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY account_id LIMIT $1"
                        ))
                        .map_err(StoreError::pg(OP))?;
                    session.client.query(&stmt, &[&fetch])
                }
            }
            .map_err(StoreError::pg(OP))
        })?;
        let mut items = Vec::with_capacity(rows.len().min(limit));
        for row in rows.iter().take(limit) {
            // The accounts table has no row id; 0 stands for it in a corrupt-row error.
            let cells = Cells {
                row,
                table: "accounts",
                id: 0,
                op: OP,
            };
            items.push(AccountSummary {
                account_id: cells.string("account_id")?,
                exchanges: from_sql_count(cells.get("exchanges")?),
                first_seen: Timestamp::from_millis(cells.get("first_seen_ms")?),
                last_seen: Timestamp::from_millis(cells.get("last_seen_ms")?),
                prompt_tokens: from_sql_count(cells.get("prompt_tokens")?),
                completion_tokens: from_sql_count(cells.get("completion_tokens")?),
                reasoning_tokens: from_sql_count(cells.get("reasoning_tokens")?),
            });
        }
        let next = if rows.len() > limit {
            items.last().map(|a| Cursor::new(a.account_id.clone()))
        } else {
            None
        };
        Ok(Page { items, next })
    }

    fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        const OP: &str = "appending an audit entry";
        self.with_session(Role::Writer, |session| {
            let stmt = session.prepare(INSERT_AUDIT).map_err(StoreError::pg(OP))?;
            session
                .client
                .execute(
                    &stmt,
                    &[
                        &entry.ts.as_millis(),
                        &entry.actor.as_bytes(),
                        &entry.action.as_bytes(),
                        &opt_bytes(&entry.target),
                        &opt_bytes(&entry.detail),
                    ],
                )
                .map_err(StoreError::pg(OP))?;
            Ok(())
        })
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
        self.with_session(Role::Reader, |session| {
            listing.run(session, "querying the audit log", |cells| {
                Ok(AuditEntry {
                    ts: Timestamp::from_millis(cells.get("ts_ms")?),
                    actor: cells.string("actor")?,
                    action: cells.string("action")?,
                    target: cells.opt_string("target")?,
                    detail: cells.opt_string("detail")?,
                })
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
        let chunk_len = i64::try_from(EXPORT_CHUNK).unwrap_or(i64::MAX);
        let mut after = (i64::MIN, i64::MIN);
        let mut sent = 0u64;
        loop {
            // Read one chunk under the lock, then release it before the sink runs.
            let chunk: Vec<(i64, i64, String)> = self.with_session(Role::Reader, |session| {
                let stmt = session
                    .prepare(EXPORT_EXCHANGES)
                    .map_err(StoreError::pg(OP))?;
                session
                    .client
                    .query(&stmt, &[&since, &after.0, &after.1, &chunk_len])
                    .and_then(|rows| {
                        rows.iter()
                            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
                            .collect()
                    })
                    .map_err(StoreError::pg(OP))
            })?;
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
        self.with_session(Role::Reader, |session| read_version(&mut session.client))
    }
}

const INSERT_FEATURES: &str = "
INSERT INTO features (ts_ms, account_id, request_id, body)
SELECT ts_ms, account_id, request_id, body
FROM unnest($1::BIGINT[], $2::BYTEA[], $3::BYTEA[], $4::BYTEA[])
    WITH ORDINALITY AS batch (ts_ms, account_id, request_id, body, seq)
ORDER BY seq
ON CONFLICT (request_id) WHERE request_id IS NOT NULL DO NOTHING";

/// Rows after the cursor in (txid, id) order, but only those of transactions older than every
/// transaction still running (the snapshot's `xmin`): a transaction that started earlier but
/// commits later would otherwise put rows behind a cursor that has already passed them.
const READ_FEATURES: &str = "
SELECT txid::TEXT, id, ts_ms, account_id, request_id, body FROM features
WHERE (txid, id) > ($1::TEXT::xid8, $2)
  AND txid < pg_snapshot_xmin(pg_current_snapshot())
ORDER BY txid, id
LIMIT $3";

impl FeatureLog for PostgresStore {
    fn append_features(&self, batch: &[FeatureRow]) -> Result<AppendReport, StoreError> {
        const OP: &str = "appending features";
        let mut report = AppendReport::default();
        if batch.is_empty() {
            return Ok(report);
        }
        self.with_session(Role::Writer, |session| {
            let stmt = session
                .prepare(INSERT_FEATURES)
                .map_err(StoreError::pg(OP))?;
            let mut tx = session.client.transaction().map_err(StoreError::pg(OP))?;
            for chunk in batch.chunks(INSERT_CHUNK) {
                let ts: Vec<i64> = chunk.iter().map(|r| r.ts.as_millis()).collect();
                let accounts: Vec<&[u8]> = chunk.iter().map(|r| r.account_id.as_bytes()).collect();
                let requests: Vec<Option<&[u8]>> =
                    chunk.iter().map(|r| opt_bytes(&r.request_id)).collect();
                let bodies: Vec<&[u8]> = chunk.iter().map(|r| r.body.as_slice()).collect();
                let stored = tx
                    .execute(&stmt, &[&ts, &accounts, &requests, &bodies])
                    .map_err(StoreError::pg(OP))?;
                chunk_report(&mut report, chunk.len(), stored);
            }
            tx.commit().map_err(StoreError::pg(OP))?;
            Ok(report)
        })
    }

    fn read_features(
        &self,
        after: FeatureCursor,
        limit: usize,
    ) -> Result<(Vec<FeatureRow>, FeatureCursor), StoreError> {
        const OP: &str = "reading features";
        let limit = i64::try_from(limit.max(1)).unwrap_or(i64::MAX);
        let rows = self.with_session(Role::Reader, |session| {
            let stmt = session.prepare(READ_FEATURES).map_err(StoreError::pg(OP))?;
            session
                .client
                .query(&stmt, &[&after.txid.to_string(), &after.id, &limit])
                .map_err(StoreError::pg(OP))
        })?;
        let mut cursor = after;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let txid: String = row.try_get(0).map_err(StoreError::pg(OP))?;
            let id: i64 = row.try_get(1).map_err(StoreError::pg(OP))?;
            let ts: i64 = row.try_get(2).map_err(StoreError::pg(OP))?;
            let account: Vec<u8> = row.try_get(3).map_err(StoreError::pg(OP))?;
            let request: Option<Vec<u8>> = row.try_get(4).map_err(StoreError::pg(OP))?;
            let body: Vec<u8> = row.try_get(5).map_err(StoreError::pg(OP))?;
            let text = |b: Vec<u8>, what: &str| {
                String::from_utf8(b).map_err(|_| StoreError::Postgres {
                    what: OP.to_owned(),
                    reason: format!("feature row {id}: {what} is not UTF-8"),
                })
            };
            cursor = FeatureCursor {
                txid: txid.parse().map_err(|_| StoreError::Postgres {
                    what: OP.to_owned(),
                    reason: format!("feature row {id}: transaction id {txid:?}"),
                })?,
                id,
            };
            out.push(FeatureRow {
                request_id: request.map(|r| text(r, "request_id")).transpose()?,
                account_id: text(account, "account_id")?,
                ts: Timestamp::from_millis(ts),
                body,
            });
        }
        Ok((out, cursor))
    }
}

impl DetectionLog for PostgresStore {
    fn put_detections(
        &self,
        accounts: &[moat_types::AccountDetection],
        campaigns: &[moat_types::CampaignDetection],
        gone: &[String],
    ) -> Result<(), StoreError> {
        const OP: &str = "writing detections";
        let rows = crate::codec::detection_rows(accounts, campaigns)?;
        if rows.is_empty() && gone.is_empty() {
            return Ok(());
        }
        self.with_session(Role::Writer, |session| {
            let mut tx = session.client.transaction().map_err(StoreError::pg(OP))?;
            for chunk in rows.chunks(INSERT_CHUNK) {
                let kinds: Vec<&str> = chunk.iter().map(|r| r.0).collect();
                let ids: Vec<&[u8]> = chunk.iter().map(|r| r.1.as_bytes()).collect();
                let lines: Vec<&str> = chunk.iter().map(|r| r.2.as_str()).collect();
                tx.execute(
                    "INSERT INTO detections (kind, id, line)
                     SELECT * FROM unnest($1::TEXT[], $2::BYTEA[], $3::TEXT[])
                     ON CONFLICT (kind, id) DO UPDATE SET line = excluded.line",
                    &[&kinds, &ids, &lines],
                )
                .map_err(StoreError::pg(OP))?;
            }
            if !gone.is_empty() {
                let ids: Vec<&[u8]> = gone.iter().map(|g| g.as_bytes()).collect();
                tx.execute(
                    "DELETE FROM detections WHERE kind = 'campaign' AND id = ANY($1::BYTEA[])",
                    &[&ids],
                )
                .map_err(StoreError::pg(OP))?;
            }
            tx.commit().map_err(StoreError::pg(OP))
        })
    }

    fn detections(&self) -> Result<Vec<moat_types::Detection>, StoreError> {
        const OP: &str = "reading detections";
        let rows = self.with_session(Role::Reader, |session| {
            session
                .client
                .query(
                    "SELECT line FROM detections ORDER BY kind = 'campaign', id",
                    &[],
                )
                .map_err(StoreError::pg(OP))
        })?;
        let mut out = Vec::with_capacity(rows.len());
        for (n, row) in rows.iter().enumerate() {
            let line: String = row.try_get(0).map_err(StoreError::pg(OP))?;
            out.push(crate::codec::decode_detection(
                &line,
                i64::try_from(n).unwrap_or(i64::MAX),
            )?);
        }
        Ok(out)
    }
}

/// Leadership of one role (the consolidator) among processes sharing a database: a session-level
/// advisory lock held on a connection of its own. Dropping it, or the connection breaking (the
/// process dying, the server restarting), releases it.
pub struct Leadership {
    /// `None` only while dropping.
    client: Option<Client>,
    role: String,
}

impl fmt::Debug for Leadership {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Leadership")
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

impl Leadership {
    /// Whether the lock is still held: its session answers. A leader that finds it is not
    /// must stop acting as one (another process may have taken over).
    pub fn holds(&mut self) -> bool {
        match self.client.as_mut() {
            Some(c) if !c.is_closed() => c.simple_query("SELECT 1").is_ok(),
            _ => false,
        }
    }
}

impl Drop for Leadership {
    fn drop(&mut self) {
        // As for the store: the driver's close runs a runtime of its own, so close elsewhere.
        if let Some(client) = self.client.take() {
            if let Ok(t) = std::thread::Builder::new()
                .name("moat-pg-close".to_owned())
                .spawn(move || drop(client))
            {
                let _ = t.join();
            }
        }
    }
}

impl PostgresStore {
    /// Tries to become the one process acting as `role` for this database and schema; `None`
    /// when another process holds it. Blocking, like every call here.
    pub fn try_lead(&self, role: &str) -> Result<Option<Leadership>, StoreError> {
        let Session { mut client, .. } = self.target.open(Role::Writer)?;
        let key = format!("{}/{role}", self.target.schema.as_deref().unwrap_or(""));
        let got: bool = client
            .query_one(
                "SELECT pg_try_advisory_lock($1, hashtext($2))",
                &[&LEADER_LOCK_CLASS, &key],
            )
            .and_then(|r| r.try_get(0))
            .map_err(StoreError::pg("taking the leadership lock"))?;
        let lead = Leadership {
            client: Some(client),
            role: role.to_owned(),
        };
        Ok(got.then_some(lead))
    }
}

#[cfg(test)]
mod tests {
    //! What needs the private `connect_at`: building old versions and broken migrations.
    //! Selected by `MOAT_TEST_POSTGRES`, like `tests/postgres.rs`; without it they pass
    //! trivially.

    use super::*;
    use moat_types::{Message, Request, Response};
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A connection string and a fresh schema name, dropped with everything in it at the end.
    struct Fresh {
        url: String,
        schema: String,
    }

    impl Drop for Fresh {
        fn drop(&mut self) {
            if let Ok(mut c) = Client::connect(&self.url, NoTls) {
                let _ = c.batch_execute(&format!(
                    "DROP SCHEMA IF EXISTS {} CASCADE",
                    quote_ident(&self.schema)
                ));
            }
        }
    }

    fn fresh() -> Option<Fresh> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let Ok(url) = std::env::var("MOAT_TEST_POSTGRES") else {
            eprintln!("skipped: MOAT_TEST_POSTGRES is not set");
            return None;
        };
        let schema = format!(
            "moat_unit_{}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            now_ms() % 1_000_000
        );
        Some(Fresh { url, schema })
    }

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
    fn old_version_schema_is_migrated_and_backfilled() {
        let Some(db) = fresh() else { return };
        {
            let v1 = PostgresStore::connect_at(&db.url, Some(&db.schema), 1).unwrap();
            assert_eq!(v1.schema_version().unwrap(), 1);
            // Version 1 has no accounts table, so append by hand what a v1 build would have.
            for (i, (acct, ts, tok)) in [("a", 10i64, 5i64), ("b", 20, 1), ("a", 30, 7)]
                .into_iter()
                .enumerate()
            {
                let x = exchange(acct, &format!("r{i}"), ts, tok as u64);
                let record = serde_json::to_string(&x).unwrap();
                let request = opt_bytes(&x.request_id);
                let params: [&(dyn ToSql + Sync); 7] = [
                    &ts,
                    &acct.as_bytes(),
                    &request,
                    &tok,
                    &(2 * tok),
                    &(3 * tok),
                    &record,
                ];
                v1.with_session(Role::Writer, |session| {
                    session
                        .client
                        .execute(
                            "INSERT INTO exchanges (ts_ms, account_id, request_id, prompt_tokens,
                             completion_tokens, reasoning_tokens, record)
                             VALUES ($1, $2, $3, $4, $5, $6, $7)",
                            &params,
                        )
                        .map_err(StoreError::pg("test insert"))
                })
                .unwrap();
            }
        }

        let store = PostgresStore::connect_schema(&db.url, &db.schema).unwrap();
        assert_eq!(store.schema_version().unwrap(), 4);
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
    fn failed_migration_leaves_the_schema_unchanged() {
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
        let Some(db) = fresh() else { return };
        let target = Target {
            config: db.url.parse().unwrap(),
            schema: Some(db.schema.clone()),
            description: "test".to_owned(),
        };
        let mut session = target.open(Role::Writer).unwrap();
        let err = migrate_to(&mut session.client, BROKEN, 2, &target).unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::PostgresMigration {
                    version: 2,
                    name: "broken",
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("already exists"), "{err}");
        // DDL is transactional: neither the table, the version table nor the schema stayed.
        let schemas: i64 = session
            .client
            .query_one(
                "SELECT count(*) FROM pg_namespace WHERE nspname = $1",
                &[&db.schema],
            )
            .unwrap()
            .get(0);
        assert_eq!(schemas, 0);
    }

    #[test]
    fn huge_token_counts_are_clamped_not_overflowed() {
        let Some(db) = fresh() else { return };
        let store = PostgresStore::connect_schema(&db.url, &db.schema).unwrap();
        let batch: Vec<_> = (0..4)
            .map(|i| exchange("a", &format!("r{i}"), i, u64::MAX))
            .collect();
        store.append_exchanges(&batch).unwrap();
        let a = &store
            .account_summaries(&AccountQuery::default())
            .unwrap()
            .items[0];
        assert_eq!(a.prompt_tokens, 4 * crate::codec::MAX_TOKENS_PER_EXCHANGE);
        let page = store.exchanges(&ExchangeQuery::default()).unwrap();
        assert_eq!(page.items, batch);
    }

    #[test]
    fn schema_names_that_need_quoting_are_refused() {
        for bad in ["", "1abc", "a-b", "a\"b", "a b", "é", &"x".repeat(64)] {
            assert!(check_schema_name(bad).is_err(), "{bad:?}");
        }
        for good in ["moat", "_x", "Moat_2", &"x".repeat(63)] {
            check_schema_name(good).unwrap();
        }
    }

    #[test]
    fn description_names_the_server_but_not_the_password() {
        let config: Config = "host=db.internal port=6432 user=moat password=hunter2 dbname=m"
            .parse()
            .unwrap();
        let text = describe(&config, Some("s1"));
        assert_eq!(text, "postgres://moat@db.internal:6432/m schema s1");
        let config: Config = "postgresql://moat:hunter2@a,b:5433/m".parse().unwrap();
        // In a URL each host has its own port; a missing one is the default.
        assert_eq!(describe(&config, None), "postgres://moat@a:5432,b:5433/m");
    }
}

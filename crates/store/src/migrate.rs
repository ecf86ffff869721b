//! Versioned schema migrations, kept as data.
//!
//! Each backend has an ordered list of [`Migration`]s numbered 1, 2, 3, …; a database records
//! the migrations applied to it in a `schema_version` table (plain SQL, so the PostgreSQL
//! backend keeps the same table and mirrors the list version for version). Opening a database
//! applies the missing migrations in order, together with their `schema_version` rows, in one
//! transaction (a failure leaves the database as it was) that only one process runs at a time
//! (SQLite's immediate transaction, PostgreSQL's advisory lock), and refuses a database whose
//! version is newer than the list. This module checks lists and plans; running the SQL is the
//! backend's job.

use crate::StoreError;

/// One schema change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    /// Position in the list, starting at 1; recorded in `schema_version` once applied.
    pub version: u32,
    /// Short snake_case name; the same version has the same name in every backend.
    pub name: &'static str,
    /// Statements to run, in the backend's dialect.
    pub sql: &'static str,
}

/// The table where every backend records applied migrations.
pub const SCHEMA_VERSION_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at_ms BIGINT NOT NULL
)";

/// The SQLite schema, oldest first.
///
/// Exchanges keep their exact exchange-log v1 JSON line in `record` plus the columns queries
/// need; `request_id` is unique where present, which makes appends idempotent. Migration 2 adds
/// per-account aggregates, kept up to date on every append, so that the admin accounts listing
/// and the exchange count do not scan the exchange table.
pub const SQLITE_MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "exchanges_decisions_audit",
        sql: "
CREATE TABLE exchanges (
    id INTEGER PRIMARY KEY,
    ts_ms INTEGER NOT NULL,
    account_id TEXT NOT NULL,
    request_id TEXT UNIQUE,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    reasoning_tokens INTEGER NOT NULL DEFAULT 0,
    record TEXT NOT NULL
);
CREATE INDEX exchanges_by_ts ON exchanges (ts_ms, id);
CREATE INDEX exchanges_by_account_ts ON exchanges (account_id, ts_ms, id);

CREATE TABLE decisions (
    id INTEGER PRIMARY KEY,
    ts_ms INTEGER NOT NULL,
    request_id TEXT,
    account_id TEXT NOT NULL,
    campaign_id TEXT,
    rule TEXT,
    actions TEXT NOT NULL,
    shadow TEXT NOT NULL,
    risk REAL,
    enforced INTEGER NOT NULL,
    detail TEXT
);
CREATE UNIQUE INDEX decisions_by_request_ts ON decisions (request_id, ts_ms);
CREATE INDEX decisions_by_ts ON decisions (ts_ms, id);
CREATE INDEX decisions_by_account_ts ON decisions (account_id, ts_ms, id);

CREATE TABLE audit (
    id INTEGER PRIMARY KEY,
    ts_ms INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT,
    detail TEXT
);
CREATE INDEX audit_by_ts ON audit (ts_ms, id);
CREATE INDEX audit_by_actor_ts ON audit (actor, ts_ms, id);
",
    },
    Migration {
        version: 2,
        name: "account_summaries",
        sql: "
CREATE TABLE accounts (
    account_id TEXT PRIMARY KEY,
    exchanges INTEGER NOT NULL,
    first_seen_ms INTEGER NOT NULL,
    last_seen_ms INTEGER NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    reasoning_tokens INTEGER NOT NULL
);
INSERT INTO accounts
SELECT account_id, count(*), min(ts_ms), max(ts_ms),
       sum(prompt_tokens), sum(completion_tokens), sum(reasoning_tokens)
FROM exchanges GROUP BY account_id;
",
    },
    Migration {
        version: 3,
        name: "feature_log",
        sql: "
CREATE TABLE features (
    id INTEGER PRIMARY KEY,
    ts_ms INTEGER NOT NULL,
    account_id TEXT NOT NULL,
    request_id TEXT,
    body BLOB NOT NULL
);
CREATE UNIQUE INDEX features_by_request ON features (request_id);
",
    },
    Migration {
        version: 4,
        name: "detections",
        sql: "
CREATE TABLE detections (
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    line TEXT NOT NULL,
    PRIMARY KEY (kind, id)
);
",
    },
];

/// The PostgreSQL schema, oldest first: [`SQLITE_MIGRATIONS`] version for version, same names.
///
/// The differences are PostgreSQL's types: an identity column for insertion order, `BIGINT`
/// for timestamps and counters, `DOUBLE PRECISION` and `BOOLEAN`, and `BYTEA` for every string
/// a client or operator supplies (ids, rule names, details), because PostgreSQL's `TEXT` cannot
/// hold a NUL character, which SQLite and exchange-log v1 allow, and because `BYTEA` compares
/// bytes, which is the code point order the account listing promises whatever the database's
/// collation. JSON documents (the exchange line, decision action lists) stay `TEXT`: JSON
/// escapes NUL. Unique indexes are partial (`WHERE request_id IS NOT NULL`), so the `ON
/// CONFLICT` targets in `postgres.rs` name the same predicate.
pub const POSTGRES_MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "exchanges_decisions_audit",
        sql: "
CREATE TABLE exchanges (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ts_ms BIGINT NOT NULL,
    account_id BYTEA NOT NULL,
    request_id BYTEA,
    prompt_tokens BIGINT NOT NULL DEFAULT 0,
    completion_tokens BIGINT NOT NULL DEFAULT 0,
    reasoning_tokens BIGINT NOT NULL DEFAULT 0,
    record TEXT NOT NULL
);
CREATE UNIQUE INDEX exchanges_by_request ON exchanges (request_id) WHERE request_id IS NOT NULL;
CREATE INDEX exchanges_by_ts ON exchanges (ts_ms, id);
CREATE INDEX exchanges_by_account_ts ON exchanges (account_id, ts_ms, id);

CREATE TABLE decisions (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ts_ms BIGINT NOT NULL,
    request_id BYTEA,
    account_id BYTEA NOT NULL,
    campaign_id BYTEA,
    rule BYTEA,
    actions TEXT NOT NULL,
    shadow TEXT NOT NULL,
    risk DOUBLE PRECISION,
    enforced BOOLEAN NOT NULL,
    detail BYTEA
);
CREATE UNIQUE INDEX decisions_by_request_ts ON decisions (request_id, ts_ms)
    WHERE request_id IS NOT NULL;
CREATE INDEX decisions_by_ts ON decisions (ts_ms, id);
CREATE INDEX decisions_by_account_ts ON decisions (account_id, ts_ms, id);

CREATE TABLE audit (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ts_ms BIGINT NOT NULL,
    actor BYTEA NOT NULL,
    action BYTEA NOT NULL,
    target BYTEA,
    detail BYTEA
);
CREATE INDEX audit_by_ts ON audit (ts_ms, id);
CREATE INDEX audit_by_actor_ts ON audit (actor, ts_ms, id);
",
    },
    Migration {
        version: 2,
        name: "account_summaries",
        sql: "
CREATE TABLE accounts (
    account_id BYTEA PRIMARY KEY,
    exchanges BIGINT NOT NULL,
    first_seen_ms BIGINT NOT NULL,
    last_seen_ms BIGINT NOT NULL,
    prompt_tokens BIGINT NOT NULL,
    completion_tokens BIGINT NOT NULL,
    reasoning_tokens BIGINT NOT NULL
);
INSERT INTO accounts
SELECT account_id, count(*), min(ts_ms), max(ts_ms),
       sum(prompt_tokens)::BIGINT, sum(completion_tokens)::BIGINT, sum(reasoning_tokens)::BIGINT
FROM exchanges GROUP BY account_id;
",
    },
    Migration {
        version: 3,
        name: "feature_log",
        // `txid` is the writing transaction's id: rows are read in (txid, id) order and only
        // below the oldest transaction still running, so a row committed late is never
        // skipped (see `READ_FEATURES`).
        sql: "
CREATE TABLE features (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    txid xid8 NOT NULL DEFAULT pg_current_xact_id(),
    ts_ms BIGINT NOT NULL,
    account_id BYTEA NOT NULL,
    request_id BYTEA,
    body BYTEA NOT NULL
);
CREATE UNIQUE INDEX features_by_request ON features (request_id) WHERE request_id IS NOT NULL;
CREATE INDEX features_by_txid ON features (txid, id);
",
    },
    Migration {
        version: 4,
        name: "detections",
        sql: "
CREATE TABLE detections (
    kind TEXT NOT NULL,
    id BYTEA NOT NULL,
    line TEXT NOT NULL,
    PRIMARY KEY (kind, id)
);
",
    },
];

/// The latest version of a migration list (0 for an empty list).
pub fn latest_version(list: &[Migration]) -> u32 {
    list.last().map_or(0, |m| m.version)
}

/// Checks that a list is numbered 1, 2, 3, … with no gap, so that "apply everything above the
/// recorded version" is well defined.
pub fn check_list(list: &[Migration]) -> Result<(), String> {
    for (i, m) in list.iter().enumerate() {
        let expected = u32::try_from(i + 1).map_err(|_| "too many migrations".to_owned())?;
        if m.version != expected {
            return Err(format!(
                "migration {} ({}) is at position {expected}",
                m.version, m.name
            ));
        }
    }
    Ok(())
}

/// The migrations to apply to a database at version `current`, in order.
///
/// `database` only names the database in the error for a version newer than the list (a file
/// path, or a PostgreSQL server, database and schema without the password).
pub fn pending<'a>(
    list: &'a [Migration],
    current: u32,
    database: &str,
) -> Result<&'a [Migration], StoreError> {
    let supported = latest_version(list);
    if current > supported {
        return Err(StoreError::SchemaTooNew {
            database: database.to_owned(),
            found: current,
            supported,
        });
    }
    // Versions are positions (see `check_list`), so the pending ones start at index `current`.
    let from = usize::try_from(current)
        .unwrap_or(usize::MAX)
        .min(list.len());
    Ok(&list[from..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_migration_list_is_numbered_without_gaps() {
        check_list(SQLITE_MIGRATIONS).unwrap();
        assert_eq!(latest_version(SQLITE_MIGRATIONS), 4);
    }

    #[test]
    fn postgres_migration_list_mirrors_sqlite_version_for_version() {
        check_list(POSTGRES_MIGRATIONS).unwrap();
        let names =
            |list: &[Migration]| list.iter().map(|m| (m.version, m.name)).collect::<Vec<_>>();
        assert_eq!(names(POSTGRES_MIGRATIONS), names(SQLITE_MIGRATIONS));
    }

    #[test]
    fn gap_in_migration_list_is_reported() {
        let list = [
            Migration {
                version: 1,
                name: "a",
                sql: "",
            },
            Migration {
                version: 3,
                name: "c",
                sql: "",
            },
        ];
        assert!(check_list(&list).unwrap_err().contains("migration 3 (c)"));
    }

    #[test]
    fn pending_starts_after_the_recorded_version() {
        let p = "x.db";
        assert_eq!(pending(SQLITE_MIGRATIONS, 0, p).unwrap().len(), 4);
        assert_eq!(pending(SQLITE_MIGRATIONS, 1, p).unwrap()[0].version, 2);
        assert!(pending(SQLITE_MIGRATIONS, 4, p).unwrap().is_empty());
    }

    #[test]
    fn newer_database_is_refused_with_both_versions() {
        let err = pending(SQLITE_MIGRATIONS, 7, "x.db").unwrap_err();
        let text = err.to_string();
        assert!(matches!(
            err,
            StoreError::SchemaTooNew {
                found: 7,
                supported: 4,
                ..
            }
        ));
        assert!(
            text.contains("version 7") && text.contains("version 4"),
            "{text}"
        );
    }
}

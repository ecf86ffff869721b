//! [`StoreError`]: the one error type of this crate.
//!
//! Messages name what failed and where (the operation, the table, the file and line) but never
//! the content of a record: prompts, answers and identifiers that could be secrets stay out of
//! errors, because errors end up in logs.

use std::path::PathBuf;

/// Everything that can go wrong while storing, querying, migrating, spilling or importing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database could not be opened or configured.
    #[error("cannot open database {path}: {source}")]
    Open {
        /// Database file (`:memory:` for an in-memory database).
        path: PathBuf,
        /// Driver error.
        source: rusqlite::Error,
    },
    /// A statement failed.
    #[error("database error while {op}: {source}")]
    Sqlite {
        /// What the store was doing, e.g. `appending exchanges`.
        op: &'static str,
        /// Driver error.
        source: rusqlite::Error,
    },
    /// The database was written by a newer build; opening it could corrupt it.
    #[error(
        "database {database} has schema version {found}, newer than version {supported} that this build supports; upgrade moat"
    )]
    SchemaTooNew {
        /// The database: a SQLite file's path, or a PostgreSQL server, database and schema
        /// (never a password).
        database: String,
        /// Version recorded in the database.
        found: u32,
        /// Latest version this build knows.
        supported: u32,
    },
    /// A migration failed; its transaction was rolled back, so the database is unchanged.
    #[error("migration {version} ({name}) failed: {source}")]
    Migration {
        /// Version of the failed migration.
        version: u32,
        /// Name of the failed migration.
        name: &'static str,
        /// Driver error.
        source: rusqlite::Error,
    },
    /// A PostgreSQL connection, statement or transaction failed.
    #[error("postgres error while {what}: {reason}")]
    Postgres {
        /// What the store was doing, e.g. `appending exchanges` or `connecting to
        /// postgres user@127.0.0.1:5432/moat` (never a password).
        what: String,
        /// The driver's or the server's message, without the server's DETAIL and HINT lines
        /// (they can quote row values).
        reason: String,
    },
    /// A PostgreSQL migration failed; its transaction was rolled back, so the schema is
    /// unchanged.
    #[error("migration {version} ({name}) failed: {reason}")]
    PostgresMigration {
        /// Version of the failed migration.
        version: u32,
        /// Name of the failed migration.
        name: &'static str,
        /// The server's message (as in [`StoreError::Postgres`]).
        reason: String,
    },
    /// A pagination cursor that this backend did not issue (or that was damaged).
    #[error("invalid page cursor")]
    InvalidCursor,
    /// A record could not be encoded to JSON.
    #[error("cannot encode {what}: {reason}")]
    Encode {
        /// Record kind, e.g. `exchange`.
        what: &'static str,
        /// Category and position of the error (never the record's text).
        reason: String,
    },
    /// A stored row could not be read back; the database was altered outside this crate.
    #[error("corrupt row {id} in table {table}: {reason}")]
    CorruptRow {
        /// Table of the row.
        table: &'static str,
        /// Row id.
        id: i64,
        /// What is wrong (never the row's text).
        reason: String,
    },
    /// Reading or writing a file (spill file, export target) failed.
    #[error("io error on {what}: {source}")]
    Io {
        /// The file or stream, e.g. `spill file /var/lib/moat/exchanges.spill.jsonl`.
        what: String,
        /// Operating system error.
        source: std::io::Error,
    },
    /// A backend that is not SQLite (or a test double) is unavailable.
    #[error("store unavailable: {0}")]
    Unavailable(String),
}

impl StoreError {
    /// Wraps a driver error with the operation that failed.
    pub(crate) fn sql(op: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
        move |source| StoreError::Sqlite { op, source }
    }

    /// Wraps a PostgreSQL driver error with the operation that failed.
    pub(crate) fn pg(what: &'static str) -> impl FnOnce(postgres::Error) -> StoreError {
        move |e| StoreError::Postgres {
            what: what.to_owned(),
            reason: pg_reason(&e),
        }
    }
}

/// Describes a PostgreSQL error without what could quote a row or a secret.
///
/// A server error keeps its severity, message and SQLSTATE but not its DETAIL or HINT (a unique
/// violation's DETAIL quotes the key, which may be a request id). A client error keeps its
/// chain of causes, e.g. `error connecting to server: Connection refused (os error 111)`; the
/// driver never puts the password in them.
pub(crate) fn pg_reason(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!(
            "{}: {} (SQLSTATE {})",
            db.severity(),
            db.message(),
            db.code().code()
        );
    }
    let mut reason = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        reason.push_str(": ");
        reason.push_str(&c.to_string());
        cause = c.source();
    }
    reason
}

/// Describes a JSON error by category and position only: serde_json's messages can quote the
/// offending value (`invalid type: string "..."`), which may be prompt text.
pub(crate) fn json_reason(e: &serde_json::Error) -> String {
    let category = match e.classify() {
        serde_json::error::Category::Io => "io error",
        serde_json::error::Category::Syntax => "malformed JSON",
        serde_json::error::Category::Data => "JSON of the wrong shape",
        serde_json::error::Category::Eof => "truncated JSON",
    };
    format!("{category} at line {} column {}", e.line(), e.column())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_reason_does_not_quote_the_value() {
        let err = serde_json::from_str::<u64>(r#""secret prompt text""#).unwrap_err();
        assert!(
            err.to_string().contains("secret prompt text"),
            "premise: serde_json quotes"
        );
        let reason = json_reason(&err);
        assert!(!reason.contains("secret"), "{reason}");
        assert!(reason.contains("wrong shape"), "{reason}");
    }
}

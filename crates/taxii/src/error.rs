//! The crate's one error type.

/// Why a TAXII operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TaxiiError {
    /// The SQLite database failed.
    #[error("database {path}: {source}")]
    Db {
        /// The database file.
        path: String,
        /// The failure.
        #[source]
        source: rusqlite::Error,
    },
    /// A STIX object or bundle was refused.
    #[error(transparent)]
    Stix(#[from] moat_intel::IntelError),
    // Server configuration and store errors go here.
    /// The server configuration is not TOML, or has a key the format does not have, or lacks
    /// a required one.
    #[error("line {line}, column {column}: {message}")]
    ConfigSyntax {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What TOML or the format said.
        message: String,
    },
    /// A server configuration value that cannot be used.
    #[error("{key} (line {line}): {reason}")]
    Config {
        /// Key path (`server.page_size`, `partner[1].read`).
        key: String,
        /// 1-based line of the value.
        line: usize,
        /// Why (never quotes a secret).
        reason: String,
    },
    /// A query parameter, or a `next` token, the server cannot use (HTTP 400).
    #[error("{name}: {reason}")]
    BadParameter {
        /// The parameter (`limit`, `match[version]`, `next`).
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The TAXII store was written by a newer Moat.
    #[error(
        "taxii store {path} has schema version {found}, newer than the {supported} this moat knows"
    )]
    StoreTooNew {
        /// The database file.
        path: String,
        /// Its `user_version`.
        found: i64,
        /// The newest this code knows.
        supported: i64,
    },
    /// The server's listener failed.
    #[error("serving taxii: {0}")]
    Serve(#[source] std::io::Error),
    /// The operating system's random source failed (status ids, the paging key).
    #[error("system random source failed: {0}")]
    Random(String),

    // Client and intel database errors go here.
    /// A URL the client was given is not one it can use.
    #[error("url {url:?}: {reason}")]
    BadUrl {
        /// The URL (never holds credentials: URLs with a user part are refused).
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// HTTPS was asked for but the system's root certificates could not be loaded.
    #[error("cannot reach {url} over https: {reason}")]
    NoTlsRoots {
        /// The URL.
        url: String,
        /// Why the roots could not be loaded.
        reason: String,
    },
    /// The server could not be reached, or the connection failed mid-way.
    #[error("request to {url} failed: {reason}")]
    Transport {
        /// The URL.
        url: String,
        /// The failure, with its causes.
        reason: String,
    },
    /// The server did not answer in time.
    #[error("request to {url} timed out after {after:?}")]
    Timeout {
        /// The URL.
        url: String,
        /// The timeout.
        after: std::time::Duration,
    },
    /// The server answered with an error (a TAXII error message, or a body that is not one).
    #[error("server answered {status}: {title}{}", description.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    Remote {
        /// The HTTP status.
        status: u16,
        /// The error's title (shortened), or a note that the body is not a TAXII error.
        title: String,
        /// The error's description (shortened), if any.
        description: Option<String>,
    },
    /// The server answered something that is not TAXII 2.1.
    #[error("{url}: {reason}")]
    Protocol {
        /// The URL.
        url: String,
        /// What is wrong with the answer.
        reason: String,
    },
    /// The response was larger than the client accepts.
    #[error("{url}: response larger than {limit} bytes")]
    TooLarge {
        /// The URL.
        url: String,
        /// The limit.
        limit: usize,
    },
    /// A pull stopped before importing anything (a pagination loop, too many objects).
    #[error("pull stopped, nothing imported: {0}")]
    PullAborted(String),
    /// A push was refused in part or whole by the server.
    #[error("push: server refused {failure_count} object(s) after accepting {accepted}: {}", failures.join("; "))]
    PushFailed {
        /// Objects the server had accepted before (they stay accepted).
        accepted: u64,
        /// Objects refused.
        failure_count: u64,
        /// The first few refusals, `id: message`.
        failures: Vec<String>,
    },
    /// An object of an import was refused; nothing of the import was written.
    #[error("object {index} ({id}) refused, nothing imported: {error}")]
    Object {
        /// Its position in the import (from 0).
        index: usize,
        /// Its `id`, or `?` when it has none.
        id: String,
        /// Why it was refused (in the message, not a separate cause, so it prints once).
        error: moat_intel::IntelError,
    },
    /// A partner name is not `[a-z0-9_.-]{1,64}`.
    #[error("source {0:?} must be 1 to 64 of a-z, 0-9, '_', '.', '-'")]
    BadSource(String),
    /// The intel database was written by a newer Moat.
    #[error("intel database {path} has schema version {found}, newer than the {supported} this moat knows")]
    SchemaTooNew {
        /// The database file.
        path: String,
        /// Its `user_version`.
        found: i64,
        /// The newest this code knows.
        supported: i64,
    },
    /// The credentials cannot be sent as HTTP Basic.
    #[error("credentials: {0}")]
    BadCredentials(&'static str),
    /// A blocking task (a database import) did not finish.
    #[error("background task failed: {0}")]
    Task(String),
}

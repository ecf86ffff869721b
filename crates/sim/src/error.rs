//! The error type of the simulator.

use std::path::PathBuf;

/// Why a simulation could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// A corpus file could not be read.
    #[error("reading corpus file {path}: {source}")]
    CorpusIo {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A corpus file has content the loader cannot use.
    #[error("corpus file {path}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
    CorpusFormat {
        /// The file.
        path: PathBuf,
        /// 1-based line or record number, when known.
        line: Option<u64>,
        /// What is wrong.
        message: String,
    },
    /// The scenario file is invalid; `key` is the dotted path of the offending key.
    #[error("scenario {path}: {key}: {message}")]
    Scenario {
        /// The scenario file (or `<builtin>`).
        path: String,
        /// Dotted key path, e.g. `campaigns[2].accounts`.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// A run option is out of range.
    #[error("option {name}: {message}")]
    InvalidOption {
        /// The option (`scale`, `seed`).
        name: &'static str,
        /// What is wrong.
        message: String,
    },
    /// Writing the output failed.
    #[error(transparent)]
    Output(#[from] moat_format::FormatError),
    /// Other IO failure while writing output.
    #[error("writing {path}: {source}")]
    OutputIo {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

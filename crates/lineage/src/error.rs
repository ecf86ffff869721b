//! The crate's one error type.

use std::path::PathBuf;

/// Why an evaluation could not run. Messages are lowercase and name the file and line, the
/// option, or the watermark parameter at fault; they never contain key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A corpus file could not be read.
    #[error("reading {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A corpus record the loader cannot use.
    #[error("{}:{line}: {message}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// 1-based line (JSON Lines, TSV) or record (JSON array) number.
        line: u64,
        /// What is wrong.
        message: String,
    },
    /// The tokenizer could not be loaded, or failed on a corpus record.
    #[error("tokenizer: {context}: {source}")]
    Tokenize {
        /// Where: the tokenizer spec, or `file:line` of the record.
        context: String,
        /// The cause.
        source: moat_tokenize::Error,
    },
    /// A watermark parameter or test was refused by `moat-mark`.
    #[error(transparent)]
    Mark(#[from] moat_mark::Error),
    /// An option is out of range.
    #[error("option {name}: {message}")]
    InvalidOption {
        /// The option, as its path in [`crate::Options`] (e.g. `model.order`).
        name: &'static str,
        /// What is wrong.
        message: String,
    },
    /// Training or running a neural student failed (the `neural` feature).
    #[error("neural student: {0}")]
    Neural(String),
    /// The corpus is too small for the experiment as configured.
    #[error("not enough data: {0}")]
    NotEnoughData(String),
}

impl Error {
    /// Neural students asked of a build without the `neural` feature.
    pub(crate) fn no_neural_feature() -> Error {
        Error::InvalidOption {
            name: "model.student",
            message: "neural students need a build with the `neural` feature \
                      (cargo build --release --features neural)"
                .into(),
        }
    }
}

//! The error of this crate: a tokenizer that cannot be loaded, or text or ids it cannot handle.

use std::path::PathBuf;

/// Why a tokenizer could not be loaded, or could not encode or decode.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The spec is neither a built-in encoding name nor a path to an existing file.
    #[error("unknown tokenizer {spec:?}: expected o200k, cl100k or a path to tokenizer.json")]
    UnknownSpec {
        /// The spec as given.
        spec: String,
    },
    /// A built-in encoding failed to build from its embedded ranks.
    #[error("cannot build tokenizer {name}: {message}")]
    Builtin {
        /// The encoding's name, e.g. `o200k_base`.
        name: &'static str,
        /// What went wrong.
        message: String,
    },
    /// The tokenizer file could not be read.
    #[error("cannot read tokenizer file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// The tokenizer file was read but is not a tokenizer the `tokenizers` crate can load.
    #[error("invalid tokenizer file {}: {source}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The parse or validation error.
        source: tokenizers::Error,
    },
    /// The tokenizer failed on the text (for example a regex backtracking limit on a
    /// pathological input).
    #[error("tokenizer {tokenizer} cannot encode the text: {message}")]
    Encode {
        /// The tokenizer's name.
        tokenizer: String,
        /// What went wrong.
        message: String,
    },
    /// An id that the tokenizer does not define.
    #[error("token id {id} is not in the vocabulary of tokenizer {tokenizer}")]
    UnknownId {
        /// The tokenizer's name.
        tokenizer: String,
        /// The id.
        id: u32,
    },
    /// The tokenizer failed to turn ids back into text.
    #[error("tokenizer {tokenizer} cannot decode the ids: {message}")]
    Decode {
        /// The tokenizer's name.
        tokenizer: String,
        /// What went wrong.
        message: String,
    },
}

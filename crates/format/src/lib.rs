//! Streaming readers and writers for Moat's line-oriented formats: exchange log v1,
//! `accounts.jsonl`, `labels.jsonl` and `detections.jsonl` (`../shared/spec/exchange-log.md`).
//!
//! Files are JSON Lines, optionally gzip-compressed. Readers sniff the gzip magic bytes (so a
//! `.jsonl.gz` with the wrong name still reads), hold one line in memory at a time (bounded by
//! [`ReadOptions::max_line_bytes`]), validate every record, check time order where the record
//! kind has one, and name the file and line of every problem. With
//! [`ReadOptions::skip_bad_lines`] a malformed line is skipped and counted in a [`SkipReport`]
//! instead of ending the read. Out-of-order input is always an error: re-sorting must be explicit.
//! Writers choose gzip from the `.gz` extension.
//!
//! This crate knows files and bytes; it knows nothing of detection.

mod error;
mod reader;
mod writer;

pub use error::{FormatError, FormatErrorKind};
pub use reader::{ReadOptions, Reader, SkipReport};
pub use writer::{encode_line, Writer};

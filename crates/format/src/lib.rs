//! Streaming readers and writers for Moat's line-oriented formats: exchange log v1,
//! `accounts.jsonl`, `labels.jsonl` and `detections.jsonl` (`../shared/spec/exchange-log.md`).
//!
//! Files are JSON Lines, optionally gzip-compressed. Readers sniff the gzip magic bytes (so a
//! `.jsonl.gz` with the wrong name still reads), decompress and split lines on a background
//! thread a few MiB ahead of the parsing thread (bounded memory: a few batches plus one line of
//! at most [`ReadOptions::max_line_bytes`]; [`Reader::open_sequential`] keeps to one thread),
//! validate every record, check time order where the record kind has one, and name the file
//! and line of every problem. With [`ReadOptions::skip_bad_lines`] a malformed line is skipped
//! and counted in a [`SkipReport`] instead of ending the read. Out-of-order input is always an
//! error: re-sorting must be explicit.
//! [`ParallelReader`] parses on several worker threads and maps each record with a function
//! of the caller's, with the same items, errors and line numbers in the same order.
//! Writers choose gzip from the `.gz` extension.
//!
//! This crate knows files and bytes; it knows nothing of detection.

mod error;
mod parallel;
mod pipeline;
mod reader;
mod writer;

pub use error::{FormatError, FormatErrorKind};
pub use parallel::ParallelReader;
pub use reader::{ReadOptions, Reader, SkipReport};
pub use writer::{encode_line, Writer};

//! [`Reader`]: a streaming, validating, line-numbering reader of JSON Lines records.
//!
//! By default decompression and line splitting run on a background thread
//! ([`crate::pipeline`]) while the caller's thread parses; [`Reader::open_sequential`] and
//! [`Reader::from_reader_sequential`] keep everything on one thread. Both give the same
//! records, errors, line numbers and skip reports for the same input.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::marker::PhantomData;
use std::path::Path;

use flate2::read::MultiGzDecoder;
use moat_types::{Record, Timestamp};

use crate::error::Brief;
use crate::pipeline::{Line, PipelinedLines, READ_CHUNK};
use crate::{FormatError, FormatErrorKind};

/// How a [`Reader`] treats bad input.
#[derive(Debug, Clone, Copy)]
pub struct ReadOptions {
    /// Skip (and count) malformed or invalid lines instead of failing on the first one.
    pub skip_bad_lines: bool,
    /// Longest line accepted, in bytes; longer lines are errors (skippable). Bounds memory.
    pub max_line_bytes: usize,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            skip_bad_lines: false,
            max_line_bytes: 64 << 20,
        }
    }
}

/// Lines skipped under [`ReadOptions::skip_bad_lines`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SkipReport {
    /// How many lines were skipped.
    pub count: u64,
    /// The first few skipped lines: line number and a one-line reason.
    pub examples: Vec<(u64, String)>,
}

impl SkipReport {
    /// How many examples a report keeps.
    pub const MAX_EXAMPLES: usize = 10;

    pub(crate) fn record(&mut self, err: &FormatError) {
        self.count += 1;
        if self.examples.len() < Self::MAX_EXAMPLES {
            self.examples
                .push((err.line.unwrap_or(0), Brief(&err.kind).to_string()));
        }
    }
}

/// Reads records of type `T` one line at a time, in bounded memory.
///
/// Yields `Err` for the first bad line (and then stops) unless skipping is enabled, in which
/// case skippable errors are counted in [`Reader::skipped`] and reading goes on. IO errors and
/// out-of-order records always end the read.
///
/// [`Reader::open`] and [`Reader::from_reader`] decompress and split lines on a background
/// thread, a few MiB ahead of the caller; dropping the reader stops that thread.
pub struct Reader<T> {
    at: Position,
    lines: Lines,
    done: bool,
    _record: PhantomData<fn() -> T>,
}

/// Where a read stands, in input order: what both [`Reader`] and
/// [`crate::ParallelReader`] keep and decide the same way (line numbers, the skip policy and
/// its report, the time order).
#[derive(Debug)]
pub(crate) struct Position {
    pub(crate) path: String,
    pub(crate) opts: ReadOptions,
    /// Number of the last line read (1-based; 0 before the first).
    pub(crate) line_no: u64,
    last_ts: Option<Timestamp>,
    pub(crate) skipped: SkipReport,
}

impl Position {
    pub(crate) fn new(path: String, opts: ReadOptions) -> Self {
        Position {
            path,
            opts,
            line_no: 0,
            last_ts: None,
            skipped: SkipReport::default(),
        }
    }

    /// A problem with the current line: `Ok` when it is skipped (and counted), `Err` with the
    /// error that ends the read otherwise.
    pub(crate) fn bad(&mut self, kind: FormatErrorKind) -> Result<(), FormatError> {
        let err = FormatError::new(&self.path, Some(self.line_no), kind);
        if self.opts.skip_bad_lines && err.is_skippable() {
            self.skipped.record(&err);
            Ok(())
        } else {
            Err(err)
        }
    }

    /// Checks that the current line's record (with order key `ts`) is not earlier than the
    /// previous one; an error ends the read.
    pub(crate) fn in_order(&mut self, ts: Option<Timestamp>) -> Result<(), FormatError> {
        let Some(ts) = ts else {
            return Ok(());
        };
        if let Some(previous) = self.last_ts.filter(|p| ts < *p) {
            let kind = FormatErrorKind::OutOfOrder { ts, previous };
            return Err(FormatError::new(&self.path, Some(self.line_no), kind));
        }
        self.last_ts = Some(ts);
        Ok(())
    }

    /// The input failed before the next line was complete.
    pub(crate) fn failed(&self, e: std::io::Error) -> FormatError {
        FormatError::new(&self.path, Some(self.line_no + 1), e)
    }
}

/// Where lines come from.
enum Lines {
    Sequential(SequentialLines),
    Pipelined(PipelinedLines),
    /// The read is over; the source (and a background thread's channel) has been dropped.
    Finished,
}

impl Lines {
    fn next_line(&mut self, max_line_bytes: usize) -> Line<'_> {
        match self {
            Lines::Sequential(s) => s.next_line(max_line_bytes),
            Lines::Pipelined(p) => p.next_line(),
            Lines::Finished => Line::End,
        }
    }
}

impl<T: Record> Reader<T> {
    /// Opens `path`, plain or gzip (detected from the content, not the name), and reads it
    /// with decompression and line splitting on a background thread.
    pub fn open(path: &Path, opts: ReadOptions) -> Result<Self, FormatError> {
        let name = path.display().to_string();
        let file = File::open(path).map_err(|e| FormatError::new(&name, None, e))?;
        Self::from_reader(name, file, opts)
    }

    /// Like [`Reader::open`], but reads, decompresses, splits and parses on the caller's
    /// thread alone: for callers that must not start a thread, and as the baseline of the
    /// `read` bench.
    pub fn open_sequential(path: &Path, opts: ReadOptions) -> Result<Self, FormatError> {
        let name = path.display().to_string();
        let file = File::open(path).map_err(|e| FormatError::new(&name, None, e))?;
        Self::from_reader_sequential(name, file, opts)
    }

    /// Wraps any byte source, plain or gzip; `name` appears in errors. Decompression and line
    /// splitting run on a background thread, which ends when the input does or when the
    /// reader is dropped (at its next hand-over of lines, so a source that blocks forever in
    /// `read` keeps it waiting there).
    pub fn from_reader(
        name: impl Into<String>,
        input: impl Read + Send + 'static,
        opts: ReadOptions,
    ) -> Result<Self, FormatError> {
        let name = name.into();
        let input = decoded(&name, input)?;
        let lines = PipelinedLines::spawn(input, opts.max_line_bytes)
            .map_err(|e| FormatError::new(&name, None, e))?;
        Ok(Self::with_lines(name, Lines::Pipelined(lines), opts))
    }

    /// Like [`Reader::from_reader`], but on the caller's thread alone.
    pub fn from_reader_sequential(
        name: impl Into<String>,
        input: impl Read + Send + 'static,
        opts: ReadOptions,
    ) -> Result<Self, FormatError> {
        let name = name.into();
        let (raw, gzip) = sniff(&name, input)?;
        let input: Box<dyn BufRead + Send> = if gzip {
            Box::new(BufReader::with_capacity(
                READ_CHUNK,
                MultiGzDecoder::new(raw),
            ))
        } else {
            Box::new(raw)
        };
        let lines = Lines::Sequential(SequentialLines {
            input,
            buf: Vec::new(),
        });
        Ok(Self::with_lines(name, lines, opts))
    }

    fn with_lines(path: String, lines: Lines, opts: ReadOptions) -> Self {
        Reader {
            at: Position::new(path, opts),
            lines,
            done: false,
            _record: PhantomData,
        }
    }

    /// Lines skipped so far.
    pub fn skipped(&self) -> &SkipReport {
        &self.at.skipped
    }

    /// Number of the last line read (1-based; 0 before the first).
    pub fn line(&self) -> u64 {
        self.at.line_no
    }

    /// The name given at construction.
    pub fn path(&self) -> &str {
        &self.at.path
    }

    fn next_record(&mut self) -> Option<Result<T, FormatError>> {
        loop {
            if self.done {
                return None;
            }
            let max_line_bytes = self.at.opts.max_line_bytes;
            let parsed = match self.lines.next_line(max_line_bytes) {
                Line::End => {
                    self.finish();
                    return None;
                }
                Line::Failed(e) => {
                    self.finish();
                    return Some(Err(self.at.failed(e)));
                }
                Line::TooLong => {
                    self.at.line_no += 1;
                    Err(FormatErrorKind::LineTooLong {
                        limit: max_line_bytes,
                    })
                }
                Line::Text(text) => {
                    self.at.line_no += 1;
                    match parse_record::<T>(text) {
                        Some(parsed) => parsed,
                        None => continue,
                    }
                }
            };
            // A record in order, a skipped line (`None`), or the error that ends the read.
            let outcome = match parsed {
                Ok(r) => self.at.in_order(r.order_key()).map(|()| Some(r)),
                Err(kind) => self.at.bad(kind).map(|()| None),
            };
            match outcome {
                Ok(Some(record)) => return Some(Ok(record)),
                Ok(None) => continue,
                Err(e) => {
                    self.finish();
                    return Some(Err(e));
                }
            }
        }
    }

    /// Ends the read. Dropping the line source at once, rather than with the reader, stops a
    /// background thread that would otherwise keep the input open (and its read-ahead
    /// buffers) for as long as the caller keeps the reader, e.g. to report what it skipped.
    fn finish(&mut self) {
        self.done = true;
        self.lines = Lines::Finished;
    }
}

impl<T: Record> Iterator for Reader<T> {
    type Item = Result<T, FormatError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_record()
    }
}

/// Parses and validates one line; `None` for a blank line (which holds no record).
pub(crate) fn parse_record<T: Record>(text: &[u8]) -> Option<Result<T, FormatErrorKind>> {
    let line = trim_line(text);
    if line.is_empty() {
        return None;
    }
    Some(
        parse_line::<T>(line)
            .map_err(|e| FormatErrorKind::Parse(e.to_string()))
            .and_then(|r| r.validate().map(|()| r).map_err(FormatErrorKind::from)),
    )
}

/// `input`, decompressed if it is gzip (told from its first bytes, not its name).
pub(crate) fn decoded(
    name: &str,
    input: impl Read + Send + 'static,
) -> Result<Box<dyn Read + Send>, FormatError> {
    let (raw, gzip) = sniff(name, input)?;
    // The decoder reads its input through `raw`'s buffer, and plain input is read through it
    // too because it holds the bytes already sniffed.
    Ok(if gzip {
        Box::new(MultiGzDecoder::new(raw))
    } else {
        Box::new(raw)
    })
}

/// Parses one line exactly as `serde_json::from_slice` does, but faster: checking the whole
/// line's UTF-8 once and parsing it as `str` spares serde_json a check per string, which made
/// parsing an exchange about 14% faster. Invalid UTF-8 goes through `from_slice` so that the
/// error (message and column) stays the same.
fn parse_line<T: serde::de::DeserializeOwned>(line: &[u8]) -> serde_json::Result<T> {
    match std::str::from_utf8(line) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(line),
    }
}

/// Reads the first bytes of `input` to tell gzip from plain text; the sniffed bytes stay in
/// the returned buffer.
fn sniff<R: Read>(name: &str, input: R) -> Result<(BufReader<R>, bool), FormatError> {
    let mut raw = BufReader::with_capacity(READ_CHUNK, input);
    loop {
        match raw.fill_buf() {
            Ok(head) => {
                let gzip = head.starts_with(&[0x1f, 0x8b]);
                return Ok((raw, gzip));
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(FormatError::new(name, None, e)),
        }
    }
}

/// Lines read on the caller's thread, one at a time.
struct SequentialLines {
    input: Box<dyn BufRead + Send>,
    buf: Vec<u8>,
}

impl SequentialLines {
    fn next_line(&mut self, max_line_bytes: usize) -> Line<'_> {
        let mut too_long = false;
        match self.read_line(max_line_bytes, &mut too_long) {
            Ok(false) => Line::End,
            Ok(true) if too_long => Line::TooLong,
            Ok(true) => Line::Text(&self.buf),
            Err(e) => Line::Failed(e),
        }
    }

    /// Reads the next line into `self.buf`. `Ok(false)` at end of input; `Ok(true)` with
    /// `too_long` set when the line exceeded the limit (its bytes were discarded).
    fn read_line(&mut self, max_line_bytes: usize, too_long: &mut bool) -> std::io::Result<bool> {
        self.buf.clear();
        *too_long = false;
        let mut any = false;
        loop {
            let chunk = match self.input.fill_buf() {
                Ok(c) => c,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if chunk.is_empty() {
                return Ok(any);
            }
            any = true;
            let (take, found) = match memchr::memchr(b'\n', chunk) {
                Some(i) => (i + 1, true),
                None => (chunk.len(), false),
            };
            let data = &chunk[..if found { take - 1 } else { take }];
            if !*too_long {
                if self.buf.len() + data.len() > max_line_bytes {
                    *too_long = true;
                    self.buf.clear();
                } else {
                    self.buf.extend_from_slice(data);
                }
            }
            self.input.consume(take);
            if found {
                return Ok(true);
            }
        }
    }
}

/// Strips a trailing `\r` and surrounding ASCII whitespace.
pub(crate) fn trim_line(line: &[u8]) -> &[u8] {
    let start = line
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(line.len());
    let end = line
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |i| i + 1);
    &line[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use moat_types::Exchange;
    use proptest::prelude::*;

    fn same_as_from_slice(bytes: &[u8]) {
        let ours = format!("{:?}", parse_line::<Exchange>(bytes));
        let reference = format!("{:?}", serde_json::from_slice::<Exchange>(bytes));
        assert_eq!(ours, reference, "{:?}", String::from_utf8_lossy(bytes));
    }

    #[test]
    fn parse_line_gives_the_results_and_errors_of_from_slice() {
        for line in [
            &br#"{"v":1,"ts":"2026-04-01T00:00:00Z","account_id":"a","request":{"messages":[{"role":"user","content":"h\u00e9\n\ud83d\ude00"}]}}"#[..],
            br#"{"v":1,"ts":"2026-04-01T00:00:00Z","account_id":"\ud800","request":{"messages":[]}}"#,
            b"{\"v\":1,\"ts\":\"2026-04-01T00:00:00Z\",\"account_id\":\"\xff\xfe\"}",
            b"{\"v\":1,\"account_id\":\"caf\xc3\xa9\",\"x\":\"\xc3\"}",
            b"{\"v\":1,\"ts\":\"2026-04-01T00:00:00Z\",\"account_id\":\"a\tb\"}",
            b"{not json",
            b"",
            b"\xef\xbb\xbf{}",
        ] {
            same_as_from_slice(line);
        }
    }

    proptest! {
        #[test]
        fn parse_line_agrees_with_from_slice_on_any_bytes(
            bytes in proptest::collection::vec(any::<u8>(), 0..200),
            prefix in prop_oneof![
                Just(&b""[..]),
                Just(&br#"{"v":1,"ts":"2026-04-01T00:00:00Z","account_id":""#[..]),
            ],
        ) {
            let mut line = prefix.to_vec();
            line.extend_from_slice(&bytes);
            same_as_from_slice(&line);
        }

        #[test]
        fn parse_line_agrees_with_from_slice_on_any_text(
            text in r#"\{("[a-z_]{1,3}"|[ -~]|[é😀\t\n]|\\u[0-9a-fA-F]{4}|"v":1|"ts":"2026-04-01T00:00:00Z"){0,40}"#,
        ) {
            same_as_from_slice(text.as_bytes());
        }
    }
}

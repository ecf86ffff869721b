//! [`Reader`]: a streaming, validating, line-numbering reader of JSON Lines records.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::marker::PhantomData;
use std::path::Path;

use flate2::read::MultiGzDecoder;
use moat_types::{Record, Timestamp};

use crate::error::Brief;
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

    fn record(&mut self, err: &FormatError) {
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
pub struct Reader<T> {
    path: String,
    input: Box<dyn BufRead + Send>,
    opts: ReadOptions,
    line_no: u64,
    buf: Vec<u8>,
    last_ts: Option<Timestamp>,
    skipped: SkipReport,
    done: bool,
    _record: PhantomData<fn() -> T>,
}

impl<T: Record> Reader<T> {
    /// Opens `path`, plain or gzip (detected from the content, not the name).
    pub fn open(path: &Path, opts: ReadOptions) -> Result<Self, FormatError> {
        let name = path.display().to_string();
        let file = File::open(path).map_err(|e| FormatError::new(&name, None, e))?;
        Self::from_reader(name, file, opts)
    }

    /// Wraps any byte source; `name` appears in errors.
    pub fn from_reader(
        name: impl Into<String>,
        input: impl Read + Send + 'static,
        opts: ReadOptions,
    ) -> Result<Self, FormatError> {
        let name = name.into();
        let mut raw = BufReader::with_capacity(256 << 10, input);
        let head = raw
            .fill_buf()
            .map_err(|e| FormatError::new(&name, None, e))?;
        let gzip = head.starts_with(&[0x1f, 0x8b]);
        let input: Box<dyn BufRead + Send> = if gzip {
            Box::new(BufReader::with_capacity(
                256 << 10,
                MultiGzDecoder::new(raw),
            ))
        } else {
            Box::new(raw)
        };
        Ok(Reader {
            path: name,
            input,
            opts,
            line_no: 0,
            buf: Vec::new(),
            last_ts: None,
            skipped: SkipReport::default(),
            done: false,
            _record: PhantomData,
        })
    }

    /// Lines skipped so far.
    pub fn skipped(&self) -> &SkipReport {
        &self.skipped
    }

    /// Number of the last line read (1-based; 0 before the first).
    pub fn line(&self) -> u64 {
        self.line_no
    }

    /// The name given at construction.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Reads the next line into `self.buf`. `Ok(false)` at end of input; `Ok(true)` with
    /// `too_long` set when the line exceeded the limit (its bytes were discarded).
    fn read_line(&mut self, too_long: &mut bool) -> std::io::Result<bool> {
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
            let (take, found) = match memchr(chunk) {
                Some(i) => (i + 1, true),
                None => (chunk.len(), false),
            };
            let data = &chunk[..if found { take - 1 } else { take }];
            if !*too_long {
                if self.buf.len() + data.len() > self.opts.max_line_bytes {
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

    fn next_record(&mut self) -> Option<Result<T, FormatError>> {
        loop {
            if self.done {
                return None;
            }
            let mut too_long = false;
            match self.read_line(&mut too_long) {
                Ok(false) => {
                    self.done = true;
                    return None;
                }
                Ok(true) => {}
                Err(e) => {
                    self.done = true;
                    return Some(Err(FormatError::new(&self.path, Some(self.line_no + 1), e)));
                }
            }
            self.line_no += 1;
            if too_long {
                let err = FormatError::new(
                    &self.path,
                    Some(self.line_no),
                    FormatErrorKind::LineTooLong {
                        limit: self.opts.max_line_bytes,
                    },
                );
                match self.bad(err) {
                    Some(e) => return Some(Err(e)),
                    None => continue,
                }
            }
            let line = trim_line(&self.buf);
            if line.is_empty() {
                continue;
            }
            let parsed = serde_json::from_slice::<T>(line)
                .map_err(|e| FormatErrorKind::Parse(e.to_string()))
                .and_then(|r| r.validate().map(|()| r).map_err(FormatErrorKind::from));
            let record = match parsed {
                Ok(r) => r,
                Err(kind) => {
                    let err = FormatError::new(&self.path, Some(self.line_no), kind);
                    match self.bad(err) {
                        Some(e) => return Some(Err(e)),
                        None => continue,
                    }
                }
            };
            if let Some(ts) = record.order_key() {
                if let Some(previous) = self.last_ts.filter(|p| ts < *p) {
                    self.done = true;
                    return Some(Err(FormatError::new(
                        &self.path,
                        Some(self.line_no),
                        FormatErrorKind::OutOfOrder { ts, previous },
                    )));
                }
                self.last_ts = Some(ts);
            }
            return Some(Ok(record));
        }
    }

    /// Handles a skippable error: counts it and returns `None` when skipping, or ends the read
    /// and returns it.
    fn bad(&mut self, err: FormatError) -> Option<FormatError> {
        if self.opts.skip_bad_lines && err.is_skippable() {
            self.skipped.record(&err);
            None
        } else {
            self.done = true;
            Some(err)
        }
    }
}

impl<T: Record> Iterator for Reader<T> {
    type Item = Result<T, FormatError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_record()
    }
}

fn memchr(hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&b| b == b'\n')
}

/// Strips a trailing `\r` and surrounding ASCII whitespace.
fn trim_line(line: &[u8]) -> &[u8] {
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

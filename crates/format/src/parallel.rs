//! [`ParallelReader`]: a [`crate::Reader`] whose parsing runs on worker threads.
//!
//! The background thread of [`crate::pipeline`] decompresses and splits the input into
//! batches of lines; a few workers take whole batches, parse and validate every line and turn
//! each record into the caller's type with the caller's function (e.g. an analysis's
//! per-record features); the caller's thread receives the batches back in input order and does
//! only what depends on order: line numbers, the skip policy and the time-order check. So the
//! caller sees exactly the items, errors, line numbers and skip report that a [`crate::Reader`]
//! over the same input would give (with the function applied), while parsing, the most costly
//! part of reading, is spread over the workers, and each record is parsed, used and freed on
//! one thread.
//!
//! [`ParallelReader::from_reader_fast`] lets the caller read valid lines its own, cheaper way
//! (a view borrowing from the line buffer instead of an owned record), falling back to the
//! record type for every line it declines, so what the caller observes stays the same.
//!
//! Memory stays bounded: besides the splitter's batches, at most `8 * workers` parsed batches
//! wait for the caller and one per worker is being parsed. Dropping the reader stops the
//! workers and the splitter at their next hand-over.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::marker::PhantomData;
use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use moat_types::{Record, Timestamp};

use crate::pipeline::{spawn_splitter, Batch, Msg, Span};
use crate::reader::{decoded, parse_record, trim_line, Position};
use crate::{FormatError, FormatErrorKind, ReadOptions, SkipReport};

/// One line, as a worker left it.
enum Parsed<U> {
    /// Blank: no record.
    Blank,
    /// A valid record's order key and what the caller's function made of it.
    Record(Option<Timestamp>, U),
    /// A malformed, invalid or over-long line.
    Bad(FormatErrorKind),
}

/// What a worker hands back for one message of the splitter, in the splitter's order.
enum Part<U> {
    Lines(Vec<Parsed<U>>),
    End,
    Failed(io::Error),
}

/// The splitter's output and the number of the next message taken from it: workers take
/// messages under this lock, so the numbers follow the input.
type Source = Mutex<(Receiver<Msg>, u64)>;

/// Reads records of type `T` in parallel and yields `map(record)` in input order; see the
/// module documentation.
pub struct ParallelReader<T, U> {
    at: Position,
    results: Option<Receiver<(u64, Part<U>)>>,
    pending: BTreeMap<u64, Part<U>>,
    next: u64,
    current: std::vec::IntoIter<Parsed<U>>,
    done: bool,
    workers: Vec<JoinHandle<()>>,
    _record: PhantomData<fn() -> T>,
}

impl<T, U> ParallelReader<T, U>
where
    T: Record,
    U: Send + 'static,
{
    /// Opens `path`, plain or gzip, and reads it with `workers` parsing threads (at least one)
    /// applying `map` to every valid record.
    pub fn open<F>(
        path: &Path,
        opts: ReadOptions,
        workers: usize,
        map: F,
    ) -> Result<Self, FormatError>
    where
        F: Fn(T) -> U + Send + Sync + 'static,
    {
        let name = path.display().to_string();
        let file = std::fs::File::open(path).map_err(|e| FormatError::new(&name, None, e))?;
        Self::from_reader(name, file, opts, workers, map)
    }

    /// Wraps any byte source, plain or gzip; `name` appears in errors.
    pub fn from_reader<F>(
        name: impl Into<String>,
        input: impl Read + Send + 'static,
        opts: ReadOptions,
        workers: usize,
        map: F,
    ) -> Result<Self, FormatError>
    where
        F: Fn(T) -> U + Send + Sync + 'static,
    {
        Self::spawn(name.into(), input, opts, workers, move |line: &[u8]| {
            parse_with(line, &map)
        })
    }

    /// Like [`ParallelReader::from_reader`], with a faster way to read a line: `fast` reads
    /// a whole line (valid UTF-8, trimmed, not blank) straight into the caller's type, or
    /// gives `None` when the line is not a valid record; such lines (and lines that are not
    /// UTF-8) are then parsed as `T` and mapped, so errors, skips and any record `fast`
    /// declines come out exactly as [`ParallelReader::from_reader`] gives them.
    ///
    /// `fast` must accept only lines that parse and validate as `T`, and give for them the
    /// order key of that record and what `map` gives for it: e.g. a parse into a borrowing
    /// view of the record that copies only what the caller keeps.
    pub fn from_reader_fast<P, F>(
        name: impl Into<String>,
        input: impl Read + Send + 'static,
        opts: ReadOptions,
        workers: usize,
        fast: P,
        map: F,
    ) -> Result<Self, FormatError>
    where
        P: Fn(&str) -> Option<(Option<Timestamp>, U)> + Send + Sync + 'static,
        F: Fn(T) -> U + Send + Sync + 'static,
    {
        Self::spawn(name.into(), input, opts, workers, move |line: &[u8]| {
            let text = trim_line(line);
            if text.is_empty() {
                return Parsed::Blank;
            }
            if let Some((ts, item)) = std::str::from_utf8(text).ok().and_then(&fast) {
                return Parsed::Record(ts, item);
            }
            parse_with(line, &map)
        })
    }

    /// Starts the splitter and `workers` threads reading each line with `parse`.
    fn spawn<P>(
        name: String,
        input: impl Read + Send + 'static,
        opts: ReadOptions,
        workers: usize,
        parse: P,
    ) -> Result<Self, FormatError>
    where
        P: Fn(&[u8]) -> Parsed<U> + Send + Sync + 'static,
    {
        let input = decoded(&name, input)?;
        let spawn_error = |e: io::Error| FormatError::new(&name, None, e);
        let (rx, recycle) = spawn_splitter(input, opts.max_line_bytes).map_err(spawn_error)?;
        let workers = workers.max(1);
        let source: Arc<Source> = Arc::new(Mutex::new((rx, 0)));
        let parse = Arc::new(parse);
        let (done_tx, done_rx) = sync_channel(8 * workers);
        let mut handles = Vec::with_capacity(workers);
        for i in 0..workers {
            let source = Arc::clone(&source);
            let parse = Arc::clone(&parse);
            let done = done_tx.clone();
            let recycle = recycle.clone();
            let limit = opts.max_line_bytes;
            let handle = std::thread::Builder::new()
                .name(format!("moat-format-parse-{i}"))
                .spawn(move || work(&source, &*parse, &done, &recycle, limit))
                .map_err(spawn_error)?;
            handles.push(handle);
        }
        Ok(ParallelReader {
            at: Position::new(name, opts),
            results: Some(done_rx),
            pending: BTreeMap::new(),
            next: 0,
            current: Vec::new().into_iter(),
            done: false,
            workers: handles,
            _record: PhantomData,
        })
    }

    /// Lines skipped so far.
    pub fn skipped(&self) -> &SkipReport {
        &self.at.skipped
    }

    /// Number of the last line read (1-based; 0 before the first).
    pub fn line(&self) -> u64 {
        self.at.line_no
    }

    /// The name given for the input.
    pub fn path(&self) -> &str {
        &self.at.path
    }

    /// Ends the read: drops what is pending and stops the workers (which stop the splitter).
    fn finish(&mut self) {
        self.done = true;
        self.results = None;
        self.pending.clear();
        self.current = Vec::new().into_iter();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }

    /// The next part in input order, waiting for the workers.
    fn next_part(&mut self) -> Option<Part<U>> {
        let results = self.results.as_ref()?;
        while !self.pending.contains_key(&self.next) {
            let (seq, part) = results.recv().ok()?;
            self.pending.insert(seq, part);
        }
        let part = self.pending.remove(&self.next)?;
        self.next += 1;
        Some(part)
    }
}

impl<T, U> Iterator for ParallelReader<T, U>
where
    T: Record,
    U: Send + 'static,
{
    type Item = Result<U, FormatError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.done {
                return None;
            }
            if let Some(parsed) = self.current.next() {
                self.at.line_no += 1;
                // A record in order, a skipped line (`None`), or the error that ends the read.
                let outcome = match parsed {
                    Parsed::Blank => Ok(None),
                    Parsed::Bad(kind) => self.at.bad(kind).map(|()| None),
                    Parsed::Record(ts, item) => self.at.in_order(ts).map(|()| Some(item)),
                };
                match outcome {
                    Ok(Some(item)) => return Some(Ok(item)),
                    Ok(None) => continue,
                    Err(e) => {
                        self.finish();
                        return Some(Err(e));
                    }
                }
            }
            match self.next_part() {
                Some(Part::Lines(lines)) => self.current = lines.into_iter(),
                Some(Part::End) => {
                    self.finish();
                    return None;
                }
                Some(Part::Failed(e)) => {
                    let err = self.at.failed(e);
                    self.finish();
                    return Some(Err(err));
                }
                // Workers hang up only after `End` or `Failed` unless one panicked: say so
                // rather than pass a cut-short input off as complete.
                None => {
                    let e = io::Error::other("background parsing thread stopped unexpectedly");
                    let err = self.at.failed(e);
                    self.finish();
                    return Some(Err(err));
                }
            }
        }
    }
}

impl<T, U> Drop for ParallelReader<T, U> {
    fn drop(&mut self) {
        // Workers blocked on a full result channel wake up to a closed one and stop.
        self.results = None;
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

/// A worker: takes the splitter's messages in turn and parses whole batches until the input
/// ends or the reader is gone.
fn work<U, P>(
    source: &Source,
    parse: &P,
    done: &SyncSender<(u64, Part<U>)>,
    recycle: &Sender<Batch>,
    limit: usize,
) where
    P: Fn(&[u8]) -> Parsed<U>,
{
    loop {
        let (seq, msg) = {
            let Ok(mut guard) = source.lock() else {
                return;
            };
            let (rx, next) = &mut *guard;
            // The splitter hangs up without `End` or `Failed` only if it panicked.
            let msg = rx.recv().unwrap_or_else(|_| {
                Msg::Failed(io::Error::other(
                    "background reader thread stopped unexpectedly",
                ))
            });
            let seq = *next;
            *next += 1;
            (seq, msg)
        };
        let (part, last) = match msg {
            Msg::Lines(batch) => {
                let lines = batch
                    .spans
                    .iter()
                    .map(|span| match *span {
                        Span::TooLong => Parsed::Bad(FormatErrorKind::LineTooLong { limit }),
                        Span::Line { start, end } => match batch.buf.get(start..end) {
                            Some(line) => parse(line),
                            None => Parsed::Bad(FormatErrorKind::Io(io::Error::other(
                                "line span outside its batch",
                            ))),
                        },
                    })
                    .collect();
                // The splitter may have ended already; then the buffer is simply freed.
                let _ = recycle.send(batch);
                (Part::Lines(lines), false)
            }
            Msg::End => (Part::End, true),
            Msg::Failed(e) => (Part::Failed(e), true),
        };
        if done.send((seq, part)).is_err() || last {
            return;
        }
    }
}

/// One line parsed as a `T`, validated and mapped.
fn parse_with<T: Record, U>(line: &[u8], map: &impl Fn(T) -> U) -> Parsed<U> {
    match parse_record::<T>(line) {
        None => Parsed::Blank,
        Some(Ok(record)) => {
            let ts = record.order_key();
            Parsed::Record(ts, map(record))
        }
        Some(Err(kind)) => Parsed::Bad(kind),
    }
}

//! Decompression and line splitting on a background thread, for [`crate::Reader`].
//!
//! Reading an exchange log is two jobs of similar cost: inflating gzip and parsing JSON. This
//! module runs the first (and the search for newlines) on its own thread, which hands batches of
//! complete lines to the reader's thread over a bounded channel; the reader parses them and
//! sends the emptied buffers back for reuse. It produces exactly the lines, over-long-line
//! markers and IO errors, in exactly the order, that the sequential line reader in
//! `reader.rs` produces from the same input; it knows nothing of JSON or records.
//!
//! Memory stays bounded: at most [`DEPTH`] batches wait in the channel, one is being filled and
//! one is being parsed, each about [`BATCH_BYTES`] plus one read, and a batch grows beyond
//! that only to hold a single line of at most `max_line_bytes`. Dropping the consumer ends the
//! thread at its next hand-over (it never blocks on a full channel once the consumer is gone).

use std::io::{self, Read};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender, TryRecvError};

/// Bytes asked of the input per read. It equals the buffer capacity of the sequential reader
/// so that both make the same calls on a decoder: a gzip decoder that hits corrupt data drops
/// what it decoded during the failing call, so the bytes seen before an error depend on the
/// size of the reads, and both readers must report the same lines before the same error.
pub(crate) const READ_CHUNK: usize = 256 << 10;

/// A batch is handed over once it holds this many bytes.
const BATCH_BYTES: usize = 1 << 20;

/// A batch is also handed over once it holds this many lines, so that a file of empty or
/// over-long lines (whose bytes are not kept) cannot grow the span list without bound.
const BATCH_LINES: usize = 16 << 10;

/// Batches that may wait in the channel while the consumer parses.
const DEPTH: usize = 4;

/// One line of a batch.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Span {
    /// The line's bytes are `buf[start..end]` (without the newline).
    Line { start: usize, end: usize },
    /// The line was longer than the limit; its bytes were discarded.
    TooLong,
}

/// Complete lines in one buffer.
pub(crate) struct Batch {
    /// Line bytes; only the ranges named by `spans` are meaningful.
    pub(crate) buf: Vec<u8>,
    pub(crate) spans: Vec<Span>,
}

impl Batch {
    fn new() -> Self {
        Batch {
            buf: vec![0; BATCH_BYTES + READ_CHUNK],
            spans: Vec::new(),
        }
    }
}

/// What the background thread sends, in order: batches, then exactly one `End` or `Failed`.
pub(crate) enum Msg {
    Lines(Batch),
    End,
    Failed(io::Error),
}

/// One line as the reader sees it; shared by the sequential and the pipelined line sources.
pub(crate) enum Line<'a> {
    /// A line's bytes, without the newline.
    Text(&'a [u8]),
    /// A line longer than the limit.
    TooLong,
    /// End of input.
    End,
    /// The input failed before the next line was complete; nothing follows.
    Failed(io::Error),
}

/// The consumer's side: yields the lines the background thread split.
pub(crate) struct PipelinedLines {
    rx: Receiver<Msg>,
    recycle: Sender<Batch>,
    current: Option<Batch>,
    next_span: usize,
    finished: bool,
}

impl PipelinedLines {
    /// Starts the background thread reading `input` (already decompressed, if it was gzip).
    pub(crate) fn spawn(input: Box<dyn Read + Send>, max_line_bytes: usize) -> io::Result<Self> {
        let (rx, recycle) = spawn_splitter(input, max_line_bytes)?;
        Ok(PipelinedLines {
            rx,
            recycle,
            current: None,
            next_span: 0,
            finished: false,
        })
    }

    /// The next line, in input order.
    pub(crate) fn next_line(&mut self) -> Line<'_> {
        loop {
            if self.finished {
                return Line::End;
            }
            if matches!(&self.current, Some(b) if self.next_span < b.spans.len()) {
                break;
            }
            if let Some(done) = self.current.take() {
                // The thread may have ended already; then the buffer is simply freed.
                let _ = self.recycle.send(done);
            }
            match self.rx.recv() {
                Ok(Msg::Lines(batch)) => {
                    self.current = Some(batch);
                    self.next_span = 0;
                }
                Ok(Msg::End) => {
                    self.finished = true;
                    return Line::End;
                }
                Ok(Msg::Failed(e)) => {
                    self.finished = true;
                    return Line::Failed(e);
                }
                // The thread never hangs up without `End` or `Failed`, unless it panicked:
                // say so rather than pass a cut-short input off as complete.
                Err(_) => {
                    self.finished = true;
                    return Line::Failed(io::Error::other(
                        "background reader thread stopped unexpectedly",
                    ));
                }
            }
        }
        let Some(batch) = &self.current else {
            return Line::End;
        };
        let Some(&span) = batch.spans.get(self.next_span) else {
            return Line::End;
        };
        self.next_span += 1;
        match span {
            Span::TooLong => Line::TooLong,
            Span::Line { start, end } => match batch.buf.get(start..end) {
                Some(text) => Line::Text(text),
                None => {
                    self.finished = true;
                    Line::Failed(io::Error::other("line span outside its batch"))
                }
            },
        }
    }
}

/// Starts the background thread splitting `input` (already decompressed, if it was gzip) into
/// batches of lines. Returns the batches, in input order, then exactly one `End` or `Failed`;
/// and where to send emptied batches for reuse.
pub(crate) fn spawn_splitter(
    input: Box<dyn Read + Send>,
    max_line_bytes: usize,
) -> io::Result<(Receiver<Msg>, Sender<Batch>)> {
    let (tx, rx) = mpsc::sync_channel(DEPTH);
    let (recycle, recycled) = mpsc::channel();
    std::thread::Builder::new()
        .name("moat-format-read".into())
        .spawn(move || {
            let mut splitter = Splitter {
                input,
                max_line_bytes,
                tx,
                recycled,
            };
            splitter.run();
        })?;
    Ok((rx, recycle))
}

/// The background thread's state.
struct Splitter {
    input: Box<dyn Read + Send>,
    max_line_bytes: usize,
    tx: SyncSender<Msg>,
    recycled: Receiver<Batch>,
}

impl Splitter {
    /// Reads to the end (or the first error, or until the consumer is gone), splitting lines
    /// with the same rules as the sequential reader: a line ends at `\n`; a last line without
    /// one still counts; a line longer than the limit becomes [`Span::TooLong`].
    fn run(&mut self) {
        let mut batch = Batch::new();
        // `buf[line_start..filled]` is the current, incomplete line.
        let mut filled = 0;
        let mut line_start = 0;
        // The current line is already known to be too long; its bytes are being dropped.
        let mut too_long = false;
        loop {
            if batch.buf.len() < filled + READ_CHUNK {
                batch.buf.resize(filled + READ_CHUNK, 0);
            }
            let n = match self.input.read(&mut batch.buf[filled..filled + READ_CHUNK]) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // The incomplete line is lost, as in the sequential reader.
                    if self.send_lines(batch).is_ok() {
                        let _ = self.tx.send(Msg::Failed(e));
                    }
                    return;
                }
            };
            if n == 0 {
                if too_long {
                    batch.spans.push(Span::TooLong);
                } else if filled > line_start {
                    batch.spans.push(Span::Line {
                        start: line_start,
                        end: filled,
                    });
                }
                if self.send_lines(batch).is_ok() {
                    let _ = self.tx.send(Msg::End);
                }
                return;
            }
            let scan_from = filled;
            filled += n;
            for at in memchr::memchr_iter(b'\n', &batch.buf[scan_from..filled]) {
                let end = scan_from + at;
                batch
                    .spans
                    .push(if too_long || end - line_start > self.max_line_bytes {
                        Span::TooLong
                    } else {
                        Span::Line {
                            start: line_start,
                            end,
                        }
                    });
                too_long = false;
                line_start = end + 1;
            }
            if filled - line_start > self.max_line_bytes {
                too_long = true;
            }
            if too_long {
                filled = line_start;
            }
            // Hand over when full, and also after a short read: a short read means the input
            // has nothing more at hand (a pipe, a live stream), and lines should not wait.
            let full = filled >= BATCH_BYTES || batch.spans.len() >= BATCH_LINES;
            if !batch.spans.is_empty() && (full || n < READ_CHUNK) {
                let mut next = self.fresh();
                let partial = filled - line_start;
                if next.buf.len() < partial + READ_CHUNK {
                    next.buf.resize(partial + READ_CHUNK, 0);
                }
                next.buf[..partial].copy_from_slice(&batch.buf[line_start..filled]);
                if self.send_lines(batch).is_err() {
                    return;
                }
                batch = next;
                filled = partial;
                line_start = 0;
            }
        }
    }

    /// Sends a batch that has lines; `Err` when the consumer is gone.
    fn send_lines(&self, batch: Batch) -> Result<(), ()> {
        if batch.spans.is_empty() {
            return Ok(());
        }
        self.tx.send(Msg::Lines(batch)).map_err(|_| ())
    }

    /// A batch returned by the consumer, or a new one when none is back yet.
    fn fresh(&self) -> Batch {
        match self.recycled.try_recv() {
            Ok(mut b) => {
                b.spans.clear();
                // A buffer grown for one long line is not kept at that size.
                if b.buf.len() > 2 * (BATCH_BYTES + READ_CHUNK) {
                    b.buf.truncate(BATCH_BYTES + READ_CHUNK);
                    b.buf.shrink_to_fit();
                }
                b
            }
            Err(TryRecvError::Empty | TryRecvError::Disconnected) => Batch::new(),
        }
    }
}

//! Writing a run to disk: `traffic.jsonl.gz` through a two-thread pipeline, and the
//! `accounts.jsonl`, `labels.jsonl` and `summary.json` side files.
//!
//! The generating thread serializes exchanges into 1 MiB chunks and hands them over a bounded
//! channel to a compressing thread that also writes the file. Each chunk becomes one gzip member
//! (a gzip file may hold several; every reader of `.gz` files, `moat-format`'s included,
//! concatenates them), so a chunk can be compressed on either thread: when the compressor falls
//! behind and the channel is full, the generating thread compresses the chunk itself and sends
//! the finished member, which shares gzip between both cores. Members are written in chunk
//! order and each is a pure function of its bytes (no name, mtime 0), so the file is the same
//! whichever thread compressed what. Memory is bounded by the channel depth. Not where
//! exchanges are made.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, sync_channel, Receiver, SyncSender, TrySendError};
use std::thread::JoinHandle;

use flate2::write::GzEncoder;
use flate2::Compression;
use moat_format::{encode_line, Writer};
use moat_types::{Account, Exchange, Label};
use serde::Serialize;

use crate::SimError;

/// Bytes of serialized exchanges per chunk (and gzip member).
const CHUNK: usize = 1 << 20;
/// Chunks in flight between the threads (bounds memory to a few MiB).
const DEPTH: usize = 4;
/// gzip level of the traffic file, chosen by measurement (see BENCHMARKS.md): level 1 is the
/// only level at which gzip keeps up with generation on two cores.
pub const GZIP_LEVEL: u32 = 1;

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> SimError + '_ {
    move |source| SimError::OutputIo {
        path: path.to_path_buf(),
        source,
    }
}

/// What travels to the writing thread, in file order.
enum Piece {
    /// Serialized lines still to compress.
    Raw(Vec<u8>),
    /// A finished gzip member.
    Member(Vec<u8>),
}

/// Compresses `data` into one complete gzip member appended to `out`.
fn gzip_member(data: &[u8], level: u32, out: &mut Vec<u8>) -> std::io::Result<()> {
    let mut gz = GzEncoder::new(out, Compression::new(level.min(9)));
    gz.write_all(data)?;
    gz.finish()?;
    Ok(())
}

/// Streams exchanges into a gzip file, compressing on a second thread (and on this one when
/// that thread falls behind).
pub struct TrafficWriter {
    path: PathBuf,
    level: u32,
    tx: Option<SyncSender<Piece>>,
    spare: Receiver<Vec<u8>>,
    worker: Option<JoinHandle<std::io::Result<()>>>,
    buf: Vec<u8>,
    lines: u64,
}

impl TrafficWriter {
    /// Creates (or truncates) `path`, gzip at `level` (0–9).
    pub fn create(path: &Path, level: u32) -> Result<TrafficWriter, SimError> {
        let file = File::create(path).map_err(io_err(path))?;
        let (tx, rx) = sync_channel::<Piece>(DEPTH);
        let (spare_tx, spare) = channel::<Vec<u8>>();
        let worker = std::thread::Builder::new()
            .name("moat-sim-gzip".into())
            .spawn(move || -> std::io::Result<()> {
                let mut out = BufWriter::with_capacity(256 << 10, file);
                let mut member = Vec::with_capacity(CHUNK);
                for piece in rx {
                    match piece {
                        Piece::Raw(mut chunk) => {
                            member.clear();
                            gzip_member(&chunk, level, &mut member)?;
                            out.write_all(&member)?;
                            chunk.clear();
                            // The generator may have finished; a lost spare buffer is harmless.
                            let _ = spare_tx.send(chunk);
                        }
                        Piece::Member(m) => out.write_all(&m)?,
                    }
                }
                out.flush()
            })
            .map_err(io_err(path))?;
        Ok(TrafficWriter {
            path: path.to_path_buf(),
            level,
            tx: Some(tx),
            spare,
            worker: Some(worker),
            buf: Vec::with_capacity(CHUNK + (64 << 10)),
            lines: 0,
        })
    }

    /// Appends one exchange as one line.
    pub fn write(&mut self, exchange: &Exchange) -> Result<(), SimError> {
        encode_line(exchange, &mut self.buf).map_err(|e| SimError::OutputIo {
            path: self.path.clone(),
            source: std::io::Error::other(e),
        })?;
        self.lines += 1;
        if self.buf.len() >= CHUNK {
            self.flush_chunk()?;
        }
        Ok(())
    }

    /// Lines written so far.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    fn flush_chunk(&mut self) -> Result<(), SimError> {
        let next = self
            .spare
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(CHUNK + (64 << 10)));
        let chunk = std::mem::replace(&mut self.buf, next);
        let Some(tx) = self.tx.as_ref() else {
            return Err(self.stopped());
        };
        let sent = match tx.try_send(Piece::Raw(chunk)) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(Piece::Raw(mut chunk))) => {
                // The compressor is behind: compress this chunk here, in order.
                let mut member = Vec::with_capacity(chunk.len() / 3);
                gzip_member(&chunk, self.level, &mut member).map_err(io_err(&self.path))?;
                chunk.clear();
                if self.buf.capacity() < chunk.capacity() {
                    self.buf = chunk;
                }
                tx.send(Piece::Member(member)).map_err(|_| ())
            }
            Err(_) => Err(()),
        };
        match sent {
            Ok(()) => Ok(()),
            Err(()) => Err(self.stopped()),
        }
    }

    /// The error of a compressor thread that stopped early.
    fn stopped(&mut self) -> SimError {
        self.join().err().unwrap_or_else(|| SimError::OutputIo {
            path: self.path.clone(),
            source: std::io::Error::other("compressor thread stopped"),
        })
    }

    fn join(&mut self) -> Result<(), SimError> {
        self.tx = None;
        match self.worker.take().map(JoinHandle::join) {
            None | Some(Ok(Ok(()))) => Ok(()),
            Some(Ok(Err(e))) => Err(io_err(&self.path)(e)),
            Some(Err(_)) => Err(io_err(&self.path)(std::io::Error::other(
                "compressor thread panicked",
            ))),
        }
    }

    /// Flushes the last chunk and closes the file.
    pub fn finish(mut self) -> Result<u64, SimError> {
        // A run without exchanges still leaves a valid (empty) gzip file: one empty member.
        if !self.buf.is_empty() || self.lines == 0 {
            self.flush_chunk()?;
        }
        self.join()?;
        Ok(self.lines)
    }
}

impl Drop for TrafficWriter {
    fn drop(&mut self) {
        // Ending the channel lets the worker exit; an error here was already reported or the
        // run is being abandoned.
        self.tx = None;
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

/// Writes records as plain JSON Lines.
pub(crate) fn write_lines<T: Serialize>(path: &Path, records: &[T]) -> Result<(), SimError> {
    let mut w = Writer::<T>::create_with_level(path, None)?;
    for r in records {
        w.write(r)?;
    }
    w.finish()?;
    Ok(())
}

/// Writes `accounts.jsonl` and `labels.jsonl`.
pub(crate) fn write_side_files(
    dir: &Path,
    accounts: &[Account],
    labels: &[Label],
) -> Result<(), SimError> {
    write_lines(&dir.join("accounts.jsonl"), accounts)?;
    write_lines(&dir.join("labels.jsonl"), labels)
}

/// Writes `value` as pretty JSON with a trailing newline.
pub(crate) fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), SimError> {
    let mut text = serde_json::to_vec_pretty(value).map_err(|e| SimError::OutputIo {
        path: path.to_path_buf(),
        source: std::io::Error::other(e),
    })?;
    text.push(b'\n');
    std::fs::write(path, text).map_err(io_err(path))
}

/// Runs `scenario` and writes `traffic.jsonl.gz`, `accounts.jsonl`, `labels.jsonl` and
/// `summary.json` into `out_dir` (created if missing).
///
/// `progress(done, estimated_total)` is called about every 64k exchanges and once at the end
/// (with `done == estimated_total`); the estimate comes from the configured rates.
pub fn run(
    scenario: &crate::Scenario,
    corpus: &crate::Corpus,
    opts: &crate::SimOptions,
    out_dir: &Path,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<crate::SimSummary, SimError> {
    let mut sim = crate::Simulation::new(scenario, corpus, opts)?;
    std::fs::create_dir_all(out_dir).map_err(io_err(out_dir))?;
    let estimate = sim.estimated_total();
    let mut traffic = TrafficWriter::create(&out_dir.join("traffic.jsonl.gz"), GZIP_LEVEL)?;
    let mut next_report = 1u64 << 16;
    for exchange in sim.by_ref() {
        traffic.write(&exchange)?;
        if traffic.lines() >= next_report {
            progress(traffic.lines(), estimate.max(traffic.lines()));
            next_report += 1 << 16;
        }
    }
    let lines = traffic.finish()?;
    let out = sim.finish();
    write_side_files(out_dir, &out.accounts, &out.labels)?;
    write_json(&out_dir.join("summary.json"), &out.summary)?;
    progress(lines, lines);
    Ok(out.summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use moat_format::{ReadOptions, Reader};
    use moat_types::{Message, Request, Timestamp};

    fn exchange(i: i64) -> Exchange {
        Exchange {
            v: 1,
            ts: Timestamp::from_millis(1_700_000_000_000 + i),
            request_id: Some(format!("req_{i}")),
            account_id: format!("acct_{}", i % 7),
            api_key_id: None,
            client: None,
            request: Request {
                messages: vec![Message::text(
                    "user",
                    format!("question number {i} {}", "x".repeat((i % 300) as usize)),
                )],
                ..Request::default()
            },
            response: None,
        }
    }

    #[test]
    fn members_concatenate_to_the_original_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.jsonl.gz");
        let mut w = TrafficWriter::create(&path, GZIP_LEVEL).unwrap();
        let n = 20_000; // several 1 MiB members
        for i in 0..n {
            w.write(&exchange(i)).unwrap();
        }
        assert_eq!(w.finish().unwrap(), n as u64);
        let back: Vec<Exchange> = Reader::open(&path, ReadOptions::default())
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(back.len(), n as usize);
        assert_eq!(back[12_345], exchange(12_345));
    }

    #[test]
    fn a_member_depends_only_on_its_bytes() {
        let data = b"{\"v\":1}\n".repeat(1000);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        gzip_member(&data, 1, &mut a).unwrap();
        gzip_member(&data, 1, &mut b).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn empty_traffic_is_still_a_gzip_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.jsonl.gz");
        TrafficWriter::create(&path, GZIP_LEVEL)
            .unwrap()
            .finish()
            .unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert!(bytes.starts_with(&[0x1f, 0x8b]));
        let n = Reader::<Exchange>::open(&path, ReadOptions::default())
            .unwrap()
            .count();
        assert_eq!(n, 0);
    }
}

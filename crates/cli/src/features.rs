//! Parallel feature extraction for `moat analyze`: the reader runs on its own thread (with its
//! own decompression thread), a few workers turn batches of exchanges into
//! [`moat_detect::Features`], and the caller receives them in file order, so the engine folds
//! exactly the sequence it would fold reading the file itself.
//!
//! Memory stays bounded: at most `2 * workers` batches wait for a worker and at most
//! `2 * workers` finished batches wait for the caller (plus the few being worked on). Dropping
//! the stream stops every thread at its next hand-over.

use std::collections::BTreeMap;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use moat_detect::Features;
use moat_format::{FormatError, Reader, SkipReport};
use moat_types::Exchange;

/// Exchanges per batch: large enough that channel hand-overs cost nothing, small enough to
/// keep the pipeline's memory small.
const BATCH: usize = 512;

/// What a batch becomes: the features of its exchanges, then the error that ended the input
/// there, if any.
type Done = (Vec<Features>, Option<FormatError>);

/// Features of a traffic file, in file order.
pub struct FeatureStream {
    results: Receiver<(u64, Done)>,
    pending: BTreeMap<u64, Done>,
    next: u64,
    current: std::vec::IntoIter<Features>,
    error: Option<FormatError>,
    reader: Option<JoinHandle<SkipReport>>,
    workers: Vec<JoinHandle<()>>,
}

impl FeatureStream {
    /// Starts reading `reader` with `workers` extraction threads (at least one).
    pub fn start(reader: Reader<Exchange>, workers: usize) -> std::io::Result<Self> {
        let workers = workers.max(1);
        let (job_tx, job_rx) =
            sync_channel::<(u64, Vec<Exchange>, Option<FormatError>)>(2 * workers);
        let (done_tx, done_rx) = sync_channel::<(u64, Done)>(2 * workers);
        let reader = std::thread::Builder::new()
            .name("moat-analyze-read".into())
            .spawn(move || read_batches(reader, &job_tx))?;
        let job_rx = Arc::new(Mutex::new(job_rx));
        let mut handles = Vec::with_capacity(workers);
        for i in 0..workers {
            let jobs = Arc::clone(&job_rx);
            let done = done_tx.clone();
            handles.push(
                std::thread::Builder::new()
                    .name(format!("moat-analyze-{i}"))
                    .spawn(move || extract(&jobs, &done))?,
            );
        }
        Ok(FeatureStream {
            results: done_rx,
            pending: BTreeMap::new(),
            next: 0,
            current: Vec::new().into_iter(),
            error: None,
            reader: Some(reader),
            workers: handles,
        })
    }

    /// What the reader skipped (with `--skip-bad-lines`); call once the stream is exhausted.
    pub fn finish(mut self) -> SkipReport {
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        self.reader
            .take()
            .and_then(|r| r.join().ok())
            .unwrap_or_default()
    }
}

impl Iterator for FeatureStream {
    type Item = Result<Features, FormatError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(f) = self.current.next() {
                return Some(Ok(f));
            }
            if let Some(e) = self.error.take() {
                return Some(Err(e));
            }
            while !self.pending.contains_key(&self.next) {
                match self.results.recv() {
                    Ok((seq, done)) => {
                        self.pending.insert(seq, done);
                    }
                    // Every worker has finished and every batch was delivered.
                    Err(_) => return None,
                }
            }
            let (features, error) = self.pending.remove(&self.next)?;
            self.next += 1;
            self.current = features.into_iter();
            self.error = error;
        }
    }
}

/// The reader thread: cuts the input into numbered batches; a read error ends a batch and the
/// input.
fn read_batches(
    reader: Reader<Exchange>,
    jobs: &SyncSender<(u64, Vec<Exchange>, Option<FormatError>)>,
) -> SkipReport {
    let mut reader = reader;
    let mut seq = 0u64;
    let mut batch = Vec::with_capacity(BATCH);
    for item in reader.by_ref() {
        match item {
            Ok(x) => {
                batch.push(x);
                if batch.len() == BATCH {
                    let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                    if jobs.send((seq, full, None)).is_err() {
                        return reader.skipped().clone();
                    }
                    seq += 1;
                }
            }
            Err(e) => {
                let _ = jobs.send((seq, std::mem::take(&mut batch), Some(e)));
                return reader.skipped().clone();
            }
        }
    }
    if !batch.is_empty() {
        let _ = jobs.send((seq, batch, None));
    }
    reader.skipped().clone()
}

/// A worker thread: extracts features batch by batch until the input or the caller is gone.
type Jobs = Mutex<Receiver<(u64, Vec<Exchange>, Option<FormatError>)>>;

fn extract(jobs: &Jobs, done: &SyncSender<(u64, Done)>) {
    let signals = moat_detect::signals::Signals::global();
    loop {
        let job = match jobs.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok((seq, batch, error)) = job else {
            return;
        };
        let features = batch
            .into_iter()
            .map(|x| Features::from_owned(signals, x))
            .collect();
        if done.send((seq, (features, error))).is_err() {
            return;
        }
    }
}

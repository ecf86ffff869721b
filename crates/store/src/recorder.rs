//! [`Recorder`]: takes exchanges and decisions off the request path and writes them to a
//! [`Store`] in batches from one dedicated OS thread.
//!
//! *Invariant:* [`Recorder::record_exchange`] and [`Recorder::record_decision`] never wait for
//! the store. They put the record on a bounded queue; when the queue is full (the store is slow
//! or down) the record goes to a spill file instead, and when that fails too it is counted as
//! dropped and reported. A batch the store refuses is retried with backoff, then spilled.
//! Nothing is lost without a counter saying so. Once the queue is empty again, the thread
//! imports what was spilled back into the store (idempotent by request id), so a burst or a
//! store outage leaves the store complete without a restart.
//!
//! With [`RecorderOptions::background`] the thread runs on idle CPU time only (Linux
//! `SCHED_IDLE`): a thread serving requests always preempts it, so store writes never sit in
//! front of a request on a busy core. The queue then also absorbs load peaks, and the spill
//! files what the queue cannot.
//!
//! This module does not use an async runtime: the store's API is blocking, and a plain thread
//! keeps that away from the gateway's executor.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use moat_types::Exchange;
use serde::Serialize;

use crate::spill::{import_decision_spill, import_spill, SpillFile};
use crate::{AppendReport, DecisionRecord, Store, StoreError};

/// Shortest time between two log lines about the same kind of trouble (spilling, dropping), so
/// that an outage gives a few lines with counts rather than one line per request.
const REPORT_EVERY: Duration = Duration::from_secs(10);

/// How a [`Recorder`] queues, batches, retries and spills.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecorderOptions {
    /// Records the queue holds before callers spill (at least 1).
    pub queue_capacity: usize,
    /// Records per store write (at least 1): a batch is written when it is this full…
    pub batch_size: usize,
    /// …or when its oldest record has waited this long, whichever comes first.
    pub batch_interval: Duration,
    /// Store write attempts after the first failure, before the batch is spilled.
    pub retries: u32,
    /// Wait before the first retry; doubled before each further one.
    pub retry_backoff: Duration,
    /// Spill file for exchanges (exchange-log v1 JSON Lines); `None` drops them instead.
    pub exchange_spill: Option<PathBuf>,
    /// Spill file for decisions (JSON Lines); `None` drops them instead.
    pub decision_spill: Option<PathBuf>,
    /// Run the writer thread on idle CPU time only (Linux `SCHED_IDLE`; elsewhere, or where
    /// the system refuses, it runs at normal priority and says so in the log). For a server
    /// whose request threads must never wait behind a store write. A core kept fully busy
    /// by requests then leaves the writer no time: the queue fills, later records spill, and
    /// the writer catches up (queue, then spill files) when load drops. Size the queue for
    /// the memory that may hold.
    pub background: bool,
}

impl Default for RecorderOptions {
    fn default() -> Self {
        RecorderOptions {
            queue_capacity: 10_000,
            batch_size: 1_000,
            batch_interval: Duration::from_millis(200),
            retries: 3,
            retry_backoff: Duration::from_millis(100),
            exchange_spill: None,
            decision_spill: None,
            background: false,
        }
    }
}

impl RecorderOptions {
    /// Defaults, spilling to `exchanges.spill.jsonl` and `decisions.spill.jsonl` in `dir`.
    pub fn with_spill_dir(dir: &Path) -> Self {
        RecorderOptions {
            exchange_spill: Some(dir.join("exchanges.spill.jsonl")),
            decision_spill: Some(dir.join("decisions.spill.jsonl")),
            ..RecorderOptions::default()
        }
    }
}

/// Counters of a [`Recorder`] since it started (exchanges and decisions together), for
/// Prometheus: all but `queue_len` only grow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecorderStats {
    /// Records accepted onto the queue.
    pub queued: u64,
    /// Records the store stored (new ones).
    pub written: u64,
    /// Records the store already had (skipped by idempotency).
    pub duplicates: u64,
    /// Records written to a spill file (queue full, recorder stopped, or store failing).
    pub spilled: u64,
    /// Spilled records read back into the store by the running recorder (new or already
    /// stored). `spilled - recovered` is what the spill files still hold (an import that
    /// fails leaves its file for the next attempt, or for the next start).
    pub recovered: u64,
    /// Records lost because spilling failed too (or no spill file is configured).
    pub dropped: u64,
    /// Failed store write attempts.
    pub write_errors: u64,
    /// Records waiting in the queue now.
    pub queue_len: u64,
}

enum Msg {
    Exchange(Box<Exchange>),
    Decision(Box<DecisionRecord>),
    /// Write everything before this marker, then acknowledge.
    Flush(SyncSender<()>),
}

/// Rate-limits log lines about one kind of trouble, counting what happened in between.
#[derive(Default)]
struct Burst {
    /// Milliseconds since the recorder started at the last report, plus one (0: never).
    last_report: AtomicU64,
    /// Records affected since the last report.
    pending: AtomicU64,
}

impl Burst {
    /// Adds `n` records; returns how many to report now, if it is time to report.
    fn add(&self, n: u64, started: Instant) -> Option<u64> {
        self.pending.fetch_add(n, Ordering::Relaxed);
        let now = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let last = self.last_report.load(Ordering::Relaxed);
        let due = last == 0 || now.saturating_sub(last - 1) >= REPORT_EVERY.as_millis() as u64;
        if due
            && self
                .last_report
                .compare_exchange(last, now + 1, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            return Some(self.pending.swap(0, Ordering::Relaxed));
        }
        None
    }
}

#[derive(Default)]
struct Counters {
    queued: AtomicU64,
    written: AtomicU64,
    duplicates: AtomicU64,
    spilled: AtomicU64,
    recovered: AtomicU64,
    dropped: AtomicU64,
    write_errors: AtomicU64,
    queue_len: AtomicU64,
    /// Whether the latest write attempt failed (the store is unavailable now).
    failing: AtomicBool,
    /// Records were spilled since the writer last imported the spill files.
    recover_pending: AtomicBool,
}

/// State shared by the callers and the writer thread.
struct Shared {
    counters: Counters,
    exchange_spill: SpillFile,
    decision_spill: SpillFile,
    spill_burst: Burst,
    drop_burst: Burst,
    started: Instant,
}

impl Shared {
    /// Spills records, counting them as spilled or, if that fails, dropped.
    fn spill<T: Serialize>(&self, file: &SpillFile, kind: &'static str, records: &[T]) {
        let n = records.len() as u64;
        match file.append(records) {
            Ok(()) => {
                self.counters.spilled.fetch_add(n, Ordering::Relaxed);
                self.counters.recover_pending.store(true, Ordering::Release);
                if let Some(count) = self.spill_burst.add(n, self.started) {
                    tracing::warn!(
                        kind,
                        count,
                        spilled_total = self.counters.spilled.load(Ordering::Relaxed),
                        "store recorder is spilling records to file"
                    );
                }
            }
            Err(error) => {
                self.counters.dropped.fetch_add(n, Ordering::Relaxed);
                if let Some(count) = self.drop_burst.add(n, self.started) {
                    tracing::error!(
                        kind,
                        count,
                        dropped_total = self.counters.dropped.load(Ordering::Relaxed),
                        %error,
                        "store recorder dropped records: queue full and spill failed"
                    );
                }
            }
        }
    }
}

/// Records exchanges and decisions without blocking; see the module documentation.
///
/// Share it by reference or `Arc`. Call [`Recorder::shutdown`] for a graceful stop; merely
/// dropping it also lets the thread write what is queued, but nobody waits for that.
pub struct Recorder {
    /// `None` once shut down; dropping the sender is what tells the thread to drain and stop.
    tx: RwLock<Option<SyncSender<Msg>>>,
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Recorder {
    /// Starts the writer thread.
    pub fn spawn(store: Arc<dyn Store>, options: RecorderOptions) -> Result<Recorder, StoreError> {
        let (tx, rx) = mpsc::sync_channel(options.queue_capacity.max(1));
        let shared = Arc::new(Shared {
            counters: Counters::default(),
            exchange_spill: SpillFile::new(options.exchange_spill.clone()),
            decision_spill: SpillFile::new(options.decision_spill.clone()),
            spill_burst: Burst::default(),
            drop_burst: Burst::default(),
            started: Instant::now(),
        });
        let writer = Writer {
            store,
            shared: Arc::clone(&shared),
            options,
        };
        let thread = std::thread::Builder::new()
            .name("moat-recorder".to_owned())
            .spawn(move || writer.run(rx))
            .map_err(|source| StoreError::Io {
                what: "recorder thread".to_owned(),
                source,
            })?;
        Ok(Recorder {
            tx: RwLock::new(Some(tx)),
            shared,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Queues an exchange, or spills it if the queue is full; never waits for the store.
    pub fn record_exchange(&self, exchange: Exchange) {
        if let Some(Msg::Exchange(x)) = self.enqueue(Msg::Exchange(Box::new(exchange))) {
            self.shared
                .spill(&self.shared.exchange_spill, "exchange", &[*x]);
        }
    }

    /// Queues a decision, or spills it if the queue is full; never waits for the store.
    pub fn record_decision(&self, decision: DecisionRecord) {
        if let Some(Msg::Decision(d)) = self.enqueue(Msg::Decision(Box::new(decision))) {
            self.shared
                .spill(&self.shared.decision_spill, "decision", &[*d]);
        }
    }

    /// Tries to queue a record; gives it back when the queue is full or the recorder stopped.
    fn enqueue(&self, msg: Msg) -> Option<Msg> {
        let guard = self.tx.read().unwrap_or_else(|e| e.into_inner());
        let Some(tx) = guard.as_ref() else {
            return Some(msg);
        };
        let c = &self.shared.counters;
        // Count before sending, so that the thread's decrement never runs first.
        c.queue_len.fetch_add(1, Ordering::Relaxed);
        match tx.try_send(msg) {
            Ok(()) => {
                c.queued.fetch_add(1, Ordering::Relaxed);
                None
            }
            Err(TrySendError::Full(msg) | TrySendError::Disconnected(msg)) => {
                c.queue_len.fetch_sub(1, Ordering::Relaxed);
                Some(msg)
            }
        }
    }

    /// Whether the store took the latest write (true before any write). False while it is
    /// failing: records then go to spill files, and a gateway configured to fail closed
    /// refuses requests until the store is back.
    pub fn store_available(&self) -> bool {
        !self.shared.counters.failing.load(Ordering::Relaxed)
    }

    /// Counters so far.
    pub fn stats(&self) -> RecorderStats {
        let c = &self.shared.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        RecorderStats {
            queued: get(&c.queued),
            written: get(&c.written),
            duplicates: get(&c.duplicates),
            spilled: get(&c.spilled),
            recovered: get(&c.recovered),
            dropped: get(&c.dropped),
            write_errors: get(&c.write_errors),
            queue_len: get(&c.queue_len),
        }
    }

    /// Waits until every record queued before this call has been written (or spilled).
    /// Returns false if that took longer than `timeout` or the recorder is shut down.
    pub fn flush(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let (ack_tx, ack_rx) = mpsc::sync_channel(1);
        {
            let guard = self.tx.read().unwrap_or_else(|e| e.into_inner());
            let Some(tx) = guard.as_ref() else {
                return false;
            };
            // The marker waits for room in the queue like any record, but only until the
            // deadline; polling keeps the wait bounded, which a blocking send cannot.
            let mut marker = Msg::Flush(ack_tx);
            loop {
                match tx.try_send(marker) {
                    Ok(()) => break,
                    Err(TrySendError::Disconnected(_)) => return false,
                    Err(TrySendError::Full(m)) => {
                        if Instant::now() >= deadline {
                            return false;
                        }
                        marker = m;
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
            }
        }
        ack_rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .is_ok()
    }

    /// Stops accepting records (later ones are spilled), writes everything queued, and joins
    /// the writer thread. Returns the final counters. Calling it again does nothing more.
    pub fn shutdown(&self) -> RecorderStats {
        // Dropping the only sender lets the thread drain the queue and then see it closed.
        drop(self.tx.write().unwrap_or_else(|e| e.into_inner()).take());
        let handle = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(handle) = handle {
            if handle.join().is_err() {
                tracing::error!("store recorder thread panicked; queued records were lost");
            }
        }
        self.stats()
    }
}

/// How long the busy writer sleeps between looks at the queue.
const LINGER: Duration = Duration::from_millis(5);

/// Shortest time between two imports of the spill files (each also probes a failing store).
const RECOVER_EVERY: Duration = Duration::from_secs(1);

/// The writer thread's state.
struct Writer {
    store: Arc<dyn Store>,
    shared: Arc<Shared>,
    options: RecorderOptions,
}

impl Writer {
    fn run(self, rx: Receiver<Msg>) {
        if self.options.background {
            run_in_background();
        }
        let batch_size = self.options.batch_size.max(1);
        // When the spill files were last imported.
        let mut recovered_at: Option<Instant> = None;
        let mut exchanges: Vec<Exchange> = Vec::new();
        let mut decisions: Vec<DecisionRecord> = Vec::new();
        // When the oldest unwritten record must be written at the latest.
        let mut deadline: Option<Instant> = None;
        loop {
            // Idle, the thread blocks on the queue and the first record wakes it. Busy, it
            // sleeps in short steps and takes everything queued meanwhile: a thread blocked on
            // the queue is woken by every record, which on a loaded gateway costs a context
            // switch per request on the cores that serve them.
            let first = match deadline {
                // Idle: the queue is empty and everything taken is written. Bring back what
                // was spilled meanwhile, then wait (a bounded wait while a spill is pending,
                // so that it comes back even if no record arrives).
                None => {
                    self.recover_if_due(&mut recovered_at);
                    if self.shared.counters.recover_pending.load(Ordering::Acquire) {
                        match rx.recv_timeout(RECOVER_EVERY) {
                            Ok(m) => Some(m),
                            Err(RecvTimeoutError::Timeout) => continue,
                            Err(RecvTimeoutError::Disconnected) => break,
                        }
                    } else {
                        match rx.recv() {
                            Ok(m) => Some(m),
                            Err(_) => break,
                        }
                    }
                }
                Some(d) => {
                    let now = Instant::now();
                    if now < d {
                        std::thread::sleep(d.saturating_duration_since(now).min(LINGER));
                    }
                    None
                }
            };
            let mut closed = false;
            let mut next = first;
            loop {
                let msg = match next.take() {
                    Some(m) => m,
                    None => match rx.try_recv() {
                        Ok(m) => m,
                        Err(TryRecvError::Empty) => break,
                        Err(TryRecvError::Disconnected) => {
                            closed = true;
                            break;
                        }
                    },
                };
                self.take(msg, batch_size, &mut exchanges, &mut decisions);
            }
            if closed {
                break;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                self.write_exchanges(&mut exchanges);
                self.write_decisions(&mut decisions);
            }
            deadline = if exchanges.is_empty() && decisions.is_empty() {
                None
            } else {
                deadline.or_else(|| Some(Instant::now() + self.options.batch_interval))
            };
        }
        self.write_exchanges(&mut exchanges);
        self.write_decisions(&mut decisions);
        // A graceful stop leaves nothing in the spill files that the store can take.
        if self.shared.counters.recover_pending.load(Ordering::Acquire) {
            self.recover();
        }
    }

    /// Imports the spill files if records were spilled and the last import is long enough ago.
    fn recover_if_due(&self, recovered_at: &mut Option<Instant>) {
        if !self.shared.counters.recover_pending.load(Ordering::Acquire) {
            return;
        }
        if recovered_at.is_some_and(|t| t.elapsed() < RECOVER_EVERY) {
            return;
        }
        *recovered_at = Some(Instant::now());
        self.recover();
    }

    /// Moves each spill file aside and imports it (and any earlier file whose import failed)
    /// into the store; a file is removed once imported, kept when the import fails.
    fn recover(&self) {
        let c = &self.shared.counters;
        c.recover_pending.store(false, Ordering::Release);
        let tag = u64::try_from(self.shared.started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        type Import = fn(&dyn Store, &Path) -> Result<crate::ImportReport, StoreError>;
        let kinds: [(&SpillFile, &'static str, Import); 2] = [
            (&self.shared.exchange_spill, "exchange", import_spill),
            (
                &self.shared.decision_spill,
                "decision",
                import_decision_spill,
            ),
        ];
        for (file, kind, import) in kinds {
            let paths = match file.set_aside(tag) {
                Ok(p) => p,
                Err(error) => {
                    tracing::error!(kind, %error, "could not set a spill file aside for import");
                    c.recover_pending.store(true, Ordering::Release);
                    continue;
                }
            };
            for path in paths {
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    import(self.store.as_ref(), &path)
                }))
                .unwrap_or_else(|_| Err(StoreError::Unavailable("store panicked".to_owned())));
                match result {
                    Ok(report) => {
                        c.failing.store(false, Ordering::Relaxed);
                        c.recovered
                            .fetch_add(report.imported + report.duplicates, Ordering::Relaxed);
                        tracing::info!(
                            kind,
                            file = %path.display(),
                            imported = report.imported,
                            duplicates = report.duplicates,
                            bad_lines = report.bad_lines,
                            "store recorder imported spilled records"
                        );
                        if let Err(error) = std::fs::remove_file(&path) {
                            tracing::error!(file = %path.display(), %error, "could not remove an imported spill file (importing it again is harmless)");
                        }
                    }
                    Err(error) => {
                        c.failing.store(true, Ordering::Relaxed);
                        c.write_errors.fetch_add(1, Ordering::Relaxed);
                        c.recover_pending.store(true, Ordering::Release);
                        tracing::warn!(kind, file = %path.display(), %error, "could not import spilled records yet; the file is kept");
                        // The store is failing: the other files wait for the next attempt.
                        return;
                    }
                }
            }
        }
    }

    /// Handles one message from the queue.
    fn take(
        &self,
        msg: Msg,
        batch_size: usize,
        exchanges: &mut Vec<Exchange>,
        decisions: &mut Vec<DecisionRecord>,
    ) {
        match msg {
            Msg::Exchange(x) => {
                self.shared
                    .counters
                    .queue_len
                    .fetch_sub(1, Ordering::Relaxed);
                exchanges.push(*x);
                if exchanges.len() >= batch_size {
                    self.write_exchanges(exchanges);
                }
            }
            Msg::Decision(d) => {
                self.shared
                    .counters
                    .queue_len
                    .fetch_sub(1, Ordering::Relaxed);
                decisions.push(*d);
                if decisions.len() >= batch_size {
                    self.write_decisions(decisions);
                }
            }
            Msg::Flush(ack) => {
                self.write_exchanges(exchanges);
                self.write_decisions(decisions);
                // The flusher may have given up waiting; that is its business.
                let _ = ack.try_send(());
            }
        }
    }

    fn write_exchanges(&self, batch: &mut Vec<Exchange>) {
        self.write(batch, "exchange", |b| self.store.append_exchanges(b));
        if !batch.is_empty() {
            self.shared
                .spill(&self.shared.exchange_spill, "exchange", batch);
            batch.clear();
        }
    }

    fn write_decisions(&self, batch: &mut Vec<DecisionRecord>) {
        self.write(batch, "decision", |b| self.store.append_decisions(b));
        if !batch.is_empty() {
            self.shared
                .spill(&self.shared.decision_spill, "decision", batch);
            batch.clear();
        }
    }

    /// Appends `batch`, retrying with backoff; clears it on success and leaves it for the
    /// caller to spill when every attempt failed.
    fn write<T>(
        &self,
        batch: &mut Vec<T>,
        kind: &'static str,
        append: impl Fn(&[T]) -> Result<AppendReport, StoreError>,
    ) {
        if batch.is_empty() {
            return;
        }
        let c = &self.shared.counters;
        let mut backoff = self.options.retry_backoff;
        for attempt in 0..=self.options.retries {
            // A panicking backend must not take the thread, and the queue with it, down: the
            // panic counts as one more failed attempt.
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| append(batch)))
                .unwrap_or_else(|_| Err(StoreError::Unavailable("store panicked".to_owned())));
            match result {
                Ok(report) => {
                    c.failing.store(false, Ordering::Relaxed);
                    c.written.fetch_add(report.new, Ordering::Relaxed);
                    c.duplicates.fetch_add(report.duplicates, Ordering::Relaxed);
                    batch.clear();
                    return;
                }
                Err(error) => {
                    c.failing.store(true, Ordering::Relaxed);
                    c.write_errors.fetch_add(1, Ordering::Relaxed);
                    let last = attempt == self.options.retries;
                    tracing::warn!(
                        kind,
                        records = batch.len(),
                        attempt = attempt + 1,
                        will_retry = !last,
                        %error,
                        "store write failed"
                    );
                    if !last {
                        std::thread::sleep(backoff);
                        backoff = backoff.saturating_mul(2);
                    }
                }
            }
        }
    }
}

/// Moves the calling thread to `SCHED_IDLE`, or says why it stays at normal priority.
fn run_in_background() {
    #[cfg(target_os = "linux")]
    {
        use thread_priority::{
            set_thread_priority_and_policy, thread_native_id, NormalThreadSchedulePolicy,
            ThreadPriority, ThreadSchedulePolicy,
        };
        let idle = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle);
        if let Err(error) =
            set_thread_priority_and_policy(thread_native_id(), ThreadPriority::Min, idle)
        {
            tracing::warn!(
                ?error,
                "store recorder: could not move to idle priority; it runs at normal priority"
            );
        }
    }
    #[cfg(not(target_os = "linux"))]
    tracing::warn!(
        "store recorder: idle priority is only available on Linux; it runs at normal priority"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_reports_first_event_then_waits_and_counts_the_rest() {
        let burst = Burst::default();
        let started = Instant::now();
        assert_eq!(burst.add(3, started), Some(3));
        assert_eq!(burst.add(2, started), None);
        assert_eq!(burst.add(1, started), None);
        // A start far enough in the past makes the next event due, with everything since.
        let earlier = started.checked_sub(REPORT_EVERY * 2).unwrap_or(started);
        if earlier != started {
            assert_eq!(burst.add(4, earlier), Some(7));
        }
    }
}

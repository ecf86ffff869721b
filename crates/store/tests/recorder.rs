//! The recorder against real and failing stores: nothing is lost, callers never wait, and
//! spill files come back through import.

// Test helpers outside `#[test]` functions unwrap too; a failure there is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod conformance;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use conformance::{decision, exchange, rich_exchange};
use moat_store::{
    import_decision_spill, import_spill, spill_files, AccountQuery, AccountSummary, AppendReport,
    AuditEntry, AuditQuery, DecisionQuery, DecisionRecord, ExchangeQuery, ExportSink, Page,
    Recorder, RecorderOptions, SqliteStore, Store, StoreError,
};
use moat_types::{Exchange, Timestamp};
use proptest::prelude::*;

/// Why an append of a test double did not reach the inner store.
enum Hold {
    /// Wait until the gate's sender is dropped.
    Gate(Mutex<Receiver<()>>),
    /// Fail this many appends, then work.
    Fail(AtomicU32),
    /// Panic in this many appends, then work.
    Panic(AtomicU32),
    /// Fail while the flag is set.
    Down(std::sync::atomic::AtomicBool),
}

/// An in-memory store whose appends block or fail on demand; reads go straight through.
struct Double {
    inner: SqliteStore,
    hold: Hold,
    /// Told when an append has started, so a test knows the writer thread is inside.
    entered: Mutex<Option<SyncSender<()>>>,
}

impl Double {
    fn gated() -> (Arc<Double>, SyncSender<()>, Receiver<()>) {
        let (gate_tx, gate_rx) = mpsc::sync_channel(0);
        let (entered_tx, entered_rx) = mpsc::sync_channel(100);
        let store = Double {
            inner: SqliteStore::in_memory().unwrap(),
            hold: Hold::Gate(Mutex::new(gate_rx)),
            entered: Mutex::new(Some(entered_tx)),
        };
        (Arc::new(store), gate_tx, entered_rx)
    }

    fn failing(times: u32) -> Arc<Double> {
        Arc::new(Double {
            inner: SqliteStore::in_memory().unwrap(),
            hold: Hold::Fail(AtomicU32::new(times)),
            entered: Mutex::new(None),
        })
    }

    fn panicking(times: u32) -> Arc<Double> {
        Arc::new(Double {
            inner: SqliteStore::in_memory().unwrap(),
            hold: Hold::Panic(AtomicU32::new(times)),
            entered: Mutex::new(None),
        })
    }

    fn down() -> Arc<Double> {
        Arc::new(Double {
            inner: SqliteStore::in_memory().unwrap(),
            hold: Hold::Down(std::sync::atomic::AtomicBool::new(true)),
            entered: Mutex::new(None),
        })
    }

    fn set_up(&self) {
        if let Hold::Down(flag) = &self.hold {
            flag.store(false, Ordering::SeqCst);
        }
    }

    fn before_append(&self) -> Result<(), StoreError> {
        if let Some(tx) = self.entered.lock().unwrap().as_ref() {
            let _ = tx.try_send(());
        }
        match &self.hold {
            Hold::Gate(rx) => {
                // Blocks until the test drops the gate's sender; then every append passes.
                let _ = rx.lock().unwrap().recv();
                Ok(())
            }
            Hold::Down(flag) => {
                if flag.load(Ordering::SeqCst) {
                    Err(StoreError::Unavailable("test double is down".to_owned()))
                } else {
                    Ok(())
                }
            }
            Hold::Fail(left) | Hold::Panic(left) => {
                let failing = left
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok();
                match (failing, &self.hold) {
                    (false, _) => Ok(()),
                    (true, Hold::Panic(_)) => panic!("test double panics"),
                    (true, _) => Err(StoreError::Unavailable("test double is down".to_owned())),
                }
            }
        }
    }
}

impl Store for Double {
    fn append_exchanges(&self, batch: &[Exchange]) -> Result<AppendReport, StoreError> {
        self.before_append()?;
        self.inner.append_exchanges(batch)
    }
    fn append_decisions(&self, batch: &[DecisionRecord]) -> Result<AppendReport, StoreError> {
        self.before_append()?;
        self.inner.append_decisions(batch)
    }
    fn exchanges(&self, q: &ExchangeQuery) -> Result<Page<Exchange>, StoreError> {
        self.inner.exchanges(q)
    }
    fn decisions(&self, q: &DecisionQuery) -> Result<Page<DecisionRecord>, StoreError> {
        self.inner.decisions(q)
    }
    fn count_exchanges(&self) -> Result<u64, StoreError> {
        self.inner.count_exchanges()
    }
    fn account_summaries(&self, q: &AccountQuery) -> Result<Page<AccountSummary>, StoreError> {
        self.inner.account_summaries(q)
    }
    fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        self.inner.append_audit(entry)
    }
    fn audit(&self, q: &AuditQuery) -> Result<Page<AuditEntry>, StoreError> {
        self.inner.audit(q)
    }
    fn export_exchanges(
        &self,
        since: Option<Timestamp>,
        sink: &mut ExportSink<'_>,
    ) -> Result<u64, StoreError> {
        self.inner.export_exchanges(since, sink)
    }
    fn schema_version(&self) -> Result<u32, StoreError> {
        self.inner.schema_version()
    }
}

fn options(dir: &Path) -> RecorderOptions {
    RecorderOptions {
        retry_backoff: Duration::from_millis(1),
        ..RecorderOptions::with_spill_dir(dir)
    }
}

fn exchanges(n: usize) -> Vec<Exchange> {
    (0..n)
        .map(|i| {
            exchange(
                &format!("acct_{}", i % 5),
                Some(&format!("r{i}")),
                i as i64,
                3,
            )
        })
        .collect()
}

/// Every exchange in the store, oldest first.
fn stored(store: &dyn Store) -> Vec<Exchange> {
    let mut out = Vec::new();
    store
        .export_exchanges(None, &mut |l| {
            out.push(serde_json::from_str(l).unwrap());
            Ok(())
        })
        .unwrap();
    out
}

fn request_ids(xs: &[Exchange]) -> BTreeSet<String> {
    xs.iter().filter_map(|x| x.request_id.clone()).collect()
}

/// Waits (at most 10 s) until the running recorder has read `n` spilled records back.
fn wait_recovered(recorder: &Recorder, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while recorder.stats().recovered < n {
        assert!(Instant::now() < deadline, "{:?}", recorder.stats());
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn lines(path: &Path) -> usize {
    std::fs::read_to_string(path).map_or(0, |t| t.lines().count())
}

#[test]
fn everything_is_written_after_flush() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::in_memory().unwrap());
    let recorder = Recorder::spawn(store.clone(), options(dir.path())).unwrap();
    let mut xs = exchanges(2_500);
    xs.push(rich_exchange());
    for x in &xs {
        recorder.record_exchange(x.clone());
    }
    let ds: Vec<_> = (0..50)
        .map(|i| decision("a", Some(&format!("r{i}")), i))
        .collect();
    for d in &ds {
        recorder.record_decision(d.clone());
    }
    assert!(recorder.flush(Duration::from_secs(10)));

    let stats = recorder.stats();
    assert_eq!(stats.written, 2_551);
    assert_eq!(stats.queued, 2_551);
    assert_eq!((stats.spilled, stats.dropped, stats.queue_len), (0, 0, 0));
    let mut want = xs;
    want.sort_by_key(|x| x.ts);
    let got = stored(store.as_ref());
    // Exact round trip through queue, batch and database, compared as JSON values.
    let as_json = |xs: &[Exchange]| -> Vec<serde_json::Value> {
        xs.iter()
            .map(|x| serde_json::to_value(x).unwrap())
            .collect()
    };
    assert_eq!(as_json(&got), as_json(&want));
    let got_ds = store
        .decisions(&DecisionQuery {
            limit: 100,
            ..DecisionQuery::default()
        })
        .unwrap()
        .items;
    assert_eq!(got_ds, ds);
    recorder.shutdown();
}

#[test]
fn partial_batches_are_written_after_the_batch_interval() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::in_memory().unwrap());
    let opts = RecorderOptions {
        batch_size: 1_000,
        batch_interval: Duration::from_millis(20),
        ..options(dir.path())
    };
    let recorder = Recorder::spawn(store.clone(), opts).unwrap();
    for x in exchanges(5) {
        recorder.record_exchange(x);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while store.count_exchanges().unwrap() < 5 {
        assert!(
            Instant::now() < deadline,
            "a partial batch was never written"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    recorder.shutdown();
}

#[test]
fn full_queue_spills_instead_of_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let (store, gate, entered) = Double::gated();
    let opts = RecorderOptions {
        queue_capacity: 8,
        batch_size: 1,
        ..options(dir.path())
    };
    let spill = opts.exchange_spill.clone().unwrap();
    let recorder = Recorder::spawn(store.clone(), opts).unwrap();
    let xs = exchanges(200);
    recorder.record_exchange(xs[0].clone());
    // The writer thread is now stuck inside the store with the first record.
    entered.recv_timeout(Duration::from_secs(5)).unwrap();

    let mut slowest = Duration::ZERO;
    for x in &xs[1..] {
        let t = Instant::now();
        recorder.record_exchange(x.clone());
        slowest = slowest.max(t.elapsed());
    }
    assert!(
        slowest < Duration::from_millis(500),
        "a record call waited {slowest:?}"
    );
    let stats = recorder.stats();
    // One record is in the store's hands, the queue is full, the rest went to the spill file.
    assert_eq!(stats.queue_len, 8);
    assert_eq!(stats.spilled, 200 - 1 - 8);
    assert_eq!(lines(&spill), 191);
    assert_eq!(stats.dropped, 0);

    drop(gate); // the store recovers
                // Once the queue is empty the writer imports the spill file itself, without a restart.
    wait_recovered(&recorder, 191);
    assert_eq!(store.count_exchanges().unwrap(), 200);
    assert_eq!(request_ids(&stored(store.as_ref())), request_ids(&xs));
    assert!(spill_files(&spill).is_empty(), "{:?}", spill_files(&spill));
    let stats = recorder.shutdown();
    assert_eq!(stats.written, 9);
    assert_eq!(
        (stats.spilled, stats.recovered, stats.dropped),
        (191, 191, 0)
    );
}

#[test]
fn spill_files_of_a_failing_store_are_kept_and_imported_once_it_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = Double::down();
    let opts = RecorderOptions {
        retries: 0,
        batch_size: 10,
        ..options(dir.path())
    };
    let spill = opts.exchange_spill.clone().unwrap();
    let recorder = Recorder::spawn(store.clone(), opts).unwrap();
    let xs = exchanges(30);
    for x in &xs {
        recorder.record_exchange(x.clone());
    }
    assert!(recorder.flush(Duration::from_secs(10)));
    assert_eq!(recorder.stats().spilled, 30);
    // Imports are tried (and fail) while the store is down; the records stay on disk.
    std::thread::sleep(Duration::from_millis(1_500));
    let stats = recorder.stats();
    assert_eq!((stats.recovered, stats.dropped), (0, 0));
    assert!(!recorder.store_available());
    let on_disk: usize = spill_files(&spill).iter().map(|p| lines(p)).sum();
    assert_eq!(on_disk, 30);

    store.set_up();
    wait_recovered(&recorder, 30);
    assert!(recorder.store_available());
    assert!(spill_files(&spill).is_empty());
    assert_eq!(request_ids(&stored(store.as_ref())), request_ids(&xs));
    recorder.shutdown();
}

#[test]
fn background_writer_runs_at_idle_priority_and_writes_everything() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::in_memory().unwrap());
    let opts = RecorderOptions {
        background: true,
        ..options(dir.path())
    };
    let recorder = Recorder::spawn(store.clone(), opts).unwrap();
    let xs = exchanges(500);
    for x in &xs {
        recorder.record_exchange(x.clone());
    }
    assert!(recorder.flush(Duration::from_secs(10)));
    assert_eq!(store.count_exchanges().unwrap(), 500);
    #[cfg(target_os = "linux")]
    {
        // Field 41 of /proc/PID/task/TID/stat is the scheduling policy; 5 is SCHED_IDLE.
        let mut policies = Vec::new();
        for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
            let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            if comm.trim() == "moat-recorder" {
                let stat = std::fs::read_to_string(task.path().join("stat")).unwrap();
                let after_comm = &stat[stat.rfind(')').unwrap() + 2..];
                let policy: u32 = after_comm.split(' ').nth(38).unwrap().parse().unwrap();
                policies.push(policy);
            }
        }
        assert!(
            policies.contains(&5),
            "recorder thread policies: {policies:?}"
        );
    }
    recorder.shutdown();
}

#[test]
fn store_failure_then_recovery_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Double::failing(2);
    let opts = RecorderOptions {
        retries: 3,
        ..options(dir.path())
    };
    let recorder = Recorder::spawn(store.clone(), opts).unwrap();
    let xs = exchanges(300);
    for x in &xs {
        recorder.record_exchange(x.clone());
    }
    let stats = recorder.shutdown();
    assert_eq!(stats.write_errors, 2);
    assert_eq!((stats.written, stats.spilled, stats.dropped), (300, 0, 0));
    assert_eq!(request_ids(&stored(store.as_ref())), request_ids(&xs));
}

#[test]
fn panicking_store_counts_as_a_failed_write_and_the_recorder_survives() {
    let dir = tempfile::tempdir().unwrap();
    let store = Double::panicking(1);
    let recorder = Recorder::spawn(store.clone(), options(dir.path())).unwrap();
    let xs = exchanges(20);
    for x in &xs {
        recorder.record_exchange(x.clone());
    }
    assert!(recorder.flush(Duration::from_secs(10)));
    let stats = recorder.shutdown();
    assert_eq!(
        (stats.write_errors, stats.written, stats.spilled),
        (1, 20, 0)
    );
    assert_eq!(request_ids(&stored(store.as_ref())), request_ids(&xs));
}

#[test]
fn recorder_and_stores_are_shareable_across_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Recorder>();
    send_sync::<SqliteStore>();
    send_sync::<Arc<dyn Store>>();
}

#[test]
fn store_outage_spills_failed_batches_and_import_restores_them() {
    let dir = tempfile::tempdir().unwrap();
    // Fails every attempt of the first batches: 1 try + 2 retries = 3 failures per batch.
    let store = Double::failing(6);
    let opts = RecorderOptions {
        retries: 2,
        batch_size: 50,
        // Only full batches: a slow test machine must not split them by time.
        batch_interval: Duration::from_secs(3_600),
        ..options(dir.path())
    };
    let ex_spill = opts.exchange_spill.clone().unwrap();
    let dec_spill = opts.decision_spill.clone().unwrap();
    let recorder = Recorder::spawn(store.clone(), opts).unwrap();
    let xs = exchanges(200);
    for x in &xs {
        recorder.record_exchange(x.clone());
    }
    assert!(recorder.flush(Duration::from_secs(10)));
    let ds: Vec<_> = (0..10)
        .map(|i| decision("a", Some(&format!("d{i}")), i))
        .collect();
    for d in &ds {
        recorder.record_decision(d.clone());
    }
    let stats = recorder.shutdown();
    assert_eq!(stats.write_errors, 6);
    assert_eq!(stats.spilled, 100, "two batches of 50 failed every attempt");
    assert_eq!(stats.written, 100 + 10);
    assert_eq!(stats.dropped, 0);
    // The store came back, so the writer imported the failed batches itself (at the latest
    // on shutdown) and removed the file.
    assert_eq!(stats.recovered, 100);
    assert!(spill_files(&ex_spill).is_empty());
    assert_eq!(lines(&dec_spill), 0);
    assert_eq!(request_ids(&stored(store.as_ref())), request_ids(&xs));
}

#[test]
fn shutdown_drains_the_queue() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::in_memory().unwrap());
    // Neither the batch size nor the interval would write before shutdown.
    let opts = RecorderOptions {
        batch_size: 100_000,
        batch_interval: Duration::from_secs(3_600),
        ..options(dir.path())
    };
    let recorder = Recorder::spawn(store.clone(), opts).unwrap();
    for x in exchanges(1_000) {
        recorder.record_exchange(x);
    }
    recorder.record_decision(decision("a", None, 1));
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(store.count_exchanges().unwrap(), 0);
    let stats = recorder.shutdown();
    assert_eq!(stats.written, 1_001);
    assert_eq!(store.count_exchanges().unwrap(), 1_000);
    assert_eq!(
        store
            .decisions(&DecisionQuery::default())
            .unwrap()
            .items
            .len(),
        1
    );
    // A second shutdown is harmless.
    assert_eq!(recorder.shutdown(), stats);
}

#[test]
fn records_after_shutdown_are_spilled_not_lost() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::in_memory().unwrap());
    let opts = options(dir.path());
    let (ex_spill, dec_spill) = (
        opts.exchange_spill.clone().unwrap(),
        opts.decision_spill.clone().unwrap(),
    );
    let recorder = Recorder::spawn(store.clone(), opts).unwrap();
    recorder.shutdown();
    recorder.record_exchange(rich_exchange());
    let d = decision("a", Some("r1"), 5);
    recorder.record_decision(d.clone());
    assert!(!recorder.flush(Duration::from_millis(10)));
    assert_eq!(recorder.stats().spilled, 2);

    // The exchange spill is exchange-log v1: the line is the record's exact JSON.
    let text = std::fs::read_to_string(&ex_spill).unwrap();
    assert_eq!(
        text,
        format!("{}\n", serde_json::to_string(&rich_exchange()).unwrap())
    );
    let report = import_decision_spill(store.as_ref(), &dec_spill).unwrap();
    assert_eq!(report.imported, 1);
    assert_eq!(
        import_decision_spill(store.as_ref(), &dec_spill)
            .unwrap()
            .duplicates,
        1
    );
    assert_eq!(
        store.decisions(&DecisionQuery::default()).unwrap().items,
        vec![d]
    );
}

#[test]
fn overflow_without_spill_file_is_counted_as_dropped() {
    let (store, gate, entered) = Double::gated();
    let opts = RecorderOptions {
        queue_capacity: 2,
        batch_size: 1,
        ..RecorderOptions::default()
    };
    let recorder = Recorder::spawn(store, opts).unwrap();
    for x in exchanges(10) {
        recorder.record_exchange(x);
    }
    entered.recv_timeout(Duration::from_secs(5)).unwrap();
    let stats = recorder.stats();
    // Between 7 and 8 overflowed, depending on whether the writer took the first record
    // before the second arrived; none may be spilled, all must be counted.
    assert_eq!(stats.spilled, 0);
    assert!(stats.dropped >= 7, "{stats:?}");
    assert_eq!(stats.dropped + stats.queued, 10);
    drop(gate);
    recorder.shutdown();
}

#[test]
fn spill_write_failure_is_counted_as_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::in_memory().unwrap());
    let opts = RecorderOptions {
        // A directory cannot be opened for appending.
        exchange_spill: Some(dir.path().to_path_buf()),
        ..options(dir.path())
    };
    let recorder = Recorder::spawn(store, opts).unwrap();
    recorder.shutdown();
    recorder.record_exchange(rich_exchange());
    let stats = recorder.stats();
    assert_eq!((stats.spilled, stats.dropped), (0, 1));
}

#[test]
fn import_skips_and_reports_torn_and_bad_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("exchanges.spill.jsonl");
    let good: Vec<String> = exchanges(3)
        .iter()
        .map(|x| serde_json::to_string(x).unwrap())
        .collect();
    let torn = &good[1][..good[1].len() / 2];
    let text = format!("{}\n\n{torn}\nnot json\n{}\n{}", good[0], good[1], good[2]);
    std::fs::write(&path, text).unwrap();
    let store = SqliteStore::in_memory().unwrap();
    let report = import_spill(&store, &path).unwrap();
    assert_eq!(report.lines, 5);
    assert_eq!(report.imported, 3);
    assert_eq!(report.bad_lines, 2);
    assert_eq!(report.first_bad_lines, vec![3, 4]);
    assert_eq!(store.count_exchanges().unwrap(), 3);
}

#[test]
fn import_of_a_missing_file_names_it() {
    let store = SqliteStore::in_memory().unwrap();
    let err = import_spill(&store, Path::new("/nonexistent/spill.jsonl")).unwrap_err();
    assert!(
        err.to_string().contains("/nonexistent/spill.jsonl"),
        "{err}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn import_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.jsonl");
        std::fs::write(&path, &bytes).unwrap();
        let store = SqliteStore::in_memory().unwrap();
        let report = import_spill(&store, &path).unwrap();
        prop_assert_eq!(report.imported + report.duplicates + report.bad_lines, report.lines);
        let report = import_decision_spill(&store, &path).unwrap();
        prop_assert_eq!(report.imported + report.duplicates + report.bad_lines, report.lines);
    }
}

#[test]
fn store_available_follows_the_latest_write() {
    let dir = tempfile::tempdir().unwrap();
    let store = Double::down();
    let opts = RecorderOptions {
        retries: 1,
        batch_size: 1,
        ..options(dir.path())
    };
    let recorder = Recorder::spawn(store.clone(), opts).unwrap();
    assert!(recorder.store_available());
    let xs = exchanges(2);
    recorder.record_exchange(xs[0].clone());
    assert!(recorder.flush(Duration::from_secs(10)));
    assert!(!recorder.store_available());
    store.set_up();
    recorder.record_exchange(xs[1].clone());
    assert!(recorder.flush(Duration::from_secs(10)));
    assert!(recorder.store_available());
    let stats = recorder.shutdown();
    assert_eq!((stats.written, stats.spilled, stats.recovered), (1, 1, 1));
}

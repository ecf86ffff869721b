//! The bus against the local NATS server (`MOAT_TEST_NATS`, as `.ci/run` sets it; without it
//! every test says it skipped and passes): what gateways publish, workers store, exactly once
//! in effect, through redeliveries, duplicates and malformed messages.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use moat_bus::{run_worker, BusConfig, Publisher, WorkerOptions, WorkerStats};
use moat_store::{
    AccountQuery, AccountSummary, AppendReport, AuditEntry, AuditQuery, DecisionQuery,
    DecisionRecord, ExchangeQuery, ExportSink, Page, SqliteStore, Store, StoreError,
};
use moat_types::{Exchange, Message, Request, Timestamp};

fn nats_url() -> Option<String> {
    let url = std::env::var("MOAT_TEST_NATS")
        .ok()
        .filter(|v| !v.is_empty());
    if url.is_none() {
        eprintln!("skipped: MOAT_TEST_NATS is not set (a NATS URL with JetStream)");
    }
    url
}

/// A stream and subjects of the test's own, deleted when it ends.
struct TestStream {
    cfg: BusConfig,
}

static SEQ: AtomicU32 = AtomicU32::new(0);

impl TestStream {
    fn new(url: &str) -> TestStream {
        let n = SEQ.fetch_add(1, Ordering::SeqCst);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let tag = format!("{}_{n}_{nanos}", std::process::id());
        let mut cfg = BusConfig::new(url);
        cfg.stream = format!("MOAT_TEST_{tag}");
        cfg.subject_prefix = format!("moattest{tag}");
        cfg.partitions = 4;
        TestStream { cfg }
    }
}

impl Drop for TestStream {
    fn drop(&mut self) {
        let cfg = self.cfg.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new().unwrap();
            rt.block_on(async {
                if let Ok(c) = async_nats::connect(cfg.url.as_str()).await {
                    let _ = async_nats::jetstream::new(c)
                        .delete_stream(&cfg.stream)
                        .await;
                }
            });
        })
        .join();
    }
}

fn exchange(account: &str, i: usize) -> Exchange {
    Exchange {
        v: 1,
        ts: Timestamp::from_millis(1_000 + i as i64),
        request_id: Some(format!("req-{i}")),
        account_id: account.to_owned(),
        api_key_id: None,
        client: None,
        request: Request {
            messages: vec![Message::text("user", format!("question {i}"))],
            ..Request::default()
        },
        response: None,
    }
}

fn decision(account: &str, i: usize) -> DecisionRecord {
    DecisionRecord {
        ts: Timestamp::from_millis(1_000 + i as i64),
        request_id: Some(format!("req-{i}")),
        account_id: account.to_owned(),
        campaign_id: None,
        rule: Some("watch".to_owned()),
        actions: vec!["shadow".to_owned()],
        shadow: Vec::new(),
        risk: 0.5,
        enforced: false,
        detail: None,
    }
}

fn traffic(n: usize) -> (Vec<Exchange>, Vec<DecisionRecord>) {
    let xs: Vec<_> = (0..n)
        .map(|i| exchange(&format!("acct_{}", i % 30), i))
        .collect();
    let ds: Vec<_> = (0..n / 10)
        .map(|i| decision(&format!("acct_{}", i % 30), i))
        .collect();
    (xs, ds)
}

fn ids(xs: &[Exchange]) -> BTreeSet<String> {
    xs.iter().filter_map(|x| x.request_id.clone()).collect()
}

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

/// Publishes from a plain thread, as the recorder does.
fn publish(
    cfg: &BusConfig,
    xs: &[Exchange],
    ds: &[DecisionRecord],
) -> (AppendReport, AppendReport) {
    let (cfg, xs, ds) = (cfg.clone(), xs.to_vec(), ds.to_vec());
    std::thread::spawn(move || {
        let p = Publisher::connect(cfg).unwrap();
        (
            p.publish_exchanges(&xs).unwrap(),
            p.publish_decisions(&ds).unwrap(),
        )
    })
    .join()
    .unwrap()
}

fn options(cfg: &BusConfig) -> WorkerOptions {
    WorkerOptions {
        partitions: (0..cfg.partitions).collect(),
        batch: 64,
        ack_wait: Duration::from_secs(2),
    }
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_store_everything_once_and_republished_records_are_duplicates() {
    let Some(url) = nats_url() else { return };
    let ts = TestStream::new(&url);
    let (xs, ds) = traffic(300);
    let (rx, rd) = publish(&ts.cfg, &xs, &ds);
    assert_eq!((rx.new, rx.duplicates, rd.new), (300, 0, 30));

    let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().unwrap());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut workers = Vec::new();
    let mut all_stats = Vec::new();
    for _ in 0..2 {
        let stats = Arc::new(WorkerStats::default());
        all_stats.push(Arc::clone(&stats));
        let mut stop = stop_rx.clone();
        workers.push(tokio::spawn(run_worker(
            ts.cfg.clone(),
            options(&ts.cfg),
            Arc::clone(&store),
            None,
            stats,
            async move {
                let _ = stop.changed().await;
            },
        )));
    }
    let s = Arc::clone(&store);
    wait_for("300 exchanges", move || s.count_exchanges().unwrap() == 300).await;
    let stored_total = || {
        all_stats
            .iter()
            .map(|s| s.stored.load(Ordering::Relaxed))
            .sum::<u64>()
    };
    wait_for("330 records acknowledged", || stored_total() == 330).await;
    assert_eq!(ids(&stored(store.as_ref())), ids(&xs));
    let decisions = store
        .decisions(&DecisionQuery {
            limit: 100,
            ..DecisionQuery::default()
        })
        .unwrap()
        .items;
    assert_eq!(decisions.len(), 30);

    // A gateway retrying a batch: the stream drops the copies by message id.
    let (again, again_d) = publish(&ts.cfg, &xs, &ds);
    assert_eq!(
        (again.new, again.duplicates, again_d.duplicates),
        (0, 300, 30)
    );
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(store.count_exchanges().unwrap(), 300);
    assert_eq!(stored_total(), 330);

    stop_tx.send(true).unwrap();
    for w in workers {
        w.await.unwrap().unwrap();
    }
}

/// Fails the first `n` appends, then stores.
struct Flaky {
    inner: SqliteStore,
    left: AtomicU32,
}

impl Flaky {
    fn gate(&self) -> Result<(), StoreError> {
        let failing = self
            .left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if failing {
            Err(StoreError::Unavailable("test store is down".to_owned()))
        } else {
            Ok(())
        }
    }
}

impl Store for Flaky {
    fn append_exchanges(&self, b: &[Exchange]) -> Result<AppendReport, StoreError> {
        self.gate()?;
        self.inner.append_exchanges(b)
    }
    fn append_decisions(&self, b: &[DecisionRecord]) -> Result<AppendReport, StoreError> {
        self.inner.append_decisions(b)
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
    fn append_audit(&self, e: &AuditEntry) -> Result<(), StoreError> {
        self.inner.append_audit(e)
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_outage_leaves_messages_in_the_stream_until_they_are_stored() {
    let Some(url) = nats_url() else { return };
    let ts = TestStream::new(&url);
    let (xs, _) = traffic(100);
    publish(&ts.cfg, &xs, &[]);
    // Garbage on an exchange subject: dropped and counted, never redelivered.
    let raw = async_nats::connect(url.as_str()).await.unwrap();
    let js = async_nats::jetstream::new(raw);
    js.publish(format!("{}.x.0", ts.cfg.subject_prefix), "not json".into())
        .await
        .unwrap()
        .await
        .unwrap();

    let flaky = Arc::new(Flaky {
        inner: SqliteStore::in_memory().unwrap(),
        left: AtomicU32::new(3),
    });
    let store: Arc<dyn Store> = flaky.clone();
    let stats = Arc::new(WorkerStats::default());
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(run_worker(
        ts.cfg.clone(),
        options(&ts.cfg),
        Arc::clone(&store),
        None,
        Arc::clone(&stats),
        async move {
            let _ = stop_rx.changed().await;
        },
    ));
    let s = Arc::clone(&store);
    wait_for("100 exchanges after the outage", move || {
        s.count_exchanges().unwrap() == 100
    })
    .await;
    assert_eq!(ids(&stored(store.as_ref())), ids(&xs));
    assert_eq!(stats.store_failures.load(Ordering::Relaxed), 3);
    wait_for("the malformed message", || {
        stats.malformed.load(Ordering::Relaxed) == 1
    })
    .await;
    stop_tx.send(true).unwrap();
    worker.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_stopped_before_acknowledging_leaves_its_messages_to_the_next() {
    let Some(url) = nats_url() else { return };
    let ts = TestStream::new(&url);
    let (xs, _) = traffic(200);
    publish(&ts.cfg, &xs, &[]);
    // The first worker's store refuses everything: it takes messages, acknowledges none of
    // them, and stops.
    let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().unwrap());
    let stuck = Arc::new(Flaky {
        inner: SqliteStore::in_memory().unwrap(),
        left: AtomicU32::new(u32::MAX),
    });
    let (stop1, mut rx1) = tokio::sync::watch::channel(false);
    let first = tokio::spawn(run_worker(
        ts.cfg.clone(),
        options(&ts.cfg),
        stuck,
        None,
        Arc::new(WorkerStats::default()),
        async move {
            let _ = rx1.changed().await;
        },
    ));
    tokio::time::sleep(Duration::from_millis(800)).await;
    stop1.send(true).unwrap();
    first.await.unwrap().unwrap();

    // The next worker gets everything (redelivered after the acknowledgement wait).
    let stats = Arc::new(WorkerStats::default());
    let (stop2, mut rx2) = tokio::sync::watch::channel(false);
    let second = tokio::spawn(run_worker(
        ts.cfg.clone(),
        options(&ts.cfg),
        Arc::clone(&store),
        None,
        Arc::clone(&stats),
        async move {
            let _ = rx2.changed().await;
        },
    ));
    let s = Arc::clone(&store);
    wait_for("200 exchanges from the second worker", move || {
        s.count_exchanges().unwrap() == 200
    })
    .await;
    assert_eq!(ids(&stored(store.as_ref())), ids(&xs));
    stop2.send(true).unwrap();
    second.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_publisher_can_be_dropped_in_async_code() {
    let Some(url) = nats_url() else { return };
    let ts = TestStream::new(&url);
    let cfg = ts.cfg.clone();
    // Made on a plain thread (it blocks), dropped here, inside the runtime, as a gateway's
    // store is when `moat serve` stops.
    let p = std::thread::spawn(move || Publisher::connect(cfg).unwrap())
        .join()
        .unwrap();
    drop(p);
}

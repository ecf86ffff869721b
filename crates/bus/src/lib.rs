//! Moat's scale-out transport over NATS JetStream.
//!
//! - Gateways publish every exchange and decision to one stream, on a subject per partition of
//!   the account id (`PREFIX.x.P` for exchanges, `PREFIX.d.P` for decisions), so that one
//!   account's records stay in order on one subject. [`Publisher`] is blocking (it runs on the
//!   recorder's thread, beside a small runtime of its own) and waits for the stream's
//!   acknowledgement of every record; the record's `request_id` is its JetStream message id,
//!   so a record published twice (a retried batch) is stored once.
//! - [`PublishingStore`] is a [`Store`] whose appends publish and whose reads go to the shared
//!   database the workers write: the gateway's recorder, queue, retries and spill files work
//!   unchanged in front of it.
//! - Workers ([`run_worker`]) pull from one durable consumer per partition, write a batch to
//!   their store, and acknowledge its messages only once the store holds them. A worker that
//!   dies before acknowledging leaves its messages to be redelivered (to it or another worker);
//!   the store's idempotent appends (by `request_id`) make that exactly once in effect.
//!
//! - Workers also turn each exchange into the detection engine's input and append it to the
//!   feature log ([`FeatureLog`]); the one consolidator ([`consolidate`]) folds that log into
//!   the engine and publishes standings and campaigns to a key-value bucket every gateway
//!   watches ([`watch_standings`]).
//!
//! Not here: the gateway's configuration, policy.

mod consolidate;

pub use consolidate::{
    run_consolidator, standings_bucket, watch_standings, ConsolidateOptions, ConsolidatorMeta,
    ConsolidatorStats, Election, Lease, SharedDatabase, Snapshot, StandingUpdate,
    CONSOLIDATOR_ROLE,
};

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use bytes::Bytes;
use futures_util::StreamExt;
use moat_detect::Features;
use moat_store::{
    AccountQuery, AccountSummary, AppendReport, AuditEntry, AuditQuery, DecisionQuery,
    DecisionRecord, ExchangeQuery, ExportSink, FeatureLog, FeatureRow, Page, Store, StoreError,
};
use moat_types::{Exchange, Timestamp};

/// What can go wrong with the bus.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The server could not be reached or refused the connection.
    #[error("nats: cannot connect to {server}: {reason}")]
    Connect {
        /// Host and port (never credentials).
        server: String,
        /// Why.
        reason: String,
    },
    /// A JetStream call failed.
    #[error("jetstream: {what}: {reason}")]
    JetStream {
        /// What was being done.
        what: String,
        /// Why.
        reason: String,
    },
    /// The configuration is unusable.
    #[error("bus configuration: {0}")]
    Config(String),
    /// The runtime beside the publisher could not start.
    #[error("bus runtime: {0}")]
    Runtime(std::io::Error),
}

fn js_err(what: impl Into<String>) -> impl FnOnce(String) -> BusError {
    let what = what.into();
    move |reason| BusError::JetStream { what, reason }
}

/// Where the stream is and how it is cut.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusConfig {
    /// NATS server (`nats://127.0.0.1:4222`).
    pub url: String,
    /// JetStream stream name (`MOAT`).
    pub stream: String,
    /// Subject prefix (`moat`): subjects are `PREFIX.x.P` and `PREFIX.d.P`.
    pub subject_prefix: String,
    /// Partitions of the account id space (at least 1; fixed for a stream's life).
    pub partitions: u32,
    /// How long a publish may wait for the stream's acknowledgement.
    pub ack_timeout: Duration,
}

impl BusConfig {
    /// Defaults for `url`: stream `MOAT`, prefix `moat`, 16 partitions, 5 s acks.
    pub fn new(url: &str) -> BusConfig {
        BusConfig {
            url: url.to_owned(),
            stream: "MOAT".to_owned(),
            subject_prefix: "moat".to_owned(),
            partitions: 16,
            ack_timeout: Duration::from_secs(5),
        }
    }

    fn check(&self) -> Result<(), BusError> {
        let token_ok = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        };
        if !token_ok(&self.stream) {
            return Err(BusError::Config(format!(
                "stream name {:?} must be letters, digits, '_' or '-'",
                self.stream
            )));
        }
        if !self.subject_prefix.split('.').all(token_ok) {
            return Err(BusError::Config(format!(
                "subject prefix {:?} must be dot-separated tokens of letters, digits, '_' or '-'",
                self.subject_prefix
            )));
        }
        if self.partitions == 0 {
            return Err(BusError::Config("partitions must be at least 1".to_owned()));
        }
        Ok(())
    }

    /// The subject of an account's exchanges.
    pub fn exchange_subject(&self, account: &str) -> String {
        format!(
            "{}.x.{}",
            self.subject_prefix,
            partition_of(account, self.partitions)
        )
    }

    /// The subject of an account's decisions.
    pub fn decision_subject(&self, account: &str) -> String {
        format!(
            "{}.d.{}",
            self.subject_prefix,
            partition_of(account, self.partitions)
        )
    }

    /// Every subject of partition `p` (exchanges and decisions).
    fn partition_filter(&self, p: u32) -> String {
        format!("{}.*.{p}", self.subject_prefix)
    }
}

/// The partition of an account id: FNV-1a over its bytes, so that every gateway and worker,
/// whatever its build, agrees.
pub fn partition_of(account: &str, partitions: u32) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in account.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h % partitions.max(1)
}

/// The server's host and port, for messages (a URL may carry credentials).
fn server_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    rest.split('/').next().unwrap_or("").to_owned()
}

async fn connect(cfg: &BusConfig) -> Result<jetstream::Context, BusError> {
    cfg.check()?;
    let client = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(5))
        .retry_on_initial_connect()
        .max_reconnects(None)
        .connect(cfg.url.as_str());
    let client = tokio::time::timeout(Duration::from_secs(10), async {
        // With retries on, the first connection is made in the background: wait for it.
        let client = client.await.map_err(|e| e.to_string())?;
        client.flush().await.map_err(|e| e.to_string())?;
        Ok::<_, String>(client)
    })
    .await
    .map_err(|_| "timed out".to_owned())
    .and_then(|r| r)
    .map_err(|reason| BusError::Connect {
        server: server_of(&cfg.url),
        reason,
    })?;
    let js = jetstream::new(client);
    ensure_stream(&js, cfg).await?;
    Ok(js)
}

/// Creates the stream if it does not exist: file storage, records kept until every partition's
/// consumer has acknowledged them (work-queue retention), duplicates of a message id dropped
/// within ten minutes.
async fn ensure_stream(
    js: &jetstream::Context,
    cfg: &BusConfig,
) -> Result<stream::Stream, BusError> {
    js.get_or_create_stream(stream::Config {
        name: cfg.stream.clone(),
        subjects: vec![format!("{}.>", cfg.subject_prefix)],
        retention: stream::RetentionPolicy::WorkQueue,
        storage: stream::StorageType::File,
        duplicate_window: Duration::from_secs(600),
        ..Default::default()
    })
    .await
    .map_err(|e| e.to_string())
    .map_err(js_err(format!("creating stream {}", cfg.stream)))
}

/// Publishes records and waits for the stream to hold them. Blocking: it owns a small runtime
/// (one thread) that drives the connection between calls, so call it from a plain thread (the
/// recorder's), never from async code.
pub struct Publisher {
    /// `None` only while dropping.
    rt: Option<tokio::runtime::Runtime>,
    js: jetstream::Context,
    cfg: BusConfig,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("server", &server_of(&self.cfg.url))
            .field("stream", &self.cfg.stream)
            .finish_non_exhaustive()
    }
}

/// Records per round of publishes awaited together.
const PUBLISH_WINDOW: usize = 256;

impl Publisher {
    /// Connects (waiting up to 10 s) and creates the stream if needed.
    pub fn connect(cfg: BusConfig) -> Result<Publisher, BusError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("moat-bus")
            .enable_all()
            .build()
            .map_err(BusError::Runtime)?;
        let js = rt.block_on(connect(&cfg))?;
        Ok(Publisher {
            rt: Some(rt),
            js,
            cfg,
        })
    }

    /// Publishes exchanges (all or an error: a failed batch may be published again, and
    /// the duplicates are dropped by message id). `duplicates` counts records the stream
    /// already had.
    pub fn publish_exchanges(&self, batch: &[Exchange]) -> Result<AppendReport, BusError> {
        self.publish(batch, "an exchange", |x| {
            (
                self.cfg.exchange_subject(&x.account_id),
                x.request_id.clone(),
            )
        })
    }

    /// Publishes decisions, as [`Publisher::publish_exchanges`]; their message id is the
    /// request id and time, as the store's idempotency key.
    pub fn publish_decisions(&self, batch: &[DecisionRecord]) -> Result<AppendReport, BusError> {
        self.publish(batch, "a decision", |d| {
            let id = d
                .request_id
                .as_ref()
                .map(|r| format!("d:{r}:{}", d.ts.as_millis()));
            (self.cfg.decision_subject(&d.account_id), id)
        })
    }

    /// Encodes `batch` as JSON, each record to the subject and with the message id `route`
    /// gives it, publishes it and waits for the acknowledgements.
    fn publish<T: serde::Serialize>(
        &self,
        batch: &[T],
        what: &str,
        route: impl Fn(&T) -> (String, Option<String>),
    ) -> Result<AppendReport, BusError> {
        let mut items = Vec::with_capacity(batch.len());
        for r in batch {
            let body = serde_json::to_vec(r).map_err(|e| BusError::JetStream {
                what: format!("encoding {what}"),
                reason: e.to_string(),
            })?;
            let (subject, id) = route(r);
            items.push((subject, id, body));
        }
        let js = &self.js;
        let timeout = self.cfg.ack_timeout;
        let Some(rt) = &self.rt else {
            return Err(BusError::Config(
                "the publisher is shutting down".to_owned(),
            ));
        };
        rt.block_on(async move {
            let mut report = AppendReport::default();
            let mut items = items.into_iter().peekable();
            while items.peek().is_some() {
                // Send a window of publishes, then wait for their acknowledgements together.
                let mut pending = Vec::with_capacity(PUBLISH_WINDOW);
                for (subject, id, body) in items.by_ref().take(PUBLISH_WINDOW) {
                    let mut msg =
                        jetstream::message::PublishMessage::build().payload(Bytes::from(body));
                    if let Some(id) = id {
                        msg = msg.message_id(id);
                    }
                    let ack = js
                        .send_publish(subject, msg)
                        .await
                        .map_err(|e| e.to_string())
                        .map_err(js_err("publishing"))?;
                    pending.push(ack);
                }
                for ack in pending {
                    let ack = tokio::time::timeout(timeout, ack)
                        .await
                        .map_err(|_| "no acknowledgement in time".to_owned())
                        .and_then(|r| r.map_err(|e| e.to_string()))
                        .map_err(js_err("waiting for the stream's acknowledgement"))?;
                    if ack.duplicate {
                        report.duplicates += 1;
                    } else {
                        report.new += 1;
                    }
                }
            }
            Ok(report)
        })
    }
}

impl Drop for Publisher {
    /// Safe anywhere, async code included (a gateway drops its store there): the runtime is
    /// shut down without waiting. Every publish has already been acknowledged by then.
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// A [`Store`] for a gateway in scale-out mode: appends of exchanges and decisions are
/// published to the stream (the workers store them), everything else (reads, audit) goes to
/// the shared database.
pub struct PublishingStore {
    publisher: Publisher,
    shared: Arc<dyn Store>,
}

impl std::fmt::Debug for PublishingStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublishingStore")
            .field("publisher", &self.publisher)
            .finish_non_exhaustive()
    }
}

impl PublishingStore {
    /// Publishes through `publisher`; reads from `shared`.
    pub fn new(publisher: Publisher, shared: Arc<dyn Store>) -> PublishingStore {
        PublishingStore { publisher, shared }
    }
}

fn unavailable(e: BusError) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

impl Store for PublishingStore {
    fn append_exchanges(&self, batch: &[Exchange]) -> Result<AppendReport, StoreError> {
        self.publisher.publish_exchanges(batch).map_err(unavailable)
    }
    fn append_decisions(&self, batch: &[DecisionRecord]) -> Result<AppendReport, StoreError> {
        self.publisher.publish_decisions(batch).map_err(unavailable)
    }
    fn exchanges(&self, q: &ExchangeQuery) -> Result<Page<Exchange>, StoreError> {
        self.shared.exchanges(q)
    }
    fn decisions(&self, q: &DecisionQuery) -> Result<Page<DecisionRecord>, StoreError> {
        self.shared.decisions(q)
    }
    fn count_exchanges(&self) -> Result<u64, StoreError> {
        self.shared.count_exchanges()
    }
    fn account_summaries(&self, q: &AccountQuery) -> Result<Page<AccountSummary>, StoreError> {
        self.shared.account_summaries(q)
    }
    fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        self.shared.append_audit(entry)
    }
    fn audit(&self, q: &AuditQuery) -> Result<Page<AuditEntry>, StoreError> {
        self.shared.audit(q)
    }
    fn export_exchanges(
        &self,
        since: Option<Timestamp>,
        sink: &mut ExportSink<'_>,
    ) -> Result<u64, StoreError> {
        self.shared.export_exchanges(since, sink)
    }
    fn schema_version(&self) -> Result<u32, StoreError> {
        self.shared.schema_version()
    }
}

/// What a worker has done so far.
#[derive(Debug, Default)]
pub struct WorkerStats {
    /// Messages stored and acknowledged.
    pub stored: AtomicU64,
    /// Of those, records the store already had (redeliveries).
    pub duplicates: AtomicU64,
    /// Messages that were not a record, acknowledged as terminated (never redelivered).
    pub malformed: AtomicU64,
    /// Batches the store refused; their messages were handed back for redelivery.
    pub store_failures: AtomicU64,
    /// Feature rows appended to the feature log (redeliveries included).
    pub features: AtomicU64,
}

/// How a worker consumes.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Partitions this worker pulls from (several workers may share one: the stream hands
    /// each message to one of them).
    pub partitions: Vec<u32>,
    /// Messages per fetch.
    pub batch: usize,
    /// How long a delivered, unacknowledged message waits before it is delivered again.
    pub ack_wait: Duration,
}

/// The durable consumer of one partition.
fn consumer_name(cfg: &BusConfig, p: u32) -> String {
    format!("{}-p{p}", cfg.stream)
}

/// Consumes the partitions in `opts` into `store` until `stop` resolves; see the crate
/// documentation. With `features`, each exchange's detection features are appended to that
/// log too, before the batch is acknowledged. Both are called through `spawn_blocking`
/// (stores block).
pub async fn run_worker(
    cfg: BusConfig,
    opts: WorkerOptions,
    store: Arc<dyn Store>,
    features: Option<Arc<dyn FeatureLog>>,
    stats: Arc<WorkerStats>,
    stop: impl std::future::Future<Output = ()> + Send,
) -> Result<(), BusError> {
    let js = connect(&cfg).await?;
    let stream = ensure_stream(&js, &cfg).await?;
    let mut tasks = Vec::new();
    for &p in &opts.partitions {
        if p >= cfg.partitions {
            return Err(BusError::Config(format!(
                "partition {p} does not exist (the stream has {})",
                cfg.partitions
            )));
        }
        let name = consumer_name(&cfg, p);
        let consumer: consumer::PullConsumer = stream
            .get_or_create_consumer(
                &name,
                consumer::pull::Config {
                    durable_name: Some(name.clone()),
                    filter_subject: cfg.partition_filter(p),
                    ack_policy: consumer::AckPolicy::Explicit,
                    ack_wait: opts.ack_wait,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| e.to_string())
            .map_err(js_err(format!("creating consumer {name}")))?;
        tasks.push(tokio::spawn(consume(
            consumer,
            opts.batch.max(1),
            Arc::clone(&store),
            features.clone(),
            Arc::clone(&stats),
        )));
    }
    stop.await;
    for t in tasks {
        t.abort();
    }
    Ok(())
}

/// A decoded message.
enum Record {
    Exchange(Box<Exchange>),
    Decision(DecisionRecord),
}

fn decode(subject: &str, payload: &[u8]) -> Option<Record> {
    let kind = subject.rsplit('.').nth(1)?;
    match kind {
        "x" => serde_json::from_slice(payload)
            .ok()
            .map(|x| Record::Exchange(Box::new(x))),
        "d" => serde_json::from_slice(payload).ok().map(Record::Decision),
        _ => None,
    }
}

/// One partition's loop: fetch, store, acknowledge.
async fn consume(
    consumer: consumer::PullConsumer,
    batch: usize,
    store: Arc<dyn Store>,
    features: Option<Arc<dyn FeatureLog>>,
    stats: Arc<WorkerStats>,
) {
    loop {
        let fetched = consumer
            .fetch()
            .max_messages(batch)
            .expires(Duration::from_millis(500))
            .messages()
            .await;
        let mut messages = match fetched {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "worker: fetch failed; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        let mut got = Vec::new();
        while let Some(m) = messages.next().await {
            match m {
                Ok(m) => got.push(m),
                Err(e) => tracing::warn!(error = %e, "worker: a message could not be received"),
            }
        }
        if got.is_empty() {
            continue;
        }
        let mut exchanges = Vec::new();
        let mut decisions = Vec::new();
        let mut keep = Vec::new();
        for m in got {
            match decode(m.subject.as_str(), &m.payload) {
                Some(Record::Exchange(x)) => {
                    exchanges.push(*x);
                    keep.push(m);
                }
                Some(Record::Decision(d)) => {
                    decisions.push(d);
                    keep.push(m);
                }
                None => {
                    stats.malformed.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(subject = %m.subject, "worker: a message is not a record; dropped");
                    let _ = m.ack_with(jetstream::AckKind::Term).await;
                }
            }
        }
        let s = Arc::clone(&store);
        let log = features.clone();
        let written = tokio::task::spawn_blocking(move || {
            let a = s.append_exchanges(&exchanges)?;
            let b = s.append_decisions(&decisions)?;
            // Features of every exchange, duplicates too: a worker may have died between the
            // two appends, and the log's appends are idempotent as well.
            let mut rows = 0;
            if let Some(log) = log {
                let batch = feature_rows(&exchanges);
                rows = batch.len() as u64;
                log.append_features(&batch)?;
            }
            Ok::<_, StoreError>((a.new + b.new, a.duplicates + b.duplicates, rows))
        })
        .await;
        match written {
            Ok(Ok((new, duplicates, rows))) => {
                stats.features.fetch_add(rows, Ordering::Relaxed);
                for m in &keep {
                    if let Err(e) = m.ack().await {
                        tracing::warn!(error = %e, "worker: acknowledgement failed; the message will be redelivered (and skipped as a duplicate)");
                    }
                }
                stats.stored.fetch_add(new + duplicates, Ordering::Relaxed);
                stats.duplicates.fetch_add(duplicates, Ordering::Relaxed);
            }
            Ok(Err(e)) => {
                stats.store_failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, records = keep.len(), "worker: the store refused a batch; it will be redelivered");
                for m in &keep {
                    let _ = m
                        .ack_with(jetstream::AckKind::Nak(Some(Duration::from_secs(1))))
                        .await;
                }
            }
            Err(e) => {
                stats.store_failures.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, "worker: the store call panicked; the batch will be redelivered");
            }
        }
    }
}

/// The feature-log rows of exchanges: the engine's input, encoded.
pub fn feature_rows(exchanges: &[Exchange]) -> Vec<FeatureRow> {
    exchanges
        .iter()
        .map(|x| {
            let mut body = Vec::with_capacity(256);
            Features::of(x).encode(&mut body);
            FeatureRow {
                request_id: x.request_id.clone(),
                account_id: x.account_id.clone(),
                ts: x.ts,
                body,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_are_stable_and_spread() {
        assert_eq!(partition_of("acct_1", 16), partition_of("acct_1", 16));
        let mut seen = [0u32; 16];
        for i in 0..1_600 {
            seen[partition_of(&format!("acct_{i}"), 16) as usize] += 1;
        }
        assert!(seen.iter().all(|&n| (50..=150).contains(&n)), "{seen:?}");
        assert_eq!(partition_of("anything", 1), 0);
    }

    #[test]
    fn subjects_name_kind_and_partition() {
        let cfg = BusConfig::new("nats://127.0.0.1:4222");
        let p = partition_of("a", 16);
        assert_eq!(cfg.exchange_subject("a"), format!("moat.x.{p}"));
        assert_eq!(cfg.decision_subject("a"), format!("moat.d.{p}"));
        assert!(decode("moat.x.3", b"nope").is_none());
        assert!(decode("moat.q.3", b"{}").is_none());
    }

    #[test]
    fn credentials_stay_out_of_messages() {
        assert_eq!(server_of("nats://user:secret@host:4222"), "host:4222");
        assert_eq!(server_of("nats://host:4222/"), "host:4222");
        assert_eq!(server_of("host:4222"), "host:4222");
    }

    #[test]
    fn bad_names_are_refused() {
        let mut cfg = BusConfig::new("nats://x");
        cfg.stream = "a b".to_owned();
        assert!(cfg.check().is_err());
        let mut cfg = BusConfig::new("nats://x");
        cfg.subject_prefix = "moat.*".to_owned();
        assert!(cfg.check().is_err());
        let mut cfg = BusConfig::new("nats://x");
        cfg.partitions = 0;
        assert!(cfg.check().is_err());
    }
}

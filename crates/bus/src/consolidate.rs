//! The consolidator: the one process of a scale-out deployment that runs campaign discovery.
//!
//! Workers turn every exchange into the detection engine's input ([`moat_detect::Features`],
//! encoded in a few hundred bytes) and append it to the feature log in the shared database
//! ([`FeatureLog`]). The consolidator reads that log exactly once, in the order it settles,
//! folds it into one [`Engine`] in time order, and publishes what the engine concludes (each
//! account's standing, the campaigns) to a JetStream key-value bucket that every gateway
//! watches ([`watch_standings`]). So discovery sees every account of every gateway, and its
//! results are those of `moat analyze` over the same exchanges.
//!
//! Several consolidators may run; one leads ([`Election`], a PostgreSQL advisory lock) and the
//! others wait to take over. A new leader rebuilds the engine from the start of the log.
//!
//! Order: rows arrive in the order their transactions committed, which is not quite time
//! order (two gateways, two workers). A row waits in a buffer until it has been there for
//! `settle`; rows leave the buffer in time order (ties by request id), so a row that arrives
//! up to `settle` after a later one still goes first. One that arrives later than that is
//! folded at once and counted as late.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, kv};
use bytes::Bytes;
use futures_util::StreamExt;
use moat_detect::{Config as EngineConfig, Engine, Features};
use moat_store::{DetectionLog, FeatureCursor, FeatureLog, Leadership, PostgresStore, StoreError};
use moat_types::{Account, AccountDetection, CampaignDetection, Timestamp};

use crate::{connect, js_err, BusConfig, BusError};

/// Chooses the one consolidator.
pub trait Election: Send + Sync {
    /// Leadership if no other process holds it; `None` when one does.
    fn try_lead(&self) -> Result<Option<Box<dyn Lease>>, StoreError>;
}

/// Held leadership.
pub trait Lease: Send {
    /// Whether it is still held; a leader that finds it is not must stop.
    fn holds(&mut self) -> bool;
}

/// What the consolidator needs of the shared database: the feature log it reads, the
/// detection table it writes, and the election of its leader (`PostgresStore` is all three).
pub trait SharedDatabase: FeatureLog + DetectionLog + Election {}

impl<T: FeatureLog + DetectionLog + Election> SharedDatabase for T {}

/// The name of the consolidator's role in the database's leadership locks.
pub const CONSOLIDATOR_ROLE: &str = "consolidate";

impl Election for PostgresStore {
    fn try_lead(&self) -> Result<Option<Box<dyn Lease>>, StoreError> {
        Ok(
            PostgresStore::try_lead(self, CONSOLIDATOR_ROLE)?
                .map(|l| Box::new(l) as Box<dyn Lease>),
        )
    }
}

impl Lease for Leadership {
    fn holds(&mut self) -> bool {
        Leadership::holds(self)
    }
}

/// How the consolidator works.
#[derive(Debug, Clone)]
pub struct ConsolidateOptions {
    /// The engine's configuration (the same as `moat analyze`'s for the same answers).
    pub engine: EngineConfig,
    /// The accounts side file's records (sign-up facts, payment fingerprints).
    pub accounts: Vec<Account>,
    /// How long a row waits for older rows that commit after it.
    pub settle: Duration,
    /// How long to wait before reading again when the log had nothing new.
    pub poll: Duration,
    /// Rows per read.
    pub read_batch: usize,
}

impl ConsolidateOptions {
    /// Defaults: 2 s settle, 100 ms poll, 5,000 rows per read.
    pub fn new(engine: EngineConfig, accounts: Vec<Account>) -> ConsolidateOptions {
        ConsolidateOptions {
            engine,
            accounts,
            settle: Duration::from_secs(2),
            poll: Duration::from_millis(100),
            read_batch: 5_000,
        }
    }
}

/// What the consolidator has done; read by its caller (metrics, tests).
#[derive(Debug, Default)]
pub struct ConsolidatorStats {
    /// Whether this process leads now.
    pub leading: AtomicBool,
    /// Times it became leader.
    pub elected: AtomicU64,
    /// Feature rows folded into the engine (since it last became leader).
    pub observed: AtomicU64,
    /// Of those, rows that came after the settle time and were folded out of order.
    pub late: AtomicU64,
    /// Rows that could not be decoded, skipped.
    pub malformed: AtomicU64,
    /// Discovery passes.
    pub passes: AtomicU64,
    /// Values written to the standings bucket (accounts, campaigns, deletions).
    pub published: AtomicU64,
    /// `ts` (ms) of the latest row folded.
    pub through_ms: AtomicI64,
}

/// The key-value bucket of the standings: `STREAM-standings`.
pub fn standings_bucket(cfg: &BusConfig) -> String {
    format!("{}-standings", cfg.stream)
}

/// An account's key: `a.` and the account id in hex (any string may be an account id; a key
/// may hold only a few characters).
fn account_key(id: &str) -> String {
    let mut k = String::with_capacity(2 + 2 * id.len());
    k.push_str("a.");
    for b in id.bytes() {
        k.push_str(&format!("{b:02x}"));
    }
    k
}

/// A campaign's key: `c.` and the campaign id in hex.
fn campaign_key(id: &str) -> String {
    let mut k = account_key(id);
    k.replace_range(0..1, "c");
    k
}

/// The consolidator's own progress, under the key `meta`.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ConsolidatorMeta {
    /// Rows folded by the current leader.
    pub observed: u64,
    /// Discovery passes.
    pub passes: u64,
    /// Late rows.
    pub late: u64,
    /// `ts` of the latest row folded.
    pub through: Option<Timestamp>,
}

const META_KEY: &str = "meta";

async fn standings_store(js: &jetstream::Context, cfg: &BusConfig) -> Result<kv::Store, BusError> {
    let bucket = standings_bucket(cfg);
    // An existing bucket is used as it is (an operator may have made it with replicas).
    if let Ok(store) = js.get_key_value(bucket.as_str()).await {
        return Ok(store);
    }
    // The bucket's stream, made as the key-value convention has it (what `create_key_value`
    // makes; that call first asks for the account's limits, whose answer the client cannot
    // read from servers before 2.10). `get_or_create` leaves one another process made alone.
    js.get_or_create_stream(jetstream::stream::Config {
        name: format!("KV_{bucket}"),
        description: Some("Moat: account standings and campaigns from the consolidator".to_owned()),
        subjects: vec![format!("$KV.{bucket}.>")],
        max_messages_per_subject: 1,
        storage: jetstream::stream::StorageType::File,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: jetstream::stream::DiscardPolicy::New,
        num_replicas: 1,
        ..Default::default()
    })
    .await
    .map_err(|e| e.to_string())
    .map_err(js_err(format!("creating key-value bucket {bucket}")))?;
    js.get_key_value(bucket.as_str())
        .await
        .map_err(|e| e.to_string())
        .map_err(js_err(format!("opening key-value bucket {bucket}")))
}

/// Puts and deletions waiting for the bucket.
#[derive(Default)]
struct Outbox {
    puts: Vec<(String, Bytes)>,
    deletes: Vec<String>,
    /// The same changes for the database's detection table.
    accounts: Vec<AccountDetection>,
    campaigns: Vec<CampaignDetection>,
    gone: Vec<String>,
}

/// Values written per round of puts awaited together.
const PUT_WINDOW: usize = 512;

async fn send(store: &kv::Store, out: Outbox) -> Result<u64, BusError> {
    let mut sent = 0u64;
    let mut puts = out.puts.into_iter().peekable();
    while puts.peek().is_some() {
        let round: Vec<_> = puts
            .by_ref()
            .take(PUT_WINDOW)
            .map(|(k, v)| store.put(k, v))
            .collect();
        for r in futures_util::future::join_all(round).await {
            r.map_err(|e| e.to_string())
                .map_err(js_err("writing a standing"))?;
            sent += 1;
        }
    }
    for k in out.deletes {
        store
            .delete(&k)
            .await
            .map_err(|e| e.to_string())
            .map_err(js_err("deleting a campaign"))?;
        sent += 1;
    }
    Ok(sent)
}

/// What the leader has published, to send only what changed.
#[derive(Default)]
struct Published {
    accounts: HashMap<Box<str>, Vec<u8>>,
    campaigns: HashMap<String, Vec<u8>>,
}

impl Published {
    fn account(&mut self, out: &mut Outbox, d: &AccountDetection) -> Result<(), BusError> {
        let body = to_json(d)?;
        if self.accounts.get(d.account_id.as_str()) != Some(&body) {
            out.puts
                .push((account_key(&d.account_id), Bytes::from(body.clone())));
            out.accounts.push(d.clone());
            self.accounts.insert(d.account_id.as_str().into(), body);
        }
        Ok(())
    }

    /// Publishes the campaigns and deletes those gone since the last time.
    fn campaigns(&mut self, out: &mut Outbox, all: &[CampaignDetection]) -> Result<(), BusError> {
        let mut now = HashSet::with_capacity(all.len());
        for c in all {
            now.insert(c.campaign_id.clone());
            let body = to_json(c)?;
            if self.campaigns.get(&c.campaign_id) != Some(&body) {
                out.puts
                    .push((campaign_key(&c.campaign_id), Bytes::from(body.clone())));
                out.campaigns.push(c.clone());
                self.campaigns.insert(c.campaign_id.clone(), body);
            }
        }
        let gone: Vec<String> = self
            .campaigns
            .keys()
            .filter(|k| !now.contains(*k))
            .cloned()
            .collect();
        for id in gone {
            self.campaigns.remove(&id);
            out.deletes.push(campaign_key(&id));
            out.gone.push(id);
        }
        Ok(())
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, BusError> {
    serde_json::to_vec(v).map_err(|e| BusError::JetStream {
        what: "encoding a standing".to_owned(),
        reason: e.to_string(),
    })
}

/// The engine of one leadership term and what it has folded.
struct Term {
    engine: Engine,
    cursor: FeatureCursor,
    /// Rows waiting for older ones: (ts, request id or row number) → (arrival, features).
    buffer: BTreeMap<(i64, String), (Instant, Features)>,
    /// The key of the latest row folded.
    last: Option<(i64, String)>,
    published: Published,
    /// Accounts folded since the last publication.
    touched: HashSet<Box<str>>,
    /// A discovery pass ran since the last publication.
    passed: bool,
    /// A write to the detection table failed: the next publication rewrites it whole.
    db_stale: bool,
    rows_seen: u64,
}

impl Term {
    fn new(opts: &ConsolidateOptions) -> Term {
        let mut engine = Engine::new(opts.engine.clone());
        for a in &opts.accounts {
            engine.add_account(a);
        }
        Term {
            engine,
            cursor: FeatureCursor::default(),
            buffer: BTreeMap::new(),
            last: None,
            published: Published::default(),
            touched: HashSet::new(),
            passed: false,
            db_stale: false,
            rows_seen: 0,
        }
    }

    fn fold(&mut self, f: Features, stats: &ConsolidatorStats) {
        let before = self.engine.stats().discoveries;
        let ts = f.ts().as_millis();
        self.touched.insert(f.account_id().into());
        self.engine.observe_features(f);
        if self.engine.stats().discoveries != before {
            self.passed = true;
            stats.passes.fetch_add(1, Ordering::Relaxed);
        }
        stats.observed.fetch_add(1, Ordering::Relaxed);
        stats.through_ms.fetch_max(ts, Ordering::Relaxed);
    }

    /// Takes one read of the log into the buffer (late rows straight into the engine).
    fn take(&mut self, rows: Vec<moat_store::FeatureRow>, stats: &ConsolidatorStats) {
        let now = Instant::now();
        for row in rows {
            self.rows_seen += 1;
            let features = match Features::decode(&row.body) {
                Ok(f) => f,
                Err(e) => {
                    stats.malformed.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(error = %e, "consolidator: a feature row cannot be decoded; skipped");
                    continue;
                }
            };
            let tie = row
                .request_id
                .unwrap_or_else(|| format!("\u{10ffff}#{}", self.rows_seen));
            let key = (row.ts.as_millis(), tie);
            if self.last.as_ref().is_some_and(|last| key < *last) {
                stats.late.fetch_add(1, Ordering::Relaxed);
                self.fold(features, stats);
            } else {
                self.buffer.insert(key, (now, features));
            }
        }
    }

    /// Folds the rows that have waited `settle` (and everything before them in time order);
    /// all of them when `all`.
    fn drain(&mut self, settle: Duration, all: bool, stats: &ConsolidatorStats) {
        let now = Instant::now();
        while let Some(entry) = self.buffer.first_entry() {
            if !all && now.duration_since(entry.get().0) < settle {
                break;
            }
            let (key, (_, features)) = entry.remove_entry();
            self.fold(features, stats);
            self.last = Some(key);
        }
    }

    /// What changed since the last publication.
    fn changes(&mut self, stats: &ConsolidatorStats) -> Result<Outbox, BusError> {
        let mut out = Outbox::default();
        if self.passed {
            for (id, s) in self.engine.account_statuses() {
                self.published.account(&mut out, &s.line(id))?;
            }
            let campaigns = self.engine.campaign_detections();
            self.published.campaigns(&mut out, &campaigns)?;
        } else {
            for id in &self.touched {
                if let Some(s) = self.engine.account_status(id) {
                    self.published.account(&mut out, &s.line(id))?;
                }
            }
        }
        if self.passed || !self.touched.is_empty() {
            let meta = ConsolidatorMeta {
                observed: stats.observed.load(Ordering::Relaxed),
                passes: stats.passes.load(Ordering::Relaxed),
                late: stats.late.load(Ordering::Relaxed),
                through: self
                    .last
                    .as_ref()
                    .map(|(ts, _)| Timestamp::from_millis(*ts)),
            };
            out.puts
                .push((META_KEY.to_owned(), Bytes::from(to_json(&meta)?)));
        }
        self.passed = false;
        self.touched.clear();
        Ok(out)
    }
}

/// A handle on the running consolidator's engine, for its caller: the detections so far.
pub type Snapshot = std::sync::Mutex<Option<Vec<moat_types::Detection>>>;

/// Runs the consolidator until `stop` is set; see the module documentation. What it concludes
/// goes to the bucket and to the database's detection table. Blocking (the
/// log and the election block): run it on a thread of its own. `snapshot`, when given, is
/// filled with the engine's detections when a leading consolidator stops (after folding what
/// still waited in its buffer).
pub fn run_consolidator(
    cfg: &BusConfig,
    opts: &ConsolidateOptions,
    db: &dyn SharedDatabase,
    stats: &ConsolidatorStats,
    snapshot: Option<&Snapshot>,
    stop: &AtomicBool,
) -> Result<(), BusError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("moat-consolidate")
        .enable_all()
        .build()
        .map_err(BusError::Runtime)?;
    let kv = rt.block_on(async {
        let js = connect(cfg).await?;
        standings_store(&js, cfg).await
    })?;
    while !stop.load(Ordering::SeqCst) {
        let Some(mut lease) = elect(db, stop) else {
            break;
        };
        stats.leading.store(true, Ordering::SeqCst);
        stats.elected.fetch_add(1, Ordering::Relaxed);
        stats.observed.store(0, Ordering::Relaxed);
        tracing::info!("consolidator: leading; folding the feature log from its start");
        let result = lead(&rt, &kv, opts, db, &mut *lease, stats, snapshot, stop);
        stats.leading.store(false, Ordering::SeqCst);
        drop(lease);
        if let Err(e) = result {
            // The bucket could not be written: give the lead up, so another may take it.
            tracing::warn!(error = %e, "consolidator: giving up the lead");
            std::thread::sleep(Duration::from_secs(1));
        }
    }
    Ok(())
}

/// Waits to lead; `None` when stopped first.
fn elect(election: &dyn Election, stop: &AtomicBool) -> Option<Box<dyn Lease>> {
    let mut waiting_logged = false;
    while !stop.load(Ordering::SeqCst) {
        match election.try_lead() {
            Ok(Some(lease)) => return Some(lease),
            Ok(None) => {
                if !waiting_logged {
                    tracing::info!("consolidator: another process leads; standing by");
                    waiting_logged = true;
                }
            }
            Err(e) => tracing::warn!(error = %e, "consolidator: election failed; retrying"),
        }
        sleep_unless_stopped(Duration::from_secs(1), stop);
    }
    None
}

fn sleep_unless_stopped(d: Duration, stop: &AtomicBool) {
    let until = Instant::now() + d;
    while !stop.load(Ordering::SeqCst) {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}

/// How often the leader checks it still leads.
const LEASE_CHECK: Duration = Duration::from_secs(1);

/// One leadership term: fold and publish until stopped or the lease is lost.
#[allow(clippy::too_many_arguments)]
fn lead(
    rt: &tokio::runtime::Runtime,
    kv: &kv::Store,
    opts: &ConsolidateOptions,
    db: &dyn SharedDatabase,
    lease: &mut dyn Lease,
    stats: &ConsolidatorStats,
    snapshot: Option<&Snapshot>,
    stop: &AtomicBool,
) -> Result<(), BusError> {
    let mut term = Term::new(opts);
    // The table may hold a previous leader's lines: the first publication rewrites it.
    term.db_stale = true;
    // Campaigns a previous leader published that this term has not (yet) found are deleted
    // at the first publication: start from what the bucket holds.
    for id in rt.block_on(campaign_ids(kv))? {
        term.published.campaigns.insert(id, Vec::new());
    }
    let mut checked = Instant::now();
    while !stop.load(Ordering::SeqCst) {
        if checked.elapsed() >= LEASE_CHECK {
            if !lease.holds() {
                tracing::warn!("consolidator: lost the lead");
                return Ok(());
            }
            checked = Instant::now();
        }
        let read = db.read_features(term.cursor, opts.read_batch);
        let got = match read {
            Ok((rows, next)) => {
                term.cursor = next;
                let n = rows.len();
                term.take(rows, stats);
                n
            }
            Err(e) => {
                tracing::warn!(error = %e, "consolidator: reading the feature log failed; retrying");
                0
            }
        };
        term.drain(opts.settle, false, stats);
        publish(rt, kv, db, &mut term, stats)?;
        if got < opts.read_batch {
            sleep_unless_stopped(opts.poll, stop);
        }
    }
    // Stopping: what still waits in the buffer is folded and published, then the detections
    // are handed over.
    term.drain(opts.settle, true, stats);
    publish(rt, kv, db, &mut term, stats)?;
    if let Some(s) = snapshot {
        let d = term.engine.detections();
        *s.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(d);
    }
    Ok(())
}

/// Writes what changed to the database's detection table, then to the bucket. A failed
/// database write is retried whole at the next publication (the bucket is not held back for
/// it: gateways enforce from the bucket).
fn publish(
    rt: &tokio::runtime::Runtime,
    kv: &kv::Store,
    results: &dyn DetectionLog,
    term: &mut Term,
    stats: &ConsolidatorStats,
) -> Result<(), BusError> {
    let out = term.changes(stats)?;
    let written = if term.db_stale {
        rewrite_detections(results, &term.engine)
    } else {
        results.put_detections(&out.accounts, &out.campaigns, &out.gone)
    };
    match written {
        Ok(()) => term.db_stale = false,
        Err(e) => {
            if !term.db_stale {
                tracing::warn!(error = %e, "consolidator: writing detections to the database failed; will rewrite them");
            }
            term.db_stale = true;
        }
    }
    if !out.puts.is_empty() || !out.deletes.is_empty() {
        let sent = rt.block_on(send(kv, out))?;
        stats.published.fetch_add(sent, Ordering::Relaxed);
    }
    Ok(())
}

/// Rewrites the detection table from the engine: every account line and campaign, and the
/// removal of campaigns the table has that the engine no longer does.
fn rewrite_detections(results: &dyn DetectionLog, engine: &Engine) -> Result<(), StoreError> {
    let accounts: Vec<AccountDetection> = engine
        .account_statuses()
        .map(|(id, s)| s.line(id))
        .collect();
    let campaigns = engine.campaign_detections();
    let now: HashSet<&str> = campaigns.iter().map(|c| c.campaign_id.as_str()).collect();
    let gone: Vec<String> = results
        .detections()?
        .into_iter()
        .filter_map(|d| match d {
            moat_types::Detection::Campaign(c) if !now.contains(c.campaign_id.as_str()) => {
                Some(c.campaign_id)
            }
            _ => None,
        })
        .collect();
    results.put_detections(&accounts, &campaigns, &gone)
}

async fn campaign_ids(kv: &kv::Store) -> Result<Vec<String>, BusError> {
    let mut keys = kv
        .keys()
        .await
        .map_err(|e| e.to_string())
        .map_err(js_err("listing the standings"))?;
    let mut out = Vec::new();
    while let Some(k) = keys.next().await {
        let k = k
            .map_err(|e| e.to_string())
            .map_err(js_err("listing the standings"))?;
        if let Some(id) = k.strip_prefix("c.").and_then(unhex) {
            out.push(id);
        }
    }
    Ok(out)
}

fn unhex(s: &str) -> Option<String> {
    if s.len() % 2 != 0 {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

/// One change of the standings, as a gateway sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum StandingUpdate {
    /// An account's standing (its detection line).
    Account(AccountDetection),
    /// A campaign, new or changed.
    Campaign(CampaignDetection),
    /// A campaign that no longer exists (merged into another).
    CampaignGone(String),
    /// The consolidator's progress.
    Meta(ConsolidatorMeta),
    /// Every value the bucket held when watching began has been delivered.
    Current,
}

/// Watches the standings bucket: every value it holds, then every change, to `apply`, until
/// `stop` resolves. Reconnects by itself; a value that is not what the consolidator writes is
/// skipped and logged.
pub async fn watch_standings(
    cfg: BusConfig,
    mut apply: impl FnMut(StandingUpdate) + Send,
    stop: impl std::future::Future<Output = ()> + Send,
) -> Result<(), BusError> {
    let js = connect(&cfg).await?;
    let store = standings_store(&js, &cfg).await?;
    let watching = async {
        loop {
            let mut watch = match store.watch_all().await {
                Ok(w) => w,
                Err(e) => {
                    tracing::warn!(error = %e, "standings: watch failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            let mut current = false;
            if store
                .status()
                .await
                .map(|s| s.values() == 0)
                .unwrap_or(false)
            {
                current = true;
                apply(StandingUpdate::Current);
            }
            while let Some(entry) = watch.next().await {
                let entry = match entry {
                    Ok(e) => e,
                    Err(e) => {
                        tracing::warn!(error = %e, "standings: watch interrupted; restarting");
                        break;
                    }
                };
                if let Some(update) = decode_entry(&entry) {
                    apply(update);
                }
                if !current && entry.seen_current {
                    current = true;
                    apply(StandingUpdate::Current);
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    tokio::select! {
        () = watching => Ok(()),
        () = stop => Ok(()),
    }
}

fn decode_entry(entry: &kv::Entry) -> Option<StandingUpdate> {
    let deleted = matches!(
        entry.operation,
        kv::Operation::Delete | kv::Operation::Purge
    );
    let bad = |what: &str| {
        tracing::warn!(key = %entry.key, "standings: a value is not {what}; skipped");
    };
    if entry.key == META_KEY {
        return match serde_json::from_slice(&entry.value) {
            Ok(m) => Some(StandingUpdate::Meta(m)),
            Err(_) if deleted => None,
            Err(_) => {
                bad("the consolidator's progress");
                None
            }
        };
    }
    if let Some(id) = entry.key.strip_prefix("c.").and_then(unhex) {
        if deleted {
            return Some(StandingUpdate::CampaignGone(id));
        }
        return match serde_json::from_slice(&entry.value) {
            Ok(c) => Some(StandingUpdate::Campaign(c)),
            Err(_) => {
                bad("a campaign");
                None
            }
        };
    }
    if entry.key.starts_with("a.") && !deleted {
        return match serde_json::from_slice(&entry.value) {
            Ok(a) => Some(StandingUpdate::Account(a)),
            Err(_) => {
                bad("an account standing");
                None
            }
        };
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use moat_store::FeatureRow;

    fn row(account: &str, id: &str, ts_ms: i64) -> FeatureRow {
        let x: moat_types::Exchange = serde_json::from_value(serde_json::json!({
            "v": 1,
            "ts": Timestamp::from_millis(ts_ms),
            "account_id": account,
            "request_id": id,
            "request": {"messages": [{"role": "user", "content": "Explain your reasoning step by step."}]}
        }))
        .unwrap();
        crate::feature_rows(&[x]).remove(0)
    }

    #[test]
    fn rows_leave_the_buffer_in_time_order_and_late_ones_fold_at_once() {
        let stats = ConsolidatorStats::default();
        let mut term = Term::new(&ConsolidateOptions::new(
            EngineConfig::default(),
            Vec::new(),
        ));
        // Committed out of time order, within the settle time.
        term.take(
            vec![
                row("a", "r3", 3_000),
                row("b", "r1", 1_000),
                row("c", "r2", 2_000),
            ],
            &stats,
        );
        term.drain(Duration::from_secs(60), false, &stats);
        assert_eq!(stats.observed.load(Ordering::Relaxed), 0, "still settling");
        let order: Vec<i64> = term.buffer.keys().map(|k| k.0).collect();
        assert_eq!(order, [1_000, 2_000, 3_000]);
        term.drain(Duration::ZERO, false, &stats);
        assert_eq!(stats.observed.load(Ordering::Relaxed), 3);
        assert_eq!(term.last, Some((3_000, "r3".to_owned())));
        // A row older than what was folded arrives after its settle time: folded at once.
        term.take(vec![row("d", "r0", 500)], &stats);
        assert_eq!(stats.late.load(Ordering::Relaxed), 1);
        assert_eq!(stats.observed.load(Ordering::Relaxed), 4);
        assert!(term.buffer.is_empty());
        // Undecodable rows are skipped and counted.
        let mut bad = row("e", "r9", 4_000);
        bad.body = vec![9, 9, 9];
        term.take(vec![bad], &stats);
        assert_eq!(stats.malformed.load(Ordering::Relaxed), 1);
        // Every account folded is published once, with the progress.
        let out = term.changes(&stats).unwrap();
        let keys: Vec<&str> = out.puts.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys.iter().filter(|k| k.starts_with("a.")).count(), 4);
        assert!(keys.contains(&META_KEY));
        // Nothing changed: nothing to send.
        let again = term.changes(&stats).unwrap();
        assert!(again.puts.is_empty() && again.deletes.is_empty());
    }

    #[test]
    fn campaigns_gone_are_deleted_once() {
        let mut p = Published::default();
        let c = |id: &str| CampaignDetection {
            campaign_id: id.to_owned(),
            accounts: vec!["a".to_owned()],
            score: 0.9,
            first_detected_at: None,
            signals: Vec::new(),
        };
        let mut out = Outbox::default();
        p.campaigns(&mut out, &[c("C-0001"), c("C-0002")]).unwrap();
        assert_eq!(out.puts.len(), 2);
        let mut out = Outbox::default();
        p.campaigns(&mut out, &[c("C-0002")]).unwrap();
        assert!(out.puts.is_empty());
        assert_eq!(out.deletes, vec![campaign_key("C-0001")]);
        let mut out = Outbox::default();
        p.campaigns(&mut out, &[c("C-0002")]).unwrap();
        assert!(out.deletes.is_empty());
    }

    #[test]
    fn keys_hold_any_id_in_allowed_characters() {
        let k = account_key("a b/ü\u{0}");
        assert!(k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.'));
        assert_eq!(unhex(&k[2..]).as_deref(), Some("a b/ü\u{0}"));
        assert_eq!(
            campaign_key("C-0001"),
            format!("c.{}", &account_key("C-0001")[2..])
        );
        assert_eq!(unhex("zz"), None);
        assert_eq!(unhex("abc"), None);
    }
}

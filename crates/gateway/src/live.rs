//! The detection engine on the live stream: one thread owns `moat_detect::Engine`, requests
//! reach it through a bounded queue, and what it concludes (each account's standing, the
//! campaigns) is published to maps the request path reads without waiting.
//!
//! The request path never waits on the engine: when the queue is full the request is counted
//! as unscored (`moat_engine_dropped_total`) and served on the account's last standing; it is
//! still recorded, so `moat analyze` over the store sees it. The engine's time is each
//! request's arrival time, so its verdicts are as causal as `moat analyze`'s.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use arc_swap::ArcSwap;
use dashmap::DashMap;
use moat_detect::{AccountStatus, Config as EngineConfig, Engine, Features, Reasons};
use moat_types::{Account, Detection, Exchange, Signal, Timestamp};
use moat_ui::data::Usage;

use crate::usage::Counts;

/// One account's standing as the policy sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Standing {
    /// Risk 0..1.
    pub risk: f64,
    /// Flagged by the engine.
    pub flagged: bool,
    /// When it was flagged.
    pub flagged_at: Option<Timestamp>,
    /// Its campaign.
    pub campaign: Option<Arc<str>>,
    /// Why (one bit per reason: a few bytes per account, for a map of every account).
    pub reasons: Reasons,
}

/// A campaign as the admin API and the policy see it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CampaignView {
    /// `C-0007`.
    pub campaign_id: String,
    /// Score 0..1.
    pub score: f64,
    /// Member accounts (sorted).
    pub accounts: Vec<String>,
    /// When discovery first reported it.
    pub first_detected_at: Option<Timestamp>,
    /// Evidence.
    pub signals: Vec<Signal>,
}

impl From<moat_types::CampaignDetection> for CampaignView {
    fn from(c: moat_types::CampaignDetection) -> CampaignView {
        CampaignView {
            campaign_id: c.campaign_id,
            score: c.score,
            accounts: c.accounts,
            first_detected_at: c.first_detected_at,
            signals: c.signals,
        }
    }
}

/// One account as the gateway keeps it: its standing as the engine (or the consolidator) last
/// published it, and what this gateway answered it ([`Counts`]). One map entry per account
/// holds both: at 100k accounts this map is a large part of the gateway's memory.
#[derive(Debug, Clone, Default)]
pub struct AccountEntry {
    /// `None` until a standing is published (the account's first answer may come first).
    pub standing: Option<Standing>,
    /// Its traffic through this gateway.
    pub usage: Counts,
}

/// Everything published by the engine thread, and each account's traffic.
#[derive(Debug, Default)]
pub struct Published {
    /// Every account seen: by the engine, the consolidator or this gateway's answers.
    pub accounts: DashMap<Box<str>, AccountEntry, foldhash::fast::RandomState>,
    /// Campaigns of the latest discovery pass, by id.
    pub campaigns: ArcSwap<HashMap<String, CampaignView>>,
    /// Requests the engine has folded.
    pub observed: AtomicU64,
    /// Requests that found the queue full and went unscored.
    pub dropped: AtomicU64,
    /// Discovery passes run.
    pub passes: AtomicU64,
    /// Whether the engine thread is running.
    pub alive: AtomicBool,
}

impl Published {
    /// The account's standing (`None` for one never scored).
    pub fn standing(&self, account: &str) -> Option<Standing> {
        self.accounts.get(account).and_then(|e| e.standing.clone())
    }

    /// Publishes the account's standing, keeping its traffic counters.
    pub fn set_standing(&self, account: &str, standing: Standing) {
        self.update(account, |e| e.standing = Some(standing));
    }

    /// Counts an answered (or refused) exchange in its account's traffic, as detected when the
    /// account is flagged or in a campaign now.
    pub fn count_answer(&self, x: &Exchange) {
        self.update(x.account_id.as_str(), |e| {
            let detected = e
                .standing
                .as_ref()
                .is_some_and(|s| s.flagged || s.campaign.is_some());
            e.usage.add(x, detected);
        });
    }

    /// The account's traffic through this gateway (`None` before its first exchange).
    pub fn usage(&self, account: &str) -> Option<Usage> {
        self.accounts.get(account).and_then(|e| e.usage.usage())
    }

    /// The traffic of `accounts`, summed (a campaign's is its members').
    pub fn usage_sum<'a>(&self, accounts: impl IntoIterator<Item = &'a str>) -> Usage {
        let mut total = Usage::default();
        for a in accounts {
            if let Some(u) = self.usage(a) {
                total.merge(&u);
            }
        }
        total
    }

    /// Exchanges counted over every account.
    pub fn exchanges(&self) -> u64 {
        self.accounts.iter().map(|e| e.usage.exchanges()).sum()
    }

    /// Changes the account's entry, making it when new (the key is allocated only then).
    fn update(&self, account: &str, f: impl FnOnce(&mut AccountEntry)) {
        if let Some(mut e) = self.accounts.get_mut(account) {
            f(&mut e);
            return;
        }
        f(&mut self.accounts.entry(account.into()).or_default());
    }
}

enum Msg {
    Observe(Box<Features>),
    Account(Box<Account>),
    Snapshot(mpsc::Sender<Vec<Detection>>),
}

/// The handle the gateway holds: its own engine thread, or (scale-out) the standings the
/// consolidator publishes, which a watcher task copies into [`Published`].
#[derive(Debug)]
pub struct LiveEngine {
    /// `None` when the standings come from the consolidator.
    tx: Option<SyncSender<Msg>>,
    published: Arc<Published>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Msg::Observe(_) => "Observe",
            Msg::Account(_) => "Account",
            Msg::Snapshot(_) => "Snapshot",
        })
    }
}

impl LiveEngine {
    /// Starts the engine thread with a queue of `capacity` requests.
    pub fn start(cfg: EngineConfig, capacity: usize) -> std::io::Result<LiveEngine> {
        let (tx, rx) = mpsc::sync_channel(capacity.max(1));
        let published = Arc::new(Published::default());
        published.alive.store(true, Ordering::SeqCst);
        let shared = Arc::clone(&published);
        let thread = std::thread::Builder::new()
            .name("moat-engine".into())
            .spawn(move || run(cfg, rx, shared))?;
        Ok(LiveEngine {
            tx: Some(tx),
            published,
            thread: Some(thread),
        })
    }

    /// No engine of its own: the standings arrive through [`LiveEngine::apply`] (the watcher
    /// of the consolidator's bucket). Not alive until the bucket's current values are in.
    pub fn remote() -> LiveEngine {
        LiveEngine {
            tx: None,
            published: Arc::new(Published::default()),
            thread: None,
        }
    }

    /// Whether the standings come from the consolidator.
    pub fn is_remote(&self) -> bool {
        self.tx.is_none()
    }

    /// Applies one change of the consolidator's standings.
    pub fn apply(&self, update: moat_bus::StandingUpdate) {
        apply(&self.published, update);
    }

    /// What the engine has published.
    pub fn published(&self) -> &Arc<Published> {
        &self.published
    }

    /// Hands one request's features to the engine without waiting; false (and counted) when
    /// the queue is full or the engine has stopped.
    pub fn observe(&self, f: Features) -> bool {
        let Some(tx) = &self.tx else {
            return true; // the workers and the consolidator see it through the stream
        };
        match tx.try_send(Msg::Observe(Box::new(f))) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.published.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// Hands features to the engine, waiting for room: for replaying the store at start,
    /// off the request path. False when the engine has stopped.
    pub fn observe_wait(&self, f: Features) -> bool {
        self.tx
            .as_ref()
            .is_some_and(|tx| tx.send(Msg::Observe(Box::new(f))).is_ok())
    }

    /// Registers an account's side facts (sign-up time, payment fingerprint…), waiting for
    /// room: used at start, off the request path.
    pub fn add_account(&self, account: Account) -> bool {
        match &self.tx {
            Some(tx) => tx.send(Msg::Account(Box::new(account))).is_ok(),
            None => true, // the consolidator reads the accounts file
        }
    }

    /// The detections so far (every account line and campaign), computed on the engine
    /// thread after the requests already queued.
    pub fn snapshot(&self) -> Option<Vec<Detection>> {
        let Some(engine) = &self.tx else {
            return Some(remote_snapshot(&self.published));
        };
        let (tx, rx) = mpsc::channel();
        engine.send(Msg::Snapshot(tx)).ok()?;
        rx.recv().ok()
    }

    /// Whether the engine thread runs.
    pub fn alive(&self) -> bool {
        self.published.alive.load(Ordering::Relaxed)
    }
}

impl Drop for LiveEngine {
    fn drop(&mut self) {
        // Closing the queue ends the thread once it has drained.
        drop(self.tx.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Marks the engine dead however its thread ends.
struct AliveGuard(Arc<Published>);

impl Drop for AliveGuard {
    fn drop(&mut self) {
        self.0.alive.store(false, Ordering::SeqCst);
    }
}

/// How long the busy engine thread sleeps between looks at its queue.
const LINGER: Duration = Duration::from_millis(1);

/// Idle looks after which the thread blocks on the queue again.
const IDLE_LOOKS: u32 = 50;

fn run(cfg: EngineConfig, rx: Receiver<Msg>, published: Arc<Published>) {
    let _guard = AliveGuard(Arc::clone(&published));
    let mut engine = Engine::new(cfg);
    // Idle, the thread blocks on the queue and the first request wakes it. Busy, it sleeps a
    // millisecond at a time and folds everything queued meanwhile: a thread blocked on the
    // queue is woken by every request, a context switch per request on the cores serving
    // them. Standings are then at most about a millisecond behind the requests.
    'idle: while let Ok(msg) = rx.recv() {
        handle(&mut engine, msg, &published);
        let mut idle = 0;
        while idle < IDLE_LOOKS {
            std::thread::sleep(LINGER);
            let mut any = false;
            loop {
                match rx.try_recv() {
                    Ok(msg) => {
                        any = true;
                        handle(&mut engine, msg, &published);
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => break 'idle,
                }
            }
            idle = if any { 0 } else { idle + 1 };
        }
    }
}

fn handle(engine: &mut Engine, msg: Msg, published: &Published) {
    match msg {
        Msg::Observe(f) => {
            let account: Box<str> = f.account_id().into();
            let before = engine.stats().discoveries;
            engine.observe_features(*f);
            published.observed.fetch_add(1, Ordering::Relaxed);
            if engine.stats().discoveries != before {
                published.passes.fetch_add(1, Ordering::Relaxed);
                publish_all(engine, published);
            } else if let Some(s) = engine.account_status(&account) {
                published.set_standing(&account, standing(s));
            }
        }
        Msg::Account(a) => engine.add_account(&a),
        Msg::Snapshot(reply) => {
            let _ = reply.send(engine.detections());
        }
    }
}

/// After a discovery pass every standing and campaign may have changed: publish them all.
fn publish_all(engine: &Engine, published: &Published) {
    for (id, s) in engine.account_statuses() {
        published.set_standing(id, standing(s));
    }
    let campaigns = engine
        .campaign_detections()
        .into_iter()
        .map(|c| (c.campaign_id.clone(), CampaignView::from(c)))
        .collect();
    published.campaigns.store(Arc::new(campaigns));
}

fn standing(s: AccountStatus) -> Standing {
    Standing {
        risk: s.risk,
        flagged: s.flagged,
        flagged_at: s.flagged_at,
        campaign: s.campaign.map(Arc::from),
        reasons: s.reasons,
    }
}

/// What the consolidator's standings say, as detections (account lines sorted by id, then the
/// campaigns by id), like an engine's.
fn remote_snapshot(published: &Published) -> Vec<Detection> {
    let mut lines: Vec<moat_types::AccountDetection> = published
        .accounts
        .iter()
        .filter_map(|e| {
            let s = e.value().standing.as_ref()?;
            Some(moat_types::AccountDetection {
                account_id: e.key().to_string(),
                risk: s.risk,
                flagged: s.flagged,
                flagged_at: s.flagged_at,
                campaign_id: s.campaign.as_deref().map(str::to_owned),
                reasons: s.reasons.names(),
            })
        })
        .collect();
    lines.sort_by(|a, b| a.account_id.cmp(&b.account_id));
    let campaigns = published.campaigns.load();
    let mut ids: Vec<&String> = campaigns.keys().collect();
    ids.sort();
    let mut out: Vec<Detection> = lines.into_iter().map(Detection::Account).collect();
    for id in ids {
        if let Some(c) = campaigns.get(id) {
            out.push(Detection::Campaign(moat_types::CampaignDetection {
                campaign_id: c.campaign_id.clone(),
                accounts: c.accounts.clone(),
                score: c.score,
                first_detected_at: c.first_detected_at,
                signals: c.signals.clone(),
            }));
        }
    }
    out
}

/// Reasons from their stable names (unknown names, from a newer consolidator, are skipped).
fn reasons_of(names: &[String]) -> Reasons {
    let mut r = Reasons::default();
    for n in names {
        if let Some(reason) = moat_detect::Reason::ALL.iter().find(|x| x.as_str() == n) {
            r.insert(*reason);
        }
    }
    r
}

fn apply(published: &Published, update: moat_bus::StandingUpdate) {
    use moat_bus::StandingUpdate as U;
    match update {
        U::Account(d) => {
            let standing = Standing {
                risk: d.risk,
                flagged: d.flagged,
                flagged_at: d.flagged_at,
                campaign: d.campaign_id.map(Arc::from),
                reasons: reasons_of(&d.reasons),
            };
            published.set_standing(&d.account_id, standing);
        }
        U::Campaign(c) => {
            let view = CampaignView::from(c);
            published.campaigns.rcu(|old| {
                let mut map = HashMap::clone(old);
                map.insert(view.campaign_id.clone(), view.clone());
                map
            });
        }
        U::CampaignGone(id) => {
            published.campaigns.rcu(|old| {
                let mut map = HashMap::clone(old);
                map.remove(&id);
                map
            });
        }
        U::Meta(m) => {
            published.observed.store(m.observed, Ordering::Relaxed);
            published.passes.store(m.passes, Ordering::Relaxed);
        }
        U::Current => published.alive.store(true, Ordering::SeqCst),
    }
}

/// Marks the standings stale (the watcher stopped).
pub(crate) fn remote_lost(published: &Published) {
    published.alive.store(false, Ordering::SeqCst);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The map holds an entry per account ever seen: its size is memory at 100k accounts
    /// (the standing's 48 bytes and the packed counters' 48).
    #[test]
    fn an_account_entry_stays_small() {
        assert_eq!(std::mem::size_of::<Option<Standing>>(), 48);
        assert_eq!(std::mem::size_of::<AccountEntry>(), 96);
    }

    fn standing(risk: f64, flagged: bool) -> Standing {
        Standing {
            risk,
            flagged,
            flagged_at: None,
            campaign: None,
            reasons: Reasons::default(),
        }
    }

    fn answered(account: &str, ts_ms: i64) -> Exchange {
        let line = format!(
            r#"{{"v":1,"ts":"{}","account_id":"{account}","request":{{"messages":[]}},"response":{{"status":200,"reasoning_tokens":7}}}}"#,
            Timestamp::from_millis(ts_ms)
        );
        serde_json::from_str(&line).unwrap()
    }

    #[test]
    fn standings_and_traffic_share_the_entry() {
        let p = Published::default();
        // The first answer may come before the engine's first standing.
        p.count_answer(&answered("a", 1_000));
        assert_eq!(p.standing("a"), None);
        assert!(
            remote_snapshot(&p).is_empty(),
            "no account line without a standing"
        );
        p.set_standing("a", standing(0.9, true));
        p.count_answer(&answered("a", 2_000));
        // A new standing keeps the counters.
        p.set_standing("a", standing(0.95, true));
        assert_eq!(p.standing("a").map(|s| s.risk), Some(0.95));
        let u = p.usage("a").unwrap();
        assert_eq!(
            (u.exchanges, u.after_detection, u.reasoning_after_detection),
            (2, 1, 7)
        );
        p.set_standing("b", standing(0.1, false));
        assert_eq!(p.usage("b"), None);
        p.count_answer(&answered("b", 500));
        let sum = p.usage_sum(["a", "b", "missing"]);
        assert_eq!(
            (sum.exchanges, sum.first_ms, sum.last_ms),
            (3, Some(500), Some(2_000))
        );
        assert_eq!(p.exchanges(), 3);
        assert_eq!(remote_snapshot(&p).len(), 2);
    }
}

//! The dispatcher: takes alerts from the request path without ever making it wait, and posts
//! them to the webhooks in the background.
//!
//! ```text
//! AlertSender::send ──try_send──► bounded queue ──► router task ──► per webhook: event filter,
//!   (sync, never waits;               (full: dropped     │          dedup window, pending batch
//!    full: dropped, counted)           and counted)      ▼          (full: dropped, counted)
//!                                              one task per webhook: rate limit, render,
//!                                              POST with timeout, retry with backoff
//! ```
//!
//! A webhook gets at most one POST per `min_interval`; alerts arriving meanwhile wait in its
//! pending batch (at most `max_batch`) and go together in the next POST. A POST answered 5xx or
//! 429, timed out or refused a connection is retried after an exponential backoff with jitter
//! (a `Retry-After` in seconds takes the backoff's place, capped at `backoff_max`), up to
//! `max_attempts` POSTs; any other answer outside 2xx gives the batch up at once. Given-up
//! alerts leave the deduplication window, so the same alert sent again is tried again.
//!
//! Everything is counted in [`Stats`] (atomics, readable at any time) with a ring of the last
//! [`RECENT_DELIVERIES`] deliveries for the dashboard. Errors there are short phrases
//! (`HTTP 500`, `timed out after 5000 ms`, `connection refused`) and never hold a URL.
//!
//! Time is tokio's: the tests run on its paused clock, so hours of deduplication window and
//! minutes of backoff take no real time. Not the HTTP client ([`crate::client`]) and not the
//! body format ([`crate::alert`]).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg32;
use serde::Serialize;
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::alert::{render_json, render_slack, Alert};
use crate::client::{PostOutcome, Transport};
use crate::config::{Settings, Webhook, WebhookFormat};
use crate::AlertsError;

/// How many delivery records [`Stats::recent`] keeps.
pub const RECENT_DELIVERIES: usize = 100;
/// The most alert keys one webhook remembers for deduplication; past it the oldest are
/// forgotten early.
const DEDUP_CAPACITY: usize = 10_000;

/// Starts the alert dispatcher.
#[derive(Debug)]
pub struct Dispatcher;

impl Dispatcher {
    /// Starts the router and one task per webhook on the current tokio runtime, posting
    /// through `transport` (usually [`crate::WebhookClient`]). Give the [`AlertSender`] to
    /// whoever raises alerts; keep the [`DispatcherHandle`] to read statistics and shut down.
    ///
    /// The tasks end by themselves once every sender is dropped and the last batches are
    /// delivered or given up; dropping the handle does not stop them.
    pub fn start<T: Transport>(
        settings: Settings,
        transport: T,
    ) -> Result<(AlertSender, DispatcherHandle), AlertsError> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|e| AlertsError::NoRuntime(e.to_string()))?;
        let stats = Arc::new(Stats::new(&settings.webhooks));
        let (tx, rx) = mpsc::channel(settings.queue.max(1));
        let stop = Arc::new(Notify::new());
        let transport = Arc::new(transport);
        let seed = unix_ms() ^ u64::from(std::process::id()).rotate_left(32);
        let lanes: Vec<Arc<Lane>> = settings
            .webhooks
            .into_iter()
            .map(|hook| {
                Arc::new(Lane {
                    state: Mutex::new(LaneState {
                        pending: VecDeque::new(),
                        dedup: Dedup::new(settings.dedup_window, DEDUP_CAPACITY),
                        draining: false,
                    }),
                    hook,
                    wake: Notify::new(),
                    in_flight: AtomicUsize::new(0),
                })
            })
            .collect();
        let mut tasks = Vec::with_capacity(lanes.len() + 1);
        tasks.push(runtime.spawn(route(
            rx,
            lanes.clone(),
            Arc::clone(&stats),
            Arc::clone(&stop),
        )));
        for (index, lane) in lanes.iter().enumerate() {
            let worker = Worker {
                lane: Arc::clone(lane),
                index,
                stats: Arc::clone(&stats),
                transport: Arc::clone(&transport),
                rng: Pcg32::seed_from_u64(seed.wrapping_add(index as u64)),
                next_allowed: None,
            };
            tasks.push(runtime.spawn(worker.run()));
        }
        let sender = AlertSender {
            tx,
            stats: Arc::clone(&stats),
        };
        let handle = DispatcherHandle {
            tasks,
            lanes,
            stats,
            stop,
        };
        Ok((sender, handle))
    }
}

/// Hands alerts to the dispatcher. Cheap to clone; [`AlertSender::send`] never waits.
#[derive(Debug, Clone)]
pub struct AlertSender {
    tx: mpsc::Sender<Alert>,
    stats: Arc<Stats>,
}

impl AlertSender {
    /// Queues `alert` and returns at once: `true` when queued, `false` when the queue was full
    /// or the dispatcher has stopped (the alert is dropped and counted in
    /// [`StatsSnapshot::queue_dropped`]).
    pub fn send(&self, alert: Alert) -> bool {
        match self.tx.try_send(alert) {
            Ok(()) => {
                self.stats.queued.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(_) => {
                self.stats.queue_dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// The dispatcher's statistics.
    pub fn stats(&self) -> Arc<Stats> {
        Arc::clone(&self.stats)
    }
}

/// What [`DispatcherHandle::shutdown`] managed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ShutdownReport {
    /// Whether every queued alert was delivered or given up before the deadline.
    pub drained: bool,
    /// Alerts still waiting or in flight at the deadline, abandoned (also counted as
    /// `dropped` of their webhook).
    pub abandoned: u64,
}

/// The running dispatcher: its statistics, and the way to stop it.
#[derive(Debug)]
pub struct DispatcherHandle {
    /// The router first, then one task per webhook.
    tasks: Vec<JoinHandle<()>>,
    lanes: Vec<Arc<Lane>>,
    stats: Arc<Stats>,
    stop: Arc<Notify>,
}

impl DispatcherHandle {
    /// The dispatcher's statistics.
    pub fn stats(&self) -> Arc<Stats> {
        Arc::clone(&self.stats)
    }

    /// Stops taking alerts (later sends are dropped and counted), then delivers what is queued
    /// and pending, retries included, for at most `deadline`. What is left then is abandoned
    /// and counted.
    pub async fn shutdown(self, deadline: Duration) -> ShutdownReport {
        self.stop.notify_one();
        let until = Instant::now() + deadline;
        let mut tasks = self.tasks;
        let mut drained = true;
        while let Some(task) = tasks.first_mut() {
            if tokio::time::timeout_at(until, task).await.is_err() {
                drained = false;
                break;
            }
            tasks.remove(0);
        }
        let mut abandoned = 0;
        if !drained {
            for task in &tasks {
                task.abort();
            }
            for task in tasks {
                // Cancelled, or finished meanwhile: either way it no longer runs.
                let _ = task.await;
            }
            for (index, lane) in self.lanes.iter().enumerate() {
                let left = {
                    let mut state = lock(&lane.state);
                    let n = state.pending.len();
                    state.pending.clear();
                    n + lane.in_flight.swap(0, Ordering::Relaxed)
                };
                if left == 0 {
                    continue;
                }
                let left = left as u64;
                abandoned += left;
                let w = &self.stats.webhooks[index];
                w.dropped.fetch_add(left, Ordering::Relaxed);
                self.stats.record(DeliveryRecord {
                    webhook: lane.hook.name.clone(),
                    at_ms: unix_ms(),
                    alerts: left,
                    outcome: Outcome::Abandoned,
                    attempts: 0,
                    error: Some("shutdown deadline passed".to_owned()),
                });
                warn!(webhook = %lane.hook.name, alerts = left, "alerts abandoned at shutdown");
            }
        }
        ShutdownReport { drained, abandoned }
    }
}

/// The dispatcher's counters, per webhook, and its recent deliveries. Every counter is an
/// atomic; [`Stats::snapshot`] reads them all at any time.
#[derive(Debug)]
pub struct Stats {
    queued: AtomicU64,
    queue_dropped: AtomicU64,
    webhooks: Vec<WebhookStats>,
    recent: Mutex<VecDeque<DeliveryRecord>>,
}

/// One webhook's counters.
#[derive(Debug)]
struct WebhookStats {
    name: String,
    sent: AtomicU64,
    retried: AtomicU64,
    delivered: AtomicU64,
    failed: AtomicU64,
    deduplicated: AtomicU64,
    dropped: AtomicU64,
    /// Unix milliseconds; 0 for never.
    last_success_at_ms: AtomicU64,
    /// Unix milliseconds; 0 for never.
    last_error_at_ms: AtomicU64,
    last_error: Mutex<Option<String>>,
}

/// A copy of [`Stats`] at one moment, for the dashboard and the metrics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatsSnapshot {
    /// Alerts accepted into the dispatcher's queue.
    pub queued: u64,
    /// Alerts refused because the queue was full or the dispatcher had stopped.
    pub queue_dropped: u64,
    /// Per webhook, in configuration order.
    pub webhooks: Vec<WebhookSnapshot>,
    /// The last deliveries, oldest first.
    pub recent: Vec<DeliveryRecord>,
}

/// One webhook's counters at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WebhookSnapshot {
    /// The webhook's name.
    pub name: String,
    /// POST requests made, retries included.
    pub sent: u64,
    /// POST requests that were retries.
    pub retried: u64,
    /// Alerts in POSTs answered 2xx.
    pub delivered: u64,
    /// Alerts given up: a 4xx answer other than 429, or every attempt failed.
    pub failed: u64,
    /// Alerts not sent because the same key was sent within the deduplication window.
    pub deduplicated: u64,
    /// Alerts dropped because the pending batch was full, or abandoned at shutdown.
    pub dropped: u64,
    /// When a POST was last answered 2xx (Unix milliseconds), if ever.
    pub last_success_at_ms: Option<u64>,
    /// When a POST last failed (Unix milliseconds), if ever.
    pub last_error_at_ms: Option<u64>,
    /// How the last failed POST failed (`HTTP 500`, `timed out after 5000 ms`,
    /// `connection refused`); never holds the URL.
    pub last_error: Option<String>,
}

/// How a delivery ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Answered 2xx.
    Delivered,
    /// Given up.
    Failed,
    /// Left when shutdown's deadline passed.
    Abandoned,
}

/// One delivery (a batch posted to one webhook, retries included), for the dashboard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryRecord {
    /// The webhook's name.
    pub webhook: String,
    /// When it ended (Unix milliseconds).
    pub at_ms: u64,
    /// Alerts in the batch.
    pub alerts: u64,
    /// How it ended.
    pub outcome: Outcome,
    /// POSTs made.
    pub attempts: u32,
    /// The last failure, if any attempt failed (never holds the URL).
    pub error: Option<String>,
}

impl Stats {
    fn new(webhooks: &[Webhook]) -> Stats {
        Stats {
            queued: AtomicU64::new(0),
            queue_dropped: AtomicU64::new(0),
            webhooks: webhooks
                .iter()
                .map(|w| WebhookStats {
                    name: w.name.clone(),
                    sent: AtomicU64::new(0),
                    retried: AtomicU64::new(0),
                    delivered: AtomicU64::new(0),
                    failed: AtomicU64::new(0),
                    deduplicated: AtomicU64::new(0),
                    dropped: AtomicU64::new(0),
                    last_success_at_ms: AtomicU64::new(0),
                    last_error_at_ms: AtomicU64::new(0),
                    last_error: Mutex::new(None),
                })
                .collect(),
            recent: Mutex::new(VecDeque::with_capacity(RECENT_DELIVERIES)),
        }
    }

    /// Every counter now, with the recent deliveries.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            queued: self.queued.load(Ordering::Relaxed),
            queue_dropped: self.queue_dropped.load(Ordering::Relaxed),
            webhooks: self.webhooks.iter().map(WebhookStats::snapshot).collect(),
            recent: self.recent(),
        }
    }

    /// One webhook's counters now, by name.
    pub fn webhook(&self, name: &str) -> Option<WebhookSnapshot> {
        self.webhooks
            .iter()
            .find(|w| w.name == name)
            .map(WebhookStats::snapshot)
    }

    /// Alerts refused because the queue was full or the dispatcher had stopped.
    pub fn queue_dropped(&self) -> u64 {
        self.queue_dropped.load(Ordering::Relaxed)
    }

    /// The last [`RECENT_DELIVERIES`] deliveries, oldest first.
    pub fn recent(&self) -> Vec<DeliveryRecord> {
        lock(&self.recent).iter().cloned().collect()
    }

    fn record(&self, record: DeliveryRecord) {
        let mut recent = lock(&self.recent);
        if recent.len() == RECENT_DELIVERIES {
            recent.pop_front();
        }
        recent.push_back(record);
    }
}

impl WebhookStats {
    fn snapshot(&self) -> WebhookSnapshot {
        let at = |a: &AtomicU64| Some(a.load(Ordering::Relaxed)).filter(|&ms| ms != 0);
        WebhookSnapshot {
            name: self.name.clone(),
            sent: self.sent.load(Ordering::Relaxed),
            retried: self.retried.load(Ordering::Relaxed),
            delivered: self.delivered.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            deduplicated: self.deduplicated.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            last_success_at_ms: at(&self.last_success_at_ms),
            last_error_at_ms: at(&self.last_error_at_ms),
            last_error: lock(&self.last_error).clone(),
        }
    }

    fn set_error(&self, error: &str) {
        *lock(&self.last_error) = Some(error.to_owned());
        self.last_error_at_ms.store(unix_ms(), Ordering::Relaxed);
    }
}

/// One webhook's side of the dispatcher, shared by the router, its worker and the handle.
#[derive(Debug)]
struct Lane {
    hook: Webhook,
    state: Mutex<LaneState>,
    /// Signals the worker: alerts pending, or draining.
    wake: Notify,
    /// Alerts of the batch being delivered (for counting at an abandoned shutdown).
    in_flight: AtomicUsize,
}

#[derive(Debug)]
struct LaneState {
    /// Alerts waiting for the next POST, each with its deduplication key.
    pending: VecDeque<(String, Alert)>,
    dedup: Dedup,
    /// Set once no more alerts will come: the worker ends when `pending` is empty.
    draining: bool,
}

/// The router: moves alerts from the queue to each interested webhook's pending batch, until
/// every sender is gone or shutdown is asked for; then lets the workers drain.
async fn route(
    mut rx: mpsc::Receiver<Alert>,
    lanes: Vec<Arc<Lane>>,
    stats: Arc<Stats>,
    stop: Arc<Notify>,
) {
    loop {
        tokio::select! {
            biased;
            alert = rx.recv() => match alert {
                Some(alert) => distribute(alert, &lanes, &stats),
                None => break,
            },
            () = stop.notified() => {
                // Refuse new alerts, then take what was queued before.
                rx.close();
                while let Some(alert) = rx.recv().await {
                    distribute(alert, &lanes, &stats);
                }
                break;
            }
        }
    }
    for lane in &lanes {
        lock(&lane.state).draining = true;
        lane.wake.notify_one();
    }
}

/// Puts `alert` in the pending batch of every webhook that wants it and has not sent its key
/// within the deduplication window.
fn distribute(alert: Alert, lanes: &[Arc<Lane>], stats: &Stats) {
    let now = Instant::now();
    let mut key: Option<String> = None;
    for (index, lane) in lanes.iter().enumerate() {
        if !lane.hook.wants(alert.kind) {
            continue;
        }
        let key = key.get_or_insert_with(|| alert.dedup_key());
        let counters = &stats.webhooks[index];
        {
            let mut state = lock(&lane.state);
            if !state.dedup.admit(key, now) {
                counters.deduplicated.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if state.pending.len() >= lane.hook.max_batch {
                // Not sent, so not a reason to suppress the same alert later.
                state.dedup.forget(key);
                counters.dropped.fetch_add(1, Ordering::Relaxed);
                debug!(webhook = %lane.hook.name, "alert dropped: pending batch full");
                continue;
            }
            state.pending.push_back((key.clone(), alert.clone()));
        }
        lane.wake.notify_one();
    }
}

/// One webhook's delivery task.
struct Worker<T> {
    lane: Arc<Lane>,
    index: usize,
    stats: Arc<Stats>,
    transport: Arc<T>,
    rng: Pcg32,
    /// The earliest time of the next POST (the rate limit).
    next_allowed: Option<Instant>,
}

/// Whether and when a failed attempt may be retried.
enum Retry {
    /// Not retryable (a 4xx other than 429).
    No,
    /// Retryable after the backoff.
    Backoff,
    /// Retryable after the server's `Retry-After` (capped at `backoff_max`).
    After(Duration),
}

impl<T: Transport> Worker<T> {
    async fn run(mut self) {
        loop {
            loop {
                let (has_work, draining) = {
                    let state = lock(&self.lane.state);
                    (!state.pending.is_empty(), state.draining)
                };
                if has_work {
                    break;
                }
                if draining {
                    return;
                }
                self.lane.wake.notified().await;
            }
            // Alerts that arrive while the rate limit holds join this batch.
            if let Some(at) = self.next_allowed {
                tokio::time::sleep_until(at).await;
            }
            let batch: Vec<(String, Alert)> = {
                let mut state = lock(&self.lane.state);
                let n = state.pending.len().min(self.lane.hook.max_batch);
                state.pending.drain(..n).collect()
            };
            if batch.is_empty() {
                continue;
            }
            self.lane.in_flight.store(batch.len(), Ordering::Relaxed);
            self.deliver(batch).await;
            self.lane.in_flight.store(0, Ordering::Relaxed);
        }
    }

    /// POSTs one batch, retrying as configured, and counts the outcome.
    async fn deliver(&mut self, batch: Vec<(String, Alert)>) {
        let hook = &self.lane.hook;
        let counters = &self.stats.webhooks[self.index];
        let n = batch.len() as u64;
        let alerts: Vec<Alert> = batch.iter().map(|(_, a)| a.clone()).collect();
        let body = match hook.format {
            WebhookFormat::Json => render_json(&alerts),
            WebhookFormat::Slack => render_slack(&alerts),
        };
        let body = match body {
            Ok(body) => body,
            Err(e) => {
                self.give_up(&batch, 0, &e.to_string());
                return;
            }
        };
        let mut attempts: u32 = 0;
        let mut last_error: Option<String> = None;
        loop {
            attempts += 1;
            self.next_allowed = Some(Instant::now() + hook.min_interval);
            counters.sent.fetch_add(1, Ordering::Relaxed);
            if attempts > 1 {
                counters.retried.fetch_add(1, Ordering::Relaxed);
            }
            let (error, retry) = match self
                .transport
                .post(&hook.url, body.clone(), hook.timeout)
                .await
            {
                PostOutcome::Answered { status, .. } if (200..300).contains(&status) => {
                    counters.delivered.fetch_add(n, Ordering::Relaxed);
                    counters
                        .last_success_at_ms
                        .store(unix_ms(), Ordering::Relaxed);
                    self.stats.record(DeliveryRecord {
                        webhook: hook.name.clone(),
                        at_ms: unix_ms(),
                        alerts: n,
                        outcome: Outcome::Delivered,
                        attempts,
                        error: last_error,
                    });
                    debug!(webhook = %hook.name, alerts = n, attempts, "alerts delivered");
                    return;
                }
                PostOutcome::Answered {
                    status,
                    retry_after,
                    detail,
                } => {
                    let error = match detail {
                        Some(d) => format!("HTTP {status} ({d})"),
                        None => format!("HTTP {status}"),
                    };
                    let retry = if status == 429 || status >= 500 {
                        retry_after.map_or(Retry::Backoff, Retry::After)
                    } else {
                        Retry::No
                    };
                    (error, retry)
                }
                PostOutcome::TimedOut => (
                    format!("timed out after {} ms", hook.timeout.as_millis()),
                    Retry::Backoff,
                ),
                PostOutcome::Failed(reason) => (reason, Retry::Backoff),
            };
            counters.set_error(&error);
            let wait = match retry {
                _ if attempts >= hook.max_attempts => None,
                Retry::No => None,
                Retry::Backoff => Some(backoff(
                    hook.backoff_initial,
                    hook.backoff_max,
                    attempts,
                    &mut self.rng,
                )),
                Retry::After(d) => Some(d.min(hook.backoff_max)),
            };
            let Some(wait) = wait else {
                self.give_up(&batch, attempts, &error);
                return;
            };
            debug!(webhook = %hook.name, error = %error, attempts, wait_ms = wait.as_millis() as u64, "retrying webhook");
            last_error = Some(error);
            let mut at = Instant::now() + wait;
            if let Some(allowed) = self.next_allowed {
                at = at.max(allowed);
            }
            tokio::time::sleep_until(at).await;
        }
    }

    /// Counts a batch as failed, and takes its keys out of the deduplication window so the
    /// same alerts sent again are tried again.
    fn give_up(&self, batch: &[(String, Alert)], attempts: u32, error: &str) {
        let hook = &self.lane.hook;
        let n = batch.len() as u64;
        {
            let mut state = lock(&self.lane.state);
            for (key, _) in batch {
                state.dedup.forget(key);
            }
        }
        self.stats.webhooks[self.index]
            .failed
            .fetch_add(n, Ordering::Relaxed);
        self.stats.record(DeliveryRecord {
            webhook: hook.name.clone(),
            at_ms: unix_ms(),
            alerts: n,
            outcome: Outcome::Failed,
            attempts,
            error: Some(error.to_owned()),
        });
        warn!(webhook = %hook.name, alerts = n, attempts, error = %error, "webhook delivery failed");
    }
}

/// The wait after the `attempt`-th failed POST: `initial` doubled per earlier retry, capped at
/// `max`, with equal jitter (half fixed, half random) so webhooks failing together do not
/// retry together.
fn backoff(initial: Duration, max: Duration, attempt: u32, rng: &mut impl Rng) -> Duration {
    let exp = attempt.saturating_sub(1).min(31);
    let base = initial.checked_mul(1u32 << exp).unwrap_or(max).min(max);
    let base_ms = u64::try_from(base.as_millis()).unwrap_or(u64::MAX);
    let half = base_ms / 2;
    Duration::from_millis(base_ms - half + rng.gen_range(0..=half))
}

/// Which alert keys a webhook sent within the window, and when. Time is an input.
#[derive(Debug)]
struct Dedup {
    window: Duration,
    capacity: usize,
    seen: HashMap<String, Instant>,
    /// Keys in the order they were admitted, for expiry (the window is the same for all).
    order: VecDeque<(Instant, String)>,
}

impl Dedup {
    fn new(window: Duration, capacity: usize) -> Dedup {
        Dedup {
            window,
            capacity,
            seen: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// Whether an alert with `key` may be sent at `now`; if so, it is remembered.
    fn admit(&mut self, key: &str, now: Instant) -> bool {
        if self.window.is_zero() {
            return true;
        }
        self.expire(now);
        if self.seen.contains_key(key) {
            return false;
        }
        self.seen.insert(key.to_owned(), now);
        self.order.push_back((now, key.to_owned()));
        if self.order.len() > 2 * self.capacity {
            // Forgotten keys leave stale entries behind; drop them before they pile up.
            let seen = &self.seen;
            self.order.retain(|(at, k)| seen.get(k) == Some(at));
        }
        while self.seen.len() > self.capacity {
            let Some((at, old)) = self.order.pop_front() else {
                break;
            };
            if self.seen.get(&old) == Some(&at) {
                self.seen.remove(&old);
            }
        }
        true
    }

    /// Forgets `key`, so the next alert with it is sent.
    fn forget(&mut self, key: &str) {
        self.seen.remove(key);
    }

    fn expire(&mut self, now: Instant) {
        while let Some((at, _)) = self.order.front() {
            if now.saturating_duration_since(*at) < self.window {
                break;
            }
            if let Some((at, key)) = self.order.pop_front() {
                if self.seen.get(&key) == Some(&at) {
                    self.seen.remove(&key);
                }
            }
        }
    }
}

/// Locks `m`, going on with the data if a holder panicked (counters and queues stay usable).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Wall-clock time in Unix milliseconds, for statistics only.
fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use std::path::Path;

    use bytes::Bytes;
    use serde_json::Value;

    use super::*;
    use crate::alert::{AlertKind, AppliedAction};
    use crate::config::{AlertsConfig, WebhookUrl};

    /// A transport that answers from a script (200 once it runs out) after a scripted delay,
    /// on tokio's clock, and remembers every body with its time.
    #[derive(Clone, Default)]
    struct Fake {
        script: Arc<Mutex<VecDeque<(Duration, PostOutcome)>>>,
        posts: Arc<Mutex<Vec<(Instant, Value)>>>,
    }

    impl Fake {
        fn answering(script: Vec<(Duration, PostOutcome)>) -> Fake {
            let fake = Fake::default();
            *fake.script.lock().unwrap() = script.into();
            fake
        }

        fn posts(&self) -> Vec<(Instant, Value)> {
            self.posts.lock().unwrap().clone()
        }

        /// The number of alerts in each POST.
        fn sizes(&self) -> Vec<usize> {
            self.posts()
                .iter()
                .map(|(_, body)| match body.get("alerts") {
                    Some(a) => a.as_array().unwrap().len(),
                    None => body["blocks"].as_array().unwrap().len(),
                })
                .collect()
        }
    }

    impl Transport for Fake {
        async fn post(&self, _url: &WebhookUrl, body: Bytes, timeout: Duration) -> PostOutcome {
            let value = serde_json::from_slice(&body).unwrap();
            self.posts.lock().unwrap().push((Instant::now(), value));
            let next = self.script.lock().unwrap().pop_front();
            match next {
                None => ok(),
                Some((delay, _)) if delay >= timeout => {
                    tokio::time::sleep(timeout).await;
                    PostOutcome::TimedOut
                }
                Some((delay, outcome)) => {
                    tokio::time::sleep(delay).await;
                    outcome
                }
            }
        }
    }

    fn ok() -> PostOutcome {
        status(200)
    }

    fn status(code: u16) -> PostOutcome {
        PostOutcome::Answered {
            status: code,
            retry_after: None,
            detail: None,
        }
    }

    fn now(outcome: PostOutcome) -> (Duration, PostOutcome) {
        (Duration::ZERO, outcome)
    }

    /// Settings with `[alerts]` keys `section` and one webhook `w` with keys `webhook`.
    fn settings(section: &str, webhook: &str) -> Settings {
        let doc = format!(
            "[alerts]\n{section}\n[[alerts.webhook]]\nname = \"w\"\nformat = \"json\"\n\
             url_env = \"U\"\n{webhook}\n"
        );
        AlertsConfig::from_toml(&doc)
            .unwrap()
            .validate(Path::new("."), |_| {
                Some("http://127.0.0.1:9/hook/secret".into())
            })
            .unwrap()
    }

    fn alert(id: &str) -> Alert {
        Alert::campaign_discovered("2025-06-01T12:00:00Z", id, 150, format!("{id} found."))
    }

    /// Lets the router and workers run, and `d` of tokio's (paused) time pass.
    async fn pass(d: Duration) {
        tokio::time::sleep(d).await;
    }

    async fn settle() {
        pass(Duration::from_millis(1)).await;
    }

    fn stats_of(handle: &DispatcherHandle) -> WebhookSnapshot {
        handle.stats().webhook("w").unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn the_same_alert_is_sent_once_within_the_window_and_again_after_it() {
        let fake = Fake::default();
        let (tx, handle) = Dispatcher::start(
            settings("dedup_window_s = 3600", "min_interval_ms = 0"),
            fake.clone(),
        )
        .unwrap();
        assert!(tx.send(alert("c-1")));
        settle().await;
        assert!(tx.send(alert("c-1")));
        assert!(tx.send(alert("c-2")));
        settle().await;
        assert_eq!(fake.sizes().iter().sum::<usize>(), 2);
        pass(Duration::from_secs(3598)).await;
        assert!(tx.send(alert("c-1")));
        settle().await;
        assert_eq!(stats_of(&handle).deduplicated, 2);
        pass(Duration::from_secs(2)).await;
        assert!(tx.send(alert("c-1")));
        settle().await;
        let s = stats_of(&handle);
        assert_eq!((s.delivered, s.deduplicated), (3, 2));
    }

    #[tokio::test(start_paused = true)]
    async fn no_window_means_no_deduplication() {
        let fake = Fake::default();
        let (tx, handle) = Dispatcher::start(
            settings("dedup_window_s = 0", "min_interval_ms = 0"),
            fake.clone(),
        )
        .unwrap();
        for _ in 0..3 {
            tx.send(alert("c-1"));
            settle().await;
        }
        assert_eq!(stats_of(&handle).delivered, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_waits_for_the_interval_and_goes_in_one_post() {
        let fake = Fake::default();
        let (tx, handle) =
            Dispatcher::start(settings("", "min_interval_ms = 1000"), fake.clone()).unwrap();
        tx.send(alert("c-0"));
        settle().await;
        for i in 1..10 {
            tx.send(alert(&format!("c-{i}")));
        }
        settle().await;
        assert_eq!(fake.sizes(), vec![1]);
        pass(Duration::from_secs(1)).await;
        assert_eq!(fake.sizes(), vec![1, 9]);
        let posts = fake.posts();
        assert!(posts[1].0 - posts[0].0 >= Duration::from_secs(1));
        assert_eq!(stats_of(&handle).delivered, 10);
    }

    #[tokio::test(start_paused = true)]
    async fn a_steady_trickle_is_posted_at_most_once_per_interval_and_nothing_is_lost() {
        let fake = Fake::default();
        let (tx, handle) =
            Dispatcher::start(settings("", "min_interval_ms = 1000"), fake.clone()).unwrap();
        for i in 0..50 {
            tx.send(alert(&format!("c-{i}")));
            pass(Duration::from_millis(100)).await;
        }
        pass(Duration::from_secs(2)).await;
        let posts = fake.posts();
        assert!(posts.len() <= 6, "{} posts", posts.len());
        for pair in posts.windows(2) {
            assert!(pair[1].0 - pair[0].0 >= Duration::from_secs(1));
        }
        assert_eq!(fake.sizes().iter().sum::<usize>(), 50);
        assert_eq!(stats_of(&handle).delivered, 50);
    }

    #[tokio::test(start_paused = true)]
    async fn past_the_batch_cap_alerts_are_dropped_and_counted() {
        let fake = Fake::default();
        let (tx, handle) = Dispatcher::start(
            settings("", "min_interval_ms = 10000\nmax_batch = 3"),
            fake.clone(),
        )
        .unwrap();
        tx.send(alert("first"));
        settle().await;
        for i in 0..10 {
            tx.send(alert(&format!("c-{i}")));
        }
        pass(Duration::from_secs(10)).await;
        assert_eq!(fake.sizes(), vec![1, 3]);
        let s = stats_of(&handle);
        assert_eq!((s.delivered, s.dropped), (4, 7));
        // A dropped alert was never sent, so it is not deduplicated later.
        tx.send(alert("c-9"));
        pass(Duration::from_secs(10)).await;
        assert_eq!(stats_of(&handle).delivered, 5);
    }

    #[tokio::test(start_paused = true)]
    async fn a_server_error_is_retried_after_the_backoff_and_delivered() {
        let fake = Fake::answering(vec![now(status(500))]);
        let (tx, handle) = Dispatcher::start(
            settings("", "backoff_initial_ms = 500\nmin_interval_ms = 0"),
            fake.clone(),
        )
        .unwrap();
        tx.send(alert("c-1"));
        pass(Duration::from_secs(2)).await;
        let posts = fake.posts();
        assert_eq!(posts.len(), 2);
        let gap = posts[1].0 - posts[0].0;
        assert!(
            gap >= Duration::from_millis(250) && gap <= Duration::from_millis(500),
            "{gap:?}"
        );
        let s = stats_of(&handle);
        assert_eq!((s.sent, s.retried, s.delivered, s.failed), (2, 1, 1, 0));
        assert_eq!(s.last_error.as_deref(), Some("HTTP 500"));
        assert!(s.last_success_at_ms.is_some());
        let recent = handle.stats().recent();
        assert_eq!(recent.len(), 1);
        assert_eq!(recent[0].outcome, Outcome::Delivered);
        assert_eq!(recent[0].attempts, 2);
        assert_eq!(recent[0].error.as_deref(), Some("HTTP 500"));
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_is_honoured_and_capped_at_the_longest_backoff() {
        let after = |code, secs| PostOutcome::Answered {
            status: code,
            retry_after: Some(Duration::from_secs(secs)),
            detail: None,
        };
        let fake = Fake::answering(vec![now(after(503, 2)), now(after(429, 30))]);
        let (tx, handle) = Dispatcher::start(
            settings("", "backoff_max_ms = 5000\nbackoff_initial_ms = 100"),
            fake.clone(),
        )
        .unwrap();
        tx.send(alert("c-1"));
        pass(Duration::from_secs(20)).await;
        let t: Vec<Instant> = fake.posts().iter().map(|(t, _)| *t).collect();
        assert_eq!(t.len(), 3);
        assert_eq!(t[1] - t[0], Duration::from_secs(2));
        assert_eq!(t[2] - t[1], Duration::from_secs(5));
        let s = stats_of(&handle);
        assert_eq!((s.delivered, s.retried), (1, 2));
        assert_eq!(s.last_error.as_deref(), Some("HTTP 429"));
    }

    #[tokio::test(start_paused = true)]
    async fn after_the_last_attempt_the_batch_is_failed_and_may_be_sent_again() {
        let fake = Fake::answering(vec![
            now(status(500)),
            now(status(502)),
            now(PostOutcome::Failed("connection refused".into())),
        ]);
        let (tx, handle) = Dispatcher::start(
            settings(
                "",
                "max_attempts = 3\nbackoff_initial_ms = 1000\nbackoff_max_ms = 1500\nmin_interval_ms = 0",
            ),
            fake.clone(),
        )
        .unwrap();
        tx.send(alert("c-1"));
        pass(Duration::from_secs(10)).await;
        let t: Vec<Instant> = fake.posts().iter().map(|(t, _)| *t).collect();
        assert_eq!(t.len(), 3);
        let (first, second) = (t[1] - t[0], t[2] - t[1]);
        assert!(
            first >= Duration::from_millis(500) && first <= Duration::from_millis(1000),
            "{first:?}"
        );
        // Doubled to 2000 ms, capped at 1500 ms, jittered.
        assert!(
            second >= Duration::from_millis(750) && second <= Duration::from_millis(1500),
            "{second:?}"
        );
        let s = stats_of(&handle);
        assert_eq!((s.sent, s.retried, s.failed, s.delivered), (3, 2, 1, 0));
        assert_eq!(s.last_error.as_deref(), Some("connection refused"));
        let recent = handle.stats().recent();
        assert_eq!(recent[0].outcome, Outcome::Failed);
        assert_eq!(recent[0].attempts, 3);
        // Given up, so not in the deduplication window: the same alert is tried again.
        tx.send(alert("c-1"));
        pass(Duration::from_secs(1)).await;
        let s = stats_of(&handle);
        assert_eq!((s.delivered, s.deduplicated), (1, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_error_is_not_retried() {
        let fake = Fake::answering(vec![now(PostOutcome::Answered {
            status: 404,
            retry_after: Some(Duration::from_secs(1)),
            detail: Some("no_service".into()),
        })]);
        let (tx, handle) = Dispatcher::start(settings("", ""), fake.clone()).unwrap();
        tx.send(alert("c-1"));
        pass(Duration::from_secs(120)).await;
        assert_eq!(fake.posts().len(), 1);
        let s = stats_of(&handle);
        assert_eq!((s.sent, s.retried, s.failed), (1, 0, 1));
        assert_eq!(s.last_error.as_deref(), Some("HTTP 404 (no_service)"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_post_past_its_timeout_counts_as_timed_out_and_is_retried() {
        let slow = (Duration::from_secs(3600), ok());
        let fake = Fake::answering(vec![slow.clone(), slow]);
        let (tx, handle) = Dispatcher::start(
            settings(
                "",
                "timeout_ms = 1000\nmax_attempts = 2\nbackoff_initial_ms = 10",
            ),
            fake.clone(),
        )
        .unwrap();
        tx.send(alert("c-1"));
        pass(Duration::from_secs(5)).await;
        let s = stats_of(&handle);
        assert_eq!((s.sent, s.failed), (2, 1));
        assert_eq!(s.last_error.as_deref(), Some("timed out after 1000 ms"));
    }

    #[tokio::test(start_paused = true)]
    async fn only_the_configured_events_reach_a_webhook() {
        let fake = Fake::default();
        let (tx, handle) = Dispatcher::start(
            settings("", "events = [\"action_applied\"]\nmin_interval_ms = 0"),
            fake.clone(),
        )
        .unwrap();
        tx.send(alert("c-1"));
        tx.send(Alert::action_applied(
            "2025-06-01T12:00:00Z",
            AppliedAction {
                action: "block".into(),
                actor: "policy".into(),
                target: "acct-1".into(),
            },
            "acct-1 blocked.",
        ));
        settle().await;
        let posts = fake.posts();
        assert_eq!(posts.len(), 1);
        assert_eq!(posts[0].1["alerts"][0]["kind"], "action_applied");
        assert_eq!(stats_of(&handle).delivered, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn each_webhook_gets_its_own_format() {
        let doc = "[[alerts.webhook]]\nname = \"j\"\nformat = \"json\"\nurl_env = \"U\"\n\
                   [[alerts.webhook]]\nname = \"s\"\nformat = \"slack\"\nurl_env = \"U\"\n";
        let settings = AlertsConfig::from_toml(doc)
            .unwrap()
            .validate(Path::new("."), |_| Some("https://h.example/x".into()))
            .unwrap();
        let fake = Fake::default();
        let (tx, handle) = Dispatcher::start(settings, fake.clone()).unwrap();
        tx.send(alert("c-1"));
        settle().await;
        let posts = fake.posts();
        assert_eq!(posts.len(), 2);
        assert!(posts.iter().any(|(_, b)| b["source"] == "moat"));
        assert!(posts.iter().any(|(_, b)| b["blocks"].is_array()));
        let snap = handle.stats().snapshot();
        assert_eq!(snap.queued, 1);
        assert_eq!(
            snap.webhooks
                .iter()
                .map(|w| w.delivered)
                .collect::<Vec<_>>(),
            vec![1, 1]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_queue_drops_and_counts_without_waiting() {
        let fake = Fake::default();
        let (tx, handle) =
            Dispatcher::start(settings("queue = 2", "min_interval_ms = 0"), fake.clone()).unwrap();
        // Nothing runs the router between these sends: the third finds the queue full.
        let accepted: Vec<bool> = (0..5).map(|i| tx.send(alert(&format!("c-{i}")))).collect();
        assert_eq!(accepted, vec![true, true, false, false, false]);
        let snap = handle.stats().snapshot();
        assert_eq!((snap.queued, snap.queue_dropped), (2, 3));
        settle().await;
        assert_eq!(stats_of(&handle).delivered, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_delivers_what_is_queued_and_pending_then_refuses_more() {
        // The second POST fails once: the drain waits for its retry.
        let fake = Fake::answering(vec![now(ok()), now(status(503))]);
        let (tx, handle) =
            Dispatcher::start(settings("", "min_interval_ms = 1000"), fake.clone()).unwrap();
        tx.send(alert("first"));
        settle().await;
        for i in 0..5 {
            tx.send(alert(&format!("c-{i}")));
        }
        let stats = handle.stats();
        let report = handle.shutdown(Duration::from_secs(10)).await;
        assert_eq!(
            report,
            ShutdownReport {
                drained: true,
                abandoned: 0
            }
        );
        assert_eq!(fake.sizes(), vec![1, 5, 5]);
        assert_eq!(stats.webhook("w").unwrap().delivered, 6);
        assert!(!tx.send(alert("late")));
        assert_eq!(stats.queue_dropped(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_abandons_what_its_deadline_leaves_and_counts_it() {
        let fake = Fake::answering((0..10).map(|_| now(status(500))).collect());
        let (tx, handle) = Dispatcher::start(
            settings(
                "",
                "max_attempts = 10\nbackoff_initial_ms = 10000\nmin_interval_ms = 0",
            ),
            fake.clone(),
        )
        .unwrap();
        tx.send(alert("c-1"));
        settle().await;
        tx.send(alert("c-2"));
        let stats = handle.stats();
        let report = handle.shutdown(Duration::from_secs(1)).await;
        assert_eq!(
            report,
            ShutdownReport {
                drained: false,
                abandoned: 2
            }
        );
        let s = stats.webhook("w").unwrap();
        assert_eq!((s.dropped, s.delivered, s.failed), (2, 0, 0));
        let recent = stats.recent();
        assert_eq!(recent.last().unwrap().outcome, Outcome::Abandoned);
        assert_eq!(recent.last().unwrap().alerts, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn the_tasks_end_when_every_sender_is_dropped() {
        let fake = Fake::default();
        let (tx, handle) = Dispatcher::start(settings("", ""), fake.clone()).unwrap();
        tx.send(alert("c-1"));
        drop(tx);
        settle().await;
        let report = handle.shutdown(Duration::ZERO).await;
        assert!(report.drained);
        assert_eq!(fake.sizes(), vec![1]);
    }

    #[test]
    fn starting_outside_a_runtime_is_an_error_not_a_panic() {
        let e = Dispatcher::start(settings("", ""), Fake::default()).unwrap_err();
        assert!(matches!(e, AlertsError::NoRuntime(_)), "{e}");
    }

    #[test]
    fn the_backoff_doubles_up_to_its_cap_with_half_of_it_jittered() {
        let mut rng = Pcg32::seed_from_u64(7);
        let initial = Duration::from_millis(500);
        let max = Duration::from_millis(60_000);
        for attempt in 1..=40 {
            let base = (500u64 << (attempt - 1).min(20)).min(60_000);
            for _ in 0..20 {
                let d = backoff(initial, max, attempt, &mut rng).as_millis() as u64;
                assert!(
                    d >= base - base / 2 && d <= base,
                    "attempt {attempt}: {d} ms"
                );
            }
        }
    }

    #[test]
    fn dedup_forgets_after_the_window_on_request_and_past_its_capacity() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut d = Dedup::new(Duration::from_secs(10), 3);
        assert!(d.admit("a", at(0)));
        assert!(!d.admit("a", at(9)));
        assert!(d.admit("a", at(10)));
        assert!(!d.admit("a", at(11)));
        d.forget("a");
        assert!(d.admit("a", at(12)));
        // Capacity 3: a fourth key pushes out the oldest.
        assert!(d.admit("b", at(13)));
        assert!(d.admit("c", at(13)));
        assert!(d.admit("e", at(13)));
        assert!(d.seen.len() <= 3);
        assert!(d.admit("a", at(14)));
        assert!(!d.admit("e", at(14)));
        // Keys forgotten over and over leave no pile of stale entries.
        let mut d = Dedup::new(Duration::from_secs(3600), 4);
        for i in 0..1000 {
            assert!(d.admit("k", at(i)));
            d.forget("k");
        }
        assert!(d.order.len() <= 8, "{}", d.order.len());
    }

    #[test]
    fn kinds_are_all_wanted_by_default() {
        let s = settings("", "");
        for k in AlertKind::ALL {
            assert!(s.webhooks[0].wants(k));
        }
    }
}

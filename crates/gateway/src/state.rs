//! Everything a request handler shares: configuration, the identity resolver, the policy,
//! the live engine's published standings, the limiter, the upstream client, the sealing
//! key, the recorder and the metrics. Built once by [`crate::Gateway::build`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use moat_dialect::Sealer;
use moat_store::{Recorder, Store};
use moat_types::{Account, Timestamp};

use crate::config::FailMode;
use crate::identity::Resolver;
use crate::limit::Limiter;
use crate::live::LiveEngine;
use crate::metrics::Metrics;
use crate::rules::Rules;
use crate::summarize::Summarizer;
use crate::upstream::Upstream;

/// Shared state of both listeners.
pub struct AppState {
    /// Identity.
    pub resolver: Resolver,
    /// The policy.
    pub rules: Arc<Rules>,
    /// The engine on the live stream.
    pub engine: LiveEngine,
    /// Throttle buckets of this process (all of them with `[throttle] backend = "local"`; the
    /// fallback when Redis cannot answer and the gateway fails open).
    pub limiter: Limiter,
    /// Throttle buckets shared through Redis, with `[throttle] backend = "redis"`.
    pub shared_limiter: Option<Arc<crate::shared_limit::SharedLimiter>>,
    /// The model server.
    pub upstream: Upstream,
    /// Seals withheld reasoning.
    pub sealer: Sealer,
    /// Summaries for `summarize_reasoning`.
    pub summarizer: Option<Summarizer>,
    /// Records exchanges and decisions off the request path.
    pub recorder: Arc<Recorder>,
    /// The store, for the admin API's reads.
    pub store: Arc<dyn Store>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Side facts of accounts (tier, country, sign-up), from the accounts file.
    pub accounts: HashMap<String, Account>,
    /// Fail open or closed.
    pub fail_mode: FailMode,
    /// Add `x-moat-overhead-us`.
    pub overhead_header: bool,
    /// Largest request body.
    pub max_body: usize,
    /// Largest upstream body read whole.
    pub max_upstream_body: usize,
    /// Record the answer and returned reasoning texts.
    pub record_text: bool,
    /// Seconds between policy file checks (0: never).
    pub reload_interval_s: u64,
    /// Admin token (never logged).
    pub admin_token: Option<String>,
    /// Serve metrics without the token.
    pub public_metrics: bool,
    /// Monotonic origin of the limiter's clock.
    pub started: Instant,
    /// Request ids.
    pub ids: RequestIds,
    /// With `[engine] source = "bus"`: where the consolidator's standings are watched.
    pub standings: Option<moat_bus::BusConfig>,
    /// Partners' indicators (`[intel]`).
    pub intel: crate::intel::Intel,
    /// Requests, actions and gauges of the last day, for the dashboard.
    pub timeline: crate::timeline::Timeline,
    /// Webhook alerts (`[alerts]`).
    pub alerting: Arc<crate::alerting::Alerting>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").finish_non_exhaustive()
    }
}

/// Request ids: a random per-process prefix and a counter, unique across restarts.
#[derive(Debug)]
pub struct RequestIds {
    prefix: String,
    next: AtomicU64,
}

impl Default for RequestIds {
    fn default() -> Self {
        let mut seed = [0u8; 6];
        // A fixed prefix still gives unique ids within the process; the random one keeps them
        // unique across restarts.
        let _ = getrandom::fill(&mut seed);
        RequestIds {
            prefix: seed.iter().map(|b| format!("{b:02x}")).collect(),
            next: AtomicU64::new(1),
        }
    }
}

impl AppState {
    /// A fresh request id.
    pub fn request_id(&self) -> String {
        let n = self.ids.next.fetch_add(1, Ordering::Relaxed);
        format!("req_{}{n:010x}", self.ids.prefix)
    }

    /// Milliseconds on the limiter's monotonic clock.
    pub fn clock_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }
}

/// Wall-clock now, for records.
pub fn now() -> Timestamp {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    Timestamp::from_millis(ms)
}

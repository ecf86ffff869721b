//! `moat serve`: an OpenAI- and Anthropic-compatible gateway in front of any model server.
//!
//! Every request is attributed to an account ([`identity`]), scored (the request's own
//! signals from `moat-detect`, the account's standing from the engine running on the live
//! stream, [`live`]), decided by the operator's rules (`moat-policy`, hot-reloaded by
//! [`rules`]), enforced ([`limit`] for throttles; blocks and tarpits in [`proxy`]), forwarded
//! ([`upstream`]) and answered with reasoning passed, withheld or summarized in the client's
//! dialect (`moat-dialect`), streams included, chunk by chunk. Every exchange and decision
//! goes to the store through the recorder, off the request path (`moat-store`). A separate
//! listener serves health, metrics and the admin API ([`admin`]).
//!
//! Not here: detection itself (moat-detect), the rule language (moat-policy), JSON shapes of
//! the APIs (moat-dialect), SQL (moat-store). *Invariant:* only this crate knows HTTP.

pub mod actions;
pub mod admin;
pub mod alerting;
pub mod config;
pub mod dashboard;
pub mod error;
pub mod identity;
pub mod intel;
pub mod limit;
pub mod live;
pub mod metrics;
pub mod proxy;
pub mod rules;
pub mod shared_limit;
pub mod state;
pub mod summarize;
pub mod timeline;
pub mod upstream;
pub mod usage;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use axum::Router;
use http::StatusCode;
use moat_dialect::{Endpoint, Sealer};
use moat_store::{Recorder, RecorderOptions, SqliteStore, Store};

pub use config::Config;
pub use error::{ConfigError, GatewayError};
pub use state::AppState;

use crate::identity::Resolver;
use crate::live::LiveEngine;
use crate::metrics::{Collect, Metrics};
use crate::rules::Rules;
use crate::summarize::Summarizer;
use crate::upstream::Upstream;

/// A poisoned lock still holds usable data here (plain values, no invariants across fields).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The configuration is wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The policy file is wrong.
    #[error("policy: {0}")]
    Policy(String),
    /// The store could not be opened.
    #[error("store: {0}")]
    Store(#[from] moat_store::StoreError),
    /// A secret could not be read.
    #[error("{0}")]
    Secret(String),
    /// The configuration does not fit the role started.
    #[error("{0}")]
    Role(String),
    /// The accounts file could not be read.
    #[error("accounts file: {0}")]
    Accounts(String),
    /// The intel database or a partner key could not be read.
    #[error("intel: {0}")]
    Intel(String),
    /// `[alerts]` is wrong or a webhook URL could not be read.
    #[error("{0}")]
    Alerts(String),
    /// A listener or thread could not start.
    #[error("{what}: {source}")]
    Io {
        /// What was being started.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// The gateway: its shared state and its two routers.
#[derive(Debug, Clone)]
pub struct Gateway {
    state: Arc<AppState>,
}

/// Recorder and engine counters for `/metrics`.
struct Counters(Arc<Recorder>, Arc<live::Published>);

impl Collect for Counters {
    fn collect(&self, out: &mut String) {
        use std::sync::atomic::Ordering::Relaxed;
        let r = self.0.stats();
        let m = metrics::sample;
        m(
            out,
            "moat_recorder_written",
            "counter",
            "Records written to the store",
            r.written,
        );
        m(
            out,
            "moat_recorder_duplicates",
            "counter",
            "Records already stored (same request id)",
            r.duplicates,
        );
        m(
            out,
            "moat_recorder_spilled",
            "counter",
            "Records spilled to files because the queue was full or the store failed",
            r.spilled,
        );
        m(
            out,
            "moat_recorder_recovered",
            "counter",
            "Spilled records the running recorder read back into the store",
            r.recovered,
        );
        m(
            out,
            "moat_recorder_dropped",
            "counter",
            "Records lost because spilling failed too",
            r.dropped,
        );
        m(
            out,
            "moat_recorder_write_errors",
            "counter",
            "Failed store writes (retried, then spilled)",
            r.write_errors,
        );
        m(
            out,
            "moat_recorder_queue",
            "gauge",
            "Records waiting to be written",
            r.queue_len,
        );
        let p = &self.1;
        m(
            out,
            "moat_engine_observed",
            "counter",
            "Requests folded into the engine",
            p.observed.load(Relaxed),
        );
        m(
            out,
            "moat_engine_dropped",
            "counter",
            "Requests that found the engine's queue full and went unscored",
            p.dropped.load(Relaxed),
        );
        m(
            out,
            "moat_engine_passes",
            "counter",
            "Campaign discovery passes",
            p.passes.load(Relaxed),
        );
        m(
            out,
            "moat_engine_alive",
            "gauge",
            "Whether the engine thread runs",
            u64::from(p.alive.load(Relaxed)),
        );
    }
}

fn secret_from_env(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.is_empty())
}

/// The value of the environment variable `var` that the configuration key `key` names; an
/// error names both, never the value.
fn required_secret(key: &str, var: &str) -> Result<String, StartError> {
    secret_from_env(var).ok_or_else(|| {
        StartError::Secret(format!(
            "{key}: the environment variable {var} is not set or empty"
        ))
    })
}

fn sealing_key(cfg: &config::ReasoningSection) -> Result<Sealer, StartError> {
    let hex = if let Some(file) = &cfg.key_file {
        Some(
            std::fs::read_to_string(file)
                .map_err(|e| {
                    StartError::Secret(format!("reasoning.key_file {}: {e}", file.display()))
                })?
                .trim()
                .to_owned(),
        )
    } else {
        cfg.key_env.as_deref().and_then(secret_from_env)
    };
    let key = match hex {
        Some(h) => identity::unhex(&h).ok_or_else(|| {
            StartError::Secret("reasoning key: expected 64 hex digits".to_owned())
        })?,
        None => {
            let mut k = [0u8; 32];
            getrandom::fill(&mut k).map_err(|e| StartError::Secret(format!("random key: {e}")))?;
            tracing::warn!("no reasoning.key_file or key_env: withheld reasoning tokens will not survive a restart");
            k
        }
    };
    Ok(Sealer::new(key))
}

/// Feeds the engine what the store recorded in the last `hours`, in time order, so that a
/// restarted gateway knows its accounts and campaigns. Lines the store cannot give back as
/// exchanges are counted and skipped (the store wrote them; this does not happen unless the
/// database was edited by hand).
fn replay(store: &dyn Store, engine: &LiveEngine, hours: u32) -> Result<(), StartError> {
    let since = moat_types::Timestamp::from_millis(
        state::now().as_millis() - i64::from(hours) * moat_types::Timestamp::HOUR,
    );
    let mut bad = 0u64;
    let started = std::time::Instant::now();
    let n = store.export_exchanges(Some(since), &mut |line| {
        match serde_json::from_str::<moat_types::Exchange>(line) {
            Ok(x) => {
                engine.observe_wait(moat_detect::Features::of(&x));
            }
            Err(_) => bad += 1,
        }
        Ok(())
    })?;
    if n > 0 {
        tracing::info!(
            exchanges = n,
            skipped = bad,
            hours,
            seconds = started.elapsed().as_secs_f64(),
            "replayed recorded exchanges into the engine"
        );
    }
    Ok(())
}

/// Brings records spilled by an earlier run back into the store (idempotent by request id)
/// and sets the files aside, so that a full queue or a store outage loses nothing across a
/// restart: the spill files themselves and those a running recorder had set aside for import
/// when the store failed. A file that cannot be imported stays where it is, for the next start.
fn import_spills(store: &dyn Store, dir: &Path) {
    let exchanges = moat_store::spill_files(&dir.join("exchanges.spill.jsonl"));
    let decisions = moat_store::spill_files(&dir.join("decisions.spill.jsonl"));
    let files = exchanges
        .into_iter()
        .map(|p| (p, true))
        .chain(decisions.into_iter().map(|p| (p, false)));
    for (path, is_exchanges) in files {
        let result = if is_exchanges {
            moat_store::import_spill(store, &path)
        } else {
            moat_store::import_decision_spill(store, &path)
        };
        match result {
            Ok(r) => {
                tracing::warn!(
                    file = %path.display(),
                    imported = r.imported,
                    duplicates = r.duplicates,
                    bad_lines = r.bad_lines,
                    "imported records spilled by an earlier run"
                );
                let mut done = path.file_name().unwrap_or_default().to_os_string();
                done.push(format!(".imported-{}", state::now().as_millis()));
                let done = path.with_file_name(done);
                if let Err(e) = std::fs::rename(&path, &done) {
                    tracing::error!(file = %path.display(), error = %e, "could not set an imported spill file aside");
                }
            }
            Err(e) => {
                tracing::error!(file = %path.display(), error = %e, "could not import a spill file; it is kept for the next start");
            }
        }
    }
}

fn load_accounts(path: &Path) -> Result<Vec<moat_types::Account>, StartError> {
    let reader =
        moat_format::Reader::<moat_types::Account>::open(path, moat_format::ReadOptions::default())
            .map_err(|e| StartError::Accounts(e.to_string()))?;
    reader
        .map(|r| r.map_err(|e| StartError::Accounts(e.to_string())))
        .collect()
}

/// The bus settings when `[bus] url_env` is set (the URL from that variable; a missing
/// variable is named, its value never shown).
pub fn bus_config(cfg: &config::BusSection) -> Result<Option<moat_bus::BusConfig>, StartError> {
    let Some(var) = cfg.url_env.as_deref() else {
        return Ok(None);
    };
    let url = required_secret("bus.url_env", var)?;
    let mut bus = moat_bus::BusConfig::new(&url);
    bus.stream = cfg.stream.clone();
    bus.subject_prefix = cfg.subject_prefix.clone();
    bus.partitions = cfg.partitions;
    Ok(Some(bus))
}

/// Opens the configured store. The PostgreSQL connection string comes from the environment
/// variable the configuration names; a missing variable is named, its value never shown.
pub fn open_store(cfg: &config::StoreSection) -> Result<Arc<dyn Store>, StartError> {
    Ok(match cfg.backend {
        config::StoreBackend::Sqlite => Arc::new(SqliteStore::open(&cfg.path)?),
        config::StoreBackend::Postgres => open_shared_store(cfg)?,
    })
}

/// A store and its feature log (the same database).
pub type StoreWithFeatures = (Arc<dyn Store>, Arc<dyn moat_store::FeatureLog>);

/// Opens the configured store together with its feature log (for `moat worker`).
pub fn open_store_with_features(
    cfg: &config::StoreSection,
) -> Result<StoreWithFeatures, StartError> {
    Ok(match cfg.backend {
        config::StoreBackend::Sqlite => {
            let s = Arc::new(SqliteStore::open(&cfg.path)?);
            (Arc::clone(&s) as Arc<dyn Store>, s)
        }
        config::StoreBackend::Postgres => {
            let s = open_shared_store(cfg)?;
            (Arc::clone(&s) as Arc<dyn Store>, s)
        }
    })
}

/// Opens the shared PostgreSQL database of a scale-out deployment (`moat consolidate`,
/// which needs its leadership locks); an error naming `store.backend` for any other store.
pub fn open_shared_store(
    cfg: &config::StoreSection,
) -> Result<Arc<moat_store::PostgresStore>, StartError> {
    if cfg.backend != config::StoreBackend::Postgres {
        return Err(StartError::Role(
            "store.backend: scale-out roles share one PostgreSQL database; set backend = \"postgres\""
                .to_owned(),
        ));
    }
    let url = required_secret("store.url_env", cfg.url_env.as_deref().unwrap_or(""))?;
    Ok(Arc::new(moat_store::PostgresStore::connect_schema(
        &url,
        &cfg.schema,
    )?))
}

/// The engine configuration a deployment's `[engine]` section gives (the gateway's own engine
/// and the consolidator use the same).
pub fn engine_config(cfg: &config::EngineSection) -> moat_detect::Config {
    moat_detect::Config {
        discovery_interval_ms: cfg.discovery_interval_ms,
        ..moat_detect::Config::default()
    }
}

/// The accounts side file the configuration names (none: empty).
pub fn accounts_of(cfg: &config::EngineSection) -> Result<Vec<moat_types::Account>, StartError> {
    match &cfg.accounts_file {
        Some(f) => load_accounts(f),
        None => Ok(Vec::new()),
    }
}

/// The Redis limiter when the configuration asks for one (the URL from the environment
/// variable it names; a missing variable is named, its value never shown).
fn shared_limiter(
    cfg: &config::ThrottleSection,
) -> Result<Option<Arc<shared_limit::SharedLimiter>>, StartError> {
    if cfg.backend != config::ThrottleBackend::Redis {
        return Ok(None);
    }
    let url = required_secret(
        "throttle.redis_url_env",
        cfg.redis_url_env.as_deref().unwrap_or(""),
    )?;
    let limiter = shared_limit::SharedLimiter::new(
        &url,
        &cfg.key_prefix,
        Duration::from_millis(cfg.timeout_ms),
    )
    .map_err(StartError::Secret)?;
    Ok(Some(Arc::new(limiter)))
}

impl Gateway {
    /// Builds the gateway from a validated configuration: opens the store, loads the policy
    /// and the accounts file, starts the engine and the recorder. Starts no listener.
    ///
    /// Blocking (it opens the store and replays it into the engine): call it before entering
    /// the async runtime, or from `spawn_blocking`, never from async code.
    pub fn build(cfg: &Config) -> Result<Gateway, StartError> {
        let store = open_store(&cfg.store)?;
        let store = match bus_config(&cfg.bus)? {
            // Scale-out: records go to the stream, workers store them in the same database.
            Some(bus) => {
                let publisher = moat_bus::Publisher::connect(bus)
                    .map_err(|e| StartError::Secret(format!("bus: {e}")))?;
                Arc::new(moat_bus::PublishingStore::new(publisher, store))
            }
            None => store,
        };
        Gateway::build_with_store(cfg, store)
    }

    /// As [`Gateway::build`], on a given store (tests use an in-memory one).
    pub fn build_with_store(cfg: &Config, store: Arc<dyn Store>) -> Result<Gateway, StartError> {
        // Build the signal automata now, not on the first request (tens of milliseconds).
        let _ = moat_detect::signals::Signals::global();
        let rules = match &cfg.policy.file {
            Some(f) => Rules::load(f.clone()).map_err(StartError::Policy)?,
            None => Rules::allow_all(),
        };
        let rules = rules
            .with_actions(cfg.policy.actions_file.as_deref())
            .map_err(StartError::Policy)?;
        let engine_cfg = engine_config(&cfg.engine);
        let remote = cfg.engine.source == config::EngineSource::Bus;
        let engine = if remote {
            LiveEngine::remote()
        } else {
            LiveEngine::start(engine_cfg, cfg.engine.queue).map_err(|e| StartError::Io {
                what: "engine thread".to_owned(),
                source: e,
            })?
        };
        let mut accounts = HashMap::new();
        if let Some(f) = &cfg.engine.accounts_file {
            for a in load_accounts(f)? {
                engine.add_account(a.clone());
                accounts.insert(a.account_id.clone(), a);
            }
        }
        if cfg.engine.replay_hours > 0 && !remote {
            replay(store.as_ref(), &engine, cfg.engine.replay_hours)?;
        }
        let standings = if remote { bus_config(&cfg.bus)? } else { None };
        let upstream_key = cfg
            .upstream
            .api_key_env
            .as_deref()
            .and_then(secret_from_env);
        let upstream = Upstream::new(
            &cfg.upstream.url,
            upstream_key.as_deref(),
            Duration::from_millis(cfg.upstream.timeout_ms),
        )
        .map_err(StartError::Secret)?;
        let summarizer = match (
            &cfg.reasoning.summarizer_url,
            &cfg.reasoning.summarizer_model,
        ) {
            (Some(url), Some(model)) => Some(
                Summarizer::new(
                    url,
                    model,
                    upstream_key.as_deref(),
                    Duration::from_millis(cfg.reasoning.summarizer_timeout_ms),
                )
                .map_err(StartError::Secret)?,
            ),
            _ => None,
        };
        import_spills(store.as_ref(), &cfg.store.spill_dir);
        let recorder = Recorder::spawn(
            Arc::clone(&store),
            RecorderOptions {
                queue_capacity: cfg.store.queue,
                // Small, frequent batches: the writer shares the cores that serve requests,
                // and a burst of a few milliseconds of SQLite work shows in their p99.
                batch_size: 256,
                batch_interval: Duration::from_millis(20),
                background: cfg.store.writer == config::WriterPriority::Background,
                ..RecorderOptions::with_spill_dir(&cfg.store.spill_dir)
            },
        )?;
        let recorder = Arc::new(recorder);
        let alerting = Arc::new(alerting::Alerting::new(&cfg.alerts)?);
        let metrics = Metrics::default()
            .with(Arc::new(Counters(
                Arc::clone(&recorder),
                Arc::clone(engine.published()),
            )))
            .with(Arc::new(alerting::AlertMetrics(Arc::clone(&alerting))));
        let state = AppState {
            resolver: Resolver::new(&cfg.identity),
            rules: Arc::new(rules),
            engine,
            upstream,
            sealer: sealing_key(&cfg.reasoning)?,
            summarizer,
            recorder,
            store,
            metrics: Arc::new(metrics),
            accounts,
            fail_mode: cfg.failure.mode,
            overhead_header: cfg.listen.overhead_header,
            max_body: cfg.listen.max_body_bytes,
            max_upstream_body: cfg.upstream.max_body_bytes,
            record_text: cfg.store.record_text,
            reload_interval_s: cfg.policy.reload_interval_ms.div_ceil(1000),
            admin_token: secret_from_env(&cfg.admin.token_env),
            public_metrics: cfg.admin.public_metrics,
            limiter: limit::Limiter::new(),
            shared_limiter: shared_limiter(&cfg.throttle)?,
            started: std::time::Instant::now(),
            ids: state::RequestIds::default(),
            standings,
            intel: intel::Intel::load(&cfg.intel)?,
            timeline: timeline::Timeline::new(),
            alerting,
        };
        Ok(Gateway {
            state: Arc::new(state),
        })
    }

    /// The shared state.
    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }

    /// The API router (`/v1/...`).
    pub fn router(&self) -> Router {
        api_router(Arc::clone(&self.state))
    }

    /// The admin router.
    pub fn admin_router(&self) -> Router {
        admin::router(Arc::clone(&self.state))
    }

    /// With `[engine] source = "bus"`, starts the task that copies the consolidator's
    /// standings into the gateway (its current values, then every change) until `stop`
    /// resolves; `None` otherwise. [`Gateway::serve`] calls it; tests that drive the routers
    /// directly call it themselves. Call it inside the runtime.
    pub fn watch_standings(
        &self,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Option<tokio::task::JoinHandle<()>> {
        let bus = self.state.standings.clone()?;
        let st = Arc::clone(&self.state);
        Some(tokio::spawn(async move {
            let apply_to = Arc::clone(&st);
            let result =
                moat_bus::watch_standings(bus, move |u| apply_to.engine.apply(u), stop).await;
            if let Err(e) = result {
                tracing::error!(error = %e, "standings: cannot watch the consolidator's bucket");
            }
            live::remote_lost(st.engine.published());
        }))
    }

    /// Serves both listeners until `shutdown` resolves, then drains in-flight requests and
    /// flushes the recorder. Also runs the policy file watcher, SIGHUP reloads and the
    /// limiter's purge.
    pub async fn serve(
        self,
        api: tokio::net::TcpListener,
        admin: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartError> {
        let st = Arc::clone(&self.state);
        let (tx, rx) = tokio::sync::watch::channel(false);
        let housekeeping = tokio::spawn(housekeeping(Arc::clone(&st), rx.clone()));
        let mut rx_watch = rx.clone();
        let watcher = self.watch_standings(async move {
            let _ = rx_watch.wait_for(|v| *v).await;
        });
        let api_app = self
            .router()
            .into_make_service_with_connect_info::<SocketAddr>();
        let admin_app = self.admin_router().into_make_service();
        let mut rx_api = rx.clone();
        let mut rx_admin = rx.clone();
        // Nagle's algorithm would hold each streamed chunk until the client's delayed ACK.
        let api = api.tap_io(|t| {
            let _ = t.set_nodelay(true);
        });
        let admin = admin.tap_io(|t| {
            let _ = t.set_nodelay(true);
        });
        let api_srv = axum::serve(api, api_app).with_graceful_shutdown(async move {
            let _ = rx_api.wait_for(|v| *v).await;
        });
        let admin_srv = axum::serve(admin, admin_app).with_graceful_shutdown(async move {
            let _ = rx_admin.wait_for(|v| *v).await;
        });
        tokio::spawn(async move {
            shutdown.await;
            let _ = tx.send(true);
        });
        let (a, b) = tokio::join!(api_srv, admin_srv);
        housekeeping.abort();
        if let Some(w) = watcher {
            w.abort();
        }
        let rec = Arc::clone(&st.recorder);
        let _ = tokio::task::spawn_blocking(move || rec.shutdown()).await;
        a.map_err(|e| StartError::Io {
            what: "api listener".to_owned(),
            source: e,
        })?;
        b.map_err(|e| StartError::Io {
            what: "admin listener".to_owned(),
            source: e,
        })?;
        Ok(())
    }
}

/// Policy file watch, SIGHUP reloads, limiter purge.
async fn housekeeping(st: Arc<AppState>, _stop: tokio::sync::watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    #[cfg(unix)]
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let mut seconds: u64 = 0;
    // The alert dispatcher needs the runtime, which this task runs on.
    st.alerting.start();
    loop {
        #[cfg(unix)]
        let hup_fired = async {
            match hup.as_mut() {
                Some(h) => h.recv().await,
                None => std::future::pending().await,
            }
        };
        #[cfg(not(unix))]
        let hup_fired = std::future::pending::<Option<()>>();
        tokio::select! {
            _ = tick.tick() => {
                seconds += 1;
                if st.reload_interval_s > 0 && seconds % st.reload_interval_s == 0 {
                    let st2 = Arc::clone(&st);
                    let _ = tokio::task::spawn_blocking(move || {
                        if st2.rules.changed() {
                            admin::reload_now(&st2, "file_watch");
                        }
                    })
                    .await;
                }
                if st.intel.reload_interval_s > 0 && seconds % st.intel.reload_interval_s == 0 {
                    let st2 = Arc::clone(&st);
                    // A failure is logged and shown on /admin/intel; the feeds in force stay.
                    let _ = tokio::task::spawn_blocking(move || st2.intel.refresh()).await;
                }
                if seconds % 60 == 0 {
                    st.limiter.purge(st.clock_ms());
                }
                if seconds % 10 == 0 {
                    let st2 = Arc::clone(&st);
                    // Counting flagged accounts walks the standings: off the async threads.
                    let _ = tokio::task::spawn_blocking(move || sample_timeline(&st2)).await;
                }
            }
            _ = hup_fired => {
                let st2 = Arc::clone(&st);
                let _ = tokio::task::spawn_blocking(move || admin::reload_now(&st2, "sighup")).await;
            }
        }
    }
}

/// Records the number of flagged accounts and campaigns in the dashboard's timeline, and
/// announces campaigns that are new or grew.
fn sample_timeline(st: &AppState) {
    let published = st.engine.published();
    let flagged = published
        .accounts
        .iter()
        .filter(|e| e.standing.as_ref().is_some_and(|s| s.flagged))
        .count();
    let campaigns = published.campaigns.load();
    let now = state::now();
    st.timeline
        .sample(now.as_millis(), flagged as u64, campaigns.len() as u64);
    st.alerting.observe_campaigns(now, &campaigns);
}

fn api_router(st: Arc<AppState>) -> Router {
    let ep = |e: Endpoint| {
        move |s: State<Arc<AppState>>, req: http::Request<Body>| proxy::handle(s, e, req)
    };
    Router::new()
        .route("/v1/chat/completions", post(ep(Endpoint::ChatCompletions)))
        .route("/v1/completions", post(ep(Endpoint::Completions)))
        .route("/v1/responses", post(ep(Endpoint::Responses)))
        .route("/v1/messages", post(ep(Endpoint::Messages)))
        .route("/v1/models", get(proxy::models))
        .fallback(not_found)
        .with_state(st)
}

async fn not_found(req: http::Request<Body>) -> Response {
    let path = req.uri().path();
    let shown: String = path.chars().take(100).collect();
    GatewayError::client(
        StatusCode::NOT_FOUND,
        "unknown_endpoint",
        format!(
            "{} {shown} is not an endpoint of this gateway",
            req.method()
        ),
    )
    .into_response()
}

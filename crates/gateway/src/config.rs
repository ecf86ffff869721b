//! The gateway's configuration file: one TOML document with `version = 1`, loaded, parsed and
//! validated before anything starts, every error naming its key path (and line where TOML
//! knows it). Secrets are never in this file: the admin token, the upstream API key and the
//! reasoning-sealing key come from environment variables or files it names, and client API
//! keys appear only as SHA-256 digests.
//!
//! One key is for drills and tests only: `[identity] time_header` makes a header, not the
//! gateway's clock, give each request's time, so that `moat replay` can send a recorded log
//! and have it recorded and scored at its own times. Whoever can set that header chooses the
//! time the engine sees: never set it on a listener that clients reach directly.
//!
//! Not the policy: rules live in their own file (`moat-policy`), hot-reloaded on their own.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::ConfigError;

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Format version; must be 1.
    pub version: u32,
    /// Where the gateway listens.
    #[serde(default)]
    pub listen: Listen,
    /// The model server requests are forwarded to.
    pub upstream: Upstream,
    /// How requests are attributed to accounts.
    #[serde(default)]
    pub identity: Identity,
    /// The policy rule file.
    #[serde(default)]
    pub policy: PolicySection,
    /// Where exchanges and decisions are recorded.
    #[serde(default)]
    pub store: StoreSection,
    /// The detection engine on the live stream.
    #[serde(default)]
    pub engine: EngineSection,
    /// Withholding and summarizing reasoning.
    #[serde(default)]
    pub reasoning: ReasoningSection,
    /// The admin listener.
    #[serde(default)]
    pub admin: Admin,
    /// What happens when the engine or the store cannot be used.
    #[serde(default)]
    pub failure: Failure,
    /// Where throttle counters live.
    #[serde(default)]
    pub throttle: ThrottleSection,
    /// Scale-out: publish records to NATS JetStream for `moat worker`s to store.
    #[serde(default)]
    pub bus: BusSection,
    /// Threat intelligence pulled from partners, for the policy's `intel.*` fields.
    #[serde(default)]
    pub intel: IntelSection,
    /// `[alerts]`: webhooks told when a campaign is discovered or grows, or an action is
    /// applied (see `moat_alerts::AlertsConfig`).
    #[serde(default)]
    pub alerts: moat_alerts::AlertsConfig,
}

/// `[intel]`: the database `moat intel pull` fills with partners' indicators. Requests are
/// matched against them and the policy reads the result as `intel.match` and
/// `intel.sources`. The database is read at start and again whenever a pull lands in it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntelSection {
    /// The intel database (SQLite; created empty if missing). Unset: no intelligence.
    #[serde(default)]
    pub db: Option<PathBuf>,
    /// Per source (partner) name, the file holding the key shared with it; without one, that
    /// partner's keyed template and payment fingerprints cannot be matched.
    #[serde(default)]
    pub keys: BTreeMap<String, PathBuf>,
    /// How often the database is checked for a new import (ms).
    #[serde(default = "default_intel_reload")]
    pub reload_interval_ms: u64,
}

impl Default for IntelSection {
    fn default() -> Self {
        IntelSection {
            db: None,
            keys: BTreeMap::new(),
            reload_interval_ms: default_intel_reload(),
        }
    }
}

fn default_intel_reload() -> u64 {
    5_000
}

/// `[bus]`: with `url_env` set, the gateway publishes every exchange and decision to a NATS
/// JetStream stream instead of writing them itself; `moat worker`s (reading the same file)
/// store them in the `[store]` database, which the gateway still reads.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusSection {
    /// The environment variable holding the NATS URL (`nats://host:4222`; it may hold
    /// credentials, so it is never written here or shown). Unset: no bus.
    #[serde(default)]
    pub url_env: Option<String>,
    /// The JetStream stream (created if missing).
    #[serde(default = "default_bus_stream")]
    pub stream: String,
    /// Subject prefix: exchanges go to `PREFIX.x.P`, decisions to `PREFIX.d.P`.
    #[serde(default = "default_bus_prefix")]
    pub subject_prefix: String,
    /// Partitions of the account space (fixed for the stream's life).
    #[serde(default = "default_bus_partitions")]
    pub partitions: u32,
}

impl Default for BusSection {
    fn default() -> Self {
        BusSection {
            url_env: None,
            stream: default_bus_stream(),
            subject_prefix: default_bus_prefix(),
            partitions: default_bus_partitions(),
        }
    }
}

fn default_bus_stream() -> String {
    "MOAT".to_owned()
}

fn default_bus_prefix() -> String {
    "moat".to_owned()
}

fn default_bus_partitions() -> u32 {
    16
}

/// `[throttle]`: where the buckets of the policy's `throttle` action are kept.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThrottleSection {
    /// `"local"` (the default: in this process) or `"redis"` (shared by every gateway
    /// replica, so a campaign's budget holds across all of them).
    #[serde(default)]
    pub backend: ThrottleBackend,
    /// With `backend = "redis"`: the environment variable holding the Redis URL
    /// (`redis://host:6379/0`; it may hold a password, so it is never written here or shown).
    #[serde(default)]
    pub redis_url_env: Option<String>,
    /// With `backend = "redis"`: the prefix of every key Moat writes.
    #[serde(default = "default_throttle_prefix")]
    pub key_prefix: String,
    /// With `backend = "redis"`: how long one counter update may take before Redis counts as
    /// unavailable (ms). Then `[failure] mode` decides: `"open"` serves on this gateway's own
    /// buckets, `"closed"` refuses throttled requests with 503.
    #[serde(default = "default_throttle_timeout")]
    pub timeout_ms: u64,
}

impl Default for ThrottleSection {
    fn default() -> Self {
        ThrottleSection {
            backend: ThrottleBackend::default(),
            redis_url_env: None,
            key_prefix: default_throttle_prefix(),
            timeout_ms: default_throttle_timeout(),
        }
    }
}

fn default_throttle_prefix() -> String {
    "moat:throttle:".to_owned()
}

fn default_throttle_timeout() -> u64 {
    50
}

/// `[throttle] backend`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThrottleBackend {
    /// In this process.
    #[default]
    Local,
    /// In Redis, shared.
    Redis,
}

/// `[listen]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listen {
    /// Address of the API listener.
    #[serde(default = "default_addr")]
    pub addr: SocketAddr,
    /// Largest request body accepted (bytes); larger ones get 413.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// Add `x-moat-overhead-us` (time spent in the gateway, microseconds) to responses.
    #[serde(default)]
    pub overhead_header: bool,
}

impl Default for Listen {
    fn default() -> Self {
        Listen {
            addr: default_addr(),
            max_body_bytes: default_max_body(),
            overhead_header: false,
        }
    }
}

fn default_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

fn default_max_body() -> usize {
    8 << 20
}

/// `[upstream]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Upstream {
    /// Base URL of the model server, without the `/v1` path (`http://127.0.0.1:8000`); a
    /// request's path and query are appended to it.
    pub url: String,
    /// Environment variable holding the key the gateway sends upstream (as
    /// `Authorization: Bearer` and `x-api-key`), replacing the client's. Without it the
    /// client's own credentials are forwarded unchanged.
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// Time allowed for the upstream's response headers (ms).
    #[serde(default = "default_upstream_timeout")]
    pub timeout_ms: u64,
    /// Largest non-streamed upstream body the gateway reads (bytes).
    #[serde(default = "default_max_upstream_body")]
    pub max_body_bytes: usize,
}

fn default_upstream_timeout() -> u64 {
    300_000
}

fn default_max_upstream_body() -> usize {
    64 << 20
}

/// `[identity]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    /// `"api_key"`: the client's key (`Authorization: Bearer` or `x-api-key`) is looked up
    /// among `keys`; `"header"`: a trusted header set by the provider's own auth layer names
    /// the account.
    #[serde(default)]
    pub mode: IdentityMode,
    /// The trusted account header (mode `"header"`).
    #[serde(default = "default_account_header")]
    pub account_header: String,
    /// API keys and their accounts (mode `"api_key"`).
    #[serde(default)]
    pub keys: Vec<KeyEntry>,
    /// A TOML file holding more `[[keys]]` entries, for key lists kept apart from the config.
    #[serde(default)]
    pub keys_file: Option<PathBuf>,
    /// Reverse proxies in front of the gateway whose `x-forwarded-for` entries are trusted:
    /// the client address is the entry this many hops from the right (0: the socket peer).
    #[serde(default)]
    pub trusted_proxy_hops: usize,
    /// Headers set by the provider's edge: `asn`, `country`, `ja4` fill the record's client
    /// fields; any other name becomes `attr.<name>` for the policy.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// For replaying recorded traffic in drills and tests only: a header (`x-moat-time`)
    /// whose RFC 3339 timestamp becomes the request's time (the record's `ts`, the time the
    /// engine and the policy see) instead of the gateway's clock; a request without it, or
    /// with a value that is not a timestamp, is refused with 400. Whoever can set it chooses
    /// the time the engine sees, so never set it on a listener that clients reach directly.
    /// Unset (the default): the gateway's clock.
    #[serde(default)]
    pub time_header: Option<String>,
}

impl Default for Identity {
    fn default() -> Self {
        Identity {
            mode: IdentityMode::default(),
            account_header: default_account_header(),
            keys: Vec::new(),
            keys_file: None,
            trusted_proxy_hops: 0,
            headers: BTreeMap::new(),
            time_header: None,
        }
    }
}

fn default_account_header() -> String {
    "x-moat-account".to_owned()
}

/// How requests are attributed to accounts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentityMode {
    /// Look the client's API key up.
    #[default]
    ApiKey,
    /// Trust a header set by the provider's own authentication layer.
    Header,
}

/// One API key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyEntry {
    /// Hex SHA-256 of the key (`moat serve --hash-key` prints it); the key itself is never
    /// stored.
    pub sha256: String,
    /// The account the key belongs to.
    pub account: String,
    /// The key's public id, recorded as `api_key_id`.
    #[serde(default)]
    pub id: Option<String>,
}

/// The `keys_file` document.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysFile {
    /// The keys.
    #[serde(default)]
    pub keys: Vec<KeyEntry>,
}

/// `[policy]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySection {
    /// The rule file; without one every request is allowed (and still scored and recorded).
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// How often the file's modification time is checked for a hot reload (ms; 0 disables;
    /// the admin API and SIGHUP reload too).
    #[serde(default = "default_reload")]
    pub reload_interval_ms: u64,
    /// Where the policy actions applied from the dashboard (`/admin/actions`) are kept, as
    /// JSON, so that they survive a restart; written whole (a temporary file renamed over
    /// it) on every apply and revert, read at start (a damaged file stops the start). Unset:
    /// actions live in memory only and are lost on restart.
    #[serde(default)]
    pub actions_file: Option<PathBuf>,
}

impl Default for PolicySection {
    fn default() -> Self {
        PolicySection {
            file: None,
            reload_interval_ms: default_reload(),
            actions_file: None,
        }
    }
}

fn default_reload() -> u64 {
    2_000
}

/// `[store]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSection {
    /// Which store: `"sqlite"` (the embedded default, `path`) or `"postgres"` (scale-out:
    /// several gateways share one database, `url_env` and `schema`).
    #[serde(default)]
    pub backend: StoreBackend,
    /// SQLite database file (created if missing).
    #[serde(default = "default_db")]
    pub path: PathBuf,
    /// With `backend = "postgres"`: the environment variable holding the connection string
    /// (`host=… user=… dbname=…` or `postgres://…`; it may carry a password, so it is never
    /// written in this file or shown).
    #[serde(default)]
    pub url_env: Option<String>,
    /// With `backend = "postgres"`: the schema Moat's tables live in (created if missing).
    #[serde(default = "default_schema")]
    pub schema: String,
    /// Records waiting to be written before new ones spill to files. With the background
    /// writer this is the backlog a load peak can build in memory (a few hundred bytes to a
    /// few KiB per record); beyond it records spill to files, which the writer imports once
    /// it has caught up.
    #[serde(default = "default_queue")]
    pub queue: usize,
    /// Priority of the thread that writes to the store: `"background"` (the default: idle
    /// CPU time only, so a store write never delays a request; on Linux) or `"normal"`
    /// (shares the CPU with the request threads, so the store keeps up even on a core that
    /// requests keep fully busy).
    #[serde(default)]
    pub writer: WriterPriority,
    /// Folder for spill files (records that found the queue full).
    #[serde(default = "default_spill")]
    pub spill_dir: PathBuf,
    /// Also record the answer text and the reasoning returned to the client (the exchange
    /// log's optional `response.content` and `response.reasoning`); off by default, as the
    /// store then grows with every answer.
    #[serde(default)]
    pub record_text: bool,
}

impl Default for StoreSection {
    fn default() -> Self {
        StoreSection {
            backend: StoreBackend::default(),
            path: default_db(),
            url_env: None,
            schema: default_schema(),
            queue: default_queue(),
            writer: WriterPriority::default(),
            spill_dir: default_spill(),
            record_text: false,
        }
    }
}

fn default_db() -> PathBuf {
    PathBuf::from("moat.db")
}

fn default_schema() -> String {
    "moat".to_owned()
}

/// `[store] backend`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreBackend {
    /// The embedded SQLite file.
    #[default]
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

fn default_queue() -> usize {
    4_096
}

/// `[store] writer`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WriterPriority {
    /// Idle CPU time only.
    #[default]
    Background,
    /// Normal priority.
    Normal,
}

fn default_spill() -> PathBuf {
    PathBuf::from("moat-spill")
}

/// `[engine]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineSection {
    /// The accounts side file (exchange-log spec), loaded at start: sign-up facts and payment
    /// fingerprints for discovery and the policy's `account.*` fields.
    #[serde(default)]
    pub accounts_file: Option<PathBuf>,
    /// Requests waiting for the engine before new ones are counted as unscored.
    #[serde(default = "default_engine_queue")]
    pub queue: usize,
    /// Stream time between campaign-discovery passes (ms).
    #[serde(default = "default_discovery")]
    pub discovery_interval_ms: i64,
    /// At start, the exchanges the store recorded in this many past hours are replayed into
    /// the engine, so account and campaign state survive a restart (0: start empty). The
    /// default matches how long the engine keeps shared attributes.
    #[serde(default = "default_replay")]
    pub replay_hours: u32,
    /// Where standings come from: `"local"` (this gateway's own engine, fed by its own
    /// requests) or `"bus"` (scale-out: the consolidator's, over every gateway's traffic,
    /// watched in the `[bus]` stream's key-value bucket; needs `[bus] url_env`).
    #[serde(default)]
    pub source: EngineSource,
}

/// `[engine] source`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EngineSource {
    /// The gateway's own engine.
    #[default]
    Local,
    /// The consolidator's standings.
    Bus,
}

impl Default for EngineSection {
    fn default() -> Self {
        EngineSection {
            source: EngineSource::Local,
            accounts_file: None,
            queue: default_engine_queue(),
            discovery_interval_ms: default_discovery(),
            replay_hours: default_replay(),
        }
    }
}

fn default_engine_queue() -> usize {
    65_536
}

fn default_replay() -> u32 {
    7 * 24
}

fn default_discovery() -> i64 {
    moat_types::Timestamp::HOUR
}

/// `[reasoning]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReasoningSection {
    /// File holding the 32-byte sealing key as 64 hex digits. Without it (and without
    /// `key_env`) a random key is drawn at start, so tokens do not survive a restart.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// Environment variable holding the key as 64 hex digits.
    #[serde(default)]
    pub key_env: Option<String>,
    /// OpenAI-compatible chat endpoint base URL used to summarize reasoning
    /// (`summarize_reasoning`); without it summaries fall back as the rule says.
    #[serde(default)]
    pub summarizer_url: Option<String>,
    /// Model asked for summaries.
    #[serde(default)]
    pub summarizer_model: Option<String>,
    /// Time allowed for a summary (ms) before the fallback applies.
    #[serde(default = "default_summary_timeout")]
    pub summarizer_timeout_ms: u64,
}

impl Default for ReasoningSection {
    fn default() -> Self {
        ReasoningSection {
            key_file: None,
            key_env: None,
            summarizer_url: None,
            summarizer_model: None,
            summarizer_timeout_ms: default_summary_timeout(),
        }
    }
}

fn default_summary_timeout() -> u64 {
    10_000
}

/// `[admin]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Admin {
    /// Address of the admin listener (never expose it publicly).
    #[serde(default = "default_admin_addr")]
    pub addr: SocketAddr,
    /// Environment variable holding the admin token (`Authorization: Bearer`).
    #[serde(default = "default_admin_env")]
    pub token_env: String,
    /// Serve `/metrics` without the token (for a Prometheus scraper on a private network).
    #[serde(default)]
    pub public_metrics: bool,
}

impl Default for Admin {
    fn default() -> Self {
        Admin {
            addr: default_admin_addr(),
            token_env: default_admin_env(),
            public_metrics: false,
        }
    }
}

fn default_admin_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9090))
}

fn default_admin_env() -> String {
    "MOAT_ADMIN_TOKEN".to_owned()
}

/// `[failure]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Failure {
    /// `"open"`: when the engine has stopped or the store is failing, requests are served on
    /// the last known standing (policy still applies; records spill to files); `"closed"`:
    /// they are refused with 503 until both are back.
    #[serde(default)]
    pub mode: FailMode,
}

impl Default for Failure {
    fn default() -> Self {
        Failure {
            mode: FailMode::Open,
        }
    }
}

/// Fail open or closed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailMode {
    /// Serve anyway.
    #[default]
    Open,
    /// Refuse with 503.
    Closed,
}

impl Config {
    /// Parses and validates a configuration document; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let cfg: Config = toml::from_str(text).map_err(|e| ConfigError::Toml {
            origin: origin.to_owned(),
            message: toml_message(text, &e),
        })?;
        cfg.validate(origin)?;
        Ok(cfg)
    }

    /// Reads, parses and validates the file at `path` (and its `keys_file`, relative paths
    /// resolved against the config's folder).
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Io {
            path: origin.clone(),
            message: e.to_string(),
        })?;
        let mut cfg = Config::parse(&text, &origin)?;
        let base = path.parent().unwrap_or(Path::new("."));
        cfg.resolve_paths(base);
        if let Some(file) = cfg.identity.keys_file.clone() {
            let origin = file.display().to_string();
            let text = std::fs::read_to_string(&file).map_err(|e| ConfigError::Io {
                path: origin.clone(),
                message: e.to_string(),
            })?;
            let keys: KeysFile = toml::from_str(&text).map_err(|e| ConfigError::Toml {
                origin: origin.clone(),
                message: toml_message(&text, &e),
            })?;
            for (i, k) in keys.keys.iter().enumerate() {
                check_key(k, &format!("{origin}: keys[{i}]"))?;
            }
            cfg.identity.keys.extend(keys.keys);
        }
        Ok(cfg)
    }

    /// Makes relative paths relative to `base` (the config file's folder).
    fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        if let Some(p) = self.policy.file.as_mut() {
            fix(p);
        }
        if let Some(p) = self.policy.actions_file.as_mut() {
            fix(p);
        }
        if let Some(p) = self.identity.keys_file.as_mut() {
            fix(p);
        }
        if let Some(p) = self.engine.accounts_file.as_mut() {
            fix(p);
        }
        if let Some(p) = self.reasoning.key_file.as_mut() {
            fix(p);
        }
        fix(&mut self.store.path);
        fix(&mut self.store.spill_dir);
        if let Some(p) = self.intel.db.as_mut() {
            fix(p);
        }
        for p in self.intel.keys.values_mut() {
            fix(p);
        }
        for w in &mut self.alerts.webhooks {
            if let Some(p) = w.url_file.as_mut() {
                fix(p);
            }
        }
    }

    fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        let bad = |key: &str, reason: String| ConfigError::Invalid {
            origin: origin.to_owned(),
            key: key.to_owned(),
            reason,
        };
        if self.version != 1 {
            return Err(bad(
                "version",
                format!("expected 1, found {}", self.version),
            ));
        }
        let url = self.upstream.url.trim_end_matches('/');
        if !url.starts_with("http://") {
            return Err(bad(
                "upstream.url",
                "must be an http:// URL (terminate TLS in front of the model server)".to_owned(),
            ));
        }
        if url.ends_with("/v1") {
            return Err(bad(
                "upstream.url",
                "give the server's base URL without /v1: the request path is appended".to_owned(),
            ));
        }
        if self.listen.max_body_bytes == 0 {
            return Err(bad("listen.max_body_bytes", "must be positive".to_owned()));
        }
        if self.listen.addr == self.admin.addr {
            return Err(bad(
                "admin.addr",
                "must differ from listen.addr (the admin API has its own listener)".to_owned(),
            ));
        }
        if let Some(actions) = &self.policy.actions_file {
            if self.policy.file.as_ref() == Some(actions) {
                return Err(bad(
                    "policy.actions_file",
                    "must differ from policy.file (it is rewritten as JSON on every action)"
                        .to_owned(),
                ));
            }
        }
        if self.store.backend == StoreBackend::Postgres && self.store.url_env.is_none() {
            return Err(bad(
                "store.url_env",
                "backend = \"postgres\" needs the name of the environment variable that holds the connection string".to_owned(),
            ));
        }
        if self.store.schema.is_empty()
            || self.store.schema.len() > 63
            || !self
                .store
                .schema
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(bad(
                "store.schema",
                "must be 1 to 63 ASCII letters, digits or underscores".to_owned(),
            ));
        }
        if self.throttle.backend == ThrottleBackend::Redis && self.throttle.redis_url_env.is_none()
        {
            return Err(bad(
                "throttle.redis_url_env",
                "backend = \"redis\" needs the name of the environment variable that holds the Redis URL".to_owned(),
            ));
        }
        if self.engine.source == EngineSource::Bus && self.bus.url_env.is_none() {
            return Err(bad(
                "engine.source",
                "\"bus\" needs [bus] url_env: the standings come through the stream".to_owned(),
            ));
        }
        if self.bus.partitions == 0 || self.bus.partitions > 1024 {
            return Err(bad("bus.partitions", "must be 1 to 1024".to_owned()));
        }
        if self.intel.db.is_some() && self.intel.reload_interval_ms < 100 {
            return Err(bad(
                "intel.reload_interval_ms",
                "must be at least 100".to_owned(),
            ));
        }
        if !self.intel.keys.is_empty() && self.intel.db.is_none() {
            return Err(bad(
                "intel.keys",
                "keys without [intel] db: set the database the keys' partners are pulled into"
                    .to_owned(),
            ));
        }
        if self.throttle.timeout_ms == 0 {
            return Err(bad("throttle.timeout_ms", "must be positive".to_owned()));
        }
        if self.store.queue == 0 {
            return Err(bad("store.queue", "must be positive".to_owned()));
        }
        if self.engine.queue == 0 {
            return Err(bad("engine.queue", "must be positive".to_owned()));
        }
        if self.engine.discovery_interval_ms <= 0 {
            return Err(bad(
                "engine.discovery_interval_ms",
                "must be positive".to_owned(),
            ));
        }
        if self.identity.mode == IdentityMode::Header {
            check_header_name(&self.identity.account_header)
                .map_err(|r| bad("identity.account_header", r))?;
        }
        for (name, header) in &self.identity.headers {
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            {
                return Err(bad(
                    &format!("identity.headers.{name}"),
                    "attribute names are lowercase letters, digits and _".to_owned(),
                ));
            }
            check_header_name(header).map_err(|r| bad(&format!("identity.headers.{name}"), r))?;
        }
        if let Some(time) = &self.identity.time_header {
            check_header_name(time).map_err(|r| bad("identity.time_header", r))?;
            let same = |h: &str| h.eq_ignore_ascii_case(time);
            if (self.identity.mode == IdentityMode::Header && same(&self.identity.account_header))
                || self.identity.headers.values().any(|h| same(h))
            {
                return Err(bad(
                    "identity.time_header",
                    format!("{time:?} is already the account header or an edge attribute header"),
                ));
            }
        }
        for (i, k) in self.identity.keys.iter().enumerate() {
            check_key(k, &format!("{origin}: identity.keys[{i}]"))?;
        }
        if self.reasoning.summarizer_url.is_some() && self.reasoning.summarizer_model.is_none() {
            return Err(bad(
                "reasoning.summarizer_model",
                "required with summarizer_url".to_owned(),
            ));
        }
        Ok(())
    }
}

fn check_header_name(name: &str) -> Result<(), String> {
    if http::HeaderName::from_bytes(name.as_bytes()).is_err() || name.is_empty() {
        return Err(format!("{name:?} is not a valid header name"));
    }
    Ok(())
}

fn check_key(k: &KeyEntry, at: &str) -> Result<(), ConfigError> {
    let bad = |key: &str, reason: &str| ConfigError::Invalid {
        origin: at.to_owned(),
        key: key.to_owned(),
        reason: reason.to_owned(),
    };
    if k.sha256.len() != 64 || !k.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad("sha256", "expected 64 hex digits (the key's SHA-256)"));
    }
    if k.account.is_empty() {
        return Err(bad("account", "must not be empty"));
    }
    Ok(())
}

/// A TOML error with its line and column, without quoting the document (it may hold paths
/// an operator considers private, never secrets, but the quote adds nothing).
fn toml_message(text: &str, e: &toml::de::Error) -> String {
    match e.span() {
        Some(span) => {
            let (line, col) = line_col(text, span.start);
            format!("{line}:{col}: {}", e.message())
        }
        None => e.message().to_owned(),
    }
}

/// 1-based line and column of byte offset `at` in `text`.
pub(crate) fn line_col(text: &str, at: usize) -> (usize, usize) {
    let before = text.get(..at).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "version = 1\n[upstream]\nurl = \"http://127.0.0.1:8000\"\n";

    #[test]
    fn minimal_config_takes_defaults() {
        let cfg = Config::parse(MINIMAL, "moat.toml").unwrap();
        assert_eq!(cfg.listen.addr, default_addr());
        assert_eq!(cfg.identity.mode, IdentityMode::ApiKey);
        assert_eq!(cfg.failure.mode, FailMode::Open);
        assert!(cfg.policy.file.is_none());
    }

    #[test]
    fn store_writer_priority_is_background_unless_set() {
        let cfg = Config::parse(MINIMAL, "c").unwrap();
        assert_eq!(cfg.store.writer, WriterPriority::Background);
        let cfg = Config::parse(&format!("{MINIMAL}[store]\nwriter = \"normal\"\n"), "c").unwrap();
        assert_eq!(cfg.store.writer, WriterPriority::Normal);
        let err = Config::parse(&format!("{MINIMAL}[store]\nwriter = \"idle\"\n"), "c")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("writer") || err.contains("background"),
            "{err}"
        );
    }

    #[test]
    fn misspelt_key_fails_with_line_and_column() {
        let text = "version = 1\n[upstream]\nurl = \"http://x:1\"\n[failure]\nmdoe = \"closed\"\n";
        let err = Config::parse(text, "moat.toml").unwrap_err().to_string();
        assert!(err.starts_with("moat.toml: 5:1:"), "{err}");
        assert!(err.contains("mdoe"), "{err}");
    }

    #[test]
    fn wrong_version_and_bad_url_are_named() {
        let err = Config::parse("version = 2\n[upstream]\nurl = \"http://x:1\"\n", "c")
            .unwrap_err()
            .to_string();
        assert!(err.contains("version"), "{err}");
        let err = Config::parse("version = 1\n[upstream]\nurl = \"http://x:1/v1\"\n", "c")
            .unwrap_err()
            .to_string();
        assert!(err.contains("upstream.url"), "{err}");
    }

    #[test]
    fn bad_key_digest_is_rejected_without_echoing_it() {
        let text =
            format!("{MINIMAL}[[identity.keys]]\nsha256 = \"sk-live-secret\"\naccount = \"a\"\n");
        let err = Config::parse(&text, "c").unwrap_err().to_string();
        assert!(err.contains("identity.keys[0]"), "{err}");
        assert!(!err.contains("sk-live-secret"), "{err}");
    }

    #[test]
    fn attribute_header_names_are_checked() {
        let text = format!("{MINIMAL}[identity.headers]\n\"Bad Name\" = \"x-tier\"\n");
        assert!(Config::parse(&text, "c").is_err());
        let text = format!("{MINIMAL}[identity.headers]\ntier = \"x tier\"\n");
        assert!(Config::parse(&text, "c").is_err());
        let text =
            format!("{MINIMAL}[identity.headers]\ntier = \"x-account-tier\"\nasn = \"x-asn\"\n");
        assert_eq!(Config::parse(&text, "c").unwrap().identity.headers.len(), 2);
    }

    #[test]
    fn engine_source_bus_needs_the_bus() {
        assert_eq!(
            Config::parse(MINIMAL, "c").unwrap().engine.source,
            EngineSource::Local
        );
        let err = Config::parse(&format!("{MINIMAL}[engine]\nsource = \"bus\"\n"), "c")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("engine.source") && err.contains("url_env"),
            "{err}"
        );
        let text = format!("{MINIMAL}[engine]\nsource = \"bus\"\n[bus]\nurl_env = \"NATS\"\n");
        assert_eq!(
            Config::parse(&text, "c").unwrap().engine.source,
            EngineSource::Bus
        );
        assert!(Config::parse(&format!("{MINIMAL}[engine]\nsource = \"nope\"\n"), "c").is_err());
    }

    #[test]
    fn actions_file_is_optional_resolved_and_not_the_policy_file() {
        assert!(Config::parse(MINIMAL, "c")
            .unwrap()
            .policy
            .actions_file
            .is_none());
        let text = format!("{MINIMAL}[policy]\nfile = \"p.toml\"\nactions_file = \"p.toml\"\n");
        let err = Config::parse(&text, "c").unwrap_err().to_string();
        assert!(err.contains("policy.actions_file"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("moat.toml");
        std::fs::write(
            &path,
            format!("{MINIMAL}[policy]\nactions_file = \"state/actions.json\"\n"),
        )
        .unwrap();
        let cfg = Config::load(&path).unwrap();
        assert_eq!(
            cfg.policy.actions_file,
            Some(dir.path().join("state/actions.json"))
        );
    }

    #[test]
    fn time_header_is_optional_and_checked() {
        assert_eq!(
            Config::parse(MINIMAL, "c").unwrap().identity.time_header,
            None
        );
        let text = format!("{MINIMAL}[identity]\ntime_header = \"x-moat-time\"\n");
        let cfg = Config::parse(&text, "c").unwrap();
        assert_eq!(cfg.identity.time_header.as_deref(), Some("x-moat-time"));
        let text = format!("{MINIMAL}[identity]\ntime_header = \"x moat time\"\n");
        let err = Config::parse(&text, "c").unwrap_err().to_string();
        assert!(err.contains("identity.time_header"), "{err}");
        let text =
            format!("{MINIMAL}[identity]\nmode = \"header\"\ntime_header = \"X-Moat-Account\"\n");
        let err = Config::parse(&text, "c").unwrap_err().to_string();
        assert!(err.contains("identity.time_header"), "{err}");
        let text = format!(
            "{MINIMAL}[identity]\ntime_header = \"x-asn\"\nheaders = {{ asn = \"x-asn\" }}\n"
        );
        let err = Config::parse(&text, "c").unwrap_err().to_string();
        assert!(err.contains("identity.time_header"), "{err}");
    }
}

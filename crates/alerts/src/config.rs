//! The `[alerts]` section of the gateway's configuration: the webhooks alerts go to, and the
//! deduplication, growth thresholds and queue shared by all of them. Deserialized with the rest
//! of the file (every struct refuses unknown keys), then [`AlertsConfig::validate`] checks it,
//! reads the webhook URLs and gives the [`Settings`] the dispatcher runs on; every error names
//! its key path (`alerts.webhook[1].url_env: variable MOAT_SLACK_URL is not set`).
//!
//! Webhook URLs are secrets (a Slack URL's path is its token), so they are never written in the
//! file: each webhook names the environment variable (`url_env`) or the file (`url_file`) that
//! holds its URL. Once read, a URL lives in a [`WebhookUrl`], whose `Debug` and `Display` show
//! only its scheme and host; no error, log line or statistic ever quotes one.
//!
//! ```toml
//! [alerts]
//! dedup_window_s = 3600
//! growth_thresholds = [100, 1000, 10000]
//!
//! [[alerts.webhook]]
//! name = "investigators"
//! format = "slack"
//! url_env = "MOAT_SLACK_URL"
//! events = ["campaign_discovered", "campaign_grew"]
//! ```
//!
//! Not the delivery ([`crate::dispatch`]).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use http::Uri;
use serde::{Deserialize, Serialize};

use crate::alert::{crossed_threshold, AlertKind};
use crate::AlertsError;

/// `alerts.dedup_window_s` when the file does not set it: an hour.
pub const DEFAULT_DEDUP_WINDOW_S: u64 = 3600;
/// `alerts.growth_thresholds` when the file does not set them (accounts).
pub const DEFAULT_GROWTH_THRESHOLDS: [u64; 3] = [100, 1000, 10_000];
/// `alerts.queue` when the file does not set it.
pub const DEFAULT_QUEUE: usize = 1024;
/// `min_interval_ms` of a webhook when the file does not set it.
pub const DEFAULT_MIN_INTERVAL_MS: u64 = 1000;
/// `timeout_ms` of a webhook when the file does not set it.
pub const DEFAULT_TIMEOUT_MS: u64 = 5000;
/// `max_attempts` of a webhook when the file does not set it.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;
/// `backoff_initial_ms` of a webhook when the file does not set it.
pub const DEFAULT_BACKOFF_INITIAL_MS: u64 = 500;
/// `backoff_max_ms` of a webhook when the file does not set it.
pub const DEFAULT_BACKOFF_MAX_MS: u64 = 60_000;
/// `max_batch` of a webhook when the file does not set it.
pub const DEFAULT_MAX_BATCH: usize = 100;

/// Largest `max_attempts` accepted.
const MAX_ATTEMPTS_LIMIT: u32 = 100;
/// Largest `timeout_ms` accepted (ten minutes).
const MAX_TIMEOUT_MS: u64 = 600_000;
/// Largest `alerts.queue` accepted.
const MAX_QUEUE: usize = 1 << 20;
/// Largest `max_batch` accepted.
const MAX_BATCH_LIMIT: usize = 10_000;
/// Longest webhook URL accepted, in bytes.
const MAX_URL_BYTES: usize = 4096;

/// `[alerts]` as written. The default has no webhook: alerts are off.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {
    /// Seconds during which an alert with the same key ([`crate::Alert::dedup_key`]) is not
    /// sent to the same webhook again; 0 turns deduplication off.
    #[serde(default = "default_dedup_window_s")]
    pub dedup_window_s: u64,
    /// Campaign sizes (accounts) whose crossing is worth a `campaign_grew` alert, ascending.
    #[serde(default = "default_growth_thresholds")]
    pub growth_thresholds: Vec<u64>,
    /// Alerts waiting for the dispatcher, at most; past it new alerts are dropped and counted
    /// (the sender never waits).
    #[serde(default = "default_queue")]
    pub queue: usize,
    /// The `[[alerts.webhook]]` entries, in file order.
    #[serde(default, rename = "webhook")]
    pub webhooks: Vec<WebhookConfig>,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            dedup_window_s: default_dedup_window_s(),
            growth_thresholds: default_growth_thresholds(),
            queue: default_queue(),
            webhooks: Vec::new(),
        }
    }
}

/// One `[[alerts.webhook]]` as written.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Its name in statistics and logs: 1 to 64 of `a-z`, `0-9`, `_`, `-`, unique.
    pub name: String,
    /// The body posted: `"json"` (generic) or `"slack"` (Slack-compatible).
    pub format: WebhookFormat,
    /// The environment variable holding the URL (exactly one of `url_env` and `url_file`).
    #[serde(default)]
    pub url_env: Option<String>,
    /// The file holding the URL, relative to the configuration file's folder (exactly one of
    /// `url_env` and `url_file`).
    #[serde(default)]
    pub url_file: Option<PathBuf>,
    /// The kinds of alert sent to it; all of them when absent.
    #[serde(default = "default_events")]
    pub events: Vec<AlertKind>,
    /// At most one POST per this many milliseconds; alerts arriving faster wait and go in
    /// the next POST together (0: no limit).
    #[serde(default = "default_min_interval_ms")]
    pub min_interval_ms: u64,
    /// How long one POST may take, connection and answer included (ms).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// POSTs of one batch at most, the first included, before it is given up.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// The wait before the first retry (ms); it doubles with every retry, with jitter.
    #[serde(default = "default_backoff_initial_ms")]
    pub backoff_initial_ms: u64,
    /// The longest wait between two attempts (ms), a server's `Retry-After` included.
    #[serde(default = "default_backoff_max_ms")]
    pub backoff_max_ms: u64,
    /// Alerts waiting for this webhook's next POST, at most (and so the most in one POST);
    /// past it alerts are dropped and counted.
    #[serde(default = "default_max_batch")]
    pub max_batch: usize,
}

/// The body a webhook is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookFormat {
    /// `{"source": "moat", "v": 1, "alerts": [...]}` ([`crate::render_json`]).
    Json,
    /// `{"text": ..., "blocks": [...]}` ([`crate::render_slack`]).
    Slack,
}

fn default_dedup_window_s() -> u64 {
    DEFAULT_DEDUP_WINDOW_S
}

fn default_growth_thresholds() -> Vec<u64> {
    DEFAULT_GROWTH_THRESHOLDS.to_vec()
}

fn default_queue() -> usize {
    DEFAULT_QUEUE
}

fn default_events() -> Vec<AlertKind> {
    AlertKind::ALL.to_vec()
}

fn default_min_interval_ms() -> u64 {
    DEFAULT_MIN_INTERVAL_MS
}

fn default_timeout_ms() -> u64 {
    DEFAULT_TIMEOUT_MS
}

fn default_max_attempts() -> u32 {
    DEFAULT_MAX_ATTEMPTS
}

fn default_backoff_initial_ms() -> u64 {
    DEFAULT_BACKOFF_INITIAL_MS
}

fn default_backoff_max_ms() -> u64 {
    DEFAULT_BACKOFF_MAX_MS
}

fn default_max_batch() -> usize {
    DEFAULT_MAX_BATCH
}

/// A validated `[alerts]` section, URLs read: what [`crate::Dispatcher::start`] runs on.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How long a sent alert key suppresses the same key (zero: no deduplication).
    pub dedup_window: Duration,
    /// Growth thresholds, ascending.
    pub growth_thresholds: Vec<u64>,
    /// Capacity of the dispatcher's queue.
    pub queue: usize,
    /// The webhooks, in file order.
    pub webhooks: Vec<Webhook>,
}

impl Settings {
    /// The growth threshold a campaign crossed going from `from` to `to` accounts, if any
    /// ([`crossed_threshold`] over this configuration's thresholds).
    pub fn crossed_threshold(&self, from: u64, to: u64) -> Option<u64> {
        crossed_threshold(&self.growth_thresholds, from, to)
    }
}

/// A validated webhook.
#[derive(Debug, Clone)]
pub struct Webhook {
    /// Its name.
    pub name: String,
    /// Its body format.
    pub format: WebhookFormat,
    /// Its URL (a secret: `Debug` and `Display` show the scheme and host only).
    pub url: WebhookUrl,
    /// The kinds of alert it is sent, without repeats.
    pub events: Vec<AlertKind>,
    /// The shortest time between two POSTs.
    pub min_interval: Duration,
    /// The time one POST may take.
    pub timeout: Duration,
    /// POSTs of one batch at most.
    pub max_attempts: u32,
    /// The first retry's wait.
    pub backoff_initial: Duration,
    /// The longest wait between attempts.
    pub backoff_max: Duration,
    /// The most alerts waiting for, and sent in, one POST.
    pub max_batch: usize,
}

impl Webhook {
    /// Whether alerts of `kind` go to this webhook.
    pub fn wants(&self, kind: AlertKind) -> bool {
        self.events.contains(&kind)
    }
}

/// A webhook URL: `http` or `https`, with a host, without credentials or fragment. Its path and
/// query are a secret (Slack's token lives there), so `Debug` and `Display` show only
/// `scheme://host[:port]`; [`WebhookUrl::expose`] gives the whole URL to whoever sends the
/// request.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookUrl(Uri);

impl WebhookUrl {
    /// Parses a URL (surrounding whitespace ignored). The error says what is wrong without
    /// quoting the URL.
    pub fn parse(text: &str) -> Result<WebhookUrl, &'static str> {
        let text = text.trim();
        if text.is_empty() {
            return Err("the URL is empty");
        }
        if text.len() > MAX_URL_BYTES {
            return Err("the URL is longer than 4096 bytes");
        }
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("the URL holds whitespace or control characters");
        }
        if text.contains('#') {
            return Err("the URL must not have a fragment");
        }
        let uri: Uri = text.parse().map_err(|_| "the value is not a URL")?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) {
            return Err("the URL must start with http:// or https://");
        }
        let Some(authority) = uri.authority() else {
            return Err("the URL has no host");
        };
        if authority.as_str().contains('@') {
            return Err("the URL must not hold a user name or password before the host");
        }
        if authority.host().is_empty() {
            return Err("the URL has no host");
        }
        Ok(WebhookUrl(uri))
    }

    /// The whole URL, secret part included: for the request itself, never for display.
    pub fn expose(&self) -> &Uri {
        &self.0
    }

    /// Whether the URL is `https`.
    pub fn is_https(&self) -> bool {
        self.0.scheme_str() == Some("https")
    }
}

impl fmt::Display for WebhookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = self.0.scheme_str().unwrap_or("?");
        let host = self.0.host().unwrap_or("?");
        match self.0.port_u16() {
            Some(port) => write!(f, "{scheme}://{host}:{port}"),
            None => write!(f, "{scheme}://{host}"),
        }
    }
}

impl fmt::Debug for WebhookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WebhookUrl({self}/<redacted>)")
    }
}

impl AlertsConfig {
    /// Parses a TOML document whose only table is `[alerts]` (for tests and tools; the gateway
    /// deserializes [`AlertsConfig`] as part of its own file). Not validated.
    pub fn from_toml(text: &str) -> Result<AlertsConfig, AlertsError> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Document {
            /// The section.
            #[serde(default)]
            alerts: AlertsConfig,
        }
        let doc: Document = toml::from_str(text).map_err(|e| AlertsError::Toml {
            message: toml_message(text, &e),
        })?;
        Ok(doc.alerts)
    }

    /// Checks every value and reads every webhook URL: `url_env` through `env` (in production
    /// `|name| std::env::var(name).ok()`), `url_file` relative to `base_dir` (the
    /// configuration file's folder). Errors name the key (`alerts.webhook[0].url_file`),
    /// never the URL.
    pub fn validate(
        &self,
        base_dir: &Path,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Settings, AlertsError> {
        if self.queue == 0 || self.queue > MAX_QUEUE {
            return Err(AlertsError::config(
                "alerts.queue",
                format!("must be 1 to {MAX_QUEUE}"),
            ));
        }
        if self.growth_thresholds.contains(&0)
            || self.growth_thresholds.windows(2).any(|w| w[0] >= w[1])
        {
            return Err(AlertsError::config(
                "alerts.growth_thresholds",
                "must be positive and strictly ascending",
            ));
        }
        let mut names: BTreeMap<&str, usize> = BTreeMap::new();
        let mut webhooks = Vec::with_capacity(self.webhooks.len());
        for (i, w) in self.webhooks.iter().enumerate() {
            let key = |field: &str| format!("alerts.webhook[{i}].{field}");
            if !valid_name(&w.name) {
                return Err(AlertsError::config(
                    key("name"),
                    format!("{:?} must be 1 to 64 of a-z, 0-9, '_', '-'", w.name),
                ));
            }
            if let Some(first) = names.insert(&w.name, i) {
                return Err(AlertsError::config(
                    key("name"),
                    format!(
                        "{:?} is already the name of alerts.webhook[{first}]",
                        w.name
                    ),
                ));
            }
            let url = match (&w.url_env, &w.url_file) {
                (Some(_), Some(_)) => {
                    return Err(AlertsError::config(
                        key("url_env"),
                        "give url_env or url_file, not both",
                    ))
                }
                (None, None) => {
                    return Err(AlertsError::config(
                        key("url_env"),
                        "missing: give url_env (an environment variable) or url_file (a file) \
                         holding the URL; URLs are secrets and never written here",
                    ))
                }
                (Some(var), None) => {
                    if var.is_empty() || var.contains('=') || var.contains('\0') {
                        return Err(AlertsError::config(
                            key("url_env"),
                            format!("{var:?} is not an environment variable name"),
                        ));
                    }
                    let value = env(var).filter(|v| !v.trim().is_empty()).ok_or_else(|| {
                        AlertsError::config(key("url_env"), format!("variable {var} is not set"))
                    })?;
                    WebhookUrl::parse(&value).map_err(|reason| {
                        AlertsError::config(key("url_env"), format!("variable {var}: {reason}"))
                    })?
                }
                (None, Some(file)) => {
                    let path = if file.is_relative() {
                        base_dir.join(file)
                    } else {
                        file.clone()
                    };
                    let text = std::fs::read_to_string(&path).map_err(|e| {
                        AlertsError::config(
                            key("url_file"),
                            format!("cannot read {}: {e}", path.display()),
                        )
                    })?;
                    WebhookUrl::parse(&text).map_err(|reason| {
                        AlertsError::config(
                            key("url_file"),
                            format!("{}: {reason}", path.display()),
                        )
                    })?
                }
            };
            if w.events.is_empty() {
                return Err(AlertsError::config(
                    key("events"),
                    "must name at least one of campaign_discovered, campaign_grew, \
                     action_applied (leave it out for all)",
                ));
            }
            let mut events = Vec::with_capacity(w.events.len());
            for &e in &w.events {
                if !events.contains(&e) {
                    events.push(e);
                }
            }
            if w.timeout_ms == 0 || w.timeout_ms > MAX_TIMEOUT_MS {
                return Err(AlertsError::config(
                    key("timeout_ms"),
                    format!("must be 1 to {MAX_TIMEOUT_MS}"),
                ));
            }
            if w.max_attempts == 0 || w.max_attempts > MAX_ATTEMPTS_LIMIT {
                return Err(AlertsError::config(
                    key("max_attempts"),
                    format!("must be 1 to {MAX_ATTEMPTS_LIMIT}"),
                ));
            }
            if w.backoff_initial_ms == 0 {
                return Err(AlertsError::config(
                    key("backoff_initial_ms"),
                    "must be positive",
                ));
            }
            if w.backoff_max_ms < w.backoff_initial_ms {
                return Err(AlertsError::config(
                    key("backoff_max_ms"),
                    format!(
                        "must be at least backoff_initial_ms ({})",
                        w.backoff_initial_ms
                    ),
                ));
            }
            if w.max_batch == 0 || w.max_batch > MAX_BATCH_LIMIT {
                return Err(AlertsError::config(
                    key("max_batch"),
                    format!("must be 1 to {MAX_BATCH_LIMIT}"),
                ));
            }
            webhooks.push(Webhook {
                name: w.name.clone(),
                format: w.format,
                url,
                events,
                min_interval: Duration::from_millis(w.min_interval_ms),
                timeout: Duration::from_millis(w.timeout_ms),
                max_attempts: w.max_attempts,
                backoff_initial: Duration::from_millis(w.backoff_initial_ms),
                backoff_max: Duration::from_millis(w.backoff_max_ms),
                max_batch: w.max_batch,
            });
        }
        Ok(Settings {
            dedup_window: Duration::from_secs(self.dedup_window_s),
            growth_thresholds: self.growth_thresholds.clone(),
            queue: self.queue,
            webhooks,
        })
    }
}

/// Whether `name` is 1 to 64 of `a-z`, `0-9`, `_`, `-`.
fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// A TOML error with its line and column, without quoting the document: a URL written inline
/// by mistake (an unknown key) must not be echoed back.
fn toml_message(text: &str, e: &toml::de::Error) -> String {
    match e.span() {
        Some(span) => {
            let before = text.get(..span.start).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("line {line}, column {column}: {}", e.message().trim_end())
        }
        None => e.message().trim_end().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    const SECRET: &str = "T0000/B0000/XXXXsecretXXXX";

    fn env_with(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| map.get(k).cloned()
    }

    fn err_of(doc: &str, env: &[(&str, &str)]) -> String {
        AlertsConfig::from_toml(doc)
            .unwrap()
            .validate(Path::new("/nonexistent"), env_with(env))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn an_empty_document_gives_the_defaults_and_no_webhook() {
        let c = AlertsConfig::from_toml("").unwrap();
        assert_eq!(c, AlertsConfig::default());
        let s = c.validate(Path::new("."), |_| None).unwrap();
        assert_eq!(s.dedup_window, Duration::from_secs(3600));
        assert_eq!(s.growth_thresholds, vec![100, 1000, 10_000]);
        assert_eq!(s.queue, 1024);
        assert!(s.webhooks.is_empty());
    }

    #[test]
    fn a_webhook_takes_the_documented_defaults() {
        let doc = "[[alerts.webhook]]\nname = \"ops\"\nformat = \"json\"\nurl_env = \"U\"\n";
        let s = AlertsConfig::from_toml(doc)
            .unwrap()
            .validate(Path::new("."), env_with(&[("U", "https://h.example/x")]))
            .unwrap();
        let w = &s.webhooks[0];
        assert_eq!(w.name, "ops");
        assert_eq!(w.format, WebhookFormat::Json);
        assert_eq!(w.events, AlertKind::ALL.to_vec());
        assert_eq!(w.min_interval, Duration::from_millis(1000));
        assert_eq!(w.timeout, Duration::from_millis(5000));
        assert_eq!(w.max_attempts, 5);
        assert_eq!(w.backoff_initial, Duration::from_millis(500));
        assert_eq!(w.backoff_max, Duration::from_millis(60_000));
        assert_eq!(w.max_batch, 100);
    }

    #[test]
    fn a_full_section_parses() {
        let doc = r#"
[alerts]
dedup_window_s = 60
growth_thresholds = [10, 50]
queue = 8

[[alerts.webhook]]
name = "generic"
format = "json"
url_env = "MOAT_HOOK"
events = ["action_applied", "action_applied"]
min_interval_ms = 0
timeout_ms = 100
max_attempts = 2
backoff_initial_ms = 10
backoff_max_ms = 20
max_batch = 3

[[alerts.webhook]]
name = "slack-1"
format = "slack"
url_file = "slack.url"
"#;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("slack.url"),
            format!("https://hooks.slack.com/services/{SECRET}\n"),
        )
        .unwrap();
        let s = AlertsConfig::from_toml(doc)
            .unwrap()
            .validate(
                dir.path(),
                env_with(&[("MOAT_HOOK", "http://127.0.0.1:9/h")]),
            )
            .unwrap();
        assert_eq!(s.dedup_window, Duration::from_secs(60));
        assert_eq!(s.queue, 8);
        assert_eq!(s.webhooks.len(), 2);
        assert_eq!(s.webhooks[0].events, vec![AlertKind::ActionApplied]);
        assert!(s.webhooks[0].wants(AlertKind::ActionApplied));
        assert!(!s.webhooks[0].wants(AlertKind::CampaignGrew));
        assert_eq!(s.webhooks[0].min_interval, Duration::ZERO);
        assert_eq!(s.webhooks[1].format, WebhookFormat::Slack);
        assert!(s.webhooks[1].url.is_https());
        assert_eq!(
            s.webhooks[1].url.expose().path(),
            format!("/services/{SECRET}")
        );
        assert_eq!(s.crossed_threshold(5, 60), Some(50));
        assert!(!format!("{s:?}").contains("secret"), "{s:?}");
    }

    #[test]
    fn errors_name_their_key_path() {
        let two = "[[alerts.webhook]]\nname = \"a\"\nformat = \"json\"\nurl_env = \"A\"\n\
                   [[alerts.webhook]]\nname = \"b\"\nformat = \"slack\"\nurl_env = \"MOAT_SLACK_URL\"\n";
        assert_eq!(
            err_of(two, &[("A", "https://a.example/x")]),
            "alerts.webhook[1].url_env: variable MOAT_SLACK_URL is not set"
        );
        let cases: &[(&str, &str)] = &[
            ("[alerts]\nqueue = 0\n", "alerts.queue: "),
            (
                "[alerts]\ngrowth_thresholds = [100, 100]\n",
                "alerts.growth_thresholds: ",
            ),
            (
                "[[alerts.webhook]]\nname = \"Bad Name\"\nformat = \"json\"\nurl_env = \"A\"\n",
                "alerts.webhook[0].name: ",
            ),
            (
                "[[alerts.webhook]]\nname = \"a\"\nformat = \"json\"\nurl_env = \"A\"\n\
                 [[alerts.webhook]]\nname = \"a\"\nformat = \"json\"\nurl_env = \"A\"\n",
                "alerts.webhook[1].name: \"a\" is already the name of alerts.webhook[0]",
            ),
            (
                "[[alerts.webhook]]\nname = \"a\"\nformat = \"json\"\n",
                "alerts.webhook[0].url_env: missing",
            ),
            (
                "[[alerts.webhook]]\nname = \"a\"\nformat = \"json\"\nurl_env = \"A\"\nurl_file = \"f\"\n",
                "alerts.webhook[0].url_env: give url_env or url_file, not both",
            ),
            (
                "[[alerts.webhook]]\nname = \"a\"\nformat = \"json\"\nurl_file = \"missing.url\"\n",
                "alerts.webhook[0].url_file: cannot read /nonexistent/missing.url",
            ),
            (
                "[[alerts.webhook]]\nname = \"a\"\nformat = \"json\"\nurl_env = \"A\"\nevents = []\n",
                "alerts.webhook[0].events: ",
            ),
            (
                "[[alerts.webhook]]\nname = \"a\"\nformat = \"json\"\nurl_env = \"A\"\ntimeout_ms = 0\n",
                "alerts.webhook[0].timeout_ms: ",
            ),
            (
                "[[alerts.webhook]]\nname = \"a\"\nformat = \"json\"\nurl_env = \"A\"\nmax_attempts = 0\n",
                "alerts.webhook[0].max_attempts: ",
            ),
            (
                "[[alerts.webhook]]\nname = \"a\"\nformat = \"json\"\nurl_env = \"A\"\nbackoff_initial_ms = 0\n",
                "alerts.webhook[0].backoff_initial_ms: ",
            ),
            (
                "[[alerts.webhook]]\nname = \"a\"\nformat = \"json\"\nurl_env = \"A\"\nbackoff_max_ms = 100\n",
                "alerts.webhook[0].backoff_max_ms: must be at least backoff_initial_ms (500)",
            ),
            (
                "[[alerts.webhook]]\nname = \"a\"\nformat = \"json\"\nurl_env = \"A\"\nmax_batch = 0\n",
                "alerts.webhook[0].max_batch: ",
            ),
        ];
        for (doc, want) in cases {
            let got = err_of(doc, &[("A", "https://a.example/x")]);
            assert!(got.starts_with(want), "{doc}\n got: {got}\nwant: {want}…");
        }
    }

    #[test]
    fn bad_urls_are_refused_without_quoting_them() {
        let doc = "[[alerts.webhook]]\nname = \"a\"\nformat = \"slack\"\nurl_env = \"U\"\n";
        for (url, reason) in [
            (
                "ftp://h.example/T0000/secret",
                "must start with http:// or https://",
            ),
            ("hooks.slack.com/services/secret", "not a URL"),
            (
                "mailto:secret@h.example",
                "must start with http:// or https://",
            ),
            ("https://user:secret@h.example/x", "user name or password"),
            ("https://h.example/x#secret", "fragment"),
            ("https://h.example/a secret", "whitespace"),
            ("   ", "is not set"),
        ] {
            let e = err_of(doc, &[("U", url)]);
            assert!(e.starts_with("alerts.webhook[0].url_env: "), "{e}");
            assert!(e.contains(reason), "{url}: {e}");
            assert!(!e.contains("secret"), "{e}");
        }
    }

    #[test]
    fn unknown_keys_fail_without_echoing_the_line() {
        // A URL written inline by mistake is refused, and the error does not repeat it.
        let doc = format!(
            "[[alerts.webhook]]\nname = \"a\"\nformat = \"slack\"\nurl = \"https://hooks.slack.com/services/{SECRET}\"\n"
        );
        let e = AlertsConfig::from_toml(&doc).unwrap_err().to_string();
        assert!(e.contains("unknown field `url`"), "{e}");
        assert!(e.contains("line 4"), "{e}");
        assert!(!e.contains("secret"), "{e}");
        let e = AlertsConfig::from_toml("[alerts]\ndedup_windows = 3\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("dedup_windows"), "{e}");
        let e = AlertsConfig::from_toml(
            "[[alerts.webhook]]\nname = \"a\"\nformat = \"teams\"\nurl_env = \"U\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("teams"), "{e}");
        let e = AlertsConfig::from_toml(
            "[[alerts.webhook]]\nname = \"a\"\nformat = \"json\"\nurl_env = \"U\"\nevents = [\"campaign_shrank\"]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("campaign_shrank"), "{e}");
    }

    #[test]
    fn a_url_shows_only_its_scheme_and_host() {
        let u = WebhookUrl::parse(&format!(
            "https://hooks.slack.com/services/{SECRET}?token=abc"
        ))
        .unwrap();
        assert_eq!(u.to_string(), "https://hooks.slack.com");
        let debug = format!("{u:?}");
        assert!(debug.contains("hooks.slack.com"), "{debug}");
        assert!(
            !debug.contains("secret") && !debug.contains("token"),
            "{debug}"
        );
        let local = WebhookUrl::parse("http://127.0.0.1:8080/hook/secret").unwrap();
        assert_eq!(local.to_string(), "http://127.0.0.1:8080");
        assert!(!local.is_https());
    }

    #[test]
    fn names_are_lowercase_digits_dash_underscore_up_to_64() {
        assert!(valid_name("slack-1_ops"));
        assert!(valid_name(&"a".repeat(64)));
        assert!(!valid_name(&"a".repeat(65)));
        assert!(!valid_name(""));
        assert!(!valid_name("Ops"));
        assert!(!valid_name("a.b"));
    }
}

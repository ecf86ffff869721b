//! Scenario files: what populations a simulation contains, how large and how they behave.
//!
//! A scenario is one TOML file with `version = 1` (see `scenarios/*.toml` for documented
//! examples). Every table rejects unknown keys, so a misspelled knob fails loudly instead of
//! silently taking its default. Loading is parse → validate; both steps report the file and the
//! dotted key path of the problem (`campaigns[2].accounts: must be > 0`).
//!
//! This module only describes and checks; turning a scenario into accounts and traffic is the
//! job of `world` and the populations. Counts here are at scale 1: `SimOptions::scale`
//! multiplies them at run time.

pub(crate) mod knobs;
mod validate;

use std::path::Path;

use moat_types::Timestamp;
use serde::Deserialize;

use crate::SimError;

/// A parsed and validated scenario.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Version of the scenario format; must be 1.
    pub version: u32,
    /// Short name, used in reports and the summary.
    pub name: String,
    /// What the scenario is for, in a sentence or two.
    #[serde(default)]
    pub description: String,
    /// First instant of simulated traffic (RFC 3339 string, e.g. `"2026-03-02T00:00:00Z"`).
    pub start: Timestamp,
    /// Length of the simulated window in days (1–366).
    pub days: u32,
    /// Models the API serves. The first is the default; a model with `released_at` inside the
    /// window appears mid-scenario.
    pub models: Vec<Model>,
    /// Ordinary users.
    #[serde(default)]
    pub benign: Benign,
    /// Legitimate heavy users: app backends, evaluation harnesses, enterprises.
    #[serde(default)]
    pub benign_heavy: BenignHeavy,
    /// Accounts that only try jailbreaks (class `jailbreak`, no campaign).
    #[serde(default)]
    pub jailbreak: Jailbreak,
    /// Distillation campaigns (class `distill`), each with an id and a tactic.
    #[serde(default)]
    pub campaigns: Vec<Campaign>,
    /// Where the scenario came from (file path or a caller-given name); not a TOML key.
    #[serde(skip)]
    pub source: String,
}

/// One model the simulated API serves.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Model {
    /// Model name as clients request it.
    pub name: String,
    /// When the model becomes available (RFC 3339); absent: available from the start.
    #[serde(default)]
    pub released_at: Option<Timestamp>,
    /// Whether the model spends reasoning tokens (reported in `response.reasoning_tokens`).
    #[serde(default = "default_true")]
    pub reasoning: bool,
    /// Relative share of ordinary users' traffic once adopted (≥ 0; 0: nobody uses it unasked).
    #[serde(default = "default_one")]
    pub benign_weight: f64,
}

/// Ordinary users.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Benign {
    /// Number of accounts at scale 1.
    pub accounts: u64,
    /// Zipf exponent of activity: the account at activity rank `k` has a session rate
    /// proportional to `k^-s`. Around 0.8–1.0 in real API populations.
    pub activity_zipf_exponent: f64,
    /// Sessions per day of the median account.
    pub median_sessions_per_day: f64,
    /// Cap on any one account's sessions per day (the head of the Zipf curve).
    pub max_sessions_per_day: f64,
    /// Mean requests per session (1 = single-shot; history grows with each turn).
    pub mean_turns_per_session: f64,
    /// Share of sessions replaying a real multi-turn conversation from the corpus.
    pub multi_turn_share: f64,
    /// Share of requests asking for step-by-step reasoning ("explain step by step").
    pub step_by_step_share: f64,
    /// Share of first turns that are reasoning problems (homework, puzzles, code tasks).
    pub problem_share: f64,
    /// Share of accounts used mostly from work (working-hours rhythm); the rest are personal
    /// (evenings and weekends).
    pub work_share: f64,
    /// Share of accounts on mobile networks behind carrier-grade NAT (many users per IP).
    pub mobile_share: f64,
    /// Share of accounts behind a corporate NAT.
    pub corporate_share: f64,
    /// Share of accounts on a university network.
    pub university_share: f64,
    /// Share of mobile users reaching the API over IPv6.
    pub ipv6_share: f64,
    /// Share of accounts that sign up during the scenario (and start sending afterwards).
    pub new_account_share: f64,
    /// Days after a model's release until ordinary users have fully adopted it.
    pub adoption_days: f64,
    /// Probability that a client retries a request that failed with 429 or 5xx.
    pub retry_probability: f64,
}

impl Default for Benign {
    fn default() -> Self {
        Benign {
            accounts: 0,
            activity_zipf_exponent: 0.9,
            median_sessions_per_day: 0.5,
            max_sessions_per_day: 30.0,
            mean_turns_per_session: 2.0,
            multi_turn_share: 0.35,
            step_by_step_share: 0.04,
            problem_share: 0.06,
            work_share: 0.45,
            mobile_share: 0.25,
            corporate_share: 0.15,
            university_share: 0.06,
            ipv6_share: 0.35,
            new_account_share: 0.04,
            adoption_days: 10.0,
            retry_probability: 0.8,
        }
    }
}

/// Legitimate heavy users: the hard negatives.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BenignHeavy {
    /// App backends: one account, high volume, one fixed system prompt, narrow templated
    /// messages, from a few cloud egress IPs.
    pub app_backends: u64,
    /// Range `[low, high]` of an app backend's mean calls per day.
    pub app_calls_per_day: [f64; 2],
    /// Evaluation harnesses: one account running reasoning benchmarks with step-by-step
    /// prompts, temperature 0, in bursts.
    pub eval_harnesses: u64,
    /// Mean benchmark runs per harness per week (each new model release adds one).
    pub eval_runs_per_week: f64,
    /// Range `[low, high]` of problems in one benchmark run.
    pub eval_problems_per_run: [u64; 2],
    /// Requests per second while a run is in progress.
    pub eval_requests_per_second: f64,
    /// Enterprises: many accounts behind one NAT block and one payment method.
    pub enterprises: u64,
    /// Range `[low, high]` of accounts per enterprise (not scaled).
    pub accounts_per_enterprise: [u64; 2],
    /// Mean sessions per working day of one enterprise account.
    pub enterprise_sessions_per_day: f64,
}

impl Default for BenignHeavy {
    fn default() -> Self {
        BenignHeavy {
            app_backends: 0,
            app_calls_per_day: [400.0, 3000.0],
            eval_harnesses: 0,
            eval_runs_per_week: 3.0,
            eval_problems_per_run: [200, 1000],
            eval_requests_per_second: 3.0,
            enterprises: 0,
            accounts_per_enterprise: [20, 200],
            enterprise_sessions_per_day: 1.5,
        }
    }
}

/// Accounts that only try jailbreaks.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Jailbreak {
    /// Number of accounts at scale 1.
    pub accounts: u64,
    /// Mean attempts on a day the account is active.
    pub attempts_per_day: f64,
    /// Range `[low, high]` of days an account keeps trying before giving up.
    pub active_days: [u64; 2],
    /// Share of attempts wrapping a harmful request in a jailbreak template; the rest are
    /// in-the-wild jailbreak prompts (most) and bare harmful requests.
    pub template_share: f64,
}

impl Default for Jailbreak {
    fn default() -> Self {
        Jailbreak {
            accounts: 0,
            attempts_per_day: 6.0,
            active_days: [1, 4],
            template_share: 0.45,
        }
    }
}

/// How a campaign operates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tactic {
    /// A "hydra" proxy network: thousands of accounts, residential IP rotation, sign-up bursts,
    /// shared payment methods, synchronized waves, mixed with ordinary customer traffic.
    ProxyRotation,
    /// Few accounts, human-like working-hours timing, paraphrased wrappers, benign cover
    /// traffic, datacenter networks.
    LowAndSlow,
    /// "Imagine and articulate the internal reasoning" prompts and rubric grading, in several
    /// languages.
    ReasoningExtraction,
    /// Jailbreak templates wrapped around harvested problems and harmful requests.
    JailbreakHarvest,
    /// A few accounts sending thousands of calls a day each from one or two datacenter IPs.
    NaiveVolume,
    /// A hydra-like campaign that moves half its traffic to a newly released model within 24h.
    ReleasePivot,
}

impl Tactic {
    /// The name used in scenario files and labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Tactic::ProxyRotation => "proxy-rotation",
            Tactic::LowAndSlow => "low-and-slow",
            Tactic::ReasoningExtraction => "reasoning-extraction",
            Tactic::JailbreakHarvest => "jailbreak-harvest",
            Tactic::NaiveVolume => "naive-volume",
            Tactic::ReleasePivot => "release-pivot",
        }
    }

    /// Every tactic, in documentation order.
    pub const ALL: [Tactic; 6] = [
        Tactic::ProxyRotation,
        Tactic::LowAndSlow,
        Tactic::ReasoningExtraction,
        Tactic::JailbreakHarvest,
        Tactic::NaiveVolume,
        Tactic::ReleasePivot,
    ];
}

/// When a scripted campaign sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Schedule {
    /// Around the clock (24/7 duty cycle).
    Always,
    /// Working hours on weekdays in the campaign's `utc_offset_hours`.
    WorkingHours,
}

/// One distillation campaign. Knobs left out take the tactic's default (see the scenario
/// files); a knob that does not apply to the campaign's tactic is an error.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Campaign {
    /// Campaign id written to `labels.jsonl` (letters, digits, `-`, `_`; unique).
    pub id: String,
    /// How the campaign operates.
    pub tactic: Tactic,
    /// Number of accounts at scale 1.
    pub accounts: u64,
    /// Mean calls per account per day while the campaign is active.
    pub calls_per_account_per_day: f64,
    /// Day (from the scenario start, fractional allowed) the campaign starts sending.
    #[serde(default)]
    pub start_day: f64,
    /// Day the campaign stops sending; absent: the end of the scenario.
    #[serde(default)]
    pub end_day: Option<f64>,
    /// Model harvested; absent: the scenario's first model.
    #[serde(default)]
    pub model: Option<String>,
    /// Share of requests that are ordinary-looking prompts (cover traffic, or for a proxy
    /// network its ordinary customers' traffic).
    #[serde(default)]
    pub cover_share: Option<f64>,
    /// `always` or `working-hours` (waves and naive-volume tactics).
    #[serde(default)]
    pub schedule: Option<Schedule>,
    /// UTC offset of the operators' working hours (low-and-slow, or `schedule =
    /// "working-hours"`).
    #[serde(default)]
    pub utc_offset_hours: Option<f64>,
    /// Minutes between the controller's dispatch waves (wave tactics).
    #[serde(default)]
    pub wave_interval_minutes: Option<f64>,
    /// Seconds within which the members joining a wave fire (wave tactics).
    #[serde(default)]
    pub wave_spread_seconds: Option<f64>,
    /// Size of the rotating residential IP pool (proxy-rotation, jailbreak-harvest,
    /// release-pivot); absent: three per account.
    #[serde(default)]
    pub ip_pool: Option<u64>,
    /// Range `[low, high]` of accounts sharing one payment method.
    #[serde(default)]
    pub payment_cluster: Option<[u64; 2]>,
    /// Number of sign-up bursts the accounts were created in (0: created one by one, spread
    /// over `signup_lead_days`).
    #[serde(default)]
    pub signup_bursts: Option<u64>,
    /// How many days before its start the campaign began creating accounts.
    #[serde(default)]
    pub signup_lead_days: Option<f64>,
    /// Share of rubric-grading prompts (reasoning-extraction).
    #[serde(default)]
    pub rubric_share: Option<f64>,
    /// Newly released model the campaign pivots to (release-pivot); absent: the first model
    /// released during the scenario.
    #[serde(default)]
    pub pivot_model: Option<String>,
    /// Share of traffic moved to the new model (release-pivot).
    #[serde(default)]
    pub pivot_share: Option<f64>,
    /// Hours after the release by which the move is complete (release-pivot).
    #[serde(default)]
    pub pivot_hours: Option<f64>,
}

fn default_true() -> bool {
    true
}

fn default_one() -> f64 {
    1.0
}

impl Scenario {
    /// Parses and validates scenario text; `name` (usually the file path) appears in errors.
    pub fn from_toml_str(name: &str, text: &str) -> Result<Scenario, SimError> {
        let de = toml::Deserializer::new(text);
        let mut scenario: Scenario = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let line = inner
                .span()
                .map(|s| text.get(..s.start).unwrap_or("").matches('\n').count() + 1);
            let mut message = inner.message().trim().to_owned();
            // serde reports a missing key at its parent; name the key itself.
            let missing = message
                .strip_prefix("missing field `")
                .and_then(|rest| rest.split('`').next())
                .map(str::to_owned);
            let whole_table = missing.is_some();
            let key = match (missing, path.as_str()) {
                (Some(field), ".") => field,
                (Some(field), parent) => format!("{parent}.{field}"),
                (None, ".") => {
                    line.map_or_else(|| "<document>".to_owned(), |l| format!("line {l}"))
                }
                (None, _) => path,
            };
            if key == "start" || key.ends_with("released_at") {
                message.push_str(" (write times as quoted RFC 3339 strings)");
            }
            if let (Some(l), false) = (line, whole_table || key.starts_with("line ")) {
                message.push_str(&format!(" (line {l})"));
            }
            SimError::Scenario {
                path: name.to_owned(),
                key,
                message,
            }
        })?;
        scenario.source = name.to_owned();
        validate::validate(&scenario)?;
        Ok(scenario)
    }

    /// Reads, parses and validates a scenario file.
    pub fn from_file(path: &Path) -> Result<Scenario, SimError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| SimError::Scenario {
            path: name.clone(),
            key: "<file>".into(),
            message: e.to_string(),
        })?;
        Self::from_toml_str(&name, &text)
    }

    /// End of the simulated window.
    pub fn end(&self) -> Timestamp {
        self.start
            .plus_millis(i64::from(self.days) * Timestamp::DAY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
version = 1
name = "t"
start = "2026-03-02T00:00:00Z"
days = 3

[[models]]
name = "m1"

[[models]]
name = "m2"
released_at = "2026-03-03T12:00:00Z"

[benign]
accounts = 10

[[campaigns]]
id = "h"
tactic = "proxy-rotation"
accounts = 5
calls_per_account_per_day = 20.0

[[campaigns]]
id = "p"
tactic = "release-pivot"
accounts = 5
calls_per_account_per_day = 20.0
"#;

    /// Parses `text` and returns the error's key path and message.
    fn error_of(text: &str) -> (String, String) {
        match Scenario::from_toml_str("t.toml", text) {
            Err(SimError::Scenario { path, key, message }) => {
                assert_eq!(path, "t.toml");
                (key, message)
            }
            other => panic!("expected a scenario error, got {other:?}"),
        }
    }

    #[test]
    fn minimal_scenario_parses_with_defaults() {
        let s = Scenario::from_toml_str("t.toml", MINIMAL).unwrap();
        assert_eq!(s.source, "t.toml");
        assert_eq!(s.benign.accounts, 10);
        assert_eq!(s.benign.activity_zipf_exponent, 0.9);
        assert!(s.models[0].reasoning);
        assert_eq!(s.campaigns[1].tactic, Tactic::ReleasePivot);
        assert_eq!(
            s.end().as_millis() - s.start.as_millis(),
            3 * Timestamp::DAY
        );
    }

    #[test]
    fn unknown_keys_are_rejected_with_their_path() {
        let (key, message) = error_of(&MINIMAL.replace("days = 3", "days = 3\ndayz = 4"));
        assert_eq!(key, "dayz");
        assert!(message.contains("unknown field"), "{message}");
        let (key, _) = error_of(&MINIMAL.replace(
            "calls_per_account_per_day = 20.0\n\n[[campaigns]]",
            "calls_per_account_per_day = 20.0\nwave_intervall = 3\n\n[[campaigns]]",
        ));
        assert_eq!(key, "campaigns[0].wave_intervall");
        let (key, _) = error_of(&MINIMAL.replace("accounts = 10", "accounts = 10\nzipf = 1"));
        assert_eq!(key, "benign.zipf");
    }

    #[test]
    fn bad_values_name_their_key() {
        let cases = [
            ("version = 1", "version = 2", "version"),
            ("days = 3", "days = 0", "days"),
            (
                "accounts = 5\ncalls_per_account_per_day = 20.0\n\n[[campaigns]]\nid = \"p\"",
                "accounts = 0\ncalls_per_account_per_day = 20.0\n\n[[campaigns]]\nid = \"p\"",
                "campaigns[0].accounts",
            ),
            ("id = \"p\"", "id = \"h\"", "campaigns[1].id"),
            (
                "accounts = 10",
                "accounts = 10\nmobile_share = 1.5",
                "benign.mobile_share",
            ),
            (
                "tactic = \"proxy-rotation\"",
                "tactic = \"proxy-rotation\"\nrubric_share = 0.5",
                "campaigns[0].rubric_share",
            ),
            (
                "tactic = \"proxy-rotation\"",
                "tactic = \"proxy-rotation\"\nmodel = \"nope\"",
                "campaigns[0].model",
            ),
            (
                "tactic = \"proxy-rotation\"",
                "tactic = \"telepathy\"",
                "campaigns[0].tactic",
            ),
            (
                "start = \"2026-03-02T00:00:00Z\"",
                "start = 2026-03-02T00:00:00Z",
                "start",
            ),
            (
                "released_at = \"2026-03-03T12:00:00Z\"",
                "released_at = \"2026-04-03T12:00:00Z\"",
                "models[1].released_at",
            ),
        ];
        for (from, to, want) in cases {
            assert!(MINIMAL.contains(from), "{from}");
            let (key, message) = error_of(&MINIMAL.replacen(from, to, 1));
            assert_eq!(key, want, "{message}");
            assert!(!message.is_empty());
        }
    }

    #[test]
    fn missing_version_and_pivot_without_release_are_rejected() {
        let (key, message) = error_of(&MINIMAL.replace("version = 1\n", ""));
        assert_eq!(key, "version", "{message}");
        let (key, _) = error_of(&MINIMAL.replace("id = \"h\"\n", ""));
        assert_eq!(key, "campaigns[0].id");
        let no_release = MINIMAL.replace("released_at = \"2026-03-03T12:00:00Z\"", "");
        let (key, _) = error_of(&no_release);
        assert_eq!(key, "campaigns[1].tactic");
    }

    #[test]
    fn error_display_names_file_and_key() {
        let err =
            Scenario::from_toml_str("x/s.toml", &MINIMAL.replace("accounts = 5", "accounts = 0"))
                .unwrap_err()
                .to_string();
        assert!(
            err.starts_with("scenario x/s.toml: campaigns[0].accounts: must be > 0"),
            "{err}"
        );
    }
}

//! [`EvalReport`]: every figure of one evaluation, as plain data.
//!
//! The field names are the JSON that `moat eval --json` writes, a contract for scripts and
//! dashboards: add fields freely, but rename or change the meaning of one only together with
//! [`EvalReport::report_version`]. Rates are `null` where their denominator is zero (never NaN);
//! durations are whole milliseconds; timestamps are RFC 3339 UTC strings. The human table
//! printed by `moat eval` is this type's `Display` (in `display.rs`); computing the figures is
//! the evaluator's job, not this module's.

use std::collections::BTreeSet;
use std::path::Path;

use moat_types::Timestamp;
use serde::Serialize;

use crate::EvalError;

/// Everything `moat eval` reports. Serialized as-is by `--json`; `Display` is the printed table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvalReport {
    /// Version of this JSON layout (currently 1).
    pub report_version: u32,
    /// The scored population: accounts present in the traffic.
    pub population: Population,
    /// The baseline's limit L, in requests per account per UTC day: the smallest L ≥ 1 such
    /// that the share of benign accounts whose busiest UTC day exceeds L is at most the
    /// detector's benign FPR. The baseline flags an account at the `ts` of its (L+1)-th
    /// exchange within one UTC day.
    pub baseline_limit_per_day: u64,
    /// Headline figures of the detector under evaluation.
    pub detector: Summary,
    /// The same figures for the rate-limit baseline (which assigns no campaigns).
    pub baseline: Summary,
    /// One row per true campaign (from the labels), sorted by campaign id.
    pub campaigns: Vec<CampaignRow>,
    /// One row per tactic of distill accounts (from the labels), sorted; `null` tactic first.
    pub tactics: Vec<TacticRow>,
    /// Problems found in the detections file and lines skipped in any input.
    pub validation: Validation,
}

/// Accounts and exchanges of the traffic, by ground-truth class.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Population {
    /// Accounts with at least one exchange in the traffic.
    pub accounts: u64,
    /// Exchanges in the traffic.
    pub exchanges: u64,
    /// `ts` of the first exchange.
    pub first_ts: Timestamp,
    /// `ts` of the last exchange.
    pub last_ts: Timestamp,
    /// Class `benign`.
    pub benign: ClassCount,
    /// Class `benign_heavy`.
    pub benign_heavy: ClassCount,
    /// Class `distill`.
    pub distill: ClassCount,
    /// Class `jailbreak`.
    pub jailbreak: ClassCount,
    /// Distinct true campaigns among distill accounts.
    pub campaigns: u64,
    /// Labels of accounts that never appear in the traffic (ignored).
    pub labels_not_in_traffic: u64,
}

/// Size of one class in the traffic.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ClassCount {
    /// Accounts of the class.
    pub accounts: u64,
    /// Their exchanges.
    pub exchanges: u64,
}

/// Headline figures of one system (the detector or the baseline).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Flagged distill accounts / distill accounts.
    pub distill_recall: Option<f64>,
    /// Flagged distill accounts.
    pub distill_flagged: u64,
    /// Flagged `benign` accounts / `benign` accounts (class `benign` only).
    pub benign_fpr: Option<f64>,
    /// Flagged `benign` accounts.
    pub benign_flagged: u64,
    /// Flagged `benign_heavy` accounts.
    pub benign_heavy_flagged: u64,
    /// Flagged `benign_heavy` accounts / `benign_heavy` accounts.
    pub benign_heavy_flagged_share: Option<f64>,
    /// Flagged `jailbreak` accounts.
    pub jailbreak_flagged: u64,
    /// Flagged `jailbreak` accounts / `jailbreak` accounts.
    pub jailbreak_flagged_share: Option<f64>,
    /// Leaked distill exchanges / distill exchanges. An exchange leaked when its `ts` is before
    /// its account's flag time, or its account was never flagged.
    pub leakage: Option<f64>,
    /// Leaked distill exchanges.
    pub leaked_exchanges: u64,
    /// True campaigns with at least one flagged member.
    pub campaigns_detected: u64,
    /// Lower median of the detected campaigns' time to first detection.
    pub median_time_to_detection_ms: Option<i64>,
    /// Predicted campaigns with at least one member in the traffic.
    pub predicted_campaigns: u64,
    /// Σ over predicted campaigns of the largest overlap with one true group, / Σ their sizes.
    /// A true group is an account's campaign, or its class when it has none (so benign members
    /// lower purity). `null` when there is no predicted campaign.
    pub purity: Option<f64>,
    /// Σ over true campaigns of (predicted campaigns holding ≥ 1 of its distill members − 1),
    /// floor 0.
    pub splits: u64,
    /// Σ over predicted campaigns of (distinct true campaigns among its distill members − 1),
    /// floor 0.
    pub merges: u64,
    /// Hubert–Arabie adjusted Rand index over distill accounts: true partition by campaign
    /// (a distill account without one is a singleton), predicted partition by predicted
    /// campaign (an unassigned account is a singleton). 1 when both partitions are identical;
    /// `null` when there is no distill account.
    pub ari: Option<f64>,
}

/// Figures of one true campaign (its distill accounts) for both systems.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CampaignRow {
    /// Campaign id, from the labels.
    pub campaign: String,
    /// Distinct tactics of its members, sorted (normally one).
    pub tactics: Vec<String>,
    /// Member accounts in the traffic.
    pub accounts: u64,
    /// Their exchanges.
    pub exchanges: u64,
    /// `ts` of the campaign's first exchange.
    pub first_exchange: Timestamp,
    /// The detector's figures.
    pub detector: CampaignScore,
    /// The baseline's figures.
    pub baseline: CampaignScore,
}

/// One system's figures on one true campaign.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CampaignScore {
    /// Flagged members.
    pub flagged: u64,
    /// Flagged members / members.
    pub recall: f64,
    /// Exchanges sent before the sending account's flag time (all, for unflagged accounts).
    pub leaked_exchanges: u64,
    /// Leaked exchanges / the campaign's exchanges.
    pub leakage: f64,
    /// Earliest flag time over the members; `null` when none was flagged.
    pub first_detection: Option<Timestamp>,
    /// `first_detection` − `first_exchange`, floored at 0 (a flag before the first exchange
    /// counts as 0); `null` when never detected.
    pub time_to_detection_ms: Option<i64>,
    /// Predicted campaigns its members were spread over (0 when none was assigned to one).
    pub predicted_campaigns: u64,
}

/// Figures of the distill accounts of one tactic for both systems.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TacticRow {
    /// Tactic, from the labels; `null` for distill accounts without one.
    pub tactic: Option<String>,
    /// Distinct true campaigns among these accounts.
    pub campaigns: u64,
    /// Distill accounts with this tactic.
    pub accounts: u64,
    /// Their exchanges.
    pub exchanges: u64,
    /// The detector's figures.
    pub detector: TacticScore,
    /// The baseline's figures.
    pub baseline: TacticScore,
}

/// One system's figures on the accounts of one tactic.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TacticScore {
    /// Flagged accounts.
    pub flagged: u64,
    /// Flagged accounts / accounts.
    pub recall: f64,
    /// Leaked exchanges (as in [`CampaignScore::leaked_exchanges`]).
    pub leaked_exchanges: u64,
    /// Leaked exchanges / exchanges.
    pub leakage: f64,
}

/// Where the predicted campaigns came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Grouping {
    /// From the `accounts` lists of the campaign lines (used whenever there is one).
    CampaignLines,
    /// From the account lines' `campaign_id` (the file has no campaign line).
    AccountLines,
}

/// A count and up to [`Examples::MAX`] examples (the smallest, in sorted order).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Examples {
    /// How many.
    pub count: u64,
    /// The first few, sorted.
    pub examples: Vec<String>,
}

impl Examples {
    /// How many examples are kept.
    pub const MAX: usize = 10;

    /// Builds the count and examples from every item (kept: the smallest [`Examples::MAX`]).
    pub(crate) fn collect(items: impl IntoIterator<Item = String>) -> Self {
        let mut count = 0;
        let mut kept = BTreeSet::new();
        for item in items {
            count += 1;
            kept.insert(item);
            if kept.len() > Self::MAX {
                kept.pop_last();
            }
        }
        Examples {
            count,
            examples: kept.into_iter().collect(),
        }
    }

    /// Whether there is nothing to report.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

/// What is wrong with the detections file, and what was skipped in the inputs. None of it is
/// fatal; the figures follow the stated treatment of each case.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Validation {
    /// Source of the predicted campaigns.
    pub grouping: Grouping,
    /// Account lines in the detections file.
    pub account_lines: u64,
    /// Campaign lines in the detections file.
    pub campaign_lines: u64,
    /// Traffic accounts without an account line (scored as not flagged, in no campaign).
    pub missing_account_lines: Examples,
    /// Account lines for accounts that are not in the traffic (ignored).
    pub unknown_accounts: Examples,
    /// Accounts with `flagged: true` but no `flagged_at`, scored as flagged at the end of the
    /// traffic (every exchange leaked).
    pub flagged_without_time: Examples,
    /// Accounts with `flagged: false` but a `flagged_at` (scored as not flagged).
    pub time_without_flag: Examples,
    /// Campaign-line members that are not in the traffic, as `account (campaign)` (ignored).
    pub unknown_campaign_members: Examples,
    /// Accounts whose `campaign_id` names no campaign line, as `account (campaign)` (only when
    /// there are campaign lines; the account line's `campaign_id` is then ignored).
    pub campaign_id_without_line: Examples,
    /// Accounts listed by several campaign lines, as `account (first, other)`; the first line
    /// in file order keeps the account.
    pub in_several_campaigns: Examples,
    /// Accounts whose `campaign_id` names a campaign line that does not list them, as
    /// `account (campaign_id)`; the campaign lines decide.
    pub campaign_id_mismatch: Examples,
    /// Lines skipped (`--skip-bad-lines`) in each input, as `line N: reason`.
    pub skipped_lines: SkippedLines,
}

/// Lines skipped in each input under `--skip-bad-lines`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SkippedLines {
    /// In the labels file.
    pub labels: Examples,
    /// In the detections file (a skipped account line makes that account missing).
    pub detections: Examples,
    /// In the traffic (the first pass's count; both passes read the same file).
    pub traffic: Examples,
}

impl SkippedLines {
    /// Converts a reader's skip report.
    pub(crate) fn from_report(report: &moat_format::SkipReport) -> Examples {
        Examples {
            count: report.count,
            examples: report
                .examples
                .iter()
                .map(|(line, why)| format!("line {line}: {why}"))
                .collect(),
        }
    }
}

impl Validation {
    /// One line per non-empty finding, in a fixed order, for the printed report.
    pub fn warnings(&self) -> Vec<String> {
        let items: [(&str, &Examples); 11] = [
            (
                "traffic accounts without an account line (scored as not flagged)",
                &self.missing_account_lines,
            ),
            (
                "account lines for accounts not in the traffic (ignored)",
                &self.unknown_accounts,
            ),
            (
                "flagged without flagged_at (scored as flagged at the end of the traffic)",
                &self.flagged_without_time,
            ),
            (
                "flagged_at without flagged (scored as not flagged)",
                &self.time_without_flag,
            ),
            (
                "campaign members not in the traffic (ignored)",
                &self.unknown_campaign_members,
            ),
            (
                "campaign_id without a campaign line (ignored)",
                &self.campaign_id_without_line,
            ),
            (
                "accounts in several campaign lines (the first keeps them)",
                &self.in_several_campaigns,
            ),
            (
                "campaign_id disagrees with the campaign lines (the lines decide)",
                &self.campaign_id_mismatch,
            ),
            ("skipped lines in labels", &self.skipped_lines.labels),
            (
                "skipped lines in detections",
                &self.skipped_lines.detections,
            ),
            ("skipped lines in traffic", &self.skipped_lines.traffic),
        ];
        items
            .iter()
            .filter(|(_, e)| !e.is_empty())
            .map(|(what, e)| {
                let more = if e.count > e.examples.len() as u64 {
                    ", …"
                } else {
                    ""
                };
                format!("{what}: {} (e.g. {}{more})", e.count, e.examples.join(", "))
            })
            .collect()
    }
}

impl EvalReport {
    /// Writes the report as pretty-printed JSON (what `--json OUT` writes).
    pub fn write_json(&self, path: &Path) -> Result<(), EvalError> {
        let err = |source: std::io::Error| EvalError::Write {
            path: path.display().to_string(),
            source,
        };
        let mut text = serde_json::to_string_pretty(self).map_err(|e| err(e.into()))?;
        text.push('\n');
        std::fs::write(path, text).map_err(err)
    }
}

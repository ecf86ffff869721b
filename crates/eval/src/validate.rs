//! Judges a detections file against the traffic's population and turns it into per-account
//! verdicts: flagged or not, and the predicted campaign.
//!
//! Nothing here is fatal (duplicates were rejected on loading); every irregularity is counted
//! in [`Validation`] and given a stated, conservative treatment:
//! - an account line for an account not in the traffic is ignored ("unknown");
//! - a traffic account without an account line is not flagged and in no campaign ("missing");
//! - `flagged: true` without `flagged_at` counts as flagged at the end of the traffic;
//! - `flagged: false` with a `flagged_at` counts as not flagged.
//!
//! Predicted campaigns come from the campaign lines' `accounts` lists whenever the file has at
//! least one campaign line: members not in the traffic are ignored, an account listed twice
//! stays in the first line (file order) that lists it, and an account line's `campaign_id` that
//! disagrees is reported but does not count. Without campaign lines, the account lines'
//! `campaign_id` decide.

use std::collections::{BTreeMap, HashMap};

use moat_types::Timestamp;

use crate::input::DetectionSet;
use crate::report::{Examples, Grouping, SkippedLines, Validation};

/// When the detector caught an account, as far as leakage in the first pass is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Catch {
    /// Not flagged (or no account line): every exchange leaks.
    Never,
    /// Flagged at this time: exchanges strictly before it leak.
    At(Timestamp),
    /// Flagged without a time: scored as flagged at the end of the traffic, so every exchange
    /// leaks.
    AtEnd,
}

impl Catch {
    /// The detector's catch of the account with this account line (if any).
    pub(crate) fn of(line: Option<&crate::input::AccountLine>) -> Catch {
        match line {
            Some(l) if l.flagged => l.flagged_at.map_or(Catch::AtEnd, Catch::At),
            _ => Catch::Never,
        }
    }

    /// Whether an exchange at `ts` was sent after the account was caught (so did not leak).
    pub(crate) fn stops(self, ts: Timestamp) -> bool {
        match self {
            Catch::At(t) => ts >= t,
            Catch::Never | Catch::AtEnd => false,
        }
    }

    /// The flag time used for time to detection; `end` is the traffic's last `ts`.
    pub(crate) fn flag_time(self, end: Timestamp) -> Option<Timestamp> {
        match self {
            Catch::Never => None,
            Catch::At(t) => Some(t),
            Catch::AtEnd => Some(end),
        }
    }
}

/// The predicted grouping of the population, and the findings of validation.
#[derive(Debug)]
pub(crate) struct Resolved {
    /// Predicted campaign of each tracked account (index into the sorted predicted campaign
    /// ids); `None` when unassigned or not in the traffic.
    pub(crate) predicted: Vec<Option<u32>>,
    /// What was found.
    pub(crate) validation: Validation,
}

/// Resolves `det` against the tracked accounts: `ids[i]` is account `i`, `index` maps ids back,
/// and `in_traffic[i]` says whether it sent at least one exchange.
pub(crate) fn resolve(
    det: &DetectionSet,
    ids: &[String],
    index: &HashMap<String, u32>,
    in_traffic: &[bool],
) -> Resolved {
    let present = |id: &str| -> Option<usize> {
        let i = *index.get(id)? as usize;
        in_traffic.get(i).copied().unwrap_or(false).then_some(i)
    };

    let missing = ids
        .iter()
        .zip(in_traffic)
        .filter(|(id, seen)| **seen && !det.accounts.contains_key(id.as_str()))
        .map(|(id, _)| id.clone());
    let missing_account_lines = Examples::collect(missing);
    let unknown_accounts = Examples::collect(
        det.accounts
            .keys()
            .filter(|id| present(id).is_none())
            .cloned(),
    );
    let known_lines = || det.accounts.iter().filter(|(id, _)| present(id).is_some());
    let flagged_without_time = Examples::collect(
        known_lines()
            .filter(|(_, l)| l.flagged && l.flagged_at.is_none())
            .map(|(id, _)| id.clone()),
    );
    let time_without_flag = Examples::collect(
        known_lines()
            .filter(|(_, l)| !l.flagged && l.flagged_at.is_some())
            .map(|(id, _)| id.clone()),
    );

    let mut predicted: Vec<Option<u32>> = vec![None; ids.len()];
    let mut unknown_members = Vec::new();
    let mut several = Vec::new();
    let mut without_line = Vec::new();
    let mut mismatch = Vec::new();

    let grouping;
    if det.campaigns.is_empty() {
        grouping = Grouping::AccountLines;
        let mut by_name: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (id, line) in known_lines() {
            if let (Some(c), Some(i)) = (line.campaign_id.as_deref(), present(id)) {
                by_name.entry(c).or_default().push(i);
            }
        }
        for (k, members) in by_name.values().enumerate() {
            for &i in members {
                predicted[i] = Some(k as u32);
            }
        }
    } else {
        grouping = Grouping::CampaignLines;
        let mut sorted: Vec<&str> = det
            .campaigns
            .iter()
            .map(|c| c.campaign_id.as_str())
            .collect();
        sorted.sort_unstable();
        let number: HashMap<&str, u32> = sorted
            .iter()
            .enumerate()
            .map(|(k, name)| (*name, k as u32))
            .collect();
        for line in &det.campaigns {
            let k = number.get(line.campaign_id.as_str()).copied().unwrap_or(0);
            for member in &line.accounts {
                let Some(i) = present(member) else {
                    unknown_members.push(format!("{member} ({})", line.campaign_id));
                    continue;
                };
                match predicted[i] {
                    None => predicted[i] = Some(k),
                    Some(first) if first == k => {}
                    Some(first) => several.push(format!(
                        "{member} ({}, {})",
                        sorted.get(first as usize).copied().unwrap_or_default(),
                        line.campaign_id
                    )),
                }
            }
        }
        for (id, line) in known_lines() {
            let (Some(c), Some(i)) = (line.campaign_id.as_deref(), present(id)) else {
                continue;
            };
            match number.get(c) {
                None => without_line.push(format!("{id} ({c})")),
                Some(&k) if predicted[i] != Some(k) => mismatch.push(format!("{id} ({c})")),
                Some(_) => {}
            }
        }
    }

    let validation = Validation {
        grouping,
        account_lines: det.accounts.len() as u64,
        campaign_lines: det.campaigns.len() as u64,
        missing_account_lines,
        unknown_accounts,
        flagged_without_time,
        time_without_flag,
        unknown_campaign_members: Examples::collect(unknown_members),
        campaign_id_without_line: Examples::collect(without_line),
        in_several_campaigns: Examples::collect(several),
        campaign_id_mismatch: Examples::collect(mismatch),
        skipped_lines: SkippedLines {
            detections: SkippedLines::from_report(&det.skipped),
            ..SkippedLines::default()
        },
    };
    Resolved {
        predicted,
        validation,
    }
}

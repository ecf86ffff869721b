//! Scores a detector's `detections.jsonl` against the simulator's `labels.jsonl` over the
//! traffic both came from, and compares it with a reference baseline the evaluation computes
//! itself: the library behind `moat eval`.
//!
//! [`evaluate`] reads the files; [`Evaluator`] → [`BaselinePass`] → [`EvalReport`] is the same
//! work without files, fed one exchange at a time. The traffic (possibly tens of millions of
//! exchanges) is streamed twice and never held: memory is per account. This crate prints
//! nothing and exits nothing; the CLI prints the report's `Display` and writes its JSON.
//!
//! # Definitions
//!
//! - **Population**: the accounts present in the traffic. Every one must have a label (else
//!   [`EvalError::UnlabelledAccount`]); labels of accounts absent from the traffic are ignored
//!   and counted (`population.labels_not_in_traffic`).
//! - **Flagged**: the account's line says `flagged: true`. Its flag time is `flagged_at`; a
//!   flagged line without `flagged_at` counts as flagged at the end of the traffic (every
//!   exchange leaked) and is reported. A traffic account without an account line counts as
//!   not flagged and is reported as missing; account lines for accounts not in the traffic are
//!   reported as unknown and ignored. A `flagged_at` before the account's first exchange is
//!   allowed: nothing leaked.
//! - **Distill recall** = flagged distill accounts / distill accounts. **Benign FPR** = flagged
//!   `benign` accounts / `benign` accounts (class `benign` only). `benign_heavy` and
//!   `jailbreak` accounts: number and share flagged.
//! - **Leakage** of a set of distill accounts = their exchanges with `ts` strictly before the
//!   sending account's flag time (all exchanges of never-flagged accounts) / their exchanges.
//!   Reported overall (all distill exchanges), per true campaign and per tactic.
//! - **Time to first detection** of a true campaign = the earliest flag time of its members −
//!   the `ts` of its first exchange, floored at 0; none if no member was flagged. The summary
//!   gives the lower median over detected campaigns.
//! - **True campaigns and tactics** are those of the labels, over distill accounts: a campaign
//!   row covers the distill accounts labelled with it; a tactic row covers the distill accounts
//!   labelled with it (`null` tactic: its own row).
//! - **Predicted campaigns**: the campaign lines' `accounts` lists when the detections file has
//!   any campaign line (an account listed by several lines stays in the first, in file order;
//!   members not in the traffic are ignored; disagreeing account-line `campaign_id`s are
//!   reported), otherwise the account lines' `campaign_id`. Grouping is scored whether or not
//!   the members are flagged.
//! - **Purity** = Σ over predicted campaigns of the largest overlap with one true group / Σ of
//!   their sizes, where an account's true group is its campaign, or its class if it has none
//!   (so benign members lower purity); `null` with no predicted campaign. **Splits** = Σ over
//!   true campaigns of (predicted campaigns holding ≥ 1 of its distill members − 1, floor 0).
//!   **Merges** = Σ over predicted campaigns of (distinct true campaigns among its distill
//!   members − 1, floor 0).
//! - **ARI**: Hubert–Arabie adjusted Rand index over distill accounts; true partition by
//!   campaign, predicted partition by predicted campaign, an account with no campaign (on
//!   either side) being a singleton. 1 when the partitions are identical (which covers the
//!   0/0 cases), 0 for any other zero denominator, `null` without distill accounts.
//! - **Baseline**: a per-account daily rate limit. Its limit L is the smallest integer ≥ 1
//!   such that the share of benign accounts whose busiest UTC day has more than L exchanges is
//!   at most the detector's benign FPR (FPR 0 → L = the busiest benign day, flagging no benign
//!   account; no benign account → L = 1). It flags an account at the `ts` of its (L+1)-th
//!   exchange within one UTC day (the first such moment) and assigns no campaign, so its
//!   purity is `null` (no predicted campaign), its splits and merges are 0, and its ARI
//!   compares all-singletons with the true campaigns (0 unless every campaign has one account).
//!
//! # Validation
//!
//! Fatal ([`EvalError`]): unreadable or malformed lines (file:line, from `moat-format`),
//! duplicate label, duplicate account line, duplicate campaign line, a traffic account without
//! a label, traffic out of order, empty traffic, traffic that changes between the passes.
//! Reported in [`Validation`] and scored as stated above: missing and unknown account lines,
//! flagged without `flagged_at`, `flagged_at` without flagged, campaign members not in the
//! traffic, `campaign_id` without a campaign line, accounts in several campaign lines,
//! `campaign_id` disagreeing with the campaign lines, lines skipped under `--skip-bad-lines`.

mod baseline;
mod cluster;
mod display;
mod error;
mod evaluator;
mod input;
mod metrics;
mod report;
mod validate;

use std::path::Path;

use moat_format::{ReadOptions, Reader};
use moat_types::Exchange;

pub use baseline::choose_limit;
pub use cluster::{adjusted_rand_index, fragmentation, purity};
pub use error::EvalError;
pub use evaluator::{BaselinePass, Evaluator};
pub use input::{DetectionSet, LabelSet};
pub use report::{
    CampaignRow, CampaignScore, ClassCount, EvalReport, Examples, Grouping, Population,
    SkippedLines, Summary, TacticRow, TacticScore, Validation,
};

/// Evaluates the detections file against the labels over the traffic, reading the traffic
/// twice (plain or gzip files). `opts` applies to all three files.
pub fn evaluate(
    labels: &Path,
    detections: &Path,
    traffic: &Path,
    opts: ReadOptions,
) -> Result<EvalReport, EvalError> {
    let labels = LabelSet::read(labels, opts)?;
    let detections = DetectionSet::read(detections, opts)?;
    let mut first = Evaluator::new(labels, detections);

    let mut reader = Reader::<Exchange>::open(traffic, opts)?;
    let name = reader.path().to_owned();
    while let Some(exchange) = reader.next() {
        first
            .observe(&exchange?)
            .map_err(|e| e.at(&name, Some(reader.line())))?;
    }
    let traffic_skipped = SkippedLines::from_report(reader.skipped());
    let mut second = first.into_baseline().map_err(|e| e.at(&name, None))?;

    let mut reader = Reader::<Exchange>::open(traffic, opts)?;
    while let Some(exchange) = reader.next() {
        second
            .observe(&exchange?)
            .map_err(|e| e.at(&name, Some(reader.line())))?;
    }
    let mut report = second.finish().map_err(|e| e.at(&name, None))?;
    report.validation.skipped_lines.traffic = traffic_skipped;
    Ok(report)
}

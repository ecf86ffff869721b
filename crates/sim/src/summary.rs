//! [`SimSummary`]: what a run produced, by class, tactic and campaign; written to
//! `summary.json` and printed as a small table.
//!
//! Deterministic like the rest of the output (no wall-clock times), so the summary of a rerun
//! with the same seed is byte-identical too. Not a quality report of the traffic.

use std::collections::BTreeMap;
use std::fmt;

use moat_types::Timestamp;
use serde::Serialize;

/// Totals of one campaign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CampaignSummary {
    /// The campaign's tactic (`proxy-rotation`, …).
    pub tactic: String,
    /// Accounts that sent at least one exchange.
    pub accounts: u64,
    /// Exchanges sent.
    pub exchanges: u64,
}

/// What one simulation run produced.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SimSummary {
    /// Scenario name.
    pub scenario: String,
    /// Seed of the run.
    pub seed: u64,
    /// Scale of the run.
    pub scale: f64,
    /// Corpus source (`builtin` or a directory).
    pub corpus: String,
    /// Start of the simulated window.
    pub start: Timestamp,
    /// End of the simulated window (exclusive).
    pub end: Timestamp,
    /// Time of the first exchange, if any.
    pub first_exchange: Option<Timestamp>,
    /// Time of the last exchange, if any.
    pub last_exchange: Option<Timestamp>,
    /// Exchanges written.
    pub exchanges: u64,
    /// Accounts that sent at least one exchange (the accounts and labels files list exactly
    /// these).
    pub accounts: u64,
    /// `(accounts, exchanges)` by class (`benign`, `benign_heavy`, `distill`, `jailbreak`).
    pub by_class: BTreeMap<String, (u64, u64)>,
    /// `(accounts, exchanges)` by label tactic (campaign tactics, `app-backend`,
    /// `eval-harness`, `enterprise`, `jailbreak-only`).
    pub by_tactic: BTreeMap<String, (u64, u64)>,
    /// Totals by campaign id.
    pub by_campaign: BTreeMap<String, CampaignSummary>,
}

impl fmt::Display for SimSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "scenario {} (seed {}, scale {}, corpus {}): {} exchanges from {} accounts, {} .. {}",
            self.scenario,
            self.seed,
            self.scale,
            self.corpus,
            self.exchanges,
            self.accounts,
            self.start,
            self.end
        )?;
        writeln!(f, "{:<16} {:>10} {:>12}", "class", "accounts", "exchanges")?;
        for (class, (a, e)) in &self.by_class {
            writeln!(f, "{class:<16} {a:>10} {e:>12}")?;
        }
        let heavy: Vec<_> = self
            .by_tactic
            .iter()
            .filter(|(t, _)| !self.by_campaign.values().any(|c| &c.tactic == *t))
            .collect();
        if !heavy.is_empty() {
            writeln!(f, "{:<16} {:>10} {:>12}", "kind", "accounts", "exchanges")?;
            for (kind, (a, e)) in heavy {
                writeln!(f, "{kind:<16} {a:>10} {e:>12}")?;
            }
        }
        if !self.by_campaign.is_empty() {
            writeln!(
                f,
                "{:<16} {:<22} {:>10} {:>12}",
                "campaign", "tactic", "accounts", "exchanges"
            )?;
            for (id, c) in &self.by_campaign {
                writeln!(
                    f,
                    "{id:<16} {:<22} {:>10} {:>12}",
                    c.tactic, c.accounts, c.exchanges
                )?;
            }
        }
        Ok(())
    }
}

//! The human-readable rendering of an [`EvalReport`]: what `moat eval` prints.
//!
//! A summary with the detector and the baseline side by side, then per-campaign and per-tactic
//! tables, then validation findings. Plain text, fixed decimal places, rows in the report's
//! sorted order, so the output is byte-for-byte deterministic. Not a format for machines: they
//! read the JSON.

use std::fmt;

use crate::report::{EvalReport, Grouping, Summary};

/// A text table: a header row and rows of cells; the first `left` columns (text) left-aligned,
/// the others (numbers) right-aligned, columns separated by two spaces.
struct Table {
    rows: Vec<Vec<String>>,
    left: usize,
}

impl Table {
    fn new(left: usize, header: &[&str]) -> Self {
        Table {
            rows: vec![header.iter().map(|s| (*s).to_owned()).collect()],
            left,
        }
    }

    fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    fn write(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..columns)
            .map(|c| {
                self.rows
                    .iter()
                    .filter_map(|r| r.get(c))
                    .map(|s| s.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        for row in &self.rows {
            let mut line = String::new();
            for (c, (cell, width)) in row.iter().zip(&widths).enumerate() {
                let gap = if c == 0 { "" } else { "  " };
                if c < self.left {
                    line.push_str(&format!("{gap}{cell:<width$}"));
                } else {
                    line.push_str(&format!("{gap}{cell:>width$}"));
                }
            }
            writeln!(f, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

/// A rate with three decimals, or `n/a`.
fn rate(r: Option<f64>) -> String {
    r.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.3}"))
}

/// A rate and its fraction, e.g. `0.250 (20/80)`.
fn share(r: Option<f64>, num: u64, den: u64) -> String {
    format!("{} ({num}/{den})", rate(r))
}

/// A duration in milliseconds, to the two largest units (`3d 04h`, `2h 05m`, `4m 09s`, `12s`).
fn duration(ms: Option<i64>) -> String {
    let Some(ms) = ms else {
        return "never".to_owned();
    };
    let s = ms.max(0) / 1000;
    let (d, h, m, sec) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    if d > 0 {
        format!("{d}d {h:02}h")
    } else if h > 0 {
        format!("{h}h {m:02}m")
    } else if m > 0 {
        format!("{m}m {sec:02}s")
    } else if ms >= 1000 || ms == 0 {
        format!("{sec}s")
    } else {
        format!("{ms}ms")
    }
}

fn summary_rows(r: &EvalReport) -> Table {
    let p = &r.population;
    let mut t = Table::new(1, &["Summary", "detector", "baseline"]);
    let mut both = |name: &str, cell: &dyn Fn(&Summary) -> String| {
        t.row(vec![name.to_owned(), cell(&r.detector), cell(&r.baseline)]);
    };
    both("distill recall", &|s| {
        share(s.distill_recall, s.distill_flagged, p.distill.accounts)
    });
    both("benign FPR", &|s| {
        share(s.benign_fpr, s.benign_flagged, p.benign.accounts)
    });
    both("benign_heavy flagged", &|s| {
        share(
            s.benign_heavy_flagged_share,
            s.benign_heavy_flagged,
            p.benign_heavy.accounts,
        )
    });
    both("jailbreak flagged", &|s| {
        share(
            s.jailbreak_flagged_share,
            s.jailbreak_flagged,
            p.jailbreak.accounts,
        )
    });
    both("leakage (distill exchanges)", &|s| {
        share(s.leakage, s.leaked_exchanges, p.distill.exchanges)
    });
    both("campaigns detected", &|s| {
        format!("{}/{}", s.campaigns_detected, p.campaigns)
    });
    both("median time to detection", &|s| {
        duration(s.median_time_to_detection_ms)
    });
    both("predicted campaigns", &|s| {
        s.predicted_campaigns.to_string()
    });
    both("purity", &|s| rate(s.purity));
    both("splits", &|s| s.splits.to_string());
    both("merges", &|s| s.merges.to_string());
    both("ARI (distill accounts)", &|s| rate(s.ari));
    t
}

impl fmt::Display for EvalReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = &self.population;
        writeln!(
            f,
            "population: {} accounts, {} exchanges, {} to {}",
            p.accounts, p.exchanges, p.first_ts, p.last_ts
        )?;
        writeln!(
            f,
            "classes:    benign {}, benign_heavy {}, distill {} in {} campaigns, jailbreak {}",
            p.benign.accounts,
            p.benign_heavy.accounts,
            p.distill.accounts,
            p.campaigns,
            p.jailbreak.accounts
        )?;
        if p.labels_not_in_traffic > 0 {
            writeln!(
                f,
                "labels:     {} labelled accounts not in the traffic (ignored)",
                p.labels_not_in_traffic
            )?;
        }
        writeln!(
            f,
            "baseline:   per-account rate limit of {} requests per UTC day (benign FPR at most \
             the detector's)",
            self.baseline_limit_per_day
        )?;
        writeln!(f)?;
        summary_rows(self).write(f)?;

        writeln!(f)?;
        let mut t = Table::new(
            2,
            &[
                "Campaign",
                "tactic",
                "accounts",
                "exchanges",
                "det recall",
                "det leakage",
                "det ttd",
                "det groups",
                "base recall",
                "base leakage",
                "base ttd",
            ],
        );
        for c in &self.campaigns {
            let tactic = if c.tactics.is_empty() {
                "-".to_owned()
            } else {
                c.tactics.join(",")
            };
            t.row(vec![
                c.campaign.clone(),
                tactic,
                c.accounts.to_string(),
                c.exchanges.to_string(),
                format!("{:.3}", c.detector.recall),
                format!("{:.3}", c.detector.leakage),
                duration(c.detector.time_to_detection_ms),
                c.detector.predicted_campaigns.to_string(),
                format!("{:.3}", c.baseline.recall),
                format!("{:.3}", c.baseline.leakage),
                duration(c.baseline.time_to_detection_ms),
            ]);
        }
        if self.campaigns.is_empty() {
            t.row(vec!["(no campaigns)".to_owned()]);
        }
        t.write(f)?;

        writeln!(f)?;
        let mut t = Table::new(
            1,
            &[
                "Tactic",
                "campaigns",
                "accounts",
                "exchanges",
                "det recall",
                "det leakage",
                "base recall",
                "base leakage",
            ],
        );
        for r in &self.tactics {
            t.row(vec![
                r.tactic.clone().unwrap_or_else(|| "(none)".to_owned()),
                r.campaigns.to_string(),
                r.accounts.to_string(),
                r.exchanges.to_string(),
                format!("{:.3}", r.detector.recall),
                format!("{:.3}", r.detector.leakage),
                format!("{:.3}", r.baseline.recall),
                format!("{:.3}", r.baseline.leakage),
            ]);
        }
        if self.tactics.is_empty() {
            t.row(vec!["(no distill accounts)".to_owned()]);
        }
        t.write(f)?;

        writeln!(f)?;
        let v = &self.validation;
        let source = match v.grouping {
            Grouping::CampaignLines => "campaign lines",
            Grouping::AccountLines => "account lines' campaign_id",
        };
        writeln!(
            f,
            "Validation: {} account lines, {} campaign lines; predicted campaigns from {source}",
            v.account_lines, v.campaign_lines
        )?;
        let warnings = v.warnings();
        if warnings.is_empty() {
            writeln!(f, "  no problems found")?;
        }
        for w in warnings {
            writeln!(f, "  warning: {w}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_use_two_units() {
        assert_eq!(duration(None), "never");
        assert_eq!(duration(Some(0)), "0s");
        assert_eq!(duration(Some(250)), "250ms");
        assert_eq!(duration(Some(12_500)), "12s");
        assert_eq!(duration(Some(249_000)), "4m 09s");
        assert_eq!(duration(Some(2 * 3_600_000 + 5 * 60_000)), "2h 05m");
        assert_eq!(duration(Some(3 * 86_400_000 + 4 * 3_600_000)), "3d 04h");
    }

    #[test]
    fn rates_have_three_decimals() {
        assert_eq!(rate(None), "n/a");
        assert_eq!(rate(Some(1.0)), "1.000");
        assert_eq!(share(Some(0.25), 1, 4), "0.250 (1/4)");
    }
}

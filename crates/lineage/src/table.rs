//! Small pieces shared by the reports: rates with their counts, quartiles, and the number
//! formats of the markdown tables.

use std::fmt;

use serde::Serialize;

/// How many of `total` tests fell at or below `alpha`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Rate {
    /// The level.
    pub alpha: f64,
    /// Tests with p ≤ alpha.
    pub count: usize,
    /// Tests.
    pub total: usize,
}

impl Rate {
    /// Counts `log10_p` values at or below `log10(alpha)`.
    pub fn of(alpha: f64, log10_p: &[f64]) -> Rate {
        let level = alpha.log10();
        Rate {
            alpha,
            count: log10_p.iter().filter(|&&p| p <= level).count(),
            total: log10_p.len(),
        }
    }

    /// The rate, or 0 for no tests.
    pub fn value(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.count as f64 / self.total as f64
        }
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.2e} ({}/{})", self.value(), self.count, self.total)
    }
}

/// First quartile, median and third quartile; `None` where the quantile lies beyond what was
/// measured (a stream that never reached the threshold counts as +∞).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Quartiles {
    /// 25th percentile.
    pub q1: Option<f64>,
    /// Median.
    pub median: Option<f64>,
    /// 75th percentile.
    pub q3: Option<f64>,
}

impl Quartiles {
    /// Quartiles of `values`, `None` entries standing for +∞ (nearest-rank quantiles).
    pub fn of(values: &[Option<f64>]) -> Quartiles {
        let mut sorted: Vec<f64> = values.iter().map(|v| v.unwrap_or(f64::INFINITY)).collect();
        sorted.sort_by(f64::total_cmp);
        let q = |p: f64| -> Option<f64> {
            if sorted.is_empty() {
                return None;
            }
            let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
            Some(sorted[rank - 1]).filter(|v| v.is_finite())
        };
        Quartiles {
            q1: q(0.25),
            median: q(0.5),
            q3: q(0.75),
        }
    }

    /// `median [q1, q3]` with `suffix` after numbers, `>` `beyond` for unreached ones.
    pub fn show(&self, beyond: &str, digits: usize) -> String {
        let one = |v: Option<f64>| match v {
            Some(v) => format!("{v:.digits$}"),
            None => format!(">{beyond}"),
        };
        format!("{} [{}, {}]", one(self.median), one(self.q1), one(self.q3))
    }
}

/// A log10 p-value for a table: one decimal, `0` for p = 1.
pub fn log10_cell(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v == f64::NEG_INFINITY {
        "−∞".into()
    } else {
        format!("{v:.1}")
    }
}

/// A p-value in scientific notation.
pub fn p_cell(p: f64) -> String {
    format!("{p:.2e}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_quartiles() {
        let r = Rate::of(1e-2, &[-3.0, -2.0, -1.0, 0.0]);
        assert_eq!((r.count, r.total), (2, 4));
        assert_eq!(r.to_string(), "5.00e-1 (2/4)");
        let q = Quartiles::of(&[Some(1.0), Some(2.0), Some(3.0), None]);
        assert_eq!((q.q1, q.median, q.q3), (Some(1.0), Some(2.0), Some(3.0)));
        let q = Quartiles::of(&[Some(1.0), None, None, None]);
        assert_eq!(q.median, None);
        assert_eq!(q.show("2000", 0), ">2000 [1, >2000]");
        assert_eq!(log10_cell(-12.34), "-12.3");
    }
}

//! Exact tail probabilities in log space: the binomial upper tail (KGW) and the Gamma(n, 1)
//! upper tail (Gumbel-max), plus the Kolmogorov–Smirnov statistic and Holm's correction used
//! by calibration and attribution.
//!
//! The tails are sums of exact terms, accumulated from the largest term outward until the
//! rest cannot change the result in double precision; nothing is approximated by a normal
//! distribution, so p-values of 10⁻³⁰⁰ and beyond stay meaningful.

use std::f64::consts::{LN_10, PI};

/// Relative size below which further (monotonically shrinking) terms are dropped.
const NEGLIGIBLE: f64 = 1e-18;

/// `ln n!`: summed exactly below 256, Stirling's series (error < 1e-17 relative) above.
pub fn ln_factorial(n: u64) -> f64 {
    if n < 256 {
        return (2..=n).map(|i| (i as f64).ln()).sum();
    }
    let x = n as f64;
    let inv = 1.0 / x;
    let inv2 = inv * inv;
    x * x.ln() - x
        + 0.5 * (2.0 * PI * x).ln()
        + inv * (1.0 / 12.0 - inv2 * (1.0 / 360.0 - inv2 * (1.0 / 1260.0 - inv2 / 1680.0)))
}

/// `ln C(n, k)`.
fn ln_choose(n: u64, k: u64) -> f64 {
    ln_factorial(n) - ln_factorial(k) - ln_factorial(n - k)
}

/// `ln(e^a + e^b)` without overflow.
fn ln_add(a: f64, b: f64) -> f64 {
    if a == f64::NEG_INFINITY {
        return b;
    }
    let (hi, lo) = if a >= b { (a, b) } else { (b, a) };
    hi + (lo - hi).exp().ln_1p()
}

/// `ln(1 − e^x)` for `x ≤ 0`, accurate near both ends.
fn ln_one_minus_exp(x: f64) -> f64 {
    if x > -std::f64::consts::LN_2 {
        (-x.exp_m1()).ln()
    } else {
        (-x.exp()).ln_1p()
    }
}

/// Sums `term(j)` in log space for `j = start, start + step, …` while inside `[lo, hi]`,
/// stopping once terms fall below [`NEGLIGIBLE`] of the sum. `term` must shrink
/// monotonically along the walk.
fn ln_sum_walk(start: i64, step: i64, lo: i64, hi: i64, term: impl Fn(u64) -> f64) -> f64 {
    let mut total = f64::NEG_INFINITY;
    let mut j = start;
    let cutoff = NEGLIGIBLE.ln();
    while (lo..=hi).contains(&j) {
        let t = term(j as u64);
        total = ln_add(total, t);
        if t - total < cutoff {
            break;
        }
        j += step;
    }
    total
}

/// `ln P(X ≥ k)` for `X ~ Binomial(n, p)`, exactly.
pub fn ln_binomial_sf(k: u64, n: u64, p: f64) -> f64 {
    if k == 0 {
        return 0.0;
    }
    if k > n || p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return 0.0;
    }
    let (lp, lq) = (p.ln(), (-p).ln_1p());
    let term = |j: u64| ln_choose(n, j) + j as f64 * lp + (n - j) as f64 * lq;
    let mode = ((n + 1) as f64 * p).floor() as i64;
    let (k, n) = (k as i64, n as i64);
    if k > mode {
        // Terms shrink from k upward.
        ln_sum_walk(k, 1, k, n, term)
    } else {
        // The upper tail holds the mode: one minus the lower tail, whose terms shrink from
        // k − 1 downward.
        let lower = ln_sum_walk(k - 1, -1, 0, k - 1, term);
        ln_one_minus_exp(lower.min(0.0))
    }
}

/// `ln P(S ≥ s)` for `S ~ Gamma(n, 1)` with integer shape `n ≥ 1`, exactly:
/// `P(S ≥ s) = P(Poisson(s) ≤ n − 1)`.
pub fn ln_gamma_sf(n: u64, s: f64) -> f64 {
    if n == 0 || s <= 0.0 {
        return 0.0;
    }
    let ls = s.ln();
    let term = |j: u64| -s + j as f64 * ls - ln_factorial(j);
    let mode = s.floor() as i64;
    let top = n as i64 - 1;
    if top < mode {
        // Poisson terms shrink from n − 1 downward.
        ln_sum_walk(top, -1, 0, top, term)
    } else {
        // Complement: P(Poisson(s) ≥ n), terms shrink from n upward.
        let upper = ln_sum_walk(top + 1, 1, top + 1, i64::MAX, term);
        ln_one_minus_exp(upper.min(0.0))
    }
}

/// Converts a natural-log probability to log10.
pub fn log10(ln_p: f64) -> f64 {
    ln_p / LN_10
}

/// Holm's step-down correction of `p` values (given as log10): adjusted values in the input
/// order, monotone and capped at 0 (p = 1).
pub fn holm_log10(log10_p: &[f64]) -> Vec<f64> {
    let m = log10_p.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| log10_p[a].total_cmp(&log10_p[b]));
    let mut adjusted = vec![0.0; m];
    let mut running = f64::NEG_INFINITY;
    for (rank, &i) in order.iter().enumerate() {
        let scaled = (log10_p[i] + ((m - rank) as f64).log10()).min(0.0);
        running = running.max(scaled);
        adjusted[i] = running;
    }
    adjusted
}

/// The Kolmogorov–Smirnov statistic of `sample` against Uniform(0, 1): the largest distance
/// between the empirical and the uniform distribution functions.
pub fn ks_uniform(sample: &[f64]) -> f64 {
    let mut sorted = sample.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len() as f64;
    sorted
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            let x = x.clamp(0.0, 1.0);
            ((i + 1) as f64 / n - x).max(x - i as f64 / n)
        })
        .fold(0.0, f64::max)
}

/// The p-value of a KS statistic `d` over `n` samples (asymptotic Kolmogorov distribution,
/// with Stephens' small-sample correction); used to report calibration only.
pub fn ks_p_value(d: f64, n: usize) -> f64 {
    let sn = (n as f64).sqrt();
    let lambda = (sn + 0.12 + 0.11 / sn) * d;
    if lambda < 1e-3 {
        return 1.0;
    }
    let mut sum = 0.0;
    for j in 1..=100 {
        let j = f64::from(j);
        let sign = if j % 2.0 == 1.0 { 1.0 } else { -1.0 };
        let term = sign * (-2.0 * j * j * lambda * lambda).exp();
        sum += term;
        if term.abs() < 1e-16 {
            break;
        }
    }
    (2.0 * sum).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Brute force with exact binomial coefficients in f64 (small n only).
    fn binomial_sf_brute(k: u64, n: u64, p: f64) -> f64 {
        (k..=n)
            .map(|j| {
                let mut c = 1.0f64;
                for i in 0..j {
                    c *= (n - i) as f64 / (i + 1) as f64;
                }
                c * p.powi(j as i32) * (1.0 - p).powi((n - j) as i32)
            })
            .sum()
    }

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * a.abs().max(b.abs()).max(1e-300)
    }

    #[test]
    fn ln_factorial_is_continuous_across_the_switch() {
        let exact: f64 = (2..=300u64).map(|i| (i as f64).ln()).sum();
        assert!(
            close(ln_factorial(300), exact, 1e-13),
            "{}",
            ln_factorial(300)
        );
        let exact255: f64 = (2..=255u64).map(|i| (i as f64).ln()).sum();
        assert!(close(ln_factorial(255), exact255, 1e-15));
    }

    #[test]
    fn binomial_tail_matches_brute_force() {
        for &(n, p) in &[(10u64, 0.25), (40, 0.5), (100, 0.25), (60, 0.1)] {
            for k in 0..=n {
                let want = binomial_sf_brute(k, n, p);
                let got = ln_binomial_sf(k, n, p).exp();
                assert!(
                    close(got, want, 1e-10),
                    "n={n} k={k} p={p}: {got} vs {want}"
                );
            }
        }
    }

    #[test]
    fn binomial_tail_far_out_is_finite_in_logs() {
        // 1000 of 1000 green at gamma 0.25: p = 0.25^1000 = 10^-602.06.
        let l = log10(ln_binomial_sf(1000, 1000, 0.25));
        assert!(close(l, 1000.0 * 0.25f64.log10(), 1e-12), "{l}");
    }

    #[test]
    fn gamma_tail_matches_closed_forms() {
        // n = 1: P(Exp(1) ≥ s) = e^-s.
        for s in [0.1, 1.0, 5.0, 700.0, 5000.0] {
            assert!(close(ln_gamma_sf(1, s), -s, 1e-12), "s={s}");
        }
        // n = 2: e^-s (1 + s).
        for s in [0.5f64, 2.0, 30.0] {
            let want = -s + (1.0 + s).ln();
            assert!(close(ln_gamma_sf(2, s), want, 1e-12), "s={s}");
        }
        // The median of Gamma(50, 1) is about 50 − 1/3.
        let p = ln_gamma_sf(50, 49.667).exp();
        assert!((p - 0.5).abs() < 0.01, "{p}");
    }

    #[test]
    fn gamma_tail_against_poisson_brute_force() {
        for &n in &[3u64, 10, 40] {
            for &s in &[0.5f64, 3.0, 10.0, 25.0, 60.0] {
                let mut sum = 0.0;
                let mut term = (-s).exp();
                for j in 0..n {
                    if j > 0 {
                        term *= s / j as f64;
                    }
                    sum += term;
                }
                let got = ln_gamma_sf(n, s).exp();
                assert!(close(got, sum, 1e-10), "n={n} s={s}: {got} vs {sum}");
            }
        }
    }

    #[test]
    fn holm_is_monotone_and_scaled() {
        let p = [-5.0, -1.0, -3.0];
        let adj = holm_log10(&p);
        // Smallest times 3, next times 2, largest times 1, made monotone.
        assert!(close(adj[0], -5.0 + 3f64.log10(), 1e-12));
        assert!(close(adj[2], -3.0 + 2f64.log10(), 1e-12));
        assert!(close(adj[1], -1.0, 1e-12));
        assert_eq!(holm_log10(&[-0.01, -0.02]), vec![0.0, 0.0]);
    }

    #[test]
    fn ks_of_a_perfect_grid_is_small() {
        let n = 1000;
        let grid: Vec<f64> = (0..n).map(|i| (i as f64 + 0.5) / n as f64).collect();
        assert!(ks_uniform(&grid) <= 0.5 / n as f64 + 1e-12);
        assert!(ks_p_value(ks_uniform(&grid), n) > 0.99);
        let skewed: Vec<f64> = grid.iter().map(|x| x * x).collect();
        assert!(ks_p_value(ks_uniform(&skewed), n) < 1e-6);
    }
}

//! Deterministic randomness: seed derivation by hashing and the few distributions the
//! simulator samples from.
//!
//! Every random stream is derived from `(seed, stream, index)` through SplitMix64 mixing, so an
//! account's behaviour depends only on the seed and its own index, never on the order in which
//! other accounts were processed. Nothing here touches the operating system's entropy
//! (`thread_rng`) or hash-map iteration order. This is not a cryptographic generator and is not
//! meant to be one.

use rand::Rng;
use rand_distr::StandardNormal;
use rand_pcg::Pcg64Mcg;

/// The generator every simulated stream uses: small (16 bytes) and fast.
pub(crate) type SimRng = Pcg64Mcg;

/// Stream identifiers, so the same index in different roles gets unrelated randomness.
#[derive(Debug, Clone, Copy)]
#[repr(u64)]
pub(crate) enum Stream {
    /// Per-account behaviour during generation.
    Behaviour = 1,
    /// Per-account attributes chosen at setup (identity, network, client).
    Setup = 2,
    /// Campaign-level shared state (IP pools, templates, wave jitter).
    Campaign = 3,
    /// Enterprise-level shared state (NAT block, payment method, domain).
    Enterprise = 4,
    /// Account identifiers.
    AccountId = 5,
    /// Request identifiers.
    RequestId = 6,
    /// API key identifiers.
    KeyId = 7,
    /// Payment fingerprints.
    Payment = 8,
}

/// SplitMix64's finaliser: a bijective, well-mixing map of 64-bit values.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Hashes a short sequence of words into one; order matters.
pub(crate) fn hash(parts: &[u64]) -> u64 {
    let mut h = 0x6A09_E667_F3BC_C908_u64;
    for &p in parts {
        h = mix(h ^ mix(p));
    }
    h
}

/// A generator for `(seed, stream, index)`.
pub(crate) fn rng_for(seed: u64, stream: Stream, index: u64) -> SimRng {
    let hi = hash(&[seed, stream as u64, index, 1]);
    let lo = hash(&[seed, stream as u64, index, 2]);
    Pcg64Mcg::new((u128::from(hi) << 64) | u128::from(lo))
}

/// A uniform number in [0, 1) from a hash (53 bits).
pub(crate) fn unit(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// True with probability `p`.
pub(crate) fn chance(rng: &mut SimRng, p: f64) -> bool {
    rng.gen::<f64>() < p
}

/// An exponential variate with the given mean.
pub(crate) fn exp(rng: &mut SimRng, mean: f64) -> f64 {
    // 1 - u lies in (0, 1], so the logarithm is finite.
    -(1.0 - rng.gen::<f64>()).ln() * mean
}

/// A log-normal variate with the given median and log-space standard deviation.
pub(crate) fn lognormal(rng: &mut SimRng, median: f64, sigma: f64) -> f64 {
    let z: f64 = rng.sample(StandardNormal);
    median * (sigma * z).exp()
}

/// Number of trials up to and including the first success, each succeeding with probability
/// `p` (at least 1). `p` is clamped to a small positive floor so the result stays finite.
pub(crate) fn geometric(rng: &mut SimRng, p: f64) -> u64 {
    if p >= 1.0 {
        return 1;
    }
    let p = p.max(1e-12);
    let u = 1.0 - rng.gen::<f64>();
    let k = (u.ln() / (1.0 - p).ln()).floor();
    // Saturating float-to-int conversion; a huge k only means "never within the scenario".
    (k as u64).saturating_add(1)
}

/// An index drawn with probability proportional to `weights` (all non-negative, not all zero).
pub(crate) fn pick_weighted(rng: &mut SimRng, weights: &[f64]) -> usize {
    let total: f64 = weights.iter().sum();
    let mut x = rng.gen::<f64>() * total;
    for (i, w) in weights.iter().enumerate() {
        if x < *w {
            return i;
        }
        x -= w;
    }
    weights.len().saturating_sub(1)
}

/// A uniform index below `n` (0 when `n` is 0, which callers avoid).
pub(crate) fn below(rng: &mut SimRng, n: usize) -> usize {
    if n <= 1 {
        0
    } else {
        rng.gen_range(0..n)
    }
}

/// A uniform value in the inclusive range `[lo, hi]` of floats.
pub(crate) fn between(rng: &mut SimRng, lo: f64, hi: f64) -> f64 {
    if hi <= lo {
        lo
    } else {
        lo + rng.gen::<f64>() * (hi - lo)
    }
}

/// A uniform integer in the inclusive range `[lo, hi]`.
pub(crate) fn between_u64(rng: &mut SimRng, lo: u64, hi: u64) -> u64 {
    if hi <= lo {
        lo
    } else {
        rng.gen_range(lo..=hi)
    }
}

/// An element of `items` chosen uniformly; `None` for an empty slice.
pub(crate) fn choose<'a, T>(rng: &mut SimRng, items: &'a [T]) -> Option<&'a T> {
    if items.is_empty() {
        None
    } else {
        items.get(below(rng, items.len()))
    }
}

/// A Zipf-like rank draw in `0..n`: rank `k` has weight `(k + 1)^-s`. Used for "popular
/// versions": a few values are common, the tail is long. Rejection-free inverse-CDF
/// approximation via the continuous power law, good enough for attribute choice.
pub(crate) fn zipf_rank(rng: &mut SimRng, n: usize, s: f64) -> usize {
    if n <= 1 {
        return 0;
    }
    let u: f64 = rng.gen::<f64>();
    // Draw k in [1, n + 1) from the continuous power law; floor(k) - 1 is the rank.
    let nf = n as f64 + 1.0;
    let k = if (s - 1.0).abs() < 1e-9 {
        nf.powf(u)
    } else {
        let a = 1.0 - s;
        (1.0 + u * (nf.powf(a) - 1.0)).powf(1.0 / a)
    };
    ((k.floor() as usize).saturating_sub(1)).min(n - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a: Vec<u64> = (0..4)
            .map(|_| rng_for(7, Stream::Behaviour, 3).gen())
            .collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        let mut x = rng_for(7, Stream::Behaviour, 3);
        let mut y = rng_for(7, Stream::Setup, 3);
        let mut z = rng_for(8, Stream::Behaviour, 3);
        let (x, y, z): (u64, u64, u64) = (x.gen(), y.gen(), z.gen());
        assert_ne!(x, y);
        assert_ne!(x, z);
    }

    #[test]
    fn geometric_mean_matches() {
        let mut rng = rng_for(1, Stream::Behaviour, 0);
        let n = 20_000;
        let mean = (0..n).map(|_| geometric(&mut rng, 0.2) as f64).sum::<f64>() / n as f64;
        assert!((mean - 5.0).abs() < 0.3, "{mean}");
    }

    #[test]
    fn zipf_rank_prefers_low_ranks_and_stays_in_range() {
        let mut rng = rng_for(1, Stream::Setup, 0);
        let mut counts = [0u32; 10];
        for _ in 0..10_000 {
            counts[zipf_rank(&mut rng, 10, 1.2)] += 1;
        }
        assert!(counts[0] > counts[5]);
        assert!(counts.iter().all(|&c| c > 0));
    }
}

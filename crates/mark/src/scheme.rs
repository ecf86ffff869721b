//! The two watermarks as sampling-time processors: KGW's green-list bias and Gumbel-max
//! selection (SCHEME.md, "KGW soft watermark" and "Gumbel-max").

use crate::prf::{uniform, Prf, Seed};
use crate::Error;

/// Which watermark a key is used with, and its parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scheme {
    /// Kirchenbauer et al.'s soft watermark: a `gamma` fraction of tokens is green at every
    /// position, and green logits get `delta` added.
    Kgw {
        /// Green fraction, in (0, 1).
        gamma: f64,
        /// Bias added to green logits, ≥ 0.
        delta: f64,
    },
    /// Aaronson's Gumbel-max sampling: the draw is a function of key and context.
    Gumbel,
}

impl Scheme {
    /// A checked KGW scheme.
    pub fn kgw(gamma: f64, delta: f64) -> Result<Scheme, Error> {
        if !(gamma > 0.0 && gamma < 1.0) {
            return Err(Error::InvalidParameter {
                name: "gamma",
                reason: format!("{gamma} is not strictly between 0 and 1"),
            });
        }
        if !(delta >= 0.0 && delta.is_finite()) {
            return Err(Error::InvalidParameter {
                name: "delta",
                reason: format!("{delta} is not a finite value ≥ 0"),
            });
        }
        Ok(Scheme::Kgw { gamma, delta })
    }

    /// `kgw` or `gumbel`.
    pub fn name(&self) -> &'static str {
        match self {
            Scheme::Kgw { .. } => "kgw",
            Scheme::Gumbel => "gumbel",
        }
    }
}

/// KGW's logits processor for one key.
#[derive(Debug, Clone)]
pub struct Kgw {
    prf: Prf,
    gamma: f64,
    delta: f32,
}

impl Kgw {
    /// The processor of `prf` with green fraction `gamma` and bias `delta` (validated by
    /// [`Scheme::kgw`]).
    pub fn new(prf: Prf, gamma: f64, delta: f64) -> Result<Kgw, Error> {
        Scheme::kgw(gamma, delta)?;
        Ok(Kgw {
            prf,
            gamma,
            delta: delta as f32,
        })
    }

    /// The PRF.
    pub fn prf(&self) -> &Prf {
        &self.prf
    }

    /// Whether `t` is green under `seed`.
    #[inline]
    pub fn is_green(&self, seed: Seed, t: u32) -> bool {
        uniform(self.prf.value_at(seed, t)) < self.gamma
    }

    /// The seed of the next position after `input_ids` (prompt and output so far), if a full
    /// window precedes it.
    fn next_seed(&self, input_ids: &[u32]) -> Option<Seed> {
        let window = self.prf.window_of(input_ids, input_ids.len())?;
        Some(self.prf.seed(window))
    }

    /// Adds `delta` to the logit of every green token (ids `0..logits.len()`) for the position
    /// after `input_ids`. Leaves the logits alone when fewer than `h` tokens precede.
    pub fn bias(&self, input_ids: &[u32], logits: &mut [f32]) {
        let Some(seed) = self.next_seed(input_ids) else {
            return;
        };
        for (t, logit) in (0u32..).zip(logits.iter_mut()) {
            if self.is_green(seed, t) {
                *logit += self.delta;
            }
        }
    }

    /// [`Kgw::bias`] over a sparse candidate list of `(token, logit)`.
    pub fn bias_sparse(&self, input_ids: &[u32], candidates: &mut [(u32, f64)]) {
        let Some(seed) = self.next_seed(input_ids) else {
            return;
        };
        for (t, logit) in candidates.iter_mut() {
            if self.is_green(seed, *t) {
                *logit += f64::from(self.delta);
            }
        }
    }
}

/// Gumbel-max selection for one key.
#[derive(Debug, Clone)]
pub struct Gumbel {
    prf: Prf,
    temperature: f64,
}

impl Gumbel {
    /// Selection with `prf` at `temperature` (> 0; 1 keeps the model's distribution).
    pub fn new(prf: Prf, temperature: f64) -> Result<Gumbel, Error> {
        if !(temperature > 0.0 && temperature.is_finite()) {
            return Err(Error::InvalidParameter {
                name: "temperature",
                reason: format!("{temperature} is not a finite value > 0"),
            });
        }
        Ok(Gumbel { prf, temperature })
    }

    /// The PRF.
    pub fn prf(&self) -> &Prf {
        &self.prf
    }

    /// The token to emit after `input_ids` given the model's logits over ids
    /// `0..logits.len()`: `argmax logit/T − ln(−ln u)`, ties to the lowest id, tokens at −∞
    /// (masked by top-k or top-p) never chosen. `None` when fewer than `h` tokens precede (the
    /// engine samples as usual) or every logit is −∞.
    pub fn choose(&self, input_ids: &[u32], logits: &[f32]) -> Option<u32> {
        let window = self.prf.window_of(input_ids, input_ids.len())?;
        let seed = self.prf.seed(window);
        self.argmax(seed, (0u32..).zip(logits.iter().map(|&l| f64::from(l))))
    }

    /// [`Gumbel::choose`] over a sparse candidate list of `(token, logit)`.
    pub fn choose_sparse(&self, input_ids: &[u32], candidates: &[(u32, f64)]) -> Option<u32> {
        let window = self.prf.window_of(input_ids, input_ids.len())?;
        let seed = self.prf.seed(window);
        self.argmax(seed, candidates.iter().copied())
    }

    fn argmax(&self, seed: Seed, candidates: impl Iterator<Item = (u32, f64)>) -> Option<u32> {
        let mut best: Option<(u32, f64)> = None;
        for (t, logit) in candidates {
            if logit == f64::NEG_INFINITY || logit.is_nan() {
                continue;
            }
            let u = uniform(self.prf.value_at(seed, t));
            let key = logit / self.temperature - (-u.ln()).ln();
            let better = match best {
                None => true,
                Some((bt, bk)) => key > bk || (key == bk && t < bt),
            };
            if better {
                best = Some((t, key));
            }
        }
        best.map(|(t, _)| t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prf::{Context, Mode};
    use crate::Key;

    fn prf(h: usize) -> Prf {
        Prf::new(
            &Key::from_bytes([5u8; 32]),
            Context::new(h, Mode::Ordered).expect("context"),
        )
    }

    #[test]
    fn parameters_are_checked() {
        assert!(Scheme::kgw(0.0, 2.0).is_err());
        assert!(Scheme::kgw(1.0, 2.0).is_err());
        assert!(Scheme::kgw(0.25, -1.0).is_err());
        assert!(Scheme::kgw(0.25, f64::NAN).is_err());
        assert!(Gumbel::new(prf(1), 0.0).is_err());
        assert!(Gumbel::new(prf(1), f64::INFINITY).is_err());
    }

    #[test]
    fn kgw_biases_about_gamma_of_the_vocabulary() {
        let kgw = Kgw::new(prf(1), 0.25, 2.0).expect("kgw");
        let mut logits = vec![0.0f32; 100_000];
        kgw.bias(&[42], &mut logits);
        let green = logits.iter().filter(|&&l| l == 2.0).count() as f64;
        let others = logits.iter().filter(|&&l| l == 0.0).count() as f64;
        assert_eq!(green + others, 100_000.0);
        // Binomial(100000, 0.25): sd ≈ 137; allow 6 sd.
        assert!((green - 25_000.0).abs() < 6.0 * 137.0, "{green}");
        // Different context, different list; no context, no bias.
        let mut other = vec![0.0f32; 100_000];
        kgw.bias(&[43], &mut other);
        assert_ne!(logits, other);
        let mut none = vec![0.0f32; 10];
        kgw.bias(&[], &mut none);
        assert!(none.iter().all(|&l| l == 0.0));
    }

    #[test]
    fn sparse_and_dense_agree() {
        let kgw = Kgw::new(prf(2), 0.5, 1.5).expect("kgw");
        let mut dense = vec![0.25f32; 50];
        kgw.bias(&[1, 2, 3], &mut dense);
        let mut sparse: Vec<(u32, f64)> = (0..50).map(|t| (t, 0.25)).collect();
        kgw.bias_sparse(&[1, 2, 3], &mut sparse);
        for (t, l) in &sparse {
            assert_eq!(*l as f32, dense[*t as usize]);
        }
        let gumbel = Gumbel::new(prf(2), 1.0).expect("gumbel");
        let logits: Vec<f32> = (0..50).map(|t| (t % 7) as f32 * 0.3).collect();
        let sparse: Vec<(u32, f64)> = (0u32..).zip(logits.iter().map(|&l| f64::from(l))).collect();
        assert_eq!(
            gumbel.choose(&[9, 9], &logits),
            gumbel.choose_sparse(&[9, 9], &sparse)
        );
    }

    /// Over many distinct contexts, Gumbel-max draws follow the softmax of the logits.
    #[test]
    fn gumbel_draws_follow_the_distribution() {
        let gumbel = Gumbel::new(prf(1), 1.0).expect("gumbel");
        let probs = [0.5f64, 0.3, 0.15, 0.05];
        let logits: Vec<f32> = probs.iter().map(|p| p.ln() as f32).collect();
        let n = 40_000u32;
        let mut counts = [0f64; 4];
        for c in 0..n {
            if let Some(t) = gumbel.choose(&[c], &logits) {
                counts[t as usize] += 1.0;
            }
        }
        let chi2: f64 = counts
            .iter()
            .zip(probs)
            .map(|(o, p)| {
                let e = p * f64::from(n);
                (o - e) * (o - e) / e
            })
            .sum();
        // 3 degrees of freedom: P(chi2 > 21.1) ≈ 1e-4.
        assert!(chi2 < 21.1, "chi2 {chi2}, counts {counts:?}");
    }

    #[test]
    fn gumbel_skips_masked_tokens_and_needs_context() {
        let gumbel = Gumbel::new(prf(1), 1.0).expect("gumbel");
        let logits = [f32::NEG_INFINITY, 0.0, f32::NEG_INFINITY];
        assert_eq!(gumbel.choose(&[1], &logits), Some(1));
        assert_eq!(gumbel.choose(&[], &logits), None);
        assert_eq!(gumbel.choose(&[1], &[f32::NEG_INFINITY; 3]), None);
    }
}

//! An interpolated n-gram language model over token ids, small enough to train on CPU in
//! seconds and fast enough to sample millions of tokens: the teacher that serves watermarked
//! text and the students that learn from it.
//!
//! Smoothing is interpolated absolute discounting (Ney, Essen and Kneser 1994): for a context
//! `c` of `n` tokens with (weighted) count `N(c)`, `T(c)` distinct continuations and discount
//! `D`,
//!
//! ```text
//! P(w | c) = max(N(c, w) − D, 0) / N(c) + D · T(c) / N(c) · P(w | c′)
//! ```
//!
//! where `c′` drops the oldest token; a context never seen passes the lower order through
//! unchanged, and the lowest order is the unigram relative frequency. Counts may be weighted
//! (a student's fine-tuning text counts more than its pre-training text); weights must be at
//! least 1 so that a single occurrence survives the discount.
//!
//! The distribution is *sparse*: it is the model above restricted to a candidate set and
//! renormalised over it, so that a step costs O(candidates), not O(vocabulary). The candidates
//! are the `per_context` most frequent continuations of every matching context (all orders
//! above the unigram) plus the `backoff` most frequent unigrams. Candidates are sorted by id, so
//! that nothing about hash-map iteration order reaches an output.
//!
//! Not a neural model and not a general LM toolkit: no pruning, no persistence, no
//! perplexity over unseen tokens (every candidate has been seen in training).

use rustc_hash::FxHashMap;

use crate::Error;

/// The highest order supported: a context of up to five tokens is packed into 105 bits.
pub const MAX_ORDER: usize = 6;

/// Bits per token in a packed context.
const BITS: usize = 21;

/// The largest token id the model accepts (ids are packed into 21 bits).
pub const MAX_TOKEN: u32 = (1 << BITS) - 1;

/// Shape and smoothing of a model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LmParams {
    /// Order `N`: contexts of up to `N − 1` tokens (1 ..= [`MAX_ORDER`]).
    pub order: usize,
    /// Absolute discount `D`, in (0, 1].
    pub discount: f64,
    /// Continuations per matching context admitted as candidates (most frequent first).
    pub per_context: usize,
    /// Most frequent unigrams always admitted as candidates.
    pub backoff: usize,
    /// The token that stands for positions before the start of a sequence.
    pub pad: u32,
}

impl LmParams {
    /// Checks ranges; names options as in [`crate::ModelOptions`].
    pub fn validate(&self) -> Result<(), Error> {
        if !(1..=MAX_ORDER).contains(&self.order) {
            return Err(Error::InvalidOption {
                name: "model.order",
                message: format!("{} is not in 1..={MAX_ORDER}", self.order),
            });
        }
        if !(self.discount > 0.0 && self.discount <= 1.0) {
            return Err(Error::InvalidOption {
                name: "model.discount",
                message: format!("{} is not in (0, 1]", self.discount),
            });
        }
        if self.per_context == 0 && self.backoff == 0 {
            return Err(Error::InvalidOption {
                name: "model.backoff",
                message: "per_context and backoff are both 0: no candidate would remain".into(),
            });
        }
        if self.pad > MAX_TOKEN {
            return Err(Error::InvalidOption {
                name: "model.pad",
                message: format!("{} is above the largest token id {MAX_TOKEN}", self.pad),
            });
        }
        Ok(())
    }
}

/// Counts n-grams of weighted sequences; [`NgramBuilder::build`] turns them into a model.
#[derive(Debug, Clone)]
pub struct NgramBuilder {
    params: LmParams,
    /// `grams[n]`: packed (context of `n` tokens, token) → weighted count.
    grams: Vec<FxHashMap<u128, f32>>,
}

impl NgramBuilder {
    /// An empty builder.
    pub fn new(params: LmParams) -> Result<NgramBuilder, Error> {
        params.validate()?;
        Ok(NgramBuilder {
            params,
            grams: vec![FxHashMap::default(); params.order],
        })
    }

    /// Counts every position of `sequence` (the positions before its start read as the pad
    /// token) with `weight` (≥ 1).
    pub fn add(&mut self, sequence: &[u32], weight: f32) -> Result<(), Error> {
        if !(weight >= 1.0 && weight.is_finite()) {
            return Err(Error::InvalidOption {
                name: "model.fine_tune_weight",
                message: format!("count weight {weight} is not a finite value ≥ 1"),
            });
        }
        if let Some(&t) = sequence.iter().find(|&&t| t > MAX_TOKEN) {
            return Err(Error::InvalidOption {
                name: "model",
                message: format!("token id {t} is above the largest supported id {MAX_TOKEN}"),
            });
        }
        let pad = self.params.pad;
        for (i, &w) in sequence.iter().enumerate() {
            let mut context = 0u128;
            for (n, grams) in self.grams.iter_mut().enumerate() {
                if n > 0 {
                    let t = i.checked_sub(n).map_or(pad, |j| sequence[j]);
                    context |= u128::from(t) << (BITS * (n - 1));
                }
                *grams
                    .entry((context << BITS) | u128::from(w))
                    .or_insert(0.0) += weight;
            }
        }
        Ok(())
    }

    /// The model. Fails only when nothing was added.
    pub fn build(self) -> Result<NgramLm, Error> {
        let params = self.params;
        let mut grams = self.grams.into_iter();
        let unigrams = grams.next().unwrap_or_default();
        if unigrams.is_empty() {
            return Err(Error::NotEnoughData(
                "an n-gram model needs at least one token".into(),
            ));
        }
        let max_id = unigrams.keys().map(|&k| k as u32).max().unwrap_or(0);
        let mut unigram = vec![0f32; max_id as usize + 1];
        for (&k, &c) in &unigrams {
            unigram[k as usize] = c;
        }
        let unigram_total = unigram.iter().map(|&c| f64::from(c)).sum();
        let mut top_unigrams: Vec<u32> = unigrams.keys().map(|&k| k as u32).collect();
        top_unigrams.sort_unstable_by(|&a, &b| {
            unigram[b as usize]
                .total_cmp(&unigram[a as usize])
                .then(a.cmp(&b))
        });
        top_unigrams.truncate(params.backoff);
        top_unigrams.sort_unstable();
        let levels = grams.map(|g| Level::new(g, params.per_context)).collect();
        Ok(NgramLm {
            params,
            unigram,
            unigram_total,
            top_unigrams,
            levels,
        })
    }
}

/// The contexts of one order above the unigram.
#[derive(Debug, Clone, Default)]
struct Level {
    contexts: FxHashMap<u128, Entry>,
    /// Continuations of every context, each context's run sorted by id.
    continuations: Vec<(u32, f32)>,
    /// The `per_context` most frequent continuations of every context, each run sorted by id.
    top: Vec<u32>,
}

/// One context: where its continuations are and their totals.
#[derive(Debug, Clone, Copy)]
struct Entry {
    start: u32,
    len: u32,
    top_start: u32,
    top_len: u32,
    total: f64,
    types: f64,
}

impl Level {
    fn new(grams: FxHashMap<u128, f32>, per_context: usize) -> Level {
        let mut sorted: Vec<(u128, f32)> = grams.into_iter().collect();
        sorted.sort_unstable_by_key(|&(k, _)| k);
        let mut level = Level {
            contexts: FxHashMap::default(),
            continuations: Vec::with_capacity(sorted.len()),
            top: Vec::new(),
        };
        let mut by_count: Vec<(u32, f32)> = Vec::new();
        for run in sorted.chunk_by(|a, b| a.0 >> BITS == b.0 >> BITS) {
            let context = run[0].0 >> BITS;
            let start = level.continuations.len();
            let top_start = level.top.len();
            let mut total = 0f64;
            for &(k, c) in run {
                let t = (k & u128::from(MAX_TOKEN)) as u32;
                level.continuations.push((t, c));
                total += f64::from(c);
            }
            by_count.clear();
            by_count.extend_from_slice(&level.continuations[start..]);
            by_count.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            by_count.truncate(per_context);
            by_count.sort_unstable_by_key(|&(t, _)| t);
            level.top.extend(by_count.iter().map(|&(t, _)| t));
            level.contexts.insert(
                context,
                Entry {
                    start: start as u32,
                    len: run.len() as u32,
                    top_start: top_start as u32,
                    top_len: by_count.len() as u32,
                    total,
                    types: run.len() as f64,
                },
            );
        }
        level
    }

    /// The count of `t` after the context of `entry`.
    #[inline]
    fn count(&self, entry: &Entry, t: u32) -> f64 {
        let run = &self.continuations[entry.start as usize..(entry.start + entry.len) as usize];
        run.binary_search_by_key(&t, |&(id, _)| id)
            .map_or(0.0, |i| f64::from(run[i].1))
    }
}

/// A trained model (see the module documentation for the distribution it defines).
#[derive(Debug, Clone)]
pub struct NgramLm {
    params: LmParams,
    unigram: Vec<f32>,
    unigram_total: f64,
    top_unigrams: Vec<u32>,
    /// `levels[n − 1]`: contexts of `n` tokens.
    levels: Vec<Level>,
}

impl NgramLm {
    /// The model's parameters.
    pub fn params(&self) -> LmParams {
        self.params
    }

    /// Every token seen in training, sorted.
    pub fn vocabulary(&self) -> Vec<u32> {
        (0u32..)
            .zip(&self.unigram)
            .filter(|(_, &c)| c > 0.0)
            .map(|(t, _)| t)
            .collect()
    }

    /// Distinct n-grams stored, all orders together.
    pub fn size(&self) -> usize {
        self.unigram.iter().filter(|&&c| c > 0.0).count()
            + self
                .levels
                .iter()
                .map(|l| l.continuations.len())
                .sum::<usize>()
    }

    /// The packed context the next-token distribution after `history` depends on: its last
    /// `order − 1` tokens, the pad token standing for positions before the start.
    pub fn context_key(&self, history: &[u32]) -> u128 {
        let mut key = 0u128;
        for n in 1..self.params.order {
            let t = history
                .len()
                .checked_sub(n)
                .map_or(self.params.pad, |j| history[j]);
            key |= u128::from(t) << (BITS * (n - 1));
        }
        key
    }

    /// The next-token distribution after `history` (every token so far, oldest first) as
    /// `(token, probability)` sorted by token, summing to 1, into `out`.
    pub fn distribution(&self, history: &[u32], out: &mut Vec<(u32, f64)>) {
        self.distribution_of(self.context_key(history), out);
    }

    /// [`NgramLm::distribution`] for a context given by [`NgramLm::context_key`].
    pub fn distribution_of(&self, key: u128, out: &mut Vec<(u32, f64)>) {
        out.clear();
        let mut found: [Option<&Entry>; MAX_ORDER] = [None; MAX_ORDER];
        for (n, level) in (1..).zip(&self.levels) {
            let mask = (1u128 << (BITS * n)) - 1;
            found[n] = level.contexts.get(&(key & mask));
        }
        out.extend(self.top_unigrams.iter().map(|&t| (t, 0.0)));
        for (n, level) in (1..).zip(&self.levels) {
            if let Some(e) = found[n] {
                let top = &level.top[e.top_start as usize..(e.top_start + e.top_len) as usize];
                out.extend(top.iter().map(|&t| (t, 0.0)));
            }
        }
        out.sort_unstable_by_key(|&(t, _)| t);
        out.dedup_by_key(|&mut (t, _)| t);
        let d = self.params.discount;
        let mut sum = 0.0;
        for (t, p) in out.iter_mut() {
            let c = self.unigram.get(*t as usize).copied().unwrap_or(0.0);
            let mut q = f64::from(c) / self.unigram_total;
            for (n, level) in (1..).zip(&self.levels) {
                if let Some(e) = found[n] {
                    let c = level.count(e, *t);
                    q = (c - d).max(0.0) / e.total + d * e.types / e.total * q;
                }
            }
            *p = q;
            sum += q;
        }
        if sum > 0.0 {
            for (_, p) in out.iter_mut() {
                *p /= sum;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LanguageModel;

    fn params(order: usize) -> LmParams {
        LmParams {
            order,
            discount: 0.75,
            per_context: 8,
            backoff: 4,
            pad: 999,
        }
    }

    fn model(order: usize, texts: &[&[u32]]) -> NgramLm {
        let mut b = NgramBuilder::new(params(order)).expect("params");
        for t in texts {
            b.add(t, 1.0).expect("add");
        }
        b.build().expect("model")
    }

    #[test]
    fn distribution_sums_to_one_and_is_sorted() {
        let lm = model(3, &[&[1, 2, 3, 4, 2, 3, 5], &[2, 3, 4, 6, 7, 1, 2]]);
        let mut out = Vec::new();
        for history in [&[][..], &[1], &[1, 2], &[2, 3], &[42, 43], &[7, 1, 2, 3]] {
            lm.distribution(history, &mut out);
            let sum: f64 = out.iter().map(|&(_, p)| p).sum();
            assert!((sum - 1.0).abs() < 1e-12, "{history:?}: {sum}");
            assert!(out.windows(2).all(|w| w[0].0 < w[1].0), "{out:?}");
            assert!(out.iter().all(|&(_, p)| p > 0.0));
        }
    }

    #[test]
    fn interpolation_matches_the_formula() {
        // Bigram model over one text; after token 2 we saw 3 twice and 4 once.
        let lm = model(2, &[&[2, 3, 2, 3, 2, 4]]);
        let mut out = Vec::new();
        lm.distribution(&[2], &mut out);
        // Unigrams: 2 ×3, 3 ×2, 4 ×1 out of 6. Context (2): N = 3, T = 2, D = 0.75.
        let uni = |c: f64| c / 6.0;
        let p = |c: f64, u: f64| (c - 0.75f64).max(0.0) / 3.0 + 0.75 * 2.0 / 3.0 * u;
        let expected = [
            (2, p(0.0, uni(3.0))),
            (3, p(2.0, uni(2.0))),
            (4, p(1.0, uni(1.0))),
        ];
        let total: f64 = expected.iter().map(|e| e.1).sum();
        assert_eq!(out.len(), 3);
        for ((t, q), (et, ep)) in out.iter().zip(expected) {
            assert_eq!(*t, et);
            assert!((q - ep / total).abs() < 1e-12, "{t}: {q} vs {}", ep / total);
        }
    }

    #[test]
    fn candidates_are_bounded() {
        // One context followed by 50 different tokens: per_context 8 + backoff 4.
        let mut text = Vec::new();
        for t in 0..50u32 {
            text.extend_from_slice(&[500, 100 + t]);
        }
        let lm = model(2, &[&text]);
        let mut out = Vec::new();
        lm.distribution(&[500], &mut out);
        assert!(out.len() <= 12, "{}", out.len());
        assert_eq!(lm.top1(&[100], &mut out), Some(500));
    }

    #[test]
    fn weights_and_ids_are_checked() {
        let mut b = NgramBuilder::new(params(3)).expect("params");
        assert!(b.add(&[1, 2], 0.5).is_err());
        assert!(b.add(&[1, MAX_TOKEN + 1], 1.0).is_err());
        assert!(NgramBuilder::new(params(3)).expect("p").build().is_err());
        assert!(NgramBuilder::new(params(7)).is_err());
        let mut heavy = NgramBuilder::new(params(2)).expect("params");
        heavy.add(&[1, 2, 1, 3], 1.0).expect("add");
        heavy.add(&[1, 3], 4.0).expect("add");
        let lm = heavy.build().expect("model");
        assert_eq!(lm.top1(&[1], &mut Vec::new()), Some(3));
    }
}

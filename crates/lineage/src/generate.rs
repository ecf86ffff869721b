//! Sampling answers from a language model, plainly or under a watermark, and the seeded
//! streams every experiment draws from.
//!
//! A served answer is the model's continuation of `prompt ‖ SEP` up to the end token (not
//! included) or a length cap. The watermark sees the whole input (prompt and separator
//! included), as an inference engine's logits processor does. Randomness comes only from
//! [`rng`]: one PCG stream per (seed, purpose, index), so an answer does not depend on how many
//! other answers were drawn before it.

use moat_mark::{mix, Gumbel, Key, Kgw};
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;
use rustc_hash::{FxHashMap, FxHashSet};

use crate::corpus::{END, SEP};
use crate::model::LanguageModel;

/// How the next token is chosen.
#[derive(Debug, Clone)]
pub enum Marker {
    /// Ordinary sampling from the model's distribution.
    Plain,
    /// KGW: green candidates get `δ` added to their logit, then ordinary sampling.
    Kgw(Kgw),
    /// Gumbel-max: the key and the window choose the token.
    Gumbel(Gumbel),
}

/// One generated answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Generation {
    /// The answer's tokens (the end token excluded).
    pub tokens: Vec<u32>,
    /// Sum of `−ln p` of every chosen token (the end token included) under the model's own,
    /// unwatermarked distribution: the text's cost in perplexity.
    pub neg_log_prob: f64,
    /// Tokens chosen, the end token included.
    pub steps: usize,
}

/// A cached context: its distribution and its logits (`ln p`), both sorted by token.
type Cached = (Vec<(u32, f64)>, Vec<(u32, f64)>);

/// Contexts whose distributions a [`Generator`] keeps before starting afresh.
const CACHED_CONTEXTS: usize = 1 << 16;

/// Samples answers from one model, under any marker. Distributions are cached by context
/// (they depend on the last `order − 1` tokens only), which makes serving the same questions
/// under many keys cheap; the cache never changes an output.
#[derive(Debug)]
pub struct Generator<'a> {
    lm: &'a dyn LanguageModel,
    max_tokens: usize,
    repeat_guard: bool,
    distribution: Vec<(u32, f64)>,
    logits: Vec<(u32, f64)>,
    base_logits: Vec<(u32, f64)>,
    weights: Vec<(u32, f64)>,
    states: FxHashSet<u64>,
    /// Context → (distribution, logits).
    cache: FxHashMap<u128, Cached>,
}

impl<'a> Generator<'a> {
    /// Answers of at most `max_tokens` tokens from `lm`. With `repeat_guard`, a Gumbel-max
    /// step whose state (model context and watermark window) already occurred in the same
    /// answer samples ordinarily: Gumbel-max is a deterministic function of that state, so
    /// without the guard a repeated state repeats forever.
    pub fn new(lm: &'a dyn LanguageModel, max_tokens: usize, repeat_guard: bool) -> Generator<'a> {
        Generator {
            lm,
            max_tokens,
            repeat_guard,
            distribution: Vec::new(),
            logits: Vec::new(),
            base_logits: Vec::new(),
            weights: Vec::new(),
            states: FxHashSet::default(),
            cache: FxHashMap::default(),
        }
    }

    /// The answer to `prompt` under `marker`.
    pub fn answer(&mut self, marker: &Marker, prompt: &[u32], rng: &mut Pcg64) -> Generation {
        let mut input = Vec::with_capacity(prompt.len() + 1 + self.max_tokens);
        input.extend_from_slice(prompt);
        input.push(SEP);
        let start = input.len();
        let mut neg_log_prob = 0.0;
        let mut steps = 0;
        self.states.clear();
        let state_width = match marker {
            Marker::Gumbel(g) => g.prf().context().width(),
            _ => 0,
        }
        .max(self.lm.context_width());
        while input.len() - start < self.max_tokens {
            self.load_distribution(&input);
            let next = match marker {
                Marker::Plain => sample(&self.distribution, rng),
                Marker::Kgw(kgw) => {
                    self.base_logits.clear();
                    self.base_logits.extend_from_slice(&self.logits);
                    kgw.bias_sparse(&input, &mut self.logits);
                    self.sample_biased(rng)
                }
                Marker::Gumbel(gumbel) => {
                    let repeated =
                        self.repeat_guard && !self.states.insert(state(&input, state_width));
                    match gumbel.choose_sparse(&input, &self.logits) {
                        Some(t) if !repeated => Some(t),
                        _ => sample(&self.distribution, rng),
                    }
                }
            };
            let Some(next) = next else { break };
            steps += 1;
            let p = self
                .distribution
                .binary_search_by_key(&next, |&(t, _)| t)
                .map_or(0.0, |i| self.distribution[i].1);
            neg_log_prob -= p.ln();
            if next == END {
                break;
            }
            input.push(next);
        }
        Generation {
            tokens: input.split_off(start),
            neg_log_prob,
            steps,
        }
    }

    /// Draws from the softmax of the biased logits: `p · e^(biased − ln p)`, which needs an
    /// exponential only where the processor changed a logit.
    fn sample_biased(&mut self, rng: &mut Pcg64) -> Option<u32> {
        self.weights.clear();
        let candidates = self.distribution.iter().zip(&self.base_logits);
        for ((&(t, p), &(_, original)), &(_, biased)) in candidates.zip(&self.logits) {
            let w = if biased == original { p } else { biased.exp() };
            self.weights.push((t, w));
        }
        sample(&self.weights, rng)
    }

    /// Loads the distribution after `input`, and its logits (`ln p`).
    fn load_distribution(&mut self, input: &[u32]) {
        let key = self.lm.context_key(input);
        self.distribution.clear();
        self.logits.clear();
        if let Some((distribution, logits)) = self.cache.get(&key) {
            self.distribution.extend_from_slice(distribution);
            self.logits.extend_from_slice(logits);
            return;
        }
        self.lm.distribution(input, &mut self.distribution);
        self.logits
            .extend(self.distribution.iter().map(|&(t, p)| (t, p.ln())));
        if self.cache.len() >= CACHED_CONTEXTS {
            self.cache.clear();
        }
        self.cache
            .insert(key, (self.distribution.clone(), self.logits.clone()));
    }
}

/// A hash of the last `width` tokens of `input`.
fn state(input: &[u32], width: usize) -> u64 {
    let from = input.len().saturating_sub(width);
    input[from..]
        .iter()
        .fold(0x5eed_u64, |s, &t| mix(s ^ u64::from(t)))
}

/// Draws from `(token, probability)` pairs; `None` when there is nothing to draw.
pub fn sample(distribution: &[(u32, f64)], rng: &mut Pcg64) -> Option<u32> {
    let total: f64 = distribution.iter().map(|&(_, p)| p).sum();
    let mut r = rng.gen::<f64>() * total;
    for &(t, p) in distribution {
        if r < p {
            return Some(t);
        }
        r -= p;
    }
    distribution.last().map(|&(t, _)| t)
}

/// A stream of the experiment's randomness: the same (seed, purpose, index) always gives the
/// same stream.
pub fn rng(seed: u64, purpose: &str, index: u64) -> Pcg64 {
    Pcg64::seed_from_u64(stream(seed, purpose, index))
}

/// The 64-bit seed of a stream.
pub fn stream(seed: u64, purpose: &str, index: u64) -> u64 {
    let mut h = mix(seed ^ 0x6c69_6e65_6167_6521);
    for b in purpose.bytes() {
        h = mix(h ^ u64::from(b));
    }
    mix(h ^ mix(index.wrapping_add(0x9e37_79b9_7f4a_7c15)))
}

/// The master secret of an experiment, a function of its seed only; every key is derived
/// from it with [`Key::derive`] and a scope such as `null:17` or `campaign:b`.
pub fn master_key(seed: u64) -> Key {
    let mut bytes = [0u8; 32];
    for (i, chunk) in (0u64..).zip(bytes.chunks_exact_mut(8)) {
        chunk.copy_from_slice(&stream(seed, "master", i).to_le_bytes());
    }
    Key::from_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ngram::{LmParams, NgramBuilder};
    use moat_mark::{Context, Mode, Prf};

    fn lm() -> crate::NgramLm {
        let mut b = NgramBuilder::new(LmParams {
            order: 3,
            discount: 0.75,
            per_context: 16,
            backoff: 16,
            pad: END,
        })
        .expect("params");
        let mut r = rng(1, "corpus", 0);
        for _ in 0..50 {
            let mut text: Vec<u32> = (0..5).map(|_| r.gen_range(0..40)).collect();
            text.push(SEP);
            text.extend((0..30).map(|_| r.gen_range(0..40)));
            text.push(END);
            b.add(&text, 1.0).expect("add");
        }
        b.build().expect("model")
    }

    #[test]
    fn sampling_is_deterministic_per_stream() {
        let lm = lm();
        let key = master_key(3).derive("test");
        let context = Context::new(1, Mode::Ordered).expect("context");
        let markers = [
            Marker::Plain,
            Marker::Kgw(Kgw::new(Prf::new(&key, context), 0.25, 2.0).expect("kgw")),
            Marker::Gumbel(Gumbel::new(Prf::new(&key, context), 1.0).expect("gumbel")),
        ];
        let mut g = Generator::new(&lm, 40, true);
        for marker in &markers {
            let a = g.answer(marker, &[1, 2, 3], &mut rng(7, "answer", 0));
            let b = g.answer(marker, &[1, 2, 3], &mut rng(7, "answer", 0));
            let c = g.answer(marker, &[1, 2, 3], &mut rng(7, "answer", 1));
            let fresh =
                Generator::new(&lm, 40, true).answer(marker, &[1, 2, 3], &mut rng(7, "answer", 0));
            assert_eq!(a, fresh, "the cache changes nothing");
            assert_eq!(a, b);
            assert!(a.tokens.len() <= 40 && a.steps >= a.tokens.len());
            assert!(a.neg_log_prob.is_finite() && a.neg_log_prob > 0.0);
            if matches!(marker, Marker::Plain) {
                assert_ne!(a, c);
            }
        }
    }

    #[test]
    fn streams_and_keys_differ_by_purpose_index_and_seed() {
        assert_ne!(stream(1, "a", 0), stream(1, "b", 0));
        assert_ne!(stream(1, "a", 0), stream(1, "a", 1));
        assert_ne!(stream(1, "a", 0), stream(2, "a", 0));
        assert_eq!(master_key(5).id(), master_key(5).id());
        assert_ne!(master_key(5).id(), master_key(6).id());
    }
}

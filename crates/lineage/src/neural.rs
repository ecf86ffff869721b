//! Neural students (the `neural` feature): a small MLP language model (Bengio et al. 2003)
//! trained with candle on the CPU.
//!
//! The model reads the last `context` tokens, each mapped to a dense class (the `vocabulary −
//! 1` most frequent o200k tokens of the text it is built for, and one "other" class for every
//! other token and for positions before the start), looks up their embeddings, and predicts
//! the next class through one tanh hidden layer and a softmax. Training (pre-training on the
//! general text, then fine-tuning a copy per student) runs in candle with AdamW; the weights
//! then come back into plain vectors, and inference (one context at a time, as generation and
//! reading mode need it) is a few hundred thousand multiply-adds in plain Rust, with no
//! framework overhead per call.
//!
//! As a student it answers like the n-gram models: the next-token distribution is the softmax
//! restricted to the `candidates` most probable real tokens (the "other" class is never
//! produced), renormalised. Deterministic for a given seed and thread count: the batch order
//! and initial weights come from the crate's seeded streams; candle's CPU matrix products
//! split their work by thread.

use candle_core::{Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand::seq::SliceRandom;
use rand::Rng;
use rustc_hash::FxHashMap;

use crate::generate::rng;
use crate::model::LanguageModel;
use crate::{Error, NeuralOptions};

/// A trained (or freshly initialised) neural language model.
#[derive(Debug, Clone)]
pub struct NeuralLm {
    options: NeuralOptions,
    /// Dense class → o200k id, for the real-token classes (`vocabulary − 1` at most).
    tokens: Vec<u32>,
    /// o200k id → dense class.
    dense: FxHashMap<u32, u32>,
    /// Class count: `tokens.len() + 1`; the last class is "other".
    classes: usize,
    /// `classes × embedding`, row-major.
    embedding: Vec<f32>,
    /// `(context · embedding) × hidden`, row-major (input-major).
    w1: Vec<f32>,
    b1: Vec<f32>,
    /// `hidden × classes`, row-major.
    w2: Vec<f32>,
    b2: Vec<f32>,
}

fn candle(e: candle_core::Error) -> Error {
    Error::Neural(e.to_string())
}

/// Uniform weights in `±scale` from `rng`.
fn uniform(n: usize, scale: f32, rng: &mut rand_pcg::Pcg64) -> Vec<f32> {
    (0..n).map(|_| rng.gen_range(-scale..scale)).collect()
}

impl NeuralLm {
    /// An untrained model whose vocabulary is the most frequent tokens of `texts` (ties to
    /// the lower id); weights drawn from the stream (`seed`, "neural-init").
    pub fn new<'t>(
        options: &NeuralOptions,
        texts: impl IntoIterator<Item = &'t [u32]>,
        seed: u64,
    ) -> Result<NeuralLm, Error> {
        options.validate()?;
        let mut counts: FxHashMap<u32, u64> = FxHashMap::default();
        for text in texts {
            for &t in text {
                *counts.entry(t).or_default() += 1;
            }
        }
        let mut by_count: Vec<(u32, u64)> = counts.into_iter().collect();
        by_count.sort_unstable_by_key(|&(t, c)| (std::cmp::Reverse(c), t));
        by_count.truncate(options.vocabulary - 1);
        let tokens: Vec<u32> = by_count.into_iter().map(|(t, _)| t).collect();
        if tokens.is_empty() {
            return Err(Error::NotEnoughData(
                "a neural student needs training text".into(),
            ));
        }
        let dense = (0u32..).zip(&tokens).map(|(i, &t)| (t, i)).collect();
        let classes = tokens.len() + 1;
        let (d, c, h) = (options.embedding, options.context, options.hidden);
        let mut r = rng(seed, "neural-init", 0);
        let embedding = uniform(classes * d, 1.0, &mut r);
        let w1 = uniform(c * d * h, 1.0 / ((c * d) as f32).sqrt(), &mut r);
        let w2 = uniform(h * classes, 1.0 / (h as f32).sqrt(), &mut r);
        Ok(NeuralLm {
            options: options.clone(),
            tokens,
            dense,
            classes,
            embedding,
            w1,
            b1: vec![0.0; h],
            w2,
            b2: vec![0.0; classes],
        })
    }

    /// Real-token classes (the "other" class excluded).
    pub fn vocabulary_size(&self) -> usize {
        self.tokens.len()
    }

    fn other(&self) -> u32 {
        (self.classes - 1) as u32
    }

    fn class(&self, token: u32) -> u32 {
        self.dense.get(&token).copied().unwrap_or(self.other())
    }

    /// The dense context before position `i` of `sequence` (classes), oldest first.
    fn context_at(&self, sequence: &[u32], i: usize, out: &mut Vec<u32>) {
        out.clear();
        for back in (1..=self.options.context).rev() {
            out.push(
                i.checked_sub(back)
                    .and_then(|j| sequence.get(j))
                    .map_or(self.other(), |&t| self.class(t)),
            );
        }
    }

    /// Trains on every position of every sequence for `epochs` passes, in batches drawn in
    /// the order of the stream (`seed`, `purpose`); returns the mean loss of each pass.
    pub fn train(
        &mut self,
        sequences: &[&[u32]],
        epochs: usize,
        seed: u64,
        purpose: &str,
    ) -> Result<Vec<f64>, Error> {
        let c = self.options.context;
        let mut contexts: Vec<u32> = Vec::new();
        let mut targets: Vec<u32> = Vec::new();
        let mut ctx = Vec::with_capacity(c);
        for sequence in sequences {
            for i in 1..sequence.len() {
                self.context_at(sequence, i, &mut ctx);
                contexts.extend_from_slice(&ctx);
                targets.push(self.class(sequence[i]));
            }
        }
        let n = targets.len();
        if n == 0 {
            return Err(Error::NotEnoughData(
                "a neural student's training set has no positions".into(),
            ));
        }
        let (d, h, k) = (self.options.embedding, self.options.hidden, self.classes);
        let dev = Device::Cpu;
        let var = |data: &[f32], shape: &[usize]| {
            Var::from_tensor(&Tensor::from_slice(data, shape, &dev).map_err(candle)?)
                .map_err(candle)
        };
        let emb = var(&self.embedding, &[k, d])?;
        let w1 = var(&self.w1, &[c * d, h])?;
        let b1 = var(&self.b1, &[h])?;
        let w2 = var(&self.w2, &[h, k])?;
        let b2 = var(&self.b2, &[k])?;
        let params = ParamsAdamW {
            lr: self.options.learning_rate,
            weight_decay: 0.0,
            ..ParamsAdamW::default()
        };
        let vars = vec![emb.clone(), w1.clone(), b1.clone(), w2.clone(), b2.clone()];
        let mut opt = AdamW::new(vars, params).map_err(candle)?;
        let mut order: Vec<u32> = (0..n as u32).collect();
        let mut shuffle = rng(seed, purpose, 0);
        let batch = self.options.batch;
        let mut losses = Vec::with_capacity(epochs);
        let (mut xs, mut ys) = (Vec::with_capacity(batch * c), Vec::with_capacity(batch));
        for epoch in 0..epochs {
            order.shuffle(&mut shuffle);
            let (mut sum, mut steps) = (0.0f64, 0usize);
            for chunk in order.chunks(batch) {
                xs.clear();
                ys.clear();
                for &j in chunk {
                    let j = j as usize;
                    xs.extend_from_slice(&contexts[j * c..(j + 1) * c]);
                    ys.push(targets[j]);
                }
                let b = ys.len();
                let x = Tensor::from_slice(&xs, b * c, &dev).map_err(candle)?;
                let y = Tensor::from_slice(&ys, b, &dev).map_err(candle)?;
                let loss = emb
                    .index_select(&x, 0)
                    .and_then(|e| e.reshape((b, c * d)))
                    .and_then(|e| e.matmul(&w1))
                    .and_then(|a| a.broadcast_add(&b1))
                    .and_then(|a| a.tanh())
                    .and_then(|a| a.matmul(&w2))
                    .and_then(|a| a.broadcast_add(&b2))
                    .and_then(|logits| candle_nn::loss::cross_entropy(&logits, &y))
                    .map_err(candle)?;
                opt.backward_step(&loss).map_err(candle)?;
                sum += f64::from(loss.to_scalar::<f32>().map_err(candle)?);
                steps += 1;
            }
            let mean = sum / steps.max(1) as f64;
            tracing::info!(epoch, positions = n, loss = mean, "neural training pass");
            losses.push(mean);
        }
        let back = |v: &Var| -> Result<Vec<f32>, Error> {
            v.as_tensor()
                .flatten_all()
                .and_then(|t| t.to_vec1::<f32>())
                .map_err(candle)
        };
        self.embedding = back(&emb)?;
        self.w1 = back(&w1)?;
        self.b1 = back(&b1)?;
        self.w2 = back(&w2)?;
        self.b2 = back(&b2)?;
        Ok(losses)
    }

    /// The logits of every class after `history`, into `out`.
    fn logits(&self, history: &[u32], out: &mut Vec<f32>) {
        let (d, h) = (self.options.embedding, self.options.hidden);
        let mut hidden = self.b1.clone();
        let mut ctx = Vec::with_capacity(self.options.context);
        self.context_at(history, history.len(), &mut ctx);
        for (slot, &class) in ctx.iter().enumerate() {
            let e = &self.embedding[class as usize * d..(class as usize + 1) * d];
            for (k, &x) in e.iter().enumerate() {
                let row = &self.w1[(slot * d + k) * h..(slot * d + k + 1) * h];
                for (acc, &w) in hidden.iter_mut().zip(row) {
                    *acc += x * w;
                }
            }
        }
        out.clear();
        out.extend_from_slice(&self.b2);
        for (j, a) in hidden.iter().enumerate() {
            let a = a.tanh();
            let row = &self.w2[j * self.classes..(j + 1) * self.classes];
            for (acc, &w) in out.iter_mut().zip(row) {
                *acc += a * w;
            }
        }
    }
}

impl LanguageModel for NeuralLm {
    fn context_width(&self) -> usize {
        self.options.context
    }

    fn context_key(&self, history: &[u32]) -> u128 {
        let mut ctx = Vec::with_capacity(self.options.context);
        self.context_at(history, history.len(), &mut ctx);
        ctx.iter()
            .fold(0u128, |key, &class| (key << 32) | u128::from(class))
    }

    fn distribution(&self, history: &[u32], out: &mut Vec<(u32, f64)>) {
        let mut logits = Vec::with_capacity(self.classes);
        self.logits(history, &mut logits);
        // The most probable real tokens, ties to the lower token id.
        let mut best: Vec<(f32, u32)> = self
            .tokens
            .iter()
            .zip(&logits)
            .map(|(&t, &l)| (l, t))
            .collect();
        let keep = self.options.candidates.min(best.len());
        let by_logit = |a: &(f32, u32), b: &(f32, u32)| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1));
        if keep < best.len() {
            best.select_nth_unstable_by(keep, by_logit);
            best.truncate(keep);
        }
        let top = best
            .iter()
            .map(|&(l, _)| l)
            .fold(f32::NEG_INFINITY, f32::max);
        out.clear();
        let mut sum = 0.0;
        for &(l, t) in &best {
            let p = f64::from(l - top).exp();
            sum += p;
            out.push((t, p));
        }
        for (_, p) in out.iter_mut() {
            *p /= sum;
        }
        out.sort_unstable_by_key(|&(t, _)| t);
    }

    fn top1(&self, history: &[u32], _scratch: &mut Vec<(u32, f64)>) -> Option<u32> {
        let mut logits = Vec::with_capacity(self.classes);
        self.logits(history, &mut logits);
        self.tokens
            .iter()
            .zip(&logits)
            .fold(None, |best: Option<(f32, u32)>, (&t, &l)| match best {
                Some((bl, bt)) if bl > l || (bl == l && bt < t) => Some((bl, bt)),
                _ => Some((l, t)),
            })
            .map(|(_, t)| t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> NeuralOptions {
        NeuralOptions {
            vocabulary: 16,
            context: 2,
            embedding: 8,
            hidden: 16,
            batch: 16,
            learning_rate: 0.03,
            candidates: 4,
            ..NeuralOptions::default()
        }
    }

    #[test]
    fn learns_a_deterministic_sequence_and_answers_like_a_student() {
        // 5 → 7 → 9 → 5 → … : after training, the top prediction follows the cycle.
        let text: Vec<u32> = (0..300).map(|i| [5u32, 7, 9][i % 3]).collect();
        let mut lm = NeuralLm::new(&options(), [text.as_slice()], 1).unwrap();
        assert_eq!(lm.vocabulary_size(), 3);
        let losses = lm.train(&[&text], 20, 1, "test").unwrap();
        assert!(losses[19] < losses[0] / 4.0, "{losses:?}");
        let mut scratch = Vec::new();
        assert_eq!(lm.top1(&[5, 7], &mut scratch), Some(9));
        assert_eq!(lm.top1(&[7, 9], &mut scratch), Some(5));
        lm.distribution(&[9, 5], &mut scratch);
        let tokens: Vec<u32> = scratch.iter().map(|&(t, _)| t).collect();
        assert_eq!(tokens, vec![5, 7, 9], "sorted by token, real tokens only");
        let sum: f64 = scratch.iter().map(|&(_, p)| p).sum();
        assert!((sum - 1.0).abs() < 1e-9);
        assert!(scratch[1].1 > 0.9, "{scratch:?}");
        // Contexts are keyed by their last `context` classes.
        assert_eq!(lm.context_key(&[1, 5, 7]), lm.context_key(&[9, 5, 7]));
        assert_ne!(lm.context_key(&[5, 7]), lm.context_key(&[7, 5]));
    }

    #[test]
    fn training_is_deterministic_for_a_seed() {
        let text: Vec<u32> = (0..200).map(|i| (i * 7 % 11) as u32).collect();
        let train = |seed| {
            let mut lm = NeuralLm::new(&options(), [text.as_slice()], seed).unwrap();
            lm.train(&[&text], 2, seed, "test").unwrap();
            lm
        };
        assert_eq!(train(3).w2, train(3).w2);
        assert_ne!(train(3).w2, train(4).w2);
    }

    #[test]
    fn empty_training_text_is_an_error() {
        assert!(matches!(
            NeuralLm::new(&options(), std::iter::empty(), 1),
            Err(Error::NotEnoughData(_))
        ));
        let text = [1u32, 2, 3];
        let mut lm = NeuralLm::new(&options(), [&text[..]], 1).unwrap();
        assert!(matches!(
            lm.train(&[&[1]], 1, 1, "test"),
            Err(Error::NotEnoughData(_))
        ));
    }
}

//! Experiment 1, null calibration: many random keys test unwatermarked human text; their
//! p-values must be uniform and their false-positive rates must match the levels.
//!
//! KGW's p-value is a binomial tail, so it is discrete: it takes a few dozen values for a few
//! hundred scored tuples, and the KS distance of a discrete, conservative p-value from the
//! uniform is about the largest point probability, far above what 10⁴ continuous uniforms show.
//! So for KGW the table also gives the KS distance of the *randomized* p-value
//! `P(X > g) + U · P(X = g)` (U uniform, drawn from a seeded stream), which is exactly uniform
//! under the null; the detector itself reports the plain, conservative tail `P(X ≥ g)`, and the
//! false-positive rates are of that.

use std::fmt;

use moat_mark::stats::{ks_p_value, ks_uniform, ln_binomial_sf};
use moat_mark::{Key, Scorer, Statistic};
use rand::Rng;
use serde::Serialize;

use crate::corpus::{Corpus, END};
use crate::generate::{master_key, rng};
use crate::table::{p_cell, Rate};
use crate::{Error, Options};

/// The levels at which false-positive rates are counted.
pub const LEVELS: [f64; 3] = [1e-2, 1e-3, 1e-4];

/// The outcome of the calibration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CalibrationReport {
    /// Keys per configuration.
    pub keys: usize,
    /// Tokens per chunk of text.
    pub chunk_tokens: usize,
    /// Distinct held-out chunks (key `i` scores chunk `i mod chunks`).
    pub chunks: usize,
    /// One row per configuration.
    pub rows: Vec<CalibrationRow>,
}

/// One configuration's calibration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CalibrationRow {
    /// The test.
    pub watermark: String,
    /// Mean tuples scored per key (after de-duplication).
    pub mean_scored: f64,
    /// KS distance of the p-values from Uniform(0, 1).
    pub ks: f64,
    /// Its p-value.
    pub ks_p: f64,
    /// KS distance of the randomized p-values (KGW only).
    pub randomized_ks: Option<f64>,
    /// Its p-value.
    pub randomized_ks_p: Option<f64>,
    /// False positives at each of [`LEVELS`].
    pub fpr: Vec<Rate>,
    /// The smallest p-value seen, as log10.
    pub min_log10_p: f64,
}

/// Runs the calibration on the held-out splits of `corpus`.
pub fn calibration(corpus: &Corpus, options: &Options) -> Result<CalibrationReport, Error> {
    let o = &options.calibration;
    if o.keys == 0 || o.chunk_tokens < 2 {
        return Err(Error::InvalidOption {
            name: "calibration.keys",
            message: "keys must be ≥ 1 and chunk_tokens ≥ 2".into(),
        });
    }
    let mut stream = Vec::new();
    for text in &corpus.heldout_general {
        stream.extend_from_slice(text);
        stream.push(END);
    }
    for example in &corpus.heldout {
        stream.extend_from_slice(&example.answer);
        stream.push(END);
    }
    let chunks: Vec<&[u32]> = stream.chunks_exact(o.chunk_tokens).collect();
    if chunks.is_empty() {
        return Err(Error::NotEnoughData(format!(
            "held-out text has {} tokens, less than one chunk of {}",
            stream.len(),
            o.chunk_tokens
        )));
    }
    let master = master_key(options.seed);
    let keys: Vec<Key> = (0..o.keys)
        .map(|i| master.derive(&format!("null:{i}")))
        .collect();
    let mut rows = Vec::new();
    for (index, spec) in o.watermarks.iter().enumerate() {
        let statistic = spec.statistic();
        let mut randomizer = rng(options.seed, "calibration-randomize", index as u64);
        let mut log10_p = Vec::with_capacity(keys.len());
        let mut randomized = Vec::with_capacity(keys.len());
        let mut scored = 0u64;
        for (i, key) in keys.iter().enumerate() {
            let mut scorer = Scorer::new(spec.prf(key)?, statistic)?;
            scorer.score_text(chunks[i % chunks.len()]);
            let score = scorer.score()?;
            scored += score.scored;
            log10_p.push(score.log10_p);
            if let (Statistic::Green { gamma }, Some(green)) = (statistic, score.green) {
                let at_least = 10f64.powf(score.log10_p);
                let above = ln_binomial_sf(green + 1, score.scored, gamma).exp();
                randomized.push(above + randomizer.gen::<f64>() * (at_least - above));
            }
        }
        let p: Vec<f64> = log10_p.iter().map(|&l| 10f64.powf(l)).collect();
        let ks = ks_uniform(&p);
        let (randomized_ks, randomized_ks_p) = if randomized.is_empty() {
            (None, None)
        } else {
            let d = ks_uniform(&randomized);
            (Some(d), Some(ks_p_value(d, randomized.len())))
        };
        let row = CalibrationRow {
            watermark: spec.test_name(),
            mean_scored: scored as f64 / keys.len() as f64,
            ks,
            ks_p: ks_p_value(ks, p.len()),
            randomized_ks,
            randomized_ks_p,
            fpr: LEVELS.iter().map(|&a| Rate::of(a, &log10_p)).collect(),
            min_log10_p: log10_p.iter().copied().fold(0.0, f64::min),
        };
        tracing::info!(watermark = %row.watermark, ks = row.ks, "calibrated");
        rows.push(row);
    }
    Ok(CalibrationReport {
        keys: o.keys,
        chunk_tokens: o.chunk_tokens,
        chunks: chunks.len(),
        rows,
    })
}

impl fmt::Display for CalibrationReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Null calibration: {} keys per test, each scoring one {}-token chunk of held-out \
             human text ({} distinct chunks).\n",
            self.keys, self.chunk_tokens, self.chunks
        )?;
        writeln!(
            f,
            "| test | scored/key | KS D (p) | KS D randomized (p) | FPR@1e-2 | FPR@1e-3 | \
             FPR@1e-4 | min log10 p |"
        )?;
        writeln!(f, "|---|---|---|---|---|---|---|---|")?;
        for r in &self.rows {
            let randomized = match (r.randomized_ks, r.randomized_ks_p) {
                (Some(d), Some(p)) => format!("{d:.4} ({})", p_cell(p)),
                _ => "— (continuous)".into(),
            };
            write!(
                f,
                "| {} | {:.0} | {:.4} ({}) | {randomized} |",
                r.watermark,
                r.mean_scored,
                r.ks,
                p_cell(r.ks_p)
            )?;
            for rate in &r.fpr {
                write!(f, " {rate} |")?;
            }
            writeln!(f, " {:.2} |", r.min_log10_p)?;
        }
        Ok(())
    }
}

//! Experiment 2, detection power: how many tokens of watermarked teacher output a test needs
//! to reach a p-value threshold, and what the watermark costs in perplexity.
//!
//! A trial is one key and one stream of teacher answers to distill-split questions (as a
//! distiller would receive them), scored answer by answer with our prompts excluded and
//! repeated tuples skipped, until log10 p falls below the threshold or the token budget is
//! spent. Perplexity is of the chosen tokens under the teacher's own, unwatermarked
//! distribution; an unwatermarked stream gives the baseline, and its tests under the same keys
//! must (almost) never reach the threshold.

use std::fmt;

use serde::Serialize;

use crate::corpus::Corpus;
use crate::generate::{rng, Generator, Marker};
use crate::lab::Lab;
use crate::options::WatermarkSpec;
use crate::table::Quartiles;
use crate::{Error, Options};
use moat_mark::Scorer;

/// The outcome of the power experiment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PowerReport {
    /// Trials per configuration.
    pub trials: usize,
    /// Token budget per trial.
    pub max_tokens: usize,
    /// The threshold, as log10 p.
    pub log10_threshold: f64,
    /// Perplexity of unwatermarked teacher answers.
    pub plain_perplexity: f64,
    /// Unwatermarked streams that reached the threshold under the first configuration's test
    /// (false detections; expected 0).
    pub plain_detections: usize,
    /// One row per configuration.
    pub rows: Vec<PowerRow>,
}

/// One configuration's power.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PowerRow {
    /// The configuration.
    pub watermark: String,
    /// Trials that reached the threshold within the budget.
    pub reached: usize,
    /// Generated answer tokens needed.
    pub tokens: Quartiles,
    /// Tuples scored when the threshold was reached.
    pub scored: Quartiles,
    /// Perplexity of the watermarked answers under the unwatermarked teacher.
    pub perplexity: f64,
}

/// What one trial measured.
struct Trial {
    /// (generated tokens, scored tuples) when the threshold was crossed.
    crossing: Option<(f64, f64)>,
    neg_log_prob: f64,
    steps: usize,
}

/// Runs one trial of `spec` (or of plain sampling tested under `spec`'s key when `plain`).
fn trial(
    lab: &Lab<'_>,
    generator: &mut Generator<'_>,
    spec: &WatermarkSpec,
    index: usize,
    plain: bool,
) -> Result<Trial, Error> {
    let o = &lab.options.power;
    let key = lab.master.derive(&format!("power:{index}"));
    let marker = if plain {
        Marker::Plain
    } else {
        spec.marker(&key)?
    };
    let mut scorer = Scorer::new(spec.prf(&key)?, spec.statistic())?;
    let prompts = &lab.corpus.distill;
    let h = spec.h;
    let purpose = format!("power:{index}");
    let (mut generated, mut neg_log_prob, mut steps) = (0usize, 0.0, 0usize);
    let mut crossing = None;
    let mut j = 0u64;
    while generated < o.max_tokens && crossing.is_none() {
        let prompt = &prompts[(index * 7919 + j as usize) % prompts.len()].prompt;
        let answer = generator.answer(&marker, prompt, &mut rng(lab.options.seed, &purpose, j));
        j += 1;
        scorer.exclude_prompt(prompt);
        let tokens = &answer.tokens[..answer.tokens.len().min(o.max_tokens - generated)];
        for i in h..tokens.len() {
            if scorer.score_tuple(&tokens[i - h..i], tokens[i])
                && scorer.score()?.log10_p < o.log10_threshold
            {
                crossing = Some(((generated + i + 1) as f64, scorer.scored() as f64));
                break;
            }
        }
        generated += tokens.len().max(1);
        neg_log_prob += answer.neg_log_prob;
        steps += answer.steps;
    }
    Ok(Trial {
        crossing,
        neg_log_prob,
        steps,
    })
}

/// Runs the power experiment.
pub fn power(corpus: &Corpus, options: &Options) -> Result<PowerReport, Error> {
    let o = &options.power;
    let Some(first) = o.watermarks.first() else {
        return Err(Error::InvalidOption {
            name: "power.watermarks",
            message: "no configuration to measure".into(),
        });
    };
    if o.trials == 0 || o.max_tokens == 0 {
        return Err(Error::InvalidOption {
            name: "power.trials",
            message: "trials and max_tokens must be ≥ 1".into(),
        });
    }
    let lab = Lab::new(corpus, options)?;
    let mut generator = lab.generator(&lab.teacher);
    let (mut plain_nll, mut plain_steps, mut plain_detections) = (0.0, 0usize, 0);
    for index in 0..o.trials {
        let t = trial(&lab, &mut generator, first, index, true)?;
        plain_nll += t.neg_log_prob;
        plain_steps += t.steps;
        plain_detections += usize::from(t.crossing.is_some());
    }
    let mut rows = Vec::new();
    for spec in &o.watermarks {
        let mut tokens = Vec::new();
        let mut scored = Vec::new();
        let (mut nll, mut steps) = (0.0, 0usize);
        for index in 0..o.trials {
            let t = trial(&lab, &mut generator, spec, index, false)?;
            tokens.push(t.crossing.map(|c| c.0));
            scored.push(t.crossing.map(|c| c.1));
            nll += t.neg_log_prob;
            steps += t.steps;
        }
        let row = PowerRow {
            watermark: spec.to_string(),
            reached: tokens.iter().filter(|t| t.is_some()).count(),
            tokens: Quartiles::of(&tokens),
            scored: Quartiles::of(&scored),
            perplexity: (nll / steps.max(1) as f64).exp(),
        };
        tracing::info!(watermark = %row.watermark, reached = row.reached, "power measured");
        rows.push(row);
    }
    Ok(PowerReport {
        trials: o.trials,
        max_tokens: o.max_tokens,
        log10_threshold: o.log10_threshold,
        plain_perplexity: (plain_nll / plain_steps.max(1) as f64).exp(),
        plain_detections,
        rows,
    })
}

impl fmt::Display for PowerReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Detection power: answer tokens of watermarked n-gram teacher output until log10 p \
             < {} ({} trials per row, at most {} tokens each). Unwatermarked teacher: \
             perplexity {:.2}, {} of {} streams reached the threshold.\n",
            self.log10_threshold,
            self.trials,
            self.max_tokens,
            self.plain_perplexity,
            self.plain_detections,
            self.trials
        )?;
        writeln!(
            f,
            "| watermark | reached | tokens: median [Q1, Q3] | scored tuples: median [Q1, Q3] \
             | perplexity (×plain) |"
        )?;
        writeln!(f, "|---|---|---|---|---|")?;
        let beyond = self.max_tokens.to_string();
        for r in &self.rows {
            writeln!(
                f,
                "| {} | {}/{} | {} | {} | {:.2} (×{:.2}) |",
                r.watermark,
                r.reached,
                self.trials,
                r.tokens.show(&beyond, 0),
                r.scored.show(&beyond, 0),
                r.perplexity,
                r.perplexity / self.plain_perplexity
            )?;
        }
        Ok(())
    }
}

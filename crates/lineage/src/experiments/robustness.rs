//! Experiment 5, robustness: watermarked teacher answers of a fixed total length with each
//! token replaced, with probability r, by a token drawn uniformly from the teacher's vocabulary
//! (every token seen in its training text) — a crude stand-in for paraphrasing that breaks the
//! scored tuples without changing the length.
//!
//! A substitution changes the token and every window it is part of: an ordered window of
//! width h survives with probability (1 − r)^(h+1), so wide ordered windows fall first;
//! SelfHash keeps a tuple's value when the edited window token did not hold the minimum.

use std::fmt;

use rand::Rng;
use serde::Serialize;

use crate::corpus::Corpus;
use crate::generate::rng;
use crate::lab::{last_point, Lab};
use crate::table::Quartiles;
use crate::{Error, Options};
use moat_mark::Scorer;

/// The outcome of the robustness experiment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RobustnessReport {
    /// Texts per configuration.
    pub texts: usize,
    /// Answer tokens per text.
    pub length: usize,
    /// One row per configuration and rate.
    pub rows: Vec<RobustnessRow>,
}

/// One configuration at one substitution rate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RobustnessRow {
    /// The configuration.
    pub watermark: String,
    /// Substitution rate.
    pub rate: f64,
    /// log10 p over the texts.
    pub log10_p: Quartiles,
    /// Texts with p < 1e-6.
    pub detected_1e6: usize,
    /// Texts with p < 1e-3.
    pub detected_1e3: usize,
    /// Mean tuples scored per text.
    pub mean_scored: f64,
}

/// Runs the robustness experiment.
pub fn robustness(corpus: &Corpus, options: &Options) -> Result<RobustnessReport, Error> {
    let o = &options.robustness;
    if o.rates.iter().any(|r| !(0.0..=1.0).contains(r)) || o.length == 0 {
        return Err(Error::InvalidOption {
            name: "robustness.rates",
            message: "rates must be within 0..=1 and length ≥ 1".into(),
        });
    }
    let lab = Lab::new(corpus, options)?;
    let vocabulary = lab.teacher.vocabulary();
    let prompts = &corpus.distill;
    let mut generator = lab.generator(&lab.teacher);
    let mut rows = Vec::new();
    for (index, spec) in o.watermarks.iter().enumerate() {
        let mut per_rate: Vec<Vec<Option<f64>>> = vec![Vec::new(); o.rates.len()];
        let mut scored = vec![0u64; o.rates.len()];
        for t in 0..o.texts {
            let key = lab.master.derive(&format!("robust:{t}"));
            let marker = spec.marker(&key)?;
            let purpose = format!("robust:{t}");
            let mut answers: Vec<(&[u32], Vec<u32>)> = Vec::new();
            let mut total = 0;
            let mut j = 0u64;
            while total < o.length {
                let prompt = &prompts[(t * 7919 + j as usize) % prompts.len()].prompt;
                let mut answer = generator
                    .answer(&marker, prompt, &mut rng(options.seed, &purpose, j))
                    .tokens;
                j += 1;
                answer.truncate(o.length - total);
                total += answer.len().max(1);
                answers.push((prompt, answer));
            }
            for (r, &rate) in o.rates.iter().enumerate() {
                let mut edits = rng(options.seed, &format!("substitute:{index}:{t}"), r as u64);
                let mut scorer = Scorer::new(spec.prf(&key)?, spec.statistic())?;
                for (prompt, _) in &answers {
                    scorer.exclude_prompt(prompt);
                }
                for (_, answer) in &answers {
                    let edited: Vec<u32> = answer
                        .iter()
                        .map(|&tok| {
                            if edits.gen::<f64>() < rate {
                                vocabulary[edits.gen_range(0..vocabulary.len())]
                            } else {
                                tok
                            }
                        })
                        .collect();
                    scorer.score_text(&edited);
                }
                let point = last_point(&scorer)?;
                scored[r] += point.scored;
                per_rate[r].push(Some(point.log10_p));
            }
        }
        for (r, &rate) in o.rates.iter().enumerate() {
            let values = &per_rate[r];
            let below = |level: f64| values.iter().flatten().filter(|&&v| v < level).count();
            rows.push(RobustnessRow {
                watermark: spec.to_string(),
                rate,
                log10_p: Quartiles::of(values),
                detected_1e6: below(-6.0),
                detected_1e3: below(-3.0),
                mean_scored: scored[r] as f64 / o.texts.max(1) as f64,
            });
        }
        tracing::info!(watermark = %spec, "robustness measured");
    }
    Ok(RobustnessReport {
        texts: o.texts,
        length: o.length,
        rows,
    })
}

impl fmt::Display for RobustnessReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Robustness: {} watermarked texts of {} answer tokens per configuration, each token \
             replaced with probability r by a random vocabulary token.\n",
            self.texts, self.length
        )?;
        writeln!(
            f,
            "| watermark | r | log10 p: median [Q1, Q3] | p < 1e-6 | p < 1e-3 | scored/text |"
        )?;
        writeln!(f, "|---|---|---|---|---|---|")?;
        for r in &self.rows {
            writeln!(
                f,
                "| {} | {:.0}% | {} | {}/{} | {}/{} | {:.0} |",
                r.watermark,
                100.0 * r.rate,
                r.log10_p.show("", 1),
                r.detected_1e6,
                self.texts,
                r.detected_1e3,
                self.texts,
                r.mean_scored
            )?;
        }
        Ok(())
    }
}

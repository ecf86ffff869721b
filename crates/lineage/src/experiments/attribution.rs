//! Experiment 4, attribution: three campaigns were served under three keys derived from one
//! master (`campaign:a`, `campaign:b`, `campaign:c`); a student fine-tuned on campaign B's
//! answers must be attributed to B, with a Holm-corrected p-value below the level, and to no
//! other campaign; a clean student to none.
//!
//! Every campaign asks the same distill-split questions (public benchmarks are harvested by
//! everyone) and is served under its own key. A student is built as in the radioactivity
//! experiment, with campaign B's served answers as the watermarked share.
//!
//! Two tests, each on material fed identically to all candidates and controls through
//! [`moat_mark::attribute`], de-duplicated, with our prompts excluded: `closed`, the student's
//! answers to held-out questions; `open`, its top-1 predictions while reading the served
//! answers of all three campaigns (reading mode). For a candidate, the text read under the other
//! campaigns' keys is independent of its key; its own served text is the reading-mode case
//! whose false-positive rate the radioactivity experiment measures on a clean student. No
//! pre-registered filter is used: the radioactivity experiment shows it is not calibrated.

use std::fmt;

use moat_mark::{attribute, Candidate};
use serde::Serialize;

use crate::corpus::Corpus;
use crate::lab::{Lab, Reader, Tuples};
use crate::options::ModeName;
use crate::table::{log10_cell, p_cell};
use crate::{Error, Options};

/// The outcome of the attribution experiment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttributionReport {
    /// What the students are.
    pub student_kind: String,
    /// The configuration every campaign was served with.
    pub watermark: String,
    /// The level of the corrected test.
    pub alpha: f64,
    /// Control keys.
    pub controls: usize,
    /// One entry per student and test.
    pub students: Vec<StudentAttribution>,
}

/// The attribution of one student.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StudentAttribution {
    /// Which student (`clean`, or the share of campaign B).
    pub student: String,
    /// Which test: `closed` or `open`.
    pub test: String,
    /// Tuples every key scored.
    pub scored: u64,
    /// Each candidate campaign.
    pub candidates: Vec<CandidateRow>,
    /// Labels attributed.
    pub attributed: Vec<String>,
    /// Control keys with an uncorrected p below the level.
    pub controls_below_alpha: usize,
    /// Smallest control p-value, as log10.
    pub min_control_log10_p: f64,
}

/// One candidate's test.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CandidateRow {
    /// The campaign.
    pub label: String,
    /// Raw log10 p.
    pub log10_p: f64,
    /// Holm-corrected log10 p over the three campaigns.
    pub holm_log10_p: f64,
    /// Share of control keys at least as extreme (+1 corrected).
    pub empirical_p: f64,
    /// Whether attributed.
    pub attributed: bool,
}

/// Runs the attribution experiment.
pub fn attribution(corpus: &Corpus, options: &Options) -> Result<AttributionReport, Error> {
    let o = &options.attribution;
    let spec = o.watermark;
    let lab = Lab::new(corpus, options)?;
    let order = lab.fine_tune_order(options.radioactivity.fine_tune_samples);
    let n = order.len();
    let candidates: Vec<Candidate> = ["a", "b", "c"]
        .iter()
        .map(|c| Candidate {
            label: format!("campaign:{c}"),
            key: lab.master.derive(&format!("campaign:{c}")),
        })
        .collect();
    let controls: Vec<moat_mark::Key> = (0..o.controls)
        .map(|i| lab.master.derive(&format!("control:{i}")))
        .collect();
    let count = |percent: f64| ((percent / 100.0 * n as f64).round() as usize).min(n);
    let most = o.percents.iter().map(|&p| count(p)).max().unwrap_or(0);
    let reference = count(o.reference_percent).max(1);
    let served_count = most.max(reference);
    let mut generator = lab.generator(&lab.teacher);
    let mut served = Vec::new();
    for candidate in &candidates {
        let marker = spec.marker(&candidate.key)?;
        served.push(
            lab.serve(
                &mut generator,
                &marker,
                order[..served_count]
                    .iter()
                    .map(|&i| (i as u64, corpus.distill[i].prompt.as_slice())),
                &candidate.label,
            ),
        );
    }
    tracing::info!(answers = served_count, "campaigns served");
    let heldout_prompts: Vec<&[u32]> = corpus.heldout.iter().map(|e| e.prompt.as_slice()).collect();
    let mut students = Vec::new();
    let mut percents = vec![0.0];
    percents.extend(o.percents.iter().copied().filter(|&p| p > 0.0));
    for percent in percents {
        let k = count(percent);
        let student = lab.student(&lab.fine_tune_set(&order, &served[1][..k]))?;
        let mut closed = Tuples::new(spec.h);
        for (_, answer) in
            lab.closed_answers(&*student, &heldout_prompts, o.closed_tokens, "closed")
        {
            closed.push_text(&answer);
        }
        let mut open = Tuples::new(spec.h);
        let mut reader = Reader::new(&*student);
        let mut campaign_prompts = Vec::new();
        let read_count = if k > 0 { k } else { reference };
        for campaign in &served {
            let texts: Vec<(&[u32], &[u32])> = order[..read_count]
                .iter()
                .zip(campaign)
                .map(|(&i, g)| (corpus.distill[i].prompt.as_slice(), g.tokens.as_slice()))
                .collect();
            campaign_prompts.extend(texts.iter().map(|&(p, _)| p));
            let (tuples, _) = reader.read(spec.h, &texts, o.open_tokens / candidates.len());
            for (window, token) in tuples.iter() {
                open.push(window, token);
            }
        }
        let name = if k == 0 {
            "clean".to_string()
        } else {
            format!("campaign:b at {percent}% ({k} samples)")
        };
        for (test, tuples, excluded) in [
            ("closed", &closed, &heldout_prompts),
            ("open", &open, &campaign_prompts),
        ] {
            let unique = tuples.unique(excluded);
            let result = attribute(
                &candidates,
                &controls,
                spec.context()?,
                spec.statistic(),
                o.alpha,
                |scorer| {
                    // Under ordered windows `unique` already is the scorer's selection; under
                    // SelfHash the scorer also excludes tuples sharing a prompt tuple's identity.
                    if spec.mode == ModeName::SelfHash {
                        for prompt in excluded.iter() {
                            scorer.exclude_prompt(prompt);
                        }
                    }
                    for (window, token) in unique.iter() {
                        scorer.score_tuple(window, token);
                    }
                },
            )?;
            tracing::info!(student = %name, test, attributed = ?result.attributed(), "attributed");
            students.push(StudentAttribution {
                student: name.clone(),
                test: test.to_string(),
                scored: unique.len() as u64,
                attributed: result.attributed().iter().map(|s| s.to_string()).collect(),
                candidates: result
                    .candidates
                    .iter()
                    .map(|c| CandidateRow {
                        label: c.label.clone(),
                        log10_p: c.score.log10_p,
                        holm_log10_p: c.holm_log10_p,
                        empirical_p: c.empirical_p,
                        attributed: c.attributed,
                    })
                    .collect(),
                controls_below_alpha: result.controls_below_alpha,
                min_control_log10_p: result.control_log10_p.iter().copied().fold(0.0, f64::min),
            });
        }
    }
    Ok(AttributionReport {
        student_kind: options.model.students(),
        watermark: spec.to_string(),
        alpha: o.alpha,
        controls: o.controls,
        students,
    })
}

impl fmt::Display for AttributionReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Attribution ({}): campaigns a, b, c served under {}; Holm correction over the \
             three candidates at α = {}; {} control keys never served.\n",
            self.student_kind, self.watermark, self.alpha, self.controls
        )?;
        writeln!(
            f,
            "| student | test | scored | campaign | log10 p | Holm log10 p | empirical p | \
             attributed |"
        )?;
        writeln!(f, "|---|---|---|---|---|---|---|---|")?;
        for s in &self.students {
            for c in &s.candidates {
                writeln!(
                    f,
                    "| {} | {} | {} | {} | {} | {} | {} | {} |",
                    s.student,
                    s.test,
                    s.scored,
                    c.label,
                    log10_cell(c.log10_p),
                    log10_cell(c.holm_log10_p),
                    p_cell(c.empirical_p),
                    if c.attributed { "**yes**" } else { "no" }
                )?;
            }
        }
        writeln!(
            f,
            "\n| student | test | attributed to | controls below α | min control log10 p |"
        )?;
        writeln!(f, "|---|---|---|---|---|")?;
        for s in &self.students {
            let to = if s.attributed.is_empty() {
                "none".to_string()
            } else {
                s.attributed.join(", ")
            };
            writeln!(
                f,
                "| {} | {} | {to} | {}/{} | {:.2} |",
                s.student, s.test, s.controls_below_alpha, self.controls, s.min_control_log10_p
            )?;
        }
        Ok(())
    }
}

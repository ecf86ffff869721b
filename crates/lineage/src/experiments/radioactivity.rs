//! Experiment 3, radioactivity: a student fine-tuned on a mixture in which a share ρ of the
//! samples are watermarked teacher answers; can the watermark's key be found in the student?
//!
//! Setup (all splits from [`Corpus`]): the teacher answers the first ρ·n questions of a
//! seeded order of distill-split questions under one key (the served answers); the student is
//! pre-trained on the general text and fine-tuned on all n questions, the first ρ·n with the
//! served answers and the rest with their human answers.
//!
//! Four tests, each de-duplicating tuples and excluding our prompts:
//!
//! - `closed`: the student answers held-out questions (plain sampling); its answers are scored.
//! - `closed+filter`: the same, scoring only positions whose window occurs in the served
//!   answers (the pre-registered window filter of SCHEME.md, rule 3). The filter is a function
//!   of the served text, which is a function of the key; whether that biases the test under the
//!   null is measured, not assumed (see below).
//! - `open/held-out` (reading mode on unwatermarked text): the student reads held-out human
//!   answers; at each position its top-1 prediction is scored with the window of the text
//!   before it. Text and student are both independent of the key under the null.
//! - `open/served` (reading mode on the served answers, as in Sander et al. 2024): the same on
//!   the served watermarked answers. Not exact by construction: where the prediction equals the
//!   token in the text, the tuple is one the watermark chose, so a student that merely predicts
//!   well could score; how much it does is measured below.
//!
//! The clean student (ρ = 0) was served nothing; its `closed+filter` and `open/served` tests use
//! the answers served at `reference_percent` in their place.
//!
//! The false-positive rate is measured on the clean (ρ = 0) student: for the key-independent
//! tests with `fpr_keys` random keys on the same material; for the two tests that depend on
//! served text, with `fpr_served_keys` keys that each serve their own answers to the same
//! questions (the filter, or the text read, changes with the key).

use std::fmt;

use moat_mark::stats::{ks_p_value, ks_uniform};
use serde::Serialize;

use crate::corpus::Corpus;
use crate::generate::Generator;
use crate::lab::{curve, pairs, test_unique, Curve, Feed, Lab, Reader, Tuples};
use crate::options::WatermarkSpec;
use crate::table::{log10_cell, p_cell, Rate};
use crate::{Error, Options};

/// One of the four tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Setting {
    /// The student's answers to held-out questions.
    Closed,
    /// The same, restricted to positions whose window occurs in the served answers.
    ClosedFiltered,
    /// Top-1 predictions while reading held-out human answers.
    OpenHeldout,
    /// Top-1 predictions while reading the served answers.
    OpenServed,
}

impl Setting {
    /// The name in tables.
    pub fn name(self) -> &'static str {
        match self {
            Setting::Closed => "closed",
            Setting::ClosedFiltered => "closed+filter",
            Setting::OpenHeldout => "open/held-out",
            Setting::OpenServed => "open/served",
        }
    }
}

/// The outcome of the radioactivity experiment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RadioactivityReport {
    /// What the students are.
    pub students: String,
    /// Fine-tuning samples per student.
    pub fine_tune_samples: usize,
    /// Tokens each student generated for the closed tests.
    pub closed_tokens: usize,
    /// Positions each student read for the open tests (at most).
    pub open_tokens: usize,
    /// The checkpoints.
    pub checkpoints: Vec<u64>,
    /// One block per watermark configuration.
    pub schemes: Vec<SchemeResult>,
}

/// One configuration's students.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SchemeResult {
    /// The configuration.
    pub watermark: String,
    /// One row per share ρ.
    pub students: Vec<StudentResult>,
    /// False-positive rates on the clean student (empty when ρ = 0 was not run).
    pub fpr: Vec<FprRow>,
}

/// One student.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StudentResult {
    /// ρ, in percent of fine-tuning samples.
    pub percent: f64,
    /// Samples answered by the watermarked teacher.
    pub watermarked_samples: usize,
    /// Share of fine-tuning answer tokens that are watermarked.
    pub watermarked_token_share: f64,
    /// Each test's curve.
    pub tests: Vec<TestResult>,
}

/// One test of one student.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TestResult {
    /// Which test.
    pub setting: Setting,
    /// log10 p against tuples scored.
    pub curve: Curve,
    /// Open tests: share of predictions equal to the token in the text.
    pub prediction_match_rate: Option<f64>,
}

/// The clean student's false positives under one test.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FprRow {
    /// Which test.
    pub setting: Setting,
    /// Keys tested.
    pub keys: usize,
    /// False positives at 1e-2, 1e-3, 1e-5.
    pub rates: Vec<Rate>,
    /// KS distance of the p-values from uniform, and its p-value.
    pub ks: f64,
    /// p-value of the KS distance.
    pub ks_p: f64,
    /// Smallest p-value, as log10.
    pub min_log10_p: f64,
    /// Mean tuples scored per key.
    pub mean_scored: f64,
}

impl FprRow {
    fn new(setting: Setting, log10_p: &[f64], scored: f64) -> FprRow {
        let p: Vec<f64> = log10_p.iter().map(|&l| 10f64.powf(l)).collect();
        let ks = ks_uniform(&p);
        FprRow {
            setting,
            keys: log10_p.len(),
            rates: [1e-2, 1e-3, 1e-5]
                .iter()
                .map(|&a| Rate::of(a, log10_p))
                .collect(),
            ks,
            ks_p: ks_p_value(ks, p.len().max(1)),
            min_log10_p: log10_p.iter().copied().fold(0.0, f64::min),
            mean_scored: scored,
        }
    }
}

/// Served answers as (prompt, answer) slices, for the first `k` questions of `order`.
fn served_pairs<'c>(
    corpus: &'c Corpus,
    order: &[usize],
    served: &'c [crate::Generation],
    k: usize,
) -> Vec<(&'c [u32], &'c [u32])> {
    order
        .iter()
        .zip(served)
        .take(k)
        .map(|(&i, g)| (corpus.distill[i].prompt.as_slice(), g.tokens.as_slice()))
        .collect()
}

/// Runs the radioactivity experiment.
pub fn radioactivity(corpus: &Corpus, options: &Options) -> Result<RadioactivityReport, Error> {
    let o = &options.radioactivity;
    if o.percents.iter().any(|p| !(0.0..=100.0).contains(p)) {
        return Err(Error::InvalidOption {
            name: "radioactivity.percents",
            message: "every share must be within 0..=100".into(),
        });
    }
    let lab = Lab::new(corpus, options)?;
    let order = lab.fine_tune_order(o.fine_tune_samples);
    let n = order.len();
    let count = |percent: f64| ((percent / 100.0 * n as f64).round() as usize).min(n);
    let most = o.percents.iter().map(|&p| count(p)).max().unwrap_or(0);
    // The questions whose served answers form the filter and the open/served text for the
    // clean student.
    let reference = count(o.reference_percent).max(1);
    let heldout_prompts: Vec<&[u32]> = corpus.heldout.iter().map(|e| e.prompt.as_slice()).collect();
    let heldout_pairs = pairs(&corpus.heldout);
    let mut schemes = Vec::new();
    for (index, spec) in o.watermarks.iter().enumerate() {
        let key = lab.master.derive(&format!("radioactivity:{index}"));
        let marker = spec.marker(&key)?;
        let mut generator = lab.generator(&lab.teacher);
        let served = lab.serve(
            &mut generator,
            &marker,
            order[..most.max(reference)]
                .iter()
                .map(|&i| (i as u64, corpus.distill[i].prompt.as_slice())),
            "serve",
        );
        tracing::info!(watermark = %spec, answers = served.len(), "teacher served");
        let mut students = Vec::new();
        let mut clean = None;
        for &percent in &o.percents {
            let k = count(percent);
            let fine_tune = lab.fine_tune_set(&order, &served[..k]);
            let student = lab.student(&fine_tune)?;
            let watermarked_tokens: usize = served[..k].iter().map(|g| g.tokens.len()).sum();
            let human_tokens: usize = order[k..]
                .iter()
                .map(|&i| corpus.distill[i].answer.len())
                .sum();
            let filter_k = if k > 0 { k } else { reference };
            let served_texts = served_pairs(corpus, &order, &served, filter_k);
            let (closed, open_heldout, tests) = test_student(
                &lab,
                spec,
                &key,
                &*student,
                &heldout_prompts,
                &heldout_pairs,
                &served_texts,
            )?;
            let result = StudentResult {
                percent,
                watermarked_samples: k,
                watermarked_token_share: watermarked_tokens as f64
                    / (watermarked_tokens + human_tokens).max(1) as f64,
                tests,
            };
            tracing::info!(watermark = %spec, percent, "student tested");
            students.push(result);
            if k == 0 && clean.is_none() {
                clean = Some(Clean {
                    student,
                    closed,
                    open_heldout,
                });
            }
        }
        let fpr = match clean {
            Some(clean) => clean_fpr(
                &lab,
                spec,
                &clean,
                &heldout_prompts,
                &order[..reference],
                &mut generator,
            )?,
            None => Vec::new(),
        };
        schemes.push(SchemeResult {
            watermark: spec.to_string(),
            students,
            fpr,
        });
    }
    Ok(RadioactivityReport {
        students: options.model.students(),
        fine_tune_samples: n,
        closed_tokens: o.closed_tokens,
        open_tokens: o.open_tokens,
        checkpoints: o.checkpoints.clone(),
        schemes,
    })
}

/// Runs the four tests on one student; also returns the closed and open/held-out tuples.
fn test_student(
    lab: &Lab<'_>,
    spec: &WatermarkSpec,
    key: &moat_mark::Key,
    student: &dyn crate::LanguageModel,
    heldout_prompts: &[&[u32]],
    heldout_pairs: &[(&[u32], &[u32])],
    served: &[(&[u32], &[u32])],
) -> Result<(Tuples, Tuples, Vec<TestResult>), Error> {
    let o = &lab.options.radioactivity;
    let (h, statistic, prf) = (spec.h, spec.statistic(), spec.prf(key)?);
    let answers = lab.closed_answers(student, heldout_prompts, o.closed_tokens, "closed");
    let mut closed = Tuples::new(h);
    for (_, answer) in &answers {
        closed.push_text(answer);
    }
    let served_prompts: Vec<&[u32]> = served.iter().map(|&(p, _)| p).collect();

    let served_answers: Vec<&[u32]> = served.iter().map(|&(_, a)| a).collect();
    let plain = Feed {
        prompts: heldout_prompts,
        filter: None,
    };
    let filtered = Feed {
        prompts: heldout_prompts,
        filter: Some(&served_answers),
    };
    let mut reader = Reader::new(student);
    let (open_heldout, heldout_matches) = reader.read(h, heldout_pairs, o.open_tokens);
    let (open_served, served_matches) = reader.read(h, served, o.open_tokens);
    let on_served = Feed {
        prompts: &served_prompts,
        filter: None,
    };
    let cp = &o.checkpoints;
    let tests = vec![
        TestResult {
            setting: Setting::Closed,
            curve: curve(prf.clone(), statistic, plain, &closed, cp)?,
            prediction_match_rate: None,
        },
        TestResult {
            setting: Setting::ClosedFiltered,
            curve: curve(prf.clone(), statistic, filtered, &closed, cp)?,
            prediction_match_rate: None,
        },
        TestResult {
            setting: Setting::OpenHeldout,
            curve: curve(prf.clone(), statistic, plain, &open_heldout, cp)?,
            prediction_match_rate: Some(heldout_matches as f64 / open_heldout.len().max(1) as f64),
        },
        TestResult {
            setting: Setting::OpenServed,
            curve: curve(prf, statistic, on_served, &open_served, cp)?,
            prediction_match_rate: Some(served_matches as f64 / open_served.len().max(1) as f64),
        },
    ];
    Ok((closed, open_heldout, tests))
}

/// The clean student and the material it produced for the key-independent tests.
struct Clean {
    student: Box<dyn crate::LanguageModel>,
    closed: Tuples,
    open_heldout: Tuples,
}

/// The clean student's false positives under every test.
fn clean_fpr(
    lab: &Lab<'_>,
    spec: &WatermarkSpec,
    clean: &Clean,
    heldout_prompts: &[&[u32]],
    served_questions: &[usize],
    generator: &mut Generator<'_>,
) -> Result<Vec<FprRow>, Error> {
    let Clean {
        student,
        closed,
        open_heldout,
    } = clean;
    let o = &lab.options.radioactivity;
    let statistic = spec.statistic();
    let mut rows = Vec::new();
    // Key-independent material: the same unique tuples under many keys.
    for (setting, tuples) in [
        (Setting::Closed, closed),
        (Setting::OpenHeldout, open_heldout),
    ] {
        let unique = tuples.unique(heldout_prompts);
        let mut log10_p = Vec::with_capacity(o.fpr_keys);
        for j in 0..o.fpr_keys {
            let key = lab.master.derive(&format!("fpr:{j}"));
            let point = test_unique(spec.prf(&key)?, statistic, heldout_prompts, &unique, None)?;
            log10_p.push(point.log10_p);
        }
        rows.push(FprRow::new(setting, &log10_p, unique.len() as f64));
    }
    // Served-text-dependent tests: every key serves its own answers to the same questions.
    let corpus = lab.corpus;
    let questions: Vec<&[u32]> = served_questions
        .iter()
        .map(|&i| corpus.distill[i].prompt.as_slice())
        .collect();
    let (mut filtered, mut on_served) = (Vec::new(), Vec::new());
    let (mut filtered_scored, mut served_scored) = (0u64, 0u64);
    // The filter test's selection before the filter (prompt exclusion and de-duplication) is
    // key-independent: do it once.
    let closed_unique = closed.unique(heldout_prompts);
    let mut reader = Reader::new(&**student);
    for j in 0..o.fpr_served_keys {
        let key = lab.master.derive(&format!("fpr-served:{j}"));
        let marker = spec.marker(&key)?;
        let served = lab.serve(
            generator,
            &marker,
            served_questions
                .iter()
                .map(|&i| (i as u64, corpus.distill[i].prompt.as_slice())),
            "serve",
        );
        let answers: Vec<&[u32]> = served.iter().map(|g| g.tokens.as_slice()).collect();
        let c = test_unique(
            spec.prf(&key)?,
            statistic,
            heldout_prompts,
            &closed_unique,
            Some(&answers),
        )?;
        filtered.push(c.log10_p);
        filtered_scored += c.scored;
        let texts: Vec<(&[u32], &[u32])> = questions
            .iter()
            .copied()
            .zip(answers.iter().copied())
            .collect();
        let (tuples, _) = reader.read(spec.h, &texts, o.open_tokens);
        let unique = tuples.unique(&questions);
        let c = test_unique(spec.prf(&key)?, statistic, &questions, &unique, None)?;
        on_served.push(c.log10_p);
        served_scored += c.scored;
    }
    if o.fpr_served_keys > 0 {
        let keys = o.fpr_served_keys as f64;
        rows.push(FprRow::new(
            Setting::ClosedFiltered,
            &filtered,
            filtered_scored as f64 / keys,
        ));
        rows.push(FprRow::new(
            Setting::OpenServed,
            &on_served,
            served_scored as f64 / keys,
        ));
    }
    Ok(rows)
}

impl fmt::Display for RadioactivityReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Radioactivity: {} fine-tuned on {} questions, a share ρ answered by the \
             watermarked teacher and the rest by humans; closed tests on {} generated tokens, \
             open tests on up to {} read positions. Cells are log10 p after that many scored \
             tuples (— when the test never got that far); `final` is after all of them.\n",
            self.students, self.fine_tune_samples, self.closed_tokens, self.open_tokens
        )?;
        for scheme in &self.schemes {
            writeln!(f, "**{}**\n", scheme.watermark)?;
            write!(f, "| ρ | watermarked tokens | test |")?;
            for c in &self.checkpoints {
                write!(f, " @{} |", compact(*c))?;
            }
            writeln!(f, " final (scored) | top-1 = text |")?;
            write!(f, "|---|---|---|")?;
            for _ in &self.checkpoints {
                write!(f, "---|")?;
            }
            writeln!(f, "---|---|")?;
            for s in &scheme.students {
                for t in &s.tests {
                    write!(
                        f,
                        "| {}% | {:.1}% | {} |",
                        s.percent,
                        100.0 * s.watermarked_token_share,
                        t.setting.name()
                    )?;
                    for c in &self.checkpoints {
                        match t.curve.at(*c) {
                            Some(v) => write!(f, " {} |", log10_cell(v))?,
                            None => write!(f, " — |")?,
                        }
                    }
                    let matches = t
                        .prediction_match_rate
                        .map_or("".into(), |m| format!("{:.1}%", 100.0 * m));
                    writeln!(
                        f,
                        " {} ({}) | {matches} |",
                        log10_cell(t.curve.last.log10_p),
                        t.curve.last.scored
                    )?;
                }
            }
            if !scheme.fpr.is_empty() {
                writeln!(f, "\nClean student (ρ = 0), false positives:\n")?;
                writeln!(
                    f,
                    "| test | keys | scored/key | FPR@1e-2 | FPR@1e-3 | FPR@1e-5 | KS D (p) | min \
                     log10 p |"
                )?;
                writeln!(f, "|---|---|---|---|---|---|---|---|")?;
                for r in &scheme.fpr {
                    write!(
                        f,
                        "| {} | {} | {:.0} |",
                        r.setting.name(),
                        r.keys,
                        r.mean_scored
                    )?;
                    for rate in &r.rates {
                        write!(f, " {rate} |")?;
                    }
                    writeln!(
                        f,
                        " {:.3} ({}) | {:.2} |",
                        r.ks,
                        p_cell(r.ks_p),
                        r.min_log10_p
                    )?;
                }
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

/// `30000` → `30k`.
fn compact(n: u64) -> String {
    if n >= 1000 && n % 1000 == 0 {
        format!("{}k", n / 1000)
    } else {
        n.to_string()
    }
}

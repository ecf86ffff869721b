//! CPU evaluation of Moat's watermarks (`moat-mark`): are the tests calibrated, how much
//! watermarked text they need, whether the watermark survives distillation into a student
//! model ("radioactivity"), whether it names the right campaign, and how token edits weaken it.
//!
//! The models are n-gram language models over o200k token ids ([`NgramLm`]): a teacher trained
//! on human worked solutions (GSM8K, MATH) serves answers, plainly or under a watermark, and
//! students are pre-trained on general human text and fine-tuned on a mixture of served answers
//! and human answers. An n-gram student learns exactly the statistics a watermark skews (which
//! token follows which window), so it is a fair, cheap, fully reproducible stand-in for a
//! neural student. With the `neural` feature, `model.student = "neural"` makes the students of
//! the radioactivity and attribution experiments small MLP language models trained by gradient
//! descent (candle, CPU) instead; the teacher stays the n-gram model. Experiments see either
//! through [`LanguageModel`].
//!
//! ```text
//! corpus (IO, tokenize, split) ──► Lab: teacher ──serve──► answers ──mix──► students
//!                                                  │                         │
//!                                         moat-mark Scorer ◄── closed / open tests
//! ```
//!
//! Entry point: [`run`] (loads the corpus and runs one [`Experiment`]), or [`run_on`] with a
//! [`Corpus`] already in memory. Only [`Corpus::load`] does IO; everything else is a
//! deterministic function of the corpus and the [`Options`] (seed included). Progress goes to
//! `tracing` at info level.

mod corpus;
mod error;
pub mod experiments;
mod generate;
mod lab;
mod model;
#[cfg(feature = "neural")]
mod neural;
mod ngram;
mod options;
mod table;

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

pub use corpus::{training_sequence, Corpus, CorpusTokens, Example, END, SEP};
pub use error::Error;
pub use experiments::attribution::AttributionReport;
pub use experiments::calibration::CalibrationReport;
pub use experiments::power::PowerReport;
pub use experiments::radioactivity::RadioactivityReport;
pub use experiments::robustness::RobustnessReport;
pub use generate::{master_key, rng, Generation, Generator, Marker};
pub use model::LanguageModel;
pub use ngram::{LmParams, NgramBuilder, NgramLm, MAX_ORDER, MAX_TOKEN};
pub use options::{
    AttributionOptions, CalibrationOptions, ModeName, ModelOptions, NeuralOptions, Options,
    PowerOptions, RadioactivityOptions, RobustnessOptions, SchemeName, StudentKind, WatermarkSpec,
};
pub use table::{Quartiles, Rate};

/// The tokenizer every corpus is encoded with.
pub const TOKENIZER: &str = "o200k";

/// One of the five experiments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Experiment {
    /// Null calibration over many random keys.
    Calibration,
    /// Tokens needed for detection, per scheme.
    Power,
    /// Detection in students fine-tuned on watermarked answers.
    Radioactivity,
    /// Which of three campaigns a student learned from.
    Attribution,
    /// Detection after random token substitutions.
    Robustness,
}

impl Experiment {
    /// Every experiment, in order.
    pub const ALL: [Experiment; 5] = [
        Experiment::Calibration,
        Experiment::Power,
        Experiment::Radioactivity,
        Experiment::Attribution,
        Experiment::Robustness,
    ];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Experiment::Calibration => "calibration",
            Experiment::Power => "power",
            Experiment::Radioactivity => "radioactivity",
            Experiment::Attribution => "attribution",
            Experiment::Robustness => "robustness",
        }
    }
}

impl FromStr for Experiment {
    type Err = Error;

    fn from_str(s: &str) -> Result<Experiment, Error> {
        Experiment::ALL
            .into_iter()
            .find(|e| e.name() == s)
            .ok_or_else(|| Error::InvalidOption {
                name: "experiment",
                message: format!(
                    "{s:?} is not one of calibration, power, radioactivity, attribution, \
                     robustness"
                ),
            })
    }
}

impl fmt::Display for Experiment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The result of one experiment.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Report {
    /// See [`experiments::calibration`].
    Calibration(CalibrationReport),
    /// See [`experiments::power`].
    Power(PowerReport),
    /// See [`experiments::radioactivity`].
    Radioactivity(RadioactivityReport),
    /// See [`experiments::attribution`].
    Attribution(AttributionReport),
    /// See [`experiments::robustness`].
    Robustness(RobustnessReport),
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Report::Calibration(r) => r.fmt(f),
            Report::Power(r) => r.fmt(f),
            Report::Radioactivity(r) => r.fmt(f),
            Report::Attribution(r) => r.fmt(f),
            Report::Robustness(r) => r.fmt(f),
        }
    }
}

/// Loads the corpus from `options.data_dir` (tokenized with [`TOKENIZER`]) and runs
/// `experiment`.
pub fn run(experiment: Experiment, options: &Options) -> Result<Report, Error> {
    let tokenizer =
        moat_tokenize::Tokenizer::load(TOKENIZER).map_err(|source| Error::Tokenize {
            context: TOKENIZER.into(),
            source,
        })?;
    let corpus = Corpus::load(&options.data_dir, &tokenizer)?;
    run_on(experiment, &corpus, options)
}

/// Runs `experiment` on a corpus already loaded.
pub fn run_on(experiment: Experiment, corpus: &Corpus, options: &Options) -> Result<Report, Error> {
    options.model.params().validate()?;
    if options.model.student == StudentKind::Neural {
        options.model.neural.validate()?;
        if !cfg!(feature = "neural") {
            return Err(Error::no_neural_feature());
        }
    }
    tracing::info!(experiment = %experiment, seed = options.seed, "experiment started");
    Ok(match experiment {
        Experiment::Calibration => {
            Report::Calibration(experiments::calibration::calibration(corpus, options)?)
        }
        Experiment::Power => Report::Power(experiments::power::power(corpus, options)?),
        Experiment::Radioactivity => {
            Report::Radioactivity(experiments::radioactivity::radioactivity(corpus, options)?)
        }
        Experiment::Attribution => {
            Report::Attribution(experiments::attribution::attribution(corpus, options)?)
        }
        Experiment::Robustness => {
            Report::Robustness(experiments::robustness::robustness(corpus, options)?)
        }
    })
}

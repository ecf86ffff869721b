//! Options of every experiment, with defaults sized to run each experiment in a few minutes on
//! two cores (release build), and the watermark configurations they take.

use std::fmt;
use std::path::PathBuf;

use moat_mark::{Context, Gumbel, Key, Kgw, Mode, Prf, Statistic};
use serde::{Deserialize, Serialize};

use crate::corpus::{default_data_dir, END};
use crate::generate::Marker;
use crate::ngram::LmParams;
use crate::Error;

/// Everything an evaluation run depends on besides the corpus files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Options {
    /// Folder of the development corpora (default `../shared/data`).
    pub data_dir: PathBuf,
    /// Master seed: keys, sampling and fine-tuning order derive from it (splits do not).
    pub seed: u64,
    /// The teacher and the students.
    pub model: ModelOptions,
    /// Experiment 1.
    pub calibration: CalibrationOptions,
    /// Experiment 2.
    pub power: PowerOptions,
    /// Experiment 3.
    pub radioactivity: RadioactivityOptions,
    /// Experiment 4.
    pub attribution: AttributionOptions,
    /// Experiment 5.
    pub robustness: RobustnessOptions,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            data_dir: default_data_dir(),
            seed: 1,
            model: ModelOptions::default(),
            calibration: CalibrationOptions::default(),
            power: PowerOptions::default(),
            radioactivity: RadioactivityOptions::default(),
            attribution: AttributionOptions::default(),
            robustness: RobustnessOptions::default(),
        }
    }
}

/// The models: the n-gram teacher, and the students.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelOptions {
    /// Order N (contexts of N − 1 tokens).
    pub order: usize,
    /// Absolute discount D of the interpolated smoothing.
    pub discount: f64,
    /// Continuations admitted per matching context.
    pub per_context: usize,
    /// Most frequent unigrams always admitted.
    pub backoff: usize,
    /// Longest answer, in tokens.
    pub max_answer_tokens: usize,
    /// Weight of a student's fine-tuning counts relative to its pre-training counts (≥ 1).
    pub fine_tune_weight: f64,
    /// Gumbel-max samples ordinarily when its state repeats within an answer (see
    /// [`crate::Generator::new`]).
    pub repeat_guard: bool,
    /// What the students of the radioactivity and attribution experiments are (the teacher
    /// is always the n-gram model).
    pub student: StudentKind,
    /// The neural students, when `student` is `neural`.
    pub neural: NeuralOptions,
}

/// What kind of model a student is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StudentKind {
    /// An n-gram model with the teacher's parameters, pre-trained and fine-tuned by counting.
    #[default]
    Ngram,
    /// A small neural language model trained by gradient descent (the `neural` feature).
    Neural,
}

/// A neural student: an MLP language model (Bengio et al. 2003) over the last `context`
/// tokens, with a vocabulary of the most frequent o200k tokens of its training text plus one
/// class for every other token. Pre-trained once on the general text, then each student is a
/// copy fine-tuned on its own mixture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NeuralOptions {
    /// Output classes: the most frequent tokens and one "other" class.
    pub vocabulary: usize,
    /// Tokens of context (1 to 4).
    pub context: usize,
    /// Width of a token embedding.
    pub embedding: usize,
    /// Width of the hidden layer (tanh).
    pub hidden: usize,
    /// Positions per gradient step.
    pub batch: usize,
    /// AdamW learning rate.
    pub learning_rate: f64,
    /// Passes over the general text in pre-training.
    pub pretrain_epochs: usize,
    /// Passes over a student's fine-tuning set.
    pub fine_tune_epochs: usize,
    /// Most probable tokens a student samples from (renormalised), like the n-gram models'
    /// candidate sets.
    pub candidates: usize,
}

impl Default for NeuralOptions {
    fn default() -> NeuralOptions {
        NeuralOptions {
            vocabulary: 2048,
            context: 3,
            embedding: 32,
            hidden: 128,
            batch: 256,
            learning_rate: 3e-3,
            pretrain_epochs: 1,
            fine_tune_epochs: 1,
            candidates: 48,
        }
    }
}

impl NeuralOptions {
    /// Checks every field's range.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |name: &'static str, message: &str| {
            Err(Error::InvalidOption {
                name,
                message: message.to_owned(),
            })
        };
        if !(2..=65_536).contains(&self.vocabulary) {
            return bad("model.neural.vocabulary", "must be between 2 and 65536");
        }
        if !(1..=4).contains(&self.context) {
            return bad("model.neural.context", "must be between 1 and 4");
        }
        if !(1..=1024).contains(&self.embedding) || !(1..=4096).contains(&self.hidden) {
            return bad(
                "model.neural.embedding",
                "embedding must be 1..=1024 and hidden 1..=4096",
            );
        }
        if self.batch == 0 {
            return bad("model.neural.batch", "must be at least 1");
        }
        if !(self.learning_rate > 0.0 && self.learning_rate < 1.0) {
            return bad("model.neural.learning_rate", "must be in (0, 1)");
        }
        if self.candidates == 0 {
            return bad("model.neural.candidates", "must be at least 1");
        }
        Ok(())
    }
}

impl Default for ModelOptions {
    fn default() -> ModelOptions {
        ModelOptions {
            order: 3,
            discount: 0.75,
            per_context: 48,
            backoff: 32,
            max_answer_tokens: 256,
            fine_tune_weight: 1.0,
            repeat_guard: true,
            student: StudentKind::Ngram,
            neural: NeuralOptions::default(),
        }
    }
}

impl ModelOptions {
    /// What the students are, for report headers (e.g. "n-gram students").
    pub fn students(&self) -> String {
        match self.student {
            StudentKind::Ngram => "n-gram students".into(),
            StudentKind::Neural => {
                let n = &self.neural;
                format!(
                    "neural students (MLP over {} tokens of context: {} classes, embedding {}, \
                     hidden {}; {} pre-training and {} fine-tuning epoch(s), batch {}, AdamW \
                     lr {})",
                    n.context,
                    n.vocabulary,
                    n.embedding,
                    n.hidden,
                    n.pretrain_epochs,
                    n.fine_tune_epochs,
                    n.batch,
                    n.learning_rate
                )
            }
        }
    }

    /// The n-gram parameters.
    pub fn params(&self) -> LmParams {
        LmParams {
            order: self.order,
            discount: self.discount,
            per_context: self.per_context,
            backoff: self.backoff,
            pad: END,
        }
    }
}

/// Experiment 1: p-values of unwatermarked text under many keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CalibrationOptions {
    /// Random keys per watermark configuration.
    pub keys: usize,
    /// Tokens of held-out human text each key scores.
    pub chunk_tokens: usize,
    /// Configurations tested (δ plays no part in a test).
    pub watermarks: Vec<WatermarkSpec>,
}

impl Default for CalibrationOptions {
    fn default() -> CalibrationOptions {
        CalibrationOptions {
            keys: 10_000,
            chunk_tokens: 300,
            watermarks: vec![
                WatermarkSpec::kgw(2.0, 1, ModeName::Ordered),
                WatermarkSpec::kgw(2.0, 2, ModeName::Ordered),
                WatermarkSpec::kgw(2.0, 4, ModeName::SelfHash),
                WatermarkSpec::gumbel(1, ModeName::Ordered),
                WatermarkSpec::gumbel(2, ModeName::Ordered),
                WatermarkSpec::gumbel(4, ModeName::SelfHash),
            ],
        }
    }
}

/// Experiment 2: tokens of watermarked teacher output needed for detection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PowerOptions {
    /// Independent streams (one key each) per configuration.
    pub trials: usize,
    /// Tokens generated per stream at most.
    pub max_tokens: usize,
    /// Detection threshold, as log10 p.
    pub log10_threshold: f64,
    /// Configurations measured.
    pub watermarks: Vec<WatermarkSpec>,
}

impl Default for PowerOptions {
    fn default() -> PowerOptions {
        let mut watermarks = Vec::new();
        for (h, mode) in [
            (1, ModeName::Ordered),
            (2, ModeName::Ordered),
            (4, ModeName::SelfHash),
        ] {
            for delta in [1.0, 2.0, 4.0] {
                watermarks.push(WatermarkSpec::kgw(delta, h, mode));
            }
            watermarks.push(WatermarkSpec::gumbel(h, mode));
        }
        PowerOptions {
            trials: 100,
            max_tokens: 2000,
            log10_threshold: -6.0,
            watermarks,
        }
    }
}

/// Experiment 3: students fine-tuned on a share of watermarked teacher answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RadioactivityOptions {
    /// Configurations the teacher serves with.
    pub watermarks: Vec<WatermarkSpec>,
    /// Shares of the fine-tuning samples answered by the watermarked teacher, in percent.
    pub percents: Vec<f64>,
    /// Fine-tuning samples (questions of the distill split); 0 takes all.
    pub fine_tune_samples: usize,
    /// Tokens a student generates for the closed setting.
    pub closed_tokens: usize,
    /// Positions a student reads for the open setting.
    pub open_tokens: usize,
    /// Scored-tuple counts at which log10 p is reported.
    pub checkpoints: Vec<u64>,
    /// Random keys the clean student is tested with where the test does not depend on
    /// served text (closed without filter, open on held-out text).
    pub fpr_keys: usize,
    /// Keys, each serving its own answers, the clean student is tested with where the test
    /// depends on served text (closed with filter, open on served text).
    pub fpr_served_keys: usize,
    /// The share whose served answers the clean student (ρ = 0) is tested against, in percent.
    pub reference_percent: f64,
}

impl Default for RadioactivityOptions {
    fn default() -> RadioactivityOptions {
        RadioactivityOptions {
            watermarks: vec![
                WatermarkSpec::kgw(2.0, 1, ModeName::Ordered),
                WatermarkSpec::gumbel(1, ModeName::Ordered),
            ],
            percents: vec![0.0, 1.0, 5.0, 10.0, 100.0],
            fine_tune_samples: 0,
            closed_tokens: 300_000,
            open_tokens: 300_000,
            checkpoints: vec![1_000, 3_000, 10_000, 30_000, 100_000],
            fpr_keys: 1_000,
            fpr_served_keys: 1_000,
            reference_percent: 5.0,
        }
    }
}

/// Experiment 4: three campaigns, a student trained on one of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AttributionOptions {
    /// The configuration every campaign is served with (each with its own key).
    pub watermark: WatermarkSpec,
    /// Shares of campaign B's answers in the fine-tuning set, in percent (a clean student is
    /// always added).
    pub percents: Vec<f64>,
    /// Control keys that were never served.
    pub controls: usize,
    /// Level of the Holm-corrected test.
    pub alpha: f64,
    /// Tokens each student generates for the test.
    pub closed_tokens: usize,
    /// Positions each student reads for the test (served answers of the three campaigns,
    /// a third each).
    pub open_tokens: usize,
    /// The share whose served answers the clean student reads, in percent.
    pub reference_percent: f64,
}

impl Default for AttributionOptions {
    fn default() -> AttributionOptions {
        AttributionOptions {
            watermark: WatermarkSpec::kgw(2.0, 1, ModeName::Ordered),
            percents: vec![5.0, 100.0],
            controls: 200,
            alpha: 1e-3,
            closed_tokens: 300_000,
            open_tokens: 300_000,
            reference_percent: 5.0,
        }
    }
}

/// Experiment 5: random token substitutions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RobustnessOptions {
    /// Configurations measured.
    pub watermarks: Vec<WatermarkSpec>,
    /// Texts (one key each) per configuration.
    pub texts: usize,
    /// Tokens per text.
    pub length: usize,
    /// Substitution rates.
    pub rates: Vec<f64>,
}

impl Default for RobustnessOptions {
    fn default() -> RobustnessOptions {
        RobustnessOptions {
            watermarks: vec![
                WatermarkSpec::kgw(2.0, 1, ModeName::Ordered),
                WatermarkSpec::kgw(2.0, 4, ModeName::Ordered),
                WatermarkSpec::kgw(2.0, 4, ModeName::SelfHash),
                WatermarkSpec::gumbel(1, ModeName::Ordered),
                WatermarkSpec::gumbel(4, ModeName::Ordered),
                WatermarkSpec::gumbel(4, ModeName::SelfHash),
            ],
            texts: 100,
            length: 300,
            rates: vec![0.0, 0.1, 0.2, 0.3, 0.4],
        }
    }
}

/// Which scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SchemeName {
    /// KGW soft watermark.
    Kgw,
    /// Gumbel-max sampling.
    Gumbel,
}

/// How the window seeds a position (see [`moat_mark::Mode`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModeName {
    /// Hash of the ordered window.
    Ordered,
    /// Anchored min-hash with the candidate (SelfHash).
    SelfHash,
}

/// One watermark configuration.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatermarkSpec {
    /// The scheme.
    pub scheme: SchemeName,
    /// KGW's green fraction γ (unused by Gumbel).
    #[serde(default = "default_gamma")]
    pub gamma: f64,
    /// KGW's bias δ (unused by Gumbel).
    #[serde(default)]
    pub delta: f64,
    /// Window width h.
    pub h: usize,
    /// Window mode.
    pub mode: ModeName,
}

fn default_gamma() -> f64 {
    0.25
}

impl WatermarkSpec {
    /// KGW with γ = 0.25.
    pub const fn kgw(delta: f64, h: usize, mode: ModeName) -> WatermarkSpec {
        WatermarkSpec {
            scheme: SchemeName::Kgw,
            gamma: 0.25,
            delta,
            h,
            mode,
        }
    }

    /// Gumbel-max.
    pub const fn gumbel(h: usize, mode: ModeName) -> WatermarkSpec {
        WatermarkSpec {
            scheme: SchemeName::Gumbel,
            gamma: 0.25,
            delta: 0.0,
            h,
            mode,
        }
    }

    /// The context rule.
    pub fn context(&self) -> Result<Context, Error> {
        let mode = match self.mode {
            ModeName::Ordered => Mode::Ordered,
            ModeName::SelfHash => Mode::SelfHash,
        };
        Ok(Context::new(self.h, mode)?)
    }

    /// The test statistic.
    pub fn statistic(&self) -> Statistic {
        match self.scheme {
            SchemeName::Kgw => Statistic::Green { gamma: self.gamma },
            SchemeName::Gumbel => Statistic::Gumbel,
        }
    }

    /// The PRF of `key`.
    pub fn prf(&self, key: &Key) -> Result<Prf, Error> {
        Ok(Prf::new(key, self.context()?))
    }

    /// The sampling-time marker of `key`.
    pub fn marker(&self, key: &Key) -> Result<Marker, Error> {
        let prf = self.prf(key)?;
        Ok(match self.scheme {
            SchemeName::Kgw => Marker::Kgw(Kgw::new(prf, self.gamma, self.delta)?),
            SchemeName::Gumbel => Marker::Gumbel(Gumbel::new(prf, 1.0)?),
        })
    }

    /// The test's name, without δ (which does not enter a test).
    pub fn test_name(&self) -> String {
        let mode = match self.mode {
            ModeName::Ordered => "ordered",
            ModeName::SelfHash => "selfhash",
        };
        match self.scheme {
            SchemeName::Kgw => format!("KGW γ={} · {mode} h={}", self.gamma, self.h),
            SchemeName::Gumbel => format!("Gumbel · {mode} h={}", self.h),
        }
    }
}

impl fmt::Display for WatermarkSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = match self.mode {
            ModeName::Ordered => "ordered",
            ModeName::SelfHash => "selfhash",
        };
        match self.scheme {
            SchemeName::Kgw => write!(
                f,
                "KGW γ={} δ={} · {mode} h={}",
                self.gamma, self.delta, self.h
            ),
            SchemeName::Gumbel => write!(f, "Gumbel · {mode} h={}", self.h),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_round_trip_and_refuse_unknown_keys() {
        let options = Options::default();
        let json = serde_json::to_string(&options).expect("serialize");
        let back: Options = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, options);
        let partial: Options =
            serde_json::from_str(r#"{"seed": 7, "calibration": {"keys": 12}}"#).expect("partial");
        assert_eq!((partial.seed, partial.calibration.keys), (7, 12));
        assert!(serde_json::from_str::<Options>(r#"{"sed": 7}"#).is_err());
    }

    #[test]
    fn specs_build_markers_and_name_themselves() {
        let key = Key::from_bytes([1; 32]);
        let kgw = WatermarkSpec::kgw(2.0, 1, ModeName::Ordered);
        assert!(matches!(kgw.marker(&key), Ok(Marker::Kgw(_))));
        assert_eq!(kgw.to_string(), "KGW γ=0.25 δ=2 · ordered h=1");
        let bad = WatermarkSpec::gumbel(0, ModeName::SelfHash);
        assert!(bad.marker(&key).is_err());
        assert_eq!(
            WatermarkSpec::gumbel(4, ModeName::SelfHash).test_name(),
            "Gumbel · selfhash h=4"
        );
    }
}

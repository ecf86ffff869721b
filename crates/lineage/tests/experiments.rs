//! Every experiment end to end on a small synthetic corpus written here (a sparse Markov chain
//! over a few hundred token ids), and, only when `MOAT_DATA_DIR` points at the development
//! corpora, a reduced radioactivity run on the real data:
//!
//! ```sh
//! MOAT_DATA_DIR=/work/shared/data cargo test --release -p moat-lineage --test experiments
//! ```

use moat_lineage::{
    rng, run_on, Corpus, Example, Experiment, ModeName, Options, Report, WatermarkSpec,
};
use rand::Rng;
use rand_pcg::Pcg64;

/// A chain over `0..VOCAB` in which every token has eight possible successors.
const VOCAB: u32 = 400;

/// The successor of `t` in chain `chain` (reasoning text and general text use different
/// chains, as math solutions and chat messages share few bigrams).
fn successor(chain: u32, t: u32, r: &mut Pcg64) -> u32 {
    let k = r.gen_range(0..8u32);
    (t.wrapping_mul(2_654_435_761).rotate_left(7) ^ (k * 97 + 13 + chain * 7919)) % VOCAB
}

fn walk(chain: u32, r: &mut Pcg64, len: usize) -> Vec<u32> {
    let mut t = r.gen_range(0..VOCAB);
    (0..len)
        .map(|_| {
            t = successor(chain, t, r);
            t
        })
        .collect()
}

fn corpus() -> Corpus {
    let mut r = rng(99, "synthetic", 0);
    let reasoning = (0..600)
        .map(|_| Example {
            prompt: walk(0, &mut r, 12),
            answer: walk(0, &mut r, 60),
        })
        .collect();
    let general = (0..300).map(|_| walk(1, &mut r, 80)).collect();
    Corpus::from_records(reasoning, general)
}

fn small_options() -> Options {
    let mut o = Options::default();
    o.model.max_answer_tokens = 80;
    o.calibration.keys = 300;
    o.calibration.chunk_tokens = 60;
    o.power.trials = 5;
    o.power.max_tokens = 400;
    o.power.watermarks = vec![
        WatermarkSpec::kgw(2.0, 1, ModeName::Ordered),
        WatermarkSpec::gumbel(4, ModeName::SelfHash),
    ];
    o.radioactivity.watermarks = vec![WatermarkSpec::kgw(4.0, 1, ModeName::Ordered)];
    o.radioactivity.percents = vec![0.0, 100.0];
    o.radioactivity.closed_tokens = 20_000;
    o.radioactivity.open_tokens = 20_000;
    o.radioactivity.checkpoints = vec![100, 1000];
    o.radioactivity.fpr_keys = 50;
    o.radioactivity.fpr_served_keys = 5;
    o.attribution.watermark = WatermarkSpec::kgw(4.0, 1, ModeName::Ordered);
    o.attribution.percents = vec![100.0];
    o.attribution.controls = 20;
    o.attribution.closed_tokens = 20_000;
    o.attribution.open_tokens = 20_000;
    o.robustness.texts = 5;
    o.robustness.length = 120;
    o.robustness.watermarks = vec![
        WatermarkSpec::kgw(2.0, 1, ModeName::Ordered),
        WatermarkSpec::gumbel(4, ModeName::SelfHash),
    ];
    o
}

#[test]
fn every_experiment_runs_and_renders() {
    let corpus = corpus();
    let options = small_options();
    for experiment in Experiment::ALL {
        let report = run_on(experiment, &corpus, &options).expect("experiment runs");
        let markdown = report.to_string();
        assert!(markdown.contains("|---|"), "{experiment}: {markdown}");
        let json = serde_json::to_string(&report).expect("serializes");
        assert!(json.starts_with(&format!("{{\"{experiment}\"")), "{json}");
        // Deterministic given the seed.
        if experiment == Experiment::Robustness {
            assert_eq!(
                run_on(experiment, &corpus, &options).expect("again"),
                report
            );
        }
    }
}

#[test]
fn a_student_of_watermarked_answers_is_detected_and_a_clean_one_is_not() {
    let corpus = corpus();
    let options = small_options();
    let Report::Radioactivity(report) =
        run_on(Experiment::Radioactivity, &corpus, &options).expect("runs")
    else {
        unreachable!("radioactivity returns its own report")
    };
    let students = &report.schemes[0].students;
    let closed = |s: usize| students[s].tests[0].curve.last.log10_p;
    assert_eq!(students[0].percent, 0.0);
    assert!(closed(0) > -3.0, "clean student: {}", closed(0));
    assert!(closed(1) < -6.0, "watermarked student: {}", closed(1));
    for row in &report.schemes[0].fpr {
        assert!(row.keys > 0);
    }
}

#[test]
fn attribution_names_campaign_b_only() {
    let corpus = corpus();
    let options = small_options();
    let Report::Attribution(report) =
        run_on(Experiment::Attribution, &corpus, &options).expect("runs")
    else {
        unreachable!("attribution returns its own report")
    };
    for s in &report.students {
        if s.student == "clean" {
            assert!(s.attributed.is_empty(), "{s:?}");
        } else if s.test == "closed" {
            assert_eq!(s.attributed, vec!["campaign:b".to_string()], "{s:?}");
        }
        assert!(s.attributed.iter().all(|a| a == "campaign:b"), "{s:?}");
    }
}

#[test]
fn options_are_validated() {
    let corpus = corpus();
    let mut options = small_options();
    options.model.order = 9;
    assert!(run_on(Experiment::Power, &corpus, &options).is_err());
    let mut options = small_options();
    options.radioactivity.percents = vec![150.0];
    assert!(run_on(Experiment::Radioactivity, &corpus, &options).is_err());
    assert!("nope".parse::<Experiment>().is_err());
    assert_eq!("power".parse::<Experiment>().ok(), Some(Experiment::Power));
    assert!(run_on(Experiment::Power, &Corpus::default(), &small_options()).is_err());
}

/// The real corpora, reduced sizes; only with `MOAT_DATA_DIR`.
#[test]
fn real_data_radioactivity_at_five_percent() {
    let Some(dir) = std::env::var_os("MOAT_DATA_DIR") else {
        return;
    };
    let mut options = Options {
        data_dir: dir.into(),
        ..Options::default()
    };
    options.radioactivity.watermarks = vec![WatermarkSpec::kgw(2.0, 1, ModeName::Ordered)];
    options.radioactivity.percents = vec![0.0, 5.0];
    options.radioactivity.closed_tokens = 50_000;
    options.radioactivity.open_tokens = 50_000;
    options.radioactivity.fpr_keys = 100;
    options.radioactivity.fpr_served_keys = 10;
    let Report::Radioactivity(report) =
        moat_lineage::run(Experiment::Radioactivity, &options).expect("runs on the real data")
    else {
        unreachable!("radioactivity returns its own report")
    };
    let students = &report.schemes[0].students;
    let open_served = |s: usize| {
        students[s]
            .tests
            .iter()
            .find(|t| t.setting == moat_lineage::experiments::radioactivity::Setting::OpenServed)
            .map_or(0.0, |t| t.curve.last.log10_p)
    };
    assert!(open_served(0) > -3.0, "clean: {}", open_served(0));
    assert!(open_served(1) < -5.0, "5%: {}", open_served(1));
}

fn neural_options() -> Options {
    let mut o = small_options();
    o.model.student = moat_lineage::StudentKind::Neural;
    o.model.neural = moat_lineage::NeuralOptions {
        vocabulary: 512,
        context: 2,
        embedding: 16,
        hidden: 64,
        batch: 128,
        learning_rate: 0.01,
        pretrain_epochs: 1,
        fine_tune_epochs: 3,
        candidates: 16,
    };
    o
}

#[cfg(not(feature = "neural"))]
#[test]
fn neural_students_need_the_feature() {
    let err = run_on(Experiment::Radioactivity, &corpus(), &neural_options())
        .expect_err("no neural students in this build");
    assert!(err.to_string().contains("`neural` feature"), "{err}");
}

#[cfg(feature = "neural")]
#[test]
fn neural_students_learn_the_watermark() {
    let corpus = corpus();
    let options = neural_options();
    let Report::Radioactivity(report) =
        run_on(Experiment::Radioactivity, &corpus, &options).expect("runs")
    else {
        unreachable!("radioactivity returns its own report")
    };
    assert!(
        report.students.starts_with("neural students"),
        "{}",
        report.students
    );
    assert!(report.to_string().contains("neural students"));
    let students = &report.schemes[0].students;
    let closed = |s: usize| students[s].tests[0].curve.last.log10_p;
    assert!(closed(0) > -3.0, "clean student: {}", closed(0));
    assert!(closed(1) < -6.0, "watermarked student: {}", closed(1));
    let Report::Attribution(report) =
        run_on(Experiment::Attribution, &corpus, &options).expect("runs")
    else {
        unreachable!("attribution returns its own report")
    };
    for s in &report.students {
        assert!(s.attributed.iter().all(|a| a == "campaign:b"), "{s:?}");
    }
}

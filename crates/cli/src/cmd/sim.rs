//! `moat sim`: generate labelled traffic from a scenario.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use moat_sim::{Corpus, Scenario, SimOptions};

/// Arguments of `moat sim`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Scenario file (see scenarios/).
    #[arg(long)]
    scenario: PathBuf,
    /// Directory of real prompt corpora (the ../shared/data layout); without it the
    /// built-in corpus is used.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Output directory; receives traffic.jsonl.gz, accounts.jsonl, labels.jsonl, summary.json.
    #[arg(long)]
    out: PathBuf,
    /// Random seed; the same seed, scenario and corpus give byte-identical output.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Multiplies every population's account count (and so the volume).
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// Hide the progress bar.
    #[arg(long)]
    quiet: bool,
}

/// Runs `moat sim`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let scenario = Scenario::from_file(&args.scenario)
        .with_context(|| format!("loading scenario {}", args.scenario.display()))?;
    let corpus = match &args.data {
        Some(dir) => {
            Corpus::load(dir).with_context(|| format!("loading corpora from {}", dir.display()))?
        }
        None => Corpus::builtin(),
    };
    for warning in &corpus.warnings {
        tracing::warn!(warning = %warning, "corpus");
    }
    let opts = SimOptions {
        seed: args.seed,
        scale: args.scale,
    };
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(0)
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} exchanges ({per_sec}, eta {eta})",
        )
        .context("building the progress bar style")?,
    );
    let started = Instant::now();
    let summary = moat_sim::run(&scenario, &corpus, &opts, &args.out, &mut |done, total| {
        bar.set_length(total.max(done));
        bar.set_position(done);
    })
    .with_context(|| format!("simulating into {}", args.out.display()))?;
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    super::print(&format!(
        "{summary}\nwrote {} exchanges for {} accounts to {} in {:.1} s ({:.0} exchanges/s, corpus: {})\n",
        summary.exchanges,
        summary.accounts,
        args.out.display(),
        secs,
        summary.exchanges as f64 / secs.max(1e-9),
        corpus.source,
    ))
}

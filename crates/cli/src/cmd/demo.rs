//! `moat demo`: the main job end to end on embedded defaults: simulate a small scenario,
//! analyze it, print the campaigns found with their evidence, and evaluate against the labels.

use std::path::PathBuf;

use anyhow::Context;
use moat_format::ReadOptions;
use moat_sim::{Corpus, Scenario, SimOptions};
use moat_types::Detection;

/// The small scenario, built into the binary so the demo runs from any directory.
const SMALL: &str = include_str!("../../../../scenarios/small.toml");

/// Arguments of `moat demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Scenario file; default: the built-in copy of scenarios/small.toml.
    #[arg(long)]
    scenario: Option<PathBuf>,
    /// Real prompt corpora (the ../shared/data layout); default: the built-in corpus.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Working directory for the simulated traffic and the detections.
    #[arg(long, default_value = "out/demo")]
    out: PathBuf,
    /// Random seed of the simulation.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// Runs `moat demo`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let scenario = match &args.scenario {
        Some(p) => {
            Scenario::from_file(p).with_context(|| format!("loading scenario {}", p.display()))?
        }
        None => Scenario::from_toml_str("scenarios/small.toml (built in)", SMALL)
            .context("loading the built-in scenario")?,
    };
    let corpus = match &args.data {
        Some(dir) => {
            Corpus::load(dir).with_context(|| format!("loading corpora from {}", dir.display()))?
        }
        None => Corpus::builtin(),
    };
    let opts = SimOptions {
        seed: args.seed,
        scale: 1.0,
    };
    let summary = moat_sim::run(&scenario, &corpus, &opts, &args.out, &mut |_, _| {})
        .with_context(|| format!("simulating into {}", args.out.display()))?;
    super::print(&format!(
        "== simulated: {} exchanges from {} accounts ({} campaigns hidden among them), corpus {}\n",
        summary.exchanges,
        summary.accounts,
        summary.by_campaign.len(),
        corpus.source
    ))?;
    let traffic = args.out.join("traffic.jsonl.gz");
    let detections = args.out.join("detections.jsonl");
    let outcome = super::analyze::analyze(
        &traffic,
        Some(&args.out.join("accounts.jsonl")),
        &detections,
        ReadOptions::default(),
        true,
    )?;
    super::print(&format!(
        "== analyzed: {}",
        super::analyze::summary_line(&outcome, &detections)
    ))?;
    let mut campaigns: Vec<_> = outcome
        .detections
        .iter()
        .filter_map(|d| match d {
            Detection::Campaign(c) => Some(c),
            Detection::Account(_) => None,
        })
        .collect();
    campaigns.sort_by_key(|c| std::cmp::Reverse(c.accounts.len()));
    let mut text = String::from("\n== campaigns found\n");
    for c in &campaigns {
        text.push_str(&format!(
            "{}  {} accounts  score {:.2}  first detected {}\n",
            c.campaign_id,
            c.accounts.len(),
            c.score,
            c.first_detected_at
                .map_or_else(|| "-".to_owned(), |t| t.to_string())
        ));
        for s in &c.signals {
            text.push_str(&format!("    {}: {}\n", s.name, s.detail));
        }
    }
    if campaigns.is_empty() {
        text.push_str("(none)\n");
    }
    super::print(&text)?;
    let report = moat_eval::evaluate(
        &args.out.join("labels.jsonl"),
        &detections,
        &traffic,
        ReadOptions::default(),
    )
    .context("evaluating the detections")?;
    super::print(&format!(
        "\n== evaluation against the simulator's labels\n{report}"
    ))
}

//! `moat eval`: score a detections file against labels, with the rate-limit baseline.

use std::path::PathBuf;

use anyhow::Context;
use moat_format::ReadOptions;

/// Arguments of `moat eval`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Ground-truth labels (labels.jsonl from `moat sim`).
    #[arg(long)]
    labels: PathBuf,
    /// Detections to score (the detections format of the spec).
    #[arg(long)]
    detections: PathBuf,
    /// The traffic the detections were computed on (.jsonl or .jsonl.gz).
    #[arg(long)]
    traffic: PathBuf,
    /// Also write the full report as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Skip malformed lines of the three files (counted and reported) instead of failing.
    #[arg(long)]
    skip_bad_lines: bool,
}

/// Runs `moat eval`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let opts = ReadOptions {
        skip_bad_lines: args.skip_bad_lines,
        ..ReadOptions::default()
    };
    let report = moat_eval::evaluate(&args.labels, &args.detections, &args.traffic, opts)
        .context("evaluating detections")?;
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report).context("encoding the report")?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
    }
    super::print(&report.to_string())
}

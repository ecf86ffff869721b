//! `moat analyze`: run the detection engine over an exchange log and write detections.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use moat_detect::signals::Signals;
use moat_detect::{Config, Engine, Features};
use moat_format::{ParallelReader, ReadOptions, Reader, SkipReport, Writer};
use moat_types::{Account, Detection, Exchange};

/// Arguments of `moat analyze`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Exchange log to analyze (.jsonl or .jsonl.gz, in time order).
    traffic: PathBuf,
    /// Accounts side file (accounts.jsonl): sign-up time, payment fingerprint, verification.
    #[arg(long)]
    accounts: Option<PathBuf>,
    /// Where to write the detections (.jsonl).
    #[arg(long)]
    out: PathBuf,
    /// Skip malformed lines (counted and reported) instead of failing.
    #[arg(long)]
    skip_bad_lines: bool,
    /// Hide the progress bar.
    #[arg(long)]
    quiet: bool,
    /// Also write a human report (one self-contained HTML file) from a second pass over the
    /// traffic: campaigns ranked with evidence, timelines and sample prompts.
    #[arg(long)]
    report: Option<PathBuf>,
    /// The report's kind: `interactive` (the dashboard's pages and charts, the campaign graph
    /// included, with the data embedded; needs JavaScript) or `static` (a printable page
    /// without script: every campaign's evidence, SVG charts, a glossary).
    #[arg(long, value_enum, default_value_t = ReportFormat::Interactive)]
    report_format: ReportFormat,
}

/// What `--report` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    /// The dashboard with the data embedded.
    Interactive,
    /// A printable page without script.
    Static,
}

/// What one analysis produced, for the summary line and the demo.
pub struct Outcome {
    /// The detections written.
    pub detections: Vec<Detection>,
    /// Exchanges analyzed.
    pub exchanges: u64,
    /// Lines skipped in the traffic.
    pub skipped: SkipReport,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// Runs `moat analyze`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let opts = ReadOptions {
        skip_bad_lines: args.skip_bad_lines,
        ..ReadOptions::default()
    };
    let outcome = analyze(
        &args.traffic,
        args.accounts.as_deref(),
        &args.out,
        opts,
        args.quiet,
    )?;
    let mut summary = summary_line(&outcome, &args.out);
    if let Some(path) = &args.report {
        let (d, q) = (&outcome.detections, args.quiet);
        summary += &match args.report_format {
            ReportFormat::Static => {
                super::report::write(&args.traffic, opts, d, &args.out, path, q)?
            }
            ReportFormat::Interactive => super::report::write_interactive(
                &args.traffic,
                args.accounts.as_deref(),
                opts,
                d,
                &args.out,
                path,
                q,
            )?,
        };
    }
    super::print(&summary)
}

/// The one-line summary printed at the end.
pub fn summary_line(o: &Outcome, out: &Path) -> String {
    let accounts = o
        .detections
        .iter()
        .filter(|d| matches!(d, Detection::Account(_)))
        .count();
    let flagged = o
        .detections
        .iter()
        .filter(|d| matches!(d, Detection::Account(a) if a.flagged))
        .count();
    let campaigns = o.detections.len() - accounts;
    let mut line = format!(
        "analyzed {} exchanges of {accounts} accounts in {:.1} s ({:.0} exchanges/s): {flagged} flagged, {campaigns} campaigns; wrote {}",
        o.exchanges,
        o.seconds,
        o.exchanges as f64 / o.seconds.max(1e-9),
        out.display()
    );
    if o.skipped.count > 0 {
        line.push_str(&format!("; skipped {} bad lines", o.skipped.count));
        for (n, reason) in &o.skipped.examples {
            line.push_str(&format!("\n  line {n}: {reason}"));
        }
    }
    line + "\n"
}

/// Reads the accounts file and the traffic, runs the engine, writes the detections.
pub fn analyze(
    traffic: &Path,
    accounts: Option<&Path>,
    out: &Path,
    opts: ReadOptions,
    quiet: bool,
) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let mut engine = Engine::new(Config::default());
    if let Some(path) = accounts {
        for account in Reader::<Account>::open(path, opts)? {
            engine.add_account(&account.context("reading the accounts file")?);
        }
    }
    // The bar follows the bytes of the input file read so far (compressed bytes for gzip).
    let (file, bar) = super::open_with_progress(traffic, quiet)?;
    // Parsing and feature extraction run on worker threads; the engine folds the features
    // here, in file order.
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let signals = Signals::global();
    // Each line is read as a borrowing view, copying only the strings features keep; a line
    // that is not a valid exchange goes through the owned parse, which says why.
    let mut stream = ParallelReader::from_reader_fast(
        traffic.display().to_string(),
        bar.wrap_read(file),
        opts,
        workers,
        move |line: &str| Features::of_line(signals, line).map(|f| (Some(f.ts()), f)),
        move |x: Exchange| Features::from_owned(signals, x),
    )?;
    let mut n = 0u64;
    for features in stream.by_ref() {
        let features = features.context("reading the traffic")?;
        engine.observe_features(features);
        n += 1;
        if n % 65_536 == 0 {
            bar.set_message(format!("{n} exchanges"));
        }
    }
    bar.finish_and_clear();
    let skipped = stream.skipped().clone();
    let detections = engine.finish();
    let mut w = Writer::<Detection>::create(out)?;
    for d in &detections {
        w.write(d)?;
    }
    w.finish()?;
    Ok(Outcome {
        detections,
        exchanges: n,
        skipped,
        seconds: started.elapsed().as_secs_f64(),
    })
}

//! `moat analyze --report`: the second pass over the traffic that builds the HTML report,
//! interactive (the dashboard with its data embedded) or static (`moat-report`'s printable page).

use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use moat_detect::Reason;
use moat_format::{ReadOptions, Reader};
use moat_report::{GlossaryEntry, ReportBuilder, ReportOptions};
use moat_types::{Detection, Exchange};

/// Re-reads `traffic`, builds the report of `detections` and writes it to `out`. Returns the
/// line to add to the summary.
pub fn write(
    traffic: &Path,
    opts: ReadOptions,
    detections: &[Detection],
    detections_path: &Path,
    out: &Path,
    quiet: bool,
) -> anyhow::Result<String> {
    let started = Instant::now();
    let mut builder = ReportBuilder::new(
        detections,
        ReportOptions {
            input: traffic.display().to_string(),
            detections: Some(detections_path.display().to_string()),
            glossary: glossary(),
            ..ReportOptions::default()
        },
    );
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new_spinner()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] report: {human_pos} exchanges ({per_sec})",
        )
        .context("building the progress bar style")?,
    );
    let mut n = 0u64;
    for exchange in Reader::<Exchange>::open(traffic, opts)? {
        builder.observe(&exchange.context("reading the traffic for the report")?);
        n += 1;
        if n % 65_536 == 0 {
            bar.set_position(n);
        }
    }
    bar.finish_and_clear();
    let html = builder.render();
    std::fs::write(out, &html).with_context(|| format!("writing {}", out.display()))?;
    Ok(format!(
        "wrote report {} ({} KiB) in {:.1} s\n",
        out.display(),
        html.len().div_ceil(1024),
        started.elapsed().as_secs_f64()
    ))
}

/// Re-reads `traffic` into the dashboard's data and writes the dashboard with it embedded
/// (`moat_ui::report`). Returns the line to add to the summary.
pub fn write_interactive(
    traffic: &Path,
    accounts: Option<&Path>,
    opts: ReadOptions,
    detections: &[Detection],
    detections_path: &Path,
    out: &Path,
    quiet: bool,
) -> anyhow::Result<String> {
    let started = Instant::now();
    let data = super::ui::load(detections.to_vec(), accounts, traffic, opts, quiet)?;
    let html = moat_ui::report::page(
        &data,
        &moat_ui::report::ReportOptions {
            title: format!("Moat report: {}", traffic.display()),
            source: detections_path.display().to_string(),
            ..moat_ui::report::ReportOptions::default()
        },
    );
    std::fs::write(out, &html).with_context(|| format!("writing {}", out.display()))?;
    Ok(format!(
        "wrote report {} ({} KiB) in {:.1} s\n",
        out.display(),
        html.len().div_ceil(1024),
        started.elapsed().as_secs_f64()
    ))
}

/// Every reason the engine can write, with the meaning documented for it.
fn glossary() -> Vec<GlossaryEntry> {
    let mut entries: Vec<GlossaryEntry> = Reason::ALL
        .iter()
        .map(|r| {
            let name = r.as_str();
            GlossaryEntry::new(name, r.description())
        })
        .collect();
    // Campaign evidence names that are not account reasons.
    for (name, meaning) in moat_report::REASON_DESCRIPTIONS {
        if !entries.iter().any(|e| e.name == name) {
            entries.push(GlossaryEntry::new(name, meaning));
        }
    }
    entries
}

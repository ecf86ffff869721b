//! `moat validate`: check that every line of a file conforms to its format.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use moat_format::{ReadOptions, Reader};
use moat_types::{Account, Detection, Exchange, Label, Record};

/// Which format a file is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// Guess from the file name (traffic*, accounts*, labels*, detections*).
    Auto,
    /// Exchange log v1.
    Exchanges,
    /// accounts.jsonl.
    Accounts,
    /// labels.jsonl.
    Labels,
    /// detections.jsonl.
    Detections,
}

/// Arguments of `moat validate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Files to check (.jsonl or .jsonl.gz).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Format of the files.
    #[arg(long, value_enum, default_value_t = Kind::Auto)]
    kind: Kind,
    /// Report every malformed line (counted, first ones shown) instead of stopping at the first.
    #[arg(long)]
    skip_bad_lines: bool,
}

/// Runs `moat validate`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let opts = ReadOptions {
        skip_bad_lines: args.skip_bad_lines,
        ..ReadOptions::default()
    };
    let mut failed = 0usize;
    for file in &args.files {
        let kind = match args.kind {
            Kind::Auto => guess(file)?,
            k => k,
        };
        let (records, skipped) = match kind {
            Kind::Exchanges => check::<Exchange>(file, opts)?,
            Kind::Accounts => check::<Account>(file, opts)?,
            Kind::Labels => check::<Label>(file, opts)?,
            Kind::Detections | Kind::Auto => check::<Detection>(file, opts)?,
        };
        let mut line = format!("{}: {records} valid {kind:?} records", file.display());
        if skipped.count > 0 {
            failed += 1;
            line.push_str(&format!(", {} bad lines:", skipped.count));
            for (n, reason) in &skipped.examples {
                line.push_str(&format!("\n  line {n}: {reason}"));
            }
        }
        super::print(&(line + "\n"))?;
    }
    if failed > 0 {
        bail!("{failed} file(s) have bad lines");
    }
    Ok(())
}

fn guess(file: &Path) -> anyhow::Result<Kind> {
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    Ok(if name.starts_with("accounts") {
        Kind::Accounts
    } else if name.starts_with("labels") {
        Kind::Labels
    } else if name.starts_with("detections") {
        Kind::Detections
    } else if name.starts_with("traffic") || name.contains("exchange") {
        Kind::Exchanges
    } else {
        bail!(
            "cannot tell the format of {} from its name; pass --kind",
            file.display()
        )
    })
}

fn check<T: Record>(
    file: &Path,
    opts: ReadOptions,
) -> anyhow::Result<(u64, moat_format::SkipReport)> {
    let mut reader = Reader::<T>::open(file, opts)?;
    let mut n = 0u64;
    for record in reader.by_ref() {
        record.with_context(|| format!("validating {}", file.display()))?;
        n += 1;
    }
    Ok((n, reader.skipped().clone()))
}

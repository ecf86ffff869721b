//! One module per subcommand: its arguments and the function that runs it.

pub mod analyze;
pub mod consolidate;
pub mod demo;
pub mod eval;
pub mod intel;
pub mod mark;
pub mod replay;
pub mod report;
pub mod serve;
pub mod share;
pub mod sim;
pub mod ui;
pub mod validate;
pub mod worker;

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

/// Opens `path` with a progress bar that follows the bytes read from it (compressed bytes
/// for gzip), hidden when `quiet`: wrap the file with `bar.wrap_read(file)`.
pub fn open_with_progress(
    path: &Path,
    quiet: bool,
) -> anyhow::Result<(std::fs::File, ProgressBar)> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let size = file.metadata().map_or(0, |m| m.len());
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(size)
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:32} {percent:>3}% of {total_bytes} [{elapsed_precise}, ~{eta} left] {msg}",
        )
        .context("building the progress bar style")?,
    );
    Ok((file, bar))
}

/// Writes `text` to stdout, surfacing a broken pipe as an error the caller maps to success.
pub fn print(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

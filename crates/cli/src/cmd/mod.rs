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
pub mod sim;
pub mod validate;
pub mod worker;

use std::io::Write;

/// Writes `text` to stdout, surfacing a broken pipe as an error the caller maps to success.
pub fn print(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

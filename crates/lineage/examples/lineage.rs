//! Runs evaluation experiments on the real corpora and prints their markdown reports with wall
//! times; the JSON reports go to `--json DIR` when given.
//!
//! ```sh
//! cargo run --release -p moat-lineage --example lineage -- all --data ../shared/data
//! cargo run --release -p moat-lineage --example lineage -- power --options opts.json
//! ```
//!
//! `--options FILE` reads an [`moat_lineage::Options`] JSON object (missing keys keep their
//! defaults); `--data` and `--seed` override it. The `moat mark eval` command is the supported
//! entry point; this example exists for development runs.
//!
//! Latest run, 2026-12-01, `all` with default options and seed 1 on the project's 2-vCPU VM
//! (one thread, release profile): corpus load and tokenization 2.4 s, calibration 21.5 s, power
//! 19.7 s, radioactivity 264.4 s (of which about 200 s serve 1000 keys' own answers for the
//! false-positive check), attribution 29.7 s, robustness 2.1 s; 5 min 40 s in all, 618 MB peak
//! RSS. Results: `crates/lineage/RESULTS.md`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow_free::Result;
use moat_lineage::{run_on, Corpus, Experiment, Options, TOKENIZER};

/// A tiny error alias: the example does not pull in `anyhow`.
mod anyhow_free {
    pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let mut args = std::env::args().skip(1);
    let mut which = None;
    let mut options = Options::default();
    let (mut data, mut seed, mut json) = (None, None, None);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--data" => data = args.next().map(PathBuf::from),
            "--seed" => seed = args.next().map(|s| s.parse()).transpose()?,
            "--json" => json = args.next().map(PathBuf::from),
            "--options" => {
                let path = args.next().ok_or("--options needs a file")?;
                options = serde_json::from_str(&std::fs::read_to_string(path)?)?;
            }
            other => which = Some(other.to_string()),
        }
    }
    if let Some(data) = data {
        options.data_dir = data;
    }
    if let Some(seed) = seed {
        options.seed = seed;
    }
    let experiments: Vec<Experiment> = match which.as_deref() {
        None | Some("all") => Experiment::ALL.to_vec(),
        Some(name) => vec![name.parse()?],
    };
    let started = Instant::now();
    let tokenizer = moat_tokenize::Tokenizer::load(TOKENIZER)?;
    let corpus = Corpus::load(&options.data_dir, &tokenizer)?;
    println!(
        "corpus: {:?} tokens, loaded in {:.1} s\n",
        corpus.token_counts(),
        started.elapsed().as_secs_f64()
    );
    for experiment in experiments {
        let started = Instant::now();
        let report = run_on(experiment, &corpus, &options)?;
        let wall = started.elapsed().as_secs_f64();
        println!(
            "## {experiment} (wall {wall:.1} s, seed {})\n\n{report}",
            options.seed
        );
        if let Some(dir) = &json {
            std::fs::create_dir_all(dir)?;
            let path = dir.join(format!("{experiment}.json"));
            std::fs::write(path, serde_json::to_string_pretty(&report)?)?;
        }
    }
    Ok(())
}

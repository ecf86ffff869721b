//! `moat worker`: the scale-out role that stores what gateways publish. It reads the same
//! configuration file as `moat serve` (`[bus]` says where the stream is, `[store]` where the
//! records go, normally the shared PostgreSQL database), pulls from the partitions it is given
//! (several workers may share partitions), and acknowledges a batch only once the store holds
//! it, so a worker killed at any point loses nothing: its messages are delivered again.
//! Before acknowledging it also appends each exchange's detection features to the feature log
//! that `moat consolidate` folds (unless `--no-features`).

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use moat_bus::{run_worker, WorkerOptions, WorkerStats};
use moat_gateway::Config;

/// Arguments of `moat worker`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The deployment's configuration (the file `moat serve` reads; `[bus]` and `[store]`).
    #[arg(long, short)]
    config: PathBuf,
    /// Partitions to consume, e.g. `0-7` or `0,2,4` (default: all).
    #[arg(long)]
    partitions: Option<String>,
    /// Messages per fetch.
    #[arg(long, default_value_t = 500)]
    batch: usize,
    /// Seconds a delivered message waits for its acknowledgement before it is delivered again.
    #[arg(long, default_value_t = 30)]
    ack_wait_s: u64,
    /// Store the exchanges only, without the detection features (no consolidator runs).
    #[arg(long)]
    no_features: bool,
}

/// Parses `0-7,9` into partitions below `n`.
fn parse_partitions(text: &str, n: u32) -> anyhow::Result<Vec<u32>> {
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a.trim().parse::<u32>()?, b.trim().parse::<u32>()?),
            None => {
                let p = part.parse::<u32>()?;
                (p, p)
            }
        };
        anyhow::ensure!(
            a <= b && b < n,
            "partitions: {part:?} is not a range of 0..{n}"
        );
        out.extend(a..=b);
    }
    out.sort_unstable();
    out.dedup();
    anyhow::ensure!(!out.is_empty(), "partitions: none given");
    Ok(out)
}

/// Runs `moat worker` until Ctrl-C or SIGTERM.
pub fn run(args: Args) -> anyhow::Result<()> {
    let cfg = Config::load(&args.config)?;
    let bus = moat_gateway::bus_config(&cfg.bus)?
        .context("[bus] url_env is not set in the configuration: a worker needs the stream")?;
    let partitions = match &args.partitions {
        Some(p) => parse_partitions(p, bus.partitions)?,
        None => (0..bus.partitions).collect(),
    };
    // Outside the runtime: opening the store blocks.
    let (store, features) =
        moat_gateway::open_store_with_features(&cfg.store).context("opening the store")?;
    let features = (!args.no_features).then_some(features);
    let stats = Arc::new(WorkerStats::default());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    eprintln!(
        "moat worker: stream {} partitions {:?} -> store",
        bus.stream, partitions
    );
    let opts = WorkerOptions {
        partitions,
        batch: args.batch.max(1),
        ack_wait: Duration::from_secs(args.ack_wait_s.max(1)),
    };
    rt.block_on(run_worker(
        bus,
        opts,
        store,
        features,
        Arc::clone(&stats),
        super::serve::shutdown_signal(),
    ))?;
    eprintln!(
        "moat worker: stopped; stored {} (of which {} already stored), feature rows {}, malformed {}, store failures {}",
        stats.stored.load(Ordering::Relaxed),
        stats.duplicates.load(Ordering::Relaxed),
        stats.features.load(Ordering::Relaxed),
        stats.malformed.load(Ordering::Relaxed),
        stats.store_failures.load(Ordering::Relaxed)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_lists_and_ranges() {
        assert_eq!(parse_partitions("0-3", 16).unwrap(), vec![0, 1, 2, 3]);
        assert_eq!(parse_partitions("5, 1,1-2", 16).unwrap(), vec![1, 2, 5]);
        assert!(parse_partitions("3-1", 16).is_err());
        assert!(parse_partitions("16", 16).is_err());
        assert!(parse_partitions("x", 16).is_err());
        assert!(parse_partitions("", 16).is_err());
    }
}

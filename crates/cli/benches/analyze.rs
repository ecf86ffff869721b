//! End-to-end throughput of `moat analyze` against a bare parse of the same file, measured in
//! the same run (a `harness = false` bench binary).
//!
//! ```text
//! MOAT_BENCH_TRAFFIC=out/s1/traffic.jsonl.gz MOAT_BENCH_ACCOUNTS=out/s1/accounts.jsonl \
//!     cargo bench -p moat --bench analyze
//! ```
//!
//! Without `MOAT_BENCH_TRAFFIC` it simulates `scenarios/small.toml` with the built-in corpus
//! into a temporary directory and uses that (about 43k exchanges; too small for stable
//! figures). Prints, each the best of `MOAT_BENCH_RUNS` (default 2) passes:
//! (a) bare parse: the default reader (gzip, split, parse, validate) counting exchanges;
//! (a') the same as the analysis reads (each line as a borrowing `ExchangeView`, validated, on
//!     one parsing thread besides the decompression thread);
//! (b) the analysis as `moat analyze` runs it: decompression thread, parsing and feature
//!     extraction on `available_parallelism` worker threads, engine fold on this thread,
//!     detections built;
//! (c) the same analysis on one thread (`Engine::observe` per exchange), for reference;
//! and the ratios (b)/(a), (b)/(a') and (b)/(c), then the process's peak resident memory; last
//! (d) the engine alone: features computed beforehand and held in memory, only the fold timed
//! (`MOAT_BENCH_ONLY=engine` runs only this one, e.g. under a profiler; `MOAT_BENCH_ONLY=sequential`
//! runs only (c), and `MOAT_BENCH_ONLY=analyze` only (b), for A/B runs of two builds).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::time::Instant;

use moat_detect::signals::Signals;
use moat_detect::Features;
use moat_detect::{Config, Engine};
use moat_format::{ParallelReader, ReadOptions, Reader};
use moat_types::{Account, Exchange, ExchangeView};

type BoxError = Box<dyn std::error::Error>;

/// The binary's allocator, so the figures are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn best_of(
    runs: usize,
    mut f: impl FnMut() -> Result<(u64, f64), BoxError>,
) -> Result<(u64, f64), BoxError> {
    let mut best: Option<(u64, f64)> = None;
    for _ in 0..runs.max(1) {
        let (n, secs) = f()?;
        if best.is_none_or(|(_, b)| secs < b) {
            best = Some((n, secs));
        }
    }
    best.ok_or_else(|| "no run".into())
}

fn engine(accounts: Option<&Path>) -> Result<Engine, BoxError> {
    let mut engine = Engine::new(Config::default());
    if let Some(path) = accounts {
        for a in Reader::<Account>::open(path, ReadOptions::default())? {
            engine.add_account(&a?);
        }
    }
    Ok(engine)
}

fn bare(traffic: &Path) -> Result<(u64, f64), BoxError> {
    let start = Instant::now();
    let mut n = 0u64;
    for x in Reader::<Exchange>::open(traffic, ReadOptions::default())? {
        std::hint::black_box(x?);
        n += 1;
    }
    Ok((n, start.elapsed().as_secs_f64()))
}

/// A bare parse as the analysis reads: each line as an [`ExchangeView`] (strings borrowed
/// from the line) on one parsing thread besides the decompression thread, then dropped.
fn bare_views(traffic: &Path) -> Result<(u64, f64), BoxError> {
    let start = Instant::now();
    let mut n = 0u64;
    let lines = ParallelReader::from_reader_fast(
        traffic.display().to_string(),
        std::fs::File::open(traffic)?,
        ReadOptions::default(),
        1,
        |line: &str| ExchangeView::parse(line).map(|x| (Some(x.ts), ())),
        |_: Exchange| (),
    )?;
    for x in lines {
        x?;
        n += 1;
    }
    Ok((n, start.elapsed().as_secs_f64()))
}

/// The features of `traffic` as `moat analyze` computes them: parsed and extracted on
/// `available_parallelism` worker threads, delivered in file order.
fn feature_stream(traffic: &Path) -> Result<ParallelReader<Exchange, Features>, BoxError> {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let signals = Signals::global();
    Ok(ParallelReader::from_reader_fast(
        traffic.display().to_string(),
        std::fs::File::open(traffic)?,
        ReadOptions::default(),
        workers,
        move |line: &str| Features::of_line(signals, line).map(|f| (Some(f.ts()), f)),
        move |x: Exchange| Features::from_owned(signals, x),
    )?)
}

fn parallel(traffic: &Path, accounts: Option<&Path>) -> Result<(u64, f64), BoxError> {
    let start = Instant::now();
    let mut engine = engine(accounts)?;
    let mut n = 0u64;
    for f in feature_stream(traffic)? {
        engine.observe_features(f?);
        n += 1;
    }
    std::hint::black_box(engine.finish());
    Ok((n, start.elapsed().as_secs_f64()))
}

fn sequential(traffic: &Path, accounts: Option<&Path>) -> Result<(u64, f64), BoxError> {
    let start = Instant::now();
    let mut engine = engine(accounts)?;
    let mut n = 0u64;
    for x in Reader::<Exchange>::open(traffic, ReadOptions::default())? {
        engine.observe(&x?);
        n += 1;
    }
    std::hint::black_box(engine.finish());
    Ok((n, start.elapsed().as_secs_f64()))
}

/// The engine alone: features computed beforehand (kept in memory), then only the fold and
/// the detections timed; the per-event cost the gateway pays on its engine thread.
fn engine_only(traffic: &Path, accounts: Option<&Path>) -> Result<(u64, f64), BoxError> {
    let all = feature_stream(traffic)?.collect::<Result<Vec<_>, _>>()?;
    let mut engine = engine(accounts)?;
    let n = all.len() as u64;
    let start = Instant::now();
    for f in all {
        engine.observe_features(f);
    }
    std::hint::black_box(engine.finish());
    Ok((n, start.elapsed().as_secs_f64()))
}

/// Times `f` (the best of `runs`), prints the figure under `label`, returns its seconds.
fn timed(
    label: &str,
    runs: usize,
    f: impl FnMut() -> Result<(u64, f64), BoxError>,
) -> Result<f64, BoxError> {
    let (n, t) = best_of(runs, f)?;
    println!(
        "{label} {n} exchanges in {t:.2} s: {:.0} exchanges/s",
        n as f64 / t
    );
    Ok(t)
}

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn main() -> Result<(), BoxError> {
    let runs: usize = std::env::var("MOAT_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let _tmp;
    let (traffic, accounts): (PathBuf, Option<PathBuf>) =
        match std::env::var_os("MOAT_BENCH_TRAFFIC") {
            Some(t) => (
                t.into(),
                std::env::var_os("MOAT_BENCH_ACCOUNTS").map(PathBuf::from),
            ),
            None => {
                let dir = tempfile::tempdir()?;
                let scenario = moat_sim::Scenario::from_toml_str(
                    "scenarios/small.toml",
                    include_str!("../../../scenarios/small.toml"),
                )?;
                let opts = moat_sim::SimOptions {
                    seed: 1,
                    scale: 1.0,
                };
                moat_sim::run(
                    &scenario,
                    &moat_sim::Corpus::builtin(),
                    &opts,
                    dir.path(),
                    &mut |_, _| {},
                )?;
                let t = dir.path().join("traffic.jsonl.gz");
                let a = dir.path().join("accounts.jsonl");
                _tmp = dir;
                (t, Some(a))
            }
        };
    println!("input: {}", traffic.display());
    let accounts = accounts.as_deref();
    let run_engine = || {
        timed("(d) engine fold alone", runs, || {
            engine_only(&traffic, accounts)
        })
    };
    let run_parallel = || {
        timed("(b) analyze          ", runs, || {
            parallel(&traffic, accounts)
        })
    };
    let run_sequential = || {
        timed("(c) analyze, 1 thread", runs, || {
            sequential(&traffic, accounts)
        })
    };
    match std::env::var("MOAT_BENCH_ONLY").as_deref() {
        Ok("engine") => return run_engine().map(|_| ()),
        Ok("analyze") => return run_parallel().map(|_| ()),
        Ok("sequential") => return run_sequential().map(|_| ()),
        _ => {}
    }
    let a = timed("(a) bare parse       ", runs, || bare(&traffic))?;
    let v = timed("(a') bare parse, views", runs, || bare_views(&traffic))?;
    let b = run_parallel()?;
    let c = run_sequential()?;
    println!(
        "ratios: (b)/(a) {:.2} and (b)/(a') {:.2} (analysis throughput as a share of bare parsing), (b)/(c) {:.2}",
        a / b,
        v / b,
        c / b
    );
    if let Some(rss) = peak_rss_mib() {
        println!("peak resident memory of this process: {rss:.0} MiB");
    }
    // Last: it holds every exchange's features in memory at once (the features are
    // precomputed; only the fold is timed).
    run_engine()?;
    Ok(())
}

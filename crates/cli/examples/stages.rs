//! What each stage of the analysis costs per exchange, on one thread, over the first lines of a
//! real traffic file held in memory: the borrowing parse, serde's own floor (`IgnoredAny`), the
//! per-request signals, the template fingerprints, whole feature extraction, and the engine
//! fold (features computed beforehand). The end-to-end figures are the `analyze` bench's; this
//! says where a worker's and the engine's time goes, without the pipeline's threads.
//!
//! ```text
//! cargo run --release -p moat --example stages -- out/s1/traffic.jsonl.gz 200000 out/s1/accounts.jsonl
//! ```
//!
//! Each stage but the fold is timed as the best of five passes over the same lines (the fold
//! consumes its input, so it runs once). This VM's timings vary by a quarter from run to run;
//! compare builds in alternating runs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

use moat_detect::signals::Signals;
use moat_detect::{template, Config, Engine, Features};
use moat_format::{ParallelReader, ReadOptions, Reader};
use moat_types::{Account, Exchange, ExchangeView};

type BoxError = Box<dyn std::error::Error>;

/// The binary's allocator, so the figures are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The first `n` lines of `path` (gzip or not), as read by the analysis's reader.
fn first_lines(path: &Path, n: usize) -> Result<Vec<String>, BoxError> {
    let lines = ParallelReader::from_reader_fast(
        path.display().to_string(),
        std::fs::File::open(path)?,
        ReadOptions::default(),
        1,
        |line: &str| Some((None, line.to_owned())),
        |x: Exchange| serde_json::to_string(&x).unwrap_or_default(),
    )?;
    let mut out = Vec::with_capacity(n);
    for line in lines.take(n) {
        out.push(line?);
    }
    Ok(out)
}

/// Microseconds per item of the best of `passes` runs of `f` over `n` items.
fn best_us(n: usize, passes: usize, mut f: impl FnMut()) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..passes {
        let start = Instant::now();
        f();
        best = best.min(start.elapsed().as_secs_f64());
    }
    best * 1e6 / n.max(1) as f64
}

/// Feeds every feature to the engine (a frame of its own in profiles).
#[inline(never)]
fn fold(engine: &mut Engine, features: Vec<Features>) {
    for f in features {
        engine.observe_features(f);
    }
}

fn main() -> Result<(), BoxError> {
    let mut args = std::env::args().skip(1);
    let traffic = args
        .next()
        .ok_or("usage: stages TRAFFIC [LINES] [ACCOUNTS]")?;
    let n: usize = args.next().map_or(Ok(200_000), |s| s.parse())?;
    let accounts = args.next();
    let lines = first_lines(Path::new(&traffic), n)?;
    let n = lines.len();
    let views: Vec<ExchangeView<'_>> = lines
        .iter()
        .map(|l| ExchangeView::parse(l).ok_or("a line is not a valid exchange"))
        .collect::<Result<_, _>>()?;
    let texts: Vec<(String, Option<String>)> = views
        .iter()
        .map(|v| {
            let system = v
                .request
                .messages
                .iter()
                .find(|m| m.role.as_str() == "system" || m.role.as_str() == "developer")
                .map(|m| m.text_content().into_owned());
            (v.last_user_text().into_owned(), system)
        })
        .collect();
    let bytes: usize = lines.iter().map(String::len).sum();
    let user: usize = texts.iter().map(|(u, _)| u.len()).sum();
    println!(
        "{n} exchanges of {traffic}: {:.0} B per line, {:.0} B of user text",
        bytes as f64 / n.max(1) as f64,
        user as f64 / n.max(1) as f64
    );
    let signals = Signals::global();
    // `MOAT_STAGES_PASSES=0` skips the per-stage timings and times the fold alone.
    let passes: usize = std::env::var("MOAT_STAGES_PASSES").map_or(Ok(5), |s| s.parse())?;
    let stages: [(&str, f64); 5] = [
        (
            "parse into ExchangeView",
            best_us(n, passes, || {
                for l in &lines {
                    black_box(ExchangeView::parse(l));
                }
            }),
        ),
        (
            "serde_json IgnoredAny (floor)",
            best_us(n, passes, || {
                for l in &lines {
                    black_box(serde_json::from_str::<serde::de::IgnoredAny>(l).ok());
                }
            }),
        ),
        (
            "per-request signals",
            best_us(n, passes, || {
                for (u, s) in &texts {
                    black_box(signals.text_signals(u, s.as_deref()));
                }
            }),
        ),
        (
            "template fingerprints",
            best_us(n, passes, || {
                for (u, _) in &texts {
                    black_box(template::segments_of(u));
                }
            }),
        ),
        (
            "Features::of_line (all of a worker's work)",
            best_us(n, passes, || {
                for l in &lines {
                    black_box(Features::of_line(signals, l));
                }
            }),
        ),
    ];
    if passes > 0 {
        for (name, us) in stages {
            println!("{name:<44} {us:>7.3} µs per exchange");
        }
    }
    let features: Vec<Features> = lines
        .iter()
        .filter_map(|l| Features::of_line(signals, l))
        .collect();
    let mut engine = Engine::new(Config::default());
    if let Some(path) = accounts {
        for a in Reader::<Account>::open(Path::new(&path), ReadOptions::default())? {
            engine.add_account(&a?);
        }
    }
    let mut features = Some(features);
    let fold_us = best_us(n, 1, || {
        if let Some(f) = features.take() {
            fold(&mut engine, f);
        }
    });
    println!(
        "{:<44} {fold_us:>7.3} µs per exchange",
        "engine fold (once)"
    );
    black_box(engine.finish());
    Ok(())
}

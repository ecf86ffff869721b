//! Cost of the per-request signals ([`moat_detect::signals::text_signals`]) per request, against
//! a baseline measured in the same run over the same texts: lowercasing the text and searching
//! it for one phrase (`str::to_lowercase` + `contains`), the least any keyword check costs.
//!
//! Texts: the fixture prompts of `tests/data/signals/` plus one 50 KB prompt; with
//! `MOAT_DATA_DIR` also the development corpora (alpaca_eval, gsm8k, in-the-wild jailbreaks).
//!
//! ```text
//! MOAT_DATA_DIR=/work/shared/data cargo bench -p moat-detect --bench signals
//! ```
//!
//! Latest result (2026-12-01, 2-core dev VM reporting "Intel(R) Xeon(R) Processor", release):
//! the code before and after the single-automaton rewrite, run alternately six times each, best
//! run of each. Other builds kept about one core busy (load average 2.4 to 3.6), so both columns
//! are slower than on an idle machine; compare them with each other.
//! matchers built once in 11.4 ms (before 11.5 ms);
//! fixtures (mean 62 B) 0.61 µs/request (before 2.05 µs; baseline 0.10 µs);
//! benign/alpaca_eval (mean 165 B) 1.14 µs (before 3.90 µs; baseline 0.06 µs);
//! reasoning/gsm8k (mean 239 B) 1.44 µs (before 5.65 µs; baseline 0.08 µs);
//! jailbreak/inthewild (mean 2.0 KB) 8.84 µs (before 29.1 µs; baseline 3.05 µs);
//! one 50 KB prompt 39.6 µs (before 102 µs; only 2 × 8 KB scanned; baseline over all 50 KB
//! 5.3 µs).
//!
//! The previous header (2026-11-23, a quieter run on a VM then reported as AMD EPYC, the code
//! before the rewrite) read: built in 9 ms; fixtures 1.5 µs, alpaca_eval 3.0 µs, gsm8k 4.3 µs,
//! inthewild 22.9 µs, 50 KB 85 µs (baselines 0.08, 0.05, 0.06, 2.2 and 3.6 µs).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use moat_detect::signals::{text_signals, Signals};

/// Mean seconds per call of `f` over `texts`, repeating the whole set for at least `budget`.
fn time_per_call(texts: &[String], budget: Duration, mut f: impl FnMut(&str)) -> f64 {
    for t in texts.iter().take(50) {
        f(t);
    }
    let start = Instant::now();
    let mut calls = 0u64;
    while start.elapsed() < budget {
        for t in texts {
            f(t);
        }
        calls += texts.len() as u64;
    }
    start.elapsed().as_secs_f64() / calls.max(1) as f64
}

fn fixture_texts() -> Vec<String> {
    let mut out = Vec::new();
    for file in [
        include_str!("../tests/data/signals/cot.txt"),
        include_str!("../tests/data/signals/jailbreak.txt"),
        include_str!("../tests/data/signals/category.txt"),
    ] {
        for line in file
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            if let Some(text) = line.rsplit('\t').next() {
                out.push(text.replace("\\n", "\n"));
            }
        }
    }
    out
}

fn jsonl_field(path: &Path, field: &str) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v.get(field).and_then(|s| s.as_str()).map(str::to_owned))
        .collect()
}

fn csv_column(path: &Path, column: &str) -> Vec<String> {
    let Ok(mut r) = csv::Reader::from_path(path) else {
        return Vec::new();
    };
    let Some(idx) = r
        .headers()
        .ok()
        .and_then(|h| h.iter().position(|c| c == column))
    else {
        return Vec::new();
    };
    r.records()
        .filter_map(Result::ok)
        .filter_map(|rec| rec.get(idx).map(str::to_owned))
        .collect()
}

fn report(name: &str, texts: &[String]) {
    if texts.is_empty() {
        return;
    }
    let budget = Duration::from_millis(800);
    let ours = time_per_call(texts, budget, |t| {
        black_box(text_signals(black_box(t), None));
    });
    let base = time_per_call(texts, budget, |t| {
        black_box(black_box(t).to_lowercase().contains("step by step"));
    });
    let mean_len = texts.iter().map(String::len).sum::<usize>() / texts.len();
    println!(
        "{name:<22} n={:<5} mean {:>6} B  signals {:>7.2} µs/request  baseline {:>6.2} µs  ratio {:>5.1}x",
        texts.len(),
        mean_len,
        ours * 1e6,
        base * 1e6,
        ours / base
    );
}

fn main() {
    // Build the matchers outside the timed loops, as a server does at start-up.
    let start = Instant::now();
    black_box(Signals::global());
    println!(
        "matchers built in {:.1} ms",
        start.elapsed().as_secs_f64() * 1e3
    );

    report("fixtures", &fixture_texts());
    let long = format!(
        "{}\nLet's think step by step.",
        "Some pasted context that goes on and on. ".repeat(1250)
    );
    report("50 KB prompt", &[long]);

    if let Some(dir) = std::env::var_os("MOAT_DATA_DIR").map(std::path::PathBuf::from) {
        report(
            "benign/alpaca_eval",
            &jsonl_field(
                &dir.join("benign/alpaca_eval/alpaca_eval_805.jsonl"),
                "instruction",
            ),
        );
        report(
            "reasoning/gsm8k test",
            &jsonl_field(&dir.join("reasoning/gsm8k/test.jsonl"), "question"),
        );
        report(
            "jailbreak/inthewild",
            &csv_column(
                &dir.join("jailbreak/inthewild/jailbreak_prompts_2023_05_07.csv"),
                "prompt",
            ),
        );
    }
}

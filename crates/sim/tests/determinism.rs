//! Reproducibility and robustness: the same seed gives the same bytes, scale multiplies the
//! account counts, every shipped scenario parses, and any seed gives ordered, valid traffic.

// Helpers outside #[test] functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use moat_sim::{Corpus, Scenario, SimError, SimOptions, Simulation};
use moat_types::Record;
use proptest::prelude::*;

fn scenarios() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scenarios")
}

fn small() -> Scenario {
    Scenario::from_file(&scenarios().join("small.toml")).unwrap()
}

const FILES: [&str; 4] = [
    "traffic.jsonl.gz",
    "accounts.jsonl",
    "labels.jsonl",
    "summary.json",
];

fn run_into(dir: &Path, seed: u64, scale: f64) {
    let opts = SimOptions { seed, scale };
    moat_sim::run(&small(), &Corpus::builtin(), &opts, dir, &mut |_, _| {}).unwrap();
}

#[test]
fn same_seed_gives_identical_bytes_and_another_seed_does_not() {
    let (a, b, c) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    run_into(a.path(), 11, 0.25);
    run_into(b.path(), 11, 0.25);
    run_into(c.path(), 12, 0.25);
    for f in FILES {
        let x = std::fs::read(a.path().join(f)).unwrap();
        let y = std::fs::read(b.path().join(f)).unwrap();
        assert!(!x.is_empty(), "{f}");
        assert!(x == y, "{f} differs between runs with the same seed");
    }
    let x = std::fs::read(a.path().join("traffic.jsonl.gz")).unwrap();
    let z = std::fs::read(c.path().join("traffic.jsonl.gz")).unwrap();
    assert!(x != z, "another seed gives other traffic");
}

#[test]
fn scale_multiplies_account_counts() {
    let s = small();
    let corpus = Corpus::builtin();
    let count = |scale| {
        Simulation::new(&s, &corpus, &SimOptions { seed: 1, scale })
            .unwrap()
            .account_count()
    };
    let (one, two, tenth) = (count(1.0), count(2.0), count(0.1));
    // Enterprise sizes are not scaled and vary by draw, so the ratio is approximate.
    let ratio = two as f64 / one as f64;
    assert!((1.8..2.2).contains(&ratio), "{one} -> {two}");
    assert!(
        tenth < one / 5 && tenth >= 11,
        "every population keeps at least one account: {tenth}"
    );
}

#[test]
fn invalid_scale_is_rejected() {
    let s = small();
    let corpus = Corpus::builtin();
    for scale in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let err = Simulation::new(&s, &corpus, &SimOptions { seed: 1, scale }).err();
        assert!(
            matches!(err, Some(SimError::InvalidOption { name: "scale", .. })),
            "{scale}"
        );
    }
}

#[test]
fn shipped_scenarios_parse() {
    let mut n = 0;
    for entry in std::fs::read_dir(scenarios()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            Scenario::from_file(&path).unwrap_or_else(|e| panic!("{e}"));
            n += 1;
        }
    }
    assert!(n >= 2);
}

const TINY: &str = r#"
version = 1
name = "tiny"
start = "2026-03-02T00:00:00Z"
days = 2

[[models]]
name = "m1"

[[models]]
name = "m2"
released_at = "2026-03-03T06:00:00Z"
reasoning = false

[benign]
accounts = 30

[benign_heavy]
app_backends = 1
app_calls_per_day = [50.0, 100.0]
eval_harnesses = 1
eval_problems_per_run = [10, 20]
enterprises = 1
accounts_per_enterprise = [3, 5]

[jailbreak]
accounts = 3

[[campaigns]]
id = "h"
tactic = "proxy-rotation"
accounts = 5
calls_per_account_per_day = 20.0

[[campaigns]]
id = "s"
tactic = "low-and-slow"
accounts = 2
calls_per_account_per_day = 10.0

[[campaigns]]
id = "x"
tactic = "reasoning-extraction"
accounts = 3
calls_per_account_per_day = 10.0
schedule = "working-hours"

[[campaigns]]
id = "j"
tactic = "jailbreak-harvest"
accounts = 3
calls_per_account_per_day = 10.0

[[campaigns]]
id = "n"
tactic = "naive-volume"
accounts = 1
calls_per_account_per_day = 200.0

[[campaigns]]
id = "p"
tactic = "release-pivot"
accounts = 3
calls_per_account_per_day = 10.0
"#;

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]

    #[test]
    fn any_seed_gives_ordered_valid_traffic(seed in any::<u64>(), scale in 0.5f64..2.0) {
        let scenario = Scenario::from_toml_str("tiny.toml", TINY).unwrap();
        let corpus = Corpus::builtin();
        let mut sim = Simulation::new(&scenario, &corpus, &SimOptions { seed, scale }).unwrap();
        let mut last = None;
        let mut n = 0u64;
        for e in sim.by_ref() {
            prop_assert!(e.validate().is_ok());
            prop_assert!(last.is_none_or(|l| l <= e.ts));
            prop_assert!(e.ts >= scenario.start && e.ts < scenario.end());
            // The line round-trips through the format.
            let mut buf = Vec::new();
            moat_format::encode_line(&e, &mut buf).unwrap();
            let back: moat_types::Exchange = serde_json::from_slice(&buf).unwrap();
            prop_assert_eq!(&back, &e);
            last = Some(e.ts);
            n += 1;
        }
        let out = sim.finish();
        prop_assert_eq!(out.summary.exchanges, n);
        prop_assert!(n > 100);
        prop_assert_eq!(out.accounts.len(), out.labels.len());
    }
}

//! End-to-end tests of the `moat` binary on the small scenario: the acceptance commands of the
//! foundation issue (deterministic, conforming simulator output; `moat eval` on a perfect and an
//! all-flagged detections file) and clear failures on bad input.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::run_moat;
use moat_format::{ReadOptions, Reader, Writer};
use moat_types::{
    AccountDetection, CampaignDetection, Class, Detection, Exchange, Label, Timestamp,
};

fn scenario(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../scenarios")
        .join(name)
        .display()
        .to_string()
}

fn sim(out: &Path, seed: u64) {
    let out_s = out.display().to_string();
    let seed_s = seed.to_string();
    let res = run_moat(&[
        "sim",
        "--scenario",
        &scenario("small.toml"),
        "--out",
        &out_s,
        "--seed",
        &seed_s,
        "--quiet",
    ]);
    assert!(
        res.status.success(),
        "sim failed: {}",
        String::from_utf8_lossy(&res.stderr)
    );
}

const FILES: [&str; 3] = ["traffic.jsonl.gz", "accounts.jsonl", "labels.jsonl"];

#[test]
fn sim_is_deterministic_and_every_line_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("c"),
    );
    sim(&a, 3);
    sim(&b, 3);
    sim(&c, 4);
    for f in FILES {
        let fa = std::fs::read(a.join(f)).unwrap();
        assert!(!fa.is_empty(), "{f} is empty");
        assert_eq!(
            fa,
            std::fs::read(b.join(f)).unwrap(),
            "{f} differs for the same seed"
        );
        assert_ne!(
            fa,
            std::fs::read(c.join(f)).unwrap(),
            "{f} identical across seeds"
        );
    }
    let paths: Vec<String> = FILES
        .iter()
        .map(|f| a.join(f).display().to_string())
        .collect();
    let mut args = vec!["validate"];
    args.extend(paths.iter().map(String::as_str));
    let res = run_moat(&args);
    assert!(
        res.status.success(),
        "validate failed: {}{}",
        String::from_utf8_lossy(&res.stdout),
        String::from_utf8_lossy(&res.stderr)
    );
}

/// Labels and the first exchange of every account of a simulated run.
fn ground_truth(dir: &Path) -> (Vec<Label>, BTreeMap<String, Timestamp>) {
    let labels: Vec<Label> = Reader::open(&dir.join("labels.jsonl"), ReadOptions::default())
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut first = BTreeMap::new();
    for x in
        Reader::<Exchange>::open(&dir.join("traffic.jsonl.gz"), ReadOptions::default()).unwrap()
    {
        let x = x.unwrap();
        first.entry(x.account_id).or_insert(x.ts);
    }
    (labels, first)
}

fn write_detections(path: &Path, lines: &[Detection]) {
    let mut w = Writer::<Detection>::create(path).unwrap();
    for d in lines {
        w.write(d).unwrap();
    }
    w.finish().unwrap();
}

fn eval_json(dir: &Path, detections: &Path) -> serde_json::Value {
    let json = dir.join("report.json");
    let res = run_moat(&[
        "eval",
        "--labels",
        &dir.join("labels.jsonl").display().to_string(),
        "--detections",
        &detections.display().to_string(),
        "--traffic",
        &dir.join("traffic.jsonl.gz").display().to_string(),
        "--json",
        &json.display().to_string(),
    ]);
    assert!(
        res.status.success(),
        "eval failed: {}",
        String::from_utf8_lossy(&res.stderr)
    );
    let table = String::from_utf8_lossy(&res.stdout);
    assert!(table.to_lowercase().contains("baseline"), "{table}");
    serde_json::from_slice(&std::fs::read(json).unwrap()).unwrap()
}

#[test]
fn eval_scores_perfect_and_all_flagged_detections() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    sim(&run, 1);
    let (labels, first) = ground_truth(&run);
    assert_eq!(
        labels.len(),
        first.len(),
        "labels cover exactly the traffic accounts"
    );

    // Perfect: distill accounts flagged at their first exchange, grouped by true campaign.
    let mut lines = Vec::new();
    let mut campaigns: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for l in &labels {
        let distill = l.class == Class::Distill;
        if let (true, Some(c)) = (distill, &l.campaign) {
            campaigns
                .entry(c.clone())
                .or_default()
                .push(l.account_id.clone());
        }
        lines.push(Detection::Account(AccountDetection {
            account_id: l.account_id.clone(),
            risk: if distill { 1.0 } else { 0.0 },
            flagged: distill,
            flagged_at: distill.then(|| first[&l.account_id]),
            campaign_id: if distill { l.campaign.clone() } else { None },
            reasons: vec![],
        }));
    }
    assert!(campaigns.len() >= 5, "small.toml has every tactic");
    for (id, accounts) in campaigns {
        lines.push(Detection::Campaign(CampaignDetection {
            campaign_id: id,
            accounts,
            score: 1.0,
            first_detected_at: None,
            signals: vec![],
        }));
    }
    let perfect = run.join("perfect.jsonl");
    write_detections(&perfect, &lines);
    let r = eval_json(&run, &perfect);
    assert_eq!(r["detector"]["distill_recall"], 1.0);
    assert_eq!(r["detector"]["benign_fpr"], 0.0);
    assert_eq!(r["detector"]["leakage"], 0.0);
    assert_eq!(r["detector"]["ari"], 1.0);
    assert!(
        r["baseline"]["distill_recall"].is_number(),
        "baseline row present"
    );
    assert!(r["baseline_limit_per_day"].as_u64().unwrap() >= 1);

    // Everyone flagged at their first exchange.
    let all: Vec<Detection> = labels
        .iter()
        .map(|l| {
            Detection::Account(AccountDetection {
                account_id: l.account_id.clone(),
                risk: 1.0,
                flagged: true,
                flagged_at: Some(first[&l.account_id]),
                campaign_id: None,
                reasons: vec![],
            })
        })
        .collect();
    let everyone = run.join("all.jsonl");
    write_detections(&everyone, &all);
    let r = eval_json(&run, &everyone);
    assert_eq!(r["detector"]["benign_fpr"], 1.0);
    assert_eq!(r["detector"]["distill_recall"], 1.0);
}

#[test]
fn malformed_detections_fail_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    sim(&run, 2);
    let bad = run.join("detections.jsonl");
    std::fs::write(
        &bad,
        "{\"kind\":\"account\",\"account_id\":\"x\",\"risk\":0.5,\"flagged\":false}\n{oops\n",
    )
    .unwrap();
    let res = run_moat(&[
        "eval",
        "--labels",
        &run.join("labels.jsonl").display().to_string(),
        "--detections",
        &bad.display().to_string(),
        "--traffic",
        &run.join("traffic.jsonl.gz").display().to_string(),
    ]);
    assert_eq!(res.status.code(), Some(1));
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(err.contains("detections.jsonl:2"), "{err}");
}

#[test]
fn bad_scenario_fails_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(scenario("small.toml")).unwrap();
    let bad: PathBuf = dir.path().join("bad.toml");
    std::fs::write(&bad, format!("{text}\nno_such_setting = 3\n")).unwrap();
    let res = run_moat(&[
        "sim",
        "--scenario",
        &bad.display().to_string(),
        "--out",
        &dir.path().join("out").display().to_string(),
        "--quiet",
    ]);
    assert_eq!(res.status.code(), Some(1));
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(err.contains("no_such_setting"), "{err}");
}

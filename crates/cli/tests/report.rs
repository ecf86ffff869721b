//! End to end: `moat analyze --report` on the small simulated scenario writes one
//! self-contained HTML page that names every detected campaign.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Output};

use moat_format::{ReadOptions, Reader};
use moat_types::Detection;

fn moat(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_moat"))
        .args(args)
        .output()
        .expect("running moat")
}

fn ok(res: &Output, what: &str) {
    assert!(
        res.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&res.stdout),
        String::from_utf8_lossy(&res.stderr)
    );
}

#[test]
fn analyze_writes_a_self_contained_report_naming_the_campaigns() {
    let dir = tempfile::tempdir().unwrap();
    let sim = dir.path().join("sim");
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios/small.toml");
    let sim_s = sim.display().to_string();
    ok(
        &moat(&[
            "sim",
            "--scenario",
            &scenario.display().to_string(),
            "--out",
            &sim_s,
            "--seed",
            "1",
            "--quiet",
        ]),
        "sim",
    );
    let detections = dir.path().join("detections.jsonl");
    let report = dir.path().join("report.html");
    let res = moat(&[
        "analyze",
        &sim.join("traffic.jsonl.gz").display().to_string(),
        "--accounts",
        &sim.join("accounts.jsonl").display().to_string(),
        "--out",
        &detections.display().to_string(),
        "--report",
        &report.display().to_string(),
        "--quiet",
    ]);
    ok(&res, "analyze");
    let stdout = String::from_utf8_lossy(&res.stdout);
    assert!(
        stdout.contains(&format!("wrote report {}", report.display())),
        "{stdout}"
    );

    let html = std::fs::read_to_string(&report).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.trim_end().ends_with("</html>"));
    // Self-contained: nothing is loaded from anywhere.
    for bad in [
        "src=\"http",
        "href=\"http",
        "src=\"//",
        "href=\"//",
        "url(",
        "@import",
        "<link",
        "<img",
        "<iframe",
    ] {
        assert!(!html.contains(bad), "the report loads something: {bad}");
    }
    assert_eq!(html.matches("<script").count(), 1, "one inline script");

    // Every campaign of the detections is named, and every flagged account is counted.
    let lines: Vec<Detection> = Reader::open(&detections, ReadOptions::default())
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let campaigns: Vec<&str> = lines
        .iter()
        .filter_map(|d| match d {
            Detection::Campaign(c) => Some(c.campaign_id.as_str()),
            Detection::Account(_) => None,
        })
        .collect();
    assert!(!campaigns.is_empty(), "the small scenario has campaigns");
    for c in &campaigns {
        assert!(html.contains(c), "campaign {c} missing from the report");
    }
    let flagged = lines
        .iter()
        .filter(|d| matches!(d, Detection::Account(a) if a.flagged))
        .count();
    assert!(
        html.contains(&format!(
            "<dt>Flagged accounts</dt><dd><strong>{flagged}</strong>"
        )),
        "flagged count {flagged}"
    );
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(sim.join("summary.json")).unwrap()).unwrap();
    let exchanges = summary["exchanges"].as_u64().unwrap();
    assert!(
        html.contains(&format!(
            "<dt>Exchanges</dt><dd><strong>{}</strong>",
            thousands(exchanges)
        )),
        "total exchanges {exchanges}"
    );
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

//! End-to-end tests of `moat analyze` on the small scenario: deterministic, spec-conforming
//! detections that `moat eval` scores well; malformed lines fail with file and line, or are
//! skipped and counted with `--skip-bad-lines`; `--report` writes one self-contained HTML page
//! naming every campaign; `moat demo` runs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::{ok, run_moat};
use moat_format::{ReadOptions, Reader};
use moat_types::{Detection, Exchange};

fn sim(out: &Path) {
    sim_seed(out, "3");
}

fn sim_seed(out: &Path, seed: &str) {
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios/small.toml");
    ok(&run_moat(&[
        "sim",
        "--scenario",
        &scenario.display().to_string(),
        "--out",
        &out.display().to_string(),
        "--seed",
        seed,
        "--quiet",
    ]));
}

fn analyze(run: &Path, traffic: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "analyze".to_owned(),
        traffic.display().to_string(),
        "--accounts".to_owned(),
        run.join("accounts.jsonl").display().to_string(),
        "--out".to_owned(),
        out.display().to_string(),
        "--quiet".to_owned(),
    ];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    run_moat(&refs)
}

#[test]
fn detections_are_deterministic_conform_and_score_well() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    sim(&run);
    let traffic = run.join("traffic.jsonl.gz");
    let (a, b): (PathBuf, PathBuf) = (dir.path().join("a.jsonl"), dir.path().join("b.jsonl"));
    let summary = ok(&analyze(&run, &traffic, &a, &[]));
    assert!(summary.contains("flagged"), "{summary}");
    ok(&analyze(&run, &traffic, &b, &[]));
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());

    // One account line per account in the traffic, and at least one campaign.
    let mut traffic_accounts = std::collections::BTreeSet::new();
    for x in Reader::<Exchange>::open(&traffic, ReadOptions::default()).unwrap() {
        traffic_accounts.insert(x.unwrap().account_id);
    }
    let mut lines = std::collections::BTreeSet::new();
    let mut campaigns = 0;
    for d in Reader::<Detection>::open(&a, ReadOptions::default()).unwrap() {
        match d.unwrap() {
            Detection::Account(acc) => assert!(lines.insert(acc.account_id)),
            Detection::Campaign(_) => campaigns += 1,
        }
    }
    assert_eq!(lines, traffic_accounts);
    assert!(campaigns >= 1);

    let res = run_moat(&[
        "eval",
        "--labels",
        &run.join("labels.jsonl").display().to_string(),
        "--detections",
        &a.display().to_string(),
        "--traffic",
        &traffic.display().to_string(),
        "--json",
        &dir.path().join("eval.json").display().to_string(),
    ]);
    ok(&res);
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("eval.json")).unwrap()).unwrap();
    let det = &report["detector"];
    let recall = det["distill_recall"].as_f64().unwrap();
    let fpr = det["benign_fpr"].as_f64().unwrap();
    assert!(recall >= 0.8, "recall {recall}: {det}");
    assert!(fpr <= 0.01, "fpr {fpr}: {det}");
}

#[test]
fn malformed_lines_fail_with_their_line_or_are_skipped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    sim(&run);
    // A plain copy of the first 200 lines with line 50 broken.
    let mut lines: Vec<String> = Vec::new();
    for (i, x) in Reader::<Exchange>::open(&run.join("traffic.jsonl.gz"), ReadOptions::default())
        .unwrap()
        .take(200)
        .enumerate()
    {
        let json = serde_json::to_string(&x.unwrap()).unwrap();
        lines.push(if i == 49 {
            "{not json".to_owned()
        } else {
            json
        });
    }
    let bad = dir.path().join("bad.jsonl");
    let mut f = std::fs::File::create(&bad).unwrap();
    for l in &lines {
        writeln!(f, "{l}").unwrap();
    }
    drop(f);
    let out = dir.path().join("d.jsonl");
    let res = analyze(&run, &bad, &out, &[]);
    assert_eq!(res.status.code(), Some(1));
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(err.contains("bad.jsonl:50"), "{err}");

    let summary = ok(&analyze(&run, &bad, &out, &["--skip-bad-lines"]));
    assert!(summary.contains("analyzed 199 exchanges"), "{summary}");
    assert!(summary.contains("skipped 1 bad lines"), "{summary}");
    assert!(summary.contains("line 50"), "{summary}");
}

#[test]
fn demo_runs_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    let stdout = ok(&run_moat(&["demo", "--out", &out.display().to_string()]));
    assert!(stdout.contains("campaigns found"), "{stdout}");
    assert!(stdout.contains("distill recall"), "{stdout}");
    assert!(out.join("detections.jsonl").exists());
}

#[test]
fn analyze_writes_the_dashboard_with_its_data_as_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let sim = dir.path().join("sim");
    sim_seed(&sim, "1");
    let detections = dir.path().join("detections.jsonl");
    let report = dir.path().join("report.html");
    ok(&run_moat(&[
        "analyze",
        &sim.join("traffic.jsonl.gz").display().to_string(),
        "--accounts",
        &sim.join("accounts.jsonl").display().to_string(),
        "--out",
        &detections.display().to_string(),
        "--report",
        &report.display().to_string(),
        "--quiet",
    ]));
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(html.starts_with("<!doctype html>"));
    for bad in [
        "src=\"",
        "href=\"http",
        "href=\"//",
        "<link",
        "<img",
        "<iframe",
        "@import",
    ] {
        assert!(!html.contains(bad), "the report loads something: {bad}");
    }
    assert!(html.contains("Content-Security-Policy"));
    let open = "<script type=\"application/json\" id=\"moat-snapshot\">";
    let start = html.find(open).unwrap() + open.len();
    let end = html[start..].find("</script>").unwrap() + start;
    let snapshot: serde_json::Value = serde_json::from_str(&html[start..end]).unwrap();
    let answers = &snapshot["answers"];
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
    let flagged = lines
        .iter()
        .filter(|d| matches!(d, Detection::Account(a) if a.flagged))
        .count();
    assert_eq!(
        answers["/summary"]["campaigns"].as_u64().unwrap() as usize,
        campaigns.len()
    );
    assert_eq!(
        answers["/summary"]["flagged"].as_u64().unwrap() as usize,
        flagged
    );
    // Every campaign of the small scenario is embedded in full: detail, view with its graph,
    // members.
    for c in &campaigns {
        assert_eq!(answers[format!("/campaigns/{c}")]["campaign_id"], *c);
        let view = &answers[format!("/campaigns/{c}/view")];
        assert!(
            !view["graph"]["nodes"].as_array().unwrap().is_empty(),
            "{c}"
        );
        assert!(answers[format!("/accounts?campaign={c}&limit=100")]["items"].is_array());
    }
}

#[test]
fn analyze_writes_a_self_contained_report_naming_the_campaigns() {
    let dir = tempfile::tempdir().unwrap();
    let sim = dir.path().join("sim");
    sim_seed(&sim, "1");
    let detections = dir.path().join("detections.jsonl");
    let report = dir.path().join("report.html");
    let res = run_moat(&[
        "analyze",
        &sim.join("traffic.jsonl.gz").display().to_string(),
        "--accounts",
        &sim.join("accounts.jsonl").display().to_string(),
        "--out",
        &detections.display().to_string(),
        "--report",
        &report.display().to_string(),
        "--report-format",
        "static",
        "--quiet",
    ]);
    ok(&res);
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

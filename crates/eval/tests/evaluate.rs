//! End-to-end figures of `moat_eval::evaluate` on fixture files: the acceptance cases (perfect,
//! all-flagged and nothing-flagged detections), a hand-computed middle case, gzip traffic and
//! the JSON and text renderings.

// Helpers outside #[test] functions may panic too: this is test code (clippy.toml allows it
// only inside #[test] functions).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use moat_eval::Grouping;

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

#[test]
fn perfect_detections_score_recall_one_fpr_zero_leakage_zero() {
    let report = run(&files(&perfect(true))).unwrap();
    let d = &report.detector;
    assert_eq!(d.distill_recall, Some(1.0));
    assert_eq!(d.benign_fpr, Some(0.0));
    assert_eq!(d.leakage, Some(0.0));
    assert_eq!(d.leaked_exchanges, 0);
    assert_eq!(d.purity, Some(1.0));
    assert_eq!(d.ari, Some(1.0));
    assert_eq!((d.splits, d.merges), (0, 0));
    assert_eq!(d.predicted_campaigns, 2);
    assert_eq!(d.campaigns_detected, 2);
    assert_eq!(d.median_time_to_detection_ms, Some(0));
    assert_eq!(d.benign_heavy_flagged_share, Some(0.0));
    assert_eq!(d.jailbreak_flagged_share, Some(0.0));

    let p = &report.population;
    assert_eq!((p.accounts, p.exchanges), (12, 176));
    assert_eq!((p.distill.accounts, p.distill.exchanges), (5, 66));
    assert_eq!(
        (p.benign.accounts, p.campaigns, p.labels_not_in_traffic),
        (4, 2, 0)
    );

    // Baseline: FPR 0 → L = the busiest benign day (b4: 4). It flags h1, h2 and the hydra
    // accounts (6 a day) at their 5th exchange of day 0; the slow accounts never.
    assert_eq!(report.baseline_limit_per_day, 4);
    let b = &report.baseline;
    assert_eq!(b.distill_recall, Some(0.6));
    assert_eq!(b.benign_fpr, Some(0.0));
    assert_eq!(b.benign_heavy_flagged_share, Some(1.0));
    assert_eq!(b.leaked_exchanges, 3 * 4 + 2 * 6);
    assert!(close(b.leakage.unwrap(), 24.0 / 66.0));
    assert_eq!(b.purity, None, "the baseline predicts no campaign");
    assert_eq!(b.ari, Some(0.0), "all singletons against two campaigns");
    assert_eq!((b.splits, b.merges, b.predicted_campaigns), (0, 0, 0));

    let names: Vec<&str> = report
        .campaigns
        .iter()
        .map(|c| c.campaign.as_str())
        .collect();
    assert_eq!(names, ["hydra", "slow"]);
    let hydra = &report.campaigns[0];
    assert_eq!((hydra.accounts, hydra.exchanges), (3, 54));
    assert_eq!(hydra.tactics, ["proxy-rotation"]);
    assert_eq!(hydra.first_exchange, times("d1")[0]);
    assert_eq!(hydra.detector.recall, 1.0);
    assert_eq!(hydra.detector.leakage, 0.0);
    assert_eq!(hydra.detector.time_to_detection_ms, Some(0));
    assert_eq!(hydra.detector.predicted_campaigns, 1);
    assert_eq!(hydra.baseline.recall, 1.0);
    assert_eq!(hydra.baseline.time_to_detection_ms, Some(4 * 3_600_000));
    let slow = &report.campaigns[1];
    assert_eq!(slow.baseline.recall, 0.0);
    assert_eq!(slow.baseline.leakage, 1.0);
    assert_eq!(slow.baseline.time_to_detection_ms, None);

    let tactics: Vec<Option<&str>> = report.tactics.iter().map(|t| t.tactic.as_deref()).collect();
    assert_eq!(tactics, [Some("low-and-slow"), Some("proxy-rotation")]);
    assert_eq!(report.tactics[1].detector.recall, 1.0);
    assert_eq!(report.tactics[1].baseline.recall, 1.0);
    assert_eq!(report.tactics[0].baseline.leakage, 1.0);

    assert!(report.validation.warnings().is_empty());
    assert_eq!(report.validation.grouping, Grouping::CampaignLines);
}

#[test]
fn perfect_detections_without_campaign_lines_group_by_campaign_id() {
    let report = run(&files(&perfect(false))).unwrap();
    assert_eq!(report.validation.grouping, Grouping::AccountLines);
    assert_eq!(report.detector.purity, Some(1.0));
    assert_eq!(report.detector.ari, Some(1.0));
    assert_eq!(report.detector.predicted_campaigns, 2);
}

#[test]
fn all_flagged_detections_score_fpr_one() {
    let report = run(&files(&all_flagged())).unwrap();
    let d = &report.detector;
    assert_eq!(d.benign_fpr, Some(1.0));
    assert_eq!(d.distill_recall, Some(1.0));
    assert_eq!(d.benign_heavy_flagged_share, Some(1.0));
    assert_eq!(d.jailbreak_flagged_share, Some(1.0));
    // FPR 1 allows every benign account over the limit: L = 1. b3 (one a day) stays under.
    assert_eq!(report.baseline_limit_per_day, 1);
    assert_eq!(report.baseline.benign_fpr, Some(0.75));
    assert_eq!(report.baseline.distill_recall, Some(1.0));
}

#[test]
fn nothing_flagged_scores_recall_zero_leakage_one() {
    let nothing: Vec<_> = SPECS
        .iter()
        .map(|s| account(s.id, false, None, None))
        .collect();
    let report = run(&files(&nothing)).unwrap();
    let d = &report.detector;
    assert_eq!(d.distill_recall, Some(0.0));
    assert_eq!(d.leakage, Some(1.0));
    assert_eq!(d.leaked_exchanges, 66);
    assert_eq!(d.benign_fpr, Some(0.0));
    assert_eq!(d.campaigns_detected, 0);
    assert_eq!(d.median_time_to_detection_ms, None);
    assert_eq!(d.purity, None);
    assert_eq!(d.ari, Some(0.0));
    assert!(report
        .campaigns
        .iter()
        .all(|c| c.detector.time_to_detection_ms.is_none()));
    assert_eq!(report.baseline_limit_per_day, 4);
}

/// One campaign split in two, one benign account flagged and put in a campaign, one distill
/// account never flagged and one flagged at its 4th of 6 exchanges.
fn middle_case() -> Vec<moat_types::Detection> {
    let first = |id: &str| Some(times(id)[0]);
    vec![
        account("b1", true, first("b1"), Some("C-3")),
        account("b2", false, None, None),
        account("b3", false, None, None),
        account("b4", false, None, None),
        account("h1", false, None, None),
        account("h2", false, None, None),
        account("j1", false, None, None),
        account("d1", true, first("d1"), Some("C-1")),
        account("d2", true, first("d2"), Some("C-1")),
        account("d3", true, first("d3"), Some("C-2")),
        account("s1", false, None, Some("C-3")),
        account("s2", true, Some(times("s2")[3]), Some("C-3")),
        campaign("C-1", &["d1", "d2"]),
        campaign("C-2", &["d3"]),
        campaign("C-3", &["s1", "s2", "b1"]),
    ]
}

#[test]
fn middle_case_matches_hand_computed_figures() {
    let report = run(&files(&middle_case())).unwrap();
    let d = &report.detector;
    assert_eq!(d.distill_recall, Some(0.8));
    assert_eq!(d.benign_fpr, Some(0.25));
    // s1 leaks all 6, s2 the 3 before its flag; hydra nothing.
    assert_eq!(d.leaked_exchanges, 9);
    assert!(close(d.leakage.unwrap(), 9.0 / 66.0));
    // C-1 {d1,d2}: 2; C-2 {d3}: 1; C-3 {s1,s2,b1}: 2 of 3. Purity 5/6.
    assert!(close(d.purity.unwrap(), 5.0 / 6.0));
    assert_eq!((d.splits, d.merges), (1, 0));
    // Table (hydra,C-1)=2 (hydra,C-2)=1 (slow,C-3)=2: index 2, Σa 4, Σb 2, E 0.8, max 3.
    assert!(close(d.ari.unwrap(), 1.2 / 2.2));
    assert_eq!(d.predicted_campaigns, 3);

    let hydra = &report.campaigns[0];
    assert_eq!(hydra.detector.predicted_campaigns, 2);
    assert_eq!(hydra.detector.leakage, 0.0);
    let slow = &report.campaigns[1];
    assert_eq!(slow.detector.recall, 0.5);
    assert_eq!(slow.detector.leakage, 0.75);
    // s2's 4th exchange (day 1, hour 2, +11 s) − s1's first (day 0, hour 1, +10 s).
    let ttd = 86_400_000 + 3_600_000 + 1_000;
    assert_eq!(slow.detector.time_to_detection_ms, Some(ttd));
    assert_eq!(
        slow.detector.time_to_detection_ms,
        Some(times("s2")[3].as_millis() - slow.first_exchange.as_millis())
    );
    assert_eq!(
        d.median_time_to_detection_ms,
        Some(0),
        "lower median of 0 and {ttd}"
    );
    assert_eq!(report.tactics[0].detector.leakage, 0.75);

    // Baseline: one of four benign flagged → L = 3 (busiest days 4, 3, 2, 1). It flags b4,
    // h1, h2 and the hydra accounts at their 4th exchange of a day.
    assert_eq!(report.baseline_limit_per_day, 3);
    let b = &report.baseline;
    assert_eq!(b.benign_fpr, Some(0.25));
    assert_eq!(b.distill_recall, Some(0.6));
    assert_eq!(b.leaked_exchanges, 3 * 3 + 12);
    assert_eq!(hydra.baseline.time_to_detection_ms, Some(3 * 3_600_000));
}

#[test]
fn gzip_traffic_gives_the_same_report() {
    let plain = files(&middle_case());
    let gz = plain.dir.path().join("traffic.jsonl.gz");
    let mut w = moat_format::Writer::create(&gz).unwrap();
    for e in traffic() {
        w.write(&e).unwrap();
    }
    w.finish().unwrap();
    let bytes = std::fs::read(&gz).unwrap();
    assert_eq!(&bytes[..2], &[0x1f, 0x8b], "really gzip");
    let from_gz = moat_eval::evaluate(
        &plain.labels,
        &plain.detections,
        &gz,
        moat_format::ReadOptions::default(),
    )
    .unwrap();
    assert_eq!(from_gz, run(&plain).unwrap());
}

#[test]
fn json_report_has_the_documented_field_names() {
    let f = files(&perfect(true));
    let report = run(&f).unwrap();
    let out = f.dir.path().join("report.json");
    report.write_json(&out).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(v["report_version"], 1);
    assert_eq!(v["baseline_limit_per_day"], 4);
    assert_eq!(v["detector"]["distill_recall"], 1.0);
    assert_eq!(v["detector"]["benign_fpr"], 0.0);
    assert_eq!(v["detector"]["leakage"], 0.0);
    assert_eq!(v["baseline"]["purity"], serde_json::Value::Null);
    assert_eq!(v["campaigns"][0]["campaign"], "hydra");
    assert_eq!(
        v["campaigns"][0]["baseline"]["time_to_detection_ms"],
        14_400_000
    );
    assert_eq!(
        v["campaigns"][1]["baseline"]["first_detection"],
        serde_json::Value::Null
    );
    assert_eq!(v["tactics"][0]["tactic"], "low-and-slow");
    assert_eq!(v["validation"]["grouping"], "campaign_lines");
    assert_eq!(v["validation"]["missing_account_lines"]["count"], 0);
    assert_eq!(v["population"]["first_ts"], "2026-04-01T01:00:00.000Z");
}

#[test]
fn text_report_shows_both_systems_and_is_deterministic() {
    let f = files(&middle_case());
    let text = run(&f).unwrap().to_string();
    assert_eq!(text, run(&f).unwrap().to_string());
    let line = |start: &str| {
        text.lines()
            .find(|l| l.starts_with(start))
            .unwrap_or_else(|| panic!("no line starting {start:?} in\n{text}"))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(line("Summary"), "Summary detector baseline");
    assert_eq!(
        line("distill recall"),
        "distill recall 0.800 (4/5) 0.600 (3/5)"
    );
    assert_eq!(line("benign FPR"), "benign FPR 0.250 (1/4) 0.250 (1/4)");
    assert_eq!(line("purity"), "purity 0.833 n/a");
    assert_eq!(
        line("slow"),
        "slow low-and-slow 2 12 0.500 0.750 1d 01h 1 0.000 1.000 never"
    );
    assert!(text.contains("per-account rate limit of 3 requests per UTC day"));
    assert!(text.contains("no problems found"));
}

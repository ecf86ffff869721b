//! Validation of the inputs by `moat_eval::evaluate`: irregular detections are reported and
//! scored as documented, malformed or ambiguous input fails with the file and line.

// Helpers outside #[test] functions may panic too: this is test code (clippy.toml allows it
// only inside #[test] functions).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use moat_eval::EvalError;
use moat_format::ReadOptions;
use moat_types::Detection;

fn without(dets: Vec<Detection>, ids: &[&str]) -> Vec<Detection> {
    dets.into_iter()
        .filter(|d| !matches!(d, Detection::Account(a) if ids.contains(&a.account_id.as_str())))
        .collect()
}

fn replace(dets: &mut [Detection], id: &str, with: Detection) {
    for d in dets.iter_mut() {
        if matches!(d, Detection::Account(a) if a.account_id == id) {
            *d = with.clone();
        }
    }
}

#[test]
fn irregular_detections_are_reported_and_scored_conservatively() {
    let mut dets = without(perfect(false), &["b3", "d1"]);
    // s2 flagged without a time; b2 with a time but not flagged.
    replace(&mut dets, "s2", account("s2", true, None, Some("slow")));
    replace(
        &mut dets,
        "b2",
        account("b2", false, Some(times("b2")[0]), None),
    );
    // d2 claims the wrong campaign, d3 one that has no line.
    replace(
        &mut dets,
        "d2",
        account("d2", true, Some(times("d2")[0]), Some("slow")),
    );
    replace(
        &mut dets,
        "d3",
        account("d3", true, Some(times("d3")[0]), Some("nope")),
    );
    dets.push(account("ghost", true, None, None));
    dets.push(campaign("hydra", &["d1", "d2", "d3", "ghost"]));
    dets.push(campaign("slow", &["s1", "s2"]));
    dets.push(campaign("extra", &["s1"]));

    let report = run(&files(&dets)).unwrap();
    let v = &report.validation;
    assert_eq!(v.account_lines, 11);
    assert_eq!(v.campaign_lines, 3);
    assert_eq!(v.missing_account_lines.count, 2);
    assert_eq!(v.missing_account_lines.examples, ["b3", "d1"]);
    assert_eq!(v.unknown_accounts.examples, ["ghost"]);
    assert_eq!(v.unknown_campaign_members.examples, ["ghost (hydra)"]);
    assert_eq!(v.flagged_without_time.examples, ["s2"]);
    assert_eq!(v.time_without_flag.examples, ["b2"]);
    assert_eq!(v.in_several_campaigns.examples, ["s1 (slow, extra)"]);
    assert_eq!(v.campaign_id_mismatch.examples, ["d2 (slow)"]);
    assert_eq!(v.campaign_id_without_line.examples, ["d3 (nope)"]);
    assert_eq!(v.warnings().len(), 8);

    let d = &report.detector;
    // d1 missing → not flagged (18 leaked); s2 flagged without time → all 6 leaked.
    assert_eq!(d.distill_recall, Some(0.8));
    assert_eq!(d.leaked_exchanges, 24);
    assert_eq!(
        d.benign_fpr,
        Some(0.0),
        "b2's flagged_at without flagged is not a flag"
    );
    // The campaign lines decide: hydra {d1,d2,d3}, slow {s1,s2}; `extra` has no member left.
    assert_eq!((d.purity, d.ari), (Some(1.0), Some(1.0)));
    assert_eq!(d.predicted_campaigns, 2);
    // s2 counts as flagged at the end of the traffic, but s1 was flagged at its first.
    assert_eq!(report.campaigns[1].detector.time_to_detection_ms, Some(0));

    let text = report.to_string();
    assert!(text.contains("warning: traffic accounts without an account line"));
    assert!(text.contains("2 (e.g. b3, d1)"));
}

#[test]
fn flagged_without_time_counts_as_flagged_at_the_end_of_the_traffic() {
    let mut dets = perfect(true);
    replace(&mut dets, "s1", account("s1", true, None, Some("slow")));
    replace(&mut dets, "s2", account("s2", true, None, Some("slow")));
    let report = run(&files(&dets)).unwrap();
    let slow = &report.campaigns[1];
    assert_eq!(slow.detector.recall, 1.0);
    assert_eq!(slow.detector.leakage, 1.0);
    assert_eq!(
        slow.detector.first_detection,
        Some(report.population.last_ts)
    );
}

#[test]
fn flag_before_the_first_exchange_leaks_nothing() {
    let mut dets = perfect(true);
    replace(
        &mut dets,
        "s1",
        account("s1", true, Some(day0()), Some("slow")),
    );
    let report = run(&files(&dets)).unwrap();
    assert_eq!(report.detector.leakage, Some(0.0));
    assert_eq!(report.campaigns[1].detector.time_to_detection_ms, Some(0));
}

#[test]
fn more_than_ten_examples_keeps_the_ten_smallest() {
    let mut dets = perfect(true);
    for i in 0..15 {
        dets.push(account(&format!("ghost{i:02}"), false, None, None));
    }
    let v = run(&files(&dets)).unwrap().validation;
    assert_eq!(v.unknown_accounts.count, 15);
    let expected: Vec<String> = (0..10).map(|i| format!("ghost{i:02}")).collect();
    assert_eq!(v.unknown_accounts.examples, expected);
    assert!(v.warnings()[0].ends_with("ghost09, …)"));
}

#[test]
fn labels_of_accounts_absent_from_the_traffic_are_counted() {
    let f = files(&perfect(true));
    let mut l = labels();
    l.push(moat_types::Label {
        account_id: "zz".into(),
        class: moat_types::Class::Distill,
        campaign: Some("phantom".into()),
        tactic: Some("ghosting".into()),
    });
    write_jsonl(f.dir.path(), "labels.jsonl", &l);
    let report = run(&f).unwrap();
    assert_eq!(report.population.labels_not_in_traffic, 1);
    assert_eq!(report.population.campaigns, 2, "phantom has no traffic");
    assert_eq!(report.tactics.len(), 2);
}

#[test]
fn duplicate_account_line_is_an_error_naming_file_and_lines() {
    let mut dets = perfect(true);
    dets.push(account("b2", true, None, None));
    let f = files(&dets);
    let err = run(&f).unwrap_err();
    assert!(
        matches!(&err, EvalError::DuplicateAccountLine { line: 15, first_line: 2, account, .. } if account == "b2"),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("detections.jsonl:15: duplicate account line for b2"),
        "{msg}"
    );
}

#[test]
fn duplicate_campaign_line_is_an_error() {
    let mut dets = perfect(true);
    dets.push(campaign("slow", &["s1"]));
    let err = run(&files(&dets)).unwrap_err();
    assert!(
        matches!(
            &err,
            EvalError::DuplicateCampaignLine {
                line: 15,
                first_line: 14,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn duplicate_label_is_an_error() {
    let f = files(&perfect(true));
    let mut l = labels();
    l.push(l[0].clone());
    write_jsonl(f.dir.path(), "labels.jsonl", &l);
    let msg = run(&f).unwrap_err().to_string();
    assert!(
        msg.contains("labels.jsonl:13: duplicate label for account b1"),
        "{msg}"
    );
}

#[test]
fn malformed_detections_line_is_an_error_naming_file_and_line() {
    let f = files(&[]);
    let mut lines: Vec<String> = perfect(true)
        .iter()
        .map(|d| serde_json::to_string(d).unwrap())
        .collect();
    lines.insert(
        2,
        r#"{"kind": "account", "account_id": "b9", "risk": 0.5"#.to_owned(),
    );
    write_lines(f.dir.path(), "detections.jsonl", &lines);
    let err = run(&f).unwrap_err();
    let EvalError::Format(inner) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(inner.line, Some(3));
    let msg = err.to_string();
    assert!(
        msg.contains("detections.jsonl:3: malformed record"),
        "{msg}"
    );

    // The same line is skipped and reported under --skip-bad-lines.
    let opts = ReadOptions {
        skip_bad_lines: true,
        ..ReadOptions::default()
    };
    let report = moat_eval::evaluate(&f.labels, &f.detections, &f.traffic, opts).unwrap();
    let skipped = &report.validation.skipped_lines.detections;
    assert_eq!(skipped.count, 1);
    assert!(skipped.examples[0].starts_with("line 3: malformed record"));
    assert_eq!(report.detector.distill_recall, Some(1.0));
}

#[test]
fn malformed_traffic_line_is_an_error_and_skippable() {
    let f = files(&perfect(true));
    let mut lines: Vec<String> = traffic()
        .iter()
        .map(|e| serde_json::to_string(e).unwrap())
        .collect();
    lines.insert(5, "not json".to_owned());
    write_lines(f.dir.path(), "traffic.jsonl", &lines);
    let msg = run(&f).unwrap_err().to_string();
    assert!(msg.contains("traffic.jsonl:6: malformed record"), "{msg}");

    let opts = ReadOptions {
        skip_bad_lines: true,
        ..ReadOptions::default()
    };
    let report = moat_eval::evaluate(&f.labels, &f.detections, &f.traffic, opts).unwrap();
    assert_eq!(report.validation.skipped_lines.traffic.count, 1);
    assert_eq!(report.population.exchanges, 176);
    assert!(report.to_string().contains("skipped lines in traffic: 1"));
}

#[test]
fn traffic_account_without_label_is_an_error_naming_it() {
    let f = files(&perfect(true));
    let l: Vec<_> = labels()
        .into_iter()
        .filter(|l| l.account_id != "j1")
        .collect();
    write_jsonl(f.dir.path(), "labels.jsonl", &l);
    let line = traffic().iter().position(|e| e.account_id == "j1").unwrap() as u64 + 1;
    let err = run(&f).unwrap_err();
    assert!(
        matches!(&err, EvalError::UnlabelledAccount { account, line: Some(n), .. } if account == "j1" && *n == line),
        "{err:?}"
    );
    assert!(err
        .to_string()
        .contains(&format!("traffic.jsonl:{line}: account j1 has no label")));
}

#[test]
fn out_of_order_traffic_is_an_error() {
    let f = files(&perfect(true));
    let mut t = traffic();
    t.swap(3, 4);
    write_jsonl(f.dir.path(), "traffic.jsonl", &t);
    let msg = run(&f).unwrap_err().to_string();
    assert!(msg.contains("traffic.jsonl:5: out of order"), "{msg}");
}

#[test]
fn empty_traffic_is_an_error() {
    let f = files(&perfect(true));
    write_lines(f.dir.path(), "traffic.jsonl", &[]);
    let msg = run(&f).unwrap_err().to_string();
    assert!(
        msg.contains("traffic.jsonl: the traffic holds no exchanges"),
        "{msg}"
    );
}

#[test]
fn missing_file_is_an_error_naming_it() {
    let f = files(&perfect(true));
    std::fs::remove_file(&f.detections).unwrap();
    let msg = run(&f).unwrap_err().to_string();
    assert!(msg.contains("detections.jsonl"), "{msg}");
}

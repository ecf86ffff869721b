//! The file-less core (`Evaluator` → `BaselinePass` → `EvalReport`), fed exchanges directly:
//! the baseline's limit on a hand-checked example, and the errors of misuse.

// Helpers outside #[test] functions may panic too: this is test code (clippy.toml allows it
// only inside #[test] functions).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use moat_eval::{BaselinePass, DetectionSet, EvalError, Evaluator, LabelSet};
use moat_types::{AccountDetection, Class, Detection, Label, Timestamp};

fn label(id: &str, class: Class) -> Label {
    Label {
        account_id: id.into(),
        class,
        campaign: (class == Class::Distill).then(|| "c".to_owned()),
        tactic: None,
    }
}

fn flag(id: &str, at: i64) -> Detection {
    Detection::Account(AccountDetection {
        account_id: id.into(),
        risk: 1.0,
        flagged: true,
        flagged_at: Some(Timestamp::from_millis(at)),
        campaign_id: None,
        reasons: vec![],
    })
}

/// x: 5 exchanges on day 0; y: 3 on day 0 and 2 on day 1; z: 1; w (distill): 4 on day 0.
fn traffic() -> Vec<(&'static str, i64)> {
    let day = Timestamp::DAY;
    let mut t = vec![];
    for k in 0..5 {
        t.push(("x", 1_000 + k));
    }
    for k in 0..3 {
        t.push(("y", 2_000 + k));
    }
    t.push(("y", day + 1));
    t.push(("y", day + 2));
    t.push(("z", 3_000));
    for k in 0..4 {
        t.push(("w", 4_000 + k));
    }
    t.sort_by_key(|&(_, ts)| ts);
    t
}

fn first_pass(flags: Vec<Detection>) -> Evaluator {
    let labels = LabelSet::from_labels(
        "labels",
        [
            label("x", Class::Benign),
            label("y", Class::Benign),
            label("z", Class::Benign),
            label("w", Class::Distill),
        ],
    )
    .unwrap();
    let detections = DetectionSet::from_detections("detections", flags).unwrap();
    let mut ev = Evaluator::new(labels, detections);
    for (id, ts) in traffic() {
        ev.observe_parts(id, Timestamp::from_millis(ts)).unwrap();
    }
    ev
}

fn second_pass(mut pass: BaselinePass) -> moat_eval::EvalReport {
    for (id, ts) in traffic() {
        pass.observe_parts(id, Timestamp::from_millis(ts)).unwrap();
    }
    pass.finish().unwrap()
}

#[test]
fn baseline_limit_matches_the_detectors_benign_fpr() {
    // The detector flags x (FPR 1/3): busiest benign days 5, 3, 1 → L = 3, so only x (5) is
    // over the limit; y (3) is not.
    let pass = first_pass(vec![flag("x", 1_000), flag("w", 4_000)])
        .into_baseline()
        .unwrap();
    assert_eq!(pass.limit(), 3);
    let report = second_pass(pass);
    assert_eq!(report.baseline_limit_per_day, 3);
    assert_eq!(report.detector.benign_fpr, Some(1.0 / 3.0));
    assert_eq!(report.baseline.benign_flagged, 1);
    assert_eq!(report.baseline.benign_fpr, Some(1.0 / 3.0));
    // w is caught at its 4th exchange (ts 4003): 3 leaked.
    assert_eq!(report.baseline.leaked_exchanges, 3);
    assert_eq!(
        report.campaigns[0].baseline.first_detection,
        Some(Timestamp::from_millis(4_003))
    );
    assert_eq!(report.campaigns[0].baseline.time_to_detection_ms, Some(3));
    assert_eq!(report.detector.leaked_exchanges, 0);
}

#[test]
fn baseline_with_fpr_zero_flags_no_benign_account() {
    let pass = first_pass(vec![flag("w", 4_000)]).into_baseline().unwrap();
    assert_eq!(pass.limit(), 5, "the busiest benign day");
    let report = second_pass(pass);
    assert_eq!(report.baseline.benign_flagged, 0);
    assert_eq!(report.baseline.distill_recall, Some(0.0), "w sends 4 < 5");
    // No account line for x, y, z: missing, scored as not flagged.
    assert_eq!(
        report.validation.missing_account_lines.examples,
        ["x", "y", "z"]
    );
}

#[test]
fn unlabelled_account_is_an_error_without_a_file() {
    let mut ev = first_pass(vec![]);
    let err = ev
        .observe_parts("stranger", Timestamp::from_millis(9_000))
        .unwrap_err();
    assert!(matches!(
        &err,
        EvalError::UnlabelledAccount { line: None, .. }
    ));
    assert_eq!(
        err.to_string(),
        "<traffic>: account stranger has no label (the labels file must cover every account in \
         the traffic)"
    );
}

#[test]
fn out_of_order_exchange_of_one_account_is_an_error() {
    let mut ev = first_pass(vec![]);
    let err = ev
        .observe_parts("x", Timestamp::from_millis(0))
        .unwrap_err();
    assert!(matches!(err, EvalError::OutOfOrder { .. }), "{err:?}");
}

#[test]
fn no_exchange_is_an_error() {
    let labels = LabelSet::from_labels("labels", [label("x", Class::Benign)]).unwrap();
    let ev = Evaluator::new(labels, DetectionSet::new("detections"));
    assert!(matches!(
        ev.into_baseline(),
        Err(EvalError::EmptyTraffic { .. })
    ));
}

#[test]
fn second_pass_must_see_the_same_traffic() {
    let flags = || vec![flag("x", 1_000)];
    // Shorter.
    let mut pass = first_pass(flags()).into_baseline().unwrap();
    pass.observe_parts("x", Timestamp::from_millis(1_000))
        .unwrap();
    assert!(matches!(
        pass.finish(),
        Err(EvalError::TrafficChanged {
            first: 15,
            second: 1,
            ..
        })
    ));
    // An account with more exchanges than in the first pass.
    let mut pass = first_pass(flags()).into_baseline().unwrap();
    for _ in 0..5 {
        pass.observe_parts("x", Timestamp::from_millis(1_000))
            .unwrap();
    }
    let err = pass
        .observe_parts("x", Timestamp::from_millis(1_000))
        .unwrap_err();
    assert!(matches!(err, EvalError::TrafficChanged { .. }), "{err:?}");
}

#[test]
fn duplicate_records_fail_with_their_record_numbers() {
    let err = LabelSet::from_labels(
        "labels",
        [label("x", Class::Benign), label("x", Class::Benign)],
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "labels:2: duplicate label for account x (first at line 1)"
    );
    let err = DetectionSet::from_detections("dets", [flag("x", 1), flag("y", 1), flag("x", 2)])
        .unwrap_err();
    assert!(err
        .to_string()
        .starts_with("dets:3: duplicate account line for x (first at line 1)"));
}

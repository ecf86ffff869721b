//! End-to-end tests of `moat intel export` on the small scenario: one STIX campaign per
//! detected campaign, well-formed ids and references, indicator patterns of the documented
//! forms, no identifying input value in the bundle, byte-identical output for a fixed `--now`,
//! a short key file refused by name; and, when `MOAT_STIX_VALIDATOR` names the OASIS
//! `stix2_validator`, a bundle it accepts without errors.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

use common::{ok, p, run_moat};
use moat_format::{ReadOptions, Reader};
use moat_types::{Account, Detection, Exchange};
use serde_json::Value;

fn export(run: &Path, key: &Path, out: &Path) -> Output {
    run_moat(&[
        "intel",
        "export",
        "--detections",
        &p(&run.join("det.jsonl")),
        "--traffic",
        &p(&run.join("traffic.jsonl.gz")),
        "--accounts",
        &p(&run.join("accounts.jsonl")),
        "--producer",
        "Example AI",
        "--partner",
        "Partner Lab",
        "--partner-key-file",
        &p(key),
        "--now",
        "2026-03-10T00:00:00Z",
        "--quiet",
        "--out",
        &p(out),
    ])
}

const TLP_EXTENSION: &str = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d";

fn well_formed_id(id: &str) -> bool {
    let Some((ty, uuid)) = id.split_once("--") else {
        return false;
    };
    !ty.is_empty()
        && uuid.len() == 36
        && uuid.chars().enumerate().all(|(i, c)| {
            if [8, 13, 18, 23].contains(&i) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

/// Every `*_ref` and `*_refs` value anywhere in `v`.
fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k.ends_with("_ref") {
                    out.push(x.as_str().unwrap().to_owned());
                } else if k.ends_with("_refs") {
                    out.extend(
                        x.as_array()
                            .unwrap()
                            .iter()
                            .map(|r| r.as_str().unwrap().to_owned()),
                    );
                } else {
                    refs(x, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

#[test]
fn the_bundle_is_complete_consistent_deterministic_and_leaks_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios/small.toml");
    ok(&run_moat(&[
        "sim",
        "--scenario",
        &p(&scenario),
        "--out",
        &p(&run),
        "--seed",
        "3",
        "--quiet",
    ]));
    let traffic = run.join("traffic.jsonl.gz");
    ok(&run_moat(&[
        "analyze",
        &p(&traffic),
        "--accounts",
        &p(&run.join("accounts.jsonl")),
        "--out",
        &p(&run.join("det.jsonl")),
        "--quiet",
    ]));
    let key = dir.path().join("key.hex");
    std::fs::write(&key, format!("{}\n", "5a".repeat(32))).unwrap();
    let out = dir.path().join("bundle.json");
    let started = std::time::Instant::now();
    let summary = ok(&export(&run, &key, &out));
    eprintln!(
        "export took {:.2} s: {summary}",
        started.elapsed().as_secs_f64()
    );
    let text = std::fs::read_to_string(&out).unwrap();
    let again = dir.path().join("again.json");
    ok(&export(&run, &key, &again));
    assert_eq!(
        text,
        std::fs::read_to_string(&again).unwrap(),
        "not deterministic"
    );

    let bundle: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(bundle["type"], "bundle");
    assert!(bundle["id"].as_str().unwrap().starts_with("bundle--"));
    let objects = bundle["objects"].as_array().unwrap();
    let ids: BTreeSet<String> = objects
        .iter()
        .map(|o| o["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), objects.len(), "duplicate ids");
    for o in objects {
        let id = o["id"].as_str().unwrap();
        assert_eq!(o["spec_version"], "2.1", "{id}");
        assert!(well_formed_id(id), "{id}");
        assert!(
            id.starts_with(&format!("{}--", o["type"].as_str().unwrap())),
            "{id}"
        );
        for t in [
            "created",
            "modified",
            "first_seen",
            "last_seen",
            "valid_from",
            "valid_until",
        ] {
            if let Some(ts) = o.get(t).and_then(Value::as_str) {
                assert!(
                    ts.len() == 24 && ts.ends_with('Z') && &ts[19..20] == ".",
                    "{t} {ts}"
                );
            }
        }
    }
    let mut all_refs = Vec::new();
    refs(&bundle, &mut all_refs);
    assert!(!all_refs.is_empty());
    for r in &all_refs {
        assert!(
            ids.contains(r) || r == TLP_EXTENSION,
            "dangling reference {r}"
        );
    }

    // One campaign object per detected campaign.
    let mut detections = Vec::new();
    for d in Reader::<Detection>::open(&run.join("det.jsonl"), ReadOptions::default()).unwrap() {
        detections.push(d.unwrap());
    }
    let detected = detections
        .iter()
        .filter(|d| matches!(d, Detection::Campaign(_)))
        .count();
    let of = |ty: &str| {
        objects
            .iter()
            .filter(|o| o["type"] == ty)
            .collect::<Vec<_>>()
    };
    assert!(detected >= 1);
    assert_eq!(of("campaign").len(), detected);
    assert_eq!(of("identity").len(), 1);
    assert_eq!(of("marking-definition").len(), 1);

    // Indicators of the documented forms, each with a sighting of a positive count.
    let indicators = of("indicator");
    assert!(!indicators.is_empty());
    let forms = [
        "[ipv4-addr:value ISSUBSET '",
        "[ipv6-addr:value ISSUBSET '",
        "[autonomous-system:number = ",
        "[network-traffic:extensions.'http-request-ext'.request_header.'User-Agent' = '",
        "[x-moat-ja4:value = '",
        "[x-moat-fingerprint:hmac = '",
    ];
    let mut kinds = BTreeSet::new();
    for i in &indicators {
        let pattern = i["pattern"].as_str().unwrap();
        let form = forms.iter().position(|f| pattern.starts_with(f));
        assert!(form.is_some(), "unexpected pattern {pattern}");
        kinds.insert(form);
        assert_eq!(i["pattern_type"], "stix");
        if pattern.contains("x-moat-fingerprint") {
            assert_eq!(i["x_moat_hmac"], "HMAC-SHA256");
            assert_eq!(i["x_moat_partner"], "Partner Lab");
        }
    }
    assert!(kinds.len() >= 4, "{kinds:?}");
    let sightings = of("sighting");
    assert_eq!(sightings.len(), indicators.len());
    for s in &sightings {
        assert!(s["count"].as_u64().unwrap() > 0);
    }
    assert!(of("attack-pattern")
        .iter()
        .any(|a| a["external_references"][0]["external_id"] == "AML.T0024"));

    // No identifying input value anywhere in the bundle. Identifiers are compared with the
    // bundle's tokens (a substring scan per identifier would take minutes); prompts and
    // e-mail domains, which are few, are searched as substrings.
    let tokens: BTreeSet<&str> = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.'))
        .collect();
    for t in &tokens {
        for prefix in ["acct_", "req_", "key_", "pf_"] {
            assert!(
                !t.contains(prefix),
                "identifier-like token {t} in the bundle"
            );
        }
    }
    let mut ids = BTreeSet::new();
    let mut texts = BTreeSet::new();
    for d in &detections {
        if let Detection::Account(a) = d {
            ids.insert(a.account_id.clone());
        }
    }
    for a in Reader::<Account>::open(&run.join("accounts.jsonl"), ReadOptions::default()).unwrap() {
        let a = a.unwrap();
        ids.insert(a.account_id);
        ids.extend(a.payment_fingerprint);
        texts.extend(a.email_domain.map(|d| format!("\"{d}")));
    }
    let mut prompts = 0;
    for x in Reader::<Exchange>::open(&traffic, ReadOptions::default()).unwrap() {
        let x = x.unwrap();
        let prompt = x.last_user_text();
        ids.extend(x.request_id);
        ids.extend(x.api_key_id);
        if prompts < 50 && prompt.len() > 40 {
            texts.insert(prompt.chars().take(40).collect());
            prompts += 1;
        }
    }
    assert!(prompts > 0);
    for s in &ids {
        assert!(!tokens.contains(s.as_str()), "{s} leaked into the bundle");
    }
    for s in &texts {
        assert!(!text.contains(s.as_str()), "{s} leaked into the bundle");
    }

    // The OASIS validator, when CI provides it.
    match std::env::var_os("MOAT_STIX_VALIDATOR") {
        Some(validator) => {
            let res = Command::new(&validator)
                .arg(&out)
                .output()
                .expect("running the validator");
            let report = String::from_utf8_lossy(&res.stdout).into_owned()
                + &String::from_utf8_lossy(&res.stderr);
            assert!(res.status.success(), "validator failed:\n{report}");
            assert!(!report.contains("[X]"), "validator errors:\n{report}");
        }
        None => eprintln!("MOAT_STIX_VALIDATOR not set: the STIX validator check was skipped"),
    }
}

#[test]
fn a_short_key_file_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path();
    std::fs::write(run.join("det.jsonl"), "").unwrap();
    std::fs::write(run.join("accounts.jsonl"), "").unwrap();
    std::fs::write(run.join("traffic.jsonl.gz"), "").unwrap();
    let key = run.join("short.key");
    std::fs::write(&key, "0123456789abcdef").unwrap();
    let res = export(run, &key, &run.join("b.json"));
    assert_eq!(res.status.code(), Some(1));
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(err.contains("short.key"), "{err}");
    assert!(err.contains("32"), "{err}");
    assert!(
        !err.contains("0123456789abcdef"),
        "the key was printed: {err}"
    );
    assert!(!run.join("b.json").exists());
}

//! Properties of a full run of `scenarios/small.toml` with the built-in corpus: the files
//! conform to the spec and agree with each other, and every population shows the behaviour
//! the scenario describes. One run is shared by all tests of this file.

// Helpers outside #[test] functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use moat_format::{ReadOptions, Reader};
use moat_sim::{Corpus, Scenario, SimOptions, SimSummary};
use moat_types::{Account, Class, Exchange, Label, Timestamp};

struct Run {
    scenario: Scenario,
    traffic: Vec<Exchange>,
    accounts: Vec<Account>,
    labels: Vec<Label>,
    summary: SimSummary,
    summary_json: serde_json::Value,
}

fn scenarios() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scenarios")
}

fn read_all<T: moat_types::Record>(path: &Path) -> Vec<T> {
    Reader::<T>::open(path, ReadOptions::default())
        .unwrap()
        .collect::<Result<Vec<T>, _>>()
        .unwrap_or_else(|e| panic!("{e}"))
}

fn run() -> &'static Run {
    static RUN: OnceLock<Run> = OnceLock::new();
    RUN.get_or_init(|| {
        let scenario = Scenario::from_file(&scenarios().join("small.toml")).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let opts = SimOptions {
            seed: 7,
            scale: 1.0,
        };
        let mut calls = Vec::new();
        let summary = moat_sim::run(
            &scenario,
            &Corpus::builtin(),
            &opts,
            dir.path(),
            &mut |d, t| calls.push((d, t)),
        )
        .unwrap();
        assert_eq!(calls.last(), Some(&(summary.exchanges, summary.exchanges)));
        let summary_json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("summary.json")).unwrap())
                .unwrap();
        Run {
            traffic: read_all(&dir.path().join("traffic.jsonl.gz")),
            accounts: read_all(&dir.path().join("accounts.jsonl")),
            labels: read_all(&dir.path().join("labels.jsonl")),
            scenario,
            summary,
            summary_json,
        }
    })
}

fn labels() -> BTreeMap<&'static str, &'static Label> {
    run()
        .labels
        .iter()
        .map(|l| (l.account_id.as_str(), l))
        .collect()
}

/// Exchanges of accounts whose label tactic (or class, when it has none) is `kind`.
fn of_kind(kind: &str) -> Vec<&'static Exchange> {
    let labels = labels();
    run()
        .traffic
        .iter()
        .filter(|e| {
            let l = labels[e.account_id.as_str()];
            l.tactic.as_deref().unwrap_or(l.class.as_str()) == kind
        })
        .collect()
}

#[test]
fn every_line_conforms_and_the_files_agree() {
    let r = run();
    assert_eq!(r.traffic.len() as u64, r.summary.exchanges);
    assert!(r.traffic.windows(2).all(|w| w[0].ts <= w[1].ts));
    assert!(r
        .traffic
        .iter()
        .all(|e| e.ts >= r.scenario.start && e.ts < r.scenario.end()));
    let in_traffic: BTreeSet<&str> = r.traffic.iter().map(|e| e.account_id.as_str()).collect();
    let in_accounts: Vec<&str> = r.accounts.iter().map(|a| a.account_id.as_str()).collect();
    let in_labels: Vec<&str> = r.labels.iter().map(|l| l.account_id.as_str()).collect();
    assert!(
        in_accounts.windows(2).all(|w| w[0] < w[1]),
        "accounts sorted, unique"
    );
    assert_eq!(in_accounts, in_labels);
    assert_eq!(in_traffic.into_iter().collect::<Vec<_>>(), in_accounts);
    assert_eq!(r.summary.accounts as usize, r.accounts.len());
    assert_eq!(r.summary_json["exchanges"], r.summary.exchanges);
    let ids: BTreeSet<&str> = r
        .traffic
        .iter()
        .filter_map(|e| e.request_id.as_deref())
        .collect();
    assert_eq!(ids.len(), r.traffic.len(), "request ids are unique");
    for e in &r.traffic {
        let c = e.client.as_ref().unwrap();
        assert!(c.ip.is_some() && c.asn.is_some() && c.country.is_some());
        assert!(c.user_agent.is_some() && c.tls_ja4.is_some());
        let resp = e.response.as_ref().unwrap();
        assert!(resp.content.is_none() && resp.reasoning.is_none());
        if resp.status == Some(200) {
            assert!(resp.prompt_tokens.unwrap() > 0 && resp.latency_ms.is_some());
        }
    }
}

#[test]
fn every_population_and_tactic_is_present_with_plausible_volume() {
    let s = &run().summary;
    for class in ["benign", "benign_heavy", "distill", "jailbreak"] {
        assert!(s.by_class.get(class).is_some_and(|c| c.1 > 0), "{class}");
    }
    for tactic in [
        "proxy-rotation",
        "low-and-slow",
        "reasoning-extraction",
        "jailbreak-harvest",
        "naive-volume",
        "release-pivot",
        "app-backend",
        "eval-harness",
        "enterprise",
        "jailbreak-only",
    ] {
        assert!(s.by_tactic.get(tactic).is_some_and(|c| c.1 > 0), "{tactic}");
    }
    let days = f64::from(run().scenario.days);
    let hydra = &s.by_campaign["hydra-1"];
    let per_day = hydra.exchanges as f64 / hydra.accounts as f64 / days;
    assert!((10.0..60.0).contains(&per_day), "hydra {per_day}/day");
    let naive = &s.by_campaign["naive-1"];
    let naive_days = 3.0; // start_day 2, end_day 5
    assert!(naive.exchanges as f64 / naive.accounts as f64 / naive_days > 1000.0);
    let (benign_accounts, benign_exchanges) = s.by_class["benign"];
    let benign_per_day = benign_exchanges as f64 / benign_accounts as f64 / days;
    assert!(
        (0.5..10.0).contains(&benign_per_day),
        "benign {benign_per_day}/day"
    );
    let jb_only = s.by_tactic["jailbreak-only"];
    assert!(
        jb_only.1 < benign_exchanges / 10,
        "jailbreak-only is low volume"
    );
    let (accounts, exchanges) = s
        .by_class
        .values()
        .fold((0, 0), |t, c| (t.0 + c.0, t.1 + c.1));
    assert_eq!((accounts, exchanges), (s.accounts, s.exchanges));
}

#[test]
fn hydra_calls_come_in_synchronized_waves() {
    let hydra = of_kind("proxy-rotation");
    let mut per_minute: BTreeMap<i64, usize> = BTreeMap::new();
    for e in &hydra {
        *per_minute
            .entry(e.ts.as_millis() / Timestamp::MINUTE)
            .or_default() += 1;
    }
    let minutes = (run().scenario.days as usize) * 24 * 60;
    let mut counts: Vec<usize> = per_minute.values().copied().collect();
    counts.sort_unstable_by(|a, b| b.cmp(a));
    let top: usize = counts.iter().take(minutes / 10).sum();
    // Poisson traffic would put about 15% in the busiest tenth of minutes; waves put most.
    assert!(top * 2 > hydra.len(), "{top} of {}", hydra.len());
    // Rotation: addresses change per request and span many networks and countries.
    let ips: BTreeSet<_> = hydra
        .iter()
        .map(|e| e.client.as_ref().unwrap().ip.clone())
        .collect();
    let countries: BTreeSet<_> = hydra
        .iter()
        .map(|e| e.client.as_ref().unwrap().country.clone())
        .collect();
    assert!(ips.len() > 100 && countries.len() > 8);
    let uas: BTreeSet<_> = hydra
        .iter()
        .map(|e| e.client.as_ref().unwrap().user_agent.clone())
        .collect();
    let ja4s: BTreeSet<_> = hydra
        .iter()
        .map(|e| e.client.as_ref().unwrap().tls_ja4.clone())
        .collect();
    assert!(uas.len() <= 3 && ja4s.len() <= 3, "few client fingerprints");
}

#[test]
fn campaigns_share_payment_methods_and_sign_up_in_bursts() {
    let labels = labels();
    let hydra: Vec<&Account> = run()
        .accounts
        .iter()
        .filter(|a| labels[a.account_id.as_str()].campaign.as_deref() == Some("hydra-1"))
        .collect();
    let pfs: BTreeSet<_> = hydra
        .iter()
        .filter_map(|a| a.payment_fingerprint.as_ref())
        .collect();
    assert!(
        pfs.len() * 4 < hydra.len(),
        "{} payment methods for {} accounts",
        pfs.len(),
        hydra.len()
    );
    let mut created: Vec<i64> = hydra
        .iter()
        .filter_map(|a| a.created_at)
        .map(Timestamp::as_millis)
        .collect();
    created.sort_unstable();
    let within_a_day = created
        .windows(2)
        .filter(|w| w[1] - w[0] < Timestamp::HOUR)
        .count();
    assert!(within_a_day * 2 > created.len(), "bursts");
    let benign: Vec<&Account> = run()
        .accounts
        .iter()
        .filter(|a| labels[a.account_id.as_str()].class == Class::Benign)
        .collect();
    let with_pf: Vec<_> = benign
        .iter()
        .filter_map(|a| a.payment_fingerprint.as_ref())
        .collect();
    let distinct: BTreeSet<_> = with_pf.iter().collect();
    assert!(
        distinct.len() * 10 > with_pf.len() * 9,
        "benign payment methods are mostly unique"
    );
}

#[test]
fn release_pivot_moves_half_its_traffic_within_a_day() {
    let release = run().scenario.models[2].released_at.unwrap().as_millis();
    let new_model = run().scenario.models[2].name.clone();
    let share = |kind: &str, from: i64, to: i64| {
        let xs: Vec<_> = of_kind(kind)
            .into_iter()
            .filter(|e| (from..to).contains(&e.ts.as_millis()))
            .collect();
        let new = xs
            .iter()
            .filter(|e| e.request.model.as_deref() == Some(new_model.as_str()))
            .count();
        new as f64 / xs.len().max(1) as f64
    };
    assert_eq!(share("release-pivot", 0, release), 0.0);
    let day = Timestamp::DAY;
    let after = share("release-pivot", release + day, release + 3 * day);
    assert!((0.35..0.65).contains(&after), "pivot share {after}");
    let benign_first_day = share("benign", release, release + day);
    assert!(
        benign_first_day < 0.2,
        "benign adoption is gradual: {benign_first_day}"
    );
}

#[test]
fn sessions_carry_history_and_failed_requests_are_retried() {
    let benign = of_kind("benign");
    let multi = benign
        .iter()
        .filter(|e| e.request.messages.iter().any(|m| m.role == "assistant"))
        .count();
    assert!(
        multi * 10 > benign.len(),
        "{multi} multi-turn of {}",
        benign.len()
    );
    // A failed request is followed within seconds by the identical request.
    let mut last: BTreeMap<&str, &Exchange> = BTreeMap::new();
    let mut retries = 0;
    for e in &run().traffic {
        if let Some(prev) = last.get(e.account_id.as_str()) {
            let failed = matches!(
                prev.response.as_ref().and_then(|r| r.status),
                Some(429 | 500 | 503)
            );
            if failed
                && prev.request == e.request
                && e.ts.as_millis() - prev.ts.as_millis() < 60_000
            {
                retries += 1;
            }
        }
        last.insert(e.account_id.as_str(), e);
    }
    assert!(retries > 50, "{retries} retries");
}

#[test]
fn app_backends_send_one_system_prompt_and_harnesses_use_temperature_zero() {
    let mut systems: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for e in of_kind("app-backend") {
        let system = e
            .request
            .messages
            .iter()
            .find(|m| m.role == "system")
            .unwrap();
        systems
            .entry(e.account_id.as_str())
            .or_default()
            .insert(system.text_content());
    }
    assert!(!systems.is_empty() && systems.values().all(|s| s.len() == 1));
    let harness = of_kind("eval-harness");
    assert!(!harness.is_empty());
    assert!(harness
        .iter()
        .all(|e| e.request.params.as_ref().unwrap().temperature == Some(0.0)));
}

#[test]
fn account_ids_do_not_reveal_the_class() {
    let classes: BTreeSet<Class> = run().labels.iter().take(40).map(|l| l.class).collect();
    assert!(classes.len() >= 2, "labels sorted by id interleave classes");
    assert!(run().labels.iter().all(|l| l.account_id.len() == 15));
}

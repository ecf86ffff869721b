//! End-to-end tests of sharing over TAXII 2.1, with real processes on the small scenario.
//!
//! The round trip: provider A analyzes its traffic and exports its campaigns for partner B
//! (`moat intel export`), publishes the bundle on its own TAXII server (`moat intel serve`,
//! `moat intel push`); B pulls the collection into its intel database (`moat intel pull`) and
//! runs its gateway with a policy that blocks on `intel.match`; A's traffic sent through B's
//! gateway is then blocked for A's campaign members and passed for everyone else. When
//! `MOAT_TAXII_PYTHON` names a Python with the OASIS `taxii2-client` (the venv `.ci/run`
//! makes), that client drives A's server too: discovery, collections, adding objects, paging.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use common::{moat, ok, p, Server};

use moat_format::{ReadOptions, Reader, Writer};
use moat_store::{DecisionQuery, SqliteStore, Store};
use moat_types::{Detection, Exchange};

const COLLECTION: &str = "91a7b528-80eb-42ed-a74d-c6fbd5a26116";

fn secret(dir: &Path, name: &str, value: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("{value}\n")).unwrap();
    path
}

/// Every decision in a gateway's store.
fn decisions(db: &Path) -> Vec<moat_store::DecisionRecord> {
    let store = SqliteStore::open(db).unwrap();
    let mut out = Vec::new();
    let mut q = DecisionQuery {
        limit: 1000,
        ..DecisionQuery::default()
    };
    loop {
        let page = store.decisions(&q).unwrap();
        out.extend(page.items);
        match page.next {
            Some(c) => q.cursor = Some(c),
            None => break,
        }
    }
    out
}

#[test]
fn a_campaign_shared_over_taxii_is_matched_by_the_partners_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();

    // Provider A: traffic, detections, a bundle for partner B.
    let run = a.join("run");
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios/small.toml");
    ok(&moat()
        .args(["sim", "--seed", "3", "--quiet", "--scenario"])
        .arg(&scenario)
        .arg("--out")
        .arg(&run)
        .output()
        .unwrap());
    let traffic = run.join("traffic.jsonl.gz");
    let accounts = run.join("accounts.jsonl");
    let detections = a.join("det.jsonl");
    ok(&moat()
        .arg("analyze")
        .arg(&traffic)
        .arg("--accounts")
        .arg(&accounts)
        .arg("--out")
        .arg(&detections)
        .arg("--quiet")
        .output()
        .unwrap());
    // The key A and B agreed on for keyed fingerprints; each keeps a copy.
    let key = secret(dir.path(), "ab.key", &"3c".repeat(32));
    let bundle = a.join("bundle.json");
    ok(&moat()
        .args(["intel", "export", "--quiet", "--producer", "Provider A"])
        .args(["--partner", "Provider B", "--partner-key-file"])
        .arg(&key)
        .arg("--detections")
        .arg(&detections)
        .arg("--traffic")
        .arg(&traffic)
        .arg("--accounts")
        .arg(&accounts)
        .arg("--out")
        .arg(&bundle)
        .output()
        .unwrap());
    let bundle_objects =
        serde_json::from_str::<serde_json::Value>(&std::fs::read_to_string(&bundle).unwrap())
            .unwrap()["objects"]
            .as_array()
            .unwrap()
            .len();

    // A's TAXII server: A's own analysts write, partner B reads, a third partner reads only.
    let a_password = "a-writer-password-0123456789";
    let b_password = "b-reader-password-0123456789";
    let c_password = "c-reader-password-0123456789";
    secret(&a, "a.secret", a_password);
    secret(&a, "b.secret", b_password);
    secret(&a, "c.secret", c_password);
    let taxii_config = a.join("taxii.toml");
    std::fs::write(
        &taxii_config,
        format!(
            r#"[server]
listen = "127.0.0.1:0"
db = "taxii.db"
title = "Provider A threat sharing"
api_root = "api"
page_size = 100

[[collection]]
id = "{COLLECTION}"
title = "Distillation campaigns"
alias = "campaigns"

[[partner]]
name = "a-analysts"
password_file = "a.secret"
read = ["{COLLECTION}"]
write = ["{COLLECTION}"]

[[partner]]
name = "provider-b"
password_file = "b.secret"
read = ["{COLLECTION}"]

[[partner]]
name = "provider-c"
password_file = "c.secret"
read = ["{COLLECTION}"]
"#
        ),
    )
    .unwrap();
    let server = Server::start(
        &["intel", "serve", "--config", &p(&taxii_config)],
        &[],
        "moat intel serve: TAXII 2.1 on http://",
    );
    let discovery = format!("http://{}/taxii2/", server.addr);

    let pushed = ok(&moat()
        .args([
            "intel",
            "push",
            "--to",
            &discovery,
            "--collection",
            COLLECTION,
        ])
        .args(["--user", "a-analysts", "--password-file"])
        .arg(a.join("a.secret"))
        .args(["--batch", "200"])
        .arg(&bundle)
        .output()
        .unwrap());
    assert!(
        pushed.starts_with(&format!("pushed {bundle_objects} objects")),
        "{pushed}"
    );
    // A partner with read rights only cannot add.
    let refused = moat()
        .args([
            "intel",
            "push",
            "--to",
            &discovery,
            "--collection",
            COLLECTION,
        ])
        .args(["--user", "provider-c", "--password-file"])
        .arg(a.join("c.secret"))
        .arg(&bundle)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("403"), "{said}");
    assert!(!said.contains(c_password), "the password leaked: {said}");

    // The OASIS client against the same server.
    if let Ok(python) = std::env::var("MOAT_TAXII_PYTHON") {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/taxii/interop.py");
        let out = Command::new(python)
            .arg(&script)
            .arg(format!("http://{}/", server.addr))
            .arg(COLLECTION)
            .arg(&bundle)
            .arg("50")
            .env("TAXII_WRITER_USER", "a-analysts")
            .env("TAXII_WRITER_PASSWORD", a_password)
            .env("TAXII_READER_USER", "provider-c")
            .env("TAXII_READER_PASSWORD", c_password)
            .output()
            .unwrap();
        let said = ok(&out);
        eprintln!("taxii2-client: {said}");
        let seen: serde_json::Value = serde_json::from_str(said.trim()).unwrap();
        assert_eq!(seen["objects"], bundle_objects);
        assert_eq!(seen["added"], bundle_objects);
    } else {
        eprintln!("MOAT_TAXII_PYTHON is not set: the taxii2-client interop part is skipped");
    }

    // Provider B pulls the collection (small pages, so paging is exercised).
    secret(&b, "a-server.secret", b_password);
    let intel_db = b.join("intel.db");
    let pull = |full: bool| {
        let mut cmd = moat();
        cmd.args([
            "intel",
            "pull",
            "--from",
            &discovery,
            "--collection",
            COLLECTION,
        ])
        .args(["--source", "provider-a", "--into"])
        .arg(&intel_db)
        .args(["--user", "provider-b", "--password-file"])
        .arg(b.join("a-server.secret"))
        .args(["--page-size", "64"]);
        if full {
            cmd.arg("--full");
        }
        ok(&cmd.output().unwrap())
    };
    let first = pull(false);
    eprintln!("first pull: {first}");
    assert!(
        first.contains(&format!("{bundle_objects} objects")),
        "{first}"
    );
    // Nothing new since: the next pull asks only for what was added after the last one.
    let second = pull(false);
    assert!(second.contains(" 0 objects"), "{second}");
    let listed = ok(&moat()
        .args(["intel", "list", "--db"])
        .arg(&intel_db)
        .output()
        .unwrap());
    assert_eq!(listed.lines().count(), 2, "{listed}");
    assert!(listed.contains("provider-a") && listed.contains(COLLECTION));
    server.stop();

    // B's gateway: A's indicators, matched with the shared key, block.
    let mock = tokio::runtime::Runtime::new().unwrap();
    let upstream = mock
        .block_on(moat_testkit::start(moat_testkit::MockConfig {
            record_limit: 0,
            ..moat_testkit::MockConfig::default()
        }))
        .unwrap();
    let policy = b.join("policy.toml");
    std::fs::write(
        &policy,
        r#"version = 1
# A partner's addresses, networks and keyed fingerprints are strong evidence: block.
[[rule]]
name = "partner-intel"
when = '"provider-a" in intel.sources and ("address" in intel.kinds or "asn" in intel.kinds or "template" in intel.kinds or "payment" in intel.kinds)'
action = "block"
message = "refused: a partner reported this traffic"
# User agents and JA4s are shared with ordinary clients of the same library: no reasoning.
[[rule]]
name = "partner-intel-weak"
when = 'intel.match'
action = "withhold_reasoning"
"#,
    )
    .unwrap();
    let gw_config = b.join("moat.toml");
    std::fs::write(
        &gw_config,
        format!(
            r#"version = 1
[listen]
addr = "127.0.0.1:0"
[upstream]
url = "{origin}"
[identity]
mode = "header"
account_header = "x-moat-account"
trusted_proxy_hops = 1
[identity.headers]
asn = "x-client-asn"
country = "x-client-country"
ja4 = "x-client-ja4"
[policy]
file = "policy.toml"
[store]
path = "moat.db"
spill_dir = "spill"
[engine]
accounts_file = {accounts:?}
replay_hours = 0
[intel]
db = "intel.db"
[intel.keys]
provider-a = {key:?}
[admin]
addr = "127.0.0.1:1"
"#,
            origin = upstream.origin(),
            accounts = p(&accounts),
            key = p(&key),
        ),
    )
    .unwrap();

    // A sample of A's traffic: every 8th exchange, members and everyone else.
    let campaign_of: BTreeMap<String, String> =
        Reader::<Detection>::open(&detections, ReadOptions::default())
            .unwrap()
            .filter_map(|d| match d.unwrap() {
                Detection::Account(a) => a.campaign_id.map(|c| (a.account_id, c)),
                Detection::Campaign(_) => None,
            })
            .collect();
    assert!(!campaign_of.is_empty(), "the scenario has campaigns");
    let sample = b.join("sample.jsonl");
    let mut w = Writer::<Exchange>::create(&sample).unwrap();
    let mut sent: BTreeMap<bool, usize> = BTreeMap::new();
    for (i, x) in Reader::<Exchange>::open(&traffic, ReadOptions::default())
        .unwrap()
        .enumerate()
    {
        let x = x.unwrap();
        if i % 8 == 0 {
            *sent
                .entry(campaign_of.contains_key(&x.account_id))
                .or_default() += 1;
            w.write(&x).unwrap();
        }
    }
    w.finish().unwrap();

    let gateway = Server::start(
        &[
            "serve",
            "--config",
            &p(&gw_config),
            "--admin",
            "127.0.0.1:0",
        ],
        &[],
        "moat serve: API on http://",
    );
    let said = ok(&moat()
        .arg("replay")
        .arg(&sample)
        .args(["--target", &format!("http://{}", gateway.addr)])
        .args(["--concurrency", "8", "--quiet"])
        .output()
        .unwrap());
    eprintln!("replay: {said}");
    gateway.stop();
    drop(upstream);

    let blocked: Vec<_> = decisions(&b.join("moat.db"))
        .into_iter()
        .filter(|d| d.rule.as_deref() == Some("partner-intel"))
        .collect();
    let mut by_member: BTreeMap<bool, usize> = BTreeMap::new();
    let mut blocked_accounts = BTreeSet::new();
    let mut others_by_kind: BTreeMap<String, usize> = BTreeMap::new();
    for d in &blocked {
        *by_member
            .entry(campaign_of.contains_key(&d.account_id))
            .or_default() += 1;
        blocked_accounts.insert(d.account_id.clone());
        let detail = d.detail.as_deref().unwrap_or("");
        if !campaign_of.contains_key(&d.account_id) {
            let kind = detail
                .rsplit('(')
                .next()
                .unwrap_or("")
                .trim_end_matches(')');
            *others_by_kind.entry(kind.to_owned()).or_default() += 1;
        }
        assert!(
            detail.starts_with("intel: provider-a indicator--"),
            "{detail}"
        );
    }
    let members_sent = sent.get(&true).copied().unwrap_or(0);
    let others_sent = sent.get(&false).copied().unwrap_or(0);
    let members_blocked = by_member.get(&true).copied().unwrap_or(0);
    let others_blocked = by_member.get(&false).copied().unwrap_or(0);
    let recall = members_blocked as f64 / members_sent.max(1) as f64;
    let false_rate = others_blocked as f64 / others_sent.max(1) as f64;
    eprintln!(
        "B blocked {members_blocked} of {members_sent} campaign exchanges ({:.1}%) and {others_blocked} of {others_sent} others ({:.2}%), {} accounts",
        100.0 * recall,
        100.0 * false_rate,
        blocked_accounts.len()
    );
    eprintln!("others blocked, by what matched first: {others_by_kind:?}");
    assert!(members_sent > 100 && others_sent > 100, "{sent:?}");
    // Measured on this scenario: 98.2% and 0.27%.
    assert!(recall >= 0.95, "recall {recall}");
    assert!(false_rate <= 0.01, "false match rate {false_rate}");
    assert!(said.contains(&format!("{} 4xx", blocked.len())), "{said}");
}

#[test]
fn a_malformed_bundle_is_refused_whole_naming_the_object() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("intel.db");
    let good = r#"{"type": "indicator", "spec_version": "2.1",
        "id": "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
        "created": "2026-03-01T00:00:00.000Z", "modified": "2026-03-01T00:00:00.000Z",
        "pattern": "[ipv4-addr:value ISSUBSET '203.0.113.0/24']", "pattern_type": "stix",
        "valid_from": "2026-03-01T00:00:00Z"}"#;
    let bad = r#"{"type": "indicator", "spec_version": "2.1",
        "id": "indicator--1f2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
        "created": "2026-03-01T00:00:00.000Z", "modified": "2026-03-01T00:00:00.000Z",
        "pattern": "[ipv4-addr:value = '203.0.113.7'", "pattern_type": "stix",
        "valid_from": "2026-03-01T00:00:00Z"}"#;
    let write = |name: &str, objects: &[&str]| {
        let path = dir.path().join(name);
        std::fs::write(
            &path,
            format!(
                r#"{{"type": "bundle", "id": "bundle--5d0092c5-5f74-4287-9642-33f4c354e56d", "objects": [{}]}}"#,
                objects.join(",")
            ),
        )
        .unwrap();
        path
    };
    let import = |bundle: &Path| {
        moat()
            .args(["intel", "import", "--source", "partner", "--into"])
            .arg(&db)
            .arg(bundle)
            .output()
            .unwrap()
    };
    let res = import(&write("bad.json", &[good, bad]));
    assert!(!res.status.success());
    let said = String::from_utf8_lossy(&res.stderr);
    assert!(said.contains("objects[1]"), "{said}");
    assert!(said.contains("indicator--1f2e2d2b"), "{said}");
    assert!(said.contains("pattern"), "{said}");
    // Nothing of the bundle was kept, not even its good object.
    let listed = ok(&moat()
        .args(["intel", "list", "--db"])
        .arg(&db)
        .output()
        .unwrap());
    assert_eq!(listed.trim(), "", "{listed}");
    // Not JSON at all: the line and column.
    let res = import(&write("truncated.json", &[&good[..40]]));
    assert!(!res.status.success());
    let said = String::from_utf8_lossy(&res.stderr);
    assert!(said.contains("line"), "{said}");
    // The good object alone imports.
    let said = ok(&import(&write("good.json", &[good])));
    assert!(said.contains("1 objects"), "{said}");
}

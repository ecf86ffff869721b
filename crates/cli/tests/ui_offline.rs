//! `moat ui` end to end: the small scenario simulated and analyzed, then served read-only
//! from the detections and the traffic; the admin API's numbers must be the files' numbers,
//! its listings must page through every row once, what only a gateway has answers
//! `not_available_offline`, and the page itself is served. Also: no token, no listening off
//! loopback; with `--token-env` the token guards the API. And, when `MOAT_BROWSER` names a
//! Chromium, the issue's scale (100,000 accounts, 1,000 campaigns) in a real browser.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use common::{get_json, http, moat, node_ok, ok, p, Server};
use moat_format::{ReadOptions, Reader};
use moat_types::{CampaignDetection, Detection, Exchange};
use serde_json::Value;

/// `GET path` without a token: status and JSON body (`null` when not JSON).
fn get(addr: &str, path: &str) -> (u16, Value) {
    let (status, body) = http("GET", addr, path, &[], None);
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

#[test]
fn moat_ui_serves_the_analysis_with_the_files_numbers() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("sim");
    ok(&moat()
        .args(["sim", "--seed", "3", "--quiet", "--scenario"])
        .arg(root.join("scenarios/small.toml"))
        .arg("--out")
        .arg(&run)
        .output()
        .unwrap());
    let (traffic, accounts) = (run.join("traffic.jsonl.gz"), run.join("accounts.jsonl"));
    let detections = dir.path().join("detections.jsonl");
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

    // What the files say.
    let mut account_lines = 0usize;
    let mut flagged = BTreeSet::new();
    let mut campaigns: Vec<CampaignDetection> = Vec::new();
    for d in Reader::<Detection>::open(&detections, ReadOptions::default()).unwrap() {
        match d.unwrap() {
            Detection::Account(a) => {
                account_lines += 1;
                if a.flagged {
                    flagged.insert(a.account_id);
                }
            }
            Detection::Campaign(c) => campaigns.push(c),
        }
    }
    assert!(!campaigns.is_empty(), "the small scenario has campaigns");
    let members: BTreeSet<&str> = campaigns
        .iter()
        .flat_map(|c| c.accounts.iter().map(String::as_str))
        .collect();
    let mut lines_of: BTreeMap<String, u64> = BTreeMap::new();
    let mut traffic_lines = 0u64;
    for x in Reader::<Exchange>::open(&traffic, ReadOptions::default()).unwrap() {
        *lines_of.entry(x.unwrap().account_id).or_default() += 1;
        traffic_lines += 1;
    }
    let lines = |ids: &mut dyn Iterator<Item = &str>| -> u64 {
        ids.map(|a| lines_of.get(a).copied().unwrap_or(0)).sum()
    };
    let member_lines = lines(&mut members.iter().copied());

    let ui = start_ui(&detections, &traffic, &["--accounts", &p(&accounts)]);
    assert!(ui.rest.ends_with("/ui/"), "{}", ui.rest);
    let addr = ui.addr.clone();

    let (status, about) = get(&addr, "/admin/about");
    assert_eq!(status, 200);
    assert_eq!(about["mode"], "offline");
    assert_eq!(about["read_only"], true);
    assert_eq!(about["auth"], false);
    assert_eq!(about["source"], p(&detections));
    let (status, health) = get(&addr, "/health");
    assert_eq!((status, &health["mode"]), (200, &Value::from("offline")));

    let s = get_json(&addr, "/admin/summary", "");
    assert_eq!(s["mode"], "offline");
    assert_eq!(s["accounts"].as_u64().unwrap() as usize, account_lines);
    assert_eq!(s["flagged"].as_u64().unwrap() as usize, flagged.len());
    assert_eq!(s["campaigns"].as_u64().unwrap() as usize, campaigns.len());
    assert_eq!(
        s["campaign_members"].as_u64().unwrap() as usize,
        members.len()
    );
    assert_eq!(s["exchanges"].as_u64().unwrap(), traffic_lines);

    // Campaigns, two a page: every campaign once, and their exchanges are the members' lines.
    let mut seen = Vec::new();
    let mut exchanges = 0;
    let mut offset = Some(0);
    while let Some(o) = offset {
        let page = get_json(
            &addr,
            &format!("/admin/campaigns?sort=exchanges&limit=2&offset={o}"),
            "",
        );
        assert_eq!(page["total"].as_u64().unwrap() as usize, campaigns.len());
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        for c in items {
            seen.push(c["campaign_id"].as_str().unwrap().to_owned());
            exchanges += c["exchanges"].as_u64().unwrap();
        }
        offset = page["next_offset"].as_u64();
    }
    seen.sort();
    let mut expected: Vec<String> = campaigns.iter().map(|c| c.campaign_id.clone()).collect();
    expected.sort();
    assert_eq!(seen, expected);
    assert_eq!(exchanges, member_lines);

    // A campaign as the file has it, and its view.
    for c in &campaigns {
        let id = &c.campaign_id;
        let detail = get_json(&addr, &format!("/admin/campaigns/{id}"), "");
        assert_eq!(detail, serde_json::to_value(c).unwrap());
        let view = get_json(&addr, &format!("/admin/campaigns/{id}/view"), "");
        assert_eq!(view["campaign_id"], id.as_str());
        let distinct: BTreeSet<&str> = c.accounts.iter().map(String::as_str).collect();
        assert_eq!(
            view["exchanges"].as_u64().unwrap(),
            lines(&mut distinct.iter().copied())
        );
        assert!(
            !view["graph"]["nodes"].as_array().unwrap().is_empty(),
            "{}",
            view["graph"]
        );
    }

    // Flagged accounts, seven a page: each exactly once, in id order.
    let mut listed = Vec::new();
    let mut after = String::new();
    loop {
        let page = get_json(
            &addr,
            &format!("/admin/accounts?flagged=true&limit=7&after={after}"),
            "",
        );
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 7);
        for a in items {
            assert_eq!(a["flagged"], true);
            let id = a["account_id"].as_str().unwrap();
            assert_eq!(
                a["usage"]["exchanges"].as_u64(),
                Some(lines_of.get(id).copied().unwrap_or(0))
            );
            listed.push(id.to_owned());
        }
        match page["next"].as_str() {
            Some(next) => after = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(listed, flagged.iter().cloned().collect::<Vec<_>>());

    // A member's page lists its latest exchanges.
    let member = campaigns[0].accounts[0].as_str();
    let a = get_json(&addr, &format!("/admin/accounts/{member}"), "");
    let recent = a["recent_exchanges"].as_array().unwrap();
    let lines_of_member = lines_of.get(member).copied().unwrap_or(0);
    assert_eq!(recent.len() as u64, lines_of_member.min(20), "{a}");
    assert!(recent
        .windows(2)
        .all(|w| w[0]["ts"].as_str() >= w[1]["ts"].as_str()));
    assert_eq!(a["recent_decisions"], serde_json::json!([]));

    // What only a gateway has, bad queries, unknown ids.
    for path in ["/admin/policy", "/admin/timeline", "/admin/intel"] {
        let (status, body) = get(&addr, path);
        assert_eq!(status, 404, "{path}");
        assert_eq!(body["error"]["code"], "not_available_offline", "{path}");
    }
    for path in ["/admin/campaigns?sort=nonsense", "/admin/accounts?limit=-1"] {
        let (status, body) = get(&addr, path);
        assert_eq!(status, 400, "{path}");
        assert_eq!(body["error"]["code"], "invalid_query", "{path}");
    }
    let (status, body) = get(&addr, "/admin/campaigns/C-nope");
    assert_eq!(
        (status, &body["error"]["code"]),
        (404, &Value::from("not_found"))
    );

    // The page, and the root sends the browser to it.
    let (status, page) = http("GET", &addr, "/ui/", &[], None);
    assert_eq!(status, 200);
    assert!(page.contains(r#"<script src="app.js"></script>"#));
    let (status, _) = http("GET", &addr, "/", &[], None);
    assert!((300..400).contains(&status), "{status}");

    let log = ui.stop();
    assert!(log.contains("moat ui: stopped"), "{log}");
}

#[test]
fn moat_ui_needs_a_token_off_loopback_and_checks_it() {
    let dir = tempfile::tempdir().unwrap();
    let detections = dir.path().join("d.jsonl");
    std::fs::write(
        &detections,
        r#"{"kind": "account", "account_id": "acct_1", "risk": 0.9, "flagged": true, "flagged_at": "2026-04-01T12:00:00Z", "reasons": ["cot_elicitation"]}
"#,
    )
    .unwrap();
    let traffic = dir.path().join("t.jsonl");
    std::fs::write(
        &traffic,
        r#"{"v": 1, "ts": "2026-04-01T12:00:00Z", "account_id": "acct_1", "request": {"model": "m", "messages": [{"role": "user", "content": "Think step by step."}]}, "response": {"status": 200, "completion_tokens": 5, "reasoning_tokens": 50}}
not json
"#,
    )
    .unwrap();
    let base = [
        "ui".to_owned(),
        "--detections".to_owned(),
        p(&detections),
        "--traffic".to_owned(),
        p(&traffic),
        "--quiet".to_owned(),
    ];

    let out = moat()
        .args(&base)
        .args(["--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("without a token"), "{err}");

    let out = moat()
        .args(&base)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--token-env",
            "MOAT_UI_TEST_UNSET",
        ])
        .env_remove("MOAT_UI_TEST_UNSET")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("MOAT_UI_TEST_UNSET"), "{err}");

    // A bad line fails the read, or is skipped and reported.
    let out = moat()
        .args(&base)
        .args(["--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("t.jsonl:2"), "{err}");

    let mut args: Vec<&str> = base.iter().map(String::as_str).collect();
    args.extend([
        "--listen",
        "127.0.0.1:0",
        "--skip-bad-lines",
        "--token-env",
        "MOAT_UI_TEST_TOKEN",
    ]);
    let token = "offline-test-token-42";
    let ui = Server::start(
        &args,
        &[("MOAT_UI_TEST_TOKEN", token)],
        "dashboard: http://",
    );
    let addr = ui.addr.clone();
    let (status, about) = get(&addr, "/admin/about");
    assert_eq!((status, &about["auth"]), (200, &Value::from(true)));
    let (status, body) = get(&addr, "/admin/summary");
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "invalid_admin_token");
    let s = get_json(&addr, "/admin/summary", token);
    assert_eq!(
        (s["flagged"].as_u64(), s["exchanges"].as_u64()),
        (Some(1), Some(1))
    );
    let a = get_json(&addr, "/admin/accounts/acct_1", token);
    assert_eq!(a["recent_exchanges"][0]["prompt"], "Think step by step.");
    let log = ui.stop();
    assert!(log.contains("skipped 1 bad lines"), "{log}");
}

/// The issue's scale in a real browser (when `MOAT_BROWSER` names a Chromium): `moat ui` over
/// 100,000 accounts in 1,000 campaigns (one of 5,000 members) with 150,000 exchanges; every
/// page shows the totals, holds one page of rows and pages on (`ui/tests/scale.mjs`).
#[test]
fn a_hundred_thousand_accounts_and_a_thousand_campaigns_in_a_real_browser() {
    let Ok(browser) = std::env::var("MOAT_BROWSER") else {
        eprintln!("MOAT_BROWSER is not set: the browser test is skipped");
        return;
    };
    use std::io::Write;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = tempfile::tempdir().unwrap();
    let (accounts, campaigns, members) = (100_000usize, 1_000usize, 50_000usize);
    let id = |i: usize| format!("acct_{i:06}");
    let campaign_of = |i: usize| -> Option<usize> {
        (i < members).then(|| {
            if i < 5_000 {
                0
            } else {
                1 + (i - 5_000) % (campaigns - 1)
            }
        })
    };
    let detections = dir.path().join("detections.jsonl");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&detections).unwrap());
    let mut lists: Vec<Vec<String>> = vec![Vec::new(); campaigns];
    for i in 0..accounts {
        let c = campaign_of(i);
        let flagged = c.is_some() || i % 7 == 0;
        if let Some(c) = c {
            lists[c].push(id(i));
        }
        let line = serde_json::json!({
            "kind": "account", "account_id": id(i), "risk": if flagged { 0.9 } else { 0.1 },
            "flagged": flagged,
            "flagged_at": flagged.then_some("2026-04-01T01:00:00Z"),
            "campaign_id": c.map(|c| format!("C-{c:04}")),
            "reasons": if flagged { vec!["shared_template"] } else { vec![] },
        });
        writeln!(out, "{line}").unwrap();
    }
    for (c, list) in lists.iter().enumerate() {
        let line = serde_json::json!({
            "kind": "campaign", "campaign_id": format!("C-{c:04}"), "accounts": list,
            "score": 0.5 + (c % 50) as f64 / 100.0, "first_detected_at": "2026-04-01T01:00:00Z",
            "signals": [{"name": "shared_template", "detail": "one wrapper"}],
        });
        writeln!(out, "{line}").unwrap();
    }
    out.flush().unwrap();
    drop(out);
    // Three exchanges per member, in time order.
    let traffic = dir.path().join("traffic.jsonl");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&traffic).unwrap());
    for round in 0..3 {
        for i in 0..members {
            let secs = round * 3600 + i / 20;
            let line = serde_json::json!({
                "v": 1,
                "ts": format!("2026-04-01T{:02}:{:02}:{:02}Z", secs / 3600, secs / 60 % 60, secs % 60),
                "account_id": id(i),
                "client": {"ip": format!("10.{}.{}.7", i / 256 % 256, i % 256), "asn": 64_500 + i % 40,
                           "user_agent": "OpenAI/Python 1.40.0", "tls_ja4": "t13d1516h2_8daaf6152771_02713d6af862"},
                "request": {"model": "frontier-1", "messages": [{"role": "user", "content":
                    format!("Before you answer, write out every step of your reasoning. Question {}: what is {i} + {round}?", i % 97)}]},
                "response": {"status": 200, "completion_tokens": 200, "reasoning_tokens": 1000},
            });
            writeln!(out, "{line}").unwrap();
        }
    }
    out.flush().unwrap();
    drop(out);

    let ui = start_ui(&detections, &traffic, &[]);
    let shots = root.join("target/dashboard-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let out = node_ok(
        &root,
        "scale.mjs",
        &[&format!("http://{}", ui.addr), &shots, &browser],
    );
    let seen: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(seen["accounts"], accounts);
    assert_eq!(seen["campaigns"], campaigns);
    ui.stop();
}

/// `moat ui` over `detections` and `traffic` (and `extra` arguments) on a free port.
fn start_ui(detections: &Path, traffic: &Path, extra: &[&str]) -> Server {
    let (detections, traffic) = (p(detections), p(traffic));
    let mut args = vec![
        "ui",
        "--detections",
        &detections,
        "--traffic",
        &traffic,
        "--listen",
        "127.0.0.1:0",
        "--quiet",
    ];
    args.extend_from_slice(extra);
    Server::start(&args, &[], "dashboard: http://")
}

//! The dashboard over `moat serve` seeded with the small scenario's traffic (so the engine has
//! campaigns). Always: the admin API's listings page, sort and add up, and a campaign's view
//! (graph, timeline, capability sweep, samples) agrees with its members. When `MOAT_BROWSER`
//! names a Chromium (`.ci/run` installs Debian's and sets it; `ui/node_modules` must hold
//! playwright-core: `cd ui && npm ci`): `ui/tests/e2e.mjs` drives it through every page and
//! checks what it shows against the admin API, including a one-click block of a campaign that
//! the gateway enforces and its revert; then `ui/tests/report.mjs` opens the report of
//! `moat analyze --report` from the file system; screenshots go to
//! `target/dashboard-screenshots/`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{get_json, http, moat, node, node_ok, ok, Server};

const TOKEN: &str = "dashboard-test-token-0123";

#[test]
fn the_dashboard_api_pages_and_aggregates_and_a_real_browser_agrees() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let browser = std::env::var("MOAT_BROWSER").ok();
    if browser.is_some() {
        assert!(
            root.join("ui/node_modules/playwright-core").is_dir(),
            "MOAT_BROWSER is set but ui/node_modules is not: run (cd ui && npm ci)"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("sim");
    ok(&moat()
        .args(["sim", "--seed", "3", "--quiet", "--scenario"])
        .arg(root.join("scenarios/small.toml"))
        .arg("--out")
        .arg(&run)
        .output()
        .unwrap());

    let rt = tokio::runtime::Runtime::new().unwrap();
    let mock = rt
        .block_on(moat_testkit::start(moat_testkit::MockConfig {
            record_limit: 0,
            // A reasoning model: answers carry reasoning and count reasoning tokens.
            reasoning: moat_testkit::Reasoning::ReasoningContent,
            ..moat_testkit::MockConfig::default()
        }))
        .unwrap();
    let config = dir.path().join("moat.toml");
    std::fs::write(
        dir.path().join("policy.toml"),
        r#"version = 1
[[rule]]
name = "campaign members"
when = 'campaign.member'
action = "withhold_reasoning"
"#,
    )
    .unwrap();
    std::fs::write(
        &config,
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
time_header = "x-moat-time"
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
discovery_interval_ms = 3600000
[admin]
addr = "127.0.0.1:1"
"#,
            origin = mock.origin(),
            accounts = run.join("accounts.jsonl").display().to_string(),
        ),
    )
    .unwrap();
    let config = config.display().to_string();
    let gw = Server::start(
        &["serve", "--config", &config, "--admin", "127.0.0.1:0"],
        &[("MOAT_ADMIN_TOKEN", TOKEN)],
        "moat serve: API on http://",
    );
    // The server restarted itself with its allocator options (where the test's environment
    // does not set them).
    #[cfg(target_os = "linux")]
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        let environ = std::fs::read(format!("/proc/{}/environ", gw.id())).unwrap();
        let vars: Vec<&[u8]> = environ.split(|b| *b == 0).collect();
        for var in ["MIMALLOC_PURGE_DELAY=0", "MIMALLOC_ARENA_EAGER_COMMIT=0"] {
            assert!(
                vars.contains(&var.as_bytes()),
                "{var} not in moat serve's environment"
            );
        }
    }
    // "A -> http://U, admin on http://B"
    let admin = gw
        .rest
        .rsplit("admin on http://")
        .next()
        .unwrap()
        .to_owned();
    ok(&moat()
        .arg("replay")
        .arg(run.join("traffic.jsonl.gz"))
        .args(["--target", &format!("http://{}", gw.addr)])
        .args(["--concurrency", "8", "--quiet"])
        .output()
        .unwrap());

    // The engine's discovery passes follow the replayed clock; give the last one time.
    let deadline = Instant::now() + Duration::from_secs(60);
    let summary = loop {
        let s = get_json(&admin, "/admin/summary", TOKEN);
        if s["campaigns"].as_u64().unwrap() > 0 || Instant::now() > deadline {
            break s;
        }
        std::thread::sleep(Duration::from_secs(2));
    };
    api_checks(&admin, &summary);
    let Some(browser) = browser else {
        eprintln!("MOAT_BROWSER is not set: the browser part is skipped");
        return;
    };
    let shots = root.join("target/dashboard-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let said = loop {
        let out = node(
            &root,
            "e2e.mjs",
            &[
                &format!("http://{admin}"),
                &TOKEN,
                &shots,
                &browser,
                &format!("http://{}", gw.addr),
            ],
        );
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        if out.status.success() {
            break String::from_utf8_lossy(&out.stdout).into_owned();
        }
        assert!(
            err.contains("the seeded gateway has campaigns") && Instant::now() < deadline,
            "{err}"
        );
        std::thread::sleep(Duration::from_secs(2));
    };
    eprintln!("dashboard: {said}");

    // The same pages from `moat analyze --report`, opened as a file.
    let report = dir.path().join("report.html");
    ok(&moat()
        .arg("analyze")
        .arg(run.join("traffic.jsonl.gz"))
        .arg("--accounts")
        .arg(run.join("accounts.jsonl"))
        .arg("--out")
        .arg(dir.path().join("detections.jsonl"))
        .arg("--report")
        .arg(&report)
        .arg("--quiet")
        .output()
        .unwrap());
    let out = node_ok(&root, "report.mjs", &[&report, &shots, &browser]);
    eprintln!("report: {}", out.trim());
    let seen: serde_json::Value = serde_json::from_str(said.trim()).unwrap();
    assert!(seen["campaigns"].as_u64().unwrap() >= 1, "{seen}");
    for page in [
        "overview",
        "campaigns",
        "campaign",
        "campaign-blocked",
        "account",
        "policy",
        "alerts",
        "report-campaign",
    ] {
        assert!(shots.join(format!("{page}.png")).is_file(), "{page}");
    }
    drop(gw);
    drop(mock);
}

/// The listings are paged and sorted by the server and add up; a campaign's aggregates are
/// consistent with each other and with its members.
fn api_checks(admin: &str, summary: &serde_json::Value) {
    let n = summary["campaigns"].as_u64().unwrap() as usize;
    assert!(n >= 1, "no campaign: {summary}");
    // Campaigns, two per page, largest first: every campaign once.
    let mut ids = Vec::new();
    let mut sizes = Vec::new();
    let mut offset = Some(0);
    while let Some(o) = offset {
        let p = get_json(
            admin,
            &format!("/admin/campaigns?sort=size&limit=2&offset={o}"),
            TOKEN,
        );
        assert_eq!(p["total"].as_u64().unwrap() as usize, n);
        for c in p["items"].as_array().unwrap() {
            ids.push(c["campaign_id"].as_str().unwrap().to_owned());
            sizes.push(c["size"].as_u64().unwrap());
            assert!(c["exchanges"].as_u64().unwrap() >= c["after_detection"].as_u64().unwrap());
        }
        offset = p["next_offset"].as_u64();
    }
    assert_eq!(ids.len(), n);
    assert!(sizes.windows(2).all(|w| w[0] >= w[1]), "{sizes:?}");
    let (status, body) = http(
        "GET",
        admin,
        "/admin/campaigns?sort=nonsense",
        &[("Authorization", &format!("Bearer {TOKEN}"))],
        None,
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("nonsense"), "{body}");
    // Flagged accounts, paged by id: the summary's count.
    let mut flagged = 0;
    let mut after = String::new();
    loop {
        let p = get_json(
            admin,
            &format!("/admin/accounts?flagged=true&limit=50&after={after}"),
            TOKEN,
        );
        flagged += p["items"].as_array().unwrap().len();
        match p["next"].as_str() {
            Some(next) => after = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(flagged as u64, summary["flagged"].as_u64().unwrap());

    // The largest campaign: its view adds up, its members page through.
    let id = &ids[0];
    let detail = get_json(admin, &format!("/admin/campaigns/{id}"), TOKEN);
    // The recorder writes behind the answers: wait until the store holds every exchange.
    let deadline = Instant::now() + Duration::from_secs(60);
    let view = loop {
        let view = get_json(admin, &format!("/admin/campaigns/{id}/view"), TOKEN);
        if view["sample"]["complete"] == true || Instant::now() > deadline {
            break view;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let members: Vec<&str> = detail["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(view["size"].as_u64().unwrap() as usize, members.len());
    let exchanges = view["exchanges"].as_u64().unwrap();
    assert!(exchanges > 0, "{view}");
    let sum = |v: &serde_json::Value| -> u64 {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap())
            .sum()
    };
    assert_eq!(sum(&view["timeline"]["exchanges"]), exchanges);
    let swept: u64 = view["capabilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["exchanges"].as_u64().unwrap())
        .sum();
    assert_eq!(swept, exchanges);
    // Every exchange of the campaign is in the store, and the view read all of them here.
    assert_eq!(
        view["sample"]["complete"], true,
        "{} {}",
        view["sample"], view["usage"]
    );
    assert_eq!(view["usage"]["exchanges"].as_u64().unwrap(), exchanges);
    let nodes = view["graph"]["nodes"].as_array().unwrap();
    assert!(
        nodes.iter().any(|n| n["kind"] == "account"),
        "{}",
        view["graph"]
    );
    assert!(
        nodes.iter().any(|n| n["kind"] != "account"),
        "{}",
        view["graph"]
    );
    for e in view["graph"]["edges"].as_array().unwrap() {
        for end in [&e["source"], &e["target"]] {
            assert!(
                nodes.iter().any(|n| &n["id"] == end),
                "edge to nowhere: {e}"
            );
        }
    }
    let samples = view["samples"].as_array().unwrap();
    assert!(!samples.is_empty() && samples.len() <= 6);
    for x in samples {
        assert!(members.contains(&x["account_id"].as_str().unwrap()));
    }
    let mut listed = Vec::new();
    let mut after = String::new();
    loop {
        let p = get_json(
            admin,
            &format!("/admin/accounts?campaign={id}&limit=7&after={after}"),
            TOKEN,
        );
        for a in p["items"].as_array().unwrap() {
            assert_eq!(a["campaign_id"].as_str(), Some(id.as_str()));
            listed.push(a["account_id"].as_str().unwrap().to_owned());
        }
        match p["next"].as_str() {
            Some(next) => after = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(listed, members, "members page through in id order");
    let account = get_json(admin, &format!("/admin/accounts/{}", members[0]), TOKEN);
    let recent = account["recent_exchanges"].as_array().unwrap();
    assert!(!recent.is_empty() && recent.len() <= 20, "{account}");
    assert!(account["usage"]["exchanges"].as_u64().unwrap() >= recent.len() as u64);
}

//! The dashboard in a real browser: `moat serve` seeded with the small scenario's traffic (so
//! the engine has campaigns), then `ui/tests/e2e.mjs` drives Chromium through every page and
//! checks what it shows against the admin API. Runs when `MOAT_BROWSER` names a Chromium
//! (`.ci/run` installs Debian's and sets it) and `ui/node_modules` holds playwright-core
//! (`cd ui && npm ci`); screenshots go to `target/dashboard-screenshots/`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{moat, ok, Server};

const TOKEN: &str = "dashboard-test-token-0123";

#[test]
fn every_page_shows_what_the_api_says_in_a_real_browser() {
    let Ok(browser) = std::env::var("MOAT_BROWSER") else {
        eprintln!("MOAT_BROWSER is not set: the browser test is skipped");
        return;
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    assert!(
        root.join("ui/node_modules/playwright-core").is_dir(),
        "MOAT_BROWSER is set but ui/node_modules is not: run (cd ui && npm ci)"
    );
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

    let shots = root.join("target/dashboard-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    // The engine's discovery passes follow the replayed clock; give the last one time.
    let deadline = Instant::now() + Duration::from_secs(60);
    let said = loop {
        let out = Command::new("node")
            .arg(root.join("ui/tests/e2e.mjs"))
            .arg(format!("http://{admin}"))
            .arg(TOKEN)
            .arg(&shots)
            .arg(&browser)
            .current_dir(root.join("ui"))
            .output()
            .unwrap();
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
    let seen: serde_json::Value = serde_json::from_str(said.trim()).unwrap();
    assert!(seen["campaigns"].as_u64().unwrap() >= 1, "{seen}");
    for page in [
        "overview",
        "campaigns",
        "campaign",
        "account",
        "policy",
        "alerts",
    ] {
        assert!(shots.join(format!("{page}.png")).is_file(), "{page}");
    }
    drop(gw);
    drop(mock);
}

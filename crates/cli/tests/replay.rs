//! End-to-end tests of `moat replay`: a simulated log replayed through `moat serve` (identity
//! from headers, the time header, one trusted proxy hop, the edge attribute headers) against
//! the mock upstream is recorded with the log's accounts, times, clients and requests, each
//! account's requests in order; requests that get no answer and records that cannot be sent
//! make it fail, saying which.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{moat, ok, p, Server};
use moat_format::{ReadOptions, Reader, Writer};
use moat_store::SqliteStore;
use moat_types::{Exchange, Request};

/// A few hundred exchanges of every endpoint the simulator writes, over two days.
const SCENARIO: &str = r#"version = 1
name = "replay"
description = "A replay test's traffic."
start = "2026-03-02T00:00:00Z"
days = 2

[[models]]
name = "frontier-1"
reasoning = true
benign_weight = 1.0

[[models]]
name = "frontier-mini"
reasoning = false
benign_weight = 0.8

[benign]
accounts = 40
median_sessions_per_day = 1.0

[benign_heavy]
app_backends = 0
eval_harnesses = 0
enterprises = 0

[jailbreak]
accounts = 2

[[campaigns]]
id = "hydra-1"
tactic = "proxy-rotation"
accounts = 6
calls_per_account_per_day = 20.0

[[campaigns]]
id = "extract-1"
tactic = "reasoning-extraction"
accounts = 3
calls_per_account_per_day = 20.0

[[campaigns]]
id = "jbh-1"
tactic = "jailbreak-harvest"
accounts = 2
calls_per_account_per_day = 10.0
"#;

fn read_log(path: &Path) -> Vec<Exchange> {
    Reader::<Exchange>::open(path, ReadOptions::default())
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// What a replay must reproduce of an exchange, comparable as text: the account, the time,
/// the client and the request (as the gateway records a request: with its endpoint and its
/// parameters, empty ones when the log has none).
fn reproduced(x: &Exchange) -> String {
    let request = Request {
        endpoint: Some(
            x.request
                .endpoint
                .clone()
                .unwrap_or_else(|| "/v1/chat/completions".to_owned()),
        ),
        params: Some(x.request.params.clone().unwrap_or_default()),
        ..x.request.clone()
    };
    serde_json::to_string(&(&x.account_id, x.ts, &x.client, &request)).unwrap()
}

#[test]
fn a_replayed_log_is_recorded_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("sim");
    let scenario = dir.path().join("scenario.toml");
    std::fs::write(&scenario, SCENARIO).unwrap();
    ok(&moat()
        .args(["sim", "--seed", "3", "--quiet", "--scenario"])
        .arg(&scenario)
        .arg("--out")
        .arg(&run)
        .output()
        .unwrap());
    let traffic = run.join("traffic.jsonl.gz");
    let original = read_log(&traffic);
    let endpoints: std::collections::BTreeSet<_> = original
        .iter()
        .filter_map(|x| x.request.endpoint.as_deref())
        .collect();
    assert_eq!(
        endpoints.len(),
        3,
        "chat, completions and responses traffic (pick another seed): {endpoints:?}"
    );

    let rt = tokio::runtime::Runtime::new().unwrap();
    let mock = rt
        .block_on(moat_testkit::start(moat_testkit::MockConfig {
            record_limit: 0,
            ..moat_testkit::MockConfig::default()
        }))
        .unwrap();
    let gw = dir.path().join("gw");
    std::fs::create_dir(&gw).unwrap();
    let config = gw.join("moat.toml");
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
[store]
path = "moat.db"
spill_dir = "spill"
[engine]
accounts_file = {accounts:?}
replay_hours = 0
[admin]
addr = "127.0.0.1:1"
"#,
            origin = mock.origin(),
            accounts = run.join("accounts.jsonl").display().to_string(),
        ),
    )
    .unwrap();

    // `moat serve`, stopped with SIGTERM (which flushes the store).
    let serve = Server::start(
        &["serve", "--config", &p(&config), "--admin", "127.0.0.1:0"],
        &[],
        "moat serve: API on http://",
    );
    let said = ok(&moat()
        .arg("replay")
        .arg(&traffic)
        .args(["--target", &format!("http://{}", serve.addr)])
        .args(["--concurrency", "8", "--quiet"])
        .output()
        .unwrap());
    serve.stop();
    let n = original.len();
    assert!(
        said.starts_with(&format!("replayed {n} exchanges to 1 target in ")),
        "{said}"
    );
    assert!(said.contains(&format!(": {n} 2xx, 0 failed\n")), "{said}");

    let store = SqliteStore::open(&gw.join("moat.db")).unwrap();
    let mut exported = Vec::new();
    let stored = moat_store::export_jsonl(&store, None, &mut exported).unwrap();
    assert_eq!(stored as usize, n);
    let recorded: Vec<Exchange> = exported
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();

    // Account, time, client (address, ASN, country, user agent, JA4) and request (endpoint,
    // model, messages, prompt, parameters) are the log's, exchange for exchange.
    let mut want: Vec<String> = original.iter().map(reproduced).collect();
    let mut got: Vec<String> = recorded.iter().map(reproduced).collect();
    want.sort();
    got.sort();
    assert!(want == got, "the recorded exchanges differ from the log's");

    // What the gateway says itself: its own request ids, no key id (identity came from a
    // header) and the mock's answers.
    for x in &recorded {
        let id = x.request_id.as_deref().unwrap();
        assert!(id.starts_with("req_"), "{id}");
        assert_eq!(x.api_key_id, None);
        assert_eq!(x.response.as_ref().unwrap().status, Some(200));
    }

    // Each account's requests reached the gateway in log order: by arrival (the gateway's
    // request ids count up), the times never go back.
    let mut by_account: BTreeMap<&str, Vec<&Exchange>> = BTreeMap::new();
    for x in &recorded {
        by_account.entry(&x.account_id).or_default().push(x);
    }
    for (account, mut xs) in by_account {
        xs.sort_by(|a, b| a.request_id.cmp(&b.request_id));
        assert!(
            xs.windows(2).all(|w| w[0].ts <= w[1].ts),
            "{account}: requests arrived out of order"
        );
    }
    drop(mock);
}

#[test]
fn unanswered_requests_and_unsendable_records_fail_the_replay() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log.jsonl");
    let line = |account: &str, request: &str| -> Exchange {
        serde_json::from_str(&format!(
            r#"{{"v":1,"ts":"2026-03-02T00:00:00Z","account_id":"{account}","request":{request}}}"#
        ))
        .unwrap()
    };
    let mut w = Writer::<Exchange>::create(&log).unwrap();
    for x in [
        line("a", r#"{"messages":[{"role":"user","content":"Q"}]}"#),
        line(
            "b",
            r#"{"endpoint":"/v1/embeddings","messages":[{"role":"user","content":"Q"}]}"#,
        ),
        line("a", r#"{"messages":[{"role":"user","content":"Q2"}]}"#),
    ] {
        w.write(&x).unwrap();
    }
    w.finish().unwrap();
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let res = moat()
        .arg("replay")
        .arg(&log)
        .args(["--target", &format!("http://127.0.0.1:{port}"), "--quiet"])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&res.stdout);
    let err = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(1), "{out}{err}");
    assert!(out.contains(": 0 2xx, 2 failed, 1 not sendable"), "{out}");
    assert!(
        out.contains("line 2: not sent: unknown endpoint \"/v1/embeddings\""),
        "{out}"
    );
    assert!(
        err.contains("2 requests failed and 1 records could not be sent"),
        "{err}"
    );

    let res = moat()
        .arg("replay")
        .arg(&log)
        .args(["--target", "https://gateway.example"])
        .output()
        .unwrap();
    assert_eq!(res.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&res.stderr).contains("must be an http:// URL"));
}

//! The gateway on real sockets: a raw HTTP client through `moat serve`'s listener to the mock
//! upstream (streaming chunk by chunk, graceful shutdown flushing the store), and the official
//! `openai` and `anthropic` Python SDKs against it when `MOAT_SDK_PYTHON` names a Python that has them (`.ci/run`
//! installs it in a venv and sets the variable; without it that test says so and passes).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use moat_gateway::identity::hash_key;
use moat_gateway::{Config, Gateway};
use moat_store::{ExchangeQuery, SqliteStore, Store};
use moat_testkit::{MockConfig, MockServer};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const KEY: &str = "sk-live-sdk-test";
const KEY_THROTTLED: &str = "sk-live-throttled";

const POLICY: &str = r#"version = 1

[[rule]]
name = "no such model for anyone"
when = 'request.model == "forbidden-model"'
action = "block"
status = 403
message = "this model is not available to your account"

[[rule]]
name = "one request a minute for the throttled account"
when = 'account.id == "acct_throttled"'
action = "throttle"
requests_per_minute = 1

[[rule]]
name = "reasoning models keep their reasoning"
when = 'request.model starts_with "mock-reasoning"'
action = "withhold_reasoning"
"#;

struct Running {
    api: SocketAddr,
    mock: MockServer,
    store: Arc<SqliteStore>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    dir: Option<tempfile::TempDir>,
    policy: std::path::PathBuf,
}

async fn start(mock_cfg: MockConfig) -> Running {
    let mock = moat_testkit::start(mock_cfg).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, POLICY).unwrap();
    let text = format!(
        r#"version = 1
[upstream]
url = "{origin}"
[policy]
file = {policy:?}
reload_interval_ms = 1000
[[identity.keys]]
sha256 = "{k1}"
account = "acct_sdk"
[[identity.keys]]
sha256 = "{k2}"
account = "acct_throttled"
[store]
spill_dir = {spill:?}
[admin]
addr = "127.0.0.1:2"
"#,
        origin = mock.origin(),
        policy = policy.display().to_string(),
        k1 = hash_key(KEY),
        k2 = hash_key(KEY_THROTTLED),
        spill = dir.path().join("spill").display().to_string(),
    );
    let cfg = Config::parse(&text, "sockets.toml").unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("moat.db")).unwrap());
    let gw = Gateway::build_with_store(&cfg, store.clone()).unwrap();
    let api = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = api.local_addr().unwrap();
    let policy = policy.clone();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        gw.serve(api, admin, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    Running {
        api: addr,
        mock,
        store,
        stop: Some(tx),
        task,
        dir: Some(dir),
        policy,
    }
}

impl Running {
    /// Stops the gateway; the store (and the folder it lives in) outlive it.
    async fn stop(mut self) -> (Arc<SqliteStore>, MockServer, tempfile::TempDir) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("the gateway stops")
            .unwrap();
        let dir = self.dir.take().expect("the folder");
        (self.store, self.mock, dir)
    }
}

/// One HTTP/1.1 request on a fresh connection; returns the time to the first body bytes that
/// contain `first`, and the whole response text.
async fn raw_post(addr: SocketAddr, path: &str, body: &Value, first: &str) -> (Duration, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let body = body.to_string();
    let req = format!(
        "POST {path} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {KEY}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let sent = Instant::now();
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let mut first_at = None;
    loop {
        let n = s.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
        if first_at.is_none() && String::from_utf8_lossy(&out).contains(first) {
            first_at = Some(sent.elapsed());
        }
    }
    (
        first_at.unwrap_or_else(|| sent.elapsed()),
        String::from_utf8(out).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_flow_chunk_by_chunk_and_shutdown_flushes_the_store() {
    let run = start(MockConfig {
        chunks: 10,
        interval: Duration::from_millis(40),
        ..MockConfig::default()
    })
    .await;
    let body = json!({"model": "mock-plain", "stream": true,
        "messages": [{"role": "user", "content": "hello"}]});
    let started = Instant::now();
    let (first, text) = raw_post(run.api, "/v1/chat/completions", &body, "This").await;
    let total = started.elapsed();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("data: [DONE]"), "{text}");
    // Ten deltas 40 ms apart take at least 360 ms; the first reached the client long before
    // the last was produced, so nothing buffered the stream.
    assert!(total >= Duration::from_millis(360), "{total:?}");
    assert!(
        first + Duration::from_millis(200) < total,
        "first {first:?} of {total:?}"
    );
    let (store, _mock, _dir) = run.stop().await;
    let xs = store.exchanges(&ExchangeQuery::default()).unwrap().items;
    assert_eq!(xs.len(), 1);
    assert_eq!(xs[0].account_id, "acct_sdk");
    assert_eq!(xs[0].response.as_ref().unwrap().status, Some(200));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_sdks_work_through_the_gateway() {
    let Some(python) = std::env::var_os("MOAT_SDK_PYTHON") else {
        eprintln!("skipped: set MOAT_SDK_PYTHON to a Python with the openai SDK (.ci/run does)");
        return;
    };
    let run = start(MockConfig::default()).await;
    let api = run.api;
    let run_script = |name: &'static str| {
        let python = python.clone();
        async move {
            let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/sdk")
                .join(name);
            tokio::task::spawn_blocking(move || {
                std::process::Command::new(python)
                    .arg(script)
                    .env("MOAT_BASE_URL", format!("http://{api}/v1"))
                    .env("MOAT_KEY", KEY)
                    .env("MOAT_KEY_THROTTLED", KEY_THROTTLED)
                    .env("NO_PROXY", "*")
                    .output()
                    .unwrap()
            })
            .await
            .unwrap()
        }
    };
    let out = run_script("openai_sdk.py").await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "SDK checks failed:\n{stdout}\n{stderr}"
    );
    eprintln!("{stdout}");
    let out = run_script("anthropic_sdk.py").await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "Anthropic SDK checks failed:\n{stdout}\n{stderr}"
    );
    eprintln!("{stdout}");
    let (store, mock, _dir) = run.stop().await;
    // What reached the upstream: the withheld reasoning, restored, in both follow-up turns.
    let reqs = mock.requests();
    let chat_follow_up = reqs
        .iter()
        .find(|r| {
            r["path"] == "/v1/chat/completions"
                && r["body"]["messages"]
                    .as_array()
                    .is_some_and(|m| m.len() == 3)
        })
        .expect("the chat follow-up reached upstream");
    let assistant = &chat_follow_up["body"]["messages"][1];
    assert!(
        assistant["reasoning_content"]
            .as_str()
            .is_some_and(|r| r.starts_with("Let me think step by step")),
        "{assistant}"
    );
    assert!(!chat_follow_up.to_string().contains("moatr1."));
    let responses_follow_up = reqs
        .iter()
        .find(|r| r["path"] == "/v1/responses" && r["body"]["input"].is_array())
        .expect("the responses follow-up reached upstream");
    assert!(
        responses_follow_up
            .to_string()
            .contains("Let me think step by step"),
        "{responses_follow_up}"
    );
    assert!(!responses_follow_up.to_string().contains("moatr1."));
    // Blocked and throttled requests never reached upstream, but every exchange was recorded.
    assert!(!reqs.iter().any(|r| r["body"]["model"] == "forbidden-model"));
    let messages_follow_up = reqs
        .iter()
        .find(|r| {
            r["path"] == "/v1/messages"
                && r["body"]["messages"]
                    .as_array()
                    .is_some_and(|m| m.len() == 3)
        })
        .expect("the Anthropic follow-up reached upstream");
    let block = &messages_follow_up["body"]["messages"][1]["content"][0];
    assert_eq!(block["type"], "thinking", "{block}");
    assert_eq!(block["signature"], moat_testkit::text::SIGNATURE);
    let xs = store
        .exchanges(&ExchangeQuery {
            limit: 1000,
            ..ExchangeQuery::default()
        })
        .unwrap()
        .items;
    let statuses: Vec<u16> = xs
        .iter()
        .filter_map(|x| x.response.as_ref()?.status)
        .collect();
    assert!(
        statuses.contains(&403) && statuses.contains(&429),
        "{statuses:?}"
    );
    // The key is nowhere in the store.
    let mut all = String::new();
    moat_store::export_jsonl(store.as_ref(), None, &mut string_writer(&mut all)).unwrap();
    assert!(!all.contains(KEY));
}

/// A `Write` into a `String` (the export writes UTF-8 JSON lines).
fn string_writer(s: &mut String) -> StringWriter<'_> {
    StringWriter(s)
}

struct StringWriter<'a>(&'a mut String);

impl std::io::Write for StringWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.push_str(&String::from_utf8_lossy(buf));
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_policy_file_applies_without_a_restart() {
    let run = start(MockConfig::default()).await;
    let body = json!({"model": "retired-model", "messages": [{"role": "user", "content": "hi"}]});
    let (_, text) = raw_post(run.api, "/v1/chat/completions", &body, "HTTP").await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    let edited = POLICY.replace("forbidden-model", "retired-model");
    std::fs::write(&run.policy, edited).unwrap();
    let mut refused = false;
    for _ in 0..50 {
        let (_, text) = raw_post(run.api, "/v1/chat/completions", &body, "HTTP").await;
        if text.starts_with("HTTP/1.1 403") {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(refused, "the edited policy never applied");
    // A broken edit is rejected and the rules in force stay.
    std::fs::write(
        &run.policy,
        "version = 1\n[[rule]]\nname = 'x'\nwhen = 'nonsense'\naction = 'block'\n",
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (_, text) = raw_post(run.api, "/v1/chat/completions", &body, "HTTP").await;
    assert!(text.starts_with("HTTP/1.1 403"), "{text}");
    let ok = json!({"model": "mock-plain", "messages": [{"role": "user", "content": "hi"}]});
    let (_, text) = raw_post(run.api, "/v1/chat/completions", &ok, "HTTP").await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    run.stop().await;
}

/// Sends raw bytes on a fresh connection and returns what came back.
async fn raw(addr: SocketAddr, bytes: Vec<u8>) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    // The server may answer and close before reading everything; a failed write is fine.
    let _ = s.write_all(&bytes).await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abusive_headers_are_refused_and_the_gateway_keeps_serving() {
    let run = start(MockConfig::default()).await;
    // One enormous header.
    let huge = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nx-junk: {}\r\ncontent-length: 2\r\n\r\n{{}}",
        "a".repeat(1 << 20)
    );
    let text = raw(run.api, huge.into_bytes()).await;
    assert!(text.starts_with("HTTP/1.1 431"), "{text}");
    // Too many headers.
    let mut many = String::from("POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n");
    for i in 0..500 {
        many.push_str(&format!("x-h{i}: v\r\n"));
    }
    many.push_str("content-length: 2\r\n\r\n{}");
    let text = raw(run.api, many.into_bytes()).await;
    assert!(text.starts_with("HTTP/1.1 431"), "{text}");
    // A duplicated content length that disagrees.
    let text = raw(
        run.api,
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\ncontent-length: 5\r\n\r\n{}".to_vec(),
    )
    .await;
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    // Still serving.
    let ok = json!({"model": "mock-plain", "messages": [{"role": "user", "content": "hi"}]});
    let (_, text) = raw_post(run.api, "/v1/chat/completions", &ok, "HTTP").await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    run.stop().await;
}

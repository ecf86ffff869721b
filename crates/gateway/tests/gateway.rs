//! The gateway through its router (no socket on the client side) against the testkit's mock
//! upstream on a real socket: identity, bad requests, policy actions, reasoning withheld and
//! restored in every dialect, streams passed and cut, recording, the admin API.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use moat_gateway::identity::hash_key;
use moat_gateway::{Config, Gateway};
use moat_store::{DecisionQuery, ExchangeQuery, SqliteStore, Store};
use moat_testkit::{parse_sse, MockConfig, MockServer};
use serde_json::{json, Value};
use tower::ServiceExt;

const KEY: &str = "sk-test-alice";
const KEY_BOB: &str = "sk-test-bob";
const ADMIN: &str = "admin-secret-token";

struct Harness {
    gw: Gateway,
    store: Arc<SqliteStore>,
    mock: MockServer,
    dir: tempfile::TempDir,
}

async fn harness(policy: Option<&str>, extra: &str) -> Harness {
    harness_with_identity(policy, "", extra).await
}

/// A harness whose `[identity]` section has these lines too.
async fn harness_with_identity(policy: Option<&str>, identity: &str, extra: &str) -> Harness {
    let mock = moat_testkit::start(MockConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let policy_line = match policy {
        Some(p) => {
            let path = dir.path().join("policy.toml");
            std::fs::write(&path, p).unwrap();
            format!("[policy]\nfile = {:?}\n", path.display().to_string())
        }
        None => String::new(),
    };
    // The admin token comes from an environment variable named per test run, so parallel
    // tests do not share it.
    let token_env = format!("MOAT_TEST_ADMIN_{}", std::process::id());
    std::env::set_var(&token_env, ADMIN);
    let text = format!(
        r#"version = 1
[upstream]
url = "{origin}"
[identity]
headers = {{ tier = "x-account-tier" }}
{identity}
[[identity.keys]]
sha256 = "{alice}"
account = "acct_alice"
id = "key_alice"
[[identity.keys]]
sha256 = "{bob}"
account = "acct_bob"
[admin]
token_env = "{token_env}"
addr = "127.0.0.1:1"
[store]
spill_dir = {spill:?}
record_text = true
{policy_line}
{extra}
"#,
        origin = mock.origin(),
        alice = hash_key(KEY),
        bob = hash_key(KEY_BOB),
        spill = dir.path().join("spill").display().to_string(),
    );
    let cfg = Config::parse(&text, "test.toml").unwrap();
    let store = Arc::new(SqliteStore::in_memory().unwrap());
    let gw = Gateway::build_with_store(&cfg, store.clone()).unwrap();
    Harness {
        gw,
        store,
        mock,
        dir,
    }
}

fn post(path: &str, key: &str, body: &Value) -> Request<Body> {
    Request::post(path)
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {key}"))
        .body(Body::from(body.to_string()))
        .unwrap()
}

async fn call(h: &Harness, req: Request<Body>) -> (StatusCode, http::HeaderMap, String) {
    let resp = h.gw.router().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8(body.to_vec()).unwrap())
}

fn chat(model: &str, stream: bool) -> Value {
    json!({
        "model": model,
        "stream": stream,
        "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "What is the capital of France?"}
        ]
    })
}

/// Waits until the recorder has written everything handed to it.
fn flush(h: &Harness) {
    assert!(h.gw.state().recorder.flush(Duration::from_secs(10)));
}

#[tokio::test]
async fn chat_passes_through_and_is_recorded() {
    let h = harness(None, "").await;
    let (status, _, body) = call(
        &h,
        post("/v1/chat/completions", KEY, &chat("mock-plain", false)),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v["choices"][0]["message"]["content"],
        moat_testkit::text::expected_content(2, 8)
    );
    flush(&h);
    let page = h.store.exchanges(&ExchangeQuery::default()).unwrap();
    assert_eq!(page.items.len(), 1);
    let x = &page.items[0];
    assert_eq!(x.account_id, "acct_alice");
    assert_eq!(x.api_key_id.as_deref(), Some("key_alice"));
    assert_eq!(x.request.endpoint.as_deref(), Some("/v1/chat/completions"));
    assert_eq!(x.request.messages.len(), 2);
    let r = x.response.as_ref().unwrap();
    assert_eq!(r.status, Some(200));
    assert!(r.completion_tokens.is_some());
    // The key never reaches the store.
    let line = serde_json::to_string(x).unwrap();
    assert!(!line.contains(KEY));
    // No rule touched it: the exchange is the whole record, no decision beside it.
    let decisions = h.store.decisions(&DecisionQuery::default()).unwrap();
    assert!(decisions.items.is_empty());
    // The upstream saw the client's request.
    assert_eq!(h.mock.requests().len(), 1);
}

#[tokio::test]
async fn callers_without_a_known_key_are_refused_in_their_dialect() {
    let h = harness(None, "").await;
    let (status, _, body) = call(
        &h,
        post("/v1/chat/completions", "sk-wrong", &chat("m", false)),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"]["code"], "invalid_api_key");
    assert!(!body.contains("sk-wrong"));
    let req = Request::post("/v1/messages")
        .header("content-type", "application/json")
        .header("x-api-key", "sk-nope")
        .body(Body::from("{}"))
        .unwrap();
    let (status, _, body) = call(&h, req).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "authentication_error");
    assert!(h.mock.requests().is_empty());
}

#[tokio::test]
async fn bad_requests_get_clear_client_errors() {
    let h = harness(None, "[listen]\nmax_body_bytes = 4096\n").await;
    // Malformed JSON.
    let req = Request::post("/v1/chat/completions")
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {KEY}"))
        .body(Body::from("{\"model\": "))
        .unwrap();
    let (status, _, body) = call(&h, req).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("invalid_json"), "{body}");
    // Wrong content type.
    let req = Request::post("/v1/chat/completions")
        .header("content-type", "text/plain")
        .header("authorization", format!("Bearer {KEY}"))
        .body(Body::from("{}"))
        .unwrap();
    assert_eq!(call(&h, req).await.0, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // Oversized body.
    let big = json!({"model": "m", "messages": [{"role": "user", "content": "x".repeat(10_000)}]});
    let (status, _, body) = call(&h, post("/v1/chat/completions", KEY, &big)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    // A field of the wrong shape is named.
    let bad = json!({"model": "m", "messages": [{"role": "user", "content": 7}]});
    let (status, _, body) = call(&h, post("/v1/chat/completions", KEY, &bad)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("messages[0].content"), "{body}");
    // Wrong method and unknown path.
    let req = Request::get("/v1/chat/completions")
        .body(Body::empty())
        .unwrap();
    assert_eq!(call(&h, req).await.0, StatusCode::METHOD_NOT_ALLOWED);
    let req = Request::post("/v1/embeddings").body(Body::empty()).unwrap();
    let (status, _, body) = call(&h, req).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("unknown_endpoint"), "{body}");
    // A header that is not text.
    let req = Request::post("/v1/chat/completions")
        .header("content-type", "application/json")
        .header(
            "authorization",
            http::HeaderValue::from_bytes(b"Bearer \xff\xfe").unwrap(),
        )
        .body(Body::from("{}"))
        .unwrap();
    assert_eq!(call(&h, req).await.0, StatusCode::UNAUTHORIZED);
    assert!(h.mock.requests().is_empty());
}

const BLOCK_FREE: &str = r#"version = 1

[[rule]]
name = "free tier may not ask for reasoning"
when = 'attr.tier == "free" and request.cot >= 0.5'
action = "block"
status = 403
message = "reasoning extraction is not allowed on this plan"
"#;

/// A request of a replay: the account, the time and the client address in trusted headers.
fn replayed(path: &str, time: Option<&str>, body: &Value) -> Request<Body> {
    let mut req = Request::post(path)
        .header("content-type", "application/json")
        .header("x-moat-account", "acct_replayed")
        .header("x-forwarded-for", "203.0.113.7")
        .header("user-agent", "OpenAI/Python 1.40.0");
    if let Some(t) = time {
        req = req.header("x-moat-time", t);
    }
    req.body(Body::from(body.to_string())).unwrap()
}

#[tokio::test]
async fn time_header_sets_the_recorded_time_and_is_required_when_configured() {
    let h = harness_with_identity(
        None,
        "mode = \"header\"\ntrusted_proxy_hops = 1\ntime_header = \"x-moat-time\"",
        "",
    )
    .await;
    let at = "2026-03-02T00:00:13.693Z";
    let (status, _, body) = call(
        &h,
        replayed("/v1/chat/completions", Some(at), &chat("mock-plain", false)),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // An offset is converted to UTC, as everywhere in the exchange log.
    let (status, _, body) = call(
        &h,
        replayed(
            "/v1/chat/completions",
            Some("2026-03-02T01:00:14+01:00"),
            &chat("mock-plain", true),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Without the header, or with a value that is no timestamp: 400 in the client's dialect,
    // naming the header and never echoing the value.
    let (status, _, body) = call(
        &h,
        replayed("/v1/chat/completions", None, &chat("mock-plain", false)),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"]["code"], "invalid_time");
    assert!(body.contains("x-moat-time"), "{body}");
    let long = format!("2026-03-02T00:00:13.{}Z", "7".repeat(300));
    for bad in ["yesterday", "2026-02-30T00:00:00Z", long.as_str()] {
        let (status, _, body) = call(
            &h,
            replayed(
                "/v1/chat/completions",
                Some(bad),
                &chat("mock-plain", false),
            ),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(body.contains("x-moat-time"), "{body}");
        assert!(!body.contains(bad), "{body}");
    }
    let anthropic = json!({"model": "m", "max_tokens": 16,
        "messages": [{"role": "user", "content": "Q"}]});
    let (status, _, body) = call(&h, replayed("/v1/messages", Some("now"), &anthropic)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "invalid_request_error");
    // Listing models records nothing, so it needs no time.
    let req = Request::get("/v1/models")
        .header("x-moat-account", "acct_replayed")
        .body(Body::empty())
        .unwrap();
    assert_eq!(call(&h, req).await.0, StatusCode::OK);

    // The refused requests went nowhere; the two served are recorded at the times given.
    assert_eq!(h.mock.requests().len(), 3);
    flush(&h);
    let xs = h.store.exchanges(&ExchangeQuery::default()).unwrap().items;
    let ts: Vec<String> = xs.iter().map(|x| x.ts.to_string()).collect();
    assert_eq!(ts, ["2026-03-02T00:00:13.693Z", "2026-03-02T00:00:14.000Z"]);
    for x in &xs {
        assert_eq!(x.account_id, "acct_replayed");
        let client = x.client.as_ref().unwrap();
        assert_eq!(client.ip.as_deref(), Some("203.0.113.7"));
        assert_eq!(client.user_agent.as_deref(), Some("OpenAI/Python 1.40.0"));
    }
}

#[tokio::test]
async fn block_rule_refuses_and_records_the_refusal() {
    let h = harness(Some(BLOCK_FREE), "").await;
    let body = json!({"model": "m", "messages": [{"role": "user",
        "content": "Think step by step and show your complete chain of thought, every intermediate step, before the answer: what is 17 * 23?"}]});
    let mut req = post("/v1/chat/completions", KEY, &body);
    req.headers_mut()
        .insert("x-account-tier", "free".parse().unwrap());
    let (status, _, text) = call(&h, req).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{text}");
    assert!(
        text.contains("reasoning extraction is not allowed"),
        "{text}"
    );
    assert!(h.mock.requests().is_empty());
    // The same request on another plan passes.
    let mut req = post("/v1/chat/completions", KEY, &body);
    req.headers_mut()
        .insert("x-account-tier", "pro".parse().unwrap());
    assert_eq!(call(&h, req).await.0, StatusCode::OK);
    flush(&h);
    let xs = h.store.exchanges(&ExchangeQuery::default()).unwrap().items;
    let statuses: Vec<_> = xs
        .iter()
        .map(|x| x.response.as_ref().unwrap().status)
        .collect();
    assert_eq!(statuses, vec![Some(403), Some(200)]);
    let ds = h.store.decisions(&DecisionQuery::default()).unwrap().items;
    assert_eq!(
        ds[0].rule.as_deref(),
        Some("free tier may not ask for reasoning")
    );
    assert_eq!(ds[0].actions, vec!["block".to_owned()]);
    assert_eq!(ds[0].request_id, xs[0].request_id);
    // The allowed request matched no rule: no decision of its own.
    assert_eq!(ds.len(), 1);
}

#[tokio::test]
async fn shadow_rule_records_without_enforcing() {
    let policy = BLOCK_FREE.replace("status = 403", "status = 403\nmode = \"shadow\"");
    let h = harness(Some(&policy), "").await;
    let body = json!({"model": "m", "messages": [{"role": "user",
        "content": "Think step by step and show your complete chain of thought, every intermediate step, before the answer: what is 17 * 23?"}]});
    let mut req = post("/v1/chat/completions", KEY, &body);
    req.headers_mut()
        .insert("x-account-tier", "free".parse().unwrap());
    assert_eq!(call(&h, req).await.0, StatusCode::OK);
    flush(&h);
    let ds = h.store.decisions(&DecisionQuery::default()).unwrap().items;
    assert_eq!(
        ds[0].shadow,
        vec!["free tier may not ask for reasoning".to_owned()]
    );
    let metrics = h.gw.state().metrics.render();
    assert!(
        metrics.contains("moat_actions_total{action=\"block\",mode=\"shadow\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn throttle_admits_the_budget_then_answers_429_with_retry_after() {
    let policy = &throttle_policy(2);
    let h = harness(Some(policy), "").await;
    for _ in 0..2 {
        assert_eq!(
            call(&h, post("/v1/chat/completions", KEY, &chat("m", false)))
                .await
                .0,
            StatusCode::OK
        );
    }
    let (status, headers, body) =
        call(&h, post("/v1/chat/completions", KEY, &chat("m", false))).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(headers["retry-after"], "30");
    assert!(body.contains("rate_limit_error"), "{body}");
    // Another account has its own budget.
    assert_eq!(
        call(&h, post("/v1/chat/completions", KEY_BOB, &chat("m", false)))
            .await
            .0,
        StatusCode::OK
    );
}

const WITHHOLD: &str = r#"version = 1
[[rule]]
name = "withhold for everyone"
when = 'true'
action = "withhold_reasoning"
"#;

/// Withholds in a whole chat answer for each reasoning field, then echoes the answer back and
/// checks the upstream got the original reasoning.
#[tokio::test]
async fn withheld_chat_reasoning_round_trips_to_upstream() {
    let h = harness(Some(WITHHOLD), "").await;
    for model in [
        "mock-reasoning-content",
        "mock-reasoning",
        "mock-reasoning-details",
        "mock-think",
    ] {
        h.mock.clear();
        let (status, _, body) =
            call(&h, post("/v1/chat/completions", KEY, &chat(model, false))).await;
        assert_eq!(status, StatusCode::OK, "{model}: {body}");
        assert!(
            !body.contains("Let me think step by step"),
            "{model} leaked: {body}"
        );
        assert!(body.contains("moatr1."), "{model}: no token in {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        let assistant = v["choices"][0]["message"].clone();
        let second = json!({"model": model, "messages": [
            {"role": "user", "content": "What is the capital of France?"},
            assistant,
            {"role": "user", "content": "And of Italy?"}
        ]});
        let (status, _, body) = call(&h, post("/v1/chat/completions", KEY, &second)).await;
        assert_eq!(status, StatusCode::OK, "{model}: {body}");
        let reqs = h.mock.requests();
        let upstream = &reqs.last().unwrap()["body"]["messages"][1];
        assert!(
            upstream.to_string().contains("Let me think step by step"),
            "{model}: reasoning not restored upstream: {upstream}"
        );
        assert!(
            !upstream.to_string().contains("moatr1."),
            "{model}: token reached upstream"
        );
    }
    // Another account cannot use Alice's token.
    let (_, _, body) = call(
        &h,
        post(
            "/v1/chat/completions",
            KEY,
            &chat("mock-reasoning-content", false),
        ),
    )
    .await;
    let v: Value = serde_json::from_str(&body).unwrap();
    let second = json!({"model": "m", "messages": [
        {"role": "user", "content": "hi"}, v["choices"][0]["message"].clone(), {"role": "user", "content": "again"}]});
    let (status, _, body) = call(&h, post("/v1/chat/completions", KEY_BOB, &second)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("invalid_reasoning_token"), "{body}");
    flush(&h);
    // The record says what the client got: no reasoning text.
    let xs = h.store.exchanges(&ExchangeQuery::default()).unwrap().items;
    assert!(xs
        .iter()
        .all(|x| x.response.as_ref().is_none_or(|r| r.reasoning.is_none())));
}

#[tokio::test]
async fn tampered_tokens_are_rejected() {
    let h = harness(Some(WITHHOLD), "").await;
    let (_, _, body) = call(
        &h,
        post(
            "/v1/chat/completions",
            KEY,
            &chat("mock-reasoning-content", false),
        ),
    )
    .await;
    let tampered = {
        let i = body.find("moatr1.").unwrap() + 12;
        let mut b = body.into_bytes();
        b[i] = if b[i] == b'A' { b'B' } else { b'A' };
        String::from_utf8(b).unwrap()
    };
    let v: Value = serde_json::from_str(&tampered).unwrap();
    let second = json!({"model": "m", "messages": [
        {"role": "user", "content": "hi"}, v["choices"][0]["message"].clone(), {"role": "user", "content": "again"}]});
    let before = h.mock.requests().len();
    let (status, _, body) = call(&h, post("/v1/chat/completions", KEY, &second)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("tampered"), "{body}");
    assert_eq!(h.mock.requests().len(), before);
}

#[tokio::test]
async fn streams_pass_unchanged_when_allowed() {
    let h = harness(None, "").await;
    let mut body = chat("mock-reasoning-content", true);
    body["stream_options"] = json!({"include_usage": true});
    let (status, headers, text) = call(&h, post("/v1/chat/completions", KEY, &body)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let events = parse_sse(&text);
    assert_eq!(events.last().unwrap().data, "[DONE]");
    // The reasoning deltas reached the client as upstream sent them.
    let reasoning: String = events
        .iter()
        .filter_map(|e| e.json())
        .filter_map(|v| {
            v["choices"][0]["delta"]["reasoning_content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert!(reasoning.starts_with("Let me think step by step"), "{text}");
    flush(&h);
    let x = &h.store.exchanges(&ExchangeQuery::default()).unwrap().items[0];
    let r = x.response.as_ref().unwrap();
    assert_eq!(
        r.content.as_deref(),
        Some(moat_testkit::text::expected_content(2, 8).as_str())
    );
    assert!(r
        .reasoning
        .as_deref()
        .unwrap()
        .starts_with("Let me think step by step"));
    assert!(r.completion_tokens.is_some());
}

#[tokio::test]
async fn anthropic_thinking_is_withheld_in_streams_and_restored_with_its_signature() {
    let h = harness(Some(WITHHOLD), "").await;
    let body = json!({"model": "mock-reasoning", "max_tokens": 1024, "stream": true,
        "messages": [{"role": "user", "content": "What is the capital of France?"}]});
    let req = Request::post("/v1/messages")
        .header("content-type", "application/json")
        .header("x-api-key", KEY)
        .header("anthropic-version", "2023-06-01")
        .body(Body::from(body.to_string()))
        .unwrap();
    let (status, _, text) = call(&h, req).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(
        !text.contains("Let me think step by step"),
        "leaked: {text}"
    );
    let events = parse_sse(&text);
    let redacted = events
        .iter()
        .filter_map(|e| e.json())
        .find(|v| {
            v["type"] == "content_block_start" && v["content_block"]["type"] == "redacted_thinking"
        })
        .expect("a redacted_thinking block");
    let token = redacted["content_block"]["data"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(events
        .iter()
        .any(|e| e.event.as_deref() == Some("message_stop")));
    // Echo the block back in the next turn.
    let second = json!({"model": "mock-reasoning", "max_tokens": 1024, "messages": [
        {"role": "user", "content": "What is the capital of France?"},
        {"role": "assistant", "content": [
            {"type": "redacted_thinking", "data": token},
            {"type": "text", "text": "Paris."}]},
        {"role": "user", "content": "And Italy?"}]});
    let req = Request::post("/v1/messages")
        .header("content-type", "application/json")
        .header("x-api-key", KEY)
        .body(Body::from(second.to_string()))
        .unwrap();
    let (status, _, text) = call(&h, req).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let reqs = h.mock.requests();
    let block = &reqs.last().unwrap()["body"]["messages"][1]["content"][0];
    assert_eq!(block["type"], "thinking");
    assert_eq!(block["signature"], moat_testkit::text::SIGNATURE);
    assert!(block["thinking"]
        .as_str()
        .unwrap()
        .starts_with("Let me think step by step"));
}

#[tokio::test]
async fn token_budget_cuts_a_stream_cleanly() {
    let policy = r#"version = 1
[[rule]]
name = "tight budget"
when = 'true'
action = "throttle"
tokens_per_minute = 3
"#;
    let h = harness(Some(policy), "").await;
    let mut req = post("/v1/chat/completions", KEY, &chat("mock-plain", true));
    req.headers_mut()
        .insert("x-mock-chunks", "64".parse().unwrap());
    let (status, _, text) = call(&h, req).await;
    assert_eq!(status, StatusCode::OK);
    let events = parse_sse(&text);
    assert_eq!(events.last().unwrap().data, "[DONE]", "{text}");
    let finish = events
        .iter()
        .filter_map(|e| e.json())
        .filter_map(|v| v["choices"][0]["finish_reason"].as_str().map(str::to_owned))
        .collect::<Vec<_>>();
    assert_eq!(finish, vec!["length".to_owned()], "{text}");
    // Fewer deltas than upstream sent reached the client.
    let deltas = events
        .iter()
        .filter(|e| e.data.contains("\"content\""))
        .count();
    assert!(deltas < 64, "{deltas}");
    let metrics = h.gw.state().metrics.render();
    assert!(metrics.contains("moat_streams_cut_total 1"), "{metrics}");
    // The budget is spent: the next request waits.
    let (status, _, _) = call(&h, post("/v1/chat/completions", KEY, &chat("m", false))).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    flush(&h);
    let x = &h.store.exchanges(&ExchangeQuery::default()).unwrap().items[0];
    assert_eq!(
        x.response.as_ref().unwrap().finish_reason.as_deref(),
        Some("length")
    );
}

#[tokio::test]
async fn upstream_failures_are_shaped_errors() {
    let h = harness(None, "").await;
    let mut req = post("/v1/chat/completions", KEY, &chat("m", false));
    req.headers_mut()
        .insert("x-mock-status", "503".parse().unwrap());
    let (status, _, _) = call(&h, req).await;
    // The upstream's own error passes through as it is.
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    // A stream the upstream drops ends cleanly for the client.
    let mut req = post("/v1/chat/completions", KEY, &chat("m", true));
    req.headers_mut()
        .insert("x-mock-drop-after", "2".parse().unwrap());
    let (status, _, text) = call(&h, req).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(parse_sse(&text).last().unwrap().data, "[DONE]", "{text}");
    // An upstream that is gone.
    let dead = harness(None, "").await;
    let port = dead.mock.addr().port();
    drop(dead);
    let cfg_text = format!(
        "version = 1\n[upstream]\nurl = \"http://127.0.0.1:{port}\"\n[[identity.keys]]\nsha256 = \"{}\"\naccount = \"a\"\n[admin]\naddr = \"127.0.0.1:1\"\n",
        hash_key(KEY)
    );
    let cfg = Config::parse(&cfg_text, "t").unwrap();
    let gw = Gateway::build_with_store(&cfg, Arc::new(SqliteStore::in_memory().unwrap())).unwrap();
    let resp = gw
        .router()
        .oneshot(post("/v1/chat/completions", KEY, &chat("m", false)))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
    let metrics = gw.state().metrics.render();
    assert!(
        metrics.contains("moat_upstream_errors_total{kind=\"connect\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn engine_standing_reaches_the_policy() {
    let policy = r#"version = 1
[[rule]]
name = "risky accounts"
when = 'account.risk >= 0.1'
action = "block"
status = 403
"#;
    let h = harness(Some(policy), "").await;
    let cot = json!({"model": "m", "messages": [{"role": "user",
        "content": "Explain your reasoning step by step and show your full chain of thought before giving the final answer: prove that the square root of 2 is irrational."}]});
    let mut blocked = false;
    for _ in 0..40 {
        let (status, _, _) = call(&h, post("/v1/chat/completions", KEY, &cot)).await;
        if status == StatusCode::FORBIDDEN {
            blocked = true;
            break;
        }
        // The engine folds requests on its own thread; give it a moment.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(blocked, "the engine never raised the account's risk");
    // Bob, who asked nothing, is not affected.
    assert_eq!(
        call(&h, post("/v1/chat/completions", KEY_BOB, &chat("m", false)))
            .await
            .0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn admin_api_needs_the_token_and_reload_keeps_the_old_rules_on_error() {
    let h = harness(Some(BLOCK_FREE), "").await;
    let admin = h.gw.admin_router();
    let get = |path: &str, token: Option<&str>| {
        let mut b = Request::get(path);
        if let Some(t) = token {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        b.body(Body::empty()).unwrap()
    };
    let resp = admin.clone().oneshot(get("/health", None)).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = admin
        .clone()
        .oneshot(get("/admin/accounts", None))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = admin
        .clone()
        .oneshot(get("/admin/accounts", Some("wrong")))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = admin.clone().oneshot(get("/metrics", None)).await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);

    call(&h, post("/v1/chat/completions", KEY, &chat("m", false))).await;
    // The engine publishes the account shortly after its request.
    let mut found = false;
    for _ in 0..100 {
        let resp = admin
            .clone()
            .oneshot(get("/admin/accounts", Some(ADMIN)))
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let v: Value =
            serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
        if v["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["account_id"] == "acct_alice")
        {
            found = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(found);

    // A broken policy file is rejected with its line; the old rules keep running.
    let path = h.dir.path().join("policy.toml");
    std::fs::write(&path, BLOCK_FREE.replace("attr.tier", "attr.tier ==")).unwrap();
    let req = Request::post("/admin/policy/reload")
        .header("authorization", format!("Bearer {ADMIN}"))
        .body(Body::empty())
        .unwrap();
    let resp = admin.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let v: Value =
        serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert!(
        v["error"].as_str().unwrap().contains("policy.toml:5:"),
        "{v}"
    );
    assert_eq!(h.gw.state().rules.current().len(), 1);
    let resp = admin
        .clone()
        .oneshot(get("/admin/policy", Some(ADMIN)))
        .await
        .unwrap();
    let v: Value =
        serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(v["rules"][0]["name"], "free tier may not ask for reasoning");
    assert!(v["last_error"].is_string());
    // The reload is in the audit log.
    let resp = admin
        .clone()
        .oneshot(get("/admin/audit", Some(ADMIN)))
        .await
        .unwrap();
    let v: Value =
        serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(v["items"][0]["action"], "policy_reload");
    // Metrics with the token: overhead histogram and requests.
    let resp = admin
        .clone()
        .oneshot(get("/metrics", Some(ADMIN)))
        .await
        .unwrap();
    let text = String::from_utf8(
        resp.into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    assert!(text.contains("moat_overhead_seconds_count"), "{text}");
    assert!(text.contains("moat_recorder_written_total"), "{text}");
    assert!(!text.contains("acct_alice"));
}

#[test]
fn sample_config_and_policy_in_examples_load() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/serve");
    let cfg = Config::load(&root.join("moat.toml")).unwrap();
    let policy = cfg.policy.file.clone().unwrap();
    let text = std::fs::read_to_string(&policy).unwrap();
    let p = moat_policy::Policy::parse(&text, "policy.toml").unwrap();
    assert_eq!(p.len(), 5);
    // The demo key in the sample is the digest of the key the README uses.
    assert_eq!(cfg.identity.keys[0].sha256, hash_key("sk-moat-demo"));
}

#[tokio::test]
async fn records_spilled_by_an_earlier_run_are_imported_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let spill = dir.path().join("spill");
    std::fs::create_dir_all(&spill).unwrap();
    let line = json!({"v": 1, "ts": "2026-04-01T12:00:00Z", "request_id": "req_spilled",
        "account_id": "acct_x", "request": {"messages": [{"role": "user", "content": "hi"}]}});
    std::fs::write(spill.join("exchanges.spill.jsonl"), format!("{line}\n")).unwrap();
    let text = format!(
        "version = 1\n[upstream]\nurl = \"http://127.0.0.1:9\"\n[admin]\naddr = \"127.0.0.1:1\"\n[store]\nspill_dir = {:?}\n",
        spill.display().to_string()
    );
    let cfg = Config::parse(&text, "t").unwrap();
    let store = Arc::new(SqliteStore::in_memory().unwrap());
    let _gw = Gateway::build_with_store(&cfg, store.clone()).unwrap();
    let xs = store.exchanges(&ExchangeQuery::default()).unwrap().items;
    assert_eq!(xs.len(), 1);
    assert_eq!(xs[0].request_id.as_deref(), Some("req_spilled"));
    assert!(!spill.join("exchanges.spill.jsonl").exists());
    let set_aside = std::fs::read_dir(&spill).unwrap().count();
    assert_eq!(set_aside, 1);
}

#[tokio::test]
async fn a_restarted_gateway_replays_the_store_into_the_engine() {
    let h = harness(None, "").await;
    call(
        &h,
        post("/v1/chat/completions", KEY, &chat("mock-plain", false)),
    )
    .await;
    flush(&h);
    // A second gateway on the same store knows the account before its next request.
    let text = format!(
        "version = 1\n[upstream]\nurl = \"{}\"\n[admin]\naddr = \"127.0.0.1:1\"\n[store]\nspill_dir = {:?}\n",
        h.mock.origin(),
        h.dir.path().join("spill2").display().to_string()
    );
    let cfg = Config::parse(&text, "t").unwrap();
    let again = Gateway::build_with_store(&cfg, h.store.clone()).unwrap();
    let mut known = false;
    for _ in 0..200 {
        if again
            .state()
            .engine
            .published()
            .standing("acct_alice")
            .is_some()
        {
            known = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(known);
    // Without replay it starts empty.
    let cfg = Config::parse(&format!("{text}[engine]\nreplay_hours = 0\n"), "t").unwrap();
    let empty = Gateway::build_with_store(&cfg, h.store.clone()).unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(empty
        .state()
        .engine
        .published()
        .standing("acct_alice")
        .is_none());
}

/// A store whose appends fail while `down` is set; everything else is SQLite's.
struct Outage {
    inner: SqliteStore,
    down: std::sync::atomic::AtomicBool,
}

impl Store for Outage {
    fn append_exchanges(
        &self,
        batch: &[moat_types::Exchange],
    ) -> Result<moat_store::AppendReport, moat_store::StoreError> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(moat_store::StoreError::Unavailable("test outage".into()));
        }
        self.inner.append_exchanges(batch)
    }
    fn append_decisions(
        &self,
        batch: &[moat_store::DecisionRecord],
    ) -> Result<moat_store::AppendReport, moat_store::StoreError> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(moat_store::StoreError::Unavailable("test outage".into()));
        }
        self.inner.append_decisions(batch)
    }
    fn exchanges(
        &self,
        q: &ExchangeQuery,
    ) -> Result<moat_store::Page<moat_types::Exchange>, moat_store::StoreError> {
        self.inner.exchanges(q)
    }
    fn decisions(
        &self,
        q: &DecisionQuery,
    ) -> Result<moat_store::Page<moat_store::DecisionRecord>, moat_store::StoreError> {
        self.inner.decisions(q)
    }
    fn count_exchanges(&self) -> Result<u64, moat_store::StoreError> {
        self.inner.count_exchanges()
    }
    fn account_summaries(
        &self,
        q: &moat_store::AccountQuery,
    ) -> Result<moat_store::Page<moat_store::AccountSummary>, moat_store::StoreError> {
        self.inner.account_summaries(q)
    }
    fn append_audit(&self, e: &moat_store::AuditEntry) -> Result<(), moat_store::StoreError> {
        self.inner.append_audit(e)
    }
    fn audit(
        &self,
        q: &moat_store::AuditQuery,
    ) -> Result<moat_store::Page<moat_store::AuditEntry>, moat_store::StoreError> {
        self.inner.audit(q)
    }
    fn export_exchanges(
        &self,
        since: Option<moat_types::Timestamp>,
        sink: &mut moat_store::ExportSink<'_>,
    ) -> Result<u64, moat_store::StoreError> {
        self.inner.export_exchanges(since, sink)
    }
    fn schema_version(&self) -> Result<u32, moat_store::StoreError> {
        self.inner.schema_version()
    }
}

#[tokio::test]
async fn a_failing_store_spills_when_open_and_refuses_when_closed() {
    for mode in ["open", "closed"] {
        let mock = moat_testkit::start(MockConfig::default()).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "version = 1\n[upstream]\nurl = \"{}\"\n[admin]\naddr = \"127.0.0.1:1\"\n[[identity.keys]]\nsha256 = \"{}\"\naccount = \"a\"\n[store]\nspill_dir = {:?}\n[failure]\nmode = \"{mode}\"\n",
            mock.origin(),
            hash_key(KEY),
            dir.path().join("spill").display().to_string()
        );
        let cfg = Config::parse(&text, "t").unwrap();
        let store = Arc::new(Outage {
            inner: SqliteStore::in_memory().unwrap(),
            down: true.into(),
        });
        let gw = Gateway::build_with_store(&cfg, store.clone()).unwrap();
        let send = || {
            gw.router()
                .oneshot(post("/v1/chat/completions", KEY, &chat("m", false)))
        };
        assert_eq!(send().await.unwrap().status(), StatusCode::OK);
        // The first record meets the outage.
        assert!(gw.state().recorder.flush(Duration::from_secs(20)));
        assert!(!gw.state().recorder.store_available());
        let expected = if mode == "open" {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        let resp = send().await.unwrap();
        assert_eq!(resp.status(), expected, "{mode}");
        // The store comes back; the next write succeeds and requests flow again.
        store.down.store(false, std::sync::atomic::Ordering::SeqCst);
        gw.state()
            .recorder
            .record_decision(moat_store::DecisionRecord {
                ts: moat_types::Timestamp::from_millis(0),
                request_id: None,
                account_id: "probe".into(),
                campaign_id: None,
                rule: None,
                actions: vec![],
                shadow: vec![],
                risk: 0.0,
                enforced: true,
                detail: None,
            });
        assert!(gw.state().recorder.flush(Duration::from_secs(20)));
        assert!(gw.state().recorder.store_available());
        assert_eq!(send().await.unwrap().status(), StatusCode::OK, "{mode}");
        // Nothing was lost: what the store refused is in the spill files.
        let spilled = gw.state().recorder.stats().spilled;
        assert_eq!(spilled, 1, "the first exchange met the outage");
    }
}

const SUMMARIZE: &str = r#"version = 1
[[rule]]
name = "summaries for everyone"
when = 'true'
action = "summarize_reasoning"
fallback = "withhold_reasoning"
"#;

#[tokio::test]
async fn summarized_reasoning_shows_the_summarizers_answer_and_falls_back_when_it_fails() {
    // The mock doubles as the summarizer: its chat answer is the summary.
    let mock = moat_testkit::start(MockConfig::default()).await.unwrap();
    let extra = format!(
        "[reasoning]\nsummarizer_url = \"{}\"\nsummarizer_model = \"mock-plain\"\nsummarizer_timeout_ms = 5000\n",
        mock.origin()
    );
    let h = harness(Some(SUMMARIZE), &extra).await;
    let (status, _, body) = call(
        &h,
        post(
            "/v1/chat/completions",
            KEY,
            &chat("mock-reasoning-content", false),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(!body.contains("Let me think step by step"), "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    let msg = &v["choices"][0]["message"];
    assert_eq!(
        msg["reasoning_content"],
        moat_testkit::text::expected_content(2, 8),
        "{msg}"
    );
    assert!(msg.to_string().contains("moatr1."), "{msg}");
    // The summarizer was asked with the reasoning itself.
    let asked = mock.requests();
    assert!(asked[0]["body"]
        .to_string()
        .contains("Let me think step by step"));
    // Streams wait for the summary where the reasoning ended, then go on.
    let (status, _, text) = call(
        &h,
        post(
            "/v1/chat/completions",
            KEY,
            &chat("mock-reasoning-content", true),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(!text.contains("Let me think step by step"), "{text}");
    assert!(
        text.contains(&moat_testkit::text::expected_content(2, 8)),
        "{text}"
    );
    assert_eq!(parse_sse(&text).last().unwrap().data, "[DONE]");
    // A summarizer that is down: the rule's fallback (withhold) applies.
    let dead = "[reasoning]\nsummarizer_url = \"http://127.0.0.1:9\"\nsummarizer_model = \"m\"\nsummarizer_timeout_ms = 500\n";
    let h = harness(Some(SUMMARIZE), dead).await;
    let (status, _, body) = call(
        &h,
        post(
            "/v1/chat/completions",
            KEY,
            &chat("mock-reasoning-content", false),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(!body.contains("Let me think step by step"), "{body}");
    assert!(body.contains("moatr1."), "{body}");
    let metrics = h.gw.state().metrics.render();
    assert!(
        metrics.contains("moat_summary_fallbacks_total 1"),
        "{metrics}"
    );
}

/// A policy that throttles every account to `rpm` requests per minute.
fn throttle_policy(rpm: u32) -> String {
    format!(
        "version = 1\n[[rule]]\nname = \"everyone\"\nwhen = 'true'\naction = \"throttle\"\nrequests_per_minute = {rpm}\n"
    )
}

/// The Redis URL of `.ci/run`'s local server, or `None` (the test then says it skipped).
fn redis_url() -> Option<String> {
    let url = std::env::var("MOAT_TEST_REDIS")
        .ok()
        .filter(|v| !v.is_empty());
    if url.is_none() {
        eprintln!("skipped: MOAT_TEST_REDIS is not set (a Redis URL)");
    }
    url
}

/// A key prefix no other test (or earlier run) uses.
fn fresh_prefix(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("moat-test:{name}:{}:{nanos}:", std::process::id())
}

fn redis_throttle(prefix: &str) -> String {
    format!(
        "[throttle]\nbackend = \"redis\"\nredis_url_env = \"MOAT_TEST_REDIS\"\nkey_prefix = \"{prefix}\"\ntimeout_ms = 1000\n"
    )
}

#[tokio::test]
async fn shared_throttle_holds_one_budget_across_two_gateways() {
    let Some(_) = redis_url() else { return };
    let policy = &throttle_policy(3);
    let throttle = redis_throttle(&fresh_prefix("two-gateways"));
    let one = harness(Some(policy), &throttle).await;
    let two = harness(Some(policy), &throttle).await;
    // Three requests of one account, spread over both gateways, use up its budget…
    for h in [&one, &two, &one] {
        let (status, _, body) = call(h, post("/v1/chat/completions", KEY, &chat("m", false))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    // …so the fourth is refused by either of them.
    for h in [&two, &one] {
        let (status, headers, body) =
            call(h, post("/v1/chat/completions", KEY, &chat("m", false))).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
        let wait: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=20).contains(&wait), "{wait}");
    }
    // Another account has its own budget.
    let (status, _, _) = call(
        &two,
        post("/v1/chat/completions", KEY_BOB, &chat("m", false)),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        one.gw.state().metrics.throttle_unavailable.get(),
        0,
        "Redis answered every call"
    );
}

#[tokio::test]
async fn shared_token_budget_is_charged_by_every_gateway() {
    let Some(url) = redis_url() else { return };
    use moat_gateway::limit::Limits;
    use moat_gateway::shared_limit::SharedLimiter;
    let prefix = fresh_prefix("tokens");
    let a = SharedLimiter::new(&url, &prefix, Duration::from_secs(1)).unwrap();
    let b = SharedLimiter::new(&url, &prefix, Duration::from_secs(1)).unwrap();
    let lim = Limits {
        requests_per_minute: None,
        tokens_per_minute: Some(100),
    };
    assert_eq!(a.admit("c:C-1", lim).await.unwrap(), Ok(()));
    assert!(a.charge("c:C-1", 60).await.unwrap());
    // The other gateway's stream spends the rest: it is told to cut.
    assert!(!b.charge("c:C-1", 60).await.unwrap());
    let refused = b.admit("c:C-1", lim).await.unwrap().unwrap_err();
    assert!(refused.retry_after >= 12, "{refused:?}");
    // A scope never admitted is not limited.
    assert!(a.charge("c:nobody", 1_000_000).await.unwrap());
}

#[tokio::test]
async fn unreachable_redis_serves_on_local_buckets_or_refuses_by_fail_mode() {
    // Nothing listens on port 1: every shared call fails fast.
    let var = format!("MOAT_TEST_REDIS_DOWN_{}", std::process::id());
    std::env::set_var(&var, "redis://127.0.0.1:1/");
    let policy = &throttle_policy(2);
    let throttle =
        format!("[throttle]\nbackend = \"redis\"\nredis_url_env = \"{var}\"\ntimeout_ms = 200\n");
    let open = harness(Some(policy), &throttle).await;
    // Fail open: the local buckets take over, limits included.
    for _ in 0..2 {
        let (status, _, body) =
            call(&open, post("/v1/chat/completions", KEY, &chat("m", false))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, _, _) = call(&open, post("/v1/chat/completions", KEY, &chat("m", false))).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(open.gw.state().metrics.throttle_unavailable.get() >= 3);

    let closed = harness(
        Some(policy),
        &format!("{throttle}[failure]\nmode = \"closed\"\n"),
    )
    .await;
    let (status, _, body) = call(
        &closed,
        post("/v1/chat/completions", KEY, &chat("m", false)),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body.contains("throttle_unavailable"), "{body}");
    assert!(
        !body.contains("127.0.0.1:1"),
        "the URL stays out of answers: {body}"
    );
}

/// Imports one indicator of a user agent for `source` into the intel database at `db`.
fn import_user_agent(db: &std::path::Path, source: &str, n: u32, user_agent: &str) {
    let mut intel = moat_taxii::intel_db::IntelDb::open(db).unwrap();
    let indicator = json!({
        "type": "indicator", "spec_version": "2.1",
        "id": format!("indicator--{n:08x}-17d4-4cbf-938f-98ee46b3cd3f"),
        "created": "2026-03-01T00:00:00.000Z", "modified": "2026-03-01T00:00:00.000Z",
        "pattern": format!(
            "[network-traffic:extensions.'http-request-ext'.request_header.'User-Agent' = '{user_agent}']"
        ),
        "pattern_type": "stix", "valid_from": "2026-03-01T00:00:00Z"
    });
    let provenance = moat_taxii::intel_db::Provenance {
        source: source.to_owned(),
        url: "https://taxii.peer.invalid/api/".to_owned(),
        collection: "91a7b528-80eb-42ed-a74d-c6fbd5a26116".to_owned(),
        pulled_at: "2026-03-02T00:00:00Z".to_owned(),
        added_after: None,
    };
    intel.import(&provenance, &[indicator], None).unwrap();
}

#[tokio::test]
async fn a_partners_indicator_drives_the_policy_and_a_new_import_is_reloaded() {
    let intel_dir = tempfile::tempdir().unwrap();
    let db = intel_dir.path().join("intel.db");
    import_user_agent(&db, "peer", 1, "distill-bot/1.0");
    let policy = r#"version = 1
[[rule]]
name = "peer intel"
when = '"peer" in intel.sources and "user_agent" in intel.kinds'
action = "block"
message = "refused: a partner reported this client"
"#;
    let h = harness(
        Some(policy),
        &format!("[intel]\ndb = {:?}\n", db.display().to_string()),
    )
    .await;
    let with_agent = |ua: &str| {
        let mut req = post("/v1/chat/completions", KEY, &chat("m", false));
        req.headers_mut().insert("user-agent", ua.parse().unwrap());
        req
    };
    let (status, _, body) = call(&h, with_agent("distill-bot/1.0")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("a partner reported this client"), "{body}");
    let (status, _, _) = call(&h, with_agent("OpenAI/Python 1.82.0")).await;
    assert_eq!(status, StatusCode::OK);

    let admin = h.gw.admin_router();
    let admin_req = |method: &str, path: &str| {
        Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {ADMIN}"))
            .body(Body::empty())
            .unwrap()
    };
    let read = |resp: axum::response::Response| async move {
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice::<Value>(&bytes).unwrap()
    };
    let status = read(
        admin
            .clone()
            .oneshot(admin_req("GET", "/admin/intel"))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status["enabled"], true, "{status}");
    assert_eq!(status["indicators"], 1, "{status}");
    assert_eq!(status["sources"][0]["source"], "peer", "{status}");
    // The dashboard's intel page: requests matched per source, the imports with provenance.
    assert_eq!(status["matches"]["peer"], 1, "{status}");
    assert_eq!(status["imports"][0]["source"], "peer", "{status}");
    assert_eq!(
        status["imports"][0]["url"], "https://taxii.peer.invalid/api/",
        "{status}"
    );

    // A second import is in force after a reload (housekeeping would do it within
    // reload_interval_ms).
    import_user_agent(&db, "peer", 2, "harvester/2.0");
    let (status, _, _) = call(&h, with_agent("harvester/2.0")).await;
    assert_eq!(status, StatusCode::OK, "not loaded yet");
    let reloaded = read(
        admin
            .clone()
            .oneshot(admin_req("POST", "/admin/intel/reload"))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(reloaded["reloaded"], true, "{reloaded}");
    assert_eq!(reloaded["indicators"], 2, "{reloaded}");
    let (status, _, _) = call(&h, with_agent("harvester/2.0")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // The decisions say which partner's indicator decided; the metric counts by source.
    flush(&h);
    let ds = h.store.decisions(&DecisionQuery::default()).unwrap().items;
    let blocked: Vec<_> = ds
        .iter()
        .filter(|d| d.rule.as_deref() == Some("peer intel"))
        .collect();
    assert_eq!(blocked.len(), 2);
    for d in blocked {
        let detail = d.detail.as_deref().unwrap();
        assert!(
            detail.starts_with("intel: peer indicator--") && detail.ends_with("(UserAgent)"),
            "{detail}"
        );
    }
    let resp = admin
        .clone()
        .oneshot(admin_req("GET", "/metrics"))
        .await
        .unwrap();
    let text = String::from_utf8(
        resp.into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    assert!(
        text.contains("moat_intel_matches_total{source=\"peer\"} 2"),
        "{text}"
    );
}

#[tokio::test]
async fn the_dashboard_is_served_on_the_admin_listener_and_its_data_needs_the_token() {
    let h = harness(None, "").await;
    let admin = h.gw.admin_router();
    let resp = admin
        .clone()
        .oneshot(Request::get("/ui/").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("frame-ancestors 'none'"));
    let resp = admin
        .clone()
        .oneshot(
            Request::get("/admin/campaigns")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);

    // The overview's timeline counts the requests just made, aggregated server-side.
    for _ in 0..3 {
        call(&h, post("/v1/chat/completions", KEY, &chat("m", false))).await;
    }
    let resp = admin
        .clone()
        .oneshot(
            Request::get("/admin/timeline?span_s=600&step_s=60")
                .header("authorization", format!("Bearer {ADMIN}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let v: Value =
        serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(v["step_ms"], 60_000);
    assert_eq!(v["requests"].as_array().unwrap().len(), 10);
    let total: u64 = v["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert_eq!(total, 3, "{v}");
    let resp = admin
        .oneshot(
            Request::get("/admin/timeline?span_s=ten")
                .header("authorization", format!("Bearer {ADMIN}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn an_applied_reload_is_posted_to_the_webhook_and_deliveries_are_visible() {
    use std::sync::Mutex;
    // A webhook receiver on a free port; the secret part of its URL is the path.
    let received: Arc<Mutex<Vec<Value>>> = Arc::default();
    let sink = Arc::clone(&received);
    let app = axum::Router::new().route(
        "/hooks/secret-token-5f1c",
        axum::routing::post(move |body: axum::body::Bytes| {
            let sink = Arc::clone(&sink);
            async move {
                sink.lock()
                    .unwrap()
                    .push(serde_json::from_slice(&body).unwrap());
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let url_env = format!("MOAT_TEST_WEBHOOK_{}", std::process::id());
    std::env::set_var(&url_env, format!("http://{addr}/hooks/secret-token-5f1c"));

    let h = harness(
        Some(BLOCK_FREE),
        &format!(
            "[alerts]\n[[alerts.webhook]]\nname = \"soc\"\nformat = \"json\"\nurl_env = \"{url_env}\"\nmin_interval_ms = 0\n"
        ),
    )
    .await;
    h.gw.state().alerting.start();
    let admin = h.gw.admin_router();
    let req = Request::post("/admin/policy/reload")
        .header("authorization", format!("Bearer {ADMIN}"))
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        admin.clone().oneshot(req).await.unwrap().status(),
        StatusCode::OK
    );
    let mut got = Vec::new();
    for _ in 0..200 {
        got = received.lock().unwrap().clone();
        if !got.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(got.len(), 1, "{got:?}");
    let alert = &got[0]["alerts"][0];
    assert_eq!(alert["kind"], "action_applied", "{alert}");
    assert_eq!(alert["action"]["action"], "policy_reload", "{alert}");
    assert_eq!(alert["action"]["actor"], "admin", "{alert}");

    let get = |path: &str| {
        Request::get(path)
            .header("authorization", format!("Bearer {ADMIN}"))
            .body(Body::empty())
            .unwrap()
    };
    let mut status = Value::Null;
    for _ in 0..200 {
        let resp = admin.clone().oneshot(get("/admin/alerts")).await.unwrap();
        status =
            serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
        if status["stats"]["webhooks"][0]["delivered"] == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(status["stats"]["webhooks"][0]["delivered"], 1, "{status}");
    let resp = admin.clone().oneshot(get("/metrics")).await.unwrap();
    let text = String::from_utf8(
        resp.into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    assert!(
        text.contains("moat_alerts_delivered_total{webhook=\"soc\"} 1"),
        "{text}"
    );
    // The webhook's secret path appears nowhere an operator or a scraper can read.
    assert!(!status.to_string().contains("secret-token-5f1c"));
    assert!(!text.contains("secret-token-5f1c"));
}

//! Policy actions from the dashboard (`/admin/actions`) through the gateway's routers against
//! the testkit's mock upstream: a campaign blocked at once and released on revert, kept in
//! front of the policy file across reloads and rejections, audited; bad requests refused;
//! account actions saved to the actions file and back after a restart; a damaged file stops
//! the start.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use moat_bus::StandingUpdate;
use moat_gateway::identity::hash_key;
use moat_gateway::{Config, Gateway};
use moat_store::{DecisionQuery, SqliteStore, Store};
use moat_testkit::{MockConfig, MockServer};
use moat_types::{AccountDetection, CampaignDetection};
use serde_json::{json, Value};
use tower::ServiceExt;

const KEY: &str = "sk-test-alice";
const KEY_BOB: &str = "sk-test-bob";
const ADMIN: &str = "admin-secret-token";

/// A file policy that never matches the test's requests, so that what decides is the
/// dashboard's action.
const POLICY: &str = r#"version = 1
[[rule]]
name = "file: block the red tier"
when = 'attr.tier == "red"'
action = "block"
"#;

struct Harness {
    gw: Gateway,
    store: Arc<SqliteStore>,
    mock: MockServer,
    dir: tempfile::TempDir,
    config: String,
}

/// A gateway with [`POLICY`] as its policy file, `actions` as `[policy] actions_file` (a
/// file name in the test's folder) and these extra lines.
async fn harness(actions: Option<&str>, extra: &str) -> Harness {
    let mock = moat_testkit::start(MockConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, POLICY).unwrap();
    let actions_line = actions.map_or_else(String::new, |a| {
        format!(
            "actions_file = {:?}\n",
            dir.path().join(a).display().to_string()
        )
    });
    // Named per test run, so parallel test binaries do not share it.
    let token_env = format!("MOAT_TEST_ADMIN_{}", std::process::id());
    std::env::set_var(&token_env, ADMIN);
    let config = format!(
        r#"version = 1
[upstream]
url = "{origin}"
[identity]
headers = {{ tier = "x-account-tier" }}
[[identity.keys]]
sha256 = "{alice}"
account = "acct_alice"
[[identity.keys]]
sha256 = "{bob}"
account = "acct_bob"
[admin]
token_env = "{token_env}"
addr = "127.0.0.1:1"
[store]
spill_dir = {spill:?}
[policy]
file = {policy:?}
{actions_line}
{extra}
"#,
        origin = mock.origin(),
        alice = hash_key(KEY),
        bob = hash_key(KEY_BOB),
        spill = dir.path().join("spill").display().to_string(),
        policy = policy.display().to_string(),
    );
    let cfg = Config::parse(&config, "test.toml").unwrap();
    let store = Arc::new(SqliteStore::in_memory().unwrap());
    let gw = Gateway::build_with_store(&cfg, store.clone()).unwrap();
    Harness {
        gw,
        store,
        mock,
        dir,
        config,
    }
}

/// `[engine] source = "bus"`: no engine thread, so the test sets the standings itself, as the
/// consolidator's watcher would. The bus is never contacted (the routers are driven
/// directly and `watch_standings` is not started).
fn remote_engine() -> String {
    let env = format!("MOAT_TEST_NATS_{}", std::process::id());
    std::env::set_var(&env, "nats://127.0.0.1:1");
    format!("[engine]\nsource = \"bus\"\n[bus]\nurl_env = \"{env}\"\n")
}

fn chat(model: &str) -> Value {
    json!({"model": model, "messages": [
        {"role": "user", "content": "What is the capital of France?"}
    ]})
}

/// One API request as `key`: its status and body.
async fn ask(gw: &Gateway, key: &str, body: &Value) -> (StatusCode, String) {
    let req = Request::post("/v1/chat/completions")
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {key}"))
        .body(Body::from(body.to_string()))
        .unwrap();
    let resp = gw.router().oneshot(req).await.unwrap();
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

/// One admin request with the token (`raw` as the body when given, else `body` as JSON).
async fn admin_raw(
    gw: &Gateway,
    method: &str,
    path: &str,
    raw: Option<String>,
) -> (StatusCode, Value) {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {ADMIN}"))
        .header("content-type", "application/json")
        .body(raw.map_or_else(Body::empty, Body::from))
        .unwrap();
    let resp = gw.admin_router().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let v = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, v)
}

async fn admin(gw: &Gateway, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    admin_raw(gw, method, path, body.map(|b| b.to_string())).await
}

fn block(kind: &str, id: &str) -> Value {
    json!({"target": {"kind": kind, "id": id}, "action": "block"})
}

/// Campaign C-0007 with Alice in it; Bob is known, in no campaign.
fn detect_campaign(gw: &Gateway) {
    let engine = &gw.state().engine;
    engine.apply(StandingUpdate::Campaign(CampaignDetection {
        campaign_id: "C-0007".to_owned(),
        accounts: vec!["acct_alice".to_owned()],
        score: 0.9,
        first_detected_at: None,
        signals: Vec::new(),
    }));
    for (account, campaign) in [("acct_alice", Some("C-0007")), ("acct_bob", None)] {
        engine.apply(StandingUpdate::Account(AccountDetection {
            account_id: account.to_owned(),
            risk: 0.9,
            flagged: campaign.is_some(),
            flagged_at: None,
            campaign_id: campaign.map(str::to_owned),
            reasons: Vec::new(),
        }));
    }
}

#[tokio::test]
async fn a_campaign_block_applies_at_once_survives_reloads_and_reverts() {
    let h = harness(None, &remote_engine()).await;
    detect_campaign(&h.gw);
    assert_eq!(ask(&h.gw, KEY, &chat("m")).await.0, StatusCode::OK);

    let (status, v) = admin(&h.gw, "GET", "/admin/actions", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v, json!({"persistent": false, "items": []}));

    // Apply: 201 with the action, in force for the member's next request.
    let mut body = block("campaign", "C-0007");
    body["note"] = json!("ticket 42");
    let (status, applied) = admin(&h.gw, "POST", "/admin/actions", Some(body.clone())).await;
    assert_eq!(status, StatusCode::CREATED, "{applied}");
    let id = applied["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("act-"), "{applied}");
    assert_eq!(
        applied["target"],
        json!({"kind": "campaign", "id": "C-0007"})
    );
    assert_eq!(applied["action"], "block");
    assert_eq!(applied["actor"], "admin");
    assert_eq!(applied["note"], "ticket 42");
    assert!(applied["created_at"].is_string(), "{applied}");
    let rule = format!("dashboard {id}: block campaign C-0007");
    assert_eq!(applied["rule"], rule.as_str());
    h.mock.clear();
    let (status, text) = ask(&h.gw, KEY, &chat("m")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{text}");
    assert!(text.contains("request refused by policy"), "{text}");
    assert!(
        h.mock.requests().is_empty(),
        "the blocked request went upstream"
    );
    assert_eq!(ask(&h.gw, KEY_BOB, &chat("m")).await.0, StatusCode::OK);
    let (_, listed) = admin(&h.gw, "GET", "/admin/actions", None).await;
    assert_eq!(listed["items"], json!([applied]));

    // The same action again conflicts; refusals of bad requests.
    let (status, v) = admin(&h.gw, "POST", "/admin/actions", Some(body)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains(&id), "{v}");
    for (bad, code, needle) in [
        (
            block("campaign", "C-0007\" or true or \""),
            400,
            "target.id",
        ),
        (block("campaign", ""), 400, "target.id"),
        (block("network", "10.0.0.0"), 400, "unknown variant"),
        (
            json!({"target": {"kind": "campaign", "id": "C-0007"}, "action": "ban"}),
            400,
            "unknown variant",
        ),
        (
            json!({"target": {"kind": "campaign", "id": "C-0007"}, "action": "block", "force": true}),
            400,
            "unknown field",
        ),
        (
            json!({"target": {"kind": "campaign", "id": "C-0007"}, "action": "block", "requests_per_minute": 5}),
            400,
            "requests_per_minute",
        ),
        (
            json!({"target": {"kind": "campaign", "id": "C-0007"}, "action": "withhold_reasoning", "note": "x".repeat(501)}),
            400,
            "note",
        ),
        (json!({"action": "block"}), 400, "missing field"),
        (
            block("campaign", "C-9999"),
            404,
            "campaign C-9999 is not known",
        ),
        (
            block("account", "acct_nobody"),
            404,
            "account acct_nobody is not known",
        ),
    ] {
        let (status, v) = admin(&h.gw, "POST", "/admin/actions", Some(bad.clone())).await;
        assert_eq!(status.as_u16(), code, "{bad}: {v}");
        let message = v["error"]["message"].as_str().unwrap();
        assert!(message.contains(needle), "{bad}: {message}");
        assert!(
            !message.contains("or true"),
            "a rejected id is echoed: {message}"
        );
    }
    let (status, _) = admin_raw(&h.gw, "POST", "/admin/actions", Some("x".repeat(20_000))).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let (status, _) = admin_raw(&h.gw, "POST", "/admin/actions", Some("{".to_owned())).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let unauthorized = Request::post("/admin/actions")
        .body(Body::from(block("campaign", "C-0007").to_string()))
        .unwrap();
    let resp = h.gw.admin_router().oneshot(unauthorized).await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        h.gw.state().rules.current().len(),
        2,
        "refusals changed the rules"
    );

    // /admin/policy shows the effective rules, each with its source.
    let (_, policy) = admin(&h.gw, "GET", "/admin/policy", None).await;
    assert_eq!(policy["rules"][0]["name"], rule.as_str(), "{policy}");
    assert_eq!(policy["rules"][0]["source"], "dashboard");
    assert_eq!(policy["rules"][0]["when"], "campaign.id == \"C-0007\"");
    assert_eq!(policy["rules"][1]["source"], "file");

    // A reload of the file, and a rejected one, keep the action in front.
    let path = h.dir.path().join("policy.toml");
    std::fs::write(&path, POLICY.replace("\"red\"", "\"crimson\"")).unwrap();
    let (status, v) = admin(&h.gw, "POST", "/admin/policy/reload", None).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(ask(&h.gw, KEY, &chat("m")).await.0, StatusCode::FORBIDDEN);
    std::fs::write(&path, "version = 1\n[[rule]]\nname = \"broken\"\n").unwrap();
    let (status, _) = admin(&h.gw, "POST", "/admin/policy/reload", None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(ask(&h.gw, KEY, &chat("m")).await.0, StatusCode::FORBIDDEN);
    let (_, policy) = admin(&h.gw, "GET", "/admin/policy", None).await;
    assert_eq!(policy["rules"][0]["source"], "dashboard", "{policy}");
    assert!(policy["last_error"].is_string(), "{policy}");

    // Revert: 200 with the action, and the member passes again.
    let (status, reverted) =
        admin(&h.gw, "POST", &format!("/admin/actions/{id}/revert"), None).await;
    assert_eq!(status, StatusCode::OK, "{reverted}");
    assert_eq!(reverted["id"], id.as_str());
    assert_eq!(reverted["reverted_by"], "admin");
    assert!(reverted["reverted_at"].is_string(), "{reverted}");
    assert_eq!(ask(&h.gw, KEY, &chat("m")).await.0, StatusCode::OK);
    let (status, _) = admin(&h.gw, "POST", &format!("/admin/actions/{id}/revert"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, listed) = admin(&h.gw, "GET", "/admin/actions", None).await;
    assert_eq!(listed["items"], json!([]));

    // Both are in the audit log, newest first; the blocked request's decision names the rule.
    let (_, audit) = admin(&h.gw, "GET", "/admin/audit", None).await;
    let entries: Vec<(&str, &str, &str)> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"].as_str().unwrap().starts_with("action_"))
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["target"].as_str().unwrap(),
                e["detail"].as_str().unwrap(),
            )
        })
        .collect();
    let apply_detail = format!("block ({id}): ticket 42");
    let revert_detail = format!("block ({id})");
    assert_eq!(
        entries,
        [
            ("action_revert", "campaign C-0007", revert_detail.as_str()),
            ("action_apply", "campaign C-0007", apply_detail.as_str()),
        ]
    );
    assert!(h.gw.state().recorder.flush(Duration::from_secs(10)));
    let decisions = h.store.decisions(&DecisionQuery::default()).unwrap().items;
    assert!(
        decisions
            .iter()
            .any(|d| d.rule.as_deref() == Some(rule.as_str()) && d.actions == ["block"]),
        "{decisions:?}"
    );
}

#[tokio::test]
async fn account_actions_are_saved_and_back_after_a_restart() {
    let h = harness(Some("actions.json"), "").await;
    // The local engine learns Alice from her first request.
    assert_eq!(ask(&h.gw, KEY, &chat("m")).await.0, StatusCode::OK);
    let mut known = false;
    for _ in 0..200 {
        if h.gw
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
    assert!(known, "the engine never published Alice");

    let throttle = json!({"target": {"kind": "account", "id": "acct_alice"},
        "action": "throttle", "requests_per_minute": 1});
    let (status, t) = admin(&h.gw, "POST", "/admin/actions", Some(throttle)).await;
    assert_eq!(status, StatusCode::CREATED, "{t}");
    assert_eq!(t["id"], "act-1");
    assert_eq!(t["requests_per_minute"], 1);
    let withhold = json!({"target": {"kind": "account", "id": "acct_alice"},
        "action": "withhold_reasoning"});
    let (status, w) = admin(&h.gw, "POST", "/admin/actions", Some(withhold)).await;
    assert_eq!(status, StatusCode::CREATED, "{w}");
    assert_eq!(w["id"], "act-2");
    // Both take effect: one rule per target carries them.
    let (status, text) = ask(&h.gw, KEY, &chat("mock-reasoning-content")).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(
        !text.contains("Let me think step by step"),
        "reasoning leaked: {text}"
    );
    assert!(text.contains("moatr1."), "no withheld token: {text}");
    let both = "dashboard act-1+act-2: throttle+withhold_reasoning account acct_alice";
    assert_eq!(t["rule"], "dashboard act-1: throttle account acct_alice");
    assert_eq!(w["rule"], both);
    let (status, _) = ask(&h.gw, KEY, &chat("m")).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(ask(&h.gw, KEY_BOB, &chat("m")).await.0, StatusCode::OK);
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(h.dir.path().join("actions.json")).unwrap())
            .unwrap();
    assert_eq!(saved["items"].as_array().unwrap().len(), 2, "{saved}");

    // A restarted gateway has the actions before any request.
    let cfg = Config::parse(&h.config, "test.toml").unwrap();
    let again = Gateway::build_with_store(&cfg, h.store.clone()).unwrap();
    let (_, listed) = admin(&again, "GET", "/admin/actions", None).await;
    assert_eq!(listed["persistent"], true);
    let mut t_now = t.clone();
    t_now["rule"] = json!(both);
    assert_eq!(listed["items"], json!([t_now, w]));
    assert_eq!(again.state().rules.current().len(), 2);
    let (status, _) = ask(&again, KEY, &chat("m")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = ask(&again, KEY, &chat("m")).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // Ids continue where they stopped, even after a revert.
    let (status, _) = admin(&again, "POST", "/admin/actions/act-2/revert", None).await;
    assert_eq!(status, StatusCode::OK);
    let third = Gateway::build_with_store(&cfg, h.store.clone()).unwrap();
    let (_, listed) = admin(&third, "GET", "/admin/actions", None).await;
    assert_eq!(listed["items"][0]["id"], "act-1", "{listed}");
    assert_eq!(listed["items"].as_array().unwrap().len(), 1, "{listed}");
    third.state().engine.published().set_standing(
        "acct_bob",
        h.gw.state()
            .engine
            .published()
            .standing("acct_alice")
            .unwrap(),
    );
    let (status, b) = admin(
        &third,
        "POST",
        "/admin/actions",
        Some(block("account", "acct_bob")),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{b}");
    assert_eq!(b["id"], "act-3");

    // A damaged file stops the start, naming the file and the problem.
    std::fs::write(
        h.dir.path().join("actions.json"),
        "{\"version\": 1, \"items\": [}",
    )
    .unwrap();
    let err = Gateway::build_with_store(&cfg, h.store.clone())
        .unwrap_err()
        .to_string();
    assert!(err.contains("actions.json"), "{err}");
    assert!(err.contains("line 1 column"), "{err}");
}

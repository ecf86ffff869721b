//! The dispatcher against a real receiver: an axum server on 127.0.0.1:0 that answers from a
//! script, through the real [`WebhookClient`]. Timings are tens of milliseconds (every
//! interval, backoff and timeout is configured small), so the whole file runs in about a
//! second; the long waits (the deduplication window, minutes of backoff) are covered by the
//! paused-clock tests in `src/dispatch.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use bytes::Bytes;
use moat_alerts::{
    Alert, AlertsConfig, AppliedAction, Dispatcher, DispatcherHandle, Outcome, Settings,
    WebhookClient, WebhookSnapshot,
};
use serde_json::Value;

/// The secret parts of every webhook URL in this file; no output may contain them.
const TOKEN: &str = "T000-SECRET-TOKEN";
const SIG: &str = "SECRET-SIG";

/// What the receiver does with one request.
#[derive(Clone)]
enum Answer {
    Status(u16, &'static str),
    Hang,
}

/// A request the receiver got.
#[derive(Clone, Debug)]
struct Got {
    token: String,
    sig: Option<String>,
    content_type: String,
    body: Value,
}

#[derive(Default)]
struct Receiver {
    script: Mutex<VecDeque<Answer>>,
    got: Mutex<Vec<Got>>,
}

impl Receiver {
    fn got(&self) -> Vec<Got> {
        self.got.lock().unwrap().clone()
    }

    fn alerts(&self) -> usize {
        self.got()
            .iter()
            .map(|g| match g.body.get("alerts") {
                Some(a) => a.as_array().unwrap().len(),
                None => g.body["blocks"].as_array().unwrap().len(),
            })
            .sum()
    }
}

async fn hook(
    State(r): State<Arc<Receiver>>,
    UrlPath(token): UrlPath<String>,
    Query(query): Query<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    r.got.lock().unwrap().push(Got {
        token,
        sig: query.get("sig").cloned(),
        content_type: headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned(),
        body: serde_json::from_slice(&body).unwrap(),
    });
    let answer = r.script.lock().unwrap().pop_front();
    match answer.unwrap_or(Answer::Status(200, "ok")) {
        Answer::Status(code, text) => (StatusCode::from_u16(code).unwrap(), text).into_response(),
        Answer::Hang => {
            std::future::pending::<()>().await;
            StatusCode::OK.into_response()
        }
    }
}

/// A receiver answering `script` in order, then 200.
async fn receiver(script: Vec<Answer>) -> (Arc<Receiver>, SocketAddr) {
    let r = Arc::new(Receiver::default());
    *r.script.lock().unwrap() = script.into();
    let app = Router::new()
        .route("/hook/{token}", post(hook))
        .with_state(Arc::clone(&r));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (r, addr)
}

/// Settings with one webhook `w` of `format` posting to `addr` (the secret URL), with extra
/// webhook keys `webhook` and `[alerts]` keys `section`.
fn settings(addr: SocketAddr, format: &str, section: &str, webhook: &str) -> Settings {
    let doc = format!(
        "[alerts]\n{section}\n[[alerts.webhook]]\nname = \"w\"\nformat = \"{format}\"\n\
         url_env = \"MOAT_TEST_HOOK\"\n{webhook}\n"
    );
    let url = format!("http://{addr}/hook/{TOKEN}?sig={SIG}");
    AlertsConfig::from_toml(&doc)
        .unwrap()
        .validate(Path::new("."), |name| {
            (name == "MOAT_TEST_HOOK").then(|| url.clone())
        })
        .unwrap()
}

/// Small timings: no rate limit, fast retries.
const FAST: &str =
    "min_interval_ms = 0\nbackoff_initial_ms = 10\nbackoff_max_ms = 20\ntimeout_ms = 2000";

fn discovered(id: &str) -> Alert {
    Alert::campaign_discovered(
        "2025-06-01T12:00:00Z",
        id,
        143,
        format!("Campaign {id} discovered: 143 accounts."),
    )
}

fn webhook(handle: &DispatcherHandle) -> WebhookSnapshot {
    handle.stats().webhook("w").unwrap()
}

/// Waits (real time, at most `within`) until `done` holds.
async fn eventually(within: Duration, done: impl Fn() -> bool) -> bool {
    let until = Instant::now() + within;
    while Instant::now() < until {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    done()
}

/// Fails if `text` holds a secret part of the webhook URL.
fn assert_no_secret(what: &str, text: &str) {
    assert!(
        !text.contains(TOKEN) && !text.contains(SIG) && !text.contains("SECRET"),
        "{what} leaks the webhook URL: {text}"
    );
}

#[tokio::test]
async fn a_json_webhook_receives_the_v1_body_at_its_secret_url() {
    let (r, addr) = receiver(vec![]).await;
    let (tx, handle) =
        Dispatcher::start(settings(addr, "json", "", FAST), WebhookClient::new()).unwrap();
    assert!(tx.send(discovered("c-17").with_score(0.9)));
    assert!(eventually(Duration::from_secs(5), || webhook(&handle).delivered == 1).await);
    let got = r.got();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].token, TOKEN);
    assert_eq!(got[0].sig.as_deref(), Some(SIG));
    assert_eq!(got[0].content_type, "application/json");
    let body = &got[0].body;
    assert_eq!(body["source"], "moat");
    assert_eq!(body["v"], 1);
    assert_eq!(body["alerts"][0]["kind"], "campaign_discovered");
    assert_eq!(body["alerts"][0]["campaign_id"], "c-17");
    assert_eq!(body["alerts"][0]["accounts"], 143);
    let s = webhook(&handle);
    assert_eq!((s.sent, s.retried, s.failed), (1, 0, 0));
    assert!(s.last_success_at_ms.is_some());
    assert_eq!(s.last_error, None);
    let recent = handle.stats().recent();
    assert_eq!(recent.len(), 1);
    assert_eq!(recent[0].outcome, Outcome::Delivered);
    assert_eq!((recent[0].alerts, recent[0].attempts), (1, 1));
}

#[tokio::test]
async fn a_slack_webhook_receives_escaped_mrkdwn_sections() {
    let (r, addr) = receiver(vec![]).await;
    let (tx, handle) =
        Dispatcher::start(settings(addr, "slack", "", FAST), WebhookClient::new()).unwrap();
    tx.send(Alert::action_applied(
        "2025-06-01T12:00:00Z",
        AppliedAction {
            action: "block".into(),
            actor: "alice".into(),
            target: "acct<9>".into(),
        },
        "alice blocked acct<9> & its keys.",
    ));
    assert!(eventually(Duration::from_secs(5), || webhook(&handle).delivered == 1).await);
    let body = &r.got()[0].body;
    assert!(body["text"]
        .as_str()
        .unwrap()
        .contains("acct&lt;9&gt; &amp; its keys"));
    let block = &body["blocks"][0];
    assert_eq!(block["type"], "section");
    assert_eq!(block["text"]["type"], "mrkdwn");
    let text = block["text"]["text"].as_str().unwrap();
    assert!(text.starts_with("*Action applied*"), "{text}");
    assert!(
        text.contains("`block` on `acct&lt;9&gt;` by alice"),
        "{text}"
    );
}

#[tokio::test]
async fn a_burst_is_batched_into_few_posts_and_none_is_lost() {
    let (r, addr) = receiver(vec![]).await;
    let (tx, handle) = Dispatcher::start(
        settings(addr, "json", "", "min_interval_ms = 150"),
        WebhookClient::new(),
    )
    .unwrap();
    for i in 0..40 {
        assert!(tx.send(discovered(&format!("c-{i}"))));
        if i % 10 == 9 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    assert!(eventually(Duration::from_secs(5), || webhook(&handle).delivered == 40).await);
    // Typically 2 to 4 POSTs; the bound leaves room for a slow machine stretching the waves.
    let posts = r.got().len();
    assert!(posts <= 8, "{posts} posts for a burst of 40");
    assert_eq!(r.alerts(), 40);
    let s = webhook(&handle);
    assert_eq!((s.sent, s.dropped, s.failed), (posts as u64, 0, 0));
}

#[tokio::test]
async fn a_500_then_200_is_retried_and_delivered() {
    let (r, addr) = receiver(vec![Answer::Status(500, "Internal Server Error")]).await;
    let (tx, handle) =
        Dispatcher::start(settings(addr, "json", "", FAST), WebhookClient::new()).unwrap();
    tx.send(discovered("c-1"));
    assert!(eventually(Duration::from_secs(5), || webhook(&handle).delivered == 1).await);
    assert_eq!(r.got().len(), 2);
    assert_eq!(r.got()[0].body, r.got()[1].body);
    let s = webhook(&handle);
    assert_eq!((s.sent, s.retried, s.failed), (2, 1, 0));
    assert_eq!(s.last_error.as_deref(), Some("HTTP 500"));
    let recent = handle.stats().recent();
    assert_eq!(recent[0].attempts, 2);
    assert_eq!(recent[0].outcome, Outcome::Delivered);
}

#[tokio::test]
async fn a_400_is_not_retried_and_counts_as_failed() {
    let (r, addr) = receiver(vec![Answer::Status(400, "invalid_payload")]).await;
    let (tx, handle) =
        Dispatcher::start(settings(addr, "json", "", FAST), WebhookClient::new()).unwrap();
    tx.send(discovered("c-1"));
    assert!(eventually(Duration::from_secs(5), || webhook(&handle).failed == 1).await);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(r.got().len(), 1);
    let s = webhook(&handle);
    assert_eq!((s.sent, s.retried, s.delivered), (1, 0, 0));
    assert_eq!(s.last_error.as_deref(), Some("HTTP 400 (invalid_payload)"));
    let recent = handle.stats().recent();
    assert_eq!(recent[0].outcome, Outcome::Failed);
    assert_eq!(
        recent[0].error.as_deref(),
        Some("HTTP 400 (invalid_payload)")
    );
}

#[tokio::test]
async fn a_receiver_that_never_answers_times_out() {
    let (r, addr) = receiver(vec![Answer::Hang, Answer::Hang]).await;
    let started = Instant::now();
    let (tx, handle) = Dispatcher::start(
        settings(
            addr,
            "json",
            "",
            "timeout_ms = 100\nmax_attempts = 2\nbackoff_initial_ms = 10\nmin_interval_ms = 0",
        ),
        WebhookClient::new(),
    )
    .unwrap();
    tx.send(discovered("c-1"));
    assert!(eventually(Duration::from_secs(5), || webhook(&handle).failed == 1).await);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(r.got().len(), 2);
    let s = webhook(&handle);
    assert_eq!((s.sent, s.retried), (2, 1));
    assert_eq!(s.last_error.as_deref(), Some("timed out after 100 ms"));
}

#[tokio::test]
async fn a_refused_connection_is_retried_then_given_up_with_a_short_reason() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let (tx, handle) = Dispatcher::start(
        settings(addr, "slack", "", &format!("{FAST}\nmax_attempts = 3")),
        WebhookClient::new(),
    )
    .unwrap();
    tx.send(discovered("c-1"));
    assert!(eventually(Duration::from_secs(5), || webhook(&handle).failed == 1).await);
    let s = webhook(&handle);
    assert_eq!((s.sent, s.retried), (3, 2));
    assert_eq!(s.last_error.as_deref(), Some("connection refused"));
}

#[tokio::test]
async fn a_full_queue_drops_and_counts_without_blocking() {
    let (r, addr) = receiver(vec![]).await;
    let (tx, handle) = Dispatcher::start(
        settings(addr, "json", "queue = 2", FAST),
        WebhookClient::new(),
    )
    .unwrap();
    let started = Instant::now();
    // The router runs on this same thread: nothing drains the queue during the loop.
    let accepted = (0..1000)
        .filter(|i| tx.send(discovered(&format!("c-{i}"))))
        .count();
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(accepted, 2);
    assert_eq!(handle.stats().queue_dropped(), 998);
    assert!(eventually(Duration::from_secs(5), || webhook(&handle).delivered == 2).await);
    assert_eq!(r.alerts(), 2);
}

#[tokio::test]
async fn the_same_alert_is_posted_once_within_the_window() {
    let (r, addr) = receiver(vec![]).await;
    let (tx, handle) =
        Dispatcher::start(settings(addr, "json", "", FAST), WebhookClient::new()).unwrap();
    tx.send(discovered("c-1"));
    assert!(eventually(Duration::from_secs(5), || webhook(&handle).delivered == 1).await);
    tx.send(discovered("c-1"));
    tx.send(discovered("c-2"));
    assert!(eventually(Duration::from_secs(5), || webhook(&handle).delivered == 2).await);
    let s = webhook(&handle);
    assert_eq!(s.deduplicated, 1);
    assert_eq!(r.alerts(), 2);
}

#[tokio::test]
async fn shutdown_drains_queued_and_pending_alerts() {
    let (r, addr) = receiver(vec![]).await;
    let (tx, handle) = Dispatcher::start(
        settings(addr, "json", "", "min_interval_ms = 200"),
        WebhookClient::new(),
    )
    .unwrap();
    tx.send(discovered("first"));
    assert!(eventually(Duration::from_secs(5), || webhook(&handle).delivered == 1).await);
    for i in 0..5 {
        tx.send(discovered(&format!("c-{i}")));
    }
    let stats = handle.stats();
    let report = handle.shutdown(Duration::from_secs(5)).await;
    assert!(report.drained, "{report:?}");
    assert_eq!(report.abandoned, 0);
    assert_eq!(r.alerts(), 6);
    assert_eq!(stats.webhook("w").unwrap().delivered, 6);
    assert!(!tx.send(discovered("late")));
}

#[tokio::test]
async fn shutdown_gives_up_at_its_deadline() {
    let (_r, addr) = receiver(vec![Answer::Hang]).await;
    let (tx, handle) = Dispatcher::start(
        settings(addr, "json", "", "timeout_ms = 5000"),
        WebhookClient::new(),
    )
    .unwrap();
    tx.send(discovered("c-1"));
    tokio::time::sleep(Duration::from_millis(50)).await;
    let stats = handle.stats();
    let started = Instant::now();
    let report = handle.shutdown(Duration::from_millis(100)).await;
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(!report.drained);
    assert_eq!(report.abandoned, 1);
    assert_eq!(stats.webhook("w").unwrap().dropped, 1);
}

#[tokio::test]
async fn the_url_secret_never_appears_in_debug_errors_or_stats() {
    // A receiver that fails every way it can, echoing URLs in its answers.
    let (_r, addr) = receiver(vec![
        Answer::Status(500, "see http://127.0.0.1/hook/T000-SECRET-TOKEN"),
        Answer::Status(404, "SECRET"),
    ])
    .await;
    let settings = settings(addr, "json", "", FAST);
    assert_no_secret("settings debug", &format!("{settings:?}"));
    assert_no_secret("url display", &settings.webhooks[0].url.to_string());
    let client = WebhookClient::new();
    assert_no_secret("client debug", &format!("{client:?}"));
    let (tx, handle) = Dispatcher::start(settings, client).unwrap();
    tx.send(discovered("c-1"));
    assert!(eventually(Duration::from_secs(5), || webhook(&handle).failed == 1).await);

    // And a connection that is refused.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = listener.local_addr().unwrap();
    drop(listener);
    let (tx2, handle2) = Dispatcher::start(
        self::settings(dead, "slack", "", &format!("{FAST}\nmax_attempts = 1")),
        WebhookClient::new(),
    )
    .unwrap();
    tx2.send(discovered("c-1"));
    assert!(eventually(Duration::from_secs(5), || webhook(&handle2).failed == 1).await);

    for h in [&handle, &handle2] {
        let snap = h.stats().snapshot();
        assert_no_secret("stats", &serde_json::to_string(&snap).unwrap());
        assert_no_secret("stats debug", &format!("{snap:?}"));
        assert_no_secret("handle debug", &format!("{h:?}"));
    }
    assert_no_secret("sender debug", &format!("{tx:?}"));
    assert_eq!(webhook(&handle).last_error.as_deref(), Some("HTTP 404"));

    // Configuration errors name the variable, never its value.
    let doc = "[[alerts.webhook]]\nname = \"w\"\nformat = \"json\"\nurl_env = \"V\"\n";
    let e = AlertsConfig::from_toml(doc)
        .unwrap()
        .validate(Path::new("."), |_| {
            Some(format!("ftp://h/{TOKEN}?sig={SIG}"))
        })
        .unwrap_err();
    assert_no_secret("config error", &e.to_string());
    assert_no_secret("config error debug", &format!("{e:?}"));
}

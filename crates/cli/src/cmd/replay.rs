//! `moat replay`: sends an exchange log's requests to one or more gateways as the HTTP requests
//! their clients sent, for drills and equivalence tests. A gateway in identity mode `"header"`,
//! with `[identity] time_header`, `trusted_proxy_hops = 1` and the edge attribute headers set,
//! records each one with the log's account, time, client address, user agent, ASN, country,
//! JA4 and request (the bodies come from `moat_dialect::request_body`, which `parse_request`
//! reads back into the same request).
//!
//! Requests start in log order; a request starts once the previous request of its account
//! has been answered and fewer than `--concurrency` are in flight, so an account's requests
//! reach the gateway in order. An account always goes to the same target (FNV-1a of its id).
//! Not a load generator: it sends as fast as the gateways answer, not at the log's pace.
//!
//! A record that cannot be sent as it is (an endpoint or a request no body gives, a field a
//! header cannot carry unchanged) is counted and named, not sent altered; it, or a request
//! without a whole answer, makes the command exit 1 after the summary.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use moat_dialect::Endpoint;
use moat_format::{ReadOptions, Reader};
use moat_types::Exchange;

/// Arguments of `moat replay`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Exchange log to replay (.jsonl or .jsonl.gz, in time order).
    traffic: PathBuf,
    /// A gateway's base URL (`http://127.0.0.1:8080`, without /v1); repeat it to spread the
    /// accounts over several gateways, each account always to the same one.
    #[arg(long = "target", required = true, value_name = "URL")]
    targets: Vec<String>,
    /// Header naming the account (the gateway's `[identity] account_header`).
    #[arg(long, default_value = "x-moat-account", value_parser = header_name)]
    account_header: HeaderName,
    /// Header carrying the record's time (the gateway's `[identity] time_header`).
    #[arg(long, default_value = "x-moat-time", value_parser = header_name)]
    time_header: HeaderName,
    /// Header carrying `client.asn` (the gateway's `[identity.headers] asn`).
    #[arg(long, default_value = "x-client-asn", value_parser = header_name)]
    asn_header: HeaderName,
    /// Header carrying `client.country` (the gateway's `[identity.headers] country`).
    #[arg(long, default_value = "x-client-country", value_parser = header_name)]
    country_header: HeaderName,
    /// Header carrying `client.tls_ja4` (the gateway's `[identity.headers] ja4`).
    #[arg(long, default_value = "x-client-ja4", value_parser = header_name)]
    ja4_header: HeaderName,
    /// Another header from a record field, as NAME=FIELD; FIELD is one of api_key_id,
    /// request_id, client.ip, client.asn, client.country, client.user_agent, client.tls_ja4.
    /// Repeatable.
    #[arg(long = "attr-header", value_name = "NAME=FIELD", value_parser = attr_header)]
    attr_headers: Vec<(HeaderName, Field)>,
    /// Environment variable holding an API key, sent as `Authorization: Bearer` (as
    /// `x-api-key` on /v1/messages).
    #[arg(long, value_name = "VAR")]
    api_key_env: Option<String>,
    /// Requests in flight at most, over all targets.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=4096))]
    concurrency: u32,
    /// Seconds a request may take, its whole answer included, before it counts as failed.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..))]
    timeout_s: u64,
    /// Skip malformed lines (counted and reported) instead of failing.
    #[arg(long)]
    skip_bad_lines: bool,
    /// Hide the progress bar.
    #[arg(long)]
    quiet: bool,
}

fn header_name(s: &str) -> Result<HeaderName, String> {
    HeaderName::from_bytes(s.as_bytes()).map_err(|_| format!("{s:?} is not a valid header name"))
}

fn attr_header(s: &str) -> Result<(HeaderName, Field), String> {
    let (name, field) = s
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=FIELD, got {s:?}"))?;
    Ok((header_name(name)?, Field::parse(field)?))
}

/// A record field a header can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// `api_key_id`.
    ApiKeyId,
    /// `request_id`.
    RequestId,
    /// `client.ip`.
    Ip,
    /// `client.asn`.
    Asn,
    /// `client.country`.
    Country,
    /// `client.user_agent`.
    UserAgent,
    /// `client.tls_ja4`.
    Ja4,
}

impl Field {
    const NAMES: [(&'static str, Field); 7] = [
        ("api_key_id", Field::ApiKeyId),
        ("request_id", Field::RequestId),
        ("client.ip", Field::Ip),
        ("client.asn", Field::Asn),
        ("client.country", Field::Country),
        ("client.user_agent", Field::UserAgent),
        ("client.tls_ja4", Field::Ja4),
    ];

    fn parse(s: &str) -> Result<Field, String> {
        Field::NAMES
            .iter()
            .find(|(n, _)| *n == s)
            .map(|(_, f)| *f)
            .ok_or_else(|| {
                let names: Vec<&str> = Field::NAMES.iter().map(|(n, _)| *n).collect();
                format!("unknown field {s:?}; expected one of {}", names.join(", "))
            })
    }

    fn name(self) -> &'static str {
        Field::NAMES
            .iter()
            .find(|(_, f)| *f == self)
            .map_or("", |(n, _)| n)
    }

    fn value(self, x: &Exchange) -> Option<String> {
        let c = x.client.as_ref();
        match self {
            Field::ApiKeyId => x.api_key_id.clone(),
            Field::RequestId => x.request_id.clone(),
            Field::Ip => c.and_then(|c| c.ip.clone()),
            Field::Asn => c.and_then(|c| c.asn).map(|a| a.to_string()),
            Field::Country => c.and_then(|c| c.country.clone()),
            Field::UserAgent => c.and_then(|c| c.user_agent.clone()),
            Field::Ja4 => c.and_then(|c| c.tls_ja4.clone()),
        }
    }
}

/// How a record becomes an HTTP request.
struct Shape {
    account: HeaderName,
    time: HeaderName,
    /// Headers carrying record fields, `x-forwarded-for` and `user-agent` first.
    fields: Vec<(HeaderName, Field)>,
    key: Option<String>,
}

/// A request ready to go.
#[derive(Debug)]
struct Prepared {
    path: &'static str,
    headers: HeaderMap,
    body: Bytes,
}

impl Shape {
    /// The request a record's client sent, or why none can be built.
    fn prepare(&self, x: &Exchange) -> Result<Prepared, String> {
        let endpoint = Endpoint::from_path(
            x.request
                .endpoint
                .as_deref()
                .unwrap_or(Endpoint::ChatCompletions.path()),
        )
        .map_err(|e| e.to_string())?;
        let body = moat_dialect::request_body(endpoint, &x.request).map_err(|e| e.to_string())?;
        let body = serde_json::to_vec(&body).map_err(|e| e.to_string())?;
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        // The gateway reads header values that are visible ASCII only: anything else would
        // be recorded differently, so it is refused here rather than sent altered.
        let value = |what: &str, v: &str| {
            HeaderValue::from_str(v)
                .ok()
                .filter(|h| h.to_str().is_ok())
                .ok_or_else(|| format!("{what} cannot be sent in a header"))
        };
        headers.insert(self.account.clone(), value("account_id", &x.account_id)?);
        headers.insert(self.time.clone(), value("ts", &x.ts.to_string())?);
        for (name, field) in &self.fields {
            if let Some(v) = field.value(x) {
                headers.insert(name.clone(), value(field.name(), &v)?);
            }
        }
        if endpoint == Endpoint::Messages {
            headers.insert(
                HeaderName::from_static("anthropic-version"),
                HeaderValue::from_static("2023-06-01"),
            );
        }
        if let Some(key) = &self.key {
            let (name, v) = if endpoint == Endpoint::Messages {
                (HeaderName::from_static("x-api-key"), key.clone())
            } else {
                (header::AUTHORIZATION, format!("Bearer {key}"))
            };
            let mut v =
                HeaderValue::from_str(&v).map_err(|_| "the API key cannot be sent".to_owned())?;
            v.set_sensitive(true);
            headers.insert(name, v);
        }
        Ok(Prepared {
            path: endpoint.path(),
            headers,
            body: Bytes::from(body),
        })
    }
}

/// FNV-1a, 64 bits.
fn fnv1a(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Which target an account goes to: FNV-1a of its id modulo the number of targets, the same
/// in every run and easy to compute elsewhere.
fn target_of(account: &str, targets: usize) -> usize {
    (fnv1a(account) % targets.max(1) as u64) as usize
}

/// A target's base URL, checked: `http://host:port`, without /v1.
fn base_url(url: &str) -> anyhow::Result<String> {
    let base = url.trim_end_matches('/');
    anyhow::ensure!(
        base.starts_with("http://"),
        "--target {url}: must be an http:// URL"
    );
    anyhow::ensure!(
        !base.ends_with("/v1"),
        "--target {url}: give the gateway's base URL without /v1 (the request path is appended)"
    );
    let _: Uri = format!("{base}/v1/models")
        .parse()
        .with_context(|| format!("--target {url}: not a valid URL"))?;
    Ok(base.to_owned())
}

/// Counts of what happened, shared by the request tasks.
#[derive(Default)]
struct Tally {
    /// Answers by status class, 1xx to 5xx.
    classes: [AtomicU64; 5],
    /// Requests that got no whole answer (connection, timeout, body).
    failed: AtomicU64,
    /// Records no request could be built for.
    unsendable: AtomicU64,
    /// The first few failures: line and reason.
    examples: Mutex<Vec<(u64, String)>>,
}

impl Tally {
    const MAX_EXAMPLES: usize = 5;

    fn answered(&self, status: u16) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.classes[class].fetch_add(1, Ordering::Relaxed);
    }

    fn example(&self, line: u64, reason: String) {
        if let Ok(mut e) = self.examples.lock() {
            if e.len() < Self::MAX_EXAMPLES {
                e.push((line, reason));
            }
        }
    }
}

/// The full cause chain of an error, on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    s
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// Sends one request and reads its whole answer; the status, or why there was none.
async fn send(
    client: &HttpClient,
    uri: Uri,
    p: Prepared,
    timeout: Duration,
) -> Result<u16, String> {
    let mut req = Request::post(uri)
        .body(Full::new(p.body))
        .map_err(|e| chain(&e))?;
    *req.headers_mut() = p.headers;
    let exchange = async {
        let resp = client.request(req).await.map_err(|e| chain(&e))?;
        let status = resp.status().as_u16();
        // Read the answer to its end: a stream is an exchange only once it has ended.
        resp.into_body()
            .collect()
            .await
            .map_err(|e| format!("reading the answer: {}", chain(&e)))?;
        Ok(status)
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| format!("no whole answer within {} s", timeout.as_secs()))?
}

/// Runs `moat replay`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let targets = args
        .targets
        .iter()
        .map(|t| base_url(t))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let key = match &args.api_key_env {
        Some(var) => Some(
            std::env::var(var)
                .with_context(|| format!("--api-key-env {var}: the variable is not set"))?,
        ),
        None => None,
    };
    let mut fields = vec![
        (HeaderName::from_static("x-forwarded-for"), Field::Ip),
        (header::USER_AGENT, Field::UserAgent),
        (args.asn_header.clone(), Field::Asn),
        (args.country_header.clone(), Field::Country),
        (args.ja4_header.clone(), Field::Ja4),
    ];
    fields.extend(args.attr_headers.iter().cloned());
    let shape = Shape {
        account: args.account_header.clone(),
        time: args.time_header.clone(),
        fields,
        key,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let outcome = rt.block_on(replay(&args, &targets, shape))?;
    let failed = outcome.tally.failed.load(Ordering::Relaxed);
    let unsendable = outcome.tally.unsendable.load(Ordering::Relaxed);
    super::print(&summary_line(&outcome, targets.len()))?;
    anyhow::ensure!(
        failed == 0 && unsendable == 0,
        "{failed} requests failed and {unsendable} records could not be sent"
    );
    Ok(())
}

/// What a replay did.
struct Outcome {
    tally: Arc<Tally>,
    sent: u64,
    skipped: moat_format::SkipReport,
    seconds: f64,
}

async fn replay(args: &Args, targets: &[String], shape: Shape) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let opts = ReadOptions {
        skip_bad_lines: args.skip_bad_lines,
        ..ReadOptions::default()
    };
    let path = &args.traffic;
    let (file, bar) = super::open_with_progress(path, args.quiet)?;
    let mut reader =
        Reader::<Exchange>::from_reader(path.display().to_string(), bar.wrap_read(file), opts)?;

    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: HttpClient = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(args.concurrency as usize)
        .build(connector);
    let timeout = Duration::from_secs(args.timeout_s);
    let slots = Arc::new(tokio::sync::Semaphore::new(args.concurrency as usize));
    let tally = Arc::new(Tally::default());
    // The request in flight (or last sent) of each account; pruned of finished ones now and
    // then, so the map holds about the accounts in flight.
    let mut busy: HashMap<String, tokio::task::JoinHandle<()>> = HashMap::new();
    let mut sent = 0u64;
    while let Some(x) = reader.next() {
        let x = x.context("reading the traffic")?;
        let line = reader.line();
        let prepared = match shape.prepare(&x) {
            Ok(p) => p,
            Err(reason) => {
                tally.unsendable.fetch_add(1, Ordering::Relaxed);
                tally.example(line, format!("not sent: {reason}"));
                continue;
            }
        };
        let target = &targets[target_of(&x.account_id, targets.len())];
        let uri: Uri = format!("{target}{}", prepared.path)
            .parse()
            .with_context(|| format!("building the URL for {target}"))?;
        if let Some(previous) = busy.remove(&x.account_id) {
            previous.await.context("a request task failed")?;
        }
        let slot = slots
            .clone()
            .acquire_owned()
            .await
            .context("waiting for a free slot")?;
        let (client, tally) = (client.clone(), tally.clone());
        let task = tokio::spawn(async move {
            match send(&client, uri, prepared, timeout).await {
                Ok(status) => tally.answered(status),
                Err(reason) => {
                    tally.failed.fetch_add(1, Ordering::Relaxed);
                    tally.example(line, reason);
                }
            }
            drop(slot);
        });
        busy.insert(x.account_id, task);
        sent += 1;
        if sent % 256 == 0 {
            bar.set_message(format!("{sent} sent"));
            busy.retain(|_, t| !t.is_finished());
        }
    }
    for (_, task) in busy {
        task.await.context("a request task failed")?;
    }
    bar.finish_and_clear();
    Ok(Outcome {
        tally,
        sent,
        skipped: reader.skipped().clone(),
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The summary printed at the end: what was sent, how it was answered, what failed.
fn summary_line(o: &Outcome, targets: usize) -> String {
    let t = &o.tally;
    let classes: Vec<String> = t
        .classes
        .iter()
        .enumerate()
        .map(|(i, n)| (i + 1, n.load(Ordering::Relaxed)))
        .filter(|&(class, n)| n > 0 || class == 2)
        .map(|(class, n)| format!("{n} {class}xx"))
        .collect();
    let failed = t.failed.load(Ordering::Relaxed);
    let unsendable = t.unsendable.load(Ordering::Relaxed);
    let mut line = format!(
        "replayed {} exchanges to {targets} target{} in {:.1} s ({:.0} requests/s): {}, {failed} failed",
        o.sent,
        if targets == 1 { "" } else { "s" },
        o.seconds,
        o.sent as f64 / o.seconds.max(1e-9),
        classes.join(", "),
    );
    if unsendable > 0 {
        line.push_str(&format!(", {unsendable} not sendable"));
    }
    if o.skipped.count > 0 {
        line.push_str(&format!("; skipped {} bad lines", o.skipped.count));
        for (n, reason) in &o.skipped.examples {
            line.push_str(&format!("\n  line {n}: {reason}"));
        }
    }
    if let Ok(examples) = t.examples.lock() {
        for (n, reason) in examples.iter() {
            line.push_str(&format!("\n  line {n}: {reason}"));
        }
    }
    line + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(line: &str) -> Exchange {
        serde_json::from_str(line).unwrap()
    }

    fn shape() -> Shape {
        Shape {
            account: HeaderName::from_static("x-moat-account"),
            time: HeaderName::from_static("x-moat-time"),
            fields: vec![
                (HeaderName::from_static("x-forwarded-for"), Field::Ip),
                (header::USER_AGENT, Field::UserAgent),
                (HeaderName::from_static("x-client-asn"), Field::Asn),
                (HeaderName::from_static("x-key"), Field::ApiKeyId),
            ],
            key: Some("sk-1".into()),
        }
    }

    #[test]
    fn a_record_becomes_its_clients_request() {
        let x = record(
            r#"{"v":1,"ts":"2026-03-02T00:00:13.693Z","account_id":"acct_1","api_key_id":"key_1",
                "client":{"ip":"8.212.245.68","asn":45102,"user_agent":"OpenAI/JS 4.84.2"},
                "request":{"endpoint":"/v1/chat/completions","model":"frontier-mini",
                  "messages":[{"role":"user","content":"Hi"}],
                  "params":{"temperature":0.7,"max_tokens":1024,"stream":true}}}"#,
        );
        let p = shape().prepare(&x).unwrap();
        assert_eq!(p.path, "/v1/chat/completions");
        let h = |n: &str| p.headers.get(n).unwrap().to_str().unwrap().to_owned();
        assert_eq!(h("x-moat-account"), "acct_1");
        assert_eq!(h("x-moat-time"), "2026-03-02T00:00:13.693Z");
        assert_eq!(h("x-forwarded-for"), "8.212.245.68");
        assert_eq!(h("user-agent"), "OpenAI/JS 4.84.2");
        assert_eq!(h("x-client-asn"), "45102");
        assert_eq!(h("x-key"), "key_1");
        assert_eq!(h("authorization"), "Bearer sk-1");
        assert!(p.headers.get("x-client-country").is_none());
        let body: serde_json::Value = serde_json::from_slice(&p.body).unwrap();
        let back = moat_dialect::parse_request(Endpoint::ChatCompletions, &body).unwrap();
        assert_eq!(back.request, x.request);
        assert!(back.stream);
    }

    #[test]
    fn records_without_a_request_body_or_header_form_are_not_sendable() {
        let x = record(
            r#"{"v":1,"ts":"2026-03-02T00:00:00Z","account_id":"a",
                "request":{"endpoint":"/v1/embeddings","messages":[]}}"#,
        );
        assert!(shape()
            .prepare(&x)
            .unwrap_err()
            .contains("unknown endpoint"));
        let x = record(
            r#"{"v":1,"ts":"2026-03-02T00:00:00Z","account_id":"a\nb",
                "request":{"messages":[]}}"#,
        );
        assert_eq!(
            shape().prepare(&x).unwrap_err(),
            "account_id cannot be sent in a header"
        );
        let x = record(
            r#"{"v":1,"ts":"2026-03-02T00:00:00Z","account_id":"a",
                "client":{"user_agent":"Café/1.0"},"request":{"messages":[]}}"#,
        );
        assert_eq!(
            shape().prepare(&x).unwrap_err(),
            "client.user_agent cannot be sent in a header"
        );
        let x = record(
            r#"{"v":1,"ts":"2026-03-02T00:00:00Z","account_id":"a",
                "request":{"endpoint":"/v1/completions","messages":[]}}"#,
        );
        assert!(shape().prepare(&x).unwrap_err().starts_with("prompt:"));
    }

    #[test]
    fn an_account_always_goes_to_the_same_target() {
        assert_eq!(target_of("acct_1", 1), 0);
        let spread: std::collections::BTreeSet<usize> = (0..64)
            .map(|i| target_of(&format!("acct_{i}"), 3))
            .collect();
        assert_eq!(spread.len(), 3);
        assert_eq!(target_of("acct_7", 3), target_of("acct_7", 3));
        // FNV-1a's published test vectors, so other tools can place accounts the same way.
        assert_eq!(fnv1a(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a("a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn flags_are_checked() {
        assert!(attr_header("x-tier=client.country").is_ok());
        assert!(attr_header("x-tier").is_err());
        assert!(attr_header("x tier=client.ip").is_err());
        assert!(attr_header("x-tier=client.tier")
            .unwrap_err()
            .contains("client.tls_ja4"));
        assert!(base_url("http://127.0.0.1:8080/").is_ok());
        assert!(base_url("https://gw.example").is_err());
        assert!(base_url("http://127.0.0.1:8080/v1").is_err());
    }
}

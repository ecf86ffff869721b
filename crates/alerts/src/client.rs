//! How a body reaches a webhook: the [`Transport`] the dispatcher posts through, and
//! [`WebhookClient`], the HTTP and HTTPS one (hyper-util with rustls and the system's root
//! certificates, as the TAXII client builds it).
//!
//! A POST runs under the webhook's timeout, connection and answer included, and reads at most
//! a few KiB of the answer: a webhook's answer matters only for its status. Failures come back
//! as short fixed phrases (`connection refused`, `timed out after 5000 ms`), never as the
//! underlying error's text, which may quote the URL and so the token in it.
//!
//! Not the retry policy: that is the dispatcher's ([`crate::dispatch`]). No redirect is
//! followed.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;

use crate::config::WebhookUrl;

/// The most bytes of an answer read (the rest is dropped with the connection).
const MAX_ANSWER_BYTES: usize = 4096;
/// The longest answer body kept as a detail of an error (`HTTP 400 (invalid_blocks)`).
const MAX_DETAIL_CHARS: usize = 40;

/// What came of one POST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostOutcome {
    /// The receiver answered with this status.
    Answered {
        /// The HTTP status.
        status: u16,
        /// `Retry-After`, when given in seconds.
        retry_after: Option<Duration>,
        /// The answer's body when it is a short error code such as Slack's `invalid_blocks`
        /// (1 to 40 of `a-z`, `0-9`, `_`), which cannot quote a URL; `None` otherwise.
        detail: Option<String>,
    },
    /// No whole answer within the timeout.
    TimedOut,
    /// The request could not be made or the connection failed: a short phrase that never
    /// holds the URL (`connection refused`).
    Failed(String),
}

/// Something that can POST a JSON body to a webhook: [`WebhookClient`], or a stand-in in
/// tests. Implementations must keep the URL out of every [`PostOutcome::Failed`] phrase.
pub trait Transport: Send + Sync + 'static {
    /// POSTs `body` (`application/json`) to `url`, giving up after `timeout`.
    fn post(
        &self,
        url: &WebhookUrl,
        body: Bytes,
        timeout: Duration,
    ) -> impl Future<Output = PostOutcome> + Send;
}

/// The connector: HTTPS where root certificates could be loaded, plain HTTP otherwise.
enum Connector {
    /// HTTP and HTTPS, with the system's root certificates.
    Tls(HyperClient<HttpsConnector<HttpConnector>, Full<Bytes>>),
    /// HTTP only: the system's root certificates could not be loaded, and an `https` webhook
    /// fails saying so rather than with an obscure handshake error.
    Plain(HyperClient<HttpConnector, Full<Bytes>>),
}

/// The HTTP and HTTPS webhook client; one connection pool shared by every webhook.
pub struct WebhookClient {
    connector: Connector,
    user_agent: HeaderValue,
}

impl fmt::Debug for WebhookClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookClient")
            .field("https", &matches!(self.connector, Connector::Tls(_)))
            .finish_non_exhaustive()
    }
}

impl WebhookClient {
    /// A client speaking HTTP and HTTPS (the system's root certificates). When those cannot
    /// be loaded it still speaks HTTP, and posts to `https` webhooks fail with
    /// `no usable root certificates`.
    pub fn new() -> WebhookClient {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        let builder = HyperClient::builder(TokioExecutor::new());
        let connector = match HttpsConnectorBuilder::new().with_native_roots() {
            Ok(tls) => Connector::Tls(
                builder.build(tls.https_or_http().enable_http1().wrap_connector(http)),
            ),
            Err(_) => Connector::Plain(builder.build(http)),
        };
        WebhookClient {
            connector,
            user_agent: HeaderValue::from_static(concat!(
                "moat-alerts/",
                env!("CARGO_PKG_VERSION")
            )),
        }
    }

    /// Whether this client can reach `https` webhooks.
    pub fn speaks_https(&self) -> bool {
        matches!(self.connector, Connector::Tls(_))
    }

    async fn exchange(&self, url: &WebhookUrl, body: Bytes) -> PostOutcome {
        let request = Request::builder()
            .method(Method::POST)
            .uri(url.expose().clone())
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::USER_AGENT, self.user_agent.clone())
            .body(Full::new(body));
        let Ok(request) = request else {
            return PostOutcome::Failed("cannot build the request".to_owned());
        };
        let response = match &self.connector {
            Connector::Tls(client) => client.request(request).await,
            Connector::Plain(client) => {
                if url.is_https() {
                    return PostOutcome::Failed(
                        "https unavailable: no usable root certificates".to_owned(),
                    );
                }
                client.request(request).await
            }
        };
        let response = match response {
            Ok(r) => r,
            Err(e) => return PostOutcome::Failed(classify(&e).to_owned()),
        };
        let (parts, body) = response.into_parts();
        let status = parts.status.as_u16();
        let retry_after = parts
            .headers
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        // The body is read (so the connection can be reused) but only a short error code is
        // kept; a failure to read it changes nothing about the status.
        let detail = match Limited::new(body, MAX_ANSWER_BYTES).collect().await {
            Ok(collected) if !(200..300).contains(&status) => detail_of(&collected.to_bytes()),
            _ => None,
        };
        PostOutcome::Answered {
            status,
            retry_after,
            detail,
        }
    }
}

impl Default for WebhookClient {
    fn default() -> Self {
        WebhookClient::new()
    }
}

impl Transport for WebhookClient {
    async fn post(&self, url: &WebhookUrl, body: Bytes, timeout: Duration) -> PostOutcome {
        tokio::time::timeout(timeout, self.exchange(url, body))
            .await
            .unwrap_or(PostOutcome::TimedOut)
    }
}

/// `Retry-After` in seconds (the HTTP-date form is ignored: the backoff applies instead).
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// The answer as a short error code, when it is one.
fn detail_of(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?.trim();
    let ok = (1..=MAX_DETAIL_CHARS).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    ok.then(|| text.to_owned())
}

/// A fixed phrase for a failed request. The error's own text is not used: hyper's connect
/// errors can name the address, and resolver errors the host.
fn classify(e: &hyper_util::client::legacy::Error) -> &'static str {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    let mut texts = String::new();
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind;
            match io.kind() {
                ErrorKind::ConnectionRefused => return "connection refused",
                ErrorKind::ConnectionReset => return "connection reset",
                ErrorKind::ConnectionAborted => return "connection aborted",
                ErrorKind::TimedOut => return "connect timed out",
                ErrorKind::UnexpectedEof => return "connection closed before the answer",
                _ => {}
            }
        }
        if let Some(h) = c.downcast_ref::<hyper::Error>() {
            if h.is_incomplete_message() || h.is_canceled() {
                return "connection closed before the answer";
            }
        }
        texts.push_str(&c.to_string().to_ascii_lowercase());
        texts.push('\n');
        cause = c.source();
    }
    if texts.contains("dns error") || texts.contains("failed to lookup address") {
        "dns lookup failed"
    } else if texts.contains("certificate") || texts.contains("tls") || texts.contains("handshake")
    {
        "tls handshake failed"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn retry_after_is_read_in_seconds_only() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after(" 0 "), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("-1"), None);
    }

    #[test]
    fn only_short_error_codes_are_kept_from_answers() {
        assert_eq!(
            detail_of(b"invalid_blocks\n").as_deref(),
            Some("invalid_blocks")
        );
        assert_eq!(detail_of(b"no_service"), Some("no_service".to_owned()));
        assert_eq!(detail_of(b""), None);
        assert_eq!(
            detail_of(b"https://hooks.slack.com/services/T/B/secret"),
            None
        );
        assert_eq!(detail_of(b"<html>Bad Gateway</html>"), None);
        assert_eq!(detail_of("x".repeat(41).as_bytes()), None);
    }

    #[tokio::test]
    async fn a_refused_connection_says_so_without_the_url() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let url = WebhookUrl::parse(&format!("http://127.0.0.1:{port}/hook/secret")).unwrap();
        let out = WebhookClient::new()
            .post(&url, Bytes::from_static(b"{}"), Duration::from_secs(5))
            .await;
        assert_eq!(out, PostOutcome::Failed("connection refused".to_owned()));
    }
}

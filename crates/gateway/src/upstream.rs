//! The connection to the model server: a pooled HTTP/1.1 client, the request headers that
//! are forwarded (and the ones that are not), and the upstream's key when the gateway holds
//! one.
//!
//! Compression is not negotiated with the upstream (`accept-encoding` is dropped), because
//! the gateway reads every response: to record it, to count tokens, and to withhold
//! reasoning.

use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, Uri};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// Why the upstream could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamFailure {
    /// No connection (refused, reset, DNS).
    Connect,
    /// No response headers within the timeout.
    Timeout,
    /// The request could not be built (a bad path).
    Request,
}

impl UpstreamFailure {
    /// The metric label.
    pub fn kind(&self) -> &'static str {
        match self {
            UpstreamFailure::Connect => "connect",
            UpstreamFailure::Timeout => "timeout",
            UpstreamFailure::Request => "request",
        }
    }
}

/// The model server.
#[derive(Clone)]
pub struct Upstream {
    client: Client<HttpConnector, Full<Bytes>>,
    base: String,
    authority: HeaderValue,
    key: Option<(HeaderValue, HeaderValue)>,
    timeout: Duration,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key stays out of debug output.
        f.debug_struct("Upstream")
            .field("base", &self.base)
            .field("has_key", &self.key.is_some())
            .finish_non_exhaustive()
    }
}

/// Hop-by-hop headers (RFC 9110 §7.6.1) and the ones the gateway sets itself.
const DROPPED: [HeaderName; 10] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::HOST,
    header::CONTENT_LENGTH,
];

impl Upstream {
    /// A client for `base` (`http://host:port`, validated by the configuration), sending
    /// `key` instead of the client's credentials when given.
    pub fn new(base: &str, key: Option<&str>, timeout: Duration) -> Result<Upstream, String> {
        let base = base.trim_end_matches('/').to_owned();
        let uri: Uri = base.parse().map_err(|e| format!("upstream.url: {e}"))?;
        let authority = uri
            .authority()
            .ok_or("upstream.url: no host")?
            .as_str()
            .parse::<HeaderValue>()
            .map_err(|e| format!("upstream.url: {e}"))?;
        let key = match key {
            Some(k) => {
                let mut bearer = HeaderValue::try_from(format!("Bearer {k}"))
                    .map_err(|_| "upstream key: not a valid header value".to_owned())?;
                bearer.set_sensitive(true);
                let mut plain = HeaderValue::try_from(k)
                    .map_err(|_| "upstream key: not a valid header value".to_owned())?;
                plain.set_sensitive(true);
                Some((bearer, plain))
            }
            None => None,
        };
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_keepalive(Some(Duration::from_secs(60)));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(1024)
            .build(connector);
        Ok(Upstream {
            client,
            base,
            authority,
            key,
            timeout,
        })
    }

    /// Sends a request with `path_and_query` and the client's `headers` (filtered), and
    /// waits for the response headers.
    pub async fn send(
        &self,
        method: Method,
        path_and_query: &str,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Result<Response<Incoming>, UpstreamFailure> {
        let uri: Uri = format!("{}{}", self.base, path_and_query)
            .parse()
            .map_err(|_| UpstreamFailure::Request)?;
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .body(Full::new(body))
            .map_err(|_| UpstreamFailure::Request)?;
        let out = req.headers_mut();
        for (name, value) in headers {
            if DROPPED.contains(name) || name == header::ACCEPT_ENCODING {
                continue;
            }
            if self.key.is_some() && (name == header::AUTHORIZATION || name == "x-api-key") {
                continue;
            }
            out.append(name.clone(), value.clone());
        }
        out.insert(header::HOST, self.authority.clone());
        if let Some((bearer, plain)) = &self.key {
            out.insert(header::AUTHORIZATION, bearer.clone());
            out.insert(HeaderName::from_static("x-api-key"), plain.clone());
        }
        match tokio::time::timeout(self.timeout, self.client.request(req)).await {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(_)) => Err(UpstreamFailure::Connect),
            Err(_) => Err(UpstreamFailure::Timeout),
        }
    }
}

/// Response headers passed back to the client: everything but hop-by-hop headers and the
/// length (the gateway may change the body).
pub fn response_headers(from: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::with_capacity(from.len());
    for (name, value) in from {
        if DROPPED.contains(name) {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    out
}

//! A TAXII 2.1 client (OASIS CS01 sections 4 to 5): what `moat intel pull` and `moat intel push`
//! use to talk to any TAXII 2.1 server, Moat's own or another vendor's, over HTTP or HTTPS.
//!
//! Every request asks for the TAXII media type, carries HTTP Basic credentials when given, and
//! runs under a timeout and a cap on the response size, so a slow or hostile server can neither
//! hang a pull nor exhaust memory. Every success must come back as TAXII; an error comes back
//! as [`TaxiiError::Remote`] with the server's title and description, shortened. Object pages
//! are read with [`moat_intel::parse_envelope`], which checks every object.
//!
//! Not a crawler: it follows no redirect, and the pagination loop lives in [`crate::pull`].
//! The password never reaches `Debug` output, logs or errors; URLs with credentials in them
//! are refused for the same reason.

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;
use moat_intel::Envelope;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{TaxiiError, MEDIA_TYPE};

/// How long one request may take, connection and whole body included, unless configured.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest response body accepted, unless configured (64 MiB).
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 64 << 20;

/// Longest server-supplied error title kept, in characters.
const MAX_TITLE_CHARS: usize = 200;
/// Longest server-supplied error description kept, in characters.
const MAX_DESCRIPTION_CHARS: usize = 500;

/// HTTP Basic credentials for a TAXII server. `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name (no `:`).
    pub user: String,
    /// The password.
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// A discovery resource (TAXII 2.1 section 4.1.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Discovery {
    /// A name for the server.
    #[serde(default)]
    pub title: String,
    /// What the server is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Whom to contact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<String>,
    /// The default API root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    /// The API roots the server lists.
    #[serde(default)]
    pub api_roots: Vec<String>,
}

/// An API root resource (TAXII 2.1 section 4.2.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiRoot {
    /// A name for the API root.
    #[serde(default)]
    pub title: String,
    /// What it holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The TAXII versions it speaks (media types).
    #[serde(default)]
    pub versions: Vec<String>,
    /// The largest request body it accepts, in bytes (0 when the server did not say).
    #[serde(default)]
    pub max_content_length: u64,
}

/// A collection resource (TAXII 2.1 section 5.2.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Collection {
    /// The collection's id.
    pub id: String,
    /// Its name.
    #[serde(default)]
    pub title: String,
    /// What it holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// A short name for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    /// Whether these credentials may read it.
    #[serde(default)]
    pub can_read: bool,
    /// Whether these credentials may write to it.
    #[serde(default)]
    pub can_write: bool,
    /// The media types of its objects.
    #[serde(default)]
    pub media_types: Vec<String>,
}

/// One object's line in a status resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusDetail {
    /// The object's id.
    pub id: String,
    /// The object's version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// What happened to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A status resource (TAXII 2.1 section 4.3.1): the outcome of adding objects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// The status's id (`GET {api_root}/status/{id}/`).
    pub id: String,
    /// `complete` or `pending`.
    pub status: String,
    /// When the request was received.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_timestamp: Option<String>,
    /// Objects in the request.
    #[serde(default)]
    pub total_count: u64,
    /// Objects added.
    #[serde(default)]
    pub success_count: u64,
    /// Objects refused.
    #[serde(default)]
    pub failure_count: u64,
    /// Objects not processed yet.
    #[serde(default)]
    pub pending_count: u64,
    /// The objects added, when the server lists them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub successes: Vec<StatusDetail>,
    /// The objects refused, when the server lists them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<StatusDetail>,
    /// The objects not processed yet, when the server lists them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pendings: Vec<StatusDetail>,
}

/// The filters and paging of one `GET …/objects/` (TAXII 2.1 section 3.4 and 5.4).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageQuery {
    /// Only objects added after this timestamp.
    pub added_after: Option<String>,
    /// At most this many objects in the page (the server may send fewer).
    pub limit: Option<u32>,
    /// The `next` token of the previous page.
    pub next: Option<String>,
    /// `match[id]`: only these ids.
    pub match_id: Vec<String>,
    /// `match[type]`: only these types.
    pub match_type: Vec<String>,
    /// `match[version]`: `last` (the server's default), `first`, `all` or timestamps.
    pub match_version: Vec<String>,
    /// `match[spec_version]`: only these STIX versions.
    pub match_spec_version: Vec<String>,
}

impl PageQuery {
    /// The query string, without the `?`, every value percent-encoded.
    pub fn to_query_string(&self) -> String {
        let mut pairs: Vec<(&str, String)> = Vec::new();
        if let Some(a) = &self.added_after {
            pairs.push(("added_after", a.clone()));
        }
        if let Some(l) = self.limit {
            pairs.push(("limit", l.to_string()));
        }
        if let Some(n) = &self.next {
            pairs.push(("next", n.clone()));
        }
        for (key, values) in [
            ("match[id]", &self.match_id),
            ("match[type]", &self.match_type),
            ("match[version]", &self.match_version),
            ("match[spec_version]", &self.match_spec_version),
        ] {
            // TAXII 2.1 section 3.5: several values of one filter are separated by commas.
            if !values.is_empty() {
                pairs.push((key, values.join(",")));
            }
        }
        let mut out = String::new();
        for (key, value) in pairs {
            if !out.is_empty() {
                out.push('&');
            }
            out.push_str(&percent_encode(key));
            out.push('=');
            out.push_str(&percent_encode(&value));
        }
        out
    }
}

/// One page of a collection's objects.
#[derive(Debug)]
pub struct Page {
    /// The envelope: `more`, `next` and the objects, each checked.
    pub envelope: Envelope,
    /// `X-TAXII-Date-Added-First`: when the page's first object was added.
    pub date_added_first: Option<String>,
    /// `X-TAXII-Date-Added-Last`: when the page's last object was added (the next
    /// `added_after`).
    pub date_added_last: Option<String>,
}

/// How requests reach the server.
enum Transport {
    /// HTTP and HTTPS, with the system's root certificates.
    Tls(HyperClient<HttpsConnector<HttpConnector>, Full<Bytes>>),
    /// HTTP only, because the root certificates could not be loaded (`reason`); an HTTPS URL
    /// fails with that reason instead of an obscure handshake error.
    Plain {
        client: HyperClient<HttpConnector, Full<Bytes>>,
        reason: String,
    },
}

/// A TAXII 2.1 client. Cheap to share by reference; its connection pool is reused across
/// requests.
pub struct Client {
    transport: Transport,
    user: Option<String>,
    auth: Option<HeaderValue>,
    timeout: Duration,
    max_response_bytes: usize,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The Authorization header stays out of debug output.
        f.debug_struct("Client")
            .field("user", &self.user)
            .field("https", &matches!(self.transport, Transport::Tls(_)))
            .field("timeout", &self.timeout)
            .field("max_response_bytes", &self.max_response_bytes)
            .finish_non_exhaustive()
    }
}

/// A response that came back whole.
struct Reply {
    status: u16,
    headers: HeaderMap,
    body: Bytes,
}

impl Client {
    /// A client sending `credentials` (HTTP Basic) with every request, when given.
    ///
    /// It speaks HTTP and HTTPS (the system's root certificates). When those cannot be
    /// loaded the client still works over HTTP, and an HTTPS request fails saying why.
    pub fn new(credentials: Option<Credentials>) -> Result<Client, TaxiiError> {
        let (user, auth) = match credentials {
            Some(c) => {
                if c.user.contains(':') {
                    return Err(TaxiiError::BadCredentials("the user name contains ':'"));
                }
                let token = base64::engine::general_purpose::STANDARD
                    .encode(format!("{}:{}", c.user, c.password));
                let mut value = HeaderValue::try_from(format!("Basic {token}"))
                    .map_err(|_| TaxiiError::BadCredentials("not a valid header value"))?;
                value.set_sensitive(true);
                (Some(c.user), Some(value))
            }
            None => (None, None),
        };
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(DEFAULT_TIMEOUT));
        let builder = HyperClient::builder(TokioExecutor::new());
        let transport = match HttpsConnectorBuilder::new().with_native_roots() {
            Ok(tls) => Transport::Tls(
                builder.build(tls.https_or_http().enable_http1().wrap_connector(http)),
            ),
            Err(e) => Transport::Plain {
                client: builder.build(http),
                reason: format!("no usable root certificates on this system ({e})"),
            },
        };
        Ok(Client {
            transport,
            user,
            auth,
            timeout: DEFAULT_TIMEOUT,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        })
    }

    /// The same client with another per-request timeout (connection and whole body).
    pub fn with_timeout(mut self, timeout: Duration) -> Client {
        self.timeout = timeout;
        self
    }

    /// The same client with another cap on response bodies, in bytes.
    pub fn with_max_response_bytes(mut self, max: usize) -> Client {
        self.max_response_bytes = max;
        self
    }

    /// `GET` a discovery resource (usually `https://host/taxii2/`; the trailing `/` is added
    /// when missing).
    pub async fn discovery(&self, url: &str) -> Result<Discovery, TaxiiError> {
        self.get_json(&with_slash(url), "discovery resource").await
    }

    /// `GET` an API root resource.
    pub async fn api_root(&self, api_root_url: &str) -> Result<ApiRoot, TaxiiError> {
        let url = with_slash(api_root_url);
        self.get_json(&url, "API root resource").await
    }

    /// `GET {api_root}/collections/`: the collections these credentials may see.
    pub async fn collections(&self, api_root_url: &str) -> Result<Vec<Collection>, TaxiiError> {
        #[derive(Deserialize)]
        struct Collections {
            #[serde(default)]
            collections: Vec<Collection>,
        }
        let url = join(api_root_url, &["collections"]);
        let list: Collections = self.get_json(&url, "collections resource").await?;
        Ok(list.collections)
    }

    /// `GET {api_root}/collections/{id}/`.
    pub async fn collection(&self, api_root_url: &str, id: &str) -> Result<Collection, TaxiiError> {
        let url = join(api_root_url, &["collections", id]);
        self.get_json(&url, "collection resource").await
    }

    /// `GET {api_root}/collections/{id}/objects/?…`: one page of objects, every object
    /// checked ([`moat_intel::parse_envelope`]).
    pub async fn objects_page(
        &self,
        api_root_url: &str,
        collection_id: &str,
        query: &PageQuery,
    ) -> Result<Page, TaxiiError> {
        let mut url = join(api_root_url, &["collections", collection_id, "objects"]);
        let q = query.to_query_string();
        if !q.is_empty() {
            url.push('?');
            url.push_str(&q);
        }
        let reply = self.send(Method::GET, &url, None).await?;
        let envelope = moat_intel::parse_envelope(&reply.body)?;
        let header_text = |name: &str| {
            reply
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
        };
        Ok(Page {
            envelope,
            date_added_first: header_text("x-taxii-date-added-first"),
            date_added_last: header_text("x-taxii-date-added-last"),
        })
    }

    /// `POST {api_root}/collections/{id}/objects/` with `objects` in one envelope; the
    /// server's status resource comes back (its failures are not an `Err` here).
    pub async fn add_objects(
        &self,
        api_root_url: &str,
        collection_id: &str,
        objects: &[Value],
    ) -> Result<Status, TaxiiError> {
        let body = serde_json::to_vec(&serde_json::json!({ "objects": objects }))
            .map_err(moat_intel::IntelError::from)?;
        self.add_envelope(api_root_url, collection_id, body).await
    }

    /// `POST`s an envelope already serialized.
    pub(crate) async fn add_envelope(
        &self,
        api_root_url: &str,
        collection_id: &str,
        body: Vec<u8>,
    ) -> Result<Status, TaxiiError> {
        let url = join(api_root_url, &["collections", collection_id, "objects"]);
        let reply = self.send(Method::POST, &url, Some(body)).await?;
        decode(&url, &reply.body, "status resource")
    }

    /// `GET {api_root}/status/{id}/`.
    pub async fn status(&self, api_root_url: &str, id: &str) -> Result<Status, TaxiiError> {
        let url = join(api_root_url, &["status", id]);
        self.get_json(&url, "status resource").await
    }

    /// The API root to use for `url`, which may be a discovery resource (its `default`, else
    /// its only API root) or an API root itself. `url` is asked with a trailing `/` (every
    /// TAXII 2.1 URL has one); the result ends with `/` too.
    pub async fn resolve_api_root(&self, url: &str) -> Result<String, TaxiiError> {
        let url = &with_slash(url);
        let found: Value = self.get_json(url, "discovery or API root resource").await?;
        if found.get("api_roots").is_some() {
            let d: Discovery = serde_json::from_value(found).map_err(|e| TaxiiError::Protocol {
                url: url.to_owned(),
                reason: format!("not a valid discovery resource: {e}"),
            })?;
            let chosen = match (d.default.as_deref(), d.api_roots.as_slice()) {
                (Some(default), _) if !default.trim().is_empty() => default.to_owned(),
                (_, [only]) => only.clone(),
                (_, []) => {
                    return Err(TaxiiError::Protocol {
                        url: url.to_owned(),
                        reason: "the discovery resource lists no API root".into(),
                    })
                }
                (_, many) => {
                    return Err(TaxiiError::Protocol {
                        url: url.to_owned(),
                        reason: format!(
                        "the discovery resource has no default and {} API roots; pass one of: {}",
                        many.len(),
                        many.join(", ")
                    ),
                    })
                }
            };
            return resolve_reference(url, &chosen);
        }
        if found.get("versions").is_some() {
            return Ok(url.clone());
        }
        Err(TaxiiError::Protocol {
            url: url.to_owned(),
            reason: "neither a discovery resource (api_roots) nor an API root (versions)".into(),
        })
    }

    async fn get_json<T: DeserializeOwned>(&self, url: &str, what: &str) -> Result<T, TaxiiError> {
        let reply = self.send(Method::GET, url, None).await?;
        decode(url, &reply.body, what)
    }

    /// Sends one request and reads the whole response under the timeout and the size cap;
    /// `Err` unless the status is 2xx and the body is TAXII.
    async fn send(
        &self,
        method: Method,
        url: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Reply, TaxiiError> {
        let uri = parse_url(url)?;
        let https = uri.scheme_str() == Some("https");
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::ACCEPT, MEDIA_TYPE);
        if body.is_some() {
            req = req.header(header::CONTENT_TYPE, MEDIA_TYPE);
        }
        if let Some(auth) = &self.auth {
            req = req.header(header::AUTHORIZATION, auth.clone());
        }
        let req = req
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|_| TaxiiError::BadUrl {
                url: url.to_owned(),
                reason: "cannot build a request for it",
            })?;
        let exchange = async {
            let resp = match &self.transport {
                Transport::Tls(client) => client.request(req).await,
                Transport::Plain { client, reason } => {
                    if https {
                        return Err(TaxiiError::NoTlsRoots {
                            url: url.to_owned(),
                            reason: reason.clone(),
                        });
                    }
                    client.request(req).await
                }
            }
            .map_err(|e| TaxiiError::Transport {
                url: url.to_owned(),
                reason: error_chain(&e),
            })?;
            let (parts, body) = resp.into_parts();
            let too_large = || TaxiiError::TooLarge {
                url: url.to_owned(),
                limit: self.max_response_bytes,
            };
            let declared = parts
                .headers
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            if declared.is_some_and(|n| n > self.max_response_bytes as u64) {
                return Err(too_large());
            }
            let body = Limited::new(body, self.max_response_bytes)
                .collect()
                .await
                .map_err(|e| {
                    if e.is::<http_body_util::LengthLimitError>() {
                        too_large()
                    } else {
                        TaxiiError::Transport {
                            url: url.to_owned(),
                            reason: error_chain(e.as_ref()),
                        }
                    }
                })?
                .to_bytes();
            Ok(Reply {
                status: parts.status.as_u16(),
                headers: parts.headers,
                body,
            })
        };
        let reply = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| TaxiiError::Timeout {
                url: url.to_owned(),
                after: self.timeout,
            })??;
        if !(200..300).contains(&reply.status) {
            return Err(remote_error(reply.status, &reply.body));
        }
        let content_type = reply
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !is_taxii_media_type(content_type) {
            return Err(TaxiiError::Protocol {
                url: url.to_owned(),
                reason: format!(
                    "answered content type {:?}, not {MEDIA_TYPE}",
                    shorten(content_type, 100)
                ),
            });
        }
        Ok(reply)
    }
}

/// Decodes a TAXII resource, naming what was expected when it is not one.
fn decode<T: DeserializeOwned>(url: &str, body: &[u8], what: &str) -> Result<T, TaxiiError> {
    serde_json::from_slice(body).map_err(|e| TaxiiError::Protocol {
        url: url.to_owned(),
        reason: format!("not a valid {what}: {e}"),
    })
}

/// The error of a non-2xx response: the TAXII error message's title and description
/// (TAXII 2.1 section 3.6.1), shortened and stripped of control characters. The response's
/// own status is used even when the body's `http_status` says otherwise.
pub(crate) fn remote_error(status: u16, body: &[u8]) -> TaxiiError {
    #[derive(Deserialize)]
    struct ErrorMessage {
        title: String,
        #[serde(default)]
        description: Option<String>,
    }
    match serde_json::from_slice::<ErrorMessage>(body) {
        Ok(m) => TaxiiError::Remote {
            status,
            title: shorten(&m.title, MAX_TITLE_CHARS),
            description: m
                .description
                .map(|d| shorten(&d, MAX_DESCRIPTION_CHARS))
                .filter(|d| !d.is_empty()),
        },
        Err(_) => {
            // A proxy's HTML page or a plain-text message: a short excerpt still helps.
            let excerpt = String::from_utf8_lossy(&body[..body.len().min(4 * MAX_TITLE_CHARS)]);
            let excerpt = shorten(&excerpt, MAX_TITLE_CHARS);
            TaxiiError::Remote {
                status,
                title: "the body is not a TAXII error message".into(),
                description: (!excerpt.is_empty()).then_some(excerpt),
            }
        }
    }
}

/// At most `max` characters of `text`, control characters turned to spaces, runs of
/// whitespace collapsed, `…` marking a cut.
fn shorten(text: &str, max: usize) -> String {
    let mut out = String::new();
    let mut count = 0;
    let mut last_space = true;
    for c in text.chars() {
        let c = if c.is_control() || c.is_whitespace() {
            ' '
        } else {
            c
        };
        if c == ' ' && last_space {
            continue;
        }
        last_space = c == ' ';
        if count == max {
            out.push('…');
            return out.trim_end().to_owned();
        }
        out.push(c);
        count += 1;
    }
    out.trim_end().to_owned()
}

/// Whether `content_type` is `application/taxii+json`, version 2.1 when a version is given.
fn is_taxii_media_type(content_type: &str) -> bool {
    let mut parts = content_type.split(';');
    let essence = parts.next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case("application/taxii+json") {
        return false;
    }
    parts.all(|p| match p.split_once('=') {
        Some((k, v)) if k.trim().eq_ignore_ascii_case("version") => {
            v.trim().trim_matches('"') == "2.1"
        }
        _ => true,
    })
}

/// Parses an `http` or `https` URL without credentials, query or fragment.
fn parse_url(url: &str) -> Result<Uri, TaxiiError> {
    let bad = |reason| TaxiiError::BadUrl {
        url: url.to_owned(),
        reason,
    };
    let uri: Uri = url.parse().map_err(|_| bad("not a URL"))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err(bad("must start with http:// or https://"));
    }
    let Some(authority) = uri.authority() else {
        return Err(bad("has no host"));
    };
    if authority.as_str().contains('@') {
        // Credentials in a URL end up in logs and shell history; they go in --user instead.
        return Err(TaxiiError::BadUrl {
            url: "(a URL with credentials, not shown)".into(),
            reason: "credentials in the URL are not accepted; give them separately",
        });
    }
    if url.contains('#') {
        return Err(bad("must not have a fragment"));
    }
    Ok(uri)
}

/// `url` with exactly one `/` at the end (TAXII 2.1 URLs all end with one).
pub(crate) fn with_slash(url: &str) -> String {
    format!("{}/", url.trim_end_matches('/'))
}

/// `{base}/{segments…}/`, each segment percent-encoded (a collection id could hold any
/// character), e.g. `join("https://h/api1", &["collections", id, "objects"])` is
/// `https://h/api1/collections/{id}/objects/`.
pub(crate) fn join(base: &str, segments: &[&str]) -> String {
    let mut url = base.trim_end_matches('/').to_owned();
    for s in segments {
        url.push('/');
        url.push_str(&percent_encode(s));
    }
    url.push('/');
    url
}

/// `reference` (an API root a discovery resource listed) resolved against the discovery
/// resource's `base` URL: absolute URLs as they are, `/path` against the host, anything
/// else against the discovery's path.
fn resolve_reference(base: &str, reference: &str) -> Result<String, TaxiiError> {
    let reference = reference.trim();
    if reference.starts_with("http://") || reference.starts_with("https://") {
        parse_url(reference)?;
        return Ok(with_slash(reference));
    }
    let uri = parse_url(base)?;
    let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
        return Err(TaxiiError::BadUrl {
            url: base.to_owned(),
            reason: "has no host",
        });
    };
    let resolved = if reference.starts_with('/') {
        format!("{scheme}://{authority}{reference}")
    } else {
        format!("{}{reference}", with_slash(base))
    };
    parse_url(&resolved)?;
    Ok(with_slash(&resolved))
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn percent_encode(text: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(text.len());
    for &b in text.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
    out
}

/// An error and its causes, `: `-separated (hyper's top-level errors alone say little).
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.ends_with(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn urls_join_with_one_slash_between_and_one_at_the_end() {
        for base in ["http://h:1/api1", "http://h:1/api1/", "http://h:1/api1//"] {
            assert_eq!(
                join(base, &["collections", "c1", "objects"]),
                "http://h:1/api1/collections/c1/objects/"
            );
        }
        assert_eq!(join("https://h/r/", &[]), "https://h/r/");
        assert_eq!(
            join("https://h/r", &["status", "a b/c"]),
            "https://h/r/status/a%20b%2Fc/"
        );
        assert_eq!(with_slash("https://h/taxii2"), "https://h/taxii2/");
    }

    #[test]
    fn api_root_references_resolve_against_the_discovery_url() {
        let base = "https://h:8443/taxii2/";
        assert_eq!(
            resolve_reference(base, "https://other/api1").unwrap(),
            "https://other/api1/"
        );
        assert_eq!(
            resolve_reference(base, "/api1/").unwrap(),
            "https://h:8443/api1/"
        );
        assert_eq!(
            resolve_reference("https://h/taxii2", "api1").unwrap(),
            "https://h/taxii2/api1/"
        );
    }

    #[test]
    fn query_strings_encode_values_and_join_filter_values_with_commas() {
        let q = PageQuery {
            added_after: Some("2024-01-01T00:00:00.000Z".into()),
            limit: Some(50),
            next: Some("a+b/c".into()),
            match_type: vec!["indicator".into(), "campaign".into()],
            ..PageQuery::default()
        };
        assert_eq!(
            q.to_query_string(),
            "added_after=2024-01-01T00%3A00%3A00.000Z&limit=50&next=a%2Bb%2Fc\
             &match%5Btype%5D=indicator%2Ccampaign"
        );
        assert_eq!(PageQuery::default().to_query_string(), "");
    }

    #[test]
    fn urls_with_credentials_or_other_schemes_are_refused_without_echoing_them() {
        let e = parse_url("https://alice:s3cret@h/taxii2/").unwrap_err();
        assert!(!e.to_string().contains("s3cret"), "{e}");
        assert!(parse_url("ftp://h/").is_err());
        assert!(parse_url("h/taxii2/").is_err());
        assert!(parse_url("http://h/taxii2/#x").is_err());
        assert!(parse_url("http://127.0.0.1:9/taxii2/").is_ok());
    }

    #[test]
    fn taxii_error_bodies_give_title_and_description() {
        let body = br#"{"title": "Unauthorized", "description": "bad\ncredentials", "http_status": "401"}"#;
        match remote_error(401, body) {
            TaxiiError::Remote {
                status,
                title,
                description,
            } => {
                assert_eq!(status, 401);
                assert_eq!(title, "Unauthorized");
                assert_eq!(description.as_deref(), Some("bad credentials"));
            }
            other => panic!("{other:?}"),
        }
        let long = format!(r#"{{"title": "{}"}}"#, "x".repeat(5000));
        match remote_error(500, long.as_bytes()) {
            TaxiiError::Remote {
                title, description, ..
            } => {
                assert_eq!(title.chars().count(), MAX_TITLE_CHARS + 1);
                assert!(title.ends_with('…'));
                assert_eq!(description, None);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_body_that_is_not_a_taxii_error_says_so_with_the_status() {
        let e = remote_error(502, b"<html><body>Bad Gateway</body></html>");
        let text = e.to_string();
        assert!(text.contains("502"), "{text}");
        assert!(text.contains("not a TAXII error"), "{text}");
        assert!(text.contains("Bad Gateway"), "{text}");
        let empty = remote_error(404, b"").to_string();
        assert_eq!(
            empty,
            "server answered 404: the body is not a TAXII error message"
        );
    }

    #[test]
    fn the_taxii_media_type_is_recognised_with_or_without_spaces() {
        assert!(is_taxii_media_type("application/taxii+json;version=2.1"));
        assert!(is_taxii_media_type("application/taxii+json; version=2.1"));
        assert!(is_taxii_media_type("Application/TAXII+json"));
        assert!(!is_taxii_media_type("application/taxii+json;version=2.0"));
        assert!(!is_taxii_media_type("application/json"));
        assert!(!is_taxii_media_type(""));
    }

    #[test]
    fn debug_output_never_shows_the_password() {
        let c = Credentials {
            user: "alice".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
        let client = Client::new(Some(c)).unwrap();
        let text = format!("{client:?}");
        assert!(
            !text.contains("hunter2") && !text.contains("YWxpY2U6aHVudGVyMg"),
            "{text}"
        );
        assert!(text.contains("alice"));
    }

    #[test]
    fn user_names_with_a_colon_are_refused() {
        let c = Credentials {
            user: "a:b".into(),
            password: "p".into(),
        };
        assert!(Client::new(Some(c)).is_err());
    }
}

//! The TAXII 2.1 HTTP server: discovery, one API root, its collections, objects, manifest,
//! object versions and status resources (OASIS TAXII 2.1, sections 4 and 5).
//!
//! Every request needs HTTP Basic credentials of a configured partner; a partner sees only
//! the collections it may read or write (a collection it has no right on answers 404, as if
//! it did not exist), reads need the read right and POSTs the write right (403 otherwise),
//! and a status resource is visible only to the partner whose POST made it. Every response,
//! errors included (axum's own 404 and 405 too), is `application/taxii+json;version=2.1`;
//! errors are TAXII `error` messages. Requests are logged at debug level with the partner's
//! name, never a password; server faults are logged once, where they become a response.
//!
//! TLS is not terminated here: run it behind a reverse proxy for HTTPS (the proxy's
//! `X-Forwarded-Proto: https` makes discovery advertise `https://` URLs).
//!
//! Not storage ([`crate::store`]; reached through `spawn_blocking`, never on the async
//! runtime) and not the client ([`crate::client`]).

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{Extension, Path, Query, Request, State};
use axum::http::header::{
    HeaderMap, HeaderValue, ACCEPT, ALLOW, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HOST,
    WWW_AUTHENTICATE,
};
use axum::http::{StatusCode, Uri};
use axum::middleware::{from_fn_with_state, map_response, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, MethodRouter};
use axum::Router;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::Serialize;
use serde_json::{json, Map, Value};
use tracing::{debug, error, info};

use crate::config::{CollectionConfig, Partner, ServerConfig};
use crate::store::{parse_stix_time, Filter, Page, Store, VersionMatch};
use crate::{TaxiiError, MEDIA_TYPE, STIX_MEDIA_TYPE};

/// What every request handler shares: the configuration and the store.
#[derive(Debug)]
pub struct ServerState {
    config: ServerConfig,
    store: Store,
}

impl ServerState {
    /// A state over an opened store.
    pub fn new(config: ServerConfig, store: Store) -> ServerState {
        ServerState { config, store }
    }

    /// Opens the store the configuration names (blocking: SQLite).
    pub fn open(config: ServerConfig) -> Result<ServerState, TaxiiError> {
        let store = Store::open(&config.db)?;
        Ok(ServerState { config, store })
    }

    /// The configuration.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }
}

/// The authenticated partner of a request (its index in the configuration).
#[derive(Clone, Copy)]
struct Caller(usize);

/// The server's routes, each with and without its trailing slash.
pub fn router(state: Arc<ServerState>) -> Router {
    let routes: [(&str, MethodRouter<Arc<ServerState>>); 9] = [
        ("/taxii2/", get(discovery)),
        ("/{api_root}/", get(api_root)),
        ("/{api_root}/status/{status_id}/", get(status)),
        ("/{api_root}/collections/", get(collections)),
        ("/{api_root}/collections/{id}/", get(collection)),
        (
            "/{api_root}/collections/{id}/objects/",
            get(get_objects).post(add_objects),
        ),
        (
            "/{api_root}/collections/{id}/objects/{object_id}/",
            get(get_object),
        ),
        (
            "/{api_root}/collections/{id}/objects/{object_id}/versions/",
            get(versions),
        ),
        ("/{api_root}/collections/{id}/manifest/", get(manifest)),
    ];
    let mut router = Router::new();
    for (path, method_router) in routes {
        router = router
            .route(path.trim_end_matches('/'), method_router.clone())
            .route(path, method_router);
    }
    router
        .fallback(not_found)
        .layer(from_fn_with_state(state.clone(), guard))
        .layer(map_response(taxii_errors))
        .with_state(state)
}

/// Opens the configured store and serves TAXII on `listener` until `shutdown` completes,
/// then finishes the requests in flight.
pub async fn serve(
    config: ServerConfig,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), TaxiiError> {
    let state = tokio::task::spawn_blocking(move || ServerState::open(config))
        .await
        .map_err(|e| TaxiiError::Task(e.to_string()))??;
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    info!(
        listen = %addr,
        api_root = %state.config.api_root,
        collections = state.config.collections.len(),
        partners = state.config.partners.len(),
        db = %state.store.path(),
        "taxii server listening"
    );
    axum::serve(listener, router(Arc::new(state)))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(TaxiiError::Serve)
}

/// Authentication and content negotiation, before any route: 401 without valid
/// credentials (whether the user exists or not), 406 when the client does not accept TAXII.
async fn guard(State(state): State<Arc<ServerState>>, mut req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let partner = basic_credentials(req.headers()).and_then(|(user, password)| {
        let found = state.config.authenticate(&user, &password)?;
        state
            .config
            .partners
            .iter()
            .position(|p| std::ptr::eq(p, found))
    });
    let Some(index) = partner else {
        debug!(%method, %path, status = 401, "taxii request without valid credentials");
        return Problem::new(
            StatusCode::UNAUTHORIZED,
            "valid HTTP Basic credentials are required",
        )
        .into_response();
    };
    let name = state
        .config
        .partners
        .get(index)
        .map(|p| p.name.clone())
        .unwrap_or_default();
    let response = if accepts_taxii(req.headers()) {
        req.extensions_mut().insert(Caller(index));
        next.run(req).await
    } else {
        Problem::new(
            StatusCode::NOT_ACCEPTABLE,
            format!("the Accept header must admit {MEDIA_TYPE}"),
        )
        .into_response()
    };
    debug!(
        partner = %name,
        %method,
        %path,
        status = response.status().as_u16(),
        "taxii request"
    );
    response
}

/// Turns any error response not already a TAXII error (axum's 405 and rejections) into one.
async fn taxii_errors(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let ours = response
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|v| v == MEDIA_TYPE);
    if ours {
        return response;
    }
    let allow = response.headers().get(ALLOW).cloned();
    let description = match status {
        StatusCode::METHOD_NOT_ALLOWED => "this endpoint does not take that method",
        StatusCode::NOT_FOUND => "no such TAXII resource",
        _ if status.is_client_error() => "the server did not understand the request",
        _ => "the server failed",
    };
    let mut out = Problem::new(status, description).into_response();
    if let Some(allow) = allow {
        out.headers_mut().insert(ALLOW, allow);
    }
    out
}

async fn not_found() -> Problem {
    Problem::new(StatusCode::NOT_FOUND, "no such TAXII resource")
}

async fn discovery(State(state): State<Arc<ServerState>>, headers: HeaderMap) -> Response {
    let cfg = &state.config;
    let root = api_root_url(cfg, &headers);
    let mut body = Map::new();
    body.insert("title".into(), cfg.title.clone().into());
    if let Some(d) = &cfg.description {
        body.insert("description".into(), d.clone().into());
    }
    if let Some(c) = &cfg.contact {
        body.insert("contact".into(), c.clone().into());
    }
    body.insert("default".into(), root.clone().into());
    body.insert("api_roots".into(), json!([root]));
    taxii_json(StatusCode::OK, &Value::Object(body))
}

async fn api_root(
    State(state): State<Arc<ServerState>>,
    Path(root): Path<String>,
) -> Result<Response, Problem> {
    let cfg = &state.config;
    check_root(cfg, &root)?;
    let mut body = Map::new();
    body.insert("title".into(), cfg.title.clone().into());
    if let Some(d) = &cfg.description {
        body.insert("description".into(), d.clone().into());
    }
    body.insert("versions".into(), json!([MEDIA_TYPE]));
    body.insert("max_content_length".into(), cfg.max_content_length.into());
    Ok(taxii_json(StatusCode::OK, &Value::Object(body)))
}

async fn status(
    State(state): State<Arc<ServerState>>,
    Extension(caller): Extension<Caller>,
    Path((root, status_id)): Path<(String, String)>,
) -> Result<Response, Problem> {
    check_root(&state.config, &root)?;
    let owner = partner(&state, caller)?.name.clone();
    let found = blocking(&state, move |s| s.status(&status_id, &owner)).await?;
    match found {
        Some(status) => Ok(taxii_json(StatusCode::OK, &status)),
        None => Err(Problem::new(
            StatusCode::NOT_FOUND,
            "no such status resource",
        )),
    }
}

async fn collections(
    State(state): State<Arc<ServerState>>,
    Extension(caller): Extension<Caller>,
    Path(root): Path<String>,
) -> Result<Response, Problem> {
    check_root(&state.config, &root)?;
    let partner = partner(&state, caller)?;
    let visible: Vec<Value> = state
        .config
        .collections
        .iter()
        .filter(|c| partner.can_read(&c.id) || partner.can_write(&c.id))
        .map(|c| collection_resource(c, partner))
        .collect();
    // TAXII: with no collections the key is omitted and the resource is an empty object.
    let body = if visible.is_empty() {
        json!({})
    } else {
        json!({ "collections": visible })
    };
    Ok(taxii_json(StatusCode::OK, &body))
}

async fn collection(
    State(state): State<Arc<ServerState>>,
    Extension(caller): Extension<Caller>,
    Path((root, id)): Path<(String, String)>,
) -> Result<Response, Problem> {
    check_root(&state.config, &root)?;
    let partner = partner(&state, caller)?;
    let c = find_collection(&state.config, partner, &id, Need::Either)?;
    Ok(taxii_json(StatusCode::OK, &collection_resource(c, partner)))
}

async fn get_objects(
    State(state): State<Arc<ServerState>>,
    Extension(caller): Extension<Caller>,
    Path((root, id)): Path<(String, String)>,
    uri: Uri,
) -> Result<Response, Problem> {
    let coll = readable(&state, caller, &root, &id)?;
    let filter = parse_filter(&uri, Endpoint::Objects, &state.config)?;
    let page = blocking(&state, move |s| s.objects(&coll, &filter)).await?;
    page_response(page, "objects")
}

async fn manifest(
    State(state): State<Arc<ServerState>>,
    Extension(caller): Extension<Caller>,
    Path((root, id)): Path<(String, String)>,
    uri: Uri,
) -> Result<Response, Problem> {
    let coll = readable(&state, caller, &root, &id)?;
    let filter = parse_filter(&uri, Endpoint::Objects, &state.config)?;
    let page = blocking(&state, move |s| s.manifest(&coll, &filter)).await?;
    page_response(page, "objects")
}

async fn get_object(
    State(state): State<Arc<ServerState>>,
    Extension(caller): Extension<Caller>,
    Path((root, id, object_id)): Path<(String, String, String)>,
    uri: Uri,
) -> Result<Response, Problem> {
    let coll = readable(&state, caller, &root, &id)?;
    let filter = parse_filter(&uri, Endpoint::Object, &state.config)?;
    let page = blocking(&state, move |s| s.object(&coll, &object_id, &filter)).await?;
    object_page(page, "objects")
}

async fn versions(
    State(state): State<Arc<ServerState>>,
    Extension(caller): Extension<Caller>,
    Path((root, id, object_id)): Path<(String, String, String)>,
    uri: Uri,
) -> Result<Response, Problem> {
    let coll = readable(&state, caller, &root, &id)?;
    let filter = parse_filter(&uri, Endpoint::Versions, &state.config)?;
    let page = blocking(&state, move |s| s.versions(&coll, &object_id, &filter)).await?;
    object_page(page, "versions")
}

/// One object's page (its versions or their ids), or 404 when the collection has no such object.
fn object_page<T: Serialize>(page: Option<Page<T>>, key: &str) -> Result<Response, Problem> {
    match page {
        Some(page) => page_response(page, key),
        None => Err(Problem::new(
            StatusCode::NOT_FOUND,
            "no such object in this collection",
        )),
    }
}

async fn add_objects(
    State(state): State<Arc<ServerState>>,
    Extension(caller): Extension<Caller>,
    Path((root, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    let cfg = &state.config;
    check_root(cfg, &root)?;
    let partner = partner(&state, caller)?;
    let coll = find_collection(cfg, partner, &id, Need::Write)?.id.clone();
    if !is_taxii_content(&headers) {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("the body must be {MEDIA_TYPE}"),
        ));
    }
    let max = cfg.max_content_length;
    let too_large = || {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is larger than max_content_length ({max} bytes)"),
        )
    };
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|len| len > max as u64) {
        return Err(too_large());
    }
    let bytes = axum::body::to_bytes(body, max).await.map_err(|e| {
        if e.into_inner()
            .downcast_ref::<http_body_util::LengthLimitError>()
            .is_some()
        {
            too_large()
        } else {
            Problem::new(StatusCode::BAD_REQUEST, "the body could not be read")
        }
    })?;
    let envelope: Value = serde_json::from_slice(&bytes).map_err(|e| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            format!("the body is not JSON: {e}"),
        )
    })?;
    let Value::Object(mut envelope) = envelope else {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "the body is not a TAXII envelope (a JSON object)",
        ));
    };
    let objects = match envelope.remove("objects") {
        Some(Value::Array(objects)) => objects,
        None => Vec::new(),
        Some(_) => {
            return Err(Problem::new(
                StatusCode::BAD_REQUEST,
                "the envelope's objects must be a list",
            ))
        }
    };
    if objects.is_empty() {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "the envelope holds no objects",
        ));
    }
    let owner = partner.name.clone();
    let now = now_ms();
    let status = blocking(&state, move |s| {
        s.add_objects_by(&owner, &coll, &objects, now)
    })
    .await?;
    Ok(taxii_json(StatusCode::ACCEPTED, &status))
}

/// Which filters an endpoint takes (TAXII 2.1 sections 5.3, 5.4, 5.6 and 5.8).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    /// Get objects and get manifest: every filter.
    Objects,
    /// Get an object: `match[version]` and `match[spec_version]`.
    Object,
    /// Get object versions: `match[spec_version]`.
    Versions,
}

/// The query string as a [`Filter`]: `limit` defaults to the page size and is capped at the
/// largest; a malformed or repeated parameter is a 400 naming it; `match` fields the
/// endpoint does not take, and unknown parameters, are ignored (TAXII 2.1 section 3.4).
fn parse_filter(uri: &Uri, endpoint: Endpoint, cfg: &ServerConfig) -> Result<Filter, Problem> {
    let pairs = Query::<Vec<(String, String)>>::try_from_uri(uri)
        .map_err(|e| bad_parameter("query string", &e.body_text()))?
        .0;
    let mut filter = Filter {
        limit: Some(cfg.page_size),
        ..Filter::default()
    };
    let mut seen = HashSet::new();
    for (key, value) in pairs {
        let known = matches!(
            key.as_str(),
            "added_after"
                | "limit"
                | "next"
                | "match[id]"
                | "match[type]"
                | "match[version]"
                | "match[spec_version]"
        );
        if known && !seen.insert(key.clone()) {
            return Err(bad_parameter(&key, "given more than once"));
        }
        match key.as_str() {
            "added_after" => {
                if parse_stix_time(&value).is_none() {
                    return Err(bad_parameter(
                        &key,
                        &format!(
                            "{} is not a STIX timestamp (YYYY-MM-DDTHH:MM:SS[.s]Z)",
                            quote(&value)
                        ),
                    ));
                }
                filter.added_after = Some(value);
            }
            "limit" => {
                let n = value
                    .parse::<u64>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| bad_parameter(&key, "must be a positive integer"))?;
                let cap = cfg.max_page_size as u64;
                filter.limit = Some(usize::try_from(n.min(cap)).unwrap_or(cfg.max_page_size));
            }
            "next" => {
                if value.is_empty() {
                    return Err(bad_parameter(&key, "must not be empty"));
                }
                filter.next = Some(value);
            }
            "match[id]" if endpoint == Endpoint::Objects => filter.ids = list(&key, &value)?,
            "match[type]" if endpoint == Endpoint::Objects => filter.types = list(&key, &value)?,
            "match[version]" if endpoint != Endpoint::Versions => {
                let mut versions = Vec::new();
                for item in list(&key, &value)? {
                    let v = VersionMatch::parse(&item).ok_or_else(|| {
                        bad_parameter(
                            &key,
                            &format!(
                                "{} is not last, first, all or a STIX timestamp",
                                quote(&item)
                            ),
                        )
                    })?;
                    versions.push(v);
                }
                if versions.len() > 1 && versions.contains(&VersionMatch::All) {
                    return Err(bad_parameter(
                        &key,
                        "all cannot be combined with other values",
                    ));
                }
                filter.versions = versions;
            }
            "match[spec_version]" => filter.spec_versions = list(&key, &value)?,
            _ => {}
        }
    }
    Ok(filter)
}

/// A comma-separated `match` value; empty items are refused.
fn list(key: &str, value: &str) -> Result<Vec<String>, Problem> {
    let items: Vec<String> = value.split(',').map(str::to_owned).collect();
    if items.iter().any(String::is_empty) {
        return Err(bad_parameter(key, "has an empty value"));
    }
    Ok(items)
}

/// A client's value in an error message: JSON-quoted, at most 64 characters.
fn quote(value: &str) -> String {
    let short: String = value.chars().take(64).collect();
    format!("{short:?}")
}

fn bad_parameter(name: &str, reason: &str) -> Problem {
    Problem::from(TaxiiError::BadParameter {
        name: name.to_owned(),
        reason: reason.to_owned(),
    })
}

#[derive(Clone, Copy)]
enum Need {
    Read,
    Write,
    Either,
}

fn check_root(cfg: &ServerConfig, root: &str) -> Result<(), Problem> {
    if root == cfg.api_root {
        Ok(())
    } else {
        Err(Problem::new(StatusCode::NOT_FOUND, "no such API root"))
    }
}

/// The id of the collection `id` under API root `root` when the caller may read it.
fn readable(state: &ServerState, caller: Caller, root: &str, id: &str) -> Result<String, Problem> {
    check_root(&state.config, root)?;
    let partner = partner(state, caller)?;
    Ok(find_collection(&state.config, partner, id, Need::Read)?
        .id
        .clone())
}

fn partner(state: &ServerState, caller: Caller) -> Result<&Partner, Problem> {
    state.config.partners.get(caller.0).ok_or_else(|| {
        error!("authenticated partner index out of range");
        Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "the server failed")
    })
}

/// The collection `id` (or alias) if the partner may see it (404 otherwise, so that a
/// collection it has no right on is not revealed) and has the right needed (403).
fn find_collection<'a>(
    cfg: &'a ServerConfig,
    partner: &Partner,
    id: &str,
    need: Need,
) -> Result<&'a CollectionConfig, Problem> {
    let hidden = || Problem::new(StatusCode::NOT_FOUND, "no such collection");
    let c = cfg.collection(id).ok_or_else(hidden)?;
    let (read, write) = (partner.can_read(&c.id), partner.can_write(&c.id));
    match need {
        _ if !read && !write => Err(hidden()),
        Need::Read if !read => Err(Problem::new(
            StatusCode::FORBIDDEN,
            "this partner may not read this collection",
        )),
        Need::Write if !write => Err(Problem::new(
            StatusCode::FORBIDDEN,
            "this partner may not write to this collection",
        )),
        _ => Ok(c),
    }
}

fn collection_resource(c: &CollectionConfig, partner: &Partner) -> Value {
    let mut body = Map::new();
    body.insert("id".into(), c.id.clone().into());
    body.insert("title".into(), c.title.clone().into());
    if let Some(d) = &c.description {
        body.insert("description".into(), d.clone().into());
    }
    if let Some(a) = &c.alias {
        body.insert("alias".into(), a.clone().into());
    }
    body.insert("can_read".into(), partner.can_read(&c.id).into());
    body.insert("can_write".into(), partner.can_write(&c.id).into());
    body.insert("media_types".into(), json!([STIX_MEDIA_TYPE]));
    Value::Object(body)
}

/// The API root's absolute URL from the request's `Host` (`https` behind a proxy that says
/// so), or a relative one when the host is missing or odd.
fn api_root_url(cfg: &ServerConfig, headers: &HeaderMap) -> String {
    let host = headers.get(HOST).and_then(|v| v.to_str().ok()).filter(|h| {
        !h.is_empty()
            && h.len() <= 255
            && h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
    });
    let https = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"));
    match host {
        Some(host) => format!(
            "{}://{host}/{}/",
            if https { "https" } else { "http" },
            cfg.api_root
        ),
        None => format!("/{}/", cfg.api_root),
    }
}

/// Runs a store call on the blocking pool.
async fn blocking<T: Send + 'static>(
    state: &Arc<ServerState>,
    f: impl FnOnce(&Store) -> Result<T, TaxiiError> + Send + 'static,
) -> Result<T, Problem> {
    let state = Arc::clone(state);
    tokio::task::spawn_blocking(move || f(&state.store))
        .await
        .map_err(|e| Problem::from(TaxiiError::Task(e.to_string())))?
        .map_err(Problem::from)
}

/// A page as an envelope (`objects`), a manifest (`objects`) or a versions resource
/// (`versions`), with the date-added headers; `more` and the list are left out when false
/// or empty, so an empty page is `{}` as TAXII asks.
fn page_response<T: Serialize>(page: Page<T>, field: &str) -> Result<Response, Problem> {
    let mut body = Map::new();
    if page.more {
        body.insert("more".into(), true.into());
    }
    if let Some(next) = &page.next {
        body.insert("next".into(), next.clone().into());
    }
    if !page.items.is_empty() {
        let items = serde_json::to_value(&page.items).map_err(|e| {
            error!(error = %e, "serializing a page failed");
            Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "the server failed")
        })?;
        body.insert(field.into(), items);
    }
    let mut response = taxii_json(StatusCode::OK, &Value::Object(body));
    for (name, value) in [
        ("x-taxii-date-added-first", &page.date_added_first),
        ("x-taxii-date-added-last", &page.date_added_last),
    ] {
        if let Some(v) = value.as_deref().and_then(|v| HeaderValue::from_str(v).ok()) {
            response.headers_mut().insert(name, v);
        }
    }
    Ok(response)
}

/// A JSON body with the TAXII media type.
fn taxii_json(status: StatusCode, body: &impl Serialize) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => (
            status,
            [(CONTENT_TYPE, HeaderValue::from_static(MEDIA_TYPE))],
            bytes,
        )
            .into_response(),
        Err(e) => {
            error!(error = %e, "serializing a response failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                [(CONTENT_TYPE, HeaderValue::from_static(MEDIA_TYPE))],
                r#"{"title":"Internal error","http_status":"500"}"#,
            )
                .into_response()
        }
    }
}

/// The user name and password of an `Authorization: Basic` header.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, Vec<u8>)> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    let user = String::from_utf8(decoded.get(..colon)?.to_vec()).ok()?;
    Some((user, decoded.get(colon + 1..)?.to_vec()))
}

/// Whether `Accept` admits TAXII 2.1: absent, `*/*`, `application/*`, or
/// `application/taxii+json` without a version or with version 2.1 (and no `q=0`).
fn accepts_taxii(headers: &HeaderMap) -> bool {
    let mut present = false;
    for value in headers.get_all(ACCEPT) {
        present = true;
        let Ok(text) = value.to_str() else { continue };
        for item in text.split(',') {
            let Some((kind, version, q_zero)) = media_range(item) else {
                continue;
            };
            if q_zero {
                continue;
            }
            let taxii =
                kind == "application/taxii+json" && version.as_deref().is_none_or(|v| v == "2.1");
            if taxii || kind == "*/*" || kind == "application/*" {
                return true;
            }
        }
    }
    !present
}

/// Whether `Content-Type` is TAXII 2.1 (`application/taxii+json`, version absent or 2.1).
fn is_taxii_content(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(media_range)
        .is_some_and(|(kind, version, _)| {
            kind == "application/taxii+json" && version.as_deref().is_none_or(|v| v == "2.1")
        })
}

/// A media range's lower-cased type, its `version` parameter and whether its `q` is 0.
fn media_range(item: &str) -> Option<(String, Option<String>, bool)> {
    let mut parts = item.split(';');
    let kind = parts.next()?.trim().to_ascii_lowercase();
    if kind.is_empty() {
        return None;
    }
    let mut version = None;
    let mut q_zero = false;
    for param in parts {
        let Some((name, value)) = param.split_once('=') else {
            continue;
        };
        let value = value.trim().trim_matches('"');
        match name.trim().to_ascii_lowercase().as_str() {
            "version" => version = Some(value.to_owned()),
            "q" => q_zero = value.parse::<f32>().is_ok_and(|q| q <= 0.0),
            _ => {}
        }
    }
    Some((kind, version, q_zero))
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A TAXII `error` message as a response.
struct Problem {
    status: StatusCode,
    description: String,
    details: Option<Value>,
}

impl Problem {
    fn new(status: StatusCode, description: impl Into<String>) -> Problem {
        Problem {
            status,
            description: description.into(),
            details: None,
        }
    }
}

impl From<TaxiiError> for Problem {
    fn from(e: TaxiiError) -> Problem {
        match &e {
            TaxiiError::BadParameter { name, .. } => Problem {
                status: StatusCode::BAD_REQUEST,
                details: Some(json!({ "parameter": name })),
                description: e.to_string(),
            },
            _ => {
                error!(error = %e, "taxii request failed");
                Problem::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the server failed; its log has the details",
                )
            }
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let (title, code) = match self.status {
            StatusCode::BAD_REQUEST if self.details.is_some() => ("Bad request", "bad_parameter"),
            StatusCode::BAD_REQUEST => ("Bad request", "bad_request"),
            StatusCode::UNAUTHORIZED => ("Authentication required", "unauthorized"),
            StatusCode::FORBIDDEN => ("Forbidden", "forbidden"),
            StatusCode::NOT_FOUND => ("Not found", "not_found"),
            StatusCode::METHOD_NOT_ALLOWED => ("Method not allowed", "method_not_allowed"),
            StatusCode::NOT_ACCEPTABLE => ("Not acceptable", "not_acceptable"),
            StatusCode::PAYLOAD_TOO_LARGE => ("Payload too large", "too_large"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => {
                ("Unsupported media type", "unsupported_media_type")
            }
            s if s.is_server_error() => ("Internal error", "internal"),
            _ => ("Request failed", "failed"),
        };
        let mut body = Map::new();
        body.insert("title".into(), title.into());
        body.insert("description".into(), self.description.into());
        body.insert("error_code".into(), code.into());
        body.insert(
            "http_status".into(),
            self.status.as_u16().to_string().into(),
        );
        if let Some(details) = self.details {
            body.insert("details".into(), details);
        }
        let mut response = taxii_json(self.status, &Value::Object(body));
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"moat-taxii\""),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(name: axum::http::HeaderName, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn accept_admits_taxii_21_and_wildcards_only() {
        assert!(accepts_taxii(&HeaderMap::new()));
        for ok in [
            "application/taxii+json;version=2.1",
            "application/taxii+json",
            "Application/TAXII+json; version=\"2.1\"",
            "*/*",
            "application/*",
            "text/html, application/taxii+json;version=2.1;q=0.5",
            "application/taxii+json;version=2.1,application/stix+json;version=2.1",
        ] {
            assert!(accepts_taxii(&with(ACCEPT, ok)), "{ok}");
        }
        for bad in [
            "application/json",
            "application/taxii+json;version=2.0",
            "application/taxii+json;version=2.1;q=0",
            "text/html",
        ] {
            assert!(!accepts_taxii(&with(ACCEPT, bad)), "{bad}");
        }
    }

    #[test]
    fn content_type_must_be_taxii() {
        assert!(is_taxii_content(&with(
            CONTENT_TYPE,
            "application/taxii+json;version=2.1"
        )));
        assert!(is_taxii_content(&with(
            CONTENT_TYPE,
            "application/taxii+json"
        )));
        assert!(!is_taxii_content(&with(CONTENT_TYPE, "application/json")));
        assert!(!is_taxii_content(&with(
            CONTENT_TYPE,
            "application/stix+json;version=2.1"
        )));
        assert!(!is_taxii_content(&HeaderMap::new()));
    }

    #[test]
    fn basic_credentials_split_at_the_first_colon() {
        let h = with(
            AUTHORIZATION,
            &format!("Basic {}", STANDARD.encode("globex:pa:ss")),
        );
        assert_eq!(
            basic_credentials(&h),
            Some(("globex".into(), b"pa:ss".to_vec()))
        );
        assert_eq!(basic_credentials(&with(AUTHORIZATION, "Bearer abc")), None);
        assert_eq!(basic_credentials(&with(AUTHORIZATION, "Basic !!!")), None);
        let no_colon = with(
            AUTHORIZATION,
            &format!("Basic {}", STANDARD.encode("globex")),
        );
        assert_eq!(basic_credentials(&no_colon), None);
    }

    #[test]
    fn discovery_urls_follow_host_and_forwarded_proto() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("s"), "0123456789abcdef").unwrap();
        let cfg = ServerConfig::from_toml(
            "[server]\ndb = \"t.db\"\ntitle = \"t\"\n[[collection]]\n\
             id = \"91a7b528-80eb-42ed-a74d-c6fbd5a26116\"\ntitle = \"c\"\n\
             [[partner]]\nname = \"p\"\npassword_file = \"s\"\n",
            dir.path(),
        )
        .unwrap();
        let mut h = with(HOST, "taxii.example.com:8443");
        assert_eq!(api_root_url(&cfg, &h), "http://taxii.example.com:8443/api/");
        h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        assert_eq!(
            api_root_url(&cfg, &h),
            "https://taxii.example.com:8443/api/"
        );
        assert_eq!(api_root_url(&cfg, &with(HOST, "evil/x?y")), "/api/");
        assert_eq!(api_root_url(&cfg, &HeaderMap::new()), "/api/");
    }
}

//! The client and `pull`/`push` against a tiny fake TAXII 2.1 server (axum on 127.0.0.1:0):
//! paging, incremental pulls, refused objects, TAXII errors and pagination loops. Interop with
//! Moat's own server is tested with the server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use moat_taxii::client::{Client, Credentials, PageQuery};
use moat_taxii::intel_db::IntelDb;
use moat_taxii::pull::{pull, push_batched, PullOptions};
use moat_taxii::{TaxiiError, MEDIA_TYPE};
use serde_json::{json, Value};

const USER: &str = "alice";
const PASSWORD: &str = "correct horse";

#[derive(Default)]
struct Fake {
    base: String,
    /// `(date_added, object)`, in the order added.
    objects: Vec<(String, Value)>,
    /// Answer every page with `more: true` and the same `next`.
    endless: bool,
    /// Answer every objects request with a TAXII error.
    failing: bool,
    /// The query of every objects request.
    queries: Vec<HashMap<String, String>>,
    /// The objects of every POST.
    posted: Vec<Vec<Value>>,
    /// Refuse posted objects whose id is this.
    refuse_id: Option<String>,
}

type Shared = Arc<Mutex<Fake>>;

fn taxii(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, MEDIA_TYPE)],
        body.to_string(),
    )
        .into_response()
}

/// The refusal of a request without the TAXII `Accept` or the right credentials.
fn refused(headers: &HeaderMap) -> Option<Response> {
    use base64::Engine as _;
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"))
    );
    let accept_ok = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/taxii+json"));
    if !accept_ok {
        return Some(taxii(
            StatusCode::NOT_ACCEPTABLE,
            json!({"title": "Not Acceptable"}),
        ));
    }
    match headers.get(header::AUTHORIZATION) {
        Some(v) if v.as_bytes() == expected.as_bytes() => None,
        _ => Some(taxii(
            StatusCode::UNAUTHORIZED,
            json!({
                "title": "Unauthorized",
                "description": "the credentials were not accepted",
                "http_status": "401"
            }),
        )),
    }
}

async fn discovery(State(s): State<Shared>, headers: HeaderMap) -> Response {
    if let Some(r) = refused(&headers) {
        return r;
    }
    let base = s.lock().unwrap().base.clone();
    taxii(
        StatusCode::OK,
        json!({
            "title": "fake",
            "default": format!("{base}/api1/"),
            "api_roots": [format!("{base}/api1/"), format!("{base}/api2/")]
        }),
    )
}

async fn api_root(headers: HeaderMap) -> Response {
    if let Some(r) = refused(&headers) {
        return r;
    }
    taxii(
        StatusCode::OK,
        json!({"title": "api1", "versions": [MEDIA_TYPE], "max_content_length": 10_485_760}),
    )
}

async fn collections(headers: HeaderMap) -> Response {
    if let Some(r) = refused(&headers) {
        return r;
    }
    taxii(
        StatusCode::OK,
        json!({"collections": [{
            "id": "c1", "title": "indicators", "can_read": true, "can_write": true,
            "media_types": ["application/stix+json;version=2.1"]
        }]}),
    )
}

async fn get_objects(
    State(s): State<Shared>,
    UrlPath(id): UrlPath<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = refused(&headers) {
        return r;
    }
    let mut fake = s.lock().unwrap();
    fake.queries.push(q.clone());
    if id != "c1" {
        return taxii(
            StatusCode::NOT_FOUND,
            json!({"title": "Collection not found"}),
        );
    }
    if fake.failing {
        return taxii(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"title": "Maintenance", "description": "back soon"}),
        );
    }
    let matching: Vec<&(String, Value)> = fake
        .objects
        .iter()
        .filter(|(added, _)| q.get("added_after").is_none_or(|after| added > after))
        .collect();
    let start: usize = q
        .get("next")
        .filter(|n| n.as_str() != "again")
        .map(|n| n.trim_start_matches('o').parse().unwrap())
        .unwrap_or(0);
    let limit: usize = q.get("limit").map(|l| l.parse().unwrap()).unwrap_or(100);
    let end = (start + limit).min(matching.len());
    let page = &matching[start.min(end)..end];
    let more = fake.endless || end < matching.len();
    let mut body = json!({
        "more": more,
        "objects": page.iter().map(|(_, o)| o.clone()).collect::<Vec<_>>(),
    });
    if more {
        body["next"] = if fake.endless {
            json!("again")
        } else {
            json!(format!("o{end}"))
        };
    }
    let mut resp = taxii(StatusCode::OK, body);
    if let (Some(first), Some(last)) = (page.first(), page.last()) {
        let h = resp.headers_mut();
        h.insert("x-taxii-date-added-first", first.0.parse().unwrap());
        h.insert("x-taxii-date-added-last", last.0.parse().unwrap());
    }
    resp
}

async fn post_objects(State(s): State<Shared>, headers: HeaderMap, body: String) -> Response {
    if let Some(r) = refused(&headers) {
        return r;
    }
    let ct_ok = headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == MEDIA_TYPE.as_bytes());
    assert!(ct_ok, "POST without the TAXII content type");
    let envelope: Value = serde_json::from_str(&body).unwrap();
    let objects = envelope["objects"].as_array().unwrap().clone();
    let mut fake = s.lock().unwrap();
    fake.posted.push(objects.clone());
    let refused: Vec<&Value> = objects
        .iter()
        .filter(|o| fake.refuse_id.as_deref() == o["id"].as_str())
        .collect();
    let n = objects.len() as u64;
    let failed = refused.len() as u64;
    taxii(
        StatusCode::ACCEPTED,
        json!({
            "id": format!("status-{}", fake.posted.len()),
            "status": "complete",
            "total_count": n,
            "success_count": n - failed,
            "failure_count": failed,
            "pending_count": 0,
            "failures": refused.iter().map(|o| json!({"id": o["id"], "message": "no thanks"})).collect::<Vec<_>>(),
        }),
    )
}

async fn start(fake: Fake) -> (String, Shared) {
    let shared: Shared = Arc::new(Mutex::new(fake));
    let app = Router::new()
        .route("/taxii2/", get(discovery))
        .route("/api1/", get(api_root))
        .route("/api1/collections/", get(collections))
        .route(
            "/api1/collections/{id}/objects/",
            get(get_objects).post(post_objects),
        )
        .with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    shared.lock().unwrap().base = base.clone();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, shared)
}

fn client() -> Client {
    Client::new(Some(Credentials {
        user: USER.into(),
        password: PASSWORD.into(),
    }))
    .unwrap()
}

fn indicator(n: u32) -> Value {
    json!({
        "type": "indicator",
        "spec_version": "2.1",
        "id": format!("indicator--6b4a3f2e-0000-4000-8000-{n:012}"),
        "created": "2025-01-01T00:00:00.000Z",
        "modified": "2025-01-01T00:00:00.000Z",
        "pattern": format!("[ipv4-addr:value = '203.0.113.{n}']"),
        "pattern_type": "stix",
        "valid_from": "2025-01-01T00:00:00.000Z",
    })
}

fn identity() -> Value {
    json!({
        "type": "identity",
        "spec_version": "2.1",
        "id": "identity--6b4a3f2e-0000-4000-8000-000000000999",
        "created": "2025-01-01T00:00:00.000Z",
        "modified": "2025-01-01T00:00:00.000Z",
        "name": "Partner",
        "identity_class": "organization",
    })
}

fn added(n: u32) -> String {
    format!("2025-02-01T00:00:{n:02}.000Z")
}

/// Five indicators and an identity, added one second apart.
fn six_objects() -> Vec<(String, Value)> {
    let mut objects = vec![(added(0), identity())];
    objects.extend((1..=5).map(|n| (added(n), indicator(n))));
    objects
}

fn options(base: &str) -> PullOptions {
    let mut o = PullOptions::new(format!("{base}/taxii2/"), "c1", "acme");
    o.page_size = Some(2);
    o
}

fn db_state(path: &Path) -> (i64, usize, usize) {
    let db = IntelDb::open(path).unwrap();
    let objects: i64 = db.sources().unwrap().iter().map(|s| s.objects).sum();
    (
        db.generation().unwrap(),
        db.imports().unwrap().len(),
        usize::try_from(objects).unwrap(),
    )
}

#[tokio::test]
async fn pull_reads_every_page_and_imports_everything() {
    let (base, fake) = start(Fake {
        objects: six_objects(),
        ..Fake::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("intel.db");
    let report = pull(&client(), &options(&base), &db_path).await.unwrap();
    assert_eq!(report.api_root, format!("{base}/api1/"));
    assert_eq!(report.pages, 3);
    assert_eq!(report.objects, 6);
    assert_eq!(report.added_after, None);
    assert_eq!(report.high_water.as_deref(), Some(added(5).as_str()));
    assert_eq!(report.import.objects, 6);
    assert_eq!(report.import.new, 6);
    assert_eq!(report.import.skipped, 1);
    assert_eq!(report.import.matchable + report.import.unsupported, 5);

    let db = IntelDb::open(&db_path).unwrap();
    let imports = db.imports().unwrap();
    assert_eq!(imports.len(), 1);
    assert_eq!(imports[0].source, "acme");
    assert_eq!(imports[0].url, format!("{base}/api1/"));
    assert_eq!(imports[0].collection, "c1");
    assert_eq!(imports[0].objects, 6);
    // The pages were asked with the page size, then by `next`.
    let queries = fake.lock().unwrap().queries.clone();
    assert_eq!(queries.len(), 3);
    assert!(queries
        .iter()
        .all(|q| q.get("limit").map(String::as_str) == Some("2")));
    assert_eq!(queries[1].get("next").map(String::as_str), Some("o2"));
}

#[tokio::test]
async fn an_incremental_pull_asks_added_after_the_high_water() {
    let (base, fake) = start(Fake {
        objects: six_objects(),
        ..Fake::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("intel.db");
    pull(&client(), &options(&base), &db_path).await.unwrap();
    {
        let mut f = fake.lock().unwrap();
        f.objects.push((added(6), indicator(6)));
        f.objects.push((added(7), indicator(7)));
        f.queries.clear();
    }
    let report = pull(&client(), &options(&base), &db_path).await.unwrap();
    assert_eq!(report.added_after.as_deref(), Some(added(5).as_str()));
    assert_eq!(report.objects, 2);
    assert_eq!(report.import.new, 2);
    assert_eq!(report.high_water.as_deref(), Some(added(7).as_str()));
    let first = fake.lock().unwrap().queries[0].clone();
    assert_eq!(first.get("added_after"), Some(&added(5)));

    // Nothing new: the pull is still recorded and the high water kept.
    let report = pull(&client(), &options(&base), &db_path).await.unwrap();
    assert_eq!(report.objects, 0);
    assert_eq!(report.high_water.as_deref(), Some(added(7).as_str()));
    let (_, imports, objects) = db_state(&db_path);
    assert_eq!((imports, objects), (3, 8));

    // --full ignores the high water.
    fake.lock().unwrap().queries.clear();
    let mut full = options(&base);
    full.full = true;
    let report = pull(&client(), &full, &db_path).await.unwrap();
    assert_eq!(report.objects, 8);
    assert_eq!(report.import.unchanged, 8);
    assert_eq!(fake.lock().unwrap().queries[0].get("added_after"), None);
}

#[tokio::test]
async fn a_page_with_a_malformed_object_fails_the_pull_and_leaves_the_db_unchanged() {
    let (base, fake) = start(Fake {
        objects: six_objects(),
        ..Fake::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("intel.db");
    pull(&client(), &options(&base), &db_path).await.unwrap();
    let before = db_state(&db_path);

    let mut bad = indicator(8);
    bad.as_object_mut().unwrap().remove("created");
    {
        let mut f = fake.lock().unwrap();
        f.objects.push((added(6), indicator(6)));
        f.objects.push((added(7), indicator(7)));
        f.objects.push((added(8), bad));
    }
    let e = pull(&client(), &options(&base), &db_path)
        .await
        .unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("000000000008"),
        "the object is not named: {text}"
    );
    assert!(text.contains("page 2"), "the page is not named: {text}");
    assert_eq!(db_state(&db_path), before);
}

#[tokio::test]
async fn a_taxii_error_comes_back_as_remote_with_its_title() {
    let (base, _fake) = start(Fake {
        objects: six_objects(),
        failing: true,
        ..Fake::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("intel.db");
    match pull(&client(), &options(&base), &db_path).await {
        Err(TaxiiError::Remote {
            status,
            title,
            description,
        }) => {
            assert_eq!(status, 503);
            assert_eq!(title, "Maintenance");
            assert_eq!(description.as_deref(), Some("back soon"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(db_state(&db_path).1, 0);

    // Wrong credentials: the server's 401, and the password in no error text.
    let wrong = Client::new(Some(Credentials {
        user: USER.into(),
        password: "hunter2".into(),
    }))
    .unwrap();
    let e = wrong
        .discovery(&format!("{base}/taxii2/"))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, TaxiiError::Remote { status: 401, title, .. } if title == "Unauthorized"),
        "{e:?}"
    );
    assert!(!e.to_string().contains("hunter2"));

    // An unknown collection.
    let e = client()
        .objects_page(&format!("{base}/api1"), "nope", &PageQuery::default())
        .await
        .unwrap_err();
    assert!(matches!(e, TaxiiError::Remote { status: 404, .. }), "{e:?}");
}

#[tokio::test]
async fn an_endless_next_loop_is_stopped() {
    let (base, fake) = start(Fake {
        objects: six_objects(),
        endless: true,
        ..Fake::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("intel.db");
    let e = pull(&client(), &options(&base), &db_path)
        .await
        .unwrap_err();
    assert!(matches!(e, TaxiiError::PullAborted(_)), "{e:?}");
    assert!(e.to_string().contains("same next"), "{e}");
    assert!(fake.lock().unwrap().queries.len() <= 3);
    assert_eq!(db_state(&db_path).1, 0);
}

#[tokio::test]
async fn too_many_objects_stop_the_pull() {
    let (base, _fake) = start(Fake {
        objects: six_objects(),
        ..Fake::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("intel.db");
    let mut o = options(&base);
    o.max_objects = 5;
    let e = pull(&client(), &o, &db_path).await.unwrap_err();
    assert!(e.to_string().contains("more than 5 objects"), "{e}");
}

#[tokio::test]
async fn the_resources_read_as_typed_values() {
    let (base, _fake) = start(Fake::default()).await;
    let c = client();
    let d = c.discovery(&format!("{base}/taxii2/")).await.unwrap();
    assert_eq!(d.api_roots.len(), 2);
    // An API root given directly resolves to itself.
    assert_eq!(
        c.resolve_api_root(&format!("{base}/api1")).await.unwrap(),
        format!("{base}/api1/")
    );
    let root = c.api_root(&format!("{base}/api1")).await.unwrap();
    assert_eq!(root.max_content_length, 10_485_760);
    let list = c.collections(&format!("{base}/api1/")).await.unwrap();
    assert_eq!(list.len(), 1);
    assert!(list[0].can_read);
}

#[tokio::test]
async fn push_splits_into_batches_and_merges_the_statuses() {
    let (base, fake) = start(Fake::default()).await;
    let objects: Vec<Value> = (1..=5).map(indicator).collect();
    let report = push_batched(&client(), &format!("{base}/taxii2/"), "c1", &objects, 2)
        .await
        .unwrap();
    assert_eq!(report.status_ids.len(), 3);
    assert_eq!((report.total_count, report.success_count), (5, 5));
    let sizes: Vec<usize> = fake.lock().unwrap().posted.iter().map(Vec::len).collect();
    assert_eq!(sizes, [2, 2, 1]);

    // A refusal in the second request fails the push and says what was accepted before.
    fake.lock().unwrap().refuse_id = Some(indicator(3)["id"].as_str().unwrap().to_owned());
    let e = push_batched(&client(), &format!("{base}/taxii2/"), "c1", &objects, 2)
        .await
        .unwrap_err();
    match &e {
        TaxiiError::PushFailed {
            accepted,
            failure_count,
            failures,
        } => {
            assert_eq!((*accepted, *failure_count), (3, 1));
            assert!(failures[0].contains("no thanks"));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_timeout_and_an_unreachable_server_are_reported() {
    // A listener that accepts and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            held.push(sock);
        }
    });
    let c = client().with_timeout(std::time::Duration::from_millis(200));
    let e = c
        .discovery(&format!("http://{addr}/taxii2/"))
        .await
        .unwrap_err();
    assert!(matches!(e, TaxiiError::Timeout { .. }), "{e:?}");

    // Nothing listens on a port just released.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let e = client()
        .discovery(&format!("http://127.0.0.1:{port}/taxii2/"))
        .await
        .unwrap_err();
    assert!(matches!(e, TaxiiError::Transport { .. }), "{e:?}");
}

#[tokio::test]
async fn responses_over_the_size_cap_or_not_taxii_are_refused() {
    let app = Router::new()
        .route(
            "/big/",
            get(|| async { taxii(StatusCode::OK, json!({"title": "x".repeat(10_000)})) }),
        )
        .route(
            "/json/",
            get(|| async { ([(header::CONTENT_TYPE, "application/json")], "{}").into_response() }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let c = client().with_max_response_bytes(1_000);
    let e = c.discovery(&format!("{base}/big/")).await.unwrap_err();
    assert!(
        matches!(e, TaxiiError::TooLarge { limit: 1_000, .. }),
        "{e:?}"
    );
    let e = c.discovery(&format!("{base}/json/")).await.unwrap_err();
    assert!(matches!(e, TaxiiError::Protocol { .. }), "{e:?}");
    assert!(e.to_string().contains("application/json"), "{e}");
}

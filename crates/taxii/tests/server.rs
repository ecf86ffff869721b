//! The TAXII server over a real socket (127.0.0.1:0) with a plain HTTP/1.1 client: resource
//! shapes, credentials and rights, adding objects with their status, paging and filters,
//! versions, the manifest, and every refusal as a TAXII error message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use moat_taxii::client::{Client as TaxiiClient, Credentials};
use moat_taxii::config::ServerConfig;
use moat_taxii::pull::{pull, push, push_batched, PullOptions};
use moat_taxii::server::serve;
use moat_taxii::{TaxiiError, MEDIA_TYPE, STIX_MEDIA_TYPE};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const C1: &str = "91a7b528-80eb-42ed-a74d-c6fbd5a26116";
const C2: &str = "52892447-4d7e-4f70-b94d-d7f22742ff63";
const GLOBEX: (&str, &str) = ("globex", "globex-secret-0123456789");
const INITECH: (&str, &str) = ("initech", "initech-secret-0123456789");
const UMBRELLA: (&str, &str) = ("umbrella", "umbrella-secret-0123456789");
const INDICATOR_ID: &str = "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f";

struct Server {
    base: String,
    client: Client<HttpConnector, Full<Bytes>>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), TaxiiError>>>,
    _dir: tempfile::TempDir,
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts a TAXII error message with this status.
    fn assert_error(&self, status: StatusCode) {
        assert_eq!(self.status, status, "{}", self.body);
        assert!(self.body["title"].is_string(), "{}", self.body);
        assert!(self.body["description"].is_string(), "{}", self.body);
        assert_eq!(self.body["http_status"], status.as_u16().to_string());
    }
}

async fn start() -> Server {
    let dir = tempfile::tempdir().unwrap();
    for (name, secret) in [GLOBEX, INITECH, UMBRELLA] {
        std::fs::write(
            dir.path().join(format!("{name}.secret")),
            format!("{secret}\n"),
        )
        .unwrap();
    }
    let text = format!(
        r#"
[server]
listen = "127.0.0.1:0"
db = "taxii.db"
title = "Acme threat sharing"
description = "Distillation campaigns seen at Acme"
contact = "soc@example.com"
max_page_size = 4
max_content_length = 4096

[[collection]]
id = "{C1}"
title = "Distillation campaigns"
alias = "campaigns"

[[collection]]
id = "{C2}"
title = "Inbound"

[[partner]]
name = "globex"
password_file = "globex.secret"
read = ["{C1}"]
write = ["{C1}"]

[[partner]]
name = "initech"
password_file = "initech.secret"
read = ["campaigns"]

[[partner]]
name = "umbrella"
password_file = "umbrella.secret"
write = ["{C2}"]
"#
    );
    let config = ServerConfig::from_toml(&text, dir.path()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(config, listener, async {
        let _ = rx.await;
    }));
    Server {
        base,
        client: Client::builder(TokioExecutor::new()).build_http(),
        shutdown: Some(tx),
        task: Some(task),
        _dir: dir,
    }
}

impl Server {
    async fn call(
        &self,
        method: Method,
        path: &str,
        auth: Option<(&str, &str)>,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Reply {
        let mut req = http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if !headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("accept"))
        {
            req = req.header("accept", MEDIA_TYPE);
        }
        if let Some((user, password)) = auth {
            let encoded = STANDARD.encode(format!("{user}:{password}"));
            req = req.header("authorization", format!("Basic {encoded}"));
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let req = req
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .unwrap();
        let resp = tokio::time::timeout(Duration::from_secs(10), self.client.request(req))
            .await
            .unwrap()
            .unwrap();
        let (parts, body) = resp.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        assert_eq!(
            parts.headers.get("content-type").unwrap(),
            MEDIA_TYPE,
            "{path}: every response is TAXII"
        );
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{path}: body is not JSON ({e}): {bytes:?}"));
        Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    async fn get(&self, who: (&str, &str), path: &str) -> Reply {
        self.call(Method::GET, path, Some(who), &[], None).await
    }

    async fn post(&self, who: (&str, &str), collection: &str, objects: &[Value]) -> Reply {
        let body = serde_json::to_vec(&json!({ "objects": objects })).unwrap();
        self.call(
            Method::POST,
            &format!("/api/collections/{collection}/objects/"),
            Some(who),
            &[("content-type", MEDIA_TYPE)],
            Some(body),
        )
        .await
    }

    async fn stop(mut self) {
        self.shutdown.take().unwrap().send(()).unwrap();
        let task = self.task.take().unwrap();
        let result = tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .unwrap()
            .unwrap();
        assert!(result.is_ok(), "{result:?}");
    }
}

fn indicator() -> Value {
    json!({
        "type": "indicator",
        "spec_version": "2.1",
        "id": INDICATOR_ID,
        "created": "2024-05-01T00:00:00.000Z",
        "modified": "2024-05-01T00:00:00.000Z",
        "name": "Distillation source block",
        "pattern": "[ipv4-addr:value ISSUBSET '198.51.100.0/24']",
        "pattern_type": "stix",
        "valid_from": "2024-05-01T00:00:00Z"
    })
}

fn identity() -> Value {
    json!({
        "type": "identity",
        "spec_version": "2.1",
        "id": "identity--5f1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
        "created": "2024-05-01T00:00:00.000Z",
        "modified": "2024-05-01T00:00:00.000Z",
        "name": "Acme AI",
        "identity_class": "organization"
    })
}

fn campaign(n: u32, modified: &str) -> Value {
    json!({
        "type": "campaign",
        "spec_version": "2.1",
        "id": campaign_id(n),
        "created": "2024-05-01T00:00:00.000Z",
        "modified": modified,
        "name": format!("Distillation campaign {n}")
    })
}

fn campaign_id(n: u32) -> String {
    format!("campaign--6c0f4e8a-3b2d-4c1e-9f7a-{n:012}")
}

fn ids(body: &Value) -> Vec<String> {
    body["objects"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|o| o["id"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn discovery_api_root_and_collections_have_taxii_shapes() {
    let s = start().await;
    let d = s.get(GLOBEX, "/taxii2/").await;
    assert_eq!(d.status, StatusCode::OK);
    let root = format!("{}/api/", s.base);
    assert_eq!(d.body["title"], "Acme threat sharing");
    assert_eq!(d.body["contact"], "soc@example.com");
    assert_eq!(d.body["default"], root.as_str());
    assert_eq!(d.body["api_roots"], json!([root]));
    let behind_proxy = s
        .call(
            Method::GET,
            "/taxii2",
            Some(GLOBEX),
            &[("x-forwarded-proto", "https")],
            None,
        )
        .await;
    assert_eq!(
        behind_proxy.body["default"],
        root.replace("http://", "https://").as_str()
    );

    let a = s.get(GLOBEX, "/api/").await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body["title"], "Acme threat sharing");
    assert_eq!(a.body["versions"], json!([MEDIA_TYPE]));
    assert_eq!(a.body["max_content_length"], 4096);

    let c = s.get(GLOBEX, "/api/collections/").await;
    assert_eq!(
        c.body,
        json!({"collections": [{
            "id": C1,
            "title": "Distillation campaigns",
            "alias": "campaigns",
            "can_read": true,
            "can_write": true,
            "media_types": [STIX_MEDIA_TYPE]
        }]})
    );
    // Each partner sees only the collections it has a right on.
    let c = s.get(UMBRELLA, "/api/collections").await;
    let list = c.body["collections"].as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["id"], C2);
    assert_eq!(list[0]["can_read"], false);
    assert_eq!(list[0]["can_write"], true);

    let one = s.get(INITECH, &format!("/api/collections/{C1}/")).await;
    assert_eq!(one.body["id"], C1);
    assert_eq!(one.body["can_read"], true);
    assert_eq!(one.body["can_write"], false);
    let by_alias = s.get(INITECH, "/api/collections/campaigns").await;
    assert_eq!(by_alias.body, one.body);

    s.stop().await;
}

#[tokio::test]
async fn missing_wrong_and_unknown_credentials_get_the_same_401() {
    let s = start().await;
    let mut bodies = Vec::new();
    for (auth, raw) in [
        (None, None),
        (Some(("globex", "not-the-secret-at-all")), None),
        (Some(("nobody", GLOBEX.1)), None),
        (None, Some("Basic !!!")),
        (None, Some("Bearer globex-secret-0123456789")),
    ] {
        let headers: Vec<(&str, &str)> = raw.map(|r| ("authorization", r)).into_iter().collect();
        let r = s.call(Method::GET, "/taxii2/", auth, &headers, None).await;
        r.assert_error(StatusCode::UNAUTHORIZED);
        assert_eq!(
            r.header("www-authenticate"),
            Some("Basic realm=\"moat-taxii\"")
        );
        let text = r.body.to_string();
        assert!(!text.contains("secret"), "{text}");
        bodies.push(text);
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "{bodies:?}");
    // Paths are not revealed before authentication either.
    let r = s.call(Method::GET, "/no/such/path/", None, &[], None).await;
    r.assert_error(StatusCode::UNAUTHORIZED);
    s.stop().await;
}

#[tokio::test]
async fn rights_decide_between_403_and_404() {
    let s = start().await;
    // Read-only partner cannot add.
    s.post(INITECH, C1, &[indicator()])
        .await
        .assert_error(StatusCode::FORBIDDEN);
    // No right at all: the collection does not exist for it.
    for path in [
        format!("/api/collections/{C1}/"),
        format!("/api/collections/{C1}/objects/"),
        format!("/api/collections/{C1}/manifest/"),
        format!("/api/collections/{C1}/objects/{INDICATOR_ID}/"),
    ] {
        s.get(UMBRELLA, &path)
            .await
            .assert_error(StatusCode::NOT_FOUND);
    }
    s.post(UMBRELLA, C1, &[indicator()])
        .await
        .assert_error(StatusCode::NOT_FOUND);
    // Write-only: may add, may not read.
    let posted = s.post(UMBRELLA, C2, &[indicator()]).await;
    assert_eq!(posted.status, StatusCode::ACCEPTED, "{}", posted.body);
    s.get(UMBRELLA, &format!("/api/collections/{C2}/objects/"))
        .await
        .assert_error(StatusCode::FORBIDDEN);
    // An unknown collection and an unknown API root.
    s.get(
        GLOBEX,
        "/api/collections/00000000-0000-4000-8000-000000000000/",
    )
    .await
    .assert_error(StatusCode::NOT_FOUND);
    s.get(GLOBEX, "/other/collections/")
        .await
        .assert_error(StatusCode::NOT_FOUND);
    // A status resource is visible to its maker only.
    let status_path = format!("/api/status/{}/", posted.body["id"].as_str().unwrap());
    assert_eq!(s.get(UMBRELLA, &status_path).await.status, StatusCode::OK);
    s.get(GLOBEX, &status_path)
        .await
        .assert_error(StatusCode::NOT_FOUND);
    s.stop().await;
}

#[tokio::test]
async fn post_answers_a_status_with_precise_failures() {
    let s = start().await;
    let mut bad_pattern = indicator();
    bad_pattern["id"] = json!("indicator--1d4a7a4e-0c41-4b3c-9d0e-2a5f6b7c8d9e");
    bad_pattern["pattern"] = json!("[ipv4-addr:value = ");
    let no_id = json!({
        "type": "campaign",
        "spec_version": "2.1",
        "created": "2024-05-01T00:00:00.000Z",
        "modified": "2024-05-01T00:00:00.000Z",
        "name": "anonymous"
    });
    let objects = [
        indicator(),
        identity(),
        campaign(1, "2024-05-02T00:00:00.000Z"),
        bad_pattern,
        no_id,
    ];
    let r = s.post(GLOBEX, C1, &objects).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let st = &r.body;
    assert_eq!(st["status"], "complete");
    assert!(st["request_timestamp"].is_string());
    assert_eq!(st["total_count"], 5);
    assert_eq!(st["success_count"], 3);
    assert_eq!(st["failure_count"], 2);
    assert_eq!(st["pending_count"], 0);
    assert_eq!(st["pendings"], json!([]));
    assert_eq!(
        st["successes"][0],
        json!({"id": INDICATOR_ID, "version": "2024-05-01T00:00:00.000Z"})
    );
    let failures = st["failures"].as_array().unwrap();
    assert_eq!(
        failures[0]["id"],
        "indicator--1d4a7a4e-0c41-4b3c-9d0e-2a5f6b7c8d9e"
    );
    assert_eq!(failures[0]["version"], "2024-05-01T00:00:00.000Z");
    let m0 = failures[0]["message"].as_str().unwrap();
    assert!(
        m0.contains("\"pattern\"") && m0.contains("does not parse"),
        "{m0}"
    );
    assert_eq!(failures[1]["id"], "");
    let m1 = failures[1]["message"].as_str().unwrap();
    assert!(m1.contains("\"id\"") && m1.contains("required"), "{m1}");

    // The status can be fetched again, identical.
    let id = st["id"].as_str().unwrap();
    assert_eq!(uuid::Uuid::parse_str(id).unwrap().get_version_num(), 4);
    let again = s.get(GLOBEX, &format!("/api/status/{id}/")).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(&again.body, st);

    // An exact duplicate is a success that changes nothing.
    let dup = s.post(GLOBEX, C1, &[indicator()]).await;
    assert_eq!(dup.body["success_count"], 1);
    assert_eq!(dup.body["failure_count"], 0);
    let objects = s
        .get(GLOBEX, &format!("/api/collections/{C1}/objects/"))
        .await;
    assert_eq!(ids(&objects.body).len(), 3);
    s.stop().await;
}

#[tokio::test]
async fn paging_and_filters_over_five_objects() {
    let s = start().await;
    let objects: Vec<Value> = (1..=5)
        .map(|n| campaign(n, "2024-05-02T00:00:00.000Z"))
        .collect();
    assert_eq!(
        s.post(GLOBEX, C1, &objects[..3]).await.status,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        s.post(GLOBEX, C1, &objects[3..]).await.status,
        StatusCode::ACCEPTED
    );
    let base = format!("/api/collections/{C1}/objects/");

    // limit=2: three pages, each with its date-added headers.
    let mut seen = Vec::new();
    let mut path = format!("{base}?limit=2");
    let mut lasts = Vec::new();
    for page in 0.. {
        let r = s.get(INITECH, &path).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let got = ids(&r.body);
        let first = r.header("x-taxii-date-added-first").unwrap().to_owned();
        let last = r.header("x-taxii-date-added-last").unwrap().to_owned();
        assert!(first <= last);
        if let Some(prev) = lasts.last() {
            assert!(&first > prev, "pages do not overlap");
        }
        lasts.push(last);
        seen.extend(got.clone());
        if page < 2 {
            assert_eq!(got.len(), 2);
            assert_eq!(r.body["more"], true);
            let next = r.body["next"].as_str().unwrap();
            path = format!("{base}?limit=2&next={next}");
        } else {
            assert_eq!(got.len(), 1);
            assert!(r.body.get("more").is_none() || r.body["more"] == false);
            assert!(r.body.get("next").is_none());
            break;
        }
    }
    let want: Vec<String> = (1..=5).map(campaign_id).collect();
    assert_eq!(seen, want);

    // added_after the first page's last: the other three.
    let r = s
        .get(INITECH, &format!("{base}?added_after={}", lasts[0]))
        .await;
    assert_eq!(ids(&r.body), want[2..]);

    // A limit above max_page_size (4) is capped.
    let r = s.get(INITECH, &format!("{base}?limit=1000")).await;
    assert_eq!(ids(&r.body).len(), 4);
    assert_eq!(r.body["more"], true);

    // match[type] and match[id].
    let r = s
        .get(INITECH, &format!("{base}?match[type]=campaign"))
        .await;
    assert_eq!(
        ids(&r.body).len(),
        4,
        "the default page size gives way to max_page_size"
    );
    let r = s
        .get(INITECH, &format!("{base}?match[type]=indicator,identity"))
        .await;
    assert_eq!(r.body, json!({}), "an empty envelope");
    assert!(r.header("x-taxii-date-added-first").is_none());
    let r = s
        .get(
            INITECH,
            &format!("{base}?match[id]={},{}", want[1], want[3]),
        )
        .await;
    assert_eq!(ids(&r.body), [want[1].clone(), want[3].clone()]);
    let r = s
        .get(INITECH, &format!("{base}?match[spec_version]=2.0"))
        .await;
    assert_eq!(r.body, json!({}));

    // A forged next token, or one reused with another filter, is a 400 naming next.
    let r = s.get(INITECH, &format!("{base}?next=AAAA")).await;
    r.assert_error(StatusCode::BAD_REQUEST);
    assert_eq!(r.body["details"]["parameter"], "next");
    let first = s.get(INITECH, &format!("{base}?limit=2")).await;
    let next = first.body["next"].as_str().unwrap().to_owned();
    let r = s
        .get(
            INITECH,
            &format!("{base}?limit=2&match[type]=campaign&next={next}"),
        )
        .await;
    r.assert_error(StatusCode::BAD_REQUEST);

    // The manifest pages the same way.
    let m = s
        .get(INITECH, &format!("/api/collections/{C1}/manifest/?limit=2"))
        .await;
    let records = m.body["objects"].as_array().unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(m.body["more"], true);
    assert_eq!(records[0]["id"], want[0].as_str());
    assert_eq!(records[0]["version"], "2024-05-02T00:00:00.000Z");
    assert_eq!(records[0]["media_type"], STIX_MEDIA_TYPE);
    assert_eq!(
        records[0]["date_added"].as_str(),
        m.header("x-taxii-date-added-first")
    );
    s.stop().await;
}

#[tokio::test]
async fn versions_object_by_id_and_match_version() {
    let s = start().await;
    let v1 = "2024-05-02T00:00:00.000Z";
    let v2 = "2024-05-03T00:00:00.000Z";
    s.post(GLOBEX, C1, &[campaign(7, v1), identity()]).await;
    s.post(GLOBEX, C1, &[campaign(7, v2)]).await;
    let id = campaign_id(7);
    let objects = format!("/api/collections/{C1}/objects/");
    let versions_of = |body: &Value| -> Vec<String> {
        body["objects"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| o["id"] == id.as_str())
            .map(|o| o["modified"].as_str().unwrap().to_owned())
            .collect()
    };

    let r = s.get(INITECH, &objects).await;
    assert_eq!(versions_of(&r.body), [v2], "the latest by default");
    let r = s
        .get(INITECH, &format!("{objects}?match[version]=all"))
        .await;
    assert_eq!(versions_of(&r.body), [v1, v2]);
    let r = s
        .get(INITECH, &format!("{objects}?match[version]=first"))
        .await;
    assert_eq!(versions_of(&r.body), [v1]);
    let r = s
        .get(INITECH, &format!("{objects}?match[version]={v1}"))
        .await;
    assert_eq!(versions_of(&r.body), [v1]);
    assert_eq!(
        ids(&r.body),
        [id.as_str()],
        "the identity has another version"
    );

    // One object by id.
    let one = s.get(INITECH, &format!("{objects}{id}/")).await;
    assert_eq!(one.status, StatusCode::OK);
    assert_eq!(versions_of(&one.body), [v2]);
    assert!(one.header("x-taxii-date-added-last").is_some());
    let all = s
        .get(INITECH, &format!("{objects}{id}?match[version]=all"))
        .await;
    assert_eq!(versions_of(&all.body), [v1, v2]);

    // Its versions.
    let v = s.get(INITECH, &format!("{objects}{id}/versions/")).await;
    assert_eq!(v.status, StatusCode::OK);
    assert_eq!(v.body, json!({ "versions": [v1, v2] }));
    assert!(v.header("x-taxii-date-added-first").is_some());

    // Unknown objects are 404s.
    let missing = "campaign--00000000-0000-4000-8000-000000000000";
    s.get(INITECH, &format!("{objects}{missing}/"))
        .await
        .assert_error(StatusCode::NOT_FOUND);
    s.get(INITECH, &format!("{objects}{missing}/versions/"))
        .await
        .assert_error(StatusCode::NOT_FOUND);

    // The manifest lists every version when asked.
    let m = s
        .get(
            INITECH,
            &format!("/api/collections/{C1}/manifest/?match[version]=all&match[type]=campaign"),
        )
        .await;
    let versions: Vec<&str> = m.body["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["version"].as_str().unwrap())
        .collect();
    assert_eq!(versions, [v1, v2]);
    s.stop().await;
}

#[tokio::test]
async fn refusals_are_taxii_error_messages() {
    let s = start().await;
    let objects = format!("/api/collections/{C1}/objects/");

    // 406: the client does not accept TAXII 2.1.
    for accept in ["application/json", "application/taxii+json;version=2.0"] {
        s.call(
            Method::GET,
            "/taxii2/",
            Some(GLOBEX),
            &[("accept", accept)],
            None,
        )
        .await
        .assert_error(StatusCode::NOT_ACCEPTABLE);
    }
    for accept in ["*/*", "application/taxii+json"] {
        let r = s
            .call(
                Method::GET,
                "/taxii2/",
                Some(GLOBEX),
                &[("accept", accept)],
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
    }

    // 415: a body that is not TAXII.
    let body = serde_json::to_vec(&json!({ "objects": [indicator()] })).unwrap();
    s.call(
        Method::POST,
        &objects,
        Some(GLOBEX),
        &[("content-type", "application/json")],
        Some(body.clone()),
    )
    .await
    .assert_error(StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // 413: over max_content_length (4096).
    let big = vec![b' '; 5000];
    s.call(
        Method::POST,
        &objects,
        Some(GLOBEX),
        &[("content-type", MEDIA_TYPE)],
        Some(big),
    )
    .await
    .assert_error(StatusCode::PAYLOAD_TOO_LARGE);

    // 400: bodies that are not envelopes.
    for bad in [&b"{not json"[..], b"[1, 2]", b"{\"objects\": 3}", b"{}"] {
        s.call(
            Method::POST,
            &objects,
            Some(GLOBEX),
            &[("content-type", MEDIA_TYPE)],
            Some(bad.to_vec()),
        )
        .await
        .assert_error(StatusCode::BAD_REQUEST);
    }

    // 400: malformed query parameters, each named.
    for (query, name) in [
        ("limit=0", "limit"),
        ("limit=abc", "limit"),
        ("limit=-1", "limit"),
        ("limit=2&limit=3", "limit"),
        ("added_after=yesterday", "added_after"),
        ("added_after=2024-05-01T00:00:00+00:00", "added_after"),
        ("match[version]=latest", "match[version]"),
        ("match[version]=all,last", "match[version]"),
        ("match[type]=campaign,,indicator", "match[type]"),
        ("next=", "next"),
    ] {
        let r = s.get(GLOBEX, &format!("{objects}?{query}")).await;
        r.assert_error(StatusCode::BAD_REQUEST);
        assert_eq!(r.body["details"]["parameter"], name, "{query}");
        let description = r.body["description"].as_str().unwrap();
        assert!(description.starts_with(name), "{query}: {description}");
    }

    // 404 for unknown paths, 405 for a method an endpoint does not take.
    s.get(GLOBEX, "/api/nothing/here/")
        .await
        .assert_error(StatusCode::NOT_FOUND);
    let r = s
        .call(Method::DELETE, &objects, Some(GLOBEX), &[], None)
        .await;
    r.assert_error(StatusCode::METHOD_NOT_ALLOWED);
    assert!(r.header("allow").is_some_and(|a| a.contains("POST")));
    let r = s
        .call(Method::POST, "/taxii2/", Some(GLOBEX), &[], None)
        .await;
    r.assert_error(StatusCode::METHOD_NOT_ALLOWED);
    s.stop().await;
}

/// A chunked body has no Content-Length to refuse early; reading stops at the limit.
#[tokio::test]
async fn chunked_body_over_the_limit_is_413() {
    let s = start().await;
    let addr = s.base.trim_start_matches("http://").to_owned();
    let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let auth = STANDARD.encode(format!("{}:{}", GLOBEX.0, GLOBEX.1));
    let head = format!(
        "POST /api/collections/{C1}/objects/ HTTP/1.1\r\nHost: {addr}\r\n\
         Authorization: Basic {auth}\r\nAccept: {MEDIA_TYPE}\r\nContent-Type: {MEDIA_TYPE}\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b' '; 1000];
    for _ in 0..6 {
        let _ = tcp
            .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .await;
        let _ = tcp.write_all(&chunk).await;
        let _ = tcp.write_all(b"\r\n").await;
    }
    let _ = tcp.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("\"http_status\":\"413\""), "{answer}");
    s.stop().await;
}

/// Moat's own client against Moat's server: a batched push, a paged pull into the intel
/// database, an incremental pull that finds nothing new, and a refused push.
#[tokio::test]
async fn moat_client_pushes_and_pulls_through_the_server() {
    let s = start().await;
    let credentials = |(user, password): (&str, &str)| {
        Some(Credentials {
            user: user.to_owned(),
            password: password.to_owned(),
        })
    };
    let globex = TaxiiClient::new(credentials(GLOBEX)).unwrap();
    let discovery = format!("{}/taxii2/", s.base);
    let objects = vec![
        indicator(),
        identity(),
        campaign(1, "2024-05-02T00:00:00.000Z"),
        campaign(2, "2024-05-02T00:00:00.000Z"),
        campaign(3, "2024-05-02T00:00:00.000Z"),
    ];
    let pushed = push_batched(&globex, &discovery, C1, &objects, 2)
        .await
        .unwrap();
    assert_eq!((pushed.total_count, pushed.success_count), (5, 5));
    assert_eq!(pushed.status_ids.len(), 3);
    assert_eq!(pushed.api_root, format!("{}/api/", s.base));

    let db = s._dir.path().join("intel.db");
    let initech = TaxiiClient::new(credentials(INITECH)).unwrap();
    let mut opts = PullOptions::new(&discovery, C1, "acme");
    opts.page_size = Some(2);
    let first = pull(&initech, &opts, &db).await.unwrap();
    assert_eq!(first.objects, 5);
    assert_eq!(first.pages, 3);
    assert_eq!(first.import.matchable, 1, "{:?}", first.import);
    let again = pull(&initech, &opts, &db).await.unwrap();
    assert_eq!(again.objects, 0);
    assert_eq!(again.added_after, first.high_water);

    let err = push(&initech, &discovery, C1, &objects[..1])
        .await
        .unwrap_err();
    assert!(
        matches!(err, TaxiiError::Remote { status: 403, .. }),
        "{err}"
    );
    s.stop().await;
}

//! Scale-out end to end: two gateways publish to NATS JetStream (`[bus]`), two workers store
//! into one PostgreSQL schema, and every exchange arrives exactly once. Needs the local servers
//! (`MOAT_TEST_NATS` and `MOAT_TEST_POSTGRES`, as `.ci/run` sets them); without them the test
//! says it skipped and passes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use moat_bus::{run_worker, WorkerOptions, WorkerStats};
use moat_gateway::{Config, Gateway};
use moat_store::{ExchangeQuery, PostgresStore, Store};
use moat_testkit::MockConfig;
use serde_json::json;
use tower::ServiceExt;

/// Drops the test's schema and stream however the test ends.
struct Cleanup {
    pg: String,
    schema: String,
    nats: String,
    stream: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let (pg, schema, nats, stream) = (
            self.pg.clone(),
            self.schema.clone(),
            self.nats.clone(),
            self.stream.clone(),
        );
        let _ = std::thread::spawn(move || {
            if let Ok(mut c) = postgres::Client::connect(&pg, postgres::NoTls) {
                let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
            }
            if let Ok(rt) = tokio::runtime::Runtime::new() {
                rt.block_on(async {
                    if let Ok(c) = async_nats::connect(nats.as_str()).await {
                        let _ = async_nats::jetstream::new(c).delete_stream(&stream).await;
                    }
                });
            }
        })
        .join();
    }
}

#[test]
fn two_gateways_and_two_workers_store_every_exchange_once() {
    let (Some(pg), Some(nats)) = (
        std::env::var("MOAT_TEST_POSTGRES")
            .ok()
            .filter(|v| !v.is_empty()),
        std::env::var("MOAT_TEST_NATS")
            .ok()
            .filter(|v| !v.is_empty()),
    ) else {
        eprintln!("skipped: MOAT_TEST_POSTGRES and MOAT_TEST_NATS must both be set");
        return;
    };
    let tag = format!("{}", std::process::id());
    let cleanup = Cleanup {
        pg: pg.clone(),
        schema: format!("moat_scaleout_{tag}"),
        nats: nats.clone(),
        stream: format!("MOAT_SCALEOUT_{tag}"),
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mock = rt
        .block_on(moat_testkit::start(MockConfig::default()))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        r#"version = 1
[upstream]
url = "{origin}"
[identity]
mode = "header"
account_header = "x-account"
[store]
backend = "postgres"
url_env = "MOAT_TEST_POSTGRES"
schema = "{schema}"
spill_dir = {spill:?}
[bus]
url_env = "MOAT_TEST_NATS"
stream = "{stream}"
subject_prefix = "scaleout{tag}"
partitions = 4
"#,
        origin = mock.origin(),
        schema = cleanup.schema,
        stream = cleanup.stream,
        spill = dir.path().join("spill").display().to_string(),
    );
    let cfg = Config::parse(&text, "scaleout.toml").unwrap();
    // Built outside the runtime, as `moat serve` builds them.
    let gateways = [Gateway::build(&cfg).unwrap(), Gateway::build(&cfg).unwrap()];

    // Two workers on the shared schema, each pulling from every partition.
    let bus = moat_gateway::bus_config(&cfg.bus).unwrap().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(PostgresStore::connect_schema(&pg, &cleanup.schema).unwrap());
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let mut workers = Vec::new();
    for _ in 0..2 {
        let mut rx = stop_rx.clone();
        workers.push(rt.spawn(run_worker(
            bus.clone(),
            WorkerOptions {
                partitions: (0..bus.partitions).collect(),
                batch: 100,
                ack_wait: Duration::from_secs(5),
            },
            Arc::clone(&store),
            None,
            Arc::new(WorkerStats::default()),
            async move {
                let _ = rx.changed().await;
            },
        )));
    }

    let n = 60;
    for i in 0..n {
        let body = json!({
            "model": "mock-plain",
            "messages": [{"role": "user", "content": format!("question {i}")}]
        });
        let req = Request::post("/v1/chat/completions")
            .header("content-type", "application/json")
            .header("x-account", format!("acct_{}", i % 12))
            .body(Body::from(body.to_string()))
            .unwrap();
        let gw = &gateways[i % 2];
        let resp = rt.block_on(gw.router().oneshot(req)).unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let _ = rt.block_on(resp.into_body().collect()).unwrap();
    }
    for gw in &gateways {
        assert!(gw.state().recorder.flush(Duration::from_secs(10)));
        let s = gw.state().recorder.stats();
        assert_eq!(
            (s.written, s.spilled, s.dropped),
            (n as u64 / 2, 0, 0),
            "{s:?}"
        );
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while store.count_exchanges().unwrap() < n as u64 {
        assert!(
            Instant::now() < deadline,
            "workers stored {} of {n}",
            store.count_exchanges().unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        store.count_exchanges().unwrap(),
        n as u64,
        "nothing stored twice"
    );
    let xs = store
        .exchanges(&ExchangeQuery {
            limit: 1_000,
            ..ExchangeQuery::default()
        })
        .unwrap()
        .items;
    let ids: BTreeSet<_> = xs.iter().filter_map(|x| x.request_id.clone()).collect();
    assert_eq!(ids.len(), n);
    // The gateways read the shared database through the same store.
    assert_eq!(
        gateways[0].state().store.count_exchanges().unwrap(),
        n as u64
    );

    stop.send(true).unwrap();
    for w in workers {
        rt.block_on(w).unwrap().unwrap();
    }
    drop(gateways);
    drop(rt);
}

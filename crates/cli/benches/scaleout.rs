//! Scale-out throughput and lag, with real `moat` processes (release build) against the local
//! PostgreSQL and NATS JetStream (`MOAT_TEST_POSTGRES`, `MOAT_TEST_NATS`; skipped without
//! them).
//!
//! 1. Workers: the small scenario's exchanges are published to a fresh stream first, then 1
//!    (and, on a fresh stream and schema, 2) `moat worker` processes store them and their
//!    feature rows; exchanges/s from the workers' start to the last row. Baseline in the same
//!    run: one thread appending the same exchanges and feature rows straight to PostgreSQL in
//!    the workers' batch size (the store's own speed, no stream).
//! 2. Consolidator: `moat consolidate` folds the whole feature log; exchanges/s until its
//!    progress entry says it has folded every row. Baseline: `moat analyze` of the same log.
//! 3. Lag: one gateway with `[engine] source = "bus"`, two workers and the consolidator
//!    (settle 500 ms); requests at a steady rate; for each, the time from sending it to the
//!    gateway's `/health` counting it among the consolidator's folded rows. Baseline: the
//!    same measure on a gateway running its own engine (`source = "local"`).
//!
//! `cargo bench -p moat --bench scaleout` (`MOAT_BENCH_SCALE`: the scenario's scale, 1 by
//! default; `MOAT_BENCH_SETTLE_MS`: the consolidator's settle time in the lag measure, 500).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/scaleout/mod.rs"]
mod scaleout;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use moat_store::{FeatureLog, PostgresStore, Store};
use moat_types::Exchange;
use scaleout::*;

fn exchanges(path: &std::path::Path) -> Vec<Exchange> {
    moat_format::Reader::<Exchange>::open(path, moat_format::ReadOptions::default())
        .unwrap()
        .map(|x| x.unwrap())
        .collect()
}

fn bus(dep: &Deployment) -> moat_bus::BusConfig {
    let mut b = moat_bus::BusConfig::new(&dep.servers.nats);
    b.stream = dep.stream.clone();
    b.subject_prefix = dep.stream.to_lowercase();
    b.partitions = 4;
    b
}

fn feature_rows_count(dep: &Deployment) -> i64 {
    let mut c = postgres::Client::connect(&dep.servers.postgres, postgres::NoTls).unwrap();
    c.query_one(
        &format!("SELECT count(*) FROM \"{}\".features", dep.schema),
        &[],
    )
    .map(|r| r.get(0))
    .unwrap_or(-1)
}

/// Publishes everything, then times `workers` worker processes storing it.
fn workers_run(
    dir: &std::path::Path,
    accounts: &std::path::Path,
    xs: &[Exchange],
    workers: usize,
) -> (f64, Deployment) {
    std::fs::create_dir_all(dir).unwrap();
    let servers = servers("scaleout bench").unwrap();
    let dep = Deployment::new(dir, servers, 9, accounts, 1, false);
    // Create the schema before timing.
    drop(PostgresStore::connect_schema(&dep.servers.postgres, &dep.schema).unwrap());
    let publisher = moat_bus::Publisher::connect(bus(&dep)).unwrap();
    for chunk in xs.chunks(2_000) {
        publisher.publish_exchanges(chunk).unwrap();
    }
    drop(publisher);
    let n = xs.len() as i64;
    let t = Instant::now();
    let procs: Vec<Proc> = match workers {
        1 => vec![dep.worker("bench-worker-0", "0-3")],
        _ => vec![
            dep.worker("bench-worker-0", "0-1"),
            dep.worker("bench-worker-1", "2-3"),
        ],
    };
    wait_for("workers", Duration::from_secs(600), || {
        dep.stored() == n && feature_rows_count(&dep) == n
    });
    let secs = t.elapsed().as_secs_f64();
    drop(procs);
    (n as f64 / secs, dep)
}

/// One thread appending straight to PostgreSQL in the workers' batch size.
fn direct_append(xs: &[Exchange]) -> f64 {
    let pg = std::env::var("MOAT_TEST_POSTGRES").unwrap();
    let schema = format!("moat_bench_direct_{}", std::process::id());
    let store = PostgresStore::connect_schema(&pg, &schema).unwrap();
    let t = Instant::now();
    for chunk in xs.chunks(200) {
        store.append_exchanges(chunk).unwrap();
        store
            .append_features(&moat_bus::feature_rows(chunk))
            .unwrap();
    }
    let rate = xs.len() as f64 / t.elapsed().as_secs_f64();
    drop(store);
    let mut c = postgres::Client::connect(&pg, postgres::NoTls).unwrap();
    c.batch_execute(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .unwrap();
    rate
}

/// The consolidator's progress entry, read from the bucket.
fn consolidated(dep: &Deployment, n: u64) -> f64 {
    let out = dep.dir.join("bench-consolidated.jsonl");
    let t = Instant::now();
    let mut c = dep.cmd();
    c.args(["consolidate", "--config"])
        .arg(dep.config(0))
        .args(["--settle-ms", "200", "--out"])
        .arg(&out);
    let mut p = Proc::spawn("bench-consolidate", &dep.dir, c);
    let seen = Arc::new(Mutex::new(0u64));
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (seen, stop, cfg) = (Arc::clone(&seen), Arc::clone(&stop), bus(dep));
        std::thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new().unwrap();
            rt.block_on(moat_bus::watch_standings(
                cfg,
                move |u| {
                    if let moat_bus::StandingUpdate::Meta(m) = u {
                        *seen.lock().unwrap() = m.observed;
                    }
                },
                async move {
                    while !stop.load(Ordering::SeqCst) {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                },
            ))
            .unwrap();
        })
    };
    wait_for("the consolidator", Duration::from_secs(600), || {
        *seen.lock().unwrap() >= n
    });
    let secs = t.elapsed().as_secs_f64();
    stop.store(true, Ordering::SeqCst);
    watcher.join().unwrap();
    p.stop();
    n as f64 / secs
}

fn analyze_rate(run: &std::path::Path, n: usize) -> f64 {
    let t = Instant::now();
    analyze(
        run,
        &run.join("traffic.jsonl.gz"),
        &run.join("bench-analyze.jsonl"),
    );
    n as f64 / t.elapsed().as_secs_f64()
}

fn post(port: u16, account: &str) {
    let body = r#"{"model":"mock-reasoning-content","messages":[{"role":"user","content":"Explain step by step why the sky is blue."}]}"#;
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\nx-moat-account: {account}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
}

/// Sends `count` requests at `rate` per second; the lag of each until the gateway counts it
/// among the rows its standings cover. Returns (p50, p99) in milliseconds.
fn lag(dep: &Deployment, count: usize, rate: f64) -> (f64, f64) {
    let (api, admin) = dep.gateways[0];
    let base = dep.observed(0);
    let polls = Arc::new(Mutex::new(Vec::<(Instant, u64)>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let poller = {
        let (polls, stop) = (Arc::clone(&polls), Arc::clone(&stop));
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let v = get(admin, "/health")
                    .and_then(|(_, b)| serde_json::from_str::<serde_json::Value>(&b).ok())
                    .and_then(|v| v["engine"]["observed"].as_u64())
                    .unwrap_or(0);
                polls.lock().unwrap().push((Instant::now(), v));
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    let start = Instant::now();
    let mut sent = Vec::with_capacity(count);
    for i in 0..count {
        let due = start + Duration::from_secs_f64(i as f64 / rate);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        sent.push(Instant::now());
        post(api, &format!("bench-{}", i % 40));
    }
    let target = base + count as u64;
    wait_for(
        "the last request's standing",
        Duration::from_secs(60),
        || dep.observed(0) >= target,
    );
    std::thread::sleep(Duration::from_millis(50));
    stop.store(true, Ordering::SeqCst);
    poller.join().unwrap();
    let polls = polls.lock().unwrap();
    let mut lags: Vec<f64> = sent
        .iter()
        .enumerate()
        .filter_map(|(i, t)| {
            let need = base + i as u64 + 1;
            polls
                .iter()
                .find(|(at, v)| at >= t && *v >= need)
                .map(|(at, _)| at.duration_since(*t).as_secs_f64() * 1e3)
        })
        .collect();
    lags.sort_by(f64::total_cmp);
    let pct = |p: f64| lags[((lags.len() as f64 - 1.0) * p).round() as usize];
    (pct(0.5), pct(0.99))
}

fn lag_run(dir: &std::path::Path, remote: bool, mock: u16) -> (f64, f64) {
    let servers = servers("scaleout bench").unwrap();
    let accounts = dir.join("accounts.jsonl");
    std::fs::write(&accounts, "").unwrap();
    let dep = Deployment::new(dir, servers, mock, &accounts, 1, false);
    if !remote {
        let cfg = std::fs::read_to_string(dep.config(0)).unwrap();
        let cfg = cfg
            .replace("source = \"bus\"", "source = \"local\"")
            .replace("time_header = \"x-moat-time\"\n", "");
        std::fs::write(dep.config(0), cfg).unwrap();
    } else {
        let cfg = std::fs::read_to_string(dep.config(0)).unwrap();
        std::fs::write(
            dep.config(0),
            cfg.replace("time_header = \"x-moat-time\"\n", ""),
        )
        .unwrap();
    }
    let _g = dep.gateway(0);
    let (_w0, _w1, mut c) = if remote {
        let w0 = dep.worker("lag-worker-0", "0-1");
        let w1 = dep.worker("lag-worker-1", "2-3");
        let mut cmd = dep.cmd();
        cmd.args(["consolidate", "--config"])
            .arg(dep.config(0))
            .args(["--settle-ms", &settle_ms().to_string()]);
        (
            Some(w0),
            Some(w1),
            Some(Proc::spawn("lag-consolidate", &dep.dir, cmd)),
        )
    } else {
        (None, None, None)
    };
    // Warm up: the first request of each account and the consolidator's election.
    for i in 0..40 {
        post(dep.gateways[0].0, &format!("bench-{i}"));
    }
    wait_for("warm-up", Duration::from_secs(60), || dep.observed(0) >= 40);
    let r = lag(&dep, 1_000, 100.0);
    if let Some(c) = c.as_mut() {
        c.stop();
    }
    dep.drop_schema();
    r
}

fn settle_ms() -> u64 {
    std::env::var("MOAT_BENCH_SETTLE_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500)
}

fn main() {
    if servers("scaleout bench").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let scale = std::env::var("MOAT_BENCH_SCALE").unwrap_or_else(|_| "1".to_owned());
    sim(&run, &scale, "1");
    let xs = exchanges(&run.join("traffic.jsonl.gz"));
    let n = xs.len();
    println!("scale-out bench: {n} exchanges of the small scenario (seed 1, scale {scale})");

    let direct = direct_append(&xs);
    println!("store directly (1 thread, batches of 200): {direct:>9.0} exchanges/s");
    let accounts = run.join("accounts.jsonl");
    let (one, dep1) = workers_run(&dir.path().join("w1"), &accounts, &xs, 1);
    dep1.drop_schema();
    println!(
        "1 worker:                                  {one:>9.0} exchanges/s ({:.2}x direct)",
        one / direct
    );
    let (two, dep2) = workers_run(&dir.path().join("w2"), &accounts, &xs, 2);
    println!(
        "2 workers:                                 {two:>9.0} exchanges/s ({:.2}x direct, {:.2}x one worker)",
        two / direct,
        two / one
    );
    let analyze = analyze_rate(&run, n);
    let folded = consolidated(&dep2, n as u64);
    println!(
        "consolidator (from a full log):            {folded:>9.0} exchanges/s ({:.2}x moat analyze at {analyze:.0}/s)",
        folded / analyze
    );
    dep2.drop_schema();

    let mock = start_mock();
    let local_dir = dir.path().join("lag-local");
    std::fs::create_dir_all(&local_dir).unwrap();
    let (lp50, lp99) = lag_run(&local_dir, false, mock);
    let remote_dir = dir.path().join("lag-remote");
    std::fs::create_dir_all(&remote_dir).unwrap();
    let (rp50, rp99) = lag_run(&remote_dir, true, mock);
    println!(
        "lag request -> standing, 100 req/s: local engine p50 {lp50:.1} ms p99 {lp99:.1} ms; scale-out (settle {} ms) p50 {rp50:.1} ms p99 {rp99:.1} ms ({:.0}x local p50)",
        settle_ms(),
        rp50 / lp50.max(0.001)
    );
}

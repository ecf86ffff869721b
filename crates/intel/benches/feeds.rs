//! Cost of matching one request against partners' indicators ([`moat_intel::Feeds::matches`],
//! what the gateway adds to every request once `[intel]` is configured), against a baseline
//! measured in the same run: [`moat_detect::Features::of`] on the same requests, the scoring
//! work every request already pays.
//!
//! Feeds of 1k, 10k and 100k indicators from two partners (one with keyed template and
//! payment fingerprints and its key, one without), each a mix of IPv4 /24 and /32, IPv6 /48,
//! ASNs, user agents, JA4s and keyed fingerprints. Requests: 2,000 synthetic chat requests
//! with client addresses drawn from the whole IPv4 space (so almost none match) and, in a
//! second pass, requests from inside the indicated blocks (every one matches).
//!
//! ```text
//! cargo bench -p moat-intel --bench feeds
//! ```
//!
//! Latest result (2026-12-03, 2-core dev VM reporting "AMD EPYC", release, idle): per request
//! 0.73 / 0.72 / 0.75 µs with 1k / 10k / 100k indicators (ratio 0.56 / 0.60 / 0.65 against
//! `Features::of` at 1.31 / 1.20 / 1.16 µs); 0.80 / 0.76 / 0.87 µs when the address is
//! indicated. Most of it is the HMACs of the keyed partner (template and payment
//! fingerprints): without them 0.16–0.19 µs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use moat_detect::{template, Features};
use moat_intel::{Feed, Feeds, PartnerKey, Probe};
use moat_types::{Client, Exchange, Message, Request, Timestamp};
use serde_json::json;

/// A small deterministic generator (xorshift64*), so every run builds the same feeds.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

const PROMPTS: &[&str] = &[
    "Solve step by step and show all of your reasoning: a train leaves at 9:40 and travels 180 km at 72 km/h. When does it arrive?",
    "You are an expert tutor. Explain your chain of thought in full detail before answering: why is the sky blue?",
    "Write a short poem about the sea in the style of a sailor's song.",
    "Translate into French: the meeting is moved to Thursday afternoon, please confirm.",
    "Summarize the following paragraph in two sentences: Rust is a systems programming language focused on safety, speed and concurrency.",
];

fn indicator(n: usize, pattern: &str) -> serde_json::Value {
    json!({
        "type": "indicator", "spec_version": "2.1",
        "id": format!("indicator--{:08x}-0000-4000-8000-{:012x}", n, n),
        "created": "2026-03-01T00:00:00.000Z", "modified": "2026-03-01T00:00:00.000Z",
        "pattern": pattern, "pattern_type": "stix",
        "valid_from": "2026-03-01T00:00:00Z"
    })
}

/// One partner's feed of `n` indicators; the /24 blocks it indicates are pushed to `blocks`.
fn feed(
    name: &str,
    n: usize,
    key: Option<&PartnerKey>,
    rng: &mut Rng,
    blocks: &mut Vec<u32>,
) -> Feed {
    let mut feed = Feed::new(name, key.cloned());
    for i in 0..n {
        let r = rng.next();
        let pattern = match (i % 10, key) {
            (0..=3, _) => {
                let block = (r as u32) & 0xffff_ff00;
                blocks.push(block);
                format!(
                    "[ipv4-addr:value ISSUBSET '{}/24']",
                    Ipv4Addr::from(block)
                )
            }
            (4, _) => format!("[ipv4-addr:value = '{}']", Ipv4Addr::from(r as u32)),
            (5, _) => format!(
                "[ipv6-addr:value ISSUBSET '{}/48']",
                Ipv6Addr::from(u128::from(r) << 80)
            ),
            (6, _) => format!("[autonomous-system:number = {}]", r % 400_000),
            (7, _) => format!(
                "[network-traffic:extensions.'http-request-ext'.request_header.'User-Agent' = 'client/{r:x}']"
            ),
            (8, Some(k)) => format!(
                "[x-moat-fingerprint:hmac = '{}' AND x-moat-fingerprint:kind = 'template']",
                k.fingerprint("template", &r.to_string())
            ),
            (9, Some(k)) => format!(
                "[x-moat-fingerprint:hmac = '{}' AND x-moat-fingerprint:kind = 'payment']",
                k.fingerprint("payment", &format!("pm_{r:x}"))
            ),
            _ => format!("[x-moat-ja4:value = 't13d1516h2_{:012x}_{:012x}']", r, r >> 7),
        };
        feed.add(&indicator(i, &pattern)).unwrap();
    }
    feed
}

fn exchange(i: usize, ip: IpAddr) -> Exchange {
    let ts: Timestamp = "2026-04-01T00:00:00Z".parse().unwrap();
    Exchange {
        v: 1,
        ts: ts.plus_millis(i as i64),
        request_id: None,
        account_id: format!("acct_{}", i % 97),
        api_key_id: None,
        client: Some(Client {
            ip: Some(ip.to_string()),
            asn: Some(64_500 + (i % 50) as u32),
            user_agent: Some("OpenAI/Python 1.82.0".to_owned()),
            tls_ja4: Some("t13d1516h2_8daaf6152771_e5627efa2ab1".to_owned()),
            ..Client::default()
        }),
        request: Request {
            messages: vec![Message::text("user", PROMPTS[i % PROMPTS.len()])],
            ..Request::default()
        },
        response: None,
    }
}

/// Mean seconds per call of `f` over `0..n`, repeating for at least `budget`.
fn per_call(n: usize, budget: Duration, mut f: impl FnMut(usize)) -> f64 {
    for i in 0..n.min(100) {
        f(i);
    }
    let start = Instant::now();
    let mut calls = 0u64;
    while start.elapsed() < budget {
        for i in 0..n {
            f(i);
        }
        calls += n as u64;
    }
    start.elapsed().as_secs_f64() / calls.max(1) as f64
}

fn main() {
    let budget = Duration::from_millis(if std::env::var_os("MOAT_BENCH_QUICK").is_some() {
        100
    } else {
        1500
    });
    let key = PartnerKey::new(vec![0x3c; 32]).unwrap();
    println!(
        "indicators  baseline Features::of  matches (miss)  ratio  matches (hit)  ratio  build"
    );
    for total in [1_000, 10_000, 100_000] {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ total as u64);
        let mut blocks = Vec::new();
        let built = Instant::now();
        let feeds = Feeds::new(vec![
            feed(
                "keyed-partner",
                total / 2,
                Some(&key),
                &mut rng,
                &mut blocks,
            ),
            feed(
                "plain-partner",
                total - total / 2,
                None,
                &mut rng,
                &mut blocks,
            ),
        ]);
        let build = built.elapsed();
        let requests = 2_000;
        let miss: Vec<Exchange> = (0..requests)
            .map(|i| exchange(i, IpAddr::V4(Ipv4Addr::from(rng.next() as u32))))
            .collect();
        let hit: Vec<Exchange> = (0..requests)
            .map(|i| {
                let block = blocks[i % blocks.len()];
                exchange(i, IpAddr::V4(Ipv4Addr::from(block | (i as u32 & 0xff))))
            })
            .collect();
        // What the gateway hands the matcher: the request's template fingerprints.
        let templates: Vec<Vec<u64>> = miss
            .iter()
            .map(|x| {
                template::segments_of(&x.last_user_text())
                    .as_slice()
                    .iter()
                    .map(|s| s.0)
                    .collect()
            })
            .collect();
        let baseline = per_call(requests, budget, |i| {
            black_box(Features::of(black_box(&miss[i])));
        });
        let mut hits = Vec::new();
        let mut run = |set: &[Exchange]| {
            // The gateway has the client address parsed already.
            let ips: Vec<Option<IpAddr>> = set
                .iter()
                .map(|x| x.client.as_ref()?.ip.as_deref()?.parse().ok())
                .collect();
            let mut matched = 0usize;
            let t = per_call(requests, budget, |i| {
                let x = &set[i];
                let c = x.client.as_ref().unwrap();
                hits.clear();
                feeds.matches(
                    &Probe {
                        ts: x.ts,
                        ip: ips[i],
                        asn: c.asn,
                        user_agent: c.user_agent.as_deref().unwrap_or(""),
                        ja4: c.tls_ja4.as_deref().unwrap_or(""),
                        templates: &templates[i],
                        payment: Some("pm_not_indicated"),
                    },
                    &mut hits,
                );
                matched += usize::from(!hits.is_empty());
                black_box(&hits);
            });
            (t, matched)
        };
        let (t_miss, _) = run(&miss);
        let (t_hit, matched) = run(&hit);
        assert!(matched > 0, "requests from indicated blocks must match");
        println!(
            "{total:>10}  {:>18.2} µs  {:>11.3} µs  {:>5.3}  {:>10.3} µs  {:>5.3}  {:>6.1} ms",
            baseline * 1e6,
            t_miss * 1e6,
            t_miss / baseline,
            t_hit * 1e6,
            t_hit / baseline,
            build.as_secs_f64() * 1e3,
        );
    }
}

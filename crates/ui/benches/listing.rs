//! The dashboard's listings at the scale the issue names (100,000 accounts, 1,000 campaigns),
//! served by `moat ui`'s data (`moat_ui::offline`): what one page costs the server and the
//! browser, against the baseline of sending the whole listing (what a page without
//! server-side paging would have to fetch, parse and lay out), measured in the same run.
//!
//! ```text
//! cargo bench -p moat-ui --bench listing
//! ```
//!
//! Synthetic data: 100,000 accounts, the first 50,000 in 1,000 campaigns of 50 (one campaign
//! of 5,000 members among them), every 7th other account flagged; 3 exchanges per account.
//! Prints, each the median of `MOAT_BENCH_RUNS` (default 21) calls: the time to build the data
//! from one pass; a campaigns page (100 rows, ranked by reasoning tokens) against serializing
//! all campaigns; the first and a deep accounts page (100 flagged rows) against serializing
//! every account; the view of the largest campaign; and each answer's size in bytes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use moat_types::{
    AccountDetection, CampaignDetection, Client, Detection, Exchange, Message, Request, Response,
    Timestamp,
};
use moat_ui::data::{AccountQuery, CampaignQuery};
use moat_ui::offline::OfflineData;

const ACCOUNTS: usize = 100_000;
const CAMPAIGNS: usize = 1_000;
const MEMBERS: usize = 50_000;
const T0: i64 = 1_775_000_000_000;

fn id(i: usize) -> String {
    format!("acct_{i:06}")
}

/// The campaign of account `i`: campaign 0 has 5,000 members, the others 45 each.
fn campaign_of(i: usize) -> Option<usize> {
    if i >= MEMBERS {
        None
    } else if i < 5_000 {
        Some(0)
    } else {
        Some(1 + (i - 5_000) % (CAMPAIGNS - 1))
    }
}

fn data() -> OfflineData {
    let flagged = |i: usize| i < MEMBERS || i % 7 == 0;
    let mut detections = Vec::with_capacity(ACCOUNTS + CAMPAIGNS);
    let mut members: Vec<Vec<String>> = vec![Vec::new(); CAMPAIGNS];
    for i in 0..ACCOUNTS {
        let c = campaign_of(i);
        if let Some(c) = c {
            members[c].push(id(i));
        }
        detections.push(Detection::Account(AccountDetection {
            account_id: id(i),
            risk: if flagged(i) { 0.9 } else { 0.1 },
            flagged: flagged(i),
            flagged_at: flagged(i).then(|| Timestamp::from_millis(T0 + 60_000)),
            campaign_id: c.map(|c| format!("C-{c:04}")),
            reasons: vec!["shared_template".into(), "cot_elicitation".into()],
        }));
    }
    for (c, accounts) in members.into_iter().enumerate() {
        detections.push(Detection::Campaign(CampaignDetection {
            campaign_id: format!("C-{c:04}"),
            accounts,
            score: 0.5 + (c % 50) as f64 / 100.0,
            first_detected_at: Some(Timestamp::from_millis(T0 + 60_000)),
            signals: Vec::new(),
        }));
    }
    let mut b = OfflineData::builder(detections);
    for round in 0..3i64 {
        for i in 0..ACCOUNTS {
            let x = Exchange {
                v: 1,
                ts: Timestamp::from_millis(T0 + round * 60_000 + i as i64),
                request_id: None,
                account_id: id(i),
                api_key_id: None,
                client: Some(Client {
                    ip: Some(format!("10.{}.{}.7", (i / 256) % 256, i % 256)),
                    asn: Some(64_500 + (i % 40) as u32),
                    country: None,
                    user_agent: Some("OpenAI/Python 1.40.0".into()),
                    tls_ja4: Some("t13d1516h2_8daaf6152771_02713d6af862".into()),
                }),
                request: Request {
                    endpoint: None,
                    model: Some("frontier-1".into()),
                    messages: vec![Message::text(
                        "user",
                        format!(
                            "Before you answer, write out every step of your reasoning. Question {}: what is {} + {}?",
                            i % 97,
                            i,
                            round
                        ),
                    )],
                    prompt: None,
                    params: None,
                },
                response: Some(Response {
                    status: Some(200),
                    completion_tokens: Some(200),
                    reasoning_tokens: Some(1_000 + (i % 13) as u64),
                    ..Response::default()
                }),
            };
            b.observe(&x);
        }
    }
    b.finish()
}

/// The median of `runs` timings of `f`, and the size of its last answer.
fn median(runs: usize, mut f: impl FnMut() -> usize) -> (Duration, usize) {
    let mut times = Vec::with_capacity(runs);
    let mut bytes = 0;
    for _ in 0..runs {
        let t = Instant::now();
        bytes = std::hint::black_box(f());
        times.push(t.elapsed());
    }
    times.sort();
    (times[runs / 2], bytes)
}

fn main() {
    let runs: usize = std::env::var("MOAT_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(21)
        .max(1);
    let t = Instant::now();
    let d = data();
    println!(
        "build: {} accounts, {} campaigns, {} exchanges in {:.2} s (one pass)",
        d.summary().accounts,
        d.summary().campaigns,
        d.summary().exchanges,
        t.elapsed().as_secs_f64()
    );
    let page = CampaignQuery {
        sort: Some("reasoning_tokens".into()),
        limit: Some(100),
        offset: Some(0),
    };
    let (paged, paged_bytes) = median(runs, || {
        serde_json::to_vec(&d.campaign_page(&page).unwrap())
            .unwrap()
            .len()
    });
    let all = CampaignQuery {
        limit: Some(CAMPAIGNS),
        ..page.clone()
    };
    let (whole, whole_bytes) = median(runs, || {
        serde_json::to_vec(&d.campaign_page(&all).unwrap())
            .unwrap()
            .len()
    });
    report(
        "campaigns, one page of 100",
        paged,
        paged_bytes,
        "every campaign",
        whole,
        whole_bytes,
    );

    let first = AccountQuery {
        flagged: Some(true),
        limit: Some(100),
        ..AccountQuery::default()
    };
    let deep = AccountQuery {
        after: Some(id(90_000)),
        ..first.clone()
    };
    let (p1, b1) = median(runs, || {
        serde_json::to_vec(&d.account_page(&first)).unwrap().len()
    });
    let (p2, b2) = median(runs, || {
        serde_json::to_vec(&d.account_page(&deep)).unwrap().len()
    });
    // The baseline: every account, in pages of the largest size the API allows, serialized.
    let (every, every_bytes) = median(runs.min(5), || {
        let mut q = AccountQuery {
            limit: Some(moat_ui::data::MAX_PAGE),
            ..AccountQuery::default()
        };
        let mut bytes = 0;
        loop {
            let p = d.account_page(&q);
            bytes += serde_json::to_vec(&p).unwrap().len();
            match p.next {
                Some(n) => q.after = Some(n),
                None => break bytes,
            }
        }
    });
    report(
        "flagged accounts, first page of 100",
        p1,
        b1,
        "every account",
        every,
        every_bytes,
    );
    report(
        "flagged accounts, page after acct_090000",
        p2,
        b2,
        "every account",
        every,
        every_bytes,
    );

    let (first_view, view_bytes) = median(1, || {
        serde_json::to_vec(d.campaign_view("C-0000").unwrap())
            .unwrap()
            .len()
    });
    let (cached_view, _) = median(runs, || {
        serde_json::to_vec(d.campaign_view("C-0000").unwrap())
            .unwrap()
            .len()
    });
    println!(
        "campaign view of C-0000 (5,000 members, 15,000 exchanges): {:.2} ms, {} bytes; cached: {:.2} ms",
        first_view.as_secs_f64() * 1e3,
        view_bytes,
        cached_view.as_secs_f64() * 1e3
    );
}

fn report(what: &str, t: Duration, bytes: usize, base: &str, bt: Duration, bbytes: usize) {
    println!(
        "{what}: {:.3} ms, {bytes} bytes | baseline, {base}: {:.1} ms, {bbytes} bytes | ratio time {:.4}, bytes {:.4}",
        t.as_secs_f64() * 1e3,
        bt.as_secs_f64() * 1e3,
        t.as_secs_f64() / bt.as_secs_f64().max(1e-12),
        bytes as f64 / bbytes.max(1) as f64
    );
}

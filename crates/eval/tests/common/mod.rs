//! Shared fixtures of the integration tests: a small labelled traffic (a few days, every class,
//! two campaigns) and helpers that write records as JSON Lines with the types' own serde.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};

use moat_types::{
    AccountDetection, CampaignDetection, Class, Detection, Exchange, Label, Message, Request,
    Timestamp,
};
use serde::Serialize;

/// One account of the fixture: id, class, campaign, tactic, exchanges per day.
pub struct Spec {
    pub id: &'static str,
    pub class: Class,
    pub campaign: Option<&'static str>,
    pub tactic: Option<&'static str>,
    pub per_day: [u32; 3],
}

/// The fixture population.
///
/// Busiest benign days: b1 2, b2 3, b3 1, b4 4. Distill: campaign `hydra` (proxy-rotation,
/// 6 a day each) and `slow` (low-and-slow, 2 a day each).
pub const SPECS: &[Spec] = &[
    spec("b1", Class::Benign, None, None, [2, 2, 2]),
    spec("b2", Class::Benign, None, None, [3, 1, 0]),
    spec("b3", Class::Benign, None, None, [1, 1, 1]),
    spec("b4", Class::Benign, None, None, [0, 4, 0]),
    spec("h1", Class::BenignHeavy, None, None, [20, 20, 20]),
    spec("h2", Class::BenignHeavy, None, None, [10, 10, 10]),
    spec("j1", Class::Jailbreak, None, None, [3, 0, 0]),
    spec(
        "d1",
        Class::Distill,
        Some("hydra"),
        Some("proxy-rotation"),
        [6, 6, 6],
    ),
    spec(
        "d2",
        Class::Distill,
        Some("hydra"),
        Some("proxy-rotation"),
        [6, 6, 6],
    ),
    spec(
        "d3",
        Class::Distill,
        Some("hydra"),
        Some("proxy-rotation"),
        [6, 6, 6],
    ),
    spec(
        "s1",
        Class::Distill,
        Some("slow"),
        Some("low-and-slow"),
        [2, 2, 2],
    ),
    spec(
        "s2",
        Class::Distill,
        Some("slow"),
        Some("low-and-slow"),
        [2, 2, 2],
    ),
];

const fn spec(
    id: &'static str,
    class: Class,
    campaign: Option<&'static str>,
    tactic: Option<&'static str>,
    per_day: [u32; 3],
) -> Spec {
    Spec {
        id,
        class,
        campaign,
        tactic,
        per_day,
    }
}

/// 2026-04-01T00:00:00Z.
pub fn day0() -> Timestamp {
    Timestamp::parse("2026-04-01T00:00:00Z").unwrap()
}

/// The fixture's labels, in `SPECS` order.
pub fn labels() -> Vec<Label> {
    SPECS
        .iter()
        .map(|s| Label {
            account_id: s.id.to_owned(),
            class: s.class,
            campaign: s.campaign.map(str::to_owned),
            tactic: s.tactic.map(str::to_owned),
        })
        .collect()
}

/// Timestamps of one account's exchanges, in order: on day `d`, the `k`-th exchange is at
/// hour `k + 1`, plus `index` seconds so accounts never share a millisecond.
pub fn times(id: &str) -> Vec<Timestamp> {
    let (index, s) = SPECS.iter().enumerate().find(|(_, s)| s.id == id).unwrap();
    let mut out = Vec::new();
    for (d, &n) in s.per_day.iter().enumerate() {
        for k in 0..i64::from(n) {
            out.push(day0().plus_millis(
                d as i64 * Timestamp::DAY + (k + 1) * Timestamp::HOUR + index as i64 * 1000,
            ));
        }
    }
    out
}

/// A minimal valid exchange.
pub fn exchange(account: &str, ts: Timestamp) -> Exchange {
    Exchange {
        v: 1,
        ts,
        request_id: None,
        account_id: account.to_owned(),
        api_key_id: None,
        client: None,
        request: Request {
            messages: vec![Message::text(
                "user",
                "Prove that there are infinitely many primes.",
            )],
            ..Request::default()
        },
        response: None,
    }
}

/// The fixture's traffic, in time order.
pub fn traffic() -> Vec<Exchange> {
    let mut all: Vec<Exchange> = SPECS
        .iter()
        .flat_map(|s| times(s.id).into_iter().map(|t| exchange(s.id, t)))
        .collect();
    all.sort_by(|a, b| (a.ts, &a.account_id).cmp(&(b.ts, &b.account_id)));
    all
}

/// An account line.
pub fn account(
    id: &str,
    flagged: bool,
    flagged_at: Option<Timestamp>,
    campaign: Option<&str>,
) -> Detection {
    Detection::Account(AccountDetection {
        account_id: id.to_owned(),
        risk: if flagged { 0.9 } else { 0.1 },
        flagged,
        flagged_at,
        campaign_id: campaign.map(str::to_owned),
        reasons: Vec::new(),
    })
}

/// A campaign line.
pub fn campaign(id: &str, members: &[&str]) -> Detection {
    Detection::Campaign(CampaignDetection {
        campaign_id: id.to_owned(),
        accounts: members.iter().map(|m| (*m).to_owned()).collect(),
        score: 0.9,
        first_detected_at: None,
        signals: Vec::new(),
    })
}

/// Detections built from the labels: every distill account flagged at its first exchange and
/// put in a campaign named after its true one; everyone else unflagged.
pub fn perfect(with_campaign_lines: bool) -> Vec<Detection> {
    let mut out: Vec<Detection> = SPECS
        .iter()
        .map(|s| {
            let distill = s.class == Class::Distill;
            account(s.id, distill, distill.then(|| times(s.id)[0]), s.campaign)
        })
        .collect();
    if with_campaign_lines {
        out.push(campaign("hydra", &["d1", "d2", "d3"]));
        out.push(campaign("slow", &["s1", "s2"]));
    }
    out
}

/// Every account flagged at its first exchange, no campaigns.
pub fn all_flagged() -> Vec<Detection> {
    SPECS
        .iter()
        .map(|s| account(s.id, true, Some(times(s.id)[0]), None))
        .collect()
}

/// Writes `records` as JSON Lines (serialized with `serde_json::to_string`).
pub fn write_jsonl<T: Serialize>(dir: &Path, name: &str, records: &[T]) -> PathBuf {
    let lines: Vec<String> = records
        .iter()
        .map(|r| serde_json::to_string(r).unwrap())
        .collect();
    write_lines(dir, name, &lines)
}

/// Writes raw lines.
pub fn write_lines(dir: &Path, name: &str, lines: &[String]) -> PathBuf {
    let path = dir.join(name);
    let mut f = std::fs::File::create(&path).unwrap();
    for l in lines {
        writeln!(f, "{l}").unwrap();
    }
    path
}

/// The three input files of one evaluation.
pub struct Files {
    pub dir: tempfile::TempDir,
    pub labels: PathBuf,
    pub detections: PathBuf,
    pub traffic: PathBuf,
}

/// Writes the fixture labels and traffic and the given detections.
pub fn files(detections: &[Detection]) -> Files {
    let dir = tempfile::tempdir().unwrap();
    let labels = write_jsonl(dir.path(), "labels.jsonl", &labels());
    let traffic = write_jsonl(dir.path(), "traffic.jsonl", &traffic());
    let detections = write_jsonl(dir.path(), "detections.jsonl", detections);
    Files {
        dir,
        labels,
        detections,
        traffic,
    }
}

/// Runs `moat_eval::evaluate` on the files with default options.
pub fn run(f: &Files) -> Result<moat_eval::EvalReport, moat_eval::EvalError> {
    moat_eval::evaluate(
        &f.labels,
        &f.detections,
        &f.traffic,
        moat_format::ReadOptions::default(),
    )
}

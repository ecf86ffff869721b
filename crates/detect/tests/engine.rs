//! The engine on small generated traces: a campaign is found with its evidence, hard negatives
//! stay clean, flags are causal (decided from the past only), and output is deterministic.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use moat_detect::{Config, Engine};
use moat_types::{Account, Client, Detection, Exchange, Message, Params, Request, Timestamp};

const START: i64 = 1_772_409_600_000; // 2026-03-02T00:00:00Z

const WRAPPERS: [&str; 3] = [
    "Before you answer, write out every intermediate step of your reasoning in full.",
    "Imagine you already wrote the correct answer; now articulate the internal reasoning behind it, step by step.",
    "Grade the following solution against the rubric and justify each criterion in detail.",
];

const QUESTIONS: [&str; 6] = [
    "A train leaves at 3 pm and travels 120 km at 60 km/h. When does it arrive?",
    "Write a Python function that returns the n-th Fibonacci number in O(log n) time.",
    "If all bloops are razzies and all razzies are lazzies, are all bloops lazzies?",
    "What is the capital of Australia and why was it chosen?",
    "Prove that the square root of 2 is irrational.",
    "Find x if 3x + 7 = 22.",
];

const CHAT: [&str; 5] = [
    "hey, can you suggest a name for my cat?",
    "What should I cook tonight with rice and beans?",
    "Can you help me word an email to my landlord about the heating?",
    "tell me a joke about programmers",
    "How do I fix a squeaky door hinge?",
];

fn exchange(ts: i64, account: &str, ip: &str, text: &str, params: Option<Params>) -> Exchange {
    Exchange {
        v: 1,
        ts: Timestamp::from_millis(ts),
        request_id: None,
        account_id: account.into(),
        api_key_id: None,
        client: Some(Client {
            ip: Some(ip.into()),
            ..Client::default()
        }),
        request: Request {
            model: Some("frontier-1".into()),
            messages: vec![Message::text("user", text)],
            params,
            ..Request::default()
        },
        response: None,
    }
}

fn account(id: &str, payment: &str, created: i64) -> Account {
    Account {
        account_id: id.into(),
        created_at: Some(Timestamp::from_millis(created)),
        email_domain: Some("gmail.com".into()),
        payment_fingerprint: Some(payment.into()),
        country: None,
        tier: None,
        verified: None,
    }
}

/// A campaign of 8 accounts (two payment methods, one residential /24 per pair of hours),
/// 20 ordinary users, an app backend and an enterprise behind one NAT, over two days.
fn trace() -> (Vec<Account>, Vec<Exchange>) {
    let mut accounts = Vec::new();
    let mut xs = Vec::new();
    let harvest = Params {
        max_tokens: Some(16_000),
        ..Params::default()
    };
    for m in 0..8 {
        let id = format!("camp_{m}");
        accounts.push(account(
            &id,
            &format!("pf_camp_{}", m % 2),
            START - 3 * Timestamp::DAY,
        ));
        for k in 0..60i64 {
            let ts = START + k * 45 * Timestamp::MINUTE + m * 7_000;
            let text = format!(
                "{}\n{}",
                WRAPPERS[(k as usize + m as usize) % WRAPPERS.len()],
                QUESTIONS[(k as usize * 5 + m as usize) % QUESTIONS.len()]
            );
            let ip = format!("198.51.{}.{}", 100 + (k / 8) % 4, 10 + m);
            xs.push(exchange(ts, &id, &ip, &text, Some(harvest.clone())));
        }
    }
    for u in 0..20 {
        let id = format!("user_{u:02}");
        accounts.push(account(
            &id,
            &format!("pf_user_{u}"),
            START - 400 * Timestamp::DAY,
        ));
        for k in 0..6i64 {
            let ts = START + (u * 97 + k * 411) * Timestamp::MINUTE % (2 * Timestamp::DAY);
            let text = if k == 3 {
                format!(
                    "{} Explain step by step.",
                    QUESTIONS[u as usize % QUESTIONS.len()]
                )
            } else {
                CHAT[(u as usize + k as usize) % CHAT.len()].to_owned()
            };
            xs.push(exchange(ts, &id, &format!("203.0.113.{u}"), &text, None));
        }
    }
    // An app backend: one account, a fixed system prompt, many narrow requests.
    accounts.push(account("app", "pf_app", START - 300 * Timestamp::DAY));
    for k in 0..600i64 {
        let ts = START + k * 4 * Timestamp::MINUTE;
        let mut x = exchange(
            ts,
            "app",
            "192.0.2.10",
            &format!("Summarize support ticket #{k}: customer cannot log in after reset."),
            Some(Params {
                max_tokens: Some(512),
                ..Params::default()
            }),
        );
        x.request.messages.insert(
            0,
            Message::text(
                "system",
                "You are the support assistant of Acme Corp. Be brief.",
            ),
        );
        xs.push(x);
    }
    // An enterprise: ten accounts, one payment method, one NAT address, ordinary use.
    for e in 0..10 {
        let id = format!("corp_{e}");
        accounts.push(account(&id, "pf_corp", START - 200 * Timestamp::DAY));
        for k in 0..12i64 {
            let ts = START + (9 * Timestamp::HOUR) + (e * 13 + k * 37) * Timestamp::MINUTE;
            let text = CHAT[(e as usize + k as usize) % CHAT.len()];
            xs.push(exchange(ts, &id, "192.0.2.200", text, None));
        }
    }
    xs.sort_by_key(|x| (x.ts, x.account_id.clone()));
    (accounts, xs)
}

fn run(accounts: &[Account], xs: &[Exchange]) -> Vec<Detection> {
    let mut engine = Engine::new(Config::default());
    for a in accounts {
        engine.add_account(a);
    }
    for x in xs {
        engine.observe(x);
    }
    engine.finish()
}

fn account_line<'a>(ds: &'a [Detection], id: &str) -> &'a moat_types::AccountDetection {
    ds.iter()
        .find_map(|d| match d {
            Detection::Account(a) if a.account_id == id => Some(a),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no line for {id}"))
}

#[test]
fn finds_the_campaign_with_evidence_and_leaves_hard_negatives_clean() {
    let (accounts, xs) = trace();
    let ds = run(&accounts, &xs);
    let campaigns: Vec<_> = ds
        .iter()
        .filter_map(|d| match d {
            Detection::Campaign(c) => Some(c),
            _ => None,
        })
        .collect();
    assert_eq!(campaigns.len(), 1, "{campaigns:#?}");
    let c = campaigns[0];
    let expected: Vec<String> = (0..8).map(|m| format!("camp_{m}")).collect();
    assert_eq!(c.accounts, expected);
    let names: Vec<&str> = c.signals.iter().map(|s| s.name.as_str()).collect();
    assert!(names.contains(&"shared_payment"), "{names:?}");
    assert!(names.contains(&"shared_template"), "{names:?}");
    for m in 0..8 {
        let a = account_line(&ds, &format!("camp_{m}"));
        assert!(a.flagged);
        assert_eq!(a.campaign_id.as_deref(), Some(c.campaign_id.as_str()));
        assert!(a.reasons.iter().any(|r| r == "campaign_member"));
        assert!(
            a.reasons.iter().any(|r| r == "cot_elicitation"),
            "{:?}",
            a.reasons
        );
    }
    let others = ds.iter().filter_map(|d| match d {
        Detection::Account(a) if !a.account_id.starts_with("camp_") => Some(a),
        _ => None,
    });
    for a in others {
        assert!(!a.flagged, "{a:?}");
        assert!(a.risk < 0.5, "{a:?}");
    }
    // One line per account seen, sorted by id.
    let ids: Vec<&str> = ds
        .iter()
        .filter_map(|d| match d {
            Detection::Account(a) => Some(a.account_id.as_str()),
            _ => None,
        })
        .collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(ids, sorted);
    assert_eq!(ids.len(), 8 + 20 + 1 + 10);
}

#[test]
fn flags_are_decided_from_the_past_only() {
    let (accounts, xs) = trace();
    let full = run(&accounts, &xs);
    for m in 0..8 {
        let id = format!("camp_{m}");
        let at = account_line(&full, &id)
            .flagged_at
            .expect("campaign members are flagged");
        // The flag time is the ts of an exchange in the stream.
        assert!(xs.iter().any(|x| x.ts == at));
        // Up to and including that exchange: flagged at the same instant.
        let upto: Vec<_> = xs.iter().filter(|x| x.ts <= at).cloned().collect();
        let partial = run(&accounts, &upto);
        assert_eq!(account_line(&partial, &id).flagged_at, Some(at), "{id}");
        // Strictly before it: not flagged, whatever the account sent.
        let before: Vec<_> = xs.iter().filter(|x| x.ts < at).cloned().collect();
        let partial = run(&accounts, &before);
        if let Some(a) = partial.iter().find_map(|d| match d {
            Detection::Account(a) if a.account_id == id => Some(a),
            _ => None,
        }) {
            assert!(!a.flagged, "{id} flagged before {at}");
        }
    }
}

#[test]
fn the_same_input_gives_the_same_detections() {
    let (accounts, xs) = trace();
    let a = serde_json::to_string(&run(&accounts, &xs)).unwrap();
    let b = serde_json::to_string(&run(&accounts, &xs)).unwrap();
    assert_eq!(a, b);
}

#[test]
fn features_computed_elsewhere_give_the_same_result() {
    let (accounts, xs) = trace();
    let mut engine = Engine::new(Config::default());
    for a in &accounts {
        engine.add_account(a);
    }
    let features: Vec<_> = xs.iter().map(moat_detect::Features::of).collect();
    for f in features {
        engine.observe_features(f);
    }
    let via_features = serde_json::to_string(&engine.finish()).unwrap();
    assert_eq!(
        via_features,
        serde_json::to_string(&run(&accounts, &xs)).unwrap()
    );
}

#[test]
fn an_empty_stream_has_no_detections() {
    assert!(run(&[], &[]).is_empty());
}

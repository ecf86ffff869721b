//! The store conformance suite: what every [`Store`] backend must do, written once.
//!
//! A backend's test file includes this module and instantiates the suite with
//! `store_conformance!(factory)`, where `factory()` returns `(store, guard)`: a fresh, empty
//! store and whatever must live as long as it (a temporary directory, a database handle).
//! A backend that needs a server uses `store_conformance!(optional: factory)`, where
//! `factory()` returns `Option<(store, guard)>` and `None` (no server configured) makes each
//! test pass after printing that it was skipped.
//! The functions take `&dyn Store`, so they see only the trait.

#![allow(dead_code)]

use std::collections::BTreeMap;

use moat_store::{
    AccountQuery, AppendReport, AuditEntry, AuditQuery, Cursor, DecisionQuery, DecisionRecord,
    DetectionLog, ExchangeQuery, FeatureCursor, FeatureLog, FeatureRow, Order, Store, StoreError,
    MAX_PAGE_LIMIT,
};
use moat_types::{
    Client, Content, ContentPart, Exchange, Message, Params, Request, Response, Timestamp,
};

/// Instantiates every conformance test for a backend: `store_conformance!(factory)`, or
/// `store_conformance!(optional: factory)` for a factory that may have no store to give.
#[macro_export]
macro_rules! store_conformance {
    (@tests $mode:ident $factory:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::store_conformance!(@run $mode $factory, $name);
            }
        )*
    };
    (@run required $factory:expr, $name:ident) => {
        let (store, _guard) = $factory();
        $crate::conformance::$name(&store);
    };
    (@run optional $factory:expr, $name:ident) => {
        match $factory() {
            Some((store, _guard)) => $crate::conformance::$name(&store),
            None => eprintln!("{}: skipped, no store to test", stringify!($name)),
        }
    };
    (@all $mode:ident $factory:expr) => {
        $crate::store_conformance!(@tests $mode $factory;
            empty_store_answers_empty,
            exchanges_round_trip_exactly,
            append_is_idempotent_by_request_id,
            paging_is_stable_by_ts_then_insertion,
            paging_does_not_skip_or_repeat_during_appends,
            exchange_filters_select_account_and_range,
            invalid_cursor_is_refused,
            page_limit_is_clamped,
            decisions_round_trip_and_filter,
            decisions_are_idempotent_by_request_and_ts,
            audit_round_trips_and_pages,
            account_summaries_match_the_exchanges,
            account_summaries_page_in_id_order,
            export_streams_everything_in_ts_order,
            export_since_and_sink_errors,
            schema_version_is_recorded,
            feature_log_reads_every_row_once_in_order,
            feature_log_loses_nothing_under_concurrent_writers,
            detections_are_replaced_and_campaigns_removed,
        );
    };
    (optional: $factory:expr) => {
        $crate::store_conformance!(@all optional $factory);
    };
    ($factory:expr) => {
        $crate::store_conformance!(@all required $factory);
    };
}

/// A plain exchange of `account` at `ts_ms` with tokens.
pub fn exchange(account: &str, request_id: Option<&str>, ts_ms: i64, tokens: u64) -> Exchange {
    Exchange {
        v: 1,
        ts: Timestamp::from_millis(ts_ms),
        request_id: request_id.map(str::to_owned),
        account_id: account.to_owned(),
        api_key_id: None,
        client: None,
        request: Request {
            messages: vec![Message::text("user", format!("question at {ts_ms}"))],
            ..Request::default()
        },
        response: Some(Response {
            prompt_tokens: Some(tokens),
            completion_tokens: Some(tokens * 2),
            reasoning_tokens: Some(tokens * 3),
            ..Response::default()
        }),
    }
}

/// An exchange using every field of the format, with text that JSON must escape.
pub fn rich_exchange() -> Exchange {
    let mut extra = BTreeMap::new();
    extra.insert("max_completion_tokens".to_owned(), serde_json::json!(9000));
    extra.insert(
        "reasoning".to_owned(),
        serde_json::json!({"effort": "high", "list": [1.5, null, "x"]}),
    );
    Exchange {
        v: 1,
        ts: Timestamp::parse("2026-04-01T12:00:00.123Z").unwrap(),
        request_id: Some("req_01HX\u{1F600}".to_owned()),
        account_id: "acct_5821 \"quoted\"".to_owned(),
        api_key_id: Some("key_9f2c".to_owned()),
        client: Some(Client {
            ip: Some("2001:db8::1".to_owned()),
            asn: Some(64500),
            country: Some("US".to_owned()),
            user_agent: Some("OpenAI/Python 1.40.0".to_owned()),
            tls_ja4: Some("t13d1516h2_8daaf6152771_02713d6af862".to_owned()),
        }),
        request: Request {
            endpoint: Some("/v1/chat/completions".to_owned()),
            model: Some("frontier-1".to_owned()),
            messages: vec![
                Message::text("system", "line one\nline two\t\u{0}\u{2028}"),
                Message {
                    role: "user".to_owned(),
                    content: Some(Content::Parts(vec![
                        ContentPart {
                            kind: "text".to_owned(),
                            text: Some("Prove ∞ primes".to_owned()),
                        },
                        ContentPart {
                            kind: "image_url".to_owned(),
                            text: None,
                        },
                    ])),
                },
                Message {
                    role: "assistant".to_owned(),
                    content: None,
                },
            ],
            prompt: None,
            params: Some(Params {
                temperature: Some(0.7),
                top_p: Some(0.1 + 0.2),
                max_tokens: Some(4096),
                n: Some(1),
                reasoning_effort: Some("high".to_owned()),
                stream: Some(true),
                logprobs: Some(false),
                top_logprobs: None,
                extra,
            }),
        },
        response: Some(Response {
            status: Some(200),
            prompt_tokens: Some(31),
            completion_tokens: Some(812),
            reasoning_tokens: Some(2240),
            finish_reason: Some("stop".to_owned()),
            latency_ms: Some(5310),
            content: Some("answer".to_owned()),
            reasoning: Some("because".to_owned()),
        }),
    }
}

/// A decision with every field set.
pub fn decision(account: &str, request_id: Option<&str>, ts_ms: i64) -> DecisionRecord {
    DecisionRecord {
        ts: Timestamp::from_millis(ts_ms),
        request_id: request_id.map(str::to_owned),
        account_id: account.to_owned(),
        campaign_id: Some("C-0007".to_owned()),
        rule: Some("distill_high_risk".to_owned()),
        actions: vec!["throttle".to_owned(), "withhold_reasoning".to_owned()],
        shadow: vec!["tarpit_trial".to_owned()],
        risk: 0.97,
        enforced: true,
        detail: Some("score above 0.9".to_owned()),
    }
}

fn json(x: &Exchange) -> serde_json::Value {
    serde_json::to_value(x).unwrap()
}

fn all_exchanges(store: &dyn Store, mut q: ExchangeQuery) -> Vec<Exchange> {
    let mut out = Vec::new();
    loop {
        let page = store.exchanges(&q).unwrap();
        assert!(page.items.len() <= q.limit.clamp(1, MAX_PAGE_LIMIT));
        out.extend(page.items);
        match page.next {
            Some(c) => q.cursor = Some(c),
            None => return out,
        }
    }
}

fn ids(xs: &[Exchange]) -> Vec<String> {
    xs.iter()
        .map(|x| x.request_id.clone().unwrap_or_default())
        .collect()
}

pub fn empty_store_answers_empty(store: &dyn Store) {
    assert_eq!(store.count_exchanges().unwrap(), 0);
    let page = store.exchanges(&ExchangeQuery::default()).unwrap();
    assert!(page.items.is_empty() && page.next.is_none());
    assert!(store
        .decisions(&DecisionQuery::default())
        .unwrap()
        .items
        .is_empty());
    assert!(store
        .audit(&AuditQuery::default())
        .unwrap()
        .items
        .is_empty());
    assert!(store
        .account_summaries(&AccountQuery::default())
        .unwrap()
        .items
        .is_empty());
    assert_eq!(store.export_exchanges(None, &mut |_| Ok(())).unwrap(), 0);
    assert_eq!(
        store.append_exchanges(&[]).unwrap(),
        AppendReport::default()
    );
    assert_eq!(
        store.append_decisions(&[]).unwrap(),
        AppendReport::default()
    );
}

pub fn exchanges_round_trip_exactly(store: &dyn Store) {
    let rich = rich_exchange();
    let mut completion = exchange("b", None, 5, 1);
    completion.request.messages.clear();
    completion.request.prompt = Some("legacy prompt".to_owned());
    completion.response = None;
    store
        .append_exchanges(&[rich.clone(), completion.clone()])
        .unwrap();

    let got = store.exchanges(&ExchangeQuery::default()).unwrap().items;
    assert_eq!(got.len(), 2);
    // Ordered by ts: the completion (ts 5) before the rich record (2026).
    assert_eq!(json(&got[0]), json(&completion));
    assert_eq!(json(&got[1]), json(&rich));
    assert_eq!(got[1], rich);

    let mut lines = Vec::new();
    store
        .export_exchanges(None, &mut |l| {
            lines.push(l.to_owned());
            Ok(())
        })
        .unwrap();
    // Export gives the exact exchange-log line the record serializes to.
    assert_eq!(lines[1], serde_json::to_string(&rich).unwrap());
    let back: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(back, json(&completion));
}

pub fn append_is_idempotent_by_request_id(store: &dyn Store) {
    let a = exchange("acct", Some("r-a"), 10, 1);
    let b = exchange("acct", Some("r-b"), 20, 1);
    let c = exchange("acct", Some("r-c"), 30, 1);
    let anon = exchange("acct", None, 40, 1);
    let r = store.append_exchanges(&[a.clone(), b.clone()]).unwrap();
    assert_eq!(
        r,
        AppendReport {
            new: 2,
            duplicates: 0
        }
    );
    // A re-sent record, a duplicate within the batch, and records without a request id.
    let mut b_changed = b.clone();
    b_changed.account_id = "someone-else".to_owned();
    let r = store
        .append_exchanges(&[b_changed, c.clone(), c.clone(), anon.clone(), anon.clone()])
        .unwrap();
    assert_eq!(
        r,
        AppendReport {
            new: 3,
            duplicates: 2
        }
    );
    assert_eq!(store.count_exchanges().unwrap(), 5);
    let got = all_exchanges(store, ExchangeQuery::default());
    // The first stored version of a request id wins.
    assert_eq!(got, vec![a, b, c, anon.clone(), anon]);
    let accounts = store
        .account_summaries(&AccountQuery::default())
        .unwrap()
        .items;
    assert_eq!(
        accounts.len(),
        1,
        "a skipped duplicate must not touch the summaries"
    );
    assert_eq!(accounts[0].exchanges, 5);
}

pub fn paging_is_stable_by_ts_then_insertion(store: &dyn Store) {
    // Three records share each timestamp, and batches arrive out of ts order.
    let mut expected = Vec::new();
    for batch in [[3, 1, 2, 1], [2, 3, 1, 3], [1, 2, 3, 2]] {
        let base = expected.len();
        let xs: Vec<_> = batch
            .iter()
            .enumerate()
            .map(|(i, ts)| exchange("acct", Some(&format!("r{}", base + i)), *ts, 1))
            .collect();
        expected.extend(
            xs.iter()
                .cloned()
                .enumerate()
                .map(|(i, x)| (x.ts, base + i, x)),
        );
        store.append_exchanges(&xs).unwrap();
    }
    expected.sort_by_key(|(ts, seq, _)| (*ts, *seq));
    let oldest_first: Vec<_> = expected.iter().map(|(_, _, x)| x.clone()).collect();

    for limit in [1, 2, 5, 12, 100] {
        let q = ExchangeQuery {
            limit,
            ..ExchangeQuery::default()
        };
        assert_eq!(
            ids(&all_exchanges(store, q)),
            ids(&oldest_first),
            "limit {limit}"
        );
        let q = ExchangeQuery {
            limit,
            order: Order::NewestFirst,
            ..ExchangeQuery::default()
        };
        let mut newest_first = oldest_first.clone();
        newest_first.reverse();
        assert_eq!(
            ids(&all_exchanges(store, q)),
            ids(&newest_first),
            "limit {limit}"
        );
    }
    let first = store
        .exchanges(&ExchangeQuery {
            limit: 12,
            ..ExchangeQuery::default()
        })
        .unwrap();
    assert!(
        first.next.is_none(),
        "an exactly full last page has no next cursor"
    );
}

pub fn paging_does_not_skip_or_repeat_during_appends(store: &dyn Store) {
    let xs: Vec<_> = (0..10)
        .map(|i| exchange("a", Some(&format!("r{i}")), i * 10, 1))
        .collect();
    store.append_exchanges(&xs).unwrap();
    let mut q = ExchangeQuery {
        limit: 4,
        ..ExchangeQuery::default()
    };
    let mut seen = Vec::new();
    let mut late = Vec::new();
    let mut round = 0;
    loop {
        let page = store.exchanges(&q).unwrap();
        seen.extend(page.items);
        // Between pages: one record before the cursor (must not appear), one after (must).
        let before = exchange("a", Some(&format!("before{round}")), -1, 1);
        let after = exchange("a", Some(&format!("after{round}")), 1000 + round, 1);
        store.append_exchanges(&[before, after.clone()]).unwrap();
        late.push(after);
        round += 1;
        match page.next {
            Some(c) => q.cursor = Some(c),
            None => break,
        }
    }
    let mut expected = xs;
    // The walk ends on the page that held the last record present then; later records that
    // sort after the cursor were visited on the way.
    expected.extend(late.into_iter().take(round as usize - 1));
    assert_eq!(ids(&seen), ids(&expected));
    let mut unique = ids(&seen);
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "no record repeated");
    assert!(
        seen.iter().all(|x| x.ts.as_millis() >= 0),
        "nothing before the cursor"
    );
}

pub fn exchange_filters_select_account_and_range(store: &dyn Store) {
    let xs: Vec<_> = (0..30)
        .map(|i| exchange(["a", "b", "c"][i % 3], Some(&format!("r{i}")), i as i64, 1))
        .collect();
    store.append_exchanges(&xs).unwrap();
    let q = ExchangeQuery {
        account_id: Some("b".to_owned()),
        since: Some(Timestamp::from_millis(4)),
        until: Some(Timestamp::from_millis(22)),
        limit: 2,
        ..ExchangeQuery::default()
    };
    let got = all_exchanges(store, q.clone());
    let want: Vec<_> = xs
        .iter()
        .filter(|x| x.account_id == "b" && (4..22).contains(&x.ts.as_millis()))
        .cloned()
        .collect();
    assert_eq!(want.len(), 6);
    assert_eq!(got, want);
    let newest = all_exchanges(
        store,
        ExchangeQuery {
            order: Order::NewestFirst,
            ..q
        },
    );
    assert_eq!(newest, want.into_iter().rev().collect::<Vec<_>>());
    let none = ExchangeQuery {
        account_id: Some("nobody".to_owned()),
        ..ExchangeQuery::default()
    };
    assert!(store.exchanges(&none).unwrap().items.is_empty());
}

pub fn invalid_cursor_is_refused(store: &dyn Store) {
    store
        .append_exchanges(&[exchange("a", Some("r"), 1, 1)])
        .unwrap();
    for text in ["", "garbage", "1.x", "\u{0}", "9999999999999999999999.1"] {
        let q = ExchangeQuery {
            cursor: Some(Cursor::new(text)),
            ..ExchangeQuery::default()
        };
        assert!(
            matches!(store.exchanges(&q), Err(StoreError::InvalidCursor)),
            "{text:?}"
        );
        let q = DecisionQuery {
            cursor: Some(Cursor::new(text)),
            ..DecisionQuery::default()
        };
        assert!(
            matches!(store.decisions(&q), Err(StoreError::InvalidCursor)),
            "{text:?}"
        );
        let q = AuditQuery {
            cursor: Some(Cursor::new(text)),
            ..AuditQuery::default()
        };
        assert!(
            matches!(store.audit(&q), Err(StoreError::InvalidCursor)),
            "{text:?}"
        );
    }
}

pub fn page_limit_is_clamped(store: &dyn Store) {
    let xs: Vec<_> = (0..MAX_PAGE_LIMIT as i64 + 5)
        .map(|i| exchange("a", Some(&format!("r{i}")), i, 1))
        .collect();
    store.append_exchanges(&xs).unwrap();
    let zero = store
        .exchanges(&ExchangeQuery {
            limit: 0,
            ..ExchangeQuery::default()
        })
        .unwrap();
    assert_eq!(zero.items.len(), 1);
    assert!(zero.next.is_some());
    let huge = store
        .exchanges(&ExchangeQuery {
            limit: usize::MAX,
            ..ExchangeQuery::default()
        })
        .unwrap();
    assert_eq!(huge.items.len(), MAX_PAGE_LIMIT);
    let rest = store
        .exchanges(&ExchangeQuery {
            limit: usize::MAX,
            cursor: huge.next,
            ..ExchangeQuery::default()
        })
        .unwrap();
    assert_eq!(rest.items.len(), 5);
    assert!(rest.next.is_none());
}

pub fn decisions_round_trip_and_filter(store: &dyn Store) {
    let mut bare = decision("b", None, 15);
    bare.campaign_id = None;
    bare.rule = None;
    bare.actions.clear();
    bare.shadow.clear();
    bare.detail = None;
    bare.enforced = false;
    bare.risk = 0.1 + 0.2;
    let mut nan = decision("c", Some("r-nan"), 17);
    nan.risk = f64::NAN;
    let ds = vec![
        decision("a", Some("r1"), 20),
        bare.clone(),
        decision("a", Some("r2"), 10),
        nan,
    ];
    assert_eq!(store.append_decisions(&ds).unwrap().new, 4);
    let all = store.decisions(&DecisionQuery::default()).unwrap().items;
    assert_eq!(all.len(), 4);
    assert_eq!(all[0], ds[2]);
    assert_eq!(all[1], bare);
    assert!(all[2].risk.is_nan(), "a non-finite risk reads back as NaN");
    assert_eq!(all[3], ds[0]);

    let by_account = DecisionQuery {
        account_id: Some("a".to_owned()),
        order: Order::NewestFirst,
        limit: 1,
        ..DecisionQuery::default()
    };
    let p1 = store.decisions(&by_account).unwrap();
    assert_eq!(p1.items, vec![ds[0].clone()]);
    let p2 = store
        .decisions(&DecisionQuery {
            cursor: p1.next,
            ..by_account
        })
        .unwrap();
    assert_eq!(p2.items, vec![ds[2].clone()]);
    assert!(p2.next.is_none());

    let by_request = DecisionQuery {
        request_id: Some("r1".to_owned()),
        ..DecisionQuery::default()
    };
    assert_eq!(
        store.decisions(&by_request).unwrap().items,
        vec![ds[0].clone()]
    );
    let in_range = DecisionQuery {
        since: Some(Timestamp::from_millis(15)),
        until: Some(Timestamp::from_millis(20)),
        ..DecisionQuery::default()
    };
    let got = store.decisions(&in_range).unwrap().items;
    assert_eq!(
        got.iter().map(|d| d.ts.as_millis()).collect::<Vec<_>>(),
        [15, 17]
    );
}

pub fn decisions_are_idempotent_by_request_and_ts(store: &dyn Store) {
    let d = decision("a", Some("r1"), 10);
    let later = decision("a", Some("r1"), 11);
    let anon = decision("a", None, 10);
    assert_eq!(
        store.append_decisions(&[d.clone(), anon.clone()]).unwrap(),
        AppendReport {
            new: 2,
            duplicates: 0
        }
    );
    assert_eq!(
        store.append_decisions(&[d, later, anon]).unwrap(),
        AppendReport {
            new: 2,
            duplicates: 1
        }
    );
    assert_eq!(
        store
            .decisions(&DecisionQuery::default())
            .unwrap()
            .items
            .len(),
        4
    );
}

pub fn audit_round_trips_and_pages(store: &dyn Store) {
    let entries: Vec<_> = (0..7)
        .map(|i| AuditEntry {
            ts: Timestamp::from_millis(100 - i),
            actor: if i % 2 == 0 { "alice" } else { "bob" }.to_owned(),
            action: "policy_reload".to_owned(),
            target: (i % 3 == 0).then(|| format!("acct_{i}")),
            detail: (i == 4).then(|| "manual block".to_owned()),
        })
        .collect();
    for e in &entries {
        store.append_audit(e).unwrap();
    }
    let mut q = AuditQuery {
        actor: Some("alice".to_owned()),
        order: Order::NewestFirst,
        limit: 3,
        ..AuditQuery::default()
    };
    let mut got = Vec::new();
    loop {
        let page = store.audit(&q).unwrap();
        got.extend(page.items);
        match page.next {
            Some(c) => q.cursor = Some(c),
            None => break,
        }
    }
    let want: Vec<_> = entries
        .iter()
        .filter(|e| e.actor == "alice")
        .cloned()
        .collect();
    assert_eq!(
        got, want,
        "alice's entries, newest first (they were appended newest first)"
    );
    let range = AuditQuery {
        since: Some(Timestamp::from_millis(95)),
        until: Some(Timestamp::from_millis(98)),
        ..AuditQuery::default()
    };
    let got = store.audit(&range).unwrap().items;
    assert_eq!(
        got.iter().map(|e| e.ts.as_millis()).collect::<Vec<_>>(),
        [95, 96, 97]
    );
}

pub fn account_summaries_match_the_exchanges(store: &dyn Store) {
    let mut xs = Vec::new();
    for i in 0..50u64 {
        let acct = format!("acct_{}", i % 7);
        let mut x = exchange(&acct, Some(&format!("r{i}")), (i * 37 % 101) as i64, i);
        if i % 5 == 0 {
            x.response = None; // missing counts are zero
        }
        xs.push(x);
    }
    for chunk in xs.chunks(13) {
        store.append_exchanges(chunk).unwrap();
    }
    store.append_exchanges(&xs[..10]).unwrap(); // duplicates change nothing
    let got = store
        .account_summaries(&AccountQuery {
            limit: 100,
            ..AccountQuery::default()
        })
        .unwrap();
    assert!(got.next.is_none());
    assert_eq!(got.items.len(), 7);
    for s in &got.items {
        let mine: Vec<_> = xs.iter().filter(|x| x.account_id == s.account_id).collect();
        let sum = |f: fn(&Response) -> Option<u64>| -> u64 {
            mine.iter()
                .filter_map(|x| x.response.as_ref().and_then(f))
                .sum()
        };
        assert_eq!(s.exchanges, mine.len() as u64);
        assert_eq!(s.first_seen, mine.iter().map(|x| x.ts).min().unwrap());
        assert_eq!(s.last_seen, mine.iter().map(|x| x.ts).max().unwrap());
        assert_eq!(s.prompt_tokens, sum(|r| r.prompt_tokens));
        assert_eq!(s.completion_tokens, sum(|r| r.completion_tokens));
        assert_eq!(s.reasoning_tokens, sum(|r| r.reasoning_tokens));
        assert_eq!(s.total_tokens(), s.prompt_tokens * 6);
    }
    assert_eq!(store.count_exchanges().unwrap(), 50);
}

pub fn account_summaries_page_in_id_order(store: &dyn Store) {
    let names = ["zed", "", "alpha", "Beta", "alpha2", "é", "a\u{0}b"];
    let xs: Vec<_> = names
        .iter()
        .enumerate()
        .map(|(i, n)| exchange(n, Some(&format!("r{i}")), i as i64, 1))
        .collect();
    store.append_exchanges(&xs).unwrap();
    let mut q = AccountQuery {
        limit: 2,
        ..AccountQuery::default()
    };
    let mut got = Vec::new();
    loop {
        let page = store.account_summaries(&q).unwrap();
        assert!(page.items.len() <= 2);
        got.extend(page.items.into_iter().map(|s| s.account_id));
        match page.next {
            Some(c) => q.cursor = Some(c),
            None => break,
        }
    }
    let mut want: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
    want.sort(); // byte order of UTF-8, which is code point order
    assert_eq!(got, want);
}

pub fn export_streams_everything_in_ts_order(store: &dyn Store) {
    // More than one export chunk, appended in batches with ts out of order.
    let n = 2_500i64;
    let xs: Vec<_> = (0..n)
        .map(|i| exchange("a", Some(&format!("r{i}")), (i * 7919) % 1_000, 1))
        .collect();
    for chunk in xs.chunks(600) {
        store.append_exchanges(chunk).unwrap();
    }
    let mut lines = Vec::new();
    let sent = store
        .export_exchanges(None, &mut |l| {
            lines.push(l.to_owned());
            Ok(())
        })
        .unwrap();
    assert_eq!(sent, n as u64);
    let got: Vec<Exchange> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut want = xs;
    want.sort_by_key(|x| x.ts); // stable: insertion order within a timestamp
    assert_eq!(
        got.iter().map(json).collect::<Vec<_>>(),
        want.iter().map(json).collect::<Vec<_>>()
    );
    let mut out = Vec::new();
    assert_eq!(
        moat_store::export_jsonl(store, None, &mut out).unwrap(),
        n as u64
    );
    let text = String::from_utf8(out).unwrap();
    assert_eq!(
        text,
        lines.iter().map(|l| format!("{l}\n")).collect::<String>()
    );
}

pub fn export_since_and_sink_errors(store: &dyn Store) {
    let xs: Vec<_> = (0..20)
        .map(|i| exchange("a", Some(&format!("r{i}")), i, 1))
        .collect();
    store.append_exchanges(&xs).unwrap();
    let mut seen = Vec::new();
    let sent = store
        .export_exchanges(Some(Timestamp::from_millis(15)), &mut |l| {
            seen.push(serde_json::from_str::<Exchange>(l).unwrap().ts.as_millis());
            Ok(())
        })
        .unwrap();
    assert_eq!(sent, 5);
    assert_eq!(seen, [15, 16, 17, 18, 19]);
    let mut calls = 0;
    let err = store
        .export_exchanges(None, &mut |_| {
            calls += 1;
            if calls == 3 {
                Err(StoreError::Unavailable("sink full".to_owned()))
            } else {
                Ok(())
            }
        })
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)));
    assert_eq!(calls, 3, "the export stops at the first sink error");
}

pub fn schema_version_is_recorded(store: &dyn Store) {
    assert!(store.schema_version().unwrap() >= 1);
}

pub fn feature_row(account: &str, request_id: Option<&str>, ts_ms: i64, body: &[u8]) -> FeatureRow {
    FeatureRow {
        request_id: request_id.map(str::to_owned),
        account_id: account.to_owned(),
        ts: Timestamp::from_millis(ts_ms),
        body: body.to_vec(),
    }
}

/// Reads the log after `from` in pages of `limit` until `want` rows have come (checking the
/// cursor moves with them), then once more to check nothing else does. A PostgreSQL log shows
/// a row only once every older writing transaction of the cluster has ended, and other tests
/// write at the same time, so rows may take a moment to show.
fn read_all(
    log: &dyn FeatureLog,
    from: FeatureCursor,
    limit: usize,
    want: usize,
) -> (Vec<FeatureRow>, FeatureCursor) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut cursor = from;
    let mut out = Vec::new();
    loop {
        let (rows, next) = log.read_features(cursor, limit).unwrap();
        assert!(rows.len() <= limit.max(1));
        if rows.is_empty() {
            assert_eq!(next, cursor, "an empty read keeps the cursor");
            if out.len() >= want {
                return (out, cursor);
            }
            assert!(
                std::time::Instant::now() < deadline,
                "only {} of {want} rows came",
                out.len()
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
            continue;
        }
        assert!(next > cursor, "the cursor moves forward");
        cursor = next;
        out.extend(rows);
    }
}

pub fn feature_log_reads_every_row_once_in_order(log: &dyn FeatureLog) {
    let (rows, start) = read_all(log, FeatureCursor::default(), 10, 0);
    assert!(rows.is_empty());
    let first = [
        feature_row("a", Some("r1"), 1_000, b"\x01\x00\xff"),
        feature_row("b\u{0}x", Some("r2"), 900, b""),
        feature_row("a", None, 1_100, b"no id"),
    ];
    let r = log.append_features(&first).unwrap();
    assert_eq!((r.new, r.duplicates), (3, 0));
    // A redelivered row (same request id) is a duplicate; one without an id is always new.
    let second = [
        feature_row("a", Some("r1"), 1_000, b"again"),
        feature_row("c", Some("r3"), 1_200, &[7u8; 300]),
        feature_row("a", None, 1_100, b"no id"),
    ];
    let r = log.append_features(&second).unwrap();
    assert_eq!((r.new, r.duplicates), (2, 1));
    assert_eq!(log.append_features(&[]).unwrap().new, 0);

    let (rows, end) = read_all(log, start, 2, 5);
    let expected = vec![
        first[0].clone(),
        first[1].clone(),
        first[2].clone(),
        second[1].clone(),
        second[2].clone(),
    ];
    assert_eq!(
        rows, expected,
        "append order, bytes exact, duplicates left out"
    );
    // Nothing new: a read from the end is empty; a read from the start gives it all again.
    assert!(log.read_features(end, 100).unwrap().0.is_empty());
    assert_eq!(read_all(log, FeatureCursor::default(), 100, 5).0, expected);
    log.append_features(&[feature_row("d", Some("r4"), 5, b"late ts")])
        .unwrap();
    let (more, _) = read_all(log, end, 100, 1);
    assert_eq!(more, vec![feature_row("d", Some("r4"), 5, b"late ts")]);
}

pub fn feature_log_loses_nothing_under_concurrent_writers(log: &dyn FeatureLog) {
    const WRITERS: usize = 4;
    const BATCHES: usize = 25;
    const PER_BATCH: usize = 8;
    let total = WRITERS * BATCHES * PER_BATCH;
    let seen = std::sync::Mutex::new(Vec::<String>::new());
    let done = std::sync::atomic::AtomicUsize::new(0);
    let done = &done;
    std::thread::scope(|scope| {
        for w in 0..WRITERS {
            scope.spawn(move || {
                for b in 0..BATCHES {
                    let batch: Vec<FeatureRow> = (0..PER_BATCH)
                        .map(|i| {
                            let id = format!("w{w}-b{b}-{i}");
                            feature_row(
                                &format!("acct{w}"),
                                Some(&id),
                                (b * 10 + i) as i64,
                                id.as_bytes(),
                            )
                        })
                        .collect();
                    log.append_features(&batch).unwrap();
                }
                done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            });
        }
        // A reader follows the writers and must see each row exactly once.
        let seen = &seen;
        scope.spawn(move || {
            let mut cursor = FeatureCursor::default();
            loop {
                let finished = done.load(std::sync::atomic::Ordering::SeqCst) == WRITERS;
                let (rows, next) = log.read_features(cursor, 17).unwrap();
                cursor = next;
                let empty = rows.is_empty();
                seen.lock()
                    .unwrap()
                    .extend(rows.into_iter().map(|r| r.request_id.unwrap()));
                if finished && empty {
                    // One more read after the writers ended: everything has settled.
                    let have = seen.lock().unwrap().len();
                    let (rows, _) = read_all(log, cursor, 100, total - have);
                    seen.lock()
                        .unwrap()
                        .extend(rows.into_iter().map(|r| r.request_id.unwrap()));
                    break;
                }
            }
        });
    });
    let mut seen = seen.into_inner().unwrap();
    assert_eq!(seen.len(), total, "every row read, none twice");
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), total);
}

pub fn detections_are_replaced_and_campaigns_removed(log: &dyn DetectionLog) {
    use moat_types::{AccountDetection, CampaignDetection, Detection};
    assert!(log.detections().unwrap().is_empty());
    let account = |id: &str, flagged: bool| AccountDetection {
        account_id: id.to_owned(),
        risk: if flagged { 0.9 } else { 0.1 },
        flagged,
        flagged_at: flagged.then(|| Timestamp::from_millis(5)),
        campaign_id: flagged.then(|| "C-0001".to_owned()),
        reasons: if flagged {
            vec!["campaign_member".to_owned()]
        } else {
            Vec::new()
        },
    };
    let campaign = |id: &str, members: &[&str]| CampaignDetection {
        campaign_id: id.to_owned(),
        accounts: members.iter().map(|m| (*m).to_owned()).collect(),
        score: 0.8,
        first_detected_at: Some(Timestamp::from_millis(5)),
        signals: Vec::new(),
    };
    log.put_detections(
        &[account("b", false), account("a\u{0}z", true)],
        &[campaign("C-0002", &["x"]), campaign("C-0001", &["a\u{0}z"])],
        &[],
    )
    .unwrap();
    // A standing changes, a campaign goes (merged), another account comes.
    log.put_detections(
        &[account("b", true), account("c", false)],
        &[],
        &["C-0002".to_owned()],
    )
    .unwrap();
    log.put_detections(&[], &[], &[]).unwrap();
    assert_eq!(
        log.detections().unwrap(),
        vec![
            Detection::Account(account("a\u{0}z", true)),
            Detection::Account(account("b", true)),
            Detection::Account(account("c", false)),
            Detection::Campaign(campaign("C-0001", &["a\u{0}z"])),
        ],
        "accounts by id, then campaigns by id"
    );
}

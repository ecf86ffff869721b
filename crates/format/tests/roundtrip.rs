//! Property tests of the readers and writers: every record written reads back equal, in both
//! compressions and both message content shapes; the reader never panics on arbitrary bytes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::io::Cursor;

use moat_format::{ReadOptions, Reader, Writer};
use moat_types::{
    Account, AccountDetection, CampaignDetection, Class, Client, Content, ContentPart, Detection,
    Exchange, Label, Message, Params, Record, Request, Response, Signal, Timestamp,
};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

fn text() -> impl Strategy<Value = String> {
    // Printable text including quotes, escapes, newlines and non-ASCII.
    "[a-zA-Z0-9 \"\\\\\n\t{}:,é漢😀]{0,24}"
}

fn nonempty() -> impl Strategy<Value = String> {
    "[a-z0-9_]{1,12}"
}

fn ts() -> impl Strategy<Value = Timestamp> {
    (0i64..4_102_444_800_000).prop_map(Timestamp::from_millis)
}

fn unit() -> impl Strategy<Value = f64> {
    (0u32..=1000).prop_map(|k| f64::from(k) / 1000.0)
}

fn content() -> impl Strategy<Value = Content> {
    prop_oneof![
        text().prop_map(Content::Text),
        vec(
            (
                prop_oneof![Just("text".to_owned()), Just("image_url".to_owned())],
                option::of(text())
            )
                .prop_map(|(kind, text)| ContentPart { kind, text }),
            0..3
        )
        .prop_map(Content::Parts),
    ]
}

fn message() -> impl Strategy<Value = Message> {
    (
        prop_oneof![Just("system"), Just("user"), Just("assistant")],
        option::of(content()),
    )
        .prop_map(|(role, content)| Message {
            role: role.to_owned(),
            content,
        })
}

fn params() -> impl Strategy<Value = Params> {
    (
        option::of(unit()),
        option::of(0u64..200_000),
        option::of(1u64..8),
        option::of(prop_oneof![Just("low".to_owned()), Just("high".to_owned())]),
        option::of(any::<bool>()),
        option::of(any::<bool>()),
        vec(("x_[a-z]{1,6}", any::<i32>()), 0..3),
    )
        .prop_map(
            |(temperature, max_tokens, n, reasoning_effort, stream, logprobs, extra)| Params {
                temperature,
                top_p: None,
                max_tokens,
                n,
                reasoning_effort,
                stream,
                logprobs,
                top_logprobs: None,
                extra: extra
                    .into_iter()
                    .map(|(k, v)| (k, serde_json::Value::from(v)))
                    .collect::<BTreeMap<_, _>>(),
            },
        )
}

fn client() -> impl Strategy<Value = Client> {
    (
        option::of(text()),
        option::of(any::<u32>()),
        option::of(text()),
        option::of(text()),
        option::of(text()),
    )
        .prop_map(|(ip, asn, country, user_agent, tls_ja4)| Client {
            ip,
            asn,
            country,
            user_agent,
            tls_ja4,
        })
}

fn response() -> impl Strategy<Value = Response> {
    (
        option::of(100u16..600),
        option::of(any::<u32>()),
        option::of(any::<u32>()),
        option::of(text()),
        option::of(text()),
    )
        .prop_map(|(status, tokens, latency, content, reasoning)| Response {
            status,
            prompt_tokens: tokens.map(u64::from),
            completion_tokens: tokens.map(|t| u64::from(t) / 2),
            reasoning_tokens: None,
            finish_reason: Some("stop".into()),
            latency_ms: latency.map(u64::from),
            content,
            reasoning,
        })
}

fn exchange() -> impl Strategy<Value = Exchange> {
    (
        ts(),
        option::of(nonempty()),
        nonempty(),
        option::of(client()),
        vec(message(), 1..4),
        option::of(params()),
        option::of(response()),
    )
        .prop_map(
            |(ts, request_id, account_id, client, messages, params, response)| Exchange {
                v: 1,
                ts,
                request_id,
                account_id,
                api_key_id: None,
                client,
                request: Request {
                    endpoint: Some("/v1/chat/completions".into()),
                    model: Some("frontier-1".into()),
                    messages,
                    prompt: None,
                    params,
                },
                response,
            },
        )
}

fn account() -> impl Strategy<Value = Account> {
    (
        nonempty(),
        option::of(ts()),
        option::of(text()),
        option::of(text()),
        option::of(any::<bool>()),
    )
        .prop_map(
            |(account_id, created_at, email_domain, payment_fingerprint, verified)| Account {
                account_id,
                created_at,
                email_domain,
                payment_fingerprint,
                country: None,
                tier: Some("free".into()),
                verified,
            },
        )
}

fn label() -> impl Strategy<Value = Label> {
    (
        nonempty(),
        prop_oneof![
            Just(Class::Benign),
            Just(Class::BenignHeavy),
            Just(Class::Distill),
            Just(Class::Jailbreak)
        ],
        option::of(nonempty()),
        option::of(nonempty()),
    )
        .prop_map(|(account_id, class, campaign, tactic)| Label {
            account_id,
            class,
            campaign,
            tactic,
        })
}

fn detection() -> impl Strategy<Value = Detection> {
    prop_oneof![
        (
            nonempty(),
            unit(),
            any::<bool>(),
            option::of(ts()),
            option::of(nonempty()),
            vec(nonempty(), 0..3)
        )
            .prop_map(
                |(account_id, risk, flagged, flagged_at, campaign_id, reasons)| {
                    Detection::Account(AccountDetection {
                        account_id,
                        risk,
                        flagged,
                        flagged_at,
                        campaign_id,
                        reasons,
                    })
                }
            ),
        (
            nonempty(),
            vec(nonempty(), 0..4),
            unit(),
            option::of(ts()),
            vec((nonempty(), text()), 0..3)
        )
            .prop_map(
                |(campaign_id, accounts, score, first_detected_at, signals)| {
                    Detection::Campaign(CampaignDetection {
                        campaign_id,
                        accounts,
                        score,
                        first_detected_at,
                        signals: signals
                            .into_iter()
                            .map(|(name, detail)| Signal { name, detail })
                            .collect(),
                    })
                }
            ),
    ]
}

/// Writes `records` into memory (gzip or not) and reads them back.
fn round_trip<T: Record + Clone>(records: &[T], gzip: bool) -> Vec<T> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(if gzip { "f.jsonl.gz" } else { "f.jsonl" });
    let mut w = Writer::<T>::create(&path).unwrap();
    for r in records {
        w.write(r).unwrap();
    }
    w.finish().unwrap();
    Reader::<T>::open(&path, ReadOptions::default())
        .unwrap()
        .collect::<Result<Vec<T>, _>>()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn exchanges_round_trip(mut xs in vec(exchange(), 0..8), gzip in any::<bool>()) {
        xs.sort_by_key(|x| x.ts);
        prop_assert_eq!(round_trip(&xs, gzip), xs);
    }

    #[test]
    fn accounts_round_trip(xs in vec(account(), 0..8), gzip in any::<bool>()) {
        prop_assert_eq!(round_trip(&xs, gzip), xs);
    }

    #[test]
    fn labels_round_trip(xs in vec(label(), 0..8), gzip in any::<bool>()) {
        prop_assert_eq!(round_trip(&xs, gzip), xs);
    }

    #[test]
    fn detections_round_trip(xs in vec(detection(), 0..8), gzip in any::<bool>()) {
        prop_assert_eq!(round_trip(&xs, gzip), xs);
    }

    #[test]
    fn reader_never_panics_on_arbitrary_bytes(bytes in vec(any::<u8>(), 0..2048), skip in any::<bool>()) {
        let opts = ReadOptions { skip_bad_lines: skip, max_line_bytes: 512 };
        for item in Reader::<Exchange>::from_reader("fuzz", Cursor::new(bytes.clone()), opts).unwrap() {
            let _ = item;
        }
        for item in Reader::<Detection>::from_reader("fuzz", Cursor::new(bytes), opts).unwrap() {
            let _ = item;
        }
    }

    #[test]
    fn reader_never_panics_on_arbitrary_gzip_tail(bytes in vec(any::<u8>(), 0..512)) {
        let mut input = vec![0x1f, 0x8b];
        input.extend(bytes);
        let reader = Reader::<Exchange>::from_reader("fuzz.gz", Cursor::new(input), ReadOptions::default()).unwrap();
        for item in reader {
            let _ = item;
        }
    }

    #[test]
    fn reader_never_panics_on_mangled_valid_lines(x in exchange(), cut in 0usize..400, byte in any::<u8>()) {
        let mut line = serde_json::to_vec(&x).unwrap();
        let at = cut.min(line.len().saturating_sub(1));
        if !line.is_empty() {
            line[at] = byte;
        }
        let reader = Reader::<Exchange>::from_reader("m", Cursor::new(line), ReadOptions::default()).unwrap();
        for item in reader {
            let _ = item;
        }
    }
}

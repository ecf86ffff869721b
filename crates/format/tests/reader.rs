//! Behaviour of the reader on imperfect input: errors name the file and line, skipping counts
//! what it skipped, out-of-order input is rejected, both content shapes are accepted.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Cursor;

use moat_format::{FormatErrorKind, ReadOptions, Reader};
use moat_types::{Content, Exchange, Label};

fn line(ts: &str, account: &str) -> String {
    format!(
        r#"{{"v":1,"ts":"{ts}","account_id":"{account}","request":{{"messages":[{{"role":"user","content":"hi"}}]}}}}"#
    )
}

fn read(text: &str, opts: ReadOptions) -> Reader<Exchange> {
    Reader::from_reader("traffic.jsonl", Cursor::new(text.as_bytes().to_vec()), opts).unwrap()
}

#[test]
fn malformed_line_is_reported_with_file_and_line() {
    let text = [
        line("2026-04-01T00:00:00Z", "a"),
        "{not json".into(),
        line("2026-04-01T00:00:01Z", "b"),
    ]
    .join("\n");
    let results: Vec<_> = read(&text, ReadOptions::default()).collect();
    assert_eq!(results.len(), 2, "reading stops at the first bad line");
    let err = results[1].as_ref().unwrap_err();
    assert_eq!(err.line, Some(2));
    let msg = err.to_string();
    assert!(
        msg.starts_with("traffic.jsonl:2: malformed record"),
        "{msg}"
    );
}

#[test]
fn skip_bad_lines_counts_every_skipped_line() {
    let text = [
        line("2026-04-01T00:00:00Z", "a"),
        "{not json".into(),
        r#"{"v":2,"ts":"2026-04-01T00:00:00Z","account_id":"x","request":{"messages":[]}}"#.into(),
        r#"{"v":1,"ts":"2026-04-01T00:00:00Z","account_id":"","request":{"messages":[]}}"#.into(),
        line("2026-04-01T00:00:01Z", "b"),
    ]
    .join("\n");
    let opts = ReadOptions {
        skip_bad_lines: true,
        ..ReadOptions::default()
    };
    let mut reader = read(&text, opts);
    let ok: Vec<Exchange> = reader.by_ref().collect::<Result<_, _>>().unwrap();
    assert_eq!(ok.len(), 2);
    let skipped = reader.skipped();
    assert_eq!(skipped.count, 3);
    let lines: Vec<u64> = skipped.examples.iter().map(|(l, _)| *l).collect();
    assert_eq!(lines, vec![2, 3, 4]);
    assert!(skipped.examples[1]
        .1
        .contains("unsupported format version 2"));
}

#[test]
fn out_of_order_input_is_rejected_even_when_skipping() {
    let text = [
        line("2026-04-01T00:00:05Z", "a"),
        line("2026-04-01T00:00:01Z", "b"),
    ]
    .join("\n");
    let opts = ReadOptions {
        skip_bad_lines: true,
        ..ReadOptions::default()
    };
    let results: Vec<_> = read(&text, opts).collect();
    let err = results[1].as_ref().unwrap_err();
    assert_eq!(err.line, Some(2));
    assert!(matches!(err.kind, FormatErrorKind::OutOfOrder { .. }));
}

#[test]
fn equal_timestamps_are_in_order() {
    let text = [
        line("2026-04-01T00:00:05Z", "a"),
        line("2026-04-01T00:00:05.000Z", "b"),
    ]
    .join("\n");
    assert_eq!(read(&text, ReadOptions::default()).count(), 2);
}

#[test]
fn both_content_shapes_and_crlf_and_blank_lines() {
    let text = concat!(
        r#"{"v":1,"ts":"2026-04-01T00:00:00Z","account_id":"a","request":{"messages":[{"role":"user","content":[{"type":"text","text":"part one"},{"type":"image_url"},{"type":"text","text":"part two"}]}]}}"#,
        "\r\n\r\n",
        r#"{"v":1,"ts":"2026-04-01T00:00:00Z","account_id":"a","request":{"endpoint":"/v1/completions","messages":[],"prompt":"Once upon"},"response":null,"unknown_future_field":1}"#,
        "\r\n"
    );
    let xs: Vec<Exchange> = read(text, ReadOptions::default())
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(xs.len(), 2);
    assert!(matches!(
        xs[0].request.messages[0].content,
        Some(Content::Parts(_))
    ));
    assert_eq!(xs[0].last_user_text(), "part one\npart two");
    assert_eq!(xs[1].last_user_text(), "Once upon");
}

#[test]
fn chat_request_without_messages_or_prompt_is_invalid() {
    let text = r#"{"v":1,"ts":"2026-04-01T00:00:00Z","account_id":"a","request":{"messages":[]}}"#;
    let err = read(text, ReadOptions::default())
        .next()
        .unwrap()
        .unwrap_err();
    assert!(err.to_string().contains("request.messages"), "{err}");
}

#[test]
fn over_long_line_is_an_error_and_reading_resumes_after_it_when_skipping() {
    let long = format!(
        r#"{{"v":1,"ts":"2026-04-01T00:00:00Z","account_id":"{}","request":{{"messages":[]}}}}"#,
        "x".repeat(10_000)
    );
    let text = [long, line("2026-04-01T00:00:01Z", "b")].join("\n");
    let opts = ReadOptions {
        skip_bad_lines: true,
        max_line_bytes: 1_000,
    };
    let mut reader = read(&text, opts);
    let ok: Vec<Exchange> = reader.by_ref().collect::<Result<_, _>>().unwrap();
    assert_eq!(ok.len(), 1);
    assert_eq!(ok[0].account_id, "b");
    assert_eq!(reader.skipped().count, 1);
    assert!(reader.skipped().examples[0].1.contains("longer than 1000"));
}

#[test]
fn truncated_gzip_is_an_io_error_naming_the_file() {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    for i in 0..200 {
        writeln!(
            enc,
            "{}",
            line(&format!("2026-04-01T00:00:{:02}Z", i / 10), "a")
        )
        .unwrap();
    }
    let mut bytes = enc.finish().unwrap();
    bytes.truncate(bytes.len() / 2);
    let results: Vec<_> = Reader::<Exchange>::from_reader(
        "traffic.jsonl.gz",
        Cursor::new(bytes),
        ReadOptions::default(),
    )
    .unwrap()
    .collect();
    assert!(results.len() > 1, "the intact prefix is read");
    let err = results.last().unwrap().as_ref().unwrap_err();
    assert!(matches!(err.kind, FormatErrorKind::Io(_)), "{err}");
    assert!(err.to_string().starts_with("traffic.jsonl.gz:"), "{err}");
}

#[test]
fn missing_file_error_names_the_path() {
    let err = Reader::<Exchange>::open(
        std::path::Path::new("/nonexistent/traffic.jsonl"),
        ReadOptions::default(),
    )
    .err()
    .unwrap();
    assert!(err.to_string().contains("/nonexistent/traffic.jsonl"));
}

#[test]
fn label_with_unknown_class_is_rejected_by_name() {
    let text = r#"{"account_id":"a","class":"hacker","campaign":null,"tactic":null}"#;
    let err = Reader::<Label>::from_reader(
        "labels.jsonl",
        Cursor::new(text.as_bytes().to_vec()),
        ReadOptions::default(),
    )
    .unwrap()
    .next()
    .unwrap()
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with("labels.jsonl:1:") && msg.contains("hacker"),
        "{msg}"
    );
}

//! [`ExchangeView`] accepts exactly the lines [`Exchange`] accepts (parsed and validated), and
//! holds the same values.

use moat_types::{Exchange, ExchangeView, Record};
use proptest::prelude::*;

/// The owned reading of a line: parsed and validated, or not.
fn owned(line: &str) -> Option<Exchange> {
    let x: Exchange = serde_json::from_str(line).ok()?;
    x.validate().ok()?;
    Some(x)
}

fn agree(line: &str) {
    let view = ExchangeView::parse(line);
    let exchange = owned(line);
    assert_eq!(
        view.as_ref().map(ExchangeView::to_exchange),
        exchange,
        "line: {line}"
    );
    if let (Some(v), Some(x)) = (&view, &exchange) {
        assert_eq!(v.last_user_text(), x.last_user_text());
        for (m, n) in v.request.messages.iter().zip(&x.request.messages) {
            assert_eq!(m.text_content(), n.text_content());
        }
    }
}

const FULL: &str = r#"{"v":1,"ts":"2026-03-02T00:00:00.604Z","request_id":"req_1","account_id":"acct_1","api_key_id":"key_1","client":{"ip":"159.65.138.153","asn":14061,"country":"US","user_agent":"OpenAI/JS 4.81.0","tls_ja4":"t13d1711h1_ce8bad7d3ae6_6d8bb8d7b3f2"},"request":{"endpoint":"/v1/chat/completions","model":"frontier-1","messages":[{"role":"system","content":"You are a travel planning assistant."},{"role":"user","content":"Write a title:\nGive me \"20\" top fears \u00e9 \ud83d\ude00."}],"params":{"temperature":0.7,"max_tokens":1024,"reasoning_effort":"low","stream":false,"max_completion_tokens":9000,"reasoning":{"effort":"high"}}},"response":{"status":200,"prompt_tokens":91,"completion_tokens":28,"reasoning_tokens":89,"finish_reason":"stop","latency_ms":1546,"content":"ok","reasoning":"hm"}}"#;

#[test]
fn valid_lines_read_the_same() {
    agree(FULL);
    // Minimal, completion prompt, parts, null content, unknown fields.
    agree(
        r#"{"v":1,"ts":"2026-03-02T00:00:00Z","account_id":"a","request":{"messages":[{"role":"user","content":"hi"}]}}"#,
    );
    agree(
        r#"{"v":1,"ts":"2026-03-02T00:00:00Z","account_id":"a","request":{"messages":[],"prompt":"complete\tthis"}}"#,
    );
    agree(
        r#"{"v":1,"ts":"2026-03-02T00:00:00Z","account_id":"a","x":[1,{"y":null}],"request":{"messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"image_url"},{"type":"text","text":"b\nc"}]},{"role":"assistant","content":null},{"role":"user"}],"extra":true},"response":null,"client":null}"#,
    );
    agree(
        r#"{"v":1,"ts":"2026-03-02T00:00:00Z","account_id":"a\"b","request":{"messages":[{"role":"us\u0065r","content":"x"}],"params":null}}"#,
    );
}

#[test]
fn broken_lines_are_refused_by_both() {
    for line in [
        "",
        "{}",
        "[]",
        "not json",
        r#"{"v":2,"ts":"2026-03-02T00:00:00Z","account_id":"a","request":{"messages":[{"role":"user","content":"hi"}]}}"#,
        r#"{"v":1,"ts":"2026-03-02T00:00:00Z","account_id":"","request":{"messages":[{"role":"user","content":"hi"}]}}"#,
        r#"{"v":1,"ts":"2026-03-02T00:00:00Z","account_id":"a","request":{"messages":[]}}"#,
        r#"{"v":1,"ts":"2026-03-02T00:00:00Z","account_id":"a","request":{}}"#,
        r#"{"v":1,"ts":"yesterday","account_id":"a","request":{"messages":[{"role":"user","content":"hi"}]}}"#,
        r#"{"v":1,"ts":"2026-03-02T00:00:00Z","account_id":7,"request":{"messages":[{"role":"user","content":"hi"}]}}"#,
        r#"{"v":1,"ts":"2026-03-02T00:00:00Z","account_id":"a","account_id":"b","request":{"messages":[{"role":"user","content":"hi"}]}}"#,
        r#"{"v":1,"ts":"2026-03-02T00:00:00Z","account_id":"a","request":{"messages":[{"role":"user","content":3}]}}"#,
        r#"{"v":1,"ts":"2026-03-02T00:00:00Z","account_id":"a","request":{"messages":[{"content":"hi"}]}}"#,
        r#"{"v":1,"ts":"2026-03-02T00:00:00Z","account_id":"a","request":{"messages":[{"role":"user","content":"hi"}]},"response":{"status":700}}"#,
        r#"{"v":1,"ts":"2026-03-02T00:00:00Z","account_id":"a","request":{"messages":[{"role":"user","content":"hi"}]},"response":{"status":70000}}"#,
        r#"{"v":1,"ts":"2026-03-02T00:00:00Z","account_id":"a","client":{"asn":-1},"request":{"messages":[{"role":"user","content":"hi"}]}}"#,
        r#"{"v":1,"ts":"2026-03-02T00:00:00Z","account_id":"a","request":{"messages":[{"role":"user","content":"hi"}],"params":{"max_tokens":"many"}}}"#,
        r#"{"v":1,"ts":"2026-03-02T00:00:00Z","account_id":"a","request":{"messages":[{"role":"user","content":"\ud800"}]}}"#,
        r#"{"v":1,"ts":"2026-03-02T00:00:00Z","account_id":"a","request":{"messages":[{"role":"user","content":"hi"}]}} trailing"#,
    ] {
        agree(line);
        assert!(ExchangeView::parse(line).is_none(), "accepted: {line}");
    }
}

proptest! {
    /// Any line cut from a valid record, or with one byte changed, reads the same both ways.
    #[test]
    fn damaged_lines_read_the_same(cut in 0..FULL.len(), at in 0..FULL.len(), byte in 0x20u8..0x7f) {
        if let Some(prefix) = FULL.get(..cut) {
            agree(prefix);
        }
        let mut bytes = FULL.as_bytes().to_vec();
        bytes[at] = byte;
        if let Ok(line) = std::str::from_utf8(&bytes) {
            agree(line);
        }
    }
}

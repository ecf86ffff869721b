//! Whole responses: withhold (and summarize) then restore gives back exactly what upstream
//! produced, in every dialect and chat variant; bad tokens are refused.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use moat_dialect::{
    inspect_response, parse_request, restore_request, withhold_response, DialectError, Endpoint,
    Mode, Sealer, TokenFault,
};
use serde_json::{json, Value};

fn sealer() -> Sealer {
    Sealer::new([42u8; 32])
}

const ACCT: &str = "acct_5821";

fn chat_response(message: Value) -> Value {
    json!({"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "frontier-1",
           "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
           "usage": {"prompt_tokens": 20, "completion_tokens": 90,
                     "completion_tokens_details": {"reasoning_tokens": 70}}})
}

fn chat_variants() -> Vec<Value> {
    vec![
        json!({"role": "assistant", "content": "It is 42.",
               "reasoning_content": "SECRET: the user wants the answer; compute 6*7."}),
        json!({"role": "assistant", "content": "It is 42.", "reasoning": "SECRET: 6*7=42."}),
        json!({"role": "assistant", "content": "It is 42.", "reasoning": "SECRET: 6*7=42.",
               "reasoning_details": [
                   {"type": "reasoning.text", "text": "SECRET: 6*7=42.", "signature": "c2lnbmF0dXJl",
                    "format": "anthropic-claude-v1", "index": 0},
                   {"type": "reasoning.encrypted", "data": "b3BhcXVl", "format": "openai-responses-v1"}]}),
        json!({"role": "assistant", "content": "\n<think>\nSECRET: 6*7 is 42.\n</think>\n\nIt is 42."}),
    ]
}

/// The next request of a conversation that echoes `assistant` back.
fn chat_follow_up(assistant: &Value) -> Value {
    json!({"model": "frontier-1", "messages": [
        {"role": "user", "content": "What is 6*7?"},
        assistant,
        {"role": "user", "content": "And 7*8?"}]})
}

#[test]
fn chat_withhold_then_restore_gives_back_the_original_message() {
    for message in chat_variants() {
        let original = chat_response(message.clone());
        let mut sent = original.clone();
        let report = withhold_response(
            Endpoint::ChatCompletions,
            ACCT,
            &mut sent,
            &sealer(),
            &Mode::Withhold,
        )
        .unwrap();
        assert_eq!(report.withheld, 1, "{message}");
        let text = sent.to_string();
        assert!(!text.contains("SECRET"), "reasoning leaked: {text}");
        assert!(text.contains("moatr1."));
        // What the client sees as the answer is unchanged.
        let seen = inspect_response(Endpoint::ChatCompletions, &sent);
        assert_eq!(seen.content.trim_start(), "It is 42.", "{message}");

        let mut next = chat_follow_up(&sent["choices"][0]["message"]);
        let r = restore_request(Endpoint::ChatCompletions, ACCT, &mut next, &sealer()).unwrap();
        assert_eq!(r.restored, 1);
        assert_eq!(next["messages"][1], message, "restored turn differs");
    }
}

#[test]
fn chat_summarize_shows_the_summary_in_the_original_field_and_restores() {
    for message in chat_variants() {
        let mut sent = chat_response(message.clone());
        let report = withhold_response(
            Endpoint::ChatCompletions,
            ACCT,
            &mut sent,
            &sealer(),
            &Mode::Summarize("Multiplied the numbers.".into()),
        )
        .unwrap();
        assert!(report.summarized);
        let m = &sent["choices"][0]["message"];
        assert!(!sent.to_string().contains("SECRET"));
        if message.get("reasoning_content").is_some() {
            assert_eq!(m["reasoning_content"], "Multiplied the numbers.");
        } else if message.get("reasoning").is_some() {
            assert_eq!(m["reasoning"], "Multiplied the numbers.");
        } else {
            assert!(m["content"]
                .as_str()
                .unwrap()
                .contains("Multiplied the numbers."));
        }
        let mut next = chat_follow_up(m);
        restore_request(Endpoint::ChatCompletions, ACCT, &mut next, &sealer()).unwrap();
        assert_eq!(next["messages"][1], message);
    }
}

#[test]
fn chat_content_as_parts_still_restores_inline_marker() {
    let message = json!({"role": "assistant", "content": "<think>SECRET plan</think>Done."});
    let mut sent = chat_response(message);
    withhold_response(
        Endpoint::ChatCompletions,
        ACCT,
        &mut sent,
        &sealer(),
        &Mode::Withhold,
    )
    .unwrap();
    let text = sent["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut next =
        chat_follow_up(&json!({"role": "assistant", "content": [{"type": "text", "text": text}]}));
    restore_request(Endpoint::ChatCompletions, ACCT, &mut next, &sealer()).unwrap();
    assert_eq!(
        next["messages"][1]["content"][0]["text"],
        "<think>SECRET plan</think>Done."
    );
}

fn anthropic_response() -> Value {
    json!({"id": "msg_01", "type": "message", "role": "assistant", "model": "claude-x",
           "content": [
               {"type": "thinking", "thinking": "SECRET: consider the primes.",
                "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds="},
               {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4a"},
               {"type": "text", "text": "There are infinitely many."}],
           "stop_reason": "end_turn", "usage": {"input_tokens": 30, "output_tokens": 120}})
}

fn anthropic_follow_up(content: &Value) -> Value {
    json!({"model": "claude-x", "max_tokens": 1000, "messages": [
        {"role": "user", "content": "Are there infinitely many primes?"},
        {"role": "assistant", "content": content},
        {"role": "user", "content": "Why?"}]})
}

#[test]
fn anthropic_withhold_then_restore_keeps_signatures() {
    for mode in [Mode::Withhold, Mode::Summarize("Used Euclid.".into())] {
        let original = anthropic_response();
        let mut sent = original.clone();
        let report =
            withhold_response(Endpoint::Messages, ACCT, &mut sent, &sealer(), &mode).unwrap();
        assert_eq!(report.withheld, 1);
        assert!(!sent.to_string().contains("SECRET"));
        let block = &sent["content"][0];
        match &mode {
            Mode::Summarize(s) => {
                assert_eq!(block["type"], "thinking");
                assert_eq!(block["thinking"], s.as_str());
                assert!(block["signature"].as_str().unwrap().starts_with("moatr1."));
            }
            _ => {
                assert_eq!(block["type"], "redacted_thinking");
                assert!(block["data"].as_str().unwrap().starts_with("moatr1."));
            }
        }
        // Upstream's own redacted block passes untouched.
        assert_eq!(sent["content"][1], original["content"][1]);
        let mut next = anthropic_follow_up(&sent["content"]);
        let r = restore_request(Endpoint::Messages, ACCT, &mut next, &sealer()).unwrap();
        assert_eq!(r.restored, 1);
        assert_eq!(next["messages"][1]["content"], original["content"]);
    }
}

fn responses_response() -> Value {
    json!({"id": "resp_1", "object": "response", "status": "completed", "model": "o-x",
           "output": [
               {"type": "reasoning", "id": "rs_1",
                "summary": [{"type": "summary_text", "text": "SECRET summary."}],
                "content": [{"type": "reasoning_text", "text": "SECRET full chain."}],
                "encrypted_content": "gAAAAupstream"},
               {"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
                "content": [{"type": "output_text", "text": "Answer.", "annotations": []}]}],
           "usage": {"input_tokens": 10, "output_tokens": 50,
                     "output_tokens_details": {"reasoning_tokens": 40}}})
}

#[test]
fn responses_withhold_then_restore_gives_back_the_item() {
    for mode in [Mode::Withhold, Mode::Summarize("Short.".into())] {
        let original = responses_response();
        let mut sent = original.clone();
        withhold_response(Endpoint::Responses, ACCT, &mut sent, &sealer(), &mode).unwrap();
        assert!(!sent.to_string().contains("SECRET"));
        let item = &sent["output"][0];
        assert_eq!(item["id"], "rs_1");
        assert!(item.get("content").is_none());
        let expected_summary = match &mode {
            Mode::Summarize(s) => json!([{"type": "summary_text", "text": s}]),
            _ => json!([]),
        };
        assert_eq!(item["summary"], expected_summary);
        let mut next = json!({"model": "o-x", "input": [
            {"role": "user", "content": "Q"}, item, sent["output"][1], {"role": "user", "content": "Q2"}]});
        let r = restore_request(Endpoint::Responses, ACCT, &mut next, &sealer()).unwrap();
        assert_eq!(r.restored, 1);
        assert_eq!(next["input"][1], original["output"][0]);
    }
}

#[test]
fn completions_inline_reasoning_restores_in_prompt() {
    let original = json!({"id": "cmpl-1", "object": "text_completion",
        "choices": [{"index": 0, "text": "<think>SECRET idea</think> The end.", "finish_reason": "stop"}]});
    let mut sent = original.clone();
    withhold_response(
        Endpoint::Completions,
        ACCT,
        &mut sent,
        &sealer(),
        &Mode::Withhold,
    )
    .unwrap();
    let text = sent["choices"][0]["text"].as_str().unwrap();
    assert!(!text.contains("SECRET") && text.ends_with(" The end."));
    let mut next = json!({"model": "m", "prompt": format!("Q: go\nA: {text}\nQ: again\nA:")});
    restore_request(Endpoint::Completions, ACCT, &mut next, &sealer()).unwrap();
    assert_eq!(
        next["prompt"],
        "Q: go\nA: <think>SECRET idea</think> The end.\nQ: again\nA:"
    );
}

/// A withheld Anthropic response and the follow-up request carrying its token.
fn anthropic_request_with_token() -> (Value, String) {
    let mut sent = anthropic_response();
    withhold_response(
        Endpoint::Messages,
        ACCT,
        &mut sent,
        &sealer(),
        &Mode::Withhold,
    )
    .unwrap();
    let token = sent["content"][0]["data"].as_str().unwrap().to_owned();
    (anthropic_follow_up(&sent["content"]), token)
}

fn with_token(mut req: Value, token: &str) -> Value {
    req["messages"][1]["content"][0]["data"] = json!(token);
    req
}

#[test]
fn tampered_token_is_refused_with_its_place() {
    let (req, token) = anthropic_request_with_token();
    let mut flipped = token.into_bytes();
    let i = flipped.len() / 2;
    flipped[i] = if flipped[i] == b'A' { b'B' } else { b'A' };
    let mut body = with_token(req, &String::from_utf8(flipped).unwrap());
    let err = restore_request(Endpoint::Messages, ACCT, &mut body, &sealer()).unwrap_err();
    assert_eq!(
        err,
        DialectError::TamperedToken {
            at: "messages[1].content[0].data".into(),
            fault: TokenFault::Authentication
        }
    );
    assert!(err.is_client_error());
}

#[test]
fn token_from_another_account_is_refused() {
    let (mut body, _) = anthropic_request_with_token();
    let err = restore_request(Endpoint::Messages, "acct_other", &mut body, &sealer()).unwrap_err();
    assert!(matches!(
        err,
        DialectError::TamperedToken {
            fault: TokenFault::Authentication,
            ..
        }
    ));
}

#[test]
fn truncated_token_is_refused() {
    let (req, token) = anthropic_request_with_token();
    for cut in [token.len() - 1, token.len() / 2, "moatr1.".len() + 3] {
        let mut body = with_token(req.clone(), &token[..cut]);
        assert!(
            restore_request(Endpoint::Messages, ACCT, &mut body, &sealer()).is_err(),
            "cut at {cut}"
        );
    }
}

#[test]
fn token_moved_to_another_dialect_place_is_refused() {
    let (_, token) = anthropic_request_with_token();
    let mut body = chat_follow_up(
        &json!({"role": "assistant", "content": "x", "reasoning_details": [
        {"type": "reasoning.encrypted", "data": token, "format": "moat-v1"}]}),
    );
    let err = restore_request(Endpoint::ChatCompletions, ACCT, &mut body, &sealer()).unwrap_err();
    assert!(matches!(
        err,
        DialectError::TamperedToken {
            fault: TokenFault::Payload,
            ..
        }
    ));
}

#[test]
fn requests_without_tokens_are_untouched() {
    let bodies = [
        (
            Endpoint::ChatCompletions,
            chat_follow_up(&json!({"role": "assistant", "content": "<think>x</think>y",
                                                          "reasoning_content": "plain"})),
        ),
        (
            Endpoint::Messages,
            anthropic_follow_up(&anthropic_response()["content"]),
        ),
        (
            Endpoint::Responses,
            json!({"input": [responses_response()["output"][0]]}),
        ),
        (
            Endpoint::Completions,
            json!({"prompt": "<think>[moat:withheld notatoken]</think>"}),
        ),
    ];
    for (endpoint, body) in bodies {
        let mut copy = body.clone();
        let r = restore_request(endpoint, ACCT, &mut copy, &sealer()).unwrap();
        assert_eq!(r.restored, 0);
        assert_eq!(copy, body);
    }
}

#[test]
fn pass_mode_changes_nothing() {
    let original = anthropic_response();
    let mut body = original.clone();
    let r = withhold_response(Endpoint::Messages, ACCT, &mut body, &sealer(), &Mode::Pass).unwrap();
    assert_eq!(r.withheld, 0);
    assert_eq!(body, original);
}

#[test]
fn record_from_request_and_response() {
    let req = chat_follow_up(&json!({"role": "assistant", "content": "It is 42."}));
    let facts = parse_request(Endpoint::ChatCompletions, &req).unwrap();
    let resp = inspect_response(
        Endpoint::ChatCompletions,
        &chat_response(chat_variants()[0].clone()),
    );
    let record = moat_types::Exchange {
        v: 1,
        ts: "2026-04-01T12:00:00.123Z".parse().unwrap(),
        request_id: None,
        account_id: ACCT.into(),
        api_key_id: None,
        client: None,
        request: facts.request,
        response: Some(resp.to_response(Some(200), Some(1200))),
    };
    use moat_types::Record as _;
    record.validate().unwrap();
    let line = serde_json::to_value(&record).unwrap();
    assert_eq!(line["request"]["messages"][1]["content"], "It is 42.");
    assert_eq!(line["response"]["reasoning_tokens"], 70);
    assert_eq!(line["response"]["content"], "It is 42.");
    assert!(line["response"]["reasoning"]
        .as_str()
        .unwrap()
        .starts_with("SECRET"));
}

//! Streams of every dialect: fed split at every byte boundary, pass mode is byte-identical,
//! withhold mode never leaks reasoning and its tokens restore the original, the record facts
//! are right, and `finish_early` ends each dialect cleanly.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use moat_dialect::{
    restore_request, EarlyStop, Endpoint, ReasoningDisposition, ResponseFacts, Sealer, SseParser,
    StreamFilter, StreamMode,
};
use proptest::prelude::*;
use serde_json::{json, Value};

const ACCT: &str = "acct_1";

fn sealer() -> Sealer {
    Sealer::new([9u8; 32])
}

fn sse(events: &[(Option<&str>, Value)]) -> String {
    let mut s = String::new();
    for (name, data) in events {
        if let Some(n) = name {
            s.push_str(&format!("event: {n}\n"));
        }
        s.push_str(&format!("data: {data}\n\n"));
    }
    s
}

/// Runs `input` through a parser and a filter, cut into the given pieces.
fn run(
    endpoint: Endpoint,
    mode: StreamMode,
    input: &[u8],
    cuts: &[usize],
) -> (Vec<u8>, ResponseFacts) {
    let mut parser = SseParser::default();
    let mut filter = StreamFilter::new(endpoint, mode, sealer(), ACCT);
    let mut out = Vec::new();
    let mut last = 0;
    for &c in cuts.iter().chain([&input.len()]) {
        parser.feed(&input[last..c]);
        last = c;
        while let Some(ev) = parser.next_event().unwrap() {
            out.extend_from_slice(&filter.push(ev).unwrap());
        }
    }
    if let Some(ev) = parser.finish() {
        out.extend_from_slice(&filter.push(ev).unwrap());
    }
    out.extend_from_slice(&filter.finish().unwrap());
    (out, filter.facts())
}

/// Downstream output as (event name, data) pairs, each data parsed as JSON where it is.
fn events(out: &[u8]) -> Vec<(Option<String>, Value)> {
    let mut p = SseParser::default();
    p.feed(out);
    let mut v = Vec::new();
    while let Some(e) = p.next_event().unwrap() {
        if let Some(d) = e.data {
            let data = serde_json::from_str(&d).unwrap_or(Value::String(d));
            v.push((e.event, data));
        }
    }
    assert_eq!(p.buffered(), 0, "output ends mid-event");
    v
}

fn chunk(delta: Value, finish: Value) -> (Option<&'static str>, Value) {
    (
        None,
        json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
                  "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}),
    )
}

fn chat_stream(reasoning: &[Value]) -> String {
    let mut ev = vec![chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    )];
    for r in reasoning {
        ev.push(chunk(r.clone(), Value::Null));
    }
    ev.push(chunk(json!({"content": "The answer"}), Value::Null));
    ev.push(chunk(json!({"content": " is 42."}), Value::Null));
    ev.push(chunk(json!({}), json!("stop")));
    ev.push((
        None,
        json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
                          "choices": [], "usage": {"prompt_tokens": 11, "completion_tokens": 33,
                          "completion_tokens_details": {"reasoning_tokens": 20}}}),
    ));
    let mut s = sse(&ev);
    s.push_str("data: [DONE]\n\n");
    s
}

fn chat_streams() -> Vec<(String, Value)> {
    vec![
        (
            chat_stream(&[
                json!({"reasoning_content": "SECRET one, "}),
                json!({"reasoning_content": "SECRET two."}),
            ]),
            json!({"reasoning_content": "SECRET one, SECRET two."}),
        ),
        (
            chat_stream(&[
                json!({"reasoning": "SECRET one, ", "content": null}),
                json!({"reasoning": "SECRET two."}),
            ]),
            json!({"reasoning": "SECRET one, SECRET two."}),
        ),
        (
            chat_stream(&[
                json!({"reasoning": "SECRET one, ", "reasoning_details": [{"type": "reasoning.text", "text": "SECRET one, ", "index": 0, "format": "f"}]}),
                json!({"reasoning": "SECRET two.", "reasoning_details": [{"type": "reasoning.text", "text": "SECRET two.", "index": 0, "format": "f"}]}),
                json!({"reasoning_details": [{"type": "reasoning.text", "signature": "sig==", "index": 0, "format": "f"}]}),
            ]),
            json!({"reasoning": "SECRET one, SECRET two.", "reasoning_details": [
                {"type": "reasoning.text", "text": "SECRET one, SECRET two.", "index": 0, "format": "f", "signature": "sig=="}]}),
        ),
    ]
}

fn check_chat_withheld(out: &[u8], original_fields: &Value) {
    let text = String::from_utf8_lossy(out);
    assert!(!text.contains("SECRET"), "reasoning leaked: {text}");
    let ev = events(out);
    assert_eq!(ev.last().unwrap().1, json!("[DONE]"));
    // The answer arrives whole and after the token chunk.
    let mut answer = String::new();
    let mut message = json!({"role": "assistant"});
    for (_, data) in &ev {
        let Some(delta) = data.pointer("/choices/0/delta") else {
            continue;
        };
        if let Some(details) = delta.get("reasoning_details") {
            assert!(answer.is_empty(), "token after the answer");
            message["reasoning_details"] = details.clone();
        }
        if let Some(c) = delta.get("content").and_then(Value::as_str) {
            answer.push_str(c);
        }
    }
    assert_eq!(answer, "The answer is 42.");
    message["content"] = json!(answer);
    let mut next = json!({"messages": [{"role": "user", "content": "q"}, message]});
    let r = restore_request(Endpoint::ChatCompletions, ACCT, &mut next, &sealer()).unwrap();
    assert_eq!(r.restored, 1);
    let mut expected = original_fields.clone();
    expected["role"] = json!("assistant");
    expected["content"] = json!("The answer is 42.");
    assert_eq!(next["messages"][1], expected);
}

#[test]
fn chat_streams_split_at_every_byte() {
    for (input, fields) in chat_streams() {
        let bytes = input.as_bytes();
        for cut in 0..=bytes.len() {
            let (out, facts) = run(Endpoint::ChatCompletions, StreamMode::Pass, bytes, &[cut]);
            assert_eq!(out, bytes, "pass mode changed the stream (cut {cut})");
            assert_eq!(facts.reasoning, "SECRET one, SECRET two.");
            assert_eq!(facts.disposition, ReasoningDisposition::Returned);

            let (out, facts) = run(
                Endpoint::ChatCompletions,
                StreamMode::Withhold,
                bytes,
                &[cut],
            );
            check_chat_withheld(&out, &fields);
            assert_eq!(facts.content, "The answer is 42.");
            assert_eq!(facts.reasoning, "SECRET one, SECRET two.");
            assert_eq!(facts.disposition, ReasoningDisposition::Withheld);
            assert_eq!(facts.finish_reason.as_deref(), Some("stop"));
            assert_eq!(
                (
                    facts.prompt_tokens,
                    facts.completion_tokens,
                    facts.reasoning_tokens
                ),
                (Some(11), Some(33), Some(20))
            );
        }
    }
}

fn inline_stream() -> String {
    let mut ev = vec![chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    )];
    for piece in [
        "\n<thi",
        "nk>SECRET st",
        "ep one</th",
        "ink>",
        "\n\nThe answer",
        " is 42.",
    ] {
        ev.push(chunk(json!({"content": piece}), Value::Null));
    }
    ev.push(chunk(json!({}), json!("stop")));
    let mut s = sse(&ev);
    s.push_str("data: [DONE]\n\n");
    s
}

#[test]
fn chat_inline_think_split_at_every_byte() {
    let input = inline_stream();
    let bytes = input.as_bytes();
    for cut in 0..=bytes.len() {
        let (out, facts) = run(
            Endpoint::ChatCompletions,
            StreamMode::Withhold,
            bytes,
            &[cut],
        );
        let text = String::from_utf8_lossy(&out);
        assert!(!text.contains("SECRET"), "leak: {text}");
        let content: String = events(&out)
            .iter()
            .filter_map(|(_, d)| {
                d.pointer("/choices/0/delta/content")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .collect();
        assert!(
            content.starts_with("\n<think>[moat:withheld moatr1."),
            "{content}"
        );
        assert!(
            content.ends_with("</think>\n\nThe answer is 42."),
            "{content}"
        );
        let mut next = json!({"messages": [{"role": "assistant", "content": content}]});
        restore_request(Endpoint::ChatCompletions, ACCT, &mut next, &sealer()).unwrap();
        assert_eq!(
            next["messages"][0]["content"],
            "\n<think>SECRET step one</think>\n\nThe answer is 42."
        );
        assert_eq!(facts.reasoning, "SECRET step one");
        assert_eq!(facts.content, "\n\n\nThe answer is 42.");
    }
}

#[test]
fn completions_inline_stream() {
    let mut ev = Vec::new();
    for piece in ["<think>SECRET", " idea</think>", " Done."] {
        ev.push((
            None,
            json!({"id": "x", "object": "text_completion", "choices": [
            {"index": 0, "text": piece, "logprobs": null, "finish_reason": null}]}),
        ));
    }
    ev.push((
        None,
        json!({"id": "x", "object": "text_completion", "choices": [
        {"index": 0, "text": "", "logprobs": null, "finish_reason": "length"}]}),
    ));
    let mut input = sse(&ev);
    input.push_str("data: [DONE]\n\n");
    let (out, facts) = run(
        Endpoint::Completions,
        StreamMode::Withhold,
        input.as_bytes(),
        &[],
    );
    let text: String = events(&out)
        .iter()
        .filter_map(|(_, d)| {
            d.pointer("/choices/0/text")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .collect();
    assert!(
        !text.contains("SECRET") && text.ends_with("</think> Done."),
        "{text}"
    );
    assert_eq!(
        (facts.content.as_str(), facts.reasoning.as_str()),
        (" Done.", "SECRET idea")
    );
    assert_eq!(facts.finish_reason.as_deref(), Some("length"));
}

fn anthropic_stream() -> (String, Value) {
    let block = json!({"type": "thinking", "thinking": "SECRET first. SECRET second.",
                       "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds="});
    let ev = vec![
        (
            Some("message_start"),
            json!({"type": "message_start", "message": {"id": "msg_1", "type": "message",
            "role": "assistant", "content": [], "model": "claude", "stop_reason": null,
            "usage": {"input_tokens": 25, "output_tokens": 1}}}),
        ),
        (
            Some("content_block_start"),
            json!({"type": "content_block_start", "index": 0,
            "content_block": {"type": "thinking", "thinking": "", "signature": ""}}),
        ),
        (Some("ping"), json!({"type": "ping"})),
        (
            Some("content_block_delta"),
            json!({"type": "content_block_delta", "index": 0,
            "delta": {"type": "thinking_delta", "thinking": "SECRET first. "}}),
        ),
        (
            Some("content_block_delta"),
            json!({"type": "content_block_delta", "index": 0,
            "delta": {"type": "thinking_delta", "thinking": "SECRET second."}}),
        ),
        (
            Some("content_block_delta"),
            json!({"type": "content_block_delta", "index": 0,
            "delta": {"type": "signature_delta", "signature": block["signature"]}}),
        ),
        (
            Some("content_block_stop"),
            json!({"type": "content_block_stop", "index": 0}),
        ),
        (
            Some("content_block_start"),
            json!({"type": "content_block_start", "index": 1,
            "content_block": {"type": "text", "text": ""}}),
        ),
        (
            Some("content_block_delta"),
            json!({"type": "content_block_delta", "index": 1,
            "delta": {"type": "text_delta", "text": "Hello"}}),
        ),
        (
            Some("content_block_delta"),
            json!({"type": "content_block_delta", "index": 1,
            "delta": {"type": "text_delta", "text": " world"}}),
        ),
        (
            Some("content_block_stop"),
            json!({"type": "content_block_stop", "index": 1}),
        ),
        (
            Some("message_delta"),
            json!({"type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": 50}}),
        ),
        (Some("message_stop"), json!({"type": "message_stop"})),
    ];
    (sse(&ev).replace('\n', "\r\n"), block)
}

/// Rebuilds the content blocks a client would assemble from a Messages stream.
fn anthropic_blocks(ev: &[(Option<String>, Value)]) -> Vec<Value> {
    let mut blocks: Vec<Value> = Vec::new();
    for (_, d) in ev {
        match d["type"].as_str() {
            Some("content_block_start") => {
                assert_eq!(
                    d["index"].as_u64(),
                    Some(blocks.len() as u64),
                    "block indices not contiguous"
                );
                blocks.push(d["content_block"].clone());
            }
            Some("content_block_delta") => {
                let b = &mut blocks[d["index"].as_u64().unwrap() as usize];
                let (key, piece) = match d["delta"]["type"].as_str().unwrap() {
                    "text_delta" => ("text", &d["delta"]["text"]),
                    "thinking_delta" => ("thinking", &d["delta"]["thinking"]),
                    "signature_delta" => ("signature", &d["delta"]["signature"]),
                    _ => continue,
                };
                let acc = format!(
                    "{}{}",
                    b[key].as_str().unwrap_or(""),
                    piece.as_str().unwrap()
                );
                b[key] = json!(acc);
            }
            _ => {}
        }
    }
    blocks
}

#[test]
fn anthropic_stream_split_at_every_byte() {
    let (input, block) = anthropic_stream();
    let bytes = input.as_bytes();
    for cut in 0..=bytes.len() {
        let (out, facts) = run(Endpoint::Messages, StreamMode::Pass, bytes, &[cut]);
        assert_eq!(out, bytes);
        assert_eq!(facts.reasoning, "SECRET first. SECRET second.");

        let (out, facts) = run(Endpoint::Messages, StreamMode::Withhold, bytes, &[cut]);
        assert!(!String::from_utf8_lossy(&out).contains("SECRET"));
        let ev = events(&out);
        let blocks = anthropic_blocks(&ev);
        assert_eq!(blocks[0]["type"], "redacted_thinking");
        assert_eq!(blocks[1], json!({"type": "text", "text": "Hello world"}));
        assert_eq!(ev.last().unwrap().1["type"], "message_stop");
        let mut next = json!({"messages": [{"role": "assistant", "content": blocks}]});
        restore_request(Endpoint::Messages, ACCT, &mut next, &sealer()).unwrap();
        assert_eq!(next["messages"][0]["content"][0], block);
        assert_eq!(facts.content, "Hello world");
        assert_eq!(facts.reasoning, "SECRET first. SECRET second.");
        assert_eq!(
            (facts.prompt_tokens, facts.completion_tokens),
            (Some(25), Some(50))
        );
        assert_eq!(facts.finish_reason.as_deref(), Some("stop"));
    }
}

#[test]
fn anthropic_summarize_holds_output_until_the_summary() {
    let (input, block) = anthropic_stream();
    let mut parser = SseParser::default();
    parser.feed(input.as_bytes());
    let mut filter = StreamFilter::new(Endpoint::Messages, StreamMode::Summarize, sealer(), ACCT);
    let mut out = Vec::new();
    let mut supplied = false;
    while let Some(ev) = parser.next_event().unwrap() {
        out.extend_from_slice(&filter.push(ev).unwrap());
        if let Some(reasoning) = filter.pending_summary() {
            assert_eq!(reasoning, "SECRET first. SECRET second.");
            assert!(!String::from_utf8_lossy(&out).contains("content_block_start"));
            out.extend_from_slice(&filter.supply_summary("Greets the world.").unwrap());
            supplied = true;
        }
    }
    out.extend_from_slice(&filter.finish().unwrap());
    assert!(supplied);
    assert!(!String::from_utf8_lossy(&out).contains("SECRET"));
    let blocks = anthropic_blocks(&events(&out));
    assert_eq!(blocks[0]["type"], "thinking");
    assert_eq!(blocks[0]["thinking"], "Greets the world.");
    let mut next = json!({"messages": [{"role": "assistant", "content": blocks}]});
    restore_request(Endpoint::Messages, ACCT, &mut next, &sealer()).unwrap();
    assert_eq!(next["messages"][0]["content"][0], block);
    let facts = filter.facts();
    assert_eq!(facts.disposition, ReasoningDisposition::Summarized);
    assert_eq!(
        facts.to_response(None, None).reasoning.as_deref(),
        Some("Greets the world.")
    );
}

fn responses_stream() -> (String, Value) {
    let item = json!({"type": "reasoning", "id": "rs_1",
                      "summary": [{"type": "summary_text", "text": "SECRET a. SECRET b."}]});
    let message = json!({"type": "message", "id": "msg_1", "status": "completed", "role": "assistant",
                         "content": [{"type": "output_text", "text": "Final answer", "annotations": []}]});
    let ev = vec![
        (
            Some("response.created"),
            json!({"type": "response.created", "sequence_number": 0,
            "response": {"id": "resp_1", "object": "response", "status": "in_progress", "model": "o", "output": []}}),
        ),
        (
            Some("response.output_item.added"),
            json!({"type": "response.output_item.added", "sequence_number": 1,
            "output_index": 0, "item": {"type": "reasoning", "id": "rs_1", "summary": []}}),
        ),
        (
            Some("response.reasoning_summary_part.added"),
            json!({"type": "response.reasoning_summary_part.added",
            "item_id": "rs_1", "output_index": 0, "summary_index": 0, "part": {"type": "summary_text", "text": ""}}),
        ),
        (
            Some("response.reasoning_summary_text.delta"),
            json!({"type": "response.reasoning_summary_text.delta",
            "item_id": "rs_1", "output_index": 0, "summary_index": 0, "delta": "SECRET a. "}),
        ),
        (
            Some("response.reasoning_summary_text.delta"),
            json!({"type": "response.reasoning_summary_text.delta",
            "item_id": "rs_1", "output_index": 0, "summary_index": 0, "delta": "SECRET b."}),
        ),
        (
            Some("response.reasoning_summary_text.done"),
            json!({"type": "response.reasoning_summary_text.done",
            "item_id": "rs_1", "output_index": 0, "summary_index": 0, "text": "SECRET a. SECRET b."}),
        ),
        (
            Some("response.output_item.done"),
            json!({"type": "response.output_item.done", "output_index": 0, "item": item}),
        ),
        (
            Some("response.output_item.added"),
            json!({"type": "response.output_item.added", "output_index": 1,
            "item": {"type": "message", "id": "msg_1", "status": "in_progress", "role": "assistant", "content": []}}),
        ),
        (
            Some("response.output_text.delta"),
            json!({"type": "response.output_text.delta", "item_id": "msg_1",
            "output_index": 1, "content_index": 0, "delta": "Final"}),
        ),
        (
            Some("response.output_text.delta"),
            json!({"type": "response.output_text.delta", "item_id": "msg_1",
            "output_index": 1, "content_index": 0, "delta": " answer"}),
        ),
        (
            Some("response.output_item.done"),
            json!({"type": "response.output_item.done", "output_index": 1, "item": message}),
        ),
        (
            Some("response.completed"),
            json!({"type": "response.completed", "response": {"id": "resp_1",
            "object": "response", "status": "completed", "model": "o", "output": [item, message],
            "usage": {"input_tokens": 9, "output_tokens": 30, "output_tokens_details": {"reasoning_tokens": 20}}}}),
        ),
    ];
    (sse(&ev), item)
}

#[test]
fn responses_stream_split_at_every_byte() {
    let (input, item) = responses_stream();
    let bytes = input.as_bytes();
    for cut in (0..=bytes.len()).step_by(3) {
        let (out, _) = run(Endpoint::Responses, StreamMode::Pass, bytes, &[cut]);
        assert_eq!(out, bytes);

        let (out, facts) = run(Endpoint::Responses, StreamMode::Withhold, bytes, &[cut]);
        assert!(!String::from_utf8_lossy(&out).contains("SECRET"));
        let ev = events(&out);
        let done = ev
            .iter()
            .find(|(_, d)| {
                d["type"] == "response.output_item.done" && d["item"]["type"] == "reasoning"
            })
            .unwrap();
        let withheld = done.1["item"].clone();
        let completed = &ev.last().unwrap().1;
        assert_eq!(completed["type"], "response.completed");
        assert_eq!(
            completed["response"]["output"][0], withheld,
            "terminal event repeats the same token"
        );
        let mut next = json!({"input": [withheld]});
        restore_request(Endpoint::Responses, ACCT, &mut next, &sealer()).unwrap();
        assert_eq!(next["input"][0], item);
        assert_eq!(facts.content, "Final answer");
        assert_eq!(facts.reasoning, "SECRET a. SECRET b.");
        assert_eq!(facts.finish_reason.as_deref(), Some("stop"));
        assert_eq!(facts.reasoning_tokens, Some(20));
    }
}

#[test]
fn finish_early_ends_each_dialect_cleanly() {
    // Chat, cut in the middle of the reasoning.
    let (input, _) = chat_streams().remove(0);
    let mut parser = SseParser::default();
    parser.feed(&input.as_bytes()[..input.find("The answer").unwrap()]);
    let mut f = StreamFilter::new(
        Endpoint::ChatCompletions,
        StreamMode::Withhold,
        sealer(),
        ACCT,
    );
    let mut out = Vec::new();
    while let Some(ev) = parser.next_event().unwrap() {
        out.extend_from_slice(&f.push(ev).unwrap());
    }
    assert!(f.output_tokens() > 0);
    out.extend_from_slice(&f.finish_early(EarlyStop::TokenBudget));
    let ev = events(&out);
    assert_eq!(ev.last().unwrap().1, json!("[DONE]"));
    assert_eq!(ev[ev.len() - 2].1["choices"][0]["finish_reason"], "length");
    assert!(ev
        .iter()
        .any(|(_, d)| d.pointer("/choices/0/delta/reasoning_details").is_some()));
    assert!(!String::from_utf8_lossy(&out).contains("SECRET"));
    assert_eq!(f.facts().finish_reason.as_deref(), Some("length"));
    assert!(f
        .push(moat_dialect::SseEvent::from_raw("data: {}\n\n".into()))
        .unwrap()
        .is_empty());

    // Anthropic, cut inside the text block.
    let (input, _) = anthropic_stream();
    let mut parser = SseParser::default();
    parser.feed(&input.as_bytes()[..input.find(" world").unwrap()]);
    let mut f = StreamFilter::new(Endpoint::Messages, StreamMode::Withhold, sealer(), ACCT);
    let mut out = Vec::new();
    while let Some(ev) = parser.next_event().unwrap() {
        out.extend_from_slice(&f.push(ev).unwrap());
    }
    out.extend_from_slice(&f.finish_early(EarlyStop::TokenBudget));
    let ev = events(&out);
    let kinds: Vec<&str> = ev
        .iter()
        .map(|(_, d)| d["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        &kinds[kinds.len() - 3..],
        ["content_block_stop", "message_delta", "message_stop"]
    );
    assert_eq!(ev[ev.len() - 3].1["index"], 1);
    assert_eq!(ev[ev.len() - 2].1["delta"]["stop_reason"], "max_tokens");
    assert_eq!(anthropic_blocks(&ev).len(), 2);

    // Responses, cut inside the reasoning: the partial item is closed with a token.
    let (input, _) = responses_stream();
    let mut parser = SseParser::default();
    parser.feed(&input.as_bytes()[..input.find("SECRET b").unwrap()]);
    let mut f = StreamFilter::new(Endpoint::Responses, StreamMode::Withhold, sealer(), ACCT);
    let mut out = Vec::new();
    while let Some(ev) = parser.next_event().unwrap() {
        out.extend_from_slice(&f.push(ev).unwrap());
    }
    out.extend_from_slice(&f.finish_early(EarlyStop::TokenBudget));
    let ev = events(&out);
    let (name, last) = ev.last().unwrap();
    assert_eq!(name.as_deref(), Some("response.incomplete"));
    assert_eq!(last["response"]["status"], "incomplete");
    assert_eq!(
        last["response"]["incomplete_details"]["reason"],
        "max_output_tokens"
    );
    assert_eq!(last["response"]["id"], "resp_1");
    let done = &ev[ev.len() - 2].1;
    assert_eq!(done["type"], "response.output_item.done");
    let mut next = json!({"input": [done["item"]]});
    restore_request(Endpoint::Responses, ACCT, &mut next, &sealer()).unwrap();
    assert_eq!(next["input"][0]["summary"][0]["text"], "SECRET a. ");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_splits_never_leak(cuts in proptest::collection::vec(0usize..4000, 0..12), which in 0usize..5) {
        let (input, endpoint) = match which {
            0 => (anthropic_stream().0, Endpoint::Messages),
            1 => (responses_stream().0, Endpoint::Responses),
            2 => (inline_stream(), Endpoint::ChatCompletions),
            n => (chat_streams()[n - 2].0.clone(), Endpoint::ChatCompletions),
        };
        let bytes = input.as_bytes();
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (bytes.len() + 1)).collect();
        cuts.sort_unstable();
        let (out, facts) = run(endpoint, StreamMode::Withhold, bytes, &cuts);
        prop_assert!(!String::from_utf8_lossy(&out).contains("SECRET"));
        prop_assert!(facts.reasoning.contains("SECRET"));
        let (out, _) = run(endpoint, StreamMode::Pass, bytes, &cuts);
        prop_assert_eq!(out, bytes);
    }

    #[test]
    fn filter_never_panics_on_arbitrary_events(data in proptest::collection::vec(".{0,80}", 0..10),
                                               which in 0usize..4) {
        let endpoint = moat_dialect::Endpoint::ALL[which];
        for mode in [StreamMode::Pass, StreamMode::Withhold, StreamMode::Summarize] {
            let mut f = StreamFilter::new(endpoint, mode, sealer(), ACCT);
            for d in &data {
                let raw = format!("event: {d}\ndata: {d}\n\n");
                let _ = f.push(moat_dialect::SseEvent::from_raw(raw.into()));
            }
            let _ = f.finish_early(EarlyStop::Policy);
            let _ = f.facts();
        }
    }
}

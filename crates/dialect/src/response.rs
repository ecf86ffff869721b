//! Response facts: the answer, the reasoning, usage and finish reason of a whole response, in
//! every dialect, for the exchange record and for the policy (which needs the reasoning to
//! summarize it). Reads only; rewriting lives in `crate::withhold`, streams in `crate::stream`.

use serde_json::{Map, Value};

use crate::think;
use crate::Endpoint;

/// What became of the reasoning on its way to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ReasoningDisposition {
    /// The response carried no reasoning.
    #[default]
    Absent,
    /// The client received it as upstream produced it.
    Returned,
    /// The client received a token in its place.
    Withheld,
    /// The client received a summary and a token in its place.
    Summarized,
}

/// The facts of a response that go into the exchange record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResponseFacts {
    /// The answer text (of the first choice where there are several).
    pub content: String,
    /// The reasoning text upstream produced, whatever reached the client.
    pub reasoning: String,
    /// Whether the client got the reasoning.
    pub disposition: ReasoningDisposition,
    /// The summary the client got instead, in [`ReasoningDisposition::Summarized`].
    pub summary: Option<String>,
    /// Input tokens, as upstream reported them.
    pub prompt_tokens: Option<u64>,
    /// Output tokens, as upstream reported them.
    pub completion_tokens: Option<u64>,
    /// Reasoning tokens, where upstream reports them separately.
    pub reasoning_tokens: Option<u64>,
    /// Why generation stopped, in OpenAI's words (`stop`, `length`, `tool_calls`, …).
    pub finish_reason: Option<String>,
}

impl ResponseFacts {
    /// The reasoning text that actually reached the client, if any: the original when
    /// returned, the summary when summarized.
    pub fn returned_reasoning(&self) -> Option<&str> {
        match self.disposition {
            ReasoningDisposition::Returned if !self.reasoning.is_empty() => Some(&self.reasoning),
            ReasoningDisposition::Summarized => self.summary.as_deref(),
            _ => None,
        }
    }

    /// The record's `response` part; the gateway supplies the status and the latency it
    /// measured.
    pub fn to_response(
        &self,
        status: Option<u16>,
        latency_ms: Option<u64>,
    ) -> moat_types::Response {
        moat_types::Response {
            status,
            prompt_tokens: self.prompt_tokens,
            completion_tokens: self.completion_tokens,
            reasoning_tokens: self.reasoning_tokens,
            finish_reason: self.finish_reason.clone(),
            latency_ms,
            content: (!self.content.is_empty()).then(|| self.content.clone()),
            reasoning: self.returned_reasoning().map(str::to_owned),
        }
    }
}

/// Reads the facts of a whole response body of `endpoint`. Missing or oddly shaped fields
/// are facts unknown, never errors: a response has already been produced.
pub fn inspect_response(endpoint: Endpoint, body: &Value) -> ResponseFacts {
    let mut f = ResponseFacts::default();
    match endpoint {
        Endpoint::ChatCompletions | Endpoint::Completions => {
            let choice = body.pointer("/choices/0");
            let text = if endpoint == Endpoint::Completions {
                choice.and_then(|c| c.get("text"))
            } else {
                choice.and_then(|c| c.pointer("/message/content"))
            };
            if let Some(text) = text.and_then(text_of) {
                split_inline(&text, &mut f);
            }
            if let Some(Value::Object(msg)) = choice.and_then(|c| c.get("message")) {
                if let Some(r) = chat_reasoning(msg, "\n") {
                    if f.reasoning.is_empty() {
                        f.reasoning = r;
                    } else {
                        f.reasoning = format!("{r}\n{}", f.reasoning);
                    }
                }
            }
            f.finish_reason = choice
                .and_then(|c| c.get("finish_reason"))
                .and_then(Value::as_str)
                .map(str::to_owned);
            if let Some(u) = body.get("usage") {
                chat_usage(u, &mut f);
            }
        }
        Endpoint::Responses => {
            if let Some(Value::Array(items)) = body.get("output") {
                for item in items {
                    match item.get("type").and_then(Value::as_str) {
                        Some("reasoning") => {
                            push_para(&mut f.reasoning, &responses_reasoning(item))
                        }
                        Some("message") => {
                            if let Some(Value::Array(parts)) = item.get("content") {
                                for p in parts {
                                    if let Some(t) = p.get("text").and_then(Value::as_str) {
                                        f.content.push_str(t);
                                    }
                                }
                            }
                        }
                        _ => {}
                    }
                }
            }
            f.finish_reason = responses_finish(body);
            if let Some(u) = body.get("usage") {
                responses_usage(u, &mut f);
            }
        }
        Endpoint::Messages => {
            if let Some(Value::Array(blocks)) = body.get("content") {
                for b in blocks {
                    match b.get("type").and_then(Value::as_str) {
                        Some("text") => {
                            if let Some(t) = b.get("text").and_then(Value::as_str) {
                                f.content.push_str(t);
                            }
                        }
                        Some("thinking") => {
                            if let Some(t) = b.get("thinking").and_then(Value::as_str) {
                                push_para(&mut f.reasoning, t);
                            }
                        }
                        _ => {}
                    }
                }
            }
            f.finish_reason = body
                .get("stop_reason")
                .and_then(Value::as_str)
                .map(anthropic_finish);
            if let Some(u) = body.get("usage") {
                f.prompt_tokens = u.get("input_tokens").and_then(Value::as_u64);
                f.completion_tokens = u.get("output_tokens").and_then(Value::as_u64);
            }
        }
    }
    if !f.reasoning.is_empty() {
        f.disposition = ReasoningDisposition::Returned;
    }
    f
}

fn push_para(out: &mut String, text: &str) {
    if text.is_empty() {
        return;
    }
    if !out.is_empty() {
        out.push('\n');
    }
    out.push_str(text);
}

/// The text of chat content: a string, or the `text` of its parts concatenated.
fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Array(parts) => Some(
            parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect(),
        ),
        _ => None,
    }
}

fn split_inline(text: &str, f: &mut ResponseFacts) {
    match think::find(text) {
        Some(b) => {
            f.reasoning = b.inner(text).to_owned();
            f.content = format!("{}{}", &text[..b.start], &text[b.end..]);
        }
        None => f.content = text.to_owned(),
    }
}

/// The chat reasoning fields a message or delta may carry.
pub(crate) const CHAT_REASONING_FIELDS: [&str; 3] =
    ["reasoning_content", "reasoning", "reasoning_details"];

/// The reasoning text of a chat message or delta. Servers often send the same text in two
/// fields (vLLM: `reasoning_content` and `reasoning`; OpenRouter: `reasoning` and
/// `reasoning_details`), so one field is read, in that order of preference.
pub(crate) fn chat_reasoning(msg: &Map<String, Value>, sep: &str) -> Option<String> {
    for key in ["reasoning_content", "reasoning"] {
        if let Some(Value::String(s)) = msg.get(key) {
            return Some(s.clone());
        }
    }
    let Some(Value::Array(details)) = msg.get("reasoning_details") else {
        return None;
    };
    let texts: Vec<&str> = details.iter().filter_map(detail_text).collect();
    (!texts.is_empty()).then(|| texts.join(sep))
}

/// The readable text of one `reasoning_details` entry (none for encrypted entries).
fn detail_text(d: &Value) -> Option<&str> {
    match d.get("type").and_then(Value::as_str) {
        Some("reasoning.text") => d.get("text").and_then(Value::as_str),
        Some("reasoning.summary") => d.get("summary").and_then(Value::as_str),
        _ => None,
    }
}

pub(crate) fn chat_usage(u: &Value, f: &mut ResponseFacts) {
    if let Some(n) = u.get("prompt_tokens").and_then(Value::as_u64) {
        f.prompt_tokens = Some(n);
    }
    if let Some(n) = u.get("completion_tokens").and_then(Value::as_u64) {
        f.completion_tokens = Some(n);
    }
    if let Some(n) = u
        .pointer("/completion_tokens_details/reasoning_tokens")
        .and_then(Value::as_u64)
    {
        f.reasoning_tokens = Some(n);
    }
}

pub(crate) fn responses_usage(u: &Value, f: &mut ResponseFacts) {
    if let Some(n) = u.get("input_tokens").and_then(Value::as_u64) {
        f.prompt_tokens = Some(n);
    }
    if let Some(n) = u.get("output_tokens").and_then(Value::as_u64) {
        f.completion_tokens = Some(n);
    }
    if let Some(n) = u
        .pointer("/output_tokens_details/reasoning_tokens")
        .and_then(Value::as_u64)
    {
        f.reasoning_tokens = Some(n);
    }
}

/// The reasoning text of a Responses reasoning item: its full `content` when present, its
/// summary otherwise.
pub(crate) fn responses_reasoning(item: &Value) -> String {
    let collect = |key: &str| -> String {
        match item.get(key) {
            Some(Value::Array(parts)) => {
                let texts: Vec<&str> = parts
                    .iter()
                    .filter_map(|p| p.get("text").and_then(Value::as_str))
                    .collect();
                texts.join("\n")
            }
            _ => String::new(),
        }
    };
    let content = collect("content");
    if content.is_empty() {
        collect("summary")
    } else {
        content
    }
}

/// A Responses status in OpenAI chat's finish-reason words.
pub(crate) fn responses_finish(response: &Value) -> Option<String> {
    let status = response.get("status").and_then(Value::as_str)?;
    Some(match status {
        "completed" => "stop".to_owned(),
        "incomplete" => match response
            .pointer("/incomplete_details/reason")
            .and_then(Value::as_str)
        {
            Some("max_output_tokens") => "length".to_owned(),
            Some(other) => other.to_owned(),
            None => "incomplete".to_owned(),
        },
        other => other.to_owned(),
    })
}

/// An Anthropic stop reason in OpenAI chat's finish-reason words.
pub(crate) fn anthropic_finish(stop_reason: &str) -> String {
    match stop_reason {
        "end_turn" | "stop_sequence" => "stop",
        "max_tokens" => "length",
        "tool_use" => "tool_calls",
        other => other,
    }
    .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn chat(message: Value) -> Value {
        json!({"id": "c1", "object": "chat.completion", "choices": [
            {"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 12, "completion_tokens": 40,
                      "completion_tokens_details": {"reasoning_tokens": 30}}})
    }

    #[test]
    fn chat_reasoning_is_found_in_every_variant() {
        let variants = [
            json!({"role": "assistant", "content": "42", "reasoning_content": "think hard"}),
            json!({"role": "assistant", "content": "42", "reasoning": "think hard"}),
            json!({"role": "assistant", "content": "42", "reasoning_details": [
                {"type": "reasoning.text", "text": "think hard", "signature": "s"}]}),
            json!({"role": "assistant", "content": "<think>think hard</think>42"}),
        ];
        for v in variants {
            let f = inspect_response(Endpoint::ChatCompletions, &chat(v.clone()));
            assert_eq!(f.reasoning, "think hard", "{v}");
            assert_eq!(f.content, "42", "{v}");
            assert_eq!(f.disposition, ReasoningDisposition::Returned);
            assert_eq!(f.prompt_tokens, Some(12));
            assert_eq!(f.reasoning_tokens, Some(30));
            assert_eq!(f.finish_reason.as_deref(), Some("stop"));
        }
        let summary = chat(
            json!({"role": "assistant", "content": "x", "reasoning_details": [
            {"type": "reasoning.summary", "summary": "brief"},
            {"type": "reasoning.encrypted", "data": "opaque"}]}),
        );
        assert_eq!(
            inspect_response(Endpoint::ChatCompletions, &summary).reasoning,
            "brief"
        );
        let none = chat(json!({"role": "assistant", "content": "x"}));
        let f = inspect_response(Endpoint::ChatCompletions, &none);
        assert_eq!(f.disposition, ReasoningDisposition::Absent);
        assert_eq!(f.to_response(Some(200), Some(5)).reasoning, None);
    }

    #[test]
    fn record_response_carries_returned_reasoning_only() {
        let mut f = inspect_response(
            Endpoint::ChatCompletions,
            &chat(json!({"role": "assistant", "content": "42", "reasoning": "r"})),
        );
        let r = f.to_response(Some(200), Some(10));
        assert_eq!(
            (r.content.as_deref(), r.reasoning.as_deref()),
            (Some("42"), Some("r"))
        );
        assert_eq!(
            (r.status, r.latency_ms, r.completion_tokens),
            (Some(200), Some(10), Some(40))
        );
        f.disposition = ReasoningDisposition::Withheld;
        assert_eq!(f.to_response(None, None).reasoning, None);
        f.disposition = ReasoningDisposition::Summarized;
        f.summary = Some("s".into());
        assert_eq!(f.to_response(None, None).reasoning.as_deref(), Some("s"));
    }

    #[test]
    fn responses_and_anthropic_facts() {
        let body = json!({"id": "resp_1", "status": "incomplete",
            "incomplete_details": {"reason": "max_output_tokens"},
            "output": [
                {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "sum"}],
                 "content": [{"type": "reasoning_text", "text": "full"}]},
                {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "A"}]}],
            "usage": {"input_tokens": 5, "output_tokens": 9, "output_tokens_details": {"reasoning_tokens": 7}}});
        let f = inspect_response(Endpoint::Responses, &body);
        assert_eq!((f.content.as_str(), f.reasoning.as_str()), ("A", "full"));
        assert_eq!(f.finish_reason.as_deref(), Some("length"));
        assert_eq!(
            (f.prompt_tokens, f.completion_tokens, f.reasoning_tokens),
            (Some(5), Some(9), Some(7))
        );

        let body = json!({"type": "message", "content": [
            {"type": "thinking", "thinking": "T", "signature": "sig"},
            {"type": "redacted_thinking", "data": "opaque"},
            {"type": "text", "text": "Hello"}],
            "stop_reason": "end_turn", "usage": {"input_tokens": 3, "output_tokens": 4}});
        let f = inspect_response(Endpoint::Messages, &body);
        assert_eq!((f.content.as_str(), f.reasoning.as_str()), ("Hello", "T"));
        assert_eq!(f.finish_reason.as_deref(), Some("stop"));
        assert_eq!((f.prompt_tokens, f.completion_tokens), (Some(3), Some(4)));
    }

    #[test]
    fn completions_inline_reasoning() {
        let body = json!({"choices": [{"text": "\n<think>why</think>\nbecause", "finish_reason": "length"}]});
        let f = inspect_response(Endpoint::Completions, &body);
        assert_eq!(
            (f.content.as_str(), f.reasoning.as_str()),
            ("\n\nbecause", "why")
        );
        assert_eq!(f.finish_reason.as_deref(), Some("length"));
    }
}

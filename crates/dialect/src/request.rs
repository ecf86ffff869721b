//! Request bodies: what the gateway records and scores.
//!
//! Reads a request body of any dialect into a `moat_types::Request` (endpoint, model,
//! messages, sampling parameters) plus the facts the gateway acts on (streaming, output
//! budget). Shapes that are wrong are refused with the JSON path of the field; shapes that are
//! merely unusual (unknown parameters, parts without text) are kept or skipped, because the
//! upstream, not this crate, is the judge of what it accepts. It does not rewrite bodies; see
//! `crate::restore` for that, and `crate::rebuild` for the way back from a record to a body.

use std::collections::BTreeMap;

use moat_types::{Content, ContentPart, Message, Params, Request};
use serde_json::{Map, Value};

use crate::error::DialectError;
use crate::Endpoint;

/// What the gateway needs from a request body.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestFacts {
    /// The dialect.
    pub endpoint: Endpoint,
    /// The record's `request` part.
    pub request: Request,
    /// Whether the client asked for a streamed (SSE) response.
    pub stream: bool,
    /// The output budget the client asked for (`max_tokens`, `max_completion_tokens` or
    /// `max_output_tokens`, whichever the dialect uses).
    pub max_output_tokens: Option<u64>,
}

fn malformed(at: impl Into<String>, expected: &'static str) -> DialectError {
    DialectError::Malformed {
        at: at.into(),
        expected,
    }
}

/// Reads a request body of `endpoint`.
pub fn parse_request(endpoint: Endpoint, body: &Value) -> Result<RequestFacts, DialectError> {
    let obj = body
        .as_object()
        .ok_or_else(|| malformed("body", "a JSON object"))?;
    let model = match obj.get("model") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(malformed("model", "a string")),
    };
    let stream = match obj.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(malformed("stream", "a boolean")),
    };
    let (messages, prompt) = match endpoint {
        Endpoint::ChatCompletions => (chat_messages(obj)?, None),
        Endpoint::Completions => (Vec::new(), Some(prompt(obj)?)),
        Endpoint::Responses => (responses_input(obj)?, None),
        Endpoint::Messages => (anthropic_messages(obj)?, None),
    };
    let mut params = params(obj, conversation_keys(endpoint));
    let max_output_tokens = budget(endpoint, obj);
    if params.max_tokens.is_none() {
        params.max_tokens = max_output_tokens;
    }
    if params.reasoning_effort.is_none() {
        params.reasoning_effort = nested_effort(obj).map(str::to_owned);
    }
    Ok(RequestFacts {
        endpoint,
        request: Request {
            endpoint: Some(endpoint.path().to_owned()),
            model,
            messages,
            prompt,
            params: Some(params),
        },
        stream,
        max_output_tokens,
    })
}

/// The top-level keys of a body of `endpoint` that are not parameters: the model and the
/// conversation.
pub(crate) fn conversation_keys(endpoint: Endpoint) -> &'static [&'static str] {
    match endpoint {
        Endpoint::ChatCompletions => &["model", "messages"],
        Endpoint::Completions => &["model", "prompt"],
        Endpoint::Responses => &["model", "input", "instructions"],
        Endpoint::Messages => &["model", "messages", "system"],
    }
}

/// The output budget of a body: the first of the dialect's budget keys holding a whole number.
pub(crate) fn budget(endpoint: Endpoint, obj: &Map<String, Value>) -> Option<u64> {
    let keys: &[&str] = match endpoint {
        Endpoint::ChatCompletions => &["max_completion_tokens", "max_tokens"],
        Endpoint::Responses => &["max_output_tokens"],
        Endpoint::Completions | Endpoint::Messages => &["max_tokens"],
    };
    keys.iter()
        .find_map(|k| obj.get(*k).and_then(Value::as_u64))
}

/// The reasoning effort nested as Responses sends it: `"reasoning": {"effort": "high"}`.
pub(crate) fn nested_effort(obj: &Map<String, Value>) -> Option<&str> {
    obj.get("reasoning")
        .and_then(|r| r.get("effort"))
        .and_then(Value::as_str)
}

/// Whether `value` under the parameter `key` is read into the typed [`Params`] field of that
/// name rather than kept among the untyped ones.
pub(crate) fn is_typed(key: &str, value: &Value) -> bool {
    match key {
        "temperature" | "top_p" => value.as_f64().is_some(),
        "max_tokens" | "n" | "top_logprobs" => value.as_u64().is_some(),
        "reasoning_effort" => value.is_string(),
        "stream" | "logprobs" => value.is_boolean(),
        _ => false,
    }
}

/// Every top-level key but the conversation, typed where the type fits, kept as sent
/// otherwise (a `logprobs` that is a number in `/v1/completions` is not a boolean).
pub(crate) fn params(obj: &Map<String, Value>, skip: &[&str]) -> Params {
    let mut p = Params::default();
    let mut extra = BTreeMap::new();
    for (k, v) in obj {
        if skip.contains(&k.as_str()) {
            continue;
        }
        let typed = match k.as_str() {
            "temperature" => v.as_f64().map(|x| p.temperature = Some(x)),
            "top_p" => v.as_f64().map(|x| p.top_p = Some(x)),
            "max_tokens" => v.as_u64().map(|x| p.max_tokens = Some(x)),
            "n" => v.as_u64().map(|x| p.n = Some(x)),
            "reasoning_effort" => v.as_str().map(|x| p.reasoning_effort = Some(x.to_owned())),
            "stream" => v.as_bool().map(|x| p.stream = Some(x)),
            "logprobs" => v.as_bool().map(|x| p.logprobs = Some(x)),
            "top_logprobs" => v.as_u64().map(|x| p.top_logprobs = Some(x)),
            _ => None,
        };
        if typed.is_none() {
            extra.insert(k.clone(), v.clone());
        }
    }
    p.extra = extra;
    p
}

fn role(msg: &Map<String, Value>, at: &dyn Fn() -> String) -> Result<String, DialectError> {
    match msg.get("role") {
        Some(Value::String(r)) => Ok(r.clone()),
        _ => Err(malformed(format!("{}.role", at()), "a string")),
    }
}

fn chat_messages(obj: &Map<String, Value>) -> Result<Vec<Message>, DialectError> {
    let Some(Value::Array(items)) = obj.get("messages") else {
        return Err(malformed("messages", "an array of messages"));
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let at = || format!("messages[{i}]");
        let msg = item
            .as_object()
            .ok_or_else(|| malformed(at(), "an object"))?;
        let role = role(msg, &at)?;
        let content = match msg.get("content") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(Content::Text(s.clone())),
            Some(Value::Array(parts)) => Some(Content::Parts(typed_parts(parts, &|| {
                format!("messages[{i}].content")
            })?)),
            Some(_) => {
                return Err(malformed(
                    format!("messages[{i}].content"),
                    "a string or an array of parts",
                ))
            }
        };
        out.push(Message { role, content });
    }
    Ok(out)
}

/// Parts of OpenAI or Anthropic shape: objects with a `type`; the text is `text` where there
/// is one, the string (or the text blocks) of a `tool_result`'s `content`, else none.
fn typed_parts(parts: &[Value], at: &dyn Fn() -> String) -> Result<Vec<ContentPart>, DialectError> {
    let mut out = Vec::with_capacity(parts.len());
    for (j, part) in parts.iter().enumerate() {
        let p = part
            .as_object()
            .ok_or_else(|| malformed(format!("{}[{j}]", at()), "an object"))?;
        let kind = match p.get("type") {
            Some(Value::String(t)) => t.clone(),
            _ => return Err(malformed(format!("{}[{j}].type", at()), "a string")),
        };
        let text = match p.get("text") {
            Some(Value::String(t)) => Some(t.clone()),
            _ if kind == "tool_result" => match p.get("content") {
                Some(Value::String(t)) => Some(t.clone()),
                Some(Value::Array(blocks)) => {
                    let texts: Vec<&str> = blocks
                        .iter()
                        .filter_map(|b| b.get("text").and_then(Value::as_str))
                        .collect();
                    Some(texts.join("\n"))
                }
                _ => None,
            },
            _ => None,
        };
        out.push(ContentPart { kind, text });
    }
    Ok(out)
}

fn prompt(obj: &Map<String, Value>) -> Result<String, DialectError> {
    const EXPECTED: &str = "a string or an array of strings";
    match obj.get("prompt") {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Array(items)) => {
            let mut texts = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                texts.push(
                    item.as_str()
                        .ok_or_else(|| malformed(format!("prompt[{i}]"), "a string"))?,
                );
            }
            Ok(texts.join("\n"))
        }
        _ => Err(malformed("prompt", EXPECTED)),
    }
}

fn responses_input(obj: &Map<String, Value>) -> Result<Vec<Message>, DialectError> {
    let mut out = Vec::new();
    match obj.get("instructions") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => out.push(Message::text("system", s.clone())),
        Some(_) => return Err(malformed("instructions", "a string")),
    }
    match obj.get("input") {
        // A request may continue a stored conversation (`previous_response_id`) or use a
        // stored prompt without new input; the record then has only the instructions.
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => out.push(Message::text("user", s.clone())),
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let at = || format!("input[{i}]");
                let it = item
                    .as_object()
                    .ok_or_else(|| malformed(at(), "an object"))?;
                let kind = it.get("type").and_then(Value::as_str);
                match kind {
                    None | Some("message") => {
                        let role = role(it, &at)?;
                        let content = match it.get("content") {
                            None | Some(Value::Null) => None,
                            Some(Value::String(s)) => Some(Content::Text(s.clone())),
                            Some(Value::Array(parts)) => {
                                Some(Content::Parts(typed_parts(parts, &|| {
                                    format!("input[{i}].content")
                                })?))
                            }
                            Some(_) => {
                                return Err(malformed(
                                    format!("input[{i}].content"),
                                    "a string or an array of parts",
                                ))
                            }
                        };
                        out.push(Message { role, content });
                    }
                    Some("function_call_output") => out.push(Message {
                        role: "tool".to_owned(),
                        content: it
                            .get("output")
                            .and_then(Value::as_str)
                            .map(|s| Content::Text(s.to_owned())),
                    }),
                    // Reasoning items, tool calls and references are not conversation text.
                    Some(_) => {}
                }
            }
        }
        Some(_) => return Err(malformed("input", "a string or an array of items")),
    }
    Ok(out)
}

fn anthropic_messages(obj: &Map<String, Value>) -> Result<Vec<Message>, DialectError> {
    let mut out = Vec::new();
    match obj.get("system") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => out.push(Message::text("system", s.clone())),
        Some(Value::Array(blocks)) => out.push(Message {
            role: "system".to_owned(),
            content: Some(Content::Parts(typed_parts(blocks, &|| {
                "system".to_owned()
            })?)),
        }),
        Some(_) => return Err(malformed("system", "a string or an array of blocks")),
    }
    let Some(Value::Array(items)) = obj.get("messages") else {
        return Err(malformed("messages", "an array of messages"));
    };
    for (i, item) in items.iter().enumerate() {
        let at = || format!("messages[{i}]");
        let msg = item
            .as_object()
            .ok_or_else(|| malformed(at(), "an object"))?;
        let role = role(msg, &at)?;
        let content = match msg.get("content") {
            Some(Value::String(s)) => Some(Content::Text(s.clone())),
            Some(Value::Array(blocks)) => Some(Content::Parts(typed_parts(blocks, &|| {
                format!("messages[{i}].content")
            })?)),
            _ => {
                return Err(malformed(
                    format!("messages[{i}].content"),
                    "a string or an array of blocks",
                ))
            }
        };
        out.push(Message { role, content });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn chat_request_becomes_a_record_request() {
        let body = json!({
            "model": "frontier-1",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "Hi"},
                                              {"type": "image_url", "image_url": {"url": "x"}}]},
                {"role": "assistant", "content": null, "tool_calls": []}
            ],
            "temperature": 0.2, "max_completion_tokens": 900, "stream": true,
            "reasoning_effort": "high", "tools": []
        });
        let f = parse_request(Endpoint::ChatCompletions, &body).unwrap();
        assert!(f.stream);
        assert_eq!(f.max_output_tokens, Some(900));
        let r = &f.request;
        assert_eq!(r.endpoint.as_deref(), Some("/v1/chat/completions"));
        assert_eq!(r.model.as_deref(), Some("frontier-1"));
        assert_eq!(r.messages.len(), 3);
        assert_eq!(r.messages[1].text_content(), "Hi");
        assert_eq!(r.messages[2].content, None);
        let p = r.params.as_ref().unwrap();
        assert_eq!(p.temperature, Some(0.2));
        assert_eq!(p.max_tokens, Some(900));
        assert_eq!(p.stream, Some(true));
        assert_eq!(p.reasoning_effort.as_deref(), Some("high"));
        assert!(p.extra.contains_key("tools") && p.extra.contains_key("max_completion_tokens"));
        assert!(!p.extra.contains_key("messages"));
    }

    #[test]
    fn malformed_chat_content_names_the_field() {
        let body = json!({"messages": [{"role": "user", "content": "a"},
                                       {"role": "user", "content": "b"},
                                       {"role": "user", "content": 7}]});
        let e = parse_request(Endpoint::ChatCompletions, &body).unwrap_err();
        assert_eq!(
            e.to_string(),
            "messages[2].content: expected a string or an array of parts"
        );
        let e = parse_request(
            Endpoint::ChatCompletions,
            &json!({"messages": [{"content": "a"}]}),
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "messages[0].role: expected a string");
        let e = parse_request(Endpoint::ChatCompletions, &json!([1])).unwrap_err();
        assert!(e.is_client_error());
    }

    #[test]
    fn completions_prompt_is_a_string() {
        let f = parse_request(
            Endpoint::Completions,
            &json!({"model": "m", "prompt": ["a", "b"], "max_tokens": 5, "logprobs": 3}),
        )
        .unwrap();
        assert_eq!(f.request.prompt.as_deref(), Some("a\nb"));
        assert!(f.request.messages.is_empty());
        let p = f.request.params.unwrap();
        assert_eq!(p.max_tokens, Some(5));
        assert_eq!(p.logprobs, None);
        assert_eq!(p.extra.get("logprobs"), Some(&json!(3)));
        let e = parse_request(Endpoint::Completions, &json!({"prompt": [1, 2]})).unwrap_err();
        assert_eq!(e.to_string(), "prompt[0]: expected a string");
    }

    #[test]
    fn responses_input_and_instructions() {
        let body = json!({
            "model": "m", "instructions": "Be exact.", "max_output_tokens": 300,
            "reasoning": {"effort": "medium"},
            "input": [
                {"role": "user", "content": "Q1"},
                {"type": "reasoning", "id": "rs_1", "summary": []},
                {"type": "message", "role": "assistant",
                 "content": [{"type": "output_text", "text": "A1"}]},
                {"type": "message", "role": "user",
                 "content": [{"type": "input_text", "text": "Q2"}]}
            ]
        });
        let f = parse_request(Endpoint::Responses, &body).unwrap();
        let m = &f.request.messages;
        assert_eq!(m.len(), 4);
        assert_eq!(
            (m[0].role.as_str(), m[0].text_content()),
            ("system", "Be exact.".into())
        );
        assert_eq!(m[2].text_content(), "A1");
        assert_eq!(m[3].text_content(), "Q2");
        assert_eq!(f.max_output_tokens, Some(300));
        let p = f.request.params.unwrap();
        assert_eq!(p.reasoning_effort.as_deref(), Some("medium"));
        let f = parse_request(Endpoint::Responses, &json!({"input": "hello"})).unwrap();
        assert_eq!(f.request.messages[0].text_content(), "hello");
        let e = parse_request(Endpoint::Responses, &json!({"input": 3})).unwrap_err();
        assert_eq!(
            e.to_string(),
            "input: expected a string or an array of items"
        );
    }

    #[test]
    fn anthropic_system_and_blocks() {
        let body = json!({
            "model": "claude", "max_tokens": 1024, "stream": false,
            "system": [{"type": "text", "text": "Sys"}],
            "messages": [
                {"role": "user", "content": "Q"},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                    {"type": "text", "text": "A"}]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "t", "content": "42"}]}
            ]
        });
        let f = parse_request(Endpoint::Messages, &body).unwrap();
        let m = &f.request.messages;
        assert_eq!(m[0].text_content(), "Sys");
        assert_eq!(m[2].text_content(), "A");
        assert_eq!(m[3].text_content(), "42");
        assert_eq!(f.max_output_tokens, Some(1024));
        assert!(!f.stream);
        let e = parse_request(Endpoint::Messages, &json!({"messages": [{"role": "user"}]}))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "messages[0].content: expected a string or an array of blocks"
        );
    }
}

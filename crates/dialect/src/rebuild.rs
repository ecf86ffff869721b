//! From a record back to a request body: the inverse of [`crate::parse_request`], so that a
//! recorded exchange can be sent again (`moat replay`) and a gateway records it as it was.
//!
//! *Invariant:* for every `request` this accepts, `parse_request(endpoint, &body)` gives back
//! `request` itself, with `endpoint` set to `endpoint.path()` and absent `params` read as
//! empty ones (the two things every body says). Requests no body parses into are refused with
//! the field that stands in the way, never sent altered.
//!
//! Not a dialect translator: parameters are written under the names the record keeps. A record
//! the gateway made gives back its client's body (up to key order, and a typed `max_tokens` or
//! `reasoning_effort` that the body's `max_completion_tokens`, `max_output_tokens` or
//! `reasoning.effort` implied is not added again); a record made elsewhere (the simulator
//! writes chat-style `max_tokens` and `reasoning_effort` for every endpoint) gets its typed
//! parameters at the top level, where `parse_request` reads them.

use moat_types::{Content, Message, Params, Request};
use serde_json::{Map, Number, Value};

use crate::error::DialectError;
use crate::request::{budget, conversation_keys, is_typed, nested_effort};
use crate::Endpoint;

fn unrepresentable(at: impl Into<String>, reason: &'static str) -> DialectError {
    DialectError::Unrepresentable {
        at: at.into(),
        reason,
    }
}

/// The body a client sends on `endpoint` for a record's `request`, which
/// [`crate::parse_request`] reads back into the same request (see the module's invariant).
///
/// `request.endpoint` is not read: the caller chose `endpoint` (usually
/// `Endpoint::from_path` of it). Fails with [`DialectError::Unrepresentable`] for a
/// conversation the dialect has no place for (a prompt on a chat endpoint, messages on
/// completions, an Anthropic message without content), a parameter kept under a key that
/// holds the conversation, kept both typed and untyped, or untyped with a value the typed field
/// would take, a budget or an effort that other parameters would imply differently, or a
/// number JSON cannot hold.
pub fn request_body(endpoint: Endpoint, request: &Request) -> Result<Value, DialectError> {
    let mut body = Map::new();
    params(endpoint, request.params.as_ref(), &mut body)?;
    if let Some(model) = &request.model {
        body.insert("model".to_owned(), Value::String(model.clone()));
    }
    let messages = &request.messages;
    if endpoint != Endpoint::Completions && request.prompt.is_some() {
        return Err(unrepresentable(
            "prompt",
            "only the completions endpoint carries a prompt",
        ));
    }
    match endpoint {
        Endpoint::ChatCompletions => {
            let items = messages.iter().map(message).collect();
            body.insert("messages".to_owned(), Value::Array(items));
        }
        Endpoint::Completions => {
            if !messages.is_empty() {
                return Err(unrepresentable(
                    "messages",
                    "the completions endpoint carries a prompt, not messages",
                ));
            }
            let Some(prompt) = &request.prompt else {
                return Err(unrepresentable(
                    "prompt",
                    "the completions endpoint needs one",
                ));
            };
            body.insert("prompt".to_owned(), Value::String(prompt.clone()));
        }
        Endpoint::Responses => {
            // A leading system text is what `instructions` records as; everything else is an
            // input item of the same role, which reads back unchanged.
            let rest = match messages.split_first() {
                Some((first, rest)) if first.role == "system" => match &first.content {
                    Some(Content::Text(t)) => {
                        body.insert("instructions".to_owned(), Value::String(t.clone()));
                        rest
                    }
                    _ => messages.as_slice(),
                },
                _ => messages.as_slice(),
            };
            if !rest.is_empty() {
                let items = rest.iter().map(message).collect();
                body.insert("input".to_owned(), Value::Array(items));
            }
        }
        Endpoint::Messages => {
            let rest = match messages.split_first() {
                Some((first, rest)) if first.role == "system" => {
                    let system = first.content.as_ref().ok_or_else(|| {
                        unrepresentable(
                            "messages[0].content",
                            "an Anthropic system prompt has content",
                        )
                    })?;
                    body.insert("system".to_owned(), content(system));
                    rest
                }
                _ => messages.as_slice(),
            };
            let offset = messages.len() - rest.len();
            let mut items = Vec::with_capacity(rest.len());
            for (i, m) in rest.iter().enumerate() {
                if m.content.is_none() {
                    return Err(unrepresentable(
                        format!("messages[{}].content", i + offset),
                        "an Anthropic message has content",
                    ));
                }
                items.push(message(m));
            }
            body.insert("messages".to_owned(), Value::Array(items));
        }
    }
    Ok(Value::Object(body))
}

/// A message as chat completions, Responses input and Anthropic messages all read it.
fn message(m: &Message) -> Value {
    let mut obj = Map::new();
    obj.insert("role".to_owned(), Value::String(m.role.clone()));
    obj.insert(
        "content".to_owned(),
        m.content.as_ref().map_or(Value::Null, content),
    );
    Value::Object(obj)
}

fn content(c: &Content) -> Value {
    match c {
        Content::Text(t) => Value::String(t.clone()),
        Content::Parts(parts) => Value::Array(
            parts
                .iter()
                .map(|p| {
                    let mut obj = Map::new();
                    obj.insert("type".to_owned(), Value::String(p.kind.clone()));
                    if let Some(t) = &p.text {
                        obj.insert("text".to_owned(), Value::String(t.clone()));
                    }
                    Value::Object(obj)
                })
                .collect(),
        ),
    }
}

/// Writes the parameters into `body`: the untyped ones as kept, then each typed one unless
/// the untyped ones already imply it the way `parse_request` reads them.
fn params(
    endpoint: Endpoint,
    params: Option<&Params>,
    body: &mut Map<String, Value>,
) -> Result<(), DialectError> {
    let Some(p) = params else {
        return Ok(());
    };
    let conversation = conversation_keys(endpoint);
    for (k, v) in &p.extra {
        if conversation.contains(&k.as_str()) {
            return Err(unrepresentable(
                format!("params.{k}"),
                "the body holds the model or the conversation under this key",
            ));
        }
        if is_typed(k, v) {
            return Err(unrepresentable(
                format!("params.{k}"),
                "an untyped value the typed parameter of this name would take",
            ));
        }
        if k == "stream" && !v.is_null() {
            return Err(unrepresentable(
                "params.stream",
                "a body's stream is a boolean",
            ));
        }
        body.insert(k.clone(), v.clone());
    }
    // What the untyped parameters imply, as `parse_request` fills the typed fields from them.
    let implied_budget = budget(endpoint, body);
    let implied_effort = nested_effort(body).map(str::to_owned);
    if p.max_tokens.is_none() && implied_budget.is_some() {
        return Err(unrepresentable(
            "params.max_tokens",
            "absent, but the body's output budget would record one",
        ));
    }
    if p.reasoning_effort.is_none() && implied_effort.is_some() {
        return Err(unrepresentable(
            "params.reasoning_effort",
            "absent, but the body's reasoning.effort would record one",
        ));
    }
    let max_tokens = p.max_tokens.filter(|m| Some(*m) != implied_budget);
    let effort = p
        .reasoning_effort
        .as_ref()
        .filter(|e| Some(e.as_str()) != implied_effort.as_deref());
    let typed: [(&str, Option<Value>); 8] = [
        ("temperature", float(p.temperature, "temperature")?),
        ("top_p", float(p.top_p, "top_p")?),
        ("max_tokens", max_tokens.map(Value::from)),
        ("n", p.n.map(Value::from)),
        ("reasoning_effort", effort.map(|e| Value::String(e.clone()))),
        ("stream", p.stream.map(Value::Bool)),
        ("logprobs", p.logprobs.map(Value::Bool)),
        ("top_logprobs", p.top_logprobs.map(Value::from)),
    ];
    for (key, value) in typed {
        let Some(value) = value else { continue };
        if body.contains_key(key) {
            return Err(unrepresentable(
                format!("params.{key}"),
                "kept both typed and untyped",
            ));
        }
        body.insert(key.to_owned(), value);
    }
    Ok(())
}

fn float(x: Option<f64>, key: &str) -> Result<Option<Value>, DialectError> {
    match x {
        None => Ok(None),
        Some(x) => Number::from_f64(x)
            .map(|n| Some(Value::Number(n)))
            .ok_or_else(|| unrepresentable(format!("params.{key}"), "not a finite number")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_request;
    use moat_types::ContentPart;
    use proptest::prelude::*;
    use serde_json::json;

    /// The request `parse_request` gives for a body made from `r` on `endpoint`.
    fn canonical(endpoint: Endpoint, r: &Request) -> Request {
        Request {
            endpoint: Some(endpoint.path().to_owned()),
            params: Some(r.params.clone().unwrap_or_default()),
            ..r.clone()
        }
    }

    fn round_trip(endpoint: Endpoint, r: &Request) -> Result<Request, DialectError> {
        let body = request_body(endpoint, r)?;
        Ok(parse_request(endpoint, &body)?.request)
    }

    /// Parameters as `parse_request` types them (a record's own reader refuses an untyped
    /// value under a typed key, which the gateway keeps).
    fn typed(v: Value) -> Params {
        crate::request::params(v.as_object().unwrap(), &[])
    }

    fn text(role: &str, t: &str) -> Message {
        Message::text(role, t)
    }

    fn parts(role: &str, parts: &[(&str, Option<&str>)]) -> Message {
        Message {
            role: role.to_owned(),
            content: Some(Content::Parts(
                parts
                    .iter()
                    .map(|(k, t)| ContentPart {
                        kind: (*k).to_owned(),
                        text: t.map(str::to_owned),
                    })
                    .collect(),
            )),
        }
    }

    /// Records of every endpoint and shape the simulator and the gateway write.
    fn records() -> Vec<(Endpoint, Request)> {
        let params = |v: Value| Some(typed(v));
        let convo = vec![
            text("system", "Be brief."),
            parts("user", &[("text", Some("Hi")), ("image_url", None)]),
            Message {
                role: "assistant".into(),
                content: None,
            },
            text("tool", "42"),
        ];
        let req = |endpoint: Endpoint, messages: Vec<Message>, prompt: Option<&str>, p| Request {
            endpoint: Some(endpoint.path().to_owned()),
            model: Some("frontier-1".into()),
            messages,
            prompt: prompt.map(str::to_owned),
            params: p,
        };
        let all = json!({"temperature": 0.7, "top_p": 0.95, "max_tokens": 4096, "n": 1,
            "reasoning_effort": "high", "stream": true, "logprobs": false, "top_logprobs": 3,
            "tools": [{"type": "function"}], "seed": 7, "temperature_2": null});
        vec![
            (
                Endpoint::ChatCompletions,
                req(
                    Endpoint::ChatCompletions,
                    convo.clone(),
                    None,
                    params(all.clone()),
                ),
            ),
            (
                Endpoint::ChatCompletions,
                Request {
                    model: None,
                    params: None,
                    ..req(Endpoint::ChatCompletions, vec![], None, None)
                },
            ),
            (
                Endpoint::ChatCompletions,
                req(
                    Endpoint::ChatCompletions,
                    vec![text("user", "Q")],
                    None,
                    params(json!({"max_tokens": 900, "max_completion_tokens": 900})),
                ),
            ),
            (
                Endpoint::ChatCompletions,
                req(
                    Endpoint::ChatCompletions,
                    vec![text("user", "Q")],
                    None,
                    params(json!({"max_tokens": 500, "max_completion_tokens": 900,
                                  "temperature": "hot", "stream": null})),
                ),
            ),
            (
                Endpoint::Completions,
                req(
                    Endpoint::Completions,
                    vec![],
                    Some("Give a brief overview of the history of India."),
                    params(json!({"stream": true, "logprobs": 3})),
                ),
            ),
            (
                Endpoint::Responses,
                req(
                    Endpoint::Responses,
                    convo.clone(),
                    None,
                    params(all.clone()),
                ),
            ),
            (
                Endpoint::Responses,
                req(
                    Endpoint::Responses,
                    vec![text("system", "Be exact.")],
                    None,
                    params(json!({"max_tokens": 300, "max_output_tokens": 300,
                                  "reasoning_effort": "medium",
                                  "reasoning": {"effort": "medium", "summary": "auto"}})),
                ),
            ),
            (
                Endpoint::Responses,
                req(
                    Endpoint::Responses,
                    vec![
                        parts("system", &[("input_text", Some("S"))]),
                        text("user", "Q"),
                    ],
                    None,
                    params(json!({})),
                ),
            ),
            (
                Endpoint::Messages,
                req(
                    Endpoint::Messages,
                    vec![
                        parts("system", &[("text", Some("Sys"))]),
                        text("user", "Q"),
                        parts("assistant", &[("thinking", None), ("text", Some("A"))]),
                        parts(
                            "user",
                            &[("tool_result", Some("42")), ("tool_result", None)],
                        ),
                    ],
                    None,
                    params(json!({"max_tokens": 1024, "stream": false})),
                ),
            ),
            (
                Endpoint::Messages,
                req(
                    Endpoint::Messages,
                    vec![text("user", "Q"), text("system", "late system")],
                    None,
                    params(all),
                ),
            ),
        ]
    }

    #[test]
    fn records_of_every_endpoint_round_trip() {
        for (endpoint, r) in records() {
            assert_eq!(
                round_trip(endpoint, &r),
                Ok(canonical(endpoint, &r)),
                "{endpoint:?} {r:?}"
            );
        }
    }

    #[test]
    fn a_gateway_record_gives_back_the_clients_body() {
        for (endpoint, body) in [
            (
                Endpoint::ChatCompletions,
                json!({"model": "m", "messages": [{"role": "user", "content": "Q"}],
                       "max_completion_tokens": 900, "stream": true, "tools": []}),
            ),
            (
                Endpoint::Responses,
                json!({"model": "m", "instructions": "Be exact.", "input": [
                           {"role": "user", "content": "Q"}],
                       "max_output_tokens": 300, "reasoning": {"effort": "low"}}),
            ),
            (
                Endpoint::Messages,
                json!({"model": "m", "system": "S", "max_tokens": 64,
                       "messages": [{"role": "user", "content": "Q"}]}),
            ),
        ] {
            let r = parse_request(endpoint, &body).unwrap().request;
            assert_eq!(request_body(endpoint, &r), Ok(body));
        }
    }

    #[test]
    fn records_no_body_parses_into_are_refused_naming_the_field() {
        let base = Request {
            endpoint: None,
            model: Some("m".into()),
            messages: vec![text("user", "Q")],
            prompt: None,
            params: None,
        };
        let with_params = |v: Value| Request {
            params: Some(typed(v)),
            ..base.clone()
        };
        let at = |endpoint, r: &Request| match request_body(endpoint, r) {
            Err(DialectError::Unrepresentable { at, .. }) => at,
            other => panic!("{other:?}"),
        };
        let chat = Endpoint::ChatCompletions;
        assert_eq!(
            at(
                chat,
                &Request {
                    prompt: Some("p".into()),
                    ..base.clone()
                }
            ),
            "prompt"
        );
        assert_eq!(at(Endpoint::Completions, &base), "messages");
        assert_eq!(
            at(
                Endpoint::Completions,
                &Request {
                    messages: vec![],
                    ..base.clone()
                }
            ),
            "prompt"
        );
        assert_eq!(
            at(
                Endpoint::Messages,
                &Request {
                    messages: vec![Message {
                        role: "user".into(),
                        content: None
                    }],
                    ..base.clone()
                }
            ),
            "messages[0].content"
        );
        assert_eq!(
            at(chat, &with_params(json!({"messages": []}))),
            "params.messages"
        );
        assert_eq!(
            at(chat, &with_params(json!({"max_completion_tokens": 9}))),
            "params.max_tokens"
        );
        assert_eq!(
            at(chat, &with_params(json!({"reasoning": {"effort": "high"}}))),
            "params.reasoning_effort"
        );
        assert_eq!(
            at(chat, &with_params(json!({"stream": "yes"}))),
            "params.stream"
        );
        let mut p = Params {
            temperature: Some(f64::NAN),
            ..Params::default()
        };
        let nan = Request {
            params: Some(p.clone()),
            ..base.clone()
        };
        assert_eq!(at(chat, &nan), "params.temperature");
        p.temperature = Some(0.5);
        p.extra.insert("temperature".into(), json!("hot"));
        let both = Request {
            params: Some(p.clone()),
            ..base.clone()
        };
        assert_eq!(at(chat, &both), "params.temperature");
        p.temperature = None;
        p.extra.insert("temperature".into(), json!(0.5));
        let untyped = Request {
            params: Some(p),
            ..base.clone()
        };
        assert_eq!(at(chat, &untyped), "params.temperature");
    }

    // Property tests: bodies made of the pieces real clients send, and records made of the
    // pieces a record can hold, conflicting ones included.

    fn key() -> impl Strategy<Value = String> {
        prop::sample::select(vec![
            "temperature",
            "top_p",
            "max_tokens",
            "max_completion_tokens",
            "max_output_tokens",
            "n",
            "reasoning_effort",
            "reasoning",
            "stream",
            "logprobs",
            "top_logprobs",
            "tools",
            "seed",
            "model",
            "messages",
            "prompt",
            "input",
            "instructions",
            "system",
        ])
        .prop_map(str::to_owned)
    }

    fn scalar() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            (0u64..5000).prop_map(Value::from),
            (-3i64..0).prop_map(Value::from),
            (-10.0f64..10.0).prop_map(|x| json!(x)),
            prop::sample::select(vec!["low", "high", "auto"]).prop_map(|s| json!(s)),
        ]
    }

    fn value() -> impl Strategy<Value = Value> {
        scalar().prop_recursive(2, 8, 3, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                prop::collection::btree_map(
                    prop::sample::select(vec!["effort", "type", "text", "summary"]),
                    inner,
                    0..3
                )
                .prop_map(|m| json!(m)),
            ]
        })
    }

    fn part() -> impl Strategy<Value = Value> {
        (
            prop::sample::select(vec!["text", "input_text", "tool_result", "image_url"]),
            prop::option::of("[a-z ]{0,8}"),
            prop::option::of(prop_oneof![
                "[a-z]{0,4}".prop_map(Value::String),
                Just(json!([{"type": "text", "text": "x"}, {"type": "image"}])),
            ]),
        )
            .prop_map(|(kind, text, content)| {
                let mut o = Map::new();
                o.insert("type".into(), json!(kind));
                if let Some(t) = text {
                    o.insert("text".into(), json!(t));
                }
                if let Some(c) = content {
                    o.insert("content".into(), c);
                }
                Value::Object(o)
            })
    }

    fn content_value() -> impl Strategy<Value = Option<Value>> {
        prop::option::of(prop_oneof![
            Just(Value::Null),
            "[a-zA-Z ]{0,12}".prop_map(Value::String),
            prop::collection::vec(part(), 0..3).prop_map(Value::Array),
        ])
    }

    fn item() -> impl Strategy<Value = Value> {
        (
            prop::sample::select(vec!["system", "user", "assistant", "tool"]),
            content_value(),
            prop::sample::select(vec![
                None,
                Some("message"),
                Some("function_call_output"),
                Some("reasoning"),
            ]),
        )
            .prop_map(|(role, content, kind)| {
                let mut o = Map::new();
                o.insert("role".into(), json!(role));
                if let Some(c) = content {
                    o.insert("content".into(), c);
                }
                if let Some(k) = kind {
                    o.insert("type".into(), json!(k));
                    o.insert("output".into(), json!("out"));
                }
                Value::Object(o)
            })
    }

    fn endpoint() -> impl Strategy<Value = Endpoint> {
        prop::sample::select(Endpoint::ALL.to_vec())
    }

    fn body() -> impl Strategy<Value = Value> {
        (
            prop::collection::btree_map(key(), value(), 0..8),
            prop::option::of("[a-z-]{1,8}"),
            prop::collection::vec(item(), 0..4),
            prop_oneof![
                "[a-z ]{0,10}".prop_map(Value::String),
                Just(json!(["a", "b"])),
            ],
            content_value(),
        )
            .prop_map(|(params, model, items, prompt, system)| {
                let mut o: Map<String, Value> = params.into_iter().collect();
                if let Some(m) = model {
                    o.insert("model".into(), json!(m));
                }
                o.insert("messages".into(), Value::Array(items.clone()));
                o.insert("input".into(), Value::Array(items));
                o.insert("prompt".into(), prompt.clone());
                if let Some(s) = system {
                    o.insert("system".into(), s.clone());
                    o.insert("instructions".into(), s);
                }
                Value::Object(o)
            })
    }

    fn record_params() -> impl Strategy<Value = Option<Params>> {
        prop::option::of(
            (
                prop::option::of(-2.0f64..2.0),
                prop::option::of(0u64..5000),
                prop::option::of(prop::sample::select(vec!["low", "high"])),
                prop::option::of(any::<bool>()),
                prop::option::of(any::<bool>()),
                prop::collection::btree_map(key(), value(), 0..4),
            )
                .prop_map(
                    |(temperature, max_tokens, effort, stream, logprobs, extra)| Params {
                        temperature,
                        max_tokens,
                        reasoning_effort: effort.map(str::to_owned),
                        stream,
                        logprobs,
                        extra,
                        ..Params::default()
                    },
                ),
        )
    }

    fn record_message() -> impl Strategy<Value = Message> {
        (
            prop::sample::select(vec!["system", "user", "assistant", "tool"]),
            prop::option::of(prop_oneof![
                "[a-z ]{0,8}".prop_map(Content::Text),
                prop::collection::vec(
                    (
                        prop::sample::select(vec!["text", "tool_result", "image_url"]),
                        prop::option::of("[a-z]{0,4}")
                    )
                        .prop_map(|(k, text)| ContentPart {
                            kind: k.to_owned(),
                            text
                        }),
                    0..3
                )
                .prop_map(Content::Parts),
            ]),
        )
            .prop_map(|(role, content)| Message {
                role: role.to_owned(),
                content,
            })
    }

    fn record() -> impl Strategy<Value = Request> {
        (
            prop::option::of("[a-z-]{1,8}"),
            prop::collection::vec(record_message(), 0..4),
            prop::option::of("[a-z ]{0,8}"),
            record_params(),
        )
            .prop_map(|(model, messages, prompt, params)| Request {
                endpoint: None,
                model,
                messages,
                prompt,
                params,
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Whatever a body records as can be sent again and records the same.
        #[test]
        fn every_parsed_request_is_rebuilt(endpoint in endpoint(), body in body()) {
            if let Ok(facts) = parse_request(endpoint, &body) {
                let r = facts.request;
                prop_assert_eq!(round_trip(endpoint, &r), Ok(r.clone()));
            }
        }

        /// A rebuilt body, when there is one, records as the record it was built from.
        #[test]
        fn rebuilt_bodies_parse_back(endpoint in endpoint(), r in record()) {
            if let Ok(body) = request_body(endpoint, &r) {
                let back = parse_request(endpoint, &body).map(|f| f.request);
                prop_assert_eq!(back, Ok(canonical(endpoint, &r)));
            }
        }
    }
}

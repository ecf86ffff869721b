//! OpenAI-shaped replies: chat completions, legacy completions, the model list and error bodies.
//!
//! The shapes follow what the OpenAI API and vLLM send, closely enough for the official SDKs:
//! a `chat.completion` object or a stream of `chat.completion.chunk`s (a role chunk, reasoning
//! deltas, content deltas, a finish chunk, an optional usage chunk with empty `choices`, then
//! `[DONE]`). Serialisation goes through small borrowed structs rather than `serde_json::Value`,
//! because a zero-delay chat completion is the benchmark's hot path. The Responses API lives in
//! `responses`, Anthropic in `anthropic`.

use axum::http::StatusCode;
use serde::Serialize;

use crate::request::Plan;
use crate::sse::{done, frame, Frame, Role};
use crate::text::{
    answer_deltas, expected_content, expected_reasoning, reasoning_deltas, CREATED, SIGNATURE,
};
use crate::Reasoning;

/// `usage` as chat and completions report it.
#[derive(Serialize)]
struct Usage {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
    completion_tokens_details: CompletionDetails,
}

#[derive(Serialize)]
struct CompletionDetails {
    reasoning_tokens: u64,
}

impl Usage {
    fn of(plan: &Plan) -> Usage {
        let completion = plan.completion_tokens();
        Usage {
            prompt_tokens: plan.prompt_tokens,
            completion_tokens: completion,
            total_tokens: plan.prompt_tokens.saturating_add(completion),
            completion_tokens_details: CompletionDetails {
                reasoning_tokens: plan.reasoning_tokens(),
            },
        }
    }
}

/// One element of `reasoning_details`.
#[derive(Serialize)]
struct Detail<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    text: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    signature: Option<&'static str>,
    index: u32,
}

impl<'a> Detail<'a> {
    fn text(text: &'a str, signature: Option<&'static str>) -> [Detail<'a>; 1] {
        [Detail {
            kind: "reasoning.text",
            text,
            signature,
            index: 0,
        }]
    }
}

/// A message or a delta: every field optional, absent fields left out.
#[derive(Serialize, Default)]
struct Message<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_details: Option<[Detail<'a>; 1]>,
}

impl<'a> Message<'a> {
    /// A message or delta carrying `text` as reasoning in `dialect`'s own field. `last` marks the
    /// final reasoning delta, which carries the `reasoning_details` signature.
    fn reasoning(dialect: Reasoning, text: &'a str, last: bool) -> Message<'a> {
        let mut m = Message::default();
        match dialect {
            Reasoning::ReasoningContent => m.reasoning_content = Some(text),
            Reasoning::Reasoning => m.reasoning = Some(text),
            Reasoning::ReasoningDetails => {
                m.reasoning_details = Some(Detail::text(text, last.then_some(SIGNATURE)));
            }
            // Inline and absent reasoning have no field of their own.
            Reasoning::Plain | Reasoning::Think => {}
        }
        m
    }
}

#[derive(Serialize)]
struct ChatCompletion<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: [ChatChoice<'a>; 1],
    usage: Usage,
}

#[derive(Serialize)]
struct ChatChoice<'a> {
    index: u32,
    message: FullMessage<'a>,
    logprobs: Option<()>,
    finish_reason: &'static str,
}

/// The non-streamed message: the reasoning fields plus the fields the OpenAI API always sends.
#[derive(Serialize)]
struct FullMessage<'a> {
    role: &'static str,
    content: &'a str,
    refusal: Option<()>,
    #[serde(flatten)]
    reasoning: Message<'a>,
}

#[derive(Serialize)]
struct ChatChunk<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: &'a [ChunkChoice<'a>],
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Usage>,
}

#[derive(Serialize)]
struct ChunkChoice<'a> {
    index: u32,
    delta: Message<'a>,
    logprobs: Option<()>,
    finish_reason: Option<&'static str>,
}

/// The content of a chat or completions reply: the answer, preceded by `<think>` in the think
/// dialect.
fn full_content(plan: &Plan) -> String {
    if plan.reasoning == Reasoning::Think {
        crate::text::expected_think_content(plan.inputs, plan.chunks)
    } else {
        expected_content(plan.inputs, plan.chunks)
    }
}

/// The reply's deltas in order, each tagged with whether it is reasoning in a separate field.
/// Think-dialect reasoning becomes content deltas wrapped in the tags.
fn deltas(plan: &Plan, separate_reasoning: bool) -> Vec<(bool, String)> {
    let mut out = Vec::with_capacity(plan.chunks * 2);
    match plan.reasoning {
        Reasoning::Plain => {}
        Reasoning::Think => {
            let mut reasoning = reasoning_deltas(plan.inputs, plan.chunks);
            if let Some(first) = reasoning.first_mut() {
                first.insert_str(0, "<think>\n");
            }
            if let Some(last) = reasoning.last_mut() {
                last.push_str("\n</think>\n\n");
            }
            out.extend(reasoning.into_iter().map(|d| (false, d)));
        }
        _ if separate_reasoning => {
            out.extend(
                reasoning_deltas(plan.inputs, plan.chunks)
                    .into_iter()
                    .map(|d| (true, d)),
            );
        }
        _ => {}
    }
    out.extend(
        answer_deltas(plan.inputs, plan.chunks)
            .into_iter()
            .map(|d| (false, d)),
    );
    out
}

/// The id of a chat completion.
fn choice<'a>(delta: Message<'a>, finish_reason: Option<&'static str>) -> ChunkChoice<'a> {
    ChunkChoice {
        index: 0,
        delta,
        logprobs: None,
        finish_reason,
    }
}

fn chat_id(plan: &Plan) -> String {
    format!("chatcmpl-mock{}", plan.seq)
}

/// A non-streamed chat completion, serialised.
pub(crate) fn chat_json(plan: &Plan) -> Result<Vec<u8>, serde_json::Error> {
    let id = chat_id(plan);
    let content = full_content(plan);
    let reasoning_text = if plan.reasoning.separate() {
        expected_reasoning(plan.inputs, plan.chunks)
    } else {
        String::new()
    };
    let body = ChatCompletion {
        id: &id,
        object: "chat.completion",
        created: CREATED,
        model: &plan.model,
        choices: [ChatChoice {
            index: 0,
            message: FullMessage {
                role: "assistant",
                content: &content,
                refusal: None,
                reasoning: Message::reasoning(plan.reasoning, &reasoning_text, true),
            },
            logprobs: None,
            finish_reason: "stop",
        }],
        usage: Usage::of(plan),
    };
    serde_json::to_vec(&body)
}

/// A streamed chat completion, as frames.
pub(crate) fn chat_frames(plan: &Plan) -> Result<Vec<Frame>, serde_json::Error> {
    let id = chat_id(plan);
    let deltas = deltas(plan, true);
    let mut frames = Vec::with_capacity(deltas.len() + 4);
    let chunk = |choice: Option<ChunkChoice<'_>>, usage: Option<Usage>, role: Role| {
        let choices: &[ChunkChoice<'_>] = match &choice {
            Some(c) => std::slice::from_ref(c),
            None => &[],
        };
        frame(
            None,
            &ChatChunk {
                id: &id,
                object: "chat.completion.chunk",
                created: CREATED,
                model: &plan.model,
                choices,
                usage,
            },
            role,
        )
    };
    frames.push(chunk(
        Some(choice(
            Message {
                role: Some("assistant"),
                content: Some(""),
                ..Message::default()
            },
            None,
        )),
        None,
        Role::Frame,
    )?);
    let reasoning_count = deltas.iter().filter(|(r, _)| *r).count();
    for (i, (is_reasoning, text)) in deltas.iter().enumerate() {
        let delta = if *is_reasoning {
            Message::reasoning(plan.reasoning, text, i + 1 == reasoning_count)
        } else {
            Message {
                content: Some(text),
                ..Message::default()
            }
        };
        frames.push(chunk(Some(choice(delta, None)), None, Role::Delta)?);
    }
    frames.push(chunk(
        Some(choice(Message::default(), Some("stop"))),
        None,
        Role::Tail,
    )?);
    if plan.include_usage {
        frames.push(chunk(None, Some(Usage::of(plan)), Role::Tail)?);
    }
    frames.push(done());
    Ok(frames)
}

#[derive(Serialize)]
struct TextCompletion<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: &'a [TextChoice<'a>],
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Usage>,
}

#[derive(Serialize)]
struct TextChoice<'a> {
    text: &'a str,
    index: u32,
    logprobs: Option<()>,
    finish_reason: Option<&'static str>,
}

fn completion_id(plan: &Plan) -> String {
    format!("cmpl-mock{}", plan.seq)
}

/// A non-streamed legacy completion, serialised. Only the think dialect shows reasoning here:
/// the legacy API has no reasoning field.
pub(crate) fn completion_json(plan: &Plan) -> Result<Vec<u8>, serde_json::Error> {
    let id = completion_id(plan);
    let text = full_content(plan);
    serde_json::to_vec(&TextCompletion {
        id: &id,
        object: "text_completion",
        created: CREATED,
        model: &plan.model,
        choices: &[TextChoice {
            text: &text,
            index: 0,
            logprobs: None,
            finish_reason: Some("stop"),
        }],
        usage: Some(completion_usage(plan)),
    })
}

/// Usage for the legacy API, which reports no reasoning unless it is inline.
fn completion_usage(plan: &Plan) -> Usage {
    let mut usage = Usage::of(plan);
    if plan.reasoning.separate() {
        usage.completion_tokens = plan.chunks as u64;
        usage.total_tokens = plan.prompt_tokens.saturating_add(usage.completion_tokens);
        usage.completion_tokens_details.reasoning_tokens = 0;
    }
    usage
}

/// A streamed legacy completion, as frames.
pub(crate) fn completion_frames(plan: &Plan) -> Result<Vec<Frame>, serde_json::Error> {
    let id = completion_id(plan);
    let deltas = deltas(plan, false);
    let mut frames = Vec::with_capacity(deltas.len() + 3);
    let chunk = |text: Option<&str>, finish: Option<&'static str>, usage: Option<Usage>, role| {
        let choice = text.map(|text| TextChoice {
            text,
            index: 0,
            logprobs: None,
            finish_reason: finish,
        });
        let choices: &[TextChoice<'_>] = match &choice {
            Some(c) => std::slice::from_ref(c),
            None => &[],
        };
        frame(
            None,
            &TextCompletion {
                id: &id,
                object: "text_completion",
                created: CREATED,
                model: &plan.model,
                choices,
                usage,
            },
            role,
        )
    };
    for (_, text) in &deltas {
        frames.push(chunk(Some(text), None, None, Role::Delta)?);
    }
    frames.push(chunk(Some(""), Some("stop"), None, Role::Tail)?);
    if plan.include_usage {
        frames.push(chunk(None, None, Some(completion_usage(plan)), Role::Tail)?);
    }
    frames.push(done());
    Ok(frames)
}

/// The `/v1/models` list: one model per reasoning dialect. Built once per router.
pub(crate) fn models_json() -> Result<Vec<u8>, serde_json::Error> {
    #[derive(Serialize)]
    struct Model {
        id: &'static str,
        object: &'static str,
        created: u64,
        owned_by: &'static str,
    }
    #[derive(Serialize)]
    struct List {
        object: &'static str,
        data: Vec<Model>,
    }
    serde_json::to_vec(&List {
        object: "list",
        data: Reasoning::ALL
            .into_iter()
            .map(|r| Model {
                id: r.model(),
                object: "model",
                created: CREATED,
                owned_by: "moat-testkit",
            })
            .collect(),
    })
}

/// An OpenAI-shaped error body: `{"error": {"message", "type", "param", "code"}}`.
pub(crate) fn error_json(status: StatusCode, message: &str) -> Result<Vec<u8>, serde_json::Error> {
    #[derive(Serialize)]
    struct Error<'a> {
        message: &'a str,
        #[serde(rename = "type")]
        kind: &'static str,
        param: Option<()>,
        code: Option<&'static str>,
    }
    #[derive(Serialize)]
    struct Envelope<'a> {
        error: Error<'a>,
    }
    let (kind, code) = match status.as_u16() {
        429 => ("requests", Some("rate_limit_exceeded")),
        401 => ("invalid_request_error", Some("invalid_api_key")),
        404 => ("invalid_request_error", Some("not_found")),
        400..=499 => ("invalid_request_error", None),
        _ => ("server_error", None),
    };
    serde_json::to_vec(&Envelope {
        error: Error {
            message,
            kind,
            param: None,
            code,
        },
    })
}

//! Summaries of withheld reasoning, for `summarize_reasoning`: the reasoning is sent to a
//! configured OpenAI-compatible chat endpoint (a small, cheap model) and its answer replaces
//! the reasoning the client sees. A summary that fails or takes too long gives way to the
//! rule's fallback; the request is never failed for it.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method};
use http_body_util::{BodyExt, Limited};

use crate::upstream::Upstream;

/// Largest reasoning sent for a summary (bytes); longer reasoning is cut at a character
/// boundary, which a summary of the gist tolerates.
const MAX_INPUT: usize = 32 * 1024;

/// Largest summary response read.
const MAX_RESPONSE: usize = 256 * 1024;

const INSTRUCTION: &str = "Summarize the following reasoning in at most three sentences. \
State what was concluded and the main idea, without reproducing intermediate steps, \
calculations or chains of argument.";

/// The summarizer endpoint.
#[derive(Debug, Clone)]
pub struct Summarizer {
    upstream: Upstream,
    model: String,
    timeout: Duration,
}

impl Summarizer {
    /// A summarizer at `base` (`http://host:port`) asking `model`.
    pub fn new(
        base: &str,
        model: &str,
        key: Option<&str>,
        timeout: Duration,
    ) -> Result<Self, String> {
        Ok(Summarizer {
            upstream: Upstream::new(base, key, timeout)?,
            model: model.to_owned(),
            timeout,
        })
    }

    /// A summary of `reasoning`, or `None` when the endpoint failed or timed out.
    pub async fn summarize(&self, reasoning: &str) -> Option<String> {
        let mut end = reasoning.len().min(MAX_INPUT);
        while !reasoning.is_char_boundary(end) {
            end -= 1;
        }
        let body = serde_json::json!({
            "model": self.model,
            "messages": [
                {"role": "system", "content": INSTRUCTION},
                {"role": "user", "content": &reasoning[..end]},
            ],
            "max_tokens": 200,
            "temperature": 0,
        });
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        let call = async {
            let resp = self
                .upstream
                .send(
                    Method::POST,
                    "/v1/chat/completions",
                    &headers,
                    Bytes::from(body.to_string()),
                )
                .await
                .ok()?;
            if !resp.status().is_success() {
                return None;
            }
            let bytes = Limited::new(resp.into_body(), MAX_RESPONSE)
                .collect()
                .await
                .ok()?
                .to_bytes();
            let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
            let text = v
                .pointer("/choices/0/message/content")?
                .as_str()?
                .trim()
                .to_owned();
            (!text.is_empty()).then_some(text)
        };
        tokio::time::timeout(self.timeout, call)
            .await
            .ok()
            .flatten()
    }
}

//! The reasoning dialects the mock can speak, and how a request picks one.
//!
//! Real upstreams disagree on where a model's reasoning goes: vLLM and DeepSeek use
//! `reasoning_content`, OpenRouter and newer vLLM use `reasoning` or `reasoning_details`, and
//! llama.cpp without a reasoning parser leaves `<think>...</think>` inline in the content. The
//! gateway must recognise every one of them, so the mock can produce every one of them. This module
//! only names the variants and parses their names; the endpoint modules decide what each variant
//! looks like on the wire.

use std::fmt;
use std::str::FromStr;

use crate::MockError;

/// Where a reply puts the model's reasoning.
///
/// | variant | chat completions | completions | Responses | Anthropic messages |
/// |---|---|---|---|---|
/// | `Plain` | none | none | no reasoning item | no thinking block |
/// | `ReasoningContent` | `message.reasoning_content` | none | reasoning item | thinking block |
/// | `Reasoning` | `message.reasoning` | none | reasoning item | thinking block |
/// | `ReasoningDetails` | `message.reasoning_details` | none | reasoning item | thinking block |
/// | `Think` | `<think>...</think>` before the content | inline | inline | inline |
///
/// A request picks its variant by model name (`mock-plain`, `mock-reasoning-content`,
/// `mock-reasoning`, `mock-reasoning-details`, `mock-think`, see [`Reasoning::model`]), by the
/// `x-mock-reasoning` header (which wins over the model name), or else gets
/// [`MockConfig::reasoning`](crate::MockConfig::reasoning).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Reasoning {
    /// No reasoning at all, like a non-reasoning model.
    #[default]
    Plain,
    /// `reasoning_content` (vLLM's reasoning parsers, DeepSeek, Qwen through most servers).
    ReasoningContent,
    /// `reasoning` (OpenRouter, newer vLLM).
    Reasoning,
    /// `reasoning_details`: `[{"type": "reasoning.text", "text", "signature"}]` (OpenRouter).
    ReasoningDetails,
    /// `<think>...</think>` inline at the start of the content (llama.cpp without a parser).
    Think,
}

impl Reasoning {
    /// Every variant, in the order `/v1/models` lists them.
    pub const ALL: [Reasoning; 5] = [
        Reasoning::Plain,
        Reasoning::ReasoningContent,
        Reasoning::Reasoning,
        Reasoning::ReasoningDetails,
        Reasoning::Think,
    ];

    /// The variant's short name, as the `--reasoning` flag and the `x-mock-reasoning` header take
    /// it: `plain`, `reasoning-content`, `reasoning`, `reasoning-details` or `think`.
    pub fn name(self) -> &'static str {
        match self {
            Reasoning::Plain => "plain",
            Reasoning::ReasoningContent => "reasoning-content",
            Reasoning::Reasoning => "reasoning",
            Reasoning::ReasoningDetails => "reasoning-details",
            Reasoning::Think => "think",
        }
    }

    /// The model name that selects this variant: `mock-` followed by [`Reasoning::name`].
    pub fn model(self) -> &'static str {
        match self {
            Reasoning::Plain => "mock-plain",
            Reasoning::ReasoningContent => "mock-reasoning-content",
            Reasoning::Reasoning => "mock-reasoning",
            Reasoning::ReasoningDetails => "mock-reasoning-details",
            Reasoning::Think => "mock-think",
        }
    }

    /// Parses a short name; underscores count as hyphens (`reasoning_content` works) and case is
    /// ignored. Returns `None` for anything else.
    pub fn from_name(name: &str) -> Option<Reasoning> {
        Reasoning::ALL.into_iter().find(|variant| {
            let expected = variant.name();
            expected.len() == name.len()
                && expected
                    .bytes()
                    .zip(name.bytes())
                    .all(|(e, n)| e == normalise(n))
        })
    }

    /// The variant a model name selects, if it is one of the mock's model names. A provider
    /// prefix (`openrouter/mock-think`) is ignored, because routers often keep one.
    pub fn from_model(model: &str) -> Option<Reasoning> {
        let base = model.rsplit('/').next().unwrap_or(model);
        let name = base.strip_prefix("mock-")?;
        Reasoning::from_name(name)
    }

    /// Whether the reasoning travels in a field or block of its own rather than inline or not at
    /// all.
    pub(crate) fn separate(self) -> bool {
        matches!(
            self,
            Reasoning::ReasoningContent | Reasoning::Reasoning | Reasoning::ReasoningDetails
        )
    }

    /// Whether the reply carries any reasoning.
    pub(crate) fn any(self) -> bool {
        self != Reasoning::Plain
    }
}

/// Lower-cases ASCII and maps `_` to `-`, so header values are forgiving about spelling.
fn normalise(byte: u8) -> u8 {
    match byte {
        b'_' => b'-',
        other => other.to_ascii_lowercase(),
    }
}

impl fmt::Display for Reasoning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Reasoning {
    type Err = MockError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reasoning::from_name(s).ok_or_else(|| MockError::UnknownReasoning {
            // The name comes from a flag or a header; keep the error message short whatever it is.
            name: s.chars().take(64).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_models_round_trip() {
        for variant in Reasoning::ALL {
            assert_eq!(Reasoning::from_name(variant.name()), Some(variant));
            assert_eq!(Reasoning::from_model(variant.model()), Some(variant));
            assert_eq!(variant.to_string().parse::<Reasoning>().ok(), Some(variant));
        }
    }

    #[test]
    fn names_accept_underscores_and_case() {
        assert_eq!(
            Reasoning::from_name("Reasoning_Content"),
            Some(Reasoning::ReasoningContent)
        );
        assert_eq!(
            Reasoning::from_name("REASONING_details"),
            Some(Reasoning::ReasoningDetails)
        );
    }

    #[test]
    fn unknown_names_are_rejected() {
        assert_eq!(Reasoning::from_name("thinking"), None);
        assert_eq!(Reasoning::from_name(""), None);
        assert_eq!(Reasoning::from_model("gpt-4o"), None);
        assert_eq!(Reasoning::from_model("mock-"), None);
        assert_eq!(Reasoning::from_model("mock-unknown"), None);
        let err = "x".repeat(500).parse::<Reasoning>();
        assert!(matches!(err, Err(MockError::UnknownReasoning { ref name }) if name.len() == 64));
    }

    #[test]
    fn provider_prefix_is_ignored() {
        assert_eq!(
            Reasoning::from_model("openrouter/mock-think"),
            Some(Reasoning::Think)
        );
    }
}

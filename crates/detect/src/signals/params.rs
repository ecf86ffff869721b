//! Sampling parameters that harvesting favours: huge output budgets, maximal reasoning effort,
//! several completions per prompt, token log-probabilities (soft labels for distillation).
//!
//! Flags only; each has ordinary legitimate uses, and what they mean together with volume and
//! content is decided downstream. Unknown parameter spellings that other APIs use for the same
//! thing (`max_completion_tokens`, `reasoning: {effort}`) are read from `Params::extra`.

use moat_types::Params;
use serde::{Deserialize, Serialize};

/// An output budget at or above this many tokens counts as large.
pub const LARGE_BUDGET_TOKENS: u64 = 8192;

/// Harvest-favoured parameters present on one request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct HarvestParams {
    /// `max_tokens` (or `max_completion_tokens`, `max_output_tokens`) ≥ 8192.
    pub large_budget: bool,
    /// Reasoning effort `high`, `xhigh` or `max`.
    pub high_effort: bool,
    /// More than one completion requested (`n > 1`).
    pub multi_n: bool,
    /// Log-probabilities requested (`logprobs: true` or `top_logprobs > 0`).
    pub logprobs: bool,
}

impl HarvestParams {
    /// Reads the flags from a request's parameters; all false when there are none.
    pub fn from_params(params: Option<&Params>) -> Self {
        let Some(p) = params else {
            return HarvestParams::default();
        };
        let extra_u64 = |k: &str| p.extra.get(k).and_then(serde_json::Value::as_u64);
        let budget = [
            p.max_tokens,
            extra_u64("max_completion_tokens"),
            extra_u64("max_output_tokens"),
        ]
        .into_iter()
        .flatten()
        .max();
        let nested_effort = p
            .extra
            .get("reasoning")
            .and_then(|r| r.get("effort"))
            .and_then(serde_json::Value::as_str);
        let high_effort = [p.reasoning_effort.as_deref(), nested_effort]
            .into_iter()
            .flatten()
            .any(is_high_effort);
        HarvestParams {
            large_budget: budget.is_some_and(|b| b >= LARGE_BUDGET_TOKENS),
            high_effort,
            multi_n: p.n.is_some_and(|n| n > 1),
            logprobs: p.logprobs == Some(true) || p.top_logprobs.is_some_and(|t| t > 0),
        }
    }

    /// Whether any flag is set.
    pub fn any(self) -> bool {
        self.count() > 0
    }

    /// Number of flags set (0..=4).
    pub fn count(self) -> u32 {
        u32::from(self.large_budget)
            + u32::from(self.high_effort)
            + u32::from(self.multi_n)
            + u32::from(self.logprobs)
    }
}

fn is_high_effort(e: &str) -> bool {
    let e = e.trim();
    ["high", "xhigh", "max", "maximum"]
        .iter()
        .any(|h| e.eq_ignore_ascii_case(h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn none_or_default_sets_nothing() {
        assert_eq!(HarvestParams::from_params(None), HarvestParams::default());
        assert!(!HarvestParams::from_params(Some(&Params::default())).any());
    }

    #[test]
    fn each_flag() {
        let p = Params {
            max_tokens: Some(8192),
            n: Some(4),
            reasoning_effort: Some("High".into()),
            top_logprobs: Some(5),
            ..Params::default()
        };
        assert_eq!(HarvestParams::from_params(Some(&p)).count(), 4);
        let q = Params {
            max_tokens: Some(8191),
            n: Some(1),
            reasoning_effort: Some("medium".into()),
            logprobs: Some(false),
            ..Params::default()
        };
        assert!(!HarvestParams::from_params(Some(&q)).any());
    }

    #[test]
    fn other_api_spellings() {
        let p: Params = serde_json::from_str(
            r#"{"max_completion_tokens": 32000, "reasoning": {"effort": "xhigh"}}"#,
        )
        .unwrap();
        let h = HarvestParams::from_params(Some(&p));
        assert!(h.large_budget && h.high_effort);
    }
}

//! What a matching rule tells the gateway to do, as plain data.
//!
//! [`Actions`] is the validated, combined form of a rule's `action` list and its parameters. It
//! is built once at load time and handed out by reference on every evaluation. This module does
//! not enforce anything (the gateway throttles, delays, blocks and rewrites) and does not parse
//! TOML (see `policy`).

use std::fmt;

/// The actions of one rule, or of the policy's default.
///
/// `Actions::default()` is `allow`: nothing blocked, throttled or delayed, reasoning passed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Actions {
    /// Refuse the request with this status and message; stands alone.
    pub block: Option<Block>,
    /// Apply a rate budget.
    pub throttle: Option<Throttle>,
    /// Delay the response by this many milliseconds (1 to 60 000).
    pub tarpit_ms: Option<u64>,
    /// What to do with the model's reasoning in the response.
    pub reasoning: ReasoningAction,
    /// The `shadow` action: allow, but mark the decision as shadow (score and record only).
    pub shadow: bool,
}

/// Parameters of the `block` action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// HTTP status to answer with, 400 to 599 (default 403).
    pub status: u16,
    /// Message shown to the client.
    pub message: String,
}

/// Parameters of the `throttle` action; at least one budget is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttle {
    /// Requests allowed per minute.
    pub requests_per_minute: Option<u32>,
    /// Tokens allowed per minute.
    pub tokens_per_minute: Option<u64>,
    /// Whose budget is charged.
    pub scope: Scope,
}

/// Whose budget a throttle charges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scope {
    /// Each account has its own budget.
    #[default]
    Account,
    /// All members of the account's campaign share one budget; an account with no campaign
    /// falls back to its own.
    Campaign,
}

/// What to do with the reasoning part of a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReasoningAction {
    /// Pass reasoning through unchanged.
    #[default]
    Pass,
    /// Remove reasoning (`withhold_reasoning`).
    Withhold,
    /// Replace reasoning by a summary (`summarize_reasoning`).
    Summarize {
        /// What to do when the summarizer fails.
        fallback: SummaryFallback,
    },
}

/// What the gateway does when summarizing reasoning fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SummaryFallback {
    /// Remove the reasoning (`withhold_reasoning`, the default): fail closed.
    #[default]
    Withhold,
    /// Pass the reasoning unchanged (`allow`): fail open.
    Allow,
}

impl Scope {
    /// The name used in the rule file: `account` or `campaign`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Account => "account",
            Scope::Campaign => "campaign",
        }
    }
}

impl SummaryFallback {
    /// The name used in the rule file: `withhold_reasoning` or `allow`.
    pub fn as_str(self) -> &'static str {
        match self {
            SummaryFallback::Withhold => "withhold_reasoning",
            SummaryFallback::Allow => "allow",
        }
    }
}

impl Actions {
    /// The action names in canonical order; also the order of [`Actions::names`] and the
    /// precedence of [`Actions::kind`].
    pub const ALL_NAMES: [&'static str; 7] = [
        "block",
        "throttle",
        "tarpit",
        "summarize_reasoning",
        "withhold_reasoning",
        "shadow",
        "allow",
    ];

    /// One stable label for metrics: the most severe action present, in the order of
    /// [`Actions::ALL_NAMES`] (`block` first, `allow` when nothing else applies).
    pub fn kind(&self) -> &'static str {
        self.names().next().unwrap_or("allow")
    }

    /// Every action present, in canonical order, without allocating; `allow` alone when the
    /// actions do nothing.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        let nothing = self.block.is_none()
            && self.throttle.is_none()
            && self.tarpit_ms.is_none()
            && self.reasoning == ReasoningAction::Pass
            && !self.shadow;
        let present = [
            self.block.is_some(),
            self.throttle.is_some(),
            self.tarpit_ms.is_some(),
            matches!(self.reasoning, ReasoningAction::Summarize { .. }),
            self.reasoning == ReasoningAction::Withhold,
            self.shadow,
            nothing,
        ];
        Self::ALL_NAMES
            .into_iter()
            .zip(present)
            .filter_map(|(name, on)| on.then_some(name))
    }

    /// Whether the gateway has to change anything about the request or response: false for
    /// `allow` and `shadow`.
    pub fn enforces(&self) -> bool {
        self.block.is_some()
            || self.throttle.is_some()
            || self.tarpit_ms.is_some()
            || self.reasoning != ReasoningAction::Pass
    }
}

/// Formats the names joined by `+`, e.g. `throttle+withhold_reasoning`: a short, stable string
/// for records.
impl fmt::Display for Actions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, name) in self.names().enumerate() {
            if i > 0 {
                f.write_str("+")?;
            }
            f.write_str(name)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_allow() {
        let a = Actions::default();
        assert_eq!(a.kind(), "allow");
        assert_eq!(a.to_string(), "allow");
        assert!(!a.enforces());
    }

    #[test]
    fn kind_is_the_most_severe_and_names_are_canonical() {
        let a = Actions {
            throttle: Some(Throttle {
                requests_per_minute: Some(1),
                tokens_per_minute: None,
                scope: Scope::Account,
            }),
            tarpit_ms: Some(5),
            reasoning: ReasoningAction::Withhold,
            ..Actions::default()
        };
        assert_eq!(a.kind(), "throttle");
        assert_eq!(a.to_string(), "throttle+tarpit+withhold_reasoning");
        assert!(a.enforces());
        let s = Actions {
            shadow: true,
            ..Actions::default()
        };
        assert_eq!(s.kind(), "shadow");
        assert_eq!(s.names().collect::<Vec<_>>(), ["shadow"]);
        assert!(!s.enforces());
        let sum = Actions {
            reasoning: ReasoningAction::Summarize {
                fallback: SummaryFallback::Allow,
            },
            ..Actions::default()
        };
        assert_eq!(sum.kind(), "summarize_reasoning");
    }
}

//! Moat's policy language: the ordered TOML rule file that tells the gateway what to do with
//! each request, given what the detection engine and the gateway know about it.
//!
//! This crate is pure: no IO, no clock, no randomness. [`Policy::parse`] validates a file once
//! (reporting the file line and column of any problem), and [`Policy::evaluate`] runs on every
//! request over borrowed [`Facts`] without allocating in the common case. It does not read or
//! watch files, keep rate budgets, sleep, or rewrite responses: the gateway does all of that
//! with the [`Actions`] it gets back.
//!
//! The file format and the expression language are documented below (this is POLICY.md).
//!
#![doc = include_str!("../POLICY.md")]

mod actions;
mod error;
mod expr;
mod facts;
mod fields;
mod policy;

pub use actions::{Actions, Block, ReasoningAction, Scope, SummaryFallback, Throttle};
pub use error::PolicyError;
pub use facts::{AccountFacts, CampaignFacts, ClientFacts, Facts, IntelFacts, RequestFacts};
pub use policy::{
    Decision, Matched, Mode, Policy, RuleSummary, Shadowed, MAX_DELAY_MS, MAX_MESSAGE_BYTES,
    MAX_NAME_CHARS, MAX_RULES,
};

/// Every field a `when` expression can read, with its type name (`number`, `string`, `bool`,
/// `string list`, `ip address`), in documentation order; `attr.<name>` is not listed.
pub fn fields() -> impl Iterator<Item = (&'static str, &'static str)> {
    fields::FIELDS.iter().map(|(n, f)| (*n, f.type_name()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The gateway shares one policy across request tasks and swaps it on reload.
    #[test]
    fn policy_is_clone_send_sync_debug() {
        fn assert_shareable<T: Clone + Send + Sync + std::fmt::Debug + 'static>() {}
        assert_shareable::<Policy>();
        assert_shareable::<PolicyError>();
        assert_shareable::<Actions>();
    }

    #[test]
    fn fields_lists_every_documented_type() {
        let types: Vec<_> = fields().map(|(_, t)| t).collect();
        for t in ["number", "string", "bool", "string list", "ip address"] {
            assert!(types.contains(&t), "{t}");
        }
        assert_eq!(fields().count(), 29);
    }
}

//! Labelled traffic simulator: turns real prompt corpora (or a small built-in corpus) and the
//! public facts about distillation campaigns into exchange-log v1 traffic, an accounts side file
//! and ground-truth labels.
//!
//! Deterministic: the same scenario, seed and corpus give the same bytes. Streaming: exchanges
//! are produced in time order from per-account generators merged through a heap, so memory is
//! bounded by the number of accounts, not the number of exchanges.
//!
//! Not a detector, and never read by one: labels exist for evaluation only.

pub mod corpus;
mod error;

pub use corpus::{Category, Corpus, Problem};
pub use error::SimError;

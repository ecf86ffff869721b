//! Moat's detection core: per-request signals, per-account state and cross-account campaign
//! discovery over a stream of exchanges.
//!
//! Pure and deterministic: no IO, no clock (time is the `ts` of the exchanges fed in), no
//! randomness; the same exchanges in the same order give the same verdicts. Reading files and
//! writing detections belong to the callers (`moat analyze`, later the gateway).
//!
//! Data flow: [`Engine::observe`] computes the request's [`signals`], folds them into the
//! account's state (`account`), records the request's shareable attributes (prompt-wrapper
//! fingerprints from `template`, system prompt, address block; payment and sign-up window
//! from the accounts side file) in a bounded index (`index`), and once per discovery interval
//! of stream time links candidate accounts through attributes shared mostly by candidates
//! (`discover`) into campaigns. [`Engine::finish`] writes the detections.

mod account;
mod config;
mod discover;
mod engine;
mod features;
mod hash;
mod index;
mod reasons;
pub mod signals;
pub mod template;

pub use config::Config;
pub use engine::{AccountStatus, Engine, Stats, Verdict};
pub use features::{DecodeError, Features};
pub use reasons::{Reason, Reasons};

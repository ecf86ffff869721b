//! Labelled traffic simulator: turns real prompt corpora (or a small built-in corpus) and the
//! public facts about distillation campaigns into exchange-log v1 traffic, an accounts side file
//! and ground-truth labels.
//!
//! Deterministic: the same scenario, seed and corpus give the same bytes. Streaming: exchanges
//! are produced in time order from per-account generators merged through a heap, so memory is
//! bounded by the number of accounts, not the number of exchanges.
//!
//! Data flow: [`Scenario`] (TOML) → `world` (accounts, campaigns) → [`Simulation`] (the event
//! loop, an iterator of exchanges) → [`run`] (files). Not a detector, and never read by one:
//! labels exist for evaluation only.

mod call;
pub mod corpus;
mod engine;
mod error;
mod ids;
mod infra;
mod output;
mod population;
mod rng;
mod scenario;
mod summary;
mod text;
mod timing;
mod world;

pub use corpus::{Category, Corpus, Problem};
pub use engine::{SimOptions, SimOutput, Simulation};
pub use error::SimError;
pub use output::{run, TrafficWriter, GZIP_LEVEL};
pub use scenario::{Benign, BenignHeavy, Campaign, Jailbreak, Model, Scenario, Schedule, Tactic};
pub use summary::{CampaignSummary, SimSummary};

//! Moat's text watermarks, and the statistics that prove lineage.
//!
//! One keyed pseudo-random function ([`Prf`]) over (key, previous `h` tokens, token) serves
//! every scheme: the KGW soft watermark ([`Kgw`], a logits processor) and Gumbel-max sampling
//! ([`Gumbel`]). A [`Scorer`] tests texts — or, for an open suspect model, its predictions —
//! against a key with exact log-space p-values after removing repeated tuples, tuples of our
//! own prompts, and optionally everything outside a pre-registered filter. [`attribute`]
//! tests several campaign keys at once with Holm's correction, calibrated against keys that
//! were never served.
//!
//! The normative definition is `SCHEME.md` beside this crate; the Python package in
//! `python/` implements the same scheme for inference engines and is checked against vectors
//! this crate writes ([`vectors`]).
//!
//! [`hook`] is what the gateway uses to name, in a request header, the key the inference engine
//! should watermark a response with.
//!
//! Pure and deterministic: no IO, no clock, no randomness of its own (keys come from the
//! caller).

mod attribute;
mod error;
pub mod hook;
mod key;
mod prf;
mod scheme;
mod score;
pub mod stats;
pub mod vectors;

pub use attribute::{attribute, Attribution, Candidate, CandidateResult};
pub use error::Error;
pub use key::{Key, KeyId, Keyring, KeyringEntry};
pub use prf::{mix, uniform, Context, Mode, Prf, Seed};
pub use scheme::{Gumbel, Kgw, Scheme};
pub use score::{Score, Scorer, Statistic};

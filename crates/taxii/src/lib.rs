//! TAXII 2.1 (OASIS CS01) for Moat's threat-intelligence sharing.
//!
//! - [`server`]: discovery, an API root, collections, objects, manifest and status, with
//!   per-partner HTTP Basic credentials and read/write rights per collection; objects kept in
//!   SQLite ([`store`]).
//! - [`client`]: what `moat intel pull` and `moat intel push` use to talk to any TAXII 2.1
//!   server (HTTP or HTTPS).
//! - [`intel_db`]: the consumer's side: indicators pulled from partners, with provenance,
//!   applied whole or not at all, loaded by the gateway for the policy's `intel.*` fields.

pub mod client;
pub mod config;
mod error;
pub mod intel_db;
pub mod pull;
pub mod server;
pub mod store;

pub use error::TaxiiError;

/// The TAXII 2.1 media type, of every request and response body.
pub const MEDIA_TYPE: &str = "application/taxii+json;version=2.1";
/// The STIX 2.1 media type (of objects in a collection).
pub const STIX_MEDIA_TYPE: &str = "application/stix+json;version=2.1";

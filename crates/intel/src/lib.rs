//! Threat-intelligence exchange for the campaigns an analysis found: a STIX 2.1 bundle (OASIS
//! CS02) a provider can hand to a partner (another provider, a CERT) so that the partner can
//! look for the same actor in its own traffic, and the reading side that takes in a partner's
//! bundles and indicators and matches requests against them.
//!
//! Export: [`Exporter`] follows the flagged campaigns through a second pass over the traffic,
//! like the report does: [`Exporter::new`] with the detections and [`ExportOptions`],
//! [`Exporter::add_account`] for each line of the accounts side file, [`Exporter::observe`] for
//! each exchange, then [`Exporter::finish`] for the bundle. Memory is bounded whatever the
//! traffic: per campaign a fixed number of heavy-hitter counters per indicator kind, and one
//! count-min sketch of fixed size for the whole traffic (it over-counts, so the "used mostly by
//! members" rule it serves can only get stricter).
//!
//! What never reaches the bundle: account ids, API key ids, request ids, prompt or response
//! text, e-mail domains, and raw payment or template fingerprints (those travel as HMACs keyed
//! with a key the provider and the partner share, see [`PartnerKey`]).
//!
//! Import: [`parse_bundle`] and [`parse_envelope`] read a bundle or a TAXII 2.1 envelope and
//! check every object with [`check_object`] (common properties, the properties each type
//! requires, indicator patterns parsed with the full STIX patterning grammar by
//! [`parse_pattern`]); a [`Feed`] compiles a partner's indicators into hash lookups, and
//! [`Feeds::matches`] tells the gateway which of them a request ([`Probe`]) hits. Every reader
//! bounds its input (document size, nesting, string and list lengths, pattern length).
//!
//! Not a full STIX library: it writes the few object kinds it needs as JSON, checks what an
//! importer meets, and matches the indicator patterns one request can show. No IO: the caller
//! reads and writes the files and the network; time is an input (`now`, [`Probe::ts`]).

mod error;
mod export;
mod feed;
mod key;
mod pattern;
pub mod patterning;
mod read;
mod sketch;
mod stix;

pub use error::IntelError;
pub use export::{ExportOptions, Exporter, Summary};
pub use feed::{
    Feed, Feeds, Hit, HitKind, KindCounts, Loaded, Probe, MIN_V4_PREFIX, MIN_V6_PREFIX,
};
pub use key::PartnerKey;
pub use pattern::escape;
pub use patterning::parse_pattern;
pub use read::{
    check_object, parse_bundle, parse_envelope, Envelope, ObjectMeta, MAX_DOCUMENT_BYTES,
    MAX_ENTRIES, MAX_OBJECT_DEPTH, MAX_STRING_BYTES,
};
pub use stix::Tlp;

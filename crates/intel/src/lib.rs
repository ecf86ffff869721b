//! Threat-intelligence export of the campaigns an analysis found: a STIX 2.1 bundle (OASIS
//! CS02) a provider can hand to a partner (another provider, a CERT) so that the partner can
//! look for the same actor in its own traffic.
//!
//! [`Exporter`] follows the flagged campaigns through a second pass over the traffic, like the
//! report does: [`Exporter::new`] with the detections and [`ExportOptions`], [`Exporter::add_account`]
//! for each line of the accounts side file, [`Exporter::observe`] for each exchange, then
//! [`Exporter::finish`] for the bundle. Memory is bounded whatever the traffic: per campaign a
//! fixed number of heavy-hitter counters per indicator kind, and one count-min sketch of fixed
//! size for the whole traffic (it over-counts, so the "used mostly by members" rule it serves
//! can only get stricter).
//!
//! What never reaches the bundle: account ids, API key ids, request ids, prompt or response
//! text, e-mail domains, and raw payment or template fingerprints (those travel as HMACs keyed
//! with a key the provider and the partner share, see [`PartnerKey`]).
//!
//! Not a STIX library: it writes the few object kinds it needs as JSON and reads none. No IO:
//! the caller reads the files and writes the bundle; time is an input (`now`).

mod error;
mod export;
mod key;
mod pattern;
mod sketch;
mod stix;

pub use error::IntelError;
pub use export::{ExportOptions, Exporter, Summary};
pub use key::PartnerKey;
pub use pattern::escape;
pub use stix::Tlp;

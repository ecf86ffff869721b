//! Record types of Moat's public formats (`../shared/spec/exchange-log.md`): exchange log v1,
//! the accounts side file, ground-truth labels and detections.
//!
//! This crate is data only: serde derives, validation of the rules the spec states, and a
//! millisecond UTC [`Timestamp`]. It does no IO; reading and writing files (plain or gzip,
//! line numbers, skipping bad lines) lives in `moat-format`.

mod account;
mod detection;
mod error;
mod exchange;
mod label;
mod timestamp;
mod view;

pub use account::Account;
pub use detection::{AccountDetection, CampaignDetection, Detection, Signal};
pub use error::ValidationError;
pub use exchange::{Client, Content, ContentPart, Exchange, Message, Params, Request, Response};
pub use label::{Class, Label};
pub use timestamp::{Timestamp, TimestampError};
pub use view::{
    ClientView, ContentPartView, ContentView, ExchangeView, MessageView, RequestView, ResponseView,
    Text,
};

/// Common interface of every record kind, used by readers to check records after parsing.
pub trait Record: serde::Serialize + serde::de::DeserializeOwned {
    /// Checks the rules of the spec that serde's types cannot express.
    fn validate(&self) -> Result<(), ValidationError>;

    /// The time order key of records that files must keep in non-decreasing order
    /// (exchanges); `None` for record kinds in any order.
    fn order_key(&self) -> Option<Timestamp> {
        None
    }
}

//! The optional accounts side file (`accounts.jsonl`).

use serde::{Deserialize, Serialize};

use crate::{Record, Timestamp, ValidationError};

/// What the provider knows about an account at sign-up and billing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// The account, as in [`crate::Exchange::account_id`].
    pub account_id: String,
    /// Sign-up time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    /// Domain of the sign-up e-mail address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_domain: Option<String>,
    /// Opaque fingerprint of the payment method (shared by accounts paying with the same card).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_fingerprint: Option<String>,
    /// Billing country (ISO 3166).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// Plan: `free`, `tier-1`, `enterprise`, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    /// Whether identity or payment verification completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<bool>,
}

impl Record for Account {
    fn validate(&self) -> Result<(), ValidationError> {
        if self.account_id.is_empty() {
            return Err(ValidationError::Empty("account_id"));
        }
        Ok(())
    }
}

//! Detections: what a detector (`moat analyze`) writes, one line per account and per campaign.

use serde::{Deserialize, Serialize};

use crate::{Record, Timestamp, ValidationError};

/// One line of `detections.jsonl`, tagged by `kind`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Detection {
    /// Verdict on one account.
    Account(AccountDetection),
    /// One detected campaign.
    Campaign(CampaignDetection),
}

/// Verdict on one account; there is one for every account seen in the input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountDetection {
    /// The account.
    pub account_id: String,
    /// Risk in [0, 1].
    pub risk: f64,
    /// Whether the detector flagged the account.
    pub flagged: bool,
    /// `ts` of the exchange at which a causal pass first flagged the account.
    #[serde(default)]
    pub flagged_at: Option<Timestamp>,
    /// Detected campaign the account was assigned to.
    #[serde(default)]
    pub campaign_id: Option<String>,
    /// Stable snake_case reason names.
    #[serde(default)]
    pub reasons: Vec<String>,
}

/// One campaign: a group of accounts the detector believes one actor runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CampaignDetection {
    /// Detector-assigned campaign identifier.
    pub campaign_id: String,
    /// Member accounts.
    pub accounts: Vec<String>,
    /// Confidence in [0, 1].
    pub score: f64,
    /// When the campaign was first detected.
    #[serde(default)]
    pub first_detected_at: Option<Timestamp>,
    /// Evidence that ties the members together.
    #[serde(default)]
    pub signals: Vec<Signal>,
}

/// One piece of campaign evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signal {
    /// Stable snake_case signal name.
    pub name: String,
    /// Human-readable detail a reviewer can check.
    #[serde(default)]
    pub detail: String,
}

fn check_unit(field: &'static str, v: f64) -> Result<(), ValidationError> {
    if (0.0..=1.0).contains(&v) {
        Ok(())
    } else {
        Err(ValidationError::OutOfRange {
            field,
            value: v.to_string(),
        })
    }
}

impl Record for Detection {
    fn validate(&self) -> Result<(), ValidationError> {
        match self {
            Detection::Account(a) => {
                if a.account_id.is_empty() {
                    return Err(ValidationError::Empty("account_id"));
                }
                check_unit("risk", a.risk)
            }
            Detection::Campaign(c) => {
                if c.campaign_id.is_empty() {
                    return Err(ValidationError::Empty("campaign_id"));
                }
                check_unit("score", c.score)
            }
        }
    }
}

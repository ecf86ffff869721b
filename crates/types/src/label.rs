//! Ground-truth labels written by the simulator and read only by evaluation.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{Record, ValidationError};

/// Ground truth for one account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Label {
    /// The account.
    pub account_id: String,
    /// What the account really is.
    pub class: Class,
    /// Campaign the account belongs to; `null` outside campaigns.
    pub campaign: Option<String>,
    /// How the campaign operates (`proxy-rotation`, `low-and-slow`, …); `null` when not known.
    #[serde(default)]
    pub tactic: Option<String>,
}

/// The four ground-truth classes of the spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    /// Ordinary users.
    Benign,
    /// Legitimate high-volume use: evaluation harnesses, batch jobs, app backends.
    BenignHeavy,
    /// Accounts of a distillation campaign.
    Distill,
    /// Accounts that only jailbreak, without harvesting at scale.
    Jailbreak,
}

impl Class {
    /// The snake_case name used in files.
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Benign => "benign",
            Class::BenignHeavy => "benign_heavy",
            Class::Distill => "distill",
            Class::Jailbreak => "jailbreak",
        }
    }
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Record for Label {
    fn validate(&self) -> Result<(), ValidationError> {
        if self.account_id.is_empty() {
            return Err(ValidationError::Empty("account_id"));
        }
        if self.campaign.as_deref() == Some("") {
            return Err(ValidationError::Empty("campaign"));
        }
        Ok(())
    }
}

//! STIX 2.1 constants: the TLP 2.0 markings as the OASIS CTI TC publishes them, the MITRE
//! ATLAS techniques a distillation campaign maps to, and deterministic object ids.

use std::str::FromStr;

use serde_json::{json, Value};
use uuid::Uuid;

use crate::IntelError;

/// The TLP 2.0 property extension (oasis-open/cti-stix-common-objects).
pub const TLP_EXTENSION: &str = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d";

/// A Traffic Light Protocol 2.0 level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Tlp {
    /// TLP:CLEAR.
    Clear,
    /// TLP:GREEN.
    Green,
    /// TLP:AMBER (the default: partners and their clients, need to know).
    #[default]
    Amber,
    /// TLP:AMBER+STRICT.
    AmberStrict,
    /// TLP:RED.
    Red,
}

impl Tlp {
    /// The level as the extension spells it (`amber+strict`).
    pub fn as_str(self) -> &'static str {
        match self {
            Tlp::Clear => "clear",
            Tlp::Green => "green",
            Tlp::Amber => "amber",
            Tlp::AmberStrict => "amber+strict",
            Tlp::Red => "red",
        }
    }

    /// The published id of the level's marking definition.
    pub fn marking_id(self) -> &'static str {
        match self {
            Tlp::Clear => "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
            Tlp::Green => "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
            Tlp::Amber => "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
            Tlp::AmberStrict => "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
            Tlp::Red => "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
        }
    }

    /// The marking definition object, exactly as published (a consumer recognises it by id;
    /// the content must match or it is a different object under the same id).
    pub fn marking_definition(self) -> Value {
        json!({
            "type": "marking-definition",
            "spec_version": "2.1",
            "id": self.marking_id(),
            "created": "2022-10-01T00:00:00.000Z",
            "name": format!("TLP:{}", self.as_str().to_ascii_uppercase()),
            "extensions": {
                TLP_EXTENSION: {
                    "extension_type": "property-extension",
                    "tlp_2_0": self.as_str(),
                }
            }
        })
    }
}

impl FromStr for Tlp {
    type Err = IntelError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().trim_start_matches("tlp:") {
            "clear" | "white" => Ok(Tlp::Clear),
            "green" => Ok(Tlp::Green),
            "amber" => Ok(Tlp::Amber),
            "amber+strict" => Ok(Tlp::AmberStrict),
            "red" => Ok(Tlp::Red),
            _ => Err(IntelError::UnknownTlp(s.to_owned())),
        }
    }
}

/// A MITRE ATLAS technique.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Technique {
    /// ATLAS id, e.g. `AML.T0024`.
    pub id: &'static str,
    /// ATLAS name.
    pub name: &'static str,
}

/// Every campaign queries the API to collect a training set for a copy of the model.
pub const EXFILTRATION: Technique = Technique {
    id: "AML.T0024",
    name: "Exfiltration via ML Inference API",
};
/// What the collected answers are for.
pub const PROXY_MODEL: Technique = Technique {
    id: "AML.T0005",
    name: "Create Proxy ML Model",
};
/// Only for campaigns whose evidence shows jailbreak attempts.
pub const JAILBREAK: Technique = Technique {
    id: "AML.T0054",
    name: "LLM Jailbreak",
};

impl Technique {
    /// The attack-pattern object (without the common properties the exporter adds).
    pub fn external_reference(self) -> Value {
        json!([{
            "source_name": "mitre-atlas",
            "external_id": self.id,
            "url": format!("https://atlas.mitre.org/techniques/{}", self.id),
        }])
    }
}

/// Namespace of Moat's STIX ids (a fixed random UUID; changing it changes every id).
const NAMESPACE: Uuid = Uuid::from_u128(0x6d0a_7f3e_2c41_4b8e_9a57_1e2f_c3d4_b5a6);

/// `TYPE--UUIDv5(namespace, TYPE + "/" + key)`.
pub fn id(kind: &str, key: &str) -> String {
    let name = format!("{kind}/{key}");
    format!("{kind}--{}", Uuid::new_v5(&NAMESPACE, name.as_bytes()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn markings_carry_the_published_ids_and_names() {
        let m = Tlp::AmberStrict.marking_definition();
        assert_eq!(m["name"], "TLP:AMBER+STRICT");
        assert_eq!(m["extensions"][TLP_EXTENSION]["tlp_2_0"], "amber+strict");
        assert_eq!("TLP:GREEN".parse::<Tlp>().unwrap(), Tlp::Green);
        assert!("purple".parse::<Tlp>().is_err());
    }

    #[test]
    fn ids_are_version_5_and_stable() {
        let a = id("campaign", "x");
        assert_eq!(a, id("campaign", "x"));
        assert_ne!(a, id("campaign", "y"));
        let u = Uuid::parse_str(a.trim_start_matches("campaign--")).unwrap();
        assert_eq!(u.get_version_num(), 5);
    }
}

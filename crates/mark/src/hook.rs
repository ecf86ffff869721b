//! The gateway's hook: which key the inference engine should watermark a response with, named
//! in a request header so that outputs served to a suspected campaign carry that campaign's key.
//!
//! The header carries the key id only. The engine holds a keyring (written by
//! `moat mark derive`, read by the Python integration) and looks the id up; an id it does not
//! hold means "no watermark", never an error towards the client.

use crate::{Key, KeyId, Keyring};

/// The request header the gateway sets towards the upstream engine.
pub const KEY_HEADER: &str = "x-moat-watermark-key";

/// Chooses the key for a request from what detection knows about its account.
#[derive(Debug, Clone)]
pub struct KeySelector {
    master: Key,
    default_scope: Option<String>,
}

/// The key chosen for a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// Goes in [`KEY_HEADER`].
    pub key_id: KeyId,
    /// The scope the key was derived for (`campaign:<id>` or the default), for the record.
    pub scope: String,
}

impl KeySelector {
    /// Keys derive from `master`; requests outside any campaign get the key of
    /// `default_scope` (e.g. `cohort:all`), or none.
    pub fn new(master: Key, default_scope: Option<String>) -> KeySelector {
        KeySelector {
            master,
            default_scope,
        }
    }

    /// The scope of a campaign's key.
    pub fn campaign_scope(campaign: &str) -> String {
        format!("campaign:{campaign}")
    }

    /// The key for a request whose account belongs to `campaign` (if any).
    pub fn select(&self, campaign: Option<&str>) -> Option<Selection> {
        let scope = match campaign {
            Some(c) => KeySelector::campaign_scope(c),
            None => self.default_scope.clone()?,
        };
        Some(Selection {
            key_id: self.master.derive(&scope).id(),
            scope,
        })
    }

    /// A keyring with the keys of `campaigns` and the default scope, for the engine.
    pub fn keyring<'a>(&self, campaigns: impl IntoIterator<Item = &'a str>) -> Keyring {
        let mut ring = Keyring::new();
        let scopes = campaigns
            .into_iter()
            .map(KeySelector::campaign_scope)
            .chain(self.default_scope.clone());
        for scope in scopes {
            ring.insert(self.master.derive(&scope), &scope);
        }
        ring
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn campaign_members_get_their_campaign_key() {
        let master = Key::from_bytes([2u8; 32]);
        let selector = KeySelector::new(master.clone(), Some("cohort:all".into()));
        let s = selector.select(Some("c-7")).expect("campaign key");
        assert_eq!(s.scope, "campaign:c-7");
        assert_eq!(s.key_id, master.derive("campaign:c-7").id());
        let d = selector.select(None).expect("default key");
        assert_eq!(d.scope, "cohort:all");
        assert_eq!(KeySelector::new(master, None).select(None), None);

        let ring = selector.keyring(["c-7", "c-8"]);
        assert_eq!(ring.entries().len(), 3);
        assert!(ring.get(s.key_id).is_some());
        assert!(ring.get(d.key_id).is_some());
    }
}

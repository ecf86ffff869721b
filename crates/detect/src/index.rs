//! The index of shared attributes: for each attribute value (a template fingerprint, a
//! payment fingerprint, an address block, a sign-up window, a system prompt), the accounts
//! that used it.
//!
//! Bounded: each attribute remembers at most `max_members_per_key` accounts (it keeps
//! counting beyond that), and attributes used by a single account are forgotten after
//! `singleton_ttl_ms` of stream time, so the index holds roughly one day of unique
//! attributes plus the shared ones. Not where links are judged: `discover` decides which
//! shared attributes mean coordination.

/// Fast hashing, seeded per process so crafted keys cannot collide on purpose; no output
/// depends on map order.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

use crate::Config;

/// What kind of attribute a key is; also its domain tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum KeyKind {
    /// A prompt-template fingerprint (see `template`).
    Template,
    /// A system prompt.
    SystemPrompt,
    /// A payment fingerprint.
    Payment,
    /// An IPv4 /24 or IPv6 /48.
    Network,
    /// A sign-up time window.
    Signup,
    /// An e-mail domain.
    EmailDomain,
    /// A client build: user agent and TLS JA4 fingerprint together.
    Client,
    /// A minute of stream time: accounts active in the same minutes, again and again, are
    /// driven by one controller (SynchroTrap-style synchrony).
    Minute,
}

impl KeyKind {
    pub const ALL: [KeyKind; 8] = [
        KeyKind::Template,
        KeyKind::SystemPrompt,
        KeyKind::Payment,
        KeyKind::Network,
        KeyKind::Signup,
        KeyKind::EmailDomain,
        KeyKind::Client,
        KeyKind::Minute,
    ];

    /// One bit per kind, for per-member sets of kinds.
    pub fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// Accounts seen with one attribute value.
#[derive(Debug, Clone)]
pub(crate) struct KeyEntry {
    /// Sorted account indices (at most `max_members_per_key`).
    pub members: Vec<u32>,
    /// Uses by each member (parallel to `members`, saturating): a wrapper is reused by the
    /// account it belongs to, while a question shared through a public dataset is sent once.
    pub uses: Vec<u16>,
    /// Members that used the attribute at least twice (lets discovery skip, in O(1), the
    /// many shared questions that nobody reuses).
    pub reused: u32,
    /// Distinct accounts seen, including those beyond the member cap.
    pub total: u32,
    /// Highest account index counted in `total`.
    newest: u32,
    /// Stream time of the last use (ms).
    pub last_seen: i64,
    /// Display form of the attribute for evidence (e.g. "203.0.113.0/24", a wrapper sentence),
    /// recorded when a second account uses it.
    pub label: Box<str>,
}

/// An attribute seen by one account so far.
#[derive(Debug, Clone, Copy)]
struct Single {
    account: u32,
    uses: u16,
    last_seen: i64,
}

/// The attribute index: attributes of one account in a small map that is purged, attributes
/// shared by several accounts in a list kept in the order they became shared (deterministic,
/// and cheap for discovery to walk).
#[derive(Debug, Default)]
pub(crate) struct KeyIndex {
    single: HashMap<(KeyKind, u64), Single>,
    shared: Vec<((KeyKind, u64), KeyEntry)>,
    position: HashMap<(KeyKind, u64), usize>,
}

impl KeyIndex {
    /// Records that `account` used attribute `(kind, key)` at `now`.
    pub fn add(
        &mut self,
        cfg: &Config,
        kind: KeyKind,
        key: u64,
        label: impl FnOnce() -> String,
        account: u32,
        now: i64,
    ) {
        let k = (kind, key);
        if let Some(&pos) = self.position.get(&k) {
            if let Some((_, e)) = self.shared.get_mut(pos) {
                e.add(cfg, account, now);
            }
            return;
        }
        match self.single.get_mut(&k) {
            None => {
                self.single.insert(
                    k,
                    Single {
                        account,
                        uses: 1,
                        last_seen: now,
                    },
                );
            }
            Some(one) if one.account == account => {
                one.uses = one.uses.saturating_add(1);
                one.last_seen = now;
            }
            Some(one) => {
                // A second account: the attribute is shared from now on. Its label is taken
                // now, from this use; most attributes are never shared and keep no text.
                let first = *one;
                self.single.remove(&k);
                let mut entry = KeyEntry {
                    members: vec![first.account],
                    uses: vec![first.uses],
                    reused: u32::from(first.uses >= 2),
                    total: 1,
                    newest: first.account,
                    last_seen: first.last_seen,
                    label: label().into_boxed_str(),
                };
                entry.add(cfg, account, now);
                self.position.insert(k, self.shared.len());
                self.shared.push((k, entry));
            }
        }
    }

    /// Forgets attributes of a single account unused for the configured time.
    pub fn purge(&mut self, cfg: &Config, now: i64) {
        let ttl = cfg.singleton_ttl_ms;
        self.single.retain(|_, one| now - one.last_seen <= ttl);
        // Minutes are evidence only while recent; the list keeps its order.
        let window = cfg.synchrony_window_ms;
        let before = self.shared.len();
        self.shared
            .retain(|((kind, _), e)| *kind != KeyKind::Minute || now - e.last_seen <= window);
        if self.shared.len() != before {
            self.position.clear();
            for (i, (k, _)) in self.shared.iter().enumerate() {
                self.position.insert(*k, i);
            }
        }
    }

    /// Attributes shared by at least two accounts, in the order they became shared.
    pub fn shared(&self) -> impl Iterator<Item = (&(KeyKind, u64), &KeyEntry)> {
        self.shared.iter().map(|(k, e)| (k, e))
    }

    /// Number of attributes held.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.single.len() + self.shared.len()
    }
}

impl KeyEntry {
    fn add(&mut self, cfg: &Config, account: u32, now: i64) {
        self.last_seen = self.last_seen.max(now);
        match self.members.binary_search(&account) {
            Ok(at) => {
                if let Some(u) = self.uses.get_mut(at) {
                    *u = u.saturating_add(1);
                    if *u == 2 {
                        self.reused += 1;
                    }
                }
            }
            Err(at) => {
                if self.members.len() < cfg.max_members_per_key {
                    self.members.insert(at, account);
                    self.uses.insert(at, 1);
                    self.total = self.total.saturating_add(1);
                    self.newest = self.newest.max(account);
                } else if account > self.newest {
                    // Beyond the cap only accounts newer than every one counted so far are
                    // counted: they cannot have been counted already (indices grow with first
                    // sight), so the count stays exact for them and approximate for the rest.
                    self.total = self.total.saturating_add(1);
                    self.newest = account;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_distinct_accounts_and_caps_members() {
        let cfg = Config {
            max_members_per_key: 3,
            ..Config::default()
        };
        let mut idx = KeyIndex::default();
        for (acct, t) in [(5u32, 0i64), (1, 1), (5, 2), (7, 3), (9, 4), (9, 5)] {
            idx.add(&cfg, KeyKind::Payment, 42, String::new, acct, t);
        }
        let shared: Vec<_> = idx.shared().collect();
        assert_eq!(shared.len(), 1);
        let e = shared[0].1;
        assert_eq!(e.members, vec![1, 5, 7]);
        assert_eq!(e.uses, vec![1, 2, 1]);
        assert_eq!(e.total, 4);
        assert_eq!(&*e.label, "");
        assert_eq!(e.last_seen, 5);
    }

    #[test]
    fn purge_forgets_minutes_outside_the_synchrony_window() {
        let cfg = Config::default();
        let mut idx = KeyIndex::default();
        for (key, t) in [(1u64, 0i64), (2, cfg.synchrony_window_ms)] {
            idx.add(&cfg, KeyKind::Minute, key, String::new, 1, t);
            idx.add(&cfg, KeyKind::Minute, key, String::new, 2, t);
        }
        idx.add(&cfg, KeyKind::Payment, 3, String::new, 1, 0);
        idx.add(&cfg, KeyKind::Payment, 3, String::new, 2, 0);
        idx.purge(&cfg, cfg.synchrony_window_ms + 1);
        let kept: Vec<_> = idx.shared().map(|(k, _)| *k).collect();
        assert_eq!(kept, vec![(KeyKind::Minute, 2), (KeyKind::Payment, 3)]);
        // Positions were rebuilt: adding to a kept key still finds it.
        idx.add(&cfg, KeyKind::Payment, 3, String::new, 4, 5);
        assert_eq!(idx.shared().last().map(|(_, e)| e.total), Some(3));
    }

    #[test]
    fn purge_forgets_only_stale_singletons() {
        let cfg = Config::default();
        let mut idx = KeyIndex::default();
        idx.add(&cfg, KeyKind::Template, 1, String::new, 1, 0);
        idx.add(&cfg, KeyKind::Template, 2, String::new, 1, 0);
        idx.add(&cfg, KeyKind::Template, 2, String::new, 2, 0);
        idx.add(
            &cfg,
            KeyKind::Template,
            3,
            String::new,
            3,
            cfg.singleton_ttl_ms,
        );
        idx.purge(&cfg, cfg.singleton_ttl_ms + 1);
        assert_eq!(idx.len(), 2);
    }
}

//! The index of shared attributes: for each attribute value (a template fingerprint, a
//! payment fingerprint, an address block, a sign-up window, a system prompt), the accounts
//! that used it.
//!
//! Bounded: each attribute remembers at most `max_members_per_key` accounts (it keeps
//! counting beyond that), and attributes used by a single account are forgotten after
//! `singleton_ttl_ms` of stream time (checked every eighth of that), so the index holds roughly one day of unique
//! attributes plus the shared ones. Not where links are judged: `discover` decides which
//! shared attributes mean coordination.

/// Fast hashing, seeded per process so crafted keys cannot collide on purpose; no output
/// depends on map order.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

use std::collections::hash_map::Entry;
use std::collections::VecDeque;

use crate::discover::Tally;
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
    /// An autonomous system: the network operator of the client's address. Shared by every
    /// customer of an ISP or cloud, so it links only where candidates are most of its users
    /// (a campaign on a small hosting provider's addresses).
    Asn,
}

impl KeyKind {
    pub const ALL: [KeyKind; 9] = [
        KeyKind::Template,
        KeyKind::SystemPrompt,
        KeyKind::Payment,
        KeyKind::Network,
        KeyKind::Signup,
        KeyKind::EmailDomain,
        KeyKind::Client,
        KeyKind::Minute,
        KeyKind::Asn,
    ];

    /// Uses by one account before an attribute of this kind can link it: a wrapper must be
    /// reused (a question copied from a public dataset is sent once by each of many
    /// accounts, while a script's wrapper is sent again and again); anything else once.
    pub fn min_uses(self) -> u16 {
        if self == KeyKind::Template {
            2
        } else {
            1
        }
    }

    /// One bit per kind, for per-member sets of kinds.
    pub fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

/// Accounts seen with one attribute value.
#[derive(Debug, Clone)]
pub(crate) struct KeyEntry {
    /// Sorted account indices (at most `max_members_per_key`).
    pub members: Vec<u32>,
    /// Uses by each member (parallel to `members`, saturating): a wrapper is reused by the
    /// account it belongs to, while a question shared through a public dataset is sent once.
    /// Exact up to 2; beyond, a member's repeats may go uncounted (see [`Recent`]), as
    /// nothing asks for more than two.
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
    /// Members that are candidates (as of the latest [`KeyIndex::set_candidates`]) and have
    /// used the attribute at least [`KeyKind::min_uses`] times. Kept up to date as the
    /// attribute is used and as accounts become or stop being candidates, so that discovery
    /// finds the attributes that link candidates without walking every member of every
    /// attribute (not maintained for minutes, which discovery counts afresh).
    pub candidates: u32,
    /// What discovery last derived from this attribute, kept until it may have changed.
    pub derived: Derived,
    /// The payment clusters whose ties through this attribute the index's kept [`Tally`]
    /// counts (none when it counts none).
    pub counted: Option<Box<[u32]>>,
    /// The same for the second merge round: the clusters after the first round whose ties
    /// through this attribute [`KeyIndex::second`] counts.
    pub counted_second: Option<Box<[u32]>>,
}

/// What a discovery pass derives from one shared attribute, kept for the next pass: most
/// attributes neither gain a qualifying member nor see one become or stop being a candidate
/// within an hour, and recomputing these for all of them each pass was most of a pass.
/// `None` marks a value to recompute. Not kept for minutes, which discovery recounts.
#[derive(Debug, Clone, Default)]
pub(crate) struct Derived {
    /// The members that are candidates and used the attribute at least
    /// [`KeyKind::min_uses`] times, in member order. Kept up to date when a member that is a
    /// candidate qualifies and when a qualified member becomes or stops being a candidate.
    pub cands: Option<Vec<u32>>,
    /// The distinct payment clusters of `cands` (roots), in the order their ties follow
    /// (`discover::tie_order`). Gains the cluster of a candidate that qualifies; forgotten
    /// when a candidate stops qualifying and when the payment cluster of a member changes.
    pub roots: Option<Vec<u32>>,
}

impl Derived {
    /// Brings what was derived up to date with `account` (of payment cluster `cluster` at the
    /// latest pass, if it was seen then) now counting as a qualifying candidate, without
    /// deriving it all again: hydra's address blocks hold hundreds of candidates, and one
    /// more among them was most of a pass's recomputation. The clusters stay valid because
    /// the next pass forgets them for every attribute of an account whose cluster changed
    /// ([`KeyIndex::set_clusters`]).
    fn gain(&mut self, value: u64, account: u32, cluster: Option<u32>) {
        let Some(cands) = &mut self.cands else {
            self.roots = None;
            return;
        };
        if let Err(at) = cands.binary_search(&account) {
            cands.insert(at, account);
        }
        match (cluster, &mut self.roots) {
            (Some(r), Some(roots)) => crate::discover::add_in_tie_order(value, roots, r),
            _ => self.roots = None,
        }
    }

    /// Brings what was derived up to date with `account` no longer counting as a qualifying
    /// candidate. Its cluster may still be another candidate's, so the clusters are derived
    /// again.
    fn lose(&mut self, account: u32) {
        if let Some(cands) = &mut self.cands {
            if let Ok(at) = cands.binary_search(&account) {
                cands.remove(at);
            }
        }
        self.roots = None;
    }
}

/// Where discovery finds an attribute between passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum At {
    /// `shared[i]`.
    Shared(u32),
    /// `minutes[i]`.
    Minute(u32),
}

/// An attribute seen by one account so far.
#[derive(Debug, Clone, Copy)]
struct Single {
    account: u32,
    uses: u16,
    last_seen: i64,
}

/// Where an attribute lives.
#[derive(Debug, Clone, Copy)]
enum Slot {
    /// Used by one account so far.
    Single(Single),
    /// Shared: `shared[i]`.
    Shared(usize),
    /// A shared minute: `minutes[seq - first_minute]`.
    Minute(u64),
}

/// The attribute index: one map from attribute to where it lives (one lookup per use);
/// attributes of one account inline in the map, purged now and then; shared attributes in
/// a list kept in the order they became shared (deterministic, and cheap for discovery to
/// walk), and shared minutes, which expire, in a queue of their own so that expiring them
/// moves nothing else.
#[derive(Debug, Default, Clone)]
pub(crate) struct KeyIndex {
    slots: HashMap<(KeyKind, u64), Slot>,
    /// Shared attributes in the order they became shared; `None` where one expired (its
    /// position is never reused, so positions held elsewhere stay valid until the list is
    /// compacted).
    shared: Vec<Option<((KeyKind, u64), KeyEntry)>>,
    /// Expired positions in `shared`.
    expired: usize,
    /// Shared minutes, oldest first: a minute becomes shared during itself, and time only
    /// moves forward.
    minutes: VecDeque<(u64, KeyEntry)>,
    /// Sequence number of `minutes[0]`.
    first_minute: u64,
    /// Stream time of the next purge of single-account attributes.
    next_single_purge: Option<i64>,
    /// Which accounts are candidates, as of the latest [`KeyIndex::set_candidates`].
    candidate: Vec<bool>,
    /// For each account, the positions in `shared` of the attributes it is a member of
    /// (minutes excepted): the attributes whose candidate counts change when it becomes or
    /// stops being a candidate.
    of_account: Vec<Vec<u32>>,
    /// Each account's payment cluster (a root) at the latest discovery pass, against which
    /// the next pass finds the accounts whose cluster changed.
    cluster_of: Vec<u32>,
    /// The first merge round's ties through the attributes that link candidates (minutes
    /// excepted), as of the latest discovery pass; see [`KeyEntry::counted`].
    pub tally: Tally,
    /// The second merge round's ties, kept the same way; see [`KeyEntry::counted_second`].
    pub second: Tally,
    /// Positions in `shared` whose candidate count or distinct-account total changed since
    /// the latest discovery pass, one bit each: with those that linked candidates then, the
    /// only attributes whose linking can have changed.
    touched: Vec<u64>,
    /// Positions in `shared` of the attributes that linked candidates at the latest pass.
    linking: Vec<u32>,
    /// For each account, where its latest uses of the kinds it tends to repeat landed.
    recent: Vec<[Recent; RECENT_PLACES]>,
    /// The latest minute used, with its sequence number once shared: every request of a
    /// minute uses it, so they find it without a map lookup.
    minute: Option<(u64, u64)>,
    /// Tests compare an index that never takes the [`Recent`] or minute shortcuts.
    #[cfg(test)]
    no_recent: bool,
}

/// Places in an account's [`Recent`] list, over all kinds.
const RECENT_PLACES: usize = 10;

/// The place in an account's [`Recent`] list for a use of `(kind, key)`, if the kind has
/// any: kinds whose value an account repeats request after request (its system prompt and
/// client build one place each; address blocks and autonomous systems two, as a phone
/// alternates between networks; prompt wrappers four, as a request holds several segments).
/// Within a kind the key picks the place.
fn recent_place(kind: KeyKind, key: u64) -> Option<usize> {
    let (first, places) = match kind {
        KeyKind::SystemPrompt => (0, 1),
        KeyKind::Client => (1, 1),
        KeyKind::Network => (2, 2),
        KeyKind::Asn => (4, 2),
        KeyKind::Template => (6, 4),
        _ => return None,
    };
    // Keys are hashes; their top bits are the best mixed.
    Some(first + (key >> 62) as usize % places)
}

/// A shared attribute on which one more use by an account can change nothing but the
/// attribute's last use: the account has used it at least twice (no kind asks for more), or
/// the attribute is full and counted the account already. Repeating it then costs a compare
/// instead of a map lookup and a binary search over up to `max_members_per_key` members,
/// whose cache misses were most of the engine's time per request.
#[derive(Debug, Clone, Copy)]
struct Recent {
    /// The low half of the key: a position is checked against the whole key before use
    /// anyway, as a compaction or an expiry may have moved what it points to.
    key: u32,
    /// The attribute's position in `shared`, `u32::MAX` for none.
    pos: u32,
}

impl Default for Recent {
    fn default() -> Self {
        Recent {
            key: 0,
            pos: u32::MAX,
        }
    }
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
        #[cfg(not(test))]
        let shortcuts = true;
        #[cfg(test)]
        let shortcuts = !self.no_recent;
        let memo = recent_place(kind, key).filter(|_| shortcuts);
        if let Some(r) = memo {
            let recent = self
                .recent
                .get(account as usize)
                .and_then(|list| list.get(r))
                .filter(|recent| recent.key == key as u32);
            if let Some(&Recent { pos, .. }) = recent {
                if let Some(Some((at, e))) = self.shared.get_mut(pos as usize) {
                    if *at == k {
                        e.last_seen = e.last_seen.max(now);
                        return;
                    }
                }
            }
        }
        if kind == KeyKind::Minute && shortcuts {
            if let Some((_, seq)) = self.minute.filter(|&(m, _)| m == key) {
                if self.add_to_minute(cfg, key, seq, account, now) {
                    return;
                }
            }
        }
        let slot = match self.slots.entry(k) {
            Entry::Vacant(v) => {
                v.insert(Slot::Single(Single {
                    account,
                    uses: 1,
                    last_seen: now,
                }));
                return;
            }
            Entry::Occupied(o) => o.into_mut(),
        };
        let first = match slot {
            Slot::Shared(pos) => {
                let pos = *pos;
                if let Some(Some((_, e))) = self.shared.get_mut(pos) {
                    let total = e.total;
                    let change = e.add(cfg, account, now, kind.min_uses());
                    let grew = e.total != total;
                    if self.counted(pos, account, change) || grew {
                        touch(&mut self.touched, pos as u32);
                    }
                    if let Some(r) = memo {
                        self.remember(account, r, key, change.settled.then_some(pos as u32));
                    }
                }
                return;
            }
            Slot::Minute(seq) => {
                let seq = *seq;
                self.add_to_minute(cfg, key, seq, account, now);
                self.minute = Some((key, seq));
                return;
            }
            Slot::Single(one) if one.account == account => {
                one.uses = one.uses.saturating_add(1);
                one.last_seen = now;
                return;
            }
            Slot::Single(one) => *one,
        };
        // A second account: the attribute is shared from now on. Its label is taken now, from
        // this use; most attributes are never shared and keep no text.
        let mut entry = KeyEntry {
            members: vec![first.account],
            uses: vec![first.uses],
            reused: u32::from(first.uses >= 2),
            total: 1,
            newest: first.account,
            last_seen: first.last_seen,
            label: label().into_boxed_str(),
            candidates: 0,
            derived: Derived::default(),
            counted: None,
            counted_second: None,
        };
        let change = entry.add(cfg, account, now, kind.min_uses());
        if kind == KeyKind::Minute {
            let seq = self.first_minute + self.minutes.len() as u64;
            *slot = Slot::Minute(seq);
            self.minutes.push_back((key, entry));
            self.minute = Some((key, seq));
        } else {
            let pos = self.shared.len();
            *slot = Slot::Shared(pos);
            self.shared.push(Some((k, entry)));
            let first_change = Change {
                joined: true,
                qualified: first.uses >= kind.min_uses(),
                settled: false,
            };
            self.counted(pos, first.account, first_change);
            self.counted(pos, account, change);
            touch(&mut self.touched, pos as u32);
        }
    }

    /// Records a use by `account` of shared minute `key`, number `seq`; whether it is held
    /// there (it may have expired).
    fn add_to_minute(&mut self, cfg: &Config, key: u64, seq: u64, account: u32, now: i64) -> bool {
        let at = seq.wrapping_sub(self.first_minute) as usize;
        match self.minutes.get_mut(at) {
            Some((m, e)) if *m == key => {
                e.add(cfg, account, now, KeyKind::Minute.min_uses());
                true
            }
            _ => false,
        }
    }

    /// Records where `account`'s latest use of `key` (at place `r` of its [`Recent`] list) landed:
    /// `pos` if the attribute is shared and settled for the account, else nowhere.
    fn remember(&mut self, account: u32, r: usize, key: u64, pos: Option<u32>) {
        let account = account as usize;
        if self.recent.len() <= account {
            self.recent
                .resize(account + 1, [Recent::default(); RECENT_PLACES]);
        }
        if let Some(recent) = self.recent.get_mut(account).and_then(|l| l.get_mut(r)) {
            *recent = Recent {
                key: key as u32,
                pos: pos.unwrap_or(u32::MAX),
            };
        }
    }

    /// Books a use of `shared[pos]` by `account`: its membership and candidate count; whether
    /// the count changed.
    fn counted(&mut self, pos: usize, account: u32, change: Change) -> bool {
        if change.joined {
            if self.of_account.len() <= account as usize {
                self.of_account.resize_with(account as usize + 1, Vec::new);
            }
            if let Some(list) = self.of_account.get_mut(account as usize) {
                list.push(pos as u32);
            }
        }
        if change.qualified
            && self
                .candidate
                .get(account as usize)
                .copied()
                .unwrap_or(false)
        {
            let cluster = self.cluster_of.get(account as usize).copied();
            if let Some(Some(((_, value), e))) = self.shared.get_mut(pos) {
                // A qualifying member that is not a candidate changes nothing discovery
                // derives; one that becomes a candidate later is handled then.
                e.candidates += 1;
                e.derived.gain(*value, account, cluster);
                return true;
            }
        }
        false
    }

    /// Sets which accounts are candidates (`candidate[i]` for account `i`; accounts beyond
    /// are not) and updates the candidate counts of the attributes of those that changed,
    /// and of every minute.
    pub fn set_candidates(&mut self, candidate: &[bool]) {
        let n = candidate.len().max(self.candidate.len());
        for a in 0..n {
            let was = self.candidate.get(a).copied().unwrap_or(false);
            let is = candidate.get(a).copied().unwrap_or(false);
            if was == is {
                continue;
            }
            let Some(list) = self.of_account.get(a) else {
                continue;
            };
            let cluster = self.cluster_of.get(a).copied();
            for &pos in list {
                let Some(Some(((kind, value), e))) = self.shared.get_mut(pos as usize) else {
                    continue;
                };
                let qualified = e
                    .members
                    .binary_search(&(a as u32))
                    .ok()
                    .and_then(|at| e.uses.get(at))
                    .is_some_and(|&u| u >= kind.min_uses());
                if qualified {
                    if is {
                        e.candidates += 1;
                        e.derived.gain(*value, a as u32, cluster);
                    } else {
                        e.candidates = e.candidates.saturating_sub(1);
                        e.derived.lose(a as u32);
                    }
                    touch(&mut self.touched, pos);
                }
            }
        }
        self.candidate.clear();
        self.candidate.extend_from_slice(candidate);
        for (_, e) in &mut self.minutes {
            e.candidates = e
                .members
                .iter()
                .zip(&e.uses)
                .filter(|&(&a, &u)| {
                    u >= KeyKind::Minute.min_uses()
                        && candidate.get(a as usize).copied().unwrap_or(false)
                })
                .count() as u32;
        }
    }

    /// Forgets shared minutes older than the synchrony window, and (every eighth of their
    /// time to live) attributes of a single account unused for that long and shared
    /// attributes unused for `shared_ttl_ms` (identity attributes excepted: payment methods,
    /// e-mail domains and sign-up windows are used once per account, when it is first seen,
    /// and are as many as the accounts).
    pub fn purge(&mut self, cfg: &Config, now: i64) {
        let window = cfg.synchrony_window_ms;
        while let Some((key, e)) = self.minutes.front() {
            if now - e.last_seen <= window {
                break;
            }
            self.slots.remove(&(KeyKind::Minute, *key));
            self.minutes.pop_front();
            self.first_minute += 1;
        }
        let ttl = cfg.singleton_ttl_ms;
        if now >= self.next_single_purge.unwrap_or(now) {
            self.slots.retain(|_, slot| match slot {
                Slot::Single(one) => now - one.last_seen <= ttl,
                Slot::Shared(_) | Slot::Minute(_) => true,
            });
            self.next_single_purge = Some(now + (ttl / 8).max(1));
            self.expire_shared(cfg.shared_ttl_ms, now);
        }
    }

    /// Forgets shared attributes (identity attributes excepted) unused for `ttl`, and
    /// compacts the list once more than half of it has expired.
    fn expire_shared(&mut self, ttl: i64, now: i64) {
        for slot in &mut self.shared {
            let stale = slot.as_ref().is_some_and(|((kind, _), e)| {
                !matches!(
                    kind,
                    KeyKind::Payment | KeyKind::EmailDomain | KeyKind::Signup
                ) && now - e.last_seen > ttl
            });
            if stale {
                if let Some((key, mut e)) = slot.take() {
                    self.tally.take_back(key.0, key.1, &mut e.counted);
                    self.second.take_back(key.0, key.1, &mut e.counted_second);
                    self.slots.remove(&key);
                    self.expired += 1;
                }
            }
        }
        if self.expired * 2 <= self.shared.len() {
            return;
        }
        // Compact: new positions in the same order, then every reference to a position.
        let mut moved = vec![u32::MAX; self.shared.len()];
        let mut next = 0u32;
        for (old, slot) in self.shared.iter().enumerate() {
            if slot.is_some() {
                if let Some(m) = moved.get_mut(old) {
                    *m = next;
                }
                next += 1;
            }
        }
        self.shared.retain(Option::is_some);
        self.expired = 0;
        // Positions moved: look at every attribute at the next pass.
        self.touch_all();
        for slot in self.slots.values_mut() {
            if let Slot::Shared(pos) = slot {
                if let Some(&m) = moved.get(*pos) {
                    *pos = m as usize;
                }
            }
        }
        for list in &mut self.of_account {
            list.retain_mut(|pos| match moved.get(*pos as usize) {
                Some(&m) if m != u32::MAX => {
                    *pos = m;
                    true
                }
                _ => false,
            });
        }
    }

    /// Attributes shared by at least two accounts: the non-minute ones in the order they
    /// became shared, then the minutes in time order.
    #[cfg(test)]
    pub fn shared(&self) -> impl Iterator<Item = (KeyKind, u64, &KeyEntry)> {
        self.shared
            .iter()
            .flatten()
            .map(|((kind, key), e)| (*kind, *key, e))
            .chain(
                self.minutes
                    .iter()
                    .map(|(key, e)| (KeyKind::Minute, *key, e)),
            )
    }

    /// The positions in `shared` of the attributes whose linking of candidates may have
    /// changed since the latest pass (those that linked then, and those whose candidate count
    /// or total changed since), sorted; forgets the changes.
    pub fn take_to_check(&mut self) -> Vec<u32> {
        for &pos in &self.linking {
            touch(&mut self.touched, pos);
        }
        let mut check = Vec::new();
        for (w, word) in self.touched.iter_mut().enumerate() {
            let mut bits = std::mem::take(word);
            while bits != 0 {
                check.push(w as u32 * 64 + bits.trailing_zeros());
                bits &= bits - 1;
            }
        }
        check
    }

    /// Marks every position, so that the next pass looks at every shared attribute.
    fn touch_all(&mut self) {
        self.linking.clear();
        self.touched.clear();
        self.touched
            .resize(self.shared.len().div_ceil(64), u64::MAX);
    }

    /// Records the positions in `shared` of the attributes that link candidates at this pass.
    pub fn set_linking(&mut self, positions: Vec<u32>) {
        self.linking = positions;
    }

    /// The kept tally, and the shared attributes at `positions` (in that order; expired ones
    /// skipped) then every shared minute in time order, each with where it is and its key, for
    /// discovery to bring its derived values and the tally up to date.
    pub fn visit_mut<'s>(
        &'s mut self,
        positions: &'s [u32],
    ) -> (Tallies<'s>, impl Iterator<Item = Visit<'s>>) {
        // Positions are sorted and distinct: one walk along the list picks them out.
        let mut wanted = positions.iter().copied().peekable();
        let shared = self
            .shared
            .iter_mut()
            .enumerate()
            .filter_map(move |(i, slot)| {
                let i = i as u32;
                wanted.next_if_eq(&i)?;
                slot.as_mut().map(|(key, e)| (At::Shared(i), *key, e))
            });
        let minutes = self
            .minutes
            .iter_mut()
            .enumerate()
            .map(|(i, (key, e))| (At::Minute(i as u32), (KeyKind::Minute, *key), e));
        ([&mut self.tally, &mut self.second], shared.chain(minutes))
    }

    /// The attribute at `at`.
    pub fn at(&self, at: At) -> Option<((KeyKind, u64), &KeyEntry)> {
        match at {
            At::Shared(i) => self
                .shared
                .get(i as usize)
                .and_then(Option::as_ref)
                .map(|(k, e)| (*k, e)),
            At::Minute(i) => self
                .minutes
                .get(i as usize)
                .map(|(key, e)| ((KeyKind::Minute, *key), e)),
        }
    }

    /// The attribute at `at`, to update, with the kept tally.
    pub fn with_tally(&mut self, at: At) -> Option<(&mut Tally, &mut KeyEntry)> {
        let entry = entry_at(&mut self.shared, &mut self.minutes, at)?;
        Some((&mut self.tally, entry))
    }

    /// The attribute at `at`, to update, with the kept tally of the second merge round.
    pub fn with_second(&mut self, at: At) -> Option<(&mut Tally, &mut KeyEntry)> {
        let entry = entry_at(&mut self.shared, &mut self.minutes, at)?;
        Some((&mut self.second, entry))
    }

    /// Records each account's payment cluster (`cluster[a]`) and forgets the derived
    /// payment clusters of the attributes of every account whose cluster changed since the
    /// last call (minutes keep none).
    pub fn set_clusters(&mut self, cluster: &[u32]) {
        for (a, &c) in cluster.iter().enumerate() {
            if self.cluster_of.get(a) == Some(&c) {
                continue;
            }
            let Some(list) = self.of_account.get(a) else {
                continue;
            };
            for &pos in list {
                if let Some(Some((_, e))) = self.shared.get_mut(pos as usize) {
                    e.derived.roots = None;
                }
            }
        }
        self.cluster_of.clear();
        self.cluster_of.extend_from_slice(cluster);
    }

    /// Forgets everything discovery kept between passes, so the next pass derives it all
    /// afresh.
    #[cfg(test)]
    pub fn forget_derived(&mut self) {
        for (_, e) in self.shared.iter_mut().flatten() {
            e.derived = Derived::default();
            e.counted = None;
            e.counted_second = None;
        }
        self.tally = Tally::default();
        self.second = Tally::default();
        self.touch_all();
        for (_, e) in &mut self.minutes {
            e.derived = Derived::default();
        }
        self.cluster_of.clear();
    }

    /// Each account's payment cluster as of the latest pass.
    #[cfg(test)]
    pub fn clusters(&self) -> &[u32] {
        &self.cluster_of
    }

    /// Number of attributes held.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.slots.len()
    }
}

/// The kept tallies of the first and second merge rounds.
pub(crate) type Tallies<'s> = [&'s mut Tally; 2];

/// An attribute [`KeyIndex::visit_mut`] hands over: where it is, its key, its entry.
pub(crate) type Visit<'s> = (At, (KeyKind, u64), &'s mut KeyEntry);

/// The attribute at `at` among the shared attributes and minutes of an index.
fn entry_at<'s>(
    shared: &'s mut [Option<((KeyKind, u64), KeyEntry)>],
    minutes: &'s mut VecDeque<(u64, KeyEntry)>,
    at: At,
) -> Option<&'s mut KeyEntry> {
    match at {
        At::Shared(i) => shared
            .get_mut(i as usize)
            .and_then(Option::as_mut)
            .map(|(_, e)| e),
        At::Minute(i) => minutes.get_mut(i as usize).map(|(_, e)| e),
    }
}

/// Sets bit `pos` of `bits`, growing it as needed.
fn touch(bits: &mut Vec<u64>, pos: u32) {
    let w = pos as usize / 64;
    if bits.len() <= w {
        bits.resize(w + 1, 0);
    }
    if let Some(word) = bits.get_mut(w) {
        *word |= 1 << (pos % 64);
    }
}

/// What one use changed about an attribute's member.
#[derive(Debug, Clone, Copy, Default)]
struct Change {
    /// The account became a member.
    joined: bool,
    /// The member's uses reached the kind's minimum.
    qualified: bool,
    /// Another use by the account can change nothing but `last_seen`: it is a member that
    /// has used the attribute at least twice (no kind's minimum is higher, and `reused` counts
    /// the second use), or the attribute is full and will not count it again.
    settled: bool,
}

impl KeyEntry {
    fn add(&mut self, cfg: &Config, account: u32, now: i64, min_uses: u16) -> Change {
        self.last_seen = self.last_seen.max(now);
        match self.members.binary_search(&account) {
            Ok(at) => {
                if let Some(u) = self.uses.get_mut(at) {
                    *u = u.saturating_add(1);
                    if *u == 2 {
                        self.reused += 1;
                    }
                    let qualified = *u == min_uses;
                    return Change {
                        joined: false,
                        qualified,
                        settled: *u >= 2,
                    };
                }
            }
            Err(at) => {
                if self.members.len() < cfg.max_members_per_key {
                    self.members.insert(at, account);
                    self.uses.insert(at, 1);
                    self.total = self.total.saturating_add(1);
                    self.newest = self.newest.max(account);
                    let qualified = min_uses <= 1;
                    return Change {
                        joined: true,
                        qualified,
                        settled: false,
                    };
                }
                if account > self.newest {
                    // Beyond the cap only accounts newer than every one counted so far are
                    // counted: they cannot have been counted already (indices grow with first
                    // sight), so the count stays exact for them and approximate for the rest.
                    self.total = self.total.saturating_add(1);
                    self.newest = account;
                }
                // Members are never removed, so the attribute stays full; the account is not
                // newer than `newest` any more.
                return Change {
                    settled: true,
                    ..Change::default()
                };
            }
        }
        Change::default()
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
        let e = shared[0].2;
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
        let kept: Vec<_> = idx.shared().map(|(k, v, _)| (k, v)).collect();
        assert_eq!(kept, vec![(KeyKind::Payment, 3), (KeyKind::Minute, 2)]);
        // Positions were rebuilt: adding to a kept key still finds it.
        idx.add(&cfg, KeyKind::Payment, 3, String::new, 4, 5);
        assert_eq!(idx.shared().next().map(|(_, _, e)| e.total), Some(3));
    }

    /// Lives short enough that attributes expire and the shared list is compacted often.
    fn short_lives() -> Config {
        Config {
            singleton_ttl_ms: 400,
            shared_ttl_ms: 150,
            synchrony_window_ms: 300,
            ..Config::default()
        }
    }

    #[test]
    fn repeats_remembered_per_account_change_nothing() {
        // Short lives and a small cap, so that attributes expire, the shared list is compacted
        // (moving what remembered positions point to) and attributes fill up.
        let cfg = Config {
            max_members_per_key: 4,
            ..short_lives()
        };
        let mut fast = KeyIndex::default();
        let mut plain = KeyIndex {
            no_recent: true,
            ..KeyIndex::default()
        };
        let mut candidate = vec![false; 10];
        let mut next = crate::hash::xorshift(0x2545_f491_4f6c_dd1d);
        // What the rest of discovery reads of an attribute: uses only as far as 2 (no kind
        // asks for more).
        let view = |idx: &KeyIndex| {
            idx.shared()
                .map(|(kind, key, e)| {
                    let uses: Vec<u16> = e.uses.iter().map(|&u| u.min(2)).collect();
                    let counts = (e.reused, e.total, e.candidates, e.last_seen);
                    (kind, key, e.members.clone(), uses, counts)
                })
                .collect::<Vec<_>>()
        };
        for step in 0..20_000i64 {
            // Mostly the remembered kinds, each account repeating a value for a while.
            let kind = [
                KeyKind::Template,
                KeyKind::Minute,
                KeyKind::SystemPrompt,
                KeyKind::Network,
                KeyKind::Client,
                KeyKind::Asn,
                KeyKind::Client,
                KeyKind::Network,
            ][next(8) as usize];
            let account = next(10) as u32;
            let key = (u64::from(account) + step as u64 / 50 + next(2)) % 7;
            for idx in [&mut fast, &mut plain] {
                idx.add(&cfg, kind, key, String::new, account, step);
                if step % 29 == 0 {
                    idx.purge(&cfg, step);
                }
            }
            if step % 83 == 0 {
                for c in candidate.iter_mut() {
                    *c = next(3) == 0;
                }
                fast.set_candidates(&candidate);
                plain.set_candidates(&candidate);
                assert_eq!(fast.take_to_check(), plain.take_to_check(), "step {step}");
                assert_eq!(view(&fast), view(&plain), "step {step}");
            }
        }
        assert!(fast.recent.iter().flatten().any(|r| r.pos != u32::MAX));
    }

    fn recount(kind: KeyKind, e: &KeyEntry, candidate: &[bool]) -> u32 {
        e.members
            .iter()
            .zip(&e.uses)
            .filter(|&(&a, &u)| u >= kind.min_uses() && candidate[a as usize])
            .count() as u32
    }

    #[test]
    fn candidate_counts_stay_equal_to_a_recount() {
        // Short lives, so that attributes expire and the shared list is compacted often.
        let cfg = Config {
            max_members_per_key: 6,
            ..short_lives()
        };
        let mut idx = KeyIndex::default();
        let mut candidate = vec![false; 12];
        let mut next = crate::hash::xorshift(0x9e37_79b9_7f4a_7c15);
        for step in 0..5_000i64 {
            let kind = KeyKind::ALL[next(KeyKind::ALL.len() as u64) as usize];
            // Few keys and accounts, so that keys become shared, hit the member cap and
            // accounts flip often.
            idx.add(&cfg, kind, next(6), String::new, next(12) as u32, step);
            if step % 31 == 0 {
                idx.purge(&cfg, step);
            }
            if step % 97 == 0 {
                // Counts kept up to date between passes (minutes are recounted per pass).
                for (kind, _, e) in idx.shared().filter(|(k, _, _)| *k != KeyKind::Minute) {
                    assert_eq!(
                        e.candidates,
                        recount(kind, e, &candidate),
                        "{kind:?} before step {step}"
                    );
                }
                for c in candidate.iter_mut() {
                    *c = next(2) == 1;
                }
                idx.set_candidates(&candidate);
                for (kind, _, e) in idx.shared() {
                    assert_eq!(
                        e.candidates,
                        recount(kind, e, &candidate),
                        "{kind:?} at step {step}"
                    );
                }
            }
        }
    }

    #[test]
    fn unused_shared_attributes_expire_but_identity_stays() {
        let cfg = Config::default();
        let day = moat_types::Timestamp::DAY;
        let mut idx = KeyIndex::default();
        for key in 0..10u64 {
            for a in [1, 2] {
                idx.add(&cfg, KeyKind::Template, key, String::new, a, 0);
            }
        }
        idx.add(&cfg, KeyKind::Payment, 99, String::new, 1, 0);
        idx.add(&cfg, KeyKind::Payment, 99, String::new, 2, 0);
        // Template 3 stays in use; the rest go quiet.
        idx.add(&cfg, KeyKind::Template, 3, String::new, 1, 6 * day);
        idx.purge(&cfg, cfg.shared_ttl_ms + day);
        let kept: Vec<_> = idx.shared().map(|(k, v, _)| (k, v)).collect();
        assert_eq!(kept, vec![(KeyKind::Template, 3), (KeyKind::Payment, 99)]);
        // More than half expired, so the list was compacted: uses still reach the right
        // entries, and an expired attribute starts over as a new one.
        idx.add(&cfg, KeyKind::Template, 3, String::new, 7, 8 * day);
        idx.add(&cfg, KeyKind::Payment, 99, String::new, 8, 8 * day);
        idx.add(&cfg, KeyKind::Template, 5, String::new, 9, 8 * day);
        let totals: Vec<_> = idx.shared().map(|(_, v, e)| (v, e.total)).collect();
        assert_eq!(totals, vec![(3, 3), (99, 3)]);
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

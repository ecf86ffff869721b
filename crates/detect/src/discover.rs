//! Campaign discovery: links candidate accounts through shared attributes and groups them.
//!
//! An attribute links the candidates among its accounts only when candidates are most of its
//! accounts (`min_suspicious_share`): a payment method, e-mail domain, address block, sign-up
//! window, system prompt or prompt wrapper shared by a cluster of harvesters links them, while
//! a carrier NAT address, a mail provider or a common sentence shared with many ordinary users
//! links nobody.
//!
//! A shared payment method ties accounts into a cluster on its own. Clusters (and lone
//! accounts) are then merged by how many distinct attributes they share: with their strongest
//! partner, or with any partner when the shared attributes are a good share of both sides'
//! strongest ties (`min_relative_tie`). A campaign's clusters share hundreds of wrappers,
//! address blocks and sign-up windows with each other and only a few with another campaign
//! that copies the same public phrasings or rents exits from the same proxy provider, so
//! campaigns stay apart. Finally, every member must be tied to the rest of its group by a
//! shared payment method or by two classes of evidence of its own (content, sign-up window,
//! address block, e-mail domain), so a lone account that merely sends a popular wrapper is
//! not swept into a campaign. Groups of at least `min_campaign_size` accounts are campaigns.
//! Not where accounts are scored on their own (`account`).

use std::borrow::Cow;
use std::collections::BTreeMap;

use rustc_hash::FxHashMap as HashMap;

use crate::index::{At, Derived, KeyEntry, KeyIndex, KeyKind};
use crate::Config;

/// Union-find over account indices with path halving and union by size.
#[derive(Debug, Default, Clone)]
pub(crate) struct UnionFind {
    parent: Vec<u32>,
    size: Vec<u32>,
}

impl UnionFind {
    pub fn new(n: usize) -> Self {
        UnionFind {
            parent: (0..n as u32).collect(),
            size: vec![1; n],
        }
    }

    pub fn find(&mut self, mut x: u32) -> u32 {
        while let Some(&p) = self.parent.get(x as usize) {
            if p == x {
                break;
            }
            let gp = self.parent.get(p as usize).copied().unwrap_or(p);
            if let Some(slot) = self.parent.get_mut(x as usize) {
                *slot = gp;
            }
            x = gp;
        }
        x
    }

    pub fn union(&mut self, a: u32, b: u32) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra == rb {
            return;
        }
        let (Some(&sa), Some(&sb)) = (self.size.get(ra as usize), self.size.get(rb as usize))
        else {
            return;
        };
        let (big, small) = if sa >= sb { (ra, rb) } else { (rb, ra) };
        if let Some(p) = self.parent.get_mut(small as usize) {
            *p = big;
        }
        if let Some(s) = self.size.get_mut(big as usize) {
            *s = sa + sb;
        }
    }

    /// Size of the set whose root is `root`.
    pub fn size_of(&self, root: u32) -> u32 {
        self.size.get(root as usize).copied().unwrap_or(1)
    }

    /// Unions every account of `accounts` with the first.
    fn union_all(&mut self, accounts: &[u32]) {
        if let Some((&first, rest)) = accounts.split_first() {
            for &a in rest {
                self.union(first, a);
            }
        }
    }
}

/// The classes of evidence; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Identity,
    Content,
    Signup,
    Network,
    Email,
    Client,
    Timing,
}

impl Class {
    fn of(kind: KeyKind) -> Class {
        match kind {
            KeyKind::Payment => Class::Identity,
            KeyKind::EmailDomain => Class::Email,
            KeyKind::Template | KeyKind::SystemPrompt => Class::Content,
            KeyKind::Signup => Class::Signup,
            KeyKind::Network | KeyKind::Asn => Class::Network,
            KeyKind::Client => Class::Client,
            KeyKind::Minute => Class::Timing,
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// One group of linked candidates, with the attributes that link them.
#[derive(Debug, Clone)]
pub(crate) struct Group {
    /// Member account indices, sorted.
    pub members: Vec<u32>,
    /// For each member (parallel to `members`), the kinds of attribute it shares with other
    /// members (bits of [`KeyKind::bit`]).
    pub ties: Vec<u16>,
    /// Linking attributes by kind.
    pub evidence: BTreeMap<KeyKind, Evidence>,
}

/// Summary of one kind of linking attribute within a group.
#[derive(Debug, Clone, Default)]
pub(crate) struct Evidence {
    /// Distinct attribute values of this kind linking members.
    pub values: u32,
    /// Members sharing the most common value.
    pub largest: u32,
    /// Label of the most common value (may be empty for hashed content).
    pub label: String,
    /// Key of the most common value.
    pub key: u64,
}

/// An attribute, its entry, and the candidates it links.
type Link<'a> = ((KeyKind, u64), &'a KeyEntry, &'a [u32]);

/// Whether a shared attribute may link candidates: at least two of its members are, and
/// they are most of its members.
fn links_candidates(cfg: &Config, entry: &KeyEntry) -> bool {
    let count = entry.candidates;
    count >= 2 && count as f32 >= cfg.min_suspicious_share * entry.total as f32
}

/// The shared attributes that may link candidates: used mostly by candidates, and (for
/// wrappers) reused by the accounts that send them (see [`KeyKind::min_uses`]). The index
/// keeps each attribute's candidate count current and notes the attributes whose count or
/// total changed, so only those and the ones that linked at the last pass are looked at; it
/// keeps each one's qualifying candidates from the last pass until they may have changed, so
/// only those are collected again.
#[inline(never)] // once per pass; a frame of its own in profiles
fn refresh_links(cfg: &Config, index: &mut KeyIndex, candidate: &[bool]) -> Vec<(At, KeyKind)> {
    let mut out = Vec::new();
    let check = index.take_to_check();
    let mut linking = Vec::new();
    let ([tally, second], entries) = index.visit_mut(&check);
    for (at, (kind, value), entry) in entries {
        if !links_candidates(cfg, entry) {
            // The kept tallies count only the links of this pass.
            tally.take_back(kind, value, &mut entry.counted);
            second.take_back(kind, value, &mut entry.counted_second);
            continue;
        }
        if kind == KeyKind::Minute || entry.derived.cands.is_none() {
            let min_uses = kind.min_uses();
            // The index keeps the count current, so the list is allocated once.
            let mut cands = Vec::with_capacity(entry.candidates as usize);
            cands.extend(
                entry
                    .members
                    .iter()
                    .zip(&entry.uses)
                    .filter(|&(&a, &u)| {
                        u >= min_uses && candidate.get(a as usize).copied().unwrap_or(false)
                    })
                    .map(|(&a, _)| a),
            );
            entry.derived = Derived {
                cands: Some(cands),
                roots: None,
            };
        }
        if let At::Shared(p) = at {
            linking.push(p);
        }
        out.push((at, kind));
    }
    index.set_linking(linking);
    out
}

/// A key touching at most this many clusters ties every pair of them; one touching more ties
/// each cluster to [`SPREAD_PARTNERS`] pseudo-random others among them, which keeps the cost
/// linear while keeping pair counts proportional.
const FULL_PAIRS: usize = 16;
const SPREAD_PARTNERS: usize = 3;
/// Weight of one shared attribute other than content in pair counts (content weighs 1).
const UNIT: u32 = 4;

/// Weight of a shared attribute of this kind in pair counts. Phrasings are copied between
/// actors far more than addresses and sign-up hours are shared, so a shared wrapper or system
/// prompt weighs a quarter of the rest; so do client builds, minutes and autonomous systems
/// (one of which spans many blocks).
fn pair_weight(kind: KeyKind) -> u32 {
    match kind {
        KeyKind::Template
        | KeyKind::SystemPrompt
        | KeyKind::Client
        | KeyKind::Minute
        | KeyKind::Asn => 1,
        KeyKind::Payment | KeyKind::Network | KeyKind::Signup | KeyKind::EmailDomain => UNIT,
    }
}

/// Whether sharing an attribute of this kind counts toward a member's own ties. Timing and
/// autonomous systems tie clusters together but do not vouch for a single account: a
/// legitimate burst (an evaluation run on a new model) can share minutes with a campaign, and
/// a legitimate backend can run on the cloud a campaign rents.
fn vouches(kind: KeyKind) -> bool {
    !matches!(kind, KeyKind::Minute | KeyKind::Asn)
}

/// The ties between clusters that a set of links makes: for each pair of clusters, the
/// weighted number of attributes they share, and for each cluster, the weighted number of
/// attributes it shares at all (with other clusters or within itself). Each merge round's
/// tally is kept in the index between passes and updated only for the links that changed
/// (see [`discover`]); minutes are added for a pass and taken back after it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tally {
    /// Weighted shared attributes of each pair of clusters (lower root first); no zeros.
    pairs: HashMap<(u32, u32), u32>,
    /// Weighted shared attributes of each cluster, indexed by root (an account index).
    touching: Vec<u32>,
    /// Scratch for the pairing order of large links: each cluster with its key.
    keyed: Vec<(u64, u32)>,
    /// Scratch for [`Tally::replace`]: where each old cluster sits among the new, and each
    /// new one among the old (`u32::MAX`: absent).
    at_new: Vec<u32>,
    at_old: Vec<u32>,
}

/// Adds `weight` to the attributes cluster `r` shares, or takes it back.
fn touch_cluster(touching: &mut Vec<u32>, r: u32, weight: u32, add: bool) {
    if touching.len() <= r as usize {
        touching.resize(r as usize + 1, 0);
    }
    if let Some(t) = touching.get_mut(r as usize) {
        *t = if add {
            *t + weight
        } else {
            t.saturating_sub(weight)
        };
    }
}

/// Adds `weight` to the tie of clusters `a` and `b`, or takes it back.
fn tie(pairs: &mut HashMap<(u32, u32), u32>, a: u32, b: u32, weight: u32, add: bool) {
    let pair = if a < b { (a, b) } else { (b, a) };
    if add {
        *pairs.entry(pair).or_default() += weight;
    } else if let std::collections::hash_map::Entry::Occupied(mut o) = pairs.entry(pair) {
        if *o.get() <= weight {
            o.remove();
        } else {
            *o.get_mut() -= weight;
        }
    }
}

/// Adds (`add`) or takes back the ties of the cyclic spread order `list` that another order,
/// of `other` clusters, does not have: `at_other[i]` is where `list[i]` sits in it
/// (`u32::MAX`: absent). See [`Tally::replace`].
fn spread_ties_apart(
    pairs: &mut HashMap<(u32, u32), u32>,
    list: &[u32],
    at_other: &[u32],
    other: usize,
    weight: u32,
    add: bool,
) {
    let m = list.len();
    for (i, &a) in list.iter().enumerate() {
        for d in 1..=SPREAD_PARTNERS {
            let k = (i + d) % m;
            let kept = match (at_other.get(i), at_other.get(k)) {
                (Some(&p), Some(&q)) if p != u32::MAX && q != u32::MAX => follows(p, q, other),
                _ => false,
            };
            if !kept {
                if let Some(&b) = list.get(k) {
                    tie(pairs, a, b, weight, add);
                }
            }
        }
    }
}

/// Whether position `to` follows position `from` by one to [`SPREAD_PARTNERS`] places in a
/// cyclic order of `m` clusters.
fn follows(from: u32, to: u32, m: usize) -> bool {
    let m = m as u64;
    let d = (u64::from(to) + m - u64::from(from) % m) % m;
    (1..=SPREAD_PARTNERS as u64).contains(&d)
}

impl Tally {
    /// Adds (`add`) or takes back the ties of one link of kind `kind` and key `value` whose
    /// candidates lie in the distinct clusters `roots`. Payment links tie on their own and add
    /// nothing here.
    pub(crate) fn apply(&mut self, kind: KeyKind, value: u64, roots: &[u32], add: bool) {
        if Class::of(kind) == Class::Identity {
            return;
        }
        let weight = pair_weight(kind);
        let Tally {
            pairs,
            touching,
            keyed,
            ..
        } = self;
        for &r in roots {
            touch_cluster(touching, r, weight, add);
        }
        let mut tie = |a: u32, b: u32| tie(pairs, a, b, weight, add);
        let m = roots.len();
        if m < 2 {
            return;
        }
        if m <= FULL_PAIRS {
            for i in 0..m {
                for j in i + 1..m {
                    tie(roots[i], roots[j]);
                }
            }
        } else {
            spread_keys(value, roots, keyed);
            for i in 0..m {
                for d in 1..=SPREAD_PARTNERS {
                    tie(keyed[i].1, keyed[(i + d) % m].1);
                }
            }
        }
    }

    /// Brings a kept tally up to date with a link that now ties clusters `roots` (in the order
    /// its ties follow), `counted` holding those it is counted with so far: only the ties that
    /// differ change.
    pub(crate) fn keep(
        &mut self,
        kind: KeyKind,
        value: u64,
        counted: &mut Option<Box<[u32]>>,
        roots: &[u32],
    ) {
        if counted.as_deref() == Some(roots) {
            return;
        }
        match counted.take() {
            Some(old) => self.replace(kind, value, &old, roots),
            None => self.apply(kind, value, roots, true),
        }
        *counted = Some(roots.into());
    }

    /// Takes back from a kept tally the ties of a link that no longer counts (`counted`, the
    /// clusters it was counted with, is emptied).
    pub(crate) fn take_back(
        &mut self,
        kind: KeyKind,
        value: u64,
        counted: &mut Option<Box<[u32]>>,
    ) {
        if let Some(old) = counted.take() {
            self.apply(kind, value, &old, false);
        }
    }

    /// Takes back the ties of one link counted with clusters `old` and adds those with
    /// clusters `new` (each as [`Tally::apply`] takes them), touching only the ties that
    /// differ: a changed link has mostly gained or lost a cluster or two, and every tie the
    /// two share would be taken back and added again. Both orders are already those the ties
    /// follow (by root up to [`FULL_PAIRS`] clusters, the spread order beyond), so matching
    /// them is one walk. A link that crosses [`FULL_PAIRS`] is replaced whole.
    pub(crate) fn replace(&mut self, kind: KeyKind, value: u64, old: &[u32], new: &[u32]) {
        if Class::of(kind) == Class::Identity {
            return;
        }
        let full = old.len() <= FULL_PAIRS && new.len() <= FULL_PAIRS;
        let spread = old.len() > FULL_PAIRS && new.len() > FULL_PAIRS;
        if !full && !spread {
            self.apply(kind, value, old, false);
            self.apply(kind, value, new, true);
            return;
        }
        let weight = pair_weight(kind);
        let Tally {
            pairs,
            touching,
            at_new,
            at_old,
            ..
        } = self;
        // The order both lists are in; keys are distinct (`mix` is a bijection).
        let key = |r: u32| {
            if spread {
                crate::hash::mix(value ^ u64::from(r))
            } else {
                u64::from(r)
            }
        };
        at_new.clear();
        at_new.resize(old.len(), u32::MAX);
        at_old.clear();
        at_old.resize(new.len(), u32::MAX);
        let (mut i, mut j) = (0, 0);
        while let (Some(&a), Some(&b)) = (old.get(i), new.get(j)) {
            let (ka, kb) = (key(a), key(b));
            if ka == kb {
                if let (Some(n), Some(o)) = (at_new.get_mut(i), at_old.get_mut(j)) {
                    *n = j as u32;
                    *o = i as u32;
                }
            }
            if ka <= kb {
                i += 1;
            }
            if kb <= ka {
                j += 1;
            }
        }
        let gone = |i: usize| at_new.get(i).is_none_or(|&p| p == u32::MAX);
        let fresh = |j: usize| at_old.get(j).is_none_or(|&p| p == u32::MAX);
        for (i, &r) in old.iter().enumerate() {
            if gone(i) {
                touch_cluster(touching, r, weight, false);
            }
        }
        for (j, &r) in new.iter().enumerate() {
            if fresh(j) {
                touch_cluster(touching, r, weight, true);
            }
        }
        if full {
            // Every pair of clusters is tied: the pairs with a cluster that left go, the
            // pairs with one that came are added.
            for (i, &a) in old.iter().enumerate() {
                for (k, &b) in old.iter().enumerate().skip(i + 1) {
                    if gone(i) || gone(k) {
                        tie(pairs, a, b, weight, false);
                    }
                }
            }
            for (j, &a) in new.iter().enumerate() {
                for (k, &b) in new.iter().enumerate().skip(j + 1) {
                    if fresh(j) || fresh(k) {
                        tie(pairs, a, b, weight, true);
                    }
                }
            }
            return;
        }
        // Each cluster is tied to the next SPREAD_PARTNERS in the cyclic order: a tie stays
        // when both ends are in both lists and one still follows the other as closely. (A
        // pair may follow in opposite directions across the wrap of the two orders; it is
        // then taken back and added again, which leaves its count as it was.)
        spread_ties_apart(pairs, old, at_new, new.len(), weight, false);
        spread_ties_apart(pairs, new, at_old, old.len(), weight, true);
    }
}

/// One round of merging clusters (the sets of `uf`) by the ties of `tally`; see the module
/// documentation.
/// With `mutual` false only small clusters join partners: after a round, a merged campaign's
/// internal ties no longer count, so comparing two merged campaigns by their strongest
/// remaining ties would tie them to each other.
#[inline(never)]
fn merge_round(cfg: &Config, tally: &Tally, uf: &UnionFind, mutual: bool) -> UnionFind {
    let (pairs, touching) = (&tally.pairs, &tally.touching);
    // Each cluster's strongest tie, and the partner it goes to (ties: the lower root).
    let mut best: Vec<(u32, u32)> = vec![(0, u32::MAX); uf.parent.len()];
    for (&(a, b), &count) in pairs {
        for (x, y) in [(a, b), (b, a)] {
            if let Some(slot) = best.get_mut(x as usize) {
                if count > slot.0 || (count == slot.0 && y < slot.1) {
                    *slot = (count, y);
                }
            }
        }
    }
    let strength = |x: u32| best.get(x as usize).map_or(0, |b| b.0);
    // The pairs to merge (each decided on `uf` as it was before this round), merged in pair
    // order so that the clusters' roots do not depend on the map's.
    let mut merges: Vec<(u32, u32)> = Vec::new();
    for (&(a, b), &count) in pairs {
        if count < cfg.min_shared_attributes * UNIT {
            continue;
        }
        // A lone account or small cluster joins its strongest partner when most of what it
        // shares, it shares with that partner; established clusters (each a campaign on its
        // own) merge only by the mutual rule.
        let joins = |x: u32, y: u32| {
            (uf.size_of(x) as usize) < cfg.min_campaign_size
                && best.get(x as usize).is_some_and(|&(_, p)| p == y)
                && count as f32
                    >= cfg.min_relative_tie * touching.get(x as usize).copied().unwrap_or(0) as f32
        };
        let nearest = joins(a, b) || joins(b, a);
        let strong = mutual
            && count as f32 >= cfg.min_relative_tie * strength(a) as f32
            && count as f32 >= cfg.min_relative_tie * strength(b) as f32;
        if nearest || strong {
            merges.push((a, b));
        }
    }
    merges.sort_unstable();
    let mut merged = uf.clone();
    for (a, b) in merges {
        merged.union(a, b);
    }
    merged
}

/// Puts the clusters of a link with more than [`FULL_PAIRS`] of them in the pseudo-random order
/// in which each is tied to the next [`SPREAD_PARTNERS`] (`value` is the link's key). Kept
/// links are stored in this order, so that sorting them again each pass costs one look.
fn spread_order(value: u64, roots: &mut [u32], keyed: &mut Vec<(u64, u32)>) {
    spread_keys(value, roots, keyed);
    for (slot, &(_, r)) in roots.iter_mut().zip(keyed.iter()) {
        *slot = r;
    }
}

/// `roots` with their keys in `keyed`, in [`spread_order`]. Each key is computed once (a
/// comparison would compute two) and sorted with its root, not through an index; keys are
/// distinct (`mix` is a bijection), so the order is the same as by any sort on them.
fn spread_keys(value: u64, roots: &[u32], keyed: &mut Vec<(u64, u32)>) {
    keyed.clear();
    keyed.extend(
        roots
            .iter()
            .map(|&r| (crate::hash::mix(value ^ u64::from(r)), r)),
    );
    keyed.sort_unstable();
}

/// Puts a link's distinct clusters in the order its ties follow: by root up to
/// [`FULL_PAIRS`], the [`spread_order`] beyond (how kept links are stored).
fn tie_order(value: u64, roots: &mut [u32], keyed: &mut Vec<(u64, u32)>) {
    if roots.len() > FULL_PAIRS {
        spread_order(value, roots, keyed);
    } else {
        roots.sort_unstable();
    }
}

/// Adds cluster `r` to a link's distinct clusters held in [`tie_order`] (`value` is the link's
/// key), unless it is there already: the list [`tie_order`] would give with `r` among them.
pub(crate) fn add_in_tie_order(value: u64, roots: &mut Vec<u32>, r: u32) {
    if roots.len() > FULL_PAIRS {
        let key = |x: u32| (crate::hash::mix(value ^ u64::from(x)), x);
        if let Err(at) = roots.binary_search_by_key(&key(r), |&x| key(x)) {
            roots.insert(at, r);
        }
        return;
    }
    if let Err(at) = roots.binary_search(&r) {
        roots.insert(at, r);
        if roots.len() > FULL_PAIRS {
            spread_order(value, roots, &mut Vec::new());
        }
    }
}

/// A merge round over a kept `tally` with this pass's shared `minutes` (key and clusters)
/// counted too; they are taken back afterwards, as minutes are recounted every pass.
fn merge_with_minutes(
    cfg: &Config,
    tally: &mut Tally,
    minutes: &[(u64, Vec<u32>)],
    uf: &UnionFind,
    mutual: bool,
) -> UnionFind {
    for (value, roots) in minutes {
        tally.apply(KeyKind::Minute, *value, roots, true);
    }
    let merged = merge_round(cfg, tally, uf, mutual);
    for (value, roots) in minutes {
        tally.apply(KeyKind::Minute, *value, roots, false);
    }
    merged
}

/// Every account's root in `uf`, looked up once (a link's candidates then map to their
/// clusters by indexing instead of by a union-find walk each).
fn roots_of(uf: &mut UnionFind) -> Vec<u32> {
    (0..uf.parent.len() as u32).map(|a| uf.find(a)).collect()
}

/// The distinct values of `root[a]` for `a` in `accounts`, in the order first met (callers
/// sort them into the order their ties follow). `seen` (one slot per account, all
/// `u32::MAX`) marks roots already taken and is restored before returning.
fn distinct_roots(root: &[u32], accounts: &[u32], seen: &mut [u32]) -> Vec<u32> {
    let mut roots = Vec::with_capacity(accounts.len().min(FULL_PAIRS));
    for &a in accounts {
        let r = root.get(a as usize).copied().unwrap_or(a);
        if let Some(s) = seen.get_mut(r as usize) {
            if *s == u32::MAX {
                *s = 0;
                roots.push(r);
            }
        }
    }
    for &r in &roots {
        if let Some(s) = seen.get_mut(r as usize) {
            *s = u32::MAX;
        }
    }
    roots
}

/// Groups the candidates (`candidate[i]` for account `i`) linked through shared attributes;
/// see the module documentation for the rules.
pub(crate) fn discover(cfg: &Config, index: &mut KeyIndex, candidate: &[bool]) -> Vec<Group> {
    let n = candidate.len();
    index.set_candidates(candidate);
    let found = refresh_links(cfg, index, candidate);
    // A shared payment method ties accounts on its own.
    let mut uf = UnionFind::new(n);
    for &(at, kind) in &found {
        if Class::of(kind) == Class::Identity {
            if let Some((_, e)) = index.at(at) {
                uf.union_all(e.derived.cands.as_deref().unwrap_or_default());
            }
        }
    }
    // Two rounds: established clusters merge first, then lone accounts and small clusters
    // see the merged campaigns whole when they pick their strongest partner. Each round sees
    // every link as the distinct clusters it touches (payment links tie on their own); the
    // first round's are kept between passes for the attributes whose candidates and their
    // payment clusters did not change.
    let mut seen = vec![u32::MAX; n];
    let mut keyed = Vec::new();
    let root = roots_of(&mut uf);
    index.set_clusters(&root);
    for &(at, kind) in &found {
        if Class::of(kind) == Class::Identity {
            continue;
        }
        let value = index.at(at).map_or(0, |(key, _)| key.1);
        let Some((tally, e)) = index.with_tally(at) else {
            continue;
        };
        let Derived { cands, roots } = &mut e.derived;
        if roots.is_none() {
            let cands = cands.as_deref().unwrap_or_default();
            let mut distinct = distinct_roots(&root, cands, &mut seen);
            tie_order(value, &mut distinct, &mut keyed);
            *roots = Some(distinct);
        }
        // The kept tally counts every qualifying link but minutes with its current clusters.
        if kind != KeyKind::Minute {
            tally.keep(
                kind,
                value,
                &mut e.counted,
                roots.as_deref().unwrap_or_default(),
            );
        }
    }
    // Minutes are counted for this pass only.
    let minutes: Vec<(u64, Vec<u32>)> = found
        .iter()
        .filter(|(_, kind)| *kind == KeyKind::Minute)
        .filter_map(|&(at, _)| index.at(at))
        .map(|(key, e)| (key.1, e.derived.roots.clone().unwrap_or_default()))
        .collect();
    let mut uf = merge_with_minutes(cfg, &mut index.tally, &minutes, &uf, true);
    // The second round sees each link's clusters through the first round's merges. Its
    // tally is kept like the first's: most links' clusters are the same as at the last pass.
    let root = roots_of(&mut uf);
    let mut minutes = Vec::new();
    for &(at, kind) in &found {
        if Class::of(kind) == Class::Identity {
            continue;
        }
        let value = index.at(at).map_or(0, |(key, _)| key.1);
        let Some((second, e)) = index.with_second(at) else {
            continue;
        };
        let first = e.derived.roots.as_deref().unwrap_or_default();
        // Most links' clusters merged with none outside them: the same list, already in the
        // order its ties follow.
        let roots: Cow<'_, [u32]> = if first.iter().all(|&r| root.get(r as usize) == Some(&r)) {
            Cow::Borrowed(first)
        } else {
            let mut distinct = distinct_roots(&root, first, &mut seen);
            tie_order(value, &mut distinct, &mut keyed);
            Cow::Owned(distinct)
        };
        if kind == KeyKind::Minute {
            minutes.push((value, roots.into_owned()));
        } else {
            second.keep(kind, value, &mut e.counted_second, &roots);
        }
    }
    let uf = merge_with_minutes(cfg, &mut index.second, &minutes, &uf, false);
    let index: &KeyIndex = index;
    let links: Vec<Link<'_>> = found
        .iter()
        .filter_map(|&(at, _)| index.at(at))
        .map(|(key, e)| (key, e, e.derived.cands.as_deref().unwrap_or_default()))
        .collect();
    // Every account's group, looked up once.
    let mut uf = uf;
    let group_of = roots_of(&mut uf);
    let group = |a: u32| group_of.get(a as usize).copied().unwrap_or(a);
    // Each member's own ties to the rest of its group.
    let mut kinds = vec![0u16; n];
    // For each link, the group holding most of its candidates (ties: the lower root) and how
    // many; `count[g]` counts a link's candidates in group `g` (zeroed after each link).
    let mut by_link: Vec<Option<(u32, u32)>> = Vec::with_capacity(links.len());
    let mut count = vec![0u32; n];
    // A link's candidates' groups, and its distinct groups (scratch).
    let (mut of_cand, mut groups) = (Vec::new(), Vec::new());
    for &(key, _, cands) in &links {
        of_cand.clear();
        groups.clear();
        for &a in cands {
            let g = group(a);
            of_cand.push(g);
            if let Some(c) = count.get_mut(g as usize) {
                if *c == 0 {
                    groups.push(g);
                }
                *c += 1;
            }
        }
        for (&a, &g) in cands.iter().zip(&of_cand) {
            if count.get(g as usize).is_some_and(|&c| c >= 2) {
                if let Some(k) = kinds.get_mut(a as usize) {
                    *k |= key.0.bit();
                }
            }
        }
        let mut top: Option<(u32, u32)> = None;
        for &g in &groups {
            if let Some(c) = count.get_mut(g as usize) {
                if top.is_none_or(|(r, t)| *c > t || (*c == t && g < r)) {
                    top = Some((g, *c));
                }
                *c = 0;
            }
        }
        by_link.push(top);
    }
    let tied = |k: u16| {
        let classes = KeyKind::ALL
            .iter()
            .filter(|kind| k & kind.bit() != 0 && vouches(**kind))
            .fold(0u8, |acc, kind| acc | Class::of(*kind).bit());
        classes & Class::Identity.bit() != 0 || classes.count_ones() >= 2
    };
    let mut members: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    for a in 0..n as u32 {
        if candidate[a as usize] && tied(kinds[a as usize]) {
            members.entry(group(a)).or_default().push(a);
        }
    }
    let mut by_root: BTreeMap<u32, Group> = members
        .into_iter()
        .filter(|(_, m)| m.len() >= cfg.min_campaign_size)
        .map(|(root, members)| {
            let ties = members.iter().map(|&a| kinds[a as usize]).collect();
            (
                root,
                Group {
                    members,
                    ties,
                    evidence: BTreeMap::new(),
                },
            )
        })
        .collect();
    // Count an attribute for the group holding most of its candidates (ties: the lower root).
    for ((key, entry, _), top) in links.iter().zip(by_link) {
        let Some((root, count)) = top else {
            continue;
        };
        if count < 2 {
            continue;
        }
        if let Some(g) = by_root.get_mut(&root) {
            let ev = g.evidence.entry(key.0).or_default();
            ev.values += 1;
            if count > ev.largest {
                ev.largest = count;
                ev.label = entry.label.to_string();
                ev.key = key.1;
            }
        }
    }
    // Deterministic order: by first member.
    let mut out: Vec<Group> = by_root.into_values().collect();
    out.sort_by_key(|g| g.members.first().copied());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(cfg: &Config, links: &[(KeyKind, u64, &[u32])]) -> KeyIndex {
        let mut idx = KeyIndex::default();
        for (kind, key, accounts) in links {
            for &a in *accounts {
                // Twice: wrappers link only accounts that reuse them.
                idx.add(cfg, *kind, *key, String::new, a, 0);
                idx.add(cfg, *kind, *key, String::new, a, 0);
            }
        }
        idx
    }

    #[test]
    fn a_cluster_and_a_lone_account_with_two_classes_of_ties_merge() {
        let cfg = Config::default();
        let mut idx = index(
            &cfg,
            &[
                (KeyKind::Payment, 1, &[0, 1, 2]),
                (KeyKind::Network, 10, &[2, 3]),
                (KeyKind::Network, 11, &[1, 3]),
                (KeyKind::Template, 13, &[0, 3]),
                // A NAT-like window shared with three ordinary accounts links nobody.
                (KeyKind::Signup, 12, &[3, 4, 5, 6]),
            ],
        );
        let candidate = [true, true, true, true, false, false, false];
        let groups = discover(&cfg, &mut idx, &candidate);
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].members, vec![0, 1, 2, 3]);
        assert_eq!(
            groups[0].ties[3],
            KeyKind::Network.bit() | KeyKind::Template.bit()
        );
        assert_eq!(groups[0].evidence[&KeyKind::Payment].largest, 3);
        assert_eq!(groups[0].evidence[&KeyKind::Network].values, 2);
        assert!(!groups[0].evidence.contains_key(&KeyKind::Signup));
    }

    #[test]
    fn content_never_merges_two_established_groups() {
        let cfg = Config::default();
        let mut idx = index(
            &cfg,
            &[
                (KeyKind::Payment, 1, &[0, 1, 2]),
                (KeyKind::Payment, 2, &[3, 4, 5]),
                // A public phrasing both actors use, and a lone account reusing it.
                (KeyKind::Template, 3, &[2, 3, 6]),
            ],
        );
        let groups = discover(&cfg, &mut idx, &[true; 7]);
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].members, vec![0, 1, 2]);
        assert_eq!(groups[1].members, vec![3, 4, 5]);
    }

    #[test]
    fn a_lone_account_sending_a_campaign_wrapper_is_not_a_member() {
        let cfg = Config::default();
        let mut idx = index(
            &cfg,
            &[
                (KeyKind::Payment, 1, &[0, 1, 2]),
                (KeyKind::Signup, 2, &[0, 1, 2, 3]),
                (KeyKind::Network, 3, &[1, 3]),
                (KeyKind::Template, 4, &[0, 1, 2, 3, 4]),
            ],
        );
        let groups = discover(&cfg, &mut idx, &[true; 5]);
        assert_eq!(groups.len(), 1);
        // 3 shares a sign-up window, an address block and a wrapper; 4 only the wrapper.
        assert_eq!(groups[0].members, vec![0, 1, 2, 3]);
        assert_eq!(
            groups[0].ties[3],
            KeyKind::Signup.bit() | KeyKind::Network.bit() | KeyKind::Template.bit()
        );
    }

    #[test]
    fn clusters_merge_by_strong_ties_and_stay_apart_by_weak_ones() {
        let cfg = Config::default();
        let mut links: Vec<(KeyKind, u64, Vec<u32>)> = vec![
            // Campaign one: two payment clusters sharing ten address blocks.
            (KeyKind::Payment, 1, vec![0, 1, 2]),
            (KeyKind::Payment, 2, vec![3, 4, 5]),
            // Campaign two: likewise.
            (KeyKind::Payment, 3, vec![6, 7, 8]),
            (KeyKind::Payment, 4, vec![9, 10, 11]),
        ];
        for k in 0..10 {
            links.push((
                KeyKind::Network,
                100 + k,
                vec![k as u32 % 3, 3 + k as u32 % 3],
            ));
            links.push((
                KeyKind::Network,
                200 + k,
                vec![6 + k as u32 % 3, 9 + k as u32 % 3],
            ));
        }
        // The two campaigns rent two exits from the same proxy provider.
        links.push((KeyKind::Network, 300, vec![5, 6]));
        links.push((KeyKind::Network, 301, vec![4, 7]));
        let borrowed: Vec<(KeyKind, u64, &[u32])> = links
            .iter()
            .map(|(k, v, a)| (*k, *v, a.as_slice()))
            .collect();
        let mut idx = index(&cfg, &borrowed);
        let groups = discover(&cfg, &mut idx, &[true; 12]);
        let members: Vec<_> = groups.iter().map(|g| g.members.clone()).collect();
        assert_eq!(
            members,
            vec![vec![0, 1, 2, 3, 4, 5], vec![6, 7, 8, 9, 10, 11]]
        );
    }

    #[test]
    fn a_question_sent_once_by_each_account_links_nobody() {
        let cfg = Config::default();
        let mut idx = KeyIndex::default();
        for a in 0..5 {
            idx.add(&cfg, KeyKind::Template, 9, String::new, a, 0);
        }
        assert!(discover(&cfg, &mut idx, &[true; 5]).is_empty());
    }

    #[test]
    fn small_groups_are_not_campaigns() {
        let cfg = Config::default();
        let mut idx = index(&cfg, &[(KeyKind::Payment, 1, &[0, 1])]);
        assert!(discover(&cfg, &mut idx, &[true, true]).is_empty());
    }

    /// What a tally holds, in a form two tallies can be compared by.
    type Contents = (Vec<((u32, u32), u32)>, Vec<u32>);

    /// A tally's pairs, sorted, and its clusters' counts without trailing zeros.
    fn contents(t: &Tally) -> Contents {
        let mut p: Vec<_> = t.pairs.iter().map(|(&k, &v)| (k, v)).collect();
        p.sort_unstable();
        let mut touching = t.touching.clone();
        while touching.last() == Some(&0) {
            touching.pop();
        }
        (p, touching)
    }

    #[test]
    fn what_passes_keep_changes_no_pass() {
        // A random stream of uses and candidate changes, discovered every few steps with what
        // earlier passes kept and with everything derived afresh.
        let cfg = Config::default();
        let kinds = [
            KeyKind::Payment,
            KeyKind::Network,
            KeyKind::Template,
            KeyKind::Signup,
            KeyKind::Minute,
        ];
        let mut next = crate::hash::xorshift(0x2545_f491_4f6c_dd1d);
        let mut idx = KeyIndex::default();
        let n = 40;
        let mut candidate = vec![false; n];
        let mut found = 0;
        for step in 0..3000i64 {
            let account = next(n as u64) as u32;
            // Few values per kind, so attributes are shared by several accounts.
            let kind = kinds[next(kinds.len() as u64) as usize];
            let value = next(12) + 100 * kind as u64;
            idx.add(&cfg, kind, value, String::new, account, step * 1000);
            if next(10) == 0 {
                let a = next(n as u64) as usize;
                candidate[a] = !candidate[a];
            }
            if step % 50 == 49 {
                let kept = discover(&cfg, &mut idx, &candidate);
                let mut fresh_idx = idx.clone();
                fresh_idx.forget_derived();
                let fresh = discover(&cfg, &mut fresh_idx, &candidate);
                assert_eq!(format!("{kept:?}"), format!("{fresh:?}"), "step {step}");
                // The kept tallies hold what tallies counted afresh hold.
                assert_eq!(
                    contents(&idx.tally),
                    contents(&fresh_idx.tally),
                    "step {step}"
                );
                assert_eq!(
                    contents(&idx.second),
                    contents(&fresh_idx.second),
                    "step {step}"
                );
                found += kept.len();
            }
        }
        assert!(
            found > 0,
            "no pass found a group: the test compares nothing"
        );
    }

    #[test]
    fn what_passes_keep_equals_what_they_would_derive() {
        // Many accounts on few address blocks and templates, so that links touch more
        // clusters than FULL_PAIRS, with payment methods that merge clusters and candidates
        // that come and go: after every pass, what each attribute keeps (its qualifying
        // candidates and their clusters, brought up to date use by use) must equal what a
        // pass would derive from scratch.
        let cfg = Config::default();
        let kinds = [
            KeyKind::Network,
            KeyKind::Template,
            KeyKind::Payment,
            KeyKind::Network,
        ];
        let mut next = crate::hash::xorshift(0x6a09_e667_f3bc_c908);
        let mut idx = KeyIndex::default();
        let n = 160;
        let mut candidate: Vec<bool> = (0..n).map(|_| next(5) != 0).collect();
        let (mut spread, mut kept) = (0, 0);
        let (mut seen, mut keyed) = (vec![u32::MAX; n], Vec::new());
        for step in 0..6000i64 {
            let account = next(n as u64) as u32;
            let kind = kinds[next(kinds.len() as u64) as usize];
            // Each account pays with one of a few methods (mostly its own group's), so
            // clusters are many and mostly stable; blocks and templates are few, so each
            // links many clusters.
            let value = 1000 * kind as u64
                + match kind {
                    KeyKind::Payment if next(30) == 0 => next(n as u64 / 4),
                    KeyKind::Payment => u64::from(account) / 4,
                    _ => next(4),
                };
            idx.add(&cfg, kind, value, String::new, account, step * 100);
            if next(20) == 0 {
                let a = next(n as u64) as usize;
                candidate[a] = !candidate[a];
            }
            if step % 150 == 149 {
                discover(&cfg, &mut idx, &candidate);
                let cluster = idx.clusters().to_vec();
                for (kind, value, e) in idx.shared() {
                    if kind == KeyKind::Minute {
                        continue;
                    }
                    let Some(cands) = &e.derived.cands else {
                        continue;
                    };
                    let fresh: Vec<u32> = e
                        .members
                        .iter()
                        .zip(&e.uses)
                        .filter(|&(&a, &u)| u >= kind.min_uses() && candidate[a as usize])
                        .map(|(&a, _)| a)
                        .collect();
                    assert_eq!(cands, &fresh, "step {step}: candidates of {kind:?} {value}");
                    if let Some(roots) = &e.derived.roots {
                        let mut again = distinct_roots(&cluster, &fresh, &mut seen);
                        tie_order(value, &mut again, &mut keyed);
                        assert_eq!(roots, &again, "step {step}: clusters of {kind:?} {value}");
                        kept += 1;
                        spread += usize::from(roots.len() > FULL_PAIRS);
                    }
                }
            }
        }
        assert!(
            kept > 0 && spread > 0,
            "kept {kept}, spread {spread}: the test compares too little"
        );
    }

    #[test]
    fn adding_a_cluster_keeps_the_tie_order() {
        let mut next = crate::hash::xorshift(0x3c6e_f372_fe94_f82b);
        for round in 0..500 {
            let value = next(1 << 40);
            let size = [0, 5, 15, 16, 17, 30][round % 6];
            let mut roots: Vec<u32> = (0..size).map(|_| next(64) as u32).collect();
            roots.sort_unstable();
            roots.dedup();
            tie_order(value, &mut roots, &mut Vec::new());
            let r = next(64) as u32;
            let mut expected = roots.clone();
            expected.push(r);
            expected.sort_unstable();
            expected.dedup();
            tie_order(value, &mut expected, &mut Vec::new());
            add_in_tie_order(value, &mut roots, r);
            assert_eq!(roots, expected, "round {round}: adding {r}");
        }
    }

    #[test]
    fn replacing_a_links_clusters_equals_taking_back_and_adding() {
        let mut next = crate::hash::xorshift(0x9e37_79b9_7f4a_7c15);
        // A link's clusters as discovery keeps them: sorted, in spread order beyond FULL_PAIRS.
        let canonical = |value: u64, mut roots: Vec<u32>| {
            roots.sort_unstable();
            roots.dedup();
            tie_order(value, &mut roots, &mut Vec::new());
            roots
        };
        for round in 0..400 {
            let kind = [KeyKind::Template, KeyKind::Network, KeyKind::Minute][round % 3];
            let value = next(1 << 40);
            // Sizes around FULL_PAIRS, small ones, and changes of one cluster or many.
            let size = [3, 10, 16, 17, 20, 40][next(6) as usize];
            let universe = size as u64 * 2;
            let old: Vec<u32> = (0..size).map(|_| next(universe) as u32).collect();
            let mut new = old.clone();
            for _ in 0..1 + next(4) {
                match next(3) {
                    0 => new.push(next(universe) as u32),
                    1 if !new.is_empty() => {
                        new.remove(next(new.len() as u64) as usize);
                    }
                    _ => {
                        let at = next(new.len().max(1) as u64) as usize;
                        if let Some(r) = new.get_mut(at) {
                            *r = next(universe) as u32;
                        }
                    }
                }
            }
            let (old, new) = (canonical(value, old), canonical(value, new));
            // Other links share some of the ties, so counts above one weight are replaced too.
            let mut base = Tally::default();
            base.apply(kind, value, &old, true);
            base.apply(KeyKind::Network, value ^ 1, &old[..old.len() / 2], true);
            let mut whole = base.clone();
            whole.apply(kind, value, &old, false);
            whole.apply(kind, value, &new, true);
            let mut diff = base;
            diff.replace(kind, value, &old, &new);
            assert_eq!(
                contents(&diff),
                contents(&whole),
                "round {round}: {old:?} -> {new:?}"
            );
        }
    }

    #[test]
    fn union_find_merges_transitively() {
        let mut uf = UnionFind::new(5);
        uf.union(0, 1);
        uf.union(3, 4);
        uf.union(1, 4);
        assert_eq!(uf.find(0), uf.find(3));
        assert_ne!(uf.find(2), uf.find(0));
    }
}

//! Campaign discovery: links candidate accounts through shared attributes and groups them.
//!
//! An attribute links the candidates among its accounts only when candidates are most of its
//! accounts (`min_suspicious_share`): a payment fingerprint, address block, sign-up window,
//! system prompt or prompt wrapper shared by a cluster of harvesters links them, while a
//! carrier NAT address or a common sentence shared with many ordinary users links nobody.
//! Linked candidates are grouped with union-find; groups of at least `min_campaign_size`
//! accounts are campaigns. Not where accounts are scored on their own (`account`).

use std::collections::BTreeMap;

use crate::index::{KeyEntry, KeyIndex, KeyKind};
use crate::Config;

/// Union-find over account indices with path halving and union by size.
#[derive(Debug, Default)]
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

    /// Size of the set whose root is `root`.
    pub fn size_of(&self, root: u32) -> u32 {
        self.size.get(root as usize).copied().unwrap_or(1)
    }

    pub fn union(&mut self, a: u32, b: u32) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra == rb {
            return;
        }
        let (sa, sb) = (self.size[ra as usize], self.size[rb as usize]);
        let (big, small) = if sa >= sb { (ra, rb) } else { (rb, ra) };
        self.parent[small as usize] = big;
        self.size[big as usize] = sa + sb;
    }
}

/// One group of linked candidates, with the attributes that link them.
#[derive(Debug, Clone)]
pub(crate) struct Group {
    /// Member account indices, sorted.
    pub members: Vec<u32>,
    /// Linking attributes by kind: (number of attributes, largest member count, a label).
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

/// Whether an attribute of this kind is content (what is sent) rather than identity or
/// infrastructure (who sends it, from where).
fn is_content(kind: KeyKind) -> bool {
    matches!(kind, KeyKind::Template | KeyKind::SystemPrompt)
}

/// Whether an attribute of this kind may link accounts, or only corroborate a group.
/// Address blocks only corroborate: residential proxy networks rent the same exits to many
/// customers, so a shared /24 does not mean a shared operator.
fn may_link(kind: KeyKind) -> bool {
    kind != KeyKind::Network
}

/// An attribute, its entry, and the candidates it links.
type Link<'a> = (&'a (KeyKind, u64), &'a KeyEntry, Vec<u32>);

/// Groups the candidates (`candidate[i]` for account `i`) linked through shared attributes.
///
/// Identity and infrastructure (payment, sign-up window, address block) link first. Content
/// (prompt wrappers, system prompts) links second and more cautiously, because unrelated
/// actors copy the same public phrasings: a wrapper links only accounts that reuse it (two
/// uses or more), and content may join small pieces together or attach them to one
/// established group, but never merges two established groups.
pub(crate) fn discover(cfg: &Config, index: &KeyIndex, candidate: &[bool]) -> Vec<Group> {
    let n = candidate.len();
    let mut uf = UnionFind::new(n);
    let mut links: Vec<Link<'_>> = Vec::new();
    let shared: Vec<_> = index.shared().collect();
    let mut corroborating = Vec::new();
    for content in [false, true] {
        for &(key, entry) in &shared {
            if is_content(key.0) != content {
                continue;
            }
            let min_uses = if key.0 == KeyKind::Template { 2 } else { 1 };
            if min_uses == 2 && entry.reused < 2 {
                continue;
            }
            let cands: Vec<u32> = entry
                .members
                .iter()
                .zip(&entry.uses)
                .filter(|(&a, &u)| {
                    u >= min_uses && candidate.get(a as usize).copied().unwrap_or(false)
                })
                .map(|(&a, _)| a)
                .collect();
            if cands.len() < 2 {
                continue;
            }
            if (cands.len() as f32) < cfg.min_suspicious_share * entry.total as f32 {
                continue;
            }
            if !may_link(key.0) {
                corroborating.push((key, entry, cands));
                continue;
            }
            if content {
                let mut roots: Vec<u32> = cands.iter().map(|&a| uf.find(a)).collect();
                roots.sort_unstable();
                roots.dedup();
                let established = roots
                    .iter()
                    .filter(|&&r| uf.size_of(r) as usize >= cfg.min_campaign_size)
                    .count();
                if established > 1 {
                    continue;
                }
            }
            for w in cands.windows(2) {
                uf.union(w[0], w[1]);
            }
            links.push((key, entry, cands));
        }
    }
    let mut groups: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    for a in 0..n as u32 {
        if candidate[a as usize] {
            let root = uf.find(a);
            groups.entry(root).or_default().push(a);
        }
    }
    let mut by_root: BTreeMap<u32, Group> = groups
        .into_iter()
        .filter(|(_, m)| m.len() >= cfg.min_campaign_size)
        .map(|(root, members)| {
            (
                root,
                Group {
                    members,
                    evidence: BTreeMap::new(),
                },
            )
        })
        .collect();
    // Corroborating attributes count for a group when all their candidates are in it.
    for (key, entry, cands) in corroborating {
        let root = uf.find(cands[0]);
        if cands.iter().all(|&a| uf.find(a) == root) {
            links.push((key, entry, cands));
        }
    }
    for (key, entry, cands) in links {
        let root = uf.find(cands[0]);
        if let Some(g) = by_root.get_mut(&root) {
            let ev = g.evidence.entry(key.0).or_default();
            ev.values += 1;
            if cands.len() as u32 > ev.largest {
                ev.largest = cands.len() as u32;
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
    fn groups_candidates_linked_by_mostly_suspicious_attributes() {
        let cfg = Config::default();
        let idx = index(
            &cfg,
            &[
                (KeyKind::Payment, 1, &[0, 1, 2]),
                (KeyKind::Template, 2, &[2, 3]),
                // A NAT block shared by candidate 4 and three ordinary accounts: no link.
                (KeyKind::Signup, 3, &[4, 5, 6, 7]),
                (KeyKind::Network, 4, &[0, 3]),
                // Address blocks corroborate but do not link.
                (KeyKind::Network, 5, &[3, 8]),
            ],
        );
        let candidate = vec![true, true, true, true, false, false, false, false, true];
        let groups = discover(&cfg, &idx, &candidate);
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].members, vec![0, 1, 2, 3]);
        assert_eq!(groups[0].evidence[&KeyKind::Payment].largest, 3);
        assert_eq!(groups[0].evidence[&KeyKind::Network].values, 1);
        assert!(!groups[0].evidence.contains_key(&KeyKind::Signup));
    }

    #[test]
    fn content_never_merges_two_established_groups() {
        let cfg = Config::default();
        let idx = index(
            &cfg,
            &[
                (KeyKind::Payment, 1, &[0, 1, 2]),
                (KeyKind::Payment, 2, &[3, 4, 5]),
                // A public phrasing both actors use, and a lone account reusing it.
                (KeyKind::Template, 3, &[2, 3, 6]),
            ],
        );
        let groups = discover(&cfg, &idx, &[true; 7]);
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].members, vec![0, 1, 2]);
        assert_eq!(groups[1].members, vec![3, 4, 5]);
    }

    #[test]
    fn a_question_sent_once_by_each_account_links_nobody() {
        let cfg = Config::default();
        let mut idx = KeyIndex::default();
        for a in 0..5 {
            idx.add(&cfg, KeyKind::Template, 9, String::new, a, 0);
        }
        assert!(discover(&cfg, &idx, &[true; 5]).is_empty());
    }

    #[test]
    fn small_groups_are_not_campaigns() {
        let cfg = Config::default();
        let idx = index(&cfg, &[(KeyKind::Payment, 1, &[0, 1])]);
        assert!(discover(&cfg, &idx, &[true, true]).is_empty());
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

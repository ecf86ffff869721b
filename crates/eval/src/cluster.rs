//! Agreement between a predicted grouping of accounts and the true one: the adjusted Rand index,
//! purity, and split and merge counts.
//!
//! Pure functions over `(true key, predicted key)` pairs; which accounts take part and what
//! their keys are (campaign, class, singleton) is decided by the caller (`metrics`). Every
//! function is defined on degenerate inputs and never returns NaN.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;

/// Hubert–Arabie adjusted Rand index of two partitions of the same items, given one
/// `(true cluster, predicted cluster)` pair per item.
///
/// ARI = (Σᵢⱼ C(nᵢⱼ,2) − E) / (½(Σᵢ C(aᵢ,2) + Σⱼ C(bⱼ,2)) − E), with
/// E = Σᵢ C(aᵢ,2) · Σⱼ C(bⱼ,2) / C(n,2). Returns `None` for no items, `Some(1.0)` when the two
/// partitions are identical (which covers one item, all singletons on both sides, and one
/// cluster on both sides, where the formula is 0/0), and `Some(0.0)` if the denominator is
/// otherwise zero.
pub fn adjusted_rand_index<A, B>(pairs: impl IntoIterator<Item = (A, B)>) -> Option<f64>
where
    A: Hash + Eq + Clone,
    B: Hash + Eq + Clone,
{
    let mut cells: HashMap<(A, B), u64> = HashMap::new();
    let mut rows: HashMap<A, u64> = HashMap::new();
    let mut cols: HashMap<B, u64> = HashMap::new();
    let mut n: u64 = 0;
    for (a, b) in pairs {
        *rows.entry(a.clone()).or_default() += 1;
        *cols.entry(b.clone()).or_default() += 1;
        *cells.entry((a, b)).or_default() += 1;
        n += 1;
    }
    if n == 0 {
        return None;
    }
    // Identical partitions: every true cluster meets exactly one predicted cluster and vice
    // versa, i.e. the contingency table is a permutation of a diagonal.
    if cells.len() == rows.len() && cells.len() == cols.len() {
        return Some(1.0);
    }
    let pairs2 = |x: u64| -> f64 { (u128::from(x) * u128::from(x.saturating_sub(1)) / 2) as f64 };
    let index: f64 = cells.values().map(|&c| pairs2(c)).sum();
    let sum_a: f64 = rows.values().map(|&c| pairs2(c)).sum();
    let sum_b: f64 = cols.values().map(|&c| pairs2(c)).sum();
    let total = pairs2(n);
    let expected = if total > 0.0 {
        sum_a * sum_b / total
    } else {
        0.0
    };
    let max = (sum_a + sum_b) / 2.0;
    let denominator = max - expected;
    if denominator == 0.0 {
        return Some(0.0);
    }
    Some((index - expected) / denominator)
}

/// Purity of a predicted grouping, given one `(predicted cluster, true group)` pair per
/// account that belongs to a predicted cluster: Σ over predicted clusters of the size of its
/// largest true group, divided by the number of pairs. `None` for no pairs.
pub fn purity<P, T>(pairs: impl IntoIterator<Item = (P, T)>) -> Option<f64>
where
    P: Hash + Eq + Clone,
    T: Hash + Eq,
{
    let mut cells: HashMap<(P, T), u64> = HashMap::new();
    let mut n: u64 = 0;
    for (p, t) in pairs {
        *cells.entry((p, t)).or_default() += 1;
        n += 1;
    }
    if n == 0 {
        return None;
    }
    let mut best: HashMap<P, u64> = HashMap::new();
    for ((p, _), count) in cells {
        let b = best.entry(p).or_default();
        *b = (*b).max(count);
    }
    let majority: u64 = best.values().sum();
    Some(majority as f64 / n as f64)
}

/// Σ over groups of (distinct partners − 1), floor 0, given `(group, partner)` pairs.
///
/// With `(true campaign, predicted campaign)` pairs of assigned members this is the split
/// count; with `(predicted campaign, true campaign)` pairs it is the merge count.
pub fn fragmentation<G, P>(pairs: impl IntoIterator<Item = (G, P)>) -> u64
where
    G: Hash + Eq + Clone,
    P: Hash + Eq,
{
    let distinct: HashSet<(G, P)> = pairs.into_iter().collect();
    let mut per_group: HashMap<G, u64> = HashMap::new();
    for (g, _) in distinct {
        *per_group.entry(g).or_default() += 1;
    }
    per_group.values().map(|&k| k.saturating_sub(1)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ari(t: &[u32], p: &[u32]) -> f64 {
        adjusted_rand_index(t.iter().copied().zip(p.iter().copied())).unwrap()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn ari_matches_textbook_values() {
        // The examples of scikit-learn's `adjusted_rand_score` documentation.
        assert!(close(ari(&[0, 0, 1, 1], &[0, 0, 1, 1]), 1.0));
        assert!(close(ari(&[0, 0, 1, 1], &[1, 1, 0, 0]), 1.0));
        assert!(close(ari(&[0, 0, 1, 2], &[0, 0, 1, 1]), 4.0 / 7.0));
        assert!(close(ari(&[0, 0, 1, 1], &[0, 0, 1, 2]), 4.0 / 7.0));
        assert!(close(ari(&[0, 0, 0, 0], &[0, 1, 2, 3]), 0.0));
        assert!(close(ari(&[0, 0, 1, 1], &[0, 1, 0, 1]), -0.5));
    }

    #[test]
    fn ari_hand_computed_six_items() {
        // Table: (0,0)=2 (0,1)=1 (1,1)=1 (1,2)=2. Index 2; Σa = 3+3 = 6; Σb = 1+1+1 = 3;
        // C(6,2) = 15; E = 18/15 = 1.2; max = 4.5; ARI = 0.8 / 3.3.
        assert!(close(
            ari(&[0, 0, 0, 1, 1, 1], &[0, 0, 1, 1, 2, 2]),
            0.8 / 3.3
        ));
    }

    #[test]
    fn ari_degenerate_partitions_are_defined() {
        assert_eq!(adjusted_rand_index(Vec::<(u32, u32)>::new()), None);
        assert_eq!(ari(&[7], &[3]), 1.0);
        assert_eq!(
            ari(&[0, 1, 2], &[5, 6, 7]),
            1.0,
            "all singletons on both sides"
        );
        assert_eq!(
            ari(&[0, 0, 0], &[1, 1, 1]),
            1.0,
            "one cluster on both sides"
        );
        assert_eq!(
            ari(&[0, 0, 0], &[0, 1, 2]),
            0.0,
            "one cluster vs singletons"
        );
        assert_eq!(
            ari(&[0, 1, 2], &[0, 0, 0]),
            0.0,
            "singletons vs one cluster"
        );
    }

    #[test]
    fn purity_counts_majority_per_predicted_cluster() {
        // Cluster 0: a, a, b → 2; cluster 1: b → 1; total 3 of 4.
        let pairs = [(0, "a"), (0, "a"), (0, "b"), (1, "b")];
        assert_eq!(purity(pairs), Some(0.75));
        assert_eq!(purity(Vec::<(u32, &str)>::new()), None);
    }

    #[test]
    fn fragmentation_counts_extra_partners() {
        // Group x meets 3 partners (2 extra), y meets 1, z meets 2 (1 extra).
        let pairs = [
            ("x", 1),
            ("x", 2),
            ("x", 3),
            ("x", 3),
            ("y", 1),
            ("z", 4),
            ("z", 5),
        ];
        assert_eq!(fragmentation(pairs), 3);
        assert_eq!(fragmentation(Vec::<(u32, u32)>::new()), 0);
    }
}

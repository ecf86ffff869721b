//! Fixed-size counters: a count-min sketch of the whole traffic and a space-saving
//! heavy-hitter table per campaign and indicator kind.
//!
//! Both are deterministic: the hashes have fixed seeds and every tie is broken by the key.

use std::collections::HashMap;

use moat_types::Timestamp;

/// Hash of `bytes` under `seed`: FNV-1a, then a SplitMix64 finaliser for the low bits.
fn hash(seed: u64, bytes: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// A count-min sketch: counts of any number of keys in fixed memory, never under the truth.
#[derive(Debug, Clone)]
pub struct CountMin {
    rows: usize,
    mask: usize,
    cells: Vec<u32>,
}

impl CountMin {
    /// A sketch of `rows` rows of `2^bits` counters.
    pub fn new(rows: usize, bits: u32) -> Self {
        let width = 1usize << bits;
        CountMin {
            rows,
            mask: width - 1,
            cells: vec![0; rows * width],
        }
    }

    fn cell(&self, row: usize, key: &[u8]) -> usize {
        row * (self.mask + 1) + (hash(row as u64, key) as usize & self.mask)
    }

    /// Counts one occurrence of `key`.
    pub fn add(&mut self, key: &[u8]) {
        for row in 0..self.rows {
            let i = self.cell(row, key);
            if let Some(c) = self.cells.get_mut(i) {
                *c = c.saturating_add(1);
            }
        }
    }

    /// An upper bound of the occurrences of `key`.
    pub fn estimate(&self, key: &[u8]) -> u64 {
        (0..self.rows)
            .filter_map(|row| self.cells.get(self.cell(row, key)))
            .map(|&c| u64::from(c))
            .min()
            .unwrap_or(0)
    }
}

/// One heavy hitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// Occurrences counted (an over-count by at most `error`).
    pub count: u64,
    /// Over-count inherited from the evicted entry this one replaced.
    pub error: u64,
    /// First occurrence seen while tracked.
    pub first: Timestamp,
    /// Last occurrence seen.
    pub last: Timestamp,
    /// First member seen using the key.
    pub member: u32,
    /// Whether a second, different member used it.
    pub shared: bool,
}

impl Entry {
    /// Occurrences that certainly happened.
    pub fn lower(&self) -> u64 {
        self.count - self.error
    }
}

/// The space-saving algorithm (Metwally et al.): the `capacity` most frequent keys, each
/// count within the smallest count of the table of the truth.
#[derive(Debug, Clone)]
pub struct TopK<K> {
    capacity: usize,
    entries: HashMap<K, Entry>,
}

impl<K: Ord + Clone + std::hash::Hash> TopK<K> {
    /// An empty table of at most `capacity` keys (at least one).
    pub fn new(capacity: usize) -> Self {
        TopK {
            capacity: capacity.max(1),
            entries: HashMap::new(),
        }
    }

    /// Counts one occurrence of `key` by `member` at `ts`.
    pub fn add(&mut self, key: &K, member: u32, ts: Timestamp) {
        if let Some(e) = self.entries.get_mut(key) {
            e.count += 1;
            e.last = e.last.max(ts);
            e.shared |= e.member != member;
            return;
        }
        let mut error = 0;
        if self.entries.len() >= self.capacity {
            // Evict the smallest count, the largest key among equals, so that the result
            // depends only on the input sequence.
            let victim = self
                .entries
                .iter()
                .min_by(|a, b| a.1.count.cmp(&b.1.count).then_with(|| b.0.cmp(a.0)))
                .map(|(k, e)| (k.clone(), e.count));
            if let Some((k, count)) = victim {
                self.entries.remove(&k);
                error = count;
            }
        }
        self.entries.insert(
            key.clone(),
            Entry {
                count: error + 1,
                error,
                first: ts,
                last: ts,
                member,
                shared: false,
            },
        );
    }

    /// Entries by falling count, ties by key.
    pub fn ranked(&self) -> Vec<(&K, &Entry)> {
        let mut v: Vec<(&K, &Entry)> = self.entries.iter().collect();
        v.sort_by(|a, b| b.1.count.cmp(&a.1.count).then_with(|| a.0.cmp(b.0)));
        v
    }

    /// Keys tracked.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_min_never_under_counts() {
        let mut cm = CountMin::new(4, 6);
        for i in 0..500u32 {
            for _ in 0..(i % 7) {
                cm.add(&i.to_le_bytes());
            }
        }
        for i in 0..500u32 {
            assert!(cm.estimate(&i.to_le_bytes()) >= u64::from(i % 7));
        }
    }

    #[test]
    fn top_k_is_bounded_and_keeps_the_heavy_keys() {
        let mut t = TopK::new(8);
        let ts = Timestamp::from_millis(0);
        for i in 0..10_000u32 {
            // Key 1 and 2 are heavy; the rest are one-offs.
            let key = if i % 3 == 0 {
                1
            } else if i % 3 == 1 {
                2
            } else {
                100 + i
            };
            t.add(&key, i % 5, ts);
            assert!(t.len() <= 8);
        }
        let ranked = t.ranked();
        assert_eq!(*ranked[0].0, 1);
        assert_eq!(*ranked[1].0, 2);
        assert!(ranked[0].1.lower() >= 3_000);
        assert!(ranked[0].1.shared);
    }
}

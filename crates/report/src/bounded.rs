//! Aggregates of fixed maximum size, so the report pass holds no state per exchange: a top-k
//! counter, a capped distinct-value set, an hourly timeline that coarsens itself, and a sample
//! of distinct prompts.
//!
//! All of them are deterministic: their content depends only on the sequence of values fed
//! in, never on hash-map iteration order.

use std::borrow::Borrow;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hash, Hasher};

use moat_types::Timestamp;

/// A fast, fixed-key hasher (the Fx hash of rustc) for the maps of the per-exchange path.
/// Fixed keys keep nothing random in the program; the maps it serves are either bounded
/// (counters, capped sets) or keyed by provider-assigned account ids, so crafted collisions
/// can cost little.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct FxHasher(u64);

const FX_K: u64 = 0x517c_c1b7_2722_0a95;

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(FX_K);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn write_u16(&mut self, i: u16) {
        self.add(u64::from(i));
    }

    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// `BuildHasher` of [`FxHasher`].
pub(crate) type FastHash = BuildHasherDefault<FxHasher>;

/// Approximate heavy hitters in `cap` counters (the Space-Saving algorithm of Metwally et al.):
/// exact while at most `cap` distinct values have been seen; afterwards a value's count may
/// be overestimated by at most its recorded error, and every value more frequent than
/// `total / cap` is guaranteed to be present.
#[derive(Debug, Clone)]
pub(crate) struct TopK<K> {
    cap: usize,
    index: HashMap<K, usize, FastHash>,
    items: Vec<Counted<K>>,
    total: u64,
    /// No counter is below this (counts only grow); the eviction search looks for it.
    floor: u64,
    /// Where the eviction search resumes, so that finding a smallest counter costs O(1)
    /// amortised instead of a scan of all counters per new value.
    cursor: usize,
}

/// One counter of a [`TopK`].
#[derive(Debug, Clone)]
pub(crate) struct Counted<K> {
    /// The value.
    pub key: K,
    /// Its count (an upper bound when `error > 0`).
    pub count: u64,
    /// How much of `count` may belong to values it replaced.
    pub error: u64,
}

impl<K: Hash + Eq + Clone + Ord> TopK<K> {
    pub(crate) fn new(cap: usize) -> Self {
        TopK {
            cap: cap.max(1),
            index: HashMap::default(),
            items: Vec::new(),
            total: 0,
            floor: 0,
            cursor: 0,
        }
    }

    /// Counts one occurrence of `key`; allocates only when the key takes a new counter.
    pub(crate) fn add<Q>(&mut self, key: &Q)
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq + ToOwned<Owned = K>,
    {
        self.total += 1;
        if let Some(&i) = self.index.get(key) {
            self.items[i].count += 1;
            return;
        }
        if self.items.len() < self.cap {
            self.index.insert(key.to_owned(), self.items.len());
            self.items.push(Counted {
                key: key.to_owned(),
                count: 1,
                error: 0,
            });
            return;
        }
        let min = self.smallest();
        let floor = self.items[min].count;
        let old = std::mem::replace(
            &mut self.items[min],
            Counted {
                key: key.to_owned(),
                count: floor + 1,
                error: floor,
            },
        );
        self.index.remove::<K>(&old.key);
        self.index.insert(key.to_owned(), min);
    }

    /// Index of a smallest counter: the next one at `floor` from the cursor on, raising
    /// `floor` to the true minimum when a full round finds none. Each round costs `cap` and
    /// raises the floor, which can rise at most `total / cap` times.
    fn smallest(&mut self) -> usize {
        let n = self.items.len();
        loop {
            for step in 0..n {
                let i = (self.cursor + step) % n;
                if self.items[i].count <= self.floor {
                    self.cursor = (i + 1) % n;
                    return i;
                }
            }
            self.floor = self.items.iter().map(|c| c.count).min().unwrap_or(0);
        }
    }

    /// Occurrences counted, of every value.
    pub(crate) fn total(&self) -> u64 {
        self.total
    }

    /// The `n` largest counters, largest first, ties by value.
    pub(crate) fn top(&self, n: usize) -> Vec<&Counted<K>> {
        let mut v: Vec<&Counted<K>> = self.items.iter().collect();
        v.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.key.cmp(&b.key)));
        v.truncate(n);
        v
    }
}

/// Distinct values, counted exactly up to `cap` and then only as "at least `cap`".
#[derive(Debug, Clone)]
pub(crate) struct CappedSet<K> {
    cap: usize,
    seen: HashSet<K, FastHash>,
}

impl<K: Hash + Eq> CappedSet<K> {
    pub(crate) fn new(cap: usize) -> Self {
        CappedSet {
            cap,
            seen: HashSet::default(),
        }
    }

    pub(crate) fn insert(&mut self, key: K) {
        if self.seen.len() < self.cap {
            self.seen.insert(key);
        }
    }

    /// Distinct values seen, and whether the count stopped at the cap.
    pub(crate) fn count(&self) -> (usize, bool) {
        (self.seen.len(), self.seen.len() >= self.cap)
    }
}

/// Bucket widths in hours. Each divides the next, so a timeline can always be re-binned to
/// any wider width of the ladder; past its end, widths double.
const LADDER: [i64; 6] = [1, 2, 6, 12, 24, 48];

/// Width in hours of ladder step `step`.
pub(crate) fn ladder_width(step: usize) -> i64 {
    match LADDER.get(step) {
        Some(w) => *w,
        None => {
            let extra = u32::try_from(step + 1 - LADDER.len()).unwrap_or(u32::MAX);
            48i64.saturating_mul(2i64.saturating_pow(extra))
        }
    }
}

/// Request counts per time bucket: one hour wide until more than `cap` buckets are occupied,
/// then coarsened along [`LADDER`]. Exchanges arrive in time order, so adding is an append or
/// an increment of the last bucket.
#[derive(Debug, Clone)]
pub(crate) struct Timeline {
    step: usize,
    cap: usize,
    /// (bucket index = hour since the epoch / width, count), sorted by bucket.
    bins: Vec<(i64, u64)>,
}

impl Timeline {
    pub(crate) fn new(cap: usize) -> Self {
        Timeline {
            step: 0,
            cap: cap.max(2),
            bins: Vec::new(),
        }
    }

    /// Width of one bucket, in hours.
    pub(crate) fn width_hours(&self) -> i64 {
        ladder_width(self.step)
    }

    pub(crate) fn add(&mut self, ts: Timestamp) {
        let hour = ts.as_millis().div_euclid(Timestamp::HOUR);
        let bucket = hour.div_euclid(self.width_hours());
        match self.bins.last_mut() {
            Some((b, n)) if *b == bucket => *n += 1,
            Some((b, _)) if *b > bucket => {
                // Out of order (readers reject such input, but stay correct anyway).
                let i = self.bins.partition_point(|(b, _)| *b < bucket);
                match self.bins.get_mut(i) {
                    Some((b, n)) if *b == bucket => *n += 1,
                    _ => self.bins.insert(i, (bucket, 1)),
                }
            }
            _ => self.bins.push((bucket, 1)),
        }
        while self.bins.len() > self.cap {
            self.coarsen();
        }
    }

    fn coarsen(&mut self) {
        let factor = ladder_width(self.step + 1) / self.width_hours();
        self.step += 1;
        let mut merged: Vec<(i64, u64)> = Vec::with_capacity(self.bins.len() / 2 + 1);
        for &(b, n) in &self.bins {
            let nb = b.div_euclid(factor);
            match merged.last_mut() {
                Some((m, c)) if *m == nb => *c += n,
                _ => merged.push((nb, n)),
            }
        }
        self.bins = merged;
    }

    /// Counts re-binned to `width` hours (a multiple of this timeline's width) over `bins`
    /// buckets starting at hour `origin` (a multiple of `width`).
    pub(crate) fn rebin(&self, origin: i64, width: i64, bins: usize) -> Vec<u64> {
        let mut out = vec![0u64; bins];
        let own = self.width_hours();
        for &(b, n) in &self.bins {
            let hour = b.saturating_mul(own);
            let i = (hour - origin).div_euclid(width.max(1));
            if let Some(slot) = usize::try_from(i).ok().and_then(|i| out.get_mut(i)) {
                *slot += n;
            }
        }
        out
    }
}

/// One sampled prompt shape of a campaign.
#[derive(Debug, Clone)]
pub(crate) struct Sample {
    /// Hash of the prompt's normalised opening (see `text::shape_key`).
    pub key: u64,
    priority: u64,
    /// Requests whose prompt opens the same way.
    pub count: u64,
    /// The first such prompt, sanitised and truncated.
    pub text: String,
    /// Its system prompt, sanitised and truncated, if any.
    pub system: Option<String>,
    /// When it was sent.
    pub ts: Timestamp,
    /// Who sent it.
    pub account: String,
    /// Its request id, for pulling the raw exchange.
    pub request_id: Option<String>,
}

/// A uniform sample of up to `cap` distinct prompt shapes (bottom-k sampling over a hash of
/// the shape): a shape is kept if its priority is among the `cap` smallest seen. Because a
/// shape's priority never changes, a shape in the final sample was in it from its first
/// occurrence, so its count is exact; and the sample does not favour early or frequent shapes.
#[derive(Debug, Clone)]
pub(crate) struct Samples {
    cap: usize,
    seed: u64,
    /// Sorted by priority, smallest first.
    items: Vec<Sample>,
}

impl Samples {
    pub(crate) fn new(cap: usize, seed: u64) -> Self {
        Samples {
            cap,
            seed,
            items: Vec::new(),
        }
    }

    /// Offers a prompt whose shape hashes to `key`; `make` builds the sample (sanitising the
    /// text) only if it is kept.
    pub(crate) fn offer(&mut self, key: u64, make: impl FnOnce() -> Sample) {
        if let Some(s) = self.items.iter_mut().find(|s| s.key == key) {
            s.count += 1;
            return;
        }
        if self.cap == 0 {
            return;
        }
        let priority = crate::text::mix64(key ^ self.seed);
        let full = self.items.len() >= self.cap;
        if full && self.items.last().is_some_and(|s| s.priority <= priority) {
            return;
        }
        let mut s = make();
        s.key = key;
        s.priority = priority;
        s.count = 1;
        let i = self.items.partition_point(|x| x.priority < priority);
        self.items.insert(i, s);
        self.items.truncate(self.cap);
    }

    /// The samples, most frequent shape first, then by time.
    pub(crate) fn sorted(&self) -> Vec<&Sample> {
        let mut v: Vec<&Sample> = self.items.iter().collect();
        v.sort_by(|a, b| b.count.cmp(&a.count).then(a.ts.cmp(&b.ts)));
        v
    }
}

impl Sample {
    /// A sample with its text; `key`, priority and count are set by [`Samples::offer`].
    pub(crate) fn new(
        text: String,
        system: Option<String>,
        ts: Timestamp,
        account: String,
        request_id: Option<String>,
    ) -> Self {
        Sample {
            key: 0,
            priority: 0,
            count: 0,
            text,
            system,
            ts,
            account,
            request_id,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn topk_is_exact_under_cap_and_keeps_heavy_hitters_over_it() {
        let mut t: TopK<String> = TopK::new(4);
        for _ in 0..10 {
            t.add("a");
        }
        for _ in 0..5 {
            t.add("b");
        }
        let top = t.top(2);
        assert_eq!((top[0].key.as_str(), top[0].count), ("a", 10));
        assert_eq!((top[1].key.as_str(), top[1].count), ("b", 5));
        for i in 0..1000 {
            t.add(&format!("noise{i}"));
            if i % 3 == 0 {
                t.add("a");
            }
        }
        assert_eq!(t.top(1)[0].key, "a");
        assert_eq!(t.top(10).len(), 4);
        assert_eq!(t.total(), 10 + 5 + 1000 + 334);
    }

    #[test]
    fn timeline_coarsens_within_cap_and_keeps_totals() {
        let mut t = Timeline::new(10);
        let start = Timestamp::parse("2026-03-02T00:00:00Z").unwrap();
        for h in 0..100 {
            for _ in 0..3 {
                t.add(start.plus_millis(h * Timestamp::HOUR));
            }
        }
        assert!(t.bins.len() <= 10);
        assert_eq!(t.width_hours(), 12);
        let origin = start.as_millis() / Timestamp::HOUR;
        let v = t.rebin(origin, 24, 5);
        assert_eq!(v.iter().sum::<u64>(), 300);
        assert_eq!(v[0], 72);
    }

    #[test]
    fn samples_keep_distinct_shapes_with_exact_counts() {
        let mut s = Samples::new(3, 7);
        let ts = Timestamp::default();
        for i in 0..1000u64 {
            let key = i % 50;
            s.offer(key, || {
                Sample::new(format!("p{key}"), None, ts, "a".into(), None)
            });
        }
        let v = s.sorted();
        assert_eq!(v.len(), 3);
        for x in v {
            assert_eq!(x.count, 20, "{}", x.text);
        }
    }
}

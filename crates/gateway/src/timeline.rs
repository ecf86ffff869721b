//! What the gateway did over the last day, in 10-second buckets, for the dashboard's overview:
//! requests and policy actions per bucket (counted on the request path with a few relaxed
//! atomic additions), and the number of flagged accounts and campaigns (sampled by
//! housekeeping). [`Timeline::series`] aggregates the buckets server-side into at most
//! [`MAX_POINTS`] points, so the page never receives a day of raw buckets.
//!
//! Buckets are a ring reused as time passes: the first request of a new bucket resets it. A
//! request that races that reset on another core may be lost from the count; the numbers are
//! for eyes, `/metrics` has the exact counters.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use moat_policy::Actions;
use serde::Serialize;

/// Width of one bucket.
pub const BUCKET_MS: i64 = 10_000;
/// Buckets kept: one day.
pub const BUCKETS: usize = 8_640;
/// The most points one series answer holds.
pub const MAX_POINTS: usize = 1_440;

const ACTIONS: usize = Actions::ALL_NAMES.len();

#[derive(Debug)]
struct Bucket {
    /// The bucket's number (its start / [`BUCKET_MS`]); -1 when never used.
    n: AtomicI64,
    requests: AtomicU64,
    actions: [AtomicU64; ACTIONS],
    /// Sampled gauges, `u64::MAX` when not sampled in this bucket.
    flagged: AtomicU64,
    campaigns: AtomicU64,
}

impl Bucket {
    fn empty() -> Bucket {
        Bucket {
            n: AtomicI64::new(-1),
            requests: AtomicU64::new(0),
            actions: std::array::from_fn(|_| AtomicU64::new(0)),
            flagged: AtomicU64::new(u64::MAX),
            campaigns: AtomicU64::new(u64::MAX),
        }
    }
}

/// The ring of buckets.
#[derive(Debug)]
pub struct Timeline {
    buckets: Box<[Bucket]>,
}

impl Default for Timeline {
    fn default() -> Self {
        Timeline::new()
    }
}

/// Requests, actions and gauges over time, as the dashboard draws them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Series {
    /// Start of the first point (ms since the epoch).
    pub start_ms: i64,
    /// Width of each point.
    pub step_ms: i64,
    /// Requests per point.
    pub requests: Vec<u64>,
    /// Per action name (enforced decisions), the count per point.
    pub actions: Vec<(&'static str, Vec<u64>)>,
    /// Flagged accounts at the end of each point (`None` where never sampled).
    pub flagged: Vec<Option<u64>>,
    /// Campaigns at the end of each point.
    pub campaigns: Vec<Option<u64>>,
}

impl Timeline {
    /// An empty day.
    pub fn new() -> Timeline {
        Timeline {
            buckets: (0..BUCKETS).map(|_| Bucket::empty()).collect(),
        }
    }

    /// The bucket for `now_ms`, reset first if it still holds an older one.
    fn current(&self, now_ms: i64) -> Option<&Bucket> {
        let n = now_ms.div_euclid(BUCKET_MS);
        let b = self.buckets.get(n.rem_euclid(BUCKETS as i64) as usize)?;
        let held = b.n.load(Ordering::Acquire);
        if held < n
            && b.n
                .compare_exchange(held, n, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            b.requests.store(0, Ordering::Relaxed);
            for a in &b.actions {
                a.store(0, Ordering::Relaxed);
            }
            b.flagged.store(u64::MAX, Ordering::Relaxed);
            b.campaigns.store(u64::MAX, Ordering::Relaxed);
        }
        // A clock that went back more than a day lands in a newer bucket: not counted.
        (b.n.load(Ordering::Acquire) == n).then_some(b)
    }

    /// Counts one decided request and its enforced actions (names from [`Actions::names`]).
    pub fn count<'a>(&self, now_ms: i64, actions: impl Iterator<Item = &'a str>) {
        let Some(b) = self.current(now_ms) else {
            return;
        };
        b.requests.fetch_add(1, Ordering::Relaxed);
        for name in actions {
            if let Some(i) = Actions::ALL_NAMES.iter().position(|n| *n == name) {
                if let Some(c) = b.actions.get(i) {
                    c.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// Records the gauges at `now_ms`.
    pub fn sample(&self, now_ms: i64, flagged: u64, campaigns: u64) {
        if let Some(b) = self.current(now_ms) {
            b.flagged.store(flagged, Ordering::Relaxed);
            b.campaigns.store(campaigns, Ordering::Relaxed);
        }
    }

    /// The last `span_ms` before `now_ms` in points of `step_ms` (both rounded to whole
    /// buckets; the span to at most a day, the step up so that there are at most
    /// [`MAX_POINTS`] points). Counts are summed over a point's buckets; gauges are the last
    /// sample in the point.
    pub fn series(&self, now_ms: i64, span_ms: i64, step_ms: i64) -> Series {
        let span = (span_ms.max(BUCKET_MS) / BUCKET_MS).min(BUCKETS as i64);
        let mut step = (step_ms.max(BUCKET_MS) / BUCKET_MS).clamp(1, span);
        let max_points = MAX_POINTS as i64;
        if ceil_div(span, step) > max_points {
            step = ceil_div(span, max_points);
        }
        let points = ceil_div(span, step);
        let last = now_ms.div_euclid(BUCKET_MS);
        // Points end at the current bucket; the first may reach before the span.
        let first = last - points * step + 1;
        let len = points as usize;
        let mut out = Series {
            start_ms: first * BUCKET_MS,
            step_ms: step * BUCKET_MS,
            requests: vec![0; len],
            actions: Actions::ALL_NAMES
                .iter()
                .map(|name| (*name, vec![0; len]))
                .collect(),
            flagged: vec![None; len],
            campaigns: vec![None; len],
        };
        for n in first..=last {
            let Some(b) = self.buckets.get(n.rem_euclid(BUCKETS as i64) as usize) else {
                continue;
            };
            if b.n.load(Ordering::Acquire) != n {
                continue;
            }
            let p = ((n - first) / step) as usize;
            if let Some(r) = out.requests.get_mut(p) {
                *r += b.requests.load(Ordering::Relaxed);
            }
            for (i, (_, counts)) in out.actions.iter_mut().enumerate() {
                if let (Some(c), Some(a)) = (counts.get_mut(p), b.actions.get(i)) {
                    *c += a.load(Ordering::Relaxed);
                }
            }
            let gauge = |v: &AtomicU64| Some(v.load(Ordering::Relaxed)).filter(|v| *v != u64::MAX);
            if let Some(f) = gauge(&b.flagged) {
                if let Some(slot) = out.flagged.get_mut(p) {
                    *slot = Some(f);
                }
            }
            if let Some(c) = gauge(&b.campaigns) {
                if let Some(slot) = out.campaigns.get_mut(p) {
                    *slot = Some(c);
                }
            }
        }
        out
    }
}

/// `a / b` rounded up, for positive `a` and `b`.
fn ceil_div(a: i64, b: i64) -> i64 {
    (a + b - 1) / b
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    const T0: i64 = 1_780_000_000_000;

    fn actions(s: &Series, name: &str) -> Vec<u64> {
        s.actions
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap()
            .1
            .clone()
    }

    #[test]
    fn counts_land_in_their_points() {
        let t = Timeline::new();
        for i in 0..60 {
            // One request per second for a minute, every third blocked.
            let acts: &[&str] = if i % 3 == 0 { &["block"] } else { &["allow"] };
            t.count(T0 + i * 1000, acts.iter().copied());
        }
        t.sample(T0 + 59_000, 4, 2);
        let s = t.series(T0 + 59_000, 60_000, 10_000);
        assert_eq!(s.step_ms, 10_000);
        assert_eq!(s.requests.iter().sum::<u64>(), 60);
        assert_eq!(actions(&s, "block").iter().sum::<u64>(), 20);
        assert_eq!(actions(&s, "allow").iter().sum::<u64>(), 40);
        assert_eq!(s.flagged.last(), Some(&Some(4)));
        assert_eq!(s.campaigns.last(), Some(&Some(2)));
        assert_eq!(s.flagged.first(), Some(&None));
        // Coarser points sum the same requests.
        let coarse = t.series(T0 + 59_000, 120_000, 60_000);
        assert_eq!(coarse.requests.len(), 2);
        assert_eq!(coarse.requests.iter().sum::<u64>(), 60);
    }

    #[test]
    fn a_day_later_the_ring_forgets_and_the_answer_stays_small() {
        let t = Timeline::new();
        t.count(T0, ["allow"].into_iter());
        let later = T0 + BUCKETS as i64 * BUCKET_MS;
        t.count(later, ["block"].into_iter());
        let s = t.series(later, 24 * 3600 * 1000, 10_000);
        assert!(s.requests.len() <= MAX_POINTS);
        assert_eq!(s.requests.iter().sum::<u64>(), 1);
        assert_eq!(actions(&s, "block").iter().sum::<u64>(), 1);
        assert_eq!(actions(&s, "allow").iter().sum::<u64>(), 0);
    }

    #[test]
    fn spans_and_steps_are_bounded() {
        let t = Timeline::new();
        let s = t.series(T0, i64::MAX, 0);
        assert!(s.requests.len() <= MAX_POINTS);
        assert!(s.step_ms >= BUCKET_MS);
        let s = t.series(T0, -5, -5);
        assert_eq!(s.requests.len(), 1);
        // Unknown action names are ignored, not counted elsewhere.
        t.count(T0, ["not-an-action"].into_iter());
        let s = t.series(T0, 10_000, 10_000);
        assert_eq!(s.requests, [1]);
        assert!(s.actions.iter().all(|(_, c)| c == &[0]));
    }
}

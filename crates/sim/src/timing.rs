//! When things happen: daily and weekly rhythms in local time, event processes modulated by
//! them, and the dispatch waves of campaign controllers.
//!
//! Rates are expressed as means per day over a whole week, so a scenario's numbers stay
//! calibrated whatever rhythm an account follows. Not about what is sent.

use std::sync::OnceLock;

use moat_types::Timestamp;

use crate::rng::{exp, geometric, hash, unit, SimRng};

const DAY: i64 = Timestamp::DAY;

/// A daily and weekly activity pattern; weights are relative, with a maximum of 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rhythm {
    /// Office hours on weekdays.
    Work,
    /// Evenings and weekends, some daytime.
    Personal,
    /// An app's aggregate end users: a flattened personal curve.
    App,
    /// Around the clock.
    Always,
}

const WORK: [f64; 24] = [
    0.03, 0.02, 0.02, 0.02, 0.02, 0.03, 0.06, 0.15, 0.45, 0.85, 1.0, 1.0, 0.8, 0.9, 1.0, 0.95,
    0.85, 0.6, 0.35, 0.25, 0.2, 0.15, 0.08, 0.05,
];
const PERSONAL: [f64; 24] = [
    0.35, 0.2, 0.1, 0.06, 0.04, 0.05, 0.1, 0.2, 0.35, 0.45, 0.55, 0.6, 0.65, 0.65, 0.6, 0.6, 0.65,
    0.75, 0.85, 0.95, 1.0, 1.0, 0.85, 0.6,
];
const APP: [f64; 24] = [
    0.35, 0.25, 0.2, 0.18, 0.18, 0.22, 0.3, 0.45, 0.65, 0.8, 0.9, 0.95, 1.0, 1.0, 0.95, 0.9, 0.9,
    0.9, 0.95, 1.0, 1.0, 0.9, 0.7, 0.5,
];

impl Rhythm {
    /// Relative activity at local time `local_ms` (ms since the epoch shifted by the offset).
    pub(crate) fn weight(self, local_ms: i64) -> f64 {
        let (curve, weekend) = match self {
            Rhythm::Always => return 1.0,
            Rhythm::Work => (&WORK, 0.12),
            Rhythm::Personal => (&PERSONAL, 1.0),
            Rhythm::App => (&APP, 0.85),
        };
        let day = local_ms.div_euclid(DAY);
        let ms = local_ms.rem_euclid(DAY);
        // 1970-01-01 was a Thursday: weekday 0 is Monday.
        let weekday = (day + 3).rem_euclid(7);
        let hour_f = ms as f64 / Timestamp::HOUR as f64;
        let h = (hour_f.floor() as usize).min(23);
        let frac = hour_f - h as f64;
        let w = curve[h] * (1.0 - frac) + curve[(h + 1) % 24] * frac;
        if weekday >= 5 {
            w * weekend
        } else {
            w
        }
    }

    /// Mean weight over a week (so a rate per day can be turned into a peak rate).
    pub(crate) fn mean(self) -> f64 {
        static MEANS: OnceLock<[f64; 4]> = OnceLock::new();
        let means = MEANS.get_or_init(|| {
            let mut out = [0.0; 4];
            for (i, r) in [Rhythm::Work, Rhythm::Personal, Rhythm::App, Rhythm::Always]
                .into_iter()
                .enumerate()
            {
                let steps = 7 * 24 * 12;
                let step = 7 * DAY / steps;
                let sum: f64 = (0..steps).map(|k| r.weight(k * step)).sum();
                out[i] = sum / steps as f64;
            }
            out
        });
        match self {
            Rhythm::Work => means[0],
            Rhythm::Personal => means[1],
            Rhythm::App => means[2],
            Rhythm::Always => means[3],
        }
    }
}

/// A rhythm in one time zone.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Clock {
    pub rhythm: Rhythm,
    /// Offset from UTC in milliseconds.
    pub offset_ms: i64,
}

impl Clock {
    /// A clock for `rhythm` at `utc_offset_hours`.
    pub(crate) fn new(rhythm: Rhythm, utc_offset_hours: f64) -> Clock {
        Clock {
            rhythm,
            offset_ms: (utc_offset_hours * Timestamp::HOUR as f64) as i64,
        }
    }

    /// Relative activity at UTC instant `t`.
    pub(crate) fn weight(&self, t: i64) -> f64 {
        self.rhythm.weight(t + self.offset_ms)
    }

    /// The next event after `t` of a Poisson process averaging `per_day` events a day under
    /// this clock's rhythm (thinning), or `None` if it falls at or after `until`.
    pub(crate) fn next_event(
        &self,
        rng: &mut SimRng,
        t: i64,
        per_day: f64,
        until: i64,
    ) -> Option<i64> {
        if per_day <= 0.0 {
            return None;
        }
        let peak_per_ms = per_day / self.rhythm.mean() / DAY as f64;
        let mean_gap = 1.0 / peak_per_ms;
        let mut now = t as f64;
        // The loop ends: every iteration advances time by a positive gap, and the window is
        // finite; the iteration cap guards against a pathological rhythm.
        for _ in 0..100_000 {
            now += exp(rng, mean_gap).max(1.0);
            if now >= until as f64 {
                return None;
            }
            let at = now as i64;
            if rand::Rng::gen::<f64>(rng) < self.weight(at) {
                return Some(at);
            }
        }
        None
    }
}

/// A campaign controller's dispatch schedule: wave `k` fires at a jittered multiple of the
/// interval; members join waves at random, which makes their calls co-occur within seconds.
#[derive(Debug, Clone)]
pub(crate) struct Waves {
    /// Time of wave 0.
    pub origin: i64,
    /// Interval between waves (ms).
    pub interval_ms: i64,
    /// Members joining a wave fire within this many ms of it.
    pub spread_ms: i64,
    /// Hash key of the jitter sequence.
    pub key: u64,
    /// Duty cycle (always, or working hours).
    pub clock: Clock,
}

impl Waves {
    /// When wave `k` fires.
    pub(crate) fn time(&self, k: u64) -> i64 {
        let jitter = unit(hash(&[self.key, k])) * self.interval_ms as f64 * 0.2;
        self.origin + (k as i64).saturating_mul(self.interval_ms) + jitter as i64
    }

    /// Probability that a member averaging `per_day` calls joins any one wave, and the
    /// effective per-wave probability after the duty cycle's thinning.
    pub(crate) fn join_probability(&self, per_day: f64) -> f64 {
        let waves_per_day = DAY as f64 / self.interval_ms as f64;
        (per_day / (waves_per_day * self.clock.rhythm.mean())).min(1.0)
    }

    /// The first wave after wave `after` (or from wave 0 when `None`) that a member with join
    /// probability `p` fires in, at or after `not_before`; its index and the member's firing
    /// time. `None` when it falls at or after `until`.
    pub(crate) fn next(
        &self,
        rng: &mut SimRng,
        after: Option<u64>,
        p: f64,
        not_before: i64,
        until: i64,
    ) -> Option<(u64, i64)> {
        // `cand` is the first wave not yet considered; the member skips a geometric number
        // of waves from there.
        let mut cand = match after {
            Some(k) => k.saturating_add(1),
            None => ((not_before - self.origin).max(0) / self.interval_ms.max(1)) as u64,
        };
        for _ in 0..100_000 {
            let k = cand.saturating_add(geometric(rng, p) - 1);
            cand = k.saturating_add(1);
            let wt = self.time(k);
            if wt >= until {
                return None;
            }
            if wt < not_before {
                continue;
            }
            if rand::Rng::gen::<f64>(rng) < self.clock.weight(wt) {
                let offset = exp(rng, self.spread_ms as f64 / 3.0).min(self.spread_ms as f64);
                return Some((k, wt + offset as i64));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{rng_for, Stream};

    #[test]
    fn rhythms_peak_where_expected() {
        let monday_noon = 4 * DAY + 12 * Timestamp::HOUR; // 1970-01-05 was a Monday
        let monday_3am = 4 * DAY + 3 * Timestamp::HOUR;
        let saturday_noon = 9 * DAY + 12 * Timestamp::HOUR;
        assert!(Rhythm::Work.weight(monday_noon) > 5.0 * Rhythm::Work.weight(monday_3am));
        assert!(Rhythm::Work.weight(monday_noon) > 5.0 * Rhythm::Work.weight(saturday_noon));
        assert!((Rhythm::Always.mean() - 1.0).abs() < 1e-9);
        assert!(Rhythm::Work.mean() > 0.1 && Rhythm::Work.mean() < 0.6);
    }

    #[test]
    fn event_rate_matches_per_day() {
        let mut rng = rng_for(1, Stream::Behaviour, 0);
        for rhythm in [Rhythm::Work, Rhythm::Personal, Rhythm::App, Rhythm::Always] {
            let clock = Clock::new(rhythm, -5.0);
            let until = 28 * DAY;
            let (mut t, mut n) = (0, 0);
            while let Some(next) = clock.next_event(&mut rng, t, 10.0, until) {
                t = next;
                n += 1;
            }
            let per_day = f64::from(n) / 28.0;
            assert!((per_day - 10.0).abs() < 1.5, "{rhythm:?}: {per_day}");
        }
    }

    #[test]
    fn wave_members_hit_their_rate_and_cluster_in_time() {
        let waves = Waves {
            origin: 0,
            interval_ms: 10 * Timestamp::MINUTE,
            spread_ms: 20 * Timestamp::SECOND,
            key: 3,
            clock: Clock::new(Rhythm::Always, 0.0),
        };
        let p = waves.join_probability(26.0);
        let mut rng = rng_for(1, Stream::Behaviour, 1);
        let until = 20 * DAY;
        let (mut n, mut last) = (0u32, None);
        let mut t = 0;
        while let Some((k, at)) = waves.next(&mut rng, last, p, t, until) {
            assert!(at >= waves.time(k) && at <= waves.time(k) + waves.spread_ms);
            assert!(at >= t);
            t = at;
            last = Some(k);
            n += 1;
        }
        let per_day = f64::from(n) / 20.0;
        assert!((per_day - 26.0).abs() < 3.0, "{per_day}");
    }
}

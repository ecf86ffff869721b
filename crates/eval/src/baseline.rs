//! The reference baseline: a per-account daily rate limit tuned to the detector's benign
//! false-positive rate.
//!
//! It answers "would a plain quota have done as well at the same cost to ordinary users?". The
//! limit L (requests per account per UTC day) is the smallest L ≥ 1 such that the share of
//! benign accounts whose busiest UTC day exceeds L is at most the detector's benign FPR; the
//! baseline then flags an account at the `ts` of its (L+1)-th exchange within one UTC day. It
//! never groups accounts into campaigns. This module holds the limit rule and the per-account
//! state of the second traffic pass; scoring is `metrics`' job.

use moat_types::Timestamp;

/// The baseline's limit: the smallest L ≥ 1 such that at most `benign_flagged` of the benign
/// accounts have a busiest day (`benign_max_daily`, one entry per benign account) above L.
///
/// Comparing counts rather than shares keeps the rule exact: share(L) ≤ FPR ⇔
/// (accounts above L) ≤ (benign accounts the detector flagged). With `benign_flagged = 0`, L is
/// the largest benign daily count, so no benign account is flagged; with no benign account (or
/// all of them flagged) L is 1.
pub fn choose_limit(benign_max_daily: &[u64], benign_flagged: u64) -> u64 {
    let mut desc = benign_max_daily.to_vec();
    desc.sort_unstable_by(|a, b| b.cmp(a));
    // At most k accounts may lie above L, so L must reach the (k+1)-th largest value.
    let k = usize::try_from(benign_flagged).unwrap_or(usize::MAX);
    desc.get(k).copied().unwrap_or(0).max(1)
}

/// One account's state in the baseline pass.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RateLimit {
    /// UTC day of the last exchange seen.
    day: i64,
    /// Exchanges of the account in `day` so far.
    in_day: u64,
    /// Exchanges seen so far.
    pub(crate) exchanges: u64,
    /// `ts` of the last exchange seen, and how many exchanges so far carry it; used to count
    /// exchanges strictly before the flag time when several share its millisecond.
    last_ts: Option<Timestamp>,
    at_last_ts: u64,
    /// When the limit first tripped.
    pub(crate) flagged_at: Option<Timestamp>,
    /// Exchanges with `ts` before `flagged_at` (set when the limit trips).
    leaked_before_flag: u64,
}

impl RateLimit {
    /// Feeds the account's next exchange (in time order) under limit `limit`.
    pub(crate) fn observe(&mut self, ts: Timestamp, limit: u64) {
        let before = self.exchanges;
        self.exchanges += 1;
        if self.flagged_at.is_some() {
            return;
        }
        let day = ts.day_index();
        if before == 0 || day != self.day {
            self.day = day;
            self.in_day = 0;
        }
        self.in_day += 1;
        let same_ms = if self.last_ts == Some(ts) {
            self.at_last_ts
        } else {
            0
        };
        if self.in_day > limit {
            self.flagged_at = Some(ts);
            self.leaked_before_flag = before - same_ms;
        } else {
            self.last_ts = Some(ts);
            self.at_last_ts = same_ms + 1;
        }
    }

    /// Exchanges leaked: those before the flag time, or all when never flagged.
    pub(crate) fn leaked(&self) -> u64 {
        match self.flagged_at {
            Some(_) => self.leaked_before_flag,
            None => self.exchanges,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_is_smallest_meeting_the_benign_budget() {
        // Busiest days 5, 3, 3, 1 (four benign accounts).
        let daily = [3, 1, 5, 3];
        assert_eq!(choose_limit(&daily, 0), 5, "FPR 0: nobody above L");
        // FPR 1/4: one account (5) may exceed; L = 2 would put three above.
        assert_eq!(choose_limit(&daily, 1), 3);
        // FPR 2/4: still 3; L = 2 puts three above, more than two.
        assert_eq!(choose_limit(&daily, 2), 3);
        // FPR 3/4: L = 1 puts three above, allowed.
        assert_eq!(choose_limit(&daily, 3), 1);
        assert_eq!(choose_limit(&daily, 4), 1);
        assert_eq!(choose_limit(&daily, 99), 1);
        assert_eq!(choose_limit(&[], 0), 1, "no benign account");
    }

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    #[test]
    fn trips_on_the_exchange_after_the_limit_within_one_day() {
        let day = Timestamp::DAY;
        let mut r = RateLimit::default();
        // Day 0: two exchanges (limit 2 not exceeded); day 1: the third trips.
        for ts in [10, 20, day + 1, day + 2, day + 3, day + 4] {
            r.observe(at(ts), 2);
        }
        assert_eq!(r.flagged_at, Some(at(day + 3)));
        assert_eq!(r.exchanges, 6);
        assert_eq!(r.leaked(), 4);
    }

    #[test]
    fn exchanges_in_the_flagging_millisecond_do_not_leak() {
        let mut r = RateLimit::default();
        for ts in [1, 5, 5, 5] {
            r.observe(at(ts), 3);
        }
        // The fourth exchange trips the limit at ts 5; only the one at ts 1 came before.
        assert_eq!(r.flagged_at, Some(at(5)));
        assert_eq!(r.leaked(), 1);
    }

    #[test]
    fn never_tripped_leaks_everything() {
        let mut r = RateLimit::default();
        for ts in [1, 2, 3] {
            r.observe(at(ts), 3);
        }
        assert_eq!(r.flagged_at, None);
        assert_eq!(r.leaked(), 3);
    }
}

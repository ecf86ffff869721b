//! Each account's traffic since this gateway started (exchanges, completion and reasoning
//! tokens, first and last seen, and what was answered after the account was detected), for the
//! dashboard's campaign and account listings: a campaign's volume and leakage are the sums of
//! its members'.
//!
//! Counted when an exchange is recorded (answered or refused), off the decision path, in the
//! account's entry of [`crate::live::Published`] beside its standing: one map entry per account
//! holds both, so the counters cost 48 bytes an account and no second key or table (at 100k
//! accounts a map of its own cost the gateway 13 MiB). Per gateway process and not kept across
//! restarts: in scale-out mode each gateway counts what it answered (the exchanges themselves
//! are in the shared store).

use moat_types::Exchange;
use moat_ui::data::Usage;

/// One account's [`Usage`], packed: exchange counts in 32 bits (saturating), the first and last
/// times without `Option`'s tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    exchanges: u32,
    after_detection: u32,
    completion_tokens: u64,
    reasoning_tokens: u64,
    reasoning_after_detection: u64,
    /// `i64::MAX` before the first exchange.
    first_ms: i64,
    /// `i64::MIN` before the first exchange.
    last_ms: i64,
}

impl Default for Counts {
    fn default() -> Counts {
        Counts {
            exchanges: 0,
            after_detection: 0,
            completion_tokens: 0,
            reasoning_tokens: 0,
            reasoning_after_detection: 0,
            first_ms: i64::MAX,
            last_ms: i64::MIN,
        }
    }
}

impl Counts {
    /// Counts `x`; `detected` says whether its account was flagged or in a campaign when it
    /// was answered.
    pub fn add(&mut self, x: &Exchange, detected: bool) {
        let (completion, reasoning) = x.response.as_ref().map_or((0, 0), |r| {
            (
                r.completion_tokens.unwrap_or(0),
                r.reasoning_tokens.unwrap_or(0),
            )
        });
        let ts = x.ts.as_millis();
        self.exchanges = self.exchanges.saturating_add(1);
        self.completion_tokens = self.completion_tokens.saturating_add(completion);
        self.reasoning_tokens = self.reasoning_tokens.saturating_add(reasoning);
        self.first_ms = self.first_ms.min(ts);
        self.last_ms = self.last_ms.max(ts);
        if detected {
            self.after_detection = self.after_detection.saturating_add(1);
            self.reasoning_after_detection =
                self.reasoning_after_detection.saturating_add(reasoning);
        }
    }

    /// Exchanges counted.
    pub fn exchanges(&self) -> u64 {
        u64::from(self.exchanges)
    }

    /// As the dashboard's [`Usage`]; `None` before the first exchange.
    pub fn usage(&self) -> Option<Usage> {
        (self.exchanges > 0).then(|| Usage {
            exchanges: u64::from(self.exchanges),
            completion_tokens: self.completion_tokens,
            reasoning_tokens: self.reasoning_tokens,
            first_ms: Some(self.first_ms),
            last_ms: Some(self.last_ms),
            after_detection: u64::from(self.after_detection),
            reasoning_after_detection: self.reasoning_after_detection,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exchange(account: &str, ts_ms: i64, reasoning: u64) -> Exchange {
        let line = format!(
            r#"{{"v":1,"ts":"{}","account_id":"{account}","request":{{"messages":[]}},"response":{{"status":200,"completion_tokens":3,"reasoning_tokens":{reasoning}}}}}"#,
            moat_types::Timestamp::from_millis(ts_ms)
        );
        serde_json::from_str(&line).unwrap()
    }

    #[test]
    fn counts_like_the_dashboards_usage() {
        let mut c = Counts::default();
        assert_eq!(c.usage(), None);
        let mut u = Usage::default();
        for (ts, reasoning, detected) in [(2_000, 20, false), (1_000, 10, true), (3_000, 5, true)] {
            let x = exchange("a", ts, reasoning);
            c.add(&x, detected);
            u.add(&x, detected);
        }
        assert_eq!(c.usage(), Some(u));
        assert_eq!(c.exchanges(), 3);
        let u = c.usage().unwrap();
        assert_eq!((u.first_ms, u.last_ms), (Some(1_000), Some(3_000)));
        assert_eq!((u.after_detection, u.reasoning_after_detection), (2, 15));
        assert_eq!(u.completion_tokens, 9);
    }

    #[test]
    fn saturates_instead_of_wrapping() {
        let mut c = Counts {
            exchanges: u32::MAX,
            after_detection: u32::MAX,
            ..Counts::default()
        };
        c.add(&exchange("a", 1, 1), true);
        assert_eq!(c.exchanges(), u64::from(u32::MAX));
    }
}

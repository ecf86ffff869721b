//! Each account's traffic since this gateway started (exchanges, completion and reasoning
//! tokens, first and last seen, and what was answered after the account was detected), for the
//! dashboard's campaign and account listings: a campaign's volume and leakage are the sums of
//! its members'.
//!
//! Counted when an exchange is recorded (answered or refused), off the decision path: one map
//! entry per account, a few dozen bytes, updated in place. Per gateway process and not kept
//! across restarts: in scale-out mode each gateway counts what it answered (the exchanges
//! themselves are in the shared store).

use dashmap::DashMap;
use moat_types::Exchange;
use moat_ui::data::Usage;

/// Per-account [`Usage`].
#[derive(Debug, Default)]
pub struct UsageBook {
    accounts: DashMap<Box<str>, Usage, foldhash::fast::RandomState>,
}

impl UsageBook {
    /// Counts `x`; `detected` says whether its account was flagged or in a campaign when it
    /// was answered.
    pub fn record(&self, x: &Exchange, detected: bool) {
        if let Some(mut u) = self.accounts.get_mut(x.account_id.as_str()) {
            u.add(x, detected);
            return;
        }
        self.accounts
            .entry(x.account_id.as_str().into())
            .or_default()
            .add(x, detected);
    }

    /// One account's counters.
    pub fn get(&self, account: &str) -> Option<Usage> {
        self.accounts.get(account).map(|u| *u)
    }

    /// The sum over `accounts`.
    pub fn sum<'a>(&self, accounts: impl IntoIterator<Item = &'a str>) -> Usage {
        let mut total = Usage::default();
        for a in accounts {
            if let Some(u) = self.accounts.get(a) {
                total.merge(&u);
            }
        }
        total
    }

    /// Exchanges counted over every account.
    pub fn exchanges(&self) -> u64 {
        self.accounts.iter().map(|u| u.exchanges).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exchange(account: &str, ts_ms: i64, reasoning: u64) -> Exchange {
        let line = format!(
            r#"{{"v":1,"ts":"{}","account_id":"{account}","request":{{"messages":[]}},"response":{{"status":200,"reasoning_tokens":{reasoning}}}}}"#,
            moat_types::Timestamp::from_millis(ts_ms)
        );
        serde_json::from_str(&line).unwrap()
    }

    #[test]
    fn counts_per_account_and_sums() {
        let book = UsageBook::default();
        book.record(&exchange("a", 1_000, 10), false);
        book.record(&exchange("a", 2_000, 20), true);
        book.record(&exchange("b", 500, 5), true);
        let a = book.get("a").unwrap();
        assert_eq!(
            (a.exchanges, a.reasoning_tokens, a.after_detection),
            (2, 30, 1)
        );
        let s = book.sum(["a", "b", "missing"]);
        assert_eq!((s.exchanges, s.reasoning_tokens), (3, 35));
        assert_eq!((s.first_ms, s.last_ms), (Some(500), Some(2_000)));
        assert_eq!(s.reasoning_after_detection, 25);
        assert_eq!(book.exchanges(), 3);
    }
}

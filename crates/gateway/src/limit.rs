//! Throttling: token buckets of requests and model tokens per minute, per account or per
//! campaign, shared by every request the gateway is serving.
//!
//! A request is admitted when its scope has a whole request left and its token budget is not
//! exhausted; model tokens are charged as they pass (a stream is charged chunk by chunk), so a
//! bucket may go into debt by the tokens of one chunk, and a stream whose budget runs out is
//! cut by the caller. The limits are the matching rule's, so a bucket takes the limits it is
//! given each time (a policy reload changes them at once). Buckets are refilled lazily from a
//! caller-supplied clock, which keeps this module deterministic under test. Not a distributed
//! limiter: the scale-out mode shares counters through Redis instead.

use dashmap::DashMap;

/// Limits of one scope.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Limits {
    /// Requests per minute.
    pub requests_per_minute: Option<u32>,
    /// Model tokens (prompt and completion) per minute.
    pub tokens_per_minute: Option<u64>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    requests: f64,
    tokens: f64,
    /// Clock reading of the last refill (ms).
    at: u64,
    limits: Limits,
}

impl Bucket {
    fn full(limits: Limits, now: u64) -> Self {
        Bucket {
            requests: limits.requests_per_minute.map_or(0.0, f64::from),
            tokens: limits.tokens_per_minute.map_or(0.0, |t| t as f64),
            at: now,
            limits,
        }
    }

    fn refill(&mut self, limits: Limits, now: u64) {
        let elapsed = now.saturating_sub(self.at) as f64 / 60_000.0;
        self.at = now.max(self.at);
        self.limits = limits;
        if let Some(r) = limits.requests_per_minute {
            let cap = f64::from(r);
            self.requests = (self.requests + elapsed * cap).min(cap);
        }
        if let Some(t) = limits.tokens_per_minute {
            let cap = t as f64;
            self.tokens = (self.tokens + elapsed * cap).min(cap);
        }
    }

    /// Seconds until a request would be admitted.
    fn wait(&self) -> u64 {
        let mut secs: f64 = 0.0;
        if let Some(r) = self.limits.requests_per_minute.filter(|&r| r > 0) {
            if self.requests < 1.0 {
                secs = secs.max((1.0 - self.requests) * 60.0 / f64::from(r));
            }
        } else if self.limits.requests_per_minute == Some(0) {
            secs = 60.0;
        }
        if let Some(t) = self.limits.tokens_per_minute.filter(|&t| t > 0) {
            if self.tokens < 1.0 {
                secs = secs.max((1.0 - self.tokens) * 60.0 / t as f64);
            }
        } else if self.limits.tokens_per_minute == Some(0) {
            secs = 60.0;
        }
        secs.ceil().max(1.0) as u64
    }
}

/// Refused: retry after this many seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exhausted {
    /// Seconds until the scope has budget again.
    pub retry_after: u64,
}

/// The buckets of every throttled scope.
#[derive(Debug, Default)]
pub struct Limiter {
    buckets: DashMap<Box<str>, Bucket, foldhash::fast::RandomState>,
}

impl Limiter {
    /// An empty limiter.
    pub fn new() -> Self {
        Limiter::default()
    }

    /// Admits one request of scope `key` under `limits` at clock `now` (ms), taking one
    /// request from its bucket, or says how long to wait.
    pub fn admit(&self, key: &str, limits: Limits, now: u64) -> Result<(), Exhausted> {
        let mut entry = self
            .buckets
            .entry(key.into())
            .or_insert_with(|| Bucket::full(limits, now));
        let b = entry.value_mut();
        b.refill(limits, now);
        let requests_ok = limits.requests_per_minute.is_none() || b.requests >= 1.0;
        // A whole token must have come back: a bucket refilled by a fraction since a stream
        // spent it is still spent.
        let tokens_ok = limits.tokens_per_minute.is_none() || b.tokens >= 1.0;
        if requests_ok && tokens_ok {
            if limits.requests_per_minute.is_some() {
                b.requests -= 1.0;
            }
            Ok(())
        } else {
            Err(Exhausted {
                retry_after: b.wait(),
            })
        }
    }

    /// Charges `tokens` model tokens to scope `key` and says whether its token budget still
    /// holds (false: a stream in progress should be cut). Scopes never admitted are
    /// unlimited.
    pub fn charge(&self, key: &str, tokens: u64, now: u64) -> bool {
        let Some(mut entry) = self.buckets.get_mut(key) else {
            return true;
        };
        let b = entry.value_mut();
        let limits = b.limits;
        b.refill(limits, now);
        if limits.tokens_per_minute.is_none() {
            return true;
        }
        b.tokens -= tokens as f64;
        b.tokens > 0.0
    }

    /// Forgets buckets that have refilled completely (a full bucket is the same as none),
    /// so idle accounts cost nothing. Returns how many remain.
    pub fn purge(&self, now: u64) -> usize {
        self.buckets.retain(|_, b| {
            let limits = b.limits;
            let mut probe = *b;
            probe.refill(limits, now);
            let full_requests = limits
                .requests_per_minute
                .is_none_or(|r| probe.requests >= f64::from(r));
            let full_tokens = limits
                .tokens_per_minute
                .is_none_or(|t| probe.tokens >= t as f64);
            !(full_requests && full_tokens)
        });
        self.buckets.len()
    }

    /// Scopes currently tracked.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// Whether no scope is tracked.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rpm(n: u32) -> Limits {
        Limits {
            requests_per_minute: Some(n),
            tokens_per_minute: None,
        }
    }

    #[test]
    fn requests_per_minute_admits_the_budget_then_refills() {
        let l = Limiter::new();
        for _ in 0..3 {
            assert!(l.admit("a:x", rpm(3), 0).is_ok());
        }
        let e = l.admit("a:x", rpm(3), 0).unwrap_err();
        assert_eq!(e.retry_after, 20);
        // Other scopes are independent.
        assert!(l.admit("a:y", rpm(3), 0).is_ok());
        // A third of a minute later one request is back.
        assert!(l.admit("a:x", rpm(3), 20_000).is_ok());
        assert!(l.admit("a:x", rpm(3), 20_000).is_err());
    }

    #[test]
    fn token_budget_goes_into_debt_and_blocks_until_repaid() {
        let l = Limiter::new();
        let lim = Limits {
            requests_per_minute: None,
            tokens_per_minute: Some(600),
        };
        assert!(l.admit("c:C-0001", lim, 0).is_ok());
        assert!(l.charge("c:C-0001", 500, 0));
        assert!(!l.charge("c:C-0001", 200, 0)); // 100 in debt: cut the stream
        let e = l.admit("c:C-0001", lim, 0).unwrap_err();
        assert!(e.retry_after >= 10, "{e:?}");
        // 600 per minute: 101 tokens take 10.1 s to come back.
        assert!(l.admit("c:C-0001", lim, 11_000).is_ok());
    }

    #[test]
    fn unknown_scopes_are_not_charged() {
        let l = Limiter::new();
        assert!(l.charge("a:nobody", 1_000_000, 0));
        assert!(l.is_empty());
    }

    #[test]
    fn purge_forgets_only_full_buckets() {
        let l = Limiter::new();
        l.admit("a:x", rpm(2), 0).unwrap();
        l.admit("a:y", rpm(2), 0).unwrap();
        l.admit("a:y", rpm(2), 0).unwrap();
        assert_eq!(l.purge(30_000), 1); // x refilled, y still one short
        assert_eq!(l.purge(60_000), 0);
    }

    #[test]
    fn new_limits_apply_at_once() {
        let l = Limiter::new();
        l.admit("a:x", rpm(100), 0).unwrap();
        // A reload lowers the limit: the bucket is capped at the new size.
        for _ in 0..2 {
            l.admit("a:x", rpm(2), 1).unwrap();
        }
        assert!(l.admit("a:x", rpm(2), 1).is_err());
    }
}

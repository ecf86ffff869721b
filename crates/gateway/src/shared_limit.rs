//! Throttle counters shared by every gateway replica, in Redis (`[throttle] backend =
//! "redis"`): the same token buckets as [`crate::limit`], kept in one Redis hash per scope and
//! updated by Lua scripts, so a refill, a check and a take are one atomic step however many
//! gateways serve the scope. The clock is Redis's own (`TIME`), so replicas with skewed
//! clocks still share one bucket. A bucket left alone for two minutes expires (a full bucket
//! is the same as none).
//!
//! Every call has a short timeout; a failure is [`SharedUnavailable`], and the caller decides
//! by its fail mode (serve on its local buckets, or refuse). The connection is made on first
//! use and re-made by the driver after an outage, so a Redis restart needs no gateway restart.
//! Not here: the local buckets (`limit.rs`), which answer when Redis cannot.

use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::Script;
use tokio::sync::Mutex;

use crate::limit::{Exhausted, Limits};

/// Redis did not answer in time, refused, or is unreachable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedUnavailable(pub String);

/// Refill, check and take one request (KEYS[1]: the bucket; ARGV: requests and tokens per
/// minute, -1 for none). Returns {1, 0} when admitted, {0, seconds to wait} when not.
const ADMIT: &str = r"
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local rpm = tonumber(ARGV[1])
local tpm = tonumber(ARGV[2])
local b = redis.call('HMGET', KEYS[1], 'r', 'k', 'at')
local r, k, at = tonumber(b[1]), tonumber(b[2]), tonumber(b[3])
if at == nil then
  r = math.max(rpm, 0)
  k = math.max(tpm, 0)
  at = now
end
local elapsed = math.max(now - at, 0) / 60000
if rpm >= 0 then r = math.min(r + elapsed * rpm, rpm) end
if tpm >= 0 then k = math.min(k + elapsed * tpm, tpm) end
at = math.max(now, at)
local ok = (rpm < 0 or r >= 1) and (tpm < 0 or k >= 1)
if ok and rpm >= 0 then r = r - 1 end
redis.call('HSET', KEYS[1], 'r', tostring(r), 'k', tostring(k), 'at', tostring(at),
  'rpm', tostring(rpm), 'tpm', tostring(tpm))
redis.call('PEXPIRE', KEYS[1], 120000)
if ok then return {1, 0} end
local wait = 0
if rpm > 0 and r < 1 then wait = math.max(wait, (1 - r) * 60 / rpm) end
if rpm == 0 then wait = 60 end
if tpm > 0 and k < 1 then wait = math.max(wait, (1 - k) * 60 / tpm) end
if tpm == 0 then wait = 60 end
return {0, math.max(math.ceil(wait), 1)}
";

/// Refill and charge model tokens (KEYS[1]: the bucket; ARGV[1]: tokens). Returns 1 while the
/// token budget holds (or the scope has none, or no bucket), 0 once it is spent.
const CHARGE: &str = r"
local b = redis.call('HMGET', KEYS[1], 'k', 'at', 'tpm')
local k, at, tpm = tonumber(b[1]), tonumber(b[2]), tonumber(b[3])
if at == nil or tpm == nil or tpm < 0 then return 1 end
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
k = math.min(k + math.max(now - at, 0) / 60000 * tpm, tpm) - tonumber(ARGV[1])
redis.call('HSET', KEYS[1], 'k', tostring(k), 'at', tostring(math.max(now, at)))
redis.call('PEXPIRE', KEYS[1], 120000)
if k > 0 then return 1 end
return 0
";

/// Least time between two connection attempts while Redis is unreachable, so that a
/// gateway under load does not try once per request.
const RECONNECT_EVERY: Duration = Duration::from_secs(1);

/// The shared buckets.
pub struct SharedLimiter {
    client: redis::Client,
    prefix: String,
    timeout: Duration,
    conn: Mutex<Conn>,
    admit: Script,
    charge: Script,
    /// When a failure was last logged: an outage is logged once every ten seconds, not once
    /// per request (the metric counts every one).
    last_warning: std::sync::Mutex<Option<Instant>>,
}

#[derive(Default)]
struct Conn {
    manager: Option<ConnectionManager>,
    last_attempt: Option<Instant>,
}

impl SharedLimiter {
    /// Whether a failure now should be logged: the first, then one every ten seconds.
    pub fn should_warn(&self) -> bool {
        let mut last = self
            .last_warning
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        match *last {
            Some(t) if now.duration_since(t) < Duration::from_secs(10) => false,
            _ => {
                *last = Some(now);
                true
            }
        }
    }
}

impl std::fmt::Debug for SharedLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password: only the prefix is shown.
        f.debug_struct("SharedLimiter")
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl SharedLimiter {
    /// A limiter on the Redis server at `url` (`redis://host:port/db`), its keys starting with
    /// `prefix`; each call waits at most `timeout`. Connects on first use. Fails only on a URL
    /// that cannot be parsed (the message never repeats the URL, which may hold a password).
    pub fn new(url: &str, prefix: &str, timeout: Duration) -> Result<SharedLimiter, String> {
        let client = redis::Client::open(url)
            .map_err(|e| format!("throttle.redis_url_env: not a Redis URL ({})", e.category()))?;
        Ok(SharedLimiter {
            client,
            prefix: prefix.to_owned(),
            timeout,
            conn: Mutex::new(Conn::default()),
            admit: Script::new(ADMIT),
            charge: Script::new(CHARGE),
            last_warning: std::sync::Mutex::new(None),
        })
    }

    fn key(&self, scope: &str) -> String {
        format!("{}{scope}", self.prefix)
    }

    /// The connection, made on first use and again (at most once a second) after a failed
    /// attempt; the driver itself reconnects a connection that breaks later.
    async fn connection(&self) -> Result<ConnectionManager, SharedUnavailable> {
        let mut c = self.conn.lock().await;
        if let Some(m) = &c.manager {
            return Ok(m.clone());
        }
        if c.last_attempt
            .is_some_and(|t| t.elapsed() < RECONNECT_EVERY)
        {
            return Err(SharedUnavailable("not connected (retrying)".to_owned()));
        }
        c.last_attempt = Some(Instant::now());
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout))
            .set_number_of_retries(1);
        let made = tokio::time::timeout(
            self.timeout * 2,
            ConnectionManager::new_with_config(self.client.clone(), config),
        )
        .await;
        match made {
            Ok(Ok(m)) => {
                c.manager = Some(m.clone());
                Ok(m)
            }
            Ok(Err(e)) => Err(SharedUnavailable(format!("connect: {}", e.category()))),
            Err(_) => Err(SharedUnavailable("connect: timed out".to_owned())),
        }
    }

    /// Admits one request of `scope` under `limits`, or says how long to wait; `Err` when
    /// Redis could not be asked.
    pub async fn admit(
        &self,
        scope: &str,
        limits: Limits,
    ) -> Result<Result<(), Exhausted>, SharedUnavailable> {
        let mut conn = self.connection().await?;
        let rpm = limits.requests_per_minute.map_or(-1, i64::from);
        let tpm = limits
            .tokens_per_minute
            .map_or(-1, |t| i64::try_from(t).unwrap_or(i64::MAX));
        let mut call = self.admit.key(self.key(scope));
        call.arg(rpm).arg(tpm);
        let reply: (i64, i64) = tokio::time::timeout(self.timeout, call.invoke_async(&mut conn))
            .await
            .map_err(|_| SharedUnavailable("admit: timed out".to_owned()))?
            .map_err(|e| SharedUnavailable(format!("admit: {}", e.category())))?;
        Ok(match reply {
            (1, _) => Ok(()),
            (_, wait) => Err(Exhausted {
                retry_after: u64::try_from(wait).unwrap_or(60).max(1),
            }),
        })
    }

    /// Charges `tokens` to `scope`; `Ok(false)` once its token budget is spent (a stream in
    /// progress should be cut). Scopes without a bucket are unlimited.
    pub async fn charge(&self, scope: &str, tokens: u64) -> Result<bool, SharedUnavailable> {
        let mut conn = self.connection().await?;
        let mut call = self.charge.key(self.key(scope));
        call.arg(i64::try_from(tokens).unwrap_or(i64::MAX));
        let reply: i64 = tokio::time::timeout(self.timeout, call.invoke_async(&mut conn))
            .await
            .map_err(|_| SharedUnavailable("charge: timed out".to_owned()))?
            .map_err(|e| SharedUnavailable(format!("charge: {}", e.category())))?;
        Ok(reply == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outage_is_logged_once_per_interval() {
        // Making the client connects to nothing.
        let l = SharedLimiter::new("redis://127.0.0.1:1/", "t:", Duration::from_millis(5)).unwrap();
        assert!(l.should_warn());
        assert!(!l.should_warn());
        assert!(!l.should_warn());
    }
}

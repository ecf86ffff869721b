//! The record of what reached the mock, for tests that check what the gateway sent upstream.
//!
//! Each request becomes one JSON value, `{"method", "path", "headers", "body"}`, with the body
//! parsed as JSON when it is JSON (a string otherwise, `null` when empty) and only the headers a
//! test may care about: credentials (`authorization`, `x-api-key`), the Anthropic and OpenAI
//! routing headers, `content-type`, `accept`, `user-agent` and every `x-` header. The record keeps
//! the most recent [`MockConfig::record_limit`](crate::MockConfig::record_limit) requests, so a
//! long benchmark cannot grow it without bound. It is a test aid, not an access log.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::http::HeaderMap;
use serde_json::{Map, Value};

/// Headers recorded besides every `x-` header.
const RECORDED: [&str; 9] = [
    "authorization",
    "api-key",
    "anthropic-version",
    "anthropic-beta",
    "openai-organization",
    "openai-project",
    "content-type",
    "accept",
    "user-agent",
];

/// A shared, bounded record of the requests a mock received. Clones share the same record.
#[derive(Debug, Clone)]
pub struct RequestLog {
    inner: Arc<Mutex<VecDeque<Value>>>,
    limit: usize,
}

impl RequestLog {
    /// An empty record keeping at most `limit` requests (the most recent ones); 0 records
    /// nothing.
    pub fn new(limit: usize) -> RequestLog {
        RequestLog {
            inner: Arc::new(Mutex::new(VecDeque::new())),
            limit,
        }
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<Value>> {
        // A panic while holding this lock cannot leave the queue half-updated, so a poisoned lock
        // is still safe to use.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The recorded requests, oldest first.
    pub fn requests(&self) -> Vec<Value> {
        self.lock().iter().cloned().collect()
    }

    /// Forgets every recorded request.
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// Whether the record is off (its limit is 0), in which case recording costs nothing.
    pub fn is_disabled(&self) -> bool {
        self.limit == 0
    }

    /// Records one request.
    pub(crate) fn record(&self, method: &str, path: &str, headers: &HeaderMap, body: &[u8]) {
        if self.is_disabled() {
            return;
        }
        let mut recorded = Map::new();
        for (name, value) in headers {
            let name = name.as_str();
            if !(name.starts_with("x-") || RECORDED.contains(&name)) {
                continue;
            }
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            match recorded.get_mut(name) {
                // Repeated headers are joined the way HTTP allows them to be combined.
                Some(Value::String(existing)) => {
                    existing.push_str(", ");
                    existing.push_str(&value);
                }
                _ => {
                    recorded.insert(name.to_owned(), Value::String(value));
                }
            }
        }
        let body = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(body)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
        };
        let mut entry = Map::with_capacity(4);
        entry.insert("method".to_owned(), Value::from(method));
        entry.insert("path".to_owned(), Value::from(path));
        entry.insert("headers".to_owned(), Value::Object(recorded));
        entry.insert("body".to_owned(), body);
        let mut log = self.lock();
        while log.len() >= self.limit {
            log.pop_front();
        }
        log.push_back(Value::Object(entry));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn records_selected_headers_and_parsed_bodies() {
        let log = RequestLog::new(8);
        let mut headers = HeaderMap::new();
        headers.insert("authorization", HeaderValue::from_static("Bearer up"));
        headers.insert("x-moat-account", HeaderValue::from_static("acct"));
        headers.insert("cookie", HeaderValue::from_static("secret"));
        headers.append("x-multi", HeaderValue::from_static("a"));
        headers.append("x-multi", HeaderValue::from_static("b"));
        log.record(
            "POST",
            "/v1/chat/completions",
            &headers,
            br#"{"model":"m"}"#,
        );
        log.record("POST", "/v1/completions", &HeaderMap::new(), b"not json");
        log.record("GET", "/v1/models", &HeaderMap::new(), b"");
        let got = log.requests();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0]["path"], "/v1/chat/completions");
        assert_eq!(got[0]["headers"]["authorization"], "Bearer up");
        assert_eq!(got[0]["headers"]["x-moat-account"], "acct");
        assert_eq!(got[0]["headers"]["x-multi"], "a, b");
        assert!(got[0]["headers"].get("cookie").is_none());
        assert_eq!(got[0]["body"]["model"], "m");
        assert_eq!(got[1]["body"], "not json");
        assert_eq!(got[2]["body"], Value::Null);
        log.clear();
        assert!(log.requests().is_empty());
    }

    #[test]
    fn keeps_only_the_most_recent_requests() {
        let log = RequestLog::new(2);
        for i in 0..5 {
            log.record("POST", &format!("/{i}"), &HeaderMap::new(), b"");
        }
        let paths: Vec<_> = log.requests().iter().map(|r| r["path"].clone()).collect();
        assert_eq!(paths, ["/3", "/4"]);
    }

    #[test]
    fn a_zero_limit_records_nothing() {
        let log = RequestLog::new(0);
        log.record("POST", "/v1/messages", &HeaderMap::new(), b"{}");
        assert!(log.requests().is_empty());
        assert!(log.is_disabled());
    }
}

//! Who sent a request: the account (from an API key or a trusted header), the client's
//! address (the socket peer, or an `x-forwarded-for` entry behind a configured number of
//! trusted proxies), its user agent, and the attributes the provider's edge sets in headers.
//!
//! Keys are compared as SHA-256 digests; the key itself is never stored, logged or recorded
//! (the record carries the key's public id).
//!
//! Also, for replaying recorded traffic only, the request's time from a configured header
//! ([`Resolver::request_time`]): like the account header, it is trusted as sent.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use http::HeaderMap;
use moat_types::{Client, Timestamp};
use sha2::{Digest, Sha256};

use crate::config::{Identity as IdentityConfig, IdentityMode};

/// A resolved caller.
#[derive(Debug, Clone, PartialEq)]
pub struct Caller {
    /// The account.
    pub account: String,
    /// The key's public id, when a key identified it.
    pub key_id: Option<String>,
    /// Client facts for the record.
    pub client: Client,
    /// The client address, parsed.
    pub ip: Option<IpAddr>,
    /// Provider attributes (`attr.<name>` in the policy), in configuration order.
    pub attrs: Vec<(String, String)>,
}

/// Why a caller could not be identified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unidentified {
    /// No credentials or account header.
    Missing,
    /// A key that is not known.
    UnknownKey,
    /// An account header that is not a usable id.
    BadHeader,
}

/// Longest attribute value kept from a header (longer values are cut at a character
/// boundary): headers are client-controlled where the edge does not overwrite them.
const MAX_ATTR: usize = 256;

/// The identity resolver, built from configuration.
#[derive(Debug, Clone)]
pub struct Resolver {
    mode: IdentityMode,
    account_header: http::HeaderName,
    keys: HashMap<[u8; 32], (String, Option<String>)>,
    hops: usize,
    asn: Option<http::HeaderName>,
    country: Option<http::HeaderName>,
    ja4: Option<http::HeaderName>,
    attrs: Vec<(String, http::HeaderName)>,
    time: Option<http::HeaderName>,
}

/// Why the configured time header gave no time (the gateway answers 400).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BadTime {
    /// The request does not carry the header.
    Missing(http::HeaderName),
    /// Its value is not an RFC 3339 timestamp.
    Invalid(http::HeaderName),
}

impl BadTime {
    /// What to tell the client: the header's name, never its value.
    pub fn message(&self) -> String {
        match self {
            BadTime::Missing(h) => {
                format!("the {h} header is required on this listener (an RFC 3339 timestamp)")
            }
            BadTime::Invalid(h) => format!("the {h} header is not an RFC 3339 timestamp"),
        }
    }
}

/// Longest time header value parsed (RFC 3339 with nanoseconds and an offset is 35 bytes).
const MAX_TIME: usize = 64;

/// Hex SHA-256 of a key, as configured.
pub fn hash_key(key: &str) -> String {
    let d = Sha256::digest(key.as_bytes());
    let mut s = String::with_capacity(64);
    for b in d {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 15)]));
    }
    s
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// 32 bytes from 64 hex digits.
pub(crate) fn unhex(s: &str) -> Option<[u8; 32]> {
    let b = s.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        let hi = char::from(b[2 * i]).to_digit(16)?;
        let lo = char::from(b[2 * i + 1]).to_digit(16)?;
        *o = (hi * 16 + lo) as u8;
    }
    Some(out)
}

fn header(name: &str) -> Option<http::HeaderName> {
    http::HeaderName::from_bytes(name.as_bytes()).ok()
}

impl Resolver {
    /// A resolver for the `[identity]` section (already validated).
    pub fn new(cfg: &IdentityConfig) -> Resolver {
        let mut attrs = Vec::new();
        let (mut asn, mut country, mut ja4) = (None, None, None);
        for (name, h) in &cfg.headers {
            let Some(h) = header(h) else { continue };
            match name.as_str() {
                "asn" => asn = Some(h),
                "country" => country = Some(h),
                "ja4" => ja4 = Some(h),
                _ => attrs.push((name.clone(), h)),
            }
        }
        Resolver {
            mode: cfg.mode,
            account_header: header(&cfg.account_header)
                .unwrap_or(http::HeaderName::from_static("x-moat-account")),
            keys: cfg
                .keys
                .iter()
                .filter_map(|k| Some((unhex(&k.sha256)?, (k.account.clone(), k.id.clone()))))
                .collect(),
            hops: cfg.trusted_proxy_hops,
            asn,
            country,
            ja4,
            attrs,
            time: cfg.time_header.as_deref().and_then(header),
        }
    }

    /// The time of a request with these headers: `None` when no time header is configured
    /// (the gateway's clock decides), the header's timestamp when one is.
    pub fn request_time(&self, headers: &HeaderMap) -> Result<Option<Timestamp>, BadTime> {
        let Some(name) = &self.time else {
            return Ok(None);
        };
        let v = headers
            .get(name)
            .ok_or_else(|| BadTime::Missing(name.clone()))?;
        let text = v
            .to_str()
            .ok()
            .map(str::trim)
            .filter(|t| t.len() <= MAX_TIME)
            .ok_or_else(|| BadTime::Invalid(name.clone()))?;
        Timestamp::parse(text)
            .map(Some)
            .map_err(|_| BadTime::Invalid(name.clone()))
    }

    /// Identifies the caller of a request with these headers from socket `peer`.
    pub fn resolve(
        &self,
        headers: &HeaderMap,
        peer: Option<SocketAddr>,
    ) -> Result<Caller, Unidentified> {
        let (account, key_id) = match self.mode {
            IdentityMode::ApiKey => {
                let key = bearer(headers).ok_or(Unidentified::Missing)?;
                let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
                let (account, id) = self.keys.get(&digest).ok_or(Unidentified::UnknownKey)?;
                (account.clone(), id.clone())
            }
            IdentityMode::Header => {
                let v = headers
                    .get(&self.account_header)
                    .ok_or(Unidentified::Missing)?;
                let v = v.to_str().map_err(|_| Unidentified::BadHeader)?.trim();
                if v.is_empty() || v.len() > 256 {
                    return Err(Unidentified::BadHeader);
                }
                (v.to_owned(), None)
            }
        };
        let ip = self.client_ip(headers, peer);
        let text = |h: &Option<http::HeaderName>| {
            h.as_ref()
                .and_then(|h| headers.get(h))
                .and_then(|v| v.to_str().ok())
                .map(|s| cut(s.trim()).to_owned())
                .filter(|s| !s.is_empty())
        };
        let client = Client {
            ip: ip.map(|i| i.to_string()),
            asn: text(&self.asn).and_then(|s| s.trim_start_matches("AS").parse().ok()),
            country: text(&self.country),
            user_agent: headers
                .get(http::header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(|s| cut(s).to_owned()),
            tls_ja4: text(&self.ja4),
        };
        let attrs = self
            .attrs
            .iter()
            .map(|(name, h)| {
                let v = headers
                    .get(h)
                    .and_then(|v| v.to_str().ok())
                    .map_or("", |s| cut(s.trim()));
                (name.clone(), v.to_owned())
            })
            .collect();
        Ok(Caller {
            account,
            key_id,
            client,
            ip,
            attrs,
        })
    }

    fn client_ip(&self, headers: &HeaderMap, peer: Option<SocketAddr>) -> Option<IpAddr> {
        let peer_ip = peer.map(|p| p.ip());
        if self.hops == 0 {
            return peer_ip;
        }
        // Every x-forwarded-for header, in order, as one list; entries appended by the
        // trusted proxies are the rightmost `hops`.
        let entries: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        if entries.len() < self.hops {
            // Fewer hops than configured: the request did not come through every trusted
            // proxy, so the leftmost entry (or the peer) is the best the gateway knows.
            return entries.first().and_then(|e| e.parse().ok()).or(peer_ip);
        }
        entries
            .get(entries.len() - self.hops)
            .and_then(|e| e.parse().ok())
            .or(peer_ip)
    }
}

/// The API key of a request: `Authorization: Bearer` (OpenAI) or `x-api-key` (Anthropic).
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers.get(http::header::AUTHORIZATION) {
        let v = v.to_str().ok()?;
        let key = v
            .strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))?
            .trim();
        return (!key.is_empty()).then_some(key);
    }
    headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|k| !k.is_empty())
}

fn cut(s: &str) -> &str {
    if s.len() <= MAX_ATTR {
        return s;
    }
    let mut end = MAX_ATTR;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::KeyEntry;

    fn cfg(mode: IdentityMode, hops: usize) -> IdentityConfig {
        IdentityConfig {
            mode,
            keys: vec![KeyEntry {
                sha256: hash_key("sk-test-1"),
                account: "acct_1".into(),
                id: Some("key_1".into()),
            }],
            trusted_proxy_hops: hops,
            headers: [
                ("asn".to_owned(), "x-edge-asn".to_owned()),
                ("tier".to_owned(), "x-edge-tier".to_owned()),
            ]
            .into_iter()
            .collect(),
            ..IdentityConfig::default()
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn bearer_and_x_api_key_both_identify() {
        let r = Resolver::new(&cfg(IdentityMode::ApiKey, 0));
        let peer = Some("198.51.100.4:5000".parse().unwrap());
        let c = r
            .resolve(&headers(&[("authorization", "Bearer sk-test-1")]), peer)
            .unwrap();
        assert_eq!(c.account, "acct_1");
        assert_eq!(c.key_id.as_deref(), Some("key_1"));
        assert_eq!(c.client.ip.as_deref(), Some("198.51.100.4"));
        let c = r
            .resolve(&headers(&[("x-api-key", "sk-test-1")]), peer)
            .unwrap();
        assert_eq!(c.account, "acct_1");
        assert_eq!(
            r.resolve(&headers(&[("authorization", "Bearer sk-other")]), peer),
            Err(Unidentified::UnknownKey)
        );
        assert_eq!(
            r.resolve(&HeaderMap::new(), peer),
            Err(Unidentified::Missing)
        );
    }

    #[test]
    fn forwarded_for_is_trusted_only_for_configured_hops() {
        let h = headers(&[
            ("authorization", "Bearer sk-test-1"),
            ("x-forwarded-for", "6.6.6.6, 203.0.113.9"),
            ("x-forwarded-for", "10.0.0.2"),
        ]);
        let peer = Some("10.0.0.3:443".parse().unwrap());
        let ip = |hops| {
            Resolver::new(&cfg(IdentityMode::ApiKey, hops))
                .resolve(&h, peer)
                .unwrap()
                .client
                .ip
        };
        assert_eq!(ip(0).as_deref(), Some("10.0.0.3"));
        assert_eq!(ip(1).as_deref(), Some("10.0.0.2"));
        assert_eq!(ip(2).as_deref(), Some("203.0.113.9"));
        // A spoofed leftmost entry is used only when the client came through every hop.
        assert_eq!(ip(3).as_deref(), Some("6.6.6.6"));
    }

    #[test]
    fn header_mode_takes_the_trusted_header_and_edge_attributes() {
        let r = Resolver::new(&cfg(IdentityMode::Header, 0));
        let c = r
            .resolve(
                &headers(&[
                    ("x-moat-account", "org_77"),
                    ("x-edge-asn", "AS64500"),
                    ("x-edge-tier", "free"),
                    ("user-agent", "OpenAI/Python 1.40.0"),
                ]),
                None,
            )
            .unwrap();
        assert_eq!(c.account, "org_77");
        assert_eq!(c.client.asn, Some(64500));
        assert_eq!(c.attrs, vec![("tier".to_owned(), "free".to_owned())]);
        assert_eq!(c.client.user_agent.as_deref(), Some("OpenAI/Python 1.40.0"));
        assert_eq!(
            r.resolve(&headers(&[("x-moat-account", " ")]), None),
            Err(Unidentified::BadHeader)
        );
    }

    #[test]
    fn time_header_gives_the_request_time_when_configured() {
        let r = Resolver::new(&cfg(IdentityMode::Header, 0));
        assert_eq!(r.request_time(&headers(&[("x-moat-time", "x")])), Ok(None));
        let r = Resolver::new(&IdentityConfig {
            time_header: Some("X-Moat-Time".into()),
            ..cfg(IdentityMode::Header, 0)
        });
        assert_eq!(
            r.request_time(&headers(&[("x-moat-time", "2026-03-02T00:00:13.693Z")])),
            Ok(Some(Timestamp::parse("2026-03-02T00:00:13.693Z").unwrap()))
        );
        assert_eq!(
            r.request_time(&headers(&[(
                "x-moat-time",
                "2026-03-02T01:00:13.693+01:00"
            )])),
            Ok(Some(Timestamp::parse("2026-03-02T00:00:13.693Z").unwrap()))
        );
        let missing = r.request_time(&HeaderMap::new()).unwrap_err();
        assert!(matches!(missing, BadTime::Missing(_)));
        assert!(missing.message().contains("x-moat-time"), "{missing:?}");
        let long = format!("2026-03-02T00:00:13.{}Z", "1".repeat(200));
        for bad in ["yesterday", "2026-13-02T00:00:00Z", long.as_str()] {
            let e = r
                .request_time(&headers(&[("x-moat-time", bad)]))
                .unwrap_err();
            assert!(matches!(e, BadTime::Invalid(_)), "{bad}");
            assert!(!e.message().contains(bad), "{e:?}");
        }
    }

    #[test]
    fn long_header_values_are_cut_at_a_character_boundary() {
        let long = "é".repeat(300);
        assert!(cut(&long).len() <= MAX_ATTR);
        assert!(long.starts_with(cut(&long)));
    }
}

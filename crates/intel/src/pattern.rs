//! STIX patterning (STIX 2.1 section 9): the comparison expressions of the indicators, with
//! string literals escaped as the grammar requires.

use std::net::IpAddr;

/// `value` as the body of a STIX pattern string literal: `\` and `'` escaped with `\`.
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    for c in value.chars() {
        if c == '\\' || c == '\'' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The address block of `ip`: its IPv4 /24 or IPv6 /48 in CIDR text (`203.0.113.0/24`,
/// `2001:db8:1::/48`); `None` when `ip` is not an address.
pub fn block_of(ip: &str) -> Option<String> {
    match ip.trim().parse::<IpAddr>().ok()? {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            Some(format!("{a}.{b}.{c}.0/24"))
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            let net = std::net::Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0);
            Some(format!("{net}/48"))
        }
    }
}

/// The pattern matching any address in `block` (from [`block_of`]).
pub fn block_pattern(block: &str) -> String {
    let kind = if block.contains(':') {
        "ipv6-addr"
    } else {
        "ipv4-addr"
    };
    format!("[{kind}:value ISSUBSET '{}']", escape(block))
}

/// The pattern of an autonomous system.
pub fn asn_pattern(asn: u32) -> String {
    format!("[autonomous-system:number = {asn}]")
}

/// The pattern of an HTTP `User-Agent`.
pub fn user_agent_pattern(ua: &str) -> String {
    format!(
        "[network-traffic:extensions.'http-request-ext'.request_header.'User-Agent' = '{}']",
        escape(ua)
    )
}

/// The pattern of a JA4 TLS client fingerprint (a custom observable type: STIX 2.1 has none).
pub fn ja4_pattern(ja4: &str) -> String {
    format!("[x-moat-ja4:value = '{}']", escape(ja4))
}

/// The pattern of a keyed fingerprint (a custom observable type).
pub fn fingerprint_pattern(hmac: &str, kind: &str) -> String {
    format!(
        "[x-moat-fingerprint:hmac = '{}' AND x-moat-fingerprint:kind = '{}']",
        escape(hmac),
        escape(kind)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_and_backslashes_are_escaped() {
        assert_eq!(escape(r"a'b\c"), r"a\'b\\c");
        assert_eq!(
            user_agent_pattern("Bot 'x' \\ 1"),
            r"[network-traffic:extensions.'http-request-ext'.request_header.'User-Agent' = 'Bot \'x\' \\ 1']"
        );
        assert_eq!(escape("plain"), "plain");
    }

    #[test]
    fn blocks_are_v4_24_and_v6_48() {
        assert_eq!(block_of("203.0.113.77").as_deref(), Some("203.0.113.0/24"));
        assert_eq!(
            block_of("2001:db8:1:2::5").as_deref(),
            Some("2001:db8:1::/48")
        );
        assert_eq!(block_of("not an ip"), None);
        assert_eq!(
            block_pattern("203.0.113.0/24"),
            "[ipv4-addr:value ISSUBSET '203.0.113.0/24']"
        );
        assert_eq!(
            block_pattern("2001:db8:1::/48"),
            "[ipv6-addr:value ISSUBSET '2001:db8:1::/48']"
        );
        assert_eq!(asn_pattern(64500), "[autonomous-system:number = 64500]");
    }
}

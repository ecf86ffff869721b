//! The key shared with one partner, and the keyed fingerprints made with it.
//!
//! Payment and prompt-template fingerprints identify an actor across providers, but the raw
//! values are the provider's customer data. Both sides hold the same key; each computes
//! `HMAC-SHA256(key, domain || value)` over its own data and compares hex digests, so neither
//! learns the other's raw values. The domain tag keeps a payment value and a template value
//! that happen to be equal from colliding.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::IntelError;

/// Fewest key bytes accepted.
pub const MIN_KEY_BYTES: usize = 32;

/// A partner key: at least 32 bytes. Its `Debug` form never shows the bytes.
#[derive(Clone)]
pub struct PartnerKey(Vec<u8>);

impl fmt::Debug for PartnerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PartnerKey({} bytes, redacted)", self.0.len())
    }
}

impl PartnerKey {
    /// The key from a key file's bytes: hex (64 or more hex digits, surrounding whitespace
    /// ignored) when the whole file is hex, the raw bytes otherwise.
    pub fn from_file_bytes(bytes: &[u8]) -> Result<Self, IntelError> {
        let trimmed = bytes.trim_ascii();
        let is_hex = !trimmed.is_empty()
            && trimmed.len() % 2 == 0
            && trimmed.iter().all(u8::is_ascii_hexdigit);
        let key = if is_hex {
            trimmed
                .chunks_exact(2)
                .map(|pair| (hex_value(pair[0]) << 4) | hex_value(pair[1]))
                .collect()
        } else {
            bytes.to_vec()
        };
        Self::new(key)
    }

    /// The key from its bytes; refused when shorter than 32 bytes.
    pub fn new(bytes: Vec<u8>) -> Result<Self, IntelError> {
        if bytes.len() < MIN_KEY_BYTES {
            return Err(IntelError::KeyTooShort {
                len: bytes.len(),
                min: MIN_KEY_BYTES,
            });
        }
        Ok(PartnerKey(bytes))
    }

    /// Hex HMAC-SHA256 of `"moat-intel/v1/" + kind + "\0" + value`.
    pub fn fingerprint(&self, kind: &str, value: &str) -> String {
        // HMAC accepts keys of any length; the error branch cannot happen.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.0) else {
            return String::new();
        };
        mac.update(b"moat-intel/v1/");
        mac.update(kind.as_bytes());
        mac.update(b"\0");
        mac.update(value.as_bytes());
        let digest = mac.finalize().into_bytes();
        let mut out = String::with_capacity(64);
        for b in digest {
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
        out
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn hex_value(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        b'A'..=b'F' => c - b'A' + 10,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn short_keys_are_refused_and_hex_is_decoded() {
        assert!(matches!(
            PartnerKey::from_file_bytes(b"too short"),
            Err(IntelError::KeyTooShort { len: 9, .. })
        ));
        // 62 hex digits decode to 31 bytes: too short, although the text is 62 bytes.
        let short_hex = "ab".repeat(31);
        assert!(PartnerKey::from_file_bytes(short_hex.as_bytes()).is_err());
        let hex = format!("{}\n", "0f".repeat(32));
        let k = PartnerKey::from_file_bytes(hex.as_bytes()).unwrap();
        assert_eq!(k.0, vec![15u8; 32]);
        assert!(!format!("{k:?}").contains("0f"));
        let raw = PartnerKey::from_file_bytes(&[b'z'; 40]).unwrap();
        assert_eq!(raw.0.len(), 40);
    }

    #[test]
    fn fingerprints_differ_by_key_and_by_kind() {
        let a = PartnerKey::new(vec![1; 32]).unwrap();
        let b = PartnerKey::new(vec![2; 32]).unwrap();
        let fa = a.fingerprint("payment", "pf_1");
        assert_eq!(fa.len(), 64);
        assert_eq!(fa, a.fingerprint("payment", "pf_1"));
        assert_ne!(fa, b.fingerprint("payment", "pf_1"));
        assert_ne!(fa, a.fingerprint("template", "pf_1"));
        assert_ne!(fa, a.fingerprint("payment", "pf_2"));
    }

    #[test]
    fn fingerprint_matches_a_known_vector() {
        // The domain prefix spelt into the message:
        // HMAC-SHA256 over "moat-intel/v1/payment\0pf" under 32 bytes of 0x0b, computed with
        // Python's hmac module.
        let k = PartnerKey::new(vec![0x0b; 32]).unwrap();
        assert_eq!(
            k.fingerprint("payment", "pf"),
            "05c534764d23cbb1c41e030702713cd82993231b81cc12e6a24c7364e6b42cd9"
        );
    }
}

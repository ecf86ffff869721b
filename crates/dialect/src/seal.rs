//! Sealed reasoning tokens: authenticated encryption of withheld reasoning, bound to an account.
//!
//! A token is `moatr1.` followed by base64url (no padding) of a random 24-byte nonce and the
//! XChaCha20-Poly1305 ciphertext of the payload. The account id is associated data, so a token
//! issued to one account does not open for another. This module knows nothing about dialects
//! or where tokens go in a body; see `crate::withhold` and `crate::restore` for that.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

use crate::error::{DialectError, TokenFault};

/// The text that starts every token this crate issues (format version 1).
pub const TOKEN_PREFIX: &str = "moatr1.";

/// The largest payload [`Sealer::seal`] accepts and [`Sealer::open`] returns: 16 MiB, far
/// above any real reasoning, small enough that a hostile token cannot make us allocate much.
pub const MAX_PAYLOAD_BYTES: usize = 16 << 20;

const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

/// The longest token text [`Sealer::open`] looks at; anything longer is refused unread.
pub const MAX_TOKEN_CHARS: usize =
    TOKEN_PREFIX.len() + (NONCE_LEN + TAG_LEN + MAX_PAYLOAD_BYTES).div_ceil(3) * 4;

/// Domain separation, so the same key used elsewhere never authenticates our tokens.
const AAD_DOMAIN: &[u8] = b"moat-dialect/reasoning-token/v1\0";

/// Seals and opens reasoning tokens with one 32-byte key.
#[derive(Clone)]
pub struct Sealer {
    cipher: XChaCha20Poly1305,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The key must never reach logs.
        f.debug_struct("Sealer")
            .field("key", &"<redacted>")
            .finish()
    }
}

impl Sealer {
    /// A sealer with this key.
    pub fn new(key: [u8; 32]) -> Self {
        Sealer {
            cipher: XChaCha20Poly1305::new(&key.into()),
        }
    }

    /// A sealer from key bytes read from a file or the environment; they must be 32 bytes.
    pub fn from_slice(key: &[u8]) -> Result<Self, DialectError> {
        let key: [u8; 32] = key
            .try_into()
            .map_err(|_| DialectError::KeyLength(key.len()))?;
        Ok(Sealer::new(key))
    }

    /// Seals `payload` for `account_id` into a token.
    pub fn seal(&self, account_id: &str, payload: &[u8]) -> Result<String, DialectError> {
        if payload.len() > MAX_PAYLOAD_BYTES {
            return Err(DialectError::PayloadTooLarge {
                size: payload.len(),
                limit: MAX_PAYLOAD_BYTES,
            });
        }
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|e| DialectError::Random(e.to_string()))?;
        let aad = aad(account_id);
        let ciphertext = self
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: payload,
                    aad: &aad,
                },
            )
            // Encryption fails only for inputs beyond the cipher's 256 GiB limit, which the
            // size check above already excludes; report it rather than panic all the same.
            .map_err(|_| DialectError::PayloadTooLarge {
                size: payload.len(),
                limit: MAX_PAYLOAD_BYTES,
            })?;
        let mut raw = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        raw.extend_from_slice(&nonce);
        raw.extend_from_slice(&ciphertext);
        let mut token = String::with_capacity(TOKEN_PREFIX.len() + raw.len().div_ceil(3) * 4);
        token.push_str(TOKEN_PREFIX);
        URL_SAFE_NO_PAD.encode_string(&raw, &mut token);
        Ok(token)
    }

    /// Opens a token sealed for `account_id`; tampered, truncated or foreign tokens fail.
    pub fn open(&self, account_id: &str, token: &str) -> Result<Vec<u8>, DialectError> {
        if token.len() > MAX_TOKEN_CHARS {
            return Err(DialectError::InvalidToken(TokenFault::TooLarge));
        }
        let body = token
            .strip_prefix(TOKEN_PREFIX)
            .ok_or(DialectError::InvalidToken(TokenFault::Format))?;
        let raw = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| DialectError::InvalidToken(TokenFault::Format))?;
        if raw.len() < NONCE_LEN + TAG_LEN {
            return Err(DialectError::InvalidToken(TokenFault::Format));
        }
        let (nonce, ciphertext) = raw.split_at(NONCE_LEN);
        let aad = aad(account_id);
        self.cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| DialectError::InvalidToken(TokenFault::Authentication))
    }
}

/// Whether `s` looks like one of our tokens (cheap; says nothing about validity).
pub fn is_token(s: &str) -> bool {
    s.starts_with(TOKEN_PREFIX)
}

fn aad(account_id: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(AAD_DOMAIN.len() + account_id.len());
    aad.extend_from_slice(AAD_DOMAIN);
    aad.extend_from_slice(account_id.as_bytes());
    aad
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sealer() -> Sealer {
        Sealer::new([7u8; 32])
    }

    #[test]
    fn seal_then_open_round_trips() {
        let s = sealer();
        let token = s.seal("acct_1", b"hello reasoning").unwrap();
        assert!(token.starts_with(TOKEN_PREFIX));
        assert_eq!(s.open("acct_1", &token).unwrap(), b"hello reasoning");
    }

    #[test]
    fn tokens_are_randomised() {
        let s = sealer();
        assert_ne!(s.seal("a", b"x").unwrap(), s.seal("a", b"x").unwrap());
    }

    #[test]
    fn token_from_another_account_is_refused() {
        let s = sealer();
        let token = s.seal("acct_1", b"secret").unwrap();
        assert_eq!(
            s.open("acct_2", &token),
            Err(DialectError::InvalidToken(TokenFault::Authentication))
        );
    }

    #[test]
    fn token_under_another_key_is_refused() {
        let token = sealer().seal("acct_1", b"secret").unwrap();
        let other = Sealer::new([8u8; 32]);
        assert!(other.open("acct_1", &token).is_err());
    }

    #[test]
    fn truncated_and_garbled_tokens_are_refused() {
        let s = sealer();
        let token = s.seal("acct_1", b"secret").unwrap();
        for cut in 0..token.len() {
            assert!(s.open("acct_1", &token[..cut]).is_err(), "cut at {cut}");
        }
        assert_eq!(
            s.open("acct_1", "moatr1.!!!"),
            Err(DialectError::InvalidToken(TokenFault::Format))
        );
        assert_eq!(
            s.open("acct_1", "other.AAAA"),
            Err(DialectError::InvalidToken(TokenFault::Format))
        );
    }

    #[test]
    fn oversized_token_is_refused_unread() {
        let s = sealer();
        let huge = format!("{TOKEN_PREFIX}{}", "A".repeat(MAX_TOKEN_CHARS));
        assert_eq!(
            s.open("a", &huge),
            Err(DialectError::InvalidToken(TokenFault::TooLarge))
        );
    }

    #[test]
    fn debug_does_not_print_the_key() {
        let s = Sealer::new([0xAB; 32]);
        let text = format!("{s:?}");
        assert!(text.contains("redacted"));
        assert!(!text.to_lowercase().contains("ab, ab") && !text.contains("171"));
    }

    #[test]
    fn key_of_wrong_length_is_refused() {
        assert_eq!(
            Sealer::from_slice(&[1; 31]).err(),
            Some(DialectError::KeyLength(31))
        );
        assert!(Sealer::from_slice(&[1; 32]).is_ok());
    }

    proptest! {
        #[test]
        fn every_single_character_flip_is_detected(pos in 0usize..200, replacement in "[A-Za-z0-9_-]") {
            let s = sealer();
            let token = s.seal("acct", b"some reasoning text").unwrap();
            let pos = TOKEN_PREFIX.len() + pos % (token.len() - TOKEN_PREFIX.len());
            let mut bytes = token.clone().into_bytes();
            let r = replacement.as_bytes()[0];
            prop_assume!(bytes[pos] != r);
            bytes[pos] = r;
            let tampered = String::from_utf8(bytes).unwrap();
            prop_assert!(s.open("acct", &tampered).is_err());
        }

        #[test]
        fn open_never_panics(token in ".{0,300}") {
            let _ = sealer().open("acct", &token);
            let _ = sealer().open("acct", &format!("{TOKEN_PREFIX}{token}"));
        }
    }
}

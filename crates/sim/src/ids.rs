//! Identifiers that look like a provider's: `acct_…`, `req_…`, `key_…`, `pf_…`.
//!
//! Every identifier is a hash of the seed and the thing it names, written in lowercase
//! Crockford base32. Identifiers are therefore stable for a seed, unrelated across seeds, and
//! carry no trace of the population an account belongs to (no sequential numbering by class),
//! so a detector cannot read the label off an id. Not for anything secret.

use crate::rng::{hash, Stream};

/// Crockford's base32 alphabet in lowercase (no i, l, o, u).
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// Appends the low `5 * chars` bits of `v` as base32 (at most 12 characters per word).
fn push_base32(out: &mut String, mut v: u64, chars: usize) {
    for _ in 0..chars.min(12) {
        out.push(char::from(ALPHABET[(v & 31) as usize]));
        v >>= 5;
    }
}

/// `acct_` and 10 base32 characters; `salt` is bumped by the caller on the rare collision.
pub(crate) fn account_id(seed: u64, index: u64, salt: u64) -> String {
    let mut s = String::with_capacity(15);
    s.push_str("acct_");
    push_base32(
        &mut s,
        hash(&[seed, Stream::AccountId as u64, index, salt]),
        10,
    );
    s
}

/// `req_` and 20 base32 characters (100 bits: unique across any realistic run).
pub(crate) fn request_id(seed: u64, account: u64, counter: u64) -> String {
    let mut s = String::with_capacity(24);
    s.push_str("req_");
    push_base32(
        &mut s,
        hash(&[seed, Stream::RequestId as u64, account, counter]),
        10,
    );
    push_base32(
        &mut s,
        hash(&[seed, Stream::RequestId as u64, counter, account]),
        10,
    );
    s
}

/// `key_` and 8 base32 characters: the `k`-th API key of an account.
pub(crate) fn key_id(seed: u64, account: u64, k: u64) -> String {
    let mut s = String::with_capacity(12);
    s.push_str("key_");
    push_base32(&mut s, hash(&[seed, Stream::KeyId as u64, account, k]), 8);
    s
}

/// `pf_` and 10 base32 characters: a payment method, named by an owner scope (an account, an
/// enterprise, a campaign cluster) and a number within it.
pub(crate) fn payment_fingerprint(seed: u64, scope: u64, k: u64) -> String {
    let mut s = String::with_capacity(13);
    s.push_str("pf_");
    push_base32(&mut s, hash(&[seed, Stream::Payment as u64, scope, k]), 10);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_are_stable() {
        let a = account_id(1, 2, 0);
        assert_eq!(a.len(), 15);
        assert!(a.starts_with("acct_"));
        assert_eq!(a, account_id(1, 2, 0));
        assert_ne!(a, account_id(1, 3, 0));
        assert_ne!(a, account_id(2, 2, 0));
        assert_eq!(request_id(1, 2, 3).len(), 24);
        assert_eq!(key_id(1, 2, 3).len(), 12);
        assert_eq!(payment_fingerprint(1, 2, 3).len(), 13);
        assert!(a[5..].bytes().all(|b| ALPHABET.contains(&b)));
    }
}

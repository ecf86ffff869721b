//! Stable 64-bit hashing for fingerprints (FNV-1a).
//!
//! Fingerprints appear in evidence and must be the same on every machine and Rust version, so
//! they cannot use `std`'s `DefaultHasher`, whose algorithm is unspecified. FNV-1a is tiny,
//! fast on short strings and stable by definition. Not for hash tables fed by attackers (the
//! engine's maps key on these values only after they are computed from bounded input).

/// FNV-1a offset basis.
const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
/// FNV-1a prime.
const PRIME: u64 = 0x0000_0100_0000_01b3;

/// Incremental FNV-1a hasher.
#[derive(Debug, Clone, Copy)]
pub struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(OFFSET)
    }
}

impl Fnv {
    /// Starts a hash domain-separated by `tag`, so equal strings of different kinds differ.
    pub fn tagged(tag: u8) -> Self {
        let mut h = Fnv::default();
        h.byte(tag);
        h
    }

    /// Adds one byte.
    pub fn byte(&mut self, b: u8) {
        self.0 ^= u64::from(b);
        self.0 = self.0.wrapping_mul(PRIME);
    }

    /// Adds bytes.
    pub fn bytes(&mut self, bs: &[u8]) {
        for &b in bs {
            self.byte(b);
        }
    }

    /// The hash value.
    pub fn finish(self) -> u64 {
        self.0
    }
}

/// Streaming hash that mixes eight bytes at a time (a quarter of a multiplication per byte
/// where FNV needs one), for fingerprints of normalised text. Stable like [`Fnv`].
#[derive(Debug, Clone, Copy)]
pub struct WordHasher {
    state: u64,
    word: u64,
    filled: u32,
    len: u64,
}

impl WordHasher {
    /// Starts a hash domain-separated by `tag`.
    pub fn tagged(tag: u8) -> Self {
        WordHasher {
            state: mix(OFFSET ^ u64::from(tag)),
            word: 0,
            filled: 0,
            len: 0,
        }
    }

    /// Adds one byte.
    #[inline]
    pub fn byte(&mut self, b: u8) {
        self.word |= u64::from(b) << (8 * self.filled);
        self.filled += 1;
        self.len += 1;
        if self.filled == 8 {
            self.state = mix(self.state ^ self.word).wrapping_add(self.word);
            self.word = 0;
            self.filled = 0;
        }
    }

    /// Adds bytes: the same as adding them one by one, whole words at a time where it can.
    pub fn bytes(&mut self, bs: &[u8]) {
        let mut rest = bs;
        while self.filled != 0 {
            let Some((&b, tail)) = rest.split_first() else {
                return;
            };
            self.byte(b);
            rest = tail;
        }
        let mut words = rest.chunks_exact(8);
        for chunk in &mut words {
            let mut w = [0u8; 8];
            w.copy_from_slice(chunk);
            let word = u64::from_le_bytes(w);
            self.state = mix(self.state ^ word).wrapping_add(word);
            self.len += 8;
        }
        for &b in words.remainder() {
            self.byte(b);
        }
    }

    /// The hash value (the length is mixed in, so trailing zero bytes count).
    pub fn finish(self) -> u64 {
        mix(self.state ^ self.word ^ self.len.rotate_left(56))
    }
}

/// A bijective 64-bit mixer (the SplitMix64 finaliser), for deterministic pseudo-random
/// orders.
pub fn mix(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A deterministic stream of numbers below its argument, for randomized tests.
#[cfg(test)]
pub(crate) fn xorshift(mut x: u64) -> impl FnMut(u64) -> u64 {
    move |m| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % m
    }
}

/// Hash of `text` in domain `tag`.
pub fn hash_str(tag: u8, text: &str) -> u64 {
    let mut h = Fnv::tagged(tag);
    h.bytes(text.as_bytes());
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_hasher_is_stable_and_sensitive_to_every_byte() {
        let h = |s: &[u8]| {
            let mut w = WordHasher::tagged(b'T');
            w.bytes(s);
            w.finish()
        };
        assert_eq!(
            h(b"let us think step by step"),
            h(b"let us think step by step")
        );
        assert_ne!(
            h(b"let us think step by step"),
            h(b"let us think step by stop")
        );
        assert_ne!(h(b"abc"), h(b"abc\0"));
        assert_ne!(h(b""), h(b"\0"));
        let mut other = WordHasher::tagged(b'S');
        other.bytes(b"abc");
        assert_ne!(other.finish(), h(b"abc"));
    }

    #[test]
    fn word_hasher_bytes_equal_byte_by_byte_at_any_split() {
        let data: Vec<u8> = (0..61u8).map(|i| i.wrapping_mul(37) ^ 0x5a).collect();
        let mut one = WordHasher::tagged(b'T');
        for &b in &data {
            one.byte(b);
        }
        for split in 0..data.len() {
            let mut two = WordHasher::tagged(b'T');
            two.bytes(&data[..split]);
            two.bytes(&data[split..]);
            assert_eq!(two.finish(), one.finish(), "split at {split}");
        }
    }

    #[test]
    fn matches_reference_vectors() {
        // Reference values of 64-bit FNV-1a.
        let mut h = Fnv::default();
        h.bytes(b"a");
        assert_eq!(h.finish(), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(Fnv::default().finish(), OFFSET);
    }

    #[test]
    fn tags_separate_domains() {
        assert_ne!(hash_str(1, "x"), hash_str(2, "x"));
    }
}

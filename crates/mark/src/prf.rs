//! The keyed pseudo-random function over (key, previous `h` tokens, token) that every scheme
//! uses (SCHEME.md, "The pseudo-random function").

use crate::{Error, Key};

/// The golden-ratio increment of SplitMix64.
const G: u64 = 0x9e37_79b9_7f4a_7c15;

/// The SplitMix64 finaliser: a bijection on u64 with full avalanche.
#[inline]
pub fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The double strictly inside (0, 1) that a PRF value stands for: `((v >> 12) + 0.5) · 2⁻⁵²`,
/// exact in binary floating point (53 significant bits at most).
#[inline]
pub fn uniform(v: u64) -> f64 {
    ((v >> 12) as f64 + 0.5) * (1.0 / (1u64 << 52) as f64)
}

/// How the window of previous tokens seeds a position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The ordered window is hashed (KGW's LeftHash when `h = 1`; `h = 0` is one fixed list).
    Ordered,
    /// Anchored min-hash over the window and the candidate itself (KGW's SelfHash): robust to
    /// edits of window tokens that do not hold the minimum.
    SelfHash,
}

impl Mode {
    /// The name used in files and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Ordered => "ordered",
            Mode::SelfHash => "selfhash",
        }
    }

    /// Parses `ordered` or `selfhash`.
    pub fn parse(text: &str) -> Result<Mode, Error> {
        match text {
            "ordered" => Ok(Mode::Ordered),
            "selfhash" => Ok(Mode::SelfHash),
            other => Err(Error::InvalidParameter {
                name: "mode",
                reason: format!("{other:?} is not ordered or selfhash"),
            }),
        }
    }
}

/// The context a position is seeded with: how many previous tokens, and how they combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Context {
    width: usize,
    mode: Mode,
}

impl Context {
    /// The widest window accepted: wider windows are less robust and never learned by
    /// students, so a larger value is a configuration mistake.
    pub const MAX_WIDTH: usize = 16;

    /// A context of `width` previous tokens combined by `mode`.
    pub fn new(width: usize, mode: Mode) -> Result<Context, Error> {
        if width > Context::MAX_WIDTH {
            return Err(Error::InvalidParameter {
                name: "h",
                reason: format!("{width} is above the maximum of {}", Context::MAX_WIDTH),
            });
        }
        if mode == Mode::SelfHash && width == 0 {
            return Err(Error::InvalidParameter {
                name: "h",
                reason: "selfhash needs at least one previous token".into(),
            });
        }
        Ok(Context { width, mode })
    }

    /// Number of previous tokens, `h`.
    pub fn width(self) -> usize {
        self.width
    }

    /// How they are combined.
    pub fn mode(self) -> Mode {
        self.mode
    }
}

/// The PRF of one key under one context rule.
#[derive(Debug, Clone)]
pub struct Prf {
    k0: u64,
    k1: u64,
    context: Context,
}

/// The seed of a position once its window is known. For [`Mode::SelfHash`] the candidate
/// token still enters, so the seed is kept as its parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seed {
    /// One seed for every candidate.
    Fixed(u64),
    /// `anchor` is `mix(ctx(x[i-1]) ^ k1)`, `min` the minimum of `ctx` over the window.
    SelfHash {
        /// The keyed hash of the most recent window token.
        anchor: u64,
        /// Minimum of `ctx` over the window.
        min: u64,
    },
}

impl Prf {
    /// The PRF of `key` with windows of `context`.
    pub fn new(key: &Key, context: Context) -> Prf {
        let (k0, k1) = key.prf_words();
        Prf { k0, k1, context }
    }

    /// The context rule.
    pub fn context(&self) -> Context {
        self.context
    }

    /// `tok(t)`: a token's own hash.
    #[inline]
    pub fn tok(&self, t: u32) -> u64 {
        mix(self.k1 ^ u64::from(t).wrapping_add(G))
    }

    /// `ctx(c)`: a context token's contribution.
    #[inline]
    pub fn ctx(&self, c: u32) -> u64 {
        mix(self.k0 ^ u64::from(c).wrapping_mul(G))
    }

    /// The seed of a position whose window (exactly `h` tokens, oldest first) is `window`.
    pub fn seed(&self, window: &[u32]) -> Seed {
        match self.context.mode {
            Mode::Ordered => Seed::Fixed(window.iter().fold(self.k0, |s, &c| mix(s ^ self.ctx(c)))),
            Mode::SelfHash => {
                let min = window
                    .iter()
                    .map(|&c| self.ctx(c))
                    .min()
                    .unwrap_or(u64::MAX);
                // The anchor goes through one more keyed mix so it cannot cancel against the
                // minimum when it holds the minimum itself.
                let anchor = window.last().map_or(0, |&c| mix(self.ctx(c) ^ self.k1));
                Seed::SelfHash { anchor, min }
            }
        }
    }

    /// The PRF value of candidate `t` under `seed`.
    #[inline]
    pub fn value_at(&self, seed: Seed, t: u32) -> u64 {
        let s = match seed {
            Seed::Fixed(s) => s,
            Seed::SelfHash { anchor, min } => mix(anchor ^ min.min(self.ctx(t))),
        };
        mix(s ^ self.tok(t))
    }

    /// What the value of `t` after `window` is a function of, besides the key: the window and
    /// `t` for [`Mode::Ordered`]; the anchor token, the minimum of `ctx` over the window and
    /// `t`, and `t` for [`Mode::SelfHash`]. Two tuples with the same identity have the same
    /// value, so a test counts each identity once.
    pub fn identity(&self, window: &[u32], t: u32) -> Vec<u64> {
        match self.context.mode {
            Mode::Ordered => window
                .iter()
                .chain(std::iter::once(&t))
                .map(|&c| u64::from(c))
                .collect(),
            Mode::SelfHash => {
                let min = window
                    .iter()
                    .map(|&c| self.ctx(c))
                    .fold(self.ctx(t), u64::min);
                let anchor = window.last().map_or(0, |&c| u64::from(c));
                vec![anchor, min, u64::from(t)]
            }
        }
    }

    /// The PRF value of candidate `t` after `window`.
    pub fn value(&self, window: &[u32], t: u32) -> u64 {
        self.value_at(self.seed(window), t)
    }

    /// The window of position `i` in `tokens`, if a full one precedes it.
    pub fn window_of<'a>(&self, tokens: &'a [u32], i: usize) -> Option<&'a [u32]> {
        let h = self.context.width;
        (i >= h && i <= tokens.len()).then(|| &tokens[i - h..i])
    }

    /// Uniforms of every candidate `0..out.len()` after `window`, into `out`.
    pub fn uniforms(&self, window: &[u32], out: &mut [f64]) {
        let seed = self.seed(window);
        for (t, u) in (0u32..).zip(out.iter_mut()) {
            *u = uniform(self.value_at(seed, t));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prf(h: usize, mode: Mode) -> Prf {
        let context = Context::new(h, mode).expect("valid context");
        Prf::new(&Key::from_bytes([3u8; 32]), context)
    }

    #[test]
    fn mix_is_splitmix64() {
        // SplitMix64 from state 0: the first output is mix(0 + G).
        assert_eq!(mix(G), 0xe220_a839_7b1d_cdaf);
        assert_eq!(mix(0), 0);
    }

    #[test]
    fn uniform_stays_inside_the_open_interval() {
        assert!(uniform(0) > 0.0);
        assert!(uniform(u64::MAX) < 1.0);
        assert_eq!(uniform(0), 0.5 / (1u64 << 52) as f64);
        assert_eq!(uniform(u64::MAX), 1.0 - 0.5 / (1u64 << 52) as f64);
    }

    #[test]
    fn context_validation() {
        assert!(Context::new(0, Mode::SelfHash).is_err());
        assert!(Context::new(17, Mode::Ordered).is_err());
        assert!(Context::new(0, Mode::Ordered).is_ok());
        assert_eq!(Mode::parse("selfhash"), Ok(Mode::SelfHash));
        assert!(Mode::parse("minhash").is_err());
    }

    #[test]
    fn ordered_depends_on_order_and_key() {
        let p = prf(2, Mode::Ordered);
        assert_ne!(p.value(&[1, 2], 5), p.value(&[2, 1], 5));
        let other = Prf::new(&Key::from_bytes([4u8; 32]), p.context());
        assert_ne!(p.value(&[1, 2], 5), other.value(&[1, 2], 5));
        // h = 0: one seed for every position.
        let p0 = prf(0, Mode::Ordered);
        assert_eq!(p0.seed(&[]), Seed::Fixed(p0.k0));
    }

    #[test]
    fn selfhash_ignores_non_minimal_window_tokens() {
        let p = prf(3, Mode::SelfHash);
        // Find a window where the middle token does not hold the minimum, then change it to
        // another non-minimal token: the value must not move.
        let (a, t) = (10u32, 99u32);
        let floor = p.ctx(a).min(p.ctx(t));
        let mut high = (100u32..).filter(|&c| p.ctx(c) > floor);
        let (b1, b2) = (high.next(), high.next());
        let (Some(b1), Some(b2)) = (b1, b2) else {
            unreachable!("ctx values above a floor exist")
        };
        assert_eq!(p.value(&[b1, a, a], t), p.value(&[b2, a, a], t));
        // The anchor (last token) always matters.
        assert_ne!(p.value(&[a, a, b1], t), p.value(&[a, a, b2], t));
    }

    /// When the anchor holds the minimum, values still vary with the anchor (a seed of
    /// `mix(ctx ^ ctx) = 0` would give every such context the same uniforms).
    #[test]
    fn selfhash_anchor_holding_the_minimum_still_seeds() {
        let p = prf(1, Mode::SelfHash);
        let t = 5u32;
        let anchors: Vec<u32> = (0u32..2000)
            .filter(|&a| p.ctx(a) < p.ctx(t))
            .take(20)
            .collect();
        assert!(anchors.len() == 20);
        let mut values: Vec<u64> = anchors.iter().map(|&a| p.value(&[a], t)).collect();
        values.sort_unstable();
        values.dedup();
        assert_eq!(values.len(), 20);
        // Identities: equal exactly when the value must be equal.
        let (a, b) = (anchors[0], anchors[1]);
        assert_ne!(p.identity(&[a], t), p.identity(&[b], t));
        let p3 = prf(3, Mode::SelfHash);
        let floor = p3.ctx(a).min(p3.ctx(t));
        let mut high = (3000u32..).filter(|&c| p3.ctx(c) > floor);
        let (Some(x), Some(y)) = (high.next(), high.next()) else {
            unreachable!("ctx values above a floor exist")
        };
        assert_eq!(p3.identity(&[x, a, a], t), p3.identity(&[y, a, a], t));
        assert_eq!(p3.value(&[x, a, a], t), p3.value(&[y, a, a], t));
    }

    #[test]
    fn uniforms_match_single_values() {
        for mode in [Mode::Ordered, Mode::SelfHash] {
            let p = prf(2, mode);
            let mut out = vec![0.0; 64];
            p.uniforms(&[7, 8], &mut out);
            for (t, u) in (0u32..).zip(&out) {
                assert_eq!(*u, uniform(p.value(&[7, 8], t)));
            }
        }
    }

    #[test]
    fn windows() {
        let p = prf(2, Mode::Ordered);
        let tokens = [1, 2, 3, 4];
        assert_eq!(p.window_of(&tokens, 1), None);
        assert_eq!(p.window_of(&tokens, 2), Some(&tokens[0..2]));
        assert_eq!(p.window_of(&tokens, 4), Some(&tokens[2..4]));
    }
}

//! Detection: scores (window, token) tuples of texts under one key and turns the total into an
//! exact p-value (SCHEME.md, "Scoring rules").

use rustc_hash::FxHashSet;

use crate::prf::{uniform, Prf};
use crate::stats::{ln_binomial_sf, ln_gamma_sf, log10};
use crate::Error;

/// The statistic a test accumulates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Statistic {
    /// Count of green tokens (KGW), tested against Binomial(n, gamma).
    Green {
        /// The scheme's green fraction.
        gamma: f64,
    },
    /// Sum of `−ln(1 − u)` (Gumbel-max), tested against Gamma(n, 1).
    Gumbel,
}

/// A tuple's identity under the key ([`Prf::identity`]): tuples with one identity share
/// their value, so each identity counts once.
type Tuple = Box<[u64]>;

/// One test of texts against one key. Feed it prompts to exclude, optionally a pre-registered
/// filter, then texts (or single predictions); read the [`Score`].
#[derive(Debug, Clone)]
pub struct Scorer {
    prf: Prf,
    statistic: Statistic,
    seen: FxHashSet<Tuple>,
    excluded: FxHashSet<Tuple>,
    filter: Option<FxHashSet<Box<[u32]>>>,
    tally: Tally,
}

/// Running counts of a test.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Tally {
    scored: u64,
    green: u64,
    sum: f64,
    duplicates: u64,
    in_prompts: u64,
    filtered_out: u64,
}

/// The outcome of a test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score {
    /// Tuples scored.
    pub scored: u64,
    /// Green tuples (KGW only).
    pub green: Option<u64>,
    /// Sum of `−ln(1 − u)` (Gumbel only).
    pub sum: Option<f64>,
    /// log10 of the exact p-value under the null hypothesis (text independent of the key).
    pub log10_p: f64,
    /// Tuples skipped because they were already scored.
    pub duplicates: u64,
    /// Tuples skipped because they occur in our prompts.
    pub in_prompts: u64,
    /// Tuples skipped by the pre-registered filter.
    pub filtered_out: u64,
}

impl Scorer {
    /// A test of `statistic` under `prf`.
    pub fn new(prf: Prf, statistic: Statistic) -> Result<Scorer, Error> {
        if let Statistic::Green { gamma } = statistic {
            if !(gamma > 0.0 && gamma < 1.0) {
                return Err(Error::InvalidParameter {
                    name: "gamma",
                    reason: format!("{gamma} is not strictly between 0 and 1"),
                });
            }
        }
        Ok(Scorer {
            prf,
            statistic,
            seen: FxHashSet::default(),
            excluded: FxHashSet::default(),
            filter: None,
            tally: Tally::default(),
        })
    }

    /// The PRF under test.
    pub fn prf(&self) -> &Prf {
        &self.prf
    }

    /// Every tuple of `tokens` (each position with a full window).
    fn tuples(&self, tokens: &[u32]) -> Vec<Tuple> {
        let h = self.prf.context().width();
        (h..tokens.len())
            .map(|i| self.prf.identity(&tokens[i - h..i], tokens[i]).into())
            .collect()
    }

    /// Excludes the tuples of one of our prompts from scoring.
    pub fn exclude_prompt(&mut self, tokens: &[u32]) {
        let tuples = self.tuples(tokens);
        self.excluded.extend(tuples);
    }

    /// Adds the windows of `tokens` (every run of `h` tokens followed by a token) to the
    /// pre-registered filter; once any text was registered, only positions whose window is in
    /// the filter are scored. The filter holds windows, never the token after them: selecting
    /// on the token of a watermarked text would select green tokens and bias the test.
    pub fn register_filter(&mut self, tokens: &[u32]) {
        let h = self.prf.context().width();
        let windows: Vec<Box<[u32]>> = (h..tokens.len()).map(|i| tokens[i - h..i].into()).collect();
        self.filter
            .get_or_insert_with(FxHashSet::default)
            .extend(windows);
    }

    /// Adds one window (exactly `h` tokens) to the pre-registered filter.
    pub fn register_window(&mut self, window: &[u32]) {
        if window.len() == self.prf.context().width() {
            self.filter
                .get_or_insert_with(FxHashSet::default)
                .insert(window.into());
        }
    }

    /// Scores every position of a text.
    pub fn score_text(&mut self, tokens: &[u32]) {
        let h = self.prf.context().width();
        for i in h..tokens.len() {
            self.score_tuple(&tokens[i - h..i], tokens[i]);
        }
    }

    /// Scores one token `t` after `window` (exactly `h` tokens): one position of a text, or
    /// in the open-model setting the suspect model's prediction after a window of our text.
    /// Returns whether it counted.
    pub fn score_tuple(&mut self, window: &[u32], t: u32) -> bool {
        if window.len() != self.prf.context().width() {
            return false;
        }
        let tuple: Tuple = self.prf.identity(window, t).into();
        if self.excluded.contains(&tuple) {
            self.tally.in_prompts += 1;
            return false;
        }
        if self.filter.as_ref().is_some_and(|f| !f.contains(window)) {
            self.tally.filtered_out += 1;
            return false;
        }
        if !self.seen.insert(tuple) {
            self.tally.duplicates += 1;
            return false;
        }
        let u = uniform(self.prf.value(window, t));
        self.tally.scored += 1;
        match self.statistic {
            Statistic::Green { gamma } => self.tally.green += u64::from(u < gamma),
            Statistic::Gumbel => self.tally.sum += -(-u).ln_1p(),
        }
        true
    }

    /// Tuples scored so far.
    pub fn scored(&self) -> u64 {
        self.tally.scored
    }

    /// The test's outcome; an error when nothing was scored.
    pub fn score(&self) -> Result<Score, Error> {
        let t = self.tally;
        if t.scored == 0 {
            return Err(Error::NothingToScore(format!(
                "no token had a full window of {} previous tokens that was new, outside our \
                 prompts and inside the filter ({} duplicates, {} in prompts, {} filtered out)",
                self.prf.context().width(),
                t.duplicates,
                t.in_prompts,
                t.filtered_out
            )));
        }
        let (green, sum, ln_p) = match self.statistic {
            Statistic::Green { gamma } => (
                Some(t.green),
                None,
                ln_binomial_sf(t.green, t.scored, gamma),
            ),
            Statistic::Gumbel => (None, Some(t.sum), ln_gamma_sf(t.scored, t.sum)),
        };
        Ok(Score {
            scored: t.scored,
            green,
            sum,
            log10_p: log10(ln_p),
            duplicates: t.duplicates,
            in_prompts: t.in_prompts,
            filtered_out: t.filtered_out,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prf::{Context, Mode};
    use crate::scheme::Kgw;
    use crate::Key;

    fn prf(key: u8, h: usize) -> Prf {
        Prf::new(
            &Key::from_bytes([key; 32]),
            Context::new(h, Mode::Ordered).expect("context"),
        )
    }

    #[test]
    fn duplicates_prompts_and_filter_are_skipped() {
        let mut s = Scorer::new(prf(1, 1), Statistic::Green { gamma: 0.25 }).expect("scorer");
        s.exclude_prompt(&[5, 6, 7]);
        // Tuples: (1,2) (2,1) (1,2)dup (2,5) (5,6)prompt.
        s.score_text(&[1, 2, 1, 2, 5, 6]);
        let score = s.score().expect("scored");
        assert_eq!(score.scored, 3);
        assert_eq!(score.duplicates, 1);
        assert_eq!(score.in_prompts, 1);
        // Across texts too.
        s.score_text(&[2, 1]);
        assert_eq!(s.score().expect("scored").duplicates, 2);

        // The filter holds windows: (8) and (9) from the served text [8, 9, 7].
        let mut f = Scorer::new(prf(1, 1), Statistic::Gumbel).expect("scorer");
        f.register_filter(&[8, 9, 7]);
        f.score_text(&[8, 3, 9, 10, 4, 8]);
        // Tuples (8,3) in, (3,9) out, (9,10) in, (10,4) out, (4,8) out.
        let score = f.score().expect("scored");
        assert_eq!((score.scored, score.filtered_out), (2, 3));
    }

    proptest::proptest! {
        /// Any texts, any context: every position is accounted for exactly once, and the
        /// p-value is a probability.
        #[test]
        fn every_position_is_accounted_for(
            texts in proptest::collection::vec(proptest::collection::vec(0u32..40, 0..60), 1..5),
            prompt in proptest::collection::vec(0u32..40, 0..30),
            h in 0usize..4,
            selfhash in proptest::bool::ANY,
            gumbel in proptest::bool::ANY,
        ) {
            let mode = if selfhash && h > 0 { Mode::SelfHash } else { Mode::Ordered };
            let prf = Prf::new(&Key::from_bytes([9; 32]), Context::new(h, mode).expect("context"));
            let statistic = if gumbel { Statistic::Gumbel } else { Statistic::Green { gamma: 0.3 } };
            let mut s = Scorer::new(prf, statistic).expect("scorer");
            s.exclude_prompt(&prompt);
            for t in &texts {
                s.score_text(t);
            }
            let positions: u64 = texts.iter().map(|t| t.len().saturating_sub(h) as u64).sum();
            match s.score() {
                Ok(score) => {
                    proptest::prop_assert_eq!(
                        score.scored + score.duplicates + score.in_prompts + score.filtered_out,
                        positions
                    );
                    proptest::prop_assert!(score.log10_p <= 0.0 && !score.log10_p.is_nan());
                }
                Err(_) => proptest::prop_assert_eq!(s.scored(), 0),
            }
        }
    }

    /// A clean text scored only where its windows occur in a watermarked text stays
    /// calibrated: the filter selects on windows, not on the (green) tokens after them.
    #[test]
    fn the_window_filter_does_not_bias_clean_text() {
        let key = Key::from_bytes([7; 32]);
        let kgw = Kgw::new(prf(7, 1), 0.25, 8.0).expect("kgw");
        // Watermarked "served" text over a 50-token vocabulary: nearly every tuple is green.
        let mut served = vec![0u32];
        for i in 0..3000u32 {
            let mut logits = vec![0.0f32; 50];
            kgw.bias(&served, &mut logits);
            let greens: Vec<u32> = (0u32..)
                .zip(&logits)
                .filter(|(_, &l)| l > 0.0)
                .map(|(t, _)| t)
                .collect();
            served.push(greens[(i as usize * 31 + 7) % greens.len()]);
        }
        // A clean text that walks the same vocabulary without the key.
        let clean: Vec<u32> = (0u64..3000)
            .map(|i| (crate::prf::mix(i + 1) % 50) as u32)
            .collect();
        let mut s = Scorer::new(
            Prf::new(&key, Context::new(1, Mode::Ordered).expect("c")),
            Statistic::Green { gamma: 0.25 },
        )
        .expect("s");
        s.register_filter(&served);
        s.score_text(&clean);
        let score = s.score().expect("scored");
        assert!(score.scored > 1000, "{score:?}");
        assert!(score.log10_p > -4.0, "{score:?}");
        // The same clean text restricted to the served *tuples* would be badly biased: check
        // the served text itself is green, so a tuple filter would have selected green tokens.
        let mut own = Scorer::new(
            Prf::new(&key, Context::new(1, Mode::Ordered).expect("c")),
            Statistic::Green { gamma: 0.25 },
        )
        .expect("s");
        own.score_text(&served);
        assert!(own.score().expect("scored").log10_p < -50.0);
    }

    #[test]
    fn nothing_to_score_is_an_error() {
        let mut s = Scorer::new(prf(1, 4), Statistic::Gumbel).expect("scorer");
        s.score_text(&[1, 2, 3]);
        let err = s.score().expect_err("too short");
        assert!(err.to_string().contains("4 previous tokens"), "{err}");
        assert!(Scorer::new(prf(1, 1), Statistic::Green { gamma: 1.5 }).is_err());
    }

    /// Text drawn from a KGW-biased uniform model scores very low under its key and not under
    /// another key.
    #[test]
    fn watermarked_text_is_detected_under_its_key_only() {
        let kgw = Kgw::new(prf(7, 1), 0.25, 4.0).expect("kgw");
        let mut text = vec![0u32];
        let mut rng = 0x1234_5678_u64;
        for _ in 0..400 {
            let mut logits = vec![0.0f32; 1000];
            kgw.bias(&text, &mut logits);
            // Sample by inverse CDF with a local SplitMix64 stream.
            rng = rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let r = uniform(crate::prf::mix(rng));
            let weights: Vec<f64> = logits.iter().map(|&l| f64::from(l).exp()).collect();
            let total: f64 = weights.iter().sum();
            let mut acc = 0.0;
            let mut pick = 999;
            for (t, w) in weights.iter().enumerate() {
                acc += w / total;
                if r < acc {
                    pick = t;
                    break;
                }
            }
            text.push(pick as u32);
        }
        let mut own = Scorer::new(prf(7, 1), Statistic::Green { gamma: 0.25 }).expect("s");
        own.score_text(&text);
        let own = own.score().expect("scored");
        assert!(own.log10_p < -30.0, "{own:?}");
        let mut other = Scorer::new(prf(8, 1), Statistic::Green { gamma: 0.25 }).expect("s");
        other.score_text(&text);
        let other = other.score().expect("scored");
        assert!(other.log10_p > -3.0, "{other:?}");
    }
}

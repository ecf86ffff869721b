//! Attribution: which campaign's key, if any, a suspect's text carries. Every candidate key
//! is tested on the same material, the p-values are corrected for testing several keys
//! (Holm), and the whole procedure is calibrated on control keys that were never served: a
//! sound test finds them no more often than its level.

use crate::prf::{Context, Prf};
use crate::score::{Score, Scorer, Statistic};
use crate::stats::holm_log10;
use crate::{Error, Key, KeyId};

/// A key that was served to someone (a campaign, a cohort).
#[derive(Debug, Clone)]
pub struct Candidate {
    /// What it was served to, e.g. `campaign:c-42`.
    pub label: String,
    /// The key.
    pub key: Key,
}

/// One candidate's result.
#[derive(Debug, Clone)]
pub struct CandidateResult {
    /// The candidate's label.
    pub label: String,
    /// Its key's id.
    pub key_id: KeyId,
    /// The raw test.
    pub score: Score,
    /// log10 of the Holm-corrected p-value over all candidates.
    pub holm_log10_p: f64,
    /// Share of control keys whose p-value is at most this candidate's (with the usual +1
    /// correction): an empirical p-value that does not rely on the null model.
    pub empirical_p: f64,
    /// Whether the corrected p-value is below the level.
    pub attributed: bool,
}

/// The outcome of an attribution.
#[derive(Debug, Clone)]
pub struct Attribution {
    /// The level the corrected p-values are compared with.
    pub alpha: f64,
    /// Every candidate, in the order given.
    pub candidates: Vec<CandidateResult>,
    /// log10 p of every control key, in the order given.
    pub control_log10_p: Vec<f64>,
    /// Control keys with an uncorrected p-value below `alpha`: about `alpha` times their
    /// number for a calibrated test.
    pub controls_below_alpha: usize,
}

impl Attribution {
    /// Labels of the candidates attributed.
    pub fn attributed(&self) -> Vec<&str> {
        self.candidates
            .iter()
            .filter(|c| c.attributed)
            .map(|c| c.label.as_str())
            .collect()
    }
}

/// Tests every candidate and every control key with `statistic` under `context`, feeding each
/// fresh [`Scorer`] through `feed` (texts, prompts to exclude, filter), and attributes at
/// level `alpha` after Holm's correction.
pub fn attribute(
    candidates: &[Candidate],
    controls: &[Key],
    context: Context,
    statistic: Statistic,
    alpha: f64,
    feed: impl Fn(&mut Scorer),
) -> Result<Attribution, Error> {
    if candidates.is_empty() {
        return Err(Error::InvalidParameter {
            name: "candidates",
            reason: "no candidate key to test".into(),
        });
    }
    if !(alpha > 0.0 && alpha < 1.0) {
        return Err(Error::InvalidParameter {
            name: "alpha",
            reason: format!("{alpha} is not strictly between 0 and 1"),
        });
    }
    let run = |key: &Key| -> Result<Score, Error> {
        let mut scorer = Scorer::new(Prf::new(key, context), statistic)?;
        feed(&mut scorer);
        scorer.score()
    };
    let scores = candidates
        .iter()
        .map(|c| run(&c.key))
        .collect::<Result<Vec<_>, _>>()?;
    let control_log10_p = controls
        .iter()
        .map(|k| run(k).map(|s| s.log10_p))
        .collect::<Result<Vec<_>, _>>()?;
    let raw: Vec<f64> = scores.iter().map(|s| s.log10_p).collect();
    let holm = holm_log10(&raw);
    let level = alpha.log10();
    let m = control_log10_p.len() as f64;
    let results = candidates
        .iter()
        .zip(scores)
        .zip(holm)
        .map(|((c, score), holm_log10_p)| {
            let as_low = control_log10_p
                .iter()
                .filter(|&&p| p <= score.log10_p)
                .count() as f64;
            CandidateResult {
                label: c.label.clone(),
                key_id: c.key.id(),
                score,
                holm_log10_p,
                empirical_p: (as_low + 1.0) / (m + 1.0),
                attributed: holm_log10_p < level,
            }
        })
        .collect();
    Ok(Attribution {
        alpha,
        candidates: results,
        controls_below_alpha: control_log10_p.iter().filter(|&&p| p < level).count(),
        control_log10_p,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prf::Mode;
    use crate::scheme::Kgw;

    fn context() -> Context {
        Context::new(1, Mode::Ordered).expect("context")
    }

    /// Greedy text from a flat model under KGW: every token is green.
    fn green_text(key: &Key, len: usize) -> Vec<u32> {
        let kgw = Kgw::new(Prf::new(key, context()), 0.25, 5.0).expect("kgw");
        let mut text = vec![1u32];
        for _ in 0..len {
            let mut logits = vec![0.0f32; 500];
            kgw.bias(&text, &mut logits);
            let last = text.last().copied().unwrap_or(0);
            // Deterministic choice among green tokens that varies with the context.
            let greens: Vec<u32> = (0u32..)
                .zip(&logits)
                .filter(|(_, &l)| l > 0.0)
                .map(|(t, _)| t)
                .collect();
            text.push(greens[(last as usize * 7 + text.len()) % greens.len()]);
        }
        text
    }

    #[test]
    fn attributes_to_the_served_key_only() {
        let master = Key::from_bytes([11u8; 32]);
        let candidates: Vec<Candidate> = ["a", "b", "c"]
            .iter()
            .map(|l| Candidate {
                label: format!("campaign:{l}"),
                key: master.derive(&format!("campaign:{l}")),
            })
            .collect();
        let controls: Vec<Key> = (0..50)
            .map(|i| master.derive(&format!("control:{i}")))
            .collect();
        let text = green_text(&candidates[1].key, 200);
        let result = attribute(
            &candidates,
            &controls,
            context(),
            Statistic::Green { gamma: 0.25 },
            1e-3,
            |s| s.score_text(&text),
        )
        .expect("attribution");
        assert_eq!(result.attributed(), vec!["campaign:b"]);
        assert!(result.candidates[1].holm_log10_p < -10.0);
        assert_eq!(result.candidates[1].empirical_p, 1.0 / 51.0);
        assert!(
            result.controls_below_alpha <= 1,
            "{}",
            result.controls_below_alpha
        );
    }

    #[test]
    fn refuses_empty_candidates_and_bad_alpha() {
        let stat = Statistic::Gumbel;
        assert!(attribute(&[], &[], context(), stat, 0.01, |_| {}).is_err());
        let c = [Candidate {
            label: "x".into(),
            key: Key::from_bytes([1; 32]),
        }];
        assert!(attribute(&c, &[], context(), stat, 0.0, |_| {}).is_err());
        // Nothing fed: the scorer's own error comes back.
        let err = attribute(&c, &[], context(), stat, 0.01, |_| {}).expect_err("empty");
        assert!(matches!(err, Error::NothingToScore(_)));
    }
}

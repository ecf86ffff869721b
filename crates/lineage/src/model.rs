//! What the experiments need from a language model, whatever its kind: the n-gram models of
//! [`crate::NgramLm`] and, with the `neural` feature, the small neural students of
//! `crate::neural`.

/// A next-token model over o200k ids.
pub trait LanguageModel: std::fmt::Debug {
    /// Tokens of history the next-token distribution depends on (the tokens before them play
    /// no part).
    fn context_width(&self) -> usize;

    /// The packed context the next-token distribution after `history` depends on: equal keys,
    /// equal distributions (callers cache by it).
    fn context_key(&self, history: &[u32]) -> u128;

    /// The next-token distribution after `history` (every token so far, oldest first) as
    /// `(token, probability)` sorted by token, summing to 1, into `out`. Models restricted to
    /// a candidate set return only the candidates.
    fn distribution(&self, history: &[u32], out: &mut Vec<(u32, f64)>);

    /// The most probable next token after `history` (ties to the lowest id); `scratch` is
    /// reused between calls.
    fn top1(&self, history: &[u32], scratch: &mut Vec<(u32, f64)>) -> Option<u32> {
        self.distribution(history, scratch);
        let mut best: Option<(u32, f64)> = None;
        for &(t, p) in scratch.iter() {
            if best.is_none_or(|(_, bp)| p > bp) {
                best = Some((t, p));
            }
        }
        best.map(|(t, _)| t)
    }
}

impl LanguageModel for crate::NgramLm {
    fn context_width(&self) -> usize {
        self.params().order.saturating_sub(1)
    }

    fn context_key(&self, history: &[u32]) -> u128 {
        crate::NgramLm::context_key(self, history)
    }

    fn distribution(&self, history: &[u32], out: &mut Vec<(u32, f64)>) {
        crate::NgramLm::distribution(self, history, out);
    }
}

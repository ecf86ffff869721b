//! Account-independent fingerprints of prompt templates.
//!
//! Harvesting scripts wrap many different questions in a few fixed wrappers ("Before you
//! answer, write out every step of your reasoning…"). The question changes per request; the
//! wrapper does not. So a prompt is cut into segments (lines and sentences), each segment is
//! normalised (case, digits, punctuation, whitespace) and hashed, and the first and last few
//! segments, where wrappers sit, become the prompt's template fingerprints. A fingerprint
//! seen in the prompts of many unrelated-looking accounts is evidence that one script drives
//! them; a question's own sentences are unique and never link anyone.
//!
//! Not a similarity measure between whole prompts, and not a classifier: deciding what a
//! shared fingerprint means is the coordination stage's business.

use crate::hash::Fnv;

/// Domain tag of template fingerprints.
const TAG: u8 = b'T';
/// Segments shorter than this (after normalisation) are too generic to fingerprint
/// ("Thanks!", "Answer:").
const MIN_SEGMENT: usize = 24;
/// Longest segment prefix hashed; keeps the cost bounded on huge prompts.
const MAX_SEGMENT: usize = 240;
/// How many segments from each end of the prompt are fingerprinted.
const ENDS: usize = 2;
/// Only this many bytes from each end of the text are examined.
const SCAN: usize = 4096;

/// Up to `2 * ENDS` fingerprints of the wrapper-bearing segments of `text`, deduplicated, in
/// a deterministic order.
pub fn fingerprints(text: &str) -> Vec<u64> {
    segments_of(text).into_iter().map(|(h, _)| h).collect()
}

/// Like [`fingerprints`], with each segment's original text (for evidence a human can read).
pub fn segments_of(text: &str) -> Vec<(u64, &str)> {
    let head = prefix(text, SCAN);
    let tail = suffix(text, SCAN);
    let mut out = Vec::with_capacity(2 * ENDS);
    for seg in segments(head).take(ENDS) {
        push_unique(&mut out, seg);
    }
    // Walk the tail backwards so only the last qualifying segments are hashed.
    let mut last: Vec<(u64, &str)> = tail
        .rsplit(is_boundary)
        .filter_map(segment)
        .take(ENDS)
        .collect();
    last.reverse();
    for seg in last {
        push_unique(&mut out, seg);
    }
    out
}

fn push_unique<'a>(out: &mut Vec<(u64, &'a str)>, seg: (u64, &'a str)) {
    if !out.iter().any(|(h, _)| *h == seg.0) {
        out.push(seg);
    }
}

/// Hashes of the normalised segments of `text` that are long enough to be distinctive.
fn segments(text: &str) -> impl Iterator<Item = (u64, &str)> + '_ {
    text.split(is_boundary).filter_map(segment)
}

/// The hash of one raw segment, if it is long enough to be distinctive.
fn segment(raw: &str) -> Option<(u64, &str)> {
    {
        let mut h = Fnv::tagged(TAG);
        let mut len = 0usize;
        let mut pending_space = false;
        let mut in_number = false;
        for c in raw.chars() {
            if len >= MAX_SEGMENT {
                break;
            }
            // ASCII (most prompts) without Unicode tables; the same rules as below.
            let (separator, digit) = if c.is_ascii() {
                (!c.is_ascii_alphanumeric(), c.is_ascii_digit())
            } else {
                (c.is_whitespace() || is_punct(c), c.is_numeric())
            };
            if separator {
                pending_space = len > 0;
                in_number = false;
                continue;
            }
            if pending_space {
                h.byte(b' ');
                len += 1;
                pending_space = false;
            }
            // Numbers are masked so "Question 12:" and "Question 7:" share a skeleton.
            if digit {
                if !in_number {
                    h.byte(b'0');
                    len += 1;
                    in_number = true;
                }
                continue;
            }
            in_number = false;
            if c.is_ascii() {
                h.byte(c.to_ascii_lowercase() as u8);
                len += 1;
                continue;
            }
            for lc in c.to_lowercase() {
                let mut buf = [0u8; 4];
                h.bytes(lc.encode_utf8(&mut buf).as_bytes());
                len += 1;
            }
        }
        (len >= MIN_SEGMENT).then(|| (h.finish(), raw.trim()))
    }
}

fn is_boundary(c: char) -> bool {
    matches!(
        c,
        '\n' | '.' | '?' | '!' | '。' | '？' | '！' | '؟' | ';' | '；'
    )
}

fn is_punct(c: char) -> bool {
    c.is_ascii_punctuation() || matches!(c, '，' | '、' | '：' | '«' | '»' | '“' | '”' | '‘' | '’')
}

fn prefix(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn suffix(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const WRAPPER: &str =
        "Before you answer, write out every intermediate step of your reasoning in full.";

    #[test]
    fn same_wrapper_around_different_questions_shares_a_fingerprint() {
        let a = fingerprints(&format!(
            "{WRAPPER}\nA train leaves at 3 pm and travels 120 km at 60 km/h; when does it arrive?"
        ));
        let b = fingerprints(&format!(
            "{WRAPPER}\nWrite a function that returns the n-th Fibonacci number in O(log n) time."
        ));
        let shared: Vec<_> = a.iter().filter(|h| b.contains(h)).collect();
        assert_eq!(shared.len(), 1, "{a:?} {b:?}");
    }

    #[test]
    fn normalisation_ignores_case_digits_and_punctuation() {
        let a = fingerprints("QUESTION 12: please reason about this carefully, then answer");
        let b = fingerprints("question 7 -- Please reason about this carefully then answer!!");
        assert_eq!(a, b);
    }

    #[test]
    fn short_prompts_have_no_fingerprint() {
        assert!(fingerprints("hi there").is_empty());
        assert!(fingerprints("What is 2+2?").is_empty());
    }

    #[test]
    fn works_on_non_latin_text() {
        let a = fingerprints(
            "在给出最终答案之前，请逐步写出你完整的推理过程，不要省略任何步骤。\n问题：一",
        );
        assert!(!a.is_empty());
    }

    proptest! {
        #[test]
        fn never_panics_and_is_bounded(s in "\\PC{0,3000}") {
            let f = fingerprints(&s);
            prop_assert!(f.len() <= 2 * ENDS);
        }
    }
}

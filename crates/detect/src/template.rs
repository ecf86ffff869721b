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

use crate::hash::WordHasher;

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
    segments_of(text).as_slice().iter().map(|s| s.0).collect()
}

/// Most segments a prompt has fingerprints for.
pub const MAX_SEGMENTS: usize = 2 * ENDS;

/// The fingerprinted segments of a prompt (at most [`MAX_SEGMENTS`]), held inline: each
/// segment's fingerprint and its byte range in the prompt (for evidence a human can read).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Segments {
    items: [(u64, u32, u32); MAX_SEGMENTS],
    len: usize,
}

impl Segments {
    /// The segments in order, as (fingerprint, start, end).
    pub fn as_slice(&self) -> &[(u64, u32, u32)] {
        self.items.get(..self.len).unwrap_or_default()
    }

    /// Appends a segment as given, (fingerprint, start, end), without looking at any text (the
    /// segments of a decoded feature record); false when full.
    pub(crate) fn push(&mut self, segment: (u64, u32, u32)) -> bool {
        match self.items.get_mut(self.len) {
            Some(slot) => {
                *slot = segment;
                self.len += 1;
                true
            }
            None => false,
        }
    }

    /// Adds `seg`, a slice of `text`, unless a segment with its fingerprint is there already
    /// (or it is full).
    fn push_unique(&mut self, text: &str, (hash, seg): (u64, &str)) {
        if self.as_slice().iter().any(|s| s.0 == hash) {
            return;
        }
        if let Some(slot) = self.items.get_mut(self.len) {
            let start = seg.as_ptr() as usize - text.as_ptr() as usize;
            *slot = (hash, start as u32, (start + seg.len()) as u32);
            self.len += 1;
        }
    }
}

/// Like [`fingerprints`], with each segment's byte range in `text`.
pub fn segments_of(text: &str) -> Segments {
    let head = prefix(text, SCAN);
    let tail = suffix(text, SCAN);
    let mut out = Segments::default();
    // The pieces the head walk judged, by position: in a text shorter than the scan window
    // (most prompts) the tail walk meets the same pieces, and hashes each only once.
    let mut judged: [(usize, usize, Option<u64>); 8] = [(0, 0, None); 8];
    let mut n_judged = 0;
    let at = |piece: &str| piece.as_ptr() as usize - text.as_ptr() as usize;
    let mut taken = 0;
    for piece in Pieces::new(head) {
        let seg = segment(piece);
        if let Some(slot) = judged.get_mut(n_judged) {
            *slot = (at(piece), piece.len(), seg.map(|(h, _)| h));
            n_judged += 1;
        }
        if let Some(seg) = seg {
            out.push_unique(text, seg);
            taken += 1;
            if taken == ENDS {
                break;
            }
        }
    }
    let judged = judged.get(..n_judged).unwrap_or_default();
    // Walk the tail backwards so only the last qualifying segments are hashed.
    let mut last = [None; ENDS];
    let tail_segments = PiecesBack::new(tail).filter_map(|piece| {
        let (start, len) = (at(piece), piece.len());
        match judged.iter().find(|j| j.0 == start && j.1 == len) {
            Some(&(_, _, hash)) => hash.map(|h| (h, piece.trim())),
            None => segment(piece),
        }
    });
    for (slot, seg) in last.iter_mut().zip(tail_segments) {
        *slot = Some(seg);
    }
    for seg in last.into_iter().rev().flatten() {
        out.push_unique(text, seg);
    }
    out
}

/// The bytes a segment boundary can start with: the one-byte boundaries and the lead bytes
/// of the multi-byte ones (a table, so the common byte costs one load and a well-predicted
/// test).
const BOUNDARY_LEAD: [bool; 256] = byte_set(b"\n.?!;\xE3\xEF\xD8");

/// The bytes a segment boundary can end with: the one-byte boundaries and the last bytes of
/// the multi-byte ones.
const BOUNDARY_LAST: [bool; 256] = byte_set(b"\n.?!;\x82\x9F\x81\x9B");

const fn byte_set(bytes: &[u8]) -> [bool; 256] {
    let mut t = [false; 256];
    let mut i = 0;
    while i < bytes.len() {
        t[bytes[i] as usize] = true;
        i += 1;
    }
    t
}

/// Byte length of the segment boundary (see [`is_boundary`]) starting at `i`, or 0.
fn boundary_at(b: &[u8], i: usize) -> usize {
    match b.get(i) {
        Some(b'\n' | b'.' | b'?' | b'!' | b';') => 1,
        Some(0xE3) if b.get(i + 1..i + 3) == Some(&[0x80, 0x82]) => 3, // 。
        Some(0xEF) if matches!(b.get(i + 1..i + 3), Some([0xBC, 0x9F | 0x81 | 0x9B])) => 3, // ？！；
        Some(0xD8) if b.get(i + 1) == Some(&0x9F) => 2,                                     // ؟
        _ => 0,
    }
}

/// Byte length of the boundary ending at `end` (exclusive), or 0.
fn boundary_before(b: &[u8], end: usize) -> usize {
    let Some(&last) = end.checked_sub(1).and_then(|i| b.get(i)) else {
        return 0;
    };
    // Multi-byte boundaries end in a UTF-8 continuation byte; anything else can only end a
    // one-byte boundary (the common, ASCII case costs one test).
    if !(0x80..0xC0).contains(&last) {
        return usize::from(boundary_at(b, end - 1) == 1);
    }
    for len in [2, 3] {
        if end >= len && boundary_at(b, end - len) == len {
            return len;
        }
    }
    0
}

/// The pieces of a text between boundaries, front to back (like `str::split`).
struct Pieces<'a> {
    text: &'a str,
    pos: usize,
    done: bool,
}

impl<'a> Pieces<'a> {
    fn new(text: &'a str) -> Self {
        Pieces {
            text,
            pos: 0,
            done: false,
        }
    }
}

impl<'a> Iterator for Pieces<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        if self.done {
            return None;
        }
        let b = self.text.as_bytes();
        let mut i = self.pos;
        while i < b.len() {
            let len = if BOUNDARY_LEAD[usize::from(b[i])] {
                boundary_at(b, i)
            } else {
                0
            };
            if len > 0 {
                let piece = self.text.get(self.pos..i);
                self.pos = i + len;
                return piece;
            }
            i += 1;
        }
        self.done = true;
        self.text.get(self.pos..)
    }
}

/// The pieces of a text between boundaries, back to front (like `str::rsplit`).
struct PiecesBack<'a> {
    text: &'a str,
    end: usize,
    done: bool,
}

impl<'a> PiecesBack<'a> {
    fn new(text: &'a str) -> Self {
        PiecesBack {
            text,
            end: text.len(),
            done: false,
        }
    }
}

impl<'a> Iterator for PiecesBack<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        if self.done {
            return None;
        }
        let b = self.text.as_bytes();
        let mut j = self.end;
        while j > 0 {
            let len = if BOUNDARY_LAST[usize::from(b[j - 1])] {
                boundary_before(b, j)
            } else {
                0
            };
            if len > 0 {
                let piece = self.text.get(j..self.end);
                self.end = j - len;
                return piece;
            }
            j -= 1;
        }
        self.done = true;
        self.text.get(..self.end)
    }
}

/// What an ASCII byte is to the fingerprint: 0 separator, 1 digit, else its lowercase form.
const ASCII: [u8; 128] = {
    let mut t = [0u8; 128];
    let mut i = 0;
    while i < 128 {
        let c = i as u8;
        t[i] = if c.is_ascii_digit() {
            1
        } else if c.is_ascii_alphabetic() {
            c.to_ascii_lowercase()
        } else {
            0
        };
        i += 1;
    }
    t
};

/// Normalised bytes collected before they are hashed (hashing a buffer goes eight bytes at a
/// time); flushed into the hash when nearly full, which does not change the hash.
const BUF: usize = 512;

/// The hash of one raw segment, if it is long enough to be distinctive.
///
/// The segment's normalised form (lowercase words separated by single spaces, punctuation
/// dropped, each run of digits one `0`, at most [`MAX_SEGMENT`] characters) is written to a
/// buffer and hashed. ASCII bytes take a branch-free step; other characters follow the
/// Unicode rules to the same effect (`segment_reference` in the tests is the plain form).
fn segment(raw: &str) -> Option<(u64, &str)> {
    // Normalisation yields at most 1.5 characters per byte (case folding of a two-byte
    // letter into three): a piece this short cannot reach the minimum.
    if raw.len() * 3 < MIN_SEGMENT * 2 {
        return None;
    }
    let mut h = WordHasher::tagged(TAG);
    let mut buf = [0u8; BUF];
    // Bytes in `buf`; characters of the normalised form so far.
    let (mut n, mut len) = (0usize, 0usize);
    let mut pending_space = false;
    let mut in_number = false;
    let bytes = raw.as_bytes();
    let mut i = 0;
    while i < bytes.len() && len < MAX_SEGMENT {
        // Room for the most one character can add: a space and three lowercase characters.
        if n + 16 > BUF {
            h.bytes(&buf[..n]);
            n = 0;
        }
        let b = bytes[i];
        if b < 0x80 {
            i += 1;
            let class = ASCII[usize::from(b)];
            let separator = class == 0;
            let digit = class == 1;
            // A pending space goes before anything but a separator.
            let space = pending_space & !separator;
            buf[n] = b' ';
            n += usize::from(space);
            len += usize::from(space);
            // A letter, or the first digit of a number (as `0`).
            let emit = !separator & !(digit & in_number);
            buf[n] = if digit { b'0' } else { class };
            n += usize::from(emit);
            len += usize::from(emit);
            pending_space = separator & (len > 0);
            in_number = digit;
            continue;
        }
        let Some(c) = raw.get(i..).and_then(|r| r.chars().next()) else {
            break;
        };
        i += c.len_utf8();
        if c.is_whitespace() || is_punct(c) {
            pending_space = len > 0;
            in_number = false;
            continue;
        }
        if pending_space {
            buf[n] = b' ';
            n += 1;
            len += 1;
            pending_space = false;
        }
        if c.is_numeric() {
            // Numbers are masked so "Question 12:" and "Question 7:" share a skeleton.
            if !in_number {
                buf[n] = b'0';
                n += 1;
                len += 1;
                in_number = true;
            }
            continue;
        }
        in_number = false;
        for lc in c.to_lowercase() {
            n += lc.encode_utf8(&mut buf[n..]).len();
            len += 1;
        }
    }
    h.bytes(&buf[..n]);
    (len >= MIN_SEGMENT).then(|| (h.finish(), raw.trim()))
}

#[cfg(test)]
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

    /// [`segment`] in its plain form, one byte at a time into the hash: the reference the
    /// buffered, branch-free form must equal.
    fn segment_reference(raw: &str) -> Option<(u64, &str)> {
        // Normalisation yields at most 1.5 characters per byte (case folding of a two-byte
        // letter into three): a piece this short cannot reach the minimum.
        if raw.len() * 3 < MIN_SEGMENT * 2 {
            return None;
        }
        let mut h = WordHasher::tagged(TAG);
        let mut len = 0usize;
        let mut pending_space = false;
        let mut in_number = false;
        let bytes = raw.as_bytes();
        let mut i = 0;
        while i < bytes.len() && len < MAX_SEGMENT {
            let b = bytes[i];
            // ASCII (most prompts) by table; the rest by the Unicode rules, to the same effect.
            let (separator, digit, ascii) = if b < 0x80 {
                i += 1;
                let class = ASCII[b as usize];
                (class == 0, class == 1, Some(class))
            } else {
                let Some(c) = raw.get(i..).and_then(|r| r.chars().next()) else {
                    break;
                };
                i += c.len_utf8();
                if c.is_whitespace() || is_punct(c) {
                    (true, false, None)
                } else if c.is_numeric() {
                    (false, true, None)
                } else {
                    if pending_space {
                        h.byte(b' ');
                        len += 1;
                        pending_space = false;
                    }
                    in_number = false;
                    for lc in c.to_lowercase() {
                        let mut buf = [0u8; 4];
                        h.bytes(lc.encode_utf8(&mut buf).as_bytes());
                        len += 1;
                    }
                    continue;
                }
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
            if let Some(lower) = ascii {
                h.byte(lower);
                len += 1;
            }
        }
        (len >= MIN_SEGMENT).then(|| (h.finish(), raw.trim()))
    }

    proptest! {
        #[test]
        fn segments_hash_as_the_reference(
            s in "([a-zA-Z0-9 ,:'()-]|\\PC|[İẞΣﬃ]){0,400}"
        ) {
            prop_assert_eq!(segment(&s), segment_reference(&s));
        }

        #[test]
        fn pieces_split_like_the_standard_library(s in "(\\PC|[.!?;\n。？！؟；]){0,300}") {
            let forward: Vec<&str> = Pieces::new(&s).collect();
            let expected: Vec<&str> = s.split(is_boundary).collect();
            prop_assert_eq!(forward, expected);
            let backward: Vec<&str> = PiecesBack::new(&s).collect();
            let expected: Vec<&str> = s.rsplit(is_boundary).collect();
            prop_assert_eq!(backward, expected);
        }

        #[test]
        fn never_panics_and_is_bounded(s in "\\PC{0,3000}") {
            let f = fingerprints(&s);
            prop_assert!(f.len() <= 2 * ENDS);
        }
    }
}

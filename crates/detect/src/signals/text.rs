//! Shared text plumbing for the per-request signals: bounded windows over long prompts, one
//! normalisation (lowercase, common accents folded, apostrophes dropped, punctuation and
//! whitespace collapsed to one space) applied to both the prompt and the patterns, and a
//! weighted multi-pattern lexicon that finds every phrase in one pass.
//!
//! It is not a tokenizer, a stemmer or a language detector. It exists so that every signal scans
//! the same cheap representation, so that "Let's think step-by-step:" and "lets think step by
//! step" are the same string, and so that a 50 KB prompt costs no more than 16 KB.

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};

/// Bytes examined at each end of a long prompt. Instructions that elicit reasoning or break a
/// model's rules sit at the start or the end of a prompt (the pasted material sits between), so
/// the head and the tail carry the signal while the cost stays bounded.
pub const WINDOW_BYTES: usize = 8 * 1024;

/// Most hits one scan keeps; beyond this a prompt is saturated anyway and the rest is noise.
const MAX_HITS: usize = 512;

/// The head and, for texts longer than two windows, the tail of `text`, cut on char boundaries.
pub(crate) fn head_tail(text: &str) -> (&str, &str) {
    if text.len() <= 2 * WINDOW_BYTES {
        return (text, "");
    }
    let mut h = WINDOW_BYTES;
    while !text.is_char_boundary(h) {
        h -= 1;
    }
    let mut t = text.len() - WINDOW_BYTES;
    while !text.is_char_boundary(t) {
        t += 1;
    }
    (&text[..h], &text[t..])
}

/// A prompt in normalised form, padded with one space at each end so that patterns can carry
/// word boundaries as spaces.
#[derive(Debug, Clone)]
pub struct Normalized {
    text: String,
}

impl Normalized {
    /// Normalises the bounded windows of `text`.
    pub fn new(text: &str) -> Self {
        let (head, tail) = head_tail(text);
        let mut out = String::with_capacity(head.len() + tail.len() + 3);
        out.push(' ');
        push_normalized(head, &mut out);
        if !tail.is_empty() {
            if !out.ends_with(' ') {
                out.push(' ');
            }
            push_normalized(tail, &mut out);
        }
        if !out.ends_with(' ') {
            out.push(' ');
        }
        Normalized { text: out }
    }

    /// The normalised text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether nothing but padding is left (empty or punctuation-only prompt).
    pub fn is_blank(&self) -> bool {
        self.text.trim().is_empty()
    }
}

/// Characters deleted outright: apostrophes (so "let's" and "lets" agree), combining marks and
/// Arabic vowel marks (writers use them inconsistently), tatweel, zero-width characters.
fn is_deleted(c: char) -> bool {
    matches!(c,
        '\'' | '`' | '\u{2018}' | '\u{2019}' | '\u{02BC}' | '\u{00AD}'
        | '\u{0300}'..='\u{036F}'
        | '\u{064B}'..='\u{065F}' | '\u{0670}' | '\u{0640}'
        | '\u{200B}'..='\u{200D}' | '\u{FEFF}')
}

/// Symbols kept as word characters because patterns need them: tag brackets (`<thinking>`) and
/// the lock and devil emoji of dual-answer jailbreak formats.
fn is_kept_symbol(c: char) -> bool {
    matches!(c, '<' | '>' | '\u{1F513}' | '\u{1F512}' | '\u{1F608}')
}

/// Folds an already lowercased character: Latin accents to the base letter, `ё` to `е`, Arabic
/// alef and yeh variants to the plain letter, full-width ASCII to ASCII.
fn fold(c: char) -> char {
    match c {
        'à'..='å' | 'ā' | 'ă' | 'ą' => 'a',
        'ç' | 'ć' | 'č' => 'c',
        'è'..='ë' | 'ē' | 'ę' | 'ě' => 'e',
        'ì'..='ï' | 'ī' => 'i',
        'ñ' | 'ń' => 'n',
        'ò'..='ö' | 'ø' | 'ō' | 'ő' => 'o',
        'ù'..='ü' | 'ū' | 'ů' | 'ű' => 'u',
        'ý' | 'ÿ' => 'y',
        'ś' | 'š' => 's',
        'ź' | 'ż' | 'ž' => 'z',
        'ł' => 'l',
        'ё' => 'е',
        'أ' | 'إ' | 'آ' => 'ا',
        'ى' => 'ي',
        '\u{FF01}'..='\u{FF5E}' => {
            char::from_u32(c as u32 - 0xFEE0).map_or(c, |a| a.to_ascii_lowercase())
        }
        _ => c,
    }
}

/// What an ASCII byte becomes: itself lowercased (word characters), nothing (apostrophes), or a
/// separator (0).
const fn ascii_map() -> [u8; 128] {
    let mut m = [0u8; 128];
    let mut b = 0;
    while b < 128 {
        let c = b as u8;
        m[b] = if c.is_ascii_alphanumeric() || c == b'<' || c == b'>' {
            c.to_ascii_lowercase()
        } else if c == b'\'' || c == b'`' {
            DELETE
        } else {
            0
        };
        b += 1;
    }
    m
}
/// Marker in [`ASCII`] for deleted bytes.
const DELETE: u8 = 0x7F;
static ASCII: [u8; 128] = ascii_map();

/// Appends the normalised form of `text` to `out`, collapsing separators with what `out`
/// already ends with.
pub(crate) fn push_normalized(text: &str, out: &mut String) {
    let mut buf = std::mem::take(out).into_bytes();
    let mut space = buf.is_empty() || buf.last() == Some(&b' ');
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b < 0x80 {
            // ASCII is nearly all of most prompts: one table lookup per byte.
            match ASCII[usize::from(b)] {
                0 => {
                    if !space {
                        buf.push(b' ');
                        space = true;
                    }
                }
                DELETE => {}
                m => {
                    buf.push(m);
                    space = false;
                }
            }
            i += 1;
            continue;
        }
        let Some(c) = text.get(i..).and_then(|s| s.chars().next()) else {
            break;
        };
        i += c.len_utf8();
        if is_deleted(c) {
        } else if c.is_alphanumeric() || is_kept_symbol(c) {
            for l in c.to_lowercase() {
                let f = fold(l);
                // Full-width punctuation folds to ASCII punctuation, which is a separator.
                if f.is_ascii() && !f.is_ascii_alphanumeric() {
                    if !space {
                        buf.push(b' ');
                        space = true;
                    }
                } else {
                    let mut tmp = [0u8; 4];
                    buf.extend_from_slice(f.encode_utf8(&mut tmp).as_bytes());
                    space = false;
                }
            }
        } else if !space {
            buf.push(b' ');
            space = true;
        }
    }
    // Only whole UTF-8 sequences were pushed, so this never fails; fall back to a lossy copy
    // rather than panic if it ever did.
    *out = String::from_utf8(buf)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
}

/// Scripts written with spaces between words, where a pattern gets word boundaries. Chinese,
/// Japanese, Korean (particles attach to words) and Arabic (prefixes attach) match as substrings.
fn is_spaced(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || c == '<'
        || c == '>'
        || ('\u{00C0}'..='\u{024F}').contains(&c)
        || ('\u{0370}'..='\u{04FF}').contains(&c)
}

/// One occurrence of a lexicon pattern in a normalised text.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Hit<T> {
    /// What the pattern means to the signal.
    pub tag: T,
    /// Byte offset of the match in the normalised text (boundary spaces included).
    pub start: usize,
    /// Byte offset just past the match.
    pub end: usize,
}

/// Weighted phrases of one signal, matched in one pass.
///
/// Patterns are written naturally ("Let's think step-by-step", "étape par étape") and
/// normalised like the text. In spaced scripts a pattern matches whole words only; a `*` at
/// either end lifts the boundary on that side (`explain*` also matches "explaining").
#[derive(Debug, Clone)]
pub(crate) struct Lexicon<T> {
    ac: AhoCorasick,
    tags: Vec<T>,
}

/// The normalised form of one pattern with its boundary spaces.
pub(crate) fn normalize_pattern(raw: &str) -> String {
    let left_open = raw.starts_with('*');
    let right_open = raw.ends_with('*');
    let core = raw.trim_matches('*');
    let mut body = String::with_capacity(core.len() + 2);
    push_normalized(core, &mut body);
    let body = body.trim();
    let mut p = String::with_capacity(body.len() + 2);
    if !left_open && body.chars().next().is_some_and(is_spaced) {
        p.push(' ');
    }
    p.push_str(body);
    if !right_open && body.chars().next_back().is_some_and(is_spaced) {
        p.push(' ');
    }
    p
}

impl<T: Copy> Lexicon<T> {
    /// Builds the automaton; `None` only if the automaton cannot be built (it then would be a
    /// programming error caught by every signal's tests).
    pub(crate) fn new(entries: &[(&str, T)]) -> Option<Self> {
        let mut patterns = Vec::with_capacity(entries.len());
        let mut tags = Vec::with_capacity(entries.len());
        for &(raw, tag) in entries {
            let p = normalize_pattern(raw);
            if !p.trim().is_empty() {
                patterns.push(p);
                tags.push(tag);
            }
        }
        let ac = AhoCorasick::builder()
            .match_kind(MatchKind::Standard)
            // A full DFA is a few hundred KB for these lexicons and several times faster per
            // byte than the NFAs, which matters at ~20 ns/byte budgets.
            .kind(Some(AhoCorasickKind::DFA))
            .build(&patterns)
            .ok()?;
        Some(Lexicon { ac, tags })
    }

    /// Every (overlapping) occurrence of every pattern, the first occurrence of each pattern
    /// only, at most `MAX_HITS`.
    pub(crate) fn scan(&self, text: &Normalized, out: &mut Vec<Hit<T>>) {
        self.scan_str(text.as_str(), out);
    }

    /// [`Lexicon::scan`] over the first `max_bytes` of the text only.
    pub(crate) fn scan_prefix(&self, text: &Normalized, max_bytes: usize, out: &mut Vec<Hit<T>>) {
        let s = text.as_str();
        let mut cut = s.len().min(max_bytes);
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        self.scan_str(s.get(..cut).unwrap_or(s), out);
    }

    fn scan_str(&self, text: &str, out: &mut Vec<Hit<T>>) {
        out.clear();
        // Repeating a phrase adds no evidence: keep each pattern's first occurrence only.
        let mut seen = vec![0u64; self.tags.len().div_ceil(64)];
        for m in self.ac.find_overlapping_iter(text) {
            let index = m.pattern().as_usize();
            let Some(word) = seen.get_mut(index / 64) else {
                continue;
            };
            let bit = 1u64 << (index % 64);
            if *word & bit != 0 {
                continue;
            }
            *word |= bit;
            let Some(&tag) = self.tags.get(index) else {
                continue;
            };
            out.push(Hit {
                tag,
                start: m.start(),
                end: m.end(),
            });
            if out.len() >= MAX_HITS {
                break;
            }
        }
    }

    /// Number of patterns.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.tags.len()
    }
}

/// Whether `a` ends at most `before` bytes ahead of `b`'s start, or starts at most `after`
/// bytes past `b`'s end: the word-order tolerant nearness used for verb–object pairs.
pub(crate) fn near<T, U>(a: &Hit<T>, b: &Hit<U>, before: usize, after: usize) -> bool {
    // Boundary spaces make adjacent matches overlap by one byte; allow it.
    (a.end <= b.start + 1 && b.start + 1 - a.end <= before)
        || (a.start + 1 >= b.end && a.start + 1 - b.end <= after)
}

/// Probabilistic OR of independent pieces of evidence.
pub(crate) fn noisy_or(acc: f32, w: f32) -> f32 {
    1.0 - (1.0 - acc) * (1.0 - w.clamp(0.0, 1.0))
}

/// Checks that the patterns of a lexicon are unique after normalisation (a duplicate would
/// count its evidence twice) and non-empty.
#[cfg(test)]
pub(crate) fn assert_unique_patterns<T>(entries: &[(&str, T)]) {
    let mut seen = std::collections::BTreeMap::new();
    for (raw, _) in entries {
        let p = normalize_pattern(raw);
        assert!(!p.trim().is_empty(), "empty pattern {raw:?}");
        if let Some(prev) = seen.insert(p.clone(), *raw) {
            panic!("patterns {prev:?} and {raw:?} normalise to the same {p:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_case_punctuation_apostrophes_and_accents() {
        let n = Normalized::new("Let's think STEP-by-step:  Étape   par étape! Ёлка");
        assert_eq!(n.as_str(), " lets think step by step etape par etape елка ");
    }

    #[test]
    fn folds_full_width_and_arabic_marks() {
        assert_eq!(Normalized::new("ＡＢＣ，ｄ").as_str(), " abc d ");
        assert_eq!(Normalized::new("فَكِّرْ خطوة").as_str(), " فكر خطوة ");
        assert_eq!(Normalized::new("أظهر").as_str(), " اظهر ");
    }

    #[test]
    fn patterns_get_boundaries_only_in_spaced_scripts() {
        assert_eq!(normalize_pattern("Step-by-step"), " step by step ");
        assert_eq!(normalize_pattern("explain*"), " explain");
        assert_eq!(normalize_pattern("一步一步"), "一步一步");
        assert_eq!(normalize_pattern("<thinking>"), " <thinking> ");
    }

    #[test]
    fn long_text_keeps_head_and_tail_only() {
        let text = format!("first words {} last words", "x ".repeat(40_000));
        let n = Normalized::new(&text);
        assert!(n.as_str().starts_with(" first words "));
        assert!(n.as_str().ends_with(" last words "));
        assert!(n.as_str().len() <= 2 * WINDOW_BYTES + 3);
    }

    #[test]
    fn head_tail_respects_char_boundaries() {
        let text = "é".repeat(20_000);
        let (h, t) = head_tail(&text);
        assert!(h.len() <= WINDOW_BYTES && t.len() <= WINDOW_BYTES);
    }

    #[test]
    fn scan_reports_each_pattern_once_with_word_boundaries() {
        let lex = Lexicon::new(&[("step", 1u8), ("step by step", 2)]).unwrap();
        let mut hits = Vec::new();
        lex.scan(&Normalized::new("Step by step, steps, step."), &mut hits);
        let tags: Vec<u8> = hits.iter().map(|h| h.tag).collect();
        assert_eq!(tags, vec![1, 2]);
        lex.scan(&Normalized::new("footsteps stepwise"), &mut hits);
        assert!(hits.is_empty());
    }
}

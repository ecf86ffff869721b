//! Shared text plumbing for the per-request signals: bounded windows over long prompts, one
//! normalisation (lowercase, common accents folded, apostrophes dropped, punctuation and
//! whitespace collapsed to one space) applied to both the prompt and the patterns, and a
//! weighted multi-pattern lexicon that finds every phrase in one pass.
//!
//! It is not a tokenizer, a stemmer or a language detector. It exists so that every signal scans
//! the same cheap representation, so that "Let's think step-by-step:" and "lets think step by
//! step" are the same string, and so that a 50 KB prompt costs no more than 16 KB.
//!
//! Everything here sits on the per-request hot path (a budget of a few microseconds). The
//! normaliser maps ASCII through a table without data-dependent branches, has range fast paths
//! for the common letters of the scripts the lexicons cover, writes into a caller's reusable
//! buffer, and tallies the letters' scripts ([`super::script`]) in the same pass. The lexicon walks its
//! DFA by hand, in up to four interleaved lanes over parts of a text, since one walk spends its
//! time waiting on memory. Tests check each fast path against the plain definition: every
//! `char` through the `char` tables, every lane split against one walk.

use aho_corasick::automaton::{Automaton, StateID};
use aho_corasick::dfa::DFA;
use aho_corasick::{Anchored, MatchKind, StartKind};

use super::script::ScriptTally;

/// Bytes examined at each end of a long prompt. Instructions that elicit reasoning or break a
/// model's rules sit at the start or the end of a prompt (the pasted material sits between), so
/// the head and the tail carry the signal while the cost stays bounded.
pub const WINDOW_BYTES: usize = 8 * 1024;

/// Most hits of one signal that one scan keeps; beyond this a prompt is saturated anyway and the
/// rest is noise.
pub(crate) const MAX_HITS: usize = 512;

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
        let mut buf = Vec::new();
        normalize_into(text, &mut buf, None);
        Normalized {
            text: into_string(buf),
        }
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

/// Normalises the bounded windows of `text` into `out` (replacing what it held), padded with one
/// space at each end: the bytes of [`Normalized::new`], in a buffer the caller reuses. When
/// `tally` is given, it counts the scripts of the head window's letters as it goes.
pub(crate) fn normalize_into(text: &str, out: &mut Vec<u8>, tally: Option<&mut ScriptTally>) {
    let (head, tail) = head_tail(text);
    out.clear();
    out.reserve(head.len() + tail.len() + 3);
    out.push(b' ');
    match tally {
        Some(t) => push_normalized_bytes::<true>(head, out, t),
        None => push_normalized_bytes::<false>(head, out, &mut ScriptTally::default()),
    }
    if !tail.is_empty() {
        if out.last() != Some(&b' ') {
            out.push(b' ');
        }
        push_normalized_bytes::<false>(tail, out, &mut ScriptTally::default());
    }
    if out.last() != Some(&b' ') {
        out.push(b' ');
    }
}

/// Only whole UTF-8 sequences are ever pushed, so this never fails; fall back to a lossy copy
/// rather than panic if it ever did.
fn into_string(buf: Vec<u8>) -> String {
    String::from_utf8(buf).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
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

/// What a non-ASCII character is, for the normaliser and the script tally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A letter whose lowercase form is itself and that [`fold`] leaves alone (Han, kana,
    /// Hangul, Arabic letters, lowercase Cyrillic other than `ё`): copied as it is.
    PlainLetter,
    /// A letter that lowercases to the char given and then goes through [`fold`].
    Letter(char),
    /// A letter, digit or kept symbol that needs the general path (`char::to_lowercase`).
    Other {
        /// Whether it counts as a letter for the script tally.
        alphabetic: bool,
    },
    /// Neither a word character nor deleted: a separator.
    Separator,
    /// Deleted outright (see [`is_deleted`]); some are letters to the script tally (Arabic
    /// vowel marks, tatweel).
    Deleted,
}

/// Classifies a non-ASCII character, answering the common letters of the covered scripts from
/// their Unicode ranges and asking the `char` tables only for the rest.
fn kind(c: char) -> Kind {
    match c {
        // Han (CJK Unified Ideographs and Extension A), hiragana, katakana, Hangul syllables,
        // basic Arabic letters (tatweel, U+0640, is deleted), lowercase Cyrillic.
        '\u{4E00}'..='\u{9FFF}'
        | '\u{3400}'..='\u{4DBF}'
        | '\u{3041}'..='\u{3096}'
        | '\u{30A1}'..='\u{30FA}'
        | '\u{AC00}'..='\u{D7A3}'
        | '\u{0621}'
        | '\u{0624}'
        | '\u{0626}'..='\u{063F}'
        | '\u{0641}'..='\u{0648}'
        | '\u{064A}'
        | '\u{0430}'..='\u{0450}'
        | '\u{0452}'..='\u{045F}' => Kind::PlainLetter,
        // Uppercase Cyrillic.
        '\u{0410}'..='\u{042F}' => Kind::Letter(shift(c, 0x20)),
        '\u{0400}'..='\u{040F}' => Kind::Letter(shift(c, 0x50)),
        // Latin-1 letters (× and ÷ are symbols; ß has no one-char lowercase change).
        '\u{00C0}'..='\u{00D6}' | '\u{00D8}'..='\u{00DE}' => Kind::Letter(shift(c, 0x20)),
        // Letters that are already lowercase but that [`fold`] may change.
        '\u{00DF}'..='\u{00F6}'
        | '\u{00F8}'..='\u{00FF}'
        | 'ё'
        | '\u{0622}'
        | '\u{0623}'
        | '\u{0625}'
        | '\u{0649}' => Kind::Letter(c),
        _ if is_deleted(c) => Kind::Deleted,
        _ => {
            let alphabetic = c.is_alphabetic();
            if alphabetic || c.is_numeric() || is_kept_symbol(c) {
                Kind::Other { alphabetic }
            } else {
                Kind::Separator
            }
        }
    }
}

/// `c` moved `by` code points up (ranges above are chosen so the result is a letter).
fn shift(c: char, by: u32) -> char {
    char::from_u32(c as u32 + by).unwrap_or(c)
}

/// What an ASCII byte becomes: itself lowercased (word characters), nothing (apostrophes,
/// [`DELETE`]), or a separator (a space).
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
            b' '
        };
        b += 1;
    }
    m
}
/// Marker in [`ASCII`] for deleted bytes.
const DELETE: u8 = 0x7F;
static ASCII: [u8; 128] = ascii_map();

/// Most bytes one `char` can become: three lowercase chars of four bytes.
const MAX_CHAR_OUTPUT: usize = 12;

/// Appends the normalised form of `text` to `out`, collapsing separators with what `out`
/// already ends with.
pub(crate) fn push_normalized(text: &str, out: &mut String) {
    let mut buf = std::mem::take(out).into_bytes();
    push_normalized_bytes::<false>(text, &mut buf, &mut ScriptTally::default());
    *out = into_string(buf);
}

/// [`push_normalized`] on a byte buffer; with `TALLY`, also counts the scripts of the letters of
/// `text` into `tally` (until it is full).
fn push_normalized_bytes<const TALLY: bool>(
    text: &str,
    out: &mut Vec<u8>,
    tally: &mut ScriptTally,
) {
    let bytes = text.as_bytes();
    // Work on locals (the compiler keeps them in registers) and write by index into room made
    // up front, so that the ASCII loop needs no capacity checks.
    let mut buf = std::mem::take(out);
    let mut t = *tally;
    let mut j = buf.len();
    let mut space = buf.last().is_none_or(|&b| b == b' ');
    // Invariant: `buf.len() - j >= bytes.len() - i`, so an ASCII byte always has room.
    buf.resize(j + bytes.len(), 0);
    let mut i = 0;
    while i < bytes.len() {
        let (read, letters);
        (read, j, space, letters) =
            ascii_run(bytes.get(i..).unwrap_or_default(), &mut buf, j, space);
        i += read;
        if TALLY {
            t.add_latin(letters);
        }
        let Some(c) = text.get(i..).and_then(|s| s.chars().next()) else {
            break;
        };
        let len = c.len_utf8();
        let need = j + MAX_CHAR_OUTPUT + (bytes.len() - i);
        if buf.len() < need {
            buf.resize(need, 0);
        }
        match kind(c) {
            Kind::PlainLetter => {
                if TALLY {
                    t.add(c);
                }
                if let (Some(dst), Some(src)) = (buf.get_mut(j..j + len), bytes.get(i..i + len)) {
                    dst.copy_from_slice(src);
                    j += len;
                }
                space = false;
            }
            Kind::Letter(l) => {
                if TALLY {
                    t.add(c);
                }
                push_folded(l, &mut buf, &mut j, &mut space);
            }
            Kind::Other { alphabetic } => {
                if TALLY && alphabetic {
                    t.add(c);
                }
                for l in c.to_lowercase() {
                    push_folded(l, &mut buf, &mut j, &mut space);
                }
            }
            Kind::Separator => push_separator(&mut buf, &mut j, &mut space),
            Kind::Deleted => {
                if TALLY && c.is_alphabetic() {
                    t.add(c);
                }
            }
        }
        i += len;
    }
    buf.truncate(j);
    *out = buf;
    *tally = t;
}

/// Normalises the ASCII bytes at the start of `src` into `dst` from `j` on, up to the first
/// non-ASCII byte. Returns the bytes read, the new write position, whether the output now ends
/// in a separator, and the number of letters read.
///
/// `dst` must have room for every byte of `src` after `j`.
#[inline]
fn ascii_run(
    src: &[u8],
    dst: &mut [u8],
    mut j: usize,
    mut space: bool,
) -> (usize, usize, bool, usize) {
    let mut letters = 0;
    for (read, &b) in src.iter().enumerate() {
        if b >= 0x80 {
            return (read, j, space, letters);
        }
        // One table lookup per byte, and no data-dependent branch but for the rare deleted
        // bytes: the byte is always stored, and the write position advances only when it is
        // kept. (Eight bytes at a time with word arithmetic ran fewer instructions but was
        // slower: prose stops it often enough that its branch mispredicts.)
        let m = ASCII[usize::from(b)];
        if m == DELETE {
            continue;
        }
        let separator = m == b' ';
        if let Some(slot) = dst.get_mut(j) {
            *slot = m;
        }
        j += usize::from(!(separator & space));
        space = separator;
        letters += usize::from(m.is_ascii_lowercase());
    }
    (src.len(), j, space, letters)
}

/// Writes a separator at `j` unless one is already there.
fn push_separator(buf: &mut [u8], j: &mut usize, space: &mut bool) {
    if !*space {
        if let Some(slot) = buf.get_mut(*j) {
            *slot = b' ';
            *j += 1;
        }
        *space = true;
    }
}

/// Writes the folded form of a lowercased word character at `j`.
fn push_folded(l: char, buf: &mut [u8], j: &mut usize, space: &mut bool) {
    let f = fold(l);
    // Full-width punctuation folds to ASCII punctuation, which is a separator.
    if f.is_ascii() && !f.is_ascii_alphanumeric() {
        push_separator(buf, j, space);
    } else if let Some(dst) = buf.get_mut(*j..*j + f.len_utf8()) {
        f.encode_utf8(dst);
        *j += f.len_utf8();
        *space = false;
    }
}

/// The largest char boundary of UTF-8 `s` at or below `max`.
pub(crate) fn floor_boundary(s: &[u8], max: usize) -> usize {
    let mut cut = s.len().min(max);
    // A continuation byte (0b10xx_xxxx) is never at a boundary.
    while cut > 0 && cut < s.len() && s.get(cut).is_some_and(|&b| b & 0xC0 == 0x80) {
        cut -= 1;
    }
    cut
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

/// Weighted phrases of one signal (or of several, with a tag that says what a phrase means to
/// each), matched in one pass.
///
/// Patterns are written naturally ("Let's think step-by-step", "étape par étape") and
/// normalised like the text. In spaced scripts a pattern matches whole words only; a `*` at
/// either end lifts the boundary on that side (`explain*` also matches "explaining").
#[derive(Debug, Clone)]
pub(crate) struct Lexicon<T> {
    dfa: DFA,
    tags: Vec<T>,
    /// Length in bytes of the longest pattern.
    max_len: usize,
}

/// Independent walks of the automaton over parts of a long text. A walk is a chain of
/// dependent table loads, each waiting on the last; walks side by side overlap those waits, so
/// four lanes scan a long text about 2.5 times as fast as one.
const LANES: usize = 4;

/// Reusable space for [`Lexicon::for_each_first`].
#[derive(Debug, Default)]
pub(crate) struct ScanScratch {
    /// Patterns already reported, one bit each.
    seen: Vec<u64>,
    /// (match state, end) of every match, per lane.
    lanes: Lanes,
}

/// Matches recorded per lane: (match state, end).
type Lanes = [Vec<(u32, u32)>; LANES];

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
    /// Builds the automaton from raw patterns; `None` only if the automaton cannot be built (it
    /// then would be a programming error caught by every signal's tests).
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
        Self::from_normalized(&patterns, tags)
    }

    /// Builds the automaton from patterns already normalised, `tags[i]` the tag of
    /// `patterns[i]`.
    pub(crate) fn from_normalized(patterns: &[String], tags: Vec<T>) -> Option<Self> {
        if patterns.len() != tags.len() || patterns.len() > u32::MAX as usize {
            return None;
        }
        let dfa = DFA::builder()
            .match_kind(MatchKind::Standard)
            .start_kind(StartKind::Unanchored)
            // Every match is wanted, so a prefilter would only add work per match.
            .prefilter(false)
            // A full DFA is a few MB for these lexicons and several times faster per byte than
            // the NFAs, which matters at ~20 ns/byte budgets.
            .build(patterns)
            .ok()?;
        let max_len = patterns.iter().map(String::len).max().unwrap_or(0);
        Some(Lexicon { dfa, tags, max_len })
    }

    /// Every (overlapping) occurrence of every pattern, the first occurrence of each pattern
    /// only, at most `MAX_HITS`.
    pub(crate) fn scan(&self, text: &Normalized, out: &mut Vec<Hit<T>>) {
        self.scan_bytes(text.as_str().as_bytes(), out);
    }

    /// [`Lexicon::scan`] over the first `max_bytes` of the text only.
    pub(crate) fn scan_prefix(&self, text: &Normalized, max_bytes: usize, out: &mut Vec<Hit<T>>) {
        let s = text.as_str().as_bytes();
        let cut = floor_boundary(s, max_bytes);
        self.scan_bytes(s.get(..cut).unwrap_or(s), out);
    }

    fn scan_bytes(&self, text: &[u8], out: &mut Vec<Hit<T>>) {
        out.clear();
        self.for_each_first(text, &mut ScanScratch::default(), |&tag, start, end| {
            out.push(Hit { tag, start, end });
            out.len() < MAX_HITS
        });
    }

    /// Calls `visit(tag, start, end)` for the first occurrence of each pattern in `text`, in
    /// the order of their ends (patterns ending at the same byte longest first), until it
    /// returns false. Repeating a phrase adds no evidence, so later occurrences are skipped.
    pub(crate) fn for_each_first(
        &self,
        text: &[u8],
        scratch: &mut ScanScratch,
        mut visit: impl FnMut(&T, usize, usize) -> bool,
    ) {
        // A lane re-reads `max_len` bytes before its part so that it reaches every state the
        // single walk would have there. Measured on gsm8k questions: two lanes pay off from
        // about two such lengths, four from about six.
        let lanes = if text.len() >= 6 * self.max_len {
            self.walk4(text, &mut scratch.lanes)
        } else if text.len() >= 2 * self.max_len {
            self.walk2(text, &mut scratch.lanes)
        } else {
            self.walk1(text, &mut scratch.lanes)
        };
        let seen = &mut scratch.seen;
        seen.clear();
        seen.resize(self.tags.len().div_ceil(64), 0);
        for &(state, end) in scratch.lanes.iter().take(lanes).flatten() {
            let Ok(sid) = StateID::new(state as usize) else {
                continue;
            };
            for m in 0..self.dfa.match_len(sid) {
                let pid = self.dfa.match_pattern(sid, m);
                let index = pid.as_usize();
                let Some(word) = seen.get_mut(index / 64) else {
                    continue;
                };
                let bit = 1u64 << (index % 64);
                if *word & bit != 0 {
                    continue;
                }
                *word |= bit;
                let Some(tag) = self.tags.get(index) else {
                    continue;
                };
                let end = end as usize;
                if !visit(tag, end - self.dfa.pattern_len(pid), end) {
                    return;
                }
            }
        }
    }

    /// Records (match state, end) of every match in `text` into `out[0]`. Returns 1.
    fn walk1(&self, text: &[u8], out: &mut Lanes) -> usize {
        out[0].clear();
        if let Ok(start) = self.dfa.start_state(Anchored::No) {
            self.walk_lane(start, text, 0, 0, &mut out[0]);
        }
        1
    }

    /// [`Lexicon::walk1`] in two lanes over the halves of `text`, into `out[..2]`, which
    /// concatenated hold what `walk1` reports. Correct for any length; faster only for texts
    /// several times longer than `max_len`.
    fn walk2(&self, text: &[u8], out: &mut Lanes) -> usize {
        let dfa = &self.dfa;
        let Ok(start) = dfa.start_state(Anchored::No) else {
            return 0;
        };
        let [o0, o1, ..] = out;
        o0.clear();
        o1.clear();
        let n = text.len();
        // Lane k reports the matches that end after `from_k` and starts walking `max_len`
        // bytes earlier: no pattern is longer, so by `from_k` it is in the state a single walk
        // would be in.
        let from1 = n / 2;
        let begin1 = from1.saturating_sub(self.max_len);
        let (Some(l0), Some(l1)) = (text.get(..from1), text.get(begin1..)) else {
            return self.walk1(text, out);
        };
        let (mut s0, mut s1) = (start, start);
        let common = l0.len().min(l1.len());
        for (i, (&a, &b)) in l0.iter().zip(l1).enumerate() {
            s0 = dfa.next_state(Anchored::No, s0, a);
            s1 = dfa.next_state(Anchored::No, s1, b);
            // Without a prefilter only the dead state and match states are special, and an
            // unanchored search never dies.
            if dfa.is_special(s0) | dfa.is_special(s1) {
                self.record(s0, i + 1, 0, o0);
                self.record(s1, begin1 + i + 1, from1, o1);
            }
        }
        self.walk_lane(s0, l0.get(common..).unwrap_or_default(), common, 0, o0);
        self.walk_lane(
            s1,
            l1.get(common..).unwrap_or_default(),
            begin1 + common,
            from1,
            o1,
        );
        2
    }

    /// [`Lexicon::walk2`] in four lanes over the quarters of `text`, into `out[..4]`.
    fn walk4<'a>(&self, text: &'a [u8], out: &mut Lanes) -> usize {
        let dfa = &self.dfa;
        let Ok(start) = dfa.start_state(Anchored::No) else {
            return 0;
        };
        let [o0, o1, o2, o3] = out;
        for o in [&mut *o0, &mut *o1, &mut *o2, &mut *o3] {
            o.clear();
        }
        let n = text.len();
        let from = [n / 4, n / 2, n * 3 / 4];
        let begin = from.map(|f| f.saturating_sub(self.max_len));
        let (Some(l0), Some(l1), Some(l2), Some(l3)) = (
            text.get(..from[0]),
            text.get(begin[0]..from[1]),
            text.get(begin[1]..from[2]),
            text.get(begin[2]..),
        ) else {
            return self.walk1(text, out);
        };
        let (mut s0, mut s1, mut s2, mut s3) = (start, start, start, start);
        let common = l0.len().min(l1.len()).min(l2.len()).min(l3.len());
        let lanes = l0.iter().zip(l1).zip(l2).zip(l3).enumerate();
        for (i, (((&a, &b), &c), &d)) in lanes {
            s0 = dfa.next_state(Anchored::No, s0, a);
            s1 = dfa.next_state(Anchored::No, s1, b);
            s2 = dfa.next_state(Anchored::No, s2, c);
            s3 = dfa.next_state(Anchored::No, s3, d);
            if dfa.is_special(s0) | dfa.is_special(s1) | dfa.is_special(s2) | dfa.is_special(s3) {
                self.record(s0, i + 1, 0, o0);
                self.record(s1, begin[0] + i + 1, from[0], o1);
                self.record(s2, begin[1] + i + 1, from[1], o2);
                self.record(s3, begin[2] + i + 1, from[2], o3);
            }
        }
        let rest = |l: &'a [u8]| -> &'a [u8] { l.get(common..).unwrap_or_default() };
        self.walk_lane(s0, rest(l0), common, 0, o0);
        self.walk_lane(s1, rest(l1), begin[0] + common, from[0], o1);
        self.walk_lane(s2, rest(l2), begin[1] + common, from[1], o2);
        self.walk_lane(s3, rest(l3), begin[2] + common, from[2], o3);
        4
    }

    /// Walks `bytes` (at `offset` in the text) from state `sid`, recording matches that end
    /// after `from`.
    fn walk_lane(
        &self,
        mut sid: StateID,
        bytes: &[u8],
        offset: usize,
        from: usize,
        out: &mut Vec<(u32, u32)>,
    ) {
        for (i, &b) in bytes.iter().enumerate() {
            sid = self.dfa.next_state(Anchored::No, sid, b);
            if self.dfa.is_special(sid) {
                self.record(sid, offset + i + 1, from, out);
            }
        }
    }

    /// Records match state `sid` at `end` if it is one and `end` is after `from`.
    #[inline]
    fn record(&self, sid: StateID, end: usize, from: usize, out: &mut Vec<(u32, u32)>) {
        if end > from && self.dfa.is_match(sid) {
            // Normalised texts are at most 2 windows long, far below u32::MAX.
            out.push((sid.as_u32(), end as u32));
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

    /// The normaliser as first written (the ASCII table, then one `char` at a time through
    /// the standard tables): the definition the fast paths must agree with.
    fn reference_normalize(text: &str, out: &mut String) {
        let mut space = out.is_empty() || out.ends_with(' ');
        for c in text.chars() {
            if c.is_ascii() {
                match ASCII[c as usize] {
                    b' ' => {
                        if !space {
                            out.push(' ');
                            space = true;
                        }
                    }
                    DELETE => {}
                    m => {
                        out.push(char::from(m));
                        space = false;
                    }
                }
            } else if is_deleted(c) {
            } else if c.is_alphanumeric() || is_kept_symbol(c) {
                for l in c.to_lowercase() {
                    let f = fold(l);
                    if f.is_ascii() && !f.is_ascii_alphanumeric() {
                        if !space {
                            out.push(' ');
                            space = true;
                        }
                    } else {
                        out.push(f);
                        space = false;
                    }
                }
            } else if !space {
                out.push(' ');
                space = true;
            }
        }
    }

    fn fast(text: &str) -> String {
        let mut s = String::from(" ");
        push_normalized(text, &mut s);
        s
    }

    fn reference(text: &str) -> String {
        let mut s = String::from(" ");
        reference_normalize(text, &mut s);
        s
    }

    #[test]
    fn fast_paths_agree_with_the_char_tables_for_every_char() {
        let mut text = String::new();
        for c in (0..=0x10FFFFu32).filter_map(char::from_u32) {
            text.clear();
            text.push('a');
            text.push(c);
            text.push('b');
            assert_eq!(fast(&text), reference(&text), "U+{:04X}", c as u32);
            let mut tally = ScriptTally::default();
            let mut buf = Vec::new();
            push_normalized_bytes::<true>(&text, &mut buf, &mut tally);
            assert_eq!(tally, ScriptTally::of(&text), "U+{:04X}", c as u32);
        }
    }

    #[test]
    fn fast_paths_agree_on_mixed_text() {
        for t in [
            "Let's think STEP-by-step:  Étape   par étape! Ёлка",
            "ÀÉÎÕÜ ß ÿ Ÿ İstanbul ΣΑΣ Ѐ Ђ Џ ЀЁ",
            "ＡＢＣ，ｄ「引用」、。 — … “quoted” ‘x’",
            "فَكِّرْ خطوة ـــ أظهر إ آ ى ٣٤",
            "思维链 思維鏈 ステップバイステップ 단계별로 ｶﾀｶﾅ",
            "😈🔓🔒 <thinking> tab\tnew\nline\r\n",
            "",
            "   ",
        ] {
            assert_eq!(fast(t), reference(t), "{t:?}");
            let mut tally = ScriptTally::default();
            push_normalized_bytes::<true>(t, &mut Vec::new(), &mut tally);
            assert_eq!(tally, ScriptTally::of(t), "{t:?}");
        }
    }

    /// Random mixes of the bytes the fast paths treat differently, at every alignment.
    #[test]
    fn fast_paths_agree_on_random_text() {
        let pieces = [
            "a", "Z", "q", "M", "7", "0", " ", "  ", ",", ". ", "\n", "\t", "'", "`", "<", ">",
            "-", "_", "@", "\u{7f}", "\u{1}", "é", "Ё", "思", "’", "—", "😈", "ＡＢ", "İ",
        ];
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..20_000 {
            let n = (next() % 40) as usize;
            let text: String = (0..n)
                .map(|_| pieces[(next() % pieces.len() as u64) as usize])
                .collect();
            assert_eq!(fast(&text), reference(&text), "{text:?}");
            let mut tally = ScriptTally::default();
            push_normalized_bytes::<true>(&text, &mut Vec::new(), &mut tally);
            assert_eq!(tally, ScriptTally::of(&text), "{text:?}");
        }
    }

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
    fn floor_boundary_stays_on_char_boundaries() {
        let s = "aé思b";
        for max in 0..=s.len() + 2 {
            let cut = floor_boundary(s.as_bytes(), max);
            assert!(
                s.is_char_boundary(cut) && cut <= max.min(s.len()),
                "{max} {cut}"
            );
        }
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

    /// Every match of the overlapping iterator, first occurrence of each pattern only.
    fn overlapping_firsts(patterns: &[String], text: &str) -> Vec<(usize, usize, usize)> {
        let ac = aho_corasick::AhoCorasick::new(patterns).unwrap();
        let mut seen = std::collections::BTreeSet::new();
        ac.find_overlapping_iter(text)
            .filter(|m| seen.insert(m.pattern().as_usize()))
            .map(|m| (m.pattern().as_usize(), m.start(), m.end()))
            .collect()
    }

    #[test]
    fn scan_agrees_with_the_overlapping_iterator() {
        let entries = [
            ("step", 0usize),
            ("step by step", 1),
            ("by", 2),
            ("think", 3),
            ("lets think", 4),
            ("think*", 5),
            ("思维链", 6),
            ("思维", 7),
        ];
        let lex = Lexicon::new(&entries).unwrap();
        let patterns: Vec<String> = entries.iter().map(|(p, _)| normalize_pattern(p)).collect();
        let short = "Let's think step by step, thinking 思维链 step by; think.";
        // Long enough for several lanes, with matches straddling every lane boundary.
        let long = format!("{} lets think", "a step by step 思维 ".repeat(40));
        for text in [short, long.as_str()] {
            let text = Normalized::new(text);
            let mut hits = Vec::new();
            lex.scan(&text, &mut hits);
            let got: Vec<(usize, usize, usize)> =
                hits.iter().map(|h| (h.tag, h.start, h.end)).collect();
            assert_eq!(got, overlapping_firsts(&patterns, text.as_str()));
        }
    }

    /// Lanes must report exactly what one walk reports, in the same order, wherever their
    /// boundaries fall.
    #[test]
    fn lanes_report_what_one_walk_reports() {
        let entries: Vec<(&str, usize)> = super::super::cot::entries()
            .iter()
            .map(|e| e.0)
            .chain(super::super::jailbreak::entries().iter().map(|e| e.0))
            .enumerate()
            .map(|(i, p)| (p, i))
            .collect();
        let lex = Lexicon::new(&entries).unwrap();
        let words = [
            "step",
            "by",
            "think",
            "lets",
            "your",
            "reasoning",
            "ignore",
            "previous",
            "instructions",
            "explain",
            "chain",
            "of",
            "thought",
            "шаг",
            "за",
            "思维链",
            "no",
            "filters",
            "x",
            "the",
            "show",
            "work",
            "dan",
            "mode",
            "developer",
        ];
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for round in 0..300 {
            let n = (next() % 700) as usize + round;
            let text: Vec<&str> = (0..n)
                .map(|_| words[(next() % words.len() as u64) as usize])
                .collect();
            let text = Normalized::new(&text.join(" "));
            let bytes = text.as_str().as_bytes();
            let mut one = std::array::from_fn(|_| Vec::new());
            let mut two = std::array::from_fn(|_| Vec::new());
            let mut four = std::array::from_fn(|_| Vec::new());
            lex.walk1(bytes, &mut one);
            lex.walk2(bytes, &mut two);
            lex.walk4(bytes, &mut four);
            let one: Vec<_> = one.concat();
            assert_eq!(one, two[..2].concat(), "{}", text.as_str());
            assert_eq!(one, four.concat(), "{}", text.as_str());
        }
    }
}

//! Inline reasoning: a `<think>…</think>` block at the start of a text (Qwen, DeepSeek-R1 raw).
//!
//! Finds the block in a whole text, replaces it by a marker that carries a token, finds the
//! marker again in a later request, and splits streamed text into answer and reasoning with a
//! small state machine that copes with tags split across deltas. Only a block that opens the
//! text (after optional whitespace) counts: `<think>` later in an answer is the answer's own
//! text. Knows nothing of JSON or sealing.

/// The opening tag.
pub const OPEN: &str = "<think>";
/// The closing tag.
pub const CLOSE: &str = "</think>";
/// What starts a withheld marker inside a think block: `[moat:withheld <token>]`.
pub const MARKER_START: &str = "[moat:withheld ";

/// Where the inline block lies in a text: `text[start..end]` is the block with its tags (or
/// up to the end of the text when it is not closed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    /// Byte offset of `<think>`.
    pub start: usize,
    /// Byte offset just past `</think>`, or the text's length when unclosed.
    pub end: usize,
    /// Whether `</think>` was found.
    pub closed: bool,
}

impl Block {
    /// The reasoning text between the tags.
    pub fn inner<'a>(&self, text: &'a str) -> &'a str {
        let body = &text[self.start + OPEN.len()..self.end];
        if self.closed {
            body.strip_suffix(CLOSE).unwrap_or(body)
        } else {
            body
        }
    }
}

/// The leading think block of `text`, if it has one.
pub fn find(text: &str) -> Option<Block> {
    let start = text.len() - text.trim_start().len();
    if !text[start..].starts_with(OPEN) {
        return None;
    }
    let after = start + OPEN.len();
    Some(match text[after..].find(CLOSE) {
        Some(i) => Block {
            start,
            end: after + i + CLOSE.len(),
            closed: true,
        },
        None => Block {
            start,
            end: text.len(),
            closed: false,
        },
    })
}

/// The block that replaces the original: the summary (tags removed, so it cannot fake a
/// block boundary) on its own line, then the marker.
pub fn marker_block(token: &str, summary: Option<&str>) -> String {
    let mut out = String::from(OPEN);
    if let Some(s) = summary {
        out.push_str(&s.replace(OPEN, "").replace(CLOSE, ""));
        out.push('\n');
    }
    out.push_str(MARKER_START);
    out.push_str(token);
    out.push(']');
    out.push_str(CLOSE);
    out
}

/// A withheld marker found in a text: the range of its whole think block and the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker<'a> {
    /// Byte offset of the block's `<think>`.
    pub start: usize,
    /// Byte offset just past the block's `</think>`.
    pub end: usize,
    /// The token inside the marker.
    pub token: &'a str,
}

/// The first withheld marker block of `text` at or after byte `from`, wherever it lies (a
/// client may have moved an earlier answer into a longer prompt).
pub fn find_marker(text: &str, from: usize) -> Option<Marker<'_>> {
    let mut search = from;
    loop {
        let m = search + text.get(search..)?.find(MARKER_START)?;
        let token_start = m + MARKER_START.len();
        let after = &text[token_start..];
        let close_bracket = after.find(']')?;
        let token = &after[..close_bracket];
        let tail = token_start + close_bracket + 1;
        let open = text[..m].rfind(OPEN);
        match open {
            Some(start) if text[tail..].starts_with(CLOSE) && !text[start..m].contains(CLOSE) => {
                return Some(Marker {
                    start,
                    end: tail + CLOSE.len(),
                    token,
                });
            }
            _ => search = token_start,
        }
    }
}

/// What [`Splitter::push`] made of one delta.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Split {
    /// Answer text of this delta (what a withholding filter sends on).
    pub answer: String,
    /// Reasoning text of this delta, tags excluded.
    pub reasoning: String,
    /// The whole raw block (tags included), when it closed in this delta.
    pub closed: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Nothing but whitespace (kept in `pending`) seen so far, or a prefix of `<think>`.
    Start,
    /// Inside the block; `raw` holds it from `<think>` on.
    Inside,
    /// Past the block (or there was none): everything is answer.
    After,
}

/// Splits streamed text into answer and inline reasoning, delta by delta.
#[derive(Debug, Clone)]
pub struct Splitter {
    state: State,
    pending: String,
    raw: String,
    /// Bytes of `raw` already searched for `</think>` (less a tag length, for split tags).
    scanned: usize,
    /// Bytes of `raw` already reported as reasoning.
    emitted: usize,
}

impl Default for Splitter {
    fn default() -> Self {
        Splitter {
            state: State::Start,
            pending: String::new(),
            raw: String::new(),
            scanned: 0,
            emitted: 0,
        }
    }
}

impl Splitter {
    /// Whether a block is open (reasoning is being streamed).
    pub fn in_block(&self) -> bool {
        self.state == State::Inside
    }

    /// The raw block so far (tags included) while inside or after an unclosed end.
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// Takes the next delta.
    pub fn push(&mut self, text: &str) -> Split {
        let mut out = Split::default();
        match self.state {
            State::After => out.answer.push_str(text),
            State::Start => {
                self.pending.push_str(text);
                let trimmed = self.pending.trim_start();
                if trimmed.is_empty() || (OPEN.starts_with(trimmed) && trimmed.len() < OPEN.len()) {
                    return out;
                }
                let pending = std::mem::take(&mut self.pending);
                let lead = pending.len() - pending.trim_start().len();
                if pending[lead..].starts_with(OPEN) {
                    out.answer.push_str(&pending[..lead]);
                    self.state = State::Inside;
                    self.raw.push_str(OPEN);
                    self.scanned = self.raw.len();
                    self.emitted = self.raw.len();
                    let rest = &pending[lead + OPEN.len()..];
                    self.inside(rest, &mut out);
                } else {
                    self.state = State::After;
                    out.answer = pending;
                }
            }
            State::Inside => self.inside(text, &mut out),
        }
        out
    }

    fn inside(&mut self, text: &str, out: &mut Split) {
        self.raw.push_str(text);
        // The close tag may straddle the previous delta: look back one tag length.
        let from = self.scanned.saturating_sub(CLOSE.len() - 1).max(OPEN.len());
        let from = floor_char_boundary(&self.raw, from);
        match self.raw[from..].find(CLOSE) {
            Some(i) => {
                let inner_end = from + i;
                let close_end = inner_end + CLOSE.len();
                out.reasoning.push_str(&self.raw[self.emitted..inner_end]);
                out.answer.push_str(&self.raw[close_end..]);
                self.raw.truncate(close_end);
                out.closed = Some(std::mem::take(&mut self.raw));
                self.state = State::After;
            }
            None => {
                // A tail that may be the start of `</think>` is not reasoning yet.
                let held = (1..CLOSE.len())
                    .rev()
                    .find(|&n| self.raw.ends_with(&CLOSE[..n]))
                    .unwrap_or(0);
                let safe = self.raw.len() - held;
                out.reasoning.push_str(&self.raw[self.emitted..safe]);
                self.emitted = safe;
                self.scanned = self.raw.len();
            }
        }
    }

    /// At the end of the text: whitespace or a tag prefix still held is answer; an unclosed
    /// block is returned whole.
    pub fn finish(&mut self) -> Split {
        let mut out = Split::default();
        match self.state {
            State::Start => out.answer = std::mem::take(&mut self.pending),
            State::Inside => {
                out.reasoning.push_str(&self.raw[self.emitted..]);
                out.closed = Some(std::mem::take(&mut self.raw));
            }
            State::After => {}
        }
        self.state = State::After;
        out
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    if i >= s.len() {
        return s.len();
    }
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn finds_a_leading_block_after_whitespace() {
        let t = "\n<think>\nwhy\n</think>\n\nAnswer";
        let b = find(t).unwrap();
        assert_eq!(&t[b.start..b.end], "<think>\nwhy\n</think>");
        assert_eq!(b.inner(t), "\nwhy\n");
        assert!(find("Answer <think>x</think>").is_none());
    }

    #[test]
    fn unclosed_block_runs_to_the_end() {
        let t = "<think>cut off";
        let b = find(t).unwrap();
        assert!(!b.closed);
        assert_eq!(b.inner(t), "cut off");
    }

    #[test]
    fn marker_is_found_with_and_without_summary() {
        let plain = format!("{}\n\nAnswer", marker_block("moatr1.abc", None));
        let m = find_marker(&plain, 0).unwrap();
        assert_eq!(m.token, "moatr1.abc");
        assert_eq!(&plain[m.end..], "\n\nAnswer");
        let summarized = marker_block("moatr1.xyz", Some("short <think>summary</think>"));
        let m = find_marker(&summarized, 0).unwrap();
        assert_eq!(m.token, "moatr1.xyz");
        assert_eq!(m.end, summarized.len());
        let embedded = format!("Earlier: {} then more", marker_block("moatr1.q", None));
        let m = find_marker(&embedded, 0).unwrap();
        assert_eq!((m.start, m.token), (9, "moatr1.q"));
        assert!(find_marker(&embedded, m.end).is_none());
        assert!(find_marker("[moat:withheld x] no block", 0).is_none());
    }

    fn split_all(parts: &[&str]) -> (String, String, Option<String>) {
        let mut s = Splitter::default();
        let (mut a, mut r, mut c) = (String::new(), String::new(), None);
        for p in parts.iter() {
            let out = s.push(p);
            a.push_str(&out.answer);
            r.push_str(&out.reasoning);
            c = c.or(out.closed);
        }
        let out = s.finish();
        a.push_str(&out.answer);
        c = c.or(out.closed);
        (a, r, c)
    }

    #[test]
    fn splitter_handles_tags_split_over_deltas() {
        let (a, r, c) = split_all(&[" <th", "ink>rea", "son</th", "in", "k>ans", "wer"]);
        assert_eq!(a, " answer");
        assert_eq!(r, "reason");
        assert_eq!(c.as_deref(), Some("<think>reason</think>"));
    }

    #[test]
    fn splitter_passes_text_without_a_block() {
        let (a, r, c) = split_all(&["<th", "e answer>"]);
        assert_eq!(a, "<the answer>");
        assert_eq!(r, "");
        assert!(c.is_none());
    }

    proptest! {
        #[test]
        fn any_split_gives_the_same_answer(reason in "[a-z <>/]{0,30}", answer in "[a-z <>/]{0,30}",
                                           cuts in proptest::collection::vec(0usize..80, 0..6)) {
            prop_assume!(!reason.contains(CLOSE));
            let text = format!("<think>{reason}</think>{answer}");
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(text.len())).collect();
            cuts.sort_unstable();
            let mut parts = Vec::new();
            let mut last = 0;
            for c in cuts.into_iter().chain([text.len()]) {
                parts.push(&text[last..c]);
                last = c;
            }
            let (a, r, c) = split_all(&parts);
            prop_assert_eq!(a, answer);
            prop_assert_eq!(r, reason.clone());
            prop_assert_eq!(c, Some(format!("<think>{reason}</think>")));
        }
    }
}

//! An incremental parser of server-sent events (the `text/event-stream` framing).
//!
//! Push byte slices as they arrive, split anywhere; take out complete events, each with its
//! raw bytes (shared, not copied, with the input buffer) and its `event` and `data` fields.
//! Lines end with LF, CRLF or CR; lines starting with `:` are comments; several `data` lines
//! join with `\n`. One event is bounded in size. This module does not know what the data
//! means; `crate::stream` does.

use bytes::{Bytes, BytesMut};

use crate::error::DialectError;

/// The default bound on one event: 4 MiB, far above any real chunk of a model API.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 4 << 20;

/// One complete server-sent event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The exact bytes of the event, its terminating blank line included.
    pub raw: Bytes,
    /// The `event:` field, if any.
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`; `None` when the event has no data line (a comment
    /// or keep-alive).
    pub data: Option<String>,
}

impl SseEvent {
    /// Parses the fields of one event from its raw bytes (which need not end with a blank
    /// line). Invalid UTF-8 is replaced, never refused: the JSON parse that follows decides.
    pub fn from_raw(raw: Bytes) -> Self {
        let mut event = None;
        let mut data: Option<String> = None;
        for line in Lines::new(&raw) {
            if line.is_empty() || line[0] == b':' {
                continue;
            }
            let (name, value) = match line.iter().position(|&b| b == b':') {
                Some(i) => {
                    let v = &line[i + 1..];
                    (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
                }
                None => (line, &[][..]),
            };
            match name {
                b"event" => event = Some(String::from_utf8_lossy(value).into_owned()),
                b"data" => {
                    let value = String::from_utf8_lossy(value);
                    match &mut data {
                        Some(d) => {
                            d.push('\n');
                            d.push_str(&value);
                        }
                        None => data = Some(value.into_owned()),
                    }
                }
                _ => {}
            }
        }
        SseEvent { raw, event, data }
    }

    /// An event built by this crate: optional `event:` line, one `data:` line, blank line.
    pub fn synthesize(event: Option<&str>, data: &str) -> Bytes {
        let mut out = String::with_capacity(data.len() + 40);
        if let Some(e) = event {
            out.push_str("event: ");
            out.push_str(e);
            out.push('\n');
        }
        out.push_str("data: ");
        out.push_str(data);
        out.push_str("\n\n");
        Bytes::from(out)
    }
}

/// Lines of an event, split at LF, CRLF or CR, without their terminators.
struct Lines<'a> {
    rest: &'a [u8],
}

impl<'a> Lines<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Lines { rest: bytes }
    }
}

impl<'a> Iterator for Lines<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.rest.is_empty() {
            return None;
        }
        match self.rest.iter().position(|&b| b == b'\n' || b == b'\r') {
            Some(i) => {
                let line = &self.rest[..i];
                let term = if self.rest[i] == b'\r' && self.rest.get(i + 1) == Some(&b'\n') {
                    2
                } else {
                    1
                };
                self.rest = &self.rest[i + term..];
                Some(line)
            }
            None => {
                let line = self.rest;
                self.rest = &[];
                Some(line)
            }
        }
    }
}

/// The incremental parser.
#[derive(Debug)]
pub struct SseParser {
    buf: BytesMut,
    /// Start of the first line of `buf` not yet known to be complete; everything before it
    /// is complete non-empty lines of the current event, so it is not scanned again (feeding
    /// one byte at a time stays linear).
    line_start: usize,
    max_event_bytes: usize,
}

impl Default for SseParser {
    fn default() -> Self {
        SseParser::new(DEFAULT_MAX_EVENT_BYTES)
    }
}

impl SseParser {
    /// A parser that refuses events longer than `max_event_bytes`.
    pub fn new(max_event_bytes: usize) -> Self {
        SseParser {
            buf: BytesMut::new(),
            line_start: 0,
            max_event_bytes,
        }
    }

    /// Appends received bytes; take events out with [`SseParser::next_event`].
    pub fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete event, `None` when more bytes are needed, or an error when the
    /// event being read exceeds the bound (the stream cannot be resynchronised after that).
    pub fn next_event(&mut self) -> Result<Option<SseEvent>, DialectError> {
        let mut pos = self.line_start;
        loop {
            let rest = &self.buf[pos..];
            let Some(i) = rest.iter().position(|&b| b == b'\n' || b == b'\r') else {
                break;
            };
            let at = pos + i;
            let term = if self.buf[at] == b'\r' {
                match self.buf.get(at + 1) {
                    Some(b'\n') => 2,
                    Some(_) => 1,
                    // A CR at the end of the buffer may be the first half of a CRLF: wait.
                    None => break,
                }
            } else {
                1
            };
            let end = at + term;
            if at == pos {
                // An empty line: the event ends here.
                if end > self.max_event_bytes {
                    return Err(self.too_large());
                }
                self.line_start = 0;
                let raw = self.buf.split_to(end).freeze();
                return Ok(Some(SseEvent::from_raw(raw)));
            }
            pos = end;
            self.line_start = pos;
        }
        if self.buf.len() > self.max_event_bytes {
            return Err(self.too_large());
        }
        Ok(None)
    }

    /// At the end of the stream: what is left, as a last event without its blank line, or
    /// `None` when nothing is left.
    pub fn finish(&mut self) -> Option<SseEvent> {
        self.line_start = 0;
        if self.buf.is_empty() {
            return None;
        }
        let raw = self.buf.split().freeze();
        Some(SseEvent::from_raw(raw))
    }

    /// Bytes received but not yet returned in an event.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    fn too_large(&mut self) -> DialectError {
        // Drop what we hold: the caller ends the stream, and the memory should go now.
        self.buf = BytesMut::new();
        self.line_start = 0;
        DialectError::EventTooLarge {
            limit: self.max_event_bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn all_events(p: &mut SseParser) -> Vec<SseEvent> {
        let mut out = Vec::new();
        while let Some(e) = p.next_event().unwrap() {
            out.push(e);
        }
        out
    }

    #[test]
    fn parses_fields_comments_and_multiline_data() {
        let mut p = SseParser::default();
        p.feed(b": keep-alive\n\nevent: ping\ndata: {\"a\":1}\n\ndata: one\ndata:two\n\n");
        let ev = all_events(&mut p);
        assert_eq!(ev.len(), 3);
        assert_eq!(ev[0].data, None);
        assert_eq!(&ev[0].raw[..], b": keep-alive\n\n");
        assert_eq!(ev[1].event.as_deref(), Some("ping"));
        assert_eq!(ev[1].data.as_deref(), Some("{\"a\":1}"));
        assert_eq!(ev[2].data.as_deref(), Some("one\ntwo"));
    }

    #[test]
    fn handles_crlf_and_cr_line_ends() {
        let mut p = SseParser::default();
        p.feed(b"data: a\r\n\r\ndata: b\r\rdata: c\n\r\n");
        let ev = all_events(&mut p);
        let data: Vec<_> = ev.iter().map(|e| e.data.clone().unwrap()).collect();
        assert_eq!(data, ["a", "b", "c"]);
    }

    #[test]
    fn crlf_split_between_feeds_is_one_line_end() {
        let mut p = SseParser::default();
        p.feed(b"data: a\r");
        assert!(p.next_event().unwrap().is_none());
        p.feed(b"\n\r");
        assert!(p.next_event().unwrap().is_none());
        p.feed(b"\n");
        let e = p.next_event().unwrap().unwrap();
        assert_eq!(&e.raw[..], b"data: a\r\n\r\n");
        assert!(p.next_event().unwrap().is_none());
    }

    #[test]
    fn event_over_the_bound_is_an_error() {
        let mut p = SseParser::new(16);
        p.feed(b"data: 0123456789abcdef");
        assert_eq!(
            p.next_event(),
            Err(DialectError::EventTooLarge { limit: 16 })
        );
        let mut p = SseParser::new(16);
        p.feed(b"data: 0123456789\n\n");
        assert!(p.next_event().is_err());
    }

    #[test]
    fn finish_returns_an_unterminated_tail() {
        let mut p = SseParser::default();
        p.feed(b"data: [DONE]");
        assert!(p.next_event().unwrap().is_none());
        let e = p.finish().unwrap();
        assert_eq!(e.data.as_deref(), Some("[DONE]"));
        assert!(p.finish().is_none());
    }

    proptest! {
        #[test]
        fn never_panics_and_returns_every_byte(input in proptest::collection::vec(any::<u8>(), 0..400),
                                               cuts in proptest::collection::vec(0usize..400, 0..8)) {
            let mut p = SseParser::new(256);
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(input.len())).collect();
            cuts.sort_unstable();
            let mut out = Vec::new();
            let mut last = 0;
            let mut failed = false;
            for c in cuts.into_iter().chain([input.len()]) {
                p.feed(&input[last..c]);
                last = c;
                loop {
                    match p.next_event() {
                        Ok(Some(e)) => out.extend_from_slice(&e.raw),
                        Ok(None) => break,
                        Err(_) => { failed = true; break; }
                    }
                }
                if failed { break; }
            }
            if !failed {
                if let Some(e) = p.finish() { out.extend_from_slice(&e.raw); }
                prop_assert_eq!(out, input);
            }
        }

        #[test]
        fn splitting_does_not_change_events(events in proptest::collection::vec("[a-z{}\":, ]{0,20}", 1..6),
                                            split in 0usize..200) {
            let text: String = events.iter().map(|e| format!("data: {e}\r\n\r\n")).collect();
            let bytes = text.as_bytes();
            let split = split.min(bytes.len());
            let mut p = SseParser::default();
            p.feed(&bytes[..split]);
            let mut got = all_events(&mut p);
            p.feed(&bytes[split..]);
            got.extend(all_events(&mut p));
            let data: Vec<String> = got.into_iter().map(|e| e.data.unwrap_or_default()).collect();
            prop_assert_eq!(data, events);
        }
    }
}

//! Server-sent events: writing the mock's frames, pacing them onto the wire, and parsing them
//! back.
//!
//! Endpoint modules build a whole reply as a list of [`Frame`]s up front (cheap: a few small
//! serialisations), and [`body`] turns the list into a response body stream that sleeps before
//! each delta, so every event is flushed as it is produced and streaming latency is real. The
//! `x-mock-drop-after` failure is injected here too. [`parse_sse`] is public so that gateway tests
//! can read streams back with the same rules. This module does not decide what the events say.

use std::io;
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use serde::Serialize;
use tokio::time::Instant;

/// How a frame takes part in pacing and in the injected mid-stream failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// Framing before, between or around the deltas (a role chunk, a block start): sent at once.
    Frame,
    /// A reasoning or content delta: sent after the interval, and counted for `x-mock-drop-after`.
    Delta,
    /// A frame after the last delta (a finish chunk, usage, `[DONE]`): a stream told to drop after
    /// at least as many deltas as it has is cut before its first tail frame.
    Tail,
}

/// One encoded SSE event and its role.
#[derive(Debug, Clone)]
pub(crate) struct Frame {
    pub(crate) bytes: Bytes,
    pub(crate) role: Role,
}

/// Encodes `value` as one event: an optional `event:` line, a `data:` line, a blank line.
pub(crate) fn frame(
    event: Option<&str>,
    value: &impl Serialize,
    role: Role,
) -> Result<Frame, serde_json::Error> {
    let mut buf = Vec::with_capacity(256);
    if let Some(event) = event {
        buf.extend_from_slice(b"event: ");
        buf.extend_from_slice(event.as_bytes());
        buf.push(b'\n');
    }
    buf.extend_from_slice(b"data: ");
    serde_json::to_writer(&mut buf, value)?;
    buf.extend_from_slice(b"\n\n");
    Ok(Frame {
        bytes: Bytes::from(buf),
        role,
    })
}

/// The OpenAI streams' terminator, `data: [DONE]`.
pub(crate) fn done() -> Frame {
    Frame {
        bytes: Bytes::from_static(b"data: [DONE]\n\n"),
        role: Role::Tail,
    }
}

/// The error a dropped stream ends with. Ending the body with an error makes hyper abort the
/// connection without the chunked terminator, which is what a client sees when an upstream dies.
fn dropped() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "mock upstream dropped the stream",
    )
}

struct Pacer {
    frames: std::vec::IntoIter<Frame>,
    interval: Duration,
    drop_after: Option<usize>,
    deltas: u32,
    start: Option<Instant>,
    finished: bool,
}

/// A body that sends `frames` in order, sleeping `interval` before each delta (measured from the
/// start of the stream, so pacing does not drift), and that fails after `drop_after` deltas.
pub(crate) fn body(frames: Vec<Frame>, interval: Duration, drop_after: Option<usize>) -> Body {
    let pacer = Pacer {
        frames: frames.into_iter(),
        interval,
        drop_after,
        deltas: 0,
        start: None,
        finished: false,
    };
    let stream = futures_util::stream::unfold(pacer, |mut p| async move {
        if p.finished {
            return None;
        }
        let frame = p.frames.next()?;
        let sent = p.deltas as usize;
        let cut = match (frame.role, p.drop_after) {
            (Role::Delta, Some(k)) => sent == k,
            (Role::Tail, Some(k)) => sent <= k,
            _ => false,
        };
        if cut {
            p.finished = true;
            // Hyper flushes what it has buffered only when the body is pending, and drops the
            // connection as soon as the body fails; yielding once first makes sure the events
            // before the cut reach the client, as they would from an upstream that died.
            tokio::task::yield_now().await;
            return Some((Err(dropped()), p));
        }
        if frame.role == Role::Delta {
            p.deltas = p.deltas.saturating_add(1);
            if !p.interval.is_zero() {
                let start = *p.start.get_or_insert_with(Instant::now);
                // A configured interval could be absurdly long; overflow must not panic.
                match p
                    .interval
                    .checked_mul(p.deltas)
                    .and_then(|offset| start.checked_add(offset))
                {
                    Some(deadline) => tokio::time::sleep_until(deadline).await,
                    None => tokio::time::sleep(p.interval).await,
                }
            }
        }
        Some((Ok::<Bytes, io::Error>(frame.bytes), p))
    });
    Body::from_stream(stream)
}

/// One parsed server-sent event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    /// The `event:` field, if the event had one (Responses and Anthropic streams do; chat and
    /// completions streams do not).
    pub event: Option<String>,
    /// The `data:` lines joined with newlines, as the SSE specification says.
    pub data: String,
}

impl SseEvent {
    /// The data parsed as JSON, or `None` for `[DONE]` and anything else that is not JSON.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_str(&self.data).ok()
    }
}

/// Parses a complete SSE text into its events, following the parts of the SSE specification that
/// model APIs use: `event:` and `data:` fields (one optional space after the colon), comment lines
/// starting with `:`, other fields ignored, `\n`, `\r\n` or `\r` line ends, and events ended by a
/// blank line. An unterminated last event is dropped, as a browser would drop it. It never panics,
/// whatever the input.
pub fn parse_sse(text: &str) -> Vec<SseEvent> {
    let mut events = Vec::new();
    let mut current = SseEvent::default();
    let mut has_data = false;
    let normalised;
    let text = if text.contains('\r') {
        normalised = text.replace("\r\n", "\n").replace('\r', "\n");
        normalised.as_str()
    } else {
        text
    };
    let mut lines = text.split('\n').peekable();
    while let Some(line) = lines.next() {
        if lines.peek().is_none() {
            // The text after the last line end is an incomplete line, not a line.
            break;
        }
        if line.is_empty() {
            if has_data {
                events.push(std::mem::take(&mut current));
            } else {
                current = SseEvent::default();
            }
            has_data = false;
            continue;
        }
        if line.starts_with(':') {
            continue;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "event" => current.event = Some(value.to_owned()),
            "data" => {
                if has_data {
                    current.data.push('\n');
                }
                current.data.push_str(value);
                has_data = true;
            }
            _ => {}
        }
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_openai_and_anthropic_framing() {
        let text = "data: {\"a\":1}\n\nevent: ping\ndata: {\"type\":\"ping\"}\n\n: comment\n\ndata: [DONE]\n\n";
        let events = parse_sse(text);
        assert_eq!(events.len(), 3);
        assert_eq!(events[0].event, None);
        assert_eq!(events[0].json().unwrap()["a"], 1);
        assert_eq!(events[1].event.as_deref(), Some("ping"));
        assert_eq!(events[2].data, "[DONE]");
        assert_eq!(events[2].json(), None);
    }

    #[test]
    fn crlf_multiline_data_and_unterminated_events() {
        let events = parse_sse("data: a\r\ndata:b\r\n\r\ndata: cut");
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].data, "a\nb");
    }

    #[test]
    fn frames_round_trip_through_the_parser() {
        let f = frame(
            Some("message_stop"),
            &serde_json::json!({"type": "message_stop"}),
            Role::Tail,
        )
        .unwrap();
        let text = std::str::from_utf8(&f.bytes).unwrap();
        assert_eq!(
            text,
            "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
        );
        let events = parse_sse(text);
        assert_eq!(events[0].event.as_deref(), Some("message_stop"));
        assert_eq!(events[0].json().unwrap()["type"], "message_stop");
    }

    proptest! {
        #[test]
        fn parse_sse_never_panics(text in "(data|event|:|\r|\n| |x|\\{|\\}){0,64}") {
            let _ = parse_sse(&text);
        }

        #[test]
        fn parse_sse_never_panics_on_any_text(text in any::<String>()) {
            let _ = parse_sse(&text);
        }
    }
}

//! The stored form of [`Features`]: a compact binary record that a scale-out worker writes (a
//! PostgreSQL `BYTEA`) and the consolidator decodes and feeds to
//! [`crate::Engine::observe_features`], with the same detections as the features it was made
//! from.
//!
//! A record holds what the engine reads of a request and nothing more: the facts (time,
//! signals, fingerprints, address block, ASN) exactly, floating-point values by their bits, and
//! of each text only the form the engine reads it in. The engine reads the prompt only to label
//! evidence of its wrapper segments, and labels text with `excerpt` (words joined by single
//! spaces, cut to 120 characters), so a record keeps each segment's and the system prompt's
//! excerpt rather than the texts: an excerpt is its own excerpt, so the labels come out the same,
//! and a record is about 100–300 bytes whatever the prompt's length. Of the client's address
//! only the block the engine groups by is kept (the first 3 bytes of IPv4, 6 of IPv6), of the
//! user agent and JA4 their trimmed form. Not a serialisation of exchanges: neither the prompt nor
//! the address can be recovered from a record.
//!
//! # Layout (version 1)
//!
//! Fields one after another, with no padding. Fixed-width integers are little-endian; *varint*
//! is unsigned LEB128 (at most 10 bytes, at most 64 bits); *str* is a varint byte length then
//! that many bytes of UTF-8.
//!
//! | Field | Encoding | Present |
//! |---|---|---|
//! | version | `u8`, 1 | always |
//! | flags | `u8`: bit 0 single turn, 1 model, 2 system prompt, 3 client, 4 IPv4 block, 5 IPv6 block, 6 ASN; bit 7 zero, bits 4 and 5 not both | always |
//! | time | varint of the zigzag-encoded milliseconds since the epoch | always |
//! | cot | `u32`, the bits of the `f32` | always |
//! | cot kind | `u8`: 0 none, 1 step by step, 2 articulate reasoning, 3 show thinking, 4 rubric grading | always |
//! | jailbreak | `u32`, the bits of the `f32` | always |
//! | category | `u8`: 0 math, 1 code, 2 reasoning, 3 knowledge, 4 writing, 5 chat, 6 other | always |
//! | harvest parameters | `u8`: bit 0 large budget, 1 high effort, 2 multi n, 3 logprobs; bits 4–7 zero | always |
//! | language | `u8`: 0 Latin, 1 Cyrillic, 2 CJK, 3 Arabic, 4 Hangul, 5 kana, 6 other | always |
//! | account id | str | always |
//! | model | str | flag bit 1 |
//! | segment count | `u8`, at most 4 | always |
//! | segments | per segment: fingerprint `u64`, excerpt str | always |
//! | system prompt | fingerprint `u64`, excerpt str | flag bit 2 |
//! | client | user agent str, JA4 str, both trimmed | flag bit 3 |
//! | address block | 3 bytes (IPv4) or 6 bytes (IPv6): the address's first bytes | flag bit 4 or 5 |
//! | ASN | varint, at most `u32::MAX` | flag bit 6 |
//!
//! The fingerprints of the client build and of the address block are not stored: they are
//! computed again from the strings and the block. A decoder of another version refuses the
//! record ([`DecodeError::Version`]); any change to the layout, or to what the engine reads of a
//! text, takes a new version number.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use moat_types::Timestamp;

use super::{block_key, client_key, pack, Features};
use crate::engine::excerpt;
use crate::signals::{CotKind, HarvestParams, RequestSignals, Script, TaskCategory};
use crate::template::{Segments, MAX_SEGMENTS};

/// The format version this build writes and reads.
const VERSION: u8 = 1;

const SINGLE_TURN: u8 = 1 << 0;
const MODEL: u8 = 1 << 1;
const SYSTEM: u8 = 1 << 2;
const CLIENT: u8 = 1 << 3;
const BLOCK_V4: u8 = 1 << 4;
const BLOCK_V6: u8 = 1 << 5;
const ASN: u8 = 1 << 6;
const KNOWN_FLAGS: u8 = SINGLE_TURN | MODEL | SYSTEM | CLIENT | BLOCK_V4 | BLOCK_V6 | ASN;

/// Bytes of an IPv4 address kept: its /24.
const V4_BLOCK: usize = 3;
/// Bytes of an IPv6 address kept: its /48.
const V6_BLOCK: usize = 6;

/// Why bytes are not a feature record. Offsets count bytes from the start of the record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The first byte names a format version this build does not read.
    #[error("unsupported feature record version {found} at byte 0 (this build reads version 1)")]
    Version {
        /// The version byte found.
        found: u8,
    },
    /// The record ends (or a length points) past the end of the bytes.
    #[error(
        "feature record truncated at byte {offset}: {field} needs {needed} bytes, {left} left"
    )]
    Truncated {
        /// What was being read.
        field: &'static str,
        /// Where it starts.
        offset: usize,
        /// Bytes it needs there (for a varint, its next byte).
        needed: u64,
        /// Bytes left there.
        left: usize,
    },
    /// A varint runs past 64 bits.
    #[error("malformed varint for {field} at byte {offset}: longer than 64 bits")]
    Varint {
        /// What was being read.
        field: &'static str,
        /// Where the varint starts.
        offset: usize,
    },
    /// A string is not UTF-8.
    #[error("invalid UTF-8 in {field} at byte {offset}")]
    Utf8 {
        /// Which string.
        field: &'static str,
        /// The first byte that is not UTF-8.
        offset: usize,
    },
    /// A value outside its field's range: an unknown enum tag, reserved flag bits, too many
    /// segments, an out-of-range time or ASN.
    #[error("invalid {field} {value} at byte {offset}")]
    Invalid {
        /// Which field.
        field: &'static str,
        /// The value read.
        value: u64,
        /// Where it starts.
        offset: usize,
    },
    /// Bytes remain after a whole record.
    #[error("{left} trailing bytes after the feature record at byte {offset}")]
    Trailing {
        /// Where the record ended.
        offset: usize,
        /// Bytes after it.
        left: usize,
    },
}

impl Features {
    /// Appends the record of these features to `out` (layout in the module documentation of
    /// `features::codec`). The same features always give the same bytes.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let block = self.block.map(|(_, ip)| ip);
        let flags = flag(self.single_turn, SINGLE_TURN)
            | flag(self.has_model, MODEL)
            | flag(self.system_key.is_some(), SYSTEM)
            | flag(self.client_key.is_some(), CLIENT)
            | flag(matches!(block, Some(IpAddr::V4(_))), BLOCK_V4)
            | flag(matches!(block, Some(IpAddr::V6(_))), BLOCK_V6)
            | flag(self.asn.is_some(), ASN);
        out.push(VERSION);
        out.push(flags);
        put_varint(out, zigzag(self.ts.as_millis()));
        let s = &self.signals;
        out.extend_from_slice(&s.cot.to_bits().to_le_bytes());
        out.push(cot_kind_tag(s.cot_kind));
        out.extend_from_slice(&s.jailbreak.to_bits().to_le_bytes());
        out.push(category_tag(s.category));
        out.push(harvest_bits(s.harvest_params));
        out.push(script_tag(s.language));
        put_str(out, self.account_id());
        if let Some(model) = self.model() {
            put_str(out, model);
        }
        let segments = self.segments.as_slice();
        // At most MAX_SEGMENTS (4).
        out.push(u8::try_from(segments.len()).unwrap_or(u8::MAX));
        for &(hash, start, end) in segments {
            out.extend_from_slice(&hash.to_le_bytes());
            put_str(out, &excerpt(self.segment_text(start, end)));
        }
        if let Some((key, text)) = self.system() {
            out.extend_from_slice(&key.to_le_bytes());
            put_str(out, &excerpt(text));
        }
        if let Some((_, user_agent, ja4)) = self.client() {
            put_str(out, user_agent.trim());
            put_str(out, ja4.trim());
        }
        match block {
            Some(IpAddr::V4(v4)) => out.extend_from_slice(&v4.octets()[..V4_BLOCK]),
            Some(IpAddr::V6(v6)) => out.extend_from_slice(&v6.octets()[..V6_BLOCK]),
            None => {}
        }
        if let Some(asn) = self.asn {
            put_varint(out, u64::from(asn));
        }
    }

    /// Reads one whole record made by [`Features::encode`]. Never panics, and allocates no
    /// more than the length of `bytes`, whatever they hold.
    pub fn decode(bytes: &[u8]) -> Result<Features, DecodeError> {
        let mut r = Reader { bytes, pos: 0 };
        let version = r.u8("version")?;
        if version != VERSION {
            return Err(DecodeError::Version { found: version });
        }
        let at = r.pos;
        let flags = r.u8("flags")?;
        if flags & !KNOWN_FLAGS != 0 || flags & (BLOCK_V4 | BLOCK_V6) == BLOCK_V4 | BLOCK_V6 {
            return Err(invalid("flags", flags, at));
        }
        let has = |bit: u8| flags & bit != 0;
        let at = r.pos;
        let raw_ts = r.varint("time")?;
        let ms = unzigzag(raw_ts);
        if !(Timestamp::MIN.as_millis()..=Timestamp::MAX.as_millis()).contains(&ms) {
            return Err(invalid("time", raw_ts, at));
        }
        let signals = RequestSignals {
            cot: f32::from_bits(r.u32("cot")?),
            cot_kind: r.tag("cot kind tag", cot_kind_of)?,
            jailbreak: f32::from_bits(r.u32("jailbreak")?),
            category: r.tag("category tag", category_of)?,
            harvest_params: r.tag("harvest parameter bits", harvest_of)?,
            language: r.tag("language tag", script_of)?,
        };
        let account_id = r.str("account id")?;
        let model = if has(MODEL) {
            Some(r.str("model")?)
        } else {
            None
        };
        let at = r.pos;
        let count = r.u8("segment count")?;
        let count = usize::from(count);
        if count > MAX_SEGMENTS {
            return Err(invalid("segment count", count, at));
        }
        let mut labels = [(0u64, ""); MAX_SEGMENTS];
        for slot in labels.iter_mut().take(count) {
            let hash = r.u64("segment fingerprint")?;
            *slot = (hash, r.str("segment excerpt")?);
        }
        let labels = labels.get(..count).unwrap_or_default();
        let system = if has(SYSTEM) {
            let key = r.u64("system prompt fingerprint")?;
            Some((key, r.str("system prompt excerpt")?))
        } else {
            None
        };
        let client = if has(CLIENT) {
            let user_agent = r.str("user agent")?;
            Some((user_agent, r.str("ja4")?))
        } else {
            None
        };
        let block = if has(BLOCK_V4) {
            let mut octets = [0u8; 4];
            r.fill(&mut octets[..V4_BLOCK], "IPv4 block")?;
            Some(IpAddr::V4(Ipv4Addr::from(octets)))
        } else if has(BLOCK_V6) {
            let mut octets = [0u8; 16];
            r.fill(&mut octets[..V6_BLOCK], "IPv6 block")?;
            Some(IpAddr::V6(Ipv6Addr::from(octets)))
        } else {
            None
        };
        let asn = if has(ASN) {
            let at = r.pos;
            let asn = r.varint("asn")?;
            Some(u32::try_from(asn).map_err(|_| invalid("asn", asn, at))?)
        } else {
            None
        };
        let left = bytes.len() - r.pos;
        if left > 0 {
            return Err(DecodeError::Trailing {
                offset: r.pos,
                left,
            });
        }
        // Every string is a slice of `bytes`, so this is no longer than the record.
        if u32::try_from(bytes.len()).is_err() {
            return Err(invalid("record length", bytes.len(), 0));
        }
        let mut user_text = String::with_capacity(labels.iter().map(|l| l.1.len()).sum());
        let mut segments = Segments::default();
        for &(hash, label) in labels {
            let start = u32::try_from(user_text.len()).unwrap_or(u32::MAX);
            user_text.push_str(label);
            let end = u32::try_from(user_text.len()).unwrap_or(u32::MAX);
            segments.push((hash, start, end));
        }
        let (user_agent, ja4) = client.unwrap_or(("", ""));
        let (text, ends) = pack([
            account_id,
            model.unwrap_or_default(),
            &user_text,
            system.map_or("", |(_, s)| s),
            user_agent,
            ja4,
        ]);
        Ok(Features {
            ts: Timestamp::from_millis(ms),
            signals,
            single_turn: has(SINGLE_TURN),
            segments,
            block: block.map(|ip| (block_key(ip), ip)),
            asn,
            system_key: system.map(|(key, _)| key),
            client_key: client.map(|(u, j)| client_key(u, j)),
            has_model: model.is_some(),
            text,
            ends,
        })
    }
}

fn flag(on: bool, bit: u8) -> u8 {
    if on {
        bit
    } else {
        0
    }
}

fn invalid(field: &'static str, value: impl TryInto<u64>, offset: usize) -> DecodeError {
    DecodeError::Invalid {
        field,
        value: value.try_into().unwrap_or(u64::MAX),
        offset,
    }
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(u: u64) -> i64 {
    ((u >> 1) as i64) ^ -((u & 1) as i64)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

fn cot_kind_tag(kind: Option<CotKind>) -> u8 {
    match kind {
        None => 0,
        Some(CotKind::StepByStep) => 1,
        Some(CotKind::ArticulateReasoning) => 2,
        Some(CotKind::ShowThinking) => 3,
        Some(CotKind::RubricGrading) => 4,
    }
}

fn cot_kind_of(tag: u8) -> Option<Option<CotKind>> {
    Some(match tag {
        0 => None,
        1 => Some(CotKind::StepByStep),
        2 => Some(CotKind::ArticulateReasoning),
        3 => Some(CotKind::ShowThinking),
        4 => Some(CotKind::RubricGrading),
        _ => return None,
    })
}

fn category_tag(c: TaskCategory) -> u8 {
    match c {
        TaskCategory::Math => 0,
        TaskCategory::Code => 1,
        TaskCategory::Reasoning => 2,
        TaskCategory::Knowledge => 3,
        TaskCategory::Writing => 4,
        TaskCategory::Chat => 5,
        TaskCategory::Other => 6,
    }
}

fn category_of(tag: u8) -> Option<TaskCategory> {
    Some(match tag {
        0 => TaskCategory::Math,
        1 => TaskCategory::Code,
        2 => TaskCategory::Reasoning,
        3 => TaskCategory::Knowledge,
        4 => TaskCategory::Writing,
        5 => TaskCategory::Chat,
        6 => TaskCategory::Other,
        _ => return None,
    })
}

fn script_tag(s: Script) -> u8 {
    match s {
        Script::Latin => 0,
        Script::Cyrillic => 1,
        Script::Cjk => 2,
        Script::Arabic => 3,
        Script::Hangul => 4,
        Script::Kana => 5,
        Script::Other => 6,
    }
}

fn script_of(tag: u8) -> Option<Script> {
    Some(match tag {
        0 => Script::Latin,
        1 => Script::Cyrillic,
        2 => Script::Cjk,
        3 => Script::Arabic,
        4 => Script::Hangul,
        5 => Script::Kana,
        6 => Script::Other,
        _ => return None,
    })
}

fn harvest_bits(h: HarvestParams) -> u8 {
    flag(h.large_budget, 1) | flag(h.high_effort, 2) | flag(h.multi_n, 4) | flag(h.logprobs, 8)
}

fn harvest_of(bits: u8) -> Option<HarvestParams> {
    (bits & !0x0f == 0).then_some(HarvestParams {
        large_budget: bits & 1 != 0,
        high_effort: bits & 2 != 0,
        multi_n: bits & 4 != 0,
        logprobs: bits & 8 != 0,
    })
}

/// A cursor over a record; `pos` never passes the end of `bytes`.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// The next `n` bytes, checked against what is left before anything is sliced.
    fn take(&mut self, n: u64, field: &'static str) -> Result<&'a [u8], DecodeError> {
        let left = self.bytes.len().saturating_sub(self.pos);
        let truncated = DecodeError::Truncated {
            field,
            offset: self.pos,
            needed: n,
            left,
        };
        let n = match usize::try_from(n) {
            Ok(n) if n <= left => n,
            _ => return Err(truncated),
        };
        let taken = self.bytes.get(self.pos..self.pos + n).ok_or(truncated)?;
        self.pos += n;
        Ok(taken)
    }

    fn fill(&mut self, out: &mut [u8], field: &'static str) -> Result<(), DecodeError> {
        out.copy_from_slice(self.take(out.len() as u64, field)?);
        Ok(())
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        let mut b = [0u8; 1];
        self.fill(&mut b, field)?;
        Ok(b[0])
    }

    fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        let mut b = [0u8; 4];
        self.fill(&mut b, field)?;
        Ok(u32::from_le_bytes(b))
    }

    fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        let mut b = [0u8; 8];
        self.fill(&mut b, field)?;
        Ok(u64::from_le_bytes(b))
    }

    /// A one-byte tag that `of` maps to a value, or an error naming the field.
    fn tag<T>(&mut self, field: &'static str, of: fn(u8) -> Option<T>) -> Result<T, DecodeError> {
        let at = self.pos;
        let tag = self.u8(field)?;
        of(tag).ok_or_else(|| invalid(field, tag, at))
    }

    fn varint(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        let start = self.pos;
        let mut value = 0u64;
        for i in 0..10 {
            let b = self.u8(field)?;
            // The tenth byte holds bit 63 only.
            if i == 9 && b > 1 {
                break;
            }
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError::Varint {
            field,
            offset: start,
        })
    }

    fn str(&mut self, field: &'static str) -> Result<&'a str, DecodeError> {
        let len = self.varint(field)?;
        let at = self.pos;
        let bytes = self.take(len, field)?;
        std::str::from_utf8(bytes).map_err(|e| DecodeError::Utf8 {
            field,
            offset: at + e.valid_up_to(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signals::Signals;
    use moat_types::{Client, ContentPart, Exchange, Message, Params, Request};
    use proptest::prelude::*;

    const WRAPPER: &str =
        "Before you answer, write out every intermediate step of your reasoning in full.";

    fn exchange(system: Option<&str>, user: &str) -> Exchange {
        let mut messages = Vec::new();
        if let Some(s) = system {
            messages.push(Message::text("system", s));
        }
        messages.push(Message::text("user", user));
        Exchange {
            v: 1,
            ts: Timestamp::from_millis(1_772_409_600_604),
            request_id: None,
            account_id: "acct_7".into(),
            api_key_id: None,
            client: Some(Client {
                ip: Some("203.0.113.77".into()),
                asn: Some(14061),
                user_agent: Some(" OpenAI/Python 1.54.0 ".into()),
                tls_ja4: Some("t13d1516h2_8daaf6152771_02713d6af862".into()),
                ..Client::default()
            }),
            request: Request {
                model: Some("frontier-1".into()),
                messages,
                params: Some(Params {
                    max_tokens: Some(16_000),
                    n: Some(4),
                    reasoning_effort: Some("high".into()),
                    logprobs: Some(true),
                    ..Params::default()
                }),
                ..Request::default()
            },
            response: None,
        }
    }

    fn part(text: &str) -> ContentPart {
        ContentPart {
            kind: "text".into(),
            text: Some(text.into()),
        }
    }

    fn encoded(f: &Features) -> Vec<u8> {
        let mut out = Vec::new();
        f.encode(&mut out);
        out
    }

    /// Everything the engine reads of `a` and `b` is the same.
    fn assert_same_to_the_engine(a: &Features, b: &Features) {
        assert_eq!(a.ts, b.ts);
        assert_eq!(a.signals.cot.to_bits(), b.signals.cot.to_bits());
        assert_eq!(a.signals.jailbreak.to_bits(), b.signals.jailbreak.to_bits());
        assert_eq!(a.signals, b.signals);
        assert_eq!(a.single_turn, b.single_turn);
        assert_eq!(a.account_id(), b.account_id());
        assert_eq!(a.model(), b.model());
        let (sa, sb) = (a.segments.as_slice(), b.segments.as_slice());
        assert_eq!(sa.len(), sb.len());
        for (&(ha, a0, a1), &(hb, b0, b1)) in sa.iter().zip(sb) {
            assert_eq!(ha, hb);
            assert_eq!(
                excerpt(a.segment_text(a0, a1)),
                excerpt(b.segment_text(b0, b1))
            );
        }
        assert_eq!(
            a.system().map(|(k, t)| (k, excerpt(t))),
            b.system().map(|(k, t)| (k, excerpt(t)))
        );
        assert_eq!(
            a.client().map(|(k, u, j)| (k, u.trim(), j.trim())),
            b.client().map(|(k, u, j)| (k, u.trim(), j.trim()))
        );
        assert_eq!(
            a.block.map(|(k, ip)| (k, super::super::block_of(ip))),
            b.block.map(|(k, ip)| (k, super::super::block_of(ip)))
        );
        assert_eq!(a.asn, b.asn);
    }

    fn round_trip(f: &Features) -> Features {
        let bytes = encoded(f);
        let back = Features::decode(&bytes).unwrap();
        assert_same_to_the_engine(f, &back);
        // Canonical: the decoded features encode to the same bytes.
        assert_eq!(encoded(&back), bytes);
        back
    }

    #[test]
    fn round_trips_every_field() {
        let x = exchange(
            Some("You are a meticulous tutor.   Always   show the full derivation."),
            &format!("{WRAPPER}\nWhat is 17 * 23?\nAnswer in the format: Final answer: <n>."),
        );
        let f = Features::of(&x);
        assert!(f.system_key.is_some() && f.client_key.is_some() && f.block.is_some());
        assert!(f.segments.as_slice().len() >= 2);
        assert!(f.signals.harvest_params.count() == 4 && f.signals.cot > 0.0);
        let back = round_trip(&f);
        assert_eq!(
            back.block.map(|(_, ip)| ip.to_string()).as_deref(),
            Some("203.0.113.0")
        );
        assert_eq!(back.client().map(|c| c.1), Some("OpenAI/Python 1.54.0"));
        assert_eq!(
            back.system().map(|s| s.1),
            Some("You are a meticulous tutor. Always show the full derivation.")
        );
    }

    #[test]
    fn round_trips_sparse_and_unusual_features() {
        let mut bare = exchange(None, "hi");
        bare.client = None;
        bare.request.model = None;
        bare.request.params = None;
        let mut v6 = exchange(
            None,
            "Переведите, пожалуйста, этот длинный абзац на английский язык.",
        );
        if let Some(c) = v6.client.as_mut() {
            c.ip = Some("2001:db8:abcd:12::1".into());
            c.asn = Some(u32::MAX);
            c.user_agent = None;
        }
        v6.ts = Timestamp::MIN;
        let mut parts = exchange(None, "");
        parts.ts = Timestamp::MAX;
        parts.request.messages = vec![
            Message::text("user", "first"),
            Message::text("assistant", "ok"),
            Message {
                role: "user".into(),
                content: Some(moat_types::Content::Parts(vec![
                    part("これは日本語の長い質問です。どう思いますか？"),
                    ContentPart {
                        kind: "image_url".into(),
                        text: None,
                    },
                    part(WRAPPER),
                ])),
            },
        ];
        let mut completion = exchange(None, "");
        completion.request.messages.clear();
        completion.request.prompt = Some(format!("{WRAPPER} Complete: the quick brown fox"));
        for x in [bare, v6, parts, completion] {
            round_trip(&Features::of(&x));
        }
    }

    #[test]
    fn long_texts_keep_only_their_excerpts() {
        let question = "word ".repeat(2000);
        let x = exchange(
            Some(&"You are a helpful assistant. ".repeat(200)),
            &format!("{WRAPPER}\n{question}\n{WRAPPER} Thanks."),
        );
        let f = Features::of(&x);
        let bytes = encoded(&f);
        assert!(bytes.len() < 1000, "{}", bytes.len());
        round_trip(&f);
    }

    #[test]
    fn float_bits_are_kept_exactly() {
        let mut f = Features::of(&exchange(None, "hello there"));
        for bits in [
            0x3f00_0001u32,
            0x8000_0000,
            0x7fc0_1234,
            0x0000_0001,
            0x7f80_0000,
        ] {
            f.signals.cot = f32::from_bits(bits);
            f.signals.jailbreak = f32::from_bits(bits ^ 1);
            let back = Features::decode(&encoded(&f)).unwrap();
            assert_eq!(back.signals.cot.to_bits(), bits);
            assert_eq!(back.signals.jailbreak.to_bits(), bits ^ 1);
        }
    }

    #[test]
    fn every_tag_round_trips() {
        for tag in 0..=u8::MAX {
            if let Some(k) = cot_kind_of(tag) {
                assert_eq!(cot_kind_tag(k), tag);
            }
            if let Some(c) = category_of(tag) {
                assert_eq!(category_tag(c), tag);
            }
            if let Some(s) = script_of(tag) {
                assert_eq!(script_tag(s), tag);
            }
            if let Some(h) = harvest_of(tag) {
                assert_eq!(harvest_bits(h), tag);
            }
        }
        for c in TaskCategory::ALL {
            assert_eq!(category_of(category_tag(c)), Some(c));
        }
    }

    #[test]
    fn varints_and_zigzag_round_trip() {
        for v in [
            0u64,
            1,
            127,
            128,
            300,
            u64::from(u32::MAX),
            u64::MAX - 1,
            u64::MAX,
        ] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert!(out.len() <= 10);
            let mut r = Reader {
                bytes: &out,
                pos: 0,
            };
            assert_eq!(r.varint("v"), Ok(v));
            assert_eq!(r.pos, out.len());
        }
        for v in [0i64, -1, 1, i64::MIN, i64::MAX, 1_772_409_600_000] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
    }

    /// A valid record with the fields at known offsets: version 0, flags 1, time 2..8, cot
    /// 8..12, cot kind 12, jailbreak 13..17, category 17, harvest 18, language 19, account id
    /// length 20 and bytes 21..27, segment count 27.
    fn minimal() -> Vec<u8> {
        let mut x = exchange(None, "hi");
        x.client = None;
        x.request.model = None;
        let f = Features::of(&x);
        let bytes = encoded(&f);
        assert_eq!(bytes.len(), 28);
        assert_eq!(bytes[20], 6);
        bytes
    }

    fn message(bytes: &[u8]) -> String {
        Features::decode(bytes).unwrap_err().to_string()
    }

    #[test]
    fn error_version() {
        let mut b = minimal();
        b[0] = 2;
        let e = Features::decode(&b).unwrap_err();
        assert_eq!(e, DecodeError::Version { found: 2 });
        assert_eq!(
            e.to_string(),
            "unsupported feature record version 2 at byte 0 (this build reads version 1)"
        );
    }

    #[test]
    fn error_truncated() {
        assert_eq!(
            message(&[]),
            "feature record truncated at byte 0: version needs 1 bytes, 0 left"
        );
        let b = minimal();
        assert_eq!(
            message(&b[..24]),
            "feature record truncated at byte 21: account id needs 6 bytes, 3 left"
        );
        assert_eq!(
            message(&b[..27]),
            "feature record truncated at byte 27: segment count needs 1 bytes, 0 left"
        );
        // A length far beyond the record is refused before anything is allocated.
        let mut huge = b[..20].to_vec();
        put_varint(&mut huge, u64::MAX);
        assert_eq!(
            message(&huge),
            format!(
                "feature record truncated at byte 30: account id needs {} bytes, 0 left",
                u64::MAX
            )
        );
    }

    #[test]
    fn error_varint() {
        let mut b = minimal()[..2].to_vec();
        b.extend([0xff; 10]);
        assert_eq!(
            message(&b),
            "malformed varint for time at byte 2: longer than 64 bits"
        );
    }

    #[test]
    fn error_utf8() {
        let mut b = minimal();
        b[23] = 0xff;
        let e = Features::decode(&b).unwrap_err();
        assert_eq!(
            e,
            DecodeError::Utf8 {
                field: "account id",
                offset: 23
            }
        );
        assert_eq!(e.to_string(), "invalid UTF-8 in account id at byte 23");
    }

    #[test]
    fn error_invalid() {
        let b = minimal();
        let with = |at: usize, v: u8| {
            let mut b = b.clone();
            b[at] = v;
            message(&b)
        };
        assert_eq!(with(1, 0x80), "invalid flags 128 at byte 1");
        assert_eq!(with(1, BLOCK_V4 | BLOCK_V6), "invalid flags 48 at byte 1");
        assert_eq!(with(12, 5), "invalid cot kind tag 5 at byte 12");
        assert_eq!(with(17, 7), "invalid category tag 7 at byte 17");
        assert_eq!(
            with(18, 0x10),
            "invalid harvest parameter bits 16 at byte 18"
        );
        assert_eq!(with(19, 200), "invalid language tag 200 at byte 19");
        assert_eq!(with(27, 5), "invalid segment count 5 at byte 27");
        let mut t = b[..2].to_vec();
        put_varint(&mut t, zigzag(Timestamp::MAX.as_millis() + 1));
        assert_eq!(
            message(&t),
            format!(
                "invalid time {} at byte 2",
                zigzag(Timestamp::MAX.as_millis() + 1)
            )
        );
        let mut a = b.clone();
        a[1] |= ASN;
        put_varint(&mut a, 1 << 32);
        assert_eq!(message(&a), "invalid asn 4294967296 at byte 28");
    }

    #[test]
    fn error_trailing() {
        let mut b = minimal();
        b.extend([0, 0]);
        assert_eq!(
            message(&b),
            "2 trailing bytes after the feature record at byte 28"
        );
    }

    proptest! {
        #[test]
        fn excerpts_are_their_own_excerpts(text in "(\\PC|[ \t\n\u{a0}\u{3000}.]){0,400}") {
            let once = excerpt(&text);
            prop_assert_eq!(excerpt(&once), once);
        }

        #[test]
        fn any_prompt_round_trips(
            head in "(\\PC|[ \n.?]){0,300}",
            tail in "(\\PC|[ \n.?]){0,300}",
            system in proptest::option::of("(\\PC|[ \n]){0,200}"),
            ip in proptest::option::of(any::<std::net::IpAddr>()),
            ts in any::<i64>(),
        ) {
            let mut x = exchange(system.as_deref(), &format!("{head}\n{WRAPPER}\n{tail}"));
            x.ts = Timestamp::from_millis(ts);
            if let Some(c) = x.client.as_mut() {
                c.ip = ip.map(|ip| ip.to_string());
            }
            round_trip(&Features::with(Signals::global(), &x));
        }
    }
}

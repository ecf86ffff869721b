//! [`Timestamp`]: an instant in UTC with millisecond precision, written as RFC 3339.
//!
//! Detection compares and subtracts timestamps millions of times, so the type is a plain
//! `i64` of milliseconds since the Unix epoch rather than a calendar structure. Parsing accepts
//! any RFC 3339 offset and converts to UTC; finer than millisecond precision is truncated.
//! Formatting always writes `YYYY-MM-DDTHH:MM:SS.mmmZ`.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Milliseconds since 1970-01-01T00:00:00Z.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(i64);

/// A timestamp that is not RFC 3339 or lies outside years 0000–9999.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid RFC 3339 timestamp {text:?}: {reason}")]
pub struct TimestampError {
    text: String,
    reason: String,
}

/// Milliseconds in common units, for readable arithmetic.
impl Timestamp {
    /// One second in milliseconds.
    pub const SECOND: i64 = 1_000;
    /// One minute in milliseconds.
    pub const MINUTE: i64 = 60 * Self::SECOND;
    /// One hour in milliseconds.
    pub const HOUR: i64 = 60 * Self::MINUTE;
    /// One day in milliseconds.
    pub const DAY: i64 = 24 * Self::HOUR;

    /// Smallest representable instant (0000-01-01T00:00:00Z).
    pub const MIN: Timestamp = Timestamp(-62_167_219_200_000);
    /// Largest representable instant (9999-12-31T23:59:59.999Z).
    pub const MAX: Timestamp = Timestamp(253_402_300_799_999);

    /// Builds a timestamp from milliseconds since the epoch, clamped to years 0000–9999.
    pub fn from_millis(ms: i64) -> Self {
        Timestamp(ms.clamp(Self::MIN.0, Self::MAX.0))
    }

    /// Milliseconds since the epoch.
    pub fn as_millis(self) -> i64 {
        self.0
    }

    /// This instant shifted by `ms` milliseconds (clamped to the representable range).
    pub fn plus_millis(self, ms: i64) -> Self {
        Self::from_millis(self.0.saturating_add(ms))
    }

    /// Index of the UTC day (days since the epoch, floor division).
    pub fn day_index(self) -> i64 {
        self.0.div_euclid(Self::DAY)
    }

    /// Parses RFC 3339 text (any offset), truncating to milliseconds.
    pub fn parse(text: &str) -> Result<Self, TimestampError> {
        if let Some(ts) = parse_fast(text.as_bytes()) {
            return Ok(ts);
        }
        let err = |reason: String| TimestampError {
            text: text.chars().take(64).collect(),
            reason,
        };
        let dt = OffsetDateTime::parse(text, &Rfc3339).map_err(|e| err(e.to_string()))?;
        let ms = dt.unix_timestamp_nanos().div_euclid(1_000_000);
        let ms = i64::try_from(ms).map_err(|_| err("out of range".into()))?;
        if !(Self::MIN.0..=Self::MAX.0).contains(&ms) {
            return Err(err("outside years 0000-9999".into()));
        }
        Ok(Timestamp(ms))
    }

    /// Writes the canonical form into `out` (exactly 24 bytes).
    pub fn write_to(self, out: &mut [u8; 24]) {
        let days = self.0.div_euclid(Self::DAY);
        let ms_of_day = self.0.rem_euclid(Self::DAY);
        let (y, m, d) = civil_from_days(days);
        let h = ms_of_day / Self::HOUR;
        let mi = (ms_of_day / Self::MINUTE) % 60;
        let s = (ms_of_day / Self::SECOND) % 60;
        let ms = ms_of_day % 1000;
        let put = |out: &mut [u8; 24], at: usize, width: usize, mut v: i64| {
            for i in (0..width).rev() {
                // `v` is non-negative and below 10^width for every field, so the digit fits.
                out[at + i] = b'0' + (v % 10) as u8;
                v /= 10;
            }
        };
        put(out, 0, 4, y);
        out[4] = b'-';
        put(out, 5, 2, m);
        out[7] = b'-';
        put(out, 8, 2, d);
        out[10] = b'T';
        put(out, 11, 2, h);
        out[13] = b':';
        put(out, 14, 2, mi);
        out[16] = b':';
        put(out, 17, 2, s);
        out[19] = b'.';
        put(out, 20, 3, ms);
        out[23] = b'Z';
    }
}

/// Parses the common canonical shapes `YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z` without allocation.
/// Returns `None` for anything else, which then goes through the general parser.
fn parse_fast(b: &[u8]) -> Option<Timestamp> {
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !(b[10] == b'T' || b[10] == b't') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' || !matches!(b[b.len() - 1], b'Z' | b'z') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let mut v = 0i64;
        for &c in &b[r] {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + i64::from(c - b'0');
        }
        Some(v)
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || s > 59 {
        return None;
    }
    let mut ms = 0i64;
    let rest = &b[19..b.len() - 1];
    if !rest.is_empty() {
        if rest[0] != b'.' || rest.len() < 2 || rest.len() > 10 {
            return None;
        }
        let frac = &rest[1..];
        for (i, &c) in frac.iter().enumerate() {
            if !c.is_ascii_digit() {
                return None;
            }
            if i < 3 {
                ms += i64::from(c - b'0') * [100, 10, 1][i];
            }
        }
    }
    let days = days_from_civil(y, mo, d);
    Some(Timestamp(
        days * Timestamp::DAY + h * Timestamp::HOUR + mi * Timestamp::MINUTE + s * 1000 + ms,
    ))
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since the epoch of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Inverse of [`days_from_civil`].
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; 24];
        self.write_to(&mut buf);
        // Every byte written by `write_to` is ASCII.
        f.write_str(std::str::from_utf8(&buf).map_err(|_| fmt::Error)?)
    }
}

impl std::str::FromStr for Timestamp {
    type Err = TimestampError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Timestamp::parse(s)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; 24];
        self.write_to(&mut buf);
        s.serialize_str(std::str::from_utf8(&buf).map_err(serde::ser::Error::custom)?)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Timestamp;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an RFC 3339 timestamp string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Timestamp, E> {
                Timestamp::parse(v).map_err(E::custom)
            }
        }
        d.deserialize_str(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_canonical_and_offset_forms() {
        let a = Timestamp::parse("2026-04-01T12:00:00.123Z").unwrap();
        assert_eq!(a.to_string(), "2026-04-01T12:00:00.123Z");
        let b = Timestamp::parse("2026-04-01T14:00:00.123+02:00").unwrap();
        assert_eq!(a, b);
        let c = Timestamp::parse("2026-04-01T12:00:00Z").unwrap();
        assert_eq!(c.to_string(), "2026-04-01T12:00:00.000Z");
        assert_eq!(
            Timestamp::parse("1970-01-01T00:00:00.000000001Z").unwrap(),
            Timestamp(0)
        );
    }

    #[test]
    fn rejects_non_rfc3339() {
        for bad in [
            "",
            "2026-04-01",
            "2026-13-01T00:00:00Z",
            "2026-02-30T00:00:00Z",
            "yesterday",
        ] {
            assert!(Timestamp::parse(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn display_parse_round_trips(ms in Timestamp::MIN.0..=Timestamp::MAX.0) {
            let ts = Timestamp(ms);
            prop_assert_eq!(Timestamp::parse(&ts.to_string()).unwrap(), ts);
        }

        #[test]
        fn fast_path_agrees_with_time_crate(ms in 0i64..=Timestamp::MAX.0) {
            let text = Timestamp(ms).to_string();
            let dt = OffsetDateTime::parse(&text, &Rfc3339).unwrap();
            prop_assert_eq!(dt.unix_timestamp_nanos() / 1_000_000, i128::from(ms));
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,40}") {
            let _ = Timestamp::parse(&s);
        }
    }
}

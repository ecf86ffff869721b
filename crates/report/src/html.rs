//! Small `Display` helpers for writing HTML: escaping of untrusted text, and the number, time
//! and duration formats the report uses everywhere.
//!
//! Every string that comes from the input goes through [`Esc`], in element content and in
//! attribute values alike (it escapes both quote characters), so no input can open a tag, an
//! attribute or a script.

use std::fmt::{self, Write};

use moat_types::Timestamp;

/// Text escaped for HTML element content and quoted attribute values. Control characters
/// (other than newline and tab) and characters that reorder or hide text are replaced by
/// U+FFFD, so an account id or user agent cannot disguise itself.
pub(crate) struct Esc<'a>(pub &'a str);

impl fmt::Display for Esc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut start = 0;
        for (i, c) in self.0.char_indices() {
            let rep = match c {
                '&' => "&amp;",
                '<' => "&lt;",
                '>' => "&gt;",
                '"' => "&quot;",
                '\'' => "&#39;",
                '\n' | '\t' => continue,
                c if c.is_control() || is_format(c) => "\u{FFFD}",
                _ => continue,
            };
            f.write_str(&self.0[start..i])?;
            f.write_str(rep)?;
            start = i + c.len_utf8();
        }
        f.write_str(&self.0[start..])
    }
}

/// Bidirectional controls and invisible formatting characters.
fn is_format(c: char) -> bool {
    matches!(c,
        '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}'
        | '\u{061C}' | '\u{FEFF}' | '\u{E0000}'..='\u{E007F}')
}

/// An integer with thousands separators: `1,085,263`.
pub(crate) struct Num(pub u64);

impl fmt::Display for Num {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.0.to_string();
        let n = digits.len();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (n - i) % 3 == 0 {
                f.write_char(',')?;
            }
            f.write_char(c)?;
        }
        Ok(())
    }
}

/// `part / whole` as a percentage with one decimal (`12.5%`; two below 0.1%), or `–` when
/// `whole` is 0.
pub(crate) struct Pct(pub u64, pub u64);

impl fmt::Display for Pct {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.1 == 0 {
            return f.write_str("–");
        }
        let p = 100.0 * self.0 as f64 / self.1 as f64;
        // No markup characters here: percentages also go into SVG descriptions.
        if p > 0.0 && p < 0.01 {
            f.write_str("under 0.01%")
        } else if p > 0.0 && p < 0.1 {
            write!(f, "{p:.2}%")
        } else {
            write!(f, "{p:.1}%")
        }
    }
}

/// A timestamp to the minute: `2026-03-02 04:00 UTC`.
pub(crate) struct Minute(pub Timestamp);

impl fmt::Display for Minute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; 24];
        self.0.write_to(&mut buf);
        let s = std::str::from_utf8(&buf).map_err(|_| fmt::Error)?;
        write!(f, "{} {} UTC", &s[..10], &s[11..16])
    }
}

/// An optional timestamp, `–` when absent.
pub(crate) struct MaybeMinute(pub Option<Timestamp>);

impl fmt::Display for MaybeMinute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(t) => Minute(t).fmt(f),
            None => f.write_str("–"),
        }
    }
}

/// A duration in milliseconds, to two units: `3 d 4 h`, `2 h 15 min`, `40 s`.
pub(crate) struct Duration(pub i64);

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0;
        if ms < 0 {
            f.write_str("−")?;
        }
        let s = ms.unsigned_abs() / 1000;
        let (d, h, m) = (s / 86_400, (s / 3600) % 24, (s / 60) % 60);
        if d > 0 {
            write!(f, "{d} d {h} h")
        } else if h > 0 {
            write!(f, "{h} h {m} min")
        } else if m > 0 {
            write!(f, "{m} min")
        } else {
            write!(f, "{s} s")
        }
    }
}

/// A score or risk in [0, 1] with three decimals.
pub(crate) struct Score(pub f64);

impl fmt::Display for Score {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_finite() {
            write!(f, "{:.3}", self.0)
        } else {
            f.write_str("–")
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn escapes_markup_quotes_and_hidden_characters() {
        assert_eq!(
            Esc("<script>alert('x')</script> & \"q\"").to_string(),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
        assert_eq!(
            Esc("a\u{202E}b\u{0}c\nd").to_string(),
            "a\u{FFFD}b\u{FFFD}c\nd"
        );
    }

    #[test]
    fn formats_numbers_and_durations() {
        assert_eq!(Num(0).to_string(), "0");
        assert_eq!(Num(1_085_263).to_string(), "1,085,263");
        assert_eq!(Num(100).to_string(), "100");
        assert_eq!(Pct(1, 8).to_string(), "12.5%");
        assert_eq!(Pct(1, 0).to_string(), "–");
        assert_eq!(Duration(3 * 3_600_000 + 120_000).to_string(), "3 h 2 min");
        assert_eq!(Duration(90_000_000).to_string(), "1 d 1 h");
        let t = Timestamp::parse("2026-03-02T04:05:06.789Z").unwrap();
        assert_eq!(Minute(t).to_string(), "2026-03-02 04:05 UTC");
    }
}

//! The crate's one error type, and the arithmetic that turns byte offsets into line:column.
//!
//! Every load failure names the file, the 1-based line and column (counted in characters), and
//! the rule when one is known, so that an operator can jump straight to the problem. Messages
//! never quote more of the file than a key, a field name or a short value.

use std::ops::Range;

/// Why a policy file was rejected.
///
/// Displays as `policy.toml:12:24: rule "x": unknown field "acount.risk"`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// A problem with the file as a whole: TOML syntax, an unknown top-level key, the version,
    /// the default action, or a rule whose name is not known yet.
    #[error("{origin}:{line}:{column}: {reason}")]
    File {
        /// The file name given to [`crate::Policy::parse`].
        origin: String,
        /// 1-based line.
        line: usize,
        /// 1-based column, in characters.
        column: usize,
        /// What is wrong, lower-case, without a trailing period.
        reason: String,
    },
    /// A problem inside a named rule.
    #[error("{origin}:{line}:{column}: rule {rule:?}: {reason}")]
    Rule {
        /// The file name given to [`crate::Policy::parse`].
        origin: String,
        /// 1-based line.
        line: usize,
        /// 1-based column, in characters.
        column: usize,
        /// The rule's name.
        rule: String,
        /// What is wrong, lower-case, without a trailing period.
        reason: String,
    },
}

impl PolicyError {
    /// The 1-based line of the problem.
    pub fn line(&self) -> usize {
        match self {
            PolicyError::File { line, .. } | PolicyError::Rule { line, .. } => *line,
        }
    }

    /// The 1-based column of the problem, in characters.
    pub fn column(&self) -> usize {
        match self {
            PolicyError::File { column, .. } | PolicyError::Rule { column, .. } => *column,
        }
    }

    /// The rule the problem is in, when known.
    pub fn rule(&self) -> Option<&str> {
        match self {
            PolicyError::File { .. } => None,
            PolicyError::Rule { rule, .. } => Some(rule),
        }
    }

    /// What is wrong, without the location.
    pub fn reason(&self) -> &str {
        match self {
            PolicyError::File { reason, .. } | PolicyError::Rule { reason, .. } => reason,
        }
    }
}

/// 1-based line and character column of byte `offset` in `text`. Offsets past the end or inside
/// a character are clamped rather than trusted, since they come from spans of hostile input.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// Maps a byte offset inside the decoded value of a TOML string to a byte offset in the file.
///
/// `span` is the span of the string token, quotes included. All four TOML string forms are
/// handled by replaying their decoding; when the raw text does not look like what we expect
/// (which would be a bug, not bad input) the start of the token is returned, so the error still
/// points at the right line.
pub(crate) fn string_offset(text: &str, span: &Range<usize>, decoded_offset: usize) -> usize {
    replay_string(text, span, decoded_offset).unwrap_or(span.start)
}

fn replay_string(text: &str, span: &Range<usize>, target: usize) -> Option<usize> {
    let raw = text.get(span.start..span.end)?;
    let (multi, basic) = if raw.starts_with("\"\"\"") {
        (true, true)
    } else if raw.starts_with("'''") {
        (true, false)
    } else if raw.starts_with('"') {
        (false, true)
    } else if raw.starts_with('\'') {
        (false, false)
    } else {
        return None;
    };
    let mut pos = if multi { 3 } else { 1 };
    // A newline right after the opening delimiter of a multi-line string is trimmed.
    if multi {
        if raw[pos..].starts_with("\r\n") {
            pos += 2;
        } else if raw[pos..].starts_with('\n') {
            pos += 1;
        }
    }
    let mut decoded = 0;
    loop {
        let rest = raw.get(pos..)?;
        // A line-ending backslash swallows all following whitespace; skip it even when the
        // target is reached, so that the offset lands on the next decoded character.
        if basic && multi && rest.starts_with('\\') {
            let after = &rest[1..];
            if after.starts_with([' ', '\t', '\r', '\n']) {
                let skip = after
                    .find(|c: char| !matches!(c, ' ' | '\t' | '\r' | '\n'))
                    .unwrap_or(after.len());
                pos += 1 + skip;
                continue;
            }
        }
        if decoded >= target {
            break;
        }
        let c = rest.chars().next()?;
        if basic && c == '\\' {
            let next = rest[1..].chars().next()?;
            match next {
                'u' | 'U' => {
                    let n = if next == 'u' { 4 } else { 8 };
                    let hex = rest.get(2..2 + n)?;
                    let ch = char::from_u32(u32::from_str_radix(hex, 16).ok()?)?;
                    decoded += ch.len_utf8();
                    pos += 2 + n;
                }
                'x' => {
                    // TOML 1.1 `\xHH`; harmless to accept when replaying.
                    let hex = rest.get(2..4)?;
                    let ch = char::from_u32(u32::from_str_radix(hex, 16).ok()?)?;
                    decoded += ch.len_utf8();
                    pos += 4;
                }
                _ => {
                    decoded += 1;
                    pos += 1 + next.len_utf8();
                }
            }
        } else {
            decoded += c.len_utf8();
            pos += c.len_utf8();
        }
    }
    Some(span.start + pos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_characters_not_bytes() {
        let text = "a\nbé c\n";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 2), (2, 1));
        assert_eq!(line_col(text, 5), (2, 3));
        // Inside a multi-byte character and past the end are clamped, not trusted.
        assert_eq!(line_col(text, 4), (2, 2));
        assert_eq!(line_col(text, 999), (3, 1));
    }

    fn locate(raw: &str, decoded_offset: usize) -> usize {
        string_offset(raw, &(0..raw.len()), decoded_offset)
    }

    #[test]
    fn string_offsets_replay_each_toml_string_form() {
        assert_eq!(locate("'ab c'", 3), 4);
        assert_eq!(locate("\"ab c\"", 3), 4);
        assert_eq!(locate(r#""\"x\" y""#, 4), 7);
        assert_eq!(locate(r#""\u00e9 y""#, 3), 8);
        assert_eq!(locate("'''\nab c'''", 3), 7);
        assert_eq!(locate("\"\"\"\nab \\\n   c\"\"\"", 3), 12);
        assert_eq!(locate("not a string", 3), 0);
    }
}

//! The STIX 2.1 patterning language (section 9) read from outside: a recursive-descent parser
//! from pattern text to a [`Pattern`] tree, which [`crate::Feed`] compiles into lookups.
//!
//! The whole grammar parses: observation expressions in brackets combined with `AND`, `OR`,
//! `FOLLOWEDBY` and parentheses, the `WITHIN`, `REPEATS` and `START`/`STOP` qualifiers,
//! comparison expressions combined with `AND`, `OR` and parentheses, every operator (with
//! `NOT`), object paths with quoted properties and list indexes, and every literal (strings,
//! integers, floats, booleans, `t'…'`, `b'…'`, `h'…'`, sets). Comments and whitespace are
//! skipped as the grammar says. Errors give the byte offset and what was expected.
//!
//! Hostile input is bounded: patterns over [`MAX_PATTERN_BYTES`] are refused before lexing,
//! parentheses may nest [`MAX_PATTERN_DEPTH`] deep and an observation expression carries at
//! most [`MAX_QUALIFIERS`] qualifiers, so the parser's recursion (and the tree's) stays shallow.
//!
//! Not an evaluator: what a pattern means against observed data is left to whoever compiles
//! the tree (the feed matches a small subset against requests).

use moat_types::Timestamp;

use crate::IntelError;

/// Longest pattern accepted, in bytes.
pub const MAX_PATTERN_BYTES: usize = 64 * 1024;

/// Deepest nesting of parentheses accepted.
pub const MAX_PATTERN_DEPTH: usize = 64;

/// Most qualifiers after one observation expression.
pub const MAX_QUALIFIERS: usize = 3;

/// An observation expression: the whole of a pattern, or a part of one.
#[derive(Debug, Clone, PartialEq)]
pub enum Pattern {
    /// `[ comparison ]`: one observation.
    Observation(Comparison),
    /// `a AND b AND …` (two or more operands).
    And(Vec<Pattern>),
    /// `a OR b OR …` (two or more operands).
    Or(Vec<Pattern>),
    /// `a FOLLOWEDBY b FOLLOWEDBY …` (two or more operands).
    FollowedBy(Vec<Pattern>),
    /// An observation expression with a qualifier after it.
    Qualified(Box<Pattern>, Qualifier),
}

/// What follows an observation expression to constrain it in time or count.
#[derive(Debug, Clone, PartialEq)]
pub enum Qualifier {
    /// `WITHIN n SECONDS` (n positive, integer or decimal).
    Within(f64),
    /// `REPEATS n TIMES` (n positive).
    Repeats(u64),
    /// `START t'…' STOP t'…'`: the two timestamps as written.
    StartStop {
        /// The start, STIX timestamp text.
        start: String,
        /// The stop, STIX timestamp text.
        stop: String,
    },
}

/// A comparison expression: the inside of an observation's brackets.
#[derive(Debug, Clone, PartialEq)]
pub enum Comparison {
    /// One property test.
    Test(Test),
    /// `a AND b AND …` (two or more operands).
    And(Vec<Comparison>),
    /// `a OR b OR …` (two or more operands).
    Or(Vec<Comparison>),
}

/// One property test: `path [NOT] operator operand`, or `EXISTS path`.
#[derive(Debug, Clone, PartialEq)]
pub struct Test {
    /// The property tested.
    pub path: ObjectPath,
    /// Whether `NOT` came before the operator.
    pub negated: bool,
    /// The operator.
    pub op: Operator,
    /// What the property is compared with.
    pub operand: Operand,
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    /// `=` (or `==`).
    Eq,
    /// `!=` (or `<>`).
    Ne,
    /// `>`.
    Gt,
    /// `<`.
    Lt,
    /// `>=`.
    Ge,
    /// `<=`.
    Le,
    /// `IN (…)`.
    In,
    /// `LIKE '…'`.
    Like,
    /// `MATCHES '…'`.
    Matches,
    /// `ISSUBSET '…'`.
    IsSubset,
    /// `ISSUPERSET '…'`.
    IsSuperset,
    /// `EXISTS path` (no operand).
    Exists,
}

/// The right-hand side of a test.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    /// None (`EXISTS`).
    None,
    /// One literal.
    Literal(Literal),
    /// A set (`IN`), possibly empty.
    Set(Vec<Literal>),
}

/// A literal value.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// An integer.
    Int(i64),
    /// A decimal number.
    Float(f64),
    /// A string, escapes resolved.
    Str(String),
    /// `true` or `false`.
    Bool(bool),
    /// `t'…'`: a STIX timestamp, as written.
    Timestamp(String),
    /// `b'…'`: base64, decoded.
    Binary(Vec<u8>),
    /// `h'…'`: hex, decoded.
    Hex(Vec<u8>),
}

/// `type:property(.property | [index] | [*])*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectPath {
    /// The cyber-observable type (`ipv4-addr`).
    pub object_type: String,
    /// The steps after the colon; the first is always a [`PathStep::Property`].
    pub steps: Vec<PathStep>,
}

/// One step of an [`ObjectPath`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathStep {
    /// A property, quoted or not, escapes resolved.
    Property(String),
    /// A list index (`[0]`, `[-1]`).
    Index(i64),
    /// Any list element (`[*]`).
    Any,
}

impl ObjectPath {
    /// Whether the path is `object_type:p1.p2…` with exactly these property steps.
    pub fn is(&self, object_type: &str, properties: &[&str]) -> bool {
        self.object_type == object_type
            && self.steps.len() == properties.len()
            && self
                .steps
                .iter()
                .zip(properties)
                .all(|(s, p)| matches!(s, PathStep::Property(name) if name == p))
    }
}

/// Parses a STIX 2.1 pattern.
pub fn parse_pattern(text: &str) -> Result<Pattern, IntelError> {
    if text.len() > MAX_PATTERN_BYTES {
        return Err(IntelError::Pattern {
            offset: MAX_PATTERN_BYTES,
            message: format!(
                "pattern is {} bytes, more than the {MAX_PATTERN_BYTES} accepted",
                text.len()
            ),
        });
    }
    let tokens = lex(text)?;
    let mut p = Parser {
        tokens,
        pos: 0,
        depth: 0,
    };
    let pattern = p.followed_by()?;
    match p.peek() {
        Tok::End => Ok(pattern),
        _ => Err(p.expected("AND, OR, FOLLOWEDBY, a qualifier or the end of the pattern")),
    }
}

/// A STIX timestamp (`YYYY-MM-DDTHH:MM:SS[.s+]Z`, UTC) as a millisecond [`Timestamp`] and the
/// nanoseconds below the millisecond (digits past the ninth are dropped), so that two
/// timestamps compare exactly to the nanosecond; `None` when `text` is not one.
pub(crate) fn stix_time(text: &str) -> Option<(Timestamp, u32)> {
    let b = text.as_bytes();
    if b.len() < 20 || b.len() > 64 || b[b.len() - 1] != b'Z' {
        return None;
    }
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    let shape = digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19);
    if !shape {
        return None;
    }
    let fraction = &b[19..b.len() - 1];
    let fraction = match fraction {
        [] => &[][..],
        [b'.', rest @ ..] if !rest.is_empty() && rest.iter().all(u8::is_ascii_digit) => rest,
        _ => return None,
    };
    let mut whole = [0u8; 20];
    whole[..19].copy_from_slice(&b[..19]);
    whole[19] = b'Z';
    let whole = std::str::from_utf8(&whole).ok()?;
    let seconds = Timestamp::parse(whole).ok()?;
    let mut nanos: u32 = 0;
    for i in 0..9 {
        nanos = nanos * 10 + fraction.get(i).map_or(0, |d| u32::from(d - b'0'));
    }
    let ms = i64::from(nanos / 1_000_000);
    Some((seconds.plus_millis(ms), nanos % 1_000_000))
}

/// A token and where it starts.
#[derive(Debug, Clone, PartialEq)]
enum Tok {
    LBrack,
    RBrack,
    LParen,
    RParen,
    Colon,
    Dot,
    Comma,
    Star,
    Op(Operator),
    /// `[a-zA-Z_][a-zA-Z0-9_-]*`: keywords, object types, property names.
    Ident(String),
    Lit(Literal),
    End,
}

#[derive(Debug)]
struct Token {
    tok: Tok,
    at: usize,
}

fn err(offset: usize, message: impl Into<String>) -> IntelError {
    IntelError::Pattern {
        offset,
        message: message.into(),
    }
}

fn lex(text: &str) -> Result<Vec<Token>, IntelError> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let at = i;
        // Whitespace, ASCII or not (the grammar skips the Unicode spaces too).
        if c.is_ascii_whitespace() || c == 0x0b {
            i += 1;
            continue;
        }
        if c >= 0x80 {
            let ch = text[i..].chars().next().unwrap_or('\u{fffd}');
            if ch.is_whitespace() {
                i += ch.len_utf8();
                continue;
            }
            return Err(err(at, format!("unexpected character {ch:?}")));
        }
        if b[i..].starts_with(b"/*") {
            let Some(end) = text[i + 2..].find("*/") else {
                return Err(err(at, "unterminated comment"));
            };
            i += 2 + end + 2;
            continue;
        }
        if b[i..].starts_with(b"//") {
            i = text[i..].find(['\n', '\r']).map_or(b.len(), |n| i + n);
            continue;
        }
        let next = b.get(i + 1).copied();
        let tok = match c {
            b'[' => Tok::LBrack,
            b']' => Tok::RBrack,
            b'(' => Tok::LParen,
            b')' => Tok::RParen,
            b':' => Tok::Colon,
            b',' => Tok::Comma,
            b'*' => Tok::Star,
            b'=' => {
                if next == Some(b'=') {
                    i += 1;
                }
                Tok::Op(Operator::Eq)
            }
            b'!' if next == Some(b'=') => {
                i += 1;
                Tok::Op(Operator::Ne)
            }
            b'<' if next == Some(b'>') => {
                i += 1;
                Tok::Op(Operator::Ne)
            }
            b'<' if next == Some(b'=') => {
                i += 1;
                Tok::Op(Operator::Le)
            }
            b'<' => Tok::Op(Operator::Lt),
            b'>' if next == Some(b'=') => {
                i += 1;
                Tok::Op(Operator::Ge)
            }
            b'>' => Tok::Op(Operator::Gt),
            b'\'' => {
                let (s, end) = string_body(text, i)?;
                out.push(Token {
                    tok: Tok::Lit(Literal::Str(s)),
                    at,
                });
                i = end;
                continue;
            }
            b't' | b'b' | b'h' if next == Some(b'\'') => {
                let Some(len) = text[i + 2..].find('\'') else {
                    return Err(err(at, "unterminated literal"));
                };
                let body = &text[i + 2..i + 2 + len];
                let lit = match c {
                    b't' => {
                        if stix_time(body).is_none() {
                            return Err(err(
                                at,
                                format!(
                                    "{:?} is not a STIX timestamp (YYYY-MM-DDTHH:MM:SS[.s+]Z)",
                                    clip(body)
                                ),
                            ));
                        }
                        Literal::Timestamp(body.to_owned())
                    }
                    b'b' => Literal::Binary(
                        base64(body).ok_or_else(|| err(at, "binary literal is not base64"))?,
                    ),
                    _ => Literal::Hex(hex(body).ok_or_else(|| {
                        err(at, "hex literal is not an even number of hex digits")
                    })?),
                };
                out.push(Token {
                    tok: Tok::Lit(lit),
                    at,
                });
                i += 2 + len + 1;
                continue;
            }
            b'0'..=b'9' | b'+' | b'-' | b'.' => {
                let (lit, end) = number(text, i)?;
                match lit {
                    Some(lit) => {
                        out.push(Token {
                            tok: Tok::Lit(lit),
                            at,
                        });
                        i = end;
                        continue;
                    }
                    // A lone '.': a path step.
                    None if c == b'.' => Tok::Dot,
                    None => return Err(err(at, format!("unexpected character {:?}", c as char))),
                }
            }
            b'a'..=b'z' | b'A'..=b'Z' | b'_' => {
                let end = b[i..]
                    .iter()
                    .position(|&x| !(x.is_ascii_alphanumeric() || x == b'_' || x == b'-'))
                    .map_or(b.len(), |n| i + n);
                let word = &text[i..end];
                let tok = match word {
                    "true" => Tok::Lit(Literal::Bool(true)),
                    "false" => Tok::Lit(Literal::Bool(false)),
                    _ => Tok::Ident(word.to_owned()),
                };
                out.push(Token { tok, at });
                i = end;
                continue;
            }
            _ => return Err(err(at, format!("unexpected character {:?}", c as char))),
        };
        out.push(Token { tok, at });
        i += 1;
    }
    out.push(Token {
        tok: Tok::End,
        at: b.len(),
    });
    Ok(out)
}

/// The string literal opening at `start` (a quote): its value and the offset after it.
fn string_body(text: &str, start: usize) -> Result<(String, usize), IntelError> {
    let b = text.as_bytes();
    let mut s = String::new();
    let mut i = start + 1;
    let mut run = i;
    while i < b.len() {
        match b[i] {
            b'\'' => {
                s.push_str(&text[run..i]);
                return Ok((s, i + 1));
            }
            b'\\' => {
                s.push_str(&text[run..i]);
                match b.get(i + 1) {
                    Some(b'\'') => s.push('\''),
                    Some(b'\\') => s.push('\\'),
                    _ => {
                        return Err(err(
                            i,
                            "invalid escape in string (only \\' and \\\\ are allowed)",
                        ))
                    }
                }
                i += 2;
                run = i;
            }
            _ => i += 1,
        }
    }
    Err(err(start, "unterminated string"))
}

/// The number at `start`: `[+-]? digits`, `[+-]? digits? . digits`; `None` when only a sign
/// or a dot is there (the caller decides what that is).
fn number(text: &str, start: usize) -> Result<(Option<Literal>, usize), IntelError> {
    let b = text.as_bytes();
    let mut i = start;
    if matches!(b[i], b'+' | b'-') {
        i += 1;
    }
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let int_digits = &b[int_start..i];
    let frac = b.get(i) == Some(&b'.') && b.get(i + 1).is_some_and(u8::is_ascii_digit);
    if frac {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let t = text[start..i].trim_start_matches('+');
        let v: f64 = t
            .parse()
            .map_err(|_| err(start, format!("{:?} is not a number", clip(t))))?;
        return Ok((Some(Literal::Float(v)), i));
    }
    if int_digits.is_empty() {
        return Ok((None, start));
    }
    if int_digits.len() > 1 && int_digits[0] == b'0' {
        return Err(err(start, "integer with a leading zero"));
    }
    let t = text[start..i].trim_start_matches('+');
    let v: i64 = t
        .parse()
        .map_err(|_| err(start, format!("integer {} is out of range", clip(t))))?;
    Ok((Some(Literal::Int(v)), i))
}

fn hex(body: &str) -> Option<Vec<u8>> {
    let b = body.as_bytes();
    if b.len() % 2 != 0 {
        return None;
    }
    let d = |c: u8| (c as char).to_digit(16).and_then(|v| u8::try_from(v).ok());
    b.chunks_exact(2)
        .map(|p| Some((d(p[0])? << 4) | d(p[1])?))
        .collect()
}

fn base64(body: &str) -> Option<Vec<u8>> {
    let b = body.as_bytes();
    if b.len() % 4 != 0 {
        return None;
    }
    let val = |c: u8| -> Option<u32> {
        Some(u32::from(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        }))
    };
    let mut out = Vec::with_capacity(b.len() / 4 * 3);
    let groups = b.len() / 4;
    for (g, q) in b.chunks_exact(4).enumerate() {
        let last = g + 1 == groups;
        let pad = q.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return None;
        }
        let mut n: u32 = 0;
        for &c in &q[..4 - pad] {
            n = (n << 6) | val(c)?;
        }
        n <<= 6 * pad as u32;
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    Some(out)
}

/// At most 64 characters of `s`, for error messages.
fn clip(s: &str) -> String {
    let mut out: String = s.chars().take(64).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> &Tok {
        self.tokens.get(self.pos).map_or(&Tok::End, |t| &t.tok)
    }

    fn at(&self) -> usize {
        self.tokens
            .get(self.pos)
            .or(self.tokens.last())
            .map_or(0, |t| t.at)
    }

    fn bump(&mut self) -> Tok {
        let t = self
            .tokens
            .get_mut(self.pos)
            .map_or(Tok::End, |t| std::mem::replace(&mut t.tok, Tok::End));
        if self.pos < self.tokens.len() {
            self.pos += 1;
        }
        t
    }

    fn is_kw(&self, kw: &str) -> bool {
        matches!(self.peek(), Tok::Ident(w) if w == kw)
    }

    fn eat_kw(&mut self, kw: &str) -> bool {
        let yes = self.is_kw(kw);
        if yes {
            self.pos += 1;
        }
        yes
    }

    fn expected(&self, what: &str) -> IntelError {
        err(
            self.at(),
            format!("expected {what}, found {}", describe(self.peek())),
        )
    }

    fn expect(&mut self, tok: &Tok, what: &str) -> Result<(), IntelError> {
        if self.peek() == tok {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.expected(what))
        }
    }

    fn enter(&mut self) -> Result<(), IntelError> {
        self.depth += 1;
        if self.depth > MAX_PATTERN_DEPTH {
            return Err(err(
                self.at(),
                format!("nested deeper than {MAX_PATTERN_DEPTH} levels"),
            ));
        }
        Ok(())
    }

    fn followed_by(&mut self) -> Result<Pattern, IntelError> {
        let first = self.obs_or()?;
        if !self.is_kw("FOLLOWEDBY") {
            return Ok(first);
        }
        let mut all = vec![first];
        while self.eat_kw("FOLLOWEDBY") {
            all.push(self.obs_or()?);
        }
        Ok(Pattern::FollowedBy(all))
    }

    fn obs_or(&mut self) -> Result<Pattern, IntelError> {
        let first = self.obs_and()?;
        if !self.is_kw("OR") {
            return Ok(first);
        }
        let mut all = vec![first];
        while self.eat_kw("OR") {
            all.push(self.obs_and()?);
        }
        Ok(Pattern::Or(all))
    }

    fn obs_and(&mut self) -> Result<Pattern, IntelError> {
        let first = self.obs_qualified()?;
        if !self.is_kw("AND") {
            return Ok(first);
        }
        let mut all = vec![first];
        while self.eat_kw("AND") {
            all.push(self.obs_qualified()?);
        }
        Ok(Pattern::And(all))
    }

    fn obs_qualified(&mut self) -> Result<Pattern, IntelError> {
        let mut e = self.obs_primary()?;
        let mut count = 0;
        loop {
            let at = self.at();
            let q = if self.eat_kw("WITHIN") {
                let at = self.at();
                let seconds = match self.bump() {
                    Tok::Lit(Literal::Int(n)) if n > 0 => n as f64,
                    Tok::Lit(Literal::Float(f)) if f > 0.0 => f,
                    _ => {
                        return Err(err(
                            at,
                            "expected a positive number of seconds after WITHIN",
                        ))
                    }
                };
                if !self.eat_kw("SECONDS") {
                    return Err(self.expected("SECONDS"));
                }
                Qualifier::Within(seconds)
            } else if self.eat_kw("REPEATS") {
                let at = self.at();
                let n = match self.bump() {
                    Tok::Lit(Literal::Int(n)) if n > 0 => n as u64,
                    _ => return Err(err(at, "expected a positive integer after REPEATS")),
                };
                if !self.eat_kw("TIMES") {
                    return Err(self.expected("TIMES"));
                }
                Qualifier::Repeats(n)
            } else if self.eat_kw("START") {
                let start = self.timestamp("START")?;
                if !self.eat_kw("STOP") {
                    return Err(self.expected("STOP"));
                }
                let stop = self.timestamp("STOP")?;
                Qualifier::StartStop { start, stop }
            } else {
                break;
            };
            // Each qualifier wraps the tree one level deeper; a few keep it shallow (one of each
            // kind is all a pattern needs).
            count += 1;
            if count > MAX_QUALIFIERS {
                return Err(err(
                    at,
                    format!("more than {MAX_QUALIFIERS} qualifiers on one observation expression"),
                ));
            }
            e = Pattern::Qualified(Box::new(e), q);
        }
        Ok(e)
    }

    fn timestamp(&mut self, after: &str) -> Result<String, IntelError> {
        let at = self.at();
        match self.bump() {
            Tok::Lit(Literal::Timestamp(t)) => Ok(t),
            _ => Err(err(at, format!("expected a timestamp t'…' after {after}"))),
        }
    }

    fn obs_primary(&mut self) -> Result<Pattern, IntelError> {
        match self.peek() {
            Tok::LBrack => {
                self.pos += 1;
                let c = self.cmp_or()?;
                self.expect(&Tok::RBrack, "']' or AND or OR")?;
                Ok(Pattern::Observation(c))
            }
            Tok::LParen => {
                self.pos += 1;
                self.enter()?;
                let e = self.followed_by()?;
                self.expect(&Tok::RParen, "')'")?;
                self.depth -= 1;
                Ok(e)
            }
            _ => Err(self.expected("'[' or '(' (an observation expression)")),
        }
    }

    fn cmp_or(&mut self) -> Result<Comparison, IntelError> {
        let first = self.cmp_and()?;
        if !self.is_kw("OR") {
            return Ok(first);
        }
        let mut all = vec![first];
        while self.eat_kw("OR") {
            all.push(self.cmp_and()?);
        }
        Ok(Comparison::Or(all))
    }

    fn cmp_and(&mut self) -> Result<Comparison, IntelError> {
        let first = self.cmp_primary()?;
        if !self.is_kw("AND") {
            return Ok(first);
        }
        let mut all = vec![first];
        while self.eat_kw("AND") {
            all.push(self.cmp_primary()?);
        }
        Ok(Comparison::And(all))
    }

    fn cmp_primary(&mut self) -> Result<Comparison, IntelError> {
        if self.peek() == &Tok::LParen {
            self.pos += 1;
            self.enter()?;
            let c = self.cmp_or()?;
            self.expect(&Tok::RParen, "')' or AND or OR")?;
            self.depth -= 1;
            return Ok(c);
        }
        if self.eat_kw("EXISTS") {
            let path = self.path()?;
            return Ok(Comparison::Test(Test {
                path,
                negated: false,
                op: Operator::Exists,
                operand: Operand::None,
            }));
        }
        let path = self.path()?;
        let negated = self.eat_kw("NOT");
        let op = match self.peek() {
            Tok::Op(op) => *op,
            Tok::Ident(w) => match w.as_str() {
                "IN" => Operator::In,
                "LIKE" => Operator::Like,
                "MATCHES" => Operator::Matches,
                "ISSUBSET" => Operator::IsSubset,
                "ISSUPERSET" => Operator::IsSuperset,
                _ => return Err(self.expected(OPERATORS)),
            },
            _ => return Err(self.expected(OPERATORS)),
        };
        self.pos += 1;
        let operand = match op {
            Operator::In => Operand::Set(self.set()?),
            Operator::Eq | Operator::Ne => Operand::Literal(self.literal()?),
            Operator::Gt | Operator::Lt | Operator::Ge | Operator::Le => {
                let lit_at = self.at();
                match self.literal()? {
                    Literal::Bool(_) => {
                        return Err(err(lit_at, "a boolean cannot be ordered (use = or !=)"))
                    }
                    lit => Operand::Literal(lit),
                }
            }
            _ => match self.peek() {
                Tok::Lit(Literal::Str(_)) => Operand::Literal(self.literal()?),
                _ => return Err(self.expected("a string literal")),
            },
        };
        Ok(Comparison::Test(Test {
            path,
            negated,
            op,
            operand,
        }))
    }

    fn literal(&mut self) -> Result<Literal, IntelError> {
        match self.peek() {
            Tok::Lit(_) => match self.bump() {
                Tok::Lit(l) => Ok(l),
                _ => Err(self.expected("a literal")),
            },
            _ => Err(self.expected("a literal")),
        }
    }

    fn set(&mut self) -> Result<Vec<Literal>, IntelError> {
        self.expect(&Tok::LParen, "'(' opening a set")?;
        let mut out = Vec::new();
        if self.peek() == &Tok::RParen {
            self.pos += 1;
            return Ok(out);
        }
        loop {
            out.push(self.literal()?);
            match self.peek() {
                Tok::Comma => self.pos += 1,
                Tok::RParen => {
                    self.pos += 1;
                    return Ok(out);
                }
                _ => return Err(self.expected("',' or ')' in a set")),
            }
        }
    }

    fn path(&mut self) -> Result<ObjectPath, IntelError> {
        let object_type = match self.peek() {
            Tok::Ident(w) => w.clone(),
            _ => return Err(self.expected("an object path (type:property)")),
        };
        self.pos += 1;
        self.expect(&Tok::Colon, "':' after the object type")?;
        let mut steps = vec![PathStep::Property(self.property()?)];
        loop {
            match self.peek() {
                Tok::Dot => {
                    self.pos += 1;
                    steps.push(PathStep::Property(self.property()?));
                }
                Tok::LBrack => {
                    self.pos += 1;
                    let at = self.at();
                    let step = match self.bump() {
                        Tok::Star => PathStep::Any,
                        Tok::Lit(Literal::Int(n)) => PathStep::Index(n),
                        _ => return Err(err(at, "expected a list index or '*'")),
                    };
                    self.expect(&Tok::RBrack, "']' closing a list index")?;
                    steps.push(step);
                }
                _ => break,
            }
        }
        Ok(ObjectPath { object_type, steps })
    }

    fn property(&mut self) -> Result<String, IntelError> {
        match self.peek() {
            Tok::Ident(w) if !w.contains('-') => {
                let w = w.clone();
                self.pos += 1;
                Ok(w)
            }
            Tok::Lit(Literal::Str(s)) => {
                let s = s.clone();
                self.pos += 1;
                Ok(s)
            }
            Tok::Ident(_) => {
                Err(self.expected("a property name (quote names with hyphens: 'http-request-ext')"))
            }
            _ => Err(self.expected("a property name")),
        }
    }
}

const OPERATORS: &str =
    "an operator (=, !=, <, <=, >, >=, IN, LIKE, MATCHES, ISSUBSET, ISSUPERSET)";

fn describe(t: &Tok) -> String {
    match t {
        Tok::LBrack => "'['".into(),
        Tok::RBrack => "']'".into(),
        Tok::LParen => "'('".into(),
        Tok::RParen => "')'".into(),
        Tok::Colon => "':'".into(),
        Tok::Dot => "'.'".into(),
        Tok::Comma => "','".into(),
        Tok::Star => "'*'".into(),
        Tok::Op(op) => format!("operator {op:?}"),
        Tok::Ident(w) => format!("{:?}", clip(w)),
        Tok::Lit(Literal::Str(s)) => format!("string {:?}", clip(s)),
        Tok::Lit(l) => format!("literal {}", clip(&format!("{l:?}"))),
        Tok::End => "the end of the pattern".into(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::pattern;
    use proptest::prelude::*;

    fn offset(p: &str) -> (usize, String) {
        match parse_pattern(p) {
            Err(IntelError::Pattern { offset, message }) => (offset, message),
            other => panic!("{p}: expected a pattern error, got {other:?}"),
        }
    }

    fn test_of(p: &Pattern) -> &Test {
        match p {
            Pattern::Observation(Comparison::Test(t)) => t,
            other => panic!("not a single test: {other:?}"),
        }
    }

    #[test]
    fn every_form_the_exporter_writes_parses() {
        let hmac = "ab".repeat(32);
        let all = [
            pattern::block_pattern("203.0.113.0/24"),
            pattern::block_pattern("2001:db8:1::/48"),
            pattern::asn_pattern(64500),
            pattern::asn_pattern(u32::MAX),
            pattern::user_agent_pattern("Bot 'x' \\ 1"),
            pattern::user_agent_pattern(""),
            pattern::ja4_pattern("t13d1516h2_8daaf6152771_02713d6af862"),
            pattern::fingerprint_pattern(&hmac, "template"),
            pattern::fingerprint_pattern(&hmac, "payment"),
        ];
        for p in &all {
            parse_pattern(p).unwrap_or_else(|e| panic!("{p}: {e}"));
        }
        let ua = parse_pattern(&pattern::user_agent_pattern("Bot 'x' \\ 1")).unwrap();
        let t = test_of(&ua);
        assert!(t.path.is(
            "network-traffic",
            &[
                "extensions",
                "http-request-ext",
                "request_header",
                "User-Agent"
            ]
        ));
        assert_eq!(
            t.operand,
            Operand::Literal(Literal::Str("Bot 'x' \\ 1".into()))
        );
        let block = parse_pattern(&pattern::block_pattern("203.0.113.0/24")).unwrap();
        assert_eq!(test_of(&block).op, Operator::IsSubset);
        let fp = parse_pattern(&pattern::fingerprint_pattern(&hmac, "payment")).unwrap();
        assert!(matches!(fp, Pattern::Observation(Comparison::And(ref v)) if v.len() == 2));
    }

    #[test]
    fn the_full_grammar_parses() {
        for p in [
            "[file:hashes.'SHA-256' = 'aec070645fe53ee3b3763059376134f058cc337247c978add178b6ccdfb0019f']",
            "[email-message:from_ref.value MATCHES '.+\\\\@example\\\\.com$' AND email-message:body_multipart[*].body_raw_ref.name LIKE 'pdf%']",
            "[ipv4-addr:value = '198.51.100.1/32' OR ipv4-addr:value = '203.0.113.33/32' OR ipv6-addr:value = '2001:0db8:dead:beef:dead:beef:dead:0001/128']",
            "[domain-name:value = 'example.com'] FOLLOWEDBY [url:value = 'http://x'] WITHIN 300 SECONDS",
            "([file:size > 1024] AND [file:size <= -1]) OR [process:pid >= +5] REPEATS 5 TIMES",
            "[x:a[0] != true] START t'2016-06-01T00:00:00Z' STOP t'2016-07-01T00:00:00.123456789Z'",
            "[x:a[-1] NOT IN ('a', 2, 3.5, -0.25, true, h'0aff', b'AQID', t'2020-01-01T00:00:00Z')]",
            "[x:a IN ()] WITHIN 2.5 SECONDS REPEATS 2 TIMES",
            "[(x:a = 1 OR x:b = 2) AND NOT_A_KEYWORD:c ISSUPERSET '10.0.0.0/8']",
            "[EXISTS windows-registry-key:values[*].name] /* comment */ AND // line\n [x:y < .5]",
            "[x:a = 'x'] AND [x:b == 2] AND [x:c <> 3]",
            "\u{3000}[x:a\u{a0}=\t'y']\n",
            "[x:y = b'QUJD'] OR [x:y = b'QUI='] OR [x:y = b'QQ==']",
        ] {
            parse_pattern(p).unwrap_or_else(|e| panic!("{p}: {e}"));
        }
        let p = parse_pattern("[x:a = 1] AND [x:b = 2] OR [x:c = 3] FOLLOWEDBY [x:d = 4]").unwrap();
        // FOLLOWEDBY binds loosest, then OR, then AND.
        let Pattern::FollowedBy(v) = p else { panic!() };
        assert!(
            matches!(&v[0], Pattern::Or(o) if matches!(&o[0], Pattern::And(a) if a.len() == 2))
        );
        let p = parse_pattern("[x:a = 1 OR x:b = 2 AND x:c = 3]").unwrap();
        let Pattern::Observation(Comparison::Or(o)) = p else {
            panic!()
        };
        assert!(matches!(&o[1], Comparison::And(a) if a.len() == 2));
        let p = parse_pattern("[x:a = b'AQID'] WITHIN 5 SECONDS").unwrap();
        let Pattern::Qualified(inner, Qualifier::Within(s)) = p else {
            panic!()
        };
        assert_eq!(s, 5.0);
        assert_eq!(
            test_of(&inner).operand,
            Operand::Literal(Literal::Binary(vec![1, 2, 3]))
        );
        let p = parse_pattern("[x:'quoted prop'.b[3] = h'0aFF']").unwrap();
        let t = test_of(&p);
        assert_eq!(
            t.path.steps,
            vec![
                PathStep::Property("quoted prop".into()),
                PathStep::Property("b".into()),
                PathStep::Index(3)
            ]
        );
        assert_eq!(t.operand, Operand::Literal(Literal::Hex(vec![10, 255])));
        let p = parse_pattern("[x:a NOT LIKE 'z%']").unwrap();
        assert!(test_of(&p).negated);
    }

    #[test]
    fn errors_give_the_offset_and_what_was_expected() {
        let cases: &[(&str, usize, &str)] = &[
            ("", 0, "expected '[' or '('"),
            ("[x:a = 1", 8, "expected ']'"),
            ("[x:a = 1]]", 9, "end of the pattern"),
            ("[x:a 1]", 5, "expected an operator"),
            ("[x:a = ]", 7, "expected a literal"),
            ("[x:a = 'abc]", 7, "unterminated string"),
            ("[x:a = 'a\\nb']", 9, "invalid escape"),
            ("[x:a = t'2024-13-01T00:00:00Z']", 7, "not a STIX timestamp"),
            (
                "[x:a = t'2024-01-01T00:00:00+01:00']",
                7,
                "not a STIX timestamp",
            ),
            ("[x:a = h'abc']", 7, "hex"),
            ("[x:a = b'QUJ']", 7, "base64"),
            ("[x:a > true]", 7, "boolean"),
            ("[x:a LIKE 5]", 10, "string literal"),
            ("[x:a IN 'b']", 8, "'('"),
            ("[x:a IN ('b' 'c')]", 13, "',' or ')'"),
            ("[x:a-b = 1]", 3, "quote names with hyphens"),
            ("[x a = 1]", 3, "':'"),
            ("[x:a = 01]", 7, "leading zero"),
            ("[x:a = 99999999999999999999]", 7, "out of range"),
            ("[x:a = 1] WITHIN 0 SECONDS", 17, "positive"),
            ("[x:a = 1] WITHIN 5 MINUTES", 19, "SECONDS"),
            ("[x:a = 1] REPEATS 2", 19, "TIMES"),
            (
                "[x:a = 1] START '2020' STOP t'2020-01-01T00:00:00Z'",
                16,
                "timestamp",
            ),
            ("[x:a = 1] and [x:b = 2]", 10, "AND, OR, FOLLOWEDBY"),
            ("[x:a = 1 /* open", 9, "unterminated comment"),
            ("[x:a = 1 ; ]", 9, "unexpected character"),
            ("[x:a[z] = 1]", 5, "list index"),
        ];
        for (p, at, what) in cases {
            let (offset, message) = offset(p);
            assert_eq!(offset, *at, "{p}: {message}");
            assert!(message.contains(what), "{p}: {message}");
        }
    }

    #[test]
    fn hostile_nesting_and_length_are_refused() {
        let deep = format!("{}[x:a = 1]{}", "(".repeat(10_000), ")".repeat(10_000));
        assert!(offset(&deep).1.contains("nested deeper"));
        let deep = format!("[{}x:a = 1{}]", "(".repeat(100), ")".repeat(100));
        assert!(offset(&deep).1.contains("nested deeper"));
        let many = format!("[x:a = 1]{}", " REPEATS 2 TIMES".repeat(100));
        assert_eq!(
            offset(&many),
            (
                58,
                "more than 3 qualifiers on one observation expression".into()
            )
        );
        let ok = format!("{}[x:a = 1]{}", "(".repeat(60), ")".repeat(60));
        parse_pattern(&ok).unwrap();
        let long = format!("[x:a = '{}']", "a".repeat(MAX_PATTERN_BYTES));
        assert!(offset(&long).1.contains("more than"));
        // Long flat chains are fine: no recursion per operand.
        let wide = format!("[{}x:a = 1]", "x:a = 1 OR ".repeat(5_000));
        assert!(wide.len() < MAX_PATTERN_BYTES);
        let Pattern::Observation(Comparison::Or(v)) = parse_pattern(&wide).unwrap() else {
            panic!()
        };
        assert_eq!(v.len(), 5_001);
    }

    #[test]
    fn stix_times_compare_to_the_nanosecond() {
        let a = stix_time("2024-01-01T00:00:00Z").unwrap();
        let b = stix_time("2024-01-01T00:00:00.000Z").unwrap();
        let c = stix_time("2024-01-01T00:00:00.0000001Z").unwrap();
        let d = stix_time("2024-01-01T00:00:00.0015Z").unwrap();
        assert_eq!(a, b);
        assert!(c > a);
        assert_eq!(d.0.as_millis() - a.0.as_millis(), 1);
        assert_eq!(d.1, 500_000);
        for bad in [
            "2024-01-01T00:00:00",
            "2024-01-01 00:00:00Z",
            "2024-01-01T00:00:00.Z",
            "2024-02-30T00:00:00Z",
            "2024-01-01T24:00:00Z",
            "2024-01-01T00:00:00z",
            "2024-01-01T00:00:00+00:00",
        ] {
            assert!(stix_time(bad).is_none(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(s in "\\PC{0,200}") {
            let _ = parse_pattern(&s);
        }

        #[test]
        fn pattern_like_text_never_panics(s in "[\\[\\]()'.:,*=<>!tbh0-9a-zA-Z_ \\\\-]{0,120}") {
            let _ = parse_pattern(&s);
        }

        #[test]
        fn any_escaped_string_round_trips(v in "\\PC{0,40}") {
            let p = format!("[x-moat-ja4:value = '{}']", pattern::escape(&v));
            let parsed = parse_pattern(&p).unwrap();
            prop_assert_eq!(&test_of(&parsed).operand, &Operand::Literal(Literal::Str(v)));
        }
    }
}

//! The `when` expression language: lexing, parsing, type checking and evaluation.
//!
//! An expression is compiled once, when the policy is loaded, into a small typed tree whose
//! evaluation reads facts by reference and never allocates; every type error is found at load
//! time, so evaluation cannot fail. Errors carry a byte offset into the expression source, which
//! the policy loader turns into a file line and column. This module knows nothing about TOML,
//! rules or actions.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::facts::Facts;
use crate::fields::{self, BoolField, Field, ListField, NumField, StrField};

/// Longest accepted expression, in bytes; a bound on what a hostile file can make us allocate.
pub(crate) const MAX_EXPR_LEN: usize = 8 * 1024;
/// Deepest accepted nesting of parentheses, lists and `not`; keeps recursion off the stack limit.
const MAX_DEPTH: usize = 64;
/// Longest accepted attribute name after `attr.`.
const MAX_ATTR_NAME: usize = 64;

/// Why an expression was rejected, and where: `offset` is a byte offset into the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExprError {
    pub(crate) offset: usize,
    pub(crate) message: String,
}

fn err<T>(offset: usize, message: impl Into<String>) -> Result<T, ExprError> {
    Err(ExprError {
        offset,
        message: message.into(),
    })
}

/// A compiled `when` expression.
#[derive(Debug, Clone)]
pub(crate) struct Condition {
    root: Node,
}

impl Condition {
    /// Parses and type-checks `src`; the result must be a boolean.
    pub(crate) fn compile(src: &str) -> Result<Condition, ExprError> {
        if src.len() > MAX_EXPR_LEN {
            return err(0, format!("expression is longer than {MAX_EXPR_LEN} bytes"));
        }
        let toks = lex(src)?;
        let mut p = Parser {
            toks,
            pos: 0,
            depth: 0,
        };
        let (val, start) = p.parse_or()?;
        let (tok, at) = p.peek();
        if *tok != Tok::End {
            return err(at, format!("unexpected {}", tok.describe()));
        }
        match val {
            Val::Bool(root) => Ok(Condition { root }),
            other => err(
                start,
                format!(
                    "a condition must be true or false, but this is a {}",
                    other.type_name()
                ),
            ),
        }
    }

    /// Evaluates the condition against `facts`.
    #[inline]
    pub(crate) fn eval(&self, facts: &Facts<'_>) -> bool {
        self.root.eval(facts)
    }
}

// ---------------------------------------------------------------------------------------------
// Lexer

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok<'s> {
    Ident(&'s str),
    Num(f64),
    Str(String),
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Cmp(CmpOp),
    End,
}

impl Tok<'_> {
    fn describe(&self) -> String {
        match self {
            Tok::Ident(s) => format!("{s:?}"),
            Tok::Num(_) => "number".into(),
            Tok::Str(_) => "string".into(),
            Tok::LParen => "\"(\"".into(),
            Tok::RParen => "\")\"".into(),
            Tok::LBracket => "\"[\"".into(),
            Tok::RBracket => "\"]\"".into(),
            Tok::Comma => "\",\"".into(),
            Tok::Cmp(op) => format!("{:?}", op.symbol()),
            Tok::End => "end of expression".into(),
        }
    }
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '.'
}

fn lex(src: &str) -> Result<Vec<(Tok<'_>, usize)>, ExprError> {
    let mut toks = Vec::new();
    let mut chars = src.char_indices().peekable();
    while let Some(&(i, c)) = chars.peek() {
        let single = match c {
            c if c.is_whitespace() => {
                chars.next();
                continue;
            }
            '(' => Some(Tok::LParen),
            ')' => Some(Tok::RParen),
            '[' => Some(Tok::LBracket),
            ']' => Some(Tok::RBracket),
            ',' => Some(Tok::Comma),
            _ => None,
        };
        if let Some(t) = single {
            chars.next();
            toks.push((t, i));
            continue;
        }
        let rest = &src[i..];
        if c == '=' || c == '!' || c == '<' || c == '>' {
            let two = rest.get(..2).unwrap_or("");
            let (op, len) = match two {
                "==" => (CmpOp::Eq, 2),
                "!=" => (CmpOp::Ne, 2),
                "<=" => (CmpOp::Le, 2),
                ">=" => (CmpOp::Ge, 2),
                _ if c == '<' => (CmpOp::Lt, 1),
                _ if c == '>' => (CmpOp::Gt, 1),
                _ if c == '=' => return err(i, "use \"==\" to compare"),
                _ => return err(i, "use \"not\" or \"!=\" instead of \"!\""),
            };
            for _ in 0..len {
                chars.next();
            }
            toks.push((Tok::Cmp(op), i));
            continue;
        }
        if c == '"' {
            chars.next();
            let mut s = String::new();
            let mut closed = false;
            while let Some((j, c)) = chars.next() {
                match c {
                    '"' => {
                        closed = true;
                        break;
                    }
                    '\\' => match chars.next() {
                        Some((_, '"')) => s.push('"'),
                        Some((_, '\\')) => s.push('\\'),
                        _ => {
                            return err(
                                j,
                                "unknown escape in string; only \\\" and \\\\ are allowed",
                            )
                        }
                    },
                    c => s.push(c),
                }
            }
            if !closed {
                return err(i, "unterminated string");
            }
            toks.push((Tok::Str(s), i));
            continue;
        }
        let starts_number = c.is_ascii_digit()
            || (c == '-' && rest[1..].starts_with(|d: char| d.is_ascii_digit() || d == '.'))
            || (c == '.' && rest[1..].starts_with(|d: char| d.is_ascii_digit()));
        if starts_number {
            let len = number_len(rest);
            let text = &rest[..len];
            if rest[len..].starts_with(is_ident_char) {
                return err(i, "malformed number");
            }
            match text.parse::<f64>() {
                Ok(n) if n.is_finite() => toks.push((Tok::Num(n), i)),
                _ => return err(i, "malformed or out-of-range number"),
            }
            for _ in 0..len {
                chars.next();
            }
            continue;
        }
        if c.is_ascii_alphabetic() || c == '_' {
            let len = rest.find(|c| !is_ident_char(c)).unwrap_or(rest.len());
            toks.push((Tok::Ident(&rest[..len]), i));
            for _ in 0..len {
                chars.next();
            }
            continue;
        }
        return err(i, format!("unexpected character {c:?}"));
    }
    toks.push((Tok::End, src.len()));
    Ok(toks)
}

/// Length in bytes of the number at the start of `s`: `-?digits(.digits)?([eE][+-]?digits)?`.
/// Everything it accepts is ASCII, so byte length equals character count.
fn number_len(s: &str) -> usize {
    let b = s.as_bytes();
    let mut i = 0;
    let digits = |i: &mut usize| {
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
    };
    if b.first() == Some(&b'-') {
        i += 1;
    }
    digits(&mut i);
    if b.get(i) == Some(&b'.') {
        i += 1;
        digits(&mut i);
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        let mut j = i + 1;
        if matches!(b.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        if b.get(j).is_some_and(u8::is_ascii_digit) {
            i = j;
            digits(&mut i);
        }
    }
    i
}

// ---------------------------------------------------------------------------------------------
// Compiled form

#[derive(Debug, Clone)]
enum NumExpr {
    Field(NumField),
    Const(f64),
}

#[derive(Debug, Clone)]
enum StrExpr {
    Field(StrField),
    Attr(Box<str>),
    Const(Box<str>),
}

#[derive(Debug, Clone)]
enum ListExpr {
    Field(ListField),
    Const(Box<[Box<str>]>),
}

/// A compiled boolean node. `bool` flags mean "negate" (`!=`, `not in`).
#[derive(Debug, Clone)]
enum Node {
    Const(bool),
    Field(BoolField),
    Not(Box<Node>),
    And(Box<[Node]>),
    Or(Box<[Node]>),
    BoolEq(Box<Node>, Box<Node>, bool),
    NumCmp(NumExpr, CmpOp, NumExpr),
    NumIn(NumExpr, Box<[f64]>, bool),
    StrEq(StrExpr, StrExpr, bool),
    StrIn(StrExpr, ListExpr, bool),
    StrContains(StrExpr, StrExpr),
    StrStartsWith(StrExpr, StrExpr),
    IpIn(Box<[IpNet]>, bool),
}

impl NumExpr {
    #[inline]
    fn eval(&self, f: &Facts<'_>) -> f64 {
        match self {
            NumExpr::Field(n) => fields::read_num(*n, f),
            NumExpr::Const(c) => *c,
        }
    }
}

impl StrExpr {
    #[inline]
    fn eval<'a>(&'a self, f: &Facts<'a>) -> &'a str {
        match self {
            StrExpr::Field(s) => fields::read_str(*s, f),
            StrExpr::Attr(name) => f.attr(name),
            StrExpr::Const(c) => c,
        }
    }
}

impl Node {
    fn eval(&self, f: &Facts<'_>) -> bool {
        match self {
            Node::Const(b) => *b,
            Node::Field(b) => fields::read_bool(*b, f),
            Node::Not(n) => !n.eval(f),
            Node::And(ns) => ns.iter().all(|n| n.eval(f)),
            Node::Or(ns) => ns.iter().any(|n| n.eval(f)),
            Node::BoolEq(a, b, neg) => (a.eval(f) == b.eval(f)) != *neg,
            Node::NumCmp(a, op, b) => {
                let (a, b) = (a.eval(f), b.eval(f));
                // Plain float comparisons: a NaN score compares false except with `!=`.
                match op {
                    CmpOp::Eq => a == b,
                    CmpOp::Ne => a != b,
                    CmpOp::Lt => a < b,
                    CmpOp::Le => a <= b,
                    CmpOp::Gt => a > b,
                    CmpOp::Ge => a >= b,
                }
            }
            Node::NumIn(a, list, neg) => {
                let a = a.eval(f);
                list.contains(&a) != *neg
            }
            Node::StrEq(a, b, neg) => (a.eval(f) == b.eval(f)) != *neg,
            Node::StrIn(s, list, neg) => {
                let s = s.eval(f);
                let found = match list {
                    ListExpr::Field(l) => fields::read_list(*l, f).contains(&s),
                    ListExpr::Const(l) => l.iter().any(|x| **x == *s),
                };
                found != *neg
            }
            Node::StrContains(a, b) => a.eval(f).contains(b.eval(f)),
            Node::StrStartsWith(a, b) => a.eval(f).starts_with(b.eval(f)),
            Node::IpIn(nets, neg) => match f.client.ip {
                // The spec makes every comparison with an absent address false, `not in`
                // included, so that a missing address never satisfies a rule by accident.
                None => false,
                Some(ip) => {
                    // IPv4-mapped IPv6 addresses (from dual-stack sockets) must match IPv4
                    // ranges, or `::ffff:10.0.0.1` would slip past `cidr("10.0.0.0/8")`.
                    let ip = ip.to_canonical();
                    nets.iter().any(|n| n.contains(&ip)) != *neg
                }
            },
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Parser and type checker

/// A typed value produced while parsing.
enum Val {
    Bool(Node),
    Num(NumExpr),
    Str(StrExpr),
    List(ListExpr),
    NumList(Box<[f64]>),
    Ip,
    Cidrs(Box<[IpNet]>),
}

impl Val {
    fn type_name(&self) -> &'static str {
        match self {
            Val::Bool(_) => "bool",
            Val::Num(_) => "number",
            Val::Str(_) => "string",
            Val::List(_) => "string list",
            Val::NumList(_) => "number list",
            Val::Ip => "ip address",
            Val::Cidrs(_) => "cidr list",
        }
    }
}

/// A comparison-level operator.
#[derive(Clone, Copy)]
enum BinOp {
    Cmp(CmpOp),
    In,
    NotIn,
    Contains,
    StartsWith,
}

impl BinOp {
    fn symbol(self) -> &'static str {
        match self {
            BinOp::Cmp(op) => op.symbol(),
            BinOp::In => "in",
            BinOp::NotIn => "not in",
            BinOp::Contains => "contains",
            BinOp::StartsWith => "starts_with",
        }
    }
}

struct Parser<'s> {
    toks: Vec<(Tok<'s>, usize)>,
    pos: usize,
    depth: usize,
}

impl<'s> Parser<'s> {
    fn peek(&self) -> (&Tok<'s>, usize) {
        // The lexer always ends the list with `End`, and `bump` never moves past it.
        match self.toks.get(self.pos).or(self.toks.last()) {
            Some((t, at)) => (t, *at),
            None => (&Tok::End, 0),
        }
    }

    fn peek_at(&self, ahead: usize) -> &Tok<'s> {
        self.toks
            .get(self.pos + ahead)
            .map_or(&Tok::End, |(t, _)| t)
    }

    fn bump(&mut self) {
        if self.pos + 1 < self.toks.len() {
            self.pos += 1;
        }
    }

    fn is_ident(&self, word: &str) -> bool {
        matches!(self.peek().0, Tok::Ident(w) if *w == word)
    }

    fn enter(&mut self, at: usize) -> Result<(), ExprError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return err(
                at,
                format!("expression nests deeper than {MAX_DEPTH} levels"),
            );
        }
        Ok(())
    }

    fn parse_or(&mut self) -> Result<(Val, usize), ExprError> {
        self.parse_logical("or", Self::parse_and, Node::Or)
    }

    fn parse_and(&mut self) -> Result<(Val, usize), ExprError> {
        self.parse_logical("and", Self::parse_not, Node::And)
    }

    /// Parses `operand (word operand)*` where every operand must be boolean.
    fn parse_logical(
        &mut self,
        word: &str,
        operand: fn(&mut Self) -> Result<(Val, usize), ExprError>,
        combine: fn(Box<[Node]>) -> Node,
    ) -> Result<(Val, usize), ExprError> {
        let (first, start) = operand(self)?;
        if !self.is_ident(word) {
            return Ok((first, start));
        }
        let mut nodes = vec![expect_bool(first, start, word)?];
        while self.is_ident(word) {
            self.bump();
            let (next, at) = operand(self)?;
            nodes.push(expect_bool(next, at, word)?);
        }
        Ok((Val::Bool(combine(nodes.into_boxed_slice())), start))
    }

    fn parse_not(&mut self) -> Result<(Val, usize), ExprError> {
        let (tok, at) = self.peek();
        // `x not in y` is handled by the comparison; only a leading `not` negates.
        if matches!(tok, Tok::Ident("not")) {
            self.enter(at)?;
            self.bump();
            let (inner, inner_at) = self.parse_not()?;
            self.depth -= 1;
            let node = expect_bool(inner, inner_at, "not")?;
            return Ok((Val::Bool(Node::Not(Box::new(node))), at));
        }
        self.parse_cmp()
    }

    fn peek_binop(&self) -> Option<(BinOp, usize)> {
        let (tok, at) = self.peek();
        let op = match tok {
            Tok::Cmp(op) => BinOp::Cmp(*op),
            Tok::Ident("in") => BinOp::In,
            Tok::Ident("contains") => BinOp::Contains,
            Tok::Ident("starts_with") => BinOp::StartsWith,
            Tok::Ident("not") if *self.peek_at(1) == Tok::Ident("in") => BinOp::NotIn,
            _ => return None,
        };
        Some((op, at))
    }

    fn parse_cmp(&mut self) -> Result<(Val, usize), ExprError> {
        let (lhs, start) = self.parse_primary()?;
        let Some((op, op_at)) = self.peek_binop() else {
            return Ok((lhs, start));
        };
        self.bump();
        if matches!(op, BinOp::NotIn) {
            self.bump();
        }
        let (rhs, _) = self.parse_primary()?;
        let node = compare(lhs, op, rhs, op_at)?;
        if let Some((_, at)) = self.peek_binop() {
            return err(
                at,
                "comparisons cannot be chained; join them with \"and\" or use parentheses",
            );
        }
        Ok((Val::Bool(node), start))
    }

    fn parse_primary(&mut self) -> Result<(Val, usize), ExprError> {
        let (tok, at) = self.peek();
        let tok = tok.clone();
        match tok {
            Tok::LParen => {
                self.enter(at)?;
                self.bump();
                let (inner, _) = self.parse_or()?;
                self.expect(&Tok::RParen, "\")\"")?;
                self.depth -= 1;
                Ok((inner, at))
            }
            Tok::LBracket => {
                self.enter(at)?;
                self.bump();
                let list = self.parse_list(at)?;
                self.depth -= 1;
                Ok((list, at))
            }
            Tok::Num(n) => {
                self.bump();
                Ok((Val::Num(NumExpr::Const(n)), at))
            }
            Tok::Str(s) => {
                self.bump();
                Ok((Val::Str(StrExpr::Const(s.into_boxed_str())), at))
            }
            Tok::Ident("true") => {
                self.bump();
                Ok((Val::Bool(Node::Const(true)), at))
            }
            Tok::Ident("false") => {
                self.bump();
                Ok((Val::Bool(Node::Const(false)), at))
            }
            Tok::Ident("cidr") => {
                let net = self.parse_cidr()?;
                Ok((Val::Cidrs(Box::new([net])), at))
            }
            Tok::Ident(name) if is_keyword(name) => {
                err(at, format!("expected a value, found {:?}", name))
            }
            Tok::Ident(name) => {
                self.bump();
                Ok((field_value(name, at)?, at))
            }
            other => err(at, format!("expected a value, found {}", other.describe())),
        }
    }

    fn expect(&mut self, want: &Tok<'_>, what: &str) -> Result<(), ExprError> {
        let (tok, at) = self.peek();
        if tok != want {
            return err(at, format!("expected {what}, found {}", tok.describe()));
        }
        self.bump();
        Ok(())
    }

    /// Parses `cidr("…")`, accepting a bare address as a single-host network.
    fn parse_cidr(&mut self) -> Result<IpNet, ExprError> {
        self.bump();
        self.expect(&Tok::LParen, "\"(\" after cidr")?;
        let (tok, at) = self.peek();
        let Tok::Str(text) = tok else {
            return err(at, "cidr() takes one string, like cidr(\"10.0.0.0/8\")");
        };
        let net = match text.parse::<IpNet>() {
            Ok(net) => net,
            Err(_) => match text.parse::<IpAddr>() {
                Ok(ip) => IpNet::from(ip),
                Err(_) => return err(at, format!("invalid cidr {text:?}")),
            },
        };
        self.bump();
        self.expect(&Tok::RParen, "\")\" after the cidr string")?;
        Ok(net)
    }

    /// Parses the rest of a list literal after `[`; all elements must be literals of one type.
    fn parse_list(&mut self, open_at: usize) -> Result<Val, ExprError> {
        let mut strs: Vec<Box<str>> = Vec::new();
        let mut nums: Vec<f64> = Vec::new();
        let mut nets: Vec<IpNet> = Vec::new();
        let mut kind: Option<&'static str> = None;
        loop {
            let (tok, at) = self.peek();
            let tok = tok.clone();
            if tok == Tok::RBracket {
                self.bump();
                break;
            }
            let this = match tok {
                Tok::Str(s) => {
                    self.bump();
                    strs.push(s.into_boxed_str());
                    "string"
                }
                Tok::Num(n) => {
                    self.bump();
                    nums.push(n);
                    "number"
                }
                Tok::Ident("cidr") => {
                    nets.push(self.parse_cidr()?);
                    "cidr"
                }
                other => {
                    return err(
                        at,
                        format!(
                        "list elements must be strings, numbers or cidr(...) literals, found {}",
                        other.describe()
                    ),
                    )
                }
            };
            match kind {
                None => kind = Some(this),
                Some(k) if k == this => {}
                Some(k) => return err(at, format!("a list of {k}s cannot hold a {this}")),
            }
            let (tok, at) = self.peek();
            match tok {
                Tok::Comma => self.bump(),
                Tok::RBracket => {}
                other => {
                    return err(
                        at,
                        format!(
                            "expected \",\" or \"]\" in list, found {}",
                            other.describe()
                        ),
                    )
                }
            }
        }
        match kind {
            Some("string") => Ok(Val::List(ListExpr::Const(strs.into_boxed_slice()))),
            Some("number") => Ok(Val::NumList(nums.into_boxed_slice())),
            Some(_) => Ok(Val::Cidrs(nets.into_boxed_slice())),
            None => err(open_at, "empty list; it would never match"),
        }
    }
}

fn is_keyword(word: &str) -> bool {
    matches!(
        word,
        "and" | "or" | "not" | "in" | "contains" | "starts_with" | "true" | "false" | "cidr"
    )
}

fn expect_bool(v: Val, at: usize, op: &str) -> Result<Node, ExprError> {
    match v {
        Val::Bool(n) => Ok(n),
        other => err(
            at,
            format!(
                "\"{op}\" needs true/false operands, but this is a {}",
                other.type_name()
            ),
        ),
    }
}

fn field_value(name: &str, at: usize) -> Result<Val, ExprError> {
    if let Some(attr) = name.strip_prefix("attr.") {
        let valid = !attr.is_empty()
            && attr.len() <= MAX_ATTR_NAME
            && attr
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !valid {
            return err(
                at,
                format!("attribute names are 1 to {MAX_ATTR_NAME} characters of a-z, 0-9 and _"),
            );
        }
        return Ok(Val::Str(StrExpr::Attr(attr.into())));
    }
    match fields::lookup(name) {
        Some(Field::Num(n)) => Ok(Val::Num(NumExpr::Field(n))),
        Some(Field::Str(s)) => Ok(Val::Str(StrExpr::Field(s))),
        Some(Field::Bool(b)) => Ok(Val::Bool(Node::Field(b))),
        Some(Field::List(l)) => Ok(Val::List(ListExpr::Field(l))),
        Some(Field::Ip) => Ok(Val::Ip),
        // Long names are not echoed whole; the file is the operator's, but messages stay short.
        None => {
            let shown: String = name.chars().take(80).collect();
            match fields::suggest(name) {
                Some(s) => err(at, format!("unknown field {shown:?} (did you mean {s:?}?)")),
                None => err(at, format!("unknown field {shown:?}")),
            }
        }
    }
}

/// Type-checks one comparison and compiles it.
fn compare(lhs: Val, op: BinOp, rhs: Val, at: usize) -> Result<Node, ExprError> {
    let mismatch = |lhs: &Val, rhs: &Val, need: &str| {
        err(
            at,
            format!(
                "{:?} needs {need}, got {} and {}",
                op.symbol(),
                lhs.type_name(),
                rhs.type_name()
            ),
        )
    };
    match op {
        BinOp::Cmp(cmp @ (CmpOp::Eq | CmpOp::Ne)) => {
            let neg = cmp == CmpOp::Ne;
            match (lhs, rhs) {
                (Val::Num(a), Val::Num(b)) => Ok(Node::NumCmp(a, cmp, b)),
                (Val::Str(a), Val::Str(b)) => Ok(Node::StrEq(a, b, neg)),
                (Val::Bool(a), Val::Bool(b)) => Ok(Node::BoolEq(Box::new(a), Box::new(b), neg)),
                (Val::Ip, Val::Cidrs(_)) => err(
                    at,
                    format!(
                        "{:?} cannot compare an ip address; use \"client.ip in cidr(...)\"",
                        op.symbol()
                    ),
                ),
                (a, b) => mismatch(
                    &a,
                    &b,
                    "two values of the same type (number, string or bool)",
                ),
            }
        }
        BinOp::Cmp(cmp) => match (lhs, rhs) {
            (Val::Num(a), Val::Num(b)) => Ok(Node::NumCmp(a, cmp, b)),
            (a, b) => mismatch(&a, &b, "two numbers"),
        },
        BinOp::In | BinOp::NotIn => {
            let neg = matches!(op, BinOp::NotIn);
            match (lhs, rhs) {
                (Val::Str(s), Val::List(l)) => Ok(Node::StrIn(s, l, neg)),
                (Val::Num(n), Val::NumList(l)) => Ok(Node::NumIn(n, l, neg)),
                (Val::Ip, Val::Cidrs(c)) => Ok(Node::IpIn(c, neg)),
                (a, b) => mismatch(
                    &a,
                    &b,
                    "a string and a string list, a number and a number list, or client.ip and cidrs",
                ),
            }
        }
        BinOp::Contains => match (lhs, rhs) {
            (Val::Str(a), Val::Str(b)) => Ok(Node::StrContains(a, b)),
            (Val::List(l), Val::Str(s)) => Ok(Node::StrIn(s, l, false)),
            (a, b) => mismatch(&a, &b, "a string or string list, then a string"),
        },
        BinOp::StartsWith => match (lhs, rhs) {
            (Val::Str(a), Val::Str(b)) => Ok(Node::StrStartsWith(a, b)),
            (a, b) => mismatch(&a, &b, "two strings"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(src: &str, f: &Facts<'_>) -> bool {
        Condition::compile(src).unwrap().eval(f)
    }

    fn error(src: &str) -> ExprError {
        Condition::compile(src).unwrap_err()
    }

    #[test]
    fn lexes_numbers_in_all_documented_forms() {
        let f = Facts::default();
        for (src, want) in [
            ("1 == 1.0", true),
            ("-1 < 0", true),
            ("-0.5 < -0.25", true),
            ("1e3 == 1000", true),
            ("2.5E-1 == 0.25", true),
            (".5 == 0.5", true),
            ("3 > 4", false),
        ] {
            assert_eq!(eval(src, &f), want, "{src}");
        }
    }

    #[test]
    fn string_escapes_are_decoded() {
        let f = Facts {
            client: crate::ClientFacts {
                user_agent: "say \"hi\" \\o/",
                ..Default::default()
            },
            ..Default::default()
        };
        assert!(eval(r#"client.user_agent == "say \"hi\" \\o/""#, &f));
        assert_eq!(error(r#""a\nb" == "x""#).offset, 2);
        assert_eq!(error(r#"client.ja4 == "abc"#).offset, 14);
    }

    #[test]
    fn not_binds_looser_than_comparisons() {
        let f = Facts {
            account: crate::AccountFacts {
                risk: 0.2,
                ..Default::default()
            },
            ..Default::default()
        };
        assert!(eval("not account.risk >= 0.5", &f));
        assert!(!eval("not account.risk < 0.5", &f));
        assert!(eval("not not account.risk < 0.5", &f));
    }

    #[test]
    fn and_binds_tighter_than_or() {
        let f = Facts::default();
        // Parsed as `true or (false and false)`; the other grouping would be false.
        assert!(eval("true or false and false", &f));
        assert!(!eval("(true or false) and false", &f));
        assert!(eval("false and false or true", &f));
        assert!(!eval("not true or false", &f));
        assert!(eval("not (true and false)", &f));
    }

    #[test]
    fn chained_comparisons_are_rejected() {
        let e = error("0 < account.risk < 1");
        assert_eq!(e.offset, 17);
        assert!(e.message.contains("chained"), "{}", e.message);
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = format!("{}true{}", "(".repeat(200), ")".repeat(200));
        assert!(error(&deep).message.contains("deeper"));
        let nots = format!("{}true", "not ".repeat(200));
        assert!(error(&nots).message.contains("deeper"));
        let ok = format!("{}true{}", "(".repeat(50), ")".repeat(50));
        assert!(eval(&ok, &Facts::default()));
    }

    #[test]
    fn long_expressions_are_rejected() {
        let long = format!("{}true", " ".repeat(MAX_EXPR_LEN));
        assert!(error(&long).message.contains("longer"));
    }

    #[test]
    fn lists_must_be_homogeneous_and_non_empty() {
        assert_eq!(error(r#"account.tier in ["a", 1]"#).offset, 22);
        assert!(error("account.tier in []").message.contains("empty"));
        assert!(error("account.tier in [account.id]")
            .message
            .contains("list elements"));
        assert!(eval(r#"account.tier in ["", "b",]"#, &Facts::default()));
    }

    #[test]
    fn keywords_are_not_values() {
        assert!(error("and").message.contains("expected a value"));
        assert!(error("account.risk >= ")
            .message
            .contains("end of expression"));
        assert!(error("true true").message.contains("unexpected"));
        assert!(error("account.flagged = true").message.contains("=="));
        assert!(error("!account.flagged").message.contains("not"));
        assert!(error("account.flagged @")
            .message
            .contains("unexpected character"));
    }

    #[test]
    fn attr_names_are_validated() {
        assert!(eval(r#"attr.org_id_2 == """#, &Facts::default()));
        assert!(error("attr.Org == \"\"").message.contains("attribute"));
        assert!(error("attr. == \"\"").message.contains("attribute"));
    }
}

//! Indicators a partner shared, compiled for matching requests against them.
//!
//! [`Feed::add`] takes objects already checked with [`crate::check_object`] and compiles the
//! indicators whose STIX pattern says something one request can show: an address or block, an
//! autonomous system, a `User-Agent`, a JA4 fingerprint, or a keyed (HMAC) template or payment
//! fingerprint as [`crate::Exporter`] writes them. [`Feeds::matches`] then runs on every
//! request: hash lookups only (addresses by prefix length and family), no allocation but the
//! hits pushed and the HMACs of the request's keyed fingerprints.
//!
//! Supported patterns: one observation (or observations joined by `OR`), no qualifier, whose
//! comparison expression is an `OR` of
//! - `ipv4-addr:value` / `ipv6-addr:value` `=` an address or CIDR block, or `ISSUBSET` a block
//!   (blocks broader than /8 for IPv4 or /16 for IPv6 are refused: one bad indicator must not
//!   flag the whole Internet);
//! - `autonomous-system:number = N`;
//! - `network-traffic:extensions.'http-request-ext'.request_header.'User-Agent' = '…'`;
//! - `x-moat-ja4:value = '…'`;
//! - `x-moat-fingerprint:hmac = '<64 hex>' AND x-moat-fingerprint:kind = 'template'|'payment'`
//!   (either order), matched only with the partner's key;
//!
//! and `IN (…)` sets for the string and integer ones. Anything else is
//! [`Loaded::Unsupported`] with the reason, for the import report.
//!
//! Not here: reading or checking STIX ([`crate::parse_bundle`]), storing feeds, or deciding
//! what a hit means (the gateway's policy).

use std::collections::HashMap;
use std::net::IpAddr;

use moat_types::Timestamp;
use serde_json::{Map, Value};

use crate::patterning::{
    parse_pattern, stix_time, Comparison, Literal, ObjectPath, Operand, Operator, PathStep,
    Pattern, Test,
};
use crate::{IntelError, PartnerKey};

/// Shortest IPv4 prefix an indicator may name.
pub const MIN_V4_PREFIX: u8 = 8;

/// Shortest IPv6 prefix an indicator may name.
pub const MIN_V6_PREFIX: u8 = 16;

/// What the gateway knows of one request that indicators can match.
#[derive(Debug, Clone, Copy, Default)]
pub struct Probe<'a> {
    /// When the request was made (indicators match only inside their validity window).
    pub ts: Timestamp,
    /// The client address.
    pub ip: Option<IpAddr>,
    /// The client's autonomous system.
    pub asn: Option<u32>,
    /// The `User-Agent` header, `""` when absent.
    pub user_agent: &'a str,
    /// The TLS JA4 fingerprint, `""` when unknown.
    pub ja4: &'a str,
    /// The prompt's template fingerprints (`moat_detect::template`).
    pub templates: &'a [u64],
    /// The account's raw payment fingerprint, if the provider knows it.
    pub payment: Option<&'a str>,
}

/// What kind of value an indicator matched on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HitKind {
    /// An IPv4 or IPv6 address or block.
    Address,
    /// An autonomous system.
    Asn,
    /// A `User-Agent`.
    UserAgent,
    /// A JA4 TLS fingerprint.
    Ja4,
    /// A keyed prompt-template fingerprint.
    Template,
    /// A keyed payment fingerprint.
    Payment,
}

impl HitKind {
    /// The name the policy reads in `intel.kinds`.
    pub fn name(self) -> &'static str {
        match self {
            HitKind::Address => "address",
            HitKind::Asn => "asn",
            HitKind::UserAgent => "user_agent",
            HitKind::Ja4 => "ja4",
            HitKind::Template => "template",
            HitKind::Payment => "payment",
        }
    }
}

/// One indicator that matched a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit<'f> {
    /// The feed (partner) the indicator came from.
    pub source: &'f str,
    /// The indicator's STIX id.
    pub indicator: &'f str,
    /// What it matched on (the first in [`HitKind`] order when it matched on several).
    pub kind: HitKind,
}

/// What [`Feed::add`] made of an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Loaded {
    /// An indicator that requests can match.
    Matchable,
    /// A well-formed indicator this feed cannot match (why, for the import report).
    Unsupported(String),
    /// Not an indicator, revoked, or an older version of an indicator the feed holds a later
    /// version of: kept for provenance, never matched.
    Skipped,
}

/// How many matchable indicators match on each kind of value (an indicator with values of two
/// kinds counts under both).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KindCounts {
    /// Addresses and blocks.
    pub address: usize,
    /// Autonomous systems.
    pub asn: usize,
    /// `User-Agent`s.
    pub user_agent: usize,
    /// JA4 fingerprints.
    pub ja4: usize,
    /// Keyed template fingerprints.
    pub template: usize,
    /// Keyed payment fingerprints.
    pub payment: usize,
}

impl KindCounts {
    /// The count of one kind.
    pub fn get(&self, kind: HitKind) -> usize {
        match kind {
            HitKind::Address => self.address,
            HitKind::Asn => self.asn,
            HitKind::UserAgent => self.user_agent,
            HitKind::Ja4 => self.ja4,
            HitKind::Template => self.template,
            HitKind::Payment => self.payment,
        }
    }

    fn bump(&mut self, kind: HitKind) {
        let n = match kind {
            HitKind::Address => &mut self.address,
            HitKind::Asn => &mut self.asn,
            HitKind::UserAgent => &mut self.user_agent,
            HitKind::Ja4 => &mut self.ja4,
            HitKind::Template => &mut self.template,
            HitKind::Payment => &mut self.payment,
        };
        *n += 1;
    }
}

/// One value an indicator matches on.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    /// Network (masked) and prefix length.
    V4(u32, u8),
    V6(u128, u8),
    Asn(u32),
    UserAgent(String),
    Ja4(String),
    /// Lowercase hex HMAC.
    Template(String),
    Payment(String),
}

impl Key {
    fn kind(&self) -> HitKind {
        match self {
            Key::V4(..) | Key::V6(..) => HitKind::Address,
            Key::Asn(_) => HitKind::Asn,
            Key::UserAgent(_) => HitKind::UserAgent,
            Key::Ja4(_) => HitKind::Ja4,
            Key::Template(_) => HitKind::Template,
            Key::Payment(_) => HitKind::Payment,
        }
    }
}

/// One indicator id: its latest version seen and, when matchable, what it matches.
#[derive(Debug, Clone)]
struct Slot {
    id: String,
    version: (Timestamp, u32),
    status: Loaded,
    valid_from: Timestamp,
    valid_until: Option<Timestamp>,
    /// Sorted, without duplicates; empty unless `status` is [`Loaded::Matchable`].
    keys: Vec<Key>,
}

impl Slot {
    fn valid_at(&self, ts: Timestamp) -> bool {
        self.valid_from <= ts && self.valid_until.is_none_or(|u| ts < u)
    }
}

/// Slots by value; each list of slot numbers is in increasing order.
type Index<K> = HashMap<K, Vec<u32>>;

/// The indicators of one source, compiled.
#[derive(Debug, Clone)]
pub struct Feed {
    source: String,
    key: Option<PartnerKey>,
    slots: Vec<Slot>,
    by_id: HashMap<String, u32>,
    /// Per prefix length, the blocks of that length.
    v4: Vec<(u8, Index<u32>)>,
    v6: Vec<(u8, Index<u128>)>,
    asns: Index<u32>,
    user_agents: Index<String>,
    ja4s: Index<String>,
    templates: Index<String>,
    payments: Index<String>,
    matchable: usize,
}

impl Feed {
    /// An empty feed named `source`; `key` is the key shared with that partner, needed to match
    /// its keyed (template and payment) fingerprints.
    pub fn new(source: impl Into<String>, key: Option<PartnerKey>) -> Self {
        Feed {
            source: source.into(),
            key,
            slots: Vec::new(),
            by_id: HashMap::new(),
            v4: Vec::new(),
            v6: Vec::new(),
            asns: HashMap::new(),
            user_agents: HashMap::new(),
            ja4s: HashMap::new(),
            templates: HashMap::new(),
            payments: HashMap::new(),
            matchable: 0,
        }
    }

    /// The feed's name.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Adds one object (checked with [`crate::check_object`]). A later version (greater
    /// `modified`) of an indicator replaces the one held, whatever it makes of it (a revoked
    /// or unsupported later version stops the earlier from matching); an older version is
    /// [`Loaded::Skipped`]; the same version again gives the same answer and changes nothing.
    /// `Err` only for an object `check_object` would refuse in the properties read here.
    pub fn add(&mut self, obj: &Value) -> Result<Loaded, IntelError> {
        let Some(o) = obj.as_object() else {
            return Err(IntelError::Malformed("object is not a JSON object".into()));
        };
        if o.get("type").and_then(Value::as_str) != Some("indicator") {
            return Ok(Loaded::Skipped);
        }
        let id = string(o, "id")?;
        let version = match o.get("modified").or_else(|| o.get("created")) {
            Some(v) => time(v, "modified")?,
            None => return Err(property("modified", "is required")),
        };
        let valid_from = time(
            o.get("valid_from")
                .ok_or_else(|| property("valid_from", "is required"))?,
            "valid_from",
        )?
        .0;
        let valid_until = o
            .get("valid_until")
            .map(|v| time(v, "valid_until"))
            .transpose()?
            .map(|t| t.0);
        let revoked = o.get("revoked").and_then(Value::as_bool) == Some(true);
        let (status, keys) = if revoked {
            (Loaded::Skipped, Vec::new())
        } else {
            match self.compile(o)? {
                Ok(keys) => (Loaded::Matchable, keys),
                Err(reason) => (Loaded::Unsupported(reason), Vec::new()),
            }
        };
        let slot = Slot {
            id: id.to_owned(),
            version,
            status: status.clone(),
            valid_from,
            valid_until,
            keys,
        };
        let n = match self.by_id.get(id) {
            Some(&n) => {
                let Some(held) = self.slots.get(n as usize) else {
                    return Ok(Loaded::Skipped);
                };
                if slot.version < held.version {
                    return Ok(Loaded::Skipped);
                }
                if slot.version == held.version {
                    return Ok(held.status.clone());
                }
                self.unindex(n);
                if let Some(s) = self.slots.get_mut(n as usize) {
                    *s = slot;
                }
                n
            }
            None => {
                let n = u32::try_from(self.slots.len())
                    .map_err(|_| IntelError::Malformed("too many indicators in one feed".into()))?;
                self.by_id.insert(id.to_owned(), n);
                self.slots.push(slot);
                n
            }
        };
        self.index(n);
        Ok(status)
    }

    /// How many matchable indicators the feed holds.
    pub fn len(&self) -> usize {
        self.matchable
    }

    /// Whether the feed holds no matchable indicator.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many matchable indicators match on each kind of value.
    pub fn kinds(&self) -> KindCounts {
        let mut counts = KindCounts::default();
        for s in &self.slots {
            let mut last = None;
            for k in &s.keys {
                let kind = k.kind();
                // Keys are sorted, so the keys of one kind are together.
                if last != Some(kind) {
                    counts.bump(kind);
                    last = Some(kind);
                }
            }
        }
        counts
    }

    /// Whether the feed has the partner key (without it keyed fingerprints are unsupported).
    pub fn has_key(&self) -> bool {
        self.key.is_some()
    }

    /// Appends to `out` every indicator of this feed valid at `probe.ts` that matches the
    /// probe, once each, in the order the feed first saw them.
    pub fn matches<'f>(&'f self, probe: &Probe<'_>, out: &mut Vec<Hit<'f>>) {
        let start = out.len();
        let ts = probe.ts;
        match probe.ip.map(|ip| ip.to_canonical()) {
            Some(IpAddr::V4(a)) => {
                let a = u32::from(a);
                for (len, blocks) in &self.v4 {
                    if let Some(s) = blocks.get(&mask4(a, *len)) {
                        self.push(s, HitKind::Address, ts, out);
                    }
                }
            }
            Some(IpAddr::V6(a)) => {
                let a = u128::from(a);
                for (len, blocks) in &self.v6 {
                    if let Some(s) = blocks.get(&mask6(a, *len)) {
                        self.push(s, HitKind::Address, ts, out);
                    }
                }
            }
            None => {}
        }
        if let Some(s) = probe.asn.and_then(|a| self.asns.get(&a)) {
            self.push(s, HitKind::Asn, ts, out);
        }
        if !probe.user_agent.is_empty() {
            if let Some(s) = self.user_agents.get(probe.user_agent) {
                self.push(s, HitKind::UserAgent, ts, out);
            }
        }
        if !probe.ja4.is_empty() {
            if let Some(s) = self.ja4s.get(probe.ja4) {
                self.push(s, HitKind::Ja4, ts, out);
            }
        }
        if let Some(key) = &self.key {
            if !self.templates.is_empty() {
                for t in probe.templates {
                    let hmac = key.fingerprint("template", &t.to_string());
                    if let Some(s) = self.templates.get(&hmac) {
                        self.push(s, HitKind::Template, ts, out);
                    }
                }
            }
            if let Some(p) = probe.payment.filter(|_| !self.payments.is_empty()) {
                let hmac = key.fingerprint("payment", p);
                if let Some(s) = self.payments.get(&hmac) {
                    self.push(s, HitKind::Payment, ts, out);
                }
            }
        }
        let hits = out.get_mut(start..).unwrap_or_default();
        if hits.len() > 1 {
            // One hit per indicator, in slot order, of the first kind in `HitKind` order.
            let slot_of = |h: &Hit<'_>| self.by_id.get(h.indicator).copied().unwrap_or(u32::MAX);
            hits.sort_unstable_by_key(|h| (slot_of(h), h.kind));
            let mut kept = 0;
            for i in 0..hits.len() {
                if kept == 0 || hits[kept - 1].indicator != hits[i].indicator {
                    hits[kept] = hits[i];
                    kept += 1;
                }
            }
            out.truncate(start + kept);
        }
    }

    fn push<'f>(&'f self, slots: &[u32], kind: HitKind, ts: Timestamp, out: &mut Vec<Hit<'f>>) {
        for &n in slots {
            if let Some(s) = self.slots.get(n as usize) {
                if s.valid_at(ts) {
                    out.push(Hit {
                        source: &self.source,
                        indicator: &s.id,
                        kind,
                    });
                }
            }
        }
    }

    /// The keys of an indicator's pattern, `Ok(Err(reason))` when the feed cannot match it.
    fn compile(&self, o: &Map<String, Value>) -> Result<Result<Vec<Key>, String>, IntelError> {
        let pattern_type = string(o, "pattern_type")?;
        let text = string(o, "pattern")?;
        if pattern_type != "stix" {
            return Ok(Err(format!(
                "pattern_type {:?} is not matched (only stix)",
                clip(pattern_type)
            )));
        }
        let pattern = parse_pattern(text).map_err(|e| property("pattern", e.to_string()))?;
        let mut keys = Vec::new();
        if let Err(reason) = self.observations(&pattern, &mut keys) {
            return Ok(Err(reason));
        }
        if keys.is_empty() {
            return Ok(Err("the pattern matches no value (an empty set)".into()));
        }
        keys.sort();
        keys.dedup();
        Ok(Ok(keys))
    }

    fn observations(&self, p: &Pattern, keys: &mut Vec<Key>) -> Result<(), String> {
        match p {
            Pattern::Observation(c) => self.comparison(c, keys),
            Pattern::Or(all) => all.iter().try_for_each(|p| self.observations(p, keys)),
            Pattern::And(_) => Err(
                "observation expressions joined by AND are not matched (a request is one observation)"
                    .into(),
            ),
            Pattern::FollowedBy(_) => Err(
                "FOLLOWEDBY is not matched (a request is one observation)".into(),
            ),
            Pattern::Qualified(..) => {
                Err("qualifiers (WITHIN, REPEATS, START/STOP) are not matched".into())
            }
        }
    }

    fn comparison(&self, c: &Comparison, keys: &mut Vec<Key>) -> Result<(), String> {
        match c {
            Comparison::Test(t) => atom(t, keys),
            Comparison::Or(all) => all.iter().try_for_each(|c| self.comparison(c, keys)),
            Comparison::And(all) => {
                keys.push(self.fingerprint(all)?);
                Ok(())
            }
        }
    }

    /// `x-moat-fingerprint:hmac = '…' AND x-moat-fingerprint:kind = '…'`, either order.
    fn fingerprint(&self, all: &[Comparison]) -> Result<Key, String> {
        const SHAPE: &str = "comparisons joined by AND are matched only as \
             x-moat-fingerprint:hmac = '<hex>' AND x-moat-fingerprint:kind = 'template'|'payment'";
        let eq = |c: &Comparison, prop: &str| -> Option<String> {
            match c {
                Comparison::Test(Test {
                    path,
                    negated: false,
                    op: Operator::Eq,
                    operand: Operand::Literal(Literal::Str(s)),
                }) if path.is("x-moat-fingerprint", &[prop]) => Some(s.clone()),
                _ => None,
            }
        };
        let [a, b] = all else {
            return Err(SHAPE.into());
        };
        let (hmac, kind) = match (eq(a, "hmac"), eq(b, "kind"), eq(b, "hmac"), eq(a, "kind")) {
            (Some(h), Some(k), _, _) | (_, _, Some(h), Some(k)) => (h, k),
            _ => return Err(SHAPE.into()),
        };
        if hmac.len() != 64 || !hmac.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(format!(
                "keyed fingerprint {:?} is not an HMAC-SHA256 in hex",
                clip(&hmac)
            ));
        }
        let hmac = hmac.to_ascii_lowercase();
        let key = match kind.as_str() {
            "template" => Key::Template(hmac),
            "payment" => Key::Payment(hmac),
            other => {
                return Err(format!(
                    "keyed fingerprint kind {:?} is not matched (template or payment)",
                    clip(other)
                ))
            }
        };
        if self.key.is_none() {
            return Err(format!(
                "keyed fingerprint: no key configured for source {:?}",
                self.source
            ));
        }
        Ok(key)
    }

    fn index(&mut self, n: u32) {
        let Some(slot) = self.slots.get(n as usize) else {
            return;
        };
        if slot.status == Loaded::Matchable {
            self.matchable += 1;
        }
        for k in &slot.keys {
            let list = match k {
                Key::V4(net, len) => block_index(&mut self.v4, *len).entry(*net).or_default(),
                Key::V6(net, len) => block_index(&mut self.v6, *len).entry(*net).or_default(),
                Key::Asn(a) => self.asns.entry(*a).or_default(),
                Key::UserAgent(s) => self.user_agents.entry(s.clone()).or_default(),
                Key::Ja4(s) => self.ja4s.entry(s.clone()).or_default(),
                Key::Template(s) => self.templates.entry(s.clone()).or_default(),
                Key::Payment(s) => self.payments.entry(s.clone()).or_default(),
            };
            // Keep each list in slot order (a replaced indicator keeps its slot number).
            if let Err(at) = list.binary_search(&n) {
                list.insert(at, n);
            }
        }
    }

    fn unindex(&mut self, n: u32) {
        let Some(slot) = self.slots.get(n as usize) else {
            return;
        };
        if slot.status == Loaded::Matchable {
            self.matchable -= 1;
        }
        fn drop_from<K: std::hash::Hash + Eq>(index: &mut Index<K>, key: &K, n: u32) {
            if let Some(list) = index.get_mut(key) {
                list.retain(|&s| s != n);
                if list.is_empty() {
                    index.remove(key);
                }
            }
        }
        for k in &slot.keys {
            match k {
                Key::V4(net, len) => drop_from(block_index(&mut self.v4, *len), net, n),
                Key::V6(net, len) => drop_from(block_index(&mut self.v6, *len), net, n),
                Key::Asn(a) => drop_from(&mut self.asns, a, n),
                Key::UserAgent(s) => drop_from(&mut self.user_agents, s, n),
                Key::Ja4(s) => drop_from(&mut self.ja4s, s, n),
                Key::Template(s) => drop_from(&mut self.templates, s, n),
                Key::Payment(s) => drop_from(&mut self.payments, s, n),
            }
        }
    }
}

/// The index of blocks of prefix length `len`, created when missing.
fn block_index<K>(by_len: &mut Vec<(u8, Index<K>)>, len: u8) -> &mut Index<K> {
    let at = match by_len.binary_search_by_key(&len, |(l, _)| *l) {
        Ok(at) => at,
        Err(at) => {
            by_len.insert(at, (len, HashMap::new()));
            at
        }
    };
    &mut by_len[at].1
}

fn mask4(a: u32, len: u8) -> u32 {
    a & u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0)
}

fn mask6(a: u128, len: u8) -> u128 {
    a & u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0)
}

const USER_AGENT: [&str; 4] = [
    "extensions",
    "http-request-ext",
    "request_header",
    "user-agent",
];

/// The keys of one test.
fn atom(t: &Test, keys: &mut Vec<Key>) -> Result<(), String> {
    let path = &t.path;
    let which = if path.is("ipv4-addr", &["value"]) {
        Atom::V4
    } else if path.is("ipv6-addr", &["value"]) {
        Atom::V6
    } else if path.is("autonomous-system", &["number"]) {
        Atom::Asn
    } else if path.object_type == "network-traffic" && is_user_agent(path) {
        Atom::UserAgent
    } else if path.is("x-moat-ja4", &["value"]) {
        Atom::Ja4
    } else {
        return Err(format!("object path {} is not matched", show(path)));
    };
    let values: &[Literal] = match (&t.op, &t.operand) {
        _ if t.negated => return Err(format!("NOT is not matched (on {})", show(path))),
        (Operator::Eq, Operand::Literal(l)) => std::slice::from_ref(l),
        (Operator::In, Operand::Set(v)) => v,
        (Operator::IsSubset, Operand::Literal(l)) if matches!(which, Atom::V4 | Atom::V6) => {
            std::slice::from_ref(l)
        }
        (op, _) => return Err(format!("operator {op:?} is not matched on {}", show(path))),
    };
    for v in values {
        let key = match (which, v) {
            (Atom::V4 | Atom::V6, Literal::Str(s)) => block(s, which == Atom::V6)?,
            (Atom::Asn, Literal::Int(n)) => Key::Asn(
                u32::try_from(*n).map_err(|_| format!("{n} is not an autonomous system number"))?,
            ),
            (Atom::UserAgent, Literal::Str(s)) => Key::UserAgent(s.clone()),
            (Atom::Ja4, Literal::Str(s)) => Key::Ja4(s.clone()),
            (_, l) => {
                return Err(format!(
                    "{} compared with {} is not matched",
                    show(path),
                    literal_kind(l)
                ))
            }
        };
        keys.push(key);
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Atom {
    V4,
    V6,
    Asn,
    UserAgent,
    Ja4,
}

/// `extensions.'http-request-ext'.request_header.'User-Agent'` (header name in any case).
fn is_user_agent(path: &ObjectPath) -> bool {
    path.steps.len() == USER_AGENT.len()
        && path.steps.iter().zip(USER_AGENT).all(|(s, want)| {
            matches!(s, PathStep::Property(p) if p.eq_ignore_ascii_case(want)
                && (want == "user-agent" || p == want))
        })
}

/// An address (`203.0.113.9`) or block (`203.0.113.0/24`, host bits ignored) of one family.
fn block(s: &str, v6: bool) -> Result<Key, String> {
    let family = if v6 { "IPv6" } else { "IPv4" };
    let bad = || format!("{:?} is not an {family} address or CIDR block", clip(s));
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (s, None),
    };
    let max: u8 = if v6 { 128 } else { 32 };
    let len = match len {
        None => max,
        Some(l) if !l.is_empty() && l.len() <= 3 && l.bytes().all(|b| b.is_ascii_digit()) => {
            l.parse::<u8>().ok().filter(|&n| n <= max).ok_or_else(bad)?
        }
        Some(_) => return Err(bad()),
    };
    let min = if v6 { MIN_V6_PREFIX } else { MIN_V4_PREFIX };
    if len < min {
        return Err(format!(
            "block {:?} is broader than /{min}, refused",
            clip(s)
        ));
    }
    match (addr.parse::<IpAddr>().map_err(|_| bad())?, v6) {
        (IpAddr::V4(a), false) => Ok(Key::V4(mask4(u32::from(a), len), len)),
        (IpAddr::V6(a), true) => Ok(Key::V6(mask6(u128::from(a), len), len)),
        _ => Err(bad()),
    }
}

fn show(path: &ObjectPath) -> String {
    let mut out = clip(&path.object_type);
    out.push(':');
    for (i, s) in path.steps.iter().enumerate() {
        match s {
            PathStep::Property(p) => {
                if i > 0 {
                    out.push('.');
                }
                let plain =
                    !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
                if plain {
                    out.push_str(&clip(p));
                } else {
                    out.push_str(&format!("'{}'", crate::escape(&clip(p))));
                }
            }
            PathStep::Index(n) => out.push_str(&format!("[{n}]")),
            PathStep::Any => out.push_str("[*]"),
        }
        if out.len() > 200 {
            out.push('…');
            break;
        }
    }
    out
}

fn literal_kind(l: &Literal) -> &'static str {
    match l {
        Literal::Int(_) => "an integer",
        Literal::Float(_) => "a decimal",
        Literal::Str(_) => "a string",
        Literal::Bool(_) => "a boolean",
        Literal::Timestamp(_) => "a timestamp",
        Literal::Binary(_) => "a binary",
        Literal::Hex(_) => "a hex",
    }
}

fn string<'a>(o: &'a Map<String, Value>, name: &str) -> Result<&'a str, IntelError> {
    o.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| property(name, "is required as a string"))
}

fn time(v: &Value, name: &str) -> Result<(Timestamp, u32), IntelError> {
    v.as_str()
        .and_then(stix_time)
        .ok_or_else(|| property(name, "is not a STIX timestamp (YYYY-MM-DDTHH:MM:SS[.s+]Z)"))
}

fn property(name: &str, reason: impl Into<String>) -> IntelError {
    IntelError::Property {
        property: name.to_owned(),
        reason: reason.into(),
    }
}

fn clip(s: &str) -> String {
    let mut out: String = s.chars().take(100).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

/// Every feed the gateway matches against.
#[derive(Debug, Clone, Default)]
pub struct Feeds {
    feeds: Vec<Feed>,
}

impl Feeds {
    /// The feeds, matched in this order.
    pub fn new(feeds: Vec<Feed>) -> Self {
        Feeds { feeds }
    }

    /// The feeds, in matching order.
    pub fn feeds(&self) -> &[Feed] {
        &self.feeds
    }

    /// Whether there is nothing to match.
    pub fn is_empty(&self) -> bool {
        self.feeds.iter().all(Feed::is_empty)
    }

    /// Appends to `out` every indicator valid at `probe.ts` that matches the probe: feed by
    /// feed, each indicator once, in the order its feed first saw it.
    pub fn matches<'f>(&'f self, probe: &Probe<'_>, out: &mut Vec<Hit<'f>>) {
        for feed in &self.feeds {
            feed.matches(probe, out);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::{check_object, parse_bundle, ExportOptions, Exporter};
    use moat_detect::template;
    use moat_types::{
        Account, CampaignDetection, Client, Detection, Exchange, Message, Request, Signal,
    };
    use proptest::prelude::*;
    use serde_json::json;

    const DAY: i64 = Timestamp::DAY;

    fn ts(ms: i64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    fn key(b: u8) -> PartnerKey {
        PartnerKey::new(vec![b; 32]).unwrap()
    }

    /// An indicator numbered `n` (its id), checked before it is returned.
    fn indicator(n: u32, pattern: &str, modified: &str) -> Value {
        let v = json!({
            "type": "indicator",
            "spec_version": "2.1",
            "id": format!("indicator--00000000-0000-4000-8000-{n:012}"),
            "created": "2024-01-01T00:00:00Z",
            "modified": modified,
            "pattern": pattern,
            "pattern_type": "stix",
            "valid_from": "2024-01-01T00:00:00Z",
            "valid_until": "2024-03-01T00:00:00Z",
        });
        check_object(&v).unwrap();
        v
    }

    fn id(n: u32) -> String {
        format!("indicator--00000000-0000-4000-8000-{n:012}")
    }

    /// A time inside every test indicator's window.
    fn now() -> Timestamp {
        Timestamp::parse("2024-02-01T00:00:00Z").unwrap()
    }

    fn probe_ip(ip: &str) -> Probe<'static> {
        Probe {
            ts: now(),
            ip: Some(ip.parse().unwrap()),
            ..Probe::default()
        }
    }

    fn hits<'f>(feeds: &'f Feeds, probe: &Probe<'_>) -> Vec<Hit<'f>> {
        let mut out = Vec::new();
        feeds.matches(probe, &mut out);
        out
    }

    fn hit_ids(feed: &Feed, probe: &Probe<'_>) -> Vec<(String, HitKind)> {
        let mut out = Vec::new();
        feed.matches(probe, &mut out);
        out.iter()
            .map(|h| (h.indicator.to_owned(), h.kind))
            .collect()
    }

    fn load(feed: &mut Feed, pattern: &str) -> Loaded {
        let n = feed.slots.len() as u32 + 1;
        feed.add(&indicator(n, pattern, "2024-01-01T00:00:00Z"))
            .unwrap()
    }

    #[test]
    fn supported_patterns_are_matchable() {
        let hmac = "AB".repeat(32);
        let mut f = Feed::new("p", Some(key(1)));
        for p in [
            "[ipv4-addr:value = '198.51.100.7']",
            "[ipv4-addr:value = '203.0.113.77/24']",
            "[ipv4-addr:value ISSUBSET '10.1.0.0/16']",
            "[ipv6-addr:value ISSUBSET '2001:db8:1::/48']",
            "[autonomous-system:number IN (64500, 64501)]",
            "[network-traffic:extensions.'http-request-ext'.request_header.'user-agent' = 'bot']",
            "[x-moat-ja4:value IN ('j1', 'j2')]",
            &format!("[x-moat-fingerprint:kind = 'payment' AND x-moat-fingerprint:hmac = '{hmac}']"),
            "[ipv4-addr:value = '192.0.2.1' OR autonomous-system:number = 7] OR [x-moat-ja4:value = 'j3']",
        ] {
            assert_eq!(load(&mut f, p), Loaded::Matchable, "{p}");
        }
        assert_eq!(f.len(), 9);
        assert_eq!(
            f.kinds(),
            KindCounts {
                address: 5,
                asn: 2,
                user_agent: 1,
                ja4: 2,
                template: 0,
                payment: 1
            }
        );
        let v4 = |ip: &str| hit_ids(&f, &probe_ip(ip));
        assert_eq!(v4("198.51.100.7"), vec![(id(1), HitKind::Address)]);
        assert!(v4("198.51.100.8").is_empty());
        assert_eq!(v4("203.0.113.1"), vec![(id(2), HitKind::Address)]);
        assert_eq!(v4("10.1.255.255"), vec![(id(3), HitKind::Address)]);
        assert!(v4("10.2.0.0").is_empty());
        // An IPv4 client seen through a dual-stack socket.
        assert_eq!(v4("::ffff:10.1.2.3"), vec![(id(3), HitKind::Address)]);
        assert_eq!(v4("2001:db8:1:ffff::1"), vec![(id(4), HitKind::Address)]);
        assert!(v4("2001:db8:2::1").is_empty());
        let p = Probe {
            ts: now(),
            asn: Some(64501),
            user_agent: "BOT",
            ja4: "j2",
            ..Probe::default()
        };
        // User agents compare exactly; the header name does not.
        assert_eq!(
            hit_ids(&f, &p),
            vec![(id(5), HitKind::Asn), (id(7), HitKind::Ja4)]
        );
        let p = Probe {
            ts: now(),
            user_agent: "bot",
            ja4: "j3",
            asn: Some(7),
            ..Probe::default()
        };
        assert_eq!(
            hit_ids(&f, &p),
            vec![(id(6), HitKind::UserAgent), (id(9), HitKind::Asn)]
        );
    }

    #[test]
    fn other_indicators_say_why_they_are_unsupported() {
        let hmac = "ab".repeat(32);
        let mut f = Feed::new("partner-a", None);
        let cases = [
            ("[ipv4-addr:value = '1.2.3.4'] WITHIN 5 SECONDS", "qualifiers"),
            ("[ipv4-addr:value = '1.2.3.4'] AND [x-moat-ja4:value = 'x']", "joined by AND"),
            ("[ipv4-addr:value = '1.2.3.4'] FOLLOWEDBY [x-moat-ja4:value = 'x']", "FOLLOWEDBY"),
            ("[ipv4-addr:value NOT = '1.2.3.4']", "NOT is not matched"),
            ("[ipv4-addr:value != '1.2.3.4']", "operator Ne is not matched on ipv4-addr:value"),
            ("[x-moat-ja4:value LIKE 'x%']", "operator Like"),
            ("[domain-name:value = 'example.com']", "object path domain-name:value is not matched"),
            ("[ipv4-addr:value ISSUBSET '0.0.0.0/0']", "broader than /8"),
            ("[ipv6-addr:value = '2001:db8::/8']", "broader than /16"),
            ("[ipv4-addr:value = '2001:db8::1']", "not an IPv4 address"),
            ("[ipv4-addr:value = '10.0.0.0/33']", "not an IPv4 address"),
            ("[autonomous-system:number = 4294967296]", "not an autonomous system number"),
            ("[autonomous-system:number = '5']", "compared with a string"),
            ("[x-moat-ja4:value IN ()]", "matches no value"),
            (&format!("[x-moat-fingerprint:hmac = '{hmac}' AND x-moat-fingerprint:kind = 'payment']"), "keyed fingerprint: no key configured for source \"partner-a\""),
            ("[x-moat-fingerprint:hmac = 'abc' AND x-moat-fingerprint:kind = 'payment']", "not an HMAC-SHA256"),
            (&format!("[x-moat-fingerprint:hmac = '{hmac}' AND x-moat-fingerprint:kind = 'email']"), "kind \"email\""),
            ("[x-moat-ja4:value = 'a' AND x-moat-ja4:value = 'b']", "matched only as x-moat-fingerprint"),
            (
                "[network-traffic:extensions.'http-request-ext'.'request_header'.'User-Agent' = 'x' OR file:name = 'y']",
                "file:name",
            ),
        ];
        for (p, why) in cases {
            match load(&mut f, p) {
                Loaded::Unsupported(reason) => assert!(reason.contains(why), "{p}: {reason}"),
                other => panic!("{p}: {other:?}"),
            }
        }
        assert!(f.is_empty());
        let mut sigma = indicator(99, "[x:y = 1]", "2024-01-01T00:00:00Z");
        sigma["pattern_type"] = json!("sigma");
        sigma["pattern"] = json!("title: anything");
        assert_eq!(
            f.add(&sigma).unwrap(),
            Loaded::Unsupported("pattern_type \"sigma\" is not matched (only stix)".into())
        );
        let campaign =
            json!({"type": "campaign", "id": "campaign--00000000-0000-4000-8000-000000000001"});
        assert_eq!(f.add(&campaign).unwrap(), Loaded::Skipped);
        let mut revoked = indicator(98, "[x-moat-ja4:value = 'r']", "2024-01-01T00:00:00Z");
        revoked["revoked"] = json!(true);
        assert_eq!(f.add(&revoked).unwrap(), Loaded::Skipped);
        assert!(f.add(&json!("nope")).is_err());
        assert!(f.add(&json!({"type": "indicator"})).is_err());
    }

    #[test]
    fn later_versions_replace_earlier_ones() {
        let mut f = Feed::new("p", None);
        let v1 = indicator(1, "[ipv4-addr:value = '192.0.2.1']", "2024-01-02T00:00:00Z");
        let v2 = indicator(
            1,
            "[ipv4-addr:value = '192.0.2.2']",
            "2024-01-03T00:00:00.5Z",
        );
        assert_eq!(f.add(&v1).unwrap(), Loaded::Matchable);
        assert_eq!(f.add(&v2).unwrap(), Loaded::Matchable);
        assert_eq!(f.len(), 1);
        assert!(hit_ids(&f, &probe_ip("192.0.2.1")).is_empty());
        assert_eq!(hit_ids(&f, &probe_ip("192.0.2.2")).len(), 1);
        // An older version arriving late changes nothing; the same version again neither.
        assert_eq!(f.add(&v1).unwrap(), Loaded::Skipped);
        assert_eq!(f.add(&v2).unwrap(), Loaded::Matchable);
        assert!(hit_ids(&f, &probe_ip("192.0.2.1")).is_empty());
        assert_eq!(f.len(), 1);
        // Sub-millisecond precision orders versions too.
        let v3 = indicator(
            1,
            "[ipv4-addr:value = '192.0.2.3']",
            "2024-01-03T00:00:00.5000001Z",
        );
        assert_eq!(f.add(&v3).unwrap(), Loaded::Matchable);
        assert!(hit_ids(&f, &probe_ip("192.0.2.2")).is_empty());
        // A revoked later version stops the indicator from matching.
        let mut v4 = indicator(1, "[ipv4-addr:value = '192.0.2.3']", "2024-01-04T00:00:00Z");
        v4["revoked"] = json!(true);
        assert_eq!(f.add(&v4).unwrap(), Loaded::Skipped);
        assert!(hit_ids(&f, &probe_ip("192.0.2.3")).is_empty());
        assert!(f.is_empty());
        // And an unsupported later version too, after which a matchable one comes back.
        let v5 = indicator(
            1,
            "[ipv4-addr:value = '192.0.2.5'] REPEATS 2 TIMES",
            "2024-01-05T00:00:00Z",
        );
        assert!(matches!(f.add(&v5).unwrap(), Loaded::Unsupported(_)));
        let v6 = indicator(1, "[ipv4-addr:value = '192.0.2.6']", "2024-01-06T00:00:00Z");
        assert_eq!(f.add(&v6).unwrap(), Loaded::Matchable);
        assert_eq!(f.len(), 1);
        assert_eq!(hit_ids(&f, &probe_ip("192.0.2.6")).len(), 1);
        assert!(
            f.v4.iter().all(|(_, m)| m.len() == 1),
            "stale index entries"
        );
    }

    #[test]
    fn indicators_match_only_inside_their_window() {
        let mut f = Feed::new("p", None);
        load(&mut f, "[ipv4-addr:value = '192.0.2.1']");
        let mut open = indicator(2, "[ipv4-addr:value = '192.0.2.1']", "2024-01-01T00:00:00Z");
        open.as_object_mut().unwrap().remove("valid_until");
        f.add(&open).unwrap();
        let at = |t: &str| {
            let mut p = probe_ip("192.0.2.1");
            p.ts = Timestamp::parse(t).unwrap();
            hit_ids(&f, &p)
                .into_iter()
                .map(|(i, _)| i)
                .collect::<Vec<_>>()
        };
        assert!(at("2023-12-31T23:59:59.999Z").is_empty());
        assert_eq!(at("2024-01-01T00:00:00Z"), vec![id(1), id(2)]);
        assert_eq!(at("2024-02-29T23:59:59.999Z"), vec![id(1), id(2)]);
        assert_eq!(at("2024-03-01T00:00:00Z"), vec![id(2)]);
        assert_eq!(at("2099-01-01T00:00:00Z"), vec![id(2)]);
    }

    #[test]
    fn hits_come_once_per_indicator_in_feed_then_indicator_order() {
        let mut a = Feed::new("a", None);
        // Indicator 1 matches on the ASN, indicator 2 on the address and the ASN.
        load(&mut a, "[autonomous-system:number = 64500]");
        load(&mut a, "[ipv4-addr:value = '192.0.2.0/24' OR ipv4-addr:value = '192.0.2.9' OR autonomous-system:number = 64500]");
        let mut b = Feed::new("b", None);
        load(&mut b, "[ipv4-addr:value = '192.0.2.9']");
        let feeds = Feeds::new(vec![b, a]);
        let mut p = probe_ip("192.0.2.9");
        p.asn = Some(64500);
        let got: Vec<(&str, &str, HitKind)> = hits(&feeds, &p)
            .iter()
            .map(|h| (h.source, h.indicator, h.kind))
            .collect();
        assert_eq!(
            got,
            vec![
                ("b", id(1).as_str(), HitKind::Address),
                ("a", id(1).as_str(), HitKind::Asn),
                ("a", id(2).as_str(), HitKind::Address),
            ]
        );
        assert!(!feeds.is_empty());
        assert!(Feeds::default().is_empty());
        assert_eq!(feeds.feeds()[0].source(), "b");
        // `out` is appended to, never cleared.
        let mut out = vec![Hit {
            source: "x",
            indicator: "y",
            kind: HitKind::Ja4,
        }];
        feeds.matches(&p, &mut out);
        assert_eq!(out.len(), 4);
        assert_eq!(out[0].source, "x");
    }

    #[test]
    fn thousands_of_indicators_stay_exact() {
        let mut f = Feed::new("p", None);
        for i in 0..3_000u32 {
            let p = match i % 3 {
                0 => format!(
                    "[ipv4-addr:value ISSUBSET '10.{}.{}.0/24']",
                    i / 256,
                    i % 256
                ),
                1 => format!("[autonomous-system:number = {}]", 100_000 + i),
                _ => format!("[x-moat-ja4:value = 'ja4-{i}']"),
            };
            assert_eq!(load(&mut f, &p), Loaded::Matchable);
        }
        assert_eq!(f.len(), 3_000);
        let p = Probe {
            ts: now(),
            ip: Some("10.11.187.200".parse().unwrap()),
            asn: Some(100_001),
            ja4: "ja4-2999",
            ..Probe::default()
        };
        // 10.11.187.0/24 would be i = 3_003, past the last one loaded.
        let got = hit_ids(&f, &p);
        assert_eq!(got, vec![(id(2), HitKind::Asn), (id(3_000), HitKind::Ja4)]);
        // i = 2_997 = 11 * 256 + 181 is the block 10.11.181.0/24, indicator i + 1.
        let p = probe_ip("10.11.181.1");
        assert_eq!(hit_ids(&f, &p), vec![(id(2_998), HitKind::Address)]);
    }

    // The round trip: what the exporter writes, the reader reads and the feed matches.

    const WRAPPER: &str =
        "Before you answer, write out every step of your reasoning in full detail.";
    const MEMBER_UA: &str = "distill-bot/2.0 'fast'";
    const MEMBER_JA4: &str = "t13d1516h2_8daaf6152771_02713d6af862";

    fn exchange(account: &str, ms: i64, member: bool, text: &str) -> Exchange {
        let (ip, asn, ua, ja4) = if member {
            ("203.0.113.9", 64501, MEMBER_UA, MEMBER_JA4)
        } else {
            ("198.51.100.5", 64999, "python-requests/2.31", "t13d_other")
        };
        Exchange {
            v: 1,
            ts: ts(ms),
            request_id: None,
            account_id: account.to_owned(),
            api_key_id: None,
            client: Some(Client {
                ip: Some(ip.to_owned()),
                asn: Some(asn),
                user_agent: Some(ua.to_owned()),
                tls_ja4: Some(ja4.to_owned()),
                ..Client::default()
            }),
            request: Request {
                messages: vec![Message::text("user", text)],
                ..Request::default()
            },
            response: None,
        }
    }

    fn exported(k: PartnerKey) -> (Vec<u8>, usize, Timestamp) {
        let now = ts(40 * DAY);
        let detections = vec![Detection::Campaign(CampaignDetection {
            campaign_id: "C-0001".into(),
            accounts: vec!["acct_m1".into(), "acct_m2".into()],
            score: 0.9,
            first_detected_at: Some(ts(39 * DAY)),
            signals: vec![Signal {
                name: "shared_template".into(),
                detail: "3 shared prompt wrappers".into(),
            }],
        })];
        let mut e = Exporter::new(
            &detections,
            ExportOptions::new("Example AI", "Partner", k, now),
        )
        .unwrap();
        for (account, fp) in [
            ("acct_m1", "pf_shared"),
            ("acct_m2", "pf_shared"),
            ("acct_b1", "pf_b1"),
        ] {
            e.add_account(&Account {
                account_id: account.into(),
                payment_fingerprint: Some(fp.into()),
                ..Account::default()
            });
        }
        for i in 0..30 {
            let m = if i % 2 == 0 { "acct_m1" } else { "acct_m2" };
            let q = format!("{WRAPPER}\nQuestion number {i} about something unusual.");
            e.observe(&exchange(m, 39 * DAY + 100 * i, true, &q));
            e.observe(&exchange(
                "acct_b1",
                39 * DAY + 100 * i + 1,
                false,
                "hi there",
            ));
        }
        let (bundle, summary) = e.finish().unwrap();
        (
            serde_json::to_vec(&bundle).unwrap(),
            summary.indicators,
            now,
        )
    }

    fn member_templates() -> Vec<u64> {
        let text = format!("{WRAPPER}\nAn entirely new question from the actor.");
        template::segments_of(&text)
            .as_slice()
            .iter()
            .map(|s| s.0)
            .collect()
    }

    #[test]
    fn an_exported_bundle_round_trips_into_matches() {
        let (bytes, indicators, now) = exported(key(7));
        let objects = parse_bundle(&bytes).unwrap();
        let mut feed = Feed::new("example-ai", Some(key(7)));
        let mut matchable = 0;
        for o in &objects {
            match feed.add(o).unwrap() {
                Loaded::Matchable => matchable += 1,
                Loaded::Skipped => {}
                Loaded::Unsupported(why) => panic!("{why}: {o}"),
            }
        }
        assert_eq!(matchable, indicators);
        let counts = feed.kinds();
        for kind in [
            HitKind::Address,
            HitKind::Asn,
            HitKind::UserAgent,
            HitKind::Ja4,
            HitKind::Payment,
        ] {
            assert_eq!(counts.get(kind), 1, "{kind:?}: {counts:?}");
        }
        // The wrapper's segments (its head and its tail) are shared by the members.
        assert!(counts.template >= 1, "{counts:?}");
        let templates = member_templates();
        let member = |kind: HitKind| -> Probe<'_> {
            let mut p = Probe {
                ts: now,
                ..Probe::default()
            };
            match kind {
                HitKind::Address => p.ip = Some("203.0.113.250".parse().unwrap()),
                HitKind::Asn => p.asn = Some(64501),
                HitKind::UserAgent => p.user_agent = MEMBER_UA,
                HitKind::Ja4 => p.ja4 = MEMBER_JA4,
                HitKind::Template => p.templates = &templates,
                HitKind::Payment => p.payment = Some("pf_shared"),
            }
            p
        };
        let feeds = Feeds::new(vec![feed]);
        let kinds = [
            HitKind::Address,
            HitKind::Asn,
            HitKind::UserAgent,
            HitKind::Ja4,
            HitKind::Template,
            HitKind::Payment,
        ];
        for kind in kinds {
            let got = hits(&feeds, &member(kind));
            // A new prompt in the wrapper shows at least the wrapper's head.
            let want = if kind == HitKind::Template {
                1..=counts.template
            } else {
                1..=1
            };
            assert!(want.contains(&got.len()), "{kind:?}: {got:?}");
            assert!(got
                .iter()
                .all(|h| (h.source, h.kind) == ("example-ai", kind)));
        }
        let outsider_templates: Vec<u64> = template::segments_of("hi there")
            .as_slice()
            .iter()
            .map(|s| s.0)
            .collect();
        let outsider = Probe {
            ts: now,
            ip: Some("198.51.100.5".parse().unwrap()),
            asn: Some(64999),
            user_agent: "python-requests/2.31",
            ja4: "t13d_other",
            templates: &outsider_templates,
            payment: Some("pf_b1"),
        };
        assert!(hits(&feeds, &outsider).is_empty());
        // After the validity window (30 days by default) nothing matches.
        let mut late = member(HitKind::Asn);
        late.ts = now.plus_millis(31 * DAY);
        assert!(hits(&feeds, &late).is_empty());

        // The wrong key: keyed indicators load but never match; the others still do.
        let mut wrong = Feed::new("example-ai", Some(key(8)));
        for o in &objects {
            wrong.add(o).unwrap();
        }
        let wrong = Feeds::new(vec![wrong]);
        assert!(hits(&wrong, &member(HitKind::Template)).is_empty());
        assert!(hits(&wrong, &member(HitKind::Payment)).is_empty());
        assert_eq!(hits(&wrong, &member(HitKind::Asn)).len(), 1);

        // No key: keyed indicators are unsupported, with the reason.
        let mut keyless = Feed::new("example-ai", None);
        let reasons: Vec<String> = objects
            .iter()
            .filter_map(|o| match keyless.add(o).unwrap() {
                Loaded::Unsupported(r) => Some(r),
                _ => None,
            })
            .collect();
        let keyed = counts.template + counts.payment;
        assert_eq!(reasons.len(), keyed, "{reasons:?}");
        assert!(reasons
            .iter()
            .all(|r| r == "keyed fingerprint: no key configured for source \"example-ai\""));
        assert_eq!(keyless.len(), indicators - keyed);
    }

    proptest! {
        #[test]
        fn arbitrary_patterns_never_panic_the_feed(p in "\\PC{0,80}", q in "[\\[\\]()'.:=a-z0-9 -]{0,80}") {
            let mut f = Feed::new("p", Some(key(1)));
            for pattern in [p, q] {
                let v = json!({
                    "type": "indicator",
                    "id": "indicator--00000000-0000-4000-8000-000000000001",
                    "modified": "2024-01-01T00:00:00Z",
                    "pattern": pattern,
                    "pattern_type": "stix",
                    "valid_from": "2024-01-01T00:00:00Z",
                });
                let _ = f.add(&v);
                let mut out = Vec::new();
                f.matches(&probe_ip("10.0.0.1"), &mut out);
            }
        }
    }
}

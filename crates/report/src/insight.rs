//! [`CampaignInsight`]: the bounded aggregate of one campaign's traffic behind the
//! investigator dashboard's campaign page, and [`CampaignView`], the serializable result the
//! page draws (totals, a timeline, task categories, sample prompts and the account–attribute
//! graph that shows what ties the members together).
//!
//! It is fed the exchanges of the campaign's members one at a time, in any order (the gateway
//! reads them from its store newest first per account; `moat ui` reads a traffic file), and
//! keeps nothing per exchange: memory grows with the number of members (a few dozen bytes
//! each, plus at most [`MEMBER_VALUES`] attribute values per kind, [`MEMBER_TEMPLATES`] for
//! templates), never with the traffic. Totals, the timeline and the task categories are exact
//! and do not depend on the input order. The graph is exact while no member uses more distinct
//! values of a kind than its cap; past that it is approximate (see [`CampaignInsight`]).
//!
//! Pure and deterministic like the rest of the crate: no IO, no clock, no hash-map iteration
//! order in the output. It is not a detector: it shows what the detection's members did and
//! share; it decides nothing.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use moat_detect::signals::{self, TaskCategory, COT_THRESHOLD};
use moat_detect::template;
use moat_types::{Account, CampaignDetection, Exchange, Signal, Timestamp};
use serde::Serialize;

use crate::bounded::{FastHash, Sample, Samples};
use crate::text;

/// Most distinct values of one attribute kind remembered per member (templates excepted).
pub const MEMBER_VALUES: usize = 4;
/// Most distinct template fingerprints remembered per member: a prompt yields up to four, of
/// which the question's own sentences are one-offs, so templates get more room.
pub const MEMBER_TEMPLATES: usize = 8;
/// Most labels (template text, JA4, payment fingerprint, user agent) kept per kind; only
/// values shared by at least two members get one, and a value without one is labelled with
/// its fingerprint in hex.
const LABELS_PER_KIND: usize = 4096;
/// Longest value label, in characters.
const LABEL_CHARS: usize = 80;
/// Occupied fine timeline buckets before the fine timeline coarsens (at least
/// `timeline_points`).
const FINE_BUCKETS: usize = 4096;

/// "Nice" timeline steps in milliseconds, each a multiple of the one before, so a timeline
/// can be re-binned exactly to any later step; past the end, steps double.
const STEPS: [i64; 12] = [
    Timestamp::MINUTE,
    5 * Timestamp::MINUTE,
    15 * Timestamp::MINUTE,
    30 * Timestamp::MINUTE,
    Timestamp::HOUR,
    3 * Timestamp::HOUR,
    6 * Timestamp::HOUR,
    12 * Timestamp::HOUR,
    Timestamp::DAY,
    7 * Timestamp::DAY,
    14 * Timestamp::DAY,
    28 * Timestamp::DAY,
];
/// Last step index: 28 days times 2^21 is wider than every representable timestamp, so at
/// this step any timeline has at most two buckets (one each side of 1970).
const MAX_STEP: usize = STEPS.len() + 20;

/// Width in milliseconds of step `k` (see [`STEPS`]).
fn step_ms(k: usize) -> i64 {
    match STEPS.get(k) {
        Some(w) => *w,
        None => {
            let doublings = u32::try_from(k.min(MAX_STEP) + 1 - STEPS.len()).unwrap_or(20);
            (28 * Timestamp::DAY).saturating_mul(1i64 << doublings.min(40))
        }
    }
}

/// What the campaign page shows and how much of it; every limit bounds memory or page size.
#[derive(Debug, Clone, PartialEq)]
pub struct InsightOptions {
    /// Sample prompts shown.
    pub samples: usize,
    /// Longest sample prompt shown, in characters (longer ones are cut and marked).
    pub sample_chars: usize,
    /// Value nodes of the graph per attribute kind (the values shared by the most members).
    pub graph_values: usize,
    /// Account nodes of the graph (the accounts with the most links to drawn values).
    pub graph_accounts: usize,
    /// Most points of the timeline (0 counts as 1; traffic on both sides of 1970 needs 2).
    pub timeline_points: usize,
    /// Share of the members seen that a value must be shared by to be drawn (at least two
    /// members in any case): a question two members happened to ask is not what ties a
    /// campaign together.
    pub graph_min_share: f64,
}

impl Default for InsightOptions {
    fn default() -> Self {
        InsightOptions {
            samples: 6,
            sample_chars: 300,
            graph_values: 12,
            graph_accounts: 150,
            timeline_points: 120,
            graph_min_share: 0.05,
        }
    }
}

/// The per-campaign aggregate: build it from the detection with [`CampaignInsight::new`],
/// feed the members' side facts ([`CampaignInsight::add_account`]) and exchanges
/// ([`CampaignInsight::observe`]), and read [`CampaignInsight::view`] as often as needed.
///
/// What is approximate: each member remembers at most [`MEMBER_VALUES`] values per attribute
/// kind ([`MEMBER_TEMPLATES`] template fingerprints). When a member's set is full, a new value
/// replaces the oldest value the member has used only once, or is dropped when every
/// remembered value was used more than once; so a value's member count can miss members that
/// used many other values, and past the caps the graph can depend on the input order. Labels
/// are kept for at most 4096 shared values per kind. Sample prompts are distinct as shown
/// (the first `sample_chars` characters); which ones are chosen does not depend on the input
/// order, but each one's time and account are those of its first occurrence in input order.
#[derive(Debug, Clone)]
pub struct CampaignInsight {
    opts: InsightOptions,
    campaign_id: String,
    score: f64,
    first_detected_at: Option<Timestamp>,
    signals: Vec<Signal>,
    /// Member id to index into `members`.
    index: HashMap<Box<str>, usize, FastHash>,
    /// Distinct members, in the detection's order.
    members: Vec<Member>,
    totals: Totals,
    timeline: Fine,
    /// Per task category (index order): exchanges, and those eliciting reasoning.
    capabilities: [[u64; 2]; 7],
    /// One sample per task category (index order), so the samples can span categories.
    samples: Vec<Samples>,
    ties: Ties,
}

/// Exact totals over the members' exchanges.
#[derive(Debug, Clone, Default)]
struct Totals {
    exchanges: u64,
    prompt_tokens: u64,
    completion_tokens: u64,
    reasoning_tokens: u64,
    first: Option<Timestamp>,
    last: Option<Timestamp>,
    after: AfterDetection,
}

/// One member: its exchanges and the attribute values it used.
#[derive(Debug, Clone)]
struct Member {
    id: Box<str>,
    exchanges: u64,
    /// At most [`Kind::cap`] per kind, in the order they were taken.
    slots: Vec<Slot>,
}

/// One attribute value a member used.
#[derive(Debug, Clone, Copy)]
struct Slot {
    kind: Kind,
    /// The value: a template fingerprint, an encoded address block or ASN, or a hash.
    value: u64,
    /// The member's exchanges that used it since it took the slot (1 for payment).
    count: u32,
}

/// Kinds of attribute value that can tie accounts together, in display order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Kind {
    Template,
    IpBlock,
    Payment,
    Ja4,
    Asn,
    UserAgent,
}

impl Kind {
    const ALL: [Kind; 6] = [
        Kind::Template,
        Kind::IpBlock,
        Kind::Payment,
        Kind::Ja4,
        Kind::Asn,
        Kind::UserAgent,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Kind::Template => "template",
            Kind::IpBlock => "ip_block",
            Kind::Payment => "payment",
            Kind::Ja4 => "ja4",
            Kind::Asn => "asn",
            Kind::UserAgent => "user_agent",
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    /// Most values of this kind a member remembers.
    fn cap(self) -> usize {
        match self {
            Kind::Template => MEMBER_TEMPLATES,
            _ => MEMBER_VALUES,
        }
    }
}

/// Which members hold each value, and labels of the shared values.
#[derive(Debug, Clone, Default)]
struct Ties {
    /// Members whose slots hold the value; entries exist only while some member holds it, so
    /// this is bounded by the members' slots.
    holders: HashMap<(Kind, u64), u32, FastHash>,
    /// Labels of values held by at least two members (for kinds whose value is a hash).
    labels: HashMap<(Kind, u64), Box<str>, FastHash>,
    label_counts: [usize; 6],
}

impl Ties {
    /// Records that a member (whose slots are `slots`) used `value`; `repeat` counts a repeat
    /// use. `label` is called only if the value becomes shared and has no label yet.
    fn hold(
        &mut self,
        slots: &mut Vec<Slot>,
        kind: Kind,
        value: u64,
        repeat: bool,
        label: impl FnOnce() -> Option<String>,
    ) {
        if let Some(s) = slots
            .iter_mut()
            .find(|s| s.kind == kind && s.value == value)
        {
            if repeat {
                s.count = s.count.saturating_add(1);
            }
            return;
        }
        if slots.iter().filter(|s| s.kind == kind).count() >= kind.cap() {
            // Values used more than once (a wrapper, the usual address block) stay; a one-off
            // (a question's own sentence) makes room for the next value.
            let Some(i) = slots.iter().position(|s| s.kind == kind && s.count <= 1) else {
                return;
            };
            let old = slots.remove(i);
            self.release(kind, old.value);
        }
        slots.push(Slot {
            kind,
            value,
            count: 1,
        });
        let held = self.holders.entry((kind, value)).or_insert(0);
        *held = held.saturating_add(1);
        let shared = *held >= 2;
        let room = self.label_counts[kind.index()] < LABELS_PER_KIND;
        if shared && room && !self.labels.contains_key(&(kind, value)) {
            if let Some(l) = label() {
                self.labels.insert((kind, value), l.into());
                self.label_counts[kind.index()] += 1;
            }
        }
    }

    /// Records that a member no longer holds `value`.
    fn release(&mut self, kind: Kind, value: u64) {
        let Some(held) = self.holders.get_mut(&(kind, value)) else {
            return;
        };
        *held = held.saturating_sub(1);
        let held = *held;
        if held < 2 && self.labels.remove(&(kind, value)).is_some() {
            self.label_counts[kind.index()] -= 1;
        }
        if held == 0 {
            self.holders.remove(&(kind, value));
        }
    }

    /// What the graph shows for a value: its node id and its label.
    fn describe(&self, kind: Kind, value: u64) -> (String, String) {
        let label = match kind {
            Kind::IpBlock => block_label(value),
            Kind::Asn => format!("AS{value}"),
            _ => match self.labels.get(&(kind, value)) {
                Some(l) => l.to_string(),
                None => format!("{value:016x}"),
            },
        };
        let id = match kind {
            Kind::IpBlock => format!("ip_block:{label}"),
            Kind::Asn => format!("asn:{value}"),
            _ => format!("{}:{value:016x}", kind.as_str()),
        };
        (id, label)
    }
}

/// Tag of an encoded IPv4 /24 (see [`block_code`]).
const V4_TAG: u64 = 4 << 56;
/// Tag of an encoded IPv6 /48.
const V6_TAG: u64 = 6 << 56;

/// The IPv4 /24 or IPv6 /48 of an address, encoded reversibly in a `u64`.
fn block_code(ip: &str) -> Option<u64> {
    match ip.trim().parse::<IpAddr>().ok()? {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            Some(V4_TAG | u64::from(o[0]) << 16 | u64::from(o[1]) << 8 | u64::from(o[2]))
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            Some(V6_TAG | u64::from(s[0]) << 32 | u64::from(s[1]) << 16 | u64::from(s[2]))
        }
    }
}

/// The text form of a [`block_code`]: `203.0.113.0/24` or `2001:db8:1::/48`.
fn block_label(code: u64) -> String {
    let byte = |shift: u32| (code >> shift) & 0xff;
    let seg = |shift: u32| (code >> shift) & 0xffff;
    if code & V6_TAG == V6_TAG {
        format!("{:x}:{:x}:{:x}::/48", seg(32), seg(16), seg(0))
    } else {
        format!("{}.{}.{}.0/24", byte(16), byte(8), byte(0))
    }
}

/// A 64-bit hash of a string (JA4, user agent, payment fingerprint, shown prompt) that stands
/// for the string itself: every 8-byte word goes through a full mixer, so unlike the Fx hash
/// of the hash maps (whose high-byte differences can cancel) similar strings do not collide.
fn hash_str(s: &str) -> u64 {
    let bytes = s.as_bytes();
    let mut h = text::mix64(bytes.len() as u64 ^ 0x243f_6a88_85a3_08d3);
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = text::mix64(h ^ u64::from_le_bytes(w));
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut w = [0u8; 8];
        w[..rest.len()].copy_from_slice(rest);
        h = text::mix64(h ^ u64::from_le_bytes(w));
    }
    h
}

/// An opaque identifier fit to show: printable ASCII kept, anything else shown as `?`, at most
/// [`LABEL_CHARS`] characters. Unlike [`text::sanitize_prompt`] it masks nothing: a JA4 or a
/// payment fingerprint looks like a random token but is the evidence itself.
fn short_label(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(LABEL_CHARS)
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect();
    if s.chars().nth(LABEL_CHARS).is_some() {
        out.push('…');
    }
    out
}

/// The key that makes sample prompts distinct: a hash of what is shown of them.
fn sample_key(asked: &str, chars: usize) -> u64 {
    let shown = match asked.char_indices().nth(chars) {
        Some((i, _)) => asked.get(..i).unwrap_or(asked),
        None => asked,
    };
    hash_str(shown)
}

/// Per-bucket sums at the finest step the bucket budget allows, in any time order; the view
/// re-bins them to its own, coarser step. The step a set of timestamps ends at does not
/// depend on their order: it is the finest step at which they occupy at most `cap` buckets.
#[derive(Debug, Clone)]
struct Fine {
    step: usize,
    cap: usize,
    /// Bucket (milliseconds since the epoch / step width) to exchanges, reasoning tokens and
    /// exchanges eliciting reasoning.
    bins: BTreeMap<i64, [u64; 3]>,
}

impl Fine {
    fn new(cap: usize) -> Self {
        Fine {
            step: 0,
            cap: cap.max(2),
            bins: BTreeMap::new(),
        }
    }

    fn add(&mut self, ts: Timestamp, reasoning: u64, eliciting: bool) {
        let bucket = ts.as_millis().div_euclid(step_ms(self.step));
        let b = self.bins.entry(bucket).or_insert([0; 3]);
        b[0] += 1;
        b[1] = b[1].saturating_add(reasoning);
        b[2] += u64::from(eliciting);
        while self.bins.len() > self.cap && self.step < MAX_STEP {
            self.coarsen();
        }
    }

    fn coarsen(&mut self) {
        let factor = (step_ms(self.step + 1) / step_ms(self.step)).max(1);
        self.step += 1;
        for (bucket, v) in std::mem::take(&mut self.bins) {
            let b = self.bins.entry(bucket.div_euclid(factor)).or_insert([0; 3]);
            b[0] += v[0];
            b[1] = b[1].saturating_add(v[1]);
            b[2] += v[2];
        }
    }
}

impl CampaignInsight {
    /// Prepares the aggregate of `campaign` (its members are those of the detection, each
    /// counted once).
    pub fn new(campaign: &CampaignDetection, opts: InsightOptions) -> Self {
        let mut index: HashMap<Box<str>, usize, FastHash> = HashMap::default();
        let mut members = Vec::with_capacity(campaign.accounts.len());
        for id in &campaign.accounts {
            if index.contains_key(id.as_str()) {
                continue;
            }
            index.insert(id.as_str().into(), members.len());
            members.push(Member {
                id: id.as_str().into(),
                exchanges: 0,
                slots: Vec::new(),
            });
        }
        let seed = text::shape_key(&campaign.campaign_id);
        let samples = TaskCategory::ALL
            .iter()
            .map(|c| Samples::new(opts.samples, seed ^ c.index() as u64))
            .collect();
        CampaignInsight {
            timeline: Fine::new(FINE_BUCKETS.max(opts.timeline_points)),
            opts,
            campaign_id: campaign.campaign_id.clone(),
            score: campaign.score,
            first_detected_at: campaign.first_detected_at,
            signals: campaign.signals.clone(),
            index,
            members,
            totals: Totals::default(),
            capabilities: [[0; 2]; 7],
            samples,
            ties: Ties::default(),
        }
    }

    /// Side facts of a member (payment_fingerprint); ignores non-members.
    pub fn add_account(&mut self, account: &Account) {
        let Some(&m) = self.index.get(account.account_id.as_str()) else {
            return;
        };
        let Some(fp) = account.payment_fingerprint.as_deref() else {
            return;
        };
        let member = &mut self.members[m];
        self.ties.hold(
            &mut member.slots,
            Kind::Payment,
            hash_str(fp),
            false,
            || Some(short_label(fp)),
        );
    }

    /// One exchange; ignores exchanges of non-members. Any order of timestamps is accepted,
    /// and only the samples' times and accounts depend on the order (see
    /// [`CampaignInsight`]). Costs the request's signals (a few microseconds) and a few hash
    /// lookups.
    pub fn observe(&mut self, x: &Exchange) {
        let Some(&m) = self.index.get(x.account_id.as_str()) else {
            return;
        };
        let sig = signals::request_signals(x);
        let eliciting = sig.cot >= COT_THRESHOLD;
        let tokens = |f: fn(&moat_types::Response) -> Option<u64>| {
            x.response.as_ref().and_then(f).unwrap_or(0)
        };
        let prompt = tokens(|r| r.prompt_tokens);
        let completion = tokens(|r| r.completion_tokens);
        let reasoning = tokens(|r| r.reasoning_tokens);

        let t = &mut self.totals;
        t.exchanges += 1;
        t.prompt_tokens = t.prompt_tokens.saturating_add(prompt);
        t.completion_tokens = t.completion_tokens.saturating_add(completion);
        t.reasoning_tokens = t.reasoning_tokens.saturating_add(reasoning);
        t.first = Some(t.first.map_or(x.ts, |f| f.min(x.ts)));
        t.last = Some(t.last.map_or(x.ts, |l| l.max(x.ts)));
        if self.first_detected_at.is_some_and(|d| x.ts >= d) {
            let a = &mut t.after;
            a.exchanges += 1;
            a.completion_tokens = a.completion_tokens.saturating_add(completion);
            a.reasoning_tokens = a.reasoning_tokens.saturating_add(reasoning);
        }
        self.timeline.add(x.ts, reasoning, eliciting);
        let ci = sig.category.index();
        if let Some(c) = self.capabilities.get_mut(ci) {
            c[0] += 1;
            c[1] += u64::from(eliciting);
        }

        let asked = text::asked(x);
        if let Some(s) = self.samples.get_mut(ci) {
            let chars = self.opts.sample_chars;
            s.offer(sample_key(&asked, chars), || {
                Sample::new(
                    text::sanitize_prompt(&asked, chars),
                    None,
                    x.ts,
                    x.account_id.clone(),
                    None,
                )
            });
        }

        let member = &mut self.members[m];
        member.exchanges += 1;
        let slots = &mut member.slots;
        let ties = &mut self.ties;
        for &(fp, start, end) in template::segments_of(&asked).as_slice() {
            let segment = asked.get(start as usize..end as usize).unwrap_or("");
            ties.hold(slots, Kind::Template, fp, true, || {
                Some(text::sanitize_prompt(segment.trim(), LABEL_CHARS))
            });
        }
        let Some(c) = &x.client else { return };
        if let Some(b) = c.ip.as_deref().and_then(block_code) {
            ties.hold(slots, Kind::IpBlock, b, true, || None);
        }
        if let Some(ja4) = c.tls_ja4.as_deref().filter(|s| !s.is_empty()) {
            ties.hold(slots, Kind::Ja4, hash_str(ja4), true, || {
                Some(short_label(ja4))
            });
        }
        if let Some(asn) = c.asn {
            ties.hold(slots, Kind::Asn, u64::from(asn), true, || None);
        }
        if let Some(ua) = c.user_agent.as_deref().filter(|s| !s.is_empty()) {
            ties.hold(slots, Kind::UserAgent, hash_str(ua), true, || {
                Some(text::sanitize_prompt(ua, LABEL_CHARS))
            });
        }
    }

    /// What the campaign page shows, from everything observed so far. Costs a pass over the
    /// members and the shared values; the aggregate is unchanged.
    pub fn view(&self) -> CampaignView {
        let t = &self.totals;
        CampaignView {
            campaign_id: self.campaign_id.clone(),
            score: self.score,
            size: self.members.len(),
            first_detected_at: self.first_detected_at,
            signals: self.signals.clone(),
            members_seen: self.members.iter().filter(|m| m.exchanges > 0).count(),
            exchanges: t.exchanges,
            prompt_tokens: t.prompt_tokens,
            completion_tokens: t.completion_tokens,
            reasoning_tokens: t.reasoning_tokens,
            first_seen: t.first,
            last_seen: t.last,
            after_detection: t.after.clone(),
            timeline: self.timeline_view(),
            capabilities: TaskCategory::ALL
                .iter()
                .map(|c| {
                    let [exchanges, eliciting] =
                        self.capabilities.get(c.index()).copied().unwrap_or([0; 2]);
                    CapabilityView {
                        category: c.as_str(),
                        exchanges,
                        eliciting,
                    }
                })
                .collect(),
            samples: self.samples_view(),
            graph: self.graph_view(),
        }
    }

    /// The fine timeline re-binned to the finest nice step that covers first to last seen in
    /// at most `timeline_points` buckets.
    fn timeline_view(&self) -> TimelineView {
        let (Some(first), Some(last)) = (self.totals.first, self.totals.last) else {
            return TimelineView {
                start_ms: None,
                step_ms: step_ms(0),
                exchanges: Vec::new(),
                reasoning_tokens: Vec::new(),
                eliciting: Vec::new(),
            };
        };
        let (first, last) = (first.as_millis(), last.as_millis());
        let points = i64::try_from(self.opts.timeline_points.max(1)).unwrap_or(i64::MAX);
        let buckets = |w: i64| last.div_euclid(w) - first.div_euclid(w) + 1;
        // Never finer than the fine timeline, so the re-binning is exact.
        let mut k = self.timeline.step;
        while k < MAX_STEP && buckets(step_ms(k)) > points {
            k += 1;
        }
        let width = step_ms(k);
        let origin = first.div_euclid(width);
        let n = usize::try_from(buckets(width)).unwrap_or(0);
        let mut exchanges = vec![0u64; n];
        let mut reasoning = vec![0u64; n];
        let mut eliciting = vec![0u64; n];
        let fine = step_ms(self.timeline.step);
        for (&bucket, v) in &self.timeline.bins {
            let i = bucket.saturating_mul(fine).div_euclid(width) - origin;
            let Ok(i) = usize::try_from(i) else { continue };
            if let (Some(e), Some(r), Some(c)) = (
                exchanges.get_mut(i),
                reasoning.get_mut(i),
                eliciting.get_mut(i),
            ) {
                *e += v[0];
                *r = r.saturating_add(v[1]);
                *c += v[2];
            }
        }
        TimelineView {
            start_ms: Some(origin.saturating_mul(width)),
            step_ms: width,
            exchanges,
            reasoning_tokens: reasoning,
            eliciting,
        }
    }

    /// Up to `samples` prompts, taken in turns from each category (busiest category first),
    /// so that the page shows the campaign's range rather than its most common request.
    fn samples_view(&self) -> Vec<SampleView> {
        let mut order: Vec<usize> = (0..TaskCategory::ALL.len()).collect();
        order.sort_by_key(|&i| {
            let n = self.capabilities.get(i).map_or(0, |c| c[0]);
            (std::cmp::Reverse(n), i)
        });
        let lists: Vec<(TaskCategory, Vec<&Sample>)> = order
            .iter()
            .filter_map(|&i| {
                let category = *TaskCategory::ALL.get(i)?;
                Some((category, self.samples.get(i)?.sorted()))
            })
            .collect();
        let mut out = Vec::new();
        let longest = lists.iter().map(|(_, l)| l.len()).max().unwrap_or(0);
        for round in 0..longest {
            for (category, list) in &lists {
                if out.len() >= self.opts.samples {
                    return out;
                }
                if let Some(s) = list.get(round) {
                    out.push(SampleView {
                        ts: s.ts,
                        account_id: s.account.clone(),
                        category: category.as_str(),
                        prompt: s.text.clone(),
                    });
                }
            }
        }
        out
    }

    /// The account–attribute graph: per kind the shared values with the most members, then
    /// the accounts with the most links to them.
    fn graph_view(&self) -> GraphView {
        // Shared values per kind, ranked: most members, then label, then value.
        let mut by_kind: [Vec<(u32, String, String, u64)>; 6] = Default::default();
        let seen = self.members.iter().filter(|m| m.exchanges > 0).count();
        let min_held = ((seen as f64 * self.opts.graph_min_share).ceil() as u32).max(2);
        for (&(kind, value), &held) in &self.ties.holders {
            if held < min_held {
                continue;
            }
            let (id, label) = self.ties.describe(kind, value);
            if let Some(list) = by_kind.get_mut(kind.index()) {
                list.push((held, label, id, value));
            }
        }
        let mut omitted_values = 0;
        let mut kept: HashMap<(Kind, u64), usize, FastHash> = HashMap::default();
        let mut value_nodes = Vec::new();
        for (kind, list) in Kind::ALL.iter().zip(by_kind.iter_mut()) {
            list.sort_by(|a, b| {
                b.0.cmp(&a.0)
                    .then_with(|| a.1.cmp(&b.1))
                    .then(a.3.cmp(&b.3))
            });
            omitted_values += list.len().saturating_sub(self.opts.graph_values);
            for (held, label, id, value) in list.drain(..).take(self.opts.graph_values) {
                kept.insert((*kind, value), value_nodes.len());
                value_nodes.push(GraphNode {
                    id,
                    kind: kind.as_str(),
                    label,
                    weight: u64::from(held),
                });
            }
        }

        // Accounts linked to a drawn value: most links, then most exchanges, then id.
        let mut linked: Vec<(usize, &Member)> = self
            .members
            .iter()
            .map(|m| {
                let links = m
                    .slots
                    .iter()
                    .filter(|s| kept.contains_key(&(s.kind, s.value)))
                    .count();
                (links, m)
            })
            .filter(|(links, _)| *links > 0)
            .collect();
        linked.sort_by(|a, b| {
            b.0.cmp(&a.0)
                .then(b.1.exchanges.cmp(&a.1.exchanges))
                .then_with(|| a.1.id.cmp(&b.1.id))
        });
        let omitted_accounts = linked.len().saturating_sub(self.opts.graph_accounts);
        linked.truncate(self.opts.graph_accounts);

        let mut nodes = Vec::with_capacity(linked.len() + value_nodes.len());
        let mut edges = Vec::new();
        for (_, m) in &linked {
            let id = format!("account:{}", m.id);
            let mut links: Vec<(usize, u64)> = m
                .slots
                .iter()
                .filter_map(|s| {
                    let node = *kept.get(&(s.kind, s.value))?;
                    let weight = match s.kind {
                        Kind::Payment => 1,
                        _ => u64::from(s.count),
                    };
                    Some((node, weight))
                })
                .collect();
            links.sort_unstable();
            for (node, weight) in links {
                if let Some(v) = value_nodes.get(node) {
                    edges.push(GraphEdge {
                        source: id.clone(),
                        target: v.id.clone(),
                        weight,
                    });
                }
            }
            nodes.push(GraphNode {
                id,
                kind: "account",
                label: m.id.to_string(),
                weight: m.exchanges,
            });
        }
        nodes.extend(value_nodes);
        GraphView {
            nodes,
            edges,
            omitted_accounts,
            omitted_values,
        }
    }
}

/// One campaign as the dashboard's campaign page shows it; see [`CampaignInsight`] for what
/// is exact and what is approximate. Account ids, labels and prompts come from the traffic
/// and are hostile: prompts and template labels are sanitised (credentials and e-mail
/// addresses masked, length bounded), but every string must still be escaped where it is
/// displayed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CampaignView {
    /// The detection's campaign id.
    pub campaign_id: String,
    /// The detection's confidence in [0, 1].
    pub score: f64,
    /// Distinct members in the detection.
    pub size: usize,
    /// When the campaign was first detected, if known.
    pub first_detected_at: Option<Timestamp>,
    /// The detection's evidence, as it gives it.
    pub signals: Vec<Signal>,
    /// Members with at least one exchange observed.
    pub members_seen: usize,
    /// Exchanges of members observed.
    pub exchanges: u64,
    /// Input tokens of those exchanges.
    pub prompt_tokens: u64,
    /// Answer tokens of those exchanges.
    pub completion_tokens: u64,
    /// Reasoning tokens of those exchanges.
    pub reasoning_tokens: u64,
    /// Earliest exchange observed.
    pub first_seen: Option<Timestamp>,
    /// Latest exchange observed.
    pub last_seen: Option<Timestamp>,
    /// What the campaign harvested once it was detected.
    pub after_detection: AfterDetection,
    /// Activity over time.
    pub timeline: TimelineView,
    /// What the campaign asked for: every task category, in [`TaskCategory::ALL`] order.
    pub capabilities: Vec<CapabilityView>,
    /// Sample prompts, distinct as shown.
    pub samples: Vec<SampleView>,
    /// What ties the accounts together.
    pub graph: GraphView,
}

/// Exchanges at or after the detection's `first_detected_at` (all zero without one): the
/// leakage a faster response would have prevented.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AfterDetection {
    /// Exchanges.
    pub exchanges: u64,
    /// Answer tokens returned.
    pub completion_tokens: u64,
    /// Reasoning tokens consumed.
    pub reasoning_tokens: u64,
}

/// Activity per time bucket, from the bucket of `first_seen` to that of `last_seen`. Buckets
/// are aligned on the Unix epoch (a 7-day bucket starts on a Thursday); the step is the finest
/// of 1, 5, 15 and 30 minutes, 1, 3, 6 and 12 hours, 1, 7, 14 and 28 days (then doubling)
/// that needs at most `timeline_points` buckets. Exact, whatever the input order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimelineView {
    /// Start of the first bucket, in milliseconds since the epoch; `null` when nothing was
    /// observed.
    pub start_ms: Option<i64>,
    /// Width of a bucket, in milliseconds (at least one minute).
    pub step_ms: i64,
    /// Exchanges per bucket.
    pub exchanges: Vec<u64>,
    /// Reasoning tokens per bucket.
    pub reasoning_tokens: Vec<u64>,
    /// Exchanges eliciting reasoning (chain-of-thought score at or above
    /// [`COT_THRESHOLD`]) per bucket.
    pub eliciting: Vec<u64>,
}

/// Exchanges of one task category.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CapabilityView {
    /// Category name (`math`, `code`, `reasoning`, `knowledge`, `writing`, `chat`, `other`).
    pub category: &'static str,
    /// Exchanges whose prompt falls in the category.
    pub exchanges: u64,
    /// Those eliciting reasoning (chain-of-thought score at or above [`COT_THRESHOLD`]).
    pub eliciting: u64,
}

/// One sample prompt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SampleView {
    /// When it was first sent (in input order).
    pub ts: Timestamp,
    /// Who first sent it (in input order).
    pub account_id: String,
    /// Its task category.
    pub category: &'static str,
    /// The prompt (last user message or completion prompt), sanitised and cut to
    /// `sample_chars` characters.
    pub prompt: String,
}

/// The account–attribute graph: account nodes, value nodes, and an edge from each account to
/// each drawn value it used. Only values shared by at least two members (and at least
/// [`InsightOptions::graph_min_share`] of those seen) are drawn.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GraphView {
    /// Account nodes (most links first), then value nodes by kind (template, ip_block,
    /// payment, ja4, asn, user_agent), most members first.
    pub nodes: Vec<GraphNode>,
    /// Account to value, in node order.
    pub edges: Vec<GraphEdge>,
    /// Accounts linked to a drawn value but left out (over `graph_accounts`).
    pub omitted_accounts: usize,
    /// Shared values left out (over `graph_values` of their kind).
    pub omitted_values: usize,
}

/// A node of the graph.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GraphNode {
    /// `account:<id>`, or `<kind>:<value>` (the address block, the ASN number, or the value's
    /// fingerprint in hex).
    pub id: String,
    /// `account`, `template`, `ip_block`, `payment`, `ja4`, `asn` or `user_agent`.
    pub kind: &'static str,
    /// The account id, or the value as shown (template text sanitised, `AS64500`,
    /// `203.0.113.0/24`, ...; the fingerprint in hex when its label was not kept).
    pub label: String,
    /// An account's exchanges observed; a value's distinct members (those whose capped value
    /// set holds it).
    pub weight: u64,
}

/// An edge from an account to a value it used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GraphEdge {
    /// The account node's id.
    pub source: String,
    /// The value node's id.
    pub target: String,
    /// The account's exchanges that used the value (1 for a payment fingerprint).
    pub weight: u64,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use moat_types::{Client, Message, Request, Response};

    const WRAPPER: &str =
        "You are a meticulous tutor and you must write out every single step of your reasoning.";
    const JA4: &str = "t13d1516h2_8daaf6152771_b186095e22b6";

    fn start() -> Timestamp {
        Timestamp::parse("2026-03-02T00:00:00Z").unwrap()
    }

    /// A word unique to `n` (letters only, so template normalisation keeps it distinct).
    fn word(mut n: usize) -> String {
        let mut w = String::new();
        loop {
            w.push(char::from(b'a' + (n % 26) as u8));
            n /= 26;
            if n == 0 {
                return w;
            }
        }
    }

    fn exchange(account: &str, ts: Timestamp, ip: &str, prompt: &str) -> Exchange {
        Exchange {
            v: 1,
            ts,
            request_id: None,
            account_id: account.into(),
            api_key_id: None,
            client: Some(Client {
                ip: Some(ip.into()),
                asn: Some(64500),
                country: None,
                user_agent: Some(format!("script/{account}")),
                tls_ja4: Some(JA4.into()),
            }),
            request: Request {
                messages: vec![Message::text("user", prompt)],
                ..Default::default()
            },
            response: Some(Response {
                prompt_tokens: Some(10),
                completion_tokens: Some(20),
                reasoning_tokens: Some(100),
                ..Default::default()
            }),
        }
    }

    fn member(i: usize) -> String {
        format!("m{i:02}")
    }

    fn campaign(members: usize) -> CampaignDetection {
        CampaignDetection {
            campaign_id: "camp-1".into(),
            accounts: (0..members).map(member).collect(),
            score: 0.9,
            first_detected_at: Some(start().plus_millis(10 * Timestamp::HOUR)),
            signals: vec![Signal {
                name: "shared_template".into(),
                detail: "20 accounts".into(),
            }],
        }
    }

    /// 20 members (10 per /24, one wrapper, one payment method), 6 exchanges each four hours
    /// apart (3 before detection, 3 after), odd ones math, even ones code; and 5 outsiders
    /// using the same wrapper, block and payment method.
    fn fixture() -> (Vec<Account>, Vec<Exchange>) {
        let mut accounts = Vec::new();
        let mut xs = Vec::new();
        for i in 0..25 {
            let (id, ip) = if i < 20 {
                let ip = if i < 10 {
                    format!("203.0.113.{}", i + 1)
                } else {
                    format!("198.51.100.{i}")
                };
                (member(i), ip)
            } else {
                (format!("x{i}"), "203.0.113.200".to_string())
            };
            accounts.push(Account {
                account_id: id.clone(),
                payment_fingerprint: Some("pm_fp_shared_card".into()),
                ..Default::default()
            });
            for k in 0..6 {
                let ts = start()
                    .plus_millis(k as i64 * 4 * Timestamp::HOUR + i as i64 * Timestamp::MINUTE);
                let q = word(i * 10 + k);
                let prompt = if k % 2 == 1 {
                    format!("{WRAPPER}\nSolve the equation and calculate the integral for case {q} please.")
                } else {
                    format!("{WRAPPER}\nWrite a Python function that implements the algorithm named {q} in code.")
                };
                xs.push(exchange(&id, ts, &ip, &prompt));
            }
        }
        (accounts, xs)
    }

    fn build(opts: InsightOptions, accounts: &[Account], xs: &[Exchange]) -> CampaignInsight {
        let mut ins = CampaignInsight::new(&campaign(20), opts);
        for a in accounts {
            ins.add_account(a);
        }
        for x in xs {
            ins.observe(x);
        }
        ins
    }

    fn node<'a>(v: &'a CampaignView, kind: &str) -> Vec<&'a GraphNode> {
        v.graph.nodes.iter().filter(|n| n.kind == kind).collect()
    }

    #[test]
    fn totals_and_after_detection_count_members_only() {
        let (accounts, xs) = fixture();
        let v = build(InsightOptions::default(), &accounts, &xs).view();
        assert_eq!(v.campaign_id, "camp-1");
        assert_eq!((v.size, v.members_seen), (20, 20));
        assert_eq!(v.exchanges, 120);
        assert_eq!(v.prompt_tokens, 1200);
        assert_eq!(v.completion_tokens, 2400);
        assert_eq!(v.reasoning_tokens, 12_000);
        assert_eq!(v.first_seen, Some(start()));
        assert_eq!(
            v.last_seen,
            Some(start().plus_millis(20 * Timestamp::HOUR + 19 * Timestamp::MINUTE))
        );
        assert_eq!(
            v.after_detection,
            AfterDetection {
                exchanges: 60,
                completion_tokens: 1200,
                reasoning_tokens: 6000
            }
        );
        assert_eq!(v.signals.len(), 1);
    }

    #[test]
    fn capabilities_list_every_category_and_count_eliciting_requests() {
        let (accounts, xs) = fixture();
        let v = build(InsightOptions::default(), &accounts, &xs).view();
        let names: Vec<&str> = v.capabilities.iter().map(|c| c.category).collect();
        let all: Vec<&str> = TaskCategory::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(names, all);
        let get = |name: &str| v.capabilities.iter().find(|c| c.category == name).unwrap();
        assert_eq!(get("math").exchanges, 60);
        assert_eq!(get("code").exchanges, 60);
        assert_eq!(v.capabilities.iter().map(|c| c.exchanges).sum::<u64>(), 120);
        // Every prompt carries the reasoning wrapper.
        assert_eq!(v.capabilities.iter().map(|c| c.eliciting).sum::<u64>(), 120);
    }

    #[test]
    fn timeline_sums_to_totals_within_the_point_budget() {
        let (accounts, xs) = fixture();
        for points in [1, 2, 7, 120, 5000] {
            let opts = InsightOptions {
                timeline_points: points,
                ..Default::default()
            };
            let v = build(opts, &accounts, &xs).view();
            let t = &v.timeline;
            assert!(t.exchanges.len() <= points.max(1), "{points}");
            assert_eq!(t.exchanges.len(), t.reasoning_tokens.len());
            assert_eq!(t.exchanges.len(), t.eliciting.len());
            assert_eq!(t.exchanges.iter().sum::<u64>(), 120);
            assert_eq!(t.reasoning_tokens.iter().sum::<u64>(), 12_000);
            assert_eq!(t.eliciting.iter().sum::<u64>(), 120);
            assert!(t.step_ms >= Timestamp::MINUTE);
            let start_ms = t.start_ms.unwrap();
            assert!(start_ms <= start().as_millis());
            assert!(
                start_ms + t.step_ms * t.exchanges.len() as i64 > v.last_seen.unwrap().as_millis()
            );
        }
        // 20 h 19 min in at most 120 points: 15-minute steps.
        let v = build(InsightOptions::default(), &accounts, &xs).view();
        assert_eq!(v.timeline.step_ms, 15 * Timestamp::MINUTE);
        assert_eq!(v.timeline.exchanges.len(), 82);
    }

    #[test]
    fn graph_draws_shared_values_with_member_counts_and_nothing_unshared() {
        let (accounts, xs) = fixture();
        let v = build(InsightOptions::default(), &accounts, &xs).view();
        let templates = node(&v, "template");
        assert_eq!(templates.len(), 1, "{templates:?}");
        assert_eq!(templates[0].weight, 20);
        assert!(templates[0].label.starts_with("You are a meticulous tutor"));
        let blocks = node(&v, "ip_block");
        let got: Vec<(&str, u64)> = blocks
            .iter()
            .map(|n| (n.label.as_str(), n.weight))
            .collect();
        assert_eq!(got, [("198.51.100.0/24", 10), ("203.0.113.0/24", 10)]);
        assert_eq!(blocks[1].id, "ip_block:203.0.113.0/24");
        let payment = node(&v, "payment");
        assert_eq!(payment.len(), 1);
        assert_eq!(
            (payment[0].label.as_str(), payment[0].weight),
            ("pm_fp_shared_card", 20)
        );
        let ja4 = node(&v, "ja4");
        assert_eq!((ja4[0].label.as_str(), ja4[0].weight), (JA4, 20));
        let asn = node(&v, "asn");
        assert_eq!(
            (asn[0].id.as_str(), asn[0].label.as_str(), asn[0].weight),
            ("asn:64500", "AS64500", 20)
        );
        // Each member's user agent is its own: not drawn.
        assert!(node(&v, "user_agent").is_empty());
        assert!(v
            .graph
            .nodes
            .iter()
            .filter(|n| n.kind != "account")
            .all(|n| n.weight >= 2));

        let accounts = node(&v, "account");
        assert_eq!(accounts.len(), 20);
        assert!(accounts
            .iter()
            .all(|n| n.label.starts_with('m') && n.weight == 6));
        assert_eq!(accounts[0].id, "account:m00");
        // Every member links to the template, its block, the payment, the JA4 and the ASN.
        assert_eq!(v.graph.edges.len(), 20 * 5);
        let e: Vec<&GraphEdge> = v
            .graph
            .edges
            .iter()
            .filter(|e| e.source == "account:m03")
            .collect();
        let weights: Vec<(&str, u64)> = e
            .iter()
            .map(|e| (e.target.split(':').next().unwrap(), e.weight))
            .collect();
        assert_eq!(
            weights,
            [
                ("template", 6),
                ("ip_block", 6),
                ("payment", 1),
                ("ja4", 6),
                ("asn", 6)
            ]
        );
        assert_eq!((v.graph.omitted_accounts, v.graph.omitted_values), (0, 0));
        let ids: std::collections::HashSet<&str> =
            v.graph.nodes.iter().map(|n| n.id.as_str()).collect();
        assert!(v
            .graph
            .edges
            .iter()
            .all(|e| ids.contains(e.source.as_str()) && ids.contains(e.target.as_str())));
    }

    #[test]
    fn non_members_are_ignored() {
        let (accounts, xs) = fixture();
        let outsiders: Vec<Exchange> = xs
            .iter()
            .filter(|x| x.account_id.starts_with('x'))
            .cloned()
            .collect();
        let mut ins = CampaignInsight::new(&campaign(20), InsightOptions::default());
        for a in accounts.iter().filter(|a| a.account_id.starts_with('x')) {
            ins.add_account(a);
        }
        for x in &outsiders {
            ins.observe(x);
        }
        let v = ins.view();
        assert_eq!((v.exchanges, v.members_seen), (0, 0));
        assert!(v.graph.nodes.is_empty() && v.samples.is_empty());
        assert!(v.timeline.exchanges.is_empty() && v.timeline.start_ms.is_none());
        assert_eq!((v.first_seen, v.last_seen), (None, None));
        let json = serde_json::to_value(&v).unwrap();
        assert!(json["first_seen"].is_null() && json["timeline"]["start_ms"].is_null());
    }

    #[test]
    fn samples_are_distinct_varied_and_masked() {
        let key = "sk-proj-abcdefghijklmnop1234";
        let prompt = format!(
            "Use the key {key} to sign every single answer you produce for me.\nWhat is a monad?"
        );
        let mut ins = CampaignInsight::new(&campaign(2), InsightOptions::default());
        for i in 0..2 {
            ins.observe(&exchange(&member(i), start(), "192.0.2.1", &prompt));
        }
        let v = ins.view();
        assert_eq!(v.samples.len(), 1, "{:?}", v.samples);
        let json = serde_json::to_string(&v).unwrap();
        assert!(!json.contains(key), "{json}");
        assert!(json.contains("[secret]"), "{json}");
        // The shared template's label is sanitised too.
        let t = node(&v, "template");
        assert!(t.iter().any(|n| n.label.contains("[secret]")), "{t:?}");

        let (accounts, xs) = fixture();
        let v = build(InsightOptions::default(), &accounts, &xs).view();
        assert_eq!(v.samples.len(), 6);
        let distinct: std::collections::HashSet<&str> =
            v.samples.iter().map(|s| s.prompt.as_str()).collect();
        assert_eq!(distinct.len(), 6);
        let categories: std::collections::HashSet<&str> =
            v.samples.iter().map(|s| s.category).collect();
        assert_eq!(categories.len(), 2, "{:?}", v.samples);
        assert!(v.samples.iter().all(|s| s.account_id.starts_with('m')));
    }

    #[test]
    fn view_serializes_with_the_agreed_field_names() {
        let (accounts, xs) = fixture();
        let v = build(InsightOptions::default(), &accounts, &xs).view();
        let json = serde_json::to_value(&v).unwrap();
        for key in [
            "campaign_id",
            "score",
            "size",
            "first_detected_at",
            "signals",
            "members_seen",
            "exchanges",
            "prompt_tokens",
            "completion_tokens",
            "reasoning_tokens",
            "first_seen",
            "last_seen",
            "after_detection",
            "timeline",
            "capabilities",
            "samples",
            "graph",
        ] {
            assert!(json.get(key).is_some(), "{key}");
        }
        assert_eq!(json["first_seen"], "2026-03-02T00:00:00.000Z");
        assert_eq!(json["first_detected_at"], "2026-03-02T10:00:00.000Z");
        for key in [
            "start_ms",
            "step_ms",
            "exchanges",
            "reasoning_tokens",
            "eliciting",
        ] {
            assert!(json["timeline"].get(key).is_some(), "{key}");
        }
        for key in ["ts", "account_id", "category", "prompt"] {
            assert!(json["samples"][0].get(key).is_some(), "{key}");
        }
        for key in ["nodes", "edges", "omitted_accounts", "omitted_values"] {
            assert!(json["graph"].get(key).is_some(), "{key}");
        }
        for key in ["id", "kind", "label", "weight"] {
            assert!(json["graph"]["nodes"][0].get(key).is_some(), "{key}");
        }
        for key in ["source", "target", "weight"] {
            assert!(json["graph"]["edges"][0].get(key).is_some(), "{key}");
        }
    }

    #[test]
    fn same_input_gives_the_same_json() {
        let (accounts, xs) = fixture();
        let a = serde_json::to_string(&build(InsightOptions::default(), &accounts, &xs).view());
        let b = serde_json::to_string(&build(InsightOptions::default(), &accounts, &xs).view());
        assert_eq!(a.unwrap(), b.unwrap());
    }

    #[test]
    fn out_of_order_input_gives_the_same_totals_timeline_and_graph() {
        let (accounts, xs) = fixture();
        let sorted = build(InsightOptions::default(), &accounts, &xs).view();
        let mut reversed = xs.clone();
        reversed.reverse();
        // Newest first per account, as the gateway reads them, accounts interleaved.
        let mut shuffled = xs.clone();
        shuffled.sort_by_key(|x| {
            (
                std::cmp::Reverse(x.ts.as_millis() % 7),
                std::cmp::Reverse(x.ts),
            )
        });
        for order in [reversed, shuffled] {
            let v = build(InsightOptions::default(), &accounts, &order).view();
            assert_eq!(v.exchanges, sorted.exchanges);
            assert_eq!(v.reasoning_tokens, sorted.reasoning_tokens);
            assert_eq!(
                (v.first_seen, v.last_seen),
                (sorted.first_seen, sorted.last_seen)
            );
            assert_eq!(v.after_detection, sorted.after_detection);
            assert_eq!(v.timeline, sorted.timeline);
            assert_eq!(v.capabilities, sorted.capabilities);
            assert_eq!(v.graph, sorted.graph);
        }
    }

    #[test]
    fn graph_stays_bounded_with_a_thousand_members() {
        let n = 1000;
        // Every pair's values drawable, to test the caps.
        let opts = InsightOptions {
            graph_min_share: 0.0,
            ..InsightOptions::default()
        };
        let mut ins = CampaignInsight::new(&campaign(n), opts.clone());
        for i in 0..n {
            // Pairs share a block, a wrapper, a payment method and a user agent.
            let pair = i / 2;
            ins.add_account(&Account {
                account_id: member(i),
                payment_fingerprint: Some(format!("card-{pair}")),
                ..Default::default()
            });
            let ip = format!("10.{}.{}.7", pair / 256, pair % 256);
            let mut x = exchange(
                &member(i),
                start().plus_millis(i as i64 * Timestamp::MINUTE),
                &ip,
                &format!(
                    "Wrapper sentence number {} is long enough to fingerprint.\nAnd another.",
                    word(pair)
                ),
            );
            if let Some(c) = &mut x.client {
                c.user_agent = Some(format!("agent/{pair}"));
            }
            ins.observe(&x);
            ins.observe(&x);
        }
        let v = ins.view();
        assert_eq!(v.members_seen, n);
        assert!(node(&v, "account").len() <= opts.graph_accounts);
        for kind in ["template", "ip_block", "payment", "user_agent"] {
            assert_eq!(node(&v, kind).len(), opts.graph_values, "{kind}");
            assert!(node(&v, kind).iter().all(|n| n.weight == 2), "{kind}");
        }
        assert!(v.graph.nodes.len() <= opts.graph_accounts + 6 * opts.graph_values);
        assert!(v.graph.edges.len() <= opts.graph_accounts * 6 * MEMBER_TEMPLATES);
        assert_eq!(v.graph.omitted_values, 4 * (500 - opts.graph_values));
        assert!(v.graph.omitted_accounts > 0);
        assert!(v.timeline.exchanges.len() <= opts.timeline_points);
        assert_eq!(v.timeline.exchanges.iter().sum::<u64>(), 2 * n as u64);
        // With the default share (5%), values held by a pair are not drawn.
        let mut strict = CampaignInsight::new(&campaign(4 * 20), InsightOptions::default());
        for i in 0..80 {
            let ip = if i < 2 { "10.9.9.1" } else { "10.1.1.1" };
            strict.observe(&exchange(&member(i), start(), ip, "Q"));
        }
        let strict = strict.view();
        let blocks = node(&strict, "ip_block");
        assert_eq!(blocks.len(), 1, "only the block 78 members share is drawn");
    }

    #[test]
    fn a_full_member_set_keeps_repeated_values_and_forgets_one_offs() {
        let mut ins = CampaignInsight::new(&campaign(2), InsightOptions::default());
        for i in 0..2 {
            for k in 0..50 {
                let ts = start().plus_millis(k * Timestamp::MINUTE);
                let third = if k % 2 == 0 {
                    0
                } else {
                    (100 + k + 200 * i as i64) % 256
                };
                let ip = format!("10.0.{third}.1");
                ins.observe(&exchange(&member(i), ts, &ip, WRAPPER));
            }
        }
        let v = ins.view();
        let blocks = node(&v, "ip_block");
        assert_eq!(blocks.len(), 1, "{blocks:?}");
        assert_eq!(
            (blocks[0].label.as_str(), blocks[0].weight),
            ("10.0.0.0/24", 2)
        );
        let edge = v
            .graph
            .edges
            .iter()
            .find(|e| e.target == "ip_block:10.0.0.0/24")
            .unwrap();
        assert_eq!(edge.weight, 25);
        // Bounded: at most the caps per member, whatever the traffic.
        for m in &ins.members {
            assert!(m.slots.iter().filter(|s| s.kind == Kind::IpBlock).count() <= MEMBER_VALUES);
        }
        assert!(ins.ties.holders.len() <= 2 * (5 * MEMBER_VALUES + MEMBER_TEMPLATES));
    }

    #[test]
    fn similar_strings_do_not_share_a_value_hash() {
        let mut seen = std::collections::HashMap::new();
        for p in 0..100_000 {
            let s = format!("agent/{p}");
            if let Some(q) = seen.insert(hash_str(&s), s.clone()) {
                panic!("{s} and {q} collide");
            }
        }
        assert_ne!(hash_str(""), hash_str("\0"));
    }

    #[test]
    fn block_codes_round_trip_to_labels() {
        assert_eq!(
            block_label(block_code("203.0.113.9").unwrap()),
            "203.0.113.0/24"
        );
        assert_eq!(
            block_label(block_code("2001:db8:1:2::5").unwrap()),
            "2001:db8:1::/48"
        );
        assert_eq!(block_code("not an address"), None);
    }

    proptest::proptest! {
        #[test]
        fn observe_never_panics(
            items in proptest::collection::vec(
                ("\\PC{0,200}", ".{0,40}", ".{0,60}", "[a-z0-9_]{0,40}", proptest::num::i64::ANY, 0u64..1_000_000, 0usize..4),
                0..12,
            ),
            points in 0usize..200,
        ) {
            let opts = InsightOptions { timeline_points: points, ..Default::default() };
            let mut ins = CampaignInsight::new(&campaign(3), opts);
            for (prompt, ip, ua, ja4, ms, reasoning, who) in &items {
                let mut x = exchange(&member(*who), Timestamp::from_millis(*ms), ip, prompt);
                if let Some(c) = &mut x.client {
                    c.user_agent = Some(ua.clone());
                    c.tls_ja4 = Some(ja4.clone());
                }
                if let Some(r) = &mut x.response {
                    r.reasoning_tokens = Some(*reasoning);
                }
                ins.add_account(&Account { account_id: member(*who), payment_fingerprint: Some(ua.clone()), ..Default::default() });
                ins.observe(&x);
            }
            let v = ins.view();
            let observed = items.iter().filter(|i| i.6 < 3).count() as u64;
            proptest::prop_assert_eq!(v.exchanges, observed);
            proptest::prop_assert_eq!(v.timeline.exchanges.iter().sum::<u64>(), observed);
            proptest::prop_assert!(v.timeline.exchanges.len() <= points.max(2));
            proptest::prop_assert!(serde_json::to_string(&v).is_ok());
        }
    }
}

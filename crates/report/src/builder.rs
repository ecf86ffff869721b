//! [`ReportBuilder`]: what the report remembers from the detections, and the per-exchange fold
//! of the second pass over the traffic.
//!
//! State is per flagged account (a few counters) and per campaign (bounded aggregates for the
//! campaigns that get a section); exchanges of accounts that are neither flagged nor in a
//! campaign only touch the traffic-wide counters.

use std::collections::HashMap;
use std::net::IpAddr;

use moat_types::{CampaignDetection, Detection, Exchange, Signal, Timestamp};

use crate::bounded::{CappedSet, FastHash, Sample, Samples, Timeline, TopK};
use crate::text;
use crate::ReportOptions;

/// Occupied timeline buckets before a timeline coarsens (4096 hours is about 5.6 months).
const TIMELINE_BUCKETS: usize = 4096;
/// Counters of the traffic-wide model mix.
const MODEL_COUNTERS: usize = 64;
/// Counters per campaign for address blocks, user agents and countries (the report shows
/// fewer; Space-Saving needs headroom to find the heavy hitters).
const VALUE_COUNTERS: usize = 256;
/// Distinct address blocks counted exactly per campaign.
const DISTINCT_BLOCKS: usize = 10_000;
/// Requests with `max_tokens` at least this large count as a large output budget.
const LARGE_BUDGET: u64 = 8192;

/// Builds the HTML report of one analysis; see the crate documentation for the two passes.
#[derive(Debug)]
pub struct ReportBuilder {
    pub(crate) opts: ReportOptions,
    /// Campaigns in rank order (score, then size, then id).
    pub(crate) campaigns: Vec<CampaignStats>,
    /// Flagged accounts and campaign members.
    pub(crate) accounts: Vec<AccountStats>,
    index: HashMap<Box<str>, usize, FastHash>,
    /// Accounts with a detection line, flagged or not.
    pub(crate) accounts_total: u64,
    /// Reason names of flagged accounts with how many flagged accounts carry each, in first
    /// seen order (the glossary orders them).
    pub(crate) reason_counts: Vec<(String, u64)>,
    pub(crate) all: TrafficStats,
    /// Per hour: requests of campaign members.
    pub(crate) members_hourly: Timeline,
    /// Per hour: requests of flagged accounts outside campaigns.
    pub(crate) other_flagged_hourly: Timeline,
}

/// What the report knows about one flagged account or campaign member.
#[derive(Debug, Clone)]
pub(crate) struct AccountStats {
    pub id: String,
    /// `None` for a campaign member without an account line.
    pub risk: Option<f64>,
    pub flagged: bool,
    pub flagged_at: Option<Timestamp>,
    /// Index into [`ReportBuilder::campaigns`].
    pub campaign: Option<usize>,
    pub reasons: Vec<String>,
    pub exchanges: u64,
    /// Requests at or after `flagged_at`.
    pub after_flag: u64,
    pub first: Option<Timestamp>,
    pub last: Option<Timestamp>,
}

/// One campaign: the detection's facts, counters, and (for campaigns with a section) details.
#[derive(Debug)]
pub(crate) struct CampaignStats {
    pub id: String,
    pub score: f64,
    pub detected_at: Option<Timestamp>,
    pub signals: Vec<Signal>,
    /// Indices into [`ReportBuilder::accounts`].
    pub members: Vec<usize>,
    pub exchanges: u64,
    /// Requests at or after `detected_at`.
    pub after_detection: u64,
    pub first: Option<Timestamp>,
    pub last: Option<Timestamp>,
    pub detail: Option<Box<Detail>>,
}

/// Bounded aggregates of a campaign's traffic, for its section.
#[derive(Debug)]
pub(crate) struct Detail {
    pub traffic: TrafficStats,
    pub blocks: TopK<Block>,
    pub distinct_blocks: CappedSet<Block>,
    pub agents: TopK<String>,
    pub countries: TopK<String>,
    pub samples: Samples,
}

/// Counters kept both for all traffic and for each detailed campaign.
#[derive(Debug)]
pub(crate) struct TrafficStats {
    pub exchanges: u64,
    pub first: Option<Timestamp>,
    pub last: Option<Timestamp>,
    pub hourly: Timeline,
    pub models: TopK<String>,
    pub shape: Shape,
}

/// How requests are built: the harvest-style parameters and conversation shape.
#[derive(Debug, Default, Clone)]
pub(crate) struct Shape {
    /// Requests with exactly one user turn and no assistant turn.
    pub single_turn: u64,
    /// Requests with a system or developer message.
    pub system_prompt: u64,
    /// Requests with `max_tokens` at or above [`LARGE_BUDGET`].
    pub large_budget: u64,
    /// Requests with `reasoning_effort` high (or above).
    pub high_effort: u64,
    /// Requests asking for several choices (`n > 1`).
    pub multi_choice: u64,
    /// Requests asking for log-probabilities.
    pub logprobs: u64,
    /// Responses that report reasoning tokens.
    pub with_reasoning: u64,
    /// Reasoning tokens consumed.
    pub reasoning_tokens: u64,
    /// Completion (answer) tokens returned.
    pub completion_tokens: u64,
}

/// An IPv4 /24 or IPv6 /48 address block, compact so that counting it allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Block {
    V4([u8; 3]),
    V6([u16; 3]),
}

impl std::fmt::Display for Block {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Block::V4(o) => write!(f, "{}.{}.{}.0/24", o[0], o[1], o[2]),
            Block::V6(s) => write!(f, "{:x}:{:x}:{:x}::/48", s[0], s[1], s[2]),
        }
    }
}

fn block(ip: &str) -> Option<Block> {
    match ip.trim().parse::<IpAddr>().ok()? {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            Some(Block::V4([o[0], o[1], o[2]]))
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            Some(Block::V6([s[0], s[1], s[2]]))
        }
    }
}

impl TrafficStats {
    fn new() -> Self {
        TrafficStats {
            exchanges: 0,
            first: None,
            last: None,
            hourly: Timeline::new(TIMELINE_BUCKETS),
            models: TopK::new(MODEL_COUNTERS),
            shape: Shape::default(),
        }
    }

    fn observe(&mut self, x: &Exchange) {
        self.exchanges += 1;
        self.first = Some(self.first.map_or(x.ts, |f| f.min(x.ts)));
        self.last = Some(self.last.map_or(x.ts, |l| l.max(x.ts)));
        self.hourly.add(x.ts);
        self.models
            .add(x.request.model.as_deref().unwrap_or("(not logged)"));
        self.shape.observe(x);
    }
}

impl Shape {
    fn observe(&mut self, x: &Exchange) {
        let mut users = 0;
        let mut assistants = 0;
        let mut system = false;
        for m in &x.request.messages {
            match m.role.as_str() {
                "user" => users += 1,
                "assistant" => assistants += 1,
                "system" | "developer" => system = true,
                _ => {}
            }
        }
        let single = if x.request.messages.is_empty() {
            x.request.prompt.is_some()
        } else {
            users == 1 && assistants == 0
        };
        self.single_turn += u64::from(single);
        self.system_prompt += u64::from(system);
        if let Some(p) = &x.request.params {
            self.large_budget += u64::from(p.max_tokens.is_some_and(|t| t >= LARGE_BUDGET));
            self.high_effort += u64::from(p.reasoning_effort.as_deref().is_some_and(|e| {
                e.eq_ignore_ascii_case("high")
                    || e.eq_ignore_ascii_case("xhigh")
                    || e.eq_ignore_ascii_case("max")
            }));
            self.multi_choice += u64::from(p.n.is_some_and(|n| n > 1));
            self.logprobs +=
                u64::from(p.logprobs == Some(true) || p.top_logprobs.is_some_and(|k| k > 0));
        }
        if let Some(r) = &x.response {
            if let Some(t) = r.reasoning_tokens {
                self.with_reasoning += 1;
                self.reasoning_tokens = self.reasoning_tokens.saturating_add(t);
            }
            if let Some(t) = r.completion_tokens {
                self.completion_tokens = self.completion_tokens.saturating_add(t);
            }
        }
    }
}

impl Detail {
    fn new(samples: usize, seed: u64) -> Self {
        Detail {
            traffic: TrafficStats::new(),
            blocks: TopK::new(VALUE_COUNTERS),
            distinct_blocks: CappedSet::new(DISTINCT_BLOCKS),
            agents: TopK::new(VALUE_COUNTERS),
            countries: TopK::new(VALUE_COUNTERS),
            samples: Samples::new(samples, seed),
        }
    }

    fn observe(&mut self, x: &Exchange, sample_chars: usize) {
        self.traffic.observe(x);
        if let Some(c) = &x.client {
            if let Some(b) = c.ip.as_deref().and_then(block) {
                self.blocks.add(&b);
                self.distinct_blocks.insert(b);
            }
            self.agents
                .add(c.user_agent.as_deref().unwrap_or("(not logged)"));
            self.countries
                .add(c.country.as_deref().unwrap_or("(not logged)"));
        }
        let asked = text::asked(x);
        let key = text::shape_key(&asked);
        self.samples.offer(key, || {
            Sample::new(
                text::sanitize_prompt(&asked, sample_chars),
                text::system_prompt(x).map(|s| text::sanitize_prompt(&s, sample_chars / 2)),
                x.ts,
                x.account_id.clone(),
                x.request_id.clone(),
            )
        });
    }
}

/// Rank order of campaigns: score, then size, descending; then id.
fn rank(a: &CampaignDetection, b: &CampaignDetection) -> std::cmp::Ordering {
    b.score
        .total_cmp(&a.score)
        .then(b.accounts.len().cmp(&a.accounts.len()))
        .then_with(|| a.campaign_id.cmp(&b.campaign_id))
}

impl ReportBuilder {
    /// Prepares a report of `detections` (as `moat analyze` writes them: account lines and
    /// campaign lines, in any order). Feed the traffic with [`ReportBuilder::observe`] next.
    pub fn new(detections: &[Detection], opts: ReportOptions) -> Self {
        let mut campaigns: Vec<&CampaignDetection> = detections
            .iter()
            .filter_map(|d| match d {
                Detection::Campaign(c) => Some(c),
                Detection::Account(_) => None,
            })
            .collect();
        campaigns.sort_by(|a, b| rank(a, b));
        let by_id: HashMap<&str, usize> = campaigns
            .iter()
            .enumerate()
            .map(|(i, c)| (c.campaign_id.as_str(), i))
            .rev() // the first of duplicate ids wins
            .collect();

        let mut accounts: Vec<AccountStats> = Vec::new();
        let mut index: HashMap<Box<str>, usize, FastHash> = HashMap::default();
        let mut accounts_total = 0;
        let mut reason_counts: Vec<(String, u64)> = Vec::new();
        let mut reason_index: HashMap<String, usize> = HashMap::new();
        for d in detections {
            let Detection::Account(a) = d else { continue };
            accounts_total += 1;
            let campaign = a.campaign_id.as_deref().and_then(|c| by_id.get(c).copied());
            if !a.flagged && campaign.is_none() {
                continue;
            }
            if a.flagged {
                for r in &a.reasons {
                    match reason_index.get(r) {
                        Some(&i) => reason_counts[i].1 += 1,
                        None => {
                            reason_index.insert(r.clone(), reason_counts.len());
                            reason_counts.push((r.clone(), 1));
                        }
                    }
                }
            }
            if index.contains_key(a.account_id.as_str()) {
                continue;
            }
            index.insert(a.account_id.as_str().into(), accounts.len());
            accounts.push(AccountStats {
                id: a.account_id.clone(),
                risk: Some(a.risk),
                flagged: a.flagged,
                flagged_at: a.flagged_at,
                campaign,
                reasons: a.reasons.clone(),
                exchanges: 0,
                after_flag: 0,
                first: None,
                last: None,
            });
        }

        // Members: an account line's `campaign_id` first, then the campaign lines' member
        // lists for accounts the lines leave unassigned (or that have no account line).
        for (i, c) in campaigns.iter().enumerate() {
            for id in &c.accounts {
                match index.get(id.as_str()) {
                    Some(&ai) => {
                        if accounts[ai].campaign.is_none() {
                            accounts[ai].campaign = Some(i);
                        }
                    }
                    None => {
                        index.insert(id.as_str().into(), accounts.len());
                        accounts.push(AccountStats {
                            id: id.clone(),
                            risk: None,
                            flagged: false,
                            flagged_at: None,
                            campaign: Some(i),
                            reasons: Vec::new(),
                            exchanges: 0,
                            after_flag: 0,
                            first: None,
                            last: None,
                        });
                    }
                }
            }
        }
        let mut members: Vec<Vec<usize>> = vec![Vec::new(); campaigns.len()];
        for (ai, a) in accounts.iter().enumerate() {
            if let Some(list) = a.campaign.and_then(|i| members.get_mut(i)) {
                list.push(ai);
            }
        }

        let mut stats = Vec::with_capacity(campaigns.len());
        for ((i, c), members) in campaigns.iter().enumerate().zip(members) {
            let detail = (i < opts.max_campaign_sections).then(|| {
                Box::new(Detail::new(
                    opts.samples_per_campaign,
                    text::shape_key(&c.campaign_id),
                ))
            });
            stats.push(CampaignStats {
                id: c.campaign_id.clone(),
                score: c.score,
                detected_at: c.first_detected_at,
                signals: c.signals.clone(),
                members,
                exchanges: 0,
                after_detection: 0,
                first: None,
                last: None,
                detail,
            });
        }

        ReportBuilder {
            opts,
            campaigns: stats,
            accounts,
            index,
            accounts_total,
            reason_counts,
            all: TrafficStats::new(),
            members_hourly: Timeline::new(TIMELINE_BUCKETS),
            other_flagged_hourly: Timeline::new(TIMELINE_BUCKETS),
        }
    }

    /// Folds one exchange of the traffic into the report. Call it for every exchange, in file
    /// order; the cost is a hash lookup for most exchanges and a few counters more for those
    /// of flagged accounts and campaign members.
    pub fn observe(&mut self, x: &Exchange) {
        self.all.observe(x);
        let Some(&ai) = self.index.get(x.account_id.as_str()) else {
            return;
        };
        let a = &mut self.accounts[ai];
        a.exchanges += 1;
        a.first = Some(a.first.map_or(x.ts, |f| f.min(x.ts)));
        a.last = Some(a.last.map_or(x.ts, |l| l.max(x.ts)));
        if a.flagged_at.is_some_and(|t| x.ts >= t) {
            a.after_flag += 1;
        }
        let Some(ci) = a.campaign else {
            if a.flagged {
                self.other_flagged_hourly.add(x.ts);
            }
            return;
        };
        self.members_hourly.add(x.ts);
        let c = &mut self.campaigns[ci];
        c.exchanges += 1;
        c.first = Some(c.first.map_or(x.ts, |f| f.min(x.ts)));
        c.last = Some(c.last.map_or(x.ts, |l| l.max(x.ts)));
        if c.detected_at.is_some_and(|t| x.ts >= t) {
            c.after_detection += 1;
        }
        if let Some(d) = &mut c.detail {
            d.observe(x, self.opts.sample_chars);
        }
    }

    /// The report as one self-contained HTML page.
    pub fn render(&self) -> String {
        let mut page = String::with_capacity(256 * 1024);
        // Writing into a `String` cannot fail.
        let _ = self.render_to(&mut page);
        page
    }

    /// Writes the report into `w` (see [`ReportBuilder::render`]).
    pub fn render_to<W: std::fmt::Write>(&self, w: &mut W) -> std::fmt::Result {
        crate::render::page(self, w)
    }

    /// Exchanges observed so far.
    pub fn exchanges(&self) -> u64 {
        self.all.exchanges
    }

    /// Campaigns in the detections.
    pub fn campaigns(&self) -> usize {
        self.campaigns.len()
    }
}

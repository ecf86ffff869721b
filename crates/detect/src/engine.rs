//! The engine: consumes exchanges in time order, updates per-account state and the shared
//! attribute index, runs campaign discovery once per `discovery_interval_ms` of stream time,
//! and produces the detections.
//!
//! Causal by construction: discovery at an exchange sees only the exchanges before it, and an
//! account flagged then gets that exchange's `ts` as `flagged_at`. Deterministic: no clock, no
//! randomness, no dependence on hash-map iteration order. Not an IO layer: callers read files
//! or sockets and feed [`Engine::observe`].

use std::collections::BTreeMap;

use moat_types::{
    Account, AccountDetection, CampaignDetection, Detection, Exchange, Signal, Timestamp,
};

use crate::account::AccountState;
use crate::discover::{discover, Group};
use crate::features::{block_of, Features};
use crate::hash::hash_str;
use crate::index::{KeyIndex, KeyKind};
use crate::reasons::Reason;

/// Fast hashing, seeded per process so crafted account ids cannot collide on purpose; no
/// output depends on map order.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
use crate::Config;

/// What the engine says about the account of the exchange just observed.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// Whether the account is flagged (now or earlier).
    pub flagged: bool,
    /// The account's campaign, if it belongs to a detected one.
    pub campaign: Option<String>,
}

/// A campaign as the engine tracks it between discovery passes.
#[derive(Debug, Clone)]
struct CampaignState {
    number: u32,
    first_detected_at: i64,
    /// Evidence of the latest discovery pass that saw the campaign.
    signals: Vec<Signal>,
    score: f32,
}

/// One account's standing now (see [`Engine::account_status`]).
#[derive(Debug, Clone, PartialEq)]
pub struct AccountStatus {
    /// Risk in 0..1, as on the account's detection line.
    pub risk: f64,
    /// Whether the account is flagged.
    pub flagged: bool,
    /// When it was first flagged.
    pub flagged_at: Option<Timestamp>,
    /// Its campaign, if it belongs to a detected one (`C-0007`).
    pub campaign: Option<String>,
    /// The campaign's score (0 without a campaign).
    pub campaign_score: f64,
    /// Why (its names are the stable reason names).
    pub reasons: crate::Reasons,
}

impl AccountStatus {
    /// The account's detection line, as [`Engine::detections`] writes it.
    pub fn line(self, id: &str) -> AccountDetection {
        AccountDetection {
            account_id: id.to_owned(),
            risk: self.risk,
            flagged: self.flagged,
            flagged_at: self.flagged_at,
            campaign_id: self.campaign,
            reasons: self.reasons.names(),
        }
    }
}

/// Counters for the summary line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Exchanges observed.
    pub exchanges: u64,
    /// Discovery passes run.
    pub discoveries: u64,
    /// Accounts seen.
    pub accounts: u64,
}

/// The detection engine. Feed it exchanges in non-decreasing `ts` order.
#[derive(Debug)]
pub struct Engine {
    cfg: Config,
    accounts: Vec<AccountState>,
    ids: HashMap<Box<str>, u32>,
    side: HashMap<String, Account>,
    index: KeyIndex,
    campaigns: BTreeMap<u32, CampaignState>,
    next_discovery: Option<i64>,
    now: i64,
    stats: Stats,
    /// When each model was first requested in the stream (at most [`MAX_MODELS`] names).
    models: HashMap<String, i64>,
    /// The `ts` of the first exchange.
    start: Option<i64>,
}

/// Domain tag of autonomous-system keys.
const ASN_TAG: u64 = 0x4153_4e00_0000_0000;

/// Most model names remembered; names beyond are never considered new.
const MAX_MODELS: usize = 1024;

impl Engine {
    /// A new engine with the given settings.
    pub fn new(cfg: Config) -> Self {
        Engine {
            cfg,
            accounts: Vec::new(),
            ids: HashMap::default(),
            side: HashMap::default(),
            index: KeyIndex::default(),
            campaigns: BTreeMap::new(),
            next_discovery: None,
            now: i64::MIN,
            stats: Stats::default(),
            models: HashMap::default(),
            start: None,
        }
    }

    /// Registers what the provider knows about an account (the `accounts.jsonl` side file).
    /// Sign-up facts are known before the account's first request, so using them is causal.
    pub fn add_account(&mut self, account: &Account) {
        self.side
            .insert(account.account_id.clone(), account.clone());
    }

    /// Counters so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Observes one exchange and returns the verdict on its account.
    pub fn observe(&mut self, x: &Exchange) -> Verdict {
        self.observe_features(Features::of(x))
    }

    /// Observes one exchange given its [`Features`] (which callers may compute in parallel;
    /// they must arrive here in stream order) and returns the verdict on its account.
    pub fn observe_features(&mut self, f: Features) -> Verdict {
        let ts = f.ts.as_millis().max(self.now);
        self.now = ts;
        self.stats.exchanges += 1;
        match self.next_discovery {
            None => self.next_discovery = Some(self.boundary_after(ts)),
            Some(at) if ts >= at => {
                self.run_discovery(ts);
                self.next_discovery = Some(self.boundary_after(ts));
            }
            Some(_) => {}
        }
        let idx = self.account_index(f.account_id(), ts);
        let release = self.release_of(f.model(), ts);
        if let Some(state) = self.accounts.get_mut(idx as usize) {
            state.observe(f.ts, &f.signals, f.single_turn);
            state.observe_release(ts, release, &self.cfg);
        }
        for &(hash, start, end) in f.segments.as_slice() {
            self.index.add(
                &self.cfg,
                KeyKind::Template,
                hash,
                || excerpt(f.segment_text(start, end)),
                idx,
                ts,
            );
        }
        if let Some((key, text)) = f.system() {
            self.index.add(
                &self.cfg,
                KeyKind::SystemPrompt,
                key,
                || excerpt(text),
                idx,
                ts,
            );
        }
        let minute = ts.div_euclid(Timestamp::MINUTE);
        self.index.add(
            &self.cfg,
            KeyKind::Minute,
            crate::hash::mix(minute as u64),
            || Timestamp::from_millis(minute * Timestamp::MINUTE).to_string(),
            idx,
            ts,
        );
        if let Some((key, ua, ja4)) = f.client() {
            let label = || format!("{} / {}", ua.trim(), ja4.trim());
            self.index
                .add(&self.cfg, KeyKind::Client, key, label, idx, ts);
        }
        if let Some((key, ip)) = f.block {
            self.index
                .add(&self.cfg, KeyKind::Network, key, || block_of(ip), idx, ts);
        }
        if let Some(asn) = f.asn {
            let key = crate::hash::mix(u64::from(asn) ^ ASN_TAG);
            self.index
                .add(&self.cfg, KeyKind::Asn, key, || format!("AS{asn}"), idx, ts);
        }
        self.verdict(idx)
    }

    /// Whether the requested model is new: first requested after the stream's first day, and
    /// no longer ago than the pivot window. Returns the release (first-request) time.
    fn release_of(&mut self, model: Option<&str>, ts: i64) -> Option<i64> {
        let start = *self.start.get_or_insert(ts);
        let model = model?;
        let first = match self.models.get(model) {
            Some(&t) => t,
            None if self.models.len() < MAX_MODELS => {
                self.models.insert(model.to_owned(), ts);
                ts
            }
            None => return None,
        };
        (first - start > Timestamp::DAY && ts - first <= self.cfg.pivot_window_ms).then_some(first)
    }

    fn verdict(&self, idx: u32) -> Verdict {
        match self.accounts.get(idx as usize) {
            Some(a) => Verdict {
                flagged: a.flagged_at.is_some(),
                campaign: a.member_of.map(campaign_name),
            },
            None => Verdict {
                flagged: false,
                campaign: None,
            },
        }
    }

    fn boundary_after(&self, ts: i64) -> i64 {
        let step = self.cfg.discovery_interval_ms.max(1);
        (ts.div_euclid(step) + 1) * step
    }

    /// The index of `id`, registering the account (and its sign-up attributes) on first sight.
    fn account_index(&mut self, id: &str, ts: i64) -> u32 {
        if let Some(&i) = self.ids.get(id) {
            return i;
        }
        let idx = self.accounts.len() as u32;
        let mut state = AccountState::new(id);
        if let Some(info) = self.side.remove(id) {
            state.created_at = info.created_at.map(Timestamp::as_millis);
            state.verified = info.verified;
            if let Some(pf) = info.payment_fingerprint.as_deref() {
                let key = hash_str(b'P', pf);
                let label = pf.to_owned();
                self.index
                    .add(&self.cfg, KeyKind::Payment, key, || label, idx, ts);
            }
            if let Some(domain) = info.email_domain.as_deref() {
                let domain = domain.trim().to_ascii_lowercase();
                let key = hash_str(b'E', &domain);
                self.index
                    .add(&self.cfg, KeyKind::EmailDomain, key, || domain, idx, ts);
            }
            if let Some(created) = state.created_at {
                let bucket = created.div_euclid(self.cfg.signup_bucket_ms.max(1));
                let key = hash_str(b'U', &bucket.to_string());
                let label = Timestamp::from_millis(bucket * self.cfg.signup_bucket_ms).to_string();
                self.index
                    .add(&self.cfg, KeyKind::Signup, key, || label, idx, ts);
            }
        }
        self.accounts.push(state);
        self.ids.insert(id.into(), idx);
        self.stats.accounts += 1;
        idx
    }

    /// Links candidates, updates campaigns and flags, at stream time `ts` (the `ts` of the
    /// exchange being processed, which discovery has not seen yet).
    #[inline(never)] // once per pass; a frame of its own in profiles
    fn run_discovery(&mut self, ts: i64) {
        self.stats.discoveries += 1;
        self.index.purge(&self.cfg, ts);
        let cfg = &self.cfg;
        let candidate: Vec<bool> = self
            .accounts
            .iter_mut()
            .map(|a| {
                let (score, _) = a.assess_cached(cfg);
                a.suspicion = score;
                // Accounts flagged on their own may still turn out to be one actor's.
                a.is_candidate(cfg) || a.flagged_at.is_some()
            })
            .collect();
        let mut groups = discover(&self.cfg, &mut self.index, &candidate);
        // A handful of requests is not a harvest, however the senders are tied together.
        groups.retain(|g| {
            let requests: u64 = g
                .members
                .iter()
                .filter_map(|&m| self.accounts.get(m as usize))
                .map(|a| u64::from(a.requests))
                .sum();
            requests >= self.cfg.min_campaign_requests
        });
        // Larger groups keep their campaign number first; a group takes the number most of
        // its already-assigned members carry, unless a larger group took it this pass.
        groups.sort_by_key(|g| {
            (
                std::cmp::Reverse(g.members.len()),
                g.members.first().copied(),
            )
        });
        let mut claimed = std::collections::BTreeSet::new();
        let mut numbered = Vec::with_capacity(groups.len());
        for group in groups {
            let mut counts: BTreeMap<u32, usize> = BTreeMap::new();
            for &m in &group.members {
                if let Some(c) = self.accounts.get(m as usize).and_then(|a| a.campaign) {
                    *counts.entry(c).or_default() += 1;
                }
            }
            let number = counts
                .iter()
                .filter(|(c, _)| !claimed.contains(*c))
                .max_by_key(|(c, n)| (**n, std::cmp::Reverse(**c)))
                .map(|(c, _)| *c);
            let number = number.unwrap_or_else(|| {
                let n = self.campaigns.len() as u32 + 1;
                self.campaigns.insert(
                    n,
                    CampaignState {
                        number: n,
                        first_detected_at: ts,
                        signals: Vec::new(),
                        score: 0.0,
                    },
                );
                n
            });
            claimed.insert(number);
            numbered.push((group, number));
        }
        // Membership is what this pass found; `campaign` remembers the last campaign an account
        // was found in, so a group keeps its number across passes.
        for a in &mut self.accounts {
            a.member_of = None;
        }
        for (group, number) in numbered {
            self.adopt(group, number, ts);
        }
        // Accounts that harvest on their own, at volumes no person sends: round the clock, with
        // harvest-style parameters, eliciting reasoning or sweeping capabilities.
        for a in &mut self.accounts {
            if a.flagged_at.is_some() || a.requests < self.cfg.min_requests {
                continue;
            }
            let (_, reasons) = a.assess_cached(&self.cfg);
            if reasons.contains(Reason::HighVolume)
                && reasons.contains(Reason::RoundTheClock)
                && reasons.contains(Reason::HarvestParams)
                && (a.is_candidate(&self.cfg) || reasons.contains(Reason::CapabilitySweep))
            {
                a.flagged_at = Some(ts);
                a.reasons = reasons;
            }
        }
    }

    /// Maps a discovered group onto a (new or existing) campaign and flags its members.
    fn adopt(&mut self, group: Group, number: u32, ts: i64) {
        let mut suspicion = 0.0f32;
        let (mut reqs, mut cot, mut jb) = (0u64, 0u64, 0u64);
        let mut pivots: BTreeMap<i64, u32> = BTreeMap::new();
        for (&m, &ties) in group.members.iter().zip(&group.ties) {
            let Some(a) = self.accounts.get_mut(m as usize) else {
                continue;
            };
            a.campaign = Some(number);
            a.member_of = Some(number);
            let (score, own) = a.assess_cached(&self.cfg);
            suspicion += score;
            reqs += u64::from(a.requests);
            cot += u64::from(a.cot);
            jb += u64::from(a.jailbreak);
            if own.contains(Reason::ModelPivot) {
                if let Some(r) = a.release {
                    *pivots.entry(r).or_default() += 1;
                }
            }
            if a.flagged_at.is_none() {
                a.flagged_at = Some(ts);
                let mut reasons = own;
                reasons.insert(Reason::CampaignMember);
                for kind in KeyKind::ALL {
                    if ties & kind.bit() != 0 {
                        reasons.insert(link_reason(kind));
                    }
                }
                a.reasons = reasons;
            }
        }
        let size = group.members.len() as f32;
        let mean = suspicion / size.max(1.0);
        let size_factor = 1.0 - 1.0 / size.max(1.0).sqrt();
        let diversity = group.evidence.len() as f32 / KeyKind::ALL.len() as f32;
        let score = (0.6 * mean + 0.25 * size_factor + 0.15 * diversity).clamp(0.0, 1.0);
        let mut signals = evidence_signals(&group, &self.cfg);
        if reqs > 0 {
            signals.push(Signal {
                name: "content".into(),
                detail: format!(
                    "{:.0}% of the members' {reqs} requests elicit reasoning, {:.0}% are jailbreaks",
                    100.0 * cot as f64 / reqs as f64,
                    100.0 * jb as f64 / reqs as f64
                ),
            });
        }
        if let Some((&release, &count)) = pivots.iter().max_by_key(|(r, c)| (**c, **r)) {
            let model = self
                .models
                .iter()
                .filter(|(_, &t)| t == release)
                .map(|(m, _)| m.as_str())
                .min()
                .unwrap_or("?");
            signals.push(Signal {
                name: "model_pivot".into(),
                detail: format!(
                    "{count} of {} members moved at least {:.0}% of their requests to {model} within {} h of its first request on {}",
                    group.members.len(),
                    100.0 * self.cfg.min_pivot_share,
                    self.cfg.pivot_window_ms / Timestamp::HOUR,
                    Timestamp::from_millis(release)
                ),
            });
        }
        if let Some(c) = self.campaigns.get_mut(&number) {
            c.signals = signals;
            c.score = score;
        }
    }

    /// The detections: one account line per account seen (sorted by id), then one line per
    /// campaign (by number).
    pub fn finish(self) -> Vec<Detection> {
        self.detections()
    }

    /// What the engine says about one account now, for a live caller (the gateway's policy):
    /// the same risk, flag, campaign and reasons its account line would carry if the stream
    /// ended here. `None` for an account never seen.
    pub fn account_status(&self, id: &str) -> Option<AccountStatus> {
        let &idx = self.ids.get(id)?;
        self.accounts.get(idx as usize).map(|a| self.status_of(a))
    }

    /// Every account seen, with its standing now, in the order the engine first saw them.
    pub fn account_statuses(&self) -> impl Iterator<Item = (&str, AccountStatus)> + '_ {
        self.accounts.iter().map(|a| (&*a.id, self.status_of(a)))
    }

    /// One account's standing: what its detection line says.
    fn status_of(&self, a: &AccountState) -> AccountStatus {
        let (score, own) = a.assess(&self.cfg);
        let flagged = a.flagged_at.is_some();
        let campaign_score = a
            .member_of
            .and_then(|c| self.campaigns.get(&c))
            .map_or(0.0, |c| c.score);
        let risk = if flagged {
            score.max(campaign_score).max(0.5)
        } else {
            score.min(0.49)
        };
        AccountStatus {
            risk: round3(risk),
            flagged,
            flagged_at: a.flagged_at.map(Timestamp::from_millis),
            campaign: a.member_of.map(campaign_name),
            campaign_score: round3(campaign_score),
            // Why it was flagged, and what it showed afterwards.
            reasons: if flagged { a.reasons.union(own) } else { own },
        }
    }

    /// The campaign lines so far: members sorted, campaigns by number, those merged into an
    /// older campaign left out.
    pub fn campaign_detections(&self) -> Vec<CampaignDetection> {
        let mut members: BTreeMap<u32, Vec<String>> = BTreeMap::new();
        for a in &self.accounts {
            if let Some(c) = a.member_of {
                members.entry(c).or_default().push(a.id.to_string());
            }
        }
        let mut out = Vec::with_capacity(members.len());
        for (number, c) in &self.campaigns {
            let Some(mut accounts) = members.remove(number) else {
                continue; // merged into an older campaign
            };
            accounts.sort();
            out.push(CampaignDetection {
                campaign_id: campaign_name(c.number),
                accounts,
                score: round3(c.score),
                first_detected_at: Some(Timestamp::from_millis(c.first_detected_at)),
                signals: c.signals.clone(),
            });
        }
        out
    }

    /// The detections so far, as [`Engine::finish`] would write them now, without ending the
    /// stream (the gateway's admin API and its periodic snapshots).
    pub fn detections(&self) -> Vec<Detection> {
        let mut lines: Vec<AccountDetection> =
            self.account_statuses().map(|(id, s)| s.line(id)).collect();
        lines.sort_by(|a, b| a.account_id.cmp(&b.account_id));
        let mut out: Vec<Detection> = lines.into_iter().map(Detection::Account).collect();
        out.extend(
            self.campaign_detections()
                .into_iter()
                .map(Detection::Campaign),
        );
        out
    }
}

/// The reason an account gets for sharing an attribute of this kind with its campaign.
fn link_reason(kind: KeyKind) -> Reason {
    match kind {
        KeyKind::Template => Reason::SharedTemplate,
        KeyKind::SystemPrompt => Reason::SharedSystemPrompt,
        KeyKind::Payment => Reason::SharedPayment,
        KeyKind::Network | KeyKind::Asn => Reason::SharedNetwork,
        KeyKind::Signup => Reason::SignupBurst,
        KeyKind::EmailDomain => Reason::SharedEmailDomain,
        KeyKind::Client => Reason::SharedClient,
        KeyKind::Minute => Reason::SynchronizedTiming,
    }
}

fn campaign_name(n: u32) -> String {
    format!("C-{n:04}")
}

fn round3(x: f32) -> f64 {
    (f64::from(x) * 1000.0).round() / 1000.0
}

/// A short, single-line excerpt of prompt text for evidence.
///
/// The words of `text` joined by single spaces, cut to 117 characters and `...` when longer
/// than 120; only the words needed are looked at. Idempotent (an excerpt is its own excerpt),
/// which lets stored feature records keep excerpts in place of the texts (`features::codec`).
pub(crate) fn excerpt(text: &str) -> String {
    const MAX: usize = 120;
    // Room for MAX characters of up to four bytes each: one allocation.
    let mut out = String::with_capacity(text.len().min(4 * MAX + 4));
    let mut chars = 0;
    for word in text.split_whitespace() {
        if chars > 0 {
            out.push(' ');
            chars += 1;
        }
        out.push_str(word);
        chars += word.chars().count();
        if chars > MAX {
            let cut = out
                .char_indices()
                .nth(MAX - 3)
                .map_or(out.len(), |(i, _)| i);
            out.truncate(cut);
            out.push_str("...");
            return out;
        }
    }
    out
}

/// "N <what> used mostly by members; the <which>, <label>, by M accounts".
fn used_mostly_by_members(ev: &crate::discover::Evidence, what: &str, which: &str) -> String {
    format!(
        "{} {what} used mostly by members; the {which}, {}, by {} accounts",
        ev.values, ev.label, ev.largest
    )
}

/// Evidence lines a reviewer can check, one per kind of linking attribute.
fn evidence_signals(group: &Group, cfg: &Config) -> Vec<Signal> {
    let n = group.members.len();
    group
        .evidence
        .iter()
        .map(|(kind, ev)| {
            let (name, detail) = match kind {
                KeyKind::Template => (
                    "shared_template",
                    format!(
                        "{} shared prompt wrappers; the most common, T-{:08x}, is used by {} of {n} accounts: \"{}\"",
                        ev.values, ev.key >> 32, ev.largest, ev.label
                    ),
                ),
                KeyKind::SystemPrompt => (
                    "shared_system_prompt",
                    format!(
                        "{} shared system prompts; {} of {n} accounts send \"{}\"",
                        ev.values, ev.largest, ev.label
                    ),
                ),
                KeyKind::Payment => (
                    "shared_payment",
                    format!(
                        "{} payment fingerprints each shared by several members; the largest, {}, pays for {} accounts",
                        ev.values, ev.label, ev.largest
                    ),
                ),
                KeyKind::Network => ("shared_network", used_mostly_by_members(ev, "address blocks", "busiest")),
                KeyKind::Asn => ("shared_asn", used_mostly_by_members(ev, "autonomous systems", "busiest")),
                KeyKind::EmailDomain => ("shared_email_domain", used_mostly_by_members(ev, "e-mail domains", "largest")),
                KeyKind::Client => ("shared_client", used_mostly_by_members(ev, "client builds (user agent / TLS JA4)", "commonest")),
                KeyKind::Minute => (
                    "synchronized_timing",
                    format!(
                        "{} one-minute windows in the last {} h in which members sent most of the requests; the busiest, from {}, {} accounts",
                        ev.values,
                        cfg.synchrony_window_ms / Timestamp::HOUR,
                        ev.label,
                        ev.largest
                    ),
                ),
                KeyKind::Signup => (
                    "signup_burst",
                    format!(
                        "{} sign-up bursts; {} accounts created within {} h from {}",
                        ev.values,
                        ev.largest,
                        cfg.signup_bucket_ms / Timestamp::HOUR,
                        ev.label
                    ),
                ),
            };
            Signal {
                name: name.into(),
                detail,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_are_single_line_and_short() {
        assert_eq!(excerpt("a\n  b"), "a b");
        assert_eq!(excerpt(&"x".repeat(500)).chars().count(), 120);
    }

    proptest::proptest! {
        #[test]
        fn excerpts_are_the_joined_words_cut(text in "([a-zé語 \t\n]{0,12}){0,30}") {
            let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
            let want = if one_line.chars().count() <= 120 {
                one_line
            } else {
                format!("{}...", one_line.chars().take(117).collect::<String>())
            };
            proptest::prop_assert_eq!(excerpt(&text), want);
        }
    }
}

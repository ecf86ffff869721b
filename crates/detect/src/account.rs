//! Per-account state, updated incrementally with each request, and the account's own
//! (coordination-free) risk features.
//!
//! The state is a few hundred bytes of counters per account; nothing here keeps requests.
//! Not where accounts are linked to each other: that is `index` and `discover`.

use moat_types::Timestamp;

use crate::reasons::{Reason, Reasons};
use crate::signals::{
    category_index, RequestSignals, TaskCategory, COT_THRESHOLD, JAILBREAK_THRESHOLD,
};
use crate::Config;

/// Number of task categories tracked for the capability sweep.
pub(crate) const CATEGORIES: usize = 7;

/// Counters and facts about one account.
#[derive(Debug, Clone)]
pub(crate) struct AccountState {
    pub id: Box<str>,
    pub requests: u32,
    pub cot: u32,
    /// Sum over requests of the reasoning-elicitation strength relative to the threshold
    /// (capped at 1): weak phrasings ("walk me through it") count in part.
    pub cot_soft: f32,
    pub jailbreak: u32,
    pub harvest: u32,
    pub single_turn: u32,
    pub categories: [u32; CATEGORIES],
    /// Requests that are problems to solve (math, code, reasoning).
    pub problems: u32,
    /// Bit h set when the account was active in UTC hour h.
    pub hours: u32,
    pub days: u32,
    pub last_day: i64,
    pub first_ts: i64,
    pub last_ts: i64,
    pub created_at: Option<i64>,
    pub verified: Option<bool>,
    pub flagged_at: Option<i64>,
    /// The campaign the account was last found in (keeps numbers stable across passes).
    pub campaign: Option<u32>,
    /// The campaign the latest discovery pass found it in.
    pub member_of: Option<u32>,
    pub reasons: Reasons,
    /// Candidate score at the last discovery pass, for campaign scoring.
    pub suspicion: f32,
    /// The latest model release seen while the account was established (first-request time
    /// of the model), and the account's requests since then within the pivot window: all of
    /// them, and those to the new model.
    pub release: Option<i64>,
    pub since_release: u32,
    pub to_new_model: u32,
    /// [`AccountState::assess`] as of the last request, kept for discovery passes, which
    /// assess every account but find most of them unchanged since the last pass.
    assessed: Option<(f32, Reasons)>,
}

impl AccountState {
    pub fn new(id: &str) -> Self {
        AccountState {
            id: id.into(),
            requests: 0,
            cot: 0,
            cot_soft: 0.0,
            jailbreak: 0,
            harvest: 0,
            single_turn: 0,
            categories: [0; CATEGORIES],
            problems: 0,
            hours: 0,
            days: 0,
            last_day: i64::MIN,
            first_ts: i64::MAX,
            last_ts: i64::MIN,
            created_at: None,
            verified: None,
            flagged_at: None,
            campaign: None,
            member_of: None,
            reasons: Reasons::default(),
            suspicion: 0.0,
            release: None,
            since_release: 0,
            to_new_model: 0,
            assessed: None,
        }
    }

    /// Folds one request into the counters.
    pub fn observe(&mut self, ts: Timestamp, s: &RequestSignals, single_turn: bool) {
        let ms = ts.as_millis();
        self.assessed = None;
        self.requests = self.requests.saturating_add(1);
        if s.cot >= COT_THRESHOLD {
            self.cot += 1;
        }
        self.cot_soft += (s.cot / COT_THRESHOLD).clamp(0.0, 1.0);
        if s.jailbreak >= JAILBREAK_THRESHOLD {
            self.jailbreak += 1;
        }
        let p = &s.harvest_params;
        if p.large_budget || p.high_effort || p.multi_n || p.logprobs {
            self.harvest += 1;
        }
        if single_turn {
            self.single_turn += 1;
        }
        if matches!(
            s.category,
            TaskCategory::Math | TaskCategory::Code | TaskCategory::Reasoning
        ) {
            self.problems += 1;
        }
        let c = category_index(s.category).min(CATEGORIES - 1);
        self.categories[c] = self.categories[c].saturating_add(1);
        let hour = ms.rem_euclid(Timestamp::DAY) / Timestamp::HOUR;
        self.hours |= 1u32 << (hour as u32 % 24);
        let day = ts.day_index();
        if day != self.last_day {
            self.days += 1;
            self.last_day = day;
        }
        self.first_ts = self.first_ts.min(ms);
        self.last_ts = self.last_ts.max(ms);
    }

    /// Folds one request into the pivot counters: `release` is the first-request time of the
    /// requested model when that model is new (see the engine), else `None`.
    pub fn observe_release(&mut self, ts: i64, release: Option<i64>, cfg: &Config) {
        self.assessed = None;
        if let Some(r) = release {
            // Only accounts active well before the release can pivot; a newer release
            // restarts the count.
            if self.first_ts < r - Timestamp::DAY && self.release.is_none_or(|old| r > old) {
                self.release = Some(r);
                self.since_release = 0;
                self.to_new_model = 0;
            }
        }
        let Some(r) = self.release else {
            return;
        };
        if ts - r > cfg.pivot_window_ms {
            return;
        }
        self.since_release = self.since_release.saturating_add(1);
        if release == Some(r) {
            self.to_new_model = self.to_new_model.saturating_add(1);
        }
    }

    fn share(&self, n: u32) -> f32 {
        if self.requests == 0 {
            0.0
        } else {
            n as f32 / self.requests as f32
        }
    }

    /// Share of requests eliciting reasoning, weak phrasings counted in part.
    pub fn cot_share(&self) -> f32 {
        if self.requests == 0 {
            0.0
        } else {
            (self.cot_soft / self.requests as f32).max(self.share(self.cot))
        }
    }

    /// Shannon entropy (bits) of the task-category mix.
    pub fn category_entropy(&self) -> f32 {
        let total: u32 = self.categories.iter().sum();
        if total == 0 {
            return 0.0;
        }
        self.categories
            .iter()
            .filter(|&&c| c > 0)
            .map(|&c| {
                let p = c as f32 / total as f32;
                -p * p.log2()
            })
            .sum()
    }

    /// The account's own risk features and a candidate score in [0, 1]: how much it looks
    /// like a harvester, before any link to other accounts.
    pub fn assess(&self, cfg: &Config) -> (f32, Reasons) {
        let mut reasons = Reasons::default();
        let cot = self.cot_share();
        let jb = self.share(self.jailbreak);
        let harvest = self.share(self.harvest);
        let single = self.share(self.single_turn);
        let content = cot.max(jb);
        if cot >= cfg.min_content_share {
            reasons.insert(Reason::CotElicitation);
        }
        if jb >= cfg.min_content_share {
            reasons.insert(Reason::Jailbreak);
        }
        if harvest >= 0.5 {
            reasons.insert(Reason::HarvestParams);
        }
        if single >= 0.9 && self.requests >= cfg.min_requests {
            reasons.insert(Reason::SingleTurn);
        }
        let breadth = self.category_entropy();
        if breadth >= 1.5 && self.requests >= 20 {
            reasons.insert(Reason::CapabilitySweep);
        }
        let span_days = ((self.last_ts - self.first_ts) as f64 / Timestamp::DAY as f64).max(1.0);
        if f64::from(self.requests) / span_days >= cfg.high_volume_per_day {
            reasons.insert(Reason::HighVolume);
        }
        if self.hours.count_ones() >= 20 && self.days >= 2 {
            reasons.insert(Reason::RoundTheClock);
        }
        if let Some(created) = self.created_at {
            if self.first_ts - created <= cfg.new_account_ms {
                reasons.insert(Reason::NewAccount);
            }
        }
        if self.since_release >= cfg.min_requests.max(10)
            && self.to_new_model as f32 >= cfg.min_pivot_share * self.since_release as f32
        {
            reasons.insert(Reason::ModelPivot);
        }
        let score = 0.55 * content
            + 0.2 * harvest
            + 0.1 * single
            + 0.05 * (breadth / 2.0).min(1.0)
            + 0.05 * f32::from(u8::from(reasons.contains(Reason::RoundTheClock)))
            + 0.05 * f32::from(u8::from(reasons.contains(Reason::NewAccount)))
            + 0.05 * f32::from(u8::from(reasons.contains(Reason::ModelPivot)));
        (score.clamp(0.0, 1.0), reasons)
    }

    /// [`AccountState::assess`], computed once per change of the account's counters.
    pub fn assess_cached(&mut self, cfg: &Config) -> (f32, Reasons) {
        if let Some(a) = self.assessed {
            return a;
        }
        let a = self.assess(cfg);
        self.assessed = Some(a);
        a
    }

    /// Whether the account may join a campaign: enough requests and enough harvesting content,
    /// that is reasoning elicitation, or jailbreaks wrapped around problems to solve (a
    /// jailbreak asking for something harmful harvests no capability).
    pub fn is_candidate(&self, cfg: &Config) -> bool {
        self.requests >= cfg.min_requests
            && (self.cot_share() >= cfg.min_content_share
                || (self.share(self.jailbreak) >= cfg.min_content_share
                    && self.share(self.problems) >= cfg.min_content_share))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kept_assessment_follows_every_request() {
        let cfg = Config::default();
        let mut a = AccountState::new("a");
        let signals = |cot: f32| RequestSignals {
            cot,
            cot_kind: None,
            jailbreak: 0.0,
            category: TaskCategory::Math,
            harvest_params: Default::default(),
            language: crate::signals::Script::Latin,
        };
        for i in 0..40 {
            let ts = Timestamp::from_millis(i * Timestamp::HOUR);
            a.observe(ts, &signals(if i % 2 == 0 { 1.0 } else { 0.0 }), true);
            a.observe_release(ts.as_millis(), None, &cfg);
            assert_eq!(a.assess_cached(&cfg), a.assess(&cfg));
            assert_eq!(a.assess_cached(&cfg), a.assess(&cfg));
        }
    }

    #[test]
    fn the_state_of_an_account_is_small() {
        // The budget is 1 KiB per active account (the id's bytes live on the heap besides).
        let size = std::mem::size_of::<AccountState>();
        eprintln!("AccountState: {size} bytes");
        assert!(size <= 256, "{size}");
    }
}

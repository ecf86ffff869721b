//! The file-less core of an evaluation: [`Evaluator`] (first traffic pass) and
//! [`BaselinePass`] (second traffic pass), fed one exchange at a time.
//!
//! Memory is per account, never per exchange: the first pass counts each account's exchanges,
//! its first and last `ts`, its leaked exchanges against the detector's `flagged_at`, and its
//! busiest UTC day; the second replays the traffic through the baseline's rate limit, whose
//! limit depends on the whole first pass. [`BaselinePass::finish`] then scores both systems
//! with the same code (`metrics`). Exchanges must come in non-decreasing `ts` order per
//! account (files guarantee it overall).

use std::collections::{BTreeSet, HashMap};

use moat_types::{Class, Exchange, Timestamp};

use crate::baseline::{choose_limit, RateLimit};
use crate::error::TRAFFIC;
use crate::input::{DetectionSet, LabelSet};
use crate::metrics::{score, Facts, Outcome};
use crate::report::{
    CampaignRow, ClassCount, EvalReport, Examples, Population, SkippedLines, TacticRow,
};
use crate::validate::{resolve, Catch, Resolved};
use crate::EvalError;

/// First-pass state of one labelled account.
#[derive(Debug, Clone)]
struct Tracked {
    class: Class,
    campaign: Option<u32>,
    tactic: Option<u32>,
    catch: Catch,
    exchanges: u64,
    first_ts: Timestamp,
    last_ts: Timestamp,
    leaked: u64,
    day: i64,
    in_day: u64,
    max_daily: u64,
}

/// What both passes share: the accounts and the traffic totals.
#[derive(Debug)]
struct Core {
    ids: Vec<String>,
    index: HashMap<String, u32>,
    accounts: Vec<Tracked>,
    campaign_names: Vec<String>,
    tactic_names: Vec<String>,
    labels_skipped: Examples,
    exchanges: u64,
    first_ts: Timestamp,
    last_ts: Timestamp,
}

impl Core {
    fn lookup(&self, account: &str) -> Result<usize, EvalError> {
        self.index
            .get(account)
            .map(|&i| i as usize)
            .ok_or_else(|| EvalError::UnlabelledAccount {
                path: TRAFFIC.to_owned(),
                line: None,
                account: account.to_owned(),
            })
    }
}

/// First pass of an evaluation: build it from labels and detections, feed it every exchange
/// with [`Evaluator::observe`], then start the baseline pass with
/// [`Evaluator::into_baseline`].
#[derive(Debug)]
pub struct Evaluator {
    core: Core,
    detections: DetectionSet,
}

impl Evaluator {
    /// Prepares an evaluation of `detections` against `labels`.
    pub fn new(labels: LabelSet, detections: DetectionSet) -> Self {
        let campaign_names: Vec<String> = labels
            .labels
            .values()
            .filter_map(|(_, l)| l.campaign.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let tactic_names: Vec<String> = labels
            .labels
            .values()
            .filter_map(|(_, l)| l.tactic.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let position = |names: &[String], name: Option<&String>| -> Option<u32> {
            name.and_then(|n| names.binary_search(n).ok())
                .map(|k| k as u32)
        };
        let mut entries: Vec<_> = labels.labels.into_iter().collect();
        entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut ids = Vec::with_capacity(entries.len());
        let mut index = HashMap::with_capacity(entries.len());
        let mut accounts = Vec::with_capacity(entries.len());
        for (k, (id, (_, label))) in entries.into_iter().enumerate() {
            accounts.push(Tracked {
                class: label.class,
                campaign: position(&campaign_names, label.campaign.as_ref()),
                tactic: position(&tactic_names, label.tactic.as_ref()),
                catch: Catch::of(detections.accounts.get(&id)),
                exchanges: 0,
                first_ts: Timestamp::default(),
                last_ts: Timestamp::default(),
                leaked: 0,
                day: 0,
                in_day: 0,
                max_daily: 0,
            });
            index.insert(id.clone(), k as u32);
            ids.push(id);
        }
        Evaluator {
            core: Core {
                ids,
                index,
                accounts,
                campaign_names,
                tactic_names,
                labels_skipped: SkippedLines::from_report(&labels.skipped),
                exchanges: 0,
                first_ts: Timestamp::MAX,
                last_ts: Timestamp::MIN,
            },
            detections,
        }
    }

    /// Feeds the next exchange. Fails if its account has no label, or if it is earlier than
    /// the account's previous exchange.
    pub fn observe(&mut self, exchange: &Exchange) -> Result<(), EvalError> {
        self.observe_parts(&exchange.account_id, exchange.ts)
    }

    /// Like [`Evaluator::observe`], for callers that have only the account and the `ts`.
    pub fn observe_parts(&mut self, account: &str, ts: Timestamp) -> Result<(), EvalError> {
        let i = self.core.lookup(account)?;
        let core = &mut self.core;
        let Some(a) = core.accounts.get_mut(i) else {
            return Ok(());
        };
        if a.exchanges > 0 && ts < a.last_ts {
            return Err(EvalError::OutOfOrder {
                path: TRAFFIC.to_owned(),
                line: None,
                account: account.to_owned(),
                ts,
                previous: a.last_ts,
            });
        }
        let day = ts.day_index();
        if a.exchanges == 0 {
            a.first_ts = ts;
        }
        if a.exchanges == 0 || day != a.day {
            a.day = day;
            a.in_day = 0;
        }
        a.exchanges += 1;
        a.last_ts = ts;
        a.in_day += 1;
        a.max_daily = a.max_daily.max(a.in_day);
        if !a.catch.stops(ts) {
            a.leaked += 1;
        }
        core.exchanges += 1;
        core.first_ts = core.first_ts.min(ts);
        core.last_ts = core.last_ts.max(ts);
        Ok(())
    }

    /// Exchanges fed so far.
    pub fn exchanges(&self) -> u64 {
        self.core.exchanges
    }

    /// Ends the first pass: validates the detections against the population and sets the
    /// baseline's limit. Fails if no exchange was fed.
    pub fn into_baseline(self) -> Result<BaselinePass, EvalError> {
        let Evaluator { core, detections } = self;
        if core.exchanges == 0 {
            return Err(EvalError::EmptyTraffic {
                path: TRAFFIC.to_owned(),
            });
        }
        let in_traffic: Vec<bool> = core.accounts.iter().map(|a| a.exchanges > 0).collect();
        let resolved = resolve(&detections, &core.ids, &core.index, &in_traffic);
        drop(detections);
        let benign = core
            .accounts
            .iter()
            .filter(|a| a.exchanges > 0 && a.class == Class::Benign);
        let daily: Vec<u64> = benign.clone().map(|a| a.max_daily).collect();
        let flagged = benign.filter(|a| a.catch != Catch::Never).count() as u64;
        let limit = choose_limit(&daily, flagged);
        Ok(BaselinePass {
            states: vec![RateLimit::default(); core.accounts.len()],
            core,
            resolved,
            limit,
            seen: 0,
        })
    }
}

/// Second pass of an evaluation: feed it the same traffic again with
/// [`BaselinePass::observe`], then [`BaselinePass::finish`] for the report.
#[derive(Debug)]
pub struct BaselinePass {
    core: Core,
    resolved: Resolved,
    limit: u64,
    states: Vec<RateLimit>,
    seen: u64,
}

impl BaselinePass {
    /// The baseline's limit L, in requests per account per UTC day.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Feeds the next exchange of the second pass (the same traffic as the first).
    pub fn observe(&mut self, exchange: &Exchange) -> Result<(), EvalError> {
        self.observe_parts(&exchange.account_id, exchange.ts)
    }

    /// Like [`BaselinePass::observe`], for callers that have only the account and the `ts`.
    pub fn observe_parts(&mut self, account: &str, ts: Timestamp) -> Result<(), EvalError> {
        let i = self.core.lookup(account)?;
        self.seen += 1;
        let changed = || EvalError::TrafficChanged {
            path: TRAFFIC.to_owned(),
            first: self.core.exchanges,
            second: self.seen,
        };
        let (Some(a), Some(state)) = (self.core.accounts.get(i), self.states.get_mut(i)) else {
            return Err(changed());
        };
        if state.exchanges >= a.exchanges {
            return Err(changed());
        }
        state.observe(ts, self.limit);
        Ok(())
    }

    /// Scores the detector and the baseline. Fails if the second pass did not see as many
    /// exchanges as the first.
    pub fn finish(self) -> Result<EvalReport, EvalError> {
        let core = &self.core;
        if self.seen != core.exchanges {
            return Err(EvalError::TrafficChanged {
                path: TRAFFIC.to_owned(),
                first: core.exchanges,
                second: self.seen,
            });
        }
        let mut facts = Vec::new();
        let mut detector = Vec::new();
        let mut baseline = Vec::new();
        let mut population = Population {
            accounts: 0,
            exchanges: core.exchanges,
            first_ts: core.first_ts,
            last_ts: core.last_ts,
            benign: ClassCount::default(),
            benign_heavy: ClassCount::default(),
            distill: ClassCount::default(),
            jailbreak: ClassCount::default(),
            campaigns: 0,
            labels_not_in_traffic: 0,
        };
        for (i, a) in core.accounts.iter().enumerate() {
            if a.exchanges == 0 {
                population.labels_not_in_traffic += 1;
                continue;
            }
            population.accounts += 1;
            let class = match a.class {
                Class::Benign => &mut population.benign,
                Class::BenignHeavy => &mut population.benign_heavy,
                Class::Distill => &mut population.distill,
                Class::Jailbreak => &mut population.jailbreak,
            };
            class.accounts += 1;
            class.exchanges += a.exchanges;
            facts.push(Facts {
                class: a.class,
                campaign: a.campaign,
                tactic: a.tactic,
                exchanges: a.exchanges,
                first_ts: a.first_ts,
            });
            detector.push(Outcome {
                flag: a.catch.flag_time(core.last_ts),
                leaked: a.leaked,
                predicted: self.resolved.predicted.get(i).copied().flatten(),
            });
            let state = self.states.get(i).copied().unwrap_or_default();
            baseline.push(Outcome {
                flag: state.flagged_at,
                leaked: state.leaked(),
                predicted: None,
            });
        }
        let det = score(&facts, &detector);
        let base = score(&facts, &baseline);
        population.campaigns = det.campaigns.len() as u64;

        let name = |names: &[String], k: u32| names.get(k as usize).cloned().unwrap_or_default();
        let campaigns = det
            .campaigns
            .into_iter()
            .zip(base.campaigns)
            .map(|(d, b)| CampaignRow {
                campaign: name(&core.campaign_names, d.id),
                tactics: d
                    .tactics
                    .iter()
                    .map(|&t| name(&core.tactic_names, t))
                    .collect(),
                accounts: d.accounts,
                exchanges: d.exchanges,
                first_exchange: d.first_exchange,
                detector: d.score,
                baseline: b.score,
            })
            .collect();
        let tactics = det
            .tactics
            .into_iter()
            .zip(base.tactics)
            .map(|(d, b)| TacticRow {
                tactic: d.id.map(|t| name(&core.tactic_names, t)),
                campaigns: d.campaigns,
                accounts: d.accounts,
                exchanges: d.exchanges,
                detector: d.score,
                baseline: b.score,
            })
            .collect();
        let mut validation = self.resolved.validation;
        validation.skipped_lines.labels = core.labels_skipped.clone();
        Ok(EvalReport {
            report_version: 1,
            population,
            baseline_limit_per_day: self.limit,
            detector: det.summary,
            baseline: base.summary,
            campaigns,
            tactics,
            validation,
        })
    }
}

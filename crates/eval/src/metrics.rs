//! Scores one system (the detector or the baseline) from per-account outcomes: recall and
//! false-positive figures by class, leakage, time to detection, and grouping quality, overall,
//! per true campaign and per tactic.
//!
//! Pure arithmetic over what the traffic passes gathered; no IO and no knowledge of where the
//! outcomes came from, so both systems go through exactly the same code. The definitions are
//! those of the crate documentation and of the fields of [`crate::Summary`].

use std::collections::{BTreeMap, BTreeSet};

use moat_types::{Class, Timestamp};

use crate::cluster::{adjusted_rand_index, fragmentation, purity};
use crate::report::{CampaignScore, Summary, TacticScore};

/// What the labels and the traffic say about one account of the population.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Facts {
    /// Ground-truth class.
    pub(crate) class: Class,
    /// True campaign (index into the sorted campaign ids).
    pub(crate) campaign: Option<u32>,
    /// Tactic (index into the sorted tactic names).
    pub(crate) tactic: Option<u32>,
    /// Exchanges sent (at least 1 for an account of the population).
    pub(crate) exchanges: u64,
    /// `ts` of the first exchange.
    pub(crate) first_ts: Timestamp,
}

/// What one system did to one account.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Outcome {
    /// Flag time (for time to detection); `None` when not flagged.
    pub(crate) flag: Option<Timestamp>,
    /// Exchanges sent before the flag time (all when not flagged).
    pub(crate) leaked: u64,
    /// Predicted campaign; `None` when unassigned.
    pub(crate) predicted: Option<u32>,
}

/// One true campaign's facts and this system's score on it.
#[derive(Debug, Clone)]
pub(crate) struct CampaignPart {
    pub(crate) id: u32,
    pub(crate) accounts: u64,
    pub(crate) exchanges: u64,
    pub(crate) first_exchange: Timestamp,
    pub(crate) tactics: BTreeSet<u32>,
    pub(crate) score: CampaignScore,
}

/// One tactic's facts and this system's score on it.
#[derive(Debug, Clone)]
pub(crate) struct TacticPart {
    pub(crate) id: Option<u32>,
    pub(crate) campaigns: u64,
    pub(crate) accounts: u64,
    pub(crate) exchanges: u64,
    pub(crate) score: TacticScore,
}

/// Every figure of one system.
#[derive(Debug, Clone)]
pub(crate) struct Scored {
    pub(crate) summary: Summary,
    /// Campaigns with at least one distill member, by id.
    pub(crate) campaigns: Vec<CampaignPart>,
    /// Tactics of distill accounts, `None` first.
    pub(crate) tactics: Vec<TacticPart>,
}

/// `num / den`, or `None` when `den` is 0.
pub(crate) fn ratio(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

/// Counters of one group of distill accounts.
#[derive(Debug, Clone, Default)]
struct Group {
    accounts: u64,
    flagged: u64,
    exchanges: u64,
    leaked: u64,
    first_ts: Option<Timestamp>,
    first_flag: Option<Timestamp>,
    predicted: BTreeSet<u32>,
    tactics: BTreeSet<u32>,
    campaigns: BTreeSet<u32>,
}

impl Group {
    fn add(&mut self, f: &Facts, o: &Outcome) {
        self.accounts += 1;
        self.exchanges += f.exchanges;
        self.leaked += o.leaked;
        self.first_ts = Some(self.first_ts.map_or(f.first_ts, |t| t.min(f.first_ts)));
        if let Some(flag) = o.flag {
            self.flagged += 1;
            self.first_flag = Some(self.first_flag.map_or(flag, |t| t.min(flag)));
        }
        self.predicted.extend(o.predicted);
        self.tactics.extend(f.tactic);
        self.campaigns.extend(f.campaign);
    }

    fn time_to_detection(&self) -> Option<i64> {
        let first = self.first_ts?;
        let flag = self.first_flag?;
        Some((flag.as_millis() - first.as_millis()).max(0))
    }
}

/// True group of an account for purity: its campaign, or its class when it has none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum TrueGroup {
    Campaign(u32),
    Class(Class),
}

/// A cluster key for the ARI: a named cluster or a singleton of one account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    Cluster(u32),
    Alone(usize),
}

/// Per-class flagged counts.
#[derive(Debug, Clone, Copy, Default)]
struct ClassTally {
    accounts: u64,
    flagged: u64,
}

/// Scores one system: `facts[i]` and `outcomes[i]` describe the same account of the population.
pub(crate) fn score(facts: &[Facts], outcomes: &[Outcome]) -> Scored {
    let mut classes: BTreeMap<Class, ClassTally> = BTreeMap::new();
    let mut distill = Group::default();
    let mut campaigns: BTreeMap<u32, Group> = BTreeMap::new();
    let mut tactics: BTreeMap<Option<u32>, Group> = BTreeMap::new();
    let mut grouped = Vec::new();
    let mut ari_pairs = Vec::new();
    let mut campaign_pairs = Vec::new();
    let mut predicted_all = BTreeSet::new();

    for (i, (f, o)) in facts.iter().zip(outcomes).enumerate() {
        let tally = classes.entry(f.class).or_default();
        tally.accounts += 1;
        tally.flagged += u64::from(o.flag.is_some());
        if let Some(p) = o.predicted {
            predicted_all.insert(p);
            let group = f
                .campaign
                .map_or(TrueGroup::Class(f.class), TrueGroup::Campaign);
            grouped.push((p, group));
        }
        if f.class != Class::Distill {
            continue;
        }
        distill.add(f, o);
        tactics.entry(f.tactic).or_default().add(f, o);
        if let Some(c) = f.campaign {
            campaigns.entry(c).or_default().add(f, o);
            if let Some(p) = o.predicted {
                campaign_pairs.push((c, p));
            }
        }
        ari_pairs.push((
            f.campaign.map_or(Key::Alone(i), Key::Cluster),
            o.predicted.map_or(Key::Alone(i), Key::Cluster),
        ));
    }

    let tally = |c: Class| classes.get(&c).copied().unwrap_or_default();
    let (benign, heavy, jail) = (
        tally(Class::Benign),
        tally(Class::BenignHeavy),
        tally(Class::Jailbreak),
    );
    let mut ttds: Vec<i64> = campaigns
        .values()
        .filter_map(Group::time_to_detection)
        .collect();
    ttds.sort_unstable();
    let median = ttds.get(ttds.len().saturating_sub(1) / 2).copied();

    let summary = Summary {
        distill_recall: ratio(distill.flagged, distill.accounts),
        distill_flagged: distill.flagged,
        benign_fpr: ratio(benign.flagged, benign.accounts),
        benign_flagged: benign.flagged,
        benign_heavy_flagged: heavy.flagged,
        benign_heavy_flagged_share: ratio(heavy.flagged, heavy.accounts),
        jailbreak_flagged: jail.flagged,
        jailbreak_flagged_share: ratio(jail.flagged, jail.accounts),
        leakage: ratio(distill.leaked, distill.exchanges),
        leaked_exchanges: distill.leaked,
        campaigns_detected: campaigns.values().filter(|g| g.flagged > 0).count() as u64,
        median_time_to_detection_ms: median,
        predicted_campaigns: predicted_all.len() as u64,
        purity: purity(grouped),
        splits: fragmentation(campaign_pairs.iter().copied()),
        merges: fragmentation(campaign_pairs.iter().map(|&(c, p)| (p, c))),
        ari: adjusted_rand_index(ari_pairs),
    };

    let campaigns = campaigns
        .into_iter()
        .map(|(id, g)| CampaignPart {
            id,
            accounts: g.accounts,
            exchanges: g.exchanges,
            first_exchange: g.first_ts.unwrap_or_default(),
            score: CampaignScore {
                flagged: g.flagged,
                recall: ratio(g.flagged, g.accounts).unwrap_or(0.0),
                leaked_exchanges: g.leaked,
                leakage: ratio(g.leaked, g.exchanges).unwrap_or(0.0),
                first_detection: g.first_flag,
                time_to_detection_ms: g.time_to_detection(),
                predicted_campaigns: g.predicted.len() as u64,
            },
            tactics: g.tactics,
        })
        .collect();
    let tactics = tactics
        .into_iter()
        .map(|(id, g)| TacticPart {
            id,
            campaigns: g.campaigns.len() as u64,
            accounts: g.accounts,
            exchanges: g.exchanges,
            score: TacticScore {
                flagged: g.flagged,
                recall: ratio(g.flagged, g.accounts).unwrap_or(0.0),
                leaked_exchanges: g.leaked,
                leakage: ratio(g.leaked, g.exchanges).unwrap_or(0.0),
            },
        })
        .collect();
    Scored {
        summary,
        campaigns,
        tactics,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(ms: i64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    fn facts(class: Class, campaign: Option<u32>, exchanges: u64, first: i64) -> Facts {
        Facts {
            class,
            campaign,
            tactic: campaign,
            exchanges,
            first_ts: ts(first),
        }
    }

    fn outcome(flag: Option<i64>, leaked: u64, predicted: Option<u32>) -> Outcome {
        Outcome {
            flag: flag.map(ts),
            leaked,
            predicted,
        }
    }

    #[test]
    fn scores_a_hand_computed_case() {
        let f = [
            facts(Class::Benign, None, 5, 0),
            facts(Class::Benign, None, 5, 0),
            facts(Class::Distill, Some(0), 10, 100),
            facts(Class::Distill, Some(0), 10, 50),
            facts(Class::Distill, Some(1), 4, 200),
        ];
        let o = [
            outcome(Some(10), 5, Some(0)), // benign, flagged, put in predicted 0
            outcome(None, 5, None),
            outcome(Some(300), 6, Some(0)),
            outcome(Some(400), 8, Some(1)), // campaign 0 split over predicted 0 and 1
            outcome(None, 4, None),
        ];
        let s = score(&f, &o);
        let m = &s.summary;
        assert_eq!(m.distill_recall, Some(2.0 / 3.0));
        assert_eq!(m.benign_fpr, Some(0.5));
        assert_eq!(m.benign_heavy_flagged_share, None);
        assert_eq!(m.leaked_exchanges, 18);
        assert_eq!(m.leakage, Some(18.0 / 24.0));
        // Predicted 0 = {benign, c0}: majority 1; predicted 1 = {c0}: 1. Purity 2/3.
        assert_eq!(m.purity, Some(2.0 / 3.0));
        assert_eq!((m.splits, m.merges), (1, 0));
        assert_eq!(m.campaigns_detected, 1);
        // Campaign 0 starts at 50, first flag at 300.
        assert_eq!(m.median_time_to_detection_ms, Some(250));
        let c0 = &s.campaigns[0];
        assert_eq!((c0.accounts, c0.exchanges), (2, 20));
        assert_eq!(c0.score.leakage, 0.7);
        assert_eq!(c0.score.predicted_campaigns, 2);
        assert_eq!(s.campaigns[1].score.time_to_detection_ms, None);
        // Distill ARI: true {c0, c0, c1}, predicted all singletons → 0.
        assert_eq!(m.ari, Some(0.0));
    }

    #[test]
    fn flag_before_first_exchange_counts_as_zero_time() {
        let f = [facts(Class::Distill, Some(0), 3, 1_000)];
        let o = [outcome(Some(10), 0, None)];
        let s = score(&f, &o);
        assert_eq!(s.campaigns[0].score.time_to_detection_ms, Some(0));
        assert_eq!(s.campaigns[0].score.first_detection, Some(ts(10)));
    }
}

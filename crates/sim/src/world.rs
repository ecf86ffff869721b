//! Building a run's world from a scenario: every account with its identity, label, connection
//! and behaviour, the campaigns' shared state, and the models.
//!
//! Populations are created in a fixed order (benign, heavy, jailbreak, campaigns), each account
//! with its own setup random stream, so the world is a pure function of the scenario, the
//! corpus, the seed and the scale. Account ids are hashes (see `ids`), so creation order does
//! not show in the output. Not the event loop: that is `engine`.

use std::collections::HashSet;

use moat_types::{Account, Class, Label, Timestamp};

use crate::corpus::{Category, Corpus};
use crate::ids;
use crate::infra::Infra;
use crate::population::campaign::{self, Shared};
use crate::population::{benign, heavy, jailbreak, Actor, Behavior, Conn, ModelInfo};
use crate::rng::{pick_weighted, rng_for, SimRng, Stream};
use crate::scenario::Scenario;
use crate::{SimError, SimOptions};

/// What the provider knows about an account, before its id is assigned.
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    pub created_at: i64,
    pub email_domain: String,
    pub payment: Option<String>,
    pub country: &'static str,
    pub tier: &'static str,
    pub verified: bool,
}

/// One account's side-file records.
#[derive(Debug, Clone)]
pub(crate) struct AccountRecord {
    pub account: Account,
    pub label: Label,
}

/// Accumulates accounts while populations are set up.
pub(crate) struct Builder<'a> {
    pub seed: u64,
    pub infra: &'a Infra,
    pub corpus: &'a Corpus,
    pub models: &'a [ModelInfo],
    pub start: i64,
    pub end: i64,
    pub accounts: Vec<AccountRecord>,
    pub actors: Vec<Actor>,
    pub estimated: f64,
    ids: HashSet<String>,
}

impl Builder<'_> {
    /// Index the next added account gets.
    pub(crate) fn next_index(&self) -> u64 {
        self.accounts.len() as u64
    }

    /// A model available at `t`, by benign weight (for accounts that pin one in code).
    pub(crate) fn model_at(&self, rng: &mut SimRng, t: i64) -> u8 {
        let w: Vec<f64> = self
            .models
            .iter()
            .map(|m| {
                if m.released <= t {
                    m.benign_weight
                } else {
                    0.0
                }
            })
            .collect();
        if w.iter().sum::<f64>() <= 0.0 {
            0
        } else {
            pick_weighted(rng, &w) as u8
        }
    }

    /// Adds one account; `expected` is its expected number of calls (for progress estimates).
    pub(crate) fn add(
        &mut self,
        identity: Identity,
        mut label: Label,
        conn: Conn,
        behavior: Behavior,
        retry_probability: f64,
        expected: f64,
    ) {
        let idx = self.next_index();
        let mut salt = 0;
        let mut id = ids::account_id(self.seed, idx, salt);
        // 50-bit ids collide about once in 10^5 runs of 100k accounts; re-draw when they do.
        while self.ids.contains(&id) {
            salt += 1;
            id = ids::account_id(self.seed, idx, salt);
        }
        self.ids.insert(id.clone());
        label.account_id = id.clone();
        let account = Account {
            account_id: id,
            created_at: Some(Timestamp::from_millis(identity.created_at)),
            email_domain: Some(identity.email_domain),
            payment_fingerprint: identity.payment,
            country: Some(identity.country.to_owned()),
            tier: Some(identity.tier.to_owned()),
            verified: Some(identity.verified),
        };
        self.accounts.push(AccountRecord { account, label });
        self.actors.push(Actor {
            rng: rng_for(self.seed, Stream::Behaviour, idx),
            conn,
            behavior,
            planned: None,
            retry: None,
            sent: 0,
            retry_probability,
        });
        self.estimated += expected.max(0.0);
    }
}

/// Everything a run needs besides the corpus.
pub(crate) struct World {
    pub accounts: Vec<AccountRecord>,
    pub actors: Vec<Actor>,
    pub campaigns: Vec<Shared>,
    pub models: Vec<ModelInfo>,
    pub infra: Infra,
    pub by_category: Vec<(Category, Vec<u32>)>,
    pub estimated: u64,
}

/// A count at scale: zero stays zero, anything else becomes at least one.
pub(crate) fn scaled(n: u64, scale: f64) -> u64 {
    if n == 0 {
        0
    } else {
        ((n as f64 * scale).round() as u64).max(1)
    }
}

/// Builds the world of one run.
pub(crate) fn build(
    scenario: &Scenario,
    corpus: &Corpus,
    opts: &SimOptions,
) -> Result<World, SimError> {
    // Every pool the populations draw from is non-empty and every template has its slots.
    corpus.validate()?;
    let seed = opts.seed;
    let start = scenario.start.as_millis();
    let end = scenario.end().as_millis();
    let infra = Infra::new(seed);
    let models: Vec<ModelInfo> = scenario
        .models
        .iter()
        .map(|m| {
            let released = m.released_at.map_or(start, Timestamp::as_millis).max(start);
            ModelInfo {
                name: m.name.clone(),
                reasoning: m.reasoning,
                released,
                new: released > start,
                benign_weight: m.benign_weight,
            }
        })
        .collect();
    let mut by_category: Vec<(Category, Vec<u32>)> = Vec::new();
    for (i, p) in corpus.problems.iter().enumerate() {
        match by_category.iter_mut().find(|(c, _)| *c == p.category) {
            Some((_, v)) => v.push(i as u32),
            None => by_category.push((p.category, vec![i as u32])),
        }
    }
    by_category.sort_by_key(|(c, _)| *c);

    let mut b = Builder {
        seed,
        infra: &infra,
        corpus,
        models: &models,
        start,
        end,
        accounts: Vec::new(),
        actors: Vec::new(),
        estimated: 0.0,
        ids: HashSet::new(),
    };
    let s = opts.scale;
    benign::setup(
        &mut b,
        &scenario.benign,
        scaled(scenario.benign.accounts, s),
    );
    let h = &scenario.benign_heavy;
    heavy::setup_apps(&mut b, h, scaled(h.app_backends, s));
    heavy::setup_harnesses(&mut b, h, scaled(h.eval_harnesses, s), &by_category);
    heavy::setup_enterprises(&mut b, h, &scenario.benign, scaled(h.enterprises, s));
    jailbreak::setup(
        &mut b,
        &scenario.jailbreak,
        scaled(scenario.jailbreak.accounts, s),
    );
    let mut campaigns = Vec::with_capacity(scenario.campaigns.len());
    for (i, c) in scenario.campaigns.iter().enumerate() {
        campaigns.push(campaign::setup(
            &mut b,
            scenario,
            c,
            i as u16,
            scaled(c.accounts, s),
        ));
    }
    let estimated = b.estimated.round() as u64;
    let (accounts, actors) = (b.accounts, b.actors);
    debug_assert!(accounts
        .iter()
        .all(|a| a.label.class != Class::Distill || a.label.campaign.is_some()));
    Ok(World {
        accounts,
        actors,
        campaigns,
        models,
        infra,
        by_category,
        estimated,
    })
}

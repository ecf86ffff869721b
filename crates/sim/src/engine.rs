//! The event loop: merges every account's next call through a heap keyed by
//! `(time, account index)` and turns each call into an [`Exchange`], in non-decreasing time
//! order and in memory bounded by the number of accounts.
//!
//! Each step pops the earliest actor, asks its behaviour what to send (or replays a pending
//! automatic retry), asks the response model what the API answered, and pushes the actor back
//! with its next time. Ties are broken by account index, and every actor draws from its own
//! random stream, so the output is a pure function of the inputs. No IO here: `output` writes.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use moat_types::{Account, Exchange, Label, Timestamp};

use crate::call::{respond, retryable, Load};
use crate::corpus::Corpus;
use crate::ids;
use crate::population::{prompt_tokens, Env, Retry};
use crate::rng::{chance, exp};
use crate::scenario::Scenario;
use crate::summary::{CampaignSummary, SimSummary};
use crate::world::{self, World};
use crate::SimError;

/// Options of one run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimOptions {
    /// Seed of every random choice: the same seed gives the same bytes.
    pub seed: u64,
    /// Multiplies every account count of the scenario (must be > 0). Counts other than zero
    /// stay at least one, so every population is present at any scale.
    pub scale: f64,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            seed: 1,
            scale: 1.0,
        }
    }
}

impl SimOptions {
    /// Checks the options.
    pub fn validate(&self) -> Result<(), SimError> {
        if !(self.scale.is_finite() && self.scale > 0.0 && self.scale <= 10_000.0) {
            return Err(SimError::InvalidOption {
                name: "scale",
                message: format!("must be > 0 and at most 10000, got {}", self.scale),
            });
        }
        Ok(())
    }
}

/// The side files and summary of a finished simulation.
#[derive(Debug, Clone)]
pub struct SimOutput {
    /// Accounts that sent at least one exchange, sorted by `account_id`.
    pub accounts: Vec<Account>,
    /// Their labels, in the same order.
    pub labels: Vec<Label>,
    /// Counts by class and campaign.
    pub summary: SimSummary,
}

/// A running simulation: an iterator over exchanges in time order.
///
/// Use [`crate::run`] to write the standard output files; iterate directly to feed exchanges
/// elsewhere (benchmarks, tests, a live gateway), then call [`Simulation::finish`] for the
/// side files.
pub struct Simulation<'a> {
    scenario: &'a Scenario,
    corpus: &'a Corpus,
    opts: SimOptions,
    world: World,
    heap: BinaryHeap<Reverse<(i64, u32)>>,
    start: i64,
    end: i64,
    produced: u64,
    first: Option<i64>,
    last: Option<i64>,
}

impl<'a> Simulation<'a> {
    /// Sets up every account of `scenario` and schedules its first call.
    pub fn new(
        scenario: &'a Scenario,
        corpus: &'a Corpus,
        opts: &SimOptions,
    ) -> Result<Simulation<'a>, SimError> {
        opts.validate()?;
        let mut world = world::build(scenario, corpus, opts)?;
        let start = scenario.start.as_millis();
        let end = scenario.end().as_millis();
        let mut heap = BinaryHeap::with_capacity(world.actors.len());
        {
            let World {
                actors,
                campaigns,
                models,
                by_category,
                ..
            } = &mut world;
            let env = Env {
                corpus,
                models,
                benign: &scenario.benign,
                campaigns,
                by_category,
            };
            for (i, actor) in actors.iter_mut().enumerate() {
                actor.planned = actor.behavior.first(&mut actor.rng, &env);
                if let Some(t) = actor.planned.filter(|&t| t >= start && t < end) {
                    heap.push(Reverse((t, i as u32)));
                }
            }
        }
        Ok(Simulation {
            scenario,
            corpus,
            opts: *opts,
            world,
            heap,
            start,
            end,
            produced: 0,
            first: None,
            last: None,
        })
    }

    /// Expected number of exchanges (an estimate from the configured rates, for progress).
    pub fn estimated_total(&self) -> u64 {
        self.world.estimated
    }

    /// Number of accounts set up (including any that never send).
    pub fn account_count(&self) -> usize {
        self.world.accounts.len()
    }

    /// Exchanges produced so far.
    pub fn produced(&self) -> u64 {
        self.produced
    }

    fn step(&mut self) -> Option<Exchange> {
        let Reverse((ts, idx)) = self.heap.pop()?;
        let seed = self.opts.seed;
        let World {
            actors,
            accounts,
            campaigns,
            models,
            infra,
            by_category,
            ..
        } = &mut self.world;
        let env = Env {
            corpus: self.corpus,
            models,
            benign: &self.scenario.benign,
            campaigns,
            by_category,
        };
        let actor = actors.get_mut(idx as usize)?;
        let account = accounts.get(idx as usize)?;

        // A pending retry goes first when it is due no later than the planned call.
        let retry_due = actor
            .retry
            .as_ref()
            .is_some_and(|r| r.at == ts && actor.planned.is_none_or(|p| r.at <= p));
        let (plan, attempt) = match actor.retry.take() {
            Some(r) if retry_due => (r.plan, r.attempt),
            other => {
                actor.retry = other;
                let plan = actor
                    .behavior
                    .plan(ts, &mut actor.rng, &mut actor.conn, &env);
                (plan, 0)
            }
        };
        let base = actor.behavior.load();
        let load = Load {
            rate_limited: base.rate_limited,
            overloaded: base.overloaded + env.overload(plan.model, ts),
        };
        let tokens = prompt_tokens(&plan.request);
        let response = respond(
            &mut actor.rng,
            plan.task,
            env.reasoning(plan.model),
            plan.request.params.as_ref(),
            tokens,
            load,
        );
        let client = actor.conn.client(infra, ts, &mut actor.rng);
        let key = actor.conn.key();
        if attempt == 0 {
            actor.planned = actor
                .behavior
                .after(ts, &response, &mut actor.rng, &env)
                .map(|p| p.max(ts));
        }
        let latency = response.latency_ms.unwrap_or(0) as i64;
        let request = if retryable(response.status)
            && attempt < 2
            && chance(&mut actor.rng, actor.retry_probability)
        {
            // SDK backoff: 0.5 s doubling per attempt, jittered; rate limits wait longer.
            let mut backoff = 500.0
                * f64::from(1u32 << attempt)
                * (1.0 + 0.25 * rand::Rng::gen::<f64>(&mut actor.rng));
            if response.status == Some(429) {
                backoff += exp(&mut actor.rng, 2000.0);
            }
            let request = plan.request.clone();
            actor.retry = Some(Box::new(Retry {
                at: ts + latency + backoff as i64,
                plan,
                attempt: attempt + 1,
            }));
            request
        } else {
            plan.request
        };
        let exchange = Exchange {
            v: 1,
            ts: Timestamp::from_millis(ts),
            request_id: Some(ids::request_id(seed, u64::from(idx), actor.sent)),
            account_id: account.account.account_id.clone(),
            api_key_id: Some(ids::key_id(seed, u64::from(idx), u64::from(key))),
            client: Some(client),
            request,
            response: Some(response),
        };
        actor.sent += 1;
        if let Some(next) = actor.next_time() {
            if next < self.end {
                self.heap.push(Reverse((next.max(ts), idx)));
            }
        }
        self.produced += 1;
        self.first.get_or_insert(ts);
        self.last = Some(ts);
        Some(exchange)
    }

    /// Ends the simulation: the accounts that sent anything, their labels and the summary.
    pub fn finish(self) -> SimOutput {
        let mut rows: Vec<(Account, Label, u64)> = self
            .world
            .accounts
            .into_iter()
            .zip(self.world.actors.iter().map(|a| a.sent))
            .filter(|(_, sent)| *sent > 0)
            .map(|(r, sent)| (r.account, r.label, sent))
            .collect();
        rows.sort_by(|a, b| a.0.account_id.cmp(&b.0.account_id));

        let mut by_class: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        let mut by_tactic: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        let mut by_campaign: BTreeMap<String, CampaignSummary> = BTreeMap::new();
        for (_, label, sent) in &rows {
            let e = by_class.entry(label.class.as_str().to_owned()).or_default();
            e.0 += 1;
            e.1 += sent;
            if let Some(t) = &label.tactic {
                let e = by_tactic.entry(t.clone()).or_default();
                e.0 += 1;
                e.1 += sent;
            }
            if let Some(c) = &label.campaign {
                let e = by_campaign
                    .entry(c.clone())
                    .or_insert_with(|| CampaignSummary {
                        tactic: label.tactic.clone().unwrap_or_default(),
                        accounts: 0,
                        exchanges: 0,
                    });
                e.accounts += 1;
                e.exchanges += sent;
            }
        }
        let summary = SimSummary {
            scenario: self.scenario.name.clone(),
            seed: self.opts.seed,
            scale: self.opts.scale,
            corpus: self.corpus.source.clone(),
            start: Timestamp::from_millis(self.start),
            end: Timestamp::from_millis(self.end),
            first_exchange: self.first.map(Timestamp::from_millis),
            last_exchange: self.last.map(Timestamp::from_millis),
            exchanges: self.produced,
            accounts: rows.len() as u64,
            by_class,
            by_tactic,
            by_campaign,
        };
        let (accounts, labels) = rows.into_iter().map(|(a, l, _)| (a, l)).unzip();
        SimOutput {
            accounts,
            labels,
            summary,
        }
    }
}

impl Iterator for Simulation<'_> {
    type Item = Exchange;

    fn next(&mut self) -> Option<Exchange> {
        self.step()
    }
}

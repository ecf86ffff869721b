//! Legitimate heavy users, the hard negatives: app backends (one account, high volume, one
//! system prompt, narrow templated messages, cloud egress addresses), evaluation harnesses
//! (reasoning benchmarks with step-by-step prompts at temperature 0, in bursts, and a run on
//! every newly released model) and enterprises (many accounts behind one NAT block and one
//! payment method, provisioned in batches).
//!
//! They share many surface features with distillation on purpose; what they lack is the
//! combination (many coordinated accounts sweeping distinct problems for reasoning).

use moat_types::{Class, Label};

use super::human::{Human, ModelChoice, Source, SystemPrompt};
use super::{benign, pick, request, user_message, Behavior, ClientId, Conn, Env, Plan};
use crate::call::{Load, Style, Task};
use crate::corpus::{Category, Corpus};
use crate::infra::clients::{ASYNC_OPENAI_PYTHON, GO_HTTP, LIBS, OPENAI_JS, OPENAI_PYTHON};
use crate::infra::identity::{company_domain, pick_tier};
use crate::infra::networks::{NetKind, COUNTRIES};
use crate::infra::{network, Access};
use crate::rng::{
    below, between, between_u64, chance, choose, exp, lognormal, pick_weighted, rng_for, SimRng,
    Stream,
};
use crate::scenario::{Benign, BenignHeavy};
use crate::text::{APP_SYSTEM_PROMPTS, APP_TEMPLATES, HARNESS_TEMPLATES};
use crate::timing::{Clock, Rhythm};
use crate::world::{Builder, Identity};

const DAY: i64 = moat_types::Timestamp::DAY;
const HOUR: i64 = moat_types::Timestamp::HOUR;

fn heavy_label(kind: &str) -> Label {
    Label {
        account_id: String::new(),
        class: Class::BenignHeavy,
        campaign: None,
        tactic: Some(kind.to_owned()),
    }
}

/// A few fixed addresses in one cloud network (NAT gateways of a deployment).
fn cloud_egress(b: &Builder<'_>, rng: &mut SimRng, n: u64) -> Access {
    let net = b.infra.datacenter(rng);
    let ips: Vec<(u16, u32)> = (0..n.max(1))
        .map(|_| (net, b.infra.address(net, rng)))
        .collect();
    Access::Fixed {
        ips: ips.into_boxed_slice(),
    }
}

/// An app backend.
#[derive(Debug, Clone)]
pub(crate) struct App {
    per_day: f64,
    clock: Clock,
    from: i64,
    until: i64,
    template: &'static str,
    system: SystemPrompt,
    instructions: bool,
    style: Style,
    model: u8,
}

impl App {
    pub(crate) fn first(&mut self, rng: &mut SimRng) -> Option<i64> {
        self.clock
            .next_event(rng, self.from, self.per_day, self.until)
    }

    pub(crate) fn plan(
        &mut self,
        _ts: i64,
        rng: &mut SimRng,
        _conn: &mut Conn,
        env: &Env<'_>,
    ) -> Plan {
        let c = env.corpus;
        let input = if self.instructions {
            pick(&c.instructions, rng)
        } else {
            pick(&c.benign_prompts, rng)
        };
        let mut messages = Vec::with_capacity(2);
        if let Some(system) = self.system.message(env, false) {
            messages.push(system);
        }
        messages.push(user_message(
            Corpus::fill_slots(self.template, &[("input", input)]),
            false,
        ));
        let params = self.style.params(rng, env.reasoning(self.model));
        Plan {
            request: request(
                super::Endpoint::Chat,
                env.model_name(self.model),
                messages,
                params,
            ),
            task: Task::App,
            model: self.model,
        }
    }

    pub(crate) fn after(&mut self, ts: i64, rng: &mut SimRng) -> Option<i64> {
        // Calls come from many end users at once: the backend does not wait for responses.
        self.clock.next_event(rng, ts, self.per_day, self.until)
    }
}

/// Adds `count` app backends.
pub(crate) fn setup_apps(b: &mut Builder<'_>, h: &BenignHeavy, count: u64) {
    for _ in 0..count {
        let idx = b.next_index();
        let rng = &mut rng_for(b.seed, Stream::Setup, idx);
        // Log-uniform volume between the bounds.
        let [lo, hi] = h.app_calls_per_day;
        let per_day = (lo.ln() + rand::Rng::gen::<f64>(rng) * (hi.ln() - lo.ln())).exp();
        let ci = b.infra.benign_country(rng);
        let offset = choose(rng, COUNTRIES[ci].utc_offsets)
            .copied()
            .unwrap_or(0.0);
        let lib = [OPENAI_PYTHON, OPENAI_JS, GO_HTTP][pick_weighted(rng, &[60.0, 30.0, 10.0])];
        let client = ClientId::of(&LIBS[lib], rng);
        let style = Style {
            temperature: Some([0.2, 0.3, 0.7][below(rng, 3)]),
            top_p: None,
            max_tokens: Some([256, 512, 1024][below(rng, 3)]),
            reasoning_effort: if chance(rng, 0.5) { Some("low") } else { None },
            stream: Some(lib == OPENAI_JS && chance(rng, 0.5)),
            n: None,
            multi_n_share: 0.0,
            logprobs_share: 0.0,
        };
        // Apps prefer a cheap non-reasoning model when the scenario has one.
        let model = match b.models.iter().position(|m| !m.reasoning && !m.new) {
            Some(m) if chance(rng, 0.6) => m as u8,
            _ => 0,
        };
        let system = if b.corpus.system_prompts.is_empty() || chance(rng, 0.3) {
            SystemPrompt::Builtin(choose(rng, APP_SYSTEM_PROMPTS).copied().unwrap_or(""))
        } else {
            SystemPrompt::Corpus(below(rng, b.corpus.system_prompts.len()) as u32)
        };
        let egress = between_u64(rng, 1, 4);
        let access = cloud_egress(b, rng, egress);
        let created = b.start - (between(rng, 120.0, 1000.0) * DAY as f64) as i64;
        let app = App {
            per_day,
            clock: Clock::new(Rhythm::App, offset),
            from: b.start,
            until: b.end,
            template: choose(rng, APP_TEMPLATES).copied().unwrap_or("{input}"),
            system,
            instructions: chance(rng, 0.4),
            style,
            model,
        };
        let expected = per_day * (b.end - b.start) as f64 / DAY as f64;
        let company = 3 << 40 | idx;
        let identity = Identity {
            created_at: created,
            email_domain: company_domain(b.seed, company),
            payment: Some(crate::ids::payment_fingerprint(b.seed, company, 0)),
            country: if chance(rng, 0.8) {
                COUNTRIES[ci].code
            } else {
                "US"
            },
            tier: pick_tier(rng, &[("tier-4", 40.0), ("tier-5", 60.0)]),
            verified: true,
        };
        let keys = between_u64(rng, 2, 3) as u8;
        b.add(
            identity,
            heavy_label("app-backend"),
            Conn::new(access, vec![client], keys),
            Behavior::App(app),
            0.95,
            expected,
        );
    }
}

/// An evaluation harness.
#[derive(Debug, Clone)]
pub(crate) struct Harness {
    runs_per_day: f64,
    problems: [u64; 2],
    rps: f64,
    clock: Clock,
    from: i64,
    until: i64,
    template: String,
    /// Index into the run's problems-by-category list; `None`: all problems.
    category: Option<usize>,
    offset: u64,
    style: Style,
    run: Option<Run>,
    /// Model the next run evaluates (a new release), if decided.
    next_model: Option<u8>,
    /// Models already evaluated after their release (bit per model index).
    evaluated: u64,
}

#[derive(Debug, Clone)]
struct Run {
    remaining: u64,
    cursor: u64,
    model: u8,
}

impl Harness {
    pub(crate) fn first(&mut self, rng: &mut SimRng, env: &Env<'_>) -> Option<i64> {
        self.next_run(rng, env, self.from)
    }

    /// The next run's start: a regular one from the working-hours rhythm, or a run on a newly
    /// released model a few hours after its release, whichever comes first.
    fn next_run(&mut self, rng: &mut SimRng, env: &Env<'_>, t: i64) -> Option<i64> {
        let regular = self.clock.next_event(rng, t, self.runs_per_day, self.until);
        let mut best = regular;
        self.next_model = None;
        for (i, m) in env.models.iter().enumerate().take(64) {
            if !m.new || self.evaluated & (1 << i) != 0 || m.released + 48 * HOUR < t {
                continue;
            }
            let at = (m.released + lognormal(rng, 8.0 * HOUR as f64, 0.5) as i64).max(t);
            if at < self.until && best.is_none_or(|b| at < b) {
                best = Some(at);
                self.next_model = Some(i as u8);
            }
        }
        best
    }

    pub(crate) fn plan(
        &mut self,
        ts: i64,
        rng: &mut SimRng,
        conn: &mut Conn,
        env: &Env<'_>,
    ) -> Plan {
        let run = match self.run.take() {
            Some(r) => r,
            None => {
                conn.new_session(rng);
                let model = match self.next_model.take() {
                    Some(m) => {
                        self.evaluated |= 1 << m;
                        m
                    }
                    None => {
                        let available: Vec<u8> = env
                            .models
                            .iter()
                            .enumerate()
                            .filter(|(_, m)| m.released <= ts)
                            .map(|(i, _)| i as u8)
                            .collect();
                        if chance(rng, 0.7) {
                            0
                        } else {
                            choose(rng, &available).copied().unwrap_or(0)
                        }
                    }
                };
                Run {
                    remaining: between_u64(rng, self.problems[0], self.problems[1]),
                    cursor: 0,
                    model,
                }
            }
        };
        let problems = &env.corpus.problems;
        let pool = self
            .category
            .and_then(|i| env.by_category.get(i))
            .map(|(_, v)| v.as_slice());
        let n = pool.map_or(problems.len(), <[u32]>::len).max(1) as u64;
        let k = ((self.offset + run.cursor) % n) as usize;
        let pi = pool.and_then(|p| p.get(k)).map_or(k, |&i| i as usize);
        let question = problems.get(pi).map_or("", |p| p.text.as_str());
        let messages = vec![user_message(Corpus::fill(&self.template, question), false)];
        let params = self.style.params(rng, env.reasoning(run.model));
        let plan = Plan {
            request: request(
                super::Endpoint::Chat,
                env.model_name(run.model),
                messages,
                params,
            ),
            task: Task::Harness,
            model: run.model,
        };
        self.run = Some(Run {
            remaining: run.remaining.saturating_sub(1),
            cursor: run.cursor + 1,
            model: run.model,
        });
        plan
    }

    pub(crate) fn after(&mut self, ts: i64, rng: &mut SimRng, env: &Env<'_>) -> Option<i64> {
        if self.run.as_ref().is_some_and(|r| r.remaining > 0) {
            let next = ts + exp(rng, 1000.0 / self.rps).max(1.0) as i64;
            return (next < self.until).then_some(next);
        }
        self.run = None;
        self.next_run(rng, env, ts + 10 * moat_types::Timestamp::MINUTE)
    }
}

/// Adds `count` evaluation harnesses.
pub(crate) fn setup_harnesses(
    b: &mut Builder<'_>,
    h: &BenignHeavy,
    count: u64,
    by_category: &[(Category, Vec<u32>)],
) {
    for _ in 0..count {
        let idx = b.next_index();
        let rng = &mut rng_for(b.seed, Stream::Setup, idx);
        let ci = b.infra.benign_country(rng);
        let offset = choose(rng, COUNTRIES[ci].utc_offsets)
            .copied()
            .unwrap_or(0.0);
        let (access, domain) = if chance(rng, 0.5) {
            let net = b.infra.network_in(ci, NetKind::University, rng);
            let base = b.infra.address(net, rng) & !7;
            (
                Access::Nat { net, base, size: 8 },
                network(net).domain.map(str::to_owned),
            )
        } else {
            (cloud_egress(b, rng, 1), None)
        };
        let domain = domain.unwrap_or_else(|| company_domain(b.seed, 4 << 40 | idx));
        let lib = if chance(rng, 0.6) {
            ASYNC_OPENAI_PYTHON
        } else {
            OPENAI_PYTHON
        };
        let client = ClientId::of(&LIBS[lib], rng);
        // Benchmarks stick to one kind of problem, mostly math.
        let category = if by_category.is_empty() {
            None
        } else {
            let weights: Vec<f64> = by_category
                .iter()
                .map(|(c, v)| {
                    if v.len() < 20 {
                        0.0
                    } else if *c == Category::Math {
                        3.0
                    } else {
                        1.0
                    }
                })
                .collect();
            (weights.iter().sum::<f64>() > 0.0).then(|| pick_weighted(rng, &weights))
        };
        let template = if chance(rng, 0.6) {
            choose(rng, HARNESS_TEMPLATES)
                .copied()
                .unwrap_or("{question}")
                .to_owned()
        } else {
            pick(&b.corpus.cot_templates, rng).to_owned()
        };
        let style = Style {
            temperature: Some(0.0),
            top_p: None,
            max_tokens: Some([2048, 4096][below(rng, 2)]),
            reasoning_effort: if chance(rng, 0.5) { Some("high") } else { None },
            stream: None,
            n: None,
            multi_n_share: 0.0,
            logprobs_share: 0.0,
        };
        let runs_per_day = h.eval_runs_per_week / 7.0;
        let harness = Harness {
            runs_per_day,
            problems: h.eval_problems_per_run,
            rps: h.eval_requests_per_second * lognormal(rng, 1.0, 0.3),
            clock: Clock::new(Rhythm::Work, offset),
            from: b.start,
            until: b.end,
            template,
            category,
            offset: rand::Rng::gen_range(rng, 0..1_000_000),
            style,
            run: None,
            next_model: None,
            evaluated: 0,
        };
        let days = (b.end - b.start) as f64 / DAY as f64;
        let per_run = (h.eval_problems_per_run[0] + h.eval_problems_per_run[1]) as f64 / 2.0;
        let releases = b.models.iter().filter(|m| m.new).count() as f64;
        let expected = (runs_per_day * days + releases) * per_run;
        let identity = Identity {
            created_at: b.start - (between(rng, 60.0, 900.0) * DAY as f64) as i64,
            email_domain: domain,
            payment: Some(crate::ids::payment_fingerprint(b.seed, 4 << 40 | idx, 0)),
            country: COUNTRIES[crate::infra::country_index(b.infra.country_of(&access))].code,
            tier: pick_tier(rng, &[("tier-2", 50.0), ("tier-3", 50.0)]),
            verified: true,
        };
        b.add(
            identity,
            heavy_label("eval-harness"),
            Conn::new(access, vec![client], 1),
            Behavior::Harness(harness),
            0.95,
            expected,
        );
    }
}

/// Adds `count` enterprises with their staff accounts.
pub(crate) fn setup_enterprises(b: &mut Builder<'_>, h: &BenignHeavy, cfg: &Benign, count: u64) {
    for e in 0..count {
        let erng = &mut rng_for(b.seed, Stream::Enterprise, e);
        let company = 5 << 40 | e;
        let (office, ci) = benign::office(b, company);
        let offset = choose(erng, COUNTRIES[ci].utc_offsets)
            .copied()
            .unwrap_or(0.0);
        let domain = company_domain(b.seed, company);
        let payment = crate::ids::payment_fingerprint(b.seed, company, 0);
        let members = between_u64(
            erng,
            h.accounts_per_enterprise[0],
            h.accounts_per_enterprise[1],
        );
        // Staff accounts are provisioned in a few batches (an admin creating dozens at once).
        let batches: Vec<i64> = (0..between_u64(erng, 1, 4))
            .map(|_| b.start - (between(erng, 20.0, 700.0) * DAY as f64) as i64)
            .collect();
        let tool_lib = [OPENAI_PYTHON, OPENAI_JS][below(erng, 2)];
        let tool_client = ClientId::of(&LIBS[tool_lib], erng);
        let tool_style = Style::benign(erng, LIBS[tool_lib].stream_share);
        let tool_system =
            SystemPrompt::Builtin(choose(erng, APP_SYSTEM_PROMPTS).copied().unwrap_or(""));
        for _ in 0..members {
            let idx = b.next_index();
            let rng = &mut rng_for(b.seed, Stream::Setup, idx);
            let batch = choose(rng, &batches).copied().unwrap_or(b.start - DAY);
            let created = batch + exp(rng, 0.5 * HOUR as f64) as i64;
            // Most staff use the company's internal tool; some their own scripts.
            let (client, style, system) = if chance(rng, 0.7) {
                (tool_client.clone(), tool_style.clone(), tool_system.clone())
            } else {
                let lib = &LIBS[pick_weighted(rng, &crate::infra::clients::benign_weights())];
                (
                    ClientId::of(lib, rng),
                    Style::benign(rng, lib.stream_share),
                    SystemPrompt::None,
                )
            };
            let human = Human::new(
                Source::Benign,
                Clock::new(Rhythm::Work, offset),
                h.enterprise_sessions_per_day * lognormal(rng, 1.0, 0.6),
                cfg.mean_turns_per_session,
                (b.start.max(created), b.end),
                style,
                ModelChoice::Adopting,
                system,
                [0.0, 0.0],
                false,
                Load {
                    rate_limited: 0.004,
                    overloaded: 0.0,
                },
            );
            let expected = human.expected_calls();
            let mut conn = Conn::new(office.clone(), vec![client], 1);
            conn.alt = Some((benign::home_access(b, ci, idx, rng), 0.2));
            b.add(
                Identity {
                    created_at: created,
                    email_domain: domain.clone(),
                    payment: Some(payment.clone()),
                    country: COUNTRIES[ci].code,
                    tier: "enterprise",
                    verified: true,
                },
                heavy_label("enterprise"),
                conn,
                Behavior::Human(human),
                cfg.retry_probability,
                expected,
            );
        }
    }
}

//! Distillation campaigns: the shared state one operator keeps for all its accounts (IP pool,
//! payment clusters, dispatch waves, prompt wrappers, parameters, the problem sweep) and the
//! behaviour of its scripted members.
//!
//! Each tactic reproduces a publicly described pattern: a "hydra" proxy network rotating
//! residential IPs across thousands of accounts created in bursts, sending tens of calls per
//! account per day in synchronized waves and mixing in ordinary customers' traffic;
//! low-and-slow operators on datacenter networks with human timing and paraphrased prompts;
//! reasoning extraction ("imagine and articulate the internal reasoning…", rubric grading, in
//! several languages); jailbreak-assisted harvesting; a naive few-account high-volume script;
//! and a campaign that moves half its traffic to a newly released model within a day.
//! Low-and-slow members are human-driven (see `human`); their prompts come from here.

use moat_types::{Class, Label};

use super::human::{Human, ModelChoice, Source, SystemPrompt, Turn};
use super::{benign, pick, request, user_message, Behavior, ClientId, Conn, Env, Plan};
use crate::call::{Load, Style, Task};
use crate::corpus::{Category, Corpus};
use crate::infra::clients::{
    benign_weights, LIBS, OPENAI_JS, OPENAI_PYTHON, PYTHON_HTTPX, PYTHON_REQUESTS,
};
use crate::infra::identity::{
    company_domain, disposable_domain, fresh_domain, personal_domain, pick_tier,
};
use crate::infra::networks::{NetKind, COUNTRIES};
use crate::infra::Access;
use crate::rng::{
    below, between_u64, chance, choose, exp, hash, lognormal, pick_weighted, rng_for, SimRng,
    Stream,
};
use crate::scenario::knobs::{Knobs, Timing};
use crate::scenario::{Campaign, Scenario, Schedule, Tactic};
use crate::text::{paraphrase, plausible_answer, HARVEST_SYSTEM_PROMPTS, STEP_FOLLOW_UPS};
use crate::timing::{Clock, Rhythm, Waves};
use crate::world::{Builder, Identity};

const DAY: i64 = moat_types::Timestamp::DAY;
const HOUR: i64 = moat_types::Timestamp::HOUR;
const MINUTE: i64 = moat_types::Timestamp::MINUTE;

/// How a harvested problem is wrapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wrapper {
    /// A step-by-step phrasing (`cot_templates[i]`).
    Cot(u32),
    /// An articulate-the-reasoning phrasing (`extraction_templates[i]`).
    Extract(u32),
    /// The bare problem (the system prompt asks for the reasoning).
    Bare,
}

/// A permutation of problem indices (`a·i + b mod n` with `a` coprime to `n`), so a campaign's
/// members sweep the dataset without repeating each other.
#[derive(Debug, Clone, Copy)]
struct Sweep {
    a: u64,
    b: u64,
    n: u64,
}

impl Sweep {
    fn new(rng: &mut SimRng, n: usize) -> Sweep {
        let n = n.max(1) as u64;
        let mut a = rand::Rng::gen_range(rng, 1..=n) | 1;
        while gcd(a, n) != 1 {
            a += 1;
        }
        Sweep {
            a: a % n.max(2),
            b: rand::Rng::gen_range(rng, 0..n),
            n,
        }
    }

    fn at(&self, i: u64) -> usize {
        let i = u128::from(i % self.n);
        ((u128::from(self.a) * i + u128::from(self.b)) % u128::from(self.n)) as usize
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// State one campaign's operator keeps for all its accounts.
#[derive(Debug, Clone)]
pub(crate) struct Shared {
    pub tactic: Tactic,
    knobs: Knobs,
    members: u64,
    model: u8,
    /// New model, its release time, the share moved to it, and the ramp length (ms).
    pivot: Option<(u8, i64, f64, i64)>,
    waves: Option<Waves>,
    wrappers: Vec<Wrapper>,
    jailbreaks: Vec<u32>,
    system_share: f64,
    systems: Vec<&'static str>,
    style: Style,
    /// Parameters of cover requests (for a proxy network: its ordinary customers').
    cover_style: Style,
    sweep: Sweep,
    parts: bool,
    /// The API the campaign's scripts call: most use chat completions, some the responses
    /// API, so the endpoint alone says nothing about the caller.
    endpoint: super::Endpoint,
}

impl Shared {
    /// The model a request at `ts` goes to: after a pivot model's release, a share ramping up
    /// to `pivot_share` over `pivot_hours`.
    fn model_at(&self, rng: &mut SimRng, ts: i64) -> u8 {
        if let Some((m, released, share, ramp)) = self.pivot {
            if ts >= released {
                let p = share * ((ts - released) as f64 / ramp.max(1) as f64).min(1.0);
                if chance(rng, p) {
                    return m;
                }
            }
        }
        self.model
    }

    /// The next problem for member `member` that has taken `taken` so far.
    fn problem<'a>(&self, env: &'a Env<'_>, member: u32, taken: &mut u64) -> (&'a str, Category) {
        let i = u64::from(member) + *taken * self.members.max(1);
        *taken += 1;
        env.corpus
            .problems
            .get(self.sweep.at(i))
            .map_or(("", Category::Reasoning), |p| (p.text.as_str(), p.category))
    }
}

/// A scripted campaign member.
#[derive(Debug, Clone)]
pub(crate) struct Member {
    campaign: u16,
    member: u32,
    per_day: f64,
    from: i64,
    until: i64,
    wave: Option<u64>,
    taken: u64,
    clock: Clock,
    pub load: Load,
}

impl Member {
    fn schedule(&mut self, rng: &mut SimRng, env: &Env<'_>, t: i64) -> Option<i64> {
        let shared = env.campaigns.get(usize::from(self.campaign))?;
        let t = t.max(self.from);
        match &shared.waves {
            Some(waves) => {
                let p = waves.join_probability(self.per_day);
                let (k, at) = waves.next(rng, self.wave, p, t, self.until)?;
                self.wave = Some(k);
                Some(at)
            }
            None => self.clock.next_event(rng, t, self.per_day, self.until),
        }
    }

    pub(crate) fn first(&mut self, rng: &mut SimRng, env: &Env<'_>) -> Option<i64> {
        self.schedule(rng, env, self.from)
    }

    pub(crate) fn after(&mut self, ts: i64, rng: &mut SimRng, env: &Env<'_>) -> Option<i64> {
        // Scripts fire and move on: the next call does not wait for this one's response.
        self.schedule(rng, env, ts + 1)
    }

    pub(crate) fn plan(
        &mut self,
        ts: i64,
        rng: &mut SimRng,
        conn: &mut Conn,
        env: &Env<'_>,
    ) -> Plan {
        conn.new_session(rng);
        let Some(shared) = env.campaigns.get(usize::from(self.campaign)) else {
            let turn = benign::cover_turn(rng, env);
            return simple_plan(env, 0, turn, &Style::harvester(rng), rng);
        };
        let model = shared.model_at(rng, ts);
        let cover = chance(rng, shared.knobs.cover_share);
        let turn = if cover {
            benign::cover_turn(rng, env)
        } else {
            harvest_turn(rng, env, shared, self.member, &mut self.taken)
        };
        let mut messages = Vec::with_capacity(2);
        if !cover && chance(rng, shared.system_share) {
            if let Some(s) = choose(rng, &shared.systems) {
                messages.push(super::message("system", (*s).to_owned(), shared.parts));
            }
        }
        messages.push(user_message(turn.text, shared.parts));
        let style = if cover {
            &shared.cover_style
        } else {
            &shared.style
        };
        let params = style.params(rng, env.reasoning(model));
        Plan {
            request: request(shared.endpoint, env.model_name(model), messages, params),
            task: turn.task,
            model,
        }
    }
}

fn simple_plan(env: &Env<'_>, model: u8, turn: Turn, style: &Style, rng: &mut SimRng) -> Plan {
    let params = style.params(rng, env.reasoning(model));
    Plan {
        request: request(
            super::Endpoint::Chat,
            env.model_name(model),
            vec![user_message(turn.text, false)],
            params,
        ),
        task: turn.task,
        model,
    }
}

/// A harvesting prompt in the campaign's style.
fn harvest_turn(
    rng: &mut SimRng,
    env: &Env<'_>,
    shared: &Shared,
    member: u32,
    taken: &mut u64,
) -> Turn {
    let c = env.corpus;
    let (problem, category) = shared.problem(env, member, taken);
    match shared.tactic {
        Tactic::ReasoningExtraction => {
            if chance(rng, shared.knobs.rubric_share) {
                let template = pick(&c.rubric_templates, rng);
                let text = Corpus::fill_rubric(
                    template,
                    problem,
                    &plausible_answer(rand::Rng::gen(rng), category),
                );
                Turn {
                    text,
                    task: Task::Rubric,
                }
            } else {
                Turn {
                    text: Corpus::fill(pick(&c.extraction_templates, rng), problem),
                    task: Task::Extraction,
                }
            }
        }
        Tactic::JailbreakHarvest => {
            let jb = choose(rng, &shared.jailbreaks)
                .and_then(|&i| c.jailbreak_templates.get(i as usize))
                .map_or("{request}", String::as_str);
            if chance(rng, 0.7) {
                let inner = Corpus::fill(pick(&c.extraction_templates, rng), problem);
                Turn {
                    text: Corpus::fill(jb, &inner),
                    task: Task::Extraction,
                }
            } else {
                Turn {
                    text: Corpus::fill(jb, pick(&c.harmful_requests, rng)),
                    task: Task::Jailbreak,
                }
            }
        }
        _ => {
            let wrapper = choose(rng, &shared.wrappers)
                .copied()
                .unwrap_or(Wrapper::Bare);
            match wrapper {
                Wrapper::Cot(i) => Turn {
                    text: Corpus::fill(
                        c.cot_templates
                            .get(i as usize)
                            .map_or("{question}", String::as_str),
                        problem,
                    ),
                    task: Task::StepByStep,
                },
                Wrapper::Extract(i) => Turn {
                    text: Corpus::fill(
                        c.extraction_templates
                            .get(i as usize)
                            .map_or("{question}", String::as_str),
                        problem,
                    ),
                    task: Task::Extraction,
                },
                Wrapper::Bare => Turn {
                    text: problem.to_owned(),
                    task: Task::Problem,
                },
            }
        }
    }
}

/// What a low-and-slow operator sends on turn `turn` of a session: a paraphrased reasoning
/// request, a follow-up asking for the steps, or cover traffic.
pub(crate) fn stealth_turn(
    rng: &mut SimRng,
    env: &Env<'_>,
    campaign: u16,
    member: u32,
    taken: &mut u64,
    turn: u16,
    last: Task,
) -> Turn {
    let Some(shared) = env.campaigns.get(usize::from(campaign)) else {
        return benign::cover_turn(rng, env);
    };
    if turn > 0 && matches!(last, Task::StepByStep | Task::Problem) && chance(rng, 0.5) {
        let text = choose(rng, STEP_FOLLOW_UPS)
            .copied()
            .unwrap_or("Why?")
            .to_owned();
        return Turn {
            text,
            task: Task::FollowUp,
        };
    }
    if chance(rng, shared.knobs.cover_share) {
        return benign::cover_turn(rng, env);
    }
    let (problem, _) = shared.problem(env, member, taken);
    Turn {
        text: paraphrase(rand::Rng::gen(rng), problem),
        task: Task::StepByStep,
    }
}

/// Sets up campaign number `index` with `count` accounts and returns its shared state.
pub(crate) fn setup(
    b: &mut Builder<'_>,
    scenario: &Scenario,
    c: &Campaign,
    index: u16,
    count: u64,
) -> Shared {
    let crng = &mut rng_for(b.seed, Stream::Campaign, u64::from(index));
    let knobs = c.knobs(count);
    let scope = 7 << 40 | u64::from(index);
    let days = f64::from(scenario.days);
    let from = b.start + (c.start_day * DAY as f64) as i64;
    let until = b.start + (c.end_day.unwrap_or(days) * DAY as f64) as i64;
    let model = c
        .model
        .as_ref()
        .and_then(|m| scenario.models.iter().position(|x| &x.name == m))
        .unwrap_or(0) as u8;
    let pivot = (c.tactic == Tactic::ReleasePivot)
        .then(|| {
            let pm = match &c.pivot_model {
                Some(name) => b.models.iter().position(|m| &m.name == name),
                None => b.models.iter().position(|m| m.new),
            }?;
            let released = b.models.get(pm)?.released;
            Some((
                pm as u8,
                released,
                knobs.pivot_share,
                (knobs.pivot_hours * HOUR as f64) as i64,
            ))
        })
        .flatten();
    let tz = knobs.utc_offset_hours;
    let duty = match knobs.schedule {
        Schedule::Always => Clock::new(Rhythm::Always, tz),
        Schedule::WorkingHours => Clock::new(Rhythm::Work, tz),
    };
    let waves = (knobs.timing == Timing::Waves).then(|| {
        // Keep a member's join probability well below one so rates stay calibrated.
        let cap = DAY as f64 * duty.rhythm.mean() / (c.calls_per_account_per_day * 1.5);
        let interval = (knobs.wave_interval_minutes * MINUTE as f64)
            .min(cap)
            .max(1000.0) as i64;
        Waves {
            origin: from,
            interval_ms: interval,
            spread_ms: ((knobs.wave_spread_seconds * 1000.0) as i64)
                .min(interval / 2 - 1)
                .max(0),
            key: hash(&[b.seed, scope, 0x3A]),
            clock: duty,
        }
    });

    // Prompt machinery: a few favourite wrappers, system prompts and parameters.
    let corpus = b.corpus;
    let n_cot = corpus.cot_templates.len();
    let n_ext = corpus.extraction_templates.len();
    let wrappers: Vec<Wrapper> = match c.tactic {
        Tactic::NaiveVolume => vec![Wrapper::Cot(below(crng, n_cot) as u32)],
        _ => {
            let mut w = vec![
                Wrapper::Cot(below(crng, n_cot) as u32),
                Wrapper::Cot(below(crng, n_cot) as u32),
                Wrapper::Extract(below(crng, n_ext) as u32),
            ];
            if chance(crng, 0.5) {
                w.push(Wrapper::Bare);
            }
            w
        }
    };
    let jailbreaks: Vec<u32> = (0..between_u64(crng, 2, 4))
        .map(|_| below(crng, corpus.jailbreak_templates.len()) as u32)
        .collect();
    let systems: Vec<&'static str> = (0..between_u64(crng, 1, 2))
        .filter_map(|_| choose(crng, HARVEST_SYSTEM_PROMPTS).copied())
        .collect();
    let mut style = Style::harvester(crng);
    match c.tactic {
        Tactic::ProxyRotation | Tactic::ReleasePivot => style.multi_n_share = 0.1,
        Tactic::ReasoningExtraction => style.logprobs_share = 0.2,
        Tactic::NaiveVolume => {
            style.temperature = Some(0.0);
            style.n = Some(1);
            style.max_tokens = Some(32768);
        }
        _ => {}
    }
    let shared = Shared {
        tactic: c.tactic,
        knobs: knobs.clone(),
        members: count,
        model,
        pivot,
        waves,
        wrappers,
        jailbreaks,
        system_share: if c.tactic == Tactic::NaiveVolume {
            0.0
        } else {
            0.5
        },
        systems,
        style,
        cover_style: Style::benign(crng, 0.4),
        sweep: Sweep::new(crng, corpus.problems.len()),
        parts: chance(crng, 0.15),
        endpoint: if chance(crng, 0.25) {
            super::Endpoint::Responses
        } else {
            super::Endpoint::Chat
        },
    };

    // Infrastructure and identity shared by the members.
    let clients = campaign_clients(c.tactic, crng);
    let billing: Vec<&'static str> = (0..between_u64(crng, 1, 3))
        .map(|_| {
            let w: Vec<f64> = COUNTRIES.iter().map(|x| x.proxy_weight).collect();
            COUNTRIES[pick_weighted(crng, &w)].code
        })
        .collect();
    let domains: Vec<String> = (0..between_u64(crng, 2, 6))
        .map(|k| fresh_domain(b.seed, scope, k))
        .collect();
    let shell = company_domain(b.seed, scope);
    let naive_ips: Vec<(u16, u32)> = {
        let net = b.infra.datacenter(crng);
        (0..between_u64(crng, 1, 2))
            .map(|_| (net, b.infra.address(net, crng)))
            .collect()
    };
    let lead = (knobs.signup_lead_days * DAY as f64) as i64;
    let mut bursts: Vec<i64> = (0..knobs.signup_bursts)
        .map(|_| {
            let inside = matches!(c.tactic, Tactic::ProxyRotation | Tactic::ReleasePivot)
                && chance(crng, 0.2);
            if inside {
                from + (rand::Rng::gen::<f64>(crng) * 0.5 * (until - from) as f64) as i64
            } else {
                from - lead
                    + (rand::Rng::gen::<f64>(crng) * (lead as f64 - 6.0 * HOUR as f64).max(0.0))
                        as i64
            }
        })
        .collect();
    bursts.sort_unstable();
    let [clo, chi] = knobs.payment_cluster;
    let mut cluster = 0u64;
    let mut cluster_left = between_u64(crng, clo, chi);
    let sigma = 0.3;

    for m in 0..count {
        let idx = b.next_index();
        let rng = &mut rng_for(b.seed, Stream::Setup, idx);
        if cluster_left == 0 {
            cluster += 1;
            cluster_left = between_u64(crng, clo, chi);
        }
        cluster_left -= 1;
        let created = if bursts.is_empty() {
            from - (rand::Rng::gen::<f64>(rng) * lead.max(HOUR) as f64) as i64
        } else {
            let burst = bursts[(m * bursts.len() as u64 / count.max(1)) as usize];
            burst + (exp(rng, 1.5 * HOUR as f64).min(8.0 * HOUR as f64)) as i64
        };
        let active_from = from.max(created + (exp(rng, 20.0 * MINUTE as f64)) as i64);
        let per_day =
            c.calls_per_account_per_day * lognormal(rng, (-sigma * sigma / 2.0f64).exp(), sigma);
        let (identity, access) = member_identity(
            b, c.tactic, rng, scope, cluster, created, &billing, &domains, &shell, &knobs,
            &naive_ips,
        );
        let keys = if c.tactic == Tactic::NaiveVolume {
            between_u64(rng, 2, 3) as u8
        } else {
            1
        };
        let load = Load {
            rate_limited: match c.tactic {
                Tactic::NaiveVolume => 0.06,
                Tactic::LowAndSlow => 0.004,
                Tactic::ReasoningExtraction => 0.01,
                _ => 0.015,
            },
            overloaded: 0.0,
        };
        let label = Label {
            account_id: String::new(),
            class: Class::Distill,
            campaign: Some(c.id.clone()),
            tactic: Some(c.tactic.as_str().to_owned()),
        };
        let days_active = (until - active_from).max(0) as f64 / DAY as f64;
        if c.tactic == Tactic::LowAndSlow {
            // Operators look like developers: a popular library, ordinary settings but large
            // budgets and high effort.
            let lib = &LIBS[pick_weighted(rng, &benign_weights())];
            let mut st = Style::benign(rng, lib.stream_share);
            st.max_tokens = Some([4096, 8192, 16384][below(rng, 3)]);
            if chance(rng, 0.6) {
                st.reasoning_effort = Some("high");
            }
            let mean_turns = 1.6;
            let human = Human::new(
                Source::Stealth {
                    campaign: index,
                    member: m as u32,
                    taken: 0,
                },
                Clock::new(Rhythm::Work, tz),
                per_day / mean_turns,
                mean_turns,
                (active_from, until),
                st,
                ModelChoice::Pinned(model),
                if chance(rng, 0.3) {
                    SystemPrompt::Builtin("You are a helpful assistant.")
                } else {
                    SystemPrompt::None
                },
                [0.0, 0.0],
                false,
                load,
            );
            let expected = human.expected_calls();
            b.add(
                identity,
                label,
                Conn::new(access, vec![ClientId::of(lib, rng)], keys),
                Behavior::Human(human),
                0.8,
                expected,
            );
            continue;
        }
        let member = Member {
            campaign: index,
            member: m as u32,
            per_day,
            from: active_from,
            until,
            wave: None,
            taken: 0,
            clock: duty,
            load,
        };
        // Each member mostly uses one of the operator's client builds.
        let mut mine = clients.clone();
        if mine.len() > 1 {
            let k = (hash(&[b.seed, scope, m]) % mine.len() as u64) as usize;
            mine.swap(0, k);
        }
        b.add(
            identity,
            label,
            Conn::new(access, mine, keys),
            Behavior::Member(member),
            0.9,
            per_day * days_active,
        );
    }
    shared
}

/// The operator's few client builds: pinned library versions and their TLS stacks.
fn campaign_clients(tactic: Tactic, rng: &mut SimRng) -> Vec<ClientId> {
    let libs: Vec<usize> = match tactic {
        Tactic::NaiveVolume => vec![PYTHON_REQUESTS],
        Tactic::LowAndSlow => vec![OPENAI_PYTHON],
        Tactic::ReasoningExtraction => vec![OPENAI_PYTHON, PYTHON_HTTPX, OPENAI_JS],
        _ => {
            let mut l = vec![OPENAI_PYTHON];
            if chance(rng, 0.6) {
                l.push(PYTHON_REQUESTS);
            }
            l
        }
    };
    libs.into_iter()
        .map(|i| ClientId::of(&LIBS[i.min(LIBS.len() - 1)], rng))
        .collect()
}

/// A member's sign-up identity and network access, by tactic.
#[allow(clippy::too_many_arguments)]
fn member_identity(
    b: &Builder<'_>,
    tactic: Tactic,
    rng: &mut SimRng,
    scope: u64,
    cluster: u64,
    created: i64,
    billing: &[&'static str],
    domains: &[String],
    shell: &str,
    knobs: &Knobs,
    naive_ips: &[(u16, u32)],
) -> (Identity, Access) {
    let country = choose(rng, billing).copied().unwrap_or("US");
    let rotating = Access::Rotating {
        scope,
        size: knobs.ip_pool.max(1),
    };
    let fresh_or = |rng: &mut SimRng, p_fresh: f64, p_disposable: f64| -> String {
        let u: f64 = rand::Rng::gen(rng);
        if u < p_fresh {
            choose(rng, domains)
                .cloned()
                .unwrap_or_else(|| shell.to_owned())
        } else if u < p_fresh + p_disposable {
            disposable_domain(rng).to_owned()
        } else {
            personal_domain(country, rng).to_owned()
        }
    };
    let pf = |rng: &mut SimRng, tier: &str, p_none_free: f64| -> Option<String> {
        (tier != "free" || !chance(rng, p_none_free))
            .then(|| crate::ids::payment_fingerprint(b.seed, scope, cluster))
    };
    let (email, tier, verified, access) = match tactic {
        Tactic::ProxyRotation | Tactic::ReleasePivot => {
            let tier = pick_tier(rng, &[("free", 55.0), ("tier-1", 45.0)]);
            (fresh_or(rng, 0.55, 0.30), tier, chance(rng, 0.1), rotating)
        }
        Tactic::JailbreakHarvest => {
            let tier = pick_tier(rng, &[("free", 70.0), ("tier-1", 30.0)]);
            (fresh_or(rng, 0.2, 0.5), tier, chance(rng, 0.05), rotating)
        }
        Tactic::ReasoningExtraction => {
            let tier = pick_tier(rng, &[("free", 30.0), ("tier-1", 50.0), ("tier-2", 20.0)]);
            // Half on VPN exits, half on static residential addresses.
            let access = if chance(rng, 0.5) {
                let net = b.infra.datacenter(rng);
                Access::Fixed {
                    ips: vec![(net, b.infra.address(net, rng))].into_boxed_slice(),
                }
            } else {
                let ci = crate::infra::country_index(country);
                let net = b.infra.network_in(ci, NetKind::Home, rng);
                Access::Fixed {
                    ips: vec![(net, b.infra.address(net, rng))].into_boxed_slice(),
                }
            };
            (fresh_or(rng, 0.4, 0.2), tier, chance(rng, 0.3), access)
        }
        Tactic::LowAndSlow => {
            let tier = pick_tier(rng, &[("tier-1", 40.0), ("tier-2", 40.0), ("tier-3", 20.0)]);
            let net = b.infra.datacenter(rng);
            let ips: Vec<(u16, u32)> = (0..between_u64(rng, 1, 2))
                .map(|_| (net, b.infra.address(net, rng)))
                .collect();
            let email = if chance(rng, 0.3) {
                shell.to_owned()
            } else {
                personal_domain(country, rng).to_owned()
            };
            (
                email,
                tier,
                chance(rng, 0.7),
                Access::Fixed {
                    ips: ips.into_boxed_slice(),
                },
            )
        }
        Tactic::NaiveVolume => {
            let tier = pick_tier(rng, &[("tier-3", 50.0), ("tier-4", 50.0)]);
            (
                shell.to_owned(),
                tier,
                true,
                Access::Fixed {
                    ips: naive_ips.to_vec().into_boxed_slice(),
                },
            )
        }
    };
    let payment = pf(rng, tier, 0.3);
    let country = match &access {
        Access::Fixed { ips } if tactic == Tactic::NaiveVolume => {
            crate::infra::network(ips.first().map_or(0, |x| x.0)).country
        }
        _ => country,
    };
    (
        Identity {
            created_at: created,
            email_domain: email,
            payment,
            country,
            tier,
            verified,
        },
        access,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweep_is_a_permutation() {
        let mut rng = rng_for(1, Stream::Campaign, 0);
        for n in [1usize, 2, 7, 100, 1024] {
            let s = Sweep::new(&mut rng, n);
            let mut seen: Vec<usize> = (0..n as u64).map(|i| s.at(i)).collect();
            seen.sort_unstable();
            seen.dedup();
            assert_eq!(seen.len(), n);
        }
    }
}

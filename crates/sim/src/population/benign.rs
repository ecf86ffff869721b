//! Ordinary users: who they are (a Zipf-distributed activity level, a home country and time
//! zone, household broadband, a phone behind carrier NAT, an office or a campus) and what they
//! ask (real prompts and conversations, follow-ups, the occasional homework problem or
//! "explain step by step").
//!
//! Also the source of ordinary-looking prompts that campaigns mix in as cover traffic. Not the
//! session machinery, which is in `human`.

use moat_types::{Class, Label};

use super::human::{Human, ModelChoice, Source, SystemPrompt, Turn};
use super::{pick, Behavior, ClientId, Conn, Env};
use crate::call::{Load, Style, Task};
use crate::corpus::Corpus;
use crate::infra::clients::{benign_weights, LIBS};
use crate::infra::identity::{company_domain, personal_domain, pick_tier};
use crate::infra::networks::{NetKind, COUNTRIES};
use crate::infra::{network, Access};
use crate::rng::{
    below, between_u64, chance, choose, exp, hash, pick_weighted, rng_for, unit, SimRng, Stream,
};
use crate::scenario::Benign;
use crate::text::{BENIGN_SYSTEM_PROMPTS, STEP_FOLLOW_UPS};
use crate::timing::{Clock, Rhythm};
use crate::world::{Builder, Identity};

const DAY: i64 = moat_types::Timestamp::DAY;
const HOUR: i64 = moat_types::Timestamp::HOUR;

/// Plans of ordinary accounts and their weights.
pub(crate) const BENIGN_TIERS: &[(&str, f64)] = &[
    ("free", 40.0),
    ("tier-1", 32.0),
    ("tier-2", 15.0),
    ("tier-3", 8.0),
    ("tier-4", 3.0),
    ("tier-5", 2.0),
];

/// Adds `count` ordinary users.
pub(crate) fn setup(b: &mut Builder<'_>, cfg: &Benign, count: u64) {
    // Coworkers with personal accounts share their office's NAT: about four per company.
    let companies = ((count as f64 * cfg.corporate_share) / 4.0).ceil().max(1.0) as u64;
    for _ in 0..count {
        let idx = b.next_index();
        let mut rng = rng_for(b.seed, Stream::Setup, idx);
        let rng = &mut rng;

        // Activity: the account at rank fraction q has a rate ∝ q^-s (Zipf over ranks).
        let q = 1.0 - rand::Rng::gen::<f64>(rng);
        let rate = (cfg.median_sessions_per_day * (q / 0.5).powf(-cfg.activity_zipf_exponent))
            .clamp(cfg.median_sessions_per_day / 50.0, cfg.max_sessions_per_day);
        let work = chance(rng, cfg.work_share);

        // Where the account connects from.
        let mut ci = b.infra.benign_country(rng);
        let u: f64 = rand::Rng::gen(rng);
        let mut email_domain = None;
        let (access, alt, rhythm) = if u < cfg.mobile_share {
            let net = b.infra.network_in(ci, NetKind::Mobile, rng);
            let v6 = chance(rng, cfg.ipv6_share);
            let access = Access::Mobile {
                net,
                device: hash(&[b.seed, idx, 0xD1]),
                v6,
            };
            (
                access,
                None,
                if work { Rhythm::Work } else { Rhythm::Personal },
            )
        } else if u < cfg.mobile_share + cfg.corporate_share {
            let company = below(rng, companies as usize) as u64;
            let (access, company_ci) = office(b, company);
            ci = company_ci;
            email_domain = Some(company_domain(b.seed, company));
            let home = home_access(b, ci, idx, rng);
            (access, Some((home, 0.2)), Rhythm::Work)
        } else if u < cfg.mobile_share + cfg.corporate_share + cfg.university_share {
            let (access, uni_ci, domain) = campus(b, ci, rng);
            ci = uni_ci;
            if chance(rng, 0.7) {
                email_domain = domain.map(str::to_owned);
            }
            let phone = Access::Mobile {
                net: b.infra.network_in(ci, NetKind::Mobile, rng),
                device: hash(&[b.seed, idx, 0xD2]),
                v6: chance(rng, cfg.ipv6_share),
            };
            (
                access,
                Some((phone, 0.3)),
                if work { Rhythm::Work } else { Rhythm::Personal },
            )
        } else {
            let home = home_access(b, ci, idx, rng);
            let phone = chance(rng, 0.5).then(|| {
                let phone = Access::Mobile {
                    net: b.infra.network_in(ci, NetKind::Mobile, rng),
                    device: hash(&[b.seed, idx, 0xD3]),
                    v6: chance(rng, cfg.ipv6_share),
                };
                (phone, 0.15)
            });
            (
                home,
                phone,
                if work { Rhythm::Work } else { Rhythm::Personal },
            )
        };
        let offset = choose(rng, COUNTRIES[ci].utc_offsets)
            .copied()
            .unwrap_or(0.0);

        // Client software and habits.
        let lib = &LIBS[pick_weighted(rng, &benign_weights())];
        let mut clients = vec![ClientId::of(lib, rng)];
        if chance(rng, 0.15) {
            clients.push(ClientId::of(
                &LIBS[pick_weighted(rng, &benign_weights())],
                rng,
            ));
        }
        let style = Style::benign(rng, lib.stream_share);
        let parts = chance(rng, if lib.browser { 0.3 } else { 0.08 });
        let system = benign_system_prompt(b, rng);
        let endpoints = endpoint_mix(rng);
        let keys = [1u8, 2, 3][pick_weighted(rng, &[70.0, 22.0, 8.0])];

        // Identity.
        let created = if chance(rng, cfg.new_account_share) {
            b.start + (unit(rand::Rng::gen(rng)) * 0.85 * (b.end - b.start) as f64) as i64
        } else {
            b.start - HOUR - (730.0 * DAY as f64 * rand::Rng::gen::<f64>(rng).powf(1.6)) as i64
        };
        let from = b.start.max(created + exp(rng, 3.0 * HOUR as f64) as i64);
        let tier = pick_tier(rng, BENIGN_TIERS);
        let verified = chance(rng, if tier == "free" { 0.7 } else { 0.95 });
        let payment = benign_payment(b, idx, tier, rng);
        let billing = if chance(rng, 0.95) {
            COUNTRIES[ci].code
        } else {
            COUNTRIES[b.infra.benign_country(rng)].code
        };
        let email_domain = match email_domain {
            Some(d) => d,
            None if work && chance(rng, 0.35) => {
                company_domain(b.seed, 1 << 40 | between_u64(rng, 0, 1 << 30))
            }
            None => personal_domain(billing, rng).to_owned(),
        };

        let model = if chance(rng, 0.5) {
            ModelChoice::Pinned(b.model_at(rng, from))
        } else {
            ModelChoice::Adopting
        };
        let human = Human::new(
            Source::Benign,
            Clock::new(rhythm, offset),
            rate,
            cfg.mean_turns_per_session,
            (from, b.end),
            style,
            model,
            system,
            endpoints,
            parts,
            Load {
                rate_limited: 0.004,
                overloaded: 0.0,
            },
        );
        let expected = human.expected_calls();
        let mut conn = Conn::new(access, clients, keys);
        conn.alt = alt;
        b.add(
            Identity {
                created_at: created,
                email_domain,
                payment,
                country: billing,
                tier,
                verified,
            },
            Label {
                account_id: String::new(),
                class: Class::Benign,
                campaign: None,
                tactic: None,
            },
            conn,
            Behavior::Human(human),
            cfg.retry_probability,
            expected,
        );
    }
}

/// A household's broadband access in country `ci`.
pub(crate) fn home_access(b: &Builder<'_>, ci: usize, idx: u64, rng: &mut SimRng) -> Access {
    Access::Home {
        net: b.infra.network_in(ci, NetKind::Home, rng),
        house: hash(&[b.seed, idx, 0x40]),
        lease_days: between_u64(rng, 7, 120) as u16,
    }
}

/// The NAT block and country of company number `company` (stable per company).
pub(crate) fn office(b: &Builder<'_>, company: u64) -> (Access, usize) {
    let mut crng = rng_for(b.seed, Stream::Enterprise, 1 << 40 | company);
    let ci = b.infra.benign_country(&mut crng);
    let net = b.infra.network_in(ci, NetKind::Business, &mut crng);
    let size = [2u8, 4, 8, 16][below(&mut crng, 4)];
    let base = b.infra.address(net, &mut crng) & !u32::from(size - 1);
    // The block's country is the network's (a company abroad uses a local ISP there).
    let ci = crate::infra::country_index(network(net).country);
    (Access::Nat { net, base, size }, ci)
}

/// A university network (in country `ci` when it has one), its country and e-mail domain.
fn campus(b: &Builder<'_>, ci: usize, rng: &mut SimRng) -> (Access, usize, Option<&'static str>) {
    let net = b.infra.network_in(ci, NetKind::University, rng);
    let n = network(net);
    // Every student of a university shares its NAT pool of 32 addresses.
    let mut urng = rng_for(b.seed, Stream::Enterprise, 2 << 40 | u64::from(net));
    let base = b.infra.address(net, &mut urng) & !31;
    (
        Access::Nat {
            net,
            base,
            size: 32,
        },
        crate::infra::country_index(n.country),
        n.domain,
    )
}

fn benign_system_prompt(b: &Builder<'_>, rng: &mut SimRng) -> SystemPrompt {
    let u: f64 = rand::Rng::gen(rng);
    if u < 0.55 {
        SystemPrompt::None
    } else if u < 0.9 || b.corpus.system_prompts.is_empty() {
        SystemPrompt::Builtin(choose(rng, BENIGN_SYSTEM_PROMPTS).copied().unwrap_or(""))
    } else {
        SystemPrompt::Corpus(below(rng, b.corpus.system_prompts.len()) as u32)
    }
}

/// Probabilities of the responses and completions endpoints for one account.
fn endpoint_mix(rng: &mut SimRng) -> [f64; 2] {
    let u: f64 = rand::Rng::gen(rng);
    if u < 0.78 {
        [0.0, 0.0]
    } else if u < 0.94 {
        [0.85, 0.0]
    } else {
        [0.0, 0.7]
    }
}

/// Payment method of an ordinary account: many free accounts have none; a few households
/// share one card between two accounts.
fn benign_payment(b: &Builder<'_>, idx: u64, tier: &str, rng: &mut SimRng) -> Option<String> {
    if tier == "free" && chance(rng, 0.7) {
        return None;
    }
    let pair = idx / 2;
    if unit(hash(&[b.seed, 0x4A, pair])) < 0.06 {
        return Some(crate::ids::payment_fingerprint(b.seed, 2 << 40 | pair, 0));
    }
    Some(crate::ids::payment_fingerprint(b.seed, 1 << 40 | idx, 0))
}

/// A conversation to replay for a new session, with the configured probability.
pub(crate) fn pick_conversation(rng: &mut SimRng, env: &Env<'_>) -> Option<u32> {
    let n = env.corpus.benign_conversations.len();
    (n > 0 && chance(rng, env.benign.multi_turn_share)).then(|| below(rng, n) as u32)
}

/// What an ordinary user asks on turn `turn` of a session.
pub(crate) fn turn(
    rng: &mut SimRng,
    env: &Env<'_>,
    turn: u16,
    conversation: Option<u32>,
    last: Task,
) -> Turn {
    let c = env.corpus;
    let b = env.benign;
    if let Some(conv) = conversation.and_then(|i| c.benign_conversations.get(i as usize)) {
        if let Some(text) = conv.get(usize::from(turn)) {
            let task = if turn == 0 {
                Task::Chat
            } else {
                Task::FollowUp
            };
            return Turn {
                text: text.clone(),
                task,
            };
        }
    }
    if turn == 0 {
        let u: f64 = rand::Rng::gen(rng);
        if u < b.step_by_step_share {
            return step_by_step(rng, env);
        }
        if u < b.step_by_step_share + b.problem_share {
            if let Some(p) = choose(rng, &c.problems) {
                return Turn {
                    text: p.text.clone(),
                    task: Task::Problem,
                };
            }
        }
        return cover_turn(rng, env);
    }
    let explain = if matches!(last, Task::Problem | Task::StepByStep) {
        0.3
    } else {
        b.step_by_step_share * 2.5
    };
    if chance(rng, explain) {
        let text = if chance(rng, 0.5) || c.follow_ups.is_empty() {
            choose(rng, STEP_FOLLOW_UPS)
                .copied()
                .unwrap_or("")
                .to_owned()
        } else {
            pick(&c.follow_ups, rng).to_owned()
        };
        return Turn {
            text,
            task: Task::StepByStep,
        };
    }
    if c.follow_ups.is_empty() {
        return cover_turn(rng, env);
    }
    Turn {
        text: pick(&c.follow_ups, rng).to_owned(),
        task: Task::FollowUp,
    }
}

/// An ordinary request wrapped in a step-by-step phrasing.
pub(crate) fn step_by_step(rng: &mut SimRng, env: &Env<'_>) -> Turn {
    let c = env.corpus;
    let question = if chance(rng, 0.6) && !c.problems.is_empty() {
        c.problems[below(rng, c.problems.len())].text.as_str()
    } else {
        pick(&c.benign_prompts, rng)
    };
    let template = pick(&c.cot_templates, rng);
    Turn {
        text: Corpus::fill(template, question),
        task: Task::StepByStep,
    }
}

/// An ordinary-looking single request: what real users and cover traffic send.
pub(crate) fn cover_turn(rng: &mut SimRng, env: &Env<'_>) -> Turn {
    let c = env.corpus;
    let u: f64 = rand::Rng::gen(rng);
    let text = if u < 0.8 || (c.instructions.is_empty() && c.benign_conversations.is_empty()) {
        pick(&c.benign_prompts, rng).to_owned()
    } else if u < 0.92 && !c.instructions.is_empty() {
        pick(&c.instructions, rng).to_owned()
    } else {
        c.benign_conversations
            .get(below(rng, c.benign_conversations.len()))
            .and_then(|conv| conv.first())
            .cloned()
            .unwrap_or_else(|| pick(&c.benign_prompts, rng).to_owned())
    };
    Turn {
        text,
        task: Task::Chat,
    }
}

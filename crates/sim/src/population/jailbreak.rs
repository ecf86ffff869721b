//! Jailbreak-only accounts (class `jailbreak`, no campaign): people trying in-the-wild
//! jailbreak prompts and templates around harmful requests, a few attempts a day for a few
//! days, from home, a phone or a VPN.
//!
//! They are not distillation: low volume and no harvesting. Jailbreak templates used to
//! harvest at scale belong to the `jailbreak-harvest` campaign tactic instead.

use moat_types::{Class, Label};

use super::human::{Human, ModelChoice, Source, SystemPrompt, Turn};
use super::{pick, Behavior, ClientId, Conn, Env};
use crate::call::{Load, Style, Task};
use crate::corpus::Corpus;
use crate::infra::clients::{CHROME, CURL, LIBS, OPENAI_PYTHON, PYTHON_REQUESTS};
use crate::infra::identity::{disposable_domain, personal_domain, pick_tier};
use crate::infra::networks::{NetKind, COUNTRIES};
use crate::infra::Access;
use crate::rng::{
    between, between_u64, chance, choose, hash, pick_weighted, rng_for, SimRng, Stream,
};
use crate::scenario::Jailbreak;
use crate::timing::{Clock, Rhythm};
use crate::world::{Builder, Identity};

const DAY: i64 = moat_types::Timestamp::DAY;

/// Mean attempts per session: a jailbreaker tries a few variants in a row.
const TURNS: f64 = 2.5;

/// Adds `count` jailbreak-only accounts.
pub(crate) fn setup(b: &mut Builder<'_>, cfg: &Jailbreak, count: u64) {
    let days = (b.end - b.start) as f64 / DAY as f64;
    for _ in 0..count {
        let idx = b.next_index();
        let rng = &mut rng_for(b.seed, Stream::Setup, idx);
        let active = (between_u64(rng, cfg.active_days[0], cfg.active_days[1]) as f64).min(days);
        let from = b.start + (rand::Rng::gen::<f64>(rng) * (days - active) * DAY as f64) as i64;
        let until = from + (active * DAY as f64) as i64;
        let ci = b.infra.benign_country(rng);
        let offset = choose(rng, COUNTRIES[ci].utc_offsets)
            .copied()
            .unwrap_or(0.0);
        let u: f64 = rand::Rng::gen(rng);
        let access = if u < 0.55 {
            super::benign::home_access(b, ci, idx, rng)
        } else if u < 0.9 {
            // A consumer VPN exits from a datacenter.
            let net = b.infra.datacenter(rng);
            Access::Fixed {
                ips: vec![(net, b.infra.address(net, rng))].into_boxed_slice(),
            }
        } else {
            Access::Mobile {
                net: b.infra.network_in(ci, NetKind::Mobile, rng),
                device: hash(&[b.seed, idx, 0xD4]),
                v6: chance(rng, 0.3),
            }
        };
        let lib = [CHROME, OPENAI_PYTHON, CURL, PYTHON_REQUESTS]
            [pick_weighted(rng, &[40.0, 35.0, 10.0, 15.0])];
        let lib = &LIBS[lib];
        let created = if chance(rng, 0.5) {
            from - (between(rng, 0.05, 3.0) * DAY as f64) as i64
        } else {
            b.start - (between(rng, 10.0, 700.0) * DAY as f64) as i64
        };
        let tier = pick_tier(rng, &[("free", 80.0), ("tier-1", 20.0)]);
        let payment = (tier != "free" || chance(rng, 0.2))
            .then(|| crate::ids::payment_fingerprint(b.seed, 6 << 40 | idx, 0));
        let email = if chance(rng, 0.3) {
            disposable_domain(rng)
        } else {
            personal_domain(COUNTRIES[ci].code, rng)
        };
        let human = Human::new(
            Source::Jailbreak {
                template_share: cfg.template_share,
            },
            Clock::new(Rhythm::Personal, offset),
            cfg.attempts_per_day / TURNS,
            TURNS,
            (from, until.min(b.end)),
            Style::benign(rng, lib.stream_share),
            ModelChoice::Pinned(0),
            SystemPrompt::None,
            [0.0, 0.0],
            false,
            Load {
                rate_limited: 0.01,
                overloaded: 0.0,
            },
        );
        let expected = human.expected_calls();
        let client = ClientId::of(lib, rng);
        b.add(
            Identity {
                created_at: created,
                email_domain: email.to_owned(),
                payment,
                country: COUNTRIES[ci].code,
                tier,
                verified: chance(rng, 0.4),
            },
            Label {
                account_id: String::new(),
                class: Class::Jailbreak,
                campaign: None,
                tactic: Some("jailbreak-only".to_owned()),
            },
            Conn::new(access, vec![client], 1),
            Behavior::Human(human),
            0.5,
            expected,
        );
    }
}

/// One jailbreak attempt.
pub(crate) fn turn(rng: &mut SimRng, env: &Env<'_>, template_share: f64) -> Turn {
    let c = env.corpus;
    let text = if chance(rng, template_share) {
        Corpus::fill(
            pick(&c.jailbreak_templates, rng),
            pick(&c.harmful_requests, rng),
        )
    } else if chance(rng, 0.8) {
        pick(&c.jailbreak_prompts, rng).to_owned()
    } else {
        pick(&c.harmful_requests, rng).to_owned()
    };
    Turn {
        text,
        task: Task::Jailbreak,
    }
}

//! Sign-up identity: e-mail domains and the vocabulary of plans.
//!
//! Ordinary users sign up with big webmail providers (with local favourites per country), their
//! employer's domain or their university's; campaigns use disposable mailboxes and freshly
//! registered domains that several of their accounts share. Company and campaign domains are
//! synthesised from word lists, so they look plausible without naming real companies.

use crate::rng::{hash, pick_weighted, unit, SimRng};

const WEBMAIL: &[(&str, f64)] = &[
    ("gmail.com", 45.0),
    ("outlook.com", 10.0),
    ("hotmail.com", 7.0),
    ("yahoo.com", 6.0),
    ("icloud.com", 6.0),
    ("proton.me", 3.0),
];

const LOCAL_WEBMAIL: &[(&str, &str)] = &[
    ("CN", "qq.com"),
    ("CN", "163.com"),
    ("KR", "naver.com"),
    ("JP", "yahoo.co.jp"),
    ("DE", "gmx.de"),
    ("DE", "web.de"),
    ("FR", "orange.fr"),
    ("FR", "free.fr"),
    ("BR", "uol.com.br"),
    ("IN", "rediffmail.com"),
    ("GB", "btinternet.com"),
    ("IT", "libero.it"),
    ("PL", "wp.pl"),
];

const DISPOSABLE: &[&str] = &[
    "mailinator.com",
    "guerrillamail.com",
    "sharklasers.com",
    "yopmail.com",
    "10minutemail.net",
    "tempmail.plus",
    "dropmail.me",
    "maildrop.cc",
    "getnada.com",
    "trashmail.com",
];

const WORD_A: &[&str] = &[
    "north", "blue", "bright", "clear", "quant", "nova", "apex", "terra", "silver", "lumen",
    "vector", "harbor", "pine", "cedar", "atlas", "summit", "orbit", "pixel", "delta", "iron",
    "river", "signal", "copper", "maple", "falcon", "granite", "aurora", "kite", "zen", "polar",
];
const WORD_B: &[&str] = &[
    "wind", "peak", "stack", "labs", "works", "logic", "data", "soft", "ware", "point", "bridge",
    "field", "line", "grid", "forge", "scale", "path", "mind", "loop", "wave", "craft", "base",
    "sense", "flow", "metrics", "systems", "health", "pay", "learn", "ops",
];
const COMPANY_TLD: &[(&str, f64)] = &[
    ("com", 50.0),
    ("io", 20.0),
    ("ai", 12.0),
    ("co", 8.0),
    ("net", 5.0),
    ("dev", 5.0),
];
const FRESH_TLD: &[&str] = &[
    "top", "xyz", "site", "online", "shop", "icu", "info", "click", "live", "store",
];

/// A personal webmail domain, local providers more likely in their country.
pub(crate) fn personal_domain(country: &str, rng: &mut SimRng) -> &'static str {
    let local: Vec<&'static str> = LOCAL_WEBMAIL
        .iter()
        .filter(|(c, _)| *c == country)
        .map(|(_, d)| *d)
        .collect();
    if !local.is_empty() && rand::Rng::gen::<f64>(rng) < 0.45 {
        let i = rand::Rng::gen_range(rng, 0..local.len());
        return local[i];
    }
    let weights: Vec<f64> = WEBMAIL.iter().map(|(_, w)| *w).collect();
    WEBMAIL[pick_weighted(rng, &weights)].0
}

/// The domain of company number `id` (stable for the id; word lists make collisions between
/// unrelated small companies possible, as on the real Internet they are not).
pub(crate) fn company_domain(seed: u64, id: u64) -> String {
    let h = hash(&[seed, 0xC0, id]);
    let a = WORD_A[(h % WORD_A.len() as u64) as usize];
    let b = WORD_B[((h >> 16) % WORD_B.len() as u64) as usize];
    let u = unit(hash(&[h, 1]));
    let mut acc = 0.0;
    let total: f64 = COMPANY_TLD.iter().map(|(_, w)| w).sum();
    let mut tld = "com";
    for (t, w) in COMPANY_TLD {
        acc += w / total;
        if u < acc {
            tld = t;
            break;
        }
    }
    format!("{a}{b}.{tld}")
}

/// A disposable-mailbox domain.
pub(crate) fn disposable_domain(rng: &mut SimRng) -> &'static str {
    DISPOSABLE[rand::Rng::gen_range(rng, 0..DISPOSABLE.len())]
}

/// A freshly registered throwaway domain, number `k` of campaign scope `scope`.
pub(crate) fn fresh_domain(seed: u64, scope: u64, k: u64) -> String {
    let h = hash(&[seed, 0xF7, scope, k]);
    let a = WORD_A[(h % WORD_A.len() as u64) as usize];
    let b = ["mail", "box", "post", "inbox", "msg", "letter"][((h >> 12) % 6) as usize];
    let n = (h >> 24) % 100;
    let tld = FRESH_TLD[((h >> 40) % FRESH_TLD.len() as u64) as usize];
    format!("{a}{b}{n:02}.{tld}")
}

/// A plan name drawn from `(tier, weight)` pairs.
pub(crate) fn pick_tier(rng: &mut SimRng, options: &[(&'static str, f64)]) -> &'static str {
    let weights: Vec<f64> = options.iter().map(|(_, w)| *w).collect();
    options
        .get(pick_weighted(rng, &weights))
        .map_or("free", |(t, _)| t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{rng_for, Stream};

    #[test]
    fn domains_look_like_domains() {
        let mut rng = rng_for(3, Stream::Setup, 0);
        for d in [
            personal_domain("DE", &mut rng).to_owned(),
            company_domain(1, 2),
            disposable_domain(&mut rng).to_owned(),
            fresh_domain(1, 2, 3),
        ] {
            assert!(d.contains('.') && !d.contains(' '), "{d}");
        }
        assert_eq!(company_domain(1, 2), company_domain(1, 2));
    }
}

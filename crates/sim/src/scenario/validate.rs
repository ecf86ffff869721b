//! Semantic checks of a parsed scenario: ranges, references between keys, and knobs that do
//! not apply to a campaign's tactic. Every failure names the file and the dotted key path.
//!
//! Parsing (types, unknown keys) is serde's job in the parent module; this module never
//! changes a scenario, it only accepts or rejects it.

use std::collections::BTreeSet;

use moat_types::Timestamp;

use super::knobs::inapplicable;
use super::{Scenario, Tactic};
use crate::SimError;

/// Builds errors for one scenario file.
struct Checker<'a> {
    path: &'a str,
}

impl Checker<'_> {
    fn fail(&self, key: impl Into<String>, message: impl Into<String>) -> SimError {
        SimError::Scenario {
            path: self.path.to_owned(),
            key: key.into(),
            message: message.into(),
        }
    }

    /// `Err` unless `ok`.
    fn ensure(&self, ok: bool, key: &str, message: &str) -> Result<(), SimError> {
        if ok {
            Ok(())
        } else {
            Err(self.fail(key, message))
        }
    }

    /// A share: a finite number in [0, 1].
    fn share(&self, v: f64, key: &str) -> Result<(), SimError> {
        self.ensure(
            (0.0..=1.0).contains(&v),
            key,
            &format!("must be between 0 and 1, got {v}"),
        )
    }

    /// A finite number with `lo < v <= hi`.
    fn positive(&self, v: f64, hi: f64, key: &str) -> Result<(), SimError> {
        self.ensure(
            v > 0.0 && v <= hi,
            key,
            &format!("must be > 0 and at most {hi}, got {v}"),
        )
    }

    /// An inclusive range `[low, high]` with `min <= low <= high <= max`.
    fn range_u(&self, r: [u64; 2], min: u64, max: u64, key: &str) -> Result<(), SimError> {
        self.ensure(
            min <= r[0] && r[0] <= r[1] && r[1] <= max,
            key,
            &format!("must be [low, high] with {min} <= low <= high <= {max}, got {r:?}"),
        )
    }

    /// An inclusive range `[low, high]` of floats with `0 < low <= high <= max`.
    fn range_f(&self, r: [f64; 2], max: f64, key: &str) -> Result<(), SimError> {
        self.ensure(
            r[0] > 0.0 && r[0] <= r[1] && r[1] <= max,
            key,
            &format!("must be [low, high] with 0 < low <= high <= {max}, got {r:?}"),
        )
    }
}

/// Accepts the scenario or names its first problem.
pub(super) fn validate(s: &Scenario) -> Result<(), SimError> {
    let c = Checker { path: &s.source };
    c.ensure(
        s.version == 1,
        "version",
        &format!(
            "must be 1 (this simulator reads scenario format v1), got {}",
            s.version
        ),
    )?;
    c.ensure(!s.name.trim().is_empty(), "name", "must not be empty")?;
    c.ensure(
        (1..=366).contains(&s.days),
        "days",
        &format!("must be between 1 and 366, got {}", s.days),
    )?;
    models(s, &c)?;
    benign(s, &c)?;
    heavy(s, &c)?;
    jailbreak(s, &c)?;
    campaigns(s, &c)
}

fn models(s: &Scenario, c: &Checker<'_>) -> Result<(), SimError> {
    c.ensure(
        !s.models.is_empty(),
        "models",
        "at least one model is required",
    )?;
    let end = s.end();
    let mut names = BTreeSet::new();
    for (i, m) in s.models.iter().enumerate() {
        let key = format!("models[{i}]");
        c.ensure(
            !m.name.trim().is_empty(),
            &format!("{key}.name"),
            "must not be empty",
        )?;
        c.ensure(
            names.insert(m.name.as_str()),
            &format!("{key}.name"),
            &format!("duplicate model name {:?}", m.name),
        )?;
        c.ensure(
            m.benign_weight.is_finite() && m.benign_weight >= 0.0,
            &format!("{key}.benign_weight"),
            &format!("must be >= 0, got {}", m.benign_weight),
        )?;
        if let Some(r) = m.released_at {
            c.ensure(
                r < end,
                &format!("{key}.released_at"),
                &format!("must be before the end of the scenario ({end})"),
            )?;
            c.ensure(
                i > 0 || r <= s.start,
                &format!("{key}.released_at"),
                "the first model is the default and must be available from the start",
            )?;
        }
    }
    let at_start: f64 = s
        .models
        .iter()
        .filter(|m| m.released_at.is_none_or(|r| r <= s.start))
        .map(|m| m.benign_weight)
        .sum();
    c.ensure(
        at_start > 0.0 || s.benign.accounts == 0,
        "models",
        "the models available at the start need a positive total benign_weight",
    )
}

fn benign(s: &Scenario, c: &Checker<'_>) -> Result<(), SimError> {
    let b = &s.benign;
    let k = |f: &str| format!("benign.{f}");
    c.ensure(
        b.activity_zipf_exponent > 0.0 && b.activity_zipf_exponent <= 3.0,
        &k("activity_zipf_exponent"),
        &format!(
            "must be > 0 and at most 3, got {}",
            b.activity_zipf_exponent
        ),
    )?;
    c.positive(
        b.median_sessions_per_day,
        1000.0,
        &k("median_sessions_per_day"),
    )?;
    c.ensure(
        b.max_sessions_per_day >= b.median_sessions_per_day && b.max_sessions_per_day <= 10_000.0,
        &k("max_sessions_per_day"),
        "must be at least median_sessions_per_day and at most 10000",
    )?;
    c.ensure(
        (1.0..=50.0).contains(&b.mean_turns_per_session),
        &k("mean_turns_per_session"),
        &format!("must be between 1 and 50, got {}", b.mean_turns_per_session),
    )?;
    for (v, f) in [
        (b.multi_turn_share, "multi_turn_share"),
        (b.step_by_step_share, "step_by_step_share"),
        (b.problem_share, "problem_share"),
        (b.work_share, "work_share"),
        (b.mobile_share, "mobile_share"),
        (b.corporate_share, "corporate_share"),
        (b.university_share, "university_share"),
        (b.ipv6_share, "ipv6_share"),
        (b.new_account_share, "new_account_share"),
        (b.retry_probability, "retry_probability"),
    ] {
        c.share(v, &k(f))?;
    }
    c.ensure(
        b.step_by_step_share + b.problem_share <= 1.0,
        &k("problem_share"),
        "problem_share + step_by_step_share must be at most 1",
    )?;
    c.ensure(
        b.mobile_share + b.corporate_share + b.university_share <= 1.0,
        &k("university_share"),
        "mobile_share + corporate_share + university_share must be at most 1",
    )?;
    c.positive(b.adoption_days, 366.0, &k("adoption_days"))
}

fn heavy(s: &Scenario, c: &Checker<'_>) -> Result<(), SimError> {
    let h = &s.benign_heavy;
    let k = |f: &str| format!("benign_heavy.{f}");
    c.range_f(h.app_calls_per_day, 1e6, &k("app_calls_per_day"))?;
    c.positive(h.eval_runs_per_week, 100.0, &k("eval_runs_per_week"))?;
    c.range_u(
        h.eval_problems_per_run,
        1,
        1_000_000,
        &k("eval_problems_per_run"),
    )?;
    c.positive(
        h.eval_requests_per_second,
        1000.0,
        &k("eval_requests_per_second"),
    )?;
    c.range_u(
        h.accounts_per_enterprise,
        1,
        100_000,
        &k("accounts_per_enterprise"),
    )?;
    c.positive(
        h.enterprise_sessions_per_day,
        1000.0,
        &k("enterprise_sessions_per_day"),
    )
}

fn jailbreak(s: &Scenario, c: &Checker<'_>) -> Result<(), SimError> {
    let j = &s.jailbreak;
    c.positive(j.attempts_per_day, 10_000.0, "jailbreak.attempts_per_day")?;
    c.range_u(j.active_days, 1, 366, "jailbreak.active_days")?;
    c.share(j.template_share, "jailbreak.template_share")
}

fn campaigns(s: &Scenario, c: &Checker<'_>) -> Result<(), SimError> {
    let mut ids = BTreeSet::new();
    let days = f64::from(s.days);
    let (start, end) = (s.start, s.end());
    for (i, camp) in s.campaigns.iter().enumerate() {
        let k = |f: &str| format!("campaigns[{i}].{f}");
        c.ensure(
            !camp.id.is_empty()
                && camp
                    .id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            &k("id"),
            "must be non-empty letters, digits, '-' or '_'",
        )?;
        c.ensure(
            ids.insert(camp.id.as_str()),
            &k("id"),
            &format!("duplicate campaign id {:?}", camp.id),
        )?;
        c.ensure(camp.accounts > 0, &k("accounts"), "must be > 0")?;
        c.ensure(
            camp.accounts <= 10_000_000,
            &k("accounts"),
            "must be at most 10000000",
        )?;
        c.positive(
            camp.calls_per_account_per_day,
            100_000.0,
            &k("calls_per_account_per_day"),
        )?;
        c.ensure(
            camp.start_day >= 0.0 && camp.start_day < days,
            &k("start_day"),
            &format!("must be in [0, days) = [0, {days}), got {}", camp.start_day),
        )?;
        if let Some(e) = camp.end_day {
            c.ensure(
                e > camp.start_day && e <= days,
                &k("end_day"),
                &format!("must be after start_day and at most days ({days}), got {e}"),
            )?;
        }
        if let Some(m) = &camp.model {
            c.ensure(
                s.models.iter().any(|x| &x.name == m),
                &k("model"),
                &format!("unknown model {m:?} (not in [[models]])"),
            )?;
        }
        if let Some(key) = inapplicable(camp).first() {
            return Err(c.fail(
                k(key),
                format!("does not apply to tactic {}", camp.tactic.as_str()),
            ));
        }
        if let Some(v) = camp.cover_share {
            c.share(v, &k("cover_share"))?;
        }
        if let Some(v) = camp.utc_offset_hours {
            c.ensure(
                (-12.0..=14.0).contains(&v),
                &k("utc_offset_hours"),
                &format!("must be between -12 and 14, got {v}"),
            )?;
        }
        if let Some(v) = camp.wave_interval_minutes {
            c.positive(v, 1440.0, &k("wave_interval_minutes"))?;
        }
        let knobs = camp.knobs(camp.accounts);
        c.ensure(
            knobs.wave_spread_seconds >= 0.0
                && knobs.wave_spread_seconds * 2.0 < knobs.wave_interval_minutes * 60.0,
            &k("wave_spread_seconds"),
            "must be >= 0 and less than half of wave_interval_minutes",
        )?;
        if let Some(v) = camp.ip_pool {
            c.ensure(
                (1..=100_000_000).contains(&v),
                &k("ip_pool"),
                "must be between 1 and 100000000",
            )?;
        }
        if let Some(r) = camp.payment_cluster {
            c.range_u(r, 1, 10_000_000, &k("payment_cluster"))?;
        }
        if let Some(v) = camp.signup_bursts {
            c.ensure(
                v <= camp.accounts,
                &k("signup_bursts"),
                "must be at most accounts",
            )?;
        }
        if let Some(v) = camp.signup_lead_days {
            c.ensure(
                (0.0..=3650.0).contains(&v),
                &k("signup_lead_days"),
                &format!("must be between 0 and 3650, got {v}"),
            )?;
        }
        if let Some(v) = camp.rubric_share {
            c.share(v, &k("rubric_share"))?;
        }
        if let Some(v) = camp.pivot_share {
            c.share(v, &k("pivot_share"))?;
        }
        if let Some(v) = camp.pivot_hours {
            c.positive(v, 720.0, &k("pivot_hours"))?;
        }
        if camp.tactic == Tactic::ReleasePivot {
            let released_in_window = |r: Option<Timestamp>| r.is_some_and(|r| r > start && r < end);
            match &camp.pivot_model {
                Some(name) => {
                    let m = s.models.iter().find(|m| &m.name == name);
                    c.ensure(
                        m.is_some_and(|m| released_in_window(m.released_at)),
                        &k("pivot_model"),
                        &format!("{name:?} must be a model in [[models]] with released_at inside the scenario"),
                    )?;
                }
                None => c.ensure(
                    s.models.iter().any(|m| released_in_window(m.released_at)),
                    &k("tactic"),
                    "release-pivot needs a model with released_at inside the scenario (or set pivot_model)",
                )?,
            }
        }
    }
    Ok(())
}

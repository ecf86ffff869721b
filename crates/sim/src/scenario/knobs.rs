//! Tactic defaults: the concrete value of every campaign knob once the scenario's omissions
//! are filled in, and which knobs apply to which tactic.
//!
//! Kept apart from parsing so that validation and the campaign setup read one table; the
//! numbers are calibrated to the public descriptions of real campaigns (tens of calls per
//! account per day, payment methods shared by clusters of 10–60 accounts, waves every few
//! minutes).

use super::{Campaign, Schedule, Tactic};

/// How a campaign's accounts decide when to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Timing {
    /// A controller dispatches waves; members join with a probability giving their rate.
    Waves,
    /// Human-like sessions in working hours (low-and-slow).
    Human,
    /// A continuous loop around the clock (naive volume).
    Continuous,
}

/// Every campaign knob with its value resolved.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Knobs {
    pub timing: Timing,
    pub cover_share: f64,
    pub schedule: Schedule,
    pub utc_offset_hours: f64,
    pub wave_interval_minutes: f64,
    pub wave_spread_seconds: f64,
    /// Residential rotation pool size; 0 when the tactic does not rotate.
    pub ip_pool: u64,
    pub payment_cluster: [u64; 2],
    pub signup_bursts: u64,
    pub signup_lead_days: f64,
    pub rubric_share: f64,
    pub pivot_share: f64,
    pub pivot_hours: f64,
}

/// Whether the tactic rotates residential IPs from a pool.
pub(crate) fn rotates(t: Tactic) -> bool {
    matches!(
        t,
        Tactic::ProxyRotation | Tactic::JailbreakHarvest | Tactic::ReleasePivot
    )
}

/// The timing model of a tactic.
pub(crate) fn timing(t: Tactic) -> Timing {
    match t {
        Tactic::LowAndSlow => Timing::Human,
        Tactic::NaiveVolume => Timing::Continuous,
        _ => Timing::Waves,
    }
}

/// Knobs that are set but do not apply to the tactic, by key name.
pub(crate) fn inapplicable(c: &Campaign) -> Vec<&'static str> {
    let t = c.tactic;
    let waves = timing(t) == Timing::Waves;
    let mut bad = Vec::new();
    let mut check = |set: bool, ok: bool, key: &'static str| {
        if set && !ok {
            bad.push(key);
        }
    };
    check(c.schedule.is_some(), t != Tactic::LowAndSlow, "schedule");
    check(
        c.wave_interval_minutes.is_some(),
        waves,
        "wave_interval_minutes",
    );
    check(
        c.wave_spread_seconds.is_some(),
        waves,
        "wave_spread_seconds",
    );
    check(c.ip_pool.is_some(), rotates(t), "ip_pool");
    check(
        c.rubric_share.is_some(),
        t == Tactic::ReasoningExtraction,
        "rubric_share",
    );
    let pivot = t == Tactic::ReleasePivot;
    check(c.pivot_model.is_some(), pivot, "pivot_model");
    check(c.pivot_share.is_some(), pivot, "pivot_share");
    check(c.pivot_hours.is_some(), pivot, "pivot_hours");
    bad
}

impl Campaign {
    /// The campaign's knobs with tactic defaults filled in, for `accounts` accounts (the
    /// scaled count: pool sizes and burst counts follow it).
    pub(crate) fn knobs(&self, accounts: u64) -> Knobs {
        let t = self.tactic;
        let (cover, interval, spread, cluster, per_burst, lead): (
            f64,
            f64,
            f64,
            [u64; 2],
            u64,
            f64,
        ) = match t {
            Tactic::ProxyRotation => (0.2, 10.0, 20.0, [10, 60], 150, 10.0),
            Tactic::LowAndSlow => (0.4, 30.0, 60.0, [1, 2], 0, 180.0),
            Tactic::ReasoningExtraction => (0.05, 15.0, 30.0, [3, 15], 40, 21.0),
            Tactic::JailbreakHarvest => (0.1, 12.0, 25.0, [5, 20], 50, 7.0),
            Tactic::NaiveVolume => (0.0, 1.0, 1.0, [accounts.max(1), accounts.max(1)], 0, 2.0),
            Tactic::ReleasePivot => (0.1, 10.0, 20.0, [10, 40], 100, 14.0),
        };
        let default_bursts = match t {
            Tactic::LowAndSlow => 0,
            Tactic::NaiveVolume => 1,
            _ => (accounts / per_burst.max(1)).max(1),
        };
        let default_pool = if rotates(t) {
            (accounts * 3).max(256)
        } else {
            0
        };
        Knobs {
            timing: timing(t),
            cover_share: self.cover_share.unwrap_or(cover),
            schedule: self.schedule.unwrap_or(Schedule::Always),
            utc_offset_hours: self.utc_offset_hours.unwrap_or(-5.0),
            wave_interval_minutes: self.wave_interval_minutes.unwrap_or(interval),
            wave_spread_seconds: self.wave_spread_seconds.unwrap_or(spread),
            ip_pool: if rotates(t) {
                self.ip_pool.unwrap_or(default_pool)
            } else {
                0
            },
            payment_cluster: self.payment_cluster.unwrap_or(cluster),
            signup_bursts: self.signup_bursts.unwrap_or(default_bursts),
            signup_lead_days: self.signup_lead_days.unwrap_or(lead),
            rubric_share: self.rubric_share.unwrap_or(0.35),
            pivot_share: self.pivot_share.unwrap_or(0.5),
            pivot_hours: self.pivot_hours.unwrap_or(24.0),
        }
    }
}

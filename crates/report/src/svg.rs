//! Inline SVG charts: a request timeline with an optional background series and detection
//! marker, a stacked traffic timeline, and a 100% bar of shares.
//!
//! Charts are drawn from already-binned counts, in a fixed view box that scales with the
//! page; coordinates are printed with one decimal so output is byte-stable. Each chart carries
//! a `<title>` and a `<desc>` with its numbers in words for screen readers; colours are never
//! the only carrier of meaning (legends and tables name every series).

use std::fmt::{self, Write};

use moat_types::Timestamp;

use crate::html::{Esc, Num};

const VIEW_W: f64 = 800.0;
const VIEW_H: f64 = 180.0;
const LEFT: f64 = 58.0;
const RIGHT: f64 = 58.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 26.0;
const PLOT_W: f64 = VIEW_W - LEFT - RIGHT;
const PLOT_H: f64 = VIEW_H - TOP - BOTTOM;

/// Colour of campaign-member traffic.
pub(crate) const MEMBERS: &str = "#b8321e";
/// Colour of flagged accounts outside campaigns.
pub(crate) const OTHER_FLAGGED: &str = "#e69f00";
/// Colour of unflagged traffic.
pub(crate) const UNFLAGGED: &str = "#9aa5b1";
/// Colour of the background (all traffic) line of a campaign timeline.
pub(crate) const BACKGROUND: &str = "#6b7785";
/// Colour-blind-safe palette (Okabe–Ito) for categorical shares.
pub(crate) const PALETTE: [&str; 8] = [
    "#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442", "#222222",
];
/// Colour of "other".
pub(crate) const OTHER: &str = "#b0b0b0";

/// The time axis shared by every timeline of a report: `bins` buckets of `bin_ms`
/// milliseconds from `origin_ms`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Axis {
    pub origin_ms: i64,
    pub bin_ms: i64,
    pub bins: usize,
}

impl Axis {
    fn span_ms(&self) -> i64 {
        self.bin_ms.saturating_mul(self.bins as i64).max(1)
    }

    fn x_of_ms(&self, ms: i64) -> f64 {
        let f = (ms - self.origin_ms) as f64 / self.span_ms() as f64;
        LEFT + f.clamp(0.0, 1.0) * PLOT_W
    }

    fn x_of_bin(&self, i: usize) -> f64 {
        LEFT + (i as f64 + 0.5) * PLOT_W / self.bins.max(1) as f64
    }

    /// "per hour", "per 6 hours", "per day".
    pub(crate) fn unit(&self) -> String {
        let h = self.bin_ms / Timestamp::HOUR;
        match h {
            1 => "per hour".into(),
            24 => "per day".into(),
            h if h % 24 == 0 => format!("per {} days", h / 24),
            h => format!("per {h} hours"),
        }
    }
}

/// The smallest of 1, 2, 5 × 10^k at or above `v` (at least 1).
fn nice_ceiling(v: u64) -> u64 {
    let mut p: u64 = 1;
    loop {
        for m in [1, 2, 5] {
            let c = m * p;
            if c >= v {
                return c;
            }
        }
        match p.checked_mul(10) {
            Some(n) => p = n,
            None => return u64::MAX,
        }
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `Mar 2` or `06:00` for a tick at `ms`.
fn tick_label(ms: i64, hours: bool) -> String {
    let mut buf = [0u8; 24];
    Timestamp::from_millis(ms).write_to(&mut buf);
    let s = String::from_utf8_lossy(&buf);
    if hours && ms.rem_euclid(Timestamp::DAY) != 0 {
        return s[11..16].to_string();
    }
    let month: usize = s[5..7].parse().unwrap_or(1);
    let day: u32 = s[8..10].parse().unwrap_or(1);
    format!("{} {day}", MONTHS[month.clamp(1, 12) - 1])
}

/// Vertical grid lines and labels along the time axis.
fn x_ticks(w: &mut impl Write, axis: &Axis) -> fmt::Result {
    let span = axis.span_ms();
    let (step, hours) = if span <= 2 * Timestamp::DAY {
        let step = [1, 3, 6, 12]
            .into_iter()
            .map(|h| h * Timestamp::HOUR)
            .find(|s| span / s <= 8)
            .unwrap_or(12 * Timestamp::HOUR);
        (step, true)
    } else {
        let mut days = [1i64, 2, 7, 14, 28]
            .into_iter()
            .find(|d| span / (d * Timestamp::DAY) <= 10)
            .unwrap_or(28);
        while span / (days * Timestamp::DAY) > 10 {
            days *= 2;
        }
        (days * Timestamp::DAY, false)
    };
    let mut t = axis.origin_ms.div_euclid(step) * step;
    if t < axis.origin_ms {
        t += step;
    }
    let end = axis.origin_ms + span;
    let mut n = 0;
    while t <= end && n < 64 {
        let x = axis.x_of_ms(t);
        write!(
            w,
            r##"<line stroke="#e3e7eb" x1="{x:.1}" x2="{x:.1}" y1="{TOP:.1}" y2="{:.1}"/><text font-size="11" fill="#55606b" x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
            TOP + PLOT_H,
            VIEW_H - 8.0,
            tick_label(t, hours)
        )?;
        t += step;
        n += 1;
    }
    Ok(())
}

fn y_of(v: u64, max: u64) -> f64 {
    TOP + PLOT_H - (v as f64 / max.max(1) as f64).min(1.0) * PLOT_H
}

/// Left (or right) axis labels: 0, half and the maximum.
fn y_labels(w: &mut impl Write, max: u64, right: bool, color: &str) -> fmt::Result {
    let (x, anchor) = if right {
        (VIEW_W - RIGHT + 6.0, "start")
    } else {
        (LEFT - 6.0, "end")
    };
    for v in [0, max / 2, max] {
        let y = y_of(v, max);
        if !right {
            write!(
                w,
                r##"<line stroke="#e3e7eb" x1="{LEFT:.1}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}"/>"##,
                LEFT + PLOT_W
            )?;
        }
        write!(
            w,
            r##"<text font-size="11" x="{x:.1}" y="{:.1}" text-anchor="{anchor}" fill="{color}">{}</text>"##,
            y + 4.0,
            Num(v)
        )?;
    }
    Ok(())
}

/// Points of a series through the bin centres.
fn points(axis: &Axis, values: &[u64], max: u64) -> String {
    let mut s = String::with_capacity(values.len() * 12);
    for (i, v) in values.iter().enumerate() {
        let _ = write!(s, "{:.1},{:.1} ", axis.x_of_bin(i), y_of(*v, max));
    }
    s.pop();
    s
}

fn open(w: &mut impl Write, id: &str, title: &str, desc: &str) -> fmt::Result {
    write!(
        w,
        r##"<svg class="chart" viewBox="0 0 {VIEW_W} {VIEW_H}" role="img" aria-labelledby="{id}-t {id}-d" preserveAspectRatio="xMidYMid meet" font-family="system-ui, sans-serif"><title id="{id}-t">{}</title><desc id="{id}-d">{}</desc>"##,
        Esc(title),
        Esc(desc)
    )
}

/// A timeline of one series (area, left axis) over an optional background series (line,
/// right axis), with the plot shaded from `marker` on.
#[allow(clippy::too_many_arguments)]
pub(crate) fn timeline(
    w: &mut impl Write,
    id: &str,
    axis: &Axis,
    series: &[u64],
    background: Option<&[u64]>,
    marker: Option<(Timestamp, &str)>,
    title: &str,
    desc: &str,
) -> fmt::Result {
    open(w, id, title, desc)?;
    let max = nice_ceiling(series.iter().copied().max().unwrap_or(0));
    if let Some((t, label)) = marker {
        let x = axis.x_of_ms(t.as_millis());
        write!(
            w,
            r##"<rect fill="#b8321e" fill-opacity="0.07" x="{x:.1}" y="{TOP:.1}" width="{:.1}" height="{PLOT_H:.1}"/>"##,
            (LEFT + PLOT_W - x).max(0.0)
        )?;
        let (tx, anchor) = if x > LEFT + 0.75 * PLOT_W {
            (x - 4.0, "end")
        } else {
            (x + 4.0, "start")
        };
        write!(
            w,
            r##"<line stroke="#b8321e" stroke-width="1.5" stroke-dasharray="4 3" x1="{x:.1}" x2="{x:.1}" y1="{:.1}" y2="{:.1}"/><text font-size="11" font-weight="600" fill="#b8321e" x="{tx:.1}" y="{:.1}" text-anchor="{anchor}">{}</text>"##,
            TOP - 4.0,
            TOP + PLOT_H,
            TOP + 8.0,
            Esc(label)
        )?;
    }
    y_labels(w, max, false, "#55606b")?;
    x_ticks(w, axis)?;
    if let Some(bg) = background {
        let bmax = nice_ceiling(bg.iter().copied().max().unwrap_or(0));
        y_labels(w, bmax, true, BACKGROUND)?;
        write!(
            w,
            r##"<polyline fill="none" stroke-width="1.2" stroke="{BACKGROUND}" points="{}"/>"##,
            points(axis, bg, bmax)
        )?;
    }
    let base = TOP + PLOT_H;
    write!(
        w,
        r##"<polygon fill="{MEMBERS}" fill-opacity="0.28" stroke="none" points="{:.1},{base:.1} {} {:.1},{base:.1}"/><polyline fill="none" stroke="{MEMBERS}" stroke-width="1.5" points="{}"/>"##,
        axis.x_of_bin(0),
        points(axis, series, max),
        axis.x_of_bin(series.len().saturating_sub(1)),
        points(axis, series, max)
    )?;
    write!(
        w,
        r##"<rect fill="none" stroke="#d5dbe1" x="{LEFT:.1}" y="{TOP:.1}" width="{PLOT_W:.1}" height="{PLOT_H:.1}"/></svg>"##
    )
}

/// Layers stacked bottom to top: `(label, colour, counts per bin)`.
pub(crate) fn stacked(
    w: &mut impl Write,
    id: &str,
    axis: &Axis,
    layers: &[(&str, &str, &[u64])],
    title: &str,
    desc: &str,
) -> fmt::Result {
    open(w, id, title, desc)?;
    let mut lower = vec![0u64; axis.bins];
    let mut tops: Vec<Vec<u64>> = Vec::with_capacity(layers.len());
    for (_, _, values) in layers {
        let upper: Vec<u64> = lower
            .iter()
            .enumerate()
            .map(|(i, l)| l + values.get(i).copied().unwrap_or(0))
            .collect();
        tops.push(upper.clone());
        lower = upper;
    }
    let max = nice_ceiling(lower.iter().copied().max().unwrap_or(0));
    y_labels(w, max, false, "#55606b")?;
    x_ticks(w, axis)?;
    let mut below = vec![0u64; axis.bins];
    for ((_, color, _), upper) in layers.iter().zip(&tops) {
        let mut pts = points(axis, upper, max);
        for i in (0..axis.bins).rev() {
            let _ = write!(pts, " {:.1},{:.1}", axis.x_of_bin(i), y_of(below[i], max));
        }
        write!(
            w,
            r##"<polygon fill="{color}" stroke="none" points="{pts}"/>"##
        )?;
        below.clone_from(upper);
    }
    write!(
        w,
        r##"<rect fill="none" stroke="#d5dbe1" x="{LEFT:.1}" y="{TOP:.1}" width="{PLOT_W:.1}" height="{PLOT_H:.1}"/></svg>"##
    )
}

/// One 100% bar per row: `(row label, [(colour, count)])`, with the row label at the left.
pub(crate) fn share_bars(
    w: &mut impl Write,
    id: &str,
    rows: &[(&str, Vec<(&str, u64)>)],
    title: &str,
    desc: &str,
) -> fmt::Result {
    const ROW: f64 = 24.0;
    const LABEL: f64 = 84.0;
    // Narrower than the timelines: the bars sit in a half-width column.
    const BARS_W: f64 = 420.0;
    let height = ROW * rows.len() as f64 + 4.0;
    write!(
        w,
        r##"<svg class="bars" viewBox="0 0 {BARS_W} {height:.1}" role="img" aria-labelledby="{id}-t {id}-d" font-family="system-ui, sans-serif"><title id="{id}-t">{}</title><desc id="{id}-d">{}</desc>"##,
        Esc(title),
        Esc(desc)
    )?;
    let width = BARS_W - LABEL - 4.0;
    for (r, (label, segments)) in rows.iter().enumerate() {
        let y = 2.0 + ROW * r as f64;
        write!(
            w,
            r##"<text font-size="11" fill="#1d2329" x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            LABEL - 8.0,
            y + ROW / 2.0 + 4.0,
            Esc(label)
        )?;
        let total: u64 = segments.iter().map(|(_, n)| n).sum();
        let mut x = LABEL;
        for (color, n) in segments {
            if total == 0 || *n == 0 {
                continue;
            }
            let sw = width * *n as f64 / total as f64;
            write!(
                w,
                r##"<rect x="{x:.1}" y="{:.1}" width="{sw:.1}" height="{:.1}" fill="{color}"/>"##,
                y + 3.0,
                ROW - 6.0
            )?;
            x += sw;
        }
    }
    w.write_str("</svg>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_ceilings() {
        assert_eq!(nice_ceiling(0), 1);
        assert_eq!(nice_ceiling(7), 10);
        assert_eq!(nice_ceiling(11), 20);
        assert_eq!(nice_ceiling(420), 500);
        assert_eq!(nice_ceiling(1000), 1000);
    }

    #[test]
    fn tick_labels() {
        let t = Timestamp::parse("2026-03-02T00:00:00Z").map_or(0, Timestamp::as_millis);
        assert_eq!(tick_label(t, false), "Mar 2");
        assert_eq!(tick_label(t + 6 * Timestamp::HOUR, true), "06:00");
        assert_eq!(tick_label(t, true), "Mar 2");
    }
}

//! The page: layout and wording of the report, written from a [`ReportBuilder`]'s aggregates.
//!
//! Sections, in reading order: header with totals, overview (key findings, traffic chart),
//! campaign summary table, one section per campaign, flagged accounts outside campaigns,
//! glossary. Everything from the input is written through `Esc`; the only markup written
//! verbatim is this module's own.

use std::collections::HashMap;
use std::fmt::{self, Write};

use moat_types::Timestamp;

use crate::bounded::ladder_width;
use crate::builder::{AccountStats, CampaignStats, Detail, ReportBuilder, Shape, TrafficStats};
use crate::html::{Duration, Esc, MaybeMinute, Minute, Num, Pct, Score};
use crate::svg::{self, Axis};

/// Most buckets drawn in a timeline; wider spans use wider buckets.
const MAX_BINS: i64 = 400;
/// Campaign sections open when the page loads; later ones start collapsed.
const OPEN_SECTIONS: usize = 5;
/// Models named in model-mix charts (the rest are "other").
const NAMED_MODELS: usize = 8;

const CSS: &str = include_str!("assets/report.css");
const JS: &str = include_str!("assets/report.js");

/// Writes the whole page.
pub(crate) fn page(b: &ReportBuilder, w: &mut impl Write) -> fmt::Result {
    let axis = axis(b);
    let colors = model_colors(&b.all);
    head(b, w)?;
    w.write_str("<main>")?;
    overview(b, w, axis.as_ref())?;
    summary_table(b, w)?;
    for (rank, c) in b.campaigns.iter().enumerate() {
        if let Some(d) = &c.detail {
            campaign(b, w, rank, c, d, axis.as_ref(), &colors)?;
        }
    }
    other_flagged(b, w)?;
    glossary(b, w)?;
    w.write_str("</main>")?;
    write!(
        w,
        "<footer><p>Written by <code>moat analyze --report</code> from the detections and a \
         second pass over the traffic. Prompt samples are truncated to {} characters; anything \
         that looks like a credential, an e-mail address or a card number is masked, and \
         invisible or direction-changing characters are shown as <code>[U+…]</code>. This \
         page loads nothing from the network.</p></footer>",
        b.opts.sample_chars
    )?;
    writeln!(w, "<script>{JS}</script></body></html>")
}

/// The time axis shared by all timelines, or `None` without traffic.
fn axis(b: &ReportBuilder) -> Option<Axis> {
    let (first, last) = (b.all.first?, b.all.last?);
    let first_h = first.as_millis().div_euclid(Timestamp::HOUR);
    let last_h = last.as_millis().div_euclid(Timestamp::HOUR);
    let mut min_width = b
        .all
        .hourly
        .width_hours()
        .max(b.members_hourly.width_hours())
        .max(b.other_flagged_hourly.width_hours());
    for c in &b.campaigns {
        if let Some(d) = &c.detail {
            min_width = min_width.max(d.traffic.hourly.width_hours());
        }
    }
    let mut step = 0;
    let (origin, bins, width) = loop {
        let width = ladder_width(step);
        let origin = first_h.div_euclid(width) * width;
        let bins = (last_h - origin).div_euclid(width) + 1;
        if width >= min_width && bins <= MAX_BINS {
            break (origin, bins, width);
        }
        step += 1;
    };
    Some(Axis {
        origin_ms: origin.saturating_mul(Timestamp::HOUR),
        bin_ms: width * Timestamp::HOUR,
        bins: usize::try_from(bins).unwrap_or(1),
    })
}

fn rebin(t: &crate::bounded::Timeline, axis: &Axis) -> Vec<u64> {
    t.rebin(
        axis.origin_ms / Timestamp::HOUR,
        axis.bin_ms / Timestamp::HOUR,
        axis.bins,
    )
}

/// Colours of the most used models of all traffic; other models share [`svg::OTHER`].
fn model_colors(all: &TrafficStats) -> HashMap<String, &'static str> {
    all.models
        .top(NAMED_MODELS)
        .into_iter()
        .zip(svg::PALETTE)
        .map(|(m, c)| (m.key.clone(), c))
        .collect()
}

fn flagged_exchanges(b: &ReportBuilder) -> (u64, u64, usize) {
    let mut flagged = 0;
    let mut outside = 0;
    let mut outside_accounts = 0;
    for a in &b.accounts {
        if a.flagged || a.campaign.is_some() {
            flagged += a.exchanges;
        }
        if a.flagged && a.campaign.is_none() {
            outside += a.exchanges;
            outside_accounts += 1;
        }
    }
    (flagged, outside, outside_accounts)
}

fn head(b: &ReportBuilder, w: &mut impl Write) -> fmt::Result {
    write!(
        w,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
         style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">\
         <meta name=\"referrer\" content=\"no-referrer\">\
         <meta name=\"generator\" content=\"moat-report\">\
         <title>{}</title><style>{CSS}</style></head><body>",
        Esc(&b.opts.title)
    )?;
    write!(w, "<header><h1>{}</h1>", Esc(&b.opts.title))?;
    w.write_str("<p class=\"meta\">")?;
    if !b.opts.input.is_empty() {
        write!(w, "Traffic <code>{}</code>", Esc(&b.opts.input))?;
    }
    if let Some(d) = &b.opts.detections {
        write!(w, " · detections <code>{}</code>", Esc(d))?;
    }
    if let (Some(f), Some(l)) = (b.all.first, b.all.last) {
        write!(
            w,
            " · {} to {} ({})",
            Minute(f),
            Minute(l),
            Duration(l.as_millis() - f.as_millis())
        )?;
    }
    w.write_str("</p>")?;
    let (flagged_x, _, _) = flagged_exchanges(b);
    let flagged = b.accounts.iter().filter(|a| a.flagged).count();
    let members: usize = b.campaigns.iter().map(|c| c.members.len()).sum();
    let member_x: u64 = b.campaigns.iter().map(|c| c.exchanges).sum();
    let total = b.all.exchanges;
    w.write_str("<dl class=\"totals\">")?;
    let items: [(&str, String, String); 5] = [
        ("Exchanges", Num(total).to_string(), String::new()),
        ("Accounts", Num(b.accounts_total).to_string(), String::new()),
        (
            "Flagged accounts",
            Num(flagged as u64).to_string(),
            format!("{} of traffic", Pct(flagged_x, total)),
        ),
        (
            "Campaigns",
            Num(b.campaigns.len() as u64).to_string(),
            format!("{} accounts", Num(members as u64)),
        ),
        (
            "Campaign traffic",
            Pct(member_x, total).to_string(),
            format!("{} requests", Num(member_x)),
        ),
    ];
    for (label, value, note) in items {
        write!(w, "<div><dt>{label}</dt><dd><strong>{value}</strong>")?;
        if !note.is_empty() {
            write!(w, "<span>{note}</span>")?;
        }
        w.write_str("</dd></div>")?;
    }
    w.write_str("</dl><nav aria-label=\"Sections\"><a href=\"#overview\">Overview</a> <a href=\"#campaigns\">Campaigns</a> <a href=\"#flagged\">Other flagged accounts</a> <a href=\"#glossary\">Glossary</a></nav></header>")
}

fn overview(b: &ReportBuilder, w: &mut impl Write, axis: Option<&Axis>) -> fmt::Result {
    w.write_str("<section id=\"overview\"><h2>Overview</h2><ul class=\"findings\">")?;
    let total = b.all.exchanges;
    let members: usize = b.campaigns.iter().map(|c| c.members.len()).sum();
    let member_x: u64 = b.campaigns.iter().map(|c| c.exchanges).sum();
    if b.campaigns.is_empty() {
        w.write_str("<li>No campaign was detected.</li>")?;
    } else {
        write!(
            w,
            "<li><strong>{} campaign{}</strong> of {} accounts sent {} requests, {} of all traffic.</li>",
            Num(b.campaigns.len() as u64),
            if b.campaigns.len() == 1 { "" } else { "s" },
            Num(members as u64),
            Num(member_x),
            Pct(member_x, total)
        )?;
        if let Some(top) = b.campaigns.first() {
            write!(
                w,
                "<li>Highest score: <a href=\"#campaign-1\"><strong>{}</strong></a> (score {}, {} accounts, {} requests",
                Esc(&top.id),
                Score(top.score),
                Num(top.members.len() as u64),
                Num(top.exchanges)
            )?;
            if let (Some(d), Some(f)) = (top.detected_at, top.first) {
                write!(
                    w,
                    "), detected {} after its first request; {} of its requests came after detection.",
                    Duration(d.as_millis() - f.as_millis()),
                    Pct(top.after_detection, top.exchanges)
                )?;
            } else {
                w.write_str(").")?;
            }
            w.write_str("</li>")?;
        }
        if let Some(big) = b
            .campaigns
            .iter()
            .enumerate()
            .max_by(|(ia, a), (ib, b)| a.exchanges.cmp(&b.exchanges).then(ib.cmp(ia)))
        {
            if big.0 != 0 {
                write!(
                    w,
                    "<li>Most traffic: {} with {} requests ({} of all traffic).</li>",
                    campaign_link(big.0, big.1),
                    Num(big.1.exchanges),
                    Pct(big.1.exchanges, total)
                )?;
            }
        }
    }
    let (_, outside_x, outside_n) = flagged_exchanges(b);
    if outside_n == 0 {
        w.write_str("<li>No account was flagged outside a campaign.</li>")?;
    } else {
        write!(
            w,
            "<li><a href=\"#flagged\">{} flagged account{}</a> outside campaigns sent {} requests ({} of all traffic).</li>",
            Num(outside_n as u64),
            if outside_n == 1 { "" } else { "s" },
            Num(outside_x),
            Pct(outside_x, total)
        )?;
    }
    let mut reasons: Vec<&(String, u64)> = b.reason_counts.iter().collect();
    reasons.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    if !reasons.is_empty() {
        w.write_str("<li>Most common reasons among flagged accounts: ")?;
        for (i, (name, n)) in reasons.iter().take(5).enumerate() {
            if i > 0 {
                w.write_str(", ")?;
            }
            write!(w, "{} ({})", reason_link(name), Num(*n))?;
        }
        w.write_str(".</li>")?;
    }
    w.write_str("</ul>")?;
    if let Some(axis) = axis {
        let all = rebin(&b.all.hourly, axis);
        let members = rebin(&b.members_hourly, axis);
        let other = rebin(&b.other_flagged_hourly, axis);
        let rest: Vec<u64> = all
            .iter()
            .zip(members.iter().zip(&other))
            .map(|(a, (m, o))| a.saturating_sub(m + o))
            .collect();
        let peak = all.iter().copied().max().unwrap_or(0);
        let unit = axis.unit();
        w.write_str("<figure>")?;
        svg::stacked(
            w,
            "overview-chart",
            axis,
            &[
                ("campaign members", svg::MEMBERS, &members),
                ("other flagged accounts", svg::OTHER_FLAGGED, &other),
                ("unflagged accounts", svg::UNFLAGGED, &rest),
            ],
            &format!("All traffic, requests {unit}"),
            &format!(
                "Requests {unit}, stacked: campaign members {}, other flagged accounts {}, unflagged {}; peak {} {unit}.",
                Num(members.iter().sum()),
                Num(other.iter().sum()),
                Num(rest.iter().sum()),
                Num(peak)
            ),
        )?;
        write!(
            w,
            "<figcaption>All traffic, requests {unit} (UTC). {}</figcaption></figure>",
            legend(&[
                (svg::MEMBERS, "campaign members"),
                (svg::OTHER_FLAGGED, "other flagged accounts"),
                (svg::UNFLAGGED, "unflagged accounts"),
            ])
        )?;
    } else {
        w.write_str("<p>No exchanges were read.</p>")?;
    }
    w.write_str("</section>")
}

fn legend(items: &[(&str, &str)]) -> String {
    let mut s = String::from("<span class=\"legend\">");
    for (color, label) in items {
        let _ = write!(
            s,
            "<span><i class=\"sw\" style=\"background:{color}\"></i>{}</span>",
            Esc(label)
        );
    }
    s.push_str("</span>");
    s
}

/// Anchor id fragment made only of safe characters.
fn slug(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn reason_link(name: &str) -> String {
    format!(
        "<a class=\"reason\" href=\"#reason-{}\"><code>{}</code></a>",
        slug(name),
        Esc(name)
    )
}

fn campaign_link(rank: usize, c: &CampaignStats) -> String {
    if c.detail.is_some() {
        format!(
            "<a href=\"#campaign-{}\"><strong>{}</strong></a>",
            rank + 1,
            Esc(&c.id)
        )
    } else {
        format!("<strong>{}</strong>", Esc(&c.id))
    }
}

/// Milliseconds between the campaign's first request and its detection.
fn time_to_detect(c: &CampaignStats) -> Option<i64> {
    Some(c.detected_at?.as_millis() - c.first?.as_millis())
}

fn summary_table(b: &ReportBuilder, w: &mut impl Write) -> fmt::Result {
    w.write_str("<section id=\"campaigns\"><h2>Campaigns</h2>")?;
    if b.campaigns.is_empty() {
        return w.write_str("<p>No campaign was detected.</p></section>");
    }
    w.write_str(
        "<p class=\"note\">Ranked by score, then size. Share is of all requests in the traffic; \
         “after detection” is the share of the campaign's requests sent at or after it was first \
         detected, what blocking at detection time would have stopped.</p>\
         <div class=\"scroll\"><table class=\"sortable\"><thead><tr>\
         <th scope=\"col\">#</th><th scope=\"col\">Campaign</th><th scope=\"col\">Score</th>\
         <th scope=\"col\">Accounts</th><th scope=\"col\">Requests</th><th scope=\"col\">Share</th>\
         <th scope=\"col\">Detected</th>\
         <th scope=\"col\">Time to detect</th><th scope=\"col\">After detection</th>\
         <th scope=\"col\">Evidence</th></tr></thead><tbody>",
    )?;
    let total = b.all.exchanges;
    for (rank, c) in b.campaigns.iter().enumerate().take(b.opts.max_summary_rows) {
        write!(
            w,
            "<tr><td data-v=\"{r}\">{r}</td><td>{}</td><td data-v=\"{}\">{}</td><td class=\"n\" data-v=\"{}\">{}</td><td class=\"n\" data-v=\"{}\">{}</td><td class=\"n\" data-v=\"{}\">{}</td><td>{}</td>",
            campaign_link(rank, c),
            c.score,
            Score(c.score),
            c.members.len(),
            Num(c.members.len() as u64),
            c.exchanges,
            Num(c.exchanges),
            c.exchanges,
            Pct(c.exchanges, total),
            MaybeMinute(c.detected_at),
            r = rank + 1,
        )?;
        match time_to_detect(c) {
            Some(ms) => write!(w, "<td data-v=\"{ms}\">{}</td>", Duration(ms))?,
            None => w.write_str("<td data-v=\"\">–</td>")?,
        }
        let after = if c.exchanges == 0 {
            0.0
        } else {
            c.after_detection as f64 / c.exchanges as f64
        };
        write!(
            w,
            "<td class=\"n\" data-v=\"{after:.4}\">{}</td><td class=\"reasons\">",
            Pct(c.after_detection, c.exchanges)
        )?;
        for (i, s) in c.signals.iter().enumerate() {
            if i > 0 {
                w.write_str(" ")?;
            }
            w.write_str(&reason_link(&s.name))?;
        }
        w.write_str("</td></tr>")?;
    }
    w.write_str("</tbody></table></div>")?;
    let hidden = b.campaigns.len().saturating_sub(b.opts.max_summary_rows);
    if hidden > 0 {
        write!(
            w,
            "<p class=\"note\">{} more campaigns with lower scores are not listed here; {}.</p>",
            Num(hidden as u64),
            see_detections(b)
        )?;
    }
    let sections = b.campaigns.iter().filter(|c| c.detail.is_some()).count();
    if sections < b.campaigns.len() {
        write!(
            w,
            "<p class=\"note\">The {} highest-ranked campaigns have a section below.</p>",
            Num(sections as u64)
        )?;
    }
    w.write_str("</section>")
}

fn see_detections(b: &ReportBuilder) -> String {
    match &b.opts.detections {
        Some(d) => format!("all of them are in <code>{}</code>", Esc(d)),
        None => "all of them are in the detections file".into(),
    }
}

#[allow(clippy::too_many_arguments)]
fn campaign(
    b: &ReportBuilder,
    w: &mut impl Write,
    rank: usize,
    c: &CampaignStats,
    d: &Detail,
    axis: Option<&Axis>,
    colors: &HashMap<String, &'static str>,
) -> fmt::Result {
    let n = rank + 1;
    let total = b.all.exchanges;
    write!(
        w,
        "<details class=\"campaign\" id=\"campaign-{n}\"{}><summary><h3><span class=\"rank\">#{n}</span> {} <span class=\"badge\">score {}</span> <span class=\"sub\">{} accounts · {} requests · {} of traffic</span></h3></summary>",
        if rank < OPEN_SECTIONS { " open" } else { "" },
        Esc(&c.id),
        Score(c.score),
        Num(c.members.len() as u64),
        Num(c.exchanges),
        Pct(c.exchanges, total)
    )?;

    // Key facts.
    let active = c
        .members
        .iter()
        .filter(|&&i| b.accounts[i].exchanges > 0)
        .count();
    let (blocks, capped) = d.distinct_blocks.count();
    w.write_str("<dl class=\"facts\">")?;
    fact(
        w,
        "Accounts",
        &format!(
            "{} ({} sent requests)",
            Num(c.members.len() as u64),
            Num(active as u64)
        ),
    )?;
    fact(
        w,
        "Requests",
        &format!(
            "{} ({} of all traffic)",
            Num(c.exchanges),
            Pct(c.exchanges, total)
        ),
    )?;
    fact(
        w,
        "Active",
        &format!("{} to {}", MaybeMinute(c.first), MaybeMinute(c.last)),
    )?;
    let detected = match (c.detected_at, time_to_detect(c)) {
        (Some(t), Some(ms)) => format!("{} ({} after its first request)", Minute(t), Duration(ms)),
        (Some(t), None) => Minute(t).to_string(),
        (None, _) => "–".into(),
    };
    fact(w, "First detected", &detected)?;
    fact(
        w,
        "After detection",
        &format!(
            "{} requests ({})",
            Num(c.after_detection),
            Pct(c.after_detection, c.exchanges)
        ),
    )?;
    let s = &d.traffic.shape;
    fact(
        w,
        "Tokens obtained",
        &format!(
            "{} reasoning, {} completion",
            Num(s.reasoning_tokens),
            Num(s.completion_tokens)
        ),
    )?;
    fact(
        w,
        "Address blocks",
        &format!(
            "{}{} distinct /24 or /48",
            if capped { "≥ " } else { "" },
            Num(blocks as u64)
        ),
    )?;
    w.write_str("</dl>")?;

    // Evidence.
    w.write_str("<h4>Evidence</h4>")?;
    if c.signals.is_empty() {
        w.write_str("<p class=\"note\">The detection lists no evidence lines.</p>")?;
    } else {
        w.write_str("<ul class=\"evidence\">")?;
        for s in &c.signals {
            write!(w, "<li>{} {}</li>", reason_link(&s.name), Esc(&s.detail))?;
        }
        w.write_str("</ul>")?;
    }

    // Timeline.
    if let Some(axis) = axis {
        let series = rebin(&d.traffic.hourly, axis);
        let all = rebin(&b.all.hourly, axis);
        let unit = axis.unit();
        let peak = series
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(&a.0)));
        let mut desc = format!("Requests {unit} sent by the members of {}", c.id);
        if let Some((i, v)) = peak {
            let at = Timestamp::from_millis(axis.origin_ms + axis.bin_ms * i as i64);
            let _ = write!(desc, "; peak {} at {}", Num(*v), Minute(at));
        }
        if let Some(t) = c.detected_at {
            let _ = write!(desc, "; detected at {}", Minute(t));
        }
        desc.push('.');
        w.write_str("<figure>")?;
        svg::timeline(
            w,
            &format!("timeline-{n}"),
            axis,
            &series,
            Some(&all),
            c.detected_at.map(|t| (t, "detected")),
            &format!("{}: requests {unit}", c.id),
            &desc,
        )?;
        write!(
            w,
            "<figcaption>Requests {unit} (UTC): {}",
            legend(&[
                (svg::MEMBERS, "campaign members (left axis)"),
                (svg::BACKGROUND, "all traffic (right axis)"),
            ])
        )?;
        if c.detected_at.is_some() {
            w.write_str(" The shaded part follows the first detection.")?;
        }
        w.write_str("</figcaption></figure>")?;
    }

    w.write_str("<div class=\"cols\">")?;
    model_mix(w, n, c, d, &b.all, colors)?;
    shape_table(
        w,
        &d.traffic.shape,
        d.traffic.exchanges,
        &b.all.shape,
        total,
    )?;
    w.write_str("</div>")?;

    // Network and clients.
    w.write_str("<h4>Network and clients</h4><div class=\"cols three\">")?;
    let k = b.opts.top_values;
    let rows: Vec<(String, u64, u64)> = d
        .blocks
        .top(k)
        .into_iter()
        .map(|x| (x.key.to_string(), x.count, x.error))
        .collect();
    top_table(w, "Address blocks", &rows, d.blocks.total())?;
    let rows: Vec<(String, u64, u64)> = d
        .agents
        .top(k)
        .into_iter()
        .map(|x| (x.key.clone(), x.count, x.error))
        .collect();
    top_table(w, "User agents", &rows, d.agents.total())?;
    let rows: Vec<(String, u64, u64)> = d
        .countries
        .top(k)
        .into_iter()
        .map(|x| (x.key.clone(), x.count, x.error))
        .collect();
    top_table(w, "Countries", &rows, d.countries.total())?;
    w.write_str("</div>")?;

    samples(w, d)?;
    members_table(b, w, c)?;
    w.write_str("</details>")
}

fn fact(w: &mut impl Write, label: &str, value: &str) -> fmt::Result {
    // `value` is built from escaped or numeric parts only.
    write!(w, "<div><dt>{label}</dt><dd>{value}</dd></div>")
}

fn model_mix(
    w: &mut impl Write,
    n: usize,
    c: &CampaignStats,
    d: &Detail,
    all: &TrafficStats,
    colors: &HashMap<String, &'static str>,
) -> fmt::Result {
    let named = |stats: &TrafficStats| -> (Vec<(String, u64)>, u64) {
        let top: Vec<(String, u64)> = stats
            .models
            .top(NAMED_MODELS)
            .into_iter()
            .map(|m| (m.key.clone(), m.count))
            .collect();
        let shown: u64 = top.iter().map(|(_, n)| n).sum();
        (top, stats.models.total().saturating_sub(shown))
    };
    let (mine, mine_other) = named(&d.traffic);
    let (theirs, theirs_other) = named(all);
    let color = |m: &str| colors.get(m).copied().unwrap_or(svg::OTHER);
    let segments = |v: &[(String, u64)], other: u64| -> Vec<(&'static str, u64)> {
        let mut s: Vec<(&'static str, u64)> = v.iter().map(|(m, n)| (color(m), *n)).collect();
        s.push((svg::OTHER, other));
        s
    };
    let mine_seg = segments(&mine, mine_other);
    let theirs_seg = segments(&theirs, theirs_other);
    w.write_str("<figure class=\"models\"><h4>Model mix</h4>")?;
    let mut desc = String::from("Share of requests by model for the members: ");
    for (i, (m, k)) in mine.iter().enumerate() {
        if i > 0 {
            desc.push_str(", ");
        }
        let _ = write!(desc, "{m} {}", Pct(*k, d.traffic.exchanges));
    }
    desc.push('.');
    svg::share_bars(
        w,
        &format!("models-{n}"),
        &[("members", mine_seg), ("all traffic", theirs_seg)],
        &format!("{}: model mix", c.id),
        &desc,
    )?;
    // The table names every colour.
    let mut names: Vec<&str> = mine.iter().map(|(m, _)| m.as_str()).collect();
    for (m, _) in &theirs {
        if !names.contains(&m.as_str()) {
            names.push(m);
        }
    }
    w.write_str("<table class=\"compact\"><thead><tr><th scope=\"col\">Model</th><th scope=\"col\">Members</th><th scope=\"col\">All traffic</th></tr></thead><tbody>")?;
    let get = |v: &[(String, u64)], m: &str| v.iter().find(|(k, _)| k == m).map_or(0, |x| x.1);
    for m in names {
        write!(
            w,
            "<tr><th scope=\"row\"><i class=\"sw\" style=\"background:{}\"></i>{}</th><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            color(m),
            Esc(m),
            Pct(get(&mine, m), d.traffic.exchanges),
            Pct(get(&theirs, m), all.exchanges)
        )?;
    }
    if mine_other + theirs_other > 0 {
        write!(
            w,
            "<tr><th scope=\"row\"><i class=\"sw\" style=\"background:{}\"></i>other</th><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            svg::OTHER,
            Pct(mine_other, d.traffic.exchanges),
            Pct(theirs_other, all.exchanges)
        )?;
    }
    w.write_str("</tbody></table></figure>")
}

fn shape_table(w: &mut impl Write, s: &Shape, n: u64, all: &Shape, total: u64) -> fmt::Result {
    w.write_str("<div><h4>Request shape</h4><table class=\"compact\"><thead><tr><th scope=\"col\">Share of requests</th><th scope=\"col\">Members</th><th scope=\"col\">All traffic</th></tr></thead><tbody>")?;
    let rows: [(&str, u64, u64); 6] = [
        ("single turn", s.single_turn, all.single_turn),
        ("with a system prompt", s.system_prompt, all.system_prompt),
        ("max_tokens ≥ 8,192", s.large_budget, all.large_budget),
        ("reasoning_effort high", s.high_effort, all.high_effort),
        ("several choices (n > 1)", s.multi_choice, all.multi_choice),
        ("log-probabilities", s.logprobs, all.logprobs),
    ];
    for (label, mine, theirs) in rows {
        write!(
            w,
            "<tr><th scope=\"row\">{label}</th><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            Pct(mine, n),
            Pct(theirs, total)
        )?;
    }
    let mean = |t: u64, k: u64| t.checked_div(k).unwrap_or(0);
    write!(
        w,
        "<tr><th scope=\"row\">mean reasoning tokens</th><td class=\"n\">{}</td><td class=\"n\">{}</td></tr></tbody></table></div>",
        Num(mean(s.reasoning_tokens, s.with_reasoning)),
        Num(mean(all.reasoning_tokens, all.with_reasoning))
    )
}

fn top_table(
    w: &mut impl Write,
    title: &str,
    rows: &[(String, u64, u64)],
    total: u64,
) -> fmt::Result {
    write!(
        w,
        "<div><table class=\"compact top\"><caption>{title}</caption><thead><tr><th scope=\"col\">Value</th><th scope=\"col\">Requests</th><th scope=\"col\">Share</th></tr></thead><tbody>"
    )?;
    // A Space-Saving counter whose count is mostly inherited from values it replaced says
    // nothing about its own value: such rows are left out rather than shown as leaders.
    let reliable: Vec<&(String, u64, u64)> = rows
        .iter()
        .filter(|(_, n, e)| e.saturating_mul(2) < *n)
        .collect();
    if total == 0 {
        w.write_str("<tr><td colspan=\"3\">not logged</td></tr>")?;
    } else if reliable.is_empty() {
        w.write_str("<tr><td colspan=\"3\">no single value stands out: requests are spread thinly over many values</td></tr>")?;
    }
    for (value, count, error) in reliable {
        let approx = if *error > 0 { "≈ " } else { "" };
        write!(
            w,
            "<tr><td class=\"val\">{}</td><td class=\"n\">{approx}{}</td><td class=\"n\">{approx}{}</td></tr>",
            Esc(value),
            Num(*count),
            Pct(*count, total)
        )?;
    }
    w.write_str("</tbody></table></div>")
}

fn samples(w: &mut impl Write, d: &Detail) -> fmt::Result {
    let list = d.samples.sorted();
    w.write_str("<h4>Sample prompts</h4>")?;
    if list.is_empty() {
        return w.write_str("<p class=\"note\">No prompts were seen.</p>");
    }
    w.write_str(
        "<p class=\"note\">A random sample of distinct prompt openings (prompts that start \
         with the same words, ignoring case, digits and punctuation, count as one), with how \
         many requests open that way; each shows the first such prompt.</p><ol class=\"samples\">",
    )?;
    for s in list {
        write!(
            w,
            "<li><p class=\"sample-meta\"><strong>{} request{}</strong> · first {} · <code>{}</code>",
            Num(s.count),
            if s.count == 1 { "" } else { "s" },
            Minute(s.ts),
            Esc(&s.account)
        )?;
        if let Some(r) = &s.request_id {
            write!(w, " · <code>{}</code>", Esc(r))?;
        }
        w.write_str("</p>")?;
        if let Some(sys) = &s.system {
            write!(
                w,
                "<pre class=\"prompt system\"><span class=\"role\">system</span> {}</pre>",
                Esc(sys)
            )?;
        }
        write!(w, "<pre class=\"prompt\">{}</pre></li>", Esc(&s.text))?;
    }
    w.write_str("</ol>")
}

fn reasons_cell(w: &mut impl Write, reasons: &[String]) -> fmt::Result {
    w.write_str("<td class=\"reasons\">")?;
    for (i, r) in reasons.iter().enumerate() {
        if i > 0 {
            w.write_str(" ")?;
        }
        w.write_str(&reason_link(r))?;
    }
    w.write_str("</td>")
}

fn account_row(w: &mut impl Write, a: &AccountStats) -> fmt::Result {
    let risk = a.risk.unwrap_or(f64::NAN);
    write!(
        w,
        "<tr><td><code>{}</code></td><td class=\"n\" data-v=\"{}\">{}</td><td class=\"n\" data-v=\"{}\">{}</td><td>{}</td><td class=\"n\" data-v=\"{}\">{}</td><td>{}</td><td>{}</td>",
        Esc(&a.id),
        if risk.is_finite() { risk } else { -1.0 },
        Score(risk),
        a.exchanges,
        Num(a.exchanges),
        MaybeMinute(a.flagged_at),
        a.after_flag,
        if a.flagged_at.is_some() {
            Pct(a.after_flag, a.exchanges).to_string()
        } else {
            "–".into()
        },
        MaybeMinute(a.first),
        MaybeMinute(a.last)
    )?;
    reasons_cell(w, &a.reasons)?;
    w.write_str("</tr>")
}

const ACCOUNT_HEAD: &str = "<thead><tr><th scope=\"col\">Account</th><th scope=\"col\">Risk</th>\
    <th scope=\"col\">Requests</th><th scope=\"col\">Flagged at</th>\
    <th scope=\"col\">After flag</th><th scope=\"col\">First request</th>\
    <th scope=\"col\">Last request</th><th scope=\"col\">Reasons</th></tr></thead><tbody>";

fn members_table(b: &ReportBuilder, w: &mut impl Write, c: &CampaignStats) -> fmt::Result {
    let mut members: Vec<&AccountStats> = c.members.iter().map(|&i| &b.accounts[i]).collect();
    members.sort_by(|a, b| b.exchanges.cmp(&a.exchanges).then_with(|| a.id.cmp(&b.id)));
    let shown = members.len().min(b.opts.top_members);
    write!(
        w,
        "<h4>Members</h4><p class=\"note\">The {} busiest of {} members; {}.</p><div class=\"scroll\"><table class=\"sortable\">{ACCOUNT_HEAD}",
        Num(shown as u64),
        Num(members.len() as u64),
        see_detections(b)
    )?;
    for a in members.into_iter().take(shown) {
        account_row(w, a)?;
    }
    w.write_str("</tbody></table></div>")
}

fn other_flagged(b: &ReportBuilder, w: &mut impl Write) -> fmt::Result {
    let mut rows: Vec<&AccountStats> = b
        .accounts
        .iter()
        .filter(|a| a.flagged && a.campaign.is_none())
        .collect();
    w.write_str("<section id=\"flagged\"><h2>Flagged accounts outside campaigns</h2>")?;
    if rows.is_empty() {
        return w.write_str("<p>None: every flagged account belongs to a campaign.</p></section>");
    }
    rows.sort_by(|a, b| {
        b.risk
            .unwrap_or(0.0)
            .total_cmp(&a.risk.unwrap_or(0.0))
            .then(b.exchanges.cmp(&a.exchanges))
            .then_with(|| a.id.cmp(&b.id))
    });
    let shown = rows.len().min(b.opts.max_flagged_rows);
    write!(
        w,
        "<p class=\"note\">{} accounts flagged on their own behaviour, highest risk first",
        Num(rows.len() as u64)
    )?;
    if shown < rows.len() {
        write!(
            w,
            "; the first {} are listed, {} more are in the detections file",
            Num(shown as u64),
            Num((rows.len() - shown) as u64)
        )?;
    }
    write!(
        w,
        ".</p><div class=\"scroll\"><table class=\"sortable\">{ACCOUNT_HEAD}"
    )?;
    for a in rows.into_iter().take(shown) {
        account_row(w, a)?;
    }
    w.write_str("</tbody></table></div></section>")
}

fn glossary(b: &ReportBuilder, w: &mut impl Write) -> fmt::Result {
    w.write_str(
        "<section id=\"glossary\"><h2>Glossary</h2><p class=\"note\">Reason names as written \
         in the detections, with how many flagged accounts carry each. Campaign evidence lines \
         use the same names.</p><table><thead><tr><th scope=\"col\">Name</th>\
         <th scope=\"col\">Meaning</th><th scope=\"col\">Flagged accounts</th></tr></thead><tbody>",
    )?;
    let count = |name: &str| {
        b.reason_counts
            .iter()
            .find(|(n, _)| n == name)
            .map_or(0, |x| x.1)
    };
    for g in &b.opts.glossary {
        write!(
            w,
            "<tr id=\"reason-{}\"><th scope=\"row\"><code>{}</code></th><td>{}</td><td class=\"n\">{}</td></tr>",
            slug(&g.name),
            Esc(&g.name),
            Esc(&g.meaning),
            Num(count(&g.name))
        )?;
    }
    // Names in the detections that the glossary does not know, so none is hidden.
    let mut extra: Vec<&str> = b
        .reason_counts
        .iter()
        .map(|(n, _)| n.as_str())
        .chain(
            b.campaigns
                .iter()
                .flat_map(|c| c.signals.iter().map(|s| s.name.as_str())),
        )
        .filter(|n| !b.opts.glossary.iter().any(|g| g.name == *n))
        .collect();
    extra.sort_unstable();
    extra.dedup();
    for name in extra {
        write!(
            w,
            "<tr id=\"reason-{}\"><th scope=\"row\"><code>{}</code></th><td><em>undocumented</em></td><td class=\"n\">{}</td></tr>",
            slug(name),
            Esc(name),
            Num(count(name))
        )?;
    }
    w.write_str("</tbody></table></section>")
}

//! What an alert says, and the two bodies it is posted in: generic JSON and Slack-compatible.
//!
//! Everything here is pure: the caller gives the time (`at`, an RFC 3339 string it formats
//! itself), and rendering reads no clock, no environment and no configuration, so the same
//! alerts always give the same bytes. Not the delivery: [`crate::dispatch`] decides which
//! webhook gets which alerts and when.

use std::fmt;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::AlertsError;

/// The version of the generic JSON body (its `v` field).
pub const JSON_BODY_VERSION: u32 = 1;
/// Slack accepts at most this many blocks in one message.
pub const SLACK_MAX_BLOCKS: usize = 50;
/// Slack accepts at most this many characters in one section's text.
pub const SLACK_MAX_SECTION_CHARS: usize = 3000;

/// Longest summary kept in one Slack section, in characters after escaping.
const SLACK_SUMMARY_CHARS: usize = 1500;
/// Longest identifier (campaign, action, actor, target) kept in a Slack section, escaped.
const SLACK_FIELD_CHARS: usize = 150;
/// Longest timestamp kept in a Slack section.
const SLACK_AT_CHARS: usize = 64;
/// Longest link made clickable in a Slack section; a longer one is left out.
const SLACK_LINK_CHARS: usize = 500;
/// Longest top-level `text` (Slack's notification fallback), escaped.
const SLACK_TEXT_CHARS: usize = 1000;

/// What happened. The configuration's `events` lists these names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// The engine discovered a new campaign.
    CampaignDiscovered,
    /// A known campaign grew past one of the configured account thresholds.
    CampaignGrew,
    /// An action (block, throttle, …) was applied, by the policy or by an investigator.
    ActionApplied,
}

impl AlertKind {
    /// Every kind, in a fixed order.
    pub const ALL: [AlertKind; 3] = [
        AlertKind::CampaignDiscovered,
        AlertKind::CampaignGrew,
        AlertKind::ActionApplied,
    ];

    /// The name used in configuration and in the JSON body (`campaign_discovered`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::CampaignDiscovered => "campaign_discovered",
            AlertKind::CampaignGrew => "campaign_grew",
            AlertKind::ActionApplied => "action_applied",
        }
    }

    /// The words a person reads (`Campaign discovered`, …).
    fn title(self) -> &'static str {
        match self {
            AlertKind::CampaignDiscovered => "Campaign discovered",
            AlertKind::CampaignGrew => "Campaign grew",
            AlertKind::ActionApplied => "Action applied",
        }
    }
}

impl fmt::Display for AlertKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The action of an `action_applied` alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedAction {
    /// What was done (`block`, `throttle`, `tarpit`, …).
    pub action: String,
    /// Who did it: an investigator's name, or `policy` for a rule.
    pub actor: String,
    /// What it was done to: an account, a campaign, a network.
    pub target: String,
}

/// One alert. Built by the caller (the gateway, the consolidator), posted by the dispatcher.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// What happened.
    pub kind: AlertKind,
    /// When, as an RFC 3339 string the caller formats (this crate reads no clock for it).
    pub at: String,
    /// The campaign concerned, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign_id: Option<String>,
    /// The campaign's size now, in accounts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accounts: Option<u64>,
    /// The campaign's size before it grew (`campaign_grew`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_accounts: Option<u64>,
    /// The growth threshold crossed (`campaign_grew`; see [`crossed_threshold`]). Part of the
    /// deduplication key, so crossing 1000 alerts even when crossing 100 did an hour ago.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<u64>,
    /// The campaign's score, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// The action (`action_applied`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<AppliedAction>,
    /// One human sentence saying what happened.
    pub summary: String,
    /// A dashboard URL where an investigator can look closer, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

impl Alert {
    /// A `campaign_discovered` alert.
    pub fn campaign_discovered(
        at: impl Into<String>,
        campaign_id: impl Into<String>,
        accounts: u64,
        summary: impl Into<String>,
    ) -> Alert {
        Alert {
            kind: AlertKind::CampaignDiscovered,
            at: at.into(),
            campaign_id: Some(campaign_id.into()),
            accounts: Some(accounts),
            previous_accounts: None,
            threshold: None,
            score: None,
            action: None,
            summary: summary.into(),
            link: None,
        }
    }

    /// A `campaign_grew` alert: the campaign went from `previous_accounts` to `accounts`,
    /// crossing `threshold` (usually [`crossed_threshold`]'s answer).
    pub fn campaign_grew(
        at: impl Into<String>,
        campaign_id: impl Into<String>,
        previous_accounts: u64,
        accounts: u64,
        threshold: Option<u64>,
        summary: impl Into<String>,
    ) -> Alert {
        Alert {
            kind: AlertKind::CampaignGrew,
            at: at.into(),
            campaign_id: Some(campaign_id.into()),
            accounts: Some(accounts),
            previous_accounts: Some(previous_accounts),
            threshold,
            score: None,
            action: None,
            summary: summary.into(),
            link: None,
        }
    }

    /// An `action_applied` alert.
    pub fn action_applied(
        at: impl Into<String>,
        action: AppliedAction,
        summary: impl Into<String>,
    ) -> Alert {
        Alert {
            kind: AlertKind::ActionApplied,
            at: at.into(),
            campaign_id: None,
            accounts: None,
            previous_accounts: None,
            threshold: None,
            score: None,
            action: Some(action),
            summary: summary.into(),
            link: None,
        }
    }

    /// The same alert about campaign `id`.
    pub fn with_campaign(mut self, id: impl Into<String>) -> Alert {
        self.campaign_id = Some(id.into());
        self
    }

    /// The same alert with a score.
    pub fn with_score(mut self, score: f64) -> Alert {
        self.score = Some(score);
        self
    }

    /// The same alert with a dashboard link.
    pub fn with_link(mut self, link: impl Into<String>) -> Alert {
        self.link = Some(link.into());
        self
    }

    /// What makes two alerts the same for deduplication: the kind and what it is about (the
    /// campaign; for growth also the threshold crossed; for an action the action and its
    /// target). The time, the summary and the link are not part of it, so a campaign
    /// rediscovered every scoring round alerts once per window.
    pub fn dedup_key(&self) -> String {
        // Debug quoting keeps the parts unambiguous whatever characters the ids hold.
        let id = self.campaign_id.as_deref().unwrap_or("");
        match self.kind {
            AlertKind::CampaignDiscovered => format!("campaign_discovered:{id:?}"),
            AlertKind::CampaignGrew => {
                let bucket = self.threshold.or(self.accounts).unwrap_or(0);
                format!("campaign_grew:{id:?}:{bucket}")
            }
            AlertKind::ActionApplied => match &self.action {
                Some(a) => format!("action_applied:{:?}:{:?}:{id:?}", a.action, a.target),
                None => format!("action_applied:-:{:?}:{id:?}", self.summary),
            },
        }
    }
}

/// The growth threshold a campaign crossed going from `from` to `to` accounts: the largest
/// `t` of `thresholds` with `from < t <= to`, or `None` when it crossed none (or shrank).
pub fn crossed_threshold(thresholds: &[u64], from: u64, to: u64) -> Option<u64> {
    thresholds
        .iter()
        .copied()
        .filter(|&t| from < t && t <= to)
        .max()
}

/// The generic JSON body: `{"source": "moat", "v": 1, "alerts": [...]}`, each alert as
/// [`Alert`] serializes (absent fields left out).
pub fn render_json(alerts: &[Alert]) -> Result<Bytes, AlertsError> {
    #[derive(Serialize)]
    struct Body<'a> {
        source: &'static str,
        v: u32,
        alerts: &'a [Alert],
    }
    let body = Body {
        source: "moat",
        v: JSON_BODY_VERSION,
        alerts,
    };
    serde_json::to_vec(&body)
        .map(Bytes::from)
        .map_err(|e| AlertsError::Render(e.to_string()))
}

/// The Slack-compatible body (an incoming webhook's message): `{"text": ..., "blocks": [...]}`,
/// one `section` block with `mrkdwn` text per alert. Text from the alerts is escaped as Slack
/// requires (`&`, `<`, `>`) and shortened to fit Slack's limits; past
/// [`SLACK_MAX_BLOCKS`] alerts the last block says how many more there were.
pub fn render_slack(alerts: &[Alert]) -> Result<Bytes, AlertsError> {
    let text = match alerts {
        [] => "Moat: no alerts".to_owned(),
        [one] => format!(
            "Moat: {}",
            escape_capped(&one.summary, SLACK_TEXT_CHARS - "Moat: ".len())
        ),
        [first, ..] => format!(
            "Moat: {} alerts. {}",
            alerts.len(),
            escape_capped(&first.summary, SLACK_TEXT_CHARS - 64)
        ),
    };
    let shown = if alerts.len() > SLACK_MAX_BLOCKS {
        SLACK_MAX_BLOCKS - 1
    } else {
        alerts.len()
    };
    let mut blocks: Vec<serde_json::Value> = alerts[..shown]
        .iter()
        .map(|a| section(slack_section_text(a)))
        .collect();
    if shown < alerts.len() {
        let more = alerts.len() - shown;
        let noun = if more == 1 { "alert" } else { "alerts" };
        blocks.push(section(format!("…and {more} more {noun}")));
    }
    let body = serde_json::json!({ "text": text, "blocks": blocks });
    serde_json::to_vec(&body)
        .map(Bytes::from)
        .map_err(|e| AlertsError::Render(e.to_string()))
}

/// One `section` block of `mrkdwn` text.
fn section(text: String) -> serde_json::Value {
    serde_json::json!({
        "type": "section",
        "text": { "type": "mrkdwn", "text": text },
    })
}

/// The text of one alert's section: a bold title with the campaign, the summary, then the
/// details on one line. Each piece is capped, so the whole stays under
/// [`SLACK_MAX_SECTION_CHARS`] whatever the alert holds.
fn slack_section_text(a: &Alert) -> String {
    let mut out = format!("*{}*", a.kind.title());
    if let Some(id) = &a.campaign_id {
        out.push_str(" · `");
        out.push_str(&escape_capped(id, SLACK_FIELD_CHARS));
        out.push('`');
    }
    out.push('\n');
    out.push_str(&escape_capped(&a.summary, SLACK_SUMMARY_CHARS));
    let mut details: Vec<String> = Vec::new();
    if let Some(action) = &a.action {
        details.push(format!(
            "`{}` on `{}` by {}",
            escape_capped(&action.action, SLACK_FIELD_CHARS),
            escape_capped(&action.target, SLACK_FIELD_CHARS),
            escape_capped(&action.actor, SLACK_FIELD_CHARS),
        ));
    }
    match (a.previous_accounts, a.accounts) {
        (Some(before), Some(now)) => details.push(format!("{before} → {now} accounts")),
        (None, Some(now)) => details.push(format!("{now} accounts")),
        _ => {}
    }
    if let Some(t) = a.threshold {
        details.push(format!("crossed {t}"));
    }
    if let Some(score) = a.score.filter(|s| s.is_finite()) {
        details.push(format!("score {score:.2}"));
    }
    details.push(escape_capped(&a.at, SLACK_AT_CHARS));
    if let Some(link) = a.link.as_deref().filter(|l| linkable(l)) {
        details.push(format!("<{}|Open in Moat>", link.replace('&', "&amp;")));
    }
    out.push('\n');
    out.push_str(&details.join(" · "));
    out
}

/// Whether `link` can go inside Slack's `<url|label>` as it is: an http(s) URL of modest length
/// without the characters that would end the link early.
fn linkable(link: &str) -> bool {
    (link.starts_with("https://") || link.starts_with("http://"))
        && link.len() <= SLACK_LINK_CHARS
        && !link
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '|'))
}

/// `text` escaped for Slack (`&` → `&amp;`, `<` → `&lt;`, `>` → `&gt;`), at most `max`
/// characters of output, `…` marking a cut. An escape is never cut in half.
fn escape_capped(text: &str, max: usize) -> String {
    fn escaped(c: char) -> Option<&'static str> {
        match c {
            '&' => Some("&amp;"),
            '<' => Some("&lt;"),
            '>' => Some("&gt;"),
            _ => None,
        }
    }
    let width = |c: char| escaped(c).map_or(1, str::len);
    let total: usize = text.chars().map(width).sum();
    // When it does not all fit, one character is kept for the ellipsis.
    let budget = if total <= max {
        max
    } else {
        max.saturating_sub(1)
    };
    let mut out = String::with_capacity(text.len().min(4 * max));
    let mut count = 0;
    for c in text.chars() {
        let w = width(c);
        if count + w > budget {
            out.push('…');
            return out;
        }
        match escaped(c) {
            Some(e) => out.push_str(e),
            None => out.push(c),
        }
        count += w;
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use serde_json::{json, Value};

    const AT: &str = "2025-06-01T12:00:00Z";

    fn discovered(id: &str) -> Alert {
        Alert::campaign_discovered(
            AT,
            id,
            143,
            format!("Campaign {id} discovered: 143 accounts."),
        )
    }

    fn parse(body: &Bytes) -> Value {
        serde_json::from_slice(body).unwrap()
    }

    fn block_texts(body: &Value) -> Vec<String> {
        body["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| {
                assert_eq!(b["type"], "section", "{b}");
                assert_eq!(b["text"]["type"], "mrkdwn", "{b}");
                b["text"]["text"].as_str().unwrap().to_owned()
            })
            .collect()
    }

    #[test]
    fn the_json_body_has_source_version_and_alerts_without_absent_fields() {
        let a = discovered("c-17")
            .with_score(0.91)
            .with_link("https://moat.example/campaigns/c-17");
        let body = parse(&render_json(std::slice::from_ref(&a)).unwrap());
        assert_eq!(
            body,
            json!({
                "source": "moat",
                "v": 1,
                "alerts": [{
                    "kind": "campaign_discovered",
                    "at": AT,
                    "campaign_id": "c-17",
                    "accounts": 143,
                    "score": 0.91,
                    "summary": "Campaign c-17 discovered: 143 accounts.",
                    "link": "https://moat.example/campaigns/c-17",
                }],
            })
        );
        let back: Alert = serde_json::from_value(body["alerts"][0].clone()).unwrap();
        assert_eq!(back, a);
        let action = Alert::action_applied(
            AT,
            AppliedAction {
                action: "block".into(),
                actor: "alice".into(),
                target: "acct-9".into(),
            },
            "alice blocked acct-9.",
        );
        let body = parse(&render_json(&[action]).unwrap());
        assert_eq!(body["alerts"][0]["kind"], "action_applied");
        assert_eq!(
            body["alerts"][0]["action"],
            json!({"action": "block", "actor": "alice", "target": "acct-9"})
        );
        assert!(body["alerts"][0].get("campaign_id").is_none());
        assert_eq!(parse(&render_json(&[]).unwrap())["alerts"], json!([]));
    }

    #[test]
    fn the_slack_body_has_text_and_one_mrkdwn_section_per_alert() {
        let grew = Alert::campaign_grew(AT, "c-17", 90, 1200, Some(1000), "c-17 grew past 1000.")
            .with_score(0.5)
            .with_link("https://moat.example/c/17?tab=members&x=1");
        let body = parse(&render_slack(&[discovered("c-17"), grew]).unwrap());
        assert_eq!(
            body.as_object().unwrap().keys().collect::<Vec<_>>(),
            ["blocks", "text"]
        );
        assert!(body["text"]
            .as_str()
            .unwrap()
            .starts_with("Moat: 2 alerts."));
        let texts = block_texts(&body);
        assert_eq!(texts.len(), 2);
        assert!(
            texts[0].starts_with("*Campaign discovered* · `c-17`\n"),
            "{}",
            texts[0]
        );
        assert!(texts[0].contains("143 accounts"), "{}", texts[0]);
        assert!(texts[1].contains("90 → 1200 accounts"), "{}", texts[1]);
        assert!(texts[1].contains("crossed 1000"), "{}", texts[1]);
        assert!(texts[1].contains("score 0.50"), "{}", texts[1]);
        assert!(
            texts[1].contains("<https://moat.example/c/17?tab=members&amp;x=1|Open in Moat>"),
            "{}",
            texts[1]
        );
    }

    #[test]
    fn slack_text_escapes_ampersand_and_angle_brackets() {
        let a = Alert::action_applied(
            AT,
            AppliedAction {
                action: "block".into(),
                actor: "<!channel>".into(),
                target: "a&b".into(),
            },
            "Blocked <@U123> & friends > 3 <https://evil.example|click>",
        )
        .with_campaign("c<1>");
        let body = parse(&render_slack(&[a]).unwrap());
        let text = &block_texts(&body)[0];
        assert!(
            text.contains(
                "Blocked &lt;@U123&gt; &amp; friends &gt; 3 &lt;https://evil.example|click&gt;"
            ),
            "{text}"
        );
        assert!(text.contains("`c&lt;1&gt;`"), "{text}");
        assert!(
            text.contains("`block` on `a&amp;b` by &lt;!channel&gt;"),
            "{text}"
        );
        assert!(
            !text.contains("<!channel>") && !text.contains("<@U123>"),
            "{text}"
        );
        let fallback = body["text"].as_str().unwrap();
        assert!(fallback.contains("&lt;@U123&gt; &amp;"), "{fallback}");
    }

    #[test]
    fn unsafe_links_are_not_made_clickable() {
        for link in [
            "javascript:alert(1)",
            "https://moat.example/a|b",
            "https://moat.example/a>b",
            "https://moat.example/a b",
        ] {
            let body = parse(&render_slack(&[discovered("c").with_link(link)]).unwrap());
            let text = &block_texts(&body)[0];
            assert!(!text.contains("Open in Moat"), "{link}: {text}");
        }
        let long = format!("https://moat.example/{}", "a".repeat(600));
        let body = parse(&render_slack(&[discovered("c").with_link(long)]).unwrap());
        assert!(!block_texts(&body)[0].contains("Open in Moat"));
    }

    #[test]
    fn slack_blocks_are_capped_at_fifty_with_a_count_of_the_rest() {
        let fifty: Vec<Alert> = (0..50).map(|i| discovered(&format!("c-{i}"))).collect();
        let texts = block_texts(&parse(&render_slack(&fifty).unwrap()));
        assert_eq!(texts.len(), 50);
        assert!(texts[49].contains("c-49"));

        let many: Vec<Alert> = (0..120).map(|i| discovered(&format!("c-{i}"))).collect();
        let body = parse(&render_slack(&many).unwrap());
        let texts = block_texts(&body);
        assert_eq!(texts.len(), SLACK_MAX_BLOCKS);
        assert!(texts[48].contains("c-48"));
        assert_eq!(texts[49], "…and 71 more alerts");
        assert!(body["text"]
            .as_str()
            .unwrap()
            .starts_with("Moat: 120 alerts."));

        let fifty_one: Vec<Alert> = (0..51).map(|i| discovered(&format!("c-{i}"))).collect();
        let texts = block_texts(&parse(&render_slack(&fifty_one).unwrap()));
        assert_eq!(texts[49], "…and 2 more alerts");
    }

    #[test]
    fn slack_sections_stay_under_slacks_limit_whatever_the_alert_holds() {
        let huge = "&<>".repeat(5000);
        let a = Alert::action_applied(
            huge.clone(),
            AppliedAction {
                action: huge.clone(),
                actor: huge.clone(),
                target: huge.clone(),
            },
            huge.clone(),
        )
        .with_campaign(huge.clone());
        let body = parse(&render_slack(&[a]).unwrap());
        let text = &block_texts(&body)[0];
        assert!(
            text.chars().count() <= SLACK_MAX_SECTION_CHARS,
            "{}",
            text.len()
        );
        assert!(body["text"].as_str().unwrap().chars().count() <= SLACK_TEXT_CHARS);
    }

    #[test]
    fn escaping_never_cuts_an_entity_in_half() {
        assert_eq!(escape_capped("a&b", 10), "a&amp;b");
        assert_eq!(escape_capped("abc", 3), "abc");
        assert_eq!(escape_capped("abcd", 3), "ab…");
        assert_eq!(escape_capped("a&b", 5), "a…");
        assert_eq!(escape_capped("a&b", 6), "a…");
        assert_eq!(escape_capped("a&bc", 7), "a&amp;…");
        assert_eq!(escape_capped("<", 4), "&lt;");
        assert_eq!(escape_capped("<", 3), "…");
        for max in 0..20 {
            let out = escape_capped("x&<>y&&", max);
            assert!(out.chars().count() <= max.max(1), "{max}: {out}");
            let cut = out.trim_end_matches('…');
            assert!(
                !cut.ends_with('&')
                    && !cut.ends_with("&a")
                    && !cut.ends_with("&am")
                    && !cut.ends_with("&l"),
                "{out}"
            );
        }
    }

    #[test]
    fn dedup_keys_ignore_time_summary_and_link_but_not_the_threshold() {
        let a = discovered("c-1");
        let mut b = discovered("c-1").with_link("https://x.example/");
        b.at = "2025-06-01T13:00:00Z".into();
        b.summary = "again".into();
        assert_eq!(a.dedup_key(), b.dedup_key());
        assert_ne!(a.dedup_key(), discovered("c-2").dedup_key());
        let g100 = Alert::campaign_grew(AT, "c-1", 90, 120, Some(100), "s");
        let g100b = Alert::campaign_grew(AT, "c-1", 95, 150, Some(100), "s");
        let g1000 = Alert::campaign_grew(AT, "c-1", 900, 1200, Some(1000), "s");
        assert_eq!(g100.dedup_key(), g100b.dedup_key());
        assert_ne!(g100.dedup_key(), g1000.dedup_key());
        assert_ne!(a.dedup_key(), g100.dedup_key());
        let act = |action: &str, target: &str, actor: &str| {
            Alert::action_applied(
                AT,
                AppliedAction {
                    action: action.into(),
                    actor: actor.into(),
                    target: target.into(),
                },
                "s",
            )
        };
        assert_eq!(
            act("block", "a1", "alice").dedup_key(),
            act("block", "a1", "bob").dedup_key()
        );
        assert_ne!(
            act("block", "a1", "alice").dedup_key(),
            act("throttle", "a1", "alice").dedup_key()
        );
        assert_ne!(
            act("block", "a1", "alice").dedup_key(),
            act("block", "a2", "alice").dedup_key()
        );
        // Quoting keeps ids with separators apart.
        assert_ne!(discovered("a:b").dedup_key(), discovered("a").dedup_key());
    }

    #[test]
    fn growth_crosses_the_largest_threshold_passed() {
        let t = [100, 1000, 10_000];
        assert_eq!(crossed_threshold(&t, 50, 99), None);
        assert_eq!(crossed_threshold(&t, 50, 100), Some(100));
        assert_eq!(crossed_threshold(&t, 100, 101), None);
        assert_eq!(crossed_threshold(&t, 99, 5000), Some(1000));
        assert_eq!(crossed_threshold(&t, 0, 20_000), Some(10_000));
        assert_eq!(crossed_threshold(&t, 5000, 200), None);
        assert_eq!(crossed_threshold(&[], 0, 10), None);
    }

    #[test]
    fn kinds_read_and_print_as_their_configuration_names() {
        for k in AlertKind::ALL {
            let json = serde_json::to_string(&k).unwrap();
            assert_eq!(json, format!("\"{k}\""));
            assert_eq!(serde_json::from_str::<AlertKind>(&json).unwrap(), k);
        }
    }
}

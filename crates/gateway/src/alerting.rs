//! The gateway's alerts (`[alerts]`): what to announce, handed to `moat_alerts`' dispatcher,
//! which posts, deduplicates, rate-limits and retries off the request path.
//!
//! Housekeeping compares the engine's campaigns every 10 seconds with the ones it saw last:
//! a new campaign is `campaign_discovered`, one whose size crossed a growth threshold is
//! `campaign_grew`. Campaigns already known at the first look after start are taken as the
//! baseline, not announced (a restart does not re-announce every campaign). An applied policy
//! reload is `action_applied`. The dispatcher needs the async runtime, so it starts at the
//! first housekeeping tick; alerts before that are not sent.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use moat_alerts::{
    Alert, AlertSender, AlertsConfig, AppliedAction, Dispatcher, Settings, Stats, WebhookClient,
};
use moat_types::Timestamp;

use crate::live::CampaignView;
use crate::metrics::Collect;
use crate::{lock, StartError};

/// Alerts: the settings, and the dispatcher once started.
#[derive(Debug)]
pub struct Alerting {
    settings: Option<Settings>,
    running: OnceLock<(AlertSender, Arc<Stats>)>,
    /// Campaign sizes at the last look; `None` before the first.
    known: Mutex<Option<HashMap<String, u64>>>,
}

impl Alerting {
    /// Validates `[alerts]` (reading the webhook URLs from their variables or files).
    pub fn new(cfg: &AlertsConfig) -> Result<Alerting, StartError> {
        let settings = cfg
            .validate(std::path::Path::new("."), |name| std::env::var(name).ok())
            .map_err(|e| StartError::Alerts(e.to_string()))?;
        Ok(Alerting {
            settings: (!settings.webhooks.is_empty()).then_some(settings),
            running: OnceLock::new(),
            known: Mutex::new(None),
        })
    }

    /// Whether any webhook is configured.
    pub fn enabled(&self) -> bool {
        self.settings.is_some()
    }

    /// Starts the dispatcher on the current runtime (once; later calls do nothing).
    pub fn start(&self) {
        let Some(settings) = &self.settings else {
            return;
        };
        if self.running.get().is_some() {
            return;
        }
        match Dispatcher::start(settings.clone(), WebhookClient::new()) {
            Ok((sender, handle)) => {
                let stats = handle.stats();
                // The handle is not kept: the dispatcher runs as long as the sender lives.
                drop(handle);
                let _ = self.running.set((sender, stats));
                tracing::info!(
                    webhooks = settings.webhooks.len(),
                    "alerts: dispatcher started"
                );
            }
            Err(e) => tracing::warn!(error = %e, "alerts: the dispatcher could not start"),
        }
    }

    fn send(&self, alert: Alert) {
        if let Some((sender, _)) = self.running.get() {
            sender.send(alert);
        }
    }

    /// Compares the engine's campaigns with the last look and announces what is new or grew.
    pub fn observe_campaigns(&self, now: Timestamp, campaigns: &HashMap<String, CampaignView>) {
        let Some(settings) = &self.settings else {
            return;
        };
        let sizes: HashMap<String, u64> = campaigns
            .iter()
            .map(|(id, c)| (id.clone(), c.accounts.len() as u64))
            .collect();
        let before = lock(&self.known).replace(sizes);
        if let Some(before) = before {
            for alert in changes(settings, &before, campaigns, now) {
                self.send(alert);
            }
        }
    }

    /// Announces an action applied by `actor` (`admin`, `sighup`, `file_watch`…).
    pub fn action_applied(&self, now: Timestamp, action: &str, actor: &str, target: &str) {
        if self.settings.is_none() {
            return;
        }
        self.send(Alert::action_applied(
            now.to_string(),
            AppliedAction {
                action: action.to_owned(),
                actor: actor.to_owned(),
                target: target.to_owned(),
            },
            format!("{action} by {actor}: {target}"),
        ));
    }

    /// Delivery statistics and the last deliveries, for `/admin/alerts`.
    pub fn status(&self) -> serde_json::Value {
        match (&self.settings, self.running.get()) {
            (None, _) => serde_json::json!({"enabled": false}),
            (Some(_), None) => serde_json::json!({"enabled": true, "running": false}),
            (Some(_), Some((_, stats))) => serde_json::json!({
                "enabled": true,
                "running": true,
                "stats": stats.snapshot(),
            }),
        }
    }
}

/// The alerts for campaigns new since `before` or grown past one of the thresholds.
fn changes(
    settings: &Settings,
    before: &HashMap<String, u64>,
    campaigns: &HashMap<String, CampaignView>,
    now: Timestamp,
) -> Vec<Alert> {
    let at = now.to_string();
    let mut out = Vec::new();
    for (id, c) in campaigns {
        let size = c.accounts.len() as u64;
        let alert = match before.get(id) {
            None => Alert::campaign_discovered(
                at.clone(),
                id.clone(),
                size,
                format!(
                    "Campaign {id} discovered: {size} accounts, score {:.2}",
                    c.score
                ),
            ),
            Some(&was) => match settings.crossed_threshold(was, size) {
                Some(t) => Alert::campaign_grew(
                    at.clone(),
                    id.clone(),
                    was,
                    size,
                    Some(t),
                    format!("Campaign {id} grew past {t} accounts: {was} → {size}"),
                ),
                None => continue,
            },
        };
        out.push(alert.with_score(c.score));
    }
    out.sort_by(|a, b| a.campaign_id.cmp(&b.campaign_id));
    out
}

/// Reads one counter of a webhook's statistics.
type Read = fn(&moat_alerts::WebhookSnapshot) -> u64;

/// `moat_alerts_*` samples for `/metrics`, one line per webhook.
pub struct AlertMetrics(pub Arc<Alerting>);

impl Collect for AlertMetrics {
    fn collect(&self, out: &mut String) {
        use std::fmt::Write;
        let Some((_, stats)) = self.0.running.get() else {
            return;
        };
        let s = stats.snapshot();
        crate::metrics::sample(
            out,
            "moat_alerts_queue_dropped",
            "counter",
            "Alerts dropped because the alert queue was full",
            s.queue_dropped,
        );
        let series: [(&str, &str, Read); 4] = [
            ("delivered", "Alerts a webhook accepted", |w| w.delivered),
            ("failed", "Alerts given up after the last attempt", |w| {
                w.failed
            }),
            (
                "deduplicated",
                "Alerts not sent again within the dedup window",
                |w| w.deduplicated,
            ),
            (
                "dropped",
                "Alerts dropped waiting for the rate limit",
                |w| w.dropped,
            ),
        ];
        for (name, help, value) in series {
            let _ = writeln!(out, "# HELP moat_alerts_{name} {help}");
            let _ = writeln!(out, "# TYPE moat_alerts_{name} counter");
            for w in &s.webhooks {
                // Webhook names are [a-z0-9_-]: safe as label values.
                let _ = writeln!(
                    out,
                    "moat_alerts_{name}_total{{webhook=\"{}\"}} {}",
                    w.name,
                    value(w)
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn without_webhooks_nothing_runs() {
        let a = Alerting::new(&AlertsConfig::default()).unwrap();
        assert!(!a.enabled());
        a.start();
        a.observe_campaigns(Timestamp::from_millis(0), &HashMap::new());
        assert_eq!(a.status()["enabled"], false);
    }

    fn view(id: &str, size: usize) -> CampaignView {
        CampaignView {
            campaign_id: id.to_owned(),
            score: 0.8,
            accounts: (0..size).map(|i| format!("acct_{i}")).collect(),
            first_detected_at: None,
            signals: Vec::new(),
        }
    }

    #[test]
    fn new_campaigns_and_crossed_thresholds_are_announced_once() {
        let settings = AlertsConfig::default()
            .validate(std::path::Path::new("."), |_| None)
            .unwrap();
        let before: HashMap<String, u64> = [("C-1".to_owned(), 90), ("C-2".to_owned(), 20)].into();
        let now: HashMap<String, CampaignView> = [
            ("C-1".to_owned(), view("C-1", 120)),
            ("C-2".to_owned(), view("C-2", 30)),
            ("C-3".to_owned(), view("C-3", 7)),
        ]
        .into();
        let alerts = changes(&settings, &before, &now, Timestamp::from_millis(0));
        let kinds: Vec<_> = alerts
            .iter()
            .map(|a| (a.campaign_id.clone().unwrap(), a.kind.as_str()))
            .collect();
        assert_eq!(
            kinds,
            [
                ("C-1".to_owned(), "campaign_grew"),
                ("C-3".to_owned(), "campaign_discovered")
            ]
        );
        assert_eq!(alerts[0].threshold, Some(100));
        // The next look, with nothing changed, says nothing.
        let after: HashMap<String, u64> = now
            .iter()
            .map(|(k, v)| (k.clone(), v.accounts.len() as u64))
            .collect();
        assert!(changes(&settings, &after, &now, Timestamp::from_millis(1)).is_empty());
    }

    #[test]
    fn a_missing_url_variable_is_refused_at_start_by_name() {
        let cfg = AlertsConfig::from_toml(
            "[alerts]\n[[alerts.webhook]]\nname = \"soc\"\nformat = \"json\"\nurl_env = \"MOAT_TEST_NO_SUCH_VARIABLE_9d2\"\n",
        )
        .unwrap();
        let err = Alerting::new(&cfg).unwrap_err().to_string();
        assert!(err.contains("MOAT_TEST_NO_SUCH_VARIABLE_9d2"), "{err}");
    }
}

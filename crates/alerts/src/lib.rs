//! Webhook alerts for investigators: when a campaign is discovered, grows past a threshold, or
//! an action is applied, Moat posts to the configured webhooks, generic JSON or
//! Slack-compatible.
//!
//! - [`config`]: the `[alerts]` section of the gateway's configuration, validated into
//!   [`Settings`]; webhook URLs come from environment variables or files and stay secret
//!   ([`WebhookUrl`]).
//! - [`alert`]: what an alert says ([`Alert`]), its deduplication key, and the two bodies,
//!   rendered by pure functions ([`render_json`], [`render_slack`]).
//! - [`dispatch`]: the [`Dispatcher`], off the request path: [`AlertSender::send`] never waits;
//!   per webhook, an event filter, deduplication, rate limiting with batching, and retries with
//!   backoff; [`Stats`] for the dashboard and the metrics.
//! - [`client`]: the HTTP and HTTPS client ([`WebhookClient`]) behind the [`Transport`] trait.
//!
//! *Invariant:* a webhook URL never appears in an error, a log line, a statistic or `Debug`
//! output; only its scheme and host do.
//!
//! Not the gateway's wiring: deciding when a campaign was discovered or grew is the caller's
//! ([`crossed_threshold`] helps), and so is exposing [`Stats`] as metrics.

pub mod alert;
pub mod client;
pub mod config;
pub mod dispatch;
mod error;

pub use alert::{crossed_threshold, render_json, render_slack, Alert, AlertKind, AppliedAction};
pub use client::{PostOutcome, Transport, WebhookClient};
pub use config::{AlertsConfig, Settings, Webhook, WebhookConfig, WebhookFormat, WebhookUrl};
pub use dispatch::{
    AlertSender, DeliveryRecord, Dispatcher, DispatcherHandle, Outcome, ShutdownReport, Stats,
    StatsSnapshot, WebhookSnapshot,
};
pub use error::AlertsError;

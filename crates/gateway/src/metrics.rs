//! Prometheus metrics of the gateway (`GET /metrics` on the admin listener).
//!
//! Label sets are bounded: endpoints are the fixed API paths, actions the policy's action
//! names, error kinds a fixed list. Never an account id, key or prompt.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// API endpoint label.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types, missing_docs)]
pub enum EndpointLabel {
    chat_completions,
    completions,
    responses,
    messages,
    models,
}

/// Labels of request counters.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// Endpoint.
    pub endpoint: EndpointLabel,
    /// `2xx`, `4xx`, `5xx`.
    pub class: &'static str,
}

/// Labels of the action counter.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabels {
    /// The action's name (`allow`, `throttle`, `withhold_reasoning`…).
    pub action: &'static str,
    /// Whether it was enforced (`enforced`) or only recorded by a shadow rule (`shadow`).
    pub mode: &'static str,
}

/// Labels of the upstream error counter.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// `connect`, `timeout`, `status`, `body`, `stream`.
    pub kind: &'static str,
}

/// Labels of the policy reload counter.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReloadLabels {
    /// `ok` or `rejected`.
    pub result: &'static str,
}

/// Labels of the intelligence match counter.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct IntelLabels {
    /// The source (partner) name, as the operator named it when pulling.
    pub source: String,
}

/// Counters fed from other components at scrape time.
pub trait Collect: Send + Sync {
    /// Appends `name value` samples (already in exposition format) to `out`.
    fn collect(&self, out: &mut String);
}

/// The gateway's metrics.
pub struct Metrics {
    registry: Registry,
    /// Requests by endpoint and status class.
    pub requests: Family<RequestLabels, Counter>,
    /// Policy actions taken.
    pub actions: Family<ActionLabels, Counter>,
    /// Upstream failures.
    pub upstream_errors: Family<ErrorLabels, Counter>,
    /// Time the gateway adds to a request (seconds): everything but waiting for upstream.
    pub overhead: Histogram,
    /// Streams cut because a token budget ran out.
    pub streams_cut: Counter,
    /// Reasoning withheld (responses).
    pub reasoning_withheld: Counter,
    /// Reasoning tokens restored into requests.
    pub reasoning_restored: Counter,
    /// Summaries that fell back.
    pub summary_fallbacks: Counter,
    /// Shared (Redis) throttle calls that failed: served on local buckets or refused.
    pub throttle_unavailable: Counter,
    /// Policy reloads.
    pub reloads: Family<ReloadLabels, Counter>,
    /// Requests in flight.
    pub in_flight: Gauge,
    /// Requests a partner's indicators matched, by source.
    pub intel_matches: Family<IntelLabels, Counter>,
    extra: Vec<Arc<dyn Collect>>,
    /// Bytes of the last exposition, to size the next buffer.
    last_len: AtomicU64,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new(Vec::new())
    }
}

impl Metrics {
    /// Registers every metric; `extra` collectors add their samples at scrape time.
    pub fn new(extra: Vec<Arc<dyn Collect>>) -> Self {
        let mut registry = Registry::with_prefix("moat");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("requests", "Requests answered", requests.clone());
        let actions = Family::<ActionLabels, Counter>::default();
        registry.register("actions", "Policy actions by kind", actions.clone());
        let upstream_errors = Family::<ErrorLabels, Counter>::default();
        registry.register(
            "upstream_errors",
            "Upstream failures by kind",
            upstream_errors.clone(),
        );
        // 10 µs .. ~10 ms, doubling.
        let overhead = Histogram::new((0..11).map(|i| 10e-6 * f64::from(1u32 << i)));
        registry.register(
            "overhead_seconds",
            "Time the gateway adds to a request, excluding the upstream's own time",
            overhead.clone(),
        );
        let streams_cut = Counter::default();
        registry.register(
            "streams_cut",
            "Streams ended early because a token budget ran out",
            streams_cut.clone(),
        );
        let reasoning_withheld = Counter::default();
        registry.register(
            "reasoning_withheld",
            "Responses whose reasoning was withheld or summarized",
            reasoning_withheld.clone(),
        );
        let reasoning_restored = Counter::default();
        registry.register(
            "reasoning_restored",
            "Sealed reasoning tokens restored into requests",
            reasoning_restored.clone(),
        );
        let summary_fallbacks = Counter::default();
        registry.register(
            "summary_fallbacks",
            "Summaries that failed and fell back",
            summary_fallbacks.clone(),
        );
        let throttle_unavailable = Counter::default();
        registry.register(
            "throttle_shared_unavailable",
            "Shared (Redis) throttle calls that failed; the request was served on this gateway's own buckets (fail open) or refused (fail closed)",
            throttle_unavailable.clone(),
        );
        let reloads = Family::<ReloadLabels, Counter>::default();
        registry.register(
            "policy_reloads",
            "Policy reloads by result",
            reloads.clone(),
        );
        let in_flight = Gauge::default();
        registry.register("in_flight", "Requests in flight", in_flight.clone());
        let intel_matches = Family::<IntelLabels, Counter>::default();
        registry.register(
            "intel_matches",
            "Requests a partner's indicators matched, by source",
            intel_matches.clone(),
        );
        Metrics {
            registry,
            requests,
            actions,
            upstream_errors,
            overhead,
            streams_cut,
            reasoning_withheld,
            reasoning_restored,
            summary_fallbacks,
            throttle_unavailable,
            reloads,
            in_flight,
            intel_matches,
            extra,
            last_len: AtomicU64::new(4096),
        }
    }

    /// Counts one request that the indicators of `sources` matched.
    pub fn count_intel(&self, sources: &[&str]) {
        for s in sources {
            self.intel_matches
                .get_or_create(&IntelLabels {
                    source: (*s).to_owned(),
                })
                .inc();
        }
    }

    /// Adds a collector.
    pub fn with(mut self, c: Arc<dyn Collect>) -> Self {
        self.extra.push(c);
        self
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(self.last_len.load(Ordering::Relaxed) as usize + 256);
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode_registry(&mut out, &self.registry);
        for c in &self.extra {
            c.collect(&mut out);
        }
        out.push_str("# EOF\n");
        self.last_len.store(out.len() as u64, Ordering::Relaxed);
        out
    }
}

/// Appends a counter or gauge sample with its help and type lines.
pub fn sample(out: &mut String, name: &str, kind: &str, help: &str, value: u64) {
    use std::fmt::Write;
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    let suffix = if kind == "counter" { "_total" } else { "" };
    let _ = writeln!(out, "{name}{suffix} {value}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_bounded_labels_and_eof() {
        let m = Metrics::default();
        m.actions
            .get_or_create(&ActionLabels {
                action: "withhold_reasoning",
                mode: "enforced",
            })
            .inc();
        m.overhead.observe(42e-6);
        let text = m.render();
        assert!(
            text.contains("moat_actions_total{action=\"withhold_reasoning\",mode=\"enforced\"} 1"),
            "{text}"
        );
        assert!(text.contains("moat_overhead_seconds_count 1"), "{text}");
        assert!(text.ends_with("# EOF\n"));
        assert_eq!(text.matches("# EOF").count(), 1, "{text}");
    }
}

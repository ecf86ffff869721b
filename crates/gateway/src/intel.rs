//! Partners' threat intelligence at the edge: the indicators `moat intel pull` stored in the
//! intel database, compiled into [`Feeds`] that every request is matched against. The policy
//! reads the outcome as `intel.match` and `intel.sources`.
//!
//! The database is read whole at start and again whenever an import lands in it (its
//! generation changes); a database that cannot be read keeps the feeds in force and the error
//! is shown on `/admin/intel`. Not here: pulling (`moat intel pull`), the TAXII protocol and
//! the indicator grammar (`moat-taxii`, `moat-intel`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use moat_intel::{Feeds, Hit, PartnerKey, Probe};
use moat_taxii::intel_db::IntelDb;

use crate::config::IntelSection;
use crate::{lock, StartError};

/// The feeds in force and where they come from.
#[derive(Debug)]
pub struct Intel {
    feeds: ArcSwap<Feeds>,
    db: Option<PathBuf>,
    keys: BTreeMap<String, PartnerKey>,
    /// The database generation the feeds were loaded from.
    generation: Mutex<Option<i64>>,
    /// What the last load found, or why it failed, for `/admin/intel`.
    report: Mutex<serde_json::Value>,
    /// Seconds between database checks.
    pub reload_interval_s: u64,
}

impl Intel {
    /// No intelligence: nothing ever matches.
    pub fn none() -> Intel {
        Intel {
            feeds: ArcSwap::from_pointee(Feeds::default()),
            db: None,
            keys: BTreeMap::new(),
            generation: Mutex::new(None),
            report: Mutex::new(serde_json::json!({"enabled": false})),
            reload_interval_s: 0,
        }
    }

    /// Reads the partner keys and loads the database; at start an unreadable key file or
    /// database is an error.
    pub fn load(cfg: &IntelSection) -> Result<Intel, StartError> {
        let Some(db) = &cfg.db else {
            return Ok(Intel::none());
        };
        let mut keys = BTreeMap::new();
        for (source, file) in &cfg.keys {
            let bytes = std::fs::read(file)
                .map_err(|e| StartError::Intel(format!("keys.{source} {}: {e}", file.display())))?;
            let key = PartnerKey::from_file_bytes(&bytes)
                .map_err(|e| StartError::Intel(format!("keys.{source}: {e}")))?;
            keys.insert(source.clone(), key);
        }
        let intel = Intel {
            feeds: ArcSwap::from_pointee(Feeds::default()),
            db: Some(db.clone()),
            keys,
            generation: Mutex::new(None),
            report: Mutex::new(serde_json::Value::Null),
            reload_interval_s: cfg.reload_interval_ms.div_ceil(1000),
        };
        intel
            .refresh()
            .map_err(|e| StartError::Intel(format!("db {}: {e}", db.display())))?;
        Ok(intel)
    }

    /// Whether requests are matched at all.
    pub fn enabled(&self) -> bool {
        self.db.is_some()
    }

    /// Reloads the feeds if the database changed since the last load; `Ok(true)` when new
    /// feeds are in force. Blocking (SQLite): call it from `spawn_blocking`.
    pub fn refresh(&self) -> Result<bool, String> {
        let Some(path) = &self.db else {
            return Ok(false);
        };
        let outcome = (|| -> Result<bool, String> {
            let db = IntelDb::open(path).map_err(|e| e.to_string())?;
            let generation = db.generation().map_err(|e| e.to_string())?;
            if *lock(&self.generation) == Some(generation) {
                return Ok(false);
            }
            let (feeds, report) = db.load(&self.keys).map_err(|e| e.to_string())?;
            let indicators: usize = report.sources.iter().map(|s| s.matchable).sum();
            tracing::info!(generation, indicators, "intel: feeds loaded");
            self.feeds.store(Arc::new(feeds));
            *lock(&self.generation) = Some(generation);
            *lock(&self.report) = serde_json::json!({
                "enabled": true,
                "generation": generation,
                "indicators": indicators,
                "sources": report.sources,
            });
            Ok(true)
        })();
        if let Err(e) = &outcome {
            tracing::warn!(error = %e, "intel: cannot load the database; the feeds in force stay");
            let mut r = lock(&self.report);
            if let Some(obj) = r.as_object_mut() {
                obj.insert("error".to_owned(), e.clone().into());
            } else {
                *r = serde_json::json!({"enabled": true, "error": e});
            }
        } else if let Some(obj) = lock(&self.report).as_object_mut() {
            obj.remove("error");
        }
        outcome
    }

    /// What is loaded, for `/admin/intel`.
    pub fn status(&self) -> serde_json::Value {
        lock(&self.report).clone()
    }

    /// The latest `n` imports recorded in the intel database (newest first): partner, where
    /// from, when, what they held; `None` without a database.
    pub fn imports(
        &self,
        n: usize,
    ) -> Option<Result<Vec<moat_taxii::intel_db::ImportRow>, String>> {
        let path = self.db.as_ref()?;
        Some((|| {
            let db = IntelDb::open(path).map_err(|e| e.to_string())?;
            let mut rows = db.imports().map_err(|e| e.to_string())?;
            rows.sort_by_key(|r| std::cmp::Reverse(r.id));
            rows.truncate(n);
            Ok(rows)
        })())
    }

    /// The feeds in force.
    pub fn feeds(&self) -> Arc<Feeds> {
        self.feeds.load_full()
    }
}

/// The names of the sources that matched, deduplicated, in the order first seen.
pub fn sources<'f>(hits: &[Hit<'f>]) -> Vec<&'f str> {
    let mut out: Vec<&str> = Vec::new();
    for h in hits {
        if !out.contains(&h.source) {
            out.push(h.source);
        }
    }
    out
}

/// What the hits matched on, deduplicated, in [`moat_intel::HitKind`] order (`intel.kinds`).
pub fn kinds(hits: &[Hit<'_>]) -> Vec<&'static str> {
    let mut kinds: Vec<moat_intel::HitKind> = hits.iter().map(|h| h.kind).collect();
    kinds.sort_unstable();
    kinds.dedup();
    kinds.into_iter().map(moat_intel::HitKind::name).collect()
}

/// The decision record's note of what matched: `intel: source indicator (kind), …`, at most a
/// few entries (the record is for an operator, the feed has the rest).
pub fn detail(hits: &[Hit<'_>]) -> Option<String> {
    const SHOWN: usize = 4;
    if hits.is_empty() {
        return None;
    }
    let mut s = String::from("intel:");
    for (i, h) in hits.iter().take(SHOWN).enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&format!(" {} {} ({:?})", h.source, h.indicator, h.kind));
    }
    if hits.len() > SHOWN {
        s.push_str(&format!(" and {} more", hits.len() - SHOWN));
    }
    Some(s)
}

/// Matches one request; empty when intelligence is off.
pub fn matches<'f>(feeds: &'f Feeds, probe: &Probe<'_>) -> Vec<Hit<'f>> {
    let mut hits = Vec::new();
    if !feeds.is_empty() {
        feeds.matches(probe, &mut hits);
    }
    hits
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use moat_taxii::intel_db::Provenance;
    use moat_types::Timestamp;

    fn indicator(id: &str, pattern: &str) -> serde_json::Value {
        serde_json::json!({
            "type": "indicator", "spec_version": "2.1",
            "id": format!("indicator--{id}"),
            "created": "2026-03-01T00:00:00.000Z", "modified": "2026-03-01T00:00:00.000Z",
            "pattern": pattern, "pattern_type": "stix",
            "valid_from": "2026-03-01T00:00:00Z"
        })
    }

    fn import(path: &std::path::Path, source: &str, objects: &[serde_json::Value]) {
        let mut db = IntelDb::open(path).unwrap();
        let provenance = Provenance {
            source: source.to_owned(),
            url: "file:test".to_owned(),
            collection: String::new(),
            pulled_at: "2026-03-02T00:00:00Z".to_owned(),
            added_after: None,
        };
        db.import(&provenance, objects, None).unwrap();
    }

    fn probe(ip: &str) -> Probe<'static> {
        Probe {
            ts: "2026-04-01T00:00:00Z".parse::<Timestamp>().unwrap(),
            ip: Some(ip.parse().unwrap()),
            asn: None,
            user_agent: "",
            ja4: "",
            templates: &[],
            payment: None,
        }
    }

    /// An intel database with partner-a's 203.0.113.0/24, and the intel loaded from it.
    fn one_block(dir: &std::path::Path) -> (std::path::PathBuf, Intel) {
        let db = dir.join("intel.db");
        import(
            &db,
            "partner-a",
            &[indicator(
                "8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
                "[ipv4-addr:value ISSUBSET '203.0.113.0/24']",
            )],
        );
        let intel = Intel::load(&IntelSection {
            db: Some(db.clone()),
            ..IntelSection::default()
        })
        .unwrap();
        (db, intel)
    }

    #[test]
    fn without_a_database_nothing_matches() {
        let intel = Intel::load(&IntelSection::default()).unwrap();
        assert!(!intel.enabled());
        assert!(matches(&intel.feeds(), &probe("203.0.113.7")).is_empty());
        assert_eq!(intel.status()["enabled"], false);
    }

    #[test]
    fn an_import_is_picked_up_at_the_next_refresh() {
        let dir = tempfile::tempdir().unwrap();
        let (db, intel) = one_block(dir.path());
        let feeds = intel.feeds();
        let hits = matches(&feeds, &probe("203.0.113.7"));
        assert_eq!(hits.len(), 1);
        assert_eq!(sources(&hits), ["partner-a"]);
        assert_eq!(kinds(&hits), ["address"]);
        let note = detail(&hits).unwrap();
        assert_eq!(
            note,
            "intel: partner-a indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f (Address)"
        );
        assert!(matches(&feeds, &probe("198.51.100.7")).is_empty());
        // Nothing changed: no reload.
        assert!(!intel.refresh().unwrap());

        import(
            &db,
            "partner-b",
            &[indicator(
                "1f2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
                "[ipv4-addr:value = '198.51.100.7']",
            )],
        );
        assert!(intel.refresh().unwrap());
        let feeds = intel.feeds();
        let hits = matches(&feeds, &probe("198.51.100.7"));
        assert_eq!(sources(&hits), ["partner-b"]);
        assert_eq!(intel.status()["indicators"], 2);
    }

    #[test]
    fn an_unreadable_database_keeps_the_feeds_in_force() {
        let dir = tempfile::tempdir().unwrap();
        let (db, intel) = one_block(dir.path());
        std::fs::remove_file(&db).unwrap();
        std::fs::create_dir(&db).unwrap();
        assert!(intel.refresh().is_err());
        assert!(intel.status()["error"].is_string());
        assert_eq!(matches(&intel.feeds(), &probe("203.0.113.9")).len(), 1);
    }

    #[test]
    fn a_bad_key_file_is_refused_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("short.key");
        std::fs::write(&key, "too short").unwrap();
        let err = Intel::load(&IntelSection {
            db: Some(dir.path().join("intel.db")),
            keys: [("partner-a".to_owned(), key)].into(),
            ..IntelSection::default()
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("keys.partner-a"), "{err}");
        assert!(!err.contains("too short"), "{err}");
    }

    #[test]
    fn the_detail_names_at_most_four_hits() {
        let hits: Vec<Hit<'_>> = (0..6)
            .map(|_| Hit {
                source: "p",
                indicator: "indicator--x",
                kind: moat_intel::HitKind::Asn,
            })
            .collect();
        let note = detail(&hits).unwrap();
        assert!(note.ends_with("and 2 more"), "{note}");
        assert_eq!(sources(&hits), ["p"]);
        assert_eq!(kinds(&hits), ["asn"]);
        assert_eq!(detail(&[]), None);
    }
}

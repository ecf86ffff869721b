//! The conformance suite over [`SqliteStore`], in memory and on file, plus what only a file
//! database has: reopening, concurrent readers, and refusing a newer schema.

// Test helpers outside `#[test]` functions unwrap too; a failure there is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[macro_use]
mod conformance;

use std::sync::Arc;

use moat_store::migrate::{latest_version, SQLITE_MIGRATIONS};
use moat_store::{ExchangeQuery, SqliteStore, Store, StoreError};
use tempfile::TempDir;

fn in_memory() -> (SqliteStore, ()) {
    (SqliteStore::in_memory().unwrap(), ())
}

fn on_file() -> (SqliteStore, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("moat.db")).unwrap();
    (store, dir)
}

mod memory {
    use super::*;
    store_conformance!(in_memory);
}

mod file {
    use super::*;
    store_conformance!(on_file);
}

#[test]
fn reopened_file_keeps_records_and_version() {
    let (store, dir) = on_file();
    let x = conformance::rich_exchange();
    store.append_exchanges(std::slice::from_ref(&x)).unwrap();
    drop(store);
    let store = SqliteStore::open(&dir.path().join("moat.db")).unwrap();
    assert_eq!(
        store.schema_version().unwrap(),
        latest_version(SQLITE_MIGRATIONS)
    );
    assert_eq!(
        store.exchanges(&ExchangeQuery::default()).unwrap().items,
        vec![x.clone()]
    );
    // Idempotency survives a restart: the request id is still known.
    assert_eq!(store.append_exchanges(&[x]).unwrap().duplicates, 1);
}

#[test]
fn database_from_a_newer_build_is_refused() {
    let (store, dir) = on_file();
    drop(store);
    let path = dir.path().join("moat.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "INSERT INTO schema_version (version, name, applied_at_ms) VALUES (99, 'future', 0)",
        [],
    )
    .unwrap();
    drop(conn);
    let err = SqliteStore::open(&path).unwrap_err();
    assert!(
        matches!(err, StoreError::SchemaTooNew { found: 99, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("moat.db"), "{err}");
}

#[test]
fn file_that_is_not_a_database_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junk.db");
    std::fs::write(&path, vec![0xAB; 8192]).unwrap();
    assert!(SqliteStore::open(&path).is_err());
}

#[test]
fn readers_and_writer_work_concurrently() {
    let (store, _dir) = on_file();
    let store = Arc::new(store);
    let writer = {
        let store = Arc::clone(&store);
        std::thread::spawn(move || {
            for b in 0..20 {
                let xs: Vec<_> = (0..100)
                    .map(|i| conformance::exchange("a", Some(&format!("r{b}-{i}")), b * 100 + i, 1))
                    .collect();
                store.append_exchanges(&xs).unwrap();
            }
        })
    };
    let mut last = 0;
    while !writer.is_finished() {
        let n = store.count_exchanges().unwrap();
        assert!(n >= last && n % 100 == 0, "batches are atomic: saw {n}");
        last = n;
    }
    writer.join().unwrap();
    assert_eq!(store.count_exchanges().unwrap(), 2_000);
}

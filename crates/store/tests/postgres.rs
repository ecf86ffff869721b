//! The conformance suite over [`PostgresStore`], plus what only a server database has:
//! migrations shared by several processes (idempotent, refusing a newer schema, racing first
//! connects), connection errors that do not leak the password, and reconnecting.
//!
//! Selected by `MOAT_TEST_POSTGRES`, a connection string such as
//! `host=127.0.0.1 user=postgres dbname=test`; without it, the tests that need a server pass
//! after printing that they were skipped. Each test works in a fresh schema of its own, dropped
//! with everything in it at the end, so tests run in parallel and leave nothing behind.

// Test helpers outside `#[test]` functions unwrap too; a failure there is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[macro_use]
mod conformance;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{SystemTime, UNIX_EPOCH};

use moat_store::migrate::{latest_version, POSTGRES_MIGRATIONS};
use moat_store::{
    AccountQuery, AuditEntry, AuditQuery, DecisionQuery, DecisionRecord, ExchangeQuery,
    FeatureCursor, FeatureLog, PostgresStore, Store, StoreError,
};
use moat_types::Timestamp;
use postgres::{Client, NoTls};

/// The environment variable that selects these tests.
const URL_VAR: &str = "MOAT_TEST_POSTGRES";

/// A password that must never appear in an error or a `Debug` output.
const SECRET: &str = "hunter2-do-not-log";

/// The connection string to test against, or `None` (printing why) to skip.
fn server_url() -> Option<String> {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            eprintln!("skipped: {URL_VAR} is not set (a PostgreSQL connection string)");
            None
        }
    }
}

/// `url` with one more parameter, in either form of connection string.
fn with_param(url: &str, key: &str, value: &str) -> String {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let sep = if url.contains('?') { '&' } else { '?' };
        format!("{url}{sep}{key}={value}")
    } else {
        format!("{url} {key}={value}")
    }
}

/// A schema name no other test or test run uses.
fn unique_schema() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "moat_test_{}_{}_{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Drops its schema, with everything in it, when dropped.
struct FreshSchema {
    url: String,
    name: String,
}

impl FreshSchema {
    fn new() -> Option<Self> {
        Some(FreshSchema {
            url: server_url()?,
            name: unique_schema(),
        })
    }

    fn connect(&self) -> Result<PostgresStore, StoreError> {
        PostgresStore::connect_schema(&self.url, &self.name)
    }

    /// A plain client whose unqualified names resolve in this schema.
    fn client(&self) -> Client {
        let mut c = Client::connect(&self.url, NoTls).unwrap();
        c.batch_execute(&format!("SET search_path TO \"{}\"", self.name))
            .unwrap();
        c
    }
}

impl Drop for FreshSchema {
    fn drop(&mut self) {
        let dropped = Client::connect(&self.url, NoTls).and_then(|mut c| {
            c.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.name))
        });
        if let Err(e) = dropped {
            eprintln!("could not drop test schema {}: {e}", self.name);
        }
    }
}

fn fresh() -> Option<(PostgresStore, FreshSchema)> {
    let schema = FreshSchema::new()?;
    let store = schema.connect().unwrap();
    Some((store, schema))
}

store_conformance!(optional: fresh);

#[test]
fn migrations_are_idempotent_across_connects() {
    let Some((store, schema)) = fresh() else {
        return;
    };
    let x = conformance::rich_exchange();
    store.append_exchanges(std::slice::from_ref(&x)).unwrap();
    // A second store on the same schema while the first is open, then a third after it.
    let again = schema.connect().unwrap();
    drop(store);
    drop(again);
    let store = schema.connect().unwrap();
    let latest = latest_version(POSTGRES_MIGRATIONS);
    assert_eq!(store.schema_version().unwrap(), latest);
    let applied: i64 = schema
        .client()
        .query_one("SELECT count(*) FROM schema_version", &[])
        .unwrap()
        .get(0);
    assert_eq!(applied, i64::from(latest), "each migration recorded once");
    assert_eq!(
        store.exchanges(&ExchangeQuery::default()).unwrap().items,
        vec![x.clone()]
    );
    // Idempotency survives a reconnect: the request id is still known.
    assert_eq!(store.append_exchanges(&[x]).unwrap().duplicates, 1);
}

#[test]
fn connect_keeps_tables_in_the_connection_strings_search_path() {
    let Some(schema) = FreshSchema::new() else {
        return;
    };
    // `connect` (no schema argument) uses the session's current schema; point it at a fresh
    // one through the connection string so that the test leaves `public` alone.
    Client::connect(&schema.url, NoTls)
        .unwrap()
        .batch_execute(&format!("CREATE SCHEMA \"{}\"", schema.name))
        .unwrap();
    let url = with_param(
        &schema.url,
        "options",
        &format!("-csearch_path={}", schema.name),
    );
    let store = PostgresStore::connect(&url).unwrap();
    let again = PostgresStore::connect(&url).unwrap();
    store
        .append_exchanges(&[conformance::exchange("a", Some("r1"), 1, 1)])
        .unwrap();
    assert_eq!(again.count_exchanges().unwrap(), 1);
    let tables: i64 = schema
        .client()
        .query_one(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = $1",
            &[&schema.name],
        )
        .unwrap()
        .get(0);
    assert_eq!(
        tables, 7,
        "exchanges, decisions, audit, accounts, features, detections, schema_version"
    );
}

#[test]
fn schema_from_a_newer_build_is_refused() {
    let Some((store, schema)) = fresh() else {
        return;
    };
    drop(store);
    schema
        .client()
        .execute(
            "INSERT INTO schema_version (version, name, applied_at_ms) VALUES (99, 'future', 0)",
            &[],
        )
        .unwrap();
    let err = schema.connect().unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::SchemaTooNew {
                found: 99,
                supported,
                ..
            } if supported == latest_version(POSTGRES_MIGRATIONS)
        ),
        "{err}"
    );
    let text = err.to_string();
    assert!(text.contains(&schema.name), "names the schema: {text}");
    assert!(text.contains("upgrade moat"), "{text}");
    // Refusing changed nothing.
    let applied: i64 = schema
        .client()
        .query_one("SELECT max(version)::BIGINT FROM schema_version", &[])
        .unwrap()
        .get(0);
    assert_eq!(applied, 99);
}

#[test]
fn concurrent_first_connects_to_one_schema_all_succeed() {
    let Some(schema) = FreshSchema::new() else {
        return;
    };
    const N: usize = 6;
    let start = Arc::new(Barrier::new(N));
    let results: Vec<Result<u32, StoreError>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..N)
            .map(|_| {
                let start = Arc::clone(&start);
                let schema = &schema;
                s.spawn(move || {
                    start.wait();
                    schema.connect()?.schema_version()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for r in results {
        assert_eq!(r.unwrap(), latest_version(POSTGRES_MIGRATIONS));
    }
    let applied: i64 = schema
        .client()
        .query_one("SELECT count(*) FROM schema_version", &[])
        .unwrap()
        .get(0);
    assert_eq!(
        applied,
        i64::from(latest_version(POSTGRES_MIGRATIONS)),
        "migrations applied once, not once per process"
    );
}

#[test]
fn unparsable_connection_strings_are_errors_without_the_password() {
    for url in [
        format!("host=127.0.0.1 port=notaport user=moat password={SECRET}"),
        format!("postgres://moat:{SECRET}@127.0.0.1:notaport/test"),
        format!("host=127.0.0.1 password {SECRET}"),
        format!("host=127.0.0.1 password='{SECRET}"),
        format!("host=127.0.0.1 nonsense_option={SECRET}"),
    ] {
        let err = PostgresStore::connect(&url).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, StoreError::Postgres { .. }), "{url}: {text}");
        assert!(text.contains("connection string"), "{text}");
        assert!(!text.contains(SECRET), "password leaked: {text}");
        assert!(!text.contains("got `h`"), "first character leaked: {text}");
        assert!(!format!("{err:?}").contains(SECRET), "password leaked");
    }
}

#[test]
fn unreachable_server_is_an_error_naming_it_without_the_password() {
    // Port 1 on loopback: nothing listens there, so the connection is refused at once.
    for url in [
        format!("host=127.0.0.1 port=1 user=moat password={SECRET} dbname=moat"),
        format!("postgres://moat:{SECRET}@127.0.0.1:1/moat"),
    ] {
        let err = PostgresStore::connect(&url).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("connecting to postgres://moat@127.0.0.1:1/moat"),
            "{text}"
        );
        assert!(!text.contains(SECRET), "password leaked: {text}");
        assert!(!format!("{err:?}").contains(SECRET), "password leaked");
    }
}

#[test]
fn missing_database_is_reported_by_the_server() {
    let Some(url) = server_url() else {
        return;
    };
    let err =
        PostgresStore::connect(&with_param(&url, "dbname", "moat_no_such_db_x9")).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("connecting to"), "{text}");
    assert!(text.contains("moat_no_such_db_x9"), "{text}");
}

#[test]
fn debug_output_never_shows_the_password() {
    let Some(schema) = FreshSchema::new() else {
        return;
    };
    // Trust authentication ignores the password, so the store connects with it set.
    let store =
        PostgresStore::connect_schema(&with_param(&schema.url, "password", SECRET), &schema.name)
            .unwrap();
    let shown = format!("{store:?}");
    assert!(!shown.contains(SECRET), "{shown}");
    assert!(shown.contains(&schema.name), "{shown}");
    assert!(!store.database().contains(SECRET));
}

#[test]
fn invalid_schema_name_is_refused_before_connecting() {
    // No server needed: the name is checked first.
    let err =
        PostgresStore::connect_schema("host=127.0.0.1 port=1", "x; DROP TABLE y").unwrap_err();
    assert!(err.to_string().contains("schema name"), "{err}");
}

#[test]
fn every_string_field_round_trips_nul_and_unicode() {
    let Some((store, _schema)) = fresh() else {
        return;
    };
    let odd = "a\u{0}b é \u{1F600} \"q\" \\ \n";
    let mut x = conformance::exchange(odd, Some(odd), 1, 1);
    x.api_key_id = Some(odd.to_owned());
    store.append_exchanges(std::slice::from_ref(&x)).unwrap();
    assert_eq!(
        store
            .append_exchanges(std::slice::from_ref(&x))
            .unwrap()
            .duplicates,
        1
    );
    let q = ExchangeQuery {
        account_id: Some(odd.to_owned()),
        ..ExchangeQuery::default()
    };
    assert_eq!(store.exchanges(&q).unwrap().items, vec![x]);

    let d = DecisionRecord {
        ts: Timestamp::from_millis(2),
        request_id: Some(odd.to_owned()),
        account_id: odd.to_owned(),
        campaign_id: Some(odd.to_owned()),
        rule: Some(odd.to_owned()),
        actions: vec![odd.to_owned()],
        shadow: vec![odd.to_owned(), String::new()],
        risk: f64::MIN_POSITIVE,
        enforced: true,
        detail: Some(odd.to_owned()),
    };
    store.append_decisions(std::slice::from_ref(&d)).unwrap();
    let q = DecisionQuery {
        request_id: Some(odd.to_owned()),
        ..DecisionQuery::default()
    };
    assert_eq!(store.decisions(&q).unwrap().items, vec![d]);

    let e = AuditEntry {
        ts: Timestamp::from_millis(3),
        actor: odd.to_owned(),
        action: odd.to_owned(),
        target: Some(odd.to_owned()),
        detail: Some(String::new()),
    };
    store.append_audit(&e).unwrap();
    let q = AuditQuery {
        actor: Some(odd.to_owned()),
        ..AuditQuery::default()
    };
    assert_eq!(store.audit(&q).unwrap().items, vec![e]);
}

#[test]
fn batch_is_all_or_nothing() {
    let Some((store, schema)) = fresh() else {
        return;
    };
    // Make the third record of a batch fail inside the server: a trigger refuses it.
    schema
        .client()
        .batch_execute(
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
               IF NEW.ts_ms = 3 THEN RAISE EXCEPTION 'refused by test'; END IF;
               RETURN NEW;
             END $$;
             CREATE TRIGGER refuse BEFORE INSERT ON exchanges
               FOR EACH ROW EXECUTE FUNCTION refuse();",
        )
        .unwrap();
    let xs: Vec<_> = (1..=5)
        .map(|i| conformance::exchange("a", Some(&format!("r{i}")), i, 1))
        .collect();
    let err = store.append_exchanges(&xs).unwrap_err();
    assert!(err.to_string().contains("appending exchanges"), "{err}");
    assert_eq!(store.count_exchanges().unwrap(), 0);
    assert!(store
        .exchanges(&ExchangeQuery::default())
        .unwrap()
        .items
        .is_empty());
    // The writer session is still usable after the failed transaction.
    assert_eq!(store.append_exchanges(&xs[..2]).unwrap().new, 2);
}

#[test]
fn closed_sessions_are_reopened() {
    let Some(schema) = FreshSchema::new() else {
        return;
    };
    // A distinct application name lets the test find and end this store's sessions.
    let app = format!("moat_{}", schema.name);
    let store = PostgresStore::connect_schema(
        &with_param(&schema.url, "application_name", &app),
        &schema.name,
    )
    .unwrap();
    store
        .append_exchanges(&[conformance::exchange("a", Some("r1"), 1, 1)])
        .unwrap();
    let ended: i64 = schema
        .client()
        .query_one(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE application_name = $1) t",
            &[&app],
        )
        .unwrap()
        .get(0);
    assert_eq!(ended, 2, "a writer and a reader session");
    // The first call on each session may meet the break; the next one reconnects.
    let mut appended = false;
    for i in 0..3 {
        if store
            .append_exchanges(&[conformance::exchange(
                "a",
                Some(&format!("r{}", i + 2)),
                2,
                1,
            )])
            .is_ok()
        {
            appended = true;
            break;
        }
    }
    assert!(appended, "the writer reconnected");
    let counted = (0..3).find_map(|_| store.count_exchanges().ok());
    assert_eq!(counted, Some(2), "the reader reconnected");
}

#[test]
fn store_dropped_inside_async_code_does_not_panic() {
    // The blocking client's sessions own small runtimes that must not be dropped inside another
    // runtime's async context; the gateway's last `Arc<dyn Store>` may go there at shutdown.
    let Some((store, _schema)) = fresh() else {
        return;
    };
    store.count_exchanges().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async move { drop(store) });
}

#[test]
fn readers_and_writer_work_concurrently() {
    let Some((store, _schema)) = fresh() else {
        return;
    };
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
        let page = store.account_summaries(&AccountQuery::default()).unwrap();
        assert!(page.items.iter().all(|a| a.exchanges % 100 == 0));
    }
    writer.join().unwrap();
    assert_eq!(store.count_exchanges().unwrap(), 2_000);
}

#[test]
fn two_stores_on_one_schema_share_idempotency() {
    // Two gateways writing the same spill twice, at once: each record is stored once.
    let Some((first, schema)) = fresh() else {
        return;
    };
    let second = schema.connect().unwrap();
    let xs: Vec<_> = (0..500)
        .map(|i| conformance::exchange(&format!("acct{}", i % 7), Some(&format!("r{i}")), i, 1))
        .collect();
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| first.append_exchanges(&xs).unwrap());
        let b = s.spawn(|| second.append_exchanges(&xs).unwrap());
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_eq!(a.new + b.new, 500);
    assert_eq!(a.duplicates + b.duplicates, 500);
    assert_eq!(first.count_exchanges().unwrap(), 500);
    let accounts = second.account_summaries(&AccountQuery::default()).unwrap();
    assert_eq!(accounts.items.iter().map(|a| a.exchanges).sum::<u64>(), 500);
}

#[test]
fn feature_log_waits_for_a_transaction_that_commits_late() {
    let Some(schema) = FreshSchema::new() else {
        return;
    };
    let store = PostgresStore::connect_schema(&schema.url, &schema.name).unwrap();
    // A writer that began first and commits last: its row gets the older transaction id.
    let mut slow = Client::connect(&schema.url, NoTls).unwrap();
    slow.batch_execute(&format!("SET search_path TO \"{}\"", schema.name))
        .unwrap();
    let mut tx = slow.transaction().unwrap();
    tx.execute(
        "INSERT INTO features (ts_ms, account_id, request_id, body) VALUES (1, 'a', 'slow', '')",
        &[],
    )
    .unwrap();
    store
        .append_features(&[conformance::feature_row("b", Some("fast"), 2, b"x")])
        .unwrap();
    // The later transaction has committed, but reading it now would put the slow row behind
    // the cursor: nothing is read until the slow one ends.
    let (rows, cursor) = store.read_features(FeatureCursor::default(), 100).unwrap();
    assert!(rows.is_empty(), "{rows:?}");
    tx.commit().unwrap();
    // Other writers of the cluster (tests running meanwhile) may hold the horizon back a
    // moment longer.
    let mut ids = Vec::new();
    let mut cursor = cursor;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while ids.len() < 2 && std::time::Instant::now() < deadline {
        let (rows, next) = store.read_features(cursor, 100).unwrap();
        cursor = next;
        ids.extend(rows.iter().map(|r| r.request_id.clone().unwrap()));
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(ids, ["slow", "fast"]);
}

#[test]
fn one_leader_per_role_and_schema_until_it_lets_go() {
    let Some(schema) = FreshSchema::new() else {
        return;
    };
    let a = PostgresStore::connect_schema(&schema.url, &schema.name).unwrap();
    let b = PostgresStore::connect_schema(&schema.url, &schema.name).unwrap();
    let mut lead = a
        .try_lead("consolidate")
        .unwrap()
        .expect("the first one leads");
    assert!(lead.holds());
    assert!(
        b.try_lead("consolidate").unwrap().is_none(),
        "one leader at a time"
    );
    // Another role is independent.
    assert!(b.try_lead("other").unwrap().is_some());
    drop(lead);
    let mut next = b
        .try_lead("consolidate")
        .unwrap()
        .expect("released on drop");
    assert!(next.holds());
    // A leader whose session is killed (as when its process dies) loses the lock.
    schema
        .client()
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' \
             AND classid = $1::INT::OID AND objid = hashtext($2)::OID AND granted \
             AND pid <> pg_backend_pid()",
            &[&0x6c65_6164_i32, &format!("{}/consolidate", schema.name)],
        )
        .unwrap();
    assert!(!next.holds());
    assert!(a.try_lead("consolidate").unwrap().is_some());
}

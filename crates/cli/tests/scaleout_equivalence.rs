//! Scale-out equivalence: a simulator scenario replayed through two gateways, two workers and
//! the consolidator gives the same flagged accounts and campaigns as `moat analyze` on the
//! same log, and every gateway enforces those standings. Runs against the local PostgreSQL and
//! NATS JetStream when `MOAT_TEST_POSTGRES` and `MOAT_TEST_NATS` are set (`.ci/run` sets
//! them); skipped otherwise.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod scaleout;

use std::time::Duration;

use scaleout::*;

#[test]
fn two_gateways_and_two_workers_find_what_analyze_finds() {
    let Some(servers) = servers("two_gateways_and_two_workers_find_what_analyze_finds") else {
        return;
    };
    let (dir, _guard) = scratch();
    let dir = dir.as_path();
    let run = dir.join("run");
    sim(&run, "0.25", "5");
    let traffic = run.join("traffic.jsonl.gz");
    let n = count_exchanges(&traffic);
    let expected_path = dir.join("expected.jsonl");
    analyze(&run, &traffic, &expected_path);
    let expected = verdicts(&read_detections(&expected_path));
    assert!(
        expected.0.len() >= 10 && !expected.1.is_empty(),
        "the scenario must flag accounts and find campaigns: {} flagged, {} campaigns",
        expected.0.len(),
        expected.1.len()
    );

    let mock = start_mock();
    let dep = Deployment::new(dir, servers, mock, &run.join("accounts.jsonl"), 2, false);
    let _g0 = dep.gateway(0);
    let _g1 = dep.gateway(1);
    let _w0 = dep.worker("worker-0", "0-1");
    let _w1 = dep.worker("worker-1", "2-3");
    let got_path = dir.join("consolidated.jsonl");
    let mut consolidator = dep.consolidator(&got_path);

    let replay = dep.replay_command(&traffic, 8).output().unwrap();
    let said = ok(&replay);
    eprintln!("replay: {said}{}", String::from_utf8_lossy(&replay.stderr));

    let n_i64 = i64::try_from(n).unwrap();
    wait_for("every exchange stored", Duration::from_secs(180), || {
        dep.stored() == n_i64
    });
    assert_eq!(dep.stored_distinct(), n_i64, "each exchange stored once");
    // Both gateways have received the consolidator's standings for every exchange.
    wait_for(
        "the consolidator's standings at both gateways",
        Duration::from_secs(120),
        || dep.observed(0) == n as u64 && dep.observed(1) == n as u64,
    );
    let at_gateways = [dep.gateway_detections(0), dep.gateway_detections(1)];
    consolidator.stop();
    let consolidated = read_detections(&got_path);
    let got = verdicts(&consolidated);
    assert_eq!(
        got.0, expected.0,
        "flagged accounts: scale-out against moat analyze of the simulated log"
    );
    assert_eq!(got.1, expected.1, "campaigns (as member lists)");
    assert_eq!(
        dep.table_detections(),
        consolidated,
        "the database's detection table holds what the consolidator found"
    );
    for (g, d) in at_gateways.iter().enumerate() {
        assert_eq!(
            verdicts(d),
            got,
            "gateway {g} enforces the consolidator's standings"
        );
    }

    // And `moat analyze` over what the shared store holds says the same.
    let export = dir.join("export.jsonl");
    dep.export(&export);
    assert_eq!(count_exchanges(&export), n);
    let of_store = dir.join("of-store.jsonl");
    analyze(&run, &export, &of_store);
    assert_eq!(verdicts(&read_detections(&of_store)), got);
    dep.drop_schema();
}

//! Scale-out under faults: while a simulated scenario is replayed through two gateways, a
//! worker is killed with SIGKILL (and started again), Redis is restarted and PostgreSQL is
//! restarted. Afterwards every exchange the gateways answered is stored exactly once and the
//! consolidator's detections are those of `moat analyze` on the same log.
//!
//! It restarts the machine's own Redis and PostgreSQL, so it runs only when
//! `MOAT_TEST_RESTART_SERVERS=1` is set besides `MOAT_TEST_POSTGRES`, `MOAT_TEST_NATS` and
//! `MOAT_TEST_REDIS` (`.ci/run` sets them all), and it is the only test of its binary so that
//! nothing else of its run uses the servers meanwhile.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod scaleout;

use std::process::Command;
use std::time::Duration;

use scaleout::*;

fn sh(script: &str) {
    let status = Command::new("bash").args(["-c", script]).status().unwrap();
    assert!(status.success(), "{script}");
}

fn restart_redis() {
    sh("redis-cli -h 127.0.0.1 -p 6379 shutdown nosave >/dev/null 2>&1 || true");
    std::thread::sleep(Duration::from_millis(500));
    sh(
        "redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save '' --appendonly no \
        --dir /var/lib/redis --logfile /var/log/redis/ci.log",
    );
    wait_for("redis back", Duration::from_secs(30), || {
        Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", "6379", "ping"])
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("PONG"))
    });
}

fn restart_postgres() {
    sh("pg_ctlcluster --skip-systemctl-redirect \"$(ls /etc/postgresql | head -1)\" main restart");
    wait_for("postgres back", Duration::from_secs(60), || {
        Command::new("pg_isready")
            .args(["-h", "127.0.0.1", "-p", "5432", "-q"])
            .status()
            .is_ok_and(|s| s.success())
    });
}

#[test]
fn killed_worker_and_restarted_servers_lose_nothing() {
    let Some(servers) = servers("killed_worker_and_restarted_servers_lose_nothing") else {
        return;
    };
    if std::env::var("MOAT_TEST_RESTART_SERVERS").ok().as_deref() != Some("1")
        || servers.redis.is_none()
    {
        eprintln!("killed_worker_and_restarted_servers_lose_nothing: skipped (set MOAT_TEST_RESTART_SERVERS=1 and MOAT_TEST_REDIS)");
        return;
    }
    let (dir, _guard) = scratch();
    let dir = dir.as_path();
    let run = dir.join("run");
    sim(&run, "0.25", "7");
    let traffic = run.join("traffic.jsonl.gz");
    let n = count_exchanges(&traffic);
    let expected_path = dir.join("expected.jsonl");
    analyze(&run, &traffic, &expected_path);
    let expected = verdicts(&read_detections(&expected_path));

    let mock = start_mock();
    let dep = Deployment::new(dir, servers, mock, &run.join("accounts.jsonl"), 2, true);
    let _g0 = dep.gateway(0);
    let _g1 = dep.gateway(1);
    // Both workers share every partition, so the survivor of a kill carries on alone.
    let mut w0 = dep.worker("worker-0", "0-3");
    let _w1 = dep.worker("worker-1", "0-3");
    let got_path = dir.join("consolidated.jsonl");
    let mut consolidator = dep.consolidator(&got_path);

    let mut replaying = dep.replay_command(&traffic, 4);
    let replaying = std::thread::spawn(move || replaying.output().unwrap());
    let n_i64 = i64::try_from(n).unwrap();
    let reached = |share: i64| {
        wait_for("progress", Duration::from_secs(180), || {
            dep.stored() >= n_i64 * share / 10
        })
    };
    reached(2);
    w0.kill();
    eprintln!("SIGKILLed worker-0 at {} stored", dep.stored());
    let _w0 = dep.worker("worker-0b", "0-3");
    reached(4);
    eprintln!("restarting Redis at {} stored", dep.stored());
    restart_redis();
    reached(6);
    eprintln!("restarting PostgreSQL at {} stored", dep.stored());
    restart_postgres();

    let replay = replaying.join().unwrap();
    let said = ok(&replay);
    eprintln!("replay: {said}{}", String::from_utf8_lossy(&replay.stderr));
    wait_for("every exchange stored", Duration::from_secs(180), || {
        dep.stored() == n_i64
    });
    assert_eq!(
        dep.stored_distinct(),
        n_i64,
        "each exchange stored exactly once"
    );
    for g in 0..2 {
        let (_, health) = get(dep.gateways[g].1, "/health").unwrap();
        let v: serde_json::Value = serde_json::from_str(&health).unwrap();
        assert_eq!(v["recorder"]["dropped"], 0, "gateway {g}: {health}");
        assert_eq!(
            v["recorder"]["spilled"], v["recorder"]["recovered"],
            "gateway {g}: {health}"
        );
    }
    wait_for(
        "the consolidator's standings at both gateways",
        Duration::from_secs(120),
        || dep.observed(0) == n as u64 && dep.observed(1) == n as u64,
    );
    consolidator.stop();
    let got = verdicts(&read_detections(&got_path));
    assert_eq!(
        got.0, expected.0,
        "flagged accounts unchanged by the faults"
    );
    assert_eq!(got.1, expected.1, "campaigns unchanged by the faults");
    dep.drop_schema();
}

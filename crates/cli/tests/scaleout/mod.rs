//! A scale-out deployment of real `moat` processes against the local servers, for the
//! equivalence and fault tests: the mock upstream (in this process), gateways (`moat serve`
//! with `[engine] source = "bus"`), workers (`moat worker`) and the consolidator
//! (`moat consolidate`), all reading one configuration that points at a fresh PostgreSQL
//! schema and a fresh JetStream stream.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use moat_types::{Detection, Exchange};

/// The servers the tests run against, from the environment `.ci/run` sets.
pub struct Servers {
    pub postgres: String,
    pub nats: String,
    pub redis: Option<String>,
}

pub fn servers(test: &str) -> Option<Servers> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    match (var("MOAT_TEST_POSTGRES"), var("MOAT_TEST_NATS")) {
        (Some(postgres), Some(nats)) => Some(Servers {
            postgres,
            nats,
            redis: var("MOAT_TEST_REDIS"),
        }),
        _ => {
            eprintln!("{test}: skipped (set MOAT_TEST_POSTGRES and MOAT_TEST_NATS to run it)");
            None
        }
    }
}

/// A scratch directory and its guard; the guard is `None` (the directory is kept, to read the
/// processes' logs after a failure) when `MOAT_TEST_KEEP=1`.
pub fn scratch() -> (PathBuf, Option<tempfile::TempDir>) {
    let dir = tempfile::tempdir().unwrap();
    if std::env::var("MOAT_TEST_KEEP").ok().as_deref() == Some("1") {
        let path = dir.keep();
        eprintln!("keeping {}", path.display());
        return (path, None);
    }
    (dir.path().to_owned(), Some(dir))
}

pub fn moat() -> Command {
    Command::new(env!("CARGO_BIN_EXE_moat"))
}

pub fn ok(res: &Output) -> String {
    assert!(
        res.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&res.stderr)
    );
    String::from_utf8_lossy(&res.stdout).into_owned()
}

/// Simulates the small scenario at `scale` into `out`.
pub fn sim(out: &Path, scale: &str, seed: &str) {
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios/small.toml");
    ok(&moat()
        .args(["sim", "--scenario"])
        .arg(&scenario)
        .arg("--out")
        .arg(out)
        .args(["--seed", seed, "--scale", scale, "--quiet"])
        .output()
        .unwrap());
}

/// `moat analyze` of `traffic` with the run's accounts file, into `out`.
pub fn analyze(run: &Path, traffic: &Path, out: &Path) {
    ok(&moat()
        .arg("analyze")
        .arg(traffic)
        .arg("--accounts")
        .arg(run.join("accounts.jsonl"))
        .arg("--out")
        .arg(out)
        .arg("--quiet")
        .output()
        .unwrap());
}

pub fn read_detections(path: &Path) -> Vec<Detection> {
    moat_format::Reader::<Detection>::open(path, moat_format::ReadOptions::default())
        .unwrap()
        .map(|d| d.unwrap())
        .collect()
}

pub fn count_exchanges(path: &Path) -> usize {
    moat_format::Reader::<Exchange>::open(path, moat_format::ReadOptions::default())
        .unwrap()
        .count()
}

/// Flagged account ids (sorted) and campaigns as sorted member lists (sorted): what the
/// equivalence compares. Campaign numbers may differ between two runs only by tie order, so
/// campaigns are compared by who is in them.
pub fn verdicts(d: &[Detection]) -> (Vec<String>, Vec<Vec<String>>) {
    let mut flagged = Vec::new();
    let mut campaigns = Vec::new();
    for x in d {
        match x {
            Detection::Account(a) if a.flagged => flagged.push(a.account_id.clone()),
            Detection::Account(_) => {}
            Detection::Campaign(c) => {
                let mut m = c.accounts.clone();
                m.sort();
                campaigns.push(m);
            }
        }
    }
    flagged.sort();
    campaigns.sort();
    (flagged, campaigns)
}

/// A process that is killed when dropped, its output in `dir/NAME.log`.
pub struct Proc {
    pub name: String,
    pub child: Option<Child>,
    pub log: PathBuf,
}

impl Proc {
    pub fn spawn(name: &str, dir: &Path, mut cmd: Command) -> Proc {
        let log = dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).unwrap();
        let child = cmd
            .stdout(Stdio::from(file.try_clone().unwrap()))
            .stderr(Stdio::from(file))
            .spawn()
            .unwrap();
        Proc {
            name: name.to_owned(),
            child: Some(child),
            log,
        }
    }

    /// SIGKILL, as a crash.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if let Ok(Some(status)) = c.try_wait() {
                    assert!(
                        status.success(),
                        "{} exited with {status}: {}",
                        self.name,
                        self.output()
                    );
                    return;
                }
                if Instant::now() > deadline {
                    let _ = c.kill();
                    panic!("{} did not stop: {}", self.name, self.output());
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub const ADMIN_TOKEN: &str = "scaleout-test-token";

/// A GET on the loopback with the admin token; the status and the body.
pub fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer {ADMIN_TOKEN}\r\nconnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())?;
    // Chunked bodies: good enough for JSON answers to take the largest chunk's text.
    Some((status, dechunk(&body)))
}

fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    loop {
        let Some((size, after)) = rest.split_once("\r\n") else {
            return body.to_owned();
        };
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            return body.to_owned();
        };
        if n == 0 {
            return out;
        }
        let Some(chunk) = after.get(..n) else {
            return body.to_owned();
        };
        out.push_str(chunk);
        rest = after.get(n + 2..).unwrap_or("");
    }
}

pub fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One deployment's names and files.
pub struct Deployment {
    pub dir: PathBuf,
    pub schema: String,
    pub stream: String,
    pub servers: Servers,
    pub mock_port: u16,
    /// (api, admin) per gateway.
    pub gateways: Vec<(u16, u16)>,
    pub accounts: PathBuf,
    /// Redis key prefix, when the throttle is shared.
    pub redis_prefix: Option<String>,
}

impl Deployment {
    pub fn new(
        dir: &Path,
        servers: Servers,
        mock_port: u16,
        accounts: &Path,
        gateways: usize,
        shared_throttle: bool,
    ) -> Deployment {
        let unique = format!(
            "{}_{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
                % 1_000_000_000
        );
        let redis_prefix =
            (shared_throttle && servers.redis.is_some()).then(|| format!("moat-test-{unique}:"));
        let d = Deployment {
            dir: dir.to_owned(),
            schema: format!("moat_scale_{unique}"),
            stream: format!("SCALE{unique}"),
            servers,
            mock_port,
            gateways: (0..gateways).map(|_| (free_port(), free_port())).collect(),
            accounts: accounts.to_owned(),
            redis_prefix,
        };
        for g in 0..gateways {
            std::fs::write(d.config(g), d.config_text(g)).unwrap();
        }
        // A policy that throttles nobody in practice but makes every request consult the
        // shared buckets when they are configured.
        std::fs::write(
            dir.join("policy.toml"),
            "version = 1\ndefault = \"allow\"\n\n[[rule]]\nname = \"budget\"\nwhen = \"true\"\naction = \"throttle\"\nrequests_per_minute = 1000000\n",
        )
        .unwrap();
        d
    }

    pub fn config(&self, g: usize) -> PathBuf {
        self.dir.join(format!("moat-{g}.toml"))
    }

    fn config_text(&self, g: usize) -> String {
        let (api, admin) = self.gateways[g];
        let throttle = match &self.redis_prefix {
            Some(prefix) => format!(
                "[throttle]\nbackend = \"redis\"\nredis_url_env = \"MOAT_T_REDIS\"\nkey_prefix = \"{prefix}\"\n\n"
            ),
            None => String::new(),
        };
        let policy = if self.redis_prefix.is_some() {
            "[policy]\nfile = \"policy.toml\"\n\n"
        } else {
            ""
        };
        format!(
            "version = 1\n\n[listen]\naddr = \"127.0.0.1:{api}\"\n\n[upstream]\nurl = \"http://127.0.0.1:{mock}\"\n\n\
             [identity]\nmode = \"header\"\naccount_header = \"x-moat-account\"\ntrusted_proxy_hops = 1\n\
             time_header = \"x-moat-time\"\n\n[identity.headers]\nasn = \"x-client-asn\"\nja4 = \"x-client-ja4\"\ncountry = \"x-client-country\"\n\n\
             {policy}{throttle}[store]\nbackend = \"postgres\"\nurl_env = \"MOAT_T_STORE\"\nschema = \"{schema}\"\n\
             spill_dir = \"spill-{g}\"\n\n[bus]\nurl_env = \"MOAT_T_BUS\"\nstream = \"{stream}\"\n\
             subject_prefix = \"{prefix}\"\npartitions = 4\n\n[engine]\nsource = \"bus\"\naccounts_file = \"{accounts}\"\n\n\
             [admin]\naddr = \"127.0.0.1:{admin}\"\ntoken_env = \"MOAT_ADMIN_TOKEN\"\n",
            mock = self.mock_port,
            schema = self.schema,
            stream = self.stream,
            prefix = self.stream.to_lowercase(),
            accounts = self.accounts.display(),
        )
    }

    /// A `moat` command with the deployment's environment.
    pub fn cmd(&self) -> Command {
        let mut c = moat();
        c.current_dir(&self.dir)
            .env("MOAT_T_STORE", &self.servers.postgres)
            .env("MOAT_T_BUS", &self.servers.nats)
            .env("MOAT_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("MOAT_LOG", "info");
        if let Some(r) = &self.servers.redis {
            c.env("MOAT_T_REDIS", r);
        }
        c
    }

    pub fn gateway(&self, g: usize) -> Proc {
        let mut c = self.cmd();
        c.args(["serve", "--config"]).arg(self.config(g));
        let p = Proc::spawn(&format!("gateway-{g}"), &self.dir, c);
        let admin = self.gateways[g].1;
        wait_for("the gateway", Duration::from_secs(60), || {
            get(admin, "/health").is_some()
        });
        p
    }

    pub fn worker(&self, name: &str, partitions: &str) -> Proc {
        let mut c = self.cmd();
        c.args(["worker", "--config"]).arg(self.config(0)).args([
            "--partitions",
            partitions,
            "--batch",
            "200",
            "--ack-wait-s",
            "5",
        ]);
        Proc::spawn(name, &self.dir, c)
    }

    pub fn consolidator(&self, out: &Path) -> Proc {
        let mut c = self.cmd();
        c.args(["consolidate", "--config"])
            .arg(self.config(0))
            .args(["--settle-ms", "1500", "--out"])
            .arg(out);
        Proc::spawn("consolidate", &self.dir, c)
    }

    /// `moat replay` of `traffic` across every gateway, `concurrency` requests in flight.
    pub fn replay_command(&self, traffic: &Path, concurrency: usize) -> Command {
        let mut c = self.cmd();
        c.arg("replay").arg(traffic);
        for (api, _) in &self.gateways {
            c.args(["--target", &format!("http://127.0.0.1:{api}")]);
        }
        c.args([
            "--account-header",
            "x-moat-account",
            "--time-header",
            "x-moat-time",
        ])
        .args(["--concurrency", &concurrency.to_string(), "--quiet"]);
        c
    }

    /// Rows in the shared database's exchange table.
    pub fn stored(&self) -> i64 {
        let mut c = postgres::Client::connect(&self.servers.postgres, postgres::NoTls).unwrap();
        c.query_one(
            &format!("SELECT count(*) FROM \"{}\".exchanges", self.schema),
            &[],
        )
        .map(|r| r.get(0))
        .unwrap_or(-1)
    }

    /// Distinct request ids stored (equal to `stored` when nothing is stored twice).
    pub fn stored_distinct(&self) -> i64 {
        let mut c = postgres::Client::connect(&self.servers.postgres, postgres::NoTls).unwrap();
        c.query_one(
            &format!(
                "SELECT count(DISTINCT request_id) FROM \"{}\".exchanges",
                self.schema
            ),
            &[],
        )
        .map(|r| r.get(0))
        .unwrap_or(-1)
    }

    /// The store's exchanges as a log (in time order), for `moat analyze`.
    pub fn export(&self, out: &Path) {
        let store = moat_store::PostgresStore::connect_schema(&self.servers.postgres, &self.schema)
            .unwrap();
        let mut f = std::io::BufWriter::new(std::fs::File::create(out).unwrap());
        {
            let mut sink = |line: &str| {
                f.write_all(line.as_bytes())
                    .and_then(|()| f.write_all(b"\n"))
                    .map_err(|e| moat_store::StoreError::Unavailable(e.to_string()))
            };
            moat_store::Store::export_exchanges(&store, None, &mut sink).unwrap();
        }
        f.flush().unwrap();
    }

    /// The detections the consolidator keeps in the shared database.
    pub fn table_detections(&self) -> Vec<Detection> {
        let store = moat_store::PostgresStore::connect_schema(&self.servers.postgres, &self.schema)
            .unwrap();
        moat_store::DetectionLog::detections(&store).unwrap()
    }

    /// The gateway's view of the standings (its admin API), as detections.
    pub fn gateway_detections(&self, g: usize) -> Vec<Detection> {
        let (status, body) = get(self.gateways[g].1, "/admin/detections").unwrap();
        assert_eq!(status, 200, "{body}");
        body.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// The engine count a gateway reports (the consolidator's rows folded).
    pub fn observed(&self, g: usize) -> u64 {
        get(self.gateways[g].1, "/health")
            .and_then(|(_, b)| serde_json::from_str::<serde_json::Value>(&b).ok())
            .and_then(|v| v["engine"]["observed"].as_u64())
            .unwrap_or(0)
    }

    pub fn drop_schema(&self) {
        if let Ok(mut c) = postgres::Client::connect(&self.servers.postgres, postgres::NoTls) {
            let _ = c.batch_execute(&format!(
                "DROP SCHEMA IF EXISTS \"{}\" CASCADE",
                self.schema
            ));
        }
    }
}

/// The mock upstream on a thread of its own; its port.
pub fn start_mock() -> u16 {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let mock = moat_testkit::start(moat_testkit::MockConfig::default())
                .await
                .unwrap();
            tx.send(mock.addr().port()).unwrap();
            std::future::pending::<()>().await;
        });
    });
    rx.recv().unwrap()
}

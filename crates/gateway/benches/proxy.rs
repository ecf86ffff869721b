//! End-to-end benchmark of `moat serve` against a mock upstream and, when installed, its peers
//! (nginx as the floor for any proxy hop, LiteLLM as a Python AI gateway), all measured in the
//! same run and the same layout. It answers "what does putting Moat in front of a model server
//! cost?": added latency at concurrency 1, the highest open-loop rate at which p99 stays under
//! 1 ms, CPU per request, added time to first token on streams, and memory with 100k accounts.
//! It is not a micro-benchmark of the detection engine or the policy language (those have their
//! own criterion benches in their crates), and it asserts nothing: targets are printed as
//! PASS/FAIL beside the figures.
//!
//! Run it with:
//!
//! ```text
//! cargo build --release -p moat -p moat-testkit
//! cargo bench -p moat-gateway --bench proxy
//! ```
//!
//! It finds `target/release/moat` and `target/release/moat-mock` (override with `MOAT_BIN` and
//! `MOAT_MOCK_BIN`). `MOAT_BENCH_QUICK=1` runs tiny counts as a smoke test.
//! `MOAT_BENCH_ONLY=4` runs the memory measure alone.
//! `MOAT_BENCH_MOCK=nodelay` replaces `moat-mock` with the same mock router served by this
//! binary (`serve_mock`); it was needed while `moat-mock` left Nagle's algorithm on, and is
//! kept to check a mock build against the library's router. Peers are optional,
//! each selected by an environment variable naming its binary, and reported as skipped when
//! absent:
//!
//! - `MOAT_BENCH_NGINX=/usr/sbin/nginx` (Debian: `apt-get install -y nginx`); run with a
//!   generated config: one worker, `daemon off`, upstream keepalive, `proxy_http_version 1.1`,
//!   `proxy_buffering off`.
//! - `MOAT_BENCH_LITELLM=/tmp/litellm-venv/bin/litellm`, installed outside the repository from
//!   the hash-locked `benches/litellm-requirements.txt`:
//!
//!   ```text
//!   python3 -m venv /tmp/litellm-venv
//!   /tmp/litellm-venv/bin/pip install --require-hashes -r crates/gateway/benches/litellm-requirements.txt
//!   ```
//!
//!   It runs with an empty environment (`env -i` semantics), `LITELLM_LOCAL_MODEL_COST_MAP=True`
//!   and a config with a master key and one model routed to the mock.
//!
//! Layout (see `shared/benchmarking.md`): the mock upstream and this load generator are pinned to
//! core 0, the proxy under test to core 1 (`taskset`), so every proxy pays two cross-core hops;
//! compare Moat with nginx, never with the direct figures alone. Every process runs from a
//! temporary folder and is stopped by a guard when the bench ends, errors or panics.
//!
//! Moat runs with scoring on: the engine, a policy with a shadow rule, a block rule for flagged
//! campaign members, a withhold-reasoning rule for risk >= 0.8 and a throttle every request is
//! charged against (at a limit it never reaches), API-key identity with four keys, the SQLite
//! store (with its defaults: the background writer and a 4,096-record queue), one worker
//! thread, no overhead header.
//!
//! Latest result (Intel Xeon VM, 2 cores, 2026-12-02 18:31 UTC, commit 2d07005, nginx 1.22.1
//! and LiteLLM 1.106.2; BENCHMARKS.md has this run beside ten others): added latency at
//! concurrency 1, p50/p99: moat +0.172/+0.336 ms, nginx +0.156/+0.222 ms, LiteLLM
//! +9.750/+11.773 ms; open-loop p99 <= 1 ms: direct 10k/s, nginx 7k/s, moat at no step (1.105 ms
//! at 1k/s; 5k-10k/s in the three runs before); CPU per request: moat 96.8 µs, nginx 63.8 µs;
//! streaming added TTFT p50/p99: moat +0.409/+0.462 ms, nginx +0.262/+0.289 ms, 0 chunks lost;
//! RSS after 100k accounts: 89.5 MiB (peak 94.1 MiB), engine and recorder caught up 1.0 s after
//! the last answer.

use std::error::Error as StdError;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener as StdListener, TcpStream as StdStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

type Error = Box<dyn StdError + Send + Sync>;
type Res<T> = Result<T, Error>;

/// The account-id header the RSS measure's gateway trusts.
const ACCOUNT_HEADER: &str = "x-moat-account";
/// The client keys Moat is configured with (the benchmark sends the first).
fn client_key(i: usize) -> String {
    format!("sk-bench-{i:022}")
}
/// LiteLLM's master key (it refuses to start without one).
const LITELLM_MASTER: &str = "sk-bench-litellm-master";
/// The model every request asks for; the mock answers it in the plain dialect.
const MODEL: &str = "bench-model";
/// Time allowed for one request before it counts as an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Added-latency targets for Moat at concurrency 1 (ms).
const TARGET_ADDED_P50_MS: f64 = 0.15;
const TARGET_ADDED_P99_MS: f64 = 0.5;
/// Open-loop target for Moat (req/s with p99 <= 1 ms and no error).
const TARGET_RATE: u32 = 5_000;
/// Added time-to-first-token target (ms, p99).
const TARGET_TTFT_P99_MS: f64 = 1.0;
/// Memory target with 100k accounts (MiB).
const TARGET_RSS_MIB: f64 = 100.0;

/// How much of everything to do: the full run or the quick smoke test.
struct Plan {
    quick: bool,
    /// `MOAT_BENCH_STOP_AFTER=N`: end after measure N (1 or 2), for quick comparisons while
    /// tuning; no summary is printed.
    stop_after: Option<u32>,
    /// `MOAT_BENCH_ONLY=4`: run measure 4 (memory with many accounts) alone, for tuning.
    only_accounts: bool,
    warmup: usize,
    rounds: usize,
    per_round: usize,
    steps: Vec<u32>,
    step_time: Duration,
    /// Rounds per load step (interleaved across targets); a step's figures are the medians
    /// over its rounds, so one stall of the virtual machine does not decide a step.
    step_rounds: usize,
    max_conns: usize,
    stream_rounds: usize,
    streams_per_round: usize,
    chunks: usize,
    interval_ms: u64,
    accounts: usize,
    account_conns: usize,
}

impl Plan {
    fn from_env() -> Plan {
        let quick = std::env::var("MOAT_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
        let stop_after = std::env::var("MOAT_BENCH_STOP_AFTER")
            .ok()
            .and_then(|v| v.parse().ok());
        let only_accounts = std::env::var("MOAT_BENCH_ONLY").is_ok_and(|v| v.trim() == "4");
        // `MOAT_BENCH_STEPS=1000,2000`: other open-loop rates, for tuning.
        let steps_override: Option<Vec<u32>> = std::env::var("MOAT_BENCH_STEPS")
            .ok()
            .map(|v| v.split(',').filter_map(|r| r.trim().parse().ok()).collect())
            .filter(|v: &Vec<u32>| !v.is_empty());
        let mut plan = if quick {
            Plan {
                quick,
                stop_after,
                only_accounts,
                warmup: 20,
                rounds: 2,
                per_round: 100,
                steps: vec![1_000, 3_000],
                step_time: Duration::from_millis(700),
                step_rounds: 1,
                max_conns: 64,
                stream_rounds: 2,
                streams_per_round: 5,
                chunks: 32,
                interval_ms: 2,
                accounts: 2_000,
                account_conns: 64,
            }
        } else {
            Plan {
                quick,
                stop_after,
                only_accounts,
                warmup: 300,
                rounds: 5,
                per_round: 1_000,
                steps: vec![1_000, 2_000, 3_000, 5_000, 7_000, 10_000],
                step_time: Duration::from_secs(2),
                step_rounds: 3,
                max_conns: 128,
                stream_rounds: 5,
                streams_per_round: 20,
                chunks: 32,
                interval_ms: 2,
                accounts: 100_000,
                account_conns: 64,
            }
        };
        if let Some(steps) = steps_override {
            plan.steps = steps;
        }
        plan
    }
}

fn main() {
    // Cargo passes `--bench`; the only argument of this binary's own is `--serve-mock`, with
    // which it re-executes itself as the TCP_NODELAY mock (`MOAT_BENCH_MOCK=nodelay`).
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--serve-mock") {
        if let Err(e) = serve_mock(&args[1..]) {
            eprintln!("proxy bench mock: {e}");
            std::process::exit(1);
        }
        return;
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("proxy bench: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = rt.block_on(run()) {
        eprintln!("proxy bench: {e}");
        std::process::exit(1);
    }
}

// ---------------------------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------------------------

/// A process this bench started. Dropping it stops the process and everything it spawned
/// (nginx workers, Python helpers), first politely (SIGTERM, so Moat flushes its store) and
/// then with SIGKILL, so nothing outlives the bench, also on error or panic.
struct Proc {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The process and its descendants, for CPU accounting and for stopping them all.
    fn tree(&self) -> Vec<u32> {
        let mut out = vec![self.pid()];
        let mut i = 0;
        while i < out.len() {
            out.extend(children(out[i]));
            i += 1;
        }
        out
    }

    /// Fails with the tail of the process's log when it has already exited.
    fn check_alive(&mut self) -> Res<()> {
        if let Ok(Some(status)) = self.child.try_wait() {
            return Err(format!(
                "{} exited early ({status}); log tail:\n{}",
                self.name,
                log_tail(&self.log)
            )
            .into());
        }
        Ok(())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let tree = self.tree();
        signal(&tree, "TERM");
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Descendants that ignored SIGTERM (or lost their parent) go too.
        let rest: Vec<u32> = tree
            .into_iter()
            .skip(1)
            .filter(|p| Path::new(&format!("/proc/{p}")).exists())
            .collect();
        signal(&rest, "KILL");
    }
}

fn signal(pids: &[u32], sig: &str) {
    if pids.is_empty() {
        return;
    }
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .args(pids.iter().map(u32::to_string))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for task in tasks.flatten() {
        if let Ok(text) = std::fs::read_to_string(task.path().join("children")) {
            out.extend(
                text.split_whitespace()
                    .filter_map(|p| p.parse::<u32>().ok()),
            );
        }
    }
    out
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// Whether `taskset` can be used; without it processes run unpinned (and the bench says so).
fn have_taskset() -> bool {
    Command::new("taskset")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Starts `bin args` pinned to `core`, from `dir`, output to `dir/NAME.log`.
fn spawn(
    name: &'static str,
    core: u32,
    bin: &Path,
    args: &[String],
    dir: &Path,
    env: Option<&[(&str, String)]>,
    stdout_piped: bool,
) -> Res<Proc> {
    let log = dir.join(format!("{name}.log"));
    let file = std::fs::File::create(&log)?;
    let mut cmd = if have_taskset() {
        let mut c = Command::new("taskset");
        c.arg("-c").arg(core.to_string()).arg(bin);
        c
    } else {
        Command::new(bin)
    };
    cmd.args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stderr(file.try_clone()?);
    if stdout_piped {
        cmd.stdout(Stdio::piped());
    } else {
        cmd.stdout(file);
    }
    if let Some(vars) = env {
        // An empty environment, as `env -i` gives, so no credential can leak into a peer.
        cmd.env_clear();
        for (k, v) in vars {
            cmd.env(k, v);
        }
    }
    let child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {name} ({}): {e}", bin.display()))?;
    Ok(Proc { name, child, log })
}

/// A free port on the loopback (bound, read, released; the race with other programs is
/// accepted for a benchmark).
fn free_port() -> Res<SocketAddr> {
    let l = StdListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?)
}

/// Waits until `addr` accepts TCP connections.
async fn wait_tcp(p: &mut Proc, addr: SocketAddr, limit: Duration) -> Res<()> {
    let deadline = Instant::now() + limit;
    loop {
        p.check_alive()?;
        if StdStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{} did not listen on {addr} within {limit:?}; log tail:\n{}",
                p.name,
                log_tail(&p.log)
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until `GET path` on `addr` answers 200.
async fn wait_http(p: &mut Proc, addr: SocketAddr, path: &str, limit: Duration) -> Res<()> {
    let deadline = Instant::now() + limit;
    loop {
        p.check_alive()?;
        if let Ok((200, _)) = get(addr, path).await {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{} did not answer GET {path} on {addr} within {limit:?}; log tail:\n{}",
                p.name,
                log_tail(&p.log)
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn bin_path(var: &str, name: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(var) {
        return PathBuf::from(p);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"),
        PathBuf::from,
    );
    target.join("release").join(name)
}

/// A peer selected by an environment variable: `None` (skipped, with the reason) when the
/// variable is unset or names no file.
fn peer(var: &str) -> Result<PathBuf, String> {
    match std::env::var_os(var) {
        None => Err(format!("skipped ({var} not set)")),
        Some(p) => {
            let p = PathBuf::from(p);
            if p.is_file() {
                Ok(p)
            } else {
                Err(format!("skipped ({var}={} not found)", p.display()))
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The processes under test
// ---------------------------------------------------------------------------------------------

/// The mock upstream served by this binary itself: `moat_testkit`'s router, like `moat-mock`,
/// but with TCP_NODELAY on every accepted connection. `moat-mock` (axum's `serve`) leaves
/// Nagle's algorithm on, so on a keep-alive connection each small SSE chunk after the first
/// waits for the reader's delayed ACK (about 40 ms); streams then arrive in bursts and time to
/// first token measures the kernel, not the proxy.
fn serve_mock(args: &[String]) -> Res<()> {
    use axum::serve::ListenerExt;
    let mut cfg = moat_testkit::MockConfig {
        record_limit: 0,
        ..moat_testkit::MockConfig::default()
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value: u64 = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value"))?
            .parse()?;
        match flag.as_str() {
            "--chunks" => cfg.chunks = usize::try_from(value)?,
            "--interval-ms" => cfg.interval = Duration::from_millis(value),
            other => return Err(format!("unknown flag {other:?}").into()),
        }
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        println!("moat-mock listening on http://{addr}/v1");
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        axum::serve(listener, moat_testkit::router(cfg)).await?;
        Ok(())
    })
}

async fn start_mock(bin: &Path, dir: &Path, plan: &Plan) -> Res<(Proc, SocketAddr)> {
    // One mock serves every measure: the chunk count and interval only shape streamed replies.
    let builtin = std::env::var("MOAT_BENCH_MOCK").is_ok_and(|v| v == "nodelay");
    let (bin, mut args) = if builtin {
        (std::env::current_exe()?, vec!["--serve-mock".to_owned()])
    } else {
        (bin.to_path_buf(), Vec::new())
    };
    let common: Vec<String> = if builtin {
        vec![
            "--chunks".to_owned(),
            plan.chunks.to_string(),
            "--interval-ms".to_owned(),
            plan.interval_ms.to_string(),
        ]
    } else {
        [
            "--listen",
            "127.0.0.1:0",
            "--threads",
            "1",
            "--chunks",
            &plan.chunks.to_string(),
            "--interval-ms",
            &plan.interval_ms.to_string(),
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect()
    };
    args.extend(common);
    let mut p = spawn("moat-mock", 0, &bin, &args, dir, None, true)?;
    let stdout = p.child.stdout.take().ok_or("moat-mock: no stdout pipe")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    // "moat-mock listening on http://ADDR/v1"
    let addr = line
        .trim()
        .strip_prefix("moat-mock listening on http://")
        .and_then(|s| s.strip_suffix("/v1"))
        .and_then(|s| s.parse::<SocketAddr>().ok());
    let Some(addr) = addr else {
        p.check_alive()?;
        return Err(format!("moat-mock printed {line:?}, not its address").into());
    };
    wait_tcp(&mut p, addr, Duration::from_secs(10)).await?;
    Ok((p, addr))
}

const POLICY: &str = r#"# Benchmark policy: a handful of realistic rules, every one evaluated per request.
version = 1
default = "allow"

[[rule]]
name = "trial: block hosting-provider ranges"
when = 'client.ip in [cidr("203.0.113.0/24"), cidr("2001:db8::/32")] and not account.verified'
action = "block"
mode = "shadow"

[[rule]]
name = "block flagged campaign members"
when = 'campaign.member and account.flagged and campaign.score >= 0.5'
action = "block"
status = 403
message = "request refused by policy"

[[rule]]
name = "withhold reasoning from risky accounts"
when = 'account.risk >= 0.8'
action = "withhold_reasoning"

[[rule]]
name = "watch scripted clients"
when = 'client.user_agent contains "python-requests" and request.cot > 0.5'
action = "shadow"

[[rule]]
name = "everyone has a budget"
when = 'true'
action = "throttle"
requests_per_minute = 100000000
"#;

/// Starts a Moat gateway in `dir` (its own store and policy). `header_identity` switches from
/// API keys to the trusted account header.
async fn start_moat(
    bin: &Path,
    dir: &Path,
    upstream: SocketAddr,
    header_identity: bool,
) -> Res<(Proc, SocketAddr, SocketAddr)> {
    std::fs::create_dir_all(dir)?;
    let listen = free_port()?;
    let admin = free_port()?;
    std::fs::write(dir.join("policy.toml"), POLICY)?;
    let mut identity = String::new();
    if header_identity {
        let _ = writeln!(
            identity,
            "[identity]\nmode = \"header\"\naccount_header = \"{ACCOUNT_HEADER}\""
        );
    } else {
        identity.push_str("[identity]\nmode = \"api_key\"\n");
        for i in 1..=4 {
            let _ = writeln!(
                identity,
                "[[identity.keys]]\nsha256 = \"{}\"\naccount = \"acct-bench-{i}\"\nid = \"key-{i}\"",
                moat_gateway::identity::hash_key(&client_key(i))
            );
        }
    }
    let config = format!(
        r#"version = 1
[listen]
addr = "{listen}"
overhead_header = false
[upstream]
url = "http://{upstream}"
{identity}
[policy]
file = "policy.toml"
[store]
path = "moat.db"
spill_dir = "spill"
[admin]
addr = "{admin}"
token_env = "MOAT_BENCH_ADMIN_TOKEN"
[failure]
mode = "open"
"#
    );
    std::fs::write(dir.join("moat.toml"), config)?;
    let args: Vec<String> = ["serve", "--config", "moat.toml", "--threads", "1"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    let mut p = spawn("moat", 1, bin, &args, dir, None, false)?;
    wait_http(&mut p, admin, "/health", Duration::from_secs(30)).await?;
    wait_tcp(&mut p, listen, Duration::from_secs(5)).await?;
    Ok((p, listen, admin))
}

async fn start_nginx(bin: &Path, dir: &Path, upstream: SocketAddr) -> Res<(Proc, SocketAddr)> {
    let dir = dir.join("nginx");
    std::fs::create_dir_all(&dir)?;
    let listen = free_port()?;
    let d = dir.display();
    // keepalive_requests is raised on both sides because the default (1000) closes a
    // keep-alive connection in the middle of a sequential round.
    let conf = format!(
        r#"worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    keepalive_requests 10000000;
    keepalive_timeout 300s;
    upstream mock {{
        server {upstream};
        keepalive 256;
        keepalive_requests 10000000;
    }}
    server {{
        listen {listen};
        location / {{
            proxy_pass http://mock;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
        }}
    }}
}}
"#
    );
    let conf_path = dir.join("nginx.conf");
    std::fs::write(&conf_path, conf)?;
    let args = vec![
        "-p".to_owned(),
        d.to_string(),
        "-e".to_owned(),
        format!("{d}/error.log"),
        "-c".to_owned(),
        conf_path.display().to_string(),
    ];
    let mut p = spawn("nginx", 1, bin, &args, &dir, None, false)?;
    wait_tcp(&mut p, listen, Duration::from_secs(10)).await?;
    Ok((p, listen))
}

async fn start_litellm(bin: &Path, dir: &Path, upstream: SocketAddr) -> Res<(Proc, SocketAddr)> {
    let dir = dir.join("litellm");
    std::fs::create_dir_all(&dir)?;
    let listen = free_port()?;
    let conf = format!(
        r#"model_list:
  - model_name: {MODEL}
    litellm_params:
      model: openai/{MODEL}
      api_base: http://{upstream}/v1
      api_key: sk-mock-upstream
general_settings:
  master_key: {LITELLM_MASTER}
litellm_settings:
  telemetry: false
"#
    );
    std::fs::write(dir.join("litellm.yaml"), conf)?;
    let args: Vec<String> = [
        "--config",
        "litellm.yaml",
        "--host",
        "127.0.0.1",
        "--port",
        &listen.port().to_string(),
        "--num_workers",
        "1",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let env = [
        ("PATH", "/usr/local/bin:/usr/bin:/bin".to_owned()),
        ("HOME", dir.display().to_string()),
        ("LITELLM_LOCAL_MODEL_COST_MAP", "True".to_owned()),
        ("LITELLM_LOG", "ERROR".to_owned()),
    ];
    let mut p = spawn("litellm", 1, bin, &args, &dir, Some(&env), false)?;
    wait_http(
        &mut p,
        listen,
        "/health/liveliness",
        Duration::from_secs(180),
    )
    .await?;
    Ok((p, listen))
}

// ---------------------------------------------------------------------------------------------
// HTTP client
// ---------------------------------------------------------------------------------------------

/// Where requests go and what they carry.
#[derive(Clone)]
struct Target {
    name: &'static str,
    addr: SocketAddr,
    auth: Option<String>,
}

async fn connect(addr: SocketAddr) -> Res<SendRequest<Full<Bytes>>> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// A one-off GET on a fresh connection (readiness and health checks).
async fn get(addr: SocketAddr, path: &str) -> Res<(u16, Bytes)> {
    let mut s = connect(addr).await?;
    let req = hyper::Request::get(path)
        .header(hyper::header::HOST, addr.to_string())
        .body(Full::new(Bytes::new()))?;
    let resp = tokio::time::timeout(REQUEST_TIMEOUT, s.send_request(req)).await??;
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

fn chat_body(stream: bool) -> Bytes {
    let v = serde_json::json!({
        "model": MODEL,
        "messages": [{"role": "user", "content": "What is the capital of France? Answer in one word."}],
        "max_tokens": 64,
        "stream": stream,
    });
    Bytes::from(v.to_string())
}

fn chat_request(
    t: &Target,
    body: &Bytes,
    account: Option<&str>,
) -> Res<hyper::Request<Full<Bytes>>> {
    let mut b = hyper::Request::post("/v1/chat/completions")
        .header(hyper::header::HOST, t.addr.to_string())
        .header(hyper::header::CONTENT_TYPE, "application/json");
    if let Some(a) = &t.auth {
        b = b.header(hyper::header::AUTHORIZATION, format!("Bearer {a}"));
    }
    if let Some(a) = account {
        b = b.header(ACCOUNT_HEADER, a);
    }
    Ok(b.body(Full::new(body.clone()))?)
}

/// One non-streamed request on `s`, body read to the end; fails on a non-200 status.
async fn send_one(s: &mut SendRequest<Full<Bytes>>, req: hyper::Request<Full<Bytes>>) -> Res<()> {
    s.ready().await?;
    let resp = s.send_request(req).await?;
    let status = resp.status();
    let body = resp.into_body().collect().await?.to_bytes();
    if status != hyper::StatusCode::OK {
        let head = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
        return Err(format!("status {status}: {head}").into());
    }
    Ok(())
}

/// A sequential keep-alive client: one connection, one request at a time, reconnecting after
/// an error (which is counted).
struct SeqClient {
    target: Target,
    conn: Option<SendRequest<Full<Bytes>>>,
    errors: usize,
    last_error: Option<String>,
}

impl SeqClient {
    fn new(target: Target) -> SeqClient {
        SeqClient {
            target,
            conn: None,
            errors: 0,
            last_error: None,
        }
    }

    /// Runs `n` requests, returning the latency (ns) of each successful one.
    async fn run(&mut self, n: usize, body: &Bytes) -> Vec<u64> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let t0 = Instant::now();
            match self.once(body).await {
                Ok(()) => out.push(nanos(t0.elapsed())),
                Err(e) => {
                    self.errors += 1;
                    self.last_error = Some(e.to_string());
                    self.conn = None;
                }
            }
        }
        out
    }

    async fn once(&mut self, body: &Bytes) -> Res<()> {
        if self.conn.is_none() {
            self.conn = Some(connect(self.target.addr).await?);
        }
        let req = chat_request(&self.target, body, None)?;
        let conn = self.conn.as_mut().ok_or("no connection")?;
        tokio::time::timeout(REQUEST_TIMEOUT, send_one(conn, req)).await?
    }
}

// ---------------------------------------------------------------------------------------------
// Statistics
// ---------------------------------------------------------------------------------------------

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Nearest-rank percentile (`p` in 0..=1) of `v` in ms; NaN when empty.
fn pct_ms(v: &mut [u64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_unstable();
    let rank = (p * v.len() as f64).ceil() as usize;
    let i = rank.clamp(1, v.len()) - 1;
    v[i] as f64 / 1e6
}

fn median(v: &[f64]) -> f64 {
    let mut v: Vec<f64> = v.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn pass(ok: bool) -> &'static str {
    if ok {
        "PASS"
    } else {
        "FAIL"
    }
}

fn ms(x: f64) -> String {
    if x.is_nan() {
        "-".to_owned()
    } else {
        format!("{x:.3}")
    }
}

fn signed_ms(x: f64) -> String {
    if x.is_nan() {
        "-".to_owned()
    } else {
        format!("{x:+.3}")
    }
}

fn ratio(a: f64, b: f64) -> String {
    if a.is_nan() || b.is_nan() || b.abs() < 1e-9 {
        "-".to_owned()
    } else {
        format!("{:.2}x", a / b)
    }
}

/// Clock ticks per second for /proc/PID/stat.
fn clk_tck() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|x| *x > 0.0)
        .unwrap_or(100.0)
}

/// utime + stime of `pids` (all their threads), in ticks.
fn cpu_ticks(pids: &[u32]) -> u64 {
    pids.iter()
        .filter_map(|p| std::fs::read_to_string(format!("/proc/{p}/stat")).ok())
        .filter_map(|s| {
            // The command name may hold spaces and parentheses: fields start after the last ')'.
            let rest = &s[s.rfind(')')? + 1..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            let u = f.get(11)?.parse::<u64>().ok()?;
            let k = f.get(12)?.parse::<u64>().ok()?;
            Some(u + k)
        })
        .sum()
}

/// VmRSS and VmHWM of `pid` in MiB.
fn rss_mib(pid: u32) -> (f64, f64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

// ---------------------------------------------------------------------------------------------
// Measure 1: added latency at concurrency 1
// ---------------------------------------------------------------------------------------------

struct LatencyRow {
    name: &'static str,
    p50: f64,
    p99: f64,
    added_p50: f64,
    added_p99: f64,
    samples: usize,
    errors: usize,
}

async fn measure_latency(plan: &Plan, targets: &[Target]) -> Vec<LatencyRow> {
    let body = chat_body(false);
    let mut clients: Vec<SeqClient> = targets.iter().cloned().map(SeqClient::new).collect();
    for c in &mut clients {
        c.run(plan.warmup, &body).await;
        c.errors = 0;
    }
    let n = clients.len();
    let mut p50s = vec![Vec::new(); n];
    let mut p99s = vec![Vec::new(); n];
    let mut samples = vec![0usize; n];
    for round in 0..plan.rounds {
        // The order rotates so that no target always runs right after another.
        for k in 0..n {
            let i = (k + round) % n;
            let mut lat = clients[i].run(plan.per_round, &body).await;
            samples[i] += lat.len();
            p50s[i].push(pct_ms(&mut lat, 0.50));
            p99s[i].push(pct_ms(&mut lat, 0.99));
        }
    }
    (0..n)
        .map(|i| {
            // Added latency per round (same round as the direct figures), then the median.
            let added = |v: &[Vec<f64>]| {
                let d: Vec<f64> = v[i].iter().zip(&v[0]).map(|(t, d)| t - d).collect();
                median(&d)
            };
            if let Some(e) = &clients[i].last_error {
                eprintln!("  {}: last error: {e}", clients[i].target.name);
            }
            LatencyRow {
                name: clients[i].target.name,
                p50: median(&p50s[i]),
                p99: median(&p99s[i]),
                added_p50: if i == 0 { f64::NAN } else { added(&p50s) },
                added_p99: if i == 0 { f64::NAN } else { added(&p99s) },
                samples: samples[i],
                errors: clients[i].errors,
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Measure 2: open-loop load steps
// ---------------------------------------------------------------------------------------------

/// Connections shared by the requests of an open-loop run: idle ones are reused, and at most
/// `max` are in use at once (a request waits for one, and that wait counts in its latency).
struct Pool {
    target: Target,
    idle: Mutex<Vec<SendRequest<Full<Bytes>>>>,
    slots: tokio::sync::Semaphore,
}

impl Pool {
    async fn request(&self, body: &Bytes) -> Res<()> {
        let _slot = self.slots.acquire().await?;
        let conn = self.idle.lock().map_err(|_| "pool lock poisoned")?.pop();
        let mut conn = match conn {
            Some(c) => c,
            None => connect(self.target.addr).await?,
        };
        let req = chat_request(&self.target, body, None)?;
        send_one(&mut conn, req).await?;
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(conn);
        }
        Ok(())
    }
}

/// Latencies (ns) of the requests that succeeded, the error count and the last error.
type Collected = (Vec<u64>, usize, Option<String>);

struct StepResult {
    sent: usize,
    ok: usize,
    errors: usize,
    p50: f64,
    p99: f64,
    max: f64,
    cpu_us_per_req: f64,
    last_error: Option<String>,
}

/// Sends `rate` requests per second for `time`, each at its scheduled instant whether or not
/// earlier ones have returned, and measures each latency from its scheduled instant, so a
/// stalled target's queueing shows instead of being hidden (coordinated omission).
async fn open_loop(
    pool: &Arc<Pool>,
    rate: u32,
    time: Duration,
    cpu_of: Option<&Proc>,
) -> StepResult {
    let n = (f64::from(rate) * time.as_secs_f64()).round().max(1.0) as usize;
    let period = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    let body = chat_body(false);
    let start = Instant::now() + Duration::from_millis(20);
    // The tokio timer ticks in whole milliseconds, too coarse for 10k req/s; a plain thread
    // sleeping to each instant (about 60 µs of slack) paces the schedule instead.
    let pacer = std::thread::spawn(move || {
        for i in 0..n {
            let at = start + period.mul_f64(i as f64);
            let now = Instant::now();
            if at > now {
                std::thread::sleep(at - now);
            }
            if tx.send(at).is_err() {
                break;
            }
        }
    });
    let ticks0 = cpu_of.map(|p| cpu_ticks(&p.tree()));
    let results: Arc<Mutex<Collected>> = Arc::new(Mutex::new((Vec::with_capacity(n), 0, None)));
    let mut tasks = Vec::with_capacity(n);
    while let Some(at) = rx.recv().await {
        let pool = Arc::clone(pool);
        let body = body.clone();
        let results = Arc::clone(&results);
        tasks.push(tokio::spawn(async move {
            let r = tokio::time::timeout(REQUEST_TIMEOUT, pool.request(&body)).await;
            let done = Instant::now();
            if let Ok(mut g) = results.lock() {
                match r {
                    Ok(Ok(())) => g.0.push(nanos(done.saturating_duration_since(at))),
                    Ok(Err(e)) => {
                        g.1 += 1;
                        g.2 = Some(e.to_string());
                    }
                    Err(_) => {
                        g.1 += 1;
                        g.2 = Some("timed out".to_owned());
                    }
                }
            }
        }));
    }
    let _ = pacer.join();
    for t in tasks {
        let _ = t.await;
    }
    let ticks1 = cpu_of.map(|p| cpu_ticks(&p.tree()));
    let (mut lat, errors, last_error) = match Arc::try_unwrap(results) {
        Ok(m) => m.into_inner().unwrap_or_default(),
        Err(_) => (Vec::new(), n, Some("results still shared".to_owned())),
    };
    let ok = lat.len();
    let cpu_us_per_req = match (ticks0, ticks1) {
        (Some(a), Some(b)) if ok > 0 => (b - a) as f64 * 1e6 / clk_tck() / ok as f64,
        _ => f64::NAN,
    };
    StepResult {
        sent: n,
        ok,
        errors,
        p50: pct_ms(&mut lat, 0.50),
        p99: pct_ms(&mut lat, 0.99),
        max: pct_ms(&mut lat, 1.0),
        cpu_us_per_req,
        last_error,
    }
}

/// The highest step with p99 <= 1 ms and no error (steps above a failing one do not count).
/// One step's rounds as one result: counts summed, p50, p99 and CPU per request the medians,
/// max the largest.
fn combine_rounds(rounds: Vec<StepResult>) -> StepResult {
    let med = |f: fn(&StepResult) -> f64| {
        let v: Vec<f64> = rounds.iter().map(f).filter(|x| !x.is_nan()).collect();
        if v.is_empty() {
            f64::NAN
        } else {
            median(&v)
        }
    };
    StepResult {
        sent: rounds.iter().map(|r| r.sent).sum(),
        ok: rounds.iter().map(|r| r.ok).sum(),
        errors: rounds.iter().map(|r| r.errors).sum(),
        p50: med(|r| r.p50),
        p99: med(|r| r.p99),
        max: rounds.iter().map(|r| r.max).fold(f64::NAN, f64::max),
        cpu_us_per_req: med(|r| r.cpu_us_per_req),
        last_error: rounds.iter().rev().find_map(|r| r.last_error.clone()),
    }
}

fn max_good_rate(steps: &[(u32, Option<StepResult>)]) -> Option<u32> {
    let mut best = None;
    for (rate, r) in steps {
        match r {
            Some(r) if r.errors == 0 && r.p99 <= 1.0 => best = Some(*rate),
            _ => break,
        }
    }
    best
}

// ---------------------------------------------------------------------------------------------
// Measure 3: streaming
// ---------------------------------------------------------------------------------------------

struct StreamSample {
    ttft_ns: u64,
    gaps_ns: Vec<u64>,
    content_chunks: usize,
    done: bool,
}

/// One streamed chat completion: time to the first non-empty content delta, the gaps between
/// content deltas (timed at the arrival of the body frame holding them) and their count.
async fn stream_once(
    conn: &mut SendRequest<Full<Bytes>>,
    t: &Target,
    body: &Bytes,
) -> Res<StreamSample> {
    let req = chat_request(t, body, None)?;
    conn.ready().await?;
    let t0 = Instant::now();
    let resp = conn.send_request(req).await?;
    if resp.status() != hyper::StatusCode::OK {
        return Err(format!("status {}", resp.status()).into());
    }
    let mut body = resp.into_body();
    let mut buf: Vec<u8> = Vec::new();
    let mut sample = StreamSample {
        ttft_ns: 0,
        gaps_ns: Vec::new(),
        content_chunks: 0,
        done: false,
    };
    let mut last: Option<Instant> = None;
    while let Some(frame) = body.frame().await {
        let frame = frame?;
        let now = Instant::now();
        let Ok(data) = frame.into_data() else {
            continue;
        };
        buf.extend_from_slice(&data);
        // Complete events end with a blank line; a partial one waits for the next frame.
        while let Some(end) = find_event_end(&buf) {
            let event: Vec<u8> = buf.drain(..end.1).collect();
            let text = String::from_utf8_lossy(&event[..end.0]);
            for line in text.lines() {
                let Some(payload) = line.strip_prefix("data:") else {
                    continue;
                };
                let payload = payload.trim();
                if payload == "[DONE]" {
                    sample.done = true;
                    continue;
                }
                let Ok(v) = serde_json::from_str::<serde_json::Value>(payload) else {
                    continue;
                };
                let content = v
                    .pointer("/choices/0/delta/content")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or("");
                if content.is_empty() {
                    continue;
                }
                sample.content_chunks += 1;
                match last {
                    None => sample.ttft_ns = nanos(now - t0),
                    Some(prev) => sample.gaps_ns.push(nanos(now - prev)),
                }
                last = Some(now);
            }
        }
    }
    Ok(sample)
}

/// (end of the event text, end including the separator) of the first complete SSE event.
fn find_event_end(buf: &[u8]) -> Option<(usize, usize)> {
    let lf = buf
        .windows(2)
        .position(|w| w == b"\n\n")
        .map(|i| (i, i + 2));
    let crlf = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, i + 4));
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

struct StreamRow {
    name: &'static str,
    ttft_p50: f64,
    ttft_p99: f64,
    added_p50: f64,
    added_p99: f64,
    gap_p50: f64,
    gap_p99: f64,
    sent: usize,
    received: usize,
    unfinished: usize,
    errors: usize,
}

async fn measure_streaming(plan: &Plan, targets: &[Target]) -> Vec<StreamRow> {
    let body = chat_body(true);
    let n = targets.len();
    let mut conns: Vec<Option<SendRequest<Full<Bytes>>>> = (0..n).map(|_| None).collect();
    let mut ttft50 = vec![Vec::new(); n];
    let mut ttft99 = vec![Vec::new(); n];
    let mut all_ttft: Vec<Vec<u64>> = vec![Vec::new(); n];
    let mut gaps: Vec<Vec<u64>> = vec![Vec::new(); n];
    let mut received = vec![0usize; n];
    let mut sent = vec![0usize; n];
    let mut unfinished = vec![0usize; n];
    let mut errors = vec![0usize; n];
    // One warm-up stream per target, not counted.
    for (i, t) in targets.iter().enumerate() {
        if let Ok(mut c) = connect(t.addr).await {
            let _ = stream_once(&mut c, t, &body).await;
            conns[i] = Some(c);
        }
    }
    for round in 0..plan.stream_rounds {
        for k in 0..n {
            let i = (k + round) % n;
            let t = &targets[i];
            let mut round_ttft = Vec::with_capacity(plan.streams_per_round);
            for _ in 0..plan.streams_per_round {
                sent[i] += plan.chunks;
                let r = async {
                    if conns[i].is_none() {
                        conns[i] = Some(connect(t.addr).await?);
                    }
                    let c = conns[i].as_mut().ok_or("no connection")?;
                    tokio::time::timeout(REQUEST_TIMEOUT, stream_once(c, t, &body)).await?
                }
                .await;
                match r {
                    Ok(s) => {
                        received[i] += s.content_chunks;
                        if !s.done {
                            unfinished[i] += 1;
                        }
                        if s.content_chunks > 0 {
                            round_ttft.push(s.ttft_ns);
                            all_ttft[i].push(s.ttft_ns);
                        }
                        gaps[i].extend(s.gaps_ns);
                    }
                    Err(e) => {
                        errors[i] += 1;
                        eprintln!("  {}: stream error: {e}", t.name);
                        conns[i] = None;
                    }
                }
            }
            ttft50[i].push(pct_ms(&mut round_ttft, 0.50));
            ttft99[i].push(pct_ms(&mut round_ttft, 0.99));
        }
    }
    (0..n)
        .map(|i| {
            let added = |v: &[Vec<f64>]| {
                let d: Vec<f64> = v[i].iter().zip(&v[0]).map(|(t, d)| t - d).collect();
                median(&d)
            };
            StreamRow {
                name: targets[i].name,
                ttft_p50: pct_ms(&mut all_ttft[i], 0.50),
                ttft_p99: pct_ms(&mut all_ttft[i], 0.99),
                added_p50: if i == 0 { f64::NAN } else { added(&ttft50) },
                added_p99: if i == 0 { f64::NAN } else { added(&ttft99) },
                gap_p50: pct_ms(&mut gaps[i], 0.50),
                gap_p99: pct_ms(&mut gaps[i], 0.99),
                sent: sent[i],
                received: received[i],
                unfinished: unfinished[i],
                errors: errors[i],
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Measure 4: memory with many accounts
// ---------------------------------------------------------------------------------------------

/// Measure 4: a fresh gateway trusting the account header, one request from each of
/// `plan.accounts` accounts, its memory once the engine and the recorder have caught up.
async fn run_accounts(
    plan: &Plan,
    moat_bin: &Path,
    dir: &Path,
    mock_addr: SocketAddr,
) -> Res<RssResult> {
    println!(
        "\n## 4. RSS with {} accounts (header identity, {} connections, one request per account)\n",
        plan.accounts, plan.account_conns
    );
    let (moat, addr, admin) =
        start_moat(moat_bin, &dir.join("moat-accounts"), mock_addr, true).await?;
    let rss = measure_accounts(plan, &moat, addr, admin).await;
    println!(
        "{} requests in {:.1} s ({:.0}/s), {} errors",
        rss.accounts,
        rss.secs,
        rss.accounts as f64 / rss.secs.max(1e-9),
        rss.errors
    );
    println!(
        "engine and recorder caught up (queue empty, every spilled record back in the store) {}",
        rss.catch_up.map_or_else(
            || "NOT within 120 s".to_owned(),
            |s| format!("{s:.1} s after the last answer")
        )
    );
    println!("moat health after catching up: {}", rss.health.trim());
    println!(
        "moat VmRSS {:.1} MiB (at start {:.1} MiB), VmHWM {:.1} MiB (target < {TARGET_RSS_MIB} MiB): {}",
        rss.rss,
        rss.before,
        rss.hwm,
        pass(rss.hwm < TARGET_RSS_MIB && rss.errors == 0)
    );
    Ok(rss)
}

struct RssResult {
    accounts: usize,
    errors: usize,
    secs: f64,
    before: f64,
    rss: f64,
    hwm: f64,
    health: String,
    /// Seconds from the last answer until the engine and the recorder had caught up (`None`:
    /// not within two minutes).
    catch_up: Option<f64>,
}

/// Sends one request from each of `plan.accounts` distinct account ids (closed loop,
/// `plan.account_conns` connections), then reads the gateway's memory.
async fn measure_accounts(
    plan: &Plan,
    moat: &Proc,
    addr: SocketAddr,
    admin: SocketAddr,
) -> RssResult {
    let (before, _) = rss_mib(moat.pid());
    let t = Target {
        name: "moat",
        addr,
        auth: None,
    };
    let next = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(AtomicUsize::new(0));
    let body = chat_body(false);
    let total = plan.accounts;
    let t0 = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..plan.account_conns {
        let (t, next, errors, body) = (
            t.clone(),
            Arc::clone(&next),
            Arc::clone(&errors),
            body.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut conn: Option<SendRequest<Full<Bytes>>> = None;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let account = format!("acct-{i:07}");
                let r = async {
                    if conn.is_none() {
                        conn = Some(connect(t.addr).await?);
                    }
                    let c = conn.as_mut().ok_or("no connection")?;
                    let req = chat_request(&t, &body, Some(&account))?;
                    tokio::time::timeout(REQUEST_TIMEOUT, send_one(c, req)).await?
                }
                .await;
                if r.is_err() {
                    errors.fetch_add(1, Ordering::Relaxed);
                    conn = None;
                }
            }
        }));
    }
    for w in workers {
        let _ = w.await;
    }
    let secs = t0.elapsed().as_secs_f64();
    // The engine and the recorder work off the request path (the recorder on idle CPU time
    // only): wait until both have caught up, queue and spill files included, so the reading
    // includes every account's state and every record's trip through the store.
    let caught_up = |h: &serde_json::Value| {
        let n = |p: &str| h.pointer(p).and_then(serde_json::Value::as_u64);
        n("/recorder/queued") == Some(0)
            && n("/recorder/spilled") == n("/recorder/recovered")
            && n("/engine/observed") >= Some(total as u64)
    };
    let mut health = String::new();
    let mut catch_up = None;
    let waited = Instant::now();
    while waited.elapsed() < Duration::from_secs(120) {
        tokio::time::sleep(Duration::from_millis(250)).await;
        health = match get(admin, "/health").await {
            Ok((_, b)) => String::from_utf8_lossy(&b).into_owned(),
            Err(e) => format!("unavailable: {e}"),
        };
        if serde_json::from_str(&health).is_ok_and(|h| caught_up(&h)) {
            catch_up = Some(waited.elapsed().as_secs_f64());
            break;
        }
    }
    let (rss, hwm) = rss_mib(moat.pid());
    RssResult {
        accounts: total,
        errors: errors.load(Ordering::Relaxed),
        secs,
        before,
        rss,
        hwm,
        health,
        catch_up,
    }
}

// ---------------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------------

fn machine() -> (String, usize) {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = info
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or_else(|| "unknown CPU".to_owned(), |(_, m)| m.trim().to_owned());
    let cores = info.lines().filter(|l| l.starts_with("processor")).count();
    (model, cores)
}

fn today() -> String {
    Command::new("date")
        .arg("-u")
        .arg("+%Y-%m-%d %H:%M UTC")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map_or_else(|| "unknown date".to_owned(), |s| s.trim().to_owned())
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

async fn run() -> Res<()> {
    let plan = Plan::from_env();
    let (cpu, cores) = machine();
    let date = today();
    println!(
        "# moat gateway benchmark ({} mode), {date}",
        if plan.quick { "quick" } else { "full" }
    );
    println!(
        "machine: {cpu}, {cores} cores; load average at start: {}",
        loadavg()
    );
    // The load generator (this process, its threads included) shares core 0 with the mock.
    if have_taskset() {
        let _ = Command::new("taskset")
            .args(["-a", "-c", "-p", "0", &std::process::id().to_string()])
            .stdout(Stdio::null())
            .status();
        println!("layout: mock + load generator on core 0, proxy under test on core 1");
    } else {
        println!("layout: taskset not found, processes are NOT pinned (figures are noisier)");
    }

    let moat_bin = bin_path("MOAT_BIN", "moat");
    let mock_bin = bin_path("MOAT_MOCK_BIN", "moat-mock");
    for b in [&moat_bin, &mock_bin] {
        if !b.is_file() {
            return Err(format!(
                "{} not found: run `cargo build --release -p moat -p moat-testkit` first (or set MOAT_BIN / MOAT_MOCK_BIN)",
                b.display()
            )
            .into());
        }
    }
    // Declared before the processes so that they are stopped before the folder goes.
    let tmp = tempfile::Builder::new().prefix("moat-bench-").tempdir()?;
    let dir = tmp.path();

    let (mock, mock_addr) = start_mock(&mock_bin, dir, &plan).await?;
    if std::env::var("MOAT_BENCH_MOCK").is_ok_and(|v| v == "nodelay") {
        println!("mock: moat_testkit router served by this binary with TCP_NODELAY");
    } else {
        println!("mock: {}", mock_bin.display());
    }
    if plan.only_accounts {
        println!("only measure 4 (MOAT_BENCH_ONLY=4); no summary is printed");
        run_accounts(&plan, &moat_bin, dir, mock_addr).await?;
        drop(mock);
        return Ok(());
    }
    let (moat, moat_addr, moat_admin) =
        start_moat(&moat_bin, &dir.join("moat"), mock_addr, false).await?;
    let nginx = match peer("MOAT_BENCH_NGINX") {
        Ok(bin) => match start_nginx(&bin, dir, mock_addr).await {
            Ok(x) => Ok(x),
            Err(e) => Err(format!("failed to start: {e}")),
        },
        Err(e) => Err(e),
    };
    let litellm = match peer("MOAT_BENCH_LITELLM") {
        Ok(bin) => match start_litellm(&bin, dir, mock_addr).await {
            Ok(x) => Ok(x),
            Err(e) => Err(format!("failed to start: {e}")),
        },
        Err(e) => Err(e),
    };
    if let Err(e) = &nginx {
        println!("nginx: {e}");
    }
    if let Err(e) = &litellm {
        println!("litellm: {e}");
    }

    let direct = Target {
        name: "direct",
        addr: mock_addr,
        auth: None,
    };
    let moat_t = Target {
        name: "moat",
        addr: moat_addr,
        auth: Some(client_key(1)),
    };
    let nginx_t = nginx.as_ref().ok().map(|(_, a)| Target {
        name: "nginx",
        addr: *a,
        auth: None,
    });
    let litellm_t = litellm.as_ref().ok().map(|(_, a)| Target {
        name: "litellm",
        addr: *a,
        auth: Some(LITELLM_MASTER.to_owned()),
    });
    // A request Moat refuses would measure the refusal, not the proxy: check one first.
    {
        let mut c = SeqClient::new(moat_t.clone());
        if c.run(1, &chat_body(false)).await.is_empty() {
            return Err(format!(
                "moat did not answer a chat completion: {}",
                c.last_error.unwrap_or_default()
            )
            .into());
        }
    }

    // 1. Added latency at concurrency 1.
    let mut lat_targets = vec![direct.clone(), moat_t.clone()];
    lat_targets.extend(nginx_t.clone());
    lat_targets.extend(litellm_t.clone());
    println!(
        "\n## 1. added latency at concurrency 1 (non-streamed chat completion; {} rounds x {} sequential requests per target, interleaved; median over rounds)\n",
        plan.rounds, plan.per_round
    );
    let lat = measure_latency(&plan, &lat_targets).await;
    println!("| target  | p50 ms | p99 ms | added p50 ms | added p99 ms | samples | errors |");
    println!("|---------|-------:|-------:|-------------:|-------------:|--------:|-------:|");
    for r in &lat {
        println!(
            "| {:<7} | {:>6} | {:>6} | {:>12} | {:>12} | {:>7} | {:>6} |",
            r.name,
            ms(r.p50),
            ms(r.p99),
            signed_ms(r.added_p50),
            signed_ms(r.added_p99),
            r.samples,
            r.errors
        );
    }
    let find = |name: &str| lat.iter().find(|r| r.name == name);
    let moat_lat = find("moat");
    let nginx_lat = find("nginx");
    let litellm_lat = find("litellm");
    let (m50, m99) = moat_lat.map_or((f64::NAN, f64::NAN), |r| (r.added_p50, r.added_p99));
    println!(
        "\nmoat added p50 {} ms (target <= {TARGET_ADDED_P50_MS}): {}",
        signed_ms(m50),
        pass(m50 <= TARGET_ADDED_P50_MS)
    );
    println!(
        "moat added p99 {} ms (target <= {TARGET_ADDED_P99_MS}): {}",
        signed_ms(m99),
        pass(m99 <= TARGET_ADDED_P99_MS)
    );
    if let Some(n) = nginx_lat {
        println!(
            "ratio moat added / nginx added: p50 {}, p99 {}",
            ratio(m50, n.added_p50),
            ratio(m99, n.added_p99)
        );
    }
    if let Some(l) = litellm_lat {
        println!(
            "ratio litellm added / moat added: p50 {}, p99 {}",
            ratio(l.added_p50, m50),
            ratio(l.added_p99, m99)
        );
    }

    if plan.stop_after == Some(1) {
        println!("\nstopped after measure 1 (MOAT_BENCH_STOP_AFTER=1)");
        return Ok(());
    }

    // 2. Open-loop load steps.
    println!(
        "\n## 2. open-loop load steps ({} rounds x {:?} per step and target, interleaved; up to {} connections; latency from the scheduled send time; p50, p99 and CPU are medians over the rounds, max the largest)\n",
        plan.step_rounds, plan.step_time, plan.max_conns
    );
    let mut ol_targets: Vec<(Target, Option<&Proc>)> =
        vec![(direct.clone(), None), (moat_t.clone(), Some(&moat))];
    if let (Some(t), Ok((p, _))) = (nginx_t.clone(), nginx.as_ref()) {
        ol_targets.push((t, Some(p)));
    }
    let pools: Vec<Arc<Pool>> = ol_targets
        .iter()
        .map(|(t, _)| {
            Arc::new(Pool {
                target: t.clone(),
                idle: Mutex::new(Vec::new()),
                slots: tokio::sync::Semaphore::new(plan.max_conns),
            })
        })
        .collect();
    // Warm the connections and the proxies' caches before the first step.
    for pool in &pools {
        let _ = open_loop(pool, 500, Duration::from_millis(500), None).await;
    }
    let mut steps: Vec<Vec<(u32, Option<StepResult>)>> =
        ol_targets.iter().map(|_| Vec::new()).collect();
    let mut saturated = vec![false; ol_targets.len()];
    for &rate in &plan.steps {
        let mut rounds: Vec<Vec<StepResult>> = ol_targets.iter().map(|_| Vec::new()).collect();
        for _ in 0..plan.step_rounds.max(1) {
            for (i, (_, proc_)) in ol_targets.iter().enumerate() {
                if saturated[i] {
                    continue;
                }
                rounds[i].push(open_loop(&pools[i], rate, plan.step_time, *proc_).await);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        for (i, r) in rounds.into_iter().enumerate() {
            if saturated[i] {
                steps[i].push((rate, None));
                continue;
            }
            let r = combine_rounds(r);
            // Far past its limit a target only queues; the remaining steps would tell nothing.
            if r.errors * 20 > r.sent || r.p99 > 200.0 {
                saturated[i] = true;
            }
            steps[i].push((rate, Some(r)));
        }
    }
    println!("| target  | rate/s | sent   | ok     | errors | p50 ms | p99 ms | max ms  | proxy CPU µs/req |");
    println!("|---------|-------:|-------:|-------:|-------:|-------:|-------:|--------:|-----------------:|");
    for (i, (t, _)) in ol_targets.iter().enumerate() {
        for (rate, r) in &steps[i] {
            match r {
                Some(r) => {
                    println!(
                        "| {:<7} | {:>6} | {:>6} | {:>6} | {:>6} | {:>6} | {:>6} | {:>7} | {:>16} |",
                        t.name,
                        rate,
                        r.sent,
                        r.ok,
                        r.errors,
                        ms(r.p50),
                        ms(r.p99),
                        ms(r.max),
                        if r.cpu_us_per_req.is_nan() {
                            "-".to_owned()
                        } else {
                            format!("{:.1}", r.cpu_us_per_req)
                        }
                    );
                    if let Some(e) = &r.last_error {
                        eprintln!("  {} at {rate}/s: last error: {e}", t.name);
                    }
                }
                None => println!(
                    "| {:<7} | {:>6} | skipped (saturated at a lower rate)                                  |",
                    t.name, rate
                ),
            }
        }
    }
    println!();
    let mut best_rates = Vec::new();
    for (i, (t, _)) in ol_targets.iter().enumerate() {
        let best = max_good_rate(&steps[i]);
        best_rates.push((t.name, best));
        let shown = best.map_or_else(|| "none".to_owned(), |r| format!("{r}/s"));
        if t.name == "moat" {
            println!(
                "{}: highest rate with p99 <= 1 ms and 0 errors: {shown} (target >= {TARGET_RATE}/s): {}",
                t.name,
                pass(best.is_some_and(|b| b >= TARGET_RATE))
            );
        } else {
            println!(
                "{}: highest rate with p99 <= 1 ms and 0 errors: {shown}",
                t.name
            );
        }
    }
    // CPU per request: the median over the steps that were not saturated.
    let cpu_per_req = |name: &str| {
        let i = ol_targets.iter().position(|(t, _)| t.name == name)?;
        let v: Vec<f64> = steps[i]
            .iter()
            .filter_map(|(_, r)| r.as_ref())
            .filter(|r| r.errors == 0)
            .map(|r| r.cpu_us_per_req)
            .collect();
        Some(median(&v))
    };
    let moat_cpu = cpu_per_req("moat").unwrap_or(f64::NAN);
    let nginx_cpu = cpu_per_req("nginx");
    println!("moat CPU per request (median over steps without errors): {moat_cpu:.1} µs");
    if let Some(n) = nginx_cpu {
        println!(
            "nginx CPU per request: {n:.1} µs; ratio moat / nginx: {}",
            ratio(moat_cpu, n)
        );
    }
    let (moat_rss_load, moat_hwm_load) = rss_mib(moat.pid());
    println!("moat RSS after the load steps: {moat_rss_load:.1} MiB (peak {moat_hwm_load:.1} MiB)");

    if plan.stop_after == Some(2) {
        println!("\nstopped after measure 2 (MOAT_BENCH_STOP_AFTER=2)");
        return Ok(());
    }

    // 3. Streaming.
    println!(
        "\n## 3. streaming ({} content chunks at {} ms intervals; {} rounds x {} streams per target, interleaved)\n",
        plan.chunks, plan.interval_ms, plan.stream_rounds, plan.streams_per_round
    );
    let mut st_targets = vec![direct.clone(), moat_t.clone()];
    st_targets.extend(nginx_t.clone());
    let streams = measure_streaming(&plan, &st_targets).await;
    println!("| target  | TTFT p50 ms | TTFT p99 ms | added TTFT p50 | added TTFT p99 | gap p50 ms | gap p99 ms | chunks sent | received | unfinished | errors |");
    println!("|---------|------------:|------------:|---------------:|---------------:|-----------:|-----------:|------------:|---------:|-----------:|-------:|");
    for r in &streams {
        println!(
            "| {:<7} | {:>11} | {:>11} | {:>14} | {:>14} | {:>10} | {:>10} | {:>11} | {:>8} | {:>10} | {:>6} |",
            r.name,
            ms(r.ttft_p50),
            ms(r.ttft_p99),
            signed_ms(r.added_p50),
            signed_ms(r.added_p99),
            ms(r.gap_p50),
            ms(r.gap_p99),
            r.sent,
            r.received,
            r.unfinished,
            r.errors
        );
    }
    let moat_st = streams.iter().find(|r| r.name == "moat");
    let moat_lost = moat_st.map_or(usize::MAX, |r| r.sent.saturating_sub(r.received));
    let moat_ttft99 = moat_st.map_or(f64::NAN, |r| r.added_p99);
    println!(
        "\nmoat added TTFT p99 {} ms (target <= {TARGET_TTFT_P99_MS}): {}",
        signed_ms(moat_ttft99),
        pass(moat_ttft99 <= TARGET_TTFT_P99_MS)
    );
    println!(
        "moat chunks lost: {moat_lost} (target 0): {}",
        pass(moat_lost == 0)
    );

    match get(moat_admin, "/health").await {
        Ok((_, b)) => println!(
            "moat health after measures 1-3: {}",
            String::from_utf8_lossy(&b).trim()
        ),
        Err(e) => println!("moat health after measures 1-3: unavailable: {e}"),
    }

    // 4. Memory with many accounts: a second gateway trusting the account header.
    // The first gateway is stopped so that the second one has core 1 to itself.
    drop(moat);
    let rss = run_accounts(&plan, &moat_bin, dir, mock_addr).await?;

    // Summary for BENCHMARKS.md.
    let peer_added = |r: Option<&LatencyRow>| {
        r.map_or_else(
            || "skipped".to_owned(),
            |r| format!("{} / {}", signed_ms(r.added_p50), signed_ms(r.added_p99)),
        )
    };
    let rate_of = |name: &str| {
        best_rates.iter().find(|(n, _)| *n == name).map_or_else(
            || "skipped".to_owned(),
            |(_, b)| b.map_or_else(|| "none".to_owned(), |b| b.to_string()),
        )
    };
    let stream_of = |name: &str| {
        streams.iter().find(|r| r.name == name).map_or_else(
            || "skipped".to_owned(),
            |r| {
                if r.name == "direct" {
                    format!("{} / {}", ms(r.ttft_p50), ms(r.ttft_p99))
                } else {
                    format!("{} / {}", signed_ms(r.added_p50), signed_ms(r.added_p99))
                }
            },
        )
    };
    let lost_of = |name: &str| {
        streams.iter().find(|r| r.name == name).map_or_else(
            || "skipped".to_owned(),
            |r| format!("{}", r.sent.saturating_sub(r.received)),
        )
    };
    let direct_lat = find("direct").map_or_else(
        || "-".to_owned(),
        |r| format!("{} / {} (absolute)", ms(r.p50), ms(r.p99)),
    );
    println!("\n## summary (paste into BENCHMARKS.md)\n");
    println!(
        "Machine: {cpu}, {cores} cores; {date}; {} run; mock + load generator on core 0, proxy on core 1.\n",
        if plan.quick { "quick (smoke-test counts)" } else { "full" }
    );
    println!("| measure | direct | moat | nginx | litellm | moat target |");
    println!("|---|---:|---:|---:|---:|---|");
    println!(
        "| added latency c=1, p50 / p99 (ms) | {direct_lat} | {} / {} | {} | {} | ≤ 0.15 / ≤ 0.5: {} / {} |",
        signed_ms(m50),
        signed_ms(m99),
        peer_added(nginx_lat),
        peer_added(litellm_lat),
        pass(m50 <= TARGET_ADDED_P50_MS),
        pass(m99 <= TARGET_ADDED_P99_MS)
    );
    let moat_rate = best_rates
        .iter()
        .find(|(n, _)| *n == "moat")
        .and_then(|(_, b)| *b);
    println!(
        "| max open-loop rate, p99 ≤ 1 ms, 0 errors (req/s) | {} | {} | {} | - | ≥ {TARGET_RATE}: {} |",
        rate_of("direct"),
        rate_of("moat"),
        rate_of("nginx"),
        pass(moat_rate.is_some_and(|b| b >= TARGET_RATE))
    );
    println!(
        "| proxy CPU per request (µs) | - | {moat_cpu:.1} | {} | - | |",
        nginx_cpu.map_or_else(|| "skipped".to_owned(), |n| format!("{n:.1}"))
    );
    println!(
        "| streaming TTFT p50 / p99 (ms; added for proxies) | {} | {} | {} | - | p99 ≤ 1: {} |",
        stream_of("direct"),
        stream_of("moat"),
        stream_of("nginx"),
        pass(moat_ttft99 <= TARGET_TTFT_P99_MS)
    );
    println!(
        "| streamed chunks lost | {} | {} | {} | - | 0: {} |",
        lost_of("direct"),
        lost_of("moat"),
        lost_of("nginx"),
        pass(moat_lost == 0)
    );
    println!(
        "| RSS after {} accounts, VmRSS / VmHWM (MiB) | - | {:.1} / {:.1} | - | - | < {TARGET_RSS_MIB}: {} |",
        rss.accounts,
        rss.rss,
        rss.hwm,
        pass(rss.hwm < TARGET_RSS_MIB && rss.errors == 0)
    );
    println!(
        "| RSS after the load steps, VmRSS / VmHWM (MiB) | - | {moat_rss_load:.1} / {moat_hwm_load:.1} | - | - | |"
    );
    println!("\nload average at end: {}", loadavg());

    drop(litellm);
    drop(nginx);
    drop(mock);
    Ok(())
}

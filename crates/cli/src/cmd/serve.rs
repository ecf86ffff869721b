//! `moat serve`: run the gateway (`moat-gateway`) from a configuration file, and
//! `moat check-config`: validate a configuration and its policy file without starting
//! anything. Also `moat serve --hash-key`, which prints the SHA-256 the configuration
//! stores for an API key read from stdin.

use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use moat_gateway::{Config, Gateway};

/// Arguments of `moat serve`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The gateway configuration (TOML, `version = 1`; see the README).
    #[arg(long, short, required_unless_present = "hash_key")]
    config: Option<PathBuf>,
    /// Overrides `listen.addr`.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Overrides `admin.addr`.
    #[arg(long)]
    admin: Option<SocketAddr>,
    /// Overrides `policy.file`.
    #[arg(long)]
    policy: Option<PathBuf>,
    /// Overrides `store.path`.
    #[arg(long)]
    store: Option<PathBuf>,
    /// Worker threads of the runtime (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
    /// Read an API key from stdin, print its SHA-256 for `[[identity.keys]]`, and exit.
    #[arg(long)]
    hash_key: bool,
}

/// Arguments of `moat check-config`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The gateway configuration to check (its policy and keys files too).
    config: PathBuf,
}

fn load(path: &std::path::Path) -> anyhow::Result<Config> {
    Ok(Config::load(path)?)
}

/// Runs `moat check-config`.
pub fn check(args: CheckArgs) -> anyhow::Result<()> {
    let cfg = load(&args.config)?;
    let rules = match &cfg.policy.file {
        Some(f) => {
            let text = std::fs::read_to_string(f)
                .with_context(|| format!("reading policy file {}", f.display()))?;
            let p = moat_policy::Policy::parse(&text, &f.display().to_string())?;
            p.len()
        }
        None => 0,
    };
    super::print(&format!(
        "{}: ok (upstream {}, {} keys, {} policy rules)\n",
        args.config.display(),
        cfg.upstream.url,
        cfg.identity.keys.len(),
        rules
    ))
}

/// Runs `moat serve`.
pub fn run(args: Args) -> anyhow::Result<()> {
    if args.hash_key {
        let mut key = String::new();
        std::io::stdin()
            .read_to_string(&mut key)
            .context("reading the key from stdin")?;
        let key = key.trim();
        anyhow::ensure!(!key.is_empty(), "no key on stdin");
        return super::print(&format!("{}\n", moat_gateway::identity::hash_key(key)));
    }
    #[cfg(target_os = "linux")]
    restart_with_server_allocator_options();
    // The allocator backs its arenas with transparent huge pages where the kernel allows it,
    // which suits a batch job like `moat analyze` but makes a server's resident memory grow
    // by 2 MiB steps (measured: 40 MiB at start with them, 22 MiB without). A gateway holds
    // small per-account state for a long time: ordinary pages.
    #[cfg(target_os = "linux")]
    if let Err(e) = nix::sys::prctl::set_thp_disable(true) {
        tracing::warn!(error = %e, "could not turn transparent huge pages off");
    }
    let path = args.config.context("--config is required")?;
    let mut cfg = load(&path)?;
    if let Some(a) = args.listen {
        cfg.listen.addr = a;
    }
    if let Some(a) = args.admin {
        cfg.admin.addr = a;
    }
    if let Some(p) = args.policy {
        cfg.policy.file = Some(p);
    }
    if let Some(s) = args.store {
        cfg.store.path = s;
    }
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    rt.enable_all();
    if let Some(n) = args.threads {
        rt.worker_threads(n.max(1));
    }
    let rt = rt.build().context("starting the async runtime")?;
    // Outside the runtime: opening the store and replaying it into the engine block (and the
    // PostgreSQL client refuses to run inside an async runtime).
    let gateway = Gateway::build(&cfg).context("starting the gateway")?;
    rt.block_on(async move {
        let api = tokio::net::TcpListener::bind(cfg.listen.addr)
            .await
            .with_context(|| format!("binding the API listener {}", cfg.listen.addr))?;
        let admin = tokio::net::TcpListener::bind(cfg.admin.addr)
            .await
            .with_context(|| format!("binding the admin listener {}", cfg.admin.addr))?;
        eprintln!(
            "moat serve: API on http://{} -> {}, admin on http://{}",
            api.local_addr().unwrap_or(cfg.listen.addr),
            cfg.upstream.url,
            admin.local_addr().unwrap_or(cfg.admin.addr),
        );
        gateway
            .serve(api, admin, shutdown_signal())
            .await
            .context("serving")?;
        eprintln!("moat serve: stopped, records flushed");
        Ok(())
    })
}

/// Ctrl-C or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

/// mimalloc options for a long-running server: freed memory goes back to the system at once
/// instead of after mimalloc 3's default second, and arenas are committed as they are used
/// rather than up front. Measured at 100k accounts (BENCHMARKS.md, "Memory after the
/// dashboard"): peak RSS 104–110 MiB without them, 94 MiB with them, the same latency against
/// nginx. `moat analyze` keeps the defaults, which suit a batch job.
pub const SERVER_ALLOCATOR_ENV: [(&str, &str); 2] = [
    ("MIMALLOC_PURGE_DELAY", "0"),
    ("MIMALLOC_ARENA_EAGER_COMMIT", "0"),
];

/// mimalloc reads its options from the environment when the process starts, before `main`
/// (setting them later takes an `unsafe` call, which the workspace forbids): when one of
/// [`SERVER_ALLOCATOR_ENV`] is unset, `moat serve` executes itself again, same process and
/// arguments, with it set. A value the operator set is kept. Returns only if that fails,
/// and the server then runs with the defaults.
#[cfg(target_os = "linux")]
fn restart_with_server_allocator_options() {
    use std::os::unix::process::CommandExt;
    let missing: Vec<(&str, &str)> = SERVER_ALLOCATOR_ENV
        .into_iter()
        .filter(|(k, _)| std::env::var_os(k).is_none())
        .collect();
    if missing.is_empty() {
        return;
    }
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            tracing::warn!(error = %e, "could not find this executable to set the server's allocator options; running with the defaults");
            return;
        }
    };
    let e = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .envs(missing)
        .exec();
    tracing::warn!(error = %e, "could not restart with the server's allocator options; running with the defaults");
}

//! `moat ui`: the investigator dashboard over the output of `moat analyze`, read-only, with
//! no gateway or other service: reads the detections, the accounts file and the traffic once
//! (`moat_ui::offline` aggregates them in memory bounded by accounts and campaigns), then
//! serves the page and its admin API until Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use moat_format::{ParallelReader, ReadOptions, Reader};
use moat_types::{Account, Detection, Exchange};
use moat_ui::offline::{self, Access, OfflineData};

/// Arguments of `moat ui`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Detections written by `moat analyze --out`.
    #[arg(long)]
    detections: PathBuf,
    /// The exchange log that was analyzed (.jsonl or .jsonl.gz, in time order).
    #[arg(long)]
    traffic: PathBuf,
    /// Accounts side file (accounts.jsonl): payment fingerprints tie campaign members together.
    #[arg(long)]
    accounts: Option<PathBuf>,
    /// Address to listen on. Anything but a loopback address needs --token-env.
    #[arg(long, default_value = "127.0.0.1:8090")]
    listen: SocketAddr,
    /// Environment variable holding a token that /admin/* then requires as
    /// `Authorization: Bearer` (the page asks for it).
    #[arg(long, value_name = "VAR")]
    token_env: Option<String>,
    /// Skip malformed lines (counted and reported) instead of failing.
    #[arg(long)]
    skip_bad_lines: bool,
    /// Hide the progress bar.
    #[arg(long)]
    quiet: bool,
}

/// Runs `moat ui`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let token = match &args.token_env {
        Some(var) => {
            let value = std::env::var(var)
                .with_context(|| format!("reading the token from environment variable {var}"))?;
            anyhow::ensure!(
                !value.trim().is_empty(),
                "environment variable {var} (--token-env) is empty"
            );
            Some(value.trim().to_owned())
        }
        None => None,
    };
    // The dashboard shows prompts and account ids: without a token, only this machine may ask.
    anyhow::ensure!(
        token.is_some() || args.listen.ip().is_loopback(),
        "refusing to serve {} without a token: the dashboard shows prompts and accounts; \
         listen on a loopback address (127.0.0.1, ::1) or pass --token-env VAR",
        args.listen
    );
    // Bound before the (possibly long) read, so that a busy port fails at once.
    let listener = std::net::TcpListener::bind(args.listen)
        .with_context(|| format!("binding {}", args.listen))?;

    let started = Instant::now();
    let opts = ReadOptions {
        skip_bad_lines: args.skip_bad_lines,
        ..ReadOptions::default()
    };
    let mut detections = Vec::new();
    let mut reader = Reader::<Detection>::open(&args.detections, opts)?;
    for d in reader.by_ref() {
        detections.push(d.context("reading the detections")?);
    }
    report_skipped(&args.detections, reader.skipped());
    let data = load(
        detections,
        args.accounts.as_deref(),
        &args.traffic,
        opts,
        args.quiet,
    )?;
    for n in data.notes() {
        eprintln!("moat ui: warning: {}: {n}", args.detections.display());
    }
    let s = data.summary();
    eprintln!(
        "moat ui: {} accounts ({} flagged), {} campaigns, {} exchanges, read in {:.1} s",
        s.accounts,
        s.flagged,
        s.campaigns,
        s.exchanges,
        started.elapsed().as_secs_f64()
    );
    let app = offline::router(
        Arc::new(data),
        Access {
            source: args.detections.display().to_string(),
            token,
        },
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async move {
        listener
            .set_nonblocking(true)
            .context("configuring the listener")?;
        let listener =
            tokio::net::TcpListener::from_std(listener).context("configuring the listener")?;
        let addr = listener.local_addr().unwrap_or(args.listen);
        eprintln!("dashboard: http://{addr}/ui/");
        axum::serve(listener, app)
            .with_graceful_shutdown(super::serve::shutdown_signal())
            .await
            .context("serving")?;
        eprintln!("moat ui: stopped");
        Ok(())
    })
}

/// The dashboard's data: `detections` with the accounts side file and one pass over the
/// traffic (also the second pass of `moat analyze --report`).
pub fn load(
    detections: Vec<Detection>,
    accounts: Option<&std::path::Path>,
    traffic: &std::path::Path,
    opts: ReadOptions,
    quiet: bool,
) -> anyhow::Result<OfflineData> {
    let mut builder = OfflineData::builder(detections);
    if let Some(path) = accounts {
        let mut reader = Reader::<Account>::open(path, opts)?;
        for account in reader.by_ref() {
            builder.add_account(&account.context("reading the accounts file")?);
        }
        report_skipped(path, reader.skipped());
    }
    let (file, bar) = super::open_with_progress(traffic, quiet)?;
    // Parsing runs on worker threads; the aggregates are folded here, in file order.
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut stream = ParallelReader::from_reader(
        traffic.display().to_string(),
        bar.wrap_read(file),
        opts,
        workers,
        |x: Exchange| x,
    )?;
    for exchange in stream.by_ref() {
        builder.observe(&exchange.context("reading the traffic")?);
        let n = builder.exchanges();
        if n % 65_536 == 0 {
            bar.set_message(format!("{n} exchanges"));
        }
    }
    bar.finish_and_clear();
    report_skipped(traffic, stream.skipped());
    Ok(builder.finish())
}

/// Says on stderr which lines `--skip-bad-lines` skipped in `path`.
fn report_skipped(path: &std::path::Path, skipped: &moat_format::SkipReport) {
    if skipped.count == 0 {
        return;
    }
    eprintln!(
        "moat ui: skipped {} bad lines in {}",
        skipped.count,
        path.display()
    );
    for (n, reason) in &skipped.examples {
        eprintln!("  line {n}: {reason}");
    }
}

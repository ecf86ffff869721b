//! `moat consolidate`: the scale-out role that runs campaign discovery over every gateway's
//! traffic. It reads the deployment's configuration (`[store]`: the shared PostgreSQL
//! database whose feature log the workers fill; `[bus]`: where the standings bucket is;
//! `[engine]`: discovery interval and accounts file), waits to lead (one consolidator at a
//! time; others stand by and take over when it stops), folds the feature log into the engine
//! in time order and publishes standings and campaigns to the bucket the gateways watch
//! (`[engine] source = "bus"`). With `--out`, it writes the detections in `moat analyze`'s
//! format when it stops.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use moat_bus::{run_consolidator, ConsolidateOptions, ConsolidatorStats, Snapshot};
use moat_gateway::Config;

/// Arguments of `moat consolidate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The deployment's configuration (the file `moat serve` reads).
    #[arg(long, short)]
    config: PathBuf,
    /// Milliseconds a feature row waits for older rows committed after it.
    #[arg(long, default_value_t = 2_000)]
    settle_ms: u64,
    /// Write the detections here (`moat analyze`'s format) when stopping.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Runs `moat consolidate` until Ctrl-C or SIGTERM.
pub fn run(args: Args) -> anyhow::Result<()> {
    let cfg = Config::load(&args.config)?;
    let bus = moat_gateway::bus_config(&cfg.bus)?
        .context("[bus] url_env is not set in the configuration: the consolidator publishes standings to the stream's bucket")?;
    let store = moat_gateway::open_shared_store(&cfg.store).context("opening the store")?;
    let mut opts = ConsolidateOptions::new(
        moat_gateway::engine_config(&cfg.engine),
        moat_gateway::accounts_of(&cfg.engine)?,
    );
    opts.settle = Duration::from_millis(args.settle_ms);
    let stop = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(ConsolidatorStats::default());
    let snapshot: Arc<Snapshot> = Arc::new(std::sync::Mutex::new(None));
    let worker = {
        let (stop, stats, snapshot) =
            (Arc::clone(&stop), Arc::clone(&stats), Arc::clone(&snapshot));
        let keep = args.out.is_some();
        std::thread::Builder::new()
            .name("moat-consolidate".to_owned())
            .spawn(move || {
                run_consolidator(
                    &bus,
                    &opts,
                    store.as_ref(),
                    &stats,
                    keep.then_some(snapshot.as_ref()),
                    &stop,
                )
            })
            .context("starting the consolidator thread")?
    };
    eprintln!("moat consolidate: started (one leader at a time; this one may stand by)");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    // Until a signal, or the consolidator ends by itself (it cannot reach the stream).
    rt.block_on(async {
        tokio::select! {
            () = super::serve::shutdown_signal() => {}
            () = async {
                while !worker.is_finished() {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            } => {}
        }
    });
    stop.store(true, Ordering::SeqCst);
    let result = worker
        .join()
        .map_err(|_| anyhow::anyhow!("the consolidator thread panicked"))?;
    result.context("consolidator")?;
    eprintln!(
        "moat consolidate: stopped; folded {} feature rows ({} late, {} malformed), {} discovery passes, {} values published",
        stats.observed.load(Ordering::Relaxed),
        stats.late.load(Ordering::Relaxed),
        stats.malformed.load(Ordering::Relaxed),
        stats.passes.load(Ordering::Relaxed),
        stats.published.load(Ordering::Relaxed),
    );
    if let Some(out) = &args.out {
        let detections = snapshot
            .lock()
            .map_err(|_| anyhow::anyhow!("snapshot lock poisoned"))?
            .take()
            .unwrap_or_default();
        let mut w = moat_format::Writer::<moat_types::Detection>::create(out)
            .with_context(|| format!("creating {}", out.display()))?;
        for d in &detections {
            w.write(d)
                .with_context(|| format!("writing {}", out.display()))?;
        }
        w.finish()
            .with_context(|| format!("writing {}", out.display()))?;
        eprintln!(
            "moat consolidate: wrote {} detection lines to {}",
            detections.len(),
            out.display()
        );
    }
    Ok(())
}

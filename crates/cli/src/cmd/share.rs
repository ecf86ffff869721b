//! `moat intel serve | publish | push | pull | import | list`: sharing bundles over TAXII 2.1
//! and keeping what partners shared in the intel database the gateway matches requests with.

use std::path::{Path, PathBuf};

use anyhow::Context;
use moat_taxii::client::{Client, Credentials};
use moat_taxii::config::ServerConfig;
use moat_taxii::intel_db::{IntelDb, Provenance};
use moat_taxii::pull::PullOptions;

/// Arguments of `moat intel serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The server's configuration (TOML: listen address, database, collections, partners and
    /// their rights; see the README's sharing walkthrough).
    #[arg(long)]
    config: PathBuf,
}

/// Arguments of `moat intel publish`.
#[derive(Debug, clap::Args)]
pub struct PublishArgs {
    /// The server's configuration (its database is written; the server may be running).
    #[arg(long)]
    config: PathBuf,
    /// The collection to add to (its id or its alias).
    #[arg(long)]
    collection: String,
    /// The bundle (from `moat intel export`).
    bundle: PathBuf,
}

/// Who the client is at the server.
#[derive(Debug, clap::Args)]
pub struct Login {
    /// HTTP Basic user name at the TAXII server.
    #[arg(long)]
    user: Option<String>,
    /// File holding the password (its trailing newline is ignored).
    #[arg(long, requires = "user")]
    password_file: Option<PathBuf>,
}

impl Login {
    fn client(&self) -> anyhow::Result<Client> {
        let credentials = match (&self.user, &self.password_file) {
            (Some(user), Some(file)) => {
                let text = std::fs::read_to_string(file)
                    .with_context(|| format!("reading the password file {}", file.display()))?;
                let password = text.trim_end_matches(['\n', '\r']).to_owned();
                anyhow::ensure!(
                    !password.is_empty(),
                    "the password file {} is empty",
                    file.display()
                );
                Some(Credentials {
                    user: user.clone(),
                    password,
                })
            }
            (Some(_), None) => anyhow::bail!("--user needs --password-file"),
            _ => None,
        };
        Ok(Client::new(credentials)?)
    }
}

/// Arguments of `moat intel push`.
#[derive(Debug, clap::Args)]
pub struct PushArgs {
    /// The TAXII server: its discovery URL (`…/taxii2/`) or an API root's URL.
    #[arg(long)]
    to: String,
    /// The collection's id.
    #[arg(long)]
    collection: String,
    #[command(flatten)]
    login: Login,
    /// Most objects per POST.
    #[arg(long, default_value_t = 500)]
    batch: usize,
    /// The bundle (from `moat intel export`).
    bundle: PathBuf,
}

/// Arguments of `moat intel pull`.
#[derive(Debug, clap::Args)]
pub struct PullArgs {
    /// The partner's TAXII server: its discovery URL (`…/taxii2/`) or an API root's URL.
    #[arg(long)]
    from: String,
    /// The collection's id.
    #[arg(long)]
    collection: String,
    /// The name the partner's indicators are kept under (what `intel.sources` shows):
    /// lowercase letters, digits, `_`, `.`, `-`.
    #[arg(long)]
    source: String,
    /// The intel database (created if missing).
    #[arg(long)]
    into: PathBuf,
    #[command(flatten)]
    login: Login,
    /// Objects per page.
    #[arg(long, default_value_t = 500)]
    page_size: u32,
    /// Ask for everything, not only what was added since the last pull.
    #[arg(long)]
    full: bool,
}

/// Arguments of `moat intel import`.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The name the partner's indicators are kept under.
    #[arg(long)]
    source: String,
    /// The intel database (created if missing).
    #[arg(long)]
    into: PathBuf,
    /// A STIX 2.1 bundle received by other means (a file).
    bundle: PathBuf,
}

/// Arguments of `moat intel list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// The intel database.
    #[arg(long)]
    db: PathBuf,
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn load_config(path: &Path) -> anyhow::Result<ServerConfig> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    ServerConfig::from_toml(&text, base).with_context(|| format!("{}", path.display()))
}

fn read_bundle(path: &Path) -> anyhow::Result<Vec<serde_json::Value>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    moat_intel::parse_bundle(&bytes).with_context(|| format!("bundle {}", path.display()))
}

fn now_ms() -> anyhow::Result<i64> {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .context("reading the clock")?
        .as_millis();
    i64::try_from(ms).context("the clock is out of range")
}

/// Runs `moat intel serve` until Ctrl-C or SIGTERM.
pub fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let cfg = load_config(&args.config)?;
    runtime()?.block_on(async move {
        let listener = tokio::net::TcpListener::bind(cfg.listen)
            .await
            .with_context(|| format!("binding {}", cfg.listen))?;
        let addr = listener.local_addr().unwrap_or(cfg.listen);
        eprintln!(
            "moat intel serve: TAXII 2.1 on http://{addr}/taxii2/ ({} collections, {} partners)",
            cfg.collections.len(),
            cfg.partners.len()
        );
        moat_taxii::server::serve(cfg, listener, super::serve::shutdown_signal())
            .await
            .context("serving")?;
        eprintln!("moat intel serve: stopped");
        Ok(())
    })
}

/// Runs `moat intel publish`: adds a bundle to a collection of the local server's database.
pub fn publish(args: PublishArgs) -> anyhow::Result<()> {
    let cfg = load_config(&args.config)?;
    let collection = cfg
        .collection(&args.collection)
        .with_context(|| {
            format!(
                "no collection {:?} in {}",
                args.collection,
                args.config.display()
            )
        })?
        .id
        .clone();
    let objects = read_bundle(&args.bundle)?;
    let store = moat_taxii::store::Store::open(&cfg.db)?;
    let status = store.add_objects(&collection, &objects, now_ms()?)?;
    anyhow::ensure!(
        status.failure_count == 0,
        "{} of {} objects refused: {}",
        status.failure_count,
        status.total_count,
        serde_json::to_string(&status.failures).unwrap_or_default()
    );
    super::print(&format!(
        "published {} objects to collection {collection} ({})\n",
        status.success_count,
        cfg.db.display()
    ))
}

/// Runs `moat intel push`.
pub fn push(args: PushArgs) -> anyhow::Result<()> {
    let objects = read_bundle(&args.bundle)?;
    let client = args.login.client()?;
    let report = runtime()?.block_on(moat_taxii::pull::push_batched(
        &client,
        &args.to,
        &args.collection,
        &objects,
        args.batch,
    ))?;
    let pending = if report.pending_count > 0 {
        format!(", {} still pending at the server", report.pending_count)
    } else {
        String::new()
    };
    super::print(&format!(
        "pushed {} objects to collection {} at {} in {} requests{pending}\n",
        report.success_count,
        args.collection,
        report.api_root,
        report.status_ids.len()
    ))
}

/// Runs `moat intel pull`.
pub fn pull(args: PullArgs) -> anyhow::Result<()> {
    let client = args.login.client()?;
    let mut opts = PullOptions::new(&args.from, &args.collection, &args.source);
    opts.page_size = Some(args.page_size);
    opts.full = args.full;
    let report = runtime()?
        .block_on(moat_taxii::pull::pull(&client, &opts, &args.into))
        .with_context(|| {
            format!(
                "pulling collection {} from {} (nothing was imported)",
                args.collection, args.from
            )
        })?;
    let since = match &report.added_after {
        Some(t) => format!("added after {t}"),
        None => "the whole collection".to_owned(),
    };
    super::print(&format!(
        "pulled {} objects ({since}) in {} pages from {}; {}\n",
        report.objects,
        report.pages,
        report.api_root,
        describe_import(&report.import)
    ))
}

/// One line of what an import kept.
fn describe_import(r: &moat_taxii::intel_db::ImportReport) -> String {
    let mut line = format!(
        "import {}: {} objects, {} matchable indicators ({} new, {} updated, {} unchanged)",
        r.import_id, r.objects, r.matchable, r.new, r.updated, r.unchanged
    );
    if r.skipped > 0 {
        line.push_str(&format!(", {} not indicators", r.skipped));
    }
    if r.unsupported > 0 {
        let reasons: Vec<String> = r
            .unsupported_reasons
            .iter()
            .map(|(why, n)| format!("{n} {why}"))
            .collect();
        line.push_str(&format!(
            ", {} indicators that cannot be matched ({})",
            r.unsupported,
            reasons.join("; ")
        ));
    }
    line
}

/// Runs `moat intel import`.
pub fn import(args: ImportArgs) -> anyhow::Result<()> {
    let objects = read_bundle(&args.bundle)?;
    let mut db = IntelDb::open(&args.into)?;
    let provenance = Provenance {
        source: args.source.clone(),
        url: format!("file:{}", args.bundle.display()),
        collection: String::new(),
        pulled_at: moat_types::Timestamp::from_millis(now_ms()?).to_string(),
        added_after: None,
    };
    let report = db
        .import(&provenance, &objects, None)
        .with_context(|| format!("importing {} (nothing was imported)", args.bundle.display()))?;
    super::print(&format!("{}\n", describe_import(&report)))
}

/// Runs `moat intel list`.
pub fn list(args: ListArgs) -> anyhow::Result<()> {
    let db = IntelDb::open(&args.db)?;
    let mut out = String::new();
    for row in db.imports()? {
        out.push_str(&serde_json::to_string(&row).context("serializing an import")?);
        out.push('\n');
    }
    super::print(&out)
}

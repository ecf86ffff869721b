//! `moat intel`: threat-intelligence sharing. `export` writes a STIX 2.1 bundle of the campaigns
//! an analysis found, for a partner; the TAXII 2.1 side (`serve`, `publish`, `push`, `pull`,
//! `import`, `list`) is in [`super::share`].

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use moat_format::{ReadOptions, Reader};
use moat_intel::{ExportOptions, Exporter, PartnerKey, Tlp};
use moat_types::{Account, Detection, Exchange, Timestamp};

/// Arguments of `moat intel`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Write a STIX 2.1 bundle of detected campaigns: campaigns, indicators of their
    /// infrastructure (keyed with the partner's key where the value is customer data),
    /// sightings and MITRE ATLAS techniques.
    Export(ExportArgs),
    /// Serve STIX collections over TAXII 2.1 to partners, each with its own credentials and
    /// read/write rights per collection.
    Serve(super::share::ServeArgs),
    /// Add a bundle to a collection of the local TAXII server's database.
    Publish(super::share::PublishArgs),
    /// Add a bundle to a collection of a (partner's or own) TAXII server, over HTTP.
    Push(super::share::PushArgs),
    /// Pull a partner's collection into the intel database, whole or not at all, with
    /// provenance; the gateway's policy matches requests against it (`intel.*`).
    Pull(super::share::PullArgs),
    /// Import a partner's bundle from a file into the intel database (as `pull` does).
    Import(super::share::ImportArgs),
    /// List what the intel database holds: every import, from whom, from where, when.
    List(super::share::ListArgs),
}

/// Arguments of `moat intel export`.
#[derive(Debug, clap::Args)]
struct ExportArgs {
    /// Detections of `moat analyze` (.jsonl).
    #[arg(long)]
    detections: PathBuf,
    /// The exchange log the detections came from (.jsonl or .jsonl.gz).
    #[arg(long)]
    traffic: PathBuf,
    /// Accounts side file (for payment fingerprints).
    #[arg(long)]
    accounts: Option<PathBuf>,
    /// Name of the producing organisation.
    #[arg(long)]
    producer: String,
    /// Name of the partner the bundle is for.
    #[arg(long)]
    partner: String,
    /// File holding the key shared with the partner: 32 bytes or more, hex (64+ digits) or raw.
    #[arg(long)]
    partner_key_file: PathBuf,
    /// Only campaigns first detected at or after this time (RFC 3339).
    #[arg(long)]
    since: Option<String>,
    /// Only these campaigns (repeatable).
    #[arg(long = "campaign")]
    campaigns: Vec<String>,
    /// TLP 2.0 marking: clear, green, amber, amber+strict or red.
    #[arg(long, default_value = "amber")]
    tlp: String,
    /// Days the indicators stay valid.
    #[arg(long, default_value_t = 30)]
    valid_days: u32,
    /// Creation time of the objects (RFC 3339; default: the current time). Fix it for
    /// byte-identical bundles.
    #[arg(long)]
    now: Option<String>,
    /// Most indicators per campaign and kind.
    #[arg(long, default_value_t = 50)]
    top_k: usize,
    /// Where to write the bundle (.json).
    #[arg(long)]
    out: PathBuf,
    /// Skip malformed lines of the traffic instead of failing.
    #[arg(long)]
    skip_bad_lines: bool,
    /// Hide the progress bar.
    #[arg(long)]
    quiet: bool,
}

/// Runs `moat intel`.
pub fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        Command::Export(a) => export(a),
        Command::Serve(a) => super::share::serve(a),
        Command::Publish(a) => super::share::publish(a),
        Command::Push(a) => super::share::push(a),
        Command::Pull(a) => super::share::pull(a),
        Command::Import(a) => super::share::import(a),
        Command::List(a) => super::share::list(a),
    }
}

fn timestamp(flag: &str, text: &str) -> anyhow::Result<Timestamp> {
    Timestamp::parse(text).with_context(|| format!("parsing --{flag} {text:?}"))
}

fn export(args: ExportArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let key_path = args.partner_key_file.display().to_string();
    let bytes = std::fs::read(&args.partner_key_file)
        .with_context(|| format!("reading the partner key file {key_path}"))?;
    let key = PartnerKey::from_file_bytes(&bytes)
        .with_context(|| format!("partner key file {key_path}"))?;
    drop(bytes);
    let now = match &args.now {
        Some(t) => timestamp("now", t)?,
        None => {
            let ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .context("reading the clock")?
                .as_millis();
            Timestamp::from_millis(i64::try_from(ms).context("the clock is out of range")?)
        }
    };
    let tlp: Tlp = args.tlp.parse().context("parsing --tlp")?;
    let mut options = ExportOptions::new(args.producer, args.partner, key, now);
    options.tlp = tlp;
    options.valid_days = args.valid_days;
    options.since = args
        .since
        .as_deref()
        .map(|t| timestamp("since", t))
        .transpose()?;
    options.campaigns = args.campaigns;
    options.top_k = args.top_k;

    let opts = ReadOptions {
        skip_bad_lines: args.skip_bad_lines,
        ..ReadOptions::default()
    };
    let mut detections = Vec::new();
    for d in Reader::<Detection>::open(&args.detections, ReadOptions::default())? {
        detections.push(d.context("reading the detections")?);
    }
    let mut exporter = Exporter::new(&detections, options)?;
    drop(detections);
    if let Some(path) = &args.accounts {
        for account in Reader::<Account>::open(path, ReadOptions::default())? {
            exporter.add_account(&account.context("reading the accounts file")?);
        }
    }
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new_spinner()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] intel: {human_pos} exchanges ({per_sec})",
        )
        .context("building the progress bar style")?,
    );
    let mut n = 0u64;
    let mut reader = Reader::<Exchange>::open(&args.traffic, opts)?;
    for exchange in reader.by_ref() {
        exporter.observe(&exchange.context("reading the traffic")?);
        n += 1;
        if n % 65_536 == 0 {
            bar.set_position(n);
        }
    }
    bar.finish_and_clear();
    let skipped = reader.skipped().count;
    let (bundle, summary) = exporter.finish()?;
    let mut text = serde_json::to_string_pretty(&bundle).context("serializing the bundle")?;
    text.push('\n');
    std::fs::write(&args.out, &text).with_context(|| format!("writing {}", args.out.display()))?;
    let mut line = format!(
        "exported {} campaigns, {} indicators ({} objects) from {n} exchanges in {:.1} s; wrote {}",
        summary.campaigns,
        summary.indicators,
        summary.objects,
        started.elapsed().as_secs_f64(),
        args.out.display()
    );
    if skipped > 0 {
        line.push_str(&format!("; skipped {skipped} bad lines"));
    }
    line.push('\n');
    super::print(&line)
}

//! The `moat` command line: thin glue that parses arguments, wires the library crates
//! together, prints results and maps failures to exit codes. Nothing here is worth testing
//! on its own; everything that is lives in the library crates.
//!
//! Exit codes: 0 success (a closed stdout pipe counts as success), 1 failure (the error chain
//! is printed to stderr), 2 invalid arguments (from clap).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;

/// Exchanges are parsed on one thread and freed on another; mimalloc handles that pattern
/// without the lock contention of the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Moat: detect and resist distillation of model APIs.
#[derive(Debug, Parser)]
#[command(name = "moat", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Simulate labelled API traffic (benign, heavy legitimate users, campaigns).
    Sim(cmd::sim::Args),
    /// Score a detections file against simulator labels, with a rate-limit baseline.
    Eval(cmd::eval::Args),
    /// Check that a file conforms to its exchange-log v1 format.
    Validate(cmd::validate::Args),
    /// Detect distillation accounts and campaigns in an exchange log.
    Analyze(cmd::analyze::Args),
    /// Simulate a small scenario, analyze it, show the campaigns found and the evaluation.
    Demo(cmd::demo::Args),
    /// Watermark keys, detection, radioactivity and campaign attribution.
    Mark(Box<cmd::mark::Args>),
    /// Run the gateway: an OpenAI- and Anthropic-compatible proxy that scores every request
    /// and enforces policy.
    Serve(cmd::serve::Args),
    /// Validate a gateway configuration and its policy file without starting anything.
    CheckConfig(cmd::serve::CheckArgs),
    /// Send an exchange log's requests to gateways as their clients sent them (drills and
    /// equivalence tests; see `[identity] time_header`).
    Replay(cmd::replay::Args),
    /// Scale-out: store what gateways publish to NATS JetStream, acknowledging only what the
    /// store holds.
    Worker(cmd::worker::Args),
    /// Scale-out: campaign discovery over every gateway's traffic (one leader at a time),
    /// publishing standings to the gateways.
    Consolidate(cmd::consolidate::Args),
    /// Threat intelligence: export detected campaigns as STIX 2.1, share them over TAXII 2.1,
    /// pull partners' indicators for the gateway's policy.
    Intel(cmd::intel::Args),
    /// The investigator dashboard over the output of `moat analyze`, read-only, with no
    /// gateway: serves the page and its admin API on a local address.
    Ui(cmd::ui::Args),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("MOAT_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Sim(args) => cmd::sim::run(args),
        Command::Eval(args) => cmd::eval::run(args),
        Command::Validate(args) => cmd::validate::run(args),
        Command::Analyze(args) => cmd::analyze::run(args),
        Command::Demo(args) => cmd::demo::run(args),
        Command::Mark(args) => cmd::mark::run(*args),
        Command::Serve(args) => cmd::serve::run(args),
        Command::CheckConfig(args) => cmd::serve::check(args),
        Command::Replay(args) => cmd::replay::run(args),
        Command::Worker(args) => cmd::worker::run(args),
        Command::Consolidate(args) => cmd::consolidate::run(args),
        Command::Intel(args) => cmd::intel::run(args),
        Command::Ui(args) => cmd::ui::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("moat: error: {err:#}");
            ExitCode::from(1)
        }
    }
}

/// A closed stdout (`moat ... | head`) is not a failure (ripgrep's convention).
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

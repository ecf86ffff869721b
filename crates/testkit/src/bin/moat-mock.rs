//! `moat-mock`: the mock upstream as a process of its own, for benchmarks that pin it to a core.
//!
//! Thin glue over `moat_testkit::serve`: it parses flags, builds the runtime and prints the
//! address it listens on (so a benchmark can pass port 0 and read the port back). Recording is
//! off unless `--record N` asks for it, because a benchmark has nobody to read the record.
//!
//! Exit codes: 0 never in practice (it serves until killed), 1 when serving fails, 2 on bad flags.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use moat_testkit::{MockConfig, Reasoning};

const USAGE: &str = "\
usage: moat-mock [--listen ADDR] [--latency-ms N] [--chunks N] [--interval-ms N]
                 [--reasoning VARIANT] [--threads N] [--record N]

  --listen ADDR        address to listen on (default 127.0.0.1:8089; port 0 picks a free one)
  --latency-ms N       delay before every reply (default 0)
  --chunks N           content deltas per streamed reply (default 8)
  --interval-ms N      delay before each streamed delta (default 0)
  --reasoning VARIANT  default dialect: plain, reasoning-content, reasoning, reasoning-details,
                       think (default plain)
  --threads N          worker threads; 1 runs a current-thread runtime (default 1)
  --record N           keep the last N requests in memory (default 0: off)
";

struct Args {
    listen: SocketAddr,
    threads: usize,
    cfg: MockConfig,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut parsed = Args {
        listen: SocketAddr::from(([127, 0, 0, 1], 8089)),
        threads: 1,
        cfg: MockConfig {
            record_limit: 0,
            ..MockConfig::default()
        },
    };
    while let Some(flag) = args.next() {
        if flag == "-h" || flag == "--help" {
            return Ok(None);
        }
        // Both `--flag value` and `--flag=value` are accepted.
        let (flag, value) = match flag.split_once('=') {
            Some((f, v)) => (f.to_owned(), v.to_owned()),
            None => {
                let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
                (flag, value)
            }
        };
        let number = |value: &str| {
            value
                .parse::<u64>()
                .map_err(|_| format!("{flag} needs a whole number, got {value:?}"))
        };
        match flag.as_str() {
            "--listen" => {
                parsed.listen = value.parse().map_err(|_| {
                    format!("--listen needs an address like 127.0.0.1:8089, got {value:?}")
                })?;
            }
            "--latency-ms" => parsed.cfg.latency = Duration::from_millis(number(&value)?),
            "--interval-ms" => parsed.cfg.interval = Duration::from_millis(number(&value)?),
            "--chunks" => parsed.cfg.chunks = to_usize(number(&value)?),
            "--record" => parsed.cfg.record_limit = to_usize(number(&value)?),
            "--threads" => parsed.threads = to_usize(number(&value)?).max(1),
            "--reasoning" => {
                parsed.cfg.reasoning = value.parse::<Reasoning>().map_err(|e| e.to_string())?;
            }
            other => return Err(format!("unknown flag {other:?}")),
        }
    }
    Ok(Some(parsed))
}

/// An error and its sources, joined with ": " as `anyhow` prints them with `{:#}`.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("moat-mock: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime = if args.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("moat-mock: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("cannot read the listening address: {e}"))?;
        println!("moat-mock listening on http://{addr}/v1");
        moat_testkit::serve(listener, args.cfg)
            .await
            .map_err(|e| chain(&e))
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("moat-mock: {message}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Option<Args>, String> {
        parse_args(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn parses_every_flag() {
        let args = parse(&[
            "--listen",
            "127.0.0.1:0",
            "--latency-ms=5",
            "--chunks",
            "3",
            "--interval-ms",
            "2",
            "--reasoning",
            "think",
            "--threads",
            "4",
            "--record",
            "10",
        ])
        .unwrap()
        .unwrap();
        assert_eq!(args.listen.port(), 0);
        assert_eq!(args.threads, 4);
        assert_eq!(args.cfg.latency, Duration::from_millis(5));
        assert_eq!(args.cfg.chunks, 3);
        assert_eq!(args.cfg.interval, Duration::from_millis(2));
        assert_eq!(args.cfg.reasoning, Reasoning::Think);
        assert_eq!(args.cfg.record_limit, 10);
    }

    #[test]
    fn defaults_turn_recording_off() {
        let args = parse(&[]).unwrap().unwrap();
        assert_eq!(args.cfg.record_limit, 0);
        assert_eq!(args.threads, 1);
    }

    #[test]
    fn bad_flags_are_errors() {
        assert!(parse(&["--chunks"]).is_err());
        assert!(parse(&["--chunks", "many"]).is_err());
        assert!(parse(&["--reasoning", "deep"]).is_err());
        assert!(parse(&["--listen", "nowhere"]).is_err());
        assert!(parse(&["--verbose", "1"]).is_err());
        assert!(parse(&["--help"]).unwrap().is_none());
    }
}

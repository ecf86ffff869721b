//! What several end-to-end test files share: running the `moat` binary, and a server process
//! (`moat serve`, `moat intel serve`) that prints its address on stderr.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The `moat` binary under test.
pub fn moat() -> Command {
    Command::new(env!("CARGO_BIN_EXE_moat"))
}

/// The command's stdout; fails the test with both outputs when it did not succeed.
pub fn ok(res: &Output) -> String {
    assert!(
        res.status.success(),
        "failed: {}{}",
        String::from_utf8_lossy(&res.stdout),
        String::from_utf8_lossy(&res.stderr)
    );
    String::from_utf8_lossy(&res.stdout).into_owned()
}

/// A `moat` server process, stopped with SIGTERM by [`Server::stop`] and killed if dropped
/// (so a failing test leaves no server holding its output open).
pub struct Server {
    child: Child,
    /// What followed the start-up line's prefix (`127.0.0.1:PORT …`).
    pub rest: String,
    /// The address at the start of [`Server::rest`].
    pub addr: String,
    log: Option<std::thread::JoinHandle<String>>,
}

impl Server {
    /// Runs `moat args` with `envs` and waits for the stderr line starting with `prefix`.
    pub fn start(args: &[&str], envs: &[(&str, &str)], prefix: &str) -> Server {
        let mut child = moat()
            .args(args)
            .envs(envs.iter().copied())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let mut said = String::new();
        let rest = loop {
            let mut line = String::new();
            assert!(
                err.read_line(&mut line).unwrap() > 0,
                "moat {args:?} exited: {said}"
            );
            said.push_str(&line);
            if let Some(rest) = line.strip_prefix(prefix) {
                break rest.trim_end().to_owned();
            }
        };
        let addr = rest
            .split(|c: char| c.is_whitespace() || c == '/')
            .next()
            .unwrap()
            .to_owned();
        // Keep reading, so the server never blocks on a full pipe.
        let log = std::thread::spawn(move || {
            let mut rest = String::new();
            let _ = err.read_to_string(&mut rest);
            said + &rest
        });
        Server {
            child,
            rest,
            addr,
            log: Some(log),
        }
    }

    /// Stops it with SIGTERM and returns what it said; fails if it did not exit cleanly.
    pub fn stop(mut self) -> String {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success());
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(Instant::now() < deadline, "the server did not stop");
            std::thread::sleep(Duration::from_millis(50));
        };
        let log = self.log.take().unwrap().join().unwrap();
        assert!(status.success(), "{log}");
        log
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

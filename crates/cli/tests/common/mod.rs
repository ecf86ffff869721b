//! What several end-to-end test files share: running the `moat` binary, and a server process
//! (`moat serve`, `moat intel serve`) that prints its address on stderr.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The `moat` binary under test.
pub fn moat() -> Command {
    Command::new(env!("CARGO_BIN_EXE_moat"))
}

/// Runs `node ui/tests/SCRIPT args` in `ui/` (where playwright-core is installed).
pub fn node(root: &Path, script: &str, args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    let mut cmd = Command::new("node");
    cmd.arg(root.join("ui/tests").join(script));
    for a in args {
        cmd.arg(a);
    }
    cmd.current_dir(root.join("ui"))
        .output()
        .expect("running node")
}

/// [`node`], failing the test unless the script succeeds; what it printed.
pub fn node_ok(root: &Path, script: &str, args: &[&dyn AsRef<std::ffi::OsStr>]) -> String {
    let out = node(root, script, args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `moat args` to the end. (Not `run`: the tests name their run directories `run`.)
pub fn run_moat(args: &[&str]) -> Output {
    moat().args(args).output().expect("running moat")
}

/// A path as a command-line argument (displayed, so lossy for non-UTF-8 paths).
pub fn p(path: &Path) -> String {
    path.display().to_string()
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

    /// The server's process id.
    pub fn id(&self) -> u32 {
        self.child.id()
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

/// One HTTP/1.1 request to `addr` (`host:port`) with `Connection: close`: the status and the
/// body (read to the end; chunked bodies are decoded). Enough for the JSON admin APIs.
pub fn http(
    method: &str,
    addr: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> (u16, String) {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(b) = body {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            b.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(body.unwrap_or(""));
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap();
    let status = head
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<u16>()
        .unwrap();
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked")
    });
    if !chunked {
        return (status, rest.to_owned());
    }
    let mut out = String::new();
    let mut rest = rest;
    loop {
        let (size, tail) = rest.split_once("\r\n").unwrap();
        let n = usize::from_str_radix(size.trim(), 16).unwrap();
        if n == 0 {
            break;
        }
        out.push_str(&tail[..n]);
        rest = &tail[n + 2..];
    }
    (status, out)
}

/// `GET path` with the admin token, parsed as JSON; fails unless the status is 200.
pub fn get_json(addr: &str, path: &str, token: &str) -> serde_json::Value {
    let auth = format!("Bearer {token}");
    let (status, body) = http("GET", addr, path, &[("Authorization", &auth)], None);
    assert_eq!(status, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap()
}

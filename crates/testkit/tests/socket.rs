//! The mock over a real socket, spoken to with a raw HTTP/1.1 client: framing, incremental
//! flushing, dropped streams and shutdown, which the socket-free tests cannot see.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use moat_testkit::text::expected_content;
use moat_testkit::{parse_sse, start, MockConfig};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A raw response: the head, the de-chunked body, and when each read returned.
struct Raw {
    head: String,
    body: Vec<u8>,
    /// Whether a chunked body ended with its terminating zero-length chunk.
    terminated: bool,
    /// (time since the request was written, bytes received so far) after each read.
    reads: Vec<(Duration, Vec<u8>)>,
}

async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &Value,
) -> Raw {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let payload = if body.is_null() {
        Vec::new()
    } else {
        serde_json::to_vec(body).unwrap()
    };
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
        payload.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&payload).await.unwrap();
    let start = Instant::now();
    let mut raw = Vec::new();
    let mut reads = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                raw.extend_from_slice(&buf[..n]);
                reads.push((start.elapsed(), raw.clone()));
            }
        }
    }
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8(raw[..split].to_vec()).unwrap();
    let rest = &raw[split + 4..];
    let (body, terminated) = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(rest)
    } else {
        (rest.to_vec(), true)
    };
    Raw {
        head,
        body,
        terminated,
        reads,
    }
}

/// Decodes a chunked body as far as it goes; says whether the final zero-length chunk came.
fn dechunk(mut data: &[u8]) -> (Vec<u8>, bool) {
    let mut body = Vec::new();
    loop {
        let Some(line_end) = data.windows(2).position(|w| w == b"\r\n") else {
            return (body, false);
        };
        let size_text = std::str::from_utf8(&data[..line_end]).unwrap();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap();
        data = &data[line_end + 2..];
        if size == 0 {
            return (body, data.starts_with(b"\r\n"));
        }
        if data.len() < size + 2 {
            body.extend_from_slice(&data[..size.min(data.len())]);
            return (body, false);
        }
        body.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

fn status(raw: &Raw) -> u16 {
    raw.head.split(' ').nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn serves_json_over_a_real_socket_and_records_it() {
    let mock = start(MockConfig::default()).await.unwrap();
    assert_eq!(mock.base_url(), format!("http://{}/v1", mock.addr()));
    assert_eq!(mock.origin(), format!("http://{}", mock.addr()));
    let body = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]});
    let raw = request(
        mock.addr(),
        "POST",
        "/v1/chat/completions",
        &[("authorization", "Bearer k")],
        &body,
    )
    .await;
    assert_eq!(status(&raw), 200);
    let reply: Value = serde_json::from_slice(&raw.body).unwrap();
    assert_eq!(
        reply["choices"][0]["message"]["content"],
        expected_content(1, 8)
    );
    let seen = mock.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0]["body"], body);
    assert_eq!(seen[0]["headers"]["authorization"], "Bearer k");
    mock.clear();
    assert!(mock.requests().is_empty());

    let models = request(mock.addr(), "GET", "/v1/models", &[], &Value::Null).await;
    assert_eq!(status(&models), 200);
    let models: Value = serde_json::from_slice(&models.body).unwrap();
    assert_eq!(models["object"], "list");
}

#[tokio::test]
async fn streams_are_flushed_event_by_event_over_a_real_socket() {
    let mock = start(MockConfig {
        chunks: 6,
        interval: Duration::from_millis(50),
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let body = json!({"model": "gpt-4o", "messages": [], "stream": true});
    let raw = request(mock.addr(), "POST", "/v1/chat/completions", &[], &body).await;
    assert_eq!(status(&raw), 200);
    assert!(raw
        .head
        .to_ascii_lowercase()
        .contains("content-type: text/event-stream"));
    assert!(
        raw.terminated,
        "a finished stream ends with the zero-length chunk"
    );
    let text = String::from_utf8(raw.body.clone()).unwrap();
    let events = parse_sse(&text);
    assert_eq!(events.len(), 1 + 6 + 1 + 1, "role, deltas, finish, [DONE]");
    assert_eq!(events.last().unwrap().data, "[DONE]");

    // The role chunk must arrive long before the stream ends: a buffered body would deliver
    // everything at once. The stream takes six intervals (300 ms) after the role chunk; asserting
    // half of that leaves room for a loaded machine while still failing on buffering.
    let first_event = raw
        .reads
        .iter()
        .find(|(_, bytes)| bytes.windows(5).any(|w| w == b"data:"))
        .map(|(t, _)| *t)
        .unwrap();
    let end = raw.reads.last().unwrap().0;
    assert!(
        end - first_event >= Duration::from_millis(150),
        "{first_event:?} .. {end:?}"
    );
    assert!(raw.reads.len() >= 3, "the stream arrived in several reads");
}

// A multi-threaded runtime, like the gateway's: the events before the cut must be flushed there
// too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_streams_end_without_the_chunked_terminator() {
    let mock = start(MockConfig::default()).await.unwrap();
    let body = json!({"model": "m", "max_tokens": 8, "messages": [], "stream": true});
    let raw = request(
        mock.addr(),
        "POST",
        "/v1/messages",
        &[("x-mock-drop-after", "2")],
        &body,
    )
    .await;
    assert_eq!(status(&raw), 200);
    assert!(
        !raw.terminated,
        "a dropped stream must look like a dead upstream"
    );
    let text = String::from_utf8_lossy(&raw.body).into_owned();
    let deltas = parse_sse(&text)
        .iter()
        .filter(|e| e.event.as_deref() == Some("content_block_delta"))
        .count();
    assert_eq!(deltas, 2);
    assert!(!text.contains("message_stop"));
}

#[tokio::test]
async fn injected_errors_come_back_over_a_real_socket() {
    let mock = start(MockConfig::default()).await.unwrap();
    let body = json!({"model": "m", "messages": [], "stream": true});
    let raw = request(
        mock.addr(),
        "POST",
        "/v1/chat/completions",
        &[("x-mock-status", "503")],
        &body,
    )
    .await;
    assert_eq!(status(&raw), 503);
    let reply: Value = serde_json::from_slice(&raw.body).unwrap();
    assert_eq!(reply["error"]["type"], "server_error");
}

#[tokio::test]
async fn serve_runs_on_a_caller_supplied_listener() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(moat_testkit::serve(listener, MockConfig::default()));
    let body = json!({"model": "m", "prompt": "p"});
    let raw = request(addr, "POST", "/v1/completions", &[], &body).await;
    assert_eq!(status(&raw), 200);
    let reply: Value = serde_json::from_slice(&raw.body).unwrap();
    assert_eq!(reply["choices"][0]["text"], expected_content(1, 8));
    server.abort();
}

#[tokio::test]
async fn dropping_the_server_stops_listening() {
    let mock = start(MockConfig::default()).await.unwrap();
    let addr = mock.addr();
    assert!(TcpStream::connect(addr).await.is_ok());
    drop(mock);
    // The listener closes once the aborted task is dropped, which takes a scheduler turn or two.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if TcpStream::connect(addr).await.is_err() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still accepting connections after drop"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Kills the child process when the test ends, pass or fail.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_moat_mock_binary_serves_on_the_address_it_prints() {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::process::{Command, Stdio};

    let mut child = Child(
        Command::new(env!("CARGO_BIN_EXE_moat-mock"))
            .args([
                "--listen",
                "127.0.0.1:0",
                "--chunks",
                "2",
                "--reasoning",
                "think",
                "--threads",
                "2",
            ])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line.trim().strip_prefix("moat-mock listening on ").unwrap();
    let addr = base
        .strip_prefix("http://")
        .and_then(|rest| rest.strip_suffix("/v1"))
        .unwrap();
    let body = r#"{"model":"any","messages":[{"role":"user","content":"x"}]}"#;
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "POST /v1/chat/completions HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
    let json: Value = serde_json::from_str(raw.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    // The flags took effect: two chunks, and the think dialect as the default.
    assert_eq!(
        json["choices"][0]["message"]["content"],
        moat_testkit::text::expected_think_content(1, 2)
    );
}

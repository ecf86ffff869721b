//! A mock OpenAI- and Anthropic-compatible model server for the gateway's tests and benchmarks.
//!
//! The gateway proxies to it the way it proxies to vLLM, llama.cpp, the OpenAI API or the
//! Anthropic API: it serves `GET /v1/models`, `POST /v1/chat/completions`, `/v1/completions`,
//! `/v1/responses` and `/v1/messages`, each as JSON or as an SSE stream (`"stream": true`), in
//! every reasoning dialect the gateway must handle ([`Reasoning`]). Replies are deterministic
//! functions of the request (see [`text`]), so tests can assert on what reached the client, and
//! every request is recorded ([`MockServer::requests`]) so tests can assert on what reached
//! upstream.
//!
//! Control headers let a test inject what real upstreams do to gateways:
//!
//! | header | effect |
//! |---|---|
//! | `x-mock-status: 429` | answer that status (400 to 599) with an OpenAI-shaped error body, Anthropic-shaped on `/v1/messages` |
//! | `x-mock-drop-after: K` | abort a stream after K deltas, without finishing it |
//! | `x-mock-latency-ms: N` | wait N ms before answering, instead of [`MockConfig::latency`] |
//! | `x-mock-interval-ms: N` | wait N ms before each delta, instead of [`MockConfig::interval`] |
//! | `x-mock-chunks: N` | stream N content deltas, instead of [`MockConfig::chunks`] |
//! | `x-mock-reasoning: think` | pick the reasoning dialect, whatever the model name |
//!
//! A malformed control header is answered with a 400 rather than ignored. The crate is a test
//! aid: it does not authenticate, tokenise or rate-limit, and its "tokens" are deltas.
//!
//! ```no_run
//! # async fn example() -> Result<(), moat_testkit::MockError> {
//! let mock = moat_testkit::start(moat_testkit::MockConfig::default()).await?;
//! let upstream = mock.base_url(); // "http://127.0.0.1:PORT/v1"
//! // ... point the gateway at `upstream`, send requests through it, then:
//! let seen = mock.requests();
//! # let _ = (upstream, seen);
//! # Ok(())
//! # }
//! ```

mod anthropic;
mod log;
mod openai;
mod reasoning;
mod request;
mod responses;
mod server;
mod sse;
pub mod text;

use axum::serve::ListenerExt;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use log::RequestLog;
pub use reasoning::Reasoning;
pub use sse::{parse_sse, SseEvent};

/// How the mock behaves when a request does not say otherwise.
///
/// Build it with struct update syntax over the default:
/// `MockConfig { chunks: 4, ..MockConfig::default() }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MockConfig {
    /// A fixed delay before every reply, streamed or not; zero (the default) answers at once.
    pub latency: Duration,
    /// The number of content deltas a streamed reply has, and of reasoning deltas when it has
    /// reasoning (default 8). Values outside 1 to [`text::MAX_CHUNKS`] are clamped.
    pub chunks: usize,
    /// The delay before each streamed delta (default zero).
    pub interval: Duration,
    /// The reasoning dialect for model names that do not pick one (default [`Reasoning::Plain`]).
    pub reasoning: Reasoning,
    /// How many of the most recent requests [`MockServer::requests`] keeps (default 1024); 0 turns
    /// recording off, which benchmarks should do.
    pub record_limit: usize,
    /// The largest request body accepted, in bytes (default 16 MiB); larger bodies get a 413.
    pub max_body_bytes: usize,
}

impl Default for MockConfig {
    fn default() -> Self {
        MockConfig {
            latency: Duration::ZERO,
            chunks: 8,
            interval: Duration::ZERO,
            reasoning: Reasoning::Plain,
            record_limit: 1024,
            max_body_bytes: 16 * 1024 * 1024,
        }
    }
}

/// What can go wrong when running the mock.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MockError {
    /// The listening socket could not be bound.
    #[error("cannot bind the mock server to {addr}")]
    Bind {
        /// The address that was asked for.
        addr: String,
        /// Why binding failed.
        #[source]
        source: io::Error,
    },
    /// The bound socket's address could not be read.
    #[error("cannot read the mock server's local address")]
    LocalAddr {
        /// Why reading it failed.
        #[source]
        source: io::Error,
    },
    /// The server stopped with an error.
    #[error("the mock server failed while serving")]
    Serve {
        /// The failure.
        #[source]
        source: io::Error,
    },
    /// A reasoning dialect name was not one of the known ones.
    #[error(
        "unknown reasoning dialect {name:?}: expected plain, reasoning-content, reasoning, \
         reasoning-details or think"
    )]
    UnknownReasoning {
        /// The name given, cut to 64 characters.
        name: String,
    },
}

/// The mock as an axum router, to drive with `tower::ServiceExt::oneshot` without sockets.
pub fn router(cfg: MockConfig) -> axum::Router {
    server::build(cfg).0
}

/// The mock as an axum router together with the record of the requests it receives.
pub fn router_with_log(cfg: MockConfig) -> (axum::Router, RequestLog) {
    server::build(cfg)
}

/// Serves the mock on `listener` until the server fails; it runs forever otherwise.
pub async fn serve(listener: TcpListener, cfg: MockConfig) -> Result<(), MockError> {
    // Without TCP_NODELAY each streamed event waits for the client's delayed ACK.
    let listener = listener.tap_io(|t| {
        let _ = t.set_nodelay(true);
    });
    axum::serve(listener, router(cfg))
        .await
        .map_err(|source| MockError::Serve { source })
}

/// Binds the mock to `127.0.0.1` on a free port and serves it on a spawned task, which stops when
/// the returned [`MockServer`] is dropped. Must be called within a tokio runtime.
pub async fn start(cfg: MockConfig) -> Result<MockServer, MockError> {
    let wanted = SocketAddr::from(([127, 0, 0, 1], 0));
    let listener = TcpListener::bind(wanted)
        .await
        .map_err(|source| MockError::Bind {
            addr: wanted.to_string(),
            source,
        })?;
    let addr = listener
        .local_addr()
        .map_err(|source| MockError::LocalAddr { source })?;
    let (router, log) = server::build(cfg);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        // The serve future only ends once shut down, and the task is aborted right after, so its
        // result has nobody to report to.
        let listener = listener.tap_io(|t| {
            let _ = t.set_nodelay(true);
        });
        let _ = axum::serve(listener, router)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await;
    });
    Ok(MockServer {
        addr,
        log,
        stop: Some(stop),
        task,
    })
}

/// A running mock, from [`start`]. Dropping it stops accepting connections and lets open ones
/// finish their current reply.
#[derive(Debug)]
pub struct MockServer {
    addr: SocketAddr,
    log: RequestLog,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl MockServer {
    /// The address the mock listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The OpenAI-style base URL, `http://127.0.0.1:PORT/v1`, as SDKs and the gateway's upstream
    /// configuration expect it.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The origin without a path, `http://127.0.0.1:PORT`, as Anthropic clients expect it.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The requests received so far (the most recent [`MockConfig::record_limit`]), oldest
    /// first, each as `{"method", "path", "headers", "body"}`.
    pub fn requests(&self) -> Vec<serde_json::Value> {
        self.log.requests()
    }

    /// Forgets the requests received so far.
    pub fn clear(&self) {
        self.log.clear();
    }

    /// The shared record behind [`MockServer::requests`].
    pub fn log(&self) -> &RequestLog {
        &self.log
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            // The server may already be gone; then there is nothing to stop.
            let _ = stop.send(());
        }
        // Aborting closes the listener at once instead of waiting for open connections; the
        // graceful signal above has already told them to close after their current reply.
        self.task.abort();
    }
}

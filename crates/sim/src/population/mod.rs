//! The simulated accounts: one [`Actor`] per account, each a small state machine with its own
//! random stream that says when it sends next and what.
//!
//! Populations live side by side with the same shape: a setup function that creates accounts
//! (identity, network, client, label) and a behaviour that plans calls. `human` holds the
//! session machinery shared by everything that types (ordinary users, enterprise staff,
//! jailbreakers, low-and-slow operators); `benign`, `heavy`, `jailbreak` and `campaign` hold
//! what each population asks and how its accounts are set up. The engine drives actors; this
//! module never writes output.

pub(crate) mod benign;
pub(crate) mod campaign;
pub(crate) mod heavy;
pub(crate) mod human;
pub(crate) mod jailbreak;

use moat_types::{Client, Content, ContentPart, Message, Request, Response};

use crate::call::{Load, Task};
use crate::corpus::{Category, Corpus};
use crate::infra::clients::{ja4, user_agent, Lib};
use crate::infra::{Access, Infra};
use crate::rng::{below, chance, SimRng};
use crate::scenario::Benign;

/// A model as the engine needs it.
#[derive(Debug, Clone)]
pub(crate) struct ModelInfo {
    pub name: String,
    pub reasoning: bool,
    /// When it becomes available (the scenario start for models without `released_at`).
    pub released: i64,
    /// Whether it is released during the scenario (rather than available from the start).
    pub new: bool,
    pub benign_weight: f64,
}

/// Read-only context of a run, shared by every actor.
pub(crate) struct Env<'a> {
    pub corpus: &'a Corpus,
    pub models: &'a [ModelInfo],
    pub benign: &'a Benign,
    pub campaigns: &'a [campaign::Shared],
    /// Problem indices by category, for benchmarks that stick to one kind of task.
    pub by_category: &'a [(Category, Vec<u32>)],
}

impl Env<'_> {
    /// Extra 503 probability for `model` at `ts`: new models are overloaded for two days.
    pub(crate) fn overload(&self, model: u8, ts: i64) -> f64 {
        match self.models.get(usize::from(model)) {
            Some(m)
                if m.new
                    && ts >= m.released
                    && ts < m.released + 2 * moat_types::Timestamp::DAY =>
            {
                0.02
            }
            _ => 0.0,
        }
    }

    /// Whether `model` is a reasoning model.
    pub(crate) fn reasoning(&self, model: u8) -> bool {
        self.models
            .get(usize::from(model))
            .is_some_and(|m| m.reasoning)
    }

    /// Name of `model`.
    pub(crate) fn model_name(&self, model: u8) -> String {
        self.models
            .get(usize::from(model))
            .map(|m| m.name.clone())
            .unwrap_or_default()
    }

    /// Models available at `ts` with their benign adoption weight (ramping up linearly over
    /// `adoption_days` after a release).
    pub(crate) fn benign_model(&self, rng: &mut SimRng, ts: i64) -> u8 {
        let ramp = self.benign.adoption_days * moat_types::Timestamp::DAY as f64;
        let weights: Vec<f64> = self
            .models
            .iter()
            .map(|m| {
                if ts < m.released {
                    0.0
                } else if m.new {
                    m.benign_weight * ((ts - m.released) as f64 / ramp).min(1.0)
                } else {
                    m.benign_weight
                }
            })
            .collect();
        if weights.iter().sum::<f64>() <= 0.0 {
            return 0;
        }
        crate::rng::pick_weighted(rng, &weights) as u8
    }
}

/// A client library as one account uses it: its user agent and TLS fingerprint.
#[derive(Debug, Clone)]
pub(crate) struct ClientId {
    pub user_agent: String,
    pub ja4: &'static str,
}

impl ClientId {
    /// A version and fingerprint of `lib`, drawn with popularity.
    pub(crate) fn of(lib: &Lib, rng: &mut SimRng) -> ClientId {
        ClientId {
            user_agent: user_agent(lib, rng),
            ja4: ja4(lib, rng),
        }
    }
}

/// How an account connects: networks, client software and API keys, with per-session choices.
#[derive(Debug, Clone)]
pub(crate) struct Conn {
    /// Usual access.
    pub access: Access,
    /// Occasional other access (a home user on the phone) and how often it is used.
    pub alt: Option<(Access, f64)>,
    /// Client software; the first is the main one.
    pub clients: Vec<ClientId>,
    /// Number of API keys (1–3).
    pub keys: u8,
    on_alt: bool,
    session: u64,
    client: u8,
    key: u8,
}

impl Conn {
    /// A connection with one access method and client.
    pub(crate) fn new(access: Access, clients: Vec<ClientId>, keys: u8) -> Conn {
        Conn {
            access,
            alt: None,
            clients,
            keys: keys.max(1),
            on_alt: false,
            session: 0,
            client: 0,
            key: 0,
        }
    }

    /// Starts a session: picks the access, the client and the key for its requests.
    pub(crate) fn new_session(&mut self, rng: &mut SimRng) {
        self.session = rand::Rng::gen(rng);
        self.on_alt = self.alt.as_ref().is_some_and(|(_, p)| chance(rng, *p));
        self.client = if self.clients.len() > 1 && chance(rng, 0.25) {
            below(rng, self.clients.len()) as u8
        } else {
            0
        };
        self.key = if self.keys > 1 && chance(rng, 0.4) {
            below(rng, usize::from(self.keys)) as u8
        } else {
            0
        };
    }

    /// Index of the API key in use.
    pub(crate) fn key(&self) -> u8 {
        self.key
    }

    /// The `client` block of a request at `ts`.
    pub(crate) fn client(&self, infra: &Infra, ts: i64, rng: &mut SimRng) -> Client {
        let access = match (&self.alt, self.on_alt) {
            (Some((alt, _)), true) => alt,
            _ => &self.access,
        };
        let ep = infra.endpoint(access, ts, self.session, rng);
        let id = self
            .clients
            .get(usize::from(self.client))
            .or_else(|| self.clients.first());
        Client {
            ip: Some(ep.ip),
            asn: Some(ep.asn),
            country: Some(ep.country.to_owned()),
            user_agent: id.map(|c| c.user_agent.clone()),
            tls_ja4: id.map(|c| c.ja4.to_owned()),
        }
    }
}

/// What a behaviour decided to send.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub request: Request,
    pub task: Task,
    pub model: u8,
}

/// A pending automatic retry of a failed request (SDKs retry 429 and 5xx with backoff).
#[derive(Debug, Clone)]
pub(crate) struct Retry {
    pub at: i64,
    pub plan: Plan,
    pub attempt: u8,
}

/// The behaviours, one per kind of account.
#[derive(Debug, Clone)]
pub(crate) enum Behavior {
    /// Anything that types in sessions.
    Human(human::Human),
    /// An app backend.
    App(heavy::App),
    /// An evaluation harness.
    Harness(heavy::Harness),
    /// A scripted campaign member (waves or a continuous loop).
    Member(campaign::Member),
}

impl Behavior {
    /// Time of the first call, if any within the scenario.
    pub(crate) fn first(&mut self, rng: &mut SimRng, env: &Env<'_>) -> Option<i64> {
        match self {
            Behavior::Human(h) => h.first(rng),
            Behavior::App(a) => a.first(rng),
            Behavior::Harness(h) => h.first(rng, env),
            Behavior::Member(m) => m.first(rng, env),
        }
    }

    /// What to send at `ts`.
    pub(crate) fn plan(
        &mut self,
        ts: i64,
        rng: &mut SimRng,
        conn: &mut Conn,
        env: &Env<'_>,
    ) -> Plan {
        match self {
            Behavior::Human(h) => h.plan(ts, rng, conn, env),
            Behavior::App(a) => a.plan(ts, rng, conn, env),
            Behavior::Harness(h) => h.plan(ts, rng, conn, env),
            Behavior::Member(m) => m.plan(ts, rng, conn, env),
        }
    }

    /// When to send next, given the response to the call made at `ts`.
    pub(crate) fn after(
        &mut self,
        ts: i64,
        response: &Response,
        rng: &mut SimRng,
        env: &Env<'_>,
    ) -> Option<i64> {
        match self {
            Behavior::Human(h) => h.after(ts, response, rng),
            Behavior::App(a) => a.after(ts, rng),
            Behavior::Harness(h) => h.after(ts, rng, env),
            Behavior::Member(m) => m.after(ts, rng, env),
        }
    }

    /// Failure probabilities of this account's requests.
    pub(crate) fn load(&self) -> Load {
        match self {
            Behavior::Human(h) => h.load,
            Behavior::App(_) => Load {
                rate_limited: 0.01,
                overloaded: 0.0,
            },
            Behavior::Harness(_) => Load {
                rate_limited: 0.03,
                overloaded: 0.0,
            },
            Behavior::Member(m) => m.load,
        }
    }
}

/// One simulated account's state.
#[derive(Debug, Clone)]
pub(crate) struct Actor {
    pub rng: SimRng,
    pub conn: Conn,
    pub behavior: Behavior,
    /// Next call the behaviour planned (`None`: done).
    pub planned: Option<i64>,
    /// A pending retry, which goes before the planned call.
    pub retry: Option<Box<Retry>>,
    /// Exchanges sent so far.
    pub sent: u64,
    /// Probability of retrying a retryable failure.
    pub retry_probability: f64,
}

impl Actor {
    /// When this actor next sends, if ever.
    pub(crate) fn next_time(&self) -> Option<i64> {
        match (&self.retry, self.planned) {
            (Some(r), Some(p)) => Some(r.at.min(p)),
            (Some(r), None) => Some(r.at),
            (None, p) => p,
        }
    }
}

/// A user message, as a string or (for SDKs that send it so) an array of one text part.
pub(crate) fn user_message(text: String, parts: bool) -> Message {
    message("user", text, parts)
}

/// A message with `role`, as a string or an array of one text part.
pub(crate) fn message(role: &str, text: String, parts: bool) -> Message {
    let content = if parts {
        Content::Parts(vec![ContentPart {
            kind: "text".to_owned(),
            text: Some(text),
        }])
    } else {
        Content::Text(text)
    };
    Message {
        role: role.to_owned(),
        content: Some(content),
    }
}

/// Prompt tokens of a request: about four bytes a token, plus per-message overhead.
pub(crate) fn prompt_tokens(request: &Request) -> u64 {
    let mut bytes = 0usize;
    for m in &request.messages {
        bytes += match &m.content {
            Some(Content::Text(t)) => t.len(),
            Some(Content::Parts(p)) => p
                .iter()
                .map(|x| x.text.as_ref().map_or(0, String::len))
                .sum(),
            None => 0,
        } + 16;
    }
    bytes += request.prompt.as_ref().map_or(0, String::len);
    (bytes / 4) as u64 + 3
}

/// Which endpoint a request goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Chat,
    Responses,
    Completions,
}

impl Endpoint {
    /// The path.
    pub(crate) fn path(self) -> &'static str {
        match self {
            Endpoint::Chat => "/v1/chat/completions",
            Endpoint::Responses => "/v1/responses",
            Endpoint::Completions => "/v1/completions",
        }
    }
}

/// Builds a request: chat-shaped messages, or for the completions endpoint a bare prompt made
/// of the last user text.
pub(crate) fn request(
    endpoint: Endpoint,
    model: String,
    messages: Vec<Message>,
    params: moat_types::Params,
) -> Request {
    if endpoint == Endpoint::Completions {
        let prompt = messages
            .iter()
            .rev()
            .find(|m| m.role == "user")
            .map(Message::text_content)
            .unwrap_or_default();
        return Request {
            endpoint: Some(endpoint.path().to_owned()),
            model: Some(model),
            messages: Vec::new(),
            prompt: Some(prompt),
            params: Some(params),
        };
    }
    Request {
        endpoint: Some(endpoint.path().to_owned()),
        model: Some(model),
        messages,
        prompt: None,
        params: Some(params),
    }
}

/// Corpus text by index, empty if out of range (setup checks the pools are non-empty).
pub(crate) fn pick<'a>(list: &'a [String], rng: &mut SimRng) -> &'a str {
    list.get(below(rng, list.len())).map_or("", String::as_str)
}

//! Sessions of accounts that a person drives: ordinary users, enterprise staff, jailbreakers
//! and low-and-slow operators.
//!
//! A session starts at a time drawn from the account's daily rhythm, runs a few turns
//! separated by reading and typing time, and carries its history in `messages` (capped at a
//! few turns to bound memory). What is asked comes from the account's [`Source`]. The session
//! machinery is shared so that a low-and-slow operator's timing is as human as a real user's:
//! only the content differs.

use moat_types::{Message, Response};

use super::{
    benign, campaign, jailbreak, message, request, user_message, Conn, Endpoint, Env, Plan,
};
use crate::call::{Load, Style, Task};
use crate::rng::{geometric, lognormal, SimRng};
use crate::text::assistant_reply;
use crate::timing::Clock;

/// Messages of history kept at most (three exchanges).
const MAX_HISTORY: usize = 6;

/// What a human-driven account asks.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    /// An ordinary user.
    Benign,
    /// A jailbreak-only account.
    Jailbreak { template_share: f64 },
    /// A low-and-slow campaign operator: member `member` of campaign `campaign`, having
    /// harvested `taken` problems so far.
    Stealth {
        campaign: u16,
        member: u32,
        taken: u64,
    },
}

/// The system prompt an account sends, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SystemPrompt {
    None,
    Builtin(&'static str),
    Corpus(u32),
}

impl SystemPrompt {
    /// The system message, if any.
    pub(crate) fn message(&self, env: &Env<'_>, parts: bool) -> Option<Message> {
        let text = match self {
            SystemPrompt::None => return None,
            SystemPrompt::Builtin(t) => (*t).to_owned(),
            SystemPrompt::Corpus(i) => env
                .corpus
                .system_prompts
                .get(*i as usize)
                .cloned()
                .unwrap_or_default(),
        };
        Some(message("system", text, parts))
    }
}

/// Which model a human-driven account uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ModelChoice {
    /// Always this one (hard-coded in the client).
    Pinned(u8),
    /// Per session, following benign adoption of new models.
    Adopting,
}

/// A human-driven account.
#[derive(Debug, Clone)]
pub(crate) struct Human {
    pub source: Source,
    pub clock: Clock,
    pub sessions_per_day: f64,
    pub mean_turns: f64,
    /// Active window: no call before `from` or at/after `until`.
    pub from: i64,
    pub until: i64,
    pub style: Style,
    pub model: ModelChoice,
    pub system: SystemPrompt,
    /// Probabilities of the responses and completions endpoints (the rest is chat).
    pub endpoints: [f64; 2],
    /// Sends content as an array of parts.
    pub parts: bool,
    pub load: Load,
    session: Option<Session>,
}

#[derive(Debug, Clone)]
struct Session {
    turn: u16,
    turns: u16,
    /// Conversation replayed from the corpus, if any.
    conversation: Option<u32>,
    history: Vec<Message>,
    model: u8,
    endpoint: Endpoint,
    /// Task of the previous turn (a harvested problem invites a follow-up).
    last: Task,
    /// The user message of the call in flight, kept for the history when more turns follow.
    pending: Option<Message>,
}

/// What one turn asks, before it is wrapped into a request.
pub(crate) struct Turn {
    pub text: String,
    pub task: Task,
}

impl Human {
    /// A human-driven account; sessions start once `first` is called.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        source: Source,
        clock: Clock,
        sessions_per_day: f64,
        mean_turns: f64,
        window: (i64, i64),
        style: Style,
        model: ModelChoice,
        system: SystemPrompt,
        endpoints: [f64; 2],
        parts: bool,
        load: Load,
    ) -> Human {
        Human {
            source,
            clock,
            sessions_per_day,
            mean_turns,
            from: window.0,
            until: window.1,
            style,
            model,
            system,
            endpoints,
            parts,
            load,
            session: None,
        }
    }

    /// Expected calls over the active window.
    pub(crate) fn expected_calls(&self) -> f64 {
        let days = (self.until - self.from).max(0) as f64 / moat_types::Timestamp::DAY as f64;
        days * self.sessions_per_day * self.mean_turns
    }

    pub(crate) fn first(&mut self, rng: &mut SimRng) -> Option<i64> {
        self.clock
            .next_event(rng, self.from, self.sessions_per_day, self.until)
    }

    fn start_session(
        &mut self,
        ts: i64,
        rng: &mut SimRng,
        conn: &mut Conn,
        env: &Env<'_>,
    ) -> Session {
        conn.new_session(rng);
        let u: f64 = rand::Rng::gen(rng);
        let endpoint = if u < self.endpoints[0] {
            Endpoint::Responses
        } else if u < self.endpoints[0] + self.endpoints[1] {
            Endpoint::Completions
        } else {
            Endpoint::Chat
        };
        let conversation = match self.source {
            Source::Benign if endpoint != Endpoint::Completions => {
                benign::pick_conversation(rng, env)
            }
            _ => None,
        };
        let mut turns = geometric(rng, 1.0 / self.mean_turns).min(40) as u16;
        if let Some(c) = conversation {
            let len = env
                .corpus
                .benign_conversations
                .get(c as usize)
                .map_or(1, Vec::len)
                .min(8) as u16;
            turns = turns.max(len);
        }
        if endpoint == Endpoint::Completions {
            turns = 1;
        }
        let model = match self.model {
            ModelChoice::Pinned(m) => m,
            ModelChoice::Adopting => env.benign_model(rng, ts),
        };
        Session {
            turn: 0,
            turns,
            conversation,
            history: Vec::new(),
            model,
            endpoint,
            last: Task::Chat,
            pending: None,
        }
    }

    pub(crate) fn plan(
        &mut self,
        ts: i64,
        rng: &mut SimRng,
        conn: &mut Conn,
        env: &Env<'_>,
    ) -> Plan {
        let mut session = match self.session.take() {
            Some(s) => s,
            None => self.start_session(ts, rng, conn, env),
        };
        let turn = match &mut self.source {
            Source::Benign => {
                benign::turn(rng, env, session.turn, session.conversation, session.last)
            }
            Source::Jailbreak { template_share } => jailbreak::turn(rng, env, *template_share),
            Source::Stealth {
                campaign,
                member,
                taken,
            } => campaign::stealth_turn(
                rng,
                env,
                *campaign,
                *member,
                taken,
                session.turn,
                session.last,
            ),
        };
        let mut messages = Vec::with_capacity(session.history.len() + 2);
        if let Some(system) = self.system.message(env, self.parts) {
            messages.push(system);
        }
        messages.extend(session.history.iter().cloned());
        let user = user_message(turn.text, self.parts);
        if session.turn + 1 < session.turns {
            session.pending = Some(user.clone());
        }
        messages.push(user);
        let params = self.style.params(rng, env.reasoning(session.model));
        let req = request(
            session.endpoint,
            env.model_name(session.model),
            messages,
            params,
        );
        let plan = Plan {
            request: req,
            task: turn.task,
            model: session.model,
        };
        session.last = turn.task;
        self.session = Some(session);
        plan
    }

    pub(crate) fn after(&mut self, ts: i64, response: &Response, rng: &mut SimRng) -> Option<i64> {
        let latency = response.latency_ms.unwrap_or(0) as i64;
        let Some(mut session) = self.session.take() else {
            return self
                .clock
                .next_event(rng, ts + latency, self.sessions_per_day, self.until);
        };
        session.turn += 1;
        if session.turn < session.turns {
            // Remember the exchange; the reply stands in for the real answer's text.
            if let Some(user) = session.pending.take() {
                session.history.push(user);
                session.history.push(message(
                    "assistant",
                    assistant_reply(rand::Rng::gen(rng)),
                    false,
                ));
                if session.history.len() > MAX_HISTORY {
                    let cut = session.history.len() - MAX_HISTORY;
                    session.history.drain(..cut);
                }
            }
            let think = lognormal(rng, 40_000.0, 0.9).clamp(3_000.0, 1_800_000.0) as i64;
            let next = ts + latency + think;
            if next < self.until {
                self.session = Some(session);
                return Some(next);
            }
            return None;
        }
        let rest = ts + latency + 60_000;
        self.clock
            .next_event(rng, rest, self.sessions_per_day, self.until)
    }
}

#[cfg(test)]
mod tests {}

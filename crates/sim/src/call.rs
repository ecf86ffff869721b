//! One API call's numbers: the sampling parameters a client sends and the response the
//! simulated API gives (status, token usage, finish reason, latency).
//!
//! Parameters come from a per-account or per-campaign [`Style`], because real clients
//! configure them once in code. Responses depend on the task (a chat answer is shorter than an
//! articulated chain of reasoning), the model (reasoning models spend reasoning tokens by
//! effort), the token budget (`finish_reason = "length"` when it runs out) and load (429s,
//! 5xx). No response text is produced: the simulator does not log it.

use std::collections::BTreeMap;

use moat_types::{Params, Response};

use crate::rng::{chance, lognormal, pick_weighted, SimRng};

/// What kind of work a request asks for; drives output length and reasoning effort.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Task {
    /// Open chat or a writing request.
    Chat,
    /// A short follow-up in a conversation.
    FollowUp,
    /// A reasoning problem asked plainly.
    Problem,
    /// A problem wrapped in a step-by-step phrasing.
    StepByStep,
    /// "Articulate the internal reasoning" extraction.
    Extraction,
    /// Rubric grading of a given answer.
    Rubric,
    /// A jailbreak attempt (often refused).
    Jailbreak,
    /// An app backend's narrow templated task.
    App,
    /// An evaluation-harness benchmark item.
    Harness,
}

impl Task {
    /// Median completion tokens and the reasoning multiplier of the task.
    fn shape(self) -> (f64, f64) {
        match self {
            Task::Chat => (250.0, 0.35),
            Task::FollowUp => (160.0, 0.3),
            Task::Problem => (380.0, 1.0),
            Task::StepByStep => (520.0, 0.9),
            Task::Extraction => (1300.0, 1.2),
            Task::Rubric => (260.0, 0.6),
            Task::Jailbreak => (380.0, 0.5),
            Task::App => (110.0, 0.2),
            Task::Harness => (320.0, 1.0),
        }
    }
}

/// How a client sets its parameters. `None` fields are not sent.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Style {
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub max_tokens: Option<u64>,
    pub reasoning_effort: Option<&'static str>,
    pub stream: Option<bool>,
    pub n: Option<u64>,
    /// Probability of asking for several choices (`n` of 2–4) on one request.
    pub multi_n_share: f64,
    /// Probability of asking for log-probabilities on one request.
    pub logprobs_share: f64,
}

impl Style {
    /// An ordinary developer's configuration; `stream_share` comes from the client library.
    pub(crate) fn benign(rng: &mut SimRng, stream_share: f64) -> Style {
        let temperature = [None, Some(0.7), Some(1.0), Some(0.2), Some(0.0), Some(0.5)]
            [pick_weighted(rng, &[50.0, 18.0, 10.0, 7.0, 8.0, 7.0])];
        let max_tokens = [
            None,
            Some(256),
            Some(512),
            Some(1024),
            Some(2048),
            Some(4096),
        ][pick_weighted(rng, &[55.0, 8.0, 10.0, 12.0, 8.0, 7.0])];
        let reasoning_effort = [None, Some("low"), Some("medium"), Some("high")]
            [pick_weighted(rng, &[65.0, 12.0, 15.0, 8.0])];
        let stream = chance(rng, stream_share);
        Style {
            temperature,
            top_p: [None, Some(1.0), Some(0.9)][pick_weighted(rng, &[90.0, 5.0, 5.0])],
            max_tokens,
            reasoning_effort,
            // Clients that stream say so; others mostly leave the default out.
            stream: if stream {
                Some(true)
            } else if chance(rng, 0.2) {
                Some(false)
            } else {
                None
            },
            n: if chance(rng, 0.08) { Some(1) } else { None },
            multi_n_share: 0.0,
            logprobs_share: 0.0,
        }
    }

    /// A harvesting script's configuration: large budgets and high reasoning effort.
    pub(crate) fn harvester(rng: &mut SimRng) -> Style {
        Style {
            temperature: [None, Some(0.6), Some(0.7), Some(1.0)]
                [pick_weighted(rng, &[30.0, 25.0, 25.0, 20.0])],
            top_p: None,
            max_tokens: Some([8192, 16384, 32768][pick_weighted(rng, &[25.0, 40.0, 35.0])]),
            reasoning_effort: Some("high"),
            stream: if chance(rng, 0.3) { Some(false) } else { None },
            n: None,
            multi_n_share: 0.0,
            logprobs_share: 0.0,
        }
    }

    /// The parameters of one request; `reasoning` says whether the model takes an effort.
    pub(crate) fn params(&self, rng: &mut SimRng, reasoning: bool) -> Params {
        let mut n = self.n;
        if self.multi_n_share > 0.0 && chance(rng, self.multi_n_share) {
            n = Some(2 + rand::Rng::gen_range(rng, 0..3));
        }
        let logprobs = self.logprobs_share > 0.0 && chance(rng, self.logprobs_share);
        Params {
            temperature: self.temperature,
            top_p: self.top_p,
            max_tokens: self.max_tokens,
            n,
            reasoning_effort: if reasoning {
                self.reasoning_effort.map(str::to_owned)
            } else {
                None
            },
            stream: self.stream,
            logprobs: logprobs.then_some(true),
            top_logprobs: logprobs.then_some(5),
            extra: BTreeMap::new(),
        }
    }
}

/// How likely a caller's requests fail, by population.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Load {
    /// Probability of a 429 (rate limited).
    pub rate_limited: f64,
    /// Extra probability of a 503 (the model is overloaded, e.g. just after a release).
    pub overloaded: f64,
}

/// The simulated API's answer to one request.
pub(crate) fn respond(
    rng: &mut SimRng,
    task: Task,
    reasoning_model: bool,
    params: Option<&Params>,
    prompt_tokens: u64,
    load: Load,
) -> Response {
    let u: f64 = rand::Rng::gen(rng);
    let bad_request = 0.002 + if prompt_tokens > 30_000 { 0.5 } else { 0.0 };
    let mut cut = load.rate_limited;
    let error = if u < cut {
        Some((429, lognormal(rng, 35.0, 0.5)))
    } else if u < {
        cut += 0.002;
        cut
    } {
        Some((500, lognormal(rng, 900.0, 1.0)))
    } else if u < {
        cut += 0.002 + load.overloaded;
        cut
    } {
        Some((503, lognormal(rng, 120.0, 0.6)))
    } else if u < cut + bad_request {
        Some((400, lognormal(rng, 25.0, 0.4)))
    } else {
        None
    };
    if let Some((status, latency)) = error {
        return Response {
            status: Some(status),
            latency_ms: Some(latency.max(3.0) as u64),
            ..Response::default()
        };
    }

    let (median, reasoning_factor) = task.shape();
    let refused = task == Task::Jailbreak && chance(rng, 0.55);
    let filtered = task == Task::Jailbreak && !refused && chance(rng, 0.08);
    let n = params.and_then(|p| p.n).unwrap_or(1).max(1);
    let mut completion = if refused {
        lognormal(rng, 45.0, 0.4)
    } else {
        lognormal(rng, median, 0.7)
    } * n as f64;
    let mut reasoning = if reasoning_model {
        let effort = params
            .and_then(|p| p.reasoning_effort.as_deref())
            .unwrap_or("medium");
        let base = match effort {
            "minimal" => 60.0,
            "low" => 300.0,
            "high" => 3200.0,
            _ => 1100.0,
        };
        let factor = if refused { 0.2 } else { reasoning_factor };
        Some(lognormal(rng, base * factor, 0.8) * n as f64)
    } else {
        None
    };
    let budget = params.and_then(|p| p.max_tokens).unwrap_or(32_768) as f64 * n as f64;
    let mut finish = if filtered { "content_filter" } else { "stop" };
    let used = completion + reasoning.unwrap_or(0.0);
    if used > budget {
        finish = "length";
        match reasoning.as_mut() {
            Some(r) if *r >= budget => {
                *r = budget;
                completion = 0.0;
            }
            Some(r) => completion = budget - *r,
            None => completion = budget,
        }
    }
    // A budget spent entirely on reasoning leaves no visible answer.
    let completion = if finish == "length" {
        completion.max(0.0)
    } else {
        completion.max(1.0)
    }
    .round();
    let reasoning = reasoning.map(f64::round);
    let ttft = lognormal(rng, 420.0, 0.4) + prompt_tokens as f64 * 0.02;
    let tokens_per_s = lognormal(rng, if reasoning.is_some() { 110.0 } else { 70.0 }, 0.25);
    let latency = ttft
        + (completion / n as f64 + reasoning.unwrap_or(0.0) / n as f64) / tokens_per_s * 1000.0;
    Response {
        status: Some(200),
        prompt_tokens: Some(prompt_tokens),
        completion_tokens: Some(completion as u64),
        reasoning_tokens: reasoning.map(|r| r as u64),
        finish_reason: Some(finish.to_owned()),
        latency_ms: Some(latency as u64),
        content: None,
        reasoning: None,
    }
}

/// Whether a client may retry this status (rate limits and server errors).
pub(crate) fn retryable(status: Option<u16>) -> bool {
    matches!(status, Some(429 | 500 | 502 | 503))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{rng_for, Stream};

    const CALM: Load = Load {
        rate_limited: 0.0,
        overloaded: 0.0,
    };

    #[test]
    fn budgets_cut_output_with_length() {
        let mut rng = rng_for(1, Stream::Behaviour, 0);
        let params = Params {
            max_tokens: Some(64),
            reasoning_effort: Some("high".into()),
            ..Params::default()
        };
        let mut lengths = 0;
        for _ in 0..200 {
            let r = respond(&mut rng, Task::Extraction, true, Some(&params), 100, CALM);
            if r.status == Some(200) {
                let used = r.completion_tokens.unwrap_or(0) + r.reasoning_tokens.unwrap_or(0);
                assert!(used <= 65, "{used}");
                lengths += usize::from(r.finish_reason.as_deref() == Some("length"));
            }
        }
        assert!(lengths > 150);
    }

    #[test]
    fn non_reasoning_models_report_no_reasoning_tokens() {
        let mut rng = rng_for(1, Stream::Behaviour, 1);
        for _ in 0..100 {
            let r = respond(&mut rng, Task::Chat, false, None, 50, CALM);
            assert!(r.reasoning_tokens.is_none());
        }
    }

    #[test]
    fn rate_limits_follow_load() {
        let mut rng = rng_for(1, Stream::Behaviour, 2);
        let load = Load {
            rate_limited: 0.3,
            overloaded: 0.0,
        };
        let n = (0..2000)
            .filter(|_| respond(&mut rng, Task::Chat, true, None, 50, load).status == Some(429))
            .count();
        assert!((500..700).contains(&n), "{n}");
    }
}

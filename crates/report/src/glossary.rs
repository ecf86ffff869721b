//! Reason names and their meanings, for the report's glossary.
//!
//! The names are the detection engine's public contract (`moat_detect::Reason`); the meanings
//! are copied from its documentation so that this crate does not depend on the engine. A
//! caller that has the engine passes the authoritative list of names through
//! [`crate::ReportOptions::glossary`] and looks meanings up with [`reason_description`]; a
//! name without a known meaning is still listed, so a new reason can never vanish from the
//! report.

/// One glossary line: a reason name and what it means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlossaryEntry {
    /// Stable snake_case name, as written in `detections.jsonl`.
    pub name: String,
    /// One-line meaning.
    pub meaning: String,
}

impl GlossaryEntry {
    /// A glossary line.
    pub fn new(name: impl Into<String>, meaning: impl Into<String>) -> Self {
        GlossaryEntry {
            name: name.into(),
            meaning: meaning.into(),
        }
    }
}

/// Meanings of the reason names the detection engine writes, in its output order (copied from
/// the documentation of `moat_detect::Reason`), followed by campaign signal names that are
/// not reasons.
pub const REASON_DESCRIPTIONS: [(&str, &str); 20] = [
    ("campaign_member", "It belongs to a detected campaign."),
    (
        "shared_template",
        "It reuses the same prompt wrappers as other accounts of its campaign.",
    ),
    (
        "shared_payment",
        "It shares a payment method with other accounts of its campaign.",
    ),
    (
        "shared_email_domain",
        "Its e-mail domain is shared with other accounts of its campaign and few others (a \
         throwaway or shell-company domain, not a mail provider).",
    ),
    (
        "shared_network",
        "It shares network addresses (IPv4 /24, IPv6 /48, or an autonomous system used mostly \
         by them) with other accounts of its campaign.",
    ),
    (
        "shared_client",
        "Its client build (user agent with TLS JA4) is shared with other accounts of its \
         campaign and few others.",
    ),
    (
        "signup_burst",
        "It was created in a burst of sign-ups together with other accounts of its campaign.",
    ),
    (
        "synchronized_timing",
        "It sends requests in the same minutes as other accounts of its campaign, again and \
         again.",
    ),
    (
        "shared_system_prompt",
        "It shares a system prompt with other accounts of its campaign.",
    ),
    (
        "model_pivot",
        "It moved much of its traffic to a newly released model within days of the release.",
    ),
    (
        "cot_elicitation",
        "Most of its requests ask the model to spell out its reasoning (step by step, internal \
         monologue, articulate the reasoning behind an answer, rubric grading).",
    ),
    (
        "jailbreak",
        "Many of its requests are jailbreak or prompt-attack attempts.",
    ),
    (
        "harvest_params",
        "Its requests ask for harvest-style output: large output budgets, high reasoning \
         effort, several choices or log-probabilities.",
    ),
    (
        "single_turn",
        "Almost all its requests are single-turn (no conversation history).",
    ),
    (
        "capability_sweep",
        "It sweeps many task categories (math, code, reasoning, knowledge, writing…).",
    ),
    (
        "high_volume",
        "Its volume is far above what ordinary accounts send.",
    ),
    (
        "round_the_clock",
        "It is active around the clock rather than in one person's waking hours.",
    ),
    (
        "new_account",
        "It was created shortly before it started sending this traffic.",
    ),
    (
        "shared_asn",
        "Campaign evidence (not an account reason): autonomous systems whose users are mostly \
         the campaign's members.",
    ),
    (
        "content",
        "Campaign evidence (not an account reason): what the members' requests ask for, \
         the share that elicits reasoning and the share of jailbreaks.",
    ),
];

/// The known meaning of a reason or signal name.
pub fn reason_description(name: &str) -> Option<&'static str> {
    REASON_DESCRIPTIONS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, m)| *m)
}

/// Every known name with its meaning, in the engine's output order.
pub fn default_glossary() -> Vec<GlossaryEntry> {
    REASON_DESCRIPTIONS
        .iter()
        .map(|(n, m)| GlossaryEntry::new(*n, *m))
        .collect()
}

//! The stable snake_case reason names that explain why an account was flagged.
//!
//! These names are a public contract (they appear in `detections.jsonl` and dashboards);
//! change a meaning only by adding a new name. Each is documented here and in the README.

/// One reason an account is risky.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Reason {
    /// Most of its requests ask the model to spell out its reasoning (step by step, internal
    /// monologue, articulate the reasoning behind an answer, rubric grading).
    CotElicitation,
    /// Many of its requests are jailbreak or prompt-attack attempts.
    Jailbreak,
    /// Its requests ask for harvest-style output: large output budgets, high reasoning effort,
    /// several choices or log-probabilities.
    HarvestParams,
    /// Almost all its requests are single-turn (no conversation history).
    SingleTurn,
    /// It sweeps many task categories (math, code, reasoning, knowledge, writing…).
    CapabilitySweep,
    /// Its volume is far above what ordinary accounts send.
    HighVolume,
    /// It is active around the clock rather than in one person's waking hours.
    RoundTheClock,
    /// It was created shortly before it started sending this traffic.
    NewAccount,
    /// It reuses the same prompt wrappers as other accounts of its campaign.
    SharedTemplate,
    /// It shares a payment method with other accounts of its campaign.
    SharedPayment,
    /// It shares network addresses (IPv4 /24, IPv6 /48) with other accounts of its campaign.
    SharedNetwork,
    /// It was created in a burst of sign-ups together with other accounts of its campaign.
    SignupBurst,
    /// It shares a system prompt with other accounts of its campaign.
    SharedSystemPrompt,
    /// It belongs to a detected campaign.
    CampaignMember,
    /// Its e-mail domain is shared with other accounts of its campaign and few others (a
    /// throwaway or shell-company domain, not a mail provider).
    SharedEmailDomain,
    /// It moved much of its traffic to a newly released model within days of the release.
    ModelPivot,
    /// Its client build (user agent with TLS JA4 fingerprint) is shared with other accounts of
    /// its campaign and few others.
    SharedClient,
    /// It sends requests in the same minutes as other accounts of its campaign, again and
    /// again (a controller dispatching waves).
    SynchronizedTiming,
}

impl Reason {
    /// Every reason, in output order.
    pub const ALL: [Reason; 18] = [
        Reason::CampaignMember,
        Reason::SharedTemplate,
        Reason::SharedPayment,
        Reason::SharedEmailDomain,
        Reason::SharedNetwork,
        Reason::SharedClient,
        Reason::SignupBurst,
        Reason::SynchronizedTiming,
        Reason::SharedSystemPrompt,
        Reason::ModelPivot,
        Reason::CotElicitation,
        Reason::Jailbreak,
        Reason::HarvestParams,
        Reason::SingleTurn,
        Reason::CapabilitySweep,
        Reason::HighVolume,
        Reason::RoundTheClock,
        Reason::NewAccount,
    ];

    /// The stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::CotElicitation => "cot_elicitation",
            Reason::Jailbreak => "jailbreak",
            Reason::HarvestParams => "harvest_params",
            Reason::SingleTurn => "single_turn",
            Reason::CapabilitySweep => "capability_sweep",
            Reason::HighVolume => "high_volume",
            Reason::RoundTheClock => "round_the_clock",
            Reason::NewAccount => "new_account",
            Reason::SharedTemplate => "shared_template",
            Reason::SharedPayment => "shared_payment",
            Reason::SharedNetwork => "shared_network",
            Reason::SignupBurst => "signup_burst",
            Reason::SharedSystemPrompt => "shared_system_prompt",
            Reason::CampaignMember => "campaign_member",
            Reason::SharedEmailDomain => "shared_email_domain",
            Reason::ModelPivot => "model_pivot",
            Reason::SharedClient => "shared_client",
            Reason::SynchronizedTiming => "synchronized_timing",
        }
    }

    /// What the reason means, in one sentence (the documentation above).
    pub fn description(self) -> &'static str {
        match self {
            Reason::CotElicitation => "Most of its requests ask the model to spell out its reasoning (step by step, internal monologue, articulate the reasoning behind an answer, rubric grading).",
            Reason::Jailbreak => "Many of its requests are jailbreak or prompt-attack attempts.",
            Reason::HarvestParams => "Its requests ask for harvest-style output: large output budgets, high reasoning effort, several choices or log-probabilities.",
            Reason::SingleTurn => "Almost all its requests are single-turn (no conversation history).",
            Reason::CapabilitySweep => "It sweeps many task categories (math, code, reasoning, knowledge, writing…).",
            Reason::HighVolume => "Its volume is far above what ordinary accounts send.",
            Reason::RoundTheClock => "It is active around the clock rather than in one person's waking hours.",
            Reason::NewAccount => "It was created shortly before it started sending this traffic.",
            Reason::SharedTemplate => "It reuses the same prompt wrappers as other accounts of its campaign.",
            Reason::SharedPayment => "It shares a payment method with other accounts of its campaign.",
            Reason::SharedNetwork => "It shares network addresses (IPv4 /24, IPv6 /48, or an autonomous system used mostly by them) with other accounts of its campaign.",
            Reason::SignupBurst => "It was created in a burst of sign-ups together with other accounts of its campaign.",
            Reason::SharedSystemPrompt => "It shares a system prompt with other accounts of its campaign.",
            Reason::CampaignMember => "It belongs to a detected campaign.",
            Reason::SharedEmailDomain => "Its e-mail domain is shared with other accounts of its campaign and few others (a throwaway or shell-company domain, not a mail provider).",
            Reason::SharedClient => "Its client build (user agent with TLS JA4 fingerprint) is shared with other accounts of its campaign and few others.",
            Reason::SynchronizedTiming => "It sends requests in the same minutes as other accounts of its campaign, again and again (a controller dispatching waves).",
            Reason::ModelPivot => "It moved much of its traffic to a newly released model within days of the release.",
        }
    }

    fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

/// A compact set of reasons (one bit each).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reasons(u32);

impl Reasons {
    /// Adds a reason.
    pub fn insert(&mut self, r: Reason) {
        self.0 |= r.bit();
    }

    /// The reasons in either set.
    pub fn union(self, other: Reasons) -> Reasons {
        Reasons(self.0 | other.0)
    }

    /// Whether the set holds `r`.
    pub fn contains(self, r: Reason) -> bool {
        self.0 & r.bit() != 0
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The reasons in the set, in [`Reason::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Reason> {
        Reason::ALL.into_iter().filter(move |r| self.contains(*r))
    }

    /// The names, in [`Reason::ALL`] order.
    pub fn names(self) -> Vec<String> {
        Reason::ALL
            .iter()
            .filter(|r| self.contains(**r))
            .map(|r| r.as_str().to_owned())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_iterate_in_the_order_of_all() {
        let mut set = Reasons::default();
        set.insert(Reason::Jailbreak);
        set.insert(Reason::SharedTemplate);
        let in_order: Vec<Reason> = Reason::ALL
            .into_iter()
            .filter(|r| matches!(r, Reason::Jailbreak | Reason::SharedTemplate))
            .collect();
        assert_eq!(set.iter().collect::<Vec<_>>(), in_order);
        assert_eq!(
            set.names(),
            vec!["shared_template".to_owned(), "jailbreak".to_owned()]
        );
    }

    #[test]
    fn names_are_unique_snake_case_and_all_listed() {
        let mut seen = std::collections::BTreeSet::new();
        for r in Reason::ALL {
            let n = r.as_str();
            assert!(n.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{n}");
            assert!(seen.insert(n), "{n} twice");
        }
        let mut all = Reasons::default();
        for r in Reason::ALL {
            all.insert(r);
        }
        assert_eq!(all.names().len(), Reason::ALL.len());
    }
}

//! The facts a policy is evaluated against: what the gateway knows about one request.
//!
//! Facts are borrowed views built by the gateway for every request, so they are plain structs of
//! references and numbers that cost nothing to construct and never allocate. This module holds
//! no logic: it does not compute risk or attribute accounts (the detection engine and the gateway
//! do), and it does not decide anything (the [`crate::Policy`] does).
//!
//! Unknown values have documented defaults so that rules never see a missing value except for
//! `client.ip`: empty strings for unknown text, `-1` for unknown counts (an `Option` that is
//! `None` here), `0` for absent scores, empty lists.

use std::net::IpAddr;

/// Everything a rule's `when` expression can read about one request.
///
/// Build it with struct-update syntax from [`Facts::default`], which describes an anonymous,
/// unscored request: every string empty, every score 0, every count unknown.
#[derive(Debug, Clone, Copy, Default)]
pub struct Facts<'a> {
    /// Facts about the account the request is attributed to (`account.*`).
    pub account: AccountFacts<'a>,
    /// Facts about the campaign the account belongs to, if any (`campaign.*`).
    pub campaign: CampaignFacts<'a>,
    /// Facts about the request itself (`request.*`).
    pub request: RequestFacts<'a>,
    /// Facts about the network client (`client.*`).
    pub client: ClientFacts<'a>,
    /// Provider-defined attributes (`attr.<name>`), as `(name, value)` pairs. Names should be
    /// lower-case `[a-z0-9_]` as rules write them; a name that is absent reads as `""`, and when a
    /// name appears twice the first pair wins. The list is scanned linearly, so keep it short.
    pub attrs: &'a [(&'a str, &'a str)],
    /// Threat-intelligence matches (`intel.*`).
    pub intel: IntelFacts<'a>,
}

/// Facts about the account (`account.*`).
#[derive(Debug, Clone, Copy, Default)]
pub struct AccountFacts<'a> {
    /// `account.id`: the account identifier, `""` when unknown.
    pub id: &'a str,
    /// `account.risk`: the engine's risk score, 0 to 1.
    pub risk: f64,
    /// `account.flagged`: whether the engine flagged the account.
    pub flagged: bool,
    /// `account.reasons`: the engine's reason names for its verdict.
    pub reasons: &'a [&'a str],
    /// `account.tier`: the provider's plan name, `""` when unknown.
    pub tier: &'a str,
    /// `account.country`: the account's country, `""` when unknown.
    pub country: &'a str,
    /// `account.email_domain`: the domain of the account's e-mail address, `""` when unknown.
    pub email_domain: &'a str,
    /// `account.verified`: whether the provider verified the account's identity.
    pub verified: bool,
    /// `account.age_days`: days since the account was created; `None` reads as `-1`.
    pub age_days: Option<u32>,
}

/// Facts about the account's campaign (`campaign.*`).
#[derive(Debug, Clone, Copy, Default)]
pub struct CampaignFacts<'a> {
    /// `campaign.member`: whether the account belongs to a detected campaign.
    pub member: bool,
    /// `campaign.id`: the campaign identifier, `""` when none.
    pub id: &'a str,
    /// `campaign.score`: the campaign's score, 0 when none.
    pub score: f64,
    /// `campaign.size`: how many accounts the campaign has, 0 when none.
    pub size: u32,
}

/// Facts about the request (`request.*`).
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestFacts<'a> {
    /// `request.cot`: how strongly the request elicits reasoning, 0 to 1.
    pub cot: f64,
    /// `request.jailbreak`: jailbreak likelihood, 0 to 1.
    pub jailbreak: f64,
    /// `request.harvest`: whether the sampling parameters look like output harvesting.
    pub harvest: bool,
    /// `request.category`: the engine's category for the prompt, `""` when unknown.
    pub category: &'a str,
    /// `request.endpoint`: the API path, e.g. `/v1/chat/completions`.
    pub endpoint: &'a str,
    /// `request.model`: the requested model name.
    pub model: &'a str,
    /// `request.stream`: whether the client asked for a stream.
    pub stream: bool,
    /// `request.max_tokens`: the requested output limit; `None` reads as `-1`.
    pub max_tokens: Option<u64>,
}

/// Facts about the network client (`client.*`).
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientFacts<'a> {
    /// `client.ip`: the client address, if known. Every comparison with an absent address is
    /// false, `not in` included.
    pub ip: Option<IpAddr>,
    /// `client.asn`: the autonomous system number; `None` reads as `-1`.
    pub asn: Option<u32>,
    /// `client.country`: the country of the address, `""` when unknown.
    pub country: &'a str,
    /// `client.user_agent`: the User-Agent header, `""` when absent.
    pub user_agent: &'a str,
    /// `client.ja4`: the TLS client fingerprint, `""` when unknown.
    pub ja4: &'a str,
}

/// Threat-intelligence facts (`intel.*`); empty when no partner indicator matched.
#[derive(Debug, Clone, Copy, Default)]
pub struct IntelFacts<'a> {
    /// `intel.match`: whether any feed matched the request.
    pub matched: bool,
    /// `intel.sources`: the names of the feeds that matched.
    pub sources: &'a [&'a str],
    /// `intel.kinds`: what the matching indicators matched on (`address`, `asn`,
    /// `user_agent`, `ja4`, `template`, `payment`).
    pub kinds: &'a [&'a str],
}

impl<'a> Facts<'a> {
    /// The value of `attr.<name>`, `""` when absent.
    pub(crate) fn attr(&self, name: &str) -> &'a str {
        self.attrs
            .iter()
            .find(|(n, _)| *n == name)
            .map_or("", |(_, v)| v)
    }
}

//! The fixed set of fields a `when` expression can read, and how each is read from [`Facts`].
//!
//! This is the single source of truth for field names and types: the parser looks names up
//! here, the evaluator reads values through the `read` functions below, and a test checks that
//! POLICY.md documents every entry. It is not the place for operators or type rules (see
//! `expr`).

use crate::facts::Facts;

/// A numeric field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NumField {
    AccountRisk,
    AccountAgeDays,
    CampaignScore,
    CampaignSize,
    RequestCot,
    RequestJailbreak,
    RequestMaxTokens,
    ClientAsn,
}

/// A string field; provider attributes (`attr.<name>`) are handled apart because their names
/// are open-ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StrField {
    AccountId,
    AccountTier,
    AccountCountry,
    AccountEmailDomain,
    CampaignId,
    RequestCategory,
    RequestEndpoint,
    RequestModel,
    ClientCountry,
    ClientUserAgent,
    ClientJa4,
}

/// A boolean field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BoolField {
    AccountFlagged,
    AccountVerified,
    CampaignMember,
    RequestHarvest,
    RequestStream,
    IntelMatch,
}

/// A string-list field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ListField {
    AccountReasons,
    IntelSources,
    IntelKinds,
}

/// A field of any type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    Num(NumField),
    Str(StrField),
    Bool(BoolField),
    List(ListField),
    /// `client.ip`, the only address field.
    Ip,
}

impl Field {
    /// The type name used in documentation and error messages.
    pub(crate) fn type_name(self) -> &'static str {
        match self {
            Field::Num(_) => "number",
            Field::Str(_) => "string",
            Field::Bool(_) => "bool",
            Field::List(_) => "string list",
            Field::Ip => "ip address",
        }
    }
}

/// Every named field; `attr.<name>` is not listed because any `[a-z0-9_]` name is accepted.
pub(crate) const FIELDS: &[(&str, Field)] = &[
    ("account.id", Field::Str(StrField::AccountId)),
    ("account.risk", Field::Num(NumField::AccountRisk)),
    ("account.flagged", Field::Bool(BoolField::AccountFlagged)),
    ("account.reasons", Field::List(ListField::AccountReasons)),
    ("account.tier", Field::Str(StrField::AccountTier)),
    ("account.country", Field::Str(StrField::AccountCountry)),
    (
        "account.email_domain",
        Field::Str(StrField::AccountEmailDomain),
    ),
    ("account.verified", Field::Bool(BoolField::AccountVerified)),
    ("account.age_days", Field::Num(NumField::AccountAgeDays)),
    ("campaign.member", Field::Bool(BoolField::CampaignMember)),
    ("campaign.id", Field::Str(StrField::CampaignId)),
    ("campaign.score", Field::Num(NumField::CampaignScore)),
    ("campaign.size", Field::Num(NumField::CampaignSize)),
    ("request.cot", Field::Num(NumField::RequestCot)),
    ("request.jailbreak", Field::Num(NumField::RequestJailbreak)),
    ("request.harvest", Field::Bool(BoolField::RequestHarvest)),
    ("request.category", Field::Str(StrField::RequestCategory)),
    ("request.endpoint", Field::Str(StrField::RequestEndpoint)),
    ("request.model", Field::Str(StrField::RequestModel)),
    ("request.stream", Field::Bool(BoolField::RequestStream)),
    ("request.max_tokens", Field::Num(NumField::RequestMaxTokens)),
    ("client.ip", Field::Ip),
    ("client.asn", Field::Num(NumField::ClientAsn)),
    ("client.country", Field::Str(StrField::ClientCountry)),
    ("client.user_agent", Field::Str(StrField::ClientUserAgent)),
    ("client.ja4", Field::Str(StrField::ClientJa4)),
    ("intel.match", Field::Bool(BoolField::IntelMatch)),
    ("intel.sources", Field::List(ListField::IntelSources)),
    ("intel.kinds", Field::List(ListField::IntelKinds)),
];

/// Looks a field up by its exact name.
pub(crate) fn lookup(name: &str) -> Option<Field> {
    FIELDS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

/// The known field closest to `name`, if one is close enough to be a plausible typo.
pub(crate) fn suggest(name: &str) -> Option<&'static str> {
    FIELDS
        .iter()
        .map(|(n, _)| (*n, edit_distance(name, n)))
        .filter(|(_, d)| *d <= 2)
        .min_by_key(|(_, d)| *d)
        .map(|(n, _)| n)
}

/// Levenshtein distance over bytes; inputs are short field names, and anything long is
/// rejected by the caller's length bound before we get here.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// Reads a numeric field; unknown counts read as -1 as documented.
#[inline]
pub(crate) fn read_num(field: NumField, f: &Facts<'_>) -> f64 {
    match field {
        NumField::AccountRisk => f.account.risk,
        NumField::AccountAgeDays => f.account.age_days.map_or(-1.0, f64::from),
        NumField::CampaignScore => f.campaign.score,
        NumField::CampaignSize => f64::from(f.campaign.size),
        NumField::RequestCot => f.request.cot,
        NumField::RequestJailbreak => f.request.jailbreak,
        // Token counts above 2^53 lose precision as floats; no real limit comes close.
        NumField::RequestMaxTokens => f.request.max_tokens.map_or(-1.0, |n| n as f64),
        NumField::ClientAsn => f.client.asn.map_or(-1.0, f64::from),
    }
}

/// Reads a string field.
#[inline]
pub(crate) fn read_str<'a>(field: StrField, f: &Facts<'a>) -> &'a str {
    match field {
        StrField::AccountId => f.account.id,
        StrField::AccountTier => f.account.tier,
        StrField::AccountCountry => f.account.country,
        StrField::AccountEmailDomain => f.account.email_domain,
        StrField::CampaignId => f.campaign.id,
        StrField::RequestCategory => f.request.category,
        StrField::RequestEndpoint => f.request.endpoint,
        StrField::RequestModel => f.request.model,
        StrField::ClientCountry => f.client.country,
        StrField::ClientUserAgent => f.client.user_agent,
        StrField::ClientJa4 => f.client.ja4,
    }
}

/// Reads a boolean field.
#[inline]
pub(crate) fn read_bool(field: BoolField, f: &Facts<'_>) -> bool {
    match field {
        BoolField::AccountFlagged => f.account.flagged,
        BoolField::AccountVerified => f.account.verified,
        BoolField::CampaignMember => f.campaign.member,
        BoolField::RequestHarvest => f.request.harvest,
        BoolField::RequestStream => f.request.stream,
        BoolField::IntelMatch => f.intel.matched,
    }
}

/// Reads a string-list field.
#[inline]
pub(crate) fn read_list<'a>(field: ListField, f: &Facts<'a>) -> &'a [&'a str] {
    match field {
        ListField::AccountReasons => f.account.reasons,
        ListField::IntelSources => f.intel.sources,
        ListField::IntelKinds => f.intel.kinds,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_are_unique() {
        for (i, (a, _)) in FIELDS.iter().enumerate() {
            assert!(FIELDS[i + 1..].iter().all(|(b, _)| a != b), "{a} twice");
        }
    }

    #[test]
    fn suggest_finds_near_misses_only() {
        assert_eq!(suggest("acount.risk"), Some("account.risk"));
        assert_eq!(suggest("request.jailbrake"), Some("request.jailbreak"));
        assert_eq!(suggest("weather.today"), None);
    }

    #[test]
    fn unknown_counts_read_as_minus_one() {
        let f = Facts::default();
        assert_eq!(read_num(NumField::AccountAgeDays, &f), -1.0);
        assert_eq!(read_num(NumField::RequestMaxTokens, &f), -1.0);
        assert_eq!(read_num(NumField::ClientAsn, &f), -1.0);
        assert_eq!(read_num(NumField::CampaignSize, &f), 0.0);
    }
}

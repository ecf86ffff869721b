//! The exporter: selects campaigns, follows their members through the traffic with bounded
//! counters, and writes the bundle.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use moat_detect::template;
use moat_types::{Account, CampaignDetection, Detection, Exchange, Timestamp};
use serde_json::{json, Map, Value};

use crate::key::PartnerKey;
use crate::pattern;
use crate::sketch::{CountMin, Entry, TopK};
use crate::stix::{self, Technique, Tlp};
use crate::IntelError;

/// Largest `count` a sighting may carry (STIX 2.1 section 5.2).
const MAX_SIGHTING_COUNT: u64 = 999_999_999;

/// What to export and for whom.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// The producing organisation (the identity every object is created by).
    pub producer: String,
    /// The partner the bundle is for (named on keyed indicators).
    pub partner: String,
    /// The key shared with the partner.
    pub key: PartnerKey,
    /// The marking of every object.
    pub tlp: Tlp,
    /// Creation time of the objects, start of the indicators' validity.
    pub now: Timestamp,
    /// Days the indicators stay valid after `now`.
    pub valid_days: u32,
    /// Only campaigns first detected at or after this time.
    pub since: Option<Timestamp>,
    /// Only these campaigns (all when empty).
    pub campaigns: Vec<String>,
    /// Most indicators per campaign and kind.
    pub top_k: usize,
    /// Smallest share of a value's traffic (or accounts, for payment) that must come from the
    /// campaign's members for the value to become an indicator; keeps shared carrier NATs,
    /// popular client libraries and common prompt phrasings out.
    pub min_member_share: f64,
}

impl ExportOptions {
    /// Options with the defaults: TLP:AMBER, 30 days, every campaign, 50 per kind, 80%.
    pub fn new(
        producer: impl Into<String>,
        partner: impl Into<String>,
        key: PartnerKey,
        now: Timestamp,
    ) -> Self {
        ExportOptions {
            producer: producer.into(),
            partner: partner.into(),
            key,
            tlp: Tlp::default(),
            now,
            valid_days: 30,
            since: None,
            campaigns: Vec::new(),
            top_k: 50,
            min_member_share: 0.8,
        }
    }
}

/// Counts of what a bundle holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Campaign objects.
    pub campaigns: usize,
    /// Indicators (and as many sightings).
    pub indicators: usize,
    /// Objects in the bundle.
    pub objects: usize,
}

/// Per-campaign state of the pass.
struct Campaign {
    detection: CampaignDetection,
    jailbreak: bool,
    exchanges: u64,
    reasoning_tokens: u64,
    first: Option<Timestamp>,
    last: Option<Timestamp>,
    blocks: TopK<String>,
    asns: TopK<u32>,
    user_agents: TopK<String>,
    ja4s: TopK<String>,
    templates: TopK<u64>,
    /// Raw payment fingerprint of members → accounts, exchanges, first, last. Bounded by the
    /// number of members.
    payments: BTreeMap<String, Payment>,
}

#[derive(Debug, Clone, Default)]
struct Payment {
    accounts: u64,
    exchanges: u64,
    first: Option<Timestamp>,
    last: Option<Timestamp>,
}

/// Builds a STIX 2.1 bundle of the selected campaigns from one pass over the traffic.
pub struct Exporter {
    options: ExportOptions,
    campaigns: Vec<Campaign>,
    /// Member account → (campaign index, member index).
    members: HashMap<String, (u32, u32)>,
    /// Member account → raw payment fingerprint.
    payment_of: HashMap<String, String>,
    /// Every account id of the detections, scrubbed from any text written.
    all_accounts: BTreeSet<String>,
    /// Occurrences of every value in the whole traffic (and of payment fingerprints over all
    /// accounts), members included.
    totals: CountMin,
}

impl std::fmt::Debug for Exporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exporter")
            .field("campaigns", &self.campaigns.len())
            .field("members", &self.members.len())
            .finish_non_exhaustive()
    }
}

/// Sketch keys: a kind tag, then the value.
fn sketch_key(tag: u8, value: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(value.len() + 1);
    k.push(tag);
    k.extend_from_slice(value);
    k
}

impl Exporter {
    /// An exporter of the campaigns of `detections` that `options` selects.
    pub fn new(detections: &[Detection], options: ExportOptions) -> Result<Self, IntelError> {
        if options.producer.trim().is_empty() {
            return Err(IntelError::Empty("producer"));
        }
        if options.partner.trim().is_empty() {
            return Err(IntelError::Empty("partner"));
        }
        if !(1..=3650).contains(&options.valid_days) {
            return Err(IntelError::ValidDays(options.valid_days));
        }
        let mut all_accounts = BTreeSet::new();
        let mut jailbreakers = BTreeSet::new();
        let mut found: Vec<&CampaignDetection> = Vec::new();
        for d in detections {
            match d {
                Detection::Account(a) => {
                    all_accounts.insert(a.account_id.clone());
                    if a.reasons.iter().any(|r| r == "jailbreak") {
                        jailbreakers.insert(a.account_id.as_str());
                    }
                }
                Detection::Campaign(c) => {
                    all_accounts.extend(c.accounts.iter().cloned());
                    found.push(c);
                }
            }
        }
        for wanted in &options.campaigns {
            if !found.iter().any(|c| &c.campaign_id == wanted) {
                return Err(IntelError::UnknownCampaign(wanted.clone()));
            }
        }
        found.sort_by(|a, b| a.campaign_id.cmp(&b.campaign_id));
        found.dedup_by(|a, b| a.campaign_id == b.campaign_id);
        let capacity = options.top_k.max(1) * 4;
        let mut campaigns = Vec::new();
        let mut members = HashMap::new();
        for c in found {
            let named = options.campaigns.is_empty() || options.campaigns.contains(&c.campaign_id);
            let recent = match options.since {
                None => true,
                Some(since) => c.first_detected_at.is_some_and(|t| t >= since),
            };
            if !(named && recent) {
                continue;
            }
            let index = campaigns.len() as u32;
            for (m, account) in c.accounts.iter().enumerate() {
                members.entry(account.clone()).or_insert((index, m as u32));
            }
            let jailbreak =
                c.accounts.iter().any(|a| jailbreakers.contains(a.as_str())) || shows_jailbreaks(c);
            campaigns.push(Campaign {
                detection: c.clone(),
                jailbreak,
                exchanges: 0,
                reasoning_tokens: 0,
                first: None,
                last: None,
                blocks: TopK::new(capacity),
                asns: TopK::new(capacity),
                user_agents: TopK::new(capacity),
                ja4s: TopK::new(capacity),
                templates: TopK::new(capacity),
                payments: BTreeMap::new(),
            });
        }
        Ok(Exporter {
            options,
            campaigns,
            members,
            payment_of: HashMap::new(),
            all_accounts,
            // 4 rows of 2^18 counters: 4 MiB whatever the traffic.
            totals: CountMin::new(4, 18),
        })
    }

    /// Campaigns selected.
    pub fn selected(&self) -> usize {
        self.campaigns.len()
    }

    /// Takes in one line of the accounts side file (before the traffic).
    pub fn add_account(&mut self, account: &Account) {
        let Some(fp) = account.payment_fingerprint.as_deref() else {
            return;
        };
        self.totals.add(&sketch_key(b'p', fp.as_bytes()));
        if let Some(&(c, _)) = self.members.get(&account.account_id) {
            if let Some(campaign) = self.campaigns.get_mut(c as usize) {
                campaign.payments.entry(fp.to_owned()).or_default().accounts += 1;
                self.payment_of
                    .insert(account.account_id.clone(), fp.to_owned());
            }
        }
    }

    /// Takes in one exchange of the traffic (in file order).
    pub fn observe(&mut self, x: &Exchange) {
        let client = x.client.as_ref();
        let block = client
            .and_then(|c| c.ip.as_deref())
            .and_then(pattern::block_of);
        let asn = client.and_then(|c| c.asn);
        let ua = client.and_then(|c| c.user_agent.as_deref());
        let ja4 = client.and_then(|c| c.tls_ja4.as_deref());
        let segments = template::segments_of(&x.last_user_text());
        let templates: Vec<u64> = segments.as_slice().iter().map(|s| s.0).collect();
        if let Some(b) = &block {
            self.totals.add(&sketch_key(b'b', b.as_bytes()));
        }
        if let Some(a) = asn {
            self.totals.add(&sketch_key(b'a', &a.to_le_bytes()));
        }
        if let Some(u) = ua {
            self.totals.add(&sketch_key(b'u', u.as_bytes()));
        }
        if let Some(j) = ja4 {
            self.totals.add(&sketch_key(b'j', j.as_bytes()));
        }
        for t in &templates {
            self.totals.add(&sketch_key(b't', &t.to_le_bytes()));
        }
        let Some(&(c, member)) = self.members.get(&x.account_id) else {
            return;
        };
        let Some(campaign) = self.campaigns.get_mut(c as usize) else {
            return;
        };
        let ts = x.ts;
        campaign.exchanges += 1;
        campaign.reasoning_tokens += x
            .response
            .as_ref()
            .and_then(|r| r.reasoning_tokens)
            .unwrap_or(0);
        campaign.first = Some(campaign.first.map_or(ts, |f| f.min(ts)));
        campaign.last = Some(campaign.last.map_or(ts, |l| l.max(ts)));
        if let Some(b) = &block {
            campaign.blocks.add(b, member, ts);
        }
        if let Some(a) = asn {
            campaign.asns.add(&a, member, ts);
        }
        if let Some(u) = ua {
            campaign.user_agents.add(&u.to_owned(), member, ts);
        }
        if let Some(j) = ja4 {
            campaign.ja4s.add(&j.to_owned(), member, ts);
        }
        for t in &templates {
            campaign.templates.add(t, member, ts);
        }
        if let Some(fp) = self.payment_of.get(&x.account_id) {
            if let Some(p) = campaign.payments.get_mut(fp) {
                p.exchanges += 1;
                p.first = Some(p.first.map_or(ts, |f| f.min(ts)));
                p.last = Some(p.last.map_or(ts, |l| l.max(ts)));
            }
        }
    }

    /// The bundle (a JSON value) and what it holds.
    pub fn finish(self) -> Result<(Value, Summary), IntelError> {
        let o = &self.options;
        let now = o.now.to_string();
        let identity = stix::id("identity", &o.producer);
        let marking = o.tlp.marking_id();
        let common = |kind: &str, id: &str| -> Map<String, Value> {
            let mut m = Map::new();
            m.insert("type".into(), kind.into());
            m.insert("spec_version".into(), "2.1".into());
            m.insert("id".into(), id.into());
            m.insert("created".into(), now.clone().into());
            m.insert("modified".into(), now.clone().into());
            m.insert("created_by_ref".into(), identity.clone().into());
            m.insert("object_marking_refs".into(), json!([marking]));
            m
        };
        let mut objects: Vec<Value> = Vec::new();
        let mut producer = common("identity", &identity);
        producer.remove("created_by_ref");
        producer.insert("name".into(), o.producer.clone().into());
        producer.insert("identity_class".into(), "organization".into());
        objects.push(Value::Object(producer));
        objects.push(o.tlp.marking_definition());

        let valid_until = o
            .now
            .plus_millis(i64::from(o.valid_days) * Timestamp::DAY)
            .to_string();
        let mut techniques: BTreeSet<Technique> = BTreeSet::new();
        let mut summary = Summary::default();
        for c in &self.campaigns {
            let d = &c.detection;
            let cid = stix::id("campaign", &format!("{}/{}", o.producer, d.campaign_id));
            let confidence = (d.score.clamp(0.0, 1.0) * 100.0).round() as u64;
            let mut campaign = common("campaign", &cid);
            campaign.insert("name".into(), format!("Moat {}", d.campaign_id).into());
            campaign.insert(
                "description".into(),
                scrub(&describe(c), &self.all_accounts).into(),
            );
            if let (Some(first), Some(last)) = (c.first, c.last) {
                campaign.insert("first_seen".into(), first.to_string().into());
                campaign.insert("last_seen".into(), last.to_string().into());
            }
            campaign.insert("confidence".into(), confidence.into());
            campaign.insert("x_moat_accounts".into(), d.accounts.len().into());
            campaign.insert("x_moat_exchanges".into(), c.exchanges.into());
            campaign.insert("x_moat_reasoning_tokens".into(), c.reasoning_tokens.into());
            objects.push(Value::Object(campaign));
            summary.campaigns += 1;

            let mut used = vec![stix::EXFILTRATION, stix::PROXY_MODEL];
            if c.jailbreak {
                used.push(stix::JAILBREAK);
            }
            for t in used {
                let ap = stix::id("attack-pattern", t.id);
                objects.push(relationship(&common, &cid, "uses", &ap));
                techniques.insert(t);
            }

            for ind in self.indicators(c) {
                let iid = stix::id(
                    "indicator",
                    &format!("{}/{}/{}", o.producer, d.campaign_id, ind.pattern),
                );
                let mut indicator = common("indicator", &iid);
                indicator.insert("name".into(), ind.name.clone().into());
                indicator.insert(
                    "description".into(),
                    format!(
                        "Seen in {} exchanges of the campaign's members from {} to {}; members \
                         send at least {:.0}% of the traffic with this value.",
                        ind.count,
                        ind.first,
                        ind.last,
                        o.min_member_share * 100.0
                    )
                    .into(),
                );
                indicator.insert("indicator_types".into(), json!([ind.indicator_type]));
                indicator.insert("pattern".into(), ind.pattern.clone().into());
                indicator.insert("pattern_type".into(), "stix".into());
                indicator.insert("pattern_version".into(), "2.1".into());
                indicator.insert("valid_from".into(), ind.first.min(o.now).to_string().into());
                indicator.insert("valid_until".into(), valid_until.clone().into());
                indicator.insert("confidence".into(), confidence.into());
                if ind.keyed {
                    indicator.insert("x_moat_partner".into(), o.partner.clone().into());
                    indicator.insert("x_moat_hmac".into(), "HMAC-SHA256".into());
                }
                objects.push(Value::Object(indicator));
                objects.push(relationship(&common, &iid, "indicates", &cid));
                let sid = stix::id("sighting", &iid);
                let mut sighting = common("sighting", &sid);
                sighting.insert("sighting_of_ref".into(), iid.clone().into());
                sighting.insert("count".into(), ind.count.min(MAX_SIGHTING_COUNT).into());
                sighting.insert("first_seen".into(), ind.first.to_string().into());
                sighting.insert("last_seen".into(), ind.last.to_string().into());
                sighting.insert("where_sighted_refs".into(), json!([identity]));
                objects.push(Value::Object(sighting));
                summary.indicators += 1;
            }
        }
        for t in techniques {
            let mut ap = common("attack-pattern", &stix::id("attack-pattern", t.id));
            ap.insert("name".into(), t.name.into());
            ap.insert("external_references".into(), t.external_reference());
            objects.push(Value::Object(ap));
        }
        objects.sort_by_key(order);
        let ids: Vec<&str> = objects.iter().filter_map(|v| v["id"].as_str()).collect();
        let bundle_id = stix::id("bundle", &format!("{now}/{}", ids.join(",")));
        summary.objects = objects.len();
        Ok((
            json!({"type": "bundle", "id": bundle_id, "objects": objects}),
            summary,
        ))
    }

    /// The indicators of one campaign, each kind ranked by exchanges and cut to `top_k`.
    fn indicators(&self, c: &Campaign) -> Vec<Indicator> {
        let o = &self.options;
        let k = o.top_k;
        let mut out = Vec::new();
        let keep = |tag: u8, key: &[u8], e: &Entry| -> bool {
            let total = self.totals.estimate(&sketch_key(tag, key)).max(1);
            e.lower() as f64 >= o.min_member_share * total as f64
        };
        let id = &c.detection.campaign_id;
        for (b, e) in c
            .blocks
            .ranked()
            .into_iter()
            .filter(|(b, e)| keep(b'b', b.as_bytes(), e))
            .take(k)
        {
            out.push(indicator(
                format!("Address block {b} used by Moat {id}"),
                "malicious-activity",
                pattern::block_pattern(b),
                false,
                e,
            ));
        }
        for (a, e) in c
            .asns
            .ranked()
            .into_iter()
            .filter(|(a, e)| keep(b'a', &a.to_le_bytes(), e))
            .take(k)
        {
            out.push(indicator(
                format!("AS{a} used by Moat {id}"),
                "malicious-activity",
                pattern::asn_pattern(*a),
                false,
                e,
            ));
        }
        for (u, e) in c
            .user_agents
            .ranked()
            .into_iter()
            .filter(|(u, e)| keep(b'u', u.as_bytes(), e))
            .take(k)
        {
            out.push(indicator(
                format!("User agent used by Moat {id}"),
                "anomalous-activity",
                pattern::user_agent_pattern(u),
                false,
                e,
            ));
        }
        for (j, e) in c
            .ja4s
            .ranked()
            .into_iter()
            .filter(|(j, e)| keep(b'j', j.as_bytes(), e))
            .take(k)
        {
            out.push(indicator(
                format!("JA4 fingerprint used by Moat {id}"),
                "anomalous-activity",
                pattern::ja4_pattern(j),
                false,
                e,
            ));
        }
        for (t, e) in c
            .templates
            .ranked()
            .into_iter()
            .filter(|(t, e)| e.shared && keep(b't', &t.to_le_bytes(), e))
            .take(k)
        {
            let hmac = o.key.fingerprint("template", &t.to_string());
            out.push(indicator(
                format!(
                    "Prompt template used by Moat {id} (keyed for {})",
                    o.partner
                ),
                "malicious-activity",
                pattern::fingerprint_pattern(&hmac, "template"),
                true,
                e,
            ));
        }
        let mut payments: Vec<(&String, &Payment)> = c
            .payments
            .iter()
            .filter(|(fp, p)| {
                let total = self
                    .totals
                    .estimate(&sketch_key(b'p', fp.as_bytes()))
                    .max(1);
                p.exchanges > 0 && p.accounts as f64 >= o.min_member_share * total as f64
            })
            .collect();
        payments.sort_by(|a, b| b.1.exchanges.cmp(&a.1.exchanges).then_with(|| a.0.cmp(b.0)));
        for (fp, p) in payments.into_iter().take(k) {
            let (Some(first), Some(last)) = (p.first, p.last) else {
                continue;
            };
            let hmac = o.key.fingerprint("payment", fp);
            out.push(Indicator {
                name: format!("Payment method used by Moat {id} (keyed for {})", o.partner),
                indicator_type: "malicious-activity",
                pattern: pattern::fingerprint_pattern(&hmac, "payment"),
                keyed: true,
                count: p.exchanges,
                first,
                last,
            });
        }
        out
    }
}

/// An indicator of a heavy hitter.
fn indicator(
    name: String,
    indicator_type: &'static str,
    pattern: String,
    keyed: bool,
    e: &Entry,
) -> Indicator {
    Indicator {
        name,
        indicator_type,
        pattern,
        keyed,
        count: e.lower(),
        first: e.first,
        last: e.last,
    }
}

/// One indicator before it becomes JSON.
struct Indicator {
    name: String,
    indicator_type: &'static str,
    pattern: String,
    keyed: bool,
    count: u64,
    first: Timestamp,
    last: Timestamp,
}

fn relationship(
    common: &dyn Fn(&str, &str) -> Map<String, Value>,
    source: &str,
    kind: &str,
    target: &str,
) -> Value {
    let id = stix::id("relationship", &format!("{source}/{kind}/{target}"));
    let mut r = common("relationship", &id);
    r.insert("relationship_type".into(), kind.into());
    r.insert("source_ref".into(), source.into());
    r.insert("target_ref".into(), target.into());
    Value::Object(r)
}

/// Sort key of an object: its type in a fixed order, then its id.
fn order(v: &Value) -> (usize, String) {
    const TYPES: [&str; 7] = [
        "identity",
        "marking-definition",
        "attack-pattern",
        "campaign",
        "indicator",
        "sighting",
        "relationship",
    ];
    let ty = v["type"].as_str().unwrap_or_default();
    let rank = TYPES.iter().position(|t| *t == ty).unwrap_or(TYPES.len());
    (rank, v["id"].as_str().unwrap_or_default().to_owned())
}

/// What each evidence signal means, in words that name no value.
const SIGNALS: &[(&str, &str)] = &[
    (
        "shared_template",
        "members wrap their questions in the same prompt templates",
    ),
    (
        "shared_system_prompt",
        "members send the same system prompts",
    ),
    (
        "shared_payment",
        "members pay with the same payment methods",
    ),
    (
        "shared_network",
        "members send from the same address blocks",
    ),
    ("signup_burst", "members signed up in bursts"),
    (
        "shared_email_domain",
        "members registered with the same e-mail domains",
    ),
    (
        "shared_client",
        "members use the same client builds (user agent, TLS fingerprint)",
    ),
    ("synchronized_timing", "members send in synchronized bursts"),
    (
        "shared_asn",
        "members send from the same autonomous systems",
    ),
    ("content", "members' requests elicit reasoning traces"),
    (
        "model_pivot",
        "members moved together to a newly released model",
    ),
];

/// The campaign's description: counts, and each signal's name, meaning and leading count.
/// Signal details are never copied: they quote prompts, fingerprints and domains.
fn describe(c: &Campaign) -> String {
    let d = &c.detection;
    let mut text = format!(
        "Coordinated distillation campaign detected by Moat: {} accounts, {} exchanges, {} reasoning tokens.",
        d.accounts.len(),
        c.exchanges,
        c.reasoning_tokens
    );
    let mut evidence = Vec::new();
    for s in &d.signals {
        if s.name.is_empty()
            || !s
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            continue;
        }
        let mut item = s.name.clone();
        let count: String = s.detail.chars().take_while(char::is_ascii_digit).collect();
        if !count.is_empty() && s.detail[count.len()..].starts_with(' ') {
            item.push_str(&format!(" ({count})"));
        }
        if let Some((_, meaning)) = SIGNALS.iter().find(|(n, _)| *n == s.name) {
            item.push_str(": ");
            item.push_str(meaning);
        }
        evidence.push(item);
    }
    if !evidence.is_empty() {
        text.push_str(" Evidence: ");
        text.push_str(&evidence.join("; "));
        text.push('.');
    }
    text
}

/// `text` with every account id replaced.
fn scrub(text: &str, accounts: &BTreeSet<String>) -> String {
    let mut out = text.to_owned();
    for a in accounts {
        if !a.is_empty() && out.contains(a.as_str()) {
            out = out.replace(a.as_str(), "[account]");
        }
    }
    out
}

/// Whether the evidence says members send jailbreaks: a jailbreak signal, or a content signal
/// giving a non-zero share of jailbreaks ("…, 3% are jailbreaks").
fn shows_jailbreaks(c: &CampaignDetection) -> bool {
    c.signals.iter().any(|s| {
        if s.name.contains("jailbreak") {
            return true;
        }
        let Some(at) = s.detail.find("% are jailbreak") else {
            return false;
        };
        let digits: String = s.detail[..at]
            .chars()
            .rev()
            .take_while(char::is_ascii_digit)
            .collect();
        digits
            .chars()
            .rev()
            .collect::<String>()
            .parse::<u64>()
            .is_ok_and(|p| p > 0)
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use moat_types::{AccountDetection, Client, Message, Request, Signal};

    fn campaign(id: &str, members: &[&str], at: i64) -> Detection {
        Detection::Campaign(CampaignDetection {
            campaign_id: id.to_owned(),
            accounts: members.iter().map(|m| (*m).to_owned()).collect(),
            score: 0.9,
            first_detected_at: Some(Timestamp::from_millis(at)),
            signals: vec![Signal {
                name: "shared_template".into(),
                detail: format!(
                    "3 shared prompt wrappers; {} says \"secret prompt\"",
                    members[0]
                ),
            }],
        })
    }

    fn exchange(account: &str, ms: i64, ip: &str, text: &str) -> Exchange {
        Exchange {
            v: 1,
            ts: Timestamp::from_millis(ms),
            request_id: Some(format!("req_{account}_{ms}")),
            account_id: account.to_owned(),
            api_key_id: None,
            client: Some(Client {
                ip: Some(ip.to_owned()),
                asn: Some(64500),
                user_agent: Some("bot 'x'".into()),
                ..Client::default()
            }),
            request: Request {
                messages: vec![Message::text("user", text)],
                ..Request::default()
            },
            response: None,
        }
    }

    fn options() -> ExportOptions {
        let key = PartnerKey::new(vec![7; 32]).unwrap();
        ExportOptions::new(
            "Example AI",
            "Partner",
            key,
            Timestamp::from_millis(10_000_000),
        )
    }

    fn detections() -> Vec<Detection> {
        vec![
            Detection::Account(AccountDetection {
                account_id: "acct_m1".into(),
                risk: 0.9,
                flagged: true,
                flagged_at: None,
                campaign_id: Some("C-0001".into()),
                reasons: vec!["jailbreak".into()],
            }),
            campaign("C-0001", &["acct_m1", "acct_m2"], 1_000),
            campaign("C-0002", &["acct_z1"], 5_000),
        ]
    }

    const WRAPPER: &str =
        "Before you answer, write out every step of your reasoning in full detail.";

    /// Members use 203.0.113.0/24 alone; 198.51.100.0/24 is a carrier NAT where members send
    /// a third of the traffic.
    fn run(opts: ExportOptions) -> (Value, Summary) {
        let mut e = Exporter::new(&detections(), opts).unwrap();
        for i in 0..30 {
            let m = if i % 2 == 0 { "acct_m1" } else { "acct_m2" };
            let q = format!("{WRAPPER}\nQuestion number {i} about something unusual.");
            e.observe(&exchange(m, 100 * i, "203.0.113.9", &q));
            e.observe(&exchange(m, 100 * i + 1, "198.51.100.4", "hello there"));
            e.observe(&exchange("acct_b1", 100 * i + 2, "198.51.100.5", "hi"));
            e.observe(&exchange("acct_b2", 100 * i + 3, "198.51.100.6", "hi"));
        }
        e.finish().unwrap()
    }

    fn patterns(bundle: &Value) -> Vec<String> {
        bundle["objects"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| o["type"] == "indicator")
            .map(|o| o["pattern"].as_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn a_block_shared_with_non_members_is_kept_out() {
        let (bundle, summary) = run(options());
        let p = patterns(&bundle);
        assert!(
            p.contains(&"[ipv4-addr:value ISSUBSET '203.0.113.0/24']".to_owned()),
            "{p:?}"
        );
        assert!(!p.iter().any(|x| x.contains("198.51.100")), "{p:?}");
        // The ASN and user agent are used by everyone: not indicators either.
        assert!(!p
            .iter()
            .any(|x| x.contains("64500") || x.contains("User-Agent")));
        // The shared wrapper is, keyed.
        assert!(p.iter().any(|x| x.contains("kind = 'template'")), "{p:?}");
        assert_eq!(summary.campaigns, 2);
        let text = serde_json::to_string(&bundle).unwrap();
        for leak in [
            "acct_",
            "req_",
            "secret prompt",
            "Question number",
            "reasoning in full",
        ] {
            assert!(!text.contains(leak), "{leak} leaked");
        }
        // Jailbreak reasons of a member add the jailbreak technique.
        assert!(text.contains("AML.T0054"));
    }

    #[test]
    fn the_same_input_gives_the_same_bytes() {
        let a = serde_json::to_string(&run(options()).0).unwrap();
        let b = serde_json::to_string(&run(options()).0).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn keyed_patterns_change_with_the_partner_key() {
        let mut other = options();
        other.key = PartnerKey::new(vec![8; 32]).unwrap();
        let a: Vec<String> = patterns(&run(options()).0)
            .into_iter()
            .filter(|p| p.contains("hmac"))
            .collect();
        let b: Vec<String> = patterns(&run(other).0)
            .into_iter()
            .filter(|p| p.contains("hmac"))
            .collect();
        assert!(!a.is_empty());
        assert!(a.iter().all(|p| !b.contains(p)));
    }

    #[test]
    fn since_and_campaign_select() {
        let mut o = options();
        o.since = Some(Timestamp::from_millis(2_000));
        let (b, s) = run(o);
        assert_eq!(s.campaigns, 1);
        assert!(serde_json::to_string(&b).unwrap().contains("Moat C-0002"));
        let mut o = options();
        o.campaigns = vec!["C-0001".into()];
        let (b, s) = run(o);
        assert_eq!(s.campaigns, 1);
        assert!(serde_json::to_string(&b).unwrap().contains("Moat C-0001"));
        let mut o = options();
        o.campaigns = vec!["C-9999".into()];
        assert!(matches!(
            Exporter::new(&detections(), o),
            Err(IntelError::UnknownCampaign(_))
        ));
    }

    #[test]
    fn indicators_per_kind_are_capped() {
        let mut o = options();
        o.top_k = 3;
        let mut e = Exporter::new(&detections(), o).unwrap();
        for i in 0..2_000i64 {
            let ip = format!("10.0.{}.1", i % 10);
            e.observe(&exchange("acct_m1", i, &ip, "q"));
        }
        let (bundle, _) = e.finish().unwrap();
        let blocks = patterns(&bundle)
            .iter()
            .filter(|p| p.contains("ipv4"))
            .count();
        assert_eq!(blocks, 3);
    }

    #[test]
    fn descriptions_name_no_account_and_quote_nothing() {
        let (bundle, _) = run(options());
        let c = bundle["objects"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["type"] == "campaign")
            .unwrap();
        let d = c["description"].as_str().unwrap();
        assert!(d.contains("shared_template (3)"), "{d}");
        assert!(!d.contains('"'));
        assert_eq!(c["x_moat_accounts"], 2);
    }
}

//! `moat analyze --report`: the dashboard as one self-contained HTML file. The page is the
//! same bundle (`app.js`, `app.css`: the same pages and charts), inlined, with the answers of
//! the read-only admin API ([`crate::offline`]) that its pages ask for embedded as JSON; the
//! page reads them instead of calling a server.
//!
//! What is embedded is bounded, so that the file stays small whatever the traffic: the summary,
//! the first page of the campaigns listing in every order, the detail, view and first page of
//! members of the largest campaigns (and the leaders of every other order), the first page of
//! flagged accounts, and the pages of the accounts those link to first. A page not embedded
//! says so and points to `moat ui`.
//!
//! The file loads nothing: a content security policy in the page allows only its own inline
//! script (by hash) and styles, no connection, no frame. The embedded JSON has every `<`
//! escaped, so no input can close its script element. Deterministic: the same data gives the
//! same bytes.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::data::{AccountQuery, CampaignQuery};
use crate::offline::{account_detail, OfflineData};

/// What the report embeds.
#[derive(Debug, Clone)]
pub struct ReportOptions {
    /// The page's title.
    pub title: String,
    /// What the data was read from (shown on the page's about line).
    pub source: String,
    /// The largest campaigns embedded in full (detail, view, members).
    pub campaigns: usize,
    /// Leaders of every other ranking embedded in full too.
    pub leaders: usize,
    /// Account pages embedded at most.
    pub accounts: usize,
    /// Members of each embedded campaign whose account page is embedded.
    pub members_per_campaign: usize,
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions {
            title: "Moat report".into(),
            source: String::new(),
            campaigns: 50,
            leaders: 10,
            accounts: 400,
            members_per_campaign: 5,
        }
    }
}

/// The orders of the campaigns listing (the page's select), as the page names them.
const SORTS: [&str; 7] = [
    "size",
    "exchanges",
    "reasoning_tokens",
    "leakage",
    "score",
    "first_seen",
    "first_detected",
];

/// `encodeURIComponent`: what the page does to an id it puts in a path.
fn component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The answers the report embeds, by the path the page asks for (relative to `/admin`).
pub fn answers(data: &OfflineData, opts: &ReportOptions) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    let mut put = |path: String, v: Value| {
        out.insert(path, v);
    };
    put("/summary".into(), json!(data.summary()));
    let page = |sort: &str, limit: usize| {
        data.campaign_page(&CampaignQuery {
            sort: Some(sort.to_owned()),
            limit: Some(limit),
            offset: Some(0),
        })
        .ok()
    };
    if let Some(p) = page("size", 20) {
        put("/campaigns?sort=size&limit=20&offset=0".into(), json!(p));
    }
    let mut campaigns: Vec<String> = Vec::new();
    for sort in SORTS {
        let Some(p) = page(sort, 100) else { continue };
        let take = if sort == "size" {
            opts.campaigns
        } else {
            opts.leaders
        };
        for row in p.items.iter().take(take) {
            if !campaigns.contains(&row.campaign_id) {
                campaigns.push(row.campaign_id.clone());
            }
        }
        put(
            format!("/campaigns?sort={sort}&limit=100&offset=0"),
            json!(p),
        );
    }
    let mut accounts: Vec<String> = Vec::new();
    let flagged = data.account_page(&AccountQuery {
        flagged: Some(true),
        limit: Some(100),
        ..AccountQuery::default()
    });
    accounts.extend(flagged.items.iter().map(|a| a.account_id.clone()));
    put("/accounts?limit=100&flagged=true".into(), json!(flagged));
    for id in &campaigns {
        let (Some(c), Some(view)) = (data.campaign(id), data.campaign_view(id)) else {
            continue;
        };
        let enc = component(id);
        put(format!("/campaigns/{enc}"), json!(c));
        put(format!("/campaigns/{enc}/view"), json!(view));
        let members = data.account_page(&AccountQuery {
            campaign: Some(id.clone()),
            limit: Some(100),
            ..AccountQuery::default()
        });
        put(
            format!("/accounts?campaign={enc}&limit=100"),
            json!(members),
        );
        accounts.extend(
            members
                .items
                .iter()
                .take(opts.members_per_campaign)
                .map(|a| a.account_id.clone()),
        );
        accounts.extend(view.samples.iter().map(|s| s.account_id.clone()));
    }
    let mut seen = std::collections::BTreeSet::new();
    for id in accounts {
        if seen.len() >= opts.accounts {
            break;
        }
        if !seen.insert(id.clone()) {
            continue;
        }
        if let Some(v) = account_detail(data, &id) {
            put(format!("/accounts/{}", component(&id)), v);
        }
    }
    out
}

/// The report: the dashboard's page with its script, styles and `answers` inline.
pub fn page(data: &OfflineData, opts: &ReportOptions) -> String {
    let snapshot = json!({
        "about": { "mode": "report", "source": opts.source },
        "answers": answers(data, opts),
    });
    // `<` escaped: nothing in the data can end the script element (or open a comment).
    let json = snapshot.to_string().replace('<', "\\u003c");
    let asset = |name: &str| {
        crate::ASSETS
            .iter()
            .find(|a| a.name == name)
            .map_or("", |a| std::str::from_utf8(a.bytes).unwrap_or(""))
    };
    let (html, js, css) = (asset(""), asset("app.js"), asset("app.css"));
    let js = js.replace("</script", "<\\/script");
    let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(js.as_bytes()));
    let csp = format!(
        "default-src 'none'; script-src 'sha256-{hash}'; style-src 'unsafe-inline'; \
         img-src data:; base-uri 'none'; form-action 'none'"
    );
    let title = escape(&opts.title);
    let mut out = html
        .replace(
            "<title>Moat</title>",
            &format!(
                "<meta http-equiv=\"Content-Security-Policy\" content=\"{csp}\">\n<title>{title}</title>"
            ),
        )
        .replace(
            "<link rel=\"stylesheet\" href=\"app.css\">",
            &format!("<style>{}</style>", css.replace("</style", "<\\/style")),
        );
    out = out.replace(
        "<script src=\"app.js\"></script>",
        &format!(
            "<script type=\"application/json\" id=\"moat-snapshot\">{json}</script>\n<script>{js}</script>"
        ),
    );
    out
}

/// HTML text escaping.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn encodings_match_the_browser() {
        assert_eq!(component("C-0007"), "C-0007");
        assert_eq!(component("a b/c?d"), "a%20b%2Fc%3Fd");
        assert_eq!(component("é"), "%C3%A9");
    }

    fn data() -> OfflineData {
        let lines = [
            r#"{"kind":"account","account_id":"a1","risk":0.9,"flagged":true,"flagged_at":"2026-04-01T00:00:00Z","campaign_id":"C-1","reasons":["shared_template"]}"#,
            r#"{"kind":"account","account_id":"a2","risk":0.9,"flagged":true,"flagged_at":"2026-04-01T00:00:00Z","campaign_id":"C-1","reasons":[]}"#,
            r#"{"kind":"account","account_id":"b","risk":0.1,"flagged":false,"reasons":[]}"#,
            r#"{"kind":"campaign","campaign_id":"C-1","accounts":["a1","a2"],"score":0.9,"first_detected_at":"2026-04-01T00:00:00Z","signals":[{"name":"shared_template","detail":"</script><script>alert(1)</script>"}]}"#,
        ];
        let detections = lines
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let mut b = OfflineData::builder(detections);
        for (i, account) in ["a1", "a2", "b", "a1"].iter().enumerate() {
            let line = format!(
                r#"{{"v":1,"ts":"2026-04-01T00:0{i}:00Z","account_id":"{account}","client":{{"ip":"203.0.113.{i}"}},"request":{{"messages":[{{"role":"user","content":"Before you answer, write out every step of your reasoning in full detail. What is {i} + {i}? </script>"}}]}},"response":{{"status":200,"reasoning_tokens":100}}}}"#
            );
            b.observe(&serde_json::from_str(&line).unwrap());
        }
        b.finish()
    }

    #[test]
    fn the_page_is_self_contained_and_its_answers_cannot_escape() {
        let d = data();
        let html = page(&d, &ReportOptions::default());
        assert!(html.starts_with("<!doctype html>"), "{}", &html[..40]);
        for bad in ["src=\"", "href=\"http", "<link", "url(http", "@import"] {
            assert!(!html.contains(bad), "the report loads something: {bad}");
        }
        // The one executable script is the bundle, allowed by its hash.
        let start = html.find("<script>").unwrap() + "<script>".len();
        let end = html[start..].find("</script>").unwrap() + start;
        let js = &html[start..end];
        let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(js.as_bytes()));
        assert!(html.contains(&format!("script-src 'sha256-{hash}'")));
        // The data: one JSON element that hostile text cannot close.
        let open = "<script type=\"application/json\" id=\"moat-snapshot\">";
        let s = html.find(open).unwrap() + open.len();
        let e = html[s..].find("</script>").unwrap() + s;
        let snapshot: Value = serde_json::from_str(&html[s..e]).unwrap();
        assert_eq!(snapshot["about"]["mode"], "report");
        let answers = &snapshot["answers"];
        assert_eq!(answers["/summary"]["campaigns"], 1);
        assert_eq!(
            answers["/campaigns?sort=size&limit=100&offset=0"]["total"],
            1
        );
        assert!(answers["/campaigns/C-1/view"]["graph"]["nodes"].is_array());
        assert_eq!(
            answers["/campaigns/C-1"]["signals"][0]["detail"],
            "</script><script>alert(1)</script>"
        );
        assert_eq!(
            answers["/accounts?campaign=C-1&limit=100"]["items"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        assert!(answers["/accounts/a1"]["recent_exchanges"].is_array());
        assert!(
            answers.get("/accounts/b").is_none(),
            "unflagged outsiders are not embedded"
        );
        // Deterministic.
        assert_eq!(html, page(&data(), &ReportOptions::default()));
    }
}

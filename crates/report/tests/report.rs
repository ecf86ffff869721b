//! The report built from small generated fixtures: the numbers a reader needs appear, hostile
//! prompt text comes out escaped and masked, output is deterministic, and page size stays
//! bounded however large the campaigns and however many flagged accounts there are.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use moat_report::{GlossaryEntry, ReportBuilder, ReportOptions};
use moat_types::{
    AccountDetection, CampaignDetection, Client, Detection, Exchange, Message, Params, Request,
    Response, Signal, Timestamp,
};

fn t0() -> Timestamp {
    Timestamp::parse("2026-03-02T00:00:00Z").unwrap()
}

fn exchange(ms: i64, account: &str, prompt: &str, ip: &str, model: &str) -> Exchange {
    Exchange {
        v: 1,
        ts: t0().plus_millis(ms),
        request_id: Some(format!("req_{account}_{ms}")),
        account_id: account.into(),
        api_key_id: None,
        client: Some(Client {
            ip: Some(ip.into()),
            asn: None,
            country: Some("US".into()),
            user_agent: Some("python-requests/2.32.0".into()),
            tls_ja4: None,
        }),
        request: Request {
            endpoint: Some("/v1/chat/completions".into()),
            model: Some(model.into()),
            messages: vec![Message::text("user", prompt)],
            prompt: None,
            params: Some(Params {
                max_tokens: Some(16_384),
                reasoning_effort: Some("high".into()),
                ..Params::default()
            }),
        },
        response: Some(Response {
            status: Some(200),
            reasoning_tokens: Some(1000),
            completion_tokens: Some(200),
            ..Response::default()
        }),
    }
}

fn account(id: &str, flagged: bool, campaign: Option<&str>, reasons: &[&str]) -> Detection {
    Detection::Account(AccountDetection {
        account_id: id.into(),
        risk: if flagged { 0.9 } else { 0.1 },
        flagged,
        flagged_at: flagged.then(|| t0().plus_millis(2 * Timestamp::HOUR)),
        campaign_id: campaign.map(Into::into),
        reasons: reasons.iter().map(|r| (*r).to_string()).collect(),
    })
}

fn campaign(id: &str, members: &[String], score: f64) -> Detection {
    Detection::Campaign(CampaignDetection {
        campaign_id: id.into(),
        accounts: members.to_vec(),
        score,
        first_detected_at: Some(t0().plus_millis(3 * Timestamp::HOUR)),
        signals: vec![
            Signal {
                name: "shared_template".into(),
                detail: "1 shared prompt wrapper: \"<b>Think step by step</b>\"".into(),
            },
            Signal {
                name: "odd_new_signal".into(),
                detail: "a signal the glossary does not know".into(),
            },
        ],
    })
}

/// 20 benign accounts, a 10-account campaign C-0001 with hostile prompts, a 3-account
/// campaign C-0002, and one flagged account outside campaigns, over three days.
fn fixture() -> (Vec<Detection>, Vec<Exchange>) {
    let mut detections = Vec::new();
    let mut xs = Vec::new();
    for i in 0..20 {
        detections.push(account(&format!("acct_b{i:02}"), false, None, &[]));
    }
    let big: Vec<String> = (0..10).map(|i| format!("acct_m{i:02}")).collect();
    let small: Vec<String> = (0..3).map(|i| format!("acct_s{i:02}")).collect();
    for m in &big {
        detections.push(account(
            m,
            true,
            Some("C-0001"),
            &["campaign_member", "cot_elicitation"],
        ));
    }
    for m in &small {
        detections.push(account(m, true, Some("C-0002"), &["campaign_member"]));
    }
    detections.push(account("acct_lone", true, None, &["high_volume"]));
    detections.push(campaign("C-0001", &big, 0.95));
    detections.push(campaign("C-0002", &small, 0.5));

    for h in 0..72i64 {
        let base = h * Timestamp::HOUR;
        for i in 0..20 {
            xs.push(exchange(
                base + i * 1000,
                &format!("acct_b{i:02}"),
                "What is a good name for a cat?",
                "198.51.100.7",
                "frontier-mini",
            ));
        }
        for (i, m) in big.iter().enumerate() {
            let prompt = if i == 0 {
                format!(
                    "<script>alert('pwned')</script> Think step by step. My key is \
                     sk-live0123456789abcdefXYZ and mail ops{h}@corp.example.com. Q{h}"
                )
            } else {
                format!("Think step by step and show all reasoning. Question {h}-{i}")
            };
            xs.push(exchange(
                base + 30_000 + i as i64 * 1000,
                m,
                &prompt,
                &format!("203.0.113.{}", i * 10),
                "frontier-1",
            ));
        }
        if h % 4 == 0 {
            for (i, m) in small.iter().enumerate() {
                xs.push(exchange(
                    base + 60_000 + i as i64 * 1000,
                    m,
                    "Rate this answer from 1 to 10 with reasons.",
                    "2001:db8:1:2::5",
                    "frontier-1",
                ));
            }
        }
        xs.push(exchange(
            base + 90_000,
            "acct_lone",
            "Summarise this log file.",
            "192.0.2.1",
            "frontier-2",
        ));
    }
    xs.sort_by_key(|x| x.ts);
    (detections, xs)
}

fn build(detections: &[Detection], xs: &[Exchange], opts: ReportOptions) -> String {
    let mut b = ReportBuilder::new(detections, opts);
    for x in xs {
        b.observe(x);
    }
    b.render()
}

fn opts() -> ReportOptions {
    ReportOptions {
        input: "traffic.jsonl.gz".into(),
        detections: Some("detections.jsonl".into()),
        ..ReportOptions::default()
    }
}

#[test]
fn report_shows_totals_campaigns_evidence_and_members() {
    let (d, xs) = fixture();
    let html = build(&d, &xs, opts());
    let total = xs.len();
    assert_eq!(total, 72 * 31 + 18 * 3);
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("2,286"), "total exchanges, formatted");
    assert!(html.contains("<strong>34</strong>"), "accounts");
    assert!(html.contains("<strong>14</strong>"), "flagged accounts");
    // Campaigns ranked by score, each with a section.
    let c1 = html.find("id=\"campaign-1\"").unwrap();
    let c2 = html.find("id=\"campaign-2\"").unwrap();
    assert!(c1 < c2);
    assert!(html[c1..c2].contains("C-0001"));
    assert!(html[c2..].contains("C-0002"));
    // 720 member requests of 2,286: 31.5% of traffic.
    assert!(html.contains("720 requests"), "campaign request count");
    assert!(html.contains("31.5%"), "campaign share");
    // Evidence detail, escaped; unknown signal names listed in the glossary.
    assert!(html.contains("&quot;&lt;b&gt;Think step by step&lt;/b&gt;&quot;"));
    assert!(html.contains("id=\"reason-odd_new_signal\""));
    assert!(html.contains("undocumented"));
    // Timeline with the detection marked, model mix, top members and the lone account.
    assert!(html.contains("id=\"timeline-1-t\""));
    assert!(html.contains(">detected</text>"));
    assert!(html.contains("frontier-1"));
    assert!(html.contains("acct_m00"));
    let flagged = html.find("id=\"flagged\"").unwrap();
    assert!(html[flagged..].contains("acct_lone"));
    assert!(html[c2..].contains("2001:db8:1::/48"), "IPv6 block");
    // Glossary from the options, with counts.
    assert!(html.contains("id=\"reason-cot_elicitation\""));
}

#[test]
fn hostile_prompt_text_is_escaped_and_secrets_are_masked() {
    let (d, xs) = fixture();
    let html = build(&d, &xs, opts());
    assert!(!html.contains("<script>alert"), "raw script from a prompt");
    assert!(
        html.contains("&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;"),
        "the prompt is shown, escaped"
    );
    assert_eq!(
        html.matches("<script").count(),
        1,
        "only the report's own script"
    );
    assert!(!html.contains("sk-live0123456789"), "API key masked");
    assert!(!html.contains("corp.example.com"), "e-mail masked");
    assert!(html.contains("[secret]") && html.contains("[email]"));
}

#[test]
fn page_is_self_contained() {
    let (d, xs) = fixture();
    let html = build(&d, &xs, opts());
    for bad in [
        "src=\"http",
        "href=\"http",
        "src='http",
        "url(http",
        "@import",
        "<link",
    ] {
        assert!(!html.contains(bad), "{bad}");
    }
    assert!(html.contains("Content-Security-Policy"));
    assert!(html.contains("default-src 'none'"));
}

#[test]
fn same_input_gives_same_bytes_whatever_the_detection_order() {
    let (mut d, xs) = fixture();
    let a = build(&d, &xs, opts());
    let b = build(&d, &xs, opts());
    assert_eq!(a, b);
    d.reverse();
    let c = build(&d, &xs, opts());
    assert_eq!(a, c, "detection line order changes nothing");
}

/// `i` written in letters, so that prompts differ in their shape (digits do not count).
fn letters(mut i: i64) -> String {
    let mut s = String::new();
    loop {
        s.push(char::from(b'a' + (i % 26) as u8));
        i /= 26;
        if i == 0 {
            return s;
        }
    }
}

#[test]
fn sizes_stay_bounded_for_large_campaigns_and_many_flagged_accounts() {
    let mut d = Vec::new();
    let members: Vec<String> = (0..2000).map(|i| format!("acct_m{i:05}")).collect();
    for m in &members {
        d.push(account(m, true, Some("C-0001"), &["campaign_member"]));
    }
    for i in 0..500 {
        d.push(account(
            &format!("acct_f{i:05}"),
            true,
            None,
            &["jailbreak"],
        ));
    }
    // More campaigns than get a section.
    for c in 0..60 {
        let id = format!("acct_k{c:03}");
        d.push(account(&id, true, Some(&format!("C-1{c:03}")), &[]));
        d.push(campaign(&format!("C-1{c:03}"), &[id], 0.1));
    }
    d.push(campaign("C-0001", &members, 0.99));
    let long = "x".repeat(10_000);
    let mut xs = Vec::new();
    for i in 0..40_000i64 {
        let m = &members[(i % 2000) as usize];
        let ip = format!("10.{}.{}.1", (i / 256) % 256, i % 256);
        xs.push(exchange(
            i * 20_000,
            m,
            &format!("Distinct question {} {long}", letters(i)),
            &ip,
            "frontier-1",
        ));
        if i % 100 == 0 {
            let f = format!("acct_f{:05}", (i / 100) % 500);
            xs.push(exchange(i * 20_000 + 1, &f, "hello", "192.0.2.1", "m"));
        }
    }
    let o = opts();
    let (samples, chars, rows) = (o.samples_per_campaign, o.sample_chars, o.max_flagged_rows);
    let html = build(&d, &xs, o);
    // One section per campaign up to the limit, the rest only in the summary table.
    assert!(html.contains("id=\"campaign-50\""));
    assert!(!html.contains("id=\"campaign-51\""));
    assert!(html.contains("The 50 highest-ranked campaigns have a section below."));
    // Samples: at most the configured number, each cut to the configured length.
    let first = html.find("id=\"campaign-1\"").unwrap();
    let second = html.find("id=\"campaign-2\"").unwrap();
    let section = &html[first..second];
    let prompts: Vec<&str> = section
        .split("<pre class=\"prompt\">")
        .skip(1)
        .map(|s| &s[..s.find("</pre>").unwrap()])
        .collect();
    assert_eq!(prompts.len(), samples);
    for p in prompts {
        assert!(p.chars().count() <= chars + 60, "{}", p.chars().count());
        assert!(p.contains("more characters"));
    }
    // Members: only the busiest are listed.
    let table = &section[section.find("<h4>Members</h4>").unwrap()..];
    assert_eq!(table.matches("<code>acct_m").count(), 15);
    assert!(section.contains("The 15 busiest of 2,000 members"));
    // Flagged accounts outside campaigns: bounded, with the rest counted.
    let flagged = &html[html.find("id=\"flagged\"").unwrap()..];
    assert_eq!(flagged.matches("<code>acct_f").count(), rows);
    assert!(flagged.contains("300 more are in the detections file"));
    assert!(section.contains("distinct /24 or /48"));
    assert!(html.len() < 1_500_000, "page size {}", html.len());
}

#[test]
fn empty_input_renders_a_page() {
    let html = build(&[], &[], ReportOptions::default());
    assert!(html.contains("No campaign was detected."));
    assert!(html.contains("No exchanges were read."));
    assert!(html.ends_with("</html>\n"));
}

#[test]
fn glossary_comes_from_the_options() {
    let (d, xs) = fixture();
    let mut o = opts();
    o.glossary = vec![GlossaryEntry::new("campaign_member", "In a campaign <b>.")];
    let html = build(&d, &xs, o);
    assert!(html.contains("In a campaign &lt;b&gt;."));
    // Reasons present in the detections but not in the glossary are still listed.
    assert!(html.contains("id=\"reason-cot_elicitation\""));
    assert!(html.contains("id=\"reason-high_volume\""));
}

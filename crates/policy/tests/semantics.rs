//! Loading and evaluating whole policy files: the documented example, actions and their
//! parameters, every operator and field, rule order, shadow mode and the default action.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::IpAddr;

use moat_policy::{
    AccountFacts, Actions, CampaignFacts, ClientFacts, Facts, IntelFacts, Mode, Policy,
    ReasoningAction, RequestFacts, Scope, SummaryFallback,
};

const EXAMPLE: &str = include_str!("../example.policy.toml");
const POLICY_MD: &str = include_str!("../POLICY.md");

fn load(body: &str) -> Policy {
    match Policy::parse(&format!("version = 1\n{body}"), "test.toml") {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    }
}

/// A one-rule policy whose only rule blocks when `when` holds.
fn cond(when: &str) -> Policy {
    load(&format!(
        "[[rule]]\nname = \"r\"\nwhen = '{when}'\naction = \"block\"\n"
    ))
}

fn holds(when: &str, facts: &Facts<'_>) -> bool {
    cond(when).evaluate(facts).rule.is_some()
}

fn ip(s: &str) -> Option<IpAddr> {
    Some(s.parse().unwrap())
}

/// Extracts the fenced TOML blocks of POLICY.md.
fn toml_blocks(md: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut cur: Option<String> = None;
    for line in md.lines() {
        match (&mut cur, line.trim_end()) {
            (None, "```toml") => cur = Some(String::new()),
            (Some(b), "```") => {
                blocks.push(std::mem::take(b));
                cur = None;
            }
            (Some(b), l) => {
                b.push_str(l);
                b.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

#[test]
fn documented_example_is_in_policy_md_verbatim_and_parses() {
    let blocks = toml_blocks(POLICY_MD);
    assert!(
        blocks.iter().any(|b| b == EXAMPLE),
        "POLICY.md must contain example.policy.toml verbatim"
    );
    for b in &blocks {
        Policy::parse(b, "POLICY.md").unwrap();
    }
    let p = Policy::parse(EXAMPLE, "example.policy.toml").unwrap();
    assert_eq!(p.len(), 8);
    let summary: Vec<_> = p.rules().collect();
    assert_eq!(summary[0].mode, Mode::Shadow);
    assert_eq!(summary[2].name, "block jailbreak harvesters");
    assert_eq!(
        summary[2].when,
        r#"request.jailbreak >= 0.8 and "jailbreak" in account.reasons"#
    );
    assert_eq!(
        summary[3].actions.to_string(),
        "throttle+withhold_reasoning"
    );
    assert_eq!(summary[3].index, 3);
}

#[test]
fn every_field_is_documented_in_policy_md() {
    for (name, ty) in moat_policy::fields() {
        let row = format!("| `{name}` | {ty} |");
        assert!(POLICY_MD.contains(&row), "POLICY.md lacks the row {row}");
    }
}

#[test]
fn example_decides_as_documented() {
    let p = Policy::parse(EXAMPLE, "example.policy.toml").unwrap();

    let clean = Facts::default();
    let d = p.evaluate(&clean);
    assert!(d.is_default());
    assert_eq!(d.kind(), "allow");
    assert!(d.shadowed.is_empty());

    let reasons = ["jailbreak", "cot_harvest"];
    let harvester = Facts {
        account: AccountFacts {
            risk: 0.9,
            reasons: &reasons,
            ..Default::default()
        },
        request: RequestFacts {
            jailbreak: 0.95,
            ..Default::default()
        },
        client: ClientFacts {
            ip: ip("203.0.113.9"),
            ..Default::default()
        },
        ..Default::default()
    };
    let d = p.evaluate(&harvester);
    let rule = d.rule.unwrap();
    assert_eq!((rule.name, rule.index), ("block jailbreak harvesters", 2));
    assert_eq!(d.kind(), "block");
    assert_eq!(d.actions.block.as_ref().unwrap().status, 403);
    // The shadow rule before it matched too and is reported, not enforced.
    let shadowed: Vec<_> = d.shadowed.iter().map(|m| (m.name, m.index)).collect();
    assert_eq!(shadowed, [("trial: block hosting-provider ranges", 0)]);

    let attrs = [("org_id", "org-evals")];
    let red_team = Facts {
        attrs: &attrs,
        ..harvester
    };
    assert_eq!(
        p.evaluate(&red_team).rule.unwrap().name,
        "internal red team"
    );

    let campaign = Facts {
        campaign: CampaignFacts {
            member: true,
            score: 0.85,
            ..Default::default()
        },
        ..Default::default()
    };
    let d = p.evaluate(&campaign);
    let t = d.actions.throttle.unwrap();
    assert_eq!(t.scope, Scope::Campaign);
    assert_eq!(t.requests_per_minute, Some(30));
    assert_eq!(d.actions.reasoning, ReasoningAction::Withhold);

    let new_harvester = Facts {
        account: AccountFacts {
            age_days: Some(2),
            ..Default::default()
        },
        request: RequestFacts {
            harvest: true,
            endpoint: "/v1/chat/completions",
            ..Default::default()
        },
        ..Default::default()
    };
    let d = p.evaluate(&new_harvester);
    assert_eq!(
        d.rule.unwrap().name,
        "harvest-style sampling on new accounts"
    );
    assert_eq!(d.actions.tarpit_ms, Some(1500));
}

#[test]
fn first_matching_rule_wins_in_file_order() {
    let p = load(
        "[[rule]]\nname = \"a\"\nwhen = 'account.risk > 0.5'\naction = \"withhold_reasoning\"\n\
         [[rule]]\nname = \"b\"\nwhen = 'account.risk > 0.2'\naction = \"block\"\n\
         [[rule]]\nname = \"c\"\nwhen = 'true'\naction = \"shadow\"\n",
    );
    let at = |risk| {
        let f = Facts {
            account: AccountFacts {
                risk,
                ..Default::default()
            },
            ..Default::default()
        };
        let d = p.evaluate(&f);
        let m = d.rule.unwrap();
        (m.name, m.index, d.kind())
    };
    assert_eq!(at(0.9), ("a", 0, "withhold_reasoning"));
    assert_eq!(at(0.3), ("b", 1, "block"));
    assert_eq!(at(0.1), ("c", 2, "shadow"));
}

#[test]
fn shadow_mode_reports_without_deciding() {
    let mut body = String::new();
    // Ten shadow rules overflow the inline list, which must still report every one in order.
    for i in 0..10 {
        body.push_str(&format!(
            "[[rule]]\nname = \"s{i}\"\nwhen = 'true'\naction = \"block\"\nmode = \"shadow\"\n"
        ));
    }
    body.push_str(
        "[[rule]]\nname = \"off\"\nwhen = 'false'\naction = \"block\"\nmode = \"shadow\"\n",
    );
    body.push_str("[[rule]]\nname = \"decide\"\nwhen = 'true'\naction = \"withhold_reasoning\"\n");
    body.push_str(
        "[[rule]]\nname = \"after\"\nwhen = 'true'\naction = \"block\"\nmode = \"shadow\"\n",
    );
    let p = load(&body);
    let d = p.evaluate(&Facts::default());
    assert_eq!(d.rule.unwrap().name, "decide");
    assert_eq!(d.kind(), "withhold_reasoning");
    let names: Vec<_> = d.shadowed.iter().map(|m| m.name.to_owned()).collect();
    let want: Vec<_> = (0..10).map(|i| format!("s{i}")).collect();
    assert_eq!(names, want);
    assert_eq!(d.shadowed.len(), 10);
    assert!(d.shadowed.iter().all(|m| m.actions.block.is_some()));
}

#[test]
fn shadow_rules_alone_leave_the_default_in_force() {
    let p = load(
        "default = \"withhold_reasoning\"\n\
         [[rule]]\nname = \"s\"\nwhen = 'true'\naction = \"block\"\nmode = \"shadow\"\n",
    );
    let d = p.evaluate(&Facts::default());
    assert!(d.is_default());
    assert_eq!(d.kind(), "withhold_reasoning");
    assert_eq!(d.shadowed.iter().next().unwrap().name, "s");
}

#[test]
fn default_action_applies_when_nothing_matches() {
    for (default, kind) in [
        ("allow", "allow"),
        ("shadow", "shadow"),
        ("withhold_reasoning", "withhold_reasoning"),
        ("summarize_reasoning", "summarize_reasoning"),
        ("block", "block"),
    ] {
        let p = load(&format!("default = \"{default}\"\n"));
        let d = p.evaluate(&Facts::default());
        assert!(d.is_default());
        assert_eq!(d.kind(), kind);
        assert_eq!(p.default_actions().kind(), kind);
    }
    let p = load("");
    assert_eq!(p.evaluate(&Facts::default()).kind(), "allow");
    assert!(p.is_empty());
    let p = Policy::allow_all();
    assert_eq!(p.len(), 0);
    assert_eq!(*p.evaluate(&Facts::default()).actions, Actions::default());
}

fn actions_of(rule: &str) -> Actions {
    let p = load(&format!("[[rule]]\nname = \"r\"\nwhen = 'true'\n{rule}"));
    p.evaluate(&Facts::default()).actions.clone()
}

#[test]
fn each_action_and_its_parameters_load() {
    assert_eq!(actions_of("action = \"allow\""), Actions::default());
    assert!(actions_of("action = \"shadow\"").shadow);
    let b = actions_of("action = \"block\"").block.unwrap();
    assert_eq!(
        (b.status, b.message.as_str()),
        (403, "request refused by policy")
    );
    let b = actions_of("action = \"block\"\nstatus = 429\nmessage = \"slow down\"")
        .block
        .unwrap();
    assert_eq!((b.status, b.message.as_str()), (429, "slow down"));
    assert_eq!(
        actions_of("action = \"tarpit\"\ndelay_ms = 60000").tarpit_ms,
        Some(60000)
    );
    let t = actions_of("action = \"throttle\"\ntokens_per_minute = 5000")
        .throttle
        .unwrap();
    assert_eq!(
        (t.requests_per_minute, t.tokens_per_minute, t.scope),
        (None, Some(5000), Scope::Account)
    );
    assert_eq!(
        actions_of("action = \"withhold_reasoning\"").reasoning,
        ReasoningAction::Withhold
    );
    assert_eq!(
        actions_of("action = \"summarize_reasoning\"").reasoning,
        ReasoningAction::Summarize {
            fallback: SummaryFallback::Withhold
        }
    );
    assert_eq!(
        actions_of("action = \"summarize_reasoning\"\nfallback = \"allow\"").reasoning,
        ReasoningAction::Summarize {
            fallback: SummaryFallback::Allow
        }
    );
    let all = actions_of(
        "action = [\"tarpit\", \"throttle\", \"summarize_reasoning\"]\ndelay_ms = 5\n\
         requests_per_minute = 1\nscope = \"campaign\"",
    );
    assert_eq!(all.to_string(), "throttle+tarpit+summarize_reasoning");
    assert_eq!(all.kind(), "throttle");
}

fn rule_error(rule: &str) -> String {
    let text = format!("version = 1\n[[rule]]\nname = \"r\"\nwhen = 'true'\n{rule}\n");
    match Policy::parse(&text, "p.toml") {
        Ok(_) => panic!("accepted: {rule}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn contradictory_or_incomplete_actions_are_rejected() {
    for (rule, want) in [
        (
            "action = [\"block\", \"tarpit\"]\ndelay_ms = 5",
            "\"block\" cannot be combined",
        ),
        (
            "action = [\"allow\", \"withhold_reasoning\"]",
            "\"allow\" cannot be combined",
        ),
        (
            "action = [\"shadow\", \"withhold_reasoning\"]",
            "\"shadow\" cannot be combined",
        ),
        (
            "action = [\"withhold_reasoning\", \"summarize_reasoning\"]",
            "contradict",
        ),
        (
            "action = [\"tarpit\", \"tarpit\"]\ndelay_ms = 5",
            "listed twice",
        ),
        ("action = []", "empty"),
        ("action = 3", "action name"),
        ("action = [\"block\", 3]", "only action names"),
        ("action = \"ban\"", "unknown action \"ban\""),
        ("action = \"throttle\"", "throttle needs"),
        (
            "action = \"throttle\"\nrequests_per_minute = 0",
            "between 1 and",
        ),
        (
            "action = \"throttle\"\nrequests_per_minute = 5\nscope = \"org\"",
            "scope must be",
        ),
        (
            "action = \"tarpit\"\ndelay_ms = 60001",
            "delay_ms must be between 1 and 60000",
        ),
        (
            "action = \"block\"\nstatus = 200",
            "status must be between 400 and 599",
        ),
        (
            "action = \"block\"\nstatus = 600",
            "status must be between 400 and 599",
        ),
        (
            "action = \"summarize_reasoning\"\nfallback = \"block\"",
            "fallback must be",
        ),
        (
            "action = \"allow\"\nmode = \"audit\"",
            "unknown mode \"audit\"",
        ),
    ] {
        let e = rule_error(rule);
        assert!(e.contains(want), "{rule:?} gave {e:?}, wanted {want:?}");
        assert!(e.starts_with("p.toml:"), "{e}");
    }
    let long = format!("action = \"block\"\nmessage = \"{}\"", "x".repeat(1025));
    assert!(rule_error(&long).contains("longer than 1024"));
}

#[test]
fn parameters_of_absent_actions_are_rejected() {
    for (rule, key) in [
        ("action = \"block\"\ndelay_ms = 5", "delay_ms"),
        ("action = \"tarpit\"\ndelay_ms = 5\nstatus = 403", "status"),
        ("action = \"allow\"\nmessage = \"x\"", "message"),
        (
            "action = \"block\"\nrequests_per_minute = 5",
            "requests_per_minute",
        ),
        (
            "action = \"block\"\ntokens_per_minute = 5",
            "tokens_per_minute",
        ),
        (
            "action = \"withhold_reasoning\"\nscope = \"account\"",
            "scope",
        ),
        (
            "action = \"withhold_reasoning\"\nfallback = \"allow\"",
            "fallback",
        ),
    ] {
        let e = rule_error(rule);
        assert!(
            e.contains(&format!("\"{key}\" only applies")),
            "{rule:?} gave {e:?}"
        );
        // The error points at the misplaced parameter's own line (the last one).
        assert!(
            e.starts_with(&format!("p.toml:{}:", 4 + rule.lines().count())),
            "{e}"
        );
    }
}

#[test]
fn default_action_validation() {
    let e = Policy::parse("version = 1\ndefault = \"tarpit\"\n", "p.toml").unwrap_err();
    assert_eq!((e.line(), e.column()), (2, 11));
    assert!(e.reason().contains("needs parameters"));
    let e = Policy::parse("version = 1\ndefault = \"deny\"\n", "p.toml").unwrap_err();
    assert!(e.reason().contains("unknown default action"));
}

#[test]
fn every_operator_evaluates_as_documented() {
    let reasons = ["jailbreak", "burst"];
    let attrs = [("org", "acme"), ("org", "shadowed duplicate")];
    let f = Facts {
        account: AccountFacts {
            risk: 0.5,
            reasons: &reasons,
            tier: "free",
            country: "FR",
            ..Default::default()
        },
        client: ClientFacts {
            ip: ip("10.1.2.3"),
            country: "DE",
            user_agent: "python-requests/2.31",
            ..Default::default()
        },
        attrs: &attrs,
        ..Default::default()
    };
    for (when, want) in [
        ("account.risk == 0.5", true),
        ("account.risk != 0.5", false),
        ("account.risk < 0.5", false),
        ("account.risk <= 0.5", true),
        ("account.risk > 0.4", true),
        ("account.risk >= 0.6", false),
        ("account.tier == \"free\"", true),
        ("account.tier != \"free\"", false),
        ("account.country != client.country", true),
        ("account.flagged == false", true),
        ("account.flagged != campaign.member", false),
        ("account.tier in [\"free\", \"trial\"]", true),
        ("account.tier not in [\"free\", \"trial\"]", false),
        ("account.risk in [0.25, 0.5]", true),
        ("account.risk not in [0.25, 0.5]", false),
        ("\"burst\" in account.reasons", true),
        ("\"slow\" not in account.reasons", true),
        ("account.reasons contains \"jailbreak\"", true),
        ("account.reasons contains \"jail\"", false),
        ("client.user_agent contains \"requests\"", true),
        ("client.user_agent starts_with \"python\"", true),
        ("client.user_agent starts_with \"requests\"", false),
        ("client.ip in cidr(\"10.0.0.0/8\")", true),
        ("client.ip in cidr(\"10.1.2.3\")", true),
        ("client.ip not in cidr(\"10.0.0.0/8\")", false),
        (
            "client.ip in [cidr(\"192.168.0.0/16\"), cidr(\"10.1.0.0/16\")]",
            true,
        ),
        ("client.ip in cidr(\"2001:db8::/32\")", false),
        ("attr.org == \"acme\"", true),
        ("attr.missing == \"\"", true),
        ("true and false", false),
        ("true or false", true),
        ("not false", true),
        ("not (true or false)", false),
    ] {
        assert_eq!(holds(when, &f), want, "{when}");
    }
}

#[test]
fn precedence_is_comparison_then_not_then_and_then_or() {
    let f = Facts {
        account: AccountFacts {
            risk: 0.9,
            ..Default::default()
        },
        ..Default::default()
    };
    // `or` binds loosest: true or (false and false).
    assert!(holds(
        "account.risk > 0.5 or account.flagged and account.verified",
        &f
    ));
    assert!(!holds(
        "(account.risk > 0.5 or account.flagged) and account.verified",
        &f
    ));
    // `not` negates the whole comparison, and binds tighter than `and`.
    assert!(!holds("not account.risk > 0.5", &f));
    assert!(holds("not account.flagged and account.risk > 0.5", &f));
    assert!(!holds("not (account.flagged or account.risk > 0.5)", &f));
}

#[test]
fn absent_client_ip_makes_every_ip_comparison_false() {
    let f = Facts::default();
    assert!(!holds("client.ip in cidr(\"0.0.0.0/0\")", &f));
    assert!(!holds("client.ip not in cidr(\"10.0.0.0/8\")", &f));
    assert!(holds("not (client.ip in cidr(\"10.0.0.0/8\"))", &f));
}

#[test]
fn ipv4_mapped_ipv6_client_matches_ipv4_ranges() {
    let f = Facts {
        client: ClientFacts {
            ip: ip("::ffff:10.9.8.7"),
            ..Default::default()
        },
        ..Default::default()
    };
    assert!(holds("client.ip in cidr(\"10.0.0.0/8\")", &f));
    assert!(!holds("client.ip not in cidr(\"10.0.0.0/8\")", &f));
}

#[test]
fn nan_scores_do_not_satisfy_thresholds() {
    let f = Facts {
        account: AccountFacts {
            risk: f64::NAN,
            ..Default::default()
        },
        ..Default::default()
    };
    assert!(!holds("account.risk >= 0.5", &f));
    assert!(!holds("account.risk < 0.5", &f));
}

#[test]
fn every_field_reads_its_fact() {
    let reasons = ["r1"];
    let sources = ["feed"];
    let attrs = [("team", "x")];
    let set = Facts {
        account: AccountFacts {
            id: "acct_1",
            risk: 0.7,
            flagged: true,
            reasons: &reasons,
            tier: "pro",
            country: "US",
            email_domain: "example.com",
            verified: true,
            age_days: Some(40),
        },
        campaign: CampaignFacts {
            member: true,
            id: "c9",
            score: 0.6,
            size: 12,
        },
        request: RequestFacts {
            cot: 0.3,
            jailbreak: 0.2,
            harvest: true,
            category: "math",
            endpoint: "/v1/chat/completions",
            model: "m-large",
            stream: true,
            max_tokens: Some(4096),
        },
        client: ClientFacts {
            ip: ip("192.0.2.1"),
            asn: Some(64500),
            country: "CA",
            user_agent: "ua",
            ja4: "t13d",
        },
        attrs: &attrs,
        intel: IntelFacts {
            matched: true,
            sources: &sources,
            kinds: &["address", "template"],
        },
    };
    let checks = [
        "account.id == \"acct_1\"",
        "account.risk == 0.7",
        "account.flagged",
        "\"r1\" in account.reasons",
        "account.tier == \"pro\"",
        "account.country == \"US\"",
        "account.email_domain == \"example.com\"",
        "account.verified",
        "account.age_days == 40",
        "campaign.member",
        "campaign.id == \"c9\"",
        "campaign.score == 0.6",
        "campaign.size == 12",
        "request.cot == 0.3",
        "request.jailbreak == 0.2",
        "request.harvest",
        "request.category == \"math\"",
        "request.endpoint == \"/v1/chat/completions\"",
        "request.model == \"m-large\"",
        "request.stream",
        "request.max_tokens == 4096",
        "client.ip in cidr(\"192.0.2.1/32\")",
        "client.asn == 64500",
        "client.country == \"CA\"",
        "client.user_agent == \"ua\"",
        "client.ja4 == \"t13d\"",
        "attr.team == \"x\"",
        "intel.match",
        "intel.sources contains \"feed\"",
        "\"template\" in intel.kinds",
    ];
    // Every documented field is exercised here, so a field added later needs a check too.
    for (name, _) in moat_policy::fields() {
        assert!(
            checks.iter().any(|c| c.contains(name)),
            "no check reads {name}"
        );
    }
    let unset = Facts::default();
    for when in checks {
        assert!(holds(when, &set), "{when} should hold for the set facts");
        assert!(
            !holds(when, &unset),
            "{when} should not hold for default facts"
        );
    }
    for when in [
        "account.age_days == -1",
        "request.max_tokens == -1",
        "client.asn == -1",
        "campaign.size == 0",
        "\"address\" not in intel.kinds",
        "account.tier == \"\"",
    ] {
        assert!(holds(when, &unset), "{when} is the documented default");
    }
}

//! Load errors: each names the file, the exact line and column, the rule when known, and a
//! short reason, because operators fix policy files from these messages alone.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use moat_policy::{Policy, PolicyError};

fn error(text: &str) -> PolicyError {
    match Policy::parse(text, "policy.toml") {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e,
    }
}

#[test]
fn toml_syntax_error_has_line_and_column() {
    let e = error("version = 1\n\n[[rule]\nname = \"x\"\n");
    assert_eq!((e.line(), e.column()), (3, 7));
    assert!(
        e.to_string()
            .starts_with("policy.toml:3:7: invalid table header"),
        "{e}"
    );
    assert!(!e.to_string().contains('\n'), "one line: {e}");
    let e = error("version = 1\nname = \"unterminated\n");
    assert_eq!(e.line(), 2);
}

#[test]
fn unknown_top_level_key_is_located() {
    let e = error("version = 1\ndefualt = \"block\"\n");
    assert_eq!(e.rule(), None);
    assert!(
        e.to_string()
            .starts_with("policy.toml:2:1: unknown field `defualt`"),
        "{e}"
    );
}

#[test]
fn unknown_rule_key_names_the_rule() {
    let e = error(
        "version = 1\n[[rule]]\nname = \"slow\"\nwhen = 'true'\naction = \"tarpit\"\ndelay = 5\n",
    );
    assert_eq!(e.rule(), Some("slow"));
    assert!(
        e.to_string()
            .starts_with("policy.toml:6:1: rule \"slow\": unknown field `delay`"),
        "{e}"
    );
    // Inline tables are located too.
    let e =
        error("version = 1\nrule = [{ name = \"i\", when = 'true', action = \"allow\", x = 1 }]\n");
    assert_eq!((e.line(), e.column(), e.rule()), (2, 56, Some("i")));
}

#[test]
fn unknown_field_in_when_is_located_at_the_token() {
    let text = "version = 1\n\n[[rule]]\nname = \"x\"\n\nwhen = 'account.risk > 0.1 and acount.risk >= 0.5'\naction = \"block\"\n";
    let e = error(text);
    assert_eq!(
        e.to_string(),
        "policy.toml:6:32: rule \"x\": unknown field \"acount.risk\" (did you mean \"account.risk\"?)"
    );
}

#[test]
fn when_offsets_are_exact_in_every_toml_string_form() {
    // Basic string with escapes before the bad token: \" counts two columns in the file.
    let e = error("version = 1\n[[rule]]\nname = \"x\"\nwhen = \"account.tier == \\\"é\\\" and bogus\"\naction = \"allow\"\n");
    assert_eq!((e.line(), e.column()), (4, 35));
    assert!(e.reason().contains("\"bogus\""));
    // Multi-line literal string: the token is on the third line of the expression.
    let e = error("version = 1\n[[rule]]\nname = \"x\"\nwhen = '''\n  account.flagged\n  and bogus\n'''\naction = \"allow\"\n");
    assert_eq!((e.line(), e.column()), (6, 7));
    // Multi-line basic string with a line-ending backslash.
    let e = error("version = 1\n[[rule]]\nname = \"x\"\nwhen = \"\"\"\naccount.flagged \\\n    and bogus\"\"\"\naction = \"allow\"\n");
    assert_eq!((e.line(), e.column()), (6, 9));
}

#[test]
fn type_errors_point_at_the_operator() {
    let e = error(
        "version = 1\n[[rule]]\nname = \"t\"\nwhen = 'account.risk == \"x\"'\naction = \"allow\"\n",
    );
    assert_eq!(
        e.to_string(),
        "policy.toml:4:22: rule \"t\": \"==\" needs two values of the same type (number, string or bool), got number and string"
    );
    let e = error(
        "version = 1\n[[rule]]\nname = \"t\"\nwhen = 'account.flagged >= 2'\naction = \"allow\"\n",
    );
    assert_eq!(
        e.to_string(),
        "policy.toml:4:25: rule \"t\": \">=\" needs two numbers, got bool and number"
    );
    let e =
        error("version = 1\n[[rule]]\nname = \"t\"\nwhen = 'account.risk'\naction = \"allow\"\n");
    assert_eq!((e.line(), e.column()), (4, 9));
    assert!(e.reason().contains("must be true or false"), "{e}");
    let e = error(
        "version = 1\n[[rule]]\nname = \"t\"\nwhen = 'true and account.tier'\naction = \"allow\"\n",
    );
    assert_eq!((e.line(), e.column()), (4, 18));
    let e = error("version = 1\n[[rule]]\nname = \"t\"\nwhen = 'client.ip == cidr(\"10.0.0.0/8\")'\naction = \"allow\"\n");
    assert!(e.reason().contains("client.ip in cidr"), "{e}");
    let e = error("version = 1\n[[rule]]\nname = \"t\"\nwhen = 'account.tier in account.id'\naction = \"allow\"\n");
    assert_eq!((e.line(), e.column()), (4, 22));
}

#[test]
fn bad_cidr_is_located_at_its_string() {
    let e = error("version = 1\n[[rule]]\nname = \"c\"\nwhen = 'client.ip in cidr(\"10.0.0.0/33\")'\naction = \"block\"\n");
    assert_eq!(
        e.to_string(),
        "policy.toml:4:27: rule \"c\": invalid cidr \"10.0.0.0/33\""
    );
    let e = error("version = 1\n[[rule]]\nname = \"c\"\nwhen = 'client.ip in [cidr(\"10.0.0.0/8\"), cidr(\"nope\")]'\naction = \"block\"\n");
    assert_eq!((e.line(), e.column()), (4, 48));
}

#[test]
fn duplicate_rule_name_points_at_the_second_and_names_the_first() {
    let e = error(
        "version = 1\n[[rule]]\nname = \"dup\"\nwhen = 'true'\naction = \"allow\"\n\n[[rule]]\nname = \"dup\"\nwhen = 'false'\naction = \"block\"\n",
    );
    assert_eq!(
        e.to_string(),
        "policy.toml:8:8: rule \"dup\": duplicate rule name (first used on line 3)"
    );
}

#[test]
fn wrong_or_missing_version_is_rejected() {
    let e = error("# policy\nversion = 2\n");
    assert_eq!(
        e.to_string(),
        "policy.toml:2:11: unsupported version 2; this gateway reads version 1"
    );
    let e = error("default = \"allow\"\n");
    assert_eq!(
        e.to_string(),
        "policy.toml:1:1: missing required key \"version\" (must be 1)"
    );
    let e = error("version = \"1\"\n");
    assert_eq!((e.line(), e.column()), (1, 11));
}

#[test]
fn tarpit_without_delay_is_rejected_at_the_action() {
    let e = error("version = 1\n[[rule]]\nname = \"slow\"\nwhen = 'true'\naction = \"tarpit\"\n");
    assert_eq!(
        e.to_string(),
        "policy.toml:5:10: rule \"slow\": tarpit needs delay_ms (1 to 60000)"
    );
}

#[test]
fn missing_rule_keys_are_reported_at_the_rule() {
    let e = error("version = 1\n\n[[rule]]\nwhen = 'true'\naction = \"allow\"\n");
    assert_eq!(
        e.to_string(),
        "policy.toml:3:1: rule #1: missing required key \"name\""
    );
    let e = error("version = 1\n[[rule]]\nname = \"n\"\naction = \"allow\"\n");
    assert_eq!(
        e.to_string(),
        "policy.toml:2:1: rule \"n\": missing required key \"when\""
    );
    let e = error("version = 1\n[[rule]]\nname = \"n\"\nwhen = 'true'\n");
    assert!(e.reason().contains("\"action\""));
    let e = error("version = 1\n[[rule]]\nname = \"\"\nwhen = 'true'\naction = \"allow\"\n");
    assert_eq!((e.line(), e.column(), e.rule()), (3, 8, None));
    let e =
        error("version = 1\n[[rule]]\nname = \"a\\u0007b\"\nwhen = 'true'\naction = \"allow\"\n");
    assert!(e.reason().contains("control characters"));
}

#[test]
fn rule_count_is_bounded() {
    let mut text = String::from("version = 1\n");
    for i in 0..=moat_policy::MAX_RULES {
        text.push_str(&format!(
            "[[rule]]\nname = \"r{i}\"\nwhen = 'true'\naction = \"allow\"\n"
        ));
    }
    assert!(error(&text).reason().contains("more than 1000 rules"));
}

//! Property tests: hostile policy files and `when` strings are rejected or accepted, never
//! panic, and every error position lies inside the file.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use moat_policy::{Facts, Policy};
use proptest::prelude::*;

/// Fragments that steer random expressions toward the interesting parts of the grammar.
fn when_fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("account.risk".to_owned()),
        Just("account.reasons".to_owned()),
        Just("client.ip".to_owned()),
        Just("attr.x".to_owned()),
        Just("cidr(\"10.0.0.0/8\")".to_owned()),
        Just("\"s\\\"\"".to_owned()),
        Just("[".to_owned()),
        Just("]".to_owned()),
        Just("(".to_owned()),
        Just(")".to_owned()),
        Just(",".to_owned()),
        Just("and".to_owned()),
        Just("or".to_owned()),
        Just("not".to_owned()),
        Just("in".to_owned()),
        Just("contains".to_owned()),
        Just("starts_with".to_owned()),
        Just("==".to_owned()),
        Just(">=".to_owned()),
        Just("-1.5e3".to_owned()),
        Just("true".to_owned()),
        "\\PC{0,6}",
    ]
}

fn check(text: &str) {
    match Policy::parse(text, "fuzz.toml") {
        Ok(p) => {
            // Whatever loads must evaluate without panicking.
            let _ = p.evaluate(&Facts::default()).kind();
        }
        Err(e) => {
            let lines = text.split('\n').count();
            assert!(e.line() >= 1 && e.line() <= lines.max(1), "{e}");
            assert!(e.column() >= 1, "{e}");
            assert!(!e.to_string().contains('\n'), "{e}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn parse_never_panics_on_arbitrary_text(text in "\\PC{0,200}") {
        check(&text);
    }

    #[test]
    fn parse_never_panics_on_toml_like_text(
        lines in prop::collection::vec(
            prop_oneof![
                Just("version = 1".to_owned()),
                Just("[[rule]]".to_owned()),
                Just("name = \"r\"".to_owned()),
                Just("action = \"block\"".to_owned()),
                Just("action = [\"throttle\", \"tarpit\"]".to_owned()),
                Just("delay_ms = 5".to_owned()),
                Just("requests_per_minute = -3".to_owned()),
                Just("mode = \"shadow\"".to_owned()),
                Just("when = 'true'".to_owned()),
                "[a-z_]{1,8} = \\PC{0,10}",
            ],
            0..12,
        )
    ) {
        check(&lines.join("\n"));
    }

    #[test]
    fn when_parser_never_panics(parts in prop::collection::vec(when_fragment(), 0..16)) {
        let when = parts.join(" ");
        // Both a literal and a basic TOML string, so the offset replay runs over escapes too.
        let literal = when.replace('\'', "");
        check(&format!("version = 1\n[[rule]]\nname = \"r\"\nwhen = '{literal}'\naction = \"allow\"\n"));
        let basic = when.replace('\\', "\\\\").replace('"', "\\\"");
        check(&format!("version = 1\n[[rule]]\nname = \"r\"\nwhen = \"{basic}\"\naction = \"allow\"\n"));
    }

    #[test]
    fn when_parser_never_panics_on_arbitrary_strings(when in "\\PC{0,80}") {
        let basic = when.replace('\\', "\\\\").replace('"', "\\\"");
        check(&format!("version = 1\n[[rule]]\nname = \"r\"\nwhen = \"{basic}\"\naction = \"allow\"\n"));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Guards the column arithmetic for `when` errors: whatever precedes the bad token
    /// (escaped quotes, backslashes, multi-byte characters), the column is that of the token.
    #[test]
    fn when_error_column_is_exact_through_escapes(s in "[^z\\n\\r\\t\\u{0}-\\u{1f}\\u{7f}]{0,30}") {
        let expr_string = s.replace('\\', "\\\\").replace('"', "\\\"");
        let when = format!("account.tier == \"{expr_string}\" or zzq.q");
        let toml_basic = when.replace('\\', "\\\\").replace('"', "\\\"");
        let line = format!("when = \"{toml_basic}\"");
        let text = format!("version = 1\n[[rule]]\nname = \"r\"\n{line}\naction = \"allow\"\n");
        let e = Policy::parse(&text, "p.toml").unwrap_err();
        let want = line[..line.find("zzq").unwrap()].chars().count() + 1;
        prop_assert_eq!((e.line(), e.column()), (4, want), "{}", e);
    }
}

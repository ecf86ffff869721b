//! Prompt text for the report: what an exchange asked (borrowed, without copying on the hot
//! path), a cheap key of a prompt's shape for sampling, and the sanitiser that makes a hostile
//! prompt safe and fit to show (visible control characters, masked credentials and e-mail
//! addresses, bounded length).
//!
//! HTML escaping is not done here: it happens once, when text is written into the page
//! (`html::Esc`), so sanitised text is escaped like every other input string.

use std::borrow::Cow;

use moat_types::{Content, Exchange, Message};

/// The text of the last user message, or the completion prompt: what the caller asked now.
/// Borrowed whenever the content is one string or one text part.
pub(crate) fn asked(x: &Exchange) -> Cow<'_, str> {
    match x.request.messages.iter().rev().find(|m| m.role == "user") {
        Some(m) => content_text(m),
        None => Cow::Borrowed(x.request.prompt.as_deref().unwrap_or("")),
    }
}

/// The text of the first system (or developer) message, if any.
pub(crate) fn system_prompt(x: &Exchange) -> Option<Cow<'_, str>> {
    x.request
        .messages
        .iter()
        .find(|m| m.role == "system" || m.role == "developer")
        .map(content_text)
}

fn content_text(m: &Message) -> Cow<'_, str> {
    match &m.content {
        None => Cow::Borrowed(""),
        Some(Content::Text(t)) => Cow::Borrowed(t),
        Some(Content::Parts(parts)) => {
            let mut texts = parts.iter().filter_map(|p| p.text.as_deref());
            match (texts.next(), texts.next()) {
                (None, _) => Cow::Borrowed(""),
                (Some(one), None) => Cow::Borrowed(one),
                (Some(_), Some(_)) => Cow::Owned(m.text_content()),
            }
        }
    }
}

/// Normalised characters of a prompt's opening that make up its shape key.
const SHAPE_CHARS: usize = 48;

/// A hash of the prompt's opening, normalised (ASCII letters lowercased, each number one
/// `0`, ASCII punctuation and white space dropped), so that requests built from one wrapper,
/// or the same question with other numbers, share a key.
pub(crate) fn shape_key(text: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut n = 0;
    let mut in_number = false;
    for c in text.chars() {
        if n >= SHAPE_CHARS {
            break;
        }
        // Only ASCII is normalised: Unicode case and class tables cost more than the rest of
        // the report's per-exchange work, and a wrapper is written the same way every time.
        let digit = c.is_ascii_digit();
        let run = digit && in_number;
        in_number = digit;
        let c = if run {
            continue;
        } else if digit {
            '0'
        } else if c.is_ascii_alphabetic() {
            c.to_ascii_lowercase()
        } else if c.is_ascii() || c.is_whitespace() {
            continue;
        } else {
            c
        };
        let mut buf = [0u8; 4];
        for b in c.encode_utf8(&mut buf).bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        n += 1;
    }
    h
}

/// A well-mixed 64-bit hash of a 64-bit value (the SplitMix64 finaliser).
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Makes prompt text fit to show: at most `max_chars` characters (cut at a character
/// boundary and marked with the number of characters left out), invisible and
/// direction-changing characters shown as `[U+XXXX]`, other control characters dropped, and
/// anything that looks like a credential (API keys, tokens, JWTs, `password: …`), an e-mail
/// address or a payment card number replaced by `[secret]`, `[email]` or `[card]`.
///
/// The result is plain text: escape it before putting it into HTML.
pub fn sanitize_prompt(text: &str, max_chars: usize) -> String {
    // Only a bounded prefix is examined, cut so that no token straddles the cut (a partly
    // visible key would escape masking).
    let scan = prefix_chars(text, max_chars.saturating_mul(4).max(64));
    let scan = if scan.len() < text.len() {
        let tail_is_token = text[scan.len()..].chars().next().is_some_and(is_token_char);
        if tail_is_token {
            scan.trim_end_matches(is_token_char)
        } else {
            scan
        }
    } else {
        scan
    };
    let masked = mask_secrets(scan);
    let visible = show_invisible(&masked);
    let total = text.chars().count();
    let kept: String = visible.chars().take(max_chars).collect();
    let kept_len = kept.chars().count();
    let shown_all = scan.len() == text.len() && kept_len == visible.chars().count();
    if shown_all {
        kept
    } else {
        // The count of what was cut refers to the original text, roughly: masking changes
        // lengths, so it is an estimate and says so.
        let left = total.saturating_sub(kept_len);
        format!("{} … [about {left} more characters]", kept.trim_end())
    }
}

fn prefix_chars(text: &str, n: usize) -> &str {
    match text.char_indices().nth(n) {
        Some((i, _)) => &text[..i],
        None => text,
    }
}

/// Characters that make up one "word" for masking purposes: what keys, tokens, e-mail
/// addresses and base64 are written with.
fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '+' | '/' | '=' | '@' | '~')
}

/// Labels after which (with `:` or `=` between) the next word is a secret.
const SECRET_LABELS: [&str; 12] = [
    "password",
    "passwd",
    "pwd",
    "token",
    "secret",
    "apikey",
    "api_key",
    "api-key",
    "access_token",
    "auth_token",
    "client_secret",
    "private_key",
];

/// Prefixes of well-known credential formats (OpenAI/Anthropic, Stripe, GitHub, Slack, AWS,
/// Google, GitLab, Hugging Face, JWT).
const SECRET_PREFIXES: [&str; 20] = [
    "sk-",
    "sk_",
    "pk_live_",
    "rk_live_",
    "ghp_",
    "gho_",
    "ghs_",
    "ghu_",
    "ghr_",
    "github_pat_",
    "xoxb-",
    "xoxp-",
    "xoxa-",
    "AKIA",
    "ASIA",
    "AIza",
    "glpat-",
    "hf_",
    "ya29.",
    "eyJ",
];

fn mask_secrets(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    // The previous word was a secret label (`password`, `api_key`, …) ...
    let mut label = false;
    // ... and `=` followed it inside the word.
    let mut label_eq = false;
    // The previous word was `Bearer`.
    let mut bearer = false;
    while !rest.is_empty() {
        let sep_len = rest
            .char_indices()
            .find(|(_, c)| is_token_char(*c))
            .map_or(rest.len(), |(i, _)| i);
        let sep = &rest[..sep_len];
        out.push_str(sep);
        let after_label = label && (label_eq || sep.contains(':') || sep.contains('='));
        rest = &rest[sep_len..];
        if rest.is_empty() {
            break;
        }
        let tok_len = rest
            .char_indices()
            .find(|(_, c)| !is_token_char(*c))
            .map_or(rest.len(), |(i, _)| i);
        let tok = &rest[..tok_len];
        rest = &rest[tok_len..];
        // Sentence punctuation stays outside the judged word.
        let word = tok.trim_end_matches(['.', '=', '-', '~']);
        let trail = &tok[word.len()..];
        match classify(word, after_label || bearer) {
            Some(r) => out.push_str(r),
            None => match word.split_once('=') {
                // `api_key=...` inside one word.
                Some((l, value)) if is_label(l) && value.len() >= 4 => {
                    out.push_str(l);
                    out.push_str("=[secret]");
                }
                _ => out.push_str(word),
            },
        }
        out.push_str(trail);
        bearer = word == "Bearer";
        label = is_label(word);
        label_eq = trail.starts_with('=');
    }
    out
}

fn is_label(word: &str) -> bool {
    SECRET_LABELS.iter().any(|l| l.eq_ignore_ascii_case(word))
}

/// What to show instead of `word`, if it must be masked.
fn classify(word: &str, after_label: bool) -> Option<&'static str> {
    if word.is_empty() {
        return None;
    }
    if let Some((local, domain)) = word.split_once('@') {
        let domain_ok = domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && domain
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
        if !local.is_empty() && domain_ok {
            return Some("[email]");
        }
    }
    if after_label && word.chars().count() >= 4 {
        return Some("[secret]");
    }
    let len = word.len();
    if len >= 16 && SECRET_PREFIXES.iter().any(|p| word.starts_with(p)) {
        return Some("[secret]");
    }
    let digits = word.bytes().filter(u8::is_ascii_digit).count();
    if (13..=19).contains(&len) && digits == len && luhn(word) {
        return Some("[card]");
    }
    let letters = word.bytes().filter(u8::is_ascii_alphabetic).count();
    if len >= 32 && digits > 0 && letters > 0 {
        // Long random-looking strings: keys, hashes, session ids. Masking a harmless hash
        // costs nothing; leaking a key in a report would.
        return Some("[secret]");
    }
    None
}

fn luhn(digits: &str) -> bool {
    let mut sum = 0u32;
    for (i, b) in digits.bytes().rev().enumerate() {
        let mut d = u32::from(b - b'0');
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    sum % 10 == 0
}

/// Whether `c` changes text direction or is invisible, so that a reviewer must see it.
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}'
        | '\u{061C}' | '\u{FEFF}' | '\u{00AD}' | '\u{E0000}'..='\u{E007F}')
}

fn show_invisible(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if is_invisible(c) {
            out.push_str(&format!("[U+{:04X}]", u32::from(c)));
        } else if c == '\r' || (c.is_control() && c != '\n' && c != '\t') {
            // Dropped: carriage returns and other controls have no business in a sample.
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn masks_keys_tokens_emails_and_cards() {
        let cases = [
            ("use sk-proj-abcdefghijklmnop1234 now", "use [secret] now"),
            ("mail me at alice.b@example.co.uk.", "mail me at [email]."),
            ("password: hunter22 ok", "password: [secret] ok"),
            ("API_KEY=abcd1234efgh", "API_KEY=[secret]"),
            (
                "Authorization: Bearer abc.def.ghi",
                "Authorization: Bearer [secret]",
            ),
            ("card 4111111111111111 please", "card [card] please"),
            (
                "key AKIAIOSFODNN7EXAMPLE and ghp_0123456789abcdefghij",
                "key [secret] and [secret]",
            ),
            (
                "hash 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
                "hash [secret]",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(sanitize_prompt(input, 300), want, "{input}");
        }
    }

    #[test]
    fn keeps_ordinary_prose() {
        let s = "What is the token limit? Explain step-by-step, e.g. for 3.14 and x=2.";
        assert_eq!(sanitize_prompt(s, 300), s);
    }

    #[test]
    fn truncates_and_never_leaks_a_key_cut_at_the_scan_boundary() {
        let long = format!("{} sk-{}", "a ".repeat(10), "x1".repeat(500));
        let s = sanitize_prompt(&long, 10);
        assert!(!s.contains("x1x1"), "{s}");
        assert!(s.contains("more characters"), "{s}");
        let many = "word ".repeat(1000);
        let s = sanitize_prompt(&many, 300);
        assert!(s.chars().count() < 340, "{}", s.chars().count());
    }

    #[test]
    fn shows_invisible_characters() {
        let s = sanitize_prompt("abc\u{202E}def\u{200B}\u{0007}", 100);
        assert_eq!(s, "abc[U+202E]def[U+200B]");
    }

    proptest::proptest! {
        #[test]
        fn sanitize_never_panics_and_stays_bounded(text in "\\PC{0,400}", max in 0usize..120) {
            let s = sanitize_prompt(&text, max);
            // The cut text, plus the marker of what was left out.
            proptest::prop_assert!(s.chars().count() <= max + 48, "{}", s);
            proptest::prop_assert!(!s.chars().any(|c| c.is_control() && c != '\n' && c != '\t'));
        }
    }

    #[test]
    fn shape_key_ignores_case_digits_and_punctuation() {
        assert_eq!(
            shape_key("Think step by step: what is 12+30?"),
            shape_key("think STEP by step -- what is 99+1")
        );
        assert_ne!(shape_key("Think step by step"), shape_key("Write a poem"));
    }
}

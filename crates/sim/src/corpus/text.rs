//! Text helpers shared by the built-in corpus and the loader: order-preserving exact
//! deduplication, length caps and single-pass slot substitution.
//!
//! No IO and no normalisation beyond trimming: two prompts that differ in case or inner
//! whitespace are different prompts.

use std::collections::HashSet;

/// Collects trimmed strings in first-seen order, dropping blanks and exact duplicates.
///
/// The `HashSet` only answers "seen before?"; output order is the `Vec`'s, so it never depends
/// on hashing.
#[derive(Debug, Default)]
pub(super) struct Unique {
    items: Vec<String>,
    seen: HashSet<String>,
}

impl Unique {
    /// Adds `text` trimmed; returns whether it was new and non-blank.
    pub(super) fn push(&mut self, text: &str) -> bool {
        let text = text.trim();
        if text.is_empty() || self.seen.contains(text) {
            return false;
        }
        self.seen.insert(text.to_owned());
        self.items.push(text.to_owned());
        true
    }

    /// Adds every item of `texts`.
    pub(super) fn extend<'a>(&mut self, texts: impl IntoIterator<Item = &'a str>) {
        for text in texts {
            self.push(text);
        }
    }

    /// Whether nothing was added.
    pub(super) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The collected strings in first-seen order.
    pub(super) fn into_vec(self) -> Vec<String> {
        self.items
    }
}

/// `text` cut to at most `max_chars` characters. The cut falls on the last whitespace of the
/// final tenth when there is one, so a capped prompt rarely ends mid-word.
pub(super) fn cap(text: &str, max_chars: usize) -> &str {
    let Some((end, _)) = text.char_indices().nth(max_chars) else {
        return text;
    };
    let head = &text[..end];
    match head.rfind(char::is_whitespace) {
        Some(space) if space >= end - end / 10 => head[..space].trim_end(),
        _ => head,
    }
}

/// Replaces each `{name}` whose name is in `slots` with its value, scanning `template` once,
/// so braces inside a value are never expanded. Other braces are copied unchanged.
pub(super) fn substitute(template: &str, slots: &[(&str, &str)]) -> String {
    let extra: usize = slots.iter().map(|(_, value)| value.len()).sum();
    let mut out = String::with_capacity(template.len() + extra);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let value = after.find('}').and_then(|close| {
            let name = &after[..close];
            slots
                .iter()
                .find(|(slot, _)| *slot == name)
                .map(|(_, value)| (close, *value))
        });
        match value {
            Some((close, value)) => {
                out.push_str(value);
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The names of the `{identifier}` slots in `template`, in order of appearance (repeats kept).
/// Braces around anything else (`{}`, `{ x }`, JSON) are not slots.
pub(super) fn slot_names(template: &str) -> Vec<&str> {
    let mut names = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        if let Some(close) = after.find('}') {
            let name = &after[..close];
            if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                names.push(name);
                rest = &after[close + 1..];
                continue;
            }
        }
        rest = after;
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_keeps_first_occurrence_order_and_drops_blanks() {
        let mut unique = Unique::default();
        unique.extend([" b ", "a", "", "b", "  ", "c", "a"]);
        assert_eq!(unique.into_vec(), vec!["b", "a", "c"]);
    }

    #[test]
    fn cap_leaves_short_text_alone() {
        assert_eq!(cap("héllo", 5), "héllo");
    }

    #[test]
    fn cap_counts_characters_not_bytes() {
        assert_eq!(cap("ééééé", 3), "ééé");
    }

    #[test]
    fn cap_prefers_a_word_boundary_near_the_end() {
        let text = "word ".repeat(100);
        let capped = cap(&text, 203);
        assert!(capped.len() <= 203 && capped.ends_with("word"));
    }

    #[test]
    fn substitute_handles_repeated_and_adjacent_slots() {
        let out = substitute("{q}{q} {a}", &[("q", "x"), ("a", "{q}")]);
        assert_eq!(out, "xx {q}");
    }

    #[test]
    fn slot_names_ignores_non_identifier_braces() {
        let names = slot_names(r#"{question} {"k": 1} {} {options_} {"#);
        assert_eq!(names, vec!["question", "options_"]);
    }
}

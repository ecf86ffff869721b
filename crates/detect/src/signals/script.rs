//! Coarse writing system of a request's text (Latin, Cyrillic, CJK, Arabic, Hangul, Kana).
//!
//! Harvesting campaigns translate their wrappers to slip past English-only filters, so the script
//! mix of an account is a cheap feature. This is a count of letters by Unicode block over a
//! bounded prefix, not language identification: Spanish and English are both `Latin`.

use serde::{Deserialize, Serialize};

/// Characters examined; the script of a prompt is settled long before this.
const SAMPLE_CHARS: usize = 256;

/// Dominant script of a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Script {
    /// Latin letters (English, Spanish, French, German, Portuguese, …).
    Latin,
    /// Cyrillic.
    Cyrillic,
    /// Han ideographs without kana (Chinese).
    Cjk,
    /// Arabic.
    Arabic,
    /// Hangul (Korean).
    Hangul,
    /// Text with kana (Japanese, which also uses Han ideographs).
    Kana,
    /// Anything else, or no letters at all.
    Other,
}

impl Script {
    /// Stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Script::Latin => "latin",
            Script::Cyrillic => "cyrillic",
            Script::Cjk => "cjk",
            Script::Arabic => "arabic",
            Script::Hangul => "hangul",
            Script::Kana => "kana",
            Script::Other => "other",
        }
    }
}

/// The dominant script of `text`'s first letters.
pub fn script(text: &str) -> Script {
    ScriptTally::of(text).script()
}

/// Letters counted by script over the first [`SAMPLE_CHARS`] letters of a text. The normaliser
/// fills one in the same pass ([`super::text`]), so a request reads its characters once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ScriptTally {
    /// Latin, Cyrillic, Han, Arabic, Hangul, kana, other letters.
    n: [u16; 7],
    /// Letters counted so far.
    letters: u16,
}

impl ScriptTally {
    /// Counts `text` from the start.
    pub(crate) fn of(text: &str) -> Self {
        let mut t = ScriptTally::default();
        for c in text.chars().filter(|c| c.is_alphabetic()) {
            if t.is_full() {
                break;
            }
            t.add(c);
        }
        t
    }

    /// Whether the sample is complete: later letters no longer count.
    pub(crate) fn is_full(&self) -> bool {
        usize::from(self.letters) >= SAMPLE_CHARS
    }

    /// Counts `letters` ASCII letters, in order after those counted so far.
    pub(crate) fn add_latin(&mut self, letters: usize) {
        let room = SAMPLE_CHARS.saturating_sub(usize::from(self.letters));
        // At most SAMPLE_CHARS, which fits.
        let inc = u16::try_from(room.min(letters)).unwrap_or(0);
        self.n[0] += inc;
        self.letters += inc;
    }

    /// Counts a letter (a `char` for which `is_alphabetic` holds).
    pub(crate) fn add(&mut self, c: char) {
        if self.is_full() {
            return;
        }
        let i = match c as u32 {
            0x41..=0x7A | 0xC0..=0x24F | 0x1E00..=0x1EFF => 0,
            0x400..=0x52F => 1,
            0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF => 2,
            0x600..=0x6FF | 0x750..=0x77F | 0xFB50..=0xFDFF | 0xFE70..=0xFEFF => 3,
            0x1100..=0x11FF | 0x3130..=0x318F | 0xAC00..=0xD7AF => 4,
            0x3040..=0x30FF | 0x31F0..=0x31FF | 0xFF66..=0xFF9F => 5,
            _ => 6,
        };
        if let Some(slot) = self.n.get_mut(i) {
            *slot += 1;
        }
        self.letters += 1;
    }

    /// The dominant script of the letters counted.
    pub(crate) fn script(&self) -> Script {
        let mut n = self.n;
        // Japanese mixes kanji and kana; a modest share of kana marks it as Japanese.
        let (han, kana) = (n[2], n[5]);
        if kana > 0 && kana * 5 >= han + kana {
            n[5] += han;
            n[2] = 0;
        }
        let order = [
            Script::Latin,
            Script::Cyrillic,
            Script::Cjk,
            Script::Arabic,
            Script::Hangul,
            Script::Kana,
            Script::Other,
        ];
        let (best, count) = n
            .iter()
            .enumerate()
            .fold((6, 0), |acc, (i, &v)| if v > acc.1 { (i, v) } else { acc });
        if count == 0 {
            return Script::Other;
        }
        order.get(best).copied().unwrap_or(Script::Other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts() {
        assert_eq!(script("Hello, wie geht's?"), Script::Latin);
        assert_eq!(script("Привет, как дела?"), Script::Cyrillic);
        assert_eq!(script("请解释一下这个问题"), Script::Cjk);
        assert_eq!(script("この問題を説明してください"), Script::Kana);
        assert_eq!(script("이 문제를 설명해 주세요"), Script::Hangul);
        assert_eq!(script("اشرح هذه المسألة"), Script::Arabic);
        assert_eq!(script("12345 !!!"), Script::Other);
        assert_eq!(script("Translate 你好 into English please"), Script::Latin);
    }

    #[test]
    fn only_the_first_letters_count() {
        let text = format!("{} {}", "a".repeat(SAMPLE_CHARS), "Привет ".repeat(100));
        assert_eq!(script(&text), Script::Latin);
        assert!(ScriptTally::of(&text).is_full());
    }
}

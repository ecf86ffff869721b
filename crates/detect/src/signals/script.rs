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
    // latin, cyrillic, han, arabic, hangul, kana, other letters
    let mut n = [0usize; 7];
    for c in text
        .chars()
        .filter(|c| c.is_alphabetic())
        .take(SAMPLE_CHARS)
    {
        let i = match c as u32 {
            0x41..=0x7A | 0xC0..=0x24F | 0x1E00..=0x1EFF => 0,
            0x400..=0x52F => 1,
            0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF => 2,
            0x600..=0x6FF | 0x750..=0x77F | 0xFB50..=0xFDFF | 0xFE70..=0xFEFF => 3,
            0x1100..=0x11FF | 0x3130..=0x318F | 0xAC00..=0xD7AF => 4,
            0x3040..=0x30FF | 0x31F0..=0x31FF | 0xFF66..=0xFF9F => 5,
            _ => 6,
        };
        n[i] += 1;
    }
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
}

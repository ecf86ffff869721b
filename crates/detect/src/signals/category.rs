//! Coarse task category of one request (math, code, reasoning, knowledge, writing, chat), from
//! keywords in ten languages and a few structural features of the raw text (digits and
//! operators, code fences and punctuation, lettered answer options).
//!
//! The category feeds breadth features downstream: a harvester sweeps many categories
//! uniformly, a person or an app sticks to a few. So it needs to be cheap and roughly right, not
//! precise; it is not a topic model and says nothing about intent.

use serde::{Deserialize, Serialize};

use super::text::{head_tail, Hit, Lexicon, Normalized};

/// Coarse task category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskCategory {
    /// Arithmetic, word problems, algebra, proofs.
    Math,
    /// Writing, fixing or explaining code.
    Code,
    /// Logic puzzles, inference, multiple choice.
    Reasoning,
    /// Factual questions.
    Knowledge,
    /// Writing, rewriting, summarising, translating.
    Writing,
    /// Greetings, advice, opinions, conversation.
    Chat,
    /// None of the above, or empty.
    Other,
}

impl TaskCategory {
    /// Every category, in index order.
    pub const ALL: [TaskCategory; 7] = [
        TaskCategory::Math,
        TaskCategory::Code,
        TaskCategory::Reasoning,
        TaskCategory::Knowledge,
        TaskCategory::Writing,
        TaskCategory::Chat,
        TaskCategory::Other,
    ];

    /// Dense index (`0..7`), for per-category counters.
    pub fn index(self) -> usize {
        self as usize
    }

    /// Stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskCategory::Math => "math",
            TaskCategory::Code => "code",
            TaskCategory::Reasoning => "reasoning",
            TaskCategory::Knowledge => "knowledge",
            TaskCategory::Writing => "writing",
            TaskCategory::Chat => "chat",
            TaskCategory::Other => "other",
        }
    }
}

use TaskCategory::{Chat, Code, Knowledge, Math, Reasoning, Writing};

/// Keyword evidence; weights are summed per category.
pub(crate) fn entries() -> Vec<(&'static str, (TaskCategory, f32))> {
    vec![
        // ---- Math.
        ("solve", (Math, 0.4)),
        ("equation", (Math, 0.8)),
        ("equations", (Math, 0.8)),
        ("calculate", (Math, 0.7)),
        ("compute", (Math, 0.5)),
        ("how many", (Math, 0.5)),
        ("how much", (Math, 0.4)),
        ("percent", (Math, 0.5)),
        ("integral", (Math, 0.9)),
        ("derivative", (Math, 0.9)),
        ("prove that", (Math, 0.7)),
        ("theorem", (Math, 0.7)),
        ("probability", (Math, 0.7)),
        ("triangle", (Math, 0.6)),
        ("polynomial", (Math, 0.9)),
        ("prime", (Math, 0.4)),
        ("divisible", (Math, 0.8)),
        ("remainder", (Math, 0.6)),
        ("fraction", (Math, 0.5)),
        ("ratio", (Math, 0.5)),
        ("average", (Math, 0.3)),
        ("sum of", (Math, 0.5)),
        ("product of", (Math, 0.4)),
        ("real numbers", (Math, 0.7)),
        ("integer", (Math, 0.6)),
        ("integers", (Math, 0.6)),
        ("radius", (Math, 0.6)),
        ("area of", (Math, 0.5)),
        ("perimeter", (Math, 0.7)),
        ("frac", (Math, 0.9)),
        ("sqrt", (Math, 0.8)),
        ("dollars", (Math, 0.3)),
        ("per hour", (Math, 0.3)),
        ("each", (Math, 0.1)),
        ("total", (Math, 0.2)),
        ("mathematics", (Math, 0.6)),
        ("math", (Math, 0.5)),
        ("maths", (Math, 0.5)),
        ("计算", (Math, 0.7)),
        ("方程", (Math, 0.8)),
        ("求解", (Math, 0.5)),
        ("数学", (Math, 0.6)),
        ("вычисли", (Math, 0.7)),
        ("уравнение", (Math, 0.8)),
        ("сколько", (Math, 0.4)),
        ("calcula", (Math, 0.7)),
        ("ecuacion", (Math, 0.8)),
        ("cuantos", (Math, 0.4)),
        ("calcule", (Math, 0.7)),
        ("combien", (Math, 0.4)),
        ("berechne", (Math, 0.7)),
        ("gleichung", (Math, 0.8)),
        ("wie viele", (Math, 0.4)),
        ("quantos", (Math, 0.4)),
        ("計算", (Math, 0.7)),
        ("方程式", (Math, 0.8)),
        ("계산", (Math, 0.7)),
        ("방정식", (Math, 0.8)),
        ("احسب", (Math, 0.7)),
        ("معادلة", (Math, 0.8)),
        // ---- Code.
        ("code", (Code, 0.6)),
        ("python", (Code, 0.8)),
        ("javascript", (Code, 0.9)),
        ("typescript", (Code, 0.9)),
        ("java", (Code, 0.7)),
        ("rust", (Code, 0.4)),
        ("golang", (Code, 0.9)),
        ("sql", (Code, 0.8)),
        ("html", (Code, 0.7)),
        ("css", (Code, 0.7)),
        ("json", (Code, 0.5)),
        ("regex", (Code, 0.8)),
        ("function", (Code, 0.5)),
        ("def", (Code, 0.5)),
        ("return", (Code, 0.3)),
        ("import", (Code, 0.3)),
        ("class", (Code, 0.2)),
        ("script", (Code, 0.4)),
        ("program", (Code, 0.4)),
        ("algorithm", (Code, 0.5)),
        ("implement", (Code, 0.5)),
        ("array", (Code, 0.5)),
        ("string", (Code, 0.3)),
        ("list of integers", (Code, 0.5)),
        ("compile", (Code, 0.6)),
        ("compiler", (Code, 0.6)),
        ("bug", (Code, 0.4)),
        ("debug", (Code, 0.6)),
        ("error", (Code, 0.2)),
        ("exception", (Code, 0.5)),
        ("api", (Code, 0.5)),
        ("docker", (Code, 0.7)),
        ("git", (Code, 0.6)),
        ("linux", (Code, 0.5)),
        ("bash", (Code, 0.7)),
        ("database", (Code, 0.4)),
        ("query", (Code, 0.3)),
        ("variable", (Code, 0.4)),
        ("recursion", (Code, 0.7)),
        ("unit test", (Code, 0.7)),
        ("react", (Code, 0.4)),
        ("node", (Code, 0.2)),
        ("代码", (Code, 0.8)),
        ("程序", (Code, 0.5)),
        ("函数", (Code, 0.7)),
        ("コード", (Code, 0.8)),
        ("関数", (Code, 0.7)),
        ("코드", (Code, 0.8)),
        ("함수", (Code, 0.7)),
        ("codigo", (Code, 0.7)),
        ("funcion", (Code, 0.5)),
        ("код", (Code, 0.7)),
        ("функцию", (Code, 0.5)),
        ("программу", (Code, 0.5)),
        ("برنامج", (Code, 0.4)),
        ("كود", (Code, 0.7)),
        // ---- Reasoning.
        ("which of the following", (Reasoning, 0.8)),
        ("options", (Reasoning, 0.4)),
        ("choose", (Reasoning, 0.3)),
        ("choices", (Reasoning, 0.3)),
        ("premise", (Reasoning, 0.9)),
        ("hypothesis", (Reasoning, 0.6)),
        ("conclude", (Reasoning, 0.6)),
        ("conclusion", (Reasoning, 0.4)),
        ("does it follow", (Reasoning, 0.8)),
        ("it is not possible to tell", (Reasoning, 0.9)),
        ("true or false", (Reasoning, 0.6)),
        ("infer", (Reasoning, 0.5)),
        ("implies", (Reasoning, 0.5)),
        ("entail*", (Reasoning, 0.6)),
        ("riddle", (Reasoning, 0.8)),
        ("puzzle", (Reasoning, 0.7)),
        ("logic", (Reasoning, 0.4)),
        ("logically", (Reasoning, 0.5)),
        ("paraphrase of", (Reasoning, 0.5)),
        ("same meaning", (Reasoning, 0.5)),
        ("sentence 1", (Reasoning, 0.5)),
        ("is it true that", (Reasoning, 0.5)),
        ("makes sense", (Reasoning, 0.3)),
        ("sensical", (Reasoning, 0.6)),
        ("if all", (Reasoning, 0.4)),
        ("liar", (Reasoning, 0.4)),
        ("truth teller", (Reasoning, 0.7)),
        ("选项", (Reasoning, 0.6)),
        ("推断", (Reasoning, 0.5)),
        ("谜题", (Reasoning, 0.7)),
        ("選択肢", (Reasoning, 0.6)),
        ("선택지", (Reasoning, 0.6)),
        // ---- Knowledge.
        ("who", (Knowledge, 0.4)),
        ("who was", (Knowledge, 0.3)),
        ("what is", (Knowledge, 0.3)),
        ("what are", (Knowledge, 0.3)),
        ("what was", (Knowledge, 0.3)),
        ("when did", (Knowledge, 0.5)),
        ("when was", (Knowledge, 0.5)),
        ("where is", (Knowledge, 0.4)),
        ("where was", (Knowledge, 0.4)),
        ("what year", (Knowledge, 0.6)),
        ("history", (Knowledge, 0.4)),
        ("capital of", (Knowledge, 0.7)),
        ("define", (Knowledge, 0.4)),
        ("definition", (Knowledge, 0.4)),
        ("meaning of", (Knowledge, 0.4)),
        ("how does", (Knowledge, 0.3)),
        ("how do", (Knowledge, 0.2)),
        ("why do", (Knowledge, 0.3)),
        ("why does", (Knowledge, 0.3)),
        ("why is", (Knowledge, 0.3)),
        ("explain", (Knowledge, 0.3)),
        ("tell me about", (Knowledge, 0.4)),
        ("difference between", (Knowledge, 0.4)),
        ("invented", (Knowledge, 0.4)),
        ("discovered", (Knowledge, 0.4)),
        ("country", (Knowledge, 0.2)),
        ("什么是", (Knowledge, 0.5)),
        ("是什么", (Knowledge, 0.4)),
        ("为什么", (Knowledge, 0.3)),
        ("とは", (Knowledge, 0.4)),
        ("무엇", (Knowledge, 0.4)),
        ("que es", (Knowledge, 0.4)),
        ("quien", (Knowledge, 0.4)),
        ("qu est ce que", (Knowledge, 0.4)),
        ("was ist", (Knowledge, 0.4)),
        ("что такое", (Knowledge, 0.5)),
        ("кто", (Knowledge, 0.4)),
        ("ما هو", (Knowledge, 0.4)),
        ("o que e", (Knowledge, 0.4)),
        // ---- Writing.
        ("write", (Writing, 0.5)),
        ("rewrite", (Writing, 0.8)),
        ("summarize", (Writing, 0.8)),
        ("summarise", (Writing, 0.8)),
        ("summary", (Writing, 0.6)),
        ("essay", (Writing, 0.8)),
        ("email", (Writing, 0.6)),
        ("letter", (Writing, 0.5)),
        ("poem", (Writing, 0.9)),
        ("story", (Writing, 0.6)),
        ("article", (Writing, 0.5)),
        ("blog post", (Writing, 0.8)),
        ("paraphrase", (Writing, 0.6)),
        ("translate", (Writing, 0.8)),
        ("proofread", (Writing, 0.8)),
        ("edit", (Writing, 0.4)),
        ("draft", (Writing, 0.6)),
        ("compose", (Writing, 0.6)),
        ("headline", (Writing, 0.6)),
        ("slogan", (Writing, 0.8)),
        ("tweet", (Writing, 0.5)),
        ("caption", (Writing, 0.6)),
        ("cover letter", (Writing, 0.8)),
        ("tone", (Writing, 0.3)),
        ("paragraph", (Writing, 0.4)),
        ("lyrics", (Writing, 0.7)),
        ("sentence", (Writing, 0.2)),
        ("grammar", (Writing, 0.5)),
        ("写一", (Writing, 0.6)),
        ("写", (Writing, 0.2)),
        ("总结", (Writing, 0.7)),
        ("翻译", (Writing, 0.8)),
        ("書いて", (Writing, 0.5)),
        ("要約", (Writing, 0.7)),
        ("翻訳", (Writing, 0.8)),
        ("작성", (Writing, 0.5)),
        ("요약", (Writing, 0.7)),
        ("번역", (Writing, 0.8)),
        ("escribe", (Writing, 0.5)),
        ("resume", (Writing, 0.4)),
        ("traduce", (Writing, 0.8)),
        ("ecris", (Writing, 0.5)),
        ("redige", (Writing, 0.7)),
        ("traduis", (Writing, 0.8)),
        ("schreibe", (Writing, 0.5)),
        ("ubersetze", (Writing, 0.8)),
        ("напиши", (Writing, 0.5)),
        ("переведи", (Writing, 0.8)),
        ("escreva", (Writing, 0.5)),
        ("اكتب", (Writing, 0.5)),
        ("ترجم", (Writing, 0.8)),
        // ---- Chat.
        ("hi", (Chat, 0.6)),
        ("hello", (Chat, 0.6)),
        ("hey", (Chat, 0.6)),
        ("thanks", (Chat, 0.5)),
        ("thank you", (Chat, 0.5)),
        ("how are you", (Chat, 0.8)),
        ("advice", (Chat, 0.5)),
        ("should i", (Chat, 0.5)),
        ("what do you think", (Chat, 0.6)),
        ("recommend", (Chat, 0.4)),
        ("your opinion", (Chat, 0.6)),
        ("i feel", (Chat, 0.5)),
        ("my friend", (Chat, 0.4)),
        ("my wife", (Chat, 0.4)),
        ("my husband", (Chat, 0.4)),
        ("my boss", (Chat, 0.4)),
        ("my girlfriend", (Chat, 0.4)),
        ("my boyfriend", (Chat, 0.4)),
        ("tips", (Chat, 0.4)),
        ("suggest", (Chat, 0.3)),
        ("ideas for", (Chat, 0.4)),
        ("do you", (Chat, 0.4)),
        ("can you help", (Chat, 0.3)),
        ("i want to", (Chat, 0.2)),
        ("i need", (Chat, 0.2)),
        ("你好", (Chat, 0.6)),
        ("谢谢", (Chat, 0.5)),
        ("こんにちは", (Chat, 0.6)),
        ("안녕", (Chat, 0.6)),
        ("hola", (Chat, 0.6)),
        ("bonjour", (Chat, 0.6)),
        ("hallo", (Chat, 0.6)),
        ("привет", (Chat, 0.6)),
        ("ola", (Chat, 0.5)),
        ("مرحبا", (Chat, 0.6)),
    ]
}

/// Bytes of the text the category looks at: what a request is about shows in its first lines,
/// and pasted material after them only adds noise and cost.
pub(crate) const HEAD_BYTES: usize = 1024;

/// Below this summed evidence the request is `Other`.
const MIN_EVIDENCE: f32 = 0.3;

/// Task-category classifier; build once, share freely.
#[derive(Debug, Clone)]
pub struct CategoryClassifier {
    lexicon: Option<Lexicon<(TaskCategory, f32)>>,
}

impl Default for CategoryClassifier {
    fn default() -> Self {
        Self::new()
    }
}

impl CategoryClassifier {
    /// Builds the matcher (about a millisecond; do it once).
    pub fn new() -> Self {
        CategoryClassifier {
            lexicon: Lexicon::new(&entries()),
        }
    }

    /// Classifies one text: `raw` as sent (for structure), `text` normalised (for words).
    pub fn classify(&self, raw: &str, text: &Normalized) -> TaskCategory {
        let mut hits: Vec<Hit<(TaskCategory, f32)>> = Vec::new();
        if let Some(lexicon) = &self.lexicon {
            lexicon.scan_prefix(text, HEAD_BYTES, &mut hits);
        }
        classify_hits(&hits, raw)
    }
}

/// Classifies one text from its lexicon hits within the first [`HEAD_BYTES`] of its normalised
/// form and `raw`, the text as sent (for structure).
pub(crate) fn classify_hits(hits: &[Hit<(TaskCategory, f32)>], raw: &str) -> TaskCategory {
    let mut score = [0.0f32; 7];
    for h in hits {
        let (c, w) = h.tag;
        score[c.index()] += w;
    }
    let s = Structure::of(raw);
    // Numbers and operators are what make a word problem a math problem.
    if s.operators >= 1 && s.numbers >= 2 {
        score[Math.index()] += 0.6;
    }
    if s.numbers >= 3 {
        score[Math.index()] += 0.4;
    }
    if s.latex {
        score[Math.index()] += 0.8;
    }
    if s.fence {
        score[Code.index()] += 1.2;
    }
    if s.code_punct >= 4 {
        score[Code.index()] += 0.6;
    }
    if s.options >= 2 {
        score[Reasoning.index()] += 0.9;
    }
    // A short question that matches nothing else is most often small talk.
    if s.chars <= SHORT_CHARS && score.iter().all(|&v| v < MIN_EVIDENCE) && s.chars > 0 {
        score[Chat.index()] += MIN_EVIDENCE;
    }
    // A question mark with nothing task-like leans factual.
    if s.question && score[Knowledge.index()] > 0.0 {
        score[Knowledge.index()] += 0.2;
    }
    let (best, top) =
        score
            .iter()
            .enumerate()
            .fold((TaskCategory::Other.index(), 0.0f32), |acc, (i, &v)| {
                if v > acc.1 {
                    (i, v)
                } else {
                    acc
                }
            });
    if top < MIN_EVIDENCE {
        return TaskCategory::Other;
    }
    TaskCategory::ALL
        .get(best)
        .copied()
        .unwrap_or(TaskCategory::Other)
}

/// A text of at most this many characters that matches nothing else is small talk.
const SHORT_CHARS: usize = 40;

/// Structural counts over the head window of the raw text.
#[derive(Debug, Default, PartialEq)]
struct Structure {
    /// Characters of the trimmed head, counted up to [`SHORT_CHARS`] + 1: all that is asked
    /// is whether the text is short.
    chars: usize,
    digits: usize,
    numbers: usize,
    operators: usize,
    code_punct: usize,
    fence: bool,
    latex: bool,
    options: usize,
    question: bool,
}

impl Structure {
    fn of(raw: &str) -> Self {
        let (head, _) = head_tail(raw);
        let mut cut = head.len().min(HEAD_BYTES);
        while !head.is_char_boundary(cut) {
            cut -= 1;
        }
        let head = head.get(..cut).unwrap_or(head);
        let mut s = Structure::default();
        let bytes = head.as_bytes();
        let mut prev = b' ';
        let mut newline = false;
        for (i, &b) in bytes.iter().enumerate() {
            // Most bytes are letters and spaces: one well-predicted test settles them.
            if STRUCTURAL[usize::from(b)] {
                s.count(bytes, i, prev, &mut newline);
            }
            prev = b;
        }
        s.chars = head.trim().chars().take(SHORT_CHARS + 1).count();
        // Without a newline the head is one line, and `lines` would only cost a search.
        s.options = if newline {
            head.lines()
                .filter(|l| is_option_line(l.trim_start().as_bytes()))
                .count()
        } else {
            usize::from(is_option_line(head.trim_start().as_bytes()))
        };
        s
    }
}

impl Structure {
    /// Counts the structural byte at `bytes[i]`, `prev` the byte before it.
    fn count(&mut self, bytes: &[u8], i: usize, prev: u8, newline: &mut bool) {
        let Some(&b) = bytes.get(i) else {
            return;
        };
        match b {
            b'0'..=b'9' => {
                self.digits += 1;
                if !prev.is_ascii_digit() && prev != b'.' && prev != b',' {
                    self.numbers += 1;
                }
            }
            b'+' | b'*' | b'/' | b'^' | b'=' => self.operators += 1,
            b'-' if prev.is_ascii_digit() || prev == b' ' => self.operators += 1,
            b'{' | b'}' | b';' => self.code_punct += 1,
            b'`' if bytes.get(i..i + 3) == Some(b"```") => self.fence = true,
            b'\\' if bytes.get(i + 1).is_some_and(u8::is_ascii_alphabetic) => self.latex = true,
            b'?' => self.question = true,
            // The first byte of a full-width question mark.
            0xEF if bytes.get(i..i + 3) == Some("？".as_bytes()) => self.question = true,
            b'\n' => *newline = true,
            _ => {}
        }
    }
}

/// The bytes [`Structure::count`] counts.
static STRUCTURAL: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = matches!(
            b as u8,
            b'0'..=b'9'
                | b'+'
                | b'*'
                | b'/'
                | b'^'
                | b'='
                | b'-'
                | b'{'
                | b'}'
                | b';'
                | b'`'
                | b'\\'
                | b'?'
                | 0xEF
                | b'\n'
        );
        b += 1;
    }
    t
};

/// "A) …", "(b) …", "C. …", "- yes", "- no": an answer option on its own line.
fn is_option_line(l: &[u8]) -> bool {
    match l {
        [b'(', c, b')', ..] if c.is_ascii_alphabetic() => true,
        [b'A'..=b'E' | b'a'..=b'e', b')' | b'.', b' ', ..] => true,
        [b'-', b' ', rest @ ..] => {
            rest.eq_ignore_ascii_case(b"yes")
                || rest.eq_ignore_ascii_case(b"no")
                || rest.starts_with(b"it is not possible")
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cat(text: &str) -> TaskCategory {
        CategoryClassifier::new().classify(text, &Normalized::new(text))
    }

    #[test]
    fn lexicon_builds_without_duplicates() {
        super::super::text::assert_unique_patterns(&entries());
    }

    #[test]
    fn typical_requests() {
        assert_eq!(
            cat("A train leaves at 3 pm at 60 km/h; how far has it gone by 5:30 pm?"),
            Math
        );
        assert_eq!(
            cat("```rust\nfn main() { println!(\"hi\"); }\n```\nWhy won't this compile?"),
            Code
        );
        assert_eq!(
            cat("Which is heavier?\nA) a kilo of feathers\nB) a kilo of lead"),
            Reasoning
        );
        assert_eq!(
            cat("Who painted the ceiling of the Sistine Chapel?"),
            Knowledge
        );
        assert_eq!(cat("Rewrite this paragraph in a friendlier tone."), Writing);
        assert_eq!(cat("hey, how are you today?"), Chat);
        assert_eq!(cat(""), TaskCategory::Other);
    }

    /// The byte loop of [`Structure::of`] as first written, one `match` per byte.
    fn reference_structure(raw: &str) -> Structure {
        let bytes = raw.as_bytes();
        let mut r = Structure {
            chars: raw.trim().chars().count().min(SHORT_CHARS + 1),
            options: raw
                .lines()
                .filter(|l| is_option_line(l.trim_start().as_bytes()))
                .count(),
            ..Structure::default()
        };
        let mut prev = b' ';
        for (i, &b) in bytes.iter().enumerate().take(HEAD_BYTES) {
            match b {
                b'0'..=b'9' => {
                    r.digits += 1;
                    if !prev.is_ascii_digit() && prev != b'.' && prev != b',' {
                        r.numbers += 1;
                    }
                }
                b'+' | b'*' | b'/' | b'^' | b'=' => r.operators += 1,
                b'-' if prev.is_ascii_digit() || prev == b' ' => r.operators += 1,
                b'{' | b'}' | b';' => r.code_punct += 1,
                b'`' if bytes.get(i..i + 3) == Some(b"```") => r.fence = true,
                b'\\' if bytes.get(i + 1).is_some_and(u8::is_ascii_alphabetic) => r.latex = true,
                b'?' => r.question = true,
                _ => {}
            }
            prev = b;
        }
        r.question |= raw.contains('？');
        r
    }

    #[test]
    fn structure_counts_every_structural_byte() {
        let every_ascii: String = (0u8..128).map(char::from).collect();
        for t in [
            every_ascii.as_str(),
            "x = 3.5 - 2, 1,000 + 4^2 / 7 * 8 -9 ？",
            "```py\nfor i in range(3): print(i); {}\n```\n\\frac{1}{2}",
            "Which? A) 1 B) 2",
            "A) one",
            "  (b) two\r\n- yes\r\n- no\r",
            "¿Qué？ 何？",
            "",
        ] {
            assert_eq!(Structure::of(t), reference_structure(t), "{t:?}");
        }
    }

    #[test]
    fn option_lines() {
        assert!(is_option_line(b"(a) yes"));
        assert!(is_option_line(b"B. the second"));
        assert!(is_option_line(b"- no"));
        assert!(!is_option_line(b"I. introduction"));
    }
}

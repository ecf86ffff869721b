//! The evaluation corpus: human reasoning (question and worked answer) and general human text,
//! tokenized and split. This module is the crate's only IO; everything else works on a
//! [`Corpus`] in memory, which tests build from synthetic token ids.
//!
//! Sources, relative to the data folder (default `../shared/data`, read in place, never copied):
//!
//! | role | file | prompt / text |
//! |---|---|---|
//! | reasoning | `reasoning/gsm8k/train.jsonl`, `test.jsonl` | `question` → `answer` |
//! | reasoning | `reasoning/math/math_train.jsonl` | `problem` → `solution` |
//! | general | `benign/sharegpt_sample/sharegpt_human_turns.jsonl` | `text` |
//! | general | `benign/alpaca_eval/alpaca_eval_805.jsonl` | `instruction` |
//! | general | `benign/arena_hard/arena-hard-v0.1_question.jsonl` | `prompt` |
//! | general | `benign/self_instruct_user/user_oriented_instructions.jsonl` | `instruction` |
//! | general | `benign/wizardlm_testset/WizardLM_testset.jsonl` | `Instruction` |
//! | general | `benign/mt_bench/mt_bench_question.jsonl` | `turns[]`, joined |
//! | general | `reasoning/alpaca/harmless_train.json` (JSON array) | `instruction` |
//! | general | `reasoning/mbpp/mbpp.jsonl` | `text` and `code` |
//! | general | `reasoning/flan_cot/cot_data/{aqua,creak,ecqa,qasc,sensemaking,strategyqa}_train.tsv` | question and rationale |
//!
//! FLAN's `gsm8k_train.tsv` is left out: it repeats GSM8K's training set, which would leak the
//! teacher's training text into the students' pre-training.
//!
//! **Splits** are a function of content only (a hash of the token ids), not of the seed, so
//! identical records always land together and every seed sees the same split:
//!
//! - reasoning: 50% `teacher` (the teacher's training text), 30% `distill` (the prompts a
//!   distiller sends to the teacher, and the human answers mixed into a student's fine-tuning
//!   set), 20% `heldout` (the prompts a suspect student is queried with, the text read in the
//!   open setting, and null calibration);
//! - general: 80% `pretrain` (every student's pre-training), 20% `heldout_general` (null
//!   calibration).

use std::path::{Path, PathBuf};

use moat_mark::mix;
use moat_tokenize::Tokenizer;
use serde_json::Value;

use crate::Error;

/// The end-of-text token (`<|endoftext|>` in o200k): ends every training sequence and every
/// answer, and pads the context before a sequence's start.
pub const END: u32 = 199_999;

/// The separator between a prompt and its answer (`<|endofprompt|>` in o200k).
pub const SEP: u32 = 200_018;

/// A question with its worked answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Example {
    /// The question's tokens.
    pub prompt: Vec<u32>,
    /// The answer's tokens.
    pub answer: Vec<u32>,
}

impl Example {
    /// The training sequence `prompt ‖ SEP ‖ answer ‖ END`.
    pub fn sequence(&self) -> Vec<u32> {
        training_sequence(&self.prompt, &self.answer)
    }
}

/// The training sequence of a prompt and an answer: `prompt ‖ SEP ‖ answer ‖ END`.
pub fn training_sequence(prompt: &[u32], answer: &[u32]) -> Vec<u32> {
    let mut s = Vec::with_capacity(prompt.len() + answer.len() + 2);
    s.extend_from_slice(prompt);
    s.push(SEP);
    s.extend_from_slice(answer);
    s.push(END);
    s
}

/// The pre-training sequence of a general text: `text ‖ END`.
pub(crate) fn pretraining_sequence(text: &[u32]) -> Vec<u32> {
    let mut s = Vec::with_capacity(text.len() + 1);
    s.extend_from_slice(text);
    s.push(END);
    s
}

/// The tokenized, split corpus.
#[derive(Debug, Clone, Default)]
pub struct Corpus {
    /// Reasoning examples the teacher is trained on.
    pub teacher: Vec<Example>,
    /// Reasoning examples whose questions distillers send and whose human answers fill a
    /// student's fine-tuning set.
    pub distill: Vec<Example>,
    /// Reasoning examples no model is trained on.
    pub heldout: Vec<Example>,
    /// General human text every student is pre-trained on.
    pub pretrain: Vec<Vec<u32>>,
    /// General human text no model is trained on.
    pub heldout_general: Vec<Vec<u32>>,
}

/// Which split a reasoning example falls in, from `hash`'s uniform.
fn reasoning_split(u: f64) -> usize {
    if u < 0.5 {
        0
    } else if u < 0.8 {
        1
    } else {
        2
    }
}

/// A uniform in [0, 1) that depends only on `tokens`.
fn content_uniform(tokens: &[u32]) -> f64 {
    let h = tokens
        .iter()
        .fold(0x73_706c_6974_u64, |s, &t| mix(s ^ u64::from(t)));
    (h >> 11) as f64 / (1u64 << 53) as f64
}

impl Corpus {
    /// Splits `reasoning` and `general` as the module documentation says; records with an
    /// empty prompt, answer or text are dropped.
    pub fn from_records(reasoning: Vec<Example>, general: Vec<Vec<u32>>) -> Corpus {
        let mut corpus = Corpus::default();
        for example in reasoning {
            if example.prompt.is_empty() || example.answer.is_empty() {
                continue;
            }
            let u = content_uniform(&example.sequence());
            match reasoning_split(u) {
                0 => corpus.teacher.push(example),
                1 => corpus.distill.push(example),
                _ => corpus.heldout.push(example),
            }
        }
        for text in general {
            if text.is_empty() {
                continue;
            }
            if content_uniform(&text) < 0.2 {
                corpus.heldout_general.push(text);
            } else {
                corpus.pretrain.push(text);
            }
        }
        corpus
    }

    /// Reads and tokenizes every source under `dir`. Errors name the file and line.
    pub fn load(dir: &Path, tokenizer: &Tokenizer) -> Result<Corpus, Error> {
        let mut reasoning = Vec::new();
        let mut general = Vec::new();
        for (file, prompt, answer) in [
            ("reasoning/gsm8k/train.jsonl", "question", "answer"),
            ("reasoning/gsm8k/test.jsonl", "question", "answer"),
            ("reasoning/math/math_train.jsonl", "problem", "solution"),
        ] {
            let path = dir.join(file);
            for (line, record) in json_lines(&path)? {
                let prompt = field(&path, line, &record, prompt)?;
                let answer = field(&path, line, &record, answer)?;
                reasoning.push(Example {
                    prompt: encode(tokenizer, &path, line, &prompt)?,
                    answer: encode(tokenizer, &path, line, &answer)?,
                });
            }
        }
        for (file, name) in [
            ("benign/sharegpt_sample/sharegpt_human_turns.jsonl", "text"),
            ("benign/alpaca_eval/alpaca_eval_805.jsonl", "instruction"),
            ("benign/arena_hard/arena-hard-v0.1_question.jsonl", "prompt"),
            (
                "benign/self_instruct_user/user_oriented_instructions.jsonl",
                "instruction",
            ),
            (
                "benign/wizardlm_testset/WizardLM_testset.jsonl",
                "Instruction",
            ),
            ("benign/mt_bench/mt_bench_question.jsonl", "turns"),
            ("reasoning/mbpp/mbpp.jsonl", "text"),
        ] {
            let path = dir.join(file);
            for (line, record) in json_lines(&path)? {
                let mut text = field(&path, line, &record, name)?;
                if name == "text" && file.contains("mbpp") {
                    text = format!("{text}\n{}", field(&path, line, &record, "code")?);
                }
                general.push(encode(tokenizer, &path, line, &text)?);
            }
        }
        let path = dir.join("reasoning/alpaca/harmless_train.json");
        for (line, record) in json_array(&path)? {
            let text = field(&path, line, &record, "instruction")?;
            general.push(encode(tokenizer, &path, line, &text)?);
        }
        for task in ["aqua", "creak", "ecqa", "qasc", "sensemaking", "strategyqa"] {
            let path = dir.join(format!("reasoning/flan_cot/cot_data/{task}_train.tsv"));
            let content = read(&path)?;
            for (i, row) in content.lines().enumerate() {
                let line = i as u64 + 1;
                if row.trim().is_empty() {
                    continue;
                }
                let columns: Vec<&str> = row.split('\t').collect();
                let [question, _, rationale, ..] = columns.as_slice() else {
                    return Err(Error::Format {
                        path,
                        line,
                        message: format!(
                            "expected 3 tab-separated columns, found {}",
                            columns.len()
                        ),
                    });
                };
                let text = format!("{question}\n{rationale}").replace("\\n", "\n");
                general.push(encode(tokenizer, &path, line, &text)?);
            }
        }
        let corpus = Corpus::from_records(reasoning, general);
        tracing::info!(
            teacher = corpus.teacher.len(),
            distill = corpus.distill.len(),
            heldout = corpus.heldout.len(),
            pretrain = corpus.pretrain.len(),
            heldout_general = corpus.heldout_general.len(),
            "corpus loaded"
        );
        Ok(corpus)
    }

    /// Tokens in every split, for reports.
    pub fn token_counts(&self) -> CorpusTokens {
        let examples = |e: &[Example]| e.iter().map(|e| e.prompt.len() + e.answer.len()).sum();
        let texts = |t: &[Vec<u32>]| t.iter().map(Vec::len).sum();
        CorpusTokens {
            teacher: examples(&self.teacher),
            distill: examples(&self.distill),
            heldout: examples(&self.heldout),
            pretrain: texts(&self.pretrain),
            heldout_general: texts(&self.heldout_general),
        }
    }
}

/// Tokens per split (prompts and answers together for reasoning).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct CorpusTokens {
    /// Teacher split.
    pub teacher: usize,
    /// Distill split.
    pub distill: usize,
    /// Held-out reasoning split.
    pub heldout: usize,
    /// Pre-training split.
    pub pretrain: usize,
    /// Held-out general split.
    pub heldout_general: usize,
}

fn read(path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })
}

/// The non-empty lines of a JSON Lines file, parsed, with their 1-based numbers.
fn json_lines(path: &Path) -> Result<Vec<(u64, Value)>, Error> {
    let content = read(path)?;
    let mut records = Vec::new();
    for (i, line) in content.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let value = serde_json::from_str(line).map_err(|e| Error::Format {
            path: path.to_owned(),
            line: i as u64 + 1,
            message: format!("invalid JSON: {e}"),
        })?;
        records.push((i as u64 + 1, value));
    }
    Ok(records)
}

/// The records of a file holding one JSON array, numbered from 1.
fn json_array(path: &Path) -> Result<Vec<(u64, Value)>, Error> {
    let content = read(path)?;
    let values: Vec<Value> = serde_json::from_str(&content).map_err(|e| Error::Format {
        path: path.to_owned(),
        line: e.line() as u64,
        message: format!("invalid JSON array: {e}"),
    })?;
    Ok((1..).zip(values).collect())
}

/// A string field, or an array of strings joined by blank lines.
fn field(path: &Path, line: u64, record: &Value, name: &str) -> Result<String, Error> {
    match record.get(name) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => Ok(items
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join("\n\n")),
        _ => Err(Error::Format {
            path: path.to_owned(),
            line,
            message: format!("field {name:?} is missing or not a string"),
        }),
    }
}

fn encode(tokenizer: &Tokenizer, path: &Path, line: u64, text: &str) -> Result<Vec<u32>, Error> {
    tokenizer.encode(text).map_err(|source| Error::Tokenize {
        context: format!("{}:{line}", path.display()),
        source,
    })
}

/// The default data folder, relative to the working directory.
pub fn default_data_dir() -> PathBuf {
    PathBuf::from("../shared/data")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes a minimal copy of every source into a temporary folder.
    fn write_fixture(dir: &Path, gsm8k_train: &str) {
        let files: [(&str, &str); 15] = [
            ("reasoning/gsm8k/train.jsonl", gsm8k_train),
            (
                "reasoning/gsm8k/test.jsonl",
                "{\"question\": \"What is 2+2?\", \"answer\": \"2+2 = 4\\n#### 4\"}\n",
            ),
            (
                "reasoning/math/math_train.jsonl",
                "{\"problem\": \"Solve $x+1=2$.\", \"solution\": \"$x = 1$.\", \"level\": \"Level 1\"}\n",
            ),
            (
                "benign/sharegpt_sample/sharegpt_human_turns.jsonl",
                "{\"conv_id\": \"a\", \"turn\": 1, \"text\": \"please continue\"}\n",
            ),
            (
                "benign/alpaca_eval/alpaca_eval_805.jsonl",
                "{\"instruction\": \"How do I wrap a present?\"}\n",
            ),
            (
                "benign/arena_hard/arena-hard-v0.1_question.jsonl",
                "{\"uid\": \"x\", \"prompt\": \"Write a melody.\"}\n",
            ),
            (
                "benign/self_instruct_user/user_oriented_instructions.jsonl",
                "{\"instruction\": \"Rewrite the sentence.\"}\n",
            ),
            (
                "benign/wizardlm_testset/WizardLM_testset.jsonl",
                "{\"Instruction\": \"Explain recursion.\"}\n",
            ),
            (
                "benign/mt_bench/mt_bench_question.jsonl",
                "{\"turns\": [\"First turn.\", \"Second turn.\"]}\n",
            ),
            (
                "reasoning/mbpp/mbpp.jsonl",
                "{\"text\": \"Write a function.\", \"code\": \"def f(): pass\"}\n",
            ),
            (
                "reasoning/alpaca/harmless_train.json",
                "[{\"instruction\": \"Name a colour.\", \"category\": null}]",
            ),
            (
                "reasoning/flan_cot/cot_data/aqua_train.tsv",
                "What is 1+1?\\nOptions:\\n(A) 2\t(A)\t1+1 = 2\n",
            ),
            ("reasoning/flan_cot/cot_data/creak_train.tsv", "Claim?\tyes\tBecause.\n"),
            ("reasoning/flan_cot/cot_data/ecqa_train.tsv", "Where?\there\tThere.\n"),
            ("reasoning/flan_cot/cot_data/qasc_train.tsv", "What?\tit\tThat.\n"),
        ];
        for (file, content) in files {
            let path = dir.join(file);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, content).expect("write");
        }
        for task in ["sensemaking", "strategyqa"] {
            let path = dir.join(format!("reasoning/flan_cot/cot_data/{task}_train.tsv"));
            std::fs::write(path, "Q?\tA\tR.\n").expect("write");
        }
    }

    #[test]
    fn loads_every_source_and_splits_by_content() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_fixture(
            dir.path(),
            "{\"question\": \"Natalia sold 48 clips.\", \"answer\": \"48/2 = 24\\n#### 24\"}\n\n",
        );
        let tokenizer = Tokenizer::load("o200k").expect("tokenizer");
        let corpus = Corpus::load(dir.path(), &tokenizer).expect("corpus");
        let reasoning = corpus.teacher.len() + corpus.distill.len() + corpus.heldout.len();
        assert_eq!(reasoning, 3);
        // 1 sharegpt + 5 other benign/mbpp lines + 1 alpaca + 6 flan rows.
        assert_eq!(corpus.pretrain.len() + corpus.heldout_general.len(), 14);
        // Splits depend on content only.
        let again = Corpus::load(dir.path(), &tokenizer).expect("corpus");
        assert_eq!(again.teacher, corpus.teacher);
        assert_eq!(again.pretrain, corpus.pretrain);
    }

    #[test]
    fn errors_name_file_and_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_fixture(
            dir.path(),
            "{\"question\": \"q\", \"answer\": \"a\"}\n{\"question\": \"q\"}\n",
        );
        let tokenizer = Tokenizer::load("o200k").expect("tokenizer");
        let err = Corpus::load(dir.path(), &tokenizer).expect_err("missing field");
        let message = err.to_string();
        assert!(message.contains("gsm8k/train.jsonl:2"), "{message}");
        assert!(message.contains("\"answer\""), "{message}");
        let err = Corpus::load(&dir.path().join("absent"), &tokenizer).expect_err("no folder");
        assert!(err.to_string().contains("absent"), "{err}");
    }

    #[test]
    fn split_fractions_are_roughly_as_documented() {
        let reasoning: Vec<Example> = (0..4000u32)
            .map(|i| Example {
                prompt: vec![i],
                answer: vec![i + 1, 7],
            })
            .collect();
        let general: Vec<Vec<u32>> = (0..4000u32).map(|i| vec![i, 9]).collect();
        let c = Corpus::from_records(reasoning, general);
        let near = |n: usize, f: f64| (n as f64 - 4000.0 * f).abs() < 150.0;
        assert!(near(c.teacher.len(), 0.5), "{}", c.teacher.len());
        assert!(near(c.distill.len(), 0.3), "{}", c.distill.len());
        assert!(near(c.heldout.len(), 0.2), "{}", c.heldout.len());
        assert!(near(c.heldout_general.len(), 0.2));
    }
}

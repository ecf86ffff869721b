//! Prompt material for the simulator: the real corpora under `../shared/data` (see its
//! README), or a small built-in corpus written by this project for machines without them.
//!
//! The corpus is text only; who sends what, when and from where is the engine's business.

use std::path::Path;

use crate::SimError;

/// Broad task category of a prompt, used to model capability sweeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Category {
    /// Arithmetic, algebra, competition math.
    Math,
    /// Programming tasks.
    Code,
    /// Logic, commonsense and multi-step reasoning questions.
    Reasoning,
    /// Factual questions.
    Knowledge,
    /// Writing, rewriting, summarising.
    Writing,
    /// Open chat and advice.
    Chat,
}

/// A task a harvester wants solved (from the reasoning corpora).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The problem text.
    pub text: String,
    /// Its category.
    pub category: Category,
}

/// All prompt material the simulator draws from.
#[derive(Debug, Clone, Default)]
pub struct Corpus {
    /// Where the material came from (`builtin` or a directory path), for reports.
    pub source: String,
    /// Single user requests of real users.
    pub benign_prompts: Vec<String>,
    /// Real multi-turn conversations: the user turns in order (2+ turns each).
    pub benign_conversations: Vec<Vec<String>>,
    /// Short follow-ups a user sends after an answer ("make it shorter", "why?").
    pub follow_ups: Vec<String>,
    /// Problems harvesters (and evaluation harnesses) send, with categories.
    pub problems: Vec<Problem>,
    /// General instruction-tuning prompts (for capability sweeps and app backends).
    pub instructions: Vec<String>,
    /// Step-by-step elicitation phrasings with a `{question}` slot.
    pub cot_templates: Vec<String>,
    /// Reasoning-extraction wrappers with a `{question}` slot: "imagine and articulate the
    /// internal reasoning behind a completed response, step by step", show-your-thinking,
    /// in several languages.
    pub extraction_templates: Vec<String>,
    /// Rubric-grading wrappers with `{question}` and `{answer}` slots.
    pub rubric_templates: Vec<String>,
    /// Jailbreak templates with a `{request}` slot.
    pub jailbreak_templates: Vec<String>,
    /// Standalone jailbreak prompts as collected in the wild.
    pub jailbreak_prompts: Vec<String>,
    /// Harmful requests that jailbreaks wrap.
    pub harmful_requests: Vec<String>,
    /// System prompts of app backends.
    pub system_prompts: Vec<String>,
}

impl Corpus {
    /// The built-in corpus (written by this project; never copied from the real corpora).
    pub fn builtin() -> Corpus {
        Corpus {
            source: "builtin".into(),
            ..Corpus::default()
        }
    }

    /// Loads the real corpora from `dir` (the `../shared/data` layout).
    pub fn load(dir: &Path) -> Result<Corpus, SimError> {
        Err(SimError::CorpusFormat {
            path: dir.to_path_buf(),
            line: None,
            message: "not implemented yet".into(),
        })
    }
}

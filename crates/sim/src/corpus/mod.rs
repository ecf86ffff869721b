//! Prompt material for the simulator: the real corpora under `../shared/data` (see its
//! README), or a small built-in corpus written by this project for machines without them.
//!
//! The corpus is text only; who sends what, when and from where is the engine's business.
//! Both modes share the authored material the corpora lack (reasoning-extraction wrappers,
//! rubric-grading wrappers, app system prompts, short follow-ups), so a scenario behaves the
//! same way with or without the data directory, only with less variety.
//!
//! *Invariant:* building a corpus is deterministic: the same directory (or none) gives the same
//! vectors in the same order. Nothing here draws random numbers from outside or iterates a hash
//! map into output.

mod authored;
mod builtin;
mod load;
mod problems;
mod text;

use std::path::{Path, PathBuf};

use crate::SimError;

/// The slot of cot, extraction and rubric templates that receives the problem text.
pub const QUESTION_SLOT: &str = "{question}";
/// The slot of rubric templates that receives the answer to be graded.
pub const ANSWER_SLOT: &str = "{answer}";
/// The slot of jailbreak templates that receives the wrapped request.
pub const REQUEST_SLOT: &str = "{request}";

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

impl Category {
    /// The categories `problems` always covers, in a fixed order.
    pub const PROBLEM_CATEGORIES: [Category; 4] = [
        Category::Math,
        Category::Code,
        Category::Reasoning,
        Category::Knowledge,
    ];
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
    /// What the loader skipped or replaced: a missing file, or a role that fell back to the
    /// built-in material. Empty for the built-in corpus and for a complete data directory.
    /// Lowercase messages without trailing period, meant for a report or a `warn!` at the edge.
    pub warnings: Vec<String>,
}

impl Corpus {
    /// The built-in corpus (written by this project; never copied from the real corpora).
    ///
    /// Cheap (a few milliseconds): static text plus a few thousand problems generated from
    /// templates with a fixed internal generator.
    pub fn builtin() -> Corpus {
        builtin::corpus()
    }

    /// Loads the real corpora from `dir` (the `../shared/data` layout).
    ///
    /// A missing `dir` is an error ([`SimError::CorpusIo`]), as is a file that cannot be parsed
    /// ([`SimError::CorpusFormat`] with its path and line). A missing file or folder inside `dir`
    /// is not: it is recorded in [`Corpus::warnings`], and a role left with no material takes the
    /// built-in material for that role (for `problems`, per category).
    pub fn load(dir: &Path) -> Result<Corpus, SimError> {
        load::load(dir)
    }

    /// Fills a one-slot template: both `{question}` and `{request}` receive `text`, so the same
    /// call serves cot, extraction and jailbreak templates. Substitution is a single pass, so
    /// braces inside `text` are never expanded.
    pub fn fill(template: &str, text: &str) -> String {
        text::substitute(template, &[("question", text), ("request", text)])
    }

    /// Fills a rubric template's `{question}` and `{answer}` slots in a single pass.
    pub fn fill_rubric(template: &str, question: &str, answer: &str) -> String {
        text::substitute(template, &[("question", question), ("answer", answer)])
    }

    /// Fills the named slots (names without braces, e.g. `("question", q)`) in a single pass;
    /// `{name}` patterns whose name is not listed are left as they are.
    pub fn fill_slots(template: &str, slots: &[(&str, &str)]) -> String {
        text::substitute(template, slots)
    }

    /// The problems of one category, in corpus order.
    pub fn problems_in(&self, category: Category) -> impl Iterator<Item = &Problem> + '_ {
        self.problems.iter().filter(move |p| p.category == category)
    }

    /// The size of every role, in field order, for reports and logs.
    pub fn role_counts(&self) -> Vec<(&'static str, usize)> {
        vec![
            ("benign_prompts", self.benign_prompts.len()),
            ("benign_conversations", self.benign_conversations.len()),
            ("follow_ups", self.follow_ups.len()),
            ("problems", self.problems.len()),
            ("instructions", self.instructions.len()),
            ("cot_templates", self.cot_templates.len()),
            ("extraction_templates", self.extraction_templates.len()),
            ("rubric_templates", self.rubric_templates.len()),
            ("jailbreak_templates", self.jailbreak_templates.len()),
            ("jailbreak_prompts", self.jailbreak_prompts.len()),
            ("harmful_requests", self.harmful_requests.len()),
            ("system_prompts", self.system_prompts.len()),
        ]
    }

    /// Checks what the engine relies on: every role is non-empty, no text is blank, every
    /// conversation has at least two turns, every template has its slots, and `problems` covers
    /// each of [`Category::PROBLEM_CATEGORIES`].
    pub fn validate(&self) -> Result<(), SimError> {
        let fail = |message: String| SimError::CorpusFormat {
            path: PathBuf::from(&self.source),
            line: None,
            message,
        };
        for (role, count) in self.role_counts() {
            if count == 0 {
                return Err(fail(format!("role {role} is empty")));
            }
        }
        let plain: [(&str, &[String]); 10] = [
            ("benign_prompts", &self.benign_prompts),
            ("follow_ups", &self.follow_ups),
            ("instructions", &self.instructions),
            ("cot_templates", &self.cot_templates),
            ("extraction_templates", &self.extraction_templates),
            ("rubric_templates", &self.rubric_templates),
            ("jailbreak_templates", &self.jailbreak_templates),
            ("jailbreak_prompts", &self.jailbreak_prompts),
            ("harmful_requests", &self.harmful_requests),
            ("system_prompts", &self.system_prompts),
        ];
        for (role, items) in plain {
            if let Some(i) = items.iter().position(|s| s.trim().is_empty()) {
                return Err(fail(format!("role {role}: item {i} is blank")));
            }
        }
        if let Some(i) = self.problems.iter().position(|p| p.text.trim().is_empty()) {
            return Err(fail(format!("role problems: item {i} is blank")));
        }
        for (i, conversation) in self.benign_conversations.iter().enumerate() {
            if conversation.len() < 2 || conversation.iter().any(|t| t.trim().is_empty()) {
                return Err(fail(format!(
                    "role benign_conversations: item {i} needs two or more non-blank turns"
                )));
            }
        }
        let slotted: [(&str, &[String], &[&str]); 4] = [
            ("cot_templates", &self.cot_templates, &[QUESTION_SLOT]),
            (
                "extraction_templates",
                &self.extraction_templates,
                &[QUESTION_SLOT],
            ),
            (
                "rubric_templates",
                &self.rubric_templates,
                &[QUESTION_SLOT, ANSWER_SLOT],
            ),
            (
                "jailbreak_templates",
                &self.jailbreak_templates,
                &[REQUEST_SLOT],
            ),
        ];
        for (role, templates, slots) in slotted {
            for (i, template) in templates.iter().enumerate() {
                if let Some(slot) = slots.iter().find(|s| !template.contains(**s)) {
                    return Err(fail(format!("role {role}: item {i} lacks the {slot} slot")));
                }
            }
        }
        for category in Category::PROBLEM_CATEGORIES {
            if self.problems_in(category).next().is_none() {
                return Err(fail(format!("role problems: no {category:?} problem")));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_substitutes_question_and_request_slots() {
        assert_eq!(Corpus::fill("Q: {question}!", "2+2?"), "Q: 2+2?!");
        assert_eq!(Corpus::fill("Do it: {request}", "x"), "Do it: x");
    }

    #[test]
    fn fill_does_not_expand_slots_inside_the_inserted_text() {
        let filled = Corpus::fill_rubric("{question} / {answer}", "what is {answer}?", "42");
        assert_eq!(filled, "what is {answer}? / 42");
    }

    #[test]
    fn fill_slots_leaves_unknown_braces_alone() {
        let filled = Corpus::fill_slots("{a} {b} {} {", &[("a", "1")]);
        assert_eq!(filled, "1 {b} {} {");
    }

    #[test]
    fn validate_rejects_a_template_without_its_slot() {
        let mut corpus = Corpus::builtin();
        corpus
            .rubric_templates
            .push("Grade this: {question}".into());
        let err = corpus.validate().err().map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("rubric_templates") && e.contains("{answer}")));
    }

    #[test]
    fn validate_rejects_an_empty_role() {
        let mut corpus = Corpus::builtin();
        corpus.system_prompts.clear();
        assert!(corpus.validate().is_err());
    }

    #[test]
    fn validate_rejects_a_one_turn_conversation() {
        let mut corpus = Corpus::builtin();
        corpus.benign_conversations.push(vec!["hello".into()]);
        assert!(corpus.validate().is_err());
    }
}

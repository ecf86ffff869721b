//! Reasoning (chain-of-thought) elicitation: how strongly one request asks the model to write out
//! its reasoning, and in which way (step by step, articulate the reasoning behind an answer, show
//! the full unsummarised thinking, grade against a rubric with justifications).
//!
//! Reasoning traces are what distillers harvest, so this is a per-request *description*, not a
//! verdict: a student asking for a step-by-step bread recipe scores moderate, and only volume,
//! breadth and coordination (decided elsewhere) make it suspicious. It is not a topic or task
//! classifier ([`super::category`]) and does not look at answers.
//!
//! Evidence comes in three forms, in English and nine other languages: fixed phrases ("let's
//! think step by step", "思维链"), a display verb near a reasoning object ("walk me through
//! your thought process", "reconstruct the internal reasoning"), and intensifiers that only
//! strengthen other evidence ("do not summarise", "before answering").

use serde::{Deserialize, Serialize};

use super::text::{near, Hit, Lexicon, Normalized};

/// The way a request elicits reasoning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CotKind {
    /// "Let's think step by step", "show your work", "solve it one step at a time".
    StepByStep,
    /// Explain, justify or reconstruct the reasoning behind an answer; think aloud; internal
    /// monologue.
    ArticulateReasoning,
    /// Write out the full chain of thought or thinking process, without summarising or skipping.
    ShowThinking,
    /// Grade or score an answer against criteria or a scale, justifying each criterion.
    RubricGrading,
}

impl CotKind {
    /// Stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            CotKind::StepByStep => "step_by_step",
            CotKind::ArticulateReasoning => "articulate_reasoning",
            CotKind::ShowThinking => "show_thinking",
            CotKind::RubricGrading => "rubric_grading",
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    const ALL: [CotKind; 4] = [
        CotKind::StepByStep,
        CotKind::ArticulateReasoning,
        CotKind::ShowThinking,
        CotKind::RubricGrading,
    ];
}

/// Strength and kind of reasoning elicitation in one text.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CotScore {
    /// 0..1.
    pub score: f32,
    /// The dominant way of eliciting, when `score > 0`.
    pub kind: Option<CotKind>,
}

/// What a phrase of the lexicon means to this signal.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Cue {
    /// A phrase that elicits reasoning on its own.
    Phrase(CotKind, f32),
    /// A display verb ("explain", "write out"); evidence only next to an object.
    Verb,
    /// A verb that only makes sense for reasoning ("reconstruct", "articulate", "verbalise"):
    /// a display verb whose pairs weigh more.
    StrongVerb,
    /// A verb of thinking or solving ("think", "solve", "answer", "reason").
    ThinkVerb,
    /// A manner ("step by step", "slowly", "gradually"): worth `alone` on its own and `with`
    /// next to a thinking verb ("solve it step by step" asks for the steps of the solution;
    /// "explain step by step how to bake bread" is a recipe).
    Manner { alone: f32, with: f32 },
    /// A reasoning object ("your thought process"); evidence only next to a verb.
    Object(CotKind, f32),
    /// "Do not summarise", "every intermediate step": strengthens, and turns step-by-step
    /// requests into requests for the full thinking.
    Full(f32),
    /// "Before answering", "then the final answer": strengthens other evidence a little.
    Timing(f32),
    /// Grading verb ("grade", "score", "evaluate").
    Grade,
    /// A scale ("1-10", "out of 10").
    Scale,
    /// Criteria ("rubric", "criteria", "correctness").
    Criteria(f32),
    /// Justify each score ("explain each criterion").
    Justify,
}

use CotKind::{ArticulateReasoning as Ar, ShowThinking as St, StepByStep as Sb};

/// How far (normalised bytes) a verb may stand before its object, and after it (object–verb
/// languages: Japanese, Korean, German subordinate clauses).
const VERB_BEFORE: usize = 48;
const VERB_AFTER: usize = 30;
/// Extra weight of a reasoning-only verb's pair over a plain display verb's.
const STRONG_VERB_BONUS: f32 = 0.2;
/// Share of the evidence beyond the strongest piece that counts.
const SECONDARY_WEIGHT: f32 = 0.35;

fn p(k: CotKind, w: f32) -> Cue {
    Cue::Phrase(k, w)
}
fn o(k: CotKind, w: f32) -> Cue {
    Cue::Object(k, w)
}
fn m(alone: f32, with: f32) -> Cue {
    Cue::Manner { alone, with }
}

/// The lexicon. Written from how people phrase these requests in each language, not from any
/// one generator's templates; weights are rough likelihoods that the phrase alone is a request
/// for written-out reasoning.
pub(crate) fn entries() -> Vec<(&'static str, Cue)> {
    use Cue::{Criteria, Full, Grade, Justify, Scale, StrongVerb, ThinkVerb, Timing, Verb};
    vec![
        // ---- English: step by step.
        ("step by step", m(0.4, 0.55)),
        ("slowly", m(0.0, 0.4)),
        ("gradually", m(0.0, 0.4)),
        ("carefully", m(0.0, 0.3)),
        ("thoroughly", m(0.0, 0.25)),
        ("in steps", m(0.0, 0.35)),
        ("think", ThinkVerb),
        ("reason", ThinkVerb),
        ("solve", ThinkVerb),
        ("answer", ThinkVerb),
        ("work", ThinkVerb),
        ("calculate", ThinkVerb),
        ("derive", ThinkVerb),
        ("figure it out", ThinkVerb),
        ("go through", ThinkVerb),
        ("step by step reasoning", p(Sb, 0.55)),
        ("step by step solution", p(Sb, 0.5)),
        ("step by step explanation", p(Sb, 0.45)),
        ("step by step answer", p(Sb, 0.45)),
        ("stepwise", p(Sb, 0.3)),
        ("one step at a time", p(Sb, 0.35)),
        ("lets think", p(Sb, 0.35)),
        ("lets reason", p(Sb, 0.45)),
        ("lets work through", p(Sb, 0.35)),
        ("lets work this out", p(Sb, 0.35)),
        ("lets break this down", p(Sb, 0.3)),
        ("lets solve", p(Sb, 0.2)),
        ("take a deep breath", p(Sb, 0.35)),
        ("show your work", p(Sb, 0.5)),
        ("show all your work", p(Sb, 0.55)),
        ("show your working", p(Sb, 0.5)),
        ("showing your work", p(Sb, 0.5)),
        ("show all steps", p(Sb, 0.5)),
        ("show all the steps", p(Sb, 0.5)),
        ("show each step", p(Sb, 0.5)),
        ("show every step", p(Sb, 0.5)),
        ("show your steps", p(Sb, 0.5)),
        ("intermediate steps", p(Sb, 0.4)),
        ("think carefully", p(Sb, 0.3)),
        ("think it through", p(Sb, 0.35)),
        ("think through", p(Sb, 0.3)),
        ("think before you answer", p(Sb, 0.5)),
        ("think before answering", p(Sb, 0.5)),
        ("think first", p(Sb, 0.35)),
        ("think hard", p(Sb, 0.3)),
        ("reason carefully", p(Sb, 0.4)),
        ("reason through", p(Sb, 0.45)),
        ("reason about it", p(Sb, 0.3)),
        ("reason slowly", p(Sb, 0.4)),
        ("solve slowly", p(Sb, 0.35)),
        ("work through", p(Sb, 0.2)),
        ("walk me through", p(Sb, 0.3)),
        ("chain of reasoning", p(St, 0.5)),
        // ---- English: articulate the reasoning behind an answer.
        ("explain your reasoning", p(Ar, 0.55)),
        ("explain your answer", p(Ar, 0.5)),
        ("explain your choice", p(Ar, 0.35)),
        ("justify your answer", p(Ar, 0.5)),
        ("give your reasoning", p(Ar, 0.5)),
        ("give reasons", p(Ar, 0.25)),
        ("your reasoning", p(Ar, 0.4)),
        ("the reasoning behind", p(Ar, 0.2)),
        ("reasoning behind your", p(Ar, 0.45)),
        ("reasoning behind the answer", p(Ar, 0.45)),
        ("reasoning behind this answer", p(Ar, 0.45)),
        ("reasoning behind the response", p(Ar, 0.45)),
        ("how you arrived at", p(Ar, 0.5)),
        ("how you got to", p(Ar, 0.35)),
        ("how you reached", p(Ar, 0.4)),
        ("how did you arrive", p(Ar, 0.45)),
        ("how we arrive at", p(Ar, 0.45)),
        ("arrive at this answer", p(Ar, 0.4)),
        ("arrive at the answer", p(Ar, 0.35)),
        ("led to this answer", p(Ar, 0.4)),
        ("led to the answer", p(Ar, 0.35)),
        ("justifies this answer", p(Ar, 0.4)),
        ("justifies that answer", p(Ar, 0.4)),
        ("justify this answer", p(Ar, 0.4)),
        ("think aloud", p(Ar, 0.5)),
        ("think out loud", p(Ar, 0.5)),
        ("thinking aloud", p(Ar, 0.5)),
        ("thinking out loud", p(Ar, 0.5)),
        ("inner monologue", p(Ar, 0.55)),
        ("internal monologue", p(Ar, 0.6)),
        ("internal reasoning", p(Ar, 0.6)),
        ("inner reasoning", p(Ar, 0.55)),
        ("hidden reasoning", p(Ar, 0.6)),
        ("stream of consciousness", p(Ar, 0.5)),
        ("stream of thoughts", p(Ar, 0.5)),
        ("let me think", p(Sb, 0.25)),
        ("reconstruct the reasoning", p(Ar, 0.6)),
        ("reconstruct your reasoning", p(Ar, 0.6)),
        ("train of thought", p(Ar, 0.45)),
        ("explanation first", p(Ar, 0.45)),
        ("rationale first", p(Ar, 0.5)),
        ("reasons first", p(Ar, 0.4)),
        ("reasoning first", p(Ar, 0.5)),
        ("with reasoning", p(Ar, 0.3)),
        ("use reasoning", p(Ar, 0.45)),
        ("using reasoning", p(Ar, 0.35)),
        ("reasoning process", p(Ar, 0.5)),
        ("reasoning steps", p(Ar, 0.5)),
        ("rationale", p(Ar, 0.2)),
        // ---- English: the full thinking.
        ("chain of thought", p(St, 0.6)),
        ("chain of thoughts", p(St, 0.6)),
        ("cot", p(St, 0.15)),
        ("thought process", p(St, 0.45)),
        ("thinking process", p(St, 0.5)),
        ("your thinking", p(St, 0.3)),
        ("full reasoning", p(St, 0.6)),
        ("complete reasoning", p(St, 0.6)),
        ("entire reasoning", p(St, 0.6)),
        ("all of your reasoning", p(St, 0.6)),
        ("all your reasoning", p(St, 0.6)),
        ("raw reasoning", p(St, 0.65)),
        ("raw thoughts", p(St, 0.55)),
        ("reasoning trace", p(St, 0.6)),
        ("reasoning traces", p(St, 0.6)),
        ("reasoning tokens", p(St, 0.6)),
        ("scratchpad", p(St, 0.45)),
        ("full chain of thought", p(St, 0.75)),
        ("complete chain of thought", p(St, 0.75)),
        ("<thinking>", p(St, 0.55)),
        ("<think>", p(St, 0.55)),
        ("<reasoning>", p(St, 0.55)),
        ("<scratchpad>", p(St, 0.55)),
        // ---- English: verbs and objects.
        ("explain", Verb),
        ("show", Verb),
        ("write out", Verb),
        ("write down", Verb),
        ("spell out", Verb),
        ("walk through", Verb),
        ("lay out", Verb),
        ("describe", Verb),
        ("detail", Verb),
        ("outline", Verb),
        ("articulate", StrongVerb),
        ("reconstruct", StrongVerb),
        ("recreate", StrongVerb),
        ("reverse engineer", StrongVerb),
        ("imagine", Verb),
        ("give", Verb),
        ("provide", Verb),
        ("include", Verb),
        ("present", Verb),
        ("share", Verb),
        ("reveal", Verb),
        ("output", Verb),
        ("display", Verb),
        ("print", Verb),
        ("verbalize", StrongVerb),
        ("verbalise", StrongVerb),
        ("narrate", StrongVerb),
        ("document", Verb),
        ("trace", Verb),
        ("expose", Verb),
        ("elaborate on", Verb),
        ("break down", Verb),
        ("reasoning", o(Ar, 0.35)),
        ("thinking", o(St, 0.35)),
        ("thoughts", o(St, 0.25)),
        ("your thought process", o(St, 0.55)),
        ("reasons", o(Ar, 0.3)),
        ("logic", o(Ar, 0.25)),
        ("justification", o(Ar, 0.3)),
        ("deliberation", o(St, 0.45)),
        ("derivation", o(Sb, 0.35)),
        ("calculations", o(Sb, 0.35)),
        ("every step", o(Sb, 0.35)),
        ("each step", o(Sb, 0.3)),
        ("all the steps", o(Sb, 0.3)),
        ("the steps you took", o(Sb, 0.45)),
        ("how you solved", o(Sb, 0.4)),
        ("decision process", o(Ar, 0.4)),
        ("mental process", o(St, 0.45)),
        ("cognitive process", o(St, 0.45)),
        // ---- English: intensifiers and timing.
        ("do not summarize", Full(0.3)),
        ("do not summarise", Full(0.3)),
        ("dont summarize", Full(0.3)),
        ("dont summarise", Full(0.3)),
        ("without summarizing", Full(0.3)),
        ("without summarising", Full(0.3)),
        ("not a summary", Full(0.3)),
        ("no summary", Full(0.2)),
        ("do not skip", Full(0.3)),
        ("dont skip", Full(0.3)),
        ("without skipping", Full(0.3)),
        ("do not omit", Full(0.3)),
        ("dont omit", Full(0.3)),
        ("without omitting", Full(0.3)),
        ("do not leave out", Full(0.25)),
        ("dont leave out", Full(0.25)),
        ("every single step", Full(0.25)),
        ("all intermediate", Full(0.25)),
        ("every intermediate", Full(0.25)),
        ("each intermediate", Full(0.25)),
        ("every calculation", Full(0.2)),
        ("in full detail", Full(0.2)),
        ("verbatim", Full(0.2)),
        ("unabridged", Full(0.25)),
        ("not a polished", Full(0.25)),
        ("before answering", Timing(0.15)),
        ("before you answer", Timing(0.15)),
        ("before giving", Timing(0.1)),
        ("before responding", Timing(0.15)),
        ("final answer", Timing(0.15)),
        // ---- English: rubric grading.
        ("grade", Grade),
        ("score", Grade),
        ("rate", Grade),
        ("evaluate", Grade),
        ("assess", Grade),
        ("judge", Grade),
        ("scale of 1 to", Scale),
        ("on a scale", Scale),
        ("1 10", Scale),
        ("1 to 10", Scale),
        ("1 5", Scale),
        ("1 to 5", Scale),
        ("out of 10", Scale),
        ("out of 5", Scale),
        ("out of 100", Scale),
        ("rubric", Criteria(0.35)),
        ("grading criteria", Criteria(0.35)),
        ("scoring criteria", Criteria(0.35)),
        ("evaluation criteria", Criteria(0.3)),
        ("criteria", Criteria(0.1)),
        ("criterion", Criteria(0.15)),
        ("correctness", Criteria(0.1)),
        ("each criterion", Justify),
        ("for each criterion", Justify),
        ("justify each", Justify),
        ("justify the score", Justify),
        ("justify your score", Justify),
        ("explain each score", Justify),
        ("explain your score", Justify),
        ("explain each", Justify),
        ("justification for each", Justify),
        // ---- Spanish.
        ("paso a paso", p(Sb, 0.4)),
        ("piensa paso a paso", p(Sb, 0.55)),
        ("pensemos paso a paso", p(Sb, 0.55)),
        ("razona paso a paso", p(Sb, 0.55)),
        ("razonemos", p(Sb, 0.45)),
        ("explica tu razonamiento", p(Ar, 0.55)),
        ("tu razonamiento", p(Ar, 0.4)),
        ("razonamiento", o(Ar, 0.35)),
        ("cadena de pensamiento", p(St, 0.6)),
        ("proceso de pensamiento", p(St, 0.5)),
        ("proceso de razonamiento", p(Ar, 0.5)),
        ("piensa en voz alta", p(Ar, 0.5)),
        ("en voz alta", p(Ar, 0.3)),
        ("monologo interno", p(Ar, 0.55)),
        ("muestra tu trabajo", p(Sb, 0.5)),
        ("muestra los pasos", p(Sb, 0.45)),
        ("justifica tu respuesta", p(Ar, 0.45)),
        ("como llegaste", p(Ar, 0.45)),
        ("explica", Verb),
        ("muestra", Verb),
        ("escribe", Verb),
        ("detalla", Verb),
        ("reconstruye", Verb),
        ("imagina", Verb),
        ("sin resumir", Full(0.3)),
        ("no resumas", Full(0.3)),
        ("sin omitir", Full(0.3)),
        ("no omitas", Full(0.3)),
        ("sin saltar", Full(0.3)),
        ("antes de responder", Timing(0.15)),
        ("respuesta final", Timing(0.15)),
        ("rubrica", Criteria(0.35)),
        ("criterios", Criteria(0.1)),
        ("califica", Grade),
        ("evalua", Grade),
        // ---- Portuguese.
        ("passo a passo", p(Sb, 0.4)),
        ("pense passo a passo", p(Sb, 0.55)),
        ("pensar passo a passo", p(Sb, 0.55)),
        ("raciocine passo a passo", p(Sb, 0.55)),
        ("explique seu raciocinio", p(Ar, 0.55)),
        ("seu raciocinio", p(Ar, 0.4)),
        ("raciocinio", o(Ar, 0.35)),
        ("cadeia de pensamento", p(St, 0.6)),
        ("processo de pensamento", p(St, 0.5)),
        ("processo de raciocinio", p(Ar, 0.5)),
        ("pense em voz alta", p(Ar, 0.5)),
        ("mostre seu trabalho", p(Sb, 0.5)),
        ("justifique sua resposta", p(Ar, 0.45)),
        ("explique", Verb),
        ("mostre", Verb),
        ("escreva", Verb),
        ("descreva", Verb),
        ("reconstrua", Verb),
        ("sem resumir", Full(0.3)),
        ("nao resuma", Full(0.3)),
        ("sem pular", Full(0.3)),
        ("nao pule", Full(0.3)),
        ("sem omitir", Full(0.3)),
        ("resposta final", Timing(0.15)),
        ("avalie", Grade),
        // ---- French.
        ("etape par etape", p(Sb, 0.4)),
        ("pas a pas", p(Sb, 0.4)),
        ("reflechis etape par etape", p(Sb, 0.55)),
        ("reflechissons etape par etape", p(Sb, 0.55)),
        ("raisonne etape par etape", p(Sb, 0.55)),
        ("raisonnons", p(Sb, 0.45)),
        ("explique ton raisonnement", p(Ar, 0.55)),
        ("expliquez votre raisonnement", p(Ar, 0.55)),
        ("ton raisonnement", p(Ar, 0.4)),
        ("votre raisonnement", p(Ar, 0.4)),
        ("raisonnement", o(Ar, 0.35)),
        ("chaine de pensee", p(St, 0.6)),
        ("chaine de raisonnement", p(St, 0.55)),
        ("processus de reflexion", p(St, 0.5)),
        ("processus de pensee", p(St, 0.5)),
        ("a voix haute", p(Ar, 0.35)),
        ("reflechis a voix haute", p(Ar, 0.5)),
        ("pense a voix haute", p(Ar, 0.5)),
        ("monologue interieur", p(Ar, 0.55)),
        ("montre ton travail", p(Sb, 0.45)),
        ("justifie ta reponse", p(Ar, 0.45)),
        ("justifiez votre reponse", p(Ar, 0.45)),
        ("expliquez", Verb),
        ("montre", Verb),
        ("montrez", Verb),
        ("ecris", Verb),
        ("ecrivez", Verb),
        ("detaille", Verb),
        ("detaillez", Verb),
        ("reconstruis", Verb),
        ("sans resumer", Full(0.3)),
        ("ne resume pas", Full(0.3)),
        ("ne resumez pas", Full(0.3)),
        ("sans sauter", Full(0.3)),
        ("sans omettre", Full(0.3)),
        ("avant de repondre", Timing(0.15)),
        ("reponse finale", Timing(0.15)),
        ("grille d evaluation", Criteria(0.35)),
        ("evalue", Grade),
        ("note", Grade),
        // ---- German.
        ("schritt fur schritt", p(Sb, 0.4)),
        ("lass uns schritt fur schritt", p(Sb, 0.55)),
        ("denke schritt fur schritt", p(Sb, 0.55)),
        ("denk schritt fur schritt", p(Sb, 0.55)),
        ("denke laut", p(Ar, 0.5)),
        ("denk laut", p(Ar, 0.5)),
        ("laut denken", p(Ar, 0.5)),
        ("laut nachdenken", p(Ar, 0.5)),
        ("erklare deine begrundung", p(Ar, 0.55)),
        ("deine begrundung", p(Ar, 0.35)),
        ("begrunde deine antwort", p(Ar, 0.45)),
        ("deinen denkprozess", p(St, 0.5)),
        ("denkprozess", p(St, 0.45)),
        ("gedankengang", p(St, 0.45)),
        ("gedankenkette", p(St, 0.6)),
        ("argumentationskette", p(St, 0.5)),
        ("innerer monolog", p(Ar, 0.55)),
        ("inneren monolog", p(Ar, 0.55)),
        ("rechenweg", p(Sb, 0.35)),
        ("losungsweg", p(Sb, 0.3)),
        ("zwischenschritte", p(Sb, 0.4)),
        ("uberlegungen", o(Ar, 0.3)),
        ("begrundung", o(Ar, 0.3)),
        ("erklare", Verb),
        ("erklar", Verb),
        ("zeige", Verb),
        ("zeig", Verb),
        ("schreibe", Verb),
        ("schreib", Verb),
        ("beschreibe", Verb),
        ("rekonstruiere", Verb),
        ("ohne zusammenzufassen", Full(0.3)),
        ("fasse nicht zusammen", Full(0.3)),
        ("nicht zusammenfassen", Full(0.3)),
        ("keinen schritt auslassen", Full(0.3)),
        ("ohne auszulassen", Full(0.3)),
        ("bevor du antwortest", Timing(0.15)),
        ("endgultige antwort", Timing(0.15)),
        ("bewertungskriterien", Criteria(0.3)),
        ("bewerte", Grade),
        // ---- Russian.
        ("шаг за шагом", p(Sb, 0.4)),
        ("пошагово", p(Sb, 0.4)),
        ("поэтапно", p(Sb, 0.35)),
        ("давай подумаем", p(Sb, 0.35)),
        ("давайте подумаем", p(Sb, 0.35)),
        ("подумай шаг за шагом", p(Sb, 0.55)),
        ("рассуждай*", p(Ar, 0.4)),
        ("рассуждай вслух", p(Ar, 0.55)),
        ("думай вслух", p(Ar, 0.5)),
        ("вслух", p(Ar, 0.2)),
        ("свои рассуждения", p(Ar, 0.45)),
        ("твои рассуждения", p(Ar, 0.45)),
        ("рассуждени*", o(Ar, 0.35)),
        ("ход мыслей", p(St, 0.45)),
        ("ход рассуждений", p(St, 0.5)),
        ("цепочка рассуждений", p(St, 0.6)),
        ("цепочку рассуждений", p(St, 0.6)),
        ("цепочка мыслей", p(St, 0.6)),
        ("цепочку мыслей", p(St, 0.6)),
        ("внутренний монолог", p(Ar, 0.55)),
        ("внутреннем монологе", p(Ar, 0.55)),
        ("внутреннего монолога", p(Ar, 0.55)),
        ("ход решения", p(Sb, 0.35)),
        ("промежуточные шаги", p(Sb, 0.45)),
        ("обоснуй ответ", p(Ar, 0.45)),
        ("обоснуй свой ответ", p(Ar, 0.45)),
        ("объясни", Verb),
        ("покажи", Verb),
        ("напиши", Verb),
        ("распиши", Verb),
        ("опиши", Verb),
        ("изложи", Verb),
        ("восстанови", Verb),
        ("не сокращая", Full(0.3)),
        ("не пропуская", Full(0.3)),
        ("без сокращений", Full(0.3)),
        ("не резюмируй", Full(0.3)),
        ("прежде чем ответить", Timing(0.15)),
        ("перед ответом", Timing(0.15)),
        ("окончательный ответ", Timing(0.15)),
        ("критерии оценки", Criteria(0.3)),
        ("оцени", Grade),
        // ---- Chinese (simplified and traditional).
        ("一步一步", p(Sb, 0.45)),
        ("一步步", p(Sb, 0.4)),
        ("逐步", p(Sb, 0.35)),
        ("逐步推理", p(Sb, 0.55)),
        ("逐步思考", p(Sb, 0.55)),
        ("一步一步地思考", p(Sb, 0.55)),
        ("一步一步思考", p(Sb, 0.55)),
        ("分步", p(Sb, 0.3)),
        ("思考过程", p(St, 0.5)),
        ("思考過程", p(St, 0.5)),
        ("思维过程", p(St, 0.5)),
        ("思維過程", p(St, 0.5)),
        ("推理过程", p(Ar, 0.5)),
        ("推理過程", p(Ar, 0.5)),
        ("思维链", p(St, 0.6)),
        ("思維鏈", p(St, 0.6)),
        ("思路", o(St, 0.35)),
        ("解题过程", p(Sb, 0.4)),
        ("解題過程", p(Sb, 0.4)),
        ("解题步骤", p(Sb, 0.4)),
        ("中间步骤", p(Sb, 0.4)),
        ("內心獨白", p(Ar, 0.55)),
        ("内心独白", p(Ar, 0.55)),
        ("大声思考", p(Ar, 0.45)),
        ("你的推理", p(Ar, 0.45)),
        ("推理", o(Ar, 0.3)),
        ("理由", o(Ar, 0.2)),
        ("解释", Verb),
        ("解釋", Verb),
        ("展示", Verb),
        ("写出", Verb),
        ("寫出", Verb),
        ("说明", Verb),
        ("說明", Verb),
        ("列出", Verb),
        ("重建", Verb),
        ("还原", Verb),
        ("阐述", Verb),
        ("不要省略", Full(0.3)),
        ("不省略", Full(0.3)),
        ("不要总结", Full(0.3)),
        ("不要概括", Full(0.3)),
        ("不要跳步", Full(0.3)),
        ("不要跳过", Full(0.3)),
        ("完整", Full(0.1)),
        ("回答之前", Timing(0.15)),
        ("最终答案", Timing(0.15)),
        ("评分标准", Criteria(0.35)),
        ("評分標準", Criteria(0.35)),
        ("打分", Grade),
        ("评分", Grade),
        ("逐条", Justify),
        // ---- Japanese.
        ("ステップバイステップ", p(Sb, 0.45)),
        ("ステップバイステップで考え", p(Sb, 0.55)),
        ("段階的に考え", p(Sb, 0.55)),
        ("段階的に", p(Sb, 0.35)),
        ("一歩ずつ", p(Sb, 0.4)),
        ("順を追って", p(Sb, 0.35)),
        ("推論過程", p(Ar, 0.5)),
        ("推論プロセス", p(Ar, 0.5)),
        ("思考プロセス", p(St, 0.5)),
        ("考えを声に出", p(Ar, 0.5)),
        ("声に出して考え", p(Ar, 0.5)),
        ("独り言", p(Ar, 0.4)),
        ("内なる独白", p(Ar, 0.55)),
        ("内的独白", p(Ar, 0.55)),
        ("途中式", p(Sb, 0.4)),
        ("途中の手順", p(Sb, 0.4)),
        ("推論", o(Ar, 0.3)),
        ("考え方", o(St, 0.25)),
        ("説明して", Verb),
        ("示して", Verb),
        ("書き出", Verb),
        ("書いて", Verb),
        ("再構成", Verb),
        ("省略せず", Full(0.3)),
        ("省略しないで", Full(0.3)),
        ("要約せず", Full(0.3)),
        ("要約しないで", Full(0.3)),
        ("省かず", Full(0.3)),
        ("答える前に", Timing(0.15)),
        ("回答する前に", Timing(0.15)),
        ("最終的な答え", Timing(0.15)),
        ("採点基準", Criteria(0.35)),
        ("評価基準", Criteria(0.3)),
        ("採点", Grade),
        // ---- Korean.
        ("단계별로", p(Sb, 0.4)),
        ("단계별로 생각", p(Sb, 0.55)),
        ("차근차근 생각", p(Sb, 0.55)),
        ("단계적으로", p(Sb, 0.35)),
        ("차근차근", p(Sb, 0.4)),
        ("한 단계씩", p(Sb, 0.4)),
        ("사고 과정", p(St, 0.5)),
        ("사고과정", p(St, 0.5)),
        ("추론 과정", p(Ar, 0.5)),
        ("추론과정", p(Ar, 0.5)),
        ("생각의 흐름", p(St, 0.45)),
        ("생각의 사슬", p(St, 0.6)),
        ("내면의 독백", p(Ar, 0.55)),
        ("내적 독백", p(Ar, 0.55)),
        ("소리 내어 생각", p(Ar, 0.5)),
        ("풀이 과정", p(Sb, 0.45)),
        ("풀이과정", p(Sb, 0.45)),
        ("추론", o(Ar, 0.3)),
        ("설명해", Verb),
        ("보여 주", Verb),
        ("보여주", Verb),
        ("작성해", Verb),
        ("재구성", Verb),
        ("생략하지 말고", Full(0.3)),
        ("생략하지 않고", Full(0.3)),
        ("요약하지 말고", Full(0.3)),
        ("건너뛰지 말고", Full(0.3)),
        ("답하기 전에", Timing(0.15)),
        ("최종 답", Timing(0.15)),
        ("채점 기준", Criteria(0.35)),
        ("평가 기준", Criteria(0.3)),
        ("점수를 매", Grade),
        // ---- Arabic.
        ("خطوة بخطوة", p(Sb, 0.45)),
        ("فكر خطوة بخطوة", p(Sb, 0.55)),
        ("سلسلة التفكير", p(St, 0.6)),
        ("سلسلة تفكيرك", p(St, 0.6)),
        ("سلسلة الافكار", p(St, 0.55)),
        ("عملية التفكير", p(St, 0.5)),
        ("طريقة تفكيرك", p(St, 0.45)),
        ("تفكيرك", o(St, 0.3)),
        ("استدلالك", p(Ar, 0.4)),
        ("اشرح استدلالك", p(Ar, 0.55)),
        ("بصوت عال", p(Ar, 0.35)),
        ("فكر بصوت عال", p(Ar, 0.5)),
        ("المونولوج الداخلي", p(Ar, 0.55)),
        ("الحوار الداخلي", p(Ar, 0.45)),
        ("الاستدلال", o(Ar, 0.3)),
        ("اشرح", Verb),
        ("اعرض", Verb),
        ("اكتب", Verb),
        ("وضح", Verb),
        ("اظهر", Verb),
        ("دون اختصار", Full(0.3)),
        ("بدون اختصار", Full(0.3)),
        ("دون حذف", Full(0.3)),
        ("لا تلخص", Full(0.3)),
        ("قبل الاجابة", Timing(0.15)),
        ("الاجابة النهائية", Timing(0.15)),
        ("معايير التقييم", Criteria(0.3)),
        ("قيم", Grade),
    ]
}

/// Reasoning-elicitation scorer; build once, share freely.
#[derive(Debug, Clone)]
pub struct CotDetector {
    lexicon: Option<Lexicon<Cue>>,
}

impl Default for CotDetector {
    fn default() -> Self {
        Self::new()
    }
}

impl CotDetector {
    /// Builds the matcher (about a millisecond; do it once).
    pub fn new() -> Self {
        CotDetector {
            lexicon: Lexicon::new(&entries()),
        }
    }

    /// Scores one text: `raw` as sent (for a trailing answer label), `text` its normalised
    /// form.
    pub fn score(&self, raw: &str, text: &Normalized) -> CotScore {
        let Some(lexicon) = &self.lexicon else {
            return CotScore::default();
        };
        let mut hits = Vec::new();
        lexicon.scan(text, &mut hits);
        score_text(&hits, raw, &mut Vec::new())
    }
}

/// Scores one text from its lexicon hits (in the order of their ends) and `raw`, the text as
/// sent. `scratch` is reused space.
pub(crate) fn score_text(hits: &[Hit<Cue>], raw: &str, scratch: &mut Vec<Hit<Cue>>) -> CotScore {
    score_hits(hits, trailing_label(raw), scratch)
}

/// Completion-style prompts end with a label for the model to continue ("Q: … Reasoning:",
/// "Let me think step by step:", "思路："); a label that names reasoning elicits it just as an
/// instruction does. Returns the weight of such a label (0 when there is none).
fn trailing_label(raw: &str) -> f32 {
    let t = raw.trim_end();
    let Some(body) = t.strip_suffix(':').or_else(|| t.strip_suffix('：')) else {
        return 0.0;
    };
    let start = body
        .char_indices()
        .rev()
        .find(|&(_, c)| matches!(c, '\n' | '.' | '?' | '!' | '。' | '？' | '！'))
        .map_or(0, |(i, c)| i + c.len_utf8());
    let label = &body[start..];
    if label.len() > LABEL_MAX_BYTES {
        return 0.0;
    }
    let mut n = String::with_capacity(label.len() + 2);
    n.push(' ');
    super::text::push_normalized(label, &mut n);
    n.push(' ');
    if REASONING_LABELS.iter().any(|w| n.contains(w)) {
        LABEL_WEIGHT
    } else if n.contains(" solution ") || n.contains(" explanation ") {
        LABEL_WEIGHT / 2.0
    } else {
        0.0
    }
}

/// Longest trailing label considered; longer tails are sentences, not labels.
const LABEL_MAX_BYTES: usize = 60;
/// Weight of a trailing label that names reasoning.
const LABEL_WEIGHT: f32 = 0.5;
/// Words that make a trailing label a reasoning label (normalised, with boundaries).
const REASONING_LABELS: [&str; 11] = [
    " cot ",
    " chain of thought",
    " thought",
    " thinking ",
    " reasoning ",
    " rationale ",
    " stream of",
    " lets think",
    " let me think",
    " step by step",
    " work ",
];

fn score_hits(hits: &[Hit<Cue>], label: f32, pairs: &mut Vec<Hit<Cue>>) -> CotScore {
    let mut per_kind = [0.0f32; 4];
    let mut max = 0.0f32;
    let mut sum = 0.0f32;
    let mut add = |k: CotKind, w: f32| {
        per_kind[k.index()] += w;
        max = max.max(w);
        sum += w;
    };
    if label > 0.0 {
        add(CotKind::StepByStep, label);
    }
    let (mut full, mut timing) = (0.0f32, 0.0f32);
    let (mut grade, mut scale, mut justify, mut criteria) = (false, false, false, 0.0f32);
    // Pairs look for their partner among the few verbs and objects, not among all hits.
    pairs.clear();
    pairs.extend(hits.iter().filter(|h| {
        matches!(
            h.tag,
            Cue::Verb | Cue::StrongVerb | Cue::ThinkVerb | Cue::Object(..)
        )
    }));
    let pairs = &pairs[..];
    let near_any = |want: fn(&Cue) -> bool, h: &Hit<Cue>| {
        pairs
            .iter()
            .any(|v| want(&v.tag) && near(v, h, VERB_BEFORE, VERB_AFTER))
    };
    let display = |c: &Cue| matches!(c, Cue::Verb);
    let strong = |c: &Cue| matches!(c, Cue::StrongVerb);
    let thinking = |c: &Cue| matches!(c, Cue::ThinkVerb | Cue::Object(..));
    for h in hits {
        match h.tag {
            Cue::Phrase(k, w) => add(k, w),
            Cue::Object(k, w) => {
                if near_any(strong, h) {
                    add(k, w + STRONG_VERB_BONUS);
                } else if near_any(display, h) {
                    add(k, w);
                }
            }
            Cue::Manner { alone, with } => {
                let w = if near_any(thinking, h) { with } else { alone };
                if w > 0.0 {
                    add(CotKind::StepByStep, w);
                }
            }
            Cue::Full(w) => full += w,
            Cue::Timing(w) => timing += w,
            Cue::Grade => grade = true,
            Cue::Scale => scale = true,
            Cue::Criteria(w) => criteria = criteria.max(w),
            Cue::Justify => justify = true,
            Cue::Verb | Cue::StrongVerb | Cue::ThinkVerb => {}
        }
    }
    // Rubric grading needs a grading act plus a scale or criteria; "rate this film" alone is
    // not a request for reasoning.
    let mut rubric = criteria;
    if grade && scale {
        rubric = rubric.max(0.3);
    }
    if grade && criteria > 0.0 {
        rubric = rubric.max(0.4);
    }
    if scale && criteria > 0.0 {
        rubric = rubric.max(0.5);
    }
    if rubric > 0.0 && justify {
        rubric += 0.25;
    }
    if rubric >= 0.2 {
        add(CotKind::RubricGrading, rubric);
    }

    // The strongest phrase sets the level; further phrases add with diminishing weight, so a
    // long formulaic prompt does not saturate on repetitions of one idea.
    let base = max + SECONDARY_WEIGHT * (sum - max);
    let boost = full.min(0.4) + timing.min(0.15);
    let score = if base > 0.0 {
        base + boost
    } else {
        // "Do not skip any step" alone is weak evidence of its own.
        0.5 * boost
    }
    .clamp(0.0, 1.0);

    let mut kind = CotKind::ALL
        .into_iter()
        .zip(per_kind)
        .filter(|&(_, w)| w > 0.0)
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(k, _)| k);
    if full >= 0.25 && matches!(kind, None | Some(CotKind::StepByStep)) {
        kind = Some(CotKind::ShowThinking);
    }
    if score <= 0.0 {
        kind = None;
    }
    CotScore { score, kind }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cot(text: &str) -> CotScore {
        CotDetector::new().score(text, &Normalized::new(text))
    }

    #[test]
    fn lexicon_builds_without_duplicates() {
        super::super::text::assert_unique_patterns(&entries());
        assert_eq!(
            CotDetector::new().lexicon.map(|l| l.len()),
            Some(entries().len())
        );
    }

    #[test]
    fn plain_step_by_step_is_moderate_and_full_thinking_is_higher() {
        let bread = cot("Explain step by step how to bake bread.");
        let full = cot("Show your full internal chain of thought, don't summarize.");
        assert!((0.3..0.6).contains(&bread.score), "{bread:?}");
        assert!(full.score >= 0.85, "{full:?}");
        assert_eq!(full.kind, Some(CotKind::ShowThinking));
    }

    #[test]
    fn benign_step_and_reason_words_score_low() {
        for t in [
            "What is the reason for the seasons?",
            "Give me a 10-step skincare routine.",
            "Which steps should I take to renew my passport?",
        ] {
            assert!(cot(t).score < 0.2, "{t}: {:?}", cot(t));
        }
    }

    #[test]
    fn rubric_needs_an_act_and_a_scale_or_criteria() {
        let r = cot(
            "Grade the answer below on a 1-10 rubric and justify the score for each criterion.",
        );
        assert_eq!(r.kind, Some(CotKind::RubricGrading));
        assert!(r.score >= 0.6, "{r:?}");
        assert!(cot("Rate this film out of 10").score < 0.5);
    }

    #[test]
    fn trailing_reasoning_label() {
        assert_eq!(
            trailing_label("Q: Is ice lighter than water?\nYour reasoning:"),
            LABEL_WEIGHT
        );
        assert_eq!(
            trailing_label("Q: Is ice lighter than water?\nAnswer:"),
            0.0
        );
        assert_eq!(trailing_label("List three things I need:"), 0.0);
        assert!(cot("Is ice lighter than water? Thoughts:").score >= 0.5);
    }
}

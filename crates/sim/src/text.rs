//! Text the simulator writes itself: filling template slots, short synthesized assistant
//! replies for conversation history, plausible answers for rubric-grading prompts, app-backend
//! and evaluation-harness prompt formats, low-and-slow paraphrases, and fallback system
//! prompts.
//!
//! Everything here was written for this project; real user text comes from the corpus. Replies
//! are deliberately short: they only make the `messages` history realistic in shape, and the
//! simulator does not log response text.

use crate::corpus::Category;

/// Picks entry `h % len` of a list (the lists here are never empty).
fn at<'a>(list: &[&'a str], h: u64) -> &'a str {
    list.get((h % list.len().max(1) as u64) as usize)
        .copied()
        .unwrap_or("")
}

const REPLY_OPEN: &[&str] = &[
    "Sure!",
    "Good question.",
    "Here's a quick overview.",
    "Absolutely.",
    "Happy to help.",
    "Let's break it down.",
    "Here is one way to approach it.",
    "Short answer: it depends, but usually yes.",
];
const REPLY_BODY: &[&str] = &[
    "The key idea is to start from the constraints and work towards a simple first version.",
    "There are three main options, each with different trade-offs in cost and complexity.",
    "In most cases the default settings are fine; change them only if you measure a problem.",
    "I've rewritten it to be clearer and a bit shorter, keeping your original meaning.",
    "The error comes from the variable being used before it is initialised.",
    "You can do this with a short loop that keeps a running total.",
    "Historically this changed in the late nineteenth century, mostly for economic reasons.",
    "A good structure is: introduction, two or three main points, and a short conclusion.",
    "The function returns early when the list is empty, which is why you see no output.",
    "Both are valid; the second is more idiomatic and easier to test.",
];
const REPLY_CLOSE: &[&str] = &[
    "Let me know if you want more detail.",
    "Want me to expand on any part?",
    "I hope this helps!",
    "",
    "Would you like an example?",
];

/// A short assistant reply standing in for the real answer in conversation history.
pub(crate) fn assistant_reply(h: u64) -> String {
    let open = at(REPLY_OPEN, h);
    let body = at(REPLY_BODY, h >> 8);
    let close = at(REPLY_CLOSE, h >> 16);
    let mut s = String::with_capacity(open.len() + body.len() + close.len() + 2);
    s.push_str(open);
    s.push(' ');
    s.push_str(body);
    if !close.is_empty() {
        s.push(' ');
        s.push_str(close);
    }
    s
}

const MATH_ANSWERS: &[&str] = &[
    "First, identify what is being asked. Then set up the relationship between the quantities and simplify step by step. Substituting the given values yields {n}. Therefore, the answer is {n}.",
    "Let x be the unknown. From the problem statement we get an equation in x; solving it gives x = {n}. So the result is {n}.",
    "We can solve this by breaking it into cases. Checking each case, only one satisfies all the conditions, which gives {n}. Final answer: {n}",
];
const CODE_ANSWERS: &[&str] = &[
    "The approach is to iterate over the input once, keeping track of the best value so far. This runs in linear time.\n\ndef solve(xs):\n    best = xs[0]\n    for x in xs[1:]:\n        best = max(best, x)\n    return best",
    "Use a dictionary to count occurrences, then return the keys whose count is above the threshold. Complexity O(n).",
    "A recursive solution works: handle the empty case, then combine the first element with the result on the rest. For large inputs convert it to a loop to avoid recursion limits.",
];
const GENERAL_ANSWERS: &[&str] = &[
    "Answer: {n}. Reasoning: the first condition eliminates most options, and the second fixes the remaining one.",
    "The key fact is that the two statements cannot both be true, so the third must be. Hence the answer follows directly.",
    "It happened mainly because of economic pressure, with political and technological factors playing a smaller role.",
];

/// A plausible (possibly wrong) worked answer of the right shape for rubric-grading prompts.
pub(crate) fn plausible_answer(h: u64, category: Category) -> String {
    let n = (h >> 20) % 1000;
    let shapes = match category {
        Category::Math => MATH_ANSWERS,
        Category::Code => CODE_ANSWERS,
        _ => GENERAL_ANSWERS,
    };
    at(shapes, h).replace("{n}", &n.to_string())
}

/// System prompts of ordinary API users (the SDK quick-start default dominates).
pub(crate) const BENIGN_SYSTEM_PROMPTS: &[&str] = &[
    "You are a helpful assistant.",
    "You are a helpful assistant.",
    "You are a helpful assistant.",
    "You are a concise assistant. Answer briefly.",
    "You are an expert software engineer. Answer with code when useful.",
    "You are a friendly tutor who explains things simply.",
];

/// System prompts of app backends, used when the corpus has none.
pub(crate) const APP_SYSTEM_PROMPTS: &[&str] = &[
    "You are the support assistant for an online store. Be polite, brief and never promise refunds.",
    "You are a writing assistant inside a note-taking app. Preserve the user's voice.",
    "You classify incoming support tickets. Reply with a single category name.",
    "You are a travel planning assistant. Suggest practical itineraries.",
    "You summarise meeting transcripts into action items.",
    "You are a coding assistant embedded in an IDE. Reply with code only unless asked.",
];

/// Narrow task templates of app backends; `{input}` is the end user's text.
pub(crate) const APP_TEMPLATES: &[&str] = &[
    "Summarize the following customer message in one sentence:\n\n{input}",
    "Classify this support ticket as one of [billing, bug, feature_request, other]. Ticket:\n{input}",
    "Rewrite the following text in a friendly, professional tone:\n\n{input}",
    "Extract the key entities (people, products, dates) from the text below as JSON.\n\nText: {input}",
    "Translate the following into Spanish:\n{input}",
    "Write a short, catchy title (max 8 words) for this post:\n{input}",
    "Suggest three tags for this note. Note: {input}",
    "User request: {input}\n\nRespond as the in-app assistant.",
];

/// System prompts harvesting scripts attach (written for the simulator).
pub(crate) const HARVEST_SYSTEM_PROMPTS: &[&str] = &[
    "You are an expert problem solver. Think carefully and show every step of your reasoning before the final answer.",
    "You are a meticulous teacher. Always explain your full chain of reasoning in detail.",
    "Answer as thoroughly as possible. Include all intermediate steps, checks and alternatives you considered.",
    "You are a world-class mathematician and programmer. Provide complete, rigorous solutions.",
];

/// Evaluation-harness prompt formats; `{question}` is the benchmark item.
pub(crate) const HARNESS_TEMPLATES: &[&str] = &[
    "Question: {question}\nAnswer: Let's think step by step.",
    "Solve the following problem. Reason step by step, then give the final answer on the last line as 'Answer: <answer>'.\n\n{question}",
    "{question}\n\nPlease reason step by step, and put your final answer within \\boxed{}.",
    "Q: {question}\nA:",
];

/// Follow-ups ordinary users send to ask for reasoning (written for the simulator).
pub(crate) const STEP_FOLLOW_UPS: &[&str] = &[
    "Can you explain that step by step?",
    "Walk me through how you got that, step by step.",
    "Why? Please explain your reasoning.",
    "I don't follow the middle part, can you go through it slowly?",
    "Show the steps please",
];

/// Reasoning requests phrased many ways, as a low-and-slow operator varies them to avoid
/// a shared template. `{question}` is the harvested problem.
pub(crate) const PARAPHRASES: &[&str] = &[
    "{question}\n\nWalk me through how you'd get there.",
    "Could you work through this carefully and show each step? {question}",
    "{question} Please lay out your thinking before giving the answer.",
    "I'm trying to understand the method, not just the result. {question}",
    "{question}\n\nExplain each step and why you took it.",
    "Here's a problem I'm stuck on: {question}\nWhat's your full line of reasoning?",
    "Think out loud on this one: {question}",
    "{question}\n\nBefore answering, reason about it in detail.",
    "Can you solve this and narrate your reasoning as you go? {question}",
    "{question} (please include the intermediate steps)",
    "Help me with this, and be explicit about every inference: {question}",
    "{question}\n\nI'd like the detailed derivation, then the final answer.",
    "Quick one: {question} Show your work.",
    "{question}\n\nDescribe how an expert would reason through this, step by step.",
    "For my notes, solve this with a complete explanation: {question}",
    "{question}\nGo slowly and justify each step.",
];

/// Greetings and sign-offs a human-like operator adds around paraphrases.
const PARAPHRASE_PREFIX: &[&str] = &["", "", "", "Hi! ", "Hey, ", "Hello. ", "Quick question. "];
const PARAPHRASE_SUFFIX: &[&str] = &["", "", "", " Thanks!", " Thank you.", " Appreciate it."];

/// A paraphrased reasoning request around `question`, varied by `h`.
pub(crate) fn paraphrase(h: u64, question: &str) -> String {
    let body = crate::corpus::Corpus::fill(at(PARAPHRASES, h), question);
    let mut s = String::with_capacity(body.len() + 24);
    s.push_str(at(PARAPHRASE_PREFIX, h >> 12));
    s.push_str(&body);
    s.push_str(at(PARAPHRASE_SUFFIX, h >> 24));
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::hash;

    #[test]
    fn synthesized_text_is_non_empty_and_filled() {
        for h in 0..50u64 {
            let h = hash(&[h]);
            assert!(!assistant_reply(h).is_empty());
            assert!(!plausible_answer(h, Category::Math).contains("{n}"));
            let p = paraphrase(h, "What is 2+2?");
            assert!(
                p.contains("What is 2+2?") && !p.contains("{question}"),
                "{p}"
            );
        }
    }
}

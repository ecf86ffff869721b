//! The deterministic text the mock answers with, and how it is cut into stream deltas.
//!
//! Tests on the far side of the gateway need to know exactly what the upstream said, so every
//! reply is a pure function of the number of input messages and the number of deltas: the public
//! `expected_*` functions compute the same strings the endpoints send. The reasoning text is
//! deliberately distinctive ("Let me think step by step about ...") so a test can assert that it
//! never reaches a client when the gateway withholds it. This module knows nothing about HTTP or
//! JSON.

/// The `created` timestamp every reply carries. Fixed, so replies are byte-for-byte repeatable.
pub const CREATED: u64 = 1_700_000_000;

/// The signature attached to Anthropic thinking blocks and `reasoning_details`. It is valid
/// base64 shaped like the real ones (which are opaque to clients), and fixed so tests can assert
/// that a gateway passed it through, or restored it, unchanged.
pub const SIGNATURE: &str = "EpoBCgIYArNOeBVvq8qr7X7gRbybsiCWKb0ASP3LvkqGdO2Tg6B3iU/rTwU20VTqG/mw2oQKhPA/djGddiBwSsEE/1f1LUCUrv8iqBwE8NQ/6zqbo5NaGB/FDcSwdIAW+fn9L8TeKHZ1xAaqp1FPf2Ay35+ndEWY9vvLPpdNbahhgmCZp3EN";

/// The opening of every reasoning text; a test can search a client's output for it.
pub const REASONING_MARKER: &str = "Let me think step by step about";

/// The most deltas one reply is cut into, whatever the configuration or a header asks for. It
/// bounds what a single request can make the mock allocate.
pub const MAX_CHUNKS: usize = 10_000;

/// The answer's sentence before it is cut into deltas.
fn answer_sentence(inputs: usize) -> String {
    format!("This is a mock reply to {inputs} {}.", plural(inputs))
}

/// The reasoning's text before it is cut into deltas.
fn reasoning_sentence(inputs: usize) -> String {
    format!(
        "{REASONING_MARKER} the {inputs} {} I received. The mock upstream always answers with \
         one short sentence, so I will reply with that sentence.",
        plural(inputs)
    )
}

fn plural(inputs: usize) -> &'static str {
    if inputs == 1 {
        "message"
    } else {
        "messages"
    }
}

/// The full answer text for a request with `inputs` input messages streamed as `chunks` deltas:
/// exactly what the non-streaming reply carries as its content and what the streamed deltas
/// concatenate to (without any `<think>` block, see [`expected_think_content`]).
///
/// With at least as many words as deltas this is the sentence "This is a mock reply to N
/// messages."; with more deltas than words the sentence repeats, one word a delta.
pub fn expected_content(inputs: usize, chunks: usize) -> String {
    assemble(&answer_sentence(inputs), chunks)
}

/// The full reasoning text for a request with `inputs` input messages and `chunks` deltas. It
/// starts with [`REASONING_MARKER`].
pub fn expected_reasoning(inputs: usize, chunks: usize) -> String {
    assemble(&reasoning_sentence(inputs), chunks)
}

/// The content of a reply in the [`Think`](crate::Reasoning::Think) dialect: the reasoning inside
/// `<think>` tags, then the answer.
pub fn expected_think_content(inputs: usize, chunks: usize) -> String {
    format!(
        "<think>\n{}\n</think>\n\n{}",
        expected_reasoning(inputs, chunks),
        expected_content(inputs, chunks)
    )
}

/// The answer cut into `chunks` deltas.
pub(crate) fn answer_deltas(inputs: usize, chunks: usize) -> Vec<String> {
    split(&answer_sentence(inputs), chunks)
}

/// The reasoning cut into `chunks` deltas.
pub(crate) fn reasoning_deltas(inputs: usize, chunks: usize) -> Vec<String> {
    split(&reasoning_sentence(inputs), chunks)
}

/// The number of deltas actually used for a requested count: at least one, at most
/// [`MAX_CHUNKS`].
pub(crate) fn clamp_chunks(chunks: usize) -> usize {
    chunks.clamp(1, MAX_CHUNKS)
}

/// Splits a sentence into words, each but the first keeping the space before it, so that the
/// words concatenate back to the sentence.
fn words(sentence: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, _) in sentence.match_indices(' ') {
        if i > start {
            out.push(&sentence[start..i]);
            start = i;
        }
    }
    if start < sentence.len() {
        out.push(&sentence[start..]);
    }
    out
}

/// Cuts `sentence` into exactly `clamp_chunks(chunks)` non-empty deltas: consecutive words grouped
/// as evenly as possible, or, with more deltas than words, one word a delta with the sentence
/// repeating.
pub(crate) fn split(sentence: &str, chunks: usize) -> Vec<String> {
    let chunks = clamp_chunks(chunks);
    let words = words(sentence);
    let n = words.len();
    if n == 0 {
        return vec![String::new(); chunks];
    }
    if chunks <= n {
        // The first `extra` deltas carry one word more than the rest.
        let base = n / chunks;
        let extra = n % chunks;
        let mut out = Vec::with_capacity(chunks);
        let mut at = 0;
        for i in 0..chunks {
            let take = base + usize::from(i < extra);
            out.push(words[at..at + take].concat());
            at += take;
        }
        out
    } else {
        (0..chunks)
            .map(|i| {
                let word = words[i % n];
                if i >= n && i % n == 0 {
                    // The first word of a repetition needs the space the sentence start lacks.
                    format!(" {word}")
                } else {
                    word.to_owned()
                }
            })
            .collect()
    }
}

/// What [`split`] concatenates to, built without the intermediate deltas.
fn assemble(sentence: &str, chunks: usize) -> String {
    split(sentence, chunks).concat()
}

/// A rough prompt-token count for a body: one token per four bytes, at least one. Real servers
/// tokenise; the mock only needs a plausible, deterministic number.
pub(crate) fn prompt_tokens(body_len: usize) -> u64 {
    u64::try_from(body_len / 4).unwrap_or(u64::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn default_eight_chunks_are_the_eight_words_of_the_answer() {
        let deltas = answer_deltas(3, 8);
        assert_eq!(
            deltas,
            [
                "This",
                " is",
                " a",
                " mock",
                " reply",
                " to",
                " 3",
                " messages."
            ]
        );
        assert_eq!(
            expected_content(3, 8),
            "This is a mock reply to 3 messages."
        );
    }

    #[test]
    fn singular_message_is_grammatical() {
        assert_eq!(expected_content(1, 1), "This is a mock reply to 1 message.");
    }

    #[test]
    fn more_chunks_than_words_repeat_the_sentence() {
        let deltas = answer_deltas(2, 10);
        assert_eq!(deltas.len(), 10);
        assert_eq!(deltas[8], " This");
        assert_eq!(
            expected_content(2, 10),
            "This is a mock reply to 2 messages. This is"
        );
    }

    #[test]
    fn zero_chunks_means_one_delta() {
        assert_eq!(answer_deltas(1, 0).len(), 1);
        assert_eq!(expected_content(1, 0), "This is a mock reply to 1 message.");
    }

    #[test]
    fn reasoning_starts_with_the_marker_and_differs_from_the_answer() {
        let reasoning = expected_reasoning(4, 8);
        assert!(reasoning.starts_with(REASONING_MARKER));
        assert!(!expected_content(4, 8).contains(REASONING_MARKER));
        assert!(expected_think_content(4, 8).starts_with("<think>\nLet me think"));
    }

    proptest! {
        #[test]
        fn deltas_are_non_empty_and_concatenate_to_the_expected_text(
            inputs in 0usize..1000,
            chunks in 0usize..200,
        ) {
            let deltas = answer_deltas(inputs, chunks);
            prop_assert_eq!(deltas.len(), clamp_chunks(chunks));
            prop_assert!(deltas.iter().all(|d| !d.is_empty()));
            prop_assert_eq!(deltas.concat(), expected_content(inputs, chunks));
            let reasoning = reasoning_deltas(inputs, chunks);
            prop_assert_eq!(reasoning.len(), clamp_chunks(chunks));
            prop_assert_eq!(reasoning.concat(), expected_reasoning(inputs, chunks));
        }
    }
}

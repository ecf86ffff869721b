//! Text to token ids for the watermark detector, so that `moat mark` can score the output of
//! any model: OpenAI's BPE encodings (`o200k_base`, `cl100k_base`, ranks embedded in the binary,
//! no network) and any Hugging Face `tokenizer.json` file.
//!
//! A watermark is keyed on the ids the generating model emitted, so the detector must
//! re-tokenize a response with that model's own tokenizer; this crate is the one place that
//! knows how. It exists apart from `moat-mark` so that the watermark crate stays pure and light:
//! the tokenizer libraries (regex engines, vocabularies of hundreds of thousands of entries)
//! are paid for only by the crates that turn text into ids, and `moat-mark` works on ids alone.
//!
//! This crate does no IO beyond reading the `tokenizer.json` file named in a spec; it never
//! downloads anything.

mod error;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

pub use error::Error;

/// The built-in encodings: accepted spec names, canonical name, size of the id space.
///
/// The sizes are tiktoken's `n_vocab` (largest id plus one, special tokens included); some ids
/// below it are unused, e.g. 199998 and 200000..=200017 in `o200k_base`.
const BUILTINS: [(&[&str], &str, usize); 2] = [
    (&["o200k", "o200k_base"], "o200k_base", 200_019),
    (&["cl100k", "cl100k_base"], "cl100k_base", 100_277),
];

/// A loaded tokenizer: a built-in OpenAI encoding or a Hugging Face `tokenizer.json`.
///
/// Encoding adds no special tokens (no BOS, no chat template): the ids are those of the text
/// alone, as a model emits them when it generates that text.
pub struct Tokenizer {
    name: String,
    vocab_size: usize,
    inner: Inner,
}

/// The backend behind a [`Tokenizer`].
enum Inner {
    /// An OpenAI BPE encoding through `tiktoken-rs`.
    Tiktoken(Box<tiktoken_rs::CoreBPE>),
    /// A Hugging Face tokenizer through `tokenizers`.
    HuggingFace(Box<tokenizers::Tokenizer>),
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let backend = match self.inner {
            Inner::Tiktoken(_) => "tiktoken",
            Inner::HuggingFace(_) => "huggingface",
        };
        f.debug_struct("Tokenizer")
            .field("name", &self.name)
            .field("backend", &backend)
            .field("vocab_size", &self.vocab_size)
            .finish()
    }
}

impl Tokenizer {
    /// Loads the tokenizer named by `spec`: `o200k` (or `o200k_base`), `cl100k` (or
    /// `cl100k_base`), or else a path to a Hugging Face `tokenizer.json` file.
    ///
    /// A spec that is not a built-in name and names no existing file is reported as an unknown
    /// tokenizer when it looks like a bare name, and as an unreadable file when it looks like a
    /// path (it contains a path separator or ends in `.json`).
    ///
    /// # Errors
    ///
    /// [`Error::UnknownSpec`], [`Error::Read`] or [`Error::Invalid`] as above;
    /// [`Error::Builtin`] if the embedded ranks fail to build (a bug in the dependency).
    pub fn load(spec: &str) -> Result<Tokenizer, Error> {
        for (aliases, name, vocab_size) in BUILTINS {
            if aliases.contains(&spec) {
                return Self::builtin(name, vocab_size);
            }
        }
        Self::from_file(spec)
    }

    /// Builds a built-in encoding from the ranks that `tiktoken-rs` embeds.
    fn builtin(name: &'static str, vocab_size: usize) -> Result<Tokenizer, Error> {
        let built = match name {
            "o200k_base" => tiktoken_rs::o200k_base(),
            _ => tiktoken_rs::cl100k_base(),
        };
        let bpe = built.map_err(|e| Error::Builtin {
            name,
            message: format!("{e:#}"),
        })?;
        Ok(Tokenizer {
            name: name.to_owned(),
            vocab_size,
            inner: Inner::Tiktoken(Box::new(bpe)),
        })
    }

    /// Loads a Hugging Face `tokenizer.json` file.
    fn from_file(spec: &str) -> Result<Tokenizer, Error> {
        let path = Path::new(spec);
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !looks_like_path(spec) => {
                return Err(Error::UnknownSpec {
                    spec: spec.to_owned(),
                })
            }
            Err(source) => {
                return Err(Error::Read {
                    path: path.to_owned(),
                    source,
                })
            }
        };
        let mut tokenizer =
            tokenizers::Tokenizer::from_bytes(&bytes).map_err(|source| Error::Invalid {
                path: path.to_owned(),
                source,
            })?;
        // Truncation or padding configured for training or serving would silently drop or add
        // ids; the detector must see exactly the ids of the text.
        tokenizer
            .with_truncation(None)
            .map_err(|source| Error::Invalid {
                path: path.to_owned(),
                source,
            })?;
        tokenizer.with_padding(None);
        // The id space, not the count of entries: ids of added tokens may leave gaps.
        let vocab_size = tokenizer
            .get_vocab(true)
            .into_values()
            .max()
            .map_or(0, |max| max as usize + 1);
        Ok(Tokenizer {
            name: spec.to_owned(),
            vocab_size,
            inner: Inner::HuggingFace(Box::new(tokenizer)),
        })
    }

    /// Turns `text` into token ids, adding no special tokens.
    ///
    /// For the built-in encodings, special-token strings in the text (such as `<|endoftext|>`)
    /// are encoded as the plain text they are. A Hugging Face tokenizer matches the added tokens
    /// its file declares, as `transformers` does with `add_special_tokens=False`.
    ///
    /// # Errors
    ///
    /// [`Error::Encode`] when the tokenizer fails on the text, which happens only for
    /// pathological inputs (e.g. a regex backtracking limit hit by a run of a million identical
    /// characters).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, Error> {
        match &self.inner {
            Inner::Tiktoken(bpe) => {
                // `tiktoken-rs` unwraps the regex engine's result, so an input that exceeds
                // fancy-regex's backtracking limit panics inside it; turn that into an error
                // instead of taking the caller down. The panic hook still prints its message.
                catch_unwind(AssertUnwindSafe(|| bpe.encode_ordinary(text))).map_err(|payload| {
                    Error::Encode {
                        tokenizer: self.name.clone(),
                        message: panic_message(payload.as_ref()),
                    }
                })
            }
            Inner::HuggingFace(tokenizer) => tokenizer
                .encode(text, false)
                .map(|encoding| encoding.get_ids().to_vec())
                .map_err(|e| Error::Encode {
                    tokenizer: self.name.clone(),
                    message: e.to_string(),
                }),
        }
    }

    /// Turns token ids back into text.
    ///
    /// Ids that end inside a multi-byte character (a window cut from a longer sequence) decode
    /// with U+FFFD replacement characters rather than failing, as Python's tiktoken does by
    /// default and as Hugging Face's byte-level decoder does.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownId`] for an id the tokenizer does not define; [`Error::Decode`] when a
    /// Hugging Face decoder fails.
    pub fn decode(&self, ids: &[u32]) -> Result<String, Error> {
        match &self.inner {
            Inner::Tiktoken(bpe) => bpe
                .decode_bytes(ids)
                .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
                .map_err(|e| Error::UnknownId {
                    tokenizer: self.name.clone(),
                    id: e.token,
                }),
            Inner::HuggingFace(tokenizer) => {
                // `tokenizers` skips unknown ids silently; report them like tiktoken does.
                if let Some(&id) = ids.iter().find(|&&id| tokenizer.id_to_token(id).is_none()) {
                    return Err(Error::UnknownId {
                        tokenizer: self.name.clone(),
                        id,
                    });
                }
                tokenizer.decode(ids, false).map_err(|e| Error::Decode {
                    tokenizer: self.name.clone(),
                    message: e.to_string(),
                })
            }
        }
    }

    /// The size of the id space: one more than the largest id the tokenizer defines, special
    /// and added tokens included. Some ids below it may be unused.
    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    /// The tokenizer's name: `o200k_base` or `cl100k_base` for the built-in encodings, the path
    /// as given for a `tokenizer.json` file.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Whether a spec that names no file was meant as a path rather than a tokenizer name.
fn looks_like_path(spec: &str) -> bool {
    spec.contains('/') || spec.contains(std::path::MAIN_SEPARATOR) || spec.ends_with(".json")
}

/// The message of a caught panic, when it carries one.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "the tokenizer panicked".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "Let's think step by step. 37 × 12 = 444. Ünïcödé ✓\n\tdone  ";

    fn load(spec: &str) -> Tokenizer {
        match Tokenizer::load(spec) {
            Ok(t) => t,
            Err(e) => panic!("loading {spec}: {e}"),
        }
    }

    fn round_trip(tokenizer: &Tokenizer, text: &str) -> Vec<u32> {
        let ids = tokenizer.encode(text).unwrap();
        assert!(!ids.is_empty(), "{}: no ids for {text:?}", tokenizer.name());
        assert_eq!(
            tokenizer.decode(&ids).unwrap(),
            text,
            "{}",
            tokenizer.name()
        );
        assert!(ids.iter().all(|&id| (id as usize) < tokenizer.vocab_size()));
        ids
    }

    #[test]
    fn builtins_round_trip_ascii_and_unicode() {
        for spec in ["o200k", "cl100k"] {
            let tokenizer = load(spec);
            round_trip(&tokenizer, SAMPLE);
            round_trip(&tokenizer, "日本語のテキスト、絵文字 🦀👍🏽 and Ελληνικά");
            assert_eq!(tokenizer.encode("").unwrap(), Vec::<u32>::new());
        }
    }

    #[test]
    fn aliases_load_the_same_encoding_under_its_canonical_name() {
        for (short, long) in [("o200k", "o200k_base"), ("cl100k", "cl100k_base")] {
            let (a, b) = (load(short), load(long));
            assert_eq!(a.name(), long);
            assert_eq!(b.name(), long);
            assert_eq!(a.encode(SAMPLE).unwrap(), b.encode(SAMPLE).unwrap());
        }
        assert_ne!(
            load("o200k").encode(SAMPLE).unwrap(),
            load("cl100k").encode(SAMPLE).unwrap()
        );
    }

    /// The expected ids are the ranks of `hello` and ` world` as listed in the `o200k_base`
    /// and `cl100k_base` rank files (looked up by their base64 entries, a source independent of
    /// the encoder).
    #[test]
    fn hello_world_gives_the_ranks_of_the_published_encodings() {
        assert_eq!(load("o200k").encode("hello world").unwrap(), [24912, 2375]);
        assert_eq!(load("cl100k").encode("hello world").unwrap(), [15339, 1917]);
    }

    #[test]
    fn special_token_text_is_encoded_as_plain_text() {
        for (spec, endoftext) in [("o200k", 199_999), ("cl100k", 100_257)] {
            let tokenizer = load(spec);
            let text = "before <|endoftext|> after <|endofprompt|><|fim_prefix|>";
            let ids = round_trip(&tokenizer, text);
            assert!(!ids.contains(&endoftext), "{spec}: {ids:?}");
            // The special id itself still decodes, for ids that came from elsewhere.
            assert_eq!(tokenizer.decode(&[endoftext]).unwrap(), "<|endoftext|>");
        }
    }

    #[test]
    fn builtin_vocab_size_is_the_id_space() {
        for (spec, size) in [("o200k", 200_019_u32), ("cl100k", 100_277)] {
            let tokenizer = load(spec);
            assert_eq!(tokenizer.vocab_size(), size as usize);
            assert!(tokenizer.decode(&[size - 1]).is_ok(), "{spec}");
            let err = tokenizer.decode(&[size]).unwrap_err();
            assert!(
                matches!(err, Error::UnknownId { id, .. } if id == size),
                "{err}"
            );
            assert!(err.to_string().contains(tokenizer.name()), "{err}");
        }
    }

    #[test]
    fn decoding_a_cut_multibyte_character_gives_replacement_characters() {
        let tokenizer = load("o200k");
        let ids = tokenizer.encode("✓").unwrap();
        // A single rare character may be one token; split its bytes with a byte-level token
        // sequence instead when it is.
        let bytes_ids = if ids.len() > 1 {
            ids
        } else {
            tokenizer.encode("🦀").unwrap()
        };
        assert!(bytes_ids.len() > 1);
        let text = tokenizer.decode(&bytes_ids[..1]).unwrap();
        assert!(text.contains('\u{fffd}'), "{text:?}");
    }

    /// Regression guard: `tiktoken-rs` 0.12 unwraps fancy-regex's backtracking error, so a
    /// million spaces panicked inside it (checked in this crate's first version); `encode` must
    /// return an error naming the tokenizer instead, or the ids if a later version copes.
    #[test]
    fn pathological_input_does_not_panic() {
        let tokenizer = load("o200k");
        for (c, n) in [
            (" ", 1_000_000),
            ("\n", 200_000),
            ("^", 200_000),
            ("a", 200_000),
        ] {
            let text = c.repeat(n);
            match tokenizer.encode(&text) {
                Ok(ids) => assert_eq!(tokenizer.decode(&ids).unwrap(), text),
                Err(err) => {
                    assert!(matches!(err, Error::Encode { .. }), "{err:?}");
                    assert!(err
                        .to_string()
                        .starts_with("tokenizer o200k_base cannot encode"));
                }
            }
        }
    }

    /// A small tokenizer.json in the WordLevel format, written by hand.
    const WORD_LEVEL: &str = r#"{
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": [
            {"id": 0, "content": "[UNK]", "single_word": false, "lstrip": false,
             "rstrip": false, "normalized": false, "special": true}
        ],
        "normalizer": null,
        "pre_tokenizer": {"type": "Whitespace"},
        "post_processor": null,
        "decoder": null,
        "model": {
            "type": "WordLevel",
            "vocab": {"[UNK]": 0, "hello": 1, "world": 2, "!": 3, "moat": 7},
            "unk_token": "[UNK]"
        }
    }"#;

    fn write_fixture(dir: &tempfile::TempDir, name: &str, contents: &str) -> String {
        let path = dir.path().join(name);
        std::fs::write(&path, contents).unwrap();
        path.to_str().unwrap().to_owned()
    }

    #[test]
    fn word_level_tokenizer_json_encodes_and_decodes() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_fixture(&dir, "tokenizer.json", WORD_LEVEL);
        let tokenizer = load(&path);
        assert_eq!(tokenizer.name(), path);
        assert_eq!(
            tokenizer.vocab_size(),
            8,
            "largest id plus one, not the entry count"
        );
        assert_eq!(tokenizer.encode("hello world!").unwrap(), [1, 2, 3]);
        assert_eq!(tokenizer.encode("hello sea").unwrap(), [1, 0]);
        assert_eq!(
            tokenizer.decode(&[1, 2, 3, 7]).unwrap(),
            "hello world ! moat"
        );
        let err = tokenizer.decode(&[1, 5]).unwrap_err();
        assert!(matches!(err, Error::UnknownId { id: 5, .. }), "{err}");
        assert!(err.to_string().contains(&path), "{err}");
    }

    #[test]
    fn truncation_and_padding_in_the_file_are_ignored() {
        let json = WORD_LEVEL
            .replace(
                r#""truncation": null"#,
                r#""truncation": {"direction": "Right", "max_length": 2, "strategy": "LongestFirst", "stride": 0}"#,
            )
            .replace(
                r#""padding": null"#,
                r#""padding": {"strategy": {"Fixed": 8}, "direction": "Right", "pad_to_multiple_of": null, "pad_id": 0, "pad_type_id": 0, "pad_token": "[UNK]"}"#,
            );
        let dir = tempfile::tempdir().unwrap();
        let path = write_fixture(&dir, "tokenizer.json", &json);
        let tokenizer = load(&path);
        assert_eq!(
            tokenizer.encode("hello world ! moat").unwrap(),
            [1, 2, 3, 7]
        );
    }

    /// A byte-level BPE tokenizer.json shaped like Llama 3's and Qwen's: a `Split` pre-tokenizer
    /// whose regex needs look-ahead (`\s+(?!\S)`, which fancy-regex must handle), byte-level
    /// mapping, a few merges and an added special token.
    fn byte_level_bpe_json() -> String {
        let mut alphabet: Vec<char> = tokenizers::pre_tokenizers::byte_level::ByteLevel::alphabet()
            .into_iter()
            .collect();
        alphabet.sort_unstable();
        assert_eq!(alphabet.len(), 256);
        let mut vocab: serde_json::Map<String, serde_json::Value> = alphabet
            .iter()
            .enumerate()
            .map(|(id, c)| (c.to_string(), id.into()))
            .collect();
        let merges = [
            ("h", "e"),
            ("l", "l"),
            ("he", "ll"),
            ("hell", "o"),
            ("Ġ", "w"),
        ];
        for (id, (a, b)) in merges.iter().enumerate() {
            vocab.insert(format!("{a}{b}"), (256 + id).into());
        }
        let merges: Vec<String> = merges.iter().map(|(a, b)| format!("{a} {b}")).collect();
        let split = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
        serde_json::json!({
            "version": "1.0",
            "truncation": null,
            "padding": null,
            "added_tokens": [{
                "id": 261, "content": "<|end_of_text|>", "single_word": false, "lstrip": false,
                "rstrip": false, "normalized": false, "special": true
            }],
            "normalizer": null,
            "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": split}, "behavior": "Isolated",
                 "invert": false},
                {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true,
                 "use_regex": false}
            ]},
            "post_processor": {"type": "ByteLevel", "add_prefix_space": true,
                               "trim_offsets": false, "use_regex": true},
            "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true,
                        "use_regex": true},
            "model": {
                "type": "BPE", "dropout": null, "unk_token": null,
                "continuing_subword_prefix": null, "end_of_word_suffix": null,
                "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                "vocab": vocab, "merges": merges
            }
        })
        .to_string()
    }

    #[test]
    fn byte_level_bpe_tokenizer_json_with_look_ahead_regex_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_fixture(&dir, "tokenizer.json", &byte_level_bpe_json());
        let tokenizer = load(&path);
        assert_eq!(tokenizer.vocab_size(), 262);
        let ids = round_trip(&tokenizer, "hello world");
        assert_eq!(
            ids[..2],
            [259, 260],
            "merges give `hello` and `Ġw`: {ids:?}"
        );
        round_trip(&tokenizer, SAMPLE);
        round_trip(&tokenizer, "a   b\n\n  c   ");
        let ids = round_trip(&tokenizer, "hello<|end_of_text|>");
        assert_eq!(ids, [259, 261]);
    }

    #[test]
    fn unknown_spec_names_the_spec_and_the_choices() {
        let err = Tokenizer::load("o300k").unwrap_err();
        assert!(matches!(err, Error::UnknownSpec { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            r#"unknown tokenizer "o300k": expected o200k, cl100k or a path to tokenizer.json"#
        );
    }

    #[test]
    fn missing_file_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokenizer.json");
        let path = path.to_str().unwrap();
        let err = Tokenizer::load(path).unwrap_err();
        assert!(matches!(err, Error::Read { .. }), "{err:?}");
        let message = err.to_string();
        assert!(
            message.starts_with(&format!("cannot read tokenizer file {path}: ")),
            "{message}"
        );
        // A bare name ending in .json is taken as a path, not as an unknown encoding.
        let err = Tokenizer::load("tokenizer-that-is-not-here.json").unwrap_err();
        assert!(matches!(err, Error::Read { .. }), "{err:?}");
    }

    #[test]
    fn malformed_or_foreign_json_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        for (name, contents) in [
            ("truncated.json", &WORD_LEVEL[..WORD_LEVEL.len() / 2]),
            ("not-a-tokenizer.json", r#"{"model": {"type": "Nope"}}"#),
            ("empty.json", ""),
        ] {
            let path = write_fixture(&dir, name, contents);
            let err = Tokenizer::load(&path).unwrap_err();
            assert!(matches!(err, Error::Invalid { .. }), "{name}: {err:?}");
            let message = err.to_string();
            assert!(
                message.starts_with(&format!("invalid tokenizer file {path}: ")),
                "{message}"
            );
        }
    }

    #[test]
    fn a_directory_is_an_unreadable_file() {
        let dir = tempfile::tempdir().unwrap();
        let err = Tokenizer::load(dir.path().to_str().unwrap()).unwrap_err();
        assert!(matches!(err, Error::Read { .. }), "{err:?}");
    }
}

//! The machinery the experiments share: the teacher, students, serving answers, reading a
//! text with a student, and scoring lists of (window, token) tuples.

use moat_mark::stats::{ln_binomial_sf, ln_gamma_sf, log10};
use moat_mark::{uniform, Key, Mode, Prf, Scorer, Statistic};
use rustc_hash::{FxHashMap, FxHashSet};
use serde::Serialize;

use crate::corpus::{pretraining_sequence, training_sequence, Corpus, Example, SEP};
use crate::generate::{master_key, rng, Generation, Generator, Marker};
use crate::model::LanguageModel;
use crate::ngram::{NgramBuilder, NgramLm};
use crate::{Error, Options, StudentKind};

/// A teacher trained on the corpus's teacher split, and what the experiments need around it.
#[derive(Debug)]
pub(crate) struct Lab<'a> {
    pub corpus: &'a Corpus,
    pub options: &'a Options,
    pub teacher: NgramLm,
    pub master: Key,
    /// The pre-trained neural student every neural student is fine-tuned from (trained on
    /// first use).
    #[cfg(feature = "neural")]
    neural_base: std::cell::OnceCell<crate::neural::NeuralLm>,
}

impl<'a> Lab<'a> {
    /// Trains the teacher.
    pub fn new(corpus: &'a Corpus, options: &'a Options) -> Result<Lab<'a>, Error> {
        if corpus.teacher.is_empty() || corpus.distill.is_empty() || corpus.heldout.is_empty() {
            return Err(Error::NotEnoughData(format!(
                "every reasoning split needs examples (teacher {}, distill {}, heldout {})",
                corpus.teacher.len(),
                corpus.distill.len(),
                corpus.heldout.len()
            )));
        }
        let mut builder = NgramBuilder::new(options.model.params())?;
        for example in &corpus.teacher {
            builder.add(&example.sequence(), 1.0)?;
        }
        let teacher = builder.build()?;
        tracing::info!(ngrams = teacher.size(), "teacher trained");
        Ok(Lab {
            corpus,
            options,
            teacher,
            master: master_key(options.seed),
            #[cfg(feature = "neural")]
            neural_base: std::cell::OnceCell::new(),
        })
    }

    /// A generator of answers from `lm`.
    pub fn generator<'g>(&self, lm: &'g dyn LanguageModel) -> Generator<'g> {
        Generator::new(
            lm,
            self.options.model.max_answer_tokens,
            self.options.model.repeat_guard,
        )
    }

    /// The teacher's answers to `prompts` under `marker`; the answer to the prompt at index
    /// `i` draws from stream (`purpose`, `i`), whatever else is served.
    pub fn serve<'p>(
        &self,
        generator: &mut Generator<'_>,
        marker: &Marker,
        prompts: impl IntoIterator<Item = (u64, &'p [u32])>,
        purpose: &str,
    ) -> Vec<Generation> {
        prompts
            .into_iter()
            .map(|(i, prompt)| {
                generator.answer(marker, prompt, &mut rng(self.options.seed, purpose, i))
            })
            .collect()
    }

    /// A student of the kind `model.student` asks for, fine-tuned on `fine_tune` sequences.
    pub fn student(&self, fine_tune: &[Vec<u32>]) -> Result<Box<dyn LanguageModel>, Error> {
        match self.options.model.student {
            StudentKind::Ngram => Ok(Box::new(self.ngram_student(fine_tune)?)),
            #[cfg(feature = "neural")]
            StudentKind::Neural => Ok(Box::new(self.neural_student(fine_tune)?)),
            #[cfg(not(feature = "neural"))]
            StudentKind::Neural => Err(Error::no_neural_feature()),
        }
    }

    /// The neural student every neural student is fine-tuned from: vocabulary from the
    /// general and distill texts, pre-trained on the general text (on first use, then kept).
    #[cfg(feature = "neural")]
    fn neural_base(&self) -> Result<&crate::neural::NeuralLm, Error> {
        if let Some(base) = self.neural_base.get() {
            return Ok(base);
        }
        let options = &self.options.model.neural;
        let pretrain: Vec<Vec<u32>> = self
            .corpus
            .pretrain
            .iter()
            .map(|text| pretraining_sequence(text))
            .collect();
        let distill: Vec<Vec<u32>> = self.corpus.distill.iter().map(Example::sequence).collect();
        let texts = pretrain.iter().chain(&distill).map(Vec::as_slice);
        let mut base = crate::neural::NeuralLm::new(options, texts, self.options.seed)?;
        let sequences: Vec<&[u32]> = pretrain.iter().map(Vec::as_slice).collect();
        base.train(
            &sequences,
            options.pretrain_epochs,
            self.options.seed,
            "neural-pretrain",
        )?;
        tracing::info!(
            vocabulary = base.vocabulary_size(),
            "neural student pre-trained"
        );
        Ok(self.neural_base.get_or_init(|| base))
    }

    /// A neural student: a copy of the pre-trained base, fine-tuned on `fine_tune` for
    /// `model.neural.fine_tune_epochs` passes.
    #[cfg(feature = "neural")]
    fn neural_student(&self, fine_tune: &[Vec<u32>]) -> Result<crate::neural::NeuralLm, Error> {
        let mut student = self.neural_base()?.clone();
        let sequences: Vec<&[u32]> = fine_tune.iter().map(Vec::as_slice).collect();
        student.train(
            &sequences,
            self.options.model.neural.fine_tune_epochs,
            self.options.seed,
            "neural-fine-tune",
        )?;
        Ok(student)
    }

    /// An n-gram student: pre-trained on the general text (weight 1), fine-tuned on
    /// `fine_tune` sequences (weight `model.fine_tune_weight`).
    pub fn ngram_student(&self, fine_tune: &[Vec<u32>]) -> Result<NgramLm, Error> {
        let weight = self.options.model.fine_tune_weight as f32;
        let mut builder = NgramBuilder::new(self.options.model.params())?;
        for text in &self.corpus.pretrain {
            builder.add(&pretraining_sequence(text), 1.0)?;
        }
        for sequence in fine_tune {
            builder.add(sequence, weight)?;
        }
        builder.build()
    }

    /// The order in which distill-split questions enter fine-tuning sets (seeded shuffle),
    /// cut to `samples` (`0` keeps all).
    pub fn fine_tune_order(&self, samples: usize) -> Vec<usize> {
        use rand::seq::SliceRandom;
        let mut order: Vec<usize> = (0..self.corpus.distill.len()).collect();
        order.shuffle(&mut rng(self.options.seed, "fine-tune-order", 0));
        if samples > 0 {
            order.truncate(samples);
        }
        order
    }

    /// A fine-tuning set over `order`: the first `served.len()` questions with the served
    /// answers, the rest with their human answers.
    pub fn fine_tune_set(&self, order: &[usize], served: &[Generation]) -> Vec<Vec<u32>> {
        order
            .iter()
            .enumerate()
            .map(|(j, &i)| {
                let example = &self.corpus.distill[i];
                match served.get(j) {
                    Some(g) => training_sequence(&example.prompt, &g.tokens),
                    None => example.sequence(),
                }
            })
            .collect()
    }

    /// `lm`'s plain answers to `prompts` until `tokens` tokens were generated, cycling through
    /// the prompts with fresh streams; pairs of (prompt index, answer).
    pub fn closed_answers(
        &self,
        lm: &dyn LanguageModel,
        prompts: &[&[u32]],
        tokens: usize,
        purpose: &str,
    ) -> Vec<(usize, Vec<u32>)> {
        let mut generator = self.generator(lm);
        let mut answers = Vec::new();
        if prompts.is_empty() {
            return answers;
        }
        let mut total = 0;
        let mut draw = 0u64;
        while total < tokens {
            let i = (draw % prompts.len() as u64) as usize;
            let g = generator.answer(
                &Marker::Plain,
                prompts[i],
                &mut rng(self.options.seed, purpose, draw),
            );
            draw += 1;
            // A degenerate model that only ever ends at once would never reach the budget.
            total += g.tokens.len().max(1);
            answers.push((i, g.tokens));
        }
        answers
    }
}

/// A list of (window, token) tuples of one width, stored flat.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Tuples {
    width: usize,
    data: Vec<u32>,
}

impl Tuples {
    pub fn new(width: usize) -> Tuples {
        Tuples {
            width,
            data: Vec::new(),
        }
    }

    /// Every position of `text` with a full window inside it.
    pub fn push_text(&mut self, text: &[u32]) {
        for i in self.width..text.len() {
            self.data.extend_from_slice(&text[i - self.width..=i]);
        }
    }

    pub fn push(&mut self, window: &[u32], token: u32) {
        self.data.extend_from_slice(window);
        self.data.push(token);
    }

    pub fn len(&self) -> usize {
        self.data.len() / (self.width + 1)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&[u32], u32)> {
        self.data
            .chunks_exact(self.width + 1)
            .map(|c| (&c[..c.len() - 1], c[c.len() - 1]))
    }

    /// The tuples outside the tuples of `excluded` texts and not seen before, in order. The
    /// result does not depend on the key; under ordered windows it is exactly what a
    /// [`Scorer`] without filter counts (a tuple is its own identity), under SelfHash a superset
    /// (the scorer also merges tuples of equal identity).
    pub fn unique(&self, excluded: &[&[u32]]) -> Tuples {
        let mut skip: FxHashSet<&[u32]> = FxHashSet::default();
        for text in excluded {
            for i in self.width..text.len() {
                skip.insert(&text[i - self.width..=i]);
            }
        }
        let mut seen: FxHashSet<&[u32]> = FxHashSet::default();
        let mut out = Tuples::new(self.width);
        for tuple in self.data.chunks_exact(self.width + 1) {
            if !skip.contains(tuple) && seen.insert(tuple) {
                out.data.extend_from_slice(tuple);
            }
        }
        out
    }
}

/// log10 p at a number of scored tuples.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Point {
    /// Tuples scored.
    pub scored: u64,
    /// log10 of the p-value after them.
    pub log10_p: f64,
}

/// A test's p-value as tuples accumulate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Curve {
    /// At each checkpoint reached.
    pub points: Vec<Point>,
    /// After every tuple.
    pub last: Point,
}

impl Curve {
    /// log10 p at `scored` tuples, if the test got that far.
    pub fn at(&self, scored: u64) -> Option<f64> {
        self.points
            .iter()
            .find(|p| p.scored == scored)
            .map(|p| p.log10_p)
    }
}

/// What a test is fed besides the tuples.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Feed<'t> {
    /// Our own prompts: their tuples are excluded.
    pub prompts: &'t [&'t [u32]],
    /// Pre-registered filter: when given, only positions whose window occurs in these texts
    /// are scored.
    pub filter: Option<&'t [&'t [u32]]>,
}

/// A fresh [`Scorer`] fed with `feed`.
pub(crate) fn scorer(prf: Prf, statistic: Statistic, feed: Feed<'_>) -> Result<Scorer, Error> {
    let mut scorer = Scorer::new(prf, statistic)?;
    for prompt in feed.prompts {
        scorer.exclude_prompt(prompt);
    }
    if let Some(filter) = feed.filter {
        for text in filter {
            scorer.register_filter(text);
        }
    }
    Ok(scorer)
}

/// Scores `tuples` in order with a fresh scorer, noting log10 p at each checkpoint.
pub(crate) fn curve(
    prf: Prf,
    statistic: Statistic,
    feed: Feed<'_>,
    tuples: &Tuples,
    checkpoints: &[u64],
) -> Result<Curve, Error> {
    let mut scorer = scorer(prf, statistic, feed)?;
    let mut points = Vec::new();
    for (window, token) in tuples.iter() {
        if scorer.score_tuple(window, token) && checkpoints.contains(&scorer.scored()) {
            points.push(Point {
                scored: scorer.scored(),
                log10_p: scorer.score()?.log10_p,
            });
        }
    }
    Ok(Curve {
        points,
        last: last_point(&scorer)?,
    })
}

/// The scorer's current point; nothing scored reads as p = 1.
pub(crate) fn last_point(scorer: &Scorer) -> Result<Point, Error> {
    if scorer.scored() == 0 {
        return Ok(Point {
            scored: 0,
            log10_p: 0.0,
        });
    }
    Ok(Point {
        scored: scorer.scored(),
        log10_p: scorer.score()?.log10_p,
    })
}

/// The test of `unique` (tuples already [`Tuples::unique`]d against `excluded`) under `prf`,
/// optionally restricted to positions whose window occurs in `filter` texts, exactly as a
/// [`Scorer`] fed
/// `excluded` as prompts, `filter` as its filter and then the tuples would find it. Under
/// ordered windows a tuple's identity is the tuple itself, so the key-independent selection
/// already made is the scorer's and the statistic is summed directly (fast enough for
/// thousands of keys); under SelfHash identities depend on the key and a scorer runs.
pub(crate) fn test_unique(
    prf: Prf,
    statistic: Statistic,
    excluded: &[&[u32]],
    unique: &Tuples,
    filter: Option<&[&[u32]]>,
) -> Result<Point, Error> {
    if prf.context().mode() != Mode::Ordered {
        let feed = Feed {
            prompts: excluded,
            filter,
        };
        return Ok(curve(prf, statistic, feed, unique, &[])?.last);
    }
    let width = unique.width;
    // The filter holds windows (SCHEME.md, rule 3): the `h` tokens before each position.
    let allowed: Option<FxHashSet<&[u32]>> = filter.map(|texts| {
        texts
            .iter()
            .flat_map(|text| (width..text.len()).map(move |i| &text[i - width..i]))
            .collect()
    });
    let kept = unique
        .data
        .chunks_exact(width + 1)
        .filter(|tuple| allowed.as_ref().is_none_or(|a| a.contains(&tuple[..width])))
        .map(|tuple| uniform(prf.value(&tuple[..width], tuple[width])));
    let (mut n, mut green, mut sum) = (0u64, 0u64, 0.0);
    for u in kept {
        n += 1;
        match statistic {
            Statistic::Green { gamma } => green += u64::from(u < gamma),
            Statistic::Gumbel => sum += -(-u).ln_1p(),
        }
    }
    let log10_p = match (n, statistic) {
        (0, _) => 0.0,
        (_, Statistic::Green { gamma }) => log10(ln_binomial_sf(green, n, gamma)),
        (_, Statistic::Gumbel) => log10(ln_gamma_sf(n, sum)),
    };
    Ok(Point { scored: n, log10_p })
}

/// Reads texts with a model (reading mode), remembering the model's top-1 prediction per
/// context across calls.
#[derive(Debug)]
pub(crate) struct Reader<'m> {
    lm: &'m dyn LanguageModel,
    /// The prediction depends on the context key only.
    cache: FxHashMap<u128, Option<u32>>,
    scratch: Vec<(u32, f64)>,
}

impl<'m> Reader<'m> {
    pub fn new(lm: &'m dyn LanguageModel) -> Reader<'m> {
        Reader {
            lm,
            cache: FxHashMap::default(),
            scratch: Vec::new(),
        }
    }

    /// Reading mode: the model reads `prompt ‖ SEP ‖ text` for every (prompt, text) and
    /// predicts each token of `text`; each prediction is paired with the `width` tokens
    /// before it. Stops after `max_positions` predictions. Returns the tuples and how many
    /// predictions equalled the token actually there.
    pub fn read(
        &mut self,
        width: usize,
        texts: &[(&[u32], &[u32])],
        max_positions: usize,
    ) -> (Tuples, usize) {
        let mut tuples = Tuples::new(width);
        let mut matches = 0;
        let mut sequence = Vec::new();
        'texts: for (prompt, text) in texts {
            sequence.clear();
            sequence.extend_from_slice(prompt);
            sequence.push(SEP);
            let start = sequence.len();
            sequence.extend_from_slice(text);
            for i in start.max(width)..sequence.len() {
                if tuples.len() >= max_positions {
                    break 'texts;
                }
                let history = &sequence[..i];
                let key = self.lm.context_key(history);
                let (lm, scratch) = (self.lm, &mut self.scratch);
                let prediction = *self
                    .cache
                    .entry(key)
                    .or_insert_with(|| lm.top1(history, scratch));
                let Some(prediction) = prediction else {
                    continue;
                };
                matches += usize::from(prediction == sequence[i]);
                tuples.push(&sequence[i - width..i], prediction);
            }
        }
        (tuples, matches)
    }
}

/// Prompt and answer slices of examples.
pub(crate) fn pairs(examples: &[Example]) -> Vec<(&[u32], &[u32])> {
    examples
        .iter()
        .map(|e| (e.prompt.as_slice(), e.answer.as_slice()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use moat_mark::Context;

    #[test]
    fn fast_scoring_equals_the_scorer() {
        let key = Key::from_bytes([9; 32]);
        let texts: Vec<Vec<u32>> = (0..20u32)
            .map(|i| (0..50u32).map(|j| (i * 7 + j * j) % 31).collect())
            .collect();
        let prompt: Vec<u32> = (0..10).collect();
        for (h, mode) in [(1, Mode::Ordered), (2, Mode::Ordered), (3, Mode::SelfHash)] {
            let prf = Prf::new(&key, Context::new(h, mode).expect("context"));
            let mut tuples = Tuples::new(h);
            for t in &texts {
                tuples.push_text(t);
            }
            for statistic in [Statistic::Green { gamma: 0.25 }, Statistic::Gumbel] {
                let prompts = [prompt.as_slice()];
                let feed = Feed {
                    prompts: &prompts,
                    filter: None,
                };
                let slow = curve(prf.clone(), statistic, feed, &tuples, &[]).expect("curve");
                let unique = tuples.unique(&prompts);
                if mode == Mode::Ordered {
                    assert_eq!(unique.len() as u64, slow.last.scored);
                }
                let fast =
                    test_unique(prf.clone(), statistic, &prompts, &unique, None).expect("test");
                assert_eq!(fast.scored, slow.last.scored);
                assert!(
                    (fast.log10_p - slow.last.log10_p).abs() < 1e-9,
                    "{fast:?} {slow:?}"
                );
                // With a filter: the texts' second half.
                let halves: Vec<&[u32]> = texts[10..].iter().map(Vec::as_slice).collect();
                let filtered = Feed {
                    prompts: &prompts,
                    filter: Some(&halves),
                };
                let slow = curve(prf.clone(), statistic, filtered, &tuples, &[]).expect("curve");
                let fast = test_unique(prf.clone(), statistic, &prompts, &unique, Some(&halves))
                    .expect("test");
                assert_eq!(fast.scored, slow.last.scored, "{h} {mode:?}");
                assert!(
                    (fast.log10_p - slow.last.log10_p).abs() < 1e-9,
                    "{fast:?} {slow:?}"
                );
            }
        }
    }

    #[test]
    fn curve_records_checkpoints() {
        let prf = Prf::new(
            &Key::from_bytes([2; 32]),
            Context::new(1, Mode::Ordered).expect("context"),
        );
        let mut tuples = Tuples::new(1);
        tuples.push_text(&(0..100u32).collect::<Vec<_>>());
        let c = curve(
            prf,
            Statistic::Gumbel,
            Feed::default(),
            &tuples,
            &[10, 50, 500],
        )
        .expect("curve");
        assert_eq!(c.points.len(), 2);
        assert_eq!(c.last.scored, 99);
        assert!(c.at(50).is_some() && c.at(500).is_none());
    }
}

//! Test vectors for other implementations of the scheme (the Python package in `python/`):
//! key derivation, PRF values and uniforms, KGW biases, Gumbel choices and detection scores,
//! all computed by this crate. `moat mark vectors` writes them to a file.

use serde_json::{json, Value};

use crate::prf::{uniform, Context, Mode, Prf};
use crate::scheme::{Gumbel, Kgw};
use crate::score::{Scorer, Statistic};
use crate::{Error, Key};

/// A SplitMix64 stream: the vectors' own deterministic filler.
struct Stream(u64);

impl Stream {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        crate::prf::mix(self.0)
    }
    fn below(&mut self, n: u64) -> u32 {
        (self.next() % n) as u32
    }
    fn logits(&mut self, n: usize) -> Vec<f32> {
        (0..n)
            .map(|_| (uniform(self.next()) * 8.0 - 4.0) as f32)
            .collect()
    }
    fn tokens(&mut self, n: usize, vocab: u64) -> Vec<u32> {
        (0..n).map(|_| self.below(vocab)).collect()
    }
}

fn contexts() -> Result<Vec<Context>, Error> {
    [
        (0, Mode::Ordered),
        (1, Mode::Ordered),
        (3, Mode::Ordered),
        (1, Mode::SelfHash),
        (4, Mode::SelfHash),
    ]
    .into_iter()
    .map(|(h, m)| Context::new(h, m))
    .collect()
}

/// Every vector, as the JSON document described in `python/tests/test_vectors.py`.
pub fn generate() -> Result<Value, Error> {
    let master = Key::from_bytes(std::array::from_fn(|i| i as u8));
    let mut rng = Stream(2026);

    let mut keys = Vec::new();
    let mut derived = Vec::new();
    for scope in [
        "campaign:a",
        "campaign:b",
        "cohort:eu-free",
        "scope with spaces ✓",
    ] {
        let key = master.derive(scope);
        let (k0, k1) = key.prf_words();
        keys.push(json!({
            "master_hex": master.to_hex(),
            "scope": scope,
            "key_hex": key.to_hex(),
            "key_id": key.id().to_string(),
            "k0": k0.to_string(),
            "k1": k1.to_string(),
        }));
        derived.push(key);
    }

    let mut prf_cases = Vec::new();
    let mut kgw_cases = Vec::new();
    let mut gumbel_cases = Vec::new();
    let mut detect_cases = Vec::new();
    for (ci, context) in contexts()?.into_iter().enumerate() {
        let key = &derived[ci % derived.len()];
        let prf = Prf::new(key, context);
        let h = context.width();
        let common = |v: &mut Value| {
            v["key_hex"] = json!(key.to_hex());
            v["mode"] = json!(context.mode().name());
            v["h"] = json!(h);
        };

        // PRF values of a spread of token ids, including the extremes.
        let window = rng.tokens(h, 200_000);
        let mut tokens = vec![0, 1, 2, 255, 65_535, 100_276, 199_997, u32::MAX];
        tokens.extend(rng.tokens(8, 1 << 32));
        let values: Vec<u64> = tokens.iter().map(|&t| prf.value(&window, t)).collect();
        let mut case = json!({
            "window": window,
            "tokens": tokens,
            "values": values.iter().map(u64::to_string).collect::<Vec<_>>(),
            "uniforms": values.iter().map(|&v| uniform(v)).collect::<Vec<_>>(),
        });
        common(&mut case);
        prf_cases.push(case);

        // KGW over a small vocabulary, with context long enough and (once) too short.
        for (gamma, delta, len) in [
            (0.25, 2.0, h + 3),
            (0.5, 1.0, h + 1),
            (0.1, 4.0, h.saturating_sub(1)),
        ] {
            let kgw = Kgw::new(prf.clone(), gamma, delta)?;
            let input_ids = rng.tokens(len, 64);
            let logits = rng.logits(64);
            let mut biased = logits.clone();
            kgw.bias(&input_ids, &mut biased);
            let mut case = json!({
                "gamma": gamma,
                "delta": delta,
                "input_ids": input_ids,
                "logits": logits,
                "biased": biased,
            });
            common(&mut case);
            kgw_cases.push(case);
        }

        // Gumbel choices at two temperatures, and once with masked (−∞) logits.
        {
            let gumbel = Gumbel::new(prf.clone(), 1.0)?;
            let input_ids = rng.tokens(h + 2, 64);
            let mut logits = rng.logits(64);
            for l in logits.iter_mut().step_by(3) {
                *l = f32::NEG_INFINITY;
            }
            let token = gumbel.choose(&input_ids, &logits);
            let mut case = json!({
                "temperature": 1.0,
                "input_ids": input_ids,
                "logits": logits.iter().map(|&l| if l.is_finite() { Some(l) } else { None }).collect::<Vec<_>>(),
                "token": token,
            });
            common(&mut case);
            gumbel_cases.push(case);
        }
        // Gumbel choices at two temperatures.
        for temperature in [1.0, 0.7] {
            let gumbel = Gumbel::new(prf.clone(), temperature)?;
            for _ in 0..3 {
                let input_ids = rng.tokens(h + 2, 64);
                let logits = rng.logits(64);
                let token = gumbel.choose(&input_ids, &logits);
                let mut case = json!({
                    "temperature": temperature,
                    "input_ids": input_ids,
                    "logits": logits,
                    "token": token,
                });
                common(&mut case);
                gumbel_cases.push(case);
            }
        }

        // Detection with duplicates, a prompt to exclude, and once a filter; two of the
        // texts are unmarked, one is watermarked (KGW-greedy), one Gumbel-chosen, so the tails
        // go deep.
        let kgw = Kgw::new(prf.clone(), 0.25, 6.0)?;
        let gumbel = Gumbel::new(prf.clone(), 1.0)?;
        let mut marked = rng.tokens(h.max(1), 200);
        let mut chosen = rng.tokens(h.max(1), 200);
        for _ in 0..80 {
            let mut logits = rng.logits(200);
            kgw.bias(&marked, &mut logits);
            let best = (0u32..)
                .zip(&logits)
                .fold(
                    (0u32, f32::NEG_INFINITY),
                    |b, (t, &l)| {
                        if l > b.1 {
                            (t, l)
                        } else {
                            b
                        }
                    },
                );
            marked.push(best.0);
            let logits = rng.logits(200);
            chosen.push(gumbel.choose(&chosen, &logits).unwrap_or(0));
        }
        let texts: Vec<Vec<u32>> = vec![rng.tokens(40, 30), rng.tokens(40, 30), marked, chosen];
        let prompts = vec![texts[0][..12].to_vec()];
        for (statistic, with_filter) in [
            (Statistic::Green { gamma: 0.25 }, false),
            (Statistic::Gumbel, false),
            (Statistic::Green { gamma: 0.5 }, true),
        ] {
            let filter: Option<Vec<Vec<u32>>> = with_filter.then(|| {
                let served = &texts[1];
                (h..served.len())
                    .map(|i| served[i - h..i].to_vec())
                    .take(15)
                    .collect()
            });
            detect_cases.push(detect_case(key, &prf, statistic, &texts, &prompts, filter)?);
        }
    }

    // Selfhash identities: windows that differ only in tokens not holding the minimum share
    // one identity, so the second and third texts score nothing new.
    for h in [2usize, 3] {
        let context = Context::new(h, Mode::SelfHash)?;
        let key = &derived[h % derived.len()];
        let prf = Prf::new(key, context);
        let (a, t) = (11u32, 12u32);
        let floor = prf.ctx(a).min(prf.ctx(t));
        let high: Vec<u32> = (100u32..100_000)
            .filter(|&c| prf.ctx(c) > floor)
            .take(3)
            .collect();
        let texts: Vec<Vec<u32>> = high
            .iter()
            .map(|&b| {
                let mut text = vec![b; h - 1];
                text.extend([a, t, a, t]);
                text
            })
            .collect();
        for statistic in [Statistic::Green { gamma: 0.25 }, Statistic::Gumbel] {
            detect_cases.push(detect_case(key, &prf, statistic, &texts, &[], None)?);
        }
    }

    Ok(json!({
        "scheme": "moat-mark/v1",
        "keys": keys,
        "prf": prf_cases,
        "kgw": kgw_cases,
        "gumbel": gumbel_cases,
        "detect": detect_cases,
    }))
}

/// One detection vector: `texts` scored under `prf` with `prompts` excluded and, when given,
/// only the windows of `filter`.
fn detect_case(
    key: &Key,
    prf: &Prf,
    statistic: Statistic,
    texts: &[Vec<u32>],
    prompts: &[Vec<u32>],
    filter: Option<Vec<Vec<u32>>>,
) -> Result<Value, Error> {
    let mut scorer = Scorer::new(prf.clone(), statistic)?;
    for p in prompts {
        scorer.exclude_prompt(p);
    }
    for window in filter.iter().flatten() {
        scorer.register_window(window);
    }
    for t in texts {
        scorer.score_text(t);
    }
    let score = scorer.score()?;
    let context = prf.context();
    let mut case = json!({
        "key_hex": key.to_hex(),
        "mode": context.mode().name(),
        "h": context.width(),
        "texts": texts,
        "prompts": prompts,
        "filter": filter,
        "scored": score.scored,
        "log10_p": score.log10_p,
    });
    match statistic {
        Statistic::Green { gamma } => {
            case["scheme"] = json!("kgw");
            case["gamma"] = json!(gamma);
            case["green"] = json!(score.green);
        }
        Statistic::Gumbel => {
            case["scheme"] = json!("gumbel");
            case["score"] = json!(score.sum);
        }
    }
    Ok(case)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_are_deterministic_and_complete() {
        let a = generate().expect("vectors");
        let b = generate().expect("vectors");
        assert_eq!(a, b);
        assert_eq!(a["prf"].as_array().map(Vec::len), Some(5));
        assert_eq!(a["kgw"].as_array().map(Vec::len), Some(15));
        assert_eq!(a["gumbel"].as_array().map(Vec::len), Some(35));
        assert_eq!(a["detect"].as_array().map(Vec::len), Some(19));
    }
}

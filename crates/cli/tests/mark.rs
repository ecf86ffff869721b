//! End-to-end tests of `moat mark`: keys, detection, attribution and the committed test
//! vectors, on watermarked text the tests write themselves.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{ok, p, run_moat};
use moat_mark::{mix, uniform, Context, Key, Kgw, Mode, Prf};
use moat_tokenize::Tokenizer;
use serde_json::Value;

/// Runs `moat` with a command line split on whitespace (the tests' paths have no spaces).
fn run(line: &str) -> Output {
    let args: Vec<&str> = line.split_whitespace().collect();
    run_moat(&args)
}

fn err(out: &Output) -> String {
    assert!(!out.status.success(), "moat succeeded unexpectedly");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

const WORDS: &str = "the of and to in is was for that with as on by at from his her they \
    this which or had are but not have one all were when we there can an your their said if \
    do will each about how up out them then she many some so these would other into has more \
    two like him see time could no make than first been its who now people my made over did \
    down only way find use may water long little very after words called just where most know \
    get through back much before go good new write our used me man too any day same right look \
    think also around another came come work three word must because does part even place well \
    such here take why things help put years different away again off went old number great \
    tell men say small every found still between name should home big give air line set own \
    under read last never us left end along while might next sound below saw something thought \
    both few those always looked show large often together asked house world going want school";

/// Single-token words of o200k (with their leading space), so that text made of them
/// tokenizes back to the same ids.
fn vocabulary(tokenizer: &Tokenizer) -> Vec<(u32, String)> {
    let mut vocab: Vec<(u32, String)> = WORDS
        .split_whitespace()
        .filter_map(|w| {
            let word = format!(" {w}");
            let ids = tokenizer.encode(&word).ok()?;
            (ids.len() == 1).then(|| (ids[0], word))
        })
        .collect();
    vocab.sort();
    vocab.dedup_by_key(|(id, _)| *id);
    vocab
}

/// Text sampled uniformly over the vocabulary, KGW-biased under `key` (h = 1) when given.
fn text(tokenizer: &Tokenizer, key: Option<&Key>, words: usize, seed: u64) -> String {
    let vocab = vocabulary(tokenizer);
    assert!(vocab.len() > 150, "{}", vocab.len());
    let context = Context::new(1, Mode::Ordered).unwrap();
    let kgw = key.map(|k| Kgw::new(Prf::new(k, context), 0.25, 3.0).unwrap());
    let mut ids = vec![vocab[0].0];
    let mut out = vocab[0].1.clone();
    let mut state = seed;
    for _ in 0..words {
        let mut candidates: Vec<(u32, f64)> = vocab.iter().map(|(id, _)| (*id, 0.0)).collect();
        if let Some(kgw) = &kgw {
            kgw.bias_sparse(&ids, &mut candidates);
        }
        let total: f64 = candidates.iter().map(|(_, l)| l.exp()).sum();
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let r = uniform(mix(state)) * total;
        let mut acc = 0.0;
        let mut pick = candidates.len() - 1;
        for (i, (_, l)) in candidates.iter().enumerate() {
            acc += l.exp();
            if r < acc {
                pick = i;
                break;
            }
        }
        let (id, word) = &vocab
            .iter()
            .find(|(id, _)| *id == candidates[pick].0)
            .unwrap();
        ids.push(*id);
        out.push_str(word);
    }
    out
}

struct Setup {
    _dir: tempfile::TempDir,
    master: PathBuf,
    keyring: PathBuf,
    marked_b: PathBuf,
    clean: PathBuf,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let master = dir.path().join("master.key");
    let keyring = dir.path().join("keyring.json");
    let out = ok(&run(&format!("mark keygen --out {}", p(&master))));
    assert!(out.contains("key id"), "{out}");
    let hex = std::fs::read_to_string(&master).unwrap();
    let key = Key::from_hex(&hex).unwrap();
    let out = ok(&run(&format!("mark derive --master {} --scope campaign:a --scope campaign:b --scope campaign:c --keyring {}", p(&master), p(&keyring))));
    // Ids are shown, keys never.
    let b = key.derive("campaign:b");
    assert!(out.contains(&b.id().to_string()), "{out}");
    assert!(!out.contains(&b.to_hex()), "{out}");
    assert!(!out.contains(hex.trim()), "{out}");

    let tokenizer = Tokenizer::load("o200k").unwrap();
    let marked_b = dir.path().join("marked_b.txt");
    std::fs::write(&marked_b, text(&tokenizer, Some(&b), 300, 1)).unwrap();
    let clean = dir.path().join("clean.txt");
    std::fs::write(&clean, text(&tokenizer, None, 300, 2)).unwrap();
    Setup {
        _dir: dir,
        master,
        keyring,
        marked_b,
        clean,
    }
}

fn log10_p(json: &str) -> f64 {
    let v: Value = serde_json::from_str(json.trim()).unwrap();
    v["log10_p"].as_f64().unwrap()
}

#[test]
fn keygen_refuses_to_overwrite_and_is_private() {
    let dir = tempfile::tempdir().unwrap();
    let master = dir.path().join("m.key");
    ok(&run(&format!("mark keygen --out {}", p(&master))));
    let first = std::fs::read_to_string(&master).unwrap();
    let e = err(&run(&format!("mark keygen --out {}", p(&master))));
    assert!(e.contains("refusing to overwrite"), "{e}");
    assert_eq!(std::fs::read_to_string(&master).unwrap(), first);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&master).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn detects_the_served_key_and_nothing_else() {
    let s = setup();
    let detect_p = |scope: &str, file: &Path| {
        log10_p(&ok(&run_moat(&[
            "mark",
            "detect",
            "--keyring",
            &p(&s.keyring),
            "--scope",
            scope,
            "--context",
            "1",
            "--json",
            &p(file),
        ])))
    };
    let own = detect_p("campaign:b", &s.marked_b);
    assert!(own < -15.0, "{own}");
    assert!(detect_p("campaign:a", &s.marked_b) > -4.0);
    assert!(detect_p("campaign:b", &s.clean) > -4.0);

    // Half of the text given as our prompt: its tuples are skipped, the rest still scores.
    let marked = std::fs::read_to_string(&s.marked_b).unwrap();
    let half: String = marked.split_inclusive(' ').take(150).collect();
    let prompt = s.marked_b.with_file_name("prompt.txt");
    std::fs::write(&prompt, half).unwrap();
    let out = ok(&run(&format!(
        "mark detect --keyring {} --scope campaign:b --json --prompts {} {}",
        p(&s.keyring),
        p(&prompt),
        p(&s.marked_b)
    )));
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert!(v["skipped"]["in_prompts"].as_u64().unwrap() > 100, "{out}");
    assert!(v["log10_p"].as_f64().unwrap() < -5.0, "{out}");
    // The whole text as prompt: nothing is left to score.
    let e = err(&run(&format!(
        "mark detect --keyring {} --scope campaign:b --prompts {} {}",
        p(&s.keyring),
        p(&s.marked_b),
        p(&s.marked_b)
    )));
    assert!(e.contains("too short") && e.contains("in prompts"), "{e}");
}

#[test]
fn attributes_campaign_b_only() {
    let s = setup();
    let out = ok(&run(&format!("mark attribute --master {} --candidate campaign:a --candidate campaign:b --candidate campaign:c --controls 200 --context 1 --json {}", p(&s.master), p(&s.marked_b))));
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["attributed"], serde_json::json!(["campaign:b"]), "{out}");
    assert_eq!(v["controls"], 200);
    let out = ok(&run(&format!("mark attribute --master {} --candidate campaign:a --candidate campaign:b --controls 50 --context 1 {}", p(&s.master), p(&s.clean))));
    assert!(out.contains("attributed to: none"), "{out}");
}

#[test]
fn open_setting_scores_predictions() {
    let s = setup();
    let tokenizer = Tokenizer::load("o200k").unwrap();
    let tokens = tokenizer
        .encode(&std::fs::read_to_string(&s.marked_b).unwrap())
        .unwrap();
    // A model that reproduces the served text exactly: its predictions are the text.
    let line = serde_json::json!({"tokens": tokens, "predicted": tokens}).to_string();
    let preds = s.marked_b.with_extension("jsonl");
    std::fs::write(&preds, format!("{line}\n")).unwrap();
    let own = log10_p(&ok(&run(&format!(
        "mark radioactivity --setting open --keyring {} --scope campaign:b --json {}",
        p(&s.keyring),
        p(&preds)
    ))));
    assert!(own < -15.0, "{own}");
    // Mismatched lengths are refused with the line.
    let bad = serde_json::json!({"tokens": [1, 2, 3], "predicted": [1]}).to_string();
    std::fs::write(&preds, format!("{bad}\n")).unwrap();
    let e = err(&run(&format!(
        "mark radioactivity --setting open --keyring {} --scope campaign:b {}",
        p(&s.keyring),
        p(&preds)
    )));
    assert!(e.contains(":1: 1 predictions for 3 tokens"), "{e}");
}

#[test]
fn clear_errors_for_wrong_keys_and_inputs() {
    let s = setup();
    let dir = tempfile::tempdir().unwrap();
    let bad_key = dir.path().join("bad.key");
    std::fs::write(&bad_key, "not a key\n").unwrap();
    let e = err(&run(&format!(
        "mark detect --key-file {} {}",
        p(&bad_key),
        p(&s.clean)
    )));
    assert!(e.contains(&p(&bad_key)) && e.contains("64 hex"), "{e}");

    let e = err(&run(&format!(
        "mark detect --keyring {} --key-id 0123456789abcdef {}",
        p(&s.keyring),
        p(&s.clean)
    )));
    assert!(
        e.contains("key id 0123456789abcdef is not in keyring"),
        "{e}"
    );

    let e = err(&run(&format!(
        "mark detect --keyring {} --scope campaign:z {}",
        p(&s.keyring),
        p(&s.clean)
    )));
    assert!(e.contains("no key for scope \"campaign:z\""), "{e}");

    let empty = dir.path().join("empty.txt");
    std::fs::write(&empty, "  \n").unwrap();
    let e = err(&run(&format!(
        "mark detect --key-file {} {}",
        p(&s.master),
        p(&empty)
    )));
    assert!(e.contains("no text"), "{e}");

    let short = dir.path().join("short.txt");
    std::fs::write(&short, "Hi").unwrap();
    let e = err(&run(&format!(
        "mark detect --key-file {} --context 4 {}",
        p(&s.master),
        p(&short)
    )));
    assert!(e.contains("too short"), "{e}");

    let jsonl = dir.path().join("t.jsonl");
    std::fs::write(&jsonl, "{\"text\": \"a b c\"}\n{\"other\": 1}\n").unwrap();
    let e = err(&run(&format!(
        "mark detect --key-file {} --field text {}",
        p(&s.master),
        p(&jsonl)
    )));
    assert!(e.contains("t.jsonl:2: no string field \"text\""), "{e}");

    let e = err(&run(&format!(
        "mark derive --master {} --scope moat-control:1 --keyring {}",
        p(&s.master),
        p(&s.keyring)
    )));
    assert!(e.contains("reserved"), "{e}");
}

/// The vectors the Python integration is tested against are the ones this build writes.
#[test]
fn committed_vectors_are_current() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("vectors.json");
    ok(&run(&format!("mark vectors --out {}", p(&out))));
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../python/tests/vectors.json");
    let want = std::fs::read_to_string(&committed).unwrap_or_default();
    let got = std::fs::read_to_string(&out).unwrap();
    assert!(
        want == got,
        "python/tests/vectors.json is stale: run `moat mark vectors --out python/tests/vectors.json`"
    );
}

/// The closed test can take what was served to a campaign straight from Moat's exchange log:
/// the campaign's outputs become the window filter, its prompts are excluded.
#[test]
fn closed_setting_reads_served_outputs_from_the_exchange_log() {
    use moat_format::Writer;
    use moat_types::{CampaignDetection, Detection};

    let s = setup();
    let dir = s.marked_b.parent().unwrap().to_path_buf();
    let marked = std::fs::read_to_string(&s.marked_b).unwrap();
    let clean = std::fs::read_to_string(&s.clean).unwrap();
    let line = |ts: &str, account: &str, prompt: &str, answer: &str| {
        serde_json::json!({
            "v": 1, "ts": ts, "account_id": account,
            "request": {"messages": [{"role": "user", "content": prompt}]},
            "response": {"status": 200, "content": answer},
        })
        .to_string()
    };
    let log = dir.join("traffic.jsonl");
    std::fs::write(
        &log,
        [
            line(
                "2026-11-01T00:00:00Z",
                "acct_a",
                "Tell me a story.",
                &marked,
            ),
            line("2026-11-01T00:00:01Z", "acct_z", "Another one.", &clean),
        ]
        .join("\n")
            + "\n",
    )
    .unwrap();
    let detections = dir.join("detections.jsonl");
    let mut w = Writer::<Detection>::create(&detections).unwrap();
    w.write(&Detection::Campaign(CampaignDetection {
        campaign_id: "c1".into(),
        accounts: vec!["acct_a".into()],
        score: 0.9,
        first_detected_at: None,
        signals: Vec::new(),
    }))
    .unwrap();
    w.finish().unwrap();

    // A "student" that reproduces the campaign's answer is found; only positions after windows
    // of the served answer count.
    let out = ok(&run(&format!(
        "mark radioactivity --keyring {} --scope campaign:b --json --served-log {} \
         --detections {} --campaign c1 {} {}",
        p(&s.keyring),
        p(&log),
        p(&detections),
        p(&s.marked_b),
        p(&s.clean)
    )));
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert!(v["log10_p"].as_f64().unwrap() < -15.0, "{out}");
    assert!(v["skipped"]["filtered_out"].as_u64().unwrap() > 0, "{out}");

    let e = err(&run(&format!(
        "mark radioactivity --keyring {} --scope campaign:b --served-log {} --detections {} \
         --campaign c9 {}",
        p(&s.keyring),
        p(&log),
        p(&detections),
        p(&s.clean)
    )));
    assert!(e.contains("campaign \"c9\" is not in"), "{e}");

    let e = err(&run(&format!(
        "mark radioactivity --keyring {} --scope campaign:b --served-log {} --account acct_q {}",
        p(&s.keyring),
        p(&log),
        p(&s.clean)
    )));
    assert!(e.contains("holds no response text"), "{e}");
}

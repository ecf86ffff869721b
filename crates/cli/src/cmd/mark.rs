//! `moat mark`: keys for the inference engine's watermark, and the tests that tell whether a
//! text, or a suspect model, carries one of them.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use moat_mark::{attribute, Candidate, Context, Key, Keyring, Mode, Prf, Score, Scorer, Statistic};
use moat_tokenize::Tokenizer;
use serde_json::{json, Value};

use super::print;

/// Scope prefix of control keys: derived from the master but never served.
const CONTROL_SCOPE: &str = "moat-control";

/// Arguments of `moat mark`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Create a master secret (32 random bytes, hex) in a new file readable by its owner only.
    Keygen(KeygenArgs),
    /// Derive per-campaign or per-cohort keys from the master secret into a keyring.
    Derive(DeriveArgs),
    /// Test texts for a key's watermark: exact p-value.
    Detect(DetectArgs),
    /// Test a suspect model for training on watermarked outputs (closed: its generations; open:
    /// its predictions on our served texts).
    Radioactivity(RadioactivityArgs),
    /// Which campaign's key a suspect's texts carry: every candidate tested, Holm-corrected,
    /// calibrated on control keys that were never served.
    Attribute(AttributeArgs),
    /// Write the scheme's test vectors (for the Python integration's tests).
    Vectors(VectorsArgs),
    /// Evaluate the watermarks on CPU with n-gram teachers and students: calibration, power,
    /// radioactivity, attribution, robustness (or all).
    Eval(EvalArgs),
}

/// Runs `moat mark`.
pub fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        Command::Keygen(a) => keygen(a),
        Command::Derive(a) => derive(a),
        Command::Detect(a) => detect(a),
        Command::Radioactivity(a) => radioactivity(a),
        Command::Attribute(a) => attribute_cmd(a),
        Command::Vectors(a) => vectors(a),
        Command::Eval(a) => eval(a),
    }
}

#[derive(Debug, clap::Args)]
struct KeygenArgs {
    /// Where to write the master secret.
    #[arg(long)]
    out: PathBuf,
    /// Replace an existing file.
    #[arg(long)]
    force: bool,
}

fn keygen(args: KeygenArgs) -> anyhow::Result<()> {
    if args.out.exists() && !args.force {
        bail!(
            "{} exists: refusing to overwrite a master secret (use --force)",
            args.out.display()
        );
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| anyhow::anyhow!("operating system random source failed: {e}"))?;
    let key = Key::from_bytes(bytes);
    write_secret(&args.out, &format!("{}\n", key.to_hex()))?;
    print(&format!(
        "wrote master secret {} (key id {})\n",
        args.out.display(),
        key.id()
    ))
}

/// Writes a file only its owner can read (on Unix).
fn write_secret(path: &Path, text: &str) -> anyhow::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    std::io::Write::write_all(&mut file, text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

fn read_key(path: &Path) -> anyhow::Result<Key> {
    let text = fs::read_to_string(path)
        .with_context(|| format!("cannot read key file {}", path.display()))?;
    Key::from_hex(&text).with_context(|| format!("key file {}", path.display()))
}

fn read_keyring(path: &Path) -> anyhow::Result<Keyring> {
    let text = fs::read_to_string(path)
        .with_context(|| format!("cannot read keyring {}", path.display()))?;
    Keyring::from_json(&text).with_context(|| format!("keyring {}", path.display()))
}

#[derive(Debug, clap::Args)]
struct DeriveArgs {
    /// The master secret file (from `moat mark keygen`).
    #[arg(long)]
    master: PathBuf,
    /// A scope to derive a key for, e.g. `campaign:c-42` or `cohort:eu-free`; repeatable.
    #[arg(long = "scope", required = true)]
    scopes: Vec<String>,
    /// The keyring to create or extend (JSON; give it to the inference engine).
    #[arg(long)]
    keyring: PathBuf,
}

fn derive(args: DeriveArgs) -> anyhow::Result<()> {
    let master = read_key(&args.master)?;
    let mut ring = if args.keyring.exists() {
        read_keyring(&args.keyring)?
    } else {
        Keyring::new()
    };
    let mut out = String::new();
    for scope in &args.scopes {
        if scope.trim().is_empty() {
            bail!("--scope must not be empty");
        }
        if scope.starts_with(CONTROL_SCOPE) {
            bail!("scope {scope:?}: the prefix {CONTROL_SCOPE:?} is reserved for control keys");
        }
        let key = master.derive(scope);
        let _ = writeln!(out, "{}  {scope}", key.id());
        ring.insert(key, scope);
    }
    write_secret(&args.keyring, &format!("{}\n", ring.to_json()))?;
    let _ = writeln!(
        out,
        "keyring {}: {} keys",
        args.keyring.display(),
        ring.entries().len()
    );
    print(&out)
}

/// Which key to test with.
#[derive(Debug, clap::Args)]
struct KeyArgs {
    /// A file holding one key as 64 hex characters.
    #[arg(long, conflicts_with = "keyring")]
    key_file: Option<PathBuf>,
    /// A keyring (from `moat mark derive`); pick the key with --key-id or --scope.
    #[arg(long)]
    keyring: Option<PathBuf>,
    /// The key's id in the keyring (16 hex characters).
    #[arg(long, requires = "keyring", conflicts_with = "scope")]
    key_id: Option<String>,
    /// The key's scope in the keyring.
    #[arg(long, requires = "keyring")]
    scope: Option<String>,
}

impl KeyArgs {
    fn load(&self) -> anyhow::Result<Key> {
        if let Some(path) = &self.key_file {
            return read_key(path);
        }
        let Some(path) = &self.keyring else {
            bail!("no key given: use --key-file, or --keyring with --key-id or --scope");
        };
        let ring = read_keyring(path)?;
        let entry = match (&self.key_id, &self.scope) {
            (Some(id), _) => {
                let id = moat_mark::KeyId::from_hex(id).context("--key-id")?;
                ring.get(id)
                    .with_context(|| format!("key id {id} is not in keyring {}", path.display()))?
            }
            (None, Some(scope)) => ring.by_scope(scope).with_context(|| {
                format!("no key for scope {scope:?} in keyring {}", path.display())
            })?,
            (None, None) => bail!("--keyring needs --key-id or --scope"),
        };
        Ok(entry.key.clone())
    }
}

/// The watermark being tested for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum SchemeArg {
    /// KGW green lists (binomial test).
    Kgw,
    /// Gumbel-max (Gamma test).
    Gumbel,
}

#[derive(Debug, clap::Args)]
struct SchemeArgs {
    /// The scheme the engine applied.
    #[arg(long, value_enum, default_value_t = SchemeArg::Kgw)]
    scheme: SchemeArg,
    /// KGW's green fraction.
    #[arg(long, default_value_t = 0.25)]
    gamma: f64,
    /// Context width h: previous tokens that seed a position.
    #[arg(long, default_value_t = 1)]
    context: usize,
    /// How the context combines: ordered or selfhash.
    #[arg(long, default_value = "ordered")]
    mode: String,
    /// Tokenizer of the watermarked model: o200k, cl100k or a tokenizer.json path.
    #[arg(long, default_value = "o200k")]
    tokenizer: String,
}

impl SchemeArgs {
    fn context(&self) -> anyhow::Result<Context> {
        let mode = Mode::parse(&self.mode).context("--mode")?;
        Context::new(self.context, mode).context("--context")
    }

    fn statistic(&self) -> Statistic {
        match self.scheme {
            SchemeArg::Kgw => Statistic::Green { gamma: self.gamma },
            SchemeArg::Gumbel => Statistic::Gumbel,
        }
    }

    fn tokenizer(&self) -> anyhow::Result<Tokenizer> {
        Tokenizer::load(&self.tokenizer).context("--tokenizer")
    }

    fn scorer(&self, key: &Key) -> anyhow::Result<Scorer> {
        Ok(Scorer::new(
            Prf::new(key, self.context()?),
            self.statistic(),
        )?)
    }
}

/// Where texts come from.
#[derive(Debug, clap::Args)]
struct TextArgs {
    /// Text files (each file one text), or JSONL files with --field; `-` reads stdin.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Read JSONL: each line's string field FIELD is one text.
    #[arg(long)]
    field: Option<String>,
    /// Our prompts (same format as the inputs): tuples in them are not scored.
    #[arg(long = "prompts")]
    prompts: Vec<PathBuf>,
}

/// Reads texts from files: whole files, or one string field per JSONL line.
fn read_texts(paths: &[PathBuf], field: Option<&str>) -> anyhow::Result<Vec<String>> {
    let mut texts = Vec::new();
    for path in paths {
        let content = if path.as_os_str() == "-" {
            std::io::read_to_string(std::io::stdin()).context("cannot read stdin")?
        } else {
            fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?
        };
        match field {
            None => texts.push(content),
            Some(field) => {
                for (i, line) in content.lines().enumerate() {
                    if line.trim().is_empty() {
                        continue;
                    }
                    let value: Value = serde_json::from_str(line).with_context(|| {
                        format!("{}:{}: not a JSON object", path.display(), i + 1)
                    })?;
                    let Some(text) = value.get(field).and_then(Value::as_str) else {
                        bail!("{}:{}: no string field {field:?}", path.display(), i + 1);
                    };
                    texts.push(text.to_owned());
                }
            }
        }
    }
    if texts.iter().all(|t| t.trim().is_empty()) {
        bail!("the inputs hold no text");
    }
    Ok(texts)
}

fn tokenize(tokenizer: &Tokenizer, texts: &[String]) -> anyhow::Result<Vec<Vec<u32>>> {
    texts
        .iter()
        .map(|t| tokenizer.encode(t).context("tokenizing"))
        .collect()
}

#[derive(Debug, clap::Args)]
struct DetectArgs {
    #[command(flatten)]
    key: KeyArgs,
    #[command(flatten)]
    scheme: SchemeArgs,
    #[command(flatten)]
    texts: TextArgs,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

fn detect(args: DetectArgs) -> anyhow::Result<()> {
    let key = args.key.load()?;
    let tokenizer = args.scheme.tokenizer()?;
    let mut scorer = args.scheme.scorer(&key)?;
    let field = args.texts.field.as_deref();
    if !args.texts.prompts.is_empty() {
        for p in tokenize(&tokenizer, &read_texts(&args.texts.prompts, field)?)? {
            scorer.exclude_prompt(&p);
        }
    }
    let texts = tokenize(&tokenizer, &read_texts(&args.texts.inputs, field)?)?;
    for t in &texts {
        scorer.score_text(t);
    }
    let score = scorer.score().context("texts too short to test")?;
    print(&render(&key, &args.scheme, &score, args.json))
}

/// A test's outcome as one JSON line or as text.
fn render(key: &Key, scheme: &SchemeArgs, score: &Score, json: bool) -> String {
    if json {
        format!("{}\n", score_json(key, scheme, score))
    } else {
        describe(key, scheme, score)
    }
}

fn score_json(key: &Key, scheme: &SchemeArgs, score: &Score) -> Value {
    json!({
        "key_id": key.id().to_string(),
        "scheme": match scheme.scheme { SchemeArg::Kgw => "kgw", SchemeArg::Gumbel => "gumbel" },
        "gamma": (scheme.scheme == SchemeArg::Kgw).then_some(scheme.gamma),
        "context": scheme.context,
        "mode": scheme.mode,
        "scored": score.scored,
        "green": score.green,
        "score": score.sum,
        "log10_p": score.log10_p,
        "skipped": {
            "duplicates": score.duplicates,
            "in_prompts": score.in_prompts,
            "filtered_out": score.filtered_out,
        },
    })
}

fn describe(key: &Key, scheme: &SchemeArgs, score: &Score) -> String {
    let stat = match (score.green, score.sum) {
        (Some(g), _) => format!(
            "{g} green of {} scored ({:.1}%, expected {:.1}%)",
            score.scored,
            100.0 * g as f64 / score.scored as f64,
            100.0 * scheme.gamma
        ),
        (None, Some(s)) => format!(
            "score {s:.1} over {} scored (expected {})",
            score.scored, score.scored
        ),
        (None, None) => String::new(),
    };
    format!(
        "key {}: {stat}; p = 10^{:.2}\nskipped: {} repeated, {} in our prompts, {} outside the filter\n",
        key.id(),
        score.log10_p,
        score.duplicates,
        score.in_prompts,
        score.filtered_out
    )
}

/// Closed: generations only; open: the model's predictions on our texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Setting {
    /// Score the suspect's generations (API access only).
    Closed,
    /// Score the suspect's top-1 predictions after each window of our served texts (weights
    /// available). Inputs are JSONL lines `{"tokens": [ids], "predicted": [ids]}` where
    /// `predicted[i]` is the model's most likely token after `tokens[..i]`.
    Open,
}

#[derive(Debug, clap::Args)]
struct RadioactivityArgs {
    #[command(flatten)]
    key: KeyArgs,
    #[command(flatten)]
    scheme: SchemeArgs,
    /// Access to the suspect model.
    #[arg(long, value_enum, default_value_t = Setting::Closed)]
    setting: Setting,
    /// Closed setting: pre-register the windows of these texts (the outputs served to suspect
    /// accounts; same format as the inputs) and score only positions after those windows.
    #[arg(long = "served")]
    served: Vec<PathBuf>,
    /// Closed setting: take the served outputs (response content and returned reasoning) and
    /// our prompts (request messages) from Moat's own exchange log, for the accounts of
    /// --campaign (with --detections) or of --account.
    #[arg(long)]
    served_log: Option<PathBuf>,
    /// The detections file that names the campaign's accounts.
    #[arg(long, requires = "served_log")]
    detections: Option<PathBuf>,
    /// The campaign whose served outputs to pre-register (needs --detections).
    #[arg(long, requires = "detections")]
    campaign: Option<String>,
    /// An account whose served outputs to pre-register; repeatable.
    #[arg(long = "account", requires = "served_log")]
    accounts: Vec<String>,
    #[command(flatten)]
    texts: TextArgs,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

/// What Moat served to some accounts, read from its exchange log.
struct Served {
    outputs: Vec<String>,
    prompts: Vec<String>,
    exchanges: u64,
}

/// The accounts of `campaign` in a detections file.
fn campaign_accounts(path: &Path, campaign: &str) -> anyhow::Result<Vec<String>> {
    use moat_types::Detection;
    let reader = moat_format::Reader::<Detection>::open(path, moat_format::ReadOptions::default())
        .with_context(|| format!("cannot open detections {}", path.display()))?;
    for record in reader {
        if let Detection::Campaign(c) = record? {
            if c.campaign_id == campaign {
                return Ok(c.accounts);
            }
        }
    }
    bail!("campaign {campaign:?} is not in {}", path.display())
}

/// Outputs served to `accounts` and the prompts they sent, from an exchange log.
fn served_from_log(path: &Path, accounts: &[String]) -> anyhow::Result<Served> {
    use moat_types::Exchange;
    let wanted: std::collections::HashSet<&str> = accounts.iter().map(String::as_str).collect();
    let reader = moat_format::Reader::<Exchange>::open(path, moat_format::ReadOptions::default())
        .with_context(|| format!("cannot open exchange log {}", path.display()))?;
    let mut served = Served {
        outputs: Vec::new(),
        prompts: Vec::new(),
        exchanges: 0,
    };
    for record in reader {
        let exchange = record?;
        if !wanted.contains(exchange.account_id.as_str()) {
            continue;
        }
        served.exchanges += 1;
        for message in &exchange.request.messages {
            let text = message.text_content();
            if !text.trim().is_empty() {
                served.prompts.push(text);
            }
        }
        served.prompts.extend(exchange.request.prompt.clone());
        if let Some(response) = exchange.response {
            served.outputs.extend(response.content);
            served.outputs.extend(response.reasoning);
        }
    }
    if served.outputs.is_empty() {
        bail!(
            "{} holds no response text for these {} accounts ({} exchanges): the log must \
             record response.content to pre-register served outputs",
            path.display(),
            accounts.len(),
            served.exchanges
        );
    }
    Ok(served)
}

fn radioactivity(args: RadioactivityArgs) -> anyhow::Result<()> {
    let key = args.key.load()?;
    let mut scorer = args.scheme.scorer(&key)?;
    let field = args.texts.field.as_deref();
    match args.setting {
        Setting::Closed => {
            let tokenizer = args.scheme.tokenizer()?;
            for p in tokenize(&tokenizer, &read_texts_opt(&args.texts.prompts, field)?)? {
                scorer.exclude_prompt(&p);
            }
            for s in tokenize(&tokenizer, &read_texts_opt(&args.served, field)?)? {
                scorer.register_filter(&s);
            }
            if let Some(log) = &args.served_log {
                let mut accounts = args.accounts.clone();
                if let (Some(detections), Some(campaign)) = (&args.detections, &args.campaign) {
                    accounts.extend(campaign_accounts(detections, campaign)?);
                }
                if accounts.is_empty() {
                    bail!("--served-log needs --campaign with --detections, or --account");
                }
                let served = served_from_log(log, &accounts)?;
                tracing::info!(
                    exchanges = served.exchanges,
                    outputs = served.outputs.len(),
                    "served outputs read from the exchange log"
                );
                for s in tokenize(&tokenizer, &served.outputs)? {
                    scorer.register_filter(&s);
                }
                for p in tokenize(&tokenizer, &served.prompts)? {
                    scorer.exclude_prompt(&p);
                }
            }
            for t in tokenize(&tokenizer, &read_texts(&args.texts.inputs, field)?)? {
                scorer.score_text(&t);
            }
        }
        Setting::Open => {
            if !args.served.is_empty() || args.served_log.is_some() {
                bail!("--served and --served-log apply to the closed setting; in the open setting the inputs are the served texts");
            }
            let h = args.scheme.context()?.width();
            for path in &args.texts.inputs {
                for (line, tokens, predicted) in read_predictions(path)? {
                    if predicted.len() != tokens.len() {
                        bail!(
                            "{}:{line}: {} predictions for {} tokens",
                            path.display(),
                            predicted.len(),
                            tokens.len()
                        );
                    }
                    for i in h..tokens.len() {
                        scorer.score_tuple(&tokens[i - h..i], predicted[i]);
                    }
                }
            }
        }
    }
    let score = scorer
        .score()
        .context("inputs too short or too repetitive to test")?;
    print(&render(&key, &args.scheme, &score, args.json))
}

fn read_texts_opt(paths: &[PathBuf], field: Option<&str>) -> anyhow::Result<Vec<String>> {
    if paths.is_empty() {
        Ok(Vec::new())
    } else {
        read_texts(paths, field)
    }
}

/// One open-setting line: its number, our served text's tokens, the model's predictions.
type Predictions = (usize, Vec<u32>, Vec<u32>);

/// Reads open-setting predictions, one JSONL line each.
fn read_predictions(path: &Path) -> anyhow::Result<Vec<Predictions>> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Line {
        tokens: Vec<u32>,
        predicted: Vec<u32>,
    }
    let content =
        fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in content.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let parsed: Line = serde_json::from_str(line).with_context(|| {
            format!(
                "{}:{}: expected {{\"tokens\", \"predicted\"}}",
                path.display(),
                i + 1
            )
        })?;
        out.push((i + 1, parsed.tokens, parsed.predicted));
    }
    Ok(out)
}

#[derive(Debug, clap::Args)]
struct AttributeArgs {
    /// The master secret the campaign keys were derived from.
    #[arg(long)]
    master: PathBuf,
    /// A candidate scope (as given to `moat mark derive`); repeatable.
    #[arg(long = "candidate", required = true)]
    candidates: Vec<String>,
    /// Control keys (derived from the master, never served) to calibrate against.
    #[arg(long, default_value_t = 1000)]
    controls: usize,
    /// Level of the Holm-corrected test.
    #[arg(long, default_value_t = 1e-3)]
    alpha: f64,
    #[command(flatten)]
    scheme: SchemeArgs,
    #[command(flatten)]
    texts: TextArgs,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

fn attribute_cmd(args: AttributeArgs) -> anyhow::Result<()> {
    let master = read_key(&args.master)?;
    let candidates: Vec<Candidate> = args
        .candidates
        .iter()
        .map(|scope| Candidate {
            label: scope.clone(),
            key: master.derive(scope),
        })
        .collect();
    let controls: Vec<Key> = (0..args.controls)
        .map(|i| master.derive(&format!("{CONTROL_SCOPE}:{i}")))
        .collect();
    let tokenizer = args.scheme.tokenizer()?;
    let field = args.texts.field.as_deref();
    let prompts = tokenize(&tokenizer, &read_texts_opt(&args.texts.prompts, field)?)?;
    let texts = tokenize(&tokenizer, &read_texts(&args.texts.inputs, field)?)?;
    let result = attribute(
        &candidates,
        &controls,
        args.scheme.context()?,
        args.scheme.statistic(),
        args.alpha,
        |scorer| {
            for p in &prompts {
                scorer.exclude_prompt(p);
            }
            for t in &texts {
                scorer.score_text(t);
            }
        },
    )
    .context("texts too short to test")?;
    if args.json {
        let value = json!({
            "alpha": result.alpha,
            "attributed": result.attributed(),
            "controls": result.control_log10_p.len(),
            "controls_below_alpha": result.controls_below_alpha,
            "candidates": result.candidates.iter().map(|c| json!({
                "scope": c.label,
                "key_id": c.key_id.to_string(),
                "scored": c.score.scored,
                "log10_p": c.score.log10_p,
                "holm_log10_p": c.holm_log10_p,
                "empirical_p": c.empirical_p,
                "attributed": c.attributed,
            })).collect::<Vec<_>>(),
        });
        return print(&format!("{value}\n"));
    }
    let mut out = String::from("candidate           key id            scored  log10 p  Holm log10 p  empirical p  attributed\n");
    for c in &result.candidates {
        let _ = writeln!(
            out,
            "{:<19} {}  {:>6}  {:>7.2}  {:>12.2}  {:>11.4}  {}",
            c.label,
            c.key_id,
            c.score.scored,
            c.score.log10_p,
            c.holm_log10_p,
            c.empirical_p,
            if c.attributed { "yes" } else { "no" }
        );
    }
    let _ = writeln!(
        out,
        "controls: {} of {} never-served keys below alpha = {} (expected about {:.1})",
        result.controls_below_alpha,
        result.control_log10_p.len(),
        result.alpha,
        result.alpha * result.control_log10_p.len() as f64
    );
    let attributed = result.attributed();
    let _ = writeln!(
        out,
        "attributed to: {}",
        if attributed.is_empty() {
            "none".to_owned()
        } else {
            attributed.join(", ")
        }
    );
    print(&out)
}

#[derive(Debug, clap::Args)]
struct VectorsArgs {
    /// Where to write the vectors (JSON).
    #[arg(long)]
    out: PathBuf,
}

fn vectors(args: VectorsArgs) -> anyhow::Result<()> {
    let value = moat_mark::vectors::generate()?;
    let text = serde_json::to_string_pretty(&value)?;
    fs::write(&args.out, format!("{text}\n"))
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    print(&format!("wrote {}\n", args.out.display()))
}

#[derive(Debug, clap::Args)]
struct EvalArgs {
    /// calibration, power, radioactivity, attribution, robustness, or all.
    experiment: String,
    /// Folder of the development corpora.
    #[arg(long, default_value = "../shared/data")]
    data: PathBuf,
    /// Master seed (keys, sampling, fine-tuning order).
    #[arg(long)]
    seed: Option<u64>,
    /// JSON file of experiment options (missing keys keep their defaults; see
    /// `moat_lineage::Options`).
    #[arg(long)]
    options: Option<PathBuf>,
    /// Also write every report as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

fn eval(args: EvalArgs) -> anyhow::Result<()> {
    use moat_lineage::{Experiment, Options};
    let mut options = match &args.options {
        Some(path) => {
            let text = fs::read_to_string(path)
                .with_context(|| format!("cannot read options {}", path.display()))?;
            serde_json::from_str::<Options>(&text)
                .with_context(|| format!("options {}", path.display()))?
        }
        None => Options::default(),
    };
    options.data_dir = args.data.clone();
    if let Some(seed) = args.seed {
        options.seed = seed;
    }
    let experiments: Vec<Experiment> = if args.experiment == "all" {
        Experiment::ALL.to_vec()
    } else {
        vec![args.experiment.parse().context("experiment")?]
    };
    let started = std::time::Instant::now();
    let tokenizer = Tokenizer::load(moat_lineage::TOKENIZER)?;
    let corpus = moat_lineage::Corpus::load(&options.data_dir, &tokenizer)
        .with_context(|| format!("loading corpora from {}", options.data_dir.display()))?;
    print(&format!(
        "corpora loaded and tokenized in {:.1} s\n\n",
        started.elapsed().as_secs_f64()
    ))?;
    let mut reports = Vec::new();
    for experiment in experiments {
        let t = std::time::Instant::now();
        let report = moat_lineage::run_on(experiment, &corpus, &options)
            .with_context(|| format!("experiment {experiment}"))?;
        print(&format!(
            "{report}\n({experiment}: {:.1} s)\n\n",
            t.elapsed().as_secs_f64()
        ))?;
        reports.push(report);
    }
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&json!({
            "options": options,
            "reports": reports,
        }))?;
        fs::write(path, format!("{text}\n"))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

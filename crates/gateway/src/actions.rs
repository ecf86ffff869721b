//! One-click policy actions from the investigator dashboard: block a campaign or an account,
//! withhold or summarize its reasoning, or throttle it, at once and until reverted.
//!
//! Each active action becomes one generated policy rule (`when = 'campaign.id == "C-0007"'`),
//! built through `moat_policy`'s own parser from ids checked to hold only
//! `[A-Za-z0-9._:@-]`, so nothing an investigator types can reach the rule text. The rules
//! run before the file's, in the order the actions were applied; [`crate::rules`] combines
//! the two parts whenever either changes, never per request. With `[policy] actions_file`
//! the active actions are saved as JSON (a temporary file renamed over the old one) on every
//! change and read at start; without it they live in memory. Each apply and revert is written
//! to the audit log, logged, and announced to the `[alerts]` webhooks.
//!
//! Not here: enforcing (the request path enforces the generated rules like any other), and
//! sharing actions between gateway replicas (each gateway keeps its own).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use moat_policy::{Policy, MAX_NAME_CHARS};
use moat_store::AuditEntry;
use moat_types::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::admin::authorized;
use crate::error::GatewayError;
use crate::state::{now, AppState};

/// Most actions active at once (each is one rule evaluated on every request).
pub const MAX_ACTIVE: usize = 500;
/// Longest note, in characters.
pub const MAX_NOTE_CHARS: usize = 500;
/// Longest target id, in characters.
pub const MAX_TARGET_CHARS: usize = 128;
/// The throttle budget when the request names none.
pub const DEFAULT_REQUESTS_PER_MINUTE: u32 = 10;
/// Largest `POST /admin/actions` body, in bytes.
const MAX_BODY_BYTES: usize = 16 * 1024;
/// Version of the actions file's format.
const FILE_VERSION: u32 = 1;

/// What an action is applied to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetKind {
    /// Every member of a campaign the engine detected (`campaign.id`).
    Campaign,
    /// One account (`account.id`).
    Account,
}

impl TargetKind {
    /// `campaign` or `account`.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Campaign => "campaign",
            TargetKind::Account => "account",
        }
    }

    /// The policy field the generated rule compares.
    fn field(self) -> &'static str {
        match self {
            TargetKind::Campaign => "campaign.id",
            TargetKind::Account => "account.id",
        }
    }
}

/// A campaign or an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// `campaign` or `account`.
    pub kind: TargetKind,
    /// The campaign or account id: 1 to 128 of `A-Z a-z 0-9 . _ : @ -`.
    pub id: String,
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.kind.as_str(), self.id)
    }
}

/// What an action does; the names are the policy's action names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// Refuse the target's requests (403, the policy's default block message).
    Block,
    /// Remove reasoning from the target's answers.
    WithholdReasoning,
    /// Replace reasoning by a summary (withheld when the summarizer fails).
    SummarizeReasoning,
    /// A requests-per-minute budget: per account for an account, shared by all members for a
    /// campaign.
    Throttle,
}

impl ActionKind {
    /// The policy's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Block => "block",
            ActionKind::WithholdReasoning => "withhold_reasoning",
            ActionKind::SummarizeReasoning => "summarize_reasoning",
            ActionKind::Throttle => "throttle",
        }
    }
}

/// An action in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActiveAction {
    /// `act-<n>` (with an actions file) or `act-<tag>-<n>` (in memory, `tag` random per
    /// process): unique across restarts.
    pub id: String,
    /// What it applies to.
    pub target: Target,
    /// What it does.
    pub action: ActionKind,
    /// The throttle's budget (throttle only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_minute: Option<u32>,
    /// When it was applied.
    pub created_at: Timestamp,
    /// Who applied it (`admin`: the admin token's holder, never the token).
    pub actor: String,
    /// The investigator's note, at most 500 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl ActiveAction {
    /// What the audit log, the logs and the alerts call it: `block campaign C-0007 (act-3)`.
    fn describe(&self) -> String {
        format!("{} {} ({})", self.action.as_str(), self.target, self.id)
    }

    /// The API's view: the action and the name of the rule that carries it.
    fn view(&self, rule: &str) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.insert("rule".to_owned(), rule.into());
        }
        v
    }
}

/// An action applied or reverted, and the name of the rule that carries (or carried) it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The action.
    pub action: ActiveAction,
    /// Its rule's name.
    pub rule: String,
}

/// The actions on one target, in the order applied: they make one rule, since a request
/// meets only the first enforced rule it matches and an investigator who throttles a
/// campaign and then withholds its reasoning means both.
struct Group<'a> {
    target: &'a Target,
    members: Vec<&'a ActiveAction>,
}

/// The actions grouped by target, in the order of each target's first action.
fn groups(items: &[ActiveAction]) -> Vec<Group<'_>> {
    let mut out: Vec<Group<'_>> = Vec::new();
    for a in items {
        match out.iter_mut().find(|g| *g.target == a.target) {
            Some(g) => g.members.push(a),
            None => out.push(Group {
                target: &a.target,
                members: vec![a],
            }),
        }
    }
    out
}

impl Group<'_> {
    /// What the rule does: `block` alone while the target is blocked (the other actions
    /// take over when it is reverted), otherwise every action, in the order applied.
    fn effective(&self) -> Vec<&ActiveAction> {
        match self.members.iter().find(|a| a.action == ActionKind::Block) {
            Some(b) => vec![*b],
            None => self.members.clone(),
        }
    }

    /// `dashboard act-3: block campaign C-0007`; with several actions on the target
    /// `dashboard act-3+act-5: throttle+withhold_reasoning campaign C-0007` (every action's
    /// id, the actions the rule takes). A long target id is shortened to keep within the
    /// policy's name limit; the ids keep names unique.
    fn rule_name(&self) -> String {
        let ids: Vec<&str> = self.members.iter().map(|a| a.id.as_str()).collect();
        let actions: Vec<&str> = self.effective().iter().map(|a| a.action.as_str()).collect();
        let head = format!(
            "dashboard {}: {} {} ",
            ids.join("+"),
            actions.join("+"),
            self.target.kind.as_str()
        );
        let name = format!("{head}{}", self.target.id);
        if name.chars().count() <= MAX_NAME_CHARS {
            return name;
        }
        let kept: String = name.chars().take(MAX_NAME_CHARS - 1).collect();
        format!("{kept}…")
    }
}

/// The name of the rule that carries action `id` among `items`.
fn rule_of(items: &[ActiveAction], id: &str) -> String {
    groups(items)
        .iter()
        .find(|g| g.members.iter().any(|a| a.id == id))
        .map(Group::rule_name)
        .unwrap_or_default()
}

/// The reasoning action on a target that contradicts `action` (withhold against summarize).
fn contradiction<'a>(
    items: &'a [ActiveAction],
    target: &Target,
    action: ActionKind,
) -> Option<&'a ActiveAction> {
    let other = match action {
        ActionKind::WithholdReasoning => ActionKind::SummarizeReasoning,
        ActionKind::SummarizeReasoning => ActionKind::WithholdReasoning,
        ActionKind::Block | ActionKind::Throttle => return None,
    };
    items
        .iter()
        .find(|a| a.target == *target && a.action == other)
}

/// The body of `POST /admin/actions`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewAction {
    /// What to apply it to.
    pub target: Target,
    /// What to do.
    pub action: ActionKind,
    /// Throttle only: the budget (default 10).
    #[serde(default)]
    pub requests_per_minute: Option<u32>,
    /// Why, for the next investigator.
    #[serde(default)]
    pub note: Option<String>,
}

impl NewAction {
    /// Checks every field; `Err` says which and why, without echoing a rejected id.
    pub fn validate(mut self) -> Result<NewAction, String> {
        check_target_id(&self.target.id).map_err(|r| format!("target.id: {r}"))?;
        match (self.action, self.requests_per_minute) {
            (ActionKind::Throttle, None) => {
                self.requests_per_minute = Some(DEFAULT_REQUESTS_PER_MINUTE)
            }
            (ActionKind::Throttle, Some(0)) => {
                return Err("requests_per_minute: must be at least 1".to_owned())
            }
            (ActionKind::Throttle, Some(_)) | (_, None) => {}
            (_, Some(_)) => {
                return Err(
                    "requests_per_minute: only applies to the \"throttle\" action".to_owned(),
                )
            }
        }
        self.note = match self.note.take() {
            Some(n) if n.trim().is_empty() => None,
            Some(n) => {
                check_note(&n).map_err(|r| format!("note: {r}"))?;
                Some(n)
            }
            None => None,
        };
        Ok(self)
    }
}

/// A campaign or account id fit to stand in a generated rule.
fn check_target_id(id: &str) -> Result<(), String> {
    let ok = !id.is_empty()
        && id.chars().count() <= MAX_TARGET_CHARS
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'@' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "must be 1 to {MAX_TARGET_CHARS} characters of A-Z, a-z, 0-9, '.', '_', ':', '@', '-'"
        ))
    }
}

fn check_note(note: &str) -> Result<(), String> {
    if note.chars().count() > MAX_NOTE_CHARS {
        return Err(format!("longer than {MAX_NOTE_CHARS} characters"));
    }
    if note
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err("must not contain control characters other than newline and tab".to_owned());
    }
    Ok(())
}

/// An action id: `act-` and then up to 20 digits, letters and `-`.
fn check_action_id(id: &str) -> Result<(), String> {
    let ok = id.len() <= 24
        && id.strip_prefix("act-").is_some_and(|rest| {
            !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if ok {
        Ok(())
    } else {
        Err("must be \"act-\" followed by up to 20 letters, digits or '-'".to_owned())
    }
}

/// The number at the end of an action id (`act-3` → 3, `act-9f3a2c-3` → 3).
fn id_number(id: &str) -> Option<u64> {
    id.rsplit('-').next().and_then(|n| n.parse().ok())
}

/// The policy of the actions: one rule per target, in the order of each target's first
/// action (see [`Group`]). The ids are checked again here, so that a rule is only ever
/// generated from ids that cannot break out of their strings.
pub fn policy_of(items: &[ActiveAction]) -> Result<Policy, String> {
    let mut text = String::from("version = 1\n");
    for g in groups(items) {
        check_target_id(&g.target.id).map_err(|r| format!("target.id: {r}"))?;
        for a in &g.members {
            check_action_id(&a.id).map_err(|r| format!("id: {r}"))?;
        }
        let effective = g.effective();
        let actions: Vec<String> = effective
            .iter()
            .map(|a| format!("\"{}\"", a.action.as_str()))
            .collect();
        let _ = write!(
            text,
            "\n[[rule]]\nname = \"{name}\"\nwhen = '{field} == \"{id}\"'\naction = [{actions}]\n",
            name = g.rule_name(),
            field = g.target.kind.field(),
            id = g.target.id,
            actions = actions.join(", "),
        );
        if let Some(t) = effective.iter().find(|a| a.action == ActionKind::Throttle) {
            // A campaign's members share one budget; an account has its own.
            let rpm = t.requests_per_minute.unwrap_or(DEFAULT_REQUESTS_PER_MINUTE);
            let _ = write!(
                text,
                "requests_per_minute = {rpm}\nscope = \"{}\"\n",
                g.target.kind.as_str()
            );
        }
    }
    Policy::parse(&text, "dashboard actions").map_err(|e| e.to_string())
}

/// The actions file as written.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SavedActions {
    /// Format version; 1.
    version: u32,
    /// The number of the next action id, kept so that ids are not reused after a revert
    /// and a restart.
    next_id: u64,
    /// The active actions, in the order they were applied.
    items: Vec<ActiveAction>,
}

/// The active actions, their rules, and where they are saved.
#[derive(Debug)]
pub struct Ledger {
    file: Option<PathBuf>,
    /// In memory: a random tag in every id, so ids of different runs differ.
    tag: Option<String>,
    next_id: u64,
    items: Vec<ActiveAction>,
    policy: Arc<Policy>,
}

impl Ledger {
    /// No actions, kept in memory.
    pub fn in_memory() -> Ledger {
        let mut seed = [0u8; 3];
        // A fixed tag would still give unique ids within the process.
        let _ = getrandom::fill(&mut seed);
        Ledger {
            file: None,
            tag: Some(seed.iter().map(|b| format!("{b:02x}")).collect()),
            next_id: 1,
            items: Vec::new(),
            policy: Arc::new(Policy::allow_all()),
        }
    }

    /// The actions saved in `file` (none when it does not exist yet; it is then written
    /// empty, so that a folder the gateway cannot write to stops the start, not the first
    /// click), or in memory without a file. A damaged file is an error naming it.
    pub fn open(file: Option<&Path>) -> Result<Ledger, String> {
        let Some(file) = file else {
            return Ok(Ledger::in_memory());
        };
        let shown = file.display();
        let mut ledger = Ledger {
            file: Some(file.to_owned()),
            tag: None,
            next_id: 1,
            items: Vec::new(),
            policy: Arc::new(Policy::allow_all()),
        };
        let text = match std::fs::read_to_string(file) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                save(file, 1, &[]).map_err(|e| format!("actions file {shown}: {e}"))?;
                return Ok(ledger);
            }
            Err(e) => return Err(format!("actions file {shown}: {e}")),
        };
        let saved: SavedActions = serde_json::from_str(&text)
            .map_err(|e| format!("actions file {shown}: {}", json_message(&e)))?;
        let (next_id, items) = checked(saved).map_err(|e| format!("actions file {shown}: {e}"))?;
        ledger.policy =
            Arc::new(policy_of(&items).map_err(|e| format!("actions file {shown}: {e}"))?);
        ledger.next_id = next_id;
        ledger.items = items;
        Ok(ledger)
    }

    /// Whether the actions are saved to a file.
    pub fn persistent(&self) -> bool {
        self.file.is_some()
    }

    /// The active actions, in the order they were applied.
    pub fn items(&self) -> &[ActiveAction] {
        &self.items
    }

    /// One rule per active action, in order.
    pub fn policy(&self) -> &Arc<Policy> {
        &self.policy
    }

    fn id(&self, n: u64) -> String {
        match &self.tag {
            Some(tag) => format!("act-{tag}-{n}"),
            None => format!("act-{n}"),
        }
    }

    /// Puts a validated action in force (saved first, when there is a file): 409 when the
    /// same action is already active on the target or too many actions are.
    pub fn apply(
        &mut self,
        new: NewAction,
        actor: &str,
        at: Timestamp,
    ) -> Result<Change, GatewayError> {
        if let Some(old) = self
            .items
            .iter()
            .find(|a| a.target == new.target && a.action == new.action)
        {
            return Err(GatewayError::client(
                StatusCode::CONFLICT,
                "action_exists",
                format!(
                    "{} is already active on {} as {}; revert it first",
                    new.action.as_str(),
                    new.target,
                    old.id
                ),
            ));
        }
        if let Some(old) = contradiction(&self.items, &new.target, new.action) {
            return Err(GatewayError::client(
                StatusCode::CONFLICT,
                "action_contradicts",
                format!(
                    "{} contradicts {} ({}) on {}; revert it first",
                    new.action.as_str(),
                    old.action.as_str(),
                    old.id,
                    new.target
                ),
            ));
        }
        if self.items.len() >= MAX_ACTIVE {
            return Err(GatewayError::client(
                StatusCode::CONFLICT,
                "too_many_actions",
                format!("{MAX_ACTIVE} actions are active already; revert some first"),
            ));
        }
        let action = ActiveAction {
            id: self.id(self.next_id),
            target: new.target,
            action: new.action,
            requests_per_minute: new.requests_per_minute,
            created_at: at,
            actor: actor.to_owned(),
            note: new.note,
        };
        let mut items = self.items.clone();
        items.push(action.clone());
        self.commit(self.next_id + 1, items)?;
        let rule = rule_of(&self.items, &action.id);
        Ok(Change { action, rule })
    }

    /// The API's view of the active actions, each with its rule's name.
    pub fn views(&self) -> Vec<serde_json::Value> {
        self.items
            .iter()
            .map(|a| a.view(&rule_of(&self.items, &a.id)))
            .collect()
    }

    /// Takes action `id` out of force (saved first, when there is a file): 404 when it is
    /// not active.
    pub fn revert(&mut self, id: &str) -> Result<Change, GatewayError> {
        let Some(i) = self.items.iter().position(|a| a.id == id) else {
            return Err(GatewayError::client(
                StatusCode::NOT_FOUND,
                "not_found",
                "no such active action",
            ));
        };
        let rule = rule_of(&self.items, id);
        let mut items = self.items.clone();
        let action = items.remove(i);
        self.commit(self.next_id, items)?;
        Ok(Change { action, rule })
    }

    /// Builds the rules of `items`, saves them, and only then replaces the ledger's state:
    /// on any failure nothing changes.
    fn commit(&mut self, next_id: u64, items: Vec<ActiveAction>) -> Result<(), GatewayError> {
        let policy = policy_of(&items).map_err(|e| {
            tracing::error!(error = %e, "dashboard actions: generated rules rejected");
            GatewayError::internal("action_rules", "the action's rule could not be built")
        })?;
        if let Some(file) = &self.file {
            save(file, next_id, &items).map_err(|e| {
                tracing::error!(file = %file.display(), error = %e, "dashboard actions: cannot save");
                GatewayError::internal(
                    "actions_not_saved",
                    format!(
                        "the actions file {} could not be written ({e}); nothing was changed",
                        file.display()
                    ),
                )
            })?;
        }
        self.policy = Arc::new(policy);
        self.items = items;
        self.next_id = next_id;
        Ok(())
    }
}

/// A serde error as `line L column C: reason`.
fn json_message(e: &serde_json::Error) -> String {
    let full = e.to_string();
    // serde_json appends " at line L column C"; put the place first, as other file errors do.
    let reason = full
        .rsplit_once(" at line ")
        .map_or(full.as_str(), |(r, _)| r);
    format!("line {} column {}: {reason}", e.line(), e.column())
}

/// Validates a saved file's content as strictly as the API validates a request: a hand
/// edit must not smuggle in what the API would refuse.
fn checked(saved: SavedActions) -> Result<(u64, Vec<ActiveAction>), String> {
    if saved.version != FILE_VERSION {
        return Err(format!(
            "version: expected {FILE_VERSION}, found {}",
            saved.version
        ));
    }
    if saved.items.len() > MAX_ACTIVE {
        return Err(format!("items: more than {MAX_ACTIVE} actions"));
    }
    let mut next_id = saved.next_id.max(1);
    for (i, a) in saved.items.iter().enumerate() {
        let at = |r: String| format!("items[{i}].{r}");
        check_action_id(&a.id).map_err(|r| at(format!("id: {r}")))?;
        check_target_id(&a.target.id).map_err(|r| at(format!("target.id: {r}")))?;
        match (a.action, a.requests_per_minute) {
            (ActionKind::Throttle, None | Some(0)) => {
                return Err(at(
                    "requests_per_minute: a throttle needs a budget of at least 1".to_owned(),
                ))
            }
            (ActionKind::Throttle, Some(_)) | (_, None) => {}
            (_, Some(_)) => {
                return Err(at(
                    "requests_per_minute: only applies to the \"throttle\" action".to_owned(),
                ))
            }
        }
        if let Some(n) = &a.note {
            check_note(n).map_err(|r| at(format!("note: {r}")))?;
        }
        if a.actor.is_empty() || a.actor.len() > 128 || a.actor.chars().any(char::is_control) {
            return Err(at(
                "actor: must be 1 to 128 bytes without control characters".to_owned(),
            ));
        }
        let earlier = &saved.items[..i];
        if earlier.iter().any(|b| b.id == a.id) {
            return Err(at(format!("id: {} appears twice", a.id)));
        }
        if earlier
            .iter()
            .any(|b| b.target == a.target && b.action == a.action)
        {
            return Err(format!(
                "items[{i}]: {} on {} appears twice",
                a.action.as_str(),
                a.target
            ));
        }
        if let Some(c) = contradiction(earlier, &a.target, a.action) {
            return Err(format!(
                "items[{i}]: {} contradicts {} ({}) on {}",
                a.action.as_str(),
                c.action.as_str(),
                c.id,
                a.target
            ));
        }
        if let Some(n) = id_number(&a.id) {
            next_id = next_id.max(n.saturating_add(1));
        }
    }
    Ok((next_id, saved.items))
}

/// Writes the actions whole: to a temporary file beside `file`, flushed to disk, then
/// renamed over it, so that a crash leaves the old file or the new one, never half of one.
fn save(file: &Path, next_id: u64, items: &[ActiveAction]) -> std::io::Result<()> {
    use std::io::Write;
    let saved = SavedActions {
        version: FILE_VERSION,
        next_id,
        items: items.to_vec(),
    };
    let mut text = serde_json::to_string_pretty(&saved).map_err(std::io::Error::other)?;
    text.push('\n');
    let mut tmp_name = file.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(format!(".tmp-{}", std::process::id()));
    let tmp = file.with_file_name(tmp_name);
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, file)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written?;
    // The rename itself is durable once the folder is synced (not possible everywhere).
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The admin API

/// `/admin/actions` and `/admin/actions/{id}/revert`, merged into the admin router.
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/admin/actions", get(list).post(apply))
        .route("/admin/actions/{id}/revert", post(revert))
}

/// `{"persistent", "items"}`: the active actions, in the order they were applied.
async fn list(State(st): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if let Err(e) = authorized(&st, &headers) {
        return e.into_response();
    }
    let (persistent, items) = st.rules.read_actions(|l| (l.persistent(), l.views()));
    Json(json!({ "persistent": persistent, "items": items })).into_response()
}

fn bad_body(reason: impl Into<String>) -> Response {
    GatewayError::client(StatusCode::BAD_REQUEST, "invalid_action", reason).into_response()
}

/// Applies an action: 201 with it; 400 for a body that is not a valid action, 404 for a
/// target the engine does not know, 409 for an action already active on the target.
async fn apply(State(st): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    if let Err(e) = authorized(&st, &headers) {
        return e.into_response();
    }
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
        return GatewayError::client(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("body: larger than {MAX_BODY_BYTES} bytes, or cut off"),
        )
        .into_response();
    };
    let new = match serde_json::from_slice::<NewAction>(&bytes) {
        Ok(n) => n,
        Err(e) => return bad_body(format!("body: {}", json_message(&e))),
    };
    let new = match new.validate() {
        Ok(n) => n,
        Err(reason) => return bad_body(reason),
    };
    let published = st.engine.published();
    let known = match new.target.kind {
        TargetKind::Campaign => published.campaigns.load().contains_key(&new.target.id),
        TargetKind::Account => published.standing(&new.target.id).is_some(),
    };
    if !known {
        return GatewayError::client(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{} is not known to the engine", new.target),
        )
        .into_response();
    }
    let st2 = Arc::clone(&st);
    let done = tokio::task::spawn_blocking(move || {
        let applied = st2.rules.change_actions(|l| l.apply(new, ACTOR, now()))?;
        announce(&st2, "action_apply", &applied.action);
        Ok::<_, GatewayError>(applied)
    })
    .await;
    match done {
        Ok(Ok(c)) => (StatusCode::CREATED, Json(c.action.view(&c.rule))).into_response(),
        Ok(Err(e)) => e.into_response(),
        Err(_) => {
            GatewayError::internal("action_failed", "the action did not complete").into_response()
        }
    }
}

/// Reverts an action: 200 with it (and when and by whom it was reverted); 404 if it is not
/// active.
async fn revert(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
) -> Response {
    if let Err(e) = authorized(&st, &headers) {
        return e.into_response();
    }
    let st2 = Arc::clone(&st);
    let done = tokio::task::spawn_blocking(move || {
        let reverted = st2.rules.change_actions(|l| l.revert(&id))?;
        announce(&st2, "action_revert", &reverted.action);
        Ok::<_, GatewayError>(reverted)
    })
    .await;
    match done {
        Ok(Ok(c)) => {
            let mut v = c.action.view(&c.rule);
            if let Some(o) = v.as_object_mut() {
                o.insert("reverted_at".to_owned(), json!(now()));
                o.insert("reverted_by".to_owned(), ACTOR.into());
            }
            Json(v).into_response()
        }
        Ok(Err(e)) => e.into_response(),
        Err(_) => {
            GatewayError::internal("action_failed", "the revert did not complete").into_response()
        }
    }
}

/// Who the admin API's caller is in records: the holder of the admin token.
const ACTOR: &str = "admin";

/// The audit entry, the log line and the alert of an apply (`action_apply`) or a revert
/// (`action_revert`). The alert's action is the policy action applied (`block`…) or
/// `action_revert`, its target e.g. `campaign C-0007 (act-3)`; the action id in it keeps
/// a revert and a re-apply from being deduplicated as the same alert.
fn announce(st: &AppState, what: &str, a: &ActiveAction) {
    let described = a.describe();
    if what == "action_apply" {
        tracing::info!(id = %a.id, action = a.action.as_str(), target = %a.target, actor = ACTOR, "dashboard action applied");
        st.alerting.action_applied(
            now(),
            a.action.as_str(),
            ACTOR,
            &format!("{} ({})", a.target, a.id),
        );
    } else {
        tracing::info!(id = %a.id, action = a.action.as_str(), target = %a.target, actor = ACTOR, "dashboard action reverted");
        st.alerting
            .action_applied(now(), "action_revert", ACTOR, &described);
    }
    let entry = AuditEntry {
        ts: now(),
        actor: ACTOR.to_owned(),
        action: what.to_owned(),
        target: Some(a.target.to_string()),
        detail: Some(match &a.note {
            Some(note) if what == "action_apply" => {
                format!("{} ({}): {note}", a.action.as_str(), a.id)
            }
            _ => format!("{} ({})", a.action.as_str(), a.id),
        }),
    };
    if let Err(e) = st.store.append_audit(&entry) {
        tracing::warn!(error = %e, id = %a.id, "dashboard action: audit entry not written");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(kind: TargetKind, id: &str, action: ActionKind) -> NewAction {
        NewAction {
            target: Target {
                kind,
                id: id.to_owned(),
            },
            action,
            requests_per_minute: None,
            note: None,
        }
    }

    fn at() -> Timestamp {
        Timestamp::from_millis(1_775_000_000_000)
    }

    #[test]
    fn target_ids_are_checked_strictly() {
        for good in ["C-0007", "acct_alice", "a.b:c@d-e", &"x".repeat(128)] {
            assert!(check_target_id(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "C 7",
            "C\"7",
            "C'7",
            "a\\b",
            "é",
            "a\nb",
            &"x".repeat(129),
            "\" or true or \"",
        ] {
            let err = check_target_id(bad).unwrap_err();
            assert!(err.contains("1 to 128"), "{err}");
        }
        let err = new(TargetKind::Campaign, "C\" or true", ActionKind::Block)
            .validate()
            .unwrap_err();
        assert!(err.starts_with("target.id:"), "{err}");
        assert!(
            !err.contains("or true"),
            "the rejected id is not echoed: {err}"
        );
    }

    #[test]
    fn requests_per_minute_defaults_for_throttle_and_is_refused_elsewhere() {
        let t = new(TargetKind::Account, "a", ActionKind::Throttle)
            .validate()
            .unwrap();
        assert_eq!(t.requests_per_minute, Some(DEFAULT_REQUESTS_PER_MINUTE));
        let mut zero = new(TargetKind::Account, "a", ActionKind::Throttle);
        zero.requests_per_minute = Some(0);
        assert!(zero.validate().unwrap_err().contains("requests_per_minute"));
        let mut blocked = new(TargetKind::Account, "a", ActionKind::Block);
        blocked.requests_per_minute = Some(5);
        let err = blocked.validate().unwrap_err();
        assert!(err.contains("only applies"), "{err}");
    }

    #[test]
    fn notes_are_bounded_and_blank_ones_dropped() {
        let mut n = new(TargetKind::Account, "a", ActionKind::Block);
        n.note = Some("x".repeat(MAX_NOTE_CHARS + 1));
        assert!(n.validate().unwrap_err().starts_with("note:"));
        let mut n = new(TargetKind::Account, "a", ActionKind::Block);
        n.note = Some("bad\u{1b}[31m".to_owned());
        assert!(n.validate().unwrap_err().starts_with("note:"));
        let mut n = new(TargetKind::Account, "a", ActionKind::Block);
        n.note = Some("  ".to_owned());
        assert_eq!(n.validate().unwrap().note, None);
        let mut n = new(TargetKind::Account, "a", ActionKind::Block);
        n.note = Some("seen in\nticket 42".to_owned());
        assert!(n.validate().is_ok());
    }

    fn apply(l: &mut Ledger, kind: TargetKind, id: &str, action: ActionKind) -> ActiveAction {
        l.apply(new(kind, id, action).validate().unwrap(), "admin", at())
            .unwrap()
            .action
    }

    fn rules_of(l: &Ledger) -> Vec<(String, String, String)> {
        l.policy()
            .rules()
            .map(|r| (r.name.to_owned(), r.when.to_owned(), r.actions.to_string()))
            .collect()
    }

    fn rule(name: &str, when: &str, actions: &str) -> (String, String, String) {
        (name.to_owned(), when.to_owned(), actions.to_owned())
    }

    #[test]
    fn each_target_becomes_one_rule_in_the_order_applied() {
        let mut l = Ledger::open(None).unwrap();
        assert!(!l.persistent());
        let block = apply(&mut l, TargetKind::Campaign, "C-0007", ActionKind::Block);
        let tag = block.id.strip_suffix("-1").unwrap().to_owned();
        assert!(tag.starts_with("act-") && tag.len() == 10, "{}", block.id);
        let throttle = apply(
            &mut l,
            TargetKind::Account,
            "acct_bob",
            ActionKind::Throttle,
        );
        assert_eq!(
            rules_of(&l),
            [
                rule(
                    &format!("dashboard {tag}-1: block campaign C-0007"),
                    "campaign.id == \"C-0007\"",
                    "block"
                ),
                rule(
                    &format!("dashboard {tag}-2: throttle account acct_bob"),
                    "account.id == \"acct_bob\"",
                    "throttle"
                ),
            ]
        );
        let t = l.policy().rules().nth(1).unwrap().actions.throttle.unwrap();
        assert_eq!(t.requests_per_minute, Some(DEFAULT_REQUESTS_PER_MINUTE));
        assert_eq!(t.scope, moat_policy::Scope::Account);
        // A second action on a target joins its rule: both take effect.
        let withhold = apply(
            &mut l,
            TargetKind::Account,
            "acct_bob",
            ActionKind::WithholdReasoning,
        );
        let both =
            format!("dashboard {tag}-2+{tag}-3: throttle+withhold_reasoning account acct_bob");
        assert_eq!(
            rules_of(&l)[1],
            rule(
                &both,
                "account.id == \"acct_bob\"",
                "throttle+withhold_reasoning"
            )
        );
        assert_eq!(rule_of(l.items(), &throttle.id), both);
        assert_eq!(rule_of(l.items(), &withhold.id), both);
        // Summarizing contradicts withholding.
        let err = l
            .apply(
                new(
                    TargetKind::Account,
                    "acct_bob",
                    ActionKind::SummarizeReasoning,
                ),
                "admin",
                at(),
            )
            .unwrap_err();
        assert_eq!(err.status, StatusCode::CONFLICT);
        assert!(err.message.contains(&withhold.id), "{}", err.message);
        // A blocked target's rule only blocks; a campaign's throttle is shared by its members
        // once the block is reverted.
        apply(&mut l, TargetKind::Campaign, "C-0007", ActionKind::Throttle);
        let blocked = format!("dashboard {tag}-1+{tag}-4: block campaign C-0007");
        assert_eq!(
            rules_of(&l)[0],
            rule(&blocked, "campaign.id == \"C-0007\"", "block")
        );
        let reverted = l.revert(&block.id).unwrap();
        assert_eq!(reverted.action, block);
        assert_eq!(reverted.rule, blocked);
        // The campaign's rule now follows Bob's: its first remaining action is later.
        let second = l.policy().rules().nth(1).unwrap();
        assert_eq!(
            second.name,
            format!("dashboard {tag}-4: throttle campaign C-0007")
        );
        let t = second.actions.throttle.unwrap();
        assert_eq!(t.scope, moat_policy::Scope::Campaign);
        assert_eq!(l.views()[2]["rule"], second.name);
    }

    #[test]
    fn duplicates_conflict_and_ids_are_not_reused() {
        let mut l = Ledger::in_memory();
        let a = apply(&mut l, TargetKind::Campaign, "C-1", ActionKind::Block);
        let err = l
            .apply(
                new(TargetKind::Campaign, "C-1", ActionKind::Block),
                "admin",
                at(),
            )
            .unwrap_err();
        assert_eq!(err.status, StatusCode::CONFLICT);
        assert!(err.message.contains(&a.id), "{}", err.message);
        assert_eq!(l.revert(&a.id).unwrap().action, a);
        assert!(l.policy().is_empty());
        assert_eq!(l.revert(&a.id).unwrap_err().status, StatusCode::NOT_FOUND);
        let b = apply(&mut l, TargetKind::Campaign, "C-1", ActionKind::Block);
        assert_ne!(a.id, b.id);
    }

    #[test]
    fn long_target_ids_keep_rule_names_within_the_limit() {
        let mut l = Ledger::in_memory();
        let id = "x".repeat(MAX_TARGET_CHARS);
        apply(&mut l, TargetKind::Account, &id, ActionKind::Throttle);
        apply(
            &mut l,
            TargetKind::Account,
            &id,
            ActionKind::SummarizeReasoning,
        );
        let rule = l.policy().rules().next().unwrap();
        assert!(rule.name.chars().count() <= MAX_NAME_CHARS, "{}", rule.name);
        assert!(rule.name.ends_with('…'), "{}", rule.name);
        assert_eq!(rule.when, format!("account.id == \"{id}\""));
    }

    #[test]
    fn saved_actions_round_trip_and_ids_continue_after_a_revert() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("actions.json");
        let mut l = Ledger::open(Some(&file)).unwrap();
        assert!(l.persistent());
        // Written empty at start.
        assert!(file.exists());
        let mut t = new(TargetKind::Account, "acct_bob", ActionKind::Throttle);
        t.requests_per_minute = Some(3);
        t.note = Some("ticket 42".to_owned());
        let a = l.apply(t, "admin", at()).unwrap().action;
        assert_eq!(a.id, "act-1");
        let b = apply(&mut l, TargetKind::Campaign, "C-0007", ActionKind::Block);
        assert_eq!(b.id, "act-2");
        l.revert(&b.id).unwrap();
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["actions.json"]);

        let mut again = Ledger::open(Some(&file)).unwrap();
        assert_eq!(again.items(), std::slice::from_ref(&a));
        assert_eq!(rules_of(&again), rules_of(&l));
        let c = apply(
            &mut again,
            TargetKind::Campaign,
            "C-0007",
            ActionKind::Block,
        );
        assert_eq!(c.id, "act-3", "the reverted act-2 is not reused");
    }

    #[test]
    fn a_damaged_actions_file_is_refused_with_its_name_and_problem() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("actions.json");
        let good = json!({"version": 1, "next_id": 2, "items": [{
            "id": "act-1", "target": {"kind": "campaign", "id": "C-0007"}, "action": "block",
            "created_at": "2026-04-01T12:00:00Z", "actor": "admin"}]});
        std::fs::write(&file, good.to_string()).unwrap();
        assert_eq!(Ledger::open(Some(&file)).unwrap().items().len(), 1);
        let cases: Vec<(String, &str)> = vec![
            (
                "{\"version\": 1, \"next_id\": 2, \"items\": [".to_owned(),
                "line 1",
            ),
            (
                good.to_string().replace("\"block\"", "\"ban\""),
                "unknown variant",
            ),
            (
                good.to_string().replace("C-0007", "C\\\" or true"),
                "items[0].target.id",
            ),
            (
                good.to_string().replace("\"version\":1", "\"version\":2"),
                "version",
            ),
            (
                good.to_string()
                    .replace("\"actor\":\"admin\"", "\"actor\":\"admin\",\"extra\":1"),
                "unknown field",
            ),
            (
                json!({"version": 1, "next_id": 3, "items": [good["items"][0], good["items"][0]]})
                    .to_string(),
                "items[1].id",
            ),
            (
                good.to_string().replace(
                    "\"action\":\"block\"",
                    "\"action\":\"block\",\"requests_per_minute\":3",
                ),
                "items[0].requests_per_minute",
            ),
            (
                json!({"version": 1, "next_id": 3, "items": [
                    {"id": "act-1", "target": {"kind": "account", "id": "a"},
                     "action": "withhold_reasoning", "created_at": "2026-04-01T12:00:00Z", "actor": "admin"},
                    {"id": "act-2", "target": {"kind": "account", "id": "a"},
                     "action": "summarize_reasoning", "created_at": "2026-04-01T12:00:00Z", "actor": "admin"}]})
                    .to_string(),
                "items[1]: summarize_reasoning contradicts",
            ),
        ];
        for (text, expected) in cases {
            std::fs::write(&file, &text).unwrap();
            let err = Ledger::open(Some(&file)).unwrap_err();
            assert!(err.starts_with("actions file "), "{err}");
            assert!(err.contains("actions.json"), "{err}");
            assert!(err.contains(expected), "{expected:?} in {err}");
        }
    }

    #[test]
    fn a_failed_save_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sub").join("actions.json");
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let mut l = Ledger::open(Some(&file)).unwrap();
        std::fs::remove_file(&file).unwrap();
        std::fs::remove_dir(dir.path().join("sub")).unwrap();
        let err = l
            .apply(
                new(TargetKind::Campaign, "C-1", ActionKind::Block),
                "admin",
                at(),
            )
            .unwrap_err();
        assert_eq!(err.code, "actions_not_saved");
        assert!(l.items().is_empty());
        assert!(l.policy().is_empty());
    }
}

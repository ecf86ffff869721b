//! Loading a rule file into a [`Policy`] and evaluating it against [`Facts`].
//!
//! Loading is where all the care goes: the TOML is deserialized with spans, every key is
//! checked (`deny_unknown_fields` everywhere), every `when` is compiled and type-checked, and
//! action lists and their parameters are validated, each failure located to a line and column.
//! Evaluation then only walks compiled rules in order and hands out references, without
//! allocating in the common case. This module does not read files or watch for changes; the
//! gateway does that and keeps the old policy when [`Policy::parse`] fails.

use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;

use crate::actions::{Actions, Block, ReasoningAction, Scope, SummaryFallback, Throttle};
use crate::error::{line_col, string_offset, PolicyError};
use crate::expr::Condition;
use crate::facts::Facts;

/// Most rules a file may hold; evaluation is linear in the rule count.
pub const MAX_RULES: usize = 1000;
/// Longest rule name, in characters.
pub const MAX_NAME_CHARS: usize = 128;
/// Longest block message, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 1024;
/// Longest tarpit delay, in milliseconds.
pub const MAX_DELAY_MS: u64 = 60_000;

/// A loaded, validated policy: an ordered list of rules and a default action.
///
/// Cheap to share behind an `Arc`; evaluation takes `&self` and is thread-safe.
#[derive(Debug, Clone)]
pub struct Policy {
    rules: Vec<Rule>,
    default: Actions,
}

#[derive(Debug, Clone)]
struct Rule {
    name: String,
    when: String,
    condition: Condition,
    actions: Actions,
    mode: Mode,
}

/// Whether a rule is enforced or only reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// The first matching enforced rule decides (the default).
    #[default]
    Enforce,
    /// The rule is evaluated and reported as "would have", but never decides; evaluation
    /// continues with the next rule.
    Shadow,
}

impl Mode {
    /// The name used in the rule file: `enforce` or `shadow`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Shadow => "shadow",
        }
    }
}

/// A rule as shown by the admin API.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RuleSummary<'p> {
    /// Position in the file, from 0.
    pub index: usize,
    /// The rule's unique name.
    pub name: &'p str,
    /// The `when` expression as written.
    pub when: &'p str,
    /// The rule's actions.
    pub actions: &'p Actions,
    /// Enforced or shadow.
    pub mode: Mode,
}

/// A rule that matched.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Matched<'p> {
    /// The rule's name.
    pub name: &'p str,
    /// Position in the file, from 0.
    pub index: usize,
    /// What the rule does (or would do, for a shadow rule).
    pub actions: &'p Actions,
}

/// The outcome of evaluating a policy for one request.
#[derive(Debug, Clone)]
pub struct Decision<'p> {
    /// The enforced rule that decided, or `None` when the default applied.
    pub rule: Option<Matched<'p>>,
    /// What to do: the deciding rule's actions, or the default's.
    pub actions: &'p Actions,
    /// Shadow-mode rules that matched before the deciding rule, in file order.
    pub shadowed: Shadowed<'p>,
}

impl Decision<'_> {
    /// One stable label for metrics, see [`Actions::kind`].
    pub fn kind(&self) -> &'static str {
        self.actions.kind()
    }

    /// Whether no enforced rule matched and the default action applied.
    pub fn is_default(&self) -> bool {
        self.rule.is_none()
    }
}

/// How many shadow matches are kept without allocating; more spill to the heap.
const INLINE_SHADOWED: usize = 8;

/// The shadow rules that matched: a small list stored inline, so that evaluation does not
/// allocate unless more than eight shadow rules match one request.
#[derive(Clone)]
pub struct Shadowed<'p> {
    rules: &'p [Rule],
    inline: [usize; INLINE_SHADOWED],
    len: usize,
    spill: Vec<usize>,
}

impl<'p> Shadowed<'p> {
    fn new(rules: &'p [Rule]) -> Self {
        Shadowed {
            rules,
            inline: [0; INLINE_SHADOWED],
            len: 0,
            spill: Vec::new(),
        }
    }

    fn push(&mut self, index: usize) {
        if self.len < INLINE_SHADOWED {
            self.inline[self.len] = index;
        } else {
            self.spill.push(index);
        }
        self.len += 1;
    }

    /// How many shadow rules matched.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no shadow rule matched.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The matched shadow rules, in file order.
    pub fn iter(&self) -> impl Iterator<Item = Matched<'p>> + '_ {
        let rules = self.rules;
        self.inline[..self.len.min(INLINE_SHADOWED)]
            .iter()
            .chain(self.spill.iter())
            .filter_map(move |&i| rules.get(i).map(|r| r.matched(i)))
    }
}

impl std::fmt::Debug for Shadowed<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Rule {
    fn matched(&self, index: usize) -> Matched<'_> {
        Matched {
            name: &self.name,
            index,
            actions: &self.actions,
        }
    }
}

impl Policy {
    /// The policy used when none is configured: no rules, default `allow`.
    pub fn allow_all() -> Policy {
        Policy {
            rules: Vec::new(),
            default: Actions::default(),
        }
    }

    /// Parses and validates a rule file. `origin` names the file in error messages.
    pub fn parse(text: &str, origin: &str) -> Result<Policy, PolicyError> {
        Loader { text, origin }.load()
    }

    /// Decides what to do with one request: the first matching enforced rule wins, shadow
    /// rules that match before it are reported, and the default applies when nothing matches.
    pub fn evaluate(&self, facts: &Facts<'_>) -> Decision<'_> {
        let mut shadowed = Shadowed::new(&self.rules);
        for (index, rule) in self.rules.iter().enumerate() {
            if !rule.condition.eval(facts) {
                continue;
            }
            match rule.mode {
                Mode::Shadow => shadowed.push(index),
                Mode::Enforce => {
                    return Decision {
                        rule: Some(rule.matched(index)),
                        actions: &rule.actions,
                        shadowed,
                    }
                }
            }
        }
        Decision {
            rule: None,
            actions: &self.default,
            shadowed,
        }
    }

    /// A policy whose rules are this one's followed by `next`'s, in order, with `next`'s
    /// default: how the gateway puts rules made elsewhere (the dashboard's actions) in front
    /// of the file's. Both parts were validated when they were parsed; names are not
    /// re-checked for uniqueness across the two. It clones every rule, so build it when
    /// either part changes, never per request.
    pub fn followed_by(&self, next: &Policy) -> Policy {
        let mut rules = Vec::with_capacity(self.rules.len() + next.rules.len());
        rules.extend(self.rules.iter().cloned());
        rules.extend(next.rules.iter().cloned());
        Policy {
            rules,
            default: next.default.clone(),
        }
    }

    /// The rules in file order, for the admin API.
    pub fn rules(&self) -> impl Iterator<Item = RuleSummary<'_>> {
        self.rules.iter().enumerate().map(|(index, r)| RuleSummary {
            index,
            name: &r.name,
            when: &r.when,
            actions: &r.actions,
            mode: r.mode,
        })
    }

    /// The action applied when no enforced rule matches.
    pub fn default_actions(&self) -> &Actions {
        &self.default
    }

    /// How many rules the policy has.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether the policy has no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

impl Default for Policy {
    fn default() -> Self {
        Policy::allow_all()
    }
}

// ---------------------------------------------------------------------------------------------
// The file as written

/// The top level of a rule file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    /// Format version; must be 1.
    version: Option<Spanned<i64>>,
    /// Action when no rule matches.
    default: Option<Spanned<String>>,
    /// The rules, in order.
    #[serde(default)]
    rule: Vec<Spanned<RawRule>>,
}

/// One `[[rule]]` table. Integers are read as `i64` and range-checked here, so that errors say
/// what range is allowed instead of a generic serde message.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    /// Unique rule name.
    name: Option<Spanned<String>>,
    /// Boolean condition.
    when: Option<Spanned<String>>,
    /// One action name, or a list of compatible ones.
    action: Option<Spanned<toml::Value>>,
    /// `enforce` (default) or `shadow`.
    mode: Option<Spanned<String>>,
    /// Throttle: requests per minute.
    requests_per_minute: Option<Spanned<i64>>,
    /// Throttle: tokens per minute.
    tokens_per_minute: Option<Spanned<i64>>,
    /// Throttle: `account` (default) or `campaign`.
    scope: Option<Spanned<String>>,
    /// Block: HTTP status.
    status: Option<Spanned<i64>>,
    /// Block: message to the client.
    message: Option<Spanned<String>>,
    /// Tarpit: delay in milliseconds.
    delay_ms: Option<Spanned<i64>>,
    /// Summarize: what to do when summarizing fails.
    fallback: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ActionName {
    Allow,
    Shadow,
    Throttle,
    Withhold,
    Summarize,
    Block,
    Tarpit,
}

impl ActionName {
    fn parse(s: &str) -> Option<ActionName> {
        Some(match s {
            "allow" => ActionName::Allow,
            "shadow" => ActionName::Shadow,
            "throttle" => ActionName::Throttle,
            "withhold_reasoning" => ActionName::Withhold,
            "summarize_reasoning" => ActionName::Summarize,
            "block" => ActionName::Block,
            "tarpit" => ActionName::Tarpit,
            _ => return None,
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            ActionName::Allow => "allow",
            ActionName::Shadow => "shadow",
            ActionName::Throttle => "throttle",
            ActionName::Withhold => "withhold_reasoning",
            ActionName::Summarize => "summarize_reasoning",
            ActionName::Block => "block",
            ActionName::Tarpit => "tarpit",
        }
    }
}

const ACTION_LIST: &str =
    "allow, shadow, throttle, withhold_reasoning, summarize_reasoning, block, tarpit";

// ---------------------------------------------------------------------------------------------
// Validation

struct Loader<'t> {
    text: &'t str,
    origin: &'t str,
}

/// Where an error is and which rule it is in, before it becomes a [`PolicyError`].
type Located = (usize, String);

impl Loader<'_> {
    fn file_err(&self, offset: usize, reason: impl Into<String>) -> PolicyError {
        let (line, column) = line_col(self.text, offset);
        PolicyError::File {
            origin: self.origin.to_owned(),
            line,
            column,
            reason: reason.into(),
        }
    }

    fn rule_err(&self, rule: &str, (offset, reason): Located) -> PolicyError {
        let (line, column) = line_col(self.text, offset);
        PolicyError::Rule {
            origin: self.origin.to_owned(),
            line,
            column,
            rule: rule.to_owned(),
            reason,
        }
    }

    /// The name of the rule whose table contains byte `offset`, found by a second, lenient
    /// parse; used to name the rule in errors that serde reports (unknown keys, wrong types).
    fn rule_containing(&self, offset: usize) -> Option<String> {
        #[derive(Deserialize)]
        struct Names {
            #[serde(default)]
            rule: Vec<Spanned<NameOnly>>,
        }
        #[derive(Deserialize)]
        struct NameOnly {
            name: Option<String>,
        }
        let names: Names = toml::from_str(self.text).ok()?;
        let rule = names.rule.iter().find(|r| r.span().contains(&offset))?;
        let name = rule.get_ref().name.clone()?;
        check_name(&name).ok()?;
        Some(name)
    }

    fn load(&self) -> Result<Policy, PolicyError> {
        let raw: RawFile = toml::from_str(self.text).map_err(|e| {
            let offset = e.span().map_or(0, |s| s.start);
            // toml's messages can span lines ("invalid table header\nexpected ..."); an error
            // message is one line.
            let reason = e.message().trim().trim_end_matches('.').replace('\n', "; ");
            match self.rule_containing(offset) {
                Some(name) => self.rule_err(&name, (offset, reason)),
                None => self.file_err(offset, reason),
            }
        })?;
        match &raw.version {
            None => return Err(self.file_err(0, "missing required key \"version\" (must be 1)")),
            Some(v) if *v.get_ref() != 1 => {
                return Err(self.file_err(
                    v.span().start,
                    format!(
                        "unsupported version {}; this gateway reads version 1",
                        v.get_ref()
                    ),
                ))
            }
            Some(_) => {}
        }
        let default = match &raw.default {
            None => Actions::default(),
            Some(d) => default_actions(d.get_ref())
                .map_err(|reason| self.file_err(d.span().start, reason))?,
        };
        if raw.rule.len() > MAX_RULES {
            let at = raw.rule.get(MAX_RULES).map_or(0, |r| r.span().start);
            return Err(self.file_err(at, format!("more than {MAX_RULES} rules")));
        }
        let mut rules: Vec<Rule> = Vec::with_capacity(raw.rule.len());
        let mut name_lines: Vec<usize> = Vec::with_capacity(raw.rule.len());
        for (index, raw_rule) in raw.rule.iter().enumerate() {
            let rule_span = raw_rule.span();
            let r = raw_rule.get_ref();
            let Some(name) = &r.name else {
                return Err(self.file_err(
                    rule_span.start,
                    format!("rule #{}: missing required key \"name\"", index + 1),
                ));
            };
            let name_at = name.span().start;
            let name = name.get_ref();
            check_name(name).map_err(|reason| {
                self.file_err(name_at, format!("rule #{}: {reason}", index + 1))
            })?;
            if let Some(first) = rules.iter().position(|x| x.name == *name) {
                let first_line = name_lines.get(first).copied().unwrap_or(0);
                return Err(self.rule_err(
                    name,
                    (
                        name_at,
                        format!("duplicate rule name (first used on line {first_line})"),
                    ),
                ));
            }
            let rule = self
                .rule(r, rule_span.start)
                .map_err(|located| self.rule_err(name, located))?;
            name_lines.push(line_col(self.text, name_at).0);
            rules.push(rule);
        }
        Ok(Policy { rules, default })
    }

    /// Validates one rule whose name is already checked.
    fn rule(&self, r: &RawRule, rule_at: usize) -> Result<Rule, Located> {
        let Some(when) = &r.when else {
            return Err((rule_at, "missing required key \"when\"".into()));
        };
        let condition = Condition::compile(when.get_ref()).map_err(|e| {
            let span: Range<usize> = when.span();
            (string_offset(self.text, &span, e.offset), e.message)
        })?;
        let Some(action) = &r.action else {
            return Err((rule_at, "missing required key \"action\"".into()));
        };
        let names = action_names(action)?;
        let actions = build_actions(&names, r, action.span().start)?;
        let mode = match &r.mode {
            None => Mode::Enforce,
            Some(m) => match m.get_ref().as_str() {
                "enforce" => Mode::Enforce,
                "shadow" => Mode::Shadow,
                other => {
                    return Err((
                        m.span().start,
                        format!("unknown mode {other:?}; expected \"enforce\" or \"shadow\""),
                    ))
                }
            },
        };
        Ok(Rule {
            name: r
                .name
                .as_ref()
                .map(|n| n.get_ref().clone())
                .unwrap_or_default(),
            when: when.get_ref().clone(),
            condition,
            actions,
            mode,
        })
    }
}

fn check_name(name: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err("name must not be empty".into());
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(format!("name is longer than {MAX_NAME_CHARS} characters"));
    }
    if name.chars().any(char::is_control) {
        return Err("name must not contain control characters".into());
    }
    Ok(())
}

/// The policy-wide default: a single action that needs no parameters.
fn default_actions(name: &str) -> Result<Actions, String> {
    let mut a = Actions::default();
    match ActionName::parse(name) {
        Some(ActionName::Allow) => {}
        Some(ActionName::Shadow) => a.shadow = true,
        Some(ActionName::Withhold) => a.reasoning = ReasoningAction::Withhold,
        Some(ActionName::Summarize) => {
            a.reasoning = ReasoningAction::Summarize {
                fallback: SummaryFallback::Withhold,
            }
        }
        Some(ActionName::Block) => {
            a.block = Some(Block {
                status: 403,
                message: DEFAULT_BLOCK_MESSAGE.into(),
            })
        }
        Some(n @ (ActionName::Throttle | ActionName::Tarpit)) => {
            return Err(format!(
                "default action {:?} needs parameters; add a last rule with when = 'true' instead",
                n.as_str()
            ))
        }
        None => {
            return Err(format!(
                "unknown default action {name:?}; expected one of {ACTION_LIST}"
            ))
        }
    }
    Ok(a)
}

/// The message of a `block` without one.
const DEFAULT_BLOCK_MESSAGE: &str = "request refused by policy";

fn action_names(action: &Spanned<toml::Value>) -> Result<Vec<ActionName>, Located> {
    let at = action.span().start;
    let texts: Vec<&str> = match action.get_ref() {
        toml::Value::String(s) => vec![s.as_str()],
        toml::Value::Array(items) => {
            let mut v = Vec::with_capacity(items.len());
            for item in items {
                match item.as_str() {
                    Some(s) => v.push(s),
                    None => return Err((at, "action lists hold only action names".into())),
                }
            }
            v
        }
        _ => return Err((at, "action must be an action name or a list of them".into())),
    };
    if texts.is_empty() {
        return Err((at, "action list is empty".into()));
    }
    let mut names = Vec::with_capacity(texts.len());
    for t in texts {
        let Some(n) = ActionName::parse(t) else {
            let shown: String = t.chars().take(40).collect();
            return Err((
                at,
                format!("unknown action {shown:?}; expected one of {ACTION_LIST}"),
            ));
        };
        if names.contains(&n) {
            return Err((at, format!("action {:?} is listed twice", n.as_str())));
        }
        names.push(n);
    }
    if names.len() > 1 {
        for alone in [ActionName::Allow, ActionName::Shadow, ActionName::Block] {
            if names.contains(&alone) {
                return Err((
                    at,
                    format!("{:?} cannot be combined with other actions", alone.as_str()),
                ));
            }
        }
        if names.contains(&ActionName::Withhold) && names.contains(&ActionName::Summarize) {
            return Err((
                at,
                "withhold_reasoning and summarize_reasoning contradict each other".into(),
            ));
        }
    }
    Ok(names)
}

/// Fails when a parameter is present but its action is not: a misspelt or misplaced security
/// setting must not be silently ignored.
fn only_with<T>(
    param: &Option<Spanned<T>>,
    key: &str,
    owner: ActionName,
    names: &[ActionName],
) -> Result<(), Located> {
    match param {
        Some(p) if !names.contains(&owner) => Err((
            p.span().start,
            format!(
                "{key:?} only applies to the {:?} action, which this rule does not use",
                owner.as_str()
            ),
        )),
        _ => Ok(()),
    }
}

fn ranged(p: &Spanned<i64>, key: &str, min: i64, max: i64) -> Result<i64, Located> {
    let v = *p.get_ref();
    if v < min || v > max {
        return Err((
            p.span().start,
            format!("{key} must be between {min} and {max}"),
        ));
    }
    Ok(v)
}

fn build_actions(names: &[ActionName], r: &RawRule, action_at: usize) -> Result<Actions, Located> {
    use ActionName as A;
    only_with(
        &r.requests_per_minute,
        "requests_per_minute",
        A::Throttle,
        names,
    )?;
    only_with(
        &r.tokens_per_minute,
        "tokens_per_minute",
        A::Throttle,
        names,
    )?;
    only_with(&r.scope, "scope", A::Throttle, names)?;
    only_with(&r.status, "status", A::Block, names)?;
    only_with(&r.message, "message", A::Block, names)?;
    only_with(&r.delay_ms, "delay_ms", A::Tarpit, names)?;
    only_with(&r.fallback, "fallback", A::Summarize, names)?;

    let mut a = Actions::default();
    for name in names {
        match name {
            A::Allow => {}
            A::Shadow => a.shadow = true,
            A::Withhold => a.reasoning = ReasoningAction::Withhold,
            A::Summarize => {
                let fallback = match &r.fallback {
                    None => SummaryFallback::Withhold,
                    Some(f) => match f.get_ref().as_str() {
                        "withhold_reasoning" => SummaryFallback::Withhold,
                        "allow" => SummaryFallback::Allow,
                        _ => {
                            return Err((
                                f.span().start,
                                "fallback must be \"withhold_reasoning\" or \"allow\"".into(),
                            ))
                        }
                    },
                };
                a.reasoning = ReasoningAction::Summarize { fallback };
            }
            A::Block => {
                let status = match &r.status {
                    None => 403,
                    Some(s) => ranged(s, "status", 400, 599)?,
                };
                let message = match &r.message {
                    None => DEFAULT_BLOCK_MESSAGE.to_owned(),
                    Some(m) if m.get_ref().len() > MAX_MESSAGE_BYTES => {
                        return Err((
                            m.span().start,
                            format!("message is longer than {MAX_MESSAGE_BYTES} bytes"),
                        ))
                    }
                    Some(m) => m.get_ref().clone(),
                };
                a.block = Some(Block {
                    // The range check above makes the conversion infallible.
                    status: u16::try_from(status).unwrap_or(403),
                    message,
                });
            }
            A::Tarpit => {
                let Some(d) = &r.delay_ms else {
                    return Err((action_at, "tarpit needs delay_ms (1 to 60000)".into()));
                };
                let ms = ranged(d, "delay_ms", 1, MAX_DELAY_MS as i64)?;
                a.tarpit_ms = Some(ms.unsigned_abs());
            }
            A::Throttle => {
                if r.requests_per_minute.is_none() && r.tokens_per_minute.is_none() {
                    return Err((
                        action_at,
                        "throttle needs requests_per_minute, tokens_per_minute or both".into(),
                    ));
                }
                let rpm = match &r.requests_per_minute {
                    None => None,
                    Some(p) => {
                        let v = ranged(p, "requests_per_minute", 1, i64::from(u32::MAX))?;
                        u32::try_from(v).ok()
                    }
                };
                let tpm = match &r.tokens_per_minute {
                    None => None,
                    Some(p) => Some(ranged(p, "tokens_per_minute", 1, i64::MAX)?.unsigned_abs()),
                };
                let scope = match &r.scope {
                    None => Scope::Account,
                    Some(s) => match s.get_ref().as_str() {
                        "account" => Scope::Account,
                        "campaign" => Scope::Campaign,
                        _ => {
                            return Err((
                                s.span().start,
                                "scope must be \"account\" or \"campaign\"".into(),
                            ))
                        }
                    },
                };
                a.throttle = Some(Throttle {
                    requests_per_minute: rpm,
                    tokens_per_minute: tpm,
                    scope,
                });
            }
        }
    }
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{AccountFacts, CampaignFacts};

    fn parse(text: &str) -> Policy {
        match Policy::parse(text, "t.toml") {
            Ok(p) => p,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn followed_by_puts_the_first_rules_in_front_and_keeps_the_seconds_default() {
        let front = parse(
            "version = 1\n[[rule]]\nname = \"dash\"\nwhen = 'campaign.id == \"C-1\"'\naction = \"block\"\n",
        );
        let file = parse(
            "version = 1\ndefault = \"withhold_reasoning\"\n[[rule]]\nname = \"file\"\nwhen = 'account.id == \"a\"'\naction = \"allow\"\n",
        );
        let both = front.followed_by(&file);
        let names: Vec<_> = both.rules().map(|r| (r.index, r.name)).collect();
        assert_eq!(names, [(0, "dash"), (1, "file")]);
        assert_eq!(both.default_actions(), file.default_actions());
        // The front rule decides before the file's allow.
        let member = Facts {
            account: AccountFacts {
                id: "a",
                ..AccountFacts::default()
            },
            campaign: CampaignFacts {
                member: true,
                id: "C-1",
                ..CampaignFacts::default()
            },
            ..Facts::default()
        };
        assert_eq!(both.evaluate(&member).kind(), "block");
        assert_eq!(file.evaluate(&member).kind(), "allow");
        // Nothing in front: the file alone.
        let alone = Policy::allow_all().followed_by(&file);
        assert_eq!(alone.len(), 1);
        assert_eq!(alone.default_actions().kind(), "withhold_reasoning");
    }
}

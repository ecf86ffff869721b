//! The running policy and its hot reload: the rule file is read, parsed and validated in
//! full before it replaces the running one, so a bad file is rejected with its line and
//! column while the old rules keep answering requests. Reloads come from the admin API, from
//! SIGHUP, and from a timer that checks the file's modification time.
//!
//! The policy in force is the dashboard's actions ([`crate::actions`]) followed by the file's
//! rules, combined into one [`Policy`] whenever either part changes, so a request still does
//! one `ArcSwap` load. Reloading the file, or having it rejected, leaves the actions in front.
//! This module does not decide what an action means (see `actions`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;
use std::time::SystemTime;

use arc_swap::ArcSwap;
use moat_policy::Policy;

use crate::actions::Ledger;
use crate::lock;

/// The outcome of a reload.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReloadOutcome {
    /// Whether the new rules now run.
    pub applied: bool,
    /// Rules of the file running after the reload (the dashboard's actions not counted).
    pub rules: usize,
    /// Why the file was rejected (file, line, column and reason).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The policy in force.
#[derive(Debug)]
pub struct Rules {
    /// The effective policy: the dashboard's action rules, then the file's. The request
    /// path reads only this.
    current: ArcSwap<Policy>,
    file: Option<PathBuf>,
    /// Modification time of the file last read (applied or rejected), so a timer does not
    /// re-read, and re-report, an unchanged file.
    seen: Mutex<Option<SystemTime>>,
    /// The last rejection, for the admin API.
    last_error: Mutex<Option<String>>,
    /// What `current` is built from. Held while either part changes and `current` is
    /// rebuilt, so that a reload and an action never rebuild from stale halves.
    parts: Mutex<Parts>,
}

/// The two halves of the effective policy.
#[derive(Debug)]
struct Parts {
    /// The file's rules (allow-all without a file).
    from_file: Arc<Policy>,
    /// The dashboard's actions and their rules.
    ledger: Ledger,
}

impl Parts {
    fn combined(&self) -> Policy {
        self.ledger.policy().followed_by(&self.from_file)
    }
}

/// The effective policy and how many of its first rules come from dashboard actions.
#[derive(Debug, Clone)]
pub struct Effective {
    /// Dashboard rules first, then the file's.
    pub policy: Arc<Policy>,
    /// Rules `0..dashboard` are dashboard actions; the rest are the file's.
    pub dashboard: usize,
}

impl Effective {
    /// `"dashboard"` or `"file"`: where rule `index` of [`Effective::policy`] comes from.
    pub fn source(&self, index: usize) -> &'static str {
        if index < self.dashboard {
            "dashboard"
        } else {
            "file"
        }
    }
}

impl Rules {
    fn new(policy: Policy, file: Option<PathBuf>, mtime: Option<SystemTime>) -> Rules {
        let policy = Arc::new(policy);
        Rules {
            current: ArcSwap::new(Arc::clone(&policy)),
            file,
            seen: Mutex::new(mtime),
            last_error: Mutex::new(None),
            parts: Mutex::new(Parts {
                from_file: policy,
                ledger: Ledger::in_memory(),
            }),
        }
    }

    /// Rules that allow everything, with no file.
    pub fn allow_all() -> Rules {
        Rules::new(Policy::allow_all(), None, None)
    }

    /// Loads `file`; at start a bad file is an error (nothing runs on rules it cannot read).
    pub fn load(file: PathBuf) -> Result<Rules, String> {
        let (policy, mtime) = read(&file)?;
        Ok(Rules::new(policy, Some(file), mtime))
    }

    /// Keeps the dashboard's actions in `actions_file` (`[policy] actions_file`): reads the
    /// actions saved there and puts them in force; without a file they live in memory. A
    /// damaged file is an error naming it and the problem.
    pub fn with_actions(self, actions_file: Option<&Path>) -> Result<Rules, String> {
        let ledger = Ledger::open(actions_file)?;
        {
            let mut parts = lock(&self.parts);
            parts.ledger = ledger;
            self.current.store(Arc::new(parts.combined()));
        }
        Ok(self)
    }

    /// The rules in force (the dashboard's actions first, then the file's).
    pub fn current(&self) -> Arc<Policy> {
        self.current.load_full()
    }

    /// The rules in force and where each comes from, for the admin API.
    pub fn effective(&self) -> Effective {
        let parts = lock(&self.parts);
        Effective {
            policy: self.current.load_full(),
            dashboard: parts.ledger.policy().len(),
        }
    }

    /// The rule file, if any.
    pub fn file(&self) -> Option<&PathBuf> {
        self.file.as_ref()
    }

    /// The last rejected reload's error, until a reload succeeds.
    pub fn last_error(&self) -> Option<String> {
        lock(&self.last_error).clone()
    }

    /// Reads the dashboard's actions.
    pub(crate) fn read_actions<R>(&self, f: impl FnOnce(&Ledger) -> R) -> R {
        f(&lock(&self.parts).ledger)
    }

    /// Changes the dashboard's actions and, when `f` succeeds, puts the new effective policy
    /// in force before returning. Blocking (the ledger may write its file): call it off the
    /// async threads.
    pub(crate) fn change_actions<R, E>(
        &self,
        f: impl FnOnce(&mut Ledger) -> Result<R, E>,
    ) -> Result<R, E> {
        let mut parts = lock(&self.parts);
        let out = f(&mut parts.ledger)?;
        self.current.store(Arc::new(parts.combined()));
        Ok(out)
    }

    /// Reads and checks the file as a reload would, without applying it: how many rules it
    /// holds, or why it would be rejected (file, line, column and reason).
    pub fn validate(&self) -> Result<usize, String> {
        let file = self
            .file
            .as_ref()
            .ok_or_else(|| "no policy file is configured".to_owned())?;
        read(file).map(|(policy, _)| policy.len())
    }

    /// Reads the file again and swaps it in if it is valid; the dashboard's actions stay in
    /// front either way.
    pub fn reload(&self) -> ReloadOutcome {
        let Some(file) = &self.file else {
            return ReloadOutcome {
                applied: false,
                rules: lock(&self.parts).from_file.len(),
                error: Some("no policy file is configured".to_owned()),
            };
        };
        let read = read(file);
        let mut parts = lock(&self.parts);
        match read {
            Ok((policy, mtime)) => {
                let rules = policy.len();
                parts.from_file = Arc::new(policy);
                self.current.store(Arc::new(parts.combined()));
                *lock(&self.seen) = mtime;
                *lock(&self.last_error) = None;
                ReloadOutcome {
                    applied: true,
                    rules,
                    error: None,
                }
            }
            Err(e) => {
                *lock(&self.seen) = mtime_of(file);
                *lock(&self.last_error) = Some(e.clone());
                ReloadOutcome {
                    applied: false,
                    rules: parts.from_file.len(),
                    error: Some(e),
                }
            }
        }
    }

    /// Whether the file changed since it was last read (applied or rejected).
    pub fn changed(&self) -> bool {
        let Some(file) = self.file.as_ref() else {
            return false;
        };
        mtime_of(file) != *lock(&self.seen)
    }
}

fn mtime_of(file: &PathBuf) -> Option<SystemTime> {
    std::fs::metadata(file).and_then(|m| m.modified()).ok()
}

fn read(file: &PathBuf) -> Result<(Policy, Option<SystemTime>), String> {
    let mtime = mtime_of(file);
    let origin = file.display().to_string();
    let text = std::fs::read_to_string(file).map_err(|e| format!("{origin}: {e}"))?;
    let policy = Policy::parse(&text, &origin).map_err(|e| e.to_string())?;
    Ok((policy, mtime))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "version = 1\n\n[[rule]]\nname = \"block flagged\"\nwhen = 'account.flagged'\naction = \"block\"\n";

    #[test]
    fn bad_file_is_rejected_with_its_line_and_old_rules_keep_running() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policy.toml");
        std::fs::write(&path, GOOD).unwrap();
        let rules = Rules::load(path.clone()).unwrap();
        assert_eq!(rules.current().len(), 1);
        std::fs::write(
            &path,
            "version = 1\n\n[[rule]]\nname = \"x\"\nwhen = 'acount.risk > 1'\naction = \"block\"\n",
        )
        .unwrap();
        let checked = rules.validate().unwrap_err();
        assert!(checked.contains(":5:"), "{checked}");
        let out = rules.reload();
        assert!(!out.applied);
        let err = out.error.unwrap();
        assert!(err.contains(":5:"), "{err}");
        assert_eq!(rules.current().len(), 1);
        assert!(rules.last_error().is_some());
        std::fs::write(&path, format!("{GOOD}\n[[rule]]\nname = \"y\"\nwhen = 'request.cot > 0.9'\naction = \"withhold_reasoning\"\n")).unwrap();
        let out = rules.reload();
        assert!(out.applied, "{out:?}");
        assert_eq!(rules.current().len(), 2);
        assert!(rules.last_error().is_none());
    }

    #[test]
    fn dashboard_actions_stay_in_front_across_reloads_and_rejections() {
        use crate::actions::{ActionKind, NewAction, Target, TargetKind};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policy.toml");
        std::fs::write(&path, GOOD).unwrap();
        let rules = Rules::load(path.clone())
            .unwrap()
            .with_actions(None)
            .unwrap();
        let new = NewAction {
            target: Target {
                kind: TargetKind::Campaign,
                id: "C-0007".to_owned(),
            },
            action: ActionKind::Block,
            requests_per_minute: None,
            note: None,
        };
        let at = moat_types::Timestamp::from_millis(0);
        let a = rules
            .change_actions(|l| l.apply(new, "admin", at))
            .unwrap()
            .action;
        let names =
            |r: &Rules| -> Vec<String> { r.current().rules().map(|x| x.name.to_owned()).collect() };
        let dash = format!("dashboard {}: block campaign C-0007", a.id);
        assert_eq!(names(&rules), [dash.clone(), "block flagged".to_owned()]);
        let eff = rules.effective();
        assert_eq!((eff.source(0), eff.source(1)), ("dashboard", "file"));

        std::fs::write(&path, format!("{GOOD}\n[[rule]]\nname = \"y\"\nwhen = 'request.cot > 0.9'\naction = \"withhold_reasoning\"\n")).unwrap();
        let out = rules.reload();
        assert!(out.applied, "{out:?}");
        assert_eq!(out.rules, 2, "the file's rules only");
        assert_eq!(
            names(&rules),
            [dash.clone(), "block flagged".to_owned(), "y".to_owned()]
        );
        std::fs::write(&path, "version = 1\n[[rule]]\nname = \"x\"\n").unwrap();
        assert!(!rules.reload().applied);
        assert_eq!(names(&rules)[0], dash);
        assert_eq!(rules.current().len(), 3);

        rules.change_actions(|l| l.revert(&a.id)).unwrap();
        assert_eq!(names(&rules), ["block flagged", "y"]);
        assert_eq!(rules.effective().dashboard, 0);
    }
}

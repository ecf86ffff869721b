//! The running policy and its hot reload: the rule file is read, parsed and validated in
//! full before it replaces the running one, so a bad file is rejected with its line and
//! column while the old rules keep answering requests. Reloads come from the admin API, from
//! SIGHUP, and from a timer that checks the file's modification time.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::ArcSwap;
use moat_policy::Policy;
use std::sync::Mutex;

use crate::lock;

/// The outcome of a reload.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReloadOutcome {
    /// Whether the new rules now run.
    pub applied: bool,
    /// Rules running after the reload.
    pub rules: usize,
    /// Why the file was rejected (file, line, column and reason).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The policy in force.
#[derive(Debug)]
pub struct Rules {
    current: ArcSwap<Policy>,
    file: Option<PathBuf>,
    /// Modification time of the file last read (applied or rejected), so a timer does not
    /// re-read, and re-report, an unchanged file.
    seen: Mutex<Option<SystemTime>>,
    /// The last rejection, for the admin API.
    last_error: Mutex<Option<String>>,
}

impl Rules {
    /// Rules that allow everything, with no file.
    pub fn allow_all() -> Rules {
        Rules {
            current: ArcSwap::from_pointee(Policy::allow_all()),
            file: None,
            seen: Mutex::new(None),
            last_error: Mutex::new(None),
        }
    }

    /// Loads `file`; at start a bad file is an error (nothing runs on rules it cannot read).
    pub fn load(file: PathBuf) -> Result<Rules, String> {
        let (policy, mtime) = read(&file)?;
        Ok(Rules {
            current: ArcSwap::from_pointee(policy),
            file: Some(file),
            seen: Mutex::new(mtime),
            last_error: Mutex::new(None),
        })
    }

    /// The rules in force.
    pub fn current(&self) -> Arc<Policy> {
        self.current.load_full()
    }

    /// The rule file, if any.
    pub fn file(&self) -> Option<&PathBuf> {
        self.file.as_ref()
    }

    /// The last rejected reload's error, until a reload succeeds.
    pub fn last_error(&self) -> Option<String> {
        lock(&self.last_error).clone()
    }

    /// Reads the file again and swaps it in if it is valid.
    pub fn reload(&self) -> ReloadOutcome {
        let Some(file) = &self.file else {
            return ReloadOutcome {
                applied: false,
                rules: self.current.load().len(),
                error: Some("no policy file is configured".to_owned()),
            };
        };
        match read(file) {
            Ok((policy, mtime)) => {
                let rules = policy.len();
                self.current.store(Arc::new(policy));
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
                    rules: self.current.load().len(),
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
}

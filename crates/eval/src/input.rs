//! The two small inputs of an evaluation, held in memory: ground-truth labels ([`LabelSet`]) and
//! a detector's output ([`DetectionSet`]).
//!
//! Both are one line per account (plus one per detected campaign), so they fit in memory even
//! for a million accounts; the traffic, which is far larger, is never held here. Loading rejects
//! only what makes the input ambiguous (duplicate lines); everything else is judged later against
//! the traffic's population by `validate`.

use std::collections::HashMap;
use std::path::Path;

use moat_format::{ReadOptions, Reader, SkipReport};
use moat_types::{Class, Detection, Label, Timestamp};

use crate::EvalError;

/// Ground truth of one account, as loaded.
#[derive(Debug, Clone)]
pub(crate) struct LabelEntry {
    pub(crate) class: Class,
    pub(crate) campaign: Option<String>,
    pub(crate) tactic: Option<String>,
}

/// The labels file: one [`Label`] per account, duplicates rejected.
#[derive(Debug, Clone)]
pub struct LabelSet {
    pub(crate) name: String,
    pub(crate) labels: HashMap<String, (u64, LabelEntry)>,
    pub(crate) skipped: SkipReport,
}

impl LabelSet {
    /// An empty set; `name` (normally the file name) appears in errors.
    pub fn new(name: impl Into<String>) -> Self {
        LabelSet {
            name: name.into(),
            labels: HashMap::new(),
            skipped: SkipReport::default(),
        }
    }

    /// Builds a set from records, numbering them 1, 2, … as if they were lines of a file.
    pub fn from_labels(
        name: impl Into<String>,
        labels: impl IntoIterator<Item = Label>,
    ) -> Result<Self, EvalError> {
        let mut set = LabelSet::new(name);
        for (i, label) in labels.into_iter().enumerate() {
            set.insert(i as u64 + 1, label)?;
        }
        Ok(set)
    }

    /// Reads a labels file (plain or gzip).
    pub fn read(path: &Path, opts: ReadOptions) -> Result<Self, EvalError> {
        let mut reader = Reader::<Label>::open(path, opts)?;
        let mut set = LabelSet::new(reader.path());
        while let Some(label) = reader.next() {
            set.insert(reader.line(), label?)?;
        }
        set.skipped = reader.skipped().clone();
        Ok(set)
    }

    /// Adds the label read at `line`; a second label for one account is an error.
    pub fn insert(&mut self, line: u64, label: Label) -> Result<(), EvalError> {
        let entry = LabelEntry {
            class: label.class,
            campaign: label.campaign,
            tactic: label.tactic,
        };
        if let Some((first_line, _)) = self.labels.get(&label.account_id) {
            return Err(EvalError::DuplicateLabel {
                path: self.name.clone(),
                line,
                account: label.account_id,
                first_line: *first_line,
            });
        }
        self.labels.insert(label.account_id, (line, entry));
        Ok(())
    }

    /// Number of labelled accounts.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether no account is labelled.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

/// What evaluation keeps of one `account` line.
#[derive(Debug, Clone)]
pub(crate) struct AccountLine {
    pub(crate) line: u64,
    pub(crate) flagged: bool,
    pub(crate) flagged_at: Option<Timestamp>,
    pub(crate) campaign_id: Option<String>,
}

/// What evaluation keeps of one `campaign` line.
#[derive(Debug, Clone)]
pub(crate) struct CampaignLine {
    pub(crate) campaign_id: String,
    pub(crate) accounts: Vec<String>,
}

/// A detections file: account lines by account, campaign lines in file order.
#[derive(Debug, Clone)]
pub struct DetectionSet {
    pub(crate) name: String,
    pub(crate) accounts: HashMap<String, AccountLine>,
    pub(crate) campaigns: Vec<CampaignLine>,
    campaign_lines: HashMap<String, u64>,
    pub(crate) skipped: SkipReport,
}

impl DetectionSet {
    /// An empty set; `name` (normally the file name) appears in errors.
    pub fn new(name: impl Into<String>) -> Self {
        DetectionSet {
            name: name.into(),
            accounts: HashMap::new(),
            campaigns: Vec::new(),
            campaign_lines: HashMap::new(),
            skipped: SkipReport::default(),
        }
    }

    /// Builds a set from records, numbering them 1, 2, … as if they were lines of a file.
    pub fn from_detections(
        name: impl Into<String>,
        detections: impl IntoIterator<Item = Detection>,
    ) -> Result<Self, EvalError> {
        let mut set = DetectionSet::new(name);
        for (i, d) in detections.into_iter().enumerate() {
            set.insert(i as u64 + 1, d)?;
        }
        Ok(set)
    }

    /// Reads a detections file (plain or gzip).
    pub fn read(path: &Path, opts: ReadOptions) -> Result<Self, EvalError> {
        let mut reader = Reader::<Detection>::open(path, opts)?;
        let mut set = DetectionSet::new(reader.path());
        while let Some(d) = reader.next() {
            set.insert(reader.line(), d?)?;
        }
        set.skipped = reader.skipped().clone();
        Ok(set)
    }

    /// Adds the line read at `line`. A second account line for one account, or a second
    /// campaign line with one `campaign_id`, is an error.
    pub fn insert(&mut self, line: u64, detection: Detection) -> Result<(), EvalError> {
        match detection {
            Detection::Account(a) => {
                if let Some(first) = self.accounts.get(&a.account_id) {
                    return Err(EvalError::DuplicateAccountLine {
                        path: self.name.clone(),
                        line,
                        account: a.account_id,
                        first_line: first.line,
                    });
                }
                let kept = AccountLine {
                    line,
                    flagged: a.flagged,
                    flagged_at: a.flagged_at,
                    campaign_id: a.campaign_id,
                };
                self.accounts.insert(a.account_id, kept);
            }
            Detection::Campaign(c) => {
                if let Some(first_line) = self.campaign_lines.get(&c.campaign_id) {
                    return Err(EvalError::DuplicateCampaignLine {
                        path: self.name.clone(),
                        line,
                        campaign: c.campaign_id,
                        first_line: *first_line,
                    });
                }
                self.campaign_lines.insert(c.campaign_id.clone(), line);
                self.campaigns.push(CampaignLine {
                    campaign_id: c.campaign_id,
                    accounts: c.accounts,
                });
            }
        }
        Ok(())
    }

    /// Number of account lines.
    pub fn account_lines(&self) -> usize {
        self.accounts.len()
    }

    /// Number of campaign lines.
    pub fn campaign_lines(&self) -> usize {
        self.campaigns.len()
    }
}

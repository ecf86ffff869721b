//! Spill files: where the recorder puts records it could not queue or store, and how they come
//! back ([`import_spill`], [`import_decision_spill`]).
//!
//! A spill file is JSON Lines, appended: exchanges as exchange-log v1 lines, decisions as
//! [`crate::DecisionRecord`] JSON. Lines are in the order they were spilled, which is not
//! always `ts` order (a batch that failed to store is spilled after records that overflowed the
//! queue later), so import them into a store rather than feeding them to `moat analyze`
//! directly. Import is idempotent for records with a request id, so a file can be imported
//! again after a partial import. Not here: the queue and its counters (`recorder`).

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::json_reason;
use crate::{AppendReport, Store, StoreError};

/// Longest spill line that import accepts; longer lines are counted as bad and skipped, so a
/// damaged file cannot make import allocate without bound.
pub const MAX_SPILL_LINE_BYTES: usize = 64 << 20;

/// Records per store append during import.
const IMPORT_BATCH: usize = 1_000;

/// Bad line numbers an [`ImportReport`] lists; the count covers the rest.
const LISTED_BAD_LINES: usize = 20;

/// Outcome of importing a spill file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Non-empty lines read.
    pub lines: u64,
    /// Records the store did not have before.
    pub imported: u64,
    /// Records the store already had (skipped).
    pub duplicates: u64,
    /// Lines that were not a record (malformed, torn by a crash, or too long), skipped.
    pub bad_lines: u64,
    /// Line numbers (1-based) of the first bad lines.
    pub first_bad_lines: Vec<u64>,
}

/// An append-only JSON Lines file shared by the callers of the recorder and its thread.
#[derive(Debug)]
pub(crate) struct SpillFile {
    path: Option<PathBuf>,
    state: Mutex<SpillState>,
}

#[derive(Debug, Default)]
struct SpillState {
    file: Option<File>,
    /// A write failed, possibly halfway through a line: start the next write with a newline so
    /// that the torn line stays one bad line instead of swallowing the next record.
    torn: bool,
}

impl SpillFile {
    /// A spill file at `path`, opened on first use; `None` means spilling is off (every spill
    /// fails and the caller counts the records as dropped).
    pub(crate) fn new(path: Option<PathBuf>) -> Self {
        SpillFile {
            path,
            state: Mutex::new(SpillState::default()),
        }
    }

    /// Appends records, one line each, in a single write.
    pub(crate) fn append<T: Serialize>(&self, records: &[T]) -> Result<(), StoreError> {
        let Some(path) = &self.path else {
            return Err(StoreError::Io {
                what: "spill file".to_owned(),
                source: std::io::Error::other("no spill file configured"),
            });
        };
        // Encode before taking the lock: the lock is shared with request threads.
        let mut buf = Vec::new();
        for r in records {
            serde_json::to_writer(&mut buf, r).map_err(|e| StoreError::Encode {
                what: "spilled record",
                reason: json_reason(&e),
            })?;
            buf.push(b'\n');
        }
        let io = |source| StoreError::Io {
            what: format!("spill file {}", path.display()),
            source,
        };
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.file.is_none() {
            // Create the spill directory on first use: spilling happens when things already go
            // wrong, which is no time to fail on a directory an operator forgot to create.
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(io)?;
            }
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(io)?;
            state.file = Some(file);
        }
        let torn = state.torn;
        let result = match state.file.as_mut() {
            Some(file) => {
                let lead: &[u8] = if torn { b"\n" } else { b"" };
                file.write_all(lead).and_then(|()| file.write_all(&buf))
            }
            None => Ok(()),
        };
        match result {
            Ok(()) => {
                state.torn = false;
                Ok(())
            }
            Err(e) => {
                // Reopen next time: the handle may point at a file that was removed or a disk
                // that filled up and has since been cleaned.
                state.torn = true;
                state.file = None;
                Err(io(e))
            }
        }
    }
}

impl SpillFile {
    /// Moves the spill file aside for import, if it holds anything: the handle is closed and
    /// the file renamed to `NAME.recovering-TAG`, so that records spilled from now on start a
    /// new file and an import never reads a file that is still growing. Returns every file set
    /// aside and not yet imported (this one and those left by failed imports), oldest first.
    pub(crate) fn set_aside(&self, tag: u64) -> Result<Vec<PathBuf>, StoreError> {
        let Some(path) = &self.path else {
            return Ok(Vec::new());
        };
        {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
            if len > 0 {
                state.file = None;
                state.torn = false;
                let aside = suffixed(path, &format!("{RECOVERING}{tag:020}"));
                std::fs::rename(path, &aside).map_err(|source| StoreError::Io {
                    what: format!("setting spill file {} aside", path.display()),
                    source,
                })?;
            }
        }
        Ok(spill_files(path)
            .into_iter()
            .filter(|p| p != path)
            .collect())
    }
}

/// The suffix of a spill file set aside for import while the recorder runs.
const RECOVERING: &str = ".recovering-";

fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

/// The files that hold records spilled to `path`: those a running recorder set aside for import
/// and did not import (the store failed meanwhile), oldest first, then `path` itself if it
/// exists. Import them all, in this order, to bring back everything spilled there.
pub fn spill_files(path: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut prefix = path.file_name().unwrap_or_default().to_os_string();
    prefix.push(RECOVERING);
    let prefix = prefix.to_string_lossy().into_owned();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(&prefix) {
                out.push(e.path());
            }
        }
    }
    // Tags are zero-padded, so names sort by age.
    out.sort();
    if path.is_file() {
        out.push(path.to_path_buf());
    }
    out
}

/// Imports an exchange spill file (exchange-log v1 JSON Lines) into `store`.
///
/// Idempotent for exchanges with a request id. Bad lines are skipped and reported; an error is
/// returned only when the file cannot be read or the store fails (records appended before
/// then stay appended, and importing again is safe).
pub fn import_spill(store: &dyn Store, path: &Path) -> Result<ImportReport, StoreError> {
    import(path, |batch| store.append_exchanges(batch))
}

/// Imports a decision spill file into `store`; idempotent for decisions with a request id.
pub fn import_decision_spill(store: &dyn Store, path: &Path) -> Result<ImportReport, StoreError> {
    import(path, |batch| store.append_decisions(batch))
}

fn import<T: DeserializeOwned>(
    path: &Path,
    mut append: impl FnMut(&[T]) -> Result<AppendReport, StoreError>,
) -> Result<ImportReport, StoreError> {
    let io = |source| StoreError::Io {
        what: format!("spill file {}", path.display()),
        source,
    };
    let mut reader = BufReader::new(File::open(path).map_err(io)?);
    let mut report = ImportReport::default();
    let mut batch = Vec::with_capacity(IMPORT_BATCH);
    let mut line = Vec::new();
    let mut number = 0u64;
    let mut flush = |batch: &mut Vec<T>, report: &mut ImportReport| -> Result<(), StoreError> {
        let r = append(batch)?;
        report.imported += r.new;
        report.duplicates += r.duplicates;
        batch.clear();
        Ok(())
    };
    loop {
        let read = read_bounded_line(&mut reader, &mut line).map_err(io)?;
        let parsed = match read {
            LineRead::Eof => break,
            LineRead::Line => {
                number += 1;
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                serde_json::from_slice::<T>(&line).ok()
            }
            LineRead::TooLong => {
                number += 1;
                None
            }
        };
        report.lines += 1;
        match parsed {
            Some(record) => {
                batch.push(record);
                if batch.len() == IMPORT_BATCH {
                    flush(&mut batch, &mut report)?;
                }
            }
            None => {
                report.bad_lines += 1;
                if report.first_bad_lines.len() < LISTED_BAD_LINES {
                    report.first_bad_lines.push(number);
                }
            }
        }
    }
    if !batch.is_empty() {
        flush(&mut batch, &mut report)?;
    }
    if report.bad_lines > 0 {
        tracing::warn!(
            path = %path.display(),
            bad_lines = report.bad_lines,
            first = ?report.first_bad_lines,
            "skipped bad lines while importing a spill file"
        );
    }
    Ok(report)
}

enum LineRead {
    Eof,
    Line,
    TooLong,
}

/// Reads one line (without bound on the file, with a bound on the line) into `buf`.
fn read_bounded_line(reader: &mut impl BufRead, buf: &mut Vec<u8>) -> std::io::Result<LineRead> {
    buf.clear();
    let cap = MAX_SPILL_LINE_BYTES as u64 + 1;
    let n = reader.by_ref().take(cap).read_until(b'\n', buf)?;
    if n == 0 {
        return Ok(LineRead::Eof);
    }
    if buf.last() == Some(&b'\n') || buf.len() <= MAX_SPILL_LINE_BYTES {
        return Ok(LineRead::Line);
    }
    // Too long: skip the rest of the line in bounded steps.
    loop {
        buf.clear();
        let n = reader.by_ref().take(cap).read_until(b'\n', buf)?;
        if n == 0 || buf.last() == Some(&b'\n') {
            buf.clear();
            return Ok(LineRead::TooLong);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn bounded_reader_splits_lines_and_handles_a_missing_final_newline() {
        let mut r = Cursor::new(b"a\nbc\nd".to_vec());
        let mut buf = Vec::new();
        let mut got = Vec::new();
        while !matches!(read_bounded_line(&mut r, &mut buf).unwrap(), LineRead::Eof) {
            got.push(String::from_utf8(buf.clone()).unwrap());
        }
        assert_eq!(got, ["a\n", "bc\n", "d"]);
    }

    #[test]
    fn overlong_line_is_skipped_and_the_next_line_still_read() {
        let mut data = vec![b'x'; MAX_SPILL_LINE_BYTES + 10];
        data.extend_from_slice(b"\nok\n");
        let mut r = Cursor::new(data);
        let mut buf = Vec::new();
        assert!(matches!(
            read_bounded_line(&mut r, &mut buf).unwrap(),
            LineRead::TooLong
        ));
        assert!(matches!(
            read_bounded_line(&mut r, &mut buf).unwrap(),
            LineRead::Line
        ));
        assert_eq!(buf, b"ok\n");
        assert!(matches!(
            read_bounded_line(&mut r, &mut buf).unwrap(),
            LineRead::Eof
        ));
    }

    #[test]
    fn line_of_exactly_the_limit_is_accepted() {
        let mut data = vec![b'x'; MAX_SPILL_LINE_BYTES];
        data.push(b'\n');
        let mut buf = Vec::new();
        let read = read_bounded_line(&mut Cursor::new(data), &mut buf).unwrap();
        assert!(matches!(read, LineRead::Line));
        assert_eq!(buf.len(), MAX_SPILL_LINE_BYTES + 1);
    }

    #[test]
    fn spill_creates_its_directory_and_appends() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/spill.jsonl");
        let spill = SpillFile::new(Some(path.clone()));
        spill.append(&[1u8, 2]).unwrap();
        spill.append(&[3u8]).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "1\n2\n3\n");
    }

    #[test]
    fn set_aside_moves_the_file_and_later_spills_start_a_new_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.spill.jsonl");
        let spill = SpillFile::new(Some(path.clone()));
        assert!(
            spill.set_aside(1).unwrap().is_empty(),
            "nothing spilled yet"
        );
        spill.append(&[1u8]).unwrap();
        let aside = spill.set_aside(2).unwrap();
        assert_eq!(aside.len(), 1);
        assert_eq!(std::fs::read_to_string(&aside[0]).unwrap(), "1\n");
        spill.append(&[2u8]).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "2\n");
        // A file set aside and not imported is returned again, before the newer one.
        let again = spill.set_aside(3).unwrap();
        assert_eq!(again.len(), 2);
        assert_eq!(again[0], aside[0]);
        assert_eq!(std::fs::read_to_string(&again[1]).unwrap(), "2\n");
        assert_eq!(spill_files(&path), again, "the live file no longer exists");
        spill.append(&[3u8]).unwrap();
        assert_eq!(spill_files(&path).last(), Some(&path));
    }

    #[test]
    fn spill_without_a_path_fails_instead_of_pretending() {
        let spill = SpillFile::new(None);
        assert!(spill.append(&[1u8]).is_err());
    }
}

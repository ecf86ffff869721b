//! `moat intel pull` and `moat intel push`: a whole collection (or what was added to it since
//! the last pull) read page by page into the intel database, and a bundle's objects sent to a
//! partner's collection.
//!
//! A pull collects every page before importing anything, and imports in one transaction, so
//! a failure on any page (a refused object, a server error, a pagination loop) leaves the
//! database as it was. Incremental pulls ask `added_after` the high water of the previous one.
//! Not a scheduler: the caller decides when to pull.

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use moat_types::Timestamp;
use serde::Serialize;
use serde_json::Value;

use crate::client::{Client, PageQuery, Status};
use crate::intel_db::{check_source, ImportReport, IntelDb, Provenance};
use crate::TaxiiError;

/// Most objects one pull accepts, unless configured.
pub const DEFAULT_MAX_OBJECTS: usize = 1_000_000;
/// Most pages one pull reads (whatever their size).
pub const MAX_PAGES: usize = 100_000;
/// Most pages in a row that may be empty yet claim there is more.
const MAX_EMPTY_PAGES: usize = 16;
/// Most objects one push request carries, unless configured.
pub const DEFAULT_PUSH_BATCH: usize = 500;
/// How often a pending status is polled after a push.
const STATUS_POLLS: u32 = 10;
/// The wait between two polls.
const STATUS_POLL_INTERVAL: Duration = Duration::from_millis(500);
/// Refusals quoted in a push error.
const FAILURES_QUOTED: usize = 5;

/// What to pull, from where, into which source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullOptions {
    /// A discovery resource or an API root.
    pub from_url: String,
    /// The collection's id.
    pub collection: String,
    /// The partner's name in the intel database, `[a-z0-9_.-]{1,64}`.
    pub source: String,
    /// Objects per page to ask for (the server may send fewer); `None` leaves it to the
    /// server.
    pub page_size: Option<u32>,
    /// Ignore the previous pull's high water and read the whole collection.
    pub full: bool,
    /// Most objects the pull accepts before giving up (nothing imported).
    pub max_objects: usize,
}

impl PullOptions {
    /// An incremental pull of `collection` at `from_url` into `source`, with default limits.
    pub fn new(
        from_url: impl Into<String>,
        collection: impl Into<String>,
        source: impl Into<String>,
    ) -> PullOptions {
        PullOptions {
            from_url: from_url.into(),
            collection: collection.into(),
            source: source.into(),
            page_size: None,
            full: false,
            max_objects: DEFAULT_MAX_OBJECTS,
        }
    }
}

/// What a pull did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PullReport {
    /// The API root read from.
    pub api_root: String,
    /// The `added_after` asked for (`None`: the whole collection).
    pub added_after: Option<String>,
    /// Pages read.
    pub pages: usize,
    /// Objects read.
    pub objects: usize,
    /// The import (its counts of matchable, unsupported and skipped objects).
    pub import: ImportReport,
    /// The high water recorded for the next pull.
    pub high_water: Option<String>,
}

/// Pulls `opts.collection` into the intel database at `db_path`: every page, then one import.
/// Any failure leaves the database unchanged.
pub async fn pull(
    client: &Client,
    opts: &PullOptions,
    db_path: &Path,
) -> Result<PullReport, TaxiiError> {
    check_source(&opts.source)?;
    let api_root = client.resolve_api_root(&opts.from_url).await?;
    let previous = if opts.full {
        None
    } else {
        let (source, url, collection) = (
            opts.source.clone(),
            api_root.clone(),
            opts.collection.clone(),
        );
        with_db(db_path, move |db| db.high_water(&source, &url, &collection)).await?
    };

    let mut query = PageQuery {
        added_after: previous.clone(),
        limit: opts.page_size,
        ..PageQuery::default()
    };
    let mut objects: Vec<Value> = Vec::new();
    let mut pages = 0;
    let mut empty_in_a_row = 0;
    let mut seen_next = HashSet::new();
    let mut high_water = previous.clone();
    loop {
        if pages == MAX_PAGES {
            return Err(TaxiiError::PullAborted(format!(
                "the server still had more after {MAX_PAGES} pages"
            )));
        }
        pages += 1;
        let page = client
            .objects_page(&api_root, &opts.collection, &query)
            .await
            .map_err(|e| match e {
                // moat-intel names the object by its index in the page; say which page.
                TaxiiError::Stix(e) => TaxiiError::PullAborted(format!("page {pages}: {e}")),
                other => other,
            })?;
        if let Some(last) = &page.date_added_last {
            high_water = Some(last.clone());
        }
        let envelope = page.envelope;
        if objects.len().saturating_add(envelope.objects.len()) > opts.max_objects {
            return Err(TaxiiError::PullAborted(format!(
                "the collection has more than {} objects (the most one pull accepts)",
                opts.max_objects
            )));
        }
        empty_in_a_row = if envelope.objects.is_empty() {
            empty_in_a_row + 1
        } else {
            0
        };
        objects.extend(envelope.objects);
        if !envelope.more {
            break;
        }
        if empty_in_a_row == MAX_EMPTY_PAGES {
            return Err(TaxiiError::PullAborted(format!(
                "{MAX_EMPTY_PAGES} empty pages in a row, each saying there is more"
            )));
        }
        match envelope.next {
            Some(next) => {
                if !seen_next.insert(next.clone()) {
                    return Err(TaxiiError::PullAborted(format!(
                        "the server sent the same next token twice ({:?}, page {pages}): a \
                         pagination loop",
                        next.chars().take(80).collect::<String>()
                    )));
                }
                query.next = Some(next);
            }
            None => {
                // TAXII 2.1 section 3.4: without `next`, page on by the date added.
                let Some(last) = page.date_added_last else {
                    return Err(TaxiiError::PullAborted(format!(
                        "page {pages} says there is more but gives neither next nor \
                         X-TAXII-Date-Added-Last"
                    )));
                };
                if query.added_after.as_deref() == Some(last.as_str()) {
                    return Err(TaxiiError::PullAborted(format!(
                        "page {pages} says there is more but X-TAXII-Date-Added-Last stays at \
                         {last}: a pagination loop"
                    )));
                }
                query.added_after = Some(last);
                query.next = None;
            }
        }
    }

    let provenance = Provenance {
        source: opts.source.clone(),
        url: api_root.clone(),
        collection: opts.collection.clone(),
        pulled_at: now(),
        added_after: previous.clone(),
    };
    let count = objects.len();
    let water = high_water.clone();
    let import = with_db(db_path, move |db| {
        db.import(&provenance, &objects, water.as_deref())
    })
    .await?;
    Ok(PullReport {
        api_root,
        added_after: previous,
        pages,
        objects: count,
        import,
        high_water,
    })
}

/// What a push did, every request's status merged.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PushReport {
    /// The API root written to.
    pub api_root: String,
    /// The status ids, one per request.
    pub status_ids: Vec<String>,
    /// Objects sent.
    pub total_count: u64,
    /// Objects the server added.
    pub success_count: u64,
    /// Objects the server had not processed yet when the client stopped waiting.
    pub pending_count: u64,
}

/// Sends `objects` to `collection` at `url` (a discovery resource or an API root) in
/// requests of at most [`DEFAULT_PUSH_BATCH`] objects; see [`push_batched`].
pub async fn push(
    client: &Client,
    url: &str,
    collection: &str,
    objects: &[Value],
) -> Result<PushReport, TaxiiError> {
    push_batched(client, url, collection, objects, DEFAULT_PUSH_BATCH).await
}

/// Sends `objects` in requests of at most `batch` objects, each also under the API root's
/// `max_content_length`. Any refusal the server reports fails the push (objects of earlier
/// requests stay added; the error says how many).
pub async fn push_batched(
    client: &Client,
    url: &str,
    collection: &str,
    objects: &[Value],
    batch: usize,
) -> Result<PushReport, TaxiiError> {
    let api_root = client.resolve_api_root(url).await?;
    let info = client.api_root(&api_root).await?;
    let max_bytes = usize::try_from(info.max_content_length).unwrap_or(usize::MAX);
    let bodies = envelopes(objects, batch.max(1), max_bytes).map_err(|(index, size)| {
        TaxiiError::Protocol {
            url: api_root.clone(),
            reason: format!(
                "object {index} is {size} bytes, over the API root's max_content_length of \
                 {max_bytes}"
            ),
        }
    })?;
    let mut report = PushReport {
        api_root: api_root.clone(),
        ..PushReport::default()
    };
    for body in bodies {
        let mut status = client.add_envelope(&api_root, collection, body).await?;
        let mut polls = 0;
        while status.status == "pending" && status.pending_count > 0 && polls < STATUS_POLLS {
            tokio::time::sleep(STATUS_POLL_INTERVAL).await;
            status = client.status(&api_root, &status.id).await?;
            polls += 1;
        }
        if status.failure_count > 0 || !status.failures.is_empty() {
            return Err(push_failed(&report, &status));
        }
        report.status_ids.push(status.id);
        report.total_count += status.total_count;
        report.success_count += status.success_count;
        report.pending_count += status.pending_count;
    }
    Ok(report)
}

fn push_failed(report: &PushReport, status: &Status) -> TaxiiError {
    TaxiiError::PushFailed {
        accepted: report.success_count + status.success_count,
        failure_count: status.failure_count.max(status.failures.len() as u64),
        failures: status
            .failures
            .iter()
            .take(FAILURES_QUOTED)
            .map(|f| {
                let message: String = f
                    .message
                    .as_deref()
                    .unwrap_or("refused")
                    .chars()
                    .take(200)
                    .collect();
                format!("{}: {message}", f.id)
            })
            .collect(),
    }
}

/// The request bodies, `{"objects":[…]}`, each of at most `batch` objects and `max_bytes`
/// bytes; `Err((index, size))` names an object too large to send at all.
fn envelopes(
    objects: &[Value],
    batch: usize,
    max_bytes: usize,
) -> Result<Vec<Vec<u8>>, (usize, usize)> {
    const OPEN: &[u8] = b"{\"objects\":[";
    const CLOSE: &[u8] = b"]}";
    let max_bytes = if max_bytes == 0 {
        usize::MAX
    } else {
        max_bytes
    };
    let mut bodies = Vec::new();
    let mut body = OPEN.to_vec();
    let mut in_body = 0;
    for (index, obj) in objects.iter().enumerate() {
        // Serializing a `Value` cannot fail; an empty object would be refused by the server.
        let bytes = serde_json::to_vec(obj).unwrap_or_default();
        if OPEN.len() + bytes.len() + CLOSE.len() > max_bytes {
            return Err((index, bytes.len()));
        }
        let full = in_body == batch || body.len() + 1 + bytes.len() + CLOSE.len() > max_bytes;
        if in_body > 0 && full {
            body.extend_from_slice(CLOSE);
            bodies.push(std::mem::replace(&mut body, OPEN.to_vec()));
            in_body = 0;
        }
        if in_body > 0 {
            body.push(b',');
        }
        body.extend_from_slice(&bytes);
        in_body += 1;
    }
    if in_body > 0 {
        body.extend_from_slice(CLOSE);
        bodies.push(body);
    }
    Ok(bodies)
}

/// Runs `f` on the database at `path` on the blocking pool (SQLite is synchronous).
async fn with_db<T, F>(path: &Path, f: F) -> Result<T, TaxiiError>
where
    T: Send + 'static,
    F: FnOnce(&mut IntelDb) -> Result<T, TaxiiError> + Send + 'static,
{
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut db = IntelDb::open(&path)?;
        f(&mut db)
    })
    .await
    .map_err(|e| TaxiiError::Task(e.to_string()))?
}

/// The time now, RFC 3339 with milliseconds.
fn now() -> String {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    Timestamp::from_millis(ms).to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use serde_json::json;

    use super::*;

    fn parse(body: &[u8]) -> Vec<Value> {
        let v: Value = serde_json::from_slice(body).unwrap();
        v["objects"].as_array().unwrap().clone()
    }

    #[test]
    fn envelopes_split_by_count_and_by_size() {
        let objects: Vec<Value> = (0..7).map(|n| json!({ "n": n })).collect();
        let bodies = envelopes(&objects, 3, 0).unwrap();
        let sizes: Vec<usize> = bodies.iter().map(|b| parse(b).len()).collect();
        assert_eq!(sizes, [3, 3, 1]);
        let all: Vec<Value> = bodies.iter().flat_map(|b| parse(b)).collect();
        assert_eq!(all, objects);

        // Each object is 7 bytes (`{"n":0}`); the envelope takes 14 more, a comma 1.
        let bodies = envelopes(&objects, 500, 14 + 7 + 1 + 7).unwrap();
        assert!(bodies.iter().all(|b| b.len() <= 29));
        let sizes: Vec<usize> = bodies.iter().map(|b| parse(b).len()).collect();
        assert_eq!(sizes, [2, 2, 2, 1]);

        assert_eq!(envelopes(&objects, 500, 20), Err((0, 7)));
        assert!(envelopes(&[], 500, 0).unwrap().is_empty());
    }

    #[test]
    fn now_is_rfc3339() {
        let t = now();
        assert!(Timestamp::parse(&t).is_ok(), "{t}");
    }
}

//! What the dashboard's listings show and how they are paged, shared by the two places that
//! serve them: the gateway's admin API (live standings and counters) and `moat ui` (the output
//! of `moat analyze`, read-only). Both answer the same JSON, so the page does not care which
//! one it talks to.
//!
//! Pure: no IO, no clock. Listings are sorted and cut here, on the server, so that the page
//! receives one page of rows whatever the number of campaigns or accounts.

use serde::{Deserialize, Serialize};

use moat_types::{Exchange, Timestamp};

/// Largest page of a listing.
pub const MAX_PAGE: usize = 1000;
/// Page size when the query names none.
pub const DEFAULT_PAGE: usize = 100;

/// Traffic of one account (or, summed, of a campaign): what it asked for and what it got.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Exchanges.
    pub exchanges: u64,
    /// Sum of `response.completion_tokens`.
    pub completion_tokens: u64,
    /// Sum of `response.reasoning_tokens`: the reasoning the account harvested (or consumed).
    pub reasoning_tokens: u64,
    /// Earliest exchange, milliseconds since the epoch.
    pub first_ms: Option<i64>,
    /// Latest exchange, milliseconds since the epoch.
    pub last_ms: Option<i64>,
    /// Exchanges answered after the account was detected (flagged, or a member of a detected
    /// campaign): what the detection did not stop.
    pub after_detection: u64,
    /// Reasoning tokens of those exchanges.
    pub reasoning_after_detection: u64,
}

impl Usage {
    /// Counts one exchange; `detected` says whether the account was already detected when it
    /// was answered.
    pub fn add(&mut self, x: &Exchange, detected: bool) {
        let (completion, reasoning) = x.response.as_ref().map_or((0, 0), |r| {
            (
                r.completion_tokens.unwrap_or(0),
                r.reasoning_tokens.unwrap_or(0),
            )
        });
        self.count(x.ts.as_millis(), completion, reasoning, detected);
    }

    /// Counts one exchange from its parts.
    pub fn count(&mut self, ts_ms: i64, completion: u64, reasoning: u64, detected: bool) {
        self.exchanges += 1;
        self.completion_tokens = self.completion_tokens.saturating_add(completion);
        self.reasoning_tokens = self.reasoning_tokens.saturating_add(reasoning);
        self.first_ms = Some(self.first_ms.map_or(ts_ms, |f| f.min(ts_ms)));
        self.last_ms = Some(self.last_ms.map_or(ts_ms, |l| l.max(ts_ms)));
        if detected {
            self.after_detection += 1;
            self.reasoning_after_detection =
                self.reasoning_after_detection.saturating_add(reasoning);
        }
    }

    /// Adds another account's counters (a campaign's are the sum of its members').
    pub fn merge(&mut self, o: &Usage) {
        self.exchanges += o.exchanges;
        self.completion_tokens = self.completion_tokens.saturating_add(o.completion_tokens);
        self.reasoning_tokens = self.reasoning_tokens.saturating_add(o.reasoning_tokens);
        self.first_ms = min_opt(self.first_ms, o.first_ms);
        self.last_ms = match (self.last_ms, o.last_ms) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        self.after_detection += o.after_detection;
        self.reasoning_after_detection = self
            .reasoning_after_detection
            .saturating_add(o.reasoning_after_detection);
    }

    /// Share of the exchanges answered after detection (0 with no exchange).
    pub fn leakage(&self) -> f64 {
        if self.exchanges == 0 {
            0.0
        } else {
            self.after_detection as f64 / self.exchanges as f64
        }
    }
}

fn min_opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// One row of the campaigns listing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CampaignRow {
    /// `C-0007`.
    pub campaign_id: String,
    /// Score 0..1.
    pub score: f64,
    /// Member accounts.
    pub size: usize,
    /// When discovery first reported it.
    pub first_detected_at: Option<Timestamp>,
    /// Its members' earliest exchange.
    pub first_seen: Option<Timestamp>,
    /// Its members' latest exchange.
    pub last_seen: Option<Timestamp>,
    /// Its members' exchanges.
    pub exchanges: u64,
    /// Reasoning tokens its members harvested.
    pub reasoning_tokens: u64,
    /// Completion tokens its members received.
    pub completion_tokens: u64,
    /// Exchanges answered after its members were detected.
    pub after_detection: u64,
    /// Reasoning tokens of those exchanges.
    pub reasoning_after_detection: u64,
    /// `after_detection / exchanges`.
    pub leakage: f64,
}

impl CampaignRow {
    /// A row from a campaign's facts and its members' summed [`Usage`].
    pub fn new(
        campaign_id: &str,
        score: f64,
        size: usize,
        first_detected_at: Option<Timestamp>,
        usage: &Usage,
    ) -> Self {
        CampaignRow {
            campaign_id: campaign_id.to_owned(),
            score,
            size,
            first_detected_at,
            first_seen: usage.first_ms.map(Timestamp::from_millis),
            last_seen: usage.last_ms.map(Timestamp::from_millis),
            exchanges: usage.exchanges,
            reasoning_tokens: usage.reasoning_tokens,
            completion_tokens: usage.completion_tokens,
            after_detection: usage.after_detection,
            reasoning_after_detection: usage.reasoning_after_detection,
            leakage: usage.leakage(),
        }
    }
}

/// Query of a campaigns listing: `?sort=size&limit=100&offset=0`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignQuery {
    /// `size` (default), `score`, `exchanges`, `reasoning_tokens`, `leakage`, `first_seen`,
    /// `first_detected` or `id`.
    #[serde(default)]
    pub sort: Option<String>,
    /// Page size (1..=[`MAX_PAGE`], default [`DEFAULT_PAGE`]).
    #[serde(default)]
    pub limit: Option<usize>,
    /// Rows to skip.
    #[serde(default)]
    pub offset: Option<usize>,
}

/// One page of a listing, with the total it was cut from.
#[derive(Debug, Clone, Serialize)]
pub struct Page<T> {
    /// The rows.
    pub items: Vec<T>,
    /// Rows in the whole listing.
    pub total: usize,
    /// The offset of the next page; `None` on the last.
    pub next_offset: Option<usize>,
}

/// Why a listing query was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct QueryError(pub String);

/// Sorts the rows as asked (largest first; ties by id) and cuts the page.
pub fn page_campaigns(
    mut rows: Vec<CampaignRow>,
    q: &CampaignQuery,
) -> Result<Page<CampaignRow>, QueryError> {
    let sort = q.sort.as_deref().unwrap_or("size");
    let by: fn(&CampaignRow, &CampaignRow) -> std::cmp::Ordering = match sort {
        "size" => |a, b| b.size.cmp(&a.size),
        "score" => |a, b| b.score.total_cmp(&a.score),
        "exchanges" => |a, b| b.exchanges.cmp(&a.exchanges),
        "reasoning_tokens" => |a, b| b.reasoning_tokens.cmp(&a.reasoning_tokens),
        "leakage" => |a, b| {
            b.leakage
                .total_cmp(&a.leakage)
                .then(b.after_detection.cmp(&a.after_detection))
        },
        // Oldest first: the longest-running campaigns lead.
        "first_seen" => |a, b| {
            a.first_seen
                .unwrap_or(Timestamp::from_millis(i64::MAX))
                .cmp(&b.first_seen.unwrap_or(Timestamp::from_millis(i64::MAX)))
        },
        "first_detected" => |a, b| {
            a.first_detected_at
                .unwrap_or(Timestamp::from_millis(i64::MAX))
                .cmp(
                    &b.first_detected_at
                        .unwrap_or(Timestamp::from_millis(i64::MAX)),
                )
        },
        "id" => |_, _| std::cmp::Ordering::Equal,
        other => {
            return Err(QueryError(format!(
                "sort: unknown key {other:?}; expected size, score, exchanges, reasoning_tokens, leakage, first_seen, first_detected or id"
            )))
        }
    };
    rows.sort_by(|a, b| by(a, b).then_with(|| a.campaign_id.cmp(&b.campaign_id)));
    Ok(cut(rows, q.limit, q.offset))
}

/// The page `[offset, offset + limit)` of `rows`.
pub fn cut<T>(rows: Vec<T>, limit: Option<usize>, offset: Option<usize>) -> Page<T> {
    let limit = limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE);
    let offset = offset.unwrap_or(0);
    let total = rows.len();
    let items: Vec<T> = rows.into_iter().skip(offset).take(limit).collect();
    let end = offset.saturating_add(items.len());
    Page {
        next_offset: (end < total).then_some(end),
        items,
        total,
    }
}

/// One row of the accounts listing, and the head of an account's page.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AccountRow {
    /// The account.
    pub account_id: String,
    /// Risk 0..1.
    pub risk: f64,
    /// Flagged by the engine.
    pub flagged: bool,
    /// When it was flagged.
    pub flagged_at: Option<Timestamp>,
    /// Its campaign.
    pub campaign_id: Option<String>,
    /// Why (stable reason names).
    pub reasons: Vec<String>,
    /// Its traffic (`None` where it is not known: an account seen by another gateway).
    pub usage: Option<Usage>,
}

/// Query of an accounts listing: `?flagged=true&campaign=C-0007&limit=100&after=acct_9`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountQuery {
    /// Only flagged (or only unflagged) accounts.
    #[serde(default)]
    pub flagged: Option<bool>,
    /// Only this campaign's members.
    #[serde(default)]
    pub campaign: Option<String>,
    /// Page size (1..=[`MAX_PAGE`], default [`DEFAULT_PAGE`]).
    #[serde(default)]
    pub limit: Option<usize>,
    /// Continue after this account id (accounts are listed by id).
    #[serde(default)]
    pub after: Option<String>,
}

impl AccountQuery {
    /// Whether an account with these facts belongs in the listing (before paging).
    pub fn selects(&self, id: &str, flagged: bool, campaign: Option<&str>) -> bool {
        self.flagged.is_none_or(|f| f == flagged)
            && self.campaign.as_deref().is_none_or(|c| campaign == Some(c))
            && self.after.as_deref().is_none_or(|a| id > a)
    }
}

/// A page of accounts in id order, after [`AccountQuery::selects`] chose `rows`: `{items,
/// next}` where `next` is the `after` of the following page.
#[derive(Debug, Clone, Serialize)]
pub struct AccountPage {
    /// The rows.
    pub items: Vec<AccountRow>,
    /// The last id of this page when more follow.
    pub next: Option<String>,
}

/// Sorts selected rows by id and keeps the first page.
pub fn page_accounts(mut rows: Vec<AccountRow>, q: &AccountQuery) -> AccountPage {
    let limit = q.limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE);
    rows.sort_by(|a, b| a.account_id.cmp(&b.account_id));
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next = if more {
        rows.last().map(|r| r.account_id.clone())
    } else {
        None
    };
    AccountPage { items: rows, next }
}

/// The numbers of the overview's cards.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// `live` (the gateway) or `offline` (`moat ui` over analysis output).
    pub mode: &'static str,
    /// Accounts seen.
    pub accounts: usize,
    /// Flagged accounts.
    pub flagged: usize,
    /// Campaigns.
    pub campaigns: usize,
    /// Accounts in a campaign.
    pub campaign_members: usize,
    /// Exchanges counted (the gateway: since it started).
    pub exchanges: u64,
    /// Reasoning tokens returned to campaign members.
    pub campaign_reasoning_tokens: u64,
    /// Exchanges of campaign members answered after their detection.
    pub campaign_after_detection: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, size: usize, exchanges: u64, leak: u64) -> CampaignRow {
        let mut u = Usage::default();
        for i in 0..exchanges {
            u.count(i as i64 * 1000, 10, 100, i < leak);
        }
        CampaignRow::new(id, 0.5, size, None, &u)
    }

    #[test]
    fn usage_counts_and_merges() {
        let mut a = Usage::default();
        a.count(5_000, 10, 100, false);
        a.count(1_000, 20, 200, true);
        let mut b = Usage::default();
        b.count(9_000, 1, 1, true);
        a.merge(&b);
        assert_eq!(a.exchanges, 3);
        assert_eq!(a.completion_tokens, 31);
        assert_eq!(a.reasoning_tokens, 301);
        assert_eq!((a.first_ms, a.last_ms), (Some(1_000), Some(9_000)));
        assert_eq!((a.after_detection, a.reasoning_after_detection), (2, 201));
        assert!((a.leakage() - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(Usage::default().leakage(), 0.0);
    }

    #[test]
    fn campaigns_sort_and_page() {
        let rows: Vec<_> = (0..250)
            .map(|i| row(&format!("C-{i:04}"), i % 7, i as u64 % 11, i as u64 % 3))
            .collect();
        let q = CampaignQuery {
            sort: Some("exchanges".into()),
            limit: Some(100),
            offset: None,
        };
        let p = page_campaigns(rows.clone(), &q).unwrap();
        assert_eq!(
            (p.items.len(), p.total, p.next_offset),
            (100, 250, Some(100))
        );
        assert!(p.items.windows(2).all(|w| w[0].exchanges >= w[1].exchanges));
        let last = page_campaigns(
            rows.clone(),
            &CampaignQuery {
                offset: Some(200),
                ..q.clone()
            },
        )
        .unwrap();
        assert_eq!((last.items.len(), last.next_offset), (50, None));
        // Every row appears once over the pages.
        let mut seen: Vec<String> = Vec::new();
        let mut offset = Some(0);
        while let Some(o) = offset {
            let p = page_campaigns(
                rows.clone(),
                &CampaignQuery {
                    offset: Some(o),
                    ..q.clone()
                },
            )
            .unwrap();
            seen.extend(p.items.into_iter().map(|r| r.campaign_id));
            offset = p.next_offset;
        }
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 250);
        for sort in [
            "size",
            "score",
            "reasoning_tokens",
            "leakage",
            "first_seen",
            "first_detected",
            "id",
        ] {
            let q = CampaignQuery {
                sort: Some(sort.into()),
                ..CampaignQuery::default()
            };
            assert!(page_campaigns(rows.clone(), &q).is_ok(), "{sort}");
        }
        let e = page_campaigns(
            rows,
            &CampaignQuery {
                sort: Some("nope".into()),
                ..CampaignQuery::default()
            },
        )
        .unwrap_err();
        assert!(e.0.contains("nope"), "{e}");
    }

    #[test]
    fn accounts_page_by_id() {
        let row = |i: usize| AccountRow {
            account_id: format!("a{i:03}"),
            risk: 0.1,
            flagged: i % 2 == 0,
            flagged_at: None,
            campaign_id: (i % 3 == 0).then(|| "C-1".to_owned()),
            reasons: Vec::new(),
            usage: None,
        };
        let mut q = AccountQuery {
            flagged: Some(true),
            limit: Some(10),
            ..AccountQuery::default()
        };
        let mut seen = 0;
        loop {
            let rows: Vec<_> = (0..100)
                .map(row)
                .filter(|r| q.selects(&r.account_id, r.flagged, r.campaign_id.as_deref()))
                .collect();
            let p = page_accounts(rows, &q);
            assert!(p.items.iter().all(|r| r.flagged));
            seen += p.items.len();
            match p.next {
                Some(n) => q.after = Some(n),
                None => break,
            }
        }
        assert_eq!(seen, 50);
        let q = AccountQuery {
            campaign: Some("C-1".into()),
            ..AccountQuery::default()
        };
        assert!(q.selects("x", false, Some("C-1")) && !q.selects("x", false, None));
    }

    #[test]
    fn page_limits_are_clamped() {
        let p = cut((0..5000).collect::<Vec<_>>(), Some(1_000_000), None);
        assert_eq!(p.items.len(), MAX_PAGE);
        let p = cut((0..5).collect::<Vec<_>>(), Some(0), Some(10));
        assert!(p.items.is_empty() && p.next_offset.is_none() && p.total == 5);
    }
}

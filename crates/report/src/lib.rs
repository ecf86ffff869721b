//! The human report of an analysis: one self-contained HTML file that a trust-and-safety
//! engineer reads to decide what to do about the detected campaigns.
//!
//! The report is built in two steps. [`ReportBuilder::new`] takes the detections (already in
//! memory: `moat analyze` just computed them) and decides which accounts and campaigns to
//! follow; [`ReportBuilder::observe`] is then called once per exchange of the traffic, in file
//! order, on a second pass over the log, and folds each exchange into bounded aggregates:
//! hourly counts, model mix, request shape, address blocks and user agents (top-k), and a
//! small sample of prompts per campaign. Nothing is kept per exchange, so memory grows with
//! the number of flagged accounts and campaigns, never with the traffic.
//! [`ReportBuilder::render`] writes the page: a header with totals and an overall traffic
//! chart, a summary table, one section per campaign ranked by score (evidence lines, timeline,
//! model mix, request shape, sample prompts, top members), flagged accounts outside campaigns,
//! and a glossary of reason names.
//!
//! The page loads nothing: CSS, SVG charts and a few lines of optional JavaScript (sortable
//! tables, expand-all before printing) are inline, and a restrictive Content-Security-Policy
//! forbids network access. Every string that comes from the input (prompts, account ids, user
//! agents, evidence details) is hostile: it is HTML-escaped, control and bidirectional
//! override characters are made visible, and prompt samples are truncated and have anything
//! that looks like a credential or an e-mail address masked.
//!
//! Output is deterministic: the same detections and exchanges give the same bytes (no wall
//! clock, no hash-map iteration order). This crate does no IO; reading files and writing the
//! page belong to the caller (`moat analyze --report`). It is not a dashboard: there is no
//! server, no live data and no interaction beyond expanding sections and sorting tables.
//!
//! For the investigator dashboard, [`CampaignInsight`] folds the exchanges of one campaign's
//! members, in any order, into a bounded aggregate whose [`CampaignView`] (totals, leakage
//! after detection, timeline, task categories, sample prompts and the account–attribute graph)
//! serializes to the JSON of a campaign's detail page; the gateway and `moat ui` feed it.

mod bounded;
mod builder;
mod glossary;
mod html;
mod insight;
mod render;
mod svg;
mod text;

pub use builder::ReportBuilder;
pub use glossary::{reason_description, GlossaryEntry, REASON_DESCRIPTIONS};
pub use insight::{
    AfterDetection, CampaignInsight, CampaignView, CapabilityView, GraphEdge, GraphNode, GraphView,
    InsightOptions, SampleView, TimelineView, MEMBER_TEMPLATES, MEMBER_VALUES,
};
pub use text::sanitize_prompt;

/// What the report shows and how much of it; every limit bounds memory or page size.
#[derive(Debug, Clone)]
pub struct ReportOptions {
    /// Page title.
    pub title: String,
    /// Name of the traffic file, shown in the header (e.g. the path given on the command line).
    pub input: String,
    /// Name of the detections file, shown in the header and in notes that point to it.
    pub detections: Option<String>,
    /// Reason names and their one-line meanings, in display order. Reason names found in the
    /// detections but missing here are listed too, marked undocumented.
    pub glossary: Vec<GlossaryEntry>,
    /// Campaigns that get a full section (the rest appear only in the summary table).
    pub max_campaign_sections: usize,
    /// Rows of the campaign summary table.
    pub max_summary_rows: usize,
    /// Sample prompts kept per campaign.
    pub samples_per_campaign: usize,
    /// Longest sample prompt shown, in characters (longer ones are cut and marked).
    pub sample_chars: usize,
    /// Members listed per campaign (busiest first).
    pub top_members: usize,
    /// Values listed in each top-k table (address blocks, user agents, countries).
    pub top_values: usize,
    /// Rows of the table of flagged accounts outside campaigns (highest risk first).
    pub max_flagged_rows: usize,
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions {
            title: "Moat analysis report".into(),
            input: String::new(),
            detections: None,
            glossary: glossary::default_glossary(),
            max_campaign_sections: 50,
            max_summary_rows: 500,
            samples_per_campaign: 6,
            sample_chars: 300,
            top_members: 15,
            top_values: 5,
            max_flagged_rows: 200,
        }
    }
}

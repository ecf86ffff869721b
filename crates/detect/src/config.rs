//! Engine settings: the thresholds of per-account scoring and campaign discovery.
//!
//! Defaults are chosen to keep ordinary and legitimate heavy users clean; each is documented
//! with what it trades. Not read from files here: the CLI and the gateway own configuration
//! files and hand a validated [`Config`] to the engine.

use moat_types::Timestamp;

/// Thresholds and periods of the engine.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Stream time between two campaign-discovery passes (ms). Shorter catches campaigns
    /// sooner (less leakage) at more CPU.
    pub discovery_interval_ms: i64,
    /// Requests an account must have sent before it can be a campaign candidate; fewer makes
    /// flags faster but noisier.
    pub min_requests: u32,
    /// Share of an account's requests that must elicit reasoning or jailbreak before it is a
    /// candidate.
    pub min_content_share: f32,
    /// Share of a shared attribute's accounts that must be candidates for the attribute to
    /// link them: a CGNAT address or a popular SDK shared with many ordinary users links
    /// nobody.
    pub min_suspicious_share: f32,
    /// Fewest distinct shared attributes (wrappers, address blocks, sign-up windows…) that tie
    /// two clusters of candidates together.
    pub min_shared_attributes: u32,
    /// Two clusters are merged when the attributes they share are at least this share of each
    /// one's strongest tie (or when one is the other's strongest tie): a campaign's clusters
    /// share far more with each other than with another campaign that copies the same public
    /// phrasings or rents the same proxy exits.
    pub min_relative_tie: f32,
    /// Smallest group of linked candidates reported as a campaign.
    pub min_campaign_size: usize,
    /// Fewest requests (all members together) a group must have sent to be a campaign.
    pub min_campaign_requests: u64,
    /// Most accounts remembered per shared attribute (bounds the index).
    pub max_members_per_key: usize,
    /// Attributes seen by one account only are forgotten after this long (ms).
    pub singleton_ttl_ms: i64,
    /// Shared attributes (other than payment methods, e-mail domains and sign-up windows)
    /// unused for this long are forgotten (ms), so the index stays bounded on an endless
    /// stream; a campaign still running keeps using its wrappers and addresses.
    pub shared_ttl_ms: i64,
    /// Requests per day above which an account's volume counts as high.
    pub high_volume_per_day: f64,
    /// An account created less than this long before its first request is new (ms).
    pub new_account_ms: i64,
    /// A model first requested after the stream's first day is new for this long (ms); an
    /// established account that sends `min_pivot_share` of its requests in that window to it
    /// has pivoted (campaigns move to a new model within a day; people adopt over weeks).
    pub pivot_window_ms: i64,
    /// See `pivot_window_ms`.
    pub min_pivot_share: f32,
    /// Minutes of activity shared by accounts count as synchrony evidence for this long (ms).
    pub synchrony_window_ms: i64,
    /// Sign-ups within this window (ms) count as one burst.
    pub signup_bucket_ms: i64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            discovery_interval_ms: Timestamp::HOUR,
            min_requests: 4,
            min_content_share: 0.4,
            min_suspicious_share: 0.5,
            min_shared_attributes: 2,
            min_relative_tie: 0.25,
            min_campaign_size: 3,
            min_campaign_requests: 200,
            max_members_per_key: 4096,
            singleton_ttl_ms: Timestamp::DAY,
            shared_ttl_ms: 7 * Timestamp::DAY,
            high_volume_per_day: 400.0,
            new_account_ms: 14 * Timestamp::DAY,
            pivot_window_ms: 2 * Timestamp::DAY,
            min_pivot_share: 0.35,
            synchrony_window_ms: 6 * Timestamp::HOUR,
            signup_bucket_ms: 2 * Timestamp::HOUR,
        }
    }
}

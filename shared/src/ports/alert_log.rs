//! The alert log, newest first, and the cooldown windows that keep one alert
//! per vehicle (or device) and rule per window. Both are keyed by the
//! alert's stream ([`Alert::stream`]): a vehicle id, or `<kind>/<id>`.
//! Beside them, the fleet's feed: every vehicle alert of a [`View`], newest
//! first, in [`FEED_SHARDS`] partitions by stream so a burst of alerts
//! across the fleet spreads its writes.

use std::future::Future;

use super::TableError;
use crate::domain::access::View;
use crate::domain::alert::Alert;

/// Partitions of each view's feed. A vehicle's alerts are one partition's
/// (its stream's hash); a page of the feed reads each partition once.
pub const FEED_SHARDS: u32 = 8;

/// Where an alert sits in the fleet's feed, which runs newest first: by
/// time, then stream, then rule, so every alert has one place.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FeedPosition {
    pub ts_us: i64,
    pub stream: String,
    pub rule: String,
}

impl FeedPosition {
    pub fn of(alert: &Alert) -> Self {
        Self {
            ts_us: alert.ts_us,
            stream: alert.stream(),
            rule: alert.rule.clone(),
        }
    }

    /// As a sort key: sorts as the positions do (times before 1970 sort as 1970).
    pub fn key(&self) -> String {
        format!("{:020}#{}#{}", self.ts_us.max(0), self.stream, self.rule)
    }

    /// The position [`FeedPosition::key`] wrote; `None` when `key` is not one.
    pub fn from_key(key: &str) -> Option<Self> {
        let (ts, rest) = key.split_once('#')?;
        let (stream, rule) = rest.split_once('#')?;
        Some(Self {
            ts_us: ts.parse().ok()?,
            stream: stream.to_string(),
            rule: rule.to_string(),
        })
    }
}

/// The feed partition of `stream`.
pub fn feed_shard(stream: &str) -> u32 {
    super::partition_of(stream, FEED_SHARDS)
}

/// The newest `limit` of several partitions' pages (each newest first).
pub fn merge_feed(pages: impl IntoIterator<Item = Vec<Alert>>, limit: usize) -> Vec<Alert> {
    let mut all: Vec<Alert> = pages.into_iter().flatten().collect();
    all.sort_by_cached_key(|a| std::cmp::Reverse(FeedPosition::of(a)));
    all.dedup_by(|a, b| a.ts_us == b.ts_us && a.rule == b.rule && a.stream() == b.stream());
    all.truncate(limit);
    all
}

pub trait AlertLog: Send + Sync {
    /// Claims the cooldown window of (vehicle, rule) for `alert` until
    /// `until_us`: true when the window was free (it ended at or before
    /// `now_us`, the server's time) or is already this alert's, so it may be sent.
    fn claim_cooldown(
        &self,
        alert: &Alert,
        now_us: i64,
        until_us: i64,
    ) -> impl Future<Output = Result<bool, TableError>> + Send;

    /// True when `alert` is already in the log (it was sent).
    fn recorded(&self, alert: &Alert) -> impl Future<Output = Result<bool, TableError>> + Send;

    /// Adds `alert` to its stream's log and to the feed of each of `views`
    /// (the feed first: an alert the log holds is in every feed it belongs
    /// to), kept until `expires_at_s` (TTL). Writing it again changes nothing.
    fn record(
        &self,
        alert: &Alert,
        views: &[View],
        expires_at_s: i64,
    ) -> impl Future<Output = Result<(), TableError>> + Send;

    /// A stream's alerts (a vehicle id, or a device's `<kind>/<id>`),
    /// newest first, older than `before_us` when given.
    fn alerts(
        &self,
        stream: &str,
        limit: usize,
        before_us: Option<i64>,
    ) -> impl Future<Output = Result<Vec<Alert>, TableError>> + Send;

    /// The newest `limit` alerts of `view`'s feed, after `after` (older than
    /// it, in feed order) when given; one read of each partition.
    fn feed(
        &self,
        view: &View,
        limit: usize,
        after: Option<&FeedPosition>,
    ) -> impl Future<Output = Result<Vec<Alert>, TableError>> + Send;
}

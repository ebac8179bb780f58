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

/// Reads the newest `limit` alerts of a view's feed (older than `after`)
/// with `partition(shard, limit, after)`, which reads one partition newest
/// first. Each partition is asked at once for twice its even share of the
/// page; only one whose answer was full and whose oldest alert read is still
/// newer than the page's oldest so far is asked again, from there, for twice
/// as many. A feed spread evenly over its partitions (each vehicle's alerts
/// are one partition's, by its id's hash) is read in one round of about twice
/// the page, not [`FEED_SHARDS`] times the page.
pub async fn read_feed<F, Fut>(
    limit: usize,
    after: Option<&FeedPosition>,
    partition: F,
) -> Result<Vec<Alert>, TableError>
where
    F: Fn(u32, usize, Option<FeedPosition>) -> Fut,
    Fut: Future<Output = Result<Vec<Alert>, TableError>>,
{
    if limit == 0 {
        return Ok(Vec::new());
    }
    let shards = FEED_SHARDS as usize;
    let mut ask = 2 * limit.div_ceil(shards) + 1;
    // Per partition: where its next read starts, and whether it may hold more.
    let mut from: Vec<Option<FeedPosition>> = vec![after.cloned(); shards];
    let mut more = vec![true; shards];
    let mut held: Vec<Alert> = Vec::new();
    let mut asking: Vec<u32> = (0..FEED_SHARDS).collect();
    while !asking.is_empty() {
        let reads = asking
            .iter()
            .map(|&shard| partition(shard, ask, from[shard as usize].clone()));
        for (&shard, page) in asking.iter().zip(futures::future::try_join_all(reads).await?) {
            let shard = shard as usize;
            more[shard] = page.len() >= ask;
            if let Some(oldest) = page.last() {
                from[shard] = Some(FeedPosition::of(oldest));
            }
            held.extend(page);
        }
        held = merge_feed([held], usize::MAX);
        let cut = held.get(limit - 1).map(FeedPosition::of);
        asking = (0..FEED_SHARDS)
            .filter(|&shard| {
                let shard = shard as usize;
                more[shard]
                    && match (&cut, &from[shard]) {
                        (Some(cut), Some(oldest)) => oldest > cut,
                        _ => true,
                    }
            })
            .collect();
        ask = ask.saturating_mul(2);
    }
    held.truncate(limit);
    Ok(held)
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
    /// it, in feed order) when given ([`read_feed`]: usually one read of each partition).
    fn feed(
        &self,
        view: &View,
        limit: usize,
        after: Option<&FeedPosition>,
    ) -> impl Future<Output = Result<Vec<Alert>, TableError>> + Send;
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    use super::*;
    use crate::domain::alert::{Comparison, Quantity, Severity};
    use crate::domain::device_id::DeviceId;
    use crate::domain::measure::Measure;

    /// An over-temperature alert of `vehicle` at `ts_s`.
    fn alert(vehicle: &DeviceId, seq: u64, ts_s: i64) -> Alert {
        Alert {
            vehicle_id: vehicle.clone(),
            kind: None,
            rule: "over-temperature".into(),
            severity: Severity::Critical,
            measure: Quantity::Measure(Measure::CellTempMaxC),
            value: 61.5,
            comparison: Comparison::Above,
            threshold: 60.0,
            ts: format!("t+{ts_s}"),
            ts_us: ts_s * 1_000_000,
            seq,
        }
    }

    /// A feed of `n` vehicles' alerts, one each a second apart, in their partitions.
    fn feed(n: usize, skew: impl Fn(usize) -> u32) -> BTreeMap<u32, Vec<Alert>> {
        let mut partitions: BTreeMap<u32, Vec<Alert>> = BTreeMap::new();
        for i in 0..n {
            let vehicle = DeviceId::new(format!("veh-{i:05}")).expect("id");
            partitions
                .entry(skew(i))
                .or_default()
                .push(alert(&vehicle, 1, i as i64));
        }
        for alerts in partitions.values_mut() {
            alerts.sort_by_key(|a| std::cmp::Reverse(FeedPosition::of(a)));
        }
        partitions
    }

    /// The feed read as `read_feed` reads it, and the partition reads it made.
    async fn read(
        partitions: &BTreeMap<u32, Vec<Alert>>,
        limit: usize,
        after: Option<&FeedPosition>,
    ) -> (Vec<Alert>, usize) {
        let reads = Mutex::new(0);
        let page = read_feed(limit, after, |shard, ask, after| {
            *reads.lock().expect("count") += 1;
            let page: Vec<Alert> = (partitions.get(&shard).into_iter().flatten())
                .filter(|a| after.as_ref().is_none_or(|after| FeedPosition::of(a) < *after))
                .take(ask)
                .cloned()
                .collect();
            async move { Ok(page) }
        })
        .await
        .expect("read");
        let reads = *reads.lock().expect("count");
        (page, reads)
    }

    fn expected(partitions: &BTreeMap<u32, Vec<Alert>>, limit: usize) -> Vec<Alert> {
        merge_feed(partitions.values().cloned(), limit)
    }

    #[tokio::test]
    async fn an_even_feed_is_read_in_one_round_and_a_skewed_one_completely() {
        let even = feed(1_000, |i| feed_shard(&format!("veh-{i:05}")));
        let (page, reads) = read(&even, 50, None).await;
        assert_eq!(page, expected(&even, 50));
        assert_eq!(reads, FEED_SHARDS as usize, "one read per partition");
        let after = FeedPosition::of(&page[49]);
        let (next, _) = read(&even, 50, Some(&after)).await;
        assert_eq!(next, expected(&even, 100)[50..].to_vec(), "the next page");

        // Every recent alert in one partition: it is read again until the page is whole.
        let skewed = feed(1_000, |i| if i >= 900 { 3 } else { (i % 7) as u32 });
        let (page, reads) = read(&skewed, 50, None).await;
        assert_eq!(page, expected(&skewed, 50));
        assert!(reads > FEED_SHARDS as usize, "{reads}");
        assert!(
            page.iter()
                .all(|a| a.ts_us >= alert(&DeviceId::new("v").expect("id"), 1, 950).ts_us)
        );
        let (all, _) = read(&skewed, 5_000, None).await;
        assert_eq!(all.len(), 1_000, "past the end: every alert once");
    }
}

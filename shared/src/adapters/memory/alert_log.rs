//! [`AlertLog`] in memory.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use super::{Faults, lock};
use crate::domain::access::View;
use crate::domain::alert::Alert;
use crate::ports::TableError;
use crate::ports::alert_log::{AlertLog, FeedPosition, feed_shard, read_feed};

/// A stream's log: (ts µs, rule) → (alert, expires at s).
type VehicleLog = BTreeMap<(i64, String), (Alert, i64)>;

/// A feed partition: position → alert.
type FeedPartition = BTreeMap<FeedPosition, Alert>;

#[derive(Debug, Default)]
pub struct MemoryAlertLog {
    /// (stream, rule) → (until µs, alert id).
    cooldowns: Mutex<HashMap<(String, String), (i64, String)>>,
    log: Mutex<HashMap<String, VehicleLog>>,
    /// (view key, partition) → the partition, as DynamoDB keeps it.
    feed: Mutex<HashMap<(String, u32), FeedPartition>>,
    pub faults: Faults,
}

impl MemoryAlertLog {
    async fn enter(&self, operation: &'static str) -> Result<(), TableError> {
        self.faults.enter(operation).await.map_err(|message| TableError {
            table: "memory-alerts".into(),
            message,
        })
    }

    /// When the log forgets `alert` (s since the epoch), if it holds it.
    pub fn expiry(&self, alert: &Alert) -> Option<i64> {
        lock(&self.log)
            .get(&alert.stream())
            .and_then(|l| l.get(&(alert.ts_us, alert.rule.clone())))
            .map(|(_, at)| *at)
    }
}

impl AlertLog for MemoryAlertLog {
    async fn claim_cooldown(&self, alert: &Alert, now_us: i64, until_us: i64) -> Result<bool, TableError> {
        self.enter("claim_cooldown").await?;
        let mut cooldowns = lock(&self.cooldowns);
        let key = (alert.stream(), alert.rule.clone());
        let free = cooldowns
            .get(&key)
            .is_none_or(|(until, id)| *until <= now_us || *id == alert.id());
        if free {
            cooldowns.insert(key, (until_us, alert.id()));
        }
        Ok(free)
    }

    async fn recorded(&self, alert: &Alert) -> Result<bool, TableError> {
        self.enter("recorded").await?;
        Ok(lock(&self.log)
            .get(&alert.stream())
            .is_some_and(|l| l.contains_key(&(alert.ts_us, alert.rule.clone()))))
    }

    async fn record(&self, alert: &Alert, views: &[View], expires_at_s: i64) -> Result<(), TableError> {
        self.enter("record").await?;
        let mut feed = lock(&self.feed);
        for view in views {
            feed.entry((view.key(), feed_shard(&alert.stream())))
                .or_default()
                .insert(FeedPosition::of(alert), alert.clone());
        }
        drop(feed);
        lock(&self.log)
            .entry(alert.stream())
            .or_default()
            .insert((alert.ts_us, alert.rule.clone()), (alert.clone(), expires_at_s));
        Ok(())
    }

    async fn alerts(&self, stream: &str, limit: usize, before_us: Option<i64>) -> Result<Vec<Alert>, TableError> {
        self.enter("alerts").await?;
        Ok(lock(&self.log)
            .get(stream)
            .map(|l| {
                l.values()
                    .rev()
                    .map(|(a, _)| a)
                    .filter(|a| before_us.is_none_or(|b| a.ts_us < b))
                    .take(limit)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn feed(&self, view: &View, limit: usize, after: Option<&FeedPosition>) -> Result<Vec<Alert>, TableError> {
        read_feed(limit, after, |shard, limit, after| async move {
            // One call per partition read, as the DynamoDB adapter queries them.
            self.enter("feed_query").await?;
            let feed = lock(&self.feed);
            let Some(partition) = feed.get(&(view.key(), shard)) else {
                return Ok(Vec::new());
            };
            let older = match after {
                Some(after) => partition.range(..after),
                None => partition.range(..),
            };
            Ok(older.rev().take(limit).map(|(_, a)| a.clone()).collect())
        })
        .await
    }
}

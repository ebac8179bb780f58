//! [`VehicleDirectory`] in memory.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use futures::future::try_join_all;

use super::{Faults, lock};
use crate::domain::access::View;
use crate::domain::device_id::DeviceId;
use crate::ports::TableError;
use crate::ports::directory::{DIRECTORY_SHARDS, Listing, VehicleDirectory, merge_listing};
use crate::ports::partition_of;

#[derive(Debug, Default)]
pub struct MemoryDirectory {
    /// (view key, partition) → the partition's ids, as DynamoDB keeps them.
    entries: Mutex<HashMap<(String, u32), BTreeSet<DeviceId>>>,
    /// Each vehicle's record of the views it is listed in.
    listed: Mutex<HashMap<DeviceId, BTreeSet<String>>>,
    pub faults: Faults,
}

impl MemoryDirectory {
    async fn enter_op(&self, operation: &'static str) -> Result<(), TableError> {
        self.faults.enter(operation).await.map_err(|message| TableError {
            table: "memory-directory".into(),
            message,
        })
    }

    /// One partition of a view: the listing's first `limit` ids.
    async fn partition(&self, view: &str, shard: u32, listing: Listing<'_>) -> Result<Vec<DeviceId>, TableError> {
        self.enter_op("list_query").await?;
        let entries = lock(&self.entries);
        Ok(entries
            .get(&(view.to_string(), shard))
            .into_iter()
            .flatten()
            .filter(|id| listing.holds(id.as_str()))
            .take(listing.limit)
            .cloned()
            .collect())
    }
}

impl VehicleDirectory for MemoryDirectory {
    async fn enter(&self, vehicle: &DeviceId, views: &[View]) -> Result<bool, TableError> {
        self.enter_op("listed").await?;
        let want: BTreeSet<String> = views.iter().map(View::key).collect();
        let had = lock(&self.listed).get(vehicle).cloned().unwrap_or_default();
        if had == want {
            return Ok(false);
        }
        let shard = partition_of(vehicle.as_str(), DIRECTORY_SHARDS);
        for view in want.difference(&had) {
            self.enter_op("put_entry").await?;
            lock(&self.entries)
                .entry((view.clone(), shard))
                .or_default()
                .insert(vehicle.clone());
        }
        for view in had.difference(&want) {
            self.enter_op("delete_entry").await?;
            if let Some(ids) = lock(&self.entries).get_mut(&(view.clone(), shard)) {
                ids.remove(vehicle);
            }
        }
        self.enter_op("put_listed").await?;
        lock(&self.listed).insert(vehicle.clone(), want);
        Ok(true)
    }

    async fn list(&self, view: &View, listing: Listing<'_>) -> Result<Vec<DeviceId>, TableError> {
        let key = view.key();
        let pages = try_join_all((0..DIRECTORY_SHARDS).map(|shard| self.partition(&key, shard, listing))).await?;
        Ok(merge_listing(pages, listing.limit))
    }
}

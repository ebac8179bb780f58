//! [`VehicleDirectory`] in memory.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use futures::future::try_join_all;

use super::{Faults, lock};
use crate::domain::access::View;
use crate::domain::device_id::DeviceId;
use crate::domain::standing::{Counts, Filter, Order, Standing};
use crate::ports::TableError;
use crate::ports::directory::{
    Change, DIRECTORY_SHARDS, Listing, Ranking, Record, VehicleDirectory, add_counts, merge_earliest, merge_listing,
    merge_ranked,
};
use crate::ports::partition_of;

/// partition → (step, vehicle): an index of vehicles by a step.
type StepIndex = HashMap<u32, BTreeSet<(i64, DeviceId)>>;

/// The tables, as DynamoDB keeps them: what one lock guards changes whole.
#[derive(Debug, Default)]
struct Tables {
    /// (view key, partition) → the partition's ids.
    entries: HashMap<(String, u32), BTreeSet<DeviceId>>,
    /// (view key, filter, partition) → the partition's ids.
    filed: HashMap<(String, Filter, u32), BTreeSet<DeviceId>>,
    /// (view key, partition) → the partition's counts.
    counts: HashMap<(String, u32), Counts>,
    /// (view key, order, partition) → the partition's (rank, id)s.
    ranked: HashMap<(String, Order, u32), BTreeSet<(i64, DeviceId)>>,
    /// The vehicles not silent, by when they were last heard.
    heard: StepIndex,
    /// The vehicles alerting, by when they last tripped a rule.
    alerting: StepIndex,
    records: HashMap<DeviceId, Record>,
}

#[derive(Debug, Default)]
pub struct MemoryDirectory {
    tables: Mutex<Tables>,
    pub faults: Faults,
}

impl MemoryDirectory {
    async fn enter_op(&self, operation: &'static str) -> Result<(), TableError> {
        self.faults.enter(operation).await.map_err(|message| TableError {
            table: "memory-directory".into(),
            message,
        })
    }

    /// Reads `vehicle`'s record, and writes what `next` makes of it with
    /// everything it changes, as one transaction (one lock).
    async fn update(
        &self,
        vehicle: &DeviceId,
        next: impl Fn(Option<&Record>) -> Option<Record>,
    ) -> Result<bool, TableError> {
        loop {
            self.enter_op("record").await?;
            let old = lock(&self.tables).records.get(vehicle).cloned();
            let Some(new) = next(old.as_ref()).filter(|new| Some(new) != old.as_ref()) else {
                return Ok(false);
            };
            self.enter_op("transact").await?;
            // As DynamoDB's condition on the record's version: a writer that lost the race reads again.
            let mut tables = lock(&self.tables);
            if tables.records.get(vehicle) == old.as_ref() {
                Self::apply(&mut tables, vehicle, old.as_ref(), new);
                return Ok(true);
            }
        }
    }

    /// Writes `new` and everything its change from `old` moves.
    fn apply(tables: &mut Tables, vehicle: &DeviceId, old: Option<&Record>, new: Record) {
        let change = Change::between(old, &new);
        let shard = partition_of(vehicle.as_str(), DIRECTORY_SHARDS);
        for view in change.entered {
            tables.entries.entry((view, shard)).or_default().insert(vehicle.clone());
        }
        for view in change.left {
            if let Some(ids) = tables.entries.get_mut(&(view, shard)) {
                ids.remove(vehicle);
            }
        }
        for (view, filter) in change.filed {
            tables
                .filed
                .entry((view, filter, shard))
                .or_default()
                .insert(vehicle.clone());
        }
        for (view, filter) in change.unfiled {
            if let Some(ids) = tables.filed.get_mut(&(view, filter, shard)) {
                ids.remove(vehicle);
            }
        }
        for (view, moves) in change.counts {
            let counts = tables.counts.entry((view, shard)).or_default();
            for (filter, n) in moves {
                counts.add(filter, n);
            }
        }
        for (view, order, rank) in change.unranked {
            if let Some(ranks) = tables.ranked.get_mut(&(view, order, shard)) {
                ranks.remove(&(rank, vehicle.clone()));
            }
        }
        for (view, order, rank) in change.ranked {
            let ranks = tables.ranked.entry((view, order, shard)).or_default();
            ranks.insert((rank, vehicle.clone()));
        }
        let heard = tables.heard.entry(shard).or_default();
        if let Some(step) = change.unheard {
            heard.remove(&(step, vehicle.clone()));
        }
        if let Some(step) = change.heard {
            heard.insert((step, vehicle.clone()));
        }
        let alerting = tables.alerting.entry(shard).or_default();
        if let Some(step) = change.calmed {
            alerting.remove(&(step, vehicle.clone()));
        }
        if let Some(step) = change.alerting {
            alerting.insert((step, vehicle.clone()));
        }
        tables.records.insert(vehicle.clone(), new);
    }

    async fn partition(&self, view: &str, shard: u32, listing: Listing<'_>) -> Result<Vec<DeviceId>, TableError> {
        self.enter_op("list_query").await?;
        let tables = lock(&self.tables);
        let ids = match listing.filter {
            None => tables.entries.get(&(view.to_string(), shard)),
            Some(filter) => tables.filed.get(&(view.to_string(), filter, shard)),
        };
        // From the prefix or the cursor on, as DynamoDB reads a key range.
        let low = listing.start();
        let from = DeviceId::new(low).ok();
        Ok((ids.into_iter())
            .flat_map(|ids| match &from {
                Some(from) => ids.range(from..),
                None => ids.range(..),
            })
            .take_while(|id| id.as_str().starts_with(listing.prefix))
            .filter(|id| listing.holds(id.as_str()))
            .take(listing.limit)
            .cloned()
            .collect())
    }

    async fn ranked_partition(
        &self,
        view: &str,
        shard: u32,
        ranking: Ranking<'_>,
    ) -> Result<Vec<(DeviceId, i64)>, TableError> {
        self.enter_op("ranked_query").await?;
        let tables = lock(&self.tables);
        let ranks = tables.ranked.get(&(view.to_string(), ranking.order, shard));
        let ordered: Box<dyn Iterator<Item = &(i64, DeviceId)>> = match (ranks, ranking.descending) {
            (None, _) => Box::new(std::iter::empty()),
            (Some(ranks), false) => Box::new(ranks.iter()),
            (Some(ranks), true) => Box::new(ranks.iter().rev()),
        };
        Ok(ordered
            .filter(|(rank, id)| ranking.holds(*rank, id.as_str()))
            .take(ranking.limit)
            .map(|(rank, id)| (id.clone(), *rank))
            .collect())
    }

    /// One partition of the heard or the alerting index: vehicles of a step before `before`, earliest first.
    async fn steps_partition(
        &self,
        index: fn(&Tables) -> &StepIndex,
        shard: u32,
        before: i64,
        limit: usize,
    ) -> Result<Vec<(DeviceId, i64)>, TableError> {
        self.enter_op("steps_query").await?;
        let tables = lock(&self.tables);
        Ok((index(&tables).get(&shard).into_iter().flatten())
            .take_while(|(step, _)| *step < before)
            .take(limit)
            .map(|(step, id)| (id.clone(), *step))
            .collect())
    }

    async fn earliest(
        &self,
        index: fn(&Tables) -> &StepIndex,
        before: i64,
        limit: usize,
    ) -> Result<Vec<(DeviceId, i64)>, TableError> {
        let pages =
            try_join_all((0..DIRECTORY_SHARDS).map(|shard| self.steps_partition(index, shard, before, limit))).await?;
        Ok(merge_earliest(pages, limit))
    }
}

impl VehicleDirectory for MemoryDirectory {
    async fn enter(&self, vehicle: &DeviceId, views: &[View], standing: Standing) -> Result<bool, TableError> {
        self.update(vehicle, |old| Some(Record::after(old, views, standing)))
            .await
    }

    async fn list(&self, view: &View, listing: Listing<'_>) -> Result<Vec<DeviceId>, TableError> {
        let key = view.key();
        let pages = try_join_all((0..DIRECTORY_SHARDS).map(|shard| self.partition(&key, shard, listing))).await?;
        Ok(merge_listing(pages, listing.limit))
    }

    async fn ranked(&self, view: &View, ranking: Ranking<'_>) -> Result<Vec<(DeviceId, i64)>, TableError> {
        let key = view.key();
        let pages =
            try_join_all((0..DIRECTORY_SHARDS).map(|shard| self.ranked_partition(&key, shard, ranking))).await?;
        Ok(merge_ranked(pages, &ranking))
    }

    async fn counts(&self, view: &View) -> Result<Counts, TableError> {
        // One batch read of the view's partitions.
        self.enter_op("counts").await?;
        let key = view.key();
        let tables = lock(&self.tables);
        Ok(add_counts(
            (0..DIRECTORY_SHARDS).filter_map(|shard| tables.counts.get(&(key.clone(), shard)).cloned()),
        ))
    }

    async fn unheard(&self, before: i64, limit: usize) -> Result<Vec<(DeviceId, i64)>, TableError> {
        self.earliest(|t| &t.heard, before, limit).await
    }

    async fn silence(&self, vehicle: &DeviceId, heard: i64) -> Result<bool, TableError> {
        self.update(vehicle, |old| Record::silenced(old, heard)).await
    }

    async fn alerted(&self, vehicle: &DeviceId, views: &[View], standing: Standing) -> Result<bool, TableError> {
        self.update(vehicle, |old| Some(Record::alerted(old, views, standing)))
            .await
    }

    async fn calming(&self, before: i64, limit: usize) -> Result<Vec<(DeviceId, i64)>, TableError> {
        self.earliest(|t| &t.alerting, before, limit).await
    }

    async fn calm(&self, vehicle: &DeviceId, step: i64) -> Result<bool, TableError> {
        self.update(vehicle, |old| Record::calmed(old, step)).await
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::domain::standing::Status;

    /// The counts kept match the records, whatever order things happen in.
    #[tokio::test]
    async fn the_counts_always_add_up_to_the_records() {
        let directory = MemoryDirectory::default();
        let id = |n: u32| DeviceId::new(format!("veh-{n:03}")).expect("id");
        let statuses = [Status::Driving, Status::Charging, Status::Parked];
        for round in 0..20_i64 {
            for n in 0..30_u32 {
                let status = statuses[(n as usize + round as usize) % 3];
                let views = if n % 2 == 0 {
                    vec![View::All, View::Group("even".into())]
                } else {
                    vec![View::All]
                };
                let heard = round / 3 + i64::from(n % 4);
                let standing = Standing::new(status, heard);
                if n % 5 == round as u32 % 5 {
                    directory.alerted(&id(n), &views, standing).await.expect("alerted");
                } else {
                    directory.enter(&id(n), &views, standing).await.expect("enter");
                }
            }
            for (vehicle, step) in directory.unheard(round / 3 + 2, 7).await.expect("unheard") {
                directory.silence(&vehicle, step).await.expect("silence");
            }
            for (vehicle, step) in directory.calming(round / 3 + 1, 5).await.expect("calming") {
                directory.calm(&vehicle, step).await.expect("calm");
            }
        }
        // Writers of one vehicle at once: each reads, waits, then writes; the losers read again.
        directory.faults.delay(std::time::Duration::from_millis(1));
        let (racer, fleet) = (id(0), [View::All]);
        let racing = (0..12_i64).map(|i| {
            let standing = Standing::new(statuses[(i % 3) as usize], 100 + i);
            directory.enter(&racer, &fleet, standing)
        });
        for entered in futures::future::join_all(racing).await {
            entered.expect("enter");
        }
        let tables = lock(&directory.tables);
        let mut expected: BTreeMap<String, Counts> = BTreeMap::new();
        for record in tables.records.values() {
            for view in &record.views {
                let counts = expected.entry(view.clone()).or_default();
                counts.add(record.standing.status, 1);
                if record.alerting.is_some() {
                    counts.add(Filter::Alerting, 1);
                }
            }
        }
        for (view, counts) in expected {
            let kept = add_counts((0..DIRECTORY_SHARDS).filter_map(|s| tables.counts.get(&(view.clone(), s)).cloned()));
            assert_eq!(kept, counts, "{view}");
        }
    }
}

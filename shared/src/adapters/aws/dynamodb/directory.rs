//! [`VehicleDirectory`] on DynamoDB, in the fleet index table (keys `pk`, `sk`):
//! - `vehicles#<view>#<partition>` / `<vehicle id>`: an entry, so a
//!   partition's query runs in id order and a prefix is a key range;
//! - `status#<view>#<status or alerting>#<partition>` / `<vehicle id>`: the
//!   view's vehicles of one status, or alerting, the same way;
//! - `counts#<view>#<partition>` / `counts`: a number per status, and alerting;
//! - `order#<view>#<order>#<partition>` / `<rank, sortable>#<vehicle id>`:
//!   the view's vehicles ranked by last heard, state of charge or hottest
//!   cell ([`Order`]), so a partition's query reads them in that order;
//! - `heard#<partition>` / `<step, 12 digits>#<vehicle id>`: the vehicles
//!   not silent, by when they were last heard;
//! - `alerting#<partition>` / `<step, 12 digits>#<vehicle id>`: the vehicles
//!   alerting, by when they last tripped a rule;
//! - `listed#<vehicle id>` / `views`: the vehicle's [`Record`] (`views`, a
//!   list; `status`; `heard`; `soc_pct` and `cell_temp_max_c` when known;
//!   `alerting` while it is) and a `version`.
//!
//! A change is one TransactWriteItems of the record, on the condition that
//! its version is the one read, and everything the change writes: two
//! writers of one vehicle never both count it.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem, Update};
use futures::future::try_join_all;

use super::{Item, batch_get, get_item, get_n, get_s, n, s, table_error};
use crate::domain::access::View;
use crate::domain::device_id::DeviceId;
use crate::domain::standing::{Counts, Filter, Order, Readings, Standing, Status};
use crate::ports::TableError;
use crate::ports::directory::{
    Change, DIRECTORY_SHARDS, Listing, Ranking, Record, VehicleDirectory, add_counts, merge_listing, merge_ranked,
};
use crate::ports::partition_of;

use super::steps::{StepIndex, step_sk};

/// Sorts after every character an id may hold, so `<prefix>~` ends the prefix's range.
const PAST_ANY_ID_CHAR: char = '~';

/// Times a change is tried when another writer changed the record between
/// its read and its write, or the service failed the write.
const MAX_ATTEMPTS: u32 = 8;

/// A transaction that may succeed if tried again: canceled (a condition or
/// a conflict with another transaction), or a 5xx.
fn is_canceled_or_transient(e: &SdkError<TransactWriteItemsError, HttpResponse>) -> bool {
    e.as_service_error()
        .is_some_and(|e| e.is_transaction_canceled_exception() || e.is_internal_server_error())
        || e.raw_response().is_some_and(|r| r.status().is_server_error())
}

#[derive(Clone, Debug)]
pub struct DynamoDirectory {
    client: Client,
    table: String,
}

fn entry_pk(view: &str, shard: u32) -> String {
    format!("vehicles#{view}#{shard}")
}

fn filed_pk(view: &str, filter: Filter, shard: u32) -> String {
    format!("status#{view}#{}#{shard}", filter.name())
}

fn counts_pk(view: &str, shard: u32) -> String {
    format!("counts#{view}#{shard}")
}

/// The partitions of an index of vehicles by a step: when each was last heard, or last tripped a rule.
#[derive(Debug, Clone, Copy)]
enum Steps {
    Heard,
    Alerting,
}

impl Steps {
    fn pk(self, shard: u32) -> String {
        match self {
            Self::Heard => format!("heard#{shard}"),
            Self::Alerting => format!("alerting#{shard}"),
        }
    }
}

fn order_pk(view: &str, order: Order, shard: u32) -> String {
    format!("order#{view}#{}#{shard}", order.name())
}

/// A rank as 20 digits that sort as the numbers do, negative ones first.
fn sortable(rank: i64) -> String {
    format!("{:020}", rank.cast_unsigned() ^ (1 << 63))
}

fn order_sk(rank: i64, vehicle: &str) -> String {
    format!("{}#{vehicle}", sortable(rank))
}

/// (vehicle, rank) of an `order#` entry's sort key.
fn ranked_of(sk: &str) -> Option<(DeviceId, i64)> {
    let (rank, vehicle) = sk.split_once('#')?;
    let rank = (rank.parse::<u64>().ok()? ^ (1 << 63)).cast_signed();
    Some((DeviceId::new(vehicle).ok()?, rank))
}

fn record_pk(vehicle: &DeviceId) -> String {
    format!("listed#{vehicle}")
}

fn key(pk: String, sk: impl Into<String>) -> Item {
    Item::from([("pk".to_string(), s(pk)), ("sk".to_string(), s(sk))])
}

/// A record as stored, and its version (0: none stored).
fn record_of(item: &Item) -> Option<(Record, i64)> {
    let views = item.get("views")?.as_l().ok()?;
    let record = Record {
        views: views.iter().filter_map(|v| v.as_s().ok().cloned()).collect(),
        standing: Standing {
            status: Status::from_name(get_s(item, "status")?)?,
            heard: get_n(item, "heard")?,
            readings: Readings {
                soc_pct: get_n(item, "soc_pct"),
                cell_temp_max_c: get_n(item, "cell_temp_max_c"),
            },
        },
        alerting: get_n(item, "alerting"),
    };
    Some((record, get_n(item, "version").unwrap_or(0)))
}

impl DynamoDirectory {
    pub fn new(client: Client, table: &str) -> Self {
        Self {
            client,
            table: table.to_string(),
        }
    }

    fn put(&self, item: Item) -> Result<TransactWriteItem, TableError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .build()
            .map_err(|e| table_error(&self.table, e))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    fn delete(&self, key: Item) -> Result<TransactWriteItem, TableError> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key))
            .build()
            .map_err(|e| table_error(&self.table, e))?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    /// The writes of `change` of `vehicle`, and of its record becoming `new`
    /// on the condition that its version is still `version`.
    fn writes(
        &self,
        vehicle: &DeviceId,
        change: &Change,
        new: &Record,
        version: i64,
    ) -> Result<Vec<TransactWriteItem>, TableError> {
        let shard = partition_of(vehicle.as_str(), DIRECTORY_SHARDS);
        let mut record = key(record_pk(vehicle), "views");
        record.insert(
            "views".into(),
            AttributeValue::L(new.views.iter().cloned().map(AttributeValue::S).collect()),
        );
        record.insert("status".into(), s(new.standing.status.name()));
        record.insert("heard".into(), n(new.standing.heard));
        let readings = new.standing.readings;
        for (name, reading) in [
            ("soc_pct", readings.soc_pct),
            ("cell_temp_max_c", readings.cell_temp_max_c),
            ("alerting", new.alerting),
        ] {
            if let Some(value) = reading {
                record.insert(name.into(), n(value));
            }
        }
        record.insert("version".into(), n(version + 1));
        // Version 0: no record yet (or one from before records had versions).
        let condition = if version == 0 {
            "attribute_not_exists(version)"
        } else {
            "version = :version"
        };
        let mut put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(record))
            .condition_expression(condition);
        if version != 0 {
            put = put.expression_attribute_values(":version", n(version));
        }
        let put = put.build().map_err(|e| table_error(&self.table, e))?;
        let mut writes = vec![TransactWriteItem::builder().put(put).build()];
        for view in &change.entered {
            writes.push(self.put(key(entry_pk(view, shard), vehicle.as_str()))?);
        }
        for view in &change.left {
            writes.push(self.delete(key(entry_pk(view, shard), vehicle.as_str()))?);
        }
        for (view, filter) in &change.filed {
            writes.push(self.put(key(filed_pk(view, *filter, shard), vehicle.as_str()))?);
        }
        for (view, filter) in &change.unfiled {
            writes.push(self.delete(key(filed_pk(view, *filter, shard), vehicle.as_str()))?);
        }
        for (view, moves) in &change.counts {
            let mut update = Update::builder()
                .table_name(&self.table)
                .set_key(Some(key(counts_pk(view, shard), "counts")));
            let mut adds = Vec::new();
            for (i, (filter, delta)) in moves.iter().enumerate() {
                adds.push(format!("#s{i} :d{i}"));
                update = update
                    .expression_attribute_names(format!("#s{i}"), filter.name())
                    .expression_attribute_values(format!(":d{i}"), n(delta));
            }
            let update = update
                .update_expression(format!("ADD {}", adds.join(", ")))
                .build()
                .map_err(|e| table_error(&self.table, e))?;
            writes.push(TransactWriteItem::builder().update(update).build());
        }
        for (view, order, rank) in &change.ranked {
            writes.push(self.put(key(order_pk(view, *order, shard), order_sk(*rank, vehicle.as_str())))?);
        }
        for (view, order, rank) in &change.unranked {
            writes.push(self.delete(key(order_pk(view, *order, shard), order_sk(*rank, vehicle.as_str())))?);
        }
        for (index, removed, written) in [
            (Steps::Heard, change.unheard, change.heard),
            (Steps::Alerting, change.calmed, change.alerting),
        ] {
            if let Some(step) = removed {
                writes.push(self.delete(key(index.pk(shard), step_sk(step, vehicle)))?);
            }
            if let Some(step) = written {
                writes.push(self.put(key(index.pk(shard), step_sk(step, vehicle)))?);
            }
        }
        Ok(writes)
    }

    /// Reads `vehicle`'s record and writes what `next` makes of it with
    /// everything that changes, as one transaction; again from the read when
    /// another writer changed the record in between.
    async fn update(
        &self,
        vehicle: &DeviceId,
        next: impl Fn(Option<&Record>) -> Option<Record>,
    ) -> Result<bool, TableError> {
        for attempt in 0..MAX_ATTEMPTS {
            let item = get_item(
                &self.client,
                &self.table,
                [("pk", s(record_pk(vehicle))), ("sk", s("views"))],
            )
            .await?;
            let (old, version) = match item.as_ref().and_then(record_of) {
                Some((record, version)) => (Some(record), version),
                None => (None, 0),
            };
            let Some(new) = next(old.as_ref()).filter(|new| Some(new) != old.as_ref()) else {
                return Ok(false);
            };
            let change = Change::between(old.as_ref(), &new);
            let writes = self.writes(vehicle, &change, &new, version)?;
            match self
                .client
                .transact_write_items()
                .set_transact_items(Some(writes))
                .send()
                .await
            {
                Ok(_) => return Ok(true),
                // Another writer won (canceled), or the service failed this
                // try (a 5xx the SDK's own retries did not get past): read
                // again after a pause that grows and differs per vehicle, so
                // writers that collided do not collide again.
                Err(e) if is_canceled_or_transient(&e) => {
                    let jitter = u64::from(partition_of(vehicle.as_str(), 16));
                    let pause = (10 << attempt.min(6)) + jitter * 5;
                    tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
                }
                Err(e) => return Err(table_error(&self.table, e)),
            }
        }
        Err(TableError {
            table: self.table.clone(),
            message: format!("{vehicle}: its record changed under {MAX_ATTEMPTS} attempts in a row"),
        })
    }

    /// One partition of a view: the listing's first `limit` ids, read as a key range.
    async fn partition(&self, view: &str, shard: u32, listing: Listing<'_>) -> Result<Vec<DeviceId>, TableError> {
        let pk = match listing.filter {
            None => entry_pk(view, shard),
            Some(filter) => filed_pk(view, filter, shard),
        };
        let low = listing.start();
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .expression_attribute_values(":pk", s(pk))
            .expression_attribute_values(":hi", s(format!("{}{PAST_ANY_ID_CHAR}", listing.prefix)));
        // A key condition takes no empty string: from the start is "below the end".
        query = if low.is_empty() {
            query.key_condition_expression("pk = :pk AND sk < :hi")
        } else {
            query
                .key_condition_expression("pk = :pk AND sk BETWEEN :lo AND :hi")
                .expression_attribute_values(":lo", s(low))
        };
        let out = query
            .projection_expression("sk")
            // One more than the page: the range starts at `after` itself.
            .limit(i32::try_from(listing.limit.saturating_add(1)).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| table_error(&self.table, e))?;
        Ok(out
            .items()
            .iter()
            .filter_map(|item| get_s(item, "sk"))
            .filter(|id| listing.holds(id))
            .filter_map(|id| DeviceId::new(id).ok())
            .take(listing.limit)
            .collect())
    }

    /// One partition of a view's ranking: its first `limit` after the cursor, in order.
    async fn ranked_partition(
        &self,
        view: &str,
        shard: u32,
        ranking: Ranking<'_>,
    ) -> Result<Vec<(DeviceId, i64)>, TableError> {
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .expression_attribute_values(":pk", s(order_pk(view, ranking.order, shard)))
            .scan_index_forward(!ranking.descending);
        query = match ranking.after {
            None => query.key_condition_expression("pk = :pk"),
            Some((rank, id)) => query
                .key_condition_expression(if ranking.descending {
                    "pk = :pk AND sk < :after"
                } else {
                    "pk = :pk AND sk > :after"
                })
                .expression_attribute_values(":after", s(order_sk(rank, id))),
        };
        let out = query
            .projection_expression("sk")
            .limit(i32::try_from(ranking.limit).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| table_error(&self.table, e))?;
        Ok(out
            .items()
            .iter()
            .filter_map(|item| ranked_of(get_s(item, "sk")?))
            .collect())
    }

    async fn earliest(&self, index: Steps, before: i64, limit: usize) -> Result<Vec<(DeviceId, i64)>, TableError> {
        let steps = StepIndex {
            client: &self.client,
            table: &self.table,
            pk_name: "pk",
            sk_name: "sk",
        };
        steps.earliest(|shard| index.pk(shard), before, None, limit).await
    }
}

impl VehicleDirectory for DynamoDirectory {
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
        let name = view.key();
        let keys = (0..DIRECTORY_SHARDS)
            .map(|shard| key(counts_pk(&name, shard), "counts"))
            .collect();
        let items = batch_get(&self.client, &self.table, keys, None).await?;
        Ok(add_counts(items.iter().map(|item| {
            let mut counts = Counts::default();
            for filter in Filter::ALL {
                counts.add(filter, get_n(item, filter.name()).unwrap_or(0));
            }
            counts
        })))
    }

    async fn unheard(&self, before: i64, limit: usize) -> Result<Vec<(DeviceId, i64)>, TableError> {
        self.earliest(Steps::Heard, before, limit).await
    }

    async fn silence(&self, vehicle: &DeviceId, heard: i64) -> Result<bool, TableError> {
        self.update(vehicle, |old| Record::silenced(old, heard)).await
    }

    async fn alerted(&self, vehicle: &DeviceId, views: &[View], standing: Standing) -> Result<bool, TableError> {
        self.update(vehicle, |old| Some(Record::alerted(old, views, standing)))
            .await
    }

    async fn calming(&self, before: i64, limit: usize) -> Result<Vec<(DeviceId, i64)>, TableError> {
        self.earliest(Steps::Alerting, before, limit).await
    }

    async fn calm(&self, vehicle: &DeviceId, step: i64) -> Result<bool, TableError> {
        self.update(vehicle, |old| Record::calmed(old, step)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_sort_as_numbers_and_read_back() {
        let ranks = [i64::MIN, -40, -1, 0, 1, 99, i64::MAX];
        let keys: Vec<String> = ranks.iter().map(|r| order_sk(*r, "veh-1")).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(sorted, keys);
        for (rank, sk) in ranks.iter().zip(&keys) {
            assert_eq!(
                ranked_of(sk).map(|(v, r)| (v.to_string(), r)),
                Some(("veh-1".into(), *rank))
            );
        }
    }
}

//! [`VehicleDirectory`] on DynamoDB, in the fleet index table (keys `pk`, `sk`):
//! - `vehicles#<view>#<partition>` / `<vehicle id>`: an entry, so a
//!   partition's query runs in id order and a prefix is a key range;
//! - `listed#<vehicle id>` / `views`: the vehicle's record of its views
//!   (a list), written after its entries, so an entry is never missing
//!   from a view the record names.

use std::collections::BTreeSet;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use futures::future::try_join_all;

use super::{get_item, get_s, s, table_error};
use crate::domain::access::View;
use crate::domain::device_id::DeviceId;
use crate::ports::TableError;
use crate::ports::directory::{DIRECTORY_SHARDS, Listing, VehicleDirectory, merge_listing};
use crate::ports::partition_of;

/// Sorts after every character an id may hold, so `<prefix>~` ends the prefix's range.
const PAST_ANY_ID_CHAR: char = '~';

#[derive(Clone, Debug)]
pub struct DynamoDirectory {
    client: Client,
    table: String,
}

fn entry_pk(view: &str, shard: u32) -> String {
    format!("vehicles#{view}#{shard}")
}

fn listed_pk(vehicle: &DeviceId) -> String {
    format!("listed#{vehicle}")
}

impl DynamoDirectory {
    pub fn new(client: Client, table: &str) -> Self {
        Self {
            client,
            table: table.to_string(),
        }
    }

    async fn listed(&self, vehicle: &DeviceId) -> Result<BTreeSet<String>, TableError> {
        let key = [("pk", s(listed_pk(vehicle))), ("sk", s("views"))];
        let item = get_item(&self.client, &self.table, key).await?;
        let views = item.as_ref().and_then(|i| i.get("views")).and_then(|v| v.as_l().ok());
        Ok(views
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_s().ok().cloned())
            .collect())
    }

    /// One partition of a view: the listing's first `limit` ids, read as a key range.
    async fn partition(&self, view: &str, shard: u32, listing: Listing<'_>) -> Result<Vec<DeviceId>, TableError> {
        let low = match listing.after {
            Some(after) if after > listing.prefix => after,
            _ => listing.prefix,
        };
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .expression_attribute_values(":pk", s(entry_pk(view, shard)))
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
}

impl VehicleDirectory for DynamoDirectory {
    async fn enter(&self, vehicle: &DeviceId, views: &[View]) -> Result<bool, TableError> {
        let want: BTreeSet<String> = views.iter().map(View::key).collect();
        let had = self.listed(vehicle).await?;
        if had == want {
            return Ok(false);
        }
        let shard = partition_of(vehicle.as_str(), DIRECTORY_SHARDS);
        let puts = want.difference(&had).map(|view| {
            self.client
                .put_item()
                .table_name(&self.table)
                .item("pk", s(entry_pk(view, shard)))
                .item("sk", s(vehicle.as_str()))
                .send()
        });
        try_join_all(puts).await.map_err(|e| table_error(&self.table, e))?;
        let deletes = had.difference(&want).map(|view| {
            self.client
                .delete_item()
                .table_name(&self.table)
                .key("pk", s(entry_pk(view, shard)))
                .key("sk", s(vehicle.as_str()))
                .send()
        });
        try_join_all(deletes).await.map_err(|e| table_error(&self.table, e))?;
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(listed_pk(vehicle)))
            .item("sk", s("views"))
            .item(
                "views",
                AttributeValue::L(want.into_iter().map(AttributeValue::S).collect()),
            )
            .send()
            .await
            .map_err(|e| table_error(&self.table, e))?;
        Ok(true)
    }

    async fn list(&self, view: &View, listing: Listing<'_>) -> Result<Vec<DeviceId>, TableError> {
        let key = view.key();
        let pages = try_join_all((0..DIRECTORY_SHARDS).map(|shard| self.partition(&key, shard, listing))).await?;
        Ok(merge_listing(pages, listing.limit))
    }
}

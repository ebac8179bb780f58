//! The table ports on DynamoDB, one adapter per port:
//!
//! - [`state::DynamoStateTable`]: key `vehicle_id`; one item per vehicle, written only by newer telemetry.
//! - [`ledger::DynamoLedger`]: keys `vehicle_id`, `seq`; which archive object holds a message; TTL `expires_at`.
//! - [`alert_log::DynamoAlertLog`]: keys `vehicle_id`, `sk`; `alert#<ts µs>#<rule>` items (the log,
//!   newest first, TTL `expires_at`) and `cooldown#<rule>` items (the windows); the fleet's
//!   alert feeds in the fleet index table (keys `pk`, `sk`: `feed#<view>#<partition>` items).
//! - [`directory::DynamoDirectory`]: the fleet index table's `vehicles#<view>#<partition>`
//!   entries (sorted by vehicle id) and `listed#<vehicle>` records of each vehicle's views.
//! - [`quota::DynamoQuotaCounter`]: key `key`; requests per caller and window; TTL `expires_at`.
//! - [`connections::DynamoConnectionStore`]: key `connection_id`; the live stream's connections; TTL `expires_at`.
//! - [`keys::DynamoKeyStore`]: key `key_id`; the device keys of HTTP ingest, secrets as SHA-256.

pub mod alert_log;
pub mod connections;
pub mod device_state;
pub mod directory;
pub mod images;
pub mod keys;
pub mod ledger;
pub mod quota;
pub mod state;
mod steps;

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};

pub use alert_log::DynamoAlertLog;
pub use connections::DynamoConnectionStore;
pub use device_state::DynamoDeviceStateTable;
pub use directory::DynamoDirectory;
pub use keys::DynamoKeyStore;
pub use ledger::DynamoLedger;
pub use quota::DynamoQuotaCounter;
pub use state::DynamoStateTable;

use super::error_text;
use crate::ports::{Page, TableError};

type Item = HashMap<String, AttributeValue>;

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn get_s<'a>(item: &'a Item, key: &str) -> Option<&'a str> {
    item.get(key).and_then(|v| v.as_s().ok()).map(String::as_str)
}

fn get_n<T: std::str::FromStr>(item: &Item, key: &str) -> Option<T> {
    item.get(key).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok())
}

fn is_condition_failure<E: aws_sdk_dynamodb::error::ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    e.as_service_error().and_then(|s| s.code()) == Some("ConditionalCheckFailedException")
}

fn table_error<E: std::error::Error>(table: &str, e: E) -> TableError {
    TableError {
        table: table.to_string(),
        message: error_text(&e),
    }
}

/// A conditional write's outcome: true when written, false when the condition failed.
fn written<T, E, R>(table: &str, result: Result<T, SdkError<E, R>>) -> Result<bool, TableError>
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match result {
        Ok(_) => Ok(true),
        Err(e) if is_condition_failure(&e) => Ok(false),
        Err(e) => Err(table_error(table, e)),
    }
}

/// The item at `key` of `table`, read consistently: a read after a write sees it.
async fn get_item<'k>(
    client: &Client,
    table: &str,
    key: impl IntoIterator<Item = (&'k str, AttributeValue)>,
) -> Result<Option<Item>, TableError> {
    let request = (key.into_iter()).fold(client.get_item().table_name(table), |request, (name, value)| {
        request.key(name, value)
    });
    let out = request
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| table_error(table, e))?;
    Ok(out.item)
}

/// Rounds of a BatchGetItem with unprocessed keys before the read fails.
const MAX_BATCH_ATTEMPTS: u32 = 5;

/// The items of `keys` that exist, read consistently, a hundred keys a
/// request (BatchGetItem's limit); what a request leaves unprocessed
/// (throttling) is asked again after a pause. In no particular order.
async fn batch_get(
    client: &Client,
    table: &str,
    keys: Vec<Item>,
    projection: Option<&str>,
) -> Result<Vec<Item>, TableError> {
    let mut found = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(100) {
        let mut keys = chunk.to_vec();
        for attempt in 0..MAX_BATCH_ATTEMPTS {
            if keys.is_empty() {
                break;
            }
            if attempt > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(50 << attempt)).await;
            }
            let request = KeysAndAttributes::builder()
                .set_keys(Some(std::mem::take(&mut keys)))
                .set_projection_expression(projection.map(str::to_string))
                .consistent_read(true)
                .build()
                .map_err(|e| table_error(table, e))?;
            let mut out = client
                .batch_get_item()
                .request_items(table, request)
                .send()
                .await
                .map_err(|e| table_error(table, e))?;
            found.extend(out.responses.as_mut().and_then(|r| r.remove(table)).unwrap_or_default());
            keys = out
                .unprocessed_keys()
                .and_then(|u| u.get(table))
                .map(|k| k.keys().to_vec())
                .unwrap_or_default();
        }
        if !keys.is_empty() {
            return Err(TableError {
                table: table.to_string(),
                message: format!(
                    "{} keys still unprocessed after {MAX_BATCH_ATTEMPTS} attempts",
                    keys.len()
                ),
            });
        }
    }
    Ok(found)
}

/// A page of a scan of a table keyed by the string attribute `key`: the
/// items `read` takes of up to `limit` items after `after`, ordered by
/// `order`, and the key to go on from.
async fn scan_page<T>(
    client: &Client,
    table: &str,
    key: &str,
    (limit, after): (usize, Option<&str>),
    read: impl Fn(&Item) -> Option<T>,
    order: impl Fn(&T) -> &str,
) -> Result<Page<T>, TableError> {
    let mut request = client
        .scan()
        .table_name(table)
        .limit(i32::try_from(limit).unwrap_or(i32::MAX));
    if let Some(after) = after {
        request = request.exclusive_start_key(key, s(after));
    }
    let out = request.send().await.map_err(|e| table_error(table, e))?;
    let mut items: Vec<T> = out.items().iter().filter_map(read).collect();
    items.sort_by(|a, b| order(a).cmp(order(b)));
    let next = out.last_evaluated_key().and_then(|k| get_s(k, key)).map(str::to_string);
    Ok(Page { items, next })
}

pub fn client(config: &aws_config::SdkConfig) -> Client {
    Client::new(config)
}

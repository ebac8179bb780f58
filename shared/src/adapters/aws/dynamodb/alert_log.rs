//! [`AlertLog`] on DynamoDB: `alert#<ts µs>#<rule>` items (the log, newest
//! first, TTL `expires_at`) and `cooldown#<rule>` items (the windows), keyed
//! by the alert's stream (a vehicle id or a device's `<kind>/<id>`) in the
//! key attribute that keeps its first name, `vehicle_id`.
//!
//! The fleet's feed lives in the fleet index table (keys `pk`, `sk`):
//! `feed#<view>#<partition>` items sorted by [`FeedPosition::key`], each a
//! copy of the alert, with the log's TTL.

use aws_sdk_dynamodb::Client;
use futures::future::try_join_all;

use super::{Item, get_item, get_n, get_s, n, s, table_error, written};
use crate::domain::access::View;
use crate::domain::alert::{Alert, Comparison, Quantity, Severity};
use crate::domain::device_id::DeviceId;
use crate::domain::measure::Measure;
use crate::ports::TableError;
use crate::ports::alert_log::{AlertLog, FeedPosition, feed_shard, read_feed};

#[derive(Clone, Debug)]
pub struct DynamoAlertLog {
    client: Client,
    table: String,
    /// The fleet index table, which holds the feed.
    index_table: String,
}

fn feed_pk(view: &View, shard: u32) -> String {
    format!("feed#{}#{shard}", view.key())
}

fn alert_sk(alert: &Alert) -> String {
    format!("alert#{:020}#{}", alert.ts_us.max(0), alert.rule)
}

impl DynamoAlertLog {
    pub fn new(client: Client, table: &str, index_table: &str) -> Self {
        Self {
            client,
            table: table.to_string(),
            index_table: index_table.to_string(),
        }
    }

    /// The alert's attributes, as the log and the feed keep them (`vehicle_id`: its stream).
    fn attributes(alert: &Alert, expires_at_s: i64) -> Item {
        let mut item = Item::new();
        if let Some(kind) = &alert.kind {
            item.insert("kind".into(), s(kind));
            item.insert("description".into(), s(alert.measure.description()));
        }
        for (name, value) in [
            ("vehicle_id", s(alert.stream())),
            ("rule", s(&alert.rule)),
            ("severity", s(alert.severity.as_str())),
            ("measure", s(alert.measure.name())),
            ("value", n(alert.value)),
            ("comparison", s(alert.comparison.symbol())),
            ("threshold", n(alert.threshold)),
            ("unit", s(alert.unit())),
            ("ts", s(&alert.ts)),
            ("ts_us", n(alert.ts_us)),
            ("seq", n(alert.seq)),
            ("expires_at", n(expires_at_s)),
        ] {
            item.insert(name.into(), value);
        }
        item
    }

    /// One partition of a view's feed: up to `limit` alerts older than `after`, newest first.
    async fn feed_partition(
        &self,
        view: &View,
        shard: u32,
        limit: usize,
        after: Option<&FeedPosition>,
    ) -> Result<Vec<Alert>, TableError> {
        let mut query = self
            .client
            .query()
            .table_name(&self.index_table)
            .expression_attribute_values(":pk", s(feed_pk(view, shard)))
            .scan_index_forward(false)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX));
        query = match after {
            Some(after) => query
                .key_condition_expression("pk = :pk AND sk < :after")
                .expression_attribute_values(":after", s(after.key())),
            None => query.key_condition_expression("pk = :pk"),
        };
        let out = query.send().await.map_err(|e| table_error(&self.index_table, e))?;
        Ok(out.items().iter().filter_map(Self::alert_of).collect())
    }

    pub(crate) fn alert_of(item: &Item) -> Option<Alert> {
        let kind = get_s(item, "kind").map(str::to_string);
        let stream = get_s(item, "vehicle_id")?;
        let id = match &kind {
            None => stream,
            Some(kind) => stream.strip_prefix(kind.as_str())?.strip_prefix('/')?,
        };
        let name = get_s(item, "measure")?;
        let measure = match &kind {
            None => Quantity::Measure(Measure::from_name(name)?),
            Some(_) => Quantity::Field {
                name: name.to_string(),
                unit: get_s(item, "unit").unwrap_or_default().to_string(),
                description: get_s(item, "description").unwrap_or_default().to_string(),
            },
        };
        Some(Alert {
            vehicle_id: DeviceId::new(id).ok()?,
            kind,
            rule: get_s(item, "rule")?.to_string(),
            severity: Severity::from_name(get_s(item, "severity")?)?,
            measure,
            value: get_n(item, "value")?,
            comparison: Comparison::from_symbol(get_s(item, "comparison")?)?,
            threshold: get_n(item, "threshold")?,
            ts: get_s(item, "ts")?.to_string(),
            ts_us: get_n(item, "ts_us")?,
            seq: get_n(item, "seq")?,
        })
    }
}

impl AlertLog for DynamoAlertLog {
    async fn claim_cooldown(&self, alert: &Alert, now_us: i64, until_us: i64) -> Result<bool, TableError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("vehicle_id", s(alert.stream()))
            .item("sk", s(format!("cooldown#{}", alert.rule)))
            .item("until_us", n(until_us))
            .item("alert_id", s(alert.id()))
            .condition_expression("attribute_not_exists(sk) OR until_us <= :now OR alert_id = :id")
            .expression_attribute_values(":now", n(now_us))
            .expression_attribute_values(":id", s(alert.id()))
            .send()
            .await;
        written(&self.table, result)
    }

    async fn recorded(&self, alert: &Alert) -> Result<bool, TableError> {
        let key = [("vehicle_id", s(alert.stream())), ("sk", s(alert_sk(alert)))];
        Ok(get_item(&self.client, &self.table, key).await?.is_some())
    }

    async fn record(&self, alert: &Alert, views: &[View], expires_at_s: i64) -> Result<(), TableError> {
        let attributes = Self::attributes(alert, expires_at_s);
        let shard = feed_shard(&alert.stream());
        let feeds = views.iter().map(|view| {
            self.client
                .put_item()
                .table_name(&self.index_table)
                .set_item(Some(attributes.clone()))
                .item("pk", s(feed_pk(view, shard)))
                .item("sk", s(FeedPosition::of(alert).key()))
                .send()
        });
        try_join_all(feeds)
            .await
            .map_err(|e| table_error(&self.index_table, e))?;
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(attributes))
            .item("sk", s(alert_sk(alert)))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| table_error(&self.table, e))
    }

    async fn alerts(&self, stream: &str, limit: usize, before_us: Option<i64>) -> Result<Vec<Alert>, TableError> {
        let upper = match before_us {
            Some(us) => format!("alert#{:020}", us.max(0)),
            None => "alert#~".to_string(),
        };
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("vehicle_id = :v AND sk BETWEEN :lo AND :hi")
            .expression_attribute_values(":v", s(stream))
            .expression_attribute_values(":lo", s("alert#"))
            .expression_attribute_values(":hi", s(upper))
            .scan_index_forward(false)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| table_error(&self.table, e))?;
        Ok(out
            .items()
            .iter()
            .filter_map(Self::alert_of)
            .filter(|a| before_us.is_none_or(|b| a.ts_us < b))
            .collect())
    }

    async fn feed(&self, view: &View, limit: usize, after: Option<&FeedPosition>) -> Result<Vec<Alert>, TableError> {
        read_feed(limit, after, |shard, limit, after| async move {
            self.feed_partition(view, shard, limit, after.as_ref()).await
        })
        .await
    }
}

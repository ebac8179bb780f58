//! [`DeviceStateStore`] on DynamoDB: partition `kind`, sort `device_id`, so
//! a kind's devices are one Query in id order. The status is kept whole as
//! JSON (`record`) beside the `ts_us` the condition compares: the table
//! needs no column per field, so a new kind needs no new table.

use aws_sdk_dynamodb::Client;

use super::{Item, get_item, get_n, get_s, n, s, table_error, written};
use crate::domain::device::DeviceRecord;
use crate::ports::device_state::{DeviceState, DeviceStateStore};
use crate::ports::{Page, TableError};

#[derive(Clone, Debug)]
pub struct DynamoDeviceStateTable {
    client: Client,
    table: String,
}

impl DynamoDeviceStateTable {
    pub fn new(client: Client, table: &str) -> Self {
        Self {
            client,
            table: table.to_string(),
        }
    }

    fn state_of(item: &Item) -> Option<DeviceState> {
        Some(DeviceState {
            record: serde_json::from_str(get_s(item, "record")?).ok()?,
            updated_at_ms: get_n(item, "updated_at_ms")?,
        })
    }
}

impl DeviceStateStore for DynamoDeviceStateTable {
    async fn put_if_newer(&self, r: &DeviceRecord, now_ms: i64) -> Result<bool, TableError> {
        let record = serde_json::to_string(r).map_err(|e| table_error(&self.table, e))?;
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("kind", s(&r.kind))
            .item("device_id", s(r.id.as_str()))
            .item("ts_us", n(r.ts_us()))
            .item("seq", n(r.seq))
            .item("record", s(record))
            .item("updated_at_ms", n(now_ms))
            .condition_expression("attribute_not_exists(device_id) OR ts_us < :ts_us")
            .expression_attribute_values(":ts_us", n(r.ts_us()))
            .send()
            .await;
        written(&self.table, result)
    }

    async fn get(&self, kind: &str, id: &str) -> Result<Option<DeviceState>, TableError> {
        let item = get_item(&self.client, &self.table, [("kind", s(kind)), ("device_id", s(id))]).await?;
        Ok(item.as_ref().and_then(Self::state_of))
    }

    async fn list(&self, kind: &str, limit: usize, after: Option<&str>) -> Result<Page<DeviceState>, TableError> {
        let mut request = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#kind = :kind")
            .expression_attribute_names("#kind", "kind")
            .expression_attribute_values(":kind", s(kind))
            .limit(i32::try_from(limit).unwrap_or(i32::MAX));
        if let Some(after) = after {
            request = request
                .exclusive_start_key("kind", s(kind))
                .exclusive_start_key("device_id", s(after));
        }
        let out = request.send().await.map_err(|e| table_error(&self.table, e))?;
        let items = out.items().iter().filter_map(Self::state_of).collect();
        let next = out
            .last_evaluated_key()
            .and_then(|k| get_s(k, "device_id"))
            .map(str::to_string);
        Ok(Page { items, next })
    }
}

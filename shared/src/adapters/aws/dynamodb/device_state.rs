//! [`DeviceStateStore`] on DynamoDB: partition `kind`, sort `device_id`, so
//! a kind's devices are one Query in id order. The status is kept whole as
//! JSON (`record`) beside the `ts_us` the condition compares: the table
//! needs no column per field, so a new kind needs no new table.
//!
//! The heard index lives in the same table, in partitions no kind can be
//! named (kinds hold no `#`): `heard#<kind>#<partition>` / `<step, 12
//! digits>#<device id>`, and each state item holds its `heard_step`. A
//! status is filed at its step before its state is written, and the step it
//! left is removed after; so a failure halfway leaves a device filed twice,
//! never not at all (the silence check compares with the state).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::ReturnValue;

use super::steps::{StepIndex, step_sk};
use super::{Item, get_item, get_n, get_s, is_condition_failure, n, s, table_error};
use crate::domain::device::DeviceRecord;
use crate::domain::device_id::DeviceId;
use crate::domain::standing::heard_bucket;
use crate::ports::device_state::{DeviceState, DeviceStateStore};
use crate::ports::directory::DIRECTORY_SHARDS;
use crate::ports::{Page, TableError, partition_of};

/// Devices whose step this instance remembers filing, before it forgets them all.
const REMEMBERED_DEVICES: usize = 100_000;

#[derive(Debug)]
pub struct DynamoDeviceStateTable {
    client: Client,
    table: String,
    /// (kind, device) → the step this instance last filed it at: a device
    /// reporting every few seconds is filed once per step, not per status.
    filed: Mutex<HashMap<(String, DeviceId), i64>>,
}

fn heard_pk(kind: &str, shard: u32) -> String {
    format!("heard#{kind}#{shard}")
}

/// The partition of `kind`'s heard index that holds `id`.
fn heard_pk_of(kind: &str, id: &DeviceId) -> String {
    heard_pk(kind, partition_of(id.as_str(), DIRECTORY_SHARDS))
}

impl DynamoDeviceStateTable {
    pub fn new(client: Client, table: &str) -> Self {
        Self {
            client,
            table: table.to_string(),
            filed: Mutex::default(),
        }
    }

    fn state_of(item: &Item) -> Option<DeviceState> {
        Some(DeviceState {
            record: serde_json::from_str(get_s(item, "record")?).ok()?,
            updated_at_ms: get_n(item, "updated_at_ms")?,
        })
    }

    fn filed(&self) -> std::sync::MutexGuard<'_, HashMap<(String, DeviceId), i64>> {
        self.filed.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn file(&self, kind: &str, id: &DeviceId, step: i64) -> Result<(), TableError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("kind", s(heard_pk_of(kind, id)))
            .item("device_id", s(step_sk(step, id)))
            .send()
            .await
            .map_err(|e| table_error(&self.table, e))?;
        Ok(())
    }

    async fn unfile(&self, kind: &str, id: &DeviceId, step: i64) -> Result<(), TableError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("kind", s(heard_pk_of(kind, id)))
            .key("device_id", s(step_sk(step, id)))
            .send()
            .await
            .map_err(|e| table_error(&self.table, e))?;
        Ok(())
    }
}

impl DeviceStateStore for DynamoDeviceStateTable {
    async fn put_if_newer(&self, r: &DeviceRecord, now_ms: i64) -> Result<bool, TableError> {
        let record = serde_json::to_string(r).map_err(|e| table_error(&self.table, e))?;
        let step = heard_bucket(r.received_at_ms.unwrap_or(now_ms));
        let device = (r.kind.clone(), r.id.clone());
        let filed_now = self.filed().get(&device) != Some(&step);
        if filed_now {
            self.file(&r.kind, &r.id, step).await?;
        }
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
            .item("heard_step", n(step))
            .condition_expression("attribute_not_exists(device_id) OR ts_us < :ts_us")
            .expression_attribute_values(":ts_us", n(r.ts_us()))
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        match result {
            Ok(out) => {
                // An item from before the index holds no step: nothing to remove.
                let left = out.attributes().and_then(|old| get_n::<i64>(old, "heard_step"));
                if let Some(left) = left.filter(|left| *left != step) {
                    self.unfile(&r.kind, &r.id, left).await?;
                }
                let mut filed = self.filed();
                if filed.len() >= REMEMBERED_DEVICES {
                    filed.clear();
                }
                filed.insert(device, step);
                Ok(true)
            }
            Err(e) if is_condition_failure(&e) => {
                // Older than the stored status: the entry filed for it is
                // the stored one's only if they share a step.
                if filed_now {
                    let stored = self.get(&r.kind, r.id.as_str()).await?;
                    if stored.is_none_or(|s| s.heard_step() != step) {
                        self.unfile(&r.kind, &r.id, step).await?;
                    }
                }
                Ok(false)
            }
            Err(e) => Err(table_error(&self.table, e)),
        }
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

    async fn unheard(
        &self,
        kind: &str,
        before: i64,
        after: Option<(i64, &DeviceId)>,
        limit: usize,
    ) -> Result<Vec<(DeviceId, i64)>, TableError> {
        let steps = StepIndex {
            client: &self.client,
            table: &self.table,
            pk_name: "kind",
            sk_name: "device_id",
        };
        steps
            .earliest(|shard| heard_pk(kind, shard), before, after, limit)
            .await
    }

    async fn refile(&self, kind: &str, id: &DeviceId, from: i64, to: Option<i64>) -> Result<(), TableError> {
        if let Some(to) = to {
            self.file(kind, id, to).await?;
        }
        if to != Some(from) {
            self.unfile(kind, id, from).await?;
        }
        Ok(())
    }
}

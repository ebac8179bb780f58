//! [`DeviceStateStore`] in memory.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::{Faults, lock};
use crate::domain::device::DeviceRecord;
use crate::ports::device_state::{DeviceState, DeviceStateStore};
use crate::ports::{Page, TableError};

#[derive(Debug, Default)]
pub struct MemoryDeviceStateTable {
    states: Mutex<BTreeMap<(String, String), DeviceState>>,
    pub faults: Faults,
}

impl MemoryDeviceStateTable {
    async fn enter(&self, operation: &'static str) -> Result<(), TableError> {
        self.faults.enter(operation).await.map_err(|message| TableError {
            table: "memory-device-state".into(),
            message,
        })
    }
}

impl DeviceStateStore for MemoryDeviceStateTable {
    async fn put_if_newer(&self, r: &DeviceRecord, now_ms: i64) -> Result<bool, TableError> {
        self.enter("put_if_newer").await?;
        let mut states = lock(&self.states);
        let key = (r.kind.clone(), r.id.to_string());
        if states.get(&key).is_some_and(|s| s.record.ts_us() >= r.ts_us()) {
            return Ok(false);
        }
        states.insert(
            key,
            DeviceState {
                record: r.clone(),
                updated_at_ms: now_ms,
            },
        );
        Ok(true)
    }

    async fn get(&self, kind: &str, id: &str) -> Result<Option<DeviceState>, TableError> {
        self.enter("get").await?;
        Ok(lock(&self.states).get(&(kind.to_string(), id.to_string())).cloned())
    }

    async fn list(&self, kind: &str, limit: usize, after: Option<&str>) -> Result<Page<DeviceState>, TableError> {
        self.enter("list").await?;
        let states = lock(&self.states);
        let mut items: Vec<DeviceState> = states
            .iter()
            .filter(|((k, id), _)| k == kind && after.is_none_or(|a| id.as_str() > a))
            .map(|(_, s)| s.clone())
            .take(limit.saturating_add(1))
            .collect();
        let next = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|s| s.record.id.to_string())
        } else {
            None
        };
        Ok(Page { items, next })
    }
}

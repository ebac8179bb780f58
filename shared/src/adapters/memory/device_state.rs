//! [`DeviceStateStore`] in memory.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use super::{Faults, lock};
use crate::domain::device::DeviceRecord;
use crate::domain::device_id::DeviceId;
use crate::ports::device_state::{DeviceState, DeviceStateStore};
use crate::ports::{Page, TableError};

#[derive(Debug, Default)]
pub struct MemoryDeviceStateTable {
    states: Mutex<BTreeMap<(String, String), DeviceState>>,
    /// kind → (step, device) of the heard index.
    heard: Mutex<BTreeMap<String, BTreeSet<(i64, DeviceId)>>>,
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
        let state = DeviceState {
            record: r.clone(),
            updated_at_ms: now_ms,
        };
        let mut heard = lock(&self.heard);
        let index = heard.entry(r.kind.clone()).or_default();
        if let Some(old) = states.get(&key) {
            index.remove(&(old.heard_step(), r.id.clone()));
        }
        index.insert((state.heard_step(), r.id.clone()));
        states.insert(key, state);
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

    async fn unheard(
        &self,
        kind: &str,
        before: i64,
        after: Option<(i64, &DeviceId)>,
        limit: usize,
    ) -> Result<Vec<(DeviceId, i64)>, TableError> {
        self.enter("unheard_query").await?;
        let heard = lock(&self.heard);
        Ok((heard.get(kind).into_iter().flatten())
            .filter(|(step, id)| after.is_none_or(|(s, a)| (*step, id) > (s, a)))
            .take_while(|(step, _)| *step < before)
            .take(limit)
            .map(|(step, id)| (id.clone(), *step))
            .collect())
    }

    async fn refile(&self, kind: &str, id: &DeviceId, from: i64, to: Option<i64>) -> Result<(), TableError> {
        self.enter("refile").await?;
        let mut heard = lock(&self.heard);
        let index = heard.entry(kind.to_string()).or_default();
        index.remove(&(from, id.clone()));
        if let Some(to) = to {
            index.insert((to, id.clone()));
        }
        Ok(())
    }
}

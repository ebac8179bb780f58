//! [`LatestStateStore`] in memory.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::{Faults, lock};
use crate::domain::device_id::DeviceId;
use crate::domain::telemetry::Telemetry;
use crate::ports::state::{LatestState, LatestStateStore};
use crate::ports::{Page, TableError};

#[derive(Debug, Default)]
pub struct MemoryStateTable {
    states: Mutex<BTreeMap<DeviceId, LatestState>>,
    pub faults: Faults,
}

impl MemoryStateTable {
    async fn enter(&self, operation: &'static str) -> Result<(), TableError> {
        self.faults.enter(operation).await.map_err(|message| TableError {
            table: "memory-state".into(),
            message,
        })
    }
}

impl LatestStateStore for MemoryStateTable {
    async fn put_if_newer(&self, t: &Telemetry, now_ms: i64) -> Result<bool, TableError> {
        self.enter("put_if_newer").await?;
        let mut states = lock(&self.states);
        if states
            .get(&t.vehicle_id)
            .is_some_and(|s| s.telemetry.ts_us() >= t.ts_us())
        {
            return Ok(false);
        }
        states.insert(
            t.vehicle_id.clone(),
            LatestState {
                telemetry: t.clone(),
                updated_at_ms: now_ms,
            },
        );
        Ok(true)
    }

    async fn get(&self, vehicle: &DeviceId) -> Result<Option<LatestState>, TableError> {
        self.enter("get").await?;
        Ok(lock(&self.states).get(vehicle).cloned())
    }

    async fn get_many(&self, vehicles: &[DeviceId]) -> Result<Vec<LatestState>, TableError> {
        for _ in vehicles.chunks(100) {
            self.enter("get_many").await?;
        }
        let states = lock(&self.states);
        Ok(vehicles.iter().filter_map(|v| states.get(v).cloned()).collect())
    }

    async fn list(&self, limit: usize, after: Option<&str>) -> Result<Page<LatestState>, TableError> {
        self.enter("list").await?;
        let states = lock(&self.states);
        let mut items: Vec<LatestState> = states
            .values()
            .filter(|s| after.is_none_or(|a| s.telemetry.vehicle_id.as_str() > a))
            .take(limit.saturating_add(1))
            .cloned()
            .collect();
        let next = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|s| s.telemetry.vehicle_id.to_string())
        } else {
            None
        };
        Ok(Page { items, next })
    }
}

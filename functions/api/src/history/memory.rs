//! [`History`] in memory: series and fleet statistics given by the test, with
//! the same answers a SQL backend gives (points in range, in time order) and
//! [`Faults`] to fail or delay queries.

use std::collections::HashMap;
use std::sync::Mutex;

use canopy::adapters::memory::Faults;
use canopy::domain::lttb::Point;
use canopy::domain::vehicle::VehicleId;
use chrono::NaiveDate;

use super::{FleetStat, History, HistoryError, SignalRef, TimeRange};

#[derive(Debug, Default)]
pub struct MemoryHistory {
    series: Mutex<HashMap<(VehicleId, SignalRef), Vec<Point>>>,
    stats: Mutex<HashMap<NaiveDate, Vec<FleetStat>>>,
    pub faults: Faults,
}

impl MemoryHistory {
    /// Adds points of `signal` for `vehicle`, in any order.
    pub fn insert(&self, vehicle: &VehicleId, signal: &SignalRef, points: impl IntoIterator<Item = Point>) {
        let mut series = self.series.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let held = series.entry((vehicle.clone(), signal.clone())).or_default();
        held.extend(points);
        held.sort_by_key(|p| p.ts_us);
    }

    pub fn insert_stats(&self, date: NaiveDate, stats: Vec<FleetStat>) {
        self.stats
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(date, stats);
    }

    async fn enter(&self, operation: &'static str) -> Result<(), HistoryError> {
        self.faults
            .enter(operation)
            .await
            .map_err(|message| HistoryError::Failed {
                query_id: format!("memory-{operation}"),
                message,
            })
    }
}

impl History for MemoryHistory {
    async fn points(
        &self,
        vehicle: &VehicleId,
        signal: &SignalRef,
        range: TimeRange,
        _max_points: usize,
    ) -> Result<Vec<Point>, HistoryError> {
        self.enter("points").await?;
        let series = self.series.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(series
            .get(&(vehicle.clone(), signal.clone()))
            .map(|points| {
                points
                    .iter()
                    .filter(|p| (range.from_us..range.to_us).contains(&p.ts_us))
                    .copied()
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn fleet_stats(&self, date: NaiveDate) -> Result<Vec<FleetStat>, HistoryError> {
        self.enter("fleet_stats").await?;
        let stats = self.stats.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(stats.get(&date).cloned().unwrap_or_default())
    }
}

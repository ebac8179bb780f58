//! [`History`] in memory: series, fleet statistics and trips given by the test, with
//! the answers the SQL gives (each bucket's first, lowest, highest and last
//! point; exact statistics) and [`Faults`] to fail or delay queries.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use canopy::adapters::memory::Faults;
use canopy::domain::device_id::DeviceId;
use canopy::domain::lttb::Point;
use canopy::format::lake::rollup::Agg;
use chrono::NaiveDate;

use super::plan::{self, BucketRow, Plan, Reduced};
use super::{FleetStat, History, HistoryError, SignalRef, TimeRange, TripRow};

#[derive(Debug, Default)]
pub struct MemoryHistory {
    series: Mutex<HashMap<(DeviceId, SignalRef), Vec<Point>>>,
    stats: Mutex<HashMap<NaiveDate, Vec<FleetStat>>>,
    trips: Mutex<HashMap<DeviceId, Vec<TripRow>>>,
    /// (kind, device, field) → points.
    devices: Mutex<HashMap<(String, DeviceId, String), Vec<Point>>>,
    /// How long a query of a signal takes (none for the others).
    slow: Mutex<HashMap<SignalRef, std::time::Duration>>,
    /// The queries [`History::cancel`] was asked to stop.
    pub cancelled: Mutex<Vec<String>>,
    pub faults: Faults,
}

impl MemoryHistory {
    /// Adds points of `signal` for `vehicle`, in any order.
    pub fn insert(&self, vehicle: &DeviceId, signal: &SignalRef, points: impl IntoIterator<Item = Point>) {
        let mut series = self.series.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let held = series.entry((vehicle.clone(), signal.clone())).or_default();
        held.extend(points);
        held.sort_by_key(|p| p.ts_us);
    }

    /// Makes each query of `signal` take `delay`.
    pub fn slow(&self, signal: &SignalRef, delay: std::time::Duration) {
        self.slow
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(signal.clone(), delay);
    }

    pub fn insert_stats(&self, date: NaiveDate, stats: Vec<FleetStat>) {
        self.stats
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(date, stats);
    }

    /// Points of a device's `field`, in any order.
    pub fn insert_device(&self, kind: &str, id: &DeviceId, field: &str, points: impl IntoIterator<Item = Point>) {
        let mut devices = self.devices.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let held = devices
            .entry((kind.to_string(), id.clone(), field.to_string()))
            .or_default();
        held.extend(points);
        held.sort_by_key(|p| p.ts_us);
    }

    /// Trips of `vehicle`, as the SQL would find them.
    pub fn insert_trips(&self, vehicle: &DeviceId, trips: Vec<TripRow>) {
        self.trips
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(vehicle.clone(), trips);
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
    /// What the SQL answers, computed over the held points as if they were
    /// the decoded values: one row per bucket with all four of its points.
    async fn reduced(&self, vehicle: &DeviceId, signal: &SignalRef, plan: &Plan) -> Result<Reduced, HistoryError> {
        self.enter("points").await?;
        super::started(&format!("memory-{}.{}", signal.message_name, signal.signal_name));
        let delay = self
            .slow
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(signal)
            .copied();
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        let series = self.series.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut buckets: BTreeMap<i64, Agg> = BTreeMap::new();
        for p in series.get(&(vehicle.clone(), signal.clone())).into_iter().flatten() {
            if !(plan.range.from_us..plan.range.to_us).contains(&p.ts_us) || p.value.is_nan() {
                continue;
            }
            let one = Agg::of(p.ts_us, p.value);
            buckets
                .entry((p.ts_us - plan.range.from_us) / plan.bucket_us)
                .and_modify(|a| a.merge(&one))
                .or_insert(one);
        }
        let mut all: Option<Agg> = None;
        for a in buckets.values() {
            match &mut all {
                Some(all) => all.merge(a),
                None => all = Some(*a),
            }
        }
        let rows: Vec<BucketRow> = buckets
            .values()
            .zip(std::iter::repeat(all))
            .filter_map(|(a, all)| {
                let all = all?;
                let point = |ts_us, value| Point { ts_us, value };
                Some(BucketRow {
                    is: [true; 4],
                    first: point(a.t_first, a.v_first),
                    last: point(a.t_last, a.v_last),
                    min: point(a.t_min, a.v_min),
                    max: point(a.t_max, a.v_max),
                    n_all: all.n,
                    min_all: all.v_min,
                    max_all: all.v_max,
                    mean_all: all.mean(),
                    m2_all: all.v_m2,
                    oor_all: all.n_out_of_range,
                })
            })
            .collect();
        Ok(plan::reduce(plan, &rows))
    }

    async fn fleet_stats(&self, date: NaiveDate) -> Result<Vec<FleetStat>, HistoryError> {
        self.enter("fleet_stats").await?;
        let stats = self.stats.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(stats.get(&date).cloned().unwrap_or_default())
    }

    /// The held trips that start in the range (the gap was the test's to apply).
    async fn trips(&self, vehicle: &DeviceId, range: TimeRange, _gap_us: i64) -> Result<Vec<TripRow>, HistoryError> {
        self.enter("trips").await?;
        let trips = self.trips.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(trips
            .get(vehicle)
            .into_iter()
            .flatten()
            .filter(|t| (range.from_us..range.to_us).contains(&t.start_us))
            .copied()
            .collect())
    }

    async fn device_points(
        &self,
        kind: &canopy::domain::kind::Kind,
        id: &DeviceId,
        field: &str,
        range: TimeRange,
    ) -> Result<Vec<Point>, HistoryError> {
        self.enter("device_points").await?;
        let devices = self.devices.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(devices
            .get(&(kind.name.clone(), id.clone(), field.to_string()))
            .into_iter()
            .flatten()
            .filter(|p| (range.from_us..range.to_us).contains(&p.ts_us))
            .copied()
            .collect())
    }

    async fn cancel(&self, query_ids: &[String]) {
        self.cancelled
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(query_ids);
    }
}

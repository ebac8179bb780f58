//! Trips and fleet statistics read by the function from the telemetry the
//! compactor copies by vehicle ([`by_vehicle`], [`fleet_hourly`]), with the
//! answers [`trips::trips_sql`] and [`super::fleet_stats_sql`] give over the
//! archive itself: a month of a vehicle's trips is a listing per date and
//! the dates' objects, all at once (two rounds of requests); a fleet-day is
//! one listing and its one object (two GETs in the minutes a replaced
//! object waits to be deleted).
//!
//! The copy runs with the compactor, every five minutes: what the archive
//! received since its last run is in neither answer yet.

use canopy::domain::device_id::DeviceId;
use canopy::domain::measure::Measure;
use canopy::format::lake::{by_vehicle, fleet_hourly};
use chrono::NaiveDate;
use futures::future::try_join_all;

use super::lake::{LakeReader, failed};
use super::trips::{self, TripSample};
use super::{FleetStat, HistoryError, TimeRange, TripRow, fleet_stat};

impl LakeReader {
    /// `vehicle`'s trips in `range`, split by gaps of more than `gap_us`.
    pub async fn trips(&self, vehicle: &DeviceId, range: TimeRange, gap_us: i64) -> Result<Vec<TripRow>, HistoryError> {
        if range.is_empty() {
            return Ok(Vec::new());
        }
        let (first, last) = range.dates();
        let prefixes: Vec<String> = first
            .iter_days()
            .take_while(|d| *d <= last)
            .map(|date| by_vehicle::partition(vehicle.as_str(), date))
            .collect();
        let objects = self.listed(&prefixes).await?;
        let decoded = try_join_all(objects.iter().map(|meta| self.object(meta))).await?;
        let mut rows = Vec::new();
        for (meta, object) in objects.iter().zip(decoded) {
            rows.extend(by_vehicle::rows(&object.batches, meta.location.as_ref()).map_err(failed)?);
        }
        let mut samples: Vec<TripSample> = by_vehicle::newest_copies(rows)
            .into_iter()
            .filter(|r| (range.from_us..range.to_us).contains(&r.sample.ts_us))
            .map(|r| {
                let s = r.sample;
                TripSample {
                    ts_us: s.ts_us,
                    seq: s.seq,
                    soc_pct: s.value(Measure::SocPct),
                    speed_kph: s.value(Measure::SpeedKph),
                    cell_temp_max_c: s.value(Measure::CellTempMaxC),
                    power_w: s.value(Measure::PackVoltageV) * s.value(Measure::PackCurrentA),
                }
            })
            .collect();
        samples.sort_by_key(|s| (s.ts_us, s.seq));
        Ok(trips::trip_rows(&samples, gap_us))
    }

    /// Per vehicle and hour of `date`, ordered by vehicle and hour.
    pub async fn fleet_stats(&self, date: NaiveDate) -> Result<Vec<FleetStat>, HistoryError> {
        let objects = self.listed(&[fleet_hourly::partition(date)]).await?;
        let decoded = try_join_all(objects.iter().map(|meta| self.object(meta))).await?;
        let mut hours = Vec::new();
        for (meta, object) in objects.iter().zip(decoded) {
            hours.extend(fleet_hourly::rows(&object.batches, meta.location.as_ref()).map_err(failed)?);
        }
        Ok(fleet_hourly::newest(hours)
            .into_iter()
            .map(|h| {
                use Measure::{CellTempMaxC, PackCurrentA, SocPct, SpeedKph};
                let values = [
                    h.min(SocPct),
                    h.max(SocPct),
                    h.mean(SocPct),
                    h.max(CellTempMaxC),
                    h.mean(CellTempMaxC),
                    h.min(PackCurrentA),
                    h.max(PackCurrentA),
                    h.mean(PackCurrentA),
                    h.max(SpeedKph),
                    h.mean(SpeedKph),
                ];
                fleet_stat(h.vehicle.to_string(), h.hour_us / 1_000_000, h.messages, values)
            })
            .collect())
    }
}

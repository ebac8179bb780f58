//! A vehicle's telemetry sample, validated, and the bounds on its clock.
//! How the message looks on the wire, and how it is read, is
//! `format::telemetry`'s job; this is what the functions reason about.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};

use crate::domain::device_id::DeviceId;
use crate::domain::measure::Measure;
use crate::domain::rejection::{Rejection, reject_at};

/// How far a message's `ts` may be from the time IoT Core received it: a
/// vehicle's clock orders its own messages, but a clock far off (a fault, or
/// a compromised unit) must not freeze its state or its alerts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockBounds {
    /// How far ahead of the receive time `ts` may be.
    pub max_ahead_ms: i64,
    /// How far behind the receive time `ts` may be (an edge uploads what it
    /// buffered while offline).
    pub max_behind_ms: i64,
}

impl Default for ClockBounds {
    fn default() -> Self {
        Self {
            max_ahead_ms: 5 * 60 * 1000,
            max_behind_ms: 7 * 24 * 3600 * 1000,
        }
    }
}

/// A valid telemetry message.
#[derive(Debug, Clone, PartialEq)]
pub struct Telemetry {
    pub vehicle_id: DeviceId,
    pub ts: DateTime<Utc>,
    pub seq: u64,
    pub soc_pct: f64,
    pub pack_voltage_v: f64,
    pub pack_current_a: f64,
    pub cell_voltage_min_v: f64,
    pub cell_voltage_max_v: f64,
    pub cell_temp_min_c: f64,
    pub cell_temp_max_c: f64,
    pub speed_kph: f64,
    /// [`Measure::CellVoltageSpreadV`], when the edge sends it.
    pub cell_voltage_spread_v: Option<f64>,
    /// When IoT Core received the message (ms since the epoch), when the rule says.
    pub received_at_ms: Option<i64>,
    /// Fields v1 does not define, kept for the archive.
    pub extra: BTreeMap<String, Value>,
}

impl Telemetry {
    /// A message of the required measures, in [`Measure::REQUIRED`] order,
    /// without optional fields.
    pub fn from_measures(
        vehicle_id: DeviceId,
        ts: DateTime<Utc>,
        seq: u64,
        measures: [f64; Measure::REQUIRED.len()],
    ) -> Self {
        let [
            soc_pct,
            pack_voltage_v,
            pack_current_a,
            cell_voltage_min_v,
            cell_voltage_max_v,
            cell_temp_min_c,
            cell_temp_max_c,
            speed_kph,
        ] = measures;
        Self {
            vehicle_id,
            ts,
            seq,
            soc_pct,
            pack_voltage_v,
            pack_current_a,
            cell_voltage_min_v,
            cell_voltage_max_v,
            cell_temp_min_c,
            cell_temp_max_c,
            speed_kph,
            cell_voltage_spread_v: None,
            received_at_ms: None,
            extra: BTreeMap::new(),
        }
    }

    /// The time IoT Core received the message (ms), else `now_ms` (a direct invocation).
    pub fn server_time_ms(&self, now_ms: i64) -> i64 {
        self.received_at_ms.unwrap_or(now_ms)
    }

    /// Rejects a message whose `ts` is outside `bounds` around the server's time.
    pub fn check_clock(&self, bounds: ClockBounds, now_ms: i64) -> Result<(), Rejection> {
        check_clock(self.ts, self.server_time_ms(now_ms), bounds)
    }

    /// The message's value of `measure`. The cell-voltage spread falls back
    /// to the interval's max - min for edges that do not send it.
    pub fn value(&self, measure: Measure) -> f64 {
        match measure {
            Measure::SocPct => self.soc_pct,
            Measure::PackVoltageV => self.pack_voltage_v,
            Measure::PackCurrentA => self.pack_current_a,
            Measure::CellVoltageMinV => self.cell_voltage_min_v,
            Measure::CellVoltageMaxV => self.cell_voltage_max_v,
            Measure::CellTempMinC => self.cell_temp_min_c,
            Measure::CellTempMaxC => self.cell_temp_max_c,
            Measure::SpeedKph => self.speed_kph,
            Measure::CellVoltageSpreadV => self
                .cell_voltage_spread_v
                .unwrap_or(self.cell_voltage_max_v - self.cell_voltage_min_v),
        }
    }

    /// Microseconds since the epoch of `ts`.
    pub fn ts_us(&self) -> i64 {
        self.ts.timestamp_micros()
    }

    /// What the archive and the state table keep besides the named fields:
    /// the unknown fields and the optional measures the message carried.
    pub fn extra_with_optional(&self) -> Map<String, Value> {
        let mut extra: Map<String, Value> = self.extra.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        if let Some(spread) = self.cell_voltage_spread_v.and_then(serde_json::Number::from_f64) {
            extra.insert(Measure::CellVoltageSpreadV.name().into(), Value::Number(spread));
        }
        extra
    }
}

/// Rejects a `ts` outside `bounds` around `server_ms`, the time IoT Core
/// received the message (or the server's clock when the rule did not say).
pub fn check_clock(ts: DateTime<Utc>, server_ms: i64, bounds: ClockBounds) -> Result<(), Rejection> {
    let ts_ms = ts.timestamp_millis();
    let at = || ts.to_rfc3339_opts(SecondsFormat::Millis, true);
    if ts_ms > server_ms.saturating_add(bounds.max_ahead_ms) {
        return Err(reject_at(
            "ts",
            format!(
                "field ts {} is {} s ahead of the time IoT Core received the message (at most {} s)",
                at(),
                (ts_ms - server_ms) / 1000,
                bounds.max_ahead_ms / 1000
            ),
        ));
    }
    if ts_ms < server_ms.saturating_sub(bounds.max_behind_ms) {
        return Err(reject_at(
            "ts",
            format!(
                "field ts {} is {} s behind the time IoT Core received the message (at most {} s)",
                at(),
                (server_ms - ts_ms) / 1000,
                bounds.max_behind_ms / 1000
            ),
        ));
    }
    Ok(())
}

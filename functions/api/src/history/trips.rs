//! Trips: the contiguous periods of a vehicle's telemetry, split wherever
//! two messages are more than a gap apart (5 minutes unless the caller says),
//! each with what a fleet operator reads off a trip log: when, how long, how
//! far, how much energy out and back in, the state of charge at both ends,
//! the hottest cell, and the alerts raised on the way.
//!
//! One SQL query over the telemetry archive ([`trips_sql`], window functions
//! and plain aggregates, the same text on Athena and DataFusion) numbers the
//! trips and integrates each with the trapezoid rule between consecutive
//! messages: distance from `speed_kph`, energy from `pack_voltage_v ×
//! pack_current_a` (positive power is energy out of the pack, negative is
//! regeneration or charging, energy in). The archive rather than the rollup
//! tiers: its measures are the same for every vehicle, while the tiers hold
//! each DBC's own signal names; at one message a second it is also small.
//! A trip is cut where the asked range cuts it.

use canopy::domain::alert::Alert;
use canopy::domain::device_id::DeviceId;
use chrono::{DateTime, SecondsFormat};
use serde::Serialize;

use super::plan::Kind;
use super::{InvalidQuery, Param, Sql, TimeRange, invalid};

/// The gap that splits two trips when the caller names none: 5 minutes.
pub const DEFAULT_GAP_S: i64 = 300;
/// The gaps a caller may name, in seconds.
pub const GAP_RANGE_S: std::ops::RangeInclusive<i64> = 10..=86_400;

/// `gap_s`, bounded; the default when absent.
pub fn gap_us(requested: Option<i64>) -> Result<i64, InvalidQuery> {
    match requested {
        None => Ok(DEFAULT_GAP_S * 1_000_000),
        Some(s) if GAP_RANGE_S.contains(&s) => Ok(s * 1_000_000),
        Some(s) => Err(invalid(
            "gap_s",
            format!("{s} is outside {}..={}", GAP_RANGE_S.start(), GAP_RANGE_S.end()),
        )),
    }
}

/// The columns of [`trips_sql`]'s answer, in order: the one list the SQL and
/// the backends' readers ([`TripRow::from_cells`]) share.
pub const TRIP_COLUMNS: [(&str, Kind); 10] = [
    ("start_us", Kind::Int),
    ("end_us", Kind::Int),
    ("samples", Kind::Int),
    ("distance_km", Kind::Float),
    ("energy_out_kwh", Kind::Float),
    ("energy_in_kwh", Kind::Float),
    ("soc_start_pct", Kind::Float),
    ("soc_end_pct", Kind::Float),
    ("cell_temp_max_c", Kind::Float),
    ("trip", Kind::Int),
];

/// The trips of `vehicle` in `range`, split by gaps of more than `gap_us`.
pub fn trips_sql(table: &str, vehicle: &DeviceId, range: TimeRange, gap_us: i64) -> Sql {
    let (first, last) = range.dates();
    // Each step between consecutive messages of a trip: its length and the
    // mean of its two ends (the trapezoid rule); the first message of a trip has none.
    let step = |expr: &str| format!("({expr} + lag({expr}) OVER (PARTITION BY trip ORDER BY ts_us, seq)) / 2");
    let whole_trip =
        "OVER (PARTITION BY trip ORDER BY ts_us, seq ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)";
    let text = format!(
        "WITH s AS (SELECT ts_us, seq, soc_pct, speed_kph, cell_temp_max_c, pack_voltage_v * pack_current_a AS power_w, \
         lag(ts_us) OVER (ORDER BY ts_us, seq) AS t_prev \
         FROM {table} WHERE \"date\" BETWEEN ? AND ? AND vehicle_id = ? AND ts_us >= ? AND ts_us < ?), \
         n AS (SELECT ts_us, seq, soc_pct, speed_kph, cell_temp_max_c, \
         CASE WHEN power_w > 0 THEN power_w ELSE 0 END AS out_w, CASE WHEN power_w < 0 THEN -power_w ELSE 0 END AS in_w, \
         sum(CASE WHEN t_prev IS NULL OR ts_us - t_prev > ? THEN 1 ELSE 0 END) \
         OVER (ORDER BY ts_us, seq ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS trip FROM s), \
         d AS (SELECT trip, ts_us, cell_temp_max_c, \
         ts_us - lag(ts_us) OVER (PARTITION BY trip ORDER BY ts_us, seq) AS dt_us, \
         {speed} AS speed_step, {out_w} AS out_step, {in_w} AS in_step, \
         first_value(soc_pct) {whole_trip} AS soc_start, last_value(soc_pct) {whole_trip} AS soc_end FROM n) \
         SELECT min(ts_us) AS start_us, max(ts_us) AS end_us, count(*) AS samples, \
         coalesce(sum(speed_step * dt_us), 0) / 3.6e9 AS distance_km, \
         coalesce(sum(out_step * dt_us), 0) / 3.6e12 AS energy_out_kwh, \
         coalesce(sum(in_step * dt_us), 0) / 3.6e12 AS energy_in_kwh, \
         max(soc_start) AS soc_start_pct, max(soc_end) AS soc_end_pct, max(cell_temp_max_c) AS cell_temp_max_c, trip \
         FROM d GROUP BY trip ORDER BY trip",
        speed = step("speed_kph"),
        out_w = step("out_w"),
        in_w = step("in_w"),
    );
    Sql {
        text,
        params: vec![
            Param::Str(first.format("%Y-%m-%d").to_string()),
            Param::Str(last.format("%Y-%m-%d").to_string()),
            Param::Str(vehicle.to_string()),
            Param::Int(range.from_us),
            Param::Int(range.to_us),
            Param::Int(gap_us),
        ],
    }
}

/// One row of [`trips_sql`]'s answer, as a backend read it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TripRow {
    pub start_us: i64,
    pub end_us: i64,
    pub samples: u64,
    pub distance_km: f64,
    pub energy_out_kwh: f64,
    pub energy_in_kwh: f64,
    pub soc_start_pct: f64,
    pub soc_end_pct: f64,
    pub cell_temp_max_c: f64,
}

impl TripRow {
    /// A row from its cells: `int(i)` and `float(i)` read column `i` of
    /// [`TRIP_COLUMNS`] as the kind it has there.
    pub fn from_cells<E>(
        int: impl Fn(usize) -> Result<i64, E>,
        float: impl Fn(usize) -> Result<f64, E>,
    ) -> Result<Self, E> {
        Ok(Self {
            start_us: int(0)?,
            end_us: int(1)?,
            samples: int(2)? as u64,
            distance_km: float(3)?,
            energy_out_kwh: float(4)?,
            energy_in_kwh: float(5)?,
            soc_start_pct: float(6)?,
            soc_end_pct: float(7)?,
            cell_temp_max_c: float(8)?,
        })
    }
}

/// What a trip reads of a sample: [`trips_sql`]'s columns.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TripSample {
    pub ts_us: i64,
    pub seq: i64,
    pub soc_pct: f64,
    pub speed_kph: f64,
    pub cell_temp_max_c: f64,
    /// `pack_voltage_v × pack_current_a`.
    pub power_w: f64,
}

/// The rows [`trips_sql`] answers for a vehicle's `samples` in a range
/// (ordered by time, then seq), computed in the function: a trip starts at
/// the first sample and after every step longer than `gap_us`; distance and
/// energy are the trapezoid rule over its steps, as the SQL sums them.
pub fn trip_rows(samples: &[TripSample], gap_us: i64) -> Vec<TripRow> {
    let mut rows = Vec::new();
    let mut start = 0;
    for i in 1..=samples.len() {
        if i == samples.len() || samples[i].ts_us - samples[i - 1].ts_us > gap_us {
            rows.push(trip_row(&samples[start..i]));
            start = i;
        }
    }
    rows
}

/// One trip's row; `trip` is never empty.
fn trip_row(trip: &[TripSample]) -> TripRow {
    let out = |p: f64| if p > 0.0 { p } else { 0.0 };
    let back = |p: f64| if p < 0.0 { -p } else { 0.0 };
    let (mut distance, mut energy_out, mut energy_in) = (0.0, 0.0, 0.0);
    for step in trip.windows(2) {
        let (a, b) = (step[0], step[1]);
        let dt_us = (b.ts_us - a.ts_us) as f64;
        distance += (b.speed_kph + a.speed_kph) / 2.0 * dt_us;
        energy_out += (out(b.power_w) + out(a.power_w)) / 2.0 * dt_us;
        energy_in += (back(b.power_w) + back(a.power_w)) / 2.0 * dt_us;
    }
    let (first, last) = (trip[0], trip[trip.len() - 1]);
    TripRow {
        start_us: first.ts_us,
        end_us: last.ts_us,
        samples: trip.len() as u64,
        distance_km: distance / 3.6e9,
        energy_out_kwh: energy_out / 3.6e12,
        energy_in_kwh: energy_in / 3.6e12,
        soc_start_pct: first.soc_pct,
        soc_end_pct: last.soc_pct,
        cell_temp_max_c: trip.iter().map(|s| s.cell_temp_max_c).fold(f64::NEG_INFINITY, f64::max),
    }
}

/// A contiguous period of telemetry. Distance and energy are integrated
/// with the trapezoid rule between consecutive messages: distance from
/// speed_kph, energy from pack_voltage_v x pack_current_a (positive out of
/// the pack, negative back in). A trip is cut where the asked range cuts it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Trip {
    /// RFC 3339, the first and last messages' times.
    #[schema(format = DateTime)]
    pub start: String,
    #[schema(format = DateTime)]
    pub end: String,
    pub start_us: i64,
    pub end_us: i64,
    pub duration_s: f64,
    /// Telemetry messages the trip holds.
    pub samples: u64,
    pub distance_km: f64,
    pub energy_out_kwh: f64,
    pub energy_in_kwh: f64,
    pub soc_start_pct: f64,
    pub soc_end_pct: f64,
    /// The hottest cell of the trip.
    pub cell_temp_max_c: f64,
    /// Alerts raised by the trip's messages, oldest first.
    pub alerts: Vec<Alert>,
}

/// Trips from their rows, each with the `alerts` (any order) its time span holds.
pub fn trips(rows: &[TripRow], alerts: &[Alert]) -> Vec<Trip> {
    let time = |us: i64| {
        DateTime::from_timestamp_micros(us)
            .unwrap_or_default()
            .to_rfc3339_opts(SecondsFormat::Millis, true)
    };
    rows.iter()
        .map(|r| {
            let mut during: Vec<Alert> = alerts
                .iter()
                .filter(|a| (r.start_us..=r.end_us).contains(&a.ts_us))
                .cloned()
                .collect();
            during.sort_by(|a, b| (a.ts_us, &a.rule).cmp(&(b.ts_us, &b.rule)));
            Trip {
                start: time(r.start_us),
                end: time(r.end_us),
                start_us: r.start_us,
                end_us: r.end_us,
                duration_s: (r.end_us - r.start_us) as f64 / 1e6,
                samples: r.samples,
                distance_km: r.distance_km,
                energy_out_kwh: r.energy_out_kwh,
                energy_in_kwh: r.energy_in_kwh,
                soc_start_pct: r.soc_start_pct,
                soc_end_pct: r.soc_end_pct,
                cell_temp_max_c: r.cell_temp_max_c,
                alerts: during,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use canopy::domain::alert::{Comparison, Quantity, Severity};
    use canopy::domain::measure::Measure;

    use super::*;

    #[test]
    fn gaps_are_bounded_and_default_to_five_minutes() {
        assert_eq!(gap_us(None), Ok(300_000_000));
        assert_eq!(gap_us(Some(60)), Ok(60_000_000));
        assert_eq!(gap_us(Some(5)).unwrap_err().field, "gap_s");
        assert!(gap_us(Some(86_401)).is_err());
    }

    #[test]
    fn the_text_is_plain_sql_with_every_value_a_parameter() {
        let v = DeviceId::new("veh-01").unwrap();
        let sql = trips_sql("telemetry", &v, TimeRange::new(0, 86_400_000_000).unwrap(), 300_000_000);
        assert_eq!(sql.text.matches('?').count(), sql.params.len());
        assert!(!sql.text.contains("veh-01"));
        for engine_only in ["min_by", "max_by", "arbitrary", "greatest", "date_trunc", "count_if"] {
            assert!(!sql.text.contains(engine_only), "{engine_only}");
        }
        for (name, _) in TRIP_COLUMNS {
            assert!(sql.text.contains(&format!("AS {name}")) || name == "trip", "{name}");
        }
    }

    #[test]
    fn samples_split_at_gaps_and_integrate_by_the_trapezoid_rule() {
        let s = |t_s: i64, speed_kph: f64, power_w: f64| TripSample {
            ts_us: t_s * 1_000_000,
            seq: t_s,
            soc_pct: 80.0 - t_s as f64 / 100.0,
            speed_kph,
            cell_temp_max_c: 30.0 + t_s as f64 / 1000.0,
            power_w,
        };
        let samples = [
            s(0, 0.0, 0.0),
            s(10, 36.0, 36_000.0),
            s(20, 36.0, -36_000.0),
            s(400, 10.0, 0.0),
        ];
        let rows = trip_rows(&samples, 300_000_000);
        assert_eq!(rows.len(), 2, "the 380 s step splits");
        let a = rows[0];
        assert_eq!((a.start_us, a.end_us, a.samples), (0, 20_000_000, 3));
        // 18 km/h for 10 s, then 36 km/h for 10 s: 0.15 km.
        assert!((a.distance_km - 0.15).abs() < 1e-12, "{}", a.distance_km);
        // 18 kW for 10 s, then 18 kW out for 10 s; and 18 kW back for 10 s.
        assert!((a.energy_out_kwh - 0.1).abs() < 1e-12, "{}", a.energy_out_kwh);
        assert!((a.energy_in_kwh - 0.05).abs() < 1e-12, "{}", a.energy_in_kwh);
        assert_eq!((a.soc_start_pct, a.soc_end_pct, a.cell_temp_max_c), (80.0, 79.8, 30.02));
        let b = rows[1];
        assert_eq!((b.samples, b.distance_km, b.energy_out_kwh), (1, 0.0, 0.0));
        assert!(trip_rows(&[], 1).is_empty());
    }

    #[test]
    fn each_trip_gets_the_alerts_of_its_span() {
        let alert = |ts_us| Alert {
            vehicle_id: DeviceId::new("veh-01").unwrap(),
            kind: None,
            rule: "over-temperature".into(),
            severity: Severity::Critical,
            measure: Quantity::Measure(Measure::CellTempMaxC),
            value: 61.0,
            comparison: Comparison::Above,
            threshold: 60.0,
            ts: String::new(),
            ts_us,
            seq: 1,
        };
        let row = |start_us, end_us| TripRow {
            start_us,
            end_us,
            samples: 2,
            distance_km: 1.0,
            energy_out_kwh: 0.5,
            energy_in_kwh: 0.1,
            soc_start_pct: 80.0,
            soc_end_pct: 79.0,
            cell_temp_max_c: 40.0,
        };
        let got = trips(
            &[row(0, 600_000_000), row(1_200_000_000, 1_800_000_000)],
            &[alert(1_500_000_000), alert(600_000_000), alert(900_000_000)],
        );
        assert_eq!(got[0].alerts.len(), 1, "the end is inside the trip");
        assert_eq!(got[1].alerts[0].ts_us, 1_500_000_000);
        assert_eq!(got[0].duration_s, 600.0);
        assert_eq!(got[1].start, "1970-01-01T00:20:00.000Z");
    }
}

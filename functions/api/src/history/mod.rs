//! Signal history and fleet statistics from the lake, behind one port,
//! [`History`], with its adapters side by side: charts, trips and fleet
//! statistics read from the lake's objects by the function itself
//! ([`lake`], feature `lake`: in AWS and on the local stack), the questions
//! answered with SQL on Athena in AWS ([`athena`]: devices' fields still
//! are) or DataFusion over the same Parquet objects on the local stack
//! ([`datafusion`], feature `datafusion`), and points in memory for tests
//! ([`memory`], feature `memory`).
//!
//! Every input is validated here before any backend sees it, and the SQL
//! carries values only as parameters; both backends run the same text
//! ([`plan::series_sql`], [`fleet_stats_sql`], [`trips::trips_sql`]), so they
//! answer the same question.

#[cfg(feature = "aws")]
pub mod athena;
#[cfg(feature = "datafusion")]
pub mod datafusion;
pub mod devices;
#[cfg(feature = "lake")]
pub mod lake;
#[cfg(feature = "lake")]
mod lake_telemetry;
#[cfg(any(test, feature = "memory"))]
pub mod memory;
pub mod plan;
#[cfg(any(feature = "lake", feature = "datafusion"))]
pub mod stores;
pub mod trips;

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use canopy::domain::device_id::DeviceId;
use canopy::domain::lttb::{Point, lttb};
use canopy::format::lake::keys::date_of;
use canopy::runtime::text::truncate_chars;

pub use crate::catalogs::{Catalog, CatalogEntry, CatalogError};

pub use plan::{Plan, Reduced, Stats};
pub use trips::TripRow;

/// The longest time range one query may span.
pub const MAX_RANGE_US: i64 = 31 * 24 * 3600 * 1_000_000;
/// The most points a series is reduced to.
pub const MAX_POINTS: usize = 10_000;
pub const DEFAULT_POINTS: usize = 1_000;
/// Signals one multi-signal query may ask for.
pub const MAX_SIGNALS: usize = 20;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HistoryError {
    /// The query did not finish in time; it may still be running.
    #[error("query {query_id} did not finish within {seconds} s")]
    Timeout { query_id: String, seconds: u64 },
    /// The engine ran the query and it failed, or the engine could not be reached.
    #[error("query {query_id}: {message}")]
    Failed { query_id: String, message: String },
}

/// What a caller asked for that cannot be answered: a 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct InvalidQuery {
    pub field: String,
    pub problem: String,
}

pub(crate) fn invalid(field: &str, problem: impl Into<String>) -> InvalidQuery {
    InvalidQuery {
        field: field.to_string(),
        problem: problem.into(),
    }
}

/// A signal of the catalog, by message and signal name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignalRef {
    #[schema(pattern = "^[A-Za-z_][A-Za-z0-9_]{0,127}$")]
    pub message_name: String,
    #[schema(pattern = "^[A-Za-z_][A-Za-z0-9_]{0,127}$")]
    pub signal_name: String,
}

/// A validated time range, `[from_us, to_us)`; empty when `from_us` is not
/// before `to_us` (only [`TimeRange::parse`] makes such a range).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    pub from_us: i64,
    pub to_us: i64,
}

impl TimeRange {
    /// What a caller asked for, from RFC 3339 times; `to` defaults to now
    /// and `from` to a day before `to`. Every such request is answered: a
    /// range longer than [`MAX_RANGE_US`] is cut to the 31 days before `to`
    /// (what one query may read), and one whose `from` is not before `to`
    /// is empty, so nothing is read for it. The answer's `from_us` and
    /// `to_us` say which range it covers.
    pub fn parse(from: Option<&str>, to: Option<&str>, now: DateTime<Utc>) -> Result<Self, InvalidQuery> {
        let time = |field: &str, s: &str| -> Result<i64, InvalidQuery> {
            DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&Utc).timestamp_micros())
                .map_err(|e| {
                    invalid(
                        field,
                        format!("{:?} is not an RFC 3339 time: {e}", truncate_chars(s, 40)),
                    )
                })
        };
        let to_us = match to {
            Some(s) => time("to", s)?,
            None => now.timestamp_micros(),
        };
        let from_us = match from {
            Some(s) => time("from", s)?,
            None => to_us - 24 * 3600 * 1_000_000,
        };
        Ok(Self {
            from_us: from_us.clamp(to_us.saturating_sub(MAX_RANGE_US), to_us),
            to_us,
        })
    }

    /// No time at all: nothing is read for it.
    pub fn is_empty(&self) -> bool {
        self.from_us >= self.to_us
    }

    pub fn new(from_us: i64, to_us: i64) -> Result<Self, InvalidQuery> {
        if from_us >= to_us {
            return Err(invalid("from", "must be before to"));
        }
        if to_us - from_us > MAX_RANGE_US {
            return Err(invalid("to", "the range may span at most 31 days"));
        }
        Ok(Self { from_us, to_us })
    }

    /// The first and last UTC dates the range touches: the partitions to read.
    pub fn dates(&self) -> (NaiveDate, NaiveDate) {
        (date_of(self.from_us), date_of(self.to_us - 1))
    }
}

/// `max_points`, bounded.
pub fn max_points(requested: Option<usize>) -> Result<usize, InvalidQuery> {
    match requested {
        None => Ok(DEFAULT_POINTS),
        Some(n) if (3..=MAX_POINTS).contains(&n) => Ok(n),
        Some(n) => Err(invalid("max_points", format!("{n} is outside 3..={MAX_POINTS}"))),
    }
}

/// A JSON body's count as an integer: `800.0` is 800 (JSON Schema's
/// `integer` takes it), `800.5` or `-1` is bad input.
pub fn whole_number(field: &str, n: Option<f64>) -> Result<Option<usize>, InvalidQuery> {
    match n {
        None => Ok(None),
        Some(n) if n.fract() == 0.0 && (0.0..=usize::MAX as f64).contains(&n) => Ok(Some(n as usize)),
        Some(n) => Err(invalid(field, format!("{n} is not a whole number"))),
    }
}

/// A date partition, `YYYY-MM-DD`.
pub fn parse_date(s: &str) -> Result<NaiveDate, InvalidQuery> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| invalid("date", format!("{:?} is not a YYYY-MM-DD date", truncate_chars(s, 40))))
}

/// One signal's history, as the API returns it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Series {
    pub message_name: String,
    pub signal_name: String,
    pub unit: String,
    /// Points the backend returned (each bucket's first, lowest, highest and last) before LTTB.
    pub source_points: usize,
    pub downsampled: bool,
    pub points: Vec<Point>,
    /// Over every value of the range (not only the points drawn); `None` when it holds none.
    pub stats: Option<Stats>,
}

/// Per vehicle and hour of one day, from the telemetry archive.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct FleetStat {
    pub vehicle_id: String,
    /// The hour's start, RFC 3339.
    #[schema(format = DateTime)]
    pub hour: String,
    pub messages: u64,
    pub soc_pct_min: f64,
    pub soc_pct_max: f64,
    pub soc_pct_avg: f64,
    pub cell_temp_max_c_max: f64,
    pub cell_temp_max_c_avg: f64,
    pub pack_current_a_min: f64,
    pub pack_current_a_max: f64,
    pub pack_current_a_avg: f64,
    pub speed_kph_max: f64,
    pub speed_kph_avg: f64,
}

/// The SQL a backend runs, with its parameters in order. Both backends run
/// this text (`?` placeholders); only the table names differ.
pub struct Sql {
    pub text: String,
    pub params: Vec<Param>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    Str(String),
    Int(i64),
}

/// Fleet statistics of one day from the telemetry archive (partitioned by date only).
pub fn fleet_stats_sql(table: &str, date: NaiveDate) -> Sql {
    Sql {
        text: format!(
            "SELECT vehicle_id, (ts_us / 3600000000) * 3600 AS hour_s, count(*) AS messages, \
             min(soc_pct), max(soc_pct), avg(soc_pct), max(cell_temp_max_c), avg(cell_temp_max_c), \
             min(pack_current_a), max(pack_current_a), avg(pack_current_a), max(speed_kph), avg(speed_kph) \
             FROM {table} WHERE \"date\" = ? GROUP BY 1, 2 ORDER BY 1, 2"
        ),
        params: vec![Param::Str(date.format("%Y-%m-%d").to_string())],
    }
}

/// A fleet-stats row from a backend's values, in the select list's order.
pub fn fleet_stat(vehicle_id: String, hour_s: i64, messages: u64, v: [f64; 10]) -> FleetStat {
    FleetStat {
        vehicle_id,
        hour: DateTime::from_timestamp(hour_s, 0).unwrap_or_default().to_rfc3339(),
        messages,
        soc_pct_min: v[0],
        soc_pct_max: v[1],
        soc_pct_avg: v[2],
        cell_temp_max_c_max: v[3],
        cell_temp_max_c_avg: v[4],
        pack_current_a_min: v[5],
        pack_current_a_max: v[6],
        pack_current_a_avg: v[7],
        speed_kph_max: v[8],
        speed_kph_avg: v[9],
    }
}

/// A query engine over the lake.
pub trait History: Send + Sync {
    /// A signal's points in the range, in time order. A backend may reduce a
    /// long series in SQL first (to at least `max_points`), never below it.
    /// Runs [`plan::series_sql`] for `plan`: each bucket's first, lowest,
    /// highest and last points, and the statistics of the range.
    fn reduced(
        &self,
        vehicle: &DeviceId,
        signal: &SignalRef,
        plan: &Plan,
    ) -> impl Future<Output = Result<Reduced, HistoryError>> + Send;

    fn fleet_stats(&self, date: NaiveDate) -> impl Future<Output = Result<Vec<FleetStat>, HistoryError>> + Send;

    /// A vehicle's trips in the range, split by gaps of more than `gap_us`:
    /// runs [`trips::trips_sql`] over the telemetry archive.
    fn trips(
        &self,
        vehicle: &DeviceId,
        range: TimeRange,
        gap_us: i64,
    ) -> impl Future<Output = Result<Vec<TripRow>, HistoryError>> + Send;

    /// A device's values of a chartable field in the range, in time order:
    /// runs [`devices::device_points_sql`] over the kind's archive.
    fn device_points(
        &self,
        kind: &canopy::domain::kind::Kind,
        id: &DeviceId,
        field: &str,
        range: TimeRange,
    ) -> impl Future<Output = Result<Vec<Point>, HistoryError>> + Send;

    /// Stops queries nobody will read (a request past its deadline). An
    /// engine that runs nothing after its caller has gone does nothing.
    fn cancel(&self, query_ids: &[String]) -> impl Future<Output = ()> + Send {
        let _ = query_ids;
        async {}
    }
}

tokio::task_local! {
    /// The ids of the queries started by the request being served.
    static STARTED: Arc<Mutex<Vec<String>>>;
}

/// Notes that an engine started query `id` for the request being served
/// (inside [`within`]; elsewhere nobody asks).
pub fn started(id: &str) {
    let _ = STARTED.try_with(|ids| {
        ids.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(id.to_string())
    });
}

/// Runs a request's history `work` under one `deadline` (below the
/// function's timeout, so the caller gets an answer and not a gateway
/// error); `None` when the deadline came first. With it, the id of every
/// query the work started, finished or not.
pub async fn within<F: Future>(deadline: Duration, work: F) -> (Option<F::Output>, Vec<String>) {
    let ids: Arc<Mutex<Vec<String>>> = Arc::default();
    let answer = STARTED
        .scope(ids.clone(), tokio::time::timeout(deadline, work))
        .await
        .ok();
    let ids = ids.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    (answer, ids)
}

/// A signal's history: planned onto the coarsest source that keeps
/// `max_points` apart, reduced per bucket in SQL, then to `max_points` with LTTB.
pub async fn series(
    history: &dyn crate::ports::HistoryReads,
    entry: &CatalogEntry,
    vehicle: &DeviceId,
    range: TimeRange,
    max_points: usize,
) -> Result<Series, HistoryError> {
    let signal = SignalRef {
        message_name: entry.message.clone(),
        signal_name: entry.signal.clone(),
    };
    if range.is_empty() {
        return Ok(Series {
            message_name: signal.message_name,
            signal_name: signal.signal_name,
            unit: entry.unit.clone(),
            source_points: 0,
            downsampled: false,
            points: Vec::new(),
            stats: None,
        });
    }
    let reduced = history
        .reduced(vehicle, &signal, &plan::plan(range, max_points))
        .await?;
    let source_points = reduced.points.len();
    // The plan reads whole buckets; the answer keeps to the asked range.
    let inside: Vec<Point> = reduced
        .points
        .into_iter()
        .filter(|p| (range.from_us..range.to_us).contains(&p.ts_us))
        .collect();
    let points = lttb(&inside, max_points);
    let values = reduced.stats.map_or(0, |s| s.count);
    Ok(Series {
        message_name: entry.message.clone(),
        signal_name: entry.signal.clone(),
        unit: entry.unit.clone(),
        source_points,
        // Fewer points than values: the tiers, the buckets or LTTB left some out.
        downsampled: (points.len() as u64) < values,
        points,
        stats: reduced.stats,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn asked_ranges_are_cut_to_31_days_and_an_end_before_the_start_is_empty() {
        let now = t("2025-03-01T12:00:00Z");
        let r = TimeRange::parse(None, None, now).unwrap();
        assert_eq!(r.to_us - r.from_us, 24 * 3600 * 1_000_000);
        assert!(!r.is_empty());
        let backwards = TimeRange::parse(Some("2025-03-01T12:00:00Z"), Some("2025-03-01T11:00:00Z"), now).unwrap();
        assert!(backwards.is_empty());
        assert_eq!(backwards.to_us, t("2025-03-01T11:00:00Z").timestamp_micros());
        let huge = TimeRange::parse(Some("2025-01-01T00:00:00Z"), Some("2025-03-01T00:00:00Z"), now).unwrap();
        assert_eq!(
            (huge.from_us, huge.to_us),
            (
                t("2025-01-29T00:00:00Z").timestamp_micros(),
                t("2025-03-01T00:00:00Z").timestamp_micros()
            )
        );
        // The ends of the calendar do not overflow.
        let all = TimeRange::parse(Some("0001-01-01T00:00:00Z"), Some("9999-12-31T23:59:59Z"), now).unwrap();
        assert_eq!(all.to_us - all.from_us, MAX_RANGE_US);
        // The strict constructor, for ranges the code makes, still refuses both.
        assert_eq!(TimeRange::new(2, 1).unwrap_err().field, "from");
        assert_eq!(TimeRange::new(0, MAX_RANGE_US + 1).unwrap_err().field, "to");
        let bad = TimeRange::parse(Some("yesterday'; DROP TABLE x"), None, now).unwrap_err();
        assert!(bad.problem.contains("not an RFC 3339 time"), "{bad}");
    }

    #[test]
    fn a_range_names_the_dates_it_touches() {
        let r = TimeRange::parse(Some("2025-03-01T23:00:00Z"), Some("2025-03-03T00:00:00Z"), Utc::now()).unwrap();
        let (a, b) = r.dates();
        assert_eq!(
            (a.to_string(), b.to_string()),
            ("2025-03-01".into(), "2025-03-02".into())
        );
    }

    #[test]
    fn max_points_is_bounded() {
        assert_eq!(max_points(None), Ok(DEFAULT_POINTS));
        assert_eq!(max_points(Some(2000)), Ok(2000));
        assert!(max_points(Some(2)).is_err());
        assert!(max_points(Some(MAX_POINTS + 1)).is_err());
        assert_eq!(whole_number("max_points", Some(800.0)), Ok(Some(800)));
        assert!(whole_number("max_points", Some(800.5)).is_err());
        assert!(whole_number("max_points", Some(-3.0)).is_err());
    }

    #[test]
    fn the_catalog_knows_the_dbc_signals_only() {
        let db = canopy::format::dbc::built_in().unwrap();
        let catalog = Catalog::from_database(&db);
        let first = &catalog.entries()[0];
        let r = SignalRef {
            message_name: first.message.clone(),
            signal_name: first.signal.clone(),
        };
        assert_eq!(catalog.check(&r).unwrap(), first);
        let sneaky = SignalRef {
            message_name: "BMS_PackStatus' OR '1'='1".into(),
            signal_name: first.signal.clone(),
        };
        assert!(
            matches!(catalog.check(&sneaky), Err(CatalogError::Invalid(e)) if e.field == "message"),
            "not a DBC name: bad input"
        );
        let unknown = SignalRef {
            message_name: first.message.clone(),
            signal_name: "NoSuchSignal".into(),
        };
        assert!(
            matches!(catalog.check(&unknown), Err(CatalogError::Unknown(_))),
            "a name the catalog lacks"
        );
    }

    #[test]
    fn values_travel_as_parameters_not_text() {
        let v = DeviceId::new("veh-01").unwrap();
        let s = SignalRef {
            message_name: "M".into(),
            signal_name: "S".into(),
        };
        let r = TimeRange::new(0, 1_000_000).unwrap();
        let sql = plan::series_sql(&plan::plan(r, 100), &v, &s);
        assert!(!sql.text.contains("veh-01"));
        assert_eq!(sql.text.matches('?').count(), sql.params.len());
        let stats = fleet_stats_sql("telemetry", NaiveDate::from_ymd_opt(2025, 3, 1).unwrap());
        assert_eq!(stats.text.matches('?').count(), stats.params.len());
    }
}

//! How a chart's question becomes one SQL query, the same text on Athena and
//! on DataFusion: which lake table to read (the decoded values or a rollup
//! tier), the buckets the range is cut into, and per bucket its first,
//! lowest, highest and last point, so no spike is lost before LTTB; with the
//! signal's statistics over the range in the same scan.
//!
//! The SQL uses plain aggregates and window functions only (no `min_by`,
//! no engine-only functions), so a test can run the exact text Athena gets on
//! DataFusion over the objects the decoder wrote.

use canopy::domain::device_id::DeviceId;
use canopy::domain::lttb::Point;
use canopy::format::lake::compact::newest_copy_sql;
use canopy::format::lake::rollup::TIERS;
use serde::Serialize;

use super::{Param, SignalRef, Sql, TimeRange};

/// Where a query reads: every decoded value (ranges short enough that a
/// tier's bucket would be wider than a point) or a tier. The lake's own list
/// of its tables, which compaction merges too.
pub use canopy::format::lake::compact::Table as Source;

/// A query's plan: the source, the range it reads (the asked range widened
/// to whole buckets of the source), and the width of one output bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    pub source: Source,
    pub range: TimeRange,
    pub bucket_us: i64,
}

fn ceil_to(x: i64, step: i64) -> i64 {
    x.div_euclid(step) * step + if x.rem_euclid(step) == 0 { 0 } else { step }
}

/// The coarsest tier whose bucket is at most range / `max_points` (the
/// decoded values when none is), and output buckets of about that width,
/// a whole number of the source's buckets.
pub fn plan(range: TimeRange, max_points: usize) -> Plan {
    let wanted = ((range.to_us - range.from_us) / max_points.max(1) as i64).max(1);
    match TIERS.iter().rev().find(|t| t.width_us <= wanted) {
        Some(tier) => {
            let w = tier.width_us;
            let from_us = range.from_us.div_euclid(w) * w;
            let to_us = ceil_to(range.to_us, w);
            Plan {
                source: Source::Tier(*tier),
                range: TimeRange { from_us, to_us },
                bucket_us: ceil_to(wanted, w),
            }
        }
        None => Plan {
            source: Source::Decoded,
            range,
            bucket_us: wanted,
        },
    }
}

/// The rollup columns every source's rows are read as (with `n_oor`, the
/// values out of their DBC range).
const ROW_COLUMNS: &str = "ts_us, n, v_min, t_min, v_max, t_max, t_first, v_first, t_last, v_last, v_sum, v_m2, n_oor";

/// The rows of `source` as rollup rows (a decoded value is a bucket of one),
/// with the columns that say which copy of which batch they are. Objects
/// written before the out-of-range columns existed count none.
fn source_rows(source: Source) -> String {
    match source {
        Source::Decoded => "SELECT ts_us, CAST(1 AS BIGINT) AS n, value AS v_min, ts_us AS t_min, value AS v_max, \
             ts_us AS t_max, ts_us AS t_first, value AS v_first, ts_us AS t_last, value AS v_last, \
             value AS v_sum, CAST(0 AS DOUBLE) AS v_m2, \
             CASE WHEN out_of_range THEN CAST(1 AS BIGINT) ELSE CAST(0 AS BIGINT) END AS n_oor, \
             batch, written_us FROM decoded"
            .to_string(),
        Source::Tier(t) => format!(
            "SELECT ts_us, n, v_min, t_min, v_max, t_max, t_first, v_first, t_last, v_last, v_sum, v_m2, \
             coalesce(n_out_of_range, CAST(0 AS BIGINT)) AS n_oor, batch, written_us FROM {}",
            t.table
        ),
    }
}

/// The one query of a chart: per output bucket the rows holding its first,
/// lowest, highest and last point (flags say which), and on every row the
/// statistics of the whole range (count, min, max, mean, and the sum of
/// squared deviations, merged with Chan's formula: exact, not `Σx² − n·x̄²`).
pub fn series_sql(plan: &Plan, vehicle: &DeviceId, signal: &SignalRef) -> Sql {
    let (first, last) = plan.range.dates();
    let text = format!(
        "WITH t AS ({rows}), \
         b AS (SELECT (ts_us - ?) / ? AS bucket, n, v_min, t_min, v_max, t_max, t_first, v_first, t_last, v_last, \
         v_sum, v_m2, n_oor, sum(v_sum) OVER () / sum(n) OVER () AS mean_all FROM t), \
         r AS (SELECT bucket, v_min, t_min, v_max, t_max, t_first, v_first, t_last, v_last, mean_all, \
         sum(n) OVER () AS n_all, min(v_min) OVER () AS min_all, max(v_max) OVER () AS max_all, \
         sum(n_oor) OVER () AS oor_all, \
         sum(v_m2 + n * (v_sum / n - mean_all) * (v_sum / n - mean_all)) OVER () AS m2_all, \
         row_number() OVER (PARTITION BY bucket ORDER BY t_first) AS r_first, \
         row_number() OVER (PARTITION BY bucket ORDER BY t_last DESC) AS r_last, \
         row_number() OVER (PARTITION BY bucket ORDER BY v_min, t_min) AS r_min, \
         row_number() OVER (PARTITION BY bucket ORDER BY v_max DESC, t_max) AS r_max FROM b) \
         SELECT {columns} FROM r WHERE r_first = 1 OR r_last = 1 OR r_min = 1 OR r_max = 1 ORDER BY bucket, t_first",
        columns = SERIES_COLUMNS.map(|(name, _)| name).join(", "),
        // Each batch from its newest copy: compaction may have copied it.
        rows = newest_copy_sql(
            ROW_COLUMNS,
            &format!(
                "{} WHERE vehicle_id = ? AND \"date\" BETWEEN ? AND ? AND message = ? AND signal = ? \
                 AND ts_us >= ? AND ts_us < ?",
                source_rows(plan.source)
            )
        )
    );
    Sql {
        text,
        params: vec![
            Param::Str(vehicle.to_string()),
            Param::Str(first.format("%Y-%m-%d").to_string()),
            Param::Str(last.format("%Y-%m-%d").to_string()),
            Param::Str(signal.message_name.clone()),
            Param::Str(signal.signal_name.clone()),
            Param::Int(plan.range.from_us),
            Param::Int(plan.range.to_us),
            Param::Int(plan.range.from_us),
            Param::Int(plan.bucket_us),
        ],
    }
}

/// Whether a column of [`series_sql`]'s answer holds integers or doubles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Int,
    Float,
}

/// The columns of [`series_sql`]'s answer, in order: the one list the SQL,
/// the backends' readers ([`BucketRow::from_cells`]) and the tests share.
pub const SERIES_COLUMNS: [(&str, Kind); 18] = [
    ("r_first", Kind::Int),
    ("r_last", Kind::Int),
    ("r_min", Kind::Int),
    ("r_max", Kind::Int),
    ("t_first", Kind::Int),
    ("v_first", Kind::Float),
    ("t_last", Kind::Int),
    ("v_last", Kind::Float),
    ("t_min", Kind::Int),
    ("v_min", Kind::Float),
    ("t_max", Kind::Int),
    ("v_max", Kind::Float),
    ("n_all", Kind::Int),
    ("min_all", Kind::Float),
    ("max_all", Kind::Float),
    ("mean_all", Kind::Float),
    ("m2_all", Kind::Float),
    ("oor_all", Kind::Int),
];

/// One row of [`series_sql`]'s answer, as a backend read it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BucketRow {
    /// Which of this row's points are its bucket's first, last, lowest, highest.
    pub is: [bool; 4],
    pub first: Point,
    pub last: Point,
    pub min: Point,
    pub max: Point,
    /// The range's statistics (the same on every row).
    pub n_all: u64,
    pub min_all: f64,
    pub max_all: f64,
    pub mean_all: f64,
    pub m2_all: f64,
    /// Values of the range outside their DBC range.
    pub oor_all: u64,
}

impl BucketRow {
    /// A row from its cells: `int(i)` and `float(i)` read column `i` of
    /// [`SERIES_COLUMNS`] as the kind it has there.
    pub fn from_cells<E>(
        int: impl Fn(usize) -> Result<i64, E>,
        float: impl Fn(usize) -> Result<f64, E>,
    ) -> Result<Self, E> {
        let point = |t: usize| -> Result<Point, E> {
            Ok(Point {
                ts_us: int(t)?,
                value: float(t + 1)?,
            })
        };
        Ok(Self {
            is: [int(0)? == 1, int(1)? == 1, int(2)? == 1, int(3)? == 1],
            first: point(4)?,
            last: point(6)?,
            min: point(8)?,
            max: point(10)?,
            n_all: int(12)? as u64,
            min_all: float(13)?,
            max_all: float(14)?,
            mean_all: float(15)?,
            m2_all: float(16)?,
            oor_all: int(17)? as u64,
        })
    }
}

/// A signal's statistics over the range a query read: exact over every
/// value, whichever source served the chart.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Stats {
    pub count: u64,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    /// Population standard deviation (ddof = 0, numpy's default).
    pub stddev: f64,
    /// Values outside the signal's DBC `[min, max]` (stored all the same).
    pub out_of_range: u64,
    /// The range the statistics cover: the asked range widened to whole
    /// buckets of the source (`source`).
    pub from_us: i64,
    pub to_us: i64,
    /// `decoded` or a tier's table (`rollup_1s`, `rollup_10s`, `rollup_1m`, `rollup_10m`).
    #[schema(value_type = String)]
    pub source: &'static str,
}

/// What a backend answers for one signal: each bucket's first, lowest,
/// highest and last points in time order (each once), and the statistics.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Reduced {
    pub points: Vec<Point>,
    pub stats: Option<Stats>,
}

/// The answer of [`series_sql`]'s rows.
pub fn reduce(plan: &Plan, rows: &[BucketRow]) -> Reduced {
    let mut points = Vec::with_capacity(rows.len() * 2);
    for row in rows {
        for (is, p) in row.is.iter().zip([row.first, row.last, row.min, row.max]) {
            if *is {
                points.push(p);
            }
        }
    }
    points.sort_by_key(|p| p.ts_us);
    points.dedup_by(|a, b| a.ts_us == b.ts_us && a.value == b.value);
    let stats = rows.first().map(|r| Stats {
        count: r.n_all,
        min: r.min_all,
        max: r.max_all,
        mean: r.mean_all,
        stddev: (r.m2_all / r.n_all as f64).sqrt(),
        out_of_range: r.oor_all,
        from_us: plan.range.from_us,
        to_us: plan.range.to_us,
        source: plan.source.name(),
    });
    Reduced { points, stats }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_coarsest_tier_that_keeps_the_points_apart() {
        let hour = 3_600_000_000;
        let day = TimeRange::new(0, 24 * hour).unwrap();
        let p = plan(day, 2000);
        assert_eq!(p.source.name(), "rollup_10s");
        assert_eq!(
            p.bucket_us, 50_000_000,
            "43.2 s rounded up to whole buckets of the tier"
        );
        let hour_chart = plan(TimeRange::new(0, hour).unwrap(), 2000);
        assert_eq!(
            (hour_chart.source.name(), hour_chart.bucket_us),
            ("rollup_1s", 2_000_000)
        );
        let week = TimeRange::new(0, 7 * 24 * hour).unwrap();
        assert_eq!(plan(week, 2000).source.name(), "rollup_1m");
        let month = TimeRange::new(0, 31 * 24 * hour).unwrap();
        assert_eq!(plan(month, 2000).source.name(), "rollup_10m");
        let minutes = TimeRange::new(0, 10 * 60_000_000).unwrap();
        let p = plan(minutes, 2000);
        assert_eq!((p.source, p.bucket_us), (Source::Decoded, 300_000));
        // A range off the seconds is widened to whole buckets of its tier.
        let odd = TimeRange::new(11_500_000, 24 * hour - 250_000).unwrap();
        let p = plan(odd, 2000);
        assert_eq!((p.range.from_us, p.range.to_us), (10_000_000, 24 * hour));
    }

    #[test]
    fn every_value_is_a_parameter_and_the_text_is_plain_sql() {
        let v = DeviceId::new("veh-01").unwrap();
        let s = SignalRef {
            message_name: "M".into(),
            signal_name: "S".into(),
        };
        for p in [
            plan(TimeRange::new(0, 600_000_000).unwrap(), 2000),
            plan(TimeRange::new(0, 86_400_000_000).unwrap(), 2000),
        ] {
            let sql = series_sql(&p, &v, &s);
            assert_eq!(sql.text.matches('?').count(), sql.params.len());
            assert!(!sql.text.contains("veh-01"));
            for engine_only in ["min_by", "max_by", "arbitrary", "approx_", "date_trunc"] {
                assert!(!sql.text.contains(engine_only), "{engine_only}");
            }
        }
    }

    #[test]
    fn rows_become_ordered_points_each_once() {
        let p = |ts_us, value| Point { ts_us, value };
        let row = |is, first, last, min, max| BucketRow {
            is,
            first,
            last,
            min,
            max,
            n_all: 4,
            min_all: -1.0,
            max_all: 9.0,
            mean_all: 2.0,
            m2_all: 16.0,
            oor_all: 1,
        };
        let rows = [
            row([true, true, true, true], p(0, 1.0), p(90, 2.0), p(40, -1.0), p(90, 2.0)),
            row(
                [true, false, false, true],
                p(100, 3.0),
                p(100, 3.0),
                p(100, 3.0),
                p(150, 9.0),
            ),
            row(
                [false, true, true, false],
                p(120, 5.0),
                p(190, 3.5),
                p(120, 5.0),
                p(120, 5.0),
            ),
        ];
        let plan = plan(TimeRange::new(0, 200).unwrap(), 2);
        let reduced = reduce(&plan, &rows);
        let ts: Vec<i64> = reduced.points.iter().map(|p| p.ts_us).collect();
        assert_eq!(ts, [0, 40, 90, 100, 120, 150, 190]);
        let stats = reduced.stats.unwrap();
        assert_eq!((stats.count, stats.stddev, stats.out_of_range), (4, 2.0, 1));
        assert!(reduce(&plan, &[]).stats.is_none());
    }
}

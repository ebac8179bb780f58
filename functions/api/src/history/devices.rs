//! History of a field of a declared device kind (a station's charged
//! batteries over a day), from the kind's archive: one SQL for Athena and
//! DataFusion ([`device_points_sql`]); the points are reduced by LTTB and
//! their statistics computed here, so every backend answers alike.

use canopy::domain::device_id::DeviceId;
use canopy::domain::kind::{FieldType, Kind};
use canopy::domain::lttb::{Point, lttb};
use serde::Serialize;

use super::{InvalidQuery, Param, Sql, TimeRange};

/// The most points one range of one device reads: a station publishing
/// every 30 s makes 89,280 in 31 days.
pub const MAX_DEVICE_POINTS: usize = 200_000;

/// The archive table of a kind: `devices_<kind>` ('-' as '_'), a Glue
/// table in AWS, a listing over `devices/kind=<kind>/` on the local stack.
pub fn device_table(kind: &Kind) -> String {
    format!("devices_{}", kind.name.replace('-', "_"))
}

/// The field of `kind` a history may chart: a declared number or integer.
pub fn chartable<'a>(kind: &'a Kind, field: &str) -> Result<&'a canopy::domain::kind::Field, InvalidQuery> {
    match kind.field(field) {
        Some(f) if f.ty != FieldType::Numbers => Ok(f),
        _ => Err(InvalidQuery {
            field: "field".into(),
            problem: format!(
                "{:?} is not a number field of a {}; these are: {}",
                canopy::runtime::text::truncate_chars(field, 64),
                kind.name,
                chartable_fields(kind).join(", ")
            ),
        }),
    }
}

/// The fields of `kind` a history may chart, in declaration order.
pub fn chartable_fields(kind: &Kind) -> Vec<&str> {
    kind.fields
        .iter()
        .filter(|f| f.ty != FieldType::Numbers)
        .map(|f| f.name.as_str())
        .collect()
}

/// A device's values of `field` in the range, in time order. `field` is a
/// declared name (checked by [`chartable`]: lowercase letters, digits and
/// '_'), so it is written as a quoted identifier; every value is a parameter.
pub fn device_points_sql(kind: &Kind, field: &str, id: &DeviceId, range: TimeRange) -> Sql {
    let (first, last) = range.dates();
    let text = format!(
        "SELECT ts_us, CAST(\"{field}\" AS DOUBLE) AS value FROM {table} \
         WHERE \"date\" BETWEEN ? AND ? AND device_id = ? AND ts_us >= ? AND ts_us < ? AND \"{field}\" IS NOT NULL \
         ORDER BY ts_us, seq LIMIT {MAX_DEVICE_POINTS}",
        table = device_table(kind),
    );
    Sql {
        text,
        params: vec![
            Param::Str(first.format("%Y-%m-%d").to_string()),
            Param::Str(last.format("%Y-%m-%d").to_string()),
            Param::Str(id.to_string()),
            Param::Int(range.from_us),
            Param::Int(range.to_us),
        ],
    }
}

/// The columns of [`device_points_sql`]'s answer.
pub const DEVICE_POINT_COLUMNS: [&str; 2] = ["ts_us", "value"];

/// Exact statistics of a field over the points a range read.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, utoipa::ToSchema)]
pub struct FieldStats {
    pub count: u64,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    /// Population standard deviation (ddof = 0, numpy's default).
    pub stddev: f64,
}

impl FieldStats {
    /// Of `points`; `None` when there are none.
    pub fn of(points: &[Point]) -> Option<Self> {
        let n = points.len();
        if n == 0 {
            return None;
        }
        let mean = points.iter().map(|p| p.value).sum::<f64>() / n as f64;
        // Two passes: the sum of squares about the mean does not cancel.
        let variance = points.iter().map(|p| (p.value - mean).powi(2)).sum::<f64>() / n as f64;
        Some(Self {
            count: n as u64,
            min: points.iter().map(|p| p.value).fold(f64::INFINITY, f64::min),
            max: points.iter().map(|p| p.value).fold(f64::NEG_INFINITY, f64::max),
            mean,
            stddev: variance.sqrt(),
        })
    }
}

/// The answer's points: LTTB to `max_points` (the first and last kept).
pub fn reduce(points: &[Point], max_points: usize) -> Vec<Point> {
    lttb(points, max_points)
}

#[cfg(test)]
mod tests {
    use canopy::domain::kind::Kinds;

    use super::*;

    #[test]
    fn the_sql_reads_one_declared_field_with_values_as_parameters() {
        let kinds = Kinds::builtin();
        let station = kinds.get("station").unwrap();
        let id = DeviceId::new("st-01").unwrap();
        let range = TimeRange::new(1_700_000_000_000_000, 1_700_086_400_000_000).unwrap();
        let sql = device_points_sql(station, "batteries_available", &id, range);
        assert!(sql.text.contains("FROM devices_station WHERE"), "{}", sql.text);
        assert!(
            sql.text.contains("CAST(\"batteries_available\" AS DOUBLE)"),
            "{}",
            sql.text
        );
        assert!(!sql.text.contains("st-01"), "the id is a parameter");
        assert_eq!(sql.params[2], Param::Str("st-01".into()));
        assert!(
            chartable(station, "slot_temp_c").is_err(),
            "a list has no single history"
        );
        let err = chartable(station, "x\"; DROP").unwrap_err();
        assert!(err.problem.contains("batteries_available"), "{}", err.problem);
    }

    #[test]
    fn statistics_are_exact_and_population() {
        let points: Vec<Point> = [1.0, 2.0, 3.0, 4.0]
            .iter()
            .enumerate()
            .map(|(i, v)| Point {
                ts_us: i as i64,
                value: *v,
            })
            .collect();
        let s = FieldStats::of(&points).unwrap();
        assert_eq!((s.count, s.min, s.max, s.mean), (4, 1.0, 4.0, 2.5));
        assert!((s.stddev - 1.25f64.sqrt()).abs() < 1e-12);
        assert_eq!(FieldStats::of(&[]), None);
    }
}

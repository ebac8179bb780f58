//! Rollup tiers: for each (message, signal) and time bucket of a tier, the
//! aggregates a chart and its statistics need, so a day's chart reads tens of
//! thousands of rows instead of millions. The decoder writes them in the same
//! pass as the decoded object, beside it: same partitions, same stem, under
//! each tier's prefix.
//!
//! | column | type | |
//! | --- | --- | --- |
//! | `ts_us` | INT64 | the bucket's start (a multiple of the tier's width) |
//! | `message`, `signal`, `unit` | STRING (dictionary) | |
//! | `n` | INT64 | values in the bucket |
//! | `v_min`, `t_min` | DOUBLE, INT64 | the lowest value and its time (the first, on ties) |
//! | `v_max`, `t_max` | DOUBLE, INT64 | the highest value and its time (the first, on ties) |
//! | `t_first`, `v_first` | INT64, DOUBLE | the first value |
//! | `t_last`, `v_last` | INT64, DOUBLE | the last value |
//! | `v_sum` | DOUBLE | the sum |
//! | `v_m2` | DOUBLE | the sum of squared deviations from the bucket's mean |
//! | `batch`, `written_us` | STRING (dictionary), INT64 | the batch and its copy ([`compact`](super::compact)) |
//! | `n_out_of_range` | INT64, nullable | values of the bucket outside the signal's DBC `[min, max]` (null in objects written before the column) |
//!
//! `v_m2` rather than a sum of squares: each bucket's is computed in two
//! passes, and merging buckets with Chan's formula keeps the standard
//! deviation exact where `Σx² − n·mean²` would cancel away the digits of a
//! signal with a large mean and a small spread.
//!
//! Values that are NaN (possible only for IEEE float signals) are left out of
//! the tiers. Two objects may each hold part of one bucket (a batch boundary
//! inside a second): readers merge rows of the same bucket, which the
//! aggregates allow.

use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, Int64Array};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_writer::ArrowRowGroupWriterFactory;
use parquet::file::writer::SerializedFileWriter;

use super::row_group::{self, Column};
use super::run_column::{Dictionary, RunColumn};
use super::{LakeError, writer_properties};
use crate::format::dbc::ValueRange;

/// One rollup tier: its bucket width and where its objects and table live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tier {
    /// `1s`, `1m`.
    pub name: &'static str,
    /// The Glue (and DataFusion) table.
    pub table: &'static str,
    /// The key prefix of its objects, like `decoded/`.
    pub prefix: &'static str,
    pub width_us: i64,
}

/// The tiers, finest first, each ten or six times the last. A chart of a
/// range reads the coarsest whose bucket is no wider than range / points: at
/// 2,000 points, 1 s serves up to 33 min–5.5 h, 10 s up to a day and a half,
/// 1 min up to 9 days, 10 min a month (8,640 rows a day at most, 4,464 a month).
pub const TIERS: [Tier; 4] = [
    Tier {
        name: "1s",
        table: "rollup_1s",
        prefix: "rollup_1s/",
        width_us: 1_000_000,
    },
    Tier {
        name: "10s",
        table: "rollup_10s",
        prefix: "rollup_10s/",
        width_us: 10_000_000,
    },
    Tier {
        name: "1m",
        table: "rollup_1m",
        prefix: "rollup_1m/",
        width_us: 60_000_000,
    },
    Tier {
        name: "10m",
        table: "rollup_10m",
        prefix: "rollup_10m/",
        width_us: 600_000_000,
    },
];

/// The rollup schema.
pub fn rollup_schema() -> SchemaRef {
    let dict = || DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
    Arc::new(Schema::new(vec![
        Field::new("ts_us", DataType::Int64, false),
        Field::new("message", dict(), false),
        Field::new("signal", dict(), false),
        Field::new("unit", dict(), false),
        Field::new("n", DataType::Int64, false),
        Field::new("v_min", DataType::Float64, false),
        Field::new("t_min", DataType::Int64, false),
        Field::new("v_max", DataType::Float64, false),
        Field::new("t_max", DataType::Int64, false),
        Field::new("t_first", DataType::Int64, false),
        Field::new("v_first", DataType::Float64, false),
        Field::new("t_last", DataType::Int64, false),
        Field::new("v_last", DataType::Float64, false),
        Field::new("v_sum", DataType::Float64, false),
        Field::new("v_m2", DataType::Float64, false),
        Field::new(
            "batch",
            DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
            true,
        ),
        Field::new("written_us", DataType::Int64, true),
        Field::new("n_out_of_range", DataType::Int64, true),
    ]))
}

/// The aggregates of one bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Agg {
    pub n: u64,
    pub v_min: f64,
    pub t_min: i64,
    pub v_max: f64,
    pub t_max: i64,
    pub t_first: i64,
    pub v_first: f64,
    pub t_last: i64,
    pub v_last: f64,
    pub v_sum: f64,
    pub v_m2: f64,
    /// Values outside the signal's DBC range.
    pub n_out_of_range: u64,
}

impl Agg {
    pub fn of(ts_us: i64, value: f64) -> Self {
        Self {
            n: 1,
            v_min: value,
            t_min: ts_us,
            v_max: value,
            t_max: ts_us,
            t_first: ts_us,
            v_first: value,
            t_last: ts_us,
            v_last: value,
            v_sum: value,
            v_m2: 0.0,
            n_out_of_range: 0,
        }
    }

    /// Adds `other`'s values (disjoint from this one's). Ties keep the earlier
    /// time, so the result does not depend on the order of merging.
    pub fn merge(&mut self, other: &Agg) {
        let (n_a, n_b) = (self.n as f64, other.n as f64);
        let n = n_a + n_b;
        let delta = other.v_sum / n_b - self.v_sum / n_a;
        self.v_m2 += other.v_m2 + delta * delta * n_a * n_b / n;
        self.v_sum += other.v_sum;
        self.n += other.n;
        self.n_out_of_range += other.n_out_of_range;
        if (other.v_min, other.t_min) < (self.v_min, self.t_min) {
            (self.v_min, self.t_min) = (other.v_min, other.t_min);
        }
        if other.v_max > self.v_max || (other.v_max == self.v_max && other.t_max < self.t_max) {
            (self.v_max, self.t_max) = (other.v_max, other.t_max);
        }
        if other.t_first < self.t_first {
            (self.t_first, self.v_first) = (other.t_first, other.v_first);
        }
        if other.t_last >= self.t_last {
            (self.t_last, self.v_last) = (other.t_last, other.v_last);
        }
    }

    pub fn mean(&self) -> f64 {
        self.v_sum / self.n as f64
    }

    /// The population standard deviation (numpy's default, ddof = 0).
    pub fn stddev(&self) -> f64 {
        (self.v_m2 / self.n as f64).sqrt()
    }
}

/// Buckets of one tier, by start, in ascending order.
type Buckets = Vec<(i64, Agg)>;

/// Aggregates of one tier's buckets from values in time order, counting those
/// outside `range`. Each run of values in one bucket is summed in two passes
/// (its mean, then the squared deviations from it), as numpy does.
fn aggregate(width_us: i64, ts_us: &[i64], values: &[f64], range: Option<ValueRange>) -> Buckets {
    let limits = range.map_or((f64::NEG_INFINITY, f64::INFINITY), |r| r.limits());
    let mut out = Buckets::new();
    let mut i = 0;
    while i < ts_us.len() {
        let bucket = ts_us[i].div_euclid(width_us) * width_us;
        let end = bucket.saturating_add(width_us);
        let start = i;
        while i < ts_us.len() && ts_us[i] < end {
            i += 1;
        }
        let (ts, vs) = (&ts_us[start..i], &values[start..i]);
        let agg = if vs.iter().any(|v| v.is_nan()) {
            // Only IEEE float signals can hold NaN: the slow way, without them.
            let (ts, vs): (Vec<i64>, Vec<f64>) = ts.iter().zip(vs).filter(|(_, v)| !v.is_nan()).unzip();
            summarize(&ts, &vs, limits)
        } else {
            summarize(ts, vs, limits)
        };
        if let Some(agg) = agg {
            out.push((bucket, agg));
        }
    }
    out
}

/// The aggregates of one bucket's values (none NaN, in time order), `None`
/// for none; counts those outside `(lo, hi)`.
fn summarize(ts: &[i64], vs: &[f64], (lo, hi): (f64, f64)) -> Option<Agg> {
    let (&t0, &v0) = (ts.first()?, vs.first()?);
    let mut agg = Agg::of(t0, v0);
    let mut outside = u64::from(v0 < lo || v0 > hi);
    for (&t, &v) in ts[1..].iter().zip(&vs[1..]) {
        agg.v_sum += v;
        if v < agg.v_min {
            (agg.v_min, agg.t_min) = (v, t);
        }
        if v > agg.v_max {
            (agg.v_max, agg.t_max) = (v, t);
        }
        outside += u64::from(v < lo || v > hi);
    }
    agg.n = vs.len() as u64;
    (agg.t_last, agg.v_last) = (ts[ts.len() - 1], vs[vs.len() - 1]);
    let mean = agg.mean();
    agg.v_m2 = vs.iter().map(|v| (v - mean) * (v - mean)).sum();
    agg.n_out_of_range = outside;
    Some(agg)
}

/// Buckets of a finer tier (in ascending order) merged into the buckets of
/// a coarser one: the aggregates merge exactly, so a coarse tier costs a
/// tenth of a pass over the values.
fn coarsen(width_us: i64, finer: &[(i64, Agg)]) -> Buckets {
    let mut out = Buckets::new();
    for (start, agg) in finer {
        merge_into(&mut out, start.div_euclid(width_us) * width_us, agg);
    }
    out
}

/// Adds one bucket's aggregates to `buckets`, merging with the bucket of the
/// same start (the last one, when buckets arrive in order).
fn merge_into(buckets: &mut Buckets, start: i64, agg: &Agg) {
    match buckets.last_mut() {
        Some((last, a)) if *last == start => a.merge(agg),
        Some((last, _)) if *last > start => match buckets.binary_search_by_key(&start, |(s, _)| *s) {
            Ok(i) => buckets[i].1.merge(agg),
            Err(i) => buckets.insert(i, (start, *agg)),
        },
        _ => buckets.push((start, *agg)),
    }
}

/// What the writer of a decoded object accumulates for the tiers, by the
/// decoded writer's sort key, and each tier's Parquet writer. The decoded
/// writer flushes the aggregates after each sort window as one row group per
/// tier (sorted by message, signal and time, as the decoded rows), so memory
/// holds one window's buckets; the bytes written wait in each tier's buffer
/// until the caller drains them ([`DecodedWriter::rollup_sinks_mut`]).
///
/// A bucket that straddles two windows gets a row in each row group, as one
/// straddling two objects does: readers merge the rows of a bucket.
///
/// [`DecodedWriter::rollup_sinks_mut`]: super::decoded::DecodedWriter::rollup_sinks_mut
pub(crate) struct RollupBuilder {
    /// tier → sort key → the current window's buckets.
    tiers: Vec<Vec<Buckets>>,
    writers: Vec<TierWriter>,
}

/// One tier's file: the names and the batch's columns are written from their
/// runs (rows are sorted by name, and one batch is written at one time), the
/// numbers by the Arrow writer.
struct TierWriter {
    writer: SerializedFileWriter<Vec<u8>>,
    arrow_columns: ArrowRowGroupWriterFactory,
    row_groups: usize,
    rows: u64,
}

/// Fields of the rollup schema the Arrow writer encodes.
const ARROW_COLUMNS: [&str; 13] = [
    "ts_us",
    "n",
    "v_min",
    "t_min",
    "v_max",
    "t_max",
    "t_first",
    "v_first",
    "t_last",
    "v_last",
    "v_sum",
    "v_m2",
    "n_out_of_range",
];

/// Of [`ARROW_COLUMNS`], the ones with page statistics: `ts_us`, which
/// queries filter a tier on (with its partitions, `message` and `signal`,
/// run columns that write their own), and `n`, `v_min` and `v_max`, for
/// analysts' searches (`WHERE v_max > 60`). The others (the times of the
/// extremes, first and last values, sums) go without: statistics would only
/// cost the writer a min and max per page and every reader a larger footer.
const STATISTICS_COLUMNS: [&str; 4] = ["ts_us", "n", "v_min", "v_max"];

/// Of [`ARROW_COLUMNS`], the ones worth a dictionary: a bucket's count
/// repeats (a signal's rate times the width); the other numbers rarely do.
const DICTIONARY_COLUMNS: [&str; 1] = ["n"];

/// One tier's object, ready to upload: what was not drained yet.
#[derive(Debug, Clone)]
pub struct RollupFile {
    pub tier: Tier,
    pub bytes: Vec<u8>,
    pub rows: u64,
}

/// How a tier's objects are encoded (the decoder's and compaction's). Snappy
/// for the coarser tiers: a chart of a day opens dozens of their small
/// objects, and the parquet reader sets up a ZSTD context of some 100 kB for
/// every page it inflates, which cost more than the bytes it saved (`make
/// bench-api`). ZSTD for the 1 s tier: it is the largest table after the
/// decoded lake (a row per signal and second), ZSTD halves it (5.2 → 2.6 B
/// per frame, `make bench-storage`), and the charts that read it (33 min to
/// 5.5 h) open a few hour objects.
pub(crate) fn writer_properties_for_tier(tier: &Tier) -> parquet::file::properties::WriterProperties {
    let compression = if tier.width_us == TIERS[0].width_us {
        parquet::basic::Compression::ZSTD(parquet::basic::ZstdLevel::default())
    } else {
        parquet::basic::Compression::SNAPPY
    };
    let plain: Vec<&str> = (ARROW_COLUMNS.iter().copied())
        .filter(|column| !DICTIONARY_COLUMNS.contains(column))
        .collect();
    let no_statistics: Vec<&str> = (ARROW_COLUMNS.iter().copied())
        .filter(|column| !STATISTICS_COLUMNS.contains(column))
        .collect();
    writer_properties(1 << 20, &plain, &no_statistics)
        .into_builder()
        .set_compression(compression)
        // Nearly always zero: a few bytes a page, and no hashing per row.
        .set_column_encoding(
            parquet::schema::types::ColumnPath::from("n_out_of_range"),
            parquet::basic::Encoding::DELTA_BINARY_PACKED,
        )
        .build()
}

impl RollupBuilder {
    pub(crate) fn new(keys: usize, source_name: &Arc<str>) -> Result<Self, LakeError> {
        let writers = TIERS
            .iter()
            .map(|tier| {
                let properties = writer_properties_for_tier(tier);
                let arrow_columns = row_group::arrow_writers(&rollup_schema(), &ARROW_COLUMNS, &properties)?;
                let (writer, _) =
                    ArrowWriter::try_new(Vec::new(), rollup_schema(), Some(properties))?.into_serialized_writer()?;
                Ok(TierWriter {
                    writer,
                    arrow_columns,
                    row_groups: 0,
                    rows: 0,
                })
            })
            .collect::<Result<Vec<_>, parquet::errors::ParquetError>>()
            .map_err(|e| LakeError::parquet(source_name, e))?;
        Ok(Self {
            tiers: TIERS.iter().map(|_| vec![Buckets::new(); keys]).collect(),
            writers,
        })
    }

    /// Values of sort key `key`, in time order, and the range of its signal.
    pub(crate) fn add(&mut self, key: usize, range: Option<ValueRange>, ts_us: &[i64], values: &[f64]) {
        // The finest tier from the values, each coarser one from the tier below.
        let mut finer = aggregate(TIERS[0].width_us, ts_us, values, range);
        for (i, (tier, buckets)) in TIERS.iter().zip(&mut self.tiers).enumerate() {
            if i > 0 {
                finer = coarsen(tier.width_us, &finer);
            }
            for (start, agg) in &finer {
                merge_into(&mut buckets[key], *start, agg);
            }
        }
    }

    /// Writes what the window accumulated as a row group of each tier; `names`
    /// gives each sort key's (message, signal, unit) ids in the three dictionaries.
    pub(crate) fn flush(
        &mut self,
        names: &[(i32, i32, i32)],
        dictionaries: [&[String]; 3],
        copy: &super::decoded::CopyColumns,
        source_name: &Arc<str>,
    ) -> Result<(), LakeError> {
        for (buckets, tier) in self.tiers.iter_mut().zip(&mut self.writers) {
            let rows: usize = buckets.iter().map(Vec::len).sum();
            if rows == 0 {
                continue;
            }
            let mut columns = Columns::with_capacity(rows);
            for (key, buckets) in buckets.iter_mut().enumerate() {
                columns.push_key(names[key], buckets.len());
                for (start, agg) in buckets.drain(..) {
                    columns.push(start, &agg);
                }
            }
            tier.write(columns, dictionaries, copy)
                .map_err(|e| LakeError::parquet(source_name, e))?;
        }
        Ok(())
    }

    /// Each tier's bytes written and not yet drained.
    pub(crate) fn sinks_mut(&mut self) -> impl Iterator<Item = (Tier, &mut Vec<u8>)> {
        TIERS
            .iter()
            .copied()
            .zip(self.writers.iter_mut().map(|w| w.writer.inner_mut()))
    }

    /// Closes each tier's file: the bytes not drained yet, footer included.
    pub(crate) fn finish(self, source_name: &Arc<str>) -> Result<Vec<RollupFile>, LakeError> {
        TIERS
            .iter()
            .zip(self.writers)
            .map(|(tier, writer)| {
                let rows = writer.rows;
                let bytes = writer
                    .writer
                    .into_inner()
                    .map_err(|e| LakeError::parquet(source_name, e))?;
                Ok(RollupFile {
                    tier: *tier,
                    bytes,
                    rows,
                })
            })
            .collect()
    }
}

impl TierWriter {
    /// Writes `columns` as a row group.
    fn write(
        &mut self,
        columns: Columns,
        dictionaries: [&[String]; 3],
        copy: &super::decoded::CopyColumns,
    ) -> parquet::errors::Result<()> {
        let rows = columns.ts_us.len();
        let schema = rollup_schema();
        let descriptors = self.writer.schema_descr().columns().to_vec();
        let arrow_writers = self.arrow_columns.create_column_writers(self.row_groups)?;
        let int = |v: Vec<i64>| -> ArrayRef { Arc::new(Int64Array::from(v)) };
        let float = |v: Vec<f64>| -> ArrayRef { Arc::new(Float64Array::from(v)) };
        let [messages, signals, units] = &columns.names;
        let (batch, written) = (RunColumn::of(0, rows), RunColumn::of(0, rows));
        let written_us = [copy.written_us];
        let ordered = vec![
            Column::Arrow(int(columns.ts_us)),
            Column::Runs(messages, Dictionary::Utf8(dictionaries[0])),
            Column::Runs(signals, Dictionary::Utf8(dictionaries[1])),
            Column::Runs(units, Dictionary::Utf8(dictionaries[2])),
            Column::Arrow(int(columns.n)),
            Column::Arrow(float(columns.v_min)),
            Column::Arrow(int(columns.t_min)),
            Column::Arrow(float(columns.v_max)),
            Column::Arrow(int(columns.t_max)),
            Column::Arrow(int(columns.t_first)),
            Column::Arrow(float(columns.v_first)),
            Column::Arrow(int(columns.t_last)),
            Column::Arrow(float(columns.v_last)),
            Column::Arrow(float(columns.v_sum)),
            Column::Arrow(float(columns.v_m2)),
            Column::Runs(&batch, Dictionary::Utf8(&copy.batch_name)),
            Column::Runs(&written, Dictionary::Int64(&written_us)),
            Column::Arrow(int(columns.n_out_of_range)),
        ];
        let mut group = self.writer.next_row_group()?;
        row_group::write(&mut group, &schema, &descriptors, arrow_writers, rows, ordered)?;
        group.close()?;
        self.writer.flush()?;
        self.row_groups += 1;
        self.rows += rows as u64;
        Ok(())
    }
}

/// One row group of a tier: the numbers by column, the names as runs.
#[derive(Default)]
struct Columns {
    ts_us: Vec<i64>,
    /// `message`, `signal` and `unit`: a run per sort key.
    names: [RunColumn; 3],
    n: Vec<i64>,
    v_min: Vec<f64>,
    t_min: Vec<i64>,
    v_max: Vec<f64>,
    t_max: Vec<i64>,
    t_first: Vec<i64>,
    v_first: Vec<f64>,
    t_last: Vec<i64>,
    v_last: Vec<f64>,
    v_sum: Vec<f64>,
    v_m2: Vec<f64>,
    n_out_of_range: Vec<i64>,
}

impl Columns {
    fn with_capacity(rows: usize) -> Self {
        Self {
            ts_us: Vec::with_capacity(rows),
            n: Vec::with_capacity(rows),
            v_min: Vec::with_capacity(rows),
            t_min: Vec::with_capacity(rows),
            v_max: Vec::with_capacity(rows),
            t_max: Vec::with_capacity(rows),
            t_first: Vec::with_capacity(rows),
            v_first: Vec::with_capacity(rows),
            t_last: Vec::with_capacity(rows),
            v_last: Vec::with_capacity(rows),
            v_sum: Vec::with_capacity(rows),
            v_m2: Vec::with_capacity(rows),
            n_out_of_range: Vec::with_capacity(rows),
            ..Self::default()
        }
    }

    /// The next `rows` rows are of the sort key named `names`.
    fn push_key(&mut self, names: (i32, i32, i32), rows: usize) {
        for (column, id) in self.names.iter_mut().zip([names.0, names.1, names.2]) {
            column.push(id as u32, rows);
        }
    }

    fn push(&mut self, start: i64, a: &Agg) {
        self.ts_us.push(start);
        self.n.push(a.n as i64);
        self.v_min.push(a.v_min);
        self.t_min.push(a.t_min);
        self.v_max.push(a.v_max);
        self.t_max.push(a.t_max);
        self.t_first.push(a.t_first);
        self.v_first.push(a.v_first);
        self.t_last.push(a.t_last);
        self.v_last.push(a.v_last);
        self.v_sum.push(a.v_sum);
        self.v_m2.push(a.v_m2);
        self.n_out_of_range.push(a.n_out_of_range as i64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact(values: &[f64]) -> (f64, f64) {
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let var = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
        (mean, var.sqrt())
    }

    #[test]
    fn buckets_hold_first_last_extremes_and_exact_moments() {
        // A large mean and a small spread (a pack voltage's millivolt ripple):
        // where a sum of squares minus n·mean² keeps about 5 digits of 16.
        let ts: Vec<i64> = (0..5_000).map(|i| i * 1_000).collect();
        let values: Vec<f64> = ts.iter().map(|&t| 380.0 + ((t / 1000) % 17) as f64 * 1e-3).collect();
        let buckets = aggregate(1_000_000, &ts, &values, None);
        assert_eq!(buckets.len(), 5);
        let first = buckets[0].1;
        assert_eq!((first.n, first.t_first, first.t_last), (1000, 0, 999_000));
        let (mean, stddev) = exact(&values[..1000]);
        assert!((first.mean() - mean).abs() / mean < 1e-12);
        assert!(
            (first.stddev() - stddev).abs() / stddev < 1e-9,
            "{} {}",
            first.stddev(),
            stddev
        );
        assert_eq!(first.v_max, values[16]);
        assert_eq!(first.t_max, 16_000, "the first of equal maxima");

        // Merging every bucket equals one pass over every value.
        let mut all = buckets[0].1;
        for (_, a) in &buckets[1..] {
            all.merge(a);
        }
        let (mean, stddev) = exact(&values);
        assert_eq!(all.n, 5_000);
        assert!((all.stddev() - stddev).abs() / stddev < 1e-9);
        assert!((all.mean() - mean).abs() / mean < 1e-12);
        assert_eq!((all.t_first, all.t_last), (0, 4_999_000));
    }

    #[test]
    fn a_bucket_split_between_calls_merges_and_nan_is_left_out() {
        let mut split = Buckets::new();
        for (ts, values) in [
            (&[1, 2, 3][..], &[5.0, f64::NAN, -1.0][..]),
            (&[4, 70_000_000], &[9.0, 2.0]),
        ] {
            for (start, agg) in aggregate(60_000_000, ts, values, None) {
                merge_into(&mut split, start, &agg);
            }
        }
        let a = split[0].1;
        assert_eq!((a.n, a.v_min, a.t_min, a.v_max, a.t_max), (3, -1.0, 3, 9.0, 4));
        assert_eq!((a.v_first, a.v_last, a.v_sum), (5.0, 9.0, 13.0));
        assert_eq!(split[1], (60_000_000, Agg::of(70_000_000, 2.0)));
        // Negative times fall in the bucket below, as SQL's floor would put them.
        assert_eq!(aggregate(1_000_000, &[-1], &[1.0], None)[0].0, -1_000_000);
        // A bucket arriving out of order lands in its place.
        merge_into(&mut split, 30_000_000, &Agg::of(30_000_000, 1.0));
        let starts: Vec<i64> = split.iter().map(|(s, _)| *s).collect();
        assert_eq!(starts, [0, 30_000_000, 60_000_000]);
    }

    #[test]
    fn coarse_tiers_from_fine_buckets_equal_tiers_from_the_values() {
        for pair in TIERS.windows(2) {
            assert_eq!(
                pair[1].width_us % pair[0].width_us,
                0,
                "{} is not a multiple of {}",
                pair[1].name,
                pair[0].name
            );
        }
        // 50 Hz for 25 minutes, a large mean with ripple and a few NaN.
        let ts: Vec<i64> = (0..75_000).map(|i| i * 20_000 + 7).collect();
        let values: Vec<f64> = (0..75_000)
            .map(|i| {
                if i % 9_999 == 5 {
                    f64::NAN
                } else {
                    400.0 + ((i * 7919) % 101) as f64 * 1e-3
                }
            })
            .collect();
        let range = Some(ValueRange {
            min: 400.0,
            max: 400.09,
        });
        let mut finer = aggregate(TIERS[0].width_us, &ts, &values, range);
        for tier in &TIERS[1..] {
            finer = coarsen(tier.width_us, &finer);
            let direct = aggregate(tier.width_us, &ts, &values, range);
            assert_eq!(finer.len(), direct.len(), "{}", tier.name);
            assert!(
                direct.iter().any(|(_, b)| b.n_out_of_range > 0),
                "values past 400.09 are counted"
            );
            for ((s, a), (d, b)) in finer.iter().zip(&direct) {
                assert_eq!(s, d);
                assert_eq!(
                    (
                        a.n,
                        a.v_min,
                        a.t_min,
                        a.v_max,
                        a.t_max,
                        a.t_first,
                        a.v_first,
                        a.t_last,
                        a.v_last,
                        a.n_out_of_range
                    ),
                    (
                        b.n,
                        b.v_min,
                        b.t_min,
                        b.v_max,
                        b.t_max,
                        b.t_first,
                        b.v_first,
                        b.t_last,
                        b.v_last,
                        b.n_out_of_range
                    ),
                    "{} bucket {s}",
                    tier.name
                );
                assert!((a.v_sum - b.v_sum).abs() / b.v_sum < 1e-12, "{}", tier.name);
                assert!((a.stddev() - b.stddev()).abs() / b.stddev() < 1e-9, "{}", tier.name);
            }
        }
    }
}

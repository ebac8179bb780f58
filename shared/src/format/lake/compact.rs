//! Compaction: a closed vehicle-hour's (or vehicle-day's) objects of one lake
//! table merged into one object, so a day's chart opens a few dozen objects
//! instead of 1,440.
//!
//! ## The invariant: each batch is read from its newest copy only
//!
//! Every row of the decoded lake and of the tiers names the batch it came
//! from (`batch`: the raw object's stem) and when its copy was written
//! (`written_us`). The decoder writes a batch's own objects; compaction
//! writes copies of many batches in one object, with a `written_us` above
//! every copy it read. So at any moment a batch may have several copies in
//! the lake (its own object, its hour's, its day's), and readers keep, per
//! batch, the rows of the copy with the highest `written_us`
//! ([`newest_copy_sql`] says how in SQL). Then, whatever a reader lists while
//! compaction runs, it reads each value exactly once:
//!
//! - a compacted object is written whole (one PUT) before anything it
//!   copies is deleted, and what it copies is deleted only after a grace
//!   period longer than any query, so a listing holds at least one copy of
//!   every batch;
//! - two copies of a batch in one listing are told apart by `written_us`;
//! - a batch decoded again after compaction (a redelivered event, a DBC
//!   change) is newer than its compacted copy and wins until the hour is
//!   compacted again; a late batch is its own batch and is read beside the
//!   compacted hour until then.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, Int64Type};
use arrow_array::{ArrayRef, BooleanArray, Int64Array, RecordBatch, UInt32Array};
use arrow_schema::SchemaRef;
use bytes::Bytes;
use chrono::DateTime;
use parquet::arrow::ArrowWriter;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::keys::date_of;
use super::rollup::Tier;
use super::{LakeError, decoded, rollup};
use crate::domain::device_id::DeviceId;

/// Which batch a lake file's rows come from and when this copy was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchCopy {
    /// The raw object's stem (`<vehicle>_<first µs>_<seq>`).
    pub batch: Arc<str>,
    /// Microseconds since the epoch.
    pub written_us: i64,
}

impl BatchCopy {
    pub fn new(batch: &str, written_us: i64) -> Self {
        Self {
            batch: Arc::from(batch),
            written_us,
        }
    }
}

/// The SQL that keeps each batch's newest copy of the rows `rows` selects
/// (which must include `batch` and `written_us`): a window over the rows a
/// query already filtered, one scan of the table, so the choice is made
/// over one listing of the lake. Plain window SQL that Athena and DataFusion
/// both run. Rows written before the two columns existed read as one batch
/// and one copy.
pub fn newest_copy_sql(columns: &str, rows: &str) -> String {
    format!(
        "SELECT {columns} FROM (SELECT {columns}, coalesce(written_us, 0) AS copy_us, \
         max(coalesce(written_us, 0)) OVER (PARTITION BY batch) AS newest_us FROM ({rows})) AS copies \
         WHERE copy_us = newest_us"
    )
}

/// What compaction merges: an hour of a table, or a day of a tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Period {
    Hour,
    Day,
}

impl Period {
    pub fn width_us(self) -> i64 {
        match self {
            Period::Hour => 3_600_000_000,
            Period::Day => 86_400_000_000,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Period::Hour => "hour",
            Period::Day => "day",
        }
    }

    /// The start of the period holding `ts_us`.
    pub fn start_of(self, ts_us: i64) -> i64 {
        ts_us.div_euclid(self.width_us()) * self.width_us()
    }
}

/// A lake table that compaction merges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Decoded,
    Tier(Tier),
}

impl Table {
    /// The decoded lake, then every tier.
    pub fn all() -> impl Iterator<Item = Table> {
        std::iter::once(Table::Decoded).chain(rollup::TIERS.iter().copied().map(Table::Tier))
    }

    /// The Glue (and DataFusion) table: `decoded`, `rollup_1s`, …
    pub fn name(self) -> &'static str {
        match self {
            Table::Decoded => "decoded",
            Table::Tier(t) => t.table,
        }
    }

    pub fn prefix(self) -> &'static str {
        match self {
            Table::Decoded => super::keys::DECODED_PREFIX,
            Table::Tier(t) => t.prefix,
        }
    }

    /// Hours for every table; days too for the tiers from 10 s up, which a
    /// chart of days or weeks reads (a day of the 1 s tier is 86,400 rows per
    /// signal, and of the decoded lake a whole vehicle-day: too big for one
    /// object that a function rewrites).
    pub fn periods(self) -> &'static [Period] {
        match self {
            Table::Tier(t) if t.width_us >= 10_000_000 => &[Period::Hour, Period::Day],
            _ => &[Period::Hour],
        }
    }

    fn schema(self) -> SchemaRef {
        match self {
            Table::Decoded => decoded::decoded_schema(),
            Table::Tier(_) => rollup::rollup_schema(),
        }
    }
}

/// One object of a table's vehicle-date partition, by its file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LakeObject {
    /// A batch's own object: `<vehicle>_<first µs>_<seq>.parquet`.
    Batch { first_ts_us: i64 },
    /// A compacted one: `<vehicle>_<start µs>_<hour|day>_<written µs>.parquet`,
    /// or `…_<written µs>-<part>.parquet` for the parts after the first of a
    /// unit too large for one object.
    Compacted {
        period: Period,
        start_us: i64,
        written_us: i64,
        part: u32,
    },
}

impl LakeObject {
    /// What the file name of `key` says, if it is one of the lake's.
    pub fn parse(key: &str) -> Option<Self> {
        let stem = key.rsplit('/').next()?.strip_suffix(".parquet")?;
        let fields: Vec<&str> = stem.rsplitn(4, '_').collect();
        let number = |s: &str| s.parse::<i64>().ok();
        let compacted = |period, start: &str, written: &str| {
            let (written, part) = match written.split_once('-') {
                Some((written, part)) => (written, part.parse::<u32>().ok().filter(|p| *p > 0)?),
                None => (written, 0),
            };
            Some(Self::Compacted {
                period,
                start_us: number(start)?,
                written_us: number(written)?,
                part,
            })
        };
        match fields.as_slice() {
            [written, "hour", start, _] => compacted(Period::Hour, start, written),
            [written, "day", start, _] => compacted(Period::Day, start, written),
            [seq, first, ..] if seq.chars().all(|c| c.is_ascii_digit()) => Some(Self::Batch {
                first_ts_us: number(first)?,
            }),
            _ => None,
        }
    }
}

/// A vehicle's hour or day: what one compaction merges in each table.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Unit {
    pub vehicle: DeviceId,
    pub period: Period,
    pub start_us: i64,
}

impl Unit {
    /// The table's partition that holds the unit's objects. A batch belongs to
    /// the date and hour of its first frame (its key's), as its objects do.
    pub fn partition(&self, table: Table) -> String {
        format!(
            "{}vehicle_id={}/date={}/",
            table.prefix(),
            self.vehicle,
            date_of(self.start_us).format("%Y-%m-%d")
        )
    }

    pub fn end_us(&self) -> i64 {
        self.start_us + self.period.width_us()
    }

    /// Whether an object of the unit's partition is one the unit merges:
    /// batches that start in it, and compacted objects of it or of a shorter
    /// period inside it.
    pub fn covers(&self, object: &LakeObject) -> bool {
        let inside = |t: i64| t >= self.start_us && t < self.end_us();
        match *object {
            LakeObject::Batch { first_ts_us } => inside(first_ts_us),
            LakeObject::Compacted { period, start_us, .. } => period <= self.period && inside(start_us),
        }
    }

    /// The key of the unit's compacted object in `table`, written at
    /// `written_us`: its first part, or a later one.
    pub fn compacted_key(&self, table: Table, written_us: i64, part: u32) -> String {
        let part = if part == 0 { String::new() } else { format!("-{part}") };
        format!(
            "{}{}_{}_{}_{written_us}{part}.parquet",
            self.partition(table),
            self.vehicle,
            self.start_us,
            self.period.name(),
        )
    }

    /// For messages: `veh-001 hour 2026-11-27T10:00Z`.
    pub fn describe(&self) -> String {
        let start = DateTime::from_timestamp_micros(self.start_us).unwrap_or_default();
        format!(
            "{} {} {}",
            self.vehicle,
            self.period.name(),
            start.format("%Y-%m-%dT%H:%MZ")
        )
    }
}

/// What a compaction wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compacted {
    pub rows: u64,
    /// Batches it holds.
    pub batches: usize,
    /// Its copies' `written_us`: above every copy it read.
    pub written_us: i64,
}

/// The first of compaction's two passes: which copy of each batch is the
/// newest among a unit's objects (read from their `batch` and `written_us`
/// columns alone), and so when the compacted copies are written.
#[derive(Debug, Default)]
pub struct NewestCopies {
    by_batch: HashMap<String, i64>,
}

impl NewestCopies {
    /// Notes the copies in the object `name`.
    pub fn scan(&mut self, name: &str, bytes: &Bytes) -> Result<(), LakeError> {
        for batch in read(name, bytes, Some(&["batch", "written_us"]))? {
            let (batches, written) = copy_columns(name, &batch)?;
            for row in 0..batch.num_rows() {
                let entry = self.by_batch.entry(batches(row).to_string()).or_insert(i64::MIN);
                *entry = (*entry).max(written.value(row));
            }
        }
        Ok(())
    }

    /// One past the newest copy read: the compacted copies' time, newer than
    /// all they copy, the same for the same inputs.
    pub fn written_us(&self) -> i64 {
        self.by_batch.values().copied().max().unwrap_or(0).saturating_add(1)
    }

    pub fn batches(&self) -> usize {
        self.by_batch.len()
    }
}

/// The second pass: one compacted object of `table`, written to `W` one
/// input at a time, with each batch's rows from its newest copy only, all
/// marked as written at [`NewestCopies::written_us`]. The decoded rows keep
/// each input's row groups (already sorted) and go out as each input is
/// added; a tier's rows are sorted by (message, signal, time) as the decoder
/// writes them, so they are held until [`Self::finish`]. A unit too large
/// for one object is written as several (its parts), each a writer of its
/// own with the same copies: the copies of a batch are in one part or
/// another, never twice.
pub struct CompactWriter<W: Write + Send> {
    table: Table,
    written_us: i64,
    writer: ArrowWriter<W>,
    kept: Vec<RecordBatch>,
    rows: u64,
    name: Arc<str>,
}

impl<W: Write + Send> CompactWriter<W> {
    pub fn new(table: Table, newest: &NewestCopies, out: W) -> Result<Self, LakeError> {
        let name: Arc<str> = Arc::from(format!("compaction of {}", table.prefix().trim_end_matches('/')));
        let properties = match table {
            Table::Decoded => {
                decoded::writer_properties_for_decoded(decoded::DecodedWriterOptions::default().row_group_rows)
            }
            Table::Tier(tier) => rollup::writer_properties_for_tier(&tier),
        };
        let writer =
            ArrowWriter::try_new(out, table.schema(), Some(properties)).map_err(|e| LakeError::parquet(&name, e))?;
        Ok(Self {
            table,
            written_us: newest.written_us(),
            writer,
            kept: Vec::new(),
            rows: 0,
            name,
        })
    }

    /// Adds the rows of the object `source` that are its batches' newest copies.
    pub fn add(&mut self, newest: &NewestCopies, source: &str, bytes: &Bytes) -> Result<(), LakeError> {
        let schema = self.table.schema();
        for batch in read(source, bytes, None)? {
            let batch = conform(&batch, &schema).ok_or_else(|| {
                LakeError::schema(
                    &Arc::from(source),
                    "*",
                    format!("not the {} schema", self.table.prefix().trim_end_matches('/')),
                )
            })?;
            let (batches, written) = copy_columns(source, &batch)?;
            let live: BooleanArray = (0..batch.num_rows())
                .map(|row| Some(newest.by_batch.get(batches(row)) == Some(&written.value(row))))
                .collect();
            let batch = arrow_select::filter::filter_record_batch(&batch, &live)
                .and_then(|b| with_written(b, self.written_us))
                .map_err(|e| LakeError::arrow(&self.name, e))?;
            self.rows += batch.num_rows() as u64;
            match self.table {
                Table::Decoded => self
                    .writer
                    .write(&batch)
                    .map_err(|e| LakeError::parquet(&self.name, e))?,
                Table::Tier(_) => self.kept.push(batch),
            }
        }
        if self.table == Table::Decoded {
            self.writer.flush().map_err(|e| LakeError::parquet(&self.name, e))?;
        }
        Ok(())
    }

    /// What the writer wrote so far and has not been taken: for an upload
    /// that streams the object out as it grows.
    pub fn sink_mut(&mut self) -> &mut W {
        self.writer.inner_mut()
    }

    /// Writes what is held and the footer; the sink and what was written.
    pub fn finish(mut self, batches: usize) -> Result<(W, Compacted), LakeError> {
        if !self.kept.is_empty() {
            let schema = self.table.schema();
            let all = arrow_select::concat::concat_batches(&schema, &self.kept)
                .map_err(|e| LakeError::arrow(&self.name, e))?;
            let sorted = sort_by_series(&all).map_err(|e| LakeError::arrow(&self.name, e))?;
            self.writer
                .write(&sorted)
                .map_err(|e| LakeError::parquet(&self.name, e))?;
        }
        let out = self
            .writer
            .into_inner()
            .map_err(|e| LakeError::parquet(&self.name, e))?;
        Ok((
            out,
            Compacted {
                rows: self.rows,
                batches,
                written_us: self.written_us,
            },
        ))
    }
}

/// Merges lake objects of `table` (`(name, bytes)`, for messages and the
/// Parquet) into one object written to `out`: both passes of
/// [`NewestCopies`] and [`CompactWriter`] over objects held in memory.
pub fn compact<W: Write + Send>(table: Table, inputs: &[(String, Bytes)], out: W) -> Result<(W, Compacted), LakeError> {
    let mut newest = NewestCopies::default();
    for (name, bytes) in inputs {
        newest.scan(name, bytes)?;
    }
    let mut writer = CompactWriter::new(table, &newest, out)?;
    for (name, bytes) in inputs {
        writer.add(&newest, name, bytes)?;
    }
    writer.finish(newest.batches())
}

/// `batch` in `schema`: its own columns, by name, and null ones for the
/// nullable columns it lacks (an object written before they were added).
/// `None` when a column is missing that may not be null, or has another type.
fn conform(batch: &RecordBatch, schema: &SchemaRef) -> Option<RecordBatch> {
    if batch.schema().fields() == schema.fields() {
        return Some(batch.clone());
    }
    let columns = schema
        .fields()
        .iter()
        .map(|field| match batch.column_by_name(field.name()) {
            Some(column) if column.data_type() == field.data_type() => Some(column.clone()),
            None if field.is_nullable() => Some(arrow_array::new_null_array(field.data_type(), batch.num_rows())),
            _ => None,
        })
        .collect::<Option<Vec<_>>>()?;
    RecordBatch::try_new(schema.clone(), columns).ok()
}

fn read(name: &str, bytes: &Bytes, columns: Option<&[&str]>) -> Result<Vec<RecordBatch>, LakeError> {
    let source: Arc<str> = Arc::from(name);
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(bytes.clone()).map_err(|e| LakeError::parquet(&source, e))?;
    let builder = match columns {
        Some(columns) => {
            let mask = ProjectionMask::columns(builder.parquet_schema(), columns.iter().copied());
            builder.with_projection(mask)
        }
        None => builder,
    };
    let reader = builder
        .with_batch_size(131_072)
        .build()
        .map_err(|e| LakeError::parquet(&source, e))?;
    reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| LakeError::arrow(&source, e))
}

/// The `batch` (by row) and `written_us` columns of a lake batch.
fn copy_columns<'b>(
    name: &str,
    batch: &'b RecordBatch,
) -> Result<(impl Fn(usize) -> &'b str + 'b, &'b Int64Array), LakeError> {
    let source: Arc<str> = Arc::from(name);
    let missing = |column: &str| {
        LakeError::schema(
            &source,
            column,
            "missing: the object predates copy tracking; decode it again",
        )
    };
    let batches = batch
        .column_by_name("batch")
        .and_then(|c| c.as_dictionary_opt::<Int32Type>())
        .ok_or_else(|| missing("batch"))?;
    let written = batch
        .column_by_name("written_us")
        .and_then(|c| c.as_primitive_opt::<Int64Type>())
        .ok_or_else(|| missing("written_us"))?;
    let keys = batches.keys();
    let values = batches.values().as_string::<i32>();
    Ok((move |row: usize| values.value(keys.value(row) as usize), written))
}

fn with_written(batch: RecordBatch, written_us: i64) -> Result<RecordBatch, arrow_schema::ArrowError> {
    let schema = batch.schema();
    let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
    if let Ok(i) = schema.index_of("written_us") {
        columns[i] = Arc::new(Int64Array::from(vec![written_us; batch.num_rows()]));
    }
    RecordBatch::try_new(schema, columns)
}

/// Rows ordered by (message, signal, ts_us), as the decoder writes them, so
/// row-group statistics prune by signal.
fn sort_by_series(batch: &RecordBatch) -> Result<RecordBatch, arrow_schema::ArrowError> {
    let messages = strings(batch, "message")?;
    let signals = strings(batch, "signal")?;
    let ts = batch
        .column_by_name("ts_us")
        .and_then(|c| c.as_primitive_opt::<Int64Type>())
        .ok_or_else(|| arrow_schema::ArrowError::SchemaError("no INT64 ts_us column".into()))?;
    let mut order: Vec<u32> = (0..batch.num_rows() as u32).collect();
    order.sort_by(|&a, &b| {
        let (a, b) = (a as usize, b as usize);
        (messages[a], signals[a], ts.value(a)).cmp(&(messages[b], signals[b], ts.value(b)))
    });
    let indices = UInt32Array::from(order);
    let columns = batch
        .columns()
        .iter()
        .map(|c| arrow_select::take::take(c.as_ref(), &indices, None))
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new(batch.schema(), columns)
}

/// A dictionary column's value on each row.
fn strings<'b>(batch: &'b RecordBatch, name: &str) -> Result<Vec<&'b str>, arrow_schema::ArrowError> {
    let dict = batch
        .column_by_name(name)
        .and_then(|c| c.as_dictionary_opt::<Int32Type>())
        .ok_or_else(|| arrow_schema::ArrowError::SchemaError(format!("no dictionary column {name}")))?;
    let values = dict.values().as_string::<i32>();
    Ok(dict
        .keys()
        .iter()
        .map(|k| k.map_or("", |k| values.value(k as usize)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_say_batch_or_compacted() {
        let batch = "decoded/vehicle_id=veh_1/date=2025-11-27/veh_1_1764237600000000_000042.parquet";
        assert_eq!(
            LakeObject::parse(batch),
            Some(LakeObject::Batch {
                first_ts_us: 1_764_237_600_000_000
            })
        );
        let unit = Unit {
            vehicle: DeviceId::new("veh_1").unwrap(),
            period: Period::Hour,
            start_us: 1_764_237_600_000_000,
        };
        let key = unit.compacted_key(Table::Decoded, 99, 0);
        assert_eq!(
            key,
            "decoded/vehicle_id=veh_1/date=2025-11-27/veh_1_1764237600000000_hour_99.parquet"
        );
        let compacted = LakeObject::parse(&key).unwrap();
        assert_eq!(
            compacted,
            LakeObject::Compacted {
                period: Period::Hour,
                start_us: unit.start_us,
                written_us: 99,
                part: 0
            }
        );
        let second = unit.compacted_key(Table::Decoded, 99, 2);
        assert!(second.ends_with("_hour_99-2.parquet"), "{second}");
        assert_eq!(
            LakeObject::parse(&second),
            Some(LakeObject::Compacted {
                period: Period::Hour,
                start_us: unit.start_us,
                written_us: 99,
                part: 2
            })
        );
        assert_eq!(
            LakeObject::parse(&second.replace("-2.", "-0.")),
            None,
            "part 0 has no suffix"
        );
        assert!(unit.covers(&compacted));
        assert!(unit.covers(&LakeObject::parse(batch).unwrap()));
        let day = Unit {
            period: Period::Day,
            start_us: Period::Day.start_of(unit.start_us),
            ..unit.clone()
        };
        assert!(day.covers(&compacted), "a day merges its hours");
        assert!(!unit.covers(&LakeObject::parse(&day.compacted_key(Table::Decoded, 1, 0)).unwrap()));
        assert_eq!(LakeObject::parse("decoded/x/notes.txt"), None);
        assert_eq!(LakeObject::parse("decoded/x/a_b_c.parquet"), None);
    }

    /// A decoded object of `rows` values of one signal, in `schema` (the
    /// current one, or one from before a column was added).
    fn object(schema: SchemaRef, batch_name: &str, rows: usize) -> Bytes {
        use arrow_array::{ArrayRef, BooleanArray, Float64Array, Int32Array, Int64Array, StringArray};
        let dict = |v: &str| -> ArrayRef {
            Arc::new(
                arrow_array::DictionaryArray::<arrow_array::types::Int32Type>::try_new(
                    Int32Array::from(vec![0; rows]),
                    Arc::new(StringArray::from(vec![v])),
                )
                .unwrap(),
            )
        };
        let all: Vec<(&str, ArrayRef)> = vec![
            ("ts_us", Arc::new(Int64Array::from_iter_values(0..rows as i64))),
            ("message", dict("M")),
            ("signal", dict("S")),
            (
                "value",
                Arc::new(Float64Array::from_iter_values((0..rows).map(|i| i as f64))),
            ),
            ("unit", dict("V")),
            ("source_address", Arc::new(Int32Array::new_null(rows))),
            ("batch", dict(batch_name)),
            ("written_us", Arc::new(Int64Array::from(vec![1; rows]))),
            (
                "out_of_range",
                Arc::new(BooleanArray::from_iter((0..rows).map(|i| Some(i == 0)))),
            ),
        ];
        let columns = schema
            .fields()
            .iter()
            .map(|f| all.iter().find(|(n, _)| n == f.name()).unwrap().1.clone())
            .collect();
        let batch = RecordBatch::try_new(schema.clone(), columns).unwrap();
        let mut writer = ArrowWriter::try_new(Vec::new(), schema, None).unwrap();
        writer.write(&batch).unwrap();
        Bytes::from(writer.into_inner().unwrap())
    }

    #[test]
    fn objects_written_before_a_column_was_added_compact_with_it_null() {
        use arrow_array::Array;
        let current = decoded::decoded_schema();
        let older: SchemaRef = Arc::new(arrow_schema::Schema::new(
            current
                .fields()
                .iter()
                .filter(|f| f.name() != "out_of_range")
                .cloned()
                .collect::<Vec<_>>(),
        ));
        let inputs = [
            ("old".to_string(), object(older.clone(), "old", 3)),
            ("new".to_string(), object(current.clone(), "new", 2)),
        ];
        let (out, compacted) = compact(Table::Decoded, &inputs, Vec::new()).unwrap();
        assert_eq!(compacted.rows, 5);
        let batches = read("out", &Bytes::from(out), None).unwrap();
        let flags: Vec<Option<bool>> = batches
            .iter()
            .flat_map(|b| {
                let column = b.column_by_name("out_of_range").unwrap().as_boolean().clone();
                (0..column.len()).map(move |i| column.is_valid(i).then(|| column.value(i)))
            })
            .collect();
        assert_eq!(flags, [None, None, None, Some(true), Some(false)]);
        // A column of another type is not this table's.
        let mut wrong: Vec<arrow_schema::Field> = older.fields().iter().map(|f| f.as_ref().clone()).collect();
        wrong[3] = arrow_schema::Field::new("value", arrow_schema::DataType::Int64, false);
        let wrong = Arc::new(arrow_schema::Schema::new(wrong));
        assert!(conform(&RecordBatch::new_empty(wrong), &current).is_none());
    }
}

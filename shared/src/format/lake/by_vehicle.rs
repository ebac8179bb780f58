//! The telemetry archive again, by vehicle: each vehicle's samples of a UTC
//! date in one object. The archive keeps one object per batch of the
//! telemetry queue, every vehicle of the batch in it, partitioned by date
//! only, so a vehicle's month of trips would read the fleet's month; from
//! this table it reads 31 objects. The compactor writes it from the archive
//! objects written since its last run (`functions/decoder/src/telemetry_index.rs`).
//!
//! `telemetry_by_vehicle/vehicle_id=<id>/date=<YYYY-MM-DD>/<id>_<written µs>.parquet`
//!
//! | column | type |
//! | --- | --- |
//! | `ts_us`, `seq` | INT64, the archive's |
//! | `soc_pct` ... `speed_kph` | DOUBLE, the eight required measures |
//! | `batch` | STRING (dictionary): the archive object the sample is from, `date=<YYYY-MM-DD>/<name>` |
//! | `written_us` | INT64: when this copy was written |
//!
//! A date's object is written whole again whenever samples of that date
//! arrive, with a `written_us` above every copy it read, and the objects it
//! replaces are deleted after a grace period; so a reader may list two
//! objects of a date, and keeps each batch from its newest copy, the rule
//! of the decoded lake ([`super::compact`]).

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::builder::{Float64Builder, Int64Builder, StringDictionaryBuilder};
use arrow_array::types::Int32Type;
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use chrono::NaiveDate;

use super::archive::Sample;
use super::{LakeError, columns, write_object};
use crate::domain::measure::Measure;

pub const PREFIX: &str = "telemetry_by_vehicle/";

/// `telemetry_by_vehicle/vehicle_id=<id>/date=<YYYY-MM-DD>/`: what a date of a vehicle is listed by.
pub fn partition(vehicle: &str, date: NaiveDate) -> String {
    format!("{PREFIX}vehicle_id={vehicle}/date={}/", date.format("%Y-%m-%d"))
}

/// The object of a vehicle's date written at `written_us`.
pub fn key(vehicle: &str, date: NaiveDate, written_us: i64) -> String {
    format!("{}{vehicle}_{written_us}.parquet", partition(vehicle, date))
}

/// A sample as this table holds it: which archive object it came from and
/// when this copy of it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub batch: Arc<str>,
    pub written_us: i64,
    pub sample: Sample,
}

pub fn schema() -> SchemaRef {
    let mut fields = vec![
        Field::new("ts_us", DataType::Int64, false),
        Field::new("seq", DataType::Int64, false),
    ];
    fields.extend(
        Measure::REQUIRED
            .iter()
            .map(|m| Field::new(m.name(), DataType::Float64, false)),
    );
    fields.push(Field::new(
        "batch",
        DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
        false,
    ));
    fields.push(Field::new("written_us", DataType::Int64, false));
    Arc::new(Schema::new(fields))
}

/// One object of `(batch, sample)` rows, in the order given, every row a copy written at `written_us`.
pub fn write(name: &str, rows: &[(Arc<str>, Sample)], written_us: i64) -> Result<Vec<u8>, LakeError> {
    let source: Arc<str> = Arc::from(name);
    let n = rows.len();
    let mut ts = Int64Builder::with_capacity(n);
    let mut seq = Int64Builder::with_capacity(n);
    let mut measures: Vec<Float64Builder> = Measure::REQUIRED
        .iter()
        .map(|_| Float64Builder::with_capacity(n))
        .collect();
    let mut batch = StringDictionaryBuilder::<Int32Type>::new();
    for (name, sample) in rows {
        ts.append_value(sample.ts_us);
        seq.append_value(sample.seq);
        for (builder, value) in measures.iter_mut().zip(sample.values) {
            builder.append_value(value);
        }
        batch.append_value(name.as_ref());
    }
    let mut columns: Vec<ArrayRef> = vec![Arc::new(ts.finish()), Arc::new(seq.finish())];
    columns.extend(measures.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
    columns.push(Arc::new(batch.finish()));
    columns.push(Arc::new(arrow_array::Int64Array::from(vec![written_us; n])));
    write_object(&source, schema(), columns, &["ts_us", "seq"])
}

/// The rows of an object's record batches.
pub fn rows(batches: &[RecordBatch], name: &str) -> Result<Vec<Row>, LakeError> {
    let source: Arc<str> = Arc::from(name);
    let mut out = Vec::new();
    for batch in batches {
        let ts = columns::ints(batch, "ts_us", &source)?;
        let seq = columns::ints(batch, "seq", &source)?;
        let written = columns::ints(batch, "written_us", &source)?;
        let names = columns::strings(batch, "batch", &source)?;
        let measures = columns::measures(batch, &source)?;
        let mut interned: HashMap<&str, Arc<str>> = HashMap::new();
        for (row, name) in names.iter().enumerate() {
            let values = columns::measures_at(&measures, row);
            out.push(Row {
                batch: interned.entry(name).or_insert_with(|| Arc::from(*name)).clone(),
                written_us: written.value(row),
                sample: Sample {
                    ts_us: ts.value(row),
                    seq: seq.value(row),
                    values,
                },
            });
        }
    }
    Ok(out)
}

/// The rows of the object `body`.
pub fn read(body: bytes::Bytes, name: &str) -> Result<Vec<Row>, LakeError> {
    rows(&columns::batches(body, &Arc::from(name))?, name)
}

/// Each batch's rows from its newest copy only.
pub fn newest_copies(mut rows: Vec<Row>) -> Vec<Row> {
    let mut newest: HashMap<Arc<str>, i64> = HashMap::new();
    for row in &rows {
        let n = newest.entry(row.batch.clone()).or_insert(row.written_us);
        *n = (*n).max(row.written_us);
    }
    rows.retain(|row| newest.get(&row.batch) == Some(&row.written_us));
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(ts_us: i64, seq: i64, soc: f64) -> Sample {
        Sample {
            ts_us,
            seq,
            values: [soc, 400.0, 10.0, 3.9, 4.0, 20.0, 25.0, 60.0],
        }
    }

    #[test]
    fn rows_read_back_as_written() {
        let (a, b): (Arc<str>, Arc<str>) = (
            Arc::from("date=2025-11-27/batch-a"),
            Arc::from("date=2025-11-27/batch-b"),
        );
        let rows = vec![(a.clone(), sample(1, 1, 80.0)), (b.clone(), sample(2, 2, 79.5))];
        let body = write("t", &rows, 42).unwrap();
        let back = read(body.into(), "t").unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[1].batch, b);
        assert_eq!(back[1].written_us, 42);
        assert_eq!(back[1].sample, rows[1].1);
        let key = key("veh-1", NaiveDate::from_ymd_opt(2025, 11, 27).unwrap(), 42);
        assert_eq!(
            key,
            "telemetry_by_vehicle/vehicle_id=veh-1/date=2025-11-27/veh-1_42.parquet"
        );
    }

    #[test]
    fn each_batch_is_read_from_its_newest_copy() {
        let row = |batch: &str, written_us, ts_us| Row {
            batch: Arc::from(batch),
            written_us,
            sample: sample(ts_us, ts_us, 50.0),
        };
        let kept = newest_copies(vec![row("a", 1, 10), row("b", 1, 20), row("a", 2, 10), row("a", 2, 11)]);
        let got: Vec<(&str, i64, i64)> = kept
            .iter()
            .map(|r| (r.batch.as_ref(), r.written_us, r.sample.ts_us))
            .collect();
        assert_eq!(got, [("b", 1, 20), ("a", 2, 10), ("a", 2, 11)]);
    }
}

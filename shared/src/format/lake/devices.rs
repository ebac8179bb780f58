//! The device archive: every valid status message of a declared kind, one
//! Parquet object per batch and date under
//! `devices/kind=<kind>/date=<YYYY-MM-DD>/`, its columns from the kind's
//! declaration:
//!
//! | column | type |
//! | --- | --- |
//! | `device_id` | STRING (dictionary) |
//! | `ts_us` | INT64, the message's `ts` in µs |
//! | `seq` | INT64 |
//! | each declared field | INT64 (`integer`), DOUBLE (`number`), LIST<DOUBLE> (`numbers`); nullable when not required |
//! | `received_at_ms` | INT64, nullable: when IoT Core received it |

use std::sync::Arc;

use arrow_array::ArrayRef;
use arrow_array::builder::{Float64Builder, Int64Builder, ListBuilder, StringDictionaryBuilder};
use arrow_array::types::Int32Type;
use arrow_schema::{DataType, Field, Schema, SchemaRef};

use super::{LakeError, write_object};
use crate::domain::device::{DeviceRecord, FieldValue};
use crate::domain::kind::{FieldType, Kind};

pub const DEVICES_PREFIX: &str = "devices/";

/// `devices/kind=<kind>/date=<date>/<batch>.parquet`.
pub fn archive_key(kind: &str, date: chrono::NaiveDate, batch: &str) -> String {
    format!("{}/date={}/{batch}.parquet", kind_prefix(kind), date.format("%Y-%m-%d"))
}

/// Where a kind's archive lives: `devices/kind=<kind>`.
pub fn kind_prefix(kind: &str) -> String {
    format!("{DEVICES_PREFIX}kind={kind}")
}

pub fn schema(kind: &Kind) -> SchemaRef {
    let mut fields = vec![
        Field::new(
            "device_id",
            DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
            false,
        ),
        Field::new("ts_us", DataType::Int64, false),
        Field::new("seq", DataType::Int64, false),
    ];
    fields.extend(kind.fields.iter().map(|f| {
        let ty = match f.ty {
            FieldType::Integer => DataType::Int64,
            FieldType::Number => DataType::Float64,
            FieldType::Numbers => DataType::List(Arc::new(Field::new("item", DataType::Float64, true))),
        };
        Field::new(&f.name, ty, !f.required)
    }));
    fields.push(Field::new("received_at_ms", DataType::Int64, true));
    Arc::new(Schema::new(fields))
}

enum Column {
    Integer(Int64Builder),
    Number(Float64Builder),
    Numbers(ListBuilder<Float64Builder>),
}

/// One archive object of `records` (all of `kind`), as bytes.
pub fn write(kind: &Kind, records: &[&DeviceRecord], name: &str) -> Result<Vec<u8>, LakeError> {
    let source: Arc<str> = Arc::from(name);
    let n = records.len();
    let mut device = StringDictionaryBuilder::<Int32Type>::new();
    let mut ts = Int64Builder::with_capacity(n);
    let mut seq = Int64Builder::with_capacity(n);
    let mut received = Int64Builder::with_capacity(n);
    let mut columns: Vec<Column> = kind
        .fields
        .iter()
        .map(|f| match f.ty {
            FieldType::Integer => Column::Integer(Int64Builder::with_capacity(n)),
            FieldType::Number => Column::Number(Float64Builder::with_capacity(n)),
            FieldType::Numbers => Column::Numbers(ListBuilder::new(Float64Builder::new())),
        })
        .collect();
    for r in records {
        device.append_value(r.id.as_str());
        ts.append_value(r.ts_us());
        seq.append_value(i64::try_from(r.seq).unwrap_or(i64::MAX));
        received.append_option(r.received_at_ms);
        for (column, field) in columns.iter_mut().zip(&kind.fields) {
            let value = r.values.get(&field.name);
            match (column, value) {
                (Column::Integer(b), Some(FieldValue::Integer(i))) => b.append_value(*i),
                (Column::Number(b), Some(FieldValue::Number(x))) => b.append_value(*x),
                (Column::Numbers(b), Some(FieldValue::Numbers(xs))) => {
                    b.values().append_slice(xs);
                    b.append(true);
                }
                (Column::Integer(b), None) => b.append_null(),
                (Column::Number(b), None) => b.append_null(),
                (Column::Numbers(b), None) => b.append(false),
                (_, Some(_)) => {
                    return Err(LakeError::Schema {
                        source_name: name.to_string(),
                        column: field.name.clone(),
                        problem: format!("record {} seq {} does not hold a {:?}", r.stream(), r.seq, field.ty),
                    });
                }
            }
        }
    }
    let mut arrays: Vec<ArrayRef> = vec![Arc::new(device.finish()), Arc::new(ts.finish()), Arc::new(seq.finish())];
    arrays.extend(columns.iter_mut().map(|c| match c {
        Column::Integer(b) => Arc::new(b.finish()) as ArrayRef,
        Column::Number(b) => Arc::new(b.finish()) as ArrayRef,
        Column::Numbers(b) => Arc::new(b.finish()) as ArrayRef,
    }));
    arrays.push(Arc::new(received.finish()));
    let schema = schema(kind);
    write_object(&source, schema, arrays, &["ts_us", "seq"])
}

#[cfg(test)]
mod tests {
    use arrow_array::Array;
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Float64Type, Int64Type};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    use super::*;
    use crate::domain::kind::Kinds;

    #[test]
    fn an_archive_object_reads_back_with_the_declared_columns() {
        let kinds = Kinds::builtin();
        let station = kinds.get("station").unwrap();
        let mut m = crate::format::device::tests::station_message("st-002", 5);
        let a = DeviceRecord::from_json(&kinds, &m).unwrap();
        m["seq"] = 6.into();
        m.as_object_mut().unwrap().remove("received_at");
        let b = DeviceRecord::from_json(&kinds, &m).unwrap();
        let bytes = write(station, &[&a, &b], "t").unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes))
            .unwrap()
            .build()
            .unwrap();
        let batch = reader.into_iter().next().unwrap().unwrap();
        assert_eq!(batch.schema(), schema(station));
        assert_eq!(batch.num_rows(), 2);
        let seq = batch.column_by_name("seq").unwrap().as_primitive::<Int64Type>();
        assert_eq!(seq.values(), &[5, 6]);
        let temps = batch.column_by_name("slot_temp_c").unwrap().as_list::<i32>();
        let first = temps.value(0);
        assert_eq!(first.as_primitive::<Float64Type>().values(), &[25.0, 26.0, 30.5, 22.0]);
        let received = batch
            .column_by_name("received_at_ms")
            .unwrap()
            .as_primitive::<Int64Type>();
        assert!(received.is_valid(0) && received.is_null(1));
        assert_eq!(
            archive_key(
                "station",
                chrono::NaiveDate::from_ymd_opt(2026, 12, 2).unwrap(),
                "batch-1"
            ),
            "devices/kind=station/date=2026-12-02/batch-1.parquet"
        );
    }
}

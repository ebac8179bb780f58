//! Reading the lake's own small tables back column by column: a Parquet
//! object's record batches, and a column of one by name and type, with an
//! error that names the object and the column when either is wrong.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::Int32Type;
use arrow_array::{Array, Float64Array, Int64Array, RecordBatch};
use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::LakeError;
use crate::domain::measure::Measure;

/// Every record batch of the Parquet object `body`.
pub(crate) fn batches(body: Bytes, source: &Arc<str>) -> Result<Vec<RecordBatch>, LakeError> {
    ParquetRecordBatchReaderBuilder::try_new(body)
        .and_then(|b| b.build())
        .map_err(|e| LakeError::parquet(source, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| LakeError::arrow(source, e))
}

fn column<'b>(batch: &'b RecordBatch, name: &str, source: &Arc<str>) -> Result<&'b dyn Array, LakeError> {
    batch
        .column_by_name(name)
        .map(|c| c.as_ref())
        .ok_or_else(|| LakeError::schema(source, name, "column missing"))
}

fn no_nulls(column: &dyn Array, name: &str, source: &Arc<str>) -> Result<(), LakeError> {
    if column.null_count() > 0 {
        return Err(LakeError::schema(source, name, "holds nulls"));
    }
    Ok(())
}

/// A string column's value on each row, dictionary-encoded or plain.
pub(crate) fn strings<'b>(batch: &'b RecordBatch, name: &str, source: &Arc<str>) -> Result<Vec<&'b str>, LakeError> {
    let column = column(batch, name, source)?;
    no_nulls(column, name, source)?;
    if let Some(dict) = column.as_dictionary_opt::<Int32Type>() {
        let values = dict
            .values()
            .as_string_opt::<i32>()
            .ok_or_else(|| LakeError::schema(source, name, "dictionary values are not strings"))?;
        return dict
            .keys()
            .values()
            .iter()
            .map(|&k| {
                usize::try_from(k)
                    .ok()
                    .filter(|&k| k < values.len())
                    .map(|k| values.value(k))
                    .ok_or_else(|| LakeError::schema(source, name, format!("dictionary key {k} out of range")))
            })
            .collect();
    }
    let plain = column
        .as_string_opt::<i32>()
        .ok_or_else(|| LakeError::schema(source, name, format!("expected strings, found {}", column.data_type())))?;
    Ok(plain.iter().map(|s| s.unwrap_or_default()).collect())
}

/// An INT64 column without nulls.
pub(crate) fn ints<'b>(batch: &'b RecordBatch, name: &str, source: &Arc<str>) -> Result<&'b Int64Array, LakeError> {
    let column = column(batch, name, source)?;
    no_nulls(column, name, source)?;
    column
        .as_primitive_opt()
        .ok_or_else(|| LakeError::schema(source, name, format!("expected INT64, found {}", column.data_type())))
}

/// The eight required measures' DOUBLE columns, in [`Measure::REQUIRED`]'s order.
pub(crate) fn measures<'b>(batch: &'b RecordBatch, source: &Arc<str>) -> Result<Vec<&'b Float64Array>, LakeError> {
    Measure::REQUIRED
        .iter()
        .map(|m| floats(batch, m.name(), source))
        .collect()
}

/// Row `row` of [`measures`]' columns.
pub(crate) fn measures_at(columns: &[&Float64Array], row: usize) -> [f64; Measure::REQUIRED.len()] {
    std::array::from_fn(|i| columns[i].value(row))
}

/// A DOUBLE column without nulls.
pub(crate) fn floats<'b>(batch: &'b RecordBatch, name: &str, source: &Arc<str>) -> Result<&'b Float64Array, LakeError> {
    let column = column(batch, name, source)?;
    no_nulls(column, name, source)?;
    column
        .as_primitive_opt()
        .ok_or_else(|| LakeError::schema(source, name, format!("expected DOUBLE, found {}", column.data_type())))
}

//! A row group assembled column by column, each column written the cheapest
//! way its values allow: by Parquet's column writer straight from slices of
//! numbers, by the Arrow writer (nullable numbers), from runs of
//! dictionary ids (names, in rows sorted by them), or from the few rows a
//! nearly-all-false flag sets ([`run_column`](super::run_column)). The decoded
//! objects and the rollup tiers are written this way.

use std::io::Write;
use std::sync::Arc;

use arrow_array::ArrayRef;
use arrow_schema::{Field, Schema, SchemaRef};
use parquet::arrow::ArrowSchemaConverter;
use parquet::arrow::arrow_writer::{ArrowColumnWriter, ArrowRowGroupWriterFactory, compute_leaves};
use parquet::data_type::{DataType, DoubleType, Int64Type};
use parquet::errors::{ParquetError, Result};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedRowGroupWriter;
use parquet::schema::types::ColumnDescPtr;

use super::run_column::{Dictionary, RunColumn, encode_flags};

/// How one column of a row group is written.
pub(crate) enum Column<'a> {
    /// A non-null INT64 column: these slices, one after the other. Parquet's
    /// own column writer takes them as they are, where the Arrow writer would
    /// need them copied into one array and then gathers them again value by value.
    Int64(&'a [&'a [i64]]),
    /// A non-null DOUBLE column, as [`Column::Int64`].
    Double(&'a [&'a [f64]]),
    /// By the Arrow writer.
    Arrow(ArrayRef),
    /// From runs of ids into a dictionary.
    Runs(&'a RunColumn, Dictionary<'a>),
    /// A BOOLEAN column, true at these rows (ascending) and false at the others.
    Flags(&'a [usize]),
}

/// What makes the Arrow column writers of the fields of `schema` named
/// `arrow_fields`, with `properties`: a factory over a file of those fields
/// alone (the file itself is never written; its schema and properties are
/// the factory's). Only those writers are made for a row group, not one per
/// column, as each sets up its own compressor.
pub(crate) fn arrow_writers(
    schema: &Schema,
    arrow_fields: &[&str],
    properties: &WriterProperties,
) -> Result<ArrowRowGroupWriterFactory> {
    let fields: Vec<Field> = arrow_fields
        .iter()
        .map(|name| schema.field_with_name(name).cloned())
        .collect::<std::result::Result<_, _>>()?;
    let schema: SchemaRef = Arc::new(Schema::new(fields));
    let descriptor = ArrowSchemaConverter::new().convert(&schema)?;
    let file = parquet::file::writer::SerializedFileWriter::new(
        std::io::sink(),
        descriptor.root_schema_ptr(),
        Arc::new(properties.clone()),
    )?;
    Ok(ArrowRowGroupWriterFactory::new(&file, schema))
}

/// Writes `rows` rows of `columns`, one per field of the flat `schema` in its
/// order, into `group`; each [`Column::Arrow`] with the next of
/// `arrow_writers` (made by [`arrow_writers`] for those fields, in order).
pub(crate) fn write<W: Write + Send>(
    group: &mut SerializedRowGroupWriter<'_, W>,
    schema: &Schema,
    descriptors: &[ColumnDescPtr],
    arrow_writers: Vec<ArrowColumnWriter>,
    rows: usize,
    columns: Vec<Column>,
) -> Result<()> {
    if columns.len() != schema.fields().len() || descriptors.len() != columns.len() {
        return Err(ParquetError::General(format!(
            "{} columns for a schema of {} fields and {} leaves",
            columns.len(),
            schema.fields().len(),
            descriptors.len()
        )));
    }
    let mut arrow_writers = arrow_writers.into_iter();
    for ((column, descriptor), field) in columns.into_iter().zip(descriptors).zip(schema.fields()) {
        match column {
            Column::Int64(slices) => write_slices::<Int64Type, W>(group, descriptor, slices)?,
            Column::Double(slices) => write_slices::<DoubleType, W>(group, descriptor, slices)?,
            Column::Arrow(array) => {
                let mut writer = arrow_writers
                    .next()
                    .ok_or_else(|| ParquetError::General("an Arrow column writer short".into()))?;
                for leaf in compute_leaves(field, &array)? {
                    writer.write(&leaf)?;
                }
                writer.close()?.append_to_row_group(group)?;
            }
            Column::Runs(runs, dictionary) => {
                let (bytes, close) = runs.encode(descriptor.clone(), dictionary)?;
                group.append_column(&bytes, close)?;
            }
            Column::Flags(set) => {
                let (bytes, close) = encode_flags(descriptor.clone(), rows, set)?;
                group.append_column(&bytes, close)?;
            }
        }
    }
    Ok(())
}

/// Writes the next column of `group`, non-null values of type `T`, from `slices` in order.
fn write_slices<T: DataType, W: Write + Send>(
    group: &mut SerializedRowGroupWriter<'_, W>,
    descriptor: &ColumnDescPtr,
    slices: &[&[T::T]],
) -> Result<()> {
    if descriptor.physical_type() != T::get_physical_type() || descriptor.max_def_level() != 0 {
        return Err(ParquetError::General(format!(
            "column {} is not a required {} column",
            descriptor.path(),
            T::get_physical_type()
        )));
    }
    let mut column = group
        .next_column()?
        .ok_or_else(|| ParquetError::General(format!("no column {} left to write", descriptor.path())))?;
    for slice in slices {
        column.typed::<T>().write_batch(slice, None, None)?;
    }
    column.close()
}

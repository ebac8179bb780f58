//! The data lake's formats: raw CAN Parquet, decoded long-format Parquet,
//! the rollup tiers beside it, their object keys, the decoding of one into
//! the other, and the compaction of closed hours.

pub mod archive;
pub mod by_vehicle;
mod columns;
pub mod compact;
pub mod decoded;
pub mod devices;
pub mod fleet_hourly;
pub mod footer;
pub mod keys;
pub mod raw;
pub mod rollup;
mod row_group;
mod run_column;
pub mod transcode;

use std::sync::Arc;

use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

/// A lake file could not be read or written. Names the file, and the row or
/// column where that is what is wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LakeError {
    #[error("{source_name}: {error}")]
    Parquet { source_name: String, error: String },
    #[error("{source_name}: column {column}: {problem}")]
    Schema {
        source_name: String,
        column: String,
        problem: String,
    },
    #[error("{source_name}: row {row}: {problem}")]
    Row {
        source_name: String,
        row: u64,
        problem: String,
    },
    #[error("{source_name}: {error}")]
    Io { source_name: String, error: String },
}

impl LakeError {
    pub(crate) fn parquet(source: &Arc<str>, e: parquet::errors::ParquetError) -> Self {
        Self::Parquet {
            source_name: source.to_string(),
            error: e.to_string(),
        }
    }
    pub(crate) fn arrow(source: &Arc<str>, e: arrow_schema::ArrowError) -> Self {
        Self::Parquet {
            source_name: source.to_string(),
            error: e.to_string(),
        }
    }
    pub(crate) fn schema(source: &Arc<str>, column: &str, problem: impl Into<String>) -> Self {
        Self::Schema {
            source_name: source.to_string(),
            column: column.to_string(),
            problem: problem.into(),
        }
    }
}

/// One small table's object: `columns` as one record batch of `schema`, in
/// row groups of up to a million rows, `plain` columns without a dictionary
/// (what the telemetry archive and the tables copied from it write).
fn write_object(
    source: &Arc<str>,
    schema: arrow_schema::SchemaRef,
    columns: Vec<arrow_array::ArrayRef>,
    plain: &[&str],
) -> Result<Vec<u8>, LakeError> {
    let batch = arrow_array::RecordBatch::try_new(schema.clone(), columns).map_err(|e| LakeError::arrow(source, e))?;
    let mut writer =
        parquet::arrow::ArrowWriter::try_new(Vec::new(), schema, Some(writer_properties(1 << 20, plain, &[])))
            .map_err(|e| LakeError::parquet(source, e))?;
    writer.write(&batch).map_err(|e| LakeError::parquet(source, e))?;
    writer.into_inner().map_err(|e| LakeError::parquet(source, e))
}

/// ZSTD, page statistics for pruning, dictionaries for the string columns
/// only (numbers rarely repeat enough for a dictionary to pay for its
/// hashing), and delta encoding for the time column, which is sorted.
/// DELTA_BINARY_PACKED is read by Athena (Trino), DuckDB and pyarrow alike.
fn writer_properties(row_group_rows: usize, plain_columns: &[&str], no_statistics: &[&str]) -> WriterProperties {
    let mut builder = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_max_row_group_row_count(Some(row_group_rows.max(1)))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_created_by(format!("canopy {}", env!("CARGO_PKG_VERSION")))
        .set_column_encoding(ColumnPath::from("ts_us"), Encoding::DELTA_BINARY_PACKED);
    for column in plain_columns {
        builder = builder.set_column_dictionary_enabled(ColumnPath::from(*column), false);
    }
    for column in no_statistics {
        builder = builder.set_column_statistics_enabled(ColumnPath::from(*column), EnabledStatistics::None);
    }
    builder.build()
}

//! One row group being assembled from sorted buckets, and written in the
//! schema's column order: the dictionary columns as runs, `out_of_range`
//! as the rows it flags, `source_address` through the Arrow writer.

use std::io::Write;
use std::sync::Arc;

use arrow_array::{ArrayRef, Int32Array};
use parquet::arrow::arrow_writer::ArrowColumnWriter;
use parquet::file::writer::SerializedRowGroupWriter;
use parquet::schema::types::ColumnDescPtr;

use super::catalog::Catalog;
use super::{CopyColumns, decoded_schema};
use crate::format::dbc::ValueRange;
use crate::format::lake::row_group::{self, Column};
use crate::format::lake::run_column::{Dictionary, RunColumn};

/// Columns of one row group being assembled: the window's buckets are
/// borrowed, not copied, and written slice by slice.
pub(super) struct BatchBuilder<'w> {
    rows: usize,
    ts_us: Vec<&'w [i64]>,
    values: Vec<&'w [f64]>,
    /// `message`, `signal` and `unit`: one run per signal added.
    names: [RunColumn; 3],
    /// Source addresses of J1939 rows, at their row index; the other rows are null.
    sources: Vec<(usize, i32)>,
    /// Rows whose value is out of its signal's range (few or none).
    out_of_range: Vec<usize>,
}

impl<'w> BatchBuilder<'w> {
    pub(super) fn new() -> Self {
        Self {
            rows: 0,
            ts_us: Vec::new(),
            values: Vec::new(),
            names: Default::default(),
            sources: Vec::new(),
            out_of_range: Vec::new(),
        }
    }

    pub(super) fn len(&self) -> usize {
        self.rows
    }

    /// Adds rows of one signal; `sources` is empty or one address per row.
    /// How many of its values lie outside `range`.
    pub(super) fn extend(
        &mut self,
        names: (i32, i32, i32),
        range: Option<ValueRange>,
        ts_us: &'w [i64],
        values: &'w [f64],
        sources: &[u8],
    ) -> u64 {
        let first = self.rows;
        self.rows += ts_us.len();
        self.ts_us.push(ts_us);
        self.values.push(values);
        for (column, id) in self.names.iter_mut().zip([names.0, names.1, names.2]) {
            column.push(id as u32, ts_us.len());
        }
        self.sources
            .extend(sources.iter().enumerate().map(|(i, &a)| (first + i, i32::from(a))));
        let flagged = self.out_of_range.len();
        if let Some(range) = range {
            let (lo, hi) = range.limits();
            for (i, &v) in values.iter().enumerate() {
                if v < lo || v > hi {
                    self.out_of_range.push(first + i);
                }
            }
        }
        (self.out_of_range.len() - flagged) as u64
    }

    /// The `source_address` column: all null unless J1939 rows were added
    /// (most files), which costs no per-row work.
    fn source_column(&mut self) -> ArrayRef {
        let n = self.rows;
        if self.sources.is_empty() {
            return Arc::new(Int32Array::new_null(n));
        }
        let mut column: Vec<Option<i32>> = vec![None; n];
        for (row, address) in self.sources.drain(..) {
            column[row] = Some(address);
        }
        Arc::new(Int32Array::from(column))
    }

    /// Writes what was added as one row group, in the schema's column order;
    /// leaves the builder empty.
    pub(super) fn write<W: Write + Send>(
        &mut self,
        group: &mut SerializedRowGroupWriter<'_, W>,
        arrow_writers: Vec<ArrowColumnWriter>,
        descriptors: &[ColumnDescPtr],
        catalog: &Catalog,
        copy: &CopyColumns,
    ) -> parquet::errors::Result<()> {
        let n = self.rows;
        let schema = decoded_schema();
        let sources = self.source_column();
        let [messages, signals, units] = &self.names;
        let (batch, written) = (RunColumn::of(0, n), RunColumn::of(0, n));
        let columns = vec![
            Column::Int64(&self.ts_us),
            Column::Runs(messages, Dictionary::Utf8(&catalog.message_names)),
            Column::Runs(signals, Dictionary::Utf8(&catalog.signal_names)),
            Column::Double(&self.values),
            Column::Runs(units, Dictionary::Utf8(&catalog.unit_names)),
            Column::Arrow(sources),
            Column::Runs(&batch, Dictionary::Utf8(&copy.batch_name)),
            Column::Runs(&written, Dictionary::Int64(std::slice::from_ref(&copy.written_us))),
            Column::Flags(&self.out_of_range),
        ];
        row_group::write(group, &schema, descriptors, arrow_writers, n, columns)?;
        self.rows = 0;
        self.ts_us.clear();
        self.values.clear();
        self.out_of_range.clear();
        for column in &mut self.names {
            column.clear();
        }
        Ok(())
    }
}

//! The decoded lake object: long format, one row per signal value.
//!
//! | column | type |
//! | --- | --- |
//! | `ts_us` | INT64 |
//! | `message` | STRING (dictionary) |
//! | `signal` | STRING (dictionary) |
//! | `value` | DOUBLE |
//! | `unit` | STRING (dictionary) |
//! | `source_address` | INT32, nullable: the sender of a J1939 message (null for other messages) |
//! | `batch` | STRING (dictionary): the raw object's stem |
//! | `written_us` | INT64: when this copy of the batch was written ([`compact`](super::compact)) |
//!
//! Rows are sorted by (message, signal, ts_us) so that row-group statistics
//! let Athena skip what a query does not ask for. Sorting needs the rows in
//! memory, so the writer sorts a window of rows at a time (a few million,
//! some tens of MB) and writes each window as several small row groups: a
//! file that fits one window (every file the edge seals by default) is sorted
//! as a whole, and a larger one is a sequence of sorted windows, each still
//! pruned by its row-group statistics. Memory stays bounded whatever the size
//! of the input.

use std::io::Write;
use std::sync::Arc;

use arrow_array::types::Int32Type;
use arrow_array::{ArrayRef, DictionaryArray, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;

use super::compact::BatchCopy;
use super::rollup::{RollupBuilder, RollupFile};
use super::{LakeError, writer_properties};
use crate::format::dbc::{Database, SignalValue};

/// The decoded lake schema.
pub fn decoded_schema() -> SchemaRef {
    let dict = || DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
    Arc::new(Schema::new(vec![
        Field::new("ts_us", DataType::Int64, false),
        Field::new("message", dict(), false),
        Field::new("signal", dict(), false),
        Field::new("value", DataType::Float64, false),
        Field::new("unit", dict(), false),
        Field::new("source_address", DataType::Int32, true),
        Field::new("batch", dict(), true),
        Field::new("written_us", DataType::Int64, true),
    ]))
}

/// How decoded objects are encoded (the decoder's and compaction's).
pub(crate) fn writer_properties_for_decoded() -> parquet::file::properties::WriterProperties {
    writer_properties(
        DecodedWriterOptions::default().row_group_rows,
        &["ts_us", "value"],
        &["unit"],
    )
}

/// How much the decoded writer holds and how it cuts row groups.
#[derive(Clone, Copy, Debug)]
pub struct DecodedWriterOptions {
    /// Rows sorted together (24 bytes each in memory).
    pub sort_window_rows: usize,
    /// Rows per Parquet row group.
    pub row_group_rows: usize,
    /// Also aggregate the rollup tiers ([`DecodedWriter::finish_with_rollups`]).
    pub rollups: bool,
}

impl Default for DecodedWriterOptions {
    fn default() -> Self {
        Self {
            sort_window_rows: 2_000_000,
            row_group_rows: 131_072,
            rollups: false,
        }
    }
}

/// The values of one signal held for the current window, in arrival order.
#[derive(Default)]
struct Bucket {
    ts_us: Vec<i64>,
    values: Vec<f64>,
    /// Source addresses, one per value, for J1939 messages only (empty otherwise).
    sources: Vec<u8>,
}

impl Bucket {
    /// Orders by time; input in time order (what the edge writes) is left as is.
    fn sort(&mut self) {
        if self.ts_us.is_sorted() {
            return;
        }
        let mut order: Vec<u32> = (0..self.ts_us.len() as u32).collect();
        // Stable: equal timestamps keep their input order, so output is deterministic.
        order.sort_by_key(|&i| self.ts_us[i as usize]);
        self.ts_us = order.iter().map(|&i| self.ts_us[i as usize]).collect();
        self.values = order.iter().map(|&i| self.values[i as usize]).collect();
        if !self.sources.is_empty() {
            self.sources = order.iter().map(|&i| self.sources[i as usize]).collect();
        }
    }
}

/// Sort keys and dictionary entries of every signal of a database.
struct Catalog {
    /// message index → signal index → sort key.
    keys: Vec<Vec<u32>>,
    /// sort key → (message name id, signal name id, unit id).
    names: Vec<(i32, i32, i32)>,
    messages: ArrayRef,
    signals: ArrayRef,
    units: ArrayRef,
}

impl Catalog {
    fn new(db: &Database) -> Self {
        let mut entries: Vec<(&str, &str, &str, usize, usize)> = Vec::new();
        for (mi, m) in db.messages().iter().enumerate() {
            for (si, s) in m.signals.iter().enumerate() {
                entries.push((&m.name, &s.name, &s.unit, mi, si));
            }
        }
        entries.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        let intern = |values: &mut Vec<String>, v: &str| -> i32 {
            match values.iter().position(|x| x == v) {
                Some(i) => i as i32,
                None => {
                    values.push(v.to_string());
                    (values.len() - 1) as i32
                }
            }
        };
        let (mut messages, mut signals, mut units) = (Vec::new(), Vec::new(), Vec::new());
        let mut keys: Vec<Vec<u32>> = db.messages().iter().map(|m| vec![0; m.signals.len()]).collect();
        let mut names = Vec::with_capacity(entries.len());
        for (key, (message, signal, unit, mi, si)) in entries.into_iter().enumerate() {
            keys[mi][si] = key as u32;
            names.push((
                intern(&mut messages, message),
                intern(&mut signals, signal),
                intern(&mut units, unit),
            ));
        }
        let array = |v: Vec<String>| -> ArrayRef { Arc::new(StringArray::from(v)) };
        Self {
            keys,
            names,
            messages: array(messages),
            signals: array(signals),
            units: array(units),
        }
    }
}

/// What a finished decoded file holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DecodedFileStats {
    pub rows: u64,
    pub row_groups: u64,
}

/// Columns of one row group being assembled.
struct BatchBuilder {
    ts_us: Vec<i64>,
    values: Vec<f64>,
    messages: Vec<i32>,
    signals: Vec<i32>,
    units: Vec<i32>,
    /// Source addresses of J1939 rows, at their row index; the other rows are null.
    sources: Vec<(usize, i32)>,
}

impl BatchBuilder {
    fn with_capacity(n: usize) -> Self {
        Self {
            ts_us: Vec::with_capacity(n),
            values: Vec::with_capacity(n),
            messages: Vec::with_capacity(n),
            signals: Vec::with_capacity(n),
            units: Vec::with_capacity(n),
            sources: Vec::with_capacity(n),
        }
    }

    fn len(&self) -> usize {
        self.ts_us.len()
    }

    /// Adds rows of one signal; `sources` is empty or one address per row.
    fn extend(&mut self, names: (i32, i32, i32), ts_us: &[i64], values: &[f64], sources: &[u8]) {
        self.ts_us.extend_from_slice(ts_us);
        self.values.extend_from_slice(values);
        self.messages.extend(std::iter::repeat_n(names.0, ts_us.len()));
        self.signals.extend(std::iter::repeat_n(names.1, ts_us.len()));
        self.units.extend(std::iter::repeat_n(names.2, ts_us.len()));
        let first = self.ts_us.len() - ts_us.len();
        self.sources
            .extend(sources.iter().enumerate().map(|(i, &a)| (first + i, i32::from(a))));
    }

    /// The `source_address` column: all null unless J1939 rows were added
    /// (most files), which costs no per-row work.
    fn source_column(&mut self) -> ArrayRef {
        let n = self.ts_us.len();
        if self.sources.is_empty() {
            return Arc::new(Int32Array::new_null(n));
        }
        let mut column: Vec<Option<i32>> = vec![None; n];
        for (row, address) in self.sources.drain(..) {
            column[row] = Some(address);
        }
        Arc::new(Int32Array::from(column))
    }

    /// The record batch of what was added; leaves the builder empty.
    fn finish(&mut self, catalog: &Catalog, copy: &Copy) -> Result<RecordBatch, arrow_schema::ArrowError> {
        let dict = |keys: &mut Vec<i32>, values: &ArrayRef| -> Result<ArrayRef, arrow_schema::ArrowError> {
            let keys = Int32Array::from(std::mem::take(keys));
            Ok(Arc::new(DictionaryArray::<Int32Type>::try_new(keys, values.clone())?))
        };
        let sources = self.source_column();
        let [batch, written] = copy.columns(self.ts_us.len())?;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(std::mem::take(&mut self.ts_us))),
            dict(&mut self.messages, &catalog.messages)?,
            dict(&mut self.signals, &catalog.signals)?,
            Arc::new(Float64Array::from(std::mem::take(&mut self.values))),
            dict(&mut self.units, &catalog.units)?,
            sources,
            batch,
            written,
        ];
        RecordBatch::try_new(decoded_schema(), columns)
    }
}

/// Writes decoded values as a decoded lake file.
pub struct DecodedWriter<W: Write + Send> {
    writer: ArrowWriter<W>,
    catalog: Catalog,
    /// One bucket per signal, in sort-key order: rows are sorted by filling them.
    buckets: Vec<Bucket>,
    held: usize,
    options: DecodedWriterOptions,
    stats: DecodedFileStats,
    source_name: Arc<str>,
    copy: Copy,
    rollups: Option<RollupBuilder>,
}

/// The `batch` and `written_us` columns' values, as the writer repeats them.
pub(crate) struct Copy {
    pub(crate) batch: ArrayRef,
    pub(crate) written_us: i64,
}

impl Copy {
    pub(crate) fn new(copy: &BatchCopy) -> Self {
        Self {
            batch: Arc::new(StringArray::from(vec![copy.batch.as_ref()])),
            written_us: copy.written_us,
        }
    }

    /// The two columns for `n` rows.
    pub(crate) fn columns(&self, n: usize) -> Result<[ArrayRef; 2], arrow_schema::ArrowError> {
        Ok([
            Arc::new(DictionaryArray::<Int32Type>::try_new(
                Int32Array::from(vec![0; n]),
                self.batch.clone(),
            )?),
            Arc::new(Int64Array::from(vec![self.written_us; n])),
        ])
    }
}

impl<W: Write + Send> DecodedWriter<W> {
    /// A writer of the rows of `copy`'s batch; `source_name` names the output in errors.
    pub fn new(
        db: &Database,
        sink: W,
        source_name: &str,
        copy: &BatchCopy,
        options: DecodedWriterOptions,
    ) -> Result<Self, LakeError> {
        let source_name: Arc<str> = Arc::from(source_name);
        let writer = ArrowWriter::try_new(
            sink,
            decoded_schema(),
            Some(writer_properties(
                options.row_group_rows,
                &["ts_us", "value"],
                &["unit"],
            )),
        )
        .map_err(|e| LakeError::parquet(&source_name, e))?;
        let catalog = Catalog::new(db);
        let buckets = (0..catalog.names.len()).map(|_| Bucket::default()).collect();
        let rollups = match options.rollups {
            true => Some(RollupBuilder::new(catalog.names.len(), &source_name)?),
            false => None,
        };
        Ok(Self {
            writer,
            catalog,
            buckets,
            held: 0,
            options,
            stats: DecodedFileStats::default(),
            source_name,
            copy: Copy::new(copy),
            rollups,
        })
    }

    /// Adds the values of one decoded frame of message `message_index`;
    /// `source_address` is the sender of a J1939 message (`None` for others).
    pub fn push(
        &mut self,
        ts_us: i64,
        message_index: usize,
        source_address: Option<u8>,
        values: &[SignalValue],
    ) -> Result<(), LakeError> {
        let keys = &self.catalog.keys[message_index];
        for v in values {
            let bucket = &mut self.buckets[keys[usize::from(v.signal)] as usize];
            bucket.ts_us.push(ts_us);
            bucket.values.push(v.value);
            if let Some(address) = source_address {
                bucket.sources.push(address);
            }
        }
        self.held += values.len();
        if self.held >= self.options.sort_window_rows {
            self.write_window()?;
        }
        Ok(())
    }

    /// The sink, to drain bytes already written (a multipart upload does).
    pub fn sink_mut(&mut self) -> &mut W {
        self.writer.inner_mut()
    }

    /// Each rollup tier's bytes written so far and not drained: a caller that
    /// streams them out (a multipart upload) keeps memory to about one window.
    pub fn rollup_sinks_mut(&mut self) -> impl Iterator<Item = (super::rollup::Tier, &mut Vec<u8>)> {
        self.rollups.iter_mut().flat_map(RollupBuilder::sinks_mut)
    }

    /// Bytes the Parquet writer has passed to the sink so far.
    pub fn bytes_written(&self) -> usize {
        self.writer.bytes_written()
    }

    fn write_window(&mut self) -> Result<(), LakeError> {
        let group = self.options.row_group_rows.max(1);
        let mut batch = BatchBuilder::with_capacity(group.min(self.held));
        for key in 0..self.buckets.len() {
            self.buckets[key].sort();
            if let Some(rollups) = &mut self.rollups {
                rollups.add(key, &self.buckets[key].ts_us, &self.buckets[key].values);
            }
            let len = self.buckets[key].ts_us.len();
            let mut from = 0;
            while from < len {
                let take = (group - batch.len()).min(len - from);
                let bucket = &self.buckets[key];
                let sources = if bucket.sources.is_empty() {
                    &[][..]
                } else {
                    &bucket.sources[from..from + take]
                };
                batch.extend(
                    self.catalog.names[key],
                    &bucket.ts_us[from..from + take],
                    &bucket.values[from..from + take],
                    sources,
                );
                from += take;
                if batch.len() == group {
                    self.write_batch(&mut batch)?;
                }
            }
            let bucket = &mut self.buckets[key];
            bucket.ts_us.clear();
            bucket.values.clear();
            bucket.sources.clear();
        }
        if batch.len() > 0 {
            self.write_batch(&mut batch)?;
        }
        if let Some(rollups) = &mut self.rollups {
            rollups.flush(
                &self.catalog.names,
                [&self.catalog.messages, &self.catalog.signals, &self.catalog.units],
                &self.copy,
                &self.source_name,
            )?;
        }
        self.held = 0;
        Ok(())
    }

    fn write_batch(&mut self, rows: &mut BatchBuilder) -> Result<(), LakeError> {
        let n = rows.len();
        let batch = rows
            .finish(&self.catalog, &self.copy)
            .map_err(|e| LakeError::arrow(&self.source_name, e))?;
        self.writer
            .write(&batch)
            .map_err(|e| LakeError::parquet(&self.source_name, e))?;
        self.writer
            .flush()
            .map_err(|e| LakeError::parquet(&self.source_name, e))?;
        self.stats.rows += n as u64;
        self.stats.row_groups += 1;
        Ok(())
    }

    /// Sorts and writes what is held, then the footer; returns the sink.
    pub fn finish(self) -> Result<(W, DecodedFileStats), LakeError> {
        let (sink, stats, _) = self.finish_with_rollups()?;
        Ok((sink, stats))
    }

    /// As [`finish`](Self::finish), and each rollup tier's object when the
    /// options asked for them (none otherwise): the bytes not drained through
    /// [`rollup_sinks_mut`](Self::rollup_sinks_mut) yet, footer included.
    pub fn finish_with_rollups(mut self) -> Result<(W, DecodedFileStats, Vec<RollupFile>), LakeError> {
        self.write_window()?;
        let sink = self
            .writer
            .into_inner()
            .map_err(|e| LakeError::parquet(&self.source_name, e))?;
        let files = match self.rollups {
            Some(rollups) => rollups.finish(&self.source_name)?,
            None => Vec::new(),
        };
        Ok((sink, self.stats, files))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::lake::compact::BatchCopy;
    use arrow_array::Array;
    use bytes::Bytes;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::basic::Compression;

    const DBC: &str = r#"
BO_ 2 Zeta: 2 E
 SG_ B : 0|8@1+ (1,0) [0|0] "A" X
 SG_ A : 8|8@1+ (1,0) [0|0] "V" X

BO_ 1 Alpha: 1 E
 SG_ Only : 0|8@1+ (0.5,0) [0|0] "degC" X
"#;

    /// (message, signal, ts_us, value, unit)
    type DecodedRow = (String, String, i64, f64, String);

    fn rows(bytes: Vec<u8>) -> (Vec<DecodedRow>, usize, Compression) {
        let builder = ParquetRecordBatchReaderBuilder::try_new(Bytes::from(bytes)).unwrap();
        let groups = builder.metadata().num_row_groups();
        let compression = builder.metadata().row_group(0).column(0).compression();
        assert_eq!(builder.schema().as_ref(), decoded_schema().as_ref());
        let mut out = Vec::new();
        for batch in builder.build().unwrap() {
            let batch = batch.unwrap();
            let s = |i: usize| {
                let d = batch
                    .column(i)
                    .as_any()
                    .downcast_ref::<DictionaryArray<Int32Type>>()
                    .unwrap();
                let v = d.values().as_any().downcast_ref::<StringArray>().unwrap().clone();
                (0..d.len())
                    .map(move |r| v.value(d.keys().value(r) as usize).to_string())
                    .collect::<Vec<_>>()
            };
            let ts = batch.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
            let value = batch.column(3).as_any().downcast_ref::<Float64Array>().unwrap();
            let (m, sig, unit) = (s(1), s(2), s(4));
            for r in 0..batch.num_rows() {
                out.push((
                    m[r].clone(),
                    sig[r].clone(),
                    ts.value(r),
                    value.value(r),
                    unit[r].clone(),
                ));
            }
        }
        (out, groups, compression)
    }

    #[test]
    fn rows_are_sorted_by_message_signal_and_time_with_units() {
        let db = Database::from_text(DBC, "t.dbc").unwrap();
        let mut w = DecodedWriter::new(
            &db,
            Vec::new(),
            "out",
            &BatchCopy::new("b", 1),
            DecodedWriterOptions::default(),
        )
        .unwrap();
        let zeta = db.messages().iter().position(|m| m.name == "Zeta").unwrap();
        let alpha = db.messages().iter().position(|m| m.name == "Alpha").unwrap();
        let mut values = Vec::new();
        for (ts, data) in [(30, [3u8, 30]), (10, [1, 10]), (20, [2, 20])] {
            db.messages()[zeta].decode(&data, &mut values).unwrap();
            w.push(ts, zeta, None, &values).unwrap();
        }
        db.messages()[alpha].decode(&[9], &mut values).unwrap();
        w.push(15, alpha, None, &values).unwrap();
        let (bytes, stats) = w.finish().unwrap();
        assert_eq!(stats.rows, 7);
        let (rows, groups, compression) = rows(bytes);
        assert_eq!(groups, 1);
        assert!(matches!(compression, Compression::ZSTD(_)));
        let want = [
            ("Alpha", "Only", 15, 4.5, "degC"),
            ("Zeta", "A", 10, 10.0, "V"),
            ("Zeta", "A", 20, 20.0, "V"),
            ("Zeta", "A", 30, 30.0, "V"),
            ("Zeta", "B", 10, 1.0, "A"),
            ("Zeta", "B", 20, 2.0, "A"),
            ("Zeta", "B", 30, 3.0, "A"),
        ];
        let got: Vec<_> = rows
            .iter()
            .map(|(m, s, t, v, u)| (m.as_str(), s.as_str(), *t, *v, u.as_str()))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn windows_bound_memory_and_are_cut_into_row_groups() {
        let db = Database::from_text(DBC, "t.dbc").unwrap();
        let options = DecodedWriterOptions {
            sort_window_rows: 10,
            row_group_rows: 4,
            ..DecodedWriterOptions::default()
        };
        let mut w = DecodedWriter::new(&db, Vec::new(), "out", &BatchCopy::new("b", 1), options).unwrap();
        let zeta = db.messages().iter().position(|m| m.name == "Zeta").unwrap();
        let mut values = Vec::new();
        for ts in 0..10 {
            db.messages()[zeta].decode(&[ts as u8, 0], &mut values).unwrap();
            w.push(ts, zeta, None, &values).unwrap();
            assert!(w.held < 10);
        }
        let (bytes, stats) = w.finish().unwrap();
        assert_eq!(stats.rows, 20);
        let (rows, groups, _) = rows(bytes);
        assert_eq!(rows.len(), 20);
        assert_eq!(groups, 6, "two windows of 10 rows, each cut into 4 + 4 + 2");
        // Within a window: A before B, time ascending.
        let first: Vec<_> = rows[..10].iter().map(|r| (r.1.as_str(), r.2)).collect();
        assert_eq!(
            first,
            [
                ("A", 0),
                ("A", 1),
                ("A", 2),
                ("A", 3),
                ("A", 4),
                ("B", 0),
                ("B", 1),
                ("B", 2),
                ("B", 3),
                ("B", 4)
            ]
        );
    }
}

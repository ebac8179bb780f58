//! Dictionary columns written from runs of equal values, not value by value.
//!
//! The decoded lake's `message`, `signal`, `unit`, `batch` and `written_us`
//! columns hold a handful of distinct values in long runs, because rows are
//! sorted by message and signal and a batch is written at one time. The Arrow
//! writer hashes, compares and bit-packs every row of a dictionary column: a
//! third of the decoder's time (`perf` on `canopy-edge decode --rollups`).
//! [`RunColumn::encode`] writes the column chunk the Arrow writer would have
//! written — a PLAIN dictionary page, one RLE_DICTIONARY data page, chunk
//! statistics, a column index and an offset index — in time proportional to
//! the number of runs. The chunk is spliced into the row group with
//! [`SerializedRowGroupWriter::append_column`](parquet::file::writer::SerializedRowGroupWriter::append_column).
//!
//! The pages are not compressed: a chunk of a few runs is some tens of bytes.
//!
//! [`encode_flags`] does the same for a BOOLEAN column that is nearly all
//! false (`out_of_range`): its bits laid out directly.

use bytes::Bytes;
use parquet::basic::{Compression, Encoding, Type as PhysicalType};
use parquet::column::page::{CompressedPage, Page, PageWriteSpec, PageWriter};
use parquet::column::writer::ColumnCloseResult;
use parquet::data_type::ByteArray;
use parquet::errors::{ParquetError, Result};
use parquet::file::metadata::{
    ColumnChunkMetaData, ColumnChunkMetaDataBuilder, ColumnIndexBuilder, OffsetIndexBuilder,
};
use parquet::file::statistics::Statistics;
use parquet::file::writer::{SerializedPageWriter, TrackedWrite};
use parquet::schema::types::ColumnDescPtr;

/// The distinct values a run column draws from, by id.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Dictionary<'a> {
    Utf8(&'a [String]),
    Int64(&'a [i64]),
}

impl Dictionary<'_> {
    fn len(&self) -> usize {
        match self {
            Dictionary::Utf8(v) => v.len(),
            Dictionary::Int64(v) => v.len(),
        }
    }

    fn physical_type(&self) -> PhysicalType {
        match self {
            Dictionary::Utf8(_) => PhysicalType::BYTE_ARRAY,
            Dictionary::Int64(_) => PhysicalType::INT64,
        }
    }

    /// Value `id` as PLAIN encodes it in a dictionary page.
    fn put_plain(&self, id: usize, out: &mut Vec<u8>) {
        match self {
            Dictionary::Utf8(v) => {
                out.extend_from_slice(&(v[id].len() as u32).to_le_bytes());
                out.extend_from_slice(v[id].as_bytes());
            }
            Dictionary::Int64(v) => out.extend_from_slice(&v[id].to_le_bytes()),
        }
    }

    /// Value `id` as statistics encode it (PLAIN without a length).
    fn stat_bytes(&self, id: usize) -> Vec<u8> {
        match self {
            Dictionary::Utf8(v) => v[id].as_bytes().to_vec(),
            Dictionary::Int64(v) => v[id].to_le_bytes().to_vec(),
        }
    }

    /// The ids of the smallest and largest of `ids`, in Parquet's order for
    /// the type (bytewise for strings, signed for INT64).
    fn min_max(&self, ids: &[usize]) -> Option<(usize, usize)> {
        let by = |a: &&usize, b: &&usize| match self {
            Dictionary::Utf8(v) => v[**a].as_bytes().cmp(v[**b].as_bytes()),
            Dictionary::Int64(v) => v[**a].cmp(&v[**b]),
        };
        Some((*ids.iter().min_by(by)?, *ids.iter().max_by(by)?))
    }

    fn statistics(&self, min: usize, max: usize) -> Statistics {
        match self {
            Dictionary::Utf8(v) => Statistics::byte_array(
                Some(ByteArray::from(v[min].as_str())),
                Some(ByteArray::from(v[max].as_str())),
                None,
                Some(0),
                false,
            ),
            Dictionary::Int64(v) => Statistics::int64(Some(v[min]), Some(v[max]), None, Some(0), false),
        }
    }
}

/// One column of a row group as runs of dictionary ids, none of them null.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct RunColumn {
    /// (dictionary id, rows), adjacent runs of one id merged.
    runs: Vec<(u32, u32)>,
    rows: usize,
}

impl RunColumn {
    /// `rows` rows of value `id`.
    pub(crate) fn of(id: u32, rows: usize) -> Self {
        let mut column = Self::default();
        column.push(id, rows);
        column
    }

    /// Appends `rows` rows of value `id`.
    pub(crate) fn push(&mut self, id: u32, rows: usize) {
        if rows == 0 {
            return;
        }
        self.rows += rows;
        let mut rows = rows;
        if let Some(last) = self.runs.last_mut().filter(|last| last.0 == id) {
            let room = (u32::MAX - last.1) as usize;
            let add = rows.min(room);
            last.1 += add as u32;
            rows -= add;
        }
        while rows > 0 {
            let take = rows.min(u32::MAX as usize);
            self.runs.push((id, take as u32));
            rows -= take;
        }
    }

    pub(crate) fn clear(&mut self) {
        self.runs.clear();
        self.rows = 0;
    }

    /// The column chunk of these rows for column `descr`, and its metadata,
    /// with offsets relative to the returned bytes.
    pub(crate) fn encode(&self, descr: ColumnDescPtr, dictionary: Dictionary) -> Result<(Bytes, ColumnCloseResult)> {
        check_flat(&descr, dictionary.physical_type())?;
        let (local, used) = self.chunk_dictionary(&descr, dictionary)?;
        let mut dictionary_page = Vec::new();
        for &id in &used {
            dictionary.put_plain(id, &mut dictionary_page);
        }
        let data_page = self.data_page(&descr, &local, used.len());

        let mut sink = TrackedWrite::new(Vec::new());
        let (dictionary_spec, data_spec) = {
            let mut pages = SerializedPageWriter::new(&mut sink);
            let dictionary_spec = pages.write_page(uncompressed(Page::DictionaryPage {
                buf: Bytes::from(dictionary_page),
                num_values: used.len() as u32,
                encoding: Encoding::PLAIN,
                is_sorted: false,
            }))?;
            let data_spec = pages.write_page(data_page_of(data_page, self.rows, Encoding::RLE_DICTIONARY))?;
            pages.close()?;
            (dictionary_spec, data_spec)
        };
        let bytes = Bytes::from(sink.into_inner()?);

        let mut column_index = ColumnIndexBuilder::new(dictionary.physical_type());
        let mut chunk = ColumnChunkMetaData::builder(descr.clone())
            .set_encodings(vec![Encoding::PLAIN, Encoding::RLE, Encoding::RLE_DICTIONARY])
            .set_compression(Compression::UNCOMPRESSED)
            .set_num_values(self.rows as i64)
            .set_total_compressed_size(bytes.len() as i64)
            .set_total_uncompressed_size((dictionary_spec.uncompressed_size + data_spec.uncompressed_size) as i64)
            .set_dictionary_page_offset(Some(dictionary_spec.offset as i64))
            .set_data_page_offset(data_spec.offset as i64);
        match dictionary.min_max(&used) {
            Some((min, max)) => {
                column_index.append(false, dictionary.stat_bytes(min), dictionary.stat_bytes(max), 0);
                chunk = chunk.set_statistics(dictionary.statistics(min, max));
            }
            None => column_index.append(true, Vec::new(), Vec::new(), 0),
        }
        close_chunk(bytes, self.rows, chunk, column_index, &data_spec)
    }

    /// The chunk's own dictionary: the ids it uses, in order of first use
    /// (as the Arrow writer numbers them), and each id's place among them
    /// (`u32::MAX` for ids it does not use).
    fn chunk_dictionary(&self, descr: &ColumnDescPtr, dictionary: Dictionary) -> Result<(Vec<u32>, Vec<usize>)> {
        let mut local = vec![u32::MAX; dictionary.len()];
        let mut used: Vec<usize> = Vec::new();
        for &(id, _) in &self.runs {
            let slot = local.get_mut(id as usize).ok_or_else(|| {
                ParquetError::General(format!("dictionary id {id} of column {} is unknown", descr.path()))
            })?;
            if *slot == u32::MAX {
                *slot = used.len() as u32;
                used.push(id as usize);
            }
        }
        Ok((local, used))
    }

    /// The RLE_DICTIONARY data page: the definition levels where the column
    /// has them, then a run of the chunk's id per run of rows.
    fn data_page(&self, descr: &ColumnDescPtr, local: &[u32], used: usize) -> Vec<u8> {
        let mut data_page = Vec::new();
        put_all_defined(&mut data_page, descr, self.rows);
        let bit_width = bits_for(used.saturating_sub(1) as u64);
        data_page.push(bit_width);
        for &(id, rows) in &self.runs {
            put_rle_run(
                &mut data_page,
                u64::from(rows),
                u64::from(local[id as usize]),
                bit_width,
            );
        }
        data_page
    }
}

/// A BOOLEAN column of `rows` rows, true at `set` (ascending row numbers) and
/// false elsewhere, as one RLE data page (Parquet's run-length/bit-packed
/// hybrid of bit width 1, after its 4-byte length): a run per stretch of
/// clear and of set rows, in time proportional to the rows set. A column of
/// flags that are nearly always clear (`out_of_range`) costs a few bytes per
/// row group, where PLAIN bits cost one byte per 8 rows (1.4 MB of 18 MB in a
/// decoded object of 11 M values).
pub(crate) fn encode_flags(descr: ColumnDescPtr, rows: usize, set: &[usize]) -> Result<(Bytes, ColumnCloseResult)> {
    check_flat(&descr, PhysicalType::BOOLEAN)?;
    let mut data_page = Vec::with_capacity(rows / 8 + 16);
    put_all_defined(&mut data_page, &descr, rows);
    let runs = flag_runs(&descr, rows, set)?;
    data_page.extend_from_slice(&(runs.len() as u32).to_le_bytes());
    data_page.extend_from_slice(&runs);
    let mut sink = TrackedWrite::new(Vec::new());
    let data_spec = {
        let mut pages = SerializedPageWriter::new(&mut sink);
        let spec = pages.write_page(data_page_of(data_page, rows, Encoding::RLE))?;
        pages.close()?;
        spec
    };
    let bytes = Bytes::from(sink.into_inner()?);
    // The smallest value is true only when every row is; the largest, when any is.
    let (min, max) = (set.len() == rows, !set.is_empty());
    let mut column_index = ColumnIndexBuilder::new(PhysicalType::BOOLEAN);
    let mut chunk = ColumnChunkMetaData::builder(descr.clone())
        .set_encodings(vec![Encoding::RLE])
        .set_compression(Compression::UNCOMPRESSED)
        .set_num_values(rows as i64)
        .set_total_compressed_size(bytes.len() as i64)
        .set_total_uncompressed_size(data_spec.uncompressed_size as i64)
        .set_data_page_offset(data_spec.offset as i64);
    if rows > 0 {
        column_index.append(false, vec![u8::from(min)], vec![u8::from(max)], 0);
        chunk = chunk.set_statistics(Statistics::boolean(Some(min), Some(max), None, Some(0), false));
    } else {
        column_index.append(true, Vec::new(), Vec::new(), 0);
    }
    close_chunk(bytes, rows, chunk, column_index, &data_spec)
}

/// The RLE runs of `rows` flags set at `set`: a run of clear rows before each
/// stretch of set ones, that stretch, and the clear rows after the last.
fn flag_runs(descr: &ColumnDescPtr, rows: usize, set: &[usize]) -> Result<Vec<u8>> {
    let mut runs = Vec::new();
    let mut at = 0usize;
    let mut i = 0;
    while i < set.len() {
        let start = set[i];
        if start < at || start >= rows {
            return Err(ParquetError::General(format!(
                "row {start} of column {} is past its {rows} rows or out of order",
                descr.path()
            )));
        }
        let mut end = start + 1;
        while i + 1 < set.len() && set[i + 1] == end {
            end += 1;
            i += 1;
        }
        if start > at {
            put_rle_run(&mut runs, (start - at) as u64, 0, 1);
        }
        put_rle_run(&mut runs, (end - start) as u64, 1, 1);
        at = end;
        i += 1;
    }
    if rows > at {
        put_rle_run(&mut runs, (rows - at) as u64, 0, 1);
    }
    Ok(runs)
}

/// Refuses a column that is not a flat (unrepeated) column of `expected`.
fn check_flat(descr: &ColumnDescPtr, expected: PhysicalType) -> Result<()> {
    if descr.physical_type() != expected || descr.max_rep_level() != 0 {
        return Err(ParquetError::General(format!(
            "column {} is not a flat {expected:?} column",
            descr.path()
        )));
    }
    Ok(())
}

/// A nullable column's definition levels, every row defined: one RLE run of
/// level 1 (bit width 1) after its length. A required column has none.
fn put_all_defined(data_page: &mut Vec<u8>, descr: &ColumnDescPtr, rows: usize) {
    if descr.max_def_level() > 0 {
        let mut levels = Vec::new();
        put_rle_run(&mut levels, rows as u64, 1, 1);
        data_page.extend_from_slice(&(levels.len() as u32).to_le_bytes());
        data_page.extend_from_slice(&levels);
    }
}

/// An uncompressed data page of `rows` values, with no page statistics.
fn data_page_of(buf: Vec<u8>, rows: usize, encoding: Encoding) -> CompressedPage {
    uncompressed(Page::DataPage {
        buf: Bytes::from(buf),
        num_values: rows as u32,
        encoding,
        def_level_encoding: Encoding::RLE,
        rep_level_encoding: Encoding::RLE,
        statistics: None,
    })
}

/// The chunk's close result: its metadata and indexes for one data page.
fn close_chunk(
    bytes: Bytes,
    rows: usize,
    chunk: ColumnChunkMetaDataBuilder,
    column_index: ColumnIndexBuilder,
    data_spec: &PageWriteSpec,
) -> Result<(Bytes, ColumnCloseResult)> {
    let mut offset_index = OffsetIndexBuilder::new();
    offset_index.append_row_count(rows as i64);
    offset_index.append_offset_and_size(data_spec.offset as i64, data_spec.bytes_written as i32);
    let close = ColumnCloseResult {
        bytes_written: bytes.len() as u64,
        rows_written: rows as u64,
        metadata: chunk.build()?,
        bloom_filter: None,
        column_index: Some(column_index.build()?),
        offset_index: Some(offset_index.build()),
    };
    Ok((bytes, close))
}

fn uncompressed(page: Page) -> CompressedPage {
    let size = page.buffer().len();
    CompressedPage::new(page, size)
}

/// Bits needed for values up to `max`.
fn bits_for(max: u64) -> u8 {
    (u64::BITS - max.leading_zeros()) as u8
}

/// One run of the RLE/bit-packing hybrid: a ULEB128 header (`rows << 1`,
/// low bit 0 for RLE), then the value in `ceil(bit_width / 8)` bytes, little-endian.
fn put_rle_run(out: &mut Vec<u8>, rows: u64, value: u64, bit_width: u8) {
    let mut header = rows << 1;
    loop {
        let byte = (header & 0x7f) as u8;
        header >>= 7;
        if header == 0 {
            out.push(byte);
            break;
        }
        out.push(byte | 0x80);
    }
    out.extend_from_slice(&value.to_le_bytes()[..usize::from(bit_width).div_ceil(8)]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use arrow_array::types::Int32Type;
    use arrow_array::{Array, DictionaryArray, Int64Array, StringArray};
    use arrow_schema::{DataType, Field, Schema};
    use parquet::arrow::ArrowWriter;
    use parquet::arrow::arrow_reader::{ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
    use parquet::file::metadata::PageIndexPolicy;
    use parquet::file::properties::{EnabledStatistics, WriterProperties};

    #[test]
    fn flags_are_runs_that_read_back_row_for_row() {
        use arrow_array::BooleanArray;
        let schema = Arc::new(Schema::new(vec![Field::new("flag", DataType::Boolean, true)]));
        let set = [0usize, 5, 6, 7, 99_998];
        let rows = 100_000;
        let writer = ArrowWriter::try_new(Vec::new(), schema, None).unwrap();
        let (mut file, _) = writer.into_serialized_writer().unwrap();
        let descr = file.schema_descr().column(0);
        let mut group = file.next_row_group().unwrap();
        let (bytes, close) = encode_flags(descr.clone(), rows, &set).unwrap();
        assert!(bytes.len() < 100, "runs, not a bit per row: {} bytes", bytes.len());
        group.append_column(&bytes, close).unwrap();
        group.close().unwrap();
        let file = Bytes::from(file.into_inner().unwrap());
        let (mut read, mut row) = (Vec::new(), 0);
        for batch in ParquetRecordBatchReaderBuilder::try_new(file).unwrap().build().unwrap() {
            let batch = batch.unwrap();
            let flags = batch.column(0).as_any().downcast_ref::<BooleanArray>().unwrap();
            assert_eq!(flags.null_count(), 0);
            read.extend((0..flags.len()).filter(|&i| flags.value(i)).map(|i| row + i));
            row += flags.len();
        }
        assert_eq!((row, read.as_slice()), (rows, set.as_slice()));
        assert!(encode_flags(descr.clone(), rows, &[7, 5]).is_err(), "out of order");
        assert!(encode_flags(descr, rows, &[rows]).is_err(), "past the rows");
    }

    fn schema() -> Arc<Schema> {
        let dict = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
        Arc::new(Schema::new(vec![
            Field::new("name", dict, false),
            Field::new("copy", DataType::Int64, true),
        ]))
    }

    /// (dictionary id, rows) of one column of a row group.
    type Runs = Vec<(u32, usize)>;

    /// A file of row groups (each the runs of its two columns) written from
    /// runs, spliced into row groups of an Arrow writer's file.
    fn write_from_runs(groups: &[(Runs, Runs)], names: &[String], copies: &[i64]) -> Bytes {
        let properties = WriterProperties::builder()
            .set_statistics_enabled(EnabledStatistics::Page)
            .build();
        let writer = ArrowWriter::try_new(Vec::new(), schema(), Some(properties)).unwrap();
        let (mut file, _) = writer.into_serialized_writer().unwrap();
        for (name_runs, copy_runs) in groups {
            let columns: Vec<_> = file.schema_descr().columns().to_vec();
            let mut group = file.next_row_group().unwrap();
            for (descr, (runs, dictionary)) in columns.into_iter().zip([
                (name_runs, Dictionary::Utf8(names)),
                (copy_runs, Dictionary::Int64(copies)),
            ]) {
                let mut column = RunColumn::default();
                for &(id, rows) in runs {
                    column.push(id, rows);
                }
                let (bytes, close) = column.encode(descr, dictionary).unwrap();
                group.append_column(&bytes, close).unwrap();
            }
            group.close().unwrap();
        }
        Bytes::from(file.into_inner().unwrap())
    }

    fn read(bytes: Bytes) -> (Vec<String>, Vec<i64>, parquet::file::metadata::ParquetMetaData) {
        let options = ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Required);
        let builder = ParquetRecordBatchReaderBuilder::try_new_with_options(bytes, options).unwrap();
        let metadata = builder.metadata().as_ref().clone();
        assert_eq!(builder.schema().as_ref(), schema().as_ref());
        let (mut names, mut copies) = (Vec::new(), Vec::new());
        for batch in builder.build().unwrap() {
            let batch = batch.unwrap();
            let d = batch
                .column(0)
                .as_any()
                .downcast_ref::<DictionaryArray<Int32Type>>()
                .unwrap();
            let values = d.values().as_any().downcast_ref::<StringArray>().unwrap();
            names.extend((0..d.len()).map(|i| values.value(d.keys().value(i) as usize).to_string()));
            let c = batch.column(1).as_any().downcast_ref::<Int64Array>().unwrap();
            assert_eq!(c.null_count(), 0);
            copies.extend(c.values().iter().copied());
        }
        (names, copies, metadata)
    }

    #[test]
    fn reads_back_as_the_arrow_writer_writes_it_with_statistics_and_page_index() {
        let names: Vec<String> = ["signal_b", "a", "zz", "unused"].map(String::from).to_vec();
        let copies = vec![7, -3];
        let groups = vec![
            (vec![(0, 3), (0, 2), (2, 1), (1, 200_000)], vec![(0, 200_006)]),
            (vec![(2, 4)], vec![(1, 1), (0, 3)]),
        ];
        let (got_names, got_copies, metadata) = read(write_from_runs(&groups, &names, &copies));

        // The same rows through the Arrow writer, value by value.
        let mut want_names = Vec::new();
        let mut want_copies = Vec::new();
        for (name_runs, copy_runs) in &groups {
            for &(id, rows) in name_runs {
                want_names.extend(std::iter::repeat_n(names[id as usize].clone(), rows));
            }
            for &(id, rows) in copy_runs {
                want_copies.extend(std::iter::repeat_n(copies[id as usize], rows));
            }
        }
        assert_eq!(got_names, want_names);
        assert_eq!(got_copies, want_copies);

        let first = metadata.row_group(0);
        assert_eq!(first.num_rows(), 200_006);
        let stats = first.column(0).statistics().unwrap();
        assert_eq!(stats.min_bytes_opt().unwrap(), b"a");
        assert_eq!(stats.max_bytes_opt().unwrap(), b"zz");
        assert_eq!(stats.null_count_opt(), Some(0));
        let second = metadata.row_group(1).column(1).statistics().unwrap();
        assert_eq!(second.min_bytes_opt().unwrap(), (-3i64).to_le_bytes());
        assert_eq!(second.max_bytes_opt().unwrap(), 7i64.to_le_bytes());
        let offsets = metadata.offset_index().unwrap();
        assert_eq!(offsets[1][0].page_locations()[0].first_row_index, 0);
        assert!(metadata.column_index().is_some());
    }

    #[test]
    fn row_group_pruning_reads_only_the_matching_group() {
        let names: Vec<String> = ["alpha", "beta"].map(String::from).to_vec();
        let groups = vec![(vec![(0, 10)], vec![(0, 10)]), (vec![(1, 5)], vec![(0, 5)])];
        let bytes = write_from_runs(&groups, &names, &[1]);
        let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).unwrap();
        let keep: Vec<usize> = builder
            .metadata()
            .row_groups()
            .iter()
            .enumerate()
            .filter(|(_, g)| {
                let s = g.column(0).statistics().unwrap();
                s.min_bytes_opt().unwrap() <= b"beta".as_slice() && s.max_bytes_opt().unwrap() >= b"beta".as_slice()
            })
            .map(|(i, _)| i)
            .collect();
        assert_eq!(keep, [1]);
    }

    #[test]
    fn an_unknown_id_or_a_mismatched_column_is_an_error_not_a_panic() {
        let names: Vec<String> = vec!["a".into()];
        let writer = ArrowWriter::try_new(Vec::new(), schema(), None).unwrap();
        let (file, _) = writer.into_serialized_writer().unwrap();
        let columns = file.schema_descr().columns().to_vec();
        let mut column = RunColumn::default();
        column.push(5, 1);
        assert!(column.encode(columns[0].clone(), Dictionary::Utf8(&names)).is_err());
        assert!(column.encode(columns[1].clone(), Dictionary::Utf8(&names)).is_err());
    }

    #[test]
    fn runs_merge_and_rle_headers_are_uleb128() {
        let mut column = RunColumn::default();
        column.push(1, 2);
        column.push(1, 3);
        column.push(0, 0);
        column.push(0, 1);
        assert_eq!(column.runs, [(1, 5), (0, 1)]);
        assert_eq!(column.rows, 6);
        let mut out = Vec::new();
        put_rle_run(&mut out, 300, 2, 2);
        assert_eq!(out, [0xd8, 0x04, 0x02]);
        assert_eq!((bits_for(0), bits_for(1), bits_for(2), bits_for(255)), (0, 1, 2, 8));
    }
}

//! The raw lake object: one Parquet file per sealed batch of frames.
//!
//! | column | type | meaning |
//! | --- | --- | --- |
//! | `ts_us` | INT64 | microseconds since the Unix epoch, UTC |
//! | `bus` | STRING (dictionary) | interface name, `can0` |
//! | `can_id` | INT64 | identifier without flags |
//! | `extended` | BOOLEAN | 29-bit identifier |
//! | `fd` | BOOLEAN | CAN FD frame |
//! | `dlc` | INT32 | payload length in bytes (the requested length for a remote frame) |
//! | `data` | BINARY | payload |
//! | `flags` | INT32 | [`FrameFlags`] bits: 1 FD, 2 BRS, 4 ESI, 8 remote, 16 error |
//!
//! `flags` is Canopy's addition to the design's seven columns: without it a
//! remote or error frame, or a BRS/ESI bit, would be lost on the way to S3.
//! Readers accept files without it. Rows are sorted by time within each row
//! group; ZSTD compressed.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use arrow_array::builder::{BinaryBuilder, BooleanBuilder, Int32Builder, Int64Builder, StringDictionaryBuilder};
use arrow_array::types::Int32Type;
use arrow_array::{
    Array, ArrayRef, BinaryArray, BooleanArray, DictionaryArray, Int32Array, Int64Array, RecordBatch, StringArray,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::file::reader::ChunkReader;

use super::{LakeError, writer_properties};
use crate::format::candump::BusNames;
use crate::format::frame::{BusName, CanFrame, CanId, FrameError, FrameFlags, MAX_PAYLOAD};

/// Frames per row group: small enough that the edge stays within a few MB.
pub const DEFAULT_RAW_ROW_GROUP: usize = 16_384;

/// The raw lake schema.
pub fn raw_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("ts_us", DataType::Int64, false),
        Field::new(
            "bus",
            DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
            false,
        ),
        Field::new("can_id", DataType::Int64, false),
        Field::new("extended", DataType::Boolean, false),
        Field::new("fd", DataType::Boolean, false),
        Field::new("dlc", DataType::Int32, false),
        Field::new("data", DataType::Binary, false),
        Field::new("flags", DataType::Int32, false),
    ]))
}

/// What a finished raw file holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RawFileStats {
    pub frames: u64,
    pub row_groups: u64,
    pub first_ts_us: Option<i64>,
    pub last_ts_us: Option<i64>,
}

/// Frames of the row group being filled, held column by column (about 30
/// bytes a classic frame, a third of a `CanFrame`): the edge's memory is mostly this.
#[derive(Default)]
struct Pending {
    ts_us: Vec<i64>,
    ids: Vec<CanId>,
    flags: Vec<u8>,
    dlc: Vec<u8>,
    bus: Vec<u16>,
    offsets: Vec<u32>,
    data: Vec<u8>,
    buses: Vec<BusName>,
    sorted: bool,
}

impl Pending {
    fn len(&self) -> usize {
        self.ts_us.len()
    }

    fn push(&mut self, frame: &CanFrame) {
        if self.ts_us.is_empty() {
            self.sorted = true;
            self.offsets.push(0);
        } else if self.ts_us.last().is_some_and(|&last| frame.ts_us < last) {
            self.sorted = false;
        }
        let bus = match self.buses.iter().position(|b| *b == frame.bus) {
            Some(i) => i,
            None => {
                self.buses.push(frame.bus.clone());
                self.buses.len() - 1
            }
        };
        self.ts_us.push(frame.ts_us);
        self.ids.push(frame.id);
        self.flags.push(frame.flags.bits());
        self.dlc.push(frame.dlc());
        self.bus.push(bus as u16);
        self.data.extend_from_slice(frame.data());
        self.offsets.push(self.data.len() as u32);
    }

    fn clear(&mut self) {
        self.offsets.clear();
        self.ts_us.clear();
        self.ids.clear();
        self.flags.clear();
        self.dlc.clear();
        self.bus.clear();
        self.data.clear();
        self.buses.clear();
    }

    /// The record batch, rows in time order (stable: equal times keep capture order).
    fn to_batch(&self) -> Result<RecordBatch, arrow_schema::ArrowError> {
        let n = self.len();
        let order: Vec<usize> = if self.sorted {
            (0..n).collect()
        } else {
            let mut order: Vec<usize> = (0..n).collect();
            order.sort_by_key(|&i| self.ts_us[i]);
            order
        };
        let mut ts = Int64Builder::with_capacity(n);
        let mut bus = StringDictionaryBuilder::<Int32Type>::new();
        let mut can_id = Int64Builder::with_capacity(n);
        let mut extended = BooleanBuilder::with_capacity(n);
        let mut fd = BooleanBuilder::with_capacity(n);
        let mut dlc = Int32Builder::with_capacity(n);
        let mut data = BinaryBuilder::with_capacity(n, self.data.len());
        let mut flags = Int32Builder::with_capacity(n);
        for i in order {
            ts.append_value(self.ts_us[i]);
            bus.append_value(&*self.buses[usize::from(self.bus[i])]);
            can_id.append_value(i64::from(self.ids[i].raw()));
            extended.append_value(self.ids[i].is_extended());
            fd.append_value(FrameFlags::from_bits_truncate(self.flags[i]).contains(FrameFlags::FD));
            dlc.append_value(i32::from(self.dlc[i]));
            data.append_value(&self.data[self.offsets[i] as usize..self.offsets[i + 1] as usize]);
            flags.append_value(i32::from(self.flags[i]));
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(ts.finish()),
            Arc::new(bus.finish()),
            Arc::new(can_id.finish()),
            Arc::new(extended.finish()),
            Arc::new(fd.finish()),
            Arc::new(dlc.finish()),
            Arc::new(data.finish()),
            Arc::new(flags.finish()),
        ];
        RecordBatch::try_new(raw_schema(), columns)
    }
}

/// Writes frames as a raw lake file, one sorted row group at a time.
pub struct RawWriter<W: Write + Send> {
    writer: ArrowWriter<W>,
    pending: Pending,
    row_group_rows: usize,
    stats: RawFileStats,
    source_name: Arc<str>,
}

impl<W: Write + Send> RawWriter<W> {
    pub fn new(sink: W, source_name: &str) -> Result<Self, LakeError> {
        Self::with_row_group(sink, source_name, DEFAULT_RAW_ROW_GROUP)
    }

    pub fn with_row_group(sink: W, source_name: &str, row_group_rows: usize) -> Result<Self, LakeError> {
        let source_name: Arc<str> = Arc::from(source_name);
        let properties = writer_properties(row_group_rows, &["ts_us"], &[]);
        let writer = ArrowWriter::try_new(sink, raw_schema(), Some(properties))
            .map_err(|e| LakeError::parquet(&source_name, e))?;
        Ok(Self {
            writer,
            pending: Pending::default(),
            row_group_rows: row_group_rows.max(1),
            stats: RawFileStats::default(),
            source_name,
        })
    }

    pub fn push(&mut self, frame: CanFrame) -> Result<(), LakeError> {
        self.pending.push(&frame);
        if self.pending.len() >= self.row_group_rows {
            self.flush_row_group()?;
        }
        Ok(())
    }

    /// Frames written so far, including those not yet in a row group.
    pub fn frames(&self) -> u64 {
        self.stats.frames + self.pending.len() as u64
    }

    fn flush_row_group(&mut self) -> Result<(), LakeError> {
        let n = self.pending.len();
        if n == 0 {
            return Ok(());
        }
        let batch = self
            .pending
            .to_batch()
            .map_err(|e| LakeError::arrow(&self.source_name, e))?;
        self.writer
            .write(&batch)
            .map_err(|e| LakeError::parquet(&self.source_name, e))?;
        self.writer
            .flush()
            .map_err(|e| LakeError::parquet(&self.source_name, e))?;
        let first = self.pending.ts_us.iter().copied().min();
        let last = self.pending.ts_us.iter().copied().max();
        self.stats.first_ts_us = first.map(|f| self.stats.first_ts_us.map_or(f, |t| t.min(f)));
        self.stats.last_ts_us = last.map(|l| self.stats.last_ts_us.map_or(l, |t| t.max(l)));
        self.stats.frames += n as u64;
        self.stats.row_groups += 1;
        self.pending.clear();
        Ok(())
    }

    /// Writes what is pending and the footer; returns the sink.
    pub fn finish(mut self) -> Result<(W, RawFileStats), LakeError> {
        self.flush_row_group()?;
        let sink = self
            .writer
            .into_inner()
            .map_err(|e| LakeError::parquet(&self.source_name, e))?;
        Ok((sink, self.stats))
    }
}

/// The bus column as files have it: dictionary-encoded (Canopy) or plain.
enum BusColumn {
    Dictionary(DictionaryArray<Int32Type>, StringArray),
    Plain(StringArray),
}

/// One batch of raw rows, checked against the schema.
pub struct RawBatch {
    ts: Int64Array,
    bus: BusColumn,
    can_id: Int64Array,
    extended: BooleanArray,
    fd: BooleanArray,
    dlc: Int32Array,
    data: BinaryArray,
    flags: Option<Int32Array>,
    /// Row number of the batch's first row within its file.
    first_row: u64,
    source_name: Arc<str>,
}

/// A raw row, borrowed from its batch.
#[derive(Clone, Copy, Debug)]
pub struct RawRow<'a> {
    pub ts_us: i64,
    pub bus: &'a str,
    pub id: CanId,
    pub flags: FrameFlags,
    pub dlc: u8,
    pub data: &'a [u8],
}

impl RawRow<'_> {
    pub fn to_frame(&self, buses: &mut BusNames) -> Result<CanFrame, FrameError> {
        let bus = buses.get(self.bus);
        if self.flags.contains(FrameFlags::REMOTE) {
            CanFrame::remote(self.ts_us, bus, self.id, self.dlc)
        } else {
            CanFrame::new(self.ts_us, bus, self.id, self.flags, self.data)
        }
    }
}

fn column<'b, T: 'static>(
    batch: &'b RecordBatch,
    name: &str,
    source: &Arc<str>,
    expected: &str,
) -> Result<&'b T, LakeError> {
    let col = batch
        .column_by_name(name)
        .ok_or_else(|| LakeError::schema(source, name, "column missing"))?;
    col.as_any()
        .downcast_ref::<T>()
        .ok_or_else(|| LakeError::schema(source, name, format!("expected {expected}, found {}", col.data_type())))
}

impl RawBatch {
    /// The earliest and latest frame times of the batch; none when it is empty.
    pub fn ts_range(&self) -> Option<(i64, i64)> {
        let values = self.ts.values();
        Some((*values.iter().min()?, *values.iter().max()?))
    }

    /// Checks a record batch against the raw schema. `first_row` is the file
    /// row number of its first row, for error messages.
    pub fn try_new(batch: &RecordBatch, first_row: u64, source_name: &Arc<str>) -> Result<Self, LakeError> {
        let s = source_name;
        let bus_col = batch
            .column_by_name("bus")
            .ok_or_else(|| LakeError::schema(s, "bus", "column missing"))?;
        let bus = if let Some(dict) = bus_col.as_any().downcast_ref::<DictionaryArray<Int32Type>>() {
            let values = dict
                .values()
                .as_any()
                .downcast_ref::<StringArray>()
                .ok_or_else(|| LakeError::schema(s, "bus", "dictionary values must be strings"))?
                .clone();
            BusColumn::Dictionary(dict.clone(), values)
        } else if let Some(plain) = bus_col.as_any().downcast_ref::<StringArray>() {
            BusColumn::Plain(plain.clone())
        } else {
            return Err(LakeError::schema(
                s,
                "bus",
                format!("expected a string, found {}", bus_col.data_type()),
            ));
        };
        let flags = match batch.column_by_name("flags") {
            None => None,
            Some(_) => Some(column::<Int32Array>(batch, "flags", s, "INT32")?.clone()),
        };
        let out = Self {
            ts: column::<Int64Array>(batch, "ts_us", s, "INT64")?.clone(),
            bus,
            can_id: column::<Int64Array>(batch, "can_id", s, "INT64")?.clone(),
            extended: column::<BooleanArray>(batch, "extended", s, "BOOLEAN")?.clone(),
            fd: column::<BooleanArray>(batch, "fd", s, "BOOLEAN")?.clone(),
            dlc: column::<Int32Array>(batch, "dlc", s, "INT32")?.clone(),
            data: column::<BinaryArray>(batch, "data", s, "BINARY")?.clone(),
            flags,
            first_row,
            source_name: s.clone(),
        };
        for (name, nulls) in [
            ("ts_us", out.ts.null_count()),
            ("can_id", out.can_id.null_count()),
            ("extended", out.extended.null_count()),
            ("fd", out.fd.null_count()),
            ("data", out.data.null_count()),
        ] {
            if nulls > 0 {
                let array: &dyn Array = match name {
                    "ts_us" => &out.ts,
                    "can_id" => &out.can_id,
                    "extended" => &out.extended,
                    "fd" => &out.fd,
                    _ => &out.data,
                };
                let row = (0..array.len()).find(|&i| array.is_null(i)).unwrap_or(0);
                return Err(out.row_error(row, format!("{name} is null")));
            }
        }
        Ok(out)
    }

    pub fn len(&self) -> usize {
        self.ts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ts.is_empty()
    }

    #[cold]
    fn row_error(&self, i: usize, problem: String) -> LakeError {
        LakeError::Row {
            source_name: self.source_name.to_string(),
            row: self.first_row + i as u64,
            problem,
        }
    }

    /// Row `i` of the batch (`i < len()`), checked.
    pub fn row(&self, i: usize) -> Result<RawRow<'_>, LakeError> {
        let row = self.frame(i)?;
        let bus = match &self.bus {
            BusColumn::Dictionary(dict, values) => {
                if dict.is_null(i) {
                    ""
                } else {
                    values.value(dict.keys().value(i) as usize)
                }
            }
            BusColumn::Plain(values) => {
                if values.is_null(i) {
                    ""
                } else {
                    values.value(i)
                }
            }
        };
        Ok(RawRow { bus, ..row })
    }

    /// Row `i` without its bus name (`bus` is empty), checked as [`row`](Self::row)
    /// checks it: what decoding needs, inlined into the decoder's loop.
    #[inline]
    pub fn frame(&self, i: usize) -> Result<RawRow<'_>, LakeError> {
        let raw_id = self.can_id.value(i);
        let extended = self.extended.value(i);
        let fd = self.fd.value(i);
        let mut flags =
            self.flags.as_ref().map_or(
                FrameFlags::empty(),
                |f| FrameFlags::from_bits_truncate(f.value(i) as u8),
            );
        if fd {
            flags.insert(FrameFlags::FD);
        }
        let id = u32::try_from(raw_id)
            .ok()
            .and_then(|id| CanId::new(id, extended))
            .ok_or_else(|| {
                self.row_error(
                    i,
                    format!(
                        "can_id {raw_id} does not fit a {} identifier",
                        if extended { "29-bit" } else { "11-bit" }
                    ),
                )
            })?;
        let data = self.data.value(i);
        let max = if fd { MAX_PAYLOAD } else { 8 };
        if data.len() > max {
            return Err(self.row_error(
                i,
                format!(
                    "data has {} bytes, more than a {} frame holds",
                    data.len(),
                    if fd { "CAN FD" } else { "classic" }
                ),
            ));
        }
        let dlc = if self.dlc.is_null(i) {
            data.len() as i32
        } else {
            self.dlc.value(i)
        };
        let dlc = u8::try_from(dlc)
            .ok()
            .filter(|&d| usize::from(d) <= max)
            .ok_or_else(|| self.row_error(i, format!("dlc {dlc} is not a payload length")))?;
        Ok(RawRow {
            ts_us: self.ts.value(i),
            bus: "",
            id,
            flags,
            dlc,
            data,
        })
    }
}

/// Reads a raw lake file batch by batch; memory stays bounded by one row group.
pub struct RawFileReader {
    inner: ParquetRecordBatchReader,
    next_row: u64,
    rows: u64,
    source_name: Arc<str>,
    /// The Parquet reader panicked: its state is unknown, so reading ends.
    broken: bool,
}

impl RawFileReader {
    pub fn open(path: &Path) -> Result<Self, LakeError> {
        let name = path.display().to_string();
        let file = File::open(path).map_err(|e| LakeError::Io {
            source_name: name.clone(),
            error: e.to_string(),
        })?;
        Self::new(file, &name)
    }

    pub fn from_bytes(bytes: Bytes, source_name: &str) -> Result<Self, LakeError> {
        Self::new(bytes, source_name)
    }

    fn new<R: ChunkReader + 'static>(input: R, source_name: &str) -> Result<Self, LakeError> {
        let source_name: Arc<str> = Arc::from(source_name);
        check_footer(&input, &source_name)?;
        let builder = contain_panics(&source_name, || {
            ParquetRecordBatchReaderBuilder::try_new(input).map_err(|e| LakeError::parquet(&source_name, e))
        })?;
        let rows = builder.metadata().file_metadata().num_rows().max(0) as u64;
        check_schema(builder.schema(), &source_name)?;
        let inner = builder
            .with_batch_size(8192)
            .build()
            .map_err(|e| LakeError::parquet(&source_name, e))?;
        Ok(Self {
            inner,
            next_row: 0,
            rows,
            source_name,
            broken: false,
        })
    }

    /// Rows in the file, from its footer.
    pub fn num_rows(&self) -> u64 {
        self.rows
    }
}

/// Refuses a footer the Parquet reader would spend unbounded work on
/// ([`super::footer`]); a file too short to have a footer is left to the
/// reader to name.
fn check_footer<R: ChunkReader>(input: &R, source_name: &Arc<str>) -> Result<(), LakeError> {
    let len = input.len();
    let Some(tail) = len.checked_sub(8) else { return Ok(()) };
    let read = |start: u64, length: usize| {
        input
            .get_bytes(start, length)
            .map_err(|e| LakeError::parquet(source_name, e))
    };
    let end = read(tail, 8)?;
    let footer_len = u64::from(u32::from_le_bytes([end[0], end[1], end[2], end[3]]));
    let Some(start) = tail.checked_sub(footer_len) else {
        return Ok(());
    };
    let footer = read(start, footer_len as usize)?;
    super::footer::check(&footer).map_err(|problem| LakeError::Parquet {
        source_name: source_name.to_string(),
        error: format!("not a readable Parquet file: {problem}"),
    })
}

/// Runs the Parquet reader over bytes from outside: it asserts on some
/// malformed encodings (a bit width wider than its type, found by `make
/// fuzz`), and such a panic becomes an error that names the object instead
/// of ending the process and every other object with it.
pub fn contain_panics<T>(source_name: &Arc<str>, read: impl FnOnce() -> Result<T, LakeError>) -> Result<T, LakeError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(read))
        .unwrap_or_else(|panic| Err(unreadable(source_name, panic)))
}

/// The error of an object the Parquet reader panicked on.
pub fn unreadable(source_name: &str, panic: Box<dyn std::any::Any + Send>) -> LakeError {
    let message = match (panic.downcast_ref::<&str>(), panic.downcast_ref::<String>()) {
        (Some(text), _) => text,
        (_, Some(text)) => text.as_str(),
        _ => "a panic without a message",
    };
    LakeError::Parquet {
        source_name: source_name.to_string(),
        error: format!("not a readable Parquet file: the reader failed with: {message}"),
    }
}

/// Fails early, naming the column, when a file is not a raw lake file.
pub fn check_schema(schema: &Schema, source_name: &Arc<str>) -> Result<(), LakeError> {
    for (name, ok) in [
        ("ts_us", &[DataType::Int64][..]),
        ("can_id", &[DataType::Int64]),
        ("extended", &[DataType::Boolean]),
        ("fd", &[DataType::Boolean]),
        ("dlc", &[DataType::Int32]),
        ("data", &[DataType::Binary]),
    ] {
        let field = schema
            .field_with_name(name)
            .map_err(|_| LakeError::schema(source_name, name, "column missing"))?;
        if !ok.contains(field.data_type()) {
            return Err(LakeError::schema(
                source_name,
                name,
                format!("expected {:?}, found {}", ok[0], field.data_type()),
            ));
        }
    }
    let bus = schema
        .field_with_name("bus")
        .map_err(|_| LakeError::schema(source_name, "bus", "column missing"))?;
    match bus.data_type() {
        DataType::Utf8 => {}
        DataType::Dictionary(k, v) if **k == DataType::Int32 && **v == DataType::Utf8 => {}
        other => {
            return Err(LakeError::schema(
                source_name,
                "bus",
                format!("expected a string, found {other}"),
            ));
        }
    }
    Ok(())
}

impl Iterator for RawFileReader {
    type Item = Result<RawBatch, LakeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.broken {
            return None;
        }
        let source_name = self.source_name.clone();
        let read = contain_panics(&source_name, || Ok(self.inner.next()));
        let batch = match read {
            Ok(None) => return None,
            Ok(Some(Ok(b))) => b,
            Ok(Some(Err(e))) => return Some(Err(LakeError::arrow(&self.source_name, e))),
            Err(e) => {
                self.broken = true;
                return Some(Err(e));
            }
        };
        let first_row = self.next_row;
        self.next_row += batch.num_rows() as u64;
        Some(RawBatch::try_new(&batch, first_row, &self.source_name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::frame::CanId;

    fn frames() -> Vec<CanFrame> {
        let bus0: Arc<str> = Arc::from("can0");
        let bus1: Arc<str> = Arc::from("can1");
        let mut fd_flags = FrameFlags::FD;
        fd_flags.insert(FrameFlags::BRS);
        fd_flags.insert(FrameFlags::ESI);
        vec![
            CanFrame::new(
                30,
                bus0.clone(),
                CanId::Standard(0x100),
                FrameFlags::empty(),
                &[1, 2, 3],
            )
            .unwrap(),
            CanFrame::new(
                10,
                bus1.clone(),
                CanId::Extended(0x18FF50E5),
                FrameFlags::empty(),
                &[0xFF; 8],
            )
            .unwrap(),
            CanFrame::new(20, bus0.clone(), CanId::Standard(0x7FF), fd_flags, &[0xAB; 64]).unwrap(),
            CanFrame::remote(40, bus1.clone(), CanId::Standard(0x123), 4).unwrap(),
            CanFrame::new(50, bus0.clone(), CanId::Extended(0x80), FrameFlags::ERROR, &[0; 8]).unwrap(),
            CanFrame::new(60, bus0, CanId::Standard(0), FrameFlags::empty(), &[]).unwrap(),
        ]
    }

    fn batch_of(frames: &[CanFrame]) -> RecordBatch {
        let mut pending = Pending::default();
        for f in frames {
            pending.push(f);
        }
        pending.to_batch().unwrap()
    }

    fn write(frames: &[CanFrame], row_group: usize) -> Vec<u8> {
        let mut w = RawWriter::with_row_group(Vec::new(), "mem.parquet", row_group).unwrap();
        for f in frames {
            w.push(f.clone()).unwrap();
        }
        w.finish().unwrap().0
    }

    fn read(bytes: Vec<u8>) -> Result<Vec<CanFrame>, LakeError> {
        let mut buses = BusNames::default();
        let mut out = Vec::new();
        for batch in RawFileReader::from_bytes(Bytes::from(bytes), "mem.parquet")? {
            let batch = batch?;
            for i in 0..batch.len() {
                out.push(batch.row(i)?.to_frame(&mut buses).unwrap());
            }
        }
        Ok(out)
    }

    #[test]
    fn every_kind_of_frame_survives_the_round_trip_sorted_by_time() {
        let mut expected = frames();
        let bytes = write(&expected, 1000);
        expected.sort_by_key(|f| f.ts_us);
        assert_eq!(read(bytes).unwrap(), expected);
    }

    #[test]
    fn row_groups_are_cut_and_each_is_sorted() {
        let frames: Vec<CanFrame> = (0..10)
            .map(|i| {
                CanFrame::new(
                    100 - i,
                    Arc::from("can0"),
                    CanId::Standard(1),
                    FrameFlags::empty(),
                    &[i as u8],
                )
                .unwrap()
            })
            .collect();
        let mut w = RawWriter::with_row_group(Vec::new(), "mem", 4).unwrap();
        for f in &frames {
            w.push(f.clone()).unwrap();
        }
        let (bytes, stats) = w.finish().unwrap();
        assert_eq!(
            stats,
            RawFileStats {
                frames: 10,
                row_groups: 3,
                first_ts_us: Some(91),
                last_ts_us: Some(100)
            }
        );
        let ts: Vec<i64> = read(bytes).unwrap().iter().map(|f| f.ts_us).collect();
        assert_eq!(ts, [97, 98, 99, 100, 93, 94, 95, 96, 91, 92]);
    }

    #[test]
    fn a_footer_of_endless_lists_is_refused_before_the_reader_walks_it() {
        // Found by `make fuzz` (the raw_parquet target, as a slow unit): 2.2 kB
        // whose footer declares lists of billions of booleans, which the
        // parquet crate skips one by one (3.3 s in release before the check).
        let bytes = Bytes::from_static(include_bytes!("testdata/raw-footer-endless-lists.parquet"));
        let error = RawFileReader::from_bytes(bytes, "s3://lake/raw/x.parquet")
            .err()
            .expect("refused")
            .to_string();
        // The footer check's words: the parquet crate never read it.
        assert!(
            error.starts_with("s3://lake/raw/x.parquet") && error.contains("malformed footer at byte"),
            "{error}"
        );
    }

    #[test]
    fn a_file_the_parquet_reader_panics_on_is_an_error_that_names_it() {
        // Found by `make fuzz` (the raw_parquet target): a page whose bit width
        // is wider than its type trips an assertion inside the parquet crate.
        let bytes = Bytes::from_static(include_bytes!("testdata/raw-bit-width-panic.parquet"));
        let errors: Vec<String> = match RawFileReader::from_bytes(bytes, "s3://lake/raw/x.parquet") {
            Err(e) => vec![e.to_string()],
            // Reading ends at the panic: the reader's state is unknown after it.
            Ok(reader) => reader
                .take(100)
                .filter_map(Result::err)
                .map(|e| e.to_string())
                .collect(),
        };
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].contains("s3://lake/raw/x.parquet") && errors[0].contains("not a readable Parquet file"),
            "{errors:?}"
        );
    }

    #[test]
    fn a_file_that_is_not_parquet_names_the_file() {
        let err = RawFileReader::from_bytes(Bytes::from_static(b"not parquet at all"), "junk.parquet")
            .err()
            .unwrap();
        assert!(err.to_string().starts_with("junk.parquet: "), "{err}");
    }

    fn write_batch(schema: SchemaRef, columns: Vec<ArrayRef>) -> Vec<u8> {
        let batch = RecordBatch::try_new(schema.clone(), columns).unwrap();
        let mut w = ArrowWriter::try_new(Vec::new(), schema, None).unwrap();
        w.write(&batch).unwrap();
        w.into_inner().unwrap()
    }

    #[test]
    fn a_wrong_column_type_names_the_column() {
        let mut fields: Vec<Field> = raw_schema().fields().iter().map(|f| f.as_ref().clone()).collect();
        fields[2] = Field::new("can_id", DataType::Utf8, false);
        let schema = Arc::new(Schema::new(fields));
        let good = batch_of(&frames()[..1]);
        let mut columns = good.columns().to_vec();
        columns[2] = Arc::new(StringArray::from(vec!["0x100"]));
        let err = read(write_batch(schema, columns)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "mem.parquet: column can_id: expected Int64, found Utf8"
        );
    }

    #[test]
    fn a_bad_row_names_the_row() {
        let good = batch_of(&frames());
        let mut columns = good.columns().to_vec();
        columns[2] = Arc::new(Int64Array::from(vec![1, 2, 3, 0x800, 5, 6]));
        let err = read(write_batch(raw_schema(), columns)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "mem.parquet: row 3: can_id 2048 does not fit a 11-bit identifier"
        );
        let mut columns = good.columns().to_vec();
        columns[6] = Arc::new(BinaryArray::from(vec![&[0u8; 9][..], &[], &[], &[], &[], &[]]));
        let err = read(write_batch(raw_schema(), columns)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "mem.parquet: row 0: data has 9 bytes, more than a classic frame holds"
        );
    }

    #[test]
    fn plain_string_bus_columns_and_files_without_flags_are_read() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("ts_us", DataType::Int64, false),
            Field::new("bus", DataType::Utf8, false),
            Field::new("can_id", DataType::Int64, false),
            Field::new("extended", DataType::Boolean, false),
            Field::new("fd", DataType::Boolean, false),
            Field::new("dlc", DataType::Int32, false),
            Field::new("data", DataType::Binary, false),
        ]));
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(vec![5])),
            Arc::new(StringArray::from(vec!["vcan0"])),
            Arc::new(Int64Array::from(vec![0x123])),
            Arc::new(BooleanArray::from(vec![false])),
            Arc::new(BooleanArray::from(vec![true])),
            Arc::new(Int32Array::from(vec![12])),
            Arc::new(BinaryArray::from(vec![&[7u8; 12][..]])),
        ];
        let frames = read(write_batch(schema, columns)).unwrap();
        assert_eq!(&*frames[0].bus, "vcan0");
        assert!(frames[0].is_fd());
        assert_eq!(frames[0].data(), &[7u8; 12]);
    }
}

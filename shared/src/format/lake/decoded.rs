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
//! | `out_of_range` | BOOLEAN, nullable: the value lies outside its signal's DBC `[min, max]` (false where the DBC sets no range; null in objects written before the column) |
//!
//! A value out of its range is stored all the same: the flag lets a query
//! find them (`WHERE out_of_range`, a column of a few bits per row group)
//! and the writer counts them per signal ([`DecodedFileStats::out_of_range`]).
//!
//! Rows are sorted by (message, signal, ts_us) so that row-group statistics
//! let Athena skip what a query does not ask for. Sorting needs the rows in
//! memory, so the writer sorts a window of rows at a time (a million, 16 MB;
//! up to three are held while the encoder works) and writes each window as
//! several small row groups: a file that fits one window (every file the edge
//! seals by default) is sorted as a whole, and a larger one is a sequence of
//! sorted windows, each still pruned by its row-group statistics. Memory stays
//! bounded whatever the size of the input.
//!
//! The dictionary columns (`message`, `signal`, `unit`, `batch`, `written_us`)
//! are runs of a few values in sorted rows, and are written from those runs,
//! and `out_of_range` from the rows it flags ([`run_column`](super::run_column)).
//! `ts_us` and `value` go to Parquet's column writer straight from the
//! window's buckets, and the Arrow writer encodes `source_address`.

use std::io::Write;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, sync_channel};
use std::thread::JoinHandle;

use arrow_array::{ArrayRef, Int32Array};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_writer::{ArrowColumnWriter, ArrowRowGroupWriterFactory};
use parquet::file::writer::{SerializedFileWriter, SerializedRowGroupWriter};
use parquet::schema::types::ColumnDescPtr;

use super::compact::BatchCopy;
use super::rollup::{RollupBuilder, RollupFile, TIERS, Tier};
use super::row_group::{self, Column};
use super::run_column::{Dictionary, RunColumn};
use super::{LakeError, writer_properties};
use crate::format::dbc::columns::{ColumnDecoder, ColumnFrame};
use crate::format::dbc::{Database, SignalValue, ValueRange};

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
        Field::new("out_of_range", DataType::Boolean, true),
    ]))
}

/// How decoded objects are encoded (the decoder's and compaction's), in row
/// groups of `row_group_rows`. `value` stays PLAIN: BYTE_STREAM_SPLIT made
/// the 9.6 MB drive's object larger (17.36 against 16.99 MB) and its decode
/// 4 % slower, since a signal's sorted values repeat whole and ZSTD finds
/// them so.
pub(crate) fn writer_properties_for_decoded(row_group_rows: usize) -> parquet::file::properties::WriterProperties {
    writer_properties(row_group_rows, &["ts_us", "value"], &[])
}

/// How much the decoded writer holds and how it cuts row groups.
#[derive(Clone, Copy, Debug)]
pub struct DecodedWriterOptions {
    /// Rows sorted together (16 bytes each in memory, and one byte more for
    /// J1939 messages). A window fills while the two before it are encoded.
    pub sort_window_rows: usize,
    /// Rows per Parquet row group.
    pub row_group_rows: usize,
    /// Also aggregate the rollup tiers ([`DecodedWriter::finish_with_rollups`]).
    pub rollups: bool,
}

impl Default for DecodedWriterOptions {
    fn default() -> Self {
        Self {
            sort_window_rows: 1_000_000,
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
    /// An empty bucket with room for as many values as `other` holds.
    fn like(other: &Bucket) -> Self {
        Self {
            ts_us: Vec::with_capacity(other.ts_us.len()),
            values: Vec::with_capacity(other.values.len()),
            sources: Vec::with_capacity(other.sources.len()),
        }
    }

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

/// The frames of one message held for the current window, in arrival order,
/// for a message whose frames decode by columns ([`ColumnDecoder`]): they
/// are decoded into their signals' buckets when the window is full.
#[derive(Default)]
struct Frames {
    ts_us: Vec<i64>,
    words: Vec<u64>,
    /// The multiplexed group each frame selects, for multiplexed messages only (empty otherwise).
    nodes: Vec<u32>,
    /// Source addresses, for J1939 messages only (empty otherwise).
    sources: Vec<u8>,
}

impl Frames {
    fn like(other: &Frames) -> Self {
        Self {
            ts_us: Vec::with_capacity(other.ts_us.len()),
            words: Vec::with_capacity(other.words.len()),
            nodes: Vec::with_capacity(other.nodes.len()),
            sources: Vec::with_capacity(other.sources.len()),
        }
    }

    fn clear(&mut self) {
        self.ts_us.clear();
        self.words.clear();
        self.nodes.clear();
        self.sources.clear();
    }

    /// Decodes the frames into the buckets of their message's signals
    /// (`keys`: signal index → sort key), a signal at a time: the frames
    /// of each multiplexed group are gathered first, and decoded as the
    /// frames of a message of their own.
    fn decode_into(&self, decoder: &ColumnDecoder, keys: &[u32], buckets: &mut [Bucket]) {
        let columns = |node: usize, frames: &Frames, buckets: &mut [Bucket]| {
            for (signal, column) in decoder.signals(node) {
                let bucket = &mut buckets[keys[usize::from(signal)] as usize];
                bucket.ts_us.extend_from_slice(&frames.ts_us);
                column.decode(&frames.words, &mut bucket.values);
                bucket.sources.extend_from_slice(&frames.sources);
            }
        };
        columns(0, self, buckets);
        if self.nodes.is_empty() {
            return;
        }
        let mut groups: Vec<Frames> = (0..decoder.nodes()).map(|_| Frames::default()).collect();
        for (i, &node) in self.nodes.iter().enumerate() {
            // Only a frame read by `decoder` is here, so its node is one of
            // the decoder's; any other would have counted its root alone.
            let Some(group) = groups.get_mut(node as usize) else {
                continue;
            };
            group.ts_us.push(self.ts_us[i]);
            group.words.push(self.words[i]);
            if let Some(&address) = self.sources.get(i) {
                group.sources.push(address);
            }
        }
        for (node, group) in groups.iter().enumerate().skip(1) {
            if !group.ts_us.is_empty() {
                columns(node, group, buckets);
            }
        }
    }
}

/// What is held of one window: the values pushed frame by frame, in a
/// bucket per signal, and the frames of messages that decode by columns.
struct Window {
    buckets: Vec<Bucket>,
    /// By message index; empty for messages decoded frame by frame.
    frames: Vec<Frames>,
}

impl Window {
    fn new(catalog: &Catalog) -> Self {
        Self {
            buckets: (0..catalog.names.len()).map(|_| Bucket::default()).collect(),
            frames: (0..catalog.keys.len()).map(|_| Frames::default()).collect(),
        }
    }

    /// An empty window with room for as much as `other` holds: the next is
    /// likely alike, and vectors that grow by doubling copy what they hold.
    fn like(other: &Window) -> Self {
        Self {
            buckets: other.buckets.iter().map(Bucket::like).collect(),
            frames: other.frames.iter().map(Frames::like).collect(),
        }
    }

    /// Decodes the held frames into the buckets, leaving the frames empty.
    fn decode_frames(&mut self, catalog: &Catalog) {
        for (index, frames) in self.frames.iter_mut().enumerate() {
            if let (false, Some(decoder)) = (frames.ts_us.is_empty(), &catalog.columns[index]) {
                frames.decode_into(decoder, &catalog.keys[index], &mut self.buckets);
            }
            frames.clear();
        }
    }
}

/// Sort keys and dictionary entries of every signal of a database.
struct Catalog {
    /// message index → signal index → sort key.
    keys: Vec<Vec<u32>>,
    /// message index → how its frames decode by columns, if they do.
    columns: Vec<Option<ColumnDecoder>>,
    /// sort key → (message name id, signal name id, unit id).
    names: Vec<(i32, i32, i32)>,
    /// sort key → the signal's DBC range, if it has one.
    ranges: Vec<Option<ValueRange>>,
    /// The three dictionaries, by id.
    message_names: Vec<String>,
    signal_names: Vec<String>,
    unit_names: Vec<String>,
}

impl Catalog {
    fn new(db: &Database) -> Self {
        // (message index, signal index) of every signal, in (message, signal) name order.
        let messages = db.messages();
        let mut entries: Vec<(usize, usize)> = (messages.iter().enumerate())
            .flat_map(|(mi, m)| (0..m.signals.len()).map(move |si| (mi, si)))
            .collect();
        entries.sort_by(|&(ma, sa), &(mb, sb)| {
            (&messages[ma].name, &messages[ma].signals[sa].name)
                .cmp(&(&messages[mb].name, &messages[mb].signals[sb].name))
        });
        let intern = |values: &mut Vec<String>, v: &str| -> i32 {
            match values.iter().position(|x| x == v) {
                Some(i) => i as i32,
                None => {
                    values.push(v.to_string());
                    (values.len() - 1) as i32
                }
            }
        };
        let (mut message_names, mut signal_names, mut unit_names) = (Vec::new(), Vec::new(), Vec::new());
        let mut keys: Vec<Vec<u32>> = messages.iter().map(|m| vec![0; m.signals.len()]).collect();
        let mut names = Vec::with_capacity(entries.len());
        let mut ranges = Vec::with_capacity(entries.len());
        for (key, (mi, si)) in entries.into_iter().enumerate() {
            let (message, signal) = (&messages[mi], &messages[mi].signals[si]);
            keys[mi][si] = key as u32;
            ranges.push(signal.range());
            names.push((
                intern(&mut message_names, &message.name),
                intern(&mut signal_names, &signal.name),
                intern(&mut unit_names, &signal.unit),
            ));
        }
        Self {
            keys,
            columns: messages.iter().map(|m| m.columns().cloned()).collect(),
            names,
            ranges,
            message_names,
            signal_names,
            unit_names,
        }
    }
}

/// What a finished decoded file holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DecodedFileStats {
    pub rows: u64,
    pub row_groups: u64,
    /// Values outside their signal's DBC range, for each signal that had any.
    pub out_of_range: Vec<OutOfRange>,
}

/// How many values of one signal lay outside its DBC range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutOfRange {
    pub message: String,
    pub signal: String,
    pub values: u64,
}

/// Columns of one row group being assembled: the window's buckets are
/// borrowed, not copied, and written slice by slice.
struct BatchBuilder<'w> {
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
    fn new() -> Self {
        Self {
            rows: 0,
            ts_us: Vec::new(),
            values: Vec::new(),
            names: Default::default(),
            sources: Vec::new(),
            out_of_range: Vec::new(),
        }
    }

    fn len(&self) -> usize {
        self.rows
    }

    /// Adds rows of one signal; `sources` is empty or one address per row.
    /// How many of its values lie outside `range`.
    fn extend(
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
    fn write<W: Write + Send>(
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

/// Writes decoded values as a decoded lake file.
///
/// The caller's thread decodes into a window while an encoder thread writes
/// the windows before it: their row groups, and beside them (on a thread of
/// its own) the rollup tiers' aggregates. At most three windows are held, the
/// one filling and two handed to the encoder, so memory stays flat in the
/// input's size.
pub struct DecodedWriter<W: Write + Send> {
    sink: W,
    catalog: Arc<Catalog>,
    /// The window filling. Its buckets, one per signal in sort-key order,
    /// sort rows by filling them.
    window: Window,
    /// Values in the window, held or to be decoded from its frames.
    held: usize,
    options: DecodedWriterOptions,
    source_name: Arc<str>,
    /// Each rollup tier's bytes encoded and not drained yet.
    tier_bytes: Vec<(Tier, Vec<u8>)>,
    encoder: EncoderThread,
    /// A written window, emptied, to fill next.
    spare: Vec<Window>,
}

/// Windows handed to the encoder and not written yet, at most.
const WINDOWS_IN_FLIGHT: usize = 2;

/// The `batch` and `written_us` columns' values, as the writer repeats them.
pub(crate) struct CopyColumns {
    /// The batch's name: the one-entry dictionary of its column.
    pub(crate) batch_name: [String; 1],
    pub(crate) written_us: i64,
}

impl CopyColumns {
    pub(crate) fn new(copy: &BatchCopy) -> Self {
        Self {
            batch_name: [copy.batch.to_string()],
            written_us: copy.written_us,
        }
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
        let catalog = Arc::new(Catalog::new(db));
        let copy = Arc::new(CopyColumns::new(copy));
        let encoder = Encoder::new(catalog.clone(), copy, &options, source_name.clone())?;
        let window = Window::new(&catalog);
        let tier_bytes = match options.rollups {
            true => TIERS.iter().map(|t| (*t, Vec::new())).collect(),
            false => Vec::new(),
        };
        Ok(Self {
            sink,
            catalog,
            window,
            held: 0,
            options,
            source_name,
            tier_bytes,
            encoder: EncoderThread::spawn(encoder),
            spare: Vec::new(),
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
            let bucket = &mut self.window.buckets[keys[usize::from(v.signal)] as usize];
            bucket.ts_us.push(ts_us);
            bucket.values.push(v.value);
            if let Some(address) = source_address {
                bucket.sources.push(address);
            }
        }
        self.hold(values.len())
    }

    /// Adds one frame of message `message_index`, whose frames decode by
    /// columns ([`Message::columns`](crate::format::dbc::Message::columns)),
    /// as read by its [`ColumnDecoder::frame`]. It is decoded with the
    /// window's other frames of the message, into the rows
    /// [`push`](Self::push) would have added.
    pub fn push_frame(
        &mut self,
        ts_us: i64,
        message_index: usize,
        source_address: Option<u8>,
        frame: ColumnFrame,
    ) -> Result<(), LakeError> {
        let Some(decoder) = &self.catalog.columns[message_index] else {
            return Err(LakeError::Parquet {
                source_name: self.source_name.to_string(),
                error: format!("message {message_index} does not decode by columns"),
            });
        };
        let values = decoder.values(frame);
        let frames = &mut self.window.frames[message_index];
        frames.ts_us.push(ts_us);
        frames.words.push(frame.word);
        if decoder.nodes() > 1 {
            frames.nodes.push(frame.node);
        }
        if let Some(address) = source_address {
            frames.sources.push(address);
        }
        self.hold(values)
    }

    /// Counts `values` more in the window, and hands it over once full.
    fn hold(&mut self, values: usize) -> Result<(), LakeError> {
        self.held += values;
        if self.held >= self.options.sort_window_rows {
            self.write_window()?;
        }
        Ok(())
    }

    /// The sink, to drain bytes already written (a multipart upload does).
    pub fn sink_mut(&mut self) -> &mut W {
        &mut self.sink
    }

    /// Each rollup tier's bytes written so far and not drained: a caller that
    /// streams them out (a multipart upload) keeps memory to about one window.
    pub fn rollup_sinks_mut(&mut self) -> impl Iterator<Item = (Tier, &mut Vec<u8>)> {
        self.tier_bytes.iter_mut().map(|(tier, bytes)| (*tier, bytes))
    }

    /// Decodes the window's frames and hands it to the encoder thread, and
    /// takes an empty window for the next: a written one when there is one
    /// (waiting for the oldest when two are in flight), else a new one.
    fn write_window(&mut self) -> Result<(), LakeError> {
        if self.encoder.in_flight == WINDOWS_IN_FLIGHT {
            let written = self.encoder.wait()?;
            let emptied = self.take(written)?;
            self.spare.push(emptied);
        }
        let next = match self.spare.pop() {
            Some(emptied) => emptied,
            None => match self.encoder.try_wait()? {
                Some(written) => self.take(written)?,
                None => Window::like(&self.window),
            },
        };
        // Here rather than on the encoder thread, the pipeline's longest.
        self.window.decode_frames(&self.catalog);
        self.encoder.send(std::mem::replace(&mut self.window, next))?;
        self.held = 0;
        Ok(())
    }

    /// Passes an encoded window's bytes to the sinks; the window, emptied.
    fn take(&mut self, written: Written) -> Result<Window, LakeError> {
        self.sink
            .write_all(&written.bytes)
            .map_err(|e| LakeError::parquet(&self.source_name, e.into()))?;
        for ((_, bytes), tier) in self.tier_bytes.iter_mut().zip(written.tiers) {
            bytes.extend_from_slice(&tier);
        }
        Ok(written.window)
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
        while self.encoder.in_flight > 0 {
            let written = self.encoder.wait()?;
            self.take(written)?;
        }
        let (footer, stats, mut files) = self.encoder.finish()?;
        self.sink
            .write_all(&footer)
            .map_err(|e| LakeError::parquet(&self.source_name, e.into()))?;
        for (file, (_, undrained)) in files.iter_mut().zip(self.tier_bytes) {
            file.bytes.splice(0..0, undrained);
        }
        Ok((self.sink, stats, files))
    }
}

/// An encoded window: its bytes, each tier's, and the window emptied for the next.
struct Written {
    bytes: Vec<u8>,
    tiers: Vec<Vec<u8>>,
    window: Window,
}

/// What the encoder thread ends with: the bytes after the last window (the
/// footer), the file's stats and the rest of each tier's object.
type Finished = (Vec<u8>, DecodedFileStats, Vec<RollupFile>);

/// The encoder on its own thread: one window in, one [`Written`] out.
struct EncoderThread {
    windows: Option<SyncSender<Window>>,
    written: Receiver<Result<Written, LakeError>>,
    thread: Option<JoinHandle<Result<Finished, LakeError>>>,
    source_name: Arc<str>,
    /// Windows sent whose bytes were not taken yet.
    in_flight: usize,
}

impl EncoderThread {
    fn spawn(mut encoder: Encoder) -> Self {
        let source_name = encoder.source_name.clone();
        let (windows, incoming) = sync_channel::<Window>(WINDOWS_IN_FLIGHT);
        let (done, written) = sync_channel(WINDOWS_IN_FLIGHT);
        let thread = std::thread::spawn(move || {
            for mut window in incoming {
                let result =
                    encoder
                        .write_window(&mut window.buckets)
                        .map(|(bytes, tiers)| Written { bytes, tiers, window });
                let failed = result.is_err();
                if done.send(result).is_err() || failed {
                    break;
                }
            }
            encoder.finish()
        });
        Self {
            windows: Some(windows),
            written,
            thread: Some(thread),
            source_name,
            in_flight: 0,
        }
    }

    fn send(&mut self, window: Window) -> Result<(), LakeError> {
        let sent = self.windows.as_ref().is_some_and(|w| w.send(window).is_ok());
        if !sent {
            return Err(self.stopped());
        }
        self.in_flight += 1;
        Ok(())
    }

    /// The oldest window in flight, once written.
    fn wait(&mut self) -> Result<Written, LakeError> {
        match self.written.recv() {
            Ok(written) => {
                self.in_flight -= 1;
                written
            }
            Err(_) => Err(self.stopped()),
        }
    }

    /// The oldest window in flight if it is written already.
    fn try_wait(&mut self) -> Result<Option<Written>, LakeError> {
        match self.written.try_recv() {
            Ok(written) => {
                self.in_flight -= 1;
                written.map(Some)
            }
            Err(TryRecvError::Empty) => Ok(None),
            Err(TryRecvError::Disconnected) => Err(self.stopped()),
        }
    }

    /// Ends the thread.
    fn finish(mut self) -> Result<Finished, LakeError> {
        self.windows = None;
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            _ => Err(self.stopped()),
        }
    }

    fn stopped(&self) -> LakeError {
        LakeError::Parquet {
            source_name: self.source_name.to_string(),
            error: "the encoder thread stopped".into(),
        }
    }
}

impl Drop for EncoderThread {
    /// A writer dropped unfinished (its caller failed) ends its thread and
    /// waits for it, so the windows it holds are freed before the caller goes on.
    fn drop(&mut self) {
        self.windows = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Writes windows of buckets as row groups of the decoded object and of each tier.
struct Encoder {
    writer: SerializedFileWriter<Vec<u8>>,
    /// Makes the writers of [`ARROW_COLUMNS`] for each row group.
    arrow_columns: ArrowRowGroupWriterFactory,
    catalog: Arc<Catalog>,
    copy: Arc<CopyColumns>,
    row_group_rows: usize,
    stats: DecodedFileStats,
    /// sort key → values out of its range so far.
    out_of_range: Vec<u64>,
    source_name: Arc<str>,
    rollups: Option<RollupBuilder>,
}

/// Fields of the decoded schema the Arrow writer encodes.
const ARROW_COLUMNS: [&str; 1] = ["source_address"];

impl Encoder {
    fn new(
        catalog: Arc<Catalog>,
        copy: Arc<CopyColumns>,
        options: &DecodedWriterOptions,
        source_name: Arc<str>,
    ) -> Result<Self, LakeError> {
        let properties = writer_properties_for_decoded(options.row_group_rows);
        let arrow_columns = row_group::arrow_writers(&decoded_schema(), &ARROW_COLUMNS, &properties)
            .map_err(|e| LakeError::parquet(&source_name, e))?;
        let (writer, _) = ArrowWriter::try_new(Vec::new(), decoded_schema(), Some(properties))
            .and_then(ArrowWriter::into_serialized_writer)
            .map_err(|e| LakeError::parquet(&source_name, e))?;
        let rollups = match options.rollups {
            true => Some(RollupBuilder::new(catalog.names.len(), &source_name)?),
            false => None,
        };
        Ok(Self {
            writer,
            arrow_columns,
            out_of_range: vec![0; catalog.names.len()],
            catalog,
            copy,
            row_group_rows: options.row_group_rows.max(1),
            stats: DecodedFileStats::default(),
            source_name,
            rollups,
        })
    }

    /// Sorts a window's buckets, writes them and empties them: the bytes
    /// written to the decoded object and to each tier's. The tiers are
    /// aggregated on a thread of their own meanwhile.
    fn write_window(&mut self, buckets: &mut [Bucket]) -> Result<(Vec<u8>, Vec<Vec<u8>>), LakeError> {
        for bucket in buckets.iter_mut() {
            bucket.sort();
        }
        let Some(mut rollups) = self.rollups.take() else {
            self.write_rows(buckets)?;
            return self.take_window(buckets, Vec::new());
        };
        let (catalog, copy, source_name) = (self.catalog.clone(), self.copy.clone(), self.source_name.clone());
        let (decoded, tiers) = std::thread::scope(|scope| {
            let tiers = scope.spawn(|| -> Result<Vec<Vec<u8>>, LakeError> {
                for (key, bucket) in buckets.iter().enumerate() {
                    rollups.add(key, catalog.ranges[key], &bucket.ts_us, &bucket.values);
                }
                rollups.flush(
                    &catalog.names,
                    [&catalog.message_names, &catalog.signal_names, &catalog.unit_names],
                    &copy,
                    &source_name,
                )?;
                Ok(rollups.sinks_mut().map(|(_, bytes)| std::mem::take(bytes)).collect())
            });
            let decoded = self.write_rows(buckets);
            (decoded, tiers.join())
        });
        self.rollups = Some(rollups);
        let tiers = tiers.map_err(|_| LakeError::Parquet {
            source_name: self.source_name.to_string(),
            error: "the rollup thread stopped".into(),
        })??;
        decoded?;
        self.take_window(buckets, tiers)
    }

    /// Empties a written window's buckets; its bytes, and each tier's.
    fn take_window(
        &mut self,
        buckets: &mut [Bucket],
        tiers: Vec<Vec<u8>>,
    ) -> Result<(Vec<u8>, Vec<Vec<u8>>), LakeError> {
        for bucket in buckets.iter_mut() {
            bucket.ts_us.clear();
            bucket.values.clear();
            bucket.sources.clear();
        }
        // Out of the Parquet writer's buffer, so the window's bytes go out whole.
        self.writer
            .flush()
            .map_err(|e| LakeError::parquet(&self.source_name, e.into()))?;
        Ok((std::mem::take(self.writer.inner_mut()), tiers))
    }

    /// Writes sorted buckets as row groups.
    fn write_rows(&mut self, buckets: &[Bucket]) -> Result<(), LakeError> {
        let group = self.row_group_rows;
        let mut batch = BatchBuilder::new();
        for (key, bucket) in buckets.iter().enumerate() {
            let len = bucket.ts_us.len();
            let mut from = 0;
            while from < len {
                let take = (group - batch.len()).min(len - from);
                let sources = if bucket.sources.is_empty() {
                    &[][..]
                } else {
                    &bucket.sources[from..from + take]
                };
                self.out_of_range[key] += batch.extend(
                    self.catalog.names[key],
                    self.catalog.ranges[key],
                    &bucket.ts_us[from..from + take],
                    &bucket.values[from..from + take],
                    sources,
                );
                from += take;
                if batch.len() == group {
                    self.write_batch(&mut batch)?;
                }
            }
        }
        if batch.len() > 0 {
            self.write_batch(&mut batch)?;
        }
        Ok(())
    }

    fn write_batch(&mut self, rows: &mut BatchBuilder) -> Result<(), LakeError> {
        let n = rows.len();
        let descriptors = self.writer.schema_descr().columns().to_vec();
        (|| {
            let arrow_writers = self
                .arrow_columns
                .create_column_writers(self.stats.row_groups as usize)?;
            let mut group = self.writer.next_row_group()?;
            rows.write(&mut group, arrow_writers, &descriptors, &self.catalog, &self.copy)?;
            group.close().map(drop)
        })()
        .map_err(|e| LakeError::parquet(&self.source_name, e))?;
        self.stats.rows += n as u64;
        self.stats.row_groups += 1;
        Ok(())
    }

    fn finish(mut self) -> Result<Finished, LakeError> {
        let footer = self
            .writer
            .into_inner()
            .map_err(|e| LakeError::parquet(&self.source_name, e))?;
        let catalog = &self.catalog;
        self.stats.out_of_range = (self.out_of_range.iter().enumerate())
            .filter(|(_, n)| **n > 0)
            .map(|(key, n)| {
                let (message, signal, _) = catalog.names[key];
                OutOfRange {
                    message: catalog.message_names[message as usize].clone(),
                    signal: catalog.signal_names[signal as usize].clone(),
                    values: *n,
                }
            })
            .collect();
        let tiers = match self.rollups {
            Some(rollups) => rollups.finish(&self.source_name)?,
            None => Vec::new(),
        };
        Ok((footer, self.stats, tiers))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::lake::compact::BatchCopy;
    use arrow_array::types::Int32Type;
    use arrow_array::{Array, BooleanArray, DictionaryArray, Float64Array, Int64Array, StringArray};
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

    #[test]
    fn many_windows_in_flight_come_out_whole_and_in_order_with_their_tiers() {
        let db = Database::from_text(DBC, "t.dbc").unwrap();
        let options = DecodedWriterOptions {
            sort_window_rows: 6,
            row_group_rows: 4,
            rollups: true,
        };
        let mut w = DecodedWriter::new(&db, Vec::new(), "out", &BatchCopy::new("b", 1), options).unwrap();
        let zeta = db.messages().iter().position(|m| m.name == "Zeta").unwrap();
        let mut values = Vec::new();
        // 100 frames a second apart: 200 rows in 34 windows, drained as a multipart upload would.
        let mut tier_bytes = vec![0; TIERS.len()];
        let mut drained = Vec::new();
        for ts in 0..100i64 {
            db.messages()[zeta].decode(&[ts as u8, 1], &mut values).unwrap();
            w.push(ts * 1_000_000, zeta, None, &values).unwrap();
            drained.append(w.sink_mut());
            for (i, (_, bytes)) in w.rollup_sinks_mut().enumerate() {
                tier_bytes[i] += bytes.len();
                bytes.clear();
            }
        }
        let (rest, stats, tiers) = w.finish_with_rollups().unwrap();
        drained.extend(rest);
        assert_eq!(stats.rows, 200);
        let (rows, _, _) = rows(drained);
        let times: Vec<i64> = rows.iter().filter(|r| r.1 == "B").map(|r| r.2).collect();
        assert_eq!(times, (0..100).map(|t| t * 1_000_000).collect::<Vec<_>>());
        // The 1 s tier: a row per signal and second, across every window.
        assert_eq!(tiers[0].rows, 200);
        assert!(tier_bytes[0] > 0, "tier bytes stream out before the end");
    }

    #[test]
    fn values_past_their_dbc_range_are_flagged_and_counted_per_signal() {
        let db = Database::from_text(
            r#"
BO_ 3 Temps: 2 E
 SG_ Hot : 0|8@1+ (1,-40) [-20|100] "degC" X
 SG_ Free : 8|8@1+ (1,0) [0|0] "" X
"#,
            "t.dbc",
        )
        .unwrap();
        let options = DecodedWriterOptions {
            row_group_rows: 3,
            rollups: true,
            ..DecodedWriterOptions::default()
        };
        let mut w = DecodedWriter::new(&db, Vec::new(), "out", &BatchCopy::new("b", 1), options).unwrap();
        let mut values = Vec::new();
        // Hot: -40 (below), 0, 100 (at the bound), 101 (above), 215 (above).
        for (ts, raw) in [(1, 0u8), (2, 40), (3, 140), (4, 141), (5, 255)] {
            db.messages()[0].decode(&[raw, 255], &mut values).unwrap();
            w.push(ts, 0, None, &values).unwrap();
        }
        let (bytes, stats, tiers) = w.finish_with_rollups().unwrap();
        assert_eq!(
            stats.out_of_range,
            [OutOfRange {
                message: "Temps".into(),
                signal: "Hot".into(),
                values: 3
            }],
            "Free sets no range: nothing of it is out of one"
        );
        let reader = ParquetRecordBatchReaderBuilder::try_new(Bytes::from(bytes))
            .unwrap()
            .build()
            .unwrap();
        let mut flags = Vec::new();
        for batch in reader {
            let batch = batch.unwrap();
            let column = batch.column(8).as_any().downcast_ref::<BooleanArray>().unwrap();
            flags.extend((0..column.len()).map(|i| column.value(i)));
        }
        // Sorted by signal: Free's five values, then Hot's, across row groups of three.
        assert_eq!(
            flags,
            [false, false, false, false, false, true, false, false, true, true]
        );
        let tier = ParquetRecordBatchReaderBuilder::try_new(Bytes::from(tiers[0].bytes.clone()))
            .unwrap()
            .build()
            .unwrap();
        let mut counted = 0;
        for batch in tier {
            let batch = batch.unwrap();
            let column = batch.column_by_name("n_out_of_range").unwrap();
            let column = column.as_any().downcast_ref::<Int64Array>().unwrap();
            counted += column.values().iter().sum::<i64>();
        }
        assert_eq!(counted, 3, "the 1 s tier counts them too");
    }

    #[test]
    fn frames_pushed_to_decode_by_columns_write_what_their_values_pushed_write() {
        let db = Database::from_text(
            r#"
BO_ 1 Plain: 8 E
 SG_ Speed : 0|16@1- (0.01,0) [-100|100] "m/s" X
 SG_ Gear : 23|4@0+ (1,0) [0|0] "" X

BO_ 2 Cells: 6 E
 SG_ Group M : 0|2@1+ (1,0) [0|0] "" X
 SG_ CellA m0 : 8|12@1+ (0.001,1.5) [0|0] "V" X
 SG_ CellB m1 : 8|12@1+ (0.001,1.5) [0|0] "V" X
 SG_ Both : 32|16@1+ (1,0) [0|0] "" X

BO_ 2365580030 Engine: 8 E
 SG_ Rpm : 24|16@1+ (0.125,0) [0|8031.875] "rpm" X

BA_DEF_ BO_ "VFrameFormat" ENUM "StandardCAN","ExtendedCAN","J1939PG";
BA_ "VFrameFormat" BO_ 2365580030 2;
"#,
            "t.dbc",
        )
        .unwrap();
        let options = DecodedWriterOptions {
            sort_window_rows: 50,
            row_group_rows: 16,
            rollups: true,
        };
        let writer = || DecodedWriter::new(&db, Vec::new(), "out", &BatchCopy::new("b", 1), options).unwrap();
        let (mut by_rows, mut by_columns) = (writer(), writer());
        let (mut values, mut seed, mut columnar) = (Vec::new(), 0x9e37_79b9_7f4a_7c15u64, 0);
        for i in 0..400i64 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let index = (seed % 3) as usize;
            let message = &db.messages()[index];
            // Time mostly ascending, some frames late, many seconds apart for the tiers.
            let ts = i * 300_000 - if i % 7 == 0 { 900_000 } else { 0 };
            let source = message.is_j1939.then_some((seed >> 60) as u8);
            let data = seed.to_le_bytes();
            if message.decode(&data, &mut values).is_ok() {
                by_rows.push(ts, index, source, &values).unwrap();
            }
            let decoder = message.columns().expect("each message decodes by columns");
            // Group 2 and 3 are unknown: those frames fail both ways.
            if let Ok(frame) = decoder.frame(&data) {
                by_columns.push_frame(ts, index, source, frame).unwrap();
                columnar += 1;
            }
        }
        assert!(columnar > 200, "{columnar} frames decoded");
        let (rows, row_stats, row_tiers) = by_rows.finish_with_rollups().unwrap();
        let (columns, column_stats, column_tiers) = by_columns.finish_with_rollups().unwrap();
        assert_eq!(row_stats, column_stats);
        assert!(rows == columns, "the decoded objects are byte for byte the same");
        for (a, b) in row_tiers.iter().zip(&column_tiers) {
            assert!(
                a.rows > 0 && a.rows == b.rows && a.bytes == b.bytes,
                "tier {}",
                a.tier.name
            );
        }
    }

    /// A sink that refuses every write.
    struct Refusing;

    impl Write for Refusing {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("disk full"))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_failing_sink_fails_the_writer_by_name_and_a_dropped_writer_lets_its_thread_go() {
        let db = Database::from_text(DBC, "t.dbc").unwrap();
        let options = DecodedWriterOptions {
            sort_window_rows: 2,
            ..DecodedWriterOptions::default()
        };
        let zeta = db.messages().iter().position(|m| m.name == "Zeta").unwrap();
        let mut values = Vec::new();
        db.messages()[zeta].decode(&[1, 2], &mut values).unwrap();

        let mut w = DecodedWriter::new(&db, Refusing, "s3://lake/out", &BatchCopy::new("b", 1), options).unwrap();
        let mut failed = None;
        for ts in 0..10 {
            if let Err(e) = w.push(ts, zeta, None, &values) {
                failed = Some(e);
                break;
            }
        }
        let error = failed
            .expect("a window's bytes reach the sink while pushing")
            .to_string();
        assert!(
            error.contains("s3://lake/out") && error.contains("disk full"),
            "{error}"
        );

        // Dropped with windows in flight: the drop waits for the thread to end.
        let mut w = DecodedWriter::new(&db, Vec::new(), "out", &BatchCopy::new("b", 1), options).unwrap();
        for ts in 0..5 {
            w.push(ts, zeta, None, &values).unwrap();
        }
        drop(w);
    }
}

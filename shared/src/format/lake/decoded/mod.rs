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
//!
//! The writer is here; the rest by job: `window` holds what a window
//! gathers, `catalog` numbers the signals, `batch` assembles one row
//! group and `encoder` writes the windows on a thread of its own.

mod batch;
mod catalog;
mod encoder;
mod window;

use std::io::Write;
use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, SchemaRef};

use super::compact::BatchCopy;
use super::rollup::{RollupFile, TIERS, Tier};
use super::{LakeError, writer_properties};
use crate::format::dbc::columns::ColumnFrame;
use crate::format::dbc::{Database, SignalValue};
use catalog::Catalog;
use encoder::{Encoder, EncoderThread, Written};
use window::Window;

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

#[cfg(test)]
mod tests;

//! The encoder: the thread that sorts and writes each full window as row
//! groups of the decoded object (and aggregates the rollup tiers beside
//! it), so that the caller's thread goes on decoding the next window.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, sync_channel};
use std::thread::JoinHandle;

use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_writer::ArrowRowGroupWriterFactory;
use parquet::file::writer::SerializedFileWriter;

use super::batch::BatchBuilder;
use super::catalog::Catalog;
use super::window::{Bucket, Window};
use super::{CopyColumns, DecodedFileStats, DecodedWriterOptions, OutOfRange, WINDOWS_IN_FLIGHT};
use super::{decoded_schema, writer_properties_for_decoded};
use crate::format::lake::LakeError;
use crate::format::lake::rollup::{RollupBuilder, RollupFile};
use crate::format::lake::row_group;

/// An encoded window: its bytes, each tier's, and the window emptied for the next.
pub(super) struct Written {
    pub(super) bytes: Vec<u8>,
    pub(super) tiers: Vec<Vec<u8>>,
    pub(super) window: Window,
}

/// What the encoder thread ends with: the bytes after the last window (the
/// footer), the file's stats and the rest of each tier's object.
type Finished = (Vec<u8>, DecodedFileStats, Vec<RollupFile>);

/// The encoder on its own thread: one window in, one [`Written`] out.
pub(super) struct EncoderThread {
    windows: Option<SyncSender<Window>>,
    written: Receiver<Result<Written, LakeError>>,
    thread: Option<JoinHandle<Result<Finished, LakeError>>>,
    source_name: Arc<str>,
    /// Windows sent whose bytes were not taken yet.
    pub(super) in_flight: usize,
}

impl EncoderThread {
    pub(super) fn spawn(mut encoder: Encoder) -> Self {
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

    pub(super) fn send(&mut self, window: Window) -> Result<(), LakeError> {
        let sent = self.windows.as_ref().is_some_and(|w| w.send(window).is_ok());
        if !sent {
            return Err(self.stopped());
        }
        self.in_flight += 1;
        Ok(())
    }

    /// The oldest window in flight, once written.
    pub(super) fn wait(&mut self) -> Result<Written, LakeError> {
        match self.written.recv() {
            Ok(written) => {
                self.in_flight -= 1;
                written
            }
            Err(_) => Err(self.stopped()),
        }
    }

    /// The oldest window in flight if it is written already.
    pub(super) fn try_wait(&mut self) -> Result<Option<Written>, LakeError> {
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
    pub(super) fn finish(mut self) -> Result<Finished, LakeError> {
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
pub(super) struct Encoder {
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
    pub(super) fn new(
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
